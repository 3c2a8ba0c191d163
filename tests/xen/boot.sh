#!/bin/bash
# boot.sh - boots Xen 4.17 and dom0 under QEMU (KVM or TCG), lets dom0 run the
# scenarios, and decides pass or fail from the serial console.
#
# Run after build-domU.sh and build-dom0.sh.  QEMU exits 0 whatever
# happened inside (even after a crash), so the verdict comes from the
# markers only (see scenarios.sh):
#   - every scenario of $XEN_TEST_SCENARIO_LIST must print XLSNAP-PASS;
#   - XLSNAP-DONE must be printed (the script ran to its end);
#   - the outer timeout ($XEN_TEST_TIMEOUT s, default 2400) or a panic
#     is a failure.
# A whole run takes about 20 min on an idle 2-core machine, 30 min
# when other QEMUs compete for the cores (2026-12-03, load 4); the
# timeout only stops a hung run.
# Closes with "check-xen: N passed, N failed" and exits 0 only when
# everything passed.
#
# Boot facts (see the xen-tcg-probe report): QEMU's multiboot loader
# needs Xen as an ELF, so the .gz is unpacked; `-cpu max` crashes a PV
# dom0 under TCG (SMAP), so qemu64,+svm as in Xen's CI; no Xen
# `noreboot`, so a crash reboots, and -no-reboot makes QEMU exit
# instead of hanging until the timeout.
#
# Files in $WORK: serial.log (the whole console, each line with the
# seconds since QEMU started), xen.elf, vmlinuz, qemu.pid.
# Environment: XEN_TEST_TIMEOUT, XEN_TEST_DOM0_ARGS (more dom0 kernel
# arguments, e.g. xentest.shell), XEN_TEST_CPU (QEMU's -cpu, default
# qemu64,+svm,+npt), XEN_TEST_VERBOSE=1 (the console as
# it comes, instead of the markers only).
set -uo pipefail
# shellcheck source=tests/xen/lib.sh
. "$(dirname "$0")/lib.sh"

SCENARIOS=${XEN_TEST_SCENARIO_LIST:-"6 setup 1 2 8 4a 3 4b 14 15 5 7 9 9t 9n 10 11 12 13"}
TIMEOUT=${XEN_TEST_TIMEOUT:-2400}
# The accelerator: KVM when /dev/kvm opens (read-write) and
# XEN_TEST_ACCEL is not tcg, else TCG; XEN_TEST_ACCEL=kvm insists on
# KVM (fails without it), =tcg keeps the TCG path tested on a machine
# that has KVM.  The same scenarios run either way.
# -cpu under TCG: +npt (TCG's nested paging) gives Xen HAP, which HVM
# guests need (Debian's Xen has no shadow paging): scenario 11 boots
# one.  Under KVM: host, whose svm/vmx (and npt/ept) Xen sees when the
# host's kvm module allows nesting; without it Xen has no HAP and
# scenario 11 checks that xl create says why.
ACCEL=${XEN_TEST_ACCEL:-auto}
# (a /dev/kvm that opens is not always KVM: here one answers "kvm
# version too old"; QEMU itself must start with it)
kvm_opens() {
    { exec 3<>/dev/kvm; } 2>/dev/null || return 1
    exec 3>&-
    echo quit | timeout 20 qemu-system-x86_64 -machine none -accel kvm \
        -nodefaults -display none -monitor stdio >/dev/null 2>&1
}
case $ACCEL in
auto) if kvm_opens; then ACCEL=kvm; else ACCEL=tcg; fi ;;
kvm) kvm_opens || xt_die "XEN_TEST_ACCEL=kvm, but QEMU cannot start with -accel kvm here" ;;
tcg) ;;
*) xt_die "XEN_TEST_ACCEL='$ACCEL': auto, kvm or tcg" ;;
esac
if [ "$ACCEL" = kvm ]; then
    ACCEL_ARGS=(-accel kvm)
    CPU=${XEN_TEST_CPU:-host}
else
    ACCEL_ARGS=(-accel tcg,thread=multi)
    CPU=${XEN_TEST_CPU:-qemu64,+svm,+npt}
