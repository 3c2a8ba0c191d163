#!/bin/bash
# test-92-revert-failure.sh - a revert that fails part-way (issue 14, 3)
#
# The state dir is a small tmpfs.  A running 2-disk domain (xvda qcow2,
# internal; xvdb raw, external) reverts to k1 with the file system
# filled to one free page: the journal is written (before any disk is
# touched), the disks are reverted (xvda in place: not undoable), and
# the records cannot be saved.  The revert must:
#  - fail with rc 1, leave its journal and the domain stopped (never
#    half-reverted and running as if nothing happened);
#  - snapshot-check: exit 1, naming the pending revert;
#  - snapshot-recover while the file system is still full: fail, the
#    journal still there;
#  - once there is room: snapshot-recover finishes the revert (the domain
#    runs on k1 on both disks), and snapshot-check is clean.
# Then the same with the disks of a shut-off domain, and a revert that
# fails before any internal revert ran (only an external disk): wholly
# old, no journal.
#
# And a live memory checkpoint (issue 14, E) whose memory image (outside
# the state dir) is complete but whose record cannot be written: the
# create fails (rc 1) saying the snapshot was taken, disks and memory,
# and that the next command writes the record; snapshot-check reports
# the pending create; snapshot-recover, once there is room, records it
# with its memory image (never "not finished", never removed), and the
# checkpoint reverts: the domain runs again with the data of that
# instant.
#
# And Ctrl-C (SIGINT, raised at a fault point: no race) of a revert and
# of a create: exit 1, one line saying what it left and that
# snapshot-recover (or the next command) finishes it; it does.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

mount -t tmpfs -o size=2m,mode=0700 xlsnap-test92 "$STATE" ||
    skip "cannot mount a tmpfs (not root?)"
at_cleanup "umount -l '$STATE'"

# fill STATE up to one free page (tmpfs counts pages)
fill_state() {
    rm -f "$STATE/fill"
    dd if=/dev/zero of="$STATE/fill" bs=4k status=none 2>/dev/null
    truncate -s -4096 "$STATE/fill" || fail "cannot free a page of $STATE"
}
unfill_state() {
    rm -f "$STATE/fill"
}
journal() {
    echo "$(domain_dir vm1)/journal.libxl-json"
}

make_vm_config vm1
expect_ok xl create "$CFG"
write_disks vm1 0x11
expect_ok xl snapshot-create vm1 k1
write_disks vm1 0x22

step "running domain: the records cannot be saved after xvda was reverted"
fill_state
run xl snapshot-revert vm1 k1
[ "$RC" -eq 1 ] || fail_run "snapshot-revert with a full state dir"
expect_match "$ERR" "file system full|No space" "the cause"
expect_match "$ERR" "snapshot-recover" "what to do"
expect_file "$(journal)"
domain_running vm1 && fail "vm1 runs half-reverted"
run xl snapshot-check vm1
[ "$RC" -eq 1 ] || fail_run "snapshot-check must report the pending revert"
expect_match "$OUT$ERR" "interrupted operation \(revert\) is pending" \
    "snapshot-check"
run xl snapshot-recover vm1
[ "$RC" -ne 0 ] || fail_run "snapshot-recover with the state dir still full"
expect_file "$(journal)"

step "  room again: snapshot-recover finishes it"
unfill_state
expect_ok xl snapshot-recover vm1
expect_match "$OUT$ERR" "recovered|completed" "snapshot-recover"
expect_no_file "$(journal)"
domain_running vm1 || fail "vm1 is not running after the recovery"
expect_ok xl snapshot-current vm1
expect_eq "$OUT" k1 "current snapshot"
expect_disks vm1 0x11
expect_ok xl snapshot-check vm1

step "shut-off domain: the same, finished by the next command"
write_disks vm1 0x33
expect_ok xl destroy vm1
fill_state
run xl snapshot-revert vm1 k1
[ "$RC" -eq 1 ] || fail_run "offline snapshot-revert with a full state dir"
expect_file "$(journal)"
unfill_state
expect_ok xl snapshot-create vm1 k2     # any command finishes it first
expect_match "$ERR" "snapshot-revert to 'k1' was completed" "snapshot-create"
expect_no_file "$(journal)"
expect_ok xl snapshot-info vm1 k2
expect_match "$OUT" "[Pp]arent: *k1" "k2's parent"
expect_disks vm1 0x11
expect_ok xl snapshot-check vm1

domain_running vm1 || fail "vm1 was not started as k1 was (running)"

