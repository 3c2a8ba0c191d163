#!/bin/bash
# test-95-blockcopy.sh - xl block-copy, live (QMP drive-mirror) and
# offline (qemu-img convert)
#
# The chain is lib-blockjob.sh's build_chain (s1..s3 external, four
# layers on xvda, one pattern each); copies go to $T/other ("other
# storage"):
#  - live full --pivot: the domain runs on the copy (xl list -l, and
#    after a reboot), a standalone image with all four layers; the old
#    chain is kept (said), every snapshot still reverts to its own data
#    and deletes; snapshot-check clean;
#  - live --shallow --finish: the domain stays where it was, the copy is
#    the active image alone on the same backing, `qemu-img compare`
#    equal to the source; then --shallow --pivot: the domain on the
#    copy, on the old backing, snapshots of it and before it revert;
#  - offline full --pivot (the domain boots on it), --shallow, raw xvdb
#    to raw;
#  - a persistent dirty bitmap of the active image is on the copy after
#    each pivot (live --pivot, xl block-job --pivot, offline);
#  - --async, then xl block-job --info (type copy) and --pivot at READY:
#    a persistent dirty bitmap is on the copy after the pivot; a copy
#    left at READY, then xl block-job --abort: the copy removed;
#  - --bandwidth observed (a slow copy), --timeout, SIGINT (live and
#    offline): the copy removed, nothing changed; kill -9 of xl in the
#    middle (live: the next command adopts the job and pivots as told;
#    offline: the next command cleans up);
#  - crash points XL_SNAPSHOT_FAULT=blockcopy:1..4, each followed by the
#    next command: wholly old (no copy left) or wholly new; QEMU killed
#    under the copy: wholly old;
#  - a branching tree (internal and external snapshots, two branches,
#    an internal snapshot in the active image) copied with --pivot:
#    every snapshot reverts to its own data, then all delete;
#  - refusals, one line and nothing changed: Dest exists, Dest in the
#    chain or a snapshot's, a job in flight, --pivot with --finish, an
#    unknown disk, a format mismatch with --reuse-external, raw with
#    --shallow;
#  - snapshot-revert after pivots of both disks (two of xvda): under
#    valgrind when installed, no invalid access (once a heap overflow);
#  - a symbolic or hard link to an image of the chain: refused as the
#    image; a pivot to a link to a prepared image records its target;
#  - xl block-job --pivot or --abort of a copy whose QEMU died: refused
#    in one line, the copy the job made removed; a read-only dest: one
#    line;
#  - SIGTERM and SIGHUP to a waiting block-copy: aborted as by SIGINT;
#  - xl block-job --pivot (or block-copy --pivot) to a dest removed or
#    replaced since the copy began: refused in one line, the job left at
#    READY for --abort (no later command pivots it);
#  - a block-copy that adopts and finishes a dead copy's pivot then
#    copies from the new active image;
#  - refused in one line: --async offline or with --timeout, --shallow of
#    a raw disk; errors with the usual prefix; a raw copy says the
#    bitmaps stay behind; block-job --json names a copy's source and
#    dest; a copy aborted by another command says "cancelled";
#    block-job --info of a copy whose QEMU died says it is gone;
# qemu-img check and snapshot-check after each outcome.
# The case functions run through soft_case:
# shellcheck disable=SC2317
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/qemu/lib-blockjob.sh
. "$(dirname "$0")/lib-blockjob.sh"

OTHER=$T/other
mkdir -p "$OTHER"

expect_clean() {
    expect_ok xl snapshot-check "$1"
    expect_match "$OUT" "the records and the images agree" "snapshot-check $1"
}

# expect_copy_job_done D: no job record, QEMU runs none
expect_copy_job_done() {
    expect_no_job "$1"
}

# the four layers of build_chain, each snapshot's view, after a copy
expect_all_snapshots() {
    local d=$1
    expect_snapshot_view "$d" s3 3
    expect_snapshot_view "$d" s1 1
    expect_snapshot_view "$d" s2 2
}

delete_all() {
    local d=$1 s
    expect_ok xl snapshot-list --name "$d"
    for s in $OUT; do
        expect_ok xl snapshot-delete "$d" "$s"
    done
    expect_ok xl snapshot-list --name "$d"
    expect_eq "$OUT" "" "snapshot-list after deleting them all"
}

# ------------------------------------------------------------------

# expect_bitmap IMAGE: IMAGE holds the persistent bitmap bm0
expect_bitmap() {
    expect_ok qemu-img info -U --output=json "$1"
    expect_eq "$(jq -r '."format-specific".data.bitmaps[]?.name' <<<"$OUT")" bm0 \
        "the bitmaps of $1"
}

