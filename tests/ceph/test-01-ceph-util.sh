#!/bin/bash
# test-01-ceph-util.sh - tools/ceph-util, every command against a real
# cluster, its behaviour checked from outside (qemu-io on rbd:, jq on its
# JSON, the cluster's own view through ceph-util's other commands)
#
#  1. usage errors (64); create, ls, image-info; not found (2), exists (3)
#  2. snap-create, rollback -p: data written before the snapshot reads
#     back after the rollback; progress lines as qemu-img -p prints them;
#     a rollback of an image open elsewhere is refused (3)
#  3. clone: reads the snapshot's data; snap-remove of a snapshot with a
#     clone exits 4 naming it; flatten, then the snapshot's removal: the
#     clone keeps its data; snap-remove --flatten: the clone is flattened,
#     the snapshot goes, the clone is intact; a protected snapshot with no
#     clone is unprotected and removed; librbd's error log stays off
#     stderr (one line), even with "err to stderr" configured
#  4. --bandwidth slows a flatten measurably (8 MiB/s of 32 MiB: >= 3 s,
#     where the unlimited one takes well under that)
#  5. rename, remove (-p; refused with snapshots or while open)
#  6. omap-set/get/dump round trip with odd bytes (quotes, backslashes,
#     newlines, tabs, UTF-8), 1500 keys (more than one page), rm, rmall;
#     ls-objects, remove-object
#  7. lock-hold and lockers: a second holder exits 3 printing the first's
#     description; the holder renews past its lease; "unlock" lets go at
#     once; after the holder's stdin closes (EOF) another gets the lock
#     only after the lease; omap-set --lock by the old holder then exits
#     3 and writes nothing, also when the takeover comes between its
#     check and its write (tests/ceph/pause-write.c holds the write
#     back); a holder whose lock was broken exits 3; a
#     renewal that times out (the OSD stopped 4 s) is tried again while
#     the lease lasts; stopped past the lease, the holder exits 3
set -u
# shellcheck source=tests/ceph/lib.sh
. "$(dirname "$0")/lib.sh"

U=$CEPH_UTIL
MiB=1048576

# a clean slate for this test's names (a run killed half-way)
for i in $("$U" ls rbd 2>/dev/null | jq -r '.[]' | grep '^t01-'); do
    "$U" snap-remove --flatten rbd/"$i" s1 >/dev/null 2>&1
    rbd -p rbd snap purge "$i" >/dev/null 2>&1
    "$U" remove rbd/"$i" >/dev/null 2>&1
done
for o in $("$U" ls-objects rbd t01- 2>/dev/null | jq -r '.[]'); do
    "$U" remove-object rbd "$o"
done

# ------------------------------------------------------------------ 1
step "usage errors; create, ls, image-info; not found, exists"
run "$U"
expect_eq "$RC" 64 "exit status without a command"
run "$U" frobnicate
expect_eq "$RC" 64 "exit status of an unknown command"
run "$U" create t01-noslash 1
expect_eq "$RC" 64 "exit status of an image without a pool"
run "$U" create rbd/t01-a 12x
expect_eq "$RC" 64 "exit status of a bad size"
run "$U" snap-remove --bogus rbd/t01-a s1
expect_eq "$RC" 64 "exit status of an unknown option"

expect_ok "$U" create rbd/t01-a $((32 * MiB))
expect_eq "$OUT" "" "create's stdout"
expect_exit 3 '^ceph-util: create rbd/t01-a: File exists \(' \
    "$U" create rbd/t01-a $((32 * MiB))
expect_ok "$U" ls rbd
expect_eq "$(jq -r '.[]' <<<"$OUT" | grep -c '^t01-a$')" 1 "t01-a in ls"
expect_ok "$U" image-info rbd/t01-a
expect_eq "$(jq -c '[.pool, .image, .size, .order, .parent, .snaps, .locked]' <<<"$OUT")" \
    "[\"rbd\",\"t01-a\",$((32 * MiB)),22,null,[],false]" "image-info of a new image"
expect_match "$(jq -r .id <<<"$OUT")" '^[0-9a-f]+$' "the image id"
expect_exit 2 '^ceph-util: image-info rbd/t01-none: No such file or directory \(' \
    "$U" image-info rbd/t01-none
expect_exit 2 'No such file or directory \(pool t01-nopool\)' "$U" ls t01-nopool
expect_exit 2 'No such file or directory' "$U" image-info t01-nopool/x

