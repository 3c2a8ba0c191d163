#!/bin/bash
# test-90-memory.sh - memory checkpoints on the qemu driver
#
# The domain's RAM is a shared memory-backend-file ($T/ram, through the
# config's device_model_args), so the test can write a marker that only
# the guest's memory holds, and read it back after a revert: the
# restored QEMU loads the saved RAM into the same file.
#
#  1. stop-the-world checkpoint m1 (marker ONE, disk data 0x11), then
#     a live checkpoint m2 (marker TWO, 0x22); list and info show the
#     memory images;
#  2. marker THREE, data 0x33; revert to m1: the domain runs again
#     (not booted: restored), its RAM holds ONE, its disks 0x11; revert
#     to m2 --paused: paused, TWO, 0x22; unpause;
#  3. delete m1: its memory image goes with its record; a checkpoint
#     with --memory=FILE relative to xl's working directory;
#  4. bad input: --memory on a shut-off domain, an existing memory
#     file, an existing <file>.tmp (where the image is written until
#     complete: kept), --live without memory on a shut-off domain...
#     refused with nothing changed;
#  5. a memory save that cannot fit: refused before anything is done
#     (space guards); with --force, the save fails (its file system
#     fills up): the domain still runs, no record, no partial file, no
#     overlay left.
# After each step: qemu-img check, and no orphaned image.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

RAM=$T/ram
MARK_OFF=1048576

# mark TEXT: put TEXT in the guest's RAM (8 bytes at 1 MiB)
mark() {
    printf '%-8s' "$1" | dd of="$RAM" bs=1 seek=$MARK_OFF conv=notrunc status=none
}
expect_mark() {
    expect_eq "$(dd if="$RAM" bs=1 skip=$MARK_OFF count=8 status=none | tr -d ' ')" \
        "$1" "the marker in the guest's RAM"
}
domain_state() {
    run xl list vm1
    awk 'NR == 2 {print $3}' <<<"$OUT"
}
after_step() {
    check_images
    expect_no_orphans vm1 xvda xvdb
}

make_vm_config vm1 "device_model_args = [ '-object', 'memory-backend-file,id=ram0,size=64M,mem-path=$RAM,share=on', '-machine', 'memory-backend=ram0' ]"
expect_ok xl create "$CFG"

step "m1: stop-the-world checkpoint"
mark ONE
write_disks vm1 0x11
expect_ok xl snapshot-create --memory vm1 m1
expect_match "$OUT" "with memory" "snapshot-create's message"
M1=$(domain_dir vm1)/m1.save
expect_file "$M1"
expect_eq "$(domain_state)" "r-----" "vm1 runs after the checkpoint"
after_step

step "m2: live checkpoint into a file of our choosing"
mark TWO
write_disks vm1 0x22
expect_ok xl snapshot-create --live --verbose --memory="$T/m2.mem" vm1 m2
expect_file "$T/m2.mem"
expect_no_file "$T/m2.mem.tmp"      # where it was written until complete
# --verbose: the save's progress to this pipe, then its time and speed
expect_match "$OUT" "^Memory: \\[100 %\\] [0-9]+/[0-9]+ MiB$" "the progress lines"
expect_match "$(tail -n 1 <<<"$OUT")" "^Memory: [0-9.]+ MiB in [0-9.]+ s \\([0-9.]+ MiB/s\\)$" \
    "the memory's time and speed"
expect_eq "$(domain_state)" "r-----" "vm1 runs after the live checkpoint"
expect_ok xl snapshot-info --json vm1 m2
expect_eq "$(jq -r .memory <<<"$OUT")" "$T/m2.mem" "m2's memory in its record"
expect_ok xl snapshot-list vm1
expect_eq "$(awk 'NR > 1 {print $1, ($NF == "-" ? "none" : "some")}' <<<"$OUT")" \
"m1 some
m2 some" "the MEMORY column"
after_step

step "a snapshot config with memory = \"yes\": a checkpoint too"
cat >"$T/snapshot-m3.cfg" <<SNAPEOF
name = "m3"
memory = "yes"
SNAPEOF
expect_ok xl snapshot-create "$T/snapshot-m3.cfg" vm1
expect_file "$(domain_dir vm1)/m3.save"
expect_ok xl snapshot-delete vm1 m3
expect_no_file "$(domain_dir vm1)/m3.save"
after_step

step "revert to m1: restored running, with m1's memory and disks"
mark THREE
write_disks vm1 0x33
expect_ok xl snapshot-revert vm1 m1
# to a pipe without --verbose: no progress lines, but the time and speed
expect_no_match "$OUT" "^Memory: \\[" "progress lines to a pipe without --verbose"
expect_match "$(tail -n 1 <<<"$OUT")" "^Memory: [0-9.]+ MiB in [0-9.]+ s \\([0-9.]+ MiB/s\\)$" \
    "the restore's time and speed"
expect_eq "$(domain_state)" "r-----" "vm1 runs after the revert to m1"
expect_mark ONE
expect_disks vm1 0x11
after_step

