#!/bin/bash
# test-99-snapshot-check.sh - snapshot-check finds what is wrong
#
# The crash tests take a clean snapshot-check as proof of consistency;
# this shows that it is not clean when it should not be.  On a domain
# with s1 and s2 (xvda internal, xvdb external), each of these makes it
# exit 1 naming the problem, and undoing it makes it clean again:
# a file no record owns in the record directory, a stray overlay beside
# a disk, an internal snapshot gone from its image, an image of a
# record gone (and so the active chain broken).
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

make_vm_config vm1
expect_ok xl create "$CFG"
expect_ok xl snapshot-create vm1 s1
expect_ok xl snapshot-create vm1 s2
expect_ok xl snapshot-check vm1
expect_match "$OUT" "agree" "snapshot-check of a clean domain"

# broken ERE: snapshot-check exits 1 and names ERE
broken() {
    run xl snapshot-check vm1
    [ "$RC" -eq 1 ] || fail_run "snapshot-check exited $RC, expected 1"
    expect_match "$OUT" "$1" "snapshot-check's report"
}

step "a file no record owns"
touch "$(domain_dir vm1)/junk"
broken "junk' belongs to no record"
rm "$(domain_dir vm1)/junk"
expect_ok xl snapshot-check vm1

step "a stray overlay beside xvdb's image"
qemu-img create -q -f qcow2 "$IMG/vm1-xvdb.stray.qcow2" 1M
broken "vm1-xvdb.stray.qcow2' looks like an overlay"
rm "$IMG/vm1-xvdb.stray.qcow2"
expect_ok xl snapshot-check vm1

step "QEMU runs a disk on another image than the records say"
dom=$(domain_dir vm1)/domain.libxl-json
cp "$dom" "$T/domain.bak"
jq --arg p "$IMG/vm1-xvdb.s1.qcow2" \
    '(.disks[] | select(.vdev == "xvdb") | .path) |= $p' "$T/domain.bak" >"$dom"
broken "disk xvdb: QEMU runs it on '.*', but the domain's snapshot record says '.*vm1-xvdb.s1.qcow2'"
cp "$T/domain.bak" "$dom"
expect_ok xl snapshot-check vm1

step "an internal snapshot gone from its image (shut off)"
expect_ok xl destroy vm1
expect_ok qemu-img snapshot -d s1 "$IMG/vm1-xvda.qcow2"
broken "snapshot s1: disk xvda: .* holds no internal snapshot named 's1'"
expect_ok qemu-img snapshot -c s1 "$IMG/vm1-xvda.qcow2"
expect_ok xl snapshot-check vm1

step "an image of a record gone"
mv "$IMG/vm1-xvdb.s1.qcow2" "$T/away.qcow2"
broken "snapshot s2: disk xvdb: image .* is missing"
expect_match "$OUT" "active image .* does not open" "the broken active chain"
mv "$T/away.qcow2" "$IMG/vm1-xvdb.s1.qcow2"
expect_ok xl snapshot-check vm1
