/*
 * libxl_snapshot_backend_overlay.c - external snapshots: qcow2 overlays
 *
 * The disk's active image is frozen as the snapshot and a new qcow2
 * overlay on it becomes the active image: the record's disk is of type
 * "external", file the frozen image, overlay the new one.  Offline the
 * overlay is made with `qemu-img create -b`, and the frozen image's
 * recording dirty bitmaps are carried over into it (so that
 * incremental backups go on across the snapshot); live, in the QMP
 * transaction of the create (blockdev-snapshot of a blockdev-add'ed
 * overlay), where the frozen image's copies are disabled at the same
 * instant (they hold the writes until the snapshot, and a later commit
 * into that image must not mark them: checkpoints' "between X and Y");
 * offline with qemu-img bitmap --disable, once the overlay has them all,
 * and an undone snapshot enables them again (bitmaps_back).  A VHD image gets VHD children instead, offline
 * (libxl_snapshot_backend_vhd.c, which shares these operations).
 *
 * It is the default for every disk no other backend takes: raw, or a
 * qcow2 disk whose config image is raw.
 */
#include "libxl_snapshot_internal.h"

#include <unistd.h>

/* `qemu-img bitmap OP image name` (gc) */
static const char *const *bitmap_op_args(libxl__gc *gc, const char *op,
                                         const char *image, const char *name)
{
    libxl__flexarray *a = libxl__flexarray_new(gc);

    libxl__flexarray_append_pair(a, CTX->qemu_img, "bitmap");
    libxl__flexarray_append(a, op);
    libxl__flexarray_append_pair(a, image, name);
    return a->data;
}

bool libxl__overlay_on(libxl__gc *gc, const char *overlay, const char *base)
{
    yajl_val v = libxl__file_exists(overlay)
        ? libxl__qemu_img_info_sync(gc, overlay, false, NULL) : NULL;
    const char *b = v ? libxl__json_get_string(v, "full-backing-filename")
                      : NULL;

    if (!b && v) b = libxl__json_get_string(v, "backing-filename");
    return b && !strcmp(b, base);
}

static bool overlay_probe(libxl__gc *gc, const libxl_device_disk *dk,
                          const libxl_device_disk *config, void **priv_r)
{
    return true;
}

/* the overlay: asked for, else beside the image, named after the
 * config's image and the snapshot */
int libxl__overlay_snapshot_plan(libxl__gc *gc, const libxl__create_plan *p,
                                 libxlsnap_disk_snapshot *ds)
{
    const libxl_device_disk *dk = p->dk;
    const libxlsnap_domain_snapshot *s = p->s;
    const libxlsnap_disk_snapshot *r = p->req;
    int j, rc = libxl__image_file_refused(gc, p);

    if (!rc) rc = libxl__qemu_disk_refused(gc, p);
    if (rc) return rc;
    if (r && r->overlay && *r->overlay) {
        ds->overlay = libxl__abs_path(gc, r->overlay);
    } else {
        ds->overlay = GCSPRINTF("%s/%s.%s.%s",
                                libxl__path_dirname(gc, dk->pdev_path),
                                libxl__path_stem(gc, p->config->pdev_path),
                                s->name,
                                libxl__overlay_ext(dk->format,
                                                   p->op->d.running));
    }
    if (libxl__file_exists(ds->overlay)) {
        LOG(ERROR, "disk %s: overlay '%s' already exists%s", dk->vdev,
            ds->overlay, p->owner_of(gc, p->owner_ctx, ds->overlay));
        return ERROR_INVAL;
    }
    if (!strcmp(ds->overlay, ds->file)) {
        LOG(ERROR, "disk %s: the overlay cannot be the image itself",
            dk->vdev);
        return ERROR_INVAL;
    }
    for (j = 0; j < p->index; j++) {
        if (s->disks[j].overlay &&
            !strcmp(s->disks[j].overlay, ds->overlay)) {
            LOG(ERROR, "disks %s and %s would share overlay '%s'",
                s->disks[j].vdev, ds->vdev, ds->overlay);
            return ERROR_INVAL;
        }
    }
    return 0;
}

