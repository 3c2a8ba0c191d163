#!/bin/bash
# test-104-space-accounting.sh - xl snapshot-list --size, snapshot-info
# sizes, and what deleting a snapshot frees, against the images
#
# A running domain (xvda qcow2, xvdb raw) gets a tree of three
# snapshots: s1 (xvda internal, xvdb external), s2 a checkpoint (memory,
# xvda internal, xvdb external), s3 (both external, xvda's frozen image
# holding the two internal snapshots), with data written between each.
# Checked, while it runs:
#  - external: allocated == the frozen image's `qemu-img info`
#    actual-size (less its internal snapshots' exclusive bytes when it
#    holds some), and at least its own data (`qemu-img map` without
#    backing, present extents);
#  - internal: the exclusive bytes are what was overwritten since (the
#    1 MiB of s1 rewritten) plus its own L1 and L2 tables (one cluster
#    each here), s2's its tables only (the data it saw is shared);
#  - memory: the memory image's allocated size (stat);
#  - the table: a row per snapshot and the totals; the totals add up
#    (per disk, memory, domain), snapshot-info's lines and --json
#    "size" say the same as the list; bad input refused (usage: 2).
# Then, shut off, each snapshot deleted in turn (s3, s2, s1) and what
# the host got back (the allocated bytes of every image and memory
# image) compared with the frees the list showed, within 256 KiB
# (metadata: refcount blocks, a table copied; shut off, `qemu-img
# snapshot -d` discards the clusters it frees, which punches holes);
# and the clusters the internal snapshots held are reused: the image's
# file does not grow while that many new bytes are written into it,
# and grows when more are.  Data read back and qemu-img check after
# each delete.
# VHD (a shut-off domain): a snapshot's figure is the allocation of the
# VHD it froze; its frees, the overlay's allocation less the blocks the
# coalesce adds to the frozen VHD, checked against what the host got
# back.  A frozen image missing and a qcow2 image cut short: listing
# still succeeds, each figure unknown is "?" with one warning naming
# the image (and the reader's one line saying why), --json's problem,
# snapshot-info's "(unknown: ...)"; nothing changed.
# LVM snapshot volumes (cow, cow_size, frees against lvs) are checked on
# the Xen test host (tests/xen/scenarios.sh, scenario 9: this machine
# has no device-mapper), RBD in tests/ceph/test-50-space.sh.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

TOL=$((256 * 1024))

# allocated bytes of a file (st_blocks)
alloc() {
    echo $(( $(stat -c %b "$1") * 512 ))
}

# the bytes every image and memory image of the test holds on the host
host_bytes() {
    local f n=0
    for f in "$IMG"/* "$STATE"/*/*.save; do
        [ -f "$f" ] && n=$((n + $(alloc "$f")))
    done
    echo "$n"
}

# SIZES: snapshot-list --size --json [of D]; fig SNAP VDEV FIELD
sizes() {
    expect_ok xl snapshot-list --size --json "${1:-vm1}"
    SIZES=$OUT
}
fig() {
    jq -r --arg s "$1" --arg v "$2" --arg f "$3" \
        '.snapshots[] | select(.name == $s) | .disks[] |
         select(.vdev == $v) | .[$f]' <<<"$SIZES"
}
snapfig() {
    jq -r --arg s "$1" --arg f "$2" \
        '.snapshots[] | select(.name == $s) | .[$f]' <<<"$SIZES"
}

# within A B WHAT: |A - B| <= TOL
within() {
    local d=$(($1 - $2))
    [ "${d#-}" -le "$TOL" ] ||
        fail "$3: $1 and $2 differ by more than $TOL bytes"
}

# the data bytes an image holds of its own (qemu-img map, no backing)
own_data() {
    expect_ok qemu-img map -U --output=json \
        "json:{\"driver\": \"qcow2\", \"backing\": null, \"file\": {\"driver\": \"file\", \"filename\": \"$1\"}}"
    jq '[.[] | select(.present and .data) | .length] | add // 0' <<<"$OUT"
}

