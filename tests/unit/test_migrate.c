/*
 * test_migrate.c - does a migration to another host leave records
 * behind?  (the warning of xl migrate on Xen, which cannot run here)
 *
 * libxl__state_dir_shared: $XL_SNAPSHOT_STATE_SHARED decides, else the
 * file system (a local one here: not shared).
 * libxlsnap_domain_records_stay_behind: the number of snapshot records
 * of a domain in a host-local directory store, 0 when it has none or
 * when the state dir is shared.
 */
#include <CUnit/CUnit.h>

#include <stdlib.h>
#include <sys/stat.h>

#include "helpers.h"

static const char *const dom_uuid = "5d0c1e2f-3a4b-4c5d-8e6f-708192a3b4c5";

void test_migrate__state_dir_shared(void)
{
    GC_INIT(NULL);
    char *dir = unit_tmpdir("migrate-shared");

    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    unsetenv("XL_SNAPSHOT_STATE_SHARED");
    /* mkdtemp under $TMPDIR or /tmp: a local file system (or tmpfs) */
    CU_ASSERT_FALSE(libxl__state_dir_shared(gc, dir));
    setenv("XL_SNAPSHOT_STATE_SHARED", "1", 1);
    CU_ASSERT_TRUE(libxl__state_dir_shared(gc, dir));
    setenv("XL_SNAPSHOT_STATE_SHARED", "0", 1);
    CU_ASSERT_FALSE(libxl__state_dir_shared(gc, dir));
    setenv("XL_SNAPSHOT_STATE_SHARED", "", 1);
    CU_ASSERT_FALSE(libxl__state_dir_shared(gc, dir));
    unsetenv("XL_SNAPSHOT_STATE_SHARED");
    unit_rm_rf(dir);
    free(dir);
    GC_FREE;
}

static void add_snap(libxl__gc *gc, libxl__snapshot_tree *t,
                     const char *name, const char *parent, uint64_t when)
{
    libxlsnap_domain_snapshot s;
    libxlsnap_disk_snapshot d;

    libxlsnap_domain_snapshot_init(&s);
    libxlsnap_disk_snapshot_init(&d);
    s.name = (char *)name;
    s.parent = (char *)parent;
    s.creation_time = when;
    s.state = LIBXLSNAP_DOMAIN_STATE_RUNNING;
    d.vdev = (char *)"xvda";
    d.type = LIBXLSNAP_DISK_SNAPSHOT_TYPE_INTERNAL;
    d.format = LIBXL_DISK_FORMAT_QCOW2;
    d.file = (char *)"/img/vm1.qcow2";
    d.tag = (char *)name;
    s.disks = &d;
    s.num_disks = 1;
    libxl__snapshot_tree_add(gc, t, &s);
}

void test_migrate__records_stay_behind(void)
{
    char *base = unit_tmpdir("migrate-behind"), *cfg;
    libxlsnap_ctx *ctx;
    libxl__snapshot_store st;
    libxl__snapshot_tree t;
    libxl_uuid u;
    int n = -1;

    CU_ASSERT_PTR_NOT_NULL_FATAL(base);
    unsetenv("XL_SNAPSHOT_STATE_SHARED");
    ctx = unit_ctx(base);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    {
        GC_INIT(ctx);
        cfg = GCSPRINTF("%s/vm1.cfg", base);
        CU_ASSERT_EQUAL_FATAL(unit_write_file(cfg, GCSPRINTF(
            "name = \"vm1\"\nuuid = \"%s\"\nmemory = 64\n"
            "disk = [ 'format=qcow2,vdev=xvda,access=rw,"
            "target=/img/vm1.qcow2' ]\n", dom_uuid)), 0);

        /* no records: nothing stays behind */
        CU_ASSERT_EQUAL(libxlsnap_domain_records_stay_behind(ctx, cfg, &n),
                        0);
        CU_ASSERT_EQUAL(n, 0);

        CU_ASSERT_EQUAL_FATAL(libxl_uuid_from_string(&u, dom_uuid), 0);
        mkdir(ctx->state_dir, 0700);
        CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_open(gc, ctx->state_dir,
                                                         &u, &st), 0);
        memset(&t, 0, sizeof(t));
        t.dom.name = GCSTRDUP("vm1");
        libxl_uuid_copy(NULL, &t.dom.uuid, &u);
        t.dom.config_file = cfg;
        add_snap(gc, &t, "s1", NULL, 100);
        add_snap(gc, &t, "s2", "s1", 200);
        t.dom.current = GCSTRDUP("s2");
        libxl__snapshot_tree_fixup(gc, &t);
        CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_save(gc, &st, &t), 0);

        /* host-local: both stay */
        n = -1;
        CU_ASSERT_EQUAL(libxlsnap_domain_records_stay_behind(ctx, cfg, &n),
                        0);
        CU_ASSERT_EQUAL(n, 2);
        /* by name too (its record) */
        n = -1;
        CU_ASSERT_EQUAL(libxlsnap_domain_records_stay_behind(ctx, "vm1",
                                                             &n), 0);
        CU_ASSERT_EQUAL(n, 2);
        /* the state dir declared shared: they follow */
        setenv("XL_SNAPSHOT_STATE_SHARED", "1", 1);
        n = -1;
        CU_ASSERT_EQUAL(libxlsnap_domain_records_stay_behind(ctx, cfg, &n),
                        0);
        CU_ASSERT_EQUAL(n, 0);
        setenv("XL_SNAPSHOT_STATE_SHARED", "0", 1);
        n = -1;
        CU_ASSERT_EQUAL(libxlsnap_domain_records_stay_behind(ctx, cfg, &n),
                        0);
        CU_ASSERT_EQUAL(n, 2);
        unsetenv("XL_SNAPSHOT_STATE_SHARED");
        /* a domain this host does not know: an error, nothing said */
        n = -1;
        CU_ASSERT_NOT_EQUAL(libxlsnap_domain_records_stay_behind(ctx,
                                                        "nosuchdom", &n), 0);
        CU_ASSERT_EQUAL(n, 0);
        GC_FREE;
    }
    unit_ctx_free(ctx);
    unit_rm_rf(base);
    free(base);
}
