/*
 * libxl_snapshot_checkpoint.c - checkpoints: named points for
 * incremental backups (libvirt's domaincheckpoint model)
 *
 * A checkpoint NAME is one persistent dirty bitmap named NAME on each of
 * its disks' active images, all started at one instant: one QMP
 * `transaction` while the domain runs, `qemu-img bitmap` while it is
 * shut off.  Only the newest checkpoint of a disk records: making one
 * disables the previous newest one's bitmap at the same instant, so
 * bitmap X holds the writes from X until the next checkpoint of that
 * disk, and "changed since X" is the union of X's bitmap and its
 * successors' (libxl__checkpoint_bitmaps), over every layer of the
 * disk's backing chain: an external snapshot carries the recording
 * bitmap into its overlay (libxl_snapshot_backend_overlay.c), a commit
 * merges the bitmaps of the images it removes into its base
 * (libxl_snapshot_commit.c), a block-copy into its destination.
 *
 * Deleting X merges X's bitmap into its predecessor P's on each disk
 * (P added where a layer lacks it), re-enables P where X recorded, and
 * removes X; the first checkpoint's bitmap is simply removed.  Live,
 * only the nodes QEMU has writable (the active image) can be changed:
 * the read-only layers below keep X's bitmap, and P's record lists X in
 * "merged", whose names count as P's in every union.  Offline every
 * layer is changed with qemu-img.
 *
 * Records: checkpoint-NAME.libxl-json in the domain's store, beside
 * snapshotdata-NAME.libxl-json (listed by prefix, so neither listing
 * sees the other's).  Oldest first by creation time, which a new
 * checkpoint always advances (each one's parent is the one before).
 *
 * All or nothing: create writes a journal ("checkpoint-create"), makes
 * the bitmaps, writes the record, removes the journal; a failure undoes
 * the bitmaps at once, a crash leaves the journal, whose recovery (the
 * next operation on the domain) undoes them.  Delete writes a journal
 * ("checkpoint-delete") and its recovery does the delete again (every
 * step is idempotent: a merge, an enable, a remove of what is there).
 * Under the domain's lock, as every snapshot operation.
 *
 * Trust: a bitmap QEMU reports "inconsistent", or that an image no QEMU
 * has open marks "in-use" (QEMU died with it loaded), says nothing
 * reliable; libxl__checkpoint_bitmap_problem says so, snapshot-check
 * reports it, a backup refuses it.
 */
#include "libxl_snapshot_internal.h"

#include <inttypes.h>
#include <time.h>

#define RECORD_SUFFIX ".libxl-json"

static void bitmap_action(libxl__gc *gc, yajl_val actions, const char *type,
                          const char *node, const char *name);
static const char *const *img_bitmap(libxl__gc *gc, const char *op,
                                     const char *image, const char *name,
                                     const char *src);

/* ---------------------------------------------------------------- */
/* the public struct */

void libxlsnap_checkpoint_init(libxlsnap_checkpoint *p)
{
    if (p) memset(p, 0, sizeof(*p));
}

void libxlsnap_checkpoint_dispose(libxlsnap_checkpoint *p)
{
    int i;

    if (!p) return;
    free(p->name);
    free(p->description);
    free(p->parent);
    for (i = 0; p->merged && i < p->num_merged; i++) free(p->merged[i]);
    free(p->merged);
    free(p->snapshot);
    free(p->domain_name);
    for (i = 0; p->disks && i < p->num_disks; i++) {
        free(p->disks[i].vdev);
        free(p->disks[i].bitmap);
        free(p->disks[i].image);
        free(p->disks[i].problem);
    }
    free(p->disks);
    libxlsnap_checkpoint_init(p);
}

void libxlsnap_checkpoint_list_free(libxlsnap_checkpoint *list, int nb)
{
    int i;

    for (i = 0; list && i < nb; i++) libxlsnap_checkpoint_dispose(&list[i]);
    free(list);
}

void libxl__checkpoint_copy(libxlsnap_checkpoint *dst,
                            const libxlsnap_checkpoint *src)
{
    int i;

    libxlsnap_checkpoint_init(dst);
    dst->name = libxl__gc_strdup(NOGC, src->name);
    dst->description = libxl__gc_strdup(NOGC, src->description);
    dst->creation_time = src->creation_time;
    dst->creation_nsec = src->creation_nsec;
    dst->parent = libxl__gc_strdup(NOGC, src->parent);
    if (src->num_merged > 0) {
        dst->merged = libxl__gc_calloc(NOGC, src->num_merged,
                                       sizeof(*dst->merged));
        for (i = 0; i < src->num_merged; i++)
            dst->merged[i] = libxl__gc_strdup(NOGC, src->merged[i]);
        dst->num_merged = src->num_merged;
    }
    dst->snapshot = libxl__gc_strdup(NOGC, src->snapshot);
    dst->domain_name = libxl__gc_strdup(NOGC, src->domain_name);
    dst->domain_uuid = src->domain_uuid;
    if (src->num_disks > 0) {
        dst->disks = libxl__gc_calloc(NOGC, src->num_disks,
                                      sizeof(*dst->disks));
        for (i = 0; i < src->num_disks; i++) {
            const libxlsnap_checkpoint_disk *s = &src->disks[i];
            libxlsnap_checkpoint_disk *d = &dst->disks[i];
            d->vdev = libxl__gc_strdup(NOGC, s->vdev);
            d->bitmap = libxl__gc_strdup(NOGC, s->bitmap);
            d->image = libxl__gc_strdup(NOGC, s->image);
            d->format = s->format;
            d->problem = libxl__gc_strdup(NOGC, s->problem);
        }
        dst->num_disks = src->num_disks;
    }
}

/* ---------------------------------------------------------------- */
/* records <-> JSON */

char *libxl__checkpoint_record_name(libxl__gc *gc, const char *name)
{
    return GCSPRINTF(LIBXL__CHECKPOINT_PREFIX "%s" RECORD_SUFFIX, name);
}

char *libxl__checkpoint_record_file(libxl__gc *gc, const char *file)
{
    size_t p = strlen(LIBXL__CHECKPOINT_PREFIX), s = strlen(RECORD_SUFFIX);
    size_t l = strlen(file);

    if (l <= p + s || strncmp(file, LIBXL__CHECKPOINT_PREFIX, p) ||
        strcmp(file + l - s, RECORD_SUFFIX))
        return NULL;
    return GCSPRINTF("%.*s", (int)(l - p - s), file + p);
}

yajl_val libxl__checkpoint_to_tree(libxl__gc *gc,
                                   const libxlsnap_checkpoint *cp)
{
    yajl_val v = libxl__json_new_object(gc), arr, d;
    char uuid[LIBXL_UUID_FMTLEN + 1];
    int i;

    libxl__json_add_string(gc, &v, "name", cp->name);
    if (cp->description && *cp->description)
        libxl__json_add_string(gc, &v, "description", cp->description);
    libxl__json_add_uint64(gc, &v, "creation_time", cp->creation_time);
    if (cp->creation_nsec)
        libxl__json_add_integer(gc, &v, "creation_nsec", cp->creation_nsec);
    if (cp->parent) libxl__json_add_string(gc, &v, "parent", cp->parent);
    if (cp->num_merged > 0) {
        arr = libxl__json_add_array(gc, &v, "merged");
        for (i = 0; i < cp->num_merged; i++)
            libxl__json_append_string(gc, arr, cp->merged[i]);
    }
    if (cp->snapshot) libxl__json_add_string(gc, &v, "snapshot", cp->snapshot);
    if (cp->domain_name)
        libxl__json_add_string(gc, &v, "domain_name", cp->domain_name);
    if (!libxl_uuid_is_nil(&cp->domain_uuid)) {
        snprintf(uuid, sizeof(uuid), LIBXL_UUID_FMT,
                 LIBXL_UUID_BYTES(cp->domain_uuid));
        libxl__json_add_string(gc, &v, "domain_uuid", uuid);
    }
    arr = libxl__json_add_array(gc, &v, "disks");
    for (i = 0; i < cp->num_disks; i++) {
        const libxlsnap_checkpoint_disk *k = &cp->disks[i];
        d = libxl__json_append_object(gc, arr);
        libxl__json_add_string(gc, &d, "vdev", k->vdev);
        libxl__json_add_string(gc, &d, "bitmap", k->bitmap);
        if (k->image) libxl__json_add_string(gc, &d, "image", k->image);
        if (k->format)
            libxl__json_add_string(gc, &d, "format",
                                   libxl_disk_format_to_string(k->format));
        if (k->problem) libxl__json_add_string(gc, &d, "problem", k->problem);
    }
    return v;
}

char *libxl__checkpoint_to_text(libxl__gc *gc, const libxlsnap_checkpoint *cp)
{
    return libxl__json_to_string(gc, libxl__checkpoint_to_tree(gc, cp));
}

char *libxlsnap_checkpoint_to_json(libxlsnap_ctx *ctx,
                                   const libxlsnap_checkpoint *p)
{
    if (ARGS_MISSING_CTX_OPTIONAL(ctx, p)) return NULL;
    GC_INIT(ctx);
    char *s = libxl__checkpoint_to_text(gc, p);
    char *r = s ? strdup(s) : NULL;
    GC_FREE;
    return r;
}

/* an optional string member: absent or null, NULL; else a string */
static bool opt_str(libxl__gc *agc, yajl_val v, const char *key, char **r)
{
    yajl_val n = libxl__json_get(v, key);

    *r = NULL;
    if (!n || YAJL_IS_NULL(n)) return true;
    if (!YAJL_IS_STRING(n)) return false;
    *r = libxl__gc_strdup(agc, YAJL_GET_STRING(n));
    return true;
}

