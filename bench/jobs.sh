#!/bin/bash
# bench/jobs.sh - block commit throughput against the tools it drives,
# bandwidth limit accuracy, and revert latency
#
# Commit: an overlay with SIZE written (1 GiB; 16 MiB with
# BENCH_QUICK=1) merged into its base,
#  - offline: `xl block-commit --active --pivot --delete` against
#    `qemu-img commit` run directly on an identical pair of images;
#  - live: `xl block-commit --active --pivot` against a raw QMP client
#    (socat: block-commit, then query-jobs until ready, job-complete,
#    query-jobs until concluded, job-dismiss) on an identical domain;
#  - and `dd conv=fsync` of the same bytes: the machine's limit.
# Goal: ratio to the direct tool >= 0.95, over rounds in turns
# (below).
# Bandwidth: a live commit of 512 MiB (32 MiB quick) at --bandwidth 50
# (8 quick): achieved MiB/s over requested.
# Revert: wall time of snapshot-revert to an internal (xvda) and to an
# external (xvdb) snapshot, offline and live (live includes stopping
# and starting the domain), with the bare qemu-img operation offline.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/../tests/qemu/lib.sh"
# shellcheck source=bench/lib-bench.sh
. "$(dirname "$0")/lib-bench.sh"

SIZE_MB=1024 BW_MB=512 BW=50
[ "$QUICK" = 1 ] && SIZE_MB=16 BW_MB=32 BW=8

mibps() { awk -v mb="$1" -v ms="$2" 'BEGIN {printf "%.1f", mb / (ms / 1000)}'; }

ms_of dd if=/dev/zero of="$T/dd" bs=1M count="$SIZE_MB" conv=fsync
figure commit.dd "$(mibps "$SIZE_MB" "$MS")" MiB/s "dd conv=fsync, the machine's limit"
rm -f "$T/dd"

# Each round measures both sides, in turns (xl first in odd rounds, the
# reference first in even ones), each from a settled machine: dirty
# pages written back and, where the kernel lets us, the page cache
# dropped (then the tools' own files read again), so that neither side
# inherits the other's I/O.  The ratio
# is the geometric mean of the rounds' own ratios: as many rounds with
# each side first, so that going first or second cancels out.
ROUNDS=6
[ "$QUICK" = 1 ] && ROUNDS=1
# ---- offline: xl against qemu-img commit
# The reference does the command's whole job by hand: qemu-img commit
# into the base, then removing the merged overlay (--delete).
vm_config co 1 2G
expect_ok xl create "$CFG"
expect_ok xl destroy co
xl_offline() { ms_of "$XL" block-commit --active --pivot --delete co xvda; XL_MS=$MS; }
ref_offline() {
    ms_of bash -c 'qemu-img commit -q -b "$1" "$2" && rm -f "$2"' - \
        "$T/base2.qcow2" "$T/top2.qcow2"
    REF_MS=$MS
}
xs=() refs=() prs=()
for ((r = 1; r <= ROUNDS; r++)); do
    expect_ok xl snapshot-create --diskspec xvda,snapshot=external co "off$r"
    top=$(active_image co xvda)
    expect_ok qemu-io -f qcow2 -c "write -P 0x5a 0 ${SIZE_MB}M" "$top"
    qemu-img create -q -f qcow2 "$T/base2.qcow2" 2G
    qemu-img create -q -f qcow2 -F qcow2 -b "$T/base2.qcow2" "$T/top2.qcow2"
    expect_ok qemu-io -f qcow2 -c "write -P 0x5a 0 ${SIZE_MB}M" "$T/top2.qcow2"
    timed_pair "$r" xl_offline ref_offline
    [ -e "$top" ] && fail "xl block-commit --delete left $top"
    xs+=("$XL_MS") refs+=("$REF_MS") prs+=("$(ratio "$REF_MS" "$XL_MS")")
    rm -f "$T/base2.qcow2"
done
figure commit.offline.xl "$(mibps "$SIZE_MB" "$(median "${xs[@]}")")" MiB/s
figure commit.offline.qemu_img "$(mibps "$SIZE_MB" "$(median "${refs[@]}")")" MiB/s "qemu-img commit and rm of the overlay, directly"
figure commit.offline.ratio "$(geomean "${prs[@]}")" x "goal >= 0.95 (rounds: ${prs[*]})"

