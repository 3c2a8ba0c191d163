# shellcheck shell=bash
# lib-bench.sh - what the benchmarks share (source it after
# tests/qemu/lib.sh, which gives the per-run directory and the domain
# helpers)
#
#   figure NAME VALUE UNIT [REFERENCE]   prints "NAME VALUE UNIT [REF]"
#                          and appends it, as one JSON object, to
#                          $BENCH_RESULTS (make bench gathers them into
#                          bench/results.json)
#   now_ms                 wall clock, milliseconds
#   ms_of CMD...           runs CMD (output discarded); MS: its wall time
#   rss_of CMD...          runs CMD; RSS_KB: its peak resident set (KiB),
#                          MS: its wall time
#   median N...            the median of the numbers
#   geomean N...           their geometric mean, 3 decimals (of ratios)
#   ratio A B              A / B, 3 decimals
#   make_records D N       N snapshot records of a new domain D (shut
#                          off), written as the directory store writes
#                          them, a branch every 10 (bench/scale.sh)
#   seed_records D N [IMG] N records s1..sN from D's record "seed": a
#                          branch every 10; with IMG (xvdb's images'
#                          stem), a chain, s<i>'s xvdb freezing IMG.s<i-1>
#                          .qcow2 and making IMG.s<i>.qcow2 (bench/size.sh)
#   settle                 dirty pages written back, page cache dropped
#                          (where the kernel lets us), the tools warm
#   timed_pair R XL_FN REF_FN   both, settled, in round R's turn order
#                          (xl first in odd rounds); XL_MS and REF_MS
#   ceph_cluster NAME      the Ceph benchmarks' cluster: $CEPH_CONF, else
#                          a one-node cluster of the run's own
#                          (tests/ceph/cluster.sh, port
#                          $XL_SNAPSHOT_CEPH_PORT, default 16789), stopped
#                          at exit; without tools/ceph-util or ceph-mon,
#                          "NAME: skipped" and the benchmark ends (exit 0)
# BENCH_QUICK=1: tiny sizes, seconds in all (make check runs it so, so
# that the benchmarks cannot rot); nothing here passes or fails on time.

QUICK=${BENCH_QUICK:-0}
BENCH_RESULTS=${BENCH_RESULTS:-/dev/null}

figure() {
    local name=$1 value=$2 unit=$3 ref=${4:-}
    printf '%-44s %12s %-6s %s\n' "$name" "$value" "$unit" "$ref"
    jq -cn --arg n "$name" --arg v "$value" --arg u "$unit" --arg r "$ref" \
        '{name: $n, value: ($v | tonumber? // $v), unit: $u, reference: $r}' \
        >> "$BENCH_RESULTS"
}

now_ms() {
    echo $(( ${EPOCHREALTIME/./} / 1000 ))
}

ms_of() {
    local t0 t1
    t0=${EPOCHREALTIME/./}
    "$@" >/dev/null 2>&1 || fail "benchmark step failed: $*"
    t1=${EPOCHREALTIME/./}
    MS=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", (b - a) / 1000}')
}

rss_of() {
    local t0 t1
    t0=${EPOCHREALTIME/./}
    /usr/bin/time -f %M -o "$T/rss" "$@" >/dev/null 2>&1 ||
        fail "benchmark step failed: $*"
    t1=${EPOCHREALTIME/./}
    RSS_KB=$(tail -n 1 "$T/rss")
    MS=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", (b - a) / 1000}')
}

median() {
    printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

geomean() {
    printf '%s\n' "$@" | awk '{s += log($1)} END {printf "%.3f", exp(s / NR)}'
}

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {if (b == 0) print "inf"; else printf "%.3f", a / b}'
}


