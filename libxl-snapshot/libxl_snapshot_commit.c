/*
 * libxl_snapshot_commit.c - block commit, block stream and block copy,
 * and what they mean for the snapshot records
 *
 * The job itself runs in libxl_snapshot_blockjob.c; this file plans
 * it, refuses what would break a chain, and records the outcome.
 *
 * Planning: the disk's chain comes from `qemu-img info
 * --backing-chain` of its active image, top first.  --top defaults to
 * the active image, --base to the bottom of the chain, --shallow to
 * top's backing.  A commit changes base and drops the images above it
 * up to top; if any other image we know of (a snapshot's image, another
 * branch of the tree) is built on one of them, the commit is refused
 * before anything is touched: no branch is ever corrupted.
 *
 * The job record: blockjob-<vdev>.libxl-json in the domain's record
 * directory, written before the job starts and removed once its
 * outcome is recorded.  It lets `xl block-job` find a job started by
 * another process (--async, or a READY active commit left waiting) and
 * finish recording it, and the next command adopt a job whose process
 * died (libxl__blockjob_recover).  While it exists, snapshot commands
 * leave that disk alone.
 *
 * Recording a completed commit (merged = the images from top down to
 * base, base excluded):
 *  - an active commit that pivoted: base is the disk's active image;
 *  - a snapshot whose image was top of an intermediate commit now
 *    lives in base (same data): its record points there;
 *  - a snapshot whose image was base or another merged image has lost
 *    its data: its record is removed (children re-parented), and said,
 *    and what only it held goes too: its memory image, its internal
 *    snapshots in the other disks' images, its LVM snapshot volumes.
 *    A qcow2 snapshot inside base itself is not lost: writes to base
 *    copy its clusters first;
 *  - with --delete, the merged images are removed, after the records.
 * Offline, the image above top is rebased onto base (qemu-img commit
 * leaves it pointing at top); live, QEMU does that itself.
 * A stream changes no snapshot's data: only the job record goes.
 * A commit that stops before it completes (abort, failure, its process
 * dead) may have written part of top into base: the snapshots whose
 * data was base's are dropped, as for a commit that merged it away.
 * snapshot-delete's merge into a snapshot's image, when it stops so,
 * drops the records the same way (libxl__commit_stopped_records).
 *
 * Steps: libxlsnap_block_commit / libxlsnap_block_stream -> bc_begun ->
 *   bc_chain -> bc_others -> bc_job_done ->
 *   [bc_after_next <-> bc_after_done] -> bc_finalize
 *   [-> bc_merged_removed] -> bc_recorded -> bc_done.
 * With --delete, the merged images are removed by a forked child (a
 * libxl__exec step with child_fn): the unlink of an image of hundreds
 * of MiB takes 100 ms and more, which the caller's loop must not wait
 * for.  The step cannot be aborted (the commit is recorded by then;
 * it only frees space), and the job record goes only once it is over,
 * as before.
 *
 * Dirty bitmaps (as libvirt): each valid bitmap of top is added to base
 * if missing, then merged from each image from top down to base,
 * stopping at the first that lacks it; live in one transaction just
 * before the job finishes, offline with qemu-img bitmap after the
 * commit.  Base's copy then records as top's did (enabled or
 * disabled): a checkpoint's older bitmaps must not start recording
 * again in the new active image, nor take a later commit's writes.  A
 * stream merges the bitmaps of the images it drops into the active
 * image before it starts (libxl__bitmaps_fold_image).
 * Job control (abort, pivot) of a job another process started:
 *   blockjob_control -> bc_begun (lock tried once) -> bc_job_done ...
 *
 * Block copy (libxlsnap_block_copy): the active image into dest, one
 * more job of the same record and engine (type copy: the record's top
 * is the active image, its base dest, "created" when this job made
 * dest).  Planned in bc_copy_plan: refused, before anything is written,
 * when dest exists (unless reused, then of the format asked, on the
 * active image's backing when shallow, as large), is an image of the
 * domain's chains or of a snapshot (libxl__image_same: a link to one is
 * it; a symbolic link dest is recorded as its target), or the disk is in
 * a job.  Then the
 * job record, then dest made (live: qemu-img create; offline qemu-img
 * convert makes it), then the job.  A copy changes no snapshot's data,
 * and no image of the old chain is ever removed, so no snapshot record
 * changes: only a pivot is recorded (copy_outcome): the domain record's
 * active image of the disk is dest (copied_from: the image it left, so
 * that snapshot-check knows it is kept on purpose), and the driver's
 * records follow (set_active_disk, as after an external snapshot).
 * What the domain no longer uses is said, and which of it snapshots
 * still need.  A copy that did not end (abort, timeout, failure, its
 * process dead with the outcome unknown) removes dest if it made it;
 * --finish keeps it, a consistent point-in-time copy.  A file dest's
 * identity (st_dev, st_ino) is in the job record once made: no pivot
 * goes to a dest removed or replaced since (the job is left at READY,
 * its at_ready "stop"), and only that file is ever removed as ours.
 * Steps: libxlsnap_block_copy -> bc_begun -> bc_chain -> bc_copy_plan
 *   [-> bc_copy_created] -> bc_job_done -> bc_finalize -> bc_recorded
 *   -> bc_done.
 * Crash points (XL_SNAPSHOT_FAULT=blockcopy:N): 1 the job record
 * written, 2 dest made (live), 3 the job under way, 4 the pivot
 * recorded, the job record not yet removed.
 */
#include "libxl_snapshot_internal.h"

#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char *id, *vdev;
    libxlsnap_blockjob_type type;
    bool live, del;
    libxl__blockjob_at_ready at_ready;
    char *top, *base, *above;         /* above: image whose backing is top */
    libxl_disk_format top_format, base_format;
    char **merged;
    int num_merged;
    long owner;                       /* pid of the process running it */
    char *host;                       /* its host (the RADOS store's
                                         records only; NULL: this one) */
    /* copy: base is dest */
    bool created, shallow;            /* dest made by the job; sync top */
    char *node;                       /* live: dest's node-name */
    char *backing;                    /* the active image's backing */
    libxl_disk_format backing_format;
    const char **old_chain;           /* the chain at the start, top first
                                         (not in the record: NULL after
                                         a restart, then read again) */
    int num_old_chain;
    uint64_t dest_dev, dest_ino;      /* copy: a file dest's identity once
                                         made (0: unknown) */
} jobrec;

typedef enum { BC_COMMIT, BC_STREAM, BC_CONTROL, BC_COPY } bc_kind;

typedef struct libxl__block_commit_state {
    libxl__ao *ao;
    libxl__snapshot_op op;
    bc_kind kind;
    const char *vdev;
    libxlsnap_block_commit_params p;
    const char *stream_base;
    libxlsnap_block_copy_params cp;   /* copy */
    const char *dest;                 /* copy: absolute */
    libxl__blockjob_verb verb;        /* control */
    bool verb_sent;                   /* control: QEMU got it */
    libxlsnap_progress_how progress;   /* a copy; zero: none */
    libxl__qemu_img_info_state qi;    /* the chain */
    libxl__qemu_img_info_state qo;    /* other known images */
    yajl_val chain;
    int itop, ibase;
    libxl_device_disk *disk;
    jobrec jr;
    libxl__blockjob bj;
    libxl__exec_state es;
    const char *const **cmds;         /* offline, after the commit */
    int num_cmds, next;
    bool completed;                   /* else: stopped after it started */
    int final_rc;
    /* within another operation's ao (libxl__block_commit_start) */
    libxl__block_commit_cb *callback;
    void *for_callback;
    /* control of another process's offline job: waited for on the loop */
    libxl__snapshot_store ost;
    libxl__ev_time opoll;
    libxl__ao_abortable oabrt;
    uint64_t odeadline;
} libxl__block_commit_state;

static void bc_begun(libxl__egc *egc, libxl__snapshot_op *op, int rc);
static void bc_chain(libxl__egc *egc, libxl__qemu_img_info_state *qi,
                     int rc);
static void bc_others(libxl__egc *egc, libxl__qemu_img_info_state *qo,
                      int rc);
static void bc_job_done(libxl__egc *egc, libxl__blockjob *bj, int rc);
static void queue_after_commit(libxl__gc *gc,
                               libxl__block_commit_state *bcs);
static void bc_after_next(libxl__egc *egc, libxl__block_commit_state *bcs);
static void bc_after_done(libxl__egc *egc, libxl__exec_state *es, int rc,
                          int status);
static void bc_finalize(libxl__egc *egc, libxl__block_commit_state *bcs);
static int follow_outcome(libxl__gc *gc, libxl__snapshot_op *op,
                          const jobrec *jr, bool done,
                          const char **dropped_r);
static int query_job(libxl__gc *gc, const libxl__domain *d, const char *id,
                     yajl_val *job_r);
static void bc_done(libxl__egc *egc, libxl__block_commit_state *bcs,
                    int rc);
static void bc_copy_plan(libxl__egc *egc, libxl__block_commit_state *bcs);
static int copy_outcome(libxl__gc *gc, libxl__snapshot_op *op,
                        const jobrec *jr, bool done, bool pivot);

/* ---------------------------------------------------------------- */
/* job records */

static char *jobrec_name(libxl__gc *gc, const char *vdev)
{
    return GCSPRINTF("blockjob-%s.libxl-json", vdev);
}

static const char *this_host(libxl__gc *gc)
{
    char host[256] = "";

    gethostname(host, sizeof(host) - 1);
    return GCSTRDUP(host);
}

/*
 * Is the process that runs the job alive?  A pid means something on
 * its own host only: a job of another host (the RADOS store, shared by
 * a pool) is taken as alive, its host's to finish.
 */
static bool jobrec_owner_alive(libxl__gc *gc, const jobrec *jr)
{
    if (jr->host && strcmp(jr->host, this_host(gc))) return true;
    return jr->owner > 0 && (!kill(jr->owner, 0) || errno == EPERM);
}

static const char *at_ready_str(libxl__blockjob_at_ready a)
{
    return a == LIBXL__BLOCKJOB_AT_READY_PIVOT ? "pivot"
        : a == LIBXL__BLOCKJOB_AT_READY_CANCEL ? "keep-overlay" : "stop";
}

static int jobrec_write(libxl__gc *gc, const libxl__snapshot_store *st,
                        const jobrec *jr)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    const unsigned char *buf;
    size_t len;
    int i, rc;

    yajl_gen_config(g, yajl_gen_beautify, 1);
    yajl_gen_map_open(g);
    libxl__yajl_gen_opt_str(g, "id", jr->id);
    libxl__yajl_gen_opt_str(g, "vdev", jr->vdev);
    libxl__yajl_gen_opt_str(g, "type",
                            libxlsnap_blockjob_type_to_string(jr->type));
    libxl__yajl_gen_str(g, "live"); yajl_gen_bool(g, jr->live);
    libxl__yajl_gen_str(g, "owner"); yajl_gen_integer(g, getpid());
    if (!libxl__snapshot_store_is_dir(gc))   /* records other hosts read */
        libxl__yajl_gen_opt_str(g, "host", this_host(gc));
    libxl__yajl_gen_str(g, "delete"); yajl_gen_bool(g, jr->del);
    libxl__yajl_gen_opt_str(g, "at_ready", at_ready_str(jr->at_ready));
    libxl__yajl_gen_opt_str(g, "top", jr->top);
    libxl__yajl_gen_opt_str(g, "top_format",
                            libxl_disk_format_to_string(jr->top_format));
    libxl__yajl_gen_opt_str(g, "base", jr->base);
    libxl__yajl_gen_opt_str(g, "base_format",
                            libxl_disk_format_to_string(jr->base_format));
    libxl__yajl_gen_opt_str(g, "above", jr->above);
    if (jr->type == LIBXLSNAP_BLOCKJOB_TYPE_COPY) {
        libxl__yajl_gen_str(g, "created"); yajl_gen_bool(g, jr->created);
        libxl__yajl_gen_str(g, "shallow"); yajl_gen_bool(g, jr->shallow);
        libxl__yajl_gen_opt_str(g, "node", jr->node);
        libxl__yajl_gen_opt_str(g, "backing", jr->backing);
        libxl__yajl_gen_opt_str(g, "backing_format",
                        libxl_disk_format_to_string(jr->backing_format));
        if (jr->dest_ino) {
            libxl__yajl_gen_str(g, "dest_dev");
            yajl_gen_integer(g, (long long)jr->dest_dev);
            libxl__yajl_gen_str(g, "dest_ino");
            yajl_gen_integer(g, (long long)jr->dest_ino);
        }
    }
    libxl__yajl_gen_str(g, "merged");
    yajl_gen_array_open(g);
    for (i = 0; i < jr->num_merged; i++)
        libxl__yajl_gen_str(g, jr->merged[i]);
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    yajl_gen_get_buf(g, &buf, &len);
    rc = libxl__snapshot_store_put1(gc, st, jobrec_name(gc, jr->vdev),
                                    (const char *)buf, len, XTL_ERROR);
    yajl_gen_free(g);
    return rc;
}

