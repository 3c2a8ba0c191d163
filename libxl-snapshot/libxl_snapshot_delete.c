/*
 * libxl_snapshot_delete.c - deleting snapshots anywhere in the tree
 *
 * A snapshot's data must go without taking anybody else's with it.
 *
 * LVM disk snapshots: lvremove of the snapshot volume.
 *
 * Internal disk snapshots are removed from their image: over QMP
 * (blockdev-snapshot-delete-internal-sync) while the domain runs and
 * the image is its active one, with `qemu-img snapshot -d` otherwise:
 * the domain shut off, or running on other images that QEMU does not
 * have open (query-named-block-nodes).  An image QEMU has open below
 * the active one (a backing image) is refused, nothing changed: QEMU
 * deletes internal snapshots in top images only.
 * The tag is found by name first and removed by ID (qemu-img allows
 * duplicate names); a tag already gone is a warning, not an error.
 *
 * External disk snapshots froze an image F.  Other images may be built
 * on F: the image that became active then, later snapshots' images,
 * other branches after a revert.  The images we know (the disk's
 * active chain and every snapshot's image with its chain) are probed,
 * and the choice follows the topology:
 *
 *  - nothing is built on F: F is removed;
 *  - one image C is built on F: C is committed into F (live, as a
 *    block commit when C is in the running chain, pivoting when C is
 *    the active image; offline, qemu-img commit).  F then holds exactly
 *    what C held: records and the active image move from C to F, the
 *    images built on C are rebased onto F, and C is removed.  Committing
 *    one image is the cheaper way and keeps F, which may be the disk's
 *    own image from the domain config;
 *  - several images are built on F (branches): F's data is streamed
 *    into each of them (block stream live, qemu-img rebase offline), so
 *    every branch stays correct on its own, then F is removed; but if
 *    F is the disk's own image from the domain config, it stays where
 *    it is and only the record goes (copying it would gain nothing);
 *  - but when C holds internal snapshots of other records, C cannot be
 *    removed: F is streamed into C instead.
 * A VHD chain is only merged child into parent (vhd-util coalesce): a
 * VHD F, not the config's, with branches is refused for every disk
 * before any disk is touched.
 * Files named by the domain config, the images the domain's disks run
 * on, and base images (no backing file: a disk's own image, which for
 * a disk attached by hand is in no config) are never removed.
 * A disk of the snapshot that the domain no longer has (detached, or
 * taken out of its config) ran last on the image the domain record
 * names: that image is probed as the disk's active one (offline, since
 * no QEMU runs it), so what it holds is merged, not lost.
 *
 * Order and failure: disks one after the other; the record goes last.
 * If a disk fails, the record keeps the disks not yet done (the done
 * ones are marked "no") and says so, so it never claims what is gone.
 *
 * A memory image is removed once its record is gone (not with
 * --metadata, which drops the record alone).
 *
 * Nothing another record owns goes: before anything changes, each
 * snapshot to delete is put to libxl__snapshot_claim (the one ownership
 * function); if another record claims one of its files, tags, memory
 * image or volumes, the delete is refused.
 *
 * Crash safety: a journal names the snapshot being deleted, and each
 * disk is marked done in the record before its file goes, so the
 * records stay true at every step; the next command cancels a QEMU job
 * the dead process left, and tells the user to run the delete again to
 * finish it; `xl snapshot-recover` finishes it (libxl_snapshot_journal.c).
 *
 * --children deletes the descendants first, leaves before parents;
 * --children-only only them.
 *
 * Steps: libxlsnap_domain_snapshot_delete -> libxl__snapshot_delete_start ->
 *   snapshot_delete_begun ->
 *   [per snapshot: snapshot_delete_one -> snapshot_delete_probed ->
 *    per disk: snapshot_delete_disk -> (tag: qmp_connected -> nodes
 *    -> tag_done | exec tag_done) (external: job_next <-> job_done ->
 *    rebase_next <-> rebase_done -> disk_external_done) ->
 *    snapshot_delete_record] -> snapshot_delete_done
 * A merge stopped part-way (job_done -> merge_stopped): an offline
 * one's leaked clusters freed by a qemu-img step that an abort does
 * not stop (leaks_freed), then the records settled (merge_settle).
 * A disk that leaves an image nothing needs any more (disk_done ->
 * unused_done): libxl__snapshot_remove_unused, as steps (a qemu-img
 * run per image of the records, then a child removing them); an abort
 * while it reads the chains stops the delete with the journal kept,
 * which names the image: the next command removes it.
 */
#include "libxl_snapshot_internal.h"

#include <unistd.h>

typedef enum {
    ACT_NONE,
    ACT_TAG,            /* internal: remove the qcow2 snapshot */
    ACT_EXEC,           /* the backend's ->delete_args (lvremove) */
    ACT_REMOVE,         /* nothing on F: remove it */
    ACT_COMMIT,         /* one child C: commit C into F */
    ACT_STREAM,         /* F into each child */
} disk_action;

typedef struct {
    disk_action act;
    const char *tag_id;
    const char *child;              /* ACT_COMMIT: C */
    libxl_disk_format child_format;
    const char **targets;           /* ACT_STREAM: children of F;
                                       ACT_COMMIT: children of C */
    int num_targets;
    const char *parent;             /* F's backing (stream base) */
    uint64_t size;                  /* the disk's virtual size (jobs'
                                       progress) */
    libxl_disk_format parent_format;
    bool keep_child;                /* ACT_COMMIT: C still backs an image
                                       that could not be rebased */
    bool done;
} disk_plan;

typedef struct libxl__snapshot_delete_state {
    libxl__ao *ao;
    libxl__snapshot_op op;
    unsigned flags;
    const char **names;             /* in order of deletion */
    int num_names, cur;
    bool journaled;
    bool keep_journal;              /* the records on disk may be behind
                                       (a failed save, a job QEMU may
                                       still run): the next command
                                       completes them from the journal */
    libxlsnap_domain_snapshot *snap;
    disk_plan *plans;
    int disk, target;
    libxl__qemu_img_info_state qi;  /* tags, then chains */
    const char *active;             /* active image of the disk */
    libxl_disk_format active_format;
    bool detached;                  /* active: the disk the running
                                       domain no longer has ran it last */
    char **running;                 /* live: the running chain */
    int num_running;
    libxl__qmp qmp;
    libxl__exec_state es;
    libxl__blockjob bj;
    int stopped_rc;                 /* why a merge stopped (settling it) */
    yajl_val commit;                /* journal: the running commit */
    libxlsnap_progress_how progress;   /* its jobs' (a copy) */
    libxl__remove_unused_state ru;  /* what a disk left unused */
    libxl__snapshot_delete_cb *callback;  /* NULL: the ao completes */
    void *for_callback;
} libxl__snapshot_delete_state;

static bool config_image(const libxl__snapshot_op *op, const char *path);
static void snapshot_delete_begun(libxl__egc *egc, libxl__snapshot_op *op,
                                  int rc);
static void snapshot_delete_one(libxl__egc *egc,
                                libxl__snapshot_delete_state *dls);
static void snapshot_delete_probed(libxl__egc *egc,
                                   libxl__qemu_img_info_state *qi, int rc);
static void snapshot_delete_disk(libxl__egc *egc,
                                 libxl__snapshot_delete_state *dls);
static void snapshot_delete_qmp_connected(libxl__egc *egc, libxl__qmp *qmp,
                                          yajl_val ret, int rc);
static void snapshot_delete_nodes(libxl__egc *egc, libxl__qmp *qmp,
                                  yajl_val nodes, int rc);
static void snapshot_delete_qmp_done(libxl__egc *egc, libxl__qmp *qmp,
                                     yajl_val ret, int rc);
static void snapshot_delete_exec_done(libxl__egc *egc,
                                      libxl__exec_state *es, int rc,
                                      int status);
static void snapshot_delete_chains(libxl__egc *egc,
                                   libxl__qemu_img_info_state *qi, int rc);
static void snapshot_delete_job_next(libxl__egc *egc,
                                     libxl__snapshot_delete_state *dls);
static void snapshot_delete_job_done(libxl__egc *egc, libxl__blockjob *bj,
                                     int rc);
static void snapshot_delete_leaks_freed(libxl__egc *egc,
                                        libxl__exec_state *es, int rc,
                                        int status);
static void snapshot_delete_merge_settle(libxl__egc *egc,
                                         libxl__snapshot_delete_state *dls);
static void snapshot_delete_merge_stopped(libxl__egc *egc,
                                          libxl__snapshot_delete_state *dls,
                                          int rc);
static void snapshot_delete_rebase_next(libxl__egc *egc,
                                        libxl__snapshot_delete_state *dls);
static void snapshot_delete_rebase_done(libxl__egc *egc,
                                        libxl__exec_state *es, int rc,
                                        int status);
static void snapshot_delete_disk_done(libxl__egc *egc,
                                      libxl__snapshot_delete_state *dls,
                                      int rc);
static void snapshot_delete_unused_done(libxl__egc *egc,
                                        libxl__remove_unused_state *ru,
                                        int rc);
static void snapshot_delete_record(libxl__egc *egc,
                                   libxl__snapshot_delete_state *dls);
static void snapshot_delete_done(libxl__egc *egc,
                                 libxl__snapshot_delete_state *dls, int rc);

void libxl__snapshot_delete_start(libxl__egc *egc, libxl__ao *ao,
                                  const char *domain, const char *name,
                                  unsigned flags,
                                  const libxlsnap_progress_how *progress,
                                  libxl__snapshot_delete_cb *callback,
                                  void *for_callback)
{
    AO_GC;
    libxl__snapshot_delete_state *dls;

    GCNEW(dls);
    dls->ao = ao;
    dls->flags = flags;
    if (progress) dls->progress = *progress;
    dls->callback = callback;
    dls->for_callback = for_callback;
    GCNEW_ARRAY(dls->names, 1);
    dls->names[0] = GCSTRDUP(name);
    dls->num_names = 1;
    libxl__qmp_init(&dls->qmp);
    libxl__exec_init(&dls->es);
    libxl__blockjob_init(&dls->bj);
    dls->op.ao = ao;
    dls->op.domain = GCSTRDUP(domain);
    dls->op.callback = snapshot_delete_begun;
    dls->op.finishes_delete = true;   /* if it is one of ours: said then */
    libxl__snapshot_op_begin(egc, &dls->op);
}

