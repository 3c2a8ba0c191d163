#!/bin/bash
# test-87-delete-interrupt.sh - Ctrl-C (SIGINT) of snapshot-delete while
# its merge runs, and just after it finished
#
# e1 (external: 0xa1 at 0-4M), 256 MiB of 0xa2 from 0, e2, then 0xa3 at
# 0-1M.  `xl snapshot-delete vm e1` commits e2's image (the 256 MiB)
# into e1's.  Cases:
#  - live, stopped mid-way: the job is slowed down (QEMU throttled with
#    SIGSTOP/SIGCONT until HMP block_job_set_speed holds it at 8 MiB/s),
#    and xl gets SIGINT once the job has written part of e1's image.
#    xl exits 1 and says that e1's record is removed, naming it; e1 is
#    not listed; snapshot-check is clean; the disk still holds what the
#    guest wrote; e2 reverts to its own data (a listed e1 would have to
#    revert to 0xa1: it never may list it with 0xa2 there);
#  - live, xl killed (SIGKILL) mid-merge: the next command
#    (snapshot-recover; snapshot-check only reports the journal) cancels
#    the job, and removes e1, said;
#  - offline, the same with qemu-img commit (held with SIGSTOP after
#    0.2 s, so that xl's SIGINT comes first), which xl kills: the
#    clusters it leaked in e1's image are freed (snapshot-check clean);
#  - live, too late: xl is stopped (SIGSTOP) while the job runs, the job
#    finishes in QEMU, then xl gets SIGINT and SIGCONT: the delete is
#    complete, xl exits 0 and says that the job had already finished.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

D=vm87
XPID=
THR=

# one 512 MiB qcow2 disk (created by setup)
CFG=$T/$D.cfg
cat >"$CFG" <<EOF
name = "$D"
memory = 64
disk = [ 'format=qcow2,vdev=xvda,access=rw,target=$IMG/$D-xvda.qcow2' ]
EOF

stop_throttle() {
    if [ -n "$THR" ]; then
        kill "$THR" 2>/dev/null
        wait "$THR" 2>/dev/null
        THR=
    fi
    [ -z "${1:-}" ] || kill -CONT "$1" 2>/dev/null
}
# throttle PID: PID runs about 2 ms in 50 (a slow, cpu-starved process)
throttle() {
    local pid=$1
    (
        trap 'kill -CONT $pid 2>/dev/null; exit 0' TERM
        while kill -STOP "$pid" 2>/dev/null; do
            sleep 0.05
            kill -CONT "$pid" 2>/dev/null
            sleep 0.002
        done
    ) &
    THR=$!
}
cleanup_bg() {
    stop_throttle
    local p
    for p in $(pgrep -f "$IMG" 2>/dev/null); do kill -CONT "$p" 2>/dev/null; done
    if [ -n "$XPID" ] && kill -0 "$XPID" 2>/dev/null; then
        kill -CONT "$XPID" 2>/dev/null
        kill -KILL "$XPID" 2>/dev/null
    fi
}
at_cleanup cleanup_bg

