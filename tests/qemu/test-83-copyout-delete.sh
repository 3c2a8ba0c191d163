#!/bin/bash
# test-83-copyout-delete.sh - deleting snapshots around an internal
# snapshot held in a frozen image (issue 14, leftovers A and H)
#
# The tree, on a fresh 2-disk domain per case: e0 (external on both
# disks), then i1 (the default types: internal on the qcow2 xvda, held
# in e0's overlay, external on the raw xvdb), then e1 (external on
# both), which freezes the image holding i1.  Data: 0x11 in e0, 0x12 in
# i1, 0x22 in e1, 0x33 current (write_disks: the first MiB of both
# disks).  A revert to i1 copies its state out (the image holding it is
# frozen).
#
#  - the copy is built on that image's backing (e0's image), so that
#    the active chain is i1's, as after a revert in place: a snapshot e2
#    taken on it is built on e0's image, snapshot-check is clean
#    (before: a standalone copy, "is not built on ... its ancestor e0");
#  - offline: after the copy-out revert, i1 is deleted (before: e0
#    became current while the active image was not built on e0's image,
#    and snapshot-check failed);
#  - live: the same, i1 deleted while the domain runs on the copy: the
#    image holding i1 is not open in QEMU any more, so the delete goes
#    (before: refused, "shut it down"), QEMU runs on, the current data
#    is still i1's (the refusal while QEMU has the image open: test-89);
#  - e1 deleted, then i1: the image holding i1 stays
#    for it, and goes with it (before: left behind, an overlay nobody
#    uses);
#  - a second revert to i1 after a snapshot e2 of the first copy, then
#    e2 and i1 deleted live (the first copy goes with e2);
#  - without a copy-out: e0 <- e1 <- i1 (i1 in e1's overlay, which is
#    built on e0's, holding 0x12), e1 deleted, live and offline: e0's
#    overlay stays in the chain, and i1 still reverts to 0x12 (before:
#    it was streamed into the image holding i1, which changes its
#    current state only, and i1 read 0x11).  Offline, then: e2 freezes
#    the image holding i1, i1 is deleted, and e2 (after a revert to e0):
#    the image e2 froze goes, and e0's overlay below it too.
# After every delete: snapshot-check exits 0, qemu-img check is clean
# (leaks too, once shut off), no image is orphaned; at the end of each
# case every remaining snapshot reverts to its own data on both disks.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

# shellcheck disable=SC2054  # the commas are in the arguments
EXT=(--diskspec xvda,snapshot=external --diskspec xvdb,snapshot=external)
declare -A DATA=()              # snapshot -> its byte

# new_domain D MODE: D's images in a directory of their own, D created,
# and shut off again for MODE offline (its snapshots are then taken
# offline, and reverting to them does not start it: quicker)
new_domain() {
    IMG=$T/img-$1
    mkdir -p "$IMG"
    make_vm_config "$1"
    expect_ok xl create "$CFG"
    domain_uuid "$1" >/dev/null
    [ "$2" = live ] || expect_ok xl destroy "$1"
    DATA=()
}

snap() {                        # snap D NAME BYTE [create options]
    local d=$1 n=$2 b=$3
    shift 3
    expect_ok xl snapshot-create "$@" "$d" "$n"
    DATA[$n]=$b
}

# e0 (0x11) <- i1 (0x12) <- e1 (0x22), current data 0x33
base_tree() {
    write_disks "$1" 0x11
    snap "$1" e0 0x11 "${EXT[@]}"
    write_disks "$1" 0x12
    snap "$1" i1 0x12
    write_disks "$1" 0x22
    snap "$1" e1 0x22 "${EXT[@]}"
    write_disks "$1" 0x33
}

# sound D: snapshot-check (which runs qemu-img check on every image it
# knows) is clean, no image is orphaned
sound() {
    run xl snapshot-check "$1"
    [ "$RC" -eq 0 ] || fail_run "snapshot-check is not clean"
    expect_no_orphans "$1" xvda xvdb
}

# every snapshot still recorded reverts to its own data (the domain is
# left on the last one, in the state it was in); then qemu-img check of
# every image, from outside
reverts_all() {
    local d=$1 n
    for n in "${!DATA[@]}"; do
        expect_ok xl snapshot-revert "$d" "$n"
        expect_disks "$d" "${DATA[$n]}"
    done
    sound "$d"
    check_images
}

# delete D NAME: it goes, the rest is sound
delete() {
    expect_ok xl snapshot-delete "$1" "$2"
    unset "DATA[$2]"
    expect_ok xl snapshot-list --name "$1"
    expect_no_match "$OUT" "^$2\$" "snapshot-list after deleting $2"
    sound "$1"
}

