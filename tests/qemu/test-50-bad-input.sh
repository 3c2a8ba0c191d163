#!/bin/bash
# test-50-bad-input.sh - every refusal is clean
#
# For each bad request: exit status 1, exactly one line on stderr (the
# library's "libxl-snapshot: error: ..." line, saying what is wrong),
# and nothing changed in the state dir, the image dir or the runtime
# files (sizes and checksums compared before and after).
#
# Cases: unknown domain (every snapshot command); internal snapshot of
# the raw disk; --diskspec of an unknown disk, twice, with a bad type, or
# excluding every disk; invalid names ('../x', 'a/b', '-rf', '.hidden',
# 'a,b', a newline, '', '..', 4 KiB, bytes that are not UTF-8); a
# description that is not UTF-8; a duplicate name; an unknown snapshot;
# an overlay path that exists; --running with --paused; a transaction
# QEMU refuses after creating an overlay file; a corrupt record (list,
# info, current, create, revert, delete); a full file system (tmpfs,
# skipped when it cannot be mounted); a hung QEMU.  And a QEMU killed
# before or during snapshot-create: the domain is then shut off, and
# the snapshot is taken offline, cleanly.
#
# Each case runs on its own (soft_case): a failing one is reported and
# the others still run.
# The case functions run through soft_case:
# shellcheck disable=SC2317
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

make_vm_config vm1
expect_ok xl create "$CFG"
write_pattern vm1 xvda 0x11 0 1M
write_pattern vm1 xvdb 0x11 0 1M

