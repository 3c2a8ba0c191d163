/*
 * test_create.c - what libxlsnap_domain_snapshot_create refuses in its
 * request, with one line and nothing changed (a new user's cases,
 * issue 16): unknown flags, a disk named twice, an overlay path for a
 * disk whose snapshot is not external, relative paths for the memory
 * image or an overlay.
 *
 * The domain is shut off (a config file: xvda qcow2, xvdb raw, made
 * with qemu-img), so nothing runs; the request-only refusals are also
 * checked on a domain that does not exist: they come before the
 * domain is looked at.
 */
#include <CUnit/CUnit.h>

#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

typedef struct {
    char *base, *xvda, *xvdb, *cfg;
    libxlsnap_ctx *ctx;
} fixture;

static int setup(fixture *f)
{
    const char *mka[] = { "qemu-img", "create", "-q", "-f", "qcow2", NULL,
                          "16M", NULL };
    const char *mkb[] = { "qemu-img", "create", "-q", "-f", "raw", NULL,
                          "16M", NULL };
    libxlsnap_settings s;
    char *text;
    int rc;

    memset(f, 0, sizeof(*f));
    f->base = unit_tmpdir("create");
    if (!f->base) return -1;
    if (asprintf(&f->xvda, "%s/vmc-xvda.qcow2", f->base) < 0 ||
        asprintf(&f->xvdb, "%s/vmc-xvdb.img", f->base) < 0 ||
        asprintf(&f->cfg, "%s/vmc.cfg", f->base) < 0)
        return -1;
    mka[5] = f->xvda;
    mkb[5] = f->xvdb;
    if (unit_run(mka) || unit_run(mkb)) return -1;
    if (asprintf(&text, "name = \"vmc\"\nmemory = 16\n"
                 "disk = [ 'format=qcow2,vdev=xvda,access=rw,target=%s',\n"
                 "         'format=raw,vdev=xvdb,access=rw,target=%s' ]\n",
                 f->xvda, f->xvdb) < 0)
        return -1;
    rc = unit_write_file(f->cfg, text);
    free(text);
    if (rc) return -1;
    libxlsnap_settings_init(&s);
    s.driver = LIBXLSNAP_DRIVER_QEMU;
    if (asprintf(&s.state_dir, "%s/state", f->base) < 0 ||
        asprintf(&s.run_dir, "%s/run", f->base) < 0)
        return -1;
    s.lock_timeout = 0;
    rc = libxlsnap_ctx_alloc(&f->ctx, LIBXLSNAP_VERSION, 0,
                             unit_capture_logger(), &s);
    libxlsnap_settings_dispose(&s);
    return rc ? -1 : 0;
}

static void teardown(fixture *f)
{
    libxlsnap_ctx_free(f->ctx);
    unit_rm_rf(f->base);
    free(f->base);
    free(f->xvda);
    free(f->xvdb);
    free(f->cfg);
}

/* No record, and both images as made (xvdb not moved to an overlay). */
static void expect_unchanged(fixture *f)
{
    libxlsnap_domain_snapshot *l = NULL;
    libxlsnap_domain info;
    int n = -1, i;

    CU_ASSERT_EQUAL(libxlsnap_domain_snapshot_list(f->ctx, f->cfg, &l, &n),
                    0);
    CU_ASSERT_EQUAL(n, 0);
    libxlsnap_domain_snapshot_list_free(l, n > 0 ? n : 0);
    libxlsnap_domain_init(&info);
    CU_ASSERT_EQUAL_FATAL(libxlsnap_domain_lookup(f->ctx, f->cfg, &info), 0);
    for (i = 0; i < info.num_disks; i++)
        CU_ASSERT_STRING_EQUAL(info.disks[i].pdev_path,
                               !strcmp(info.disks[i].vdev, "xvda")
                               ? f->xvda : f->xvdb);
    libxlsnap_domain_dispose(&info);
}

/*
 * create with one request on domain: its rc, and that it logged
 * exactly one line (kept in unit_last_log).
 */