# the copy-out revert to i1: a fresh image
copy_out() {
    local d=$1
    expect_ok xl snapshot-revert "$d" i1
    expect_match "$(active_image "$d" xvda)" "/$d-xvda\.i1\.[0-9]+\.qcow2$" \
        "xvda's image after the revert to i1"
    expect_disks "$d" 0x12
}

# the copy is built on the backing of the image holding i1 (e0's
# image), so a snapshot of it is built on e0's image too
case_copy_chain() {
    new_domain chain offline
    base_tree chain
    copy_out chain
    expect_eq "$(backing_chain "$(active_image chain xvda)" | cut -f1 | sed 1d)" \
        "$IMG/chain-xvda.qcow2" "the backing chain of the copy of i1"
    snap chain e2 0x12 "${EXT[@]}"
    sound chain
    check_images
}

case_offline() {
    new_domain off offline
    base_tree off
    copy_out off
    delete off i1
    expect_disks off 0x12               # the current data stays
    reverts_all off
}

# the image holding i1 is not open in QEMU any more: the delete goes
# (the refusal while QEMU has it open: test-89)
case_live() {
    local pid vdev
    new_domain live live
    base_tree live
    copy_out live
    pid=$(runtime_pid live) || fail "no QEMU for live"
    delete live i1
    [ "$(runtime_pid live)" = "$pid" ] || fail "QEMU was restarted by the delete"
    # (QEMU's metadata of the images its jobs wrote, flushed for a read
    # from outside)
    for vdev in xvda xvdb; do
        expect_ok xl qemu-monitor-command live "qemu-io $vdev \"flush\""
    done
    expect_disks live 0x12
    expect_ok xl destroy live
    reverts_all live
}

case_e1_then_i1() {
    new_domain both offline
    base_tree both
    copy_out both
    delete both e1                      # the image holding i1 stays
    delete both i1                      # and goes with it
    expect_disks both 0x12
    reverts_all both
}

# live: the deletes are of images QEMU does not have open
case_second_revert() {
    new_domain twice live
    base_tree twice
    copy_out twice
    write_disks twice 0x55
    snap twice e2 0x55 "${EXT[@]}"
    write_disks twice 0x66
    copy_out twice                      # a second copy; e2 froze the first
    delete twice e2                     # the first copy goes
    delete twice i1
    expect_ok xl destroy twice
    reverts_all twice
}

# e0 <- e1 <- i1: the image holding i1 is built on e0's overlay
no_copy() {
    local d=$1
    new_domain "$d" "$2"
    write_disks "$d" 0x11
    snap "$d" e0 0x11 "${EXT[@]}"
    write_disks "$d" 0x12
    snap "$d" e1 0x12 "${EXT[@]}"
    snap "$d" i1 0x12
    write_disks "$d" 0x33
    delete "$d" e1
    expect_disks "$d" 0x33
}
case_no_copy_live() {
    no_copy nlive live
    expect_ok xl destroy nlive
    reverts_all nlive
}
# then the image kept for i1's (e1's overlay, frozen by e2) goes, and
# the one kept below it goes with it
case_no_copy_offline() {
    no_copy noff offline
    expect_ok xl snapshot-revert noff i1
    expect_disks noff 0x12
    snap noff e2 0x12 "${EXT[@]}"
    delete noff i1
    expect_ok xl snapshot-revert noff e0
    expect_disks noff 0x11
    delete noff e2
    expect_eq "$(find "$IMG" -name 'noff-xvda*' -printf '%f\n' | sort)" \
        "noff-xvda.e0.1.qcow2
noff-xvda.qcow2" "xvda's images"
    reverts_all noff
}

case_docs() {
    local f
    for f in "$REPO/README.md" "$REPO/docs/man/xl-snapshot.1.pod"; do
        tr '\n' ' ' < "$f" | tr -s ' ' |
            grep -q "live delete of an internal snapshot .* is refused only when QEMU has that image open" ||
            fail "$f does not say when the live delete of an internal snapshot in a backing image is refused"
    done
}

soft_case "the copy-out is built on the backing of the image it is copied from" case_copy_chain
soft_case "offline: copy-out revert, then delete the internal snapshot" case_offline
soft_case "live: the same, the image holding it not open in QEMU" case_live
soft_case "delete e1, then i1: the image kept for i1 goes with it" case_e1_then_i1
soft_case "a second copy-out revert, then deletes" case_second_revert
soft_case "no copy-out, live: e1 deleted, i1 keeps its data" case_no_copy_live
soft_case "no copy-out, offline: e1 deleted, i1 keeps its data" case_no_copy_offline
soft_case "README and xl-snapshot(1): when the live delete is refused" case_docs
finish
