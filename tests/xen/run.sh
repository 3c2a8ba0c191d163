#!/bin/bash
# run.sh - the Xen test after the build: the guest's and dom0's
# initramfs, then the boot that runs the scenarios (boot.sh gives the
# verdict and the closing "check-xen: N passed, N failed" line).
#
# `make check-xen` runs it after installing the packages and building
# the tree; tests/run-all.sh (`make check`) runs it as its last test.
set -uo pipefail
here=$(dirname "$0")
"$here/build-domU.sh" || exit 1
"$here/build-dom0.sh" || exit 1
exec "$here/boot.sh"
