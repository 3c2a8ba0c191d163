#!/bin/bash
# test-100-checkpoint.sh - xl checkpoint-*: checkpoints (one persistent
# dirty bitmap per disk, libvirt's model) on real QEMU and qcow2 images
#
# What each bitmap holds is read from outside, offline: qemu-nbd -B
# exports it as the qemu:dirty-bitmap:NAME meta context, and nbdinfo
# (libnbd-bin) prints its map (qemu-img map over x-dirty-bitmap when
# nbdinfo is missing).  "Changed since X" is the union of the bitmaps
# X.. newest over every image of the disk's chain: checked against the
# extents the test wrote.
#  1. live: create (qcow2 disks only by default), list, info, --json,
#     dumpxml; refusals (duplicate, ../x, unknown domain, unknown
#     checkpoint, a raw disk, an unknown disk), one line, nothing
#     changed; usage errors exit 2;
#  2. a clean shutdown: c1 disabled, c2 recording, each holding its own
#     writes; a restart: they go on (checkpoint-list --check clean);
#  3. snapshot-create --checkpoint (live, external): the old bitmaps
#     stay in the frozen image, the new one on the overlay, the union
#     exact; then block-commit --active --pivot: merged into the base,
#     the right one recording; snapshot-revert refused while checkpoints
#     cover the disk (one line, nothing changed);
#  4. checkpoint-delete live of a middle one, then of the newest: the
#     predecessor covers their writes and records again;
#  5. offline create and delete (qemu-img bitmap);
#  6. block-copy --pivot and xl migrate: the bitmaps go along;
#  7. crash points XL_SNAPSHOT_FAULT=checkpoint:N in create and delete,
#     each completed (or rolled back) by the next command; Ctrl-C in a
#     create: one line, rolled back by the next command;
#  8. QEMU killed during writes: snapshot-check (and --json) reports the
#     bitmaps inconsistent, one line each; a delete that would merge an
#     inconsistent bitmap is refused;
#  9. snapshot-create --checkpoint cut by crash points: the snapshot
#     completed or rolled back, the checkpoint rolled back, the previous
#     one recording;
# 10. two qcow2 disks: one checkpoint on both, --disk (the other disk's
#     older bitmap goes on recording), a delete merging on both, an
#     offline create cut between its disks rolled back on both;
# 11. offline external snapshots cut at each crash point: rolled back or
#     forward, the newest bitmap always on the active image and
#     recording; then an offline block-commit of the whole chain: each
#     bitmap exact ("between" too: the frozen images' bitmaps stopped);
# 12. snapshot-delete of external snapshots (live in both orders, and
#     offline): the commits merge the bitmaps, each still exact;
# 13. block-stream: the dropped images' bitmaps merged into the top
#     (live exact; offline, qemu-img rebase marks what it copies in the
#     recording bitmap: more, never less);
# 14. snapshot-export-records carries the checkpoints' records, import
#     writes them back (refused while the domain has some).
# 15. a bitmap missing from a layer it must be on (the union would
#     silently miss the writes made there): the overlay's bitmap lost
#     with QEMU killed after a live external snapshot, and one removed
#     from a middle image offline: snapshot-diff and backup-begin
#     --incremental refused in one line (--fallback-full: a full one),
#     checkpoint-list --check and snapshot-check report the gap.
# 16. checkpoint-create naming a config file: the domain then known by
#     its name (its record written).
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

D=ck
NBD_SOCK=$T/nbd.sock

