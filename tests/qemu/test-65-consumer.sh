#!/bin/bash
# test-65-consumer.sh - a program outside the tree, built against the
# installed library through pkg-config only, and run
#
# The program is the EXAMPLE of libxl-snapshot(3), cut out of
# docs/man/libxl-snapshot.3.pod, so the documented example compiles and
# works.  `make install PREFIX=<tmp>` installs the tree there (its
# .pc file then names that prefix); PKG_CONFIG_PATH points pkg-config at
# it (libxenlight's own .pc files come from the system); the program is
# linked with nothing but `pkg-config --cflags --libs libxl-snapshot`.
# It runs on a shut-off qemu-driver domain (a raw disk): an async
# snapshot, then an async active commit with progress; the test checks
# its output, the data through the chain, and that the disk is back on
# its image with the overlay merged.  The installed library has no
# fault injection (no symbol, no trace of XL_SNAPSHOT_FAULT).
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

P=$T/prefix
make -s -C "$REPO" install PREFIX="$P" >"$T/install.log" 2>&1 ||
    fail "make install PREFIX=$P failed: $(tail -3 "$T/install.log")"
for f in include/libxl_snapshot.h lib/libxlsnapshot.so.1 \
         lib/pkgconfig/libxl-snapshot.pc bin/xl-snapshot \
         libexec/libxl-snapshot/vhd-util share/man/man1/xl-snapshot.1 \
         share/man/man5/xl.snapshot.cfg.5 share/man/man3/libxl-snapshot.3 \
         share/bash-completion/completions/xl-snapshot bin/xl-snapshot-rotate \
         bin/xl-snapshot-all lib/systemd/system/xl-snapshot-rotate.service \
         lib/systemd/system/xl-snapshot-rotate.timer; do
    expect_file "$P/$f"
done
# the installed library is the release one: the fault injection of the
# tests' build (XL_SNAPSHOT_FAULT) is compiled out, in the .so and the .a
for f in lib/libxlsnapshot.so.1 lib/libxlsnapshot.a; do
    run nm "$P/$f"
    [ "$RC" -eq 0 ] && [ -n "$OUT" ] || fail_run "nm of the installed $f"
    expect_eq "$(grep 'libxl__fault_' <<<"$OUT"; strings "$P/$f" |
                 grep -E 'XL_SNAPSHOT_FAULT|fault inject')" "" \
        "fault injection in the installed $f"
done

step "the example of libxl-snapshot(3), built through pkg-config alone"
awk '/^=head1 EXAMPLE/ {on = 1; next} /^=head1/ {on = 0}
     on && /^    / {sub(/^    /, ""); print; next} on && /^$/ {print}' \
    "$REPO/docs/man/libxl-snapshot.3.pod" > "$T/example.c"
grep -q 'int main' "$T/example.c" || fail "no program in the man page's EXAMPLE"
export PKG_CONFIG_PATH=$P/lib/pkgconfig
run pkg-config --cflags --libs libxl-snapshot
[ "$RC" -eq 0 ] || fail_run "pkg-config does not know libxl-snapshot"
flags=$OUT
expect_match "$flags" "-L$P/lib" "pkg-config --libs"
expect_match "$flags" "-lxlsnapshot" "pkg-config --libs"
# shellcheck disable=SC2086  # the flags are words
run cc -Wall -Werror -o "$T/example" "$T/example.c" $flags
[ "$RC" -eq 0 ] || fail_run "the example does not build"

step "it runs: an async snapshot, an async commit with progress"
make_vm_config vm1
expect_ok qemu-io -f raw -c "write -P 0x5a 0 1M" "$IMG/vm1-xvdb.img"
export LD_LIBRARY_PATH=$P/lib
run "$T/example" "$CFG" xvdb s1
[ "$RC" -eq 0 ] || fail_run "the example failed"
expect_match "$OUT" "snapshot s1: xvdb is now on .*vm1-xvdb.s1.qcow2" "the snapshot's line"
expect_match "$OUT" "block commit: done" "the commit's line"
expect_match "$OUT" "xvdb: (running|completed) " "a progress line"
unset LD_LIBRARY_PATH
expect_eq "$(active_image vm1 xvdb)" "$IMG/vm1-xvdb.img" "xvdb's active image after the pivot"
read_pattern "$IMG/vm1-xvdb.img" 0x5a 0 1M raw
expect_no_file "$IMG/vm1-xvdb.s1.qcow2"
expect_ok xl snapshot-check "$CFG"
echo "PASS: consumer"
