#!/bin/bash
# test-107-redefine-batch.sh - snapshot-create --redefine of many XML
# files at once (--xmlfile=F1 --xmlfile=F2..., --xmlfile=DIR)
#
#  - a real tree with a branch (s1 -> s2; s1 -> s3 -> s4; internal and
#    external disks), dumped, its records dropped (--metadata), then
#    redefined in one batch from a directory whose file names put the
#    children first: the same tree (parents, children), --current makes
#    the newest current, snapshot-check is clean, and each snapshot
#    reverts to its own data;
#  - a batch with one bad file (not well-formed, a name twice in the
#    batch, a name the domain has, a missing parent, a missing image, an
#    internal snapshot its image does not hold, a hostile name ../x, a
#    loop of parents) imports nothing, and says in
#    one line which file and why;
#  - -N checks a batch (or one file) and imports nothing;
#  - a crash mid-batch (XL_SNAPSHOT_FAULT): after the journal, before
#    any record (redefine:1); after some records were renamed in
#    (save:3); after every record, the journal left (redefine:2); and a
#    failed write (io:N): the next command leaves none or all of them,
#    and snapshot-check is clean.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

make_vm_config vm1
expect_ok xl create "$CFG"

step "a tree with a branch: s1 -> s2, s1 -> s3 -> s4"
write_disks vm1 0x11
expect_ok xl snapshot-create --diskspec xvdb,snapshot=no vm1 s1
write_disks vm1 0x22
expect_ok xl snapshot-create --diskspec xvdb,snapshot=no vm1 s2
expect_ok xl snapshot-revert vm1 s1
write_disks vm1 0x33
expect_ok xl snapshot-create --diskspec xvdb,snapshot=external vm1 s3
write_disks vm1 0x44
expect_ok xl snapshot-create --diskspec xvdb,snapshot=external vm1 s4

tree_of() {
    xl snapshot-list --json vm1 |
        jq -c '[.[] | {name, parent, children: ((.children // []) | sort),
                       current}] | sort_by(.name)'
}
before=$(tree_of)
expect_match "$before" '"name":"s4","parent":"s3"' "the tree before"
mkdir "$T/x"
n=9
for s in s1 s2 s3 s4; do
    # file names that sort children first: the batch must order them
    expect_ok xl snapshot-dumpxml vm1 "$s"
    printf '%s\n' "$OUT" > "$T/x/$n-$s.xml"
    n=$((n - 1))
done
for s in s4 s3 s2 s1; do
    expect_ok xl snapshot-delete --metadata vm1 "$s"
done
expect_ok xl snapshot-list --json vm1
expect_eq "$(jq length <<<"$OUT")" 0 "no record left"

step "redefined in one batch from a directory: the same tree"
expect_ok xl snapshot-create --redefine --xmlfile="$T/x" --current vm1
expect_eq "$(grep -c '^Domain snapshot s[1-4] defined from' <<<"$OUT")" 4 "one line per snapshot"
expect_eq "$(tree_of)" "$before" "the tree after the batch"
expect_ok xl snapshot-current vm1
expect_eq "$OUT" s4 "--current: the newest"
expect_ok xl snapshot-check vm1
for s in s1 s2 s3 s4; do
    expect_ok xl snapshot-dumpxml vm1 "$s"
    expect_eq "$OUT" "$(cat "$T"/x/*-"$s".xml)" "$s's XML after the batch"
done

step "each redefined snapshot reverts to its own data"
expect_ok xl snapshot-revert vm1 s2
read_pattern "$(active_image vm1 xvda)" 0x22 0 1M
expect_ok xl snapshot-revert vm1 s1
read_pattern "$(active_image vm1 xvda)" 0x11 0 1M
expect_ok xl snapshot-revert vm1 s3
expect_disks vm1 0x33
expect_ok xl snapshot-revert vm1 s4
expect_disks vm1 0x44
check_images

step "an external snapshot whose overlay a revert discarded: redefined"
# (s4's overlay, the active image when the revert to s2 left it, is
# gone: a revert to s4 makes a new one from the image it froze)
ovl=$(jq -r '.disks[] | select(.vdev == "xvdb") | .overlay' \
    "$(domain_dir vm1)/snapshotdata-s4.libxl-json")
expect_ok xl snapshot-revert vm1 s2
expect_no_file "$ovl"
expect_ok xl snapshot-check vm1
expect_ok xl snapshot-dumpxml vm1 s4
printf '%s\n' "$OUT" > "$T/s4.xml"
expect_ok xl snapshot-delete --metadata vm1 s4
expect_ok xl snapshot-create --redefine --xmlfile="$T/s4.xml" vm1
expect_ok xl snapshot-check vm1
expect_ok xl snapshot-revert vm1 s4
expect_disks vm1 0x44
check_images

