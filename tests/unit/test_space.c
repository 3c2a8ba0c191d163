/*
 * test_space.c - the space guards of snapshot-create (issue 20): the
 * figures, the verdict per file system, and LVM's rules against a fake
 * `lvm` ($XL_SNAPSHOT_LVM, a shell script written here) that answers
 * `lvs -o data_percent,metadata_percent` and `vgs -o vg_size,vg_free,
 * vg_extent_size` with the files lvs and vgs of its state directory.
 * (The real LVM: tests/xen scenarios 9 and 9t; file systems for real:
 * tests/qemu/test-106-space-guards.sh.)
 */
#include <CUnit/CUnit.h>

#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

#define MiB (1024ULL * 1024)

static const char fake_lvm[] =
    "#!/bin/sh\n"
    "case \"$*\" in\n"
    "*snap_percent*) cat \"$FAKE_SPACE/lvs-volume\" ;;\n"
    "*data_percent*) cat \"$FAKE_SPACE/lvs\" ;;\n"
    "*vg_size*) cat \"$FAKE_SPACE/vgs\" ;;\n"
    "*) exit 5 ;;\n"
    "esac\n";

typedef struct {
    char *base;
    libxlsnap_ctx *ctx;
    libxl__gc gc[1];
} fixture;

static void setup(fixture *f)
{
    char *script;

    memset(f, 0, sizeof(*f));
    f->base = unit_tmpdir("space");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->base);
    CU_ASSERT_FATAL(asprintf(&script, "%s/fake-lvm", f->base) > 0);
    CU_ASSERT_EQUAL_FATAL(unit_write_file(script, fake_lvm), 0);
    CU_ASSERT_EQUAL_FATAL(chmod(script, 0755), 0);
    setenv("FAKE_SPACE", f->base, 1);
    setenv("XL_SNAPSHOT_LVM", script, 1);
    free(script);
    setenv("XL_SNAPSHOT_DRIVER", "qemu", 1);
    CU_ASSERT_FATAL(libxlsnap_ctx_alloc(&f->ctx, LIBXLSNAP_VERSION, 0,
                                        unit_capture_logger(), NULL) == 0);
    LIBXL_INIT_GC(f->gc[0], f->ctx);
    unit_nlogs = 0;
}

static void teardown(fixture *f)
{
    libxl__gc_free_all(f->gc);
    libxlsnap_ctx_free(f->ctx);
    unsetenv("XL_SNAPSHOT_LVM");
    unsetenv("FAKE_SPACE");
    unit_rm_rf(f->base);
    free(f->base);
}

static void answer(fixture *f, const char *cmd, const char *text)
{
    char *p;

    CU_ASSERT_FATAL(asprintf(&p, "%s/%s", f->base, cmd) > 0);
    CU_ASSERT_EQUAL(unit_write_file(p, text), 0);
    free(p);
}

void test_space__bytes_human(void)
{
    libxlsnap_ctx ctx;
    libxl__gc gc[1];

    memset(&ctx, 0, sizeof(ctx));
    LIBXL_INIT_GC(gc[0], &ctx);
    CU_ASSERT_STRING_EQUAL(libxl__bytes_human(gc, 0), "0 B");
    CU_ASSERT_STRING_EQUAL(libxl__bytes_human(gc, 1023), "1023 B");
    CU_ASSERT_STRING_EQUAL(libxl__bytes_human(gc, 1024), "1.0 KiB");
    CU_ASSERT_STRING_EQUAL(libxl__bytes_human(gc, 1536), "1.5 KiB");
    CU_ASSERT_STRING_EQUAL(libxl__bytes_human(gc, 64 * MiB), "64.0 MiB");
    CU_ASSERT_STRING_EQUAL(libxl__bytes_human(gc, 3ULL << 40), "3.0 TiB");
    libxl__gc_free_all(gc);
}

void test_space__first_writes(void)
{
    CU_ASSERT_EQUAL(libxl__space_first_writes(64 * MiB), 1 * MiB);
    CU_ASSERT_EQUAL(libxl__space_first_writes(512 * 1024), 512 * 1024);
    CU_ASSERT_EQUAL(libxl__space_first_writes(10240 * MiB), 10240 * MiB / 100);
    CU_ASSERT_EQUAL(libxl__space_first_writes(1ULL << 40), 1024 * MiB);
    CU_ASSERT_EQUAL(libxl__space_first_writes(0), 0);
}

