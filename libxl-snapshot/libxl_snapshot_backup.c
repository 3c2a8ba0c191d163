/*
 * libxl_snapshot_backup.c - backups of a domain's disks: push and pull
 *
 * A backup copies every disk (or those asked) as it was at one instant.
 * Each disk's copy is a block job of type BACKUP of the block job
 * engine (libxl_snapshot_blockjob.c): its job record (so that snapshot
 * commands leave the disk alone, and `xl block-job` shows it), its
 * progress, bandwidth, abort; the backup as a whole has one more record,
 * backup.libxl-json in the domain's record directory: push or pull,
 * target, checkpoints, each disk's job, node, image and temporary
 * bitmap, the owner's pid (0: nobody waits for it, --async), and its
 * state, which stays after the end (backup-info shows the last backup).
 * Completed pushes are listed in backups.libxl-json, so that the next
 * incremental knows the image it is built on (the one taken with its
 * checkpoint).
 *
 * Push, live: the target images are made first (qemu-img create; an
 * incremental's backing file is the previous backup of the disk), then
 * added to QEMU (blockdev-add, "backing": null: unchanged clusters stay
 * unallocated and read through the backing file once the chain is
 * opened), then one QMP transaction starts every copy at one instant:
 * blockdev-backup sync=full, or sync=bitmap with a temporary disabled
 * bitmap that is the merge of the checkpoint bitmaps since the
 * incremental's checkpoint over every layer of the active chain, and the
 * actions that make the new checkpoint (--checkpoint).  The jobs are
 * followed one after the other (they all run in QEMU meanwhile) by
 * libxl__blockjob_follow.  At the end the target nodes and temporary
 * bitmaps go; a completed backup is recorded (and its checkpoint), a
 * failed or cancelled one is undone: the other copies cancelled, the
 * images it made removed, its checkpoint undone, so that no bitmap or
 * checkpoint claims more than was copied.
 * Push, offline: a full one is qemu-img convert of each disk in turn
 * (the engine's offline job); an incremental runs as live, in a
 * qemu-storage-daemon of ours that opens the images read-only (below).
 *
 * Pull: a fleecing overlay per disk (beside its active image, backing
 * on the active node), blockdev-backup sync=none into it (the old data
 * of clusters the guest overwrites is copied there first), NBD exports
 * of the overlays (nbd-server-start, block-export-add, export name: the
 * vdev), an incremental's merged bitmap on the overlay's node, named as
 * the checkpoint and exported with it (qemu:dirty-bitmap:<checkpoint>).
 * backup-end deletes the exports, stops the server, cancels the jobs,
 * deletes the overlays; the new checkpoint is kept only when it ends
 * without --abort.
 *
 * Adoption (libxl__backup_recover, at the start of every command): a
 * backup whose process died (or that nobody waits for: --async) is
 * looked at: copies QEMU still runs are left to run, copies all over
 * are recorded as their process would have (completed or undone), a
 * QEMU that is gone undoes it; a pull's exports are the user's until
 * backup-end.
 *
 * Steps (begin): libxlsnap_backup_begin -> bk_begun -> [bk_qsd_start ->
 *   bk_qsd_poll* -> bk_qsd_ready ->] bk_start -> bk_follow_next* ->
 *   bk_job_done -> bk_finish [-> bk_qsd_stop -> bk_qsd_exited] ->
 *   bk_record -> bk_done; offline full: bk_begun -> bk_offline_next* ->
 *   bk_job_done -> bk_finish -> bk_record -> bk_done.
 * Steps (end): libxlsnap_backup_end -> bk_end_begun -> [bk_follow_next*
 *   -> bk_job_done | pull teardown] -> bk_finish -> bk_done; a push
 *   another process waits for: libxlsnap_backup_end -> bk_end_wait*
 *   (its record polled, without the lock it holds) -> bk_end_waited.
 * Crash points (XL_SNAPSHOT_FAULT=backup:N): 1 the records written and
 * the images made, 2 the copies started, 3 the copies over, the outcome
 * not yet recorded.
 */
#include "libxl_snapshot_internal.h"

#include <inttypes.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BACKUP_RECORD "backup.libxl-json"
#define BACKUPS_RECORD "backups.libxl-json"
#define TMP_BITMAP "libxl-backup"       /* push: on the source node */
#define CANCEL_WAIT_MS 30000

/* ---------------------------------------------------------------- */
/* the record */

typedef struct {
    const char *vdev;
    const char *source;               /* the active image */
    libxl_disk_format source_format;
    const char *job, *node;           /* our job id, the target's node */
    const char *file;                 /* push: DIR/<vdev>.qcow2; pull: the
                                         fleecing overlay */
    const char *backing;              /* push incremental: the previous
                                         backup's image, or NULL */
    const char *bitmap;               /* the temporary bitmap, or NULL */
    const char *src_node;             /* live: the source's node */
    uint64_t size, offset, len;
    libxlsnap_blockjob_state state;
    const char *error;
    /* incremental, while it starts: the bitmaps since the checkpoint */
    const char **names;
    int num_names;
    libxl__disk_bitmaps db;
} bk_disk;

typedef struct {
    bool pull, live, fell_back;
    const char *target;               /* DIR or the NBD address */
    const char *incremental, *checkpoint;
    libxlsnap_blockjob_state state;
    long owner;                       /* 0: nobody waits for it */
    uint64_t speed;
    const char *error;
    long long started;
    libxlsnap_checkpoint *cp;         /* the checkpoint it makes (its
                                         record written once it ends well) */
    bool cp_made;                     /* its bitmaps may exist */
    const libxlsnap_checkpoint *from; /* while it starts: the
                                         incremental's checkpoint */
    bk_disk *disks;
    int num_disks;
} bk_rec;

static bool state_final(libxlsnap_blockjob_state s)
{
    return s == LIBXLSNAP_BLOCKJOB_STATE_COMPLETED ||
           s == LIBXLSNAP_BLOCKJOB_STATE_FAILED ||
           s == LIBXLSNAP_BLOCKJOB_STATE_CANCELLED;
}

static libxlsnap_blockjob_state state_parse(const char *s)
{
    int i;
    for (i = 0; s && i <= LIBXLSNAP_BLOCKJOB_STATE_CANCELLED; i++)
        if (!strcmp(s, libxlsnap_blockjob_state_to_string(i))) return i;
    return LIBXLSNAP_BLOCKJOB_STATE_FAILED;
}

static int rec_write(libxl__gc *gc, const libxl__snapshot_store *st,
                     const bk_rec *r)
{
    yajl_val v = NULL, arr, d;
    const char *s;
    int i;

    libxl__json_add_string(gc, &v, "mode", r->pull ? "pull" : "push");
    libxl__json_add_bool(gc, &v, "live", r->live);
    libxl__json_add_string(gc, &v, "target", r->target);
    if (r->incremental)
        libxl__json_add_string(gc, &v, "incremental", r->incremental);
    if (r->checkpoint)
        libxl__json_add_string(gc, &v, "checkpoint", r->checkpoint);
    libxl__json_add_bool(gc, &v, "fell_back", r->fell_back);
    libxl__json_add_string(gc, &v, "state",
                           libxlsnap_blockjob_state_to_string(r->state));
    libxl__json_add_integer(gc, &v, "owner", r->owner);
    libxl__json_add_uint64(gc, &v, "speed", r->speed);
    libxl__json_add_integer(gc, &v, "started", r->started);
    if (r->error) libxl__json_add_string(gc, &v, "error", r->error);
    if (r->cp) {
        libxl__json_add(gc, &v, "checkpoint_plan",
                        libxl__checkpoint_to_tree(gc, r->cp));
        libxl__json_add_bool(gc, &v, "checkpoint_made", r->cp_made);
    }
    arr = libxl__json_add_array(gc, &v, "disks");
    for (i = 0; i < r->num_disks; i++) {
        const bk_disk *k = &r->disks[i];
        d = libxl__json_append_object(gc, arr);
        libxl__json_add_string(gc, &d, "vdev", k->vdev);
        libxl__json_add_string(gc, &d, "source", k->source);
        libxl__json_add_string(gc, &d, "source_format",
                               libxl_disk_format_to_string(k->source_format));
        libxl__json_add_string(gc, &d, "job", k->job);
        libxl__json_add_string(gc, &d, "node", k->node);
        libxl__json_add_string(gc, &d, "file", k->file);
        if (k->backing) libxl__json_add_string(gc, &d, "backing", k->backing);
        if (k->bitmap) libxl__json_add_string(gc, &d, "bitmap", k->bitmap);
        libxl__json_add_uint64(gc, &d, "size", k->size);
        libxl__json_add_uint64(gc, &d, "offset", k->offset);
        libxl__json_add_uint64(gc, &d, "len", k->len);
        libxl__json_add_string(gc, &d, "state",
                               libxlsnap_blockjob_state_to_string(k->state));
        if (k->error) libxl__json_add_string(gc, &d, "error", k->error);
    }
    s = libxl__json_to_string(gc, v);
    if (!s) return ERROR_FAIL;
    return libxl__snapshot_store_put1(gc, st, BACKUP_RECORD, s, strlen(s),
                                      XTL_ERROR);
}

/* ERROR_NOTFOUND: the domain never had a backup */
static int rec_read(libxl__gc *gc, const libxl__snapshot_store *st,
                    bk_rec *r)
{
    char *data;
    yajl_val v, arr, d;
    const char *s;
    size_t i;
    int rc;

    memset(r, 0, sizeof(*r));
    rc = libxl__snapshot_store_get(gc, st, BACKUP_RECORD, &data, NULL);
    if (rc) return rc;
    v = libxl__json_parse(gc, data);
    arr = v ? libxl__json_get(v, "disks") : NULL;
    if (!v || !libxl__json_get_string(v, "target") || !arr ||
        !YAJL_IS_ARRAY(arr)) {
        LOG(ERROR, "corrupt backup record '%s'",
            libxl__snapshot_store_where(gc, st, BACKUP_RECORD));
        return ERROR_INVAL;
    }
    s = libxl__json_get_string(v, "mode");
    r->pull = s && !strcmp(s, "pull");
    r->live = libxl__json_get_bool(v, "live", true);
    r->target = GCSTRDUP(libxl__json_get_string(v, "target"));
    r->incremental = GCSTRDUP(libxl__json_get_string(v, "incremental"));
    r->checkpoint = GCSTRDUP(libxl__json_get_string(v, "checkpoint"));
    r->fell_back = libxl__json_get_bool(v, "fell_back", false);
    r->state = state_parse(libxl__json_get_string(v, "state"));
    r->owner = libxl__json_get_integer(v, "owner", 0);
    r->speed = libxl__json_get_integer(v, "speed", 0);
    r->started = libxl__json_get_integer(v, "started", 0);
    r->error = GCSTRDUP(libxl__json_get_string(v, "error"));
    r->cp_made = libxl__json_get_bool(v, "checkpoint_made", false);
    if (libxl__json_get(v, "checkpoint_plan")) {
        const char *why;
        GCNEW(r->cp);
        if (libxl__checkpoint_from_tree(gc, gc,
                                        libxl__json_get(v, "checkpoint_plan"),
                                        r->cp, &why)) {
            LOG(ERROR, "corrupt backup record '%s': %s",
                libxl__snapshot_store_where(gc, st, BACKUP_RECORD), why);
            return ERROR_INVAL;
        }
    }
    GCNEW_ARRAY(r->disks, arr->u.array.len + 1);
    for (i = 0; i < arr->u.array.len; i++) {
        bk_disk *k = &r->disks[r->num_disks];
        d = arr->u.array.values[i];
        k->vdev = GCSTRDUP(libxl__json_get_string(d, "vdev"));
        k->source = GCSTRDUP(libxl__json_get_string(d, "source"));
        k->job = GCSTRDUP(libxl__json_get_string(d, "job"));
        k->node = GCSTRDUP(libxl__json_get_string(d, "node"));
        k->file = GCSTRDUP(libxl__json_get_string(d, "file"));
        if (!k->vdev || !k->source || !k->job || !k->node || !k->file)
            continue;
        s = libxl__json_get_string(d, "source_format");
        if (!s || libxl_disk_format_from_string(s, &k->source_format))
            k->source_format = LIBXL_DISK_FORMAT_QCOW2;
        k->backing = GCSTRDUP(libxl__json_get_string(d, "backing"));
        k->bitmap = GCSTRDUP(libxl__json_get_string(d, "bitmap"));
        k->size = libxl__json_get_integer(d, "size", 0);
        k->offset = libxl__json_get_integer(d, "offset", 0);
        k->len = libxl__json_get_integer(d, "len", 0);
        k->state = state_parse(libxl__json_get_string(d, "state"));
        k->error = GCSTRDUP(libxl__json_get_string(d, "error"));
        r->num_disks++;
    }
    return 0;
}

