#!/bin/bash
# test-30-pool-rbd.sh - a pool as Ceph users run one: RBD disks and the
# RADOS record store, two "hosts" (own state and run dirs, nothing local
# shared) on the same cluster
#
# Host A starts a domain on 2 RBD disks, takes s1 and s2 live, destroys
# it.  Host B starts it from the same config (it runs on what A left),
# lists A's snapshots, reverts to each (data read from outside, on the
# images), deletes s1 (its RBD snapshots go from both images);
# snapshot-check is clean on both hosts, and A sees B's tree.  A store
# pool that does not exist is an error, not an empty tree; records the
# directory store holds for the domain are named as unused.
set -u
# shellcheck source=tests/ceph/lib.sh
. "$(dirname "$0")/lib.sh"

command -v rbd >/dev/null || skip "no rbd command (ceph-common)"
POOL=rbd
P=t30-$$
export XL_SNAPSHOT_STORE=rados:$POOL
export XL_SNAPSHOT_LOCK_LEASE=5
for i in a b; do expect_ok rbd create --size 32M "$POOL/$P-$i"; done
cleanup_images() {
    local i
    for i in a b; do
        timeout 30 rbd snap purge "$POOL/$P-$i" >/dev/null 2>&1
        timeout 30 rbd rm "$POOL/$P-$i" >/dev/null 2>&1
    done
    [ -n "${OBJ:-}" ] && timeout 30 "$CEPH_UTIL" remove-object "$POOL" "$OBJ" >/dev/null 2>&1
}
[[ $CEPH_CONF == "$T"/* ]] || at_cleanup cleanup_images

host_b

CFG=$T/vm.cfg
cat > "$CFG" <<CFGEOF
name = "vm"
memory = 64
disk = [ 'format=raw,vdev=xvda,access=rw,target=rbd:$POOL/$P-a:conf=$CEPH_CONF',
         'format=raw,vdev=xvdb,access=rw,target=rbd:$POOL/$P-b:conf=$CEPH_CONF' ]
CFGEOF
both() {                       # both RBD images hold BYTE at 0+1M
    read_pattern "rbd:$POOL/$P-a:conf=$CEPH_CONF" "$1" 0 1M raw
    read_pattern "rbd:$POOL/$P-b:conf=$CEPH_CONF" "$1" 0 1M raw
}
snaps_of() {
    rbd snap ls --format json "$POOL/$P-$1" | jq -r '.[].name' | sort | tr '\n' ' '
}

step "host A: start, s1 and s2 live, destroy"
expect_ok xl create "$CFG"
write_disks vm 0x11
expect_ok xl snapshot-create vm s1
write_disks vm 0x22
expect_ok xl snapshot-create vm s2
write_disks vm 0x33
OBJ=xl-snapshot.$(domain_uuid vm)
expect_ok xl destroy vm
expect_eq "$(find "$STATE" -name '*.libxl-json')" "" "records in host A's state dir"
expect_eq "$(snaps_of a)" "s1 s2 " "RBD snapshots of $P-a"

step "a store that is not what it seems: said"
run env XL_SNAPSHOT_STORE=rados:t30-nosuchpool "$XL" snapshot-list vm
[ "$RC" -ne 0 ] || fail_run "a store in a pool that does not exist listed nothing, exit 0"
expect_match "$ERR" "the record store's pool t30-nosuchpool does not exist" \
    "the missing pool's line"
# records the directory store holds (from before the switch) are named
mkdir -p "$STATE/${OBJ#xl-snapshot.}"
echo '{"name": "vm"}' > "$STATE/${OBJ#xl-snapshot.}/domain.libxl-json"
expect_ok xl snapshot-list --name vm
expect_match "$ERR" "records in $STATE/${OBJ#xl-snapshot.} are not used with XL_SNAPSHOT_STORE=rados:$POOL" \
    "the warning on the state dir's records"
rm -r "${STATE:?}/${OBJ#xl-snapshot.}"

step "host B: start, list, revert to each, delete s1"
expect_ok on_b xl create "$CFG"
both 0x33
# A, which does not run it, cannot revert it under B's QEMU: refused,
# nothing changed, no journal left
run xl snapshot-revert vm s1
[ "$RC" -ne 0 ] || fail_run "host A reverted the disks of a domain B runs"
expect_match "$ERR" "open (for writing )?elsewhere" "host A's refused revert"
on_b domain_running vm || fail "vm stopped running on host B"
both 0x33
expect_ok on_b xl snapshot-check vm
expect_ok on_b xl snapshot-list --name vm
expect_eq "$OUT" "s1
s2" "host B's snapshot-list"
expect_ok on_b xl snapshot-revert vm s1
both 0x11
on_b domain_running vm || fail "vm does not run on host B after the revert"
expect_ok on_b xl snapshot-revert vm s2
both 0x22
expect_ok on_b xl snapshot-check vm
expect_ok on_b xl snapshot-delete vm s1
expect_eq "$(snaps_of a) $(snaps_of b)" "s2  s2 " "RBD snapshots after host B's delete"
expect_ok on_b xl snapshot-check vm
expect_ok on_b xl destroy vm

step "host A sees host B's tree, and reverts to s2"
expect_ok xl snapshot-list --name vm
expect_eq "$OUT" "s2" "host A's snapshot-list"
expect_ok xl snapshot-revert vm s2
both 0x22
expect_ok xl snapshot-check vm
domain_running vm && expect_ok xl destroy vm
echo "PASS: $TEST_NAME"