/* parts on one file system add up; the verdict is one line, naming it */
void test_space__file_systems(void)
{
    fixture f;
    libxl__gc *gc;
    libxl__space_plan *sp;
    char *img;

    setup(&f);
    gc = f.gc;
    CU_ASSERT_FATAL(asprintf(&img, "%s/img.qcow2", f.base) > 0);
    sp = libxl__space_plan_new(gc, 90);
    libxl__space_add(gc, sp, f.base, 4096, "records and journal");
    libxl__space_add(gc, sp, img, 1ULL << 62, "overlay of xvda");
    libxl__space_add(gc, sp, img, 1ULL << 62, "overlay of xvdb");
    /* a directory that is not there: left to the step that needs it */
    libxl__space_add(gc, sp, "/nonexistent-i20/x/y", 1ULL << 62, "memory image");
    CU_ASSERT_EQUAL(libxl__space_verdict(gc, sp, "s1", false, false),
                    ERROR_FAIL);
    CU_ASSERT_EQUAL(unit_nlogs, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(unit_last_log,
                                  "not enough space for snapshot 's1': "));
    CU_ASSERT_PTR_NOT_NULL(strstr(unit_last_log, "needs 8192.0 PiB"));
    CU_ASSERT_PTR_NOT_NULL(strstr(unit_last_log,
        "(records and journal 4.0 KiB, overlay of xvda 4096.0 PiB, "
        "overlay of xvdb 4096.0 PiB)"));
    CU_ASSERT_PTR_NULL(strstr(unit_last_log, "memory image"));
    CU_ASSERT_PTR_NOT_NULL(strstr(unit_last_log, "--force"));
    /* forced: one warning, 0 */
    unit_nlogs = 0;
    CU_ASSERT_EQUAL(libxl__space_verdict(gc, sp, "s1", true, false), 0);
    CU_ASSERT_EQUAL(unit_nlogs, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(unit_last_log,
        "--force: snapshot 's1' goes on without enough space: "));
    /* what fits: nothing said */
    unit_nlogs = 0;
    sp = libxl__space_plan_new(gc, 90);
    libxl__space_add(gc, sp, img, 4096, "overlay of xvda");
    CU_ASSERT_EQUAL(libxl__space_verdict(gc, sp, "s2", false, false), 0);
    CU_ASSERT_EQUAL(unit_nlogs, 0);
    free(img);
    teardown(&f);
}

static void lvm_disk(libxlsnap_disk_snapshot *ds, const char *vdev,
                     const char *cow)
{
    libxlsnap_disk_snapshot_init(ds);
    ds->vdev = (char *)vdev;
    ds->type = LIBXLSNAP_DISK_SNAPSHOT_TYPE_LVM;
    ds->file = (char *)"/dev/vg0/lv0";
    ds->cow = (char *)cow;
}

static int lvm_verdict(fixture *f, long threshold,
                       libxl__lvm_volume *v, const char *cow1,
                       const char *cow2)
{
    const libxl__snapshot_backend *be = &libxl__snapshot_backend_lvm;
    libxl__space_plan *sp = libxl__space_plan_new(f->gc, threshold);
    libxlsnap_disk_snapshot ds;

    lvm_disk(&ds, "xvda", cow1);
    be->space(f->gc, &ds, v, NULL, sp);
    if (cow2) {
        lvm_disk(&ds, "xvdb", cow2);
        be->space(f->gc, &ds, v, NULL, sp);
    }
    unit_nlogs = 0;
    unit_last_log[0] = 0;
    return libxl__space_verdict(f->gc, sp, "s1", false, false);
}

/* origin vg0/LV of 64 MiB: thin in vg0/pool, or thick (pool NULL) */
static void origin(libxl__lvm_volume *v, const char *lv, const char *pool)
{
    memset(v, 0, sizeof(*v));
    v->vg = (char *)"vg0";
    v->lv = (char *)lv;
    v->pool = (char *)pool;
    v->thin = !!pool;
    v->size = 64 * MiB;
}

void test_space__lvm_thin_pool(void)
{
    fixture f;
    libxl__lvm_volume v;

    setup(&f);
    origin(&v, "thin1", "pool");
    answer(&f, "lvs", "  89.99|10.00\n");
    CU_ASSERT_EQUAL(lvm_verdict(&f, 90, &v, NULL, NULL), 0);
    answer(&f, "lvs", "  90.00|10.00\n");
    CU_ASSERT_EQUAL(lvm_verdict(&f, 90, &v, NULL, NULL), ERROR_FAIL);
    CU_ASSERT_EQUAL(unit_nlogs, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(unit_last_log,
        "thin pool vg0/pool (disk xvda) is 90.0 % full in data and 10.0 % "
        "in metadata, at or over the space threshold of 90 %"));
    /* metadata alone */
    answer(&f, "lvs", "  12.50|95.20\n");
    CU_ASSERT_EQUAL(lvm_verdict(&f, 90, &v, NULL, NULL), ERROR_FAIL);
    CU_ASSERT_EQUAL(lvm_verdict(&f, 96, &v, NULL, NULL), 0);
    /* two disks on one pool: said once */
    CU_ASSERT_EQUAL(lvm_verdict(&f, 90, &v, NULL, ""), ERROR_FAIL);
    CU_ASSERT_PTR_NULL(strstr(unit_last_log, "; thin pool"));
    /* lvs cannot tell: a warning, not a refusal */
    answer(&f, "lvs", "");
    CU_ASSERT_EQUAL(lvm_verdict(&f, 90, &v, NULL, NULL), 0);
    teardown(&f);
}

