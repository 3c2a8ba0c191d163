#!/bin/bash
# test-50-space.sh - space accounting of RBD snapshots: snapshot-list
# --size gives each snapshot `rbd du`'s figure
#
# A shut-off domain with an RBD disk and a qcow2 disk; three snapshots,
# data written between them (4 MiB, then 2 MiB, then 1 MiB past the
# last); each snapshot's rbd figure and frees equal the used_size `rbd
# du` reports for it (librbd diff from the previous snapshot, whole
# objects), the qcow2 disk's internal figures are there too, and the
# totals add up; the figures follow a delete (the next snapshot's
# grows by what the deleted one held, as rbd du says).  ceph-util du's
# own output: the snapshots oldest first, and the head.
set -u
# shellcheck source=tests/ceph/lib.sh
. "$(dirname "$0")/lib.sh"

command -v rbd >/dev/null || skip "no rbd command (ceph-common)"
POOL=${XL_SNAPSHOT_TEST_POOL:-rbd}
P=t50-$$
A=$POOL/$P-a
SPEC_A="rbd:$A:conf=$CEPH_CONF"

cleanup_images() {
    rbd snap purge "$A" >/dev/null 2>&1
    rbd rm "$A" >/dev/null 2>&1
}
[[ $CEPH_CONF == "$T"/* ]] || at_cleanup cleanup_images

expect_ok rbd create --size 64M "$A"
expect_ok qemu-img create -q -f qcow2 "$IMG/vm1-xvdb.qcow2" 64M
CFG=$T/vm1.cfg
cat > "$CFG" <<EOC
name = "vm1"
memory = 64
disk = [ 'format=raw,vdev=xvda,access=rw,backendtype=qdisk,target=$SPEC_A',
         'format=qcow2,vdev=xvdb,access=rw,target=$IMG/vm1-xvdb.qcow2' ]
EOC
expect_ok xl create "$CFG"
expect_ok xl destroy vm1

# du_of SNAP: rbd du's used_size of A at SNAP
du_of() {
    rbd du --format json "$A" 2>/dev/null |
        jq --arg s "$1" '.images[] | select(.snapshot == $s) | .used_size'
}
fig() {
    jq --arg s "$1" --arg v "$2" --arg f "$3" '.snapshots[] |
        select(.name == $s) | .disks[] | select(.vdev == $v) | .[$f]' <<<"$SIZES"
}

step "three snapshots, data between them"
rbd_write "$A" 0x11 0 4M
write_pattern vm1 xvdb 0x11 0 1M
expect_ok xl snapshot-create vm1 r1
rbd_write "$A" 0x22 8M 2M
write_pattern vm1 xvdb 0x22 0 1M
expect_ok xl snapshot-create vm1 r2
rbd_write "$A" 0x33 16M 1M
expect_ok xl snapshot-create vm1 r3
rbd_write "$A" 0x44 24M 1M

step "each snapshot's figure is rbd du's"
expect_ok xl snapshot-list --size --json vm1
SIZES=$OUT
expect_eq "$ERR" "" "no warning"
for s in r1 r2 r3; do
    want=$(du_of "$s")
    [ -n "$want" ] || fail "rbd du says nothing of $s"
    expect_eq "$(fig "$s" xvda rbd)" "$want" "$s: rbd du's used_size"
    expect_eq "$(fig "$s" xvda frees)" "$want" "$s frees"
    expect_eq "$(fig "$s" xvda type)" '"rbd"' "$s xvda type"
done
# (4 MiB objects, whole: r1 holds one, r2 and r3 each one more)
expect_eq "$(fig r1 xvda rbd)" 4194304 "r1: one 4 MiB object"
expect_eq "$(fig r2 xvda rbd)" 4194304 "r2: the object it changed"
expect_eq "$(fig r1 xvdb type)" '"internal"' "the qcow2 disk's snapshot"
[ "$(fig r1 xvdb exclusive)" -ge 1048576 ] || fail "r1 xvdb exclusive < 1 MiB"
expect_eq "$(jq '[.snapshots[].own] | add' <<<"$SIZES")" "$(jq .total <<<"$SIZES")" \
    "the snapshots add up to the total"
expect_eq "$(jq '.disks[] | select(.vdev == "xvda") | .own' <<<"$SIZES")" \
    "$(( $(du_of r1) + $(du_of r2) + $(du_of r3) ))" "xvda's total"
expect_ok xl snapshot-list --size vm1
expect_match "$OUT" '^r1 +- +- +[0-9.]+[KM] +- +4\.0M ' "r1's row"
expect_ok xl snapshot-info vm1 r2
expect_match "$OUT" '^  xvda +rbd +rbd du 4\.0M, frees 4\.0M$' "snapshot-info's rbd line"

step "ceph-util du"
expect_ok "$CEPH_UTIL" du "$A"
expect_eq "$(jq -r '[.snapshots[].name] | join(" ")' <<<"$OUT")" "r1 r2 r3" "oldest first"
expect_eq "$(jq .head <<<"$OUT")" "$(rbd du --format json "$A" |
    jq '.images[] | select(.snapshot == null) | .used_size')" "the head's figure"
expect_exit 2 "" "$CEPH_UTIL" du "$POOL/$P-nosuch"

step "after a delete, the figures follow"
expect_ok xl snapshot-delete vm1 r2
expect_ok xl snapshot-list --size --json vm1
SIZES=$OUT
expect_eq "$(fig r3 xvda rbd)" "$(du_of r3)" "r3 after r2's delete: rbd du's"
expect_eq "$(fig r3 xvda rbd)" 8388608 "r3 now holds r2's object too"
rbd_read "$A" 0x22 8M 2M
finish
