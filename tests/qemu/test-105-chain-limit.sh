#!/bin/bash
# test-105-chain-limit.sh - the longest backing chain a snapshot may make
# (max_chain), --auto-commit, xl-snapshot-rotate honouring it, and
# snapshots refused while a merge is pending
#
#  - the limit from XL_SNAPSHOT_MAX_CHAIN, the domain config's
#    snapshot_max_chain and the host file xl-snapshot.conf (in that
#    order): an external snapshot that would make xvda's chain longer is
#    refused in one line naming the disk, its chain and the ways to
#    shorten it, nothing changed (fingerprint, qemu-img info
#    --backing-chain, no record, no file), the guest never paused
#    (running before and after, QEMU's query-status); an internal one
#    at the limit is taken; a bad value is one line; live and offline;
#    xl snapshot-chain (--json) shows the chains and the limit; a VHD
#    chain counts as a qcow2 one;
#  - --auto-commit (live and offline): the oldest layer no snapshot
#    needs (left by --no-metadata) is merged first, the record that
#    froze the merged image follows it, the chain stays at the limit,
#    every snapshot reverts to its own data, qemu-img check clean; when
#    every layer is needed: refused in one line naming the snapshot to
#    delete, nothing changed;
#  - xl-snapshot-rotate deletes the oldest snapshots it considers until
#    the chain has room for the next snapshot, and says so (dry run
#    too);
#  - pending merges: a create during a block-stream --async is refused
#    naming the job and how to finish it, and taken once the job ended;
#    a block job started in QEMU by hand is refused too; a create after
#    a delete killed part-way (crash point) completes its recovery
#    first and says so.
# The case functions run through soft_case:
# shellcheck disable=SC2317
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/qemu/lib-blockjob.sh
. "$(dirname "$0")/lib-blockjob.sh"

ROTATE=$REPO/scripts/xl-snapshot-rotate
# the limit as a user has it: lib.sh's long-chain setting off, and no
# host file but the ones made here
unset XL_SNAPSHOT_MAX_CHAIN
mkdir -p "$T/etc"
export XL_SNAPSHOT_CONFIG_DIR=$T/etc

# the guest runs (QEMU's own word, not ours)
expect_guest_running() {
    expect_ok xl qemu-monitor-command "$1" "info status"
    expect_match "${OUT//$'\r'/}" "^VM status: running$" "QEMU's status of $1"
}

# refused_at_limit D ERE CMD...: refused, nothing changed, chain same,
# guest (if running) never paused
refused_at_limit() {
    local d=$1 ere=$2 chain running=0
    shift 2
    runtime_pid "$d" >/dev/null && running=1
    [ "$running" = 1 ] && expect_guest_running "$d"
    chain=$(chain_files "$(active_image "$d" xvda)")
    refused "$ere" "$@"
    expect_eq "$(chain_files "$(active_image "$d" xvda)")" "$chain" \
        "xvda's chain after the refusal"
    [ "$running" = 1 ] && expect_guest_running "$d"
    return 0
}

LIMIT_ERE="disk xvda: its backing chain is 4 images \(.*s3.qcow2 down to .*-xvda.qcow2\): a new snapshot would make it 5, over max_chain 4"