# dirty_map IMAGE BITMAP: "OFFSET LENGTH" of each dirty extent
dirty_map() {
    local img=$1 bm=$2 pid out ok=0
    rm -f "$NBD_SOCK"
    qemu-nbd -r -f qcow2 -B "$bm" --socket="$NBD_SOCK" "$img" \
        2>"$T/nbd.err" &
    pid=$!
    for _ in $(seq 50); do [ -S "$NBD_SOCK" ] && break; sleep 0.1; done
    if command -v nbdinfo >/dev/null 2>&1; then
        out=$(nbdinfo --map="qemu:dirty-bitmap:$bm" \
                  "nbd+unix:///?socket=$NBD_SOCK" 2>&1) && ok=1
    else
        # x-dirty-bitmap: the dirty extents read as holes ("data": false)
        out=$(qemu-img map --output=json --image-opts \
              "driver=nbd,server.type=unix,server.path=$NBD_SOCK,x-dirty-bitmap=qemu:dirty-bitmap:$bm" \
              2>&1) && ok=2
    fi
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    case $ok in
    1) awk '$3 == 1 {print $1, $2}' <<<"$out" ;;
    2) jq -r '.[] | select(.data == false) | "\(.start) \(.length)"' <<<"$out" ;;
    *) fail "the map of bitmap $bm of $img" "$out
$(cat "$T/nbd.err")" ;;
    esac
}

# union "OFF LEN" lines (stdin) into merged "START END" ranges in MiB
union_mib() {
    sort -n | awk '{s = $1; e = $1 + $2
        if (n && s <= ce) { if (e > ce) ce = e; next }
        if (n) printf "%d-%d\n", cs / 1048576, ce / 1048576
        cs = s; ce = e; n = 1 }
        END { if (n) printf "%d-%d\n", cs / 1048576, ce / 1048576 }'
}

# changed IMAGE BITMAP...: the union of those bitmaps over IMAGE's chain
changed() {
    local img=$1 f b
    shift
    for f in $(backing_chain "$img" | cut -f1); do
        for b in "$@"; do
            has_bitmap "$f" "$b" && dirty_map "$f" "$b"
        done
    done | union_mib | paste -sd' '
}

bitmap_flags() {   # IMAGE NAME: its flags, comma-separated ("" if none)
    qemu-img info -U --output=json "$1" |
        jq -r --arg n "$2" '."format-specific".data.bitmaps[]? |
                            select(.name == $n) | .flags | join(",")'
}
has_bitmap() {
    qemu-img info -U --output=json "$1" |
        jq -e --arg n "$2" '."format-specific".data.bitmaps[]? |
                            select(.name == $n)' >/dev/null
}
expect_flags() {   # IMAGE NAME FLAGS
    expect_eq "$(bitmap_flags "$1" "$2")" "$3" "flags of bitmap $2 on $1"
}
expect_changed() {   # IMAGE "RANGES" BITMAP...
    local img=$1 want=$2
    shift 2
    expect_eq "$(changed "$img" "$@")" "$want" "union of $* over $img's chain"
}
expect_clean() {
    expect_ok xl snapshot-check "$D"
    expect_match "$OUT" "the records and the images agree" "snapshot-check"
}
# what QEMU has for a disk (xvda): the bitmaps' names and recording,
# sorted; LB_DOMAIN, LB_DISK select another
live_bitmaps() {
    local id sock
    id=$(xl list | awk -v d="${LB_DOMAIN:-$D}" '$1 == d {print $2}')
    sock=$RUN/qmp-libxl-$id
    python3 - "$sock" "${LB_DISK:-xvda}" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile('rw')
def reply():
    while True:
        m = json.loads(f.readline())
        if 'event' not in m: return m
reply()
for c in ("qmp_capabilities", "query-block"):
    f.write(json.dumps({"execute": c}) + "\n"); f.flush(); m = reply()
for d in m['return']:
    if d['device'] == sys.argv[2]:
        print(' '.join(sorted('%s:%s' % (b['name'], 'on' if b['recording'] else 'off')
                              for b in d['inserted'].get('dirty-bitmaps', []))))
EOF
}

make_vm_config "$D"
A=$IMG/$D-xvda.qcow2

