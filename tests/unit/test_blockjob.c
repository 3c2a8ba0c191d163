/*
 * test_blockjob.c - the block job state machine: transition table, verb
 * table, QEMU status mapping, and names.
 */
#include <CUnit/CUnit.h>

#include "helpers.h"

#define S(x) LIBXLSNAP_BLOCKJOB_STATE_##x
#define V(x) LIBXL__BLOCKJOB_VERB_##x

void test_blockjob__lifecycle_edges(void)
{
    /* the paths a job really takes */
    CU_ASSERT(libxl__blockjob_transition_ok(S(NEW), S(RUNNING)));
    CU_ASSERT(libxl__blockjob_transition_ok(S(RUNNING), S(READY)));
    CU_ASSERT(libxl__blockjob_transition_ok(S(READY), S(CONCLUDED)));
    CU_ASSERT(libxl__blockjob_transition_ok(S(RUNNING), S(CONCLUDED)));
    CU_ASSERT(libxl__blockjob_transition_ok(S(RUNNING), S(ABORTING)));
    CU_ASSERT(libxl__blockjob_transition_ok(S(ABORTING), S(CONCLUDED)));
    CU_ASSERT(libxl__blockjob_transition_ok(S(CONCLUDED), S(COMPLETED)));
    CU_ASSERT(libxl__blockjob_transition_ok(S(CONCLUDED), S(FAILED)));
    CU_ASSERT(libxl__blockjob_transition_ok(S(CONCLUDED), S(CANCELLED)));
    /* staying put is always fine */
    CU_ASSERT(libxl__blockjob_transition_ok(S(READY), S(READY)));
}

void test_blockjob__forbidden_edges(void)
{
    int s;

    /* terminal states go nowhere */
    for (s = S(NEW); s <= S(CANCELLED); s++) {
        CU_ASSERT(!libxl__blockjob_transition_ok(S(COMPLETED), s) ||
                  s == S(COMPLETED));
        CU_ASSERT(!libxl__blockjob_transition_ok(S(FAILED), s) ||
                  s == S(FAILED));
        CU_ASSERT(!libxl__blockjob_transition_ok(S(CANCELLED), s) ||
                  s == S(CANCELLED));
    }
    /* no outcome without concluding, no way back to NEW */
    CU_ASSERT(!libxl__blockjob_transition_ok(S(RUNNING), S(COMPLETED)));
    CU_ASSERT(!libxl__blockjob_transition_ok(S(READY), S(CANCELLED)));
    CU_ASSERT(!libxl__blockjob_transition_ok(S(RUNNING), S(NEW)));
    CU_ASSERT(!libxl__blockjob_transition_ok(S(ABORTING), S(READY)));
    CU_ASSERT(!libxl__blockjob_transition_ok(S(CONCLUDED), S(RUNNING)));
    /* out of range */
    CU_ASSERT(!libxl__blockjob_transition_ok(S(NEW), 99));
    CU_ASSERT(!libxl__blockjob_transition_ok(-1, S(NEW)));
}

void test_blockjob__verbs(void)
{
    /* pivot only at READY: the race at READY is checked here */
    CU_ASSERT(libxl__blockjob_verb_ok(S(READY), V(COMPLETE)));
    CU_ASSERT(!libxl__blockjob_verb_ok(S(RUNNING), V(COMPLETE)));
    CU_ASSERT(!libxl__blockjob_verb_ok(S(CONCLUDED), V(COMPLETE)));
    /* cancel while it runs or waits, not once it is over */
    CU_ASSERT(libxl__blockjob_verb_ok(S(RUNNING), V(CANCEL)));
    CU_ASSERT(libxl__blockjob_verb_ok(S(READY), V(CANCEL)));
    CU_ASSERT(!libxl__blockjob_verb_ok(S(ABORTING), V(CANCEL)));
    CU_ASSERT(!libxl__blockjob_verb_ok(S(CONCLUDED), V(CANCEL)));
    CU_ASSERT(!libxl__blockjob_verb_ok(S(COMPLETED), V(CANCEL)));
    /* dismiss only a concluded job */
    CU_ASSERT(libxl__blockjob_verb_ok(S(CONCLUDED), V(DISMISS)));
    CU_ASSERT(!libxl__blockjob_verb_ok(S(RUNNING), V(DISMISS)));
    CU_ASSERT(libxl__blockjob_verb_ok(S(RUNNING), V(SET_SPEED)));
    CU_ASSERT(!libxl__blockjob_verb_ok(S(FAILED), V(SET_SPEED)));
    CU_ASSERT(!libxl__blockjob_verb_ok(S(READY), V(NUM)));
}

