#!/bin/bash
# test-31-uuid.sh - a domain whose config lost its uuid= keeps the uuid
# its records are kept under, through every revert
#
# As on a Xen host where the config was rewritten: vm1 is created with
# uuid=U and takes snapshots s1 and s2; it is destroyed, its config's
# uuid= line removed, and it is started again (the front end gives it
# U).  Reverting to s1, then to s2, then to s1 again re-creates the
# domain each time: every time it must come back with U, its snapshots
# still listed, each disk holding the snapshot's data.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

U=8d1c7b3e-2f4a-4c5d-9e6f-0a1b2c3d4e5f
make_vm_config vm1 "uuid = \"$U\""
expect_ok xl create "$CFG"

step "s1 (0x11), s2 (0x22)"
write_pattern vm1 xvda 0x11 0 1M
write_pattern vm1 xvdb 0x11 0 1M
expect_ok xl snapshot-create vm1 s1
write_pattern vm1 xvda 0x22 0 1M
write_pattern vm1 xvdb 0x22 0 1M
expect_ok xl snapshot-create vm1 s2

step "the config loses its uuid=; the domain is started again"
expect_ok xl destroy vm1
sed -i '/^uuid/d' "$CFG"
expect_ok xl create "$CFG"
expect_ok xl list -l vm1
expect_match "$OUT" "$U" "the uuid of the restarted domain"

# revert_to NAME BYTE: re-created with U, both snapshots listed, data
revert_to() {
    local vdev
    expect_ok xl snapshot-revert vm1 "$1"
    expect_ok xl list -l vm1
    expect_match "$OUT" "$U" "the uuid after the revert to $1"
    expect_ok xl snapshot-list --name vm1
    expect_eq "$(echo $OUT)" "s1 s2" "the snapshots after the revert to $1"
    for vdev in xvda xvdb; do
        read_pattern "$(active_image vm1 $vdev)" "$2" 0 1M
    done
}
step "revert to s1, s2, s1"
revert_to s1 0x11
revert_to s2 0x22
revert_to s1 0x11
check_images
expect_no_orphans vm1 xvda xvdb
