/*
 * libxl_snapshot_revert.c - bringing a domain back to a snapshot
 *
 * Any snapshot in the tree can be the target, not only the latest:
 *
 *  - external disk: a *fresh* qcow2 overlay is created on the image the
 *    snapshot froze, and becomes the active image.  The snapshot's own
 *    image is never written, so it stays reusable, and reverting to an
 *    older snapshot and writing starts a new branch of the tree.  The
 *    overlay is <dir>/<stem>.<snapshot>.<N>.qcow2, N the first unused.
 *  - lvm disk: `lvconvert --merge` of the snapshot volume into the
 *    origin, then the snapshot volume is made again (libxl_snapshot_
 *    backend_lvm.c).  A running domain is only stopped for it with
 *    --force (the merge needs the volume closed).  A failed LVM step is
 *    undone (libxl__lvm_revert_undo); if it cannot be, the journal is
 *    kept and the next command finishes the revert.
 *  - internal disk: `qemu-img snapshot -a` on the image holding it,
 *    when that is the disk's active image.  If an external snapshot has
 *    since frozen it, it backs other images and rewriting it would
 *    corrupt them: the snapshot's state is copied out instead
 *    (`qemu-img convert -l snapshot.id=ID -B B`) into a fresh image,
 *    <stem>.<snapshot>.<N>.qcow2, which becomes active (a copy: slower,
 *    but any snapshot of the tree can be reverted to).  It is built on
 *    B, the backing of the image holding the snapshot, with only that
 *    image's own clusters: the disk's chain is then the snapshot's, as
 *    after a revert in place, so the external snapshots below it stay
 *    in the active chain (the delete and snapshot-check rely on it).
 *    The image holding the snapshot is no longer in the running chain.
 *
 * A running domain is stopped first (a guest whose disk changes under
 * it would corrupt its file systems) and started again afterwards in
 * the state the snapshot recorded, or as --running / --paused say.
 *
 * The active image the domain leaves behind is deleted when nothing
 * refers to it any more (no snapshot froze it and it is not an image
 * of the domain config), so reverting never leaks overlays; so is the
 * image a block-copy pivoted the disk away from (kept by the copy, its
 * domain record's copied_from).  Undoable
 * steps (new overlays) run before the irreversible ones (snapshot -a);
 * the records are written only once every disk is done.
 *
 * Everything is checked before the domain is stopped: the snapshot's
 * images exist, each internal snapshot is in its image exactly once
 * (found by name, applied by ID), and a config to restart from exists.
 *
 * Crash safety: a journal (libxl_snapshot_journal.c) is written just
 * before the domain is stopped and removed at the end; a revert that
 * died half-way is finished by the next command on the domain.
 *
 * Failure: before any internal revert ran, the new overlays (and copies)
 * are removed and the domain is started again on the images the records
 * name: wholly old.  Once one ran (it cannot be undone), a failure
 * (a disk's command, the records' save) leaves the domain stopped and
 * the journal in place, "saved" false: the next command redoes every
 * disk (idempotent), saves the records and starts the domain as
 * planned, and until then snapshot-check reports the pending revert.
 *
 * Steps: libxlsnap_domain_snapshot_revert -> snapshot_revert_begun ->
 *   snapshot_revert_probed [-> snapshot_revert_stopped] ->
 *   snapshot_revert_next <-> snapshot_revert_disk_done ->
 *   snapshot_revert_record [-> snapshot_revert_unused_done] ->
 *   snapshot_revert_done [-> snapshot_revert_started] ->
 *   snapshot_revert_finish
 * The domain is stopped and started again as steps on the loop
 * (libxl__domain_start_async: a timer polls for the new QEMU's QMP
 * socket, the memory image is restored over an async QMP connection),
 * so that the caller's loop never waits for QEMU.  What the revert
 * leaves unused is found and removed as steps too
 * (libxl__snapshot_remove_unused: a qemu-img run per image of the
 * records, then a child that removes them), so that the time the loop
 * is held does not grow with the number of snapshots.
 *
 * Abort (ao_abort): before any disk is touched, the revert is undone
 * as after a failure (the domain restarted on the images the records
 * name, a restart that is never aborted); once the records say
 * reverted, only the start remains (the removal of what the revert
 * left unused, which comes first, finishes), and an abort then kills
 * the QEMU being started (half-restored): the domain is left reverted
 * and shut
 * off.  Either way the callback gets ERROR_ABORTED.
 */
#include "libxl_snapshot_internal.h"

#include <unistd.h>

/* as its backend plans it (->revert_plan) */
typedef libxl__revert_disk revert_disk;

typedef struct libxl__snapshot_revert_state {
    libxl__ao *ao;
    libxl__snapshot_op op;
    const char *name;
    unsigned flags;
    libxlsnap_progress_how progress;   /* a copy; zero: none */
    libxlsnap_domain_snapshot *snap;
    revert_disk *disks;              /* in execution order */
    int num_disks, next, done_disks, sub;
    bool was_running, was_paused, stopped, journaled;
    const char *applied;             /* a disk whose internal revert ran */
    bool half_done;                  /* the journal finishes it: an LVM
                                      * disk left half-reverted, or the
                                      * journal stuck at "not saved" */
    libxl__qemu_img_info_state qi;   /* images holding internal ones */
    libxl__exec_state es;
    libxl__remove_unused_state ru;   /* what the revert leaves unused */
    libxl__domain_async da;          /* the domain started at the end */
    int final_rc;                    /* the revert's, while it starts */
} libxl__snapshot_revert_state;

static void snapshot_revert_begun(libxl__egc *egc, libxl__snapshot_op *op,
                                  int rc);
static void snapshot_revert_probed(libxl__egc *egc,
                                   libxl__qemu_img_info_state *qi, int rc);
static void snapshot_revert_next(libxl__egc *egc,
                                 libxl__snapshot_revert_state *rvs);
static int write_journal(libxl__gc *gc, libxl__snapshot_revert_state *rvs,
                         bool saved);
static void snapshot_revert_disk_done(libxl__egc *egc,
                                      libxl__exec_state *es, int rc,
                                      int status);