fi
LOG=$WORK/serial.log

[ -n "$KVER" ] || xt_die "no kernel in /boot with modules in /lib/modules"
[ -f "$WORK/dom0.cpio.gz" ] || xt_die "run build-dom0.sh first"
[ -f "$XEN_GZ" ] || xt_die "$XEN_GZ missing (xen-hypervisor-4.17-amd64)"
command -v qemu-system-x86_64 >/dev/null || xt_die "qemu-system-x86_64 missing"
case $WORK in
*[,\ ]*) xt_die "the work directory '$WORK' must not hold a comma or a blank (QEMU's -initrd list)" ;;
esac

zcat "$XEN_GZ" > "$WORK/xen.elf" || xt_die "cannot unpack $XEN_GZ"
cp "/boot/vmlinuz-$KVER" "$WORK/vmlinuz"
rm -f "$WORK/qemu.pid" "$LOG"

# Our QEMU only: by the pid it wrote, and only if its command line
# names our work directory.
kill_qemu() {
    local pid
    pid=$(cat "$WORK/qemu.pid" 2>/dev/null) || return 0
    [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null |
        grep -qF "$WORK/" && kill "$pid" 2>/dev/null
    return 0
}
# Ceph (scenario 12, the kernel form of RBD disks): a throw-away
# cluster on this machine (tests/ceph/cluster.sh), not in dom0: dom0 has
# no python for the ceph CLI that sets a cluster up, and a mon and an
# OSD under TCG in dom0's 1 GiB would slow every scenario.  Dom0 reaches
# it through QEMU's user network, at this machine's own address (not
# 127.0.0.1: the mon and the OSD advertise the address they bind, and
# 127.0.0.1 in dom0 is dom0), which the user network connects to as a
# host socket.  Stopped by PID on any exit.
CEPH_DIR=
NET=()
stop_ceph() {
    [ -n "$CEPH_DIR" ] && "$REPO/tests/ceph/cluster.sh" stop "$CEPH_DIR"
    CEPH_DIR=
}
case " $SCENARIOS " in
*" 12 "*)
    addr=$(ip -4 -o addr show scope global 2>/dev/null |
           awk '{sub("/.*", "", $4); print $4; exit}')
    port=${XEN_TEST_CEPH_PORT:-16792}
    if [ -z "$addr" ] || ! command -v ceph-mon >/dev/null; then
        xt_say "no Ceph cluster for scenario 12 (no ceph-mon, or no address but 127.0.0.1)"
    elif "$REPO/tests/ceph/cluster.sh" start "$WORK/ceph" "$port" "$addr"             >"$WORK/ceph.log" 2>&1; then
        CEPH_DIR=$WORK/ceph
        NET=(-netdev user,id=n0 -device e1000e,netdev=n0)
        XEN_TEST_DOM0_ARGS="${XEN_TEST_DOM0_ARGS:-} xentest.ceph=$addr:$port"
        xt_say "Ceph cluster for scenario 12 on $addr:$port"
    else
        xt_say "the Ceph cluster for scenario 12 did not start: $(tail -n 3 "$WORK/ceph.log" | tr '\n' ' ')"
    fi ;;
esac
trap 'kill_qemu; stop_ceph; exit 130' INT TERM
trap 'kill_qemu; stop_ceph' EXIT

XEN_ARGS="dom0_mem=1G,max:1G dom0_max_vcpus=2 console=com1 com1=115200,8n1 bootscrub=0"
DOM0_ARGS="console=hvc0 earlyprintk=xen loglevel=3 ${XEN_TEST_DOM0_ARGS:-}"

