/*
 * libxl_snapshot_delete.c - deleting a snapshot
 *
 * Internal disk snapshots are removed from their image: over QMP
 * (blockdev-snapshot-delete-internal-sync on the node holding the
 * image) while the domain runs, with `qemu-img snapshot -d` when it
 * does not.  A tag that is already gone from the image is not an
 * error: the end state is the one asked for (a warning says so).
 *
 * External disk snapshots own an image that other images are built on;
 * deleting one means merging data (block commit or stream), which
 * comes with the block-job code.  Until then they are refused before
 * anything is touched, never half-deleted.  LIBXL_SNAPSHOT_DELETE_
 * METADATA_ONLY drops just the record, for any snapshot.
 *
 * The children of a deleted snapshot are re-parented to its parent; if
 * it was current, its parent becomes current.  The record goes last,
 * after every image is done.
 *
 * Before anything is removed, every image is probed: each tag must be
 * there at most once (it is then removed by ID: qemu-img allows
 * duplicate names).  If a disk still fails, the record keeps the disks
 * not yet done, and says so, so that it never claims what is gone.
 *
 * Steps: libxl_domain_snapshot_delete -> snapshot_delete_begun ->
 *   snapshot_delete_probed ->
 *   (running) snapshot_delete_qmp_connected -> snapshot_delete_nodes
 *             -> snapshot_delete_qmp_next <-> snapshot_delete_qmp_done
 *   (offline) snapshot_delete_offline_next <-> snapshot_delete_disk_done
 *   -> snapshot_delete_record -> snapshot_delete_done
 */
#include "libxl_snapshot_internal.h"

typedef struct libxl__snapshot_delete_state {
    libxl__ao *ao;
    libxl__snapshot_op op;
    const char *name;
    unsigned flags;
    libxl_domain_snapshot *snap;
    int next;
    const char **ids;                /* qcow2 snapshot ID per disk */
    bool *gone;                      /* disks whose tag is removed */
    libxl__qemu_img_info_state qi;
    const char **nodes;              /* live: node per disk */
    libxl__qmp qmp;
    libxl__exec_state es;
} libxl__snapshot_delete_state;

static void snapshot_delete_begun(libxl__egc *egc, libxl__snapshot_op *op,
                                  int rc);
static void snapshot_delete_probed(libxl__egc *egc,
                                   libxl__qemu_img_info_state *qi, int rc);
static void snapshot_delete_qmp_connected(libxl__egc *egc, libxl__qmp *qmp,
                                          yajl_val ret, int rc);
static void snapshot_delete_nodes(libxl__egc *egc, libxl__qmp *qmp,
                                  yajl_val nodes, int rc);
static void snapshot_delete_qmp_next(libxl__egc *egc,
                                     libxl__snapshot_delete_state *dls);
static void snapshot_delete_qmp_done(libxl__egc *egc, libxl__qmp *qmp,
                                     yajl_val ret, int rc);
static void snapshot_delete_offline_next(libxl__egc *egc,
                                         libxl__snapshot_delete_state *dls);
static void snapshot_delete_disk_done(libxl__egc *egc,
                                      libxl__exec_state *es, int rc,
                                      int status);
static void snapshot_delete_record(libxl__egc *egc,
                                   libxl__snapshot_delete_state *dls);
static void snapshot_delete_done(libxl__egc *egc,
                                 libxl__snapshot_delete_state *dls, int rc);

int libxl_domain_snapshot_delete(libxl_snapshot_ctx *ctx,
                                 const char *domain, const char *name,
                                 unsigned flags,
                                 const libxl_asyncop_how *ao_how)
{
    AO_CREATE(ctx, ao_how);
    EGC_INIT(ctx);
    libxl__snapshot_delete_state *dls;

    GCNEW(dls);
    dls->ao = ao;
    dls->name = GCSTRDUP(name);
    dls->flags = flags;
    libxl__qmp_init(&dls->qmp);
    libxl__exec_init(&dls->es);
    dls->op.ao = ao;
    dls->op.domain = GCSTRDUP(domain);
    dls->op.callback = snapshot_delete_begun;
    libxl__snapshot_op_begin(egc, &dls->op);
    EGC_FREE;
    return AO_INPROGRESS;
}

