#!/bin/bash
# test-69-package.sh - the Debian packages: built, whole, lintian-clean,
# and Xen's xl still working behind ours
#
# scripts/build-debs.sh builds the four packages with
# `dpkg-buildpackage -us -uc -b` from a copy of the tree's tracked files
# (the build must not touch the tree; the result is kept per content,
# and the Xen test host installs the same packages), and each is
# unpacked with dpkg -x into one temporary root, which must then hold:
#  - the library, its .a and pkg-config file in the multiarch libdir,
#    the header, the man pages (the scripts' too), the bash completion,
#    vhd-util, the admin scripts and the systemd units; ceph-util, in
#    xl-snapshot-ceph alone (only it depends on librbd and librados: a
#    host without Ceph installs none of it);
#  - /usr/sbin/xl pointing at the front end, and completions/xl at our
#    completion;
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
#  - the upgrade from 0.1.0-1, which diverted Xen's xl to
#    /usr/sbin/xl.xen, by dpkg itself (dpkg --root on such a host,
#    maintainer scripts run chrootless): an upgrade that fails after the
#    preinst (a file of another package) puts 0.1.0-1's diversion back,
#    then the upgrade moves it to /usr/libexec/xl and Xen's completion
#    to completions/xl.xen; /usr/sbin/xl is there after every command
#    of the maintainer scripts; Xen's xl answers through ours after;
#  - bash completion as installed (dpkg --root on such a host):
#    bash-completion's own loader, looking in that root, loads ours for
#    `xl` and `xen`; `xl snap<TAB>` gives our commands, `xl cre<TAB>`
#    and `xl sav<TAB>` Xen's create and save (listed by our xl help from
#    Xen's xl through the wrapper), our options complete, and a Xen
#    command's arguments go to Xen's _xl, loaded from completions/xl.xen;
#  - the man pages of xl-snapshot-all and xl-snapshot-rotate name every
#    option of their --help, and render without warnings.
# The soft cases are functions, run through soft_case:
# shellcheck disable=SC2317
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

