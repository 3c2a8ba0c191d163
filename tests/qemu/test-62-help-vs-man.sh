#!/bin/bash
# test-62-help-vs-man.sh - xl help CMD, xl-snapshot(1) and the option
# parser agree, for every subcommand
#
#  - the options `xl help CMD` shows (its usage line and Options) are
#    exactly those xl-snapshot(1) gives in CMD's entry (B<-x>,
#    B<--xxx>), for every subcommand `xl help` lists;
#  - each of them is one CMD accepts: `xl CMD OPTION -h` prints the
#    help with exit 0 (an option it refused would exit 2);
#  - EXIT STATUS: a usage error exits 2 as the page says (and as Xen's
#    xl), with one line on stderr naming the option as written;
#  - help with a system xl (a stand-in printing Xen's help format): `xl
#    help` lists ours then its others; `xl help save` is its (argv
#    unchanged, its exit status); `xl help nosuchcmd` exits 1.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

POD=$REPO/docs/man/xl-snapshot.1.pod

# The options in CMD's help: its usage line after the command name,
# and the Options section.
help_options() {
    run xl help "$1"
    [ "$RC" -eq 0 ] || fail_run "xl help $1"
    sed -n -E "1s/^Usage: xl \[-v[A-Z]*\] [^ ]+ //p; /^Options:/,\$p" <<<"$OUT" |
        grep -oE '(^|[][ ,|(])--?[a-zA-Z][a-zA-Z-]*' | sed -E 's/^[][ ,|(]//' |
        sort -u | tr '\n' ' '
}

# "CMD OPTION" for every B<-x>/B<--xxx> in the entry of each command of
# the man page's command sections: an =item B<cmd> at the first level of
# an =over list, up to the next such item (nested lists included).
man_options() {
    awk '
    /^=head1/ { sect = $0; depth = 0; cmds = ""; next }
    sect !~ /COMMANDS$/ { next }
    /^=over/ { depth++; next }
    /^=back/ { depth--; if (depth == 0) cmds = ""; next }
    /^=item B</ && depth == 1 {
        cmds = ""; s = $0
        while (match(s, /B<[a-z][a-z-]*>/)) {
            cmds = cmds " " substr(s, RSTART + 2, RLENGTH - 3)
            s = substr(s, RSTART + RLENGTH)
            if (s !~ /^ *\| *B</) break
        }
    }
    cmds != "" {
        s = $0
        while (match(s, /B<--?[a-zA-Z][a-zA-Z-]*/)) {
            o = substr(s, RSTART + 2, RLENGTH - 2)
            n = split(cmds, c, " ")
            for (i = 1; i <= n; i++) print c[i], o
            s = substr(s, RSTART + RLENGTH)
        }
        if ($0 ~ /^=item B</ && depth == 1) {
            n = split(cmds, c, " ")
            for (i = 1; i <= n; i++) print c[i], "(entry)"
        }
    }' "$POD" | sort -u
}

