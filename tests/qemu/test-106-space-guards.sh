#!/bin/bash
# test-106-space-guards.sh - snapshot-create refuses a snapshot that
# cannot fit, before anything is touched (issue 20)
#
# Tiny tmpfs file systems under $T, unmounted at exit: the images'
# ($IMGFS), the state dir's ($STATE itself) and a memory image's
# ($MEMFS), each filled (leave_free) until the snapshot cannot fit.
# The domain has a second QMP monitor (device_model_args), on which
# qmp-events.py records every event QEMU sends: a refused create must
# leave no STOP event (the guest never paused), and a checkpoint that
# goes through must leave one (the listener works).
#  - dry run (-N): the figures per file system, nothing done;
#  - (a) images: refused in one line naming the mount point, the device
#    and the figures (internal snapshot of xvda + overlay of xvdb added
#    up), -N refused alike; nothing changed (records, journal, files,
#    qemu-img info --backing-chain), no STOP;
#  - (b) the state dir: the same for records and journal; the default
#    memory image beside the records adds up with them;
#  - (c) a memory image on a 32 MiB tmpfs for 64 MiB of RAM: refused
#    (stop-the-world and --live), no STOP, nothing written;
#  - --force on each, with no space at all: one warning line listing
#    what it overrode, then the create fails for ENOSPC and leaves the
#    domain wholly old (snapshot-check clean, no journal, no partial
#    file; after a failed memory save, the guest runs);
#  - once there is room, the same snapshots are taken (data read back).
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

IMGFS=$T/imgfs
MEMFS=$T/memfs
EV=$T/events.log
# shellcheck disable=SC2016  # expanded at cleanup
at_cleanup 'for m in "$T/state" "$T/imgfs" "$T/memfs"; do mountpoint -q "$m" && umount "$m"; done'
mount_tmpfs "$STATE" 4M || exit 77
mount_tmpfs "$IMGFS" 16M || exit 77
mount_tmpfs "$MEMFS" 32M || exit 77
FP_DIRS="state img run imgfs memfs"

# leave_free DIR KIB: DIR's file system filled up but for KIB KiB
leave_free() {
    rm -f "$1/filler"
    dd if=/dev/zero of="$1/filler" bs=64k 2>/dev/null
    [ "$2" -gt 0 ] && truncate -s -"$2"K "$1/filler"
    sync
}

# the events since ev_mark; expect_no_stop WHAT: none of them a STOP
ev_mark() { sleep 0.2; EV_AT=$(wc -l <"$EV"); }
ev_since() { sleep 0.3; tail -n +$((EV_AT + 1)) "$EV"; }
expect_no_stop() {
    local e
    e=$(ev_since)
    ! grep -q '"STOP"' <<<"$e" || fail "$1: QEMU sent a STOP event (the guest was paused)" "$e"
}

# chains: both disks' backing chains and internal snapshots
chains() {
    local v img
    for v in xvda xvdb; do
        img=$(active_image vm "$v")
        echo "$v: $(backing_chain "$img" | tr '\n' ' ')"
        [ "$(image_format "$img")" = qcow2 ] &&
            echo "$v tags: $(internal_snapshots "$img" | tr '\n' ' ')"
    done
}

# refused_space NAME WHERE ERE CMD...: refused in one line "not enough
# space for snapshot 'NAME': WHERE (tmpfs) needs ...", nothing changed,
# no STOP event
refused_space() {
    local name=$1 where=$2 ere=$3 c
    shift 3
    c=$(chains)
    ev_mark
    refused "not enough space for snapshot '$name': .*$where \(tmpfs\) needs [0-9.]+ [KMG]?i?B \($ere\), [0-9.]+ [KMG]?i?B free \(--force to take it anyway\)$" "$@"
    expect_eq "$(chains)" "$c" "the chains after the refused snapshot-create"
    expect_no_stop "$(printf '%q ' "$@")"
    expect_no_file "$(domain_dir vm)/journal.libxl-json"
}

# forced_fails WHAT CMD...: --force says what it overrides in one
# warning line, then the create fails; the domain wholly old
forced_fails() {
    local what=$1 c n
    shift
    c=$(chains)
    n=$(xl snapshot-list --name vm | wc -l)
    run "$@"
    expect_eq "$RC" 1 "$what: the exit status of the forced create"
    expect_match "$(head -n 1 <<<"$ERR")" "^libxl-snapshot: warning: --force: snapshot '.*' goes on without enough space: .* needs " "$what: the first line"
    expect_eq "$(grep -c 'warning: --force' <<<"$ERR")" 1 "$what: the --force warning lines"
    expect_match "$ERR" "error: " "$what: the failure"
    expect_eq "$(chains)" "$c" "$what: the chains after the failed forced create"
    expect_eq "$(xl snapshot-list --name vm | wc -l)" "$n" "$what: the snapshots after it"
    expect_no_file "$(domain_dir vm)/journal.libxl-json"
    expect_ok xl snapshot-check vm
    expect_match "$OUT" "the records and the images agree" "$what: snapshot-check"
}

VM_IMG_DIR=$IMGFS make_vm_config vm \
    "device_model_args = [ '-qmp', 'unix:$T/ev.sock,server=on,wait=off' ]"
expect_ok xl create "$CFG"
python3 "$LIB_DIR/qmp-events.py" "$T/ev.sock" "$EV" &
BG_PIDS="${BG_PIDS:-} $!"
for _ in $(seq 100); do
    grep -q LISTENING "$EV" 2>/dev/null && break
    sleep 0.05
done
grep -q LISTENING "$EV" 2>/dev/null || fail "the QMP event listener did not connect"
write_pattern vm xvda 0x11 0 64K
write_pattern vm xvdb 0x12 0 64K

