/*
 * libxl_snapshot_qcow2.c - reading qcow2 images' own tables
 *
 * The header, the snapshot table and the L1/L2 tables of a qcow2 image,
 * read with pread from a file opened read-only (never written, never
 * locked: a running QEMU's image is read as its last flush left it).
 * Two users:
 *  - snapshot-diff (libxl_snapshot_diff.c): the clusters whose mapping
 *    differs between two states of one image (libxl__qcow2_diff);
 *  - space accounting (libxl_snapshot_size.c): the bytes each internal
 *    snapshot holds alone (libxl__qcow2_exclusive), and the clusters an
 *    image's active state holds of its own.
 *
 * Exclusive clusters: every state of the image (each snapshot, and the
 * active state) references host clusters: its L1 table, the L2 tables
 * its L1 names, and the data clusters those name (a compressed
 * cluster: the host clusters its bytes lie in).  One pass over the
 * states keeps, per host cluster, who references it: nobody, one state,
 * or several; and per state the count of clusters it alone holds, kept
 * current as clusters become shared.  A snapshot's exclusive bytes are
 * what deleting it gives back to the image (QEMU frees exactly the
 * clusters whose refcount drops to 0): its count times the cluster
 * size.  The owner map, one word per host cluster of the file, is also
 * the L2 cache by offset: an L2 table is read when a first and a
 * second state reference it, never again (when a second state
 * references it, each of its clusters becomes shared, and a shared
 * table's clusters all are), so 1,000 snapshots sharing most of their
 * tables cost little more than 1,000 L1 tables.  Refcount blocks, the
 * snapshot table and the header are nobody's own.
 *
 * Limits: an image is what its records say it is (the callers read
 * only qcow2 images by record, never by what a file starts with), but
 * its tables may still be corrupt: each is checked before it is used
 * (at a cluster, inside the file, an L1 table at most QEMU's 32 MiB,
 * the snapshots' L1 tables no larger in all than the file, no more L2
 * tables than the file has clusters, an owner map of at most 256 MiB),
 * so that a corrupt image costs one line of error, never a crash, a
 * hang or an allocation beyond those bounds.
 *
 * Pure but for the reads, for the unit tests (suites "diff", "size").
 */
#include <endian.h>
#include <fcntl.h>
#include <unistd.h>

#include "libxl_snapshot_internal.h"

/* ---------------------------------------------------------------- */
/* qcow2 tables */

#define QCOW2_MAGIC 0x514649fbU
#define QCOW2_INCOMPAT_CORRUPT   (1ULL << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1ULL << 2)
#define QCOW2_INCOMPAT_EXTL2     (1ULL << 4)
#define QCOW2_OFFSET_MASK   0x00fffffffffffe00ULL
#define QCOW2_COPIED        (1ULL << 63)
#define QCOW2_COMPRESSED    (1ULL << 62)
#define QCOW2_ZERO          1ULL
#define QCOW2_MAX_SNAPS     65536
/* entries: QEMU's limit, 32 MiB of table (QCOW_MAX_L1_SIZE) */
#define QCOW2_MAX_L1        ((32 << 20) / 8)
/* the snapshot table's bytes (QEMU's QCOW_MAX_SNAPSHOTS_SIZE) */
#define QCOW2_MAX_SNAP_TABLE (64ULL << 20)
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acaU
/* the owner map of libxl__qcow2_exclusive, at most (bytes) */
#define QCOW2_MAX_OWNER_MAP (256ULL << 20)

static uint64_t be64_at(const unsigned char *p)
{
    uint64_t v;

    memcpy(&v, p, 8);
    return be64toh(v);
}

static uint32_t be32_at(const unsigned char *p)
{
    uint32_t v;

    memcpy(&v, p, 4);
    return be32toh(v);
}

static uint16_t be16_at(const unsigned char *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* len bytes at off, all of them: 0, or ERROR_FAIL (logged) */
static int read_at(libxl__gc *gc, const libxl__qcow2 *q, void *buf,
                   size_t len, uint64_t off, const char *what)
{
    size_t done = 0;
    ssize_t r;

    while (done < len) {
        r = pread(q->fd, (char *)buf + done, len - done, off + done);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            LOGE(ERROR, "cannot read %s of '%s'", what, q->path);
            return ERROR_FAIL;
        }
        if (!r) {
            LOG(ERROR, "'%s' ends before its %s (offset %llu): a "
                "truncated or corrupt qcow2 image", q->path, what,
                (unsigned long long)(off + done));
            return ERROR_FAIL;
        }
        done += r;
    }
    return 0;
}

