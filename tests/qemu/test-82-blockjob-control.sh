#!/bin/bash
# test-82-blockjob-control.sh - xl block-job, and slow jobs ended early
#
# A slow job: 32 MiB in s1's overlay committed into the base (s1's
# image) at 1 MiB/s (slow_chain: base A at 0, s1's overlay B at 8M+32M,
# active C at 48M).
#  - while an --async commit runs: xl block-job --info / --json (parsed
#    with jq: type, state, live, offset < len, speed) and --bandwidth
#    (the new speed shows); a second job on the disk, snapshot-create,
#    -revert, -delete and a pivot are refused (exit 1, one line, records
#    unchanged); block-job on a disk without a job fails; snapshot-check
#    finds no problem (the job's images are left out, said once), also
#    at READY below;
#  - xl block-job --abort mid-job succeeds; then no job is left (neither
#    recorded nor in QEMU), qemu-img check passes, the backing chain is
#    as before, every pattern reads through the active image, and the
#    records are kept (s1 may be dropped: the job wrote its image);
#  - --timeout 2 on a slow commit and on a slow stream (live) and on a
#    slow offline commit: exit 1, one line, the same checks;
#  - SIGINT to a waiting `xl block-commit --verbose` (live and
#    offline): exits non-zero, its job lines end with one "cancelled"
#    and none says "concluded", the same checks;
#  - xl block-job --abort of an offline job that another xl runs stops
#    it (or is refused);
#  - an active commit at READY: --info/--json, --bandwidth, refusals,
#    guest writes, then --abort: the top stays active, nothing lost;
#  - after each of these early ends, s1 - whose image the job had
#    started to write - still reads as taken, or is gone from the list;
#  - an --async commit that finished by itself is recorded by the next
#    xl block-job (--pivot, --abort): the records follow the chain, and
#    the snapshots left read as taken.
# The case functions run through soft_case:
# shellcheck disable=SC2317
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/qemu/lib-blockjob.sh
. "$(dirname "$0")/lib-blockjob.sh"

A=0x11 B=0x22 C=0x33

slow_chain() {
    local d=$1
    write_pattern "$d" xvda "$A" 0 1M
    expect_ok xl snapshot-create "${EXT_A[@]}" "$d" s1
    write_pattern "$d" xvda "$B" 8M 32M
    expect_ok xl snapshot-create "${EXT_A[@]}" "$d" s2
    write_pattern "$d" xvda "$C" 48M 1M
}

# the data of slow_chain, through IMAGE
expect_slow_data() {
    read_patterns "$1" qcow2 "$A 0 1M" "0 1M 7M" "$B 8M 32M" "0 40M 8M" \
        "$C 48M 1M"
}

# expect_running_partial D [VDEV]: the job runs, 0 <= offset < len
expect_running_partial() {
    local d=$1 vdev=${2:-xvda}
    expect_ok xl block-job --json "$d" "$vdev"
    jq -e '.state == "running" and .offset >= 0 and .offset < .len' \
        >/dev/null <<<"$OUT" || fail_run "expected a running job, not done"
}

# What the records say, for "kept" checks: the files of the domain's
# record directory (a job record among them), the active images of the
# domain record, and each snapshot's xvda image.
records_summary() {
    local d=$1 dir
    dir=$(domain_dir "$d")
    ls "$dir"
    jq -c .disks "$dir/domain.libxl-json"
    expect_ok xl snapshot-list --json "$d"
    jq -r '.[] | "\(.name) \(.disks[] | select(.vdev == "xvda") | .file)"' <<<"$OUT" |
        sort
}

# expect_records_kept D BEFORE WHAT: after a commit of s1's overlay into
# the base that was aborted (or timed out, or interrupted), the records
# are as BEFORE (a records_summary), but for s1 and s2, which may be
# gone: the job wrote s1's image, and the product may drop s2 as well
# (its image was the commit's top).  Whether those left read as taken,
# and whether s2 should have stayed, are checked apart (case_as_taken,
# case_top_kept).
expect_records_kept() {
    local d=$1 before=$2 what=$3 after b a
    after=$(records_summary "$d")
    [ "$after" = "$before" ] && return 0
    b=$(grep -v -E -e '^snapshotdata-s[12]\.libxl-json$' -e '^s[12] ' <<<"$before")
    a=$(grep -v -E -e '^snapshotdata-s[12]\.libxl-json$' -e '^s[12] ' <<<"$after")
    [ "$a" = "$b" ] && return 0
    fail "$what changed the records (other than dropping s1, s2)" "diff before/after:
$(diff <(printf '%s\n' "$before") <(printf '%s\n' "$after"))"
}

