/*
 * test_diff.c - snapshot-diff's pure parts: the extent merge, qemu-img
 * map's output, and the qcow2 table walk on small real images (made
 * with qemu-img and qemu-io, whose writes are the expected extents)
 */
#include <CUnit/CUnit.h>

#include "libxl_snapshot_internal.h"
#include "helpers.h"

#include <fcntl.h>
#include <unistd.h>

#define K64 65536ULL

/* unsorted, overlapping, touching, contained, apart */
void test_diff__merge(void)
{
    libxlsnap_extent e[] = {
        { 100, 10 }, { 0, 10 }, { 10, 5 },   /* 0..15 (touching) */
        { 105, 2 },                           /* inside 100..110 */
        { 108, 10 },                          /* overlaps: 100..118 */
        { 200, 1 },
    };
    int n = libxl__extents_merge(e, 6);

    CU_ASSERT_EQUAL_FATAL(n, 3);
    CU_ASSERT_EQUAL(e[0].offset, 0);
    CU_ASSERT_EQUAL(e[0].length, 15);
    CU_ASSERT_EQUAL(e[1].offset, 100);
    CU_ASSERT_EQUAL(e[1].length, 18);
    CU_ASSERT_EQUAL(e[2].offset, 200);
    CU_ASSERT_EQUAL(e[2].length, 1);
    CU_ASSERT_EQUAL(libxl__extents_merge(e, 0), 0);
    CU_ASSERT_EQUAL(libxl__extents_merge(e, 1), 1);
}

/* _add grows the last extent when the next follows it; clip cuts */
void test_diff__add_clip(void)
{
    GC_INIT(NULL);
    libxl__extents x = { 0 };
    int i;

    for (i = 0; i < 1000; i++)        /* a run, then every other one */
        libxl__extents_add(gc, &x, i < 500 ? i * K64 : 2 * i * K64, K64);
    libxl__extents_add(gc, &x, 5000 * K64, 0);     /* empty: nothing */
    CU_ASSERT_EQUAL_FATAL(x.n, 501);
    CU_ASSERT_EQUAL(x.e[0].offset, 0);
    CU_ASSERT_EQUAL(x.e[0].length, 500 * K64);
    CU_ASSERT_EQUAL(x.e[1].offset, 1000 * K64);
    libxl__extents_clip(&x, 1000 * K64 + 100);
    CU_ASSERT_EQUAL_FATAL(x.n, 2);
    CU_ASSERT_EQUAL(x.e[1].length, 100);
    GC_FREE;
}

/* recorded from qemu-img 7.2: `map --output=json -U json:{...,"backing":
 * null}` of an overlay with data at 1M, zeros at 4M, 1k at 8M */
void test_diff__map_parse(void)
{
    GC_INIT(NULL);
    static const char map[] =
        "[{ \"start\": 0, \"length\": 1048576, \"depth\": 0, \"present\": false, \"zero\": true, \"data\": false},\n"
        "{ \"start\": 1048576, \"length\": 65536, \"depth\": 0, \"present\": true, \"zero\": false, \"data\": true, \"offset\": 327680},\n"
        "{ \"start\": 1114112, \"length\": 3080192, \"depth\": 0, \"present\": false, \"zero\": true, \"data\": false},\n"
        "{ \"start\": 4194304, \"length\": 131072, \"depth\": 0, \"present\": true, \"zero\": true, \"data\": false},\n"
        "{ \"start\": 4325376, \"length\": 4063232, \"depth\": 0, \"present\": false, \"zero\": true, \"data\": false},\n"
        "{ \"start\": 8388608, \"length\": 65536, \"depth\": 0, \"present\": true, \"zero\": false, \"data\": true, \"offset\": 393216},\n"
        "{ \"start\": 8454144, \"length\": 8323072, \"depth\": 0, \"present\": false, \"zero\": true, \"data\": false}]\n";
    libxl__extents x = { 0 };

    CU_ASSERT_EQUAL_FATAL(libxl__qemu_img_map_parse(gc, map, &x), 0);
    CU_ASSERT_EQUAL_FATAL(x.n, 3);
    CU_ASSERT_EQUAL(x.e[0].offset, 1048576);
    CU_ASSERT_EQUAL(x.e[0].length, 65536);
    CU_ASSERT_EQUAL(x.e[1].offset, 4194304);       /* zeros are changes */
    CU_ASSERT_EQUAL(x.e[1].length, 131072);
    CU_ASSERT_EQUAL(x.e[2].offset, 8388608);
    memset(&x, 0, sizeof(x));
    CU_ASSERT_NOT_EQUAL(libxl__qemu_img_map_parse(gc, "{}", &x), 0);
    CU_ASSERT_NOT_EQUAL(libxl__qemu_img_map_parse(gc, "[{\"length\": 1}]",
                                                  &x), 0);
    CU_ASSERT_NOT_EQUAL(libxl__qemu_img_map_parse(gc, "[", &x), 0);
    CU_ASSERT_NOT_EQUAL(libxl__qemu_img_map_parse(gc, "", &x), 0);
    CU_ASSERT_NOT_EQUAL(libxl__qemu_img_map_parse(gc, "[[]]", &x), 0);
    CU_ASSERT_NOT_EQUAL(libxl__qemu_img_map_parse(gc, "[{\"start\": 0, "
                                                  "\"length\": 1.5}]", &x), 0);
    CU_ASSERT_EQUAL(x.n, 0);
    CU_ASSERT_EQUAL(libxl__qemu_img_map_parse(gc, "[]", &x), 0);
    GC_FREE;
}

