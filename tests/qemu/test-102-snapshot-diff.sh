#!/bin/bash
# test-102-snapshot-diff.sh - xl snapshot-diff against extents the test
# wrote
#
# A 2-disk domain (make_vm_config): xvda qcow2, snapshotted internal
# (then external, for the mixed case), xvdb raw, snapshotted external.
# Between snapshots the test writes a known list of extents (qemu-io,
# offline on the active image, live through the monitor's qemu-io) and
# checks that snapshot-diff --json reports exactly those, rounded out to
# the 64 KiB clusters, for each pair of points:
#  - offline: s1 -> s2 and s2 -> now, s1 -> now (internal: "compare",
#    guest data read; external: "allocation", none read); data rewritten
#    with the same bytes is left out by compare, reported by --no-data;
#    live snapshots taken over writes still in QEMU's cache hold them;
#    a diff changes no file (fingerprint);
#  - live: writes left in QEMU's cache (no flush by the test) are seen
#    to now (the diff flushes: the guest pauses and runs on; a paused
#    one stays paused); s2 -> s3 with s3 taken live;
#  - mixed: xvda internal at s3, then external at s4: s3 -> now is the
#    tag compared with the frozen image plus the overlay's allocation;
#    then internal s4i in that overlay: s4 -> s4i is the overlay's own
#    clusters at the tag (not what came after);
#  - --disk, and a disk not in both points (snapshot=no);
#  - refused in one line, nothing changed: an unknown domain or
#    snapshot, FROM after TO, FROM == TO, an unknown disk, a disk not in
#    both, FROM's image gone from the chain (a full block-copy since);
#    usage errors exit 2.
#  - checkpoints (a second domain, its qcow2 disk): c1 -> c2, c1 -> now,
#    c2 -> now offline (method "bitmap": qemu-nbd and our NBD client;
#    nbdinfo, another client, reads the same bitmap), across an external
#    snapshot (the bitmaps on two layers), live (the temporary bitmap
#    exported by QEMU: unflushed writes seen, the guest runs on, no
#    socket left), refused: TO older, one checkpoint, a snapshot with a
#    checkpoint, an unknown name, a bitmap QEMU died with (in-use);
#  - a revert to an internal snapshot whose image an external one froze
#    (its state copied out): the diff from it compares copy and tag;
#    --json names the domain (and its uuid) when given its domid;
#    "now now" and an empty --disk refused; --disk: another disk's
#    block job does not refuse it; an extended-L2 image: "mapping";
#  - Ctrl-C: exit 1, one line, with --json the error document;
#  - failures: a Ctrl-C between the flush's stop and cont (the guest
#    runs on), xl killed with the live export up (the next diff cleans
#    up and reads right), QEMU killed during the read (one line).
# qemu-img check of every image at the end.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

make_vm_config dvm
D=dvm
K=65536

# expect_extents VDEV "EXPECTED" FROM [TO] [OPTS...]: the diff's extents
# of VDEV, from --json, as "offset+length offset+length ..." (bytes;
# EXPECTED in any order); OUT stays the document
expect_extents() {
    local vdev=$1 want got
    want=$(tr ' ' '\n' <<<"$2" | sort -n | paste -sd ' ')
    shift 2
    expect_ok xl snapshot-diff --json "$D" "$@"
    got=$(jq -r --arg v "$vdev" \
        '[.disks[] | select(.vdev == $v) | .extents[] |
          "\(.offset)+\(.length)"] | join(" ")' <<<"$OUT")
    expect_eq "$got" "$want" "snapshot-diff $* on $vdev"
}

method_of() {
    jq -r --arg v "$1" '.disks[] | select(.vdev == $v) | .method' <<<"$OUT"
}

M=1048576
# qemu-io write offline on the active image (no flush question)
w() {
    local vdev=$1 byte=$2 off=$3 len=$4 img
    img=$(active_image "$D" "$vdev")
    expect_ok qemu-io -f "$(image_format "$img")" \
        -c "write -P $byte $off $len" "$img"
}
# live, through the monitor, and NOT flushed: in QEMU's cache only
wl() {
    expect_ok xl qemu-monitor-command "$D" \
        "qemu-io $1 \"write -P $2 $3 $4\""
}