static void snapshot_revert_record(libxl__egc *egc,
                                   libxl__snapshot_revert_state *rvs);
static void snapshot_revert_unused_done(libxl__egc *egc,
                                        libxl__remove_unused_state *ru,
                                        int rc);
static void snapshot_revert_done(libxl__egc *egc,
                                 libxl__snapshot_revert_state *rvs, int rc);
static void snapshot_revert_stopped(libxl__egc *egc,
                                    libxl__domain_async *da, int rc);
static void snapshot_revert_started(libxl__egc *egc,
                                    libxl__domain_async *da, int r);
static void snapshot_revert_finish(libxl__egc *egc,
                                   libxl__snapshot_revert_state *rvs,
                                   int rc);

int libxlsnap_domain_snapshot_revert(libxlsnap_ctx *ctx,
                                 const char *domain, const char *name,
                                 unsigned flags,
                                 const libxlsnap_progress_how *progress,
                                 const libxl_asyncop_how *ao_how)
{
    if (ARGS_MISSING(ctx, domain, name) ||
        FLAGS_UNKNOWN(ctx, flags, LIBXLSNAP_REVERT_RUNNING |
                      LIBXLSNAP_REVERT_PAUSED | LIBXLSNAP_REVERT_FORCE))
        return ERROR_INVAL;
    AO_CREATE(ctx, ao_how);
    EGC_INIT(ctx);
    libxl__snapshot_revert_state *rvs;

    if ((flags & LIBXLSNAP_REVERT_RUNNING) &&
        (flags & LIBXLSNAP_REVERT_PAUSED)) {
        LOG(ERROR, "LIBXLSNAP_REVERT_RUNNING and _PAUSED exclude each "
            "other");
        EGC_FREE;
        return AO_CREATE_FAIL(ERROR_INVAL);
    }
    GCNEW(rvs);
    rvs->ao = ao;
    rvs->name = GCSTRDUP(name);
    rvs->flags = flags;
    if (progress) rvs->progress = *progress;
    libxl__exec_init(&rvs->es);
    rvs->op.ao = ao;
    rvs->op.domain = GCSTRDUP(domain);
    rvs->op.callback = snapshot_revert_begun;
    libxl__snapshot_op_begin(egc, &rvs->op);
    EGC_FREE;
    return AO_INPROGRESS;
}

static bool is_config_image(const libxl__domain_config *cfg,
                            const char *path)
{
    int i;
    for (i = 0; i < cfg->num_disks; i++)
        if (cfg->disks[i].pdev_path &&
            !strcmp(cfg->disks[i].pdev_path, path))
            return true;
    return false;
}

static char *fresh_overlay(libxl__gc *gc,
                           libxl__snapshot_revert_state *rvs,
                           const libxlsnap_disk_snapshot *ds)
{
    const char *stem = NULL;
    int i, n;

    for (i = 0; i < rvs->op.cfg.num_disks; i++)
        if (!strcmp(rvs->op.cfg.disks[i].vdev, ds->vdev))
            stem = libxl__path_stem(gc, rvs->op.cfg.disks[i].pdev_path);
    if (!stem) stem = libxl__path_stem(gc, ds->file);
    for (n = 1; ; n++) {
        char *p = GCSPRINTF("%s/%s.%s.%d.%s",
                            libxl__path_dirname(gc, ds->file), stem,
                            rvs->snap->name, n,
                            libxl__overlay_ext(ds->format, false));
        if (!libxl__file_exists(p)) return p;
    }
}

static int plan(libxl__gc *gc, libxl__snapshot_revert_state *rvs)
{
    libxl__snapshot_op *op = &rvs->op;
    const char *left = NULL;
    int i, pass, n, rc;

    for (i = 0, n = 0; i < rvs->snap->num_disks; i++) {
        const libxlsnap_disk_snapshot *ds = &rvs->snap->disks[i];
        if (ds->type != LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO) n++;
        else left = GCSPRINTF("%s%s%s", left ? left : "", left ? ", " : "",
                              ds->vdev);
    }
    if (!n && !rvs->snap->memory) {
        /* a delete of it stopped with every disk done, say */
        LOG(ERROR, "snapshot '%s' holds no disk and no memory (a delete "
            "of it stopped part-way? snapshot-recover finishes it); there "
            "is nothing to revert to", rvs->name);
        return ERROR_INVAL;
    }

    GCNEW_ARRAY(rvs->disks, rvs->snap->num_disks);
    /* externals first: they can be undone */
    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < rvs->snap->num_disks; i++) {
            const libxlsnap_disk_snapshot *ds = &rvs->snap->disks[i];
            const libxl__snapshot_backend *be =
                libxl__snapshot_backend_of(ds);
            libxl__revert_plan p;
            libxl_device_disk *dk;
            const char *why;
            revert_disk *rd;

            if (!be) continue;
            dk = libxl__domain_disk(&op->d, ds->vdev);
            if (be->revert_undoable(ds, dk) != (pass == 0)) continue;
            if (!dk) {
                LOG(ERROR, "snapshot '%s' has disk %s, which the domain no "
                    "longer has", rvs->name, ds->vdev);
                return ERROR_INVAL;
            }
            why = libxl__image_missing(gc, ds->file);
            if (why) {
                LOG(ERROR, "snapshot '%s': image '%s' of disk %s %s",
                    rvs->name, ds->file, ds->vdev,
                    strcmp(why, "does not exist") ? why : "is gone");
                return ERROR_FAIL;
            }
            rd = &rvs->disks[rvs->num_disks++];
            rd->ds = ds;
            rd->old_active = dk->pdev_path;
            p.op = op;
            p.snapshot = rvs->name;
            p.force = !!(rvs->flags & LIBXLSNAP_REVERT_FORCE);
            p.info = rvs->qi.infos[i];
            p.dk = dk;
            p.fresh = fresh_overlay(gc, rvs, ds);
            rc = be->revert_plan(gc, &p, rd);
            if (rc) return rc;
        }
    }
    if (left)                         /* said once the revert can go */
        LOG(WARN, "snapshot '%s' does not hold disk(s) %s: they are left "
            "as they are", rvs->name, left);
    return 0;
}