/* the backing format the header extensions name, if any, into q */
static int read_extensions(libxl__gc *gc, libxl__qcow2 *q, uint64_t off)
{
    unsigned char e[8];
    uint32_t type, len;
    int rc, n;

    /* (within the first cluster, as QEMU reads them) */
    for (n = 0; n < 64 && off + 8 <= q->cluster_size; n++) {
        rc = read_at(gc, q, e, 8, off, "header extensions");
        if (rc) return rc;
        type = be32_at(e);
        len = be32_at(e + 4);
        if (!type) break;
        if (len > q->cluster_size - off - 8) {
            LOG(ERROR, "'%s': a header extension past the first cluster: "
                "a corrupt qcow2 image", q->path);
            return ERROR_INVAL;
        }
        if (type == QCOW2_EXT_BACKING_FORMAT && len < 32) {
            char *f = libxl__gc_zalloc(gc, len + 1);
            rc = read_at(gc, q, f, len, off + 8, "backing format");
            if (rc) return rc;
            q->backing_format = f;
        }
        off += 8 + (((uint64_t)len + 7) & ~7ULL);
    }
    return 0;
}

/* n entries of L1 table at off: in the file, at a cluster (said) */
static int l1_check(libxl__gc *gc, const libxl__qcow2 *q, uint64_t off,
                    uint32_t n, const char *whose)
{
    if (!n) return 0;
    if (off & (q->cluster_size - 1)) {
        LOG(ERROR, "'%s': %s L1 table at %llu, not at a cluster: a corrupt "
            "qcow2 image", q->path, whose, (unsigned long long)off);
        return ERROR_INVAL;
    }
    if (off > q->file_size || (uint64_t)n * 8 > q->file_size - off) {
        LOG(ERROR, "'%s' ends before %s L1 table: a truncated or corrupt "
            "qcow2 image", q->path, whose);
        return ERROR_INVAL;
    }
    return 0;
}

