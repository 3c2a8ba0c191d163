/*
 * libxl_snapshot_create.c - taking a snapshot
 *
 * Plan first, then act, then record:
 *
 *  1. Under the domain lock, every disk gets a plan: internal (a qcow2
 *     snapshot named after the snapshot, inside the active image),
 *     external (the active image is frozen and a new qcow2 overlay on
 *     top becomes active) or no.  The default is internal for qcow2
 *     and external for everything else (raw cannot hold snapshots).
 *     External overlays are named <dir>/<stem>.<snapshot>.qcow2 beside
 *     the image they cover, <stem> being the stem of the disk's image
 *     in the domain config.  Everything that can be checked is checked
 *     here: name, duplicates, formats, overlay paths.  Only the domain
 *     record and the current snapshot's are read (a partial tree): the
 *     cost does not grow with the number of snapshots.  Then the
 *     space guards (libxl_snapshot_space.c): a snapshot that would not
 *     fit is refused here, before the journal, any pause or QMP
 *     command, and before --auto-commit's merge (LIBXLSNAP_CREATE_FORCE:
 *     taken anyway, said).
 *  2. A running domain: one QMP `transaction` with an action per disk,
 *     so all disks are captured at one instant with no pause of the
 *     guest.  QEMU leaves the overlay files of a failed transaction on
 *     disk; they are removed.  A shut-off domain: qemu-img per disk;
 *     when one fails, the disks already done are undone.
 *  3. The record is written, the new snapshot becomes current and each
 *     external disk's overlay becomes its active image (the domain
 *     record, and on Xen xenstore and libxl's stored config).
 *
 * With memory (libxl_snapshot_memory.c), the transaction is sent at
 * the memory save's final instant, with the guest stopped.  The image
 * gets its name only once complete, which is what recovery goes by: if
 * the record then cannot be written (a full file system), the journal
 * stays and the next command records the snapshot with its memory; an
 * image that was not finished is removed and the snapshot recorded
 * disk-only, as said then.  The journal is written once, before
 * anything is done, and never updated.
 *
 * Quiesce (disk-only, running): the QEMU guest agent freezes the
 * guest's file systems (guest-sync, guest-fsfreeze-freeze) just before
 * the transaction, and thaws them right after it, whatever its outcome;
 * the thaw is retried.  Without an agent, or when it fails or times
 * out: _QUIESCE fails the snapshot, _QUIESCE_TRY takes it
 * crash-consistent, says so, and records it ("quiesce").
 *
 * With a checkpoint (libxlsnap_domain_snapshot_create_checkpoint): its
 * bitmaps on the images each qcow2 disk runs on after the snapshot, in
 * the disks' transaction while the domain runs (QEMU makes the overlay
 * and the bitmap on it in one instant), else right after the disks,
 * under the same lock (and the same pause, for volumes): a failure
 * there undoes the snapshot.  Its record is written after the
 * snapshot's.
 *
 * Nothing pending: a delete the recovery at the start left part-done
 * is finished first (create_finish_delete, as snapshot-recover does),
 * and a disk in a block job (our job records, before the plan:
 * libxl__snapshot_op_settled; one QEMU runs that xl did not start,
 * after it, when QEMU takes the snapshot: qemu_jobs_idle) refuses it.
 * After the plan, before the journal, the chain length (libxl_snapshot_chain.c): an overlay that would make a
 * chain longer than max_chain refuses it, or with
 * LIBXLSNAP_CREATE_AUTO_COMMIT a layer is merged first by a block
 * commit of its own (create_merge), and the create begins again from
 * its lock.
 *
 * Steps, in order:
 *   libxlsnap_domain_snapshot_create -> create_begin ->
 *     snapshot_create_begun [-> create_finish_delete -> (the delete)
 *     -> create_begin ...] -> snapshot_create_chains [-> create_merge ->
 *     (the commit) -> create_begin ...] ->
 *     (running) snapshot_create_qmp_connected -> snapshot_create_nodes
 *               -> [quiesce: qga_connected -> qga_synced -> qga_frozen]
 *               -> snapshot_create_transaction_done -> [qga_thawed]
 *               -> snapshot_create_transaction_outcome
 *     (memory)  snapshot_create_nodes -> libxl__memory_save ->
 *               snapshot_create_instant -> snapshot_create_instant_done
 *               -> snapshot_create_memory_done
 *     (offline) snapshot_create_probed ->
 *               snapshot_create_offline_next <-> snapshot_create_disk_done
 *   -> snapshot_create_record -> snapshot_create_done
 */
#include "libxl_snapshot_internal.h"

#include <inttypes.h>
#include <time.h>
#include <unistd.h>

typedef struct libxl__snapshot_create_state {
    libxl__ao *ao;
    libxl__snapshot_op op;
    libxlsnap_domain_snapshot req;       /* what the caller asked for */
    libxlsnap_domain_snapshot *out;      /* caller's, filled on success */
    unsigned flags;
    libxlsnap_domain_snapshot snap;      /* the record being built (gc) */
    libxl__qmp qmp;
    yajl_val actions;                /* live: the disks' transaction */
    const char *tx_error;            /* QEMU's refusal of it */
    libxl__qmp qga;                  /* quiesce: the guest agent */
    const char *agent;               /* its socket, NULL: none */
    bool freeze_sent, quiesce_required;
    int tx_rc, thaw_tries;
    libxl__memory_save_state mss;    /* with memory */
    libxl__image_chain *chain;       /* per disk: its image's chain,
                                        for the space and chain checks */
    libxl__qemu_img_info_state chains;  /* those not read from headers */
    libxl__qemu_img_info_state qi;   /* offline: images, probed */
    libxl__exec_state es;
    struct { int disk; const char *const *args; } *cmds;  /* offline */
    int num_cmds, next;
    int memory_rc;                   /* disks taken, memory not */
    int thaw_rc;                     /* taken, but the guest not thawed */
    bool journaled, keep_journal;
    uint64_t memory_size, pause_ms;
    libxlsnap_progress_how progress;   /* a copy; zero: none */
    void **priv;                     /* per disk: its backend's probe */
    bool lvm_live;                   /* running, LVM disks: paused */
    uint64_t paused_at;              /* 0: not paused by us */
    /* with a checkpoint (libxlsnap_domain_snapshot_create_checkpoint) */
    const char *ckpt_name, *ckpt_desc;
    libxlsnap_checkpoint *ckpt_out;  /* the caller's, filled on success */
    libxl__checkpoint_list ckl;
    libxlsnap_checkpoint ckpt;       /* planned (gc) */
    bool ckpt_in_tx;                 /* in the disks' transaction */
    int merges;                      /* auto-commit: layers merged */
    const char *udel, *udel_how, *udel_rest;  /* a delete it finishes */
} libxl__snapshot_create_state;

static void snapshot_create_begun(libxl__egc *egc, libxl__snapshot_op *op,
                                  int rc);
static void create_begin(libxl__egc *egc, libxl__snapshot_create_state *scs);
static void snapshot_create_done(libxl__egc *egc,
                                 libxl__snapshot_create_state *scs, int rc);

/*
 * A file create would make exists: ": it is snapshot S's ..." when a
 * record owns it (the whole tree asked, at the cost of reading it, only
 * then), else "".
 */
static const char *owner_of(libxl__gc *gc, void *ctx, const char *path)
{
    libxl__snapshot_create_state *scs = ctx;
    libxlsnap_domain_snapshot probe;
    libxl__snapshot_clash *c;

    if (libxl__snapshot_op_load_all(gc, &scs->op)) return "";
    /* a memory image is nobody else's in any role: any owner answers */
    memset(&probe, 0, sizeof(probe));
    probe.name = (char *)"";
    probe.memory = (char *)path;
    if (!libxl__snapshot_ownership(gc, &scs->op.tree, &probe, &c)) return "";
    return GCSPRINTF(": it is snapshot %s's %s", c[0].owner,
                     c[0].owner_what);
}
static void snapshot_create_qmp_connected(libxl__egc *egc, libxl__qmp *qmp,
                                          yajl_val ret, int rc);
static void snapshot_create_nodes(libxl__egc *egc, libxl__qmp *qmp,
                                  yajl_val ret, int rc);
static void snapshot_create_transaction_done(libxl__egc *egc,
                                             libxl__qmp *qmp,
                                             yajl_val ret, int rc);
static void qga_connected(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                          int rc);
static void qga_synced(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                       int rc);
static void qga_frozen(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                       int rc);
static void qga_thaw(libxl__egc *egc, libxl__snapshot_create_state *scs);
static void qga_thawed(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                       int rc);
static void qga_thaw_reconnected(libxl__egc *egc, libxl__qmp *qmp,
                                 yajl_val ret, int rc);
static void snapshot_create_transaction_outcome(libxl__egc *egc,
                                  libxl__snapshot_create_state *scs);
static void snapshot_create_instant(libxl__egc *egc,
                                    libxl__memory_save_state *mss, int rc);
static void snapshot_create_instant_done(libxl__egc *egc, libxl__qmp *qmp,
                                         yajl_val ret, int rc);
static void snapshot_create_memory_done(libxl__egc *egc,
                                        libxl__memory_save_state *mss,
                                        int rc);
static void snapshot_create_chains(libxl__egc *egc,
                                   libxl__qemu_img_info_state *qi, int rc);
static void snapshot_create_probed(libxl__egc *egc,
                                   libxl__qemu_img_info_state *qi, int rc);
static void snapshot_create_offline_next(libxl__egc *egc,
                                         libxl__snapshot_create_state *scs);
static void snapshot_create_disk_done(libxl__egc *egc,
                                      libxl__exec_state *es, int rc,
                                      int status);
static void snapshot_create_record(libxl__egc *egc,
                                   libxl__snapshot_create_state *scs);
static void snapshot_create_done(libxl__egc *egc,
                                 libxl__snapshot_create_state *scs, int rc);

#define CREATE_FLAGS (LIBXLSNAP_CREATE_DRY_RUN |                        \
                      LIBXLSNAP_CREATE_NO_METADATA |                    \
                      LIBXLSNAP_CREATE_LIVE |                           \
                      LIBXLSNAP_CREATE_QUIESCE |                        \
                      LIBXLSNAP_CREATE_QUIESCE_TRY |                    \
                      LIBXLSNAP_CREATE_FORCE |                          \
                      LIBXLSNAP_CREATE_AUTO_COMMIT)

