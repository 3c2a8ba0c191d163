/*
 * libxl_snapshot_backend_internal.c - qcow2 internal snapshots
 *
 * The snapshot is kept inside the disk's qcow2 image, under a tag (the
 * snapshot's name): the record's disk is of type "internal", file the
 * image, tag the snapshot's name in it.  Offline it is taken with
 * `qemu-img snapshot -c`; live, in the QMP transaction of the create
 * (blockdev-snapshot-internal-sync), and removed with
 * blockdev-snapshot-delete-internal-sync while QEMU has the image
 * open, else with `qemu-img snapshot -d`.
 *
 * It is the default for a disk that is qcow2 both in the domain config
 * and as its active image (a raw disk running on an overlay stays
 * external, so that one disk never mixes the two).
 */
#include "libxl_snapshot_internal.h"

#include <unistd.h>

bool libxl__qcow2_has_tag(libxl__gc *gc, const char *file, const char *tag)
{
    yajl_val v = libxl__qemu_img_info_sync(gc, file, false, NULL);
    const char *id;

    return v && libxl__qemu_img_find_tag(v, tag, &id) > 0;
}

static bool internal_probe(libxl__gc *gc, const libxl_device_disk *dk,
                           const libxl_device_disk *config, void **priv_r)
{
    return config->format == LIBXL_DISK_FORMAT_QCOW2 &&
        dk->format == LIBXL_DISK_FORMAT_QCOW2;
}

static int internal_snapshot_plan(libxl__gc *gc, const libxl__create_plan *p,
                                  libxlsnap_disk_snapshot *ds)
{
    const libxl_device_disk *dk = p->dk;
    int rc = libxl__image_file_refused(gc, p);

    if (!rc) rc = libxl__qemu_disk_refused(gc, p);
    if (rc) return rc;
    if (dk->format != LIBXL_DISK_FORMAT_QCOW2) {
        LOG(ERROR, "disk %s: internal snapshots need qcow2, but '%s' is "
            "%s; use an external snapshot for it (type external)",
            dk->vdev, dk->pdev_path,
            libxl_disk_format_to_string(dk->format));
        return ERROR_INVAL;
    }
    ds->tag = GCSTRDUP(p->s->name);
    return 0;
}

/* qemu-img allows duplicate names, QMP does not: checked here */
static int internal_snapshot_info_check(libxl__gc *gc,
                                        const libxlsnap_disk_snapshot *ds,
                                        yajl_val info)
{
    const char *id;

    if (libxl__qemu_img_find_tag(info, ds->tag, &id)) {
        LOG(ERROR, "disk %s: '%s' already holds a snapshot named '%s' "
            "(made outside xl?)", ds->vdev, ds->file, ds->tag);
        return ERROR_INVAL;
    }
    return 0;
}

/* live: a qcow2 snapshot of node, in QEMU's transaction */
void libxl__internal_live_actions(libxl__gc *gc,
                                  const libxlsnap_disk_snapshot *ds,
                                  yajl_val nodes, const char *node,
                                  yajl_val actions, int *seq)
{
    yajl_val act = libxl__json_append_object(gc, actions), data;

    libxl__json_add_string(gc, &act, "type",
                           "blockdev-snapshot-internal-sync");
    data = libxl__json_add_object(gc, &act, "data");
    libxl__json_add_string(gc, &data, "device", node);
    libxl__json_add_string(gc, &data, "name", ds->tag);
}

/* QEMU's message names the node ('xvda-qcow2': our node names start
 * with the vdev) */
int libxl__internal_live_refused(libxl__gc *gc,
                                 const libxlsnap_disk_snapshot *ds,
                                 const char *desc)
{
    return strstr(desc, GCSPRINTF("'%s-", ds->vdev))
        ? LIBXL__REFUSED_NAMED : 0;
}

static void internal_snapshot_cmds(libxl__gc *gc,
                                   const libxlsnap_disk_snapshot *ds,
                                   void *priv, yajl_val info,
                                   const char *const **cmds_r[], int *n_r)
{
    GCNEW_ARRAY(*cmds_r, 1);
    (*cmds_r)[0] = libxl__qemu_img_snapshot_args(gc, 'c', ds->tag,
                                                 ds->file);
    *n_r = 1;
}

