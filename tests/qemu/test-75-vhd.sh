#!/bin/bash
# test-75-vhd.sh - VHD chains: the in-tree vhd-util, and the VHD backend
#
# Every file vhd-util writes is read back by an independent reader:
# vhdiinfo and vhdimount (libvhdi, which follows parent VHDs), and,
# for a coalesced dynamic base, `qemu-img convert -f vpc`.
#  1. vhd-util: create, write, snapshot, write into the child; vhdiinfo
#     sees a differential disk with its parent; vhdimount reads exactly
#     what was written through the chain; coalesce, then qemu-img reads
#     the child's data from the base alone; check is clean.
#  2. Corrupt VHDs are refused with one line: a bad footer checksum, a
#     truncated BAT, a block beyond the end, a re-parenting that would
#     make a loop, a missing parent.
#  3. The backend, on a shut-off domain whose xvda is a dynamic VHD:
#     snapshot-create makes a differencing child (active); data written
#     into it (vhd-util write, as a blktap guest would); a second
#     snapshot; revert to each: a fresh child, the data as taken; xl
#     create refuses the differencing VHD (QEMU would read zeros);
#     snapshot-delete of the first snapshot coalesces its child into the
#     base and re-parents what was built on the child; the other
#     snapshot still reverts to its data; qemu-img reads the coalesced
#     base; snapshot-check is clean.
#  4. snapshot-delete killed at every fault point (XL_SNAPSHOT_FAULT),
#     of a snapshot with a child (its child's VHD coalesced into its own,
#     the active VHD re-parented) and of the one under the active VHD:
#     snapshot-recover finishes it, snapshot-check is clean, the active
#     VHD still reads what was written last, the other snapshot still
#     reverts to its own data.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

VHD_UTIL=$REPO/tools/vhd-util
export XL_SNAPSHOT_VHD_UTIL=$VHD_UTIL
[ -x "$VHD_UTIL" ] || fail "$VHD_UTIL is not built"
for t in vhdiinfo vhdimount; do
    command -v $t >/dev/null || fail "$t is missing (libvhdi-utils)"
done
MB=$((1 << 20))

# pattern FILE BYTE LEN: LEN bytes of BYTE
pattern() {
    head -c "$3" /dev/zero | tr '\0' "\\$(printf '%03o' "$2")" > "$1"
}
# vhd_write VHD FILE OFFSET
vhd_write() {
    expect_ok "$VHD_UTIL" write -n "$1" -o "$3" -i "$2"
}
# expect_vhd_data VHD EXPECTED: vhdimount's view of VHD (through its
# parents) is the file EXPECTED
expect_vhd_data() {
    local vhd=$1 expected=$2 m=$T/mnt.$RANDOM f
    mkdir -p "$m"
    vhdimount "$vhd" "$m" >"$T/vhdimount.log" 2>&1 &
    for _ in $(seq 50); do [ -e "$m/vhdi1" ] && break; sleep 0.1; done
    # the first layer listed is the image itself, seen through its
    # parents (libvhdi lists the parents after it)
    f=$(ls "$m"/vhdi* 2>/dev/null | sort -V | tail -n 1)
    [ -n "$f" ] || fail "vhdimount of $vhd shows nothing: $(cat "$T/vhdimount.log")"
    cmp -s "$f" "$expected"
    local rc=$?
    umount "$m"
    [ "$rc" -eq 0 ] || fail "vhdimount's view of $vhd is not the data written"
}
# expected DISK_FILE PATTERN_FILE OFFSET: PATTERN_FILE laid over
# DISK_FILE at OFFSET (in place)
lay() {
    dd if="$2" of="$1" bs=512 seek=$(($3 / 512)) conv=notrunc status=none
}

step "vhd-util: create, write, snapshot, write, vhdiinfo, vhdimount"
V=$T/v
mkdir -p "$V"
expect_ok "$VHD_UTIL" create -n "$V/base.vhd" -s 16
pattern "$T/a" 0x41 $MB
pattern "$T/b" 0x42 $((3 * MB))
vhd_write "$V/base.vhd" "$T/a" 0
expect_ok "$VHD_UTIL" snapshot -n "$V/c1.vhd" -p "$V/base.vhd"
vhd_write "$V/c1.vhd" "$T/b" $((MB / 2))
truncate -s $((16 * MB)) "$T/want"
lay "$T/want" "$T/a" 0
lay "$T/want" "$T/b" $((MB / 2))
run vhdiinfo "$V/c1.vhd"
expect_match "$OUT" "Disk type[[:space:]]*: Differential" "vhdiinfo's disk type"
expect_match "$OUT" "Parent filename[[:space:]]*: base.vhd" "vhdiinfo's parent"
expect_match "$OUT" "Media size.*16777216 bytes" "vhdiinfo's size"
expect_vhd_data "$V/c1.vhd" "$T/want"
expect_ok "$VHD_UTIL" query -n "$V/c1.vhd" -p
expect_eq "$OUT" "$V/base.vhd" "query -p"
expect_ok "$VHD_UTIL" query -n "$V/c1.vhd" -v
expect_eq "$OUT" 16 "query -v (MB)"
expect_ok "$VHD_UTIL" check -n "$V/c1.vhd"