/*
 * What the request alone says is wrong, before the domain is looked
 * at: unknown flags, a disk named twice, relative paths (the library
 * has no cwd of the caller's to resolve them against).
 */
static int request_check(libxl__gc *gc, const libxlsnap_domain_snapshot *req,
                         unsigned flags)
{
    const char *m = req->memory;
    int i, j;

    if (libxl__flags_unknown(CTX, "libxlsnap_domain_snapshot_create", flags,
                             CREATE_FLAGS))
        return ERROR_INVAL;
    if (m && *m && strcmp(m, "no") && strcmp(m, "yes") && m[0] != '/') {
        LOG(ERROR, "memory image '%s' is a relative path: give an "
            "absolute one", libxl__printable(gc, m));
        return ERROR_INVAL;
    }
    if (req->num_disks > 0 && !req->disks) {
        LOG(ERROR, "libxlsnap_domain_snapshot_create: num_disks is %d, "
            "and disks is NULL", req->num_disks);
        return ERROR_INVAL;
    }
    for (i = 0; i < req->num_disks; i++) {
        const libxlsnap_disk_snapshot *d = &req->disks[i];
        if (!d->vdev || !*d->vdev) {
            LOG(ERROR, "libxlsnap_domain_snapshot_create: disks[%d] has no "
                "vdev", i);
            return ERROR_INVAL;
        }
        for (j = 0; j < i; j++)
            if (req->disks[j].vdev && !strcmp(req->disks[j].vdev, d->vdev)) {
                LOG(ERROR, "disk %s is named twice in the request",
                    libxl__printable(gc, d->vdev));
                return ERROR_INVAL;
            }
        if (d->overlay && *d->overlay && d->overlay[0] != '/') {
            LOG(ERROR, "disk %s: overlay '%s' is a relative path: give an "
                "absolute one", libxl__printable(gc, d->vdev),
                libxl__printable(gc, d->overlay));
            return ERROR_INVAL;
        }
    }
    return 0;
}

/* (again after an auto-commit's merge: from the lock on) */
static void create_begin(libxl__egc *egc, libxl__snapshot_create_state *scs)
{
    const char *domain = scs->op.domain;

    memset(&scs->op, 0, sizeof(scs->op));
    scs->op.ao = scs->ao;
    scs->op.domain = domain;
    scs->op.callback = snapshot_create_begun;
    scs->op.partial_tree = true;      /* it only adds a snapshot */
    /* an interrupted delete is finished before (create_begun) */
    scs->op.finishes_delete = !(scs->flags & LIBXLSNAP_CREATE_DRY_RUN);
    libxl__snapshot_op_begin(egc, &scs->op);
}

static void create_delete_done(libxl__egc *egc, void *for_callback, int rc);

/*
 * The delete of a snapshot a dead process left part-done, which the
 * recovery at the start of this create found (the records true, the
 * snapshot still listed with what is left): finished first, as
 * snapshot-recover does, so that no snapshot is taken over a merge
 * that is pending; then the create begins again.
 */
static void create_finish_delete(libxl__egc *egc,
                                 libxl__snapshot_create_state *scs)
{
    STATE_AO_GC(scs->ao);
    libxl__snapshot_op *op = &scs->op;

    scs->udel = GCSTRDUP(op->unfinished_delete);
    scs->udel_how = GCSTRDUP(op->unfinished_how);
    scs->udel_rest = GCSTRDUP(op->unfinished_rest ? op->unfinished_rest
                              : "");
    LOG(NOTICE, "domain %s: finishing an interrupted snapshot-delete of "
        "'%s' (%s) before the snapshot", op->d.name, scs->udel,
        scs->udel_how);
    libxl__snapshot_op_end(gc, op);
    libxl__snapshot_delete_start(egc, scs->ao, op->domain, scs->udel, 0,
                                 &scs->progress, create_delete_done, scs);
}

static void create_delete_done(libxl__egc *egc, void *for_callback, int rc)
{
    libxl__snapshot_create_state *scs = for_callback;
    STATE_AO_GC(scs->ao);

    if (rc == ERROR_NOTFOUND) rc = 0;  /* someone else finished it */
    if (rc) {
        LOG(ERROR, "domain %s: an interrupted snapshot-delete of '%s' (%s) "
            "could not be finished, so no snapshot was taken; its record "
            "lists what is left%s", scs->op.d.name, scs->udel,
            scs->udel_how, scs->udel_rest);
        snapshot_create_done(egc, scs, rc);
        return;
    }
    LOG(WARN, "domain %s: an interrupted snapshot-delete of '%s' was "
        "finished (%s)%s", scs->op.d.name, scs->udel, scs->udel_how,
        scs->udel_rest);
    create_begin(egc, scs);
}

static int create_start(libxlsnap_ctx *ctx, const char *domain,
                        libxlsnap_domain_snapshot *snapshot,
                        libxlsnap_checkpoint *checkpoint, unsigned flags,
                        const libxlsnap_progress_how *progress,
                        const libxl_asyncop_how *ao_how)
{
    AO_CREATE(ctx, ao_how);
    EGC_INIT(ctx);
    libxl__snapshot_create_state *scs;
    int rc;

    rc = request_check(gc, snapshot, flags);
    if (rc) goto out;
    GCNEW(scs);
    scs->ao = ao;
    scs->out = snapshot;
    if (checkpoint) {
        scs->ckpt_out = checkpoint;
        scs->ckpt_name = GCSTRDUP(checkpoint->name);
        scs->ckpt_desc = GCSTRDUP(checkpoint->description);
        if (!scs->ckpt_name) {
            LOG(ERROR, "libxlsnap_domain_snapshot_create_checkpoint: the "
                "checkpoint has no name");
            rc = ERROR_INVAL;
            goto out;
        }
    }
    scs->flags = flags;
    if (progress) scs->progress = *progress;
    /* a private copy: the caller's struct is only written at the end */
    libxlsnap_domain_snapshot_init(&scs->req);
    libxl__domain_snapshot_copy(&scs->req, snapshot);
    libxl__qmp_init(&scs->qmp);
    libxl__qmp_init(&scs->qga);
    libxl__exec_init(&scs->es);

    scs->op.domain = GCSTRDUP(domain);
    create_begin(egc, scs);
    EGC_FREE;
    return AO_INPROGRESS;
 out:
    EGC_FREE;
    return AO_CREATE_FAIL(rc);
}

int libxlsnap_domain_snapshot_create(libxlsnap_ctx *ctx,
                                 const char *domain,
                                 libxlsnap_domain_snapshot *snapshot,
                                 unsigned flags,
                                 const libxlsnap_progress_how *progress,
                                 const libxl_asyncop_how *ao_how)
{
    if (ARGS_MISSING(ctx, domain, snapshot)) return ERROR_INVAL;
    return create_start(ctx, domain, snapshot, NULL, flags, progress,
                        ao_how);
}

int libxlsnap_domain_snapshot_create_checkpoint(libxlsnap_ctx *ctx,
                                 const char *domain,
                                 libxlsnap_domain_snapshot *snapshot,
                                 libxlsnap_checkpoint *checkpoint,
                                 unsigned flags,
                                 const libxlsnap_progress_how *progress,
                                 const libxl_asyncop_how *ao_how)
{
    if (ARGS_MISSING(ctx, domain, snapshot, checkpoint)) return ERROR_INVAL;
    return create_start(ctx, domain, snapshot, checkpoint, flags, progress,
                        ao_how);
}

/* ---------------------------------------------------------------- */
/* with a checkpoint */

/* The image disk i of the snapshot runs on once it is taken. */
static void image_after(libxl__snapshot_create_state *scs, int i,
                        const char **path_r, libxl_disk_format *fmt_r)
{
    const libxlsnap_disk_snapshot *ds = &scs->snap.disks[i];
    const libxl__snapshot_backend *be = libxl__snapshot_backend_of(ds);

    *path_r = ds->file;
    *fmt_r = ds->format;
    if (be && be->active_after)
        be->active_after(ds, scs->op.d.running, path_r, fmt_r);
}

/* The checkpoint's record, on the images the snapshot leaves active
 * (the qcow2 ones: a checkpoint needs persistent bitmaps). */
static int plan_checkpoint(libxl__gc *gc, libxl__snapshot_create_state *scs)
{
    libxl__snapshot_op *op = &scs->op;
    const char **vdevs, **images;
    int i, n = 0, rc;

    rc = libxl__checkpoint_load(gc, &op->st, false, &scs->ckl);
    if (rc) return rc;
    GCNEW_ARRAY(vdevs, scs->snap.num_disks + 1);
    GCNEW_ARRAY(images, scs->snap.num_disks + 1);
    for (i = 0; i < scs->snap.num_disks; i++) {
        const char *path;
        libxl_disk_format fmt;
        image_after(scs, i, &path, &fmt);
        if (fmt != LIBXL_DISK_FORMAT_QCOW2 || !path ||
            !libxl__image_is_file(path))
            continue;
        vdevs[n] = scs->snap.disks[i].vdev;
        images[n++] = path;
    }
    rc = libxl__checkpoint_plan_images(gc, &op->d, &scs->ckl, scs->ckpt_name,
                                       scs->ckpt_desc, vdevs, images, n,
                                       &scs->ckpt);
    if (rc) return rc;
    scs->ckpt.snapshot = scs->snap.name;
    return 0;
}

/* In the disks' transaction: each checkpoint disk's bitmap on the node
 * the disk runs on after it (a new overlay's, named by its action). */
