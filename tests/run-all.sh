#!/bin/bash
# run-all.sh - the test driver behind `make check` (run after the build)
#
#  1. tests/unit/run-unit: every CUnit test counts, from its closing
#     "unit: N passed, N failed" line (a crash before that line counts
#     as one failure).
#  2. the unit tests under ASan and UBSan (build/asan), one test; every
#     fuzz seed and kept crash input once (make fuzz-regress), one test;
#     scripts/check-symbols.sh, one test.
#  3. every tests/qemu/test-*.sh: one test (one that is not executable
#     fails: it would never run); exit 0 passes, exit 77 is skipped,
#     anything else fails.  In name order, but the long crash loops
#     ("# run-all: beside") run in the background beside the others,
#     and those that measure time ("# run-all: alone") run last, with
#     nothing beside them.  Each runs from the repository root under a
#     time limit of $XL_SNAPSHOT_TEST_TIMEOUT seconds (default 900).
#  4. tests/ceph/run.sh: a throw-away one-node Ceph cluster and every
#     tests/ceph/test-*.sh against it; every test counts, from its
#     closing "check-ceph: N passed, N failed[, N skipped]" line.  A
#     cluster that cannot start fails it (no skip).
#  5. tests/xen/run.sh: Xen 4.17 and a dom0 booted under QEMU (TCG),
#     the scenarios run with the xen driver; every scenario counts,
#     from its closing "check-xen: N passed, N failed" line.  It does
#     not skip: a machine where it cannot run fails it, loudly.
#
# Closes with "check: N passed, N failed" (", N skipped" when some
# were) and exits 1 if anything failed.
set -uo pipefail

cd "$(dirname "$0")/.."

timeout_s=${XL_SNAPSHOT_TEST_TIMEOUT:-900}
passed=0
failed=0
skipped=0
failed_names=()

note_fail() {
    failed=$((failed + 1))
    failed_names+=("$1")
}

# ---- unit tests
echo "=== unit tests"
unit_log=$(mktemp)
trap 'rm -f "$unit_log"' EXIT
if [ -x tests/unit/run-unit ]; then
    tests/unit/run-unit 2>&1 | tee "$unit_log"
    unit_rc=${PIPESTATUS[0]}
    line=$(grep -E '^unit: [0-9]+ passed, [0-9]+ failed$' "$unit_log" | tail -n 1)
    if [ -n "$line" ]; then
        up=$(echo "$line" | sed -E 's/^unit: ([0-9]+) passed.*/\1/')
        uf=$(echo "$line" | sed -E 's/.* ([0-9]+) failed$/\1/')
        passed=$((passed + up))
        failed=$((failed + uf))
        [ "$uf" -gt 0 ] && failed_names+=("unit tests ($uf)")
        if [ "$unit_rc" -ne 0 ] && [ "$uf" -eq 0 ]; then
            note_fail "unit runner (exit $unit_rc)"
        fi
    else
        note_fail "unit runner (exit $unit_rc, no summary)"
    fi
else
    note_fail "tests/unit/run-unit (not built)"
fi

# ---- the unit tests again under ASan and UBSan: one test
echo "=== unit tests under AddressSanitizer and UBSan (build/asan)"
if [ -x build/asan/run-unit ]; then
    if build/asan/run-unit >"$unit_log" 2>&1 &&
       grep -qE '^unit: [0-9]+ passed, 0 failed$' "$unit_log"; then
        passed=$((passed + 1))
        echo "--- PASS $(grep -E '^unit: ' "$unit_log")"
    else
        tail -n 40 "$unit_log"
        note_fail "unit tests under ASan/UBSan"
    fi
else
    note_fail "build/asan/run-unit (not built: make check-asan)"
fi

# ---- every fuzz seed and kept crash input, once: one test
echo "=== fuzz-regress (tests/fuzz: seeds and crash inputs)"
if make -s fuzz-regress; then
    passed=$((passed + 1))
else
    note_fail "fuzz-regress"
fi

# ---- symbols
echo "=== check-symbols"
if scripts/check-symbols.sh; then
    passed=$((passed + 1))
else
    note_fail "check-symbols"
fi

# ---- real-QEMU tests
# Each runs alone, in name order, except:
#  - those with a "# run-all: beside" line (long fault-injection and
#    crash loops, no timing in their checks): one after another in the
#    background, beside the others, their output printed once done;
#  - those with a "# run-all: alone" line (they measure time): after
#    the background ones have ended, with nothing beside them.
# Every test has its own directories (tests/qemu/lib.sh), so two can
# run at once.
results=$(mktemp)
beside_dir=$(mktemp -d)
trap 'rm -rf "$unit_log" "$results" "$beside_dir"' EXIT