case_limit() {
    local d=l1 how=$1 etc=$T/etc-l1
    [ "$how" = offline ] && d=l2
    start_domain "$d" "$how"
    build_chain "$d"
    # the built-in default (Config.mk's 16); the environment first
    expect_ok xl snapshot-chain --json "$d"
    expect_eq "$(jq -c '[.max_chain, .disks[0].length]' <<<"$OUT")" '[16,4]' \
        "the built-in max_chain"
    refused_at_limit "$d" "$LIMIT_ERE \(XL_SNAPSHOT_MAX_CHAIN in the environment\); shorten it first: xl snapshot-delete $d s1 \(every layer of it is needed by a snapshot\)$" \
        env XL_SNAPSHOT_MAX_CHAIN=4 "$XL" snapshot-create "${EXT_A[@]}" "$d" s4
    expect_no_file "$(img "$d" s4)"
    expect_error "environment: XL_SNAPSHOT_MAX_CHAIN=four: give a whole number from 2 to 1000" \
        env XL_SNAPSHOT_MAX_CHAIN=four "$XL" snapshot-create "${EXT_A[@]}" "$d" s4
    # the host file
    mkdir -p "$etc"
    printf '# test\nmax_chain = 4\n' > "$etc/xl-snapshot.conf"
    refused_at_limit "$d" "$LIMIT_ERE \($etc/xl-snapshot.conf:2\)" \
        env XL_SNAPSHOT_CONFIG_DIR="$etc" "$XL" snapshot-create "${EXT_A[@]}" "$d" s4
    # the domain config beats the host file, the environment both
    echo "snapshot_max_chain = 4" >> "$CFG"
    printf 'max_chain = 10\n' > "$etc/xl-snapshot.conf"
    refused_at_limit "$d" "$LIMIT_ERE \($CFG:[0-9]+\)" \
        env XL_SNAPSHOT_CONFIG_DIR="$etc" "$XL" snapshot-create "${EXT_A[@]}" "$d" s4
    expect_ok xl snapshot-chain --json "$d"
    expect_eq "$(jq -c '[.max_chain, (.disks[] | [.vdev, .length])]' <<<"$OUT")" \
        '[4,["xvda",4],["xvdb",1]]' "snapshot-chain --json"
    expect_eq "$(jq -r '.disks[0].files[]' <<<"$OUT")" "$(chain_files "$(img "$d" s3)")" \
        "snapshot-chain --json files"
    expect_ok xl snapshot-chain "$d"
    expect_match "$OUT" "^xvda 4 .*s3.qcow2 .* \(full: the next external snapshot is refused\)$" \
        "snapshot-chain"
    # an internal snapshot does not lengthen the chain
    expect_ok xl snapshot-create --diskspec xvda,snapshot=internal \
        --diskspec xvdb,snapshot=no "$d" i1
    expect_eq "$(internal_snapshots "$(img "$d" s3)")" i1 "i1, inside the active image"
    expect_eq "$(chain_files "$(active_image "$d" xvda)" | wc -l)" 4 "chain after i1"
    # a larger limit from the environment lets it through
    expect_ok env XL_SNAPSHOT_MAX_CHAIN=5 "$XL" snapshot-create "${EXT_A[@]}" "$d" s4
    expect_eq "$(chain_files "$(active_image "$d" xvda)" | wc -l)" 5 "chain after s4"
    [ "$how" = live ] && expect_guest_running "$d"
    expect_view "$(img "$d" s4)" 4
    check_images
    drop_domain "$d"
}