step "offline: s1, extents E1, s2, extents E2"
expect_ok xl snapshot-create "$CFG" s1
w xvda 1 $((1 * M)) 64k                 # one cluster
w xvda 2 $((5 * M + 4096)) 4k           # inside one cluster
w xvda 3 $((20 * M)) $((130 * 1024))    # three clusters
w xvdb 4 $((2 * M)) 128k
w xvdb 5 $((9 * M + 512)) 1k
E1A="$((1 * M))+$K $((5 * M))+$K $((20 * M))+$((3 * K))"
E1B="$((2 * M))+$((2 * K)) $((9 * M))+$K"
expect_ok xl snapshot-create "$D" s2
w xvda 6 $((30 * M)) 64k
w xvda 7 $((63 * M)) 1M                 # the disk's last MiB
w xvdb 8 $((10 * M)) 64k
E2A="$((30 * M))+$K $((63 * M))+$M"
E2B="$((10 * M))+$K"

step "offline: s1 -> s2, s2 -> now, s1 -> now; methods; nothing changed"
fp=$(fingerprint)
expect_extents xvda "$E1A" s1 s2
expect_eq "$(method_of xvda)" compare
expect_eq "$(jq -r '.disks[] | select(.vdev == "xvda") | .reads_data' <<<"$OUT")" \
    true
expect_eq "$(jq -r '.disks[] | select(.vdev == "xvda") | .total' <<<"$OUT")" \
    $((5 * K))
expect_extents xvdb "$E1B" s1 s2
expect_eq "$(method_of xvdb)" allocation
expect_eq "$(jq -r '.disks[] | select(.vdev == "xvdb") | .reads_data' <<<"$OUT")" \
    false
expect_extents xvda "$E2A" s2
expect_extents xvdb "$E2B" s2 now
expect_extents xvda "$E1A $E2A" s1
expect_extents xvdb "$E1B $E2B" s1 now
expect_unchanged "$fp" "snapshot-diff offline"

step "offline: human output, --verbose, --disk"
expect_ok xl snapshot-diff "$D" s1 s2
expect_match "$OUT" "^xvda: 3 extents, 320.0 KiB of 64.0 MiB changed from s1 to s2 \(compare: guest data read\)"
expect_match "$OUT" "xvdb: 2 extents, 192.0 KiB of 32.0 MiB changed from s1 to s2 \(allocation: no guest data read\)"
expect_no_match "$OUT" "^  "
expect_ok xl snapshot-diff -v --disk xvdb "$D" s1 s2
expect_eq "$OUT" "xvdb: 2 extents, 192.0 KiB of 32.0 MiB changed from s1 to s2 (allocation: no guest data read)
  $((2 * M)) $((2 * K))
  $((9 * M)) $K"

step "offline: the same bytes rewritten: compare leaves them out, --no-data not"
w xvda 1 $((1 * M)) 64k                 # s2 holds it: a new cluster, equal
expect_extents xvda "$E2A" s2
expect_extents xvda "$((1 * M))+$K $E2A" s2 now --no-data
expect_eq "$(method_of xvda)" mapping

step "live: writes in QEMU's cache only are seen to now (the flush)"
expect_ok xl create "$CFG"
wl xvda 9 $((40 * M)) 64k
wl xvdb 9 $((12 * M)) 64k
E3A="$((40 * M))+$K"
E3B="$((12 * M))+$K"
expect_extents xvda "$E2A $E3A" s2
expect_extents xvdb "$E2B $E3B" s2
run xl qemu-monitor-command "$D" "info status"
expect_match "$OUT" "running" "QEMU runs after the diff's flush"

step "live: Ctrl-C between the flush's stop and cont: the guest runs on"
run env XL_SNAPSHOT_FAULT=diff:1:sigint "$XL" snapshot-diff "$D" s2
expect_eq "$RC" 1 "a Ctrl-C'd diff's exit status"
expect_eq "$OUT" "" "nothing on stdout"
expect_eq "$ERR" "libxl-snapshot: error: snapshot-diff interrupted: no diff, nothing changed" \
    "one line says so"
run xl qemu-monitor-command "$D" "info status"
expect_match "$OUT" "running" "QEMU runs after a Ctrl-C in the flush"
run env XL_SNAPSHOT_FAULT=diff:1:sigint "$XL" snapshot-diff --json "$D" s2
expect_eq "$RC" 1 "a Ctrl-C'd diff --json's exit status"
expect_eq "$(jq -r .error_code <<<"$OUT")" aborted "--json: the error document"
expect_match "$ERR" "^libxl-snapshot: error: snapshot-diff interrupted" \
    "--json: the line too"

