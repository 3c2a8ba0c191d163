#!/bin/bash
# test-84-partial-outcomes.sh - what a failure half-way leaves, said and
# settled (found by trying the error paths as a new user would)
#
#  1. A delete killed at every step, then a revert to the snapshot it
#     was deleting (not snapshot-recover): the revert's own recovery
#     finishes a delete whose every disk was done; a snapshot left with
#     no disk and no memory is never "reverted to" with exit 0; one
#     still listed reverts to its own data on the disks it holds.
#  2. A live checkpoint whose final `cont` QEMU refuses: the memory is
#     saved and kept, the guest runs, one warning at most.
#  3. A revert to a checkpoint whose QEMU fails to start: exit 1, one
#     line saying the disks are reverted and the domain is not started;
#     the revert again then works.
#  4. Redefine refuses a parent that descends from the snapshot (a
#     loop), the snapshot as its own parent, and an internal snapshot
#     its image does not hold, each in one line, changing nothing.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

# find_io LABEL CMD...: runs CMD with the first I/O point labelled
# LABEL failing (XL_SNAPSHOT_FAULT=io@LABEL: their number varies with
# polling); RC, OUT, ERR (the injection line removed).
find_io() {
    local label=$1
    shift
    run env "XL_SNAPSHOT_FAULT=io@$label" "$@"
    grep -q "^libxl-snapshot: fault injected: io ($label)" <<<"$ERR" ||
        fail_run "no I/O point '$label'"
    ERR=$(grep -v '^libxl-snapshot: fault injected: ' <<<"$ERR")
}

case_delete_then_revert() {
    local n x got=0
    make_vm_config vg
    expect_ok xl create "$CFG"
    for ((n = 1; n < 30; n++)); do
        x=$n
        write_disks vg 0x1$((n % 10))
        expect_ok xl snapshot-create vg "a$x"
        write_disks vg 0x2$((n % 10))
        expect_ok xl snapshot-create vg "b$x"
        write_disks vg 0x3$((n % 10))
        run env XL_SNAPSHOT_FAULT=delete:$n $XL snapshot-delete vg "a$x"
        [ "$RC" -eq 0 ] && got=1
        [ "$RC" -eq 0 ] || [ "$RC" -eq 86 ] || fail_run "delete at fault $n"
        run xl snapshot-revert vg "a$x"
        if [ "$RC" -eq 0 ]; then
            # still there, and reverted: on each disk it holds, its data
            expect_ok xl snapshot-list vg
            held=$(awk -v s="a$x" '$1 == s {for (i = 2; i <= NF; i++)
                        if ($i ~ /xvd[a-z]:/) print $i}' <<<"$OUT" |
                   tr ',' '\n' | grep -v ':no$' | cut -d: -f1)
            [ -n "$held" ] ||
                fail "a$x holds no disk, yet its revert exited 0"
            for vdev in $held; do
                read_pattern "$(active_image vg "$vdev")" 0x1$((n % 10)) 0 1M
            done
        else
            [ "$RC" -eq 1 ] || fail_run "revert after the delete's crash $n"
        fi
        expect_ok xl snapshot-recover vg
        expect_ok xl snapshot-check vg
        expect_ok xl snapshot-revert vg "b$x"
        expect_disks vg 0x2$((n % 10))
        [ "$got" = 1 ] && return 0
    done
    fail "the delete never got through"
}

case_cont_refused() {
    make_vm_config vf
    expect_ok xl create "$CFG"
    write_disks vf 0x41
    find_io "QMP cont" "$XL" snapshot-create --live --memory vf m1
    [ "$RC" -eq 0 ] || fail_run "a checkpoint whose cont was refused once"
    ! grep -q '^libxl-snapshot: error: ' <<<"$ERR" ||
        fail_run "an error line, yet the checkpoint was taken"
    expect_ok xl snapshot-list vf
    expect_match "$OUT" '^m1 .* [0-9.]+[KMG]$' "m1 with its memory image"
    expect_ok xl list vf
    expect_match "$OUT" 'vf +[0-9]+ r' "vf running after the checkpoint"
    write_disks vf 0x42
    expect_ok xl snapshot-revert vf m1
    expect_disks vf 0x41
    expect_ok xl snapshot-check vf
}

case_start_fails() {
    make_vm_config vj
    expect_ok xl create "$CFG"
    write_disks vj 0x51
    expect_ok xl snapshot-create --memory vj c1
    write_disks vj 0x52
    find_io "QEMU start" "$XL" snapshot-revert vj c1
    [ "$RC" -eq 1 ] || fail_run "a revert whose QEMU did not start"
    expect_match "$ERR" "reverted to 'c1' .* could not be started" \
        "the revert says where things stand"
    expect_ok xl snapshot-check vj
    expect_disks vj 0x51
    expect_ok xl snapshot-revert vj c1
    expect_ok xl list vj
    expect_disks vj 0x51
}

case_redefine() {
    make_vm_config vr
    expect_ok xl create "$CFG"
    expect_ok xl destroy vr
    expect_ok xl snapshot-create vr a
    expect_ok xl snapshot-create vr b
    expect_ok xl snapshot-create vr c
    expect_ok xl snapshot-dumpxml vr b
    printf '%s\n' "$OUT" >"$T/b.xml"
    sed '/<parent>/,/<\/parent>/s|<name>a</name>|<name>c</name>|' \
        "$T/b.xml" >"$T/loop.xml"
    refused "its parent 'c' descends from it" \
        xl snapshot-create --redefine --xmlfile "$T/loop.xml" vr
    sed '/<parent>/,/<\/parent>/s|<name>a</name>|<name>b</name>|' \
        "$T/b.xml" >"$T/self.xml"
    refused "names itself as its parent" \
        xl snapshot-create --redefine --xmlfile "$T/self.xml" vr
    # renamed, its external disk left out: the internal snapshot the
    # copy would name (b9) is in no image
    sed -e '0,/<name>b<\/name>/s//<name>b9<\/name>/' \
        -e '/<disk name="xvdb"/,/<\/disk>/d' "$T/b.xml" >"$T/b9.xml"
    refused "holds no internal snapshot 'b9'" \
        xl snapshot-create --redefine --xmlfile "$T/b9.xml" vr
    expect_ok xl snapshot-check vr
}

soft_case "redefine: a loop of parents, itself as parent, a missing internal snapshot" \
    case_redefine
soft_case "a delete killed at every step, then a revert to it" \
    case_delete_then_revert
soft_case "a live checkpoint whose cont is refused" case_cont_refused
soft_case "a revert whose QEMU fails to start" case_start_fails
finish
