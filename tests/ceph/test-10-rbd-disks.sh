#!/bin/bash
# test-10-rbd-disks.sh - a domain with 2 RBD disks and 1 qcow2 disk
#
# Against the real cluster of tests/ceph/run.sh (CEPH_CONF; run alone, a
# cluster of its own: tests/ceph/lib.sh), on the qemu
# driver: QEMU serves the RBD disks through its rbd driver
# (target=rbd:POOL/IMAGE:conf=...).  Data is written through the guest's
# disks (HMP qemu-io) and read from outside (qemu-io on rbd:..., and on
# the qcow2 disk's active image).
#  - live create of all three disks at one instant; the RBD snapshots
#    are RBD snapshots of the images (rbd snap ls);
#  - revert to each snapshot of a branching tree, in any order, data
#    checked on every disk; snapshot-check clean after each step;
#  - delete of a root, a middle snapshot and a fork point: the other
#    snapshots still revert to their own data, and the RBD snapshots
#    deleted are gone from the images;
#  - offline create, revert and delete (ceph-util, no QEMU);
#  - refusals: a qcow2 snapshot (external) of an RBD disk, an RBD one of
#    a file disk, an RBD snapshot of that name made outside xl, a snapshot
#    with a clone made outside xl (delete refused, naming the clone,
#    nothing changed); a missing RBD image;
#  - snapshot-check reports an RBD snapshot removed behind xl's back,
#    and one made outside xl that no record owns;
#  - a crash at every step of create, revert and delete: recovered to
#    wholly old or wholly new, check clean, data right.
set -u
# shellcheck source=tests/ceph/lib.sh
. "$(dirname "$0")/lib.sh"

command -v rbd >/dev/null || skip "no rbd command (ceph-common)"
POOL=${XL_SNAPSHOT_TEST_POOL:-rbd}
P=t10-$$                             # image name prefix, unique per run
A=$POOL/$P-a
B=$POOL/$P-b
SPEC_A="rbd:$A:conf=$CEPH_CONF"
SPEC_B="rbd:$B:conf=$CEPH_CONF"

