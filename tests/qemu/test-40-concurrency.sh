#!/bin/bash
# test-40-concurrency.sh - the per-domain lock
#
# While another process holds <state>/<uuid>/lock (flock), a command
# with XL_SNAPSHOT_LOCK_TIMEOUT=1 gives up after about a second with a
# one-line "busy" error and changes nothing; with
# XL_SNAPSHOT_LOCK_TIMEOUT=10 it waits for the lock and succeeds.  A
# busy snapshot-revert leaves the running domain alone.
# Snapshot-create commands started together on one domain all succeed
# and their records form one chain (each the parent of the next).
# Two contexts in one process (tests/qemu/two-ctx.c): while the first
# holds the lock and QEMU's monitor, the second is refused as busy at
# once (before: 5 s on a QMP query-status, then "does not answer
# QMP"), and, both asynchronous in one loop, it waits for the lock.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

make_vm_config vm1
expect_ok xl create "$CFG"
write_pattern vm1 xvda 0x11 0 1M
LOCK=$(domain_dir vm1)/lock
expect_file "$LOCK"

# hold_lock SECS: a background flock holding $LOCK for SECS seconds;
# returns once the lock is held.  Its pid is in HOLDER.
hold_lock() {
    flock "$LOCK" sleep "$1" &
    HOLDER=$!
    BG_PIDS="${BG_PIDS:-} $HOLDER"
    local i
    for ((i = 0; i < 100; i++)); do
        flock -n "$LOCK" true || return 0
        sleep 0.05
    done
    fail "the background flock did not take $LOCK"
}

now_ms() {
    echo $(( ${EPOCHREALTIME/./} / 1000 ))
}

step "lock held, XL_SNAPSHOT_LOCK_TIMEOUT=1: busy, nothing created"
hold_lock 2.5
fp=$(fingerprint)
t0=$(now_ms)
expect_error 'busy' env XL_SNAPSHOT_LOCK_TIMEOUT=1 "$XL" snapshot-create vm1 x
t1=$(now_ms)
expect_unchanged "$fp" "the busy snapshot-create"
[ $((t1 - t0)) -ge 900 ] ||
    fail "gave up after $((t1 - t0)) ms, before the 1 s lock timeout"
[ $((t1 - t0)) -lt 2400 ] ||
    fail "took $((t1 - t0)) ms: did not give up after the 1 s lock timeout"
kill -0 "$HOLDER" 2>/dev/null ||
    fail "the lock holder ended early; the test proves nothing"
wait "$HOLDER"
expect_ok xl snapshot-list --name vm1
expect_eq "$OUT" "" "snapshots after the busy create"

step "lock held for 2 s, XL_SNAPSHOT_LOCK_TIMEOUT=10: waits, succeeds"
hold_lock 2
t0=$(now_ms)
expect_ok env XL_SNAPSHOT_LOCK_TIMEOUT=10 "$XL" snapshot-create vm1 x
t1=$(now_ms)
[ $((t1 - t0)) -ge 1000 ] ||
    fail "succeeded after $((t1 - t0)) ms while the lock was held for 2 s"
wait "$HOLDER"
expect_ok xl snapshot-list --name vm1
expect_eq "$OUT" "x" "snapshots after the waiting create"
expect_eq "$(active_image vm1 xvdb)" "$IMG/vm1-xvdb.x.qcow2" "xvdb's active image"
check_images

step "snapshot-revert is refused as busy too, and changes nothing"
write_pattern vm1 xvda 0x22 0 1M
hold_lock 2.5
fp=$(fingerprint)
expect_error 'busy' env XL_SNAPSHOT_LOCK_TIMEOUT=1 "$XL" snapshot-revert vm1 x
expect_unchanged "$fp" "the busy snapshot-revert"
kill -0 "$HOLDER" 2>/dev/null ||
    fail "the lock holder ended early; the test proves nothing"
wait "$HOLDER"
domain_running vm1 || fail "vm1 stopped by the busy revert"
read_pattern "$(active_image vm1 xvda)" 0x22 0 1M
write_pattern vm1 xvda 0x11 0 1M