int libxlsnap_domain_snapshot_delete(libxlsnap_ctx *ctx,
                                 const char *domain, const char *name,
                                 unsigned flags,
                                 const libxlsnap_progress_how *progress,
                                 const libxl_asyncop_how *ao_how)
{
    if (ARGS_MISSING(ctx, domain, name) ||
        FLAGS_UNKNOWN(ctx, flags, LIBXLSNAP_DELETE_METADATA_ONLY |
                      LIBXLSNAP_DELETE_CHILDREN |
                      LIBXLSNAP_DELETE_CHILDREN_ONLY))
        return ERROR_INVAL;
    AO_CREATE(ctx, ao_how);
    EGC_INIT(ctx);

    if ((flags & LIBXLSNAP_DELETE_CHILDREN) &&
        (flags & LIBXLSNAP_DELETE_CHILDREN_ONLY)) {
        LOG(ERROR, "LIBXLSNAP_DELETE_CHILDREN and _CHILDREN_ONLY "
            "exclude each other");
        EGC_FREE;
        return AO_CREATE_FAIL(ERROR_INVAL);
    }
    libxl__snapshot_delete_start(egc, ao, domain, name, flags, progress,
                                 NULL, NULL);
    EGC_FREE;
    return AO_INPROGRESS;
}

/* Appends the descendants of s, leaves first (post-order). */
static void add_descendants(libxl__gc *gc, libxl__snapshot_delete_state *dls,
                            const libxlsnap_domain_snapshot *s)
{
    int i;
    for (i = 0; i < s->num_children; i++) {
        libxlsnap_domain_snapshot *c =
            libxl__snapshot_tree_find(&dls->op.tree, s->children[i]);
        if (!c) continue;
        add_descendants(gc, dls, c);
        GCREALLOC_ARRAY(dls->names, dls->num_names + 1);
        dls->names[dls->num_names++] = GCSTRDUP(c->name);
    }
}

/*
 * The journal: the snapshot, the commit under way (its top, base and
 * the other images built on top, for recovery to finish it if QEMU
 * does), the file about to go, the image the disk may leave unused
 * (recovery removes it, and what is below it, if nothing needs them),
 * and the snapshots this command was to delete after it (for recovery
 * to say they are kept).
 */
static int write_journal(libxl__gc *gc, libxl__snapshot_delete_state *dls,
                         const char *remove, const char *unused)
{
    yajl_val j = NULL, then;
    const char *text;
    int k;

    libxl__json_add_string(gc, &j, "op", "delete");
    libxl__json_add_string(gc, &j, "snapshot", dls->snap->name);
    if (dls->commit) libxl__json_add(gc, &j, "commit", dls->commit);
    if (remove) libxl__json_add_string(gc, &j, "remove", remove);
    if (unused) libxl__json_add_string(gc, &j, "unused", unused);
    then = libxl__json_add_array(gc, &j, "then");
    for (k = dls->cur + 1; k < dls->num_names; k++)
        libxl__json_append_string(gc, then, dls->names[k]);
    text = libxl__json_to_string(gc, j);
    if (!text) return ERROR_FAIL;
    return libxl__journal_write_text(gc, &dls->op.st, text, strlen(text),
                                     false);
}

static void snapshot_delete_begun(libxl__egc *egc, libxl__snapshot_op *op,
                                  int rc)
{
    libxl__snapshot_delete_state *dls =
        CONTAINER_OF(op, libxl__snapshot_delete_state, op);
    STATE_AO_GC(dls->ao);
    libxlsnap_domain_snapshot *s;
    const char *name = dls->names[0];
    int i;

    if (rc) goto out;
    rc = libxl__blockjob_check_idle(gc, &op->st, &op->d);
    if (rc) goto out;
    s = libxl__snapshot_tree_find(&op->tree, name);
    if (!s) {
        LOG(ERROR, "domain %s has no snapshot named '%s'", op->d.name,
            libxl__printable(gc, name));
        rc = ERROR_NOTFOUND;
        goto out;
    }
    if (dls->flags & (LIBXLSNAP_DELETE_CHILDREN |
                      LIBXLSNAP_DELETE_CHILDREN_ONLY)) {
        dls->num_names = 0;
        add_descendants(gc, dls, s);
        if (dls->flags & LIBXLSNAP_DELETE_CHILDREN) {
            GCREALLOC_ARRAY(dls->names, dls->num_names + 1);
            dls->names[dls->num_names++] = GCSTRDUP(name);
        }
    }
    /* a delete recovery left part-done: finished here if it is one of
     * ours (nothing to say: it goes), else said now */
    for (i = 0; op->unfinished_delete && i < dls->num_names; i++)
        if (!strcmp(dls->names[i], op->unfinished_delete)) break;
    if (op->unfinished_delete && i == dls->num_names) {
        libxl__journal_say_unfinished(gc, op);
        op->unfinished_delete = NULL;
    }
    /* nothing another record still owns is removed or merged: refused
     * before anything changes (--metadata touches no file) */
    for (i = 0; !(dls->flags & LIBXLSNAP_DELETE_METADATA_ONLY) &&
                i < dls->num_names; i++) {
        libxl__snapshot_clash *c;
        if (!libxl__snapshot_ownership(gc, &op->tree,
                libxl__snapshot_tree_find(&op->tree, dls->names[i]), &c))
            continue;
        LOG(ERROR, "snapshot %s: its %s is also snapshot %s's: deleting it "
            "would destroy %s's data (a metadata-only delete drops the "
            "record alone)",
            c[0].name, c[0].what, c[0].owner, c[0].owner);
        rc = ERROR_INVAL;
        goto out;
    }
    dls->cur = 0;
    snapshot_delete_one(egc, dls);
    return;
 out:
    snapshot_delete_done(egc, dls, rc);
}

/* ---------------------------------------------------------------- */
/* one snapshot: probe */

static bool in_strs(char **l, int n, const char *s)
{
    int i;
    for (i = 0; s && i < n; i++)
        if (!strcmp(l[i], s)) return true;
    return false;
}

static void snapshot_delete_one(libxl__egc *egc,
                                libxl__snapshot_delete_state *dls)
{
    STATE_AO_GC(dls->ao);
    int i;

    if (dls->cur == dls->num_names) {
        snapshot_delete_done(egc, dls, 0);
        return;
    }
    dls->snap = libxl__snapshot_tree_find(&dls->op.tree,
                                          dls->names[dls->cur]);
    if (!dls->snap) {        /* gone with an earlier one: fine */
        dls->cur++;
        snapshot_delete_one(egc, dls);
        return;
    }
    if (dls->flags & LIBXLSNAP_DELETE_METADATA_ONLY) {
        snapshot_delete_record(egc, dls);
        return;
    }
    /* the intent first: a crash from here on is recovered */
    if (write_journal(gc, dls, NULL, NULL)) {
        snapshot_delete_done(egc, dls, ERROR_FAIL);
        return;
    }
    dls->journaled = true;
    libxl__fault_point("delete");
    GCNEW_ARRAY(dls->plans, dls->snap->num_disks);
    memset(&dls->qi, 0, sizeof(dls->qi));
    GCNEW_ARRAY(dls->qi.images, dls->snap->num_disks);
    for (i = 0; i < dls->snap->num_disks; i++) {
        const libxl__snapshot_backend *be =
            libxl__snapshot_backend_of(&dls->snap->disks[i]);
        if (be && be->image_info)
            dls->qi.images[i] = dls->snap->disks[i].file;
    }
    dls->qi.num_images = dls->snap->num_disks;
    dls->qi.ao = ao;
    dls->qi.callback = snapshot_delete_probed;
    libxl__qemu_img_info(egc, &dls->qi);
}

/*
 * The images we know on a disk: active (first, when there is one), and
 * every snapshot's on that disk that exists.
 */
/*
 * The image a disk of the snapshot runs on: the domain's.  A disk the
 * domain no longer has (detached from the running domain, or taken out
 * of its config) ran last on the image the domain record names: what
 * is built on the frozen image is learnt from it as well, so that its
 * data is merged, not lost, and the frozen image (which may be the
 * disk's own, attached by hand) is kept (*detached_r: not running).
 */
static const char *active_image(libxl__snapshot_delete_state *dls,
                                const char *vdev,
                                libxl_disk_format *format_r,
                                bool *detached_r)
{
    libxl_device_disk *dk = libxl__domain_disk(&dls->op.d, vdev);
    libxl__active_disk *ad;

    *detached_r = false;
    *format_r = dk ? dk->format : LIBXL_DISK_FORMAT_QCOW2;
    if (dk) return dk->pdev_path;
    ad = libxl__domain_record_disk(&dls->op.tree.dom, vdev);
    if (!ad || !ad->path || !libxl__file_exists(ad->path)) return NULL;
    *detached_r = true;
    *format_r = ad->format;
    return ad->path;
}

static int known_images(libxl__gc *gc, libxl__snapshot_delete_state *dls,
                        const char *vdev, const char *active,
                        const char ***images_r)
{
    libxl__snapshot_tree *t = &dls->op.tree;
    const char **l;
    int i, j, n = 0;

    GCNEW_ARRAY(l, 2 * t->num_snaps + 1);
    if (active) l[n++] = active;
    for (i = 0; i < t->num_snaps; i++)
        for (j = 0; j < t->snaps[i].num_disks; j++) {
            const libxlsnap_disk_snapshot *o = &t->snaps[i].disks[j];
            if (strcmp(o->vdev, vdev) ||
                o->type == LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO)
                continue;
            if (o->file && libxl__file_exists(o->file)) l[n++] = o->file;
            /* the overlay it made: a disk detached since may still run
             * on it, or have left it (no active image names it) */
            if (o->overlay && libxl__file_exists(o->overlay))
                l[n++] = o->overlay;
        }
    *images_r = l;
    return n;
}

/*
 * A chain merged only one child into its parent (->one_level: a VHD
 * chain, vhd-util coalesce) is never streamed: an external snapshot
 * whose image, not the config's, has several children (branches, after
 * a revert) cannot be deleted.  Checked for every disk before any is
 * touched.
 */