static bool opt_uint(yajl_val v, const char *key, uint64_t max, uint64_t *r)
{
    yajl_val n = libxl__json_get(v, key);
    const char *raw;
    char *end;
    unsigned long long t;

    *r = 0;
    if (!n || YAJL_IS_NULL(n)) return true;
    raw = YAJL_IS_NUMBER(n) ? n->u.number.r : NULL;
    if (!raw || !*raw || raw[strspn(raw, "0123456789")]) return false;
    errno = 0;
    t = strtoull(raw, &end, 10);
    if (errno || *end || t > max) return false;
    *r = t;
    return true;
}

int libxl__checkpoint_from_tree(libxl__gc *gc, libxl__gc *agc, yajl_val v,
                                libxlsnap_checkpoint *cp, const char **why_r)
{
    const char *why = NULL, *s;
    yajl_val n;
    uint64_t u;
    size_t i;

    libxlsnap_checkpoint_init(cp);
    if (!YAJL_IS_OBJECT(v)) { why = "not a JSON object"; goto bad; }
    n = libxl__json_get(v, "name");
    if (!n || !YAJL_IS_STRING(n) || libxlsnap_name_check(YAJL_GET_STRING(n))) {
        why = "no valid name";
        goto bad;
    }
    cp->name = libxl__gc_strdup(agc, YAJL_GET_STRING(n));
    if (!opt_str(agc, v, "description", &cp->description)) {
        why = "'description' is not a string";
        goto bad;
    }
    if (!opt_uint(v, "creation_time", UINT64_MAX, &cp->creation_time) ||
        !opt_uint(v, "creation_nsec", 999999999, &u)) {
        why = "'creation_time' or 'creation_nsec' is not an integer in range";
        goto bad;
    }
    cp->creation_nsec = u;
    if (!opt_str(agc, v, "parent", &cp->parent) ||
        (cp->parent && libxlsnap_name_check(cp->parent))) {
        why = "'parent' is not a valid name";
        goto bad;
    }
    n = libxl__json_get(v, "merged");
    if (n && !YAJL_IS_NULL(n)) {
        if (!YAJL_IS_ARRAY(n)) { why = "'merged' is not an array"; goto bad; }
        if (n->u.array.len)
            cp->merged = libxl__gc_calloc(agc, n->u.array.len,
                                          sizeof(*cp->merged));
        for (i = 0; i < n->u.array.len; i++) {
            yajl_val m = n->u.array.values[i];
            if (!YAJL_IS_STRING(m) || libxlsnap_name_check(YAJL_GET_STRING(m))) {
                why = "'merged' holds an invalid name";
                goto bad;
            }
            cp->merged[cp->num_merged++] =
                libxl__gc_strdup(agc, YAJL_GET_STRING(m));
        }
    }
    if (!opt_str(agc, v, "snapshot", &cp->snapshot) ||
        !opt_str(agc, v, "domain_name", &cp->domain_name)) {
        why = "'snapshot' or 'domain_name' is not a string";
        goto bad;
    }
    s = libxl__json_get_string(v, "domain_uuid");
    if (s && libxl_uuid_from_string(&cp->domain_uuid, s)) {
        why = "invalid 'domain_uuid'";
        goto bad;
    }
    n = libxl__json_get(v, "disks");
    if (!n || !YAJL_IS_ARRAY(n)) { why = "no list of 'disks'"; goto bad; }
    if (n->u.array.len)
        cp->disks = libxl__gc_calloc(agc, n->u.array.len, sizeof(*cp->disks));
    for (i = 0; i < n->u.array.len; i++) {
        yajl_val d = n->u.array.values[i];
        libxlsnap_checkpoint_disk *k = &cp->disks[cp->num_disks++];
        char *fmt;
        if (!YAJL_IS_OBJECT(d) || !opt_str(agc, d, "vdev", &k->vdev) ||
            !k->vdev || !*k->vdev || strchr(k->vdev, '/') ||
            !opt_str(agc, d, "bitmap", &k->bitmap) || !k->bitmap ||
            libxlsnap_name_check(k->bitmap) ||
            !opt_str(agc, d, "image", &k->image) ||
            !opt_str(gc, d, "format", &fmt) ||
            !opt_str(agc, d, "problem", &k->problem) ||
            (fmt && libxl_disk_format_from_string(fmt, &k->format))) {
            why = GCSPRINTF("disk %zu is not a valid disk (vdev, bitmap, "
                            "image, format)", i);
            goto bad;
        }
    }
    return 0;
 bad:
    if (agc == NOGC) libxlsnap_checkpoint_dispose(cp);
    else libxlsnap_checkpoint_init(cp);
    *why_r = why;
    return ERROR_INVAL;
}

/* ---------------------------------------------------------------- */
/* the list */

static int cp_cmp(const void *a, const void *b)
{
    const libxlsnap_checkpoint *x = a, *y = b;

    if (x->creation_time != y->creation_time)
        return x->creation_time < y->creation_time ? -1 : 1;
    if (x->creation_nsec != y->creation_nsec)
        return x->creation_nsec < y->creation_nsec ? -1 : 1;
    return strcmp(x->name, y->name);
}

int libxl__checkpoint_load(libxl__gc *gc, const libxl__snapshot_store *st,
                           bool lenient, libxl__checkpoint_list *l_r)
{
    char **names, **values;
    int rc, i, n;

    memset(l_r, 0, sizeof(*l_r));
    rc = libxl__snapshot_store_list(gc, st, LIBXL__CHECKPOINT_PREFIX, &names,
                                    &values, &n);
    if (rc) return rc;
    GCNEW_ARRAY(l_r->cps, n + 1);
    for (i = 0; i < n; i++) {
        const char *name = libxl__checkpoint_record_file(gc, names[i]);
        const char *path = libxl__snapshot_store_where(gc, st, names[i]);
        const char *why = NULL;
        libxlsnap_checkpoint *cp = &l_r->cps[l_r->num];
        yajl_val v;

        if (!name) continue;          /* a "*.tmp", or not ours */
        if (!values[i]) continue;     /* vanished meanwhile */
        v = libxl__json_parse(gc, values[i]);
        if (!v) why = "not valid JSON";
        else if (!libxl__checkpoint_from_tree(gc, gc, v, cp, &why) &&
                 strcmp(cp->name, name))
            why = GCSPRINTF("it holds checkpoint '%s'",
                            libxl__printable(gc, cp->name));
        if (why) {
            why = GCSPRINTF("corrupt checkpoint record '%s': %s", path, why);
            if (!lenient) {
                LOG(ERROR, "%s", why);
                return ERROR_INVAL;
            }
            GCREALLOC_ARRAY(l_r->damage, l_r->num_damage + 1);
            l_r->damage[l_r->num_damage++] = GCSTRDUP(why);
            GCREALLOC_ARRAY(l_r->skipped, l_r->num_skipped + 1);
            l_r->skipped[l_r->num_skipped++] = GCSTRDUP(names[i]);
            continue;
        }
        l_r->num++;
    }
    qsort(l_r->cps, l_r->num, sizeof(*l_r->cps), cp_cmp);
    return 0;
}

int libxl__checkpoint_index(const libxl__checkpoint_list *l, const char *name)
{
    int i;
    for (i = 0; name && i < l->num; i++)
        if (!strcmp(l->cps[i].name, name)) return i;
    return -1;
}

const libxlsnap_checkpoint_disk *libxl__checkpoint_disk(
    const libxlsnap_checkpoint *cp, const char *vdev)
{
    int i;
    for (i = 0; i < cp->num_disks; i++)
        if (!strcmp(cp->disks[i].vdev, vdev)) return &cp->disks[i];
    return NULL;
}

int libxl__checkpoint_newest_on(const libxl__checkpoint_list *l,
                                const char *vdev, int before)
{
    int i;
    for (i = before - 1; i >= 0; i--)
        if (libxl__checkpoint_disk(&l->cps[i], vdev)) return i;
    return -1;
}

bool libxl__checkpoint_owns(libxl__gc *gc, const libxl__checkpoint_list *l,
                            const char *file)
{
    const char *name = libxl__checkpoint_record_file(gc, file);
    int i;

    if (!name) return false;
    for (i = 0; i < l->num_skipped; i++)
        if (!strcmp(l->skipped[i], file)) return true;
    return libxl__checkpoint_index(l, name) >= 0;
}

static void add_name(libxl__gc *gc, const char ***names, int *n,
                     const char *name)
{
    int i;
    for (i = 0; i < *n; i++)
        if (!strcmp((*names)[i], name)) return;
    GCREALLOC_ARRAY(*names, *n + 2);
    (*names)[(*n)++] = name;
    (*names)[*n] = NULL;
}

int libxl__checkpoint_bitmaps(libxl__gc *gc, const libxl__checkpoint_list *l,
                              const char *vdev, const char *from,
                              const char *to, const char ***names_r,
                              int *n_r)
{
    int ifrom = libxl__checkpoint_index(l, from);
    int ito = to ? libxl__checkpoint_index(l, to) : l->num;
    int i, j;

    *names_r = NULL;
    *n_r = 0;
    if (ifrom < 0 || ito < 0) {
        LOG(ERROR, "no checkpoint named '%s'",
            libxl__printable(gc, ifrom < 0 ? from : to));
        return ERROR_NOTFOUND;
    }
    if (ito < ifrom) {
        LOG(ERROR, "checkpoint '%s' is older than '%s'", to, from);
        return ERROR_INVAL;
    }
    if (!libxl__checkpoint_disk(&l->cps[ifrom], vdev) ||
        (to && !libxl__checkpoint_disk(&l->cps[ito], vdev))) {
        LOG(ERROR, "checkpoint '%s' does not cover disk %s: what changed "
            "on it is not known", !libxl__checkpoint_disk(&l->cps[ifrom],
                                                          vdev) ? from : to,
            vdev);
        return ERROR_INVAL;
    }
    GCNEW_ARRAY(*names_r, 1);
    for (i = ifrom; i < ito; i++) {
        const libxlsnap_checkpoint *cp = &l->cps[i];
        const libxlsnap_checkpoint_disk *k = libxl__checkpoint_disk(cp, vdev);
        if (!k) continue;
        add_name(gc, names_r, n_r, k->bitmap);
        for (j = 0; j < cp->num_merged; j++)
            add_name(gc, names_r, n_r, cp->merged[j]);
    }
    return 0;
}