# setup: e1, 256 MiB of 0xa2, e2, 0xa3 (running or shut off)
setup() {
    local how=$1
    # a fresh domain: no records, no images (cases run in subshells)
    run xl destroy "$D"
    rm -rf "${STATE:?}"/*
    rm -f "$IMG/$D"-xvda.*.qcow2
    qemu-img create -q -f qcow2 "$IMG/$D-xvda.qcow2" 512M ||
        fail "qemu-img create failed"
    expect_ok xl create "$CFG"
    domain_uuid "$D" >/dev/null
    write_pattern "$D" xvda 0xa1 0 4M
    expect_ok xl snapshot-create --diskspec xvda,snapshot=external "$D" e1
    write_pattern "$D" xvda 0xa2 0 256M
    expect_ok xl snapshot-create --diskspec xvda,snapshot=external "$D" e2
    write_pattern "$D" xvda 0xa3 0 1M
    if [ "$how" = offline ]; then
        expect_ok xl destroy "$D"
    fi
}

# start_delete: xl snapshot-delete D e1 in the background (XPID)
start_delete() {
    "$XL" snapshot-delete "$D" e1 >"$T/del.out" 2>"$T/del.err" &
    XPID=$!
}
# wait_delete: RC, OUT, ERR of the background delete
wait_delete() {
    local i
    for ((i = 0; i < 1200; i++)); do
        kill -0 "$XPID" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$XPID" 2>/dev/null && fail "snapshot-delete did not end"
    wait "$XPID"
    RC=$?
    XPID=
    OUT=$(<"$T/del.out")
    ERR=$(<"$T/del.err")
    LAST_CMD="xl snapshot-delete $D e1 (interrupted)"
}

# hmp CMD: a monitor command; OUT its answer
hmp() {
    run xl qemu-monitor-command "$D" "$1"
    [ "$RC" -eq 0 ] || fail_run "monitor command '$1'"
}

# job_offset: the bytes the delete's job has done (empty: no job)
job_offset() {
    hmp "info block-jobs"
    [[ $OUT =~ libxl-delete-xvda:\ Completed\ ([0-9]+)\ of\ ([0-9]+) ]] &&
        echo "${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"
}

# start_held_delete: the delete, its job held at 8 MiB/s through HMP
# once it exists (QEMU throttled until then, so that it cannot finish
# first)
start_held_delete() {
    local qpid held=
    qpid=$(runtime_pid "$D") || fail "no QEMU for $D"
    throttle "$qpid"
    start_delete
    for ((i = 0; i < 600; i++)); do
        run xl qemu-monitor-command "$D" \
            "block_job_set_speed libxl-delete-xvda 8M"
        if [ "$RC" -eq 0 ] && [ -z "$OUT" ]; then held=1; break; fi
        kill -0 "$XPID" 2>/dev/null || break
    done
    stop_throttle "$qpid"
    [ -n "$held" ] || fail "the delete's job was never seen running"
}
# wait_written: until the held job has written part of e1's image
wait_written() {
    local off len
    for ((i = 0; i < 100; i++)); do
        read -r off len <<<"$(job_offset)"
        [ -n "${off:-}" ] || fail "the delete's job ended too early"
        [ "$off" -gt 0 ] && break
        sleep 0.1
    done
    [ "$off" -lt "$len" ] || fail "the job finished too early"
}

# expect_outcome: whatever the records say, nothing is listed with the
# wrong data: the guest's disk holds what it wrote, every listed
# snapshot reverts to its own data, snapshot-check is clean; and e1 is
# no longer listed
expect_outcome() {
    local names
    expect_ok xl snapshot-check "$D"
    expect_ok xl snapshot-list --name "$D"
    names=$OUT
    expect_match "$names" "^e2$" "snapshot-list"
    read_pattern "$(active_image "$D" xvda)" 0xa3 0 1M
    read_pattern "$(active_image "$D" xvda)" 0xa2 1M 255M
    if grep -qx e1 <<<"$names"; then
        expect_ok xl snapshot-revert "$D" e1
        read_pattern "$(active_image "$D" xvda)" 0xa1 0 4M
        read_pattern "$(active_image "$D" xvda)" 0x00 4M 252M
    fi
    expect_ok xl snapshot-revert "$D" e2
    read_pattern "$(active_image "$D" xvda)" 0xa2 0 256M
    expect_ok xl snapshot-check "$D"
    expect_no_match "$names" "^e1$" "snapshot-list (e1 must be gone)"
}

# holds_socket PID: has PID a socket open (xl, while it polls QEMU)?
holds_socket() {
    local f
    for f in /proc/"$1"/fd/*; do
        [[ $(readlink "$f" 2>/dev/null) == socket:* ]] && return 0
    done
    return 1
}

# expect_dropped WHAT: WHAT said (ERR) that e1's record is removed,
# naming it; then the outcome
expect_dropped() {
    local err=$ERR
    expect_outcome
    expect_match "$err" "snapshot\(s\) e1 .*records are removed" \
        "$1: e1's record is removed, named"
}

case_sigint_live() {
    trap cleanup_bg EXIT
    setup live
    start_held_delete
    wait_written
    kill -INT "$XPID"
    wait_delete
    [ "$RC" -eq 1 ] || fail_run "an interrupted delete must exit 1"
    expect_dropped "snapshot-delete"
}

case_sigkill_live() {
    trap cleanup_bg EXIT
    setup live
    start_held_delete
    wait_written
    kill -KILL "$XPID"
    wait "$XPID" 2>/dev/null
    XPID=
    # snapshot-check changes nothing: it reports the journal
    run xl snapshot-check "$D"
    [ "$RC" -eq 1 ] || fail_run "snapshot-check with a journal left"
    expect_match "$OUT" "interrupted operation \(delete\) is pending" \
        "snapshot-check's report"
    # the recovery: the job is cancelled, and e1, whose image it had
    # written part of, is removed (said)
    expect_ok xl snapshot-recover "$D"
    expect_dropped "snapshot-recover"
}

case_sigint_offline() {
    trap cleanup_bg EXIT
    setup offline
    start_delete
    for ((i = 0; i < 300; i++)); do
        qi=$(pgrep -P "$XPID" -f "qemu-img commit") && break
        sleep 0.005
    done
    [ -n "${qi:-}" ] || fail "qemu-img commit never ran"
    # held: it runs 0.2 s, then xl gets SIGINT while it is stopped, and it
    # goes on only once xl has sent it SIGTERM (it cannot finish first)
    kill -STOP "$qi"
    kill -CONT "$qi"
    sleep 0.2
    kill -STOP "$qi"
    kill -INT "$XPID"
    for ((i = 0; i < 100; i++)); do
        grep -q "Aborting" "$T/del.err" && break
        sleep 0.05
    done
    sleep 0.2
    kill -CONT "$qi"
    wait_delete
    [ "$RC" -eq 1 ] || fail_run "an interrupted delete must exit 1"
    expect_dropped "snapshot-delete"
}

case_too_late() {
    trap cleanup_bg EXIT
    setup live
    start_held_delete
    # xl stopped between two polls (QEMU's monitor serves one client: not
    # while xl holds it), then the job let go at full speed
    for ((i = 0; i < 1000; i++)); do
        kill -STOP "$XPID"
        holds_socket "$XPID" || break
        kill -CONT "$XPID"
        sleep 0.002
    done
    hmp "block_job_set_speed libxl-delete-xvda 0"
    for ((i = 0; i < 300; i++)); do
        read -r off len <<<"$(job_offset)"
        [ -z "${off:-}" ] || [ "$off" = "$len" ] && break
        sleep 0.1
    done
    kill -INT "$XPID"
    kill -CONT "$XPID"
    wait_delete
    [ "$RC" -eq 0 ] || fail_run "a delete that finished must exit 0"
    expect_match "$OUT" "Domain snapshot e1 deleted" "stdout"
    local err=$ERR
    expect_outcome
    expect_match "$err" "Too late to abort: the job had already finished" \
        "stderr says the job had finished"
}

soft_case "live: SIGINT while the merge into e1's image runs" case_sigint_live
soft_case "live: xl killed (SIGKILL) mid-merge; the next command settles it" case_sigkill_live
soft_case "offline: SIGINT while qemu-img commits into e1's image" case_sigint_offline
soft_case "live: SIGINT after the merge finished (too late to abort)" case_too_late
run xl destroy "$D"
finish