step "live: s3, extents E4; s2 -> s3, s3 -> now; paused stays paused"
expect_ok xl snapshot-create "$D" s3
wl xvda 10 $((41 * M)) 64k
wl xvdb 10 $((13 * M)) 64k
E4A="$((41 * M))+$K"
E4B="$((13 * M))+$K"
expect_extents xvda "$E2A $E3A" s2 s3
expect_extents xvdb "$E2B $E3B" s2 s3
expect_extents xvda "$E4A" s3
expect_extents xvdb "$E4B" s3
expect_ok xl pause "$D"
wl xvda 11 $((42 * M)) 64k
expect_extents xvda "$E4A $((42 * M))+$K" s3
run xl qemu-monitor-command "$D" "info status"
expect_match "$OUT" "paused" "a paused guest stays paused"
expect_ok xl unpause "$D"
E4A="$E4A $((42 * M))+$K"

step "mixed: xvda internal at s3, external at s4"
expect_ok xl snapshot-create --diskspec xvda,snapshot=external \
    --diskspec xvdb,snapshot=external "$D" s4
wl xvda 12 $((43 * M)) 64k
wl xvdb 12 $((14 * M)) 64k
expect_extents xvda "$E4A $((43 * M))+$K" s3
expect_eq "$(method_of xvda)" allocation+compare
expect_extents xvda "$((43 * M))+$K" s4
expect_eq "$(method_of xvda)" allocation
expect_extents xvdb "$E4B $((14 * M))+$K" s3 now
expect_extents xvda "$E2A $E3A $E4A" s2 s4
expect_extents xvda "$E1A $E2A $E3A $E4A $((43 * M))+$K" s1

step "an internal snapshot in an overlay: s4 -> s4i, s4i -> now"
expect_ok xl snapshot-create --diskspec xvda,snapshot=internal \
    --diskspec xvdb,snapshot=no "$D" s4i
wl xvda 13 $((44 * M)) 64k
expect_extents xvda "$((43 * M))+$K" s4 s4i     # not 44M: after s4i
expect_eq "$(method_of xvda)" mapping
expect_extents xvda "$((44 * M))+$K" s4i
expect_eq "$(method_of xvda)" compare
expect_extents xvda "$((43 * M))+$K $((44 * M))+$K" s4

step "a disk not in both points"
expect_ok xl snapshot-create --diskspec xvdb,snapshot=no "$D" s5
expect_ok xl snapshot-diff --json "$D" s4 s5
expect_eq "$(jq -r '[.disks[].vdev] | join(",")' <<<"$OUT")" xvda
refused "disk xvdb is not in both s4 and s5" \
    xl snapshot-diff --disk xvdb "$D" s4 s5

step "refused: bad input, in one line, nothing changed"
refused "domain 'nodom' not found" xl snapshot-diff nodom s1
refused "domain dvm has no snapshot or checkpoint named 'nope'" xl snapshot-diff "$D" nope
refused "domain dvm has no snapshot or checkpoint named 'nope'" xl snapshot-diff "$D" s1 nope
refused "snapshot 's2' is not an ancestor of 's1': FROM must come before TO" \
    xl snapshot-diff "$D" s2 s1
refused "FROM and TO are one snapshot, 's2'" xl snapshot-diff "$D" s2 s2
refused "snapshot 's1' has no disk xvdz" xl snapshot-diff --disk xvdz "$D" s1
run xl snapshot-diff --json "$D" nope
expect_eq "$RC" 1
expect_eq "$(jq -r .error_code <<<"$OUT")" notfound "--json error document"
run xl snapshot-diff "$D"
expect_eq "$RC" 2 "a missing FROM is a usage error"
run xl snapshot-diff "$D" s1 s2 s3
expect_eq "$RC" 2 "one argument too many is a usage error"

step "a full copy since: FROM's image left the chain, refused"
expect_ok xl destroy "$D"
expect_ok xl block-copy --pivot "$D" xvdb "$IMG/xvdb-copy.qcow2" \
    --format=qcow2
refused "disk xvdb: s4's image '.*' is not in the backing chain of '.*xvdb-copy.qcow2' any more" \
    xl snapshot-diff --disk xvdb "$D" s4
refused "disk xvdb: s4's image .* any more .*: no diff \(the other disks: each alone with --disk\)" \
    xl snapshot-diff "$D" s4
expect_extents xvda "$((43 * M))+$K $((44 * M))+$K" s4 --disk xvda