static int internal_taken(libxl__gc *gc, const libxlsnap_disk_snapshot *ds)
{
    yajl_val v;
    const char *id;

    if (!libxl__file_exists(ds->file)) return 0;
    v = libxl__qemu_img_info_sync(gc, ds->file, false, NULL);
    if (!v) {
        LOG(ERROR, "disk %s: cannot tell whether '%s' holds snapshot '%s' "
            "(qemu-img info failed)", ds->vdev, ds->file, ds->tag);
        return ERROR_FAIL;
    }
    return libxl__qemu_img_find_tag(v, ds->tag, &id) > 0;
}

static int internal_present(libxl__gc *gc, const libxlsnap_disk_snapshot *ds)
{
    return libxl__file_exists(ds->file) &&
        libxl__qcow2_has_tag(gc, ds->file, ds->tag) ? 0 : ERROR_NOTFOUND;
}

/*
 * The tag removed from its image, if it is there: over QMP while QEMU
 * has the image open, else with qemu-img (whose image locking keeps it
 * off an image QEMU has open, when QEMU could not say).  "not found":
 * a killed qemu-img never made it.
 */
static int internal_undo(libxl__gc *gc, const libxl__snapshot_op *op,
                         const libxlsnap_disk_snapshot *ds,
                         const libxl__snapshot_tree *t, const char **why_r)
{
    yajl_val info, nodes = NULL;
    const char *node = NULL, *id;
    char *err = NULL;
    int rc;

    if (!ds->tag || !ds->file || !libxl__file_exists(ds->file)) return 0;
    info = libxl__qemu_img_info_sync(gc, ds->file, false, NULL);
    /* never made (the failed disk, often): nothing to undo */
    if (info && !libxl__qemu_img_find_tag(info, ds->tag, &id)) return 0;
    if (op && op->d.running &&
        !libxl__qmp_run_sync(gc, op->d.qmp_path, "query-named-block-nodes",
                             libxl__qmp_args_flat(gc), 10000, true, &nodes) &&
        nodes && YAJL_IS_ARRAY(nodes))
        node = libxl__qmp_node_for_file(gc, nodes, ds->file, ds->format);
    if (node) {
        yajl_val args = NULL;
        libxl__json_add_string(gc, &args, "device", node);
        libxl__json_add_string(gc, &args, "name", ds->tag);
        return libxl__qmp_run_sync(gc, op->d.qmp_path,
            "blockdev-snapshot-delete-internal-sync", args,
            10000, true, NULL);
    }
    rc = libxl__exec_sync(gc, libxl__qemu_img_snapshot_args(gc, 'd', ds->tag,
                                                            ds->file),
                          60000, NULL, &err);
    if (rc && err && strstr(err, "not found")) return 0;
    if (rc && why_r) *why_r = libxl__tool_error_line(gc, err);
    return rc;
}

/* exactly one snapshot of that name in the image */
static const char *internal_check(libxl__gc *gc, void **cache,
                                  const libxlsnap_disk_snapshot *ds,
                                  yajl_val info)
{
    const char *id;
    int k = libxl__qemu_img_find_tag(info->u.array.values[0], ds->tag, &id);

    if (k == 1) return NULL;
    return GCSPRINTF("'%s' holds %s internal snapshot named '%s'", ds->file,
                     k ? "more than one" : "no", ds->tag ? ds->tag : "");
}

/* an internal snapshot in an image a later external one froze */
static bool internal_frozen(const libxlsnap_disk_snapshot *ds,
                            const libxl_device_disk *dk)
{
    return dk && dk->pdev_path && ds->file && strcmp(dk->pdev_path, ds->file);
}