void libxl__overlay_snapshot_cmds(libxl__gc *gc,
                                  const libxlsnap_disk_snapshot *ds,
                                  void *priv, yajl_val info,
                                  const char *const **cmds_r[], int *n_r)
{
    libxl__qemu_img_bitmap *bm = NULL;
    int nb = libxl__qemu_img_bitmaps(info, &bm, gc), j;

    GCNEW_ARRAY(*cmds_r, 1 + 2 * nb);
    *n_r = 0;
    (*cmds_r)[(*n_r)++] = libxl__qemu_img_overlay_args(gc, ds->file,
                                                       ds->format,
                                                       ds->overlay);
    for (j = 0; j < nb; j++) {
        if (!bm[j].recording) continue;
        (*cmds_r)[(*n_r)++] =
            libxl__qemu_img_bitmap_args(gc, ds->overlay, bm[j].name,
                                        bm[j].granularity, NULL, 0);
    }
    /* last, once the overlay has them all: the frozen image's stop
     * (libxl__overlay_undo starts them again) */
    for (j = 0; j < nb; j++)
        if (bm[j].recording)
            (*cmds_r)[(*n_r)++] = bitmap_op_args(gc, "--disable", ds->file,
                                                 bm[j].name);
}

int libxl__overlay_bitmaps_finish(libxl__gc *gc,
                                  const libxlsnap_disk_snapshot *ds)
{
    libxl__qemu_img_bitmap *ov = NULL, *im = NULL;
    yajl_val oi, ii;
    int no, ni, j, k, rc;

    if (ds->format != LIBXL_DISK_FORMAT_QCOW2 || !ds->overlay) return 0;
    ii = libxl__qemu_img_info_sync(gc, ds->file, false, NULL);
    ni = ii ? libxl__qemu_img_bitmaps(ii, &im, gc) : 0;
    if (!ni) return 0;
    oi = libxl__qemu_img_info_sync(gc, ds->overlay, false, NULL);
    if (!oi) return ERROR_FAIL;
    no = libxl__qemu_img_bitmaps(oi, &ov, gc);
    for (j = 0; j < ni; j++) {
        bool there = false;
        if (!im[j].recording) continue;
        for (k = 0; k < no; k++)
            if (!strcmp(ov[k].name, im[j].name)) there = true;
        if (!there) {
            rc = libxl__exec_sync(gc, libxl__qemu_img_bitmap_args(gc,
                                      ds->overlay, im[j].name,
                                      im[j].granularity, NULL, 0),
                                  60000, NULL, NULL);
            if (rc) return rc;
        }
        rc = libxl__exec_sync(gc, bitmap_op_args(gc, "--disable", ds->file,
                                                 im[j].name),
                              60000, NULL, NULL);
        if (rc) return rc;
    }
    return 0;
}

/*
 * An offline snapshot undone: the frozen image's bitmaps the overlay
 * had taken over (recording there, stopped in the image) record again
 * in the image.  0, or an error (*why_r).
 */
static int bitmaps_back(libxl__gc *gc, const libxlsnap_disk_snapshot *ds,
                        const char **why_r)
{
    libxl__qemu_img_bitmap *ov = NULL, *im = NULL;
    yajl_val oi, ii;
    int no, ni, j, k, rc;

    if (ds->format != LIBXL_DISK_FORMAT_QCOW2) return 0;
    oi = libxl__qemu_img_info_sync(gc, ds->overlay, false, NULL);
    no = oi ? libxl__qemu_img_bitmaps(oi, &ov, gc) : 0;
    if (!no) return 0;
    ii = libxl__qemu_img_info_sync(gc, ds->file, false, NULL);
    ni = ii ? libxl__qemu_img_bitmaps(ii, &im, gc) : 0;
    for (j = 0; j < no; j++) {
        if (!ov[j].recording) continue;
        for (k = 0; k < ni; k++) {
            if (strcmp(im[k].name, ov[j].name) || im[k].recording) continue;
            rc = libxl__exec_sync(gc, bitmap_op_args(gc, "--enable", ds->file,
                                                     im[k].name),
                                  60000, NULL, NULL);
            if (rc) {
                if (why_r)
                    *why_r = GCSPRINTF("its bitmap '%s' could not be "
                                       "enabled again", im[k].name);
                return rc;
            }
        }
    }
    return 0;
}

static bool node_exists(yajl_val nodes, const char *name)
{
    size_t i;
    for (i = 0; i < nodes->u.array.len; i++) {
        const char *n = libxl__json_get_string(nodes->u.array.values[i],
                                               "node-name");
        if (n && !strcmp(n, name)) return true;
    }
    return false;
}

