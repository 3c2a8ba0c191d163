#!/bin/bash
# bench/memory-pause.sh - guest pause of a memory checkpoint, live
# against stop-the-world, on the same qemu-driver domain in one run
#
# The domain has $BENCH_RAM_MB of RAM (512; 64 with BENCH_QUICK=1) in a
# shared memory-backend-file, filled with random data so that no page
# is skipped as zero.  A second QMP monitor (device_model_args) listens
# to QEMU's events; the pause is RESUME's timestamp minus STOP's, as
# QEMU stamps them.  Prints one line per figure:
#   <name> <value> <unit> [<reference>]
# The qemu-driver domain has no vCPU (-machine none), so nothing dirties
# its memory while it is copied: the live figure is the floor the
# orchestration adds (final pass, disk transaction, cont).
# Not a test: nothing here passes or fails on timing.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/../tests/qemu/lib.sh"
# shellcheck source=bench/lib-bench.sh
. "$(dirname "$0")/lib-bench.sh"

MB=${BENCH_RAM_MB:-512}
[ "${BENCH_QUICK:-0}" = 1 ] && MB=64
RAM=$T/ram
EV=$T/events.sock

make_vm_config vm1 "device_model_args = [ '-object', 'memory-backend-file,id=ram0,size=${MB}M,mem-path=$RAM,share=on', '-machine', 'memory-backend=ram0', '-qmp', 'unix:$EV,server=on,wait=off' ]"
sed -i "s/^memory = .*/memory = $MB/" "$CFG"
expect_ok xl create "$CFG"
dd if=/dev/urandom of="$RAM" bs=1M count="$MB" conv=notrunc status=none

# pause_of KIND NAME: takes the checkpoint with the event monitor
# listening; sets PAUSE (ms, from QEMU's STOP and RESUME timestamps)
# and WALL (the command's wall time, ms)
pause_of() {
    local kind=$1 name=$2 log=$T/events-$2.log t0 t1
    ( { echo '{"execute": "qmp_capabilities"}'; sleep 60; } |
          timeout 70 socat -t 1 - "UNIX-CONNECT:$EV" >"$log" 2>/dev/null ) &
    at_cleanup "pkill -f 'socat -t 1 - UNIX-CONNECT:$EV' 2>/dev/null"
    sleep 0.3
    t0=${EPOCHREALTIME/./}
    if [ "$kind" = live ]; then
        expect_ok xl snapshot-create --live vm1 "$name"
    else
        expect_ok xl snapshot-create --memory vm1 "$name"
    fi
    t1=${EPOCHREALTIME/./}
    sleep 0.3
    pkill -f "socat -t 1 - UNIX-CONNECT:$EV" 2>/dev/null
    WALL=$(( (t1 - t0) / 1000 ))
    PAUSE=$(jq -rs '
        def ts: .timestamp.seconds * 1000000 + .timestamp.microseconds;
        ([.[] | select(.event == "STOP")][0] | ts) as $stop |
        ([.[] | select(.event == "RESUME")][-1] | ts) as $resume |
        (($resume - $stop) / 1000) | floor' "$log")
}

pause_of stw b-stw
stw_pause=$PAUSE stw_wall=$WALL
pause_of live b-live
live_pause=$PAUSE live_wall=$WALL
size=$(stat -c %s "$(domain_dir vm1)/b-live.save")

figure memory.ram "$MB" MiB
figure memory.image_size "$((size / 1048576))" MiB
figure memory.pause.stop_the_world "$stw_pause" ms
figure memory.wall.stop_the_world "$stw_wall" ms
figure memory.pause.live "$live_pause" ms
figure memory.wall.live "$live_wall" ms
figure memory.pause_ratio "$(ratio "$live_pause" "$stw_pause")" x "live / stop-the-world, target <= 0.20"