/* The running backup's disks hold job records (and lose them at the
 * end): snapshot commands leave those disks alone meanwhile. */
static int jobrecs_put(libxl__gc *gc, const libxl__snapshot_store *st,
                       const bk_rec *r)
{
    libxlsnap_blockjob_info info;
    int i, rc;

    for (i = 0; i < r->num_disks; i++) {
        libxlsnap_blockjob_info_init(&info);
        info.id = (char *)r->disks[i].job;
        info.vdev = (char *)r->disks[i].vdev;
        info.type = LIBXLSNAP_BLOCKJOB_TYPE_BACKUP;
        info.live = r->live;
        info.top = (char *)r->disks[i].source;
        info.base = (char *)r->disks[i].file;
        rc = libxl__blockjob_record_put(gc, st, &info,
                                        r->disks[i].source_format);
        if (rc) return rc;
    }
    return 0;
}

static void jobrecs_remove(libxl__gc *gc, const libxl__snapshot_store *st,
                           const bk_rec *r)
{
    int i;
    for (i = 0; i < r->num_disks; i++)
        libxl__blockjob_record_remove(gc, st, r->disks[i].vdev);
}

/* ---------------------------------------------------------------- */
/* the chain of pushed backups (backups.libxl-json) */

/* The image of vdev in the last completed push that made checkpoint
 * cp: the same name and creation time (a checkpoint deleted, then made
 * again under its name, is another one), NULL: none. */
static const char *chain_previous(libxl__gc *gc,
                                  const libxl__snapshot_store *st,
                                  const libxlsnap_checkpoint *cp,
                                  const char *vdev)
{
    char *data;
    yajl_val v, arr, b, disks;
    const char *found = NULL;
    size_t i, j;

    if (libxl__snapshot_store_get(gc, st, BACKUPS_RECORD, &data, NULL))
        return NULL;
    v = libxl__json_parse(gc, data);
    arr = v ? libxl__json_get(v, "backups") : NULL;
    for (i = 0; arr && YAJL_IS_ARRAY(arr) && i < arr->u.array.len; i++) {
        const char *c;
        b = arr->u.array.values[i];
        c = libxl__json_get_string(b, "checkpoint");
        if (!c || strcmp(c, cp->name)) continue;
        if (libxl__json_get_integer(b, "checkpoint_time", -1) !=
                (long long)cp->creation_time ||
            libxl__json_get_integer(b, "checkpoint_nsec", -1) !=
                (long long)cp->creation_nsec)
            continue;
        disks = libxl__json_get(b, "disks");
        for (j = 0; disks && YAJL_IS_ARRAY(disks) &&
                    j < disks->u.array.len; j++) {
            const char *dv = libxl__json_get_string(disks->u.array.values[j],
                                                    "vdev");
            if (dv && !strcmp(dv, vdev))
                found = libxl__json_get_string(disks->u.array.values[j],
                                               "file");
        }
    }
    return GCSTRDUP(found);
}

static int chain_append(libxl__gc *gc, const libxl__snapshot_store *st,
                        const bk_rec *r)
{
    char *data;
    yajl_val v = NULL, arr = NULL, b, disks, d;
    const char *s;
    int i;

    if (!libxl__snapshot_store_get(gc, st, BACKUPS_RECORD, &data, NULL))
        v = libxl__json_parse(gc, data);
    if (v) arr = libxl__json_get(v, "backups");
    if (!v || !YAJL_IS_OBJECT(v) || !arr || !YAJL_IS_ARRAY(arr)) {
        v = NULL;
        arr = libxl__json_add_array(gc, &v, "backups");
    }
    b = libxl__json_append_object(gc, arr);
    libxl__json_add_string(gc, &b, "dir", r->target);
    libxl__json_add_integer(gc, &b, "time", r->started);
    if (r->checkpoint)
        libxl__json_add_string(gc, &b, "checkpoint", r->checkpoint);
    if (r->cp) {
        /* the checkpoint's identity: its name may be reused */
        libxl__json_add_integer(gc, &b, "checkpoint_time",
                                r->cp->creation_time);
        libxl__json_add_integer(gc, &b, "checkpoint_nsec",
                                r->cp->creation_nsec);
    }
    if (r->incremental && !r->fell_back)
        libxl__json_add_string(gc, &b, "incremental", r->incremental);
    disks = libxl__json_add_array(gc, &b, "disks");
    for (i = 0; i < r->num_disks; i++) {
        d = libxl__json_append_object(gc, disks);
        libxl__json_add_string(gc, &d, "vdev", r->disks[i].vdev);
        libxl__json_add_string(gc, &d, "file", r->disks[i].file);
        if (r->disks[i].backing)
            libxl__json_add_string(gc, &d, "backing", r->disks[i].backing);
    }
    s = libxl__json_to_string(gc, v);
    return libxl__snapshot_store_put1(gc, st, BACKUPS_RECORD, s, strlen(s),
                                      XTL_ERROR);
}

/* ---------------------------------------------------------------- */
/* checkpoints (libxl_snapshot_checkpoint.c) */

static int ckpt_list(libxl__gc *gc, libxl__snapshot_op *op,
                     libxl__checkpoint_list *l)
{
    return libxl__checkpoint_load(gc, &op->st, false, l);
}

/*
 * The checkpoints the backup names: the incremental's must exist, and
 * its bitmaps (the union since it) be present and consistent on every
 * disk it covers (else *untrusted_r, why); a disk it does not cover is
 * copied whole.  The new one is planned (r->cp; refused when its name
 * is taken), on the backup's qcow2 disks.
 */
static int ckpt_check(libxl__gc *gc, libxl__snapshot_op *op, bk_rec *r,
                      yajl_val nodes, const char **untrusted_r)
{
    libxl__checkpoint_list l;
    const libxlsnap_checkpoint *from;
    const char **vdevs;
    int i, n = 0, rc;

    *untrusted_r = NULL;
    if (!r->incremental && !r->checkpoint) return 0;
    rc = ckpt_list(gc, op, &l);
    if (rc) return rc;
    if (r->incremental) {
        i = libxl__checkpoint_index(&l, r->incremental);
        if (i < 0) {
            LOG(ERROR, "domain %s has no checkpoint '%s' (see xl "
                "checkpoint-list)", op->d.name,
                libxl__printable(gc, r->incremental));
            return ERROR_INVAL;
        }
        from = r->from = &l.cps[i];
        for (i = 0; i < r->num_disks; i++) {
            bk_disk *k = &r->disks[i];
            const char *why;
            if (!libxl__checkpoint_disk(from, k->vdev)) {
                LOG(WARN, "disk %s is not in checkpoint '%s': it is %s "
                    "whole", k->vdev, r->incremental,
                    r->pull ? "exported with no qemu:dirty-bitmap context, "
                    "to be read" : "copied");
                continue;
            }
            rc = libxl__checkpoint_bitmaps(gc, &l, k->vdev, r->incremental,
                                           NULL, &k->names, &k->num_names);
            if (rc) return rc;
            rc = libxl__disk_bitmaps_probe(gc, op->d.running
                                           ? op->d.qmp_path : NULL,
                                           nodes,
                                           k->vdev, k->source,
                                           k->source_format, &k->db, &why);
            if (rc) {
                LOG(ERROR, "disk %s: cannot read its bitmaps: %s", k->vdev,
                    why);
                return rc;
            }
            why = libxl__checkpoint_union_problem(gc, &k->db, &l,
                                                  r->incremental, NULL);
            if (why && !*untrusted_r)
                *untrusted_r = GCSPRINTF("disk %s: %s", k->vdev, why);
        }
    }
    if (r->checkpoint) {
        GCNEW_ARRAY(vdevs, r->num_disks + 1);
        for (i = 0; i < r->num_disks; i++)
            if (r->disks[i].source_format == LIBXL_DISK_FORMAT_QCOW2)
                vdevs[n++] = r->disks[i].vdev;
        if (!n) {
            LOG(ERROR, "no disk of this backup is qcow2: checkpoint '%s' "
                "needs persistent dirty bitmaps", r->checkpoint);
            return ERROR_INVAL;
        }
        GCNEW(r->cp);
        rc = libxl__checkpoint_plan(gc, &op->d, &l, r->checkpoint,
                                    GCSPRINTF("made by the backup to %s",
                                              r->target),
                                    vdevs, n, r->cp);
        if (rc) return rc;
    }
    return 0;
}

/* The actions that make checkpoint r->cp live, into acts. */
static int ckpt_actions(libxl__gc *gc, libxl__snapshot_op *op,
                        const bk_rec *r, yajl_val nodes, yajl_val acts)
{
    libxl__checkpoint_list l;
    int i, rc;

    rc = ckpt_list(gc, op, &l);
    if (rc) return rc;
    for (i = 0; i < r->cp->num_disks; i++) {
        const libxlsnap_checkpoint_disk *cd = &r->cp->disks[i];
        const char *node = libxl__qmp_node_for_file(gc, nodes, cd->image,
                                                    cd->format);
        if (!node) {
            LOG(ERROR, "disk %s: the running domain has no node for '%s'",
                cd->vdev, cd->image);
            return ERROR_FAIL;
        }
        libxl__checkpoint_live_actions(gc, &l, r->cp, cd->vdev, nodes,
                                       NULL, node, acts);
    }
    return 0;
}

/* Offline, after the copies: the checkpoint's bitmaps made. */
static int ckpt_offline(libxl__gc *gc, libxl__snapshot_op *op,
                        const bk_rec *r)
{
    libxl__checkpoint_list l;
    const char *const **cmds;
    int i, j, n, rc;

    rc = ckpt_list(gc, op, &l);
    if (rc) return rc;
    for (i = 0; i < r->cp->num_disks; i++) {
        libxl__checkpoint_offline_cmds(gc, &l, r->cp, r->cp->disks[i].vdev,
                                       r->cp->disks[i].image, &cmds, &n);
        for (j = 0; j < n; j++) {
            rc = libxl__exec_sync(gc, cmds[j], 60000, NULL, NULL);
            if (rc) return rc;
        }
    }
    return 0;
}

/* After the backup's success: the checkpoint's record. */
static int ckpt_commit(libxl__gc *gc, libxl__snapshot_op *op,
                       const bk_rec *r)
{
    return libxl__checkpoint_save(gc, &op->st, r->cp);
}

/* After its failure: the checkpoint undone (what cannot be is logged). */
static void ckpt_undo(libxl__gc *gc, libxl__snapshot_op *op,
                      const bk_rec *r)
{
    libxl__checkpoint_list l;

    if (ckpt_list(gc, op, &l)) return;
    if (libxl__checkpoint_index(&l, r->cp->name) >= 0) return;
    libxl__checkpoint_undo(gc, &op->d, &l, r->cp);
}

/* ---------------------------------------------------------------- */
/* QEMU side, synchronous steps (each one QMP exchange or a few) */

