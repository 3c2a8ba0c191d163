/*
 * libxl_snapshot_store_rados.c - the RADOS record store (a pool's hosts
 * share one snapshot tree)
 *
 * XL_SNAPSHOT_STORE=rados:POOL.  Each domain has one object in POOL,
 * "xl-snapshot.<uuid>"; the names the directory store would give its
 * files (domain.libxl-json, snapshotdata-<name>.libxl-json,
 * journal.libxl-json, blockjob-<vdev>.libxl-json) are its omap keys,
 * their texts the values, byte for byte.  Every host that reaches the
 * cluster sees the same records, journal and job records: an operation
 * a dead host left half-done is recovered by the next command on any
 * host, through the same recovery as on one host.
 *
 * Everything goes through tools/ceph-util (the one program that links
 * librados), run with argv by libxl__exec_sync; CEPH_CONF, if set, is
 * its ceph.conf (librados reads it), XL_SNAPSHOT_CEPH_ID its client id.
 *
 * Writes.  A put is ONE omap-set: one atomic RADOS write op, so a save
 * (records, domain record, removals) is all or nothing.  While we hold
 * the lock, the op also asserts that we still do (cls_lock
 * assert_locked with our cookie): a holder whose lease ran out and was
 * taken over cannot write over its successor's records (exit 3, said
 * as such).  Only a put too long for one command line (over
 * PUT_ARGV_MAX bytes: a first save of thousands of records) is split,
 * in order, into several ops, each atomic: the order of a save keeps
 * the records consistent between any two of them, as the directory
 * store's one file at a time does.
 *
 * Reads.  The first read of a command is one omap-dump of the whole
 * object, kept in st's cache (sorted: a get by name is a bsearch); the
 * other reads answer from it, but for the domain record read first,
 * alone (omap-get: a lookup by name reads it in every domain's object).
 * So snapshot-list is three ceph-util runs (the domain found by name:
 * ls-objects, then its domain record; then all of its object, once),
 * however many records (bench/rados-store.sh).  The cache is dropped when the lock
 * is taken (another host may have written before), and follows our own
 * puts, which also skip names whose text is unchanged.
 *
 * The lock.  A RADOS exclusive lock "xl-snapshot" on the object, held
 * by a child, `ceph-util lock-hold`, that renews its lease (every third
 * of it) while its stdin stays open.  trylock starts it on a socket
 * pair (a write to a child that died is EPIPE, not SIGPIPE) and reads
 * its first line: "locked", or (exit 3) the holder as JSON, whose
 * description ("host H pid P", ours given at trylock) the busy error
 * names.  unlock writes "unlock" and reaps it.  A process killed while
 * holding the lock closes the socket: the child exits without
 * unlocking, so the lease (XL_SNAPSHOT_LOCK_LEASE, default 30 s) runs
 * out and another host's lock-hold takes it; that command then finds
 * the journal and recovers it.
 */
#include "libxl_snapshot_internal.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <inttypes.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define OBJ_PREFIX "xl-snapshot."
#define LOCK_NAME "xl-snapshot"
#define DOMAIN_RECORD "domain.libxl-json"
#define RADOS_TIMEOUT_MS 60000
/* lock-hold's answer: connecting to the cluster included */
#define LOCK_ANSWER_MS 60000
/* one omap-set's argv at most (ARG_MAX is 2 MiB with the environment) */
#define PUT_ARGV_MAX (1024 * 1024)

/* argv: ceph-util [--id ID] CMD POOL [OBJ] then room for more */
static const char **args_new(libxl__gc *gc, const char *cmd,
                             const libxl__rados_store *r, int more,
                             int *n_r)
{
    const char **a;
    int n = 0;

    GCNEW_ARRAY(a, 8 + more);
    a[n++] = CTX->ceph_util;
    if (CTX->ceph_id) {
        a[n++] = "--id";
        a[n++] = CTX->ceph_id;
    }
    a[n++] = cmd;
    a[n++] = r ? r->pool : CTX->store_pool;
    if (r) a[n++] = r->obj;
    *n_r = n;
    return a;
}