static int checkpoint_actions(libxl__gc *gc, libxl__snapshot_create_state *scs,
                              yajl_val nodes, yajl_val actions)
{
    int i, k;
    size_t a;

    for (k = 0; k < scs->ckpt.num_disks; k++) {
        const libxlsnap_checkpoint_disk *cd = &scs->ckpt.disks[k];
        const libxlsnap_disk_snapshot *ds = NULL;
        const char *node = NULL, *from = NULL;

        for (i = 0; i < scs->snap.num_disks; i++)
            if (!strcmp(scs->snap.disks[i].vdev, cd->vdev))
                ds = &scs->snap.disks[i];
        if (ds && ds->overlay && !strcmp(ds->overlay, cd->image)) {
            for (a = 0; a < actions->u.array.len; a++) {
                yajl_val act = actions->u.array.values[a];
                yajl_val data = libxl__json_get(act, "data");
                const char *t = libxl__json_get_string(act, "type");
                const char *f = libxl__json_get_string(data, "snapshot-file");
                if (t && f && !strcmp(t, "blockdev-snapshot-sync") &&
                    !strcmp(f, ds->overlay)) {
                    node = libxl__json_get_string(data,
                                                  "snapshot-node-name");
                    from = libxl__json_get_string(data, "node-name");
                }
            }
        } else {
            node = libxl__qmp_node_for_file(gc, nodes, cd->image,
                                            cd->format);
        }
        if (!node) {
            LOG(ERROR, "disk %s: QEMU has no node for '%s' to make "
                "checkpoint '%s' on", cd->vdev, cd->image, scs->ckpt.name);
            return ERROR_FAIL;
        }
        libxl__checkpoint_live_actions(gc, &scs->ckl, &scs->ckpt, cd->vdev,
                                       nodes, from, node, actions);
    }
    scs->ckpt_in_tx = true;
    return 0;
}

/*
 * The checkpoint made right after the snapshot (offline, or the guest
 * paused for volumes), under the same lock: qemu-img, or one QMP
 * transaction.  A failure undoes what it made (said); the caller then
 * undoes the snapshot.
 */
static int checkpoint_after(libxl__gc *gc, libxl__snapshot_create_state *scs,
                            libxl__domain *after)
{
    libxl__snapshot_op *op = &scs->op;
    yajl_val nodes = NULL, actions, args = NULL;
    int k, j, rc = 0;

    if (op->d.running) {
        rc = libxl__qmp_run_sync(gc, op->d.qmp_path,
                                 "query-named-block-nodes",
                                 libxl__qmp_args_flat(gc), 0, false, &nodes);
        if (rc) return rc;
        actions = libxl__json_new_array(gc);
        for (k = 0; k < scs->ckpt.num_disks; k++) {
            const libxlsnap_checkpoint_disk *cd = &scs->ckpt.disks[k];
            libxl__checkpoint_live_actions(gc, &scs->ckl, &scs->ckpt,
                cd->vdev, nodes, NULL,
                libxl__qmp_node_for_file(gc, nodes, cd->image, cd->format),
                actions);
        }
        libxl__json_add(gc, &args, "actions", actions);
        return libxl__qmp_run_sync(gc, op->d.qmp_path, "transaction", args,
                                   0, false, NULL);
    }
    for (k = 0; k < scs->ckpt.num_disks; k++) {
        const libxlsnap_checkpoint_disk *cd = &scs->ckpt.disks[k];
        const char *const **cmds;
        int n;
        libxl__checkpoint_offline_cmds(gc, &scs->ckl, &scs->ckpt, cd->vdev,
                                       cd->image, &cmds, &n);
        for (j = 0; j < n && !rc; j++)
            rc = libxl__exec_sync(gc, cmds[j], 60000, NULL, NULL);
        if (rc) break;
        libxl__fault_point("create");
    }
    if (rc) libxl__checkpoint_undo(gc, after, &scs->ckl, &scs->ckpt);
    return rc;
}

/* op's domain as it is after the snapshot: its disks on the new images */
static libxl__domain *domain_after(libxl__gc *gc,
                                   libxl__snapshot_create_state *scs)
{
    libxl__domain *a;
    int i, k;

    GCNEW(a);
    *a = scs->op.d;
    GCNEW_ARRAY(a->disks, scs->op.d.num_disks + 1);
    for (i = 0; i < scs->op.d.num_disks; i++) {
        a->disks[i] = scs->op.d.disks[i];
        for (k = 0; k < scs->snap.num_disks; k++)
            if (a->disks[i].vdev &&
                !strcmp(a->disks[i].vdev, scs->snap.disks[k].vdev)) {
                const char *p;
                image_after(scs, k, &p, &a->disks[i].format);
                a->disks[i].pdev_path = (char *)p;
            }
    }
    return a;
}

/* ---------------------------------------------------------------- */
/* planning */

static libxlsnap_disk_snapshot *req_disk(libxl__snapshot_create_state *scs,
                                     const char *vdev)
{
    int i;
    for (i = 0; i < scs->req.num_disks; i++)
        if (scs->req.disks[i].vdev &&
            !strcmp(scs->req.disks[i].vdev, vdev))
            return &scs->req.disks[i];
    return NULL;
}

/* The disk as the domain config has it, else as it is now. */
static const libxl_device_disk *config_disk(
    libxl__snapshot_create_state *scs, const libxl_device_disk *dk)
{
    int i;
    for (i = 0; i < scs->op.cfg.num_disks; i++)
        if (scs->op.cfg.disks[i].vdev &&
            !strcmp(scs->op.cfg.disks[i].vdev, dk->vdev) &&
            scs->op.cfg.disks[i].pdev_path)
            return &scs->op.cfg.disks[i];
    return dk;
}

static int plan(libxl__gc *gc, libxl__snapshot_create_state *scs)
{
    libxl__snapshot_op *op = &scs->op;
    libxlsnap_domain_snapshot *s = &scs->snap;
    struct timespec now;
    int i, rc;

    libxlsnap_domain_snapshot_init(s);
    GCNEW_ARRAY(scs->priv, op->d.num_disks + 1);
    if (scs->req.name) {
        s->name = GCSTRDUP(scs->req.name);
    } else {
        /* the default: the local date and time, e.g. 20261123-193000 */
        time_t now = time(NULL);
        struct tm tm;
        char buf[32];
        localtime_r(&now, &tm);
        strftime(buf, sizeof(buf), "%Y%m%d-%H%M%S", &tm);
        s->name = GCSTRDUP(buf);
    }
    rc = libxlsnap_name_check(s->name);
    /* new names must be text too: QEMU drops QMP commands that are not
     * UTF-8 (records with older such names still load) */
    if (!rc && !libxl__utf8_valid(s->name)) rc = ERROR_INVAL;
    if (rc) {
        LOG(ERROR, "invalid snapshot name '%s' (no '/', '..', ',', "
            "blanks, control characters, leading '.' or '-', digits "
            "only, more than 200 bytes, or bytes that are not UTF-8)",
            libxl__printable(gc, s->name));
        return rc;
    }
    if (libxl__snapshot_store_has(gc, &op->st, s->name)) {
        LOG(ERROR, "domain %s already has a snapshot named '%s'",
            op->d.name, s->name);
        return ERROR_INVAL;
    }
    if (scs->req.description && !libxl__utf8_valid(scs->req.description)) {
        LOG(ERROR, "the description is not valid UTF-8 text");
        return ERROR_INVAL;
    }
    s->description = GCSTRDUP(scs->req.description);
    clock_gettime(CLOCK_REALTIME, &now);
    s->creation_time = now.tv_sec;
    s->creation_nsec = now.tv_nsec;
    s->parent = GCSTRDUP(op->tree.dom.current);
    s->state = !op->d.running ? LIBXLSNAP_DOMAIN_STATE_SHUTOFF
        : op->d.paused ? LIBXLSNAP_DOMAIN_STATE_PAUSED
        : LIBXLSNAP_DOMAIN_STATE_RUNNING;
    s->domain_name = GCSTRDUP(op->d.name);
    libxl_uuid_copy(NULL, &s->domain_uuid, &op->d.uuid);
    if (scs->req.memory && strcmp(scs->req.memory, "no")) {
        /* "" or "yes": beside the record */
        if (!op->d.running) {
            LOG(ERROR, "domain %s is shut off: it has no memory to save "
                "(take a disk-only snapshot)", op->d.name);
            return ERROR_INVAL;
        }
        if ((!*scs->req.memory || !strcmp(scs->req.memory, "yes")) &&
            !libxl__snapshot_store_is_dir(gc)) {
            /* beside the records is this host's state dir: a record
             * another host of the pool could not revert to */
            LOG(ERROR, "the records are in RADOS, shared by the hosts of "
                "the pool: give the memory image a path they all see "
                "(--memory=PATH)");
            return ERROR_INVAL;
        }
        s->memory = !*scs->req.memory || !strcmp(scs->req.memory, "yes")
            ? GCSPRINTF("%s/%s.save", op->st.dir, s->name)
            : libxl__abs_path(gc, scs->req.memory);
        if (libxl__file_exists(s->memory)) {
            LOG(ERROR, "memory image '%s' already exists%s", s->memory,
                owner_of(gc, scs, s->memory));
            return ERROR_INVAL;
        }
        if (libxl__file_exists(libxl__memory_tmp_path(gc, s->memory))) {
            /* not ours to remove: it may be anybody's file */
            LOG(ERROR, "'%s', where memory image '%s' would be written "
                "until complete, already exists",
                libxl__memory_tmp_path(gc, s->memory), s->memory);
            return ERROR_INVAL;
        }
    } else if (scs->flags & LIBXLSNAP_CREATE_LIVE) {
        LOG(ERROR, "a live snapshot copies memory: ask for memory too");
        return ERROR_INVAL;
    }
    if (scs->flags & (LIBXLSNAP_CREATE_QUIESCE |
                      LIBXLSNAP_CREATE_QUIESCE_TRY)) {
        scs->quiesce_required = !!(scs->flags & LIBXLSNAP_CREATE_QUIESCE);
        if (!op->d.running) {
            LOG(ERROR, "domain %s is shut off: there is nothing to quiesce",
                op->d.name);
            return ERROR_INVAL;
        }
        if (s->memory) {
            LOG(ERROR, "quiesce is for disk-only snapshots: with memory, "
                "the guest is stopped at the instant anyway");
            return ERROR_INVAL;
        }
        scs->agent = scs->req.agent && *scs->req.agent
            ? libxl__abs_path(gc, scs->req.agent) : op->cfg.agent_path;
        s->quiesce = GCSTRDUP("frozen");
        if (!scs->agent && scs->quiesce_required) {
            LOG(ERROR, "domain %s has no guest agent channel (channel=["
                "'name=org.qemu.guest_agent.0,connection=socket,path=...'"
                "] in its config), and none was given", op->d.name);
            return ERROR_INVAL;
        }
    }

    /* every requested disk must exist */
    for (i = 0; i < scs->req.num_disks; i++) {
        if (!scs->req.disks[i].vdev ||
            !libxl__domain_disk(&op->d, scs->req.disks[i].vdev)) {
            LOG(ERROR, "domain %s has no disk '%s'", op->d.name,
                scs->req.disks[i].vdev ?: "");
            return ERROR_INVAL;
        }
    }

    GCNEW_ARRAY(s->disks, op->d.num_disks);
    for (i = 0; i < op->d.num_disks; i++) {
        const libxl_device_disk *dk = &op->d.disks[i];
        const libxlsnap_disk_snapshot *r = req_disk(scs, dk->vdev);
        libxlsnap_disk_snapshot *ds = &s->disks[s->num_disks];
        libxlsnap_disk_snapshot_type type = r ? r->type
                                          : LIBXLSNAP_DISK_SNAPSHOT_TYPE_DEFAULT;
        const libxl__snapshot_backend *be = NULL;
        libxl__create_plan p;
        const char *why;

        if (dk->is_cdrom || !dk->pdev_path || !*dk->pdev_path) continue;
        /*
         * The default follows the disk's format in the domain config,
         * not the active image's: a raw disk stays external even once
         * it runs on a qcow2 overlay, so one disk never mixes internal
         * snapshots into a chain of external ones (the backends'
         * probes: libxl_snapshot_backend*.c).
         */
        if (type != LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO) {
            be = libxl__snapshot_backend_select(gc, type, dk,
                                                config_disk(scs, dk),
                                                &scs->priv[s->num_disks],
                                                &why);
            if (!be) {
                LOG(ERROR, "disk %s: '%s' %s", dk->vdev, dk->pdev_path, why);
                return ERROR_INVAL;
            }
            type = be->type;
        }
        if (r && r->overlay && *r->overlay && (!be || !be->chained)) {
            /* a path it would not use: the caller expects a file there */
            LOG(ERROR, "disk %s: an overlay path is only for an external "
                "snapshot, not for type %s", dk->vdev,
                libxlsnap_disk_snapshot_type_to_string(type));
            return ERROR_INVAL;
        }
        if (!dk->readwrite && type != LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO) {
            /* a read-only disk does not change: nothing to capture */
            type = LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO;
        }
        libxlsnap_disk_snapshot_init(ds);
        ds->vdev = GCSTRDUP(dk->vdev);
        ds->type = type;
        ds->backend = dk->backend;
        ds->format = dk->format;
        ds->file = GCSTRDUP(dk->pdev_path);
        s->num_disks++;

        if (type == LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO) continue;
        if (be->live_paused) scs->lvm_live = op->d.running;
        p.op = op;
        p.s = s;
        p.index = s->num_disks - 1;
        p.priv = scs->priv;
        p.dk = dk;
        p.config = config_disk(scs, dk);
        p.req = r;
        p.owner_of = owner_of;
        p.owner_ctx = scs;
        rc = be->snapshot_plan(gc, &p, ds);
        if (rc) return rc;
    }
    for (i = 0; i < s->num_disks; i++)
        if (s->disks[i].type != LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO) break;
    if (i == s->num_disks) {
        LOG(ERROR, "domain %s: no disk to snapshot", op->d.name);
        return ERROR_INVAL;
    }
    for (i = 0; scs->lvm_live && i < s->num_disks; i++) {
        const libxl__snapshot_backend *be =
            libxl__snapshot_backend_of(&s->disks[i]);
        /* paused for lvcreate: QEMU's disks would need their own way */
        if (be && !be->live_paused) {
            LOG(ERROR, "domain %s runs: its LVM or kernel RBD disks and disk %s cannot be "
                "snapshotted together (leave %s out: type no, or "
                "snapshot them in two steps)", op->d.name,
                s->disks[i].vdev, s->disks[i].vdev);
            return ERROR_INVAL;
        }
        if (be && scs->req.memory && strcmp(scs->req.memory, "no")) {
            LOG(ERROR, "domain %s: memory checkpoints of LVM disks are not "
                "supported; take a disk-only snapshot", op->d.name);
            return ERROR_INVAL;
        }
    }
    /* nothing another record owns (the partial tree: the current one) */
    return libxl__snapshot_claim(gc, &op->tree, s);
}