# auto_commit_interrupted D (live, after case_auto_commit's reverts: the
# active image sees layers A B C): a --no-metadata layer of 60M to merge
# (the active image: an active commit), then Ctrl-C while the merge
# runs (xl stopped at the crash point once the job started, the job
# slowed down as test-87 does, SIGINT, SIGCONT): aborted, no snapshot,
# no record dropped, the chain and what it reads as before, no job
# left; then the same without Ctrl-C
AC_VIEW=("0x11 0 1M" "0x22 1M 1M" "0x33 2M 1M" "0 3M 1M" "0x66 4M 60M")
auto_commit_interrupted() {
    local d=$1 chain top next len st i
    expect_ok xl snapshot-create --no-metadata "${EXT_A[@]}" "$d" m5
    write_pattern "$d" xvda 0x66 4M 60M
    chain=$(chain_files "$(active_image "$d" xvda)")
    len=$(wc -l <<<"$chain")
    top=$(sed -n 1p <<<"$chain")
    next=$(sed -n 2p <<<"$chain")
    bg_start ac env XL_SNAPSHOT_MAX_CHAIN="$len" \
        XL_SNAPSHOT_FAULT=autocommit:1:stop \
        "$XL" snapshot-create --auto-commit "${EXT_A[@]}" "$d" s5
    for ((i = 0; i < 1000; i++)); do
        st=$(awk '{print $3}' "/proc/$BG_PID/stat" 2>/dev/null)
        [ "$st" = T ] && break
        sleep 0.01
    done
    [ "$st" = T ] || fail "snapshot-create --auto-commit did not stop at its merge" \
        "$(bg_context ac)"
    expect_ok xl qemu-monitor-command "$d" "block_job_set_speed libxl-commit-xvda 64k"
    kill -INT "$BG_PID"
    kill -CONT "$BG_PID"
    bg_wait 30
    [ "$BG_RC" = 1 ] || fail "an interrupted --auto-commit: exit status $BG_RC" \
        "$(bg_context ac)"
    run cat "$T/ac.err"
    expect_match "$OUT" "Aborting the job" "the abort, said"
    expect_match "$OUT" "merging '$top' into '$next', which no snapshot needs" \
        "the merge it began"
    expect_no_match "$OUT" "records are removed" "records dropped"
    expect_no_file "$(img "$d" s5)"
    expect_ok xl snapshot-list --name "$d"
    expect_eq "$OUT" "s2
s3" "the snapshots after the interrupted --auto-commit"
    expect_eq "$(chain_files "$(active_image "$d" xvda)")" "$chain" \
        "the chain after the interrupted --auto-commit"
    expect_no_job "$d"
    expect_guest_running "$d"
    flush_disk "$d"
    read_patterns "$top" "" "${AC_VIEW[@]}"
    # then without the interruption: the active image merged down
    expect_ok env XL_SNAPSHOT_MAX_CHAIN="$len" "$XL" snapshot-create --auto-commit \
        "${EXT_A[@]}" "$d" s5
    expect_no_file "$top"
    expect_eq "$(chain_files "$(active_image "$d" xvda)" | wc -l)" "$len" \
        "chain after --auto-commit s5"
    expect_eq "$(chain_files "$(active_image "$d" xvda)" | sed -n 2p)" "$next" \
        "s5 froze the image merged into"
    flush_disk "$d"
    read_patterns "$next" "" "${AC_VIEW[@]}"
    expect_ok xl snapshot-revert "$d" s5
    read_patterns "$(active_image "$d" xvda)" "" "${AC_VIEW[@]}"
    expect_snapshot_view "$d" s3 3
    expect_ok xl snapshot-list --name "$d"
    expect_eq "$OUT" "s2
s3
s5" "the snapshots after --auto-commit s5"
}

# The auto-commit chain, on xvda (max_chain 3):
#   base  A (0x11)      frozen by m1 (--no-metadata: no record)
#   O1    B (0x22)      frozen by s2
#   O2    C (0x33)      active, then frozen by s3 (--auto-commit: O1
#                       merged into base first; s2 follows to base)
#   O3    D (0x44)      active
case_auto_commit() {
    local d=a1 how=$1 o1 o2 fp
    [ "$how" = offline ] && d=a2
    start_domain "$d" "$how"
    write_pattern "$d" xvda 0x11 0 1M
    expect_ok xl snapshot-create --no-metadata "${EXT_A[@]}" "$d" m1
    o1=$(img "$d" m1)
    expect_eq "$(active_image "$d" xvda)" "$o1" "active after m1"
    write_pattern "$d" xvda 0x22 1M 1M
    expect_ok xl snapshot-create "${EXT_A[@]}" "$d" s2
    o2=$(img "$d" s2)
    write_pattern "$d" xvda 0x33 2M 1M
    expect_eq "$(chain_files "$o2" | wc -l)" 3 "chain before s3"
    # without --auto-commit: refused
    refused_at_limit "$d" "disk xvda: its backing chain is 3 images .* over max_chain 3 \(XL_SNAPSHOT_MAX_CHAIN in the environment\); shorten it first: xl snapshot-delete $d s2, xl block-commit --shallow --delete --top=$o1 $d xvda, or snapshot-create --auto-commit$" \
        env XL_SNAPSHOT_MAX_CHAIN=3 "$XL" snapshot-create "${EXT_A[@]}" "$d" s3
    # a dry run says what it would merge, and changes nothing
    fp=$(fingerprint)
    expect_ok env XL_SNAPSHOT_MAX_CHAIN=3 "$XL" -N snapshot-create \
        --auto-commit "${EXT_A[@]}" "$d" s3
    expect_match "$ERR" "would merge '$o1' into '$(img "$d")', which no snapshot needs" "dry run"
    expect_unchanged "$fp" "a dry run of --auto-commit"
    expect_ok env XL_SNAPSHOT_MAX_CHAIN=3 "$XL" snapshot-create --auto-commit \
        "${EXT_A[@]}" "$d" s3
    expect_match "$ERR" "disk xvda: its backing chain is 3 images, at max_chain 3: merging '$o1' into '$(img "$d")', which no snapshot needs" \
        "what --auto-commit said"
    expect_match "$OUT" "Domain snapshot s3 created" "snapshot-create --auto-commit"
    [ "$how" = live ] && expect_match "$OUT" "^Auto-commit: [0-9.]+ MiB in [0-9.]+ s" \
        "the merge's summary"
    [ "$how" = live ] && expect_guest_running "$d"
    expect_no_file "$o1"
    expect_eq "$(chain_files "$(active_image "$d" xvda)")" "$(img "$d" s3)
$o2
$(img "$d")" "chain after --auto-commit"
    expect_ok xl snapshot-info --json "$d" s2
    expect_eq "$(jq -r '.disks[] | select(.vdev == "xvda") | .file' <<<"$OUT")" \
        "$(img "$d")" "s2's image, after the merge"
    write_pattern "$d" xvda 0x44 3M 1M
    flush_disk "$d"
    check_images
    expect_view "$(active_image "$d" xvda)" 4
    expect_view "$o2" 3
    expect_view "$(img "$d")" 2
    # every layer is now needed (s2 froze the base, s3 froze O2)
    refused_at_limit "$d" "disk xvda: its backing chain is 3 images \(.* down to .*\), at max_chain 3 \(XL_SNAPSHOT_MAX_CHAIN in the environment\), and every layer of it is needed by a snapshot: delete one first: xl snapshot-delete $d s2" \
        env XL_SNAPSHOT_MAX_CHAIN=3 "$XL" snapshot-create --auto-commit "${EXT_A[@]}" "$d" s4
    # every snapshot reverts to its own data
    expect_snapshot_view "$d" s2 2
    expect_snapshot_view "$d" s3 3
    [ "$how" = live ] && auto_commit_interrupted "$d"
    expect_ok xl snapshot-check "$d"
    check_images
    drop_domain "$d"
}