step "only external disks: undone, wholly old"
write_disks vm1 0x44
expect_ok xl snapshot-create --diskspec xvda,snapshot=no vm1 x1
write_disks vm1 0x55
fill_state
run xl snapshot-revert vm1 x1
[ "$RC" -eq 1 ] || fail_run "snapshot-revert to x1 with a full state dir"
unfill_state
expect_no_file "$(journal)"
domain_running vm1 || fail "vm1 was not started again on its old images"
expect_disks vm1 0x55
expect_ok xl snapshot-current vm1
expect_eq "$OUT" x1 "current snapshot (unchanged)"
expect_ok xl snapshot-check vm1
expect_ok xl snapshot-revert vm1 x1
read_pattern "$(active_image vm1 xvdb)" 0x44 0 1M
expect_ok xl snapshot-revert vm1 k1
expect_disks vm1 0x11
expect_ok xl snapshot-check vm1
step "live memory checkpoint: the memory saved, the record not written"
write_disks vm1 0x66
fill_state
# (--force: past the space guard, which would refuse it before any
# pause with the state dir this full: test-106)
run xl snapshot-create --force --memory="$T/m1.save" --live vm1 m1
[ "$RC" -eq 1 ] || fail_run "snapshot-create --memory --live, state dir full"
expect_match "$ERR" "snapshot 'm1' was taken \(disks and memory\), but its record could not be written \(the next command on the domain writes it\)" \
    "what happened, and what comes next"
expect_no_match "$ERR" "going on|not finished" "snapshot-create"
expect_file "$T/m1.save"
expect_no_file "$T/m1.save.tmp"
expect_file "$(journal)"
domain_running vm1 || fail "vm1 stopped by the failed checkpoint"
run xl snapshot-check vm1
[ "$RC" -eq 1 ] || fail_run "snapshot-check must report the pending create"
expect_match "$OUT$ERR" "interrupted operation \(create\) is pending" \
    "snapshot-check"
unfill_state
expect_ok xl snapshot-recover vm1
expect_match "$ERR" "snapshot-create of 'm1' was completed .*with its memory image" \
    "snapshot-recover"
expect_no_match "$ERR" "not finished|disk-only|error" "snapshot-recover"
expect_no_file "$(journal)"
expect_file "$T/m1.save"
expect_ok xl snapshot-info vm1 m1
expect_match "$OUT" "Memory: +$T/m1.save" "m1's memory image"
expect_ok xl snapshot-check vm1
write_disks vm1 0x77
expect_ok xl snapshot-revert vm1 m1
domain_running vm1 || fail "vm1 is not running after the revert to m1"
expect_disks vm1 0x66
expect_ok xl snapshot-check vm1

# interrupted OP: the command exited 1 with one line on stderr saying
# that OP was interrupted and that snapshot-recover finishes it
interrupted() {
    [ "$RC" -eq 1 ] || fail_run "an interrupted $1 must exit 1"
    expect_eq "$(grep -c . <<<"$ERR")" 1 "$1: lines on stderr"
    expect_match "$ERR" "^libxl-snapshot: error: $1 interrupted: .*; \`xl snapshot-recover vm1\` \(or the next command on the domain\) (finishes|completes)" \
        "$1: what the interrupt left and what finishes it"
}

step "Ctrl-C (SIGINT) of a revert: said in one line; snapshot-recover finishes it"
write_disks vm1 0x88
XL_SNAPSHOT_FAULT=revert:1:sigint run xl snapshot-revert vm1 k1
interrupted snapshot-revert
expect_file "$(journal)"
expect_ok xl snapshot-recover vm1
expect_match "$ERR" "rolled back" "snapshot-recover (before the stop)"
domain_running vm1 || fail "vm1 is not running after the rollback"
expect_disks vm1 0x88
XL_SNAPSHOT_FAULT=revert:2:sigint run xl snapshot-revert vm1 k1
interrupted snapshot-revert
expect_file "$(journal)"
domain_running vm1 && fail "vm1 runs half-reverted"
expect_ok xl snapshot-recover vm1
expect_match "$ERR" "was completed" "snapshot-recover (after the stop)"
expect_no_file "$(journal)"
domain_running vm1 || fail "vm1 is not running after the recovery"
expect_disks vm1 0x11
expect_ok xl snapshot-check vm1

step "Ctrl-C (SIGINT) of a create: the same"
XL_SNAPSHOT_FAULT=create:1:sigint run xl snapshot-create vm1 c1
interrupted snapshot-create
expect_ok xl snapshot-recover vm1
expect_no_file "$(journal)"
expect_ok xl snapshot-check vm1
echo "test-92: ok"
