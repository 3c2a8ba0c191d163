/*
 * libxl_snapshot_size.c - what each snapshot costs, what deleting it
 * would free
 *
 * Per disk of each snapshot, by kind, one figure (bytes):
 *  - external (qcow2, VHD): the image it froze, as the host's file
 *    system holds it: st_blocks of its file, which is `qemu-img info`'s
 *    actual-size (less its internal snapshots' exclusive bytes, when it
 *    holds some: those are theirs, and a total counts them once).
 *    Chosen over `qemu-img map` of the image without its backing (the
 *    guest data it holds): it is what the host pays
 *    (metadata and all, or less where the file system compresses), it
 *    is what `du` and a full disk speak of, and it is one stat, where a
 *    map is a process per image (1,000 snapshots: 20 s, not 20 ms);
 *  - internal (qcow2): the clusters it alone references, from the
 *    image's own snapshot table and L1/L2 tables (libxl__qcow2_exclusive,
 *    libxl_snapshot_qcow2.c; qemu-img has no such figure), each image
 *    read once for all its snapshots.  The file is read, not QEMU: on a
 *    running domain it is the image as of QEMU's last flush;
 *  - lvm: the snapshot volume's use (lvs: size times Snap% for a thick
 *    snapshot's copy-on-write, Data% for a thin one's mapped blocks)
 *    and its size, one lvs per volume group (libxl__lvm_snapshot_state's
 *    cache); an inactive thin snapshot, which lvs does not measure, says
 *    0 with a problem;
 *  - rbd: `rbd du`'s figure for the snapshot, from ceph-util du (librbd
 *    rbd_diff_iterate2 from the image's previous snapshot, whole
 *    objects), one run per image;
 *  - the memory image: its file's allocated size.
 *
 * And what deleting it would free (frees), following what
 * libxl_snapshot_delete.c does: internal, its exclusive bytes; lvm, the
 * volume's size (thin: unknown, 0 with a problem: its blocks are shared
 * with its origin, and lvs does not say which); rbd, its du figure; external on a
 * frozen image F, by what is built on F (the images the records know:
 * the disks' active images, each snapshot's frozen image and overlay,
 * their backing names read from their own headers):
 *  - nothing: F is removed (a base image, with no backing, the
 *    disk's active image, or one holding internal snapshots of records,
 *    stays: 0): F;
 *  - an image built on F holding internal snapshots of records (they
 *    read F): F stays, 0;
 *  - one qcow2 image C: C is committed into F and removed: C's
 *    allocation less what F grows by (the clusters C holds where F has
 *    none it can write in place: the union stays in F, and a cluster F
 *    shares with one of its internal snapshots is copied, not
 *    overwritten);
 *  - else (branches): F is streamed into each and removed: F less what
 *    each grows by (F's clusters it has none of in place); a base image,
 *    or one holding internal snapshots of records, stays: 0;
 *  - VHD: the overlay is coalesced into F and removed: its allocation
 *    less the blocks F gains (vhd-util query -a of both; a vhd-util
 *    without -a: the overlay's allocation, an upper bound).
 * What each image holds of its own: qcow2, its active L1/L2 tables
 * (libxl__qcow2_allocation: its data clusters, and those of refcount 1);
 * raw, its data extents (SEEK_DATA); a block device, all of it.
 *
 * An image is read as qcow2 only when the records say it is one (the
 * snapshot's format for its file, the domain's for its disks, qcow2 for
 * the overlays xl made on qcow2 or raw), never from what it starts
 * with: a raw image's every byte is the guest's, which may write a
 * qcow2 header there (its tables would be read, its backing name make
 * it another image's child).  Unknown, or said both ways: raw, no
 * backing.  Each qcow2 image is opened for its header and snapshot
 * table and closed; opened again while its tables are read (1,000
 * images at once would run past the open files' limit).
 *
 * Nothing is changed and no lock is taken (as listing): records are
 * read as they stand, images opened read-only.  Quick and synchronous.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libxl_snapshot_internal.h"

#ifndef SEEK_DATA
#define SEEK_DATA 3
#define SEEK_HOLE 4
#endif

/* ---------------------------------------------------------------- */
/* images, each looked at once */

