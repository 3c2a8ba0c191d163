#!/bin/bash
# test-96-migrate.sh - xl migrate on the qemu driver keeps the tree
#
# The domain's RAM is a shared memory-backend-file ($T/ram) filled with
# random data, so that a migration limited to a few MiB/s (--bandwidth)
# takes seconds: long enough to interrupt it, or to kill its
# destination, without a race.
#
#  1. a 2-disk domain with an internal, an external and a memory
#     checkpoint snapshot and a branch, data written after each, a
#     persistent dirty bitmap on xvda;
#  2. refusals: a remote host, a block job, a domain that does not run;
#  3. migrations that fail leave the source running on the same images,
#     no second QEMU, snapshot-check clean: the destination does not
#     start; it is killed at the switchover (fault point); it is killed
#     while RAM is sent; Ctrl-C while RAM is sent;
#  4. xl migrate: a new domid, the old QEMU gone, the same active
#     images, data intact, the bitmap there (same count, persistent),
#     writes go on; a second migration (--paused) leaves it paused;
#  5. revert to every snapshot reads back its own data (the memory
#     checkpoint too), delete works, snapshot-check clean.
set -u
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

RAM=$T/ram

domid_of() {
    run xl list "$1"
    awk 'NR == 2 {print $2}' <<<"$OUT"
}
domain_state() {
    run xl list "$1"
    awk 'NR == 2 {print $3}' <<<"$OUT"
}
# a process that is not a zombie (a QEMU's reaper may be slow)
alive() {
    local st
    read -r st < "/proc/$1/stat" 2>/dev/null || return 1
    st=${st##*) }
    [ "${st%% *}" != Z ]
}
nb_runtime_files() {
    local f n=0
    for f in "$RUN"/qemu-dm-*.libxl-json; do [ -f "$f" ] && n=$((n + 1)); done
    echo $n
}

# qmp D CMD [ARGS-JSON]: one QMP command to D's QEMU; OUT: its return
qmp() {
    local id
    id=$(domid_of "$1")
    run python3 - "$RUN/qmp-libxl-$id" "$2" "${3:-{\}}" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile('rw')
def reply():
    while True:
        m = json.loads(f.readline())
        if 'event' not in m:
            return m
reply()
for cmd, args in (("qmp_capabilities", {}), (sys.argv[2], json.loads(sys.argv[3]))):
    f.write(json.dumps({"execute": cmd, "arguments": args}) + "\n")
    f.flush()
    m = reply()
    if 'error' in m:
        sys.exit(m['error']['desc'])
print(json.dumps(m['return']))
EOF
    [ "$RC" = 0 ] || fail_run "QMP $2 to $1"
}

# bitmap_count D: the count of xvda's persistent bitmap b0 ("" if none)
bitmap_count() {
    qmp "$1" query-block
    jq -r '.[] | select(.device == "xvda") | .inserted["dirty-bitmaps"] // []
           | .[] | select(.name == "b0" and .persistent) | .count' <<<"$OUT"
}

# the guest agent's socket: vm1's QEMU listens on it (no other left)
expect_agent() {
    python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])' \
        "$QGA" 2>/dev/null || fail "nothing listens on the guest agent's socket $QGA"
    expect_no_file "$QGA.incoming"
}

# the domain as it must be after a migration that failed: the same
# QEMU, running, on the same images, data, no second QEMU, check clean
expect_unmoved() {
    local pid=$1 id=$2 byte=$3
    expect_eq "$(runtime_pid vm1)" "$pid" "vm1's QEMU"
    expect_eq "$(domid_of vm1)" "$id" "vm1's domid"
    expect_eq "$(domain_state vm1)" "r-----" "vm1 runs"
    expect_eq "$(nb_runtime_files)" 1 "QEMUs with a runtime file"
    local p n=0
    for p in $(pgrep -f -- "$RUN/qmp-libxl"); do alive "$p" && n=$((n + 1)); done
    expect_eq "$n" 1 "QEMU processes"
    expect_eq "$(active_image vm1 xvda) $(active_image vm1 xvdb)" \
        "$ACTIVE" "the active images"
    expect_disks vm1 "$byte"
    expect_agent
    expect_ok xl snapshot-check vm1
    # it still writes (its images active: not left to the destination)
    write_disks vm1 "$byte"
}