step "a tree of internal, external and memory snapshots, running"
make_vm_config vm1
expect_ok xl create "$CFG"
write_pattern vm1 xvda 0x11 0 2M
write_pattern vm1 xvdb 0x11 0 2M
expect_ok xl snapshot-create vm1 s1
write_pattern vm1 xvda 0x22 0 1M
write_pattern vm1 xvdb 0x22 0 1M
expect_ok xl snapshot-create --memory vm1 s2
write_pattern vm1 xvda 0x33 1M 1M
write_pattern vm1 xvdb 0x33 4M 1M
expect_ok xl snapshot-create --diskspec xvda,snapshot=external vm1 s3
write_pattern vm1 xvda 0x44 0 512K
A=$IMG/vm1-xvda.qcow2
CL=$(qemu-img info -U --output=json "$A" | jq '."cluster-size"')

step "each figure against the images"
sizes
# internal: s1's 1 MiB rewritten since, and its L1 and L2 tables
expect_eq "$(fig s1 xvda exclusive)" $((1048576 + 2 * CL)) "s1 xvda exclusive"
# s2: its tables alone (its data is s1's or the active state's too)
expect_eq "$(fig s2 xvda exclusive)" $((2 * CL)) "s2 xvda exclusive"
for s in s1 s2 s3; do
    f=$(jq -r --arg s "$s" '.disks[] | select(.vdev == "xvdb") | .file' \
        "$(domain_dir vm1)/snapshotdata-$s.libxl-json")
    actual=$(qemu-img info -U --output=json "$f" | jq '."actual-size"')
    expect_eq "$(fig "$s" xvdb allocated)" "$actual" "$s xvdb allocated (actual-size of $f)"
done
# xvdb's first frozen image is raw: its data written (2 MiB)
[ "$(fig s1 xvdb allocated)" -ge 2097152 ] || fail "s1 xvdb allocated < 2 MiB"
data=$(own_data "$IMG/vm1-xvdb.s1.qcow2")
[ "$(fig s2 xvdb allocated)" -ge "$data" ] ||
    fail "s2 xvdb allocated below the image's own data ($data)"
expect_eq "$data" 1048576 "vm1-xvdb.s1.qcow2's own data"
# s3 froze xvda's image, which holds s1 and s2: theirs are not counted twice
actual=$(qemu-img info -U --output=json "$A" | jq '."actual-size"')
expect_eq "$(fig s3 xvda allocated)" \
    $((actual - $(fig s1 xvda exclusive) - $(fig s2 xvda exclusive))) \
    "s3 xvda allocated (actual-size less s1's and s2's exclusive)"
[ "$actual" -ge "$(own_data "$A")" ] || fail "actual-size below the data"
mem=$(jq -r .memory "$(domain_dir vm1)/snapshotdata-s2.libxl-json")
expect_file "$mem"
expect_eq "$(snapfig s2 memory)" "$(alloc "$mem")" "s2 memory image"
expect_eq "$(snapfig s1 memory)" 0 "s1 memory (disk-only)"
expect_eq "$(jq '[.snapshots[].disks[].problem | select(. != null)] | length' <<<"$SIZES")" \
    0 "no problem said"

step "the totals add up"
expect_eq "$(jq '[.snapshots[].own] | add' <<<"$SIZES")" "$(jq .total <<<"$SIZES")" \
    "the snapshots' own bytes add up to the total"
expect_eq "$(jq '[.disks[].own] | add + .memory' <<<"$SIZES" 2>/dev/null ||
             jq '([.disks[].own] | add) + .memory' <<<"$SIZES")" \
    "$(jq .total <<<"$SIZES")" "the disks' totals and memory add up to the total"
for v in xvda xvdb; do
    expect_eq "$(jq --arg v "$v" '[.snapshots[].disks[] | select(.vdev == $v) |
        .allocated + .exclusive + .cow + .rbd] | add' <<<"$SIZES")" \
        "$(jq --arg v "$v" '.disks[] | select(.vdev == $v) | .own' <<<"$SIZES")" \
        "disk $v's total"
