#!/bin/bash
# test-80-blockcommit.sh - xl block-commit, live (QMP) and offline (qemu-img)
#
# Each case has its own domain and a 4-layer chain on xvda (see
# lib-blockjob.sh: base A, s1's overlay B, s2's overlay C, active D, each
# at its own offset):
#  - intermediate commit (--top = a middle image), live with --base and
#    --delete, offline down to the bottom without --delete: every layer
#    reads back through the active image, the image above top backs onto
#    base, merged files gone only with --delete; the snapshot whose image
#    was top now points at base, those whose data was merged away are
#    gone from the list (and a warning said so); the snapshots left
#    still revert to their own data;
#  - active commit with --pivot (live with --delete, offline without):
#    base is the active image (xl list -l, and after a reboot), all data
#    in base; also on the raw xvdb;
#  - active commit with --keep-overlay: top stays active, base holds a
#    copy of everything; the snapshots kept still read as taken;
#  - guest writes during an active commit (at READY, and while a slow
#    --async job runs) are in base after xl block-job --pivot;
#  - a commit that would change an image another branch of the
#    snapshot tree is built on is refused, nothing changed (live and
#    offline);
#  - --keep-relative (live): base's relative name in the image above
#    top; the disk still takes snapshots and jobs afterwards;
#  - a snapshot whose data a commit takes goes whole: its memory image
#    and its qcow2 snapshots in other disks' images too; a qcow2
#    snapshot inside base survives a commit into base, and reverts;
#  - bad requests refused: exit 1, one line on stderr, nothing changed.
# qemu-img check after the steps that change images.
# The case functions run through soft_case:
# shellcheck disable=SC2317
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/qemu/lib-blockjob.sh
. "$(dirname "$0")/lib-blockjob.sh"

# expect_warning NAMES: stderr is exactly the one warning line that the
# commit took (merged away, or overwrote) the data of snapshots NAMES
# (an ERE), whose records are removed
expect_warning() {
    local names=$1
    [ "$(printf '%s\n' "$ERR" | wc -l)" -eq 1 ] ||
        fail_run "expected exactly one line on stderr (the warning)"
    [[ $ERR =~ ^libxl-snapshot:\ warning:\ .*the\ data\ of\ snapshot\(s\)\ $names\;\ their\ records\ are\ removed ]] ||
        fail_run "expected the warning that the data of $names was merged away"
}

# expect_snapshot D SNAP FILE PARENT: SNAP's xvda image and parent
expect_snapshot() {
    expect_ok xl snapshot-info --json "$1" "$2"
    expect_eq "$(jq -r '.disks[] | select(.vdev == "xvda") | .file' <<<"$OUT")" \
        "$3" "$2's xvda image"
    expect_eq "$(jq -r '.parent' <<<"$OUT")" "$4" "$2's parent"
}

# ------------------------------------------------------------------

case_live_intermediate() {
    local d=c1
    start_domain "$d" live
    build_chain "$d"
    expect_ok xl block-commit --top "$(img "$d" s2)" --base "$(img "$d" s1)" \
        --delete "$d" xvda
    expect_job_output "Block commit complete" "block-commit output"
    # s2's image (s1's overlay) was base: written, its data is gone
    expect_warning "s2"
    domain_running "$d" || fail "$d stopped during the commit"
    expect_eq "$(active_image "$d" xvda)" "$(img "$d" s3)" "active image after the commit"
    # the image above top (the active one) now backs onto base
    expect_eq "$(chain_files "$(img "$d" s3)")" "$(img "$d" s3)
$(img "$d" s1)
$(img "$d")" "chain after the intermediate commit"
    expect_no_file "$(img "$d" s2)"
    flush_disk "$d"
    expect_view "$(img "$d" s3)" 4
    expect_no_job "$d"
    # records: s3's image was top, so its data now is base's
    expect_ok xl snapshot-list --name "$d"
    expect_eq "$OUT" "s1
s3" "snapshot-list after the commit"
    expect_snapshot "$d" s3 "$(img "$d" s1)" s1
    expect_ok xl snapshot-info "$d" s3
    expect_match "$OUT" "^  xvda +external +qcow2 +$(img "$d" s1) \\(overlay $(img "$d" s3)\\)\$" \
        "snapshot-info s3 (xvda line)"
    check_images
    expect_no_orphans "$d" xvda xvdb
    # what is left reverts right
    expect_snapshot_view "$d" s3 3
    expect_snapshot_view "$d" s1 1
    check_images
    expect_ok xl destroy "$d"
    drop_domain "$d"
}