case_unknown_domain() {
    refused "nosuch" xl snapshot-create nosuch x
    refused "nosuch" xl snapshot-list nosuch
    refused "nosuch" xl snapshot-info nosuch x
    refused "nosuch" xl snapshot-current nosuch
    refused "nosuch" xl snapshot-revert nosuch x
    refused "nosuch" xl snapshot-delete nosuch x
    refused "nosuch" xl snapshot-delete --metadata nosuch x
    local u
    u=$(domain_uuid vm1)
    for d in "$STATE"/*; do
        [ "$d" = "$STATE/$u" ] ||
            fail "a state dir was made for an unknown domain" "$(ls -l "$STATE")"
    done
}

case_internal_on_raw() {
    expect_eq "$(active_image vm1 xvdb)" "$IMG/vm1-xvdb.img" "xvdb's image (raw)"
    refused "xvdb.*(qcow2|raw)" xl snapshot-create --diskspec xvdb,snapshot=internal vm1 x
}

case_unknown_disk() {
    refused "xvdz" xl snapshot-create --diskspec xvdz,snapshot=internal vm1 x
    refused "xvdz" xl snapshot-create --diskspec xvdz vm1 x
    # (the same disk twice: refused, as the library refuses it; xl used
    # to keep the last one silently)
    refused "disk xvdb twice" xl snapshot-create --diskspec xvdb,snapshot=external \
        --diskspec xvdb,snapshot=no vm1 x
}

case_bad_diskspec() {
    refused "bogus" xl snapshot-create --diskspec xvdb,snapshot=bogus vm1 x
    refused "disk" xl snapshot-create --diskspec xvda,snapshot=no \
        --diskspec xvdb,snapshot=no vm1 x
}

# bad_name NAME: refused as a name (given as <Name>)
bad_name() {
    refused "name" xl snapshot-create vm1 -- "$1"
}

# the same given with --name
bad_name_opt() {
    refused "name" xl snapshot-create --name="$1" vm1
}

soft_case "unknown domain" case_unknown_domain
soft_case "internal snapshot of the raw disk" case_internal_on_raw
soft_case "--diskspec of an unknown disk" case_unknown_disk
soft_case "bad --diskspec" case_bad_diskspec
soft_case "name '../x'" bad_name '../x'
soft_case "name 'a/b'" bad_name 'a/b'
soft_case "name '-rf'" bad_name '-rf'
soft_case "name '-rf' (--name)" bad_name_opt '-rf'
soft_case "name '../x' (--name)" bad_name_opt '../x'
soft_case "name '.hidden'" bad_name '.hidden'
soft_case "name 'a,b'" bad_name 'a,b'
soft_case "name with a newline" bad_name $'a\nb'
soft_case "name with a tab" bad_name $'a\tb'
soft_case "empty name" bad_name ''
soft_case "name '..'" bad_name '..'
soft_case "name of 4 KiB" bad_name "$(printf 'a%.0s' {1..4096})"
soft_case "name that is not UTF-8" bad_name $'a\xff\xfeb'
soft_case "name with an overlong UTF-8 '/'" bad_name $'a\xc0\xafb'
soft_case "description that is not UTF-8" refused "UTF-8" \
    xl snapshot-create --description=$'bad \xff text' vm1 d1

step "a good snapshot s1 (xvda internal, xvdb external)"
expect_ok xl snapshot-create vm1 s1
expect_file "$IMG/vm1-xvdb.s1.qcow2"

step "permissions: the record directory 0700, its files 0600"
expect_eq "$(stat -c %a "$(domain_dir vm1)")" 700 "mode of $(domain_dir vm1)"
expect_eq "$(find "$(domain_dir vm1)" -type f ! -perm 600 | tr '\n' ' ')" "" \
    "files of the record directory not 0600"

case_duplicate() {
    refused "s1" xl snapshot-create vm1 s1
    refused "s1" xl snapshot-create --diskspec xvdb,snapshot=no vm1 s1
}

case_unknown_snapshot() {
    refused "nosnap" xl snapshot-info vm1 nosnap
    refused "nosnap" xl snapshot-revert vm1 nosnap
    refused "nosnap" xl snapshot-delete vm1 nosnap
    refused "nosnap" xl snapshot-delete --metadata vm1 nosnap
}

case_overlay_exists() {
    : > "$IMG/taken.qcow2"
    refused "exists" xl snapshot-create \
        --diskspec "xvdb,snapshot=external,file=$IMG/taken.qcow2" vm1 x
    refused "exists" xl snapshot-create \
        --diskspec "xvdb,snapshot=external,file=$IMG/vm1-xvda.qcow2" vm1 x
    rm -f "$IMG/taken.qcow2"
}

case_running_and_paused() {
    refused "running|paused" xl snapshot-revert --running --paused vm1 s1
}

# QEMU creates the overlay of xvda's action, then refuses xvdb's (an
# internal snapshot of that name already exists, made behind the
# toolstack's back): the transaction fails, and the overlay file QEMU
# left must be removed.
case_transaction_refused() {
    expect_ok xl qemu-monitor-command vm1 'snapshot_blkdev_internal xvdb t1'
    expect_eq "$(internal_snapshots "$(active_image vm1 xvdb)")" "t1" \
        "internal snapshots of xvdb's overlay"
    refused "t1" xl snapshot-create --diskspec xvda,snapshot=external \
        --diskspec xvdb,snapshot=internal vm1 t1
    expect_no_file "$IMG/vm1-xvda.t1.qcow2"
    expect_eq "$(active_image vm1 xvda)" "$IMG/vm1-xvda.qcow2" "xvda's active image"
    expect_ok xl qemu-monitor-command vm1 'snapshot_delete_blkdev_internal xvdb t1'
}

soft_case "duplicate name" case_duplicate
soft_case "unknown snapshot" case_unknown_snapshot
soft_case "overlay file exists" case_overlay_exists
soft_case "--running with --paused" case_running_and_paused
soft_case "transaction refused by QEMU" case_transaction_refused

# A record full of garbage: every command that reads the records fails
# with one line naming the file.  The record is restored after each.
corrupt_record() {
    local rec q
    rec=$(domain_dir vm1)/snapshotdata-s1.libxl-json
    cp "$rec" "$T/record.saved"
    trap 'cp "$T/record.saved" "'"$rec"'"' EXIT
    echo 'garbage {{{ not a record' > "$rec"
    # the path as an ERE
    # shellcheck disable=SC2001,SC2016
    q=$(sed 's/[][\.*^$()+?{}|]/\\&/g' <<<"$rec")
    refused "corrupt.*$q|$q.*corrupt" "$@"
}
soft_case "corrupt record: snapshot-list" corrupt_record xl snapshot-list vm1
soft_case "corrupt record: snapshot-info" corrupt_record xl snapshot-info vm1 s1
soft_case "corrupt record: snapshot-current" corrupt_record xl snapshot-current vm1
soft_case "corrupt record: snapshot-create" corrupt_record xl snapshot-create vm1 s2
soft_case "corrupt record: snapshot-revert" corrupt_record xl snapshot-revert vm1 s1
soft_case "corrupt record: snapshot-delete" corrupt_record xl snapshot-delete vm1 s1
# A record planted as a symbolic link (to a copy of itself, valid
# JSON): never followed; every command that reads it fails, naming it.
symlink_record() {
    local rec q
    rec=$(domain_dir vm1)/snapshotdata-s1.libxl-json
    cp "$rec" "$T/record.saved"
    trap 'rm -f "'"$rec"'"; cp "$T/record.saved" "'"$rec"'"' EXIT
    cp "$rec" "$T/elsewhere.json"
    rm -f "$rec"
    ln -s "$T/elsewhere.json" "$rec"
    # shellcheck disable=SC2001,SC2016
    q=$(sed 's/[][\.*^$()+?{}|]/\\&/g' <<<"$rec")
    refused "$q.*symbolic link" "$@"
}
soft_case "symlinked record: snapshot-list" symlink_record xl snapshot-list vm1
soft_case "symlinked record: snapshot-create" symlink_record xl snapshot-create vm1 s2
soft_case "symlinked record: snapshot-delete" symlink_record xl snapshot-delete vm1 s1
step "the restored record reads again"
expect_ok xl snapshot-list --name vm1
expect_eq "$OUT" "s1" "snapshot-list once the record is restored"

# A file system with no space left: a domain whose images live on a
# 2 MiB tmpfs, filled up.
case_full_disk() {
    local F=$T/full
    mount_tmpfs "$F" 2M || return 0
    qemu-img create -q -f qcow2 "$F/vm2-xvda.qcow2" 16M
    qemu-img create -q -f raw "$F/vm2-xvdb.img" 1M
    cat > "$T/vm2.cfg" <<EOF
name = "vm2"
memory = 64
disk = [ 'format=qcow2,vdev=xvda,access=rw,target=$F/vm2-xvda.qcow2',
         'format=raw,vdev=xvdb,access=rw,target=$F/vm2-xvdb.img' ]
EOF
    expect_ok xl create "$T/vm2.cfg"
    write_pattern vm2 xvda 0x11 0 256K
    dd if=/dev/zero of="$F/filler" bs=4k 2>/dev/null
    # a failed qemu-img snapshot -c can leave a harmless byte changed
    # in a refcount block; the images are qemu-img checked instead
    FP_NAMES_ONLY=full
    step "  full disk, running"
    refused "space" xl snapshot-create vm2 f1
    refused "space" xl snapshot-create --diskspec xvda,snapshot=no vm2 f2
    refused "space" xl snapshot-create --diskspec xvdb,snapshot=no vm2 f3
    expect_ok xl destroy vm2
    step "  full disk, shut off"
    refused "space" xl snapshot-create vm2 f4
    refused "space" xl snapshot-create --diskspec xvda,snapshot=no vm2 f5
    refused "space" xl snapshot-create --diskspec xvdb,snapshot=no vm2 f6
    rm -f "$F/filler"
    check_images "$F"
    read_pattern "$F/vm2-xvda.qcow2" 0x11 0 256K
}
# shellcheck disable=SC2016  # expanded at cleanup
at_cleanup 'mountpoint -q "$T/full" && umount "$T/full"'
soft_case "full file system" case_full_disk

# kill_qemu D: SIGKILL to D's QEMU; returns once it is gone (or a
# zombie: it is double-forked, and whoever reaps it may take its time)
kill_qemu() {
    local pid i st
    pid=$(runtime_pid "$1") || fail "no live QEMU for $1 in the runtime files"
    kill -9 "$pid"
    for ((i = 0; i < 100; i++)); do
        st=$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)
        [ -z "$st" ] || [ "$st" = Z ] && return 0
        sleep 0.05
    done
    fail "QEMU $pid of $1 survived SIGKILL"
}

# expect_offline_snapshot D NAME: NAME is a clean snapshot of the shut-off
# D: recorded as such, xvdb's overlay made on its raw image, the data
# written before intact, no runtime file of D left, and D boots from
# the overlay.
expect_offline_snapshot() {
    local d=$1 n=$2
    expect_ok xl snapshot-info --json "$d" "$n"
    expect_eq "$(jq -r .state <<<"$OUT")" shutoff "state recorded in $n"
    expect_eq "$(active_image "$d" xvdb)" "$IMG/$d-xvdb.$n.qcow2" "$d's xvdb after $n"
    expect_eq "$(backing_chain "$IMG/$d-xvdb.$n.qcow2" | cut -f1)" \
"$IMG/$d-xvdb.$n.qcow2
$IMG/$d-xvdb.img" "chain of $d's xvdb"
    expect_eq "$(internal_snapshots "$IMG/$d-xvda.qcow2")" "$n" "internal snapshots of $d's xvda"
    read_pattern "$IMG/$d-xvda.qcow2" 0x11 0 1M
    read_pattern "$IMG/$d-xvdb.$n.qcow2" 0x11 0 1M
    expect_eq "$(grep -l "\"name\": *\"$d\"" "$RUN"/*.libxl-json 2>/dev/null)" "" \
        "runtime files of the dead $d"
    expect_ok xl create "$T/$d.cfg"
    expect_eq "$(active_image "$d" xvdb)" "$IMG/$d-xvdb.$n.qcow2" "$d's xvdb once booted"
    expect_ok xl destroy "$d"
    check_images
}

# A QEMU that hangs (SIGSTOP): the command gives up (the domain's QMP
# does not answer) with one line, and changes nothing; once the QEMU
# runs again, so does snapshot-create.
case_qemu_hung() {
    local pid fp
    make_vm_config vm3
    expect_ok xl create "$CFG"
    pid=$(runtime_pid vm3) || fail "no live QEMU for vm3"
    fp=$(fingerprint)
    kill -STOP "$pid"
    run xl snapshot-create vm3 h1
    kill -CONT "$pid"
    [ "$RC" -eq 1 ] || fail_run "expected exit status 1"
    [ "$(wc -l <<<"$ERR")" -eq 1 ] || fail_run "expected exactly one line on stderr"
    expect_match "$ERR" '^libxl-snapshot: error: .*QMP' "stderr"
    expect_unchanged "$fp" "snapshot-create of a hung QEMU"
    expect_ok xl snapshot-create vm3 h2
    expect_ok xl destroy vm3
}
soft_case "QEMU hung (SIGSTOP) during snapshot-create" case_qemu_hung

# QEMU killed (SIGKILL) before the command.  The qemu driver's rule (a
# domain whose QEMU is gone is shut off: libxl_snapshot_drv_qemu.c)
# applies: `xl list` no longer shows it and snapshot-create takes a
# clean offline snapshot with qemu-img.  (NB: the brief for this test
# expected a failure here; see the report.)
case_qemu_killed() {
    make_vm_config vm4
    expect_ok xl create "$CFG"
    write_pattern vm4 xvda 0x11 0 1M
    write_pattern vm4 xvdb 0x11 0 1M
    kill_qemu vm4
    expect_ok xl list
    expect_no_match "$OUT" '^vm4 ' "xl list after vm4's QEMU was killed"
    expect_ok xl snapshot-create vm4 k1
    expect_eq "$ERR" "" "stderr of snapshot-create"
    expect_offline_snapshot vm4 k1
}
soft_case "QEMU killed before snapshot-create" case_qemu_killed

# QEMU dies while the command is looking the domain up: stopped
# (SIGSTOP) so that the command waits on its QMP socket, then killed.
# Either outcome is clean: the domain is found shut off and snapshotted
# offline (exit 0, nothing on stderr), or the command fails with one
# line and changes nothing.
has_socket() {
    local f
    for f in /proc/"$1"/fd/*; do
        [[ $(readlink "$f" 2>/dev/null) == socket:* ]] && return 0
    done
    return 1
}

case_qemu_dies_during() {
    local pid fp xp i
    make_vm_config vm5
    expect_ok xl create "$CFG"
    write_pattern vm5 xvda 0x11 0 1M
    write_pattern vm5 xvdb 0x11 0 1M
    pid=$(runtime_pid vm5) || fail "no live QEMU for vm5"
    FP_DIRS="state img"
    fp=$(fingerprint)
    kill -STOP "$pid"
    "$XL" snapshot-create vm5 k1 >"$T/k1.out" 2>"$T/k1.err" &
    xp=$!
    # until the command has a socket open (its QMP connection)
    for ((i = 0; i < 200; i++)); do
        has_socket "$xp" && break
        sleep 0.025
    done
    [ "$i" -lt 200 ] || fail "snapshot-create never connected to vm5's QMP socket"
    kill_qemu vm5
    wait "$xp"
    RC=$? OUT=$(<"$T/k1.out") ERR=$(<"$T/k1.err")
    LAST_CMD="xl snapshot-create vm5 k1 (QEMU killed while the command waited on QMP)"
    case $RC in
    0)  [ -z "$ERR" ] || fail_run "succeeded, but with messages on stderr"
        expect_offline_snapshot vm5 k1 ;;
    1)  [ "$(wc -l < "$T/k1.err")" -eq 1 ] ||
            fail_run "expected exactly one line on stderr"
        expect_no_file "$IMG/vm5-xvdb.k1.qcow2"
        expect_unchanged "$fp" "the failed snapshot-create" ;;
    *)  fail_run "expected exit status 0 or 1" ;;
    esac
}
soft_case "QEMU killed during snapshot-create" case_qemu_dies_during

step "vm1 still runs, data and images intact"
domain_running vm1 || fail "vm1 is not running"
read_pattern "$(active_image vm1 xvda)" 0x11 0 1M
read_pattern "$(active_image vm1 xvdb)" 0x11 0 1M
check_images
expect_ok xl snapshot-list --name vm1
expect_eq "$OUT" "s1" "vm1's snapshots at the end"
finish
