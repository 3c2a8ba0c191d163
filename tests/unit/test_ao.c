/*
 * test_ao.c - the asynchronous API, against a real QEMU
 *
 * A domain of the qemu driver (a real qemu-system-x86_64 process on a
 * real qcow2 image) is driven through the public API with a
 * libxl_asyncop_how callback: the call returns at once, the callback
 * fires exactly once from the event loop (ours, or the application's
 * own poll loop through beforepoll/afterpoll), and abort undoes what
 * was done.
 */
#include <CUnit/CUnit.h>

#include <poll.h>
#include <sys/time.h>

#include "helpers.h"

typedef struct {
    int called, rc;
} done_state;

static void done_cb(libxl_ctx *unused, int rc, void *for_callback)
{
    done_state *ds = for_callback;
    ds->called++;
    ds->rc = rc;
}

typedef struct {
    char *base, *img, *cfg;
    libxlsnap_ctx *ctx;
} fixture;

static bool have_qemu(void)
{
    const char *a[] = { "qemu-img", "--version", NULL };
    const char *b[] = { "qemu-system-x86_64", "--version", NULL };
    return unit_run(a) == 0 && unit_run(b) == 0;
}

static int setup(fixture *f, bool start)
{
    char *text;
    const char *mk[] = { "qemu-img", "create", "-q", "-f", "qcow2", NULL,
                         "16M", NULL };

    memset(f, 0, sizeof(*f));
    f->base = unit_tmpdir("ao");
    if (!f->base) return -1;
    if (asprintf(&f->img, "%s/vmao.qcow2", f->base) < 0 ||
        asprintf(&f->cfg, "%s/vmao.cfg", f->base) < 0)
        return -1;
    mk[5] = f->img;
    if (unit_run(mk)) return -1;
    if (asprintf(&text, "name = \"vmao\"\nmemory = 16\n"
                 "disk = [ 'format=qcow2,vdev=xvda,access=rw,target=%s' ]\n",
                 f->img) < 0)
        return -1;
    unit_write_file(f->cfg, text);
    free(text);
    f->ctx = unit_ctx(f->base);
    if (!f->ctx) return -1;
    if (start && libxlsnap_domain_create(f->ctx, f->cfg, false, NULL,
                                              NULL))
        return -1;
    return 0;
}

static void teardown(fixture *f)
{
    libxlsnap_domain_destroy(f->ctx, "vmao", NULL);
    unit_ctx_free(f->ctx);
    unit_rm_rf(f->base);
    free(f->base);
    free(f->img);
    free(f->cfg);
}

/* The qcow2 snapshot tags in the image, as qemu-img lists them. */
static bool image_has_tag(fixture *f, const char *tag)
{
    GC_INIT(f->ctx);
    const char *a[] = { "qemu-img", "snapshot", "-U", "-l", f->img, NULL };
    char *out = NULL;
    bool has = false;

    if (!libxl__exec_sync(gc, a, 10000, &out, NULL) && out)
        has = strstr(out, tag) != NULL;
    GC_FREE;
    return has;
}

