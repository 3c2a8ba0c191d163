#!/bin/bash
# install-packages.sh - the Debian packages `make check-xen` needs,
# installed when missing.
#
# Xen's hypervisor and tools, a kernel to boot as dom0 and as the
# guest, a static busybox for both initramfs images, QEMU to boot it
# all under TCG, and QEMU's Xen device model (the qdisk backend).
# Checks each package with dpkg-query; apt-get update and install run
# only when something is missing, only as root, and without
# recommends.  Not root and something missing: says what to install
# and fails (this test is the only proof the xen driver works: it
# never skips silently).
#
# The kernel and busybox also make the guest of the quiesce test
# (tests/qemu/qga-vm), so `make check` installs these before its tests.
#
# The postinst scripts of xen-utils print "Can't find hypervisor
# information in sysfs!" when the host is not running Xen: harmless.
set -euo pipefail

PACKAGES=(
    xen-hypervisor-4.17-amd64 xen-utils-4.17 qemu-system-xen
    linux-image-amd64 busybox-static qemu-system-x86 qemu-utils
    socat cpio kmod jq lvm2 thin-provisioning-tools
)

# the checks and the install are install-deps.sh's; here, strict: this
# test is the only proof the xen driver works and never skips
INSTALL_DEPS_STRICT=1 exec "$(dirname "$0")/../../scripts/install-deps.sh" \
    "${PACKAGES[@]}"