/* ERROR_NOTFOUND if vdev has no job record. */
static int jobrec_read(libxl__gc *gc, const libxl__snapshot_store *st,
                       const char *vdev, jobrec *jr)
{
    char *data;
    const char *s;
    yajl_val v, m;
    size_t i;
    int rc;

    memset(jr, 0, sizeof(*jr));
    rc = libxl__snapshot_store_get(gc, st, jobrec_name(gc, vdev), &data,
                                   NULL);
    if (rc) return rc;
    v = libxl__json_parse(gc, data);
    if (!v || !libxl__json_get_string(v, "id") ||
        !libxl__json_get_string(v, "top")) {
        LOG(ERROR, "corrupt block job record '%s'",
            libxl__snapshot_store_where(gc, st, jobrec_name(gc, vdev)));
        return ERROR_INVAL;
    }
    jr->id = GCSTRDUP(libxl__json_get_string(v, "id"));
    jr->vdev = GCSTRDUP(vdev);
    s = libxl__json_get_string(v, "type");
    jr->type = s && !strcmp(s, "stream") ? LIBXLSNAP_BLOCKJOB_TYPE_STREAM
        : s && !strcmp(s, "active-commit")
        ? LIBXLSNAP_BLOCKJOB_TYPE_ACTIVE_COMMIT
        : s && !strcmp(s, "copy") ? LIBXLSNAP_BLOCKJOB_TYPE_COPY
        : s && !strcmp(s, "backup") ? LIBXLSNAP_BLOCKJOB_TYPE_BACKUP
        : LIBXLSNAP_BLOCKJOB_TYPE_COMMIT;
    jr->live = libxl__json_get_bool(v, "live", false);
    jr->owner = libxl__json_get_integer(v, "owner", 0);
    jr->host = GCSTRDUP(libxl__json_get_string(v, "host"));
    jr->del = libxl__json_get_bool(v, "delete", false);
    s = libxl__json_get_string(v, "at_ready");
    jr->at_ready = s && !strcmp(s, "pivot") ? LIBXL__BLOCKJOB_AT_READY_PIVOT
        : s && !strcmp(s, "keep-overlay") ? LIBXL__BLOCKJOB_AT_READY_CANCEL
        : LIBXL__BLOCKJOB_AT_READY_STOP;
    jr->top = GCSTRDUP(libxl__json_get_string(v, "top"));
    jr->base = GCSTRDUP(libxl__json_get_string(v, "base"));
    jr->above = GCSTRDUP(libxl__json_get_string(v, "above"));
    s = libxl__json_get_string(v, "top_format");
    if (!s || libxl_disk_format_from_string(s, &jr->top_format))
        jr->top_format = LIBXL_DISK_FORMAT_QCOW2;
    s = libxl__json_get_string(v, "base_format");
    if (!s || libxl_disk_format_from_string(s, &jr->base_format))
        jr->base_format = LIBXL_DISK_FORMAT_QCOW2;
    jr->created = libxl__json_get_bool(v, "created", false);
    jr->shallow = libxl__json_get_bool(v, "shallow", false);
    jr->node = GCSTRDUP(libxl__json_get_string(v, "node"));
    jr->backing = GCSTRDUP(libxl__json_get_string(v, "backing"));
    jr->dest_dev = (uint64_t)libxl__json_get_integer(v, "dest_dev", 0);
    jr->dest_ino = (uint64_t)libxl__json_get_integer(v, "dest_ino", 0);
    s = libxl__json_get_string(v, "backing_format");
    if (!s || libxl_disk_format_from_string(s, &jr->backing_format))
        jr->backing_format = LIBXL_DISK_FORMAT_QCOW2;
    m = libxl__json_get(v, "merged");
    if (m && YAJL_IS_ARRAY(m)) {
        GCNEW_ARRAY(jr->merged, m->u.array.len);
        for (i = 0; i < m->u.array.len; i++)
            if (YAJL_IS_STRING(m->u.array.values[i]))
                jr->merged[jr->num_merged++] =
                    GCSTRDUP(YAJL_GET_STRING(m->u.array.values[i]));
    }
    return 0;
}

static void jobrec_remove(libxl__gc *gc, const libxl__snapshot_store *st,
                          const char *vdev)
{
    if (libxl__snapshot_store_put1(gc, st, jobrec_name(gc, vdev), NULL, 0,
                                   XTL_DEBUG))
        LOG(WARN, "cannot remove block job record of %s", vdev);
}

int libxl__blockjob_record_put(libxl__gc *gc,
                               const libxl__snapshot_store *st,
                               const libxlsnap_blockjob_info *info,
                               libxl_disk_format top_format)
{
    jobrec jr;

    memset(&jr, 0, sizeof(jr));
    jr.id = info->id;
    jr.vdev = info->vdev;
    jr.type = info->type;
    jr.live = info->live;
    jr.top = info->top;
    jr.base = info->base;
    jr.top_format = top_format;
    jr.base_format = LIBXL_DISK_FORMAT_QCOW2;
    return jobrec_write(gc, st, &jr);
}

void libxl__blockjob_record_remove(libxl__gc *gc,
                                   const libxl__snapshot_store *st,
                                   const char *vdev)
{
    jobrec_remove(gc, st, vdev);
}