void test_ao__callback_fires_once(void)
{
    fixture f;
    libxlsnap_domain_snapshot snap;
    libxlsnap_domain_snapshot *l = NULL;
    done_state ds = { 0, 1 };
    libxl_asyncop_how how;
    int rc, n = 0;

    if (!have_qemu()) return;
    CU_ASSERT_EQUAL_FATAL(setup(&f, true), 0);
    libxlsnap_domain_snapshot_init(&snap);
    snap.name = strdup("async1");
    memset(&how, 0, sizeof(how));
    how.callback = done_cb;
    how.u.for_callback = &ds;

    rc = libxlsnap_domain_snapshot_create(f.ctx, "vmao", &snap, 0, NULL, &how);
    CU_ASSERT_EQUAL(rc, 0);
    /* nothing completes before the loop runs */
    CU_ASSERT_EQUAL(ds.called, 0);
    CU_ASSERT_EQUAL(libxlsnap_event_loop_run(f.ctx, 10000), 0);
    CU_ASSERT_EQUAL(ds.called, 1);
    CU_ASSERT_EQUAL(ds.rc, 0);
    /* the caller's struct now holds the stored record */
    CU_ASSERT_EQUAL_FATAL(snap.num_disks, 1);
    CU_ASSERT_EQUAL(snap.disks[0].type, LIBXLSNAP_DISK_SNAPSHOT_TYPE_INTERNAL);
    CU_ASSERT(snap.current);
    CU_ASSERT(image_has_tag(&f, "async1"));
    /* output_r may be NULL: the reply is dropped */
    CU_ASSERT_EQUAL(libxlsnap_domain_monitor_command(f.ctx, "vmao",
                                                     "info status", NULL), 0);

    CU_ASSERT_EQUAL(libxlsnap_domain_snapshot_list(f.ctx, "vmao", &l, &n), 0);
    CU_ASSERT_EQUAL(n, 1);
    libxlsnap_domain_snapshot_list_free(l, n);
    /* running the loop again calls nothing twice */
    CU_ASSERT_EQUAL(libxlsnap_event_loop_run(f.ctx, 100), 0);
    CU_ASSERT_EQUAL(ds.called, 1);

    libxlsnap_domain_snapshot_dispose(&snap);
    teardown(&f);
}

/* The application's own poll loop drives the operation. */
void test_ao__application_poll_loop(void)
{
    fixture f;
    libxlsnap_domain_snapshot snap;
    done_state ds = { 0, 1 };
    libxl_asyncop_how how;
    struct pollfd fds[16];
    int i;

    if (!have_qemu()) return;
    CU_ASSERT_EQUAL_FATAL(setup(&f, true), 0);
    libxlsnap_domain_snapshot_init(&snap);
    snap.name = strdup("polled");
    CU_ASSERT_EQUAL_FATAL(libxlsnap_domain_snapshot_create(f.ctx, "vmao", &snap,
                                                       0, NULL, NULL), 0);
    memset(&how, 0, sizeof(how));
    how.callback = done_cb;
    how.u.for_callback = &ds;
    CU_ASSERT_EQUAL(libxlsnap_domain_snapshot_delete(f.ctx, "vmao", "polled", 0,
                                                 NULL, &how), 0);
    for (i = 0; i < 500 && !ds.called; i++) {
        struct timeval now;
        int nfds = 16, timeout = 1000;
        gettimeofday(&now, NULL);
        CU_ASSERT_EQUAL_FATAL(libxlsnap_osevent_beforepoll(
                                  f.ctx, &nfds, fds, &timeout, now), 0);
        poll(fds, nfds, timeout);
        gettimeofday(&now, NULL);
        libxlsnap_osevent_afterpoll(f.ctx, nfds, fds, now);
    }
    CU_ASSERT_EQUAL(ds.called, 1);
    CU_ASSERT_EQUAL(ds.rc, 0);
    CU_ASSERT(!image_has_tag(&f, "polled"));
    libxlsnap_domain_snapshot_dispose(&snap);
    teardown(&f);
}

