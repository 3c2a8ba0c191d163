/*
 * test_size.c - space accounting's pure parts: the exclusive clusters
 * of internal snapshots and the active state's own clusters, on a small
 * real image made with qemu-img and qemu-io (libxl_snapshot_qcow2.c)
 */
#include <CUnit/CUnit.h>
#include <fcntl.h>
#include <unistd.h>

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

/* ---------------------------------------------------------------- */
/* corrupt images: one line, never a crash, a hang or a huge allocation */

static void put_be(const char *path, uint64_t off, uint64_t v, int bytes)
{
    unsigned char b[8];
    int fd = open(path, O_WRONLY), i;

    CU_ASSERT_FATAL(fd >= 0);
    for (i = 0; i < bytes; i++) b[i] = v >> (8 * (bytes - 1 - i));
    CU_ASSERT_FATAL(pwrite(fd, b, bytes, off) == bytes);
    close(fd);
}

static uint64_t get_be(const char *path, uint64_t off, int bytes)
{
    unsigned char b[8];
    uint64_t v = 0;
    int fd = open(path, O_RDONLY), i;

    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(pread(fd, b, bytes, off) == bytes);
    close(fd);
    for (i = 0; i < bytes; i++) v = v << 8 | b[i];
    return v;
}

/* a copy of img, named tag, in dir */
static char *copy_of(libxl__gc *gc, const char *dir, const char *img,
                     const char *tag)
{
    char *c = GCSPRINTF("%s/%s.qcow2", dir, tag);
    const char *cp[] = { "cp", "--sparse=always", img, c, NULL };

    CU_ASSERT_EQUAL_FATAL(unit_run(cp), 0);
    return c;
}

/* the offset of snapshot table entry i of img */
static uint64_t snap_entry(const char *img, int i)
{
    uint64_t p = get_be(img, 64, 8);

    for (; i > 0; i--) {
        uint64_t len = 40 + get_be(img, p + 36, 4) + get_be(img, p + 12, 2)
            + get_be(img, p + 14, 2);
        p += (len + 7) & ~7ULL;
    }
    return p;
}

static void refused_at_open(libxl__gc *gc, const char *img)
{
    libxl__qcow2 q;
    int rc = libxl__qcow2_open(gc, img, &q);

    CU_ASSERT_NOT_EQUAL(rc, 0);
    if (!rc) libxl__qcow2_close(&q);
}

/*
 * Tables not at a cluster (L1, a snapshot's L1, the refcount table),
 * an L1 table above QEMU's 32 MiB, snapshots' L1 tables larger in all
 * than the file (each alone inside it): refused when opened.
 */
void test_size__corrupt_tables(void)
{
    GC_INIT(NULL);
    char *dir = unit_tmpdir("size-corrupt");
    char *img, *c;
    libxl__qcow2 q;
    uint64_t l1_off, e;
    int i;
    static const char *const steps[] = {
        "write -P 1 0 1M", "snapshot a", "write -P 2 0 64k", "snapshot b",
        "snapshot c", NULL
    };

    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    img = GCSPRINTF("%s/good.qcow2", dir);
    CU_ASSERT_EQUAL_FATAL(unit_qcow2_script(img, "64M", steps), 0);
    CU_ASSERT_EQUAL_FATAL(libxl__qcow2_open(gc, img, &q), 0);
    CU_ASSERT_EQUAL_FATAL(q.num_snaps, 3);
    l1_off = q.l1_offset;
    libxl__qcow2_close(&q);

    c = copy_of(gc, dir, img, "l1-unaligned");
    put_be(c, 40, l1_off + 512, 8);
    refused_at_open(gc, c);

    c = copy_of(gc, dir, img, "l1-huge");      /* 4Mi entries + 1 */
    put_be(c, 36, (32 << 20) / 8 + 1, 4);
    refused_at_open(gc, c);

    c = copy_of(gc, dir, img, "refcount-unaligned");
    put_be(c, 48, get_be(c, 48, 8) + 512, 8);
    refused_at_open(gc, c);

    c = copy_of(gc, dir, img, "snap-l1-unaligned");
    e = snap_entry(c, 1);
    put_be(c, e, get_be(c, e, 8) + 512, 8);
    refused_at_open(gc, c);

    /* a sparse 24 MiB file, each snapshot's L1 the whole file from the
     * first one's (3 x 24 MiB read, were they walked) */
    c = copy_of(gc, dir, img, "l1-total");
    {
        const char *tr[] = { "truncate", "-s", "24M", c, NULL };
        uint64_t first = get_be(c, snap_entry(c, 0), 8);
        CU_ASSERT_EQUAL_FATAL(unit_run(tr), 0);
        for (i = 0; i < 3; i++) {
            e = snap_entry(c, i);
            put_be(c, e, first, 8);
            put_be(c, e + 8, ((24 << 20) - first) / 8, 4);
        }
    }
    refused_at_open(gc, c);

    unit_rm_rf(dir);
    free(dir);
    GC_FREE;
}