# a migration in the background (slow: 4 MiB/s of 64 MiB of RAM)
start_slow_migration() {
    "$XL" migrate --bandwidth=4 vm1 >"$T/mig.out" 2>"$T/mig.err" &
    MIG_PID=$!
    BG_PIDS="${BG_PIDS:-} $MIG_PID"
    # until the destination QEMU runs
    for _ in $(seq 100); do
        if [ "$(nb_runtime_files)" = 2 ]; then
            sleep 1             # started, and reading (16 s of RAM)
            return 0
        fi
        sleep 0.1
    done
    fail "no destination QEMU after 10 s" "$(cat "$T/mig.err")"
}
wait_migration() {
    RC=0
    wait "$MIG_PID" || RC=$?
    OUT=$(<"$T/mig.out")
    ERR=$(<"$T/mig.err")
    LAST_CMD="xl migrate --bandwidth=4 vm1 (background)"
}

dd if=/dev/urandom of="$RAM" bs=1M count=64 status=none
QGA=$T/qga.sock
# (q35: a PCI bus for the guest agent's virtio-serial port; no guest
# boots, the firmware waits)
make_vm_config vm1 "device_model_args = [ '-machine', 'q35', '-accel', 'tcg', '-object', 'memory-backend-file,id=ram0,size=64M,mem-path=$RAM,share=on', '-machine', 'memory-backend=ram0' ]" \
    "channel = [ 'name=org.qemu.guest_agent.0,connection=socket,path=$QGA' ]"
expect_ok xl create "$CFG"

step "a tree: internal, external, memory checkpoint, a branch"
write_disks vm1 0x11
expect_ok xl snapshot-create vm1 s1                  # xvda internal
write_disks vm1 0x22
expect_ok xl snapshot-create --diskspec=xvda,snapshot=external \
    --diskspec=xvdb,snapshot=external vm1 s2
write_disks vm1 0x33
expect_ok xl snapshot-create --memory vm1 m3
expect_ok xl snapshot-revert vm1 s1
write_disks vm1 0x44
expect_ok xl snapshot-create vm1 s4                  # a branch off s1
write_disks vm1 0x55
qmp vm1 query-block
NODE=$(jq -r '.[] | select(.device == "xvda") | .inserted["node-name"]' <<<"$OUT")
qmp vm1 block-dirty-bitmap-add "{\"node\": \"$NODE\", \"name\": \"b0\", \"persistent\": true}"
write_pattern vm1 xvda 0x56 2M 192K
COUNT=$(bitmap_count vm1)
expect_eq "$COUNT" 196608 "the bitmap's dirty bytes"
ACTIVE="$(active_image vm1 xvda) $(active_image vm1 xvdb)"

step "refusals"
PID=$(runtime_pid vm1)
ID=$(domid_of vm1)
refused "qemu driver migrates a domain to a new QEMU on this host only.*'otherhost'" \
    xl migrate vm1 otherhost
refused "'nosuch'" xl migrate nosuch
refused "not to ''" xl migrate vm1 ''
cp "$CFG" "$T/cfg.orig"
qemu-img create -q -f raw "$T/xvdc.img" 1M
sed -i "s|xvdb.img' ]|xvdb.img', 'format=raw,vdev=xvdc,access=rw,target=$T/xvdc.img' ]|" "$CFG"
refused "config file '$CFG' has disk xvdc, which the running domain lacks" xl migrate vm1
cp "$T/cfg.orig" "$CFG"
for b in 0 -1 abc; do
    refused "migrate: invalid bandwidth '$b'" xl migrate --bandwidth=$b vm1
