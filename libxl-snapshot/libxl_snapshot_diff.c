/*
 * libxl_snapshot_diff.c - snapshot-diff: the changed extents of each
 * disk between two points (two snapshots, or one and now)
 *
 * A point of a disk is an image and a state of it: an external
 * snapshot's is the image it froze, in that image's own (active) state;
 * an internal one's is its image at the qcow2 snapshot (the tag); now
 * is the active image.  From point A to point B, with A's image in B's
 * backing chain (B's image on top, index 0, A's at index k):
 *  - k > 0: the union of what each layer above A's image holds of its
 *    own (the data B reads from them, and no other, can differ from A):
 *    layers in their active state by `qemu-img map` of the layer alone
 *    (opened with "backing": null, its "present" extents: data or zero
 *    clusters), no guest data read (ALLOCATION); B's image at a tag by
 *    that snapshot's L1/L2 tables (MAPPING); and when A is a tag of its
 *    image, the clusters where that tag and the image's active state
 *    differ (below);
 *  - k == 0 (two states of one qcow2 image, internal snapshots): the
 *    clusters whose L1/L2 mapping differs (MAPPING), read from the
 *    image's own snapshot table and tables; then the data of the
 *    clusters that map to data on both sides (or data against zeros) is
 *    read and compared, and equal ones are left out (COMPARE; not with
 *    LIBXLSNAP_DIFF_NO_DATA).  A snapshot's L2 tables are shared with
 *    the active ones (refcount > 1), which QEMU copies before it writes
 *    them, so a snapshot's tables on disk never change under us.
 * A's image must be in B's chain (a commit, copy or stream since moved
 * the data: refused), and A's snapshot B's ancestor in the records;
 * but for a tag of an image that a revert copied out after an external
 * snapshot froze it (revert.c): B's chain then has the copy on A's
 * image's own backing, and the two are compared above it (copied_diff).
 *
 * Now, on a running domain: the active image's metadata (qemu-img map
 * reads it, as does the table walk) is what the file holds, which lags
 * QEMU's caches; so QEMU is first told "stop" (which drains and flushes
 * every image), then "cont" if it ran: the guest is paused for the
 * flush only.  What it writes after that may or may not be seen: now is
 * the instant of the flush.
 *
 * Checkpoints (from a checkpoint to a later one, or now): per disk, the
 * union of the bitmaps libxl__checkpoint_bitmaps names (checkpoint.c), over
 * every layer of the disk's chain that has them, checked trustworthy
 * (libxl__checkpoint_union_problem), read over NBD (the client:
 * libxl_snapshot_nbd.c): offline, `qemu-nbd -r -B NAME...` of each
 * layer; live, QEMU's own view: the union merged into a temporary,
 * disabled, non-persistent bitmap on the active node (one transaction:
 * one instant; QEMU refuses to export an enabled bitmap of a node the
 * guest writes), exported read-only by nbd-server-start on a unix
 * socket of the run dir and block-export-add, read, and all removed
 * (a killed diff's leftovers, its socket says so, by the next one).
 *
 * Everything here is quick and synchronous, under the domain's lock
 * (no operation changes a chain meanwhile), after the recovery every
 * operation does.  The table walk and the extent merge are pure, for
 * the unit tests (suite "diff").
 */
#include <endian.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yajl/yajl_parse.h>

#include "libxl_snapshot_internal.h"

/* ---------------------------------------------------------------- */
/* extents */

void libxl__extents_add(libxl__gc *gc, libxl__extents *x, uint64_t off,
                        uint64_t len)
{
    if (!len) return;
    /* a run of clusters: grow the last extent */
    if (x->n && x->e[x->n - 1].offset + x->e[x->n - 1].length == off) {
        x->e[x->n - 1].length += len;
        return;
    }
    if (x->n == x->alloc) {
        x->alloc = x->alloc ? x->alloc * 2 : 64;
        x->e = libxl__gc_realloc(gc, x->e, x->alloc * sizeof(*x->e));
    }
    x->e[x->n].offset = off;
    x->e[x->n].length = len;
    x->n++;
}

static int extent_cmp(const void *a, const void *b)
{
    const libxlsnap_extent *p = a, *q = b;

    return p->offset < q->offset ? -1 : p->offset > q->offset;
}

int libxl__extents_merge(libxlsnap_extent *e, int n)
{
    int i, m = 0;

    if (n <= 1) return n;
    qsort(e, n, sizeof(*e), extent_cmp);
    for (i = 1; i < n; i++) {
        uint64_t end = e[m].offset + e[m].length;
        if (e[i].offset <= end) {
            if (e[i].offset + e[i].length > end)
                e[m].length = e[i].offset + e[i].length - e[m].offset;
        } else {
            e[++m] = e[i];
        }
    }
    return m + 1;
}

void libxl__extents_clip(libxl__extents *x, uint64_t size)
{
    int i, m = 0;

    for (i = 0; i < x->n; i++) {
        if (x->e[i].offset >= size) continue;
        if (x->e[i].offset + x->e[i].length > size)
            x->e[i].length = size - x->e[i].offset;
        x->e[m++] = x->e[i];
    }
    x->n = m;
}

/* ---------------------------------------------------------------- */
/* qemu-img map of one layer */

/*
 * qemu-img map's JSON is one object per extent, allocated or not: a
 * 1 GiB overlay with 8,192 extents is 1.7 MB of it, which a yajl tree
 * takes 70 ms to build; yajl's callbacks take a few.  One level of
 * array, objects of numbers and booleans (and strings we skip).
 */
typedef struct {
    libxl__gc *gc;
    libxl__extents *x;
    int depth;
    int key;                          /* MAP_KEY_* of the next value */
    long long start, length;
    bool present, bad, seen;
} map_parse;
enum { MAP_KEY_OTHER, MAP_KEY_START, MAP_KEY_LENGTH, MAP_KEY_PRESENT };

static int map_start_map(void *ctx)
{
    map_parse *m = ctx;

    if (++m->depth != 2) return m->bad = true, 0;
    m->start = m->length = -1;
    m->present = false;
    return 1;
}

static int map_key(void *ctx, const unsigned char *k, size_t len)
{
    map_parse *m = ctx;

    m->key = len == 5 && !memcmp(k, "start", 5) ? MAP_KEY_START
        : len == 6 && !memcmp(k, "length", 6) ? MAP_KEY_LENGTH
        : len == 7 && !memcmp(k, "present", 7) ? MAP_KEY_PRESENT
        : MAP_KEY_OTHER;
    return 1;
}

