/*
 * test_api.c - the public surface: settings given to ctx_alloc win
 * over the environment, which is only their default; a progress
 * record per report
 */
#include <CUnit/CUnit.h>

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* A qemu-driver ctx whose directories are all base, logging to lg. */
static libxlsnap_ctx *base_ctx(const char *base, xentoollog_logger *lg)
{
    libxlsnap_settings s;
    libxlsnap_ctx *ctx = NULL;

    libxlsnap_settings_init(&s);
    s.driver = LIBXLSNAP_DRIVER_QEMU;
    s.state_dir = strdup(base);
    s.run_dir = strdup(base);
    s.config_dir = strdup(base);
    if (libxlsnap_ctx_alloc(&ctx, LIBXLSNAP_VERSION, 0, lg, &s)) ctx = NULL;
    libxlsnap_settings_dispose(&s);
    return ctx;
}

/* ctx_free with an operation outstanding frees nothing, and says so. */
static void outstanding_cb(libxl_ctx *xl, int rc, void *for_callback)
{
    *(int *)for_callback = rc ? rc : 1;
}

void test_api__ctx_free_outstanding(void)
{
    libxlsnap_ctx *ctx;
    libxl_asyncop_how how;
    int got = 0;
    char *base = unit_tmpdir("api");

    CU_ASSERT_PTR_NOT_NULL_FATAL(base);
    ctx = base_ctx(base, logger());
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
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
    unit_rm_rf(base);
    free(base);
}

/*
 * NULL for a pointer the header says is required (a new user's cases,
 * issue 16: several crashed): every public call refuses it with
 * ERROR_INVAL (NULL or false where it returns a pointer or a bool) and
 * one logged line, or, with ctx itself NULL, with nothing logged.
 * Each call runs in a child process, so a crash is a failure of its
 * case, not of the run.
 */
static libxlsnap_domain_snapshot a_snap;
static libxlsnap_disk_snapshot a_disk;
static libxlsnap_domain a_dom;
static libxlsnap_blockjob_info a_job;
static libxlsnap_domain_snapshot *a_list;
static libxlsnap_domain *a_doms;
static char **a_strs;
static char *a_str;
static int a_int;
static bool a_bool;
static struct pollfd a_fds[4];
static const libxl_asyncop_how *no_how;
static const libxlsnap_progress_how *no_prog;

#define INVAL_IF(failed) ((failed) ? ERROR_INVAL : 0)
#define NULL_CASES 58