done
expect_ok xl block-stream --async --bandwidth=1 vm1 xvdb
expect_error "disk xvdb of domain vm1 is in block job" xl migrate vm1
expect_ok xl block-job --abort vm1 xvdb
expect_unmoved "$PID" "$ID" 0x55

step "the destination does not start"
XL_SNAPSHOT_FAULT="io@QEMU start" run xl migrate vm1
expect_eq "$RC" 1 "exit status"
expect_match "$ERR" "QEMU exited at start" "the reason"
expect_eq "$(grep -c "error:" <<<"$ERR")" 1 "error lines in: $ERR"
expect_unmoved "$PID" "$ID" 0x55

step "the destination killed at the switchover"
XL_SNAPSHOT_FAULT=migrate:2:killqemu run xl migrate vm1
expect_eq "$RC" 1 "exit status"
expect_match "$ERR" "fault injected: migrate step 2: QEMU" "the fault"
expect_match "$ERR" "error: .*it stays on domid $ID" "the outcome"
expect_unmoved "$PID" "$ID" 0x55

step "the destination killed while RAM is sent"
start_slow_migration
for f in "$RUN"/qemu-dm-*.libxl-json; do
    p=$(jq -r .pid "$f")
    [ "$p" = "$PID" ] || kill -9 "$p"
done
wait_migration
expect_eq "$RC" 1 "exit status"
# (on a loaded machine the new QEMU may still be starting: said so)
expect_match "$ERR" "error: .*(it stays on domid $ID|QEMU exited at start)" "the outcome"
expect_eq "$(grep -c "error:" <<<"$ERR")" 1 "error lines in: $ERR"
expect_unmoved "$PID" "$ID" 0x55

step "Ctrl-C while RAM is sent"
start_slow_migration
sleep 1
kill -INT "$MIG_PID"
wait_migration
expect_eq "$RC" 1 "exit status"
expect_match "$ERR" "migration cancelled; it stays on domid $ID" "the outcome"
expect_unmoved "$PID" "$ID" 0x55

step "SIGTERM, SIGHUP to xl migrate: cancelled as by Ctrl-C"
for sig in TERM HUP; do
    start_slow_migration
    if [ $sig = TERM ]; then
        # xl list does not wait on the migration's monitors, and shows
        # the destination paused, the source running
        T0=$(date +%s%N)
        expect_ok xl list
        T1=$(date +%s%N)
        [ $(( (T1 - T0) / 1000000 )) -lt 5000 ] ||
            fail "xl list took $(( (T1 - T0) / 1000000 )) ms during a migration"
        expect_eq "$(awk -v id="$ID" '$1 == "vm1" && $2 == id {print $3}' <<<"$OUT")" \
            "r-----" "the source in xl list"
        expect_eq "$(awk -v id="$ID" '$1 == "vm1" && $2 != id {print $3}' <<<"$OUT")" \
            "--p---" "the destination in xl list"
    fi
    kill -$sig "$MIG_PID"
    wait_migration
    expect_eq "$RC" 1 "exit status (SIG$sig)"
    expect_match "$ERR" "migration cancelled; it stays on domid $ID" "the outcome (SIG$sig)"
    expect_unmoved "$PID" "$ID" 0x55
done

step "the old QEMU stops answering: bounded, the new QEMU killed, recovered"
start_slow_migration
kill -STOP "$PID"
T0=$SECONDS
for _ in $(seq 120); do
    kill -0 "$MIG_PID" 2>/dev/null || break
    sleep 1
done
if kill -0 "$MIG_PID" 2>/dev/null; then
    kill -CONT "$PID"
    kill -9 "$MIG_PID"
    fail "xl migrate still waits $((SECONDS - T0)) s after the old QEMU stopped"
