#!/bin/bash
# bench/rados-store.sh - snapshot-list of 1000 and 10000 records from
# the RADOS record store (XL_SNAPSHOT_STORE=rados:POOL) against the
# directory store
#
# The records are those of bench/scale.sh (make_records: a chain with a
# branch every 10), written to the directory store, then copied as they
# are into the domain's RADOS object (ceph-util omap-set, the keys the
# file names).  For each size, the median of 5 runs (1 with
# BENCH_QUICK=1) of `xl snapshot-list` from each store, and the ratio.
# The RADOS list is one omap-dump (all pages) through ceph-util, plus
# the domain's lookup by name (ls-objects, one omap-get).
# The cluster: $CEPH_CONF, else a one-node cluster of its own
# (tests/ceph/cluster.sh, port $XL_SNAPSHOT_CEPH_PORT, default 16789);
# without the Ceph packages or tools/ceph-util, it says so and stops.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/../tests/qemu/lib.sh"
# shellcheck source=bench/lib-bench.sh
. "$(dirname "$0")/lib-bench.sh"

SIZES=(1000 10000)
RUNS=5
[ "$QUICK" = 1 ] && SIZES=(200) && RUNS=1

ceph_cluster rados-store
U=$XL_SNAPSHOT_CEPH_UTIL
POOL=bench-records
timeout 60 ceph osd pool create "$POOL" 8 8 >/dev/null 2>&1 ||
    fail "cannot create pool $POOL"
at_cleanup 'timeout 60 ceph osd pool rm "$POOL" "$POOL" --yes-i-really-really-mean-it >/dev/null 2>&1'

# to_rados D: D's records copied into its object, 200 keys an op
to_rados() {
    local d=$1 dir obj f args=() k=0
    dir=$(domain_dir "$d")
    obj=xl-snapshot.$(domain_uuid "$d")
    for f in "$dir"/*.libxl-json; do
        args+=(set "$(basename "$f")" "$(<"$f")")
        k=$((k + 1))
        if [ "$k" -ge 200 ]; then
            "$U" omap-set "$POOL" "$obj" "${args[@]}" ||
                fail "ceph-util omap-set of $d's records"
            args=()
            k=0
        fi
    done
    if [ "$k" -gt 0 ]; then
        "$U" omap-set "$POOL" "$obj" "${args[@]}" ||
            fail "ceph-util omap-set of $d's records"
    fi
}

for n in "${SIZES[@]}"; do
    d=rados$n
    make_records "$d" "$n"
    to_rados "$d"
    run env XL_SNAPSHOT_STORE=rados:$POOL "$XL" snapshot-list --name "$d"
    [ "$RC" -eq 0 ] && [ "$(wc -l <<<"$OUT")" -eq $((n + 1)) ] ||
        fail_run "the RADOS store lists the $((n + 1)) records"
    for store in dir rados; do
        vals=()
        for ((r = 0; r < RUNS; r++)); do
            if [ "$store" = dir ]; then
                ms_of "$XL" snapshot-list "$d"
            else
                ms_of env XL_SNAPSHOT_STORE=rados:$POOL "$XL" snapshot-list "$d"
            fi
            vals+=("$MS")
        done
        m=$(median "${vals[@]}")
        figure "rados_store.list.$store.$n" "$m" ms
        eval "ms_$store=$m"
    done
    # shellcheck disable=SC2154  # set by the eval above
    figure "rados_store.list_ratio.$n" "$(ratio "$ms_rados" "$ms_dir")" x \
        "RADOS / directory store"
    "$U" remove-object "$POOL" "xl-snapshot.$(domain_uuid "$d")"
    rm -rf "$(domain_dir "$d")" "$IMG/$d"-*
done
