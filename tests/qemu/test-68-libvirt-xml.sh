#!/bin/bash
# test-68-libvirt-xml.sh - libvirt domainsnapshot XML: snapshot-dumpxml
# and snapshot-create --redefine --xmlfile
#
#  - dumpxml of a disk-only snapshot (internal xvda, external xvdb) and
#    of a memory checkpoint: well-formed (xmllint), with <name>,
#    <state>, <parent>, <creationTime>, <memory>, <disks> and the
#    domain's disks as libvirt writes them (checked with XPath);
#  - the round trip: dump, drop the record (--metadata), redefine from
#    the XML, dump again: identical, and the redefined snapshot reverts
#    to its data (it is a real record, not a copy of text);
#  - every dump, and the libvirt-style file below, validate against
#    docs/schema/domainsnapshot.rng (xmllint --relaxng); bad documents
#    do not;
#  - configs/libvirt-snapshot.xml (libvirt's style, with comments and
#    attributes libvirt writes that we do not use) imported onto a
#    domain whose images match it, then reverted to;
#  - bad XML refused with one line and nothing changed: not
#    well-formed, not a domainsnapshot, a hostile name, an unknown
#    parent, a missing image, another domain's uuid, entities.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

command -v xmllint >/dev/null || fail "xmllint is missing (libxml2-utils)"
xp() { xmllint --xpath "$1" "$2" 2>/dev/null; }

make_vm_config vm1
expect_ok xl create "$CFG"
write_disks vm1 0x11
expect_ok xl snapshot-create --diskspec xvdb,snapshot=external -d "first one" vm1 s1
write_disks vm1 0x22
expect_ok xl snapshot-create --diskspec xvdb,snapshot=external vm1 s2
write_disks vm1 0x33
expect_ok xl snapshot-create --memory vm1 m3

step "snapshot-dumpxml: libvirt's fields"
expect_ok xl snapshot-dumpxml vm1 s2
echo "$OUT" > "$T/s2.xml"
expect_ok xmllint --noout "$T/s2.xml"
expect_eq "$(xp 'string(/domainsnapshot/name)' "$T/s2.xml")" s2 "<name>"
expect_eq "$(xp 'string(/domainsnapshot/state)' "$T/s2.xml")" disk-snapshot "<state>"
expect_eq "$(xp 'string(/domainsnapshot/parent/name)' "$T/s2.xml")" s1 "<parent>"
ct=$(xl snapshot-info --json vm1 s2 | jq .creation_time)
expect_eq "$(xp 'string(/domainsnapshot/creationTime)' "$T/s2.xml")" "$ct" "<creationTime>"
expect_eq "$(xp 'string(/domainsnapshot/memory/@snapshot)' "$T/s2.xml")" no "<memory>"
expect_eq "$(xp 'string(/domainsnapshot/disks/disk[@name="xvda"]/@snapshot)' "$T/s2.xml")" internal "xvda's <disk>"
expect_eq "$(xp 'string(/domainsnapshot/disks/disk[@name="xvdb"]/@snapshot)' "$T/s2.xml")" external "xvdb's <disk>"
expect_eq "$(xp 'string(/domainsnapshot/disks/disk[@name="xvdb"]/source/@file)' "$T/s2.xml")" \
    "$IMG/vm1-xvdb.s2.qcow2" "xvdb's new file"
expect_eq "$(xp 'string(/domainsnapshot/domain/devices/disk[target/@dev="xvdb"]/source/@file)' "$T/s2.xml")" \
    "$IMG/vm1-xvdb.s1.qcow2" "xvdb's image at the snapshot"
expect_eq "$(xp 'string(/domainsnapshot/domain/uuid)' "$T/s2.xml")" "$(domain_uuid vm1)" "<uuid>"
expect_ok xl snapshot-dumpxml vm1 m3
echo "$OUT" > "$T/m3.xml"
expect_eq "$(xp 'string(/domainsnapshot/state)' "$T/m3.xml")" running "a checkpoint's <state>"
expect_eq "$(xp 'string(/domainsnapshot/memory/@snapshot)' "$T/m3.xml")" external "a checkpoint's <memory>"
expect_file "$(xp 'string(/domainsnapshot/memory/@file)' "$T/m3.xml")"

step "the RelaxNG schema: the dumps and libvirt's style validate, bad ones do not"
RNG=$REPO/docs/schema/domainsnapshot.rng
for f in "$T/s2.xml" "$T/m3.xml" "$REPO/configs/libvirt-snapshot.xml"; do
    expect_ok xmllint --noout --relaxng "$RNG" "$f"
