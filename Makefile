# Makefile - libxl-snapshot
#
# Rules only: the knobs (PREFIX, CFLAGS, compiled-in paths...) are in
# Config.mk.
#
#   make                  library (shared + static) and the xl front end,
#                         and their test build (build/test: fault injection)
#   make release          only what is installed and packaged
#   make check            install missing Debian packages (as root), build,
#                         run unit tests, symbol check, real-QEMU tests,
#                         the Ceph tests, the Xen tests
#   make demo             install missing packages, build, scripts/demo.sh
#   make bench            run bench/*.sh
#   make check-ceph       install missing Ceph packages (as root), build,
#                         run tests/ceph/run.sh (a throw-away one-node
#                         cluster, tools/ceph-util against it)
#   make install          DESTDIR=... PREFIX=... [INSTALL_AS_XL=y]
#   make clean
#
# Every libxl-snapshot/*.c goes into the library and every xl/*.c into
# the front end, so adding a file needs no change here.  The library
# objects are built once, -fPIC -fvisibility=hidden, and used for both
# the shared and the static library: only LIBXLSNAP_EXPORT names
# leave the .so.  They are built a second time into build/test, with the
# fault injection in (the test variant, below): the tests' xl and the
# unit tests, linked against its .a (reaching the internal libxl__
# functions too), use that one.
#
# Two front-end binaries are linked from the same objects:
#  - xl/xl runs from the tree: its RUNPATH is $ORIGIN/../libxl-snapshot,
#    so ./xl/xl finds the freshly built library without installing;
#    and xl/tree/xl_tree.o, linked into it alone, makes it run the
#    tree's tools/vhd-util and tools/ceph-util (from its own directory,
#    as $ORIGIN).
#  - xl/xl.install is what `make install` copies.  It must not look in
#    $ORIGIN/../libxl-snapshot (a directory next to $(BINDIR) that
#    nobody controls), so its RUNPATH is $(LIBDIR), or nothing when
#    LIBDIR is one of the dynamic linker's built-in directories (where
#    a RUNPATH would be redundant).  A RUNPATH on /usr/local/lib means
#    the installed xl-snapshot works without running ldconfig.
# xl.install and the .pc are redone when PREFIX/LIBDIR change, and the
# library recompiled when its compiled-in defaults change (the stamps).

include Config.mk

# `make V=1` shows the full commands; by default one line per target.
ifeq ($(V),1)
Q       :=
say      = @:
else
Q       := @
say      = @printf '  %-7s %s\n' $(1) $(2);
endif