/*
 * Opened, but its tables refused by exclusive and allocation: an L2
 * table not at a cluster; one L2 table under every L1 entry (more L2
 * tables than the file has clusters: read again and again); a sparse
 * file of 512-byte clusters whose owner map would be above the budget.
 */
void test_size__corrupt_walk(void)
{
    GC_INIT(NULL);
    char *dir = unit_tmpdir("size-walk");
    char *img, *c;
    libxl__qcow2 q;
    libxl__extents data = { 0 }, inplace = { 0 };
    uint64_t *ex, l1_off, l1e;
    uint32_t i, n;
    static const char *const steps[] = {
        "write -P 1 0 64k", "snapshot a", "write -P 2 0 64k", NULL
    };

    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    img = GCSPRINTF("%s/big.qcow2", dir);
    CU_ASSERT_EQUAL_FATAL(unit_qcow2_script(img, "64G", steps), 0);
    CU_ASSERT_EQUAL_FATAL(libxl__qcow2_open(gc, img, &q), 0);
    l1_off = q.l1_offset;
    n = q.l1_size;
    CU_ASSERT_FATAL(n >= 128);
    libxl__qcow2_close(&q);
    l1e = get_be(img, l1_off, 8);

    c = copy_of(gc, dir, img, "l2-unaligned");
    put_be(c, l1_off, l1e + 512, 8);
    CU_ASSERT_EQUAL_FATAL(libxl__qcow2_open(gc, c, &q), 0);
    CU_ASSERT_NOT_EQUAL(libxl__qcow2_allocation(gc, &q, &data, &inplace), 0);
    CU_ASSERT_NOT_EQUAL(libxl__qcow2_exclusive(gc, &q, &ex), 0);
    libxl__qcow2_close(&q);

    c = copy_of(gc, dir, img, "l2-repeated");
    for (i = 1; i < n; i++) put_be(c, l1_off + 8 * i, l1e, 8);
    CU_ASSERT_EQUAL_FATAL(libxl__qcow2_open(gc, c, &q), 0);
    CU_ASSERT_NOT_EQUAL(libxl__qcow2_allocation(gc, &q, &data, &inplace), 0);
    libxl__qcow2_close(&q);

    /* 80 GiB of 512-byte clusters: a map of 640 MiB */
    c = GCSPRINTF("%s/small-clusters.qcow2", dir);
    {
        const char *mk[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-o",
                             "cluster_size=512", c, "1M", NULL };
        const char *tr[] = { "truncate", "-s", "80G", c, NULL };
        CU_ASSERT_EQUAL_FATAL(unit_run(mk), 0);
        CU_ASSERT_EQUAL_FATAL(unit_qemu_io(c, "write -P 1 0 4k"), 0);
        CU_ASSERT_EQUAL_FATAL(unit_qemu_img_snapshot(c, "a"), 0);
        CU_ASSERT_EQUAL_FATAL(unit_run(tr), 0);
    }
    CU_ASSERT_EQUAL_FATAL(libxl__qcow2_open(gc, c, &q), 0);
    CU_ASSERT_NOT_EQUAL(libxl__qcow2_exclusive(gc, &q, &ex), 0);
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
