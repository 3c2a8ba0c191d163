/*
 * test_rados.c - the RADOS record store's pure parts: its cache of the
 * omap (from ceph-util omap-dump), the omap-set commands a put becomes,
 * the lock holder named from lock-hold's busy answer; the settings
 * (XL_SNAPSHOT_STORE, XL_SNAPSHOT_CEPH_ID, XL_SNAPSHOT_LOCK_LEASE).  No
 * cluster: the commands are only built, never run.
 */
#include <CUnit/CUnit.h>

#include "helpers.h"

/* A ctx on the RADOS store of pool "pool", client id "xen". */
static libxlsnap_ctx *rados_ctx(char **base_r)
{
    libxlsnap_ctx *ctx;

    *base_r = unit_tmpdir("rados");
    CU_ASSERT_PTR_NOT_NULL_FATAL(*base_r);
    setenv("XL_SNAPSHOT_STORE", "rados:pool", 1);
    setenv("XL_SNAPSHOT_CEPH_ID", "xen", 1);
    ctx = unit_ctx(*base_r);
    unsetenv("XL_SNAPSHOT_STORE");
    unsetenv("XL_SNAPSHOT_CEPH_ID");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    return ctx;
}

static void rados_ctx_free(libxlsnap_ctx *ctx, char *base)
{
    unit_ctx_free(ctx);
    unit_rm_rf(base);
    free(base);
}

/* The store's settings: what is taken, what is refused (one line). */
void test_rados__settings(void)
{
    static const char *const bad[][2] = {
        { "nfs:x", NULL }, { "rados:", NULL }, { "rados:a/b", NULL },
        { "rados:p", "2" }, { "rados:p", "30s" }, { "rados:p", "99999" },
    };
    libxlsnap_ctx *ctx;
    char *base = unit_tmpdir("rados");
    size_t i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(base);
    ctx = unit_ctx(base);                     /* unset: the default */
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    CU_ASSERT_PTR_NULL(ctx->store_pool);
    CU_ASSERT_EQUAL(ctx->lock_lease, 30);
    unit_ctx_free(ctx);
    setenv("XL_SNAPSHOT_STORE", "dir", 1);
    ctx = unit_ctx(base);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    CU_ASSERT_PTR_NULL(ctx->store_pool);
    unit_ctx_free(ctx);
    setenv("XL_SNAPSHOT_STORE", "rados:recs", 1);
    setenv("XL_SNAPSHOT_LOCK_LEASE", "5", 1);
    ctx = unit_ctx(base);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    CU_ASSERT_STRING_EQUAL(ctx->store_pool, "recs");
    CU_ASSERT_PTR_NULL(ctx->ceph_id);
    CU_ASSERT_EQUAL(ctx->lock_lease, 5);
    unit_ctx_free(ctx);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("XL_SNAPSHOT_STORE", bad[i][0], 1);
        if (bad[i][1]) setenv("XL_SNAPSHOT_LOCK_LEASE", bad[i][1], 1);
        else unsetenv("XL_SNAPSHOT_LOCK_LEASE");
        CU_ASSERT_PTR_NULL(unit_ctx(base));
    }
    unsetenv("XL_SNAPSHOT_STORE");
    unsetenv("XL_SNAPSHOT_LOCK_LEASE");
    unit_rm_rf(base);
    free(base);
}

static void new_store(libxl__gc *gc, libxl__rados_store *r)
{
    memset(r, 0, sizeof(*r));
    r->pool = "pool";
    r->obj = "xl-snapshot.0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";
    r->holder = -1;
}

static int argc_of(const char *const *a)
{
    int n = 0;
    while (a[n]) n++;
    return n;
}