step "live snapshots taken over unflushed writes: the snapshot has them"
make_vm_config fvm
D=fvm
expect_ok xl create "$CFG"
expect_ok xl snapshot-create "$D" f1
wl xvda 1 $((1 * M)) 64k
wl xvdb 1 $((3 * M)) 64k
expect_ok xl snapshot-create "$D" f2     # no diff to now before it
expect_extents xvda "$((1 * M))+$K" f1 f2
expect_extents xvdb "$((3 * M))+$K" f1 f2
expect_ok xl destroy "$D"
expect_extents xvda "$((1 * M))+$K" f1 f2

step "checkpoints, offline: c1, E1, c2, E2; method bitmap"
make_vm_config cvm
D=$CFG
# (named by its config file: checkpoint-create writes its record too)
wi() {
    expect_ok qemu-io -f qcow2 -c "write -P $1 $2 $3" "$IMG/cvm-xvda.qcow2"
}
expect_ok xl checkpoint-create "$CFG" c1
wi 1 $((2 * M)) 64k
wi 2 $((6 * M + 4096)) 4k
C1="$((2 * M))+$K $((6 * M))+$K"
expect_ok xl checkpoint-create "$CFG" c2
wi 3 $((11 * M)) 128k
C2="$((11 * M))+$((2 * K))"
expect_extents xvda "$C1" c1 c2
expect_eq "$(method_of xvda)" bitmap
expect_eq "$(jq -r '.disks[0].reads_data' <<<"$OUT")" false
expect_eq "$(jq -r '[.disks[].vdev] | join(",")' <<<"$OUT")" xvda \
    "only the disks the checkpoints cover (xvda: the qcow2 one)"
expect_extents xvda "$C1 $C2" c1
expect_extents xvda "$C2" c2 now
expect_no_match "$(ls "$RUN")" "diff-" "no socket left in the run dir"
if command -v nbdinfo >/dev/null; then
    # the same bitmap read by another NBD client (libnbd's nbdinfo)
    expect_ok qemu-nbd --fork -r -f qcow2 -k "$T/ref.sock" -x ref -B c2 \
        "$IMG/cvm-xvda.qcow2"
    expect_ok nbdinfo --map=qemu:dirty-bitmap:c2 \
        "nbd+unix:///ref?socket=$T/ref.sock"
    expect_eq "$(awk '$3 == 1 {printf "%s%s+%s", s, $1, $2; s = " "}' <<<"$OUT")" \
        "$C2" "nbdinfo --map of bitmap c2"
fi

step "checkpoints across an external snapshot (the bitmap carried up)"
expect_ok xl snapshot-create --diskspec xvda,snapshot=external \
    --diskspec xvdb,snapshot=external "$CFG" x1
D=cvm
w xvda 4 $((12 * M)) 64k
C3="$((12 * M))+$K"
expect_extents xvda "$C1 $C2 $C3" c1
expect_extents xvda "$C2 $C3" c2

step "checkpoints, live: E4 (in QEMU only), c3 live, E5"
expect_ok xl create "$CFG"
D=cvm
wl xvda 5 $((13 * M)) 64k
C4="$((13 * M))+$K"
expect_extents xvda "$C2 $C3 $C4" c2
expect_ok xl checkpoint-create "$D" c3
wl xvda 6 $((14 * M)) 64k
C5="$((14 * M))+$K"
expect_extents xvda "$C5" c3
expect_extents xvda "$C2 $C3 $C4" c2 c3
expect_extents xvda "$C1" c1 c2
run xl qemu-monitor-command "$D" "info status"
expect_match "$OUT" "running" "the guest runs on"
expect_no_match "$(ls "$RUN")" "diff-" "no socket left in the run dir"

step "checkpoints, live: killed with the export up; Ctrl-C; QEMU killed"
run env XL_SNAPSHOT_FAULT=diff:1 "$XL" snapshot-diff "$D" c3
expect_eq "$RC" 86 "the crash point"
expect_extents xvda "$C5" c3          # what it left is cleaned up first
expect_no_match "$(ls "$RUN")" "diff-" "no socket left in the run dir"
run env XL_SNAPSHOT_FAULT=diff:1:sigint "$XL" snapshot-diff "$D" c3
[ "$RC" != 0 ] || fail_run "the Ctrl-C did not end the diff"
expect_extents xvda "$C5" c3
run xl qemu-monitor-command "$D" "info status"
expect_match "$OUT" "running" "the guest runs on"

step "checkpoints: refused"
refused "checkpoint 'c3' is not older than 'c2': FROM must come before TO" \
    xl snapshot-diff "$D" c3 c2
refused "FROM and TO are one checkpoint, 'c2'" xl snapshot-diff "$D" c2 c2
refused "'x1' is a snapshot and 'c3' a checkpoint" \
    xl snapshot-diff "$D" x1 c3
