#!/bin/bash
# test-86-delete-children.sh - snapshot-delete --children,
# --children-only, --metadata, and a snapshot internal on one disk and
# external on the other
#
# The tree cases build, on a fresh 2-disk domain (external on both):
#
#     s1 <- s2 <- s3          layers 1, 2, 3 (one before each)
#            \-- s4           revert to s2, layer 4, s4; then layer 5
#
# Layer N is byte 0x1N on xvda and 0xaN on xvdb at N*64K: s1 {1},
# s2 {1,2}, s3 {1,2,3}, s4 {1,2,4}; the current state {1,2,4,5}.
#
#  - live: --children-only s2 while s4 (in s2's subtree) is current: s3
#    and s4 gone (list, tree, info), s1 and s2 kept, s2 current; the
#    domain runs on (same QEMU pid), the current state reads as before
#    (from outside and through QEMU); the image files are exactly the
#    config images, the records' images and the active ones; qemu-img
#    check, chains end at the config images, no orphan; s1 and s2
#    revert to their exact data.  Then --children s1: no snapshot left,
#    the domain on its config images with the current data, the same
#    checks, and once more after shutting it off;
#  - offline: --children with --children-only is refused, nothing
#    changed; --children s2 while s1 is current: s2, s3 and s4 gone, s1
#    kept and current, the same checks, s1 reverts to its exact data;
#  - offline, --metadata s2: only the record goes: every image file
#    (contents too) and every backing chain unchanged; s3 and s4 are
#    re-parented to s1; s1, s3, s4 still revert to their exact data.
#  - mixed, live and offline: m1 and m2 internal on the qcow2 xvda and
#    external on the raw xvdb (the default types); deleting m1 removes
#    its qcow2 snapshot from xvda and commits its overlay into the raw
#    image; m2 then reverts to its data on both disks; deleting m2 (the
#    last) leaves xvda without qcow2 snapshots and xvdb on its raw
#    config image, the current data intact.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

# (The helpers below avoid starting processes where bash can do the
# work: on a small VM each fork+exec costs tens of ms, and these tests
# make a few thousand checks.)

SLOT=65536
LAYERS=(1 2 3 4 5)
# shellcheck disable=SC2054  # the commas are in the arguments
EXT=(--diskspec xvda,snapshot=external --diskspec xvdb,snapshot=external)
VDEVS=(xvda xvdb)
declare -A CONTENT=([s1]="1" [s2]="1 2" [s3]="1 2 3" [s4]="1 2 4")

# BYTE[vdev,N]: the byte of layer N on that disk
# shellcheck source=tests/qemu/lib-delete.sh
. "$(dirname "$0")/lib-delete.sh"
expect_current() {
    expect_ok xl snapshot-current "$1"
    expect_eq "$OUT" "$2" "current snapshot of $1"
}

expect_gone() {
    local d=$1 s
    shift
    for s in "$@"; do
        expect_error "no snapshot named '$s'" xl snapshot-info "$d" "$s"
    done
}

# revert_all D SNAP...: each reverts to its exact data, chains intact
revert_all() {
    local d=$1 s
    shift
    for s in "$@"; do
        expect_ok xl snapshot-revert "$d" "$s"
        expect_layers "$d" "${CONTENT[$s]}"
        expect_chains "$d"
    done
}

build_tree() {
    local d=$1 mode=$2
    new_domain "$d" "$mode"
    write_layer "$d" 1
    expect_ok xl snapshot-create "${EXT[@]}" "$d" s1
    write_layer "$d" 2
    expect_ok xl snapshot-create "${EXT[@]}" "$d" s2
    write_layer "$d" 3
    expect_ok xl snapshot-create "${EXT[@]}" "$d" s3
    expect_ok xl snapshot-revert "$d" s2
    write_layer "$d" 4
    expect_ok xl snapshot-create "${EXT[@]}" "$d" s4
    write_layer "$d" 5
    expect_tree "$d" "s1:null:s2 s2:s1:s3,s4 s3:s2: s4:s2:"
    expect_current "$d" s4
}

# ------------------------------------------------------------------

# live: --children-only s2 (the current s4 among them: its image is
# committed into the one it froze, with a pivot), then --children s1
# (every snapshot; the active image is committed twice)
case_children_live() {
    local d=kids pid
    build_tree $d live
    pid=$(runtime_pid $d) || fail "no QEMU for $d"

    step "live: --children-only s2"
    expect_ok xl snapshot-delete --children-only $d s2
    expect_eq "$(runtime_pid $d)" "$pid" "QEMU pid of $d after the delete"
    expect_guest_layers $d "1 2 4 5"
    expect_gone $d s3 s4
    expect_tree $d "s1:null:s2 s2:s1:"
    expect_ok xl snapshot-list --tree $d
    expect_eq "$OUT" "s1
+- s2 (current)" "snapshot-list --tree"
    expect_current $d s2
    consistent $d
    expect_layers $d "1 2 4 5" loaded
    revert_all $d s1 s2
    write_layer $d 5 loaded

    step "live: --children s1 (all of them)"
    pid=$(runtime_pid $d) || fail "no QEMU for $d"
    expect_ok xl snapshot-delete --children $d s1
    expect_eq "$(runtime_pid $d)" "$pid" "QEMU pid of $d after the delete"
    expect_guest_layers $d "1 2 5"
    expect_gone $d s1 s2
    expect_tree $d ""
    expect_ok xl snapshot-list --tree $d
    expect_eq "$OUT" "" "snapshot-list --tree"
    consistent $d
    expect_eq "${ACTIVE[xvda]} ${ACTIVE[xvdb]}" \
        "${CONFIG[xvda]} ${CONFIG[xvdb]}" "$d's active images"
    expect_layers $d "1 2 5" loaded
    shut_off $d
    consistent $d
}

