#!/bin/bash
# test-79-disk-gone.sh - deleting a snapshot of a disk the domain no
# longer has
#
# Issue 16 (Xen scenario 10c): a disk attached by hand and detached
# after a snapshot, or taken out of the domain's config, is in no
# config and not among the domain's disks, but the snapshot's record
# and the domain record still name its images.  The delete used to see
# nothing built on the snapshot's frozen image (the disk's own image),
# removed it, and left the overlay the disk ran on last orphaned.  Now
# the image the domain record says the disk ran on last is what is
# built on it: it is committed into the frozen image, which stays, with
# the data; the overlay goes; nothing is orphaned.
#  - shut off, xvdb taken out of the config after s1 (external on it):
#    snapshot-delete s1 keeps xvdb's own image, now holding what the
#    overlay held; xvda (internal) loses s1's tag; snapshot-check is
#    clean; the domain starts on its images;
#  - the same with two snapshots (s1 <- s2), the root deleted first;
#    a revert to s2 without xvdb is refused, naming it, nothing changed;
#    with xvdb back in the config s2 reverts to its own data on both
#    disks; xvdb out again, s2's delete leaves xvdb's own image with
#    s2's data and no overlay;
#  - xvdb's image given to xvdc in the config: s1's delete, which would
#    merge xvdb's later data into it, is refused naming both disks;
#    xvdc's data is unchanged; snapshot-check agrees (before: the data
#    was merged into xvdc's image, under a running guest too);
#  - xvdb's config entry pointed at another image after s1: the config
#    wins, said once (before: the records' image won, silently, forever),
#    the next snapshot is built on it, s1 and s2 revert to their data.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

# drop_xvdb: the config without xvdb
drop_xvdb() {
    {
        echo "name = \"$1\""
        echo "memory = 64"
        echo "disk = [ 'format=qcow2,vdev=xvda,access=rw,target=$IMG/$1-xvda.qcow2' ]"
    } > "$T/$1.cfg"
}

case_one() {
    make_vm_config vm1
    expect_ok xl snapshot-create --diskspec xvdb,snapshot=external "$CFG" s0
    write_disks vm1 0xa1
    expect_ok xl snapshot-create --diskspec xvdb,snapshot=external vm1 s1
    OV=$(active_image vm1 xvdb)
    expect_match "$OV" "\.s1\.qcow2$" "xvdb's active image after s1"
    write_pattern vm1 xvdb 0xa2 0 1M
    drop_xvdb vm1
    expect_ok xl snapshot-delete vm1 s1
    expect_file "$IMG/vm1-xvdb.img"
    expect_no_file "$OV"
    # s1's image (s0's overlay) now holds what xvdb ran on last
    XB=$(jq -r '.disks[]? | select(.vdev == "xvdb") | .path' \
        "$(domain_dir vm1)/domain.libxl-json")
    [ -f "$XB" ] || fail "the domain record names xvdb on '$XB', which is gone"
    read_pattern "$XB" 0xa2 0 1M
    expect_ok xl snapshot-check vm1
    expect_ok xl snapshot-delete vm1 s0
    expect_file "$IMG/vm1-xvdb.img"
    read_pattern "$IMG/vm1-xvdb.img" 0xa2 0 1M raw
    expect_eq "$(ls "$IMG" | grep -c 'vm1-xvdb\.s')" 0 "overlays of xvdb left"
    expect_ok xl snapshot-check vm1
    check_images
    expect_ok xl create "$T/vm1.cfg"
    expect_ok xl destroy vm1
}

case_tree() {
    make_vm_config vm2
    expect_ok qemu-io -f qcow2 -c "write -P 0xb1 0 1M" "$IMG/vm2-xvda.qcow2"
    expect_ok qemu-io -f raw -c "write -P 0xb1 0 1M" "$IMG/vm2-xvdb.img"
    expect_ok xl snapshot-create --diskspec xvdb,snapshot=external "$CFG" s1
    write_disks vm2 0xb2
    expect_ok xl snapshot-create --diskspec xvdb,snapshot=external vm2 s2
    write_disks vm2 0xb3
    cp "$CFG" "$T/vm2.cfg.xvdb"
    drop_xvdb vm2
    expect_ok xl snapshot-delete vm2 s1
    expect_file "$IMG/vm2-xvdb.img"
    expect_ok xl snapshot-check vm2
    # a revert needs every disk of the snapshot: refused, naming xvdb
    expect_fail xl snapshot-revert vm2 s2
    expect_match "$ERR" "disk xvdb, which the domain no longer has" "the refusal"
    read_pattern "$(active_image vm2 xvda)" 0xb3 0 1M
    # xvdb back in the config: s2 reverts, both disks with its data
    cp "$T/vm2.cfg.xvdb" "$T/vm2.cfg"
    expect_ok xl snapshot-revert vm2 s2
    read_pattern "$(active_image vm2 xvda)" 0xb2 0 1M
    read_pattern "$(active_image vm2 xvdb)" 0xb2 0 1M
    drop_xvdb vm2
    expect_ok xl snapshot-delete vm2 s2
    expect_file "$IMG/vm2-xvdb.img"
    read_pattern "$IMG/vm2-xvdb.img" 0xb2 0 1M raw
    expect_ok xl snapshot-check vm2
    check_images
}