int libxl__blockjob_check_idle(libxl__gc *gc,
                               const libxl__snapshot_store *st,
                               const libxl__domain *d)
{
    int i;
    jobrec jr;

    for (i = 0; i < d->num_disks; i++) {
        if (!jobrec_read(gc, st, d->disks[i].vdev, &jr)) {
            LOG(ERROR, "disk %s of domain %s is in block job %s (a %s "
                "%s, not over); finish it first (%s)", d->disks[i].vdev,
                d->name, jr.id, jr.live ? "live" : "offline",
                libxlsnap_blockjob_type_to_string(jr.type),
                jr.type == LIBXLSNAP_BLOCKJOB_TYPE_BACKUP
                ? GCSPRINTF("a backup: xl backup-end %s", d->name)
                : GCSPRINTF("xl block-job %s %s shows its progress; "
                            "--abort cancels it, --pivot completes it once "
                            "ready", d->name, d->disks[i].vdev));
            return ERROR_DEVICE_EXISTS;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- */
/* entry points */

static int bc_create(libxlsnap_ctx *ctx, libxl__ao *ao,
                     libxl__block_commit_state **bcs_r, bc_kind kind,
                     const char *domain, const char *vdev,
                     const libxlsnap_progress_how *progress)
{
    AO_GC;
    libxl__block_commit_state *bcs;

    if (!vdev || !*vdev || strchr(vdev, '/')) {
        LOG(ERROR, "invalid disk '%s'", vdev ? vdev : "");
        return ERROR_INVAL;
    }
    GCNEW(bcs);
    bcs->ao = ao;
    bcs->kind = kind;
    bcs->vdev = GCSTRDUP(vdev);
    if (progress) bcs->progress = *progress;
    libxl__blockjob_init(&bcs->bj);
    libxl__exec_init(&bcs->es);
    bcs->op.ao = ao;
    bcs->op.domain = GCSTRDUP(domain);
    bcs->op.callback = bc_begun;
    *bcs_r = bcs;
    return 0;
}

void libxl__block_commit_start(libxl__egc *egc, libxl__ao *ao,
                               const char *domain, const char *vdev,
                               const libxlsnap_block_commit_params *params,
                               const libxlsnap_progress_how *progress,
                               libxl__block_commit_cb *callback,
                               void *for_callback)
{
    AO_GC;
    libxl__block_commit_state *bcs;
    int rc;

    rc = bc_create(CTX, ao, &bcs, BC_COMMIT, domain, vdev, progress);
    if (rc) {
        callback(egc, for_callback, rc);
        return;
    }
    bcs->p = *params;
    bcs->p.top = GCSTRDUP(bcs->p.top);
    bcs->p.base = GCSTRDUP(bcs->p.base);
    bcs->callback = callback;
    bcs->for_callback = for_callback;
    /* tests: XL_SNAPSHOT_FAULT=autocommit:N (snapshot-create's merge) */
    bcs->bj.fault_op = "autocommit";
    libxl__snapshot_op_begin(egc, &bcs->op);
}

int libxlsnap_block_commit(libxlsnap_ctx *ctx, const char *domain,
                       const char *vdev,
                       const libxlsnap_block_commit_params *params,
                       const libxlsnap_progress_how *progress,
                       const libxl_asyncop_how *ao_how)
{
    if (ARGS_MISSING(ctx, domain, vdev) ||
        FLAGS_UNKNOWN(ctx, params ? params->flags : 0,
                      LIBXLSNAP_BLOCK_COMMIT_SHALLOW |
                      LIBXLSNAP_BLOCK_COMMIT_ACTIVE |
                      LIBXLSNAP_BLOCK_COMMIT_PIVOT |
                      LIBXLSNAP_BLOCK_COMMIT_KEEP_OVERLAY |
                      LIBXLSNAP_BLOCK_COMMIT_DELETE |
                      LIBXLSNAP_BLOCK_COMMIT_KEEP_RELATIVE |
                      LIBXLSNAP_BLOCK_COMMIT_NO_WAIT))
        return ERROR_INVAL;
    AO_CREATE(ctx, ao_how);
    EGC_INIT(ctx);
    libxl__block_commit_state *bcs;
    int rc;

    rc = bc_create(ctx, ao, &bcs, BC_COMMIT, domain, vdev, progress);
    if (rc) goto out;
    if (params) bcs->p = *params;
    bcs->p.top = GCSTRDUP(bcs->p.top);
    bcs->p.base = GCSTRDUP(bcs->p.base);
    if ((bcs->p.flags & LIBXLSNAP_BLOCK_COMMIT_PIVOT) &&
        (bcs->p.flags & LIBXLSNAP_BLOCK_COMMIT_KEEP_OVERLAY)) {
        LOG(ERROR, "LIBXLSNAP_BLOCK_COMMIT_PIVOT and _KEEP_OVERLAY exclude each "
            "other");
        rc = ERROR_INVAL;
        goto out;
    }
    if ((bcs->p.flags & LIBXLSNAP_BLOCK_COMMIT_SHALLOW) && bcs->p.base) {
        LOG(ERROR, "LIBXLSNAP_BLOCK_COMMIT_SHALLOW and a base exclude each "
            "other");
        rc = ERROR_INVAL;
        goto out;
    }
    if ((bcs->p.flags & LIBXLSNAP_BLOCK_COMMIT_DELETE) &&
        (bcs->p.flags & LIBXLSNAP_BLOCK_COMMIT_KEEP_OVERLAY)) {
        LOG(ERROR, "LIBXLSNAP_BLOCK_COMMIT_DELETE cannot go with _KEEP_OVERLAY: "
            "the overlay "
            "still uses the images below it");
        rc = ERROR_INVAL;
        goto out;
    }
    libxl__snapshot_op_begin(egc, &bcs->op);
    EGC_FREE;
    return AO_INPROGRESS;
 out:
    EGC_FREE;
    return AO_CREATE_FAIL(rc);
}

int libxlsnap_block_stream(libxlsnap_ctx *ctx, const char *domain,
                       const char *vdev, const char *base,
                       uint64_t bandwidth, int timeout_ms, unsigned flags,
                       const libxlsnap_progress_how *progress,
                       const libxl_asyncop_how *ao_how)
{
    if (ARGS_MISSING(ctx, domain, vdev) ||
        FLAGS_UNKNOWN(ctx, flags, LIBXLSNAP_BLOCK_COMMIT_NO_WAIT))
        return ERROR_INVAL;
    AO_CREATE(ctx, ao_how);
    EGC_INIT(ctx);
    libxl__block_commit_state *bcs;
    int rc;

    rc = bc_create(ctx, ao, &bcs, BC_STREAM, domain, vdev, progress);
    if (rc) goto out;
    bcs->stream_base = GCSTRDUP(base);
    bcs->p.bandwidth = bandwidth;
    bcs->p.timeout_ms = timeout_ms;
    bcs->p.flags = flags & LIBXLSNAP_BLOCK_COMMIT_NO_WAIT;
    libxl__snapshot_op_begin(egc, &bcs->op);
    EGC_FREE;
    return AO_INPROGRESS;
 out:
    EGC_FREE;
    return AO_CREATE_FAIL(rc);
}

/* A file dest as recorded: absolute, and a symbolic link's target (the
 * records name the image, not a link to it that may go or change) */
static const char *copy_file_dest(libxl__gc *gc, const char *dest)
{
    struct stat st;
    char *real;

    if (!lstat(dest, &st) && S_ISLNK(st.st_mode) &&
        (real = realpath(dest, NULL))) {
        const char *r = GCSTRDUP(real);
        free(real);
        return r;
    }
    return libxl__abs_path(gc, dest);
}

int libxlsnap_block_copy(libxlsnap_ctx *ctx, const char *domain,
                     const char *vdev, const char *dest,
                     const libxlsnap_block_copy_params *params,
                     const libxlsnap_progress_how *progress,
                     const libxl_asyncop_how *ao_how)
{
    if (ARGS_MISSING(ctx, domain, vdev, dest) ||
        FLAGS_UNKNOWN(ctx, params ? params->flags : 0,
                      LIBXLSNAP_BLOCK_COPY_SHALLOW |
                      LIBXLSNAP_BLOCK_COPY_REUSE_EXTERNAL |
                      LIBXLSNAP_BLOCK_COPY_PIVOT |
                      LIBXLSNAP_BLOCK_COPY_FINISH |
                      LIBXLSNAP_BLOCK_COPY_NO_WAIT))
        return ERROR_INVAL;
    AO_CREATE(ctx, ao_how);
    EGC_INIT(ctx);
    libxl__block_commit_state *bcs;
    int rc;

    rc = bc_create(ctx, ao, &bcs, BC_COPY, domain, vdev, progress);
    if (rc) goto out;
    if (params) bcs->cp = *params;
    rc = ERROR_INVAL;
    if ((bcs->cp.flags & LIBXLSNAP_BLOCK_COPY_PIVOT) &&
        (bcs->cp.flags & LIBXLSNAP_BLOCK_COPY_FINISH)) {
        LOG(ERROR, "LIBXLSNAP_BLOCK_COPY_PIVOT and _FINISH exclude each "
            "other");
        goto out;
    }
    if (!*dest) {
        LOG(ERROR, "block copy of disk %s: no destination", vdev);
        goto out;
    }
    if (!libxl__image_is_file(dest)) {
        libxl__rbd_image r;
        const char *why;
        if (libxl__rbd_parse(gc, dest, &r, &why)) {
            LOG(ERROR, "block copy of disk %s: the destination '%s' %s",
                vdev, dest, why);
            goto out;
        }
        /* an RBD image holds raw data, and has no backing file */
        if (bcs->cp.format == LIBXL_DISK_FORMAT_QCOW2 ||
            (bcs->cp.flags & LIBXLSNAP_BLOCK_COPY_SHALLOW)) {
            LOG(ERROR, "block copy of disk %s: an RBD destination is raw, "
                "a full copy (no --shallow, no qcow2)", vdev);
            goto out;
        }
        bcs->cp.format = LIBXL_DISK_FORMAT_RAW;
    }
    if (bcs->cp.format != LIBXL_DISK_FORMAT_UNKNOWN &&
        bcs->cp.format != LIBXL_DISK_FORMAT_QCOW2 &&
        bcs->cp.format != LIBXL_DISK_FORMAT_RAW) {
        LOG(ERROR, "block copy of disk %s: the copy can be qcow2 or raw, "
            "not %s", vdev, libxl_disk_format_to_string(bcs->cp.format));
        goto out;
    }
    if ((bcs->cp.flags & LIBXLSNAP_BLOCK_COPY_SHALLOW) &&
        bcs->cp.format == LIBXL_DISK_FORMAT_RAW) {
        LOG(ERROR, "block copy of disk %s: a shallow copy keeps a backing "
            "file, which a raw image cannot have", vdev);
        goto out;
    }
    bcs->dest = libxl__image_is_file(dest) ? copy_file_dest(gc, dest)
                                           : GCSTRDUP(dest);
    bcs->p.bandwidth = bcs->cp.bandwidth;
    bcs->p.timeout_ms = bcs->cp.timeout_ms;
    if (bcs->cp.flags & LIBXLSNAP_BLOCK_COPY_NO_WAIT)
        bcs->p.flags |= LIBXLSNAP_BLOCK_COMMIT_NO_WAIT;
    libxl__snapshot_op_begin(egc, &bcs->op);
    EGC_FREE;
    return AO_INPROGRESS;
 out:
    EGC_FREE;
    return AO_CREATE_FAIL(rc);
}

/* ---------------------------------------------------------------- */
/* planning */

static yajl_val chain_at(libxl__block_commit_state *bcs, int i)
{
    return bcs->chain->u.array.values[i];
}

static const char *chain_file(libxl__block_commit_state *bcs, int i)
{
    return libxl__json_get_string(chain_at(bcs, i), "filename");
}

static libxl_disk_format chain_format(libxl__block_commit_state *bcs, int i)
{
    libxl_disk_format f = LIBXL_DISK_FORMAT_RAW;
    libxl__disk_format_from_qemu(libxl__json_get_string(chain_at(bcs, i),
                                                        "format"), &f);
    return f;
}

static int chain_len(libxl__block_commit_state *bcs)
{
    return bcs->chain->u.array.len;
}

/* Index of path in the chain, or -1 (an error is logged). */
static int chain_find(libxl__gc *gc, libxl__block_commit_state *bcs,
                      const char *path, const char *what)
{
    char *abs = libxl__abs_path(gc, path);
    int i;

    for (i = 0; i < chain_len(bcs); i++)
        if (chain_file(bcs, i) && !strcmp(chain_file(bcs, i), abs))
            return i;
    LOG(ERROR, "%s '%s' is not in the backing chain of disk %s", what,
        path, bcs->vdev);
    return -1;
}

/*
 * xl block-job --pivot / --abort of a live job whose QEMU is gone: there
 * is nothing to pivot or abort.  Its outcome is settled as the next
 * command would (libxl__blockjob_recover): a copy's dest this job made
 * goes (unless the pivot was recorded already: then it stands), a
 * commit's records follow an abort.  ERROR_FAIL, said in one line, but
 * for a pivot that was recorded.
 */
static int control_dead_job(libxl__gc *gc, libxl__block_commit_state *bcs)
{
    libxl__snapshot_op *op = &bcs->op;
    const jobrec *jr = &bcs->jr;
    const libxl__active_disk *a;
    bool pivoted = false;
    int rc;

    rc = libxl__snapshot_op_load_all(gc, op);
    if (rc) return rc;
    if (jr->type == LIBXLSNAP_BLOCKJOB_TYPE_COPY) {
        a = libxl__domain_record_disk(&op->tree.dom, jr->vdev);
        pivoted = a && a->path && !strcmp(a->path, jr->base);
        rc = copy_outcome(gc, op, jr, pivoted, false);
    } else if (jr->type != LIBXLSNAP_BLOCKJOB_TYPE_STREAM) {
        rc = follow_outcome(gc, op, jr, false, NULL);
    }
    if (rc) return rc;
    jobrec_remove(gc, &op->st, jr->vdev);
    if (pivoted && bcs->verb == LIBXL__BLOCKJOB_VERB_COMPLETE) return 0;
    LOG(ERROR, "block job %s on disk %s is gone with the domain's QEMU: "
        "nothing to %s%s", jr->id, jr->vdev,
        bcs->verb == LIBXL__BLOCKJOB_VERB_COMPLETE ? "pivot" : "abort",
        pivoted ? " (its pivot was recorded: the disk runs on the copy)"
        : jr->type != LIBXLSNAP_BLOCKJOB_TYPE_COPY
        ? "; its records follow as after an abort"
        : jr->created ? "; the disk stays on its image, and the copy this "
          "job made is removed"
        : "; the disk stays on its image");
    return ERROR_FAIL;
}

static void bc_begun(libxl__egc *egc, libxl__snapshot_op *op, int rc)
{
    libxl__block_commit_state *bcs =
        CONTAINER_OF(op, libxl__block_commit_state, op);
    STATE_AO_GC(bcs->ao);

    if (rc == ERROR_LOCK_FAIL && bcs->kind == BC_CONTROL) {
        /* the process that started the job records its outcome */
        rc = 0;
        goto out;
    }
    if (rc) goto out;
    bcs->disk = libxl__domain_disk(&op->d, bcs->vdev);
    if (!bcs->disk || !bcs->disk->pdev_path) {
        LOG(ERROR, "domain %s has no disk '%s'", op->d.name, bcs->vdev);
        rc = ERROR_INVAL;
        goto out;
    }
    rc = jobrec_read(gc, &op->st, bcs->vdev, &bcs->jr);
    if (bcs->kind == BC_CONTROL) {
        if (rc == ERROR_NOTFOUND)
            LOG(ERROR, "disk %s of domain %s has no block job", bcs->vdev,
                op->d.name);
        if (rc) goto out;
        if (!bcs->jr.live || !op->d.running) {
            rc = control_dead_job(gc, bcs);
            goto out;
        }
        /* follow the job (the verb was sent already) to its end */
        bcs->bj.ao = ao;
        bcs->bj.d = &op->d;
        bcs->bj.info.id = bcs->jr.id;
        bcs->bj.info.vdev = bcs->jr.vdev;
        bcs->bj.info.type = bcs->jr.type;
        bcs->bj.info.top = bcs->jr.top;
        bcs->bj.info.base = bcs->jr.base;
        bcs->bj.at_ready = bcs->verb == LIBXL__BLOCKJOB_VERB_COMPLETE
            ? LIBXL__BLOCKJOB_AT_READY_PIVOT
            : LIBXL__BLOCKJOB_AT_READY_CANCEL;
        /* a job that finished before the verb just gets recorded */
        bcs->bj.cancel_rc = bcs->verb_sent &&
            bcs->verb == LIBXL__BLOCKJOB_VERB_CANCEL ? ERROR_ABORTED : 0;
        bcs->bj.cancel_sent = bcs->verb_sent &&
            bcs->verb == LIBXL__BLOCKJOB_VERB_CANCEL;
        bcs->bj.complete_sent = bcs->verb_sent &&
            bcs->verb == LIBXL__BLOCKJOB_VERB_COMPLETE;
        bcs->bj.callback = bc_job_done;
        libxl__blockjob_follow(egc, &bcs->bj);
        return;
    }
    if (!rc) {
        LOG(ERROR, "disk %s of domain %s is already in block job %s",
            bcs->vdev, op->d.name, bcs->jr.id);
        rc = ERROR_DEVICE_EXISTS;
        goto out;
    }
    if (rc != ERROR_NOTFOUND) goto out;
    if (!op->d.running && bcs->kind == BC_STREAM && bcs->p.bandwidth) {
        LOG(ERROR, "an offline stream (qemu-img rebase) cannot be "
            "rate-limited; start the domain, or set no bandwidth limit");
        rc = ERROR_INVAL;
        goto out;
    }
    GCNEW_ARRAY(bcs->qi.images, 1);
    bcs->qi.images[0] = bcs->disk->pdev_path;
    bcs->qi.num_images = 1;
    bcs->qi.backing_chain = true;
    bcs->qi.ao = ao;
    bcs->qi.callback = bc_chain;
    libxl__qemu_img_info(egc, &bcs->qi);
    return;
 out:
    bc_done(egc, bcs, rc);
}

static void bc_chain(libxl__egc *egc, libxl__qemu_img_info_state *qi,
                     int rc)
{
    libxl__block_commit_state *bcs =
        CONTAINER_OF(qi, libxl__block_commit_state, qi);
    libxl__snapshot_op *op = &bcs->op;
    STATE_AO_GC(bcs->ao);
    int i, j, n;

    if (rc) goto out;
    bcs->chain = qi->infos[0];
    if (!bcs->chain || !YAJL_IS_ARRAY(bcs->chain) || !chain_len(bcs)) {
        LOG(ERROR, "disk %s: cannot read its backing chain", bcs->vdev);
        rc = ERROR_FAIL;
        goto out;
    }
    n = chain_len(bcs);
    rc = ERROR_INVAL;
    if (bcs->kind == BC_COPY) {
        bc_copy_plan(egc, bcs);
        return;
    }
    if (bcs->kind == BC_STREAM) {
        bcs->itop = 0;
        bcs->ibase = bcs->stream_base
            ? chain_find(gc, bcs, bcs->stream_base, "base") : n;
        if (bcs->ibase < 0) goto out;
        if (bcs->ibase <= 1) {
            LOG(ERROR, "disk %s: nothing to stream (base is the active "
                "image's own backing file)", bcs->vdev);
            goto out;
        }
    } else {
        bcs->itop = bcs->p.top ? chain_find(gc, bcs, bcs->p.top, "top") : 0;
        if (bcs->itop < 0) goto out;
        if (bcs->p.flags & LIBXLSNAP_BLOCK_COMMIT_SHALLOW)
            bcs->ibase = bcs->itop + 1;
        else
            bcs->ibase = bcs->p.base
                ? chain_find(gc, bcs, bcs->p.base, "base") : n - 1;
        if (bcs->ibase < 0) goto out;
        if (bcs->ibase >= n || bcs->ibase <= bcs->itop) {
            LOG(ERROR, "disk %s: base must be below top in the backing "
                "chain (%s has %d image%s)", bcs->vdev, bcs->disk->pdev_path,
                n, n == 1 ? "" : "s");
            goto out;
        }
        if (bcs->itop == 0 && !(bcs->p.flags & LIBXLSNAP_BLOCK_COMMIT_ACTIVE)) {
            LOG(ERROR, "disk %s: top is the active image; that needs an "
                "active commit (LIBXLSNAP_BLOCK_COMMIT_ACTIVE)", bcs->vdev);
            goto out;
        }
        if (bcs->itop > 0 && (bcs->p.flags &
                              (LIBXLSNAP_BLOCK_COMMIT_PIVOT |
                               LIBXLSNAP_BLOCK_COMMIT_KEEP_OVERLAY))) {
            LOG(ERROR, "disk %s: pivot and keep-overlay "
                "(LIBXLSNAP_BLOCK_COMMIT_PIVOT, _KEEP_OVERLAY) are for an "
                "active commit", bcs->vdev);
            goto out;
        }
        if ((bcs->p.flags & LIBXLSNAP_BLOCK_COMMIT_KEEP_RELATIVE) &&
            op->d.running) {
            /* QEMU 7.2 then names the node by a json: filename, which
             * later live operations cannot find: offline only */
            LOG(ERROR, "disk %s: relative backing names "
                "(LIBXLSNAP_BLOCK_COMMIT_KEEP_RELATIVE) are supported offline "
                "only (shut the domain down first)", bcs->vdev);
            goto out;
        }
        if (!bcs->disk->readwrite) {
            LOG(ERROR, "disk %s is read-only: nothing to commit",
                bcs->vdev);
            goto out;
        }
    }

    /* The job record, also the plan. */
    bcs->jr.vdev = GCSTRDUP(bcs->vdev);
    bcs->jr.live = op->d.running;
    bcs->jr.del = !!(bcs->p.flags & LIBXLSNAP_BLOCK_COMMIT_DELETE);
    bcs->jr.type = bcs->kind == BC_STREAM ? LIBXLSNAP_BLOCKJOB_TYPE_STREAM
        : bcs->itop == 0 ? LIBXLSNAP_BLOCKJOB_TYPE_ACTIVE_COMMIT
        : LIBXLSNAP_BLOCKJOB_TYPE_COMMIT;
    bcs->jr.id = GCSPRINTF("libxl-%s-%s", bcs->kind == BC_STREAM
                           ? "stream" : "commit", bcs->vdev);
    bcs->jr.at_ready = (bcs->p.flags & LIBXLSNAP_BLOCK_COMMIT_PIVOT)
        ? LIBXL__BLOCKJOB_AT_READY_PIVOT
        : (bcs->p.flags & LIBXLSNAP_BLOCK_COMMIT_KEEP_OVERLAY)
        ? LIBXL__BLOCKJOB_AT_READY_CANCEL : LIBXL__BLOCKJOB_AT_READY_STOP;
    /* offline, an active commit has no READY: pivot unless told */
    if (!op->d.running && bcs->jr.type == LIBXLSNAP_BLOCKJOB_TYPE_ACTIVE_COMMIT
        && bcs->jr.at_ready == LIBXL__BLOCKJOB_AT_READY_STOP)
        bcs->jr.at_ready = LIBXL__BLOCKJOB_AT_READY_PIVOT;
    bcs->jr.top = GCSTRDUP(chain_file(bcs, bcs->itop));
    bcs->jr.top_format = chain_format(bcs, bcs->itop);
    if (bcs->ibase < n) {
        bcs->jr.base = GCSTRDUP(chain_file(bcs, bcs->ibase));
        bcs->jr.base_format = chain_format(bcs, bcs->ibase);
    }
    if (bcs->itop > 0) bcs->jr.above = GCSTRDUP(chain_file(bcs,
                                                           bcs->itop - 1));
    if (bcs->kind == BC_COMMIT) {
        GCNEW_ARRAY(bcs->jr.merged, bcs->ibase - bcs->itop);
        for (i = bcs->itop; i < bcs->ibase; i++)
            bcs->jr.merged[bcs->jr.num_merged++] =
                GCSTRDUP(chain_file(bcs, i));
    }

    /*
     * Other images we know of (snapshots' images, and what they are
     * built on) must not be built on base or a merged image.
     */
    if (bcs->kind != BC_COMMIT) {
        bc_others(egc, &bcs->qo, 0);
        return;
    }
    GCNEW_ARRAY(bcs->qo.images, 2 * op->tree.num_snaps + 1);
    for (i = 0; i < op->tree.num_snaps; i++) {
        for (j = 0; j < op->tree.snaps[i].num_disks; j++) {
            const libxlsnap_disk_snapshot *ds = &op->tree.snaps[i].disks[j];
            int k;
            if (strcmp(ds->vdev, bcs->vdev)) continue;
            if (ds->type == LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO) continue;
            if (!ds->file || !libxl__file_exists(ds->file)) continue;
            for (k = 0; k < n; k++)
                if (chain_file(bcs, k) && !strcmp(chain_file(bcs, k),
                                                  ds->file))
                    break;
            if (k < n) continue;           /* in our chain: fine */
            bcs->qo.images[bcs->qo.num_images++] = ds->file;
        }
    }
    bcs->qo.ao = ao;
    bcs->qo.callback = bc_others;
    libxl__qemu_img_info(egc, &bcs->qo);
    return;
 out:
    bc_done(egc, bcs, rc);
}

static bool in_list(char **l, int n, const char *s)
{
    int i;
    for (i = 0; s && i < n; i++)
        if (!strcmp(l[i], s)) return true;
    return false;
}

/* The bitmap merge of a commit, into bcs->bj.bitmaps. */
static void plan_bitmaps(libxl__gc *gc, libxl__block_commit_state *bcs)
{
    libxl__qemu_img_bitmap *top, *base, *bm;
    int ntop, nbase, nbm, i, j, k;

    ntop = libxl__qemu_img_bitmaps(chain_at(bcs, bcs->itop), &top, gc);
    if (!ntop) return;
    if (bcs->jr.base_format != LIBXL_DISK_FORMAT_QCOW2) {
        LOG(WARN, "disk %s: base '%s' is not qcow2 and cannot hold the "
            "dirty bitmaps of '%s'", bcs->vdev, bcs->jr.base, bcs->jr.top);
        return;
    }
    nbase = libxl__qemu_img_bitmaps(chain_at(bcs, bcs->ibase), &base, gc);
    GCNEW_ARRAY(bcs->bj.bitmaps, ntop);
    for (i = 0; i < ntop; i++) {
        struct libxl__blockjob_bitmap *b =
            &bcs->bj.bitmaps[bcs->bj.num_bitmaps++];
        b->name = top[i].name;
        b->granularity = top[i].granularity;
        b->add = true;
        for (k = 0; k < nbase; k++)
            if (!strcmp(base[k].name, b->name)) b->add = false;
        /* base records what top recorded: active after (top was), or
         * below it (a bitmap recording there would take the next
         * commit's writes into it) */
        b->state = top[i].recording ? 1 : -1;
        GCNEW_ARRAY(b->sources, bcs->ibase - bcs->itop);
        for (j = bcs->itop; j < bcs->ibase; j++) {
            bool has = false;
            nbm = libxl__qemu_img_bitmaps(chain_at(bcs, j), &bm, gc);
            for (k = 0; k < nbm; k++)
                if (!strcmp(bm[k].name, b->name)) has = true;
            if (!has) break;
            b->sources[b->num_sources++] = chain_file(bcs, j);
        }
    }
}

static void bc_others(libxl__egc *egc, libxl__qemu_img_info_state *qo,
                      int rc)
{
    libxl__block_commit_state *bcs =
        CONTAINER_OF(qo, libxl__block_commit_state, qo);
    libxl__snapshot_op *op = &bcs->op;
    STATE_AO_GC(bcs->ao);
    int i;

    if (rc) goto out;
    for (i = 0; i < qo->num_images; i++) {
        const char *b = libxl__json_get_string(qo->infos[i],
                                               "full-backing-filename");
        if (b && (!strcmp(b, bcs->jr.base) ||
                  in_list(bcs->jr.merged, bcs->jr.num_merged, b))) {
            LOG(ERROR, "disk %s: '%s' (another branch of the snapshot "
                "tree) is built on '%s', which this commit would change; "
                "nothing was done", bcs->vdev, qo->images[i], b);
            rc = ERROR_INVAL;
            goto out;
        }
    }

    rc = jobrec_write(gc, &op->st, &bcs->jr);
    if (rc) goto out;

    bcs->bj.ao = ao;
    bcs->bj.d = &op->d;
    bcs->bj.info.id = bcs->jr.id;
    bcs->bj.info.vdev = bcs->jr.vdev;
    bcs->bj.info.type = bcs->jr.type;
    bcs->bj.info.live = bcs->jr.live;
    bcs->bj.info.top = bcs->jr.top;
    bcs->bj.info.base = bcs->jr.base;
    bcs->bj.info.speed = bcs->p.bandwidth;
    bcs->bj.info.len = libxl__json_get_integer(chain_at(bcs, 0),
                                               "virtual-size", 0);
    bcs->bj.active = bcs->disk->pdev_path;
    bcs->bj.active_format = bcs->disk->format;
    bcs->bj.top_format = bcs->jr.top_format;
    bcs->bj.base_format = bcs->jr.base_format;
    if ((bcs->p.flags & LIBXLSNAP_BLOCK_COMMIT_KEEP_RELATIVE) &&
        bcs->jr.above && bcs->jr.base)
        bcs->bj.backing_file = libxl__path_basename(gc, bcs->jr.base);
    bcs->bj.at_ready = bcs->jr.at_ready;
    if (bcs->kind == BC_COMMIT && bcs->jr.base_format ==
        LIBXL_DISK_FORMAT_QCOW2) {
        if (bcs->jr.live) {
            bcs->bj.merge_files = bcs->jr.merged;
            bcs->bj.num_merge_files = bcs->jr.num_merged;
        } else {
            plan_bitmaps(gc, bcs);
        }
    }
    if (bcs->kind == BC_STREAM) {
        /* the images the stream drops: their dirty bitmaps merged into
         * the active image first (as libvirt's pull), so that what
         * changed since a checkpoint is still known once they are gone */
        int i;
        for (i = 1; i < bcs->ibase; i++) {
            const char *f = libxl__json_get_string(chain_at(bcs, i),
                                                   "format");
            libxl_disk_format fmt = LIBXL_DISK_FORMAT_UNKNOWN;
            if (f) libxl__disk_format_from_qemu(f, &fmt);
            const char *why;
            if (libxl__bitmaps_fold_image(gc, bcs->jr.live
                                          ? bcs->op.d.qmp_path : NULL,
                                          chain_file(bcs, i), fmt,
                                          chain_file(bcs, 0),
                                          bcs->disk->format, false, &why))
                libxl__bitmaps_fold_warn(gc, bcs->vdev, chain_file(bcs, i),
                                         chain_file(bcs, 0), why);
        }
    }
    bcs->bj.no_wait = !!(bcs->p.flags & LIBXLSNAP_BLOCK_COMMIT_NO_WAIT) &&
        bcs->jr.live;
    bcs->bj.timeout_ms = bcs->p.timeout_ms;
    bcs->bj.progress = &bcs->progress;
    bcs->bj.callback = bc_job_done;
    libxl__blockjob_start(egc, &bcs->bj);
    return;
 out:
    bc_done(egc, bcs, rc);
}

/* ---------------------------------------------------------------- */
/* block copy: planning */

static void bc_copy_created(libxl__egc *egc, libxl__exec_state *es, int rc,
                            int status);
static void bc_copy_start(libxl__egc *egc, libxl__block_commit_state *bcs);

/* a path as dest is compared (an RBD image as it is named) */
static const char *copy_name(libxl__gc *gc, const char *path)
{
    return libxl__image_is_file(path) ? libxl__abs_path(gc, path) : path;
}

/* Which image (a chain's, a snapshot's, a disk's, one a copy left) is
 * dest?  NULL: none.  By identity (libxl__image_same): a link to one of
 * them is it. */
static const char *copy_dest_clash(libxl__gc *gc,
                                   libxl__block_commit_state *bcs)
{
    libxl__snapshot_op *op = &bcs->op;
    const char *d = bcs->dest;
    int i, j;

    for (i = 0; i < chain_len(bcs); i++)
        if (libxl__image_same(gc, chain_file(bcs, i), d))
            return GCSPRINTF("an image of the backing chain of disk %s",
                             bcs->vdev);
    for (i = 0; i < op->d.num_disks; i++)
        if (op->d.disks[i].pdev_path &&
            libxl__image_same(gc, copy_name(gc, op->d.disks[i].pdev_path), d))
            return GCSPRINTF("the active image of disk %s",
                             op->d.disks[i].vdev);
    for (i = 0; i < op->tree.num_snaps; i++)
        for (j = 0; j < op->tree.snaps[i].num_disks; j++) {
            const libxlsnap_disk_snapshot *ds = &op->tree.snaps[i].disks[j];
            if (libxl__image_same(gc, ds->file, d) ||
                libxl__image_same(gc, ds->overlay, d))
                return GCSPRINTF("an image of snapshot '%s'",
                                 op->tree.snaps[i].name);
        }
    for (i = 0; i < op->cfg.num_disks; i++)
        if (op->cfg.disks[i].pdev_path &&
            libxl__image_same(gc, copy_name(gc, op->cfg.disks[i].pdev_path),
                              d))
            return GCSPRINTF("the configured image of disk %s",
                             op->cfg.disks[i].vdev);
    for (i = 0; i < op->tree.dom.num_disks; i++)
        for (j = 0; j < op->tree.dom.disks[i].num_copied_from; j++)
            if (libxl__image_same(gc, op->tree.dom.disks[i].copied_from[j],
                                  d))
                return GCSPRINTF("an image disk %s was copied from (kept "
                                 "for the snapshots)",
                                 op->tree.dom.disks[i].vdev);
    return NULL;
}

/* 1: dest exists, 0: not, <0: ERROR_* (said) */
static int copy_dest_exists(libxl__gc *gc, const char *dest)
{
    const char *why = NULL;
    int r;

    if (libxl__image_is_file(dest)) return libxl__file_exists(dest);
    r = libxl__rbd_image_exists(gc, dest, &why);
    if (r < 0)
        LOG(ERROR, "the destination '%s' cannot be looked up: %s", dest,
            why ? why : "ceph-util failed");
    return r;
}

/* An existing dest, for --reuse-external: of the format asked, large
 * enough, on the active image's backing when shallow. */
static int copy_check_reused(libxl__gc *gc, libxl__block_commit_state *bcs)
{
    jobrec *jr = &bcs->jr;
    char *err = NULL;
    yajl_val info = libxl__qemu_img_info_sync(gc, bcs->dest, false, &err);
    libxl_disk_format f = LIBXL_DISK_FORMAT_UNKNOWN;
    const char *b;

    if (!info) {
        LOG(ERROR, "disk %s: the destination '%s' does not open: %s",
            bcs->vdev, bcs->dest, err ? err : "qemu-img info failed");
        return ERROR_INVAL;
    }
    libxl__disk_format_from_qemu(libxl__json_get_string(info, "format"), &f);
    if (f != jr->base_format) {
        LOG(ERROR, "disk %s: the destination '%s' is %s, not %s",
            bcs->vdev, bcs->dest, libxl__json_get_string(info, "format")
            ?: "of unknown format", libxl__disk_format_qemu(jr->base_format));
        return ERROR_INVAL;
    }
    if ((uint64_t)libxl__json_get_integer(info, "virtual-size", 0) <
        (uint64_t)libxl__json_get_integer(chain_at(bcs, 0), "virtual-size",
                                          0)) {
        LOG(ERROR, "disk %s: the destination '%s' is smaller than the "
            "disk", bcs->vdev, bcs->dest);
        return ERROR_INVAL;
    }
    b = libxl__json_get_string(info, "full-backing-filename");
    if (jr->shallow && jr->backing && (!b || strcmp(b, jr->backing))) {
        LOG(ERROR, "disk %s: a shallow copy into '%s' needs it built on "
            "'%s', the active image's backing (it is on %s)", bcs->vdev,
            bcs->dest, jr->backing, b ? b : "nothing");
        return ERROR_INVAL;
    }
    if (!jr->shallow && b) {
        LOG(ERROR, "disk %s: a full copy into '%s' needs a standalone "
            "image (it is built on '%s'); or copy with --shallow",
            bcs->vdev, bcs->dest, b);
        return ERROR_INVAL;
    }
    return 0;
}

/* Has the image of `qemu-img info` v persistent dirty bitmaps (in use by
 * a running QEMU or not)? */
static bool copy_has_bitmaps(yajl_val v)
{
    yajl_val b = libxl__json_get(libxl__json_get(
        libxl__json_get(v, "format-specific"), "data"), "bitmaps");
    return b && YAJL_IS_ARRAY(b) && b->u.array.len > 0;
}

static void bc_copy_plan(libxl__egc *egc, libxl__block_commit_state *bcs)
{
    libxl__snapshot_op *op = &bcs->op;
    STATE_AO_GC(bcs->ao);
    jobrec *jr = &bcs->jr;
    unsigned f = bcs->cp.flags;
    const char *clash;
    libxl__flexarray *a;
    int rc = ERROR_INVAL, exists;

    jr->vdev = GCSTRDUP(bcs->vdev);
    jr->live = op->d.running;
    jr->type = LIBXLSNAP_BLOCKJOB_TYPE_COPY;
    jr->id = GCSPRINTF("libxl-copy-%s", bcs->vdev);
    jr->at_ready = (f & LIBXLSNAP_BLOCK_COPY_PIVOT)
        ? LIBXL__BLOCKJOB_AT_READY_PIVOT
        : (f & LIBXLSNAP_BLOCK_COPY_FINISH) || !op->d.running
        ? LIBXL__BLOCKJOB_AT_READY_CANCEL : LIBXL__BLOCKJOB_AT_READY_STOP;
    /* (an RBD image: as the config names it, as QEMU finds its node) */
    jr->top = GCSTRDUP(libxl__image_is_file(bcs->disk->pdev_path)
                       ? chain_file(bcs, 0) : bcs->disk->pdev_path);
    jr->top_format = chain_format(bcs, 0);
    jr->base = GCSTRDUP(bcs->dest);
    jr->base_format = bcs->cp.format != LIBXL_DISK_FORMAT_UNKNOWN
        ? bcs->cp.format
        : jr->top_format == LIBXL_DISK_FORMAT_RAW ? LIBXL_DISK_FORMAT_RAW
        : LIBXL_DISK_FORMAT_QCOW2;
    jr->shallow = !!(f & LIBXLSNAP_BLOCK_COPY_SHALLOW) && chain_len(bcs) > 1;
    if (jr->shallow) {
        jr->backing = GCSTRDUP(chain_file(bcs, 1));
        jr->backing_format = chain_format(bcs, 1);
    }
    if (libxl__image_is_file(bcs->disk->pdev_path))
        jr->num_old_chain = libxl__qemu_img_chain_files(gc, bcs->chain,
                                                        &jr->old_chain);
    jr->created = !(f & LIBXLSNAP_BLOCK_COPY_REUSE_EXTERNAL);
    /* QEMU: a node-name is at most 31 characters, a letter first */
    jr->node = GCSPRINTF("copy-%.8s-%"PRIx64, bcs->vdev,
                         (uint64_t)(libxl__now_ms() & 0xffffffffU));

    if (jr->top_format != LIBXL_DISK_FORMAT_QCOW2 &&
        jr->top_format != LIBXL_DISK_FORMAT_RAW) {
        LOG(ERROR, "disk %s: its active image is %s; block-copy copies "
            "qcow2 and raw images", bcs->vdev,
            libxl_disk_format_to_string(jr->top_format));
        goto out;
    }
    if ((f & LIBXLSNAP_BLOCK_COPY_SHALLOW) &&
        jr->base_format == LIBXL_DISK_FORMAT_RAW) {
        LOG(ERROR, "disk %s: a shallow copy keeps a backing file, which a "
            "raw image cannot have", bcs->vdev);
        goto out;
    }
    if (jr->live && jr->at_ready != LIBXL__BLOCKJOB_AT_READY_CANCEL &&
        !libxl__image_is_file(jr->base) && !strcmp(CTX->driver->name, "xen")) {
        /* libxl's records of a running qdisk name a file (xenstore's
         * params): a pivot could not be recorded there */
        LOG(ERROR, "disk %s: a running Xen domain cannot be switched to "
            "an RBD image (copy it with --finish, or shut it down)",
            bcs->vdev);
        goto out;
    }
    if (!jr->live && (f & LIBXLSNAP_BLOCK_COPY_NO_WAIT)) {
        LOG(ERROR, "disk %s: the domain is shut off, and an offline copy "
            "(qemu-img convert) runs in the command itself: no --async",
            bcs->vdev);
        goto out;
    }
    clash = copy_dest_clash(gc, bcs);
    if (clash) {
        LOG(ERROR, "disk %s: the destination '%s' is %s; nothing was done",
            bcs->vdev, bcs->dest, clash);
        goto out;
    }
    exists = copy_dest_exists(gc, bcs->dest);
    if (exists < 0) {
        rc = exists;
        goto out;
    }
    if (jr->created && exists) {
        LOG(ERROR, "disk %s: the destination '%s' already exists (reuse it "
            "with --reuse-external)", bcs->vdev, bcs->dest);
        goto out;
    }
    if (!jr->created && !exists) {
        LOG(ERROR, "disk %s: the destination '%s' does not exist "
            "(--reuse-external writes into a prepared image)", bcs->vdev,
            bcs->dest);
        goto out;
    }
    if (!jr->created) {
        rc = copy_check_reused(gc, bcs);
        if (rc) goto out;
        libxl__blockjob_copy_dest_id(jr->base, &jr->dest_dev,
                                     &jr->dest_ino);
    }

    if (jr->base_format == LIBXL_DISK_FORMAT_RAW &&
        copy_has_bitmaps(chain_at(bcs, 0)))
        LOG(NOTICE, "disk %s: the copy is raw, which holds no dirty "
            "bitmaps: those of '%s' do not go with it", bcs->vdev,
            jr->top);

    rc = jobrec_write(gc, &op->st, jr);
    if (rc) goto out;
    libxl__fault_point("blockcopy");  /* the job record, nothing else */
    if (!jr->live || !jr->created) {
        /* offline, qemu-img convert makes dest */
        bc_copy_start(egc, bcs);
        return;
    }
    a = libxl__flexarray_new(gc);
    libxl__flexarray_append_pair(a, CTX->qemu_img, "create");
    libxl__flexarray_append(a, "-q");
    libxl__flexarray_append_pair(a, "-f",
                                 libxl__disk_format_qemu(jr->base_format));
    if (jr->shallow) {
        libxl__flexarray_append_pair(a, "-b", jr->backing);
        libxl__flexarray_append_pair(a, "-F",
            libxl__disk_format_qemu(jr->backing_format));
    }
    libxl__flexarray_append(a, jr->base);
    libxl__flexarray_append(a, GCSPRINTF("%"PRIu64, (uint64_t)
        libxl__json_get_integer(chain_at(bcs, 0), "virtual-size", 0)));
    libxl__exec_init(&bcs->es);
    bcs->es.ao = ao;
    bcs->es.what = GCSPRINTF("creation of the copy '%s'", jr->base);
    bcs->es.args = a->data;
    bcs->es.callback = bc_copy_created;
    rc = libxl__exec_start(egc, &bcs->es);
    if (rc) goto fail;
    return;
 fail:
    jobrec_remove(gc, &op->st, jr->vdev);
 out:
    bc_done(egc, bcs, rc);
}

static void bc_copy_created(libxl__egc *egc, libxl__exec_state *es, int rc,
                            int status)
{
    libxl__block_commit_state *bcs =
        CONTAINER_OF(es, libxl__block_commit_state, es);
    STATE_AO_GC(bcs->ao);

    if (rc) {
        /* (a partial image is ours: it goes with the record) */
        copy_outcome(gc, &bcs->op, &bcs->jr, false, false);
        jobrec_remove(gc, &bcs->op.st, bcs->jr.vdev);
        bc_done(egc, bcs, rc);
        return;
    }
    /* what was made, so that no pivot goes to another file */
    libxl__blockjob_copy_dest_id(bcs->jr.base, &bcs->jr.dest_dev,
                                 &bcs->jr.dest_ino);
    if (bcs->jr.dest_ino) {
        rc = jobrec_write(gc, &bcs->op.st, &bcs->jr);
        if (rc) {
            copy_outcome(gc, &bcs->op, &bcs->jr, false, false);
            jobrec_remove(gc, &bcs->op.st, bcs->jr.vdev);
            bc_done(egc, bcs, rc);
            return;
        }
    }
    libxl__fault_point("blockcopy");  /* dest made, no job yet */
    bc_copy_start(egc, bcs);
}

static void bc_copy_start(libxl__egc *egc, libxl__block_commit_state *bcs)
{
    const jobrec *jr = &bcs->jr;

    bcs->bj.ao = bcs->ao;
    bcs->bj.d = &bcs->op.d;
    bcs->bj.info.id = jr->id;
    bcs->bj.info.vdev = jr->vdev;
    bcs->bj.info.type = jr->type;
    bcs->bj.info.live = jr->live;
    bcs->bj.info.top = jr->top;
    bcs->bj.info.base = jr->base;
    bcs->bj.info.speed = bcs->p.bandwidth;
    bcs->bj.info.len = libxl__json_get_integer(chain_at(bcs, 0),
                                               "virtual-size", 0);
    bcs->bj.active = bcs->disk->pdev_path;
    bcs->bj.active_format = bcs->disk->format;
    bcs->bj.top_format = jr->top_format;
    bcs->bj.base_format = jr->base_format;
    bcs->bj.target_node = jr->node;
    bcs->bj.copy_backing = jr->backing;
    bcs->bj.copy_backing_format = jr->backing_format;
    bcs->bj.copy_shallow = jr->shallow;
    bcs->bj.copy_reuse = !jr->created || jr->live;
    bcs->bj.copy_dest_dev = jr->dest_dev;
    bcs->bj.copy_dest_ino = jr->dest_ino;
    bcs->bj.at_ready = jr->at_ready;
    bcs->bj.no_wait = !!(bcs->p.flags & LIBXLSNAP_BLOCK_COMMIT_NO_WAIT) &&
        jr->live;
    bcs->bj.timeout_ms = bcs->p.timeout_ms;
    bcs->bj.progress = &bcs->progress;
    bcs->bj.fault_op = "blockcopy";
    bcs->bj.callback = bc_job_done;
    libxl__blockjob_start(egc, &bcs->bj);
}

/* ---------------------------------------------------------------- */
/* outcome */

static void bc_job_done(libxl__egc *egc, libxl__blockjob *bj, int rc)
{
    libxl__block_commit_state *bcs =
        CONTAINER_OF(bj, libxl__block_commit_state, bj);
    libxl__snapshot_op *op = &bcs->op;
    STATE_AO_GC(bcs->ao);

    if (!bj->started && bj->info.live) {
        /* QEMU refused to start it: nothing happened (but a copy's dest
         * made for it, which goes) */
        if (bcs->jr.type == LIBXLSNAP_BLOCKJOB_TYPE_COPY)
            copy_outcome(gc, op, &bcs->jr, false, false);
        jobrec_remove(gc, &op->st, bcs->vdev);
        goto out;
    }
    switch (bj->info.state) {
    case LIBXLSNAP_BLOCKJOB_STATE_RUNNING:
    case LIBXLSNAP_BLOCKJOB_STATE_READY:
        /* left running (--async) or waiting at READY: record stays */
        if (rc && bcs->jr.type == LIBXLSNAP_BLOCKJOB_TYPE_COPY &&
            bcs->jr.at_ready == LIBXL__BLOCKJOB_AT_READY_PIVOT) {
            /* the pivot refused (dest gone): no later command makes it */
            bcs->jr.at_ready = LIBXL__BLOCKJOB_AT_READY_STOP;
            jobrec_write(gc, &op->st, &bcs->jr);
        }
        if (!rc && bj->info.state == LIBXLSNAP_BLOCKJOB_STATE_READY)
            LOG(INFO, "job %s is ready: pivot or abort it with xl "
                "block-job", bj->info.id);
        goto out;
    case LIBXLSNAP_BLOCKJOB_STATE_COMPLETED:
        break;
    default:
        /*
         * Cancelled (--keep-overlay, abort, timeout) or failed: the
         * chain is as it was, but base may have been written already:
         * the snapshots whose data is base's (or read through it) lost
         * it.  An explicit abort, or --keep-overlay, is a success.
         */
        if (bj->info.state == LIBXLSNAP_BLOCKJOB_STATE_CANCELLED &&
            bcs->jr.type == LIBXLSNAP_BLOCKJOB_TYPE_COPY && !rc &&
            bcs->jr.at_ready == LIBXL__BLOCKJOB_AT_READY_CANCEL &&
            bcs->kind != BC_CONTROL) {
            /* --finish: the mirror completed without a pivot */
            bcs->completed = true;
            bc_finalize(egc, bcs);
            return;
        }
        if (bj->info.state == LIBXLSNAP_BLOCKJOB_STATE_CANCELLED &&
            ((!rc && bcs->jr.at_ready == LIBXL__BLOCKJOB_AT_READY_CANCEL) ||
             (bcs->kind == BC_CONTROL &&
              bcs->verb_sent && bcs->verb == LIBXL__BLOCKJOB_VERB_CANCEL)))
            rc = 0;
        else if (!rc)
            rc = ERROR_FAIL;
        bcs->final_rc = rc;
        if (bcs->jr.type == LIBXLSNAP_BLOCKJOB_TYPE_STREAM) {
            jobrec_remove(gc, &op->st, bcs->vdev);
            goto out;
        }
        bc_finalize(egc, bcs);
        return;
    }
    bcs->completed = true;

    if (!bj->info.live && bcs->jr.type != LIBXLSNAP_BLOCKJOB_TYPE_STREAM &&
        bcs->jr.type != LIBXLSNAP_BLOCKJOB_TYPE_COPY) {
        queue_after_commit(gc, bcs);
        bcs->next = 0;
        bc_after_next(egc, bcs);
        return;
    }
    bc_finalize(egc, bcs);
    return;
 out:
    bc_done(egc, bcs, rc);
}

/*
 * Offline, after qemu-img commit: the bitmaps, then the image above top
 * pointed at base (qemu-img commit leaves it on top).
 */
static void queue_after_commit(libxl__gc *gc,
                               libxl__block_commit_state *bcs)
{
    const libxl__blockjob *bj = &bcs->bj;
    int i, j, n = 1;

    for (i = 0; i < bj->num_bitmaps; i++) n += 2 + bj->bitmaps[i].num_sources;
    GCNEW_ARRAY(bcs->cmds, n);
    for (i = 0; i < bj->num_bitmaps; i++) {
        const struct libxl__blockjob_bitmap *b = &bj->bitmaps[i];
        if (b->add)
            bcs->cmds[bcs->num_cmds++] = libxl__qemu_img_bitmap_args(gc,
                bcs->jr.base, b->name, b->granularity, NULL, 0);
        for (j = 0; j < b->num_sources; j++)
            bcs->cmds[bcs->num_cmds++] = libxl__qemu_img_bitmap_args(gc,
                bcs->jr.base, b->name, 0, b->sources[j],
                LIBXL_DISK_FORMAT_QCOW2);
        if (b->state) {
            libxl__flexarray *a = libxl__flexarray_new(gc);
            libxl__flexarray_append_pair(a, CTX->qemu_img, "bitmap");
            libxl__flexarray_append(a, b->state > 0 ? "--enable"
                                                    : "--disable");
            libxl__flexarray_append_pair(a, bcs->jr.base, b->name);
            bcs->cmds[bcs->num_cmds++] = a->data;
        }
    }
    if (bcs->jr.above ||
        bcs->jr.at_ready == LIBXL__BLOCKJOB_AT_READY_CANCEL) {
        const char *img = bcs->jr.above ? bcs->jr.above : bcs->jr.top;
        const char *base = bcs->jr.base;
        /* --keep-relative: a name relative to the image's directory */
        if ((bcs->p.flags & LIBXLSNAP_BLOCK_COMMIT_KEEP_RELATIVE) &&
            !strcmp(libxl__path_dirname(gc, base),
                    libxl__path_dirname(gc, img)))
            base = libxl__path_basename(gc, base);
        bcs->cmds[bcs->num_cmds++] = libxl__qemu_img_rebase_args(gc, img,
            base, bcs->jr.base_format);
    }
}

static void bc_after_next(libxl__egc *egc, libxl__block_commit_state *bcs)
{
    STATE_AO_GC(bcs->ao);
    int rc;

    if (bcs->next == bcs->num_cmds) {
        bc_finalize(egc, bcs);
        return;
    }
    libxl__exec_init(&bcs->es);
    bcs->es.ao = ao;
    bcs->es.what = GCSPRINTF("after the commit of %s", bcs->jr.vdev);
    bcs->es.args = bcs->cmds[bcs->next];
    /* a bitmap's failure is a warning (bc_after_done): not logged here */
    bcs->es.quiet = !strcmp(bcs->cmds[bcs->next][1], "bitmap");
    bcs->es.callback = bc_after_done;
    rc = libxl__exec_start(egc, &bcs->es);
    if (rc) bc_done(egc, bcs, rc);
}

static void bc_after_done(libxl__egc *egc, libxl__exec_state *es, int rc,
                          int status)
{
    libxl__block_commit_state *bcs =
        CONTAINER_OF(es, libxl__block_commit_state, es);
    STATE_AO_GC(bcs->ao);

    if (rc && !strcmp(bcs->cmds[bcs->next][1], "bitmap")) {
        /* metadata only: the data is committed; go on */
        const char *why = libxl__tool_error_line(gc, es->err);
        LOG(WARN, "disk %s: a dirty bitmap could not be merged into '%s'"
            "%s%s%s", bcs->vdev, bcs->jr.base, why ? " (" : "",
            why ? why : "", why ? ")" : "");
        rc = 0;
    }
    if (rc) {
        /* the data is in base, and the chain above still reads right */
        LOG(ERROR, "disk %s: committed, but '%s' could not be pointed at "
            "'%s'", bcs->vdev, bcs->jr.above ? bcs->jr.above : bcs->jr.top,
            bcs->jr.base);
        bc_done(egc, bcs, rc);
        return;
    }
    bcs->next++;
    bc_after_next(egc, bcs);
}

/*
 * The outcome of a commit into the records, once the job is over
 * (done: completed; pivot: the disk now runs on base).  A stream
 * changes no record.  What follows, in this order: with --delete the
 * merged images go (after the records: a crash between leaves unused
 * images, never a record without its image), then the job record.
 */
static int record_outcome_records(libxl__gc *gc, libxl__snapshot_op *op,
                                  const jobrec *jr, bool done, bool pivot)
{
    libxl__snapshot_tree *t = &op->tree;
    int rc;

    if (jr->type == LIBXLSNAP_BLOCKJOB_TYPE_STREAM) return 0;
    if (jr->type == LIBXLSNAP_BLOCKJOB_TYPE_COPY)
        return copy_outcome(gc, op, jr, done, pivot);
    if (pivot)
        libxl__domain_record_set_disk(gc, &t->dom, &op->cfg, jr->vdev, jr->base,
                                      jr->base_format);
    rc = follow_outcome(gc, op, jr, done, NULL);
    if (rc) return rc;
    if (pivot && op->d.running && CTX->driver->set_active_disk) {
        rc = CTX->driver->set_active_disk(gc, &op->d, jr->vdev, jr->top,
                                          jr->base, jr->base_format);
        if (rc) return rc;
    }
    return 0;
}

static bool removes_merged(const jobrec *jr, bool done)
{
    return done && jr->del && jr->type != LIBXLSNAP_BLOCKJOB_TYPE_STREAM &&
        jr->num_merged > 0;
}

static void remove_merged_sync(libxl__gc *gc, const jobrec *jr)
{
    int i;

    for (i = 0; i < jr->num_merged; i++) {
        if (unlink(jr->merged[i]) && errno != ENOENT)
            LOGE(WARN, "cannot remove merged image '%s'", jr->merged[i]);
    }
}

/*
 * record_outcome_records, the merged images removed, the job record,
 * all at once (adopting a job at the start of a command; the commit's
 * own ao does the removal in a child: bc_finalize).
 */
static int record_outcome(libxl__gc *gc, libxl__snapshot_op *op,
                          const jobrec *jr, bool done, bool pivot)
{
    int rc;

    rc = record_outcome_records(gc, op, jr, done, pivot);
    if (rc) return rc;
    if (removes_merged(jr, done)) remove_merged_sync(gc, jr);
    jobrec_remove(gc, &op->st, jr->vdev);
    return 0;
}

static void bc_merged_removed(libxl__egc *egc, libxl__exec_state *es,
                              int rc, int status);
static void bc_recorded(libxl__egc *egc, libxl__block_commit_state *bcs);

static void bc_finalize(libxl__egc *egc, libxl__block_commit_state *bcs)
{
    STATE_AO_GC(bcs->ao);
    const jobrec *jr = &bcs->jr;
    bool done = bcs->completed;
    int rc;

    rc = record_outcome_records(gc, &bcs->op, jr, done,
                        done && (jr->type == LIBXLSNAP_BLOCKJOB_TYPE_ACTIVE_COMMIT ||
                                 jr->type == LIBXLSNAP_BLOCKJOB_TYPE_COPY) &&
                        jr->at_ready != LIBXL__BLOCKJOB_AT_READY_CANCEL);
    if (rc) goto out;
    if (removes_merged(jr, done)) {
        const char **files;           /* NULL-terminated */
        GCNEW_ARRAY(files, jr->num_merged + 1);
        memcpy(files, jr->merged, jr->num_merged * sizeof(*files));
        libxl__exec_init(&bcs->es);
        bcs->es.ao = ao;
        bcs->es.what = GCSPRINTF("removal of the images merged into '%s'",
                                 jr->base);
        bcs->es.child_fn = libxl__unlink_files_child;
        bcs->es.child_arg = files;
        /* the commit is recorded: this only frees their space */
        bcs->es.unabortable = true;
        bcs->es.quiet = true;
        bcs->es.callback = bc_merged_removed;
        if (!libxl__exec_start(egc, &bcs->es)) return;
        remove_merged_sync(gc, jr);     /* no child: here, then */
    }
    bc_recorded(egc, bcs);
    return;
 out:
    bc_done(egc, bcs, rc);
}

static void bc_merged_removed(libxl__egc *egc, libxl__exec_state *es,
                              int rc, int status)
{
    libxl__block_commit_state *bcs =
        CONTAINER_OF(es, libxl__block_commit_state, es);
    STATE_AO_GC(bcs->ao);

    if (rc && !libxl__unlink_files_report(gc, es, "merged image"))
        LOG(WARN, "the images merged into '%s' may not all be removed",
            bcs->jr.base);
    bc_recorded(egc, bcs);
}

/* the outcome recorded (and the merged images gone): the job record */
static void bc_recorded(libxl__egc *egc, libxl__block_commit_state *bcs)
{
    STATE_AO_GC(bcs->ao);

    jobrec_remove(gc, &bcs->op.st, bcs->jr.vdev);
    bc_done(egc, bcs, bcs->final_rc);
}

/*
 * What only the records a commit dropped held, owned by nobody now:
 * their memory images, their internal snapshots in the other disks'
 * images and their LVM snapshot volumes are removed.  The commit is
 * done by then.  A part that cannot be removed keeps its record: the
 * record comes back holding only such parts (its other disks "no", no
 * memory), so that nothing is left that no record owns; said.
 */
static int drop_lost_parts(libxl__gc *gc, libxl__snapshot_op *op,
                           const libxlsnap_domain_snapshot *lost, int n,
                           const char *vdev)
{
    libxl__snapshot_tree *t = &op->tree;
    int i, j, r, kept = 0;

    for (i = 0; i < n; i++) {
        libxlsnap_domain_snapshot s = lost[i];
        char *left = NULL;
        const char *why = NULL, *w;

        if (s.memory && unlink(s.memory) && errno != ENOENT)
            LOGE(WARN, "snapshot '%s': cannot remove its memory image '%s'",
                 s.name, s.memory);
        GCNEW_ARRAY(s.disks, s.num_disks);
        for (j = 0; j < s.num_disks; j++) {
            libxlsnap_disk_snapshot *ds = &s.disks[j];
            const libxl__snapshot_backend *be;
            *ds = lost[i].disks[j];
            be = libxl__snapshot_backend_of(ds);
            r = 0;
            w = NULL;
            /* (an overlay or VHD's data is an image of its own, which
             * the unused-image sweep removes: no ->drop) */
            if (strcmp(ds->vdev, vdev) && ds->file && ds->tag && be &&
                be->drop) {
                r = be->drop(gc, op, ds, t, &w);
                if (r && !why) why = w;
            }
            if (r) {
                left = GCSPRINTF("%s%s%s", left ? left : "",
                                 left ? ", " : "", ds->vdev);
                continue;
            }
            ds->type = LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO;
        }
        if (!left) continue;
        s.memory = NULL;
        s.current = false;
        if (s.parent && !libxl__snapshot_tree_find(t, s.parent))
            s.parent = NULL;
        libxl__snapshot_tree_add(gc, t, &s);
        kept++;
        LOG(WARN, "snapshot '%s': its part of disk(s) %s could not be "
            "removed%s%s%s, so it stays, for those disk(s) only", s.name,
            left, why ? " (" : "", why ? why : "", why ? ")" : "");
    }
    if (!kept) return 0;
    libxl__snapshot_tree_fixup(gc, t);
    return libxl__snapshot_store_save(gc, &op->st, t);
}

/*
 * The records after a commit (done: completed), in the tree and on
 * disk: snapshots re-pointed or dropped, as the design comment at the
 * top says; then what only the dropped ones held is removed.  The
 * dropped ones are said in a warning, or with dropped_r, returned
 * (NULL: none) for the caller to say.
 */
static int follow_outcome(libxl__gc *gc, libxl__snapshot_op *op,
                          const jobrec *jr, bool done,
                          const char **dropped_r)
{
    libxl__snapshot_tree *t = &op->tree;
    libxlsnap_domain_snapshot *lost = NULL;
    char *dropped = NULL;
    int i, j, n = 0, rc;

    for (i = 0; i < t->num_snaps; i++) {
        libxlsnap_domain_snapshot *s = &t->snaps[i];
        bool gone = false;
        for (j = 0; j < s->num_disks; j++) {
            libxlsnap_disk_snapshot *ds = &s->disks[j];
            const libxl__snapshot_backend *be =
                libxl__snapshot_backend_of(ds);
            if (strcmp(ds->vdev, jr->vdev) || !be || !ds->file)
                continue;
            if (done && jr->type == LIBXLSNAP_BLOCKJOB_TYPE_COMMIT &&
                !strcmp(ds->file, jr->top) && be->chained) {
                /* its data is now exactly base's */
                ds->file = GCSTRDUP(jr->base);
                ds->format = jr->base_format;
            } else if ((!strcmp(ds->file, jr->base) && !be->in_image) ||
                       (jr->num_merged > 1 &&
                        in_list(jr->merged + 1, jr->num_merged - 1,
                                ds->file))) {
                /*
                 * base was written with what top and the images between
                 * held: base's own data, and the view through those
                 * images, changed.  Through top itself nothing changed
                 * (top shadows all it gave), so merged[0] is spared; and
                 * a qcow2 snapshot inside base keeps its own clusters
                 * (writes to base copy them first), over the unchanged
                 * images below base.
                 */
                gone = true;
            }
            if (done && jr->del && ds->overlay &&
                in_list(jr->merged, jr->num_merged, ds->overlay))
                ds->overlay = NULL;
        }
        if (gone) {
            /* a copy: removing moves the tree's entries */
            GCREALLOC_ARRAY(lost, n + 1);
            lost[n++] = *s;
            dropped = GCSPRINTF("%s%s%s", dropped ? dropped : "",
                                dropped ? ", " : "", s->name);
        }
    }
    for (i = 0; i < n; i++)
        libxl__snapshot_tree_remove(gc, t, lost[i].name);
    if (dropped_r)
        *dropped_r = dropped;
    else if (n)
        LOG(WARN, "disk %s: the commit %s the data of snapshot(s) %s; "
            "their records are removed", jr->vdev,
            done ? "merged away" : "overwrote (in base)", dropped);
    libxl__snapshot_tree_fixup(gc, t);
    rc = libxl__snapshot_store_save(gc, &op->st, t);
    if (rc) return rc;
    return drop_lost_parts(gc, op, lost, n, jr->vdev);
}

/* Does a snapshot record (or the config) need image, or one above it? */
static const char *copy_needed_by(libxl__gc *gc, libxl__snapshot_op *op,
                                  const char *vdev, const char *image)
{
    int i, j;

    for (i = 0; i < op->tree.num_snaps; i++)
        for (j = 0; j < op->tree.snaps[i].num_disks; j++) {
            const libxlsnap_disk_snapshot *ds = &op->tree.snaps[i].disks[j];
            if (strcmp(ds->vdev, vdev) ||
                ds->type == LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO)
                continue;
            if ((ds->file && !strcmp(ds->file, image)) ||
                (ds->overlay && !strcmp(ds->overlay, image)))
                return GCSPRINTF("snapshot '%s'", op->tree.snaps[i].name);
        }
    for (i = 0; i < op->cfg.num_disks; i++)
        if (op->cfg.disks[i].pdev_path &&
            !strcmp(copy_name(gc, op->cfg.disks[i].pdev_path), image))
            return "the domain config";
    return NULL;
}

/*
 * What the domain left by a pivot (the old active image; the whole old
 * chain after a full copy), said: each is kept, needed by a snapshot
 * (or the config), or used by nothing.  Chains are read from the top
 * down: what an image needs, the images below it are needed for.
 */
static void copy_say_left(libxl__gc *gc, libxl__snapshot_op *op,
                          const jobrec *jr)
{
    const char **files = NULL, *by = NULL, *n;
    char *all = NULL, *unused = NULL, *needed = NULL;
    int nf = 0, i;

    if (!jr->shallow && jr->num_old_chain > 0) {
        files = jr->old_chain;        /* as planned: no qemu-img here */
        nf = jr->num_old_chain;
    } else if (jr->shallow || !libxl__image_is_file(jr->top) ||
        libxl__qemu_img_chain(gc, jr->top, &files, &nf, NULL) || nf < 1) {
        GCNEW_ARRAY(files, 1);
        files[0] = jr->top;
        nf = 1;
    }
    for (i = 0; i < nf; i++) {
        n = copy_needed_by(gc, op, jr->vdev, files[i]);
        if (n && !by) by = n;
        all = GCSPRINTF("%s%s'%s'", all ? all : "", all ? ", " : "",
                        files[i]);
        if (by)
            needed = GCSPRINTF("%s%s'%s' (%s)", needed ? needed : "",
                               needed ? ", " : "", files[i], n ? n : by);
        else
            unused = GCSPRINTF("%s%s'%s'", unused ? unused : "",
                               unused ? ", " : "", files[i]);
    }
    LOG(NOTICE, "disk %s now runs on '%s' and no longer uses %s%s",
        jr->vdev, jr->base, nf > 1 ? "its old chain " : "", all);
    if (needed)
        LOG(NOTICE, "disk %s: kept for what still needs them: %s",
            jr->vdev, needed);
    if (unused)
        LOG(NOTICE, "disk %s: kept, though nothing needs %s any more "
            "(remove %s when you wish)", jr->vdev, unused,
            strchr(unused, ',') ? "them" : "it");
}

/* Is the file dest the one the job made (it exists, and is the file
 * made when its identity was recorded)? */
static bool copy_dest_ours(const jobrec *jr)
{
    uint64_t dev, ino;

    if (!libxl__file_exists(jr->base)) return false;
    if (!jr->dest_ino) return true;
    libxl__blockjob_copy_dest_id(jr->base, &dev, &ino);
    return dev == jr->dest_dev && ino == jr->dest_ino;
}

/*
 * The outcome of a copy (done: dest is complete; pivot: the domain runs
 * on it).  No snapshot's record changes; a pivot changes the domain's
 * record and the driver's; dest goes when it is not done and the job
 * made it.  Idempotent (adoption may record it again).
 */
static int copy_outcome(libxl__gc *gc, libxl__snapshot_op *op,
                        const jobrec *jr, bool done, bool pivot)
{
    libxl__active_disk *a;
    int rc;

    if (!done) {
        if (!jr->created) return 0;
        if (!libxl__image_is_file(jr->base)) {
            if (!libxl__rbd_image_remove(gc, jr->base))
                LOG(INFO, "disk %s: the unfinished copy '%s' is removed",
                    jr->vdev, jr->base);
        } else if (!copy_dest_ours(jr)) {
            /* never made (qemu-img create failed), or another file
             * now: nothing of ours */
        } else if (unlink(jr->base) && errno != ENOENT) {
            LOGE(WARN, "disk %s: cannot remove the unfinished copy '%s'",
                 jr->vdev, jr->base);
        } else {
            LOG(INFO, "disk %s: the unfinished copy '%s' is removed",
                jr->vdev, jr->base);
        }
        return 0;
    }
    if (!pivot) {
        if (jr->shallow)
            LOG(NOTICE, "disk %s: the copy '%s' is built on '%s', an "
                "image of the domain's snapshot tree, which nothing "
                "records for the copy: the copy changes or breaks if those "
                "snapshots are deleted or committed (qemu-img rebase it, "
                "or copy in full, for a copy of its own)", jr->vdev,
                jr->base, jr->backing);
        return 0;
    }
    libxl__domain_record_set_disk(gc, &op->tree.dom, &op->cfg, jr->vdev,
                                  jr->base, jr->base_format);
    a = libxl__domain_record_disk(&op->tree.dom, jr->vdev);
    if (a && strcmp(jr->top, jr->base) &&
        !in_list(a->copied_from, a->num_copied_from, jr->top)) {
        GCREALLOC_ARRAY(a->copied_from, a->num_copied_from + 1);
        a->copied_from[a->num_copied_from++] = GCSTRDUP(jr->top);
    }
    rc = libxl__snapshot_store_save(gc, &op->st, &op->tree);
    if (rc) return rc;
    if (op->d.running && CTX->driver->set_active_disk) {
        rc = CTX->driver->set_active_disk(gc, &op->d, jr->vdev, jr->top,
                                          jr->base, jr->base_format);
        if (rc) return rc;
    }
    copy_say_left(gc, op, jr);
    libxl__fault_point("blockcopy");  /* recorded, the job record not gone */
    return 0;
}

int libxl__commit_stopped_records(libxl__gc *gc, libxl__snapshot_op *op,
                                  const char *vdev, const char *top,
                                  const char *base, const char **dropped_r)
{
    jobrec jr;
    char *merged[1];

    memset(&jr, 0, sizeof(jr));
    jr.vdev = (char *)vdev;
    jr.type = LIBXLSNAP_BLOCKJOB_TYPE_COMMIT;
    jr.top = (char *)top;
    jr.base = (char *)base;
    merged[0] = (char *)top;
    jr.merged = merged;
    jr.num_merged = 1;
    return follow_outcome(gc, op, &jr, false, dropped_r);
}

#define ADOPT_WAIT_MS 30000

/*
 * A live job whose process died, and that QEMU still has, is adopted.
 * Waiting at READY for the verb its process was to send (pivot, or
 * cancel for --keep-overlay): the verb is sent now and the job followed
 * to its end, on the caller's loop: ERROR_NOT_READY tells
 * libxl__snapshot_op_begin to call libxl__blockjob_recover again a
 * little later (op->adopt_id: the job it waits for; ERROR_TIMEDOUT
 * after ADOPT_WAIT_MS), instead of a wait in place.  Waiting at PENDING
 * (a stream or intermediate commit, auto-finalize off): the images
 * written out and the job finalized (libxl__blockjob_finalize_sync),
 * then waited for the same way.  Concluded:
 * dismissed, and its outcome recorded as its process would have (a pivot is read from QEMU itself: a BlockBackend
 * on base).  Still running: left to run, for the next command; READY
 * and told to stop there (--async, or no --pivot): left to
 * `xl block-job`.
 */
static int adopt_job(libxl__gc *gc, libxl__snapshot_op *op, const jobrec *jr,
                     yajl_val job)
{
    libxlsnap_blockjob_state st = LIBXLSNAP_BLOCKJOB_STATE_RUNNING;
    yajl_val args = NULL;
    const char *err;
    bool done, pivot = false;
    int i, rc;

    libxl__json_add_string(gc, &args, "id", jr->id);
    libxl__blockjob_state_from_qemu(libxl__json_get_string(job, "status"),
                                    &st);
    if (op->adopt_id && !strcmp(op->adopt_id, jr->id) &&
        st != LIBXLSNAP_BLOCKJOB_STATE_CONCLUDED) {
        /* told to finish, not yet concluded: the caller asks again */
        if (libxl__now_ms() > op->adopt_deadline) {
            LOG(ERROR, "block job %s did not end after its %s", jr->id,
                at_ready_str(jr->at_ready));
            return ERROR_TIMEDOUT;
        }
        return ERROR_NOT_READY;
    }
    if (st == LIBXLSNAP_BLOCKJOB_STATE_READY &&
        jr->type == LIBXLSNAP_BLOCKJOB_TYPE_COPY &&
        jr->at_ready == LIBXL__BLOCKJOB_AT_READY_PIVOT &&
        libxl__blockjob_copy_dest_changed(gc, jr->id, jr->base, jr->dest_dev,
                                          jr->dest_ino)) {
        /* no pivot onto a file that is gone: left to xl block-job */
        jobrec stop = *jr;
        stop.at_ready = LIBXL__BLOCKJOB_AT_READY_STOP;
        return jobrec_write(gc, &op->st, &stop);
    }
    if (st == LIBXLSNAP_BLOCKJOB_STATE_READY &&
        jr->at_ready != LIBXL__BLOCKJOB_AT_READY_STOP) {
        bool copy = jr->type == LIBXLSNAP_BLOCKJOB_TYPE_COPY;
        const char *cmd = jr->at_ready == LIBXL__BLOCKJOB_AT_READY_PIVOT
            ? "job-complete" : copy ? "block-job-cancel" : "job-cancel";
        if (copy && jr->at_ready == LIBXL__BLOCKJOB_AT_READY_PIVOT &&
            jr->node && jr->base_format == LIBXL_DISK_FORMAT_QCOW2)
            libxl__blockjob_copy_bitmaps_sync(gc, op->d.qmp_path, jr->top,
                                              jr->top_format, jr->node,
                                              !jr->shallow);
        yajl_val cargs = NULL;
        if (copy && jr->at_ready == LIBXL__BLOCKJOB_AT_READY_CANCEL)
            libxl__json_add_string(gc, &cargs, "device", jr->id);
        rc = libxl__qmp_run_sync(gc, op->d.qmp_path, cmd,
                                 cargs ? cargs : args, 0, false, NULL);
        if (rc) return rc;
        LOG(INFO, "block job %s on disk %s outlived its process: %s",
            jr->id, jr->vdev, at_ready_str(jr->at_ready));
        op->adopt_id = GCSTRDUP(jr->id);
        op->adopt_deadline = libxl__now_ms() + ADOPT_WAIT_MS;
        return ERROR_NOT_READY;
    }
    if (st == LIBXLSNAP_BLOCKJOB_STATE_RUNNING &&
        !strcmp(libxl__json_get_string(job, "status") ?: "", "pending")) {
        /* a stream or intermediate commit waits for its finalize, the
         * images written out first (as its process would have) */
        rc = libxl__blockjob_finalize_sync(gc, op->d.qmp_path, jr->id);
        if (rc) return rc;
        LOG(INFO, "block job %s on disk %s outlived its process: "
            "finalized", jr->id, jr->vdev);
        op->adopt_id = GCSTRDUP(jr->id);
        op->adopt_deadline = libxl__now_ms() + ADOPT_WAIT_MS;
        return ERROR_NOT_READY;
    }
    if (st != LIBXLSNAP_BLOCKJOB_STATE_CONCLUDED) return 0;

    /* QEMU says "Operation canceled" after a cancel at READY */
    err = jr->at_ready == LIBXL__BLOCKJOB_AT_READY_CANCEL ? NULL
        : libxl__json_get_string(job, "error");
    done = !err;
    if (done && jr->type == LIBXLSNAP_BLOCKJOB_TYPE_COPY) {
        /* pivoted, or finished (the domain stays on its image) */
        pivot = libxl__qmp_runs_on(gc, op->d.qmp_path, jr->base);
        done = pivot || jr->at_ready == LIBXL__BLOCKJOB_AT_READY_CANCEL;
    } else if (done && jr->type == LIBXLSNAP_BLOCKJOB_TYPE_ACTIVE_COMMIT) {
        /* pivoted, or cancelled at READY (the top stays active) */
        pivot = libxl__qmp_runs_on(gc, op->d.qmp_path, jr->base);
        done = pivot;
    }
    rc = libxl__qmp_run_sync(gc, op->d.qmp_path, "job-dismiss", args, 0,
                             false, NULL);
    if (rc) return rc;
    if (pivot && jr->type == LIBXLSNAP_BLOCKJOB_TYPE_COPY)
        libxl__qmp_drop_file_nodes(gc, op->d.qmp_path, jr->top);
    if (done) {
        /* the nodes of the images that left the chain (as the engine):
         * merged[] is top down to base */
        for (i = 0; i < jr->num_merged; i++)
            libxl__qmp_drop_file_nodes(gc, op->d.qmp_path, jr->merged[i]);
    }
    rc = record_outcome(gc, op, jr, done, pivot);
    if (rc) return rc;
    LOG(WARN, "domain %s: block job %s on disk %s outlived its process; "
        "it ended (%s%s) and its outcome is recorded", op->d.name, jr->id,
        jr->vdev, err ? "failed: " : done ? "completed" : "cancelled",
        err ? err : "");
    return 0;
}

/*
 * A live job QEMU no longer lists, QEMU still running: its process
 * dismissed it, then died or failed to write the records.  Completed if
 * the graph shows it: an active commit's device runs on base (pivoted),
 * an intermediate commit's image above top is now on base.  Recorded as
 * such, else ERROR_NOTFOUND (outcome unknown: the caller drops what
 * base's writes may have overwritten).
 */
static int dismissed_outcome(libxl__gc *gc, libxl__snapshot_op *op,
                             const jobrec *jr)
{
    yajl_val nodes = NULL;
    bool pivot = false, done = false;
    size_t i;
    int rc;

    if (jr->type == LIBXLSNAP_BLOCKJOB_TYPE_ACTIVE_COMMIT ||
        jr->type == LIBXLSNAP_BLOCKJOB_TYPE_COPY) {
        pivot = done = libxl__qmp_runs_on(gc, op->d.qmp_path, jr->base);
    } else if (jr->above &&
               !libxl__qmp_run_sync(gc, op->d.qmp_path,
                                    "query-named-block-nodes",
                                    libxl__qmp_args_flat(gc), 0, true, &nodes) &&
               YAJL_IS_ARRAY(nodes)) {
        for (i = 0; i < nodes->u.array.len; i++) {
            yajl_val n = nodes->u.array.values[i];
            const char *f = libxl__json_get_string(n, "file");
            const char *b = libxl__json_get_string(n, "backing_file");
            if (f && b && !strcmp(f, jr->above) && !strcmp(b, jr->base))
                done = true;
        }
    }
    if (!done) return ERROR_NOTFOUND;
    for (i = 0; i < (size_t)jr->num_merged; i++)
        libxl__qmp_drop_file_nodes(gc, op->d.qmp_path, jr->merged[i]);
    rc = record_outcome(gc, op, jr, true, pivot);
    if (rc) return rc;
    LOG(WARN, "domain %s: block job %s on disk %s had completed, but its "
        "outcome was not recorded; it is now", op->d.name, jr->id,
        jr->vdev);
    return 0;
}

/*
 * Under the lock, at the start of every command: the job records whose
 * process died.  A job QEMU still has is adopted (adopt_job).  A job no
 * QEMU runs any more (the domain's QEMU died with it, or restarted) has
 * an unknown outcome: a commit may have written part of top into base,
 * so the snapshots whose data was in base are dropped (as after an
 * abort), and the record goes.  An offline job's qemu-img died with its
 * process (PR_SET_PDEATHSIG): the same.
 */
int libxl__blockjob_recover(libxl__gc *gc, libxl__snapshot_op *op)
{
    yajl_val job;
    jobrec jr;
    int i, rc;

    /* a backup's jobs are the backup's (libxl_snapshot_backup.c) */
    rc = libxl__backup_recover(gc, op);
    if (rc) return rc;
    for (i = 0; i < op->d.num_disks; i++) {
        if (op->own_job && !strcmp(op->own_job, op->d.disks[i].vdev))
            continue;                 /* xl block-job controls it */
        if (jobrec_read(gc, &op->st, op->d.disks[i].vdev, &jr)) continue;
        if (jr.type == LIBXLSNAP_BLOCKJOB_TYPE_BACKUP) continue;
        if (jobrec_owner_alive(gc, &jr))
            continue;                 /* its process is alive */
        rc = libxl__snapshot_op_load_all(gc, op);
        if (rc) return rc;
        /* an outcome recorded here may move the active image (a pivot):
         * the caller reads the domain again before it plans on it */
        op->recovered = true;
        if (jr.live && op->d.running) {
            if (query_job(gc, &op->d, jr.id, &job))
                continue;             /* cannot tell: leave it */
            if (job) {
                rc = adopt_job(gc, op, &jr, job);
                if (rc) return rc;
                continue;
            }
            if (jr.type != LIBXLSNAP_BLOCKJOB_TYPE_STREAM) {
                /* QEMU runs, the job was dismissed: its outcome is in
                 * QEMU's graph (a record write failed after the end) */
                rc = dismissed_outcome(gc, op, &jr);
                if (rc != ERROR_NOTFOUND) {
                    if (rc) return rc;
                    continue;
                }
            }
        }
        if (jr.type == LIBXLSNAP_BLOCKJOB_TYPE_COPY) {
            /* the pivot recorded already (only the job record left)? */
            const libxl__active_disk *a =
                libxl__domain_record_disk(&op->tree.dom, jr.vdev);
            bool pivoted = a && a->path && !strcmp(a->path, jr.base);
            rc = copy_outcome(gc, op, &jr, pivoted, false);
            if (rc) return rc;
        } else if (jr.type != LIBXLSNAP_BLOCKJOB_TYPE_STREAM) {
            rc = follow_outcome(gc, op, &jr, false, NULL);
            if (rc) return rc;
        }
        jobrec_remove(gc, &op->st, jr.vdev);
        LOG(WARN, "domain %s: block job %s on disk %s died with its "
            "process%s; its record is cleared", op->d.name, jr.id, jr.vdev,
            jr.live && op->d.running ? " (QEMU does not run it)"
                                     : " and its QEMU");
    }
    return 0;
}

static void bc_done(libxl__egc *egc, libxl__block_commit_state *bcs,
                    int rc)
{
    STATE_AO_GC(bcs->ao);
    libxl__snapshot_op_end(gc, &bcs->op);
    if (bcs->callback)
        bcs->callback(egc, bcs->for_callback, rc);
    else
        libxl__ao_complete(egc, ao, rc);
}

/* ---------------------------------------------------------------- */
/* job control */

/* The job on vdev as QEMU reports it, for a live job. */
static int query_job(libxl__gc *gc, const libxl__domain *d, const char *id,
                     yajl_val *job_r)
{
    yajl_val jobs = NULL;
    size_t i;
    int rc;

    *job_r = NULL;
    rc = libxl__qmp_run_sync(gc, d->qmp_path, "query-jobs", NULL, 0, false,
                             &jobs);
    if (rc) return rc;
    for (i = 0; jobs && YAJL_IS_ARRAY(jobs) && i < jobs->u.array.len; i++) {
        const char *jid = libxl__json_get_string(jobs->u.array.values[i],
                                                 "id");
        if (jid && !strcmp(jid, id)) *job_r = jobs->u.array.values[i];
    }
    return 0;
}

int libxl__blockjob_pending(libxl__gc *gc, const libxl__snapshot_store *st,
                            const libxl__domain *d, const char *vdev,
                            libxl__blockjob_seen *seen_r)
{
    yajl_val job = NULL;
    jobrec jr;
    int rc;

    memset(seen_r, 0, sizeof(*seen_r));
    rc = jobrec_read(gc, st, vdev, &jr);
    if (rc) return rc;
    seen_r->id = jr.id;
    seen_r->top = jr.top;
    seen_r->base = jr.base;
    if (jr.live && d->running && !query_job(gc, d, jr.id, &job) && job) {
        seen_r->status = libxl__json_get_string(job, "status");
        if (!seen_r->status) seen_r->status = "running";
        return 0;
    }
    if (jobrec_owner_alive(gc, &jr)) {
        seen_r->status = "running";   /* its process is alive */
        return 0;
    }
    return ERROR_FAIL;
}

/* Domain and job record, without the lock (records are atomic). */
static int find_job(libxl__gc *gc, const char *domain, const char *vdev,
                    libxl__domain *d, jobrec *jr)
{
    libxl__snapshot_store st;
    int rc;

    rc = libxl__domain_identify(gc, domain, d, NULL);
    if (rc) return rc;
    rc = libxl__snapshot_store_open(gc, CTX->state_dir, &d->uuid, &st);
    if (rc) return rc;
    rc = jobrec_read(gc, &st, vdev, jr);
    if (rc == ERROR_NOTFOUND)
        LOG(ERROR, "disk %s of domain %s has no block job", vdev, d->name);
    return rc;
}

int libxlsnap_blockjob_get(libxlsnap_ctx *ctx, const char *domain,
                       const char *vdev, libxlsnap_blockjob_info *info_r)
{
    if (ARGS_MISSING(ctx, domain, vdev, info_r)) return ERROR_INVAL;
    GC_INIT(ctx);
    libxl__domain d;
    jobrec jr;
    yajl_val job = NULL;
    int rc;

    libxlsnap_blockjob_info_init(info_r);
    rc = find_job(gc, domain, vdev, &d, &jr);
    if (rc) goto out;
    info_r->id = strdup(jr.id);
    info_r->vdev = strdup(vdev);
    info_r->type = jr.type;
    info_r->live = jr.live;
    info_r->top = jr.top ? strdup(jr.top) : NULL;
    info_r->base = jr.base ? strdup(jr.base) : NULL;
    info_r->state = LIBXLSNAP_BLOCKJOB_STATE_RUNNING;
    if (jr.live && d.running) {
        rc = query_job(gc, &d, jr.id, &job);
        if (rc) goto out;
    } else if (jr.live) {
        LOG(ERROR, "disk %s of domain %s: block job %s is gone with the "
            "domain's QEMU (the next command on the domain clears its "
            "record)", vdev, d.name, jr.id);
        rc = ERROR_NOTFOUND;
        goto out;
    }
    if (!job) {
        /* recorded, but not (or no longer) in QEMU */
        info_r->state = jr.live ? LIBXLSNAP_BLOCKJOB_STATE_CONCLUDED
                                : LIBXLSNAP_BLOCKJOB_STATE_RUNNING;
        goto out;
    }
    libxl__blockjob_state_from_qemu(libxl__json_get_string(job, "status"),
                                    &info_r->state);
    info_r->offset = libxl__json_get_integer(job, "current-progress", 0);
    info_r->len = libxl__json_get_integer(job, "total-progress", 0);
    if (libxl__json_get_string(job, "error"))
        info_r->error = strdup(libxl__json_get_string(job, "error"));
    {
        /* the speed is only in query-block-jobs */
        yajl_val bjobs = NULL;
        size_t i;
        if (!libxl__qmp_run_sync(gc, d.qmp_path, "query-block-jobs", NULL,
                                 0, true, &bjobs) && bjobs &&
            YAJL_IS_ARRAY(bjobs))
            for (i = 0; i < bjobs->u.array.len; i++) {
                yajl_val b = bjobs->u.array.values[i];
                const char *dev = libxl__json_get_string(b, "device");
                if (dev && !strcmp(dev, jr.id))
                    info_r->speed = libxl__json_get_integer(b, "speed", 0);
            }
    }
 out:
    if (rc) libxlsnap_blockjob_info_dispose(info_r);
    GC_FREE;
    return rc;
}

int libxlsnap_blockjob_set_speed(libxlsnap_ctx *ctx, const char *domain,
                             const char *vdev, uint64_t bandwidth)
{
    if (ARGS_MISSING(ctx, domain, vdev)) return ERROR_INVAL;
    GC_INIT(ctx);
    libxl__domain d;
    jobrec jr;
    yajl_val args = NULL;
    int rc;

    rc = find_job(gc, domain, vdev, &d, &jr);
    if (rc) goto out;
    if (!jr.live || !d.running) {
        LOG(ERROR, "job %s runs in qemu-img: its speed is set when it "
            "starts", jr.id);
        rc = ERROR_INVAL;
        goto out;
    }
    libxl__json_add_string(gc, &args, "device", jr.id);
    libxl__json_add_uint64(gc, &args, "speed", bandwidth);
    rc = libxl__qmp_run_sync(gc, d.qmp_path, "block-job-set-speed", args,
                             0, false, NULL);
 out:
    GC_FREE;
    return rc;
}

/*
 * qemu-img runs in the process that started the job: that process is
 * asked to abort it (xl aborts on SIGINT), and its job record is then
 * polled every OFFLINE_POLL_MS on the loop until the process has
 * recorded the outcome (at most 30 s).  ao_abort stops the wait (the
 * SIGINT is sent: the other process still aborts its job).
 */
#define OFFLINE_POLL_MS 50

static void offline_poll(libxl__egc *egc, libxl__ev_time *ev, int rc);
static void offline_abort(libxl__egc *egc, libxl__ao_abortable *ab,
                          int rc);
static void offline_done(libxl__egc *egc, libxl__block_commit_state *bcs,
                         int rc);

static void abort_offline_job(libxl__egc *egc,
                              libxl__block_commit_state *bcs,
                              const libxl__domain *d)
{
    STATE_AO_GC(bcs->ao);
    const jobrec *jr = &bcs->jr;
    int rc;

    libxl__ev_time_init(&bcs->opoll);
    libxl__ao_abortable_init(&bcs->oabrt);
    rc = libxl__snapshot_store_open(gc, CTX->state_dir, &d->uuid, &bcs->ost);
    if (rc) goto out;
    if (jr->host && strcmp(jr->host, this_host(gc))) {
        LOG(ERROR, "job %s runs on host %s (process %ld): control it "
            "there", jr->id, jr->host, jr->owner);
        rc = ERROR_INVAL;
        goto out;
    }
    if (jr->owner <= 0 || kill((pid_t)jr->owner, SIGINT)) {
        LOG(WARN, "job %s: the process that ran it is gone; its outcome "
            "is unknown, records unchanged", jr->id);
        jobrec_remove(gc, &bcs->ost, jr->vdev);
        goto out;
    }
    bcs->odeadline = libxl__now_ms() + 30000;
    bcs->oabrt.ao = ao;
    bcs->oabrt.callback = offline_abort;
    rc = libxl__ao_abortable_register(&bcs->oabrt);
    if (rc) goto out;
    offline_poll(egc, &bcs->opoll, 0);
    return;
 out:
    offline_done(egc, bcs, rc);
}

static void offline_poll(libxl__egc *egc, libxl__ev_time *ev, int rc)
{
    libxl__block_commit_state *bcs =
        CONTAINER_OF(ev, libxl__block_commit_state, opoll);
    STATE_AO_GC(bcs->ao);
    const jobrec *jr = &bcs->jr;
    jobrec now;

    rc = 0;                           /* (the timer's ERROR_TIMEDOUT) */
    if (jobrec_read(gc, &bcs->ost, jr->vdev, &now) || strcmp(now.id, jr->id))
        goto out;                     /* its outcome is recorded */
    if (libxl__now_ms() > bcs->odeadline) {
        LOG(ERROR, "job %s: process %ld did not stop it", jr->id,
            jr->owner);
        rc = ERROR_TIMEDOUT;
        goto out;
    }
    rc = libxl__ev_time_register_rel(gc, &bcs->opoll, offline_poll,
                                     OFFLINE_POLL_MS);
    if (!rc) return;
 out:
    offline_done(egc, bcs, rc);
}

static void offline_abort(libxl__egc *egc, libxl__ao_abortable *ab,
                          int rc)
{
    libxl__block_commit_state *bcs =
        CONTAINER_OF(ab, libxl__block_commit_state, oabrt);
    offline_done(egc, bcs, rc);
}

static void offline_done(libxl__egc *egc, libxl__block_commit_state *bcs,
                         int rc)
{
    STATE_AO_GC(bcs->ao);

    libxl__ev_time_deregister(gc, &bcs->opoll);
    libxl__ao_abortable_deregister(&bcs->oabrt);
    libxl__ao_complete(egc, ao, rc);
}

static int blockjob_control(libxlsnap_ctx *ctx, const char *domain,
                            const char *vdev, libxl__blockjob_verb verb,
                            const libxl_asyncop_how *ao_how)
{
    AO_CREATE(ctx, ao_how);
    EGC_INIT(ctx);
    libxl__block_commit_state *bcs;
    libxl__domain d;
    jobrec jr;
    yajl_val job = NULL;
    libxlsnap_blockjob_state st = LIBXLSNAP_BLOCKJOB_STATE_RUNNING;
    int rc;

    rc = bc_create(ctx, ao, &bcs, BC_CONTROL, domain, vdev, NULL);
    if (rc) goto out;
    bcs->verb = verb;
    rc = find_job(gc, domain, vdev, &d, &jr);
    if (rc) goto out;
    if (jr.type == LIBXLSNAP_BLOCKJOB_TYPE_BACKUP) {
        LOG(ERROR, "job %s is part of a backup of domain %s: end it with "
            "xl backup-end [--abort]", jr.id, d.name);
        rc = ERROR_INVAL;
        goto out;
    }
    if (jr.live && d.running) {
        rc = query_job(gc, &d, jr.id, &job);
        if (rc) goto out;
        if (job)
            libxl__blockjob_state_from_qemu(
                libxl__json_get_string(job, "status"), &st);
        if (job && libxl__blockjob_verb_ok(st, verb)) {
            yajl_val args = NULL;
            if (jr.type == LIBXLSNAP_BLOCKJOB_TYPE_COPY &&
                verb == LIBXL__BLOCKJOB_VERB_COMPLETE &&
                libxl__blockjob_copy_dest_changed(gc, jr.id, jr.base,
                                                  jr.dest_dev, jr.dest_ino)) {
                rc = ERROR_INVAL;
                goto out;
            }
            if (jr.type == LIBXLSNAP_BLOCKJOB_TYPE_COPY &&
                verb == LIBXL__BLOCKJOB_VERB_COMPLETE && jr.node &&
                jr.base_format == LIBXL_DISK_FORMAT_QCOW2)
                libxl__blockjob_copy_bitmaps_sync(gc, d.qmp_path, jr.top,
                                                  jr.top_format, jr.node,
                                                  !jr.shallow);
            libxl__json_add_string(gc, &args, "id", jr.id);
            rc = libxl__qmp_run_sync(gc, d.qmp_path,
                    verb == LIBXL__BLOCKJOB_VERB_COMPLETE ? "job-complete"
                                                          : "job-cancel",
                    args, 0, false, NULL);
            if (rc) goto out;
            bcs->verb_sent = true;
        } else if (job && st != LIBXLSNAP_BLOCKJOB_STATE_CONCLUDED) {
            LOG(ERROR, "job %s is %s: it cannot be %s now", jr.id,
                libxlsnap_blockjob_state_to_string(st),
                verb == LIBXL__BLOCKJOB_VERB_COMPLETE ? "pivoted"
                                                      : "aborted");
            rc = ERROR_INVAL;
            goto out;
        }
    } else if (!jr.live && verb == LIBXL__BLOCKJOB_VERB_COMPLETE) {
        LOG(ERROR, "job %s runs in qemu-img: there is nothing to pivot",
            jr.id);
        rc = ERROR_INVAL;
        goto out;
    } else if (!jr.live) {
        bcs->jr = jr;
        abort_offline_job(egc, bcs, &d);
        EGC_FREE;
        return AO_INPROGRESS;
    }
    /*
     * Whoever holds the domain lock waits for this job and will record
     * its outcome; if nobody does, we follow it and record it here.
     */
    bcs->op.lock_once = true;
    bcs->op.own_job = bcs->vdev;
    libxl__snapshot_op_begin(egc, &bcs->op);
    EGC_FREE;
    return AO_INPROGRESS;
 out:
    EGC_FREE;
    return AO_CREATE_FAIL(rc);
}

int libxlsnap_blockjob_abort(libxlsnap_ctx *ctx, const char *domain,
                         const char *vdev, const libxl_asyncop_how *ao_how)
{
    if (ARGS_MISSING(ctx, domain, vdev)) return ERROR_INVAL;
    return blockjob_control(ctx, domain, vdev, LIBXL__BLOCKJOB_VERB_CANCEL,
                            ao_how);
}

int libxlsnap_blockjob_pivot(libxlsnap_ctx *ctx, const char *domain,
                         const char *vdev, const libxl_asyncop_how *ao_how)
{
    if (ARGS_MISSING(ctx, domain, vdev)) return ERROR_INVAL;
    return blockjob_control(ctx, domain, vdev,
                            LIBXL__BLOCKJOB_VERB_COMPLETE, ao_how);
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
