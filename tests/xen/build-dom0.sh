#!/bin/bash
# build-dom0.sh - dom0's initramfs: $WORK/dom0.cpio.gz
#
# Run after build-domU.sh and a build of the tree.  Holds:
#  - a static busybox (sh and the tools), dom0-init as /init and the
#    scenario script as /xen-test/scenarios.sh, the tree's test build
#    of the library (fault injection) in /xen-test/lib;
#  - Xen's tools: xl, xenstored, xenconsoled, xen-init-dom0,
#    libxl-save-helper, xenconsole (from $XEN_BIN), xenstore and its
#    xenstore-* names, QEMU's device model for Xen
#    (/usr/libexec/xen-qemu-system-i386) with its keymaps (without them
#    the device model exits at once: "could not read keymap file"),
#    /etc/xen; qemu-img, qemu-io, socat, jq;
#  - the project as its Debian packages install it on a Debian Xen
#    host: xen-utils-common's /usr/sbin/xl (the link to Debian's
#    xen-utils-wrapper, which runs /usr/lib/xen-<version>/bin/xl), then
#    xl-snapshot's real preinst run on the tree (DPKG_ROOT; its
#    diversion moves Xen's xl to /usr/libexec/xl), then the files of
#    libxlsnapshot1 and xl-snapshot unpacked (dpkg-deb -x; dom0 has no
#    dpkg): /usr/sbin/xl is ours (-> ../bin/xl-snapshot), the library
#    in /usr/lib/<multiarch>.  The packages come from
#    scripts/build-debs.sh (kept per content of the tree: in
#    `make check`, the ones test-69 built and checked);
#  - every shared library of those programs (ldd);
#  - the Xen modules dom0 needs (event channels, grant tables, privcmd,
#    xenfs, blkback, loop; device-mapper with snapshot and thin-pool for
#    LVM) and what they depend on, in load order in
#    /etc/xen-test.modules;
#  - lvm2 (/sbin/lvm, dmsetup) and the thin tools, with an lvm.conf
#    for a dom0 without udev;
#  - the guest: the same kernel as /boot/vmlinuz and its initramfs as
#    /boot/domU.cpio.gz.
# The disk images are made by the scenario script in dom0.
# XEN_TEST_SCENARIOS=FILE puts FILE in place of scenarios.sh.
# Finally each program is checked to load in the tree (chroot, as
# root): a missing library is a build failure, not a mystery in the
# boot log; and /usr/sbin/xl must reach Xen's own xl through the
# wrapper (with a stand-in /sys/hypervisor, removed after: Xen's xl
# then fails to open the hypervisor, with libxl's own words).
set -euo pipefail
# shellcheck source=tests/xen/lib.sh
. "$(dirname "$0")/lib.sh"

[ -n "$KVER" ] || xt_die "no kernel in /boot with modules in /lib/modules"
[ -f "$WORK/domU.cpio.gz" ] || xt_die "run build-domU.sh first"
mkdir -p "$WORK"

# ---- the project's Debian packages
DEBS=$("$REPO/scripts/build-debs.sh") || xt_die "the Debian packages were not built (scripts/build-debs.sh)"
debs=()
for p in libxlsnapshot1 xl-snapshot; do
    d=("$DEBS/${p}"_*.deb)
    [ -f "${d[0]}" ] || xt_die "scripts/build-debs.sh made no $p package in $DEBS"
    debs+=("${d[0]}")
done
xt_say "packages: ${debs[*]}"
rm -rf "$WORK/ctl"
dpkg-deb -e "${debs[1]}" "$WORK/ctl"
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH)

# ---- the tree
R=$WORK/dom0-root
rm -rf "$R"
mkdir -p "$R"/{bin,sbin,dev,proc,sys,run,tmp,root,boot,etc,var/lib,var/log,usr/bin,usr/lib,xen-test}
ln -s ../run "$R/var/run"

cp /bin/busybox "$R/bin/busybox"
ldd "$R/bin/busybox" >/dev/null 2>&1 &&
    xt_die "/bin/busybox is dynamic: install busybox-static"

xt_copy "$R" "$XEN_BIN/xl" "$XEN_BIN/xenstored" "$XEN_BIN/xenconsoled" \
    "$XEN_BIN/xen-init-dom0" "$XEN_BIN/libxl-save-helper" \
    "$XEN_BIN/xenconsole" /usr/bin/xenstore /usr/libexec/xen-qemu-system-i386 \
    /usr/bin/qemu-img /usr/bin/qemu-io /usr/bin/socat /usr/bin/jq /usr/bin/flock
for t in read write ls list rm exists watch chmod; do
    ln -s xenstore "$R/usr/bin/xenstore-$t"