void test_blockjob__qemu_status(void)
{
    static const struct { const char *q; libxlsnap_blockjob_state s; } ok[] = {
        { "created", S(NEW) }, { "running", S(RUNNING) },
        { "paused", S(RUNNING) }, { "ready", S(READY) },
        { "standby", S(RUNNING) }, { "waiting", S(RUNNING) },
        { "pending", S(RUNNING) }, { "aborting", S(ABORTING) },
        { "concluded", S(CONCLUDED) },
    };
    libxlsnap_blockjob_state s;
    size_t i;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        s = 99;
        CU_ASSERT_EQUAL(libxl__blockjob_state_from_qemu(ok[i].q, &s), 0);
        CU_ASSERT_EQUAL(s, ok[i].s);
    }
    CU_ASSERT_EQUAL(libxl__blockjob_state_from_qemu("null", &s),
                    ERROR_INVAL);
    CU_ASSERT_EQUAL(libxl__blockjob_state_from_qemu(NULL, &s), ERROR_INVAL);
}

void test_blockjob__names(void)
{
    CU_ASSERT_STRING_EQUAL(libxlsnap_blockjob_state_to_string(S(READY)),
                           "ready");
    CU_ASSERT_STRING_EQUAL(libxlsnap_blockjob_state_to_string(99), "unknown");
    CU_ASSERT_STRING_EQUAL(
        libxlsnap_blockjob_type_to_string(LIBXLSNAP_BLOCKJOB_TYPE_ACTIVE_COMMIT),
        "active-commit");
    CU_ASSERT_STRING_EQUAL(
        libxlsnap_blockjob_type_to_string(LIBXLSNAP_BLOCKJOB_TYPE_STREAM), "stream");
}

/* ---------------------------------------------------------------- */
/* the async API against a real QEMU */

typedef struct {
    int done, rc, progress_calls;
    uint64_t last_offset;
    libxlsnap_blockjob_state last_state;
} bj_watch;

static void bj_done(libxl_ctx *unused, int rc, void *for_callback)
{
    bj_watch *w = for_callback;
    w->done++;
    w->rc = rc;
}

static void bj_progress(const libxlsnap_progress *p, void *for_callback)
{
    const libxlsnap_blockjob_info *info = p->job;
    bj_watch *w = for_callback;

    CU_ASSERT_PTR_NOT_NULL_FATAL(info);
    CU_ASSERT_EQUAL(p->done, info->offset);
    CU_ASSERT_EQUAL(p->total, info->len);
    w->progress_calls++;
    w->last_offset = info->offset;
    w->last_state = info->state;
}

/* A running domain on base <- overlay, with data in the overlay. */
static libxlsnap_ctx *bj_domain(char **base_r, const char *mb)
{
    char *base = unit_tmpdir("bj"), *img, *cfg, *text, *cmd;
    libxlsnap_ctx *ctx;
    libxlsnap_domain_snapshot snap;
    char *out = NULL;
    const char *mk[] = { "qemu-img", "create", "-q", "-f", "qcow2", NULL,
                         "128M", NULL };
    const char *qv[] = { "qemu-system-x86_64", "--version", NULL };

    if (!base || unit_run(qv)) return NULL;
    if (asprintf(&img, "%s/bj.qcow2", base) < 0 ||
        asprintf(&cfg, "%s/bj.cfg", base) < 0 ||
        asprintf(&text, "name = \"bjvm\"\nmemory = 16\ndisk = [ "
                 "'format=qcow2,vdev=xvda,access=rw,target=%s' ]\n", img) < 0)
        return NULL;
    mk[5] = img;
    if (unit_run(mk) || unit_write_file(cfg, text)) return NULL;
    ctx = unit_ctx(base);
    if (!ctx || libxlsnap_domain_create(ctx, cfg, false, NULL, NULL))
        return NULL;
    libxlsnap_domain_snapshot_init(&snap);
    snap.name = strdup("s1");
    snap.num_disks = 1;
    snap.disks = calloc(1, sizeof(*snap.disks));
    snap.disks[0].vdev = strdup("xvda");
    snap.disks[0].type = LIBXLSNAP_DISK_SNAPSHOT_TYPE_EXTERNAL;
    if (libxlsnap_domain_snapshot_create(ctx, "bjvm", &snap, 0, NULL, NULL))
        return NULL;
    libxlsnap_domain_snapshot_dispose(&snap);
    if (asprintf(&cmd, "qemu-io xvda \"write -P 0x5a 0 %s\"", mb) < 0 ||
        libxlsnap_domain_monitor_command(ctx, "bjvm", cmd, &out))
        return NULL;
    free(out);
    free(cmd);
    free(img);
    free(cfg);
    free(text);
    *base_r = base;
    return ctx;
}