done
# xvda's images once: its figures add up to its image's allocation plus
# the s3 overlay's frozen nothing (the active overlay is no snapshot's)
expect_eq "$(jq '.disks[] | select(.vdev == "xvda") | .own' <<<"$SIZES")" "$actual" \
    "xvda's total is its frozen image, counted once"

step "the table, snapshot-info, refusals"
expect_ok xl snapshot-list --size vm1
expect_match "$OUT" '^NAME +MEMORY +EXTERNAL +INTERNAL +LVM-COW +RBD +OWN +FREES$' "header"
expect_match "$OUT" '^s1 +- +2\.0M +1\.1M +- +- +[0-9.]+M +[0-9.]+[KM]$' "s1's row"
expect_match "$OUT" '^s2 +[0-9.]+[KM] +[0-9.]+[KM] +128K ' "s2's row"
expect_match "$OUT" '^total xvda +(- +){5}[0-9.]+M +-$' "xvda's total"
expect_match "$OUT" '^total xvdb ' "xvdb's total"
expect_match "$OUT" '^total +[0-9.]+[KM] +(- +){4}[0-9.]+M +-$' "the domain's total"
expect_eq "$ERR" "" "no warning"
expect_ok xl snapshot-list --size --long vm1
expect_match "$OUT" '^    xvda +internal +exclusive 1\.1M, frees 1\.1M$' "--long per disk"
expect_ok xl snapshot-info vm1 s2
expect_match "$OUT" '^Size: +own [0-9.]+[KM], frees [0-9.]+[KM]$' "snapshot-info Size line"
expect_match "$OUT" '^  xvda +internal +exclusive 128K, frees 128K$' "snapshot-info xvda line"
expect_match "$OUT" '^  - +memory +allocated ' "snapshot-info memory line"
expect_ok xl snapshot-info --json vm1 s2
expect_eq "$(jq -c '.size.snapshots[0]' <<<"$OUT")" \
    "$(jq -c '.snapshots[] | select(.name == "s2")' <<<"$SIZES")" \
    "snapshot-info --json size == the list's"
expect_eq "$(jq -r .name <<<"$OUT")" s2 "snapshot-info --json is still the record"
run xl snapshot-list --size --tree vm1
expect_eq "$RC" 2 "--size --tree: a usage error"
expect_eq "$(wc -l <<<"$ERR")" 1 "one line"
expect_error "nosuch" xl snapshot-list --size nosuch
# a memory image gone: not "-" (disk-only) but unknown, said
mv "$mem" "$T/mem.aside"
run xl snapshot-list --size vm1
expect_eq "$RC" 0 "snapshot-list --size with a memory image gone"
expect_match "$OUT" '^s2 +\? ' "s2's MEMORY unknown"
expect_match "$OUT" '^s2 .*[0-9.]+[KM]\?$' "s2's FREES marked unknown"
expect_match "$ERR" "^warning: s2 memory: size unknown: .*: missing$" "the missing memory image said"
sizes
expect_match "$(snapfig s2 memory_problem)" "missing$" "--json memory_problem"
expect_eq "$(snapfig s1 memory_problem)" null "s1 (disk-only): no memory problem"
mv "$T/mem.aside" "$mem"
check_images