static int qmp(libxl__gc *gc, const libxl__domain *d, const char *cmd,
               yajl_val args, bool quiet, yajl_val *ret_r)
{
    return libxl__qmp_run_sync(gc, d->qmp_path, cmd, args, 0, quiet, ret_r);
}

/*
 * Cancels the jobs of r QEMU still runs and dismisses them once over:
 * *err_r, the first job's error (NULL: none completed in error), and
 * each disk's state.  ERROR_TIMEDOUT if they do not end in time.
 */
static int jobs_end_sync(libxl__gc *gc, const libxl__domain *d, bk_rec *r,
                         bool cancel)
{
    uint64_t deadline = libxl__now_ms() + CANCEL_WAIT_MS;
    yajl_val jobs, args;
    bool left, sent = false;
    size_t j;
    int i, rc;

    for (;;) {
        jobs = NULL;
        rc = qmp(gc, d, "query-jobs", NULL, true, &jobs);
        if (rc) return rc;
        left = false;
        for (i = 0; i < r->num_disks; i++) {
            bk_disk *k = &r->disks[i];
            yajl_val job = NULL;
            const char *status;
            for (j = 0; jobs && YAJL_IS_ARRAY(jobs) &&
                        j < jobs->u.array.len; j++) {
                const char *id = libxl__json_get_string(
                    jobs->u.array.values[j], "id");
                if (id && !strcmp(id, k->job)) job = jobs->u.array.values[j];
            }
            if (!job) {
                if (!state_final(k->state))
                    k->state = LIBXLSNAP_BLOCKJOB_STATE_FAILED;
                continue;
            }
            status = libxl__json_get_string(job, "status") ?: "";
            k->offset = libxl__json_get_integer(job, "current-progress", 0);
            k->len = libxl__json_get_integer(job, "total-progress", 0);
            args = NULL;
            libxl__json_add_string(gc, &args, "id", k->job);
            if (!strcmp(status, "concluded")) {
                const char *err = libxl__json_get_string(job, "error");
                k->state = err ? (!strcmp(err, "Operation canceled")
                                  ? LIBXLSNAP_BLOCKJOB_STATE_CANCELLED
                                  : LIBXLSNAP_BLOCKJOB_STATE_FAILED)
                               : LIBXLSNAP_BLOCKJOB_STATE_COMPLETED;
                if (err && k->state == LIBXLSNAP_BLOCKJOB_STATE_FAILED)
                    k->error = GCSTRDUP(err);
                qmp(gc, d, "job-dismiss", args, true, NULL);
                continue;
            }
            left = true;
            if (cancel && !sent && strcmp(status, "aborting"))
                qmp(gc, d, "job-cancel", args, true, NULL);
        }
        sent = cancel;
        if (!left) return 0;
        if (libxl__now_ms() > deadline) {
            LOG(ERROR, "the backup's copies did not end within %d s",
                CANCEL_WAIT_MS / 1000);
            return ERROR_TIMEDOUT;
        }
        usleep(20000);
    }
}

/* A pull's exports and NBD server, gone. */
static void pull_stop_sync(libxl__gc *gc, const libxl__domain *d,
                           const bk_rec *r)
{
    uint64_t deadline = libxl__now_ms() + 10000;
    yajl_val args, ex;
    bool left;
    size_t j;
    int i;

    for (i = 0; i < r->num_disks; i++) {
        args = NULL;
        libxl__json_add_string(gc, &args, "id", r->disks[i].job);
        libxl__json_add_string(gc, &args, "mode", "hard");
        qmp(gc, d, "block-export-del", args, true, NULL);
    }
    /* an export goes once its clients are disconnected */
    do {
        ex = NULL;
        left = false;
        if (qmp(gc, d, "query-block-exports", NULL, true, &ex)) break;
        for (j = 0; ex && YAJL_IS_ARRAY(ex) && j < ex->u.array.len; j++) {
            const char *id = libxl__json_get_string(ex->u.array.values[j],
                                                    "id");
            for (i = 0; id && i < r->num_disks; i++)
                if (!strcmp(id, r->disks[i].job)) left = true;
        }
        if (left) usleep(20000);
    } while (left && libxl__now_ms() < deadline);
    qmp(gc, d, "nbd-server-stop", NULL, true, NULL);
}

/* Nodes and temporary bitmaps of r that QEMU has, deleted. */
static void nodes_drop_sync(libxl__gc *gc, const libxl__domain *d,
                            const bk_rec *r)
{
    yajl_val args;
    int i;

    for (i = 0; i < r->num_disks; i++) {
        const bk_disk *k = &r->disks[i];
        if (!r->pull && k->bitmap && k->src_node) {
            args = NULL;
            libxl__json_add_string(gc, &args, "node", k->src_node);
            libxl__json_add_string(gc, &args, "name", k->bitmap);
            qmp(gc, d, "block-dirty-bitmap-remove", args, true, NULL);
        }
        args = NULL;
        libxl__json_add_string(gc, &args, "node-name", k->node);
        qmp(gc, d, "blockdev-del", args, true, NULL);
    }
}

/* The source nodes, and the temporary bitmaps still there (recovery:
 * the record does not keep node names, QEMU may have changed them). */
static void nodes_resolve_sync(libxl__gc *gc, const libxl__domain *d,
                               bk_rec *r)
{
    yajl_val nodes = NULL;
    int i;

    if (qmp(gc, d, "query-named-block-nodes", libxl__qmp_args_flat(gc),
            true, &nodes) || !nodes || !YAJL_IS_ARRAY(nodes))
        return;
    for (i = 0; i < r->num_disks; i++)
        r->disks[i].src_node = libxl__qmp_node_for_file(gc, nodes,
                                    r->disks[i].source,
                                    r->disks[i].source_format);
}

static void files_remove(libxl__gc *gc, const bk_rec *r)
{
    int i;
    for (i = 0; i < r->num_disks; i++)
        if (unlink(r->disks[i].file) && errno != ENOENT)
            LOGE(WARN, "cannot remove '%s'", r->disks[i].file);
}

/*
 * The outcome, under the lock: the jobs are over (dismissed), the
 * nodes gone.  ok: recorded (chain, checkpoint); else undone (images,
 * checkpoint).  The record keeps the final state; the job records go.
 */
static int outcome_record(libxl__gc *gc, libxl__snapshot_op *op, bk_rec *r,
                          bool ok, libxlsnap_blockjob_state fail_state)
{
    int i, rc = 0;

    if (ok && r->cp) {
        rc = ckpt_commit(gc, op, r);
        if (rc) ok = false;
    }
    if (ok && !r->pull && chain_append(gc, &op->st, r))
        /* the backup is whole; only the next one's backing is unknown */
        LOG(WARN, "the backup to %s is not in the list of pushes: an "
            "incremental since %s will have no backing file", r->target,
            r->checkpoint ? r->checkpoint : "its checkpoint");
    if (!ok) {
        if (r->cp && r->cp_made) ckpt_undo(gc, op, r);
        files_remove(gc, r);
    } else if (r->pull) {
        files_remove(gc, r);          /* the fleecing overlays */
    }
    r->state = ok ? LIBXLSNAP_BLOCKJOB_STATE_COMPLETED : fail_state;
    for (i = 0; i < r->num_disks; i++) {
        if (ok) r->disks[i].state = LIBXLSNAP_BLOCKJOB_STATE_COMPLETED;
        else if (!state_final(r->disks[i].state))
            r->disks[i].state = fail_state;
        if (!r->error && r->disks[i].error)
            r->error = GCSPRINTF("disk %s: %s", r->disks[i].vdev,
                                 r->disks[i].error);
    }
    r->owner = 0;
    if (rec_write(gc, &op->st, r)) rc = rc ?: ERROR_FAIL;
    jobrecs_remove(gc, &op->st, r);
    return rc;
}

int libxl__backup_files(libxl__gc *gc, const libxl__snapshot_store *st,
                        const char ***files_r)
{
    bk_rec r;
    int i;

    *files_r = NULL;
    if (rec_read(gc, st, &r) || state_final(r.state)) return 0;
    GCNEW_ARRAY(*files_r, r.num_disks + 1);
    for (i = 0; i < r.num_disks; i++)
        (*files_r)[i] = r.disks[i].file;
    return r.num_disks;
}

/* ---------------------------------------------------------------- */
/* recovery */

static bool owner_alive(long pid)
{
    return pid > 0 && (!kill(pid, 0) || errno == EPERM);
}

int libxl__backup_recover(libxl__gc *gc, libxl__snapshot_op *op)
{
    bk_rec r;
    bool ok = true, running = false, orphan;
    int i, rc;

    rc = rec_read(gc, &op->st, &r);
    if (rc == ERROR_NOTFOUND) return 0;
    if (rc) return rc;
    if (state_final(r.state) || owner_alive(r.owner)) return 0;
    orphan = r.owner != 0;
    if (r.live && op->d.running) {
        /* a push: QEMU's copies still running are left to run; a pull's
         * exports are the user's until backup-end (unless its QEMU is
         * another one, the domain restarted) */
        yajl_val jobs = NULL;
        size_t j;
        if (qmp(gc, &op->d, "query-jobs", NULL, true, &jobs)) return 0;
        for (i = 0; i < r.num_disks; i++)
            for (j = 0; jobs && YAJL_IS_ARRAY(jobs) &&
                        j < jobs->u.array.len; j++) {
                yajl_val jb = jobs->u.array.values[j];
                const char *id = libxl__json_get_string(jb, "id");
                const char *s = libxl__json_get_string(jb, "status");
                if (!id || strcmp(id, r.disks[i].job)) continue;
                /* died just after the transaction: it did start */
                if (r.state == LIBXLSNAP_BLOCKJOB_STATE_NEW)
                    r.state = LIBXLSNAP_BLOCKJOB_STATE_RUNNING;
                if (strcmp(s ?: "", "concluded")) running = true;
            }
        if (running && (!r.pull ||
                        r.state == LIBXLSNAP_BLOCKJOB_STATE_READY))
            return 0;
        nodes_resolve_sync(gc, &op->d, &r);
        rc = jobs_end_sync(gc, &op->d, &r, r.pull);
        if (rc) return rc;
        if (r.pull) pull_stop_sync(gc, &op->d, &r);
        nodes_drop_sync(gc, &op->d, &r);
        for (i = 0; i < r.num_disks; i++)
            if (r.disks[i].state != LIBXLSNAP_BLOCKJOB_STATE_COMPLETED)
                ok = false;
        if (r.pull || r.state == LIBXLSNAP_BLOCKJOB_STATE_NEW) ok = false;
    } else {
        ok = false;
        if (!r.error)
            r.error = r.live ? "the domain's QEMU stopped during the backup"
                             : "its process died during the copy";
    }
    if (!ok && !r.error) r.error = "its process died before the end";
    rc = outcome_record(gc, op, &r, ok, LIBXLSNAP_BLOCKJOB_STATE_FAILED);
    if (rc) return rc;
    if (r.pull && !op->d.running)
        LOG(WARN, "domain %s: the pull backup (%s) ended with its QEMU: "
            "its exports and overlays are gone%s", op->d.name, r.target,
            r.cp ? ", its checkpoint undone" : "");
    else
        LOG(WARN, "domain %s: the backup to %s %s; it %s", op->d.name,
            r.target, orphan ? "outlived its process"
                              : "is over (nobody waited for it)",
            ok ? "completed, and is recorded"
               : "did not complete, and is undone");
    return 0;
}

/* ---------------------------------------------------------------- */
/* the operation */

typedef enum { BK_BEGIN, BK_END } bk_kind;

