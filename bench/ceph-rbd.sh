#!/bin/bash
# bench/ceph-rbd.sh - snapshots of RBD disks: xl against Ceph's own tools
#
# The cluster: $CEPH_CONF, else a one-node cluster of its own
# (ceph_cluster, lib-bench.sh), and a qemu-driver domain whose disks are RBD images
# served by QEMU's rbd driver.  For 1 and 4 disks, the median of $N runs:
#   rbd.create.xl.N          xl snapshot-create, live (the domain runs)
#   rbd.create.rbd_snap.N    `rbd snap create` of each image in turn,
#                            the images open in the same QEMU
#   rbd.create.group_snap.N  `rbd group snap create` of a group of the
#                            images (made beforehand, not counted)
#   rbd.create.ratio.N       xl / rbd snap create
#   rbd.create.group_ratio.N xl / rbd group snap create
#   rbd.transaction.N        the QMP transaction alone (QEMU's reply
#                            time, through a socat proxy): the time the
#                            guest's disk I/O waits (vCPUs run)
# Not a test: nothing here passes or fails on timing.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/../tests/qemu/lib.sh"
# shellcheck source=bench/lib-bench.sh
. "$(dirname "$0")/lib-bench.sh"

ceph_cluster ceph-rbd

N=5
[ "$QUICK" = 1 ] && N=1
P=bench-$$
POOL=rbd

bench_disks() {
    local n=$1 i v disks= d=b$1 t xl_ms=() snap_ms=() group_ms=() tx_ms=()
    for ((i = 0; i < n; i++)); do
        v=xvd$(printf "\\x$(printf %x $((97 + i)))")
        rbd create --size 64M "$POOL/$P-$n-$i" || fail "rbd create"
        disks="$disks${disks:+, }'format=raw,vdev=$v,access=rw,target=rbd:$POOL/$P-$n-$i:conf=$CEPH_CONF'"
    done
    printf 'name = "%s"\nmemory = 64\ndisk = [ %s ]\n' "$d" "$disks" > "$T/$d.cfg"
    expect_ok xl create "$T/$d.cfg"
    proxy_qmp "$d"
    rbd group create "$POOL/$P-g$n" || fail "rbd group create"
    for ((i = 0; i < n; i++)); do
        rbd group image add "$POOL/$P-g$n" "$POOL/$P-$n-$i" || fail "rbd group image add"
    done
    for ((t = 0; t < N; t++)); do
        sleep 1.1               # each run starts with the monitors idle
        ms_of xl snapshot-create "$d" "x$t"
        xl_ms+=("$MS")
        sleep 1.1
        ms_of bash -c "for ((i = 0; i < $n; i++)); do rbd snap create $POOL/$P-$n-\$i@r$t || exit 1; done"
        snap_ms+=("$MS")
        sleep 1.1
        ms_of rbd group snap create "$POOL/$P-g$n@g$t"
        group_ms+=("$MS")
        sleep 1.1
        tx_ms+=("$(qmp_transaction_ms "$d" "y$t")")
    done
    expect_ok xl destroy "$d"
    local x s g
    x=$(median "${xl_ms[@]}") s=$(median "${snap_ms[@]}") g=$(median "${group_ms[@]}")
    figure "rbd.create.xl.$n" "$x" ms "live, $n RBD disk(s), median of $N"
    figure "rbd.create.rbd_snap.$n" "$s" ms "rbd snap create, each image in turn"
    figure "rbd.create.group_snap.$n" "$g" ms "rbd group snap create"
    figure "rbd.create.ratio.$n" "$(ratio "$x" "$s")" x "xl / rbd snap create"
    figure "rbd.create.group_ratio.$n" "$(ratio "$x" "$g")" x "xl / rbd group snap create"
    figure "rbd.transaction.$n" "$(median "${tx_ms[@]}")" ms \
        "QEMU's transaction: the guest's disk I/O waits this long"
}

# qmp_transaction_ms D NAME: xl snapshot-create through the QMP proxy;
# the time from the transaction's send to its reply
qmp_transaction_ms() {
    local t
    expect_ok xl snapshot-create "$1" "$2"
    t=$(qmp_times "$T/proxy-$1.log" transaction)
    awk -v a="${t% *}" -v b="${t#* }" 'BEGIN {printf "%.1f", (b - a) / 1000}'
}

# a cluster not of this run's own keeps nothing of it
cleanup_rbd() {
    local i g
    for g in $(timeout 30 rbd group ls "$POOL" 2>/dev/null | grep "^$P-"); do
        timeout 30 rbd group rm "$POOL/$g" >/dev/null 2>&1
    done
    for i in $(timeout 30 rbd ls "$POOL" 2>/dev/null | grep "^$P-"); do
        timeout 30 rbd snap purge "$POOL/$i" >/dev/null 2>&1
        timeout 30 rbd rm "$POOL/$i" >/dev/null 2>&1
    done
}
[[ $CEPH_CONF == "$T"/* ]] || at_cleanup cleanup_rbd

bench_disks 1
bench_disks 4