void test_space__lvm_thick_cow(void)
{
    fixture f;
    libxl__lvm_volume v;

    setup(&f);
    origin(&v, "lv0", NULL);
    /* 320 MiB, 100 MiB free, 4 MiB extents */
    answer(&f, "vgs", "  335544320|104857600|4194304\n");
    /* default 20 % of 64 MiB: 12.8 MiB, 16 MiB in extents: 73.75 % */
    CU_ASSERT_EQUAL(lvm_verdict(&f, 90, &v, NULL, NULL), 0);
    CU_ASSERT_EQUAL(lvm_verdict(&f, 70, &v, NULL, NULL), ERROR_FAIL);
    CU_ASSERT_PTR_NOT_NULL(strstr(unit_last_log,
        "volume group vg0 would be 73.8 % full with the thick snapshot's "
        "copy-on-write space (16.0 MiB, disk xvda), over the space "
        "threshold of 70 %"));
    /* exactly at the threshold is not over it */
    CU_ASSERT_EQUAL(lvm_verdict(&f, 74, &v, "16M", NULL), 0);
    /* larger than the free space; two disks of one VG add up */
    CU_ASSERT_EQUAL(lvm_verdict(&f, 100, &v, "101M", NULL), ERROR_FAIL);
    CU_ASSERT_PTR_NOT_NULL(strstr(unit_last_log,
        "volume group vg0 has 100.0 MiB free, and the thick snapshot's "
        "copy-on-write space needs 104.0 MiB (disk xvda)"));
    CU_ASSERT_EQUAL(lvm_verdict(&f, 100, &v, "48M", "48M"), 0);
    CU_ASSERT_EQUAL(lvm_verdict(&f, 100, &v, "52M", "52M"), ERROR_FAIL);
    CU_ASSERT_PTR_NOT_NULL(strstr(unit_last_log, "needs 104.0 MiB (disk xvdb)"));
    /* sizes as lvcreate takes them: %, plain bytes, units */
    CU_ASSERT_EQUAL(lvm_verdict(&f, 100, &v, "50%", NULL), 0);
    CU_ASSERT_EQUAL(lvm_verdict(&f, 100, &v, "1g", NULL), ERROR_FAIL);
    CU_ASSERT_EQUAL(lvm_verdict(&f, 100, &v, "104857601", NULL), ERROR_FAIL);
    teardown(&f);
}

/* lvs's empty fields stay fields: a thin volume's pool is its pool (not
 * its data use), a thick snapshot's COW use is its snap_percent */
void test_space__lvs_empty_fields(void)
{
    fixture f;
    libxl__lvm_volume o, v;

    setup(&f);
    origin(&o, "lv0", NULL);
    answer(&f, "lvs-volume", "  vg0|thin1|Vwi-a-tz--|33554432||pool||0.20\n");
    CU_ASSERT_EQUAL(libxl__lvm_probe_lv(f.gc, &o, "thin1", &v), 0);
    CU_ASSERT_PTR_NULL(v.origin);
    CU_ASSERT_STRING_EQUAL(v.pool ? v.pool : "", "pool");
    CU_ASSERT(v.thin);
    CU_ASSERT_DOUBLE_EQUAL(v.use_percent, 0.2, 0.001);
    /* an inactive thin snapshot: lvs leaves both percents empty */
    answer(&f, "lvs-volume", "  vg0|thin1-t1|Vwi---tz-k|33554432|thin1|pool||\n");
    CU_ASSERT_EQUAL(libxl__lvm_probe_lv(f.gc, &o, "thin1-t1", &v), 0);
    CU_ASSERT(v.thin);
    CU_ASSERT(v.use_percent < 0);
    answer(&f, "lvs-volume", "  vg0|lv0-l1|swi-a-s---|16777216|lv0||12.50|12.50\n");
    CU_ASSERT_EQUAL(libxl__lvm_probe_lv(f.gc, &o, "lv0-l1", &v), 0);
    CU_ASSERT_STRING_EQUAL(v.origin ? v.origin : "", "lv0");
    CU_ASSERT_PTR_NULL(v.pool);
    CU_ASSERT_DOUBLE_EQUAL(v.use_percent, 12.5, 0.001);
    CU_ASSERT(v.thick_snapshot);
    teardown(&f);
}