int libxl__qcow2_open(libxl__gc *gc, const char *path, libxl__qcow2 *q)
{
    unsigned char h[104], *tab = NULL;
    off_t end;
    uint32_t version, crypt, nb, hlen = 72;
    uint64_t incompat = 0, snap_off, tab_len = 0, p, l1_total, rt_off;
    int rc, i;

    memset(q, 0, sizeof(*q));
    q->path = path;
    q->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (q->fd < 0) {
        LOGE(ERROR, "cannot open '%s'", path);
        return ERROR_FAIL;
    }
    /* (a block device's size too, where st_size says 0) */
    end = lseek(q->fd, 0, SEEK_END);
    if (end < 0) {
        LOGE(ERROR, "cannot find the size of '%s'", path);
        rc = ERROR_FAIL;
        goto out;
    }
    q->file_size = end;
    memset(h, 0, sizeof(h));
    rc = read_at(gc, q, h, 72, 0, "header");
    if (rc) goto out;
    version = be32_at(h + 4);
    if (be32_at(h) != QCOW2_MAGIC || version < 2 || version > 3) {
        LOG(ERROR, "'%s' is not a qcow2 image (version 2 or 3)", path);
        rc = ERROR_INVAL;
        goto out;
    }
    if (version == 3) {
        rc = read_at(gc, q, h + 72, sizeof(h) - 72, 72, "header");
        if (rc) goto out;
        incompat = be64_at(h + 72);
        hlen = be32_at(h + 100);
    }
    q->version = version;
    q->has_backing = be64_at(h + 8) != 0;
    if (q->has_backing) {
        uint32_t blen = be32_at(h + 16);
        char *name;
        if (blen > 1023) {
            LOG(ERROR, "'%s': a backing file name of %u bytes", path, blen);
            rc = ERROR_INVAL;
            goto out;
        }
        name = libxl__gc_zalloc(gc, blen + 1);
        rc = read_at(gc, q, name, blen, be64_at(h + 8), "backing file name");
        if (rc) goto out;
        q->backing = name;
    }
    q->cluster_bits = be32_at(h + 20);
    q->size = be64_at(h + 24);
    crypt = be32_at(h + 32);
    q->l1_size = be32_at(h + 36);
    q->l1_offset = be64_at(h + 40);
    rt_off = be64_at(h + 48);
    nb = be32_at(h + 60);
    snap_off = be64_at(h + 64);
    if (q->cluster_bits < 9 || q->cluster_bits > 21 ||
        q->l1_size > QCOW2_MAX_L1 || nb > QCOW2_MAX_SNAPS ||
        hlen < 72 || hlen >= (1U << q->cluster_bits)) {
        LOG(ERROR, "'%s': a qcow2 header out of range (cluster bits %u, "
            "L1 size %u, %u snapshots)", path, q->cluster_bits, q->l1_size,
            nb);
        rc = ERROR_INVAL;
        goto out;
    }
    q->cluster_size = 1ULL << q->cluster_bits;
    /* tables at clusters, as QEMU checks (qcow2_validate_table) */
    if ((rt_off | (nb ? snap_off : 0)) & (q->cluster_size - 1)) {
        LOG(ERROR, "'%s': its %s table is not at a cluster: a corrupt "
            "qcow2 image", path, rt_off & (q->cluster_size - 1)
            ? "refcount" : "snapshot");
        rc = ERROR_INVAL;
        goto out;
    }
    rc = l1_check(gc, q, q->l1_offset, q->l1_size, "its");
    if (rc) goto out;
    l1_total = (uint64_t)q->l1_size * 8;
    rc = read_extensions(gc, q, hlen);
    if (rc) goto out;
    if (incompat & (QCOW2_INCOMPAT_CORRUPT | QCOW2_INCOMPAT_DATA_FILE)) {
        LOG(ERROR, "'%s' is %s: its tables are not read", path,
            incompat & QCOW2_INCOMPAT_CORRUPT ? "marked corrupt"
            : "on an external data file");
        rc = ERROR_INVAL;
        goto out;
    }
    q->extended_l2 = !!(incompat & QCOW2_INCOMPAT_EXTL2);
    q->encrypted = crypt != 0;

    /* the snapshot table: at most 64 KiB of fixed fields per entry */
    GCNEW_ARRAY(q->snaps, nb ? nb : 1);
    p = snap_off;
    for (i = 0; i < (int)nb; i++) {
        unsigned char e[40];
        uint32_t extra;
        uint16_t id_len, name_len;
        libxl__qcow2_snap *s = &q->snaps[i];
        char *id, *name;

        rc = read_at(gc, q, e, sizeof(e), p, "snapshot table");
        if (rc) goto out;
        s->l1_offset = be64_at(e);
        s->l1_size = be32_at(e + 8);
        id_len = be16_at(e + 12);
        name_len = be16_at(e + 14);
        extra = be32_at(e + 36);
        if (extra > 1024 || s->l1_size > QCOW2_MAX_L1) {
            LOG(ERROR, "'%s': snapshot table entry %d out of range", path, i);
            rc = ERROR_INVAL;
            goto out;
        }
        rc = l1_check(gc, q, s->l1_offset, s->l1_size,
                      GCSPRINTF("snapshot %d's", i + 1));
        if (rc) goto out;
        /* a real image's L1 tables all lie in it, one beside another */
        l1_total += (uint64_t)s->l1_size * 8;
        if (l1_total > q->file_size) {
            LOG(ERROR, "'%s': its snapshots' L1 tables (%llu bytes and "
                "more) are larger than the file: a corrupt qcow2 image",
                path, (unsigned long long)l1_total);
            rc = ERROR_INVAL;
            goto out;
        }
        tab_len = extra + id_len + name_len;
        if (p - snap_off + 40 + tab_len > QCOW2_MAX_SNAP_TABLE) {
            LOG(ERROR, "'%s': a snapshot table of more than %llu MiB: a "
                "corrupt qcow2 image", path, QCOW2_MAX_SNAP_TABLE >> 20);
            rc = ERROR_INVAL;
            goto out;
        }
        tab = libxl__gc_realloc(gc, tab, tab_len + 1);
        rc = read_at(gc, q, tab, tab_len, p + 40, "snapshot table");
        if (rc) goto out;
        s->disk_size = extra >= 16 ? be64_at(tab + 8) : q->size;
        id = libxl__gc_zalloc(gc, id_len + 1);
        memcpy(id, tab + extra, id_len);
        name = libxl__gc_zalloc(gc, name_len + 1);
        memcpy(name, tab + extra + id_len, name_len);
        s->id = id;
        s->name = name;
        p += (40 + tab_len + 7) & ~7ULL;
    }
    q->num_snaps = nb;
    rc = 0;
 out:
    if (rc) libxl__qcow2_close(q);
    return rc;
}