case_live_full_pivot() {
    local d=c1 dst=$OTHER/c1.qcow2
    case_domain "$d"
    make_vm_config "$d"
    expect_ok qemu-img bitmap --add "$(img "$d")" bm0
    expect_ok xl create "$CFG"
    build_chain "$d"
    expect_ok xl block-copy --pivot "$d" xvda "$dst"
    expect_job_output "Successfully pivoted to $dst" "block-copy --pivot output"
    expect_match "$ERR" "disk xvda now runs on '$dst' and no longer uses its old chain" \
        "what the pivot left, said"
    expect_match "$ERR" "kept for what still needs them: .*$(img "$d" s3).*snapshot 's3'" \
        "the old images snapshots need, said"
    domain_running "$d" || fail "$d stopped during the copy"
    expect_eq "$(active_image "$d" xvda)" "$dst" "active image after the pivot"
    expect_eq "$(chain_files "$dst")" "$dst" "the full copy is standalone"
    # the old chain stays
    expect_eq "$(chain_files "$(img "$d" s3)")" "$(img "$d" s3)
$(img "$d" s2)
$(img "$d" s1)
$(img "$d")" "the old chain, kept"
    write_pattern "$d" xvda 0x77 4M 1M
    flush_disk "$d"
    read_patterns "$dst" qcow2 "0x11 0 1M" "0x22 1M 1M" "0x33 2M 1M" \
        "0x44 3M 1M" "0x77 4M 1M"
    expect_view "$(img "$d" s3)" 4
    expect_copy_job_done "$d"
    expect_clean "$d"
    check_images "$OTHER"

    step "  a reboot runs on the copy (domain record and driver follow)"
    expect_ok xl destroy "$d"
    expect_bitmap "$dst"
    expect_ok xl create "$CFG"
    expect_eq "$(active_image "$d" xvda)" "$dst" "active image after reboot"
    read_pattern "$dst" 0x77 4M 1M
    expect_clean "$d"

    step "  every snapshot reverts to its own data, then deletes"
    expect_all_snapshots "$d"
    expect_clean "$d"
    delete_all "$d"
    expect_clean "$d"
    expect_ok xl destroy "$d"
    check_images
    expect_clean "$d"
    drop_domain "$d"
    rm -f "$OTHER/$d"*
}

case_live_shallow_finish() {
    local d=c2 dst=$OTHER/c2.qcow2
    start_domain "$d" live
    build_chain "$d"
    expect_ok xl block-copy --shallow --finish "$d" xvda "$dst"
    expect_job_output "Copy of xvda complete in $dst; the domain stays on its image" \
        "block-copy --finish output"
    expect_eq "$(active_image "$d" xvda)" "$(img "$d" s3)" "active image after --finish"
    expect_eq "$(chain_files "$dst")" "$dst
$(img "$d" s2)
$(img "$d" s1)
$(img "$d")" "the shallow copy is on the active image's backing"
    # only the top layer's data is in the copy itself
    expect_ok qemu-img map -U --output=json "$dst"
    expect_eq "$(jq -r '[.[] | select(.depth == 0 and .data)] | map(.length) | add' <<<"$OUT")" \
        "1048576" "data of the shallow copy's own layer"
    flush_disk "$d"
    expect_ok qemu-img compare -U "$(img "$d" s3)" "$dst"
    expect_view "$dst" 4
    expect_copy_job_done "$d"
    expect_clean "$d"
    # the domain writes on; the copy is a point in time
    write_pattern "$d" xvda 0x77 4M 1M
    read_pattern "$dst" 0 4M 1M

    step "  --shallow --pivot: the domain runs on the copy, on the same backing"
    local dst2=$OTHER/c2-pivot.qcow2
    expect_ok xl block-copy --shallow --pivot "$d" xvda "$dst2"
    expect_match "$ERR" "disk xvda now runs on '$dst2' and no longer uses '$(img "$d" s3)'" \
        "what the shallow pivot left, said"
    expect_eq "$(active_image "$d" xvda)" "$dst2" "active image after the shallow pivot"
    write_pattern "$d" xvda 0x78 5M 1M
    flush_disk "$d"
    expect_eq "$(chain_files "$dst2")" "$dst2
$(img "$d" s2)
$(img "$d" s1)
$(img "$d")" "the shallow pivot's chain"
    read_patterns "$dst2" qcow2 "0x11 0 1M" "0x22 1M 1M" "0x33 2M 1M" \
        "0x44 3M 1M" "0x77 4M 1M" "0x78 5M 1M"
    expect_clean "$d"
    # a snapshot of the copy, then every snapshot reverts to its own data
    expect_ok xl snapshot-create "${EXT_A[@]}" "$d" s4
    expect_clean "$d"
    expect_all_snapshots "$d"
    expect_ok xl snapshot-revert "$d" s4
    read_patterns "$(active_image "$d" xvda)" qcow2 "0x44 3M 1M" "0x77 4M 1M" \
        "0x78 5M 1M"
    expect_clean "$d"
    expect_ok xl destroy "$d"
    check_images
    check_images "$OTHER"
    expect_clean "$d"
    drop_domain "$d"
    rm -f "$OTHER/$d"*
}

