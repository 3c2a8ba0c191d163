#!/bin/bash
# bench/scale.sh - metadata at scale: 10, 1000 and 10000 snapshot
# records of one domain, in a tree with branches
#
# The records are written directly (as the store writes them, one
# libxl-json file each, parents before children: a chain with a branch
# every 10 snapshots), then checked to load with snapshot-list.  For
# each size, the median of 5 runs (1 with BENCH_QUICK=1) of:
#   snapshot-list, snapshot-list --tree, snapshot-info of one snapshot,
#   and the metadata part of one more snapshot: `xl -N snapshot-create`
#   (the whole plan: lock, records loaded, checks; no image touched);
# and the peak RSS of snapshot-list.  Goals: list of 10000 in 200 ms or
# less, one more create at 10000 within 1.2 x its cost at 10, RSS 64 MiB.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/../tests/qemu/lib.sh"
# shellcheck source=bench/lib-bench.sh
. "$(dirname "$0")/lib-bench.sh"

SIZES=(10 1000 10000)
RUNS=5
[ "$QUICK" = 1 ] && SIZES=(10 200) && RUNS=1

declare -A create_ms
for n in "${SIZES[@]}"; do
    d=scale$n
    make_records "$d" "$n"
    for what in list tree info create; do
        vals=()
        for ((r = 0; r < RUNS; r++)); do
            case $what in
            list) ms_of "$XL" snapshot-list "$d" ;;
            tree) ms_of "$XL" snapshot-list --tree "$d" ;;
            info) ms_of "$XL" snapshot-info "$d" "s$((n / 2))" ;;
            create) ms_of "$XL" -N snapshot-create --diskspec xvdb,snapshot=no "$d" "more$r" ;;
            esac
            vals+=("$MS")
        done
        m=$(median "${vals[@]}")
        ref=
        [ "$what" = list ] && [ "$n" -ge 10000 ] && ref="goal <= 200 ms"
        figure "scale.$what.$n" "$m" ms "$ref"
        [ "$what" = create ] && create_ms[$n]=$m
    done
    rss_of "$XL" snapshot-list "$d"
    figure "scale.list_rss.$n" "$((RSS_KB / 1024))" MiB "$([ "$n" -ge 10000 ] && echo "goal <= 64 MiB")"
    drop=$(domain_dir "$d")
    rm -rf "$drop" "$IMG/$d"-*
done
small=${SIZES[0]} big=${SIZES[${#SIZES[@]} - 1]}
figure "scale.create_ratio.$big/$small" "$(ratio "${create_ms[$big]}" "${create_ms[$small]}")" x "goal <= 1.2"
