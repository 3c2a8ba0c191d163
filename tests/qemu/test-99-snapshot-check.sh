#!/bin/bash
# test-99-snapshot-check.sh - snapshot-check finds what is wrong
#
# The crash tests take a clean snapshot-check as proof of consistency;
# this shows that it is not clean when it should not be.  On a domain
# with s1 and s2 (xvda internal, xvdb external), each of these makes it
# exit 1 naming the problem, and undoing it makes it clean again:
# a file no record owns in the record directory, a stray overlay beside
# a disk, an internal snapshot gone from its image, an image of a
# record gone (and so the active chain broken).
# A journal no recovery can complete (not JSON, an unknown operation):
# check and every other command point at snapshot-recover, which moves
# it aside to journal.corrupt-<time> (exit 1, one line naming it); then
# recover has nothing left to do, nothing else is refused, and check
# reports the moved journal until it is removed.
# The listings (list, info, current, dumpxml) of a domain with such a
# journal go on, with one warning line naming it and snapshot-recover.
# --json of a check that cannot run (no such domain): one document with
# "error", the reason said on stderr, and "error_code", libxl's code;
# and so every --json command that fails (list, info, create,
# block-job).
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

make_vm_config vm1
expect_ok xl create "$CFG"
expect_ok xl snapshot-create vm1 s1
expect_ok xl snapshot-create vm1 s2
expect_ok xl snapshot-check vm1
expect_match "$OUT" "agree" "snapshot-check of a clean domain"

# broken ERE: snapshot-check exits 1 and names ERE
broken() {
    run xl snapshot-check vm1
    [ "$RC" -eq 1 ] || fail_run "snapshot-check exited $RC, expected 1"
    expect_match "$OUT" "$1" "snapshot-check's report"
}

step "a file no record owns"
touch "$(domain_dir vm1)/junk"
broken "junk' belongs to no record"
rm "$(domain_dir vm1)/junk"
expect_ok xl snapshot-check vm1

step "a stray overlay beside xvdb's image"
qemu-img create -q -f qcow2 "$IMG/vm1-xvdb.stray.qcow2" 1M
broken "vm1-xvdb.stray.qcow2' looks like an overlay"
rm "$IMG/vm1-xvdb.stray.qcow2"
expect_ok xl snapshot-check vm1

# unusable_journal TEXT: snapshot-check, snapshot-create and
# snapshot-recover of a journal holding TEXT (see above)
unusable_journal() {
    local dir
    dir=$(domain_dir vm1)
    printf '%s\n' "$1" >"$dir/journal.libxl-json"
    broken "the journal '$dir/journal.libxl-json' .*cannot be completed: xl snapshot-recover moves it aside"
    expect_error "journal .* cannot be completed; xl snapshot-recover vm1 moves it aside" \
        xl snapshot-create vm1 s9
    # the listings go on, warning in one line
    local c
    for c in "snapshot-list vm1" "snapshot-info vm1 s1" \
             "snapshot-current vm1" "snapshot-dumpxml vm1 s2"; do
        # shellcheck disable=SC2086
        expect_ok xl $c
        [ -n "$OUT" ] || fail_run "xl $c printed nothing"
        expect_eq "$(grep -c . <<<"$ERR")" 1 "xl $c: lines on stderr"
        expect_match "$ERR" "^libxl-snapshot: warning: domain vm1: the journal '?$dir/journal.libxl-json'? cannot be completed .*; xl snapshot-recover vm1 moves it aside$" \
            "xl $c: the warning"
    done
    expect_error "moved aside to $dir/journal\\.corrupt-[0-9]{8}-[0-9]{6}; xl snapshot-check vm1 reports" \
        xl snapshot-recover vm1
    expect_no_file "$dir/journal.libxl-json"
    [ "$(echo "$dir"/journal.corrupt-*)" != "$dir/journal.corrupt-*" ] ||
        fail "no journal.corrupt-* in $dir" "$(ls -l "$dir")"
    expect_eq "$(cat "$dir"/journal.corrupt-*)" "$1" "the moved journal"
    expect_ok xl snapshot-recover vm1
    expect_eq "$OUT" "vm1: nothing to recover" "snapshot-recover after the move"
    broken "journal\\.corrupt-.*' is a journal snapshot-recover moved aside"
    expect_eq "$(grep -c . <<<"$OUT")" 2 "snapshot-check's lines (the moved journal only)"
    rm "$dir"/journal.corrupt-*
    expect_ok xl snapshot-check vm1
}

