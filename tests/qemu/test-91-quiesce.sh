#!/bin/bash
# test-91-quiesce.sh - guest quiesce through the real QEMU guest agent
#
# A real Linux guest under TCG (tests/qemu/qga-vm: the host's kernel,
# busybox, Debian's qemu-ga), started by the qemu driver from an xl
# config whose channel= names the agent's socket; its disk xvda (qcow2,
# ext4) is mounted in the guest, which writes files to it in a loop.
#
#  1. --quiesce: the agent freezes ext4 for the transaction, then thaws
#     it: the record says "frozen", the guest goes on writing, and the
#     snapshot is a clean file system (e2fsck -n; no journal to
#     recover);
#  2. without --quiesce, for comparison: the snapshot of the mounted,
#     busy file system needs journal recovery (so the check above can
#     fail);
#  3. --quiesce=try with an agent that is not there: crash-consistent,
#     said in the output and in the record;
#  4. --quiesce (required) with an agent that never answers: refused
#     after the timeout, no snapshot, nothing changed; with no agent at
#     all: refused at once.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

command -v qemu-ga >/dev/null || skip "qemu-ga missing (qemu-guest-agent)"
command -v e2fsck >/dev/null || skip "e2fsck missing (e2fsprogs)"
VM=$T/vm
"$(dirname "$0")/qga-vm/build.sh" "$VM" >"$T/build.log" 2>&1 ||
    fail "cannot build the guest: $(tail -n 3 "$T/build.log")"

CON=$T/console.log
QGA=$T/qga.sock
qemu-img create -q -f raw "$T/disk.raw" 64M
mkfs.ext4 -q -F "$T/disk.raw" >/dev/null 2>&1 || fail "mkfs.ext4 failed"
qemu-img convert -O qcow2 "$T/disk.raw" "$IMG/vm1-xvda.qcow2"
rm -f "$T/disk.raw"
CFG=$T/vm1.cfg
cat >"$CFG" <<CFGEOF
name = "vm1"
memory = 256
disk = [ 'format=qcow2,vdev=xvda,access=rw,target=$IMG/vm1-xvda.qcow2' ]
channel = [ 'name=org.qemu.guest_agent.0,connection=socket,path=$QGA' ]
device_model_args = [ '-machine', 'q35', '-accel', 'tcg', '-kernel', '$VM/vmlinuz',
    '-initrd', '$VM/initrd.gz', '-append', 'console=ttyS0 quiet panic=-1',
    '-serial', 'file:$CON', '-device', 'virtio-blk-pci,drive=xvda' ]
CFGEOF

# wait_for ERE SECONDS: until the guest's console shows ERE
wait_for() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        tr -d '\r' <"$CON" 2>/dev/null | grep -qE "$1" && return 0
        grep -q "QGA-ERROR" "$CON" 2>/dev/null && break
        sleep 0.1
    done
    fail "the guest's console never showed '$1'" "$(tail -n 20 "$CON" 2>/dev/null)"
}
last_write() { grep -o 'QGA-W [0-9]*' "$CON" | tail -n 1 | cut -d' ' -f2; }
expect_writing() {
    local n
    n=$(last_write)
    wait_for "^QGA-W $((${n:-0} + 3))\$" 30
}
# fsck_snapshot TAG: e2fsck -n of internal snapshot TAG; prints its
# output, returns its status
fsck_snapshot() {
    rm -f "$T/snap.raw"
    qemu-img convert -U -l "snapshot.name=$1" -O raw "$IMG/vm1-xvda.qcow2" \
        "$T/snap.raw" || return 99
    e2fsck -n -f "$T/snap.raw" >"$T/fsck.out" 2>&1
    local rc=$?
    rm -f "$T/snap.raw"
    return $rc
}

expect_ok xl create "$CFG"
wait_for "QGA-READY" 120
expect_writing

step "--quiesce: frozen for the transaction, thawed after; the snapshot is clean"
expect_ok xl snapshot-create --quiesce vm1 q1
expect_match "$OUT" "frozen" "snapshot-create's message"
expect_ok xl snapshot-info --json vm1 q1
expect_eq "$(jq -r .quiesce <<<"$OUT")" frozen "q1's record"
expect_writing
fsck_snapshot q1
rc=$?
expect_eq "$rc" 0 "e2fsck -n of q1 (quiesced): $(tr '\n' ' ' <"$T/fsck.out")"
expect_no_match "$(cat "$T/fsck.out")" "recovery|needs_recovery" "e2fsck of q1"

step "without --quiesce: the busy file system needs recovery (the check can fail)"
expect_ok xl snapshot-create vm1 c1
expect_ok xl snapshot-info --json vm1 c1
expect_eq "$(jq -r '.quiesce // "none"' <<<"$OUT")" none "c1's record"
fsck_snapshot c1
expect_match "$(cat "$T/fsck.out")" "recovery" "e2fsck -n of c1 (crash-consistent)"

step "--quiesce=try without a reachable agent: crash-consistent, and said"
expect_ok xl snapshot-create --quiesce=try --agent="$T/nosuch.sock" vm1 t1
expect_match "$OUT" "crash-consistent" "snapshot-create's message"
expect_match "$ERR" "crash-consistent" "the warning"
expect_ok xl snapshot-info --json vm1 t1
expect_eq "$(jq -r .quiesce <<<"$OUT")" crash-consistent "t1's record"

step "--quiesce with an agent that never answers: refused after its timeout"
socat UNIX-LISTEN:"$T/hung.sock",fork EXEC:"sleep 60" >/dev/null 2>&1 &
HUNG=$!
at_cleanup "kill $HUNG 2>/dev/null"
sleep 0.3
# the guest writes all the time: the records are compared, and the
# image's snapshots (its data changes anyway)
FP_DIRS=state
fp=$(fingerprint)
expect_error "did not answer|cannot quiesce" xl snapshot-create --quiesce --agent="$T/hung.sock" vm1 h1
expect_unchanged "$fp" "a refused quiesced snapshot"
expect_eq "$(internal_snapshots "$IMG/vm1-xvda.qcow2" | tr '\n' ' ')" "q1 c1 t1 " \
    "the internal snapshots after the refusal"
kill $HUNG 2>/dev/null
expect_writing

step "--quiesce of a domain without an agent: refused at once"
expect_ok xl destroy vm1
sed -i '/^channel/d' "$CFG"
expect_ok xl create "$CFG"
fp=$(fingerprint)
expect_error "no guest agent" xl snapshot-create --quiesce vm1 n1
expect_unchanged "$fp" "--quiesce without an agent"
expect_error "shut off|disk-only" xl snapshot-create --quiesce --memory vm1 n2
expect_ok xl snapshot-list --name vm1
expect_eq "$(echo $OUT)" "q1 c1 t1" "the snapshots at the end"
check_images
