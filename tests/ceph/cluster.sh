#!/bin/bash
# cluster.sh - a throw-away one-node Ceph cluster for the tests
#
#   cluster.sh start DIR PORT [ADDR]
#                                one mon (on ADDR:PORT, 127.0.0.1 by
#                                default; the OSD binds ADDR too) and one OSD
#                                (memstore: its data in RAM), no cephx,
#                                no mgr; pool "rbd" of size 1, rbd-initialized.
#                                Everything lives under DIR (made here; it
#                                must not exist or be empty); clients use
#                                CEPH_CONF=DIR/ceph.conf.
#   cluster.sh stop DIR          kills the daemons by PID (DIR/pids), waits
#                                for each PID to be gone (SIGKILL after 10 s),
#                                removes DIR.  Nothing is left behind.
#
# start fails (exit 1, and stops what it had started) when the cluster is
# not up within 60 s; a PORT already in use fails it at once.  About 9 s.
# No mgr: without one `ceph -s` shows no pools and pgs never look
# active+clean, so readiness is "1 up" in `ceph osd stat`, then the pool.
# The daemons get -c DIR/ceph.conf themselves (with only CEPH_CONF an OSD
# can pick another conf).  The ceph CLI used here is only the cluster's
# set-up; the project's own code talks to it through tools/ceph-util.
set -uo pipefail

usage() {
    echo "usage: cluster.sh start DIR PORT [ADDR] | cluster.sh stop DIR" >&2
    exit 64
}

# pids_alive PID...: true while any of them runs
pids_alive() {
    local p
    for p in "$@"; do kill -0 "$p" 2>/dev/null && return 0; done
    return 1
}

stop() {
    local d=$1 pids=() p i
    [ -d "$d" ] || return 0
    if [ -s "$d/pids" ]; then
        read -r -a pids <"$d/pids"
    fi
    # (a start that failed half-way: the pid files written so far)
    for p in "$d"/run/*.pid; do
        [ -s "$p" ] && pids+=("$(cat "$p")")
    done
    if [ ${#pids[@]} -gt 0 ]; then
        kill "${pids[@]}" 2>/dev/null
        for i in $(seq 100); do
            pids_alive "${pids[@]}" || break
            sleep 0.1
        done
        if pids_alive "${pids[@]}"; then
            kill -9 "${pids[@]}" 2>/dev/null
            for i in $(seq 50); do
                pids_alive "${pids[@]}" || break
                sleep 0.1
            done
        fi
        if pids_alive "${pids[@]}"; then
            echo "cluster.sh: daemons ${pids[*]} survive SIGKILL" >&2
            return 1
        fi
    fi
    rm -rf "$d"
}

start() {
    local d=$1 port=$2 addr=${3:-127.0.0.1} fsid i c
    case $port in ''|*[!0-9]*) usage ;; esac
    if [ -e "$d" ] && [ -n "$(ls -A "$d" 2>/dev/null)" ]; then
        echo "cluster.sh: $d exists and is not empty" >&2
        return 1
    fi
    for c in ceph-mon ceph-osd ceph monmaptool rbd; do
        if ! command -v "$c" >/dev/null; then
            echo "cluster.sh: $c not found (ceph-mon ceph-osd ceph-common)" >&2
            return 1
        fi
    done
    if (exec 3<>"/dev/tcp/$addr/$port") 2>/dev/null; then
        echo "cluster.sh: port $port is in use" >&2
        return 1
    fi
    mkdir -p "$d/mon" "$d/osd" "$d/run" "$d/log" || return 1
    d=$(cd "$d" && pwd)
    fsid=$(cat /proc/sys/kernel/random/uuid)
    cat >"$d/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = $addr:$port
public addr = $addr
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon allow pool delete = true
osd crush chooseleaf type = 0
run dir = $d/run
log file = $d/log/\$name.log
admin socket = $d/run/\$name.\$pid.asok
osd objectstore = memstore
memstore device bytes = 2147483648
ms bind ipv6 = false
[mon.a]
mon data = $d/mon
[osd.0]
osd data = $d/osd
EOF
    export CEPH_CONF=$d/ceph.conf
    monmaptool --create --add a "$addr:$port" --fsid "$fsid" \
        "$d/monmap" >"$d/log/setup.log" 2>&1 &&
    ceph-mon -c "$CEPH_CONF" --mkfs -i a --monmap "$d/monmap" \
        >>"$d/log/setup.log" 2>&1 &&
    ceph-mon -c "$CEPH_CONF" -i a --pid-file "$d/run/mon.pid" \
        >>"$d/log/setup.log" 2>&1 &&
    timeout 30 ceph osd create >>"$d/log/setup.log" 2>&1 &&
    ceph-osd -c "$CEPH_CONF" -i 0 --mkfs >>"$d/log/setup.log" 2>&1 &&
    ceph-osd -c "$CEPH_CONF" -i 0 --pid-file "$d/run/osd.pid" \
        >>"$d/log/setup.log" 2>&1 || {
        echo "cluster.sh: the daemons did not start (see below)" >&2
        tail -n 20 "$d/log/setup.log" >&2
        stop "$d"
        return 1
    }
    for i in $(seq 100); do
        [ -s "$d/run/mon.pid" ] && [ -s "$d/run/osd.pid" ] && break
        sleep 0.1
    done
    cat "$d/run/mon.pid" "$d/run/osd.pid" 2>/dev/null | tr '\n' ' ' >"$d/pids"
    for i in $(seq 300); do
        timeout 10 ceph osd stat 2>/dev/null | grep -q '1 up' && break
        sleep 0.2
    done
    if ! timeout 30 ceph osd pool create rbd 8 8 >>"$d/log/setup.log" 2>&1 ||
       ! timeout 30 ceph osd pool application enable rbd rbd \
             >>"$d/log/setup.log" 2>&1 ||
       ! timeout 30 rbd pool init rbd >>"$d/log/setup.log" 2>&1; then
        echo "cluster.sh: the OSD did not come up or pool rbd failed" >&2
        tail -n 20 "$d/log/setup.log" >&2
        stop "$d"
        return 1
    fi
    echo "cluster.sh: up, CEPH_CONF=$CEPH_CONF (pids $(cat "$d/pids"))"
}

case ${1:-} in
start) [ $# -eq 3 ] || [ $# -eq 4 ] || usage; start "$2" "$3" "${4:-}" ;;
stop)  [ $# -eq 2 ] || usage; stop "$2" ;;
*)     usage ;;
esac