fi
wait_migration
expect_eq "$RC" 1 "exit status"
expect_match "$ERR" "error: .*does not answer: the new QEMU is killed.*xl snapshot-recover vm1" "the outcome"
expect_eq "$(grep -c "error:" <<<"$ERR")" 1 "error lines in: $ERR"
expect_eq "$(nb_runtime_files)" 1 "QEMUs with a runtime file (the new one killed)"
kill -CONT "$PID"
expect_ok xl snapshot-recover vm1
expect_match "$ERR" "interrupted migration is undone: it runs on domid $ID" "the recovery"
expect_unmoved "$PID" "$ID" 0x55

step "after an interrupted migration, the next command is not refused"
for n in 1 2 3; do
    XL_SNAPSHOT_FAULT=migrate:$n run xl migrate vm1
    expect_eq "$RC" 86 "exit status (crash at step $n)"
    sleep 1
    # (recovery waits until QEMU's cancelled migration is over)
    expect_ok xl snapshot-create --memory vm1 mtmp
    expect_match "$ERR" "interrupted migration is undone" "the recovery (step $n)"
    expect_ok xl snapshot-delete vm1 mtmp
done
expect_unmoved "$PID" "$ID" 0x55

step "xl killed in the middle: the next command puts it on one QEMU"
for n in 1 2 3 4 5; do
    XL_SNAPSHOT_FAULT=migrate:$n run xl migrate vm1
    expect_eq "$RC" 86 "exit status (crash at step $n)"
    expect_eq "$(nb_runtime_files)" 2 "QEMUs after a crash at step $n"
    # (at step 1 the new QEMU may not listen on its QMP socket yet)
    sleep 1
    run xl snapshot-check vm1
    expect_eq "$RC" 1 "snapshot-check after a crash at step $n"
    expect_match "$OUT$ERR" "migrate" "the pending migration is reported"
    expect_ok xl snapshot-recover vm1
    expect_match "$ERR" "interrupted migration is undone: it runs on domid $ID" \
        "what the recovery did (step $n)"
    expect_unmoved "$PID" "$ID" 0x55
done

step "xl migrate"
COUNT=$(bitmap_count vm1)
expect_eq "$COUNT" $((196608 + 1048576)) "the bitmap's dirty bytes"
expect_ok xl migrate "$ID" LOCALHOST
expect_match "$OUT" "^Domain vm1 migrated: now domid [0-9]+$" "xl migrate's line (by domid)"
NEW=$(domid_of vm1)
[ "$NEW" != "$ID" ] || fail "the domid did not change ($ID)"
expect_eq "$(nb_runtime_files)" 1 "QEMUs with a runtime file"
alive "$PID" && fail "the old QEMU ($PID) still runs"
expect_no_file "$RUN/qemu-dm-$ID.libxl-json"
expect_agent
expect_eq "$(domain_state vm1)" "r-----" "vm1 runs"
expect_eq "$(active_image vm1 xvda) $(active_image vm1 xvdb)" "$ACTIVE" \
    "the active images"
expect_disks vm1 0x55
read_pattern "$(active_image vm1 xvda)" 0x56 2M 192K
expect_eq "$(bitmap_count vm1)" "$COUNT" "the bitmap after the migration"
write_pattern vm1 xvda 0x57 4M 64K
expect_eq "$(bitmap_count vm1)" $((COUNT + 65536)) "the bitmap counts on"
write_disks vm1 0x66
expect_disks vm1 0x66
expect_ok xl snapshot-check vm1
expect_ok xl snapshot-list vm1
expect_eq "$(awk 'NR > 1 {print $1}' <<<"$OUT" | sort | tr '\n' ' ')" \
    "m3 s1 s2 s4 " "the snapshots listed"