# offline: --children s2 while s1 is current (the subtree's images have
# nothing else built on them); --children with --children-only refused
case_children_offline() {
    local d=kidsoff fp
    build_tree $d offline
    expect_ok xl snapshot-revert $d s1
    write_layer $d 5

    step "offline: --children with --children-only: refused"
    fp=$(FP_DIRS="state img-$d" fingerprint)
    expect_fail xl snapshot-delete --children --children-only $d s2
    FP_DIRS="state img-$d" expect_unchanged "$fp" "snapshot-delete --children --children-only"

    step "offline: --children s2"
    expect_ok xl snapshot-delete --children $d s2
    expect_gone $d s2 s3 s4
    expect_tree $d "s1:null:"
    expect_ok xl snapshot-list --tree $d
    expect_eq "$OUT" "s1 (current)" "snapshot-list --tree"
    expect_current $d s1
    consistent $d
    expect_layers $d "1 5" loaded
    revert_all $d s1
    expect_exact_files $d
}

# every image of $IMG: its checksum, and its backing chain
images_state() {
    local f
    md5sum "$IMG"/*
    for f in "$IMG"/*; do
        chain_names "$f"
        echo "$CHAIN"
    done
}

case_metadata() {
    local d=meta before rec
    build_tree $d offline
    before=$(images_state)
    rec=$(domain_dir $d)/snapshotdata-s2.libxl-json
    expect_file "$rec"
    expect_ok xl snapshot-delete --metadata $d s2
    expect_no_file "$rec"
    expect_gone $d s2
    expect_tree $d "s1:null:s3,s4 s3:s1: s4:s1:"
    expect_current $d s4
    expect_eq "$(images_state)" "$before" "images and chains after --metadata"
    check_qcow2
    load_actives $d
    expect_chains $d
    expect_no_orphans $d "${VDEVS[@]}"
    expect_layers $d "1 2 4 5"
    revert_all $d s1 s3 s4
    check_qcow2
    expect_no_orphans $d "${VDEVS[@]}"
}

# m1 {1}, m2 {1,2}, current {1,2,3}; then revert to m2, layer 5
case_mixed() {
    local mode=$1 d=$1-mixed pid=''
    new_domain $d "$mode"
    CONTENT=([m1]="1" [m2]="1 2")
    write_layer $d 1
    expect_ok xl snapshot-create $d m1
    write_layer $d 2
    expect_ok xl snapshot-create $d m2
    write_layer $d 3
    expect_ok xl snapshot-info --json $d m1
    expect_eq "$(jq -r '[.disks[] | "\(.vdev):\(.type)"] | join(" ")' <<<"$OUT")" \
        "xvda:internal xvdb:external" "m1's disk types"
    expect_eq "$(internal_snapshots "$IMG/$d-xvda.qcow2")" "m1
m2" \
        "qcow2 snapshots in xvda"

    step "$mode: delete m1"
    [ "$mode" = live ] && pid=$(runtime_pid $d)
    expect_ok xl snapshot-delete $d m1
    if [ "$mode" = live ]; then
        expect_eq "$(runtime_pid $d)" "$pid" "QEMU pid of $d after the delete"
        expect_guest_layers $d "1 2 3"
    fi
    expect_gone $d m1
    expect_tree $d "m2:null:"
    expect_eq "$(internal_snapshots "$IMG/$d-xvda.qcow2")" "m2" \
        "qcow2 snapshots in xvda after deleting m1"
    expect_no_file "$IMG/$d-xvdb.m1.qcow2"
    consistent $d
    expect_layers $d "1 2 3" loaded
    revert_all $d m2
    write_layer $d 5 loaded

    step "$mode: delete m2, the last one"
    [ "$mode" = live ] && pid=$(runtime_pid $d)
    expect_ok xl snapshot-delete $d m2
    if [ "$mode" = live ]; then
        expect_eq "$(runtime_pid $d)" "$pid" "QEMU pid of $d after the delete"
        expect_guest_layers $d "1 2 5"
    fi
    expect_gone $d m2
    expect_tree $d ""
    expect_eq "$(internal_snapshots "$IMG/$d-xvda.qcow2")" "" \
        "qcow2 snapshots in xvda after deleting m2"
    consistent $d
    expect_eq "${ACTIVE[xvda]} ${ACTIVE[xvdb]}" \
        "${CONFIG[xvda]} ${CONFIG[xvdb]}" "$d's active images"
    expect_layers $d "1 2 5" loaded
    if [ "$mode" = live ]; then
        shut_off $d
        consistent $d
    fi
}

soft_case "live: --children-only s2, then --children s1" case_children_live
soft_case "offline: --children s2" case_children_offline
soft_case "offline: --metadata s2" case_metadata
soft_case "live: internal on xvda, external on xvdb" case_mixed live
soft_case "offline: internal on xvda, external on xvdb" case_mixed offline
finish