typedef struct {
    const char *path;
    const char *real;                 /* realpath, or path */
    bool statted, stat_ok, is_file;
    uint64_t allocated;               /* st_blocks * 512 */
    unsigned claims;                  /* the formats records give it */
    bool probed, qcow2, qcow2_bad;    /* bad: its header unreadable */
    libxl__qcow2 q;                   /* qcow2: header, snapshot table */
    const char *backing;              /* realpath of its backing, or NULL */
    int num_children;
    const char **children;
    int internal_records;             /* records with an internal
                                         snapshot in it */
    bool active;                      /* a disk of the domain runs on it */
    bool excl_done;                   /* qcow2: exclusive bytes */
    int excl_rc;
    uint64_t *excl;
    bool own_done;                    /* what it holds of its own: its data,
                                         and what a write changes in place */
    int own_rc;
    libxl__extents own, inplace;
    uint64_t virt;                    /* its virtual size */
} size_image;

typedef struct {
    libxl__gc *gc;
    size_image *img;
    int num_img, alloc_img;
    size_image **by_real;             /* img sorted by real path */
    bool topology;                    /* children found */
    const char *unreadable;           /* a qcow2 image whose header
                                         could not be read, or NULL */
    libxl__lvm_cache lvm;
    struct { const char *spec; int rc; const char *why; yajl_val v; } *rbd;
    int num_rbd;
} size_state;

static int image_cmp(const void *a, const void *b)
{
    return strcmp(((const size_image *)a)->path,
                  ((const size_image *)b)->path);
}

#define CLAIM_QCOW2 1u
#define CLAIM_OTHER 2u

/* path, and the format a record gives it (UNKNOWN: none) */
static void image_add(size_state *ss, const char *path,
                      libxl_disk_format fmt)
{
    libxl__gc *gc = ss->gc;

    if (!path || path[0] != '/') return;
    if (ss->num_img == ss->alloc_img) {
        ss->alloc_img = ss->alloc_img ? ss->alloc_img * 2 : 64;
        GCREALLOC_ARRAY(ss->img, ss->alloc_img);
    }
    memset(&ss->img[ss->num_img], 0, sizeof(*ss->img));
    ss->img[ss->num_img].path = path;
    ss->img[ss->num_img].q.fd = -1;
    ss->img[ss->num_img].claims =
        fmt == LIBXL_DISK_FORMAT_QCOW2 ? CLAIM_QCOW2
        : fmt == LIBXL_DISK_FORMAT_UNKNOWN ? 0 : CLAIM_OTHER;
    ss->num_img++;
}

/* sorted, each once */
static void images_index(size_state *ss)
{
    int i, m = 0;

    if (!ss->num_img) return;
    qsort(ss->img, ss->num_img, sizeof(*ss->img), image_cmp);
    for (i = 1; i < ss->num_img; i++) {
        if (strcmp(ss->img[i].path, ss->img[m].path))
            ss->img[++m] = ss->img[i];
        else
            ss->img[m].claims |= ss->img[i].claims;
    }
    ss->num_img = m + 1;
}

static size_image *image_get(size_state *ss, const char *path)
{
    size_image key = { .path = path };

    if (!path || !ss->num_img) return NULL;
    return bsearch(&key, ss->img, ss->num_img, sizeof(*ss->img), image_cmp);
}

static void image_stat(size_state *ss, size_image *im)
{
    libxl__gc *gc = ss->gc;
    struct stat st;
    char *r;

    if (im->statted) return;
    im->statted = true;
    im->stat_ok = !stat(im->path, &st);
    if (!im->stat_ok) return;
    im->is_file = S_ISREG(st.st_mode);
    im->allocated = (uint64_t)st.st_blocks * 512;
    r = realpath(im->path, NULL);
    im->real = r ? GCSTRDUP(r) : im->path;
    free(r);
}

