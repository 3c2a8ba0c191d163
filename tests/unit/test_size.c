/*
 * test_size.c - space accounting's pure parts: the exclusive clusters
 * of internal snapshots and the active state's own clusters, on a small
 * real image made with qemu-img and qemu-io (libxl_snapshot_qcow2.c)
 */
#include <CUnit/CUnit.h>

#include "libxl_snapshot_internal.h"
#include "helpers.h"

#define K64 65536ULL

static uint64_t extents_total(const libxl__extents *x)
{
    uint64_t t = 0;
    int i;

    for (i = 0; i < x->n; i++) t += x->e[i].length;
    return t;
}

/*
 * 1M written, a; the 1M again (a alone keeps the first: 16 clusters,
 * and its L1 and L2 tables), b; 64k at 2M (b keeps its L2 table), c;
 * 64k at 0 (c keeps its L2 table; the old cluster at 0 is b's and c's,
 * no one's alone).  The active state: data 0..1M and 2M..+64k, of
 * which only the cluster at 0 is its alone (written in place).
 */
void test_size__exclusive(void)
{
    GC_INIT(NULL);
    char *dir = unit_tmpdir("size-qcow2");
    char *img;
    libxl__qcow2 q;
    libxl__extents data = { 0 }, inplace = { 0 };
    uint64_t *ex;
    static const char *const steps[] = {
        "write -P 1 0 1M", "snapshot a", "write -P 2 0 1M", "snapshot b",
        "write -P 3 2M 64k", "snapshot c", "write -P 4 0 64k", NULL
    };

    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    img = GCSPRINTF("%s/s.qcow2", dir);
    CU_ASSERT_EQUAL_FATAL(unit_qcow2_script(img, "64M", steps), 0);

    CU_ASSERT_EQUAL_FATAL(libxl__qcow2_open(gc, img, &q), 0);
    CU_ASSERT_EQUAL_FATAL(q.num_snaps, 3);
    CU_ASSERT_EQUAL_FATAL(q.cluster_size, K64);
    CU_ASSERT_EQUAL_FATAL(libxl__qcow2_exclusive(gc, &q, &ex), 0);
    CU_ASSERT_EQUAL(ex[0], 16 * K64 + 2 * K64);       /* a */
    CU_ASSERT_EQUAL(ex[1], 2 * K64);                  /* b */
    CU_ASSERT_EQUAL(ex[2], 2 * K64);                  /* c */

    CU_ASSERT_EQUAL_FATAL(libxl__qcow2_allocation(gc, &q, &data, &inplace),
                          0);
    CU_ASSERT_EQUAL_FATAL(data.n, 2);
    CU_ASSERT_EQUAL(data.e[0].offset, 0);
    CU_ASSERT_EQUAL(data.e[0].length, 1 << 20);
    CU_ASSERT_EQUAL(data.e[1].offset, 2 << 20);
    CU_ASSERT_EQUAL(data.e[1].length, K64);
    CU_ASSERT_EQUAL_FATAL(inplace.n, 1);
    CU_ASSERT_EQUAL(inplace.e[0].offset, 0);
    CU_ASSERT_EQUAL(extents_total(&inplace), K64);
    libxl__qcow2_close(&q);

    /* no snapshot: nothing to count, and every cluster in place */
    {
        const char *del[] = { "qemu-img", "snapshot", "-d", NULL, img, NULL };
        const char *t[] = { "a", "b", "c" };
        int i;
        for (i = 0; i < 3; i++) {
            del[3] = t[i];
            CU_ASSERT_EQUAL_FATAL(unit_run(del), 0);
        }
    }
    memset(&data, 0, sizeof(data));
    memset(&inplace, 0, sizeof(inplace));
    CU_ASSERT_EQUAL_FATAL(libxl__qcow2_open(gc, img, &q), 0);
    CU_ASSERT_EQUAL(q.num_snaps, 0);
    CU_ASSERT_EQUAL(libxl__qcow2_exclusive(gc, &q, &ex), 0);
    CU_ASSERT_EQUAL_FATAL(libxl__qcow2_allocation(gc, &q, &data, &inplace),
                          0);
    CU_ASSERT_EQUAL(extents_total(&data), (1 << 20) + K64);
    CU_ASSERT_EQUAL(extents_total(&inplace), (1 << 20) + K64);
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