# ------------------------------------------------------------------ 2
step "snap-create, rollback -p: the data before the snapshot comes back"
rbd_write rbd/t01-a 0x11 0 $MiB
rbd_write rbd/t01-a 0x12 $((20 * MiB)) $MiB
expect_ok "$U" snap-create rbd/t01-a s1
expect_exit 3 'snap-create rbd/t01-a@s1: File exists' "$U" snap-create rbd/t01-a s1
expect_exit 2 'No such file or directory' "$U" snap-create rbd/t01-none s1
rbd_write rbd/t01-a 0x22 0 $MiB
rbd_write rbd/t01-a 0x23 $((20 * MiB)) $MiB
rbd_read rbd/t01-a 0x22 0 $MiB
expect_ok "$U" rollback -p rbd/t01-a s1
# qemu-img -p: "    (0.00/100%)\r" ... "    (100.00/100%)\r" then "\n"
expect_match "$(head -c 16 <<<"$OUT" | od -An -c | tr -s ' ')" \
    '^ \( 0 \. 0 0 / 1 0 0 % \) \\r' "the first progress line"
expect_match "$OUT" '    \(100\.00/100%\)' "the last progress line"
expect_eq "$(tail -c 2 "$T/.out" | od -An -c | tr -d ' ')" '\r\n' "the end of the progress"
expect_eq "$(tr '\r' '\n' <"$T/.out" | grep -cvE '^(    \([0-9]+\.[0-9]{2}/100%\))?$')" 0 \
    "lines other than progress"
rbd_read rbd/t01-a 0x11 0 $MiB
rbd_read rbd/t01-a 0x12 $((20 * MiB)) $MiB
run "$U" rollback rbd/t01-a s1
expect_eq "$RC$OUT" 0 "a rollback without -p prints nothing"
expect_exit 2 'rollback rbd/t01-a@nosuch: No such file or directory' \
    "$U" rollback rbd/t01-a nosuch
expect_exit 2 'No such file or directory' "$U" rollback rbd/t01-none s1

step "rollback of an image open elsewhere: refused (3); image-info says locked"
mkfifo "$T/qin"
qemu-io -f raw "$(rbd_url rbd/t01-a)" <"$T/qin" >"$T/qemu-io.out" 2>&1 &
QIO=$!
BG_PIDS="$QIO"
exec 7>"$T/qin"
echo "write -P 0x44 $((4 * MiB)) 4K" >&7
for _ in $(seq 50); do
    [ "$("$U" image-info rbd/t01-a | jq .locked)" = true ] && break
    sleep 0.2
done
expect_ok "$U" image-info rbd/t01-a
expect_eq "$(jq .locked <<<"$OUT")" true "locked while qemu-io writes"
expect_exit 3 'rollback rbd/t01-a@s1: Device or resource busy \(the image is open elsewhere' \
    "$U" rollback rbd/t01-a s1
expect_exit 3 'remove rbd/t01-a: ' "$U" remove rbd/t01-a
# a snapshot of an image in use goes through its lock owner
expect_ok "$U" snap-create rbd/t01-a s-live
exec 7>&-
wait "$QIO"
BG_PIDS=
rbd_read rbd/t01-a 0x44 $((4 * MiB)) 4K
expect_ok "$U" image-info rbd/t01-a
expect_eq "$(jq .locked <<<"$OUT")" false "locked once qemu-io is gone"
expect_eq "$(jq -c '[.snaps[].name]' <<<"$OUT")" '["s1","s-live"]' "snapshots, by id"
expect_ok "$U" snap-remove rbd/t01-a s-live

# ------------------------------------------------------------------ 3
step "clone: the snapshot's data; snap-remove with a clone exits 4"
rbd_write rbd/t01-a 0x33 0 $MiB            # the head differs from s1 now
expect_ok "$U" clone rbd/t01-a s1 rbd/t01-c1
expect_exit 3 'File exists' "$U" clone rbd/t01-a s1 rbd/t01-c1
expect_exit 2 'clone rbd/t01-a@nosuch: No such file or directory' \
    "$U" clone rbd/t01-a nosuch rbd/t01-cx
expect_ok "$U" image-info rbd/t01-c1
expect_eq "$(jq -c .parent <<<"$OUT")" '{"pool":"rbd","image":"t01-a","snap":"s1"}' \
    "the clone's parent"
