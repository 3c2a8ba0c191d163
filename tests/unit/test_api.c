/*
 * test_api.c - the public surface: settings given to ctx_alloc win
 * over the environment, which is only their default; a progress
 * record per report
 */
#include <CUnit/CUnit.h>

#include "helpers.h"

static xentoollog_logger_stdiostream *api_logger;

static xentoollog_logger *logger(void)
{
    if (!api_logger)
        api_logger = xtl_createlogger_stdiostream(stderr, XTL_CRITICAL, 0);
    return (xentoollog_logger *)api_logger;
}

/* The environment gives the defaults; _init leaves every field unset. */
void test_api__settings_defaults_from_environment(void)
{
    libxlsnap_settings s;
    libxlsnap_ctx *ctx = NULL;

    libxlsnap_settings_init(&s);
    CU_ASSERT_EQUAL(s.driver, LIBXLSNAP_DRIVER_AUTO);
    CU_ASSERT_PTR_NULL(s.state_dir);
    CU_ASSERT_EQUAL(s.lock_timeout, -1);
    CU_ASSERT_PTR_NULL(s.xl_ctx);
    setenv("XL_SNAPSHOT_DRIVER", "qemu", 1);
    setenv("XL_SNAPSHOT_STATE_DIR", "/env/state", 1);
    setenv("XL_SNAPSHOT_RUN_DIR", "/env/run", 1);
    setenv("XL_SNAPSHOT_CONFIG_DIR", "/env/config", 1);
    setenv("XL_SNAPSHOT_LOCK_TIMEOUT", "7", 1);
    CU_ASSERT_EQUAL_FATAL(libxlsnap_ctx_alloc(&ctx,
                              LIBXLSNAP_VERSION, 0, logger(), &s), 0);
    CU_ASSERT_STRING_EQUAL(ctx->state_dir, "/env/state");
    CU_ASSERT_STRING_EQUAL(ctx->run_dir, "/env/run");
    CU_ASSERT_STRING_EQUAL(ctx->config_dir, "/env/config");
    CU_ASSERT_EQUAL(ctx->lock_timeout, 7);
    CU_ASSERT_EQUAL(libxlsnap_ctx_driver(ctx),
                    LIBXLSNAP_DRIVER_QEMU);
    libxlsnap_ctx_free(ctx);
    /* NULL settings: the same */
    CU_ASSERT_EQUAL_FATAL(libxlsnap_ctx_alloc(&ctx,
                              LIBXLSNAP_VERSION, 0, logger(), NULL), 0);
    CU_ASSERT_STRING_EQUAL(ctx->state_dir, "/env/state");
    CU_ASSERT_EQUAL(ctx->lock_timeout, 7);
    libxlsnap_ctx_free(ctx);
    libxlsnap_settings_dispose(&s);
    unsetenv("XL_SNAPSHOT_STATE_DIR");
    unsetenv("XL_SNAPSHOT_RUN_DIR");
    unsetenv("XL_SNAPSHOT_CONFIG_DIR");
    unsetenv("XL_SNAPSHOT_LOCK_TIMEOUT");
}

/* What the caller sets wins over the environment. */
void test_api__settings_override_environment(void)
{
    libxlsnap_settings s;
    libxlsnap_ctx *ctx = NULL;

    setenv("XL_SNAPSHOT_DRIVER", "bogus", 1);
    setenv("XL_SNAPSHOT_STATE_DIR", "/env/state", 1);
    setenv("XL_SNAPSHOT_RUN_DIR", "/env/run", 1);
    setenv("XL_SNAPSHOT_LOCK_TIMEOUT", "7", 1);
    /* the environment's bad driver is an error when it is used... */
    CU_ASSERT_EQUAL(libxlsnap_ctx_alloc(&ctx, LIBXLSNAP_VERSION,
                                             0, logger(), NULL),
                    ERROR_INVAL);
    CU_ASSERT_PTR_NULL(ctx);
    /* ...and not when the settings name the driver */
    libxlsnap_settings_init(&s);
    s.driver = LIBXLSNAP_DRIVER_QEMU;
    s.state_dir = strdup("/set/state");
    s.run_dir = strdup("/set/run");
    s.config_dir = strdup("/set/config");
    s.lock_timeout = 0;
    CU_ASSERT_EQUAL_FATAL(libxlsnap_ctx_alloc(&ctx,
                              LIBXLSNAP_VERSION, 0, logger(), &s), 0);
    /* copied: the settings may go at once */
    libxlsnap_settings_dispose(&s);
    CU_ASSERT_PTR_NULL(s.state_dir);
    CU_ASSERT_EQUAL(libxlsnap_ctx_driver(ctx),
                    LIBXLSNAP_DRIVER_QEMU);
    CU_ASSERT_STRING_EQUAL(ctx->state_dir, "/set/state");
    CU_ASSERT_STRING_EQUAL(ctx->run_dir, "/set/run");
    CU_ASSERT_STRING_EQUAL(ctx->config_dir, "/set/config");
    CU_ASSERT_EQUAL(ctx->lock_timeout, 0);
    libxlsnap_ctx_free(ctx);
    /* a driver no one knows, and the old API version, are refused */
    libxlsnap_settings_init(&s);
    s.driver = (libxlsnap_driver)42;
    CU_ASSERT_EQUAL(libxlsnap_ctx_alloc(&ctx, LIBXLSNAP_VERSION,
                                             0, logger(), &s), ERROR_INVAL);
    CU_ASSERT_EQUAL(libxlsnap_ctx_alloc(&ctx, 0, 0, logger(), NULL),
                    ERROR_INVAL);
    setenv("XL_SNAPSHOT_DRIVER", "qemu", 1);
    unsetenv("XL_SNAPSHOT_STATE_DIR");
    unsetenv("XL_SNAPSHOT_RUN_DIR");
    unsetenv("XL_SNAPSHOT_LOCK_TIMEOUT");
}

