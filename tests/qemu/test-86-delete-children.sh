#!/bin/bash
# test-86-delete-children.sh - snapshot-delete --children,
# --children-only, --metadata, and a snapshot internal on one disk and
# external on the other
#
# The tree cases build, on a fresh 2-disk domain (external on both):
#
#     s1 <- s2 <- s3          layers 1, 2, 3 (one before each)
#            \-- s4           revert to s2, layer 4, s4; then layer 5
#
# Layer N is byte 0x1N on xvda and 0xaN on xvdb at N*64K: s1 {1},
# s2 {1,2}, s3 {1,2,3}, s4 {1,2,4}; the current state {1,2,4,5}.
#
#  - live: --children-only s2 while s4 (in s2's subtree) is current: s3
#    and s4 gone (list, tree, info), s1 and s2 kept, s2 current; the
#    domain runs on (same QEMU pid), the current state reads as before
#    (from outside and through QEMU); the image files are exactly the
#    config images, the records' images and the active ones; qemu-img
#    check, chains end at the config images, no orphan; s1 and s2
#    revert to their exact data.  Then --children s1: no snapshot left,
#    the domain on its config images with the current data, the same
#    checks, and once more after shutting it off;
#  - offline: --children with --children-only is refused, nothing
#    changed; --children s2 while s1 is current: s2, s3 and s4 gone, s1
#    kept and current, the same checks, s1 reverts to its exact data;
#  - offline, --metadata s2: only the record goes: every image file
#    (contents too) and every backing chain unchanged; s3 and s4 are
#    re-parented to s1; s1, s3, s4 still revert to their exact data.
#  - mixed, live and offline: m1 and m2 internal on the qcow2 xvda and
#    external on the raw xvdb (the default types); deleting m1 removes
#    its qcow2 snapshot from xvda and commits its overlay into the raw
#    image; m2 then reverts to its data on both disks; deleting m2 (the
#    last) leaves xvda without qcow2 snapshots and xvdb on its raw
#    config image, the current data intact.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

# (The helpers below avoid starting processes where bash can do the
# work: on a small VM each fork+exec costs tens of ms, and these tests
# make a few thousand checks.)

SLOT=65536
LAYERS=(1 2 3 4 5)
# shellcheck disable=SC2054  # the commas are in the arguments
EXT=(--diskspec xvda,snapshot=external --diskspec xvdb,snapshot=external)
VDEVS=(xvda xvdb)
declare -A CONTENT=([s1]="1" [s2]="1 2" [s3]="1 2 3" [s4]="1 2 4")

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

expect_current() {
    expect_ok xl snapshot-current "$1"
    expect_eq "$OUT" "$2" "current snapshot of $1"
}

expect_gone() {
    local d=$1 s
    shift
    for s in "$@"; do
        expect_error "no snapshot named '$s'" xl snapshot-info "$d" "$s"
    done
}

# revert_all D SNAP...: each reverts to its exact data, chains intact
revert_all() {
    local d=$1 s
    shift
    for s in "$@"; do
        expect_ok xl snapshot-revert "$d" "$s"
        expect_layers "$d" "${CONTENT[$s]}"
        expect_chains "$d"
    done
}

build_tree() {
    local d=$1 mode=$2
    new_domain "$d" "$mode"
    write_layer "$d" 1
    expect_ok xl snapshot-create "${EXT[@]}" "$d" s1
    write_layer "$d" 2
    expect_ok xl snapshot-create "${EXT[@]}" "$d" s2
    write_layer "$d" 3
    expect_ok xl snapshot-create "${EXT[@]}" "$d" s3
    expect_ok xl snapshot-revert "$d" s2
    write_layer "$d" 4
    expect_ok xl snapshot-create "${EXT[@]}" "$d" s4
    write_layer "$d" 5
    expect_tree "$d" "s1:null:s2 s2:s1:s3,s4 s3:s2: s4:s2:"
    expect_current "$d" s4
}

# ------------------------------------------------------------------

# live: --children-only s2 (the current s4 among them: its image is
# committed into the one it froze, with a pivot), then --children s1
# (every snapshot; the active image is committed twice)
case_children_live() {
    local d=kids pid
    build_tree $d live
    pid=$(runtime_pid $d) || fail "no QEMU for $d"

    step "live: --children-only s2"
    expect_ok xl snapshot-delete --children-only $d s2
    expect_eq "$(runtime_pid $d)" "$pid" "QEMU pid of $d after the delete"
    expect_guest_layers $d "1 2 4 5"
    expect_gone $d s3 s4
    expect_tree $d "s1:null:s2 s2:s1:"
    expect_ok xl snapshot-list --tree $d
    expect_eq "$OUT" "s1
+- s2 (current)" "snapshot-list --tree"
    expect_current $d s2
    consistent $d
    expect_layers $d "1 2 4 5" loaded
    revert_all $d s1 s2
    write_layer $d 5 loaded

    step "live: --children s1 (all of them)"
    pid=$(runtime_pid $d) || fail "no QEMU for $d"
    expect_ok xl snapshot-delete --children $d s1
    expect_eq "$(runtime_pid $d)" "$pid" "QEMU pid of $d after the delete"
    expect_guest_layers $d "1 2 5"
    expect_gone $d s1 s2
    expect_tree $d ""
    expect_ok xl snapshot-list --tree $d
    expect_eq "$OUT" "" "snapshot-list --tree"
    consistent $d
    expect_eq "${ACTIVE[xvda]} ${ACTIVE[xvdb]}" \
        "${CONFIG[xvda]} ${CONFIG[xvdb]}" "$d's active images"
    expect_layers $d "1 2 5" loaded
    shut_off $d
    consistent $d
}