# expect_timeout_error CMD...: CMD must end by its --timeout 2: exit 1
# within [1.8 s, 6 s], stderr starting with the one-line error.  That it
# is the only line is checked later by expect_one_line (so that the
# checks of the chain run in any case): SAVED_RUN keeps the run.
expect_timeout_error() {
    local t0
    t0=$(now)
    run "$@"
    expect_between "$(elapsed "$t0")" 1.8 6 "seconds until the timeout"
    [ "$RC" -eq 1 ] || fail_run "expected exit status 1"
    [[ $ERR == "libxl-snapshot: error: "*"did not finish within 2000 ms"* ]] ||
        fail_run "expected the timeout error first on stderr"
    SAVED_RUN=("$RC" "$OUT" "$ERR" "$LAST_CMD")
}

# One error line; a commit that had started writing base may add one
# warning line naming the snapshots whose data that overwrote (their
# records are dropped, which is the truth about them).
expect_one_line() {
    RC=${SAVED_RUN[0]} OUT=${SAVED_RUN[1]} ERR=${SAVED_RUN[2]} LAST_CMD=${SAVED_RUN[3]}
    local n
    n=$(printf '%s\n' "$ERR" | wc -l)
    if [ "$n" -eq 2 ]; then
        [[ $(printf '%s\n' "$ERR" | sed -n 2p) == "libxl-snapshot: warning: "*"overwrote (in base)"* ]] ||
            fail_run "expected the error, then at most the overwrite warning"
    elif [ "$n" -ne 1 ]; then
        fail_run "expected exactly one line on stderr"
    fi
}

# expect_check_during_job D STATE: snapshot-check while D's xvda is in
# a job QEMU runs (in STATE) finds no problem: the job is none, and
# the images QEMU holds for it are left out, said in one warning (they
# were read, and qemu-img's "Failed to get ... lock" was reported)
expect_check_during_job() {
    local d=$1 state=$2
    expect_ok xl snapshot-check "$d"
    expect_eq "$OUT" "$d: the records and the images agree" "snapshot-check during the job"
    expect_eq "$ERR" "libxl-snapshot: warning: domain $d: disk xvda is in block job libxl-commit-xvda ($state): its images are not checked until the job is over" \
        "snapshot-check's stderr during the job"
    expect_ok xl snapshot-check --json "$d"
    expect_eq "$(jq -c .problems <<<"$OUT")" "[]" "snapshot-check --json during the job"
}

# expect_cancelled_once NAME: the --verbose lines of an interrupted job
# (bg_start NAME) end it once, "cancelled"; none says "concluded" (a
# step on the way to cancelled: it was printed first, as if it ended)
expect_cancelled_once() {
    local out
    out=$(grep -E '^Block (commit|stream): \[' "$T/$1.out")
    expect_no_match "$out" 'concluded' "the job lines after SIGINT"
    expect_eq "$(grep -c ' cancelled$' <<<"$out")" 1 \
        "job lines saying cancelled (of: $out)"
    expect_match "$(tail -n 1 <<<"$out")" ' cancelled$' "the last job line"
}

# expect_as_taken D SNAP...: each SNAP (s1 or s2 of slow_chain) still
# listed reads as it was taken: s1 A only, s2 A and B.  Reverts D.
expect_as_taken() {
    local d=$1 s names
    shift
    expect_ok xl snapshot-list --name "$d"
    names=$OUT
    for s in "$@"; do
        grep -qx "$s" <<<"$names" || continue
        expect_ok xl snapshot-revert "$d" "$s"
        case $s in
        s1) read_patterns "$(active_image "$d" xvda)" qcow2 "$A 0 1M" "0 1M 48M" ;;
        s2) read_patterns "$(active_image "$d" xvda)" qcow2 "$A 0 1M" "0 1M 7M" \
                "$B 8M 32M" "0 40M 9M" ;;
        esac
    done
}

# ------------------------------------------------------------------

