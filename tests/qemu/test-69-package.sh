#!/bin/bash
# test-69-package.sh - the Debian packages: built, whole, lintian-clean,
# and Xen's xl still working behind ours
#
# The tracked files of the tree are copied aside (the build must not
# touch the tree), `dpkg-buildpackage -us -uc -b` builds the three
# packages there, and each is unpacked with dpkg -x into one temporary
# root, which must then hold:
#  - the library, its .a and pkg-config file in the multiarch libdir,
#    the header, the man pages (the scripts' too), the bash completion,
#    vhd-util, the admin scripts and the systemd units;
#  - /usr/sbin/xl pointing at the front end;
#  - a front end that runs from that root: `xl help` lists the snapshot
#    commands, and a snapshot of a qemu-driver domain works with it.
# The packages' metadata: names, dependencies, the diversion scripts.
# Then, each on its own (a failure does not hide the others):
#  - lintian -I --pedantic says nothing but initial-upload-closes-no-bugs
#    (so the build got dpkg-buildflags' CPPFLAGS: fortify);
#  - libxlsnapshot-dev depends on the -dev package of every module its
#    .pc requires, and pkg-config resolves it with only the .pc files of
#    its declared dependencies (and theirs) on its path;
#  - Xen's xl behind ours, with Debian's own xen-utils-wrapper: a chroot
#    laid out as a Debian Xen host (xen-utils-common's files, the
#    running hypervisor 4.17 in /sys/hypervisor, a stand-in for Xen's xl
#    in /usr/lib/xen-4.17/bin), the package's preinst run in it (its
#    diversion), our files unpacked: `xl info` must reach the stand-in
#    with its arguments and exit status; after the postrm, Xen's xl is
#    back at /usr/sbin/xl;
#  - the man pages of xl-snapshot-all and xl-snapshot-rotate name every
#    option of their --help, and render without warnings.
# The soft cases are functions, run through soft_case:
# shellcheck disable=SC2317
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
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
for d in $debs; do expect_ok dpkg -x "$d" "$R"; done
for f in usr/lib/$MA/libxlsnapshot.so.0 usr/lib/$MA/libxlsnapshot.so \
         usr/lib/$MA/libxlsnapshot.a usr/include/libxl_snapshot.h \
         usr/lib/$MA/pkgconfig/libxlsnapshot.pc usr/lib/$MA/pkgconfig/libxl-snapshot.pc \
         usr/bin/xl-snapshot usr/sbin/xl \
         usr/bin/xl-snapshot-rotate usr/bin/xl-snapshot-all \
         usr/libexec/libxl-snapshot/vhd-util lib/systemd/system/xl-snapshot-rotate.timer \
         lib/systemd/system/xl-snapshot-rotate.service usr/share/man/man1/xl-snapshot.1.gz \
         usr/share/man/man1/xl-snapshot-all.1.gz usr/share/man/man1/xl-snapshot-rotate.1.gz \
         usr/share/man/man5/xl.snapshot.cfg.5.gz usr/share/man/man3/libxl-snapshot.3.gz \
         usr/share/bash-completion/completions/xl-snapshot; do
    [ -e "$R/$f" ] || fail "the packages lack /$f"
done
expect_eq "$(readlink "$R/usr/sbin/xl")" "../bin/xl-snapshot" "/usr/sbin/xl"
run dpkg-deb -I "$T"/src/xl-snapshot_0.1.0-1_*.deb
expect_match "$OUT" "Depends:.*libxlsnapshot0 \\(= 0.1.0-1\\)" "xl-snapshot's dependencies"
expect_match "$OUT" "preinst" "xl-snapshot's preinst"
run dpkg-deb -e "$T"/src/xl-snapshot_0.1.0-1_*.deb "$T/ctl"
expect_match "$(cat "$T/ctl/preinst")" "dpkg-divert --package xl-snapshot --add --rename" "the diversion"
expect_match "$(cat "$T/ctl/postrm")" "dpkg-divert --package xl-snapshot --remove" "the diversion's removal"

step "the packaged front end runs from the unpacked root"
export LD_LIBRARY_PATH=$R/usr/lib/$MA
run "$R/usr/bin/xl-snapshot" help
expect_match "$OUT" "snapshot-create" "xl help"
make_vm_config vm1
XL=$R/usr/bin/xl-snapshot expect_ok xl snapshot-create "$CFG" p1
unset LD_LIBRARY_PATH
expect_ok xl snapshot-list --name "$CFG"
expect_eq "$OUT" p1 "the snapshot the packaged xl took"

# lintian -I --pedantic: nothing but initial-upload-closes-no-bugs
lintian_clean() {
    command -v lintian >/dev/null || fail "lintian is missing (make check installs it)"
    run lintian -I --pedantic "$T"/src/libxl-snapshot_0.1.0-1_*.changes
    [ "$RC" -eq 0 ] || fail_run "lintian failed"
    local tags
    tags=$(grep -v ' initial-upload-closes-no-bugs ' <<<"$OUT" | sed '/^$/d')
    [ -z "$tags" ] || fail "lintian: tags other than initial-upload-closes-no-bugs" "$tags"
}