/* Case i (< NULL_CASES) with ctx: its rc. */
static int null_case(libxlsnap_ctx *c, int i)
{
    const char *d = "nosuch";
    int n = 4, t = -1;
    struct timeval now = { 0, 0 };

    switch (i) {
    case 0: return libxlsnap_domain_snapshot_check(c, NULL, &a_strs, &a_int,
                                                   no_how);
    case 1: return libxlsnap_domain_snapshot_check(c, d, NULL, &a_int,
                                                   no_how);
    case 2: return libxlsnap_domain_snapshot_check(c, d, &a_strs, NULL,
                                                   no_how);
    case 3: return libxlsnap_block_commit(c, NULL, "xvda", NULL, no_prog,
                                          no_how);
    case 4: return libxlsnap_block_commit(c, d, NULL, NULL, no_prog,
                                          no_how);
    case 5: return libxlsnap_block_stream(c, d, NULL, NULL, 0, 0, 0,
                                          no_prog, no_how);
    case 6: return libxlsnap_blockjob_get(c, d, "xvda", NULL);
    case 7: return libxlsnap_blockjob_get(c, d, NULL, &a_job);
    case 8: return libxlsnap_blockjob_set_speed(c, NULL, "xvda", 0);
    case 9: return libxlsnap_blockjob_abort(c, d, NULL, no_how);
    case 10: return libxlsnap_blockjob_pivot(c, NULL, "xvda", no_how);
    case 11: return libxlsnap_domain_snapshot_config_parse(c, NULL,
                                                           &a_snap);
    case 12: return libxlsnap_domain_snapshot_config_parse(c, "/x.cfg",
                                                           NULL);
    case 13: return INVAL_IF(!libxlsnap_domain_snapshot_config_is_snapshot(
                                 c, NULL));
    case 14: return libxlsnap_disk_snapshot_parse_spec(c, NULL, &a_disk);
    case 15: return libxlsnap_disk_snapshot_parse_spec(c, "xvda", NULL);
    case 16: return libxlsnap_domain_snapshot_create(c, NULL, &a_snap, 0,
                                                     no_prog, no_how);
    case 17: return libxlsnap_domain_snapshot_create(c, d, NULL, 0,
                                                     no_prog, no_how);
    case 18: return libxlsnap_domain_snapshot_delete(c, d, NULL, 0,
                                                     no_prog, no_how);
    case 19: return libxlsnap_domain_snapshot_delete(c, NULL, "s", 0,
                                                     no_prog, no_how);
    case 20: return libxlsnap_domain_lookup(c, d, NULL);
    case 21: return libxlsnap_domain_lookup(c, NULL, &a_dom);
    case 22: return libxlsnap_domain_list(c, NULL, &a_int);
    case 23: return libxlsnap_domain_list(c, &a_doms, NULL);
    case 24: return libxlsnap_domain_create(c, NULL, false, NULL, no_how);
    case 25: return libxlsnap_domain_start_overrides(c, "/x.cfg", NULL,
                                                     &a_str);
    case 26: return libxlsnap_domain_start_overrides(c, NULL, &a_str,
                                                     &a_str);
    case 27: return libxlsnap_domain_destroy(c, NULL, no_how);
    case 28: return libxlsnap_domain_pause(c, NULL);
    case 29: return libxlsnap_domain_unpause(c, NULL);
    case 30: return libxlsnap_domain_monitor_command(c, d, NULL, &a_str);
    case 31: return libxlsnap_domain_monitor_command(c, NULL, "info", NULL);
    case 32: return libxlsnap_ao_abort(c, NULL);
    case 33: return libxlsnap_osevent_beforepoll(c, NULL, a_fds, &t, now);
    case 34: return libxlsnap_osevent_beforepoll(c, &n, a_fds, NULL, now);
    case 35: return libxlsnap_osevent_beforepoll(c, &n, NULL, &t, now);
    case 36: return libxlsnap_domain_snapshot_recover(c, NULL, &a_bool,
                                                      no_how);
    case 37: return libxlsnap_domain_snapshot_list(c, d, NULL, &a_int);
    case 38: return libxlsnap_domain_snapshot_list(c, d, &a_list, NULL);
    case 39: return libxlsnap_domain_snapshot_get(c, d, NULL, &a_snap);
    case 40: return libxlsnap_domain_snapshot_get(c, d, "s", NULL);
    case 41: return libxlsnap_domain_snapshot_revert(c, d, NULL, 0,
                                                     no_prog, no_how);
    case 42: return INVAL_IF(!libxlsnap_domain_snapshot_to_json(c, NULL));
    case 43: return INVAL_IF(!libxlsnap_blockjob_info_to_json(c, NULL));
    case 44: return libxlsnap_domain_snapshot_from_json(c, &a_snap, NULL);
    case 45: return libxlsnap_domain_snapshot_from_json(c, NULL, "{}");
    case 46: return INVAL_IF(!libxlsnap_domain_snapshot_to_xml(c, NULL));
    case 47: return libxlsnap_domain_snapshot_from_xml(c, NULL, &a_snap);
    case 48: return libxlsnap_domain_snapshot_from_xml(c, "<x/>", NULL);
    case 49: return libxlsnap_domain_snapshot_redefine(c, d, NULL, 0,
                                                       no_how);
    case 50: return libxlsnap_domain_snapshot_revert(c, NULL, "s", 0,
                                                     no_prog, no_how);
    case 51: return libxlsnap_domain_snapshot_get(c, NULL, "s", &a_snap);
    case 52: return libxlsnap_domain_snapshot_list(c, NULL, &a_list,
                                                   &a_int);
    case 53: return libxlsnap_domain_snapshot_redefine(c, NULL, &a_snap, 0,
                                                       no_how);
    case 54: return libxlsnap_block_stream(c, NULL, "xvda", NULL, 0, 0, 0,
                                           no_prog, no_how);
    case 55: return libxlsnap_block_copy(c, NULL, "xvda", "/x.qcow2", NULL,
                                         no_prog, no_how);
    case 56: return libxlsnap_block_copy(c, d, NULL, "/x.qcow2", NULL,
                                         no_prog, no_how);
    case 57: return libxlsnap_block_copy(c, d, "xvda", NULL, NULL,
                                         no_prog, no_how);
    }
    return 1;
}

/* Only with ctx NULL: calls whose other arguments are all given. */
static int null_ctx_case(int i)
{
    struct timeval now = { 0, 0 };
    int n = 0, t = -1;

    switch (i) {
    case 0: return libxlsnap_event_loop_run(NULL, 0);
    case 1: return INVAL_IF(libxlsnap_ctx_driver(NULL) ==
                            LIBXLSNAP_DRIVER_AUTO);
    case 2: libxlsnap_osevent_afterpoll(NULL, 0, a_fds, now);
            return ERROR_INVAL;
    case 3: return libxlsnap_osevent_beforepoll(NULL, &n, a_fds, &t, now);
    }
    return 1;
}

