#!/bin/bash
# run.sh - the Ceph tests (make check-ceph; tests/run-all.sh runs it too)
#
# Starts one throw-away cluster (tests/ceph/cluster.sh: one mon, one
# memstore OSD, no cephx, pool "rbd" of size 1) in a temporary
# directory, exports CEPH_CONF, and runs every tests/ceph/test-*.sh
# against it, in name order, from the repository root, each under a
# time limit of $XL_SNAPSHOT_TEST_TIMEOUT seconds (default 900): exit 0
# passes, 77 is skipped, anything else fails.  The cluster is stopped
# (its daemons killed by PID and waited for, its directory removed) on
# every way out: the end, a failure, Ctrl-C, SIGTERM.
#
# The mon's port: $XL_SNAPSHOT_CEPH_PORT, default 16789 (outside the
# kernel's ephemeral range, away from Ceph's own 6789 and 3300 so a real
# cluster on the host does not clash); when taken, the next nine are
# tried.  Tests may share the cluster, not their names: each names its
# images and objects with its own prefix (t01-...).
#
# Closes with "check-ceph: N passed, N failed" (", N skipped" when some
# were); exits 1 if anything failed, or if the cluster could not start
# (a machine where Ceph cannot run fails, loudly: it never skips).
set -uo pipefail

cd "$(dirname "$0")/../.."

timeout_s=${XL_SNAPSHOT_TEST_TIMEOUT:-900}
base_port=${XL_SNAPSHOT_CEPH_PORT:-16789}
passed=0
failed=0
skipped=0
failed_names=()

dir=$(mktemp -d "${TMPDIR:-/tmp}/xlsnap-ceph.XXXXXX") || exit 1
stopped=
test_pid=
stop_cluster() {
    [ -n "$stopped" ] && return
    stopped=1
    # a test still running (Ctrl-C): its own cleanup first
    if [ -n "$test_pid" ] && kill -0 "$test_pid" 2>/dev/null; then
        kill -TERM "$test_pid" 2>/dev/null
        wait "$test_pid" 2>/dev/null
    fi
    tests/ceph/cluster.sh stop "$dir" || echo "check-ceph: stopping the cluster failed" >&2
}
trap stop_cluster EXIT
trap 'stop_cluster; exit 130' INT
trap 'stop_cluster; exit 143' TERM

summary() {
    local s="check-ceph: $passed passed, $failed failed"
    [ "$skipped" -gt 0 ] && s="$s, $skipped skipped"
    echo
    if [ ${#failed_names[@]} -gt 0 ]; then
        echo "failed:"
        printf '    %s\n' "${failed_names[@]}"
    fi
    echo "$s"
}

echo "=== tests/ceph: a one-node cluster"
started=
for port in $(seq "$base_port" $((base_port + 9))); do
    rm -rf "$dir" && mkdir -p "$dir"
    start=$(date +%s)
    if tests/ceph/cluster.sh start "$dir" "$port" >"$dir.log" 2>&1; then
        started=1
        echo "cluster up in $(( $(date +%s) - start )) s on port $port"
        break
    fi
    grep -q "is in use" "$dir.log" || break
done
if [ -z "$started" ]; then
    cat "$dir.log" >&2
    rm -f "$dir.log"
    failed=1
    failed_names+=("tests/ceph/cluster.sh start (the cluster did not start)")
    summary
    exit 1
fi
rm -f "$dir.log"
export CEPH_CONF=$dir/ceph.conf

for t in tests/ceph/test-*.sh; do
    [ -f "$t" ] || continue
    echo "=== $t"
    if [ ! -x "$t" ]; then
        failed=$((failed + 1))
        failed_names+=("$t (not executable)")
        echo "--- FAIL $t (not executable)"
        continue
    fi
    start=$(date +%s)
    # in the background, so that a signal's trap runs at once (bash runs
    # it only once a foreground command is done; timeout has a process
    # group of its own, which a Ctrl-C does not reach)
    timeout --kill-after=30 "$timeout_s" "$t" </dev/null &
    test_pid=$!
    wait "$test_pid"
    rc=$?
    test_pid=
    secs=$(( $(date +%s) - start ))
    case $rc in
    0)  passed=$((passed + 1)); echo "--- PASS $t (${secs}s)" ;;
    77) skipped=$((skipped + 1)); echo "--- SKIP $t" ;;
    124|137)
        failed=$((failed + 1)); failed_names+=("$t (timed out after ${timeout_s}s)")
        echo "--- FAIL $t (timed out)" ;;
    *)  failed=$((failed + 1)); failed_names+=("$t (exit $rc)")
        echo "--- FAIL $t (exit $rc, ${secs}s)" ;;
    esac
done

stop_cluster
if [ -e "$dir" ]; then
    failed=$((failed + 1))
    failed_names+=("the cluster's directory $dir is left")
fi
if pgrep -f -- "$dir/ceph.conf" >/dev/null; then
    failed=$((failed + 1))
    failed_names+=("a daemon of the cluster is left: $(pgrep -af -- "$dir/ceph.conf")")
fi
summary
[ "$failed" -eq 0 ]
