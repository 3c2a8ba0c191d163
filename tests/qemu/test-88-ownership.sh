#!/bin/bash
# test-88-ownership.sh - one owner per file; snapshot-check counts a
# broken tree and changes nothing
#
# Issue 14, defects 2 and 5, and the ownership item of "close the class":
#  - a redefine of x1's dump under another name is refused, naming x1;
#    a record that shares x1's files anyway (written by hand, as an
#    older version could have let it in) is reported by snapshot-check
#    (exit 1, --json too), and deleting it is refused: x1 keeps its data
#    (before: the delete merged x1's overlay and removed its memory);
#    --metadata drops it alone;
#  - create names the owner of an overlay path it is given;
#  - a parent loop (itself, two records) or a parent without a record,
#    and a corrupt record: snapshot-check exits 1 and says so, --json
#    always prints a document;
#  - snapshot-check changes nothing: an interrupted operation is
#    reported, not completed (snapshot-recover completes it);
#  - redefine: a missing <creationTime> is refused, <cookie> is said to
#    be ignored.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

# broken ERE: snapshot-check exits 1, names ERE, and --json says it too
broken() {
    run xl snapshot-check vm1
    [ "$RC" -eq 1 ] || fail_run "snapshot-check exited $RC, expected 1"
    [ -n "${SHOW:-}" ] && echo "$OUT" >&2
    expect_match "$OUT" "$1" "snapshot-check's report"
    run xl snapshot-check --json vm1
    [ "$RC" -eq 1 ] || fail_run "snapshot-check --json exited $RC, expected 1"
    jq -e . >/dev/null <<<"$OUT" || fail_run "snapshot-check --json printed no JSON document"
    expect_match "$(jq -r '.problems[]' <<<"$OUT")" "$1" "snapshot-check --json's problems"
}

make_vm_config vm1
expect_ok xl create "$CFG"
write_disks vm1 0xa1
expect_ok xl snapshot-create --memory --diskspec xvda,snapshot=external \
    --diskspec xvdb,snapshot=external vm1 x1
write_disks vm1 0xa2
expect_ok xl snapshot-create vm1 x2
write_disks vm1 0xa3
D=$(domain_dir vm1)
rec() { echo "$D/snapshotdata-$1.libxl-json"; }
cp "$(rec x1)" "$T/x1.json"
cp "$(rec x2)" "$T/x2.json"
expect_ok xl snapshot-info --json vm1 x1
MEM=$(jq -r .memory <<<"$OUT")
OVL=$(jq -r '.disks[] | select(.vdev == "xvdb") | .overlay' <<<"$OUT")
expect_file "$MEM"
expect_file "$OVL"

# Each case starts from vm1 with x1 (memory, both disks external) and
# its child x2, whatever an earlier case left (on the old code, a case
# fails half-way: the others still run, so each defect is shown).
reset_records() {
    rm -f "$(rec copy1)"
    cp "$T/x1.json" "$(rec x1)"
    cp "$T/x2.json" "$(rec x2)"
}

case_redefine() {
    local fp
    expect_ok xl snapshot-dumpxml vm1 x1
    sed 's|<name>x1</name>|<name>copy1</name>|' <<<"$OUT" > "$T/copy1.xml"
    fp=$(fingerprint)
    expect_error "snapshot copy1: its .* is snapshot x1's" \
        xl snapshot-create --redefine --xmlfile "$T/copy1.xml" vm1
    expect_unchanged "$fp" "the refused redefine"
    # the same name again is x1 itself: its own files
    expect_ok xl snapshot-create --redefine --xmlfile "$T/x1.xml" vm1
}

case_create() {
    local fp
    fp=$(fingerprint)
    expect_error "overlay '$OVL' already exists: it is snapshot x1's overlay" \
        xl snapshot-create --diskspec xvda,snapshot=no \
        --diskspec "xvdb,snapshot=external,file=$OVL" vm1 y1
    expect_unchanged "$fp" "the refused create"
}