cleanup_images() {
    local i s
    for i in "$P-a" "$P-b" "$P-clone"; do
        for s in $(rbd snap ls --format json "$POOL/$i" 2>/dev/null |
                   jq -r '.[] | select(.protected == "true") | .name'); do
            rbd snap unprotect "$POOL/$i@$s" >/dev/null 2>&1
        done
    done
    rbd rm "$POOL/$P-clone" >/dev/null 2>&1
    for i in "$P-a" "$P-b"; do
        rbd snap purge "$POOL/$i" >/dev/null 2>&1
        rbd rm "$POOL/$i" >/dev/null 2>&1
    done
}
# (a cluster of the test's own goes whole)
[[ $CEPH_CONF == "$T"/* ]] || at_cleanup cleanup_images

expect_ok rbd create --size 64M "$A"
expect_ok rbd create --size 64M "$B"
expect_ok qemu-img create -q -f qcow2 "$IMG/vm1-xvdc.qcow2" 64M
CFG=$T/vm1.cfg
cat > "$CFG" <<EOF
name = "vm1"
memory = 64
disk = [ 'format=raw,vdev=xvda,access=rw,backendtype=qdisk,target=$SPEC_A',
         'format=raw,vdev=xvdb,access=rw,backendtype=qdisk,target=$SPEC_B',
         'format=qcow2,vdev=xvdc,access=rw,target=$IMG/vm1-xvdc.qcow2' ]
EOF

# the three disks hold BYTE at 0+1M (the RBD images read from outside)
write_all() {
    local v
    for v in xvda xvdb xvdc; do write_pattern vm1 "$v" "$1" 0 1M; done
}
expect_all() {
    read_pattern "$SPEC_A" "$1" 0 1M raw
    read_pattern "$SPEC_B" "$1" 0 1M raw
    read_pattern "$(active_image vm1 xvdc)" "$1" 0 1M
}
rbd_snaps() {
    rbd snap ls --format json "$1" | jq -r '.[].name' | sort | tr '\n' ' '
}
checked() {
    expect_ok xl snapshot-check vm1
}

step "live create: 2 RBD disks and a qcow2 disk at one instant"
expect_ok xl create "$CFG"
write_all 0x11
expect_ok xl snapshot-create vm1 s1
expect_eq "$(rbd_snaps "$A")" "s1 " "RBD snapshots of $A"
expect_eq "$(rbd_snaps "$B")" "s1 " "RBD snapshots of $B"
expect_ok xl snapshot-info --json vm1 s1
expect_eq "$(jq -r '[.disks[] | .type] | join(",")' <<<"$OUT")" \
    "rbd,rbd,internal" "disk snapshot types of s1"
expect_eq "$(jq -r '.disks[0].file' <<<"$OUT")" "$SPEC_A" \
    "the record names the RBD image as the config does"
checked
write_all 0x22
expect_ok xl snapshot-create vm1 s2
write_all 0x33
checked

step "revert to each snapshot of a branching tree"
expect_ok xl snapshot-revert vm1 s1
expect_all 0x11
domain_running vm1 || fail "vm1 does not run after the revert"
checked
write_all 0x44
expect_ok xl snapshot-create vm1 s3          # a branch: s1 -> s3
expect_ok xl snapshot-revert vm1 s2
expect_all 0x22
checked
expect_ok xl snapshot-revert vm1 s3
expect_all 0x44
checked
write_all 0x55
expect_ok xl snapshot-create vm1 s4          # s1 -> s3 -> s4
checked

step "refusals, nothing changed"
refused "disk xvda: '$SPEC_A' is no image file: its snapshots are of type rbd" \
    xl snapshot-create --diskspec xvda,snapshot=external vm1 e1
refused "disk xvdc: '.*' is not an RBD image" \
    xl snapshot-create --diskspec xvdc,snapshot=rbd vm1 e1
expect_ok rbd snap create "$A@taken"
refused "RBD image $A already has a snapshot named 'taken'" \
    xl snapshot-create vm1 taken
expect_ok rbd snap rm "$A@taken"
# a clone of the second disk's snapshot: refused before the first disk's
# is touched
expect_ok rbd snap protect "$B@s2"
expect_ok rbd clone "$B@s2" "$POOL/$P-clone"
refused "disk xvdb: RBD snapshot $SPEC_B@s2 has clones \\($POOL/$P-clone\\)" \
    xl snapshot-delete vm1 s2
expect_eq "$(rbd_snaps "$A")" "s1 s2 s3 s4 " "RBD snapshots of $A after the refused delete"
expect_ok rbd rm "$POOL/$P-clone"
expect_ok rbd snap unprotect "$B@s2"
checked
expect_ok rbd snap create "$B@stray"
run xl snapshot-check vm1
[ "$RC" -ne 0 ] || fail_run "snapshot-check missed an RBD snapshot no record owns"
expect_match "$OUT$ERR" "'$SPEC_B' holds snapshot 'stray', which no record owns" \
    "snapshot-check's finding"
expect_ok rbd snap rm "$B@stray"
checked

step "delete a root with children (s1), then a middle one (s3)"
expect_ok xl snapshot-delete vm1 s1
expect_eq "$(rbd_snaps "$A")" "s2 s3 s4 " "RBD snapshots of $A after s1's delete"
checked
expect_ok rbd snap protect "$A@s3"          # by hand, no clone
expect_ok xl snapshot-delete vm1 s3
expect_match "$ERR" "RBD snapshot $SPEC_A@s3 is protected" "the delete's warning"
expect_eq "$(rbd_snaps "$B")" "s2 s4 " "RBD snapshots of $B after s3's delete"
checked
for s in s2:0x22 s4:0x55; do
    expect_ok xl snapshot-revert vm1 "${s%:*}"
    expect_all "${s#*:}"
    checked
done

step "offline: create, revert, delete through ceph-util"
expect_ok xl destroy vm1
write_pattern vm1 xvdc 0x66 0 1M
expect_ok qemu-io -f raw -c "write -P 0x66 0 1M" "$SPEC_A"
expect_ok qemu-io -f raw -c "write -P 0x66 0 1M" "$SPEC_B"
expect_ok xl snapshot-create vm1 off1
expect_ok qemu-io -f raw -c "write -P 0x77 0 1M" "$SPEC_A"
expect_ok xl snapshot-revert vm1 off1
expect_all 0x66
expect_ok xl snapshot-delete vm1 s2
expect_eq "$(rbd_snaps "$A")" "off1 s4 " "RBD snapshots of $A offline"
checked

step "failures that change nothing, and a cluster that cannot answer"
# a qcow2 disk inside an RBD image: QEMU would take a qcow2 snapshot
sed -e 's/format=raw,vdev=xvda/format=qcow2,vdev=xvda/' -e 's/"vm1"/"vm2"/' "$CFG" > "$T/vm2.cfg"
refused "disk xvda: RBD image $A is used as qcow2: RBD snapshots are of raw images" \
    xl snapshot-create "$T/vm2.cfg" q1
# another client has the image open: the rollback is refused before it
# touches anything, and the running domain is put back as it was
expect_ok xl create "$CFG"
write_all 0x5a
# (rbd watch ends at EOF on its stdin)
(sleep 60 | timeout 60 rbd watch "$A" >/dev/null 2>&1) &
watcher=$!
for _ in $(seq 50); do
    rbd status "$A" 2>/dev/null | grep -c 'watcher=' | grep -qx 2 && break
    sleep 0.2
done
run xl snapshot-revert vm1 off1
[ "$RC" -ne 0 ] || fail_run "a revert of an image open elsewhere went through"
expect_match "$ERR" "open elsewhere" "the refused revert's reason"
pkill -f "rbd watch $A"; wait "$watcher" 2>/dev/null
domain_running vm1 || fail "vm1 was left stopped by a refused rollback"
expect_all 0x5a
checked
# the same image open for writing by another host: an offline snapshot
# here would not be of a shut-off domain
expect_ok xl destroy vm1
# (qemu-io ends by itself: a killed client's lock would stay a while)
qemu-io -f raw -c "write -P 0x5b 0 4k" -c "sleep 8000" "$SPEC_A" >/dev/null 2>&1 &
writer=$!
sleep 3
refused "RBD image $A is open for writing elsewhere" xl snapshot-create vm1 w1
wait "$writer"
write_pattern vm1 xvdc 0x5b 0 4K
# a live create that died after its disks were taken (after QEMU's
# transaction: create:2), recovered while the
# cluster does not answer: the journal is kept (nothing rolled back),
# then the recovery completes it
cat > "$T/ceph-down" <<'SH'
#!/bin/sh
echo "ceph-util: connect: Connection timed out (connecting to the cluster)" >&2
exit 1
SH
chmod +x "$T/ceph-down"
expect_ok xl create "$CFG"
run env XL_SNAPSHOT_FAULT=create:2 "$XL" snapshot-create vm1 r1
[ "$RC" -eq 86 ] || fail_run "the create did not die at its fault point"
run env XL_SNAPSHOT_CEPH_UTIL="$T/ceph-down" "$XL" snapshot-recover vm1
[ "$RC" -ne 0 ] || fail_run "a recovery that cannot ask the cluster succeeded"
expect_match "$ERR" "cannot tell whether the interrupted snapshot-create of 'r1'" \
    "the recovery's refusal"
expect_ok xl snapshot-recover vm1
expect_ok xl snapshot-list --name vm1
grep -qx r1 <<<"$OUT" || fail "r1 was not completed by the recovery"
expect_eq "$(rbd_snaps "$A")" "off1 r1 s4 " "RBD snapshots of $A after the recovery"
checked
expect_ok xl snapshot-delete vm1 r1
# a revert that died after a rollback: the domain is not started on a
# mix of reverted and unreverted disks; the recovery finishes it
write_all 0x5c
run env XL_SNAPSHOT_FAULT=revert:4 "$XL" snapshot-revert vm1 off1
[ "$RC" -eq 86 ] || fail_run "the revert did not die at its fault point"
if ! domain_running vm1; then
    run xl create "$CFG"
    [ "$RC" -eq 1 ] || fail_run "xl create started a domain mid-revert"
    expect_match "$ERR" "error: domain vm1 has an interrupted snapshot revert to finish first: run xl snapshot-recover vm1" \
        "xl create's refusal"
fi
expect_ok xl snapshot-recover vm1
expect_all 0x66
checked
domain_running vm1 && expect_ok xl destroy vm1

step "snapshot-check: an RBD snapshot removed behind xl's back"
expect_ok rbd snap rm "$B@s4"
run xl snapshot-check vm1
[ "$RC" -ne 0 ] || fail_run "snapshot-check missed a removed RBD snapshot"
expect_match "$OUT$ERR" "s4.*xvdb.*no snapshot 's4'" "snapshot-check's finding"
expect_ok xl snapshot-delete vm1 s4       # the rest of s4 goes
expect_eq "$(rbd_snaps "$A")" "off1 " "RBD snapshots of $A"
checked

step "crash at every step of create, revert and delete (live)"
expect_ok xl create "$CFG"
declare -A DATA=([off1]=0x66)
byte=128
recovered() {
    expect_ok xl snapshot-recover vm1
    expect_ok xl snapshot-check vm1
}
for op in create revert delete; do
    for ((n = 1; n < 20; n++)); do
        b=$(printf '0x%02x' $byte); byte=$((byte + 1))
        case $op in
        create)
            write_all "$b"
            name=c$n
            run env XL_SNAPSHOT_FAULT=create:$n "$XL" snapshot-create vm1 "$name" ;;
        revert)
            run env XL_SNAPSHOT_FAULT=revert:$n "$XL" snapshot-revert vm1 off1 ;;
        delete)
            name=d$n
            write_all "$b"
            expect_ok xl snapshot-create vm1 "$name"
            DATA[$name]=$b
            run env XL_SNAPSHOT_FAULT=delete:$n "$XL" snapshot-delete vm1 "$name" ;;
        esac
        done_ok=$RC
        [ "$RC" -eq 0 ] || [ "$RC" -eq 86 ] ||
            fail_run "$op at fault $n: neither done nor crashed"
        recovered
        expect_ok xl snapshot-list --name vm1
        case $op in
        create) grep -qx "$name" <<<"$OUT" && DATA[$name]=$b ;;
        delete) grep -qx "$name" <<<"$OUT" || unset "DATA[$name]" ;;
        revert) domain_running vm1 || expect_ok xl create "$CFG" ;;
        esac
        [ "$done_ok" -eq 0 ] && { step "  $op: through after $((n - 1)) crash points"; break; }
    done
done
step "every snapshot left reverts to its own data (${#DATA[@]})"
for s in "${!DATA[@]}"; do
    expect_ok xl snapshot-revert vm1 "$s"
    expect_all "${DATA[$s]}"
done
expect_ok xl snapshot-list --name vm1
expect_eq "$(sort <<<"$OUT" | tr '\n' ' ')" \
    "$(printf '%s\n' "${!DATA[@]}" | sort | tr '\n' ' ')" "snapshots left"
for s in $(rbd_snaps "$A"); do
    [ -n "${DATA[$s]:-}" ] || fail "RBD snapshot $A@$s is owned by no record"
done
checked
domain_running vm1 && expect_ok xl destroy vm1
true