/*
 * Runs it; 0, ERROR_NOTFOUND (exit 2: pool, object or key absent),
 * ERROR_LOCK_FAIL (exit 3: busy, or our lock lost), else ERROR_FAIL;
 * a failure but NOTFOUND, and but a fenced write's (omap-set --lock
 * refused: the caller says why), logged at lvl with ceph-util's line.
 */
static int run(libxl__gc *gc, const char *const *args, char **out_r,
               xentoollog_level lvl)
{
    char *err = NULL;
    const char *line;
    int rc, status;

    rc = libxl__exec_sync_exit(gc, args, RADOS_TIMEOUT_MS, out_r, &err,
                                 &status);
    if (!rc) return 0;
    line = libxl__tool_error_line(gc, err);
    if (status == 2 && line && strstr(line, "(pool ")) {
        /* the store's pool itself: a typo, not an empty tree */
        LOG(ERROR, "the record store's pool %s does not exist "
            "(XL_SNAPSHOT_STORE=rados:%s)", CTX->store_pool,
            CTX->store_pool);
        return ERROR_FAIL;
    }
    if (status == 2) return ERROR_NOTFOUND;
    if (status == 3 && args[CTX->ceph_id ? 6 : 4] &&
        !strcmp(args[CTX->ceph_id ? 6 : 4], "--lock"))
        return ERROR_LOCK_FAIL;       /* the caller says it (fenced) */
    if (status >= 0)
        libxl__snapshot_log(CTX, lvl, -1, __FILE__, __LINE__, __func__,
                            "%s", line ? line : GCSPRINTF("%s %s failed "
                            "(exit %d)", args[0], args[CTX->ceph_id ? 3 : 1],
                            status));
    return status == 3 ? ERROR_LOCK_FAIL : rc;
}

/* ---------------------------------------------------------------- */
/* the cache */

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cache_find(const libxl__rados_store *r, const char *key)
{
    char *const *hit;

    if (!r->n) return -1;
    hit = bsearch(&key, r->keys, r->n, sizeof(*r->keys), key_cmp);
    return hit ? (int)(hit - r->keys) : -1;
}

/* value NULL: removed */
static void cache_set(libxl__gc *gc, libxl__rados_store *r, const char *key,
                      const char *value, size_t len)
{
    int i = cache_find(r, key), at;

    if (i >= 0 && !value) {
        memmove(&r->keys[i], &r->keys[i + 1], (r->n - i - 1) *
                sizeof(*r->keys));
        memmove(&r->vals[i], &r->vals[i + 1], (r->n - i - 1) *
                sizeof(*r->vals));
        r->n--;
        return;
    }
    if (!value) return;
    if (i < 0) {
        for (at = r->n; at > 0 && strcmp(r->keys[at - 1], key) > 0; at--)
            ;
        GCREALLOC_ARRAY(r->keys, r->n + 1);
        GCREALLOC_ARRAY(r->vals, r->n + 1);
        memmove(&r->keys[at + 1], &r->keys[at], (r->n - at) *
                sizeof(*r->keys));
        memmove(&r->vals[at + 1], &r->vals[at], (r->n - at) *
                sizeof(*r->vals));
        r->n++;
        i = at;
        r->keys[i] = GCSTRDUP(key);
    }
    r->vals[i] = libxl__gc_zalloc(gc, len + 1);
    memcpy(r->vals[i], value, len);
}

/*
 * The cache from omap-dump's JSON object (keys and string values);
 * ERROR_INVAL when it is not that.
 */
typedef struct { char *key, *val; } kv;

static int kv_cmp(const void *a, const void *b)
{
    return strcmp(((const kv *)a)->key, ((const kv *)b)->key);
}

