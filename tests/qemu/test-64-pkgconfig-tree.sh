#!/bin/bash
# test-64-pkgconfig-tree.sh - a program built against the build tree,
# uninstalled, through pkg-config alone, and run
#
# `make` writes libxl-snapshot/libxlsnapshot-uninstalled.pc and
# libxl-snapshot-uninstalled.pc, which pkg-config prefers when
# PKG_CONFIG_PATH names the tree's libxl-snapshot directory: both names
# the installed .pc has (libxl-snapshot(3) says `pkg-config
# libxl-snapshot`) resolve to the tree's header and library.  The tiny
# program checks the capability macros at compile time, makes a
# context with libxlsnap_settings (driver and state dir set, the
# environment pointing elsewhere: the settings win), and takes a
# snapshot of a shut-off domain, synchronously, with NULL progress.
# It runs from the tree without LD_LIBRARY_PATH (the .pc's rpath).
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

command -v pkg-config >/dev/null 2>&1 || skip "pkg-config not found"
command -v cc >/dev/null 2>&1 || skip "cc not found"

step "pkg-config finds the build tree under both names"
export PKG_CONFIG_PATH=$REPO/libxl-snapshot
for name in libxl-snapshot libxlsnapshot; do
    run pkg-config --cflags --libs "$name"
    [ "$RC" -eq 0 ] || fail_run "pkg-config $name with PKG_CONFIG_PATH=<tree>"
    expect_match "$OUT" "-I$REPO/libxl-snapshot( |$)" "pkg-config --cflags $name"
    expect_match "$OUT" "-L$REPO/libxl-snapshot( |$)" "pkg-config --libs $name"
    expect_match "$OUT" "-lxlsnapshot" "pkg-config --libs $name"
done
run pkg-config --modversion libxl-snapshot
expect_eq "$OUT" "$(sed -n 's/^VERSION *?= *//p' "$REPO/Config.mk")" \
    "the tree's .pc version"

step "a program built with its flags alone"
cat > "$T/prog.c" <<'PROG'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libxl_snapshot.h>

#if !defined(LIBXLSNAP_HAVE_SNAPSHOT_SETTINGS) || \
    !defined(LIBXLSNAP_HAVE_SNAPSHOT_PROGRESS) || !defined(LIBXLSNAP_HAVE_BLOCKJOB)
#error "capability macros missing"
#endif

int main(int argc, char **argv)
{
    xentoollog_logger *lg = (xentoollog_logger *)
        xtl_createlogger_stdiostream(stderr, XTL_ERROR, 0);
    libxlsnap_settings s;
    libxlsnap_ctx *ctx;
    libxlsnap_domain_snapshot snap;
    int rc;

    if (argc != 4) return 2;
    libxlsnap_settings_init(&s);
    s.driver = LIBXLSNAP_DRIVER_QEMU;
    s.state_dir = strdup(argv[1]);
    rc = libxlsnap_ctx_alloc(&ctx, LIBXLSNAP_VERSION, 0, lg, &s);
    libxlsnap_settings_dispose(&s);
    if (rc) return 1;
    libxlsnap_domain_snapshot_init(&snap);
    snap.name = strdup(argv[3]);
    rc = libxlsnap_domain_snapshot_create(ctx, argv[2], &snap, 0, NULL, NULL);
    if (!rc)
        printf("%s: snapshot %s, %d disks, driver %s\n", argv[2], snap.name,
               snap.num_disks,
               libxlsnap_driver_to_string(libxlsnap_ctx_driver(ctx)));
    libxlsnap_domain_snapshot_dispose(&snap);
    libxlsnap_ctx_free(ctx);
    xtl_logger_destroy(lg);
    return rc ? 1 : 0;
}
PROG
# shellcheck disable=SC2046  # the flags are words
run cc -Wall -Werror -o "$T/prog" "$T/prog.c" $(pkg-config --cflags --libs libxl-snapshot)
[ "$RC" -eq 0 ] || fail_run "the program does not build against the tree"

step "it runs from the tree; the settings win over the environment"
make_vm_config vm1
mkdir -p "$T/settings-state"
run env -u LD_LIBRARY_PATH XL_SNAPSHOT_DRIVER=bogus \
    XL_SNAPSHOT_STATE_DIR="$T/env-state" "$T/prog" "$T/settings-state" "$CFG" s1
[ "$RC" -eq 0 ] || fail_run "the program failed"
expect_match "$OUT" "snapshot s1, 2 disks, driver qemu" "the program's line"
expect_no_file "$T/env-state"
run ldd "$T/prog"
expect_match "$OUT" "libxlsnapshot\\.so\\.[0-9]+ => $REPO/libxl-snapshot/" \
    "the library the program loads"
XL_SNAPSHOT_STATE_DIR=$T/settings-state expect_ok xl snapshot-list "$CFG"
expect_match "$OUT" "s1" "snapshot-list in the settings' state dir"
echo "PASS: pkgconfig-tree"