typedef struct {
    libxl__ao *ao;
    libxl__snapshot_op op;
    bk_kind kind;
    libxlsnap_backup_params p;        /* begin */
    unsigned end_flags;               /* end */
    libxlsnap_progress_how progress;  /* the caller's; zero: none */
    libxlsnap_progress_how jprogress; /* each job's, summed here */
    bk_rec r;
    libxl__blockjob bj;
    int cur;                          /* the disk followed */
    int rc;                           /* the first failure */
    libxlsnap_blockjob_state fail_state;
    bool no_wait;
    /* end, of a push another process waits for: its record polled */
    libxl__snapshot_store st;
    const char *name;
    libxl__ev_time wait;
    libxl__ao_abortable wait_abrt;
    yajl_val nodes;                   /* the domain's QEMU's, at the plan */
    /* the QEMU the copies run in: the domain's, or for an offline
     * incremental a qemu-storage-daemon of ours (NULL: none) */
    const libxl__domain *qd;
    libxl__domain qsd_dom;
    libxl__exec_state qsd;
    libxl__ev_time qsd_poll;
    uint64_t qsd_deadline;
    bool qsd_exited;
    void (*qsd_next)(libxl__egc *egc, void *bs);
    int done_rc;
    bool made_dir;                    /* begin made the target directory */
} bk_state;

static void bk_begun(libxl__egc *egc, libxl__snapshot_op *op, int rc);
static void bk_end_begun(libxl__egc *egc, libxl__snapshot_op *op, int rc);
static void bk_follow_next(libxl__egc *egc, bk_state *bs);
static void bk_job_done(libxl__egc *egc, libxl__blockjob *bj, int rc);
static void bk_offline_next(libxl__egc *egc, bk_state *bs);
static void bk_finish(libxl__egc *egc, bk_state *bs);
static void bk_done(libxl__egc *egc, bk_state *bs, int rc);
static void bk_start(libxl__egc *egc, bk_state *bs);
static void bk_qsd_start(libxl__egc *egc, bk_state *bs);
static void bk_qsd_stop(libxl__egc *egc, bk_state *bs,
                        void (*next)(libxl__egc *egc, void *bs));
static void bk_record(libxl__egc *egc, void *arg);
static void bk_end_wait(libxl__egc *egc, libxl__ev_time *ev, int rc);
static void bk_end_wait_abort(libxl__egc *egc, libxl__ao_abortable *ab,
                              int rc);

static bk_state *bk_create(libxl__ao *ao, bk_kind kind, const char *domain,
                           const libxlsnap_progress_how *progress)
{
    AO_GC;
    bk_state *bs;

    GCNEW(bs);
    bs->ao = ao;
    bs->kind = kind;
    if (progress) bs->progress = *progress;
    libxl__blockjob_init(&bs->bj);
    libxl__ev_time_init(&bs->wait);
    libxl__ao_abortable_init(&bs->wait_abrt);
    libxl__exec_init(&bs->qsd);
    libxl__ev_time_init(&bs->qsd_poll);
    bs->op.ao = ao;
    bs->op.domain = GCSTRDUP(domain);
    bs->op.callback = kind == BK_BEGIN ? bk_begun : bk_end_begun;
    bs->fail_state = LIBXLSNAP_BLOCKJOB_STATE_FAILED;
    return bs;
}

int libxl__backup_nbd_addr(libxl__gc *gc, const char *s, yajl_val *addr_r)
{
    yajl_val addr = NULL, data;
    const char *colon = s ? strrchr(s, ':') : NULL, *host;
    size_t hlen;
    char *end;
    long port;

    if (s && strchr(s, '/')) {
        libxl__json_add_string(gc, &addr, "type", "unix");
        data = libxl__json_add_object(gc, &addr, "data");
        libxl__json_add_string(gc, &data, "path", s);
        *addr_r = addr;
        return 0;
    }
    if (!colon || colon == s) goto bad;
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || errno || port <= 0 || port > 65535) goto bad;
    host = s;
    hlen = colon - s;
    if (host[0] == '[') {
        /* [IPv6]:PORT */
        if (hlen < 3 || host[hlen - 1] != ']') goto bad;
        host++;
        hlen -= 2;
    } else if (memchr(host, ':', hlen)) {
        goto bad;                     /* an IPv6 address needs [] */
    }
    libxl__json_add_string(gc, &addr, "type", "inet");
    data = libxl__json_add_object(gc, &addr, "data");
    libxl__json_add_string(gc, &data, "host",
                           GCSPRINTF("%.*s", (int)hlen, host));
    libxl__json_add_string(gc, &data, "port", colon + 1);
    *addr_r = addr;
    return 0;
 bad:
    LOG(ERROR, "invalid NBD address '%s' (a unix socket path with a '/', "
        "HOST:PORT or [IPv6]:PORT)", s ? libxl__printable(gc, s) : "");
    return ERROR_INVAL;
}

int libxlsnap_backup_begin(libxlsnap_ctx *ctx, const char *domain,
                           const libxlsnap_backup_params *params,
                           const libxlsnap_progress_how *progress,
                           const libxl_asyncop_how *ao_how)
{
    if (ARGS_MISSING(ctx, domain, params) ||
        FLAGS_UNKNOWN(ctx, params->flags, LIBXLSNAP_BACKUP_FALLBACK_FULL |
                      LIBXLSNAP_BACKUP_NO_WAIT))
        return ERROR_INVAL;
    AO_CREATE(ctx, ao_how);
    EGC_INIT(ctx);
    bk_state *bs;
    yajl_val addr;
    int i, rc = ERROR_INVAL;

    bs = bk_create(ao, BK_BEGIN, domain, progress);
    bs->p = *params;
    if (!params->target_dir == !params->nbd) {
        LOG(ERROR, "a backup needs a target directory (push) or an NBD "
            "address (pull), not %s", params->nbd ? "both" : "neither");
        goto out;
    }
    if (params->nbd && libxl__backup_nbd_addr(gc, params->nbd, &addr)) goto out;
    if (params->nbd && (params->flags & LIBXLSNAP_BACKUP_NO_WAIT)) {
        LOG(ERROR, "a pull backup returns once its exports are up: "
            "LIBXLSNAP_BACKUP_NO_WAIT is for a push");
        goto out;
    }
    if (params->nbd && params->bandwidth) {
        LOG(ERROR, "a pull backup's speed is its NBD client's: no "
            "bandwidth limit");
        goto out;
    }
    if (params->target_dir && !*params->target_dir) {
        LOG(ERROR, "an empty target directory");
        goto out;
    }
    if (params->incremental && params->checkpoint &&
        !strcmp(params->incremental, params->checkpoint)) {
        LOG(ERROR, "the new checkpoint cannot be named as the one the "
            "incremental starts from ('%s')", params->checkpoint);
        goto out;
    }
    bs->p.target_dir = params->target_dir
        ? libxl__abs_path(gc, params->target_dir) : NULL;
    bs->p.nbd = params->nbd && strchr(params->nbd, '/')
        ? libxl__abs_path(gc, params->nbd) : GCSTRDUP(params->nbd);
    bs->p.incremental = GCSTRDUP(params->incremental);
    bs->p.checkpoint = GCSTRDUP(params->checkpoint);
    if (params->num_disks) {
        const char **dk;
        GCNEW_ARRAY(dk, params->num_disks);
        for (i = 0; i < params->num_disks; i++) {
            if (!params->disks[i] || !*params->disks[i] ||
                strchr(params->disks[i], '/')) {
                LOG(ERROR, "invalid disk '%s'", params->disks[i]
                    ? libxl__printable(gc, params->disks[i]) : "");
                goto out;
            }
            dk[i] = GCSTRDUP(params->disks[i]);
        }
        bs->p.disks = dk;
    }
    bs->no_wait = params->flags & LIBXLSNAP_BACKUP_NO_WAIT;
    libxl__snapshot_op_begin(egc, &bs->op);
    EGC_FREE;
    return AO_INPROGRESS;
 out:
    EGC_FREE;
    return AO_CREATE_FAIL(rc);
}

static bool disk_wanted(const bk_state *bs, const char *vdev)
{
    int i;
    if (!bs->p.num_disks) return true;
    for (i = 0; i < bs->p.num_disks; i++)
        if (!strcmp(bs->p.disks[i], vdev)) return true;
    return false;
}

/* The plan: the disks, their images and names; refusals (bad input)
 * come here, before anything is made. */
static int bk_plan(libxl__gc *gc, bk_state *bs)
{
    libxl__snapshot_op *op = &bs->op;
    bk_rec *r = &bs->r;
    const char *untrusted;
    size_t j;
    int i, rc;

    /* QEMU's nodes, once (NULL: offline, or not known) */
    if (op->d.running &&
        (qmp(gc, &op->d, "query-named-block-nodes", libxl__qmp_args_flat(gc),
             true, &bs->nodes) || !YAJL_IS_ARRAY(bs->nodes)))
        bs->nodes = NULL;

    for (i = 0; i < bs->p.num_disks; i++) {
        if (!libxl__domain_disk(&op->d, bs->p.disks[i])) {
            LOG(ERROR, "domain %s has no disk '%s'", op->d.name,
                bs->p.disks[i]);
            return ERROR_INVAL;
        }
    }
    r->pull = !!bs->p.nbd;
    r->live = op->d.running;
    r->target = r->pull ? bs->p.nbd : bs->p.target_dir;
    r->incremental = bs->p.incremental;
    r->checkpoint = bs->p.checkpoint;
    r->state = LIBXLSNAP_BLOCKJOB_STATE_NEW;
    r->owner = bs->no_wait ? 0 : getpid();
    r->speed = bs->p.bandwidth;
    r->started = time(NULL);
    if (!r->live && bs->no_wait) {
        LOG(ERROR, "domain %s is shut off: its backup runs in this command "
            "(no --async)", op->d.name);
        return ERROR_INVAL;
    }
    if (r->pull && !r->live) {
        LOG(ERROR, "domain %s is shut off: a pull backup exports a running "
            "domain's disks (use --target for a push)", op->d.name);
        return ERROR_INVAL;
    }
    GCNEW_ARRAY(r->disks, op->d.num_disks + 1);
    for (i = 0; i < op->d.num_disks; i++) {
        const libxl_device_disk *dk = &op->d.disks[i];
        bk_disk *k;
        yajl_val info;
        char *err = NULL;

        if (!disk_wanted(bs, dk->vdev)) continue;
        if (!dk->pdev_path || !libxl__image_is_file(dk->pdev_path)) {
            LOG(ERROR, "disk %s of domain %s is not an image file: it "
                "cannot be backed up here (use --disk)", dk->vdev,
                op->d.name);
            return ERROR_INVAL;
        }
        k = &r->disks[r->num_disks++];
        k->vdev = GCSTRDUP(dk->vdev);
        k->source = GCSTRDUP(dk->pdev_path);
        k->source_format = dk->format == LIBXL_DISK_FORMAT_RAW
            ? LIBXL_DISK_FORMAT_RAW : LIBXL_DISK_FORMAT_QCOW2;
        k->job = GCSPRINTF("libxl-backup-%s", dk->vdev);
        k->node = GCSPRINTF("libxl-backup-%s", dk->vdev);
        k->state = LIBXLSNAP_BLOCKJOB_STATE_NEW;
        if (r->pull)
            k->file = GCSPRINTF("%s/%s.backup-%s.qcow2",
                                libxl__path_dirname(gc, k->source),
                                libxl__path_stem(gc, k->source), dk->vdev);
        else
            k->file = GCSPRINTF("%s/%s.qcow2", r->target, dk->vdev);
        if (libxl__file_exists(k->file)) {
            LOG(ERROR, "'%s' exists already%s", k->file, r->pull
                ? " (a pull backup's fleecing overlay: remove it if no "
                  "backup runs)" : ": a backup writes a new image");
            return ERROR_INVAL;
        }
        /* its size: QEMU's view when it runs (no qemu-img to start) */
        info = NULL;
        for (j = 0; bs->nodes && j < bs->nodes->u.array.len; j++) {
            yajl_val n = bs->nodes->u.array.values[j];
            const char *f = libxl__json_get_string(n, "file");
            const char *drv = libxl__json_get_string(n, "drv");
            if (f && drv && !strcmp(f, k->source) &&
                !strcmp(drv, libxl__disk_format_qemu(k->source_format)))
                info = libxl__json_get(n, "image");
        }
        if (!info)
            info = libxl__qemu_img_info_sync(gc, k->source, false, &err);
        if (!info) {
            LOG(ERROR, "disk %s: cannot read '%s': %s", dk->vdev, k->source,
                err ? err : "qemu-img info failed");
            return ERROR_FAIL;
        }
        k->size = libxl__json_get_integer(info, "virtual-size", 0);
        k->len = k->size;
    }
    if (!r->num_disks) {
        LOG(ERROR, "domain %s has no disk to back up", op->d.name);
        return ERROR_INVAL;
    }
    rc = ckpt_check(gc, op, r, bs->nodes, &untrusted);
    if (rc) return rc;
    /* a push incremental builds on the image pushed at this very
     * checkpoint: without it, it would be a backup of nothing */
    for (i = 0; !untrusted && r->incremental && !r->pull &&
                i < r->num_disks; i++) {
        bk_disk *k = &r->disks[i];
        if (!k->num_names) continue;  /* not in the checkpoint: whole */
        k->backing = chain_previous(gc, &op->st, r->from, k->vdev);
        if (!k->backing)
            untrusted = GCSPRINTF("no push backup of disk %s was made with "
                                  "it", k->vdev);
        else if (!libxl__file_exists(k->backing))
            untrusted = GCSPRINTF("'%s', the backup of disk %s made with "
                                  "it, is gone", k->backing, k->vdev);
    }
    if (untrusted && !(bs->p.flags & LIBXLSNAP_BACKUP_FALLBACK_FULL)) {
        LOG(ERROR, "cannot back up domain %s incrementally since '%s': %s "
            "(--fallback-full makes a full backup instead)", op->d.name,
            r->incremental, untrusted);
        return ERROR_INVAL;
    }
    if (untrusted) {
        LOG(WARN, "cannot back up incrementally since checkpoint '%s' (%s): "
            "a full backup instead", r->incremental, untrusted);
        r->fell_back = true;
    }
    for (i = 0; r->incremental && i < r->num_disks; i++) {
        bk_disk *k = &r->disks[i];
        if (r->fell_back) {
            k->backing = NULL;
            continue;
        }
        if (!k->num_names) continue;  /* not in the checkpoint: whole */
        k->bitmap = r->pull ? r->incremental : TMP_BITMAP;
        k->len = 0;                   /* known once QEMU has the job */
    }
    return 0;
}