/*
 * newnode NULL: appends a block-dirty-bitmap-disable to acts for node's
 * recording persistent bitmaps (the image being frozen records nothing
 * more: a commit into it later, or a pivot back onto it, must not mark
 * them); else a block-dirty-bitmap-add of each on newnode, which goes
 * on recording there.
 */
static void bitmap_actions(libxl__gc *gc, yajl_val acts, yajl_val nodes,
                           const char *node, const char *newnode)
{
    yajl_val bms = NULL, act, data;
    size_t i;

    for (i = 0; i < nodes->u.array.len; i++) {
        const char *n = libxl__json_get_string(nodes->u.array.values[i],
                                               "node-name");
        if (n && !strcmp(n, node))
            bms = libxl__json_get(nodes->u.array.values[i], "dirty-bitmaps");
    }
    for (i = 0; bms && YAJL_IS_ARRAY(bms) && i < bms->u.array.len; i++) {
        yajl_val b = bms->u.array.values[i];
        const char *name = libxl__json_get_string(b, "name");
        if (!name || !libxl__json_get_bool(b, "recording", false) ||
            !libxl__json_get_bool(b, "persistent", false))
            continue;
        act = libxl__json_append_object(gc, acts);
        if (!newnode) {
            libxl__json_add_string(gc, &act, "type",
                                   "block-dirty-bitmap-disable");
            data = libxl__json_add_object(gc, &act, "data");
            libxl__json_add_string(gc, &data, "node", node);
            libxl__json_add_string(gc, &data, "name", name);
            continue;
        }
        libxl__json_add_string(gc, &act, "type", "block-dirty-bitmap-add");
        data = libxl__json_add_object(gc, &act, "data");
        libxl__json_add_string(gc, &data, "node", newnode);
        libxl__json_add_string(gc, &data, "name", name);
        libxl__json_add_integer(gc, &data, "granularity",
                        libxl__json_get_integer(b, "granularity", 65536));
        libxl__json_add_bool(gc, &data, "persistent", true);
    }
}

/*
 * live: a new qcow2 overlay on node, named vdev-ovN (a free N), in
 * QEMU's transaction; the recording persistent bitmaps go on in it
 */
void libxl__overlay_live_actions(libxl__gc *gc,
                                 const libxlsnap_disk_snapshot *ds,
                                 yajl_val nodes, const char *node,
                                 yajl_val actions, int *seq)
{
    yajl_val act, data;
    char *newnode;

    /* the frozen image's bitmaps stop at the instant (prepared first,
     * while its node is still the writable active one) */
    bitmap_actions(gc, actions, nodes, node, NULL);
    act = libxl__json_append_object(gc, actions);
    do {
        newnode = GCSPRINTF("%s-ov%d", ds->vdev, (*seq)++);
    } while (node_exists(nodes, newnode));
    libxl__json_add_string(gc, &act, "type", "blockdev-snapshot-sync");
    data = libxl__json_add_object(gc, &act, "data");
    libxl__json_add_string(gc, &data, "node-name", node);
    libxl__json_add_string(gc, &data, "snapshot-file", ds->overlay);
    libxl__json_add_string(gc, &data, "snapshot-node-name", newnode);
    libxl__json_add_string(gc, &data, "format", "qcow2");
    libxl__json_add_string(gc, &data, "mode", "absolute-paths");
    bitmap_actions(gc, actions, nodes, node, newnode);
}

/* QEMU's message names the file's problem, not the overlay ("Could not
 * write qcow2 header: No space left on device"); it removes an overlay
 * it failed to create */
int libxl__overlay_live_refused(libxl__gc *gc,
                                const libxlsnap_disk_snapshot *ds,
                                const char *desc)
{
    return !ds->overlay || !libxl__file_exists(ds->overlay)
        ? LIBXL__REFUSED_MISSING : LIBXL__REFUSED_MAYBE;
}

int libxl__overlay_taken(libxl__gc *gc, const libxlsnap_disk_snapshot *ds)
{
    return libxl__overlay_on(gc, ds->overlay, ds->file);
}

bool libxl__overlay_taken_live(libxl__gc *gc,
                               const libxlsnap_disk_snapshot *ds, yajl_val nodes)
{
    return libxl__qmp_node_for_file(gc, nodes, ds->overlay,
                                    LIBXL_DISK_FORMAT_QCOW2);
}

