#!/bin/bash
# test-40-block-copy.sh - xl block-copy between files and RBD images
#
# Against the cluster of tests/ceph/run.sh (CEPH_CONF; run alone, a
# cluster of its own, here on mon port 6851 unless
# XL_SNAPSHOT_CEPH_PORT says otherwise), on the qemu driver:
#  - file to RBD, live, --pivot: the domain runs on the RBD image (xl
#    list -l, domain record, and after a reboot), every byte there; the
#    file chain is kept for its snapshot, which still reverts to its own
#    data; snapshot-check clean;
#  - RBD to file, live, --pivot: the domain back on a file, its RBD
#    snapshot (taken while on RBD) still reverts;
#  - file to RBD offline (qemu-img convert), --finish: the copy only;
#  - an aborted copy to RBD removes the RBD image it created;
#  - refusals: --shallow or qcow2 to RBD, an RBD image that exists.
set -u
export XL_SNAPSHOT_CEPH_PORT=${XL_SNAPSHOT_CEPH_PORT:-6851}
# shellcheck source=tests/ceph/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/qemu/lib-blockjob.sh
. "$(dirname "$0")/../qemu/lib-blockjob.sh"

command -v rbd >/dev/null || skip "no rbd command (ceph-common)"
POOL=${XL_SNAPSHOT_TEST_POOL:-rbd}
P=t40-$$
R1=$POOL/$P-one R2=$POOL/$P-two R3=$POOL/$P-three
SPEC1=$(rbd_url "$R1") SPEC2=$(rbd_url "$R2") SPEC3=$(rbd_url "$R3")

cleanup_images() {
    local i
    for i in "$R1" "$R2" "$R3"; do
        rbd snap purge "$i" >/dev/null 2>&1
        rbd rm "$i" >/dev/null 2>&1
    done
}
[[ $CEPH_CONF == "$T"/* ]] || at_cleanup cleanup_images

checked() {
    expect_ok xl snapshot-check "$1"
    expect_match "$OUT" "the records and the images agree" "snapshot-check $1"
}

make_vm_config vm1
D=vm1

step "file to RBD, live, --pivot"
expect_ok xl create "$CFG"
write_pattern "$D" xvda 0x11 0 1M
expect_ok xl snapshot-create --diskspec xvda,snapshot=external \
    --diskspec xvdb,snapshot=no "$D" s1
write_pattern "$D" xvda 0x22 1M 1M
expect_ok xl block-copy --pivot "$D" xvda "$SPEC1"
expect_match "$OUT" "^Successfully pivoted to " "block-copy --pivot output"
expect_eq "$(active_image "$D" xvda)" "$SPEC1" "active image on RBD"
expect_ok rbd info "$R1"
write_pattern "$D" xvda 0x33 2M 1M
expect_ok xl qemu-monitor-command "$D" 'qemu-io xvda "flush"'
rbd_read "$R1" 0x11 0 1M
rbd_read "$R1" 0x22 1M 1M
rbd_read "$R1" 0x33 2M 1M
checked "$D"

step "  a reboot runs on the RBD image"
expect_ok xl destroy "$D"
expect_ok xl create "$CFG"
expect_eq "$(active_image "$D" xvda)" "$SPEC1" "active image after reboot"
checked "$D"

step "  an RBD snapshot there, then RBD to file, live, --pivot"
expect_ok xl snapshot-create --diskspec xvdb,snapshot=no "$D" r1
expect_ok xl snapshot-info --json "$D" r1
expect_eq "$(jq -r '.disks[] | select(.vdev == "xvda") | .type' <<<"$OUT")" rbd \
    "r1's xvda snapshot"
write_pattern "$D" xvda 0x44 3M 1M
back=$IMG/vm1-back.qcow2
expect_ok xl block-copy --format qcow2 --pivot "$D" xvda "$back"
expect_eq "$(active_image "$D" xvda)" "$back" "active image back on a file"
expect_ok xl qemu-monitor-command "$D" 'qemu-io xvda "flush"'
read_patterns "$back" qcow2 "0x11 0 1M" "0x22 1M 1M" "0x33 2M 1M" "0x44 3M 1M"
checked "$D"

step "  every snapshot reverts to its own data"
expect_ok xl snapshot-revert "$D" r1
expect_eq "$(active_image "$D" xvda)" "$SPEC1" "active image after reverting r1"
read_patterns "$SPEC1" raw "0x11 0 1M" "0x22 1M 1M" "0x33 2M 1M" "0 3M 1M"
checked "$D"
expect_ok xl snapshot-revert "$D" s1
read_patterns "$(active_image "$D" xvda)" "" "0x11 0 1M" "0 1M 3M"
checked "$D"

step "file to RBD offline, --finish: a copy only"
expect_ok xl destroy "$D"
write_pattern "$D" xvda 0x55 4M 1M
act=$(active_image "$D" xvda)
expect_ok xl block-copy --finish "$D" xvda "$SPEC2"
expect_eq "$(active_image "$D" xvda)" "$act" "active image after --finish"
rbd_read "$R2" 0x11 0 1M
rbd_read "$R2" 0x55 4M 1M
expect_ok qemu-img compare -f qcow2 -F raw "$act" "$SPEC2"
checked "$D"

step "an aborted copy to RBD removes what it created"
expect_ok xl create "$CFG"
write_pattern "$D" xvda 0x66 8M 32M
expect_ok xl block-copy --async --bandwidth 1 "$D" xvda "$SPEC3"
for _ in $(seq 50); do
    run xl block-job --json "$D" xvda
    [ "$RC" -eq 0 ] && [ "$(jq -r .state <<<"$OUT")" = running ] && break
    sleep 0.2
done
expect_ok rbd info "$R3"
expect_ok xl block-job --abort "$D" xvda
run rbd info "$R3"
[ "$RC" -ne 0 ] || fail_run "the aborted copy left $R3"
expect_eq "$(active_image "$D" xvda)" "$act" "active image after the abort"
checked "$D"

step "refusals, nothing changed"
refused "an RBD destination is raw" xl block-copy --shallow "$D" xvda "$SPEC3"
refused "an RBD destination is raw" xl block-copy --format qcow2 "$D" xvda "$SPEC3"
refused "already exists" xl block-copy "$D" xvda "$SPEC2"
expect_ok xl destroy "$D"
checked "$D"
echo "PASS: $TEST_NAME"