void libxl__qcow2_close(libxl__qcow2 *q)
{
    if (q->fd >= 0) close(q->fd);
    q->fd = -1;
}

int libxl__qcow2_reopen(libxl__gc *gc, libxl__qcow2 *q)
{
    if (q->fd >= 0) return 0;
    q->fd = open(q->path, O_RDONLY | O_CLOEXEC);
    if (q->fd < 0) {
        LOGE(ERROR, "cannot open '%s'", q->path);
        return ERROR_FAIL;
    }
    return 0;
}

/* the L1 table of n entries at off (checked at open) into e, host
 * order, raw entries */
static int read_l1_into(libxl__gc *gc, const libxl__qcow2 *q, uint64_t off,
                        uint32_t n, uint64_t *e)
{
    uint32_t i;
    int rc;

    if (!n) return 0;
    rc = l1_check(gc, q, off, n, "an");
    if (rc) return rc;
    rc = read_at(gc, q, e, (size_t)n * 8, off, "L1 table");
    if (rc) return rc;
    for (i = 0; i < n; i++) e[i] = be64toh(e[i]);
    return 0;
}

/* the L1 table of n entries at off into *l1_r (its size: the caller's) */
static int read_l1(libxl__gc *gc, const libxl__qcow2 *q, uint64_t off,
                   uint32_t n, libxl__qcow2_l1 *l1_r)
{
    uint32_t i;
    int rc;

    l1_r->n = n;
    GCNEW_ARRAY(l1_r->e, n ? n : 1);
    rc = read_l1_into(gc, q, off, n, l1_r->e);
    if (rc) return rc;
    for (i = 0; i < n; i++) l1_r->e[i] &= QCOW2_OFFSET_MASK;
    return 0;
}

int libxl__qcow2_state(libxl__gc *gc, libxl__qcow2 *q, const char *tag,
                       libxl__qcow2_l1 *l1_r)
{
    const libxl__qcow2_snap *found = NULL;
    int i, n = 0;

    memset(l1_r, 0, sizeof(*l1_r));
    if (!tag) {
        l1_r->size = q->size;
        return read_l1(gc, q, q->l1_offset, q->l1_size, l1_r);
    }
    for (i = 0; i < q->num_snaps; i++)
        if (!strcmp(q->snaps[i].name, tag)) {
            found = &q->snaps[i];
            n++;
        }
    if (n != 1) {
        if (n)
            LOG(ERROR, "'%s' has %d internal snapshots named '%s'",
                q->path, n, libxl__printable(gc, tag));
        else
            LOG(ERROR, "'%s' has no internal snapshot named '%s'",
                q->path, libxl__printable(gc, tag));
        return ERROR_NOTFOUND;
    }
    l1_r->size = found->disk_size;
    return read_l1(gc, q, found->l1_offset, found->l1_size, l1_r);
}

/* what a cluster's entry reads as, for the data compare */
enum { C_ZERO, C_DATA, C_OTHER };

static int cluster_kind(const libxl__qcow2 *q, uint64_t e, uint64_t *off_r)
{
    *off_r = e & QCOW2_OFFSET_MASK;
    if (e & QCOW2_COMPRESSED) return C_OTHER;
    if (q->version >= 3 && (e & QCOW2_ZERO)) return C_ZERO;
    if (*off_r) return C_DATA;
    /* unallocated: the backing file's data, or zeros without one */
    return q->has_backing ? C_OTHER : C_ZERO;
}

/* Is the guest data of entries ea (of qa) and eb (of qb, the same
 * cluster size) the same (1), not (0)? */