static bool is_internal(const libxl_disk_snapshot *ds)
{
    return ds->type == LIBXL_DISK_SNAPSHOT_TYPE_INTERNAL;
}

/* Moves dls->next to the next internal disk; false when none is left. */
static bool next_internal(libxl__snapshot_delete_state *dls)
{
    while (dls->next < dls->snap->num_disks &&
           !(is_internal(&dls->snap->disks[dls->next]) &&
             dls->ids[dls->next]))
        dls->next++;
    return dls->next < dls->snap->num_disks;
}

static void snapshot_delete_begun(libxl__egc *egc, libxl__snapshot_op *op,
                                  int rc)
{
    libxl__snapshot_delete_state *dls =
        CONTAINER_OF(op, libxl__snapshot_delete_state, op);
    STATE_AO_GC(dls->ao);
    char *ext = NULL;
    int i;

    if (rc) goto out;
    rc = libxl__blockjob_check_idle(gc, &op->st, &op->d);
    if (rc) goto out;
    dls->snap = libxl__snapshot_tree_find(&op->tree, dls->name);
    if (!dls->snap) {
        LOG(ERROR, "domain %s has no snapshot named '%s'", op->d.name,
            libxl__printable(gc, dls->name));
        rc = ERROR_NOTFOUND;
        goto out;
    }
    if (dls->flags & LIBXL_SNAPSHOT_DELETE_METADATA_ONLY) {
        snapshot_delete_record(egc, dls);
        return;
    }
    for (i = 0; i < dls->snap->num_disks; i++) {
        const libxl_disk_snapshot *ds = &dls->snap->disks[i];
        if (ds->type == LIBXL_DISK_SNAPSHOT_TYPE_EXTERNAL)
            ext = GCSPRINTF("%s%s%s", ext ?: "", ext ? ", " : "", ds->vdev);
    }
    if (ext) {
        LOG(ERROR, "snapshot '%s' is external on %s: deleting it means "
            "merging its overlay (block commit), which is not supported "
            "yet; nothing was changed (--metadata drops only the record)",
            dls->name, ext);
        rc = ERROR_NI;
        goto out;
    }
    GCNEW_ARRAY(dls->qi.images, dls->snap->num_disks);
    for (i = 0; i < dls->snap->num_disks; i++)
        if (is_internal(&dls->snap->disks[i]))
            dls->qi.images[i] = dls->snap->disks[i].file;
    dls->qi.num_images = dls->snap->num_disks;
    dls->qi.ao = ao;
    dls->qi.callback = snapshot_delete_probed;
    libxl__qemu_img_info(egc, &dls->qi);
    return;
 out:
    snapshot_delete_done(egc, dls, rc);
}

static void snapshot_delete_probed(libxl__egc *egc,
                                   libxl__qemu_img_info_state *qi, int rc)
{
    libxl__snapshot_delete_state *dls =
        CONTAINER_OF(qi, libxl__snapshot_delete_state, qi);
    libxl__snapshot_op *op = &dls->op;
    STATE_AO_GC(dls->ao);
    int i, n;

    if (rc) goto out;
    GCNEW_ARRAY(dls->ids, dls->snap->num_disks);
    GCNEW_ARRAY(dls->gone, dls->snap->num_disks);
    for (i = 0; i < dls->snap->num_disks; i++) {
        const libxl_disk_snapshot *ds = &dls->snap->disks[i];
        if (!is_internal(ds)) continue;
        n = libxl__qemu_img_find_tag(qi->infos[i], ds->tag, &dls->ids[i]);
        if (n > 1) {
            LOG(ERROR, "disk %s: '%s' holds more than one snapshot named "
                "'%s'; nothing was changed", ds->vdev, ds->file, ds->tag);
            rc = ERROR_FAIL;
            goto out;
        }
        if (!n)
            LOG(WARN, "disk %s: '%s' holds no snapshot '%s' any more",
                ds->vdev, ds->file, ds->tag);
    }
    dls->next = 0;
    if (op->d.running) {
        dls->qmp.ao = ao;
        dls->qmp.path = op->d.qmp_path;
        dls->qmp.domid = op->d.domid;
        dls->qmp.quiet = true;
        rc = libxl__qmp_connect(egc, &dls->qmp,
                                snapshot_delete_qmp_connected);
        if (rc) goto out;
        return;
    }
    snapshot_delete_offline_next(egc, dls);
    return;
 out:
    snapshot_delete_done(egc, dls, rc);
}