# xvdb's image given to a new vdev, xvdc, after s1 froze it: s1's
# delete would merge xvdb's later data into xvdc; refused, naming both,
# nothing changed; snapshot-check knows the overlay xvdb ran on last
case_moved() {
    make_vm_config vm3
    expect_ok qemu-io -f raw -c "write -P 0xc1 0 1M" "$IMG/vm3-xvdb.img"
    expect_ok xl snapshot-create --diskspec xvdb,snapshot=external "$CFG" s1
    write_pattern vm3 xvdb 0xc2 0 1M
    {
        echo 'name = "vm3"'
        echo "memory = 64"
        echo "disk = [ 'format=qcow2,vdev=xvda,access=rw,target=$IMG/vm3-xvda.qcow2',"
        echo "         'format=raw,vdev=xvdc,access=rw,target=$IMG/vm3-xvdb.img' ]"
    } > "$T/vm3.cfg"
    expect_ok xl snapshot-check vm3
    run xl snapshot-delete vm3 s1
    [ "$RC" -eq 1 ] || fail_run "snapshot-delete exited $RC, expected 1"
    expect_match "$ERR" "disk xvdb: .* now disk xvdc's image" "the refusal"
    read_pattern "$IMG/vm3-xvdb.img" 0xc1 0 1M raw
    expect_ok xl snapshot-list --name vm3
    expect_eq "$OUT" "s1" "the snapshots"
    expect_ok xl snapshot-check vm3
    expect_ok xl snapshot-delete --metadata vm3 s1
    read_pattern "$IMG/vm3-xvdb.img" 0xc1 0 1M raw
}

# xvdb's config entry pointed at another image after s1: the config
# wins (said once), the domain starts and runs on it, its next snapshot
# is built on it; s1 still reverts to its own data (xvdb on its chain
# again, until the config changes again)
case_retarget() {
    make_vm_config vm4
    expect_ok qemu-io -f raw -c "write -P 0xd1 0 1M" "$IMG/vm4-xvdb.img"
    expect_ok xl snapshot-create --diskspec xvdb,snapshot=external "$CFG" s1
    write_pattern vm4 xvdb 0xd2 0 1M
    expect_ok qemu-img create -q -f raw "$IMG/vm4-new.img" 32M
    expect_ok qemu-io -f raw -c "write -P 0xd9 0 1M" "$IMG/vm4-new.img"
    sed -i "s|$IMG/vm4-xvdb.img|$IMG/vm4-new.img|" "$CFG"
    expect_ok xl create "$CFG"
    expect_match "$ERR" "disk xvdb: the config names '$IMG/vm4-new.img'" "the warning"
    expect_eq "$(active_image vm4 xvdb)" "$IMG/vm4-new.img" "xvdb's image, running"
    read_pattern "$IMG/vm4-new.img" 0xd9 0 1M raw
    expect_ok xl snapshot-create --diskspec xvdb,snapshot=external vm4 s2
    expect_match "$(backing_chain "$(active_image vm4 xvdb)")" "vm4-new.img" "s2's overlay chain"
    expect_ok xl snapshot-check vm4
    expect_ok xl destroy vm4
    # started again: on s2's overlay, without a word
    expect_ok xl create "$CFG"
    expect_no_match "$ERR" "config names" "stderr of the second start"
    expect_ok xl destroy vm4
    expect_ok xl snapshot-revert vm4 s1
    read_pattern "$(active_image vm4 xvdb)" 0xd1 0 1M
    expect_ok xl snapshot-revert vm4 s2
    read_pattern "$(active_image vm4 xvdb)" 0xd9 0 1M
    expect_ok xl snapshot-check vm4
}

# retargeted, then a snapshot of the old chain deleted: its merge moves
# the domain record's entry (the old disk's last image) with it, not
# leaving it on a removed file
case_retarget_delete() {
    make_vm_config vm5
    expect_ok qemu-io -f raw -c "write -P 0xe1 0 1M" "$IMG/vm5-xvdb.img"
    expect_ok xl snapshot-create --diskspec xvdb,snapshot=external "$CFG" s1
    write_pattern vm5 xvdb 0xe2 0 1M
    expect_ok xl snapshot-create --diskspec xvdb,snapshot=external vm5 s2
    write_pattern vm5 xvdb 0xe3 0 1M
    expect_ok qemu-img create -q -f raw "$IMG/vm5-new.img" 32M
    sed -i "s|$IMG/vm5-xvdb.img|$IMG/vm5-new.img|" "$CFG"
    expect_ok xl snapshot-delete vm5 s2
    last=$(jq -r '.disks[] | select(.vdev == "xvdb") | .path' \
        "$(domain_dir vm5)/domain.libxl-json")
    expect_file "$last"
    read_pattern "$last" 0xe3 0 1M
    expect_ok xl snapshot-check vm5
    expect_ok xl snapshot-revert vm5 s1
    read_pattern "$(active_image vm5 xvdb)" 0xe1 0 1M
}

soft_case "xvdb out of the config: its snapshot's delete keeps its image and data" case_one
soft_case "s1 <- s2 with xvdb gone: root deleted, s2 reverts, then deleted" case_tree
soft_case "xvdb's image given to xvdc: s1's delete refused, xvdc unchanged" case_moved
soft_case "xvdb's config entry pointed at another image: the config wins, said once" case_retarget
soft_case "retargeted, then s2 of the old chain deleted: the record follows the merge" case_retarget_delete
finish