case_offline() {
    local d=c3 dst=$OTHER/c3.qcow2 sh=$OTHER/c3-shallow.qcow2 raw=$OTHER/c3-xvdb.img
    start_domain "$d" offline
    expect_ok qemu-img bitmap --add "$(img "$d")" bm0
    build_chain "$d"

    step "  --shallow, no --pivot: a copy only"
    expect_ok xl block-copy --shallow "$d" xvda "$sh"
    expect_job_output "Copy of xvda complete in $sh; the domain stays on its image" \
        "offline block-copy --shallow output"
    expect_eq "$(chain_files "$sh")" "$sh
$(img "$d" s2)
$(img "$d" s1)
$(img "$d")" "the offline shallow copy's chain"
    expect_match "$ERR" "is built on '$(img "$d" s2)', an image of the domain's snapshot tree" \
        "the shallow copy's dependence, said"
    expect_match "$ERR" "the copy changes or breaks if those snapshots are deleted or committed" \
        "the shallow copy's dependence, said"
    expect_ok qemu-img compare "$(img "$d" s3)" "$sh"
    expect_eq "$(active_image "$d" xvda)" "$(img "$d" s3)" "active image (a copy only)"
    check_images "$OTHER"
    # (the snapshots' deletes below may remove its backing: as said)
    rm -f "$sh"

    step "  full --pivot: the domain boots on it"
    expect_ok xl block-copy --pivot "$d" xvda "$dst"
    expect_job_output "Successfully pivoted to $dst" "offline block-copy --pivot output"
    expect_eq "$(active_image "$d" xvda)" "$dst" "active image (domain record)"
    expect_eq "$(chain_files "$dst")" "$dst" "the offline full copy is standalone"
    expect_view "$dst" 4
    expect_bitmap "$dst"
    expect_clean "$d"

    step "  raw xvdb to raw"
    write_pattern "$d" xvdb 0x55 0 1M
    expect_ok xl block-copy --format raw --pivot "$d" xvdb "$raw"
    expect_eq "$(image_format "$raw")" raw "format of the raw copy"
    read_pattern "$raw" 0x55 0 1M raw
    expect_ok xl create "$CFG"
    expect_ok xl list -l "$d"
    expect_match "$OUT" "^    disk xvda: $dst \\(qcow2\\)\$" "xl list -l $d after boot"
    expect_match "$OUT" "^    disk xvdb: $raw \\(raw\\)\$" "xl list -l $d after boot"
    expect_view "$dst" 4
    expect_clean "$d"
    expect_all_snapshots "$d"
    delete_all "$d"
    check_images
    check_images "$OTHER"
    expect_clean "$d"
    drop_domain "$d"
    rm -f "$OTHER/$d"*
}

case_ready_control() {
    local d=c4 dst=$OTHER/c4.qcow2 dst2=$OTHER/c4-2.qcow2
    case_domain "$d"
    make_vm_config "$d"
    expect_ok qemu-img bitmap --add "$(img "$d")" bm0
    expect_ok xl create "$CFG"
    build_chain "$d"

    step "  --async, --info, then xl block-job --pivot at READY"
    expect_ok xl block-copy --async "$d" xvda "$dst"
    expect_eq "$OUT" "Block copy of xvda started" "block-copy --async output"
    wait_job_state "$d" xvda ready 20
    expect_eq "$(jq -r .type <<<"$OUT")" copy "the job's type"
    expect_eq "$(jq -r .base <<<"$OUT")" "$dst" "the job's destination"
    expect_ok xl block-job "$d" xvda
    expect_match "$OUT" "^Block copy: \\[100 %\\]" "xl block-job --info"
    write_pattern "$d" xvda 0x77 4M 1M
    expect_ok xl block-job --pivot "$d" xvda
    expect_eq "$(active_image "$d" xvda)" "$dst" "active image after block-job --pivot"
    expect_copy_job_done "$d"
    write_pattern "$d" xvda 0x78 5M 1M
    expect_clean "$d"

    step "  wait at READY, then xl block-job --abort: the copy goes"
    expect_ok xl block-copy "$d" xvda "$dst2"
    expect_eq "$OUT" "Now in mirroring phase: pivot or abort with xl block-job" \
        "block-copy without --pivot/--finish"
    wait_job_state "$d" xvda ready 5
    expect_clean "$d"
    expect_ok xl block-job --abort "$d" xvda
    expect_no_file "$dst2"
    expect_eq "$(active_image "$d" xvda)" "$dst" "active image after the abort"
    expect_copy_job_done "$d"
    expect_clean "$d"

    step "  the bitmap went with the copy"
    expect_ok xl destroy "$d"
    expect_bitmap "$dst"
    read_patterns "$dst" qcow2 "0x11 0 1M" "0x44 3M 1M" "0x77 4M 1M" "0x78 5M 1M"
    check_images
    check_images "$OTHER"
    expect_clean "$d"
    drop_domain "$d"
    rm -f "$OTHER/$d"*
}

# a disk with 40 MiB of data, for copies slow at 1-2 MiB/s
slow_disk() {
    write_pattern "$1" xvda 0x22 8M 40M
}