/*
 * A running domain: a block job QEMU runs that no job record of ours
 * knows (ours were refused by libxl__snapshot_op_settled) - started by
 * hand over QMP, say - would change the images under the snapshot, or
 * refuse its transaction half-way: refused before anything is touched.
 */
static int qemu_jobs_idle(libxl__gc *gc, libxl__snapshot_op *op)
{
    yajl_val jobs = NULL, j;
    const char *id, *status;
    size_t i;
    int rc;

    if (!op->d.running || !op->d.qmp_path) return 0;
    rc = libxl__qmp_run_sync(gc, op->d.qmp_path, "query-block-jobs", NULL,
                             0, false, &jobs);
    if (rc) return rc;                /* said: the create needs QMP */
    for (i = 0; jobs && YAJL_IS_ARRAY(jobs) && i < jobs->u.array.len; i++) {
        j = jobs->u.array.values[i];
        id = libxl__json_get_string(j, "device");
        status = libxl__json_get_string(j, "status");
        if (status && (!strcmp(status, "concluded") ||
                       !strcmp(status, "null")))
            continue;
        LOG(ERROR, "domain %s: QEMU runs block job '%s' (%s, %s), which "
            "xl did not start: a snapshot waits until it ends (cancel it: "
            "xl qemu-monitor-command %s 'block_job_cancel %s')", op->d.name,
            id ? id : "?", libxl__json_get_string(j, "type") ?: "?",
            status ? status : "running", op->d.name, id ? id : "?");
        return ERROR_DEVICE_EXISTS;
    }
    return 0;
}

static void create_merged(libxl__egc *egc, void *for_callback, int rc);

/*
 * --auto-commit: the layer chain_limit chose is merged into its
 * backing by a block commit of its own (its lock, job record,
 * recovery, progress and abort), after which the create begins again.
 */
static void create_merge(libxl__egc *egc, libxl__snapshot_create_state *scs,
                         const libxl__chain_merge *m)
{
    STATE_AO_GC(scs->ao);
    libxlsnap_block_commit_params p;

    LOG(NOTICE, "domain %s: disk %s: its backing chain is %d images, at "
        "max_chain %ld: %s '%s' into '%s', which no snapshot needs",
        scs->op.d.name, m->vdev, m->length, m->max,
        scs->flags & LIBXLSNAP_CREATE_DRY_RUN ? "would merge" : "merging",
        m->top, m->base);
    if (scs->flags & LIBXLSNAP_CREATE_DRY_RUN) {
        snapshot_create_done(egc, scs, 0);
        return;
    }
    if (++scs->merges > 1000) {       /* each merge shortens a chain */
        LOG(ERROR, "domain %s: disk %s: the merges do not shorten its "
            "chain", scs->op.d.name, m->vdev);
        snapshot_create_done(egc, scs, ERROR_FAIL);
        return;
    }
    memset(&p, 0, sizeof(p));
    p.top = m->top;
    /* into its backing only: never further down (other layers are
     * snapshots' data) */
    p.flags = LIBXLSNAP_BLOCK_COMMIT_SHALLOW | LIBXLSNAP_BLOCK_COMMIT_DELETE |
        (m->active ? LIBXLSNAP_BLOCK_COMMIT_ACTIVE | LIBXLSNAP_BLOCK_COMMIT_PIVOT
                   : 0);
    libxl__snapshot_op_end(gc, &scs->op);
    libxl__block_commit_start(egc, scs->ao, scs->op.domain, m->vdev, &p,
                              &scs->progress, create_merged, scs);
}

static void create_merged(libxl__egc *egc, void *for_callback, int rc)
{
    libxl__snapshot_create_state *scs = for_callback;

    if (rc) {
        snapshot_create_done(egc, scs, rc);
        return;
    }
    create_begin(egc, scs);
}

/*
 * qemu-img info of the disks' images (volumes have none), as a child
 * on the loop, then cb; chains: --backing-chain, of those whose chain
 * the qcow2 headers do not give (scs->chain, filled here).
 */
static void probe_disks(libxl__egc *egc, libxl__snapshot_create_state *scs,
                        libxl__qemu_img_info_state *qi, bool chains,
                        libxl__qemu_img_info_callback *cb)
{
    STATE_AO_GC(scs->ao);
    int i;

    memset(qi, 0, sizeof(*qi));
    GCNEW_ARRAY(qi->images, scs->snap.num_disks);
    for (i = 0; i < scs->snap.num_disks; i++) {
        const libxlsnap_disk_snapshot *ds = &scs->snap.disks[i];
        const libxl__snapshot_backend *be = libxl__snapshot_backend_of(ds);
        if (!be || be->volume) continue;
        if (chains && libxl__image_chain_headers(gc, ds->file, ds->format,
                                                 &scs->chain[i]))
            continue;
        qi->images[i] = ds->file;
    }
    qi->num_images = scs->snap.num_disks;
    qi->backing_chain = qi->keep_going = chains;
    qi->ao = ao;
    qi->callback = cb;
    libxl__qemu_img_info(egc, qi);
}

static void snapshot_create_begun(libxl__egc *egc, libxl__snapshot_op *op,
                                  int rc)
{
    libxl__snapshot_create_state *scs =
        CONTAINER_OF(op, libxl__snapshot_create_state, op);
    STATE_AO_GC(scs->ao);

    if (rc) goto out;
    if (op->unfinished_delete) {
        create_finish_delete(egc, scs);
        return;
    }
    rc = libxl__snapshot_op_settled(gc, op);
    if (rc) goto out;
    rc = plan(gc, scs);
    if (rc) goto out;
    if (!scs->lvm_live) {
        /* (what QEMU takes in a transaction: not the volumes of a
         * domain paused for lvcreate, which may have no QMP at all) */
        rc = qemu_jobs_idle(gc, op);
        if (rc) goto out;
    }
    /* the images' chains, for the checks: from their qcow2 headers,
     * else qemu-img's (children on the loop: none holds the caller's) */
    GCNEW_ARRAY(scs->chain, scs->snap.num_disks);
    probe_disks(egc, scs, &scs->chains, true, snapshot_create_chains);
    return;
 out:
    snapshot_create_done(egc, scs, rc);
}