static int create1(fixture *f, const char *domain,
                   libxlsnap_domain_snapshot *req, unsigned flags)
{
    int rc;

    unit_nlogs = 0;
    unit_last_log[0] = 0;
    rc = libxlsnap_domain_snapshot_create(f->ctx, domain, req, flags, NULL,
                                          NULL);
    if (rc) CU_ASSERT_EQUAL(unit_nlogs, 1);
    return rc;
}

static libxlsnap_disk_snapshot *add_disk(libxlsnap_domain_snapshot *s,
                                         const char *vdev,
                                         libxlsnap_disk_snapshot_type type,
                                         const char *overlay)
{
    libxlsnap_disk_snapshot *d;

    s->disks = realloc(s->disks, (s->num_disks + 1) * sizeof(*s->disks));
    if (!s->disks) abort();
    d = &s->disks[s->num_disks++];
    libxlsnap_disk_snapshot_init(d);
    d->vdev = strdup(vdev);
    d->type = type;
    d->overlay = overlay ? strdup(overlay) : NULL;
    return d;
}

static void request(libxlsnap_domain_snapshot *s, const char *name)
{
    libxlsnap_domain_snapshot_init(s);
    s->name = strdup(name);
}

void test_create__unknown_flags(void)
{
    fixture f;
    libxlsnap_domain_snapshot s;

    CU_ASSERT_EQUAL_FATAL(setup(&f), 0);
    request(&s, "s1");
    CU_ASSERT_EQUAL(create1(&f, "nosuch", &s, 1U << 20), ERROR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(unit_last_log, "unknown"));
    CU_ASSERT_EQUAL(create1(&f, f.cfg, &s, LIBXLSNAP_CREATE_DRY_RUN |
                            (1U << 31)), ERROR_INVAL);
    CU_ASSERT_EQUAL(create1(&f, f.cfg, &s, 1U << 7), ERROR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(unit_last_log, "0x80"));
    expect_unchanged(&f);
    /* the known ones still go */
    CU_ASSERT_EQUAL(create1(&f, f.cfg, &s, LIBXLSNAP_CREATE_DRY_RUN), 0);
    libxlsnap_domain_snapshot_dispose(&s);
    teardown(&f);
}

void test_create__disk_named_twice(void)
{
    fixture f;
    libxlsnap_domain_snapshot s;

    CU_ASSERT_EQUAL_FATAL(setup(&f), 0);
    request(&s, "s1");
    add_disk(&s, "xvdb", LIBXLSNAP_DISK_SNAPSHOT_TYPE_EXTERNAL, NULL);
    add_disk(&s, "xvda", LIBXLSNAP_DISK_SNAPSHOT_TYPE_INTERNAL, NULL);
    add_disk(&s, "xvdb", LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO, NULL);
    CU_ASSERT_EQUAL(create1(&f, "nosuch", &s, 0), ERROR_INVAL);
    CU_ASSERT_EQUAL(create1(&f, f.cfg, &s, 0), ERROR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(unit_last_log, "disk xvdb is named twice"));
    expect_unchanged(&f);
    libxlsnap_domain_snapshot_dispose(&s);
    teardown(&f);
}

/* xvda is qcow2: its default snapshot is internal, and takes no overlay */
void test_create__overlay_not_external(void)
{
    fixture f;
    libxlsnap_domain_snapshot s;
    char *ov;

    CU_ASSERT_EQUAL_FATAL(setup(&f), 0);
    CU_ASSERT_FATAL(asprintf(&ov, "%s/ov.qcow2", f.base) > 0);
    request(&s, "s1");
    add_disk(&s, "xvda", LIBXLSNAP_DISK_SNAPSHOT_TYPE_INTERNAL, ov);
    CU_ASSERT_EQUAL(create1(&f, f.cfg, &s, 0), ERROR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(unit_last_log, "only for an external"));
    CU_ASSERT_PTR_NOT_NULL(strstr(unit_last_log, "internal"));
    s.disks[0].type = LIBXLSNAP_DISK_SNAPSHOT_TYPE_DEFAULT;
    CU_ASSERT_EQUAL(create1(&f, f.cfg, &s, 0), ERROR_INVAL);
    s.disks[0].type = LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO;
    CU_ASSERT_EQUAL(create1(&f, f.cfg, &s, 0), ERROR_INVAL);
    CU_ASSERT_EQUAL(access(ov, F_OK), -1);
    expect_unchanged(&f);
    /* external: the overlay is made where asked */
    s.disks[0].type = LIBXLSNAP_DISK_SNAPSHOT_TYPE_EXTERNAL;
    CU_ASSERT_EQUAL(create1(&f, f.cfg, &s, 0), 0);
    CU_ASSERT_EQUAL(access(ov, F_OK), 0);
    free(ov);
    libxlsnap_domain_snapshot_dispose(&s);
    teardown(&f);
}