static void bj_teardown(libxlsnap_ctx *ctx, char *base)
{
    libxlsnap_domain_destroy(ctx, "bjvm", NULL);
    unit_ctx_free(ctx);
    unit_rm_rf(base);
    free(base);
}

void test_blockjob__async_commit_callbacks(void)
{
    char *base = NULL;
    libxlsnap_ctx *ctx = bj_domain(&base, "8M");
    libxlsnap_block_commit_params p;
    libxlsnap_progress_how progress;
    libxl_asyncop_how how;
    libxlsnap_domain d;
    bj_watch w;

    if (!ctx) return;                 /* no QEMU here */
    memset(&w, 0, sizeof(w));
    memset(&p, 0, sizeof(p));
    p.flags = LIBXLSNAP_BLOCK_COMMIT_ACTIVE | LIBXLSNAP_BLOCK_COMMIT_PIVOT;
    progress.callback = bj_progress;
    progress.for_callback = &w;
    memset(&how, 0, sizeof(how));
    how.callback = bj_done;
    how.u.for_callback = &w;

    CU_ASSERT_EQUAL(libxlsnap_block_commit(ctx, "bjvm", "xvda", &p, &progress,
                                       &how), 0);
    CU_ASSERT_EQUAL(w.done, 0);
    CU_ASSERT_EQUAL(libxlsnap_event_loop_run(ctx, 30000), 0);
    CU_ASSERT_EQUAL(w.done, 1);
    CU_ASSERT_EQUAL(w.rc, 0);
    CU_ASSERT(w.progress_calls >= 2);
    CU_ASSERT_EQUAL(w.last_state, LIBXLSNAP_BLOCKJOB_STATE_COMPLETED);
    CU_ASSERT(w.last_offset > 0);
    /* pivoted: the base is the active image again */
    CU_ASSERT_EQUAL_FATAL(libxlsnap_domain_lookup(ctx, "bjvm", &d), 0);
    CU_ASSERT_EQUAL_FATAL(d.num_disks, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.disks[0].pdev_path, "/bj.qcow2"));
    libxlsnap_domain_dispose(&d);
    bj_teardown(ctx, base);
}

void test_blockjob__abort_keeps_chain(void)
{
    char *base = NULL;
    libxlsnap_ctx *ctx = bj_domain(&base, "24M");
    libxlsnap_block_commit_params p;
    libxlsnap_progress_how progress;
    libxl_asyncop_how how;
    libxlsnap_blockjob_info info;
    libxlsnap_domain d;
    bj_watch w;

    if (!ctx) return;
    memset(&w, 0, sizeof(w));
    memset(&p, 0, sizeof(p));
    p.flags = LIBXLSNAP_BLOCK_COMMIT_ACTIVE | LIBXLSNAP_BLOCK_COMMIT_PIVOT;
    p.bandwidth = 4 << 20;            /* 24 MiB at 4 MiB/s: ~6 s */
    progress.callback = bj_progress;
    progress.for_callback = &w;
    memset(&how, 0, sizeof(how));
    how.callback = bj_done;
    how.u.for_callback = &w;

    CU_ASSERT_EQUAL_FATAL(libxlsnap_block_commit(ctx, "bjvm", "xvda", &p,
                                             &progress, &how), 0);
    /* let it run a little: it is then running, not done */
    CU_ASSERT_EQUAL(libxlsnap_event_loop_run(ctx, 800),
                    ERROR_TIMEDOUT);
    CU_ASSERT_EQUAL(w.done, 0);
    CU_ASSERT_EQUAL(w.last_state, LIBXLSNAP_BLOCKJOB_STATE_RUNNING);
    CU_ASSERT_EQUAL(libxlsnap_ao_abort(ctx, &how), 0);
    CU_ASSERT_EQUAL(libxlsnap_event_loop_run(ctx, 30000), 0);
    CU_ASSERT_EQUAL(w.done, 1);
    CU_ASSERT_EQUAL(w.rc, ERROR_ABORTED);
    CU_ASSERT_EQUAL(w.last_state, LIBXLSNAP_BLOCKJOB_STATE_CANCELLED);
    /* the chain is as it was: still on the overlay, no job left */
    CU_ASSERT_EQUAL_FATAL(libxlsnap_domain_lookup(ctx, "bjvm", &d), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.disks[0].pdev_path, ".s1.qcow2"));
    libxlsnap_domain_dispose(&d);
    CU_ASSERT_EQUAL(libxlsnap_blockjob_get(ctx, "bjvm", "xvda", &info),
                    ERROR_NOTFOUND);
    bj_teardown(ctx, base);
}
