#!/bin/bash
# test-85-delete-external.sh - deleting external snapshots anywhere in
# the tree, live (QMP block jobs) and offline (qemu-img)
#
# The tree, on a fresh 2-disk domain (external on both disks):
#
#     s0 <- s1 <- s2 <- s3     layers 1, 2, 3, 4 (one before each)
#                   \-- s4     revert to s2, layer 5, s4; then layer 6
#
# Layer N is byte 0x1N on xvda and 0xaN on xvdb at N*64K, so each
# snapshot has its own content: s0 {1}, s1 {1,2}, s2 {1,2,3},
# s3 {1,2,3,4}, s4 {1,2,3,5}; the current state {1,2,3,5,6}.  The
# images of a disk (cfg: the config image; .sN: <stem>.sN.qcow2):
#
#     cfg <- .s0 <- .s1 <- .s2                (s3's image)
#                       \- .s2.1 <- .s4       (s4's image; active)
#
# For live and offline, the snapshots are deleted one after the other,
# each one taking another path of the delete:
#   s1  one image (.s1) built on its image .s0: .s1 committed into .s0
#       and removed; of the two images on .s1, the one QEMU does not
#       run (.s2) is rebased onto .s0;
#   s2  two children, two images built on its image .s0: .s0 streamed
#       into both, removed; s3 and s4 re-parented to s0;
#   s3  a leaf: nothing built on .s2, removed;
#   s0  the root: one image (.s2.1) on the config image, committed into
#       it (the config image stays), s4 becomes the root;
#   s4  the last, current one: the active image committed into the
#       config image (raw on xvdb) with a pivot: the domain is left on
#       its config images, no overlay left, no current snapshot.
# After each delete: the snapshot is gone from snapshot-list --json,
# every other one has the right parent and children, the current one is
# right; the image the delete merged away is gone and the image files
# are exactly the config images, the records' images and the active
# images; the current state still reads as before (live: the domain
# still runs, same domid and QEMU pid, and QEMU reads it too); qemu-img
# check is clean, each active chain ends at the config image, no image
# is orphaned.  Then a revert to every remaining snapshot in turn reads
# its exact content on both disks (every layer present or zero, every
# chain ending at the config image); layer 6 is written again on the
# last one.  The live domain is shut off at the end and its images
# checked once more (leaked clusters too).
#
# Also (live; the plan is the same offline): the root s1 of a tree whose
# config image has two images built on it (s1 <- s2, revert to s1, s3):
# the config image stays the base of both branches (chains still end at
# it, it is not left orphaned), s2 and s3 keep their data; the same
# checks.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

# (The helpers below avoid starting processes where bash can do the
# work: on a small VM each fork+exec costs tens of ms, and these tests
# make a few thousand checks.)

SLOT=65536
LAYERS=(1 2 3 4 5 6)
# shellcheck disable=SC2054  # the commas are in the arguments
EXT=(--diskspec xvda,snapshot=external --diskspec xvdb,snapshot=external)
VDEVS=(xvda xvdb)
declare -A CONTENT=()

# BYTE[vdev,N]: the byte of layer N on that disk
declare -A BYTE=()
for n in "${LAYERS[@]}"; do
    BYTE[xvda,$n]=0x1$n
    BYTE[xvdb,$n]=0xa$n
done

# CONFIG[vdev]: the disk's image in the domain config (new_domain)
declare -A CONFIG=()
# LIVE: 1 while the domain under test runs (new_domain, shut_off)
LIVE=0

# new_domain D MODE: D's config and images in an image directory of
# its own ($IMG), created; shut off again for MODE offline
new_domain() {
    local d=$1 mode=$2
    IMG=$T/img-$d
    mkdir -p "$IMG"
    make_vm_config "$d"
    CONFIG=([xvda]=$IMG/$d-xvda.qcow2 [xvdb]=$IMG/$d-xvdb.img)
    expect_ok xl create "$CFG"
    LIVE=1
    # not in a $(...): remembered for domain_dir, active_image...
    domain_uuid "$d" >/dev/null
    [ "$mode" = live ] || shut_off "$d"
}

shut_off() {
    expect_ok xl destroy "$1"
    LIVE=0
    ! runtime_pid "$1" >/dev/null || fail "$1 still runs after xl destroy"
}

