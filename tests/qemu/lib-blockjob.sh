# shellcheck shell=bash
# lib-blockjob.sh - helpers shared by the block job tests (test-8*.sh)
#
# Source it after lib.sh:
#
#     . "$(dirname "$0")/lib.sh"
#     . "$(dirname "$0")/lib-blockjob.sh"
#
# (Not a test itself: tests/run-all.sh only runs test-*.sh.)
#
# The chain the tests build on a domain's xvda with build_chain (xvdb
# takes no part: snapshot=no), one pattern per layer at its own offset:
#
#   <D>-xvda.qcow2       base    A (0x11) at 0M+1M   s1's image
#   <D>-xvda.s1.qcow2            B (0x22) at 1M+1M   s2's image
#   <D>-xvda.s2.qcow2            C (0x33) at 2M+1M   s3's image
#   <D>-xvda.s3.qcow2    active  D (0x44) at 3M+1M
#
# so snapshot sN sees the first N layers and the active image all four.
#
#   start_domain D live|offline     make_vm_config D; xl create (and xl
#                                   destroy for offline); case_domain D
#   case_domain D                   in a soft case: if the case fails, D
#                                   is destroyed (and the background xl
#                                   BG_PID interrupted), so that a job
#                                   left running cannot disturb the
#                                   next cases
#   drop_domain D                   destroy D if it runs, remove its
#                                   images and records (so that the next
#                                   cases' check_images and fingerprint
#                                   do not go over them again)
#   build_chain D                   the chain above
#   img D [SNAP]                    $IMG/D-xvda[.SNAP].qcow2
#   read_patterns IMAGE FMT "BYTE OFF LEN"...   read_pattern of each,
#                                   in one qemu-io (FMT empty: probed)
#   expect_view IMAGE N             layers 1..N read back through IMAGE,
#                                   the others (and 4M+1M) are zero
#   chain_files IMAGE               backing chain, file names only
#   flush_disk D [VDEV]             a running QEMU writes its cached
#                                   metadata out (before reading its
#                                   images from outside after a live job)
#   expect_snapshot_view D SNAP N   revert to SNAP; it sees N layers
#   expect_snapshots_as_taken D     each snapshot sN still listed sees
#                                   N layers (reverts to each)
#   expect_no_job D [VDEV]          xl block-job finds no job; QEMU runs
#                                   none
#   job_field D VDEV FIELD          FIELD of `xl block-job --json`
#   wait_job_state D VDEV STATE [S] poll --json until STATE (S seconds;
#                                   OUT: the last --json)
#   now / elapsed T0                wall clock (s.ns), seconds since T0
#   expect_between X LO HI WHAT     LO <= X <= HI (decimals)
#   expect_job_output WANT WHAT     a waited-for job's stdout: WANT,
#                                   then its elapsed/throughput line
#   records_fingerprint             fingerprint of $STATE only
#   expect_records_unchanged FP WHAT
#   bg_start NAME CMD... / bg_wait SECS / bg_context NAME
#                                   CMD in the background (BG_PID), its
#                                   end awaited (BG_RC), its output

LAYER_BYTES=(0x11 0x22 0x33 0x44)
# shellcheck disable=SC2054  # the commas are in the arguments
EXT_A=(--diskspec xvda,snapshot=external --diskspec xvdb,snapshot=no)

case_domain() {
    CASE_DOMAIN=$1
    if [ "$BASHPID" != $$ ]; then
        trap case_exit EXIT
    fi
}

case_exit() {
    local rc=$?
    if [ -n "${BG_PID:-}" ] && kill -0 "$BG_PID" 2>/dev/null; then
        kill -INT "$BG_PID" 2>/dev/null
        wait "$BG_PID" 2>/dev/null
    fi
    if [ "$rc" -ne 0 ] && [ -n "${CASE_DOMAIN:-}" ] &&
       runtime_pid "$CASE_DOMAIN" >/dev/null; then
        timeout 20 "$XL" destroy "$CASE_DOMAIN" >/dev/null 2>&1
    fi
}

start_domain() {
    local d=$1 how=$2
    case_domain "$d"
    make_vm_config "$d"
    expect_ok xl create "$CFG"
    if [ "$how" = offline ]; then
        expect_ok xl destroy "$d"
        domain_running "$d" && fail "$d still running after xl destroy"
    fi
    return 0
}

drop_domain() {
    local d=$1 dir
    if runtime_pid "$d" >/dev/null; then
        expect_ok xl destroy "$d"
    fi
    dir=$(domain_dir "$d")
    rm -f "$IMG/$d"-* "$T/$d.cfg"
    rm -rf "$dir"
}

img() {
    if [ -n "${2:-}" ]; then
        echo "$IMG/$1-xvda.$2.qcow2"
    else
        echo "$IMG/$1-xvda.qcow2"
    fi
}

build_chain() {
    local d=$1 i
    write_pattern "$d" xvda "${LAYER_BYTES[0]}" 0 1M
    for i in 1 2 3; do
        expect_ok xl snapshot-create "${EXT_A[@]}" "$d" "s$i"
        write_pattern "$d" xvda "${LAYER_BYTES[$i]}" "${i}M" 1M
    done
    expect_eq "$(active_image "$d" xvda)" "$(img "$d" s3)" "$d's active xvda after build_chain"
    expect_eq "$(chain_files "$(img "$d" s3)")" \
"$(img "$d" s3)
$(img "$d" s2)
$(img "$d" s1)
$(img "$d")" "$d's xvda chain after build_chain"
}

