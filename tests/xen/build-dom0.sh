#!/bin/bash
# build-dom0.sh - dom0's initramfs: $WORK/dom0.cpio.gz
#
# Run after build-domU.sh and a build of the tree.  Holds:
#  - a static busybox (sh and the tools), dom0-init as /init and the
#    scenario script as /xen-test/scenarios.sh;
#  - Xen's tools: xl, xenstored, xenconsoled, xen-init-dom0,
#    libxl-save-helper, xenconsole (from $XEN_BIN), xenstore and its
#    xenstore-* names, QEMU's device model for Xen
#    (/usr/libexec/xen-qemu-system-i386) with its keymaps (without them
#    the device model exits at once: "could not read keymap file"),
#    /etc/xen; qemu-img, qemu-io, socat, jq;
#  - the project's xl and library, as `make install DESTDIR=<staging>
#    PREFIX=/usr` installs them: /usr/bin/xl-snapshot and
#    /usr/lib/libxlsnapshot.so.0;
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
# boot log.
set -euo pipefail
# shellcheck source=tests/xen/lib.sh
. "$(dirname "$0")/lib.sh"

[ -n "$KVER" ] || xt_die "no kernel in /boot with modules in /lib/modules"
[ -f "$WORK/domU.cpio.gz" ] || xt_die "run build-domU.sh first"
mkdir -p "$WORK"

# ---- the project, installed into a staging tree
STAGE=$WORK/stage
rm -rf "$STAGE"
make -s -C "$REPO" install DESTDIR="$STAGE" PREFIX=/usr >"$WORK/make-install.log" 2>&1 ||
    { cat "$WORK/make-install.log" >&2; xt_die "make install DESTDIR=$STAGE PREFIX=/usr failed"; }
OUR_XL=$STAGE/usr/bin/xl-snapshot
OUR_LIB=$(ls "$STAGE"/usr/lib/libxlsnapshot.so.[0-9]* 2>/dev/null | head -n 1)
[ -x "$OUR_XL" ] && [ -n "$OUR_LIB" ] ||
    xt_die "make install did not install usr/bin/xl-snapshot and usr/lib/libxlsnapshot.so.N"

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
    /usr/bin/qemu-img /usr/bin/qemu-io /usr/bin/socat /usr/bin/jq
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

cp "$OUR_XL" "$R/usr/bin/xl-snapshot"
cp "$OUR_LIB" "$R/usr/lib/"
ln -s "$(basename "$OUR_LIB")" "$R/usr/lib/libxlsnapshot.so"
xt_libs "$R" "$OUR_XL" "$OUR_LIB"

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

cp "/boot/vmlinuz-$KVER" "$R/boot/vmlinuz"
cp "$WORK/domU.cpio.gz" "$R/boot/domU.cpio.gz"

cp "$XT_DIR/dom0-init" "$R/init"
cp "${XEN_TEST_SCENARIOS:-$XT_DIR/scenarios.sh}" "$R/xen-test/scenarios.sh"
chmod 755 "$R/init" "$R/xen-test/scenarios.sh"

# ---- every program loads from the tree alone (chroot: root only)
[ "$(id -u)" -eq 0 ] || { xt_pack "$R" "$WORK/dom0.cpio.gz"; exit 0; }
for p in /usr/bin/xl-snapshot "$XEN_BIN/xl" "$XEN_BIN/xenstored" \
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
chroot "$R" /usr/bin/xl-snapshot help >/dev/null 2>&1 ||
    xt_die "/usr/bin/xl-snapshot help fails in dom0's tree"

xt_pack "$R" "$WORK/dom0.cpio.gz"
