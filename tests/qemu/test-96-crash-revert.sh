#!/bin/bash
# test-96-crash-revert.sh - snapshot-revert killed at every step
#
# XL_SNAPSHOT_FAULT=revert:N makes xl _exit at the N-th fault point of
# snapshot-revert (after its journal, after stopping the domain, after
# each disk, after the records, after the start), as kill -9 would.
# For a running domain (xvda internal, xvdb external), a shut-off one,
# and a shut-off one whose xvda image holding s1 was since frozen by an
# external snapshot (s1's state is copied out), N runs from 1 until the
# revert gets through.  After each crash,
# snapshot-recover must finish or undo it:
#  - finished: the current snapshot is s1, both disks hold s1's data,
#    and the domain is in the state the revert meant (running);
#  - undone: the disks hold what they held before, the domain as it was;
# and snapshot-check is clean either way.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

make_vm_config vm1
crashes=0


# crash_loop MODE RUNNING: the revert to s1 crashed at each step
crash_loop() {
    local mode=$1 running=$2 n byte cur
    for ((n = 1; n < 20; n++)); do
        byte=$(printf '0x%02x' $((0x40 + n)))
        write_disks vm1 "$byte"
        run env XL_SNAPSHOT_FAULT=revert:$n $XL snapshot-revert vm1 s1
        if [ "$RC" -eq 0 ]; then
            expect_disks vm1 0x11
            step "  $mode: through after $((n - 1)) crash points"
            return 0
        fi
        [ "$RC" -eq 86 ] || fail_run "$mode: snapshot-revert at fault $n"
        crashes=$((crashes + 1))
        expect_ok xl snapshot-recover vm1
        expect_match "$OUT" "recovered" "snapshot-recover after crash $n"
        expect_ok xl snapshot-current vm1
        cur=$OUT
        if [ "$cur" = s1 ] && ! grep -q "rolled back" <<<"$ERR"; then
            expect_disks vm1 0x11            # finished
        else
            expect_disks vm1 "$byte"         # undone
        fi
        if [ "$running" = yes ]; then
            domain_running vm1 || fail "$mode: vm1 is not running after the recovery of crash $n"
        fi
        expect_ok xl snapshot-check vm1
        # back to a state where s1 is not current, for the next round
        if [ "$cur" = s1 ]; then
            write_disks vm1 0x22
            expect_ok xl snapshot-create vm1 "other-$mode-$n"
        fi
    done
    fail "$mode: snapshot-revert never got through"
}

expect_ok xl create "$CFG"
write_disks vm1 0x11
expect_ok xl snapshot-create vm1 s1
write_disks vm1 0x22
expect_ok xl snapshot-create vm1 s2

step "running domain"
crash_loop running yes
step "shut-off domain"
expect_ok xl destroy vm1
expect_ok xl snapshot-create vm1 s3
crash_loop offline no
step "shut-off, s1's xvda snapshot in an image since frozen (copied out)"
write_disks vm1 0x22
expect_ok xl snapshot-create --diskspec xvda,snapshot=external vm1 frozen
crash_loop copy no
expect_ok xl snapshot-check vm1

# A recovery killed after it started the domain, before it removed the
# journal: the next one must not take the domain, running on the new
# images, for one the revert never stopped, and take them back.  (The
# journal of a revert killed after stopping the domain, put back after
# the recovery that finished it: what such a kill leaves, or worse.)
step "a recovery killed after it started the domain: the next one keeps it"
expect_ok xl snapshot-revert --running vm1 s3
write_disks vm1 0x33
expect_ok xl snapshot-create --diskspec xvda,snapshot=external vm1 top
write_disks vm1 0x44
run env XL_SNAPSHOT_FAULT=revert:2 $XL snapshot-revert --running vm1 s1
[ "$RC" -eq 86 ] || fail_run "snapshot-revert at fault 2"
cp "$(domain_dir vm1)/journal.libxl-json" "$T/journal.saved"
expect_ok xl snapshot-recover vm1
domain_running vm1 || fail "vm1 is not running after the recovery"
expect_disks vm1 0x11
cp "$T/journal.saved" "$(domain_dir vm1)/journal.libxl-json"
expect_ok xl snapshot-recover vm1
expect_no_match "$ERR" "rolled back" "the second recovery"
domain_running vm1 || fail "vm1 is not running after the second recovery"
for v in xvda xvdb; do
    expect_file "$(active_image vm1 $v)"
done
expect_disks vm1 0x11
expect_ok xl snapshot-check vm1
echo "crash points exercised: $crashes"