static int branches_refused(libxl__gc *gc,
                            libxl__snapshot_delete_state *dls,
                            const libxlsnap_disk_snapshot *ds)
{
    const libxl__snapshot_backend *be = libxl__snapshot_backend_of(ds);
    const char **l, **kids;
    libxl_disk_format fmt;
    bool detached;
    int n, i, k, nk = 0;

    if (!be || !be->one_level || !ds->file ||
        config_image(&dls->op, ds->file))
        return 0;
    n = known_images(gc, dls, ds->vdev,
                     active_image(dls, ds->vdev, &fmt, &detached), &l);
    GCNEW_ARRAY(kids, n + 1);
    for (i = 0; i < n; i++) {
        const char *p = be->parent(gc, l[i]);
        if (!p || strcmp(p, ds->file)) continue;
        for (k = 0; k < nk; k++)
            if (!strcmp(kids[k], l[i])) break;
        if (k == nk) kids[nk++] = l[i];
    }
    if (nk < 2) return 0;
    LOG(ERROR, "disk %s: snapshot '%s' cannot be deleted: %d VHDs are built "
        "on its VHD '%s' ('%s' and '%s'), and a VHD is not streamed into "
        "branches; nothing was changed", ds->vdev, dls->snap->name, nk,
        ds->file, kids[0], kids[1]);
    return ERROR_INVAL;
}

/*
 * The vdev of a disk of the domain (one it runs, or its config's) whose
 * image is path, other than except (NULL: any); NULL if none.
 */
static const char *disk_naming(const libxl__snapshot_delete_state *dls,
                               const char *path, const char *except)
{
    const libxl__snapshot_op *op = &dls->op;
    const libxl_device_disk *l[2] = { op->d.disks, op->cfg.disks };
    int n[2] = { op->d.num_disks, op->cfg.num_disks };
    int k, i;

    for (k = 0; k < 2; k++)
        for (i = 0; i < n[k]; i++)
            if (l[k][i].pdev_path && l[k][i].vdev &&
                !strcmp(l[k][i].pdev_path, path) &&
                (!except || strcmp(l[k][i].vdev, except)))
                return l[k][i].vdev;
    return NULL;
}

/*
 * The image an external snapshot froze is what its later data is
 * merged into.  When another disk of the domain now has that image
 * (the disk taken out of the config, its image given to another
 * vdev), the merge would write into that disk: refused, before any
 * disk is touched.
 */
static int shared_refused(libxl__gc *gc, libxl__snapshot_delete_state *dls,
                          const libxlsnap_disk_snapshot *ds)
{
    const libxl__snapshot_backend *be = libxl__snapshot_backend_of(ds);
    const char *other;

    if (!be || !be->chained || !ds->file) return 0;
    other = disk_naming(dls, ds->file, ds->vdev);
    if (!other) return 0;
    LOG(ERROR, "disk %s: snapshot '%s' froze '%s', which is now disk %s's "
        "image: merging into it would change disk %s; nothing was changed "
        "(--metadata drops the record alone)", ds->vdev, dls->snap->name,
        ds->file, other, other);
    return ERROR_INVAL;
}

static void snapshot_delete_probed(libxl__egc *egc,
                                   libxl__qemu_img_info_state *qi, int rc)
{
    libxl__snapshot_delete_state *dls =
        CONTAINER_OF(qi, libxl__snapshot_delete_state, qi);
    STATE_AO_GC(dls->ao);
    int i, n;

    if (rc) goto out;
    for (i = 0; i < dls->snap->num_disks; i++) {
        rc = branches_refused(gc, dls, &dls->snap->disks[i]);
        if (!rc) rc = shared_refused(gc, dls, &dls->snap->disks[i]);
        if (rc) goto out;
    }
    for (i = 0; i < dls->snap->num_disks; i++) {
        const libxlsnap_disk_snapshot *ds = &dls->snap->disks[i];
        const libxl__snapshot_backend *be = libxl__snapshot_backend_of(ds);
        disk_plan *pl = &dls->plans[i];
        if (!be) continue;
        if (!be->delete_probe) {
            pl->act = ACT_REMOVE;     /* refined once chains are known */
            continue;
        }
        n = be->delete_probe(gc, &dls->op, dls->snap->name, ds,
                             qi->infos[i], &pl->tag_id);
        if (n < 0) {
            rc = n;
            goto out;
        }
        pl->act = !n ? ACT_NONE : be->delete_args ? ACT_EXEC : ACT_TAG;
    }
    dls->disk = 0;
    snapshot_delete_disk(egc, dls);
    return;
 out:
    snapshot_delete_done(egc, dls, rc);
}

/* ---------------------------------------------------------------- */
/* one disk */

static libxlsnap_disk_snapshot *cur_ds(libxl__snapshot_delete_state *dls)
{
    return &dls->snap->disks[dls->disk];
}

static bool is_running_image(libxl__snapshot_delete_state *dls,
                             const char *f)
{
    return dls->op.d.running && in_strs(dls->running, dls->num_running, f);
}

static void snapshot_delete_disk(libxl__egc *egc,
                                 libxl__snapshot_delete_state *dls)
{
    STATE_AO_GC(dls->ao);
    libxl__snapshot_op *op = &dls->op;
    libxlsnap_disk_snapshot *ds;
    disk_plan *pl;
    int rc;

    dls->commit = NULL;
    if (dls->disk == dls->snap->num_disks) {
        snapshot_delete_record(egc, dls);
        return;
    }
    ds = cur_ds(dls);
    pl = &dls->plans[dls->disk];
    dls->active = active_image(dls, ds->vdev, &dls->active_format,
                               &dls->detached);


    switch (pl->act) {
    case ACT_NONE:
        snapshot_delete_disk_done(egc, dls, 0);
        return;
    case ACT_TAG:
        if (op->d.running && !dls->detached && dls->active &&
            !strcmp(dls->active, ds->file)) {
            dls->qmp.ao = ao;
            dls->qmp.path = op->d.qmp_path;
            dls->qmp.domid = op->d.domid;
            dls->qmp.quiet = true;
            rc = libxl__qmp_connect(egc, &dls->qmp,
                                    snapshot_delete_qmp_connected);
            if (rc) goto out;
            return;
        }
        libxl__exec_init(&dls->es);
        dls->es.ao = ao;
        dls->es.what = GCSPRINTF("delete of %s", ds->vdev);
        /* -d finds by name only (unlike -a); the probe made sure the
         * name is unique */
        dls->es.args = libxl__qemu_img_snapshot_args(gc, 'd', ds->tag,
                                                     ds->file);
        dls->es.timeout_ms = 300000;
        dls->es.callback = snapshot_delete_exec_done;
        rc = libxl__exec_start(egc, &dls->es);
        if (rc) goto out;
        return;
    case ACT_EXEC: {
        const libxl__snapshot_backend *be = libxl__snapshot_backend_of(ds);
        const char *const *a = be->delete_args(gc, ds);
        if (!a) {
            rc = ERROR_INVAL;
            goto out;
        }
        libxl__exec_init(&dls->es);
        dls->es.ao = ao;
        dls->es.what = GCSPRINTF("delete of %s", ds->vdev);
        dls->es.args = a;
        dls->es.timeout_ms = 120000;
        dls->es.callback = snapshot_delete_exec_done;
        rc = libxl__exec_start(egc, &dls->es);
        if (rc) goto out;
        return;
    }
    default:
        break;
    }

    /* external: learn what is built on the frozen image */
    memset(&dls->qi, 0, sizeof(dls->qi));
    dls->qi.num_images = known_images(gc, dls, ds->vdev, dls->active,
                                      &dls->qi.images);
    dls->qi.backing_chain = true;
    dls->qi.ao = ao;
    dls->qi.callback = snapshot_delete_chains;
    libxl__qemu_img_info(egc, &dls->qi);
    return;
 out:
    snapshot_delete_disk_done(egc, dls, rc);
}

/* internal, live */

static void snapshot_delete_qmp_connected(libxl__egc *egc, libxl__qmp *qmp,
                                          yajl_val ret, int rc)
{
    libxl__snapshot_delete_state *dls =
        CONTAINER_OF(qmp, libxl__snapshot_delete_state, qmp);

    if (!rc) rc = libxl__qmp_send(egc, qmp, "query-named-block-nodes",
                                  libxl__qmp_args_flat(&dls->ao->gc), -1,
                                  snapshot_delete_nodes);
    if (rc) snapshot_delete_disk_done(egc, dls, rc);
}

static void snapshot_delete_nodes(libxl__egc *egc, libxl__qmp *qmp,
                                  yajl_val nodes, int rc)
{
    libxl__snapshot_delete_state *dls =
        CONTAINER_OF(qmp, libxl__snapshot_delete_state, qmp);
    STATE_AO_GC(dls->ao);
    libxlsnap_disk_snapshot *ds = cur_ds(dls);
    const char *node;
    yajl_val args = NULL;

    if (rc) {
        LOG(ERROR, "disk %s: QEMU does not list its block nodes: %s",
            ds->vdev, qmp->error_desc ? qmp->error_desc : "QMP failed");
        goto out;
    }
    node = nodes && YAJL_IS_ARRAY(nodes)
        ? libxl__qmp_node_for_file(gc, nodes, ds->file, ds->format) : NULL;
    if (!node) {
        LOG(ERROR, "disk %s: QEMU has no node for '%s'", ds->vdev,
            ds->file);
        rc = ERROR_FAIL;
        goto out;
    }
    libxl__json_add_string(gc, &args, "device", node);
    libxl__json_add_string(gc, &args, "id", dls->plans[dls->disk].tag_id);
    libxl__json_add_string(gc, &args, "name", ds->tag);
    rc = libxl__qmp_send(egc, qmp, "blockdev-snapshot-delete-internal-sync",
                         args, -1, snapshot_delete_qmp_done);
    if (rc) goto out;
    return;
 out:
    snapshot_delete_disk_done(egc, dls, rc);
}

static void snapshot_delete_qmp_done(libxl__egc *egc, libxl__qmp *qmp,
                                     yajl_val ret, int rc)
{
    libxl__snapshot_delete_state *dls =
        CONTAINER_OF(qmp, libxl__snapshot_delete_state, qmp);
    STATE_AO_GC(dls->ao);
    libxlsnap_disk_snapshot *ds = cur_ds(dls);

    if (rc)
        LOG(ERROR, "disk %s: cannot delete snapshot '%s': %s", ds->vdev,
            ds->tag, qmp->error_desc ? qmp->error_desc : "QMP failed");
    libxl__qmp_close(gc, qmp);
    snapshot_delete_disk_done(egc, dls, rc);
}