expect_ok "$U" image-info rbd/t01-a
expect_eq "$(jq -c '.snaps[] | select(.name == "s1") | .children' <<<"$OUT")" \
    '["rbd/t01-c1"]' "the snapshot's children"
rbd_read rbd/t01-c1 0x11 0 $MiB
rbd_read rbd/t01-c1 0x12 $((20 * MiB)) $MiB
rbd_write rbd/t01-c1 0x55 $((8 * MiB)) $MiB
expect_exit 4 '^ceph-util: snap-remove rbd/t01-a@s1: the snapshot has clones: rbd/t01-c1 \(' \
    "$U" snap-remove rbd/t01-a s1
expect_ok "$U" image-info rbd/t01-a
expect_eq "$(jq -c '[.snaps[].name]' <<<"$OUT")" '["s1"]' "the snapshot after exit 4"

step "flatten, then remove the snapshot: the clone keeps its data"
expect_ok "$U" flatten rbd/t01-c1
expect_eq "$OUT" "" "flatten without -p prints nothing"
expect_ok "$U" image-info rbd/t01-c1
expect_eq "$(jq -c .parent <<<"$OUT")" null "the flattened clone's parent"
expect_exit 1 'flatten rbd/t01-c1: ' "$U" flatten rbd/t01-c1
# librbd's own error log ("image has no parent") stays off stderr, even
# when the configuration sends a client's log there
{ cat "$CEPH_CONF"; printf '[client]\nlog to stderr = true\nerr to stderr = true\n'; } \
    >"$T/loud.conf"
expect_exit 1 '^ceph-util: flatten rbd/t01-c1: Invalid argument \(rbd_flatten\)$' \
    "$U" --conf "$T/loud.conf" flatten rbd/t01-c1
expect_ok "$U" snap-remove rbd/t01-a s1
expect_ok "$U" image-info rbd/t01-a
expect_eq "$(jq -c .snaps <<<"$OUT")" '[]' "snapshots after snap-remove"
rbd_read rbd/t01-c1 0x11 0 $MiB
rbd_read rbd/t01-c1 0x12 $((20 * MiB)) $MiB
rbd_read rbd/t01-c1 0x55 $((8 * MiB)) $MiB
expect_exit 2 'snap-remove rbd/t01-a@s1: No such file or directory' \
    "$U" snap-remove rbd/t01-a s1

step "snap-remove --flatten -p: clones flattened, snapshot gone, clones intact"
expect_ok "$U" snap-create rbd/t01-a s2
rbd_write rbd/t01-a 0x66 0 $MiB
expect_ok "$U" clone rbd/t01-a s2 rbd/t01-c2
expect_ok "$U" clone rbd/t01-a s2 rbd/t01-c3
rbd_write rbd/t01-c3 0x77 $((2 * MiB)) $MiB
run "$U" snap-remove rbd/t01-a s2
expect_eq "$RC" 4 "snap-remove of a snapshot with two clones"
expect_match "$ERR" 'clones: rbd/t01-c2 rbd/t01-c3 \(' "the clones named"
expect_ok "$U" snap-remove -p --flatten rbd/t01-a s2
expect_match "$OUT" '    \(100\.00/100%\)' "snap-remove --flatten -p's progress"
expect_ok "$U" image-info rbd/t01-a
expect_eq "$(jq -c .snaps <<<"$OUT")" '[]' "snapshots after snap-remove --flatten"
for c in t01-c2 t01-c3; do
    expect_ok "$U" image-info rbd/$c
    expect_eq "$(jq -c .parent <<<"$OUT")" null "$c's parent"
    rbd_read rbd/$c 0x33 0 $MiB
    rbd_read rbd/$c 0x12 $((20 * MiB)) $MiB
done
rbd_read rbd/t01-c3 0x77 $((2 * MiB)) $MiB
rbd_read rbd/t01-a 0x66 0 $MiB

step "a protected snapshot without clones: unprotected and removed"
expect_ok "$U" snap-create rbd/t01-a s3
expect_ok rbd -p rbd snap protect t01-a@s3
expect_ok "$U" image-info rbd/t01-a
expect_eq "$(jq -c '[.snaps[].protected]' <<<"$OUT")" '[true]' "protected"
expect_ok "$U" snap-remove rbd/t01-a s3
expect_ok "$U" image-info rbd/t01-a
expect_eq "$(jq -c .snaps <<<"$OUT")" '[]' "the protected snapshot removed"

