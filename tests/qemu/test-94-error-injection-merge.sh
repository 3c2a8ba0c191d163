#!/bin/bash
# test-94-error-injection.sh - every write, QMP command and tool run
# fails in turn, and the operation goes through its error path
#
# XL_SNAPSHOT_FAULT=io:N[:eio] makes the N-th I/O point of one xl
# command fail (a record or journal write with ENOSPC or EIO, a QMP
# command refused by QEMU, an external tool exiting 1): see
# libxl_snapshot_journal.c.  For create (offline, live, live with
# memory), revert (offline, live, to a memory checkpoint), delete (an
# intermediate commit live, an active commit with a pivot live, the
# same offline) and block-commit (live, offline), N runs from 1 until
# the command gets through with nothing injected.  After each failure:
#  - the command said so: exit status non-zero, at least one
#    "libxl-snapshot: error:" line, and no line printed twice; a command
#    that got through all the same (it could do without what failed: a
#    journal update, a re-parenting or a leftover's removal it warns
#    of) printed no error line, nor did the recovery (issue 14, B);
#  - the next command completes or undoes what it left (snapshot-recover
#    exits 0), and snapshot-check then finds records and images agree;
#  - the domain is wholly old or wholly new: both disks hold the data of
#    one state (for a revert: the one before or the target's);
# and at the end of each case every listed snapshot reverts to its own
# data.  Prints the number of failure points exercised.
# run-all: beside
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

MAX_POINTS=80
declare -A DATA                # "domain/snapshot" -> byte it holds

# injected D MODE CMD...: CMD with the N-th I/O point failing, N from
# the caller's loop variable n.  Sets RC and IRC (its exit status),
# OUT, ERR (without the injection's own line) and HIT (1 if a fault was
# injected).
injected() {
    local mode=$1
    shift
    run env XL_SNAPSHOT_FAULT=io:$n$mode "$@"
    IRC=$RC
    HIT=0
    if grep -q '^libxl-snapshot: fault injected: ' <<<"$ERR"; then
        HIT=1
        echo x >>"$T/points"     # cases run in subshells (soft_case)
        ERR=$(grep -v '^libxl-snapshot: fault injected: ' <<<"$ERR")
    fi
}

# failed_cleanly WHAT: after an injected failure, the error was said;
# and a command that got through anyway said no error
failed_cleanly() {
    local dup
    if [ "$RC" -ne 0 ]; then
        grep -q '^libxl-snapshot: error: ' <<<"$ERR" ||
            fail_run "$1 at io point $n: no error line"
    elif grep -q '^libxl-snapshot: error: ' <<<"$ERR"; then
        fail_run "$1 at io point $n: an error line, yet exit status 0"
    fi
    dup=$(grep -v '^\s*$' <<<"$ERR" | sort | uniq -d)
    [ -z "$dup" ] || fail_run "$1 at io point $n: a line printed twice: $dup"
}

# settled D: recovery (which says no error: it exits 0), then records
# and images agree
settled() {
    expect_ok xl snapshot-recover "$1"
    expect_no_match "$ERR" '^libxl-snapshot: error: ' "snapshot-recover"
    expect_ok xl snapshot-check "$1"
}

# disks_hold D BYTE...: both disks hold one of the BYTEs (the same one)
disks_hold() {
    local d=$1 b
    shift
    for b in "$@"; do
        if read_pattern_quiet "$(active_image "$d" xvda)" "$b" &&
           read_pattern_quiet "$(active_image "$d" xvdb)" "$b"; then
            HELD=$b
            return 0
        fi
    done
    fail "$d at io point $n: the disks hold none of $* wholly (half reverted?)"
}

read_pattern_quiet() {
    local img=$1 byte=$2 fmt u=()
    fmt=$(image_format "$img") || return 1
    any_running && u=(-U)
    qemu-io "${u[@]}" -r -f "$fmt" -c "read -P $byte 0 1M" "$img" 2>&1 |
        grep -q '^read ' || return 1
    ! qemu-io "${u[@]}" -r -f "$fmt" -c "read -P $byte 0 1M" "$img" 2>&1 |
        grep -q 'Pattern verification failed'
}