step "a file of another domain's snapshot directory is not claimed"
make_vm_config vm2
mem=$(domain_dir vm1)/other.save
head -c 4096 /dev/zero > "$mem"
printf '<domainsnapshot><name>m1</name><creationTime>2000000001</creationTime><memory snapshot="external" file="%s"/><disks><disk name="xvda" snapshot="no"/><disk name="xvdb" snapshot="no"/></disks></domainsnapshot>\n' \
    "$mem" > "$T/m1.xml"
refused "its memory image '$mem' is in another domain's snapshot directory" \
    xl snapshot-create --redefine --xmlfile="$T/m1.xml" "$CFG"
expect_file "$mem"
rm -f "$mem"
# --json has no meaning with --redefine: a usage error
run xl snapshot-create --json --redefine --xmlfile="$T/s4.xml" vm1
expect_eq "$RC" 2 "--json --redefine: a usage error"

# meta NAME PARENT TIME: a metadata-only snapshot (no disk taken)
meta() {
    printf '<domainsnapshot><name>%s</name>%s<creationTime>%s</creationTime>' \
        "$1" "${2:+<parent><name>$2</name></parent>}" "$3"
    printf '<disks><disk name="xvda" snapshot="no"/><disk name="xvdb" snapshot="no"/></disks></domainsnapshot>\n'
}
# good DIR: n1 -> n2 -> n3, n1 -> n4 -> n5, on s4
good() {
    rm -rf "$1"
    mkdir "$1"
    meta n1 s4 2000000001 > "$1/n1.xml"
    meta n2 n1 2000000002 > "$1/n2.xml"
    meta n3 n2 2000000003 > "$1/n3.xml"
    meta n4 n1 2000000004 > "$1/n4.xml"
    meta n5 n4 2000000005 > "$1/n5.xml"
}
records() {
    find "$(domain_dir vm1)" -name 'snapshotdata-n*.libxl-json' | wc -l
}

step "one bad file: nothing imported, the file and the reason said"
B=$T/bad
bad_case() {
    local re=$1 file=$2
    refused "$file: .*($re)" xl snapshot-create --redefine --xmlfile="$B" vm1
    expect_eq "$(records)" 0 "records after the refused batch"
    good "$B"
}
good "$B"
printf '<domainsnapshot><name>n6</name>\n' > "$B/n6.xml"
bad_case "well-formed" "$B/n6.xml"
meta n2 n1 2000000009 > "$B/n9.xml"
bad_case "snapshot 'n2' is also in $B/n2.xml" "$B/n9.xml"
meta s2 n1 2000000009 > "$B/n9.xml"
bad_case "already has a snapshot 's2'" "$B/n9.xml"
meta n6 nope 2000000009 > "$B/n6.xml"
bad_case "parent 'nope' is neither in the batch nor" "$B/n6.xml"
sed 's|<disk name="xvdb" snapshot="no"/>|<disk name="xvdb" snapshot="external"><source file="/nonexistent/o.qcow2"/></disk>|; s|</domainsnapshot>|<domain><devices><disk><source file="/nonexistent/b.qcow2"/><target dev="xvdb"/></disk></devices></domain></domainsnapshot>|' \
    <(meta n6 n1 2000000009) > "$B/n6.xml"
bad_case "does not exist" "$B/n6.xml"
sed "s|<disk name=\"xvda\" snapshot=\"no\"/>|<disk name=\"xvda\" snapshot=\"internal\"/>|; s|</domainsnapshot>|<domain><devices><disk><driver type=\"qcow2\"/><source file=\"$IMG/vm1-xvda.qcow2\"/><target dev=\"xvda\"/></disk></devices></domain></domainsnapshot>|" \
    <(meta n6 n1 2000000009) > "$B/n6.xml"
bad_case "holds no internal snapshot 'n6'" "$B/n6.xml"
meta ../x n1 2000000009 > "$B/n6.xml"
bad_case "valid snapshot name" "$B/n6.xml"
meta n6 n7 2000000009 > "$B/n6.xml"
meta n7 n6 2000000010 > "$B/n7.xml"
bad_case "would loop" "$B/n[67].xml"
# the file form: --xmlfile twice, the second one bad
meta n6 nope 2000000009 > "$T/n6.xml"
refused "$T/n6.xml: .*parent 'nope'" xl snapshot-create --redefine \
    --xmlfile="$B/n1.xml" --xmlfile="$T/n6.xml" vm1
run xl snapshot-create --redefine --xmlfile="$T/empty-nothing" --xmlfile="$B" vm1
expect_eq "$RC" 1 "a missing file"
expect_eq "$(records)" 0 "records after a missing file"
mkdir "$T/empty"
refused "holds no \*.xml file" xl snapshot-create --redefine --xmlfile="$T/empty" vm1
expect_ok xl snapshot-check vm1