static int same_data(libxl__gc *gc, const libxl__qcow2 *qa, uint64_t ea,
                     const libxl__qcow2 *qb, uint64_t eb,
                     unsigned char *ba, unsigned char *bb)
{
    uint64_t oa, ob;
    int ka = cluster_kind(qa, ea, &oa), kb = cluster_kind(qb, eb, &ob);
    size_t i, cs = qa->cluster_size;
    int rc;

    if (ka == C_ZERO && kb == C_ZERO) return 1;
    if (ka == C_OTHER || kb == C_OTHER) return 0;
    if (ka == C_DATA) {
        rc = read_at(gc, qa, ba, cs, oa, "data");
        if (rc) return rc;
    }
    if (kb == C_DATA) {
        rc = read_at(gc, qb, bb, cs, ob, "data");
        if (rc) return rc;
    }
    if (ka == C_DATA && kb == C_DATA) return !memcmp(ba, bb, cs);
    {
        const unsigned char *d = ka == C_DATA ? ba : bb;
        for (i = 0; i < cs; i++)
            if (d[i]) return 0;
    }
    return 1;
}

/* L2 table at off (0: none, all unallocated) into buf, host order */
static int read_l2(libxl__gc *gc, const libxl__qcow2 *q, uint64_t off,
                   uint64_t *buf, size_t n)
{
    size_t i;
    int rc;

    if (!off) {
        memset(buf, 0, n * 8);
        return 0;
    }
    rc = read_at(gc, q, buf, n * 8, off, "L2 table");
    if (rc) return rc;
    for (i = 0; i < n; i++) buf[i] = be64toh(buf[i]);
    return 0;
}

/*
 * States a of qa and b of qb, where qb is qa (two states of one image)
 * or another image over the same backing (or none) with the same
 * cluster size and no extended L2 entries (checked by the caller): the
 * clusters whose entries differ (of two images: that either holds of
 * its own), less those whose data is equal (data: read, compared).
 */
int libxl__qcow2_diff2(libxl__gc *gc, const libxl__qcow2 *qa,
                       const libxl__qcow2_l1 *a, const libxl__qcow2 *qb,
                       const libxl__qcow2_l1 *b, bool data,
                       libxl__extents *x)
{
    /* an extended L2 entry is two words: the mapping, the subclusters */
    size_t words = qb->extended_l2 ? 2 : 1;
    size_t n_l2 = qb->cluster_size / 8, per_l2 = n_l2 / words;
    uint64_t size = a && a->size > b->size ? a->size : b->size;
    uint32_t na = a ? a->n : 0, n = na > b->n ? na : b->n, i;
    bool one = qa == qb;
    uint64_t *la, *lb;
    unsigned char *ba = NULL, *bb = NULL;
    size_t j;
    int rc;

    GCNEW_ARRAY(la, n_l2);
    GCNEW_ARRAY(lb, n_l2);
    if (data && !qb->extended_l2) {
        ba = libxl__gc_zalloc(gc, qb->cluster_size);
        bb = libxl__gc_zalloc(gc, qb->cluster_size);
    }
    for (i = 0; i < n; i++) {
        uint64_t oa = i < na ? a->e[i] : 0, ob = i < b->n ? b->e[i] : 0;
        uint64_t base = (uint64_t)i * per_l2 << qb->cluster_bits;

        /* one L2 table, or none on both (both read the backing) */
        if (oa == ob && (one || !oa)) continue;
        if (base >= size) break;
        rc = read_l2(gc, qa, oa, la, n_l2);
        if (rc) return rc;
        rc = read_l2(gc, qb, ob, lb, n_l2);
        if (rc) return rc;
        for (j = 0; j < per_l2; j++) {
            uint64_t off = base + ((uint64_t)j << qb->cluster_bits);
            uint64_t ea = la[j * words] & ~QCOW2_COPIED;
            uint64_t eb = lb[j * words] & ~QCOW2_COPIED;

            if (off >= size) break;
            if (ea == eb && (one || !ea) &&
                (words == 1 || la[j * 2 + 1] == lb[j * 2 + 1]))
                continue;
            if (ba) {
                rc = same_data(gc, qa, ea, qb, eb, ba, bb);
                if (rc < 0) return rc;
                if (rc) continue;
            }
            libxl__extents_add(gc, x, off, qb->cluster_size);
        }
    }
    return 0;
}

int libxl__qcow2_diff(libxl__gc *gc, const libxl__qcow2 *q,
                      const libxl__qcow2_l1 *a, const libxl__qcow2_l1 *b,
                      bool data, libxl__extents *x)
{
    return libxl__qcow2_diff2(gc, q, a, q, b, data, x);
}