static void bk_begun(libxl__egc *egc, libxl__snapshot_op *op, int rc)
{
    bk_state *bs = CONTAINER_OF(op, bk_state, op);
    STATE_AO_GC(bs->ao);
    bk_rec old;
    struct stat st;
    int i;

    if (rc) goto out;
    rc = rec_read(gc, &op->st, &old);
    if (rc && rc != ERROR_NOTFOUND) goto out;
    if (!rc && !state_final(old.state)) {
        LOG(ERROR, "a backup of domain %s is running already (to %s): "
            "see xl backup-info, end it with xl backup-end", op->d.name,
            old.target);
        rc = ERROR_DEVICE_EXISTS;
        goto out;
    }
    rc = libxl__blockjob_check_idle(gc, &op->st, &op->d);
    if (rc) goto out;
    if (bs->p.target_dir) {
        if (stat(bs->p.target_dir, &st)) {
            rc = libxl__mkdir_p(gc, bs->p.target_dir, 0755);
            if (rc) goto out;
            bs->made_dir = true;
        } else if (!S_ISDIR(st.st_mode)) {
            LOG(ERROR, "'%s' is not a directory", bs->p.target_dir);
            rc = ERROR_INVAL;
            goto out;
        }
    }
    rc = bk_plan(gc, bs);
    if (rc) goto out;

    if (!bs->r.live && (!bs->r.incremental || bs->r.fell_back)) {
        /* offline, full: each disk in turn, qemu-img convert */
        bs->r.state = LIBXLSNAP_BLOCKJOB_STATE_RUNNING;
        rc = rec_write(gc, &op->st, &bs->r);
        if (!rc) rc = jobrecs_put(gc, &op->st, &bs->r);
        if (rc) goto fail;
        libxl__fault_point("backup");
        bs->cur = 0;
        bk_offline_next(egc, bs);
        return;
    }

    /* the images, the records, then QEMU */
    for (i = 0; i < bs->r.num_disks; i++) {
        bk_disk *k = &bs->r.disks[i];
        libxl__flexarray *a = libxl__flexarray_new(gc);
        libxl__flexarray_append(a, CTX->qemu_img);
        libxl__flexarray_append_pair(a, "create", "-q");
        libxl__flexarray_append_pair(a, "-f", "qcow2");
        /* the backing file is not opened: its size is given (a
         * running QEMU holds the disk's image) */
        libxl__flexarray_append(a, "-u");
        if (bs->r.pull) {
            libxl__flexarray_append_pair(a, "-b", k->source);
            libxl__flexarray_append_pair(a, "-F",
                libxl__disk_format_qemu(k->source_format));
        } else if (k->backing) {
            libxl__flexarray_append_pair(a, "-b", k->backing);
            libxl__flexarray_append_pair(a, "-F", "qcow2");
        }
        libxl__flexarray_append(a, k->file);
        libxl__flexarray_append(a, GCSPRINTF("%"PRIu64, k->size));
        rc = libxl__exec_sync(gc, a->data, 60000, NULL, NULL);
        if (rc) {
            bs->r.num_disks = i;      /* those made so far are removed */
            files_remove(gc, &bs->r);
            goto out;
        }
    }
    rc = rec_write(gc, &op->st, &bs->r);
    if (!rc) rc = jobrecs_put(gc, &op->st, &bs->r);
    if (rc) goto fail;
    libxl__fault_point("backup");
    if (!bs->r.live) {
        /* offline incremental: a QEMU of ours on the images */
        bk_qsd_start(egc, bs);
        return;
    }
    bs->qd = &op->d;
    bk_start(egc, bs);
    return;

 fail:
    /* nothing copied, or not kept: undone */
    if (!bs->r.error)
        bs->r.error = "the backup could not start";
    outcome_record(gc, op, &bs->r, false, LIBXLSNAP_BLOCKJOB_STATE_FAILED);
 out:
    bk_done(egc, bs, rc);
}

/*
 * The copies started in bs->qd, all disks in one transaction: the
 * targets added, the bitmaps, the checkpoint (live), every copy; then
 * a push is followed, a pull exported.
 */
static void bk_start(libxl__egc *egc, bk_state *bs)
{
    STATE_AO_GC(bs->ao);
    libxl__snapshot_op *op = &bs->op;
    const libxl__domain *qd = bs->qd;
    int i, rc;
    {
        yajl_val nodes = NULL, args, acts = NULL, tr = NULL, act, data, srcs;
        bool xperf = true;

        rc = qmp(gc, qd, "query-named-block-nodes",
                 libxl__qmp_args_flat(gc), false, &nodes);
        if (rc) goto fail;
        for (i = 0; i < bs->r.num_disks; i++) {
            bk_disk *k = &bs->r.disks[i];
            k->src_node = libxl__qmp_node_for_file(gc, nodes, k->source,
                                                   k->source_format);
            if (!k->src_node) {
                LOG(ERROR, "disk %s: the running domain has no node for "
                    "'%s'", k->vdev, k->source);
                rc = ERROR_FAIL;
                goto fail;
            }
        }
        for (i = 0; i < bs->r.num_disks; i++) {
            bk_disk *k = &bs->r.disks[i];
            yajl_val file;
            args = NULL;
            libxl__json_add_string(gc, &args, "driver", "qcow2");
            libxl__json_add_string(gc, &args, "node-name", k->node);
            file = libxl__json_add_object(gc, &args, "file");
            libxl__json_add_string(gc, &file, "driver", "file");
            libxl__json_add_string(gc, &file, "filename", k->file);
            if (bs->r.pull)
                libxl__json_add_string(gc, &args, "backing", k->src_node);
            else
                libxl__json_add(gc, &args, "backing",
                                libxl__json_new_null(gc));
            rc = qmp(gc, qd, "blockdev-add", args, false, NULL);
            if (rc) goto fail_nodes;
        }
        /* one transaction: the bitmaps, the checkpoint, every copy */
     transaction:
        tr = NULL;
        acts = libxl__json_add_array(gc, &tr, "actions");
        for (i = 0; i < bs->r.num_disks; i++) {
            bk_disk *k = &bs->r.disks[i];
            const char *bnode = bs->r.pull ? k->node : k->src_node;
            if (!k->bitmap) continue;
            act = libxl__json_append_object(gc, acts);
            libxl__json_add_string(gc, &act, "type", "block-dirty-bitmap-add");
            data = libxl__json_add_object(gc, &act, "data");
            libxl__json_add_string(gc, &data, "node", bnode);
            libxl__json_add_string(gc, &data, "name", k->bitmap);
            libxl__json_add_bool(gc, &data, "persistent", false);
            libxl__json_add_bool(gc, &data, "disabled", true);
            act = libxl__json_append_object(gc, acts);
            libxl__json_add_string(gc, &act, "type",
                                   "block-dirty-bitmap-merge");
            data = libxl__json_add_object(gc, &act, "data");
            libxl__json_add_string(gc, &data, "node", bnode);
            libxl__json_add_string(gc, &data, "target", k->bitmap);
            srcs = libxl__checkpoint_merge_sources(gc, &k->db,
                                                   k->names, k->num_names);
            if (!srcs) {
                LOG(ERROR, "disk %s: no bitmap since checkpoint '%s' is "
                    "in QEMU", k->vdev, bs->r.incremental);
                rc = ERROR_FAIL;
                goto fail_nodes;
            }
            libxl__json_add(gc, &data, "bitmaps", srcs);
        }
        if (bs->r.cp && bs->r.live) {
            rc = ckpt_actions(gc, op, &bs->r, nodes, acts);
            if (rc) goto fail_nodes;
        }
        for (i = 0; i < bs->r.num_disks; i++) {
            bk_disk *k = &bs->r.disks[i];
            act = libxl__json_append_object(gc, acts);
            libxl__json_add_string(gc, &act, "type", "blockdev-backup");
            data = libxl__json_add_object(gc, &act, "data");
            libxl__json_add_string(gc, &data, "job-id", k->job);
            libxl__json_add_string(gc, &data, "device", k->src_node);
            libxl__json_add_string(gc, &data, "target", k->node);
            libxl__json_add_bool(gc, &data, "auto-dismiss", false);
            if (bs->r.pull) {
                libxl__json_add_string(gc, &data, "sync", "none");
            } else if (k->bitmap) {
                libxl__json_add_string(gc, &data, "sync", "bitmap");
                libxl__json_add_string(gc, &data, "bitmap", k->bitmap);
                libxl__json_add_string(gc, &data, "bitmap-mode", "never");
            } else {
                libxl__json_add_string(gc, &data, "sync", "full");
            }
            if (bs->r.speed)
                libxl__json_add_uint64(gc, &data, "speed", bs->r.speed);
            if (xperf) {
                /*
                 * copy_file_range between the images: 3x QEMU 7.2's
                 * default read/write loop, as fast as qemu-img convert
                 * (bench/backup.sh); an unstable option, so a QEMU
                 * that refuses it gets the transaction without it
                 */
                yajl_val xp = libxl__json_add_object(gc, &data, "x-perf");
                libxl__json_add_bool(gc, &xp, "use-copy-range", true);
                /* a copy_file_range goes up to 16 MiB at once, past a
                 * bandwidth limit: in MiB steps, the limit holds */
                if (bs->r.speed)
                    libxl__json_add_uint64(gc, &xp, "max-chunk", 1 << 20);
            }
        }
        /* a crash from here on: the checkpoint's bitmaps may be there */
        bs->r.cp_made = bs->r.cp && bs->r.live;
        if (bs->r.cp_made) {
            rc = rec_write(gc, &op->st, &bs->r);
            if (rc) goto fail_nodes;
        }
        rc = qmp(gc, qd, "transaction", tr, xperf, NULL);
        if (rc && xperf) {
            xperf = false;
            goto transaction;
        }
        if (rc) {
            /* refused: QEMU has undone every action */
            bs->r.cp_made = false;
            goto fail_nodes;
        }
        for (i = 0; i < bs->r.num_disks; i++)
            bs->r.disks[i].state = LIBXLSNAP_BLOCKJOB_STATE_RUNNING;
        bs->r.state = LIBXLSNAP_BLOCKJOB_STATE_RUNNING;
        libxl__fault_point("backup");

        if (bs->r.pull) {
            yajl_val addr = NULL, bms;
            libxl__backup_nbd_addr(gc, bs->r.target, &addr);
            args = NULL;
            libxl__json_add(gc, &args, "addr", addr);
            rc = qmp(gc, qd, "nbd-server-start", args, false, NULL);
            if (rc) goto fail_jobs;
            for (i = 0; i < bs->r.num_disks; i++) {
                bk_disk *k = &bs->r.disks[i];
                args = NULL;
                libxl__json_add_string(gc, &args, "type", "nbd");
                libxl__json_add_string(gc, &args, "id", k->job);
                libxl__json_add_string(gc, &args, "node-name", k->node);
                libxl__json_add_string(gc, &args, "name", k->vdev);
                libxl__json_add_bool(gc, &args, "writable", false);
                if (k->bitmap) {
                    bms = libxl__json_add_array(gc, &args, "bitmaps");
                    libxl__json_append_string(gc, bms, k->bitmap);
                }
                rc = qmp(gc, qd, "block-export-add", args, false, NULL);
                if (rc) {
                    pull_stop_sync(gc, qd, &bs->r);
                    goto fail_jobs;
                }
            }
            bs->r.state = LIBXLSNAP_BLOCKJOB_STATE_READY;
            bs->r.owner = 0;
            for (i = 0; i < bs->r.num_disks; i++)
                bs->r.disks[i].state = LIBXLSNAP_BLOCKJOB_STATE_READY;
            rc = rec_write(gc, &op->st, &bs->r);
            if (rc) {
                pull_stop_sync(gc, qd, &bs->r);
                goto fail_jobs;
            }
            bk_done(egc, bs, 0);
            return;
        }
        rc = rec_write(gc, &op->st, &bs->r);
        if (rc) goto fail_jobs;
        if (bs->no_wait) {
            bk_done(egc, bs, 0);
            return;
        }
        bs->cur = 0;
        bk_follow_next(egc, bs);
        return;

     fail_jobs:
        jobs_end_sync(gc, qd, &bs->r, true);
     fail_nodes:
        nodes_drop_sync(gc, qd, &bs->r);
        goto fail;
    }


 fail:
    /* nothing copied, or not kept: undone */
    if (!bs->r.error)
        bs->r.error = "the backup could not start";
    outcome_record(gc, op, &bs->r, false, LIBXLSNAP_BLOCKJOB_STATE_FAILED);
    bk_done(egc, bs, rc);
}

