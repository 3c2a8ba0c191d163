# lib.sh - helpers for the real-QEMU tests (tests/qemu/test-*.sh)
#
# Source it first thing:
#
#     . "$(dirname "$0")/lib.sh"
#
# It needs bash, and sets up:
#
#   T       a fresh per-test directory (mktemp -d), removed on exit
#           (kept when XL_SNAPSHOT_TEST_KEEP=1, or printed on failure
#           when XL_SNAPSHOT_TEST_KEEP=fail)
#   IMG     $T/img, where the disk images go
#   STATE   $T/state (exported as XL_SNAPSHOT_STATE_DIR)
#   RUN     $T/run   (exported as XL_SNAPSHOT_RUN_DIR)
#   XL      the test build of the front end (<repo>/build/test/xl/xl:
#           its library has the fault injection, XL_SNAPSHOT_FAULT,
#           that the release one has not), run from a private copy in
#           $T/build with that library beside it
#   XL_SNAPSHOT_DRIVER=qemu, and XL_SNAPSHOT_SYSTEM_XL pointing at a
#   stub that fails loudly, so no test ever reaches a real Xen xl.
#
# An EXIT trap destroys every domain still running (xl destroy, then
# SIGKILL to any QEMU whose runtime file is still in $RUN) and removes
# $T.  A test skips (exit 77) when QEMU, qemu-img, qemu-io, jq or flock
# is missing.  Each xl call made through `xl` has a time limit
# (XL_CMD_TIMEOUT, 60 s).
#
# Assertions print one "FAIL: <test>:<line>: <what>" line (<line> in
# the test script), then the context (command, exit status, stdout,
# stderr), and exit 1.
#
#   run CMD...            runs CMD; sets RC, OUT (stdout), ERR (stderr)
#   expect_ok CMD...      CMD must exit 0
#   expect_fail CMD...    CMD must exit exactly 1 with exactly one
#                         (non-empty) line on stderr
#   expect_error ERE CMD...   as expect_fail, and that line starts
#                         "libxl-snapshot: error: " and matches ERE
#   expect_match TEXT ERE [WHAT]     / expect_no_match TEXT ERE [WHAT]
#   expect_eq ACTUAL EXPECTED [WHAT]
#   expect_file F / expect_no_file F
#   xl ARGS...            $XL under a time limit (for use inside run)
#   make_vm_config NAME [LINE...]    images + config for a 2-disk domain
#   domain_running D      true if `xl list` shows D
#   runtime_pid [D]       pid of D's (any domain's) live QEMU, from the
#                         runtime files; any_running: is there one
#   domain_uuid D         uuid of D (running or known to the state dir)
#   domain_dir D          $STATE/<uuid of D>
#   active_image D VDEV   the image the disk runs on / would boot from
#   write_pattern D VDEV BYTE OFFSET LEN   guest write (via HMP qemu-io,
#                         then flush); on a shut-off domain, qemu-io on
#                         its active image
#   write_disks D BYTE    both disks (xvda, xvdb) of D: BYTE at 0+1M
#   expect_disks D BYTE   both disks' active images hold BYTE at 0+1M
#   read_pattern IMAGE BYTE OFFSET LEN [FMT]   data check from outside
#                         (LEN: bytes or K/M/G; -U while QEMUs run)
#   image_format IMAGE    qcow2, raw...
#   check_images [DIR]    qemu-img check on every qcow2 image in DIR
#   backing_chain IMAGE   "filename<TAB>format" per image, top first
#   internal_snapshots IMAGE         qcow2 snapshot names, one a line
#   expect_no_orphans D VDEV...      no image in $IMG that nothing uses
#   fingerprint           listing + checksums of $STATE, $IMG and the
#                         runtime files, for "nothing changed" checks
#                         (FP_DIRS, FP_NAMES_ONLY: what it covers)
#   expect_unchanged FP WHAT         compares with a saved fingerprint
#   refused ERE CMD...   as expect_error, and nothing changed (fingerprint)
#   step TEXT             progress line
#   soft_case NAME FUNC   run FUNC; on failure report and go on; then
#   finish                exits 1 if any soft case failed, else 0
#   at_cleanup CMD        extra cleanup (before $T is removed)