step "deleting each: the host gets back what frees said"
expect_ok xl destroy vm1
sizes
# delete_checked SNAP: the host's bytes drop by its frees
delete_checked() {
    local s=$1 before after want
    want=$(snapfig "$s" frees)
    INTERNAL_FREED=$((INTERNAL_FREED + $(jq --arg s "$s" '[.snapshots[] |
        select(.name == $s) | .disks[] | select(.type == "internal") |
        .frees] | add // 0' <<<"$SIZES")))
    before=$(host_bytes)
    expect_ok xl snapshot-delete vm1 "$s"
    after=$(host_bytes)
    echo "    $s: frees $want, host got back $((before - after))"
    within $((before - after)) "$want" "deleting $s: host bytes given back vs frees"
    check_images
    sizes
}
INTERNAL_FREED=0
delete_checked s3
read_pattern "$(active_image vm1 xvda)" 0x44 0 512K
read_pattern "$(active_image vm1 xvda)" 0x33 1M 1M
read_pattern "$(active_image vm1 xvdb)" 0x33 4M 1M
delete_checked s2
delete_checked s1
read_pattern "$(active_image vm1 xvda)" 0x44 0 512K
read_pattern "$(active_image vm1 xvdb)" 0x22 0 1M
expect_eq "$(internal_snapshots "$A")" "" "no internal snapshot left"

step "the internal snapshots' clusters are reused before the file grows"
len=$(stat -c %s "$A")
# as many new clusters as the internal snapshots' frees said, less two
n=$(( INTERNAL_FREED / CL - 2 ))
[ "$n" -ge 16 ] || fail "the internal snapshots' frees too few to check: $INTERNAL_FREED"
# (a cluster a write: qcow2 looks for a run of free clusters as long as
# the write, and freed clusters lie apart)
w=()
for ((i = 0; i < n; i++)); do
    w+=(-c "write -P 0x55 $((16 * 1048576 + i * CL)) $CL")
done
expect_ok qemu-io -f qcow2 "${w[@]}" "$A"
expect_eq "$(stat -c %s "$A")" "$len" "$A grew while writing into freed clusters"
expect_ok qemu-io -f qcow2 -c "write -P 0x66 32M 4M" "$A"
[ "$(stat -c %s "$A")" -ge $((len + 3 * 1048576)) ] ||
    fail "$A did not grow with 4 MiB more: the check above proves nothing"
read_pattern "$A" 0x55 16M "$((n * CL))"
check_images
expect_ok xl snapshot-list --size vm1
expect_match "$OUT" '^total +0 +(- +){4}0 +-$' "no snapshot: nothing held"

step "VHD: the frozen VHD's allocation; frees, less the blocks the coalesce moves"
export XL_SNAPSHOT_VHD_UTIL=$REPO/tools/vhd-util
[ -x "$XL_SNAPSHOT_VHD_UTIL" ] || fail "$XL_SNAPSHOT_VHD_UTIL is not built"
V=$IMG/vmv-xvda.vhd
expect_ok qemu-img create -q -f vpc -o subformat=dynamic "$V" 16M
VCFG=$T/vmv.cfg
printf 'name = "vmv"\nmemory = 64\ndisk = [ %s ]\n' \
    "'format=vhd,vdev=xvda,access=rw,target=$V'" > "$VCFG"
head -c 1048576 /dev/zero | tr '\0' '\021' > "$T/p1"
expect_ok xl snapshot-create "$VCFG" v1
expect_ok "$XL_SNAPSHOT_VHD_UTIL" write -n "$IMG/vmv-xvda.v1.vhd" -o 0 -i "$T/p1"
expect_ok xl snapshot-create "$VCFG" v2
sizes vmv
expect_eq "$(fig v1 xvda type)" external "v1's type"
expect_eq "$(fig v1 xvda allocated)" "$(alloc "$V")" "v1: the base VHD's allocation"
expect_eq "$(fig v2 xvda allocated)" "$(alloc "$IMG/vmv-xvda.v1.vhd")" \
    "v2: the VHD it froze (v1's child, 1 MiB written)"
[ "$(fig v2 xvda allocated)" -ge 1048576 ] || fail "v2's VHD holds less than 1 MiB"
# v1's child holds a block the base has not: the base gains it
[ "$(fig v1 xvda frees)" -lt "$(alloc "$IMG/vmv-xvda.v1.vhd")" ] ||
    fail "v1 frees: not less than its child's allocation (a block moves)"
expect_ok "$XL_SNAPSHOT_VHD_UTIL" query -n "$IMG/vmv-xvda.v1.vhd" -a
expect_eq "$OUT" 0 "vhd-util query -a: the child's one block"
before=$(host_bytes)
expect_ok xl snapshot-delete "$VCFG" v1
after=$(host_bytes)
echo "    v1: frees $(fig v1 xvda frees), host got back $((before - after))"
within $((before - after)) "$(fig v1 xvda frees)" "deleting v1: host bytes given back vs frees"

step "an external snapshot whose frozen image holds another's internal snapshot, nothing built on it: frees 0"
make_vm_config vmi
expect_ok xl create "$CFG"
expect_ok xl destroy vmi
expect_ok qemu-io -f qcow2 -c "write -P 0x11 0 2M" "$IMG/vmi-xvda.qcow2"
expect_ok xl snapshot-create --diskspec xvda,snapshot=external vmi e1
O1=$(active_image vmi xvda)
expect_ok qemu-io -f qcow2 -c "write -P 0x22 0 2M" "$O1"
expect_ok xl snapshot-create --diskspec xvda,snapshot=internal vmi i2
expect_eq "$(internal_snapshots "$O1")" "i2" "i2 internal in $O1"
expect_ok xl snapshot-create --diskspec xvda,snapshot=external vmi e3
expect_ok qemu-io -f qcow2 -c "write -P 0x33 0 2M" "$(active_image vmi xvda)"
expect_ok xl snapshot-revert vmi e1
expect_eq "$(qemu-img info -U --output=json --backing-chain "$(active_image vmi xvda)" |
             jq -r --arg f "$O1" '[.[] | select(."backing-filename" == $f)] | length')" 0 \
    "nothing built on $O1 after reverting to e1"
sizes vmi
expect_eq "$(fig e3 xvda frees)" 0 "e3 xvda frees: $O1 stays (it holds i2)"
before=$(host_bytes)
expect_ok xl snapshot-delete vmi e3
after=$(host_bytes)
echo "    e3: frees $(snapfig e3 frees), host got back $((before - after))"
within $((before - after)) "$(snapfig e3 frees)" "deleting e3: host bytes given back vs frees"
expect_file "$O1"
expect_ok xl snapshot-revert vmi i2
read_pattern "$(active_image vmi xvda)" 0x22 0 2M
check_images

step "a missing or corrupt image: said, the rest still counted"
make_vm_config vmx
expect_ok xl create "$CFG"
expect_ok xl destroy vmx
expect_ok xl snapshot-create vmx x1
X=$IMG/vmx-xvda.qcow2
fp=$(fingerprint)
# the frozen raw image gone; the qcow2 image cut before its tables
mv "$IMG/vmx-xvdb.img" "$T/xvdb.aside"
cp "$X" "$T/xvda.aside"
truncate -s 65536 "$X"
run xl snapshot-list --size vmx
expect_eq "$RC" 0 "snapshot-list --size with broken images"
expect_match "$OUT" '^x1 +- +\? +\? ' "x1's row: both figures unknown"
expect_match "$ERR" "warning: x1 xvdb: size unknown: .*vmx-xvdb.img: missing" "the missing image said"
expect_match "$ERR" "warning: x1 xvda: size unknown: .*vmx-xvda.qcow2: its qcow2 header cannot be read" \
    "the cut image said"
expect_match "$ERR" "error: .*vmx-xvda.qcow2' ends before its (L1 table|snapshot table)" "and why"
expect_ok xl snapshot-list --size --json vmx
expect_eq "$(jq '[.snapshots[0].disks[].problem | select(. != null)] | length' <<<"$OUT")" 2 \
    "--json: both problems"
expect_ok xl snapshot-info vmx x1
expect_match "$OUT" '^  xvdb +external +allocated 0, frees 0 \(unknown: .*missing\)$' "snapshot-info says it"
mv "$T/xvdb.aside" "$IMG/vmx-xvdb.img"
cp "$T/xvda.aside" "$X"
expect_unchanged "$fp" "listing sizes changes nothing"
finish
