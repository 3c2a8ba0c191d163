#!/bin/bash
# test-10-live.sh - snapshots of a running 2-disk domain
#
# vm1: xvda qcow2 (internal snapshots by default), xvdb raw (external
# snapshots: a qcow2 overlay per snapshot).  Writes A, snapshot s1,
# writes B, snapshot s2, writes C; reverts to s1 and to s2 and checks
# the data of both disks from outside after each revert, the backing
# chain of xvdb, qemu-img check on every image after every step, the
# list/tree/json/info output, that an internal-only snapshot can be
# deleted live, also after a revert discarded the overlay its
# unsnapshotted disk was on, and that a mixed snapshot (internal on
# xvda, external on xvdb) is deleted live on both disks while s1 keeps
# its data.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

A=0x11 B=0x22 C=0x33

make_vm_config vm1
step "create vm1"
expect_ok xl create "$CFG"
domain_running vm1 || fail "vm1 is not running after xl create"
expect_eq "$(active_image vm1 xvda)" "$IMG/vm1-xvda.qcow2" "active xvda"
expect_eq "$(active_image vm1 xvdb)" "$IMG/vm1-xvdb.img" "active xvdb"

step "write A, snapshot s1"
write_pattern vm1 xvda $A 0 1M
write_pattern vm1 xvdb $A 0 1M
read_pattern "$IMG/vm1-xvda.qcow2" $A 0 1M
read_pattern "$IMG/vm1-xvdb.img" $A 0 1M raw
expect_ok xl snapshot-create vm1 s1
expect_eq "$OUT" "Domain snapshot s1 created" "snapshot-create output"
expect_ok xl snapshot-info --json vm1 s1
expect_eq "$(jq -r '[.disks[] | "\(.vdev):\(.type)"] | join(",")' <<<"$OUT")" \
    "xvda:internal,xvdb:external" "s1 disk types"
expect_eq "$(jq -r '.disks[] | select(.vdev == "xvdb") | .overlay' <<<"$OUT")" \
    "$IMG/vm1-xvdb.s1.qcow2" "s1 xvdb overlay"
expect_eq "$(active_image vm1 xvda)" "$IMG/vm1-xvda.qcow2" "active xvda after s1"
expect_eq "$(active_image vm1 xvdb)" "$IMG/vm1-xvdb.s1.qcow2" "active xvdb after s1"
expect_eq "$(internal_snapshots "$IMG/vm1-xvda.qcow2")" "s1" "internal snapshots of xvda"
check_images

step "write B, snapshot s2, write C"
write_pattern vm1 xvda $B 0 1M
write_pattern vm1 xvdb $B 0 1M
expect_ok xl snapshot-create vm1 s2
expect_eq "$(active_image vm1 xvdb)" "$IMG/vm1-xvdb.s2.qcow2" "active xvdb after s2"
check_images
write_pattern vm1 xvda $C 0 1M
write_pattern vm1 xvdb $C 0 1M
read_pattern "$(active_image vm1 xvda)" $C 0 1M
read_pattern "$(active_image vm1 xvdb)" $C 0 1M
# what s2 froze on xvdb still holds B
read_pattern "$IMG/vm1-xvdb.s1.qcow2" $B 0 1M
check_images

step "revert to s1"
expect_ok xl snapshot-revert vm1 s1
expect_eq "$OUT" "Domain vm1 reverted to snapshot s1" "snapshot-revert output"
domain_running vm1 || fail "vm1 is not running after the revert to s1"
expect_ok xl list vm1
expect_match "$OUT" '^vm1 +[0-9]+ +r-----' "xl list vm1 (state)"
expect_eq "$(active_image vm1 xvdb)" "$IMG/vm1-xvdb.s1.1.qcow2" \
    "active xvdb after revert to s1 (a fresh overlay)"
read_pattern "$(active_image vm1 xvda)" $A 0 1M
read_pattern "$(active_image vm1 xvdb)" $A 0 1M
expect_eq "$(backing_chain "$(active_image vm1 xvdb)" | tail -n 1)" \
    "$IMG/vm1-xvdb.img	raw" "bottom of xvdb's backing chain"
