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
# The postinst scripts of xen-utils print "Can't find hypervisor
# information in sysfs!" when the host is not running Xen: harmless.
set -euo pipefail

PACKAGES=(
    xen-hypervisor-4.17-amd64 xen-utils-4.17 qemu-system-xen
    linux-image-amd64 busybox-static qemu-system-x86 qemu-utils
    socat cpio kmod jq
)

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "xen-test: FAIL: no dpkg-query (not Debian?); this test needs" \
         "Debian 12's packages: ${PACKAGES[*]}" >&2
    exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case $status in
    *" installed") ;;
    *) missing+=("$p") ;;
    esac
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "xen-test: all packages present"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "xen-test: FAIL: missing packages: ${missing[*]}" >&2
    echo "xen-test: run as root: apt-get install --no-install-recommends" \
         "${missing[*]}" >&2
    exit 1
fi

echo "xen-test: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Another apt may hold the lock for a while (shared machines, CI).
apt_opts=(-o DPkg::Lock::Timeout=900)
apt-get "${apt_opts[@]}" update -q
apt-get "${apt_opts[@]}" install -y -q --no-install-recommends "${missing[@]}"
