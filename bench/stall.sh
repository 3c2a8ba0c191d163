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
# right after it, and as xl does, after asking for the nodes.  The ratio is the median of the rounds' own ratios
# (a pair is measured within milliseconds, so the machine's drift
# between rounds cancels out); 21 rounds, 1 with BENCH_QUICK=1.  Also the whole
# `xl snapshot-create` wall time, split into before QMP (process start,
# lock, records loaded, plan), the QMP exchanges, and after (records
# written, exit), and a bare `xl help` (process start and library
# initialisation).  Then one more create under strace, for its finer
# parts, read from its system calls (strace's own cost included):
# start (exec to the lock: the library, the domain found), lock (the
# flock), plan (the records loaded, QEMU's nodes asked, the journal
# written), qmp (the transaction, to the first record written after
# it), records (to the journal removed), exit.
# Goal: stall ratio <= 1.10.
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
        # as xl does, the nodes asked first on the same session (their
        # long reply through the proxy comes before the transaction too)
        raw_qmp "$sock_b" '{"execute": "query-named-block-nodes", "arguments": {"flat": true}}' "$tx"
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
    if command -v strace >/dev/null; then
        strace -f -tt -T -e trace=execve,flock,rename,unlink,exit_group \
            -o "$T/create.strace" "$XL" snapshot-create "${specs[@]}" "sa$n" traced >/dev/null ||
            fail "the traced snapshot-create failed"
        # shellcheck disable=SC2046
        set -- $(awk '
            function t(s,  a) { split(s, a, ":"); return (a[1] * 3600 + a[2] * 60 + a[3]) * 1000 }
            / execve\(/ && !e { e = t($2) }
            / flock\(/ && !l { l = t($2); match($0, /<[0-9.]+>/); ld = substr($0, RSTART + 1, RLENGTH - 2) * 1000 }
            / rename\(.*journal\.libxl-json"/ && !j { j = t($2); next }
            j && !r && / rename\(/ { r = t($2) }
            / unlink\(.*journal\.libxl-json"/ { u = t($2) }
            / exit_group\(/ { x = t($2) }
            END { printf "%.1f %.2f %.1f %.1f %.1f %.1f\n", l - e, ld, j - l - ld, r - j, u - r, x - u }' \
            "$T/create.strace")
        [ $# -eq 6 ] || fail "cannot read the traced create's parts"
        figure "stall.create_part.start.$n" "$1" ms "exec to the lock (strace)"
        figure "stall.create_part.lock.$n" "$2" ms "flock (strace)"
        figure "stall.create_part.plan.$n" "$3" ms "records, nodes, journal (strace)"
        figure "stall.create_part.qmp.$n" "$4" ms "the transaction (strace)"
        figure "stall.create_part.records.$n" "$5" ms "records written (strace)"
        figure "stall.create_part.exit.$n" "$6" ms "exit (strace)"
    fi
    expect_ok xl destroy "sa$n"
    expect_ok xl destroy "sb$n"
done