/* the diff of two states of q (tags; NULL: active) */
static int states_diff(libxl__gc *gc, libxl__qcow2 *q, const char *ta,
                       const char *tb, bool none_a, bool data,
                       libxl__extents *x)
{
    libxl__qcow2_l1 a, b;
    int rc;

    memset(x, 0, sizeof(*x));
    rc = libxl__qcow2_state(gc, q, ta, &a);
    if (rc) return rc;
    rc = libxl__qcow2_state(gc, q, tb, &b);
    if (rc) return rc;
    rc = libxl__qcow2_diff(gc, q, none_a ? NULL : &a, &b, data, x);
    if (rc) return rc;
    x->n = libxl__extents_merge(x->e, x->n);
    return 0;
}

/*
 * A 64 MiB image: s1 after data at 1M (64k) and 40M (128k, across no
 * L2 boundary); then data at 3M, zeros over 40M, the same bytes again
 * at 1M (a new cluster, equal data), 4k at 50M+4k (one cluster): s2;
 * then 64k at 70M past the end is refused by qemu-io, 8M written.
 */
void test_diff__qcow2_tables(void)
{
    GC_INIT(NULL);
    char *dir = unit_tmpdir("diff-qcow2");
    char *img;
    libxl__qcow2 q;
    libxl__extents x;
    static const char *const steps[] = {
        "write -P 1 1M 64k", "write -P 2 40M 128k", "snapshot s1",
        "write -P 3 3M 64k", "write -z 40M 128k", "write -P 1 1M 64k",
        "write -P 4 50M 4k", "snapshot s2", "write -P 5 8M 64k", NULL
    };

    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    img = GCSPRINTF("%s/d.qcow2", dir);
    CU_ASSERT_EQUAL_FATAL(unit_qcow2_script(img, "64M", steps), 0);

    CU_ASSERT_EQUAL_FATAL(libxl__qcow2_open(gc, img, &q), 0);
    CU_ASSERT_EQUAL(q.cluster_size, K64);
    CU_ASSERT_EQUAL(q.size, 64 << 20);
    CU_ASSERT_EQUAL_FATAL(q.num_snaps, 2);
    CU_ASSERT_STRING_EQUAL(q.snaps[0].name, "s1");
    CU_ASSERT_STRING_EQUAL(q.snaps[1].name, "s2");
    CU_ASSERT_EQUAL(q.snaps[1].disk_size, 64 << 20);
    CU_ASSERT_FALSE(q.has_backing);

    /* s1 -> s2, data compared: 1M was rewritten with equal data */
    CU_ASSERT_EQUAL_FATAL(states_diff(gc, &q, "s1", "s2", false, true, &x),
                          0);
    CU_ASSERT_EQUAL_FATAL(x.n, 3);
    CU_ASSERT_EQUAL(x.e[0].offset, 3 << 20);
    CU_ASSERT_EQUAL(x.e[0].length, K64);
    CU_ASSERT_EQUAL(x.e[1].offset, 40 << 20);
    CU_ASSERT_EQUAL(x.e[1].length, 2 * K64);
    CU_ASSERT_EQUAL(x.e[2].offset, 50 << 20);
    CU_ASSERT_EQUAL(x.e[2].length, K64);
    /* mapping only: 1M too */
    CU_ASSERT_EQUAL_FATAL(states_diff(gc, &q, "s1", "s2", false, false, &x),
                          0);
    CU_ASSERT_EQUAL_FATAL(x.n, 4);
    CU_ASSERT_EQUAL(x.e[0].offset, 1 << 20);
    /* s2 -> active: 8M only */
    CU_ASSERT_EQUAL_FATAL(states_diff(gc, &q, "s2", NULL, false, true, &x),
                          0);
    CU_ASSERT_EQUAL_FATAL(x.n, 1);
    CU_ASSERT_EQUAL(x.e[0].offset, 8 << 20);
    CU_ASSERT_EQUAL(x.e[0].length, K64);
    /* one state with itself: nothing */
    CU_ASSERT_EQUAL_FATAL(states_diff(gc, &q, "s1", "s1", false, false, &x),
                          0);
    CU_ASSERT_EQUAL(x.n, 0);
    /* s1's own clusters (against none): 1M, 40M */
    CU_ASSERT_EQUAL_FATAL(states_diff(gc, &q, NULL, "s1", true, false, &x),
                          0);
    CU_ASSERT_EQUAL_FATAL(x.n, 2);
    CU_ASSERT_EQUAL(x.e[0].offset, 1 << 20);
    CU_ASSERT_EQUAL(x.e[1].offset, 40 << 20);
    CU_ASSERT_EQUAL(x.e[1].length, 2 * K64);
    /* an unknown tag */
    {
        libxl__qcow2_l1 l1;
        CU_ASSERT_EQUAL(libxl__qcow2_state(gc, &q, "nope", &l1),
                        ERROR_NOTFOUND);
    }
    libxl__qcow2_close(&q);

    /* a duplicate name is refused; a file that is not qcow2 too */
    CU_ASSERT_EQUAL_FATAL(unit_qemu_img_snapshot(img, "s1"), 0);
    CU_ASSERT_EQUAL_FATAL(libxl__qcow2_open(gc, img, &q), 0);
    CU_ASSERT_EQUAL(q.num_snaps, 3);
    {
        libxl__qcow2_l1 l1;
        CU_ASSERT_EQUAL(libxl__qcow2_state(gc, &q, "s1", &l1),
                        ERROR_NOTFOUND);
    }
    libxl__qcow2_close(&q);
    CU_ASSERT_EQUAL(unit_write_file(img, "not an image, just text\n"), 0);
    CU_ASSERT_NOT_EQUAL(libxl__qcow2_open(gc, img, &q), 0);
    CU_ASSERT_EQUAL(q.fd, -1);
    unit_rm_rf(dir);
    free(dir);
    GC_FREE;
}