case_slow_signals() {
    local d=c5 dst=$OTHER/c5.qcow2 fp t0 off1 off2
    start_domain "$d" live
    slow_disk "$d"

    step "  --bandwidth 2: the copy goes at about 2 MiB/s"
    expect_ok xl block-copy --async --bandwidth 2 "$d" xvda "$dst"
    wait_job_state "$d" xvda running 10
    expect_eq "$(jq -r .speed <<<"$OUT")" 2097152 "the job's speed"
    t0=$(now)
    off1=$(jq -r .offset <<<"$OUT")
    sleep 2
    off2=$(job_field "$d" xvda offset)
    # 2 MiB/s over ~2 s, well under the 40 MiB there is
    expect_between "$(awk -v a="$off1" -v b="$off2" -v t="$(elapsed "$t0")" \
        'BEGIN {printf "%.2f\n", (b - a) / t / 1048576}')" 0.5 4 \
        "MiB/s of the rate-limited copy"
    expect_ok xl block-job --abort "$d" xvda
    expect_no_file "$dst"
    expect_copy_job_done "$d"
    expect_clean "$d"

    step "  --timeout 2 on a slow copy"
    fp=$(records_fingerprint)
    run xl block-copy --timeout 2 --bandwidth 1 --pivot "$d" xvda "$dst"
    [ "$RC" -eq 1 ] || fail_run "a timed-out block-copy must exit 1"
    [[ $ERR == "libxl-snapshot: error: "*"did not finish within 2000 ms"* ]] ||
        fail_run "expected the timeout error on stderr"
    [ "$(printf '%s\n' "$ERR" | wc -l)" -eq 1 ] ||
        fail_run "expected exactly one line on stderr"
    expect_no_file "$dst"
    expect_records_unchanged "$fp" "the copy that timed out"
    expect_copy_job_done "$d"

    step "  SIGINT to a live block-copy"
    bg_start sigint "$XL" block-copy --verbose --bandwidth 1 --pivot "$d" xvda "$dst"
    wait_job_state "$d" xvda running 10
    sleep 0.5
    kill -INT "$BG_PID"
    bg_wait 20
    [ "$BG_RC" != alive ] || fail "xl block-copy still runs 20 s after SIGINT" "$(bg_context sigint)"
    [ "$BG_RC" -ne 0 ] || fail "xl block-copy exited 0 after SIGINT" "$(bg_context sigint)"
    expect_no_file "$dst"
    expect_records_unchanged "$fp" "the interrupted copy"
    expect_copy_job_done "$d"
    expect_clean "$d"

    step "  kill -9 of xl mid-copy: the next command adopts it"
    bg_start killed "$XL" block-copy --bandwidth 1 --pivot "$d" xvda "$dst"
    wait_job_state "$d" xvda running 10
    kill -9 "$BG_PID"
    bg_wait 5
    # the job runs on in QEMU: speed it up, then any command finishes it
    expect_ok xl block-job --bandwidth 0 "$d" xvda
    wait_job_state "$d" xvda ready 20
    expect_ok xl snapshot-recover "$d"
    expect_match "$ERR" "outlived its process" "the adoption said"
    expect_eq "$(active_image "$d" xvda)" "$dst" "active image after the adoption"
    expect_copy_job_done "$d"
    flush_disk "$d"
    read_pattern "$dst" 0x22 8M 40M
    expect_clean "$d"

    step "  offline: SIGINT, then kill -9 (the next command cleans up)"
    expect_ok xl destroy "$d"
    local dst2=$OTHER/c5-2.qcow2
    fp=$(records_fingerprint)
    bg_start osigint "$XL" block-copy --verbose --bandwidth 1 "$d" xvda "$dst2"
    wait_job_state "$d" xvda running 10
    sleep 1
    kill -INT "$BG_PID"
    bg_wait 20
    [ "$BG_RC" != alive ] || fail "offline xl block-copy still runs after SIGINT" "$(bg_context osigint)"
    [ "$BG_RC" -ne 0 ] || fail "offline xl block-copy exited 0 after SIGINT" "$(bg_context osigint)"
    expect_no_file "$dst2"
    expect_records_unchanged "$fp" "the interrupted offline copy"
    bg_start okilled "$XL" block-copy --bandwidth 1 --pivot "$d" xvda "$dst2"
    wait_job_state "$d" xvda running 10
    sleep 1
    kill -9 "$BG_PID"
    bg_wait 5
    expect_ok xl snapshot-recover "$d"
    expect_no_file "$dst2"
    expect_records_unchanged "$fp" "the killed offline copy, cleaned up"
    pgrep -f "qemu-img convert .*$T/" >/dev/null &&
        fail "a qemu-img convert of this test still runs"
    expect_eq "$(active_image "$d" xvda)" "$dst" "active image (unchanged)"
    check_images
    check_images "$OTHER"
    expect_clean "$d"
    drop_domain "$d"
    rm -f "$OTHER/$d"*
}

case_faults() {
    local d=c6 n dst act
    start_domain "$d" live
    build_chain "$d"
    for n in 1 2 3 4; do
        dst=$OTHER/c6-$n.qcow2
        step "  crash point blockcopy:$n"
        act=$(active_image "$d" xvda)
        run env XL_SNAPSHOT_FAULT="blockcopy:$n" "$XL" block-copy --pivot "$d" xvda "$dst"
        [ "$RC" -eq 86 ] || fail_run "expected the crash at blockcopy:$n (exit 86)"
        # the next command completes or undoes it
        wait_job_state_gone "$d"
        if [ "$(active_image "$d" xvda)" = "$dst" ]; then
            [ "$n" -ge 3 ] || fail "blockcopy:$n: the domain runs on the copy"
            flush_disk "$d"
            expect_view "$dst" 4
        else
            expect_eq "$(active_image "$d" xvda)" "$act" "blockcopy:$n: wholly old"
            expect_no_file "$dst"
        fi
        expect_copy_job_done "$d"
        expect_clean "$d"
    done

    step "  QEMU killed under the copy: wholly old"
    dst=$OTHER/c6-k.qcow2
    act=$(active_image "$d" xvda)
    run env XL_SNAPSHOT_FAULT="blockcopy:3:killqemu" "$XL" block-copy --pivot "$d" xvda "$dst"
    [ "$RC" -ne 0 ] || fail_run "a copy whose QEMU died must fail"
    domain_running "$d" && fail "$d still runs after its QEMU was killed"
    expect_ok xl snapshot-recover "$d"
    expect_no_file "$dst"
    expect_eq "$(active_image "$d" xvda)" "$act" "active image after QEMU died"
    expect_copy_job_done "$d"
    expect_clean "$d"
    expect_ok xl create "$CFG"
    expect_eq "$(active_image "$d" xvda)" "$act" "active image after the restart"

    expect_all_snapshots "$d"
    expect_ok xl destroy "$d"
    check_images
    check_images "$OTHER"
    expect_clean "$d"
    drop_domain "$d"
    rm -f "$OTHER/$d"*
}