/*
 * Relative paths: the library has no cwd of the caller's (xl makes
 * them absolute against its own before calling: test-90).
 */
void test_create__relative_paths(void)
{
    fixture f;
    libxlsnap_domain_snapshot s;
    char cwd[4096];

    CU_ASSERT_EQUAL_FATAL(setup(&f), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof(cwd)));
    CU_ASSERT_EQUAL_FATAL(chdir(f.base), 0);
    request(&s, "s1");
    s.memory = strdup("m1.save");
    CU_ASSERT_EQUAL(create1(&f, "nosuch", &s, 0), ERROR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(unit_last_log, "relative"));
    free(s.memory);
    s.memory = strdup("sub/../m1.save");
    CU_ASSERT_EQUAL(create1(&f, "nosuch", &s, LIBXLSNAP_CREATE_LIVE),
                    ERROR_INVAL);
    free(s.memory);
    s.memory = NULL;
    add_disk(&s, "xvdb", LIBXLSNAP_DISK_SNAPSHOT_TYPE_EXTERNAL, "ov.qcow2");
    CU_ASSERT_EQUAL(create1(&f, "nosuch", &s, 0), ERROR_INVAL);
    CU_ASSERT_EQUAL(create1(&f, f.cfg, &s, 0), ERROR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(unit_last_log, "disk xvdb: overlay "
                                  "'ov.qcow2' is a relative path"));
    CU_ASSERT_EQUAL(access("ov.qcow2", F_OK), -1);
    expect_unchanged(&f);
    /* "yes", "no" and "" are words, not paths */
    free(s.disks[0].overlay);
    s.disks[0].overlay = NULL;
    s.memory = strdup("no");
    CU_ASSERT_EQUAL(create1(&f, f.cfg, &s, LIBXLSNAP_CREATE_DRY_RUN), 0);
    CU_ASSERT_EQUAL(chdir(cwd), 0);
    libxlsnap_domain_snapshot_dispose(&s);
    teardown(&f);
}

/* ---------------------------------------------------------------- */
/* max_chain (libxl_snapshot_chain.c), offline */

/* An external snapshot NAME of xvda only (flags: e.g. _NO_METADATA). */
static int snap_xvda(fixture *f, const char *name, unsigned flags)
{
    libxlsnap_domain_snapshot s;
    int rc;

    request(&s, name);
    add_disk(&s, "xvda", LIBXLSNAP_DISK_SNAPSHOT_TYPE_EXTERNAL, NULL);
    add_disk(&s, "xvdb", LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO, NULL);
    rc = create1(f, f->cfg, &s, flags);
    libxlsnap_domain_snapshot_dispose(&s);
    return rc;
}

/* xvda's chain, its files' base names joined with ' ' (malloc'ed) */
static char *xvda_chain(fixture *f, long *max_r)
{
    libxlsnap_disk_chain *l = NULL;
    char *r = NULL, *t;
    int n = 0, i, j;

    CU_ASSERT_EQUAL_FATAL(libxlsnap_domain_disk_chains(f->ctx, f->cfg, max_r,
                                                       &l, &n), 0);
    for (i = 0; i < n; i++) {
        if (strcmp(l[i].vdev, "xvda")) continue;
        for (j = 0; j < l[i].num_files; j++) {
            const char *b = strrchr(l[i].files[j], '/');
            if (asprintf(&t, "%s%s%s", r ? r : "", r ? " " : "",
                         b ? b + 1 : l[i].files[j]) < 0) abort();
            free(r);
            r = t;
        }
    }
    libxlsnap_disk_chain_list_free(l, n);
    return r ? r : strdup("");
}