case_async_info_abort() {
    local d=j1 rs rfp_job chain t0 arc aout aerr
    start_domain "$d" live
    slow_chain "$d"
    chain=$(chain_files "$(img "$d" s2)")
    rs=$(records_summary "$d")
    t0=$(now)
    expect_ok xl block-commit --async --bandwidth 1 --top "$(img "$d" s1)" "$d" xvda
    expect_eq "$OUT" "Block commit of xvda started" "block-commit --async output"
    expect_between "$(elapsed "$t0")" 0 5 "seconds block-commit --async took"

    step "  --info, --json, --bandwidth"
    expect_ok xl block-job --info "$d" xvda
    expect_match "$OUT" '^Block commit: \[ *[0-9]+ %\]$' "block-job --info"
    expect_match "$OUT" '^Id: +[^ ]+$' "block-job --info"
    expect_match "$OUT" '^Type: +commit$' "block-job --info"
    expect_match "$OUT" '^State: +running$' "block-job --info"
    expect_match "$OUT" '^Speed: +1 MiB/s$' "block-job --info"
    [[ $OUT =~ Progress:\ +([0-9]+)/([0-9]+)\ bytes ]] ||
        fail_run "no progress line in block-job --info"
    [ "${BASH_REMATCH[1]}" -lt "${BASH_REMATCH[2]}" ] ||
        fail_run "progress of a slow job already at its end"
    expect_ok xl block-job "$d" xvda
    expect_match "$OUT" '^State: +running$' "block-job (--info by default)"
    expect_ok xl block-job --json "$d" xvda
    jq -e . >/dev/null <<<"$OUT" || fail_run "block-job --json is not JSON"
    expect_eq "$(jq -r '[.vdev, .type, .state, .live, .speed] | map(tostring) | join(" ")' <<<"$OUT")" \
        "xvda commit running true 1048576" "block-job --json: vdev type state live speed"
    expect_eq "$(jq -r '.offset <= .len and .offset < .len and .len > 0 and (.id | length > 0)' <<<"$OUT")" \
        "true" "block-job --json: 0 <= offset < len, an id"
    expect_eq "$(jq -r '[.top, .base] | map(test("^/.*\\.(qcow2|img)$")) | all' <<<"$OUT")" \
        "true" "block-job --json: the job's top and base images"
    expect_running_partial "$d"
    expect_ok xl block-job --bandwidth 2 "$d" xvda
    expect_eq "$OUT" "" "block-job --bandwidth output"
    expect_eq "$(job_field "$d" xvda speed)" 2097152 "speed after --bandwidth 2"
    expect_ok xl block-job --info "$d" xvda
    expect_match "$OUT" '^Speed: +2 MiB/s$' "block-job --info after --bandwidth 2"
    expect_ok xl block-job --bandwidth 1 "$d" xvda

    step "  refused while the job runs"
    rfp_job=$(records_fingerprint)
    expect_error "already in block job" xl block-commit --active "$d" xvda
    expect_error "already in block job" xl block-commit --top "$(img "$d" s1)" "$d" xvda
    expect_error "already in block job" xl block-stream "$d" xvda
    expect_error "is in block job" xl snapshot-create "${EXT_A[@]}" "$d" s3
    expect_error "is in block job" xl snapshot-create "$d" s3
    expect_error "is in block job" xl snapshot-revert "$d" s1
    expect_error "is in block job" xl snapshot-delete "$d" s1
    expect_error "cannot be pivoted" xl block-job --pivot "$d" xvda
    expect_error "has no block job" xl block-job --info "$d" xvdb
    expect_error "has no block job" xl block-job --json "$d" xvdb
    expect_error "has no block job" xl block-job --abort "$d" xvdb
    expect_error "has no block job" xl block-job --pivot "$d" xvdb
    expect_error "has no block job" xl block-job --bandwidth 5 "$d" xvdb
    run xl block-job --abort --pivot "$d" xvda     # a usage error: 2
    [ "$RC" -eq 2 ] || fail_run "expected exit status 2 (usage)"
    expect_check_during_job "$d" running
    expect_records_unchanged "$rfp_job" "the refused commands (records)"
    expect_running_partial "$d"

    step "  --abort mid-job"
    run xl block-job --abort "$d" xvda
    arc=$RC aout=$OUT aerr=$ERR
    expect_no_job "$d"
    expect_eq "$(chain_files "$(img "$d" s2)")" "$chain" "backing chain after the abort"
    expect_eq "$(active_image "$d" xvda)" "$(img "$d" s2)" "active image after the abort"
    flush_disk "$d"
    check_images
    expect_slow_data "$(img "$d" s2)"
    expect_records_kept "$d" "$rs" "the aborted commit"
    domain_running "$d" || fail "$d stopped"
    # and the abort said it did
    RC=$arc OUT=$aout ERR=$aerr LAST_CMD="xl block-job --abort $d xvda"
    [ "$RC" -eq 0 ] || fail_run "xl block-job --abort: expected success"
    expect_eq "$OUT" "Block job on xvda aborted" "block-job --abort output"
}

