#!/bin/bash
# test-97-crash-delete.sh - snapshot-delete killed at every step
#
# XL_SNAPSHOT_FAULT=delete:N makes xl _exit at the N-th fault point of
# snapshot-delete (after its journal, once its QEMU job runs, after each
# image re-parented, after each disk's records, after each file removal,
# after the record), as kill -9 would.  The snapshot
# deleted, a<N>, has a child b<N>: on xvda an internal snapshot goes,
# on xvdb (external) b's image is committed into a's, live, with a
# pivot; then the same offline (qemu-img commit, killed with its xl).
# After each crash:
#  - snapshot-recover: any job left in QEMU is cancelled, the records
#    are made to say exactly what is left, then the delete is finished:
#    a<N> is gone, snapshot-check is clean, the guest's disks still hold
#    what it wrote;
#  - b<N> still reverts to its own data.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

make_vm_config vm1
crashes=0


# crash_loop VICTIM: a (its child's image is committed into its own:
# an intermediate commit) or b (the active overlay is committed into
# b's image: an active commit with a pivot)
crash_loop() {
    local v=$1 sfx=${2:-} keep n x got=0
    [ "$v" = a ] && keep=b || keep=a
    for ((n = 1; n < 20; n++)); do
        x=$v$n$sfx
        write_disks vm1 0x1$((n % 10))
        expect_ok xl snapshot-create vm1 "a$x"
        write_disks vm1 0x2$((n % 10))
        expect_ok xl snapshot-create vm1 "b$x"
        write_disks vm1 0x3$((n % 10))
        run env XL_SNAPSHOT_FAULT=delete:$n $XL snapshot-delete vm1 "$v$x"
        if [ "$RC" -eq 0 ]; then
            got=1
        else
            [ "$RC" -eq 86 ] || fail_run "snapshot-delete at fault $n"
            crashes=$((crashes + 1))
            expect_ok xl snapshot-recover vm1
        fi
        expect_ok xl snapshot-list --name vm1
        expect_no_match "$OUT" "^$v$x\$" "snapshot-list after deleting $v$x"
        expect_ok xl snapshot-check vm1
        expect_disks vm1 0x3$((n % 10))
        expect_ok xl snapshot-revert vm1 "$keep$x"
        if [ "$keep" = a ]; then expect_disks vm1 0x1$((n % 10)); else expect_disks vm1 0x2$((n % 10)); fi
        expect_ok xl snapshot-check vm1
        if [ "$got" = 1 ]; then
            step "  deleting $v$sfx: through after $((n - 1)) crash points"
            return 0
        fi
    done
    fail "snapshot-delete never got through"
}

expect_ok xl create "$CFG"
step "the snapshot with a child (intermediate commit)"
crash_loop a
step "the snapshot under the active image (active commit, pivot)"
crash_loop b
expect_ok xl destroy vm1
step "offline: the snapshot with a child (qemu-img commit)"
crash_loop a -off
step "offline: the snapshot under the active image"
crash_loop b -off
echo "crash points exercised: $crashes"