/* Abort while qemu-img runs (domain shut off): nothing is left. */
void test_ao__abort_undoes(void)
{
    fixture f;
    libxlsnap_domain_snapshot snap;
    libxlsnap_domain_snapshot *l = NULL;
    done_state ds = { 0, 1 };
    libxl_asyncop_how how;
    int n = -1;

    if (!have_qemu()) return;
    CU_ASSERT_EQUAL_FATAL(setup(&f, false), 0);
    libxlsnap_domain_snapshot_init(&snap);
    snap.name = strdup("aborted");
    memset(&how, 0, sizeof(how));
    how.callback = done_cb;
    how.u.for_callback = &ds;

    CU_ASSERT_EQUAL(libxlsnap_domain_snapshot_create(f.ctx, f.cfg, &snap, 0, NULL,
                                                 &how), 0);
    CU_ASSERT_EQUAL(libxlsnap_ao_abort(f.ctx, &how), 0);
    CU_ASSERT_EQUAL(libxlsnap_event_loop_run(f.ctx, 10000), 0);
    CU_ASSERT_EQUAL(ds.called, 1);
    CU_ASSERT_EQUAL(ds.rc, ERROR_ABORTED);
    CU_ASSERT(!image_has_tag(&f, "aborted"));
    CU_ASSERT_EQUAL(libxlsnap_domain_snapshot_list(f.ctx, f.cfg, &l, &n), 0);
    CU_ASSERT_EQUAL(n, 0);
    libxlsnap_domain_snapshot_list_free(l, n);
    /* a finished operation cannot be aborted */
    CU_ASSERT_EQUAL(libxlsnap_ao_abort(f.ctx, &how), ERROR_NOTFOUND);
    libxlsnap_domain_snapshot_dispose(&snap);
    teardown(&f);
}

/* Abort while waiting for another command's lock. */
void test_ao__abort_while_waiting_for_lock(void)
{
    fixture f;
    libxlsnap_domain_snapshot snap;
    done_state ds = { 0, 1 };
    libxl_asyncop_how how;
    libxl__snapshot_store st;
    libxl_uuid u;
    GC_INIT(NULL);

    if (!have_qemu()) {
        GC_FREE;
        return;
    }
    CU_ASSERT_EQUAL_FATAL(setup(&f, false), 0);
    libxl__uuid_from_name("vmao", &u);
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_open(gc, f.ctx->state_dir,
                                                     &u, &st), 0);
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_trylock(gc, &st, NULL), 0);

    libxlsnap_domain_snapshot_init(&snap);
    snap.name = strdup("waiting");
    memset(&how, 0, sizeof(how));
    how.callback = done_cb;
    how.u.for_callback = &ds;
    CU_ASSERT_EQUAL(libxlsnap_domain_snapshot_create(f.ctx, f.cfg, &snap, 0, NULL,
                                                 &how), 0);
    /* it is waiting: the loop times out with it still outstanding */
    CU_ASSERT_EQUAL(libxlsnap_event_loop_run(f.ctx, 200),
                    ERROR_TIMEDOUT);
    CU_ASSERT_EQUAL(ds.called, 0);
    CU_ASSERT_EQUAL(libxlsnap_ao_abort(f.ctx, &how), 0);
    CU_ASSERT_EQUAL(libxlsnap_event_loop_run(f.ctx, 1000), 0);
    CU_ASSERT_EQUAL(ds.called, 1);
    CU_ASSERT_EQUAL(ds.rc, ERROR_ABORTED);
    CU_ASSERT(!image_has_tag(&f, "waiting"));
    libxl__snapshot_store_unlock(&st);
    libxlsnap_domain_snapshot_dispose(&snap);
    teardown(&f);
    GC_FREE;
}

/* for_event completion is refused cleanly. */
void test_ao__for_event_refused(void)
{
    char *base = unit_tmpdir("ao");
    libxlsnap_ctx *ctx = unit_ctx(base);
    libxl_asyncop_how how;

    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    memset(&how, 0, sizeof(how));
    CU_ASSERT_EQUAL(libxlsnap_domain_snapshot_delete(ctx, "nosuch", "x", 0, NULL,
                                                 &how), ERROR_INVAL);
    unit_ctx_free(ctx);
    unit_rm_rf(base);
    free(base);
}