/* omap-dump's object, in any key order, becomes a sorted cache. */
void test_rados__cache_parse(void)
{
    GC_INIT(NULL);
    libxl__rados_store r;

    new_store(gc, &r);
    CU_ASSERT_EQUAL(libxl__rados_cache_parse(gc, &r,
        "{\"snapshotdata-b.libxl-json\":\"{\\\"name\\\": \\\"b\\\"}\","
        "\"domain.libxl-json\":\"{}\","
        "\"snapshotdata-a.libxl-json\":\"x\\ny\"}"), 0);
    CU_ASSERT_TRUE(r.cached);
    CU_ASSERT_EQUAL_FATAL(r.n, 3);
    CU_ASSERT_STRING_EQUAL(r.keys[0], "domain.libxl-json");
    CU_ASSERT_STRING_EQUAL(r.keys[1], "snapshotdata-a.libxl-json");
    CU_ASSERT_STRING_EQUAL(r.vals[1], "x\ny");
    CU_ASSERT_STRING_EQUAL(r.keys[2], "snapshotdata-b.libxl-json");
    CU_ASSERT_STRING_EQUAL(r.vals[2], "{\"name\": \"b\"}");

    /* not an object, a value that is no string: no cache */
    CU_ASSERT_EQUAL(libxl__rados_cache_parse(gc, &r, "[]"), ERROR_INVAL);
    CU_ASSERT_FALSE(r.cached);
    CU_ASSERT_EQUAL(libxl__rados_cache_parse(gc, &r, "{\"k\": 1}"),
                    ERROR_INVAL);
    CU_ASSERT_FALSE(r.cached);
    CU_ASSERT_EQUAL(libxl__rados_cache_parse(gc, &r, "{}"), 0);
    CU_ASSERT_EQUAL(r.n, 0);
    GC_FREE;
}

/*
 * A put is one omap-set, in the put's order, with the lock's cookie
 * when held; names the cache holds unchanged (a set of the same text,
 * a rm of a name it does not have) are left out.
 */
void test_rados__put_one_op(void)
{
    char *base;
    libxlsnap_ctx *ctx = rados_ctx(&base);
    GC_INIT(ctx);
    libxl__rados_store r;
    libxl__store_put p[] = {
        { "snapshotdata-a.libxl-json", "A2", 2 },
        { "snapshotdata-b.libxl-json", "B", 1 },   /* unchanged */
        { "domain.libxl-json", "D", 1 },
        { "snapshotdata-c.libxl-json", NULL, 0 },   /* rm */
        { "snapshotdata-z.libxl-json", NULL, 0 },   /* rm: not there */
    };
    const char ***cmds;
    const char *const *a;
    int n;

    new_store(gc, &r);
    CU_ASSERT_EQUAL_FATAL(libxl__rados_cache_parse(gc, &r,
        "{\"snapshotdata-a.libxl-json\":\"A\","
        "\"snapshotdata-b.libxl-json\":\"B\","
        "\"snapshotdata-c.libxl-json\":\"C\"}"), 0);
    r.cookie = "42-cafe";
    cmds = libxl__rados_put_args(gc, &r, p, 5, &n);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    a = cmds[0];
    CU_ASSERT_EQUAL_FATAL(argc_of(a), 6 + 3 + 3 + 3 + 2);
    CU_ASSERT_STRING_EQUAL(a[0], ctx->ceph_util);
    CU_ASSERT_STRING_EQUAL(a[1], "--id");
    CU_ASSERT_STRING_EQUAL(a[2], "xen");
    CU_ASSERT_STRING_EQUAL(a[3], "omap-set");
    CU_ASSERT_STRING_EQUAL(a[4], "pool");
    CU_ASSERT_STRING_EQUAL(a[5], r.obj);
    CU_ASSERT_STRING_EQUAL(a[6], "--lock");
    CU_ASSERT_STRING_EQUAL(a[7], "xl-snapshot");
    CU_ASSERT_STRING_EQUAL(a[8], "42-cafe");
    CU_ASSERT_STRING_EQUAL(a[9], "set");
    CU_ASSERT_STRING_EQUAL(a[10], "snapshotdata-a.libxl-json");
    CU_ASSERT_STRING_EQUAL(a[11], "A2");
    CU_ASSERT_STRING_EQUAL(a[12], "set");
    CU_ASSERT_STRING_EQUAL(a[13], "domain.libxl-json");
    CU_ASSERT_STRING_EQUAL(a[15], "rm");
    CU_ASSERT_STRING_EQUAL(a[16], "snapshotdata-c.libxl-json");

    /* without a cache (nothing read yet), everything is written; no
     * lock held, no --lock */
    r.cached = false;
    r.cookie = NULL;
    cmds = libxl__rados_put_args(gc, &r, p, 5, &n);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_EQUAL(argc_of(cmds[0]), 6 + 3 * 3 + 2 * 2);
    CU_ASSERT_STRING_EQUAL(cmds[0][6], "set");

    /* nothing changed: no command at all */
    CU_ASSERT_EQUAL_FATAL(libxl__rados_cache_parse(gc, &r,
        "{\"snapshotdata-b.libxl-json\":\"B\"}"), 0);
    cmds = libxl__rados_put_args(gc, &r, &p[1], 1, &n);
    CU_ASSERT_EQUAL(n, 0);
    GC_FREE;
    rados_ctx_free(ctx, base);
}

