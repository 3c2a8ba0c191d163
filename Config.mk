# Config.mk - build knobs for libxl-snapshot
#
# Every setting here may be overridden on the make command line
# (make PREFIX=/usr) or from the environment.  The directory and
# program settings are compiled into the library as defaults; at run
# time the XL_SNAPSHOT_* environment variables override them (see
# libxl_snapshot_core.c).

VERSION           ?= 0.2.0
SONAME_MAJOR      := 1

# Installation
PREFIX            ?= /usr/local
BINDIR            ?= $(PREFIX)/bin
LIBDIR            ?= $(PREFIX)/lib
INCLUDEDIR        ?= $(PREFIX)/include
MANDIR            ?= $(PREFIX)/share/man
DATADIR           ?= $(PREFIX)/share
LIBEXECDIR        ?= $(PREFIX)/libexec
BASHCOMPDIR       ?= $(DATADIR)/bash-completion/completions
SYSTEMDUNITDIR    ?= $(PREFIX)/lib/systemd/system
PKGCONFIGDIR      ?= $(LIBDIR)/pkgconfig
DESTDIR           ?=
# y: also install the front end as $(BINDIR)/xl (shadows Xen's xl
# when BINDIR comes first in $PATH).  Default: only xl-snapshot.
INSTALL_AS_XL     ?= n

# Run-time defaults compiled into the library.  Set on make's command
# line only: the same names are the library's run-time environment
# variables, and a test's (or a user's) must never become a package's
# built-in default (a .deb built inside a test once had the test's run
# dir in it).
XL_SNAPSHOT_STATE_DIR = /var/lib/xen/snapshots
XL_SNAPSHOT_RUN_DIR   = /var/run/xen
# Where snapshot records and the per-domain locks live, unless
# XL_SNAPSHOT_STORE says otherwise at run time: "dir" (files under the
# state dir, one host) or "rados:POOL" (one RADOS object a domain, a
# RADOS lock with a lease: every host of a Ceph pool shares the tree;
# with CEPH_CONF, XL_SNAPSHOT_CEPH_ID, XL_SNAPSHOT_LOCK_LEASE, see
# README "Records shared by a pool: the RADOS store")
XL_SNAPSHOT_STORE     = dir
XEN_CONFIG_DIR        ?= /etc/xen
QEMU                  ?= qemu-system-x86_64
QEMU_IMG              ?= qemu-img
LVM                   ?= lvm
# the in-tree vhd-util by default; blktap's (XCP-ng) works too
VHD_UTIL              ?= $(LIBEXECDIR)/libxl-snapshot/vhd-util
# the in-tree ceph-util (tools/ceph-util.c: librbd and librados), the
# one program that talks to Ceph; built when librbd-dev and
# librados-dev are installed
CEPH_UTIL             ?= $(LIBEXECDIR)/libxl-snapshot/ceph-util
XEN_QEMU              ?= /usr/libexec/xen-qemu-system-i386
SYSTEM_XL             ?= /usr/sbin/xl

# Built-in defaults of the snapshot settings (libxl__snapshot_setting:
# the environment, the domain config and $(XEN_CONFIG_DIR)/xl-snapshot.conf
# override them at run time): the longest backing chain (images, base
# included) snapshot-create may make, and the threshold (percent) of the
# LVM space guards: a thin pool whose data or metadata use is at or over
# it, or a volume group whose use a thick snapshot's COW would take over
# it, refuses a snapshot (--force overrides; xl-snapshot(1), SPACE GUARDS).
SNAPSHOT_MAX_CHAIN       ?= 16
SNAPSHOT_SPACE_THRESHOLD ?= 90

# Tools
# make predefines CC=cc and AR=ar; only replace those built-in values.
ifeq ($(origin CC),default)
CC                := gcc
endif
ifeq ($(origin AR),default)
AR                := ar
endif
PKG_CONFIG        ?= pkg-config
POD2MAN           ?= pod2man
INSTALL           ?= install

