#!/bin/bash
# test-95-crash-create.sh - snapshot-create killed at every step
#
# XL_SNAPSHOT_FAULT=create:N makes xl _exit at the N-th fault point of
# snapshot-create, as kill -9 or a crash would.  For each mode (offline,
# live, live with memory) N runs from 1 until the command gets through;
# after each crash:
#  - snapshot-recover recovers (snapshot-check only reports a pending
#    journal): the snapshot is either
#    completed or rolled back, never half there;
#  - snapshot-check is clean (records, chains, qemu-img check, nothing
#    unowned in the state dir, no stray overlay);
#  - the domain's disks are readable.
# At the end every snapshot that survived reverts to its own data, and
# a kill -9 at a random moment of a create is recovered the same way.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

make_vm_config vm1
PATTERN=16                     # a byte per snapshot, from 0x10 up
declare -A DATA                # snapshot -> byte it holds
crashes=0


consistent() {
    expect_ok xl snapshot-list --name vm1
    # snapshot-check changes nothing: the recovery first
    expect_ok xl snapshot-recover vm1
    expect_ok xl snapshot-check vm1
    for vdev in xvda xvdb; do
        run qemu-img info -U --backing-chain "$(active_image vm1 $vdev)"
        [ "$RC" -eq 0 ] || fail_run "disk $vdev of vm1 does not open"
    done
}

# crash_loop MODE ARGS...: snapshot-create ARGS, crashed at each step
crash_loop() {
    local mode=$1 n name byte
    shift
    for ((n = 1; n < 20; n++)); do
        name=$mode-$n
        byte=$(printf '0x%02x' $PATTERN)
        PATTERN=$((PATTERN + 1))
        write_disks vm1 "$byte"
        run env XL_SNAPSHOT_FAULT=create:$n $XL "$@" vm1 "$name"
        if [ "$RC" -eq 0 ]; then
            DATA[$name]=$byte
            step "  $mode: through after $((n - 1)) crash points"
            return 0
        fi
        [ "$RC" -eq 86 ] || fail_run "$mode: snapshot-create at fault $n"
        crashes=$((crashes + 1))
        consistent
        expect_ok xl snapshot-list --name vm1
        if grep -qx "$name" <<<"$OUT"; then
            DATA[$name]=$byte          # rolled forward
        fi
        expect_ok xl snapshot-recover vm1
        expect_match "$OUT" "nothing to recover" "snapshot-recover after the recovery"
    done
    fail "$mode: snapshot-create never got through"
}

expect_ok xl create "$CFG"    # the records remember its config
expect_ok xl destroy vm1
step "offline (internal xvda, external xvdb)"
crash_loop offline snapshot-create
step "live"
expect_ok xl create "$CFG"
crash_loop live snapshot-create
step "live, with memory"
crash_loop mem snapshot-create --live --memory

step "kill -9 at a random moment"
for i in 1 2 3; do
    write_disks vm1 0x7$i
    ( sleep "0.0$((RANDOM % 9))"; pkill -9 -f "snapshot-create vm1 k$i" ) &
    run xl snapshot-create vm1 "k$i"
    wait
    consistent
    expect_ok xl snapshot-list --name vm1
    grep -qx "k$i" <<<"$OUT" && DATA[k$i]=0x7$i
done

step "every surviving snapshot reverts to its data (${#DATA[@]} of them, $crashes crashes)"
for name in "${!DATA[@]}"; do
    expect_ok xl snapshot-revert vm1 "$name"
    for vdev in xvda xvdb; do
        read_pattern "$(active_image vm1 $vdev)" "${DATA[$name]}" 0 1M
    done
done
consistent
echo "crash points exercised: $crashes"
