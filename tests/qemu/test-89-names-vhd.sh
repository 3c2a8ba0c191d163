#!/bin/bash
# test-89-names-vhd.sh - domain names, VHD refusals, and small clean-ups
#
#  1. A domain config's name= is checked as a domain name before it is
#     used anywhere (the qemu driver's <run dir>/qemu-dm-<name>.log):
#     'x/../../escaped' (with <run dir>/qemu-dm-x present, so the path
#     would resolve), '../x', '.hidden', all digits, a control
#     character, 201 bytes: xl create and snapshot-create refuse it with
#     one line saying why, and no file is made outside the run dir.  A
#     UTF-8 name with a space still works.
#  2. `xl list NAME` of no such domain: one line, exit 1 (as Xen's xl);
#     `xl list NAME` and `xl list DOMID` of a running one show it.
#  3. snapshot-list's columns line up with UTF-8 snapshot names.
#  4. (see 7)
#  5. VHD: a branch on a VHD that is not the config's (a fork point) is
#     refused by snapshot-delete in one line, before anything changes;
#     snapshot-check reports a VHD chain whose parents form a loop;
#     vhd-util's failures are labelled as vhd-util's; ./xl/xl from the
#     tree finds the tree's tools/vhd-util without XL_SNAPSHOT_VHD_UTIL.
#  6. The live delete of an internal snapshot held in a backing image
#     (QEMU deletes internal snapshots in a top image only) is refused
#     in one line, nothing changed, as README and xl-snapshot(1) say;
#     once the domain is shut off the delete works.
#  7. A refused first command leaves no <state dir>/<uuid>/.
#  8. A live snapshot refused by QEMU for lack of space names the disk
#     (tmpfs; skipped when it cannot be mounted).
#  9. A tool's error of two lines (qemu-img's lock error and its hint)
#     is one line, with the cause; the undo of the disk that failed
#     does not say it again.
#
# Each case runs on its own (soft_case).
# shellcheck disable=SC2317
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

# name_config FILE NAME: a one-disk config named NAME, its image
# named after FILE
name_config() {
    local img
    img=$IMG/$(basename "$1" .cfg).qcow2
    [ -f "$img" ] || qemu-img create -q -f qcow2 "$img" 16M
    {
        printf 'name = "%s"\n' "$2"
        echo 'memory = 64'
        echo "disk = [ 'format=qcow2,vdev=xvda,access=rw,target=$img' ]"
    } > "$1"
}

case_domain_names() {
    local n c bad long
    mkdir -p "$RUN/qemu-dm-x"
    long=$(printf 'n%.0s' $(seq 201))
    bad=("x/../../escaped" "../x" ".hidden" "12345" "$(printf 'a\tb')" "$long")
    for n in "${bad[@]}"; do
        c=$T/bad.cfg
        name_config "$c" "$n"
        fp=$(fingerprint)
        run xl create "$c"
        [ "$RC" -eq 1 ] || fail_run "xl create of name '$n': not refused"
        expect_eq "$(grep -c 'error' <<<"$ERR")" 1 "error lines of xl create (name '$n')"
        expect_match "$ERR" "is not a valid domain name" "xl create's message (name '$n')"
        expect_unchanged "$fp" "xl create of name '$n'"
        refused "is not a valid domain name" xl snapshot-create "$c" s1
    done
    expect_no_file "$T/escaped.log"
    [ -z "$(ls "$RUN"/qemu-dm-x)" ] || fail "a file was made under $RUN/qemu-dm-x"
    rmdir "$RUN/qemu-dm-x"
    # what xl takes: spaces and UTF-8
    c=$T/utf.cfg
    name_config "$c" "vm ü"
    expect_ok xl create "$c"
    expect_ok xl list "vm ü"
    expect_match "$OUT" "^vm ü +[0-9]+ " "xl list of 'vm ü'"
    expect_ok xl destroy "vm ü"
}

case_xl_list() {
    local c id
    c=$T/listed.cfg
    name_config "$c" listed
    expect_ok xl create "$c"
    expect_fail xl list nosuchdom
    expect_match "$ERR" "nosuchdom.*does not exist" "xl list's message"
    expect_eq "$OUT" "" "xl list's output for no such domain"
    expect_ok xl list listed
    expect_eq "$(wc -l <<<"$OUT")" 2 "lines of xl list listed"
    id=$(awk 'NR == 2 {print $2}' <<<"$OUT")
    expect_ok xl list "$id"
    expect_match "$OUT" "^listed +$id " "xl list $id"
    expect_ok xl destroy listed
    expect_fail xl list listed
}