/*
 * A revert puts a disk's data back in time, under its checkpoints'
 * bitmaps, which would then miss what it changed (a silently wrong
 * incremental): refused while a checkpoint covers a disk it reverts
 * (as libvirt), in one line naming them.
 */
static int checkpoints_refuse(libxl__gc *gc,
                              libxl__snapshot_revert_state *rvs)
{
    libxl__checkpoint_list l;
    const char *names = NULL;
    int i, k, rc;

    rc = libxl__checkpoint_load(gc, &rvs->op.st, false, &l);
    if (rc) return rc;
    for (i = 0; i < l.num; i++)
        for (k = 0; k < rvs->snap->num_disks; k++)
            if (libxl__snapshot_backend_of(&rvs->snap->disks[k]) &&
                libxl__checkpoint_disk(&l.cps[i], rvs->snap->disks[k].vdev)) {
                names = GCSPRINTF("%s%s'%s'", names ? names : "",
                                  names ? ", " : "", l.cps[i].name);
                break;
            }
    if (!names) return 0;
    LOG(ERROR, "domain %s: cannot revert to snapshot '%s' while checkpoints "
        "cover its disks (%s): their bitmaps would miss what the revert "
        "changes; delete them first (xl checkpoint-delete)", rvs->op.d.name,
        rvs->name, names);
    return ERROR_INVAL;
}

static void snapshot_revert_begun(libxl__egc *egc, libxl__snapshot_op *op,
                                  int rc)
{
    libxl__snapshot_revert_state *rvs =
        CONTAINER_OF(op, libxl__snapshot_revert_state, op);
    STATE_AO_GC(rvs->ao);
    int i;

    if (rc) goto out;
    rc = libxl__blockjob_check_idle(gc, &op->st, &op->d);
    if (rc) goto out;
    rvs->snap = libxl__snapshot_tree_find(&op->tree, rvs->name);
    if (!rvs->snap) {
        LOG(ERROR, "domain %s has no snapshot named '%s'", op->d.name,
            libxl__printable(gc, rvs->name));
        rc = ERROR_NOTFOUND;
        goto out;
    }
    if (rvs->snap->memory && !libxl__file_exists(rvs->snap->memory)) {
        LOG(ERROR, "snapshot '%s': its memory image '%s' is missing",
            rvs->name, rvs->snap->memory);
        rc = ERROR_FAIL;
        goto out;
    }
    rc = checkpoints_refuse(gc, rvs);
    if (rc) goto out;
    GCNEW_ARRAY(rvs->qi.images, rvs->snap->num_disks);
    for (i = 0; i < rvs->snap->num_disks; i++) {
        const libxl__snapshot_backend *be =
            libxl__snapshot_backend_of(&rvs->snap->disks[i]);
        if (be && be->image_info)
            rvs->qi.images[i] = rvs->snap->disks[i].file;
    }
    rvs->qi.num_images = rvs->snap->num_disks;
    rvs->qi.ao = ao;
    rvs->qi.callback = snapshot_revert_probed;
    libxl__qemu_img_info(egc, &rvs->qi);
    return;
 out:
    snapshot_revert_done(egc, rvs, rc);
}

static bool wants_start(libxl__snapshot_revert_state *rvs)
{
    return (rvs->flags & (LIBXLSNAP_REVERT_RUNNING |
                          LIBXLSNAP_REVERT_PAUSED)) ||
        rvs->snap->state != LIBXLSNAP_DOMAIN_STATE_SHUTOFF ||
        rvs->snap->memory || rvs->op.d.running;
}

static void snapshot_revert_probed(libxl__egc *egc,
                                   libxl__qemu_img_info_state *qi, int rc)
{
    libxl__snapshot_revert_state *rvs =
        CONTAINER_OF(qi, libxl__snapshot_revert_state, qi);
    libxl__snapshot_op *op = &rvs->op;
    STATE_AO_GC(rvs->ao);

    if (rc) goto out;
    rc = plan(gc, rvs);
    if (rc) goto out;
    if (wants_start(rvs) && !op->cfg.file) {
        /* never stop a domain we could not start again */
        LOG(ERROR, "domain %s: no config file is known to start it from "
            "after the revert", op->d.name);
        rc = ERROR_FAIL;
        goto out;
    }
    rvs->was_running = op->d.running;
    rvs->was_paused = op->d.paused;
    rc = write_journal(gc, rvs, false);
    if (rc) goto out;
    rvs->journaled = true;
    libxl__fault_point("revert");
    if (op->d.running) {
        LOG(INFO, "domain %s: stopping it to revert its disks", op->d.name);
        rvs->da.ao = ao;
        rvs->da.d = &op->d;
        rvs->da.callback = snapshot_revert_stopped;
        libxl__domain_stop_async(egc, &rvs->da);
        return;
    }
    rvs->next = 0;
    snapshot_revert_next(egc, rvs);
    return;
 out:
    snapshot_revert_done(egc, rvs, rc);
}

static void snapshot_revert_stopped(libxl__egc *egc,
                                    libxl__domain_async *da, int rc)
{
    libxl__snapshot_revert_state *rvs =
        CONTAINER_OF(da, libxl__snapshot_revert_state, da);

    if (rc) goto out;
    rvs->stopped = true;
    libxl__fault_point("revert");
    /* aborted meanwhile: no disk is touched yet, it starts again as was */
    if (libxl__ao_is_aborting(rvs->ao)) {
        rc = ERROR_ABORTED;
        goto out;
    }
    rvs->next = 0;
    snapshot_revert_next(egc, rvs);
    return;
 out:
    snapshot_revert_done(egc, rvs, rc);
}

