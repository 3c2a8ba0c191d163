#!/bin/bash
# build.sh DIR - the quiesce test's guest: DIR/vmlinuz and DIR/initrd.gz
#
# The host's kernel, a static busybox, the real qemu-ga (Debian's
# qemu-guest-agent) with its shared libraries, and the modules for
# virtio-pci, virtio-blk, virtio-console and ext4.  The helpers are the
# Xen test's (tests/xen/lib.sh: copy with libraries, modules in load
# order, pack); the image is rebuilt when this script or init changed.
set -euo pipefail
DIR=$1
export XEN_TEST_WORKDIR=$DIR
# shellcheck source=tests/xen/lib.sh
. "$(dirname "$0")/../../xen/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

[ -n "$KVER" ] || xt_die "no kernel in /boot with modules in /lib/modules"
stamp=$(cat "$HERE/build.sh" "$HERE/init" /usr/sbin/qemu-ga "/boot/vmlinuz-$KVER" | md5sum | cut -c1-16)
if [ -f "$DIR/initrd.gz" ] && [ "$(cat "$DIR/stamp" 2>/dev/null)" = "$stamp" ]; then
    exit 0
fi
mkdir -p "$DIR"
R=$DIR/root
rm -rf "$R"
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,mnt,run,tmp}
cp /bin/busybox "$R/bin/busybox"
ldd "$R/bin/busybox" >/dev/null 2>&1 && xt_die "/bin/busybox is dynamic: install busybox-static"
xt_copy "$R" /usr/sbin/qemu-ga
xt_modules "$R" virtio_pci virtio_blk virtio_console ext4
cp "$HERE/init" "$R/init"
chmod 755 "$R/init"
xt_pack "$R" "$DIR/initrd.gz"
cp "/boot/vmlinuz-$KVER" "$DIR/vmlinuz"
echo "$stamp" > "$DIR/stamp"
