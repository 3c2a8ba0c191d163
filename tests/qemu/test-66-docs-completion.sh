#!/bin/bash
# test-66-docs-completion.sh - the man pages and the bash completion
# follow the program
#
#  - xl-snapshot(1) documents every subcommand `xl help` lists, and
#    every option `xl help CMD` shows; the three pages render with man
#    without warnings (groff -ww);
#  - the completion (scripts/bash-completion/xl-snapshot), sourced and
#    driven as bash drives it (COMP_WORDS/COMP_CWORD), as xl-snapshot
#    and as xl: subcommands, options, domain names, snapshot names
#    (snapshot-dumpxml too), disks for block-*, config paths, option
#    values skipped; a subcommand that is not ours, and an xl that is
#    Xen's own, go to Xen's _xl (loaded lazily; ours stays registered);
#  - the same in a real interactive bash under tmux, with bash-completion
#    loading our file as completions/xl (as `make install
#    INSTALL_AS_XL=y` puts it) and Xen's completions/xl beside it.
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
# as bash runs it: the xl in $PATH, not lib.sh's xl function (call it
# in $(...), or put that function back after)
complete_words() {
    unset -f xl
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

step "bash completion for xl: snapshot names, disks, Xen's commands"
ln -s "$XL" "$T/bin/xl"
expect_eq "$(complete_words xl snapshot-dumpxml vm1 '')" \
    "before-upgrade nightly" "snapshot-dumpxml DOM <TAB>"
expect_eq "$(complete_words xl block-commit vm1 '')" "xvda xvdb" \
    "block-commit DOM <TAB>: the disks"
expect_eq "$(complete_words xl snapshot-diff vm1 '')" \
    "before-upgrade nightly" "snapshot-diff DOM <TAB>: FROM"
expect_eq "$(complete_words xl snapshot-diff vm1 before-upgrade '')" \
    "now before-upgrade nightly" "snapshot-diff DOM FROM <TAB>: TO, or now"
expect_eq "$(complete_words xl snapshot-diff vm1 before-upgrade --disk '')" \
    "xvda xvdb" "snapshot-diff --disk <TAB>: the disks"
expect_eq "$(complete_words xl snapshot-diff vm1 --disk = x)" \
    "xvda xvdb" "snapshot-diff --disk=<TAB>: the disks"
expect_eq "$(complete_words xl snapshot-diff --disk xvda vm1 '')" \
    "before-upgrade nightly" "snapshot-diff --disk VDEV DOM <TAB>: FROM"
expect_ok xl checkpoint-create vm1 weekly
expect_eq "$(complete_words xl snapshot-diff vm1 w)" "weekly" \
    "snapshot-diff DOM <TAB>: a checkpoint too"
expect_eq "$(complete_words xl snapshot-diff vm1 weekly '')" \
    "now before-upgrade nightly weekly" "snapshot-diff DOM FROM <TAB>"
expect_eq "$(complete_words xl block-job --abort vm1 xvd)" "xvda xvdb" \
    "block-job --abort DOM <TAB>"
expect_eq "$(complete_words xl snapshot-revert -n nightly v)" "vm1 vm2" \
    "after -n NAME, the domain"
expect_eq "$(complete_words xl snapshot-revert --name = nightly v)" "vm1 vm2" \
    "after --name=NAME, the domain"
expect_eq "$(complete_words xl snapshot-create --quiesce = try v)" "vm1 vm2" \
    "after --quiesce=try (an optional value), the domain"
expect_eq "$(complete_words xl snapshot-create --diskspec = "$T/vm1.c")" \
    "$T/vm1.cfg" "an option's value: a file"
expect_ok xl destroy vm1
expect_eq "$(complete_words xl block-stream vm1 '')" "xvda xvdb" \
    "block-stream on a shut-off domain: the disks of its records"

# Xen's side: a system xl with Xen's help format, and a stand-in of
# Xen's completion file (its _xl says where it was called)
cat > "$T/xen-xl" <<'XEOF'
#!/bin/bash
if [ "$*" = help ]; then
    printf '%s\n' 'Usage xl [-vfNtT] <subcommand> [args]' '' \
        'xl full list of subcommands:' '' \
        ' create              Create a domain from config file <filename>' \
        ' save                Save a domain state to restore later' \
        ' sched-credit        Get/set credit scheduler parameters'
    exit 0
fi
exit 42
XEOF
chmod +x "$T/xen-xl"
cat > "$T/xen-completion" <<'XEOF'
_xl() { COMPREPLY=("xen:${COMP_WORDS[1]}:$COMP_CWORD"); }
complete -F _xl -o nospace -o default xl xen
XEOF
export XL_SNAPSHOT_SYSTEM_XL=$T/xen-xl XL_SNAPSHOT_XEN_COMPLETION=$T/xen-completion
expect_eq "$(complete_words xl s)" "snapshot-create snapshot-list snapshot-info snapshot-dumpxml snapshot-check snapshot-chain snapshot-diff snapshot-recover snapshot-current snapshot-delete snapshot-revert snapshot-export-records snapshot-import-records save sched-credit" \
    "subcommands: ours and the system xl's"
# in this shell, not a $(...) one: Xen's completion is loaded here
complete -F _xl_snapshot xl
lib_xl=$(declare -f xl)
unset -f xl     # lib.sh's xl function: here the xl in $PATH
complete_words xl -v save vm2 '' > "$T/completed"
eval "$lib_xl"
expect_eq "$(<"$T/completed")" "xen:-v:4" "a Xen subcommand: Xen's _xl"
declare -F _xl >/dev/null || fail "Xen's completion was not loaded"
expect_match "$(complete -p xl)" "-F _xl_snapshot xl\$" "ours still registered for xl"
expect_eq "$(complete_words xl snapshot-info vm1 '')" "before-upgrade nightly" \
    "ours after Xen's was loaded"
unset -f _xl
ln -sf "$T/xen-xl" "$T/bin/xl"
expect_eq "$(complete_words xl snapshot-info vm2 '')" "xen:snapshot-info:3" \
    "an xl that is Xen's own: Xen's _xl for everything"
ln -sf "$XL" "$T/bin/xl"

step "an interactive bash under tmux, with bash-completion"
command -v tmux >/dev/null || fail "tmux is not installed (scripts/install-deps.sh)"
BC=/usr/share/bash-completion/bash_completion
[ -f "$BC" ] || fail "bash-completion is not installed"
mkdir -p "$T/bc/completions"
cp "$REPO/scripts/bash-completion/xl-snapshot" "$T/bc/completions/xl"
cat > "$T/bashrc" <<BEOF
PS1='\$ '
unset HISTFILE
export PATH=$T/bin:\$PATH BASH_COMPLETION_USER_DIR=$T/bc
. $BC
BEOF
TMUX_SOCK=$T/tmux.sock
at_cleanup "tmux -S '$TMUX_SOCK' kill-server 2>/dev/null"
tmux_case=0
# wait_prompt S: until session S's screen is the prompt alone (60 s at
# most)
wait_prompt() {
    local i
    for ((i = 0; i < 300; i++)); do
        [ "$(tmux -S "$TMUX_SOCK" capture-pane -t "$1" -p | sed '/^$/d')" = '$' ] &&
            return 0
        sleep 0.2
    done
    fail "the interactive bash shows no prompt: $(tmux -S "$TMUX_SOCK" capture-pane -t "$1" -p)"
}
# tmux_complete KEYS TABS ERE WHAT: in a new interactive bash, at the
# prompt, type KEYS then TABS (Tab, or Tab Tab to list); the screen must
# match ERE within 60 s.  A bash per case: no key ever lands in one
# that is still busy with the previous case.
tmux_complete() {
    local keys=$1 tabs=$2 ere=$3 what=$4 screen i s
    tmux_case=$((tmux_case + 1))
    s=c$tmux_case
    tmux -S "$TMUX_SOCK" -f /dev/null new-session -d -s "$s" -x 200 -y 50 \
        "env -u XL_SNAPSHOT_XEN_COMPLETION HOME=$T TERM=xterm bash --rcfile $T/bashrc -i" ||
        fail "tmux new-session failed"
    wait_prompt "$s"
    tmux -S "$TMUX_SOCK" send-keys -t "$s" -l "$keys"
    # shellcheck disable=SC2086
    tmux -S "$TMUX_SOCK" send-keys -t "$s" $tabs
    for ((i = 0; i < 300; i++)); do
        screen=$(tmux -S "$TMUX_SOCK" capture-pane -t "$s" -p)
        grep -qE -- "$ere" <<<"$screen" && break
        sleep 0.2
    done
    tmux -S "$TMUX_SOCK" kill-session -t "$s"
    expect_match "$screen" "$ere" "$what (tmux screen)"
}
tmux_complete "xl snapshot-dumpx" Tab '^\$ xl snapshot-dumpxml *$' "xl snapshot-dumpx<TAB>"
tmux_complete "xl snapshot-dumpxml vm1 " "Tab Tab" 'before-upgrade +nightly' "xl snapshot-dumpxml vm1 <TAB><TAB>"
tmux_complete "xl block-commit vm2 xvd" "Tab Tab" 'xvda +xvdb' "xl block-commit vm2 xvd<TAB><TAB>"
tmux_complete "xl snapshot-revert --f" Tab '^\$ xl snapshot-revert --force *$' "an option"
tmux_complete "xl sav" Tab '^\$ xl save *$' "a subcommand of the system xl"
tmux_complete "xl save vm2 $T/vm2.c" Tab "^\\$ xl save vm2 $T/vm2.cfg" \
    "a Xen subcommand's argument: Xen's completion (file names)"
step "no merge conflict left in the tree's text"
run grep -rnE '^(<<<<<<< |=======$|>>>>>>> )' --include='*.md' \
    --include='*.pod' --include='*.c' --include='*.h' --include='*.sh' \
    --include=Makefile --include='*.mk' "$REPO/README.md" "$REPO/docs" \
    "$REPO/libxl-snapshot" "$REPO/xl" "$REPO/tests" "$REPO/scripts" \
    "$REPO/Makefile" "$REPO/Config.mk" "$REPO/debian"
[ "$RC" -eq 1 ] || fail_run "conflict markers in the tree"
echo "PASS: $TEST_NAME"