step "vhd-util: coalesce, then qemu-img reads the base alone"
expect_ok "$VHD_UTIL" coalesce -n "$V/c1.vhd"
expect_match "$OUT" "100.00/100%" "coalesce's progress"
expect_ok "$VHD_UTIL" check -n "$V/base.vhd"
expect_ok qemu-img convert -f vpc -O raw "$V/base.vhd" "$T/base.raw"
cmp -s "$T/base.raw" "$T/want" || fail "the coalesced base is not the data"
expect_vhd_data "$V/base.vhd" "$T/want"

step "vhd-util: corrupt VHDs refused"
cp "$V/base.vhd" "$V/bad-sum.vhd"
printf 'X' | dd of="$V/bad-sum.vhd" bs=1 seek=$(($(stat -c %s "$V/bad-sum.vhd") - 512 + 40)) conv=notrunc status=none
printf 'X' | dd of="$V/bad-sum.vhd" bs=1 seek=40 conv=notrunc status=none
run "$VHD_UTIL" check -n "$V/bad-sum.vhd"
[ "$RC" -ne 0 ] && [ "$(wc -l <<<"$ERR")" -eq 1 ] || fail_run "a bad checksum: not refused in one line"
expect_match "$ERR" "checksum" "the bad checksum's message"
cp "$V/base.vhd" "$V/short.vhd"
truncate -s 2048 "$V/short.vhd"
run "$VHD_UTIL" check -n "$V/short.vhd"
[ "$RC" -ne 0 ] && [ "$(wc -l <<<"$ERR")" -eq 1 ] || fail_run "a truncated BAT: not refused in one line"
cp "$V/base.vhd" "$V/cut.vhd"
# the last block's data cut off, the footer put back after it
size=$(stat -c %s "$V/cut.vhd")
tail -c 512 "$V/cut.vhd" > "$T/footer"
truncate -s $((size - 512 - MB)) "$V/cut.vhd"
cat "$T/footer" >> "$V/cut.vhd"
run "$VHD_UTIL" check -n "$V/cut.vhd"
[ "$RC" -ne 0 ] && [ "$(wc -l <<<"$ERR")" -eq 1 ] || fail_run "a block beyond the end: not refused in one line"
expect_match "$ERR" "beyond the end" "the message"
expect_ok "$VHD_UTIL" snapshot -n "$V/l1.vhd" -p "$V/base.vhd"
expect_ok "$VHD_UTIL" snapshot -n "$V/l2.vhd" -p "$V/l1.vhd"
run "$VHD_UTIL" modify -n "$V/l1.vhd" -p "$V/l2.vhd"
[ "$RC" -ne 0 ] && [ "$(wc -l <<<"$ERR")" -eq 1 ] || fail_run "a loop: not refused in one line"
expect_match "$ERR" "loop" "the loop's message"
expect_ok "$VHD_UTIL" check -n "$V/l2.vhd"
mv "$V/l1.vhd" "$V/l1.moved"
run "$VHD_UTIL" check -n "$V/l2.vhd"
[ "$RC" -ne 0 ] && [ "$(wc -l <<<"$ERR")" -eq 1 ] || fail_run "a missing parent: not refused in one line"

step "backend: snapshots of a shut-off domain on a dynamic VHD"
qemu-img create -q -f vpc -o subformat=dynamic "$IMG/vm1-xvda.vhd" 16M
CFG=$T/vm1.cfg
{
    echo 'name = "vm1"'
    echo 'memory = 64'
    echo "disk = [ 'format=vhd,vdev=xvda,access=rw,target=$IMG/vm1-xvda.vhd' ]"
} > "$CFG"
# (qemu-img rounds the size to the disk geometry)
truncate -s "$(qemu-img info --output=json "$IMG/vm1-xvda.vhd" | jq '."virtual-size"')" "$T/d0"
pattern "$T/p1" 0x11 $MB
expect_ok xl snapshot-create "$CFG" s1
expect_ok xl snapshot-info --json "$CFG" s1
expect_eq "$(jq -r '.disks[0].type + " " + .disks[0].overlay' <<<"$OUT")" \
    "external $IMG/vm1-xvda.s1.vhd" "s1's disk"