/* ---------------------------------------------------------------- */
/* the bitmaps on a disk's images */

/* qemu-img info's bitmaps of one image (offline: "in-use" untrusted) */
static void layer_from_info(libxl__gc *gc, yajl_val info,
                            libxl__bitmap_layer *ly)
{
    yajl_val fs = libxl__json_get(info, "format-specific");
    yajl_val data = fs ? libxl__json_get(fs, "data") : NULL;
    yajl_val bms = data ? libxl__json_get(data, "bitmaps") : NULL;
    size_t i, j;

    if (!bms || !YAJL_IS_ARRAY(bms)) return;
    GCNEW_ARRAY(ly->bitmaps, bms->u.array.len + 1);
    for (i = 0; i < bms->u.array.len; i++) {
        yajl_val b = bms->u.array.values[i];
        yajl_val flags = libxl__json_get(b, "flags");
        libxl__bitmap_state *bs = &ly->bitmaps[ly->num_bitmaps];
        bs->name = libxl__json_get_string(b, "name");
        if (!bs->name) continue;
        bs->granularity = libxl__json_get_integer(b, "granularity", 0);
        for (j = 0; flags && YAJL_IS_ARRAY(flags) &&
                    j < flags->u.array.len; j++) {
            yajl_val f = flags->u.array.values[j];
            const char *fs = YAJL_IS_STRING(f) ? YAJL_GET_STRING(f) : NULL;
            if (!fs) continue;
            if (!strcmp(fs, "in-use")) bs->inconsistent = true;
            if (!strcmp(fs, "auto")) bs->recording = true;
        }
        ly->num_bitmaps++;
    }
}

/* the node's persistent bitmaps as QEMU has them, over what the image
 * says (QEMU's state is the true one while it runs the image) */
static void layer_from_node(libxl__gc *gc, yajl_val nodes, const char *node,
                            libxl__bitmap_layer *ly)
{
    yajl_val bms = NULL;
    size_t i;
    int j;

    for (i = 0; i < nodes->u.array.len; i++) {
        const char *n = libxl__json_get_string(nodes->u.array.values[i],
                                               "node-name");
        if (n && !strcmp(n, node))
            bms = libxl__json_get(nodes->u.array.values[i], "dirty-bitmaps");
    }
    /* what the file says is QEMU's business now: in-use is expected */
    for (j = 0; j < ly->num_bitmaps; j++)
        ly->bitmaps[j].inconsistent = false;
    for (i = 0; bms && YAJL_IS_ARRAY(bms) && i < bms->u.array.len; i++) {
        yajl_val b = bms->u.array.values[i];
        const char *name = libxl__json_get_string(b, "name");
        libxl__bitmap_state *bs = NULL;
        if (!name || !libxl__json_get_bool(b, "persistent", false)) continue;
        for (j = 0; j < ly->num_bitmaps; j++)
            if (!strcmp(ly->bitmaps[j].name, name)) bs = &ly->bitmaps[j];
        if (!bs) {
            GCREALLOC_ARRAY(ly->bitmaps, ly->num_bitmaps + 1);
            bs = &ly->bitmaps[ly->num_bitmaps++];
            memset(bs, 0, sizeof(*bs));
            bs->name = name;
        }
        bs->granularity = libxl__json_get_integer(b, "granularity",
                                                  bs->granularity);
        bs->recording = libxl__json_get_bool(b, "recording", false);
        bs->inconsistent = libxl__json_get_bool(b, "inconsistent", false);
    }
}

int libxl__disk_bitmaps_probe(libxl__gc *gc, const char *qmp_path,
                              yajl_val nodes, const char *vdev,
                              const char *image, libxl_disk_format fmt,
                              libxl__disk_bitmaps *db_r, const char **why_r)
{
    yajl_val chain;
    char *err = NULL;
    size_t i;
    int rc;

    memset(db_r, 0, sizeof(*db_r));
    db_r->vdev = vdev;
    *why_r = NULL;
    if (qmp_path && !nodes) {
        rc = libxl__qmp_run_sync(gc, qmp_path, "query-named-block-nodes",
                                 libxl__qmp_args_flat(gc), 0, true, &nodes);
        if (rc || !nodes || !YAJL_IS_ARRAY(nodes)) {
            *why_r = "QEMU does not answer query-named-block-nodes";
            return rc ? rc : ERROR_FAIL;
        }
    }
    chain = libxl__qemu_img_info_sync(gc, image, true, &err);
    if (!chain) {
        *why_r = GCSPRINTF("cannot read image '%s'%s%s", image,
                           err ? ": " : "", err ? err : "");
        return ERROR_FAIL;
    }
    if (!YAJL_IS_ARRAY(chain)) {
        yajl_val one = libxl__json_new_array(gc);
        libxl__json_append(gc, one, chain);
        chain = one;
    }
    GCNEW_ARRAY(db_r->layers, chain->u.array.len + 1);
    for (i = 0; i < chain->u.array.len; i++) {
        yajl_val info = chain->u.array.values[i];
        libxl__bitmap_layer *ly = &db_r->layers[db_r->num_layers++];
        const char *f = libxl__json_get_string(info, "format");

        ly->file = libxl__json_get_string(info, "filename");
        if (!i) ly->file = image;
        ly->format = i ? LIBXL_DISK_FORMAT_UNKNOWN : fmt;
        if (i && f) libxl__disk_format_from_qemu(f, &ly->format);
        layer_from_info(gc, info, ly);
        if (nodes && ly->file)
            ly->node = libxl__qmp_node_for_file(gc, nodes, ly->file,
                                                ly->format);
        if (ly->node) layer_from_node(gc, nodes, ly->node, ly);
    }
    return 0;
}

const libxl__bitmap_state *libxl__disk_bitmap_find(
    const libxl__disk_bitmaps *db, int layer, const char *name)
{
    const libxl__bitmap_layer *ly = &db->layers[layer];
    int j;
    for (j = 0; j < ly->num_bitmaps; j++)
        if (!strcmp(ly->bitmaps[j].name, name)) return &ly->bitmaps[j];
    return NULL;
}

const char *libxl__checkpoint_bitmap_problem(libxl__gc *gc,
                                             const libxl__disk_bitmaps *db,
                                             const char *name, bool newest)
{
    const libxl__bitmap_state *bs;
    bool found = false;
    int i;

    for (i = 0; i < db->num_layers; i++) {
        bs = libxl__disk_bitmap_find(db, i, name);
        if (!bs) continue;
        found = true;
        if (bs->inconsistent)
            return GCSPRINTF("bitmap '%s' is inconsistent on '%s' (%s): "
                             "it cannot say what changed", name,
                             db->layers[i].file,
                             db->layers[i].node
                             ? "QEMU says so"
                             : "left in use: its QEMU died with it open");
    }
    if (!found)
        return GCSPRINTF("bitmap '%s' is missing (on no image of the "
                         "disk's chain)", name);
    if (newest && db->num_layers) {
        bs = libxl__disk_bitmap_find(db, 0, name);
        if (!bs)
            return GCSPRINTF("bitmap '%s' is not on the active image '%s': "
                             "writes since are not tracked", name,
                             db->layers[0].file);
        if (!bs->recording)
            return GCSPRINTF("bitmap '%s' does not record on the active "
                             "image '%s': writes since are not tracked",
                             name, db->layers[0].file);
    }
    return NULL;
}

/*
 * Continuity.  Checkpoint i's bitmap on a disk (with the names merged
 * into it: its group) records from i until the disk's next checkpoint
 * j, on whichever image was active meanwhile: it is made on one image,
 * carried into each overlay made while it records, and j is made where
 * it still records.  So the group must be on every layer from the
 * lowest that has it up to the lowest that has j's group, and, i being
 * the disk's newest, up to the active image, recording there.  A layer
 * without it (a bitmap QEMU never wrote out because it was killed, one
 * removed by hand) holds writes no union sees.  Merged names count as
 * the group's: a live delete leaves its name on the read-only layers
 * and puts its bits in the predecessor's on the active one.
 */
static bool group_on(const libxl__disk_bitmaps *db, int layer,
                     const libxlsnap_checkpoint *cp, const char *bitmap,
                     bool recording)
{
    const libxl__bitmap_state *bs = libxl__disk_bitmap_find(db, layer,
                                                            bitmap);
    int m;

    if (bs && (!recording || bs->recording)) return true;
    for (m = 0; m < cp->num_merged; m++) {
        bs = libxl__disk_bitmap_find(db, layer, cp->merged[m]);
        if (bs && (!recording || bs->recording)) return true;
    }
    return false;
}

/* the lowest layer having checkpoint i's group on db's disk, or -1 */
static int group_lowest(const libxl__disk_bitmaps *db,
                        const libxl__checkpoint_list *l, int i)
{
    const libxlsnap_checkpoint_disk *k =
        libxl__checkpoint_disk(&l->cps[i], db->vdev);
    int j;

    for (j = db->num_layers - 1; k && j >= 0; j--)
        if (group_on(db, j, &l->cps[i], k->bitmap, false)) return j;
    return -1;
}