/* How the domain is to be started once the revert succeeded. */
static void start_plan(libxl__snapshot_revert_state *rvs, bool *start_r,
                       bool *paused_r, const char **restore_r)
{
    *start_r = *paused_r = false;
    *restore_r = NULL;
    if (rvs->snap->memory) {
        /* back to the saved instant: running, unless --paused */
        *start_r = true;
        *paused_r = !!(rvs->flags & LIBXLSNAP_REVERT_PAUSED);
        *restore_r = rvs->snap->memory;
    } else if (rvs->flags & LIBXLSNAP_REVERT_RUNNING) {
        *start_r = true;
    } else if (rvs->flags & LIBXLSNAP_REVERT_PAUSED) {
        *start_r = *paused_r = true;
    } else if (rvs->snap->state != LIBXLSNAP_DOMAIN_STATE_SHUTOFF) {
        *start_r = true;
        *paused_r = rvs->snap->state == LIBXLSNAP_DOMAIN_STATE_PAUSED;
    }
}

/*
 * The journal (libxl_snapshot_journal.c): the snapshot, each disk's
 * plan, the images to discard, how to start, and whether the records
 * are saved, so that a revert that dies after stopping the domain can
 * be finished by the next command.
 */
static int write_journal(libxl__gc *gc, libxl__snapshot_revert_state *rvs,
                         bool saved)
{
    yajl_gen hand = yajl_gen_alloc(NULL);
    const unsigned char *buf;
    const char *restore;
    bool start, paused;
    size_t len;
    int i, rc = ERROR_FAIL;

    if (!hand) abort();
    start_plan(rvs, &start, &paused, &restore);
    if (yajl_gen_map_open(hand) ||
        libxl__yajl_gen_str(hand, "op") ||
        libxl__yajl_gen_str(hand, "revert") ||
        libxl__yajl_gen_opt_str(hand, "snapshot", rvs->snap->name) ||
        libxl__yajl_gen_str(hand, "start") || yajl_gen_bool(hand, start) ||
        libxl__yajl_gen_str(hand, "paused") || yajl_gen_bool(hand, paused) ||
        libxl__yajl_gen_str(hand, "saved") || yajl_gen_bool(hand, saved) ||
        libxl__yajl_gen_opt_str(hand, "restore", restore) ||
        libxl__yajl_gen_str(hand, "disks") || yajl_gen_array_open(hand))
        goto out;
    for (i = 0; i < rvs->num_disks; i++) {
        const revert_disk *rd = &rvs->disks[i];
        bool internal = rd->forward_only;
        if (yajl_gen_map_open(hand) ||
            (rd->volume && (libxl__yajl_gen_str(hand, "lvm") ||
                     libxl__yajl_gen_str(hand, rd->volume) ||
                     libxl__yajl_gen_str(hand, "lvm_size") ||
                     yajl_gen_integer(hand, (long long)rd->lvm_size))) ||
            libxl__yajl_gen_opt_str(hand, "vdev", rd->ds->vdev) ||
            libxl__yajl_gen_opt_str(hand, "file", rd->ds->file) ||
            libxl__yajl_gen_str(hand, "format") ||
            yajl_gen_integer(hand, rd->ds->format) ||
            libxl__yajl_gen_str(hand, "internal") ||
            yajl_gen_bool(hand, internal && !rd->rbd) ||
            (rd->rbd && (libxl__yajl_gen_str(hand, "rbd") ||
                         yajl_gen_bool(hand, true))) ||
            libxl__yajl_gen_str(hand, "copy") || yajl_gen_bool(hand, rd->copy) ||
            libxl__yajl_gen_opt_str(hand, "copy_base", rd->copy_base) ||
            libxl__yajl_gen_str(hand, "copy_base_format") ||
            yajl_gen_integer(hand, rd->copy_base_format) ||
            libxl__yajl_gen_opt_str(hand, "tag_id", rd->tag_id) ||
            libxl__yajl_gen_opt_str(hand, "new_active", rd->new_active) ||
            yajl_gen_map_close(hand))
            goto out;
    }
    if (yajl_gen_array_close(hand) ||
        libxl__yajl_gen_str(hand, "discard") || yajl_gen_array_open(hand))
        goto out;
    for (i = 0; i < rvs->num_disks; i++) {
        const revert_disk *rd = &rvs->disks[i];
        if (rd->old_active && strcmp(rd->old_active, rd->new_active) &&
            !libxl__snapshot_tree_has_image(&rvs->op.tree, rd->old_active) &&
            !is_config_image(&rvs->op.cfg, rd->old_active) &&
            libxl__yajl_gen_str(hand, rd->old_active))
            goto out;
    }
    if (yajl_gen_array_close(hand) || yajl_gen_map_close(hand) ||
        yajl_gen_get_buf(hand, &buf, &len))
        goto out;
    rc = libxl__journal_write_text(gc, &rvs->op.st, (const char *)buf, len,
                                   saved);
 out:
    /* saved: an update the revert can do without (its caller says) */
    if (rc && !saved) LOG(ERROR, "cannot write the journal of the revert");
    yajl_gen_free(hand);
    return rc;
}

/* qemu-img convert -p of a copy: "    (45.00/100%)", as progress */
static void snapshot_revert_copy_line(libxl__egc *egc, libxl__exec_state *es,
                                      const char *line)
{
    libxl__snapshot_revert_state *rvs =
        CONTAINER_OF(es, libxl__snapshot_revert_state, es);
    STATE_AO_GC(rvs->ao);
    const revert_disk *rd = &rvs->disks[rvs->next];
    const libxlsnap_progress_how *p = &rvs->progress;
    double pct;

    if (p->callback && sscanf(line, " (%lf/100%%)", &pct) == 1)
        libxl__progress_report(p, GCSPRINTF("disk %s", rd->ds->vdev),
                               (uint64_t)(pct / 100.0 * rd->copy_size),
                               rd->copy_size);
}

