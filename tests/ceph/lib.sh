# lib.sh - helpers for the Ceph tests (tests/ceph/test-*.sh)
#
# Source it first thing:
#
#     . "$(dirname "$0")/lib.sh"
#
# It sources tests/qemu/lib.sh (T, XL, run, expect_ok, expect_eq,
# read_pattern, step, fail...: see there), then:
#
#   CEPH_CONF   the cluster's ceph.conf: tests/ceph/run.sh starts one
#               cluster for all the tests and exports it; a test run by
#               itself (bash tests/ceph/test-NN-name.sh) starts its own
#               in $T/ceph (port $XL_SNAPSHOT_CEPH_PORT, default 16789)
#               and stops it on exit
#   CEPH_UTIL   the tree's tools/ceph-util (the test fails if it is not
#               built); XL_SNAPSHOT_CEPH_UTIL is exported to it
#
#   expect_exit N ERE CMD...   CMD exits N with exactly one line on
#                         stderr, which starts "ceph-util: " and matches ERE
#   host_b                a second "host" on this machine: its own state
#                         and run dirs ($B_STATE, $B_RUN), nothing local
#                         shared; its domains are destroyed at exit
#   on_b CMD...           CMD as host B (the lib's helpers see B's $RUN,
#                         $STATE)
#   rbd_url POOL/IMAGE    the qemu rbd: filename of an image
#   rbd_write POOL/IMAGE BYTE OFFSET LEN   qemu-io writes BYTE there
#   rbd_read POOL/IMAGE BYTE OFFSET LEN    it must read back BYTE
#                         (read_pattern on the rbd: filename)
#
# Names: the cluster is shared by the tests of one run, so a test names
# its images and objects with its own prefix (t01-...).

# shellcheck source=tests/qemu/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../qemu/lib.sh"

CEPH_UTIL=$REPO/tools/ceph-util
[ -x "$CEPH_UTIL" ] ||
    fail "$CEPH_UTIL is not built (librbd-dev and librados-dev, then make)"
export XL_SNAPSHOT_CEPH_UTIL=$CEPH_UTIL

if [ -z "${CEPH_CONF:-}" ]; then
    step "no CEPH_CONF: a cluster of this test's own (tests/ceph/cluster.sh)"
    "$REPO/tests/ceph/cluster.sh" start "$T/ceph" \
        "${XL_SNAPSHOT_CEPH_PORT:-16789}" >"$T/cluster.log" 2>&1 ||
        fail "the test cluster did not start" "$(cat "$T/cluster.log")"
    at_cleanup '"$REPO/tests/ceph/cluster.sh" stop "$T/ceph"'
    export CEPH_CONF=$T/ceph/ceph.conf
fi

expect_exit() {
    local code=$1 ere=$2 lines
    shift 2
    run "$@"
    [ "$RC" -eq "$code" ] || fail_run "expected exit status $code"
    lines=$(wc -l <"$T/.err")
    if [ "$lines" -ne 1 ] || [ -z "$ERR" ]; then
        fail_run "expected exactly one line on stderr (got $lines)"
    fi
    [[ $ERR == "ceph-util: "* ]] ||
        fail_run "stderr does not start with 'ceph-util: '"
    [[ $ERR =~ $ere ]] || fail_run "stderr does not match /$ere/"
}

host_b() {
    B_STATE=$T/b/state
    B_RUN=$T/b/run
    mkdir -p "$B_STATE" "$B_RUN"
    at_cleanup 'for d in $(on_b timeout 20 "$XL" list 2>/dev/null | awk "NR > 1 {print \$1}"); do on_b timeout 20 "$XL" destroy "$d" >/dev/null 2>&1; done'
}
on_b() {
    local RUN=$B_RUN STATE=$B_STATE
    local -x XL_SNAPSHOT_STATE_DIR=$B_STATE XL_SNAPSHOT_RUN_DIR=$B_RUN
    "$@"
}

rbd_url() {
    echo "rbd:$1:conf=$CEPH_CONF"
}

rbd_write() {
    run qemu-io -f raw -c "write -P $2 $3 $4" "$(rbd_url "$1")"
    [ "$RC" -eq 0 ] && grep -q "^wrote " <<<"$OUT" ||
        fail_run "rbd_write: qemu-io could not write $3+$4 of $1"
}

rbd_read() {
    read_pattern "$(rbd_url "$1")" "$2" "$3" "$4" raw
}