/* checkpoint i (which covers db's disk) against the continuity rule */
static const char *group_problem(libxl__gc *gc,
                                 const libxl__disk_bitmaps *db,
                                 const libxl__checkpoint_list *l, int i)
{
    const libxlsnap_checkpoint *cp = &l->cps[i];
    const char *bm = libxl__checkpoint_disk(cp, db->vdev)->bitmap;
    int lo = group_lowest(db, l, i), up = 0, nx, j;

    if (lo < 0)
        return GCSPRINTF("bitmap '%s' is missing (on no image of the "
                         "disk's chain)", bm);
    for (nx = i + 1; nx < l->num; nx++)
        if (libxl__checkpoint_disk(&l->cps[nx], db->vdev)) break;
    if (nx < l->num) {
        up = group_lowest(db, l, nx);
        if (up < 0) {
            /* where the next one begins is not known: no gap at least */
            for (up = 0; up < lo && !group_on(db, up, cp, bm, false); up++)
                ;
        }
        if (up > lo) up = lo;
    }
    for (j = lo - 1; j >= up; j--) {
        if (group_on(db, j, cp, bm, false)) continue;
        if (!j)
            return GCSPRINTF("bitmap '%s' is not on the active image "
                             "'%s': writes since are not tracked", bm,
                             db->layers[0].file);
        return GCSPRINTF("bitmap '%s' is missing on '%s' (an image it "
                         "must be on, between '%s' and the active one): "
                         "the writes made while it was the active image "
                         "are not tracked", bm, db->layers[j].file,
                         db->layers[lo].file);
    }
    if (nx == l->num && !group_on(db, 0, cp, bm, true))
        return GCSPRINTF("bitmap '%s' does not record on the active image "
                         "'%s': writes since are not tracked", bm,
                         db->layers[0].file);
    return NULL;
}

const char *libxl__checkpoint_union_problem(libxl__gc *gc,
                                            const libxl__disk_bitmaps *db,
                                            const libxl__checkpoint_list *l,
                                            const char *from, const char *to)
{
    int ifrom = libxl__checkpoint_index(l, from);
    int ito = to ? libxl__checkpoint_index(l, to) : l->num;
    const char *p;
    int i, j, m, any = 0;

    if (ifrom < 0 || ito < 0) return "no such checkpoint";
    for (i = ifrom; i < ito; i++) {
        const libxlsnap_checkpoint *cp = &l->cps[i];
        const libxlsnap_checkpoint_disk *k =
            libxl__checkpoint_disk(cp, db->vdev);
        if (!k) continue;
        any++;
        /* an inconsistent copy of any of its names, on any layer */
        for (m = -1; m < cp->num_merged; m++) {
            const char *name = m < 0 ? k->bitmap : cp->merged[m];
            for (j = 0; j < db->num_layers; j++) {
                const libxl__bitmap_state *bs =
                    libxl__disk_bitmap_find(db, j, name);
                if (bs && bs->inconsistent)
                    return libxl__checkpoint_bitmap_problem(gc, db, name,
                                                            false);
            }
        }
        p = group_problem(gc, db, l, i);
        if (p) return p;
    }
    return any ? NULL : "no bitmap";
}

yajl_val libxl__checkpoint_merge_sources(libxl__gc *gc,
                                         const libxl__disk_bitmaps *db,
                                         const char *const *names, int n)
{
    yajl_val arr = NULL, o;
    int i, k;

    for (i = 0; i < db->num_layers; i++) {
        if (!db->layers[i].node) continue;
        for (k = 0; k < n; k++) {
            if (!libxl__disk_bitmap_find(db, i, names[k])) continue;
            if (!arr) arr = libxl__json_new_array(gc);
            o = libxl__json_append_object(gc, arr);
            libxl__json_add_string(gc, &o, "node", db->layers[i].node);
            libxl__json_add_string(gc, &o, "name", names[k]);
        }
    }
    return arr;
}

/* ---------------------------------------------------------------- */
/* an image's bitmaps into another's (snapshot-delete's merges) */

int libxl__bitmaps_fold_image(libxl__gc *gc, const char *qmp_path,
                              const char *from, libxl_disk_format ffmt,
                              const char *into, libxl_disk_format ifmt,
                              bool set_state, const char **why_r)
{
    libxl__disk_bitmaps fdb, idb;
    yajl_val nodes = NULL, actions, args = NULL, act, data, srcs, one;
    const char *why = NULL, *fnode = NULL, *inode = NULL;
    char *err = NULL;
    int j, rc;

    *why_r = NULL;

    if (ffmt != LIBXL_DISK_FORMAT_QCOW2 || ifmt != LIBXL_DISK_FORMAT_QCOW2)
        return 0;
    if (qmp_path) {
        rc = libxl__qmp_run_sync(gc, qmp_path, "query-named-block-nodes",
                                 libxl__qmp_args_flat(gc), 0, true, &nodes);
        if (rc || !nodes || !YAJL_IS_ARRAY(nodes)) {
            *why_r = "QEMU does not answer query-named-block-nodes";
            return rc ? rc : ERROR_FAIL;
        }
        fnode = libxl__qmp_node_for_file(gc, nodes, from, ffmt);
        inode = libxl__qmp_node_for_file(gc, nodes, into, ifmt);
        if (!fnode || !inode) {
            *why_r = "QEMU has no node for one of them";
            return ERROR_FAIL;
        }
    }
    /* one layer each (the top of the probe) */
    rc = libxl__disk_bitmaps_probe(gc, NULL, nodes, NULL, from, ffmt, &fdb,
                                   &why);
    if (!rc) rc = libxl__disk_bitmaps_probe(gc, NULL, nodes, NULL, into,
                                            ifmt, &idb, &why);
    if (rc) {
        *why_r = why;
        return rc;
    }
    actions = libxl__json_new_array(gc);
    for (j = 0; fdb.num_layers && j < fdb.layers[0].num_bitmaps; j++) {
        const libxl__bitmap_state *fb = &fdb.layers[0].bitmaps[j];
        const libxl__bitmap_state *ib =
            idb.num_layers ? libxl__disk_bitmap_find(&idb, 0, fb->name) : NULL;
        bool record = set_state ? fb->recording : ib && ib->recording;

        if (fb->inconsistent) continue;   /* nothing to trust in it */
        if (qmp_path) {
            if (!ib) {
                act = libxl__json_append_object(gc, actions);
                libxl__json_add_string(gc, &act, "type",
                                       "block-dirty-bitmap-add");
                data = libxl__json_add_object(gc, &act, "data");
                libxl__json_add_string(gc, &data, "node", inode);
                libxl__json_add_string(gc, &data, "name", fb->name);
                if (fb->granularity)
                    libxl__json_add_uint64(gc, &data, "granularity",
                                           fb->granularity);
                libxl__json_add_bool(gc, &data, "persistent", true);
                if (!record) libxl__json_add_bool(gc, &data, "disabled", true);
            } else if (ib->recording != record) {
                bitmap_action(gc, actions, record
                              ? "block-dirty-bitmap-enable"
                              : "block-dirty-bitmap-disable", inode, fb->name);
            }
            act = libxl__json_append_object(gc, actions);
            libxl__json_add_string(gc, &act, "type",
                                   "block-dirty-bitmap-merge");
            data = libxl__json_add_object(gc, &act, "data");
            libxl__json_add_string(gc, &data, "node", inode);
            libxl__json_add_string(gc, &data, "target", fb->name);
            srcs = libxl__json_add_array(gc, &data, "bitmaps");
            one = libxl__json_append_object(gc, srcs);
            libxl__json_add_string(gc, &one, "node", fnode);
            libxl__json_add_string(gc, &one, "name", fb->name);
            continue;
        }
        if (!ib) {
            rc = libxl__exec_sync(gc, libxl__qemu_img_bitmap_args(gc, into,
                                      fb->name, fb->granularity, NULL, 0),
                                  60000, NULL, &err);
            if (rc) goto failed;
        }
        rc = libxl__exec_sync(gc, libxl__qemu_img_bitmap_args(gc, into,
                                  fb->name, 0, from, ffmt), 60000, NULL, &err);
        if (!rc && (!ib || ib->recording != record))
            rc = libxl__exec_sync(gc, img_bitmap(gc, record ? "--enable"
                                                     : "--disable",
                                                 into, fb->name, NULL),
                                  60000, NULL, &err);
        if (rc) goto failed;
    }
    if (!qmp_path || !actions->u.array.len) return 0;
    libxl__json_add(gc, &args, "actions", actions);
    rc = libxl__qmp_run_sync(gc, qmp_path, "transaction", args, 0, true,
                             NULL);
    if (rc) *why_r = "QEMU refused the merge";
    return rc;
 failed:
    why = err ? libxl__tool_error_line(gc, err) : NULL;
    *why_r = why ? why : "qemu-img bitmap failed";
    return rc;
}

void libxl__bitmaps_fold_warn(libxl__gc *gc, const char *vdev,
                              const char *from, const char *into,
                              const char *why)
{
    LOG(WARN, "disk %s: the dirty bitmaps of '%s' could not be merged into "
        "'%s' (%s): the checkpoints lose what they recorded there; make a "
        "new checkpoint (and a full backup)", vdev, from, into,
        why ? why : "see above");
}

/* ---------------------------------------------------------------- */
/* making one */

static const libxl_device_disk *domain_disk(const libxl__domain *d,
                                            const char *vdev)
{
    int i;
    for (i = 0; i < d->num_disks; i++)
        if (d->disks[i].vdev && !strcmp(d->disks[i].vdev, vdev))
            return &d->disks[i];
    return NULL;
}