# seed_records D N [IMG]: see above
seed_records() {
    local d=$1 n=$2 img=${3:-} dir
    dir=$(domain_dir "$d")
    jq -c . "$dir/snapshotdata-seed.libxl-json" > "$T/seed.json"
    # s<i>'s parent: s<i-1>, but every 10th starts a branch from s<i-10>
    # (with IMG: a chain)
    awk -v n="$n" -v dir="$dir" -v seed="$(cat "$T/seed.json")" \
        -v t0="$(date +%s)" -v img="$img" '
        BEGIN {
            for (i = 1; i <= n; i++) {
                p = i == 1 ? "seed" : (i % 10 == 0 && i > 10 && img == "" ? "s" (i - 10) : "s" (i - 1));
                r = seed;
                sub(/"name": *"seed"/, "\"name\": \"s" i "\"", r);
                sub(/"creation_time": *[0-9]+/, "\"creation_time\": " (t0 + i), r);
                sub(/"current": *true, */, "", r);
                sub(/"parent": *null, */, "", r);
                sub(/\{/, "{\"parent\": \"" p "\", ", r);
                gsub(/"tag": *"seed"/, "\"tag\": \"s" i "\"", r);
                if (img != "") {
                    sub(/"format": *"raw"/, "\"format\": \"qcow2\"", r);
                    sub(/"file": *"[^"]*xvdb[^"]*"/, "\"file\": \"" img "." p ".qcow2\"", r);
                    sub(/"overlay": *"[^"]*"/, "\"overlay\": \"" img ".s" i ".qcow2\"", r);
                }
                f = dir "/snapshotdata-s" i ".libxl-json";
                print r > f;
                close(f);
            }
        }'
    chmod 600 "$dir"/snapshotdata-*.libxl-json
}

# make_records D N: N records of domain D (shut off), a branch every 10
make_records() {
    local d=$1 n=$2
    make_vm_config "$d"
    expect_ok xl create "$CFG"
    expect_ok xl destroy "$d"
    expect_ok xl snapshot-create --diskspec xvda,snapshot=internal \
        --diskspec xvdb,snapshot=no "$d" seed
    seed_records "$d" "$n"
    expect_ok xl snapshot-list --name "$d"
    [ "$(wc -l <<<"$OUT")" -eq $((n + 1)) ] ||
        fail "$d: $((n + 1)) records written, $(wc -l <<<"$OUT") listed"
}

# vm_config D N: a qemu-driver config $T/D.cfg with N qcow2 disks of
# SIZE (default 64M), xvda, xvdb, ...
vm_config() {
    local d=$1 n=$2 size=${3:-64M} i v disks=
    for ((i = 0; i < n; i++)); do
        v=xvd$(printf "\\x$(printf %x $((97 + i)))")
        qemu-img create -q -f qcow2 "$IMG/$d-$v.qcow2" "$size"
        disks="$disks${disks:+, }'format=qcow2,vdev=$v,access=rw,target=$IMG/$d-$v.qcow2'"
    done
    CFG=$T/$d.cfg
    printf 'name = "%s"\nmemory = 64\ndisk = [ %s ]\n' "$d" "$disks" > "$CFG"
}

# proxy_qmp D: a socat proxy with timestamps (-v) in front of D's QMP
# socket; its log is $T/proxy-D.log (socat prints the fraction of a
# second as 000 and 6 digits of microseconds)
proxy_qmp() {
    local d=$1 id sock
    id=$(jq -r .domid "$(grep -l "\"name\": \"$d\"" "$RUN"/qemu-dm-*.libxl-json | head -n 1)")
    sock=$RUN/qmp-libxl-$id
    mv "$sock" "$sock.real"
    socat -v UNIX-LISTEN:"$sock",fork UNIX-CONNECT:"$sock.real" \
        2>>"$T/proxy-$d.log" &
    at_cleanup "kill $! 2>/dev/null"
    for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.05; done
    PROXY_SOCK=$sock
}