static int internal_revert_plan(libxl__gc *gc, const libxl__revert_plan *p,
                                libxl__revert_disk *rd)
{
    const libxlsnap_disk_snapshot *ds = rd->ds;
    yajl_val info = p->info;
    int n = libxl__qemu_img_find_tag(info, ds->tag, &rd->tag_id);

    if (n != 1) {
        LOG(ERROR, "snapshot '%s': image '%s' of disk %s holds "
            "%s snapshot named '%s'", p->snapshot, ds->file,
            ds->vdev, n ? "more than one" : "no", ds->tag);
        return ERROR_FAIL;
    }
    GCNEW_ARRAY(rd->cmds, 1);
    rd->num_cmds = 1;
    if (!internal_frozen(ds, p->dk)) {
        rd->new_active = GCSTRDUP(ds->file);
        rd->new_format = ds->format;
        rd->forward_only = true;
        rd->cmds[0] = libxl__qemu_img_snapshot_args(gc, 'a', rd->tag_id,
                                                    ds->file);
        return 0;
    }
    /*
     * Other images are built on it: applying the snapshot in place
     * would corrupt them.  Its state is copied out into a new image
     * instead, which becomes active.
     */
    rd->copy = true;
    rd->copy_size = libxl__json_get_integer(info, "virtual-size", 0);
    /*
     * On the same backing as the image, so that its chain is the
     * snapshot's, as after a revert in place: the external snapshots
     * below stay in the active chain.  (A backing of unknown format: a
     * whole copy.)
     */
    rd->copy_base = libxl__json_get_string(info, "full-backing-filename");
    if (rd->copy_base &&
        libxl__disk_format_from_qemu(
            libxl__json_get_string(info, "backing-filename-format"),
            &rd->copy_base_format))
        rd->copy_base = NULL;
    rd->new_active = p->fresh;
    rd->new_format = LIBXL_DISK_FORMAT_QCOW2;
    rd->new_image = true;
    rd->cmds[0] = libxl__qemu_img_copy_snapshot_args(gc, ds->file,
                                                     rd->tag_id,
                                                     rd->copy_base,
                                                     rd->copy_base_format,
                                                     rd->new_active);
    return 0;
}

/* the journal's "internal": reverted in place; "copy": copied out */
static bool internal_revert_journal_owns(yajl_val d)
{
    return libxl__json_get_bool(d, "copy", false) ||
        libxl__json_get_bool(d, "internal", false);
}

static int internal_revert_redo(libxl__gc *gc, yajl_val d, const char *file,
                                libxl_disk_format fmt, const char *na,
                                libxl_disk_format *fmt_r,
                                const char *const **args_r, int *timeout_ms_r)
{
    const char *id = libxl__json_get_string(d, "tag_id");

    if (!id) return ERROR_INVAL;
    if (libxl__json_get_bool(d, "copy", false)) {
        /* a copy may have been cut short: made again */
        *fmt_r = libxl__overlay_format(fmt, false);
        unlink(na);
        *args_r = libxl__qemu_img_copy_snapshot_args(gc, file, id,
                      libxl__json_get_string(d, "copy_base"),
                      libxl__json_get_integer(d, "copy_base_format",
                                              LIBXL_DISK_FORMAT_RAW),
                      na);
        *timeout_ms_r = 3600000;
        return 0;
    }
    *fmt_r = fmt;
    *args_r = libxl__qemu_img_snapshot_args(gc, 'a', id, file);
    *timeout_ms_r = 300000;
    return 0;
}

/* the tag is the snapshot's name */
bool libxl__tag_xml_parse(libxl__gc *gc, libxlsnap_disk_snapshot *ds,
                               const libxlsnap_domain_snapshot *s,
                               const char *file, const char *dev)
{
    ds->tag = s->name;
    return true;
}

/* cache: each image's qemu-img info, asked once (a batch of
 * redefines of many snapshots in one image) */
typedef struct {
    const char **files;
    yajl_val *infos;
    int n;
} image_infos;