# case_as_taken D SNAP...: after a commit into s1's image ended early
# (the case before), the snapshots SNAP still listed read as taken
case_as_taken() {
    local d=$1
    shift
    case_domain "$d"
    expect_as_taken "$d" "$@"
    drop_domain "$d"
}

# case_top_kept D: the commit's top was s1's overlay, which a commit only
# reads: s2, whose image it is, lost nothing and should still be listed
# after the abort (that it reads as taken: case_as_taken)
case_top_kept() {
    local d=$1
    case_domain "$d"
    expect_ok xl snapshot-list --name "$d"
    expect_match "$OUT" '^s2$' "snapshot-list after the aborted commit (s2, whose image was top)"
}

case_timeout() {
    local d=j2 rs chain t0
    start_domain "$d" live
    slow_chain "$d"
    chain=$(chain_files "$(img "$d" s2)")
    rs=$(records_summary "$d")
    expect_timeout_error \
        xl block-commit --timeout 2 --bandwidth 1 --top "$(img "$d" s1)" "$d" xvda
    expect_no_job "$d"
    expect_eq "$(chain_files "$(img "$d" s2)")" "$chain" "backing chain after the timeout"
    flush_disk "$d"
    check_images
    expect_slow_data "$(img "$d" s2)"
    expect_records_kept "$d" "$rs" "the commit that timed out"
    local commit_run=("${SAVED_RUN[@]}")

    step "  --timeout 2 on a slow stream"
    rs=$(records_summary "$d")
    expect_timeout_error xl block-stream --timeout 2 --bandwidth 1 "$d" xvda
    expect_one_line
    expect_no_job "$d"
    expect_eq "$(chain_files "$(img "$d" s2)")" "$chain" "backing chain after the timeout"
    flush_disk "$d"
    check_images
    expect_slow_data "$(img "$d" s2)"
    # (a stream writes no snapshot's image: nothing to drop)
    expect_eq "$(records_summary "$d")" "$rs" "records after the stream that timed out"

    step "  SIGINT to a waiting block-commit --verbose"
    rs=$(records_summary "$d")
    bg_start sigint "$XL" block-commit --verbose --bandwidth 1 --top "$(img "$d" s1)" "$d" xvda
    wait_job_state "$d" xvda running 10
    sleep 1
    expect_running_partial "$d"
    kill -INT "$BG_PID"
    bg_wait 20
    [ "$BG_RC" != alive ] || fail "xl block-commit still runs 20 s after SIGINT" "$(bg_context sigint)"
    [ "$BG_RC" -ne 0 ] || fail "xl block-commit exited 0 after SIGINT" "$(bg_context sigint)"
    expect_match "$(<"$T/sigint.err")" "Abort" "stderr of the interrupted block-commit"
    expect_cancelled_once sigint
    expect_no_job "$d"
    expect_eq "$(chain_files "$(img "$d" s2)")" "$chain" "backing chain after SIGINT"
    flush_disk "$d"
    check_images
    expect_slow_data "$(img "$d" s2)"
    expect_records_kept "$d" "$rs" "the interrupted commit"
    domain_running "$d" || fail "$d stopped"
    # (the commit's timeout error: checked last, so that the steps
    # above run in any case)
    SAVED_RUN=("${commit_run[@]}")
    expect_one_line
}