static void snapshot_create_chains(libxl__egc *egc,
                                   libxl__qemu_img_info_state *qi, int rc)
{
    libxl__snapshot_create_state *scs =
        CONTAINER_OF(qi, libxl__snapshot_create_state, chains);
    STATE_AO_GC(scs->ao);
    libxl__snapshot_op *op = &scs->op;
    libxl__chain_merge m;
    int i;

    if (rc) goto out;
    for (i = 0; i < scs->snap.num_disks; i++)
        if (qi->images[i])
            libxl__image_chain_qemu_img(gc, qi->infos[i], qi->errs[i],
                                        &scs->chain[i]);
    /* will it fit?  Nothing is done yet, not even --auto-commit's
     * merge (libxl_snapshot_space.c) */
    rc = libxl__snapshot_space_check(gc, op, &scs->snap, scs->priv,
                                     scs->chain,
                                     scs->flags & LIBXLSNAP_CREATE_FORCE,
                                     scs->flags & LIBXLSNAP_CREATE_DRY_RUN);
    if (rc) goto out;
    rc = libxl__chain_limit(gc, op, &scs->snap, scs->chain,
                            !!(scs->flags & LIBXLSNAP_CREATE_AUTO_COMMIT),
                            &m);
    if (rc == 1) {
        create_merge(egc, scs, &m);
        return;
    }
    if (rc) goto out;
    if (scs->ckpt_name) {
        rc = plan_checkpoint(gc, scs);
        if (rc) goto out;
    }
    if (scs->flags & LIBXLSNAP_CREATE_DRY_RUN) goto out;
    /* the intent first: a crash from here on is recovered */
    rc = libxl__journal_write(gc, &op->st, "create", &scs->snap,
                              op->d.running,
                              scs->snap.memory
                              ? libxl__memory_tmp_path(gc, scs->snap.memory)
                              : NULL,
                              scs->ckpt_name ? "checkpoint" : NULL,
                              scs->ckpt_name
                              ? libxl__checkpoint_to_tree(gc, &scs->ckpt)
                              : NULL);
    if (rc) goto out;
    scs->journaled = true;
    libxl__fault_point("create");

    if (scs->lvm_live && !op->d.paused) {
        /* crash-consistent: no guest write between the lvcreates */
        rc = CTX->driver->pause(gc, &op->d);
        if (rc) goto out;
        scs->paused_at = libxl__now_ms();
    }
    if (op->d.running && !scs->lvm_live) {
        scs->qmp.ao = ao;
        scs->qmp.path = op->d.qmp_path;
        scs->qmp.domid = op->d.domid;
        rc = libxl__qmp_connect(egc, &scs->qmp,
                                snapshot_create_qmp_connected);
        if (rc) goto out;
        return;
    }
    /* qemu-img allows duplicate names, QMP does not: check ourselves */
    probe_disks(egc, scs, &scs->qi, false, snapshot_create_probed);
    return;
 out:
    snapshot_create_done(egc, scs, rc);
}

static void snapshot_create_probed(libxl__egc *egc,
                                   libxl__qemu_img_info_state *qi, int rc)
{
    libxl__snapshot_create_state *scs =
        CONTAINER_OF(qi, libxl__snapshot_create_state, qi);
    STATE_AO_GC(scs->ao);
    int i;

    if (rc) goto out;
    for (i = 0; i < scs->snap.num_disks; i++) {
        const libxlsnap_disk_snapshot *ds = &scs->snap.disks[i];
        const libxl__snapshot_backend *be = libxl__snapshot_backend_of(ds);
        if (be && be->snapshot_info_check) {
            rc = be->snapshot_info_check(gc, ds, qi->infos[i]);
            if (rc) goto out;
        }
    }
    /*
     * The commands, disk by disk: a qcow2 snapshot, or an overlay plus
     * the recording bitmaps of the frozen image, carried over so that
     * incremental backups go on across the snapshot.
     */
    GCNEW_ARRAY(scs->cmds, 1);
    for (i = 0; i < scs->snap.num_disks; i++) {
        const libxlsnap_disk_snapshot *ds = &scs->snap.disks[i];
        const libxl__snapshot_backend *be = libxl__snapshot_backend_of(ds);
        const char *const **l = NULL;
        int nl = 0, j;

        if (!be) continue;
        be->snapshot_cmds(gc, ds, scs->priv[i], qi->infos[i], &l, &nl);
        GCREALLOC_ARRAY(scs->cmds, scs->num_cmds + nl);
        for (j = 0; j < nl; j++) {
            scs->cmds[scs->num_cmds].disk = i;
            scs->cmds[scs->num_cmds++].args = l[j];
        }
    }
    scs->next = 0;
    snapshot_create_offline_next(egc, scs);
    return;
 out:
    snapshot_create_done(egc, scs, rc);
}

/* ---------------------------------------------------------------- */
/* live: one transaction */

static void snapshot_create_qmp_connected(libxl__egc *egc, libxl__qmp *qmp,
                                          yajl_val ret, int rc)
{
    libxl__snapshot_create_state *scs =
        CONTAINER_OF(qmp, libxl__snapshot_create_state, qmp);

    if (rc) goto out;
    rc = libxl__qmp_send(egc, qmp, "query-named-block-nodes",
                         libxl__qmp_args_flat(&scs->ao->gc), -1,
                         snapshot_create_nodes);
    if (rc) goto out;
    return;
 out:
    snapshot_create_done(egc, scs, rc);
}

static void snapshot_create_nodes(libxl__egc *egc, libxl__qmp *qmp,
                                  yajl_val nodes, int rc)
{
    libxl__snapshot_create_state *scs =
        CONTAINER_OF(qmp, libxl__snapshot_create_state, qmp);
    libxlsnap_domain_snapshot *s = &scs->snap;
    STATE_AO_GC(scs->ao);
    yajl_val args = NULL, actions;
    int i, k = 1;

    if (rc) goto out;
    if (!nodes || !YAJL_IS_ARRAY(nodes)) {
        rc = ERROR_PROTOCOL_ERROR_QMP;
        goto out;
    }
    actions = libxl__json_add_array(gc, &args, "actions");
    for (i = 0; i < s->num_disks; i++) {
        libxlsnap_disk_snapshot *ds = &s->disks[i];
        const libxl__snapshot_backend *be = libxl__snapshot_backend_of(ds);
        const char *node;

        /* type no; a backend the guest is paused for (not live here) */
        if (!be || !be->live_actions) continue;
        node = libxl__qmp_node_for_file(gc, nodes, ds->file, ds->format);
        if (!node) {
            LOG(ERROR, "disk %s: QEMU has no %s node for '%s' (was the "
                "disk attached or detached meanwhile?)",
                ds->vdev, libxl__disk_format_qemu(ds->format), ds->file);
            rc = ERROR_FAIL;
            goto out;
        }
        be->live_actions(gc, ds, nodes, node, actions, &k);
    }
    if (scs->ckpt_name) {
        /* the checkpoint at the same instant */
        rc = checkpoint_actions(gc, scs, nodes, actions);
        if (rc) goto out;
    }
    scs->actions = args;
    if (s->memory) {
        /* the memory first; the disks at its final instant */
        libxl__qmp_close(gc, qmp);
        libxl__memory_save_init(&scs->mss);
        scs->mss.ao = ao;
        scs->mss.d = &scs->op.d;
        scs->mss.file = s->memory;
        scs->mss.live = !!(scs->flags & LIBXLSNAP_CREATE_LIVE);
        scs->mss.progress = &scs->progress;
        scs->mss.instant = snapshot_create_instant;
        scs->mss.callback = snapshot_create_memory_done;
        libxl__memory_save(egc, &scs->mss);
        return;
    }
    if (s->quiesce) {
        if (!scs->agent) {
            qga_frozen(egc, &scs->qga, NULL, ERROR_NOTFOUND);
            return;
        }
        scs->qga.ao = ao;
        scs->qga.path = scs->agent;
        scs->qga.domid = scs->op.d.domid;
        scs->qga.agent = true;
        scs->qga.quiet = true;
        scs->qga.timeout_ms = 10000;
        rc = libxl__qmp_connect(egc, &scs->qga, qga_connected);
        if (rc) qga_frozen(egc, &scs->qga, NULL, rc);
        return;
    }
    qmp->quiet_refusal = true;        /* reported with the disk */
    rc = libxl__qmp_send(egc, qmp, "transaction", scs->actions, -1,
                         snapshot_create_transaction_done);
    if (rc) goto out;
    return;
 out:
    snapshot_create_done(egc, scs, rc);
}

/* ---------------------------------------------------------------- */
/* quiesce: the guest agent around the transaction */

static void qga_connected(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                          int rc)
{
    EGC_GC;
    yajl_val args = NULL;

    /* an id of ours: replies to an abandoned client cannot match it */
    libxl__json_add_integer(gc, &args, "id",
                            (long)(getpid() ^ time(NULL)) & 0x7fffffff);
    if (!rc) rc = libxl__qmp_send(egc, qmp, "guest-sync", args, -1,
                                  qga_synced);
    if (rc) qga_frozen(egc, qmp, NULL, rc);
}

static void qga_synced(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                       int rc)
{
    libxl__snapshot_create_state *scs =
        CONTAINER_OF(qmp, libxl__snapshot_create_state, qga);

    if (!rc) {
        /* freezing flushes the guest's caches: it may take a while */
        qmp->timeout_ms = 60000;
        scs->freeze_sent = true;
        rc = libxl__qmp_send(egc, qmp, "guest-fsfreeze-freeze", NULL, -1,
                             qga_frozen);
    }
    if (rc) qga_frozen(egc, qmp, NULL, rc);
}