/* ---------------------------------------------------------------- */
/* following the copies */

static void bk_job_progress(const libxlsnap_progress *p, void *for_callback)
{
    bk_state *bs = for_callback;
    libxlsnap_blockjob_info sum;
    int i;

    if (!p->job || bs->cur >= bs->r.num_disks) return;
    bs->r.disks[bs->cur].offset = p->job->offset;
    bs->r.disks[bs->cur].len = p->job->len;
    if (!bs->progress.callback) return;
    sum = *p->job;
    sum.id = (char *)"libxl-backup";
    sum.offset = sum.len = 0;
    for (i = 0; i < bs->r.num_disks; i++) {
        sum.offset += bs->r.disks[i].offset;
        sum.len += bs->r.disks[i].len;
    }
    /* the backup's end is its last copy's */
    if (state_final(sum.state) && bs->cur + 1 < bs->r.num_disks)
        sum.state = LIBXLSNAP_BLOCKJOB_STATE_RUNNING;
    libxl__progress_report_job(&bs->progress, &sum);
}

/* The engine's job for the disk followed (bs->cur). */
static void bk_job_setup(bk_state *bs, bool live)
{
    bk_disk *k = &bs->r.disks[bs->cur];

    libxl__blockjob_init(&bs->bj);
    bs->bj.ao = bs->ao;
    bs->bj.d = bs->qd ? bs->qd : &bs->op.d;
    bs->bj.info.id = (char *)k->job;
    bs->bj.info.vdev = (char *)k->vdev;
    bs->bj.info.type = LIBXLSNAP_BLOCKJOB_TYPE_BACKUP;
    bs->bj.info.live = live;
    bs->bj.info.top = (char *)k->source;
    bs->bj.info.base = (char *)k->file;
    bs->bj.info.speed = bs->r.speed;
    bs->bj.info.len = live ? k->len : k->size;
    bs->bj.top_format = k->source_format;
    bs->jprogress.callback = bk_job_progress;
    bs->jprogress.for_callback = bs;
    bs->bj.progress = &bs->jprogress;
    bs->bj.callback = bk_job_done;
    /* its failure is said once, by the backup's last line */
    bs->bj.quiet_failure = true;
}

static void bk_follow_next(libxl__egc *egc, bk_state *bs)
{
    /* adopted (backup-end): the copies its process saw end */
    while (bs->cur < bs->r.num_disks &&
           state_final(bs->r.disks[bs->cur].state)) {
        if (bs->r.disks[bs->cur].state != LIBXLSNAP_BLOCKJOB_STATE_COMPLETED
            && !bs->rc)
            bs->rc = ERROR_FAIL;
        bs->cur++;
    }
    if (bs->cur >= bs->r.num_disks || bs->rc) {
        /* all over, or a copy failed or was cancelled: the rest are
         * cancelled there */
        bk_finish(egc, bs);
        return;
    }
    bk_job_setup(bs, true);
    libxl__blockjob_follow(egc, &bs->bj);
}

static void bk_job_done(libxl__egc *egc, libxl__blockjob *bj, int rc)
{
    bk_state *bs = CONTAINER_OF(bj, bk_state, bj);
    STATE_AO_GC(bs->ao);
    bk_disk *k = &bs->r.disks[bs->cur];

    k->state = bj->info.state;
    if (bj->info.error) k->error = GCSTRDUP(bj->info.error);
    if (!rc && k->state == LIBXLSNAP_BLOCKJOB_STATE_COMPLETED) {
        k->offset = k->len = bj->info.len;
    } else if (!bs->rc) {
        bs->rc = rc ? rc : ERROR_FAIL;
        if (rc == ERROR_ABORTED ||
            k->state == LIBXLSNAP_BLOCKJOB_STATE_CANCELLED)
            bs->fail_state = LIBXLSNAP_BLOCKJOB_STATE_CANCELLED;
        else if (k->error && !bs->r.error)
            /* the first failure is the reason (the others' copies are
             * cancelled, or fail the same way after it) */
            bs->r.error = GCSPRINTF("disk %s: %s", k->vdev, k->error);
    }
    /* QEMU has forgotten the job: its outcome is only here now */
    rec_write(gc, &bs->op.st, &bs->r);
    bs->cur++;
    if (bj->info.live) bk_follow_next(egc, bs);
    else bk_offline_next(egc, bs);
}

/* offline: qemu-img convert of each disk in turn */
static void bk_offline_next(libxl__egc *egc, bk_state *bs)
{
    if (bs->cur >= bs->r.num_disks || bs->rc) {
        bk_finish(egc, bs);
        return;
    }
    bk_job_setup(bs, false);
    libxl__blockjob_start(egc, &bs->bj);
}

/* Every copy followed (or one failed): QEMU's side cleaned, the outcome
 * recorded. */
static void bk_finish(libxl__egc *egc, bk_state *bs)
{
    STATE_AO_GC(bs->ao);
    libxl__snapshot_op *op = &bs->op;
    bool ok = !bs->rc;
    int rc = bs->rc, i;

    if (bs->qd && !bs->qsd_exited) {
        /* the copies not followed: cancelled after a failure, else
         * (concluded already) dismissed */
        int erc = jobs_end_sync(gc, bs->qd, &bs->r, !ok);
        if (erc && !bs->r.live) {
            /* our storage daemon: its copies end with it */
            ok = false;
            rc = rc ? rc : erc;
        } else if (erc && qmp(gc, bs->qd, "query-status", NULL, true,
                              NULL)) {
            /* the domain's QEMU is gone, and the copies with it: undone
             * now, as offline */
            op->d.running = false;
            ok = false;
            rc = rc ? rc : erc;
            if (!bs->r.error)
                bs->r.error = "the domain's QEMU stopped during the backup";
        } else if (erc) {
            /* still there: left for the next command (adoption) */
            bs->r.owner = 0;
            rec_write(gc, &op->st, &bs->r);
            bk_done(egc, bs, rc ? rc : erc);
            return;
        }
        if (bs->r.pull) pull_stop_sync(gc, bs->qd, &bs->r);
        for (i = 0; ok && i < bs->r.num_disks; i++)
            if (bs->r.disks[i].state != LIBXLSNAP_BLOCKJOB_STATE_COMPLETED &&
                !bs->r.pull) {
                ok = false;
                rc = ERROR_FAIL;
            }
        if (!erc) nodes_drop_sync(gc, bs->qd, &bs->r);
    }
    if (!ok && !rc) rc = ERROR_FAIL;
    bs->rc = rc;
    if (libxl__exec_running(&bs->qsd)) {
        /* the daemon goes first: it has the images open */
        bk_qsd_stop(egc, bs, bk_record);
        return;
    }
    bk_record(egc, bs);
}

/* The outcome recorded (the copies are over, QEMU's side clean). */
static void bk_record(libxl__egc *egc, void *arg)
{
    bk_state *bs = arg;
    STATE_AO_GC(bs->ao);
    libxl__snapshot_op *op = &bs->op;
    bool ok = !bs->rc;
    int rc = bs->rc, i;

    if (ok && !bs->r.live && bs->r.cp) {
        /* offline: nothing wrote since the copies, the same instant */
        bs->r.cp_made = true;
        if (ckpt_offline(gc, op, &bs->r)) {
            ok = false;
            rc = ERROR_FAIL;
            bs->r.error = GCSPRINTF("checkpoint '%s' could not be made",
                                    bs->r.cp->name);
        }
    }
    libxl__fault_point("backup");
    if (!ok && !bs->r.error) {
        for (i = 0; !bs->r.error && i < bs->r.num_disks; i++)
            if (bs->r.disks[i].error)
                bs->r.error = GCSPRINTF("disk %s: %s", bs->r.disks[i].vdev,
                                        bs->r.disks[i].error);
        if (!bs->r.error)
            bs->r.error = bs->fail_state ==
                LIBXLSNAP_BLOCKJOB_STATE_CANCELLED ? "cancelled"
                                                   : "a copy failed";
    }
    if (outcome_record(gc, op, &bs->r, ok, bs->fail_state) && ok)
        rc = ERROR_FAIL;
    if (!ok && rc != ERROR_ABORTED)
        LOG(ERROR, "the backup of domain %s failed: %s; what it made is "
            "removed", op->d.name, bs->r.error);
    else if (!ok && !(bs->end_flags & LIBXLSNAP_BACKUP_END_ABORT))
        LOG(ERROR, "the backup of domain %s was cancelled; what it made is "
            "removed", op->d.name);
    bk_done(egc, bs, rc);
}