step "-N: all checked, nothing imported"
good "$B"
fp=$(fingerprint)
expect_ok xl -N snapshot-create --redefine --xmlfile="$B" vm1
expect_eq "$(grep -c '^Domain snapshot n[1-5] would be defined from' <<<"$OUT")" 5 "-N's lines"
expect_unchanged "$fp" "-N"
meta n6 nope 2000000009 > "$B/n6.xml"
refused "$B/n6.xml: .*parent 'nope'" xl -N snapshot-create --redefine --xmlfile="$B" vm1
refused "$B/n6.xml: .*parent 'nope'" xl -N snapshot-create --redefine --xmlfile="$B/n6.xml" vm1
# one file naming a snapshot the domain has: the real command replaces
# it, and -N says so (nothing written)
fp=$(fingerprint)
expect_ok xl -N snapshot-create --redefine --xmlfile="$T/s4.xml" vm1
expect_match "$OUT" "^Domain snapshot s4 would be defined from '$T/s4.xml'$" "-N of one file"
expect_unchanged "$fp" "-N of one file"

step "a crash mid-batch: none or all after the next command"
crash() {
    local fault=$1 want=$2 what=$3
    good "$B"
    run env XL_SNAPSHOT_FAULT="$fault" "$XL" snapshot-create --redefine \
        --xmlfile="$B" vm1
    expect_eq "$RC" 86 "$fault: the crash"
    expect_match "$(ls "$(domain_dir vm1)")" "journal" "$fault: the journal left"
    expect_eq "$(records)" "$what" "$fault: records on disk after the crash"
    # a lock-free reader shows none or all at once, meanwhile
    expect_ok xl snapshot-list --json vm1
    expect_eq "$(jq '[.[] | select(.name | startswith("n"))] | length' <<<"$OUT")" \
        "$want" "$fault: the batch's snapshots listed before the recovery"
    run xl snapshot-check vm1
    expect_eq "$RC" 1 "$fault: snapshot-check before the recovery"
    expect_match "$OUT$ERR" "interrupted operation \(redefine\) is pending" \
        "$fault: snapshot-check reports the journal"
    # the .tmp files a batch leaves: one line for them all
    [ "$(grep -c 'interrupted write' <<<"$OUT$ERR")" -le 1 ] ||
        fail "$fault: snapshot-check says more than one line of the .tmp files"
    [ "$fault" = save:3 ] && expect_match "$OUT$ERR" \
        "[0-9]+ files \*\.tmp \('.*'\.\.\.\) are left by an interrupted write" \
        "$fault: the .tmp files said"
    expect_ok xl snapshot-recover vm1      # the next command: recovers
    expect_match "$ERR" "interrupted redefine of 5 snapshots" "$fault: said"
    expect_ok xl snapshot-list --json vm1
    expect_eq "$(jq '[.[] | select(.name | startswith("n"))] | length' <<<"$OUT")" \
        "$want" "$fault: the batch's snapshots after the next command"
    expect_no_match "$(ls "$(domain_dir vm1)")" "journal|\.tmp" "$fault: the journal"
    expect_ok xl snapshot-check vm1
}
crash redefine:1 0 0
crash save:3 0 2        # s4's record (its children), n1, then n2 or n4
crash redefine:2 5 5
expect_eq "$(tree_of | jq -c '.[] | select(.name == "n4") | .parent')" '"n1"' "n4's parent"
for s in n5 n3 n4 n2 n1; do
    expect_ok xl snapshot-delete --metadata vm1 "$s"
done

step "a failed write mid-batch: nothing imported, nothing left"
good "$B"
run env XL_SNAPSHOT_FAULT=io:4 "$XL" snapshot-create --redefine --xmlfile="$B" vm1
expect_eq "$RC" 1 "io:4: the command fails"
expect_match "$ERR" "cannot write .*snapshotdata-n1" "io:4: said (a record of the batch, mid-way)"
expect_eq "$(records)" 0 "io:4: records"
expect_no_match "$(ls "$(domain_dir vm1)")" "journal|\.tmp" "io:4: the journal"
expect_ok xl snapshot-check vm1
expect_eq "$(tree_of)" "$before" \
    "the tree after the failures"

step "the batch again: all of it"
expect_ok xl snapshot-create --redefine --xmlfile="$B" vm1
expect_eq "$(records)" 5 "the batch's records"
expect_ok xl snapshot-current vm1
expect_eq "$OUT" s4 "without --current the current one stays"
expect_ok xl snapshot-check vm1
echo "PASS: $TEST_NAME"