/*
 * A caller's libxl_ctx is the one callbacks get, and stays the
 * caller's: ctx_free leaves it alone (here a dummy pointer, on the
 * qemu driver, which never calls into it).
 */
static void ctx_cb(libxl_ctx *xl, int rc, void *for_callback)
{
    CU_ASSERT_NOT_EQUAL(rc, 0);
    *(libxl_ctx **)for_callback = xl;
}

void test_api__callers_libxl_ctx(void)
{
    libxlsnap_settings s;
    libxlsnap_ctx *ctx = NULL;
    libxl_asyncop_how how;
    libxl_ctx *got = NULL;
    static char dummy;
    char *base = unit_tmpdir("api");

    CU_ASSERT_PTR_NOT_NULL_FATAL(base);
    libxlsnap_settings_init(&s);
    s.driver = LIBXLSNAP_DRIVER_QEMU;
    s.state_dir = strdup(base);
    s.run_dir = strdup(base);
    s.xl_ctx = (libxl_ctx *)&dummy;
    CU_ASSERT_EQUAL_FATAL(libxlsnap_ctx_alloc(&ctx,
                              LIBXLSNAP_VERSION, 0, logger(), &s), 0);
    memset(&how, 0, sizeof(how));
    how.callback = ctx_cb;
    how.u.for_callback = &got;
    /* no such domain: the callback says so, with the caller's ctx */
    CU_ASSERT_EQUAL(libxlsnap_domain_snapshot_delete(ctx, "nosuch", "x", 0,
                                                 NULL, &how), 0);
    CU_ASSERT_EQUAL(libxlsnap_event_loop_run(ctx, 1000), 0);
    CU_ASSERT_PTR_EQUAL(got, &dummy);
    libxlsnap_ctx_free(ctx);
    libxlsnap_settings_dispose(&s);
    unit_rm_rf(base);
    free(base);
}

/* One progress record: a step's numbers, and the job for a job. */
static int calls;
static libxlsnap_progress last;

static void progress_cb(const libxlsnap_progress *p, void *fc)
{
    calls++;
    last = *p;
    CU_ASSERT_PTR_EQUAL(fc, &calls);
}

void test_api__progress_record(void)
{
    libxlsnap_progress_how how = { progress_cb, &calls };
    libxlsnap_blockjob_info info;

    calls = 0;
    libxl__progress_report(NULL, "memory", 1, 2);
    libxl__progress_report(&how, "memory", 1, 2);
    CU_ASSERT_EQUAL(calls, 1);
    CU_ASSERT_STRING_EQUAL(last.what, "memory");
    CU_ASSERT_EQUAL(last.done, 1);
    CU_ASSERT_EQUAL(last.total, 2);
    CU_ASSERT_PTR_NULL(last.job);
    libxlsnap_blockjob_info_init(&info);
    info.id = strdup("libxl-commit-xvda");
    info.offset = 3;
    info.len = 4;
    libxl__progress_report_job(&how, &info);
    CU_ASSERT_EQUAL(calls, 2);
    CU_ASSERT_STRING_EQUAL(last.what, "libxl-commit-xvda");
    CU_ASSERT_EQUAL(last.done, 3);
    CU_ASSERT_EQUAL(last.total, 4);
    CU_ASSERT_PTR_EQUAL(last.job, &info);
    libxlsnap_blockjob_info_dispose(&info);
}

