#!/bin/bash
# test-101-backup.sh - xl backup-begin / backup-info / backup-end, push
# and pull, full and incremental, on a running domain with two qcow2
# disks (and a shut-off one)
#
#  - restore is exact: a full push with checkpoint c1, then two
#    incrementals (--incremental c1 --checkpoint c2, then c2 -> c3) with
#    data written between; each incremental's image holds exactly the
#    written clusters (qemu-img map), its backing file is the previous
#    backup, `qemu-img info --backing-chain` opens the chain; each chain
#    restored (qemu-img convert) is identical (qemu-img compare) to the
#    disk as it was at its backup, for both disks;
#  - pull, read with real NBD clients: a full pull (qemu-img convert of
#    nbd+unix:, nbdcopy) is the disks as they were at backup-begin,
#    whatever the guest writes after; an incremental pull since c3 shows
#    exactly the written extent as qemu:dirty-bitmap:c3 (nbdinfo --map);
#    backup-end keeps its checkpoint c4, backup-end --abort undoes c5;
#    the fleecing overlays are gone after the end; xl destroy ends a
#    pull (one warning, undone); a pull since a checkpoint of one disk
#    lists the other in full_disks (said), the first has its bitmap;
#  - Ctrl-C during a push (slowed with --bandwidth): exit 1, the images
#    and the new checkpoint are gone, and the next incremental since the
#    last checkpoint is still exact;
#  - kill -9 of xl during a push: backup-info shows it, backup-end waits
#    for it and records it (restore exact); --async + backup-end; kill
#    -9 then backup-end --abort: undone; backup-end (--abort or not)
#    of a push another xl waits for, without the lock it holds;
#  - QEMU killed during a push, or its target file system full: the
#    command fails (exit 1) with one line, its images, directory and
#    checkpoint are gone at once; QEMU's refusal names its domain;
#  - QEMU killed during a write burst: the next incremental refuses in
#    one line (bitmap inconsistent), --fallback-full makes a full backup
#    and says so (restore exact);
#  - offline (shut off): a full push with qemu-img convert, with a
#    checkpoint; an incremental (in a qemu-storage-daemon) holds exactly
#    what was written on the shut-off disk since, restores exact, makes
#    its checkpoint; Ctrl-C of one undoes it, no daemon left;
#  - crash points XL_SNAPSHOT_FAULT=backup:1..3, then backup-end: undone
#    (1) or recorded (2, 3), the next incremental exact;
#  - incrementals across an external snapshot (the bitmaps of both
#    layers), an active commit and a block-copy --pivot hold exactly the
#    clusters written since, and restore exact;
#  - refused in one line, nothing changed (no target directory left):
#    unknown domain, an image in the target exists, unknown checkpoint,
#    a backup already running, --nbd with --async, a bad NBD address, a
#    push since a checkpoint no push was made with;
#  - a deleted checkpoint's name reused, a previous backup moved away:
#    the push incremental refuses, --fallback-full makes a full one
#    (no backing file, restore exact) and the next night goes on;
# snapshot-check at the end reports only the checkpoints the crash made
# untrustworthy.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

B=$T/backups
mkdir -p "$B"
for tool in nbdinfo nbdcopy; do
    command -v "$tool" >/dev/null 2>&1 ||
        skip "$tool not found (Debian package libnbd-bin)"
done

qemu-img create -q -f qcow2 "$IMG/bk-xvda.qcow2" 64M
qemu-img create -q -f qcow2 "$IMG/bk-xvdb.qcow2" 32M
CFG=$T/bk.cfg
cat > "$CFG" <<EOF
name = "bk"
memory = 64
disk = [ 'format=qcow2,vdev=xvda,access=rw,target=$IMG/bk-xvda.qcow2',
         'format=qcow2,vdev=xvdb,access=rw,target=$IMG/bk-xvdb.qcow2' ]
EOF

# save N: the disks as they are now (flushed by write_pattern), raw
save() {
    local v u=()
    any_running && u=(-U)
    for v in xvda xvdb; do
        qemu-img convert "${u[@]}" -O raw "$(active_image bk "$v")" \
            "$T/at-$1-$v.raw" || fail "cannot save $v"
    done
}

