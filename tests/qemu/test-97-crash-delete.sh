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
# Then `snapshot-delete --children p` (p, its child c, c's child d: d
# goes first) killed after d's first disk (issue 14, I): recovery says
# once what it did, never "finishes it" about what it has finished:
#  - snapshot-recover: "an interrupted snapshot-delete of 'd' was
#    finished", naming c and p as kept (the command never got to them);
#  - any other command (snapshot-export-records): d is left part-done, and what
#    finishes it; snapshot-create finishes it first (no snapshot is taken
#    over a pending merge: issue 20), saying so, c and p kept;
#  - the delete again (--children p): d, c and p go, with nothing said
#    of the interruption.
# XL_SNAPSHOT_TEST_CASES="live offline children" (the default) runs a
# subset of these parts.
# run-all: beside
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

live_part() {
    domain_running vm1 || expect_ok xl create "$CFG"
    step "the snapshot with a child (intermediate commit)"
    crash_loop a
    step "the snapshot under the active image (active commit, pivot)"
    crash_loop b
}
offline_part() {
    # known to the records (its config), then shut off
    domain_running vm1 || expect_ok xl create "$CFG"
    expect_ok xl destroy vm1
    step "offline: the snapshot with a child (qemu-img commit)"
    crash_loop a -off
    step "offline: the snapshot under the active image"
    crash_loop b -off
}

# children_case N WHO: p<N>, c<N> (its child), d<N> (c's child), each
# with its data, then `snapshot-delete --children p<N>` killed after d's
# first disk; WHO recovers: recover, create or delete
children_case() {
    local n=$1 who=$2 dd
    write_disks vm1 0x4$n
    expect_ok xl snapshot-create vm1 "p$n"
    write_disks vm1 0x5$n
    expect_ok xl snapshot-create vm1 "c$n"
    write_disks vm1 0x6$n
    expect_ok xl snapshot-create vm1 "d$n"
    write_disks vm1 0x7$n
    run env XL_SNAPSHOT_FAULT=delete:2 $XL snapshot-delete --children vm1 "p$n"
    [ "$RC" -eq 86 ] || fail_run "snapshot-delete --children at fault 2"
    expect_ok xl snapshot-list vm1
    expect_match "$OUT" "d$n .*xvd[ab]:no" "d$n half deleted"
    case $who in
    recover)
        expect_ok xl snapshot-recover vm1
        dd=$(grep -c "snapshot-delete of 'd$n'" <<<"$ERR")
        [ "$dd" = 1 ] || fail_run "one line about d$n's delete, not $dd"
        expect_match "$ERR" "snapshot-delete of 'd$n' was finished \(it had stopped after 1 of its 2 disks\); 'c$n', 'p$n', which the interrupted command was to delete next, are kept" \
            "snapshot-recover"
        expect_no_match "$ERR" "finishes it|error" "snapshot-recover"
        expect_ok xl snapshot-list --name vm1
        expect_no_match "$OUT" "^d$n\$" "snapshot-list"
        expect_match "$OUT" "^c$n\$" "snapshot-list"
        expect_ok xl snapshot-check vm1
        expect_disks vm1 0x7$n
        expect_ok xl snapshot-revert vm1 "c$n"
        expect_disks vm1 0x5$n
        ;;
    export)
        expect_ok xl snapshot-export-records vm1 "$T/records-$n.json"
        dd=$(grep -c "snapshot-delete of 'd$n'" <<<"$ERR")
        [ "$dd" = 1 ] || fail_run "one line about d$n's delete, not $dd"
        expect_match "$ERR" "snapshot-delete of 'd$n' is left part-done \(it had stopped after 1 of its 2 disks\): its record lists what is left, and snapshot-recover \(or the delete again\) finishes it; 'c$n', 'p$n', which the interrupted command was to delete next, are kept" \
            "snapshot-export-records"
        expect_ok xl snapshot-list --name vm1
        expect_match "$OUT" "^d$n\$" "snapshot-list"
        expect_ok xl snapshot-check vm1
        expect_disks vm1 0x7$n
        expect_ok xl snapshot-delete --children vm1 "p$n"
        ;;
    create)
        expect_ok xl snapshot-create vm1 "x$n"
        expect_eq "$(grep "snapshot-delete of 'd$n'" <<<"$ERR")" "libxl-snapshot: notice: domain vm1: finishing an interrupted snapshot-delete of 'd$n' (it had stopped after 1 of its 2 disks) before the snapshot
libxl-snapshot: warning: domain vm1: an interrupted snapshot-delete of 'd$n' was finished (it had stopped after 1 of its 2 disks); 'c$n', 'p$n', which the interrupted command was to delete next, are kept" \
            "snapshot-create"
        expect_ok xl snapshot-list --name vm1
        expect_no_match "$OUT" "^d$n\$" "snapshot-list"
        expect_match "$OUT" "^c$n\$" "snapshot-list"
        expect_ok xl snapshot-check vm1
        expect_disks vm1 0x7$n
        expect_ok xl snapshot-delete vm1 "x$n"
        expect_ok xl snapshot-delete --children vm1 "p$n"
        ;;
    delete)
        expect_ok xl snapshot-delete --children vm1 "p$n"
        expect_no_match "$ERR" "interrupted|finishes it" "the delete again"
        expect_ok xl snapshot-list --name vm1
        expect_no_match "$OUT" "^[pcd]$n\$" "snapshot-list"
        expect_ok xl snapshot-check vm1
        expect_disks vm1 0x7$n
        ;;
    esac
}
children_part() {
    domain_running vm1 || expect_ok xl create "$CFG"
    step "snapshot-delete --children killed: snapshot-recover finishes it"
    children_case 1 recover
    step "  killed again: another command says it is left part-done"
    children_case 2 export
    step "  killed again: snapshot-create finishes it first, and says so"
    children_case 4 create
    step "  killed again: the delete again finishes it, silently"
    children_case 3 delete
}

# XL_SNAPSHOT_TEST_CASES: a subset of the parts, in order
for part in ${XL_SNAPSHOT_TEST_CASES:-live offline children}; do
    case $part in
    live|offline|children) "${part}_part" ;;
    *) fail "no such part: $part (live, offline, children)" ;;
    esac
done
echo "crash points exercised: $crashes"
