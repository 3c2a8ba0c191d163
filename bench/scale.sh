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

# make_records D N: N records of domain D (shut off), a branch every 10
make_records() {
    local d=$1 n=$2 dir uuid
    make_vm_config "$d"
    expect_ok xl create "$CFG"
    expect_ok xl destroy "$d"
    expect_ok xl snapshot-create --diskspec xvda,snapshot=internal \
        --diskspec xvdb,snapshot=no "$d" seed
    dir=$(domain_dir "$d")
    uuid=$(domain_uuid "$d")
    jq -c . "$dir/snapshotdata-seed.libxl-json" > "$T/seed.json"
    # s<i>'s parent: s<i-1>, but every 10th starts a branch from s<i-10>
    awk -v n="$n" -v dir="$dir" -v seed="$(cat "$T/seed.json")" -v t0="$(date +%s)" '
        BEGIN {
            for (i = 1; i <= n; i++) {
                p = i == 1 ? "seed" : (i % 10 == 0 && i > 10 ? "s" (i - 10) : "s" (i - 1));
                r = seed;
                sub(/"name": *"seed"/, "\"name\": \"s" i "\"", r);
                sub(/"creation_time": *[0-9]+/, "\"creation_time\": " (t0 + i), r);
                sub(/"current": *true, */, "", r);
                sub(/"parent": *null, */, "", r);
                sub(/\{/, "{\"parent\": \"" p "\", ", r);
                gsub(/"tag": *"seed"/, "\"tag\": \"s" i "\"", r);
                f = dir "/snapshotdata-s" i ".libxl-json";
                print r > f;
                close(f);
            }
        }'
    chmod 600 "$dir"/snapshotdata-*.libxl-json
    expect_ok xl snapshot-list --name "$d"
    [ "$(wc -l <<<"$OUT")" -eq $((n + 1)) ] ||
        fail "$d: $((n + 1)) records written, $(wc -l <<<"$OUT") listed"
}

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
