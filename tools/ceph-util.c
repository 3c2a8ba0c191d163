/*
 * ceph-util.c - libxl-snapshot's Ceph tool: the one program of the
 * project that talks to librbd and librados (their C APIs)
 *
 * Why a separate program: the library stays free of Ceph link
 * dependencies (a Xen host without Ceph installs nothing more), and the
 * long librbd calls (rollback, flatten, image removal) run in a child
 * that the library's exec layer already watches: time limit, Ctrl-C
 * (SIGTERM, then SIGKILL), progress lines, stderr reported.  It never
 * runs the rbd, rados or ceph commands.  The contract with the library
 * is /work/notes/ceph-util-spec.md, summed up here:
 *
 *   ceph-util [--conf FILE] [--id USER] COMMAND ARGS...
 *
 * IMAGE is POOL/NAME, SNAP a snapshot name.  RBD commands:
 *   du IMAGE                           JSON: what `rbd du` says of each
 *                                      user snapshot (oldest first) and of
 *                                      the head: the objects that changed
 *                                      since the previous snapshot, whole
 *                                      (rbd_diff_iterate2, whole_object)
 *   image-info IMAGE                   JSON: id, size, order, parent,
 *                                      user snapshots (protected, clones),
 *                                      locked (an exclusive-lock owner)
 *   ls POOL                            JSON array of image names
 *   create IMAGE SIZE_BYTES            format 2, layering, exclusive-lock,
 *                                      object-map, fast-diff, deep-flatten
 *   remove [-p] IMAGE
 *   rename IMAGE NEWNAME               (same pool)
 *   snap-create IMAGE SNAP
 *   snap-remove [-p] [--flatten] [--bandwidth B/S] IMAGE SNAP
 *                                      clones: exit 4 naming them, or with
 *                                      --flatten flattened first; then
 *                                      unprotected and removed
 *   rollback [-p] [--kernel-client N] IMAGE SNAP
 *                                      refused (3) while the image is open
 *                                      elsewhere; --kernel-client: but for
 *                                      the watches of client N, this host's
 *                                      krbd mappings (sysfs client_id),
 *                                      whose device the caller has closed;
 *                                      the exclusive lock is asked of
 *                                      them first (rbd_lock_acquire)
 *   clone IMAGE SNAP CHILD             CHILD is POOL/NAME; clone format 2,
 *                                      or protect + format 1 when the
 *                                      cluster does not allow format 2
 *   flatten [-p] [--bandwidth B/S] IMAGE
 * RADOS commands (the record store, the cluster-wide lock):
 *   omap-dump POOL OBJ [PREFIX]        JSON object of the omap, all pages
 *   omap-get POOL OBJ KEY              the raw value
 *   omap-set POOL OBJ [--lock NAME COOKIE] set K V | rm K | rmall ...
 *                                      one atomic write op
 *   ls-objects POOL [PREFIX]           JSON array, sorted
 *   remove-object POOL OBJ
 *   lock-hold POOL OBJ NAME COOKIE LEASE_S DESCRIPTION
 *   lockers POOL OBJ NAME              JSON array of holders
 *
 * Output: stdout has the result only (JSON is built in memory and
 * written once the command succeeded); -p progress lines go to stdout
 * as qemu-img -p prints them, "    (45.00/100%)\r", then "\n".  On
 * failure stderr has one line, "ceph-util: COMMAND OBJECT: STRERROR
 * (WHAT FAILED)".  Exit: 0; 1 other failures; 2 not found (pool,
 * image, snapshot, object, key); 3 busy or exists (also: the lock is
 * someone else's); 4 the snapshot has clones; 64 usage.
 *
 * SIGINT, SIGTERM: one line ("interrupted by SIGTERM"), exit 128+N, at
 * once (a thread waits for them; see signal_thread).
 *
 * --bandwidth: librbd has no rate limit for flatten, so the progress
 * callback sleeps until the bytes done (the fraction reported times the
 * image size) are within the rate since the start; librbd starts the
 * next object copy from the thread that reported progress, so the copy
 * slows with it.
 *
 * The lock (lock-hold, omap-set --lock): a cls_lock exclusive lock with
 * a lease, renewed every LEASE_S/3 by the lock-hold process while its
 * stdin is open (LIBRADOS_LOCK_FLAG_MUST_RENEW: a renewal never takes
 * back a lock that lapsed).  A write under the lock must be refused
 * once another holder took the lock over.  cls_lock's own
 * "assert_locked" cannot say so here: it matches the locker by the
 * client instance of the request (client.N of one connection) and the
 * writer is another process than the holder, so it refuses even the
 * rightful holder (checked: EBUSY).  So omap-set --lock reads the lock's
 * state (the object's xattr "lock.NAME", cls_lock's lock_info_t),
 * checks that a locker with COOKIE holds it exclusively, and adds to the
 * same write op a cmpxattr of those exact bytes: the OSD applies the
 * write only if the lock is still in the state that was checked.  A
 * renewal in between (the expiration changed) makes the op fail with
 * ECANCELED, and the check is redone.  COOKIE must therefore be unique
 * to its holder (the library makes it from the host, pid and a random
 * part).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rados/librados.h>
#include <rbd/librbd.h>

#define EXIT_FAIL 1
#define EXIT_NOTFOUND 2
#define EXIT_BUSY 3
#define EXIT_CLONES 4
#define EXIT_USAGE 64

#define FEATURES (RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK | \
                  RBD_FEATURE_OBJECT_MAP | RBD_FEATURE_FAST_DIFF | \
                  RBD_FEATURE_DEEP_FLATTEN)
#define OMAP_PAGE 1000
#define LOCK_ATTR_PREFIX "lock."       /* cls_lock's xattr: lock.NAME */
#define CLS_LOCK_EXCLUSIVE 1
#define CEPH_ENTITY_TYPE_CLIENT 0x08
#define LOCK_WRITE_TRIES 10

static const char *prog = "ceph-util";
static const char *command = "";       /* for the messages */
static const char *target = "";        /* the command's object, likewise */
static rados_t cluster;
static bool connected;
/* the JSON result, written to stdout only on success */
static char *out_buf;
static size_t out_len;
static FILE *out;

/* ---------------------------------------------------------------- errors */

static int exit_code(int r)
{
    switch (-r) {
    case ENOENT: return EXIT_NOTFOUND;
    case EBUSY: case EEXIST: case ENOTEMPTY: return EXIT_BUSY;
    default: return EXIT_FAIL;
    }
}

/* "ceph-util: COMMAND OBJ: strerror(-r) (WHAT)"; returns the exit code */
static int fail(int r, const char *obj, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(int r, const char *obj, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: %s %s: %s (", prog, command, obj, strerror(-r));
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(")\n", stderr);
    return exit_code(r);
}

/* a failure with no errno: "ceph-util: COMMAND OBJ: TEXT", exit CODE */
static int fail_text(int code, const char *obj, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_text(int code, const char *obj, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: %s %s: ", prog, command, obj);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

static void usage(void)
{
    fprintf(stderr,
"usage: ceph-util [--conf FILE] [--id USER] COMMAND ARGS...\n"
"  du POOL/IMAGE\n"
"  image-info POOL/IMAGE | ls POOL | create POOL/IMAGE SIZE_BYTES\n"
"  remove [-p] POOL/IMAGE | rename POOL/IMAGE NEWNAME\n"
"  snap-create POOL/IMAGE SNAP\n"
"  snap-remove [-p] [--flatten] [--bandwidth BYTES_PER_S] POOL/IMAGE SNAP\n"
"  rollback [-p] [--kernel-client N] POOL/IMAGE SNAP | clone POOL/IMAGE SNAP POOL/CHILD\n"
"  flatten [-p] [--bandwidth BYTES_PER_S] POOL/IMAGE\n"
"  omap-dump POOL OBJ [PREFIX] | omap-get POOL OBJ KEY\n"
"  omap-set POOL OBJ [--lock NAME COOKIE] (set KEY VALUE | rm KEY | rmall)...\n"
"  ls-objects POOL [PREFIX] | remove-object POOL OBJ\n"
"  lock-hold POOL OBJ NAME COOKIE LEASE_S DESCRIPTION\n"
"  lockers POOL OBJ NAME\n");
}

static int usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: %s: ", prog, command);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_USAGE;
}

/* ---------------------------------------------------------------- JSON */

static void json_str(FILE *f, const char *s, size_t n)
{
    size_t i;

    fputc('"', f);
    for (i = 0; i < n; i++) {
        unsigned char c = s[i];
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        case '\b': fputs("\\b", f); break;
        case '\f': fputs("\\f", f); break;
        default:
            if (c < 0x20 || c == 0x7f) fprintf(f, "\\u%04x", c);
            else fputc(c, f);        /* UTF-8 passes through */
        }
    }
    fputc('"', f);
}

static void json_cstr(FILE *f, const char *s) { json_str(f, s, strlen(s)); }

/* ---------------------------------------------------------------- progress */

typedef struct {
    bool print;                 /* -p */
    uint64_t bandwidth;         /* bytes/s, 0: unlimited */
    uint64_t total;             /* bytes of the whole command */
    uint64_t base, span;        /* the current call's share of total */
    double last;                /* the last percentage printed */
    struct timespec start;
    pthread_mutex_t lock;
} progress;

static double elapsed(const struct timespec *since)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - since->tv_sec) + (now.tv_nsec - since->tv_nsec) / 1e9;
}