int libxl__rados_cache_parse(libxl__gc *gc, libxl__rados_store *r,
                             const char *json)
{
    yajl_val v = libxl__json_parse(gc, json);
    kv *p;
    size_t i;

    r->cached = false;
    r->n = 0;
    if (!v || !YAJL_IS_OBJECT(v)) return ERROR_INVAL;
    GCNEW_ARRAY(p, v->u.object.len + 1);
    for (i = 0; i < v->u.object.len; i++) {
        const char *s = YAJL_GET_STRING(v->u.object.values[i]);
        if (!s) return ERROR_INVAL;
        p[i].key = GCSTRDUP(v->u.object.keys[i]);
        p[i].val = GCSTRDUP(s);
    }
    qsort(p, v->u.object.len, sizeof(*p), kv_cmp);
    GCNEW_ARRAY(r->keys, v->u.object.len + 1);
    GCNEW_ARRAY(r->vals, v->u.object.len + 1);
    for (i = 0; i < v->u.object.len; i++) {
        if (r->n && !strcmp(r->keys[r->n - 1], p[i].key)) continue;
        r->keys[r->n] = p[i].key;
        r->vals[r->n++] = p[i].val;
    }
    r->cached = true;
    return 0;
}

/* ---------------------------------------------------------------- */
/* the store's operations */

static int rados_open(libxl__gc *gc, libxl__snapshot_store *st,
                      const char *state_dir, const libxl_uuid *uuid)
{
    libxl__rados_store *r;

    GCNEW(r);
    r->pool = GCSTRDUP(CTX->store_pool);
    r->obj = GCSPRINTF(OBJ_PREFIX LIBXL_UUID_FMT, LIBXL_UUID_BYTES(*uuid));
    r->holder = -1;
    st->rados = r;
    st->dir = GCSPRINTF("rados:%s/%s", r->pool, r->obj);
    if (state_dir) {
        /* the directory store's records of it are not read: say so */
        const char *old = GCSPRINTF("%s/"LIBXL_UUID_FMT"/domain.libxl-json",
                                    state_dir, LIBXL_UUID_BYTES(*uuid));
        if (!CTX->store_dir_said && libxl__file_exists(old) &&
            (CTX->store_dir_said = true))
            LOG(WARN, "the records in %s are not used with "
                "XL_SNAPSHOT_STORE=rados:%s (the pool's are): copy them "
                "into its object %s to keep them", libxl__path_dirname(gc,
                old), r->pool, r->obj);
    }
    return 0;
}

static int rados_list(libxl__gc *gc, const libxl__snapshot_store *st,
                      const char *prefix, char ***names_r, char ***values_r,
                      int *n_r);

/*
 * From the cache, read first if need be: one omap-dump costs what one
 * omap-get does (a ceph-util run and its connection, ~70 ms, are most
 * of it), and a command reads several names (journal, domain record,
 * records).
 */
static int rados_get(libxl__gc *gc, const libxl__snapshot_store *st,
                     const char *name, char **data_r, size_t *len_r)
{
    const libxl__rados_store *r = st->rados;
    const char **a;
    char **names, *out;
    int i, n, rc;

    if (!r->cached && data_r && !strcmp(name, DOMAIN_RECORD)) {
        /* the domain record alone: what a lookup by name reads in
         * every domain's object (not all of its records) */
        a = args_new(gc, "omap-get", r, 1, &n);
        a[n++] = name;
        a[n] = NULL;
        rc = run(gc, a, &out, XTL_ERROR);
        if (rc) return rc;
        *data_r = out;
        if (len_r) *len_r = strlen(out);
        return 0;
    }
    if (!r->cached) {
        rc = rados_list(gc, st, "", &names, NULL, &n);
        if (rc) return rc;
    }
    i = cache_find(r, name);
    if (i < 0) return ERROR_NOTFOUND;
    if (!data_r) return 0;
    *data_r = GCSTRDUP(r->vals[i]);
    if (len_r) *len_r = strlen(*data_r);
    return 0;
}

