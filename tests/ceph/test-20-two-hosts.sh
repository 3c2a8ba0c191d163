#!/bin/bash
# test-20-two-hosts.sh - one snapshot tree for a pool: the RADOS record
# store (XL_SNAPSHOT_STORE=rados:POOL) and its cluster-wide lock, seen
# from two "hosts" on this machine
#
# Host A is the test's own $STATE and $RUN; host B has its own state and
# run dirs (on_b): no local state is shared, only the pool and the disk
# images (qcow2 files in $IMG, "shared storage", named as the config
# names them).  The lock's lease is 5 s (XL_SNAPSHOT_LOCK_LEASE).
#
#  1. A starts the domain, takes s1 and s2 (data 0x11, 0x22, then 0x33),
#     destroys it; no record is in either host's state dir, all are in
#     the pool's object xl-snapshot.<uuid>
#  2. B starts it from the same config: on the active images A left
#     (0x33); lists s1 s2, reverts to each (data checked through the
#     guest disk), deletes s1; snapshot-check clean
#  3. A and B at once (the domain shut off): A's snapshot-create stops
#     (XL_SNAPSHOT_FAULT=create:1:stop) holding the lock; B with no wait
#     gets ONE busy line naming A's host and pid, snapshot-check too; B
#     waiting gets it once A goes on: both snapshots made, in turn
#  4. A is killed -9 while holding the lock in a delete (stopped at the
#     delete's step 2 first, then SIGKILL): B, at once, is busy (A's
#     lease); B waiting takes the lock after the lease, recovers A's
#     journal (said so), the delete is finished; snapshot-check clean;
#     the remaining snapshots revert to their data
#  5. fencing: A stopped in a create holding the lock, its lock-hold
#     child stopped too (no renewal); B recovers A's journal after the
#     lease; A, let go, writes nothing (its omap-set --lock is refused),
#     fails saying so; the records are B's, snapshot-check clean
set -u
# shellcheck source=tests/ceph/lib.sh
. "$(dirname "$0")/lib.sh"

POOL=t20
LEASE=5
U=$CEPH_UTIL
HOST=$(hostname)

timeout 60 ceph osd pool create "$POOL" 8 8 >/dev/null 2>&1 ||
    ceph osd pool ls 2>/dev/null | grep -qx "$POOL" ||
    fail "cannot create pool $POOL"
# a clean slate (a run killed half-way)
for o in $("$U" ls-objects "$POOL" xl-snapshot. 2>/dev/null | jq -r '.[]'); do
    "$U" remove-object "$POOL" "$o" >/dev/null 2>&1
done

export XL_SNAPSHOT_STORE=rados:$POOL
export XL_SNAPSHOT_LOCK_LEASE=$LEASE

host_b

# no record file in either host's state dir
no_local_records() {
    local f
    f=$(find "$STATE" "$B_STATE" -name '*.libxl-json' 2>/dev/null)
    [ -z "$f" ] || fail "records in a host's state dir: $f"
}

# wait_stopped PID: until the process is stopped (SIGSTOP at a fault)
wait_stopped() {
    local i st
    for i in $(seq 300); do
        st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)
        [ "$st" = T ] && return 0
        [ -n "$st" ] || fail "process $1 ended before its stop"
        sleep 0.1
    done
    fail "process $1 never stopped at its fault point"
}

make_vm_config vm

step "1. host A: start, snapshots s1 s2, destroy"
expect_ok xl create "$CFG"
write_disks vm 0x11
expect_ok xl snapshot-create vm s1
write_disks vm 0x22
expect_ok xl snapshot-create vm s2
write_disks vm 0x33
UUID=$(domain_uuid vm)
OBJ=xl-snapshot.$UUID
expect_ok xl destroy vm
no_local_records
run "$U" omap-dump "$POOL" "$OBJ"
[ "$RC" -eq 0 ] || fail_run "the domain's object in the pool"
expect_eq "$(jq -r 'keys[]' <<<"$OUT")" "domain.libxl-json
snapshotdata-s1.libxl-json
snapshotdata-s2.libxl-json" "the omap keys of $OBJ"
expect_eq "$(jq -r '."domain.libxl-json" | fromjson | .current' <<<"$OUT")" \
    s2 "the domain record's current snapshot"

step "2. host B: start from the same config, list, revert, delete"
expect_ok on_b xl create "$CFG"
on_b expect_disks vm 0x33
expect_ok on_b xl snapshot-list --name vm
expect_eq "$OUT" "s1
s2" "host B's snapshot-list"
expect_ok on_b xl snapshot-revert vm s1
on_b expect_disks vm 0x11
expect_ok on_b xl snapshot-revert vm s2
on_b expect_disks vm 0x22
expect_ok on_b xl snapshot-delete vm s1
expect_ok on_b xl snapshot-list --name vm
expect_eq "$OUT" "s2" "snapshot-list after host B's delete"
expect_ok xl snapshot-list --name vm
expect_eq "$OUT" "s2" "host A's snapshot-list after host B's delete"
expect_ok on_b xl snapshot-check vm
on_b write_disks vm 0x44
expect_ok on_b xl destroy vm
no_local_records

step "3. A and B at once: A holds the lock, B is busy (one line naming A), then serialized"
XL_SNAPSHOT_FAULT=create:1:stop "$XL" snapshot-create vm s3 \
    >"$T/a.out" 2>"$T/a.err" &