# load_actives D: ACTIVE[vdev], the active image of each disk, as
# active_image finds it (but one `xl list -l`, or one read of the
# domain record, for both disks)
declare -A ACTIVE=()
load_actives() {
    local d=$1 line vdev img out=''
    ACTIVE=()
    if [ "$LIVE" = 1 ]; then
        out=$(xl list -l "$d") || fail "xl list -l $d failed"
        while IFS= read -r line; do
            [[ $line =~ ^\ \ \ \ disk\ ([a-z0-9]+):\ (.*)\ \([a-z0-9]+\)$ ]] &&
                ACTIVE[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
        done <<<"$out"
    else
        while read -r vdev img; do
            ACTIVE[$vdev]=$img
        done < <(jq -r '.disks[]? | "\(.vdev) \(.path)"' \
                    "$(domain_dir "$d")/domain.libxl-json")
    fi
    for vdev in "${VDEVS[@]}"; do
        # (not in the record: the config's image, as active_image says)
        [ -n "${ACTIVE[$vdev]:-}" ] || ACTIVE[$vdev]=$(active_image "$d" "$vdev")
    done
}

# write_layer D N [loaded]: layer N on both disks (guest writes on the
# running domain: no flush, consistent flushes before reading from
# outside; qemu-io on the active images of a shut-off one)
write_layer() {
    local d=$1 n=$2 vdev fmt out
    if [ "$LIVE" = 1 ]; then
        for vdev in "${VDEVS[@]}"; do
            xl qemu-monitor-command "$d" \
                "qemu-io $vdev \"write -P ${BYTE[$vdev,$n]} $((n * SLOT)) $SLOT\"" ||
                fail "guest write of layer $n on $d's $vdev failed"
        done
        return 0
    fi
    [ "${3:-}" = loaded ] || load_actives "$d"
    for vdev in "${VDEVS[@]}"; do
        fmt=qcow2
        [[ ${ACTIVE[$vdev]} == *.img ]] && fmt=raw
        out=$(qemu-io -f $fmt -c "write -P ${BYTE[$vdev,$n]} $((n * SLOT)) $SLOT" \
                  "${ACTIVE[$vdev]}" 2>&1)
        [[ $out == *"wrote $SLOT/$SLOT bytes"* ]] ||
            fail "qemu-io did not write layer $n on ${ACTIVE[$vdev]}" "$out"
    done
}

# count_reads TEXT: number of qemu-io "read SLOT/SLOT bytes" lines
count_reads() {
    local line
    READS=0
    while IFS= read -r line; do
        [[ $line == "read $SLOT/$SLOT bytes"* ]] && READS=$((READS + 1))
    done <<<"$1"
}

# expect_image_layers IMAGE VDEV "N..." WHAT: read through IMAGE, the
# layers listed hold their byte, the others (and the slots before and
# after them all) are zero; one qemu-io for all the reads (-U: QEMU
# may hold the image)
expect_image_layers() {
    local img=$1 vdev=$2 set=" $3 " what=$4 n b cmds=() fmt=qcow2 out rc
    cmds=(-c "read -P 0 0 $SLOT" -c "read -P 0 $(( (${#LAYERS[@]} + 1) * SLOT )) $SLOT")
    for n in "${LAYERS[@]}"; do
        b=0
        [[ $set == *" $n "* ]] && b=${BYTE[$vdev,$n]}
        cmds+=(-c "read -P $b $((n * SLOT)) $SLOT")
    done
    [[ $img == *.img ]] && fmt=raw
    out=$(qemu-io -r -U -f "$fmt" "${cmds[@]}" "$img" 2>&1)
    rc=$?
    count_reads "$out"
    if [ "$rc" -ne 0 ] || [[ $out == *"verification failed"* ]] ||
       [ "$READS" -ne $(( ${#LAYERS[@]} + 2 )) ]; then
        fail "$what should hold layers {$3} and zero elsewhere" \
            "qemu-io -r -U -f $fmt ${cmds[*]} $img: exit status $rc
$(printf '%s\n' "$out" | indent)"
    fi
}

# expect_layers D "N..." [loaded]: both active images, read from
# outside (loaded: ACTIVE is known to be up to date)
expect_layers() {
    local d=$1 vdev
    [ "${3:-}" = loaded ] || load_actives "$d"
    for vdev in "${VDEVS[@]}"; do
        expect_image_layers "${ACTIVE[$vdev]}" "$vdev" "$2" "$d's $vdev"
    done
}

# expect_guest_layers D "N...": as the running QEMU reads its disks
# (HMP qemu-io; QEMU prints the results on its stdout, the domain's log)
expect_guest_layers() {
    local d=$1 set=" $2 " vdev n b log before='' after='' new=''
    log=$RUN/qemu-dm-$d.log
    [ -f "$log" ] || fail "no log $log"
    IFS= read -r -d '' before < "$log"
    for vdev in "${VDEVS[@]}"; do
        for n in "${LAYERS[@]}"; do
            b=0
            [[ $set == *" $n "* ]] && b=${BYTE[$vdev,$n]}
            xl qemu-monitor-command "$d" \
                "qemu-io $vdev \"read -P $b $((n * SLOT)) $SLOT\"" >/dev/null ||
                fail "xl qemu-monitor-command $d 'qemu-io $vdev ...' failed"
        done
    done
    # (QEMU may write its stdout a moment later: up to 2 s)
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        after=''
        IFS= read -r -d '' after < "$log"
        new=${after:${#before}}
        count_reads "$new"
        [ "$READS" -ge $(( 2 * ${#LAYERS[@]} )) ] && break
        sleep 0.2
    done
    if [[ $new == *"verification failed"* ]] ||
       [ "$READS" -ne $(( 2 * ${#LAYERS[@]} )) ]; then
        fail "the running $d does not read layers {$2} (zero elsewhere)" \
            "QEMU's log of the reads (xvda, then xvdb; layers ${LAYERS[*]}):
$(printf '%s\n' "$new" | indent)"
    fi
}

# a running QEMU writes its cached metadata out before we read from outside
flush_disks() {
    local d=$1 vdev
    [ "$LIVE" = 1 ] || return 0
    for vdev in "${VDEVS[@]}"; do
        xl qemu-monitor-command "$d" "qemu-io $vdev \"flush\"" >/dev/null ||
            fail "flush of $d's $vdev failed"
    done
}

# chain_names IMAGE: CHAIN = the file names (no directory) of IMAGE's
# backing chain, top first, on one line
chain_names() {
    local out line names=()
    out=$(qemu-img info -U --backing-chain "$1" 2>&1) ||
        fail "qemu-img info --backing-chain $1 failed" "$out"
    while IFS= read -r line; do
        [[ $line == "image: "* ]] && names+=("${line##*/}")
    done <<<"$out"
    CHAIN=${names[*]}
}

# expect_chains D: each active image (ACTIVE) has a backing chain that
# ends at the disk's config image
expect_chains() {
    local d=$1 vdev
    for vdev in "${VDEVS[@]}"; do
        chain_names "${ACTIVE[$vdev]}"
        expect_eq "${CHAIN##* }" "${CONFIG[$vdev]##*/}" \
            "bottom of the chain of $d's $vdev (${ACTIVE[$vdev]}: $CHAIN)"
    done
}

# expect_exact_files D: the image files are exactly the config images,
# the records' images and the active images (ACTIVE): nothing merged
# away is left behind, nothing a record names is gone
expect_exact_files() {
    local d=$1 vdev f extra='' missing='' recs=()
    local -A want=() have=()
    for vdev in "${VDEVS[@]}"; do
        want[${CONFIG[$vdev]}]=1
        want[${ACTIVE[$vdev]}]=1
    done
    recs=("$(domain_dir "$d")"/snapshotdata-*.libxl-json)
    if [ -f "${recs[0]}" ]; then
        while IFS= read -r f; do
            want[$f]=1
        done < <(jq -r '.disks[] | select(.type != "no") | .file' "${recs[@]}")
    fi
    for f in "$IMG"/*; do
        [ -f "$f" ] || continue
        have[$f]=1
        [ -n "${want[$f]:-}" ] || extra+="    $f"$'\n'
    done
    for f in "${!want[@]}"; do
        [ -n "${have[$f]:-}" ] || missing+="    $f"$'\n'
    done
    [ -z "$extra$missing" ] ||
        fail "$d's images are not exactly the config, record and active images" \
            "left over:
$extra
missing:
$missing"
}

# check_qcow2: qemu-img check on every qcow2 image of $IMG, as
# check_images does (no check error, no corruption; no leak either,
# except while the domain runs: see check_images), one process each
check_qcow2() {
    local f out rc bad
    for f in "$IMG"/*.qcow2; do
        [ -f "$f" ] || continue
        out=$(qemu-img check -U -f qcow2 --output=json "$f" 2>&1)
        rc=$?
        bad=
        [[ $out =~ \"check-errors\":\ 0[,}[:space:]] ]] || bad="check errors"
        [[ $out =~ \"corruptions\":\ [1-9] ]] && bad=${bad:+$bad, }"corruptions"
        if [ "$LIVE" = 0 ] && [[ $out =~ \"leaks\":\ [1-9] ]]; then
            bad=${bad:+$bad, }"leaks"
        fi
        [ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || bad=${bad:+$bad, }"exit status $rc"
        [ -z "$bad" ] || fail "qemu-img check: $bad in $f" "$out"
    done
}

# consistent D: domain state, qemu-img check, chains, files, orphans
consistent() {
    local d=$1
    if [ "$LIVE" = 1 ]; then
        domain_running "$d" || fail "$d is not running"
        flush_disks "$d"
    else
        runtime_pid "$d" >/dev/null && fail "$d runs (it should be shut off)"
    fi
    check_qcow2
    load_actives "$d"
    expect_chains "$d"
    expect_exact_files "$d"
    expect_no_orphans "$d" "${VDEVS[@]}"
}

# expect_tree D "NAME:PARENT:CHILD,CHILD ..." (by name; null: a root)
expect_tree() {
    expect_ok xl snapshot-list --json "$1"
    expect_eq "$(jq -r 'sort_by(.name) |
                        map("\(.name):\(.parent):\(.children // [] | sort | join(","))") |
                        join(" ")' <<<"$OUT")" \
        "$2" "snapshots (name:parent:children) of $1"
}

# domid_of D: D's domid in `xl list`
domid_of() {
    local f=()
    expect_ok xl list "$1"
    while read -r -a f; do
        [ "${f[0]:-}" = "$1" ] && echo "${f[1]}"
    done <<<"$OUT"
}

# delete_one D MODE VICTIM TREE GONE: delete VICTIM; TREE (as for
# expect_tree) is the tree it leaves; GONE are the suffixes of the
# images it must have removed (<stem>.GONE.qcow2 of both disks; @: the
# active images before the delete).  CUR_DATA: the layers the current
# state holds; CUR_SNAP: the current snapshot.
delete_one() {
    local d=$1 mode=$2 victim=$3 tree=$4 gone=$5 pid='' domid='' s g last=''
    local -A before=()
    step "$mode: delete $victim"
    if [ "$mode" = live ]; then
        pid=$(runtime_pid "$d") || fail "no QEMU for $d"
        domid=$(domid_of "$d")
        [ -n "$domid" ] || fail "no domid for $d"
    fi
    load_actives "$d"
    for s in "${VDEVS[@]}"; do before[$s]=${ACTIVE[$s]}; done
    expect_ok xl snapshot-info --json "$d" "$victim"
    [ "$CUR_SNAP" = "$victim" ] && CUR_SNAP=$(jq -r '.parent // ""' <<<"$OUT")

    expect_ok xl snapshot-delete "$d" "$victim"

    if [ "$mode" = live ]; then
        expect_eq "$(runtime_pid "$d")" "$pid" "QEMU pid of $d after the delete"
        expect_eq "$(domid_of "$d")" "$domid" "domid of $d after the delete"
        expect_guest_layers "$d" "$CUR_DATA"
    fi
    expect_error "no snapshot named '$victim'" xl snapshot-info "$d" "$victim"
    expect_tree "$d" "$tree"
    if [ -n "$CUR_SNAP" ]; then
        expect_ok xl snapshot-current "$d"
        expect_eq "$OUT" "$CUR_SNAP" "current snapshot after deleting $victim"
    else
        expect_fail xl snapshot-current "$d"
        expect_match "$ERR" "has no current snapshot" "snapshot-current's error"
    fi
    for g in $gone; do
        for s in "${VDEVS[@]}"; do
            if [ "$g" = @ ]; then
                expect_no_file "${before[$s]}"
            else
                expect_no_file "$IMG/$d-$s.$g.qcow2"
            fi
        done
    done
    consistent "$d"
    expect_layers "$d" "$CUR_DATA" loaded

    expect_ok xl snapshot-list --name "$d"
    for s in $(sort <<<"$OUT"); do
        expect_ok xl snapshot-revert "$d" "$s"
        expect_layers "$d" "${CONTENT[$s]}"
        expect_chains "$d"
        last=$s
    done
    if [ -n "$last" ]; then
        # (qemu-img check and expect_no_orphans again after the next delete)
        expect_exact_files "$d"
        write_layer "$d" 6 loaded
        CUR_DATA="${CONTENT[$last]} 6"
        CUR_SNAP=$last
    fi
}

case_tree() {
    local mode=$1 d=$1-tree
    CONTENT=([s0]="1" [s1]="1 2" [s2]="1 2 3" [s3]="1 2 3 4" [s4]="1 2 3 5")
    new_domain "$d" "$mode"
    write_layer "$d" 1
    expect_ok xl snapshot-create "${EXT[@]}" "$d" s0
    write_layer "$d" 2
    expect_ok xl snapshot-create "${EXT[@]}" "$d" s1
    write_layer "$d" 3
    expect_ok xl snapshot-create "${EXT[@]}" "$d" s2
    write_layer "$d" 4
    expect_ok xl snapshot-create "${EXT[@]}" "$d" s3
    expect_ok xl snapshot-revert "$d" s2
    write_layer "$d" 5
    expect_ok xl snapshot-create "${EXT[@]}" "$d" s4
    write_layer "$d" 6
    expect_tree "$d" "s0:null:s1 s1:s0:s2 s2:s1:s3,s4 s3:s2: s4:s2:"
    load_actives "$d"
    chain_names "${ACTIVE[xvdb]}"
    expect_eq "$CHAIN" \
        "$d-xvdb.s4.qcow2 $d-xvdb.s2.1.qcow2 $d-xvdb.s1.qcow2 $d-xvdb.s0.qcow2 $d-xvdb.img" \
        "xvdb's chain"
    CUR_DATA="1 2 3 5 6"
    CUR_SNAP=s4

    delete_one "$d" "$mode" s1 "s0:null:s2 s2:s0:s3,s4 s3:s2: s4:s2:" "s1"
    delete_one "$d" "$mode" s2 "s0:null:s3,s4 s3:s0: s4:s0:" "s0"
    delete_one "$d" "$mode" s3 "s0:null:s4 s4:s0:" "s2"
    delete_one "$d" "$mode" s0 "s4:null:" "s2.1"
    delete_one "$d" "$mode" s4 "" "@"
    expect_eq "${ACTIVE[xvda]} ${ACTIVE[xvdb]}" "${CONFIG[xvda]} ${CONFIG[xvdb]}" \
        "$d's active images once no snapshot is left"
    if [ "$mode" = live ]; then
        shut_off "$d"
        consistent "$d"
        expect_layers "$d" "$CUR_DATA" loaded
    fi
}

case_root_branches() {
    local mode=$1 d=$1-roots
    CONTENT=([s1]="1" [s2]="1 2" [s3]="1 3")
    new_domain "$d" "$mode"
    write_layer "$d" 1
    expect_ok xl snapshot-create "${EXT[@]}" "$d" s1
    write_layer "$d" 2
    expect_ok xl snapshot-create "${EXT[@]}" "$d" s2
    expect_ok xl snapshot-revert "$d" s1
    write_layer "$d" 3
    expect_ok xl snapshot-create "${EXT[@]}" "$d" s3
    write_layer "$d" 6
    expect_tree "$d" "s1:null:s2,s3 s2:s1: s3:s1:"
    CUR_DATA="1 3 6"
    CUR_SNAP=s3
    delete_one "$d" "$mode" s1 "s2:null: s3:null:" ""
}

for mode in live offline; do
    soft_case "$mode: s1, s2, s3, s0, s4 of s0 <- s1 <- s2 <- {s3, s4}" \
        case_tree "$mode"
done
soft_case "live: the root, two images on the config image" \
    case_root_branches live
finish