read_patterns() {
    local image=$1 fmt=$2 spec byte off len n u=() args=() expected=() w
    shift 2
    [ -n "$fmt" ] || fmt=$(image_format "$image")
    [ -n "$fmt" ] || fail "read_patterns: cannot open $image"
    any_running && u=(-U)
    for spec in "$@"; do
        read -r byte off len <<<"$spec"
        n=$(to_bytes "$len")
        args+=(-c "read -P $byte $off $len")
        expected+=("read $n/$n bytes at offset $(to_bytes "$off")")
    done
    run qemu-io -r "${u[@]}" -f "$fmt" "${args[@]}" "$image"
    # (judged on the text, as read_pattern)
    if [[ $OUT$ERR == *"Pattern verification failed"* ]]; then
        fail_run "read_patterns: $image does not hold them all: $*"
    fi
    [ "$RC" -eq 0 ] || fail_run "read_patterns: qemu-io failed on $image"
    for w in "${expected[@]}"; do
        [[ $'\n'$OUT$'\n' == *$'\n'"$w"$'\n'* ]] ||
            fail_run "read_patterns: no '$w' from qemu-io on $image"
    done
}

expect_view() {
    local image=$1 n=$2 i specs=()
    for ((i = 0; i < n; i++)); do
        specs+=("${LAYER_BYTES[$i]} ${i}M 1M")
    done
    if [ "$n" -lt 4 ]; then
        specs+=("0 ${n}M $((4 - n))M")
    fi
    specs+=("0 4M 1M")
    read_patterns "$image" "" "${specs[@]}"
}

chain_files() {
    backing_chain "$1" | cut -f1
}

flush_disk() {
    local d=$1 vdev=${2:-xvda}
    runtime_pid "$d" >/dev/null || return 0
    expect_ok xl qemu-monitor-command "$d" "qemu-io $vdev \"flush\""
}

expect_snapshot_view() {
    local d=$1 snap=$2 n=$3
    expect_ok xl snapshot-revert "$d" "$snap"
    expect_view "$(active_image "$d" xvda)" "$n"
}

expect_snapshots_as_taken() {
    local d=$1 s names
    expect_ok xl snapshot-list --name "$d"
    names=$OUT
    for s in $names; do
        expect_snapshot_view "$d" "$s" "${s#s}"
    done
}

expect_no_job() {
    local d=$1 vdev=${2:-xvda}
    expect_error "has no block job" xl block-job --info "$d" "$vdev"
    if runtime_pid "$d" >/dev/null; then
        expect_ok xl qemu-monitor-command "$d" "info block-jobs"
        expect_eq "${OUT//$'\r'/}" "No active jobs" "QEMU's block jobs of $d"
    fi
}

job_field() {
    local d=$1 vdev=$2 field=$3
    expect_ok xl block-job --json "$d" "$vdev"
    jq -e . >/dev/null 2>&1 <<<"$OUT" ||
        fail_run "xl block-job --json is not JSON"
    jq -r --arg f "$field" '.[$f]' <<<"$OUT"
}

wait_job_state() {
    local d=$1 vdev=$2 want=$3 secs=${4:-20} t0 st
    t0=$(now)
    while :; do
        # (no job yet: the command that starts it may still be planning)
        run xl block-job --json "$d" "$vdev"
        st=none
        [ "$RC" -eq 0 ] && st=$(jq -r .state <<<"$OUT" 2>/dev/null)
        [ "$st" = "$want" ] && return 0
        if awk -v e="$(elapsed "$t0")" -v s="$secs" 'BEGIN {exit !(e > s)}'; then
            fail "job on $d $vdev not $want within ${secs}s (last state: $st)" \
                "$(run_context)"
        fi
        sleep 0.2
    done
}

now() {
    date +%s.%N
}

elapsed() {
    awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.2f\n", b - a}'
}

expect_between() {
    local x=$1 lo=$2 hi=$3 what=$4
    awk -v x="$x" -v lo="$lo" -v hi="$hi" 'BEGIN {exit !(x >= lo && x <= hi)}' &&
        return 0
    fail "$what: $x is not within [$lo, $hi]"
}

records_fingerprint() {
    FP_DIRS=state FP_NAMES_ONLY='' fingerprint
}

expect_records_unchanged() {
    FP_DIRS=state FP_NAMES_ONLY='' expect_unchanged "$@"
}


expect_job_output() {
    local want=$1 what=$2 last
    last=$(tail -n 1 <<<"$OUT")
    [[ $last =~ ^Block\ (commit|stream|copy):\ [0-9.]+\ MiB\ in\ [0-9.]+\ s\ \([0-9.]+\ MiB/s\)$ ]] ||
        fail "$what: no elapsed and throughput line at the end: '$last'"
    expect_eq "$(sed '$d' <<<"$OUT")" "$want" "$what"
}

# bg_start NAME CMD...: CMD in the background (not under `xl`'s time
# limit, so that a signal reaches xl itself); BG_PID, output in
# $T/NAME.out and $T/NAME.err.  Interrupted if the case fails
# (case_exit).
bg_start() {
    local name=$1
    shift
    "$@" >"$T/$name.out" 2>"$T/$name.err" &
    BG_PID=$!
    BG_PIDS="${BG_PIDS:-} $BG_PID"
}

# bg_wait SECS: waits for BG_PID to end; BG_RC its status (or "alive")
bg_wait() {
    local secs=$1 i
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$BG_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$BG_PID" 2>/dev/null; then
        BG_RC=alive
        return 0
    fi
    wait "$BG_PID"
    BG_RC=$?
}

bg_context() {
    printf 'exit status: %s\nstdout:\n%s\nstderr:\n%s\n' "$BG_RC" \
        "$(indent < "$T/$1.out")" "$(indent < "$T/$1.err")"
}
