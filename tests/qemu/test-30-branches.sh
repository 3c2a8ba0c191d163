#!/bin/bash
# test-30-branches.sh - a tree of external snapshots, on a running domain
#
# Both disks external: A, s1, B, s2; revert to s1 (A); D, s3 - a second
# child of s1.  The tree shows the branch; reverting to s2, s3 and s1
# (from one branch to the other and back to the root) gives each
# snapshot's data on both disks.  After every step: qemu-img check,
# and no orphaned overlay (every image in the directory is a record's
# frozen image, an active image, or in an active image's backing
# chain; every record's frozen image exists).
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

A=0x11 B=0x22 D=0x44 X=0x77
# shellcheck disable=SC2054  # the commas are in the arguments
EXT=(--diskspec xvda,snapshot=external --diskspec xvdb,snapshot=external)

# expect_data BYTE: both disks hold BYTE at 0+1M, and 1M+1M is zero
expect_data() {
    local vdev img
    for vdev in xvda xvdb; do
        img=$(active_image vm1 "$vdev")
        read_pattern "$img" "$1" 0 1M
        read_pattern "$img" 0 1M 1M
    done
}

# after_step: consistency after every operation
after_step() {
    domain_running vm1 || fail "vm1 is not running"
    check_images
    expect_no_orphans vm1 xvda xvdb
}

make_vm_config vm1
expect_ok xl create "$CFG"

step "A, s1 (external on both disks)"
write_pattern vm1 xvda $A 0 1M
write_pattern vm1 xvdb $A 0 1M
expect_ok xl snapshot-create "${EXT[@]}" vm1 s1
expect_ok xl snapshot-info --json vm1 s1
expect_eq "$(jq -r '[.disks[] | "\(.vdev):\(.type):\(.file):\(.overlay)"] | join(" ")' <<<"$OUT")" \
    "xvda:external:$IMG/vm1-xvda.qcow2:$IMG/vm1-xvda.s1.qcow2 xvdb:external:$IMG/vm1-xvdb.img:$IMG/vm1-xvdb.s1.qcow2" \
    "s1's disks"
expect_eq "$(internal_snapshots "$IMG/vm1-xvda.qcow2")" "" "internal snapshots in xvda"
after_step

step "B, s2"
write_pattern vm1 xvda $B 0 1M
write_pattern vm1 xvdb $B 0 1M
expect_ok xl snapshot-create "${EXT[@]}" vm1 s2
expect_eq "$(active_image vm1 xvda)" "$IMG/vm1-xvda.s2.qcow2" "xvda's active image after s2"
expect_eq "$(active_image vm1 xvdb)" "$IMG/vm1-xvdb.s2.qcow2" "xvdb's active image after s2"
# written after s2: must not survive any revert
write_pattern vm1 xvda $X 0 1M
write_pattern vm1 xvdb $X 0 1M
after_step

step "revert to s1"
expect_ok xl snapshot-revert vm1 s1
expect_data $A
expect_eq "$(active_image vm1 xvda)" "$IMG/vm1-xvda.s1.1.qcow2" "xvda's active image after revert to s1"
# the overlay s2 made held only X, nothing froze it: discarded
expect_no_file "$IMG/vm1-xvda.s2.qcow2"
expect_no_file "$IMG/vm1-xvdb.s2.qcow2"
after_step

step "D, s3: a second child of s1"
write_pattern vm1 xvda $D 0 1M
write_pattern vm1 xvdb $D 0 1M
expect_ok xl snapshot-create "${EXT[@]}" vm1 s3
expect_ok xl snapshot-info --json vm1 s3
expect_eq "$(jq -r .parent <<<"$OUT")" "s1" "s3's parent"
expect_ok xl snapshot-info vm1 s1
expect_match "$OUT" '^Children: +(s2, s3|s3, s2)$' "snapshot-info s1"
expect_ok xl snapshot-list --tree vm1
expect_eq "$OUT" "s1
+- s2
+- s3 (current)" "snapshot-list --tree"
expect_ok xl snapshot-list --json vm1
expect_eq "$(jq -c '[.[] | [.name, .parent, .current]] | sort' <<<"$OUT")" \
    '[["s1",null,false],["s2","s1",false],["s3","s1",true]]' "snapshot-list --json"
write_pattern vm1 xvda $X 0 1M
write_pattern vm1 xvdb $X 0 1M
after_step

step "revert to s2 (the other branch)"
expect_ok xl snapshot-revert vm1 s2
expect_data $B
expect_ok xl snapshot-current vm1
expect_eq "$OUT" "s2" "current snapshot"
after_step

step "revert to s3"
expect_ok xl snapshot-revert vm1 s3
expect_data $D
expect_ok xl snapshot-current vm1
expect_eq "$OUT" "s3" "current snapshot"
after_step

step "revert to s1 (the root)"
expect_ok xl snapshot-revert vm1 s1
expect_data $A
expect_ok xl snapshot-current vm1
expect_eq "$OUT" "s1" "current snapshot"
expect_ok xl snapshot-list --tree vm1
expect_eq "$OUT" "s1 (current)
+- s2
+- s3" "snapshot-list --tree"
after_step

step "revert to s1 again, and shut off"
write_pattern vm1 xvda $X 0 1M
expect_ok xl snapshot-revert vm1 s1
expect_data $A
after_step
expect_ok xl destroy vm1
check_images
expect_no_orphans vm1 xvda xvdb
echo "PASS: $TEST_NAME"