/*
 * Runs case i in a child: 0 when it gave ERROR_INVAL and logged
 * `lines` lines; else what went wrong (a crash included), printed.
 */
static int in_child(libxlsnap_ctx *ctx, bool with_ctx, int i, int lines)
{
    int status, rc;
    pid_t pid = fork();

    if (pid < 0) return -1;
    if (!pid) {
        unit_nlogs = 0;
        rc = with_ctx ? null_case(ctx, i) : null_case(NULL, i);
        _exit(rc != ERROR_INVAL ? 1 : unit_nlogs != lines ? 2 : 0);
    }
    if (waitpid(pid, &status, 0) != pid) return -1;
    if (WIFEXITED(status) && !WEXITSTATUS(status)) return 0;
    fprintf(stderr, "    case %d (%s): %s\n", i, with_ctx ? "ctx" : "NULL ctx",
            WIFSIGNALED(status) ? strsignal(WTERMSIG(status))
            : WEXITSTATUS(status) == 1 ? "not ERROR_INVAL"
            : "not as many logged lines as said");
    return 1;
}

static int null_ctx_child(int i)
{
    int status, rc;
    pid_t pid = fork();

    if (pid < 0) return -1;
    if (!pid) {
        unit_nlogs = 0;
        rc = null_ctx_case(i);
        _exit(rc == ERROR_INVAL ? 0 : 1);
    }
    if (waitpid(pid, &status, 0) != pid) return -1;
    if (WIFEXITED(status) && !WEXITSTATUS(status)) return 0;
    fprintf(stderr, "    NULL ctx case %d: %s\n", i, WIFSIGNALED(status)
            ? strsignal(WTERMSIG(status)) : "not ERROR_INVAL");
    return 1;
}

void test_api__null_required_pointers(void)
{
    libxlsnap_ctx *ctx, *none = NULL;
    char *base = unit_tmpdir("api");
    int i, failed = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(base);
    ctx = base_ctx(base, unit_capture_logger());
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    libxlsnap_domain_snapshot_init(&a_snap);
    libxlsnap_disk_snapshot_init(&a_disk);
    libxlsnap_domain_init(&a_dom);
    libxlsnap_blockjob_info_init(&a_job);
    for (i = 0; i < NULL_CASES; i++) {
        failed += in_child(ctx, true, i, 1);
        failed += in_child(ctx, false, i, 0);
    }
    for (i = 0; i < 4; i++) failed += null_ctx_child(i);
    CU_ASSERT_EQUAL(failed, 0);
    /* ctx_alloc says it through lg, its only logger */
    unit_nlogs = 0;
    CU_ASSERT_EQUAL(libxlsnap_ctx_alloc(NULL, LIBXLSNAP_VERSION, 0,
                                        unit_capture_logger(), NULL),
                    ERROR_INVAL);
    CU_ASSERT_EQUAL(unit_nlogs, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(unit_last_log, "pctx is NULL"));
    CU_ASSERT_EQUAL(libxlsnap_ctx_alloc(&none, LIBXLSNAP_VERSION, 0, NULL,
                                        NULL), ERROR_INVAL);
    CU_ASSERT_PTR_NULL(none);
    /* the message names the call and the argument */
    unit_nlogs = 0;
    CU_ASSERT_EQUAL(libxlsnap_domain_snapshot_get(ctx, "nosuch", NULL,
                                                  &a_snap), ERROR_INVAL);
    CU_ASSERT_EQUAL(unit_nlogs, 1);
    CU_ASSERT_STRING_EQUAL(unit_last_log, "libxlsnap_domain_snapshot_get: "
                           "name is NULL, and is required");
    CU_ASSERT_EQUAL(libxlsnap_disk_snapshot_type_from_string(
                        "internal", NULL), ERROR_INVAL);
    libxlsnap_ctx_free(ctx);
    unit_rm_rf(base);
    free(base);
}

/*
 * Where the header allows NULL, it works: ctx_free, the _init and
 * _dispose of NULL, free of an empty list, and the optional results
 * (recover's *recovered_r, here on a shut-off domain of a config).
 */