static void snapshot_revert_next(libxl__egc *egc,
                                 libxl__snapshot_revert_state *rvs)
{
    STATE_AO_GC(rvs->ao);
    revert_disk *rd;
    int rc;

    if (rvs->next == rvs->num_disks) {
        snapshot_revert_record(egc, rvs);
        return;
    }
    rd = &rvs->disks[rvs->next];
    if (rd->forward_only && !rvs->applied)
        rvs->applied = rd->ds->vdev;  /* from here on, forward only */
    libxl__exec_init(&rvs->es);
    rvs->es.ao = ao;
    rvs->es.what = GCSPRINTF("revert of %s", rd->ds->vdev);
    rvs->es.args = rd->cmds[rvs->sub];
    rvs->es.timeout_ms = rd->timeout_ms ? rd->timeout_ms : 300000;
    if (rd->copy_size) rvs->es.stdout_line = snapshot_revert_copy_line;
    rvs->es.callback = snapshot_revert_disk_done;
    rc = libxl__exec_start(egc, &rvs->es);
    if (rc) snapshot_revert_disk_done(egc, &rvs->es, rc, 0);
}

/*
 * A step of the disk being reverted failed: its backend puts it back
 * as it was (an LVM disk: the thin origin renamed back), else the
 * journal is kept for the next command to finish the revert.
 */
static void disk_step_failed(libxl__gc *gc,
                             libxl__snapshot_revert_state *rvs,
                             int exit_code)
{
    const revert_disk *rd = &rvs->disks[rvs->next];
    const libxl__snapshot_backend *be = libxl__snapshot_backend_of(rd->ds);

    /* a killed `qemu-img create` (or convert) may have left a partial
     * image */
    if (rd->new_image) unlink(rd->new_active);
    if (!be->revert_failed) return;
    if (!be->revert_failed(gc, rd, exit_code)) {
        LOG(WARN, "disk %s: the revert's steps were undone: '%s' is as "
            "before", rd->ds->vdev, rd->ds->file);
        /* the first that could not be undone did not run after all */
        if (rvs->applied == rd->ds->vdev) rvs->applied = NULL;
        return;
    }
    rvs->half_done = true;
    LOG(ERROR, "disk %s: the revert's steps cannot be undone; "
        "snapshot-recover finishes the revert to '%s'", rd->ds->vdev,
        rvs->name);
}

