#!/bin/bash
# demo.sh - `make demo`: a short tour of xl's snapshot commands
#
# Runs on any Linux box with QEMU (no Xen needed): the qemu driver runs
# the domain of configs/demo-vm1.cfg as a plain QEMU process.  Each
# step says what it does, shows the command and its output.  Everything
# lives under /var/tmp/libxl-snapshot-demo (images, snapshot records,
# QMP sockets), which is wiped at the start and at the end; nothing is
# left running.  DEMO_KEEP=1 keeps the files for a look afterwards.
#
# Exits non-zero as soon as a step fails.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO" || exit 1
XL=$REPO/xl/xl
CFG=configs/demo-vm1.cfg
DEMO=/var/tmp/libxl-snapshot-demo
IMAGES=$DEMO/images
DOM=demo-vm1

export XL_SNAPSHOT_DRIVER=qemu
export XL_SNAPSHOT_STATE_DIR=$DEMO/state
export XL_SNAPSHOT_RUN_DIR=$DEMO/run

# ------------------------------------------------------------ helpers

say() {
    printf '\n==> %s\n' "$*"
}

die() {
    printf '\ndemo: FAILED: %s\n' "$*" >&2
    exit 1
}

# quote ARG...: the arguments as a shell command line to copy
quote() {
    local a sep=
    for a in "$@"; do
        if [[ $a =~ ^[A-Za-z0-9_./:=,@+-]+$ ]]; then
            printf '%s%s' "$sep" "$a"
        else
            printf "%s'%s'" "$sep" "${a//\'/\'\\\'\'}"
        fi
        sep=' '
    done
}