done
# glibc loads it on thread cancellation, without ldd knowing
GCC_S=/lib/x86_64-linux-gnu/libgcc_s.so.1
if [ -e "$GCC_S" ] && [ ! -e "$R$GCC_S" ]; then
    xt_copy "$R" "$GCC_S"
fi
cp -a /etc/xen "$R/etc/"
mkdir -p "$R/usr/share/qemu"
cp -a /usr/share/qemu/keymaps "$R/usr/share/qemu/"
# HVM guests (scenario 11): hvmloader, SeaBIOS, and the option ROM of
# QEMU's direct kernel boot
mkdir -p "$R/usr/lib/xen-4.17/boot"
cp /usr/lib/xen-4.17/boot/hvmloader "$R/usr/lib/xen-4.17/boot/"
cp -a /usr/share/seabios "$R/usr/share/"
cp /usr/share/qemu/linuxboot_dma.bin /usr/share/qemu/linuxboot.bin \
   /usr/share/qemu/kvmvapic.bin "$R/usr/share/qemu/"
# libxl's hotplug script for the phy disk of scenario 7 (Xen's own
# "block" script is bash): blkback takes the device from
# physical-device
cat > "$R/etc/xen/scripts/xt-phy" <<'SCRIPT'
#!/bin/sh
[ "$1" = add ] || exit 0
dev=$(xenstore-read "$XENBUS_PATH/params") || exit 1
xenstore-write "$XENBUS_PATH/physical-device" "$(stat -L -c '%t:%T' "$dev")" \
    "$XENBUS_PATH/physical-device-path" "$dev" \
    "$XENBUS_PATH/hotplug-status" connected
SCRIPT
chmod 755 "$R/etc/xen/scripts/xt-phy"
echo 'root:x:0:0:root:/root:/bin/sh' > "$R/etc/passwd"
echo 'root:x:0:' > "$R/etc/group"

# ---- the project, as dpkg would install its packages: Xen's xl as
# xen-utils-common installs it (the wrapper's link; its true name,
# should our package be installed on this machine), xl-snapshot's
# preinst (the diversion, with a dpkg database in the tree), the files
mkdir -p "$R/usr/sbin" "$R/usr/lib/xen-common/bin" "$R/var/lib/dpkg"
XEN_XL=$(dpkg-divert --truename /usr/sbin/xl)
if [ ! -f /usr/lib/xen-common/bin/xen-utils-wrapper ] || [ ! -L "$XEN_XL" ]; then
    xt_die "xen-utils-common is not installed (tests/xen/install-packages.sh)"
fi
cp -a /usr/lib/xen-common/bin/xen-utils-wrapper "$R/usr/lib/xen-common/bin/"
cp -a "$XEN_XL" "$R/usr/sbin/xl"
[ "$(readlink "$R/usr/sbin/xl")" = ../lib/xen-common/bin/xen-utils-wrapper ] ||
    xt_die "xen-utils-common's /usr/sbin/xl is not the link to xen-utils-wrapper: $(ls -l "$R/usr/sbin/xl")"
# the wrapper is a /bin/sh script (dom0-init's busybox --install keeps it)
ln -s busybox "$R/bin/sh"
DPKG_ROOT=$R DPKG_ADMINDIR=$R/var/lib/dpkg sh "$WORK/ctl/preinst" install \
    >"$WORK/preinst.log" 2>&1 ||
    { cat "$WORK/preinst.log" >&2; xt_die "xl-snapshot's preinst failed on dom0's tree"; }
for d in "${debs[@]}"; do
    dpkg-deb -x "$d" "$R" || xt_die "dpkg-deb -x $d failed"
done
if [ "$(readlink "$R/usr/sbin/xl")" != ../bin/xl-snapshot ] ||
   [ "$(readlink "$R/usr/libexec/xl")" != ../lib/xen-common/bin/xen-utils-wrapper ]; then
    xt_die "after the preinst and the packages: /usr/sbin/xl is not ours or /usr/libexec/xl not Xen's: $(ls -l "$R/usr/sbin/xl" "$R/usr/libexec/xl" 2>&1)"
fi
xt_libs "$R" "$R/usr/bin/xl-snapshot" "$R/usr/lib/$MA/libxlsnapshot.so.1"
# the tree's test build of the library (build/test: the fault injection
# the packaged one has not), for the scenarios' XL_SNAPSHOT_FAULT runs
# (LD_LIBRARY_PATH=/xen-test/lib): the same soname and libraries
TESTLIB=$REPO/build/test/libxl-snapshot/libxlsnapshot.so.1
[ -f "$TESTLIB" ] || xt_die "$TESTLIB is not built (make all)"
mkdir -p "$R/xen-test/lib"
cp "$TESTLIB" "$R/xen-test/lib/"

xt_modules "$R" xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs xen-blkback loop \
    dm-mod dm-snapshot dm-thin-pool

