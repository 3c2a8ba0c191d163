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
# of each, and their ratio (goal >= 10).  The same with NI internal
# snapshots of xvda, all in one qcow2 image (200; 20 quick), whose
# checks read the image's snapshot table (qemu-img info): the batch
# reads it once (redefine.internal.*).
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/../tests/qemu/lib.sh"
# shellcheck source=bench/lib-bench.sh
. "$(dirname "$0")/lib-bench.sh"

N=1000
NI=200
[ "$QUICK" = 1 ] && N=50 NI=20

make_vm_config rd
qemu-img create -q -f qcow2 "$IMG/rd-xvdb.o0.qcow2" 32M ||
    fail "qemu-img create failed"
# snapshot_xml I PARENT FROZEN MADE (xvdb external)
# snapshot_xml I PARENT "" "" (xvda internal, in rd-xvda.qcow2)
snapshot_xml() {
    local xvda='<disk name="xvda" snapshot="no"/>' xvdb dev=xvdb src=$3
    xvdb="<disk name=\"xvdb\" snapshot=\"external\" type=\"file\">
      <driver type=\"qcow2\"/>
      <source file=\"$4\"/>
    </disk>"
    if [ -z "$3" ]; then
        xvda='<disk name="xvda" snapshot="internal"/>'
        xvdb='<disk name="xvdb" snapshot="no"/>'
        dev=xvda src=$IMG/rd-xvda.qcow2
    fi
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
    $xvda
    $xvdb
  </disks>
  <domain type="xen">
    <name>rd</name>
    <devices>
      <disk type="file" device="disk">
        <driver type="qcow2"/>
        <source file="$src"/>
        <target dev="$dev"/>
      </disk>
    </devices>
  </domain>
</domainsnapshot>
EOF
}
# parent_of I: a chain with a branch every 10 (back to s(I-2))
parent_of() {
    if (($1 > 2 && $1 % 10 == 0)); then
        echo $(($1 - 2))
    elif (($1 > 1)); then
        echo $(($1 - 1))
    fi
}
X=$T/xml
mkdir "$X"
for ((i = 1; i <= N; i++)); do
    made=$IMG/rd-xvdb.o$i.qcow2
    if ((i > 2 && i % 10 == 0)); then
        # a branch: on a fresh image of its own
        frozen=$IMG/rd-xvdb.r$i.qcow2
        ln "$IMG/rd-xvdb.o0.qcow2" "$frozen"
    else
        frozen=$IMG/rd-xvdb.o$((i - 1)).qcow2
    fi
    ln "$IMG/rd-xvdb.o0.qcow2" "$made" 2>/dev/null || true
    snapshot_xml "$i" "$(parent_of "$i")" "$frozen" "$made" > "$X/s$i.xml"
done
XI=$T/xml-internal
mkdir "$XI"
for ((i = 1; i <= NI; i++)); do
    qemu-img snapshot -c "s$i" "$IMG/rd-xvda.qcow2" ||
        fail "qemu-img snapshot -c s$i failed"
    snapshot_xml "$i" "$(parent_of "$i")" "" "" > "$XI/s$i.xml"
done

expect_listed() {
    local n
    n=$("$XL" snapshot-list --json "$CFG" | jq length)
    [ "$n" = "$2" ] || fail "redefine ($1): $n records listed, not $2"
}
drop_records() {
    rm -rf "$(domain_dir rd)"
}
single_all() {
    local i
    for ((i = 1; i <= $2; i++)); do
        "$XL" snapshot-create --redefine --xmlfile="$1/s$i.xml" "$CFG" ||
            return 1
    done
}
# both DIR COUNT PREFIX: (a) and (b), and their figures
both() {
    local dir=$1 n=$2 prefix=$3 single batch
    ms_of single_all "$dir" "$n"
    single=$(awk -v t="$MS" -v n="$n" 'BEGIN {printf "%.3f", t / n}')
    expect_listed "one process per file" "$n"
    drop_records
    ms_of "$XL" snapshot-create --redefine --xmlfile="$dir" "$CFG"
    batch=$(awk -v t="$MS" -v n="$n" 'BEGIN {printf "%.3f", t / n}')
    expect_listed "one batch" "$n"
    drop_records
    figure "$prefix.single.per_snapshot_ms" "$single" ms "$n files, one process each"
    figure "$prefix.batch.per_snapshot_ms" "$batch" ms "$n files, one --xmlfile=DIR"
    figure "$prefix.speedup" "$(ratio "$single" "$batch")" x "goal >= 10"
}
both "$X" "$N" redefine
both "$XI" "$NI" redefine.internal
