#!/bin/bash
# bench/stall.sh - guest I/O stall of a live disk-only snapshot, for 1,
# 4 and 8 disks, against the same QMP transaction sent by a raw client
#
# The stall is how long QEMU holds the disks drained for the snapshot:
# the `transaction` command's time from the request reaching QEMU's
# socket to its reply leaving it, seen by a socat proxy (-v timestamps)
# in front of the socket.  The same proxy stands in front of a second,
# identical domain, to which a raw client (socat, no library) sends the
# very transaction xl sent (its file names moved to that domain's),
# right after it.  The ratio is the median of the rounds' own ratios
# (a pair is measured within milliseconds, so the machine's drift
# between rounds cancels out); 21 rounds, 1 with BENCH_QUICK=1.  Also the whole
# `xl snapshot-create` wall time, split into before QMP (process start,
# lock, records loaded, plan), the QMP exchanges, and after (records
# written, exit), and a bare `xl help` (process start and library
# initialisation).  Goal: stall ratio <= 1.10.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/../tests/qemu/lib.sh"
# shellcheck source=bench/lib-bench.sh
. "$(dirname "$0")/lib-bench.sh"

COUNTS=(1 4 8)
ROUNDS=21
[ "$QUICK" = 1 ] && COUNTS=(1) && ROUNDS=1

ms_of "$XL" help
figure stall.xl_help_wall "$MS" ms "process start"
for n in "${COUNTS[@]}"; do
    vm_config "sa$n" "$n"; cfg_a=$CFG
    vm_config "sb$n" "$n"; cfg_b=$CFG
    expect_ok xl create "$cfg_a"
    expect_ok xl create "$cfg_b"
    proxy_qmp "sa$n"; sock_a=$PROXY_SOCK
    proxy_qmp "sb$n"; sock_b=$PROXY_SOCK
    : "$sock_a"
    specs=()
    for ((i = 0; i < n; i++)); do
        specs+=(--diskspec "xvd$(printf "\\x$(printf %x $((97 + i)))"),snapshot=external")
    done
    xs=() rs=() prs=() walls=() pres=() qmps=() posts=()
    for ((r = 1; r <= ROUNDS; r++)); do
        t0=${EPOCHREALTIME/./}
        expect_ok xl snapshot-create "${specs[@]}" "sa$n" "r$r"
        t1=${EPOCHREALTIME/./}
        read -r req rep < <(qmp_times "$T/proxy-sa$n.log" transaction)
        [ -n "${rep:-}" ] || fail "no transaction in the proxy's log"
        xs+=("$(awk -v a="$req" -v b="$rep" 'BEGIN {printf "%.2f", (b - a) / 1000}')")
        walls+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", (b - a) / 1000}')")
        # the first request and the last reply of this command, as
        # epoch microseconds (the log has local date and time)
        read -r fd ft ld lt < <(awk '/^[<>] [0-9]+\// {
                if (!f) { fd = $2; ft = $3; f = 1 } ld = $2; lt = $3 }
            END { print fd, ft, ld, lt }' "$T/proxy-sa$n.log")
        f_abs=$(( $(date -d "${fd//\//-} ${ft%%.*}" +%s) * 1000000 + 10#${ft##*.} % 1000000 ))
        l_abs=$(( $(date -d "${ld//\//-} ${lt%%.*}" +%s) * 1000000 + 10#${lt##*.} % 1000000 ))
        pres+=("$(awk -v a="$t0" -v b="$f_abs" 'BEGIN {printf "%.1f", (b - a) / 1000}')")
        qmps+=("$(awk -v a="$f_abs" -v b="$l_abs" 'BEGIN {printf "%.1f", (b - a) / 1000}')")
        posts+=("$(awk -v a="$l_abs" -v b="$t1" 'BEGIN {printf "%.1f", (b - a) / 1000}')")
        # the very same transaction from a raw client, on domain b
        tx=$(qmp_request "$T/proxy-sa$n.log" transaction)
        tx=${tx//$IMG\/sa$n-/$IMG\/sb$n-}
        tx=${tx%\\r}                    # socat -v shows the CR as \r
        : > "$T/proxy-sa$n.log"
        raw_qmp "$sock_b" "$tx"
        read -r req rep < <(qmp_times "$T/proxy-sb$n.log" transaction)
        [ -n "${rep:-}" ] || fail "no raw transaction in the proxy's log"
        rs+=("$(awk -v a="$req" -v b="$rep" 'BEGIN {printf "%.2f", (b - a) / 1000}')")
        prs+=("$(ratio "${xs[-1]}" "${rs[-1]}")")
        : > "$T/proxy-sb$n.log"
    done
    mx=$(median "${xs[@]}") mr=$(median "${rs[@]}")
    figure "stall.raw.$n" "$mr" ms "a raw client's transaction"
    figure "stall.ratio.$n" "$(median "${prs[@]}")" x "goal <= 1.10"
    figure "stall.xl.$n" "$mx" ms
    figure "stall.create_wall.$n" "$(median "${walls[@]}")" ms
    figure "stall.create_before_qmp.$n" "$(median "${pres[@]}")" ms "process start, lock, records, plan"
    figure "stall.create_qmp.$n" "$(median "${qmps[@]}")" ms "QMP exchanges"
    figure "stall.create_after_qmp.$n" "$(median "${posts[@]}")" ms "records written, exit"
    expect_ok xl destroy "sa$n"
    expect_ok xl destroy "sb$n"
done
