#!/bin/bash
# build-domU.sh - the guest's initramfs: $WORK/domU.cpio.gz
#
# A static busybox, the Xen block frontend module (with what it depends
# on) and domU-init as /init.  The guest boots dom0's kernel.
set -euo pipefail
# shellcheck source=tests/xen/lib.sh
. "$(dirname "$0")/lib.sh"

[ -n "$KVER" ] || xt_die "no kernel in /boot with modules in /lib/modules"
mkdir -p "$WORK"
R=$WORK/domU-root
rm -rf "$R"
mkdir -p "$R"/{bin,dev,proc,sys,etc,tmp}
cp /bin/busybox "$R/bin/busybox"
ldd "$R/bin/busybox" >/dev/null 2>&1 &&
    xt_die "/bin/busybox is dynamic: install busybox-static"
cp "$XT_DIR/domU-init" "$R/init"
chmod 755 "$R/init"
xt_modules "$R" xen-blkfront
xt_pack "$R" "$WORK/domU.cpio.gz"