step "xl killed once the old QEMU is gone: the recovery keeps the new one"
ID=$(domid_of vm1)
XL_SNAPSHOT_FAULT=migrate:6 run xl migrate vm1
expect_eq "$RC" 86 "exit status (crash at step 6)"
expect_eq "$(nb_runtime_files)" 1 "QEMUs after a crash at step 6"
expect_ok xl snapshot-recover vm1
NEW=$(domid_of vm1)
expect_match "$ERR" "interrupted migration is finished: it runs on domid $NEW" \
    "what the recovery did (step 6)"
[ "$NEW" != "$ID" ] || fail "the domid did not change ($ID)"
expect_eq "$(domain_state vm1)" "r-----" "vm1 runs"
expect_disks vm1 0x66
expect_ok xl snapshot-check vm1

step "xl migrate --paused"
ID=$(domid_of vm1)
expect_ok xl migrate --paused vm1
[ "$(domid_of vm1)" != "$ID" ] || fail "the domid did not change"
expect_eq "$(domain_state vm1)" "--p---" "vm1 paused"
# as Xen's xl: without -p it runs on the new QEMU, paused before or not
ID=$(domid_of vm1)
expect_ok xl migrate vm1
[ "$(domid_of vm1)" != "$ID" ] || fail "the domid did not change"
expect_eq "$(domain_state vm1)" "r-----" "vm1 runs after a migration without --paused"
expect_disks vm1 0x66

step "revert to every snapshot on the new domid"
for sb in s2:0x22 m3:0x33 s4:0x44 s1:0x11; do
    expect_ok xl snapshot-revert vm1 "${sb%%:*}"
    expect_disks vm1 "${sb##*:}"
    expect_eq "$(domain_state vm1)" "r-----" "vm1 runs after ${sb%%:*}"
done
expect_ok xl snapshot-check vm1

step "delete"
expect_ok xl snapshot-delete vm1 s2
expect_ok xl snapshot-list vm1
expect_eq "$(awk 'NR > 1 {print $1}' <<<"$OUT" | sort | tr '\n' ' ')" \
    "m3 s1 s4 " "the snapshots listed"
expect_ok xl snapshot-revert vm1 s4
expect_disks vm1 0x44
expect_ok xl snapshot-check vm1
check_images

step "export the records"
expect_ok xl snapshot-export-records vm1 "$T/rec.json"
expect_match "$OUT" "^Records of domain vm1 exported to $T/rec.json$" "export's line"
expect_ok xl snapshot-export-records vm1
expect_eq "$(jq -r '.format, .version, .name, (.snapshots | length), .domain.current' <<<"$OUT" | tr '\n' ' ')" \
    "libxl-snapshot-records 1 vm1 3 s4 " "the document"
cmp -s <(jq -S . <<<"$OUT") <(jq -S . "$T/rec.json") || fail "stdout and FILE differ"
# FILE: a symlink's target is written (the link stays), what is not a
# regular file is written to, never replaced
same_doc() {        # same_doc FILE WHAT
    cmp -s <(jq -S . "$1" 2>/dev/null) <(jq -S . "$T/rec.json") ||
        fail "$2 does not hold the document"
}
echo '{}' > "$T/target.json"
ln -s "$T/target.json" "$T/link.json"
expect_ok xl snapshot-export-records vm1 "$T/link.json"
[ -L "$T/link.json" ] || fail "the symlink $T/link.json was replaced"
same_doc "$T/target.json" "the symlink's target"
mkfifo "$T/fifo"
cat "$T/fifo" > "$T/fifo.out" &
CAT_PID=$!
expect_ok xl snapshot-export-records vm1 "$T/fifo"
wait "$CAT_PID"
[ -p "$T/fifo" ] || fail "the FIFO $T/fifo was replaced"
same_doc "$T/fifo.out" "what was read from the FIFO"
expect_ok xl snapshot-export-records vm1 /dev/stdout
same_doc "$T/.out" "stdout (/dev/stdout)"
expect_ok xl snapshot-export-records vm1 >(cat > "$T/procsub.out")
sleep 1
same_doc "$T/procsub.out" "what >(...) read"
expect_error "cannot write '/dev/full': No space left on device" \
    xl snapshot-export-records vm1 /dev/full