/* ---------------------------------------------------------------- */
/* live */

static void snapshot_delete_qmp_connected(libxl__egc *egc, libxl__qmp *qmp,
                                          yajl_val ret, int rc)
{
    libxl__snapshot_delete_state *dls =
        CONTAINER_OF(qmp, libxl__snapshot_delete_state, qmp);

    if (rc) goto out;
    rc = libxl__qmp_send(egc, qmp, "query-named-block-nodes",
                         "{\"flat\": true}", -1, snapshot_delete_nodes);
    if (rc) goto out;
    return;
 out:
    snapshot_delete_done(egc, dls, rc);
}

static void snapshot_delete_nodes(libxl__egc *egc, libxl__qmp *qmp,
                                  yajl_val nodes, int rc)
{
    libxl__snapshot_delete_state *dls =
        CONTAINER_OF(qmp, libxl__snapshot_delete_state, qmp);
    STATE_AO_GC(dls->ao);
    int i;

    if (rc) goto out;
    if (!nodes || !YAJL_IS_ARRAY(nodes)) {
        rc = ERROR_PROTOCOL_ERROR_QMP;
        goto out;
    }
    GCNEW_ARRAY(dls->nodes, dls->snap->num_disks);
    for (i = 0; i < dls->snap->num_disks; i++) {
        const libxl_disk_snapshot *ds = &dls->snap->disks[i];
        const char *n;
        if (!is_internal(ds)) continue;
        {
            libxl_device_disk *dk = libxl__domain_disk(&dls->op.d, ds->vdev);
            if (!dk || strcmp(dk->pdev_path, ds->file)) {
                /* QEMU holds backing images read-only */
                LOG(ERROR, "disk %s: '%s' is no longer the active image "
                    "(it backs '%s'); shut the domain down to delete "
                    "snapshot '%s'", ds->vdev, ds->file,
                    dk ? dk->pdev_path : "?", dls->name);
                rc = ERROR_FAIL;
                goto out;
            }
        }
        n = libxl__qmp_node_for_file(nodes, ds->file, ds->format);
        if (!n) {
            LOG(ERROR, "disk %s: QEMU has no node for '%s'", ds->vdev,
                ds->file);
            rc = ERROR_FAIL;
            goto out;
        }
        dls->nodes[i] = GCSTRDUP(n);
    }
    snapshot_delete_qmp_next(egc, dls);
    return;
 out:
    snapshot_delete_done(egc, dls, rc);
}

static void snapshot_delete_qmp_next(libxl__egc *egc,
                                     libxl__snapshot_delete_state *dls)
{
    STATE_AO_GC(dls->ao);
    const libxl_disk_snapshot *ds;
    int rc;

    if (!next_internal(dls)) {
        libxl__qmp_close(gc, &dls->qmp);
        snapshot_delete_record(egc, dls);
        return;
    }
    ds = &dls->snap->disks[dls->next];
    rc = libxl__qmp_send(egc, &dls->qmp,
                         "blockdev-snapshot-delete-internal-sync",
                         GCSPRINTF("{\"device\": %s, \"id\": %s, "
                                   "\"name\": %s}",
                                   libxl__json_quote(gc,
                                                     dls->nodes[dls->next]),
                                   libxl__json_quote(gc,
                                                     dls->ids[dls->next]),
                                   libxl__json_quote(gc, ds->tag)),
                         -1, snapshot_delete_qmp_done);
    if (rc) snapshot_delete_done(egc, dls, rc);
}

