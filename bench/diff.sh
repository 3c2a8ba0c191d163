#!/bin/bash
# bench/diff.sh - xl snapshot-diff of a 1 GiB disk with 10,000 changed
# extents (goal: < 100 ms a diff, the whole command)
#
# Two domains, shut off, each a 1 GiB qcow2 disk, written between a
# snapshot s1 and now by one qemu-io run (4 KiB writes, spaced so that
# no two extents touch once rounded to clusters):
#  - internal: the image made with 32 KiB clusters (1 GiB holds 10,000
#    extents one cluster apart), an internal snapshot: the table walk
#    alone (--no-data, method "mapping"), and with the data of the
#    10,000 differing clusters read and compared (method "compare";
#    reads 2 x 10,000 clusters: reported, no goal);
#  - checkpoint: a checkpoint k1 of the same disk taken with s1 (its
#    bitmap's granularity: the 32 KiB clusters), the bitmap read over
#    NBD from qemu-nbd (method "bitmap");
#  - external: the overlay the snapshot makes has qemu-img's 64 KiB
#    clusters, of which 1 GiB holds 8,192 extents one cluster apart (the
#    most it can hold): that many, method "allocation" (qemu-img map).
# Each figure: the median of ROUNDS runs of the whole command (process
# start, lock, records, qemu-img info of the chain, the walk or map),
# and the extents it reported (checked against those written).
# BENCH_QUICK=1: 64 MiB disks, 200 extents, one round.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/../tests/qemu/lib.sh"
# shellcheck source=bench/lib-bench.sh
. "$(dirname "$0")/lib-bench.sh"

SIZE_MB=1024 N_INT=10000 ROUNDS=7
[ "$QUICK" = 1 ] && SIZE_MB=64 N_INT=200 ROUNDS=1
N_EXT=$((SIZE_MB * 1024 / 64 / 2))
[ "$N_EXT" -gt "$N_INT" ] && N_EXT=$N_INT

# writes D IMAGE N STEP: N 4 KiB writes, one every STEP bytes, one run
writes() {
    local img=$1 n=$2 step=$3 i
    local -a args=()
    for ((i = 0; i < n; i++)); do
        args+=(-c "write -q -P 0x5a $((i * step)) 4k")
    done
    qemu-io -f qcow2 "${args[@]}" "$img" >/dev/null ||
        fail "qemu-io writes on $img failed"
}

# domain NAME IMAGE: a config for a 1-disk domain on IMAGE
domain() {
    printf 'name = "%s"\nmemory = 64\ndisk = [ %s ]\n' "$1" \
        "'format=qcow2,vdev=xvda,access=rw,target=$2'" > "$T/$1.cfg"
}

# bench_diff NAME DOMAIN N FROM ARGS...: ROUNDS timed diffs, the median
bench_diff() {
    local name=$1 d=$2 n=$3 from=$4 r got
    local -a ms=()
    shift 4
    got=$("$XL" snapshot-diff --json "$d" "$from" "$@" |
          jq '.disks[0].num_extents')
    expect_eq "$got" "$n" "$name: the extents written"
    for ((r = 0; r < ROUNDS; r++)); do
        ms_of "$XL" snapshot-diff --json "$d" "$from" "$@"
        ms+=("$MS")
    done
    figure "diff.$name" "$(median "${ms[@]}")" ms \
        "$n extents of ${SIZE_MB} MiB; goal < 100"
}

# internal: 32 KiB clusters, a write every 64 KiB
int=$IMG/diff-int.qcow2
qemu-img create -q -f qcow2 -o cluster_size=32768 "$int" "${SIZE_MB}M"
domain dint "$int"
expect_ok xl snapshot-create "$T/dint.cfg" s1
expect_ok xl checkpoint-create "$T/dint.cfg" k1
writes "$int" "$N_INT" 65536

# external: the overlay's 64 KiB clusters, a write every 128 KiB
ext=$IMG/diff-ext.qcow2
qemu-img create -q -f qcow2 "$ext" "${SIZE_MB}M"
domain dext "$ext"
expect_ok xl snapshot-create --diskspec xvda,snapshot=external \
    "$T/dext.cfg" s1
writes "$(active_image dext xvda)" "$N_EXT" 131072

bench_diff internal.mapping dint "$N_INT" s1 --no-data
bench_diff internal.compare dint "$N_INT" s1
bench_diff checkpoint.bitmap dint "$N_INT" k1
bench_diff external.allocation dext "$N_EXT" s1