/*
 * Refused settings (a new user's cases, issue 16): relative
 * directories, from the settings or the environment (records name
 * files under them: a later chdir would lose them), a lock_timeout
 * below -1; an unknown driver has no name.
 */
void test_api__settings_refused(void)
{
    libxlsnap_settings s;
    libxlsnap_ctx *ctx = NULL;

    CU_ASSERT_EQUAL(libxlsnap_ctx_alloc(NULL, LIBXLSNAP_VERSION, 0,
                                        logger(), NULL), ERROR_INVAL);
    libxlsnap_settings_init(&s);
    s.driver = LIBXLSNAP_DRIVER_QEMU;
    s.state_dir = strdup("relstate");
    s.run_dir = strdup("/set/run");
    s.config_dir = strdup("/set/config");
    CU_ASSERT_EQUAL(libxlsnap_ctx_alloc(&ctx, LIBXLSNAP_VERSION, 0,
                                        logger(), &s), ERROR_INVAL);
    CU_ASSERT_PTR_NULL(ctx);
    free(s.state_dir);
    s.state_dir = strdup("/set/state");
    free(s.run_dir);
    s.run_dir = strdup("./run");
    CU_ASSERT_EQUAL(libxlsnap_ctx_alloc(&ctx, LIBXLSNAP_VERSION, 0,
                                        logger(), &s), ERROR_INVAL);
    free(s.run_dir);
    s.run_dir = strdup("/set/run");
    s.lock_timeout = -5;
    CU_ASSERT_EQUAL(libxlsnap_ctx_alloc(&ctx, LIBXLSNAP_VERSION, 0,
                                        logger(), &s), ERROR_INVAL);
    s.lock_timeout = -1;
    CU_ASSERT_EQUAL_FATAL(libxlsnap_ctx_alloc(&ctx, LIBXLSNAP_VERSION, 0,
                                              logger(), &s), 0);
    libxlsnap_ctx_free(ctx);
    ctx = NULL;
    free(s.config_dir);
    s.config_dir = NULL;
    setenv("XL_SNAPSHOT_CONFIG_DIR", "cfg", 1);
    CU_ASSERT_EQUAL(libxlsnap_ctx_alloc(&ctx, LIBXLSNAP_VERSION, 0,
                                        logger(), &s), ERROR_INVAL);
    unsetenv("XL_SNAPSHOT_CONFIG_DIR");
    libxlsnap_settings_dispose(&s);
    CU_ASSERT_STRING_EQUAL(libxlsnap_driver_to_string(LIBXLSNAP_DRIVER_AUTO),
                           "auto");
    CU_ASSERT_PTR_NULL(libxlsnap_driver_to_string((libxlsnap_driver)99));
}

/* ctx_free with an operation outstanding frees nothing, and says so. */
static void outstanding_cb(libxl_ctx *xl, int rc, void *for_callback)
{
    *(int *)for_callback = rc ? rc : 1;
}

void test_api__ctx_free_outstanding(void)
{
    libxlsnap_settings s;
    libxlsnap_ctx *ctx = NULL;
    libxl_asyncop_how how;
    int got = 0;
    char *base = unit_tmpdir("api");

    CU_ASSERT_PTR_NOT_NULL_FATAL(base);
    libxlsnap_settings_init(&s);
    s.driver = LIBXLSNAP_DRIVER_QEMU;
    s.state_dir = strdup(base);
    s.run_dir = strdup(base);
    CU_ASSERT_EQUAL_FATAL(libxlsnap_ctx_alloc(&ctx, LIBXLSNAP_VERSION, 0,
                                              logger(), &s), 0);
    memset(&how, 0, sizeof(how));
    how.callback = outstanding_cb;
    how.u.for_callback = &got;
    CU_ASSERT_EQUAL(libxlsnap_domain_snapshot_delete(ctx, "nosuch", "x", 0,
                                                     NULL, &how), 0);
    CU_ASSERT_EQUAL(got, 0);
    CU_ASSERT_EQUAL(libxlsnap_ctx_free(ctx), ERROR_INVAL);
    CU_ASSERT_EQUAL(libxlsnap_event_loop_run(ctx, 1000), 0);
    CU_ASSERT_NOT_EQUAL(got, 0);
    CU_ASSERT_EQUAL(libxlsnap_ctx_free(ctx), 0);
    libxlsnap_settings_dispose(&s);
    unit_rm_rf(base);
    free(base);
}