# the column (in characters) where each line's CREATED timestamp starts
created_columns() {
    local line pre
    while IFS= read -r line; do
        pre=${line%%[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T*}
        [ "$pre" != "$line" ] && echo "${#pre}"
    done
}

case_utf8_columns() {
    local c cols
    c=$T/cols.cfg
    name_config "$c" cols
    expect_ok xl snapshot-create "$c" "ab"
    expect_ok xl snapshot-create "$c" "über-é"
    expect_ok xl snapshot-create "$c" "abcdefgh"
    export LC_ALL=C.UTF-8
    expect_ok xl snapshot-list "$c"
    cols=$(created_columns <<<"$OUT" | sort -u)
    expect_eq "$(wc -l <<<"$cols")" 1 "CREATED columns (UTF-8 locale):
$OUT
columns"
    # the PARENT column too: über-é is abcdefgh's parent
    expect_match "$OUT" "^abcdefgh  .*  über-é  " "abcdefgh's line"
    export LC_ALL=C
    expect_ok xl snapshot-list "$c"
    cols=$(LC_ALL=C.UTF-8 created_columns <<<"$OUT" | sort -u)
    expect_eq "$(wc -l <<<"$cols")" 1 "CREATED columns (C locale)"
}

# The tree's layout, copied: xl/xl, its library and tools/vhd-util (so
# a rebuild cannot change them under the test)
tree_xl() {
    timeout -k 5 "$XL_CMD_TIMEOUT" "$T/tree/xl/xl" "$@"
}

case_vhd() {
    local c fp a
    mkdir -p "$T/tree/xl" "$T/tree/libxl-snapshot" "$T/tree/tools"
    if ! cp "$REPO/xl/xl" "$T/tree/xl/" ||
       ! cp "$REPO/libxl-snapshot/libxlsnapshot.so.1" "$T/tree/libxl-snapshot/" ||
       ! cp "$REPO/tools/vhd-util" "$T/tree/tools/"; then
        fail "cannot copy the tree"
    fi
    unset XL_SNAPSHOT_VHD_UTIL
    qemu-img create -q -f vpc -o subformat=dynamic "$IMG/vhd-xvda.vhd" 16M
    c=$T/vhd.cfg
    {
        echo 'name = "vhd"'
        echo 'memory = 64'
        echo "disk = [ 'format=vhd,vdev=xvda,access=rw,target=$IMG/vhd-xvda.vhd' ]"
    } > "$c"

    step "  the tree's xl runs the tree's vhd-util"
    run tree_xl snapshot-create "$c" s1
    [ "$RC" -eq 0 ] || fail_run "snapshot-create of a VHD disk with the tree's xl"
    a=$(active_image vhd xvda)
    expect_eq "$a" "$IMG/vhd-xvda.s1.vhd" "the active image after s1"
    run "$T/tree/tools/vhd-util" query -n "$a" -p
    expect_eq "$OUT" "$IMG/vhd-xvda.vhd" "the parent of s1's child"

    step "  a fork point on a VHD that is not the config's: refused"
    expect_ok tree_xl snapshot-create "$c" s2
    expect_ok tree_xl snapshot-create "$c" s3
    expect_ok tree_xl snapshot-revert "$c" s2
    refused "snapshot 's2' cannot be deleted: 2 VHDs are built on its VHD '$IMG/vhd-xvda.s1.vhd'.*nothing was changed" \
        tree_xl snapshot-delete "$c" s2
    expect_ok tree_xl snapshot-check "$c"

    step "  vhd-util's failures are labelled as vhd-util's"
    mkdir -p "$T/fake"
    cat > "$T/fake/vhd-util" <<EOF2
#!/bin/sh
[ "\$1" = snapshot ] && { echo "vhd-util: simulated failure" >&2; exit 1; }
exec "$T/tree/tools/vhd-util" "\$@"
EOF2
    chmod +x "$T/fake/vhd-util"
    refused "vhd-util snapshot \(snapshot of xvda\) failed \(exit 1\): vhd-util: simulated failure" \
        env XL_SNAPSHOT_VHD_UTIL="$T/fake/vhd-util" "$T/tree/xl/xl" snapshot-create "$c" s4

    step "  snapshot-check reports a VHD chain that loops"
    # s1's image is the config's: make it name the active VHD's chain
    # again (a link to s3's image, whose parent is s2's)
    mv "$IMG/vhd-xvda.vhd" "$T/vhd-xvda.vhd.saved"
    ln -s "$IMG/vhd-xvda.s2.vhd" "$IMG/vhd-xvda.vhd"
    run tree_xl snapshot-check "$c"
    expect_eq "$RC" 1 "snapshot-check's status on a VHD loop:
$OUT
$ERR
status"
    expect_match "$OUT" "loop" "snapshot-check's report"
    rm "$IMG/vhd-xvda.vhd"
    mv "$T/vhd-xvda.vhd.saved" "$IMG/vhd-xvda.vhd"
    expect_ok tree_xl snapshot-check "$c"
}

# the live delete of an internal snapshot in a backing image: refused
# before anything changes, as documented; offline it works
case_live_backing_delete() {
    local fp
    make_vm_config lb
    expect_ok xl create "$CFG"
    write_pattern lb xvda 0x11 0 1M
    expect_ok xl snapshot-create lb k1
    write_pattern lb xvda 0x22 0 1M
    expect_ok xl snapshot-create --diskspec xvda,snapshot=external lb e1
    write_pattern lb xvda 0x33 0 1M
    refused "disk xvda: .* is a backing image of the running domain; shut it down to delete snapshot 'k1'" \
        xl snapshot-delete lb k1
    expect_ok xl snapshot-check lb
    for f in "$REPO/README.md" "$REPO/docs/man/xl-snapshot.1.pod"; do
        tr '\n' ' ' < "$f" | tr -s ' ' | grep -q "live delete .*internal snapshot.*backing image\|internal snapshot.*backing image.*live delete" ||
            fail "$f does not document the refused live delete"
    done
    expect_ok xl destroy lb
    expect_ok xl snapshot-delete lb k1
    expect_ok xl snapshot-check lb
    expect_ok xl snapshot-revert lb e1
    read_pattern "$(active_image lb xvda)" 0x22 0 1M
}

# a refused first command leaves no <state dir>/<uuid>/ (it held only the
# lock); a second command after it works
case_refused_create_no_dir() {
    local c
    c=$T/fresh.cfg
    name_config "$c" fresh
    refused "invalid snapshot name" xl snapshot-create "$c" "a/b"
    refused "has no snapshot named" xl snapshot-delete "$c" nosuch
    expect_ok xl snapshot-create "$c" s1
    expect_ok xl snapshot-list --name "$c"
    expect_eq "$OUT" s1 "the snapshots of fresh"
}

# forced_enospc ERE CMD...: a --force warning line, then the error line
# matching ERE; nothing changed
forced_enospc() {
    local ere=$1 fp
    shift
    fp=$(fingerprint)
    run "$@"
    expect_eq "$RC" 1 "the exit status of the forced create"
    expect_eq "$(wc -l <<<"$ERR")" 2 "the lines of the forced create"
    expect_match "$(head -n 1 <<<"$ERR")" "^libxl-snapshot: warning: --force: " "the forced create's first line"
    expect_match "$(tail -n 1 <<<"$ERR")" "^libxl-snapshot: error: .*$ere" "the forced create's error"
    expect_unchanged "$fp" "$(printf '%q ' "$@")"
}

# QEMU's ENOSPC in a live snapshot names the disk
case_enospc_disk() {
    local F=$T/full
    mount_tmpfs "$F" 2M || return 0
    VM_IMG_DIR=$F make_vm_config full
    expect_ok xl create "$CFG"
    dd if=/dev/zero of="$F/filler" bs=4k 2>/dev/null
    FP_NAMES_ONLY=full
    # the space guards refuse it first (issue 20); --force lets QEMU
    # meet ENOSPC, and its refusal names the disk
    refused "not enough space for snapshot 'f1': .*full \(tmpfs\) needs" \
        xl snapshot-create --diskspec xvda,snapshot=no full f1
    forced_enospc "disk xvdb: QEMU refused the snapshot: .*No space left on device" \
        xl snapshot-create --force --diskspec xvda,snapshot=no full f1
    forced_enospc "disk xvda: QEMU refused the snapshot: .*No space left on device" \
        xl snapshot-create --force --diskspec xvdb,snapshot=no full f2
    expect_ok xl destroy full
    rm -f "$F/filler"
}

# a tool's error that spans two lines is logged as one, whole
case_one_line_errors() {
    local c pid
    c=$T/held.cfg
    name_config "$c" held
    qemu-system-x86_64 -machine none -nodefaults -display none \
        -drive "if=none,id=d0,file=$IMG/held.qcow2,format=qcow2" \
        </dev/null >/dev/null 2>&1 &
    pid=$!
    echo "$pid" > "$T/held.pid"
    for _ in $(seq 50); do
        qemu-img info "$IMG/held.qcow2" >/dev/null 2>&1 || break
        sleep 0.1
    done
    refused "qemu-img snapshot \(snapshot of xvda\) failed \(exit 1\): .*Failed to get \"write\" lock" \
        xl snapshot-create "$c" s1
    kill "$pid"
    wait "$pid" 2>/dev/null
    expect_ok xl snapshot-create "$c" s1
}

soft_case "domain names are checked" case_domain_names
soft_case "xl list of no such domain" case_xl_list
soft_case "snapshot-list columns with UTF-8 names" case_utf8_columns
soft_case "VHD: the tree's vhd-util, fork points, labels, loops" case_vhd
soft_case "live delete of an internal snapshot in a backing image" case_live_backing_delete
soft_case "a refused first command leaves no state dir" case_refused_create_no_dir
# shellcheck disable=SC2016  # expanded at cleanup
at_cleanup 'mountpoint -q "$T/full" && umount "$T/full"'
soft_case "QEMU's ENOSPC names the disk" case_enospc_disk
# shellcheck disable=SC2016  # expanded at cleanup
at_cleanup '[ -f "$T/held.pid" ] && kill "$(cat "$T/held.pid")" 2>/dev/null'
soft_case "a two-line tool error is one line" case_one_line_errors
finish