# the job record gone (an adopted job may need a few commands)
wait_job_state_gone() {
    local d=$1 i
    for ((i = 0; i < 50; i++)); do
        run xl snapshot-recover "$d"
        run xl block-job --json "$d" xvda
        [ "$RC" -ne 0 ] && return 0
        sleep 0.2
    done
    fail "the job record of $d stays"
}

# branch views: LAYER spec lists for read_patterns
V_I1=("0x11 0 1M" "0 1M 6M")
V_E1=("0x11 0 1M" "0x22 1M 1M" "0 2M 5M")
V_I2=("0x11 0 1M" "0x22 1M 1M" "0x33 2M 1M" "0 3M 4M")
V_E2=("0x11 0 1M" "0x22 1M 1M" "0 2M 2M" "0x55 4M 1M" "0 5M 2M")
V_I3=("0x11 0 1M" "0x22 1M 1M" "0 2M 2M" "0x55 4M 1M" "0x66 5M 1M" "0 6M 1M")
V_NOW=("0x11 0 1M" "0x22 1M 1M" "0 2M 2M" "0x55 4M 1M" "0x66 5M 1M" "0x77 6M 1M")

# shellcheck disable=SC2054  # the commas are in the arguments
INT_A=(--diskspec xvda,snapshot=internal --diskspec xvdb,snapshot=no)

revert_view() {
    local d=$1 s=$2
    shift 2
    expect_ok xl snapshot-revert "$d" "$s"
    read_patterns "$(active_image "$d" xvda)" "" "$@"
}

case_branches() {
    local d=c7 dst=$OTHER/c7.qcow2
    start_domain "$d" live
    write_pattern "$d" xvda 0x11 0 1M
    expect_ok xl snapshot-create "${INT_A[@]}" "$d" i1
    write_pattern "$d" xvda 0x22 1M 1M
    expect_ok xl snapshot-create "${EXT_A[@]}" "$d" e1
    write_pattern "$d" xvda 0x33 2M 1M
    expect_ok xl snapshot-create "${INT_A[@]}" "$d" i2
    write_pattern "$d" xvda 0x44 3M 1M
    # the second branch, from e1
    expect_ok xl snapshot-revert "$d" e1
    write_pattern "$d" xvda 0x55 4M 1M
    expect_ok xl snapshot-create "${EXT_A[@]}" "$d" e2
    write_pattern "$d" xvda 0x66 5M 1M
    # an internal snapshot in the image active at the copy
    expect_ok xl snapshot-create "${INT_A[@]}" "$d" i3
    write_pattern "$d" xvda 0x77 6M 1M
    expect_clean "$d"

    expect_ok xl block-copy --pivot "$d" xvda "$dst"
    expect_eq "$(active_image "$d" xvda)" "$dst" "active image after the pivot"
    flush_disk "$d"
    read_patterns "$dst" qcow2 "${V_NOW[@]}"
    expect_clean "$d"

    step "  every snapshot of both branches reverts to its own data"
    revert_view "$d" i3 "${V_I3[@]}"
    expect_clean "$d"
    revert_view "$d" i1 "${V_I1[@]}"
    revert_view "$d" e2 "${V_E2[@]}"
    revert_view "$d" i2 "${V_I2[@]}"
    revert_view "$d" e1 "${V_E1[@]}"
    revert_view "$d" i3 "${V_I3[@]}"
    expect_clean "$d"
    check_images
    # (an internal snapshot in a backing image deletes shut off)
    expect_ok xl destroy "$d"
    delete_all "$d"
    check_images
    expect_clean "$d"
    drop_domain "$d"
    rm -f "$OTHER/$d"*
}

