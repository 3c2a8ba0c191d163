#!/bin/bash
# test-85-delete-external.sh - deleting external snapshots anywhere in
# the tree, live (QMP block jobs) and offline (qemu-img)
#
# The tree, on a fresh 2-disk domain (external on both disks):
#
#     s0 <- s1 <- s2 <- s3     layers 1, 2, 3, 4 (one before each)
#                   \-- s4     revert to s2, layer 5, s4; then layer 6
#
# Layer N is byte 0x1N on xvda and 0xaN on xvdb at N*64K, so each
# snapshot has its own content: s0 {1}, s1 {1,2}, s2 {1,2,3},
# s3 {1,2,3,4}, s4 {1,2,3,5}; the current state {1,2,3,5,6}.  The
# images of a disk (cfg: the config image; .sN: <stem>.sN.qcow2):
#
#     cfg <- .s0 <- .s1 <- .s2                (s3's image)
#                       \- .s2.1 <- .s4       (s4's image; active)
#
# For live and offline, the snapshots are deleted one after the other,
# each one taking another path of the delete:
#   s1  one image (.s1) built on its image .s0: .s1 committed into .s0
#       and removed; of the two images on .s1, the one QEMU does not
#       run (.s2) is rebased onto .s0;
#   s2  two children, two images built on its image .s0: .s0 streamed
#       into both, removed; s3 and s4 re-parented to s0;
#   s3  a leaf: nothing built on .s2, removed;
#   s0  the root: one image (.s2.1) on the config image, committed into
#       it (the config image stays), s4 becomes the root;
#   s4  the last, current one: the active image committed into the
#       config image (raw on xvdb) with a pivot: the domain is left on
#       its config images, no overlay left, no current snapshot.
# Each delete runs with --verbose: its block jobs' lines and its time
# and speed (none where nothing is merged).  After each delete: the snapshot is gone from snapshot-list --json,
# every other one has the right parent and children, the current one is
# right; the image the delete merged away is gone and the image files
# are exactly the config images, the records' images and the active
# images; the current state still reads as before (live: the domain
# still runs, same domid and QEMU pid, and QEMU reads it too); qemu-img
# check is clean, each active chain ends at the config image, no image
# is orphaned.  Then a revert to every remaining snapshot in turn reads
# its exact content on both disks (every layer present or zero, every
# chain ending at the config image); layer 6 is written again on the
# last one.  The live domain is shut off at the end and its images
# checked once more (leaked clusters too).
#
# Also (live; the plan is the same offline): the root s1 of a tree whose
# config image has two images built on it (s1 <- s2, revert to s1, s3):
# the config image stays the base of both branches (chains still end at
# it, it is not left orphaned), s2 and s3 keep their data; the same
# checks.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

# (The helpers below avoid starting processes where bash can do the
# work: on a small VM each fork+exec costs tens of ms, and these tests
# make a few thousand checks.)

SLOT=65536
LAYERS=(1 2 3 4 5 6)
# shellcheck disable=SC2054  # the commas are in the arguments
EXT=(--diskspec xvda,snapshot=external --diskspec xvdb,snapshot=external)
VDEVS=(xvda xvdb)
declare -A CONTENT=()

# BYTE[vdev,N]: the byte of layer N on that disk
# shellcheck source=tests/qemu/lib-delete.sh
. "$(dirname "$0")/lib-delete.sh"
# delete_one D MODE VICTIM TREE GONE: delete VICTIM; TREE (as for
# expect_tree) is the tree it leaves; GONE are the suffixes of the
# images it must have removed (<stem>.GONE.qcow2 of both disks; @: the
# active images before the delete); a 6th argument "nojob": the delete
# merges no image, so runs no block job.  CUR_DATA: the layers the current
# state holds; CUR_SNAP: the current snapshot.
delete_one() {
    local d=$1 mode=$2 victim=$3 tree=$4 gone=$5 jobs=${6:-jobs} pid='' domid='' s g last=''
    local -A before=()
    step "$mode: delete $victim"
    if [ "$mode" = live ]; then
        pid=$(runtime_pid "$d") || fail "no QEMU for $d"
        domid=$(domid_of "$d")
        [ -n "$domid" ] || fail "no domid for $d"
    fi
    load_actives "$d"
    for s in "${VDEVS[@]}"; do before[$s]=${ACTIVE[$s]}; done
    expect_ok xl snapshot-info --json "$d" "$victim"
    [ "$CUR_SNAP" = "$victim" ] && CUR_SNAP=$(jq -r '.parent // ""' <<<"$OUT")

    expect_ok xl snapshot-delete --verbose "$d" "$victim"
    # --verbose to a pipe: a line per job state, then what was merged,
    # in how long; a delete that merges nothing (a leaf) says neither
    if [ "$jobs" = nojob ]; then
        expect_no_match "$OUT" "^Snapshot delete:" "job lines of a leaf's delete"
    else
        expect_match "$OUT" "^Snapshot delete: \\[100 %\\] completed$" "the delete's job lines"
        expect_match "$(tail -n 1 <<<"$OUT")" "^Snapshot delete: (0\\.[1-9]|[1-9][0-9]*\\.[0-9]) MiB in [0-9.]+ s \\([0-9.]+ MiB/s\\)$" \
            "the delete's time and speed"
    fi

    if [ "$mode" = live ]; then
        expect_eq "$(runtime_pid "$d")" "$pid" "QEMU pid of $d after the delete"
        expect_eq "$(domid_of "$d")" "$domid" "domid of $d after the delete"
        expect_guest_layers "$d" "$CUR_DATA"
    fi
    expect_error "no snapshot named '$victim'" xl snapshot-info "$d" "$victim"
    expect_tree "$d" "$tree"
    if [ -n "$CUR_SNAP" ]; then
        expect_ok xl snapshot-current "$d"
        expect_eq "$OUT" "$CUR_SNAP" "current snapshot after deleting $victim"
    else
        expect_fail xl snapshot-current "$d"
        expect_match "$ERR" "has no current snapshot" "snapshot-current's error"
    fi
    for g in $gone; do
        for s in "${VDEVS[@]}"; do
            if [ "$g" = @ ]; then
                expect_no_file "${before[$s]}"
            else
                expect_no_file "$IMG/$d-$s.$g.qcow2"
            fi
        done
    done
    consistent "$d"
    expect_layers "$d" "$CUR_DATA" loaded

    expect_ok xl snapshot-list --name "$d"
    for s in $(sort <<<"$OUT"); do
        expect_ok xl snapshot-revert "$d" "$s"
        expect_layers "$d" "${CONTENT[$s]}"
        expect_chains "$d"
        last=$s
    done
    if [ -n "$last" ]; then
        # (qemu-img check and expect_no_orphans again after the next delete)
        expect_exact_files "$d"
        write_layer "$d" 6 loaded
        CUR_DATA="${CONTENT[$last]} 6"
        CUR_SNAP=$last
    fi
}