# expect_restore DIR N: DIR's chain of each disk, restored, is state N
expect_restore() {
    local v
    for v in xvda xvdb; do
        run qemu-img convert -O raw "$1/$v.qcow2" "$T/restored.raw"
        [ "$RC" -eq 0 ] || fail_run "restore of $1/$v.qcow2"
        run qemu-img compare -f raw -F raw "$T/restored.raw" "$T/at-$2-$v.raw"
        [ "$RC" -eq 0 ] || fail_run "$1/$v.qcow2 restored is not the disk at backup $2"
    done
    rm -f "$T/restored.raw"
}

# expect_allocated IMAGE "START:LEN ...": IMAGE's own data clusters
# (adjacent extents joined)
expect_allocated() {
    local got
    got=$(qemu-img map -U --output=json "$1" |
          jq -r '[.[] | select(.data and .depth == 0) | [.start, .length]]
                 | reduce .[] as $e ([]; if length > 0 and
                       (.[-1][0] + .[-1][1]) == $e[0]
                     then .[-1][1] += $e[1] else . + [$e] end)
                 | map("\(.[0]):\(.[1])") | join(" ")')
    expect_eq "$got" "$2" "the clusters $1 holds"
}

# wait_running DIR: the push into DIR is under way (its copies run)
wait_running() {
    local i
    for ((i = 0; i < 200; i++)); do
        run xl backup-info --json bk
        [ "$(jq -r '"\(.target) \(.state)"' <<<"$OUT" 2>/dev/null)" = "$1 running" ] &&
            return 0
        sleep 0.05
    done
    fail "the push into $1 did not start" "$(run_context)"
}

expect_checkpoints() {
    expect_ok xl checkpoint-list bk
    expect_eq "$(awk 'NR > 1 {print $1}' <<<"$OUT" | xargs)" "$1" "checkpoints"
}

expect_ok xl create "$CFG"
write_disks bk 0x11

step "full push with checkpoint c1, then two incrementals"
save 0
expect_ok xl backup-begin bk --target "$B/full" --checkpoint c1
expect_match "$OUT" "Backup of bk to $B/full complete" "backup-begin"
write_pattern bk xvda 0x22 4M 1M
write_pattern bk xvdb 0x23 8M 64K
save 1
expect_ok xl backup-begin bk --target "$B/inc1" --incremental c1 --checkpoint c2
write_pattern bk xvda 0x33 10M 128K
save 2
expect_ok xl backup-begin bk --target "$B/inc2" --incremental c2 --checkpoint c3
expect_allocated "$B/inc1/xvda.qcow2" "4194304:1048576"
expect_allocated "$B/inc1/xvdb.qcow2" "8388608:65536"
expect_allocated "$B/inc2/xvda.qcow2" "10485760:131072"
expect_allocated "$B/inc2/xvdb.qcow2" ""
run qemu-img info -U --backing-chain --output=json "$B/inc2/xvda.qcow2"
expect_eq "$(jq -r '[.[].filename] | join(" ")' <<<"$OUT")" \
    "$B/inc2/xvda.qcow2 $B/inc1/xvda.qcow2 $B/full/xvda.qcow2" "the chain"
expect_restore "$B/full" 0
expect_restore "$B/inc1" 1
expect_restore "$B/inc2" 2
check_images "$B/inc2"
expect_checkpoints "c1 c2 c3"
expect_ok xl backup-info --json bk
expect_eq "$(jq -r '.state, .incremental, .checkpoint, (.jobs | length)' <<<"$OUT" | xargs)" \
    "completed c2 c3 2" "backup-info --json"

step "pull: full, read with qemu-img and nbdcopy while the guest writes"
save 3
SOCK=$T/nbd.sock
expect_ok xl backup-begin bk --nbd "$SOCK"
expect_ok xl backup-info bk
expect_match "$OUT" "State: +ready" "backup-info of a pull"
write_pattern bk xvda 0x44 0 2M
write_pattern bk xvdb 0x45 0 2M
run qemu-img convert -O raw "nbd+unix:///xvda?socket=$SOCK" "$T/pull-xvda.raw"
[ "$RC" -eq 0 ] || fail_run "qemu-img convert from the NBD export"
run qemu-img compare -f raw -F raw "$T/pull-xvda.raw" "$T/at-3-xvda.raw"
[ "$RC" -eq 0 ] || fail_run "the pulled xvda is not the disk at backup-begin"
run nbdcopy "nbd+unix:///xvdb?socket=$SOCK" "$T/pull-xvdb.raw"
[ "$RC" -eq 0 ] || fail_run "nbdcopy from the NBD export"
run qemu-img compare -f raw -F raw "$T/pull-xvdb.raw" "$T/at-3-xvdb.raw"
[ "$RC" -eq 0 ] || fail_run "the pulled xvdb is not the disk at backup-begin"
expect_ok xl backup-end bk
expect_no_file "$IMG/bk-xvda.backup-xvda.qcow2"
[ -e "$SOCK" ] && fail "the NBD socket is left after backup-end"
expect_checkpoints "c1 c2 c3"

step "pull: incremental since c3, the dirty bitmap over NBD"
write_pattern bk xvda 0x46 20M 64K
save 4
expect_ok xl backup-begin bk --nbd "$SOCK" --incremental c3 --checkpoint c4
write_pattern bk xvda 0x47 20M 1M
run nbdinfo --map=qemu:dirty-bitmap:c3 "nbd+unix:///xvda?socket=$SOCK"
[ "$RC" -eq 0 ] || fail_run "nbdinfo --map"
# (the full pull's writes, then this one)
expect_eq "$(awk '$4 == "dirty" {print $1 ":" $2}' <<<"$OUT" | xargs)" \
    "0:2097152 20971520:65536" "the dirty extents of xvda since c3"
run nbdinfo --map=qemu:dirty-bitmap:c3 "nbd+unix:///xvdb?socket=$SOCK"
expect_eq "$(awk '$4 == "dirty" {print $1 ":" $2}' <<<"$OUT" | xargs)" \
    "0:2097152" "the dirty extents of xvdb since c3"
run qemu-img convert -O raw "nbd+unix:///xvda?socket=$SOCK" "$T/pull-xvda.raw"
run qemu-img compare -f raw -F raw "$T/pull-xvda.raw" "$T/at-4-xvda.raw"
[ "$RC" -eq 0 ] || fail_run "the incremental pull's view of xvda"
expect_ok xl backup-end bk
expect_checkpoints "c1 c2 c3 c4"
expect_ok xl backup-begin bk --nbd "$SOCK" --incremental c4 --checkpoint c5
expect_ok xl backup-end --abort bk
expect_match "$OUT" "aborted" "backup-end --abort of a pull"
expect_checkpoints "c1 c2 c3 c4"
expect_no_file "$IMG/bk-xvda.backup-xvda.qcow2"
rm -f "$T"/pull-*.raw
# xl destroy ends a pull: one warning, its overlays, job records and
# checkpoint gone at once
expect_ok xl backup-begin bk --nbd "$SOCK" --incremental c4 --checkpoint c5
expect_ok xl destroy bk
expect_match "$ERR" "warning: domain bk: the pull backup \($SOCK\) ended with its QEMU" "xl destroy during a pull"
expect_eq "$(grep -c . <<<"$ERR")" 1 "the lines of xl destroy during a pull"
expect_no_file "$IMG/bk-xvda.backup-xvda.qcow2"
expect_no_file "$IMG/bk-xvdb.backup-xvdb.qcow2"
expect_checkpoints "c1 c2 c3 c4"
expect_ok xl backup-info --json bk
expect_eq "$(jq -r .state <<<"$OUT")" failed "the pull after xl destroy"
expect_ok xl create "$CFG"
# no job record left: a snapshot command may take the disk
run xl block-job bk xvda
expect_no_match "$OUT$ERR" "backup" "xvda's block job after xl destroy"
# a pull since a checkpoint of xvda only: xvdb is read whole (said,
# listed in full_disks), xvda has its dirty bitmap
expect_ok xl checkpoint-create --disk xvda bk cx
expect_ok xl backup-begin bk --nbd "$SOCK" --incremental cx
expect_match "$ERR" "disk xvdb is not in checkpoint 'cx': it is exported with no qemu:dirty-bitmap context" "a pull of a disk cx does not cover"
expect_ok xl backup-info --json bk
expect_eq "$(jq -c .full_disks <<<"$OUT")" '["xvdb"]' "full_disks"
run nbdinfo --map=qemu:dirty-bitmap:cx "nbd+unix:///xvda?socket=$SOCK"
[ "$RC" -eq 0 ] || fail_run "nbdinfo --map of xvda"
expect_ok xl backup-end bk
expect_ok xl checkpoint-delete bk cx

step "Ctrl-C during a push: undone, the next incremental exact"
write_pattern bk xvda 0x55 0 4M
"$XL" backup-begin bk --target "$B/int" --incremental c3 --checkpoint c6 \
    --bandwidth 1 >"$T/int.out" 2>"$T/int.err" &
pid=$!
wait_running "$B/int"
kill -INT "$pid"
wait "$pid"
rc=$?
expect_eq "$rc" 1 "exit status after Ctrl-C"
grep -q "cancelled" "$T/int.err" || fail "Ctrl-C: no 'cancelled'" "$(cat "$T/int.err")"
expect_no_file "$B/int/xvda.qcow2"
expect_no_file "$B/int/xvdb.qcow2"
expect_checkpoints "c1 c2 c3 c4"
expect_ok xl backup-info bk
expect_match "$OUT" "State: +cancelled" "backup-info after Ctrl-C"
save 5
# since c3 (inc2's checkpoint, so inc3 is built on inc2): the pulls'
# writes and the one above
expect_ok xl backup-begin bk --target "$B/inc3" --incremental c3 --checkpoint c6
expect_allocated "$B/inc3/xvda.qcow2" "0:4194304 20971520:1048576"
expect_restore "$B/inc3" 5

step "kill -9 of xl during a push: backup-end records it; --async"
write_pattern bk xvdb 0x66 1M 6M
save 6
"$XL" backup-begin bk --target "$B/killed" --incremental c6 --checkpoint c7 \
    --bandwidth 1 >/dev/null 2>&1 &
pid=$!
wait_running "$B/killed"
kill -9 "$pid"
wait "$pid" 2>/dev/null
expect_ok xl backup-info bk
expect_match "$OUT" "State: +running" "backup-info after kill -9"
refused "a backup of domain bk is running already" \
    xl backup-begin bk --target "$B/other"
expect_ok xl backup-end bk
expect_restore "$B/killed" 6
expect_checkpoints "c1 c2 c3 c4 c6 c7"
"$XL" backup-begin bk --target "$B/killed2" --bandwidth 1 >/dev/null 2>&1 &
pid=$!
wait_running "$B/killed2"
kill -9 "$pid"
wait "$pid" 2>/dev/null
expect_ok xl backup-end --abort bk
expect_no_file "$B/killed2/xvda.qcow2"
expect_ok xl backup-begin bk --target "$B/async" --async
expect_match "$OUT" "started" "--async"
expect_ok xl backup-end bk
expect_restore "$B/async" 6

step "backup-end of a push another xl waits for (no lock needed)"
"$XL" backup-begin bk --target "$B/w1" --bandwidth 1 >"$T/w.out" 2>"$T/w.err" &
pid=$!
wait_running "$B/w1"
run env XL_SNAPSHOT_LOCK_TIMEOUT=1 "$XL" backup-end --abort bk
expect_eq "$RC" 0 "backup-end --abort"
expect_match "$OUT" "aborted" "backup-end --abort"
expect_eq "$ERR" "" "backup-end --abort's stderr"
wait "$pid"
expect_eq "$?" 1 "the waiting backup-begin after another's --abort"
grep -q "cancelled" "$T/w.err" || fail "no 'cancelled'" "$(cat "$T/w.err")"
expect_no_file "$B/w1/xvda.qcow2"
write_pattern bk xvdb 0x67 20M 3M
save w2
"$XL" backup-begin bk --target "$B/w2" --incremental c7 --bandwidth 1 \
    >/dev/null 2>&1 &
pid=$!
wait_running "$B/w2"
run env XL_SNAPSHOT_LOCK_TIMEOUT=1 "$XL" backup-end bk
[ "$RC" -eq 0 ] || fail_run "backup-end while backup-begin waits"
wait "$pid"
expect_eq "$?" 0 "the waiting backup-begin"
expect_restore "$B/w2" w2

step "refusals: one line, nothing changed"
refused "domain 'nosuch' not found" xl backup-begin nosuch --target "$B/x"
refused "$B/async/xvda.qcow2' exists already" xl backup-begin bk --target "$B/async"
refused "has no checkpoint 'nope'" xl backup-begin bk --target "$B/x" --incremental nope
refused "invalid NBD address" xl backup-begin bk --nbd nope
refused "exclude|--async" xl backup-begin bk --nbd "$SOCK" --async
refused "has no disk 'xvdz'" xl backup-begin bk --target "$B/x" --disk xvdz
refused "already has a checkpoint named 'c1'" \
    xl backup-begin bk --target "$B/x" --checkpoint c1
# c4 was made by a pull: a push since it has no image to build on
refused "since 'c4': no push backup of disk xvd[ab] was made with it" \
    xl backup-begin bk --target "$B/x" --incremental c4
# the target directories it made are gone with the refusals
expect_no_file "$B/x"
# QEMU's refusal names the domain's QEMU (not "domain 0"), in one line
expect_error "^libxl-snapshot: error: QEMU \(domain [1-9][0-9]*\) refused: Failed to bind socket" \
    xl backup-begin bk --nbd "$T/nodir/sock"
expect_eq "$(wc -l <<<"$ERR")" 1 "the lines of a refused pull"
# a full target file system: one line, the disk that failed, no
# directory left
F=$T/full
if mount_tmpfs "$F" 4M; then
    at_cleanup "umount '$F' 2>/dev/null"
    run xl backup-begin bk --target "$F/bk"
    expect_eq "$RC" 1 "a push into a full file system"
    expect_match "$ERR" "^libxl-snapshot: error: the backup of domain bk failed: disk xvd[ab]: No space left on device; what it made is removed$" \
        "a push into a full file system"
    expect_eq "$(wc -l <<<"$ERR")" 1 "the lines of a push into a full file system"
    expect_no_file "$F/bk"
    umount "$F"
fi

step "QEMU killed during a push, then during a write burst"
# the bitmaps persist across a clean stop (the images hold them), and
# are in use while a QEMU has them open
expect_ok xl destroy bk
expect_ok xl create "$CFG"
# during a push: the command fails, what it made is removed at once
write_pattern bk xvda 0x68 24M 4M
"$XL" backup-begin bk --target "$B/qk" --incremental c7 --checkpoint kq \
    --bandwidth 1 >/dev/null 2>"$T/qk.err" &
pid=$!
wait_running "$B/qk"
kill -9 "$(runtime_pid bk)"
wait "$pid"
expect_eq "$?" 1 "backup-begin whose QEMU was killed"
grep -q "QEMU stopped during the backup" "$T/qk.err" ||
    fail "no reason given" "$(cat "$T/qk.err")"
expect_eq "$(wc -l <"$T/qk.err")" 1 "the lines of a push whose QEMU was killed"
expect_no_file "$B/qk"
expect_no_file "$B/qk/xvda.qcow2"
expect_no_file "$B/qk/xvdb.qcow2"
expect_checkpoints "c1 c2 c3 c4 c6 c7"
expect_ok xl create "$CFG"
xl qemu-monitor-command bk 'qemu-io xvda "write -P 0x77 16M 16M"' >/dev/null 2>&1 &
wpid=$!
sleep 0.05
kill -9 "$(runtime_pid bk)"
wait "$wpid" 2>/dev/null
sleep 0.3
expect_ok xl create "$CFG"
refused "incrementally since 'c7'.*(inconsistent|in-use)" \
    xl backup-begin bk --target "$B/after" --incremental c7
save 7
# the nightly command after a crash: a full backup and a new checkpoint
expect_ok xl backup-begin bk --target "$B/after" --incremental c7 \
    --checkpoint c8 --fallback-full
expect_match "$ERR" "full backup instead" "--fallback-full says so"
expect_ok xl backup-info --json bk
expect_eq "$(jq -r .fell_back <<<"$OUT")" true "fell_back"
expect_restore "$B/after" 7
expect_allocated "$B/after/xvdb.qcow2" "0:7340032 8388608:65536 20971520:3145728"
write_pattern bk xvdb 0x78 12M 64K
save 8
expect_ok xl backup-begin bk --target "$B/after2" --incremental c8
expect_allocated "$B/after2/xvdb.qcow2" "12582912:65536"
expect_restore "$B/after2" 8

step "offline: full push with a checkpoint, incremental refused"
expect_ok xl destroy bk
save 9
expect_ok xl backup-begin bk --target "$B/off" --checkpoint c9
expect_restore "$B/off" 9
expect_checkpoints "c1 c2 c3 c4 c6 c7 c8 c9"
# an offline incremental (a qemu-storage-daemon of xl's): what qemu-io
# wrote on the shut-off disk since c9, recorded by c9's bitmap
write_pattern bk xvda 0x99 52M 128K
save 10
expect_ok xl backup-begin bk --target "$B/off2" --incremental c9 --checkpoint c10
expect_allocated "$B/off2/xvda.qcow2" "54525952:131072"
expect_allocated "$B/off2/xvdb.qcow2" ""
expect_restore "$B/off2" 10
expect_checkpoints "c1 c2 c3 c4 c6 c7 c8 c9 c10"
pgrep -f "qemu-storage-daemon.*$RUN" >/dev/null &&
    fail "the backup's qemu-storage-daemon is left running"
# Ctrl-C of an offline incremental: undone
write_pattern bk xvdb 0x9a 0 8M
"$XL" backup-begin bk --target "$B/off3" --incremental c10 --checkpoint c11 \
    --bandwidth 1 >/dev/null 2>"$T/off3.err" &
pid=$!
wait_running "$B/off3"
kill -INT "$pid"
wait "$pid"
expect_eq "$?" 1 "exit status of an offline incremental after Ctrl-C"
expect_no_file "$B/off3/xvdb.qcow2"
expect_checkpoints "c1 c2 c3 c4 c6 c7 c8 c9 c10"
pgrep -f "qemu-storage-daemon.*$RUN" >/dev/null &&
    fail "the backup's qemu-storage-daemon is left running after Ctrl-C"
# the checkpoints before the crash are reported (their bitmaps were in
# use when QEMU died), and nothing else
run xl snapshot-check bk
expect_eq "$RC" 1 "snapshot-check after the crash"
expect_eq "$(grep -c "is inconsistent on" <<<"$OUT")" 12 "inconsistent bitmaps"
expect_match "$OUT" "bk: 12 problems" "snapshot-check"
expect_no_match "$OUT" "checkpoint 'c[89]'" "snapshot-check of the new checkpoints"
check_images

step "crash points backup:1..3, then the next command"
expect_ok xl create "$CFG"
for n in 1 2 3; do
    write_pattern bk xvda "0x8$n" 30M 1M
    save "crash$n"
    run env XL_SNAPSHOT_FAULT="backup:$n" "$XL" backup-begin bk \
        --target "$B/crash$n" --incremental c10 --checkpoint "k$n"
    expect_eq "$RC" 86 "the crash at backup:$n"
    run xl backup-end bk
    if [ "$n" = 1 ]; then
        # nothing had started: undone
        expect_eq "$RC" 1 "backup-end after the crash at backup:1"
        expect_no_file "$B/crash1/xvda.qcow2"
        expect_checkpoints "c1 c2 c3 c4 c6 c7 c8 c9 c10"
        run xl backup-begin bk --target "$B/crash$n" --incremental c10 \
            --checkpoint "k$n"
    fi
    [ "$RC" -eq 0 ] || fail_run "backup after the crash at backup:$n"
    expect_allocated "$B/crash$n/xvda.qcow2" "31457280:1048576"
    expect_restore "$B/crash$n" "crash$n"
    # the next one starts at k<n>: the images say so
    expect_ok xl checkpoint-list bk
    expect_match "$OUT" "^k$n " "checkpoint k$n after the crash at backup:$n"
    expect_ok xl checkpoint-delete bk "k$n"
done

step "incrementals across an external snapshot, a commit, a block-copy"
expect_ok xl snapshot-create --diskspec xvda,snapshot=external \
    --diskspec xvdb,snapshot=external bk s1
write_pattern bk xvda 0x91 40M 1M
save e1
expect_ok xl backup-begin bk --target "$B/e1" --incremental c10 --checkpoint e1
# since c10: the Ctrl-C'd one's write, the crash points' (k1..k3 merged
# into c10) and this
expect_allocated "$B/e1/xvda.qcow2" "31457280:1048576 41943040:1048576"
expect_allocated "$B/e1/xvdb.qcow2" "0:8388608"
expect_restore "$B/e1" e1
expect_ok xl block-commit --active --pivot bk xvda
write_pattern bk xvda 0x92 44M 64K
save e2
expect_ok xl backup-begin bk --target "$B/e2" --incremental e1 --checkpoint e2
expect_allocated "$B/e2/xvda.qcow2" "46137344:65536"
expect_allocated "$B/e2/xvdb.qcow2" ""
expect_restore "$B/e2" e2
expect_ok xl block-copy --pivot bk xvda "$IMG/bk-copy.qcow2"
write_pattern bk xvda 0x93 48M 64K
save e3
expect_ok xl backup-begin bk --target "$B/e3" --incremental e2
expect_allocated "$B/e3/xvda.qcow2" "50331648:65536"
expect_restore "$B/e3" e3

step "a deleted checkpoint's name reused; the previous backup moved"
expect_ok xl backup-begin bk --target "$B/n1" --checkpoint nightly
expect_ok xl checkpoint-delete bk nightly
write_pattern bk xvda 0xa1 4M 64K
expect_ok xl checkpoint-create bk nightly
write_pattern bk xvda 0xa2 8M 64K
save n2
# n1 was taken at the old 'nightly', not at this one
refused "since 'nightly': no push backup of disk xvd[ab] was made" \
    xl backup-begin bk --target "$B/n2" --incremental nightly
expect_no_file "$B/n2"
expect_ok xl backup-begin bk --target "$B/n2" --incremental nightly \
    --fallback-full --checkpoint n2
expect_match "$ERR" "a full backup instead" "--fallback-full says so"
expect_ok xl backup-info --json bk
expect_eq "$(jq -r .fell_back <<<"$OUT")" true "fell_back"
expect_eq "$(qemu-img info -U --output=json "$B/n2/xvda.qcow2" |
             jq -r '.["backing-filename"] // "none"')" none "n2's backing"