/*
 * A put too long for one command line (the first save of thousands
 * of records) becomes several omap-set, in order, each under 1 MiB of
 * arguments, each with the lock's cookie; every name in exactly one.
 */
void test_rados__put_split_in_order(void)
{
    char *base;
    libxlsnap_ctx *ctx = rados_ctx(&base);
    GC_INIT(ctx);
    libxl__rados_store r;
    libxl__store_put *p;
    const char ***cmds;
    char *big;
    int i, k, n, np = 3000, next = 0;
    size_t bytes;

    new_store(gc, &r);
    r.cookie = "c";
    big = libxl__gc_zalloc(gc, 1001);
    memset(big, 'x', 1000);
    GCNEW_ARRAY(p, np);
    for (i = 0; i < np; i++) {
        p[i].name = GCSPRINTF("snapshotdata-s%04d.libxl-json", i);
        p[i].value = big;
        p[i].len = 1000;
    }
    cmds = libxl__rados_put_args(gc, &r, p, np, &n);
    CU_ASSERT_EQUAL_FATAL(n, 3);     /* ~3 MB of values */
    for (k = 0; k < n; k++) {
        const char *const *a = cmds[k];
        CU_ASSERT_STRING_EQUAL(a[6], "--lock");
        CU_ASSERT_STRING_EQUAL(a[8], "c");
        bytes = 0;
        for (i = 9; a[i]; i += 3) {
            CU_ASSERT_STRING_EQUAL(a[i], "set");
            CU_ASSERT_STRING_EQUAL(a[i + 1], p[next].name);
            next++;
            bytes += strlen(a[i + 1]) + strlen(a[i + 2]) + 6;
        }
        CU_ASSERT(bytes <= 1024 * 1024);
    }
    CU_ASSERT_EQUAL(next, np);
    GC_FREE;
    rados_ctx_free(ctx, base);
}

/* The busy error names the holder: its description, else its locker. */
void test_rados__holder(void)
{
    GC_INIT(NULL);

    CU_ASSERT_STRING_EQUAL(libxl__rados_holder(gc,
        "{\"locker\":\"client.4123\",\"cookie\":\"9-ab\","
        "\"description\":\"host hv1 pid 9\",\"address\":\"1.2.3.4:0/1\"}"),
        "host hv1 pid 9");
    CU_ASSERT_STRING_EQUAL(libxl__rados_holder(gc,
        "{\"locker\":\"client.4123\",\"description\":\"\","
        "\"address\":\"1.2.3.4:0/1\"}"),
        "client.4123 at 1.2.3.4:0/1");
    CU_ASSERT_PTR_NULL(libxl__rados_holder(gc, "not json"));
    CU_ASSERT_PTR_NULL(libxl__rados_holder(gc, NULL));
    GC_FREE;
}
