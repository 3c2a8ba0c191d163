#!/bin/bash
# test-70-dryrun-and-cli.sh - xl -N, usage errors, the system xl
#
# `xl -N snapshot-create` prints the planned record as JSON and changes
# nothing (running and shut-off domain; with --diskspec; a bad request
# still fails); `snapshot-create FILE X` reads FILE as a snapshot config
# or a domain config by its settings, not by its name; -N is refused by commands without a dry run; -h and
# help print the usage with exit 0; an unknown option, missing or
# extra arguments give exit 2 (as Xen's xl) and the usage and change
# nothing (xl list of two domains too; of no such domain, exit 1 and
# one line); any other subcommand is exec'd in the system xl ($XL_SNAPSHOT_SYSTEM_XL)
# with its argv unchanged, and its exit status comes back.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

# a system xl that prints its argv, one <arg> a line, and exits 42
cat > "$T/fake-xl" <<'EOF'
#!/bin/bash
printf '<%s>\n' "$@"
exit 42
EOF
chmod +x "$T/fake-xl"

make_vm_config vm1
expect_ok xl create "$CFG"

step "xl -N snapshot-create: the plan as JSON, nothing done"
fp=$(fingerprint)
expect_ok xl -N snapshot-create -d "planned" vm1 d1
expect_unchanged "$fp" "xl -N snapshot-create"
jq -e . >/dev/null <<<"$OUT" || fail "xl -N output is not JSON" "$OUT"
expect_eq "$(jq -r '[.name, .description, .state, .domain_name] | join(" ")' <<<"$OUT")" \
    "d1 planned running vm1" "planned record"