static void bk_done_now(libxl__egc *egc, void *arg)
{
    bk_state *bs = arg;
    STATE_AO_GC(bs->ao);

    libxl__ev_time_deregister(gc, &bs->qsd_poll);
    /* a push that did not end well leaves no empty directory of ours
     * (rmdir: only when empty) */
    if (bs->done_rc && bs->made_dir)
        (void)rmdir(bs->p.target_dir);
    libxl__snapshot_op_end(gc, &bs->op);
    libxl__ao_complete(egc, ao, bs->done_rc);
}

static void bk_done(libxl__egc *egc, bk_state *bs, int rc)
{
    bs->done_rc = rc;
    if (libxl__exec_running(&bs->qsd)) {
        bk_qsd_stop(egc, bs, bk_done_now);
        return;
    }
    bk_done_now(egc, bs);
}

/* ---------------------------------------------------------------- */
/* offline incremental: a qemu-storage-daemon on the images */

/*
 * A shut-off domain's images have no QEMU: one of ours, a
 * qemu-storage-daemon (a child that dies with this process, its
 * monitor a socket in the run dir), opens each disk's chain read-only
 * (its bitmaps loaded as they are), and the copies run there as they
 * would in the domain's QEMU.  It quits once they are over.
 */
#define QSD_START_MS 10000
#define QSD_POLL_MS 20

static void bk_qsd_poll(libxl__egc *egc, libxl__ev_time *ev, int rc);
static void bk_qsd_exited(libxl__egc *egc, libxl__exec_state *es, int rc,
                          int status);

static void bk_qsd_start(libxl__egc *egc, bk_state *bs)
{
    STATE_AO_GC(bs->ao);
    libxl__flexarray *a = libxl__flexarray_new(gc);
    char uuid[LIBXL_UUID_FMTLEN + 1];
    const char *sock, *c;
    char *esc, *e;
    int rc;

    rc = libxl__mkdir_p(gc, CTX->run_dir, 0700);
    if (rc) goto out;
    snprintf(uuid, sizeof(uuid), LIBXL_UUID_FMT,
             LIBXL_UUID_BYTES(bs->op.d.uuid));
    sock = GCSPRINTF("%s/backup-%s.qmp", CTX->run_dir, uuid);
    unlink(sock);
    /* a ',' in an option's value is written ',,' */
    esc = e = libxl__gc_zalloc(gc, 2 * strlen(sock) + 1);
    for (c = sock; *c; c++) {
        *e++ = *c;
        if (*c == ',') *e++ = ',';
    }
    libxl__flexarray_append(a, "qemu-storage-daemon");
    libxl__flexarray_append_pair(a, "--chardev",
        GCSPRINTF("socket,id=m,path=%s,server=on,wait=off", esc));
    libxl__flexarray_append_pair(a, "--monitor", "chardev=m");
    bs->qsd_dom = bs->op.d;
    bs->qsd_dom.qmp_path = (char *)sock;
    bs->qsd_dom.running = true;
    bs->qsd_dom.domid = 0;
    bs->qsd.ao = ao;
    bs->qsd.what = "qemu-storage-daemon";
    bs->qsd.args = a->data;
    bs->qsd.unabortable = true;       /* an abort cancels the copies */
    bs->qsd.callback = bk_qsd_exited;
    rc = libxl__exec_start(egc, &bs->qsd);
    if (rc) goto out;
    bs->qsd_deadline = libxl__now_ms() + QSD_START_MS;
    libxl__ev_time_register_rel(gc, &bs->qsd_poll, bk_qsd_poll, QSD_POLL_MS);
    return;
 out:
    if (!bs->r.error) bs->r.error = "qemu-storage-daemon did not start";
    outcome_record(gc, &bs->op, &bs->r, false,
                   LIBXLSNAP_BLOCKJOB_STATE_FAILED);
    bk_done(egc, bs, rc);
}

/* Its monitor answers: each disk's chain opened, the bitmaps probed
 * there (their nodes), then the copies as live. */
static void bk_qsd_ready(libxl__egc *egc, bk_state *bs)
{
    STATE_AO_GC(bs->ao);
    const libxl__domain *qd = &bs->qsd_dom;
    yajl_val args, file, nodes = NULL;
    const char *why;
    int i, rc;

    for (i = 0; i < bs->r.num_disks; i++) {
        bk_disk *k = &bs->r.disks[i];
        args = NULL;
        libxl__json_add_string(gc, &args, "driver",
                               libxl__disk_format_qemu(k->source_format));
        libxl__json_add_string(gc, &args, "node-name",
                               GCSPRINTF("libxl-source-%s", k->vdev));
        libxl__json_add_bool(gc, &args, "read-only", true);
        file = libxl__json_add_object(gc, &args, "file");
        libxl__json_add_string(gc, &file, "driver", "file");
        libxl__json_add_string(gc, &file, "filename", k->source);
        rc = qmp(gc, qd, "blockdev-add", args, false, NULL);
        if (rc) goto out;
    }
    rc = qmp(gc, qd, "query-named-block-nodes", libxl__qmp_args_flat(gc),
             false, &nodes);
    if (rc) goto out;
    for (i = 0; i < bs->r.num_disks; i++) {
        bk_disk *k = &bs->r.disks[i];
        if (!k->bitmap) continue;
        rc = libxl__disk_bitmaps_probe(gc, qd->qmp_path, nodes, k->vdev,
                                       k->source, k->source_format, &k->db,
                                       &why);
        if (rc) {
            LOG(ERROR, "disk %s: cannot read its bitmaps: %s", k->vdev, why);
            goto out;
        }
    }
    bs->qd = qd;
    bk_start(egc, bs);
    return;
 out:
    if (!bs->r.error) bs->r.error = "its images could not be opened";
    outcome_record(gc, &bs->op, &bs->r, false,
                   LIBXLSNAP_BLOCKJOB_STATE_FAILED);
    bk_done(egc, bs, rc);
}

static void bk_qsd_poll(libxl__egc *egc, libxl__ev_time *ev, int rc)
{
    bk_state *bs = CONTAINER_OF(ev, bk_state, qsd_poll);
    STATE_AO_GC(bs->ao);

    if (bs->qsd_exited) return;       /* bk_qsd_exited says */
    if (libxl__file_exists(bs->qsd_dom.qmp_path) &&
        !qmp(gc, &bs->qsd_dom, "query-version", NULL, true, NULL)) {
        bk_qsd_ready(egc, bs);
        return;
    }
    if (bs->qsd_exited) return;
    if (libxl__now_ms() > bs->qsd_deadline) {
        LOG(ERROR, "qemu-storage-daemon did not answer within %d s",
            QSD_START_MS / 1000);
        kill(bs->qsd.pid, SIGKILL);   /* bk_qsd_exited follows */
        return;
    }
    libxl__ev_time_register_rel(gc, &bs->qsd_poll, bk_qsd_poll, QSD_POLL_MS);
}

/* Asks the daemon to quit (SIGTERM if it does not listen); next once
 * it has exited. */
static void bk_qsd_stop(libxl__egc *egc, bk_state *bs,
                        void (*next)(libxl__egc *egc, void *bs))
{
    STATE_AO_GC(bs->ao);

    bs->qsd_next = next;
    libxl__ev_time_deregister(gc, &bs->qsd_poll);
    if (qmp(gc, &bs->qsd_dom, "quit", NULL, true, NULL) &&
        libxl__exec_running(&bs->qsd))
        kill(bs->qsd.pid, SIGTERM);
}

static void bk_qsd_exited(libxl__egc *egc, libxl__exec_state *es, int rc,
                          int status)
{
    bk_state *bs = CONTAINER_OF(es, bk_state, qsd);
    STATE_AO_GC(bs->ao);
    void (*next)(libxl__egc *egc, void *bs) = bs->qsd_next;

    bs->qsd_exited = true;
    unlink(bs->qsd_dom.qmp_path);
    libxl__ev_time_deregister(gc, &bs->qsd_poll);
    if (next) {
        bs->qsd_next = NULL;
        next(egc, bs);
        return;
    }
    if (!bs->qd) {
        /* before it was ready */
        if (!bs->r.error)
            bs->r.error = GCSPRINTF("qemu-storage-daemon failed: %s",
                es->err && *es->err ? libxl__tool_error_line(gc, es->err)
                                    : "it exited");
        LOG(ERROR, "the backup of domain %s failed: %s", bs->op.d.name,
            bs->r.error);
        outcome_record(gc, &bs->op, &bs->r, false,
                       LIBXLSNAP_BLOCKJOB_STATE_FAILED);
        bk_done(egc, bs, ERROR_FAIL);
    }
    /* during the copies: the job being followed fails, and says so */
}

/* ---------------------------------------------------------------- */
/* end */

int libxlsnap_backup_end(libxlsnap_ctx *ctx, const char *domain,
                         unsigned flags,
                         const libxlsnap_progress_how *progress,
                         const libxl_asyncop_how *ao_how)
{
    if (ARGS_MISSING(ctx, domain) ||
        FLAGS_UNKNOWN(ctx, flags, LIBXLSNAP_BACKUP_END_ABORT))
        return ERROR_INVAL;
    AO_CREATE(ctx, ao_how);
    EGC_INIT(ctx);
    bk_state *bs;
    libxl__domain d;
    libxl__snapshot_store st;
    bk_rec r;
    int rc, i;

    bs = bk_create(ao, BK_END, domain, progress);
    bs->end_flags = flags;
    /*
     * --abort of a push another process waits for: the cancel is sent
     * here, and that process undoes it (it holds the lock until then).
     */
    rc = libxl__domain_identify(gc, domain, &d, NULL);
    if (rc) goto out;
    rc = libxl__snapshot_store_open(gc, CTX->state_dir, &d.uuid, &st);
    if (rc) goto out;
    if ((flags & LIBXLSNAP_BACKUP_END_ABORT) && !rec_read(gc, &st, &r) &&
        !r.pull && r.live && d.running && !state_final(r.state) &&
        owner_alive(r.owner) && r.owner != getpid()) {
        for (i = 0; i < r.num_disks; i++) {
            yajl_val args = NULL;
            libxl__json_add_string(gc, &args, "id", r.disks[i].job);
            qmp(gc, &d, "job-cancel", args, true, NULL);
        }
    }
    if (!rec_read(gc, &st, &r) && !state_final(r.state) &&
        owner_alive(r.owner) && r.owner != getpid()) {
        /* its process holds the lock until it has recorded the end */
        bs->st = st;
        bs->name = GCSTRDUP(d.name);
        bs->wait_abrt.ao = ao;
        bs->wait_abrt.callback = bk_end_wait_abort;
        rc = libxl__ao_abortable_register(&bs->wait_abrt);
        if (rc) goto out;
        libxl__ev_time_register_rel(gc, &bs->wait, bk_end_wait, 0);
        EGC_FREE;
        return AO_INPROGRESS;
    }
    libxl__snapshot_op_begin(egc, &bs->op);
    EGC_FREE;
    return AO_INPROGRESS;
 out:
    EGC_FREE;
    return AO_CREATE_FAIL(rc);
}

/*
 * A push another process waits for: its record is read every
 * END_WAIT_MS until that process has recorded the end (it holds the
 * domain's lock meanwhile); ao_abort stops the wait, not the backup.
 */
#define END_WAIT_MS 200

static int end_report(libxl__gc *gc, const char *name, const bk_rec *r,
                      bool asked);

static void bk_end_waited(libxl__egc *egc, bk_state *bs, int rc)
{
    STATE_AO_GC(bs->ao);

    libxl__ev_time_deregister(gc, &bs->wait);
    libxl__ao_abortable_deregister(&bs->wait_abrt);
    libxl__ao_complete(egc, ao, rc);
}