# every_snapshot_reverts D: each listed snapshot of D reverts to its data
every_snapshot_reverts() {
    local d=$1 s names k=0 disks vdev
    expect_ok xl snapshot-list --name "$d"
    names=$OUT
    for s in $names; do
        [ -n "${DATA[$d/$s]:-}" ] ||
            fail "$d: snapshot $s is listed, but was never taken"
        expect_ok xl snapshot-revert "$d" "$s"
        # the disks the snapshot still covers (a part it keeps alone
        # after its data elsewhere was merged away: "xvdb:no")
        expect_ok xl snapshot-list "$d"
        disks=$(awk -v s="$s" '$1 == s {for (i = 2; i <= NF; i++)
                    if ($i ~ /xvd[a-z]:/) print $i}' <<<"$OUT" |
                tr ',' '\n' | grep -v ':no$' | cut -d: -f1)
        [ -n "$disks" ] || fail "$d: snapshot $s covers no disk"
        for vdev in $disks; do
            read_pattern "$(active_image "$d" "$vdev")" "${DATA[$d/$s]}" 0 1M
        done
        k=$((k + 1))
    done
    expect_ok xl snapshot-check "$d"
    step "  $d: all $k listed snapshots revert to their own data"
}

# through D WHAT: false while a fault was injected; else the command
# must have succeeded, and every listed snapshot of D reverts to its data
through() {
    [ "$HIT" = 0 ] || return 1
    [ "$IRC" -eq 0 ] || fail "$2 with nothing injected failed"
    step "  $1: $2: $((n - 1)) failure points"
    every_snapshot_reverts "$1"
}

# ---------------------------------------------------------------- create
# create_case D OPTS...: snapshot-create c<N> with every point failing
create_case() {
    local d=$1 byte
    shift
    for ((n = 1; n <= MAX_POINTS; n++)); do
        byte=$(printf '0x%02x' $((0x30 + n)))
        write_disks "$d" "$byte"
        injected "${MODE:-}" "$XL" snapshot-create "$@" "$d" "c$n"
        failed_cleanly "snapshot-create $*"
        settled "$d"
        disks_hold "$d" "$byte"
        expect_ok xl snapshot-list --name "$d"
        grep -qx "c$n" <<<"$OUT" && DATA[$d/c$n]=$byte
        through "$d" "create $*" && return 0
    done
    fail "$d: snapshot-create never got through"
}

# ---------------------------------------------------------------- revert
# revert_case D TARGET OLD: snapshot-revert to TARGET (holding
# DATA[D/TARGET]) from disks holding OLD, with every point failing
revert_case() {
    local d=$1 target=$2 old=$3 new
    new=${DATA[$d/$target]}
    for ((n = 1; n <= MAX_POINTS; n++)); do
        write_disks "$d" "$old"
        injected "" "$XL" snapshot-revert "$d" "$target"
        failed_cleanly "snapshot-revert $target"
        settled "$d"
        disks_hold "$d" "$old" "$new"
        [ "$IRC" -ne 0 ] || [ "$HELD" = "$new" ] ||
            fail_run "$d: snapshot-revert said it reverted, but the disks hold $HELD"
        through "$d" "revert to $target" && return 0
    done
    fail "$d: snapshot-revert never got through"
}

# ---------------------------------------------------------------- delete
# delete_case D a|b: snapshot-delete of a<N> (its child's image is
# committed into its own) or b<N> (the active overlay into b's), every
# point failing
delete_case() {
    local d=$1 v=$2 x b1 b2 b3
    for ((n = 1; n <= MAX_POINTS; n++)); do
        x=$v$n
        b1=$(printf '0x%02x' $((0x50 + n)))
        b2=$(printf '0x%02x' $((0x90 + n)))
        b3=$(printf '0x%02x' $((0xd0 + n % 32)))
        write_disks "$d" "$b1"
        expect_ok xl snapshot-create "$d" "a$x"
        DATA[$d/a$x]=$b1
        write_disks "$d" "$b2"
        expect_ok xl snapshot-create "$d" "b$x"
        DATA[$d/b$x]=$b2
        write_disks "$d" "$b3"
        injected "" "$XL" snapshot-delete "$d" "$v$x"
        failed_cleanly "snapshot-delete $v$x"
        settled "$d"
        disks_hold "$d" "$b3"
        through "$d" "delete $v" && return 0
        # keep the tree small: the pair goes (the delete of one of them
        # may already have happened)
        for s in "b$x" "a$x"; do
            expect_ok xl snapshot-list --name "$d"
            grep -qx "$s" <<<"$OUT" || continue
            expect_ok xl snapshot-delete "$d" "$s"
        done
        settled "$d"
        disks_hold "$d" "$b3"
    done
    fail "$d: snapshot-delete never got through"
}