# offline: --children s2 while s1 is current (the subtree's images have
# nothing else built on them); --children with --children-only refused
case_children_offline() {
    local d=kidsoff fp
    build_tree $d offline
    expect_ok xl snapshot-revert $d s1
    write_layer $d 5

    step "offline: --children with --children-only: refused"
    fp=$(FP_DIRS="state img-$d" fingerprint)
    expect_fail xl snapshot-delete --children --children-only $d s2
    FP_DIRS="state img-$d" expect_unchanged "$fp" "snapshot-delete --children --children-only"

    step "offline: --children s2"
    expect_ok xl snapshot-delete --children $d s2
    expect_gone $d s2 s3 s4
    expect_tree $d "s1:null:"
    expect_ok xl snapshot-list --tree $d
    expect_eq "$OUT" "s1 (current)" "snapshot-list --tree"
    expect_current $d s1
    consistent $d
    expect_layers $d "1 5" loaded
    revert_all $d s1
    expect_exact_files $d
}

# every image of $IMG: its checksum, and its backing chain
images_state() {
    local f
    md5sum "$IMG"/*
    for f in "$IMG"/*; do
        chain_names "$f"
        echo "$CHAIN"
    done
}

case_metadata() {
    local d=meta before rec
    build_tree $d offline
    before=$(images_state)
    rec=$(domain_dir $d)/snapshotdata-s2.libxl-json
    expect_file "$rec"
    expect_ok xl snapshot-delete --metadata $d s2
    expect_no_file "$rec"
    expect_gone $d s2
    expect_tree $d "s1:null:s3,s4 s3:s1: s4:s1:"
    expect_current $d s4
    expect_eq "$(images_state)" "$before" "images and chains after --metadata"
    check_qcow2
    load_actives $d
    expect_chains $d
    expect_no_orphans $d "${VDEVS[@]}"
    expect_layers $d "1 2 4 5"
    revert_all $d s1 s3 s4
    check_qcow2
    expect_no_orphans $d "${VDEVS[@]}"
}

# m1 {1}, m2 {1,2}, current {1,2,3}; then revert to m2, layer 5
case_mixed() {
    local mode=$1 d=$1-mixed pid=''
    new_domain $d "$mode"
    CONTENT=([m1]="1" [m2]="1 2")
    write_layer $d 1
    expect_ok xl snapshot-create $d m1
    write_layer $d 2
    expect_ok xl snapshot-create $d m2
    write_layer $d 3
    expect_ok xl snapshot-info --json $d m1
    expect_eq "$(jq -r '[.disks[] | "\(.vdev):\(.type)"] | join(" ")' <<<"$OUT")" \
        "xvda:internal xvdb:external" "m1's disk types"
    expect_eq "$(internal_snapshots "$IMG/$d-xvda.qcow2")" "m1
m2" \
        "qcow2 snapshots in xvda"

    step "$mode: delete m1"
    [ "$mode" = live ] && pid=$(runtime_pid $d)
    expect_ok xl snapshot-delete $d m1
    if [ "$mode" = live ]; then
        expect_eq "$(runtime_pid $d)" "$pid" "QEMU pid of $d after the delete"
        expect_guest_layers $d "1 2 3"
    fi
    expect_gone $d m1
    expect_tree $d "m2:null:"
    expect_eq "$(internal_snapshots "$IMG/$d-xvda.qcow2")" "m2" \
        "qcow2 snapshots in xvda after deleting m1"
    expect_no_file "$IMG/$d-xvdb.m1.qcow2"
    consistent $d
    expect_layers $d "1 2 3" loaded
    revert_all $d m2
    write_layer $d 5 loaded

    step "$mode: delete m2, the last one"
    [ "$mode" = live ] && pid=$(runtime_pid $d)
    expect_ok xl snapshot-delete $d m2
    if [ "$mode" = live ]; then
        expect_eq "$(runtime_pid $d)" "$pid" "QEMU pid of $d after the delete"
        expect_guest_layers $d "1 2 5"
    fi
    expect_gone $d m2
    expect_tree $d ""
    expect_eq "$(internal_snapshots "$IMG/$d-xvda.qcow2")" "" \
        "qcow2 snapshots in xvda after deleting m2"
    consistent $d
    expect_eq "${ACTIVE[xvda]} ${ACTIVE[xvdb]}" \
        "${CONFIG[xvda]} ${CONFIG[xvdb]}" "$d's active images"
    expect_layers $d "1 2 5" loaded
    if [ "$mode" = live ]; then
        shut_off $d
        consistent $d
    fi
}

soft_case "live: --children-only s2, then --children s1" case_children_live
soft_case "offline: --children s2" case_children_offline
soft_case "offline: --metadata s2" case_metadata
soft_case "live: internal on xvda, external on xvdb" case_mixed live
soft_case "offline: internal on xvda, external on xvdb" case_mixed offline
finish