step "dpkg-buildpackage -us -uc -b (scripts/build-debs.sh)"
run "$REPO/scripts/build-debs.sh"
[ "$RC" -eq 0 ] || fail_run "the packages were not built"
DEBS=$OUT
VER=$(dpkg-parsechangelog -l "$REPO/debian/changelog" -SVersion)
debs=$(ls "$DEBS"/*.deb)
for p in libxlsnapshot1 libxlsnapshot-dev xl-snapshot xl-snapshot-ceph; do
    ls "$DEBS"/${p}_"$VER"_*.deb >/dev/null 2>&1 || fail "no $p $VER package: $debs"
done
XLDEB=$(ls "$DEBS"/xl-snapshot_"$VER"_*.deb)

step "unpacked (dpkg -x), the packages are whole"
R=$T/root
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
for d in $debs; do expect_ok dpkg -x "$d" "$R"; done
for f in usr/lib/$MA/libxlsnapshot.so.1 usr/lib/$MA/libxlsnapshot.so \
         usr/lib/$MA/libxlsnapshot.a usr/include/libxl_snapshot.h \
         usr/lib/$MA/pkgconfig/libxlsnapshot.pc usr/lib/$MA/pkgconfig/libxl-snapshot.pc \
         usr/bin/xl-snapshot usr/sbin/xl \
         usr/bin/xl-snapshot-rotate usr/bin/xl-snapshot-all \
         usr/libexec/libxl-snapshot/vhd-util lib/systemd/system/xl-snapshot-rotate.timer \
         lib/systemd/system/xl-snapshot-rotate.service usr/share/man/man1/xl-snapshot.1.gz \
         usr/share/man/man1/xl-snapshot-all.1.gz usr/share/man/man1/xl-snapshot-rotate.1.gz \
         usr/share/man/man5/xl.snapshot.cfg.5.gz usr/share/man/man3/libxl-snapshot.3.gz \
         usr/share/bash-completion/completions/xl-snapshot \
         usr/share/bash-completion/completions/xl \
         usr/libexec/libxl-snapshot/ceph-util; do
    [ -e "$R/$f" ] || fail "the packages lack /$f"
done
CEPHDEB=$(ls "$DEBS"/xl-snapshot-ceph_"$VER"_*.deb)
expect_eq "$(dpkg-deb -c "$CEPHDEB" | awk '$1 !~ /^d/ {print $NF}' | grep -v '^\./usr/share/doc/')" \
    ./usr/libexec/libxl-snapshot/ceph-util "xl-snapshot-ceph's files (but its doc)"
expect_match "$(dpkg-deb -f "$CEPHDEB" Depends)" "librbd1.*librados2|librados2.*librbd1" \
    "xl-snapshot-ceph's dependencies"
for d in "$DEBS"/libxlsnapshot1_*.deb "$XLDEB"; do
    expect_no_match "$(dpkg-deb -f "$d" Depends)" "librbd|librados" \
        "the dependencies of $(basename "$d")"
done
expect_eq "$(readlink "$R/usr/sbin/xl")" "../bin/xl-snapshot" "/usr/sbin/xl"
# the release library: the fault injection of the test build is compiled
# out (no symbol, no trace of its variable), in the .so and the .a
for f in usr/lib/$MA/libxlsnapshot.so.1 usr/lib/$MA/libxlsnapshot.a; do
    if nm -D --defined-only "$R/$f" 2>/dev/null | grep 'fault' ||
       nm "$R/$f" 2>/dev/null | grep 'libxl__fault_' ||
       strings "$R/$f" | grep 'XL_SNAPSHOT_FAULT\|fault inject'; then
        fail "the packaged /$f has the test build's fault injection"
    fi
done
expect_eq "$(readlink "$R/usr/share/bash-completion/completions/xl")" xl-snapshot \
    "completions/xl"
run dpkg-deb -I "$XLDEB"
expect_match "$OUT" "Depends:.*libxlsnapshot1 \\(= $VER\\)" "xl-snapshot's dependencies"
expect_match "$OUT" "preinst" "xl-snapshot's preinst"
run dpkg-deb -e "$XLDEB" "$T/ctl"
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
    run lintian -I --pedantic "$DEBS"/libxl-snapshot_"$VER"_*.changes
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
    deps=$(dep_names "$(dpkg-deb -f "$DEBS"/libxlsnapshot-dev_"$VER"_*.deb Depends)")
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

# xen-utils-common's files this test uses (the wrapper, /usr/sbin/xl
# and /usr/sbin/xen, the bash completion for xl and xen), in $T/xuc:
# as installed here (make check installs Xen's packages; their true
# names, should ours be installed), else from the package
xen_utils_common() {
    local xuc=$T/xuc f
    [ -d "$xuc" ] && return 0
    mkdir -p "$xuc"
    if dpkg-query -W -f='${Status}' xen-utils-common 2>/dev/null | grep -q ' installed$'; then
        mkdir -p "$xuc/usr/sbin" "$xuc/usr/lib" "$xuc/usr/share/bash-completion/completions"
        cp -a /usr/lib/xen-common "$xuc/usr/lib/"
        for f in /usr/sbin/xl /usr/sbin/xen /usr/share/bash-completion/completions/xl \
                 /usr/share/bash-completion/completions/xen; do
            cp -a "$(dpkg-divert --truename "$f")" "$xuc$f"
        done
    else
        (cd "$T" && apt-get download xen-utils-common) >/dev/null 2>&1 ||
            fail "xen-utils-common is neither installed nor downloadable"
        expect_ok dpkg -x "$(ls "$T"/xen-utils-common_*.deb)" "$xuc"
    fi
    if [ ! -f "$xuc/usr/lib/xen-common/bin/xen-utils-wrapper" ] ||
       [ "$(readlink "$xuc/usr/sbin/xl")" != ../lib/xen-common/bin/xen-utils-wrapper ] ||
       ! grep -q '^complete -F _xl .* xl' "$xuc/usr/share/bash-completion/completions/xl" ||
       [ "$(readlink "$xuc/usr/share/bash-completion/completions/xen")" != xl ]; then
        fail "xen-utils-common: /usr/sbin/xl is not the xen-utils-wrapper symlink, or its completion not the one this test knows" \
            "$(ls -l "$xuc/usr/sbin/xl" "$xuc/usr/share/bash-completion/completions" 2>&1)"
    fi
}

# xen_host W: a root laid out as a Debian Xen host, chroot-able: Xen 4.17
# running (/sys/hypervisor), xen-utils-common's files, a stand-in for
# Xen's xl in /usr/lib/xen-4.17/bin (its `help` as Xen's, listing
# create, list, info, save and sched-credit; else it prints how it was
# called and exits 3), dash as /bin/sh, /dev/null, an empty dpkg
# database
xen_host() {
    local W=$1 xuc=$T/xuc f
    xen_utils_common
    mkdir -p "$W/usr/sbin" "$W/usr/lib/xen-4.17/bin" "$W/var/lib/dpkg/info" \
             "$W/var/lib/dpkg/updates" "$W/var/lib/dpkg/triggers" \
             "$W/sys/hypervisor/version" "$W/bin" "$W/dev" \
             "$W/usr/share/bash-completion/completions"
    touch "$W/var/lib/dpkg/status" "$W/var/lib/dpkg/available"
    cp -a "$xuc/usr/lib/xen-common" "$W/usr/lib/"
    for f in /usr/sbin/xl /usr/sbin/xen /usr/share/bash-completion/completions/xl \
             /usr/share/bash-completion/completions/xen; do
        cp -a "$xuc$f" "$W$f"
    done
    echo xen > "$W/sys/hypervisor/type"
    echo 4 > "$W/sys/hypervisor/version/major"
    echo 17 > "$W/sys/hypervisor/version/minor"
    cat > "$W/usr/lib/xen-4.17/bin/xl" <<'XL'
#!/bin/sh
if [ "$*" = help ]; then
    printf '%s\n' 'Usage xl [-vfNtT] <subcommand> [args]' '' \
        'xl full list of subcommands:' '' \
        ' create              Create a domain from config file <filename>' \
        ' list                List information about all/some domains' \
        ' info                Get information about Xen host' \
        ' save                Save a domain state to restore later' \
        ' sched-credit        Get/set credit scheduler parameters'
    exit 0
fi
echo "Xen xl: $0 $*"
exit 3
XL
    chmod +x "$W/usr/lib/xen-4.17/bin/xl"
    mknod -m 666 "$W/dev/null" c 1 3 || fail "cannot make $W/dev/null"
    cp -L /bin/dash "$W/bin/sh"
    copy_libs /bin/dash ""
}

# dpkg_root W ARGS...: dpkg on the root W, maintainer scripts run
# chrootless (with DPKG_ROOT, as they support: the root has no dpkg)
dpkg_root() {
    local W=$1
    shift
    dpkg --root="$W" --force-script-chrootless --force-depends "$@"
}

# Xen's xl behind ours, with Debian's own xen-utils-wrapper
xen_wrapper() {
    local W=$T/xenroot divert f
    xen_host "$W"
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
    for f in "usr/lib/$MA/libxlsnapshot.so.1" usr/bin/xl-snapshot; do
        strings "$W/$f" | grep -qxF "$divert" || fail "/$f does not run Xen's xl as $divert"
    done
    # built here, under this test's XL_SNAPSHOT_RUN_DIR/STATE_DIR: the
    # package's defaults are still the system's
    strings "$W/usr/lib/$MA/libxlsnapshot.so.1" | grep -qxF /var/run/xen ||
        fail "the packaged library's run dir is not /var/run/xen"
    ! strings "$W/usr/lib/$MA/libxlsnapshot.so.1" | grep -qF "$T" ||
        fail "the packaged library names this test's directory $T"

    # removed: our files go, the postrm gives Xen's xl and completion back
    rm "$W/usr/sbin/xl" "$W/usr/share/bash-completion/completions/xl"
    run env DPKG_ROOT="$W" DPKG_ADMINDIR="$W/var/lib/dpkg" sh "$T/ctl/postrm" remove
    [ "$RC" -eq 0 ] || fail_run "xl-snapshot's postrm"
    expect_layout "$W" "after the postrm" "" wrapper - - xen -
    run in_root /usr/sbin/xl info
    [ "$RC:$OUT" = "3:Xen xl: /usr/lib/xen-4.17/bin/xl info" ] ||
        fail_run "Xen's xl after the postrm: not the stand-in, exit status 3"
}

# The maintainer scripts of 0.1.0-1 (commit 17995d4), which diverted
# Xen's xl to /usr/sbin/xl.xen
old_preinst() {
    cat <<'EOF'
#!/bin/sh
set -e
if [ "$1" = install ] || [ "$1" = upgrade ]; then
    dpkg-divert --package xl-snapshot --add --rename \
        --divert /usr/sbin/xl.xen /usr/sbin/xl
fi
EOF
}
old_postrm() {
    cat <<'EOF'
#!/bin/sh
set -e
if [ "$1" = remove ] || [ "$1" = abort-install ] || [ "$1" = disappear ]; then
    dpkg-divert --package xl-snapshot --remove --rename \
        --divert /usr/sbin/xl.xen /usr/sbin/xl
fi
EOF
}

# expect_layout W WHAT DIVERSIONS SBIN_XL SBIN_XL_XEN LIBEXEC_XL
#     COMPLETION_XL COMPLETION_XL_XEN: W's diversions (dpkg-divert
#     --list, sorted, ; after each) and what the files are: "wrapper"
#     (the link to xen-utils-wrapper), "ours" (a link to xl-snapshot),
#     "xen" (Xen's completion), "-" (absent)
expect_layout() {
    local W=$1 what=$2 f want got=''
    expect_eq "$(DPKG_ROOT="$W" DPKG_ADMINDIR="$W/var/lib/dpkg" dpkg-divert --list |
                 sort | tr '\n' ';')" "$3" "$what: the diversions"
    for f in usr/sbin/xl usr/sbin/xl.xen usr/libexec/xl \
             usr/share/bash-completion/completions/xl \
             usr/share/bash-completion/completions/xl.xen; do
        if [ -L "$W/$f" ] && [ "$(readlink "$W/$f")" = ../lib/xen-common/bin/xen-utils-wrapper ]; then
            got+="wrapper "
        elif [ -L "$W/$f" ] && [[ $(readlink "$W/$f") == *xl-snapshot ]]; then
            got+="ours "
        elif [ -f "$W/$f" ] && grep -q '^complete -F _xl ' "$W/$f"; then
            got+="xen "
        elif [ -e "$W/$f" ] || [ -L "$W/$f" ]; then
            got+="other "
        else
            got+="- "
        fi
    done
    want="$4 $5 $6 $7 $8 "
    expect_eq "$got" "$want" \
        "$what: sbin/xl sbin/xl.xen libexec/xl completions/xl completions/xl.xen"
}

# The upgrade from 0.1.0-1, by dpkg
upgrade() {
    local W=$T/uproot old=$T/old blk=$T/blocker c real div1 div2
    xen_host "$W"
    # 0.1.0-1: these files and its maintainer scripts, without
    # completions/xl (and without xl-snapshot-all, which the blocker
    # holds below)
    expect_ok dpkg-deb -R "$XLDEB" "$old"
    sed -i 's/^Version: .*/Version: 0.1.0-1/' "$old/DEBIAN/control"
    old_preinst > "$old/DEBIAN/preinst"
    old_postrm > "$old/DEBIAN/postrm"
    rm "$old/usr/share/bash-completion/completions/xl" "$old/usr/bin/xl-snapshot-all"
    sed -i '/ usr\/bin\/xl-snapshot-all$/d' "$old/DEBIAN/md5sums"
    expect_ok dpkg-deb -b "$old" "$T/old.deb"
    mkdir -p "$blk/DEBIAN" "$blk/usr/bin"
    echo blocker > "$blk/usr/bin/xl-snapshot-all"
    printf '%s\n' 'Package: xt-blocker' 'Version: 1' 'Architecture: all' \
        'Maintainer: test <test@example.org>' 'Description: holds a file of xl-snapshot' \
        > "$blk/DEBIAN/control"
    expect_ok dpkg-deb -b "$blk" "$T/blocker.deb"

    run dpkg_root "$W" --unpack "$T/old.deb"
    [ "$RC" -eq 0 ] || fail_run "dpkg --unpack 0.1.0-1"
    div1="diversion of /usr/sbin/xl to /usr/sbin/xl.xen by xl-snapshot;"
    expect_layout "$W" "0.1.0-1" "$div1" ours wrapper - xen -

    # dpkg-divert and mv as the maintainer scripts run them: each says
    # whether /usr/sbin/xl is still there after it
    mkdir -p "$T/shim"
    for c in dpkg-divert mv; do
        real=$(command -v "$c")
        cat > "$T/shim/$c" <<EOF
#!/bin/sh
$real "\$@"
rc=\$?
if [ -e "\$DPKG_ROOT/usr/sbin/xl" ]; then s=there; else s=MISSING; fi
echo "$c \$*: /usr/sbin/xl \$s" >> "$T/shim.log"
exit \$rc
EOF
        chmod +x "$T/shim/$c"
    done

    # an upgrade that fails after the preinst: back to 0.1.0-1's layout
    run dpkg_root "$W" --unpack "$T/blocker.deb"
    [ "$RC" -eq 0 ] || fail_run "dpkg --unpack the blocker"
    : > "$T/shim.log"
    run env PATH="$T/shim:$PATH" dpkg --root="$W" --force-script-chrootless \
        --force-depends --unpack "$XLDEB"
    if [ "$RC" -eq 0 ] || [[ $ERR != *"trying to overwrite '/usr/bin/xl-snapshot-all'"* ]]; then
        fail_run "the upgrade over the blocker: not refused for its file"
    fi
    expect_layout "$W" "the failed upgrade" "$div1" ours wrapper - xen -
    expect_eq "$(dpkg-query --admindir="$W/var/lib/dpkg" -W -f='${Version}' xl-snapshot)" \
        0.1.0-1 "the version after the failed upgrade"
    expect_no_match "$(cat "$T/shim.log")" MISSING "/usr/sbin/xl during the failed upgrade"
    expect_match "$(cat "$T/shim.log")" "^mv .*/usr/libexec/xl .*/usr/sbin/xl.xen" \
        "the abort-upgrade's rename back"

    # the upgrade
    run dpkg_root "$W" --remove xt-blocker
    [ "$RC" -eq 0 ] || fail_run "dpkg --remove the blocker"
    : > "$T/shim.log"
    run env PATH="$T/shim:$PATH" dpkg --root="$W" --force-script-chrootless \
        --force-depends --unpack "$XLDEB"
    [ "$RC" -eq 0 ] || fail_run "the upgrade from 0.1.0-1"
    div2="diversion of /usr/sbin/xl to /usr/libexec/xl by xl-snapshot;"
    div2+="diversion of /usr/share/bash-completion/completions/xl to /usr/share/bash-completion/completions/xl.xen by xl-snapshot;"
    expect_layout "$W" "upgraded" "$div2" ours - wrapper ours xen
    expect_eq "$(dpkg-query --admindir="$W/var/lib/dpkg" -W -f='${Version}' xl-snapshot)" \
        "$VER" "the version after the upgrade"
    expect_no_match "$(cat "$T/shim.log")" MISSING "/usr/sbin/xl during the upgrade"
    expect_match "$(cat "$T/shim.log")" "^mv .*/usr/sbin/xl.xen .*/usr/libexec/xl: /usr/sbin/xl there" \
        "the preinst's rename"
    # Xen's xl through ours
    expect_ok dpkg -x "$(ls "$DEBS"/libxlsnapshot1_"$VER"_*.deb)" "$W"
    copy_libs "$W/usr/bin/xl-snapshot" "$W/usr/lib/$MA"
    run in_root /usr/sbin/xl info -n
    [ "$RC:$OUT" = "3:Xen xl: /usr/lib/xen-4.17/bin/xl info -n" ] ||
        fail_run "xl info through ours after the upgrade: not the stand-in, exit status 3"
}

