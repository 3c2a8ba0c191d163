#!/bin/bash
# test-20-offline.sh - snapshots of a shut-off domain (qemu-img)
#
# vm1 is created and destroyed, then addressed by name only.  Disk
# types are chosen with --diskspec: s1 and s2 internal on xvda and
# external on xvdb, s3 external on both (xvda's overlay named with
# file=).  Reverts to an older snapshot, to a newer one, boots the
# domain to check it starts on the newest overlay with the reverted
# data (never on a backing file), reverts to an internal snapshot whose
# image an external snapshot has since froze (its state copied out into
# a new image, with its progress; the frozen one untouched), and runs
# qemu-img check after every step.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

A=0x11 B=0x22 C=0x33 D=0x44 E=0x55

# expect_active D VDEV IMAGE: after a boot, the disk runs on IMAGE
expect_boots_on() {
    expect_eq "$(active_image "$1" "$2")" "$3" "$2's active image of the running $1"
}

# every record's frozen/holding `file` still exists
expect_record_files() {
    local f img
    for f in "$(domain_dir vm1)"/snapshotdata-*.libxl-json; do
        for img in $(jq -r '.disks[] | select(.type != "no") | .file' "$f"); do
            [ -f "$img" ] || fail "$(basename "$f") names $img, which is gone"
        done
    done
}

make_vm_config vm1
step "create and destroy vm1: it is then shut off"
expect_ok xl create "$CFG"
expect_ok xl destroy vm1
domain_running vm1 && fail "vm1 still running after xl destroy"
expect_ok xl snapshot-list --name vm1
expect_eq "$OUT" "" "snapshot-list of a domain without snapshots"

step "offline: write A, snapshot s1 (xvda internal, xvdb external)"
write_pattern vm1 xvda $A 0 1M
write_pattern vm1 xvdb $A 0 1M
expect_ok xl snapshot-create --diskspec xvda,snapshot=internal \
    --diskspec xvdb,snapshot=external -d "first, offline" vm1 s1
domain_running vm1 && fail "snapshot-create started vm1"
expect_ok xl snapshot-info --json vm1 s1
expect_eq "$(jq -r .state <<<"$OUT")" "shutoff" "s1 state"
expect_eq "$(jq -r .description <<<"$OUT")" "first, offline" "s1 description"
expect_eq "$(jq -r '[.disks[] | "\(.vdev):\(.type)"] | join(",")' <<<"$OUT")" \
    "xvda:internal,xvdb:external" "s1 disk types"
expect_eq "$(internal_snapshots "$IMG/vm1-xvda.qcow2")" "s1" "qcow2 snapshots of xvda"
expect_eq "$(active_image vm1 xvdb)" "$IMG/vm1-xvdb.s1.qcow2" "xvdb's active image after s1"
expect_file "$IMG/vm1-xvdb.s1.qcow2"
expect_eq "$(backing_chain "$IMG/vm1-xvdb.s1.qcow2" | tail -n 1)" \
    "$IMG/vm1-xvdb.img	raw" "bottom of xvdb's chain"
check_images

step "write B, snapshot s2 (same types), write C"
write_pattern vm1 xvda $B 0 1M
write_pattern vm1 xvdb $B 0 1M
expect_ok xl snapshot-create --diskspec xvda,snapshot=internal \
    --diskspec xvdb,snapshot=external vm1 s2
expect_eq "$(active_image vm1 xvdb)" "$IMG/vm1-xvdb.s2.qcow2" "xvdb's active image after s2"
write_pattern vm1 xvda $C 0 1M
write_pattern vm1 xvdb $C 0 1M
read_pattern "$IMG/vm1-xvda.qcow2" $C 0 1M
read_pattern "$IMG/vm1-xvdb.s2.qcow2" $C 0 1M
check_images

step "revert to s1 (not the latest)"
expect_ok xl snapshot-revert vm1 s1
domain_running vm1 && fail "reverting a shut-off domain to a shut-off snapshot started it"
expect_eq "$(active_image vm1 xvdb)" "$IMG/vm1-xvdb.s1.1.qcow2" "xvdb's active image after revert to s1"
read_pattern "$(active_image vm1 xvda)" $A 0 1M
read_pattern "$(active_image vm1 xvdb)" $A 0 1M
expect_eq "$(backing_chain "$(active_image vm1 xvdb)" | cut -f1 | tail -n 1)" \
    "$IMG/vm1-xvdb.img" "bottom of xvdb's chain"
expect_ok xl snapshot-current vm1
expect_eq "$OUT" "s1" "current snapshot"
expect_record_files
check_images

step "boot after the revert to s1: runs on the new overlay, data A"
expect_ok xl create "$CFG"
expect_boots_on vm1 xvda "$IMG/vm1-xvda.qcow2"
expect_boots_on vm1 xvdb "$IMG/vm1-xvdb.s1.1.qcow2"
read_pattern "$(active_image vm1 xvda)" $A 0 1M
read_pattern "$(active_image vm1 xvdb)" $A 0 1M
expect_ok xl destroy vm1
check_images