static int map_integer(void *ctx, long long v)
{
    map_parse *m = ctx;

    if (m->key == MAP_KEY_START) m->start = v;
    else if (m->key == MAP_KEY_LENGTH) m->length = v;
    return 1;
}

static int map_boolean(void *ctx, int b)
{
    map_parse *m = ctx;

    if (m->key == MAP_KEY_PRESENT) m->present = b;
    return 1;
}

static int map_other(void *ctx)
{
    return 1;
}

static int map_string(void *ctx, const unsigned char *s, size_t len)
{
    return 1;
}

static int map_end_map(void *ctx)
{
    map_parse *m = ctx;

    m->depth--;
    if (m->start < 0 || m->length < 0) return m->bad = true, 0;
    if (m->present) libxl__extents_add(m->gc, m->x, m->start, m->length);
    return 1;
}

static int map_start_array(void *ctx)
{
    map_parse *m = ctx;

    if (++m->depth != 1) return m->bad = true, 0;
    m->seen = true;
    return 1;
}

static int map_end_array(void *ctx)
{
    map_parse *m = ctx;

    m->depth--;
    return 1;
}

int libxl__qemu_img_map_parse(libxl__gc *gc, const char *json,
                              libxl__extents *x)
{
    static const yajl_callbacks cb = {
        .yajl_null = map_other,
        .yajl_boolean = map_boolean,
        .yajl_integer = map_integer,
        .yajl_double = NULL,          /* none expected: an error */
        .yajl_string = map_string,
        .yajl_start_map = map_start_map,
        .yajl_map_key = map_key,
        .yajl_end_map = map_end_map,
        .yajl_start_array = map_start_array,
        .yajl_end_array = map_end_array,
    };
    map_parse m = { .gc = gc, .x = x };
    yajl_handle h;
    yajl_status st;
    if (!json) return ERROR_FAIL;
    h = yajl_alloc(&cb, NULL, &m);
    if (!h) abort();
    st = yajl_parse(h, (const unsigned char *)json, strlen(json));
    if (st == yajl_status_ok) st = yajl_complete_parse(h);
    yajl_free(h);
    return st == yajl_status_ok && !m.bad && !m.depth && m.seen
        ? 0 : ERROR_FAIL;
}

/* what image (qcow2) holds of its own: its map with no backing */
static int layer_allocation(libxl__gc *gc, const char *image,
                            libxl__extents *x)
{
    yajl_val spec = NULL, file;
    libxl__flexarray *a = libxl__flexarray_new(gc);
    char *out = NULL, *err = NULL;
    int rc;

    libxl__json_add_string(gc, &spec, "driver", "qcow2");
    libxl__json_add(gc, &spec, "backing", libxl__json_new_null(gc));
    file = libxl__json_add_object(gc, &spec, "file");
    libxl__json_add_string(gc, &file, "driver", "file");
    libxl__json_add_string(gc, &file, "filename", image);
    libxl__flexarray_append_pair(a, CTX->qemu_img, "map");
    libxl__flexarray_append_pair(a, "--output=json", "-U");
    libxl__flexarray_append(a, GCSPRINTF("json:%s",
                                         libxl__json_to_string(gc, spec)));
    rc = libxl__exec_sync(gc, a->data, 120000, &out, &err);
    if (rc) {
        const char *line = libxl__tool_error_line(gc, err);
        LOG(ERROR, "cannot map the allocation of '%s': %s", image,
            line ? line : "qemu-img map failed");
        return rc;
    }
    rc = libxl__qemu_img_map_parse(gc, out, x);
    if (rc) LOG(ERROR, "unexpected qemu-img map output for '%s'", image);
    return rc;
}

/* ---------------------------------------------------------------- */
/* the operation */

/* A point of one disk: its image, and the tag (NULL: its own state) */
typedef struct {
    const char *image;
    const char *tag;
    libxl_disk_format format;         /* image's, as the records say */
} diff_point;

typedef struct {
    libxl__ao *ao;
    libxl__snapshot_op op;
    const char *from, *to, *vdev;     /* to NULL: now */
    bool now_now;                     /* FROM "now" (a snapshot), TO now */
    const char *others;               /* a disk's refusal: how to diff the
                                         others (several disks), or "" */
    unsigned flags;
    libxlsnap_domain_diff *diff_r;
} diff_state;

static void diff_begun(libxl__egc *egc, libxl__snapshot_op *op, int rc);

int libxlsnap_domain_snapshot_diff(libxlsnap_ctx *ctx, const char *domain,
                                   const char *from, const char *to,
                                   const char *vdev, unsigned flags,
                                   libxlsnap_domain_diff *diff_r,
                                   const libxl_asyncop_how *ao_how)
{
    if (ARGS_MISSING(ctx, domain, from, diff_r) ||
        FLAGS_UNKNOWN(ctx, flags, LIBXLSNAP_DIFF_NO_DATA))
        return ERROR_INVAL;
    libxlsnap_domain_diff_init(diff_r);
    AO_CREATE(ctx, ao_how);
    EGC_INIT(ctx);
    diff_state *ds;

    GCNEW(ds);
    ds->ao = ao;
    ds->from = GCSTRDUP(from);
    ds->to = to && strcmp(to, "now") ? GCSTRDUP(to) : NULL;
    ds->now_now = to && !strcmp(to, "now") && !strcmp(from, "now");
    ds->vdev = GCSTRDUP(vdev);
    ds->flags = flags;
    ds->diff_r = diff_r;
    ds->op.ao = ao;
    ds->op.domain = GCSTRDUP(domain);
    ds->op.callback = diff_begun;
    libxl__snapshot_op_begin(egc, &ds->op);
    EGC_FREE;
    return AO_INPROGRESS;
}

/* Is anc an ancestor of (or, or_self, the same as) name in t? */
static bool is_ancestor(libxl__snapshot_tree *t, const char *anc,
                        const char *name, bool or_self)
{
    libxlsnap_domain_snapshot *s = libxl__snapshot_tree_find(t, name);
    int guard = t->num_snaps + 1;

    if (s && !or_self) s = s->parent ? libxl__snapshot_tree_find(t, s->parent)
                                     : NULL;
    for (; s && guard--; s = s->parent ? libxl__snapshot_tree_find(t, s->parent)
                                       : NULL)
        if (!strcmp(s->name, anc)) return true;
    return false;
}