# ---------------------------------------------------------------- commit
# commit_case D: block-commit of xvdb's active overlay (live: with a
# pivot) into the image under it, every point failing
commit_case() {
    local d=$1 live=$2 b1 b2 args
    for ((n = 1; n <= MAX_POINTS; n++)); do
        b1=$(printf '0x%02x' $((0x60 + n)))
        b2=$(printf '0x%02x' $((0xa0 + n)))
        write_disks "$d" "$b1"
        expect_ok xl snapshot-create "$d" "k$n"
        DATA[$d/k$n]=$b1
        write_disks "$d" "$b2"
        args=(block-commit --active --delete "$d" xvdb)
        [ "$live" = 1 ] && args=(block-commit --active --pivot --delete "$d" xvdb)
        injected "" "$XL" "${args[@]}"
        failed_cleanly "${args[*]}"
        settled "$d"
        disks_hold "$d" "$b2"
        # a commit into k<N>'s image changes k<N>'s data: the snapshot
        # must then be gone from the list (the records say what is true),
        # or kept for its other disk alone when its part there could not
        # be removed (then it must revert there to its data)
        expect_ok xl snapshot-list --name "$d"
        grep -qx "k$n" <<<"$OUT" || unset "DATA[$d/k$n]"
        through "$d" "${args[*]}" && return 0
    done
    fail "$d: block-commit never got through"
}

create_offline() {
    make_vm_config vca
    expect_ok xl create "$CFG"      # the records remember its config
    expect_ok xl destroy vca
    create_case vca
}
create_live() {
    make_vm_config vcb
    expect_ok xl create "$CFG"
    create_case vcb
}
create_live_eio() {
    make_vm_config vcd
    expect_ok xl create "$CFG"
    MODE=:eio create_case vcd
}
create_memory() {
    make_vm_config vcc
    expect_ok xl create "$CFG"
    create_case vcc --live --memory
}
revert_live() {
    make_vm_config vra
    expect_ok xl create "$CFG"
    write_disks vra 0x21
    expect_ok xl snapshot-create vra r1
    DATA[vra/r1]=0x21
    revert_case vra r1 0x22
}
revert_offline() {
    make_vm_config vrb
    expect_ok xl create "$CFG"
    expect_ok xl destroy vrb
    write_disks vrb 0x23
    expect_ok xl snapshot-create vrb r1
    DATA[vrb/r1]=0x23
    revert_case vrb r1 0x24
}
revert_memory() {
    make_vm_config vrc
    expect_ok xl create "$CFG"
    write_disks vrc 0x25
    expect_ok xl snapshot-create --memory vrc m1
    DATA[vrc/m1]=0x25
    revert_case vrc m1 0x26
}
delete_live_intermediate() {
    make_vm_config vda
    expect_ok xl create "$CFG"
    delete_case vda a
}
delete_live_active() {
    make_vm_config vdb
    expect_ok xl create "$CFG"
    delete_case vdb b
}
delete_offline() {
    make_vm_config vdc
    expect_ok xl create "$CFG"
    expect_ok xl destroy vdc
    delete_case vdc a
}
commit_live() {
    make_vm_config vma
    expect_ok xl create "$CFG"
    commit_case vma 1
}
commit_offline() {
    make_vm_config vmb
    expect_ok xl create "$CFG"
    expect_ok xl destroy vmb
    commit_case vmb 0
}

# Two halves, each one test under run-all's time limit: this script runs
# create and revert; test-94-error-injection-merge.sh (a link to it)
# runs delete and block-commit.
case "$0" in
*-merge.sh)
    cases=${XL_SNAPSHOT_TEST_CASES:-delete_offline delete_live_intermediate
        delete_live_active commit_offline commit_live} ;;
*)
    cases=${XL_SNAPSHOT_TEST_CASES:-create_offline create_live create_live_eio
        create_memory revert_offline revert_live revert_memory} ;;
esac
for c in $cases; do
    soft_case "$c" "$c"
done
echo "failure points exercised: $(cat "$T/points" 2>/dev/null | wc -l)"
finish
