#!/bin/bash
# install-deps.sh - installs the Debian packages the build and the
# tests need, if any is missing.
#
# Checks each package with dpkg-query; apt-get update and install run
# only when something is missing, and only as root.  Not root and
# something missing: says what to install and fails.  Not Debian (no
# dpkg-query): says so and leaves it to the build to fail.
set -euo pipefail

# install-deps.sh [PACKAGE...]: the given packages instead of the
# build's own list (tests/xen uses it so).  With
# INSTALL_DEPS_STRICT=1, a machine without dpkg-query is a failure.
if [ $# -gt 0 ]; then
    PACKAGES=("$@")
else
    PACKAGES=(
        libxen-dev libyajl-dev libcunit1-dev libxml2-dev
        qemu-utils qemu-system-x86 qemu-system-xen socat
        pkg-config gcc make jq util-linux procps
        qemu-guest-agent e2fsprogs libvhdi-utils libxml2-utils
        dpkg-dev debhelper lintian time strace
        tmux bash-completion libnbd-bin
        librbd-dev librados-dev
    )
fi

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "install-deps: no dpkg-query (not Debian?); install by hand:" \
         "${PACKAGES[*]}" >&2
    [ "${INSTALL_DEPS_STRICT:-0}" = 1 ] && exit 1
    exit 0
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
    echo "install-deps: all packages present"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]}" >&2
    echo "install-deps: run as root: apt-get install ${missing[*]}" >&2
    exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Another apt may hold the lock for a while (shared machines, CI).
apt_opts=(-o DPkg::Lock::Timeout=900)
apt-get "${apt_opts[@]}" update -q
apt-get "${apt_opts[@]}" install -y -q --no-install-recommends "${missing[@]}"