static int rados_list(libxl__gc *gc, const libxl__snapshot_store *st,
                      const char *prefix, char ***names_r, char ***values_r,
                      int *n_r)
{
    libxl__rados_store *r = st->rados;
    const char **a;
    char *out, **names = NULL, **values = NULL;
    size_t pl = strlen(prefix);
    int i, n, rc;

    *names_r = NULL;
    if (values_r) *values_r = NULL;
    *n_r = 0;
    if (!r->cached) {
        a = args_new(gc, "omap-dump", r, 0, &n);
        a[n] = NULL;
        rc = run(gc, a, &out, XTL_ERROR);
        if (rc == ERROR_NOTFOUND) {
            out = "{}";                /* no object yet: no records */
        } else if (rc) {
            return rc;
        }
        if (libxl__rados_cache_parse(gc, r, out)) {
            LOG(ERROR, "%s: ceph-util omap-dump gave no JSON object",
                st->dir);
            return ERROR_FAIL;
        }
    }
    GCNEW_ARRAY(names, r->n + 1);
    if (values_r) GCNEW_ARRAY(values, r->n + 1);
    for (i = n = 0; i < r->n; i++) {
        if (strncmp(r->keys[i], prefix, pl)) continue;
        names[n] = r->keys[i];
        if (values_r) values[n] = r->vals[i];
        n++;
    }
    *names_r = names;
    if (values_r) *values_r = values;
    *n_r = n;
    return 0;
}

/*
 * The omap-set commands of a put, each at most PUT_ARGV_MAX bytes of
 * arguments (one more for each op that would be longer alone), names
 * whose value the cache has already left out; *nargs_r of them.
 */
const char ***libxl__rados_put_args(libxl__gc *gc,
                                    const libxl__rados_store *r,
                                    const libxl__store_put *p, int np,
                                    int *nargs_r)
{
    const char ***all = NULL, **a = NULL;
    size_t bytes = 0, each;
    int i, n = 0, nall = 0;

    for (i = 0; i < np; i++) {
        if (r->cached) {
            int k = cache_find(r, p[i].name);
            if (!p[i].value ? k < 0
                : k >= 0 && strlen(r->vals[k]) == p[i].len &&
                  !memcmp(r->vals[k], p[i].value, p[i].len))
                continue;             /* unchanged */
        }
        each = strlen(p[i].name) + 5 + (p[i].value ? p[i].len + 1 : 0);
        if (a && bytes + each > PUT_ARGV_MAX) {
            a[n] = NULL;
            a = NULL;
        }
        if (!a) {
            a = args_new(gc, "omap-set", r, 3 + 3 * (np - i), &n);
            if (r->cookie) {
                a[n++] = "--lock";
                a[n++] = LOCK_NAME;
                a[n++] = r->cookie;
            }
            bytes = 0;
            GCREALLOC_ARRAY(all, nall + 2);
            all[nall++] = a;
        }
        a[n++] = p[i].value ? "set" : "rm";
        a[n++] = p[i].name;
        if (p[i].value) {
            char *v = libxl__gc_zalloc(gc, p[i].len + 1);
            memcpy(v, p[i].value, p[i].len);
            a[n++] = v;
        }
        bytes += each;
    }
    if (a) a[n] = NULL;
    *nargs_r = nall;
    return all;
}

static int rados_put(libxl__gc *gc, const libxl__snapshot_store *st,
                     const libxl__store_put *p, int np,
                     xentoollog_level lvl)
{
    libxl__rados_store *r = st->rados;
    const char ***cmds;
    int i, k, ncmds, rc = 0;

    cmds = libxl__rados_put_args(gc, r, p, np, &ncmds);
    for (k = 0; k < ncmds; k++) {
        rc = run(gc, cmds[k], NULL, lvl);
        if (rc == ERROR_LOCK_FAIL && r->cookie)
            libxl__snapshot_log(CTX, lvl, -1, __FILE__, __LINE__, __func__,
                                "%s: nothing written: this command no "
                                "longer holds the domain's lock (its lease "
                                "ran out and another host took it)",
                                st->dir);
        if (rc == ERROR_NOTFOUND) {
            libxl__snapshot_log(CTX, lvl, -1, __FILE__, __LINE__, __func__,
                                "%s: cannot write: pool %s not found",
                                st->dir, r->pool);
            rc = ERROR_FAIL;
        }
        if (rc) break;
    }
    /* the cache follows what was written (all of it when rc is 0) */
    if (!rc && r->cached) {
        for (i = 0; i < np; i++)
            cache_set(gc, r, p[i].name, p[i].value, p[i].len);
    } else if (rc) {
        r->cached = false;            /* what is there: ask again */
    }
    return rc;
}