/* internal, offline */

static void snapshot_delete_exec_done(libxl__egc *egc,
                                      libxl__exec_state *es, int rc,
                                      int status)
{
    libxl__snapshot_delete_state *dls =
        CONTAINER_OF(es, libxl__snapshot_delete_state, es);
    STATE_AO_GC(dls->ao);
    const libxlsnap_disk_snapshot *ds = cur_ds(dls);
    const libxl__snapshot_backend *be = libxl__snapshot_backend_of(ds);

    /* removed meanwhile by someone else: what the delete wanted */
    if (rc == ERROR_FAIL && be && be->present &&
        be->present(gc, ds) == ERROR_NOTFOUND) {
        LOG(WARN, "disk %s: its snapshot was gone already", ds->vdev);
        rc = 0;
    }
    snapshot_delete_disk_done(egc, dls, rc);
}

/* ---------------------------------------------------------------- */
/* external: plan from the image graph */

/* Every (image, backing) pair of every probed chain, deduplicated. */
typedef struct {
    const char *file, *backing;
    libxl_disk_format fmt;
    uint64_t size;                  /* virtual size */
} edge;

static int collect_edges(libxl__gc *gc, libxl__qemu_img_info_state *qi,
                         edge **edges_r)
{
    edge *e = NULL;
    int n = 0, i, k;
    size_t j;

    for (i = 0; i < qi->num_images; i++) {
        yajl_val chain = qi->infos[i];
        if (!chain || !YAJL_IS_ARRAY(chain)) continue;
        for (j = 0; j < chain->u.array.len; j++) {
            yajl_val img = chain->u.array.values[j];
            const char *f = libxl__json_get_string(img, "filename");
            if (!f) continue;
            for (k = 0; k < n; k++)
                if (!strcmp(e[k].file, f)) break;
            if (k < n) continue;
            GCREALLOC_ARRAY(e, n + 1);
            e[n].file = f;
            e[n].backing = libxl__json_get_string(img,
                                                  "full-backing-filename");
            e[n].size = libxl__json_get_integer(img, "virtual-size", 0);
            e[n].fmt = LIBXL_DISK_FORMAT_RAW;
            libxl__disk_format_from_qemu(libxl__json_get_string(img,
                                                                "format"),
                                         &e[n].fmt);
            n++;
        }
    }
    *edges_r = e;
    return n;
}

/* Images whose backing is f. */
static int children_of(libxl__gc *gc, edge *e, int n, const char *f,
                       const char ***kids_r)
{
    const char **k;
    int i, c = 0;

    GCNEW_ARRAY(k, n + 1);
    for (i = 0; i < n; i++)
        if (e[i].backing && !strcmp(e[i].backing, f)) k[c++] = e[i].file;
    *kids_r = k;
    return c;
}

/* Does another record keep an internal snapshot in f? */
static bool holds_internal(libxl__snapshot_delete_state *dls, const char *f)
{
    int i, j;
    for (i = 0; i < dls->op.tree.num_snaps; i++) {
        const libxlsnap_domain_snapshot *s = &dls->op.tree.snaps[i];
        if (s == dls->snap) continue;
        for (j = 0; j < s->num_disks; j++) {
            const libxl__snapshot_backend *be =
                libxl__snapshot_backend_of(&s->disks[j]);
            if (be && be->in_image &&
                s->disks[j].file && !strcmp(s->disks[j].file, f))
                return true;
        }
    }
    return false;
}

/*
 * Is path an image of the domain: of its config, or one its disks run
 * on now (a disk attached by hand is in no config)?  Never removed.
 */
static bool domain_image(const libxl__snapshot_delete_state *dls,
                         const char *path)
{
    return disk_naming(dls, path, NULL) != NULL;
}

/* Is path an image of the domain's config (its disks' pdev_path)? */
static bool config_image(const libxl__snapshot_op *op, const char *path)
{
    int i;
    for (i = 0; i < op->cfg.num_disks; i++)
        if (op->cfg.disks[i].pdev_path &&
            !strcmp(op->cfg.disks[i].pdev_path, path))
            return true;
    return false;
}

static void snapshot_delete_chains(libxl__egc *egc,
                                   libxl__qemu_img_info_state *qi, int rc)
{
    libxl__snapshot_delete_state *dls =
        CONTAINER_OF(qi, libxl__snapshot_delete_state, qi);
    STATE_AO_GC(dls->ao);
    libxlsnap_disk_snapshot *ds = cur_ds(dls);
    disk_plan *pl = &dls->plans[dls->disk];
    const char *F = ds->file;
    edge *e;
    int n, i, nk;
    const char **kids, *kid_internal;

    if (rc) goto out;
    n = collect_edges(gc, qi, &e);
    /* the running chain: the active image's, probed first */
    dls->num_running = 0;
    if (dls->active && !dls->detached && qi->infos[0] &&
        YAJL_IS_ARRAY(qi->infos[0])) {
        yajl_val c = qi->infos[0];
        size_t j;
        GCNEW_ARRAY(dls->running, c->u.array.len);
        for (j = 0; j < c->u.array.len; j++) {
            const char *f = libxl__json_get_string(c->u.array.values[j],
                                                   "filename");
            if (f) dls->running[dls->num_running++] = GCSTRDUP(f);
        }
    }
    for (i = 0; i < n; i++)
        if (!strcmp(e[i].file, F)) {
            pl->parent = e[i].backing;
            pl->size = e[i].size;
            break;
        }
    for (i = 0; pl->parent && i < n; i++)
        if (!strcmp(e[i].file, pl->parent)) pl->parent_format = e[i].fmt;

    nk = children_of(gc, e, n, F, &kids);
    for (i = 0, kid_internal = NULL; !kid_internal && i < nk; i++)
        if (holds_internal(dls, kids[i])) kid_internal = kids[i];
    if (nk == 0) {
        pl->act = ACT_REMOVE;
    } else if (nk == 1 && !kid_internal) {
        pl->act = ACT_COMMIT;
        pl->child = kids[0];
        for (i = 0; i < n; i++)
            if (!strcmp(e[i].file, kids[0])) pl->child_format = e[i].fmt;
        pl->num_targets = children_of(gc, e, n, kids[0], &pl->targets);
    } else if (config_image(&dls->op, F) || !pl->parent || kid_internal ||
               holds_internal(dls, F)) {
        /*
         * F stays, and only the record goes: the disk's own image (of
         * the config, or a base image: one attached by hand is in no
         * config), with branches on it, stays anyway (copying it into
         * every branch would gain nothing); an image built on F holds internal
         * snapshots of other records, whose states read F's data
         * through it (a stream or a rebase changes only an image's
         * current state, never its internal snapshots': they would read
         * F's backing instead); F holds internal snapshots itself.
         * Once nothing needs F any more, a later delete removes it.
         */
        if (!config_image(&dls->op, F) && pl->parent)
            LOG(DEBUG, "disk %s: '%s' stays: %s", ds->vdev, F,
                kid_internal ? GCSPRINTF("internal snapshots in '%s' read "
                                         "through it", kid_internal)
                             : "it holds internal snapshots");
        pl->act = ACT_NONE;
    } else {
        pl->act = ACT_STREAM;
        pl->targets = kids;
        pl->num_targets = nk;
        for (i = 0; i < n; i++)
            if (libxl__chain_backend(e[i].fmt)->one_level &&
                in_strs((char **)kids, nk, e[i].file)) {
                LOG(ERROR, "disk %s: '%s' is a VHD built on '%s' beside "
                    "other images, and a VHD is not streamed into; "
                    "nothing was changed on this disk", ds->vdev,
                    e[i].file, F);
                rc = ERROR_INVAL;
                goto out;
            }
    }
    LOG(DEBUG, "disk %s: %s '%s'", ds->vdev,
        pl->act == ACT_REMOVE ? "remove" : pl->act == ACT_COMMIT
        ? "commit its child into" : pl->act == ACT_NONE ? "keep"
        : "stream into its children", F);
    if (pl->act == ACT_NONE) {
        snapshot_delete_disk_done(egc, dls, 0);
        return;
    }
    dls->target = 0;
    snapshot_delete_job_next(egc, dls);
    return;
 out:
    snapshot_delete_disk_done(egc, dls, rc);
}

/* ---------------------------------------------------------------- */
/* external: the jobs */

static void snapshot_delete_job_next(libxl__egc *egc,
                                     libxl__snapshot_delete_state *dls)
{
    STATE_AO_GC(dls->ao);
    libxlsnap_disk_snapshot *ds = cur_ds(dls);
    disk_plan *pl = &dls->plans[dls->disk];
    libxl__blockjob *bj = &dls->bj;
    const char *top;
    bool live;

    if (pl->act == ACT_REMOVE ||
        (pl->act == ACT_COMMIT && dls->target > 0) ||
        (pl->act == ACT_STREAM && dls->target == pl->num_targets)) {
        dls->target = 0;
        snapshot_delete_rebase_next(egc, dls);
        return;
    }
    top = pl->act == ACT_COMMIT ? pl->child : pl->targets[dls->target];
    live = is_running_image(dls, top);

    libxl__blockjob_init(bj);
    bj->ao = ao;
    bj->d = &dls->op.d;
    bj->info.vdev = ds->vdev;
    bj->info.live = live;
    bj->info.top = (char *)top;
    bj->info.len = pl->size;
    bj->active = dls->active;
    bj->active_format = dls->active_format;
    bj->top_format = pl->act == ACT_COMMIT ? pl->child_format
                                           : LIBXL_DISK_FORMAT_QCOW2;
    if (pl->act == ACT_COMMIT) {
        bj->info.base = (char *)ds->file;
        bj->base_format = ds->format;
        bj->info.type = live && !strcmp(top, dls->active)
            ? LIBXLSNAP_BLOCKJOB_TYPE_ACTIVE_COMMIT
            : LIBXLSNAP_BLOCKJOB_TYPE_COMMIT;
        bj->at_ready = LIBXL__BLOCKJOB_AT_READY_PIVOT;
        bj->info.id = GCSPRINTF("libxl-delete-%s", ds->vdev);
        if (live && ds->format == LIBXL_DISK_FORMAT_QCOW2) {
            /* top's dirty bitmaps merged into F as the job ends (the
             * engine's, as for block-commit: checkpoints survive) */
            GCNEW_ARRAY(bj->merge_files, 1);
            bj->merge_files[0] = (char *)top;
            bj->num_merge_files = 1;
        }
    } else {
        /* streaming into top: the data of F comes down from below */
        bj->info.base = (char *)pl->parent;
        bj->base_format = pl->parent_format;
        bj->info.type = LIBXLSNAP_BLOCKJOB_TYPE_STREAM;
        bj->info.id = GCSPRINTF("libxl-delete-%s-%d", ds->vdev,
                                dls->target);
    }
    if (pl->act == ACT_COMMIT) {
        /* QEMU may finish it after we die, or we die re-parenting the
         * images built on top once qemu-img has: recovery must know */
        yajl_val c;
        int k;
        dls->commit = NULL;
        libxl__json_add_string(gc, &dls->commit, "vdev", ds->vdev);
        libxl__json_add_string(gc, &dls->commit, "top", top);
        libxl__json_add_string(gc, &dls->commit, "base", ds->file);
        c = libxl__json_add_array(gc, &dls->commit, "children");
        for (k = 0; k < pl->num_targets; k++)
            libxl__json_append_string(gc, c, pl->targets[k]);
        if (write_journal(gc, dls, NULL, NULL)) {
            snapshot_delete_disk_done(egc, dls, ERROR_FAIL);
            return;
        }
    }
    if (pl->act == ACT_STREAM) {
        const char *why;
        if (libxl__bitmaps_fold_image(gc, live ? dls->op.d.qmp_path : NULL,
                                      ds->file, ds->format, top,
                                      LIBXL_DISK_FORMAT_QCOW2, false, &why))
            libxl__bitmaps_fold_warn(gc, ds->vdev, ds->file, top, why);
    }
    bj->callback = snapshot_delete_job_done;
    bj->progress = &dls->progress;
    bj->fault_op = "delete";
    libxl__blockjob_start(egc, bj);
}