static void qga_frozen(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                       int rc)
{
    libxl__snapshot_create_state *scs =
        CONTAINER_OF(qmp, libxl__snapshot_create_state, qga);
    STATE_AO_GC(scs->ao);
    const char *why;

    if (!rc) {
        LOG(DEBUG, "guest agent: file systems frozen: %lld",
            YAJL_IS_INTEGER(ret) ? (long long)YAJL_GET_INTEGER(ret) : -1LL);
    } else {
        why = !scs->agent ? "the domain has no guest agent channel"
            : rc == ERROR_TIMEDOUT ? "the guest agent did not answer in time"
            : qmp->error_desc ? GCSPRINTF("the guest agent: %s",
                                          qmp->error_desc)
            : GCSPRINTF("cannot reach the guest agent at %s", scs->agent);
        if (scs->quiesce_required) {
            LOG(ERROR, "domain %s: cannot quiesce it: %s; no snapshot was "
                "taken", scs->op.d.name, why);
            scs->tx_rc = rc;
            scs->actions = NULL;      /* nothing to record */
            qga_thaw(egc, scs);
            return;
        }
        LOG(WARN, "domain %s: cannot quiesce it (%s): the snapshot is "
            "crash-consistent", scs->op.d.name, why);
        scs->snap.quiesce = GCSTRDUP("crash-consistent");
    }
    scs->qmp.quiet_refusal = true;    /* reported with the disk */
    rc = libxl__qmp_send(egc, &scs->qmp, "transaction", scs->actions, -1,
                         snapshot_create_transaction_done);
    if (rc) {
        scs->tx_rc = rc;
        scs->actions = NULL;
        qga_thaw(egc, scs);
    }
}

/* Thaws (if a freeze was sent), retried; then the outcome. */
static void qga_thaw(libxl__egc *egc, libxl__snapshot_create_state *scs)
{
    int rc;

    if (!scs->freeze_sent) {
        snapshot_create_transaction_outcome(egc, scs);
        return;
    }
    scs->thaw_tries++;
    scs->qga.timeout_ms = 10000;
    if (scs->qga.state == LIBXL__QMP_IDLE)
        rc = libxl__qmp_send(egc, &scs->qga, "guest-fsfreeze-thaw", NULL,
                             -1, qga_thawed);
    else
        rc = ERROR_FAIL;
    if (rc) qga_thawed(egc, &scs->qga, NULL, rc);
}

static void qga_thawed(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                       int rc)
{
    libxl__snapshot_create_state *scs =
        CONTAINER_OF(qmp, libxl__snapshot_create_state, qga);
    STATE_AO_GC(scs->ao);

    if (rc && scs->thaw_tries < 3) {
        /* a broken connection: a new one for the next try */
        if (qmp->state != LIBXL__QMP_IDLE) {
            libxl__qmp_close(gc, qmp);
            if (!libxl__qmp_connect(egc, qmp, qga_thaw_reconnected))
                return;
        }
        qga_thaw(egc, scs);
        return;
    }
    if (rc) {
        LOG(ERROR, "domain %s: the guest's file systems could not be "
            "thawed (%s); they may still be frozen: run "
            "guest-fsfreeze-thaw through its agent", scs->op.d.name,
            qmp->error_desc ? qmp->error_desc : "no answer");
        if (!scs->tx_rc) scs->thaw_rc = rc;
    }
    libxl__qmp_close(gc, qmp);
    scs->freeze_sent = false;
    snapshot_create_transaction_outcome(egc, scs);
}

static void qga_thaw_reconnected(libxl__egc *egc, libxl__qmp *qmp,
                                 yajl_val ret, int rc)
{
    libxl__snapshot_create_state *scs =
        CONTAINER_OF(qmp, libxl__snapshot_create_state, qga);
    if (rc) {
        qga_thawed(egc, qmp, NULL, rc);
        return;
    }
    qga_thaw(egc, scs);
}

/* True if rc says QEMU answered with an error (it then changed nothing). */
static bool qmp_refused(int rc)
{
    return rc == ERROR_QMP_GENERIC_ERROR || rc == ERROR_QMP_COMMAND_NOT_FOUND
        || rc == ERROR_QMP_DEVICE_NOT_ACTIVE
        || rc == ERROR_QMP_DEVICE_NOT_FOUND || rc == ERROR_UNKNOWN_QMP_ERROR;
}

/*
 * Reports a transaction QEMU refused, naming the disk its backend's
 * ->live_refused thinks surest: QEMU prepares the actions in order and
 * stops at the first failure, so the first disk QEMU's message names,
 * else the first whose new file is missing (QEMU removes a file it
 * failed to create), else the last that could be.  Before the files go.
 */
static void log_refused_transaction(libxl__gc *gc,
                                    libxl__snapshot_create_state *scs,
                                    const char *desc)
{
    const char *disk = NULL;
    int i, best = 0;

    desc = desc ? desc : "?";
    for (i = 0; i < scs->snap.num_disks; i++) {
        const libxlsnap_disk_snapshot *ds = &scs->snap.disks[i];
        const libxl__snapshot_backend *be = libxl__snapshot_backend_of(ds);
        int how = be && be->live_refused ? be->live_refused(gc, ds, desc)
                                         : 0;
        if (how > best || (how && how == best &&
                           how == LIBXL__REFUSED_MAYBE)) {
            best = how;
            disk = ds->vdev;
        }
    }
    if (disk)
        LOG(ERROR, "disk %s: QEMU refused the snapshot: %s", disk, desc);
    else
        LOG(ERROR, "domain %s: QEMU refused the snapshot: %s",
            scs->op.d.name, desc);
}

/* Removes overlay files a failed attempt may have left behind. */
static void remove_new_overlays(libxl__gc *gc,
                                libxl__snapshot_create_state *scs)
{
    int i;
    for (i = 0; i < scs->snap.num_disks; i++) {
        const libxl__snapshot_backend *be =
            libxl__snapshot_backend_of(&scs->snap.disks[i]);
        const char *ov = scs->snap.disks[i].overlay;
        if (be && be->chained && ov && libxl__file_exists(ov)) {
            if (unlink(ov))
                LOGE(WARN, "cannot remove stray overlay '%s'", ov);
            else
                LOG(DEBUG, "removed stray overlay '%s'", ov);
        }
    }
}

/*
 * No answer to the transaction: QEMU may have taken the disks (and be
 * writing to the overlays), or died on the way.  Removing what it made
 * could lose the guest's writes: the journal stays, and the next
 * command on the domain records the disks taken as the snapshot (disk-
 * only) or removes what a transaction that did not happen left.
 */
static void unconfirmed(libxl__gc *gc, libxl__snapshot_create_state *scs,
                        const char *why)
{
    LOG(ERROR, "domain %s: QEMU did not confirm snapshot '%s'%s%s%s; the "
        "next command on the domain (snapshot-recover) records the disks "
        "it took, or removes what it left", scs->op.d.name, scs->snap.name,
        why ? " (" : "", why ? why : "", why ? ")" : "");
    scs->keep_journal = true;
}

static void snapshot_create_transaction_done(libxl__egc *egc,
                                             libxl__qmp *qmp,
                                             yajl_val ret, int rc)
{
    libxl__snapshot_create_state *scs =
        CONTAINER_OF(qmp, libxl__snapshot_create_state, qmp);
    STATE_AO_GC(scs->ao);

    if (rc) scs->tx_error = qmp->error_desc;   /* gc: outlives close */
    libxl__qmp_close(gc, qmp);
    scs->tx_rc = rc;
    qga_thaw(egc, scs);               /* at once, whatever happened */
}

static void snapshot_create_transaction_outcome(libxl__egc *egc,
                                  libxl__snapshot_create_state *scs)
{
    STATE_AO_GC(scs->ao);
    int rc = scs->tx_rc;

    if (!scs->actions) {
        /* quiesce failed before the transaction: nothing was done */
        snapshot_create_done(egc, scs, rc);
        return;
    }
    if (rc && qmp_refused(rc)) {
        /* QEMU rolled the graph back but left the new files */
        log_refused_transaction(gc, scs, scs->tx_error);
        remove_new_overlays(gc, scs);
        goto out;
    }
    if (rc) {
        unconfirmed(gc, scs, NULL);   /* QMP said why */
        goto out;
    }
    libxl__fault_point("create");
    snapshot_create_record(egc, scs);
    return;
 out:
    snapshot_create_done(egc, scs, rc);
}

/* ---------------------------------------------------------------- */
/* live, with memory: the transaction at the memory's final instant */

static void snapshot_create_instant(libxl__egc *egc,
                                    libxl__memory_save_state *mss, int rc)
{
    libxl__snapshot_create_state *scs =
        CONTAINER_OF(mss, libxl__snapshot_create_state, mss);

    mss->qmp.quiet_refusal = true;    /* reported with the disk */
    if (!rc) rc = libxl__qmp_send(egc, &mss->qmp, "transaction",
                                  scs->actions, -1,
                                  snapshot_create_instant_done);
    if (rc) libxl__memory_save_instant_done(egc, mss, rc);
}

static void snapshot_create_instant_done(libxl__egc *egc, libxl__qmp *qmp,
                                         yajl_val ret, int rc)
{
    libxl__snapshot_create_state *scs =
        CONTAINER_OF(qmp, libxl__snapshot_create_state, mss.qmp);
    STATE_AO_GC(scs->ao);

    qmp->quiet_refusal = false;       /* the memory's commands go on */
    /* tests: QEMU killed having taken the disks, its answer lost */
    if (libxl__fault_point("create") && !rc)
        rc = ERROR_PROTOCOL_ERROR_QMP;
    if (rc && qmp_refused(rc)) {
        log_refused_transaction(gc, scs, qmp->error_desc);
        remove_new_overlays(gc, scs);
    } else if (rc) {
        unconfirmed(gc, scs, qmp->error_desc ? qmp->error_desc
                                             : "QEMU was killed");
        scs->mss.why = NULL;          /* said */
    }
    libxl__memory_save_instant_done(egc, &scs->mss, rc);
}

