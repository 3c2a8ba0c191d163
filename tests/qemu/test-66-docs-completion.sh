#!/bin/bash
# test-66-docs-completion.sh - the man pages and the bash completion
# follow the program
#
#  - xl-snapshot(1) documents every subcommand `xl help` lists, and
#    every option `xl help CMD` shows; the three pages render with man
#    without warnings (groff -ww);
#  - the completion (scripts/bash-completion/xl-snapshot), sourced and
#    driven as bash drives it (COMP_WORDS/COMP_CWORD): subcommands,
#    options, domain names, snapshot names and config paths.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

MANDIR=$REPO/docs/man
for m in xl-snapshot.1 xl.snapshot.cfg.5 libxl-snapshot.3; do
    [ -f "$MANDIR/$m" ] || fail "$m is not built (make)"
done

step "xl-snapshot(1) covers every subcommand and option"
POD=$MANDIR/xl-snapshot.1.pod
run xl help
cmds=$(awk '/^ [a-z]/ {print $1}' <<<"$OUT")
[ "$(wc -w <<<"$cmds")" -ge 15 ] || fail "xl help lists too few subcommands: $cmds"
missing=
for c in $cmds; do
    grep -q "B<$c>" "$POD" || missing="$missing $c"
    run xl help "$c"
    for o in $(grep -oE '(^|[ ,])--[a-z][a-z-]*' <<<"$OUT" | tr -d ' ,' | sort -u); do
        grep -q -- "B<$o>" "$POD" || missing="$missing $c:$o"
    done
done
expect_eq "$missing" "" "subcommands and options xl-snapshot(1) lacks"
for m in xl-snapshot.1 xl.snapshot.cfg.5 libxl-snapshot.3; do
    run env MANWIDTH=80 man --warnings=w -l "$MANDIR/$m"
    [ "$RC" -eq 0 ] || fail_run "man $m fails"
    expect_eq "$ERR" "" "man's warnings on $m"
    expect_match "$OUT" "NAME" "$m rendered"
done

step "bash completion, driven as bash does"
export PATH=$T/bin:$PATH
mkdir -p "$T/bin"
ln -s "$XL" "$T/bin/xl-snapshot"
# shellcheck disable=SC1091
. "$REPO/scripts/bash-completion/xl-snapshot"
complete_words() {
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMPREPLY=()
    _xl_snapshot
    echo "${COMPREPLY[*]}"
}
expect_eq "$(complete_words xl-snapshot snapshot-re)" \
    "snapshot-recover snapshot-revert" "subcommands"
expect_eq "$(complete_words xl-snapshot -v block-j)" "block-job" "after -v"
expect_eq "$(complete_words xl-snapshot snapshot-revert --f)" "--force" "an option"
expect_match "$(complete_words xl-snapshot snapshot-create --)" "--diskspec= .*--memory= .*--quiesce=" \
    "snapshot-create's options"
make_vm_config vm1
expect_ok xl create "$CFG"
make_vm_config vm2
expect_ok xl create "$CFG"
expect_ok xl snapshot-create vm1 before-upgrade
expect_ok xl snapshot-create vm1 nightly
expect_eq "$(complete_words xl-snapshot snapshot-list v)" "vm1 vm2" "domain names"
expect_eq "$(complete_words xl-snapshot snapshot-revert vm1 '')" \
    "before-upgrade nightly" "snapshot names"
expect_eq "$(complete_words xl-snapshot snapshot-delete --children vm1 n)" \
    "nightly" "a snapshot name after an option"
expect_eq "$(complete_words xl-snapshot snapshot-list "$T/vm1.c")" "$T/vm1.cfg" \
    "a config path as the domain"
expect_eq "$(complete_words xl-snapshot snapshot-info nosuchvm '')" "" \
    "an unknown domain: nothing"
echo "PASS: $TEST_NAME"