/* An overlay (has a backing file): an unallocated cluster is the
 * backing's data, so zeros written over it are a change */
void test_diff__qcow2_backing(void)
{
    GC_INIT(NULL);
    char *dir = unit_tmpdir("diff-backing");
    char *base, *ov;
    libxl__qcow2 q;
    libxl__extents x;

    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    base = GCSPRINTF("%s/base.qcow2", dir);
    ov = GCSPRINTF("%s/ov.qcow2", dir);
    {
        const char *mk[] = { "qemu-img", "create", "-q", "-f", "qcow2",
                             base, "16M", NULL };
        const char *mo[] = { "qemu-img", "create", "-q", "-f", "qcow2",
                             "-b", base, "-F", "qcow2", ov, NULL };
        CU_ASSERT_EQUAL_FATAL(unit_run(mk), 0);
        CU_ASSERT_EQUAL_FATAL(unit_qemu_io(base, "write -P 7 0 1M"), 0);
        CU_ASSERT_EQUAL_FATAL(unit_run(mo), 0);
    }
    CU_ASSERT_EQUAL_FATAL(unit_qemu_img_snapshot(ov, "t"), 0);
    CU_ASSERT_EQUAL_FATAL(unit_qemu_io(ov, "write -z 0 64k"), 0);
    CU_ASSERT_EQUAL_FATAL(libxl__qcow2_open(gc, ov, &q), 0);
    CU_ASSERT_TRUE(q.has_backing);
    CU_ASSERT_EQUAL_FATAL(states_diff(gc, &q, "t", NULL, false, true, &x),
                          0);
    CU_ASSERT_EQUAL_FATAL(x.n, 1);
    CU_ASSERT_EQUAL(x.e[0].offset, 0);
    CU_ASSERT_EQUAL(x.e[0].length, K64);
    libxl__qcow2_close(&q);
    unit_rm_rf(dir);
    free(dir);
    GC_FREE;
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