step "an unreadable journal: snapshot-recover moves it aside"
unusable_journal '{garbage'
step "a journal of an unknown operation: the same"
unusable_journal '{"op": "frobnicate"}'

step "QEMU runs a disk on another image than the records say"
dom=$(domain_dir vm1)/domain.libxl-json
cp "$dom" "$T/domain.bak"
jq --arg p "$IMG/vm1-xvdb.s1.qcow2" \
    '(.disks[] | select(.vdev == "xvdb") | .path) |= $p' "$T/domain.bak" >"$dom"
broken "disk xvdb: QEMU runs it on '.*', but the domain's snapshot record says '.*vm1-xvdb.s1.qcow2'"
cp "$T/domain.bak" "$dom"
expect_ok xl snapshot-check vm1

step "an internal snapshot gone from its image (shut off)"
expect_ok xl destroy vm1
expect_ok qemu-img snapshot -d s1 "$IMG/vm1-xvda.qcow2"
broken "snapshot s1: disk xvda: .* holds no internal snapshot named 's1'"
expect_ok qemu-img snapshot -c s1 "$IMG/vm1-xvda.qcow2"
expect_ok xl snapshot-check vm1

step "an image of a record gone"
mv "$IMG/vm1-xvdb.s1.qcow2" "$T/away.qcow2"
broken "snapshot s2: disk xvdb: image .* is missing"
expect_match "$OUT" "active image .* does not open" "the broken active chain"
mv "$T/away.qcow2" "$IMG/vm1-xvdb.s1.qcow2"
expect_ok xl snapshot-check vm1

step "snapshot-check --json of no such domain: error and error_code"
run xl snapshot-check --json nosuchdom
[ "$RC" -eq 1 ] || fail_run "expected exit status 1"
[ "$(grep -c . <<<"$ERR")" -eq 1 ] || fail_run "expected one line on stderr"
jq -e . >/dev/null <<<"$OUT" || fail_run "not one JSON document"
expect_eq "$(jq -r '[.domain, (.problems | length), .error_code] | join(" ")' <<<"$OUT")" \
    "nosuchdom 0 domain_notfound" "domain, problems, error_code"
expect_eq "libxl-snapshot: error: $(jq -r .error <<<"$OUT")" "$ERR" \
    "\"error\": the line said on stderr"
expect_match "$(jq -r .error <<<"$OUT")" "domain 'nosuchdom' not found" "\"error\""

step "every --json command that fails: an error document on stdout"
# json_error CODE CMD...: exit 1, one line on stderr, and on stdout one
# JSON document whose "error" is that line's reason, "error_code" CODE
json_error() {
    local code=$1
    shift
    expect_fail "$@"
    jq -e . >/dev/null <<<"$OUT" || fail_run "not one JSON document"
    expect_eq "$(jq -r .error_code <<<"$OUT")" "$code" "$*: error_code"
    expect_eq "libxl-snapshot: error: $(jq -r .error <<<"$OUT")" "$ERR" \
        "$*: \"error\" is the line said on stderr"
}
json_error domain_notfound xl snapshot-list --json nosuchdom
json_error notfound xl snapshot-info --json vm1 nosuch
json_error domain_notfound xl snapshot-create --json nosuchdom s9
json_error domain_notfound xl block-job --json nosuchdom xvda