case_offline_intermediate() {
    local d=c2
    start_domain "$d" offline
    build_chain "$d"
    expect_ok xl block-commit --top "$(img "$d" s2)" "$d" xvda
    expect_job_output "Block commit complete" "block-commit output"
    # s1's image (the base) and s2's (merged) lost their data
    expect_warning "s1, s2"
    domain_running "$d" && fail "the offline commit started $d"
    expect_eq "$(active_image "$d" xvda)" "$(img "$d" s3)" "active image after the commit"
    expect_eq "$(chain_files "$(img "$d" s3)")" "$(img "$d" s3)
$(img "$d")" "chain after the commit (s3's overlay rebased onto base)"
    expect_view "$(img "$d" s3)" 4
    expect_view "$(img "$d")" 3
    # no --delete: the merged images stay (out of the chain)
    expect_file "$(img "$d" s1)"
    expect_file "$(img "$d" s2)"
    expect_ok xl snapshot-list --name "$d"
    expect_eq "$OUT" "s3" "snapshot-list after the commit"
    expect_snapshot "$d" s3 "$(img "$d")" null
    expect_no_job "$d"
    check_images
    # it boots on the active image, the data all there
    expect_ok xl create "$CFG"
    expect_eq "$(active_image "$d" xvda)" "$(img "$d" s3)" "active image after boot"
    expect_view "$(img "$d" s3)" 4
    expect_ok xl destroy "$d"
    # (s3 was taken shut off: the revert leaves the domain so)
    expect_snapshot_view "$d" s3 3
    check_images
    drop_domain "$d"
}

case_live_active_pivot() {
    local d=c3
    start_domain "$d" live
    build_chain "$d"
    expect_ok xl block-commit --pivot --delete "$d" xvda
    expect_job_output "Successfully pivoted" "block-commit --pivot output"
    expect_warning "s1, s2, s3"
    domain_running "$d" || fail "$d stopped during the commit"
    expect_ok xl list -l "$d"
    expect_match "$OUT" "^    disk xvda: $(img "$d") \\(qcow2\\)\$" "xl list -l $d"
    expect_no_file "$(img "$d" s1)"
    expect_no_file "$(img "$d" s2)"
    expect_no_file "$(img "$d" s3)"
    flush_disk "$d"
    expect_eq "$(chain_files "$(img "$d")")" "$(img "$d")" "chain of base"
    expect_view "$(img "$d")" 4
    expect_ok xl snapshot-list --name "$d"
    expect_eq "$OUT" "" "snapshot-list after the commit"
    expect_no_job "$d"
    check_images

    step "  same on the raw xvdb"
    write_pattern "$d" xvdb 0x55 0 1M
    expect_ok xl snapshot-create --diskspec xvda,snapshot=no \
        --diskspec xvdb,snapshot=external "$d" t1
    expect_eq "$(active_image "$d" xvdb)" "$IMG/$d-xvdb.t1.qcow2" "active xvdb after t1"
    write_pattern "$d" xvdb 0x66 1M 1M
    expect_ok xl block-commit --pivot --delete "$d" xvdb
    expect_warning "t1"
    expect_ok xl list -l "$d"
    expect_match "$OUT" "^    disk xvdb: $IMG/$d-xvdb.img \\(raw\\)\$" "xl list -l $d"
    expect_no_file "$IMG/$d-xvdb.t1.qcow2"
    flush_disk "$d" xvdb
    read_patterns "$IMG/$d-xvdb.img" raw "0x55 0 1M" "0x66 1M 1M"
    expect_no_job "$d" xvdb

    step "  a reboot keeps the pivoted images"
    expect_ok xl destroy "$d"
    expect_ok xl create "$CFG"
    expect_eq "$(active_image "$d" xvda)" "$(img "$d")" "active xvda after reboot"
    expect_eq "$(active_image "$d" xvdb)" "$IMG/$d-xvdb.img" "active xvdb after reboot"
    expect_view "$(img "$d")" 4
    read_pattern "$IMG/$d-xvdb.img" 0x66 1M 1M raw
    expect_ok xl destroy "$d"
    check_images
    drop_domain "$d"
}

case_offline_active_pivot() {
    local d=c4
    start_domain "$d" offline
    build_chain "$d"
    expect_ok xl block-commit --pivot "$d" xvda
    expect_job_output "Successfully pivoted" "block-commit --pivot output"
    expect_warning "s1, s2, s3"
    domain_running "$d" && fail "the offline commit started $d"
    expect_eq "$(active_image "$d" xvda)" "$(img "$d")" "active image (domain record)"
    expect_view "$(img "$d")" 4
    expect_eq "$(chain_files "$(img "$d")")" "$(img "$d")" "chain of base"
    expect_ok xl snapshot-list --name "$d"
    expect_eq "$OUT" "" "snapshot-list after the commit"
    expect_no_job "$d"
    check_images
    expect_ok xl create "$CFG"
    expect_ok xl list -l "$d"
    expect_match "$OUT" "^    disk xvda: $(img "$d") \\(qcow2\\)\$" "xl list -l $d after boot"
    expect_view "$(img "$d")" 4
    expect_ok xl destroy "$d"
    drop_domain "$d"
}

case_live_keep_overlay() {
    local d=c5
    start_domain "$d" live
    build_chain "$d"
    expect_ok xl block-commit --keep-overlay "$d" xvda
    expect_job_output "Commit complete, overlay image kept" "block-commit --keep-overlay output"
    # the base (s1's image) was written; (s2 and s3 see base through
    # their images: dropping them too would be right, see below)
    expect_warning "s1(, s2)?(, s3)?"
    expect_eq "$(active_image "$d" xvda)" "$(img "$d" s3)" "active image after --keep-overlay"
    expect_eq "$(chain_files "$(img "$d" s3)")" "$(img "$d" s3)
$(img "$d" s2)
$(img "$d" s1)
$(img "$d")" "chain after --keep-overlay"
    flush_disk "$d"
    # base alone holds a copy of everything
    expect_view "$(img "$d")" 4
    expect_view "$(img "$d" s3)" 4
    expect_ok xl snapshot-list --name "$d"
    expect_no_match "$OUT" '^s1$' "snapshot-list after --keep-overlay"
    expect_no_job "$d"
    check_images
}

# A snapshot that stays listed must still give its own data: s2 saw
# A B, s3 A B C.  (base now also holds C and D, which show through the
# images of s2 and s3 where they hold nothing of their own.)
case_keep_overlay_records() {
    local d=c5
    case_domain "$d"
    expect_snapshots_as_taken "$d"
    drop_domain "$d"
}

case_writes_at_ready() {
    local d=c6
    start_domain "$d" live
    write_pattern "$d" xvda 0x11 0 1M
    expect_ok xl snapshot-create "${EXT_A[@]}" "$d" s1
    write_pattern "$d" xvda 0x22 1M 1M
    expect_ok xl block-commit --active "$d" xvda
    expect_eq "$OUT" "Now in synchronized phase: pivot or abort with xl block-job" \
        "block-commit --active output"
    expect_eq "$(job_field "$d" xvda state)" "ready" "job state"
    expect_eq "$(job_field "$d" xvda type)" "active-commit" "job type"
    # the guest writes while the job is READY
    write_pattern "$d" xvda 0x55 4M 1M
    write_pattern "$d" xvda 0x66 0 512K
    expect_ok xl block-job --pivot "$d" xvda
    expect_eq "$OUT" "Successfully pivoted" "block-job --pivot output"
    expect_eq "$(active_image "$d" xvda)" "$(img "$d")" "active image after the pivot"
    flush_disk "$d"
    read_patterns "$(img "$d")" qcow2 "0x66 0 512K" "0x11 512K 512K" \
        "0x22 1M 1M" "0 2M 2M" "0x55 4M 1M"
    expect_eq "$(chain_files "$(img "$d")")" "$(img "$d")" "chain of base"
    expect_no_job "$d"
    check_images
    expect_ok xl destroy "$d"
    drop_domain "$d"
}

case_writes_while_running() {
    local d=c7
    start_domain "$d" live
    write_pattern "$d" xvda 0x11 0 1M
    expect_ok xl snapshot-create "${EXT_A[@]}" "$d" s1
    # 32 MiB at 1 MiB/s: the job runs for a while
    write_pattern "$d" xvda 0x22 8M 32M
    expect_ok xl block-commit --active --async --bandwidth 1 "$d" xvda
    expect_eq "$OUT" "Block commit of xvda started" "block-commit --async output"
    expect_eq "$(job_field "$d" xvda state)" "running" "job state"
    # the guest writes in the middle of the job: at the start of the
    # data (maybe copied already), near its end (not yet), and past it
    write_pattern "$d" xvda 0x66 8M 64K
    write_pattern "$d" xvda 0x77 39M 1M
    write_pattern "$d" xvda 0x55 48M 1M
    expect_ok xl block-job --bandwidth 0 "$d" xvda
    wait_job_state "$d" xvda ready 30
    expect_ok xl block-job --pivot "$d" xvda
    expect_eq "$OUT" "Successfully pivoted" "block-job --pivot output"
    expect_eq "$(active_image "$d" xvda)" "$(img "$d")" "active image after the pivot"
    flush_disk "$d"
    read_patterns "$(img "$d")" qcow2 "0x11 0 1M" "0x66 8M 64K" \
        "0x22 $((8 * 1048576 + 65536)) $((31 * 1048576 - 65536))" \
        "0x77 39M 1M" "0 40M 8M" "0x55 48M 1M"
    expect_no_job "$d"
    check_images
    expect_ok xl destroy "$d"
    drop_domain "$d"
}

# s1, s2, revert to s1: s2's image (s1's overlay) is built on the base.
# A commit into the base would change what s2 sees.
case_branch_live() {
    local d=c8 fp
    start_domain "$d" live
    write_pattern "$d" xvda 0x11 0 1M
    expect_ok xl snapshot-create "${EXT_A[@]}" "$d" s1
    write_pattern "$d" xvda 0x22 1M 1M
    expect_ok xl snapshot-create "${EXT_A[@]}" "$d" s2
    expect_ok xl snapshot-revert "$d" s1
    expect_eq "$(active_image "$d" xvda)" "$(img "$d" s1.1)" "active image after revert to s1"
    write_pattern "$d" xvda 0x33 2M 1M
    fp=$(fingerprint)
    expect_error "another branch of the snapshot tree" \
        xl block-commit --pivot "$d" xvda
    expect_match "$ERR" "'$(img "$d" s1)'" "the refusal names the other branch's image"
    expect_error "another branch of the snapshot tree" \
        xl block-commit --keep-overlay "$d" xvda
    expect_error "another branch of the snapshot tree" \
        xl block-commit --active "$d" xvda
    expect_unchanged "$fp" "the refused commits"
    domain_running "$d" || fail "$d stopped"
    expect_no_job "$d"
    expect_snapshot_view "$d" s2 2
    expect_ok xl destroy "$d"
    drop_domain "$d"
}

# s1 s2 s3, revert to s2: s3's image (s2's overlay) is built on s1's
# overlay, the middle of the chain now active.
case_branch_offline() {
    local d=c9 fp
    start_domain "$d" offline
    build_chain "$d"
    expect_ok xl snapshot-revert "$d" s2
    expect_eq "$(active_image "$d" xvda)" "$(img "$d" s2.1)" "active image after revert to s2"
    expect_eq "$(chain_files "$(img "$d" s2.1)")" "$(img "$d" s2.1)
$(img "$d" s1)
$(img "$d")" "chain after revert to s2"
    fp=$(fingerprint)
    # merges s1's overlay (s3's image's backing) into base
    expect_error "another branch of the snapshot tree" \
        xl block-commit --top "$(img "$d" s1)" "$d" xvda
    # writes into s1's overlay
    expect_error "another branch of the snapshot tree" \
        xl block-commit --active --shallow "$d" xvda
    expect_error "another branch of the snapshot tree" \
        xl block-commit --pivot "$d" xvda
    expect_unchanged "$fp" "the refused commits"
    domain_running "$d" && fail "$d started"
    expect_no_job "$d"
    expect_snapshot_view "$d" s3 3
    check_images
    drop_domain "$d"
}

# --keep-relative: the image above top gets base's name relative to its
# own directory; the chain resolves the same, and the disk stays usable
# (a later snapshot and job on it work).  Live it is refused (QEMU 7.2
# then names the node by a json: filename), so: offline.
case_keep_relative() {
    local d=c11
    start_domain "$d" live
    build_chain "$d"
    expect_error "offline only" \
        xl block-commit --keep-relative --top "$(img "$d" s2)" "$d" xvda
    flush_disk "$d"
    expect_ok xl destroy "$d"
    expect_ok xl block-commit --keep-relative --top "$(img "$d" s2)" "$d" xvda
    expect_warning "s1, s2"
    expect_ok xl create "$CFG"
    flush_disk "$d"
    expect_ok qemu-img info -U --output=json "$(img "$d" s3)"
    expect_eq "$(jq -r '."backing-filename"' <<<"$OUT")" "$d-xvda.qcow2" \
        "backing file name written into the image above top"
    expect_eq "$(chain_files "$(img "$d" s3)")" "$(img "$d" s3)
$(img "$d")" "chain after the commit"
    expect_view "$(img "$d" s3)" 4
    expect_ok xl snapshot-create "${EXT_A[@]}" "$d" s4
    expect_eq "$(active_image "$d" xvda)" "$(img "$d" s4)" "active image after s4"
    expect_ok xl block-stream "$d" xvda
    flush_disk "$d"
    expect_view "$(img "$d" s4)" 4
    check_images
    expect_ok xl destroy "$d"
    drop_domain "$d"
}

# A snapshot a commit takes the data of goes whole: m1 (memory, xvda
# internal, xvdb external) loses xvdb's data to a commit of xvdb, so its
# memory image and its qcow2 snapshot in xvda's image go with its
# record.  A qcow2 snapshot inside base survives a commit into base:
# i0 (xvda internal, in the config image) after e1's overlay is
# committed into that image, and still reverts to its data.
case_lost_parts() {
    local d=c10 mem
    start_domain "$d" live
    write_pattern "$d" xvda 0x11 0 1M
    write_pattern "$d" xvdb 0x21 0 1M
    expect_ok xl snapshot-create --diskspec xvda,snapshot=internal \
        --diskspec xvdb,snapshot=no "$d" i0
    write_pattern "$d" xvda 0x12 0 1M
    expect_ok xl snapshot-create --memory --diskspec xvda,snapshot=internal \
        --diskspec xvdb,snapshot=external "$d" m1
    expect_ok xl snapshot-info --json "$d" m1
    mem=$(jq -r .memory <<<"$OUT")
    expect_file "$mem"
    write_pattern "$d" xvdb 0x22 0 1M
    expect_ok xl block-commit --pivot --delete "$d" xvdb
    expect_warning "m1"
    expect_ok xl snapshot-list --name "$d"
    expect_eq "$OUT" "i0" "snapshots after m1 lost xvdb's data"
    expect_no_file "$mem"
    expect_eq "$(internal_snapshots "$(img "$d")" | tr '\n' ' ')" "i0 " \
        "qcow2 snapshots in xvda's image once m1 is gone"
    expect_ok xl snapshot-check "$d"

    step "  a qcow2 snapshot inside base survives a commit into base"
    expect_ok xl snapshot-create --diskspec xvda,snapshot=external \
        --diskspec xvdb,snapshot=no "$d" e1
    write_pattern "$d" xvda 0x13 0 1M
    expect_ok xl block-commit --pivot --delete "$d" xvda
    expect_warning "e1"
    expect_ok xl snapshot-list --name "$d"
    expect_eq "$OUT" "i0" "snapshots after committing e1 into i0's image"
    expect_eq "$(internal_snapshots "$(img "$d")" | tr '\n' ' ')" "i0 " \
        "qcow2 snapshots in base after the commit"
    expect_ok xl snapshot-check "$d"
    expect_ok xl snapshot-revert "$d" i0
    expect_ok xl destroy "$d"
    read_pattern "$(active_image "$d" xvda)" 0x11 0 1M
    check_images
    drop_domain "$d"
}

case_refusals() {
    local d=c10 fp
    start_domain "$d" live
    build_chain "$d"
    fp=$(fingerprint)
    refusals() {
        expect_error "not in the backing chain" \
            xl block-commit --top "$IMG/$d-xvdb.img" "$d" xvda
        expect_error "not in the backing chain" \
            xl block-commit --top "$T/no-such.qcow2" "$d" xvda
        expect_error "not in the backing chain" \
            xl block-commit --top "$(img "$d" s2)" --base "$IMG/$d-xvdb.img" "$d" xvda
        expect_error "exclude each other" \
            xl block-commit --shallow --base "$(img "$d")" --top "$(img "$d" s2)" "$d" xvda
        expect_error "needs an active commit" xl block-commit "$d" xvda
        expect_error "needs an active commit" xl block-commit --top "$(img "$d" s3)" "$d" xvda
        expect_error "base must be below top" \
            xl block-commit --top "$(img "$d" s1)" --base "$(img "$d" s2)" "$d" xvda
        expect_error "base must be below top" \
            xl block-commit --top "$(img "$d" s1)" --base "$(img "$d" s1)" "$d" xvda
        expect_error "active commit" \
            xl block-commit --pivot --top "$(img "$d" s2)" "$d" xvda
        expect_error "has no disk" xl block-commit --active "$d" xvdz
    }
    refusals
    # (options refused before the domain is looked at: once)
    expect_error "exclude each other" xl block-commit --pivot --keep-overlay "$d" xvda
    # (xl names its options, not the library's flags)
    expect_match "$ERR" "--pivot and --keep-overlay" "stderr for --pivot --keep-overlay"
    expect_no_match "$ERR" "LIBXLSNAP_" "stderr for --pivot --keep-overlay"
    expect_error "keep-overlay" xl block-commit --delete --keep-overlay "$d" xvda
    expect_no_match "$ERR" "LIBXLSNAP_" "stderr for --delete --keep-overlay"
    expect_fail xl block-commit --active --bandwidth fast "$d" xvda
    expect_match "$ERR" "bandwidth" "stderr for a bad --bandwidth"
    expect_fail xl block-commit --active --timeout 0 "$d" xvda
    expect_match "$ERR" "timeout" "stderr for a bad --timeout"
    expect_fail xl block-commit --active no-such-domain xvda
    expect_unchanged "$fp" "the refused commits (live)"
    domain_running "$d" || fail "$d stopped"
    expect_no_job "$d"
    expect_ok xl destroy "$d"
    fp=$(fingerprint)
    refusals
    expect_unchanged "$fp" "the refused commits (offline)"
    domain_running "$d" && fail "$d started"
    expect_no_job "$d"
    drop_domain "$d"
}

soft_case "live intermediate commit (--top, --base, --delete)" case_live_intermediate
soft_case "offline intermediate commit (--top)" case_offline_intermediate
soft_case "live active commit --pivot --delete (qcow2 and raw base)" case_live_active_pivot
soft_case "offline active commit --pivot" case_offline_active_pivot
soft_case "live active commit --keep-overlay" case_live_keep_overlay
soft_case "--keep-overlay: the snapshots it keeps still read as taken" case_keep_overlay_records
soft_case "guest writes at READY, then block-job --pivot" case_writes_at_ready
soft_case "guest writes while an --async active commit runs" case_writes_while_running
soft_case "commit under another branch refused (live)" case_branch_live
soft_case "commit under another branch refused (offline, mid-chain)" case_branch_offline
soft_case "live --keep-relative: relative backing name, the disk still usable" case_keep_relative
soft_case "a snapshot that loses a disk's data goes whole; one inside base stays" case_lost_parts
soft_case "bad requests refused, nothing changed (live, offline)" case_refusals
finish