case_refusals() {
    local d=c8 dst=$OTHER/c8.qcow2
    start_domain "$d" live
    build_chain "$d"
    : > "$OTHER/exists.qcow2"
    refused "already exists" xl block-copy "$d" xvda "$OTHER/exists.qcow2"
    rm -f "$OTHER/exists.qcow2"
    refused "is an image of the backing chain" xl block-copy "$d" xvda "$(img "$d" s1)"
    refused "is the active image of disk xvdb" xl block-copy "$d" xvda "$IMG/$d-xvdb.img"
    refused "has no disk 'xvdz'" xl block-copy "$d" xvdz "$dst"
    local fp
    fp=$(fingerprint)
    expect_fail xl block-copy --pivot --finish "$d" xvda "$dst"
    expect_unchanged "$fp" "block-copy --pivot --finish"
    expect_fail xl block-copy --shallow --format raw "$d" xvda "$dst"
    expect_unchanged "$fp" "block-copy --shallow --format raw"
    expect_ok qemu-img create -q -f raw "$OTHER/c8.raw" 64M
    refused "is raw, not qcow2" xl block-copy --reuse-external "$d" xvda "$OTHER/c8.raw"
    refused "does not exist" xl block-copy --reuse-external "$d" xvda "$dst"
    # a job in flight on the disk
    expect_ok xl block-copy --async --bandwidth 1 "$d" xvda "$dst"
    wait_job_state "$d" xvda running 10
    refused "already in block job" xl block-copy "$d" xvda "$OTHER/c8-2.qcow2"
    expect_ok xl block-job --abort "$d" xvda
    expect_no_file "$dst"
    expect_clean "$d"

    step "  --reuse-external writes into a prepared image"
    expect_ok qemu-img create -q -f qcow2 "$dst" 64M
    expect_ok xl block-copy --reuse-external --finish "$d" xvda "$dst"
    flush_disk "$d"
    expect_ok qemu-img compare -U "$(img "$d" s3)" "$dst"
    expect_ok xl destroy "$d"
    check_images
    check_images "$OTHER"
    drop_domain "$d"
    rm -f "$OTHER/$d"*
}