static const libxlsnap_disk_snapshot *snapshot_disk(
    const libxlsnap_domain_snapshot *s, const char *vdev)
{
    int i;

    for (i = 0; i < s->num_disks; i++)
        if (s->disks[i].vdev && !strcmp(s->disks[i].vdev, vdev))
            return &s->disks[i];
    return NULL;
}

/* ds's point, or ERROR_INVAL (said) for a kind this does not diff */
static int disk_point(libxl__gc *gc, const char *snapshot,
                      const libxlsnap_disk_snapshot *d, diff_point *p)
{
    switch (d->type) {
    case LIBXLSNAP_DISK_SNAPSHOT_TYPE_INTERNAL:
        p->image = d->file;
        p->tag = d->tag;
        p->format = LIBXL_DISK_FORMAT_QCOW2;
        break;
    case LIBXLSNAP_DISK_SNAPSHOT_TYPE_EXTERNAL:
        if (d->format == LIBXL_DISK_FORMAT_VHD) goto refused;
        p->image = d->file;
        p->tag = NULL;
        p->format = d->format;
        break;
    default:
        goto refused;
    }
    if (!p->image || (p->tag && !*p->tag)) {
        LOG(ERROR, "snapshot '%s': disk %s names no image", snapshot,
            d->vdev);
        return ERROR_INVAL;
    }
    return 0;
 refused:
    LOG(ERROR, "snapshot '%s': disk %s is a%s %s snapshot: snapshot-diff "
        "reads qcow2 internal and external snapshots only", snapshot,
        d->vdev, d->type == LIBXLSNAP_DISK_SNAPSHOT_TYPE_LVM ? "n" : "",
        d->format == LIBXL_DISK_FORMAT_VHD ? "VHD"
        : libxlsnap_disk_snapshot_type_to_string(d->type));
    return ERROR_INVAL;
}

/*
 * The extents where two states of one qcow2 image differ (a tag, NULL:
 * the active state); none_a: state b's own clusters (its allocation).
 */
static int image_states_diff(libxl__gc *gc, const char *image,
                             const char *tag_a, bool none_a,
                             const char *tag_b, bool data,
                             libxl__extents *x, uint64_t *cluster_r,
                             unsigned *methods_r)
{
    libxl__qcow2 q;
    libxl__qcow2_l1 a, b;
    int rc;

    rc = libxl__qcow2_open(gc, image, &q);
    if (rc) return rc;
    *cluster_r = q.cluster_size;
    /* extended L2 entries (subclusters): the mapping only, no data
     * compared (libxl__qcow2_diff), and the method says so */
    if (q.extended_l2) data = false;
    *methods_r |= LIBXLSNAP_DIFF_MAPPING | (data ? LIBXLSNAP_DIFF_COMPARE : 0);
    rc = none_a ? 0 : libxl__qcow2_state(gc, &q, tag_a, &a);
    if (!rc) rc = libxl__qcow2_state(gc, &q, tag_b, &b);
    if (!rc) rc = libxl__qcow2_diff(gc, &q, none_a ? NULL : &a, &b, data, x);
    libxl__qcow2_close(&q);
    return rc;
}

static void granularity_min(uint64_t *g, uint64_t c)
{
    if (c && (!*g || c < *g)) *g = c;
}

/* x, merged and cut at dd->size, into dd (malloc: the caller's) */
static int extents_out(libxl__extents *x, libxlsnap_disk_diff *dd)
{
    int i;

    x->n = libxl__extents_merge(x->e, x->n);
    libxl__extents_clip(x, dd->size);
    dd->num_extents = x->n;
    dd->extents = calloc(x->n ? x->n : 1, sizeof(*dd->extents));
    if (!dd->extents) abort();
    for (i = 0; i < x->n; i++) {
        dd->extents[i] = x->e[i];
        dd->total += x->e[i].length;
    }
    return 0;
}

/* The layers of b's image's chain above a's image (top first). */
typedef struct {
    const char *file;
    bool qcow2;
    uint64_t cluster_size;
} diff_layer;

/*
 * Found by reading the images' own headers, the backing file names
 * (no process: qemu-img info of the chain is a fifth of a diff's time):
 * 1 and *layers_r, *k_r, *size_r (b's virtual size), and *len_r when
 * the chain ends at a raw layer without a; 0 when the chain has what
 * this does not follow (a protocol or json: name, a layer of another
 * format or of none said, a loop), for qemu-img to read; or ERROR_*.
 * Each layer's format is the one the records give top, then the one
 * each header gives its backing file: never guessed from what a file
 * starts with (a raw image's bytes are the guest's, which may write a
 * qcow2 header there).
 */
static int chain_by_headers(libxl__gc *gc, const char *top,
                            libxl_disk_format top_format, const char *a,
                            diff_layer **layers_r, int *k_r, int *len_r,
                            uint64_t *size_r)
{
    diff_layer *l = NULL;
    const char *img = top;
    libxl_disk_format fmt = top_format;
    int k, rc;

    for (k = 0; k < 64; k++) {
        libxl__qcow2 q;
        const char *b;
        bool is_a = libxl__image_same(gc, img, a);
        struct stat st;

        if (is_a && k) {
            *layers_r = l;
            *k_r = k;
            return 1;
        }
        if (!libxl__image_is_file(img)) return 0;
        if (fmt == LIBXL_DISK_FORMAT_RAW) {
            /* raw, whatever it starts with: no backing */
            if (stat(img, &st)) return 0;
            if (!k) *size_r = st.st_size;
            if (!is_a) {
                GCREALLOC_ARRAY(l, k + 1);
                l[k].file = img;
                l[k].qcow2 = false;
                l[k].cluster_size = 0;
                *len_r = k + 1;
            }
            *layers_r = l;
            *k_r = is_a ? 0 : k + 1;
            return 1;
        }
        if (fmt != LIBXL_DISK_FORMAT_QCOW2) return 0;
        rc = libxl__qcow2_open(gc, img, &q);
        if (rc) return 0;                 /* qemu-img says why */
        libxl__qcow2_close(&q);
        if (!k) *size_r = q.size;
        if (is_a) {                       /* a is b's image itself */
            *layers_r = l;
            *k_r = 0;
            return 1;
        }
        GCREALLOC_ARRAY(l, k + 1);
        l[k].file = img;
        l[k].qcow2 = true;
        l[k].cluster_size = q.cluster_size;
        b = q.backing;
        if (!b || !*b) return 0;          /* a not in it: qemu-img says */
        if (!strncmp(b, "json:", 5) || (strchr(b, ':') && b[0] != '/'))
            return 0;
        if (!q.backing_format ||
            libxl__disk_format_from_qemu(q.backing_format, &fmt))
            return 0;
        img = b[0] == '/' ? b
            : GCSPRINTF("%s/%s", libxl__path_dirname(gc, img), b);
    }
    return 0;
}