void test_create__chain_limit(void)
{
    fixture f;
    long max = 0;
    char *c;

    CU_ASSERT_EQUAL_FATAL(setup(&f), 0);
    unsetenv("XL_SNAPSHOT_MAX_CHAIN");
    c = xvda_chain(&f, &max);
    CU_ASSERT_STRING_EQUAL(c, "vmc-xvda.qcow2");
    CU_ASSERT_EQUAL(max, LIBXL_SNAPSHOT_MAX_CHAIN);
    free(c);
    CU_ASSERT_EQUAL(snap_xvda(&f, "s1", 0), 0);
    CU_ASSERT_EQUAL(snap_xvda(&f, "s2", 0), 0);
    setenv("XL_SNAPSHOT_MAX_CHAIN", "3", 1);
    c = xvda_chain(&f, &max);
    CU_ASSERT_STRING_EQUAL(c, "vmc-xvda.s2.qcow2 vmc-xvda.s1.qcow2 "
                           "vmc-xvda.qcow2");
    CU_ASSERT_EQUAL(max, 3);
    free(c);
    /* a fourth image: refused in one line, naming what to delete */
    CU_ASSERT_EQUAL(snap_xvda(&f, "s3", 0), ERROR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(unit_last_log, "disk xvda: its backing "
                                  "chain is 3 images"));
    CU_ASSERT_PTR_NOT_NULL(strstr(unit_last_log, "over max_chain 3 "
                                  "(XL_SNAPSHOT_MAX_CHAIN in the "
                                  "environment)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(unit_last_log, "shorten it first: xl "
                                  "snapshot-delete vmc s1 (every layer of "
                                  "it is needed by a snapshot)"));
    /* every layer is needed: --auto-commit refuses too, naming s1 */
    CU_ASSERT_EQUAL(snap_xvda(&f, "s3", LIBXLSNAP_CREATE_AUTO_COMMIT),
                    ERROR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(unit_last_log, "every layer of it is "
                                  "needed by a snapshot: delete one first: "
                                  "xl snapshot-delete vmc s1"));
    c = xvda_chain(&f, &max);
    CU_ASSERT_STRING_EQUAL(c, "vmc-xvda.s2.qcow2 vmc-xvda.s1.qcow2 "
                           "vmc-xvda.qcow2");
    free(c);
    /* a bad limit: one line */
    setenv("XL_SNAPSHOT_MAX_CHAIN", "x", 1);
    CU_ASSERT_EQUAL(snap_xvda(&f, "s3", 0), ERROR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(unit_last_log, "XL_SNAPSHOT_MAX_CHAIN=x"));
    unsetenv("XL_SNAPSHOT_MAX_CHAIN");
    teardown(&f);
}

/* --auto-commit merges the layer no record froze (--no-metadata's) */
void test_create__auto_commit(void)
{
    fixture f;
    long max = 0;
    char *c;

    CU_ASSERT_EQUAL_FATAL(setup(&f), 0);
    CU_ASSERT_EQUAL(snap_xvda(&f, "m1", LIBXLSNAP_CREATE_NO_METADATA), 0);
    CU_ASSERT_EQUAL(snap_xvda(&f, "s2", 0), 0);
    setenv("XL_SNAPSHOT_MAX_CHAIN", "3", 1);
    /* without it: refused, naming the commit that would do */
    CU_ASSERT_EQUAL(snap_xvda(&f, "s3", 0), ERROR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(unit_last_log, "shorten it first: xl "
                                  "snapshot-delete vmc s2, xl block-commit "
                                  "--shallow --delete --top="));
    CU_ASSERT_PTR_NOT_NULL(strstr(unit_last_log, "vmc-xvda.m1.qcow2 vmc "
                                  "xvda, or snapshot-create --auto-commit"));
    CU_ASSERT_EQUAL(snap_xvda(&f, "s3", LIBXLSNAP_CREATE_AUTO_COMMIT), 0);
    c = xvda_chain(&f, &max);
    /* m1's overlay merged into the base (s2, which froze it, follows) */
    CU_ASSERT_STRING_EQUAL(c, "vmc-xvda.s3.qcow2 vmc-xvda.s2.qcow2 "
                           "vmc-xvda.qcow2");
    free(c);
    unsetenv("XL_SNAPSHOT_MAX_CHAIN");
    teardown(&f);
}