case_offline_timeout_sigint() {
    local d=j3 rs chain t0
    start_domain "$d" offline
    slow_chain "$d"
    chain=$(chain_files "$(img "$d" s2)")
    rs=$(records_summary "$d")
    expect_timeout_error \
        xl block-commit --timeout 2 --bandwidth 1 --top "$(img "$d" s1)" "$d" xvda
    expect_no_job "$d"
    expect_eq "$(chain_files "$(img "$d" s2)")" "$chain" "backing chain after the timeout"
    check_images
    expect_slow_data "$(img "$d" s2)"
    expect_records_kept "$d" "$rs" "the commit that timed out"
    local commit_run=("${SAVED_RUN[@]}")

    step "  SIGINT to an offline block-commit --verbose"
    rs=$(records_summary "$d")
    bg_start sigint "$XL" block-commit --verbose --bandwidth 1 --top "$(img "$d" s1)" "$d" xvda
    wait_job_state "$d" xvda running 10
    sleep 1
    kill -INT "$BG_PID"
    bg_wait 20
    [ "$BG_RC" != alive ] || fail "xl block-commit still runs 20 s after SIGINT" "$(bg_context sigint)"
    [ "$BG_RC" -ne 0 ] || fail "xl block-commit exited 0 after SIGINT" "$(bg_context sigint)"
    expect_cancelled_once sigint
    expect_no_job "$d"
    expect_eq "$(chain_files "$(img "$d" s2)")" "$chain" "backing chain after SIGINT"
    check_images
    expect_slow_data "$(img "$d" s2)"
    expect_records_kept "$d" "$rs" "the interrupted commit"
    pgrep -f "qemu-img commit .*$T/" >/dev/null &&
        fail "a qemu-img commit of this test still runs after SIGINT"
    SAVED_RUN=("${commit_run[@]}")
    expect_one_line
}

case_ready_abort() {
    local d=j5 rs arc aout aerr
    start_domain "$d" live
    write_pattern "$d" xvda "$A" 0 1M
    expect_ok xl snapshot-create "${EXT_A[@]}" "$d" s1
    write_pattern "$d" xvda "$B" 1M 1M
    rs=$(records_summary "$d")
    expect_ok xl block-commit --active "$d" xvda
    expect_eq "$OUT" "Now in synchronized phase: pivot or abort with xl block-job" \
        "block-commit --active output"
    expect_ok xl block-job --json "$d" xvda
    expect_eq "$(jq -r '[.type, .state, .live, (.offset == .len)] | map(tostring) | join(" ")' <<<"$OUT")" \
        "active-commit ready true true" "block-job --json at READY: type state live offset==len"
    expect_ok xl block-job --info "$d" xvda
    expect_match "$OUT" '^State: +ready$' "block-job --info at READY"
    expect_match "$OUT" '^Block commit: \[100 %\]$' "block-job --info at READY"
    expect_ok xl block-job --bandwidth 3 "$d" xvda
    expect_eq "$(job_field "$d" xvda speed)" 3145728 "speed after --bandwidth 3 at READY"
    expect_error "already in block job" xl block-commit --active --pivot "$d" xvda
    expect_error "is in block job" xl snapshot-create "${EXT_A[@]}" "$d" s2
    expect_check_during_job "$d" ready
    # the guest goes on writing while READY
    write_pattern "$d" xvda "$C" 2M 1M
    run xl block-job --abort "$d" xvda
    arc=$RC aout=$OUT aerr=$ERR
    expect_no_job "$d"
    expect_eq "$(active_image "$d" xvda)" "$(img "$d" s1)" "active image after the abort"
    expect_eq "$(chain_files "$(img "$d" s1)")" "$(img "$d" s1)
$(img "$d")" "backing chain after the abort"
    flush_disk "$d"
    check_images
    read_patterns "$(img "$d" s1)" qcow2 "$A 0 1M" "$B 1M 1M" "$C 2M 1M"
    expect_records_kept "$d" "$rs" "the aborted active commit"
    # the disk is free again
    expect_ok xl snapshot-create "${EXT_A[@]}" "$d" s2
    RC=$arc OUT=$aout ERR=$aerr LAST_CMD="xl block-job --abort $d xvda"
    [ "$RC" -eq 0 ] || fail_run "xl block-job --abort at READY: expected success"
    expect_eq "$OUT" "Block job on xvda aborted" "block-job --abort output"
}