static void bk_end_wait(libxl__egc *egc, libxl__ev_time *ev, int rc)
{
    bk_state *bs = CONTAINER_OF(ev, bk_state, wait);
    STATE_AO_GC(bs->ao);
    bk_rec r;

    rc = rec_read(gc, &bs->st, &r);
    if (rc == ERROR_NOTFOUND) {
        LOG(ERROR, "the backup record of domain %s is gone", bs->name);
        goto out;
    }
    if (rc) goto out;
    if (state_final(r.state)) {
        rc = end_report(gc, bs->name, &r,
                        bs->end_flags & LIBXLSNAP_BACKUP_END_ABORT);
        goto out;
    }
    if (!owner_alive(r.owner)) {
        /* it died: the next command adopts the backup, this one too */
        libxl__snapshot_op_begin(egc, &bs->op);
        libxl__ev_time_deregister(gc, &bs->wait);
        libxl__ao_abortable_deregister(&bs->wait_abrt);
        return;
    }
    libxl__ev_time_register_rel(gc, &bs->wait, bk_end_wait, END_WAIT_MS);
    return;
 out:
    bk_end_waited(egc, bs, rc);
}

static void bk_end_wait_abort(libxl__egc *egc, libxl__ao_abortable *ab,
                              int rc)
{
    bk_state *bs = CONTAINER_OF(ab, bk_state, wait_abrt);
    STATE_AO_GC(bs->ao);

    LOG(ERROR, "domain %s: no longer waiting; the backup goes on (its "
        "process waits for it)", bs->name);
    bk_end_waited(egc, bs, ERROR_ABORTED);
}

/* asked: the caller cancelled it (--abort), and says so itself */
static int end_report(libxl__gc *gc, const char *name, const bk_rec *r,
                      bool asked)
{
    switch (r->state) {
    case LIBXLSNAP_BLOCKJOB_STATE_COMPLETED:
        return 0;
    case LIBXLSNAP_BLOCKJOB_STATE_CANCELLED:
        if (!asked) LOG(ERROR, "the backup of domain %s to %s was cancelled", name,
            r->target);
        return ERROR_ABORTED;
    default:
        LOG(ERROR, "the backup of domain %s to %s failed: %s", name,
            r->target, r->error ? r->error : "unknown");
        return ERROR_FAIL;
    }
}

static void bk_end_begun(libxl__egc *egc, libxl__snapshot_op *op, int rc)
{
    bk_state *bs = CONTAINER_OF(op, bk_state, op);
    STATE_AO_GC(bs->ao);
    bool abort_it = bs->end_flags & LIBXLSNAP_BACKUP_END_ABORT;

    if (rc) goto out;
    rc = rec_read(gc, &op->st, &bs->r);
    if (rc == ERROR_NOTFOUND) {
        LOG(ERROR, "domain %s has no backup", op->d.name);
        goto out;
    }
    if (rc) goto out;
    if (!state_final(bs->r.state) && owner_alive(bs->r.owner) &&
        bs->r.owner != getpid()) {
        /* cannot be: its process holds the lock while it waits */
        LOG(ERROR, "the backup of domain %s is followed by process %ld",
            op->d.name, bs->r.owner);
        rc = ERROR_LOCK_FAIL;
        goto out;
    }
    if (state_final(bs->r.state)) {
        rc = end_report(gc, op->d.name, &bs->r, false);
        goto out;
    }
    if (!bs->r.live || !op->d.running) {
        /* recovery has undone it already unless it could not */
        LOG(ERROR, "the backup of domain %s cannot be ended: its QEMU is "
            "gone", op->d.name);
        rc = ERROR_FAIL;
        goto out;
    }
    nodes_resolve_sync(gc, &op->d, &bs->r);
    bs->qd = &op->d;
    bs->r.owner = getpid();
    rc = rec_write(gc, &op->st, &bs->r);
    if (rc) goto out;
    if (bs->r.pull) {
        if (abort_it) {
            bs->rc = ERROR_ABORTED;
            bs->fail_state = LIBXLSNAP_BLOCKJOB_STATE_CANCELLED;
            bs->r.error = "ended with --abort";
        }
        /* the fleecing jobs run until cancelled: that is their end */
        {
            libxl__snapshot_op *o = op;
            int i, erc;
            pull_stop_sync(gc, &o->d, &bs->r);
            erc = jobs_end_sync(gc, &o->d, &bs->r, true);
            for (i = 0; i < bs->r.num_disks; i++) {
                if (bs->r.disks[i].state ==
                    LIBXLSNAP_BLOCKJOB_STATE_FAILED && !bs->rc) {
                    bs->rc = ERROR_FAIL;
                }
            }
            if (erc && !bs->rc) bs->rc = erc;
            nodes_drop_sync(gc, &o->d, &bs->r);
            rc = outcome_record(gc, o, &bs->r, !bs->rc, bs->fail_state);
            if (!rc) rc = bs->rc;
            if (rc && rc != ERROR_ABORTED)
                LOG(ERROR, "the pull backup of domain %s failed: %s",
                    o->d.name, bs->r.error ? bs->r.error : "unknown");
            goto out;
        }
    }
    if (abort_it) {
        bs->rc = ERROR_ABORTED;
        bs->fail_state = LIBXLSNAP_BLOCKJOB_STATE_CANCELLED;
        bs->r.error = "cancelled (xl backup-end --abort)";
        bk_finish(egc, bs);
        return;
    }
    bs->cur = 0;
    bk_follow_next(egc, bs);
    return;
 out:
    bk_done(egc, bs, rc);
}

/* ---------------------------------------------------------------- */
/* info */

void libxlsnap_backup_info_init(libxlsnap_backup_info *p)
{
    if (!p) return;
    memset(p, 0, sizeof(*p));
}

void libxlsnap_backup_info_dispose(libxlsnap_backup_info *p)
{
    int i;

    if (!p) return;
    free(p->target);
    free(p->incremental);
    free(p->checkpoint);
    free(p->error);
    for (i = 0; i < p->num_jobs; i++)
        libxlsnap_blockjob_info_dispose(&p->jobs[i]);
    free(p->jobs);
    for (i = 0; i < p->num_full_disks; i++)
        free(p->full_disks[i]);
    free(p->full_disks);
    libxlsnap_backup_info_init(p);
}

int libxlsnap_backup_get(libxlsnap_ctx *ctx, const char *domain,
                         libxlsnap_backup_info *info_r)
{
    if (ARGS_MISSING(ctx, domain, info_r)) return ERROR_INVAL;
    GC_INIT(ctx);
    libxl__domain d;
    libxl__snapshot_store st;
    bk_rec r;
    yajl_val jobs = NULL;
    size_t j;
    int i, rc;

    libxlsnap_backup_info_init(info_r);
    rc = libxl__domain_identify(gc, domain, &d, NULL);
    if (rc) goto out;
    rc = libxl__snapshot_store_open(gc, CTX->state_dir, &d.uuid, &st);
    if (rc) goto out;
    rc = rec_read(gc, &st, &r);
    if (rc == ERROR_NOTFOUND)
        LOG(ERROR, "domain %s has no backup", d.name);
    if (rc) goto out;
    if (!state_final(r.state) && r.live && d.running)
        qmp(gc, &d, "query-jobs", NULL, true, &jobs);
    info_r->pull = r.pull;
    info_r->live = r.live;
    info_r->target = libxl__gc_strdup(NOGC, r.target);
    info_r->incremental = libxl__gc_strdup(NOGC, r.incremental);
    info_r->checkpoint = libxl__gc_strdup(NOGC, r.checkpoint);
    info_r->fell_back = r.fell_back;
    info_r->state = r.state;
    info_r->error = libxl__gc_strdup(NOGC, r.error);
    info_r->jobs = calloc(r.num_disks + 1, sizeof(*info_r->jobs));
    if (!info_r->jobs) abort();
    info_r->num_jobs = r.num_disks;
    info_r->full_disks = calloc(r.num_disks + 1,
                                sizeof(*info_r->full_disks));
    if (!info_r->full_disks) abort();
    for (i = 0; i < r.num_disks; i++)
        if (!r.disks[i].bitmap)
            info_r->full_disks[info_r->num_full_disks++] =
                libxl__gc_strdup(NOGC, r.disks[i].vdev);
    for (i = 0; i < r.num_disks; i++) {
        libxlsnap_blockjob_info *ji = &info_r->jobs[i];
        const bk_disk *k = &r.disks[i];
        ji->id = libxl__gc_strdup(NOGC, k->job);
        ji->vdev = libxl__gc_strdup(NOGC, k->vdev);
        ji->type = LIBXLSNAP_BLOCKJOB_TYPE_BACKUP;
        ji->state = k->state;
        ji->live = r.live;
        ji->offset = k->offset;
        ji->len = k->len;
        ji->speed = r.speed;
        ji->top = libxl__gc_strdup(NOGC, k->source);
        ji->base = libxl__gc_strdup(NOGC, r.pull ? k->vdev : k->file);
        ji->error = libxl__gc_strdup(NOGC, k->error);
        for (j = 0; jobs && YAJL_IS_ARRAY(jobs) && j < jobs->u.array.len;
             j++) {
            yajl_val jb = jobs->u.array.values[j];
            const char *id = libxl__json_get_string(jb, "id");
            if (!id || strcmp(id, k->job)) continue;
            libxl__blockjob_state_from_qemu(
                libxl__json_get_string(jb, "status"), &ji->state);
            if (r.pull && ji->state == LIBXLSNAP_BLOCKJOB_STATE_RUNNING)
                ji->state = LIBXLSNAP_BLOCKJOB_STATE_READY;
            ji->offset = libxl__json_get_integer(jb, "current-progress", 0);
            ji->len = libxl__json_get_integer(jb, "total-progress", 0);
        }
        info_r->offset += ji->offset;
        info_r->len += ji->len;
    }
 out:
    if (rc) libxlsnap_backup_info_dispose(info_r);
    GC_FREE;
    return rc;
}

char *libxlsnap_backup_info_to_json(libxlsnap_ctx *ctx,
                                    const libxlsnap_backup_info *p)
{
    if (ARGS_MISSING_CTX_OPTIONAL(ctx, p)) return NULL;
    yajl_gen g = yajl_gen_alloc(NULL);
    const unsigned char *buf;
    size_t len;
    char *s = NULL;
    int i;

    if (!g) return NULL;
    yajl_gen_config(g, yajl_gen_beautify, 1);
    yajl_gen_map_open(g);
    libxl__yajl_gen_opt_str(g, "mode", p->pull ? "pull" : "push");
    libxl__yajl_gen_str(g, "live"); yajl_gen_bool(g, p->live);
    libxl__yajl_gen_opt_str(g, "target", p->target);
    libxl__yajl_gen_opt_str(g, "incremental", p->incremental);
    libxl__yajl_gen_opt_str(g, "checkpoint", p->checkpoint);
    libxl__yajl_gen_str(g, "fell_back"); yajl_gen_bool(g, p->fell_back);
    libxl__yajl_gen_opt_str(g, "state",
                            libxlsnap_blockjob_state_to_string(p->state));
    libxl__yajl_gen_str(g, "offset");
    yajl_gen_integer(g, (long long)p->offset);
    libxl__yajl_gen_str(g, "len");
    yajl_gen_integer(g, (long long)p->len);
    libxl__yajl_gen_opt_str(g, "error", p->error);
    libxl__yajl_gen_str(g, "full_disks");
    yajl_gen_array_open(g);
    for (i = 0; i < p->num_full_disks; i++)
        libxl__yajl_gen_str(g, p->full_disks[i]);
    yajl_gen_array_close(g);
    libxl__yajl_gen_str(g, "jobs");
    yajl_gen_array_open(g);
    for (i = 0; i < p->num_jobs; i++)
        if (libxl__blockjob_info_gen_json(g, &p->jobs[i])) goto out;
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok)
        s = strndup((const char *)buf, len);
 out:
    yajl_gen_free(g);
    return s;
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