static int rados_domains(libxl__gc *gc, libxl_uuid **uuids_r, int *n_r)
{
    const char **a;
    char *out;
    yajl_val v;
    libxl_uuid *u;
    size_t i;
    int n, rc;

    *uuids_r = NULL;
    *n_r = 0;
    a = args_new(gc, "ls-objects", NULL, 1, &n);
    a[n++] = OBJ_PREFIX;
    a[n] = NULL;
    rc = run(gc, a, &out, XTL_ERROR);
    if (rc == ERROR_NOTFOUND) return 0;
    if (rc) return rc;
    v = libxl__json_parse(gc, out);
    if (!v || !YAJL_IS_ARRAY(v)) {
        LOG(ERROR, "rados:%s: ceph-util ls-objects gave no JSON array",
            CTX->store_pool);
        return ERROR_FAIL;
    }
    GCNEW_ARRAY(u, v->u.array.len + 1);
    for (i = n = 0; i < v->u.array.len; i++) {
        const char *s = YAJL_GET_STRING(v->u.array.values[i]);
        if (s && !strncmp(s, OBJ_PREFIX, strlen(OBJ_PREFIX)) &&
            !libxl_uuid_from_string(&u[n], s + strlen(OBJ_PREFIX)))
            n++;
    }
    *uuids_r = u;
    *n_r = n;
    return 0;
}

/* lock-hold's busy answer -> who: its description, else its locker */
const char *libxl__rados_holder(libxl__gc *gc, const char *json)
{
    yajl_val v = json ? libxl__json_parse(gc, json) : NULL;
    const char *d = v ? libxl__json_get_string(v, "description") : NULL;
    const char *l = v ? libxl__json_get_string(v, "locker") : NULL;
    const char *addr = v ? libxl__json_get_string(v, "address") : NULL;

    if (d && *d) return GCSTRDUP(libxl__printable(gc, d));
    if (l && *l)
        return GCSPRINTF("%s%s%s", libxl__printable(gc, l),
                         addr ? " at " : "",
                         addr ? libxl__printable(gc, addr) : "");
    return NULL;
}

/* Reads fd until EOF, a newline (stop_at_nl) or the deadline. */
static char *read_answer(libxl__gc *gc, int fd, bool stop_at_nl,
                         uint64_t deadline)
{
    char *buf = libxl__gc_zalloc(gc, 1), chunk[4096];
    size_t len = 0;
    ssize_t got;
    struct pollfd pfd = { fd, POLLIN, 0 };

    for (;;) {
        uint64_t now = libxl__now_ms();
        int r;
        if (stop_at_nl && memchr(buf, '\n', len)) break;
        if (now >= deadline) break;
        r = poll(&pfd, 1, (int)(deadline - now));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got = read(fd, chunk, sizeof(chunk));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        GCREALLOC_ARRAY(buf, len + got + 1);
        memcpy(buf + len, chunk, got);
        len += got;
        buf[len] = 0;
    }
    return buf;
}