/* name, description, time, parent, domain of a new checkpoint, checked */
static int plan_record(libxl__gc *gc, const libxl__domain *d,
                       const libxl__checkpoint_list *l, const char *name,
                       const char *description, libxlsnap_checkpoint *cp_r)
{
    struct timespec now;

    libxlsnap_checkpoint_init(cp_r);
    if (!name || libxlsnap_name_check(name) || !libxl__utf8_valid(name)) {
        LOG(ERROR, "invalid checkpoint name '%s' (no '/', '..', ',', "
            "blanks, control characters, leading '.' or '-', digits only, "
            "more than 200 bytes, or bytes that are not UTF-8)",
            name ? libxl__printable(gc, name) : "");
        return ERROR_INVAL;
    }
    if (libxl__checkpoint_index(l, name) >= 0) {
        LOG(ERROR, "domain %s already has a checkpoint named '%s'",
            d->name, name);
        return ERROR_INVAL;
    }
    if (description && !libxl__utf8_valid(description)) {
        LOG(ERROR, "the description is not valid UTF-8 text");
        return ERROR_INVAL;
    }
    cp_r->name = GCSTRDUP(name);
    cp_r->description = description && *description
        ? GCSTRDUP(description) : NULL;
    clock_gettime(CLOCK_REALTIME, &now);
    cp_r->creation_time = now.tv_sec;
    cp_r->creation_nsec = now.tv_nsec;
    if (l->num) {
        /* after the newest, whatever the clock says: the order is the
         * chain's */
        const libxlsnap_checkpoint *nw = &l->cps[l->num - 1];
        if (cp_cmp(cp_r, nw) <= 0) {
            cp_r->creation_time = nw->creation_time;
            cp_r->creation_nsec = nw->creation_nsec + 1;
            if (cp_r->creation_nsec > 999999999) {
                cp_r->creation_time++;
                cp_r->creation_nsec = 0;
            }
        }
        cp_r->parent = GCSTRDUP(nw->name);
    }
    cp_r->domain_name = GCSTRDUP(d->name);
    cp_r->domain_uuid = d->uuid;
    return 0;
}

int libxl__checkpoint_plan_images(libxl__gc *gc, const libxl__domain *d,
                                  const libxl__checkpoint_list *l,
                                  const char *name, const char *description,
                                  const char *const *vdevs,
                                  const char *const *images, int n,
                                  libxlsnap_checkpoint *cp_r)
{
    int i, rc;

    rc = plan_record(gc, d, l, name, description, cp_r);
    if (rc) return rc;
    if (!n) {
        LOG(ERROR, "domain %s has no qcow2 disk to make a checkpoint of "
            "(a checkpoint needs persistent dirty bitmaps)", d->name);
        return ERROR_INVAL;
    }
    GCNEW_ARRAY(cp_r->disks, n);
    for (i = 0; i < n; i++) {
        libxlsnap_checkpoint_disk *k = &cp_r->disks[cp_r->num_disks++];
        k->vdev = GCSTRDUP(vdevs[i]);
        k->bitmap = cp_r->name;
        k->image = GCSTRDUP(images[i]);
        k->format = LIBXL_DISK_FORMAT_QCOW2;
    }
    return 0;
}

int libxl__checkpoint_plan(libxl__gc *gc, const libxl__domain *d,
                           const libxl__checkpoint_list *l, const char *name,
                           const char *description,
                           const char *const *vdevs, int num_vdevs,
                           libxlsnap_checkpoint *cp_r)
{
    yajl_val nodes = NULL;
    int i, j, rc;

    rc = plan_record(gc, d, l, name, description, cp_r);
    if (rc) return rc;
    if (!num_vdevs) {
        /* every disk that can have one (as libvirt's default) */
        GCNEW_ARRAY(vdevs, d->num_disks + 1);
        for (i = 0; i < d->num_disks; i++)
            if (d->disks[i].format == LIBXL_DISK_FORMAT_QCOW2 &&
                d->disks[i].pdev_path &&
                libxl__image_is_file(d->disks[i].pdev_path))
                ((const char **)vdevs)[num_vdevs++] = d->disks[i].vdev;
    }
    if (!num_vdevs) {
        LOG(ERROR, "domain %s has no qcow2 disk to make a checkpoint of "
            "(a checkpoint needs persistent dirty bitmaps)", d->name);
        return ERROR_INVAL;
    }
    GCNEW_ARRAY(cp_r->disks, num_vdevs);
    if (d->running) {
        rc = libxl__qmp_run_sync(gc, d->qmp_path, "query-named-block-nodes",
                                 libxl__qmp_args_flat(gc), 0, true, &nodes);
        if (rc || !nodes || !YAJL_IS_ARRAY(nodes)) {
            LOG(ERROR, "domain %s: QEMU does not answer "
                "query-named-block-nodes", d->name);
            return rc ? rc : ERROR_FAIL;
        }
    }
    for (i = 0; i < num_vdevs; i++) {
        const libxl_device_disk *dk = domain_disk(d, vdevs[i]);
        libxlsnap_checkpoint_disk *k;
        libxl__disk_bitmaps db;
        const char *why;

        if (!dk) {
            LOG(ERROR, "domain %s has no disk '%s'", d->name,
                libxl__printable(gc, vdevs[i]));
            return ERROR_INVAL;
        }
        for (j = 0; j < i; j++)
            if (!strcmp(cp_r->disks[j].vdev, vdevs[i])) {
                LOG(ERROR, "disk %s is named twice", vdevs[i]);
                return ERROR_INVAL;
            }
        if (dk->format != LIBXL_DISK_FORMAT_QCOW2 || !dk->pdev_path ||
            !libxl__image_is_file(dk->pdev_path)) {
            LOG(ERROR, "disk %s: its active image '%s' is not a qcow2 file: "
                "a checkpoint needs persistent dirty bitmaps (qcow2)",
                dk->vdev, dk->pdev_path ? dk->pdev_path : "");
            return ERROR_INVAL;
        }
        if (d->running && !libxl__qmp_node_for_file(gc, nodes, dk->pdev_path,
                                                     dk->format)) {
            LOG(ERROR, "disk %s: QEMU does not run its active image '%s'",
                dk->vdev, dk->pdev_path);
            return ERROR_INVAL;
        }
        rc = libxl__disk_bitmaps_probe(gc, d->running ? d->qmp_path : NULL,
                                       nodes, dk->vdev, dk->pdev_path,
                                       dk->format, &db, &why);
        if (rc) {
            LOG(ERROR, "disk %s: %s", dk->vdev, why);
            return rc;
        }
        for (j = 0; j < db.num_layers; j++)
            if (libxl__disk_bitmap_find(&db, j, name)) {
                LOG(ERROR, "disk %s: image '%s' already has a dirty bitmap "
                    "named '%s'", dk->vdev, db.layers[j].file, name);
                return ERROR_INVAL;
            }
        k = &cp_r->disks[cp_r->num_disks++];
        k->vdev = GCSTRDUP(dk->vdev);
        k->bitmap = cp_r->name;
        k->image = GCSTRDUP(dk->pdev_path);
        k->format = dk->format;
    }
    return 0;
}

/* the bitmap the disk's previous newest checkpoint recorded in, or NULL */
static const char *prev_bitmap(const libxl__checkpoint_list *l, int before,
                               const char *vdev)
{
    int p = libxl__checkpoint_newest_on(l, vdev, before);
    return p < 0 ? NULL : libxl__checkpoint_disk(&l->cps[p], vdev)->bitmap;
}

static yajl_val node_bitmap(yajl_val nodes, const char *node,
                            const char *name)
{
    size_t i, j;

    for (i = 0; nodes && i < nodes->u.array.len; i++) {
        yajl_val n = nodes->u.array.values[i], bms;
        const char *nn = libxl__json_get_string(n, "node-name");
        if (!nn || strcmp(nn, node)) continue;
        bms = libxl__json_get(n, "dirty-bitmaps");
        for (j = 0; bms && YAJL_IS_ARRAY(bms) && j < bms->u.array.len; j++) {
            const char *b = libxl__json_get_string(bms->u.array.values[j],
                                                   "name");
            if (b && !strcmp(b, name)) return bms->u.array.values[j];
        }
    }
    return NULL;
}

static void bitmap_action(libxl__gc *gc, yajl_val actions, const char *type,
                          const char *node, const char *name)
{
    yajl_val act = libxl__json_append_object(gc, actions), data;

    libxl__json_add_string(gc, &act, "type", type);
    data = libxl__json_add_object(gc, &act, "data");
    libxl__json_add_string(gc, &data, "node", node);
    libxl__json_add_string(gc, &data, "name", name);
    if (!strcmp(type, "block-dirty-bitmap-add"))
        libxl__json_add_bool(gc, &data, "persistent", true);
}

static void merge_action(libxl__gc *gc, yajl_val actions, const char *node,
                         const char *target, const char *src)
{
    yajl_val act = libxl__json_append_object(gc, actions), data, arr;

    libxl__json_add_string(gc, &act, "type", "block-dirty-bitmap-merge");
    data = libxl__json_add_object(gc, &act, "data");
    libxl__json_add_string(gc, &data, "node", node);
    libxl__json_add_string(gc, &data, "target", target);
    arr = libxl__json_add_array(gc, &data, "bitmaps");
    libxl__json_append_string(gc, arr, src);
}

void libxl__checkpoint_live_actions(libxl__gc *gc,
                                    const libxl__checkpoint_list *l,
                                    const libxlsnap_checkpoint *cp,
                                    const char *vdev, yajl_val nodes,
                                    const char *from_node, const char *node,
                                    yajl_val actions)
{
    int me = libxl__checkpoint_index(l, cp->name);
    const char *prev = prev_bitmap(l, me < 0 ? l->num : me, vdev);
    yajl_val b = prev ? node_bitmap(nodes, from_node ? from_node : node,
                                    prev) : NULL;

    if (b && libxl__json_get_bool(b, "recording", false))
        bitmap_action(gc, actions, "block-dirty-bitmap-disable", node, prev);
    bitmap_action(gc, actions, "block-dirty-bitmap-add", node,
                  libxl__checkpoint_disk(cp, vdev)->bitmap);
}