# build_chain, then a quick --async intermediate commit of s2's overlay
# (into base) that ends by itself; VERB (--pivot or --abort) of xl
# block-job then finds it concluded and must record it; or (VERB
# "next") the next command adopts it (its xl is gone) and records it.
concluded_job() {
    local d=$1 verb=$2
    start_domain "$d" live
    build_chain "$d"
    expect_ok xl block-commit --async --top "$(img "$d" s2)" "$d" xvda
    wait_job_state "$d" xvda concluded 20
    expect_ok xl block-job --json "$d" xvda
    expect_eq "$(jq -r '.offset == .len' <<<"$OUT")" true "offset == len of the concluded job"
    if [ "$verb" = next ]; then
        expect_ok xl snapshot-recover "$d"
        expect_match "$ERR" "outlived its process.*completed" "the adoption's message"
    else
        run xl block-job "$verb" "$d" xvda
        expect_no_match "$ERR" "outlived" "block-job $verb's message"
    fi
    expect_no_job "$d"
    expect_eq "$(chain_files "$(img "$d" s3)")" "$(img "$d" s3)
$(img "$d")" "chain after the commit"
    flush_disk "$d"
    expect_view "$(img "$d" s3)" 4
    check_images
    # the records follow the commit: s3's image was top, so its data is
    # base's now; s1's and s2's data is gone
    expect_ok xl snapshot-list --name "$d"
    expect_eq "$OUT" "s3" "snapshot-list after the commit (s3, whose image was top, stays)"
    expect_ok xl snapshot-info --json "$d" s3
    expect_eq "$(jq -r '.disks[] | select(.vdev == "xvda") | .file' <<<"$OUT")" \
        "$(img "$d")" "s3's image after the commit"
    expect_snapshots_as_taken "$d"
    expect_ok xl destroy "$d"
    drop_domain "$d"
}

case_concluded_pivot() {
    concluded_job j6 --pivot
}

case_concluded_abort() {
    concluded_job j7 --abort
}

case_concluded_next() {
    concluded_job j8 next
}

# An offline job runs in the qemu-img of the xl that started it; an
# abort from another xl must stop it (or be refused), not just say so.
# (j3 of the case before: shut off, its slow chain as built)
case_offline_abort_other() {
    local d=j3 chain rs
    case_domain "$d"
    chain=$(chain_files "$(img "$d" s2)")
    rs=$(records_summary "$d")
    bg_start offline "$XL" block-commit --bandwidth 1 --top "$(img "$d" s1)" "$d" xvda
    wait_job_state "$d" xvda running 10
    expect_ok xl block-job --json "$d" xvda
    expect_eq "$(jq -r '[.type, .state, .live] | map(tostring) | join(" ")' <<<"$OUT")" \
        "commit running false" "block-job --json of an offline job"
    expect_error "qemu-img" xl block-job --bandwidth 5 "$d" xvda
    expect_error "nothing to pivot" xl block-job --pivot "$d" xvda
    run xl block-job --abort "$d" xvda
    if [ "$RC" -eq 0 ]; then
        # it said so: the job must end
        bg_wait 2
        if [ "$BG_RC" = alive ]; then
            kill -INT "$BG_PID"
            bg_wait 20
            fail "xl block-job --abort of an offline job said it aborted it, but the job still ran 2 s later" \
                "$(run_context)"
        fi
    else
        if [ "$RC" -ne 1 ] || [ "$(wc -l < "$T/.err")" -ne 1 ]; then
            fail_run "a refused abort: expected exit 1 and one line"
        fi
        kill -INT "$BG_PID"
        bg_wait 20
    fi
    expect_no_job "$d"
    expect_eq "$(chain_files "$(img "$d" s2)")" "$chain" "backing chain after the abort"
    check_images
    expect_slow_data "$(img "$d" s2)"
    expect_records_kept "$d" "$rs" "the aborted commit"
}

soft_case "an --async commit: --info, --json, --bandwidth, refusals, --abort" case_async_info_abort
soft_case "  then s2 (its image was the commit's top) is kept" case_top_kept j1
soft_case "  and s1 and s2 read as taken" case_as_taken j1 s1 s2
soft_case "live: --timeout 2 on a slow commit and stream; SIGINT" case_timeout
soft_case "  then s1 and s2 read as taken" case_as_taken j2 s1 s2
soft_case "offline: --timeout 2, SIGINT" case_offline_timeout_sigint
soft_case "block-job --abort of an offline job another xl runs" case_offline_abort_other
soft_case "  then s1 and s2 read as taken" case_as_taken j3 s1 s2
soft_case "active commit at READY: --info, --bandwidth, refusals, --abort" case_ready_abort
soft_case "  then s1 (the commit's base) reads as taken" case_as_taken j5 s1
soft_case "a concluded --async commit recorded by block-job --pivot" case_concluded_pivot
soft_case "a concluded --async commit recorded by block-job --abort" case_concluded_abort
soft_case "a concluded --async commit adopted by the next command" case_concluded_next
finish