static void snapshot_delete_job_done(libxl__egc *egc, libxl__blockjob *bj,
                                     int rc)
{
    libxl__snapshot_delete_state *dls =
        CONTAINER_OF(bj, libxl__snapshot_delete_state, bj);
    disk_plan *pl = &dls->plans[dls->disk];

    if (rc && pl->act == ACT_COMMIT) {
        snapshot_delete_merge_stopped(egc, dls, rc);
        return;
    }
    /* a stream stopped part-way changed no image's view: F is intact */
    if (rc) {
        snapshot_delete_disk_done(egc, dls, rc);
        return;
    }
    if (pl->act == ACT_COMMIT && !bj->info.live) {
        /* offline: C's dirty bitmaps into F, which records as C did when
         * C was the active image (block-commit does the same) */
        EGC_GC;
        libxlsnap_disk_snapshot *ds = cur_ds(dls);
        const char *why;
        if (libxl__bitmaps_fold_image(gc, NULL, pl->child, pl->child_format,
                                      ds->file, ds->format,
                                      !strcmp(pl->child, dls->active), &why))
            libxl__bitmaps_fold_warn(gc, ds->vdev, pl->child, ds->file, why);
    }
    dls->target++;
    snapshot_delete_job_next(egc, dls);
}

/*
 * The commit of C into F stopped before it completed: cancelled (Ctrl-C,
 * a timeout) or failed.  Until it wrote into F, F is intact, and so is
 * the snapshot.  Once it has, F holds part of C: the snapshot's data on
 * this disk is lost, so its record goes (said, naming it), as after an
 * aborted block-commit, with what only it held; C and F stay, as the
 * chain still reads right through them.  Never is the snapshot listed
 * with F's new data (a killed qemu-img's leaked clusters in F are
 * freed).  QEMU counts a chunk as done once it is written,
 * and a cancel stops between chunks: a live job cancelled at 0 bytes
 * wrote nothing.  A job QEMU may still run (we lost sight of it): the
 * journal stays, and the next command cancels the job and settles the
 * records (libxl_snapshot_journal.c).
 */
static void snapshot_delete_merge_stopped(libxl__egc *egc,
                                          libxl__snapshot_delete_state *dls,
                                          int rc)
{
    STATE_AO_GC(dls->ao);
    libxl__blockjob *bj = &dls->bj;
    disk_plan *pl = &dls->plans[dls->disk];
    /* copies: dropping the record moves the tree's entries */
    const char *name = GCSTRDUP(dls->snap->name);
    const char *vdev = GCSTRDUP(cur_ds(dls)->vdev);
    const char *F = GCSTRDUP(cur_ds(dls)->file);
    libxl_disk_format fmt = cur_ds(dls)->format;
    const char *how = rc == ERROR_ABORTED ? "was cancelled"
        : rc == ERROR_TIMEDOUT ? "timed out" : "failed";

    switch (bj->info.state) {
    case LIBXLSNAP_BLOCKJOB_STATE_NEW:
        /* it never ran */
        goto out;
    case LIBXLSNAP_BLOCKJOB_STATE_CANCELLED:
        if (bj->info.live && !bj->info.offset) {
            LOG(ERROR, "disk %s: the merge into '%s' %s before it wrote "
                "anything; snapshot '%s' is unchanged", vdev, F, how, name);
            goto out;
        }
        break;
    case LIBXLSNAP_BLOCKJOB_STATE_FAILED:
        break;
    default:
        LOG(ERROR, "disk %s: the merge of '%s' into '%s' (snapshot '%s') "
            "may still run in QEMU; the next command settles it", vdev,
            pl->child, F, name);
        dls->keep_journal = true;
        goto out;
    }
    dls->stopped_rc = rc;
    if (!bj->info.live && fmt == LIBXL_DISK_FORMAT_QCOW2) {
        /* qemu-img, killed, leaves clusters of F allocated and unused:
         * freed by a step that finishes even on an abort (the one that
         * stopped the merge, often) */
        libxl__exec_init(&dls->es);
        dls->es.ao = ao;
        dls->es.what = NULL;          /* the tool names the run */
        dls->es.args = libxl__qemu_img_check_args(gc, F, true);
        dls->es.timeout_ms = 600000;
        dls->es.unabortable = true;
        dls->es.callback = snapshot_delete_leaks_freed;
        if (!libxl__exec_start(egc, &dls->es)) return;
        snapshot_delete_leaks_freed(egc, &dls->es, ERROR_FAIL, 0);
        return;
    }
    snapshot_delete_merge_settle(egc, dls);
    return;
 out:
    snapshot_delete_done(egc, dls, rc);
}

static void snapshot_delete_leaks_freed(libxl__egc *egc,
                                        libxl__exec_state *es, int rc,
                                        int status)
{
    libxl__snapshot_delete_state *dls =
        CONTAINER_OF(es, libxl__snapshot_delete_state, es);
    STATE_AO_GC(dls->ao);

    if (rc)
        LOG(WARN, "disk %s: the clusters of '%s' that the stopped "
            "qemu-img left allocated could not be freed", cur_ds(dls)->vdev,
            cur_ds(dls)->file);
    snapshot_delete_merge_settle(egc, dls);
}

/* The records after a merge stopped part-way (merge_stopped). */
static void snapshot_delete_merge_settle(libxl__egc *egc,
                                         libxl__snapshot_delete_state *dls)
{
    STATE_AO_GC(dls->ao);
    disk_plan *pl = &dls->plans[dls->disk];
    /* copies: dropping the record moves the tree's entries */
    const char *name = GCSTRDUP(dls->snap->name);
    const char *vdev = GCSTRDUP(cur_ds(dls)->vdev);
    const char *F = GCSTRDUP(cur_ds(dls)->file);
    int rc = dls->stopped_rc;
    const char *how = rc == ERROR_ABORTED ? "was cancelled"
        : rc == ERROR_TIMEDOUT ? "timed out" : "failed";
    const char *dropped = NULL;
    int r;

    r = libxl__commit_stopped_records(gc, &dls->op, vdev,
                                      GCSTRDUP(pl->child), F, &dropped);
    /* the record is gone from the tree: nothing of it is left to say */
    dls->snap = NULL;
    dls->plans = NULL;
    if (r) {
        dls->keep_journal = true;
        goto out;
    }
    LOG(ERROR, "disk %s: the merge into '%s' %s after it had written part "
        "of it: the data of snapshot(s) %s there is lost, so their "
        "records are removed (the images stay in the backing chain)",
        vdev, F, how, dropped ? dropped : name);
 out:
    snapshot_delete_done(egc, dls, rc);
}

/*
 * After a commit of C into F: the images built on C now read right
 * only through F.  QEMU rewired the one in its running chain; the
 * others (other branches) are rebased here, metadata only.
 */
static void snapshot_delete_rebase_next(libxl__egc *egc,
                                        libxl__snapshot_delete_state *dls)
{
    STATE_AO_GC(dls->ao);
    libxlsnap_disk_snapshot *ds = cur_ds(dls);
    disk_plan *pl = &dls->plans[dls->disk];
    const char *t;
    int rc;

    if (pl->act != ACT_COMMIT || dls->target == pl->num_targets) {
        snapshot_delete_disk_done(egc, dls, 0);
        return;
    }
    t = pl->targets[dls->target];
    if (is_running_image(dls, t) && is_running_image(dls, pl->child)) {
        dls->target++;                 /* QEMU did it */
        snapshot_delete_rebase_next(egc, dls);
        return;
    }
    libxl__exec_init(&dls->es);
    dls->es.ao = ao;
    dls->es.what = GCSPRINTF("rebase of %s", t);
    dls->es.args = libxl__qemu_img_rebase_args(gc, t, ds->file, ds->format);
    dls->es.quiet = true;             /* a failure is said: not an error */
    dls->es.callback = snapshot_delete_rebase_done;
    rc = libxl__exec_start(egc, &dls->es);
    if (rc) snapshot_delete_rebase_done(egc, &dls->es, rc, 0);
}

