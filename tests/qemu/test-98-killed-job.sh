#!/bin/bash
# test-98-killed-job.sh - a live block commit whose QEMU is killed
#
# On the chain of lib-blockjob.sh (s1, s2, s3 on xvda), with 32 MiB
# more written to the active image, a live active commit of it into
# s1's image (base) runs slowly (--bandwidth 1); QEMU is killed with
# SIGKILL in the middle:
#  - xl block-commit fails with one line;
#  - the next command clears the job record (its process and its QEMU
#    are gone) and drops the snapshots whose data was in base or between
#    (s2, s3: base may hold part of top now), saying so;
#  - snapshot-check is clean, the domain starts again on its active
#    image and reads every layer through it; s1 still reverts to what
#    it saw.
# Then the same with the xl process killed too (kill -9 of both).
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/qemu/lib-blockjob.sh
. "$(dirname "$0")/lib-blockjob.sh"

# kill_mid_commit D KILL_XL: start the commit, kill QEMU (and xl)
kill_mid_commit() {
    local d=$1 kill_xl=$2 pid qpid i
    write_pattern "$d" xvda 0x55 8M 32M
    $XL block-commit --active --bandwidth 1 --base "$(img "$d" s1)" \
        "$d" xvda >"$T/bc.out" 2>"$T/bc.err" &
    pid=$!
    wait_job_state "$d" xvda running 20
    qpid=$(runtime_pid "$d")
    [ -n "$qpid" ] || fail "no QEMU for $d"
    [ "$kill_xl" = yes ] && kill -9 "$pid"
    kill -9 "$qpid"
    wait "$pid"
    RC=$?
    for ((i = 0; i < 50; i++)); do
        kill -0 "$qpid" 2>/dev/null || break
        sleep 0.1
    done
    if [ "$kill_xl" = no ]; then
        [ "$RC" -eq 1 ] || fail "block-commit exited $RC after QEMU died: $(cat "$T/bc.err")"
        [ "$(wc -l <"$T/bc.err")" -eq 1 ] ||
            fail "block-commit: expected one line on stderr" "$(cat "$T/bc.err")"
    fi
}

for kill_xl in no yes; do
    step "QEMU killed mid-commit (xl killed too: $kill_xl)"
    d=vm$kill_xl
    start_domain "$d" live
    build_chain "$d"
    flush_disk "$d"
    kill_mid_commit "$d" "$kill_xl"
    expect_ok xl snapshot-list --name "$d"
    expect_ok xl snapshot-recover "$d"
    expect_match "$ERR" "block job .* died" "the recovery's message"
    expect_match "$ERR" "s2" "the snapshots dropped"
    expect_ok xl snapshot-check "$d"
    expect_ok xl snapshot-list --name "$d"
    expect_eq "$(echo $OUT)" "s1" "the snapshots left"
    expect_no_file "$(domain_dir "$d")/blockjob-xvda.libxl-json"
    expect_ok xl create "$CFG"
    expect_view "$(active_image "$d" xvda)" 4
    read_pattern "$(active_image "$d" xvda)" 0x55 8M 32M
    expect_snapshot_view "$d" s1 1
    expect_ok xl snapshot-check "$d"
    drop_domain "$d"
done