A=$(active_image vm1 xvda)
expect_eq "$A" "$IMG/vm1-xvda.s1.vhd" "the active image after s1"
run vhdiinfo "$A"
expect_match "$OUT" "Differential" "the active image is a differencing VHD"
vhd_write "$A" "$T/p1" 0
cp "$T/d0" "$T/d1"; lay "$T/d1" "$T/p1" 0
expect_ok xl snapshot-create "$CFG" s2
pattern "$T/p2" 0x22 $MB
vhd_write "$(active_image vm1 xvda)" "$T/p2" $MB
cp "$T/d1" "$T/d2"; lay "$T/d2" "$T/p2" $MB
expect_vhd_data "$(active_image vm1 xvda)" "$T/d2"

step "backend: revert to each snapshot: a fresh child, the data as taken"
expect_ok xl snapshot-revert "$CFG" s1
expect_eq "$(active_image vm1 xvda)" "$IMG/vm1-xvda.s1.1.vhd" "the active image after the revert to s1"
expect_vhd_data "$(active_image vm1 xvda)" "$T/d0"
expect_ok xl snapshot-revert "$CFG" s2
expect_vhd_data "$(active_image vm1 xvda)" "$T/d1"
expect_ok xl snapshot-check "$CFG"

step "backend: a differencing VHD is never handed to QEMU"
fp=$(fingerprint)
run xl create "$CFG"
expect_eq "$RC" 1 "xl create's status on a VHD chain"
expect_match "$ERR" "error: .*VHD chain.*QEMU cannot read" "xl create's message"
domain_running vm1 && fail "vm1 was started on a VHD chain"
expect_unchanged "$fp" "the refused start"

step "backend: delete s1: its child coalesced into the base, s2 kept"
expect_ok xl snapshot-delete "$CFG" s1
expect_ok xl snapshot-list --name "$CFG"
expect_eq "$OUT" "s2" "the snapshots after the delete"
expect_no_file "$IMG/vm1-xvda.s1.vhd"
expect_ok qemu-img convert -f vpc -O raw "$IMG/vm1-xvda.vhd" "$T/base2.raw"
cmp -s "$T/base2.raw" "$T/d1" || fail "the base does not hold s1's child's data after the coalesce"
expect_vhd_data "$(active_image vm1 xvda)" "$T/d1"
expect_ok "$VHD_UTIL" check -n "$(active_image vm1 xvda)"
expect_ok xl snapshot-check "$CFG"
vhd_write "$(active_image vm1 xvda)" "$T/p2" $MB
expect_ok xl snapshot-revert "$CFG" s2
expect_vhd_data "$(active_image vm1 xvda)" "$T/d1"
expect_ok xl snapshot-delete "$CFG" s2
expect_ok xl snapshot-check "$CFG"
expect_vhd_data "$(active_image vm1 xvda)" "$T/d1"

# vhd_byte VHD: the first byte of VHD's first sector, through its chain
vhd_byte() {
    "$VHD_UTIL" read -n "$1" -o 0 -l 512 | head -c 1 | od -An -tu1 | tr -d ' '
}
# crash_loop VICTIM: a (a child: coalesced into a's VHD) or b (under
# the active VHD)
crash_loop() {
    local v=$1 keep want n x got
    [ "$v" = a ] && keep=b want=34 || keep=a want=17
    for ((n = 1; n < 20; n++)); do
        x=$v$n
        pattern "$T/p" 17 65536; vhd_write "$(active_image vm1 xvda)" "$T/p" 0
        expect_ok xl snapshot-create "$CFG" "a$x"
        pattern "$T/p" 34 65536; vhd_write "$(active_image vm1 xvda)" "$T/p" 0
        expect_ok xl snapshot-create "$CFG" "b$x"
        pattern "$T/p" 51 65536; vhd_write "$(active_image vm1 xvda)" "$T/p" 0
        run env XL_SNAPSHOT_FAULT=delete:$n "$XL" snapshot-delete "$CFG" "$v$x"
        got=0
        if [ "$RC" -eq 0 ]; then
            got=1
        else
            [ "$RC" -eq 86 ] || fail_run "snapshot-delete at fault $n"
            expect_ok xl snapshot-recover "$CFG"
        fi
        expect_ok xl snapshot-list --name "$CFG"
        expect_no_match "$OUT" "^$v$x\$" "snapshot-list after deleting $v$x"
        expect_ok xl snapshot-check "$CFG"
        expect_eq "$(vhd_byte "$(active_image vm1 xvda)")" 51 "the active VHD after deleting $v$x"
        expect_ok xl snapshot-revert "$CFG" "$keep$x"
        expect_eq "$(vhd_byte "$(active_image vm1 xvda)")" "$want" "$keep$x after deleting $v$x"
        expect_ok xl snapshot-check "$CFG"
        if [ "$got" = 1 ]; then
            step "  through after $((n - 1)) crash points"
            return 0
        fi
    done
    fail "snapshot-delete never got through"
}
step "backend: snapshot-delete killed at every step, recovered (child)"
crash_loop a
step "backend: snapshot-delete killed at every step, recovered (under the active VHD)"
crash_loop b
echo "PASS: $TEST_NAME"
