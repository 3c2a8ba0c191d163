#!/bin/bash
# test-108-size-hostile.sh - space accounting of images it must not
# trust or cannot hold open at once
#
#  - a raw disk whose guest wrote a qcow2 image into it (a qcow2 header
#    naming a backing file of the domain's, an internal snapshot holding
#    1 MiB of its own), then frozen by an external snapshot: listed as
#    the raw image its records say it is (allocated: the file's
#    allocated bytes, nothing taken off for the guest's "internal
#    snapshot"; frees: the overlay, committed into it), no warning;
#    snapshot-diff of the disk reads it as raw too;
#  - a domain with 80 qcow2 overlays and 80 internal snapshots (records
#    written as bench/size.sh writes them): `xl snapshot-list --size
#    --json` under `ulimit -n 64` gives exactly the figures it gives
#    without the limit, no warning, and the figures are the images'
#    (allocated: stat; every 10th internal snapshot holds data).
# Shut-off domains only: no guest is booted.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=bench/lib-bench.sh
. "$(dirname "$0")/../../bench/lib-bench.sh"

alloc() {
    echo $(( $(stat -c %b "$1") * 512 ))
}
fig() {
    jq -r --arg s "$1" --arg v "$2" --arg f "$3" \
        '.snapshots[] | select(.name == $s) | .disks[] |
         select(.vdev == $v) | .[$f]' <<<"$SIZES"
}

case_guest_qcow2() {
    local raw ov fake=$T/fake.qcow2
    make_vm_config h1
    raw=$IMG/h1-xvdb.img
    expect_ok xl create "$CFG"
    expect_ok xl destroy h1
    # what a guest running `qemu-img create -f qcow2 -b ... /dev/xvdb`
    # and `qemu-img snapshot -c` inside leaves on its raw disk
    expect_ok qemu-img create -q -f qcow2 -b "$IMG/h1-xvda.qcow2" -F qcow2 \
        "$fake" 64M
    expect_ok qemu-io -c "write -P 1 0 1M" "$fake"
    expect_ok qemu-img snapshot -c x "$fake"
    expect_ok qemu-io -c "write -P 2 0 1M" "$fake"
    expect_ok dd if="$fake" of="$raw" conv=notrunc status=none
    expect_ok xl snapshot-create --diskspec xvda,snapshot=internal \
        --diskspec xvdb,snapshot=external h1 s1
    ov=$(active_image h1 xvdb)
    expect_eq "$(image_format "$ov")" qcow2 "xvdb's overlay"
    expect_ok qemu-io -f qcow2 -c "write -P 3 0 128k" "$ov"

    step "listed as raw"
    expect_ok xl snapshot-list --size --json h1
    SIZES=$OUT
    [ -z "$ERR" ] || fail "snapshot-list --size warned" "$ERR"
    expect_eq "$(fig s1 xvdb problem)" null "xvdb's problem"
    expect_eq "$(fig s1 xvdb allocated)" "$(alloc "$raw")" \
        "s1 xvdb allocated (the raw file's)"
    # the overlay committed into the raw image, which has data there
    # (the guest's header): written in place
    expect_eq "$(fig s1 xvdb frees)" "$(alloc "$ov")" "s1 xvdb frees"
    expect_eq "$(fig s1 xvda problem)" null "xvda's problem"

    step "snapshot-diff reads it as raw"
    expect_ok xl snapshot-diff --json h1 s1
    expect_eq "$(jq -r '.disks[] | select(.vdev == "xvdb") | .total' \
        <<<"$OUT")" $((128 * 1024)) "xvdb's diff since s1"
}

case_many_open() {
    local d=h2 n=80 a prev ov i full
    make_vm_config "$d"
    expect_ok xl create "$CFG"
    expect_ok xl destroy "$d"
    expect_ok xl snapshot-create --diskspec xvda,snapshot=internal \
        --diskspec xvdb,snapshot=external "$d" seed
    a=$IMG/$d-xvda.qcow2
    prev=$IMG/$d-xvdb.seed.qcow2
    for ((i = 1; i <= n; i++)); do
        if ((i % 10 == 0)); then
            expect_ok qemu-io -f qcow2 -c "write -P $i $((i * 65536)) 64k" "$a"
        fi
        expect_ok qemu-img snapshot -c "s$i" "$a"
        if ((i % 10 == 0)); then
            expect_ok qemu-io -f qcow2 -c "write -P 255 $((i * 65536)) 64k" "$a"
        fi
        ov=$IMG/$d-xvdb.s$i.qcow2
        expect_ok qemu-img create -q -f qcow2 -u -b "$prev" -F qcow2 "$ov" 32M
        if ((i % 10 == 0)); then
            expect_ok qemu-io -c "write -P 7 $((i * 65536)) 64K" \
                "json:{\"driver\": \"qcow2\", \"backing\": null, \"file\": {\"driver\": \"file\", \"filename\": \"$prev\"}}"
        fi
        prev=$ov
    done
    seed_records "$d" "$n" "$IMG/$d-xvdb"
    jq --arg p "$prev" '(.disks[] | select(.vdev == "xvdb") | .path) = $p |
        .current = null' "$(domain_dir "$d")/domain.libxl-json" \
        > "$T/domain.json" &&
        cp "$T/domain.json" "$(domain_dir "$d")/domain.libxl-json" ||
        fail "domain record"

    step "the figures, open files unlimited"
    expect_ok xl snapshot-list --size --json "$d"
    full=$OUT
    SIZES=$OUT
    [ -z "$ERR" ] || fail "snapshot-list --size warned" "$ERR"
    expect_eq "$(jq '[.snapshots[].disks[] | select(.problem != null)] |
        length' <<<"$full")" 0 "disks with a problem"
    expect_eq "$(fig s40 xvdb allocated)" \
        "$(alloc "$IMG/$d-xvdb.s39.qcow2")" "s40 xvdb allocated"
    [ "$(jq '[.snapshots[].disks[] | select(.type == "internal" and
        .exclusive > 65536)] | length' <<<"$full")" -ge $((n / 10)) ] ||
        fail "internal snapshots holding data: too few" "$full"

    step "the same under ulimit -n 64"
    OUT=$(ulimit -n 64 && "$XL" snapshot-list --size --json "$d" \
        2>"$T/err64") || fail "snapshot-list --size under ulimit -n 64" \
        "$(cat "$T/err64")"
    [ -s "$T/err64" ] && fail "snapshot-list --size warned under ulimit" \
        "$(cat "$T/err64")"
    expect_eq "$(jq -S . <<<"$OUT")" "$(jq -S . <<<"$full")" \
        "the figures under ulimit -n 64"
}

soft_case "a raw disk holding a guest's qcow2 image" case_guest_qcow2
soft_case "80 qcow2 images under ulimit -n 64" case_many_open
finish
