#!/bin/bash
# test-69-package.sh - the Debian packages: built, and whole
#
# The tracked files of the tree are copied aside (the build must not
# touch the tree), `dpkg-buildpackage -us -uc -b` builds the three
# packages there, and each is unpacked with dpkg -x into one temporary
# root, which must then hold:
#  - the library, its header and pkg-config file, the man pages, the
#    bash completion, vhd-util, the admin scripts and the systemd units;
#  - /usr/sbin/xl pointing at the front end, which was built to hand
#    other commands to /usr/sbin/xl.xen (where the preinst diverts Xen's);
#  - a front end that runs from that root: `xl help` lists the snapshot
#    commands, and a snapshot of a qemu-driver domain works with it.
# The packages' metadata: names, dependencies, the diversion scripts.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

for t in dpkg-buildpackage dh; do
    command -v $t >/dev/null || fail "$t is missing (make check installs dpkg-dev and debhelper)"
done
SRC=$T/src/libxl-snapshot
mkdir -p "$SRC"
(cd "$REPO" && git ls-files -z | xargs -0 cp --parents -t "$SRC") ||
    fail "cannot copy the tree"

step "dpkg-buildpackage -us -uc -b"
run bash -c "cd '$SRC' && dpkg-buildpackage -us -uc -b"
[ "$RC" -eq 0 ] || { tail -n 30 <<<"$OUT$ERR"; fail_run "dpkg-buildpackage failed"; }
debs=$(ls "$T"/src/*.deb)
for p in libxlsnapshot0 libxlsnapshot-dev xl-snapshot; do
    ls "$T"/src/${p}_0.1.0-1_*.deb >/dev/null 2>&1 || fail "no $p package: $debs"
done

step "unpacked (dpkg -x), the packages are whole"
R=$T/root
for d in $debs; do expect_ok dpkg -x "$d" "$R"; done
for f in usr/lib/libxlsnapshot.so.0 usr/lib/libxlsnapshot.so usr/include/libxl_snapshot.h \
         usr/lib/pkgconfig/libxl-snapshot.pc usr/bin/xl-snapshot usr/sbin/xl \
         usr/bin/xl-snapshot-rotate usr/bin/xl-snapshot-all \
         usr/libexec/libxl-snapshot/vhd-util lib/systemd/system/xl-snapshot-rotate.timer \
         lib/systemd/system/xl-snapshot-rotate.service usr/share/man/man1/xl-snapshot.1.gz \
         usr/share/man/man5/xl.snapshot.cfg.5.gz usr/share/man/man3/libxl-snapshot.3.gz \
         usr/share/bash-completion/completions/xl-snapshot; do
    [ -e "$R/$f" ] || fail "the packages lack /$f"
done
expect_eq "$(readlink "$R/usr/sbin/xl")" "../bin/xl-snapshot" "/usr/sbin/xl"
grep -q /usr/sbin/xl.xen "$R/usr/bin/xl-snapshot" ||
    fail "the packaged front end does not hand other commands to /usr/sbin/xl.xen"
run dpkg-deb -I "$T"/src/xl-snapshot_0.1.0-1_*.deb
expect_match "$OUT" "Depends:.*libxlsnapshot0 \\(= 0.1.0-1\\)" "xl-snapshot's dependencies"
expect_match "$OUT" "preinst" "xl-snapshot's preinst"
run dpkg-deb -e "$T"/src/xl-snapshot_0.1.0-1_*.deb "$T/ctl"
expect_match "$(cat "$T/ctl/preinst")" "dpkg-divert --package xl-snapshot --add --rename" "the diversion"
expect_match "$(cat "$T/ctl/postrm")" "dpkg-divert --package xl-snapshot --remove" "the diversion's removal"

step "the packaged front end runs from the unpacked root"
export LD_LIBRARY_PATH=$R/usr/lib
run "$R/usr/bin/xl-snapshot" help
expect_match "$OUT" "snapshot-create" "xl help"
make_vm_config vm1
XL=$R/usr/bin/xl-snapshot expect_ok xl snapshot-create "$CFG" p1
unset LD_LIBRARY_PATH
expect_ok xl snapshot-list --name "$CFG"
expect_eq "$OUT" p1 "the snapshot the packaged xl took"
echo "PASS: $TEST_NAME"
