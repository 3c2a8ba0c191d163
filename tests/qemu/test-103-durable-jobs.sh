#!/bin/bash
# test-103-durable-jobs.sh - a live block job's data survives a crash of
# QEMU right after the command returns
#
# QEMU keeps a qcow2 image's L2 tables in its metadata cache; a job that
# changes the graph (a stream drops the top's backing file, an
# intermediate commit re-points the overlay at base, a pivot makes base
# or the copy active) while the metadata of the clusters it copied is
# still only in that cache loses the guest's data when QEMU dies before
# its next flush (once: a stream said "complete", QEMU was killed, the
# active image read zeros where the base images had the data, and
# snapshot-check said all was well).
#
# On lib-blockjob.sh's chain (four layers on xvda), for each job type:
# the command, then kill -9 of QEMU at once (no flush from the test),
# then every layer reads back through the remaining chain, and
# `qemu-img check` is clean:
#  - block-stream of the whole chain;
#  - intermediate block-commit (s2 into s1);
#  - active block-commit --pivot;
#  - block-copy --pivot;
#  - snapshot-delete of s2 (an intermediate commit of the engine).
# The case functions run through soft_case:
# shellcheck disable=SC2317
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/qemu/lib-blockjob.sh
. "$(dirname "$0")/lib-blockjob.sh"

# crash D: kill -9 D's QEMU (no flush before), wait until it is gone
crash() {
    local d=$1 qpid i
    qpid=$(runtime_pid "$d") || fail "no QEMU for $d"
    kill -9 "$qpid"
    for ((i = 0; i < 50; i++)); do
        kill -0 "$qpid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$qpid" 2>/dev/null && fail "QEMU of $d still runs after kill -9"
    return 0
}

# after_crash D IMAGE N: IMAGE (the active one) sees the N layers by
# itself and through its chain, and the images check clean
after_crash() {
    local d=$1 image=$2 n=$3
    expect_view "$image" "$n"
    check_images
    drop_domain "$d"
}

case_stream() {
    local d=dj1
    start_domain "$d" live
    build_chain "$d"
    expect_ok xl block-stream "$d" xvda
    crash "$d"
    expect_eq "$(chain_files "$(img "$d" s3)")" "$(img "$d" s3)" "chain after the stream"
    after_crash "$d" "$(img "$d" s3)" 4
}

case_commit_intermediate() {
    local d=dj2
    start_domain "$d" live
    build_chain "$d"
    expect_ok xl block-commit --top "$(img "$d" s2)" --base "$(img "$d" s1)" \
        "$d" xvda
    crash "$d"
    expect_eq "$(chain_files "$(img "$d" s3)")" "$(img "$d" s3)
$(img "$d" s1)
$(img "$d")" "chain after the intermediate commit"
    after_crash "$d" "$(img "$d" s3)" 4
}

case_commit_active() {
    local d=dj3
    start_domain "$d" live
    build_chain "$d"
    expect_ok xl block-commit --pivot "$d" xvda
    crash "$d"
    expect_eq "$(active_image "$d" xvda)" "$(img "$d")" "active image after the pivot"
    after_crash "$d" "$(img "$d")" 4
}

case_copy() {
    local d=dj4 dst=$T/dj4-copy.qcow2
    start_domain "$d" live
    build_chain "$d"
    expect_ok xl block-copy --pivot "$d" xvda "$dst"
    crash "$d"
    expect_eq "$(active_image "$d" xvda)" "$dst" "active image after the copy"
    expect_eq "$(chain_files "$dst")" "$dst" "the copy's chain"
    expect_view "$dst" 4
    run qemu-img check "$dst"
    [ "$RC" -eq 0 ] || fail_run "qemu-img check of the copy"
    rm -f "$dst"
    after_crash "$d" "$(img "$d")" 1
}

case_delete() {
    local d=dj5
    start_domain "$d" live
    build_chain "$d"
    expect_ok xl snapshot-delete "$d" s2
    crash "$d"
    after_crash "$d" "$(img "$d" s3)" 4
}

soft_case "block-stream, then QEMU killed" case_stream
soft_case "intermediate block-commit, then QEMU killed" case_commit_intermediate
soft_case "active block-commit --pivot, then QEMU killed" case_commit_active
soft_case "block-copy --pivot, then QEMU killed" case_copy
soft_case "snapshot-delete (commit), then QEMU killed" case_delete
finish