/* the same from qemu-img info --backing-chain; k: the chain's length
 * when a is not in it */
static int chain_by_qemu_img(libxl__gc *gc, const char *vdev,
                             const char *top, const char *a,
                             diff_layer **layers_r, int *k_r,
                             int *len_r, uint64_t *size_r)
{
    yajl_val chain;
    diff_layer *l;
    char *err = NULL;
    size_t k;

    chain = libxl__qemu_img_info_sync(gc, top, true, &err);
    if (!chain || !YAJL_IS_ARRAY(chain) || !chain->u.array.len) {
        LOG(ERROR, "disk %s: cannot read the backing chain of '%s': %s",
            vdev, top, err ? err : "unexpected qemu-img info output");
        return ERROR_FAIL;
    }
    GCNEW_ARRAY(l, chain->u.array.len);
    for (k = 0; k < chain->u.array.len; k++) {
        yajl_val v = chain->u.array.values[k];
        const char *fmt = libxl__json_get_string(v, "format");
        l[k].file = libxl__json_get_string(v, "filename");
        l[k].qcow2 = fmt && !strcmp(fmt, "qcow2");
        l[k].cluster_size = libxl__json_get_integer(v, "cluster-size", 0);
        if (libxl__image_same(gc, l[k].file, a)) break;
    }
    *size_r = libxl__json_get_integer(chain->u.array.values[0],
                                      "virtual-size", 0);
    *layers_r = l;
    *k_r = k;
    *len_r = chain->u.array.len;
    return 0;
}

/*
 * a is a tag of an image that is not in b's chain: a revert to it after
 * an external snapshot froze its image copied its state out into a new
 * image on the same backing (revert.c), which b's chain has.  Both
 * chains meet at that backing (or both end): from it up, the clusters
 * either side holds of its own, those of a one qcow2 image compared
 * with those of the tag (COMPARE), else all of them (ALLOCATION).
 */
static int copied_diff(libxl__gc *gc, diff_state *st, const diff_point *a,
                       const diff_point *b, const diff_layer *layers,
                       int len, libxlsnap_disk_diff *dd)
{
    bool data = !(st->flags & LIBXLSNAP_DIFF_NO_DATA);
    const char *vdev = dd->vdev, *base = NULL;
    libxl__qcow2 qa, qb;
    libxl__qcow2_l1 la, lb;
    libxl__extents x = { 0 };
    int m, i, rc;

    rc = libxl__qcow2_open(gc, a->image, &qa);
    if (rc) return rc;
    libxl__qcow2_close(&qa);
    if (qa.backing && *qa.backing)
        base = qa.backing[0] == '/' ? qa.backing
            : GCSPRINTF("%s/%s", libxl__path_dirname(gc, a->image),
                        qa.backing);
    /* m: the layers of b above the backing they share (all: none) */
    for (m = 0; base && m < len; m++)
        if (layers[m].file && libxl__image_same(gc, layers[m].file, base))
            break;
    if (!base) m = len;
    if (!m || (base && m == len)) {
        LOG(ERROR, "disk %s: %s's image '%s' is not in the backing chain of "
            "'%s'%s%s%s: the two share no image, no diff%s", vdev,
            st->from, a->image, b->image, base ? ", nor is its backing '" : "",
            base ? base : "", base ? "'" : "", st->others);
        return ERROR_INVAL;
    }
    for (i = 0; i < m; i++)
        if (!layers[i].file || !layers[i].qcow2) {
            LOG(ERROR, "disk %s: '%s' is not a qcow2 image: only qcow2 "
                "overlays say what they hold", vdev,
                layers[i].file ? layers[i].file : "?");
            return ERROR_INVAL;
        }
    rc = libxl__qcow2_open(gc, a->image, &qa);
    if (rc) return rc;
    rc = libxl__qcow2_open(gc, layers[0].file, &qb);
    if (rc) goto out_a;
    rc = libxl__qcow2_state(gc, &qa, a->tag, &la);
    if (!rc) rc = libxl__qcow2_state(gc, &qb, b->tag, &lb);
    if (rc) goto out;
    dd->size = lb.size;
    granularity_min(&dd->granularity, qa.cluster_size);
    granularity_min(&dd->granularity, qb.cluster_size);
    if (m == 1 && qa.cluster_size == qb.cluster_size &&
        !qa.extended_l2 && !qb.extended_l2) {
        /* the common case: the copy, written since, against the tag */
        rc = libxl__qcow2_diff2(gc, &qa, &la, &qb, &lb, data, &x);
        dd->methods |= LIBXLSNAP_DIFF_MAPPING |
            (data ? LIBXLSNAP_DIFF_COMPARE : 0);
        goto out;
    }
    /* the tag's own clusters, and each layer's above the backing */
    rc = libxl__qcow2_diff(gc, &qa, NULL, &la, false, &x);
    if (!rc) rc = libxl__qcow2_diff(gc, &qb, NULL, &lb, false, &x);
    dd->methods |= LIBXLSNAP_DIFF_MAPPING;
    for (i = 1; !rc && i < m; i++) {
        granularity_min(&dd->granularity, layers[i].cluster_size);
        rc = layer_allocation(gc, layers[i].file, &x);
        dd->methods |= LIBXLSNAP_DIFF_ALLOCATION;
    }
 out:
    libxl__qcow2_close(&qb);
 out_a:
    libxl__qcow2_close(&qa);
    if (rc) return rc;
    return extents_out(&x, dd);
}