/* libxlsnap_domain_create/_destroy are aos like every slow call. */
void test_ao__domain_create_destroy_async(void)
{
    fixture f;
    done_state ds = { 0, 1 };
    libxl_asyncop_how how;
    libxlsnap_domain info;
    uint32_t domid = INVALID_DOMID;

    if (!have_qemu()) return;
    CU_ASSERT_EQUAL_FATAL(setup(&f, false), 0);
    memset(&how, 0, sizeof(how));
    how.callback = done_cb;
    how.u.for_callback = &ds;
    CU_ASSERT_EQUAL(libxlsnap_domain_create(f.ctx, f.cfg, true, &domid,
                                                 &how), 0);
    /* the callback comes from the loop, never from the call */
    CU_ASSERT_EQUAL(ds.called, 0);
    CU_ASSERT_EQUAL(libxlsnap_event_loop_run(f.ctx, 20000), 0);
    CU_ASSERT_EQUAL(ds.called, 1);
    CU_ASSERT_EQUAL(ds.rc, 0);
    CU_ASSERT_NOT_EQUAL(domid, INVALID_DOMID);
    libxlsnap_domain_init(&info);
    CU_ASSERT_EQUAL(libxlsnap_domain_lookup(f.ctx, "vmao", &info), 0);
    CU_ASSERT_EQUAL(info.state, LIBXLSNAP_DOMAIN_STATE_PAUSED);
    libxlsnap_domain_dispose(&info);

    ds.called = 0;
    CU_ASSERT_EQUAL(libxlsnap_domain_destroy(f.ctx, "vmao", &how), 0);
    CU_ASSERT_EQUAL(ds.called, 0);
    CU_ASSERT_EQUAL(libxlsnap_event_loop_run(f.ctx, 20000), 0);
    CU_ASSERT_EQUAL(ds.called, 1);
    CU_ASSERT_EQUAL(ds.rc, 0);
    CU_ASSERT_EQUAL(libxlsnap_domain_lookup(f.ctx, "vmao", &info), 0);
    CU_ASSERT_EQUAL(info.state, LIBXLSNAP_DOMAIN_STATE_SHUTOFF);
    libxlsnap_domain_dispose(&info);
    teardown(&f);
}

/*
 * A domain_create waiting for another command's lock does not block
 * the caller's loop, and ao_abort ends it with nothing started.
 */
void test_ao__domain_create_abort_while_waiting(void)
{
    fixture f;
    done_state ds = { 0, 1 };
    libxl_asyncop_how how;
    libxlsnap_domain info;
    libxl__snapshot_store st;
    libxl_uuid u;
    uint64_t t0;
    GC_INIT(NULL);

    if (!have_qemu()) {
        GC_FREE;
        return;
    }
    CU_ASSERT_EQUAL_FATAL(setup(&f, false), 0);
    libxl__uuid_from_name("vmao", &u);
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_open(gc, f.ctx->state_dir,
                                                     &u, &st), 0);
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_trylock(gc, &st, NULL), 0);
    memset(&how, 0, sizeof(how));
    how.callback = done_cb;
    how.u.for_callback = &ds;
    t0 = libxl__now_ms();
    CU_ASSERT_EQUAL(libxlsnap_domain_create(f.ctx, f.cfg, false, NULL,
                                                 &how), 0);
    CU_ASSERT(libxl__now_ms() - t0 < 1000);
    CU_ASSERT_EQUAL(libxlsnap_event_loop_run(f.ctx, 200),
                    ERROR_TIMEDOUT);
    CU_ASSERT_EQUAL(ds.called, 0);
    CU_ASSERT_EQUAL(libxlsnap_ao_abort(f.ctx, &how), 0);
    CU_ASSERT_EQUAL(libxlsnap_event_loop_run(f.ctx, 1000), 0);
    CU_ASSERT_EQUAL(ds.called, 1);
    CU_ASSERT_EQUAL(ds.rc, ERROR_ABORTED);
    libxlsnap_domain_init(&info);
    CU_ASSERT_EQUAL(libxlsnap_domain_lookup(f.ctx, f.cfg, &info), 0);
    CU_ASSERT_EQUAL(info.state, LIBXLSNAP_DOMAIN_STATE_SHUTOFF);
    libxlsnap_domain_dispose(&info);
    libxl__snapshot_store_unlock(&st);
    teardown(&f);
    GC_FREE;
}