set -u

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$LIB_DIR/../.." && pwd)
XL=$REPO/build/test/xl/xl
XL_LIB=$REPO/build/test/libxl-snapshot/libxlsnapshot.so.1
TEST_NAME=$(basename "$0" .sh)
# Time limit for one xl command: generous, but far below the suite's.
XL_CMD_TIMEOUT=${XL_CMD_TIMEOUT:-60}
ABORT_PID=$$                # the shell that fail stops (see soft_case)

step() {
    echo "--- $TEST_NAME: $*"
}

skip() {
    echo "SKIP: $TEST_NAME: $*"
    exit 77
}

# fail WHAT [CONTEXT]: CONTEXT is multi-line text, printed indented.
# The line reported is the test script's line that led here (helpers
# in lib*.sh files, such as lib-blockjob.sh, are skipped too).
fail() {
    local what=$1 ctx=${2:-} i where="?" src
    for ((i = 0; i < ${#BASH_SOURCE[@]} - 1; i++)); do
        src=${BASH_SOURCE[$((i + 1))]}
        if [ "$src" != "${BASH_SOURCE[0]}" ] && [[ ${src##*/} != lib*.sh ]]; then
            where=${BASH_LINENO[$i]}
            break
        fi
    done
    echo "FAIL: $TEST_NAME:$where: $what" >&2
    [ -z "$ctx" ] || printf '%s\n' "$ctx" | sed 's/^/    /' >&2
    # in a $(...) subshell: make the test (or the soft case) stop too
    [ "$BASHPID" = "$ABORT_PID" ] || kill -USR1 "$ABORT_PID"
    exit 1
}

indent() {
    sed 's/^/        | /'
}

# The last command's context, for fail.
run_context() {
    printf 'command: %s\n' "$LAST_CMD"
    printf 'exit status: %s\n' "$RC"
    if [ -n "$OUT" ]; then echo "stdout:"; printf '%s\n' "$OUT" | indent
    else echo "stdout: (empty)"; fi
    if [ -n "$ERR" ]; then echo "stderr:"; printf '%s\n' "$ERR" | indent
    else echo "stderr: (empty)"; fi
}

fail_run() {
    fail "$1" "$(run_context)"
}

# ------------------------------------------------------------ setup

for tool in qemu-system-x86_64 qemu-img qemu-io jq flock timeout; do
    command -v "$tool" >/dev/null 2>&1 || skip "$tool not found"
done
if [ ! -x "$XL" ] || [ ! -f "$XL_LIB" ]; then
    fail "$XL is not built (run make first)"
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/xlsnap-$TEST_NAME.XXXXXX") ||
    fail "mktemp -d failed"

# The test runs a private copy of the front end and the library, laid
# out as in the tree (xl's RUNPATH is $ORIGIN/../libxl-snapshot): a
# rebuild in the tree while the test runs cannot change them under it.
mkdir -p "$T/build/xl" "$T/build/libxl-snapshot"
if ! cp "$XL" "$T/build/xl/xl" ||
   ! cp "$XL_LIB" "$T/build/libxl-snapshot/"; then
    fail "cannot copy the built xl and library to $T/build"
fi
XL=$T/build/xl/xl
IMG=$T/img
STATE=$T/state
RUN=$T/run
mkdir -p "$IMG" "$STATE" "$RUN"

export XL_SNAPSHOT_DRIVER=qemu
export XL_SNAPSHOT_STATE_DIR=$STATE
export XL_SNAPSHOT_RUN_DIR=$RUN
# Chains as long as a test makes them (crash-point loops take dozens
# of snapshots of one disk, and xvdb, raw, gets an overlay each time):
# the limit (max_chain, default 16) has its own test, test-105, which
# unsets this.
export XL_SNAPSHOT_MAX_CHAIN=1000
unset XL_SNAPSHOT_LOCK_TIMEOUT
cat > "$T/system-xl" <<'EOF'
#!/bin/sh
echo "test: unexpected call of the system xl: $*" >&2
exit 3
EOF
chmod +x "$T/system-xl"
export XL_SNAPSHOT_SYSTEM_XL=$T/system-xl

# pids of the QEMUs whose runtime files are in $RUN
all_runtime_pids() {
    local f
    for f in "$RUN"/qemu-dm-*.libxl-json; do
        [ -f "$f" ] || continue
        jq -r '.pid // empty' "$f" 2>/dev/null
    done
}

# true if pid is alive and a process started for this test's run dir
our_qemu() {
    local pid=$1
    [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF "$RUN/"
}

cleanup() {
    local rc=$? d pid
    trap - EXIT
    if [ -d "$RUN" ]; then
        # a test may have left a QEMU stopped (SIGSTOP)
        for pid in $(all_runtime_pids); do
            our_qemu "$pid" && kill -CONT "$pid" 2>/dev/null
        done
        for d in $(timeout 20 "$XL" list 2>/dev/null | awk 'NR > 1 {print $1}'); do
            timeout 20 "$XL" destroy "$d" >/dev/null 2>&1
        done
        for pid in $(all_runtime_pids); do
            if our_qemu "$pid"; then
                kill -9 "$pid" 2>/dev/null
            fi
        done
    fi
    # background helpers a test registered
    for pid in ${BG_PIDS:-}; do
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    local c
    for c in "${CLEANUP_CMDS[@]}"; do
        eval "$c"
    done
    if [ "${XL_SNAPSHOT_TEST_KEEP:-}" = 1 ] ||
       { [ "${XL_SNAPSHOT_TEST_KEEP:-}" = fail ] && [ "$rc" -ne 0 ]; }; then
        echo "$TEST_NAME: kept $T" >&2
    else
        rm -rf "$T"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'exit 1' USR1          # fail in a subshell

# at_cleanup CMD: run CMD (with eval) at exit, after the domains are
# destroyed and before $T is removed (umount, for instance).
CLEANUP_CMDS=()
at_cleanup() {
    CLEANUP_CMDS+=("$1")
}

# mount_tmpfs DIR SIZE: a tmpfs of SIZE mounted on DIR (made); false,
# with a "skipped" note, when it cannot be mounted.  The caller unmounts
# it (at_cleanup, from the test's top level).
mount_tmpfs() {
    mkdir -p "$1"
    mount -t tmpfs -o size="$2" tmpfs "$1" 2>"$T/mount.err" && return 0
    echo "    (skipped: cannot mount a tmpfs: $(head -n 1 "$T/mount.err"))"
    return 1
}

# ------------------------------------------------------------ running

xl() {
    timeout -k 5 "$XL_CMD_TIMEOUT" "$XL" "$@"
}

# run CMD...: RC, OUT, ERR.  Never fails by itself.
run() {
    LAST_CMD=$(printf '%q ' "$@")
    LAST_CMD=${LAST_CMD% }
    "$@" >"$T/.out" 2>"$T/.err"
    RC=$?
    OUT=$(<"$T/.out")
    ERR=$(<"$T/.err")
    return 0
}

expect_ok() {
    run "$@"
    [ "$RC" -eq 0 ] || fail_run "expected success"
}

# Exit status exactly 1 and exactly one non-empty line on stderr.
expect_fail() {
    run "$@"
    [ "$RC" -eq 1 ] || fail_run "expected exit status 1"
    local lines
    lines=$(wc -l < "$T/.err")
    if [ "$lines" -ne 1 ] || [ -z "$ERR" ]; then
        fail_run "expected exactly one line on stderr (got $lines)"
    fi
}

# Exit status 1, stderr one line starting "libxl-snapshot: error:" and
# matching ERE (the library's error convention).
expect_error() {
    local ere=$1
    shift
    expect_fail "$@"
    [[ $ERR == "libxl-snapshot: error: "* ]] ||
        fail_run "stderr does not start with 'libxl-snapshot: error: '"
    [[ $ERR =~ $ere ]] || fail_run "stderr does not match /$ere/"
}

expect_match() {
    local text=$1 ere=$2 what=${3:-text}
    grep -qE -- "$ere" <<<"$text" && return 0
    fail "$what does not match /$ere/" "$what:
$(printf '%s\n' "$text" | indent)"
}

expect_no_match() {
    local text=$1 ere=$2 what=${3:-text}
    grep -qE -- "$ere" <<<"$text" || return 0
    fail "$what unexpectedly matches /$ere/" "$what:
$(printf '%s\n' "$text" | indent)"
}

expect_eq() {
    local actual=$1 expected=$2 what=${3:-value}
    [ "$actual" = "$expected" ] && return 0
    fail "$what: not as expected" "expected:
$(printf '%s\n' "$expected" | indent)
got:
$(printf '%s\n' "$actual" | indent)"
}

expect_file() {
    [ -f "$1" ] || fail "expected file $1 to exist" \
        "$(ls -l "$(dirname "$1")" 2>&1)"
}

expect_no_file() {
    [ ! -e "$1" ] || fail "expected $1 not to exist"
}

# soft_case NAME FUNC [ARG...]: runs FUNC in a subshell; a failure in
# it is reported and counted, and the test goes on with the next case
# (so one bug does not hide the others).  `finish` ends the test: exit
# 1 if any soft case failed.
SOFT_FAILED=()
soft_case() {
    local name=$1
    shift
    step "$name"
    if ! (
        ABORT_PID=$BASHPID
        trap 'exit 1' USR1
        "$@"
    ); then
        SOFT_FAILED+=("$name")
    fi
}

finish() {
    if [ ${#SOFT_FAILED[@]} -gt 0 ]; then
        echo "FAIL: $TEST_NAME: ${#SOFT_FAILED[@]} case(s) failed:" >&2
        printf '    %s\n' "${SOFT_FAILED[@]}" >&2
        exit 1
    fi
    echo "PASS: $TEST_NAME"
    exit 0
}

# build_program SRC OUT: tests/qemu/SRC (a C program of the library's
# API, with the internal header's directory on its include path) built
# against the test's own build of the library, as OUT; fails the test
# if it does not build
build_program() {
    # shellcheck disable=SC2046  # the flags are words
    run cc -Wall -Werror -O2 -I"$REPO/libxl-snapshot" \
        $(pkg-config --cflags xenlight xentoollog) \
        -o "$2" "$LIB_DIR/$1" \
        "$T/build/libxl-snapshot/libxlsnapshot.so.1" \
        -Wl,-rpath,"$T/build/libxl-snapshot" \
        $(pkg-config --libs xentoollog)
    [ "$RC" -eq 0 ] || fail_run "$1 does not build"
}

# ------------------------------------------------------------ domains

# make_vm_config NAME [EXTRA-LINE...]: $IMG/NAME-xvda.qcow2 (qcow2,
# 64M) and $IMG/NAME-xvdb.img (raw, 32M), and the config $T/NAME.cfg
# (path in CFG).  Extra lines are appended to the config.  The images
# go to $VM_IMG_DIR instead when it is set.
make_vm_config() {
    local name=$1 line dir=${VM_IMG_DIR:-$IMG}
    shift
    qemu-img create -q -f qcow2 "$dir/$name-xvda.qcow2" 64M ||
        fail "qemu-img create $dir/$name-xvda.qcow2 failed"
    qemu-img create -q -f raw "$dir/$name-xvdb.img" 32M ||
        fail "qemu-img create $dir/$name-xvdb.img failed"
    CFG=$T/$name.cfg
    {
        echo "name = \"$name\""
        echo "memory = 64"
        echo "disk = [ 'format=qcow2,vdev=xvda,access=rw,target=$dir/$name-xvda.qcow2',"
        echo "         'format=raw,vdev=xvdb,access=rw,target=$dir/$name-xvdb.img' ]"
        for line in "$@"; do
            echo "$line"
        done
    } > "$CFG"
}

domain_running() {
    local out
    out=$(xl list 2>/dev/null) || return 1
    awk -v d="$1" 'NR > 1 && $1 == d {found = 1} END {exit !found}' <<<"$out"
}

# runtime_pid [D]: the pid of the live QEMU of domain D (any domain if
# no D) from the runtime files in $RUN; false if there is none.  Pure
# bash, cheaper than `xl list`, which the tests use where the product's
# own view is what is checked.
runtime_pid() {
    local d=${1:-} f j pid st
    for f in "$RUN"/qemu-dm-*.libxl-json; do
        [ -f "$f" ] || continue
        j=$(<"$f")
        if [ -n "$d" ]; then
            [[ $j =~ \"name\":\ *\"([^\"]*)\" ]] || continue
            [ "${BASH_REMATCH[1]}" = "$d" ] || continue
        fi
        [[ $j =~ \"pid\":\ *([0-9]+) ]] || continue
        pid=${BASH_REMATCH[1]}
        [ -r "/proc/$pid/stat" ] || continue
        read -r st < "/proc/$pid/stat" || continue
        st=${st##*) }
        if [ "${st%% *}" != Z ]; then
            echo "$pid"
            return 0
        fi
    done
    return 1
}

# true if any QEMU of this test runs: images are then read with -U
any_running() {
    runtime_pid >/dev/null
}

# The uuid of domain D (running or not), remembered once known.
declare -A DOMAIN_UUID=()
domain_uuid() {
    local d=$1 u f
    if [ -n "${DOMAIN_UUID[$d]:-}" ]; then
        echo "${DOMAIN_UUID[$d]}"
        return 0
    fi
    u=$(xl list 2>/dev/null | awk -v d="$d" 'NR > 1 && $1 == d {print $4}')
    if [ -z "$u" ]; then
        for f in "$STATE"/*/domain.libxl-json; do
            [ -f "$f" ] || continue
            if [ "$(jq -r .name "$f" 2>/dev/null)" = "$d" ]; then
                u=$(basename "$(dirname "$f")")
                break
            fi
        done
    fi
    [ -n "$u" ] || fail "domain_uuid: no domain '$d' (running or in $STATE)"
    DOMAIN_UUID[$d]=$u
    echo "$u"
}

domain_dir() {
    echo "$STATE/$(domain_uuid "$1")"
}

# active_image D VDEV: the image the disk runs on.  Running (a live
# QEMU in the runtime files): from `xl list -l`.  Shut off: the disk's entry in the domain record
# (domain.libxl-json, the image the next `xl create` boots from), else
# the target in the config the domain was started from.
active_image() {
    local d=$1 vdev=$2 out img dir cfg line
    if runtime_pid "$d" >/dev/null; then
        out=$(xl list -l "$d") || fail "xl list -l $d failed"
        img=
        while IFS= read -r line; do
            if [[ $line == "    disk $vdev: "* ]]; then
                img=${line#"    disk $vdev: "}
                img=${img% (*)}
            fi
        done <<<"$out"
        [ -n "$img" ] ||
            fail "active_image: no disk $vdev in 'xl list -l $d'" "$out"
        echo "$img"
        return 0
    fi
    dir=$(domain_dir "$d")
    img=$(jq -r --arg v "$vdev" '.disks[]? | select(.vdev == $v) | .path' \
            "$dir/domain.libxl-json")
    if [ -z "$img" ]; then
        cfg=$(jq -r '.config_file // empty' "$dir/domain.libxl-json")
        img=$(grep -oE "vdev=$vdev,[^']*target=[^']*" "$cfg" | sed 's/.*target=//')
    fi
    [ -n "$img" ] || fail "active_image: cannot find disk $vdev of $d"
    echo "$img"
}

# "1M" -> 1048576 (K, M, G suffixes)
to_bytes() {
    local n=$1
    case $n in
    *K) echo $(( ${n%K} * 1024 )) ;;
    *M) echo $(( ${n%M} * 1024 * 1024 )) ;;
    *G) echo $(( ${n%G} * 1024 * 1024 * 1024 )) ;;
    *)  echo $(( n )) ;;
    esac
}

# Format of an image (empty if it cannot be read): qcow2 by its magic
# (cheaper than qemu-img, and the tests ask a lot), else as qemu-img
# sees it.  (Not bash's read -N: it skips NUL bytes, and would read a
# zero-filled raw image to its end.)
image_format() {
    local magic j
    [ -r "$1" ] || return 0
    magic=$(head -c 3 "$1" 2>/dev/null | tr -d '\0')
    if [ "$magic" = QFI ]; then
        echo qcow2
        return 0
    fi
    j=$(qemu-img info -U --output=json "$1" 2>/dev/null) || return 0
    [[ $j =~ \"format\":\ \"([a-z0-9]+)\" ]] && echo "${BASH_REMATCH[1]}"
}

# write_pattern D VDEV BYTE OFFSET LEN
write_pattern() {
    local d=$1 vdev=$2 byte=$3 off=$4 len=$5 img fmt
    if runtime_pid "$d" >/dev/null; then
        expect_ok xl qemu-monitor-command "$d" \
            "qemu-io $vdev \"write -P $byte $off $len\""
        expect_ok xl qemu-monitor-command "$d" "qemu-io $vdev \"flush\""
        return 0
    fi
    img=$(active_image "$d" "$vdev")
    fmt=$(image_format "$img")
    expect_ok qemu-io -f "$fmt" -c "write -P $byte $off $len" "$img"
    expect_match "$OUT" "^wrote $(to_bytes "$len")/$(to_bytes "$len") bytes" \
        "qemu-io write on $img"
}

# write_disks D BYTE / expect_disks D BYTE: the first MiB of both disks
# of a make_vm_config domain
write_disks() {
    write_pattern "$1" xvda "$2" 0 1M
    write_pattern "$1" xvdb "$2" 0 1M
}
expect_disks() {
    local vdev
    for vdev in xvda xvdb; do
        read_pattern "$(active_image "$1" "$vdev")" "$2" 0 1M
    done
}

# read_pattern IMAGE BYTE OFFSET LEN [FMT]: the bytes must all be BYTE.
# With -U while any domain runs (QEMU holds its images locked).
read_pattern() {
    local img=$1 byte=$2 off=$3 len=$4 fmt=${5:-} u=() n
    [ -n "$fmt" ] || fmt=$(image_format "$img")
    [ -n "$fmt" ] || fail "read_pattern: cannot open $img"
    any_running && u=(-U)
    n=$(to_bytes "$len")
    run qemu-io -r "${u[@]}" -f "$fmt" -c "read -P $byte $off $len" "$img"
    # (qemu-io's exit status on a mismatch differs between versions:
    # the text decides)
    if grep -q "Pattern verification failed" <<<"$OUT$ERR"; then
        fail_run "read_pattern: $img does not hold $byte at $off+$len"
    fi
    if [ "$RC" -ne 0 ] || ! grep -q "^read $n/$n bytes at offset" <<<"$OUT"; then
        fail_run "read_pattern: qemu-io could not read $off+$len of $img"
    fi
}

# check_images [DIR]: qemu-img check on every qcow2 image in DIR
# ($IMG by default); raw images cannot be checked and are skipped.
# Fails on any corruption or check error.  Leaked clusters fail too,
# except while a domain runs: read with -U, an image QEMU has open can
# show a cluster QEMU has freed but whose refcount it has not written
# back yet (seen after a live internal snapshot, gone after the next
# flush); they are harmless, and the tests check again once shut off.
# shellcheck disable=SC2120  # DIR is optional
check_images() {
    local dir=${1:-$IMG} f fmt u=() bad
    any_running && u=(-U)
    for f in "$dir"/*; do
        [ -f "$f" ] || continue
        fmt=$(image_format "$f")
        [ -n "$fmt" ] || fail "check_images: qemu-img info cannot open $f"
        [ "$fmt" = qcow2 ] || continue
        run qemu-img check "${u[@]}" -f qcow2 --output=json "$f"
        bad=
        [[ $OUT =~ \"check-errors\":\ 0[,}[:space:]] ]] || bad="check errors"
        [[ $OUT =~ \"corruptions\":\ [1-9] ]] && bad=${bad:+$bad, }"corruptions"
        if [ ${#u[@]} -eq 0 ] && [[ $OUT =~ \"leaks\":\ [1-9] ]]; then
            bad=${bad:+$bad, }"leaks"
        fi
        if [ "$RC" -ne 0 ] && [ "$RC" -ne 3 ]; then
            bad=${bad:+$bad, }"exit status $RC"
        fi
        if [ -n "$bad" ]; then
            run qemu-img check "${u[@]}" -f qcow2 "$f"
            fail_run "qemu-img check: $bad in $f"
        fi
    done
}

# backing_chain IMAGE: one "filename<TAB>format" line per image, top
# first (backing files as QEMU resolved them).
backing_chain() {
    local out
    out=$(qemu-img info -U --backing-chain --output=json "$1") ||
        fail "qemu-img info --backing-chain $1 failed"
    jq -r '.[] | "\(.filename)\t\(.format)"' <<<"$out"
}

# expect_no_orphans D VDEV...: every image file in $IMG is the
# `file` of one of D's snapshot records, or the active image of one of
# D's disks, or in the backing chain of one of those (as snapshot-check
# counts them: a delete keeps an image that internal snapshots of an
# image built on it read through); and every record's `file` exists.
# (A record's `overlay` may be gone: a revert discards the active image
# it leaves when nothing froze it.)
expect_no_orphans() {
    local d=$1 rec vdev img f chains=0 recimgs=()
    local -A used=()
    shift
    local recs=("$(domain_dir "$d")"/snapshotdata-*.libxl-json)
    if [ -f "${recs[0]}" ]; then
        while IFS=$'\t' read -r rec img; do
            [ -f "$img" ] || fail "$(basename "$rec") names $img, which is gone"
            used[$img]=1
            recimgs+=("$img")
        done < <(jq -r '.disks[] | select(.type != "no") |
                        "\(input_filename)\t\(.file)"' "${recs[@]}")
    fi
    for vdev in "$@"; do
        img=$(active_image "$d" "$vdev")
        [ -f "$img" ] || fail "the active image $img of $d's $vdev is gone"
        while IFS=$'\t' read -r f _; do
            used[$f]=1
        done < <(backing_chain "$img")
        used[$img]=1
    done
    for f in "$IMG"/*; do
        [ -f "$f" ] || continue
        if [ -z "${used[$f]:-}" ] && [ "$chains" = 0 ]; then
            # (only now: qemu-img for every record's image is not cheap)
            chains=1
            for img in "${recimgs[@]}"; do
                while IFS=$'\t' read -r rec _; do
                    used[$rec]=1
                done < <(backing_chain "$img")
            done
        fi
        [ -n "${used[$f]:-}" ] || fail "orphaned image $f: no record, active image or backing chain uses it" \
            "images in use:
$(printf '%s\n' "${!used[@]}" | sort)"
    done
}

# qcow2 internal snapshot names in IMAGE, one per line
internal_snapshots() {
    local out
    out=$(qemu-img info -U --output=json "$1") ||
        fail "qemu-img info $1 failed"
    jq -r '.snapshots[]?.name' <<<"$out"
}

# ------------------------------------------------------------ "nothing changed"

# Every file of the state dir, the image dir and the runtime files (not
# QEMU's logs), with size and checksum; and every directory.  Other
# directories of $T can be added in FP_DIRS (names relative to $T);
# those in FP_NAMES_ONLY are compared by file names and sizes only.
FP_DIRS="state img run"
FP_NAMES_ONLY=""
fingerprint() {
    (
        cd "$T" || exit 1
        {
            # shellcheck disable=SC2086
            find $FP_DIRS $FP_NAMES_ONLY \( -type d -printf '%p/\n' \) -o \
                \( -type f ! -name '*.log' -printf '%p %s\n' \)
            # shellcheck disable=SC2086
            find $FP_DIRS -type f ! -name '*.log' -exec md5sum {} +
        } | sort
    )
}

expect_unchanged() {
    local before=$1 what=$2 after d
    after=$(fingerprint)
    [ "$before" = "$after" ] && return 0
    d=$(diff <(printf '%s\n' "$before") <(printf '%s\n' "$after"))
    fail "$what changed the state or image directory" "diff before/after:
$d"
}

# refused ERE CMD...: the command fails cleanly, naming ERE, and changes
# nothing.
refused() {
    local ere=$1 fp
    shift
    fp=$(fingerprint)
    expect_error "$ere" "$@"
    expect_unchanged "$fp" "$(printf '%q ' "$@")"
}
