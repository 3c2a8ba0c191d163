# shellcheck shell=bash disable=SC2034
# lib.sh - shared settings and helpers of the Xen test (tests/xen)
#
# Sourced by build-dom0.sh, build-domU.sh and boot.sh (bash).  Sets:
#
#   XT_DIR      this directory
#   REPO        the repository root
#   WORK        the work directory: images, staging trees, logs.
#               $XEN_TEST_WORKDIR, or one per checkout under
#               ${TMPDIR:-/tmp} (the checkout's path hashed), so two
#               checkouts never share one and the tree stays clean.
#   KVER        the kernel booted as dom0 and as the guest: the one
#               linux-image-amd64 depends on, else the newest with both
#               /boot/vmlinuz-* and /lib/modules/*
#   XEN_GZ      Xen's hypervisor image (/boot/xen-4.17-amd64.gz)
#   XEN_BIN     Xen's tools directory (/usr/lib/xen-4.17/bin)
#
# Helpers:
#   xt_say MSG...            one progress line, "xen-test: MSG"
#   xt_die MSG...            "xen-test: FAIL: MSG" on stderr, exit 1
#   xt_copy ROOT FILE...     FILE at the same path under ROOT (symlinks
#                            followed), with every shared library ldd
#                            lists for it (and the dynamic loader)
#   xt_libs ROOT FILE...     only the shared libraries of FILE
#   xt_modules ROOT MOD...   the modules and what they depend on, for
#                            KVER, under ROOT; their load order is
#                            appended to ROOT/etc/xen-test.modules
#   xt_pack ROOT OUT         ROOT as a gzipped newc cpio archive
set -u

XT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$XT_DIR/../.." && pwd)
XEN_GZ=${XEN_TEST_XEN:-/boot/xen-4.17-amd64.gz}
XEN_BIN=/usr/lib/xen-4.17/bin

xt_say() { echo "xen-test: $*"; }
xt_die() { echo "xen-test: FAIL: $*" >&2; exit 1; }

if [ -n "${XEN_TEST_WORKDIR:-}" ]; then
    WORK=$XEN_TEST_WORKDIR
else
    WORK=${TMPDIR:-/tmp}/xl-snapshot-xen-test.$(printf '%s' "$REPO" | md5sum | cut -c1-10)
fi

xt_kernel() {
    local dep k
    dep=$(dpkg-query -W -f='${Depends}' linux-image-amd64 2>/dev/null |
          grep -oE 'linux-image-[^ ,]+' | head -n 1)
    k=${dep#linux-image-}
    if [ -n "$k" ] && [ -f "/boot/vmlinuz-$k" ] && [ -d "/lib/modules/$k" ]; then
        echo "$k"
        return 0
    fi
    for k in $(ls /lib/modules 2>/dev/null | sort -rV); do
        if [ -f "/boot/vmlinuz-$k" ]; then
            echo "$k"
            return 0
        fi
    done
    return 1
}
KVER=${XEN_TEST_KERNEL:-$(xt_kernel || true)}

xt_copy() {
    local root=$1 f
    shift
    for f in "$@"; do
        [ -e "$f" ] || xt_die "$f is missing (are the packages installed?)"
        mkdir -p "$root$(dirname "$f")"
        cp -L "$f" "$root$f"
        xt_libs "$root" "$f"
    done
}

xt_libs() {
    local root=$1 f lib
    shift
    for f in "$@"; do
        # "lib.so => /path (addr)" and "/lib64/ld-linux... (addr)"
        for lib in $(ldd "$f" 2>/dev/null | awk '
                $2 == "=>" && $3 ~ /^\// {print $3}
                $1 ~ /^\// {print $1}'); do
            [ -e "$root$lib" ] && continue
            mkdir -p "$root$(dirname "$lib")"
            cp -L "$lib" "$root$lib"
        done
    done
}

xt_modules() {
    local root=$1 m line path
    shift
    mkdir -p "$root/etc"
    for m in "$@"; do
        modprobe -S "$KVER" --show-depends "$m" >"$WORK/modprobe.out" 2>&1 ||
            xt_die "module $m not found for kernel $KVER: $(cat "$WORK/modprobe.out")"
        while read -r line; do
            case $line in
            insmod\ *)
                path=$(echo "$line" | awk '{print $2}')
                [ -e "$root$path" ] && continue
                # CPU-accelerated variants (soft dependencies, e.g. of
                # crc32c): TCG's qemu64 lacks their instructions; the
                # generic ones are in the list too
                case $path in */arch/x86/crypto/*) continue ;; esac
                mkdir -p "$root$(dirname "$path")"
                cp "$path" "$root$path"
                echo "$path" >> "$root/etc/xen-test.modules"
                ;;
            esac
        done < "$WORK/modprobe.out"
    done
}

xt_pack() {
    (cd "$1" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) |
        gzip -1 > "$2.tmp" && mv "$2.tmp" "$2"
}