# ------------------------------------------------------------------ 4
step "--bandwidth slows a flatten (32 MiB at 8 MiB/s)"
rbd_write rbd/t01-a 0x88 0 $((32 * MiB))
expect_ok "$U" snap-create rbd/t01-a s4
expect_ok "$U" clone rbd/t01-a s4 rbd/t01-c4
expect_ok "$U" clone rbd/t01-a s4 rbd/t01-c5
t0=$(date +%s%N)
expect_ok "$U" flatten rbd/t01-c4
fast=$((($(date +%s%N) - t0) / 1000000))
t0=$(date +%s%N)
expect_ok "$U" flatten -p --bandwidth $((8 * MiB)) rbd/t01-c5
slow=$((($(date +%s%N) - t0) / 1000000))
echo "    flatten of 32 MiB: ${fast} ms unlimited, ${slow} ms at 8 MiB/s"
[ "$slow" -ge 3000 ] || fail "flatten at 8 MiB/s took ${slow} ms (< 3 s)"
[ "$slow" -ge $((fast * 2)) ] ||
    fail "flatten at 8 MiB/s (${slow} ms) not slower than unlimited (${fast} ms)"
expect_match "$OUT" '\(50\.00/100%\)' "progress at half-way"
rbd_read rbd/t01-c5 0x88 0 $((32 * MiB))
expect_ok "$U" snap-remove rbd/t01-a s4

# ------------------------------------------------------------------ 5
step "rename, remove"
expect_ok "$U" rename rbd/t01-c4 t01-r4
expect_ok "$U" ls rbd
expect_eq "$(jq -c '[.[] | select(startswith("t01-c4") or startswith("t01-r4"))]' <<<"$OUT")" \
    '["t01-r4"]' "ls after rename"
rbd_read rbd/t01-r4 0x88 0 $MiB
expect_exit 2 'rename rbd/t01-c4: No such file or directory' "$U" rename rbd/t01-c4 t01-x
expect_exit 3 'rename rbd/t01-r4: File exists' "$U" rename rbd/t01-r4 t01-c5
run "$U" rename rbd/t01-r4 other/t01-x
expect_eq "$RC" 64 "rename to another pool"
expect_ok "$U" snap-create rbd/t01-r4 s5
expect_exit 3 'remove rbd/t01-r4: Directory not empty \(rbd_remove: the image has snapshots\)' \
    "$U" remove rbd/t01-r4
expect_ok "$U" snap-remove rbd/t01-r4 s5
expect_ok "$U" remove -p rbd/t01-r4
expect_match "$OUT" '    \(100\.00/100%\)' "remove -p's progress"
expect_exit 2 'remove rbd/t01-r4: No such file or directory' "$U" remove rbd/t01-r4
for c in t01-c1 t01-c2 t01-c3 t01-c5 t01-a; do
    expect_ok "$U" remove rbd/$c
done
expect_ok "$U" ls rbd
expect_eq "$(jq -c '[.[] | select(startswith("t01-"))]' <<<"$OUT")" '[]' "no t01 image left"

# ------------------------------------------------------------------ 6
step "omap-set, omap-get, omap-dump: odd bytes round trip"
odd=$'a "quoted" \\back\\slash\\n\nnew line\ttab \x01 \xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac {"json":[1]}'
oddkey=$'k "\\ \xc3\xa9'
expect_ok "$U" omap-set rbd t01-o set rec1 "$odd" set "$oddkey" v2 set x3 ""
expect_ok "$U" omap-get rbd t01-o rec1
printf '%s' "$odd" >"$T/odd.want"
cmp "$T/.out" "$T/odd.want" || fail "omap-get: not the bytes set" \
    "$(od -c "$T/.out" | head; echo want; od -c "$T/odd.want" | head)"
expect_ok "$U" omap-dump rbd t01-o
jq -j .rec1 <"$T/.out" >"$T/odd.got" || fail_run "omap-dump is not JSON"
cmp "$T/odd.got" "$T/odd.want" || fail "omap-dump: rec1 not the bytes set"
expect_eq "$(jq -r --arg k "$oddkey" '.[$k]' <"$T/.out")" v2 "the odd key's value"
expect_eq "$(jq -c 'keys | length' <"$T/.out")" 3 "keys in the dump"
expect_eq "$(jq -r .x3 <"$T/.out")" "" "an empty value"
expect_ok "$U" omap-dump rbd t01-o rec
expect_eq "$(jq -c 'keys' <"$T/.out")" '["rec1"]' "omap-dump with a prefix"
expect_exit 2 "omap-get t01-o: No such file or directory \(no omap key 'nosuch'\)" \
    "$U" omap-get rbd t01-o nosuch