case_shared() {
    local fp
    reset_records
    jq '.name = "copy1"' "$(rec x1)" > "$(rec copy1)"
    broken "snapshot (copy1|x1): its (memory image|overlay|frozen image) .* is also snapshot (x1|copy1)'s"
    fp=$(fingerprint)
    expect_error "snapshot copy1: its .* is also snapshot x1's: deleting it would destroy x1's data" \
        xl snapshot-delete vm1 copy1
    expect_error "snapshot x1: its .* is also snapshot copy1's" \
        xl snapshot-delete vm1 x1
    expect_unchanged "$fp" "the refused deletes"
    expect_ok xl snapshot-delete --metadata vm1 copy1
    expect_file "$MEM"
    expect_file "$OVL"
    expect_ok xl snapshot-check vm1
    expect_ok xl snapshot-revert vm1 x1
    expect_disks vm1 0xa1
    expect_ok xl snapshot-revert vm1 x2
    expect_disks vm1 0xa2
}

case_tree() {
    reset_records
    jq '.parent = "x1"' "$T/x1.json" > "$(rec x1)"
    broken "snapshot x1: it is its own parent"
    jq '.parent = "x2"' "$T/x1.json" > "$(rec x1)"
    broken "snapshots x[12] -> x[12] -> x[12]: their parents make a loop"
    cp "$T/x1.json" "$(rec x1)"
    jq '.parent = "nosuch"' "$T/x2.json" > "$(rec x2)"
    broken "snapshot x2: its parent 'nosuch' has no record"
    reset_records
    expect_ok xl snapshot-check vm1
}

case_corrupt() {
    reset_records
    echo '{"name": ' > "$(rec x2)"
    broken "corrupt snapshot record '.*snapshotdata-x2.libxl-json'"
    reset_records
    expect_ok xl snapshot-check vm1
}

case_journal() {
    local fp
    reset_records
    run env XL_SNAPSHOT_FAULT=create:1 "$XL" snapshot-create vm1 z1
    expect_eq "$RC" 86 "snapshot-create's status at fault 1"
    expect_file "$D/journal.libxl-json"
    fp=$(fingerprint)
    broken "an interrupted operation \(create\) is pending"
    expect_unchanged "$fp" "snapshot-check"
    expect_ok xl snapshot-recover vm1
    expect_match "$OUT" "recovered" "snapshot-recover"
    expect_ok xl snapshot-check vm1
}

case_xml() {
    local fp xml
    reset_records
    expect_ok xl snapshot-dumpxml vm1 x1
    xml=$OUT
    expect_ok xl snapshot-delete --metadata vm1 x1
    fp=$(fingerprint)
    expect_error "<creationTime> is missing" xl snapshot-create --redefine \
        --xmlfile <(sed '/<creationTime>/d' <<<"$xml") vm1
    expect_unchanged "$fp" "the refused redefine"
    expect_ok xl snapshot-create --redefine \
        --xmlfile <(sed 's|</domainsnapshot>|<cookie><x/></cookie></domainsnapshot>|' <<<"$xml") vm1
    expect_match "$ERR" "<cookie> is ignored" "the warning"
    expect_eq "$(grep -c . <<<"$ERR")" 1 "lines on stderr"
    expect_ok xl snapshot-dumpxml vm1 x1
    expect_eq "$OUT" "$xml" "x1's XML after the redefine"
    expect_ok xl snapshot-check vm1
}

expect_ok xl snapshot-dumpxml vm1 x1
echo "$OUT" > "$T/x1.xml"
soft_case "redefine of x1's dump under another name: refused, naming x1" case_redefine
soft_case "create names the owner of an overlay path" case_create
soft_case "a record sharing x1's files: reported, its delete refused" case_shared
expect_ok xl destroy vm1
soft_case "a parent loop or a missing parent is a problem (exit 1, --json)" case_tree
soft_case "a corrupt record: reported, and --json still prints a document" case_corrupt
soft_case "snapshot-check changes nothing: a pending journal is reported" case_journal
soft_case "redefine: <creationTime> missing refused, <cookie> said ignored" case_xml
finish