[ -c /dev/full ] || fail "/dev/full is not a device any more"
ln -s "$T/nothing" "$T/dangling.json"
expect_error "'$T/dangling.json' is a symlink to nothing" \
    xl snapshot-export-records vm1 "$T/dangling.json"
[ -L "$T/dangling.json" ] || fail "the dangling symlink was replaced"
expect_ok xl block-stream --async --bandwidth=1 vm1 xvdb
expect_error "disk xvdb of domain vm1 is in block job" xl snapshot-export-records vm1 "$T/x.json"
expect_no_file "$T/x.json"
expect_ok xl block-job --abort vm1 xvdb

step "import on a host that shares the images, not the state dir"
# the other host: its own state dir, the domain running there
STATE2=$T/state2
mkdir "$STATE2"
export XL_SNAPSHOT_STATE_DIR=$STATE2
FP_DIRS="state2 img run"
expect_eq "$(ls -A "$STATE2")" "" "no records on the other host yet"
bad() {             # bad FILE JQ-FILTER: rec.json changed so, in FILE
    jq "$2" "$T/rec.json" > "$T/$1" || fail "jq $2"
}
printf '{"format": "libxl-snapshot-records", "version": 1,' > "$T/cut.json"
refused "not a document of snapshot records" xl snapshot-import-records vm1 "$T/cut.json"
bad v2.json '.version = 2'
refused "unknown version" xl snapshot-import-records vm1 "$T/v2.json"
bad uuid.json '.uuid = "00000000-0000-0000-0000-000000000001"'
refused "the records are of the domain with uuid 00000000-0000-0000-0000-000000000001" \
    xl snapshot-import-records vm1 "$T/uuid.json"
bad name.json '.snapshots[0].name = "../../etc/x"'
refused "invalid name '../../etc/x'" xl snapshot-import-records vm1 "$T/name.json"
bad twice.json '.snapshots[1] = .snapshots[0]'
refused "snapshot '[a-z0-9]+' twice" xl snapshot-import-records vm1 "$T/twice.json"
bad orphan.json '.snapshots[0].parent = "nosuch"'
refused "the parent 'nosuch' of" xl snapshot-import-records vm1 "$T/orphan.json"
bad xvdz.json '(.snapshots[] | select(.name == "s4") | .disks[0].vdev) = "xvdz"'
refused "cannot import the records of vm1: it has no such disk: s4's disk xvdz" \
    xl snapshot-import-records vm1 "$T/xvdz.json"
bad gone.json '(.snapshots[] | select(.name == "s4") | .disks[0].file) = "/nonexistent/vm1-xvda.qcow2"'
refused "1 image is not reachable from this host: s4/xvda: '/nonexistent/vm1-xvda.qcow2' does not exist" \
    xl snapshot-import-records vm1 "$T/gone.json"
bad nomem.json '(.snapshots[] | select(.name == "m3") | .memory) = "/nonexistent/m3.save"'
refused "m3: memory image '/nonexistent/m3.save' does not exist" \
    xl snapshot-import-records vm1 "$T/nomem.json"
bad active.json '.domain.disks[0].path = "/nonexistent/active.qcow2"'
refused "'/nonexistent/active.qcow2' does not exist" xl snapshot-import-records vm1 "$T/active.json"
refused "cannot read '$T/none.json'" xl snapshot-import-records vm1 "$T/none.json"
# what snapshot-check would report, refused before anything is written
bad tag.json '(.snapshots[] | select(.disks[0].type == "internal") | .disks[0].tag) = "nosuchtag"'
refused "cannot import the records of vm1: [0-9]+ problems? snapshot-check would report: snapshot s[14]: disk xvda: '[^']*' holds no internal snapshot named 'nosuchtag'" \
    xl snapshot-import-records vm1 "$T/tag.json"
