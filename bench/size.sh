#!/bin/bash
# bench/size.sh - the cost of space accounting: `xl snapshot-list
# --size` of a domain with 1,000 snapshots
#
# The domain (shut off) has 1,000 snapshots beside its seed, each of
# both disks: xvda internal, real qcow2 snapshots in its image
# (`qemu-img snapshot -c`, every 10th holding 64 KiB of its own),
# xvdb external, a chain of
# 1,000 real qcow2 overlays (`qemu-img create -u`, every 10th with
# 64 KiB of its own).  The records are written directly, as
# bench/scale.sh writes them (one libxl-json file each), the images
# being made first.  Then the median of 5 runs (1 with BENCH_QUICK=1)
# of `xl snapshot-list --size` (every figure: the exclusive clusters of
# 1,000 internal snapshots, the allocation of 1,000 frozen images, and
# what deleting each would free, which reads the overlays' tables).
# Goal: under 1 s.  (BENCH_QUICK=1: 50 snapshots.)
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/../tests/qemu/lib.sh"
# shellcheck source=bench/lib-bench.sh
. "$(dirname "$0")/lib-bench.sh"

N=${BENCH_SIZE_N:-1000}
RUNS=5
[ "$QUICK" = 1 ] && N=50 && RUNS=1

d=size$N
make_vm_config "$d"
expect_ok xl create "$CFG"
expect_ok xl destroy "$d"
expect_ok xl snapshot-create --diskspec xvda,snapshot=internal \
    --diskspec xvdb,snapshot=external "$d" seed
dir=$(domain_dir "$d")
a=$IMG/$d-xvda.qcow2
prev=$IMG/$d-xvdb.seed.qcow2
t0=${EPOCHREALTIME/./}
# the two disks' images at once (two processes)
make_internal() {
    local i off
    for ((i = 1; i <= N; i++)); do
        # every 10th: 64 KiB that it alone holds (written before it,
        # and over again after it)
        off=$(( (i / 10 % 900) * 65536 ))
        if ((i % 10 == 0)); then
            qemu-io -f qcow2 -c "write -P $((i % 250 + 1)) $off 64K" "$a" \
                >/dev/null || fail "qemu-io write on $a"
        fi
        qemu-img snapshot -c "s$i" "$a" || fail "qemu-img snapshot -c s$i"
        if ((i % 10 == 0)); then
            qemu-io -f qcow2 -c "write -P 255 $off 64K" "$a" \
                >/dev/null || fail "qemu-io write on $a"
        fi
    done
}
make_overlays() {
    local i ov prev=$1
    for ((i = 1; i <= N; i++)); do
        ov=$IMG/$d-xvdb.s$i.qcow2
        qemu-img create -q -f qcow2 -u -b "$prev" -F qcow2 "$ov" 32M ||
            fail "qemu-img create $ov"
        if ((i % 10 == 0)); then
            # (opened without its backing: not the whole chain each time)
            qemu-io -c "write -P 7 $(( (i / 10 % 400) * 65536 )) 64K" \
                "json:{\"driver\": \"qcow2\", \"backing\": null, \"file\": {\"driver\": \"file\", \"filename\": \"$prev\"}}" \
                >/dev/null || fail "qemu-io write on $prev"
        fi
        prev=$ov
    done
}
make_internal &
pa=$!
make_overlays "$prev" &
pb=$!
wait "$pa" || fail "making the internal snapshots failed"
wait "$pb" || fail "making the overlays failed"
prev=$IMG/$d-xvdb.s$N.qcow2
t1=${EPOCHREALTIME/./}
echo "  ($N internal snapshots and overlays made in $(( (t1 - t0) / 1000000 )) s)"
# s<i>: parent s<i-1>; xvda tag s<i>; xvdb froze overlay i-1, made i
seed_records "$d" "$N" "$IMG/$d-xvdb"
jq --arg p "$prev" '(.disks[] | select(.vdev == "xvdb") | .path) = $p |
    .current = null' "$dir/domain.libxl-json" > "$T/domain.json" &&
    cp "$T/domain.json" "$dir/domain.libxl-json" || fail "domain record"

# right before timed: every snapshot listed with its figures, no warning
expect_ok xl snapshot-list --size --json "$d"
[ "$(jq '.snapshots | length' <<<"$OUT")" -eq $((N + 1)) ] ||
    fail "snapshot-list --size: not $((N + 1)) snapshots" "$OUT"
[ -z "$ERR" ] || fail "snapshot-list --size warned" "$ERR"
excl=$(jq '[.snapshots[].disks[] | select(.type == "internal") | .exclusive] | add' <<<"$OUT")
# (more than its L1 table, one cluster)
held=$(jq '[.snapshots[].disks[] | select(.type == "internal" and .exclusive > 65536)] | length' <<<"$OUT")
[ "$held" -ge $((N / 10)) ] ||
    fail "only $held internal snapshots hold data of their own (of $((N / 10)))" "$OUT"
echo "  (internal snapshots' exclusive bytes: $excl; $held hold data)"

vals=()
for ((r = 0; r < RUNS; r++)); do
    ms_of "$XL" snapshot-list --size "$d"
    vals+=("$MS")
done
figure "size.list.$N" "$(median "${vals[@]}")" ms "$([ "$N" -ge 1000 ] && echo "goal < 1000 ms")"
vals=()
for ((r = 0; r < RUNS; r++)); do
    ms_of "$XL" snapshot-info "$d" "s$((N / 2))"
    vals+=("$MS")
done
figure "size.info.$N" "$(median "${vals[@]}")" ms ""
[ -n "${BENCH_SIZE_KEEP:-}" ] && cp -a "$T" "$BENCH_SIZE_KEEP"
rm -rf "$dir" "$IMG/$d"-*