/* ---------------------------------------------------------------- */
/* the active state's clusters */

int libxl__qcow2_allocation(libxl__gc *gc, const libxl__qcow2 *q,
                            libxl__extents *data, libxl__extents *inplace)
{
    size_t words = q->extended_l2 ? 2 : 1;
    size_t n_l2 = q->cluster_size / 8, per_l2 = n_l2 / words, j;
    /* distinct L2 tables: at most one a cluster of the file */
    uint64_t *l1, *l2, l2_left = q->file_size >> q->cluster_bits;
    uint32_t i;
    int rc;

    l1 = malloc((q->l1_size ? q->l1_size : 1) * sizeof(*l1));
    if (!l1) {
        LOG(ERROR, "'%s': no memory for its L1 table", q->path);
        return ERROR_NOMEM;
    }
    GCNEW_ARRAY(l2, n_l2);
    rc = read_l1_into(gc, q, q->l1_offset, q->l1_size, l1);
    if (rc) goto out;
    for (i = 0; i < q->l1_size; i++) {
        uint64_t e1 = l1[i], o2 = e1 & QCOW2_OFFSET_MASK;
        uint64_t base = (uint64_t)i * per_l2 << q->cluster_bits;

        if (!o2) continue;
        if (base >= q->size) break;
        if (o2 & (q->cluster_size - 1) || !l2_left--) {
            LOG(ERROR, "'%s': an L2 table at %llu, %s: a corrupt qcow2 "
                "image", q->path, (unsigned long long)o2,
                o2 & (q->cluster_size - 1) ? "not at a cluster"
                : "more L2 tables than the file has clusters");
            rc = ERROR_INVAL;
            goto out;
        }
        rc = read_l2(gc, q, o2, l2, n_l2);
        if (rc) goto out;
        for (j = 0; j < per_l2; j++) {
            uint64_t e = l2[j * words];
            uint64_t off = base + ((uint64_t)j << q->cluster_bits);

            if (off >= q->size) break;
            if (!(e & QCOW2_COMPRESSED) && !(e & QCOW2_OFFSET_MASK)) continue;
            libxl__extents_add(gc, data, off, q->cluster_size);
            /* refcount 1, table and cluster: written where it is */
            if (!(e & QCOW2_COMPRESSED) && (e & QCOW2_COPIED) &&
                (e1 & QCOW2_COPIED))
                libxl__extents_add(gc, inplace, off, q->cluster_size);
        }
    }
    rc = 0;
 out:
    free(l1);
    return rc;
}

/* ---------------------------------------------------------------- */
/* exclusive clusters */

#define OWNER_SHARED UINT32_MAX

typedef struct {
    const libxl__qcow2 *q;
    uint32_t *owner;                  /* per host cluster: 0 nobody, k + 1
                                         state k alone, OWNER_SHARED */
    uint64_t nclusters;
    uint64_t *alone;                  /* per state: clusters it alone has */
    uint64_t *l2;                     /* one L2 table, host order */
    uint64_t *l1;                     /* one L1 table (malloc) */
} excl_walk;

/* state who (k + 1) references host cluster off */
static void hold(excl_walk *w, uint64_t off, uint32_t who)
{
    uint64_t c = off >> w->q->cluster_bits;
    uint32_t o;

    /* past the end at open: written since, by a running QEMU */
    if (c >= w->nclusters) return;
    o = w->owner[c];
    if (o == who || o == OWNER_SHARED) return;
    if (!o) {
        w->owner[c] = who;
        w->alone[who - 1]++;
        return;
    }
    w->alone[o - 1]--;
    w->owner[c] = OWNER_SHARED;
}

/* the host clusters an L2 entry's data lie in */
static void hold_entry(excl_walk *w, uint64_t e, uint32_t who)
{
    const libxl__qcow2 *q = w->q;

    if (e & QCOW2_COMPRESSED) {
        unsigned shift = 62 - (q->cluster_bits - 8);
        uint64_t off = e & ((1ULL << shift) - 1);
        uint64_t sectors = ((e >> shift) & ((1ULL << (q->cluster_bits - 8))
                                            - 1)) + 1;
        uint64_t end = (off & ~511ULL) + sectors * 512, c;

        for (c = off & ~(q->cluster_size - 1); c < end; c += q->cluster_size)
            hold(w, c, who);
        return;
    }
    /* allocated (data, or zeros with their cluster kept) */
    if (e & QCOW2_OFFSET_MASK) hold(w, e & QCOW2_OFFSET_MASK, who);
}

