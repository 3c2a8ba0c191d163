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
#
# Then xl alone is killed, QEMU runs on: the job outlives its process,
# and the next command adopts it as its process would have finished it:
#  - --pivot: at READY it pivots, the disk runs on base, the records
#    say so;
#  - --keep-overlay: at READY it cancels, the top stays active, the
#    snapshots base held are dropped;
#  - an intermediate commit (of s4's image, holding the 32 MiB, into
#    s3's): once QEMU has concluded it, s4 (whose image was top) lives
#    in base, s3 (base's data) is dropped.
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

# kill_xl_mid_job D ARGS...: start xl block-commit ARGS at 1 MiB/s on
# D's xvda, kill -9 xl once the job runs, then let QEMU run it at full
# speed
kill_xl_mid_job() {
    local d=$1 pid
    shift
    $XL block-commit --bandwidth 1 "$@" "$d" xvda >"$T/bc.out" 2>"$T/bc.err" &
    pid=$!
    wait_job_state "$d" xvda running 20
    kill -9 "$pid"
    wait "$pid" 2>/dev/null
    expect_ok xl block-job --bandwidth 0 "$d" xvda
}

# wait_job_copied D VDEV SECS: the job's progress is at its end
wait_job_copied() {
    local d=$1 vdev=$2 secs=$3 t0 off len
    t0=$(now)
    while :; do
        expect_ok xl block-job --json "$d" "$vdev"
        off=$(jq -r .offset <<<"$OUT") len=$(jq -r .len <<<"$OUT")
        [ "$len" != 0 ] && [ "$off" = "$len" ] && return 0
        if awk -v e="$(elapsed "$t0")" -v s="$secs" 'BEGIN {exit !(e > s)}'; then
            fail "job on $d $vdev not at its end within ${secs}s" "$(run_context)"
        fi
        sleep 0.2
    done
}

for how in pivot keep-overlay intermediate; do
    step "xl killed mid-commit, QEMU lives ($how): the next command adopts the job"
    d=vm-$how
    start_domain "$d" live
    build_chain "$d"
    write_pattern "$d" xvda 0x55 8M 32M
    flush_disk "$d"
    case $how in
    pivot|keep-overlay)
        del=(--delete)
        [ "$how" = keep-overlay ] && del=()
        kill_xl_mid_job "$d" --active "--$how" "${del[@]}" --base "$(img "$d" s1)"
        wait_job_state "$d" xvda ready 60
        ;;
    intermediate)
        # s4's image holds the 32 MiB: the job takes long enough
        expect_ok xl snapshot-create "${EXT_A[@]}" "$d" s4
        kill_xl_mid_job "$d" --delete --top "$(img "$d" s3)" --base "$(img "$d" s2)"
        # it waits at PENDING (shown running) for its finalize: the
        # adoption writes the images out, then finalizes it
        wait_job_copied "$d" xvda 60
        ;;
    esac
    expect_file "$(domain_dir "$d")/blockjob-xvda.libxl-json"
    expect_ok xl snapshot-recover "$d"
    expect_match "$ERR" "outlived its process" "the adoption's message"
    said=$ERR
    expect_no_file "$(domain_dir "$d")/blockjob-xvda.libxl-json"
    expect_no_job "$d"
    expect_ok xl snapshot-check "$d"
    flush_disk "$d"
    case $how in
    pivot)
        expect_match "$said" "completed" "the outcome"
        expect_eq "$(active_image "$d" xvda)" "$(img "$d" s1)" "the active image after the pivot"
        expect_ok xl qemu-monitor-command "$d" "info block"
        expect_match "$OUT" "$(img "$d" s1)" "the image QEMU runs on"
        expect_no_match "$OUT" "$(img "$d" s3)" "the image QEMU runs on"
        expect_ok xl snapshot-list --name "$d"
        expect_eq "$(echo $OUT)" "s1" "the snapshots left"
        ;;
    keep-overlay)
        expect_match "$said" "cancelled" "the outcome"
        expect_eq "$(active_image "$d" xvda)" "$(img "$d" s3)" "the active image after --keep-overlay"
        expect_ok xl snapshot-list --name "$d"
        expect_eq "$(echo $OUT)" "s1" "the snapshots left"
        ;;
    intermediate)
        expect_match "$said" "completed" "the outcome"
        expect_eq "$(chain_files "$(active_image "$d" xvda)")" \
"$(img "$d" s4)
$(img "$d" s2)
$(img "$d" s1)
$(img "$d")" "the chain after the commit"
        expect_ok xl snapshot-list --name "$d"
        expect_eq "$(echo $OUT)" "s1 s2 s4" "the snapshots left"
        ;;
    esac
    expect_view "$(active_image "$d" xvda)" 4
    read_pattern "$(active_image "$d" xvda)" 0x55 8M 32M
    if [ "$how" = intermediate ]; then
        expect_snapshot_view "$d" s4 4
        read_pattern "$(active_image "$d" xvda)" 0x55 8M 32M
        expect_snapshot_view "$d" s2 2
    fi
    expect_snapshot_view "$d" s1 1
    expect_ok xl snapshot-check "$d"
    drop_domain "$d"
done