static void progress_print(progress *p, double pct)
{
    /* as qemu-img -p: a change of 1% or more, and 100 once */
    if (!p->print) return;
    if (pct < p->last + 1.0 && !(pct >= 100.0 && p->last < 100.0)) return;
    printf("    (%3.2f/100%%)\r", pct);
    fflush(stdout);
    p->last = pct;
}

static void progress_init(progress *p, bool print, uint64_t bandwidth,
                          uint64_t total)
{
    memset(p, 0, sizeof(*p));
    p->print = print;
    p->bandwidth = bandwidth;
    p->total = total;
    p->last = -1.0;
    pthread_mutex_init(&p->lock, NULL);
    clock_gettime(CLOCK_MONOTONIC, &p->start);
    progress_print(p, 0.0);
}

static void progress_end(progress *p)
{
    if (!p->print) return;
    progress_print(p, 100.0);
    printf("\n");
    fflush(stdout);
}

/* librbd's callback: OFFSET of TOTAL (objects or bytes) of one call */
static int progress_cb(uint64_t offset, uint64_t total, void *arg)
{
    progress *p = arg;
    double frac = total ? (double)offset / total : 1.0;
    double done, ahead;

    if (frac > 1.0) frac = 1.0;
    pthread_mutex_lock(&p->lock);
    done = p->base + frac * p->span;
    if (p->bandwidth) {
        ahead = done / p->bandwidth - elapsed(&p->start);
        if (ahead > 0) {
            struct timespec ts = { (time_t)ahead,
                                   (long)((ahead - (time_t)ahead) * 1e9) };
            while (nanosleep(&ts, &ts) && errno == EINTR)
                ;
        }
    }
    progress_print(p, p->total ? 100.0 * done / p->total : 100.0);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

/* ---------------------------------------------------------------- arguments */

typedef struct {
    char *pool, *name;
    char *spec;                 /* "pool/name" for messages */
} image_spec;

/* POOL/NAME: both non-empty, NAME without '/' or '@' */
static int parse_image(const char *arg, image_spec *is)
{
    const char *slash = strchr(arg, '/');

    if (!slash || slash == arg || !slash[1] || strchr(slash + 1, '/') ||
        strchr(slash + 1, '@'))
        return usage_error("'%s': an image is POOL/NAME", arg);
    is->pool = strndup(arg, slash - arg);
    is->name = strdup(slash + 1);
    is->spec = strdup(arg);
    if (!is->pool || !is->name || !is->spec) {
        perror(prog);
        exit(EXIT_FAIL);
    }
    return 0;
}

static int parse_u64(const char *arg, const char *what, uint64_t *v)
{
    char *end;

    errno = 0;
    if (!*arg || *arg == '-' ||
        (*v = strtoull(arg, &end, 10), errno) || *end)
        return usage_error("'%s': %s must be a number", arg, what);
    return 0;
}

/* The command's leading flags: -p, --flatten, --bandwidth N (those in
 * ALLOWED); returns the index of the first other argument, or -1 after a
 * usage error. */
typedef struct {
    bool progress, flatten;
    uint64_t bandwidth;
    int64_t kernel_client;              /* --kernel-client; -1: none */
} flags;

#define F_P 1
#define F_FLATTEN 2
#define F_BW 4
#define F_KCLIENT 8

static int parse_flags(int argc, char **argv, int allowed, flags *f)
{
    int i = 0;

    memset(f, 0, sizeof(*f));
    f->kernel_client = -1;
    while (i < argc && argv[i][0] == '-') {
        if ((allowed & F_P) && !strcmp(argv[i], "-p")) {
            f->progress = true;
        } else if ((allowed & F_FLATTEN) && !strcmp(argv[i], "--flatten")) {
            f->flatten = true;
        } else if ((allowed & F_BW) && !strcmp(argv[i], "--bandwidth")) {
            if (i + 1 >= argc) {
                usage_error("--bandwidth needs BYTES_PER_S");
                return -1;
            }
            if (parse_u64(argv[++i], "--bandwidth", &f->bandwidth))
                return -1;
        } else if ((allowed & F_KCLIENT) &&
                   !strcmp(argv[i], "--kernel-client")) {
            uint64_t v;
            if (i + 1 >= argc) {
                usage_error("--kernel-client needs a client id");
                return -1;
            }
            if (parse_u64(argv[++i], "--kernel-client", &v)) return -1;
            f->kernel_client = (int64_t)v;
        } else if (!strcmp(argv[i], "--")) {
            return i + 1;
        } else {
            usage_error("unknown option '%s'", argv[i]);
            return -1;
        }
        i++;
    }
    return i;
}

/* ---------------------------------------------------------------- connection */

static const char *opt_conf, *opt_id;
static char opt_op_timeout[24];         /* lock-hold: its renewals' limit */

static int connect_cluster(const char *obj)
{
    int r;

    r = rados_create(&cluster, opt_id ? opt_id : NULL);
    if (r < 0) return fail(r, obj, "rados_create") ? EXIT_FAIL : 0;
    /* an unreachable cluster fails in 30 s, not librados' 300 */
    rados_conf_set(cluster, "client_mount_timeout", "30");
    /* an OSD or a monitor that stops answering: one line in a minute,
     * not a command hung for ever (each op is one object's: a minute is
     * ample); the configuration may say otherwise */
    rados_conf_set(cluster, "rados_mon_op_timeout", "30");
    rados_conf_set(cluster, "rados_osd_op_timeout",
                   opt_op_timeout[0] ? opt_op_timeout : "60");
    r = rados_conf_read_file(cluster, opt_conf);
    if (r < 0) {
        fail(r, obj, "reading the Ceph configuration %s",
             opt_conf ? opt_conf : "($CEPH_CONF or /etc/ceph/ceph.conf)");
        return EXIT_FAIL;
    }
    r = rados_conf_parse_env(cluster, NULL);
    if (r < 0) {
        fail(r, obj, "rados_conf_parse_env");
        return EXIT_FAIL;
    }
    /* stderr is ours: one line on failure (librbd's own error log goes
     * to its log file, if the configuration names one) */
    rados_conf_set(cluster, "log_to_stderr", "false");
    rados_conf_set(cluster, "err_to_stderr", "false");
    r = rados_connect(cluster);
    if (r < 0) {
        fail(r, obj, "connecting to the cluster");
        return EXIT_FAIL;
    }
    connected = true;
    return 0;
}

static int open_pool(const char *pool, const char *obj, rados_ioctx_t *io)
{
    int r = rados_ioctx_create(cluster, pool, io);

    if (r < 0) return fail(r, obj, "pool %s", pool);
    return 0;
}

static int open_image(rados_ioctx_t io, const image_spec *is, bool ro,
                      rbd_image_t *img)
{
    int r = ro ? rbd_open_read_only(io, is->name, img, NULL)
               : rbd_open(io, is->name, img, NULL);

    if (r < 0) return fail(r, is->spec, "opening the image");
    return 0;
}

/* ---------------------------------------------------------------- signals */

/* SIGINT and SIGTERM (Ctrl-C, the library's cancel) are taken by this
 * thread, which says so in one line and ends the process at once
 * (librbd cannot cancel a flatten or a rollback).  What librbd had sent
 * is done by the OSDs, as after a kill; the image's next command waits
 * for the OSDs' watch timeout (30 s) before it gets the exclusive lock
 * that this client held.  (Blocklisting this client first, as librbd
 * does to a dead lock owner, cut that wait to a second, but a flatten
 * interrupted so and run again left the clone with objects of zeros:
 * not done.) */
static void *signal_thread(void *arg)
{
    sigset_t *set = arg;
    int sig = 0;

    if (sigwait(set, &sig)) return NULL;
    fprintf(stderr, "%s: %s %s: interrupted by SIG%s\n", prog, command,
            target, sigabbrev_np(sig));
    _exit(128 + sig);
}

static void catch_signals(void)
{
    static sigset_t set;
    pthread_t t;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    /* before librados starts its threads: they inherit the mask */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (pthread_create(&t, NULL, signal_thread, &set) == 0)
        pthread_detach(t);
}

/* ---------------------------------------------------------------- RBD */

/* children of SNAP (already set on IMG, or NULL: the head) */
static int list_children(rbd_image_t img, const char *obj,
                         rbd_linked_image_spec_t **specs, size_t *n)
{
    size_t max = 16;
    int r;

    for (;;) {
        *specs = calloc(max, sizeof(**specs));
        if (!*specs) return fail(-ENOMEM, obj, "listing clones");
        *n = max;
        r = rbd_list_children3(img, *specs, n);
        if (r != -ERANGE) break;
        free(*specs);
        max = *n > max ? *n : max * 2;
    }
    if (r < 0) {
        free(*specs);
        *specs = NULL;
        return fail(r, obj, "rbd_list_children3");
    }
    return 0;
}

static void free_children(rbd_linked_image_spec_t *specs, size_t n)
{
    if (!specs) return;
    rbd_linked_image_spec_list_cleanup(specs, n);
    free(specs);
}

static int cmp_snap_id(const void *a, const void *b)
{
    const rbd_snap_info_t *x = a, *y = b;

    return x->id < y->id ? -1 : x->id > y->id;
}

/* the image's snapshots, oldest first (by id): 0 and *snaps_r, freed
 * with snap_list_free; or fail()'s exit code */
static int snap_list(rbd_image_t img, const image_spec *is,
                     rbd_snap_info_t **snaps_r, int *n_r)
{
    rbd_snap_info_t *snaps;
    int max = 16, n, r;

    *snaps_r = NULL;
    *n_r = 0;
    for (;;) {
        snaps = calloc(max, sizeof(*snaps));
        if (!snaps) return fail(-ENOMEM, is->spec, "listing snapshots");
        n = max;
        r = rbd_snap_list(img, snaps, &n);
        if (r != -ERANGE) break;
        free(snaps);
        max = n > max ? n : max * 2;
    }
    if (r < 0) {
        free(snaps);
        return fail(r, is->spec, "rbd_snap_list");
    }
    qsort(snaps, r, sizeof(*snaps), cmp_snap_id);
    *snaps_r = snaps;
    *n_r = r;
    return 0;
}

static void snap_list_free(rbd_snap_info_t *snaps, int n)
{
    if (!snaps) return;
    if (n) rbd_snap_list_end(snaps);
    free(snaps);
}

static int cmd_image_info(rados_ioctx_t io, const image_spec *is)
{
    rbd_image_t img;
    rbd_image_info_t st;
    rbd_linked_image_spec_t parent;
    rbd_snap_spec_t psnap;
    rbd_snap_info_t *snaps = NULL;
    char id[256], header[300];
    char tag[256], clients[1024], cookies[1024], addrs[1024];
    size_t tag_len = sizeof(tag), cl = sizeof(clients), kl = sizeof(cookies),
           al = sizeof(addrs);
    ssize_t nowners;
    int nsnaps = 0, shown = 0, i, r, rc, excl;

    if ((rc = open_image(io, is, true, &img))) return rc;
    r = rbd_stat(img, &st, sizeof(st));
    if (r < 0) { rc = fail(r, is->spec, "rbd_stat"); goto out; }
    r = rbd_get_id(img, id, sizeof(id));
    if (r < 0) { rc = fail(r, is->spec, "rbd_get_id"); goto out; }
    fprintf(out, "{\"pool\":");
    json_cstr(out, is->pool);
    fprintf(out, ",\"image\":");
    json_cstr(out, is->name);
    fprintf(out, ",\"id\":");
    json_cstr(out, id);
    fprintf(out, ",\"size\":%" PRIu64 ",\"order\":%d,\"parent\":",
            st.size, st.order);
    r = rbd_get_parent(img, &parent, &psnap);
    if (r == -ENOENT) {
        fprintf(out, "null");
    } else if (r < 0) {
        rc = fail(r, is->spec, "rbd_get_parent");
        goto out;
    } else {
        fprintf(out, "{\"pool\":");
        json_cstr(out, parent.pool_name);
        fprintf(out, ",\"image\":");
        json_cstr(out, parent.image_name);
        fprintf(out, ",\"snap\":");
        json_cstr(out, psnap.name);
        fprintf(out, "}");
        rbd_linked_image_spec_cleanup(&parent);
        rbd_snap_spec_cleanup(&psnap);
    }

    if ((rc = snap_list(img, is, &snaps, &nsnaps))) goto out;
    fprintf(out, ",\"snaps\":[");
    for (i = 0; i < nsnaps; i++) {
        rbd_snap_namespace_type_t ns;
        rbd_linked_image_spec_t *kids;
        size_t nkids, k;
        int prot;
        char what[300];

        snprintf(what, sizeof(what), "%s@%s", is->spec, snaps[i].name);
        /* (-ENOENT: removed since the list: not there, not "no image") */
        r = rbd_snap_get_namespace_type(img, snaps[i].id, &ns);
        if (r == -ENOENT) continue;
        if (r < 0) { rc = fail(r, what, "rbd_snap_get_namespace_type"); goto out; }
        if (ns != RBD_SNAP_NAMESPACE_TYPE_USER) continue;
        r = rbd_snap_is_protected(img, snaps[i].name, &prot);
        if (r == -ENOENT) continue;
        if (r < 0) { rc = fail(r, what, "rbd_snap_is_protected"); goto out; }
        r = rbd_snap_set_by_id(img, snaps[i].id);
        if (r == -ENOENT) continue;
        if (r < 0) { rc = fail(r, what, "rbd_snap_set_by_id"); goto out; }
        if ((rc = list_children(img, what, &kids, &nkids))) goto out;
        fprintf(out, "%s{\"id\":%" PRIu64 ",\"name\":", shown++ ? "," : "",
                snaps[i].id);
        json_cstr(out, snaps[i].name);
        fprintf(out, ",\"size\":%" PRIu64 ",\"protected\":%s,"
                "\"namespace\":\"user\",\"children\":[",
                snaps[i].size, prot ? "true" : "false");
        for (k = 0; k < nkids; k++) {
            char *c;

            if (asprintf(&c, "%s/%s", kids[k].pool_name,
                         kids[k].image_name) < 0) {
                free_children(kids, nkids);
                rc = fail(-ENOMEM, what, "listing clones");
                goto out;
            }
            if (k) fputc(',', out);
            json_cstr(out, c);
            free(c);
        }
        fprintf(out, "]}");
        free_children(kids, nkids);
    }
    fprintf(out, "]");
    r = rbd_snap_set(img, NULL);
    if (r < 0) { rc = fail(r, is->spec, "rbd_snap_set (head)"); goto out; }

    /* (rbd_lock_get_owners refuses a read-only image: the exclusive
     * lock is librbd's cls_lock "rbd_lock" on the header object) */
    snprintf(header, sizeof(header), "rbd_header.%s", id);
    nowners = rados_list_lockers(io, header, "rbd_lock", &excl, tag, &tag_len,
                                 clients, &cl, cookies, &kl, addrs, &al);
    if (nowners == -ENOENT) nowners = 0;
    if (nowners < 0) {
        rc = fail((int)nowners, is->spec, "listing the holders of the "
                  "image's exclusive lock");
        goto out;
    }
    fprintf(out, ",\"locked\":%s}\n", nowners ? "true" : "false");
    rc = 0;

 out:
    snap_list_free(snaps, nsnaps);
    rbd_close(img);
    return rc;
}

/* rbd_diff_iterate2's callback: bytes of the extents that exist */
static int du_add(uint64_t off, size_t len, int exists, void *arg)
{
    if (exists) *(uint64_t *)arg += len;
    return 0;
}

/*
 * As `rbd du` counts: each user snapshot, the image at it, diffed from
 * the snapshot before it (the first: from nothing), whole objects, the
 * parent not included; then the head from the last snapshot.
 */
static int cmd_du(rados_ioctx_t io, const image_spec *is)
{
    rbd_image_t img;
    rbd_image_info_t st;
    rbd_snap_info_t *snaps = NULL;
    const char *prev = NULL;
    int nsnaps = 0, shown = 0, i, r, rc;
    uint64_t used;
    char what[300];

    if ((rc = open_image(io, is, true, &img))) return rc;
    if ((rc = snap_list(img, is, &snaps, &nsnaps))) goto out;
    fprintf(out, "{\"snapshots\":[");
    for (i = 0; i < nsnaps; i++) {
        rbd_snap_namespace_type_t ns;

        snprintf(what, sizeof(what), "%s@%s", is->spec, snaps[i].name);
        r = rbd_snap_get_namespace_type(img, snaps[i].id, &ns);
        if (r == -ENOENT) continue;
        if (r < 0) { rc = fail(r, what, "rbd_snap_get_namespace_type"); goto out; }
        if (ns != RBD_SNAP_NAMESPACE_TYPE_USER) continue;
        r = rbd_snap_set_by_id(img, snaps[i].id);
        if (r == -ENOENT) continue;
        if (r < 0) { rc = fail(r, what, "rbd_snap_set_by_id"); goto out; }
        used = 0;
        r = rbd_diff_iterate2(img, prev, 0, snaps[i].size, 0, 1, du_add,
                              &used);
        if (r < 0) { rc = fail(r, what, "rbd_diff_iterate2"); goto out; }
        fprintf(out, "%s{\"id\":%" PRIu64 ",\"name\":", shown++ ? "," : "",
                snaps[i].id);
        json_cstr(out, snaps[i].name);
        fprintf(out, ",\"size\":%" PRIu64 ",\"used\":%" PRIu64 "}",
                snaps[i].size, used);
        prev = snaps[i].name;
    }
    r = rbd_snap_set(img, NULL);
    if (r < 0) { rc = fail(r, is->spec, "rbd_snap_set (head)"); goto out; }
    r = rbd_stat(img, &st, sizeof(st));
    if (r < 0) { rc = fail(r, is->spec, "rbd_stat"); goto out; }
    used = 0;
    r = rbd_diff_iterate2(img, prev, 0, st.size, 0, 1, du_add, &used);
    if (r < 0) { rc = fail(r, is->spec, "rbd_diff_iterate2"); goto out; }
    fprintf(out, "],\"head\":%" PRIu64 "}\n", used);
    rc = 0;
 out:
    snap_list_free(snaps, nsnaps);
    rbd_close(img);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* names, sorted, as a JSON array on stdout */
static void print_names(char **names, size_t n)
{
    size_t i;

    qsort(names, n, sizeof(*names), cmp_str);
    fputc('[', out);
    for (i = 0; i < n; i++) {
        if (i) fputc(',', out);
        json_cstr(out, names[i]);
    }
    fputs("]\n", out);
}

static int cmd_ls(rados_ioctx_t io, const char *pool)
{
    rbd_image_spec_t *specs = NULL;
    size_t max = 64, n, i;
    char **names;
    int r;

    for (;;) {
        specs = calloc(max, sizeof(*specs));
        if (!specs) return fail(-ENOMEM, pool, "listing images");
        n = max;
        r = rbd_list2(io, specs, &n);
        if (r != -ERANGE) break;
        free(specs);
        max = n > max ? n : max * 2;
    }
    if (r < 0) {
        free(specs);
        return fail(r, pool, "rbd_list2");
    }
    names = calloc(n + 1, sizeof(*names));
    if (!names) return fail(-ENOMEM, pool, "listing images");
    for (i = 0; i < n; i++) names[i] = specs[i].name;
    print_names(names, n);
    free(names);
    rbd_image_spec_list_cleanup(specs, n);
    free(specs);
    return 0;
}

/* the options of a new image (create) or clone */
static int image_options(const char *obj, rbd_image_options_t *opts,
                         int clone_format)
{
    int r;

    rbd_image_options_create(opts);
    r = rbd_image_options_set_uint64(*opts, RBD_IMAGE_OPTION_FORMAT, 2);
    if (!r) r = rbd_image_options_set_uint64(*opts, RBD_IMAGE_OPTION_FEATURES,
                                              FEATURES);
    if (!r && clone_format)
        r = rbd_image_options_set_uint64(*opts, RBD_IMAGE_OPTION_CLONE_FORMAT,
                                         clone_format);
    if (r < 0) {
        rbd_image_options_destroy(*opts);
        return fail(r, obj, "rbd_image_options_set");
    }
    return 0;
}

static int cmd_create(rados_ioctx_t io, const image_spec *is, uint64_t size)
{
    rbd_image_options_t opts;
    int r, rc;

    if ((rc = image_options(is->spec, &opts, 0))) return rc;
    r = rbd_create4(io, is->name, size, opts);
    rbd_image_options_destroy(opts);
    if (r < 0) return fail(r, is->spec, "rbd_create4");
    return 0;
}

static int cmd_remove(rados_ioctx_t io, const image_spec *is, const flags *f)
{
    progress p;
    int r;

    progress_init(&p, f->progress, 0, 1);
    p.span = 1;
    r = rbd_remove_with_progress(io, is->name, progress_cb, &p);
    if (r == -ENOTEMPTY)
        return fail(r, is->spec, "rbd_remove: the image has snapshots");
    if (r == -EBUSY)
        return fail(r, is->spec, "rbd_remove: the image is open "
                    "(watchers) or has clones");
    if (r < 0) return fail(r, is->spec, "rbd_remove");
    progress_end(&p);
    return 0;
}

static int cmd_rename(rados_ioctx_t io, const image_spec *is,
                      const char *newname)
{
    int r;

    if (!*newname || strchr(newname, '/') || strchr(newname, '@'))
        return usage_error("'%s': the new name is a NAME (same pool)",
                           newname);
    r = rbd_rename(io, is->name, newname);
    if (r < 0) return fail(r, is->spec, "rbd_rename to %s", newname);
    return 0;
}

static int cmd_snap_create(rados_ioctx_t io, const image_spec *is,
                           const char *snap)
{
    rbd_image_t img;
    char what[300];
    int r, rc;

    snprintf(what, sizeof(what), "%s@%s", is->spec, snap);
    if ((rc = open_image(io, is, false, &img))) return rc;
    r = rbd_snap_create(img, snap);
    rbd_close(img);
    if (r < 0) return fail(r, what, "rbd_snap_create");
    return 0;
}

/* Flattens every child in KIDS (any pool), P over all of them. */
static int flatten_children(const char *what, rbd_linked_image_spec_t *kids,
                            size_t nkids, progress *p)
{
    uint64_t *sizes = calloc(nkids + 1, sizeof(*sizes));
    rbd_image_t *imgs = calloc(nkids + 1, sizeof(*imgs));
    rados_ioctx_t *ios = calloc(nkids + 1, sizeof(*ios));
    uint64_t total = 0;
    size_t k;
    int r, rc = 0;
    char child[300];

    if (!sizes || !imgs || !ios) {
        rc = fail(-ENOMEM, what, "flattening clones");
        goto out;
    }
    /* open all first: the total size is known before any progress */
    for (k = 0; k < nkids; k++) {
        snprintf(child, sizeof(child), "%s/%s", kids[k].pool_name,
                 kids[k].image_name);
        r = rados_ioctx_create(cluster, kids[k].pool_name, &ios[k]);
        if (r < 0) { rc = fail(r, child, "pool %s", kids[k].pool_name); goto out; }
        rados_ioctx_set_namespace(ios[k], kids[k].pool_namespace);
        r = rbd_open_by_id(ios[k], kids[k].image_id, &imgs[k], NULL);
        if (r < 0) { rc = fail(r, child, "opening the clone"); goto out; }
        r = rbd_get_size(imgs[k], &sizes[k]);
        if (r < 0) { rc = fail(r, child, "rbd_get_size"); goto out; }
        total += sizes[k];
    }
    p->total = total ? total : 1;
    for (k = 0; k < nkids; k++) {
        snprintf(child, sizeof(child), "%s/%s", kids[k].pool_name,
                 kids[k].image_name);
        p->span = sizes[k];
        r = rbd_flatten_with_progress(imgs[k], progress_cb, p);
        if (r < 0) { rc = fail(r, child, "rbd_flatten"); goto out; }
        p->base += sizes[k];
    }

 out:
    for (k = 0; k < nkids && imgs && ios; k++) {
        if (imgs[k]) rbd_close(imgs[k]);
        if (ios[k]) rados_ioctx_destroy(ios[k]);
    }
    free(sizes);
    free(imgs);
    free(ios);
    return rc;
}

static int cmd_snap_remove(rados_ioctx_t io, const image_spec *is,
                           const char *snap, const flags *f)
{
    rbd_image_t img;
    rbd_linked_image_spec_t *kids = NULL;
    size_t nkids = 0, k;
    progress p;
    char what[300];
    int r, rc, prot;

    snprintf(what, sizeof(what), "%s@%s", is->spec, snap);
    if ((rc = open_image(io, is, false, &img))) return rc;
    r = rbd_snap_set(img, snap);
    if (r < 0) { rc = fail(r, what, "no such snapshot"); goto out; }
    if ((rc = list_children(img, what, &kids, &nkids))) goto out;
    r = rbd_snap_set(img, NULL);
    if (r < 0) { rc = fail(r, what, "rbd_snap_set (head)"); goto out; }
    progress_init(&p, f->progress, f->bandwidth, 1);
    if (nkids && !f->flatten) {
        fprintf(stderr, "%s: %s %s: the snapshot has clones:", prog, command,
                what);
        for (k = 0; k < nkids; k++)
            fprintf(stderr, " %s/%s", kids[k].pool_name, kids[k].image_name);
        fprintf(stderr, " (flatten them: --flatten)\n");
        rc = EXIT_CLONES;
        goto out;
    }
    if (nkids) {
        if ((rc = flatten_children(what, kids, nkids, &p))) goto out;
        free_children(kids, nkids);
        kids = NULL;
        /* none may remain: a snapshot with clones (format 2) would go
         * to the trash instead of away */
        r = rbd_snap_set(img, snap);
        if (r < 0) { rc = fail(r, what, "rbd_snap_set"); goto out; }
        if ((rc = list_children(img, what, &kids, &nkids))) goto out;
        r = rbd_snap_set(img, NULL);
        if (r < 0) { rc = fail(r, what, "rbd_snap_set (head)"); goto out; }
        if (nkids) {
            rc = fail_text(EXIT_CLONES, what, "a clone appeared while "
                           "flattening: %s/%s", kids[0].pool_name,
                           kids[0].image_name);
            goto out;
        }
    }
    r = rbd_snap_is_protected(img, snap, &prot);
    if (r < 0) { rc = fail(r, what, "rbd_snap_is_protected"); goto out; }
    if (prot) {
        r = rbd_snap_unprotect(img, snap);
        if (r < 0) { rc = fail(r, what, "rbd_snap_unprotect"); goto out; }
    }
    r = rbd_snap_remove(img, snap);
    if (r < 0) { rc = fail(r, what, "rbd_snap_remove"); goto out; }
    progress_end(&p);
    rc = 0;

 out:
    free_children(kids, nkids);
    rbd_close(img);
    return rc;
}

/* others than this process (and than client kclient, >= 0) have the
 * image open (watchers) */
static int open_elsewhere(rbd_image_t img, const char *what, int64_t kclient,
                          size_t *n)
{
    rbd_image_watcher_t w[16];
    size_t max = 16, i, k = 0;
    int r = rbd_watchers_list(img, w, &max);

    if (r == -ERANGE) {
        *n = max;
        return 0;
    }
    if (r < 0) return fail(r, what, "rbd_watchers_list");
    for (i = 0; i < max; i++)
        if (kclient >= 0 && w[i].id == kclient) k++;
    rbd_watchers_list_cleanup(w, max);
    *n = max > k ? max - k - 1 : 0;     /* ourselves */
    return 0;
}

static int cmd_rollback(rados_ioctx_t io, const image_spec *is,
                        const char *snap, const flags *f)
{
    rbd_image_t img;
    progress p;
    char what[300];
    size_t others = 0;
    bool exists;
    int r, rc;

    snprintf(what, sizeof(what), "%s@%s", is->spec, snap);
    if ((rc = open_image(io, is, false, &img))) return rc;
    r = rbd_snap_exists(img, snap, &exists);
    if (r < 0) { rc = fail(r, what, "rbd_snap_exists"); goto out; }
    if (!exists) { rc = fail(-ENOENT, what, "no such snapshot"); goto out; }
    if ((rc = open_elsewhere(img, what, f->kernel_client, &others)))
        goto out;
    if (others) {
        rc = fail(-EBUSY, what, "the image is open elsewhere (%zu other "
                  "watchers): a rollback needs it closed", others);
        goto out;
    }
    /*
     * A krbd mapping may own the image's exclusive lock (it keeps it
     * after writing), and librbd's rollback does not ask the owner for
     * it (EROFS): ask for it first; krbd hands it over unless mapped
     * with -o exclusive.
     */
    if (f->kernel_client >= 0) {
        r = rbd_lock_acquire(img, RBD_LOCK_MODE_EXCLUSIVE);
        if (r < 0) {
            rc = fail(r, what, "rbd_lock_acquire: the kernel mapping keeps "
                      "the exclusive lock (mapped with -o exclusive?)");
            goto out;
        }
    }
    progress_init(&p, f->progress, 0, 1);
    p.span = 1;
    r = rbd_snap_rollback_with_progress(img, snap, progress_cb, &p);
    if (r < 0) { rc = fail(r, what, "rbd_snap_rollback"); goto out; }
    progress_end(&p);
    if (f->kernel_client >= 0) rbd_lock_release(img);
    rc = 0;

 out:
    rbd_close(img);
    return rc;
}

static int cmd_clone(rados_ioctx_t io, const image_spec *is, const char *snap,
                     const image_spec *child)
{
    rados_ioctx_t cio;
    rbd_image_options_t opts;
    rbd_image_t img;
    char what[300];
    bool exists;
    int r, rc, prot;

    snprintf(what, sizeof(what), "%s@%s", is->spec, snap);
    if ((rc = open_pool(child->pool, child->spec, &cio))) return rc;
    if ((rc = open_image(io, is, true, &img))) goto out_io;
    r = rbd_snap_exists(img, snap, &exists);
    if (r < 0) { rc = fail(r, what, "rbd_snap_exists"); goto out_img; }
    if (!exists) { rc = fail(-ENOENT, what, "no such snapshot"); goto out_img; }

    /* format 2: no protection needed (the cluster must require mimic
     * clients; librbd refuses it otherwise) */
    if ((rc = image_options(child->spec, &opts, 2))) goto out_img;
    r = rbd_clone3(io, is->name, snap, cio, child->name, opts);
    rbd_image_options_destroy(opts);
    if (r == -EINVAL || r == -EOPNOTSUPP || r == -ENOSYS) {
        /* format 1: protect first */
        r = rbd_snap_is_protected(img, snap, &prot);
        if (r < 0) { rc = fail(r, what, "rbd_snap_is_protected"); goto out_img; }
        if (!prot) {
            rbd_image_t rw;

            if ((rc = open_image(io, is, false, &rw))) goto out_img;
            r = rbd_snap_protect(rw, snap);
            rbd_close(rw);
            if (r < 0 && r != -EBUSY) {   /* EBUSY: protected meanwhile */
                rc = fail(r, what, "rbd_snap_protect");
                goto out_img;
            }
        }
        if ((rc = image_options(child->spec, &opts, 1))) goto out_img;
        r = rbd_clone3(io, is->name, snap, cio, child->name, opts);
        rbd_image_options_destroy(opts);
    }
    if (r < 0) { rc = fail(r, child->spec, "rbd_clone3 of %s", what); goto out_img; }
    rc = 0;

 out_img:
    rbd_close(img);
 out_io:
    rados_ioctx_destroy(cio);
    return rc;
}

static int cmd_flatten(rados_ioctx_t io, const image_spec *is, const flags *f)
{
    rbd_image_t img;
    progress p;
    uint64_t size;
    int r, rc;

    if ((rc = open_image(io, is, false, &img))) return rc;
    r = rbd_get_size(img, &size);
    if (r < 0) { rc = fail(r, is->spec, "rbd_get_size"); goto out; }
    progress_init(&p, f->progress, f->bandwidth, size ? size : 1);
    p.span = size;
    r = rbd_flatten_with_progress(img, progress_cb, &p);
    if (r < 0) { rc = fail(r, is->spec, "rbd_flatten"); goto out; }
    progress_end(&p);
    rc = 0;

 out:
    rbd_close(img);
    return rc;
}

/* ---------------------------------------------------------------- RADOS */

static int cmd_omap_dump(rados_ioctx_t io, const char *obj, const char *prefix)
{
    char *after = strdup("");
    unsigned char more = 0;
    bool first = true;
    int r, prval, rc = 0;

    if (!after) return fail(-ENOMEM, obj, "omap-dump");
    fputc('{', out);
    do {
        rados_read_op_t op = rados_create_read_op();
        rados_omap_iter_t it;
        char *key, *val;
        size_t klen, vlen;

        rados_read_op_omap_get_vals2(op, after, prefix, OMAP_PAGE, &it, &more,
                                     &prval);
        r = rados_read_op_operate(op, io, obj, 0);
        if (r >= 0 && prval < 0) r = prval;
        if (r < 0) {
            rados_release_read_op(op);
            rc = fail(r, obj, "reading the omap");
            break;
        }
        while (rados_omap_get_next2(it, &key, &val, &klen, &vlen) == 0 && key) {
            if (!first) fputc(',', out);
            first = false;
            json_str(out, key, klen);
            fputc(':', out);
            json_str(out, val, vlen);
            free(after);
            after = strndup(key, klen);
            if (!after) {
                rc = fail(-ENOMEM, obj, "omap-dump");
                break;
            }
        }
        rados_omap_get_end(it);
        rados_release_read_op(op);
    } while (!rc && more);
    fputs("}\n", out);
    free(after);
    return rc;
}

static int cmd_omap_get(rados_ioctx_t io, const char *obj, const char *key)
{
    rados_read_op_t op = rados_create_read_op();
    rados_omap_iter_t it;
    const char *keys[1] = { key };
    size_t klens[1] = { strlen(key) }, klen, vlen;
    char *k, *v;
    int r, prval, rc;

    rados_read_op_omap_get_vals_by_keys2(op, keys, 1, klens, &it, &prval);
    r = rados_read_op_operate(op, io, obj, 0);
    if (r >= 0 && prval < 0) r = prval;
    if (r < 0) {
        rados_release_read_op(op);
        return fail(r, obj, "reading the omap");
    }
    if (rados_omap_get_next2(it, &k, &v, &klen, &vlen) == 0 && k) {
        fwrite(v, 1, vlen, out);
        rc = 0;
    } else {
        rc = fail(-ENOENT, obj, "no omap key '%s'", key);
    }
    rados_omap_get_end(it);
    rados_release_read_op(op);
    return rc;
}

/* cls_lock's encoding (little-endian): a struct is u8 version, u8
 * compat, u32 length, then its fields; a string is u32 length + bytes */
typedef struct {
    const uint8_t *p, *end;
} cursor;

static bool get_u8(cursor *c, uint8_t *v)
{
    if (c->end - c->p < 1) return false;
    *v = *c->p++;
    return true;
}

static bool get_le32(cursor *c, uint32_t *v)
{
    if (c->end - c->p < 4) return false;
    *v = c->p[0] | c->p[1] << 8 | c->p[2] << 16 | (uint32_t)c->p[3] << 24;
    c->p += 4;
    return true;
}

static bool get_le64(cursor *c, uint64_t *v)
{
    uint32_t lo, hi;

    if (!get_le32(c, &lo) || !get_le32(c, &hi)) return false;
    *v = (uint64_t)hi << 32 | lo;
    return true;
}

static bool get_string(cursor *c, const uint8_t **s, uint32_t *n)
{
    if (!get_le32(c, n) || (uint32_t)(c->end - c->p) < *n) return false;
    *s = c->p;
    c->p += *n;
    return true;
}

/* a struct's header; *end is where it ends */
static bool get_struct(cursor *c, const uint8_t **end)
{
    uint8_t v, compat;
    uint32_t len;

    if (!get_u8(c, &v) || !get_u8(c, &compat) || !get_le32(c, &len) ||
        (uint32_t)(c->end - c->p) < len)
        return false;
    *end = c->p + len;
    return true;
}

typedef struct {
    char locker[32];            /* client.N */
    char *cookie, *description;
    uint32_t exp_sec, exp_nsec;
} lock_entry;

typedef struct {
    int type;                   /* 1 exclusive, 2 shared */
    size_t n;
    lock_entry *e;
} lock_state;

static void lock_state_free(lock_state *ls)
{
    size_t i;

    for (i = 0; i < ls->n; i++) {
        free(ls->e[i].cookie);
        free(ls->e[i].description);
    }
    free(ls->e);
    memset(ls, 0, sizeof(*ls));
}

/* cls_lock's lock_info_t: map<locker_id_t, locker_info_t> lockers, u8
 * type, string tag; locker_id_t: entity_name_t (u8 type, le64 num),
 * string cookie; locker_info_t: utime_t expiration (le32 sec, le32
 * nsec), entity_addr_t, string description.  entity_addr_t is u8 1 then
 * a struct (the msgr2-era encoding), or the legacy one: le32 0, le32
 * nonce, a 128-byte sockaddr_storage.  (rados_list_lockers gives the
 * address as text, but neither the description nor the expiration.) */
static bool decode_lock(const uint8_t *buf, size_t len, lock_state *ls)
{
    cursor c = { buf, buf + len }, s;
    const uint8_t *end, *iend, *str;
    uint32_t n, i, slen;
    uint8_t etype, type;
    uint64_t num;

    memset(ls, 0, sizeof(*ls));
    if (!get_struct(&c, &end)) return false;
    c.end = end;
    if (!get_le32(&c, &n) || n > len) return false;
    ls->e = calloc(n + 1, sizeof(*ls->e));
    if (!ls->e) return false;
    for (i = 0; i < n; i++) {
        lock_entry *e = &ls->e[i];

        if (!get_struct(&c, &iend)) goto bad;
        s = (cursor){ c.p, iend };
        if (!get_u8(&s, &etype) || !get_le64(&s, &num) ||
            !get_string(&s, &str, &slen))
            goto bad;
        c.p = iend;
        if (etype == CEPH_ENTITY_TYPE_CLIENT)
            snprintf(e->locker, sizeof(e->locker), "client.%" PRId64,
                     (int64_t)num);
        else
            snprintf(e->locker, sizeof(e->locker), "type%u.%" PRId64,
                     etype, (int64_t)num);
        e->cookie = strndup((const char *)str, slen);
        ls->n = i + 1;
        if (!e->cookie) goto bad;
        if (!get_struct(&c, &iend)) goto bad;
        s = (cursor){ c.p, iend };
        if (!get_le32(&s, &e->exp_sec) || !get_le32(&s, &e->exp_nsec) ||
            !get_u8(&s, &type))
            goto bad;
        if (type == 1) {
            if (!get_struct(&s, &end)) goto bad;
            s.p = end;
        } else {
            if (s.end - s.p < 3 + 4 + 128) goto bad;
            s.p += 3 + 4 + 128;
        }
        if (!get_string(&s, &str, &slen)) goto bad;
        e->description = strndup((const char *)str, slen);
        if (!e->description) goto bad;
        c.p = iend;
    }
    if (!get_u8(&c, &type)) goto bad;
    ls->type = type;
    return true;

 bad:
    lock_state_free(ls);
    return false;
}

/* the lock's raw state (the xattr lock.NAME); *len 0: never locked */
static int read_lock_attr(rados_ioctx_t io, const char *obj, const char *name,
                          char **buf, size_t *len)
{
    char *attr;
    size_t cap = 4096;
    int r;

    if (asprintf(&attr, LOCK_ATTR_PREFIX "%s", name) < 0) return -ENOMEM;
    for (;;) {
        *buf = malloc(cap);
        if (!*buf) { r = -ENOMEM; break; }
        r = rados_getxattr(io, obj, attr, *buf, cap);
        if (r != -ERANGE) break;
        free(*buf);
        cap *= 4;
    }
    free(attr);
    if (r == -ENODATA) r = 0;
    if (r < 0) {
        free(*buf);
        *buf = NULL;
        return r;
    }
    *len = r;
    return 0;
}

/* The holders, as JSON objects, into F (an array when ARRAY; else only
 * the first); WITH_EXP adds "expiration" (seconds since the epoch). */
static int print_lockers(FILE *f, rados_ioctx_t io, const char *obj,
                         const char *name, bool array, bool with_exp,
                         ssize_t *count)
{
    char tag[1024], clients[4096], cookies[4096], addrs[4096];
    size_t tag_len = sizeof(tag), cl = sizeof(clients),
           kl = sizeof(cookies), al = sizeof(addrs);
    char *raw = NULL;
    size_t rawlen = 0, j;
    lock_state ls = { 0 };
    const char *c, *k, *a;
    int excl;
    ssize_t n, i;

    n = rados_list_lockers(io, obj, name, &excl, tag, &tag_len, clients, &cl,
                           cookies, &kl, addrs, &al);
    if (n < 0) return (int)n;
    if (!read_lock_attr(io, obj, name, &raw, &rawlen) && rawlen)
        decode_lock((const uint8_t *)raw, rawlen, &ls);
    if (array) fputc('[', f);
    c = clients; k = cookies; a = addrs;
    for (i = 0; i < n; i++) {
        if (i) fputc(',', f);
        fprintf(f, "{\"locker\":");
        json_cstr(f, c);
        fprintf(f, ",\"cookie\":");
        json_cstr(f, k);
        for (j = 0; j < ls.n; j++)
            if (!strcmp(ls.e[j].locker, c) && !strcmp(ls.e[j].cookie, k))
                break;
        fprintf(f, ",\"description\":");
        json_cstr(f, j < ls.n ? ls.e[j].description : "");
        fprintf(f, ",\"address\":");
        json_cstr(f, a);
        if (with_exp && j < ls.n && ls.e[j].exp_sec)
            fprintf(f, ",\"expiration\":%" PRIu32 ".%06" PRIu32,
                    ls.e[j].exp_sec, ls.e[j].exp_nsec / 1000);
        fputc('}', f);
        c += strlen(c) + 1; k += strlen(k) + 1; a += strlen(a) + 1;
        if (!array) break;
    }
    if (array) fputc(']', f);
    fputc('\n', f);
    lock_state_free(&ls);
    free(raw);
    *count = n;
    return 0;
}

/* One omap-set ARG list: set KEY VALUE | rm KEY | rmall, in order. */
static int add_omap_ops(rados_write_op_t op, int argc, char **argv)
{
    int i = 0;

    if (!argc) return usage_error("nothing to do: set KEY VALUE | rm KEY | rmall");
    while (i < argc) {
        if (!strcmp(argv[i], "set") && i + 2 < argc) {
            const char *k[1] = { argv[i + 1] }, *v[1] = { argv[i + 2] };
            size_t kl[1] = { strlen(k[0]) }, vl[1] = { strlen(v[0]) };

            rados_write_op_omap_set2(op, k, v, kl, vl, 1);
            i += 3;
        } else if (!strcmp(argv[i], "rm") && i + 1 < argc) {
            const char *k[1] = { argv[i + 1] };
            size_t kl[1] = { strlen(k[0]) };

            rados_write_op_omap_rm_keys2(op, k, kl, 1);
            i += 2;
        } else if (!strcmp(argv[i], "rmall")) {
            rados_write_op_omap_clear(op);
            i += 1;
        } else {
            return usage_error("'%s': expected set KEY VALUE | rm KEY | rmall",
                               argv[i]);
        }
    }
    return 0;
}

/* Is COOKIE an exclusive holder in the lock state RAW?  If not, says
 * who holds it (one line, exit 3). */
static int check_holder(const char *obj, const char *name, const char *cookie,
                        const char *raw, size_t len)
{
    lock_state ls;
    size_t i;
    int rc;

    if (!len)
        return fail(-EBUSY, obj, "lock %s is not held (by cookie %s)", name,
                    cookie);
    if (!decode_lock((const uint8_t *)raw, len, &ls))
        return fail(-EIO, obj, "cannot decode the state of lock %s", name);
    for (i = 0; i < ls.n; i++)
        if (!strcmp(ls.e[i].cookie, cookie)) break;
    if (i < ls.n && ls.type == CLS_LOCK_EXCLUSIVE) {
        rc = 0;
    } else if (ls.n) {
        rc = fail(-EBUSY, obj, "lock %s is held by %s, cookie %s, \"%s\", "
                  "not by cookie %s", name, ls.e[0].locker, ls.e[0].cookie,
                  ls.e[0].description, cookie);
    } else {
        rc = fail(-EBUSY, obj, "lock %s is not held (by cookie %s)", name,
                  cookie);
    }
    lock_state_free(&ls);
    return rc;
}

static int cmd_omap_set(rados_ioctx_t io, const char *obj, const char *lock,
                        const char *cookie, int argc, char **argv)
{
    int tries, r = 0, rc;

    for (tries = 0; tries < LOCK_WRITE_TRIES; tries++) {
        rados_write_op_t op = rados_create_write_op();
        char *raw = NULL, *attr = NULL;
        size_t len = 0;

        if (lock) {
            r = read_lock_attr(io, obj, lock, &raw, &len);
            if (r == -ENOENT) len = 0;
            else if (r < 0) {
                rados_release_write_op(op);
                return fail(r, obj, "reading lock %s", lock);
            }
            if ((rc = check_holder(obj, lock, cookie, raw, len))) {
                free(raw);
                rados_release_write_op(op);
                return rc;
            }
            if (asprintf(&attr, LOCK_ATTR_PREFIX "%s", lock) < 0) {
                free(raw);
                rados_release_write_op(op);
                return fail(-ENOMEM, obj, "omap-set");
            }
            /* applied only if the lock is still exactly as checked */
            rados_write_op_cmpxattr(op, attr, LIBRADOS_CMPXATTR_OP_EQ, raw, len);
        } else {
            rados_write_op_create(op, LIBRADOS_CREATE_IDEMPOTENT, NULL);
        }
        if ((rc = add_omap_ops(op, argc, argv))) {
            free(raw);
            free(attr);
            rados_release_write_op(op);
            return rc;
        }
        r = rados_write_op_operate(op, io, obj, NULL, 0);
        free(raw);
        free(attr);
        rados_release_write_op(op);
        if (r != -ECANCELED || !lock) break;
    }
    if (r == -ECANCELED)
        return fail(-EBUSY, obj, "lock %s kept changing while writing", lock);
    if (r < 0) return fail(r, obj, "writing the omap");
    return 0;
}

static int cmd_ls_objects(rados_ioctx_t io, const char *pool,
                          const char *prefix)
{
    rados_list_ctx_t ctx;
    char **names = NULL;
    size_t n = 0, cap = 0, i, plen = prefix ? strlen(prefix) : 0;
    int r, rc = 0;

    r = rados_nobjects_list_open(io, &ctx);
    if (r < 0) return fail(r, pool, "rados_nobjects_list_open");
    for (;;) {
        const char *entry, *key, *nspace;
        size_t elen, klen, nlen;

        r = rados_nobjects_list_next2(ctx, &entry, &key, &nspace, &elen,
                                      &klen, &nlen);
        if (r == -ENOENT) break;
        if (r < 0) { rc = fail(r, pool, "listing objects"); goto out; }
        if (plen && (elen < plen || memcmp(entry, prefix, plen))) continue;
        if (n == cap) {
            char **nn = realloc(names, (cap = cap ? cap * 2 : 64) *
                                sizeof(*names));
            if (!nn) { rc = fail(-ENOMEM, pool, "listing objects"); goto out; }
            names = nn;
        }
        names[n] = strndup(entry, elen);
        if (!names[n]) { rc = fail(-ENOMEM, pool, "listing objects"); goto out; }
        n++;
    }
    print_names(names, n);

 out:
    rados_nobjects_list_close(ctx);
    for (i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

static int cmd_remove_object(rados_ioctx_t io, const char *obj)
{
    int r = rados_remove(io, obj);

    if (r < 0) return fail(r, obj, "rados_remove");
    return 0;
}

static double now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int cmd_lock_hold(rados_ioctx_t io, const char *obj, const char *name,
                         const char *cookie, uint64_t lease, const char *desc)
{
    struct timeval tv = { (time_t)lease, 0 };
    char line[256];
    size_t used = 0;
    double next, renewed;
    ssize_t n;
    int r, tries;

    for (tries = 0; ; tries++) {
        r = rados_lock_exclusive(io, obj, name, cookie, desc,
                                 lease ? &tv : NULL, 0);
        if (r != -EBUSY && r != -EEXIST) break;
        /* busy: the holder, on stdout (it may just have let go: again) */
        r = print_lockers(out, io, obj, name, false, false, &n);
        if (r < 0) return fail(r, obj, "listing the holders of lock %s", name);
        if (n > 0 || tries == 3) {
            fflush(out);
            fwrite(out_buf, 1, out_len, stdout);
            fflush(stdout);
            fclose(out);
            out = NULL;
            return fail_text(EXIT_BUSY, obj, "lock %s is held by another",
                             name);
        }
        rewind(out);
    }
    if (r < 0) return fail(r, obj, "rados_lock_exclusive %s", name);
    printf("locked\n");
    fflush(stdout);

    renewed = now_s();
    next = renewed + lease / 3.0;
    for (;;) {
        struct pollfd pfd = { 0, POLLIN, 0 };
        int timeout = -1, pr;

        if (lease) {
            double wait = next - now_s();
            timeout = wait > 0 ? (int)(wait * 1000) + 1 : 0;
        }
        pr = poll(&pfd, 1, timeout);
        if (pr < 0 && errno != EINTR) return fail(-errno, obj, "poll");
        if (lease && now_s() >= next) {
            /* MUST_RENEW: ENOENT once the lock is not ours (broken, or
             * lapsed); a renewal that timed out is tried again while
             * the lease lasts */
            r = rados_lock_exclusive(io, obj, name, cookie, desc, &tv,
                                     LIBRADOS_LOCK_FLAG_MUST_RENEW);
            if (!r) {
                renewed = now_s();
                next = renewed + lease / 3.0;
            } else if (r == -ETIMEDOUT && now_s() + 1.0 < renewed + lease) {
                next = now_s() + 1.0;
            } else {
                /* lost, whatever the cause: exit 3 */
                fail(r, obj, "renewing lock %s: the lock was lost", name);
                return EXIT_BUSY;
            }
        }
        if (pr <= 0 || !(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        n = read(0, line + used, sizeof(line) - 1 - used);
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail(-errno, obj, "reading stdin");
        }
        if (n == 0) return 0;    /* the caller is gone: the lease runs out */
        used += n;
        line[used] = 0;
        for (;;) {
            char *nl = strchr(line, '\n');

            if (!nl) break;
            *nl = 0;
            if (!strcmp(line, "unlock")) {
                r = rados_unlock(io, obj, name, cookie);
                if (r < 0) return fail(r, obj, "rados_unlock %s", name);
                return 0;
            }
            /* anything else: ignored */
            used -= nl + 1 - line;
            memmove(line, nl + 1, used + 1);
        }
        if (used == sizeof(line) - 1) used = 0;      /* an overlong line */
    }
}

static int cmd_lockers(rados_ioctx_t io, const char *obj, const char *name)
{
    ssize_t n;
    int r = print_lockers(out, io, obj, name, true, true, &n);

    if (r < 0) return fail(r, obj, "listing the holders of lock %s", name);
    return 0;
}

/* ---------------------------------------------------------------- main */

#define NEED(min, max) do {                                             \
        if (argc < (min) || argc > (max)) {                             \
            usage();                                                    \
            return usage_error("wrong number of arguments");            \
        }                                                               \
    } while (0)

static int run(int argc, char **argv)
{
    image_spec is = { 0 }, child = { 0 };
    rados_ioctx_t io;
    flags f;
    uint64_t v;
    int i, rc;
    const char *pool, *obj;
    bool rbd;

    /* the RBD commands: IMAGE (after their flags) first */
    if (!strcmp(command, "image-info") || !strcmp(command, "create") ||
        !strcmp(command, "du") ||
        !strcmp(command, "remove") || !strcmp(command, "rename") ||
        !strcmp(command, "snap-create") || !strcmp(command, "snap-remove") ||
        !strcmp(command, "rollback") || !strcmp(command, "clone") ||
        !strcmp(command, "flatten")) {
        int allowed = !strcmp(command, "rollback") ? F_P | F_KCLIENT
            : !strcmp(command, "remove") ? F_P
            : !strcmp(command, "snap-remove") ? F_P | F_FLATTEN | F_BW
            : !strcmp(command, "flatten") ? F_P | F_BW : 0;

        i = parse_flags(argc, argv, allowed, &f);
        if (i < 0) return EXIT_USAGE;
        argc -= i;
        argv += i;
        rbd = true;
        if (!strcmp(command, "image-info") || !strcmp(command, "remove") ||
            !strcmp(command, "flatten") || !strcmp(command, "du"))
            NEED(1, 1);
        else if (!strcmp(command, "clone"))
            NEED(3, 3);
        else
            NEED(2, 2);
        if (parse_image(argv[0], &is)) return EXIT_USAGE;
        if (!strcmp(command, "clone") && parse_image(argv[2], &child))
            return EXIT_USAGE;
        if (!strcmp(command, "create") && parse_u64(argv[1], "SIZE_BYTES", &v))
            return EXIT_USAGE;
        pool = is.pool;
        obj = is.spec;
    } else if (!strcmp(command, "ls")) {
        NEED(1, 1);
        rbd = true;
        pool = obj = argv[0];
    } else if (!strcmp(command, "omap-dump") ||
               !strcmp(command, "ls-objects")) {
        NEED(!strcmp(command, "omap-dump") ? 2 : 1,
             !strcmp(command, "omap-dump") ? 3 : 2);
        rbd = false;
        pool = argv[0];
        obj = argc > 1 ? argv[1] : argv[0];
    } else if (!strcmp(command, "omap-get") || !strcmp(command, "lockers")) {
        NEED(3, 3);
        rbd = false;
        pool = argv[0];
        obj = argv[1];
    } else if (!strcmp(command, "remove-object")) {
        NEED(2, 2);
        rbd = false;
        pool = argv[0];
        obj = argv[1];
    } else if (!strcmp(command, "omap-set")) {
        NEED(3, INT_MAX);
        rbd = false;
        pool = argv[0];
        obj = argv[1];
        if (!strcmp(argv[2], "--lock") && argc < 5)
            return usage_error("--lock needs NAME COOKIE");
    } else if (!strcmp(command, "lock-hold")) {
        NEED(6, 6);
        rbd = false;
        pool = argv[0];
        obj = argv[1];
        if (parse_u64(argv[4], "LEASE_S", &v)) return EXIT_USAGE;
        /* a renewal that hangs must not outlive the lease unnoticed */
        if (v)
            snprintf(opt_op_timeout, sizeof(opt_op_timeout), "%" PRIu64,
                     v / 3 ? v / 3 : 1);
    } else {
        usage();
        return usage_error("unknown command");
    }
    (void)rbd;

    target = obj;
    if ((rc = connect_cluster(obj))) return rc;
    if ((rc = open_pool(pool, obj, &io))) return rc;

    if (!strcmp(command, "image-info")) rc = cmd_image_info(io, &is);
    else if (!strcmp(command, "du")) rc = cmd_du(io, &is);
    else if (!strcmp(command, "ls")) rc = cmd_ls(io, pool);
    else if (!strcmp(command, "create")) rc = cmd_create(io, &is, v);
    else if (!strcmp(command, "remove")) rc = cmd_remove(io, &is, &f);
    else if (!strcmp(command, "rename")) rc = cmd_rename(io, &is, argv[1]);
    else if (!strcmp(command, "snap-create"))
        rc = cmd_snap_create(io, &is, argv[1]);
    else if (!strcmp(command, "snap-remove"))
        rc = cmd_snap_remove(io, &is, argv[1], &f);
    else if (!strcmp(command, "rollback"))
        rc = cmd_rollback(io, &is, argv[1], &f);
    else if (!strcmp(command, "clone"))
        rc = cmd_clone(io, &is, argv[1], &child);
    else if (!strcmp(command, "flatten")) rc = cmd_flatten(io, &is, &f);
    else if (!strcmp(command, "omap-dump"))
        rc = cmd_omap_dump(io, argv[1], argc > 2 ? argv[2] : NULL);
    else if (!strcmp(command, "omap-get"))
        rc = cmd_omap_get(io, argv[1], argv[2]);
    else if (!strcmp(command, "omap-set")) {
        if (!strcmp(argv[2], "--lock"))
            rc = cmd_omap_set(io, argv[1], argv[3], argv[4], argc - 5,
                              argv + 5);
        else
            rc = cmd_omap_set(io, argv[1], NULL, NULL, argc - 2, argv + 2);
    }
    else if (!strcmp(command, "ls-objects"))
        rc = cmd_ls_objects(io, pool, argc > 1 ? argv[1] : NULL);
    else if (!strcmp(command, "remove-object"))
        rc = cmd_remove_object(io, argv[1]);
    else if (!strcmp(command, "lock-hold"))
        rc = cmd_lock_hold(io, argv[1], argv[2], argv[3], v, argv[5]);
    else
        rc = cmd_lockers(io, argv[1], argv[2]);
    rados_ioctx_destroy(io);
    return rc;
}

int main(int argc, char **argv)
{
    int i = 1, rc;

    while (i < argc && argv[i][0] == '-') {
        if (!strcmp(argv[i], "--conf") && i + 1 < argc) {
            opt_conf = argv[i + 1];
            i += 2;
        } else if (!strcmp(argv[i], "--id") && i + 1 < argc) {
            opt_id = argv[i + 1];
            i += 2;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage();
            return 0;
        } else {
            usage();
            command = "";
            return usage_error("unknown option '%s'", argv[i]);
        }
    }
    if (i >= argc) {
        usage();
        return EXIT_USAGE;
    }
    command = argv[i];
    catch_signals();
    out = open_memstream(&out_buf, &out_len);
    if (!out) {
        perror(prog);
        return EXIT_FAIL;
    }
    rc = run(argc - i - 1, argv + i + 1);
    if (out) {
        fclose(out);
        if (!rc) fwrite(out_buf, 1, out_len, stdout);
    }
    free(out_buf);
    if (connected) rados_shutdown(cluster);
    if (fflush(stdout) && !rc) {
        fprintf(stderr, "%s: %s: writing the result: %s\n", prog, command,
                strerror(errno));
        rc = EXIT_FAIL;
    }
    return rc;
}