# ---- live: xl against a raw QMP client
# Two identical domains, cl and cr.  In a round, xl commits on one and
# the raw client on the other; which one is which changes every two
# rounds, and who goes first every round, so that neither a domain's
# files nor the order favour a side (8 rounds: every combination
# twice).  The raw client makes its overlays with
# blockdev-snapshot-sync, and waits for the job's events (no polling
# loop to compete with QEMU for the CPUs); its pivot leaves the domain
# on its base, as xl's records say.
LIVE_ROUNDS=8
[ "$QUICK" = 1 ] && LIVE_ROUNDS=1
vm_config cl 1 2G
expect_ok xl create "$CFG"
vm_config cr 1 2G
expect_ok xl create "$CFG"
sock_of() {
    local id
    id=$(jq -r .domid "$(grep -l "\"name\": \"$1\"" "$RUN"/qemu-dm-*.libxl-json | head -n 1)")
    echo "$RUN/qmp-libxl-$id"
}
# qmp_wait_job WANT: the raw job reaches status WANT (asked once, then
# from the JOB_STATUS_CHANGE events)
qmp_wait_job() {
    qmp_cmd '{"execute": "query-jobs"}'
    [[ $REPLY == *"\"status\": \"$1\""* ]] && return 0
    while read -r REPLY <&"${QMP[0]}"; do
        [[ $REPLY == *JOB_STATUS_CHANGE* && $REPLY == *"\"status\": \"$1\""* ]] && return 0
    done
    fail "the raw QMP session closed before the job was $1"
}
xl_live() { ms_of "$XL" block-commit --active --pivot "$XD" xvda; XL_MS=$MS; }
ref_live() {
    local t0 t1
    qmp_open "$(sock_of "$RD")"
    t0=${EPOCHREALTIME/./}
    qmp_cmd "$(printf '{"execute": "block-commit", "arguments": {"device": "xvda", "job-id": "raw", "base": "%s", "auto-dismiss": false}}' "$IMG/$RD-xvda.qcow2")"
    [[ $REPLY == *'"return"'* ]] || fail "raw block-commit: $REPLY"
    qmp_wait_job ready
    qmp_cmd '{"execute": "job-complete", "arguments": {"id": "raw"}}'
    qmp_wait_job concluded
    t1=${EPOCHREALTIME/./}
    qmp_cmd '{"execute": "job-dismiss", "arguments": {"id": "raw"}}'
    qmp_close
    REF_MS=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", (b - a) / 1000}')
}
xs=() refs=() prs=()
for ((r = 1; r <= LIVE_ROUNDS; r++)); do
    if (( (r - 1) / 2 % 2 )); then XD=cr RD=cl; else XD=cl RD=cr; fi
    expect_ok xl snapshot-create --diskspec xvda,snapshot=external "$XD" "live$r"
    write_pattern "$XD" xvda 0x5a 0 "${SIZE_MB}M"
    raw_qmp "$(sock_of "$RD")" "$(printf '{"execute": "blockdev-snapshot-sync", "arguments": {"device": "xvda", "snapshot-file": "%s", "format": "qcow2"}}' "$IMG/$RD-xvda.raw$r.qcow2")"
    write_pattern "$RD" xvda 0x5a 0 "${SIZE_MB}M"
    timed_pair "$r" xl_live ref_live
    xs+=("$XL_MS") refs+=("$REF_MS") prs+=("$(ratio "$REF_MS" "$XL_MS")")
done
figure commit.live.xl "$(mibps "$SIZE_MB" "$(median "${xs[@]}")")" MiB/s
figure commit.live.raw "$(mibps "$SIZE_MB" "$(median "${refs[@]}")")" MiB/s "QMP block-commit from a raw client"
figure commit.live.ratio "$(geomean "${prs[@]}")" x "goal >= 0.95 (rounds: ${prs[*]})"

# ---- bandwidth limit
expect_ok xl snapshot-create --diskspec xvda,snapshot=external cl bw
write_pattern cl xvda 0x6b 0 "${BW_MB}M"
ms_of "$XL" block-commit --active --pivot --bandwidth "$BW" cl xvda
got=$(mibps "$BW_MB" "$MS")
figure bandwidth.achieved "$got" MiB/s "requested $BW MiB/s"
figure bandwidth.ratio "$(ratio "$got" "$BW")" x "achieved / requested"
expect_ok xl destroy cl
expect_ok xl destroy cr

# ---- revert latency
make_vm_config rv
expect_ok xl create "$CFG"
expect_ok xl destroy rv
expect_ok xl snapshot-create --diskspec xvdb,snapshot=no rv int
expect_ok xl snapshot-create --diskspec xvda,snapshot=no rv ext
for mode in offline live; do
    if [ "$mode" = live ]; then expect_ok xl create "$CFG"; fi
    for s in int ext; do
        vals=()
        for r in 1 2 3; do
            ms_of "$XL" snapshot-revert rv "$s"
            vals+=("$MS")
            # revert leaves a live domain running (its snapshot was shut off:
            # start it again so that every round starts the same way)
            if [ "$mode" = live ] && ! domain_running rv; then expect_ok xl create "$CFG"; fi
        done
        figure "revert.$mode.$([ "$s" = int ] && echo internal || echo external)" \
            "$(median "${vals[@]}")" ms
    done
    [ "$mode" = live ] && domain_running rv && expect_ok xl destroy rv
done
cp "$IMG/rv-xvda.qcow2" "$T/direct.qcow2"
ms_of qemu-img snapshot -a int "$T/direct.qcow2"
figure revert.offline.internal.qemu_img "$MS" ms "qemu-img snapshot -a, directly"
ms_of qemu-img create -q -f qcow2 -F raw -b "$IMG/rv-xvdb.img" "$T/direct-ov.qcow2"
figure revert.offline.external.qemu_img "$MS" ms "qemu-img create of the overlay, directly"