void libxl__overlay_active_after(const libxlsnap_disk_snapshot *ds, bool live,
                                 const char **path_r,
                                 libxl_disk_format *fmt_r)
{
    *path_r = ds->overlay;
    *fmt_r = libxl__overlay_format(ds->format, live);
}

bool libxl__overlay_revert_undoable(const libxlsnap_disk_snapshot *ds,
                                     const libxl_device_disk *dk)
{
    return true;
}

/* a fresh overlay on the snapshot's image becomes the active one */
int libxl__overlay_revert_plan(libxl__gc *gc, const libxl__revert_plan *p,
                               libxl__revert_disk *rd)
{
    const libxlsnap_disk_snapshot *ds = rd->ds;

    rd->new_active = p->fresh;
    rd->new_format = libxl__overlay_format(ds->format, false);
    rd->new_image = true;
    GCNEW_ARRAY(rd->cmds, 1);
    rd->cmds[0] = libxl__qemu_img_overlay_args(gc, ds->file, ds->format,
                                               rd->new_active);
    rd->num_cmds = 1;
    return 0;
}

/* a new overlay on file again, unless it is there */
int libxl__overlay_revert_redo(libxl__gc *gc, yajl_val d, const char *file,
                               libxl_disk_format fmt, const char *na,
                               libxl_disk_format *fmt_r,
                               const char *const **args_r,
                               int *timeout_ms_r)
{
    *fmt_r = libxl__overlay_format(fmt, false);
    *args_r = NULL;
    if (libxl__overlay_on(gc, na, file)) return 0;
    unlink(na);
    *args_r = libxl__qemu_img_overlay_args(gc, file, fmt, na);
    *timeout_ms_r = 300000;
    return 0;
}

/* the overlay, in the format it was made in */
bool libxl__overlay_xml_source(libxl__gc *gc, const libxlsnap_disk_snapshot *ds,
                               bool live, libxl__xml_source *src)
{
    const char *fmt =
        libxl__disk_format_qemu(libxl__overlay_format(ds->format, live));

    if (!ds->overlay) return false;
    src->type = "file";
    src->driver = fmt ? fmt : "qcow2";
    src->attr = "file";
    src->value = ds->overlay;
    return true;
}

bool libxl__overlay_xml_parse(libxl__gc *gc, libxlsnap_disk_snapshot *ds,
                              const libxlsnap_domain_snapshot *s,
                              const char *file, const char *dev)
{
    ds->overlay = (char *)file;
    return ds->overlay && ds->overlay[0] == '/';
}

/* the image it froze, and the overlay it made */
int libxl__overlay_parts(libxl__gc *gc, const libxlsnap_disk_snapshot *ds,
                         libxl__snapshot_part parts[2])
{
    parts[0].kind = LIBXL__PART_FROZEN;
    parts[0].path = ds->file;
    parts[0].tag = NULL;
    parts[1].kind = LIBXL__PART_OVERLAY;
    parts[1].path = ds->overlay;
    parts[1].tag = NULL;
    return 2;
}

int libxl__overlay_present(libxl__gc *gc, const libxlsnap_disk_snapshot *ds)
{
    return libxl__file_exists(ds->file) ? 0 : ERROR_NOTFOUND;
}

/* The overlay removed, unless a record uses it. */
int libxl__overlay_undo(libxl__gc *gc, const libxl__snapshot_op *op,
                        const libxlsnap_disk_snapshot *ds,
                        const libxl__snapshot_tree *t, const char **why_r)
{
    int rc;

    if (!ds->overlay || (t && libxl__snapshot_tree_uses_file(t, ds->overlay)))
        return 0;
    if (libxl__file_exists(ds->overlay) &&
        !libxl__op_runs_image(gc, op, ds->file)) {
        rc = bitmaps_back(gc, ds, why_r);
        if (rc) return rc;
    }
    if (unlink(ds->overlay) && errno != ENOENT) {
        if (why_r) *why_r = strerror(errno);
        return ERROR_FAIL;
    }
    return 0;
}

const libxl__snapshot_backend libxl__snapshot_backend_overlay = {
    .name = "overlay",
    .type = LIBXLSNAP_DISK_SNAPSHOT_TYPE_EXTERNAL,
    .probe = overlay_probe,
    LIBXL__OVERLAY_BACKEND_OPS,
};

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