static void snapshot_create_memory_done(libxl__egc *egc,
                                        libxl__memory_save_state *mss,
                                        int rc)
{
    libxl__snapshot_create_state *scs =
        CONTAINER_OF(mss, libxl__snapshot_create_state, mss);
    STATE_AO_GC(scs->ao);

    if (rc && mss->disks_taken) {
        /* the domain runs on the overlays: keep them, without memory */
        LOG(ERROR, "snapshot '%s': the disks were taken but the memory "
            "could not be saved%s%s%s; it is recorded as a disk-only "
            "snapshot", scs->snap.name, mss->why ? " (" : "",
            mss->why ? mss->why : "", mss->why ? ")" : "");
        scs->snap.memory = NULL;
        scs->memory_rc = rc;
        snapshot_create_record(egc, scs);
        return;
    }
    if (rc) {
        if (mss->why && !scs->keep_journal)
            LOG(ERROR, "snapshot '%s' was not taken: %s", scs->snap.name,
                mss->why);
        snapshot_create_done(egc, scs, rc);
        return;
    }
    scs->memory_size = mss->size;
    scs->pause_ms = mss->pause_ms;
    /* the image is under its name now: recovery keeps it (no journal
     * update, which a full file system would refuse) */
    libxl__fault_point("create");
    LOG(INFO, "snapshot '%s': memory saved to '%s' (%"PRIu64" bytes), "
        "guest paused for %"PRIu64" ms", scs->snap.name, scs->snap.memory,
        mss->size, mss->pause_ms);
    snapshot_create_record(egc, scs);
}

/* ---------------------------------------------------------------- */
/* offline: qemu-img, disk by disk */

/* Undoes disks [0, upto) after a failure (best effort, logged). */
static void offline_undo(libxl__gc *gc, libxl__snapshot_create_state *scs,
                         int upto)
{
    int i;
    for (i = 0; i < upto; i++) {
        const libxlsnap_disk_snapshot *ds = &scs->snap.disks[i];
        const char *why;
        /* what was never made (the failed disk, often) is left: no
         * second error for the same cause */
        if (libxl__disk_snapshot_undo(gc, &scs->op, ds, NULL, &why))
            LOG(ERROR, "disk %s: cannot undo its snapshot '%s' of '%s'%s%s",
                ds->vdev, ds->tag ? ds->tag : ds->overlay, ds->file,
                why ? ": " : "", why ? why : "");
    }
}

/* The guest runs again after the LVM snapshots (or their failure). */
static void lvm_unpause(libxl__gc *gc, libxl__snapshot_create_state *scs)
{
    if (!scs->paused_at) return;
    /* not the snapshot's failure: the user is to act */
    if (CTX->driver->unpause(gc, &scs->op.d))
        LOG(WARN, "domain %s: could not be unpaused after its LVM "
            "snapshot; run xl unpause %s", scs->op.d.name, scs->op.d.name);
    scs->pause_ms = libxl__now_ms() - scs->paused_at;
    scs->paused_at = 0;
    LOG(NOTICE, "domain %s was paused for %"PRIu64" ms for the snapshot of its volumes (LVM, kernel RBD)",
        scs->op.d.name, scs->pause_ms);
}

static void snapshot_create_offline_next(libxl__egc *egc,
                                         libxl__snapshot_create_state *scs)
{
    STATE_AO_GC(scs->ao);
    libxlsnap_disk_snapshot *ds;
    int rc;

    if (scs->next == scs->num_cmds) {
        lvm_unpause(gc, scs);
        snapshot_create_record(egc, scs);
        return;
    }
    ds = &scs->snap.disks[scs->cmds[scs->next].disk];
    libxl__exec_init(&scs->es);
    scs->es.ao = ao;
    scs->es.what = GCSPRINTF("snapshot of %s", ds->vdev);
    scs->es.args = scs->cmds[scs->next].args;
    scs->es.timeout_ms = 300000;
    scs->es.callback = snapshot_create_disk_done;
    rc = libxl__exec_start(egc, &scs->es);
    if (rc) {
        offline_undo(gc, scs, scs->cmds[scs->next].disk + 1);
        snapshot_create_done(egc, scs, rc);
    }
}

static void snapshot_create_disk_done(libxl__egc *egc,
                                      libxl__exec_state *es, int rc,
                                      int status)
{
    libxl__snapshot_create_state *scs =
        CONTAINER_OF(es, libxl__snapshot_create_state, es);
    STATE_AO_GC(scs->ao);

    if (rc) {
        /* this disk may have half-happened too */
        offline_undo(gc, scs, scs->cmds[scs->next].disk + 1);
        snapshot_create_done(egc, scs, rc);
        return;
    }
    scs->next++;
    libxl__fault_point("create");
    snapshot_create_offline_next(egc, scs);
}

/* ---------------------------------------------------------------- */
/* record */

static void snapshot_create_record(libxl__egc *egc,
                                   libxl__snapshot_create_state *scs)
{
    STATE_AO_GC(scs->ao);
    libxl__snapshot_op *op = &scs->op;
    libxlsnap_domain_snapshot *s = &scs->snap;
    libxl__domain *after = NULL;
    int i, rc = 0, ckpt_rc = 0;

    if (scs->ckpt_name) {
        after = domain_after(gc, scs);
        if (!scs->ckpt_in_tx) {
            ckpt_rc = checkpoint_after(gc, scs, after);
            if (ckpt_rc && !op->d.running) {
                LOG(ERROR, "checkpoint '%s' could not be made: snapshot "
                    "'%s' is undone", scs->ckpt.name, s->name);
                offline_undo(gc, scs, s->num_disks);
                snapshot_create_done(egc, scs, ckpt_rc);
                return;
            }
            /* running (paused for its volumes): the snapshot stands */
            if (ckpt_rc)
                LOG(ERROR, "snapshot '%s' was taken, but checkpoint '%s' "
                    "could not be made", s->name, scs->ckpt.name);
        }
    }
    for (i = 0; i < s->num_disks; i++) {
        libxlsnap_disk_snapshot *ds = &s->disks[i];
        const libxl__snapshot_backend *be = libxl__snapshot_backend_of(ds);
        const char *active;
        libxl_disk_format fmt;
        if (!be || !be->active_after) continue;
        be->active_after(ds, op->d.running, &active, &fmt);
        libxl__domain_record_set_disk(gc, &op->tree.dom, &op->cfg, ds->vdev,
                                      active,
                                      fmt);
        if (op->d.running && CTX->driver->set_active_disk) {
            int r = CTX->driver->set_active_disk(gc, &op->d, ds->vdev,
                                                 ds->file, active, fmt);
            /* gone (QEMU died): it starts from the records next time */
            if (r == ERROR_NOTFOUND || r == ERROR_DOMAIN_NOTFOUND) r = 0;
            if (r) {
                LOG(ERROR, "disk %s: the domain now runs on '%s', but the "
                    "toolstack's own record could not be updated (the "
                    "next command on the domain updates it)",
                    ds->vdev, ds->overlay);
                scs->keep_journal = true;
                rc = r;
            }
        }
    }
    if (!(scs->flags & LIBXLSNAP_CREATE_NO_METADATA)) {
        s->current = true;
        libxl__snapshot_tree_add(gc, &op->tree, s);
        op->tree.dom.current = s->name;
    }
    libxl__snapshot_tree_fixup(gc, &op->tree);
    i = libxl__snapshot_store_save(gc, &op->st, &op->tree);
    if (!i) libxl__fault_point("create");
    if (i) {
        rc = i;
        if (!op->d.running) {
            /*
             * Offline, the disks can still be put back: do it, and
             * drop whatever part of the records did get written.
             */
            libxl__snapshot_tree t;
            offline_undo(gc, scs, s->num_disks);
            if (!libxl__snapshot_store_load(gc, &op->st, &t)) {
                for (i = 0; i < s->num_disks; i++)
                    if (libxl__snapshot_backend_of(&s->disks[i]) &&
                        libxl__snapshot_backend_of(&s->disks[i])
                            ->active_after)
                        libxl__domain_record_set_disk(gc, &t.dom, &op->cfg,
                            s->disks[i].vdev, s->disks[i].file,
                            s->disks[i].format);
                libxl__snapshot_tree_remove(gc, &t, s->name);
                libxl__snapshot_tree_fixup(gc, &t);
                libxl__snapshot_store_save(gc, &op->st, &t);
            }
            LOG(ERROR, "snapshot '%s' was not taken: its record could "
                "not be written", s->name);
        } else {
            LOG(ERROR, "snapshot '%s' was taken%s, but its record could "
                "not be written (the next command on the domain writes it)",
                s->name, s->memory ? " (disks and memory)" : "");
            scs->keep_journal = true;
        }
    }
    if (!rc) rc = ckpt_rc;
    if (!rc && scs->ckpt_name) {
        /* the snapshot is recorded: then the checkpoint */
        rc = libxl__checkpoint_save(gc, &op->st, &scs->ckpt);
        if (rc) {
            LOG(ERROR, "snapshot '%s' was taken, but the record of "
                "checkpoint '%s' could not be written: its bitmaps are "
                "undone", s->name, scs->ckpt.name);
            libxl__checkpoint_undo(gc, after, &scs->ckl, &scs->ckpt);
        }
    }
    if (!rc) rc = scs->memory_rc;
    if (!rc) rc = scs->thaw_rc;
    snapshot_create_done(egc, scs, rc);
}

static void snapshot_create_done(libxl__egc *egc,
                                 libxl__snapshot_create_state *scs, int rc)
{
    STATE_AO_GC(scs->ao);
    libxlsnap_domain_snapshot *found;

    libxl__qmp_close(gc, &scs->qmp);
    libxl__qmp_close(gc, &scs->qga);
    lvm_unpause(gc, scs);
    /* done, or undone: unless QEMU's answer is missing (recovery asks) */
    if (scs->journaled && !scs->keep_journal)
        libxl__journal_remove(gc, &scs->op.st);
    libxl__snapshot_op_end(gc, &scs->op);
    if (!rc) {
        found = libxl__snapshot_tree_find(&scs->op.tree, scs->snap.name);
        libxlsnap_domain_snapshot_dispose(scs->out);
        libxl__domain_snapshot_copy(scs->out, found ? found : &scs->snap);
        if (scs->ckpt_out) {
            libxlsnap_checkpoint_dispose(scs->ckpt_out);
            libxl__checkpoint_copy(scs->ckpt_out, &scs->ckpt);
        }
    }
    libxlsnap_domain_snapshot_dispose(&scs->req);
    libxl__ao_complete(egc, ao, rc);
}