expect_ok xl snapshot-current vm1
expect_eq "$OUT" "s1" "snapshot-current after revert to s1"
check_images

step "revert to s2"
expect_ok xl snapshot-revert vm1 s2
domain_running vm1 || fail "vm1 is not running after the revert to s2"
expect_eq "$(active_image vm1 xvdb)" "$IMG/vm1-xvdb.s2.1.qcow2" \
    "active xvdb after revert to s2"
read_pattern "$(active_image vm1 xvda)" $B 0 1M
read_pattern "$(active_image vm1 xvdb)" $B 0 1M
expect_eq "$(backing_chain "$(active_image vm1 xvdb)" | cut -f1 | tail -n 2)" \
    "$IMG/vm1-xvdb.s1.qcow2
$IMG/vm1-xvdb.img" "xvdb's backing chain below the active image"
expect_eq "$(backing_chain "$(active_image vm1 xvdb)" | tail -n 1)" \
    "$IMG/vm1-xvdb.img	raw" "bottom of xvdb's backing chain"
expect_ok xl snapshot-current vm1
expect_eq "$OUT" "s2" "snapshot-current after revert to s2"
check_images

step "snapshot-list: table, tree, json, names; snapshot-info"
expect_ok xl snapshot-list vm1
expect_eq "$(awk '{print $1, $3, $4, $5, $6}' <<<"$OUT")" \
"NAME STATE PARENT CURRENT DISKS
s1 running - - xvda:internal,xvdb:external
s2 running s1 * xvda:internal,xvdb:external" "snapshot-list table"
expect_ok xl snapshot-list --tree vm1
expect_eq "$OUT" "s1
+- s2 (current)" "snapshot-list --tree"
expect_ok xl snapshot-list --name vm1
expect_eq "$OUT" "s1
s2" "snapshot-list --name"
expect_ok xl snapshot-list --json vm1
jq -e . >/dev/null <<<"$OUT" || fail "snapshot-list --json is not JSON" "$OUT"
expect_eq "$(jq -c '[.[] | {name, parent, current}] | sort_by(.name)' <<<"$OUT")" \
    '[{"name":"s1","parent":null,"current":false},{"name":"s2","parent":"s1","current":true}]' \
    "snapshot-list --json name/parent/current"
expect_ok xl snapshot-info vm1 s2
expect_match "$OUT" '^Name: +s2$' "snapshot-info"
expect_match "$OUT" '^Parent: +s1$' "snapshot-info"
expect_match "$OUT" '^Current: +yes$' "snapshot-info"
expect_match "$OUT" '^Disks: +2$' "snapshot-info"
expect_match "$OUT" "^  xvdb +external +qcow2 +$IMG/vm1-xvdb.s1.qcow2 \\(overlay $IMG/vm1-xvdb.s2.qcow2\\)\$" \
    "snapshot-info (xvdb line)"
expect_ok xl snapshot-info vm1 s1
expect_match "$OUT" '^Children: +s2$' "snapshot-info s1"
expect_match "$OUT" "^  xvda +internal +qcow2 +$IMG/vm1-xvda.qcow2 \\(tag s1\\)\$" \
    "snapshot-info s1 (xvda line)"

step "internal-only snapshot s4, deleted live"
write_pattern vm1 xvda $C 0 1M
expect_ok xl snapshot-create --diskspec xvdb,snapshot=no vm1 s4
expect_eq "$(internal_snapshots "$IMG/vm1-xvda.qcow2" | sort | tr '\n' ' ')" \
    "s1 s2 s4 " "internal snapshots of xvda with s4"
expect_ok xl snapshot-delete vm1 s4
expect_eq "$OUT" "Domain snapshot s4 deleted" "snapshot-delete output"
domain_running vm1 || fail "vm1 stopped after deleting s4"
expect_no_file "$(domain_dir vm1)/snapshotdata-s4.libxl-json"
expect_ok xl snapshot-current vm1
expect_eq "$OUT" "s2" "current snapshot once s4 (current, child of s2) is deleted"
expect_eq "$(internal_snapshots "$IMG/vm1-xvda.qcow2" | sort | tr '\n' ' ')" \
    "s1 s2 " "internal snapshots of xvda after deleting s4"