static const char *internal_redefine_missing(libxl__gc *gc, void **cache,
                                             const libxlsnap_disk_snapshot *ds)
{
    image_infos *ii = *cache;
    yajl_val info = NULL;
    const char *id;
    int i;

    if (!ii) {
        GCNEW(ii);
        *cache = ii;
    }
    for (i = 0; ds->file && i < ii->n && strcmp(ii->files[i], ds->file); i++)
        ;
    if (ds->file && i < ii->n) {
        info = ii->infos[i];
    } else if (ds->file) {
        info = libxl__qemu_img_info_sync(gc, ds->file, false, NULL);
        GCREALLOC_ARRAY(ii->files, ii->n + 1);
        GCREALLOC_ARRAY(ii->infos, ii->n + 1);
        ii->files[ii->n] = GCSTRDUP(ds->file);
        ii->infos[ii->n++] = info;
    }

    if (!ds->tag || !info || libxl__qemu_img_find_tag(info, ds->tag, &id) <= 0)
        return GCSPRINTF("'%s' holds no internal snapshot '%s'", ds->file,
                         ds->tag ? ds->tag : "");
    return NULL;
}

static int internal_delete_probe(libxl__gc *gc, libxl__snapshot_op *op,
                                 const char *snapshot,
                                 const libxlsnap_disk_snapshot *ds,
                                 yajl_val info, const char **tag_id_r)
{
    libxl_device_disk *dk;
    int n = libxl__qemu_img_find_tag(info, ds->tag, tag_id_r);

    if (n > 1) {
        LOG(ERROR, "disk %s: '%s' holds more than one snapshot named "
            "'%s'; nothing was changed", ds->vdev, ds->file, ds->tag);
        return ERROR_FAIL;
    }
    if (!n) {
        LOG(WARN, "disk %s: '%s' holds no snapshot '%s' any more",
            ds->vdev, ds->file, ds->tag);
        return 0;
    }
    if (!op->d.running) return 1;
    /*
     * QEMU deletes internal snapshots in a top image only, and holds its
     * backing images open read-only, which qemu-img may not write then.
     * An image it does not have open (no longer in the running chain:
     * left by a copy-out revert, say) is qemu-img's, live or not.
     */
    dk = libxl__domain_disk(&op->d, ds->vdev);
    if (!(dk && dk->pdev_path && !strcmp(dk->pdev_path, ds->file)) &&
        libxl__qmp_has_file_node(gc, op->d.qmp_path, ds->file)) {
        LOG(ERROR, "disk %s: '%s' is a backing image of the running "
            "domain; shut it down to delete snapshot '%s' (nothing was "
            "changed)", ds->vdev, ds->file, snapshot);
        return ERROR_FAIL;
    }
    return 1;
}

/* its tag in the image */
static int internal_parts(libxl__gc *gc, const libxlsnap_disk_snapshot *ds,
                          libxl__snapshot_part parts[2])
{
    if (!ds->tag) return 0;
    parts[0].kind = LIBXL__PART_TAG;
    parts[0].path = ds->file;
    parts[0].tag = ds->tag;
    return 1;
}

const libxl__snapshot_backend libxl__snapshot_backend_internal = {
    .name = "internal",
    .type = LIBXLSNAP_DISK_SNAPSHOT_TYPE_INTERNAL,
    .probe = internal_probe,
    .snapshot_plan = internal_snapshot_plan,
    .space = libxl__internal_space,
    .snapshot_cmds = internal_snapshot_cmds,
    .snapshot_info_check = internal_snapshot_info_check,
    .live_actions = libxl__internal_live_actions,
    .live_refused = libxl__internal_live_refused,
    .taken = internal_taken,
    .present = internal_present,
    .undo = internal_undo,
    .drop = internal_undo,
    .check = internal_check,
    .revert_undoable = internal_frozen,
    .revert_plan = internal_revert_plan,
    .revert_journal_owns = internal_revert_journal_owns,
    .revert_redo = internal_revert_redo,
    .xml_type = "internal",
    .xml_parse = libxl__tag_xml_parse,
    .redefine_missing = internal_redefine_missing,
    .image_info = true,
    .in_image = true,
    .delete_probe = internal_delete_probe,
    .parts = internal_parts,
};

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