/* One disk from point a to point b, into dd (vdev set). */
static int disk_diff(libxl__gc *gc, diff_state *st, const diff_point *a,
                     const diff_point *b, libxlsnap_disk_diff *dd)
{
    bool data = !(st->flags & LIBXLSNAP_DIFF_NO_DATA);
    const char *vdev = dd->vdev;
    libxl__extents x = { 0 };
    diff_layer *layers = NULL;
    uint64_t cluster = 0;
    int k = 0, len = -1, i, rc;

    rc = chain_by_headers(gc, b->image, b->format, a->image, &layers, &k,
                          &len, &dd->size);
    if (rc < 0) return rc;
    if (!rc) {
        rc = chain_by_qemu_img(gc, vdev, b->image, a->image, &layers, &k,
                               &len, &dd->size);
        if (rc) return rc;
    }
    if (k == len && a->tag)
        return copied_diff(gc, st, a, b, layers, len, dd);
    if (k == len) {
        LOG(ERROR, "disk %s: %s's image '%s' is not in the backing chain of "
            "'%s' any more (a commit, copy or stream since): no diff%s",
            vdev, st->from, a->image, b->image, st->others);
        return ERROR_INVAL;
    }
    if (k == 0 && !a->tag) {
        LOG(ERROR, "disk %s: %s's image '%s' was written since (it is %s's "
            "image itself): what changed in it is not known", vdev,
            st->from, a->image, st->to ? st->to : "now");
        return ERROR_INVAL;
    }
    if (b->tag) {
        /* the disk's size at the snapshot: its own record in the image */
        libxl__qcow2 q;
        libxl__qcow2_l1 l1;
        rc = libxl__qcow2_open(gc, b->image, &q);
        if (rc) return rc;
        rc = libxl__qcow2_state(gc, &q, b->tag, &l1);
        libxl__qcow2_close(&q);
        if (rc) return rc;
        dd->size = l1.size;
    }

    if (k == 0) {
        rc = image_states_diff(gc, a->image, a->tag, false, b->tag, data,
                               &x, &cluster, &dd->methods);
        if (rc) return rc;
        granularity_min(&dd->granularity, cluster);
        goto done;
    }
    for (i = 0; i < k; i++) {
        const char *file = layers[i].file;

        if (!file || !layers[i].qcow2) {
            LOG(ERROR, "disk %s: '%s' is not a qcow2 image: only qcow2 "
                "overlays say what they hold", vdev, file ? file : "?");
            return ERROR_INVAL;
        }
        granularity_min(&dd->granularity, layers[i].cluster_size);
        if (i == 0 && b->tag) {
            /* b's image at its tag: that snapshot's own clusters */
            rc = image_states_diff(gc, file, NULL, true, b->tag, false, &x,
                                   &cluster, &dd->methods);
        } else {
            rc = layer_allocation(gc, file, &x);
            dd->methods |= LIBXLSNAP_DIFF_ALLOCATION;
        }
        if (rc) return rc;
    }
    if (a->tag) {
        /* a's image itself changed from its tag to its frozen state */
        rc = image_states_diff(gc, a->image, a->tag, false, NULL, data,
                               &x, &cluster, &dd->methods);
        if (rc) return rc;
        granularity_min(&dd->granularity, cluster);
    }
 done:
    return extents_out(&x, dd);
}

/*
 * A running domain's images, flushed: QEMU stopped (which drains and
 * flushes them) and, if it ran, continued.
 */
static int flush_running(libxl__gc *gc, const libxl__domain *d)
{
    bool cont_failed;
    int rc;

    rc = libxl__qmp_flush_images(gc, d->qmp_path, "diff", &cont_failed);
    if (cont_failed)
        LOG(ERROR, "domain %s: QEMU did not continue after the flush: "
            "the guest is paused (xl unpause %s)", d->name, d->name);
    else if (rc)
        LOG(ERROR, "domain %s: cannot flush QEMU's images for a diff to "
            "now", d->name);
    return rc;
}

/* ---------------------------------------------------------------- */
/* checkpoints: the union of their bitmaps, read over NBD */

#define DIFF_NBD_TIMEOUT_MS 30000

/* one QMP command (quiet: a failure not said), ERROR_* */
static int qmp(libxl__gc *gc, const libxl__domain *d, const char *cmd,
               yajl_val args, bool quiet)
{
    yajl_val ret;

    return libxl__qmp_run_sync(gc, d->qmp_path, cmd, args, 10000, quiet,
                               &ret);
}

/* what an NBD server at sock serves as export, of contexts, into x */
static int nbd_read_bitmaps(libxl__gc *gc, const char *sock,
                            const char *export, const char *const *ctxs,
                            int n, libxl__extents *x, uint64_t *size_r)
{
    libxl__nbd c;
    int rc;

    rc = libxl__nbd_connect_unix(gc, &c, sock, DIFF_NBD_TIMEOUT_MS);
    if (!rc) rc = libxl__nbd_handshake(gc, &c, export, ctxs, n);
    if (!rc) rc = libxl__nbd_block_status(gc, &c, 1, x);
    if (!rc && c.size > *size_r) *size_r = c.size;
    libxl__nbd_close(gc, &c);
    return rc;
}

static const char **bitmap_contexts(libxl__gc *gc, const char *const *names,
                                    int n)
{
    const char **ctxs;
    int i;

    GCNEW_ARRAY(ctxs, n ? n : 1);
    for (i = 0; i < n; i++)
        ctxs[i] = GCSPRINTF("qemu:dirty-bitmap:%s", names[i]);
    return ctxs;
}

/*
 * Offline: each layer of db that has some of names, exported by a
 * qemu-nbd of its own (read-only, those bitmaps; it exits when we
 * disconnect, or is killed on a failure).
 */
static int bitmaps_offline(libxl__gc *gc, const char *vdev,
                           const libxl__disk_bitmaps *db,
                           const char *const *names, int n,
                           libxl__extents *x, uint64_t *size_r)
{
    const char *sock = GCSPRINTF("%s/diff-%d-%s.sock", CTX->run_dir,
                                 (int)getpid(), vdev);
    const char *pidfile = GCSPRINTF("%s.pid", sock);
    int i, k, m, rc = 0;

    for (i = 0; i < db->num_layers; i++) {
        libxl__flexarray *a = libxl__flexarray_new(gc);
        const char **have;
        char *err = NULL, *pid;

        GCNEW_ARRAY(have, n ? n : 1);
        for (k = m = 0; k < n; k++)
            if (libxl__disk_bitmap_find(db, i, names[k])) have[m++] = names[k];
        if (!m) continue;
        unlink(sock);
        libxl__flexarray_append(a, "qemu-nbd");
        libxl__flexarray_append_pair(a, "--fork", "-r");
        libxl__flexarray_append(a, GCSPRINTF("--pid-file=%s", pidfile));
        libxl__flexarray_append_pair(a, "-f", "qcow2");
        libxl__flexarray_append_pair(a, "-k", sock);
        libxl__flexarray_append_pair(a, "-x", "diff");
        for (k = 0; k < m; k++)
            libxl__flexarray_append_pair(a, "-B", have[k]);
        libxl__flexarray_append(a, db->layers[i].file);
        rc = libxl__exec_sync(gc, a->data, 30000, NULL, &err);
        if (rc) {
            const char *line = libxl__tool_error_line(gc, err);
            LOG(ERROR, "disk %s: cannot export the bitmaps of '%s': %s",
                vdev, db->layers[i].file, line ? line : "qemu-nbd failed");
            return rc;
        }
        rc = nbd_read_bitmaps(gc, sock, "diff", bitmap_contexts(gc, have, m),
                              m, x, size_r);
        if (rc && !libxl__read_file(gc, pidfile, &pid, NULL) && atoi(pid) > 0)
            kill(atoi(pid), SIGTERM);  /* else it ends with our disconnect */
        unlink(pidfile);
        unlink(sock);
        if (rc) return rc;
    }
    return 0;
}