# show CMD...: prints the command (xl for the front end's path), runs
# it, prints its output indented; stops the demo if it fails.
show() {
    local shown=("$@") out rc
    [ "${shown[0]}" = "$XL" ] && shown[0]=xl
    printf '$ %s\n' "$(quote "${shown[@]}")"
    out=$("$@" 2>&1)
    rc=$?
    [ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/    /'
    [ "$rc" -eq 0 ] || die "'$(quote "${shown[@]}")' exited with status $rc"
}

# guest_write VDEV BYTE: the guest writes 1 MiB of BYTE at offset 0
# (QEMU's qemu-io through the monitor), then flushes
guest_write() {
    show "$XL" qemu-monitor-command "$DOM" "qemu-io $1 \"write -P $2 0 1M\""
    show "$XL" qemu-monitor-command "$DOM" "qemu-io $1 \"flush\""
}

# active_image VDEV: the image the running domain's disk is on now
active_image() {
    "$XL" list -l "$DOM" |
        sed -n "s/^    disk $1: \(.*\) ([a-z0-9]*)\$/\1/p"
}

# active_format VDEV: its format, as `xl list -l` shows it
active_format() {
    "$XL" list -l "$DOM" |
        sed -n "s/^    disk $1: .* (\([a-z0-9]*\))\$/\1/p"
}

# expect_data VDEV BYTE: reads the disk's active image from outside
# (-U: the running QEMU holds the image) and checks every byte
expect_data() {
    local img fmt out
    img=$(active_image "$1")
    fmt=$(active_format "$1")
    [ -n "$img" ] || die "no active image for $1 in 'xl list -l'"
    printf '$ %s\n' "$(quote qemu-io -r -U -f "$fmt" -c "read -P $2 0 1M" "$img")"
    out=$(qemu-io -r -U -f "$fmt" -c "read -P $2 0 1M" "$img" 2>&1)
    printf '%s\n' "$out" | sed 's/^/    /'
    if ! grep -q '^read 1048576/1048576 bytes' <<<"$out" ||
       grep -q 'Pattern verification failed' <<<"$out"; then
        die "$1 does not hold $2"
    fi
}

# Stops whatever a previous or this run left running, then (unless
# told to keep it) removes the demo directory.
cleanup() {
    local f pid
    [ -d "$DEMO/run" ] || return 0
    "$XL" destroy "$DOM" >/dev/null 2>&1
    for f in "$DEMO"/run/qemu-dm-*.libxl-json; do
        [ -f "$f" ] || continue
        pid=$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' "$f")
        [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] &&
            tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF "$DEMO/run/" &&
            kill -9 "$pid"
    done
    return 0
}

on_exit() {
    local rc=$?
    cleanup
    if [ "${DEMO_KEEP:-}" = 1 ]; then
        echo "demo: files kept in $DEMO"
    else
        rm -rf "$DEMO"
    fi
    exit "$rc"
}

# ------------------------------------------------------------ the demo

for tool in qemu-system-x86_64 qemu-img qemu-io; do
    command -v "$tool" >/dev/null || die "$tool not found (make demo installs it)"
done
[ -x "$XL" ] || die "$XL not built (run make)"

cleanup
rm -rf "$DEMO"
trap on_exit EXIT
trap 'exit 130' INT TERM
mkdir -p "$IMAGES" "$XL_SNAPSHOT_STATE_DIR" "$XL_SNAPSHOT_RUN_DIR"

echo "libxl-snapshot demo: snapshots of a domain's disks with xl."
echo "Driver: qemu (the domain is a QEMU process); files in $DEMO."

say "Creating the disk images: xvda qcow2 (64 MiB), xvdb raw (32 MiB)"
show qemu-img create -q -f qcow2 "$IMAGES/demo-vm1-xvda.qcow2" 64M
show qemu-img create -q -f raw "$IMAGES/demo-vm1-xvdb.img" 32M

say "Starting the domain from $CFG"
show "$XL" create "$CFG"
show "$XL" list -l "$DOM"

say "The guest writes data: 0xaa on both disks"
guest_write xvda 0xaa
guest_write xvdb 0xaa

say "Taking a live snapshot of both disks"
echo "(qcow2 xvda: internal snapshot inside the image; raw xvdb: external,"
echo " the image is frozen and a new qcow2 overlay takes the writes)"
show "$XL" snapshot-create -d "data 0xaa on both disks" "$DOM" first
show "$XL" snapshot-list "$DOM"
show "$XL" list -l "$DOM"

say "The guest writes more: 0xbb on both disks"
guest_write xvda 0xbb
guest_write xvdb 0xbb

say "A second snapshot, of xvda only (--diskspec xvdb,snapshot=no)"
show "$XL" snapshot-create --diskspec xvdb,snapshot=no -d "0xbb on xvda" "$DOM" second
show "$XL" snapshot-list -l "$DOM"

say "The guest writes again: 0xcc on both disks"
guest_write xvda 0xcc
guest_write xvdb 0xcc
expect_data xvda 0xcc

say "Reverting to the first snapshot (the domain is stopped, reverted, restarted)"
show "$XL" snapshot-revert "$DOM" first
show "$XL" list -l "$DOM"

say "The data of the first snapshot is back on both disks"
expect_data xvda 0xaa
expect_data xvdb 0xaa

say "The snapshot tree, and what the first snapshot holds"
show "$XL" snapshot-list --tree "$DOM"
show "$XL" snapshot-info "$DOM" first

say "Deleting the second snapshot (internal only: removed from xvda's image)"
show "$XL" snapshot-delete "$DOM" second
show qemu-img snapshot -U -l "$IMAGES/demo-vm1-xvda.qcow2"
show "$XL" snapshot-list --tree "$DOM"

say "Deleting the first snapshot, live (internal on xvda; external on xvdb:"
echo " the overlay built on xvdb's image is committed back into it)"
show "$XL" snapshot-delete "$DOM" first
show "$XL" list -l "$DOM"
expect_data xvda 0xaa
expect_data xvdb 0xaa
show "$XL" snapshot-list "$DOM"

say "A live checkpoint: the domain's memory and its disks at one instant"
echo "(memory is copied while the guest runs; the disks are taken at the"
echo " final short pause)"
show "$XL" snapshot-create --live --memory -d "a checkpoint" "$DOM" ckpt
show "$XL" snapshot-list "$DOM"

say "The guest writes 0xdd; reverting to the checkpoint restores the running domain"
guest_write xvda 0xdd
guest_write xvdb 0xdd
show "$XL" snapshot-revert "$DOM" ckpt
show "$XL" list -l "$DOM"
expect_data xvda 0xaa
expect_data xvdb 0xaa

say "The records agree with the images; deleting the checkpoint removes its memory image"
show "$XL" snapshot-check "$DOM"
show "$XL" snapshot-delete "$DOM" ckpt
show "$XL" snapshot-list "$DOM"
show "$XL" snapshot-check "$DOM"

say "Destroying the domain"
show "$XL" destroy "$DOM"
show "$XL" list

echo
echo "demo: done."