static int rados_trylock(libxl__gc *gc, libxl__snapshot_store *st,
                         const char *me, const char **holder_r)
{
    libxl__rados_store *r = st->rados;
    int sv[2] = { -1, -1 }, outp[2] = { -1, -1 }, errp[2] = { -1, -1 };
    int i, n, rc, status = 0;
    const char **a;
    char *out, *err;
    pid_t pid = -1, w;
    uint64_t deadline = libxl__now_ms() + LOCK_ANSWER_MS;
    uint64_t rnd[2];

    *holder_r = NULL;
    {
        /* unique to this holder: the fence of omap-set --lock */
        char host[64] = "";
        struct timespec ts;
        gethostname(host, sizeof(host) - 1);
        if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
            clock_gettime(CLOCK_REALTIME, &ts);
            rnd[0] = (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
            rnd[1] = (uint64_t)getpid() << 32 ^ (uintptr_t)&ts;
        }
        r->cookie = GCSPRINTF("%s-%d-%016"PRIx64"%016"PRIx64, host,
                              (int)getpid(), rnd[0], rnd[1]);
    }
    a = args_new(gc, "lock-hold", r, 4, &n);
    a[n++] = LOCK_NAME;
    a[n++] = r->cookie;
    a[n++] = GCSPRINTF("%d", CTX->lock_lease);
    a[n++] = me;
    a[n] = NULL;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) ||
        pipe2(outp, O_CLOEXEC) || pipe2(errp, O_CLOEXEC)) {
        LOGE(ERROR, "%s: cannot create the lock holder's pipes", st->dir);
        rc = ERROR_FAIL;
        goto out;
    }
    pid = fork();
    if (pid < 0) {
        LOGE(ERROR, "%s: cannot fork the lock holder", st->dir);
        rc = ERROR_FAIL;
        goto out;
    }
    if (!pid) {
        if (dup2(sv[1], 0) < 0 || dup2(outp[1], 1) < 0 ||
            dup2(errp[1], 2) < 0)
            _exit(127);
        signal(SIGPIPE, SIG_DFL);
        execvp(a[0], (char *const *)a);
        fprintf(stderr, "cannot execute %s: %s\n", a[0], strerror(errno));
        _exit(127);
    }
    close(sv[1]); sv[1] = -1;
    close(outp[1]); outp[1] = -1;
    close(errp[1]); errp[1] = -1;

    out = read_answer(gc, outp[0], true, deadline);
    if (!strncmp(out, "locked\n", 7)) {
        r->holder = pid;
        st->lockfd = sv[0];
        sv[0] = -1;
        pid = -1;
        r->cached = false;            /* others wrote before: read anew */
        rc = 0;
        goto out;
    }
    /* it exits: busy (3, the holder on stdout), or failed (its line) */
    out = GCSPRINTF("%s%s", out, read_answer(gc, outp[0], false, deadline));
    err = read_answer(gc, errp[0], false, deadline);
    if (libxl__now_ms() >= deadline) kill(pid, SIGKILL);
    do {
        w = waitpid(pid, &status, 0);
    } while (w < 0 && errno == EINTR);
    pid = -1;
    if (w > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 3) {
        *holder_r = libxl__rados_holder(gc, out);
        rc = ERROR_LOCK_FAIL;
        goto out;
    }
    {
        const char *line = libxl__tool_error_line(gc, err);
        LOG(ERROR, "%s: cannot take the domain's lock: %s", st->dir,
            line ? line : w > 0 && WIFEXITED(status)
            ? GCSPRINTF("%s lock-hold exited %d", a[0], WEXITSTATUS(status))
            : GCSPRINTF("%s lock-hold gave no answer", a[0]));
    }
    rc = ERROR_FAIL;
 out:
    if (pid > 0) {
        kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
    for (i = 0; i < 2; i++) {
        if (sv[i] >= 0) close(sv[i]);
        if (outp[i] >= 0) close(outp[i]);
        if (errp[i] >= 0) close(errp[i]);
    }
    if (rc) r->cookie = NULL;
    return rc;
}

static void rados_unlock(libxl__snapshot_store *st)
{
    libxl__rados_store *r = st->rados;
    static const char unlock[] = "unlock\n";
    int status;

    /* (the holder may be gone, its lease lost: EPIPE, no signal) */
    if (send(st->lockfd, unlock, sizeof(unlock) - 1, MSG_NOSIGNAL) < 0) {
        /* nothing more to do: it is gone */
    }
    close(st->lockfd);
    st->lockfd = -1;
    if (r->holder > 0)
        while (waitpid(r->holder, &status, 0) < 0 && errno == EINTR)
            ;
    r->holder = -1;
    r->cookie = NULL;
    r->cached = false;
}

const libxl__snapshot_store_ops libxl__snapshot_store_rados_ops = {
    .open = rados_open,
    .trylock = rados_trylock,
    .unlock = rados_unlock,
    .get = rados_get,
    .put = rados_put,
    .list = rados_list,
    .domains = rados_domains,
};

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