/* a transaction's action type on node: its "data", to fill in */
static yajl_val bitmap_action(libxl__gc *gc, yajl_val acts, const char *type,
                              const char *node)
{
    yajl_val a = libxl__json_append_object(gc, acts);
    yajl_val data;

    libxl__json_add_string(gc, &a, "type", type);
    data = libxl__json_add_object(gc, &a, "data");
    libxl__json_add_string(gc, &data, "node", node);
    return data;
}

/*
 * Live: the union merged into a temporary disabled bitmap on the active
 * node (one transaction: one instant), exported read-only over NBD on a
 * unix socket in the run dir (QEMU refuses to export an enabled bitmap
 * of a node the guest writes), read, and all of it removed again.
 */
static int bitmaps_live(libxl__gc *gc, const libxl__domain *d,
                        const char *vdev, const libxl__disk_bitmaps *db,
                        const char *const *names, int n, uint64_t gran,
                        libxl__extents *x, uint64_t *size_r)
{
    const char *node = db->num_layers ? db->layers[0].node : NULL;
    const char *tmp = GCSPRINTF("libxl-diff-%s", vdev);
    const char *sock = GCSPRINTF("%s/diff-%s.sock", CTX->run_dir, d->name);
    yajl_val srcs = libxl__checkpoint_merge_sources(gc, db, names, n);
    yajl_val args, acts, data, addr, bms;
    const char *ctx = GCSPRINTF("qemu:dirty-bitmap:%s", tmp);
    bool added = false, served = false, exported = false;
    int rc;

    if (!node || !srcs) {
        LOG(ERROR, "disk %s: QEMU has no node with its checkpoint bitmaps",
            vdev);
        return ERROR_FAIL;
    }
    /* what a diff that was killed left (its socket says so): gone first,
     * the export (it holds the bitmap), the server, the bitmap */
    if (libxl__file_exists(sock)) {
        args = NULL;
        libxl__json_add_string(gc, &args, "id", tmp);
        qmp(gc, d, "block-export-del", args, true);
        qmp(gc, d, "nbd-server-stop", NULL, true);
        unlink(sock);
    }
    args = NULL;
    libxl__json_add_string(gc, &args, "node", node);
    libxl__json_add_string(gc, &args, "name", tmp);
    qmp(gc, d, "block-dirty-bitmap-remove", args, true);

    acts = libxl__json_new_array(gc);
    data = bitmap_action(gc, acts, "block-dirty-bitmap-add", node);
    libxl__json_add_string(gc, &data, "name", tmp);
    libxl__json_add_integer(gc, &data, "granularity", gran);
    libxl__json_add_bool(gc, &data, "persistent", false);
    libxl__json_add_bool(gc, &data, "disabled", true);
    data = bitmap_action(gc, acts, "block-dirty-bitmap-merge", node);
    libxl__json_add_string(gc, &data, "target", tmp);
    libxl__json_add(gc, &data, "bitmaps", srcs);
    args = NULL;
    libxl__json_add(gc, &args, "actions", acts);
    rc = qmp(gc, d, "transaction", args, false);
    if (rc) goto out;
    added = true;

    args = NULL;
    addr = libxl__json_add_object(gc, &args, "addr");
    libxl__json_add_string(gc, &addr, "type", "unix");
    data = libxl__json_add_object(gc, &addr, "data");
    libxl__json_add_string(gc, &data, "path", sock);
    rc = qmp(gc, d, "nbd-server-start", args, false);
    if (rc) {
        LOG(ERROR, "disk %s: QEMU cannot serve its bitmap over NBD (does "
            "it serve a pull backup?)", vdev);
        goto out;
    }
    served = true;

    args = NULL;
    libxl__json_add_string(gc, &args, "type", "nbd");
    libxl__json_add_string(gc, &args, "id", tmp);
    libxl__json_add_string(gc, &args, "node-name", node);
    libxl__json_add_string(gc, &args, "name", tmp);
    libxl__json_add_bool(gc, &args, "writable", false);
    bms = libxl__json_add_array(gc, &args, "bitmaps");
    libxl__json_append_string(gc, bms, tmp);
    rc = qmp(gc, d, "block-export-add", args, false);
    if (rc) goto out;
    exported = true;
    libxl__fault_point("diff");       /* the tests: killed, Ctrl-C here */

    rc = nbd_read_bitmaps(gc, sock, tmp, &ctx, 1, x, size_r);
 out:
    if (exported) {
        args = NULL;
        libxl__json_add_string(gc, &args, "id", tmp);
        qmp(gc, d, "block-export-del", args, true);
    }
    /* quietly: what fails here (QEMU died) the next diff removes, and
     * the bitmap is not persistent (it goes with QEMU) */
    if (served) {
        /* closes what is left of the export, synchronously */
        qmp(gc, d, "nbd-server-stop", NULL, true);
        unlink(sock);
    }
    if (added) {
        args = NULL;
        libxl__json_add_string(gc, &args, "node", node);
        libxl__json_add_string(gc, &args, "name", tmp);
        qmp(gc, d, "block-dirty-bitmap-remove", args, true);
    }
    return rc;
}

