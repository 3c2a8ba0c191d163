#!/bin/bash
# test-63-bench-quick.sh - `make bench` in its tiny mode (BENCH_QUICK=1),
# so that the benchmark code cannot rot
#
# Every benchmark runs to its end and the JSON holds every figure, each
# with a number; no figure's value is judged (benchmarks are not tests).
# run-all: alone
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

run make -s -C "$REPO" bench BENCH_QUICK=1 BENCH_JSON="$T/results.json"
[ "$RC" -eq 0 ] || fail_run "make bench BENCH_QUICK=1 failed"
jq -e . "$T/results.json" >/dev/null || fail "results.json is not JSON"
jq -e '.machine.nproc > 0 and (.machine.qemu | length > 0)' "$T/results.json" >/dev/null ||
    fail "results.json does not state the machine"
dups=$(jq -r '[.figures[].name] | group_by(.) | map(select(length > 1) | .[0]) | join(" ")' "$T/results.json")
expect_eq "$dups" "" "figures given twice"
for f in stall.xl.1 stall.raw.1 stall.ratio.1 \
         stall.create_before_qmp.1 stall.create_qmp.1 stall.create_after_qmp.1 \
         stall.create_part.start.1 stall.create_part.lock.1 stall.create_part.plan.1 \
         stall.create_part.qmp.1 stall.create_part.records.1 stall.create_part.exit.1 \
         scale.list.10 scale.tree.200 scale.info.200 scale.create.200 \
         scale.list_rss.200 scale.create_ratio.200/10 commit.dd \
         commit.offline.xl commit.offline.qemu_img commit.offline.ratio \
         commit.live.xl commit.live.raw commit.live.ratio bandwidth.ratio \
         revert.offline.internal revert.offline.external revert.live.internal \
         revert.live.external memory.pause.live memory.pause_ratio \
         blockcopy.live.xl blockcopy.live.qemu_img blockcopy.live.ratio \
         blockcopy.ready_to_pivot blockcopy.live.qemu_img_writeback \
         blockcopy.live.ratio_writeback \
         backup.full.xl backup.full.qemu_img backup.full.ratio \
         backup.incremental.read_ratio backup.incremental.held_ratio \
         backup.incremental.xl backup.incremental.qemu_img \
         backup.incremental.ratio \
         diff.internal.mapping diff.internal.compare diff.external.allocation \
         redefine.single.per_snapshot_ms redefine.batch.per_snapshot_ms \
         redefine.speedup redefine.internal.single.per_snapshot_ms \
         redefine.internal.batch.per_snapshot_ms redefine.internal.speedup \
         $([ -x "$REPO/tools/ceph-util" ] && command -v ceph-mon >/dev/null &&
           echo rados_store.list.dir.200 rados_store.list.rados.200 \
                rados_store.list_ratio.200 rbd.create.xl.1 rbd.create.xl.4 \
                rbd.create.ratio.4 rbd.create.group_ratio.4 rbd.transaction.4); do
    v=$(jq -r --arg f "$f" '.figures[] | select(.name == $f) | .value' "$T/results.json")
    [ -n "$v" ] || fail "make bench printed no figure $f"
    [[ $v =~ ^[0-9.]+$ ]] || fail "figure $f is not a number: '$v'"
done
echo "PASS: $TEST_NAME"