# qmp_times LOG CMD: "request_us reply_us" of the last CMD the log shows
# (socat -v: "> date time" blocks are client to QEMU, "<" QEMU to client),
# the reply matched by the request's id
# (the library sends compact JSON, QEMU spaced: "key":value or "key": value)
qmp_times() {
    awk -v cmd="\"execute\": ?\"$2\"" '
        function us(d, t,   a, b) { split(t, a, ":"); split(a[3], b, ".");
            return ((a[1] * 60 + a[2]) * 60 + b[1]) * 1000000 + b[2] }
        /^[<>] [0-9]+\/[0-9]+\/[0-9]+ / { dir = $1; ts = us($2, $3); next }
        dir == ">" && $0 ~ cmd {
            req = ts; want = 1; id = ""
            if (match($0, /"id": ?[0-9]+/)) {
                id = substr($0, RSTART, RLENGTH); sub(/^"id": ?/, "", id)
                id = "\"id\": ?" id "[^0-9]" }
            next }
        # its reply: the same id (a client may have sent several at once)
        dir == "<" && want && /"return"|"error"/ && (id == "" || $0 ~ id) {
            rep = ts; want = 0 }
        END { printf "%.0f %.0f\n", req, rep }' "$1"
}

# qmp_request LOG CMD: the text of the last CMD request in the log
qmp_request() {
    awk -v cmd="\"execute\": ?\"$2\"" '
        /^[<>] [0-9]+\/[0-9]+\/[0-9]+ / { dir = $1; next }
        dir == ">" && $0 ~ cmd { last = $0 }
        END { print last }' "$1"
}

# A raw QMP client (socat, no library), one command at a time:
#   qmp_open SOCK         connects, reads the greeting, negotiates
#   qmp_cmd JSON          sends JSON; REPLY: its reply (events skipped)
#   qmp_close
qmp_open() {
    coproc QMP { socat - UNIX-CONNECT:"$1"; }
    read -r _ <&"${QMP[0]}" || fail "no QMP greeting on $1"
    qmp_cmd '{"execute": "qmp_capabilities"}'
}

qmp_cmd() {
    echo "$1" >&"${QMP[1]}"
    while read -r REPLY <&"${QMP[0]}"; do
        [[ $REPLY == *'"event"'* ]] || return 0
    done
    fail "the raw QMP session closed"
}

qmp_close() {
    kill "$QMP_PID" 2>/dev/null
    wait "$QMP_PID" 2>/dev/null
}

# raw_qmp SOCK JSON...: the commands, one exchange each; fails on an
# error reply
raw_qmp() {
    local sock=$1 c
    shift
    qmp_open "$sock"
    for c in "$@"; do
        qmp_cmd "$c"
        [[ $REPLY == *'"error"'* ]] && fail "raw QMP: $c: $REPLY"
    done
    qmp_close
}

ceph_cluster() {
    if [ ! -x "$REPO/tools/ceph-util" ] || ! command -v ceph-mon >/dev/null; then
        echo "$1: skipped (no tools/ceph-util or no ceph-mon)"
        exit 0
    fi
    export XL_SNAPSHOT_CEPH_UTIL=$REPO/tools/ceph-util
    [ -n "${CEPH_CONF:-}" ] && return 0
    "$REPO/tests/ceph/cluster.sh" start "$T/ceph" \
        "${XL_SNAPSHOT_CEPH_PORT:-16789}" >"$T/cluster.log" 2>&1 ||
        fail "the cluster did not start" "$(cat "$T/cluster.log")"
    at_cleanup '"$REPO/tests/ceph/cluster.sh" stop "$T/ceph"'
    export CEPH_CONF=$T/ceph/ceph.conf
}

settle() {
    sync
    echo 3 2>/dev/null > /proc/sys/vm/drop_caches || true
    # the tools themselves warm again, as on a working host: only the
    # images' data is cold (else xl alone would pay for reading its
    # libraries and qemu-img's back from disk)
    "$XL" help >/dev/null 2>&1
    qemu-img --version >/dev/null
    socat -V >/dev/null
}
# timed_pair R XL_FN REF_FN: runs both (settled), in R's turn order;
# XL_MS and REF_MS their wall times
timed_pair() {
    local r=$1 first second
    if (( r % 2 )); then first=$2 second=$3; else first=$3 second=$2; fi
    settle; "$first"
    settle; "$second"
}
