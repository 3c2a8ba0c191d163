#!/bin/bash
# test-93-qemu-killed.sh - QEMU killed at every step of a live
# checkpoint and of a delete's live merge (issue 14, 4)
#
# XL_SNAPSHOT_FAULT=<op>:N:killqemu makes the N-th fault point of <op>
# SIGKILL the domain's QEMU and go on, so xl meets a dead QEMU at that
# step.  For `snapshot-create --memory --live` (after the journal, RAM
# being copied, at the instant before the disks, with the disks taken
# but QEMU's answer lost, after it, while the rest of the memory is
# written, after the journal update, after the record) and for
# snapshot-delete's live merges (an intermediate commit, and an active
# commit with a pivot), N runs from 1 until no QEMU is killed.  After
# each kill:
#  - xl's command fails with one line (or succeeds: nothing was left);
#  - snapshot-recover and snapshot-check are clean; no overlay and no
#    internal snapshot is left that no record owns;
#  - the guest's disks hold what it wrote;
#  - every listed snapshot reverts to its own data (checked at the end).
# A delete stopped part-way is run again (what its message says).
# Last, snapshot-check must report an internal snapshot no record owns.
# run-all: beside
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

make_vm_config vm1
kills=0
declare -A DATA                 # snapshot -> the byte its disks hold

ensure_running() {
    domain_running vm1 || expect_ok xl create "$CFG"
}

# every internal snapshot in xvda's image is a listed snapshot
expect_owned_internal() {
    local tag
    expect_ok xl snapshot-list --name vm1
    for tag in $(internal_snapshots "$IMG/vm1-xvda.qcow2"); do
        grep -qx -- "$tag" <<<"$OUT" ||
            fail "internal snapshot '$tag' in vm1-xvda.qcow2 is owned by no record"
    done
}

# after_kill WHAT [MAXLINES]: the checks after a QEMU kill
after_kill() {
    local what=$1 max=${2:-1} lines
    kills=$((kills + 1))
    lines=$(grep -v "fault inject" <<<"$ERR" | grep -c .)
    if [ "$RC" -ne 0 ]; then
        if [ "$RC" -ne 1 ] || [ "$lines" -lt 1 ] || [ "$lines" -gt "$max" ]; then
            fail_run "$what: expected rc 1 and $max line(s) at most on stderr"
        fi
    fi
    domain_running vm1 && fail "$what: vm1 still runs after its QEMU was killed"
    expect_ok xl snapshot-recover vm1
    expect_ok xl snapshot-check vm1
    expect_owned_internal
}

listed() {
    run xl snapshot-info vm1 "$1"
    [ "$RC" -eq 0 ]
}

step "live checkpoint (snapshot-create --memory --live)"
for ((n = 1; n < 30; n++)); do
    ensure_running
    byte=$(printf '0x%02x' $((0x40 + n)))
    write_disks vm1 "$byte"
    run env XL_SNAPSHOT_FAULT=create:$n:killqemu \
        "$XL" snapshot-create --memory --live vm1 "c$n"
    if ! grep -q "QEMU (pid [0-9]*) killed" <<<"$ERR"; then
        [ "$RC" -eq 0 ] || fail_run "snapshot-create past the last kill point"
        DATA[c$n]=$byte
        step "  through after $((n - 1)) kill points"
        break
    fi
    step "  kill $n: rc $RC"
    after_kill "snapshot-create, kill $n"
    listed "c$n" && DATA[c$n]=$byte
    expect_disks vm1 "$byte"
done
[ "$n" -lt 30 ] || fail "snapshot-create never got through"
create_kills=$kills

# delete_loop VICTIM: a (its child's image is committed into its own:
# an intermediate commit) or b (the active overlay into b's image: an
# active commit with a pivot); xvda's internal snapshot goes too
delete_loop() {
    local v=$1 keep n x
    [ "$v" = a ] && keep=b || keep=a
    for ((n = 1; n < 30; n++)); do
        ensure_running
        x=$v$n
        write_disks vm1 0x1$((n % 10))
        expect_ok xl snapshot-create vm1 "a$x"
        DATA[a$x]=0x1$((n % 10))
        write_disks vm1 0x2$((n % 10))
        expect_ok xl snapshot-create vm1 "b$x"
        DATA[b$x]=0x2$((n % 10))
        write_disks vm1 0x3$((n % 10))
        run env XL_SNAPSHOT_FAULT=delete:$n:killqemu \
            "$XL" snapshot-delete vm1 "$v$x"
        if ! grep -q "QEMU (pid [0-9]*) killed" <<<"$ERR"; then
            [ "$RC" -eq 0 ] || fail_run "snapshot-delete past the last kill point"
            unset "DATA[$v$x]"
            step "  deleting $v: through after $((n - 1)) kill points"
            return 0
        fi
        step "  kill $n: rc $RC"
        # the cause, what the delete did before it or the merge's fate,
        # and the journal kept (delete.c's own lines)
        after_kill "snapshot-delete of $v$x, kill $n" 3
        # a delete stopped part-way leaves the record of what is left;
        # running it again finishes it
        listed "$v$x" && expect_ok xl snapshot-delete vm1 "$v$x"
        unset "DATA[$v$x]"
        expect_ok xl snapshot-check vm1
        expect_disks vm1 0x3$((n % 10))
        expect_ok xl snapshot-revert vm1 "$keep$x"
        expect_disks vm1 "${DATA[$keep$x]}"
    done
    fail "snapshot-delete never got through"
}

step "delete: the snapshot with a child (intermediate commit)"
delete_loop a
step "delete: the snapshot under the active image (active commit, pivot)"
delete_loop b
delete_kills=$((kills - create_kills))

step "every listed snapshot reverts to its own data"
expect_ok xl snapshot-list --name vm1
for s in $OUT; do
    [ -n "${DATA[$s]:-}" ] || fail "snapshot $s is listed, but was not expected"
    expect_ok xl snapshot-revert vm1 "$s"
    expect_disks vm1 "${DATA[$s]}"
done
expect_ok xl snapshot-check vm1

step "snapshot-check reports an internal snapshot no record owns"
expect_ok xl destroy vm1
qemu-img snapshot -c stray "$IMG/vm1-xvda.qcow2" || fail "qemu-img snapshot -c"
run xl snapshot-check vm1
[ "$RC" -eq 1 ] || fail_run "snapshot-check with a stray internal snapshot"
expect_match "$OUT" "internal snapshot 'stray', which no record owns" \
    "snapshot-check"
qemu-img snapshot -d stray "$IMG/vm1-xvda.qcow2" || fail "qemu-img snapshot -d"
expect_ok xl snapshot-check vm1
echo "qemu-kill points: $kills (live checkpoint: $create_kills, delete's merges: $delete_kills)"