step "dry run: the figures per file system, nothing done"
fp=$(fingerprint)
expect_ok xl snapshot-create -N vm d0
expect_match "$ERR" "space on $IMGFS \(tmpfs\): snapshot 'd0' needs [0-9.]+ MiB \(internal snapshot of xvda [0-9.]+ MiB, overlay of xvdb [0-9.]+ MiB\), [0-9.]+ MiB free" "the dry run's figures (images)"
expect_match "$ERR" "space on $STATE \(tmpfs\): snapshot 'd0' needs [0-9.]+ KiB \(records and journal [0-9.]+ KiB\)" "the dry run's figures (state dir)"
expect_unchanged "$fp" "a dry run"

step "a threshold that is not a number: one line naming where it came from"
refused "XL_SNAPSHOT_SPACE_THRESHOLD=abc" env XL_SNAPSHOT_SPACE_THRESHOLD=abc "$XL" snapshot-create vm x1

step "(a) images on a full file system: refused, nothing touched"
leave_free "$IMGFS" 512
refused_space a1 "$IMGFS" "internal snapshot of xvda .*, overlay of xvdb .*" \
    xl snapshot-create vm a1
refused_space a1 "$IMGFS" "overlay of xvda .*, overlay of xvdb .*" \
    xl snapshot-create --diskspec xvda,snapshot=external vm a1
# a dry run says the figures, then the refusal
fp=$(fingerprint)
run xl snapshot-create -N vm a1
expect_eq "$RC" 1 "the exit status of a refused dry run"
expect_eq "$(grep -c 'notice: space on ' <<<"$ERR")" 2 "the dry run's figures"
expect_match "$(tail -n 1 <<<"$ERR")" "^libxl-snapshot: error: not enough space for snapshot 'a1': $IMGFS \(tmpfs\) needs" "the dry run's last line"
expect_unchanged "$fp" "a refused dry run"
# a disk left out is not counted
refused_space a1 "$IMGFS" "overlay of xvdb [0-9.]+ MiB" \
    xl snapshot-create --diskspec xvda,snapshot=no vm a1
leave_free "$IMGFS" 0
forced_fails "(a) --force, images" xl snapshot-create --force vm a2
check_images "$IMGFS"
rm -f "$IMGFS/filler"
expect_ok xl snapshot-create vm a3
write_pattern vm xvda 0x13 0 64K
expect_ok xl snapshot-check vm
expect_match "$OUT" "the records and the images agree" "snapshot-check after a3"

step "(b) the state dir full: refused, nothing touched"
leave_free "$STATE" 16
refused_space b1 "$STATE" "records and journal [0-9.]+ KiB" xl snapshot-create vm b1
# the default memory image goes beside the records: they add up
refused_space b1 "$STATE" "memory image [0-9.]+ MiB, records and journal [0-9.]+ KiB" \
    xl snapshot-create --memory vm b1
leave_free "$STATE" 0
forced_fails "(b) --force, state dir" xl snapshot-create --force vm b2
rm -f "$STATE/filler"
expect_ok xl snapshot-create vm b3

step "(c) a memory image that cannot fit: refused, the guest never paused"
refused_space c1 "$MEMFS" "memory image 68.2 MiB" \
    xl snapshot-create --memory="$MEMFS/c1.save" vm c1
refused_space c1 "$MEMFS" "memory image 68.2 MiB" \
    xl snapshot-create --live --memory="$MEMFS/c1.save" vm c1
leave_free "$MEMFS" 0
ev_mark
forced_fails "(c) --force, memory" xl snapshot-create --force --memory="$MEMFS/c2.save" vm c2
expect_eq "$(ls -A "$MEMFS")" "filler" "what the memory image's file system holds"
run xl list vm
expect_eq "$(awk 'NR == 2 {print $3}' <<<"$OUT")" "r-----" "vm runs after the failed checkpoint"
# the listener sees a pause: the forced checkpoint's STOP, then RESUME
e=$(ev_since)
expect_match "$e" '"STOP"' "the events of the forced checkpoint"
expect_match "$e" '"RESUME"' "the events of the forced checkpoint"
rm -f "$MEMFS/filler"
ev_mark
expect_ok xl snapshot-create --memory="$T/c3.save" vm c3
expect_match "$(ev_since)" '"STOP"' "the events of a checkpoint that fits"
expect_file "$T/c3.save"

step "the snapshots that fitted, all there"
expect_ok xl snapshot-list --name vm
expect_eq "$(tr '\n' ' ' <<<"$OUT")" "a3 b3 c3 " "the snapshots"
expect_ok xl snapshot-revert vm a3
read_pattern "$(active_image vm xvda)" 0x11 0 64K
read_pattern "$(active_image vm xvdb)" 0x12 0 64K
expect_ok xl snapshot-check vm
expect_match "$OUT" "the records and the images agree" "the last snapshot-check"
expect_ok xl destroy vm
# QEMU's internal snapshot that failed for ENOSPC under --force may
# leak a cluster (its own refcount update, "no harm to data"): no
# corruption, a few leaks at most, repaired by qemu-img check -r leaks
run qemu-img check --output=json "$IMGFS/vm-xvda.qcow2"
expect_match "$OUT" '"check-errors": 0' "qemu-img check of xvda's image"
expect_no_match "$OUT" '"corruptions": [1-9]' "qemu-img check of xvda's image"
expect_no_match "$OUT" '"leaks": ([3-9]|[1-9][0-9])' "qemu-img check of xvda's image"
expect_ok qemu-img check -q -r leaks "$IMGFS/vm-xvda.qcow2"
check_images "$IMGFS"
finish