step "1. live: create, list, info, dumpxml; refusals"
expect_ok xl create "$CFG"
expect_ok xl checkpoint-create "$D" c1
expect_match "$OUT" "Domain checkpoint c1 created \(1 disk\)" "create output"
write_pattern "$D" xvda 0x11 0 1M
expect_ok xl checkpoint-create --description "the second" "$D" c2
write_pattern "$D" xvda 0x22 2M 1M
expect_eq "$(live_bitmaps)" "c1:off c2:on" "QEMU's bitmaps on xvda"
expect_ok xl checkpoint-list --name "$D"
expect_eq "$OUT" "c1
c2" "checkpoint-list --name"
expect_ok xl checkpoint-list --json "$D"
expect_eq "$(jq -r '.[] | "\(.name) \(.parent // "-") \([.disks[].vdev] | join(","))"' <<<"$OUT")" \
    "c1 - xvda
c2 c1 xvda" "checkpoint-list --json"
expect_ok xl checkpoint-info --json "$D" c2
expect_eq "$(jq -r '.description + " " + .disks[0].bitmap + " " + .disks[0].image' <<<"$OUT")" \
    "the second c2 $A" "checkpoint-info --json"
expect_ok xl checkpoint-dumpxml "$D" c2
expect_match "$OUT" '<domaincheckpoint>' "dumpxml"
expect_match "$OUT" '<disk name="xvda" checkpoint="bitmap" bitmap="c2"/>' "dumpxml disk"
expect_match "$(tr -d ' \n' <<<"$OUT")" '<parent><name>c1</name></parent>' "dumpxml parent"
refused "domain $D already has a checkpoint named 'c1'" xl checkpoint-create "$D" c1
refused "invalid checkpoint name '../x'" xl checkpoint-create "$D" ../x
refused "'nosuch'" xl checkpoint-create nosuch c9
refused "has no checkpoint named 'c9'" xl checkpoint-info "$D" c9
refused "has no checkpoint named 'c9'" xl checkpoint-delete "$D" c9
refused "has no checkpoint named 'c9'" xl checkpoint-dumpxml "$D" c9
refused "disk xvdb: its active image .* is not a qcow2 file" \
    xl checkpoint-create --disk xvdb "$D" c9
refused "has no disk 'xvdz'" xl checkpoint-create --disk xvdz "$D" c9
for cmd in checkpoint-create checkpoint-info checkpoint-delete; do
    run xl "$cmd" "$D"
    expect_eq "$RC" 2 "exit status of $cmd with one argument"
done
expect_ok xl checkpoint-list -h
expect_clean

step "2. clean shutdown and restart"
expect_ok xl destroy "$D"
expect_flags "$A" c1 ""
expect_flags "$A" c2 "auto"
expect_changed "$A" "0-1" c1
expect_changed "$A" "2-3" c2
expect_changed "$A" "0-1 2-3" c1 c2
expect_ok xl create "$CFG"
expect_eq "$(live_bitmaps)" "c1:off c2:on" "QEMU's bitmaps after the restart"
write_pattern "$D" xvda 0x33 4M 1M
expect_ok xl checkpoint-list --check "$D"
expect_no_match "$OUT" "INVALID" "checkpoint-list --check"

step "3. snapshot-create --checkpoint (live, external), then block-commit"
expect_ok xl snapshot-create "$D" s1 --diskspec xvda,snapshot=external \
    --diskspec xvdb,snapshot=no --checkpoint c3
expect_match "$OUT" "Domain checkpoint c3 created with it \(1 disk\)" "output"
OV=$(active_image "$D" xvda)
expect_eq "$OV" "$IMG/$D-xvda.s1.qcow2" "the overlay"
expect_ok xl checkpoint-info --json "$D" c3
expect_eq "$(jq -r '.snapshot + " " + .disks[0].image' <<<"$OUT")" "s1 $OV" \
    "c3's snapshot and image"
expect_eq "$(live_bitmaps)" "c2:off c3:on" "QEMU's bitmaps on the overlay"
write_pattern "$D" xvda 0x44 6M 1M
expect_clean
refused "cannot revert to snapshot 's1' while checkpoints cover its disks \('c1', 'c2', 'c3'\)" \
    xl snapshot-revert "$D" s1
expect_ok xl destroy "$D"
expect_flags "$A" c2 ""
expect_flags "$OV" c3 "auto"
expect_changed "$OV" "0-1 2-3 4-5 6-7" c1 c2 c3
expect_changed "$OV" "2-3 4-5 6-7" c2 c3
expect_changed "$OV" "6-7" c3
expect_ok xl create "$CFG"
expect_ok xl block-commit --active --pivot --delete "$D" xvda
expect_eq "$(active_image "$D" xvda)" "$A" "active image after the commit"
expect_eq "$(live_bitmaps)" "c1:off c2:off c3:on" "QEMU's bitmaps after the commit"
write_pattern "$D" xvda 0x55 8M 1M
expect_ok xl destroy "$D"
expect_changed "$A" "0-1" c1
expect_changed "$A" "2-3 4-5" c2
expect_changed "$A" "6-7 8-9" c3
expect_flags "$A" c3 "auto"
expect_clean

step "4. delete live: a middle one, then the newest"
expect_ok xl create "$CFG"
expect_ok xl checkpoint-delete "$D" c2
expect_ok xl checkpoint-info --json "$D" c1
expect_eq "$(jq -r '.merged | join(",")' <<<"$OUT")" "c2" "c1's merged"
expect_ok xl checkpoint-info --json "$D" c3
expect_eq "$(jq -r '.parent' <<<"$OUT")" "c1" "c3's parent"
expect_ok xl checkpoint-delete "$D" c3
expect_eq "$(live_bitmaps)" "c1:on" "QEMU's bitmaps after the deletes"
write_pattern "$D" xvda 0x66 10M 1M
expect_ok xl destroy "$D"
expect_changed "$A" "0-1 2-3 4-5 6-7 8-9 10-11" c1
expect_flags "$A" c1 "auto"
expect_clean

step "5. offline create and delete"
expect_ok xl checkpoint-create "$D" c4
expect_flags "$A" c1 ""
expect_flags "$A" c4 "auto"
write_pattern "$D" xvda 0x77 12M 1M
expect_changed "$A" "12-13" c4
expect_ok xl checkpoint-delete "$D" c4
expect_flags "$A" c1 "auto"
expect_eq "$(bitmap_flags "$A" c4)" "" "c4 removed"
expect_changed "$A" "0-1 2-3 4-5 6-7 8-9 10-11 12-13" c1
expect_clean

step "6. block-copy --pivot and migrate"
expect_ok xl create "$CFG"
expect_ok xl checkpoint-create "$D" c5
write_pattern "$D" xvda 0x88 14M 1M
mkdir -p "$T/other"
COPY=$T/other/copy.qcow2
expect_ok xl block-copy --pivot "$D" xvda "$COPY"
expect_eq "$(live_bitmaps)" "c1:off c5:on" "QEMU's bitmaps on the copy"
expect_ok xl migrate "$D"
expect_eq "$(live_bitmaps)" "c1:off c5:on" "QEMU's bitmaps after the migration"
write_pattern "$D" xvda 0x99 16M 1M
expect_ok xl destroy "$D"
expect_changed "$COPY" "0-1 2-3 4-5 6-7 8-9 10-11 12-13" c1
expect_changed "$COPY" "14-15 16-17" c5
expect_clean

step "7. crash points"
expect_ok xl create "$CFG"
fp=$(fingerprint)
for n in 1 2; do
    run env XL_SNAPSHOT_FAULT=checkpoint:$n "$XL" checkpoint-create "$D" c6
    expect_eq "$RC" 86 "checkpoint-create at fault $n"
    expect_ok xl snapshot-recover "$D"
    expect_match "$ERR" "checkpoint-create of 'c6' was rolled back|had been made" \
        "recovery at fault $n"
    if xl checkpoint-info "$D" c6 >/dev/null 2>&1; then
        expect_ok xl checkpoint-delete "$D" c6
    fi
    expect_eq "$(live_bitmaps)" "c1:off c5:on" "bitmaps after fault $n"
    expect_clean
done
# Ctrl-C after the transaction: one line, the journal rolls it back
run env XL_SNAPSHOT_FAULT=checkpoint:2:sigint "$XL" checkpoint-create "$D" c6
expect_eq "$RC" 1 "checkpoint-create interrupted"
expect_eq "$(wc -l <<<"$ERR")" 1 "lines on stderr: $ERR"
expect_match "$ERR" "checkpoint-create interrupted: .*rolls it back" "the line"
expect_ok xl snapshot-recover "$D"
expect_match "$ERR" "checkpoint-create of 'c6' was rolled back" "the recovery"
expect_ok xl checkpoint-list --name "$D"
expect_eq "$OUT" "c1
c5" "checkpoints after the interrupt"
expect_eq "$(live_bitmaps)" "c1:off c5:on" "bitmaps after the interrupt"
expect_clean
expect_ok xl destroy "$D"
expect_ok xl checkpoint-create "$D" c6
write_pattern "$D" xvda 0xaa 18M 1M
run env XL_SNAPSHOT_FAULT=checkpoint:2 "$XL" checkpoint-delete "$D" c6
expect_eq "$RC" 86 "offline checkpoint-delete at fault 2"
expect_ok xl snapshot-recover "$D"
expect_match "$ERR" "checkpoint-delete of 'c6' was finished" "delete finished"
expect_ok xl checkpoint-list --name "$D"
expect_eq "$OUT" "c1
c5" "checkpoints after the recovered delete"
expect_flags "$COPY" c5 "auto"
expect_changed "$COPY" "14-15 16-17 18-19" c5
expect_clean

step "8. QEMU killed during writes"
expect_ok xl create "$CFG"
PID=$(runtime_pid "$D")
write_pattern "$D" xvda 0xbb 20M 1M
kill -9 "$PID"
while kill -0 "$PID" 2>/dev/null; do sleep 0.1; done
expect_flags "$COPY" c5 "in-use,auto"
run xl snapshot-check "$D"
expect_eq "$RC" 1 "snapshot-check exit status"
expect_match "$OUT" "checkpoint 'c5' disk xvda: bitmap 'c5' is inconsistent on '$COPY'" \
    "snapshot-check"
expect_match "$OUT" "checkpoint 'c1' disk xvda: bitmap 'c1' is inconsistent" \
    "snapshot-check"
run xl snapshot-check --json "$D"
expect_eq "$(jq -r '[.problems[] | select(test("inconsistent"))] | length' <<<"$OUT")" 2 \
    "snapshot-check --json"
refused "checkpoint 'c5' cannot be merged into 'c1': its bitmap on disk xvda is inconsistent" \
    xl checkpoint-delete "$D" c5
expect_ok xl checkpoint-delete "$D" c1
expect_ok xl checkpoint-delete "$D" c5
expect_eq "$(bitmap_flags "$COPY" c5)" "" "c5 removed"
expect_clean

step "9. snapshot-create --checkpoint cut by a crash: the checkpoint rolled back"
expect_ok xl create "$CFG"
expect_ok xl checkpoint-create "$D" c8
for n in 1 2; do
    run env XL_SNAPSHOT_FAULT=create:$n "$XL" snapshot-create "$D" "x$n" \
        --diskspec xvda,snapshot=external --diskspec xvdb,snapshot=no \
        --checkpoint c9
    expect_eq "$RC" 86 "snapshot-create --checkpoint at fault $n"
    expect_ok xl snapshot-recover "$D"
    expect_match "$ERR" "checkpoint 'c9' of the interrupted snapshot-create was rolled back" \
        "recovery at fault $n"
    expect_eq "$(live_bitmaps)" "c8:on" "QEMU's bitmaps after fault $n"
    expect_ok xl checkpoint-list --name "$D"
    expect_eq "$OUT" "c8" "checkpoints after fault $n"
    expect_clean
done
expect_ok xl destroy "$D"

step "10. two qcow2 disks: one instant, a subset, merges and a crash on both"
make_vm_config ck2
rm -f "$IMG/ck2-xvdb.img"
qemu-img create -q -f qcow2 "$IMG/ck2-xvdb.qcow2" 32M
sed -i "s|format=raw,vdev=xvdb,access=rw,target=$IMG/ck2-xvdb.img|format=qcow2,vdev=xvdb,access=rw,target=$IMG/ck2-xvdb.qcow2|" "$CFG"
A2=$IMG/ck2-xvda.qcow2
B2=$IMG/ck2-xvdb.qcow2
expect_ok xl create "$CFG"
expect_ok xl checkpoint-create ck2 m1
expect_match "$OUT" "\(2 disks\)" "both disks"
write_pattern ck2 xvda 0x11 0 1M
write_pattern ck2 xvdb 0x12 1M 1M
expect_ok xl checkpoint-create --disk xvda ck2 m2
expect_eq "$(LB_DOMAIN=ck2 live_bitmaps)" "m1:off m2:on" "xvda after m2"
expect_eq "$(LB_DOMAIN=ck2 LB_DISK=xvdb live_bitmaps)" "m1:on" \
    "xvdb after m2 (not on it: m1 goes on recording)"
write_pattern ck2 xvda 0x21 2M 1M
write_pattern ck2 xvdb 0x22 3M 1M
expect_ok xl checkpoint-create ck2 m3
expect_eq "$(LB_DOMAIN=ck2 LB_DISK=xvdb live_bitmaps)" "m1:off m3:on" "xvdb after m3"
write_pattern ck2 xvda 0x31 4M 1M
write_pattern ck2 xvdb 0x32 5M 1M
expect_ok xl checkpoint-delete ck2 m3
expect_eq "$(LB_DOMAIN=ck2 live_bitmaps)" "m1:off m2:on" "xvda after deleting m3"
expect_eq "$(LB_DOMAIN=ck2 LB_DISK=xvdb live_bitmaps)" "m1:on" "xvdb after deleting m3"
expect_ok xl destroy ck2
expect_changed "$A2" "0-1" m1
expect_changed "$A2" "2-3 4-5" m2
expect_changed "$B2" "1-2 3-4 5-6" m1
D=ck2 expect_clean
# (the images' bytes change: a bitmap added, then removed)
fp=$(FP_DIRS=state fingerprint)
run env XL_SNAPSHOT_FAULT=checkpoint:3 "$XL" checkpoint-create ck2 m4
expect_eq "$RC" 86 "offline checkpoint-create between its disks"
expect_ok xl snapshot-recover ck2
expect_match "$ERR" "checkpoint-create of 'm4' was rolled back" "rolled back"
expect_eq "$(bitmap_flags "$A2" m4)$(bitmap_flags "$B2" m4)" "" "m4 on no disk"
expect_flags "$A2" m2 auto
expect_flags "$B2" m1 auto
FP_DIRS=state expect_unchanged "$fp" "a checkpoint-create cut and rolled back"
D=ck2 expect_clean

step "11. offline external snapshots cut anywhere, then an offline commit"
for n in 2 3 4 5 6 7; do
    run env XL_SNAPSHOT_FAULT=create:$n "$XL" snapshot-create ck2 "y$n" \
        --diskspec xvda,snapshot=external --diskspec xvdb,snapshot=external
    expect_eq "$RC" 86 "offline snapshot-create at fault $n"
    expect_ok xl snapshot-recover ck2
    expect_ok xl checkpoint-list --check ck2
    expect_no_match "$OUT" "INVALID" "the bitmaps after fault $n"
    D=ck2 expect_clean
done
write_pattern ck2 xvda 0x61 6M 1M
expect_ok xl checkpoint-create ck2 m5
write_pattern ck2 xvda 0x71 7M 1M
expect_ok xl block-commit --active --pivot --delete ck2 xvda
expect_eq "$(active_image ck2 xvda)" "$A2" "xvda after the commit"
expect_flags "$A2" m2 ""
expect_flags "$A2" m5 "auto"
expect_changed "$A2" "0-1" m1
expect_changed "$A2" "2-3 4-5 6-7" m2
expect_changed "$A2" "7-8" m5
expect_ok xl checkpoint-list --check ck2
expect_no_match "$OUT" "INVALID" "the bitmaps after the commit"
D=ck2 expect_clean

step "12. snapshot-delete merges the bitmaps (live and offline, both orders)"
# chain_case NAME live|off: a new domain whose xvda has c1 (0-1M), the
# external snapshot s1 with c2 (2-3M), s2 (4-5M), then c3 (6-7M)
chain_case() {
    local d=$1 how=$2
    make_vm_config "$d"
    expect_ok xl create "$CFG"
    [ "$how" = live ] || expect_ok xl destroy "$d"
    expect_ok xl checkpoint-create "$d" c1
    write_pattern "$d" xvda 0x11 0 1M
    expect_ok xl snapshot-create "$d" s1 --diskspec xvda,snapshot=external \
        --diskspec xvdb,snapshot=no --checkpoint c2
    write_pattern "$d" xvda 0x22 2M 1M
    expect_ok xl snapshot-create "$d" s2 --diskspec xvda,snapshot=external \
        --diskspec xvdb,snapshot=no
    write_pattern "$d" xvda 0x33 4M 1M
    expect_ok xl checkpoint-create "$d" c3
    write_pattern "$d" xvda 0x44 6M 1M
}
# delete_case NAME live|off FIRST SECOND
delete_case() {
    local d=$1 how=$2 img
    img=$IMG/$d-xvda.qcow2
    chain_case "$d" "$how"
    expect_ok xl snapshot-delete "$d" "$3"
    expect_ok xl snapshot-delete "$d" "$4"
    expect_ok xl checkpoint-list --check "$d"
    expect_no_match "$OUT" "INVALID" "the bitmaps after the deletes"
    [ "$how" = live ] && expect_ok xl destroy "$d"
    expect_eq "$(active_image "$d" xvda)" "$img" "xvda after the deletes"
    expect_changed "$img" "0-1" c1
    expect_changed "$img" "2-3 4-5" c2
    expect_changed "$img" "6-7" c3
    expect_flags "$img" c3 auto
    D=$d expect_clean
}
delete_case dl1 live s1 s2
delete_case dl2 live s2 s1
delete_case dl3 off s1 s2

step "13. block-stream merges the dropped images' bitmaps into the top"
# stream_case NAME live|off
stream_case() {
    local d=$1 how=$2 top
    chain_case "$d" "$how"
    top=$(active_image "$d" xvda)
    expect_ok xl block-stream "$d" xvda
    [ "$how" = live ] && expect_ok xl destroy "$d"
    expect_eq "$(backing_chain "$top" | wc -l)" 1 "the top stands alone"
    expect_changed "$top" "0-1" c1
    expect_changed "$top" "2-3 4-5" c2
    if [ "$how" = live ]; then
        expect_changed "$top" "6-7" c3
    else
        # qemu-img rebase writes the streamed clusters: more, never less
        expect_match "$(changed "$top" c3)" "6-7" "c3 after an offline stream"
    fi
    expect_flags "$top" c3 auto
    D=$d expect_clean
}
stream_case st1 live
stream_case st2 off

step "14. records export and import carry the checkpoints"
expect_ok xl checkpoint-list --json dl3
before=$OUT
expect_ok xl snapshot-export-records dl3 "$T/dl3.json"
expect_eq "$(jq -r '[.checkpoints[].name] | join(" ")' "$T/dl3.json")" "c1 c2 c3" \
    "the exported checkpoints"
expect_eq "$(jq -r '.snapshots | length' "$T/dl3.json")" 0 "no snapshot left"
refused "already has 3 checkpoint records" xl snapshot-import-records dl3 "$T/dl3.json"
rm -f "$(domain_dir dl3)"/checkpoint-*.libxl-json
expect_ok xl checkpoint-list --name dl3
expect_eq "$OUT" "" "checkpoints once their records are gone"
expect_ok xl snapshot-import-records dl3 "$T/dl3.json"
expect_ok xl checkpoint-list --json dl3
expect_eq "$OUT" "$before" "the checkpoints imported"
D=dl3 expect_clean

step "15. a bitmap missing from a layer: refused, reported"
# the overlay's c1 only in QEMU when it is killed: never on the file
make_vm_config gp1
expect_ok xl create "$CFG"
expect_ok xl checkpoint-create gp1 c1
write_pattern gp1 xvda 1 1M 64K
expect_ok xl snapshot-create --diskspec xvda,snapshot=external \
    --diskspec xvdb,snapshot=no gp1 e1
write_pattern gp1 xvda 2 2M 64K
expect_ok xl snapshot-diff -v gp1 c1
expect_eq "$(grep '^  ' <<<"$OUT" | xargs)" "1048576 65536 2097152 65536" \
    "the diff since c1, live"
PID=$(runtime_pid gp1)
kill -9 "$PID"
while kill -0 "$PID" 2>/dev/null; do sleep 0.1; done
E1=$IMG/gp1-xvda.e1.qcow2
expect_eq "$(has_bitmap "$E1" c1 && echo on)" "" "c1 not on the overlay's file"
# (the first command clears the dead QEMU's runtime record)
expect_ok xl checkpoint-list --check gp1
expect_match "$OUT" "bitmap 'c1' is not on the active image" "checkpoint-list --check"
refused "disk xvda: checkpoint c1's bitmaps cannot be trusted: bitmap 'c1' is not on the active image '$E1'" \
    xl snapshot-diff -v gp1 c1
refused "cannot back up domain gp1 incrementally since 'c1': disk xvda: bitmap 'c1' is not on the active image" \
    xl backup-begin --disk xvda gp1 --target "$T/gp1-inc" --incremental c1
expect_ok xl backup-begin --disk xvda gp1 --target "$T/gp1-full" --incremental c1 \
    --fallback-full
expect_match "$ERR" "full backup instead" "--fallback-full says so"
expect_eq "$(qemu-img compare -q -U "$T/gp1-full/xvda.qcow2" "$E1" &&
             echo same)" same "the full backup"
