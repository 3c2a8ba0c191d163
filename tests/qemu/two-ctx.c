/*
 * two-ctx.c - two libxl-snapshot contexts in one process, one domain
 * (test-40-concurrency.sh)
 *
 *   two-ctx STATE_DIR RUN_DIR DOMAIN
 *
 * ctx1 starts an asynchronous disk-only snapshot "ctx1-a" of DOMAIN (a
 * running qemu-driver domain): from its starting call on, it holds the
 * domain's lock and a QMP connection to its QEMU (QEMU serves one QMP
 * client at a time).  Then, in the same thread:
 *
 *  1. ctx2 (lock_timeout 0) takes a synchronous snapshot "ctx2-a": it must
 *     fail at once with ERROR_LOCK_FAIL (the lock is ctx1's), having
 *     asked QEMU nothing; ctx1's operation cannot run meanwhile (this
 *     thread is in ctx2's call), so a query to QEMU would wait for its
 *     timeout;
 *  2. ctx1's snapshot then completes (rc 0);
 *  3. ctx1 starts "ctx1-b" and ctx2 (lock_timeout 10) "ctx2-b", both
 *     asynchronous, in one poll() loop of this program over both
 *     contexts: ctx2's starting call returns at once, it waits for the
 *     lock on the loop, and both complete with rc 0.
 *
 * Prints one line per step, "step<N>: rc=<rc> ms=<ms of the call>"
 * (step 3: the ms of ctx2's starting call, then of the whole), and
 * exits 0 when every rc is as said, 1 otherwise, 2 on a setup error.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxl_snapshot.h>

#define MAX_FDS 128

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

typedef struct { int done, rc; } result;

static void op_done(libxl_ctx *xl, int rc, void *for_callback)
{
    result *r = for_callback;
    (void)xl;
    r->done = 1;
    r->rc = rc;
}

static libxlsnap_ctx *make_ctx(xentoollog_logger *lg, const char *state,
                               const char *run, int lock_timeout)
{
    libxlsnap_settings s;
    libxlsnap_ctx *ctx = NULL;

    libxlsnap_settings_init(&s);
    s.driver = LIBXLSNAP_DRIVER_QEMU;
    s.state_dir = strdup(state);
    s.run_dir = strdup(run);
    s.lock_timeout = lock_timeout;
    if (libxlsnap_ctx_alloc(&ctx, LIBXLSNAP_VERSION, 0, lg, &s)) ctx = NULL;
    libxlsnap_settings_dispose(&s);
    return ctx;
}

static int start(libxlsnap_ctx *ctx, const char *domain,
                 libxlsnap_domain_snapshot *s, const char *name,
                 libxl_asyncop_how *how, result *r)
{
    libxlsnap_domain_snapshot_init(s);
    s->name = strdup(name);
    memset(how, 0, sizeof(*how));
    how->callback = op_done;
    how->u.for_callback = r;
    r->done = 0;
    return libxlsnap_domain_snapshot_create(ctx, domain, s, 0, NULL,
                                            how);
}

/* Runs both contexts' events until r1 and r2 are done (60 s at most). */
static int loop2(libxlsnap_ctx *c1, libxlsnap_ctx *c2, result *r1,
                 result *r2)
{
    double end = now_ms() + 60000;

    while (!(r1->done && r2->done)) {
        struct pollfd fds[MAX_FDS];
        int n1 = MAX_FDS, n2, timeout = 100;
        struct timeval tv;

        if (now_ms() > end) return -1;
        gettimeofday(&tv, NULL);
        if (libxlsnap_osevent_beforepoll(c1, &n1, fds, &timeout, tv))
            return -1;
        n2 = MAX_FDS - n1;
        if (libxlsnap_osevent_beforepoll(c2, &n2, fds + n1, &timeout, tv))
            return -1;
        if (poll(fds, n1 + n2, timeout) < 0) return -1;
        gettimeofday(&tv, NULL);
        libxlsnap_osevent_afterpoll(c1, n1, fds, tv);
        libxlsnap_osevent_afterpoll(c2, n2, fds + n1, tv);
    }
    return 0;
}

int main(int argc, char **argv)
{
    xentoollog_logger *lg;
    libxlsnap_ctx *c1, *c2;
    libxlsnap_domain_snapshot s1, s2;
    libxl_asyncop_how h1, h2;
    result r1, r2;
    const char *dom;
    double t0, t1;
    int rc, ok = 1;

    if (argc != 4) {
        fprintf(stderr, "usage: two-ctx STATE_DIR RUN_DIR DOMAIN\n");
        return 2;
    }
    dom = argv[3];
    lg = (xentoollog_logger *)xtl_createlogger_stdiostream(stderr,
                                                           XTL_ERROR, 0);
    c1 = make_ctx(lg, argv[1], argv[2], 10);
    c2 = make_ctx(lg, argv[1], argv[2], 0);
    if (!lg || !c1 || !c2) {
        fprintf(stderr, "two-ctx: no context\n");
        return 2;
    }

    /* 1: ctx1 holds the lock and QEMU's monitor; ctx2 is refused */
    if (start(c1, dom, &s1, "ctx1-a", &h1, &r1)) {
        fprintf(stderr, "two-ctx: ctx1's create did not start\n");
        return 2;
    }
    libxlsnap_domain_snapshot_init(&s2);
    s2.name = strdup("ctx2-a");
    t0 = now_ms();
    rc = libxlsnap_domain_snapshot_create(c2, dom, &s2, 0, NULL, NULL);
    t1 = now_ms();
    printf("step1: rc=%d ms=%.0f\n", rc, t1 - t0);
    if (rc != ERROR_LOCK_FAIL) ok = 0;
    libxlsnap_domain_snapshot_dispose(&s2);

    /* 2: ctx1's snapshot completes */
    if (libxlsnap_event_loop_run(c1, 60000)) return 2;
    printf("step2: rc=%d\n", r1.rc);
    if (r1.rc) ok = 0;
    libxlsnap_domain_snapshot_dispose(&s1);

    /* 3: both asynchronous, in one loop; ctx2 waits for the lock */
    libxlsnap_ctx_free(c2);
    c2 = make_ctx(lg, argv[1], argv[2], 10);
    if (!c2 || start(c1, dom, &s1, "ctx1-b", &h1, &r1)) return 2;
    t0 = now_ms();
    rc = start(c2, dom, &s2, "ctx2-b", &h2, &r2);
    t1 = now_ms();
    if (rc) {
        r2.done = 1;
        r2.rc = rc;
    }
    if (loop2(c1, c2, &r1, &r2)) {
        fprintf(stderr, "two-ctx: the operations did not complete\n");
        return 2;
    }
    printf("step3: rc=%d,%d ms=%.0f total=%.0f\n", r1.rc, r2.rc, t1 - t0,
           now_ms() - t0);
    if (r1.rc || r2.rc) ok = 0;
    libxlsnap_domain_snapshot_dispose(&s1);
    libxlsnap_domain_snapshot_dispose(&s2);
    libxlsnap_ctx_free(c1);
    libxlsnap_ctx_free(c2);
    xtl_logger_destroy(lg);
    return ok ? 0 : 1;
}
