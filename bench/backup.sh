#!/bin/bash
# bench/backup.sh - xl backup-begin: a full push's throughput against
# qemu-img convert, and an incremental push of 5 % changed: bytes read
# against the changed bytes, time against qemu-img convert of the same
# extents
#
# One running domain with a 1 GiB qcow2 disk, all of it data (32 MiB
# with BENCH_QUICK=1).
#  - full: `xl backup-begin --target DIR` against `qemu-img convert -U
#    -O qcow2` of the disk's image into a new image, in turns from a
#    settled machine (lib-bench.sh's timed_pair); MiB/s of each and the
#    ratio (geometric mean of the rounds' qemu-img / xl times), goal
#    >= 0.95;
#  - incremental: a checkpoint, then 5 % of the disk written by the
#    guest in 1 MiB extents spread over it, then `xl backup-begin
#    --incremental`: the bytes QEMU read meanwhile (rchar of its
#    /proc/PID/io: its reads are preadv calls, aio=threads) over the
#    changed bytes (goal <= 1.1), the bytes the backup's image holds,
#    and its time against `qemu-img convert -B` of an image holding
#    the same extents over an empty base (qemu-img reads and writes
#    exactly those clusters).
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/../tests/qemu/lib.sh"
# shellcheck source=bench/lib-bench.sh
. "$(dirname "$0")/lib-bench.sh"

SIZE_MB=1024 ROUNDS=3
[ "$QUICK" = 1 ] && SIZE_MB=32 ROUNDS=1
CHANGED=$((SIZE_MB * 5 / 100))          # 1 MiB extents
[ "$CHANGED" -ge 1 ] || CHANGED=1
STRIDE=$((SIZE_MB / CHANGED))

mibps() { awk -v mb="$1" -v ms="$2" 'BEGIN {printf "%.1f", mb / (ms / 1000)}'; }

vm_config bb 1 "${SIZE_MB}M"
disk=$IMG/bb-xvda.qcow2
expect_ok qemu-io -f qcow2 -c "write -P 0x11 0 ${SIZE_MB}M" "$disk"
expect_ok xl create "$CFG"

# full push against qemu-img convert
xl_full() {
    ms_of "$XL" backup-begin bb --target "$T/full"
    XL_MS=$MS
}
ref_full() {
    ms_of qemu-img convert -U -f qcow2 -O qcow2 "$disk" "$T/ref.qcow2"
    REF_MS=$MS
}
xs=() refs=() prs=()
for ((r = 1; r <= ROUNDS; r++)); do
    rm -rf "$T/full" "$T/ref.qcow2"
    timed_pair "$r" xl_full ref_full
    [ -e "$T/full/xvda.qcow2" ] || fail "xl backup-begin made no image"
    xs+=("$XL_MS") refs+=("$REF_MS") prs+=("$(ratio "$REF_MS" "$XL_MS")")
done
expect_ok qemu-img compare -U "$disk" "$T/full/xvda.qcow2"
rm -rf "$T/full" "$T/ref.qcow2"
figure backup.full.xl "$(mibps "$SIZE_MB" "$(median "${xs[@]}")")" MiB/s "xl backup-begin --target, ${SIZE_MB} MiB"
figure backup.full.qemu_img "$(mibps "$SIZE_MB" "$(median "${refs[@]}")")" MiB/s "qemu-img convert of the same image"
figure backup.full.ratio "$(geomean "${prs[@]}")" x "goal >= 0.95 (rounds: ${prs[*]})"

# incremental: the base push and its checkpoint, then 5 % changed
expect_ok xl backup-begin bb --target "$T/base" --checkpoint c0
cmds=()
for ((i = 0; i < CHANGED; i++)); do
    off=$((i * STRIDE + STRIDE / 2))
    expect_ok xl qemu-monitor-command bb "qemu-io xvda \"write -P 0x22 ${off}M 1M\""
    cmds+=(-c "write -P 0x22 ${off}M 1M")
done
expect_ok xl qemu-monitor-command bb 'qemu-io xvda "flush"'
changed=$((CHANGED * 1048576))
# the reference: the same extents over an empty base
qemu-img create -q -f qcow2 "$T/empty.qcow2" "${SIZE_MB}M"
qemu-img create -q -f qcow2 -b "$T/empty.qcow2" -F qcow2 "$T/extents.qcow2"
expect_ok qemu-io -f qcow2 "${cmds[@]}" "$T/extents.qcow2"

qpid=$(runtime_pid bb) || fail "no QEMU for bb"
rchar() { awk '$1 == "rchar:" {print $2}' "/proc/$qpid/io"; }
settle
r0=$(rchar)
ms_of "$XL" backup-begin bb --target "$T/inc" --incremental c0
inc_ms=$MS
r1=$(rchar)
read_bytes=$((r1 - r0))
held=$(qemu-img map -U --output=json "$T/inc/xvda.qcow2" |
       jq '[.[] | select(.data and .depth == 0) | .length] | add // 0')
expect_ok qemu-img compare -U "$disk" "$T/inc/xvda.qcow2"
settle
ms_of qemu-img convert -U -f qcow2 -O qcow2 -B "$T/empty.qcow2" -F qcow2 \
    "$T/extents.qcow2" "$T/ref-inc.qcow2"
ref_ms=$MS
figure backup.incremental.changed "$((changed / 1048576))" MiB "5 % of ${SIZE_MB} MiB, $CHANGED extents of 1 MiB"
figure backup.incremental.read_ratio "$(ratio "$read_bytes" "$changed")" x "bytes QEMU read / changed bytes, goal <= 1.1 ($read_bytes read)"
figure backup.incremental.held_ratio "$(ratio "$held" "$changed")" x "bytes the incremental image holds / changed bytes"
figure backup.incremental.xl "$inc_ms" ms "xl backup-begin --incremental, whole command"
figure backup.incremental.qemu_img "$ref_ms" ms "qemu-img convert -B of the same extents"
figure backup.incremental.ratio "$(ratio "$ref_ms" "$inc_ms")" x "qemu-img / xl time"
expect_ok xl destroy bb