/* header and backing (qcow2 only: the only kind records chain) */
static void image_probe(size_state *ss, size_image *im)
{
    libxl__gc *gc = ss->gc;
    const char *b;
    char *r;

    if (im->probed) return;
    im->probed = true;
    image_stat(ss, im);
    if (!im->stat_ok || !im->is_file || im->claims != CLAIM_QCOW2) return;
    /* (a header it cannot read, or a file it cannot open: said, once,
     * by the reader) */
    if (libxl__qcow2_open(gc, im->path, &im->q)) {
        im->qcow2_bad = true;
        if (!ss->unreadable) ss->unreadable = im->path;
        return;
    }
    libxl__qcow2_close(&im->q);
    im->qcow2 = true;
    im->virt = im->q.size;
    b = im->q.backing;
    if (b && *b && b[0] != '/' && !strchr(b, ':'))
        b = GCSPRINTF("%s/%s", libxl__path_dirname(gc, im->path), b);
    if (b && b[0] == '/') {
        r = realpath(b, NULL);
        im->backing = GCSTRDUP(r ? r : b);
        free(r);
    }
}

static void images_close(size_state *ss)
{
    int i;

    for (i = 0; i < ss->num_img; i++)
        if (ss->img[i].qcow2) libxl__qcow2_close(&ss->img[i].q);
}

static int real_cmp(const void *a, const void *b)
{
    const size_image *x = *(const size_image *const *)a;
    const size_image *y = *(const size_image *const *)b;

    return strcmp(x->real, y->real);
}

/* what is built on each image, of the images the records know */
static void images_topology(size_state *ss)
{
    libxl__gc *gc = ss->gc;
    size_image key, *kp = &key, **f;
    int i, n = 0;

    if (ss->topology) return;
    ss->topology = true;
    GCNEW_ARRAY(ss->by_real, ss->num_img ? ss->num_img : 1);
    for (i = 0; i < ss->num_img; i++) {
        image_probe(ss, &ss->img[i]);
        if (ss->img[i].stat_ok) ss->by_real[n++] = &ss->img[i];
    }
    qsort(ss->by_real, n, sizeof(*ss->by_real), real_cmp);
    for (i = 0; i < ss->num_img; i++) {
        size_image *c = &ss->img[i];
        if (!c->backing) continue;
        key.real = c->backing;
        f = n ? bsearch(&kp, ss->by_real, n, sizeof(*ss->by_real), real_cmp)
              : NULL;
        if (!f || *f == c) continue;
        GCREALLOC_ARRAY((*f)->children, (*f)->num_children + 1);
        (*f)->children[(*f)->num_children++] = c->path;
    }
}