case_tree() {
    local mode=$1 d=$1-tree
    CONTENT=([s0]="1" [s1]="1 2" [s2]="1 2 3" [s3]="1 2 3 4" [s4]="1 2 3 5")
    new_domain "$d" "$mode"
    write_layer "$d" 1
    expect_ok xl snapshot-create "${EXT[@]}" "$d" s0
    write_layer "$d" 2
    expect_ok xl snapshot-create "${EXT[@]}" "$d" s1
    write_layer "$d" 3
    expect_ok xl snapshot-create "${EXT[@]}" "$d" s2
    write_layer "$d" 4
    expect_ok xl snapshot-create "${EXT[@]}" "$d" s3
    expect_ok xl snapshot-revert "$d" s2
    write_layer "$d" 5
    expect_ok xl snapshot-create "${EXT[@]}" "$d" s4
    write_layer "$d" 6
    expect_tree "$d" "s0:null:s1 s1:s0:s2 s2:s1:s3,s4 s3:s2: s4:s2:"
    load_actives "$d"
    chain_names "${ACTIVE[xvdb]}"
    expect_eq "$CHAIN" \
        "$d-xvdb.s4.qcow2 $d-xvdb.s2.1.qcow2 $d-xvdb.s1.qcow2 $d-xvdb.s0.qcow2 $d-xvdb.img" \
        "xvdb's chain"
    CUR_DATA="1 2 3 5 6"
    CUR_SNAP=s4

    delete_one "$d" "$mode" s1 "s0:null:s2 s2:s0:s3,s4 s3:s2: s4:s2:" "s1"
    delete_one "$d" "$mode" s2 "s0:null:s3,s4 s3:s0: s4:s0:" "s0"
    delete_one "$d" "$mode" s3 "s0:null:s4 s4:s0:" "s2" nojob
    delete_one "$d" "$mode" s0 "s4:null:" "s2.1"
    delete_one "$d" "$mode" s4 "" "@"
    expect_eq "${ACTIVE[xvda]} ${ACTIVE[xvdb]}" "${CONFIG[xvda]} ${CONFIG[xvdb]}" \
        "$d's active images once no snapshot is left"
    if [ "$mode" = live ]; then
        shut_off "$d"
        consistent "$d"
        expect_layers "$d" "$CUR_DATA" loaded
    fi
}

case_root_branches() {
    local mode=$1 d=$1-roots
    CONTENT=([s1]="1" [s2]="1 2" [s3]="1 3")
    new_domain "$d" "$mode"
    write_layer "$d" 1
    expect_ok xl snapshot-create "${EXT[@]}" "$d" s1
    write_layer "$d" 2
    expect_ok xl snapshot-create "${EXT[@]}" "$d" s2
    expect_ok xl snapshot-revert "$d" s1
    write_layer "$d" 3
    expect_ok xl snapshot-create "${EXT[@]}" "$d" s3
    write_layer "$d" 6
    expect_tree "$d" "s1:null:s2,s3 s2:s1: s3:s1:"
    CUR_DATA="1 3 6"
    CUR_SNAP=s3
    delete_one "$d" "$mode" s1 "s2:null: s3:null:" "" nojob
}

for mode in live offline; do
    soft_case "$mode: s1, s2, s3, s0, s4 of s0 <- s1 <- s2 <- {s3, s4}" \
        case_tree "$mode"
done
soft_case "live: the root, two images on the config image" \
    case_root_branches live
finish