# run_test T: runs T, prints its output and result, appends the result
# ("pass|fail|skip T what") to $results
run_test() {
    local t=$1 start rc secs
    echo "=== $t"
    if [ ! -x "$t" ]; then
        # (a test that never runs cannot fail: a defect, not a skip)
        echo "fail $t (not executable)" >>"$results"
        echo "--- FAIL $t (not executable)"
        return
    fi
    start=$(date +%s)
    timeout --kill-after=30 "$timeout_s" "$t" </dev/null
    rc=$?
    secs=$(( $(date +%s) - start ))
    case $rc in
    0)   echo "pass $t" >>"$results"; echo "--- PASS $t (${secs}s)" ;;
    77)  echo "skip $t" >>"$results"; echo "--- SKIP $t" ;;
    124|137) echo "fail $t (timed out after ${timeout_s}s)" >>"$results"
         echo "--- FAIL $t (timed out)" ;;
    *)   echo "fail $t (exit $rc)" >>"$results"
         echo "--- FAIL $t (exit $rc, ${secs}s)" ;;
    esac
}

beside=() alone=() rest=()
for t in tests/qemu/test-*.sh; do
    [ -f "$t" ] || continue
    if grep -qx '# run-all: beside' "$t"; then beside+=("$t")
    elif grep -qx '# run-all: alone' "$t"; then alone+=("$t")
    else rest+=("$t")
    fi
done
(
    for t in "${beside[@]}"; do
        run_test "$t" >"$beside_dir/$(basename "$t").log" 2>&1
    done
) &
beside_pid=$!
for t in "${rest[@]}"; do run_test "$t"; done
wait "$beside_pid"
for t in "${beside[@]}"; do
    cat "$beside_dir/$(basename "$t").log"
done
for t in "${alone[@]}"; do run_test "$t"; done
while read -r what t why; do
    case $what in
    pass) passed=$((passed + 1)) ;;
    skip) skipped=$((skipped + 1)) ;;
    *)    note_fail "$t $why" ;;
    esac
done <"$results"

# count_suite TAG SCRIPT LOG RC NAME [WHY]: a suite's tests counted from
# its closing "TAG: N passed, N failed[, N skipped]" line in LOG (sets
# line); SCRIPT's exit RC fails it too when it counted no failure
count_suite() {
    local tag=$1 script=$2 log=$3 rc=$4 name=$5 why=${6:-} p f k=0
    line=$(grep -E "^$tag: [0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?\$" "$log" | tail -n 1)
    if [ -z "$line" ]; then
        note_fail "$script (exit $rc, no summary$why)"
        return
    fi
    p=$(echo "$line" | sed -E "s/^$tag: ([0-9]+) passed.*/\1/")
    f=$(echo "$line" | sed -E "s/^$tag: [0-9]+ passed, ([0-9]+) failed.*/\1/")
    [[ $line == *skipped ]] && k=$(echo "$line" | sed -E 's/.* ([0-9]+) skipped$/\1/')
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + k))
    [ "$f" -gt 0 ] && failed_names+=("$name ($f)")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        note_fail "$script (exit $rc)"
    fi
}

# ---- Ceph (tests/ceph): every test counts, from the closing
# "check-ceph: N passed, N failed[, N skipped]" line
echo "=== tests/ceph/run.sh (a one-node Ceph cluster, tools/ceph-util)"
ceph_log=$(mktemp)
trap 'rm -rf "$unit_log" "$results" "$beside_dir" "$ceph_log"' EXIT
start=$(date +%s)
# each test has its own limit there; this one is a safety net
n_ceph=$(find tests/ceph -maxdepth 1 -name 'test-*.sh' | wc -l)
timeout --kill-after=30 "$((timeout_s * (n_ceph + 1)))" tests/ceph/run.sh </dev/null 2>&1 |
    tee "$ceph_log"
ceph_rc=${PIPESTATUS[0]}
secs=$(( $(date +%s) - start ))
count_suite check-ceph tests/ceph/run.sh "$ceph_log" "$ceph_rc" tests/ceph
echo "--- tests/ceph: ${line:-no result} (${secs}s)"

# ---- real Xen under TCG (tests/xen): every scenario counts, from its
# closing "check-xen: N passed, N failed" line.  It never skips: this is
# the only proof that the xen driver works.
echo "=== tests/xen/run.sh (Xen 4.17 + dom0 under KVM if /dev/kvm opens, else TCG: the xen driver)"
xen_log=$(mktemp)
trap 'rm -rf "$unit_log" "$results" "$beside_dir" "$ceph_log" "$xen_log"' EXIT
start=$(date +%s)
# the boot's own limit (XEN_TEST_TIMEOUT, 2400 s) and the dom0 build
# (with the Debian packages' build, should test-69 not have left them)
timeout --kill-after=30 "$((timeout_s + 1920))" tests/xen/run.sh </dev/null 2>&1 |
    tee "$xen_log"
xen_rc=${PIPESTATUS[0]}
secs=$(( $(date +%s) - start ))
count_suite check-xen tests/xen/run.sh "$xen_log" "$xen_rc" tests/xen \
    ": it could not run here"
echo "--- tests/xen: ${line:-no result} (${secs}s)"

echo
if [ ${#failed_names[@]} -gt 0 ]; then
    echo "failed:"
    printf '    %s\n' "${failed_names[@]}"
fi
summary="check: $passed passed, $failed failed"
[ "$skipped" -gt 0 ] && summary="$summary, $skipped skipped"
echo "$summary"
[ "$failed" -eq 0 ]