static void snapshot_delete_rebase_done(libxl__egc *egc,
                                        libxl__exec_state *es, int rc,
                                        int status)
{
    libxl__snapshot_delete_state *dls =
        CONTAINER_OF(es, libxl__snapshot_delete_state, es);
    STATE_AO_GC(dls->ao);
    disk_plan *pl = &dls->plans[dls->disk];
    const char *why = rc ? libxl__tool_error_line(gc, es->err) : NULL;

    if (rc) {
        /*
         * F holds what C held already, so the records must follow; but
         * this image still reads through C, which therefore stays
         * (metadata: it reads right either way).  The delete succeeds:
         * a warning, with the cause (the tool's failure is not logged).
         */
        LOG(WARN, "disk %s: '%s' could not be rebased onto '%s'%s%s%s; "
            "'%s' is kept, as it is built on it", cur_ds(dls)->vdev,
            pl->targets[dls->target], cur_ds(dls)->file, why ? " (" : "",
            why ? why : "", why ? ")" : "", pl->child);
        pl->keep_child = true;
        dls->target = pl->num_targets;
        snapshot_delete_rebase_next(egc, dls);
        return;
    }
    libxl__fault_point("delete");     /* an image re-parented, records not */
    dls->target++;
    snapshot_delete_rebase_next(egc, dls);
}

/*
 * The image this disk may leave that nothing needs any more, once its
 * part of the snapshot is marked done (ds): the image that held the
 * internal snapshot, when no record names it (an external snapshot that
 * froze it was deleted while it held the tag); the backing of the
 * frozen image removed, when that was kept only for an image built on
 * it (see snapshot_delete_chains).  NULL when it is plainly in use; the
 * chains decide the rest (libxl__snapshot_remove_unused).
 */
static const char *left_unused(libxl__snapshot_delete_state *dls,
                               const disk_plan *pl,
                               const libxlsnap_disk_snapshot *ds, bool removing)
{
    const char *f = pl->act == ACT_TAG ? ds->file
        : pl->act == ACT_REMOVE && removing ? pl->parent : NULL;

    if (!f || domain_image(dls, f) ||
        libxl__snapshot_tree_has_image(&dls->op.tree, f))
        return NULL;
    return f;
}

/* Records and files after one disk; then the next disk. */
static void snapshot_delete_disk_done(libxl__egc *egc,
                                      libxl__snapshot_delete_state *dls,
                                      int rc)
{
    STATE_AO_GC(dls->ao);
    libxl__snapshot_op *op = &dls->op;
    libxlsnap_disk_snapshot *ds = cur_ds(dls);
    disk_plan *pl = &dls->plans[dls->disk];
    const char *gone = NULL, *unused = NULL;
    bool removing = false;

    if (rc) {
        snapshot_delete_done(egc, dls, rc);
        return;
    }
    if (pl->act == ACT_COMMIT) {
        /* F now holds what C held */
        libxl__snapshot_tree_move_file(gc, &op->tree, ds->vdev, pl->child,
                                       ds->file, ds->format);
        if (dls->active && !strcmp(dls->active, pl->child)) {
            libxl_device_disk *dk = libxl__domain_disk(&op->d, ds->vdev);
            if (dk) {
                /* later snapshots of this command see the new one */
                dk->pdev_path = GCSTRDUP(ds->file);
                dk->format = ds->format;
            }
            libxl__domain_record_set_disk(gc, &op->tree.dom, &op->cfg,
                                          ds->vdev,
                                          ds->file, ds->format);
            if (op->d.running && !dls->detached &&
                CTX->driver->set_active_disk) {
                rc = CTX->driver->set_active_disk(gc, &op->d, ds->vdev,
                                                  pl->child, ds->file,
                                                  ds->format);
                if (rc) {
                    /* the journal says the merge is done: it redoes it */
                    LOG(ERROR, "disk %s: the domain now runs on '%s', but "
                        "the toolstack's own record could not be updated "
                        "(the next command on the domain updates it)",
                        ds->vdev, ds->file);
                    dls->keep_journal = true;
                    snapshot_delete_done(egc, dls, rc);
                    return;
                }
            }
        }
        if (!pl->keep_child) gone = pl->child;
    } else if (pl->act == ACT_REMOVE || pl->act == ACT_STREAM) {
        gone = ds->file;
    }
    pl->done = true;
    /*
     * The records first, so that they never name a missing file or tag:
     * this disk of the snapshot is marked done ("no") on disk before its
     * file goes, so a crash between two disks leaves a record that says
     * exactly what is left of the snapshot.
     */
    if (gone || pl->act == ACT_TAG || pl->act == ACT_EXEC) {
        gone = GCSTRDUP(gone);
        /* (F, the disk's own image when it has no backing, stays) */
        removing = gone && !domain_image(dls, gone) &&
            (pl->act == ACT_COMMIT ||
             (pl->parent && !holds_internal(dls, gone)));
        ds->type = LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO;
        unused = left_unused(dls, pl, ds, removing);
        if (removing || unused) {
            /* the file to go, in the journal before the records move */
            rc = write_journal(gc, dls, removing ? gone : NULL, unused);
            if (rc) {
                /* the journal still says what the records must do */
                dls->keep_journal = true;
                snapshot_delete_done(egc, dls, rc);
                return;
            }
        }
        rc = libxl__snapshot_store_save(gc, &op->st, &op->tree);
        if (rc) {
            dls->keep_journal = true;
            snapshot_delete_done(egc, dls, rc);
            return;
        }
        libxl__fault_point("delete");
    }
    if (gone) {
        if (!removing)
            LOG(DEBUG, "keeping '%s'", gone);
        else if (unlink(gone) && errno != ENOENT)
            LOGE(WARN, "cannot remove '%s'", gone);
        libxl__fault_point("delete");
    }
    if (unused) {
        /* the delete is abortable here (its next disk's job is): an
         * abort while the chains are read stops it, and the journal,
         * which names the image, has the next command remove it */
        const char **from;
        GCNEW_ARRAY(from, 1);
        from[0] = unused;
        dls->ru.ao = ao;
        dls->ru.op = op;
        dls->ru.keep = NULL;
        dls->ru.from = from;
        dls->ru.num_from = 1;
        dls->ru.with_self = true;
        dls->ru.callback = snapshot_delete_unused_done;
        libxl__snapshot_remove_unused(egc, &dls->ru);
        return;
    }
    dls->disk++;
    snapshot_delete_disk(egc, dls);
}

static void snapshot_delete_unused_done(libxl__egc *egc,
                                        libxl__remove_unused_state *ru,
                                        int rc)
{
    libxl__snapshot_delete_state *dls =
        CONTAINER_OF(ru, libxl__snapshot_delete_state, ru);

    if (rc) {
        dls->keep_journal = true;
        snapshot_delete_done(egc, dls, rc);
        return;
    }
    dls->disk++;
    snapshot_delete_disk(egc, dls);
}

/* ---------------------------------------------------------------- */

static void snapshot_delete_record(libxl__egc *egc,
                                   libxl__snapshot_delete_state *dls)
{
    STATE_AO_GC(dls->ao);
    /* copied: the removal moves the tree's entries (and *dls->snap) */
    const char *name = GCSTRDUP(dls->snap->name);
    const char *memory = GCSTRDUP(dls->snap->memory);
    int rc;

    libxl__snapshot_tree_remove(gc, &dls->op.tree, name);
    libxl__snapshot_tree_fixup(gc, &dls->op.tree);
    rc = libxl__snapshot_store_save(gc, &dls->op.st, &dls->op.tree);
    if (rc) {
        dls->keep_journal = true;
        dls->snap = NULL;             /* gone from the tree in memory */
        snapshot_delete_done(egc, dls, rc);
        return;
    }
    /* the memory image goes with its record, once that is gone (with
     * --metadata only the record goes: the files stay, as libvirt's) */
    if (memory && !(dls->flags & LIBXLSNAP_DELETE_METADATA_ONLY) &&
        unlink(memory) && errno != ENOENT)
        LOGE(WARN, "snapshot '%s': cannot remove its memory image '%s'",
             name, memory);
    if (dls->journaled) libxl__journal_remove(gc, &dls->op.st);
    dls->journaled = false;
    libxl__fault_point("delete");
    dls->snap = NULL;
    dls->plans = NULL;
    dls->cur++;
    snapshot_delete_one(egc, dls);
}

static void snapshot_delete_done(libxl__egc *egc,
                                 libxl__snapshot_delete_state *dls, int rc)
{
    STATE_AO_GC(dls->ao);
    int i, n = 0;

    /* a failure after some disks were done: say what is left */
    for (i = 0; rc && dls->snap && dls->plans &&
                i < dls->snap->num_disks; i++) {
        if (!dls->plans[i].done || dls->plans[i].act == ACT_NONE) continue;
        dls->snap->disks[i].type = LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO;
        n++;
    }
    if (n && !dls->keep_journal) {
        LOG(ERROR, "snapshot '%s' was deleted from %d of its %d disks; "
            "its record now covers the others", dls->snap->name, n,
            dls->snap->num_disks);
        if (libxl__snapshot_store_save(gc, &dls->op.st, &dls->op.tree))
            dls->keep_journal = true;
    }
    /*
     * A failure leaves the records true (above): nothing to recover;
     * unless they could not be saved, or QEMU may still run a job: then
     * the journal stays, and the next command completes the records
     * from it (libxl_snapshot_journal.c).
     */
    /* one recovery left part-done, which this one did not get to (a
     * failure on it said what is left itself) */
    if (rc && dls->op.unfinished_delete &&
        libxl__snapshot_tree_find(&dls->op.tree, dls->op.unfinished_delete) &&
        (dls->cur >= dls->num_names ||
         strcmp(dls->names[dls->cur], dls->op.unfinished_delete)))
        libxl__journal_say_unfinished(gc, &dls->op);
    if (dls->journaled && dls->keep_journal)
        LOG(ERROR, "domain %s: the records of the delete of '%s' are not "
            "complete; its journal is kept: the next command (e.g. "
            "xl snapshot-recover) completes them", dls->op.d.name,
            dls->names[dls->cur]);
    else if (dls->journaled)
        libxl__journal_remove(gc, &dls->op.st);
    libxl__qmp_close(gc, &dls->qmp);
    libxl__snapshot_op_end(gc, &dls->op);
    if (dls->callback)
        dls->callback(egc, dls->for_callback, rc);
    else
        libxl__ao_complete(egc, ao, rc);
}

/* ---------------------------------------------------------------- */
/* recovery: snapshot delete */

/*
 * Jobs of a dead delete (ids libxl-delete-*) left in QEMU: cancelled
 * (a commit stopped at READY keeps its top active, which the records
 * still name; its base is the snapshot's own image), then dismissed.
 */