/* `qemu-img bitmap OP image name [more]` (gc) */
static const char *const *img_bitmap(libxl__gc *gc, const char *op,
                                     const char *image, const char *name,
                                     const char *src)
{
    libxl__flexarray *a = libxl__flexarray_new(gc);

    libxl__flexarray_append_pair(a, CTX->qemu_img, "bitmap");
    libxl__flexarray_append(a, op);
    if (src) libxl__flexarray_append(a, src);
    libxl__flexarray_append_pair(a, image, name);
    return a->data;
}

void libxl__checkpoint_offline_cmds(libxl__gc *gc,
                                    const libxl__checkpoint_list *l,
                                    const libxlsnap_checkpoint *cp,
                                    const char *vdev, const char *image,
                                    const char *const **cmds_r[], int *n_r)
{
    int me = libxl__checkpoint_index(l, cp->name);
    const char *prev = prev_bitmap(l, me < 0 ? l->num : me, vdev);
    const char *why;
    libxl__disk_bitmaps db;
    const libxl__bitmap_state *bs = NULL;

    GCNEW_ARRAY(*cmds_r, 2);
    *n_r = 0;
    if (prev && !libxl__disk_bitmaps_probe(gc, NULL, NULL, vdev, image,
                                           LIBXL_DISK_FORMAT_QCOW2, &db,
                                           &why) && db.num_layers)
        bs = libxl__disk_bitmap_find(&db, 0, prev);
    /* an in-use bitmap (QEMU died with it) records nothing any more,
     * and qemu-img refuses to disable it */
    if (bs && bs->recording && !bs->inconsistent)
        (*cmds_r)[(*n_r)++] = img_bitmap(gc, "--disable", image, prev, NULL);
    (*cmds_r)[(*n_r)++] = img_bitmap(gc, "--add", image,
                                     libxl__checkpoint_disk(cp, vdev)->bitmap,
                                     NULL);
}

int libxl__checkpoint_save(libxl__gc *gc, const libxl__snapshot_store *st,
                           const libxlsnap_checkpoint *cp)
{
    const char *text = libxl__checkpoint_to_text(gc, cp);

    if (!text) return ERROR_FAIL;
    return libxl__snapshot_store_put1(gc, st,
                                      libxl__checkpoint_record_name(gc,
                                                                    cp->name),
                                      text, strlen(text), XTL_ERROR);
}

/*
 * The bitmap name on disk vdev folded into into (NULL: only removed),
 * into recording again if enable: live on the writable node of each
 * layer QEMU has (only the active one is writable: the read-only ones
 * keep name, which the record's "merged" covers) as actions appended
 * to actions (fold_send sends them, every disk's in one transaction),
 * offline on every layer, with qemu-img.  Steps done again are no-ops (only what is there is touched),
 * so a recovery may run it twice.  A failure: ERROR_FAIL, logged.
 */
static int fold_bitmap(libxl__gc *gc, const libxl__domain *d,
                       const libxl_device_disk *dk, const char *name,
                       const char *into, bool enable, yajl_val actions)
{
    libxl__disk_bitmaps db;
    const char *why;
    int i, rc;

    rc = libxl__disk_bitmaps_probe(gc, d->running ? d->qmp_path : NULL, NULL,
                                   dk->vdev, dk->pdev_path, dk->format, &db,
                                   &why);
    if (rc) {
        LOG(ERROR, "disk %s: %s", dk->vdev, why);
        return rc;
    }
    if (d->running) {
        const char *node = db.num_layers ? db.layers[0].node : NULL;
        if (!node) {
            LOG(ERROR, "disk %s: QEMU does not run its active image '%s'",
                dk->vdev, dk->pdev_path);
            return ERROR_FAIL;
        }
        if (libxl__disk_bitmap_find(&db, 0, name)) {
            if (into) {
                if (!libxl__disk_bitmap_find(&db, 0, into)) {
                    bitmap_action(gc, actions, "block-dirty-bitmap-add",
                                  node, into);
                    if (!enable)
                        bitmap_action(gc, actions,
                                      "block-dirty-bitmap-disable", node,
                                      into);
                }
                merge_action(gc, actions, node, into, name);
            }
            bitmap_action(gc, actions, "block-dirty-bitmap-remove", node,
                          name);
        }
        if (into && enable) {
            const libxl__bitmap_state *bs =
                libxl__disk_bitmap_find(&db, 0, into);
            if (bs && !bs->recording)
                bitmap_action(gc, actions, "block-dirty-bitmap-enable", node,
                              into);
        }
        return 0;
    }
    for (i = db.num_layers - 1; i >= 0; i--) {
        const libxl__bitmap_layer *ly = &db.layers[i];
        const libxl__bitmap_state *bs = libxl__disk_bitmap_find(&db, i, name);
        const char *const *cmds[4];
        int n = 0, k;

        if (!bs) continue;
        if (into) {
            if (!libxl__disk_bitmap_find(&db, i, into))
                cmds[n++] = img_bitmap(gc, "--add", ly->file, into, NULL);
            cmds[n++] = img_bitmap(gc, "--merge", ly->file, into, name);
            if (i == 0 && enable)
                cmds[n++] = img_bitmap(gc, "--enable", ly->file, into, NULL);
        }
        cmds[n++] = img_bitmap(gc, "--remove", ly->file, name, NULL);
        for (k = 0; k < n; k++) {
            rc = libxl__exec_sync(gc, cmds[k], 60000, NULL, NULL);
            if (rc) return rc;          /* logged */
            if (libxl__fault_point("checkpoint")) { /* tests */ }
        }
    }
    if (into && enable && db.num_layers) {
        const libxl__bitmap_state *bs = libxl__disk_bitmap_find(&db, 0, into);
        if (bs && !bs->recording) {
            rc = libxl__exec_sync(gc, img_bitmap(gc, "--enable",
                                                 db.layers[0].file, into,
                                                 NULL), 60000, NULL, NULL);
            if (rc) return rc;
        }
    }
    return 0;
}

/* live: the folds of every disk, in one transaction (atomic) */
static int fold_send(libxl__gc *gc, const libxl__domain *d, yajl_val actions,
                     const char *what)
{
    yajl_val args = NULL;
    int rc;

    if (!d->running || !actions->u.array.len) return 0;
    libxl__json_add(gc, &args, "actions", actions);
    rc = libxl__qmp_run_sync(gc, d->qmp_path, "transaction", args, 0, false,
                             NULL);
    if (rc)
        LOG(ERROR, "domain %s: QEMU refused the bitmaps' transaction of %s "
            "(nothing was changed)", d->name, what);
    return rc;
}

int libxl__checkpoint_undo(libxl__gc *gc, const libxl__domain *d,
                           const libxl__checkpoint_list *l,
                           const libxlsnap_checkpoint *cp)
{
    int me = libxl__checkpoint_index(l, cp->name);
    yajl_val actions = libxl__json_new_array(gc);
    int i, rc = 0, r;

    for (i = 0; i < cp->num_disks; i++) {
        const libxl_device_disk *dk = domain_disk(d, cp->disks[i].vdev);
        const char *prev = prev_bitmap(l, me < 0 ? l->num : me,
                                       cp->disks[i].vdev);
        if (!dk) continue;
        r = fold_bitmap(gc, d, dk, cp->disks[i].bitmap, prev, true, actions);
        if (r) {
            LOG(WARN, "disk %s: checkpoint '%s' could not be undone: its "
                "bitmap may be left (xl snapshot-check reports it)",
                dk->vdev, cp->name);
            if (!rc) rc = r;
        }
    }
    r = fold_send(gc, d, actions, GCSPRINTF("the undo of checkpoint '%s'",
                                            cp->name));
    if (r) {
        LOG(WARN, "domain %s: checkpoint '%s' could not be undone: its "
            "bitmaps may be left (xl snapshot-check reports them)", d->name,
            cp->name);
        if (!rc) rc = r;
    }
    return rc;
}

/* ---------------------------------------------------------------- */
/* deleting one */

/*
 * Checkpoint index x of l deleted from the disks (d's), then the
 * records: x's successor re-parented, x's predecessors on its disks
 * noting its bitmap (and those merged into it) as merged, x's record
 * removed, in one put.  Redone by the recovery of its journal.
 */
static int delete_checkpoint(libxl__gc *gc, const libxl__domain *d,
                             const libxl__snapshot_store *st,
                             libxl__checkpoint_list *l, int x)
{
    libxlsnap_checkpoint *cp = &l->cps[x];
    libxl__store_put *p;
    yajl_val actions = libxl__json_new_array(gc);
    bool *touched;
    int i, j, np = 0, rc;

    GCNEW_ARRAY(touched, l->num + 1);
    for (i = 0; i < cp->num_disks; i++) {
        const libxlsnap_checkpoint_disk *k = &cp->disks[i];
        const libxl_device_disk *dk = domain_disk(d, k->vdev);
        int pi = libxl__checkpoint_newest_on(l, k->vdev, x);
        bool newest = libxl__checkpoint_newest_on(l, k->vdev, l->num) == x;
        const char *into = pi >= 0
            ? libxl__checkpoint_disk(&l->cps[pi], k->vdev)->bitmap : NULL;

        if (pi >= 0) touched[pi] = true;
        if (!dk) continue;            /* the disk is gone: nothing to do */
        rc = fold_bitmap(gc, d, dk, k->bitmap, into, newest, actions);
        if (rc) return rc;
        if (libxl__fault_point("checkpoint")) { /* tests */ }
    }
    rc = fold_send(gc, d, actions, GCSPRINTF("the delete of checkpoint '%s'",
                                             cp->name));
    if (rc) return rc;
    GCNEW_ARRAY(p, l->num + 2);
    for (i = 0; i < l->num; i++) {
        libxlsnap_checkpoint *c = &l->cps[i];
        bool changed = false;

        if (i == x) continue;
        if (c->parent && !strcmp(c->parent, cp->name)) {
            c->parent = cp->parent;
            changed = true;
        }
        if (touched[i]) {
            const char **m;
            int n = c->num_merged;
            GCNEW_ARRAY(m, n + cp->num_merged + 2);
            for (j = 0; j < n; j++) m[j] = c->merged[j];
            add_name(gc, &m, &n, cp->name);
            for (j = 0; j < cp->num_merged; j++)
                add_name(gc, &m, &n, cp->merged[j]);
            c->merged = (char **)m;
            c->num_merged = n;
            changed = true;
        }
        if (!changed) continue;
        p[np].name = libxl__checkpoint_record_name(gc, c->name);
        p[np].value = libxl__checkpoint_to_text(gc, c);
        p[np].len = strlen(p[np].value);
        np++;
    }
    p[np].name = libxl__checkpoint_record_name(gc, cp->name);
    p[np].value = NULL;
    np++;
    return libxl__snapshot_store_put(gc, st, p, np, XTL_ERROR);
}