# The names of the packages in a Depends field (alternatives too).
dep_names() {
    tr ',|' '\n' <<<"$1" | sed 's/(.*//; s/\[.*//; s/:.*//; s/[[:space:]]//g; /^$/d'
}

# Every module in the .pc's Requires and Requires.private is the .pc of
# a package in libxlsnapshot-dev's Depends; pkg-config resolves ours with
# only the .pc files of those packages (and of what they depend on,
# from this machine's installed packages) on its path.
dev_depends() {
    local pc=$R/usr/lib/$MA/pkgconfig/libxlsnapshot.pc deps mods m f pkg
    deps=$(dep_names "$(dpkg-deb -f "$T"/src/libxlsnapshot-dev_0.1.0-1_*.deb Depends)")
    mods=$(sed -n 's/^Requires\(\.private\)\{0,1\}://p' "$pc" | tr ', ' '\n' |
           sed '/^$/d; /^[<>=!]/d; /^[0-9]/d')
    expect_match "$mods" '^yajl$' "the modules $pc requires"
    for m in $mods; do
        f=$(pkg-config --path "$m") || fail "no $m.pc on this machine"
        pkg=$(dpkg -S "$f" | sed 's/[:,].*//')
        grep -qx "$pkg" <<<"$deps" ||
            fail "libxlsnapshot-dev does not depend on $pkg (whose $f the .pc requires)" \
                "Depends: ${deps//$'\n'/, }"
    done
    # the closure of the declared dependencies over Depends, installed here
    local todo seen=" " p
    mapfile -t todo <<<"$deps"
    mkdir -p "$T/pc"
    ln -s "$pc" "$T/pc/"
    while [ ${#todo[@]} -gt 0 ]; do
        p=${todo[0]} todo=("${todo[@]:1}")
        [[ $seen == *" $p "* ]] && continue
        seen+="$p "
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q ' installed$' || continue
        dpkg -L "$p" | grep '/pkgconfig/[^/]*\.pc$' | while read -r f; do
            [ -e "$T/pc/${f##*/}" ] || ln -s "$f" "$T/pc/"
        done
        mapfile -t -O ${#todo[@]} todo < <(dep_names "$(dpkg-query -W -f='${Depends},${Pre-Depends}' "$p")")
    done
    run env -u PKG_CONFIG_PATH PKG_CONFIG_LIBDIR="$T/pc" pkg-config --cflags --libs libxlsnapshot
    [ "$RC" -eq 0 ] || fail_run "pkg-config libxlsnapshot with the declared dependencies alone"
    expect_match "$OUT" '-lxlsnapshot' "pkg-config --libs libxlsnapshot"
}

# Each file ldd lists for BIN (run with LD_LIBRARY_PATH=LIBPATH),
# copied into the root $W at its own path.
copy_libs() {
    local bin=$1 libpath=$2 f
    for f in $(LD_LIBRARY_PATH=$libpath ldd "$bin" |
               awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
        [[ $f == "$W"/* ]] || [ -e "$W$f" ] || cp --parents -L "$f" "$W" ||
            fail "cannot copy $f into the root"
    done
}

# CMD... run chrooted in $W, with an empty environment but PATH
in_root() {
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot "$W" "$@"
}

# Xen's xl behind ours, with Debian's own xen-utils-wrapper
xen_wrapper() {
    local xuc=$T/xuc W=$T/xenroot divert f
    mkdir -p "$xuc"
    # xen-utils-common's wrapper and /usr/sbin/xl: as installed here
    # (make check installs Xen's packages), else from its package
    if dpkg-query -W -f='${Status}' xen-utils-common 2>/dev/null | grep -q ' installed$'; then
        mkdir -p "$xuc/usr/sbin" "$xuc/usr/lib"
        cp -a /usr/lib/xen-common "$xuc/usr/lib/"
        cp -a "$(dpkg-divert --truename /usr/sbin/xl)" "$xuc/usr/sbin/xl"
    else
        (cd "$T" && apt-get download xen-utils-common) >/dev/null 2>&1 ||
            fail "xen-utils-common is neither installed nor downloadable"
        expect_ok dpkg -x "$(ls "$T"/xen-utils-common_*.deb)" "$xuc"
    fi
    if [ ! -f "$xuc/usr/lib/xen-common/bin/xen-utils-wrapper" ] ||
       [ "$(readlink "$xuc/usr/sbin/xl")" != ../lib/xen-common/bin/xen-utils-wrapper ]; then
        fail "xen-utils-common: /usr/sbin/xl is not the xen-utils-wrapper symlink this test knows" \
            "$(ls -l "$xuc/usr/sbin/xl" 2>&1)"
    fi

    # the host: Xen 4.17 running, xen-utils-common, a stand-in Xen xl
    mkdir -p "$W/usr/sbin" "$W/usr/lib/xen-4.17/bin" "$W/var/lib/dpkg" \
             "$W/sys/hypervisor/version" "$W/bin"
    cp -a "$xuc/usr/lib/xen-common" "$W/usr/lib/"
    cp -a "$xuc/usr/sbin/xl" "$W/usr/sbin/xl"
    echo xen > "$W/sys/hypervisor/type"
    echo 4 > "$W/sys/hypervisor/version/major"
    echo 17 > "$W/sys/hypervisor/version/minor"
    cat > "$W/usr/lib/xen-4.17/bin/xl" <<'XL'
#!/bin/sh
echo "Xen xl: $0 $*"
exit 3
XL
    chmod +x "$W/usr/lib/xen-4.17/bin/xl"
    mkdir -p "$W/dev"
    mknod -m 666 "$W/dev/null" c 1 3 || fail "cannot make $W/dev/null"
    cp -L /bin/dash "$W/bin/sh"
    copy_libs /bin/dash ""
    run in_root /usr/sbin/xl info
    [ "$RC:$OUT" = "3:Xen xl: /usr/lib/xen-4.17/bin/xl info" ] ||
        fail_run "Xen's xl before the package: not the stand-in, exit status 3"

    # the package: preinst (dpkg-divert follows DPKG_ROOT), then its files
    run env DPKG_ROOT="$W" DPKG_ADMINDIR="$W/var/lib/dpkg" sh "$T/ctl/preinst" install
    [ "$RC" -eq 0 ] || fail_run "xl-snapshot's preinst"
    for d in $debs; do expect_ok dpkg -x "$d" "$W"; done
    copy_libs "$W/usr/bin/xl-snapshot" "$W/usr/lib/$MA"
    expect_eq "$(readlink "$W/usr/sbin/xl")" "../bin/xl-snapshot" "/usr/sbin/xl"

    # a command not ours: through our xl and the wrapper to Xen's
    run in_root /usr/sbin/xl info -n
    [ "$RC:$OUT" = "3:Xen xl: /usr/lib/xen-4.17/bin/xl info -n" ] ||
        fail_run "xl info through ours: not the stand-in, exit status 3"
    run in_root /usr/sbin/xl -v vcpu-list 'dom 1'
    [ "$RC:$OUT" = "3:Xen xl: /usr/lib/xen-4.17/bin/xl -v vcpu-list dom 1" ] ||
        fail_run "xl -v vcpu-list through ours: not the stand-in, exit status 3"
    # the library's xen driver (xl create, xl restore) runs it too
    divert=$(DPKG_ROOT="$W" DPKG_ADMINDIR="$W/var/lib/dpkg" dpkg-divert --truename /usr/sbin/xl)
    for f in "usr/lib/$MA/libxlsnapshot.so.0" usr/bin/xl-snapshot; do
        strings "$W/$f" | grep -qxF "$divert" || fail "/$f does not run Xen's xl as $divert"
    done

    # removed: our files go, the postrm gives Xen's xl back
    rm "$W/usr/sbin/xl"
    run env DPKG_ROOT="$W" DPKG_ADMINDIR="$W/var/lib/dpkg" sh "$T/ctl/postrm" remove
    [ "$RC" -eq 0 ] || fail_run "xl-snapshot's postrm"
    run in_root /usr/sbin/xl info
    [ "$RC:$OUT" = "3:Xen xl: /usr/lib/xen-4.17/bin/xl info" ] ||
        fail_run "Xen's xl after the postrm: not the stand-in, exit status 3"
}

# The scripts' man pages name every long option of their --help, and
# render (as packaged) without warnings
script_man_pages() {
    local s o opts
    for s in xl-snapshot-all xl-snapshot-rotate; do
        run "$R/usr/bin/$s" --help
        [ "$RC" -eq 0 ] || fail_run "$s --help"
        opts=$(grep -oE -- '--[a-z][a-z-]*' <<<"$OUT" | sort -u)
        expect_match "$opts" '^--help$' "$s --help's options"
        for o in $opts; do
            grep -qF -- "B<$o>" "$REPO/docs/man/$s.1.pod" ||
                fail "$s(1) does not document $o"
        done
        run env MANWIDTH=80 man --warnings=w -l "$R/usr/share/man/man1/$s.1.gz"
        [ "$RC:$ERR" = 0: ] || fail_run "man $s: fails or warns"
        expect_match "$OUT" "^NAME" "$s(1) rendered"
    done
}

soft_case "lintian: clean but for initial-upload-closes-no-bugs" lintian_clean
soft_case "libxlsnapshot-dev's dependencies give its .pc's modules" dev_depends
soft_case "Xen's xl behind ours, with Debian's xen-utils-wrapper (chroot)" xen_wrapper
soft_case "the scripts' man pages name their options" script_man_pages
finish