static void cancel_delete_jobs(libxl__gc *gc, libxl__snapshot_op *op)
{
    yajl_val jobs = NULL;
    int tries;
    size_t i;
    bool left = true;

    if (!op->d.running) return;
    for (tries = 0; left && tries < 100; tries++) {
        left = false;
        if (libxl__qmp_run_sync(gc, op->d.qmp_path, "query-jobs", NULL,
                                5000, true, &jobs) || !jobs ||
            !YAJL_IS_ARRAY(jobs))
            return;
        for (i = 0; i < jobs->u.array.len; i++) {
            yajl_val jb = jobs->u.array.values[i];
            const char *id = libxl__json_get_string(jb, "id");
            const char *st = libxl__json_get_string(jb, "status");
            yajl_val args = NULL;
            if (!id || strncmp(id, "libxl-delete-", 13) || !st) continue;
            libxl__json_add_string(gc, &args, "id", id);
            left = true;
            if (!strcmp(st, "concluded"))
                libxl__qmp_run_sync(gc, op->d.qmp_path, "job-dismiss", args,
                                    5000, true, NULL);
            else if (tries == 0 || !strcmp(st, "ready"))
                libxl__qmp_run_sync(gc, op->d.qmp_path, "job-cancel", args,
                                    5000, true, NULL);
        }
        if (left) usleep(50000);
    }
}

/*
 * The commit of C (top) into the snapshot's image F (base) that the
 * delete had under way (the journal's "commit"), if it had finished:
 *  - live, QEMU finished it after the process died: an active commit
 *    pivoted (a BlockBackend of QEMU runs on F), an intermediate one
 *    rewired the image above C onto F (a node other than C's now has F
 *    as its backing);
 *  - offline, qemu-img had, and the process died re-parenting the
 *    images built on C: one of them already backs onto F.
 * Then it is done as the delete would have: the other images built on
 * C are rebased onto F (metadata only), the records and the active
 * image move from C to F (F holds what C held), the snapshot's own disk
 * is done, and C goes.  A commit that had not finished was cancelled
 * (cancel_delete_jobs; offline, qemu-img died with its process): F may
 * hold part of C, and C and the images on it are as they were; the
 * snapshots whose data was F's lost it there, so their records go (as
 * after a stopped commit: libxl__commit_stopped_records), said, and
 * never listed with F's new data.
 * ERROR_* when the records could not be saved (the journal stays).
 */
static int committed_records(libxl__gc *gc, libxl__snapshot_op *op,
                             libxlsnap_domain_snapshot *s, yajl_val commit)
{
    libxl__snapshot_tree *t = &op->tree;
    const char *vdev = libxl__json_get_string(commit, "vdev");
    const char *c = libxl__json_get_string(commit, "top");
    const char *f = libxl__json_get_string(commit, "base");
    yajl_val kids = libxl__json_get(commit, "children");
    yajl_val nodes = NULL;
    libxlsnap_disk_snapshot *ds = NULL;
    libxl__active_disk *ad;
    bool pivot, done = false, rebased = true;
    const char *dropped = NULL;
    size_t i;
    int k, rc;

    if (!vdev || !c || !f) return 0;
    for (k = 0; k < s->num_disks; k++)
        if (!strcmp(s->disks[k].vdev, vdev) && s->disks[k].file &&
            !strcmp(s->disks[k].file, f))
            ds = &s->disks[k];
    ad = libxl__domain_record_disk(&t->dom, vdev);
    if (!ds || !libxl__snapshot_backend_of(ds) ||
        !libxl__snapshot_backend_of(ds)->chained || !ad || !ad->path)
        return 0;
    pivot = op->d.running && !strcmp(ad->path, c);
    if (!op->d.running) {
        for (i = 0; kids && YAJL_IS_ARRAY(kids) && i < kids->u.array.len;
             i++) {
            const char *kid = YAJL_GET_STRING(kids->u.array.values[i]);
            if (kid && libxl__overlay_on(gc, kid, f)) done = true;
        }
    } else if (libxl__qmp_run_sync(gc, op->d.qmp_path,
                                   "query-named-block-nodes",
                                   libxl__qmp_args_flat(gc), 10000, true, &nodes) ||
               !nodes || !YAJL_IS_ARRAY(nodes)) {
        /* cannot tell: the journal stays for the next command */
        LOG(ERROR, "domain %s: disk %s: QEMU does not say whether it had "
            "finished merging '%s' into '%s'; the journal is kept",
            op->d.name, vdev, c, f);
        return ERROR_FAIL;
    } else if (pivot) {
        done = libxl__qmp_runs_on(gc, op->d.qmp_path, f);
    } else {
        for (i = 0; i < nodes->u.array.len; i++) {
            yajl_val n = nodes->u.array.values[i];
            const char *nf = libxl__json_get_string(n, "file");
            const char *nb = libxl__json_get_string(n, "backing_file");
            if (nf && nb && !strcmp(nb, f) && strcmp(nf, c) &&
                strcmp(nf, f))
                done = true;
        }
    }
    if (!done) {
        rc = libxl__commit_stopped_records(gc, op, vdev, c, f, &dropped);
        if (rc) return rc;
        if (dropped)
            LOG(WARN, "domain %s: disk %s: the interrupted merge of '%s' "
                "into '%s' may have written part of it: the data of "
                "snapshot(s) %s there is lost, so their records are "
                "removed", op->d.name, vdev, c, f, dropped);
        return 0;
    }

    for (i = 0; kids && YAJL_IS_ARRAY(kids) && i < kids->u.array.len; i++) {
        const char *kid = YAJL_GET_STRING(kids->u.array.values[i]);
        char *err = NULL;
        /* an image QEMU runs: the live commit re-parented it itself */
        if (kid && op->d.running && libxl__op_runs_image(gc, op, kid))
            continue;
        /* a failure is said here, as a warning: the recovery goes on */
        if (kid && !libxl__overlay_on(gc, kid, f) &&
            libxl__exec_sync(gc, libxl__qemu_img_rebase_args(gc, kid,
                                 f, ds->format), 60000, NULL, &err)) {
            const char *why = libxl__tool_error_line(gc, err);
            LOG(WARN, "domain %s: disk %s: '%s' could not be rebased "
                "onto '%s'%s%s%s; '%s' is kept", op->d.name, vdev, kid, f,
                why ? " (" : "", why ? why : "", why ? ")" : "", c);
            rebased = false;
        }
    }
    c = GCSTRDUP(c);
    f = GCSTRDUP(f);
    libxl__snapshot_tree_move_file(gc, t, vdev, c, f, ds->format);
    if (pivot) {
        libxl__domain_record_set_disk(gc, &t->dom, &op->cfg, vdev, f,
                                      ds->format);
        if (CTX->driver->set_active_disk) {
            rc = CTX->driver->set_active_disk(gc, &op->d, vdev, c, f,
                                              ds->format);
            if (rc) return rc;        /* the journal stays */
        }
    }
    ds->type = LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO;
    if (op->d.running) libxl__qmp_drop_file_nodes(gc, op->d.qmp_path, c);
    rc = libxl__snapshot_store_save(gc, &op->st, t);
    if (rc) return rc;                /* the journal stays */
    if (rebased && !libxl__snapshot_tree_uses_file(t, c) &&
        !config_image(op, c) && !libxl__op_runs_image(gc, op, c))
        unlink(c);
    LOG(WARN, "domain %s: disk %s: %s had finished merging '%s' into "
        "'%s'; the records follow", op->d.name, vdev,
        op->d.running ? "QEMU" : "qemu-img", c, f);
    return 0;
}

/*
 * A commit's disk already marked done in the deleted snapshot's record,
 * but a record the same save should have moved from top to base, or the
 * domain record's active image (saved last), still names top: the save
 * stopped part-way (a full disk), after the merge.
 * Moving them again is idempotent.  Before the journal's file removal,
 * which keeps a file some record names.
 */
static int moved_records(libxl__gc *gc, libxl__snapshot_op *op,
                         const char *name, yajl_val commit)
{
    libxl__snapshot_tree *t = &op->tree;
    libxlsnap_domain_snapshot *s = name ? libxl__snapshot_tree_find(t, name)
                                    : NULL;
    const char *vdev = libxl__json_get_string(commit, "vdev");
    const char *c = libxl__json_get_string(commit, "top");
    const char *f = libxl__json_get_string(commit, "base");
    libxl__active_disk *ad = vdev ? libxl__domain_record_disk(&t->dom, vdev)
                                  : NULL;
    int k;

    if (!s || !vdev || !c || !f) return 0;
    /* (the domain record is saved last: it may be the one behind) */
    if (!libxl__snapshot_tree_uses_file(t, c) &&
        !(ad && ad->path && !strcmp(ad->path, c)))
        return 0;
    for (k = 0; k < s->num_disks; k++) {
        libxlsnap_disk_snapshot *ds = &s->disks[k];
        if (strcmp(ds->vdev, vdev) || !ds->file || strcmp(ds->file, f) ||
            ds->type != LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO)
            continue;
        libxl__snapshot_tree_move_file(gc, t, vdev, GCSTRDUP(c),
                                       GCSTRDUP(f), ds->format);
        if (ad && ad->path && !strcmp(ad->path, c) &&
            !libxl__op_runs_image(gc, op, c))
            libxl__domain_record_set_disk(gc, &t->dom, &op->cfg, vdev, f,
                                      ds->format);
        LOG(WARN, "domain %s: disk %s: the records still naming '%s', "
            "merged into '%s', now name it", op->d.name, vdev, c, f);
        return libxl__snapshot_store_save(gc, &op->st, t);
    }
    return 0;
}

/*
 * The snapshots the interrupted command was to delete after this one
 * (--children), which recovery leaves: "; 'p', which ... is kept", or
 * "".
 */
static const char *delete_rest(libxl__gc *gc, libxl__snapshot_op *op,
                               yajl_val j)
{
    yajl_val then = libxl__json_get(j, "then");
    const char *l = NULL;
    size_t i;
    int n = 0;

    for (i = 0; then && YAJL_IS_ARRAY(then) && i < then->u.array.len; i++) {
        const char *name = YAJL_GET_STRING(then->u.array.values[i]);
        if (!name || !libxl__snapshot_tree_find(&op->tree, name)) continue;
        l = GCSPRINTF("%s%s'%s'", l ? l : "", l ? ", " : "", name);
        n++;
    }
    return !n ? "" : GCSPRINTF("; %s, which the interrupted command was to "
                               "delete next, %s kept", l,
                               n > 1 ? "are" : "is");
}