/* What im holds of its own, as guest extents (sorted, merged) */
static int image_own(size_state *ss, size_image *im)
{
    libxl__gc *gc = ss->gc;
    int fd;
    off_t end, d, h;

    if (im->own_done) return im->own_rc;
    im->own_done = true;
    image_probe(ss, im);
    if (!im->stat_ok) return im->own_rc = ERROR_NOTFOUND;
    if (im->qcow2) {
        im->own_rc = libxl__qcow2_reopen(gc, &im->q);
        if (!im->own_rc)
            im->own_rc = libxl__qcow2_allocation(gc, &im->q, &im->own,
                                                 &im->inplace);
        libxl__qcow2_close(&im->q);
        return im->own_rc;
    }
    fd = open(im->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return im->own_rc = ERROR_FAIL;
    end = lseek(fd, 0, SEEK_END);
    im->virt = end > 0 ? end : 0;
    if (!im->is_file) {                 /* a device: all of it */
        libxl__extents_add(gc, &im->own, 0, im->virt);
    } else {
        for (d = 0; d < end; d = h) {
            d = lseek(fd, d, SEEK_DATA);
            if (d < 0) break;
            h = lseek(fd, d, SEEK_HOLE);
            if (h < 0) h = end;
            libxl__extents_add(gc, &im->own, d, h - d);
        }
    }
    close(fd);
    im->inplace = im->own;           /* (a hole written allocates) */
    return im->own_rc = 0;
}

/* bytes of a's extents that b's do not cover (both sorted, merged) */
static uint64_t extents_minus(const libxl__extents *a,
                              const libxl__extents *b)
{
    uint64_t total = 0, cut = 0;
    int i, j = 0;

    for (i = 0; i < a->n; i++) {
        uint64_t s = a->e[i].offset, e = s + a->e[i].length;
        total += a->e[i].length;
        while (j < b->n && b->e[j].offset + b->e[j].length <= s) j++;
        for (int k = j; k < b->n && b->e[k].offset < e; k++) {
            uint64_t bs = b->e[k].offset, be = bs + b->e[k].length;
            cut += (be < e ? be : e) - (bs > s ? bs : s);
        }
    }
    return total - cut;
}

/* ---------------------------------------------------------------- */
/* per kind */

/* why dz's figure is missing (the caller's copy: not gc) */
static void problem(libxl__gc *gc, libxlsnap_disk_size *dz, const char *why)
{
    free(dz->problem);
    dz->problem = libxl__gc_strdup(NOGC, why);
}

/* the exclusive bytes of each of im's internal snapshots (probed) */
static int image_exclusive(size_state *ss, size_image *im)
{
    if (!im->excl_done) {
        im->excl_done = true;
        im->excl_rc = im->qcow2 ? libxl__qcow2_reopen(ss->gc, &im->q)
                                : ERROR_INVAL;
        if (!im->excl_rc)
            im->excl_rc = libxl__qcow2_exclusive(ss->gc, &im->q, &im->excl);
        libxl__qcow2_close(&im->q);
    }
    return im->excl_rc;
}

static void internal_size(size_state *ss, const libxlsnap_disk_snapshot *ds,
                          libxlsnap_disk_size *dz)
{
    libxl__gc *gc = ss->gc;
    size_image *im = image_get(ss, ds->file);
    int i;

    if (!im) {
        problem(gc, dz, "no image");
        return;
    }
    image_probe(ss, im);
    if (!im->qcow2) {
        problem(gc, dz, GCSPRINTF("%s: %s", im->path,
            !im->stat_ok ? "missing" : im->qcow2_bad
            ? "its qcow2 header cannot be read"
            : im->claims != CLAIM_QCOW2
            ? "not a qcow2 image by its records" : "not a qcow2 image"));
        return;
    }
    if (image_exclusive(ss, im)) {
        problem(gc, dz, GCSPRINTF("%s: its tables cannot be read",
                                       im->path));
        return;
    }
    for (i = 0; i < im->q.num_snaps; i++)
        if (ds->tag && !strcmp(im->q.snaps[i].name, ds->tag)) break;
    if (i == im->q.num_snaps) {
        problem(gc, dz, GCSPRINTF("%s has no internal snapshot '%s'",
                                       im->path, ds->tag ? ds->tag : "?"));
        return;
    }
    dz->exclusive = dz->frees = im->excl[i];
}

/* a VHD's allocated blocks, sorted (vhd-util query -a): 0, or
 * ERROR_FAIL when the tool cannot say (blktap's has no -a) */
static int vhd_blocks(size_state *ss, const char *path, long **b_r, int *n_r)
{
    libxl__gc *gc = ss->gc;
    const char *args[] = { CTX->vhd_util, "query", "-n", path, "-a", NULL };
    char *out = NULL, *err = NULL, *line, *save = NULL;
    int rc;

    *b_r = NULL;
    *n_r = 0;
    rc = libxl__exec_sync(gc, args, 60000, &out, &err);
    if (rc || !out) return ERROR_FAIL;
    for (line = strtok_r(out, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        GCREALLOC_ARRAY(*b_r, *n_r + 1);
        (*b_r)[(*n_r)++] = strtol(line, NULL, 10);
    }
    return 0;
}

/*
 * VHD: the child c (the overlay the snapshot made) is coalesced into f
 * and removed: c's allocation less the blocks f gains (each block of c
 * f has not: 2 MiB and its bitmap sector); the tool not saying, c's
 * allocation, an upper bound.
 */
static uint64_t vhd_frees(size_state *ss, size_image *f,
                          const libxlsnap_disk_snapshot *ds)
{
    size_image *c = image_get(ss, ds->overlay);
    long *bc, *bf;
    int nc, nf, i, j = 0;
    uint64_t grows = 0;

    if (c) image_stat(ss, c);
    if (!c || !c->stat_ok) return 0;
    if (vhd_blocks(ss, c->path, &bc, &nc) || vhd_blocks(ss, f->path, &bf, &nf))
        return c->allocated;
    for (i = 0; i < nc; i++) {
        while (j < nf && bf[j] < bc[i]) j++;
        if (j == nf || bf[j] != bc[i]) grows += (2u << 20) + 512;
    }
    return c->allocated > grows ? c->allocated - grows : 0;
}

/* the bytes deleting the external snapshot that froze f frees */
static uint64_t external_frees(size_state *ss, size_image *f,
                               const libxlsnap_disk_snapshot *ds)
{
    size_image *c;
    uint64_t grows = 0, gain;
    int i;

    images_topology(ss);
    if (ds->format == LIBXL_DISK_FORMAT_VHD) return vhd_frees(ss, f, ds);
    /* nothing built on it: removed, unless a base image or one that
     * holds internal snapshots of records */
    if (!f->num_children)
        return f->backing && !f->internal_records && !f->active
            ? f->allocated : 0;
    for (i = 0; i < f->num_children; i++) {
        c = image_get(ss, f->children[i]);
        if (c && c->internal_records) return 0;   /* they read F: it stays */
    }
    c = image_get(ss, f->children[0]);
    if (f->num_children == 1 && c && c->qcow2) {
        /* commit: c goes, f keeps the union */
        if (image_own(ss, c) || image_own(ss, f)) return 0;
        grows = extents_minus(&c->own, &f->inplace);
        return c->allocated > grows ? c->allocated - grows : 0;
    }
    /* stream into each: f goes, each grows by what of f it lacks */
    if (!f->backing || f->internal_records) return 0;
    if (image_own(ss, f)) return 0;
    for (i = 0; i < f->num_children; i++) {
        c = image_get(ss, f->children[i]);
        if (!c || image_own(ss, c)) return 0;
        grows += extents_minus(&f->own, &c->inplace);
    }
    gain = f->allocated;
    return gain > grows ? gain - grows : 0;
}

static void external_size(size_state *ss, const libxlsnap_disk_snapshot *ds,
                          libxlsnap_disk_size *dz)
{
    libxl__gc *gc = ss->gc;
    size_image *im = image_get(ss, ds->file);

    if (!im) {
        problem(gc, dz, "no image");
        return;
    }
    image_stat(ss, im);
    if (!im->stat_ok) {
        problem(gc, dz, GCSPRINTF("%s: missing", im->path));
        return;
    }
    if (!im->is_file) {
        problem(gc, dz, GCSPRINTF("%s: not a file", im->path));
        return;
    }
    dz->allocated = im->allocated;
    /* its internal snapshots' clusters are theirs, not counted twice */
    image_probe(ss, im);
    if (im->qcow2 && im->q.num_snaps && !image_exclusive(ss, im)) {
        int i;
        for (i = 0; i < im->q.num_snaps; i++)
            dz->allocated -= im->excl[i] < dz->allocated
                ? im->excl[i] : dz->allocated;
    }
    dz->frees = external_frees(ss, im, ds);
    /* an image whose backing is not known: what is built on what is not */
    if (ss->unreadable && ds->format != LIBXL_DISK_FORMAT_VHD)
        problem(gc, dz, GCSPRINTF("%s: its qcow2 header cannot be read",
                                  ss->unreadable));
}

static void lvm_size(size_state *ss, const libxlsnap_disk_snapshot *ds,
                     libxlsnap_disk_size *dz)
{
    libxl__gc *gc = ss->gc;
    libxl__lvm_volume snap;
    const char *p;

    memset(&snap, 0, sizeof(snap));
    p = libxl__lvm_snapshot_state(gc, &ss->lvm, ds, NULL, &snap);
    if (!snap.lv) {
        problem(gc, dz, p ? p : "snapshot volume not found");
        return;
    }
    dz->cow_size = snap.size;
    if (snap.use_percent >= 0)
        dz->cow = (uint64_t)(snap.size * (snap.use_percent / 100.0));
    if (!snap.thin) {
        dz->frees = snap.size;      /* the whole volume goes */
    } else if (!p) {
        /* its mapped blocks are shared with its origin until either is
         * written: which the pool frees is in the pool's metadata
         * (thin_ls), not in lvs */
        p = snap.use_percent < 0
            ? "inactive thin snapshot: lvs measures it only when active"
            : "thin snapshot: lvs does not say which of its blocks "
              "its origin shares";
    }
    if (p) problem(gc, dz, p);
}

static void rbd_size(size_state *ss, const libxlsnap_disk_snapshot *ds,
                     libxlsnap_disk_size *dz)
{
    libxl__gc *gc = ss->gc;
    yajl_val snaps;
    int i;

    for (i = 0; i < ss->num_rbd; i++)
        if (!strcmp(ss->rbd[i].spec, ds->file)) break;
    if (i == ss->num_rbd) {
        GCREALLOC_ARRAY(ss->rbd, ss->num_rbd + 1);
        ss->rbd[i].spec = ds->file;
        ss->rbd[i].rc = libxl__rbd_du(gc, ds->file, &ss->rbd[i].v,
                                      &ss->rbd[i].why);
        ss->num_rbd++;
    }
    if (ss->rbd[i].rc) {
        problem(gc, dz, GCSPRINTF("%s: %s", ds->file, ss->rbd[i].why
                                       ? ss->rbd[i].why : "rbd du failed"));
        return;
    }
    snaps = libxl__json_get(ss->rbd[i].v, "snapshots");
    for (i = 0; snaps && YAJL_IS_ARRAY(snaps) &&
             i < (int)snaps->u.array.len; i++) {
        yajl_val s = snaps->u.array.values[i];
        const char *n = libxl__json_get_string(s, "name");
        if (n && ds->tag && !strcmp(n, ds->tag)) {
            dz->rbd = dz->frees = libxl__json_get_integer(s, "used", 0);
            return;
        }
    }
    problem(gc, dz, GCSPRINTF("%s has no snapshot '%s'", ds->file,
                                   ds->tag ? ds->tag : "?"));
}

static void snapshot_size(size_state *ss, const libxlsnap_domain_snapshot *s,
                          libxlsnap_snapshot_size *z)
{
    size_image *im;
    int i;

    z->name = strdup(s->name);
    if (!z->name) abort();
    if (s->memory) {
        im = image_get(ss, s->memory);
        if (im) image_stat(ss, im);
        if (im && im->stat_ok) z->memory = im->allocated;
        else z->memory_problem = libxl__gc_strdup(NOGC,
                 libxl__gc_sprintf(ss->gc, "%s: missing", s->memory));
    }
    z->own = z->frees = z->memory;
    z->disks = calloc(s->num_disks ? s->num_disks : 1, sizeof(*z->disks));
    if (!z->disks) abort();
    z->num_disks = s->num_disks;
    for (i = 0; i < s->num_disks; i++) {
        const libxlsnap_disk_snapshot *ds = &s->disks[i];
        libxlsnap_disk_size *dz = &z->disks[i];

        dz->vdev = strdup(ds->vdev ? ds->vdev : "");
        if (!dz->vdev) abort();
        dz->type = ds->type;
        switch (ds->type) {
        case LIBXLSNAP_DISK_SNAPSHOT_TYPE_INTERNAL:
            internal_size(ss, ds, dz);
            break;
        case LIBXLSNAP_DISK_SNAPSHOT_TYPE_EXTERNAL:
            external_size(ss, ds, dz);
            break;
        case LIBXLSNAP_DISK_SNAPSHOT_TYPE_LVM:
            lvm_size(ss, ds, dz);
            break;
        case LIBXLSNAP_DISK_SNAPSHOT_TYPE_RBD:
            rbd_size(ss, ds, dz);
            break;
        default:
            break;
        }
        z->own += dz->allocated + dz->exclusive + dz->cow + dz->rbd;
        z->frees += dz->frees;
    }
}

/* ---------------------------------------------------------------- */
/* the call */

int libxlsnap_domain_snapshot_sizes(libxlsnap_ctx *ctx, const char *domain,
                                    const char *name,
                                    libxlsnap_domain_sizes *sizes_r)
{
    if (ARGS_MISSING(ctx, domain, sizes_r)) return ERROR_INVAL;
    GC_INIT(ctx);
    libxl__snapshot_tree t;
    size_state ss = { .gc = gc };
    libxlsnap_domain_sizes *r = sizes_r;
    int i, j, k, rc;

    libxlsnap_domain_sizes_init(r);
    rc = libxl__snapshot_tree_load(gc, domain, NULL, &t);
    if (rc) goto out;
    for (i = 0; name && i < t.num_snaps; i++)
        if (!strcmp(t.snaps[i].name, name)) break;
    if (name && i == t.num_snaps) {
        LOG(ERROR, "domain %s has no snapshot '%s'", t.dom.name,
            libxl__printable(gc, name));
        rc = ERROR_NOTFOUND;
        goto out;
    }
    /* every image the records know: topology and memory images */
    for (i = 0; i < t.dom.num_disks; i++)
        image_add(&ss, t.dom.disks[i].path, t.dom.disks[i].format);
    for (i = 0; i < t.num_snaps; i++) {
        image_add(&ss, t.snaps[i].memory, LIBXL_DISK_FORMAT_RAW);
        for (j = 0; j < t.snaps[i].num_disks; j++) {
            const libxlsnap_disk_snapshot *ds = &t.snaps[i].disks[j];
            if (ds->type != LIBXLSNAP_DISK_SNAPSHOT_TYPE_INTERNAL &&
                ds->type != LIBXLSNAP_DISK_SNAPSHOT_TYPE_EXTERNAL)
                continue;
            /* (an internal snapshot is in a qcow2 image) */
            image_add(&ss, ds->file,
                      ds->type == LIBXLSNAP_DISK_SNAPSHOT_TYPE_INTERNAL &&
                      ds->format == LIBXL_DISK_FORMAT_UNKNOWN
                      ? LIBXL_DISK_FORMAT_QCOW2 : ds->format);
            /* the overlay xl made: qcow2 but on a VHD (VHD, or qcow2
             * when live: the record does not say) */
            if (ds->type == LIBXLSNAP_DISK_SNAPSHOT_TYPE_EXTERNAL)
                image_add(&ss, ds->overlay,
                          ds->format == LIBXL_DISK_FORMAT_VHD
                          ? LIBXL_DISK_FORMAT_UNKNOWN
                          : LIBXL_DISK_FORMAT_QCOW2);
        }
    }
    images_index(&ss);
    for (i = 0; i < t.dom.num_disks; i++) {
        size_image *im = image_get(&ss, t.dom.disks[i].path);
        if (im) im->active = true;
    }
    for (i = 0; i < t.num_snaps; i++)
        for (j = 0; j < t.snaps[i].num_disks; j++) {
            const libxlsnap_disk_snapshot *ds = &t.snaps[i].disks[j];
            size_image *im = image_get(&ss, ds->file);
            if (im && ds->type == LIBXLSNAP_DISK_SNAPSHOT_TYPE_INTERNAL)
                im->internal_records++;
        }

    r->domain = strdup(t.dom.name ? t.dom.name : domain);
    if (!r->domain) abort();
    libxl_uuid_copy(NULL, &r->uuid, &t.dom.uuid);
    r->snapshots = calloc(t.num_snaps ? t.num_snaps : 1,
                          sizeof(*r->snapshots));
    if (!r->snapshots) abort();
    for (i = 0; i < t.num_snaps; i++) {
        libxlsnap_snapshot_size *z;
        if (name && strcmp(t.snaps[i].name, name)) continue;
        z = &r->snapshots[r->num_snapshots++];
        snapshot_size(&ss, &t.snaps[i], z);
        r->memory += z->memory;
        r->total += z->own;
        for (j = 0; j < z->num_disks; j++) {
            const libxlsnap_disk_size *dz = &z->disks[j];
            for (k = 0; k < r->num_disks; k++)
                if (!strcmp(r->disks[k].vdev, dz->vdev)) break;
            if (k == r->num_disks) {
                r->disks = realloc(r->disks, (k + 1) * sizeof(*r->disks));
                if (!r->disks) abort();
                r->disks[k].vdev = strdup(dz->vdev);
                if (!r->disks[k].vdev) abort();
                r->disks[k].own = 0;
                r->num_disks++;
            }
            r->disks[k].own += dz->allocated + dz->exclusive + dz->cow +
                dz->rbd;
        }
    }
    rc = 0;
 out:
    images_close(&ss);
    if (rc) {
        libxlsnap_domain_sizes_dispose(r);
        libxlsnap_domain_sizes_init(r);
    }
    GC_FREE;
    return rc;
}

void libxlsnap_domain_sizes_init(libxlsnap_domain_sizes *p)
{
    if (p) memset(p, 0, sizeof(*p));
}

void libxlsnap_domain_sizes_dispose(libxlsnap_domain_sizes *p)
{
    int i, j;

    if (!p) return;
    for (i = 0; i < p->num_snapshots; i++) {
        libxlsnap_snapshot_size *z = &p->snapshots[i];
        for (j = 0; j < z->num_disks; j++) {
            free(z->disks[j].vdev);
            free(z->disks[j].problem);
        }
        free(z->disks);
        free(z->name);
        free(z->memory_problem);
    }
    free(p->snapshots);
    for (i = 0; i < p->num_disks; i++) free(p->disks[i].vdev);
    free(p->disks);
    free(p->domain);
    memset(p, 0, sizeof(*p));
}

char *libxlsnap_domain_sizes_to_json(libxlsnap_ctx *ctx,
                                     const libxlsnap_domain_sizes *p)
{
    if (ARGS_MISSING_CTX_OPTIONAL(ctx, p)) return NULL;
    GC_INIT(ctx);
    yajl_val o = libxl__json_new_object(gc), snaps, disks, v, d;
    char *s, *r;
    int i, j;

    libxl__json_add_string(gc, &o, "domain", p->domain);
    snaps = libxl__json_add_array(gc, &o, "snapshots");
    for (i = 0; i < p->num_snapshots; i++) {
        const libxlsnap_snapshot_size *z = &p->snapshots[i];
        v = libxl__json_append_object(gc, snaps);
        libxl__json_add_string(gc, &v, "name", z->name);
        libxl__json_add_uint64(gc, &v, "memory", z->memory);
        libxl__json_add_string(gc, &v, "memory_problem", z->memory_problem);
        libxl__json_add_uint64(gc, &v, "own", z->own);
        libxl__json_add_uint64(gc, &v, "frees", z->frees);
        disks = libxl__json_add_array(gc, &v, "disks");
        for (j = 0; j < z->num_disks; j++) {
            const libxlsnap_disk_size *dz = &z->disks[j];
            d = libxl__json_append_object(gc, disks);
            libxl__json_add_string(gc, &d, "vdev", dz->vdev);
            libxl__json_add_string(gc, &d, "type",
                libxlsnap_disk_snapshot_type_to_string(dz->type));
            libxl__json_add_uint64(gc, &d, "allocated", dz->allocated);
            libxl__json_add_uint64(gc, &d, "exclusive", dz->exclusive);
            libxl__json_add_uint64(gc, &d, "cow", dz->cow);
            libxl__json_add_uint64(gc, &d, "cow_size", dz->cow_size);
            libxl__json_add_uint64(gc, &d, "rbd", dz->rbd);
            libxl__json_add_uint64(gc, &d, "frees", dz->frees);
            libxl__json_add_string(gc, &d, "problem", dz->problem);
        }
    }
    disks = libxl__json_add_array(gc, &o, "disks");
    for (i = 0; i < p->num_disks; i++) {
        d = libxl__json_append_object(gc, disks);
        libxl__json_add_string(gc, &d, "vdev", p->disks[i].vdev);
        libxl__json_add_uint64(gc, &d, "own", p->disks[i].own);
    }
    libxl__json_add_uint64(gc, &o, "memory", p->memory);
    libxl__json_add_uint64(gc, &o, "total", p->total);
    s = libxl__json_to_string(gc, o);
    r = s ? strdup(s) : NULL;
    GC_FREE;
    return r;
}