case_rotate() {
    local d=r1 fp
    start_domain "$d" live
    build_chain "$d"
    export XL_SNAPSHOT_MAX_CHAIN=4
    # a dry run says it, deletes nothing
    fp=$(fingerprint)
    run env XL="$XL" "$ROTATE" --keep 10 --include-manual --dry-run "$d"
    [ "$RC" -eq 0 ] || fail_run "rotate --dry-run"
    expect_eq "$OUT" "$d: would delete s1 (xvda's backing chain is 4 images, at max_chain 4)"         "rotate --dry-run at the limit"
    expect_unchanged "$fp" "rotate --dry-run"
    # a keep pass that makes room is enough
    run env XL="$XL" "$ROTATE" --keep 2 --include-manual --dry-run "$d"
    expect_eq "$OUT" "$d: would delete s1" "rotate --keep 2 --dry-run"
    # only what it may consider: none of them (--prefix): said
    run env XL="$XL" "$ROTATE" --keep 10 --prefix auto- --dry-run "$d"
    [ "$RC" -eq 1 ] || fail_run "rotate --prefix (status $RC, not 1)"
    expect_match "$ERR" "^$d: xvda's backing chain is 4 images, at max_chain 4, and deleting the snapshots it may delete would not give it room \(none deleted for it\)"         "rotate with nothing it may delete"
    # deleting every snapshot it may (s1 alone: --prefix) would not give
    # room at max_chain 3: the kept one stays, said, status 1
    fp=$(fingerprint)
    run env XL="$XL" XL_SNAPSHOT_MAX_CHAIN=3 "$ROTATE" --keep 10 --include-manual --prefix s1 "$d"
    [ "$RC" -eq 1 ] || fail_run "rotate that cannot give room (status $RC, not 1)"
    expect_eq "$OUT" "" "rotate that cannot give room: nothing deleted"
    expect_match "$ERR" "^$d: xvda's backing chain is 4 images, over max_chain 3, and deleting the snapshots it may delete would not give it room \(none deleted for it\)" "rotate that cannot give room"
    expect_unchanged "$fp" "rotate that cannot give room"
    # two to go for max_chain 3
    run env XL="$XL" XL_SNAPSHOT_MAX_CHAIN=3 "$ROTATE" --keep 10 --include-manual "$d"
    [ "$RC" -eq 0 ] || fail_run "rotate at max_chain 3"
    expect_eq "$OUT" "$d: deleted s1 (xvda's backing chain is 4 images, over max_chain 3)
$d: deleted s2 (xvda's backing chain is 3 images, at max_chain 3)" "rotate at max_chain 3"
    expect_ok xl snapshot-list --name "$d"
    expect_eq "$OUT" "s3" "snapshots left"
    expect_eq "$(chain_files "$(active_image "$d" xvda)" | wc -l)" 2 "xvda's chain after rotate"
    # room for the next one, and its data
    expect_ok env XL_SNAPSHOT_MAX_CHAIN=3 "$XL" snapshot-create "${EXT_A[@]}" "$d" s4
    flush_disk "$d"
    expect_view "$(img "$d" s4)" 4
    expect_snapshot_view "$d" s3 3
    run env XL="$XL" "$ROTATE" --keep 10 --include-manual "$d"
    expect_eq "$OUT" "$d: nothing to delete" "rotate with room"
    unset XL_SNAPSHOT_MAX_CHAIN
    check_images
    drop_domain "$d"
}

# a create while a merge is pending: a stream (ours), a job started in
# QEMU by hand, a delete killed part-way
case_pending() {
    local d=p1 fp
    start_domain "$d" live
    build_chain "$d"
    expect_ok xl block-stream --async --bandwidth 1 "$d" xvda
    # (64 KiB/s while it is looked at: 1 MiB/s may end it before the
    # chain is read again on a loaded machine; below 10 bytes/s QEMU's
    # rate limit has no quota per 100 ms slice and does not limit)
    expect_ok xl qemu-monitor-command "$d" "block_job_set_speed libxl-stream-xvda 64k"
    # (the stream writes the active image meanwhile: records and run
    # files only)
    local FP_DIRS="state run"
    refused_at_limit "$d" "disk xvda of domain $d is in block job libxl-stream-xvda \(a live stream, not over\); finish it first \(xl block-job $d xvda shows its progress; --abort cancels it" \
        xl snapshot-create "${EXT_A[@]}" "$d" s4
    expect_no_file "$(img "$d" s4)"
    FP_DIRS="state img run"
    # the job ends (its outcome not yet recorded: the next command
    # does it): the same create is taken
    expect_ok xl qemu-monitor-command "$d" "block_job_set_speed libxl-stream-xvda 0"
    wait_job_state "$d" xvda concluded 60
    expect_ok xl snapshot-create "${EXT_A[@]}" "$d" s4
    expect_no_job "$d"
    expect_eq "$(chain_files "$(active_image "$d" xvda)")" "$(img "$d" s4)
$(img "$d" s3)" "chain after the stream and s4"
    flush_disk "$d"
    expect_view "$(img "$d" s4)" 4
    # a job QEMU runs that xl did not start (HMP block_stream)
    write_pattern "$d" xvda 0x55 4M 1M
    expect_ok xl qemu-monitor-command "$d" "block_stream xvda 1"
    expect_ok xl qemu-monitor-command "$d" "info block-jobs"
    expect_match "${OUT//$'\r'/}" "Streaming device xvda:" "the job by hand"
    FP_DIRS="state run"
    refused_at_limit "$d" "domain $d: QEMU runs block job 'xvda' \(stream, running\), which xl did not start: a snapshot waits until it ends" \
        xl snapshot-create "${EXT_A[@]}" "$d" s5
    FP_DIRS="state img run"
    expect_no_file "$(img "$d" s5)"
    expect_ok xl qemu-monitor-command "$d" "block_job_cancel -f xvda"
    local i
    for i in $(seq 50); do
        run xl qemu-monitor-command "$d" "info block-jobs"
        [ "${OUT//$'\r'/}" = "No active jobs" ] && break
        sleep 0.1
    done
    expect_ok xl snapshot-create "${EXT_A[@]}" "$d" s5
    expect_snapshot_view "$d" s4 4
    check_images
    drop_domain "$d"
}

# a create after a delete killed part-way (crash point POINT: 1 its
# journal written, 2 its merge under way in QEMU) finishes that delete
# first, says so, then takes the snapshot
case_delete_killed() {
    local d=k$1 point=$1 s
    start_domain "$d" live
    build_chain "$d"
    run env XL_SNAPSHOT_FAULT=delete:"$point" "$XL" snapshot-delete "$d" s2
    expect_eq "$RC" 86 "the delete's crash at point $point"
    expect_file "$(domain_dir "$d")/journal.libxl-json"
    expect_ok xl snapshot-create "${EXT_A[@]}" "$d" s4
    if [ "$point" = 1 ]; then
        # recovery leaves it part-done (its records true): the create
        # finishes it, then snapshots
        expect_match "$ERR" "notice: domain $d: finishing an interrupted snapshot-delete of 's2' \(it had stopped after 1 of its 2 disks\) before the snapshot" \
            "the delete finished first, said"
        expect_match "$ERR" "an interrupted snapshot-delete of 's2' was finished" \
            "the delete finished, said"
    else
        # the merge QEMU ran is cancelled by the recovery, which ends
        # the delete (the snapshot whose image it wrote part of goes)
        expect_match "$ERR" "the interrupted merge of '$(img "$d" s2)' into '$(img "$d" s1)' may have written part of it: the data of snapshot\(s\) s2 there is lost" \
            "the recovery of the merge, said"
        expect_match "$ERR" "an interrupted snapshot-delete of 's2' is over: its record is removed" \
            "the delete over, said"
    fi
    expect_no_match "$ERR" "left part-done" "the delete left"
    expect_no_file "$(domain_dir "$d")/journal.libxl-json"
    expect_ok xl snapshot-list --name "$d"
    expect_eq "$OUT" "s1
s3
s4" "the snapshots after"
    flush_disk "$d"
    expect_view "$(img "$d" s4)" 4
    expect_ok xl snapshot-check "$d"
    expect_no_job "$d"
    for s in s1 s3 s4; do
        expect_snapshot_view "$d" "$s" "${s#s}"
    done
    check_images
    drop_domain "$d"
}

# a shut-off domain on a dynamic VHD: its chain of differencing VHDs
# (vhd-util) counts as a qcow2 chain does
case_vhd() {
    local cfg=$T/v1.cfg
    export XL_SNAPSHOT_VHD_UTIL=$REPO/tools/vhd-util
    qemu-img create -q -f vpc -o subformat=dynamic "$IMG/v1-xvda.vhd" 16M
    printf 'name = "v1"\nmemory = 64\ndisk = [ %s ]\n' \
        "'format=vhd,vdev=xvda,access=rw,target=$IMG/v1-xvda.vhd'" > "$cfg"
    expect_ok xl snapshot-create "$cfg" s1
    expect_ok xl snapshot-create "$cfg" s2
    expect_ok xl snapshot-chain --json "$cfg"
    expect_eq "$(jq -c '[.disks[] | [.vdev, .length]]' <<<"$OUT")" '[["xvda",3]]' \
        "the VHD chain's length"
    refused "disk xvda: its backing chain is 3 images \($IMG/v1-xvda.s2.vhd down to $IMG/v1-xvda.vhd\): a new snapshot would make it 4, over max_chain 3 .*xl snapshot-delete v1 s1" \
        env XL_SNAPSHOT_MAX_CHAIN=3 "$XL" snapshot-create "$cfg" s3
    expect_ok env XL_SNAPSHOT_MAX_CHAIN=4 "$XL" snapshot-create "$cfg" s3
    expect_eq "$(active_image v1 xvda)" "$IMG/v1-xvda.s3.vhd" "the active VHD"
}

soft_case "limit: environment, domain config, host file (live)" case_limit live
soft_case "limit: offline" case_limit offline
soft_case "--auto-commit (live)" case_auto_commit live
soft_case "--auto-commit (offline)" case_auto_commit offline
soft_case "limit: a VHD chain (offline)" case_vhd
soft_case "xl-snapshot-rotate honours max_chain" case_rotate
soft_case "pending: a stream, a job by hand" case_pending
soft_case "pending: a delete killed after its journal" case_delete_killed 1
soft_case "pending: a delete killed during its merge" case_delete_killed 2
finish