APID=$!
BG_PIDS="${BG_PIDS:-} $APID"
wait_stopped "$APID"
run on_b env XL_SNAPSHOT_LOCK_TIMEOUT=0 "$XL" snapshot-create vm s4
[ "$RC" -eq 1 ] || fail_run "host B while A holds the lock"
expect_eq "$(wc -l <"$T/.err")" 1 "lines of host B's busy error"
expect_match "$ERR" "^libxl-snapshot: error: domain vm is busy: .* holds its lock \\(host $HOST pid $APID\\)\$" \
    "host B's busy error"
run on_b env XL_SNAPSHOT_LOCK_TIMEOUT=0 "$XL" snapshot-check vm
[ "$RC" -ne 0 ] || fail_run "host B's snapshot-check while A holds the lock"
expect_match "$ERR" "busy: .*\\(host $HOST pid $APID\\)" \
    "host B's snapshot-check: who holds the lock"
# B waits (the default 10 s) while A goes on
on_b "$XL" snapshot-create vm s4 >"$T/b.out" 2>"$T/b.err" &
BPID=$!
sleep 1
kill -0 "$BPID" 2>/dev/null || fail "host B did not wait for the lock: $(cat "$T/b.err")"
kill -CONT "$APID"
wait "$APID" || fail "host A's snapshot-create failed: $(cat "$T/a.err")"
wait "$BPID" || fail "host B's snapshot-create failed: $(cat "$T/b.err")"
expect_ok xl snapshot-list --name vm
expect_eq "$OUT" "s2
s3
s4" "both snapshots, one after the other"
expect_ok on_b xl snapshot-info vm s4
expect_match "$OUT" "^Parent: +s3\$" "s4 was taken after s3 (serialized)"
expect_ok xl snapshot-check vm

step "4. A killed -9 in a delete holding the lock: B takes it after the lease and recovers"
XL_SNAPSHOT_FAULT=delete:2:stop "$XL" snapshot-delete vm s3 \
    >"$T/a.out" 2>"$T/a.err" &
APID=$!
wait_stopped "$APID"
run "$U" omap-get "$POOL" "$OBJ" journal.libxl-json
[ "$RC" -eq 0 ] || fail_run "A's journal in the pool"
kill -9 "$APID"
wait "$APID" 2>/dev/null
t0=$(date +%s)
run on_b env XL_SNAPSHOT_LOCK_TIMEOUT=0 "$XL" snapshot-recover vm
[ "$RC" -eq 1 ] || fail_run "host B at once: A's lease still runs"
expect_match "$ERR" "busy: .*\\(host $HOST pid $APID\\)\$" "the dead holder named"
run on_b env XL_SNAPSHOT_LOCK_TIMEOUT=$((LEASE * 4)) "$XL" snapshot-recover vm
[ "$RC" -eq 0 ] || fail_run "host B's snapshot-recover after A's lease"
waited=$(( $(date +%s) - t0 ))
[ "$waited" -le $((LEASE * 3)) ] || fail "host B waited ${waited}s for a ${LEASE}s lease"
expect_match "$ERR" "interrupted snapshot-delete of 's3' was finished" \
    "host B says it finished A's delete"
run "$U" omap-get "$POOL" "$OBJ" journal.libxl-json
[ "$RC" -eq 2 ] || fail_run "the journal is gone once recovered"
expect_ok on_b xl snapshot-list --name vm
expect_no_match "$OUT" "^s3\$" "snapshot-list after the recovered delete"
expect_ok on_b xl snapshot-check vm
expect_ok xl snapshot-check vm
expect_ok on_b xl create "$CFG"
on_b expect_disks vm 0x44
expect_ok on_b xl snapshot-revert vm s2
on_b expect_disks vm 0x22
expect_ok on_b xl snapshot-revert vm s4
# (s4 was taken shut off: the revert leaves it so; B starts it on the
# images the pool's records name)
expect_ok on_b xl create "$CFG"
on_b expect_disks vm 0x44
expect_ok on_b xl snapshot-check vm
expect_ok on_b xl destroy vm
no_local_records

step "5. a holder whose lease ran out writes nothing: A frozen in a create, B recovers it, A goes on"
XL_SNAPSHOT_FAULT=create:1:stop "$XL" snapshot-create vm s5 \
    >"$T/a.out" 2>"$T/a.err" &
APID=$!
BG_PIDS="${BG_PIDS:-} $APID"
wait_stopped "$APID"
HOLDER=$(pgrep -P "$APID" -f lock-hold)
[ -n "$HOLDER" ] || fail "no lock-hold child of host A's xl"
kill -STOP "$HOLDER"              # A's lease is no longer renewed
run on_b env XL_SNAPSHOT_LOCK_TIMEOUT=$((LEASE * 4)) "$XL" snapshot-recover vm
[ "$RC" -eq 0 ] || fail_run "host B's snapshot-recover after A's lease"
expect_match "$ERR" "interrupted snapshot-create of 's5'|s5" "host B undid A's create"
kill -CONT "$HOLDER" "$APID"
wait "$APID"
rc=$?
[ "$rc" -ne 0 ] || fail "host A wrote after losing its lock: $(cat "$T/a.out" "$T/a.err")"
expect_match "$(cat "$T/a.err")" "no longer holds the domain's lock" \
    "host A's error once its lock was taken over"
expect_ok on_b xl snapshot-list --name vm
expect_eq "$OUT" "s2
s4" "the records after A's fenced create"
run "$U" omap-get "$POOL" "$OBJ" journal.libxl-json
[ "$RC" -eq 2 ] || fail_run "no journal left"
expect_ok on_b xl snapshot-check vm
no_local_records

echo "PASS: $TEST_NAME"
