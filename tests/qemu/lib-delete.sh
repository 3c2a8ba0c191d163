# lib-delete.sh - helpers shared by the snapshot-delete tests
# (test-85, test-86): layered test data, reading it back, tree checks.
# Sourced after lib.sh, with LAYERS set.

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