done
invalid() {
    printf '%s\n' "$2" > "$T/invalid.xml"
    run xmllint --noout --relaxng "$RNG" "$T/invalid.xml"
    [ "$RC" -ne 0 ] || fail_run "the schema accepts $1"
}
invalid "an unknown state" "<domainsnapshot><state>flying</state></domainsnapshot>"
invalid "a name with a slash" "<domainsnapshot><name>../x</name></domainsnapshot>"
invalid "an unknown disk mode" "<domainsnapshot><disks><disk name='xvda' snapshot='sideways'/></disks></domainsnapshot>"
invalid "a relative overlay" "<domainsnapshot><disks><disk name='xvda' snapshot='external'><source file='o.qcow2'/></disk></disks></domainsnapshot>"
invalid "a time that is not a number" "<domainsnapshot><creationTime>noon</creationTime></domainsnapshot>"
invalid "an unknown element" "<domainsnapshot><colour>blue</colour></domainsnapshot>"

step "round trip: dump, drop the record, redefine, dump: identical"
for s in s2 m3; do
    expect_ok xl snapshot-delete --metadata vm1 "$s"
done
expect_ok xl snapshot-create --redefine --xmlfile "$T/s2.xml" vm1
expect_match "$OUT" "Domain snapshot s2 defined" "--redefine's message"
expect_ok xl snapshot-create --redefine --xmlfile "$T/m3.xml" --current vm1
expect_ok xl snapshot-dumpxml vm1 s2
expect_eq "$OUT" "$(cat "$T/s2.xml")" "s2's XML after the round trip"
expect_ok xl snapshot-dumpxml vm1 m3
expect_eq "$OUT" "$(cat "$T/m3.xml")" "m3's XML after the round trip"
expect_ok xl snapshot-current vm1
expect_eq "$OUT" m3 "--current"
expect_ok xl snapshot-check vm1
expect_ok xl snapshot-revert vm1 s2
expect_disks vm1 0x22
expect_ok xl snapshot-revert vm1 m3
expect_disks vm1 0x33

step "configs/libvirt-snapshot.xml, libvirt's style, imported"
expect_ok xl destroy vm1
make_vm_config vm2
qemu-io -f raw -c "write -P 0x44 0 1M" "$IMG/vm2-xvdb.img" >/dev/null
qemu-img create -q -f qcow2 -F raw -b "$IMG/vm2-xvdb.img" "$IMG/vm2-xvdb.imported.qcow2"
sed "s|/var/lib/xen/images/vm1|$IMG/vm2|g; s|<name>vm1</name>|<name>vm2</name>|" \
    "$REPO/configs/libvirt-snapshot.xml" > "$T/lv.xml"
expect_ok xl snapshot-create --redefine --xmlfile "$T/lv.xml" "$CFG"
expect_ok xl snapshot-info --json "$CFG" imported
expect_eq "$(jq -r '.description' <<<"$OUT")" "taken by libvirt before the move to xl" "the description"
expect_eq "$(jq -r '.disks[] | select(.vdev == "xvdb") | .file + " " + .overlay' <<<"$OUT")" \
    "$IMG/vm2-xvdb.img $IMG/vm2-xvdb.imported.qcow2" "xvdb's images"
expect_ok xl snapshot-revert "$CFG" imported
read_pattern "$(active_image vm2 xvdb)" 0x44 0 1M

step "bad XML refused, nothing changed"
fp=$(fingerprint)
bad() {
    local what=$1 re=$2
    printf '%s\n' "$3" > "$T/bad.xml"
    expect_error "$re" xl snapshot-create --redefine --xmlfile "$T/bad.xml" "$CFG"
}
bad "not well-formed" "well-formed" "<domainsnapshot><name>x</name>"
bad "another document" "not a libvirt domainsnapshot" "<domain><name>x</name></domain>"
bad "a hostile name" "valid snapshot name" "<domainsnapshot><name>../x</name></domainsnapshot>"
bad "an unknown parent" "parent 'nope'" "<domainsnapshot><name>x</name><parent><name>nope</name></parent></domainsnapshot>"
bad "a missing image" "does not exist" "<domainsnapshot><name>x</name><disks><disk name='xvdb' snapshot='external'><source file='/nonexistent/o.qcow2'/></disk></disks><domain><devices><disk><source file='/nonexistent/b.img'/><target dev='xvdb'/></disk></devices></domain></domainsnapshot>"
bad "another domain's uuid" "another domain" "<domainsnapshot><name>x</name><domain><uuid>00000000-0000-4000-8000-000000000001</uuid></domain></domainsnapshot>"
bad "a bad state" "state" "<domainsnapshot><name>x</name><state>flying</state></domainsnapshot>"
bad "an entity" "well-formed|valid snapshot name" "<!DOCTYPE d [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><domainsnapshot><name>&e;</name></domainsnapshot>"
run xl snapshot-create --redefine "$CFG"
expect_eq "$RC" 2 "--redefine without --xmlfile (a usage error)"
expect_match "$ERR" "takes nothing else" "its message"
expect_unchanged "$fp" "the refused redefines"
echo "PASS: $TEST_NAME"