static void snapshot_revert_disk_done(libxl__egc *egc,
                                      libxl__exec_state *es, int rc,
                                      int status)
{
    libxl__snapshot_revert_state *rvs =
        CONTAINER_OF(es, libxl__snapshot_revert_state, es);
    STATE_AO_GC(rvs->ao);

    if (rc) {
        disk_step_failed(gc, rvs, rc != ERROR_FAIL ? -1
                         : WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        snapshot_revert_done(egc, rvs, rc);
        return;
    }
    if (++rvs->sub < rvs->disks[rvs->next].num_cmds) {
        libxl__fault_point("revert");   /* between two commands (LVM) */
        snapshot_revert_next(egc, rvs);
        return;
    }
    rvs->sub = 0;
    rvs->done_disks = ++rvs->next;
    libxl__fault_point("revert");
    snapshot_revert_next(egc, rvs);
}

static void snapshot_revert_record(libxl__egc *egc,
                                   libxl__snapshot_revert_state *rvs)
{
    STATE_AO_GC(rvs->ao);
    libxl__snapshot_op *op = &rvs->op;
    char **discard;
    const char **keep;
    int i, j, n = 0, max = rvs->num_disks, rc;

    /* room for every disk's old active image and every image a copy
     * pivoted it away from */
    for (i = 0; i < rvs->num_disks; i++) {
        libxl__active_disk *a =
            libxl__domain_record_disk(&op->tree.dom, rvs->disks[i].ds->vdev);
        if (a) max += a->num_copied_from;
    }
    GCNEW_ARRAY(discard, max);
    for (i = 0; i < rvs->num_disks; i++) {
        revert_disk *rd = &rvs->disks[i];
        libxl__active_disk *a;
        libxl__domain_record_set_disk(gc, &op->tree.dom, &op->cfg,
                                      rd->ds->vdev,
                                      rd->new_active, rd->new_format);
        if (rd->old_active && strcmp(rd->old_active, rd->new_active) &&
            !libxl__snapshot_tree_has_image(&op->tree, rd->old_active) &&
            !is_config_image(&op->cfg, rd->old_active))
            discard[n++] = GCSTRDUP(rd->old_active);
        /* the image a block-copy pivoted the disk away from is left
         * behind too, as the active image is (the copy kept it) */
        a = libxl__domain_record_disk(&op->tree.dom, rd->ds->vdev);
        for (j = 0; a && j < a->num_copied_from; j++) {
            const char *c = a->copied_from[j];
            if (strcmp(c, rd->new_active) && libxl__file_exists(c) &&
                !libxl__snapshot_tree_has_image(&op->tree, c) &&
                !is_config_image(&op->cfg, c))
                discard[n++] = GCSTRDUP(c);
        }
        if (a) a->num_copied_from = 0;
    }
    op->tree.dom.current = GCSTRDUP(rvs->snap->name);
    libxl__snapshot_tree_fixup(gc, &op->tree);
    rc = libxl__snapshot_store_save(gc, &op->st, &op->tree);
    if (rc) goto out;
    /* recovery then only does what comes after (a crash before this
     * redoes every disk, which is idempotent); a journal that cannot
     * say so goes: the records are the truth now, and recovery must not
     * take a domain started on them for one never stopped.  Nothing the
     * user needs to hear: the revert goes on as if it had been written
     * (only a crash before its end would leave the images it discards) */
    if (write_journal(gc, rvs, true)) {
        if (libxl__journal_remove(gc, &op->st)) {
            /* it still says "not saved": the domain must stay stopped,
             * and the next command does it all again (idempotent) */
            LOG(ERROR, "domain %s: its disks are reverted to '%s' and the "
                "records say so, but its journal could be neither updated "
                "nor removed: it is left stopped; snapshot-recover (or any "
                "command on the domain) finishes the revert", op->d.name,
                rvs->name);
            rvs->half_done = true;
            rvs->done_disks = -1;
            rc = ERROR_FAIL;
            goto out;
        }
        LOG(INFO, "the journal could not be marked saved; removed instead");
        rvs->journaled = false;
    }
    libxl__fault_point("revert");
    rvs->done_disks = -1;    /* nothing to undo any more */
    /*
     * Only now, with the records pointing elsewhere: the discarded
     * images, and those below them that nothing needs any more (a
     * commit may have dropped the records that used them), found and
     * removed as steps (one qemu-img run per image of the records).
     * Not aborted: the revert is still abortable (its start is), but
     * an image left here would belong to no record (snapshot-check
     * reports it) and the journal cannot name those below the
     * discarded ones; an abort meanwhile stops the start.
     */
    GCNEW_ARRAY(keep, rvs->num_disks);
    for (i = 0; i < rvs->num_disks; i++) keep[i] = rvs->disks[i].new_active;
    rvs->ru.ao = ao;
    rvs->ru.op = op;
    rvs->ru.keep = keep;
    rvs->ru.num_keep = rvs->num_disks;
    rvs->ru.from = (const char *const *)discard;
    rvs->ru.num_from = n;
    rvs->ru.with_self = false;
    rvs->ru.also = (const char *const *)discard;
    rvs->ru.num_also = n;
    rvs->ru.unabortable = true;
    rvs->ru.stopped = true;          /* (a running domain was stopped) */
    rvs->ru.callback = snapshot_revert_unused_done;
    libxl__snapshot_remove_unused(egc, &rvs->ru);
    return;
 out:
    snapshot_revert_done(egc, rvs, rc);
}

static void snapshot_revert_unused_done(libxl__egc *egc,
                                        libxl__remove_unused_state *ru,
                                        int rc)
{
    libxl__snapshot_revert_state *rvs =
        CONTAINER_OF(ru, libxl__snapshot_revert_state, ru);

    /* (never aborted: a failure there is a warning) */
    snapshot_revert_done(egc, rvs, 0);
}

static void snapshot_revert_done(libxl__egc *egc,
                                 libxl__snapshot_revert_state *rvs, int rc)
{
    STATE_AO_GC(rvs->ao);
    libxl__snapshot_op *op = &rvs->op;
    bool start = false, paused = false;
    const char *restore = NULL;
    int i;

    if (rc && rvs->done_disks >= 0 && rvs->applied) {
        /*
         * An internal revert cannot be undone: the revert goes forward.
         * Its journal (written before any disk was touched, "saved"
         * false) stays, the domain stays stopped, and the next command
         * on the domain does every disk again and saves the records.
         */
        LOG(ERROR, "domain %s: the revert to '%s' stopped part-way (disk "
            "%s is already reverted); it is left stopped with its journal: "
            "snapshot-recover (or any command on the domain) finishes the "
            "revert once the cause is fixed", op->d.name, rvs->name,
            rvs->applied);
        libxl__snapshot_op_end(gc, op);
        libxl__ao_complete(egc, ao, rc);
        return;
    }
    if (rc && rvs->done_disks >= 0) {
        /* undo the overlays made so far (before any internal revert) */
        for (i = 0; i < rvs->done_disks; i++) {
            revert_disk *rd = &rvs->disks[i];
            if (rd->new_image)
                unlink(rd->new_active);
            else
                LOG(ERROR, "disk %s was already reverted to '%s' before "
                    "the failure", rd->ds->vdev, rvs->name);
        }
    }
    if (!rc) {
        start_plan(rvs, &start, &paused, &restore);
    } else if (rvs->half_done) {
        /* the journal finishes the revert, and starts it as planned */
    } else if (rvs->stopped) {
        /* put it back as it was, on the images the records name */
        start = true;
        paused = rvs->was_paused;
        if (libxl__snapshot_store_load(gc, &op->st, &op->tree))
            start = false;
    }
    if (start) {
        if (!op->cfg.file) {
            LOG(ERROR, "domain %s: no config file known, cannot start it",
                op->d.name);
            if (!rc) rc = ERROR_FAIL;
        } else {
            rvs->final_rc = rc;
            rvs->da.ao = ao;
            rvs->da.cfg = &op->cfg;
            rvs->da.rec = &op->tree.dom;
            rvs->da.paused = paused;
            rvs->da.restore = restore;
            rvs->da.progress = &rvs->progress;
            /* putting it back as it was always finishes */
            rvs->da.unabortable = rc != 0;
            rvs->da.callback = snapshot_revert_started;
            libxl__domain_start_async(egc, &rvs->da);
            return;
        }
    }
    snapshot_revert_finish(egc, rvs, rc);
}

static void snapshot_revert_started(libxl__egc *egc,
                                    libxl__domain_async *da, int r)
{
    libxl__snapshot_revert_state *rvs =
        CONTAINER_OF(da, libxl__snapshot_revert_state, da);
    STATE_AO_GC(rvs->ao);
    int rc = rvs->final_rc;

    if (r && !rc) {
        /* where things stand: wholly reverted, but shut off */
        if (r == ERROR_ABORTED)
            LOG(ERROR, "domain %s: its disks are reverted to '%s' and the "
                "records say so; the revert was aborted while the domain "
                "was started, so it is left shut off: start it, or revert "
                "to it again", rvs->op.d.name, rvs->name);
        else
            LOG(ERROR, "domain %s: its disks are reverted to '%s' and "
                "the records say so, but it could not be started: "
                "start it, or revert to it again",
                rvs->op.d.name, rvs->name);
        rc = r;
    }
    if (!r) libxl__fault_point("revert");
    snapshot_revert_finish(egc, rvs, rc);
}

static void snapshot_revert_finish(libxl__egc *egc,
                                   libxl__snapshot_revert_state *rvs,
                                   int rc)
{
    STATE_AO_GC(rvs->ao);
    libxl__snapshot_op *op = &rvs->op;

    /* done, or undone (and restarted on what the records name) */
    if (rvs->journaled && !rvs->half_done)
        libxl__journal_remove(gc, &op->st);
    libxl__snapshot_op_end(gc, op);
    libxl__ao_complete(egc, ao, rc);
}

/* ---------------------------------------------------------------- */
/* recovery: snapshot revert */

/*
 * On the loop: the disks of a revert stopped after the domain was,
 * done again one by one (each qemu-img run a child-process step: a
 * copy's `convert` can take an hour), the records saved, the images the
 * revert discards removed (and those below them that nothing needs any
 * more, as the revert does), and the domain started as the revert meant
 * (libxl__domain_start_async).  ao_abort stops the qemu-img run or the
 * start: the journal stays (a copy cut short is made again by the next
 * recovery), so the next command on the domain finishes the revert.
 */
typedef struct revert_recover_state {
    libxl__snapshot_op *op;
    yajl_val j, disks;
    const char *name;
    size_t next;
    libxl_disk_format new_fmt;        /* disks[next]'s, after */
    libxl__snapshot_op_callback *callback;
    libxl__exec_state es;
    libxl__remove_unused_state ru;    /* what it discards */
    libxl__domain_async da;
} revert_recover_state;

static void recover_next(libxl__egc *egc, revert_recover_state *rr);
static void recover_disk_done(libxl__egc *egc, libxl__exec_state *es,
                              int rc, int status);
static void recover_saved(libxl__egc *egc, revert_recover_state *rr);
static void recover_discarded(libxl__egc *egc,
                              libxl__remove_unused_state *ru, int rc);
static void recover_started(libxl__egc *egc, libxl__domain_async *da,
                            int rc);

/* The revert journal j again, with "saved" true. */
static int mark_saved(libxl__gc *gc, libxl__snapshot_op *op, yajl_val j)
{
    const char *text;
    size_t i;

    for (i = 0; i < j->u.object.len; i++)
        if (!strcmp(j->u.object.keys[i], "saved"))
            j->u.object.values[i]->type = yajl_t_true;
    text = libxl__json_to_string(gc, j);
    if (!text) return ERROR_FAIL;
    return libxl__journal_write_text(gc, &op->st, text, strlen(text), true);
}

/* Does disk d of a revert's journal keep its image (a backend not
 * chained: LVM, internal in place), rather than get a new one? */
static bool journal_keeps_image(yajl_val d)
{
    libxl_disk_format fmt = libxl__json_get_integer(d, "format",
                                                    LIBXL_DISK_FORMAT_QCOW2);
    return !libxl__revert_journal_backend(d, fmt)->chained;
}

void libxl__revert_recover(libxl__egc *egc, libxl__snapshot_op *op,
                           yajl_val j,
                           libxl__snapshot_op_callback *callback)
{
    STATE_AO_GC(op->ao);
    libxl__snapshot_tree *t = &op->tree;
    const char *name = libxl__json_get_string(j, "snapshot");
    yajl_val disks = libxl__json_get(j, "disks");
    revert_recover_state *rr;
    bool saved;
    size_t i;
    int rc;

    if (!name || !disks || !YAJL_IS_ARRAY(disks)) {
        rc = libxl__journal_unusable(gc, op, "holds no readable revert plan");
        goto out;
    }
    if (!libxl__snapshot_tree_find(t, name)) {
        rc = libxl__journal_unusable(gc, op,
                                     GCSPRINTF("names snapshot '%s', "
                                     "which the domain does not have",
                                     libxl__printable(gc, name)));
        goto out;
    }
    /* the revert says so once its records are saved (then only what
     * comes after is left); a disk may keep its image (internal, LVM),
     * so the records cannot tell by themselves */
    saved = libxl__json_get_bool(j, "saved", false);
    /* records that name a disk's new image were saved, whatever the
     * journal says (a recovery killed before it could say so) */
    for (i = 0; !saved && i < disks->u.array.len; i++) {
        yajl_val d = disks->u.array.values[i];
        const char *na = libxl__json_get_string(d, "new_active");
        const char *file = libxl__json_get_string(d, "file");
        /* (a disk that keeps its image, LVM or internal in place,
         * gives no sign) */
        saved = na && file && strcmp(na, file) &&
            libxl__domain_record_has_image(&t->dom, na) &&
            !journal_keeps_image(d);
    }
    if (!saved && op->d.running) {
        /* it died before stopping the domain: nothing was changed */
        for (i = 0; i < disks->u.array.len; i++) {
            yajl_val d = disks->u.array.values[i];
            const char *na = libxl__json_get_string(d, "new_active");
            /* (an image the records or QEMU run on is not the revert's
             * to take back, whatever its journal says) */
            if (journal_keeps_image(d) || !na ||
                libxl__snapshot_tree_uses_file(t, na) ||
                libxl__domain_record_has_image(&t->dom, na) ||
                libxl__op_runs_image(gc, op, na))
                continue;
            unlink(na);
        }
        LOG(WARN, "domain %s: an interrupted snapshot-revert to '%s' was "
            "rolled back (the domain had not been stopped yet)", op->d.name,
            name);
        callback(egc, op, 0);
        return;
    }
    GCNEW(rr);
    rr->op = op;
    rr->j = j;
    rr->disks = disks;
    rr->name = name;
    rr->callback = callback;
    libxl__exec_init(&rr->es);
    if (saved) {
        recover_saved(egc, rr);
        return;
    }
    /* stopped, disks maybe half done: do them all again, then record */
    rr->next = 0;
    recover_next(egc, rr);
    return;
 out:
    callback(egc, op, rc);
}

/* disks[rr->next] is done: the records say so (once all are saved) */
static void recover_set_disk(libxl__gc *gc, revert_recover_state *rr)
{
    yajl_val d = rr->disks->u.array.values[rr->next];

    libxl__domain_record_set_disk(gc, &rr->op->tree.dom, &rr->op->cfg,
        libxl__json_get_string(d, "vdev"),
        libxl__json_get_string(d, "new_active"), rr->new_fmt);
}

static void recover_next(libxl__egc *egc, revert_recover_state *rr)
{
    libxl__snapshot_op *op = rr->op;
    STATE_AO_GC(op->ao);
    libxl__snapshot_tree *t = &op->tree;
    int rc;

    for (; rr->next < rr->disks->u.array.len; rr->next++) {
        yajl_val d = rr->disks->u.array.values[rr->next];
        const char *vdev = libxl__json_get_string(d, "vdev");
        const char *file = libxl__json_get_string(d, "file");
        const char *na = libxl__json_get_string(d, "new_active");
        libxl_disk_format fmt =
            libxl__json_get_integer(d, "format", LIBXL_DISK_FORMAT_RAW);
        const char *const *args = NULL;
        int timeout_ms = 300000;

        if (!vdev || !file || !na) {
            rc = ERROR_INVAL;
            goto out;
        }
        rc = libxl__revert_journal_backend(d, fmt)->revert_redo(gc, d,
                 file, fmt, na, &rr->new_fmt, &args, &timeout_ms);
        if (rc) {
            LOG(ERROR, "domain %s: cannot finish the interrupted revert "
                "of disk %s", op->d.name, vdev);
            goto out;
        }
        if (args) {
            rr->es.ao = ao;
            rr->es.what = GCSPRINTF("recovery of the revert of %s", vdev);
            rr->es.args = args;
            rr->es.timeout_ms = timeout_ms;
            rr->es.quiet = true;
            rr->es.callback = recover_disk_done;
            rc = libxl__exec_start(egc, &rr->es);
            if (rc) recover_disk_done(egc, &rr->es, rc, 0);
            return;
        }
        recover_set_disk(gc, rr);
    }
    t->dom.current = GCSTRDUP(rr->name);
    libxl__snapshot_tree_fixup(gc, t);
    rc = libxl__snapshot_store_save(gc, &op->st, t);
    if (rc) goto out;
    /* as the revert does: the journal says the records are saved
     * before the domain starts, so that a recovery killed after the
     * start is not taken, by the next one, for a revert that never
     * stopped the domain (which would take back the image it runs
     * on); a journal that cannot say so goes */
    if (mark_saved(gc, op, rr->j)) libxl__journal_remove(gc, &op->st);
    recover_saved(egc, rr);
    return;
 out:
    rr->callback(egc, op, rc);
}

static void recover_disk_done(libxl__egc *egc, libxl__exec_state *es,
                              int rc, int status)
{
    revert_recover_state *rr = CONTAINER_OF(es, revert_recover_state, es);
    libxl__snapshot_op *op = rr->op;
    STATE_AO_GC(op->ao);
    const char *vdev = libxl__json_get_string(
        rr->disks->u.array.values[rr->next], "vdev");
    const char *why;

    if (rc == ERROR_ABORTED) {
        LOG(ERROR, "domain %s: the recovery of its interrupted revert to "
            "'%s' was aborted at disk %s; the journal stays: the next "
            "command on the domain finishes the revert", op->d.name,
            rr->name, vdev);
        goto out;
    }
    if (rc) {
        why = libxl__tool_error_line(gc, es->err);
        LOG(ERROR, "domain %s: cannot finish the interrupted revert of disk "
            "%s: %s", op->d.name, vdev, why ? why : "");
        goto out;
    }
    recover_set_disk(gc, rr);
    rr->next++;
    recover_next(egc, rr);
    return;
 out:
    rr->callback(egc, op, rc);
}

/*
 * The records are saved: what comes after.  The images the revert
 * chose to discard (nothing will refer to them), and those below them
 * that nothing needs any more, are removed as the revert does
 * (libxl__snapshot_remove_unused: a copy may be hundreds of MiB), steps
 * that finish even on an abort (they only free space).
 */
static void recover_saved(libxl__egc *egc, revert_recover_state *rr)
{
    libxl__snapshot_op *op = rr->op;
    STATE_AO_GC(op->ao);
    yajl_val discard = libxl__json_get(rr->j, "discard");
    const char **files;
    size_t i, n = 0;

    GCNEW_ARRAY(files, discard && YAJL_IS_ARRAY(discard)
                       ? discard->u.array.len + 1 : 1);
    for (i = 0; discard && YAJL_IS_ARRAY(discard) &&
                i < discard->u.array.len; i++) {
        const char *f = YAJL_GET_STRING(discard->u.array.values[i]);
        if (f) files[n++] = f;
    }
    rr->ru.ao = ao;
    rr->ru.op = op;
    rr->ru.from = files;
    rr->ru.num_from = n;
    rr->ru.also = files;
    rr->ru.num_also = n;
    rr->ru.unabortable = true;
    rr->ru.callback = recover_discarded;
    libxl__snapshot_remove_unused(egc, &rr->ru);
}

static void recover_discarded(libxl__egc *egc,
                              libxl__remove_unused_state *ru, int rc)
{
    revert_recover_state *rr = CONTAINER_OF(ru, revert_recover_state, ru);
    libxl__snapshot_op *op = rr->op;
    STATE_AO_GC(op->ao);

    /* the domain started as the revert meant to (journal "start"...) */
    if (!libxl__json_get_bool(rr->j, "start", false) || op->d.running) {
        recover_started(egc, &rr->da, 0);
        return;
    }
    if (!op->cfg.file) {
        LOG(ERROR, "domain %s: no config to start it from", op->d.name);
        recover_started(egc, &rr->da, ERROR_FAIL);
        return;
    }
    rr->da.ao = ao;
    rr->da.cfg = &op->cfg;
    rr->da.rec = &op->tree.dom;
    rr->da.paused = libxl__json_get_bool(rr->j, "paused", false);
    rr->da.restore = libxl__json_get_string(rr->j, "restore");
    rr->da.callback = recover_started;
    libxl__domain_start_async(egc, &rr->da);
}

static void recover_started(libxl__egc *egc, libxl__domain_async *da,
                            int rc)
{
    revert_recover_state *rr = CONTAINER_OF(da, revert_recover_state, da);
    libxl__snapshot_op *op = rr->op;
    STATE_AO_GC(op->ao);

    LOG(WARN, "domain %s: an interrupted snapshot-revert to '%s' was "
        "completed%s", op->d.name, rr->name,
        rc == ERROR_ABORTED ? ", but its start was aborted: the next "
        "command on the domain starts it"
        : rc ? ", but the domain could not be started" : "");
    rr->callback(egc, op, rc);
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