expect_restore "$B/n2" n2
mv "$B/n2" "$B/n2.moved"
write_pattern bk xvdb 0xa3 4M 64K
save n3
refused "since 'n2': '$B/n2/xvd[ab].qcow2', the backup of disk xvd[ab] made with it, is gone" \
    xl backup-begin bk --target "$B/n3" --incremental n2 --checkpoint n3
expect_ok xl backup-begin bk --target "$B/n3" --incremental n2 \
    --fallback-full --checkpoint n3
expect_match "$ERR" "a full backup instead" "--fallback-full says so"
expect_restore "$B/n3" n3
write_pattern bk xvdb 0xa4 8M 64K
save n4
expect_ok xl backup-begin bk --target "$B/n4" --incremental n3
expect_allocated "$B/n4/xvdb.qcow2" "8388608:65536"
expect_restore "$B/n4" n4

step "QEMU killed, then offline: checkpoint-create, --fallback-full"
# the newest checkpoint's bitmap (n3) is left in-use: not disabled
kill -9 "$(runtime_pid bk)"
sleep 0.3
expect_ok xl checkpoint-create bk o0
save o1
expect_ok xl backup-begin bk --target "$B/o1" --incremental n3 \
    --fallback-full --checkpoint o1
expect_match "$ERR" "a full backup instead" "--fallback-full says so"
expect_restore "$B/o1" o1
expect_ok xl create "$CFG"
write_pattern bk xvda 0xb1 12M 64K
save o2
expect_ok xl backup-begin bk --target "$B/o2" --incremental o1
expect_allocated "$B/o2/xvda.qcow2" "12582912:65536"
expect_restore "$B/o2" o2
expect_ok xl destroy bk

step "--fallback-full on a full backup: a full backup (the nightly command as cron runs it)"
expect_ok xl create "$CFG"
save f1
expect_ok xl backup-begin bk --target "$B/f1" --fallback-full --checkpoint f1
expect_no_match "$ERR" "error" "a full push with --fallback-full"
expect_restore "$B/f1" f1
expect_ok xl destroy bk