# ---- LVM (scenario 9): lvm2 and the thin tools, without udev (dom0 has
# none) or lvmetad/lvmpolld/dmeventd, no metadata backups
xt_copy "$R" /sbin/lvm /sbin/dmsetup /usr/sbin/pdata_tools
ln -sf /sbin/lvm "$R/usr/bin/lvm"
for t in thin_check thin_dump thin_repair thin_restore; do
    ln -sf pdata_tools "$R/usr/sbin/$t"
done
mkdir -p "$R/etc/lvm" "$R/run/lvm"
cat > "$R/etc/lvm/lvm.conf" <<'CONF'
devices { obtain_device_list_from_udev = 0 external_device_info_source = "none" }
activation { udev_sync = 0 udev_rules = 0 monitoring = 0 }
global { use_lvmpolld = 0 }
backup { backup = 0 archive = 0 }
CONF

# ---- Ceph (scenario 12, the kernel form of RBD disks): krbd and the
# network to the cluster boot.sh starts on this machine (e1000e: QEMU's
# user network), `rbd` (to map the image) and the tree's ceph-util (the
# packages do not ship it) with their libraries; skipped, and the
# scenario with it, where Ceph or ceph-util is not there
if command -v rbd >/dev/null && [ -x "$REPO/tools/ceph-util" ]; then
    xt_copy "$R" "$(command -v rbd)"
    mkdir -p "$R/etc/ceph"
    cp "$REPO/tools/ceph-util" "$R/xen-test/ceph-util"
    xt_libs "$R" "$R/xen-test/ceph-util"
    xt_modules "$R" rbd e1000e
    touch "$R/xen-test/ceph"
fi

cp "/boot/vmlinuz-$KVER" "$R/boot/vmlinuz"
cp "$WORK/domU.cpio.gz" "$R/boot/domU.cpio.gz"

cp "$XT_DIR/dom0-init" "$R/init"
# dom0's shell is busybox's (no bash here-strings, arrays...): a script
# it cannot parse stops every scenario after the line, found here, not
# 15 minutes into the run
busybox sh -n "${XEN_TEST_SCENARIOS:-$XT_DIR/scenarios.sh}" ||
    xt_die "the scenario script does not parse under busybox sh (dom0's shell)"
cp "${XEN_TEST_SCENARIOS:-$XT_DIR/scenarios.sh}" "$R/xen-test/scenarios.sh"
chmod 755 "$R/init" "$R/xen-test/scenarios.sh"

# ---- every program loads from the tree alone (chroot: root only)
[ "$(id -u)" -eq 0 ] || { xt_pack "$R" "$WORK/dom0.cpio.gz"; exit 0; }
for p in /usr/bin/xl-snapshot /usr/libexec/libxl-snapshot/vhd-util "$XEN_BIN/xl" "$XEN_BIN/xenstored" \
         "$XEN_BIN/xenconsoled" "$XEN_BIN/xen-init-dom0" \
         "$XEN_BIN/libxl-save-helper" /usr/bin/xenstore \
         /usr/libexec/xen-qemu-system-i386 /usr/bin/qemu-img /usr/bin/qemu-io \
         /usr/bin/socat /usr/bin/jq /sbin/lvm /usr/sbin/pdata_tools; do
    out=$(chroot "$R" /lib64/ld-linux-x86-64.so.2 --list "$p" 2>&1) ||
        xt_die "$p does not load in dom0's tree: $out"
    if grep -q 'not found' <<<"$out"; then
        xt_die "$p misses libraries in dom0's tree: $(grep 'not found' <<<"$out" | tr '\n' ' ')"
    fi
done
if ! chroot "$R" /usr/sbin/xl help >"$WORK/xl-help.log" 2>&1 ||
   ! grep -q '^ snapshot-create ' "$WORK/xl-help.log"; then
    xt_die "/usr/sbin/xl help fails in dom0's tree: $(cat "$WORK/xl-help.log")"
fi
# /usr/sbin/xl -> ours -> /usr/libexec/xl -> the wrapper -> Xen's xl,
# which (no hypervisor here) says libxl cannot open its handle
mkdir -p "$R/sys/hypervisor/version"
echo xen > "$R/sys/hypervisor/type"
echo 4 > "$R/sys/hypervisor/version/major"
echo 17 > "$R/sys/hypervisor/version/minor"
chroot "$R" /usr/sbin/xl info >"$WORK/xl-info.log" 2>&1 || true
rm -rf "$R/sys/hypervisor"
grep -q 'cannot init xl context' "$WORK/xl-info.log" ||
    xt_die "/usr/sbin/xl info in dom0's tree does not reach Xen's xl through /usr/libexec/xl: $(cat "$WORK/xl-info.log")"

xt_pack "$R" "$WORK/dom0.cpio.gz"
