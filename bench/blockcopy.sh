#!/bin/bash
# bench/blockcopy.sh - live block-copy throughput against qemu-img
# convert of the same chain, and the time from READY to pivoted
#
# The chain: three qcow2 layers with 512 MiB of data in all (16 MiB with
# BENCH_QUICK=1): the bottom holds the first half, the middle and the
# top a quarter each, at their own offsets.  A domain runs on its top.
#  - copy: `xl block-copy --finish` (a full live copy: the mirror to
#    READY, then its end without a pivot, the domain staying on its
#    chain for the next round) against `qemu-img convert -U -O qcow2`
#    of the same chain into a new image, in turns from a settled
#    machine (lib-bench.sh's timed_pair); MiB/s of each and the ratio
#    (geometric mean of the rounds' qemu-img / xl times), goal >= 0.95;
#    and the same against `qemu-img convert -t writeback`: qemu-img's
#    default cache mode for its output is unsafe (no flush at the end),
#    whereas a mirror flushes its target before it is READY to pivot;
#  - pivot: a copy left at READY (`xl block-copy` without --pivot), then
#    `xl block-job --pivot`: the whole command's wall time, READY to
#    pivoted and recorded (ms; median of rounds, each on a fresh copy).
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/../tests/qemu/lib.sh"
# shellcheck source=bench/lib-bench.sh
. "$(dirname "$0")/lib-bench.sh"

SIZE_MB=512 ROUNDS=6 PIVOTS=5
[ "$QUICK" = 1 ] && SIZE_MB=16 ROUNDS=1 PIVOTS=1
Q=$((SIZE_MB / 4))

mibps() { awk -v mb="$1" -v ms="$2" 'BEGIN {printf "%.1f", mb / (ms / 1000)}'; }

# the chain, made offline, then a domain on its top
base=$IMG/bc-base.qcow2 mid=$IMG/bc-mid.qcow2 top=$IMG/bc-top.qcow2
qemu-img create -q -f qcow2 "$base" 1G
expect_ok qemu-io -f qcow2 -c "write -P 0x11 0 $((2 * Q))M" "$base"
qemu-img create -q -f qcow2 -F qcow2 -b "$base" "$mid"
expect_ok qemu-io -f qcow2 -c "write -P 0x22 $((2 * Q))M ${Q}M" "$mid"
qemu-img create -q -f qcow2 -F qcow2 -b "$mid" "$top"
expect_ok qemu-io -f qcow2 -c "write -P 0x33 $((3 * Q))M ${Q}M" "$top"
CFG=$T/bc.cfg
printf 'name = "bc"\nmemory = 64\ndisk = [ %s ]\n' \
    "'format=qcow2,vdev=xvda,access=rw,target=$top'" > "$CFG"
expect_ok xl create "$CFG"

xl_copy() {
    ms_of "$XL" block-copy --finish bc xvda "$T/xl-copy.qcow2"
    XL_MS=$MS
}
ref_copy() {
    ms_of qemu-img convert -U -f qcow2 -O qcow2 "$top" "$T/ref-copy.qcow2"
    REF_MS=$MS
}
ref_copy_wb() {
    ms_of qemu-img convert -U -t writeback -f qcow2 -O qcow2 "$top" \
        "$T/ref-copy.qcow2"
    REF_MS=$MS
}
xs=() refs=() prs=() wbs=() wprs=()
for ((r = 1; r <= ROUNDS; r++)); do
    rm -f "$T/xl-copy.qcow2" "$T/ref-copy.qcow2"
    timed_pair "$r" xl_copy ref_copy
    [ -e "$T/xl-copy.qcow2" ] || fail "xl block-copy --finish made no copy"
    xs+=("$XL_MS") refs+=("$REF_MS") prs+=("$(ratio "$REF_MS" "$XL_MS")")
    rm -f "$T/ref-copy.qcow2"
    settle
    ref_copy_wb
    wbs+=("$REF_MS") wprs+=("$(ratio "$REF_MS" "$XL_MS")")
done
expect_ok qemu-img compare -U "$top" "$T/xl-copy.qcow2"
rm -f "$T/xl-copy.qcow2" "$T/ref-copy.qcow2"
figure blockcopy.live.xl "$(mibps "$SIZE_MB" "$(median "${xs[@]}")")" MiB/s "xl block-copy --finish, ${SIZE_MB} MiB over 3 layers"
figure blockcopy.live.qemu_img "$(mibps "$SIZE_MB" "$(median "${refs[@]}")")" MiB/s "qemu-img convert of the same chain"
figure blockcopy.live.ratio "$(geomean "${prs[@]}")" x "goal >= 0.95 (rounds: ${prs[*]})"
figure blockcopy.live.qemu_img_writeback "$(mibps "$SIZE_MB" "$(median "${wbs[@]}")")" MiB/s "qemu-img convert -t writeback (flushed, as a mirror is)"
figure blockcopy.live.ratio_writeback "$(geomean "${wprs[@]}")" x "against the flushed convert (rounds: ${wprs[*]})"

# READY -> pivoted: the domain moves to each copy in turn
ps=()
for ((r = 1; r <= PIVOTS; r++)); do
    expect_ok xl block-copy bc xvda "$T/pv$r.qcow2"
    settle
    ms_of "$XL" block-job --pivot bc xvda
    ps+=("$MS")
    [ "$(active_image bc xvda)" = "$T/pv$r.qcow2" ] ||
        fail "xl block-job --pivot did not move bc to $T/pv$r.qcow2"
done
figure blockcopy.ready_to_pivot "$(median "${ps[@]}")" ms "xl block-job --pivot of a READY copy, whole command (rounds: ${ps[*]})"
expect_ok xl destroy bc