/* ---------------------------------------------------------------- */
/* what nothing needs any more, removed on the loop */

static void remove_unused_chains(libxl__egc *egc,
                                 libxl__qemu_img_info_state *qi, int rc);
static void remove_unused_removed(libxl__egc *egc, libxl__exec_state *es,
                                  int rc, int status);

void libxl__snapshot_remove_unused(libxl__egc *egc,
                                   libxl__remove_unused_state *ru)
{
    libxl__snapshot_op *op = ru->op;
    STATE_AO_GC(ru->ao);
    const char **keep = (const char **)ru->keep;
    int i, nk = ru->num_keep;

    if (!keep) {
        GCNEW_ARRAY(keep, op->d.num_disks + op->tree.dom.num_disks + 1);
        for (i = 0, nk = 0; i < op->d.num_disks; i++)
            if (op->d.disks[i].pdev_path)
                keep[nk++] = op->d.disks[i].pdev_path;
        for (i = 0; i < op->tree.dom.num_disks; i++)
            if (op->tree.dom.disks[i].path)
                keep[nk++] = op->tree.dom.disks[i].path;
    }
    memset(&ru->qi, 0, sizeof(ru->qi));
    ru->qi.num_images = libxl__snapshot_unused_probe(gc, &op->tree, keep, nk,
                                                     ru->from, ru->num_from,
                                                     &ru->qi.images,
                                                     &ru->num_need);
    if (ru->qi.num_images == ru->num_need) {
        /* none of from[] exists: nothing to read */
        ru->qi.num_images = ru->num_need = 0;
        GCNEW_ARRAY(ru->qi.infos, 1);
        remove_unused_chains(egc, &ru->qi, 0);
        return;
    }
    ru->qi.ao = ao;
    ru->qi.backing_chain = true;
    ru->qi.keep_going = true;
    ru->qi.unabortable = ru->unabortable;
    ru->qi.callback = remove_unused_chains;
    libxl__qemu_img_info(egc, &ru->qi);
}

static void remove_unused_chains(libxl__egc *egc,
                                 libxl__qemu_img_info_state *qi, int rc)
{
    libxl__remove_unused_state *ru =
        CONTAINER_OF(qi, libxl__remove_unused_state, qi);
    libxl__snapshot_op *op = ru->op;
    STATE_AO_GC(ru->ao);
    const char **unused = NULL, **files, *why = NULL;
    int i, k, n = 0, nf = 0;

    if (rc == ERROR_ABORTED) {
        LOG(WARN, "domain %s: the search for images that nothing uses any "
            "more was aborted: none removed", op->d.name);
        ru->callback(egc, ru, rc);
        return;
    }
    if (!rc)
        n = libxl__snapshot_unused_images(gc, &op->cfg, qi->images,
                                          qi->infos, ru->num_need,
                                          qi->num_images, ru->with_self,
                                          &unused, &why);
    if (rc || (!n && why)) {
        /* nothing goes on a guess (rc: a qemu-img run did not start) */
        const char *err = NULL;
        for (k = 0; why && k < ru->num_need; k++)
            if (qi->images[k] == why) err = qi->errs[k];
        LOG(WARN, "domain %s: images that nothing may use any more are "
            "kept: the backing chain of %s%s%s cannot be read%s%s",
            op->d.name, why ? "'" : "", why ? why : "an image",
            why ? "'" : "", err ? ": " : "", err ? err : "");
        n = 0;
    }
    GCNEW_ARRAY(files, n + ru->num_also + 1);
    for (i = 0; i < n; i++) {
        /* (what is below an image QEMU has open, it has open too) */
        if (!ru->stopped && libxl__op_runs_image(gc, op, unused[i])) break;
        LOG(DEBUG, "removing '%s', which nothing uses any more", unused[i]);
        files[nf++] = unused[i];
    }
    for (i = 0; i < ru->num_also; i++)
        if (ru->also[i]) files[nf++] = ru->also[i];
    if (!nf) {
        ru->callback(egc, ru, 0);
        return;
    }
    libxl__exec_init(&ru->es);
    ru->es.ao = ao;
    ru->es.what = "removal of images that nothing uses any more";
    ru->es.child_fn = libxl__unlink_files_child;
    ru->es.child_arg = files;
    ru->es.unabortable = true;        /* it only frees space */
    ru->es.quiet = true;
    ru->es.callback = remove_unused_removed;
    if (!libxl__exec_start(egc, &ru->es)) return;
    for (i = 0; i < nf; i++)          /* no child: here, then */
        if (unlink(files[i]) && errno != ENOENT)
            LOGE(WARN, "cannot remove '%s', which nothing uses any more",
                 files[i]);
    ru->callback(egc, ru, 0);
}

static void remove_unused_removed(libxl__egc *egc, libxl__exec_state *es,
                                  int rc, int status)
{
    libxl__remove_unused_state *ru =
        CONTAINER_OF(es, libxl__remove_unused_state, es);
    STATE_AO_GC(ru->ao);

    if (rc)
        libxl__unlink_files_report(gc, es, "unused image");
    ru->callback(egc, ru, 0);
}

static int recover_delete_records(libxl__gc *gc, libxl__snapshot_op *op,
                                  yajl_val j);

typedef struct {
    libxl__snapshot_op *op;
    libxl__snapshot_op_callback *callback;
    libxl__remove_unused_state ru;
} delete_recover_state;

static void delete_recover_unused(libxl__egc *egc,
                                  libxl__remove_unused_state *ru, int rc)
{
    delete_recover_state *dr = CONTAINER_OF(ru, delete_recover_state, ru);

    /* aborted: the journal stays, and the next command removes it */
    dr->callback(egc, dr->op, rc);
}

/*
 * The records, then the image the journal's disk may have left unused
 * (a step: an abort while its chains are read keeps the journal).
 */
void libxl__delete_recover(libxl__egc *egc, libxl__snapshot_op *op,
                           yajl_val j,
                           libxl__snapshot_op_callback *callback)
{
    STATE_AO_GC(op->ao);
    const char *unused = libxl__json_get_string(j, "unused");
    int rc = recover_delete_records(gc, op, j);
    delete_recover_state *dr;
    const char **from;

    if (rc || !unused) {
        callback(egc, op, rc);
        return;
    }
    GCNEW(dr);
    dr->op = op;
    dr->callback = callback;
    dr->ru.ao = ao;
    dr->ru.op = op;
    GCNEW_ARRAY(from, 1);
    from[0] = unused;
    dr->ru.from = from;
    dr->ru.num_from = 1;
    dr->ru.with_self = true;
    dr->ru.callback = delete_recover_unused;
    libxl__snapshot_remove_unused(egc, &dr->ru);
}

static int recover_delete_records(libxl__gc *gc, libxl__snapshot_op *op,
                                  yajl_val j)
{
    const char *name = libxl__json_get_string(j, "snapshot");
    const char *remove = libxl__json_get_string(j, "remove");
    libxlsnap_domain_snapshot *s;
    int i, n = 0, rc;

    cancel_delete_jobs(gc, op);
    rc = moved_records(gc, op, name, libxl__json_get(j, "commit"));
    if (rc) return rc;
    /* then a merge that finished, or that did not */
    s = name ? libxl__snapshot_tree_find(&op->tree, name) : NULL;
    if (s) {
        rc = committed_records(gc, op, s, libxl__json_get(j, "commit"));
        if (rc) return rc;
    }
    if (remove && libxl__file_exists(remove) &&
        !libxl__snapshot_tree_uses_file(&op->tree, remove) &&
        !libxl__domain_record_has_image(&op->tree.dom, remove) &&
        !config_image(op, remove) && !libxl__op_runs_image(gc, op, remove)) {
        /* its data had been merged and the records moved: it goes */
        if (unlink(remove))
            LOGE(WARN, "cannot remove '%s'", remove);
    }
    if (!s) {
        LOG(WARN, "domain %s: an interrupted snapshot-delete of '%s' had "
            "finished%s", op->d.name, name ? name : "?",
            delete_rest(gc, op, j));
        return 0;
    }
    s = libxl__snapshot_tree_find(&op->tree, name);
    if (!s) {
        LOG(WARN, "domain %s: an interrupted snapshot-delete of '%s' "
            "is over: its record is removed%s", op->d.name, name,
            delete_rest(gc, op, j));
        return 0;
    }
    /* what is gone is marked so (the delete did it before each file) */
    for (i = 0; i < s->num_disks; i++) {
        libxlsnap_disk_snapshot *ds = &s->disks[i];
        if (ds->type == LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO) {
            n++;
            continue;
        }
        /* gone only if its backend can tell (an LVM volume: lvs says
         * so, not because its origin is gone) */
        if (libxl__snapshot_backend_of(ds)->present(gc, ds) ==
            ERROR_NOTFOUND) {
            ds->type = LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO;
            n++;
        }
    }
    if (n == s->num_disks) {
        /* nothing of it is left but its record: the delete is over */
        if (s->memory && unlink(s->memory) && errno != ENOENT)
            LOGE(WARN, "cannot remove '%s'", s->memory);
        libxl__snapshot_tree_remove(gc, &op->tree, name);
        libxl__snapshot_tree_fixup(gc, &op->tree);
        rc = libxl__snapshot_store_save(gc, &op->st, &op->tree);
        if (rc) return rc;
        LOG(WARN, "domain %s: an interrupted snapshot-delete of '%s' is "
            "finished: every disk of it was done, its record is removed%s",
            op->d.name, name, delete_rest(gc, op, j));
        return 0;
    }
    if (n) {
        rc = libxl__snapshot_store_save(gc, &op->st, &op->tree);
        if (rc) return rc;
    }
    /* said once: by whoever finishes it, or else once recovered */
    op->unfinished_delete = GCSTRDUP(name);
    op->unfinished_how = GCSPRINTF("it had stopped after %d of its %d "
                                   "disks", n, s->num_disks);
    op->unfinished_rest = delete_rest(gc, op, j);
    return 0;
}

/*
 * Under the lock, with op's tree loaded: reconcile a journal left by a
 * process that died; *found_r says whether there was one.
 */

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