expect_exit 2 'omap-get t01-none: No such file or directory' "$U" omap-get rbd t01-none k
expect_exit 2 'omap-dump t01-none: No such file or directory' "$U" omap-dump rbd t01-none
expect_exit 2 'No such file or directory \(pool t01-nopool\)' "$U" omap-dump t01-nopool o

step "omap-set: one op (rm, set, rmall in order); 1500 keys, paged"
expect_ok "$U" omap-set rbd t01-o rm rec1 set rec2 two
expect_ok "$U" omap-dump rbd t01-o
expect_eq "$(jq -c 'keys | sort' <"$T/.out")" "$(jq -cn --arg k "$oddkey" '[$k, "rec2", "x3"] | sort')" \
    "keys after rm + set"
expect_ok "$U" omap-set rbd t01-o rmall set only 1
expect_ok "$U" omap-dump rbd t01-o
expect_eq "$OUT" '{"only":"1"}' "after rmall + set"
args=()
for i in $(seq -w 1 1500); do args+=(set "k$i" "value $i"); done
expect_ok "$U" omap-set rbd t01-big "${args[@]}"
expect_ok "$U" omap-dump rbd t01-big
expect_eq "$(jq 'length' <"$T/.out")" 1500 "keys of a 1500-key omap"
expect_eq "$(jq -r '.k0001 + "|" + .k1000 + "|" + .k1001 + "|" + .k1500' <"$T/.out")" \
    "value 0001|value 1000|value 1001|value 1500" "values across the page boundary"
run "$U" omap-set rbd t01-o bogus
expect_eq "$RC" 64 "omap-set with a bad operation"

step "ls-objects, remove-object"
expect_ok "$U" ls-objects rbd t01-
expect_eq "$OUT" '["t01-big","t01-o"]' "ls-objects with a prefix"
expect_ok "$U" remove-object rbd t01-big
expect_exit 2 'remove-object t01-big: No such file or directory' \
    "$U" remove-object rbd t01-big
expect_ok "$U" ls-objects rbd t01-
expect_eq "$OUT" '["t01-o"]' "ls-objects after remove-object"

# ------------------------------------------------------------------ 7
# hold_lock NAME COOKIE LEASE DESC: lock-hold in the background, its
# stdin a fifo on fd 8 (HOLD_PID, its output in $T/hold.out, .err)
hold_lock() {
    rm -f "$T/hin"
    mkfifo "$T/hin"
    "$U" lock-hold rbd t01-lk "$1" "$2" "$3" "$4" <"$T/hin" >"$T/hold.out" 2>"$T/hold.err" &
    HOLD_PID=$!
    BG_PIDS="$HOLD_PID"
    exec 8>"$T/hin"
    for _ in $(seq 100); do
        [ -s "$T/hold.out" ] && break
        kill -0 "$HOLD_PID" 2>/dev/null || break
        sleep 0.1
    done
    expect_eq "$(cat "$T/hold.out")" locked "lock-hold's output"
}

# hold_exit: waits for the holder; its exit status in HOLD_RC
hold_exit() {
    wait "$HOLD_PID"
    HOLD_RC=$?
    BG_PIDS=
}

step "lock-hold: a second holder exits 3 with the first's description"
hold_lock dom cookie-A 6 "host A pid 123"
expect_ok "$U" lockers rbd t01-lk dom
expect_eq "$(jq -c '[.[] | [.cookie, .description, (.locker | test("^client\\.[0-9]+$")), (.expiration > now)]]' <<<"$OUT")" \
    '[["cookie-A","host A pid 123",true,true]]' "lockers"
expect_exit 3 'lock-hold t01-lk: lock dom is held by another' \
    "$U" lock-hold rbd t01-lk dom cookie-B 6 "host B" </dev/null
expect_eq "$(jq -c '[.cookie, .description]' <<<"$OUT")" '["cookie-A","host A pid 123"]' \
    "the busy holder's JSON"
