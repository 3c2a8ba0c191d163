#!/bin/bash
# test-60-xen-qemu.sh - the live flow on Xen's own QEMU
#
# device_model_override = "/usr/libexec/xen-qemu-system-i386" (run with
# -accel qtest): the binary Xen starts for qdisk backends.  A, s1 (xvda
# internal, xvdb external), B, s2, C; revert to s1 and to s2 with the
# data checked on both disks, the backing chain of xvdb, qemu-img check
# after every step.  Skipped when that binary is not installed.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

XEN_QEMU=/usr/libexec/xen-qemu-system-i386
[ -x "$XEN_QEMU" ] || skip "$XEN_QEMU not installed (qemu-system-xen)"

A=0x11 B=0x22 C=0x33

make_vm_config vm1 "device_model_override = \"$XEN_QEMU\""
step "create vm1 on Xen's QEMU"
expect_ok xl create "$CFG"
domain_running vm1 || fail "vm1 is not running"
pid=$(runtime_pid vm1) || fail "no live QEMU for vm1"
exe=$(readlink "/proc/$pid/exe")
expect_eq "$exe" "$(readlink -f "$XEN_QEMU")" "the domain's device model binary"

step "A, s1"
write_pattern vm1 xvda $A 0 1M
write_pattern vm1 xvdb $A 0 1M
expect_ok xl snapshot-create vm1 s1
expect_ok xl snapshot-info --json vm1 s1
expect_eq "$(jq -r '[.disks[] | "\(.vdev):\(.type)"] | join(",")' <<<"$OUT")" \
    "xvda:internal,xvdb:external" "s1 disk types"
expect_eq "$(internal_snapshots "$IMG/vm1-xvda.qcow2")" "s1" "internal snapshots of xvda"
expect_eq "$(active_image vm1 xvdb)" "$IMG/vm1-xvdb.s1.qcow2" "xvdb's active image"
check_images

step "B, s2, C"
write_pattern vm1 xvda $B 0 1M
write_pattern vm1 xvdb $B 0 1M
expect_ok xl snapshot-create vm1 s2
write_pattern vm1 xvda $C 0 1M
write_pattern vm1 xvdb $C 0 1M
read_pattern "$(active_image vm1 xvda)" $C 0 1M
read_pattern "$(active_image vm1 xvdb)" $C 0 1M
check_images

step "revert to s1"
expect_ok xl snapshot-revert vm1 s1
domain_running vm1 || fail "vm1 is not running after the revert"
pid=$(runtime_pid vm1) || fail "no live QEMU for vm1"
expect_eq "$(readlink "/proc/$pid/exe")" "$(readlink -f "$XEN_QEMU")" \
    "the device model binary after the revert"
read_pattern "$(active_image vm1 xvda)" $A 0 1M
read_pattern "$(active_image vm1 xvdb)" $A 0 1M
expect_eq "$(backing_chain "$(active_image vm1 xvdb)" | tail -n 1)" \
    "$IMG/vm1-xvdb.img	raw" "bottom of xvdb's chain"
check_images

step "revert to s2"
expect_ok xl snapshot-revert vm1 s2
read_pattern "$(active_image vm1 xvda)" $B 0 1M
read_pattern "$(active_image vm1 xvdb)" $B 0 1M
expect_ok xl snapshot-list --tree vm1
expect_eq "$OUT" "s1
+- s2 (current)" "snapshot-list --tree"
check_images

step "internal-only snapshot deleted live"
expect_ok xl snapshot-create --diskspec xvdb,snapshot=no vm1 s3
expect_ok xl snapshot-delete vm1 s3
expect_eq "$(internal_snapshots "$IMG/vm1-xvda.qcow2" | sort | tr '\n' ' ')" \
    "s1 s2 " "internal snapshots of xvda"
expect_ok xl destroy vm1
check_images
echo "PASS: $TEST_NAME"