static int walk_l2(libxl__gc *gc, excl_walk *w, uint64_t off, uint32_t who)
{
    const libxl__qcow2 *q = w->q;
    size_t n = q->cluster_size / 8, words = q->extended_l2 ? 2 : 1, j;
    uint64_t c = off >> q->cluster_bits;
    int rc;

    if (off & (q->cluster_size - 1) || c >= w->nclusters) {
        LOG(ERROR, "'%s': an L2 table at %llu, not a cluster of the file: "
            "a corrupt qcow2 image", q->path, (unsigned long long)off);
        return ERROR_FAIL;
    }
    /* walked for this state, or shared: each of its clusters is too */
    if (w->owner[c] == who || w->owner[c] == OWNER_SHARED) return 0;
    hold(w, off, who);
    rc = read_l2(gc, q, off, w->l2, n);
    if (rc) return rc;
    for (j = 0; j < n; j += words)
        hold_entry(w, w->l2[j], who);
    return 0;
}

/* state who (k + 1): the L1 table of n entries at l1_offset */
static int walk_state(libxl__gc *gc, excl_walk *w, uint64_t l1_offset,
                      uint32_t n, uint32_t who)
{
    uint64_t b, o2;
    uint32_t i;
    int rc;

    rc = read_l1_into(gc, w->q, l1_offset, n, w->l1);
    if (rc) return rc;
    for (b = 0; b < (uint64_t)n * 8; b += w->q->cluster_size)
        hold(w, l1_offset + b, who);
    for (i = 0; i < n; i++) {
        o2 = w->l1[i] & QCOW2_OFFSET_MASK;
        if (!o2) continue;
        rc = walk_l2(gc, w, o2, who);
        if (rc) return rc;
    }
    return 0;
}

int libxl__qcow2_exclusive(libxl__gc *gc, libxl__qcow2 *q,
                           uint64_t **bytes_r)
{
    excl_walk w = { .q = q };
    uint64_t *bytes;
    uint32_t max_l1 = q->l1_size;
    int i, rc;

    *bytes_r = NULL;
    w.nclusters = (q->file_size + q->cluster_size - 1) >> q->cluster_bits;
    if (w.nclusters * sizeof(*w.owner) > QCOW2_MAX_OWNER_MAP) {
        LOG(ERROR, "'%s': %llu clusters of %llu bytes, a map of more than "
            "%llu MiB: not counted", q->path,
            (unsigned long long)w.nclusters,
            (unsigned long long)q->cluster_size, QCOW2_MAX_OWNER_MAP >> 20);
        return ERROR_INVAL;
    }
    for (i = 0; i < q->num_snaps; i++)
        if (q->snaps[i].l1_size > max_l1) max_l1 = q->snaps[i].l1_size;
    w.owner = calloc(w.nclusters ? w.nclusters : 1, sizeof(*w.owner));
    w.l1 = malloc((max_l1 ? max_l1 : 1) * sizeof(*w.l1));
    if (!w.owner || !w.l1) {
        LOG(ERROR, "'%s': no memory for a map of %llu clusters", q->path,
            (unsigned long long)w.nclusters);
        rc = ERROR_NOMEM;
        goto out;
    }
    GCNEW_ARRAY(w.alone, q->num_snaps + 1);
    GCNEW_ARRAY(w.l2, q->cluster_size / 8);
    /* by entry, not by name (qemu-img allows the same name twice) */
    for (i = 0; i < q->num_snaps; i++) {
        rc = walk_state(gc, &w, q->snaps[i].l1_offset, q->snaps[i].l1_size,
                        i + 1);
        if (rc) goto out;
    }
    rc = walk_state(gc, &w, q->l1_offset, q->l1_size, q->num_snaps + 1);
    if (rc) goto out;
    GCNEW_ARRAY(bytes, q->num_snaps ? q->num_snaps : 1);
    for (i = 0; i < q->num_snaps; i++)
        bytes[i] = w.alone[i] << q->cluster_bits;
    *bytes_r = bytes;
 out:
    free(w.owner);
    free(w.l1);
    return rc;
}