static void snapshot_delete_qmp_done(libxl__egc *egc, libxl__qmp *qmp,
                                     yajl_val ret, int rc)
{
    libxl__snapshot_delete_state *dls =
        CONTAINER_OF(qmp, libxl__snapshot_delete_state, qmp);
    STATE_AO_GC(dls->ao);
    const libxl_disk_snapshot *ds = &dls->snap->disks[dls->next];

    if (rc == ERROR_QMP_GENERIC_ERROR && qmp->error_desc &&
        strstr(qmp->error_desc, "does not exist")) {
        LOG(WARN, "disk %s: '%s' holds no snapshot '%s' any more",
            ds->vdev, ds->file, ds->tag);
        rc = 0;
    }
    if (rc) {
        LOG(ERROR, "disk %s: cannot delete snapshot '%s': %s", ds->vdev,
            ds->tag, qmp->error_desc ? qmp->error_desc : "QMP failed");
        snapshot_delete_done(egc, dls, rc);
        return;
    }
    dls->gone[dls->next++] = true;
    snapshot_delete_qmp_next(egc, dls);
}

/* ---------------------------------------------------------------- */
/* offline */

static void snapshot_delete_offline_next(libxl__egc *egc,
                                         libxl__snapshot_delete_state *dls)
{
    STATE_AO_GC(dls->ao);
    const libxl_disk_snapshot *ds;
    int rc;

    if (!next_internal(dls)) {
        snapshot_delete_record(egc, dls);
        return;
    }
    ds = &dls->snap->disks[dls->next];
    libxl__exec_init(&dls->es);
    dls->es.ao = ao;
    dls->es.what = GCSPRINTF("qemu-img (delete of %s)", ds->vdev);
    dls->es.args = libxl__qemu_img_snapshot_args(gc, 'd',
                                                 dls->ids[dls->next],
                                                 ds->file);
    dls->es.timeout_ms = 300000;
    dls->es.quiet = true;
    dls->es.callback = snapshot_delete_disk_done;
    rc = libxl__exec_start(egc, &dls->es);
    if (rc) snapshot_delete_done(egc, dls, rc);
}

static void snapshot_delete_disk_done(libxl__egc *egc,
                                      libxl__exec_state *es, int rc,
                                      int status)
{
    libxl__snapshot_delete_state *dls =
        CONTAINER_OF(es, libxl__snapshot_delete_state, es);
    STATE_AO_GC(dls->ao);
    const libxl_disk_snapshot *ds = &dls->snap->disks[dls->next];

    if (rc == ERROR_FAIL && strstr(es->err, "snapshot not found")) {
        LOG(WARN, "disk %s: '%s' holds no snapshot '%s' any more",
            ds->vdev, ds->file, ds->tag);
        rc = 0;
    }
    if (rc) {
        LOG(ERROR, "disk %s: cannot delete snapshot '%s' from '%s': %s",
            ds->vdev, ds->tag, ds->file, es->err);
        snapshot_delete_done(egc, dls, rc);
        return;
    }
    dls->gone[dls->next++] = true;
    snapshot_delete_offline_next(egc, dls);
}

/* ---------------------------------------------------------------- */

static void snapshot_delete_record(libxl__egc *egc,
                                   libxl__snapshot_delete_state *dls)
{
    STATE_AO_GC(dls->ao);
    int rc;

    libxl__snapshot_tree_remove(gc, &dls->op.tree, dls->name);
    libxl__snapshot_tree_fixup(gc, &dls->op.tree);
    rc = libxl__snapshot_store_save(gc, &dls->op.st, &dls->op.tree);
    snapshot_delete_done(egc, dls, rc);
}

static void snapshot_delete_done(libxl__egc *egc,
                                 libxl__snapshot_delete_state *dls, int rc)
{
    STATE_AO_GC(dls->ao);
    int i, n = 0;

    /* a failure after some tags were removed: say what is left */
    for (i = 0; rc && dls->gone && i < dls->snap->num_disks; i++) {
        if (!dls->gone[i]) continue;
        dls->snap->disks[i].type = LIBXL_DISK_SNAPSHOT_TYPE_NO;
        n++;
    }
    if (n) {
        LOG(ERROR, "snapshot '%s' was deleted from %d disk(s) only; its "
            "record now covers the other disks", dls->name,
            dls->snap->num_disks - n);
        libxl__snapshot_store_save(gc, &dls->op.st, &dls->op.tree);
    }
    libxl__qmp_close(gc, &dls->qmp);
    libxl__snapshot_op_end(gc, &dls->op);
    libxl__ao_complete(egc, ao, rc);
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
