#!/bin/bash
# test-67-admin-scripts.sh - scripts/xl-snapshot-all and
# scripts/xl-snapshot-rotate on the qemu driver
#
#  - --help of each; bad usage exits 2;
#  - xl-snapshot-all snapshots every running domain, one line each; a
#    domain that fails is reported and the others still go (exit 1);
#    --dry-run takes none;
#  - xl-snapshot-rotate --keep N keeps the N newest per domain (only
#    those matching --prefix), deleting the others oldest first; every
#    kept snapshot still reverts to its data; --max-age D deletes those
#    older than D days (a record made 30 days old); --dry-run deletes
#    nothing;
#  - xl-snapshot-all marks its snapshots (description xl-snapshot-all);
#    a rotation without --prefix deletes only marked ones: manual
#    snapshots survive `--keep 1`; --include-manual lets them go.
#  - the systemd units parse (systemd-analyze verify, where present).
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

ALL=$REPO/scripts/xl-snapshot-all
ROT=$REPO/scripts/xl-snapshot-rotate
export XL="$XL"

step "--help, bad usage"
for s in "$ALL" "$ROT"; do
    run "$s" --help
    [ "$RC" -eq 0 ] || fail_run "$s --help"
    expect_match "$OUT" "^Usage: " "$(basename "$s") --help"
    run "$s" --no-such-option
    expect_eq "$RC" 2 "$(basename "$s") with a bad option"
done
run "$ROT" vm1
expect_eq "$RC" 2 "rotate without --keep or --max-age"
run "$ROT" --keep x vm1
expect_eq "$RC" 2 "rotate --keep x"

make_vm_config vm1
expect_ok xl create "$CFG"
make_vm_config vm2
expect_ok xl create "$CFG"

step "xl-snapshot-all: every running domain, one line each"
for i in 1 2 3 4; do
    write_disks vm1 0x1$i
    write_disks vm2 0x2$i
    run "$ALL" --name "auto-%D-$i"
    [ "$RC" -eq 0 ] || fail_run "xl-snapshot-all run $i"
    expect_eq "$OUT" "vm1: took auto-vm1-$i
vm2: took auto-vm2-$i" "xl-snapshot-all's report"
done
expect_ok xl snapshot-create vm1 manual
run "$ALL" --dry-run --name dry
expect_eq "$OUT" "vm1: would take dry
vm2: would take dry" "--dry-run's report"
expect_ok xl snapshot-list --name vm1
expect_no_match "$OUT" "dry" "after --dry-run"
run "$ALL" --name "auto-%D-1" vm1 vm2
expect_eq "$RC" 1 "a failing domain"
expect_match "$OUT" "vm1: FAILED: .*auto-vm1-1" "the failure reported"

step "xl-snapshot-rotate --keep 2 --prefix auto-"
run "$ROT" --keep 2 --prefix auto- --dry-run vm1 vm2
expect_eq "$OUT" "vm1: would delete auto-vm1-1
vm1: would delete auto-vm1-2
vm2: would delete auto-vm2-1
vm2: would delete auto-vm2-2" "--dry-run"
expect_ok xl snapshot-list --name vm1
expect_eq "$(echo $OUT)" "auto-vm1-1 auto-vm1-2 auto-vm1-3 auto-vm1-4 manual" "nothing deleted by --dry-run"
run "$ROT" --keep 2 --prefix auto- --all
[ "$RC" -eq 0 ] || fail_run "rotate --keep 2"
expect_ok xl snapshot-list --name vm1
expect_eq "$(echo $OUT)" "auto-vm1-3 auto-vm1-4 manual" "vm1's snapshots after the rotation"
expect_ok xl snapshot-list --name vm2
expect_eq "$(echo $OUT)" "auto-vm2-3 auto-vm2-4" "vm2's snapshots after the rotation"
for d in vm1 vm2; do
    expect_ok xl snapshot-check "$d"
    n=${d#vm}
    for i in 3 4; do
        expect_ok xl snapshot-revert "$d" "auto-$d-$i"
        expect_disks "$d" "0x$n$i"
    done
done

step "xl-snapshot-rotate --max-age 7: a snapshot 30 days old goes"
rec=$(domain_dir vm2)/snapshotdata-auto-vm2-3.libxl-json
old=$(( $(date +%s) - 30 * 86400 ))
jq --argjson t "$old" '.creation_time = $t' "$rec" > "$rec.new" && mv "$rec.new" "$rec"
run "$ROT" --max-age 7 vm2
expect_eq "$OUT" "vm2: deleted auto-vm2-3" "rotate --max-age 7"
expect_ok xl snapshot-list --name vm2
expect_eq "$(echo $OUT)" "auto-vm2-4" "vm2's snapshots"
expect_ok xl snapshot-check vm2
expect_ok xl snapshot-revert vm2 auto-vm2-4
expect_disks vm2 0x24

step "the default rotation deletes only xl-snapshot-all's snapshots"
expect_ok xl snapshot-info --json vm1 auto-vm1-4
expect_eq "$(jq -r .description <<<"$OUT")" "xl-snapshot-all" "xl-snapshot-all's mark"
expect_ok xl snapshot-create vm1 manual1
expect_ok xl snapshot-create vm1 snapA
run "$ROT" --keep 1 vm1
[ "$RC" -eq 0 ] || fail_run "rotate --keep 1 vm1"
expect_eq "$OUT" "vm1: deleted auto-vm1-3" "rotate --keep 1 without --prefix"
expect_ok xl snapshot-list --name vm1
expect_eq "$(echo $OUT)" "auto-vm1-4 manual manual1 snapA" "the manual snapshots survive"
run "$ROT" --keep 1 vm1
expect_eq "$OUT" "vm1: nothing to delete" "rotate again: manual snapshots not counted"
run "$ROT" --keep 1 --include-manual --dry-run vm1
expect_eq "$OUT" "vm1: would delete auto-vm1-4
vm1: would delete manual
vm1: would delete manual1" "--include-manual --dry-run"
run "$ROT" --keep 1 --include-manual --prefix manual vm1
expect_eq "$OUT" "vm1: deleted manual" "--include-manual --prefix manual"
expect_ok xl snapshot-list --name vm1
expect_eq "$(echo $OUT)" "auto-vm1-4 manual1 snapA" "vm1's snapshots"
expect_ok xl snapshot-check vm1

step "the systemd units"
if command -v systemd-analyze >/dev/null; then
    mkdir -p "$T/units"
    sed "s|/usr/bin/xl-snapshot-rotate|$ROT|" "$REPO/scripts/systemd/xl-snapshot-rotate.service" \
        > "$T/units/xl-snapshot-rotate.service"
    cp "$REPO/scripts/systemd/xl-snapshot-rotate.timer" "$T/units/"
    run systemd-analyze verify --man=no "$T/units/xl-snapshot-rotate.service" "$T/units/xl-snapshot-rotate.timer"
    expect_no_match "$ERR" "xl-snapshot-rotate\.(service|timer):" "systemd-analyze on the units"
else
    grep -q '^ExecStart=/usr/bin/xl-snapshot-rotate' "$REPO/scripts/systemd/xl-snapshot-rotate.service" ||
        fail "the service does not run xl-snapshot-rotate"
    grep -q '^OnCalendar=' "$REPO/scripts/systemd/xl-snapshot-rotate.timer" ||
        fail "the timer has no OnCalendar"
fi
echo "PASS: $TEST_NAME"