/*
 * Before a delete changes anything: a bitmap of x that cannot be trusted
 * cannot be merged (the predecessor would claim to cover writes it
 * never saw): refused in one line, unless x is the first of its disks
 * (then it is only removed).
 */
static int delete_refused(libxl__gc *gc, const libxl__domain *d,
                          const libxl__checkpoint_list *l, int x)
{
    const libxlsnap_checkpoint *cp = &l->cps[x];
    int i, k;

    for (i = 0; i < cp->num_disks; i++) {
        const libxlsnap_checkpoint_disk *cd = &cp->disks[i];
        const libxl_device_disk *dk = domain_disk(d, cd->vdev);
        int pi = libxl__checkpoint_newest_on(l, cd->vdev, x);
        libxl__disk_bitmaps db;
        const char *why;

        if (!dk || pi < 0) continue;
        if (libxl__disk_bitmaps_probe(gc, d->running ? d->qmp_path : NULL,
                                      NULL, dk->vdev, dk->pdev_path,
                                      dk->format, &db, &why)) {
            LOG(ERROR, "disk %s: %s", dk->vdev, why);
            return ERROR_FAIL;
        }
        for (k = 0; k < db.num_layers; k++) {
            const libxl__bitmap_state *bs =
                libxl__disk_bitmap_find(&db, k, cd->bitmap);
            if (bs && bs->inconsistent) {
                LOG(ERROR, "checkpoint '%s' cannot be merged into '%s': "
                    "its bitmap on disk %s is inconsistent ('%s'); delete "
                    "the checkpoints before it first (what changed since "
                    "them is not known either)", cp->name, l->cps[pi].name,
                    dk->vdev, db.layers[k].file);
                return ERROR_INVAL;
            }
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- */
/* journal */

static int journal_write(libxl__gc *gc, const libxl__snapshot_store *st,
                         const char *op, const libxlsnap_checkpoint *cp)
{
    yajl_val j = NULL;
    char *text;

    libxl__json_add_string(gc, &j, "op", op);
    libxl__json_add(gc, &j, "checkpoint", libxl__checkpoint_to_tree(gc, cp));
    text = libxl__json_to_string(gc, j);
    return libxl__journal_write_text(gc, st, text, strlen(text), false);
}

int libxl__checkpoint_recover(libxl__gc *gc, libxl__snapshot_op *op,
                              yajl_val j)
{
    const char *what = libxl__json_get_string(j, "op"), *why = NULL;
    libxl__checkpoint_list l;
    libxlsnap_checkpoint cp;
    int rc, x;

    rc = libxl__checkpoint_from_tree(gc, gc, libxl__json_get(j, "checkpoint"),
                                     &cp, &why);
    if (rc)
        return libxl__journal_unusable(gc, op, GCSPRINTF("holds no valid "
                                       "checkpoint (%s)", why));
    rc = libxl__checkpoint_load(gc, &op->st, false, &l);
    if (rc) return rc;
    x = libxl__checkpoint_index(&l, cp.name);
    if (!strcmp(what, "checkpoint-create")) {
        if (x >= 0) {
            /* the record was written: it happened */
            LOG(INFO, "domain %s: checkpoint '%s' had been made",
                op->d.name, cp.name);
            return 0;
        }
        rc = libxl__checkpoint_undo(gc, &op->d, &l, &cp);
        if (rc) return rc;
        LOG(WARN, "domain %s: an interrupted checkpoint-create of '%s' was "
            "rolled back", op->d.name, cp.name);
        return 0;
    }
    /* checkpoint-delete: forward */
    if (x < 0) return 0;              /* its records were saved */
    rc = delete_checkpoint(gc, &op->d, &op->st, &l, x);
    if (rc) return rc;
    LOG(WARN, "domain %s: an interrupted checkpoint-delete of '%s' was "
        "finished", op->d.name, cp.name);
    return 0;
}

/* ---------------------------------------------------------------- */
/* snapshot-check */

void libxl__checkpoint_check(libxl__gc *gc, const libxl__snapshot_store *st,
                             const libxl__domain *d, char ***problems,
                             int *num)
{
    libxl__checkpoint_list l;
    libxl__disk_bitmaps *dbs;
    const char **whys;
    yajl_val nodes = NULL;
    int i, k, m;

#define PROBLEM(...) do {                                   \
        GCREALLOC_ARRAY(*problems, *num + 1);               \
        (*problems)[(*num)++] = GCSPRINTF(__VA_ARGS__);     \
    } while (0)

    if (libxl__checkpoint_load(gc, st, true, &l)) return;   /* logged */
    for (i = 0; i < l.num_damage; i++) PROBLEM("%s", l.damage[i]);
    if (!l.num) return;
    if (d->running &&
        libxl__qmp_run_sync(gc, d->qmp_path, "query-named-block-nodes",
                            libxl__qmp_args_flat(gc), 0, true, &nodes))
        nodes = NULL;
    GCNEW_ARRAY(dbs, d->num_disks + 1);
    GCNEW_ARRAY(whys, d->num_disks + 1);
    for (m = 0; m < d->num_disks; m++) {
        const libxl_device_disk *dk = &d->disks[m];
        if (!dk->pdev_path) continue;
        if (d->running && !nodes) {
            whys[m] = "QEMU does not answer query-named-block-nodes";
            continue;
        }
        if (libxl__disk_bitmaps_probe(gc, d->running ? d->qmp_path : NULL,
                                      nodes, dk->vdev, dk->pdev_path,
                                      dk->format, &dbs[m], &whys[m]))
            continue;
        whys[m] = NULL;
    }
    for (i = 0; i < l.num; i++) {
        const libxlsnap_checkpoint *cp = &l.cps[i];
        for (k = 0; k < cp->num_disks; k++) {
            const libxlsnap_checkpoint_disk *cd = &cp->disks[k];
            const char *p;
            for (m = 0; m < d->num_disks; m++)
                if (d->disks[m].vdev && !strcmp(d->disks[m].vdev, cd->vdev))
                    break;
            if (m == d->num_disks) {
                PROBLEM("checkpoint '%s' disk %s: the domain has no such "
                        "disk any more", cp->name, cd->vdev);
                continue;
            }
            if (whys[m]) {
                PROBLEM("checkpoint '%s' disk %s: %s", cp->name, cd->vdev,
                        whys[m]);
                continue;
            }
            p = libxl__checkpoint_bitmap_problem(gc, &dbs[m], cd->bitmap,
                    libxl__checkpoint_newest_on(&l, cd->vdev, l.num) == i);
            if (!p) p = group_problem(gc, &dbs[m], &l, i);
            if (p)
                PROBLEM("checkpoint '%s' disk %s: %s", cp->name, cd->vdev, p);
        }
    }
#undef PROBLEM
}

/* the problem of each disk of cp (list and get) */
static void fill_problems(libxl__gc *gc, const libxl__domain *d,
                          const libxl__checkpoint_list *l, int i,
                          libxlsnap_checkpoint *out)
{
    int k;

    for (k = 0; k < out->num_disks; k++) {
        libxlsnap_checkpoint_disk *cd = &out->disks[k];
        const libxl_device_disk *dk = domain_disk(d, cd->vdev);
        libxl__disk_bitmaps db;
        const char *p = NULL;

        if (!dk) p = "the domain has no such disk any more";
        else if (!libxl__disk_bitmaps_probe(gc,
                                            d->running ? d->qmp_path : NULL,
                                            NULL, dk->vdev, dk->pdev_path,
                                            dk->format, &db, &p))
            p = libxl__checkpoint_bitmap_problem(gc, &db, cd->bitmap,
                    libxl__checkpoint_newest_on(l, cd->vdev, l->num) == i);
        if (!p && dk) p = group_problem(gc, &db, l, i);
        free(cd->problem);
        cd->problem = p ? strdup(p) : NULL;
    }
}

/* ---------------------------------------------------------------- */
/* the public calls */

static int load_list(libxl__gc *gc, const char *domain, libxl__domain *d,
                     libxl__checkpoint_list *l)
{
    libxl__snapshot_store st;
    int rc;

    rc = libxl__domain_identify(gc, domain, d, NULL);
    if (rc) return rc;
    rc = libxl__snapshot_store_open(gc, CTX->state_dir, &d->uuid, &st);
    if (rc) return rc;
    return libxl__checkpoint_load(gc, &st, false, l);
}

int libxlsnap_checkpoint_list(libxlsnap_ctx *ctx, const char *domain,
                              unsigned flags, libxlsnap_checkpoint **list_r,
                              int *nb_r)
{
    if (ARGS_MISSING(ctx, domain, list_r, nb_r)) return ERROR_INVAL;
    if (FLAGS_UNKNOWN(ctx, flags, LIBXLSNAP_CHECKPOINT_LIST_CHECK))
        return ERROR_INVAL;
    GC_INIT(ctx);
    libxl__domain d;
    libxl__checkpoint_list l;
    libxlsnap_checkpoint *out;
    int i, rc;

    *list_r = NULL;
    *nb_r = 0;
    rc = load_list(gc, domain, &d, &l);
    if (rc) goto out;
    out = calloc(l.num ? l.num : 1, sizeof(*out));
    if (!out) abort();
    for (i = 0; i < l.num; i++) {
        libxl__checkpoint_copy(&out[i], &l.cps[i]);
        if (flags & LIBXLSNAP_CHECKPOINT_LIST_CHECK)
            fill_problems(gc, &d, &l, i, &out[i]);
    }
    *list_r = out;
    *nb_r = l.num;
 out:
    GC_FREE;
    return rc;
}

int libxlsnap_checkpoint_get(libxlsnap_ctx *ctx, const char *domain,
                             const char *name,
                             libxlsnap_checkpoint *checkpoint_r)
{
    if (ARGS_MISSING(ctx, domain, name, checkpoint_r)) return ERROR_INVAL;
    GC_INIT(ctx);
    libxl__domain d;
    libxl__checkpoint_list l;
    int i, rc;

    rc = load_list(gc, domain, &d, &l);
    if (rc) goto out;
    i = libxl__checkpoint_index(&l, name);
    if (i < 0) {
        LOG(ERROR, "domain %s has no checkpoint named '%s'", d.name,
            libxl__printable(gc, name));
        rc = ERROR_NOTFOUND;
        goto out;
    }
    libxl__checkpoint_copy(checkpoint_r, &l.cps[i]);
    fill_problems(gc, &d, &l, i, checkpoint_r);
 out:
    GC_FREE;
    return rc;
}

/* create and delete: one operation under the lock */
typedef struct {
    libxl__ao *ao;
    libxl__snapshot_op op;
    bool delete;
    const char *name, *description;
    const char **vdevs;
    int num_vdevs;
    libxlsnap_checkpoint *out;        /* create: the caller's */
    libxlsnap_progress_how progress;
} ckpt_state;

static void ckpt_begun(libxl__egc *egc, libxl__snapshot_op *op, int rc);

static int ckpt_start(libxlsnap_ctx *ctx, const char *domain, bool delete,
                      const char *name, libxlsnap_checkpoint *cp,
                      const libxlsnap_progress_how *progress,
                      const libxl_asyncop_how *ao_how)
{
    AO_CREATE(ctx, ao_how);
    EGC_INIT(ctx);
    ckpt_state *cs;
    int i;

    GCNEW(cs);
    cs->ao = ao;
    cs->delete = delete;
    cs->name = GCSTRDUP(name);
    cs->out = cp;
    if (progress) cs->progress = *progress;
    if (cp) {
        cs->description = GCSTRDUP(cp->description);
        GCNEW_ARRAY(cs->vdevs, cp->num_disks + 1);
        for (i = 0; i < cp->num_disks; i++)
            if (cp->disks && cp->disks[i].vdev)
                cs->vdevs[cs->num_vdevs++] = GCSTRDUP(cp->disks[i].vdev);
    }
    cs->op.ao = ao;
    cs->op.domain = GCSTRDUP(domain);
    cs->op.callback = ckpt_begun;
    cs->op.partial_tree = true;
    libxl__snapshot_op_begin(egc, &cs->op);
    EGC_FREE;
    return AO_INPROGRESS;
}

int libxlsnap_checkpoint_create(libxlsnap_ctx *ctx, const char *domain,
                                libxlsnap_checkpoint *checkpoint,
                                unsigned flags,
                                const libxlsnap_progress_how *progress,
                                const libxl_asyncop_how *ao_how)
{
    if (ARGS_MISSING(ctx, domain, checkpoint)) return ERROR_INVAL;
    if (FLAGS_UNKNOWN(ctx, flags, 0)) return ERROR_INVAL;
    return ckpt_start(ctx, domain, false, checkpoint->name, checkpoint,
                      progress, ao_how);
}

int libxlsnap_checkpoint_delete(libxlsnap_ctx *ctx, const char *domain,
                                const char *name, unsigned flags,
                                const libxlsnap_progress_how *progress,
                                const libxl_asyncop_how *ao_how)
{
    if (ARGS_MISSING(ctx, domain, name)) return ERROR_INVAL;
    if (FLAGS_UNKNOWN(ctx, flags, 0)) return ERROR_INVAL;
    return ckpt_start(ctx, domain, true, name, NULL, progress, ao_how);
}

static int do_create(libxl__gc *gc, ckpt_state *cs)
{
    libxl__snapshot_op *op = &cs->op;
    libxl__checkpoint_list l;
    libxlsnap_checkpoint cp;
    libxl__domain_record rec;
    yajl_val nodes = NULL, actions, args = NULL;
    int i, k, rc;

    rc = libxl__checkpoint_load(gc, &op->st, false, &l);
    if (rc) return rc;
    rc = libxl__checkpoint_plan(gc, &op->d, &l, cs->name, cs->description,
                                cs->vdevs, cs->num_vdevs, &cp);
    if (rc) return rc;
    /* a domain named by its config file may have no record yet: without
     * one, naming it later (shut off) finds nothing */
    rc = libxl__snapshot_store_load_domain(gc, &op->st, &rec);
    if (rc) return rc;
    if (!rec.name) {
        rc = libxl__snapshot_store_save(gc, &op->st, &op->tree);
        if (rc) return rc;
    }
    rc = journal_write(gc, &op->st, "checkpoint-create", &cp);
    if (rc) return rc;
    if (libxl__fault_point("checkpoint")) { /* tests */ }
    if (op->d.running) {
        rc = libxl__qmp_run_sync(gc, op->d.qmp_path,
                                 "query-named-block-nodes",
                                 libxl__qmp_args_flat(gc), 0, false, &nodes);
        if (rc) goto fail;
        actions = libxl__json_new_array(gc);
        for (i = 0; i < cp.num_disks; i++)
            libxl__checkpoint_live_actions(gc, &l, &cp, cp.disks[i].vdev,
                nodes, NULL, libxl__qmp_node_for_file(gc, nodes,
                                                      cp.disks[i].image,
                                                      cp.disks[i].format),
                actions);
        libxl__json_add(gc, &args, "actions", actions);
        rc = libxl__qmp_run_sync(gc, op->d.qmp_path, "transaction", args, 0,
                                 false, NULL);
        if (rc) {
            LOG(ERROR, "domain %s: QEMU refused the checkpoint's "
                "transaction (nothing was made)", op->d.name);
            libxl__journal_remove(gc, &op->st);   /* atomic: nothing made */
            return rc;
        }
    } else {
        for (i = 0; i < cp.num_disks; i++) {
            const char *const **cmds;
            int n;
            libxl__checkpoint_offline_cmds(gc, &l, &cp, cp.disks[i].vdev,
                                           cp.disks[i].image, &cmds, &n);
            for (k = 0; k < n; k++) {
                rc = libxl__exec_sync(gc, cmds[k], 60000, NULL, NULL);
                if (rc) goto fail;
                if (libxl__fault_point("checkpoint")) { /* tests */ }
            }
        }
    }
    if (libxl__fault_point("checkpoint")) { /* tests */ }
    rc = libxl__checkpoint_save(gc, &op->st, &cp);
    if (rc) goto fail;
    libxl__journal_remove(gc, &op->st);
    libxlsnap_checkpoint_dispose(cs->out);
    libxl__checkpoint_copy(cs->out, &cp);
    libxl__progress_report(&cs->progress, "checkpoint", 1, 1);
    return 0;

 fail:
    if (!libxl__checkpoint_undo(gc, &op->d, &l, &cp))
        libxl__journal_remove(gc, &op->st);
    return rc;
}

static int do_delete(libxl__gc *gc, ckpt_state *cs)
{
    libxl__snapshot_op *op = &cs->op;
    libxl__checkpoint_list l;
    int x, rc;

    rc = libxl__checkpoint_load(gc, &op->st, false, &l);
    if (rc) return rc;
    x = libxl__checkpoint_index(&l, cs->name);
    if (x < 0) {
        LOG(ERROR, "domain %s has no checkpoint named '%s'", op->d.name,
            libxl__printable(gc, cs->name));
        return ERROR_NOTFOUND;
    }
    rc = delete_refused(gc, &op->d, &l, x);
    if (rc) return rc;
    rc = journal_write(gc, &op->st, "checkpoint-delete", &l.cps[x]);
    if (rc) return rc;
    if (libxl__fault_point("checkpoint")) { /* tests */ }
    rc = delete_checkpoint(gc, &op->d, &op->st, &l, x);
    if (rc) {
        LOG(ERROR, "domain %s: checkpoint-delete of '%s' stopped part-way: "
            "the next operation on the domain (xl snapshot-recover) "
            "finishes it", op->d.name, cs->name);
        return rc;
    }
    libxl__journal_remove(gc, &op->st);
    libxl__progress_report(&cs->progress, "checkpoint", 1, 1);
    return 0;
}

static void ckpt_begun(libxl__egc *egc, libxl__snapshot_op *op, int rc)
{
    ckpt_state *cs = CONTAINER_OF(op, ckpt_state, op);
    STATE_AO_GC(cs->ao);

    if (rc) {
        libxl__ao_complete(egc, ao, rc);
        return;
    }
    rc = libxl__snapshot_op_settled(gc, op);
    if (rc) goto out;
    rc = cs->delete ? do_delete(gc, cs) : do_create(gc, cs);
 out:
    libxl__snapshot_op_end(gc, op);
    libxl__ao_complete(egc, ao, rc);
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
