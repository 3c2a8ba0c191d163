#!/bin/bash
# build-debs.sh - the Debian packages of this tree, built once per content
#
#   scripts/build-debs.sh [-f]
#
# Prints the directory that holds them: the .deb of libxlsnapshot1,
# libxlsnapshot-dev and xl-snapshot (and their -dbgsym), the .changes
# and .buildinfo, and build.log.
#
# The tracked files of the tree, as they are in the work tree, are
# copied aside (the build never touches the tree) and
# `dpkg-buildpackage -us -uc -b` builds there.  The result is kept in
# ${XL_SNAPSHOT_DEBS_CACHE:-${TMPDIR:-/tmp}}/xl-snapshot-debs.<key>, the
# key a hash of those files' names and contents and of the versions of
# the build's tools and -dev packages: the package test (test-69) and
# the Xen test host (tests/xen/build-dom0.sh) build them once per
# `make check`.  -f builds again.  Kept results older than two days are
# removed.
#
# On failure: the build log's tail on stderr, exit 1.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
force=0
[ "${1:-}" = -f ] && force=1

for t in dpkg-buildpackage dh git; do
    command -v $t >/dev/null ||
        { echo "build-debs: $t is missing (scripts/install-deps.sh)" >&2; exit 1; }
done

key=$( { (cd "$repo" && git ls-files -z | xargs -0 sha256sum)
         dpkg-query -W -f='${Package} ${Version}\n' debhelper dpkg-dev gcc make \
             libxen-dev libyajl-dev libxml2-dev pkg-config librbd-dev librados-dev \
             2>/dev/null; } |
       sha256sum | cut -c1-16)
parent=${XL_SNAPSHOT_DEBS_CACHE:-${TMPDIR:-/tmp}}
out=$parent/xl-snapshot-debs.$key
mkdir -p "$parent"
find "$parent" -maxdepth 1 -name 'xl-snapshot-debs.*' -mtime +1 \
    ! -path "$out" -exec rm -rf {} + 2>/dev/null || true

if [ "$force" = 0 ] && ls "$out"/xl-snapshot_*.deb >/dev/null 2>&1; then
    echo "$out"
    exit 0
fi

# built aside, then renamed into place: a concurrent build of the same
# content never sees half of it
tmp=$(mktemp -d "$parent/xl-snapshot-debs.$key.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
src=$tmp/src/libxl-snapshot
mkdir -p "$src"
(cd "$repo" && git ls-files -z | xargs -0 cp --parents -t "$src") ||
    { echo "build-debs: cannot copy the tree" >&2; exit 1; }
if ! (cd "$src" && dpkg-buildpackage -us -uc -b -Jauto) >"$tmp/build.log" 2>&1; then
    tail -n 30 "$tmp/build.log" >&2
    echo "build-debs: dpkg-buildpackage failed (log above)" >&2
    exit 1
fi
mv "$tmp"/src/*.deb "$tmp"/src/*.changes "$tmp"/src/*.buildinfo "$tmp/"
rm -rf "$tmp/src"
chmod 755 "$tmp"
if [ "$force" = 1 ]; then
    rm -rf "$out"
fi
mv -T "$tmp" "$out" 2>/dev/null || true     # another build got there first
echo "$out"