# Bash completion as installed: bash-completion's loader and helpers,
# looking in the root (XDG_DATA_DIRS), xl and xen in $PATH running the
# root's (chroot)
completion() {
    local W=$T/comproot c
    xen_host "$W"
    run dpkg_root "$W" --unpack "$XLDEB"
    [ "$RC" -eq 0 ] || fail_run "dpkg --unpack xl-snapshot"
    expect_ok dpkg -x "$(ls "$DEBS"/libxlsnapshot1_"$VER"_*.deb)" "$W"
    copy_libs "$W/usr/bin/xl-snapshot" "$W/usr/lib/$MA"
    mkdir -p "$T/cbin"
    for c in xl xen; do
        printf '#!/bin/sh\nexec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot %s /usr/sbin/%s "$@"\n' \
            "$W" "$c" > "$T/cbin/$c"
        chmod +x "$T/cbin/$c"
    done
    cat > "$T/complete.sh" <<'EOF'
. /usr/share/bash-completion/bash_completion
shopt -s extdebug
# c WORD...: the completions of the last word, as bash asks them: the
# command's spec (bash-completion's loader gives it on first use)
c() {
    local spec fn
    COMP_WORDS=("$@")
    COMP_CWORD=$(($# - 1))
    COMP_LINE="$*"
    COMP_POINT=${#COMP_LINE}
    COMPREPLY=()
    complete -p "$1" >/dev/null 2>&1 || _completion_loader "$1"
    spec=$(complete -p "$1")
    fn=${spec#*-F }
    fn=${fn%% *}
    "$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
    echo "$*|${COMPREPLY[*]}"
}
c xl snap
c xl snapshot-revert --f
c xl cre
c xl sav
echo "xl spec|$(complete -p xl)"
echo "ours from|$(declare -F _xl_snapshot | cut -d' ' -f3-)"
c xl save vm ''
echo "xen's from|$(declare -F _xl | cut -d' ' -f3-)"
echo "xl spec after|$(complete -p xl)"
c xen snapshot-l
echo "xen spec|$(complete -p xen)"
EOF
    run env -i HOME="$T" PATH="$T/cbin:/usr/sbin:/usr/bin:/sbin:/bin" \
        XDG_DATA_DIRS="$W/usr/share" BASH_COMPLETION_USER_DIR="$T/nothing" \
        bash --norc --noprofile "$T/complete.sh"
    [ "$RC" -eq 0 ] || fail_run "the completion script"
    local bc=$W/usr/share/bash-completion/completions
    expect_eq "$OUT" "xl snap|snapshot-create snapshot-list snapshot-info snapshot-dumpxml snapshot-check snapshot-chain snapshot-diff snapshot-recover snapshot-current snapshot-delete snapshot-revert snapshot-export-records snapshot-import-records
xl snapshot-revert --f|--force
xl cre|create
xl sav|save
xl spec|complete -F _xl_snapshot xl
ours from|$bc/xl
xl save vm |
xen's from|$bc/xl.xen
xl spec after|complete -F _xl_snapshot xl
xen snapshot-l|snapshot-list
xen spec|complete -F _xl_snapshot xen" "completions in the installed root"
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
soft_case "the upgrade from 0.1.0-1 (xl.xen), by dpkg --root" upgrade
soft_case "bash completion for xl and xen, as installed" completion
soft_case "the scripts' man pages name their options" script_man_pages
finish