xt_say "booting Xen + dom0 (kernel $KVER) under ${ACCEL^^} (-cpu $CPU), timeout ${TIMEOUT}s; console in $LOG"
t0=$(date +%s)
start=${EPOCHREALTIME/./}
timeout --kill-after=10 "$TIMEOUT" \
    qemu-system-x86_64 -name xl-snapshot-xen-test \
        -machine q35 "${ACCEL_ARGS[@]}" -cpu "$CPU" -m 2G -smp 2 \
        -display none -serial stdio -monitor none -no-reboot "${NET[@]}" \
        -pidfile "$WORK/qemu.pid" \
        -kernel "$WORK/xen.elf" -append "$XEN_ARGS" \
        -initrd "$WORK/vmlinuz $DOM0_ARGS,$WORK/dom0.cpio.gz" \
        </dev/null 2>&1 |
    while IFS= read -r line; do
        line=${line//$'\r'/}
        ds=$(( (${EPOCHREALTIME/./} - start) / 100000 ))
        printf -v stamp '%5d.%d' $((ds / 10)) $((ds % 10))
        printf '[%s] %s\n' "$stamp" "$line" >>"$LOG"
        if [ "${XEN_TEST_VERBOSE:-0}" = 1 ]; then
            printf '[%s] %s\n' "$stamp" "$line"
        else
            case $line in
            *XLSNAP-*|*"(XEN) Panic"*|*"Kernel panic"*|*"crashed"*)
                printf '[%s] %s\n' "$stamp" "$line" ;;
            esac
        fi
    done
qemu_rc=${PIPESTATUS[0]}
t1=$(date +%s)

# ---------------------------------------------------------------- verdict
passed=0
failed=0
notes=()
marker() { grep -E "$1" "$LOG" >/dev/null 2>&1; }

echo
echo "=== check-xen: results"
# title FROM BEGIN MARKER, seconds from the result marker
title() {
    grep -m1 -E "XLSNAP-BEGIN: $1 " "$LOG" |
        sed -E "s/.*XLSNAP-BEGIN: $1 (.*) \[[0-9.]+\]\$/\1/"
}
secs() {
    grep -m1 -E "XLSNAP-(PASS|FAIL): $1( |\$)" "$LOG" | grep -oE '[0-9.]+s\)' | tr -d ')'
}
for s in $SCENARIOS; do
    if marker "XLSNAP-PASS: $s( |\$)"; then
        printf '  PASS  %-6s %6s  %s\n' "$s" "$(secs "$s")" "$(title "$s")"
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        if marker "XLSNAP-FAIL: $s( |\$)"; then
            printf '  FAIL  %-6s %6s  %s\n' "$s" "$(secs "$s")" "$(title "$s")"
            grep -E "XLSNAP-(CHECK-FAIL|NOTE): $s:" "$LOG" | sed 's/^\[[ 0-9.]*\] /                 /'
        else
            printf '  FAIL  %-6s %6s  %s: no result on the console\n' "$s" "" "$(title "$s")"
        fi
    fi
done
if marker 'XLSNAP-DONE'; then
    echo "  PASS  scenarios ran to their end (XLSNAP-DONE)"
    passed=$((passed + 1))
else
    echo "  FAIL  no XLSNAP-DONE: the run did not reach its end"
    failed=$((failed + 1))
fi
[ "$qemu_rc" -eq 124 ] || [ "$qemu_rc" -eq 137 ] &&
    notes+=("QEMU was stopped by the ${TIMEOUT}s timeout")
marker 'XLSNAP-DOM0-READY' || notes+=("dom0 never became ready")
marker 'Kernel panic|\(XEN\) Panic|Hardware Dom0 crashed|Domain 0 crashed' &&
    notes+=("a panic or crash is on the console")
marker 'XLSNAP-FAIL: dom0' && notes+=("$(grep -m1 'XLSNAP-FAIL: dom0' "$LOG")")
for n in "${notes[@]}"; do
    echo "  NOTE  $n"
done
if [ ${#notes[@]} -gt 0 ] && [ "$failed" -eq 0 ]; then
    failed=1
fi

ready=$(grep -m1 'XLSNAP-DOM0-READY' "$LOG" | cut -c2-8 | tr -d ' ')
echo "timings (${ACCEL^^}): boot to dom0 ready ${ready:-?}s, QEMU run $((t1 - t0))s (exit $qemu_rc)"
if [ "$failed" -ne 0 ]; then
    echo "--- last lines of the console ($LOG):"
    tail -n 40 "$LOG"
    echo "---"
fi
echo "check-xen: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