/* ---------------------------------------------------------------- */
/* recovery: snapshot create */

/* Did the snapshot happen (1, 0)?  See the design comment.  ERROR_*:
 * a disk cannot tell (said) */
static int create_happened(libxl__gc *gc, libxl__snapshot_op *op,
                           const libxlsnap_domain_snapshot *s, bool live)
{
    yajl_val nodes = NULL;
    bool ext = false, all = true;
    int i;

    for (i = 0; i < s->num_disks; i++) {
        const libxl__snapshot_backend *be =
            libxl__snapshot_backend_of(&s->disks[i]);
        ext |= be && be->taken_live;
    }
    if (live && ext && op->d.running &&
        !libxl__qmp_run_sync(gc, op->d.qmp_path, "query-named-block-nodes",
                             libxl__qmp_args_flat(gc), 10000, true, &nodes) &&
        nodes && YAJL_IS_ARRAY(nodes)) {
        /* one transaction: the internal snapshots went with these */
        for (i = 0; i < s->num_disks; i++) {
            const libxl__snapshot_backend *be =
                libxl__snapshot_backend_of(&s->disks[i]);
            if (be && be->taken_live && !be->taken_live(gc, &s->disks[i], nodes))
                all = false;
        }
        return all;
    }
    /* every disk asked: one that cannot tell decides nothing */
    for (i = 0; i < s->num_disks; i++) {
        const libxl__snapshot_backend *be =
            libxl__snapshot_backend_of(&s->disks[i]);
        int k = be ? be->taken(gc, &s->disks[i]) : 1;
        if (k < 0) return k;
        if (!k) all = false;
    }
    return all;
}

/*
 * A memory save that died half-way may leave the guest stopped: QEMU
 * waiting at pre-switchover or done (postmigrate), or stopped by us
 * (stop-the-world); a Xen domain suspended.  Put it back running, as
 * the snapshot found it.
 */
static void unstick_memory_save(libxl__gc *gc, libxl__snapshot_op *op,
                                const libxlsnap_domain_snapshot *s)
{
    yajl_val v = NULL;

    if (!op->d.running) return;
    if (CTX->driver->suspend) {
        /* not logged by the driver: it may never have been suspended */
        CTX->driver->resume(gc, &op->d);
        return;
    }
    if (libxl__memory_migration_end(gc, op->d.qmp_path) == ERROR_FAIL)
        return;
    if (s->state == LIBXLSNAP_DOMAIN_STATE_RUNNING &&
        !libxl__qmp_run_sync(gc, op->d.qmp_path, "query-status", NULL, 5000,
                             true, &v) &&
        v && !libxl__json_get_bool(v, "running", true)) {
        if (libxl__qmp_run_sync(gc, op->d.qmp_path, "cont", NULL, 5000,
                                true, NULL))
            /* the recovery itself goes on: the user is to act */
            LOG(WARN, "domain %s: it stays paused after the interrupted "
                "checkpoint (xl unpause)", op->d.name);
        else
            LOG(WARN, "domain %s: resumed after the interrupted checkpoint",
                op->d.name);
    }
}

static int create_recover(libxl__gc *gc, libxl__snapshot_op *op,
                          yajl_val j);

/*
 * The checkpoint an interrupted snapshot-create made with its snapshot
 * (the journal's "checkpoint"): kept if its record was written, else
 * rolled back, on the images it was to be on that are there (a snapshot
 * rolled back took its overlays, and its checkpoint was never made).
 */
static void recover_checkpoint(libxl__gc *gc, libxl__snapshot_op *op,
                               yajl_val j)
{
    yajl_val v = libxl__json_get(j, "checkpoint");
    libxl__checkpoint_list l;
    libxlsnap_checkpoint cp;
    libxl__domain d;
    const char *why;
    int i, k;

    if (!v) return;
    if (libxl__checkpoint_from_tree(gc, gc, v, &cp, &why)) {
        LOG(WARN, "domain %s: the journal's checkpoint is unreadable (%s): "
            "xl snapshot-check reports what it may have left", op->d.name,
            why);
        return;
    }
    if (libxl__checkpoint_load(gc, &op->st, false, &l) ||
        libxl__checkpoint_index(&l, cp.name) >= 0)
        return;
    d = op->d;
    GCNEW_ARRAY(d.disks, op->d.num_disks + 1);
    d.num_disks = 0;
    for (i = 0; i < op->d.num_disks; i++)
        for (k = 0; k < cp.num_disks; k++)
            if (op->d.disks[i].vdev &&
                !strcmp(op->d.disks[i].vdev, cp.disks[k].vdev) &&
                cp.disks[k].image && libxl__file_exists(cp.disks[k].image)) {
                d.disks[d.num_disks] = op->d.disks[i];
                d.disks[d.num_disks].pdev_path = cp.disks[k].image;
                d.disks[d.num_disks++].format = cp.disks[k].format;
            }
    if (!libxl__checkpoint_undo(gc, &d, &l, &cp))
        LOG(WARN, "domain %s: checkpoint '%s' of the interrupted "
            "snapshot-create was rolled back (its record had not been "
            "written)", op->d.name, cp.name);
}

int libxl__create_recover(libxl__gc *gc, libxl__snapshot_op *op, yajl_val j)
{
    int rc = create_recover(gc, op, j);
    if (!rc) recover_checkpoint(gc, op, j);
    return rc;
}

static int create_recover(libxl__gc *gc, libxl__snapshot_op *op, yajl_val j)
{
    libxlsnap_domain_snapshot s;
    bool live = libxl__json_get_bool(j, "live", false);
    const char *memory_tmp = libxl__json_get_string(j, "memory_tmp");
    bool memory_done;
    libxl__snapshot_tree *t = &op->tree;
    int i, rc;

    rc = libxl__domain_snapshot_parse_json(gc, libxl__json_get(j,
                                                              "snapshot"),
                                           &s);
    if (rc || !s.name)
        return libxl__journal_unusable(gc, op, "holds no readable "
                                       "snapshot record");
    /* the image is renamed to its name once complete (see the design
     * comment); a journal of an older version said so itself */
    memory_done = memory_tmp ? s.memory && libxl__file_exists(s.memory)
                             : libxl__json_get_bool(j, "memory_done", false);
    if (s.memory) unstick_memory_save(gc, op, &s);
    for (i = 0; op->d.running && i < s.num_disks; i++)
        if (libxl__snapshot_backend_of(&s.disks[i]) &&
            libxl__snapshot_backend_of(&s.disks[i])->live_paused &&
            s.state == LIBXLSNAP_DOMAIN_STATE_RUNNING) {
            /* paused for the lvcreates: it runs again */
            CTX->driver->unpause(gc, &op->d);
            break;
        }
    rc = libxl__snapshot_tree_find(t, s.name) ? 1
         : create_happened(gc, op, &s, live);
    if (rc < 0) {
        LOG(ERROR, "domain %s: cannot tell whether the interrupted "
            "snapshot-create of '%s' took its disks; its journal is kept, "
            "for the next command", op->d.name, s.name);
        return rc;
    }
    if (rc) {
        /* forward: what the snapshot made is in use; record it */
        if (memory_tmp && unlink(memory_tmp) && errno != ENOENT)
            LOGE(WARN, "cannot remove the partial memory image '%s'",
                 memory_tmp);
        if (s.memory && !memory_done) {
            if (!memory_tmp) unlink(s.memory);
            s.memory = NULL;
        }
        if (!libxl__snapshot_tree_find(t, s.name)) {
            s.current = true;
            libxl__snapshot_tree_add(gc, t, &s);
        }
        t->dom.current = s.name;
        for (i = 0; i < s.num_disks; i++) {
            const libxlsnap_disk_snapshot *ds = &s.disks[i];
            const libxl__snapshot_backend *be = libxl__snapshot_backend_of(ds);
            const char *active;
            libxl_disk_format fmt;
            if (!be || !be->active_after) continue;
            /* offline: the bitmaps carried over, as its commands would
             * have (qemu-img, one at a time: cut anywhere) */
            if (!live && be == &libxl__snapshot_backend_overlay) {
                rc = libxl__overlay_bitmaps_finish(gc, ds);
                if (rc) return rc;      /* the journal stays: again */
            }
            be->active_after(ds, live, &active, &fmt);
            libxl__domain_record_set_disk(gc, &t->dom, &op->cfg, ds->vdev,
                                          active, fmt);
            if (op->d.running && CTX->driver->set_active_disk) {
                rc = CTX->driver->set_active_disk(gc, &op->d, ds->vdev,
                                                  ds->file, active, fmt);
                if (rc) return rc;      /* the journal stays: again */
            }
        }
        libxl__snapshot_tree_fixup(gc, t);
        rc = libxl__snapshot_store_save(gc, &op->st, t);
        if (rc) return rc;
        LOG(WARN, "domain %s: an interrupted snapshot-create of '%s' was "
            "completed (its disks had been taken)%s", op->d.name, s.name,
            s.memory ? ", with its memory image"
            : !libxl__json_get(libxl__json_get(j, "snapshot"), "memory")
            ? "" : "; its memory image was not finished: disk-only");
        return 0;
    }
    /* back: nothing it made is in use; remove it */
    for (i = 0; i < s.num_disks; i++) {
        const libxlsnap_disk_snapshot *ds = &s.disks[i];
        const char *why;
        if (libxl__disk_snapshot_undo(gc, op, ds, t, &why))
            LOG(WARN, "disk %s: cannot remove its snapshot '%s' of '%s'%s%s",
                ds->vdev, ds->tag ? ds->tag : ds->overlay, ds->file,
                why ? ": " : "", why ? why : "");
    }
    if (s.memory) unlink(s.memory);
    if (memory_tmp) unlink(memory_tmp);
    LOG(WARN, "domain %s: an interrupted snapshot-create of '%s' was "
        "rolled back (its disks had not all been taken)", op->d.name,
        s.name);
    return 0;
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