read_pattern "$(active_image vm1 xvda)" $C 0 1M
read_pattern "$(active_image vm1 xvdb)" $B 0 1M
check_images

step "internal-only snapshot s3; revert to s2; s3 deleted live"
write_pattern vm1 xvda $C 0 1M
expect_ok xl snapshot-create --diskspec xvdb,snapshot=no vm1 s3
expect_ok xl snapshot-info --json vm1 s3
expect_eq "$(jq -r '[.disks[] | "\(.vdev):\(.type)"] | join(",")' <<<"$OUT")" \
    "xvda:internal,xvdb:no" "s3 disk types"
expect_eq "$(jq -r .parent <<<"$OUT")" "s2" "s3's parent"
expect_eq "$(active_image vm1 xvdb)" "$IMG/vm1-xvdb.s2.1.qcow2" \
    "active xvdb after s3 (not snapshotted)"
run qemu-img snapshot -U -l "$IMG/vm1-xvda.qcow2"
expect_match "$OUT" '^[0-9]+ +s3 ' "qemu-img snapshot -l before the delete"
# back to s2: xvdb's overlay of the time of s3 (which s3 did not
# snapshot) is discarded; s3 stays deletable
write_pattern vm1 xvdb $C 0 1M
expect_ok xl snapshot-revert vm1 s2
expect_eq "$(active_image vm1 xvdb)" "$IMG/vm1-xvdb.s2.2.qcow2" "active xvdb after the second revert to s2"
read_pattern "$(active_image vm1 xvda)" $B 0 1M
read_pattern "$(active_image vm1 xvdb)" $B 0 1M
dir=$(domain_dir vm1)
expect_file "$dir/snapshotdata-s3.libxl-json"
expect_ok xl snapshot-delete vm1 s3
expect_eq "$OUT" "Domain snapshot s3 deleted" "snapshot-delete output"
domain_running vm1 || fail "vm1 stopped after deleting s3"
expect_ok qemu-img snapshot -U -l "$IMG/vm1-xvda.qcow2"
expect_no_match "$OUT" '^[0-9]+ +s3 ' "qemu-img snapshot -l after the delete"
expect_match "$OUT" '^[0-9]+ +s1 ' "qemu-img snapshot -l after the delete"
expect_match "$OUT" '^[0-9]+ +s2 ' "qemu-img snapshot -l after the delete"
expect_no_file "$dir/snapshotdata-s3.libxl-json"
expect_ok xl snapshot-list --name vm1
expect_eq "$OUT" "s1
s2" "snapshot-list --name after deleting s3"
# the guest's data is untouched by the delete
read_pattern "$(active_image vm1 xvda)" $B 0 1M
read_pattern "$(active_image vm1 xvdb)" $B 0 1M
check_images

step "delete s2 (internal on xvda, external on xvdb) live; s1 intact"
expect_ok xl snapshot-delete vm1 s2
expect_eq "$OUT" "Domain snapshot s2 deleted" "snapshot-delete output"
domain_running vm1 || fail "vm1 stopped after deleting s2"
expect_no_file "$(domain_dir vm1)/snapshotdata-s2.libxl-json"
run qemu-img snapshot -U -l "$IMG/vm1-xvda.qcow2"
expect_no_match "$OUT" '^[0-9]+ +s2 ' "qemu-img snapshot -l after deleting s2"
expect_no_orphans vm1 xvda xvdb
check_images
# the running disks still read what they held
read_pattern "$(active_image vm1 xvda)" $B 0 1M
read_pattern "$(active_image vm1 xvdb)" $B 0 1M
expect_ok xl snapshot-revert vm1 s1
read_pattern "$(active_image vm1 xvda)" $A 0 1M
read_pattern "$(active_image vm1 xvdb)" $A 0 1M
check_images

step "destroy"
expect_ok xl destroy vm1
domain_running vm1 && fail "vm1 still running after xl destroy"
check_images
echo "PASS: $TEST_NAME"