run xl snapshot-check gp1
expect_eq "$RC" 1 "snapshot-check exit status"
expect_match "$OUT" "checkpoint 'c1' disk xvda: bitmap 'c1' is not on the active image '$E1'" \
    "snapshot-check"
# offline: base(c1) <- f1 <- f2, c1 carried up each; removed from f1
make_vm_config gp2
expect_ok xl create "$CFG"
expect_ok xl destroy gp2
expect_ok xl checkpoint-create gp2 c1
write_pattern gp2 xvda 1 1M 64K
expect_ok xl snapshot-create --diskspec xvda,snapshot=external \
    --diskspec xvdb,snapshot=no gp2 f1
write_pattern gp2 xvda 2 2M 64K
expect_ok xl snapshot-create --diskspec xvda,snapshot=external \
    --diskspec xvdb,snapshot=no gp2 f2
write_pattern gp2 xvda 3 3M 64K
F1=$IMG/gp2-xvda.f1.qcow2
expect_ok xl snapshot-diff -v gp2 c1
expect_eq "$(grep '^  ' <<<"$OUT" | xargs)" \
    "1048576 65536 2097152 65536 3145728 65536" "the diff since c1"
expect_ok qemu-img bitmap --remove "$F1" c1
refused "disk xvda: checkpoint c1's bitmaps cannot be trusted: bitmap 'c1' is missing on '$F1'" \
    xl snapshot-diff -v gp2 c1
refused "cannot back up domain gp2 incrementally since 'c1': disk xvda: bitmap 'c1' is missing on '$F1'" \
    xl backup-begin --disk xvda gp2 --target "$T/gp2-inc" --incremental c1
expect_ok xl checkpoint-list --check gp2
expect_match "$OUT" "bitmap 'c1' is missing on '$F1'" "checkpoint-list --check"
run xl snapshot-check gp2
expect_eq "$RC" 1 "snapshot-check exit status"
expect_match "$OUT" "checkpoint 'c1' disk xvda: bitmap 'c1' is missing on '$F1'" \
    "snapshot-check"

step "16. checkpoint-create by config file: the domain is known by name after"
make_vm_config gp3
expect_ok xl checkpoint-create "$CFG" k1
expect_ok xl checkpoint-list --name gp3
expect_eq "$OUT" "k1" "checkpoint-list by name"
write_pattern gp3 xvda 1 1M 64K
expect_ok xl snapshot-diff -v gp3 k1
expect_eq "$(grep '^  ' <<<"$OUT" | xargs)" "1048576 65536" "the diff since k1"
D=gp3 expect_clean
check_images
check_images "$T/other"