bad passwd.json '.snapshots[0].disks[0].file = "/etc/passwd"'
refused "cannot import the records of vm1: 1 problem snapshot-check would report: snapshot [a-z0-9]+: disk xvda: '/etc/passwd' " \
    xl snapshot-import-records vm1 "$T/passwd.json"
bad cfgpasswd.json '.domain.config_file = "/etc/passwd"'
refused "/etc/passwd:[0-9]+: config parsing error near" xl snapshot-import-records vm1 "$T/cfgpasswd.json"
printf 'name = "vm9"\nmemory = 64\n' > "$T/vm9.cfg"
bad cfgother.json ".domain.config_file = \"$T/vm9.cfg\""
refused "cannot import the records of vm1: the config file '$T/vm9.cfg' they name is domain vm9's" \
    xl snapshot-import-records vm1 "$T/cfgother.json"
bad dname.json '.name = "vm9"'
refused "cannot import the records of vm1: they are of domain 'vm9'" \
    xl snapshot-import-records vm1 "$T/dname.json"
expect_ok xl snapshot-import-records vm1 "$T/rec.json"
expect_ok xl snapshot-list vm1
expect_eq "$(awk 'NR > 1 {print $1}' <<<"$OUT" | sort | tr '\n' ' ')" \
    "m3 s1 s4 " "the snapshots imported"
expect_ok xl snapshot-check vm1
refused "domain vm1 already has 3 snapshot records here: --force replaces them" \
    xl snapshot-import-records vm1 "$T/rec.json"
expect_ok xl snapshot-import-records --force vm1 "$T/rec.json"
# from stdin ("-", /dev/stdin) and <(...): read as a stream
expect_ok xl snapshot-import-records --force vm1 - <"$T/rec.json"
expect_ok xl snapshot-import-records --force vm1 /dev/stdin < <(cat "$T/rec.json")
expect_ok xl snapshot-import-records --force vm1 <(cat "$T/rec.json")
for sb in m3:0x33 s1:0x11 s4:0x44; do
    expect_ok xl snapshot-revert vm1 "${sb%%:*}"
    expect_disks vm1 "${sb##*:}"
done
expect_ok xl snapshot-delete vm1 s1
expect_ok xl snapshot-list vm1
expect_eq "$(awk 'NR > 1 {print $1}' <<<"$OUT" | sort | tr '\n' ' ')" \
    "m3 s4 " "the snapshots after the delete"
expect_ok xl snapshot-check vm1

step "import for a shut-off domain this host does not know: by its config"
CFG1=$CFG
make_vm_config vm3
CFG3=$CFG
CFG=$CFG1
expect_ok xl snapshot-create "$CFG3" t1              # internal, offline
expect_ok xl snapshot-export-records vm3 "$T/vm3.json"
STATE3=$T/state3
mkdir "$STATE3"
export XL_SNAPSHOT_STATE_DIR=$STATE3
FP_DIRS="state3 img run"
mv "$CFG3" "$CFG3.away"
refused "domain 'vm3' not found here, and the config file '$CFG3' its records name is missing" \
    xl snapshot-import-records vm3 "$T/vm3.json"
cp "$CFG1" "$CFG3"
refused "domain 'vm3' not found here, and the config file '$CFG3' its records name is domain vm1's" \
    xl snapshot-import-records vm3 "$T/vm3.json"
mv "$CFG3.away" "$CFG3"
expect_ok xl snapshot-import-records vm3 "$T/vm3.json"
expect_ok xl snapshot-list vm3
expect_eq "$(awk 'NR > 1 {print $1}' <<<"$OUT" | tr '\n' ' ')" "t1 " \
    "vm3's snapshot imported"
expect_ok xl snapshot-revert vm3 t1
expect_ok xl snapshot-check vm3
check_images
echo "PASS: $TEST_NAME"
