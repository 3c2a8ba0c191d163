#!/bin/bash
# bench/redefine.sh - importing snapshot XML (libvirt's --redefine):
# one process per file against one batch
#
# N libvirt-style domainsnapshot files (1000; 50 with BENCH_QUICK=1) of
# a shut-off 2-disk domain, a tree with a branch every 10 snapshots,
# each taking xvdb externally: it freezes the image the one before made
# (a fresh one at a branch) and makes its own, all real qcow2 files.
# Timed, each into an empty record store:
#   (a) `xl snapshot-create --redefine --xmlfile=F` once per file, parents
#       first (what a script does without a batch);
#   (b) one `xl snapshot-create --redefine --xmlfile=DIR` (the batch).
# Both must leave the N records listed.  Figures: the time per snapshot
# of each, and their ratio (goal >= 10).
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/../tests/qemu/lib.sh"
# shellcheck source=bench/lib-bench.sh
. "$(dirname "$0")/lib-bench.sh"

N=1000
[ "$QUICK" = 1 ] && N=50

make_vm_config rd
X=$T/xml
mkdir "$X"
qemu-img create -q -f qcow2 "$IMG/rd-xvdb.o0.qcow2" 32M ||
    fail "qemu-img create failed"
# snapshot_xml I PARENT FROZEN MADE
snapshot_xml() {
    cat <<EOF
<domainsnapshot>
  <name>s$1</name>
  <state>shutoff</state>
${2:+  <parent>
    <name>s$2</name>
  </parent>
}  <creationTime>$((1700000000 + $1))</creationTime>
  <memory snapshot="no"/>
  <disks>
    <disk name="xvda" snapshot="no"/>
    <disk name="xvdb" snapshot="external" type="file">
      <driver type="qcow2"/>
      <source file="$4"/>
    </disk>
  </disks>
  <domain type="xen">
    <name>rd</name>
    <devices>
      <disk type="file" device="disk">
        <driver type="qcow2"/>
        <source file="$3"/>
        <target dev="xvdb"/>
      </disk>
    </devices>
  </domain>
</domainsnapshot>
EOF
}
for ((i = 1; i <= N; i++)); do
    made=$IMG/rd-xvdb.o$i.qcow2
    if ((i > 2 && i % 10 == 0)); then
        # a branch: back to s(i-2), on a fresh image of its own
        parent=$((i - 2)) frozen=$IMG/rd-xvdb.r$i.qcow2
        ln "$IMG/rd-xvdb.o0.qcow2" "$frozen"
    else
        parent=$((i - 1)) frozen=$IMG/rd-xvdb.o$((i - 1)).qcow2
        ((parent)) || parent=
    fi
    ln "$IMG/rd-xvdb.o0.qcow2" "$made" 2>/dev/null || true
    snapshot_xml "$i" "$parent" "$frozen" "$made" > "$X/s$i.xml"
done

expect_listed() {
    local n
    n=$("$XL" snapshot-list --json "$CFG" | jq length)
    [ "$n" = "$N" ] || fail "redefine ($1): $n records listed, not $N"
}
drop_records() {
    rm -rf "$(domain_dir rd)"
}
single_all() {
    local i
    for ((i = 1; i <= N; i++)); do
        "$XL" snapshot-create --redefine --xmlfile="$X/s$i.xml" "$CFG" ||
            return 1
    done
}

ms_of single_all
single_ms=$MS
expect_listed "one process per file"
drop_records
ms_of "$XL" snapshot-create --redefine --xmlfile="$X" "$CFG"
batch_ms=$MS
expect_listed "one batch"
drop_records

single=$(awk -v t="$single_ms" -v n="$N" 'BEGIN {printf "%.3f", t / n}')
batch=$(awk -v t="$batch_ms" -v n="$N" 'BEGIN {printf "%.3f", t / n}')
figure redefine.single.per_snapshot_ms "$single" ms "$N files, one process each"
figure redefine.batch.per_snapshot_ms "$batch" ms "$N files, one --xmlfile=DIR"
figure redefine.speedup "$(ratio "$single" "$batch")" x "goal >= 10"