refused "has no snapshot or checkpoint named 'nope'" \
    xl snapshot-diff "$D" c1 nope

step "checkpoints: QEMU killed during the read; then the bitmaps in-use: refused"
run env XL_SNAPSHOT_FAULT=diff:1:killqemu "$XL" snapshot-diff "$D" c3
expect_eq "$RC" 1 "a diff whose QEMU died"
expect_eq "$(grep -vc "fault injected" <<<"$ERR")" 1 "one line: $ERR"
for ((i = 0; i < 50; i++)); do runtime_pid "$D" >/dev/null || break; sleep 0.1; done
for ((i = 0; i < 50; i++)); do runtime_pid "$D" >/dev/null || break; sleep 0.1; done
D=$CFG
run xl snapshot-diff "$D" c3
expect_eq "$RC" 1 "a diff from an untrusted bitmap"
expect_match "$ERR" "checkpoint c3's bitmaps cannot be trusted" "says why"
D=dvm

step "revert to an internal snapshot a later external one froze: diff from it"
# the revert copies s1's state out into a new image (no backing here):
# the diff compares that copy with the tag, not "not in the chain"
make_vm_config rvm
D=rvm
expect_ok qemu-io -f qcow2 -c "write -P 7 $((2 * M)) 64k" "$IMG/rvm-xvda.qcow2"
expect_ok xl create "$CFG"
expect_ok xl snapshot-create "$D" r1
expect_ok xl snapshot-create --diskspec xvda,snapshot=external "$D" r2
expect_ok xl snapshot-revert "$D" r1
wl xvda 1 $((1 * M)) 64k
wl xvda 7 $((2 * M)) 64k                      # the same bytes again
expect_extents xvda "$((1 * M))+$K" r1
expect_eq "$(method_of xvda)" compare
expect_extents xvda "$((1 * M))+$K $((2 * M))+$K" r1 --no-data
expect_ok xl snapshot-create "$D" r3
expect_extents xvda "$((1 * M))+$K" r1 r3

step "--json: the domain's name and uuid, whatever named it"
run xl list
domid=$(awk '$1 == "rvm" { print $2 }' <<<"$OUT")
expect_match "$domid" '^[0-9]+$' "rvm's domid"
expect_ok xl snapshot-diff --json "$domid" r1 r3
expect_eq "$(jq -r .domain <<<"$OUT")" rvm "the name, not the id"
expect_eq "$(jq -r .uuid <<<"$OUT")" "$(domain_uuid "$D")" "its uuid"

step "FROM == TO refused for now too; an empty --disk"
expect_ok xl snapshot-create "$D" now
refused "FROM and TO are one point, now" xl snapshot-diff "$D" now now
expect_ok xl snapshot-diff "$D" now          # snapshot 'now' to now
run xl snapshot-diff --disk= "$D" r1
expect_eq "$RC" 2 "an empty --disk is a usage error"
expect_eq "$(wc -l <<<"$ERR")" 1 "in one line: $ERR"

step "--disk: another disk's block job does not matter"
expect_ok xl snapshot-create --diskspec xvda,snapshot=external \
    --diskspec xvdb,snapshot=external "$D" r4
wl xvdb 3 $((5 * M)) 64k
expect_ok xl block-commit --active --bandwidth 2 --async "$D" xvda
expect_extents xvdb "$((5 * M))+$K" r4 --disk xvdb
expect_error "disk xvda of domain rvm is in block job" \
    xl snapshot-diff --disk xvda "$D" r4
expect_error "disk xvda of domain rvm is in block job" \
    xl snapshot-diff "$D" r4
expect_ok xl block-job --abort "$D" xvda
expect_ok xl destroy "$D"

step "extended L2 (subclusters): the mapping only, and said so"
make_vm_config xvm
D=xvm
expect_ok qemu-img create -q -f qcow2 -o extended_l2=on \
    "$IMG/xvm-xvda.qcow2" 64M
expect_ok qemu-io -f qcow2 -c "write -P 5 $((1 * M)) 64k" "$IMG/xvm-xvda.qcow2"
expect_ok xl snapshot-create "$CFG" x1
w xvda 5 $((1 * M)) 64k                       # the same bytes again
expect_extents xvda "$((1 * M))+$K" x1
expect_eq "$(method_of xvda)" mapping "no data compared: not 'compare'"
expect_eq "$(jq -r '.disks[0].reads_data' <<<"$OUT")" false
D=dvm

step "qemu-img check"
check_images
echo "PASS: $TEST_NAME"
