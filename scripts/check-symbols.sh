#!/bin/bash
# check-symbols.sh - symbol hygiene of libxl-snapshot
#
# 1. No global symbol defined by our objects (libxl-snapshot/*.o) may
#    also be exported by libxenlight: both live in one process, and a
#    clash would bind one of them to the other's code.
# 2. The shared library exports only our public API: names beginning
#    with libxlsnap_ (everything else is hidden by -fvisibility=hidden).
# Prints the offending names and exits 1 on failure.
set -euo pipefail

cd "$(dirname "$0")/.."

shlib=libxl-snapshot/libxlsnapshot.so.$(sed -n 's/^SONAME_MAJOR[ \t]*:=[ \t]*//p' Config.mk)
objs=(libxl-snapshot/*.o)
if [ ! -e "${objs[0]}" ] || [ ! -e "$shlib" ]; then
    echo "check-symbols: build first (make)" >&2
    exit 1
fi

xldir=$(pkg-config --variable=libdir xenlight)
xlso=$xldir/libxenlight.so
if [ ! -e "$xlso" ]; then
    xlso=$(ls "$xldir"/libxenlight.so.* 2>/dev/null | head -n 1)
fi
if [ -z "$xlso" ] || [ ! -e "$xlso" ]; then
    echo "check-symbols: libxenlight.so not found in $xldir" >&2
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# defined global symbols: nm prints "value TYPE name"; upper-case
# types other than U are global definitions
nm -g --defined-only "${objs[@]}" 2>/dev/null |
    awk 'NF >= 3 && $2 ~ /^[A-TV-Z]$/ { print $3 }' | sort -u > "$tmp/ours"
nm -D --defined-only "$xlso" |
    awk 'NF >= 3 { sub(/@.*/, "", $3); print $3 }' | sort -u > "$tmp/xenlight"
nm -D --defined-only "$shlib" |
    awk 'NF >= 3 { sub(/@.*/, "", $3); print $3 }' | sort -u > "$tmp/exported"

fail=0

comm -12 "$tmp/ours" "$tmp/xenlight" > "$tmp/clash"
if [ -s "$tmp/clash" ]; then
    echo "check-symbols: also defined by $xlso:" >&2
    sed 's/^/    /' "$tmp/clash" >&2
    fail=1
fi

# linker-made symbols that older toolchains put in .dynsym
grep -v -E '^(libxlsnap_|_init$|_fini$|_edata$|_end$|__bss_start$)' \
    "$tmp/exported" > "$tmp/stray" || true
if [ -s "$tmp/stray" ]; then
    echo "check-symbols: $shlib exports names outside libxlsnap_*:" >&2
    sed 's/^/    /' "$tmp/stray" >&2
    fail=1
fi

if [ $fail -eq 0 ]; then
    echo "check-symbols: $(wc -l < "$tmp/ours") global symbols," \
         "$(grep -c '^libxlsnap_' "$tmp/exported" || true) exported, no clash"
fi
exit $fail