void test_api__null_where_allowed(void)
{
    libxlsnap_ctx *ctx;
    char *base = unit_tmpdir("api"), *cfg;

    CU_ASSERT_PTR_NOT_NULL_FATAL(base);
    CU_ASSERT_EQUAL(libxlsnap_ctx_free(NULL), 0);
    libxlsnap_disk_snapshot_init(NULL);
    libxlsnap_disk_snapshot_dispose(NULL);
    libxlsnap_domain_snapshot_init(NULL);
    libxlsnap_domain_snapshot_dispose(NULL);
    libxlsnap_domain_init(NULL);
    libxlsnap_domain_dispose(NULL);
    libxlsnap_blockjob_info_init(NULL);
    libxlsnap_blockjob_info_dispose(NULL);
    libxlsnap_settings_init(NULL);
    libxlsnap_settings_dispose(NULL);
    libxlsnap_domain_snapshot_list_free(NULL, 0);
    libxlsnap_domain_list_free(NULL, 0);
    libxlsnap_strings_free(NULL, 3);
    ctx = base_ctx(base, unit_capture_logger());
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    CU_ASSERT_FATAL(asprintf(&cfg, "%s/vmn.cfg", base) > 0);
    CU_ASSERT_EQUAL_FATAL(unit_write_file(cfg, "name = \"vmn\"\n"
                                          "memory = 16\ndisk = [ ]\n"), 0);
    CU_ASSERT_EQUAL(libxlsnap_domain_snapshot_recover(ctx, cfg, NULL, NULL),
                    0);
    libxlsnap_ctx_free(ctx);
    unit_rm_rf(base);
    free(cfg);
    free(base);
}

/*
 * Flags a call does not know are refused before anything is looked at
 * (the domain does not exist: the refusal is the flags'), in one line
 * naming the call and the bits; the known ones go on to the lookup.
 */
void test_api__unknown_flags(void)
{
    libxlsnap_ctx *ctx;
    char *base = unit_tmpdir("api");
    libxlsnap_block_commit_params p;
    libxlsnap_domain_snapshot s;
    const unsigned bad = 1U << 29;

    CU_ASSERT_PTR_NOT_NULL_FATAL(base);
    ctx = base_ctx(base, unit_capture_logger());
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    libxlsnap_domain_snapshot_init(&s);
    s.name = "r1";
    memset(&p, 0, sizeof(p));
    p.flags = LIBXLSNAP_BLOCK_COMMIT_ACTIVE | bad;

#define REFUSED(call, fname) do {                                        \
        unit_nlogs = 0;                                                  \
        unit_last_log[0] = 0;                                            \
        CU_ASSERT_EQUAL(call, ERROR_INVAL);                              \
        CU_ASSERT_EQUAL(unit_nlogs, 1);                                  \
        CU_ASSERT_PTR_NOT_NULL(strstr(unit_last_log, fname));            \
        CU_ASSERT_PTR_NOT_NULL(strstr(unit_last_log,                     \
                                      "unknown flags 0x20000000"));      \
    } while (0)
    REFUSED(libxlsnap_domain_snapshot_revert(ctx, "nosuch", "s1",
                LIBXLSNAP_REVERT_FORCE | bad, NULL, NULL),
            "libxlsnap_domain_snapshot_revert");
    REFUSED(libxlsnap_domain_snapshot_delete(ctx, "nosuch", "s1", bad,
                                             NULL, NULL),
            "libxlsnap_domain_snapshot_delete");
    REFUSED(libxlsnap_domain_snapshot_redefine(ctx, "nosuch", &s, bad,
                                               NULL),
            "libxlsnap_domain_snapshot_redefine");
    REFUSED(libxlsnap_block_commit(ctx, "nosuch", "xvda", &p, NULL, NULL),
            "libxlsnap_block_commit");
    REFUSED(libxlsnap_block_stream(ctx, "nosuch", "xvda", NULL, 0, 0,
                                   bad, NULL, NULL),
            "libxlsnap_block_stream");
#undef REFUSED
    /* stream knows NO_WAIT only */
    unit_nlogs = 0;
    CU_ASSERT_EQUAL(libxlsnap_block_stream(ctx, "nosuch", "xvda", NULL, 0, 0,
                                           LIBXLSNAP_BLOCK_COMMIT_PIVOT,
                                           NULL, NULL), ERROR_INVAL);
    /* the known ones go on: to the lookup, which finds no domain */
    CU_ASSERT_EQUAL(libxlsnap_domain_snapshot_delete(ctx, "nosuch", "s1",
                        LIBXLSNAP_DELETE_CHILDREN, NULL, NULL),
                    ERROR_DOMAIN_NOTFOUND);
    p.flags = LIBXLSNAP_BLOCK_COMMIT_ACTIVE;
    CU_ASSERT_EQUAL(libxlsnap_block_commit(ctx, "nosuch", "xvda", &p, NULL,
                                           NULL), ERROR_DOMAIN_NOTFOUND);
    libxlsnap_ctx_free(ctx);
    unit_rm_rf(base);
    free(base);
}