# start_creates NAME...: one snapshot-create per name, all at once;
# every one must succeed.
start_creates() {
    local n pids=() i=0 rc
    for n in "$@"; do
        "$XL" snapshot-create vm1 "$n" >"$T/create-$n.out" 2>"$T/create-$n.err" &
        pids+=($!)
    done
    for n in "$@"; do
        wait "${pids[$i]}"
        rc=$?
        i=$((i + 1))
        [ "$rc" -eq 0 ] || fail "concurrent snapshot-create $n failed (exit $rc)" \
            "stdout: $(cat "$T/create-$n.out")
stderr: $(cat "$T/create-$n.err")"
    done
}

# expect_chain FIRST-PARENT NAME...: the records of NAME... form one
# chain below FIRST-PARENT, in some order; prints that order.
expect_chain() {
    local parent=$1 n next chain=()
    shift
    local -A parent_of=()
    for n in "$@"; do
        expect_ok xl snapshot-info --json vm1 "$n"
        parent_of[$n]=$(jq -r '.parent // "-"' <<<"$OUT")
    done
    while [ ${#chain[@]} -lt $# ]; do
        next=
        for n in "$@"; do
            if [ "${parent_of[$n]}" = "$parent" ]; then
                [ -z "$next" ] || fail "$next and $n both have the parent $parent"
                next=$n
            fi
        done
        [ -n "$next" ] || fail "no snapshot has the parent $parent" \
            "$(for n in "$@"; do echo "$n: parent ${parent_of[$n]}"; done)"
        chain+=("$next")
        parent=$next
    done
    echo "${chain[*]}"
}

step "two snapshot-create at the same time"
start_creates c1 c2
order=$(expect_chain x c1 c2)
last=${order##* }
expect_ok xl snapshot-current vm1
expect_eq "$OUT" "$last" "current snapshot (the later of $order)"
expect_eq "$(active_image vm1 xvdb)" "$IMG/vm1-xvdb.$last.qcow2" "xvdb's active image"
expect_eq "$(backing_chain "$IMG/vm1-xvdb.$last.qcow2" | cut -f1)" \
"$IMG/vm1-xvdb.$last.qcow2
$IMG/vm1-xvdb.${order%% *}.qcow2
$IMG/vm1-xvdb.x.qcow2
$IMG/vm1-xvdb.img" "xvdb's backing chain"
check_images

step "four snapshot-create at the same time"
start_creates d1 d2 d3 d4
order=$(expect_chain "$last" d1 d2 d3 d4)
expect_ok xl snapshot-current vm1
expect_eq "$OUT" "${order##* }" "current snapshot (the last of $order)"
expect_eq "$(backing_chain "$(active_image vm1 xvdb)" | wc -l)" 8 \
    "length of xvdb's backing chain"
expect_ok xl snapshot-list --name vm1
expect_eq "$(sort <<<"$OUT" | tr '\n' ' ')" "c1 c2 d1 d2 d3 d4 x " "snapshots"
expect_eq "$(internal_snapshots "$IMG/vm1-xvda.qcow2" | sort | tr '\n' ' ')" \
    "c1 c2 d1 d2 d3 d4 x " "internal snapshots of xvda"
check_images
expect_no_orphans vm1 xvda xvdb

step "two contexts in one process (tests/qemu/two-ctx.c)"
# ctx1's snapshot holds the lock and QEMU's monitor; ctx2's must be
# refused as busy at once, without waiting on a QMP query QEMU cannot
# answer (it took 5 s, then failed with "does not answer QMP"); then
# both, asynchronous in one loop, complete (ctx2 waits for the lock).
build_program two-ctx.c "$T/two-ctx"
run "$T/two-ctx" "$STATE" "$RUN" vm1
sed "s/^/    /" <<<"$OUT"
[ "$RC" -eq 0 ] || fail_run "two contexts in one process"
[[ $OUT =~ step1:\ rc=-?[0-9]+\ ms=([0-9]+) ]] || fail_run "no step1 line"
[ "${BASH_REMATCH[1]}" -lt 1000 ] ||
    fail_run "ctx2's refusal took ${BASH_REMATCH[1]} ms"
[[ $OUT =~ step3:\ rc=0,0\ ms=([0-9]+) ]] || fail_run "no step3 line"
[ "${BASH_REMATCH[1]}" -lt 1000 ] ||
    fail_run "ctx2's starting call took ${BASH_REMATCH[1]} ms"
expect_ok xl snapshot-check vm1

step "data intact"
read_pattern "$(active_image vm1 xvda)" 0x11 0 1M
expect_ok xl destroy vm1
check_images
echo "PASS: $TEST_NAME"