LIB_SRCS    := $(wildcard libxl-snapshot/*.c)
# the fault injection (libxl_snapshot_fault.c) is only in the test build
LIB_OBJS    := $(filter-out %/libxl_snapshot_fault.o,$(LIB_SRCS:.c=.o))
SHLIB_NAME  := libxlsnapshot.so.$(SONAME_MAJOR)
SHLIB       := libxl-snapshot/$(SHLIB_NAME)
SHLIB_LINK  := libxl-snapshot/libxlsnapshot.so
STLIB       := libxl-snapshot/libxlsnapshot.a
PCFILE      := libxl-snapshot/libxlsnapshot.pc
# The build tree's own, for PKG_CONFIG_PATH=<tree>/libxl-snapshot:
# pkg-config prefers NAME-uninstalled.pc, under both names the
# installed .pc has (libxl-snapshot.pc is a link to libxlsnapshot.pc).
PCFILES_UNINSTALLED := libxl-snapshot/libxlsnapshot-uninstalled.pc \
                       libxl-snapshot/libxl-snapshot-uninstalled.pc

XL_SRCS     := $(wildcard xl/*.c)
XL_OBJS     := $(XL_SRCS:.c=.o)
# xl/xl only: the tree's tools (xl/tree/xl_tree.c)
XL_TREE_OBJS := xl/tree/xl_tree.o
XL_BINS     := $(if $(XL_SRCS),xl/xl xl/xl.install)
VHD_UTIL_BIN := tools/vhd-util
# tools/ceph-util: only where librbd-dev and librados-dev are (their
# headers); elsewhere the build says it is skipped, in one line, and the
# library's Ceph disks and store report that the tool is missing
HAVE_CEPH   := $(shell printf '\043include <rbd/librbd.h>\n\043include <rados/librados.h>\n' | \
                 $(CC) $(CPPFLAGS) -E -x c - >/dev/null 2>&1 && echo y)
CEPH_UTIL_BIN := $(if $(HAVE_CEPH),tools/ceph-util,ceph-util-skipped)
MAN_PAGES   := $(patsubst %.pod,%,$(wildcard docs/man/*.pod))

UNIT_SRCS   := $(wildcard tests/unit/test_*.c)
UNIT_OBJS   := $(UNIT_SRCS:.c=.o) tests/unit/main.o tests/unit/helpers.o
UNIT_BIN    := tests/unit/run-unit
UNIT_GEN    := tests/unit/suites.gen.h

# Records the install-time settings baked into xl.install and the .pc;
# rewritten only when they change, so a `make install PREFIX=/usr`
# after a plain `make` relinks what depends on them.
CONFIG_STAMP := .config.stamp
CONFIG_VARS  := $(VERSION) $(PREFIX) $(LIBDIR) $(INCLUDEDIR)
# Likewise for the run-time defaults compiled into the library.
DEFINES_STAMP := .defines.stamp

MULTIARCH   := $(shell $(CC) -print-multiarch 2>/dev/null)
SYSTEM_LIBDIRS := /lib /usr/lib /lib64 /usr/lib64 \
                  $(if $(MULTIARCH),/lib/$(MULTIARCH) /usr/lib/$(MULTIARCH))
INSTALL_RPATH := $(if $(filter $(SYSTEM_LIBDIRS),$(patsubst %/,%,$(LIBDIR))),,\
                   -Wl,-rpath,$(LIBDIR))

BASE_CFLAGS := -D_GNU_SOURCE -Ilibxl-snapshot $(PKG_CFLAGS) $(DEFINES) -MMD -MP
LIB_CFLAGS  := $(BASE_CFLAGS) -fPIC -fvisibility=hidden
XL_CFLAGS   := $(BASE_CFLAGS) -Ixl
UNIT_CFLAGS := $(BASE_CFLAGS) $(TEST_PKG_CFLAGS) -Itests/unit

.PHONY: all release check check-xen check-lvm check-package demo bench install uninstall clean unit-tests FORCE \
        fuzz fuzz-build fuzz-regress check-asan test-build check-release-lib \
        check-ceph ceph-util-skipped
.DELETE_ON_ERROR:

all: release test-build $(PCFILES_UNINSTALLED)

# what is installed and packaged (debian/rules builds only this)
release: $(SHLIB) $(SHLIB_LINK) $(STLIB) $(PCFILE) $(XL_BINS) $(VHD_UTIL_BIN) \
     $(CEPH_UTIL_BIN) $(MAN_PAGES)

# ---------------------------------------------------------------- man pages

# docs/man/NAME.SECTION.pod -> docs/man/NAME.SECTION, as Xen's docs
docs/man/%: docs/man/%.pod
	$(call say,POD2MAN,$@)
	$(Q)$(POD2MAN) --section=$(subst .,,$(suffix $@)) \
	    --center="libxl-snapshot" --release="libxl-snapshot $(VERSION)" \
	    --name="$(basename $(notdir $@))" $< $@

# ---------------------------------------------------------------- vhd-util

$(VHD_UTIL_BIN): tools/vhd-util.c
	$(call say,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(LDFLAGS)

# ---------------------------------------------------------------- ceph-util

tools/ceph-util: tools/ceph-util.c
	$(call say,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(LDFLAGS) $(CEPH_LIBS)

ceph-util-skipped:
	@echo "  SKIP    tools/ceph-util (no <rbd/librbd.h> and <rados/librados.h>: install librbd-dev librados-dev)"

# ---------------------------------------------------------------- library

libxl-snapshot/%.o: libxl-snapshot/%.c $(DEFINES_STAMP)
	$(call say,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LIB_CFLAGS) -c -o $@ $<

$(SHLIB): $(LIB_OBJS)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -shared -Wl,-soname,$(SHLIB_NAME) -Wl,--no-undefined \
	    -o $@ $(LIB_OBJS) $(PKG_LIBS)

$(SHLIB_LINK): $(SHLIB)
	ln -sf $(SHLIB_NAME) $@

$(STLIB): $(LIB_OBJS)
	$(call say,AR,$@)
	$(Q)rm -f $@
	$(Q)$(AR) rcs $@ $(LIB_OBJS)

$(CONFIG_STAMP): FORCE
	@echo '$(CONFIG_VARS)' | cmp -s - $@ || echo '$(CONFIG_VARS)' > $@

$(DEFINES_STAMP): FORCE
	@echo '$(DEFINES)' | cmp -s - $@ || echo '$(DEFINES)' > $@

$(PCFILE): libxl-snapshot/libxlsnapshot.pc.in $(CONFIG_STAMP)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    $< > $@

$(PCFILES_UNINSTALLED): libxl-snapshot/libxlsnapshot-uninstalled.pc.in $(CONFIG_STAMP)
	sed -e 's|@VERSION@|$(VERSION)|g' $< > $@

# ---------------------------------------------------------------- xl

xl/%.o: xl/%.c
	$(call say,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(XL_CFLAGS) -c -o $@ $<

xl/xl: $(XL_OBJS) $(XL_TREE_OBJS) $(SHLIB_LINK)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(XL_OBJS) $(XL_TREE_OBJS) -Llibxl-snapshot -lxlsnapshot \
	    -Wl,-rpath,'$$ORIGIN/../libxl-snapshot' $(PKG_LIBS)

xl/xl.install: $(XL_OBJS) $(SHLIB_LINK) $(CONFIG_STAMP)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(XL_OBJS) -Llibxl-snapshot -lxlsnapshot \
	    $(INSTALL_RPATH) $(PKG_LIBS)

# ---------------------------------------------------------------- test variant
#
# The library again, compiled with -DLIBXL_SNAPSHOT_TESTING: it alone has
# the fault injection (libxl_snapshot_fault.c, XL_SNAPSHOT_FAULT), as
# libxl has libxenlight_test.so beside libxenlight.so.  In the release
# library above (installed, packaged, run by `make demo`) the fault
# points are no-ops, compiled out.  build/test is laid out as the tree
# (xl/xl, libxl-snapshot/, tools/vhd-util), so its xl, linked from the
# same front-end objects, finds its library and tools through $ORIGIN.
# The real-QEMU tests (tests/qemu/lib.sh), the Xen test host's fault
# scenarios and the unit tests use it.  Same soname: LD_LIBRARY_PATH
# puts the test library under an installed xl-snapshot too.

TEST_DIR      := build/test
TEST_LIB_OBJS := $(patsubst libxl-snapshot/%.c,$(TEST_DIR)/lib/%.o,$(LIB_SRCS))
TEST_SHLIB    := $(TEST_DIR)/libxl-snapshot/$(SHLIB_NAME)
TEST_STLIB    := $(TEST_DIR)/libxl-snapshot/libxlsnapshot.a
TEST_XL       := $(TEST_DIR)/xl/xl
TEST_VHD_UTIL := $(TEST_DIR)/tools/vhd-util
TEST_CEPH_UTIL := $(if $(HAVE_CEPH),$(TEST_DIR)/tools/ceph-util)
TEST_CFLAGS   := -DLIBXL_SNAPSHOT_TESTING
.SECONDARY: $(TEST_LIB_OBJS)

$(TEST_DIR)/lib/%.o: libxl-snapshot/%.c $(DEFINES_STAMP)
	$(call say,TESTCC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LIB_CFLAGS) $(TEST_CFLAGS) -c -o $@ $<

$(TEST_SHLIB): $(TEST_LIB_OBJS)
	$(call say,TESTLD,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -shared -Wl,-soname,$(SHLIB_NAME) -Wl,--no-undefined \
	    -o $@ $(TEST_LIB_OBJS) $(PKG_LIBS)

$(TEST_STLIB): $(TEST_LIB_OBJS)
	$(call say,TESTAR,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)rm -f $@
	$(Q)$(AR) rcs $@ $(TEST_LIB_OBJS)

$(TEST_XL): $(XL_OBJS) $(XL_TREE_OBJS) $(TEST_SHLIB)
	$(call say,TESTLD,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(XL_OBJS) $(XL_TREE_OBJS) $(TEST_SHLIB) \
	    -Wl,-rpath,'$$ORIGIN/../libxl-snapshot' $(PKG_LIBS)

$(TEST_VHD_UTIL): $(VHD_UTIL_BIN)
	$(Q)mkdir -p $(dir $@)
	$(Q)ln -sf ../../../$(VHD_UTIL_BIN) $@

$(TEST_DIR)/tools/ceph-util: tools/ceph-util
	$(Q)mkdir -p $(dir $@)
	$(Q)ln -sf ../../../tools/ceph-util $@

test-build: $(if $(XL_SRCS),$(TEST_XL)) $(TEST_SHLIB) $(TEST_STLIB) $(TEST_VHD_UTIL) \
    $(TEST_CEPH_UTIL)

# The release library has no fault hook: no symbol, no trace of the
# variable (the test library, built alike, must have both, or this
# check would prove nothing).  Run by `make check`; test-69 checks the
# packaged library likewise.
check-release-lib: $(SHLIB) $(TEST_SHLIB)
	@set -e; \
	if ! nm $(TEST_SHLIB) | grep -q 'libxl__fault_point' || \
	   ! strings $(TEST_SHLIB) | grep -q XL_SNAPSHOT_FAULT; then \
	    echo "check-release-lib: the test library has no fault hook" >&2; \
	    exit 1; fi; \
	if nm $(SHLIB) | grep 'libxl__fault_\|fault_kill'; then \
	    echo "check-release-lib: $(SHLIB) has fault symbols" >&2; exit 1; fi; \
	if strings $(SHLIB) | grep 'XL_SNAPSHOT_FAULT\|fault inject'; then \
	    echo "check-release-lib: $(SHLIB) has the fault hook" >&2; exit 1; fi; \
	echo "check-release-lib: $(SHLIB) has no fault hook"

# ---------------------------------------------------------------- tests

tests/unit/%.o: tests/unit/%.c
	$(call say,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(UNIT_CFLAGS) -c -o $@ $<

# Regenerated every run; the script rewrites the header only when its
# content changes, so added or removed test functions are picked up
# without needless rebuilds.
$(UNIT_GEN): FORCE
	@scripts/gen-test-suites.sh $@ $(UNIT_SRCS)

tests/unit/main.o: $(UNIT_GEN)

$(UNIT_BIN): $(UNIT_OBJS) $(TEST_STLIB)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(UNIT_OBJS) $(TEST_STLIB) $(PKG_LIBS) $(TEST_PKG_LIBS)

unit-tests: $(UNIT_BIN)

# install-deps.sh runs first, in its own step: the pkg-config flags of
# this make run were computed before it could install anything, so the
# build is a fresh make.
check:
	scripts/install-deps.sh
	scripts/install-deps.sh $(FUZZ_PACKAGES)
	scripts/install-deps.sh $(CEPH_PACKAGES)
	tests/xen/install-packages.sh
	$(MAKE) -j$(CHECK_JOBS) all unit-tests check-asan fuzz-build check-release-lib
	tests/run-all.sh

# Ceph (tests/ceph): installs the Ceph packages when missing (as root),
# builds (tools/ceph-util needs librbd-dev and librados-dev), and runs
# tests/ceph/run.sh: one throw-away single-node cluster (a mon and a
# memstore OSD, on port $$XL_SNAPSHOT_CEPH_PORT, default 16789) for every
# tests/ceph/test-*.sh, stopped by PID at the end.  `make check` runs
# it too (tests/run-all.sh).
check-ceph:
	scripts/install-deps.sh
	scripts/install-deps.sh $(CEPH_PACKAGES)
	$(MAKE) all
	tests/ceph/run.sh

# Real Xen (tests/xen): installs the packages it needs (as
# root), boots Xen 4.17 and a dom0 holding this tree's xl and library
# under QEMU (TCG), and runs the snapshot scenarios with the xen driver
# on a PV guest.  Pass or fail from the serial console's markers.
check-xen:
	scripts/install-deps.sh
	tests/xen/install-packages.sh
	$(MAKE) all
	tests/xen/run.sh

# The Debian packages: built from a copy of the tree, unpacked, checked
# (also part of `make check`, as tests/qemu/test-69-package.sh).
check-package:
	scripts/install-deps.sh
	$(MAKE) all
	tests/qemu/test-69-package.sh

# LVM for real: device-mapper works in the Xen test host's dom0 (this
# machine's kernel has none), so the LVM scenarios (9, 9t, 9n) run
# there; this boots that host and passes or fails on them alone.
check-lvm:
	scripts/install-deps.sh
	tests/xen/install-packages.sh
	$(MAKE) all
	XEN_TEST_SCENARIO_LIST="9 9t 9n" tests/xen/run.sh

# ---------------------------------------------------------------- fuzz
#
# libFuzzer targets (tests/fuzz/fuzz_*.c), linked with the library built
# again by clang with ASan and UBSan into build/fuzz.  `make fuzz` runs
# each for $(FUZZ_TIME) s on a copy of its seeds (tests/fuzz/seeds/NAME),
# keeping what it finds in build/fuzz/corpus-NAME and crashes in
# build/fuzz/crash-NAME-*; `make fuzz-regress` only runs every seed and
# every kept crash input (tests/fuzz/crashes/NAME) once.

FUZZ_LIB_OBJS := $(patsubst libxl-snapshot/%.c,$(FUZZ_DIR)/lib/%.o,$(LIB_SRCS))
.SECONDARY: $(FUZZ_LIB_OBJS)
FUZZ_BINS     := $(patsubst tests/fuzz/fuzz_%.c,$(FUZZ_DIR)/fuzz_%,\
                   $(wildcard tests/fuzz/fuzz_*.c))

$(FUZZ_DIR)/lib/%.o: libxl-snapshot/%.c $(DEFINES_STAMP)
	$(call say,FUZZCC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(LIB_CFLAGS) -c -o $@ $<

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_LIB_OBJS)
	$(call say,FUZZLD,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(BASE_CFLAGS) -Itests/fuzz \
	    -o $@ $< $(FUZZ_LIB_OBJS) $(PKG_LIBS)

fuzz-build: $(FUZZ_BINS)

fuzz:
	scripts/install-deps.sh $(FUZZ_PACKAGES)
	$(MAKE) fuzz-build
	@set -e; for b in $(FUZZ_BINS); do \
	    n=$${b##*/fuzz_}; c=$(FUZZ_DIR)/corpus-$$n; \
	    mkdir -p $$c; cp -n tests/fuzz/seeds/$$n/* $$c/ 2>/dev/null || true; \
	    echo "== fuzz $$n ($(FUZZ_TIME) s)"; \
	    LSAN_OPTIONS=suppressions=tests/fuzz/lsan.supp \
	    $$b -max_total_time=$(FUZZ_TIME) -print_final_stats=1 \
	        -artifact_prefix=$(FUZZ_DIR)/crash-$$n- $$c 2>&1 | \
	        grep -E '^(stat::number_of_executed_units|==|SUMMARY|Done)' ; \
	done

fuzz-regress: fuzz-build
	@set -e; for b in $(FUZZ_BINS); do \
	    n=$${b##*/fuzz_}; \
	    files=$$(ls tests/fuzz/seeds/$$n/* tests/fuzz/crashes/$$n/* 2>/dev/null || true); \
	    LSAN_OPTIONS=suppressions=tests/fuzz/lsan.supp \
	    $$b $$files >$(FUZZ_DIR)/regress-$$n.log 2>&1 || \
	        { tail -n 30 $(FUZZ_DIR)/regress-$$n.log; exit 1; }; \
	    echo "fuzz-regress $$n: $$(echo $$files | wc -w) inputs"; \
	done

# ---------------------------------------------------------------- asan
#
# The unit tests again, with the library and the tests built with
# AddressSanitizer and UndefinedBehaviorSanitizer (build/asan):
# tests/run-all.sh runs them, so `make check` does.

ASAN_LIB_OBJS  := $(patsubst libxl-snapshot/%.c,$(ASAN_DIR)/lib/%.o,$(LIB_SRCS))
ASAN_UNIT_OBJS := $(patsubst tests/unit/%.c,$(ASAN_DIR)/unit/%.o,\
                    $(UNIT_SRCS) tests/unit/main.c tests/unit/helpers.c)
.SECONDARY: $(ASAN_LIB_OBJS) $(ASAN_UNIT_OBJS)

$(ASAN_DIR)/lib/%.o: libxl-snapshot/%.c $(DEFINES_STAMP)
	$(call say,ASANCC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $(ASAN_CFLAGS) $(LIB_CFLAGS) $(TEST_CFLAGS) -c -o $@ $<

$(ASAN_DIR)/unit/%.o: tests/unit/%.c $(UNIT_GEN)
	$(call say,ASANCC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $(ASAN_CFLAGS) $(UNIT_CFLAGS) -c -o $@ $<

$(ASAN_DIR)/run-unit: $(ASAN_UNIT_OBJS) $(ASAN_LIB_OBJS)
	$(call say,ASANLD,$@)
	$(Q)$(CC) $(LDFLAGS) $(ASAN_CFLAGS) -o $@ $^ $(PKG_LIBS) $(TEST_PKG_LIBS)

check-asan: $(ASAN_DIR)/run-unit

# the release build: the library as installed, no fault injection
demo:
	scripts/install-deps.sh
	$(MAKE) release
	bash scripts/demo.sh

# Benchmarks (bench/*.sh, lib-bench.sh their helpers): one line per
# figure, and all of them as JSON in $(BENCH_JSON).  BENCH_QUICK=1: tiny
# sizes (make check runs it so, through tests/qemu/test-63-bench-quick.sh).
BENCH_JSON ?= bench/results.json
bench: all
	scripts/install-deps.sh time strace
	@set -e; r=$(abspath $(BENCH_JSON)).lines; : > $$r; \
	q=$$(qemu-system-x86_64 --version | head -n 1 | awk '{print $$4}'); \
	echo "machine: $$(nproc) CPUs, QEMU $$q"; \
	for b in $(sort $(filter-out bench/lib-%,$(wildcard bench/*.sh))); do \
	    echo "== $$b"; BENCH_RESULTS=$$r bash $$b; \
	done; \
	jq -s --argjson n "$$(nproc)" --arg q "$$q" \
	    '{machine: {nproc: $$n, qemu: $$q}, figures: .}' $$r > $(BENCH_JSON); \
	rm -f $$r; echo "bench: $$(jq '.figures | length' $(BENCH_JSON)) figures in $(BENCH_JSON)"

# ---------------------------------------------------------------- install

install: release
	$(INSTALL) -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) \
	    $(DESTDIR)$(BINDIR) $(DESTDIR)$(PKGCONFIGDIR)
	$(INSTALL) -m 755 $(SHLIB) $(DESTDIR)$(LIBDIR)/$(SHLIB_NAME)
	ln -sf $(SHLIB_NAME) $(DESTDIR)$(LIBDIR)/libxlsnapshot.so
	$(INSTALL) -m 644 $(STLIB) $(DESTDIR)$(LIBDIR)/libxlsnapshot.a
	$(INSTALL) -m 644 libxl-snapshot/libxl_snapshot.h $(DESTDIR)$(INCLUDEDIR)/
	$(INSTALL) -m 644 $(PCFILE) $(DESTDIR)$(PKGCONFIGDIR)/libxlsnapshot.pc
	ln -sf libxlsnapshot.pc $(DESTDIR)$(PKGCONFIGDIR)/libxl-snapshot.pc
	$(INSTALL) -d $(DESTDIR)$(BASHCOMPDIR)
	$(INSTALL) -m 644 scripts/bash-completion/xl-snapshot \
	    $(DESTDIR)$(BASHCOMPDIR)/xl-snapshot
	$(INSTALL) -m 755 scripts/xl-snapshot-rotate scripts/xl-snapshot-all \
	    $(DESTDIR)$(BINDIR)/
	$(INSTALL) -d $(DESTDIR)$(SYSTEMDUNITDIR)
	sed 's|/usr/bin/|$(BINDIR)/|g' scripts/systemd/xl-snapshot-rotate.service \
	    > $(DESTDIR)$(SYSTEMDUNITDIR)/xl-snapshot-rotate.service
	$(INSTALL) -m 644 scripts/systemd/xl-snapshot-rotate.timer \
	    $(DESTDIR)$(SYSTEMDUNITDIR)/
	$(INSTALL) -d $(DESTDIR)$(LIBEXECDIR)/libxl-snapshot
	$(INSTALL) -m 755 $(VHD_UTIL_BIN) $(DESTDIR)$(LIBEXECDIR)/libxl-snapshot/vhd-util
ifneq ($(HAVE_CEPH),)
	$(INSTALL) -m 755 tools/ceph-util $(DESTDIR)$(LIBEXECDIR)/libxl-snapshot/ceph-util
endif
ifneq ($(XL_SRCS),)
	$(INSTALL) -m 755 xl/xl.install $(DESTDIR)$(BINDIR)/xl-snapshot
ifeq ($(INSTALL_AS_XL),y)
	$(INSTALL) -m 755 xl/xl.install $(DESTDIR)$(BINDIR)/xl
# bash-completion loads completions/xl for xl: ours (it hands Xen's
# subcommands to Xen's _xl); PREFIX=/usr/local's comes before Xen's
	$(INSTALL) -m 644 scripts/bash-completion/xl-snapshot \
	    $(DESTDIR)$(BASHCOMPDIR)/xl
endif
endif
ifneq ($(wildcard configs/*.cfg),)
	$(INSTALL) -d $(DESTDIR)$(DATADIR)/libxl-snapshot/examples
	$(INSTALL) -m 644 $(wildcard configs/*.cfg configs/*.xml) \
	    $(DESTDIR)$(DATADIR)/libxl-snapshot/examples/
endif
# the host's settings, a conffile: never overwritten, not uninstalled
	$(INSTALL) -d $(DESTDIR)$(XEN_CONFIG_DIR)
	test -e $(DESTDIR)$(XEN_CONFIG_DIR)/xl-snapshot.conf || \
	    $(INSTALL) -m 644 configs/xl-snapshot.conf \
	        $(DESTDIR)$(XEN_CONFIG_DIR)/xl-snapshot.conf
	$(INSTALL) -d $(DESTDIR)$(DATADIR)/libxl-snapshot/schemas
	$(INSTALL) -m 644 docs/schema/domainsnapshot.rng \
	    $(DESTDIR)$(DATADIR)/libxl-snapshot/schemas/
	@set -e; for m in $(MAN_PAGES); do \
	    s=$${m##*.}; \
	    $(INSTALL) -d $(DESTDIR)$(MANDIR)/man$$s; \
	    echo "$(INSTALL) -m 644 $$m $(DESTDIR)$(MANDIR)/man$$s/"; \
	    $(INSTALL) -m 644 $$m $(DESTDIR)$(MANDIR)/man$$s/; \
	done

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/$(SHLIB_NAME) \
	    $(DESTDIR)$(LIBDIR)/libxlsnapshot.so \
	    $(DESTDIR)$(LIBDIR)/libxlsnapshot.a \
	    $(DESTDIR)$(INCLUDEDIR)/libxl_snapshot.h \
	    $(DESTDIR)$(PKGCONFIGDIR)/libxlsnapshot.pc \
	    $(DESTDIR)$(PKGCONFIGDIR)/libxl-snapshot.pc \
	    $(DESTDIR)$(BASHCOMPDIR)/xl-snapshot \
	    $(addprefix $(DESTDIR)$(MANDIR)/man,$(foreach m,$(MAN_PAGES),$(subst .,,$(suffix $(m)))/$(notdir $(m)))) \
	    $(DESTDIR)$(BINDIR)/xl-snapshot \
	    $(DESTDIR)$(BINDIR)/xl-snapshot-rotate $(DESTDIR)$(BINDIR)/xl-snapshot-all \
	    $(DESTDIR)$(SYSTEMDUNITDIR)/xl-snapshot-rotate.service \
	    $(DESTDIR)$(SYSTEMDUNITDIR)/xl-snapshot-rotate.timer
	rm -rf $(DESTDIR)$(LIBEXECDIR)/libxl-snapshot
ifeq ($(INSTALL_AS_XL),y)
	rm -f $(DESTDIR)$(BINDIR)/xl $(DESTDIR)$(BASHCOMPDIR)/xl
endif
	rm -rf $(DESTDIR)$(DATADIR)/libxl-snapshot

# ---------------------------------------------------------------- clean

clean:
	rm -f libxl-snapshot/*.o libxl-snapshot/*.d $(SHLIB) $(SHLIB_LINK) \
	    $(STLIB) $(PCFILE) $(PCFILES_UNINSTALLED) xl/*.o xl/*.d xl/tree/*.o xl/tree/*.d \
	    xl/xl xl/xl.install \
	    tests/unit/*.o tests/unit/*.d $(UNIT_BIN) $(UNIT_GEN) \
	    $(CONFIG_STAMP) $(DEFINES_STAMP) $(VHD_UTIL_BIN) tools/ceph-util $(MAN_PAGES)
	rm -rf build

FORCE:

# the sanitizer trees too: a header change must rebuild them (a struct
# that grew made stale ASan objects overflow)
-include $(LIB_OBJS:.o=.d) $(XL_OBJS:.o=.d) $(XL_TREE_OBJS:.o=.d) $(UNIT_OBJS:.o=.d) \
    $(TEST_LIB_OBJS:.o=.d) $(ASAN_LIB_OBJS:.o=.d) $(ASAN_UNIT_OBJS:.o=.d) $(FUZZ_LIB_OBJS:.o=.d)