step "revert to m2 --paused: restored paused, with m2's memory and disks"
expect_ok xl snapshot-revert --paused --verbose vm1 m2
# --verbose: how far QEMU has read the image, up to all of it
size=$(stat -c %s "$T/m2.mem")
mib=$(( size >> 20 ))
mib1=$(awk -v b="$size" 'BEGIN {printf "%.1f", b / 1048576}')
expect_match "$OUT" "^Memory: \\[100 %\\] $mib/$mib MiB$" "the restore's progress, to the image's end"
expect_match "$(tail -n 1 <<<"$OUT")" "^Memory: ${mib1//./\\.} MiB in [0-9.]+ s \\([0-9.]+ MiB/s\\)$" \
    "the restore's time and speed, the whole image"
expect_eq "$(domain_state)" "--p---" "vm1 is paused after the revert to m2"
expect_mark TWO
expect_disks vm1 0x22
expect_ok xl unpause vm1
expect_eq "$(domain_state)" "r-----" "vm1 runs once unpaused"
write_disks vm1 0x44
after_step

step "delete m1: its memory image goes with it"
expect_ok xl snapshot-delete vm1 m1
expect_no_file "$M1"
expect_file "$T/m2.mem"
expect_ok xl snapshot-list --name vm1
expect_eq "$OUT" "m2" "snapshots after the delete"
after_step

step "--memory=FILE, relative: to xl's working directory"
# the library takes absolute paths only; xl makes the user's absolute
here=$PWD
cd "$T" || fail "cannot cd to $T"
expect_ok xl snapshot-create --memory=rel.mem vm1 mr
cd "$here" || fail "cannot cd back to $here"
expect_file "$T/rel.mem"
expect_ok xl snapshot-info vm1 mr
expect_match "$OUT" "Memory: +$T/rel.mem " "mr's memory image"
expect_ok xl snapshot-delete vm1 mr
expect_no_file "$T/rel.mem"
after_step

step "bad input: refused, nothing changed"
fp=$(fingerprint)
expect_error "exists" xl snapshot-create --memory="$T/m2.mem" vm1 m3
# where the image would be written until complete: anybody's, kept
echo mine >"$T/m3.mem.tmp"
expect_error "'$T/m3.mem.tmp', where memory image '$T/m3.mem' would be written until complete, already exists" \
    xl snapshot-create --memory="$T/m3.mem" vm1 m3
expect_eq "$(cat "$T/m3.mem.tmp")" mine "the file in the way"
expect_no_file "$T/m3.mem"
rm -f "$T/m3.mem.tmp"
expect_fail xl snapshot-create --memory --disk-only vm1 m3
expect_match "$ERR" "exclude each other" "--memory with --disk-only"
expect_unchanged "$fp" "refused checkpoints"
expect_ok xl destroy vm1
fp=$(fingerprint)
expect_error "shut off.*no memory" xl snapshot-create --memory vm1 m3
expect_error "shut off.*no memory" xl snapshot-create --live vm1 m3
expect_unchanged "$fp" "checkpoints of a shut-off domain"
expect_ok xl create "$CFG"

step "a memory save that fails (ENOSPC): vm1 runs on, nothing left behind"
F=$T/full
mkdir -p "$F"
if mount -t tmpfs -o size=1M tmpfs "$F" 2>"$T/mount.err"; then
    at_cleanup "umount '$F'"
    # memory that does not compress to nothing
    dd if=/dev/urandom of="$RAM" bs=1M count=8 conv=notrunc status=none
    fp=$(fingerprint)
    # refused by the space guards first (issue 20); --force goes on,
    # and the save itself meets ENOSPC
    expect_error "not enough space for snapshot 'm4': .*full \(tmpfs\) needs .*memory image" \
        xl snapshot-create --memory="$F/m4.mem" vm1 m4
    expect_unchanged "$fp" "the refused checkpoint"
    run xl snapshot-create --force --memory="$F/m4.mem" vm1 m4
    expect_eq "$RC" 1 "the exit status of the forced checkpoint"
    expect_match "$(head -n 1 <<<"$ERR")" "^libxl-snapshot: warning: --force: snapshot 'm4' goes on without enough space: .*memory image" "the forced checkpoint's first line"
    expect_match "$(tail -n 1 <<<"$ERR")" "^libxl-snapshot: error: .*memory" "the forced checkpoint's error"
    expect_eq "$(domain_state)" "r-----" "vm1 runs after the failed checkpoint"
    expect_eq "$(ls -A "$F")" "" "what the full file system holds"
    expect_unchanged "$fp" "the failed checkpoint"
    write_disks vm1 0x55
    expect_disks vm1 0x55
    expect_ok xl snapshot-list --name vm1
    expect_eq "$OUT" "m2" "snapshots after the failed checkpoint"
    after_step
else
    fail "cannot mount a tmpfs: $(head -n 1 "$T/mount.err")"
fi