step "every subcommand's options: xl help CMD = xl-snapshot(1)"
run xl help
cmds=$(awk '/^ [a-z]/ {print $1}' <<<"$OUT")
[ "$(wc -w <<<"$cmds")" -ge 15 ] || fail "xl help lists too few subcommands: $cmds"
man=$(man_options)
diffs=
for c in $cmds; do
    [ "$c" = help ] && continue
    grep -q "^$c (entry)\$" <<<"$man" || { diffs="$diffs
$c: no entry in xl-snapshot(1)"; continue; }
    h=$(help_options "$c")
    m=$(awk -v c="$c" '$1 == c && $2 != "(entry)" {print $2}' <<<"$man" | sort -u | tr '\n' ' ')
    [ "$h" = "$m" ] || diffs="$diffs
$c: xl help: [$h] man: [$m]"
done
expect_eq "$diffs" "" "options xl help and xl-snapshot(1) disagree on"

step "every option in xl help CMD is one CMD accepts"
refused=
for c in $cmds; do
    [ "$c" = help ] && continue
    run xl help "$c"
    usage=$OUT
    for o in $(help_options "$c"); do
        # an argument for those the help shows one (--name=NAME, -n, --name=...)
        arg=()
        if grep -qE -- "(^|[ ,[|])$o=" <<<"$usage"; then
            arg=("$o=1")
        elif [[ $o != --* ]] && grep -qE -- "(^|[ ,])$o, --[a-z-]+=" <<<"$usage"; then
            arg=("$o" 1)
        else
            arg=("$o")
        fi
        run xl "$c" "${arg[@]}" -h
        [ "$RC" -eq 0 ] && [[ $OUT == "Usage: xl "* ]] || refused="$refused $c:${arg[*]}(rc $RC)"
    done
done
expect_eq "$refused" "" "options the help shows but the command refuses"

step "usage errors exit 2 (EXIT STATUS), naming the option as written"
grep -A3 '^=item B<2>' "$POD" | grep -q 'usage error' ||
    fail "xl-snapshot(1) EXIT STATUS has no 2 for usage errors"
usage2() {
    run xl "$@"
    [ "$RC" -eq 2 ] || fail_run "expected exit status 2 (usage error)"
    if [ "$(wc -l <<<"$ERR")" -ne 1 ] || [ -z "$ERR" ]; then
        fail_run "expected one line on stderr"
    fi
}
usage2 snapshot-create --name
expect_match "$ERR" "option \`--name' needs an argument" "--name without its argument"
usage2 snapshot-create --bogus vm1
expect_match "$ERR" "--bogus" "an unknown long option"
usage2 snapshot-list -q vm1
expect_match "$ERR" "\`-q'" "an unknown short option"
usage2 snapshot-revert
expect_match "$ERR" "domain and a snapshot name" "snapshot-revert without arguments"
expect_no_match "$ERR" "at least 1 argument" "snapshot-revert without arguments"
usage2 snapshot-revert vm1
usage2 snapshot-delete vm1
usage2 -x list
expect_match "$ERR" "\`-x'" "an unknown global option"
usage2 block-commit vm1
run xl snapshot-create -N -h
expect_eq "$RC" 0 "snapshot-create -N (the man page's option)"

step "xl help and the system xl"
cat > "$T/xen-xl" <<'XEOF'
#!/bin/bash
if [ "$*" = help ]; then
    printf '%s\n' 'Usage xl [-vfNtT] <subcommand> [args]' '' \
        'xl full list of subcommands:' '' \
        ' create              Create a domain from config file <filename>' \
        ' list                List information about all/some domains' \
        ' save                Save a domain state to restore later' \
        ' pci-assignable-remove ' \
        '                     Make a device unassignable for pci-passthru'
    exit 0
fi
printf '<%s>\n' "$@"
exit 42
XEOF
chmod +x "$T/xen-xl"
export XL_SNAPSHOT_SYSTEM_XL=$T/xen-xl
expect_ok xl help
expect_match "$OUT" "^ snapshot-create " "ours in xl help"
# as Xen's bash completion reads it
xen_view=$(sed '1,4d' <<<"$OUT" | awk '/^ [^ ]/ {print $1}' | tr '\n' ' ')
expect_match "$xen_view" "^snapshot-create .* save pci-assignable-remove \$" \
    "xl help's commands (ours, then the system xl's others)"
expect_eq "$(grep -c '^ list ' <<<"$OUT")" 1 "a command both have, listed once"
run xl -v help save
expect_eq "$RC" 42 "xl help save: the system xl's exit status"
expect_eq "$OUT" "<-v>
<help>
<save>" "xl help save: the system xl's argv"
run xl help nosuchcmd
expect_eq "$RC" 1 "xl help nosuchcmd"
expect_match "$ERR" "nosuchcmd" "its message"
expect_eq "$(wc -l <<<"$ERR")" 1 "one line"
expect_ok xl help snapshot-revert
expect_match "$OUT" "^Usage: xl .*snapshot-revert" "ours: our help"
echo "PASS: $TEST_NAME"