/* One disk from checkpoint from (index fi) to to (NULL: now). */
static int ckpt_disk_diff(libxl__gc *gc, diff_state *st,
                          const libxl__checkpoint_list *l, const char *to,
                          const libxl_device_disk *dk,
                          libxlsnap_disk_diff *dd)
{
    libxl__snapshot_op *op = &st->op;
    const char *vdev = dd->vdev, *why, **names;
    libxl__disk_bitmaps db;
    libxl__extents x = { 0 };
    uint64_t gran = 0;
    int n, i, k, rc;

    rc = libxl__checkpoint_bitmaps(gc, l, vdev, st->from, to, &names, &n);
    if (rc) return rc;
    rc = libxl__disk_bitmaps_probe(gc, op->d.running ? op->d.qmp_path : NULL,
                                   NULL, vdev, dk->pdev_path, dk->format,
                                   &db, &why);
    if (rc) {
        LOG(ERROR, "disk %s: cannot read its bitmaps: %s", vdev, why);
        return rc;
    }
    why = libxl__checkpoint_union_problem(gc, &db, l, st->from, to);
    if (why) {
        LOG(ERROR, "disk %s: checkpoint %s's bitmaps cannot be trusted: %s",
            vdev, st->from, why);
        return ERROR_INVAL;
    }
    for (i = 0; i < db.num_layers; i++)
        for (k = 0; k < n; k++) {
            const libxl__bitmap_state *b =
                libxl__disk_bitmap_find(&db, i, names[k]);
            if (b) granularity_min(&gran, b->granularity);
        }
    dd->granularity = gran;
    dd->methods = LIBXLSNAP_DIFF_BITMAP;
    rc = op->d.running
        ? bitmaps_live(gc, &op->d, vdev, &db, names, n, gran, &x, &dd->size)
        : bitmaps_offline(gc, vdev, &db, names, n, &x, &dd->size);
    if (rc) return rc;
    return extents_out(&x, dd);
}

static int ckpt_diff_run(libxl__gc *gc, diff_state *st,
                         const libxl__checkpoint_list *l, int fi, int ti)
{
    libxl__snapshot_op *op = &st->op;
    const libxlsnap_checkpoint *from = &l->cps[fi];
    const libxlsnap_checkpoint *to = ti >= 0 ? &l->cps[ti] : NULL;
    const char *to_name = to ? to->name : "now";
    libxlsnap_domain_diff *out = st->diff_r;
    const libxl_device_disk **dks;
    int i, n = 0, rc;

    if (to && ti <= fi) {
        LOG(ERROR, ti == fi ? "domain %s: FROM and TO are one checkpoint, "
            "'%s'" : "domain %s: checkpoint '%s' is not older than '%s': "
            "FROM must come before TO", op->d.name, from->name, to_name);
        return ERROR_INVAL;
    }
    GCNEW_ARRAY(dks, from->num_disks ? from->num_disks : 1);
    for (i = 0; i < from->num_disks; i++) {
        const char *vdev = from->disks[i].vdev;
        const libxl_device_disk *dk = libxl__domain_disk(&op->d, vdev);

        if (st->vdev && strcmp(vdev, st->vdev)) continue;
        if (!dk || !dk->pdev_path || (to && !libxl__checkpoint_disk(to, vdev))) {
            if (!st->vdev) continue;
            LOG(ERROR, "domain %s: disk %s is not in both %s and %s",
                op->d.name, vdev, from->name, to_name);
            return ERROR_INVAL;
        }
        dks[n++] = dk;
    }
    if (!n) {
        if (st->vdev)
            LOG(ERROR, "domain %s: checkpoint '%s' has no disk %s",
                op->d.name, from->name, libxl__printable(gc, st->vdev));
        else
            LOG(ERROR, "domain %s: no disk is in both %s and %s",
                op->d.name, from->name, to_name);
        return ERROR_INVAL;
    }
    out->disks = calloc(n, sizeof(*out->disks));
    if (!out->disks) abort();
    for (i = 0; i < n; i++) {
        libxlsnap_disk_diff *dd = &out->disks[out->num_disks++];
        dd->vdev = libxl__gc_strdup(NOGC, dks[i]->vdev);
        rc = ckpt_disk_diff(gc, st, l, to ? to->name : NULL, dks[i], dd);
        if (rc) return rc;
    }
    out->from = libxl__gc_strdup(NOGC, from->name);
    out->to = libxl__gc_strdup(NOGC, to_name);
    return 0;
}