# issue 18 tryout 1: three pivots (two of xvda, one of xvdb) leave
# copied_from entries on both disks; the revert discards them all (it
# once wrote past the end of its list: heap corruption), under valgrind
# when there is one
case_revert_after_copies() {
    local d=c9 vg=()
    start_domain "$d" live
    write_disks "$d" 0x5a
    expect_ok xl snapshot-create "$d" s1
    expect_ok xl block-copy --pivot "$d" xvda "$OTHER/c9-x1.qcow2"
    expect_ok xl block-copy --pivot "$d" xvda "$OTHER/c9-x2.qcow2"
    expect_ok xl block-copy --pivot "$d" xvdb "$OTHER/c9-y1.img"
    write_disks "$d" 0x6b
    if command -v valgrind >/dev/null; then
        vg=(valgrind --error-exitcode=99 -q)
    fi
    run "${vg[@]}" "$XL" snapshot-revert "$d" s1
    [ "$RC" -eq 0 ] || fail_run "snapshot-revert after three pivots"
    [ -z "$ERR" ] || [ ${#vg[@]} -eq 0 ] ||
        expect_no_match "$ERR" "Invalid (read|write)" "valgrind's report"
    expect_disks "$d" 0x5a
    expect_no_file "$(domain_dir "$d")/journal.libxl-json"
    expect_clean "$d"
    expect_ok xl destroy "$d"
    check_images
    expect_clean "$d"
    drop_domain "$d"
    rm -f "$OTHER/$d"*
}

# issue 18 tryout 2: a link (symbolic or hard) to an image of the chain
# or a snapshot's is that image: refused; a link to a prepared image is
# recorded as its target
case_links() {
    local d=c10 real=$OTHER/c10-real.qcow2
    start_domain "$d" live
    build_chain "$d"
    ln -s "$(img "$d" s1)" "$OTHER/c10-sym.qcow2"
    ln "$(img "$d" s1)" "$OTHER/c10-hard.qcow2"
    refused "is an image of the backing chain" \
        xl block-copy --reuse-external --pivot "$d" xvda "$OTHER/c10-sym.qcow2"
    refused "is an image of the backing chain" \
        xl block-copy --reuse-external --finish "$d" xvda "$OTHER/c10-hard.qcow2"
    ln -s "$(img "$d" s3)" "$OTHER/c10-act.qcow2"
    refused "is an image of the backing chain" \
        xl block-copy --reuse-external --pivot "$d" xvda "$OTHER/c10-act.qcow2"
    rm -f "$OTHER/c10-sym.qcow2" "$OTHER/c10-hard.qcow2" "$OTHER/c10-act.qcow2"
    expect_snapshot_view "$d" s2 2
    expect_ok xl snapshot-revert "$d" s3
    step "  a link to a prepared image: its target recorded"
    expect_ok qemu-img create -q -f qcow2 "$real" 64M
    ln -s "$real" "$OTHER/c10-link.qcow2"
    expect_ok xl block-copy --reuse-external --pivot "$d" xvda "$OTHER/c10-link.qcow2"
    expect_eq "$(active_image "$d" xvda)" "$real" "active image after a pivot to a link"
    expect_clean "$d"
    rm -f "$OTHER/c10-link.qcow2"
    expect_clean "$d"
    expect_all_snapshots "$d"
    expect_clean "$d"
    expect_ok xl destroy "$d"
    check_images
    drop_domain "$d"
    rm -f "$OTHER/$d"*
}

# issue 18 tryout 3: xl block-job --pivot / --abort of a copy whose QEMU
# died: one error line, exit 1, the copy the job made removed, the
# record cleared
case_dead_control() {
    local d=c11 dst=$OTHER/c11.qcow2 pid
    start_domain "$d" live
    write_disks "$d" 0x31
    expect_ok xl block-copy "$d" xvda "$dst"
    wait_job_state "$d" xvda ready 10
    pid=$(runtime_pid "$d")
    kill -9 "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    expect_error "is gone with the domain's QEMU: nothing to pivot" \
        xl block-job --pivot "$d" xvda
    expect_no_file "$dst"
    expect_no_job "$d"
    expect_eq "$(active_image "$d" xvda)" "$(img "$d")" "active image"
    expect_clean "$d"

    step "  --abort of a running copy whose QEMU died"
    expect_ok xl create "$CFG"
    slow_disk "$d"
    expect_ok xl block-copy --async --bandwidth 1 "$d" xvda "$dst"
    wait_job_state "$d" xvda running 10
    pid=$(runtime_pid "$d")
    kill -9 "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    expect_error "is gone with the domain's QEMU: nothing to abort" \
        xl block-job --abort "$d" xvda
    expect_no_file "$dst"
    expect_no_job "$d"
    expect_clean "$d"
    expect_ok xl create "$CFG"
    expect_disks "$d" 0x31

    step "  a destination on a read-only file system: one line"
    local ro=$T/c11-ro
    if mount_tmpfs "$ro" 1M; then
        mount -o remount,ro "$ro"
        refused "c11-ro/x.qcow2" xl block-copy --pivot "$d" xvda "$ro/x.qcow2"
        umount "$ro"
    fi
    expect_ok xl destroy "$d"
    check_images
    drop_domain "$d"
    rm -f "$OTHER/$d"*
}

# issue 18 tryout 4: SIGTERM and SIGHUP abort a waiting block-copy as
# SIGINT does (the mirror once ran on, its record owned by a dead xl)
case_term_hup() {
    local d=c12 dst=$OTHER/c12.qcow2 fp sig
    start_domain "$d" live
    slow_disk "$d"
    fp=$(records_fingerprint)
    for sig in TERM HUP; do
        step "  SIG$sig to a live block-copy"
        bg_start "sig$sig" "$XL" block-copy --bandwidth 1 --pivot "$d" xvda "$dst"
        wait_job_state "$d" xvda running 10
        kill -"$sig" "$BG_PID"
        bg_wait 20
        [ "$BG_RC" != alive ] ||
            fail "xl block-copy still runs 20 s after SIG$sig" "$(bg_context "sig$sig")"
        [ "$BG_RC" -eq 1 ] ||
            fail "xl block-copy: not exit 1 after SIG$sig" "$(bg_context "sig$sig")"
        expect_match "$(<"$T/sig$sig.err")" "Aborting the job" "stderr after SIG$sig"
        expect_no_file "$dst"
        expect_records_unchanged "$fp" "the copy stopped by SIG$sig"
        expect_copy_job_done "$d"
    done
    expect_clean "$d"
    expect_ok xl destroy "$d"
    check_images
    drop_domain "$d"
    rm -f "$OTHER/$d"*
}

# issue 18 tryout 7: xl block-job --pivot to a destination removed or
# replaced since the copy began: refused in one line, the job stays at
# READY for --abort
case_dest_gone() {
    local d=c13 dst=$OTHER/c13.qcow2
    start_domain "$d" live
    write_disks "$d" 0x41
    expect_ok xl block-copy "$d" xvda "$dst"
    wait_job_state "$d" xvda ready 10
    rm -f "$dst"
    expect_error "'$dst' no longer exists: not pivoted" xl block-job --pivot "$d" xvda
    wait_job_state "$d" xvda ready 5
    expect_eq "$(active_image "$d" xvda)" "$(img "$d")" "active image"
    expect_ok xl block-job --abort "$d" xvda
    expect_copy_job_done "$d"
    expect_clean "$d"

    step "  a destination replaced by another file"
    expect_ok xl block-copy "$d" xvda "$dst"
    wait_job_state "$d" xvda ready 10
    rm -f "$dst"
    expect_ok qemu-img create -q -f qcow2 "$dst" 64M
    expect_error "is no longer the file the copy writes" xl block-job --pivot "$d" xvda
    wait_job_state "$d" xvda ready 5
    expect_ok xl block-job --abort "$d" xvda
    expect_copy_job_done "$d"
    expect_file "$dst"    # not the copy's: not removed
    expect_eq "$(active_image "$d" xvda)" "$(img "$d")" "active image"
    expect_clean "$d"
    expect_disks "$d" 0x41
    rm -f "$dst"

    step "  block-copy --pivot whose dest is removed before READY"
    slow_disk "$d"
    bg_start c13pivot "$XL" block-copy --bandwidth 1 --pivot "$d" xvda "$dst"
    wait_job_state "$d" xvda running 10
    rm -f "$dst"
    expect_ok xl block-job --bandwidth 0 "$d" xvda
    bg_wait 30
    [ "$BG_RC" = 1 ] || fail "block-copy --pivot to a removed dest: not exit 1" \
        "$(bg_context c13pivot)"
    expect_match "$(<"$T/c13pivot.err")" "no longer exists: not pivoted" \
        "block-copy --pivot to a removed dest"
    expect_eq "$(wc -l < "$T/c13pivot.err")" 1 "stderr lines of block-copy --pivot"
    # no later command pivots it (adoption) either
    expect_ok xl snapshot-list "$d"
    wait_job_state "$d" xvda ready 5
    expect_eq "$(active_image "$d" xvda)" "$(img "$d")" "active image"
    expect_ok xl block-job --abort "$d" xvda
    expect_copy_job_done "$d"
    expect_clean "$d"
    expect_ok xl destroy "$d"
    check_images
    drop_domain "$d"
    rm -f "$OTHER/$d"*
}

# issue 18 tryout 5: a block-copy that adopts a dead copy's pivot then
# copies from the new active image (it once planned on the old one and
# failed: "no qcow2 node")
case_adopt_then_copy() {
    local d=c14 a1=$OTHER/c14-a1.qcow2 a2=$OTHER/c14-a2.qcow2
    start_domain "$d" live
    write_disks "$d" 0x51
    run env XL_SNAPSHOT_FAULT=blockcopy:3 "$XL" block-copy --pivot "$d" xvda "$a1"
    [ "$RC" -eq 86 ] || fail_run "expected the crash at blockcopy:3 (exit 86)"
    expect_ok xl block-copy --pivot "$d" xvda "$a2"
    expect_match "$OUT" "Successfully pivoted to $a2" "block-copy output"
    expect_eq "$(active_image "$d" xvda)" "$a2" "active image"
    expect_copy_job_done "$d"
    expect_clean "$d"
    flush_disk "$d"
    read_pattern "$a2" 0x51 0 1M
    expect_ok xl destroy "$d"
    check_images
    expect_clean "$d"
    drop_domain "$d"
    rm -f "$OTHER/$d"*
}

# issue 18 tryout 8: the smaller things
case_small() {
    local d=c15 dst=$OTHER/c15.qcow2 pid
    start_domain "$d" offline
    expect_ok qemu-img bitmap --add "$(img "$d")" bm0
    refused "no --async" xl block-copy --async "$d" xvda "$dst"
    refused "--async and --timeout" xl block-copy --async --timeout 5 "$d" xvda "$dst"
    refused "a shallow copy keeps a backing file" \
        xl block-copy --shallow "$d" xvdb "$OTHER/c15.img"
    refused "^libxl-snapshot: error: invalid bandwidth '-1'" \
        xl block-copy --bandwidth -1 "$d" xvda "$dst"
    refused "^libxl-snapshot: error: block-copy: invalid format 'QCOW2'" \
        xl block-copy --format QCOW2 "$d" xvda "$dst"
    step "  a raw copy: the bitmaps do not go, said"
    expect_ok xl block-copy --format raw "$d" xvda "$OTHER/c15.raw"
    expect_match "$ERR" "the copy is raw, which holds no dirty bitmaps" "block-copy --format raw"
    rm -f "$OTHER/c15.raw"

    step "  block-job --json of a copy: dest; abort from another command"
    expect_ok xl create "$CFG"
    slow_disk "$d"
    bg_start c15wait "$XL" block-copy --bandwidth 1 --pivot "$d" xvda "$dst"
    wait_job_state "$d" xvda running 10
    expect_eq "$(jq -r .dest <<<"$OUT")" "$dst" "the job's dest"
    expect_eq "$(jq -r .source <<<"$OUT")" "$(img "$d")" "the job's source"
    expect_ok xl block-job --abort "$d" xvda
    bg_wait 20
    [ "$BG_RC" = 1 ] || fail "the waiting block-copy: not exit 1" "$(bg_context c15wait)"
    expect_match "$(<"$T/c15wait.err")" "was cancelled \(by another command\)" \
        "the waiting block-copy, aborted by another"
    expect_no_match "$(<"$T/c15wait.err")" "Operation canceled" \
        "the waiting block-copy, aborted by another"
    expect_no_file "$dst"
    expect_copy_job_done "$d"
    expect_clean "$d"

    step "  block-job --info of a copy whose QEMU died"
    expect_ok xl block-copy "$d" xvda "$dst"
    wait_job_state "$d" xvda ready 20
    pid=$(runtime_pid "$d")
    kill -9 "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    expect_error "is gone with the domain's QEMU" xl block-job --info "$d" xvda
    expect_ok xl snapshot-recover "$d"
    expect_no_file "$dst"
    expect_clean "$d"
    check_images
    drop_domain "$d"
    rm -f "$OTHER/$d"*
}

soft_case "live full --pivot; the snapshots revert and delete" case_live_full_pivot
soft_case "live --shallow --finish, then --pivot" case_live_shallow_finish
soft_case "offline: --shallow, full --pivot, raw" case_offline
soft_case "--async, block-job --pivot and --abort at READY; bitmaps" case_ready_control
soft_case "bandwidth, timeout, SIGINT, kill -9 (live and offline)" case_slow_signals
soft_case "crash points blockcopy:1..4" case_faults
soft_case "a branching tree copied: every snapshot reverts" case_branches
soft_case "refusals" case_refusals
soft_case "revert after pivots of both disks (valgrind)" case_revert_after_copies
soft_case "links to images are the images" case_links
soft_case "block-job --pivot/--abort after QEMU died" case_dead_control
soft_case "SIGTERM and SIGHUP abort a live copy" case_term_hup
soft_case "block-job --pivot to a removed or replaced dest" case_dest_gone
soft_case "a copy that adopts a dead pivot copies the new image" case_adopt_then_copy
soft_case "smaller things: --async, prefixes, raw, json, cancelled" case_small
finish