step "revert to s2"
expect_ok xl snapshot-revert vm1 s2
expect_eq "$(active_image vm1 xvdb)" "$IMG/vm1-xvdb.s2.1.qcow2" "xvdb's active image after revert to s2"
read_pattern "$(active_image vm1 xvda)" $B 0 1M
read_pattern "$(active_image vm1 xvdb)" $B 0 1M
expect_eq "$(backing_chain "$(active_image vm1 xvdb)" | cut -f1)" \
"$IMG/vm1-xvdb.s2.1.qcow2
$IMG/vm1-xvdb.s1.qcow2
$IMG/vm1-xvdb.img" "xvdb's chain after revert to s2"
expect_record_files
check_images

step "write D, snapshot s3 (external on both; xvda's overlay named with file=)"
write_pattern vm1 xvda $D 0 1M
write_pattern vm1 xvdb $D 0 1M
expect_ok xl snapshot-create --diskspec "xvda,snapshot=external,file=$IMG/vm1-a-s3.qcow2" \
    --diskspec xvdb,snapshot=external vm1 s3
expect_eq "$(active_image vm1 xvda)" "$IMG/vm1-a-s3.qcow2" "xvda's active image after s3"
expect_eq "$(active_image vm1 xvdb)" "$IMG/vm1-xvdb.s3.qcow2" "xvdb's active image after s3"
expect_eq "$(backing_chain "$IMG/vm1-a-s3.qcow2" | cut -f1)" \
"$IMG/vm1-a-s3.qcow2
$IMG/vm1-xvda.qcow2" "xvda's chain after s3"
expect_ok xl snapshot-list --tree vm1
expect_eq "$OUT" "s1
+- s2
   +- s3 (current)" "snapshot-list --tree"
write_pattern vm1 xvda $E 0 1M
write_pattern vm1 xvdb $E 0 1M
read_pattern "$IMG/vm1-xvda.qcow2" $D 0 1M
check_images

step "revert to s1, whose xvda snapshot is in the image s3 froze: copied out"
expect_ok xl snapshot-revert --verbose vm1 s1
# the copy is a long step: its progress (--verbose, to this pipe), to
# the disk's whole size, then its time and speed
mib=$(( $(qemu-img info --output=json "$IMG/vm1-xvda.qcow2" | jq '."virtual-size"') >> 20 ))
expect_match "$OUT" "^Disk xvda: \\[100 %\\] $mib/$mib MiB$" "the copy's progress"
expect_match "$(tail -n 1 <<<"$OUT")" "^Disk xvda: $mib\\.0 MiB in [0-9.]+ s \\([0-9.]+ MiB/s\\)$" \
    "the copy's time and speed"
expect_eq "$(active_image vm1 xvda)" "$IMG/vm1-xvda.s1.1.qcow2" "xvda's active image (s1's state, copied)"
expect_eq "$(backing_chain "$IMG/vm1-xvda.s1.1.qcow2" | wc -l)" 1 "the copy stands alone"
read_pattern "$(active_image vm1 xvda)" $A 0 1M
read_pattern "$(active_image vm1 xvdb)" $A 0 1M
# the image s3 froze is untouched, and still holds both snapshots
read_pattern "$IMG/vm1-xvda.qcow2" $D 0 1M
expect_eq "$(internal_snapshots "$IMG/vm1-xvda.qcow2" | tr '\n' ' ')" "s1 s2 " \
    "the internal snapshots of the frozen image"
expect_ok xl snapshot-current vm1
expect_eq "$OUT" "s1" "current snapshot"
expect_ok xl snapshot-check vm1
expect_record_files
check_images

step "revert to s3"
expect_ok xl snapshot-revert vm1 s3
expect_eq "$(active_image vm1 xvda)" "$IMG/vm1-xvda.s3.1.qcow2" "xvda's active image after revert to s3"
expect_eq "$(active_image vm1 xvdb)" "$IMG/vm1-xvdb.s3.1.qcow2" "xvdb's active image after revert to s3"
read_pattern "$(active_image vm1 xvda)" $D 0 1M
read_pattern "$(active_image vm1 xvdb)" $D 0 1M
# the overlay s3 made, written with E after the snapshot, was discarded
expect_no_file "$IMG/vm1-a-s3.qcow2"
expect_no_file "$IMG/vm1-xvdb.s3.qcow2"
expect_record_files
check_images

step "boot after the revert to s3: newest overlays, data D, writable"
expect_ok xl create "$CFG"
expect_boots_on vm1 xvda "$IMG/vm1-xvda.s3.1.qcow2"
expect_boots_on vm1 xvdb "$IMG/vm1-xvdb.s3.1.qcow2"
read_pattern "$IMG/vm1-xvda.s3.1.qcow2" $D 0 1M
read_pattern "$IMG/vm1-xvdb.s3.1.qcow2" $D 0 1M
write_pattern vm1 xvda $E 1M 1M
write_pattern vm1 xvdb $E 1M 1M
read_pattern "$IMG/vm1-xvda.s3.1.qcow2" $E 1M 1M
read_pattern "$IMG/vm1-xvdb.s3.1.qcow2" $E 1M 1M
# the images s3 froze are untouched by the guest
expect_ok xl snapshot-info --json vm1 s3
expect_eq "$(jq -r '.disks[] | .file' <<<"$OUT")" "$IMG/vm1-xvda.qcow2
$IMG/vm1-xvdb.s2.1.qcow2" "the images s3 froze"
read_pattern "$IMG/vm1-xvda.qcow2" 0 1M 1M
read_pattern "$IMG/vm1-xvdb.s2.1.qcow2" 0 1M 1M
expect_ok xl destroy vm1
check_images
echo "PASS: $TEST_NAME"