expect_match "$(jq -r .address <<<"$OUT")" '127\.0\.0\.1' "the holder's address"
expect_ok "$U" omap-set rbd t01-lk --lock dom cookie-A set j1 a1
expect_exit 3 'omap-set t01-lk: Device or resource busy \(lock dom is held by client\.[0-9]+, cookie cookie-A, "host A pid 123", not by cookie cookie-B\)' \
    "$U" omap-set rbd t01-lk --lock dom cookie-B set j1 b1
expect_exit 3 'lock other is not held' "$U" omap-set rbd t01-lk --lock other cookie-A set j1 b1

step "the holder renews past its lease (6 s): writes under the lock go on"
exp1=$("$U" lockers rbd t01-lk dom | jq '.[0].expiration')
for i in 1 2 3 4; do
    sleep 2
    expect_ok "$U" omap-set rbd t01-lk --lock dom cookie-A set "r$i" "$i"
done
expect_ok "$U" lockers rbd t01-lk dom
expect_eq "$(jq --argjson e "$exp1" '.[0].expiration > $e' <<<"$OUT")" true "renewed expiration"
# renewals race with writes: the write retries
for i in $(seq 10); do
    expect_ok "$U" omap-set rbd t01-lk --lock dom cookie-A set "w$i" "$i"
done

step "unlock: the lock goes at once"
echo unlock >&8
hold_exit
expect_eq "$HOLD_RC" 0 "lock-hold's exit status after unlock"
expect_ok "$U" lockers rbd t01-lk dom
expect_eq "$OUT" "[]" "lockers after unlock"
expect_exit 3 'lock dom is not held \(by cookie cookie-A\)' \
    "$U" omap-set rbd t01-lk --lock dom cookie-A set j1 late

step "EOF: the lock stays until the lease ends, then another takes it"
hold_lock dom cookie-A 6 "host A again"
exec 8>&-
t0=$(date +%s%N)
hold_exit
expect_eq "$HOLD_RC" 0 "lock-hold's exit status at EOF"
expect_exit 3 'lock dom is held by another' \
    "$U" lock-hold rbd t01-lk dom cookie-B 6 "host B" </dev/null
expect_eq "$(jq -r .description <<<"$OUT")" "host A again" "the holder after EOF"
got=
for _ in $(seq 100); do
    run "$U" lock-hold rbd t01-lk dom cookie-B 30 "host B" </dev/null
    if [ "$RC" -eq 0 ]; then got=1; break; fi
    [ "$RC" -eq 3 ] || fail_run "lock-hold: expected 0 or 3"
    sleep 0.2
done
waited=$((($(date +%s%N) - t0) / 1000000))
echo "    the lock was free again ${waited} ms after the holder's EOF (lease 6 s)"
[ -n "$got" ] || fail "the lock was not free 20 s after its holder's EOF"
[ "$waited" -ge 1000 ] || fail "the lock was free at once (${waited} ms) after EOF"
[ "$waited" -le 9000 ] || fail "the lock was free only after ${waited} ms (lease 6 s)"
expect_eq "$OUT" locked "the new holder's output"
expect_ok "$U" lockers rbd t01-lk dom
expect_eq "$(jq -c '[.[] | .cookie]' <<<"$OUT")" '["cookie-B"]' "the new holder"

step "omap-set --lock by the old holder: refused (3), nothing written"
expect_exit 3 'not by cookie cookie-A' \
    "$U" omap-set rbd t01-lk --lock dom cookie-A set j1 stale rmall
expect_ok "$U" omap-get rbd t01-lk j1
expect_eq "$OUT" a1 "j1 after the refused write"
expect_ok "$U" omap-set rbd t01-lk --lock dom cookie-B set j1 b2
expect_ok "$U" omap-get rbd t01-lk j1
expect_eq "$OUT" b2 "j1 written by the new holder"

step "the lock taken over between omap-set --lock's check and its write: nothing written"
# tests/ceph/pause-write.c stops omap-set before its write op goes out
expect_ok "$U" remove-object rbd t01-lk
run cc -shared -fPIC -O2 -Wall -Werror -o "$T/pause-write.so" \
    "$REPO/tests/ceph/pause-write.c" -ldl