static int diff_run(libxl__gc *gc, diff_state *st)
{
    libxl__snapshot_op *op = &st->op;
    libxl__snapshot_tree *t = &op->tree;
    libxlsnap_domain_snapshot *from, *to = NULL;
    libxlsnap_domain_diff *out = st->diff_r;
    const char **vdevs;
    diff_point *pts;                  /* per disk: from's, to's */
    const char *to_name = st->to ? st->to : "now";
    int i, n = 0, rc;

    if (st->now_now) {
        /* (a snapshot or checkpoint may be named "now": as s s) */
        LOG(ERROR, "domain %s: FROM and TO are one point, now", op->d.name);
        return ERROR_INVAL;
    }
    from = libxl__snapshot_tree_find(t, st->from);
    if (st->to) to = libxl__snapshot_tree_find(t, st->to);
    if (!from || (st->to && !to)) {
        /* checkpoints: from one to another, or to now */
        libxl__checkpoint_list l;
        int fi, ti = -1;

        rc = libxl__checkpoint_load(gc, &op->st, false, &l);
        if (rc) return rc;
        fi = libxl__checkpoint_index(&l, st->from);
        if (st->to) ti = libxl__checkpoint_index(&l, st->to);
        if (fi >= 0 && (!st->to || ti >= 0))
            return ckpt_diff_run(gc, st, &l, fi, ti);
        if (fi < 0 && !from) {
            LOG(ERROR, "domain %s has no snapshot or checkpoint named '%s'",
                op->d.name, libxl__printable(gc, st->from));
            return ERROR_NOTFOUND;
        }
        if (ti < 0 && !to) {
            LOG(ERROR, "domain %s has no snapshot or checkpoint named '%s'",
                op->d.name, libxl__printable(gc, st->to));
            return ERROR_NOTFOUND;
        }
        LOG(ERROR, "domain %s: '%s' is a %s and '%s' a %s: a diff goes "
            "from a snapshot to a snapshot, or from a checkpoint to a "
            "checkpoint (or either to now)", op->d.name, st->from,
            from ? "snapshot" : "checkpoint", st->to,
            to ? "snapshot" : "checkpoint");
        return ERROR_INVAL;
    }
    if (st->to) {
        if (from == to) {
            LOG(ERROR, "domain %s: FROM and TO are one snapshot, '%s'",
                op->d.name, from->name);
            return ERROR_INVAL;
        }
        if (!is_ancestor(t, from->name, to->name, false)) {
            LOG(ERROR, "domain %s: snapshot '%s' is not an ancestor of '%s': "
                "FROM must come before TO", op->d.name, from->name, to->name);
            return ERROR_INVAL;
        }
    } else if (!t->dom.current ||
               !is_ancestor(t, from->name, t->dom.current, true)) {
        LOG(ERROR, "domain %s: snapshot '%s' is not the current snapshot "
            "nor one of its ancestors (current: %s): FROM must come "
            "before now", op->d.name, from->name,
            t->dom.current ? t->dom.current : "none");
        return ERROR_INVAL;
    }

    GCNEW_ARRAY(vdevs, from->num_disks ? from->num_disks : 1);
    GCNEW_ARRAY(pts, 2 * (from->num_disks ? from->num_disks : 1));
    for (i = 0; i < from->num_disks; i++) {
        const libxlsnap_disk_snapshot *fd = &from->disks[i], *td = NULL;
        const libxl_device_disk *dk = NULL;
        diff_point a, b;

        if (st->vdev && strcmp(fd->vdev, st->vdev)) continue;
        if (to) {
            td = snapshot_disk(to, fd->vdev);
        } else {
            dk = libxl__domain_disk(&op->d, fd->vdev);
        }
        if (fd->type == LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO ||
            (to && (!td || td->type == LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO)) ||
            (!to && (!dk || !dk->pdev_path))) {
            if (!st->vdev) continue;  /* only the disks both points have */
            LOG(ERROR, "domain %s: disk %s is not in both %s and %s",
                op->d.name, fd->vdev, from->name, to_name);
            return ERROR_INVAL;
        }
        rc = disk_point(gc, from->name, fd, &a);
        if (rc) return rc;
        if (to) {
            rc = disk_point(gc, to->name, td, &b);
            if (rc) return rc;
        } else {
            b.image = dk->pdev_path;
            b.tag = NULL;
            b.format = dk->format;
        }
        vdevs[n] = fd->vdev;
        pts[2 * n] = a;
        pts[2 * n + 1] = b;
        n++;
    }
    if (st->vdev && !n) {
        LOG(ERROR, "domain %s: snapshot '%s' has no disk %s", op->d.name,
            from->name, libxl__printable(gc, st->vdev));
        return ERROR_INVAL;
    }
    if (!n) {
        LOG(ERROR, "domain %s: no disk is in both %s and %s", op->d.name,
            from->name, to_name);
        return ERROR_INVAL;
    }

    if (!to && op->d.running) {
        rc = flush_running(gc, &op->d);
        if (rc) return rc;
    }

    st->others = st->vdev || n < 2 ? ""
        : " (the other disks: each alone with --disk)";
    out->disks = calloc(n, sizeof(*out->disks));
    if (!out->disks) abort();
    for (i = 0; i < n; i++) {
        libxlsnap_disk_diff *dd = &out->disks[out->num_disks];

        dd->vdev = libxl__gc_strdup(NOGC, vdevs[i]);
        out->num_disks++;
        rc = disk_diff(gc, st, &pts[2 * i], &pts[2 * i + 1], dd);
        if (rc) return rc;
    }
    out->from = libxl__gc_strdup(NOGC, from->name);
    out->to = libxl__gc_strdup(NOGC, to_name);
    return 0;
}

/*
 * libxl__snapshot_op_settled, but with --disk only that disk's block
 * job matters (another disk's job moves images the diff does not read).
 */
static int diff_settled(libxl__gc *gc, diff_state *st)
{
    libxl__snapshot_op *op = &st->op;
    const libxl_device_disk *dk;
    libxl__domain one;
    int rc;

    if (!st->vdev) return libxl__snapshot_op_settled(gc, op);
    rc = libxl__journal_refuse_pending(gc, &op->st, op->d.name, "");
    if (rc) return rc;
    dk = libxl__domain_disk(&op->d, st->vdev);
    if (!dk) return 0;                /* diff_run says it has none */
    one = op->d;
    one.disks = (libxl_device_disk *)dk;
    one.num_disks = 1;
    return libxl__blockjob_check_idle(gc, &op->st, &one);
}

static void diff_begun(libxl__egc *egc, libxl__snapshot_op *op, int rc)
{
    diff_state *st = CONTAINER_OF(op, diff_state, op);
    STATE_AO_GC(st->ao);

    if (rc) {
        libxl__ao_complete(egc, ao, rc);
        return;
    }
    rc = diff_settled(gc, st);
    if (rc) goto out;
    rc = diff_run(gc, st);
    if (!rc) {
        st->diff_r->domain = libxl__gc_strdup(NOGC, op->d.name);
        libxl_uuid_copy(NULL, &st->diff_r->uuid, &op->d.uuid);
    }
    if (rc) {
        libxlsnap_domain_diff_dispose(st->diff_r);
        libxlsnap_domain_diff_init(st->diff_r);
    }
 out:
    libxl__snapshot_op_end(gc, op);
    libxl__ao_complete(egc, ao, rc);
}

/* ---------------------------------------------------------------- */
/* the result */

void libxlsnap_domain_diff_init(libxlsnap_domain_diff *p)
{
    if (p) memset(p, 0, sizeof(*p));
}

void libxlsnap_domain_diff_dispose(libxlsnap_domain_diff *p)
{
    int i;

    if (!p) return;
    for (i = 0; i < p->num_disks; i++) {
        free(p->disks[i].vdev);
        free(p->disks[i].extents);
    }
    free(p->disks);
    free(p->domain);
    free(p->from);
    free(p->to);
    memset(p, 0, sizeof(*p));
}

const char *libxlsnap_diff_methods_to_string(unsigned m)
{
    /* compare implies mapping: its name says both */
    static const char *const names[] = {
        [0] = "none",
        [LIBXLSNAP_DIFF_ALLOCATION] = "allocation",
        [LIBXLSNAP_DIFF_MAPPING] = "mapping",
        [LIBXLSNAP_DIFF_ALLOCATION | LIBXLSNAP_DIFF_MAPPING] =
            "allocation+mapping",
        [LIBXLSNAP_DIFF_MAPPING | LIBXLSNAP_DIFF_COMPARE] = "compare",
        [LIBXLSNAP_DIFF_ALLOCATION | LIBXLSNAP_DIFF_MAPPING |
         LIBXLSNAP_DIFF_COMPARE] = "allocation+compare",
        [LIBXLSNAP_DIFF_BITMAP] = "bitmap",
    };

    if (m < sizeof(names) / sizeof(names[0]) && names[m]) return names[m];
    return "mixed";
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