# Replaceable as a whole (make CFLAGS=-O0\ -g).  What the build needs
# regardless (-fPIC, include paths, -D defines, -MMD) is added by the
# Makefile.
CFLAGS            ?= -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter \
                     -Wno-missing-field-initializers -D_GNU_SOURCE
# The preprocessor's and the linker's, on every compile and link of
# the library, xl, vhd-util, ceph-util and the unit tests: from the environment
# as dpkg-buildflags sets them (CPPFLAGS=-D_FORTIFY_SOURCE=2,
# LDFLAGS=-Wl,-z,relro ...) or on the make command line.
CPPFLAGS          ?=
LDFLAGS           ?=

# Libraries, found with pkg-config.  Evaluated once per make run; the
# check/demo targets re-run make after installing what is missing.
PKGS              := xlutil xenlight xentoollog xenstore yajl libxml-2.0
TEST_PKGS         := cunit
PKG_CFLAGS        := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS          := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
TEST_PKG_CFLAGS   := $(shell $(PKG_CONFIG) --cflags $(TEST_PKGS) 2>/dev/null)
TEST_PKG_LIBS     := $(shell $(PKG_CONFIG) --libs $(TEST_PKGS) 2>/dev/null || echo -lcunit)
XENLIGHT_LIBDIR   := $(shell $(PKG_CONFIG) --variable=libdir xenlight 2>/dev/null)
# tools/ceph-util's (librbd-dev, librados-dev: no .pc files)
CEPH_LIBS         ?= -lrbd -lrados -lpthread

DEFINES := \
    -DHAVE_YAJL_YAJL_VERSION_H \
    -DLIBXL_SNAPSHOT_STATE_DIR=\"$(XL_SNAPSHOT_STATE_DIR)\" \
    -DLIBXL_SNAPSHOT_STORE=\"$(XL_SNAPSHOT_STORE)\" \
    -DLIBXL_SNAPSHOT_RUN_DIR=\"$(XL_SNAPSHOT_RUN_DIR)\" \
    -DLIBXL_SNAPSHOT_CONFIG_DIR=\"$(XEN_CONFIG_DIR)\" \
    -DLIBXL_SNAPSHOT_QEMU=\"$(QEMU)\" \
    -DLIBXL_SNAPSHOT_QEMU_IMG=\"$(QEMU_IMG)\" \
    -DLIBXL_SNAPSHOT_LVM=\"$(LVM)\" \
    -DLIBXL_SNAPSHOT_VHD_UTIL=\"$(VHD_UTIL)\" \
    -DLIBXL_SNAPSHOT_CEPH_UTIL=\"$(CEPH_UTIL)\" \
    -DLIBXL_SNAPSHOT_XEN_QEMU=\"$(XEN_QEMU)\" \
    -DLIBXL_SNAPSHOT_SYSTEM_XL=\"$(SYSTEM_XL)\" \
    -DLIBXL_SNAPSHOT_MAX_CHAIN=$(SNAPSHOT_MAX_CHAIN) \
    -DLIBXL_SNAPSHOT_SPACE_THRESHOLD=$(SNAPSHOT_SPACE_THRESHOLD)

# Fuzzing (make fuzz): clang with libFuzzer, ASan and UBSan.
FUZZ_CC           ?= clang
FUZZ_CFLAGS       ?= -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_TIME         ?= 60
FUZZ_DIR          ?= build/fuzz
FUZZ_PACKAGES     := clang libclang-rt-14-dev

# Ceph: the daemons of the tests' throw-away cluster (tests/ceph), the
# CLIs the tests use, QEMU's rbd driver, and tools/ceph-util's headers
CEPH_PACKAGES     := ceph-mon ceph-osd ceph-common qemu-block-extra \
                     librbd-dev librados-dev

# make check: parallel jobs of its build (the library, the test, ASan,
# fuzz and release builds), before the tests run
CHECK_JOBS        ?= 2

# The unit tests under sanitizers (make check-asan).
ASAN_CFLAGS       ?= -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
ASAN_DIR          ?= build/asan