[ "$RC" -eq 0 ] || fail_run "tests/ceph/pause-write.c does not build"
hold_lock dom cookie-E 3 "host E"
expect_ok "$U" omap-set rbd t01-lk --lock dom cookie-E set f1 before
PAUSE_WRITE=$T/pw LD_PRELOAD=$T/pause-write.so \
    "$U" omap-set rbd t01-lk --lock dom cookie-E set f1 late >"$T/pw.out" 2>"$T/pw.err" &
PW_PID=$!
BG_PIDS="$HOLD_PID $PW_PID"
for _ in $(seq 100); do [ -e "$T/pw.reached" ] && break; sleep 0.1; done
[ -e "$T/pw.reached" ] || fail "omap-set did not reach its write" "$(cat "$T/pw.err")"
kill -9 "$HOLD_PID"                 # host E dies; its lease (3 s) runs out
hold_exit 2>/dev/null   # (no "Killed" line)
got=
for _ in $(seq 60); do
    run "$U" lock-hold rbd t01-lk dom cookie-F 30 "host F" </dev/null
    if [ "$RC" -eq 0 ]; then got=1; break; fi
    sleep 0.2
done
[ -n "$got" ] || fail_run "host F did not get the lock after host E's lease"
touch "$T/pw.go"
wait "$PW_PID"
pw_rc=$?
BG_PIDS=
expect_eq "$pw_rc" 3 "the stale holder's omap-set, let go after the takeover"
expect_eq "$(wc -l <"$T/pw.err")" 1 "lines on its stderr"
expect_match "$(cat "$T/pw.err")" 'lock dom is held by client\.[0-9]+, cookie cookie-F, "host F", not by cookie cookie-E' \
    "its error"
expect_ok "$U" omap-get rbd t01-lk f1
expect_eq "$OUT" before "f1 after the stale holder's write"

step "a holder whose lock was broken exits 3 at its next renewal"
expect_ok "$U" remove-object rbd t01-lk
hold_lock dom cookie-C 3 "host C"
locker=$("$U" lockers rbd t01-lk dom | jq -r '.[0].locker')
expect_ok rados -p rbd lock break t01-lk dom "$locker" --lock-cookie cookie-C
for _ in $(seq 50); do
    kill -0 "$HOLD_PID" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$HOLD_PID" 2>/dev/null && fail "lock-hold still runs 5 s after its lock was broken"
hold_exit
expect_eq "$HOLD_RC" 3 "lock-hold's exit status once its lock is lost"
expect_eq "$(wc -l <"$T/hold.err")" 1 "lines on lock-hold's stderr"
expect_match "$(cat "$T/hold.err")" '^ceph-util: lock-hold t01-lk: .*renewing lock dom: the lock was lost' \
    "lock-hold's error"
expect_ok "$U" remove-object rbd t01-lk

step "renewals that time out (the OSD stopped): kept within the lease, lost past it"
OSD_PID=$(cat "$(dirname "$CEPH_CONF")/run/osd.pid" 2>/dev/null)
[ -n "$OSD_PID" ] && kill -0 "$OSD_PID" ||
    fail "no OSD pid beside $CEPH_CONF (run/osd.pid)"
at_cleanup 'kill -CONT "$OSD_PID" 2>/dev/null'
hold_lock dom cookie-D 6 "host D"
kill -STOP "$OSD_PID"
sleep 4                             # renewals every 2 s time out (2 s)
kill -CONT "$OSD_PID"
sleep 3
kill -0 "$HOLD_PID" 2>/dev/null ||
    fail "lock-hold gave up after a 4 s stall (lease 6 s)" "$(cat "$T/hold.err")"
expect_ok "$U" lockers rbd t01-lk dom
expect_eq "$(jq -c '[.[] | .cookie]' <<<"$OUT")" '["cookie-D"]' "the holder after a 4 s stall"
kill -STOP "$OSD_PID"
sleep 10
kill -CONT "$OSD_PID"
hold_exit
expect_eq "$HOLD_RC" 3 "lock-hold's exit status after a 10 s stall (lease 6 s)"
expect_match "$(cat "$T/hold.err")" '^ceph-util: lock-hold t01-lk: Connection timed out \(renewing lock dom: the lock was lost\)$' \
    "lock-hold's error after a stall"
expect_ok "$U" lockers rbd t01-lk dom
expect_eq "$OUT" "[]" "lockers after the lapsed lease"
expect_ok "$U" remove-object rbd t01-lk
expect_ok "$U" remove-object rbd t01-o

echo "PASS: $TEST_NAME"