expect_eq "$(jq -r '.disks[] | "\(.vdev) \(.type) \(.file) \(.overlay // .tag)"' <<<"$OUT")" \
"xvda internal $IMG/vm1-xvda.qcow2 d1
xvdb external $IMG/vm1-xvdb.img $IMG/vm1-xvdb.d1.qcow2" "planned disks"
expect_no_file "$IMG/vm1-xvdb.d1.qcow2"
expect_eq "$(internal_snapshots "$IMG/vm1-xvda.qcow2")" "" "internal snapshots of xvda"
expect_ok xl snapshot-list --name vm1
expect_eq "$OUT" "" "snapshots after the dry run"

fp=$(fingerprint)
expect_ok xl -N snapshot-create --diskspec xvda,snapshot=external \
    --diskspec "xvdb,snapshot=external,file=$IMG/mine.qcow2" vm1 d2
expect_unchanged "$fp" "xl -N snapshot-create --diskspec"
expect_eq "$(jq -r '.disks[] | "\(.vdev) \(.type) \(.overlay)"' <<<"$OUT")" \
"xvda external $IMG/vm1-xvda.d2.qcow2
xvdb external $IMG/mine.qcow2" "planned disks with --diskspec"

step "xl -N of a bad request fails like the real one"
fp=$(fingerprint)
expect_error 'xvdb' xl -N snapshot-create --diskspec xvdb,snapshot=internal vm1 d3
expect_error 'name' xl -N snapshot-create vm1 ../d3
expect_unchanged "$fp" "the failed dry runs"

step "xl -N on a shut-off domain"
expect_ok xl snapshot-create vm1 s1
expect_ok xl destroy vm1
fp=$(fingerprint)
expect_ok xl -N snapshot-create vm1 d4
expect_unchanged "$fp" "xl -N snapshot-create (shut off)"
expect_eq "$(jq -r '[.name, .parent, .state] | join(" ")' <<<"$OUT")" \
    "d4 s1 shutoff" "planned record (shut off)"
expect_eq "$(jq -r '.disks[] | "\(.vdev) \(.type) \(.file)"' <<<"$OUT")" \
"xvda internal $IMG/vm1-xvda.qcow2
xvdb external $IMG/vm1-xvdb.s1.qcow2" "planned disks (shut off)"
expect_ok xl snapshot-list --name vm1
expect_eq "$OUT" "s1" "snapshots after the dry run"

step "the example configs: xl -N snapshot-create with configs/*.cfg"
# A separate state dir: configs/vm1-qcow2.cfg is a domain "vm1" too.
S2=$T/state2
expect_ok env XL_SNAPSHOT_STATE_DIR="$S2" "$XL" -N snapshot-create \
    "$REPO/configs/snapshot-before-upgrade.cfg" "$REPO/configs/vm1-qcow2.cfg" before-upgrade
expect_eq "$(jq -r '[.name, .domain_name, .state] | join(" ")' <<<"$OUT")" \
    "before-upgrade vm1 shutoff" "planned record from snapshot-before-upgrade.cfg"
expect_match "$(jq -r .description <<<"$OUT")" "upgrade" "its description"
expect_eq "$(jq -r '.disks[] | "\(.vdev) \(.type) \(.format) \(.file) \(.overlay // .tag)"' <<<"$OUT")" \
"xvda internal qcow2 /var/lib/xen/images/vm1-xvda.qcow2 before-upgrade
xvdb external qcow2 /var/lib/xen/images/vm1-xvdb.qcow2 /var/lib/xen/images/vm1-xvdb.before-upgrade.qcow2" \
    "planned disks from snapshot-before-upgrade.cfg + vm1-qcow2.cfg"
expect_ok env XL_SNAPSHOT_STATE_DIR="$S2" "$XL" -N snapshot-create \
    "$REPO/configs/demo-vm1.cfg" demo
expect_eq "$(jq -r '.disks[] | "\(.vdev) \(.type) \(.file)"' <<<"$OUT")" \
"xvda internal /var/tmp/libxl-snapshot-demo/images/demo-vm1-xvda.qcow2
xvdb external /var/tmp/libxl-snapshot-demo/images/demo-vm1-xvdb.img" \
    "planned disks of configs/demo-vm1.cfg"
# a dry run may create the domain's lock file, but no record
expect_eq "$(find "$S2" -type f ! -name lock)" "" "files a dry run left in a fresh state dir"

step "snapshot-create FILE X: FILE's settings, not its name, say what it is"
# a snapshot config whose path does not say "snapshot" (it was taken
# for the domain), given with a domain name, with a domain config's
# path, and with -n; a domain config under a directory named
# "snapshots" (it was taken for a snapshot config)
cat >"$T/plan.cfg" <<'EOF'
name = "planned"
description = "a snapshot config"
disk = [ 'xvda,snapshot=external' ]
EOF
expect_ok xl -N snapshot-create "$T/plan.cfg" vm1
expect_eq "$(jq -r '[.name, .description, .domain_name, (.disks[] | select(.vdev == "xvda") | .type)] | join(" ")' <<<"$OUT")" \
    "planned a snapshot config vm1 external" "planned record from plan.cfg vm1"
expect_ok xl -N snapshot-create "$T/plan.cfg" "$CFG"
expect_eq "$(jq -r '[.name, .domain_name] | join(" ")' <<<"$OUT")" \
    "planned vm1" "planned record from plan.cfg and vm1's config path"
expect_ok xl -N snapshot-create -n other "$T/plan.cfg" vm1
expect_eq "$(jq -r .name <<<"$OUT")" "other" "-n with plan.cfg vm1"
mkdir -p "$T/snapshots"
cp "$CFG" "$T/snapshots/vm1.cfg"
expect_ok xl -N snapshot-create "$T/snapshots/vm1.cfg" d5
expect_eq "$(jq -r '[.name, .domain_name] | join(" ")' <<<"$OUT")" \
    "d5 vm1" "planned record from a domain config path and a name"
# a snapshot config with a mistake is reported as one (line and setting)
printf 'name = "m1"\ndescription = "x"\nmemory = 1\n' >"$T/plan-bad.cfg"
refused "plan-bad\\.cfg:3: memory=1: give" xl snapshot-create "$T/plan-bad.cfg" vm1
printf 'name = "m1"\nmemory = "m1.save"\n' >"$T/plan-rel.cfg"
refused "plan-rel\\.cfg:2: memory=\"m1.save\" is a relative path" \
    xl snapshot-create "$T/plan-rel.cfg" vm1
expect_ok xl snapshot-list --name vm1
expect_eq "$OUT" "s1" "snapshots after the plans and refusals"

step "-N where there is no dry run"
fp=$(fingerprint)
for c in "snapshot-list vm1" "snapshot-revert vm1 s1" "snapshot-delete vm1 s1"; do
    # shellcheck disable=SC2086
    expect_fail xl -N $c
    expect_match "$ERR" "-N|dry" "stderr of xl -N $c"
done
expect_unchanged "$fp" "xl -N on commands without a dry run"
expect_ok xl snapshot-list --name vm1
expect_eq "$OUT" "s1" "snapshots after the refused -N"

step "usage: -h, help"
for c in snapshot-create snapshot-list snapshot-info snapshot-current \
         snapshot-delete snapshot-revert; do
    expect_ok xl "$c" -h
    expect_match "$OUT" "^Usage: xl .*$c " "xl $c -h"
    expect_eq "$ERR" "" "stderr of xl $c -h"
done
expect_ok xl snapshot-create -h
expect_match "$OUT" '--diskspec' "xl snapshot-create -h"
expect_ok xl help snapshot-revert
expect_match "$OUT" '^Usage: xl .*snapshot-revert' "xl help snapshot-revert"
expect_ok xl help
expect_match "$OUT" '^ snapshot-create ' "xl help"
expect_ok xl -h
expect_match "$OUT" '^ snapshot-create ' "xl -h"

step "usage errors: exit 2 (as Xen's xl), usage, nothing changed"
fp=$(fingerprint)
usage_error() {
    run xl "$@"
    [ "$RC" -eq 2 ] || fail_run "expected exit status 2"
    [ -n "$ERR$OUT" ] || fail_run "expected a message or the usage"
}
usage_error snapshot-create --bogus vm1 x
expect_match "$ERR" 'bogus' "stderr for an unknown option"
expect_match "$OUT" '^Usage: xl .*snapshot-create' "usage for an unknown option"
usage_error snapshot-create -q vm1 x
expect_match "$ERR" '-q' "stderr for an unknown short option"
usage_error snapshot-list --bogus vm1
usage_error snapshot-revert --bogus vm1 s1
usage_error snapshot-create --diskspec
usage_error snapshot-create
expect_match "$ERR" 'argument' "stderr for missing arguments"
usage_error snapshot-list
usage_error snapshot-info vm1
usage_error snapshot-current
usage_error snapshot-revert vm1
expect_match "$ERR" 'name' "stderr of snapshot-revert without a name"
usage_error snapshot-delete vm1
usage_error snapshot-delete
usage_error snapshot-revert vm1 s1 extra
usage_error snapshot-create a b c d
usage_error -z snapshot-list vm1
expect_match "$ERR" 'option' "stderr for an unknown global option"
# xl list takes one domain, as Xen's (it listed the first, exit 0)
usage_error list vm1 nosuchdom
expect_eq "$ERR" "xl list: takes at most one domain." "stderr of xl list with two domains"
usage_error list nosuchdom vm1
expect_unchanged "$fp" "the usage errors"

step "xl list of no such domain: exit 1, one line (as Xen's xl)"
expect_error_line() {
    expect_fail "$@"
    expect_match "$ERR" "domain 'nosuchdom' does not exist" "stderr of $*"
    expect_eq "$OUT" "" "stdout of $*"
}
expect_error_line xl list nosuchdom
expect_error_line xl list -l nosuchdom

step "other subcommands go to the system xl, argv unchanged"
export XL_SNAPSHOT_SYSTEM_XL=$T/fake-xl
run xl -v foo --bar baz
expect_eq "$RC" 42 "exit status passed back from the system xl"
expect_eq "$OUT" "<-v>
<foo>
<--bar>
<baz>" "argv as the system xl got it"
run xl vcpu-list 'a b' '' '--x=1 2' '*'
expect_eq "$RC" 42 "exit status passed back from the system xl"
expect_eq "$OUT" "<vcpu-list>
<a b>
<>
<--x=1 2>
<*>" "argv with spaces, an empty and a glob character"
run xl -N -v vcpu-set vm1 2
expect_eq "$RC" 42 "exit status of xl -N -v vcpu-set"
expect_eq "$OUT" "<-N>
<-v>
<vcpu-set>
<vm1>
<2>" "argv with global options"
expect_fail env XL_SNAPSHOT_SYSTEM_XL="$T/does-not-exist" "$XL" foo
expect_match "$ERR" 'foo' "stderr when the system xl is missing"
echo "PASS: $TEST_NAME"
