/*
 * libxl_snapshot_blockjob.c - running one block job, live or offline
 *
 * A block job (commit, stream or copy) is driven here; what it means
 * for the records is decided by the caller (libxl_snapshot_commit.c,
 * snapshot delete).
 *
 * States, as QEMU's job.c, with an explicit transition table: a job
 * only moves along an edge of blockjob_stt, and a verb (complete,
 * cancel, set-speed, dismiss) is only sent in a state blockjob_verbs
 * allows.  NEW -> RUNNING -> [READY ->] CONCLUDED -> COMPLETED, FAILED
 * or CANCELLED; ABORTING on the way to a cancel.
 *
 * Live (the domain runs): QMP block-commit / block-stream with a job
 * id of ours and auto-dismiss off, so that an error can be read after
 * the end.  The QMP socket is held only for one exchange at a time:
 * the job is followed by polling query-jobs from a timer (5 ms at
 * first, doubling up to 100 ms, no later than the end its progress
 * predicts; see next_poll_ms), connecting for each poll, so that other
 * xl commands can use the monitor meanwhile (QEMU serves one client at
 * a time).  Events are not needed: READY and CONCLUDED are states
 * query-jobs shows, so a READY reached between two polls cannot be
 * missed.
 *   At READY (active commit): pivot (job-complete), cancel (the top
 * stays active, base keeps a point-in-time copy), or report READY
 * and leave the job to a later pivot or abort.  A job that never gets
 * to READY under heavy writes is ended by the timeout.
 *
 * A copy (xl block-copy) is a mirror of the active image into a
 * destination the caller made: QMP drive-mirror, mode "existing", with
 * a node-name of ours, sync "full" (dest is standalone) or "top"
 * (shallow: dest's header names the active image's backing, which QEMU
 * opens under it when the job completes).  drive-mirror rather than
 * blockdev-mirror: QEMU opens the target itself and drops it with the
 * job when the copy is not pivoted (--finish, abort, failure), so no
 * node of ours is ever left to delete, and after a pivot the target is
 * the device's root like any image the device was opened on; with
 * blockdev-mirror the target (and, shallow, a node for its backing
 * shared with the source) would be ours to blockdev-del on every path,
 * adoption by another process included.  A mirror goes RUNNING ->
 * READY like an active commit: pivot = job-complete (the persistent
 * dirty bitmaps of the active image are added to the target and merged
 * into it just before, in one transaction, as libvirt does); finish =
 * block-job-cancel without force at READY, which completes the mirror
 * without a pivot and leaves the target a consistent point-in-time
 * copy (job-cancel forces, and would not); abort = job-cancel.  After a
 * pivot, the nodes of the old chain the monitor still holds are deleted
 * as a commit's leaving nodes (below).
 *
 * Offline: qemu-img commit -p [-r] / qemu-img rebase -p, progress
 * parsed from "(45.00/100%)"; a VHD top: vhd-util coalesce into its
 * parent (the one level a VHD chain merges), same progress lines; a
 * copy: qemu-img convert -p [-n] [-r] (shallow: -B the active image's
 * backing, which copies the top layer's data only), --bitmaps between
 * two qcow2 images.
 *
 * Nodes left behind: QEMU drops the nodes of the images that leave the
 * chain only when nothing else holds them.  Nodes the monitor added
 * (blockdev-add: Xen's xen-block creates each disk's nodes so) stay
 * in the graph after a completed job, still holding base as their
 * backing, so the next snapshot of base fails ("node is busy").  So
 * the nodes of the leaving images are noted at the start, and once the
 * job has completed those still there are deleted (blockdev-del); a
 * node that is still in use is refused by QEMU and kept.
 *
 * Written out before the graph changes: a stream or an intermediate
 * commit (waited for) runs with auto-finalize off and stops at
 * PENDING; there QEMU is told "stop" (vm_stop drains and flushes every
 * image: the L2 tables of the clusters the job copied, which QEMU 7.2
 * otherwise keeps in its qcow2 metadata cache while the stream's end
 * rewrites the top's header without a backing file), then "cont" if
 * the guest ran (a pause of a few ms, logged), then job-finalize.  At
 * PENDING all is copied: an abort or a timeout then comes too late, as
 * for a job that finalizes itself (only a refused stop cancels).
 * Without it, QEMU killed right after a "complete" stream lost the
 * data the base images had held.  QMP 7.2 has no flush command of its
 * own.  A mirror (active commit, copy) flushes its target before READY
 * itself, and a commit's base is flushed when it is reopened read-only
 * at the end, but only after the overlay's header names it: the stop
 * covers that too.  An --async job (no_wait) finalizes by itself: no
 * one is there to flush.
 *
 * Abort and timeout: live, job-cancel and follow the job to its end;
 * offline, kill qemu-img.  Either way the callback comes once the job
 * is really over, never while it still runs.
 *
 * Steps (live): libxl__blockjob_start -> blockjob_connected ->
 *   blockjob_nodes -> blockjob_started -> [blockjob_poll ->
 *   blockjob_poll_connected -> blockjob_polled (-> blockjob_verb_sent)]*
 *   -> [blockjob_leftovers -> blockjob_drop_next*] -> blockjob_done
 * Steps (offline): libxl__blockjob_start -> blockjob_exec_line* ->
 *   blockjob_exec_done -> blockjob_done
 */
#include "libxl_snapshot_internal.h"

#include <inttypes.h>
#include <signal.h>
#include <sys/stat.h>

/*
 * The next poll: 5 ms at first (a short job ends in milliseconds),
 * doubling up to 100 ms, but never after the job's expected end, from
 * its progress since the last poll: READY, or the end, is seen within
 * milliseconds, not up to 100 ms late.  Once the progress is at its end
 * (a mirror still flushes before READY), every 20 ms at most; and fast
 * again after a verb (the job answers job-complete or job-cancel at
 * once).
 */
#define BLOCKJOB_POLL_FIRST_MS 5
#define BLOCKJOB_POLL_MS 100
#define BLOCKJOB_POLL_END_MS 20           /* progress at its end */

static int next_poll_ms(libxl__blockjob *bj)
{
    uint64_t now = libxl__now_ms(), done, left, dt, pred;
    bool at_end = bj->info.len && bj->info.offset >= bj->info.len;
    int ms;

    if (at_end && bj->polled_offset < bj->info.len)
        bj->poll_ms = 0;              /* just reached its end */
    bj->poll_ms = bj->poll_ms ? bj->poll_ms * 2 : BLOCKJOB_POLL_FIRST_MS;
    if (bj->poll_ms > (at_end ? BLOCKJOB_POLL_END_MS : BLOCKJOB_POLL_MS))
        bj->poll_ms = at_end ? BLOCKJOB_POLL_END_MS : BLOCKJOB_POLL_MS;
    ms = bj->poll_ms;
    if (bj->polled_at_ms && now > bj->polled_at_ms &&
        bj->info.offset > bj->polled_offset &&
        bj->info.len > bj->info.offset) {
        done = bj->info.offset - bj->polled_offset;
        left = bj->info.len - bj->info.offset;
        dt = now - bj->polled_at_ms;
        /* left * dt / done, without overflowing on huge disks */
        pred = left / done >= (uint64_t)ms ? (uint64_t)ms
             : left / done * dt + left % done * dt / done;
        if (pred < (uint64_t)ms) ms = pred;
        if (ms < BLOCKJOB_POLL_FIRST_MS) ms = BLOCKJOB_POLL_FIRST_MS;
    }
    bj->polled_at_ms = now;
    bj->polled_offset = bj->info.offset;
    return ms;
}

/* ---------------------------------------------------------------- */
/* the state machine */

#define S_NEW       LIBXLSNAP_BLOCKJOB_STATE_NEW
#define S_RUNNING   LIBXLSNAP_BLOCKJOB_STATE_RUNNING
#define S_READY     LIBXLSNAP_BLOCKJOB_STATE_READY
#define S_ABORTING  LIBXLSNAP_BLOCKJOB_STATE_ABORTING
#define S_CONCLUDED LIBXLSNAP_BLOCKJOB_STATE_CONCLUDED
#define S_COMPLETED LIBXLSNAP_BLOCKJOB_STATE_COMPLETED
#define S_FAILED    LIBXLSNAP_BLOCKJOB_STATE_FAILED
#define S_CANCELLED LIBXLSNAP_BLOCKJOB_STATE_CANCELLED
#define NSTATES 8

/* blockjob_stt[from][to]: the allowed transitions */
static const bool blockjob_stt[NSTATES][NSTATES] = {
    /*              NEW RUN RDY ABT CON CMP FAI CAN */
    [S_NEW]       = { 0,  1,  0,  1,  1,  0,  1,  0 },
    [S_RUNNING]   = { 0,  0,  1,  1,  1,  0,  1,  0 },
    [S_READY]     = { 0,  1,  0,  1,  1,  0,  1,  0 },
    [S_ABORTING]  = { 0,  0,  0,  0,  1,  0,  1,  0 },
    [S_CONCLUDED] = { 0,  0,  0,  0,  0,  1,  1,  1 },
    [S_COMPLETED] = { 0 },
    [S_FAILED]    = { 0 },
    [S_CANCELLED] = { 0 },
};

/* blockjob_verbs[verb][state]: may the verb be sent in that state */
static const bool blockjob_verbs[LIBXL__BLOCKJOB_VERB_NUM][NSTATES] = {
    /*                                  NEW RUN RDY ABT CON CMP FAI CAN */
    [LIBXL__BLOCKJOB_VERB_COMPLETE]  = { 0,  0,  1,  0,  0,  0,  0,  0 },
    [LIBXL__BLOCKJOB_VERB_CANCEL]    = { 1,  1,  1,  0,  0,  0,  0,  0 },
    [LIBXL__BLOCKJOB_VERB_SET_SPEED] = { 1,  1,  1,  0,  0,  0,  0,  0 },
    [LIBXL__BLOCKJOB_VERB_DISMISS]   = { 0,  0,  0,  0,  1,  0,  0,  0 },
    /* PENDING is part of RUNNING here: QEMU checks the finer state */
    [LIBXL__BLOCKJOB_VERB_FINALIZE]  = { 0,  1,  0,  0,  0,  0,  0,  0 },
};

bool libxl__blockjob_transition_ok(libxlsnap_blockjob_state from,
                                   libxlsnap_blockjob_state to)
{
    if (from == to) return true;
    if ((unsigned)from >= NSTATES || (unsigned)to >= NSTATES) return false;
    return blockjob_stt[from][to];
}

bool libxl__blockjob_verb_ok(libxlsnap_blockjob_state s,
                             libxl__blockjob_verb verb)
{
    if ((unsigned)s >= NSTATES || (unsigned)verb >= LIBXL__BLOCKJOB_VERB_NUM)
        return false;
    return blockjob_verbs[verb][s];
}

int libxl__blockjob_state_from_qemu(const char *status,
                                    libxlsnap_blockjob_state *s_r)
{
    static const struct { const char *q; libxlsnap_blockjob_state s; } map[] = {
        { "created", S_NEW }, { "running", S_RUNNING },
        { "paused", S_RUNNING }, { "standby", S_RUNNING },
        { "ready", S_READY }, { "waiting", S_RUNNING },
        { "pending", S_RUNNING }, { "aborting", S_ABORTING },
        { "concluded", S_CONCLUDED },
    };
    size_t i;

    for (i = 0; status && i < sizeof(map) / sizeof(map[0]); i++) {
        if (!strcmp(status, map[i].q)) {
            *s_r = map[i].s;
            return 0;
        }
    }
    return ERROR_INVAL;
}

static const char *verb_command(libxl__blockjob_verb v)
{
    switch (v) {
    case LIBXL__BLOCKJOB_VERB_COMPLETE: return "job-complete";
    case LIBXL__BLOCKJOB_VERB_CANCEL: return "job-cancel";
    case LIBXL__BLOCKJOB_VERB_SET_SPEED: return "block-job-set-speed";
    case LIBXL__BLOCKJOB_VERB_DISMISS: return "job-dismiss";
    case LIBXL__BLOCKJOB_VERB_FINALIZE: return "job-finalize";
    default: abort();
    }
}

/* Moves to state `to`; a transition off the table is a bug. */
static void blockjob_set_state(libxl__gc *gc, libxl__blockjob *bj,
                               libxlsnap_blockjob_state to)
{
    if (!libxl__blockjob_transition_ok(bj->info.state, to)) {
        LOG(ERROR, "job %s: invalid transition %s -> %s", bj->info.id,
            libxlsnap_blockjob_state_to_string(bj->info.state),
            libxlsnap_blockjob_state_to_string(to));
        assert(!"invalid block job transition");
    }
    bj->info.state = to;
}

/* ---------------------------------------------------------------- */

static void blockjob_connected(libxl__egc *egc, libxl__qmp *qmp,
                               yajl_val ret, int rc);
static void blockjob_schema(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                            int rc);
static void blockjob_nodes(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                           int rc);
static void blockjob_started(libxl__egc *egc, libxl__qmp *qmp,
                             yajl_val ret, int rc);
static void blockjob_poll(libxl__egc *egc, libxl__ev_time *ev, int rc);
static void blockjob_poll_connected(libxl__egc *egc, libxl__qmp *qmp,
                                    yajl_val ret, int rc);
static void blockjob_polled(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                            int rc);
static void blockjob_merged(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                            int rc);
static void blockjob_flush_status(libxl__egc *egc, libxl__qmp *qmp,
                                  yajl_val ret, int rc);
static void blockjob_flush_stopped(libxl__egc *egc, libxl__qmp *qmp,
                                   yajl_val ret, int rc);
static void blockjob_flushed(libxl__egc *egc, libxl__qmp *qmp,
                             yajl_val ret, int rc);
static void blockjob_verb_sent(libxl__egc *egc, libxl__qmp *qmp,
                               yajl_val ret, int rc);
static void blockjob_leftovers(libxl__egc *egc, libxl__qmp *qmp,
                               yajl_val nodes, int rc);
static void blockjob_drop_next(libxl__egc *egc, libxl__qmp *qmp,
                               yajl_val ret, int rc);
static void blockjob_exec_line(libxl__egc *egc, libxl__exec_state *es,
                               const char *line);
static void blockjob_exec_done(libxl__egc *egc, libxl__exec_state *es,
                               int rc, int status);
static void blockjob_timeout(libxl__egc *egc, libxl__ev_time *ev, int rc);
static void blockjob_abort(libxl__egc *egc, libxl__ao_abortable *ab,
                           int rc);
static void blockjob_done(libxl__egc *egc, libxl__blockjob *bj, int rc);

void libxl__blockjob_init(libxl__blockjob *bj)
{
    memset(bj, 0, sizeof(*bj));
    libxlsnap_blockjob_info_init(&bj->info);
    libxl__qmp_init(&bj->qmp);
    libxl__exec_init(&bj->es);
    libxl__ev_time_init(&bj->poll);
    libxl__ev_time_init(&bj->timeout);
    libxl__ao_abortable_init(&bj->abrt);
}

static void blockjob_progress(libxl__blockjob *bj)
{
    libxl__progress_report_job(bj->progress, &bj->info);
}

/* Timeout and abort: registered for the whole life of the job. */
static int blockjob_arm(libxl__gc *gc, libxl__blockjob *bj)
{
    int rc;

    bj->abrt.ao = bj->ao;
    bj->abrt.callback = blockjob_abort;
    rc = libxl__ao_abortable_register(&bj->abrt);
    if (rc) return rc;
    if (bj->timeout_ms > 0)
        libxl__ev_time_register_rel(gc, &bj->timeout, blockjob_timeout,
                                    bj->timeout_ms);
    return 0;
}

void libxl__blockjob_start(libxl__egc *egc, libxl__blockjob *bj)
{
    STATE_AO_GC(bj->ao);
    const libxl__snapshot_backend *be;
    libxl__flexarray *a;
    int rc;

    bj->info.state = S_NEW;
    rc = blockjob_arm(gc, bj);
    if (rc) goto out;

    if (bj->info.live) {
        bj->qmp.ao = ao;
        bj->qmp.path = bj->d->qmp_path;
        bj->qmp.domid = bj->d->domid;
        rc = libxl__qmp_connect(egc, &bj->qmp, blockjob_connected);
        if (rc) goto out;
        return;
    }

    be = libxl__chain_backend(bj->top_format);
    if (be->merge_args) {
        /* the images' own tool (vhd-util coalesce) */
        rc = be->merge_args(gc, &bj->info, &bj->es.args);
        if (rc) goto out;
        bj->es.ao = ao;
        bj->es.what = GCSPRINTF("merge of %s", bj->info.vdev);
        goto exec;
    }
    a = libxl__flexarray_new(gc);
    libxl__flexarray_append(a, CTX->qemu_img);
    if (bj->info.type == LIBXLSNAP_BLOCKJOB_TYPE_COPY) {
        libxl__flexarray_append_pair(a, "convert", "-p");
        if (bj->copy_reuse) libxl__flexarray_append(a, "-n");
        libxl__flexarray_append_pair(a, "-f",
            libxl__disk_format_qemu(bj->top_format));
        libxl__flexarray_append_pair(a, "-O",
            libxl__disk_format_qemu(bj->base_format));
        if (bj->copy_shallow && bj->copy_backing) {
            /* the top layer's data only, on the same backing */
            libxl__flexarray_append_pair(a, "-B", bj->copy_backing);
            libxl__flexarray_append_pair(a, "-F",
                libxl__disk_format_qemu(bj->copy_backing_format));
        }
        if (bj->top_format == LIBXL_DISK_FORMAT_QCOW2 &&
            bj->base_format == LIBXL_DISK_FORMAT_QCOW2)
            libxl__flexarray_append(a, "--bitmaps");
        if (bj->info.speed)
            libxl__flexarray_append_pair(a, "-r",
                GCSPRINTF("%"PRIu64, bj->info.speed));
        libxl__flexarray_append_pair(a, bj->info.top, bj->info.base);
    } else if (bj->info.type == LIBXLSNAP_BLOCKJOB_TYPE_BACKUP) {
        /* a full backup of a shut-off domain: the chain's data into a
         * standalone image, its bitmaps left out (they are the disk's) */
        libxl__flexarray_append_pair(a, "convert", "-p");
        libxl__flexarray_append_pair(a, "-f",
            libxl__disk_format_qemu(bj->top_format));
        libxl__flexarray_append_pair(a, "-O", "qcow2");
        if (bj->info.speed)
            libxl__flexarray_append_pair(a, "-r",
                GCSPRINTF("%"PRIu64, bj->info.speed));
        libxl__flexarray_append_pair(a, bj->info.top, bj->info.base);
    } else if (bj->info.type == LIBXLSNAP_BLOCKJOB_TYPE_STREAM) {
        libxl__flexarray_append_pair(a, "rebase", "-p");
        if (bj->info.base)
            libxl__flexarray_append_pair(a, "-F",
                libxl__disk_format_qemu(bj->base_format));
        libxl__flexarray_append_pair(a, "-b",
                                     bj->info.base ? bj->info.base : "");
        libxl__flexarray_append(a, bj->info.top);
    } else {
        libxl__flexarray_append_pair(a, "commit", "-p");
        if (bj->info.speed)
            libxl__flexarray_append_pair(a, "-r",
                GCSPRINTF("%"PRIu64, bj->info.speed));
        libxl__flexarray_append_pair(a, "-b", bj->info.base);
        libxl__flexarray_append(a, bj->info.top);
    }
    bj->es.ao = ao;
    bj->es.what = GCSPRINTF("%s of %s", bj->info.type ==
                            LIBXLSNAP_BLOCKJOB_TYPE_STREAM ? "stream"
                            : bj->info.type == LIBXLSNAP_BLOCKJOB_TYPE_COPY
                            ? "copy"
                            : bj->info.type == LIBXLSNAP_BLOCKJOB_TYPE_BACKUP
                            ? "backup" : "commit", bj->info.vdev);
    bj->es.args = a->data;
 exec:
    bj->es.stdout_line = blockjob_exec_line;
    bj->es.callback = blockjob_exec_done;
    rc = libxl__exec_start(egc, &bj->es);
    if (rc) goto out;
    blockjob_set_state(gc, bj, S_RUNNING);
    blockjob_progress(bj);
    return;
 out:
    blockjob_done(egc, bj, rc);
}

/* ---------------------------------------------------------------- */
/* live: start */

static void blockjob_connected(libxl__egc *egc, libxl__qmp *qmp,
                               yajl_val ret, int rc)
{
    libxl__blockjob *bj = CONTAINER_OF(qmp, libxl__blockjob, qmp);

    if (rc) goto out;
    if (qmp->version >= LIBXL__QEMU_VERSION(4, 2, 0)) {
        /* has them all (below); the schema would cost tens of ms */
        blockjob_schema(egc, qmp, NULL, 0);
        return;
    }
    rc = libxl__qmp_send(egc, qmp, "query-qmp-schema", NULL, -1,
                         blockjob_schema);
    if (rc) goto out;
    return;
 out:
    blockjob_done(egc, bj, rc);
}

/*
 * The running QEMU must know every command and argument we are going
 * to use: better a clear refusal now than a job we cannot finish.
 * QEMU 4.2 and later have them all (base-node and top-node came in
 * 3.1, the job commands in 3.0): checked only when an older QEMU, or
 * one that does not say its version, answers (schema NULL: known).
 */
static int blockjob_check_schema(libxl__gc *gc, const libxl__blockjob *bj,
                                 yajl_val schema)
{
    bool stream = bj->info.type == LIBXLSNAP_BLOCKJOB_TYPE_STREAM;
    bool copy = bj->info.type == LIBXLSNAP_BLOCKJOB_TYPE_COPY;
    const char *cmd = stream ? "block-stream" : copy ? "drive-mirror"
                                                     : "block-commit";
    const char *need[8];
    int n = 0, i;

    need[n++] = "job-id";
    need[n++] = "auto-dismiss";
    if (copy) need[n++] = "node-name";
    if (bj->info.base && !copy) need[n++] = "base-node";
    if (!stream && bj->info.type == LIBXLSNAP_BLOCKJOB_TYPE_COMMIT)
        need[n++] = "top-node";
    if (bj->backing_file) need[n++] = "backing-file";
    if (bj->num_merge_files || bj->num_bitmaps ||
        (!copy && bj->info.type != LIBXLSNAP_BLOCKJOB_TYPE_ACTIVE_COMMIT &&
         !bj->no_wait))
        need[n++] = "auto-finalize";
    for (i = 0; i < n; i++) {
        if (!libxl__qmp_schema_has(schema, cmd, need[i])) {
            LOG(ERROR, "this QEMU's %s has no '%s' argument; it cannot "
                "run this job (QEMU 4.2 or later is needed)", cmd, need[i]);
            return ERROR_QEMU_API;
        }
    }
    if (!libxl__qmp_schema_has(schema, "query-jobs", NULL) ||
        !libxl__qmp_schema_has(schema, "job-dismiss", NULL)) {
        LOG(ERROR, "this QEMU has no job commands (query-jobs, "
            "job-dismiss); QEMU 3.0 or later is needed");
        return ERROR_QEMU_API;
    }
    return 0;
}

static void blockjob_schema(libxl__egc *egc, libxl__qmp *qmp,
                            yajl_val schema, int rc)
{
    libxl__blockjob *bj = CONTAINER_OF(qmp, libxl__blockjob, qmp);
    STATE_AO_GC(bj->ao);

    if (rc) goto out;
    if (schema) {
        rc = blockjob_check_schema(gc, bj, schema);
        if (rc) goto out;
    }
    rc = libxl__qmp_send(egc, qmp, "query-named-block-nodes",
                         libxl__qmp_args_flat(gc), -1, blockjob_nodes);
    if (rc) goto out;
    return;
 out:
    blockjob_done(egc, bj, rc);
}

static const char *node_or_fail(libxl__gc *gc, yajl_val nodes,
                                const char *file, libxl_disk_format fmt,
                                const char *vdev)
{
    const char *n = libxl__qmp_node_for_file(gc, nodes, file, fmt);
    if (!n)
        LOG(ERROR, "disk %s: the running domain has no %s node for '%s'",
            vdev, libxl__disk_format_qemu(fmt), file);
    return n;
}

static yajl_val node_bitmaps(yajl_val nodes, const char *node)
{
    size_t i;
    for (i = 0; i < nodes->u.array.len; i++) {
        const char *n = libxl__json_get_string(nodes->u.array.values[i],
                                               "node-name");
        if (n && !strcmp(n, node))
            return libxl__json_get(nodes->u.array.values[i],
                                   "dirty-bitmaps");
    }
    return NULL;
}

static bool node_has_bitmap(yajl_val bms, const char *name)
{
    size_t i;
    for (i = 0; bms && YAJL_IS_ARRAY(bms) && i < bms->u.array.len; i++) {
        const char *n = libxl__json_get_string(bms->u.array.values[i],
                                               "name");
        if (n && !strcmp(n, name)) return true;
    }
    return false;
}

/* The bitmap plan of a live commit, from QEMU's own view of the nodes. */
static void live_bitmaps(libxl__gc *gc, libxl__blockjob *bj, yajl_val nodes,
                         const char *base)
{
    const char *top = libxl__qmp_node_for_file(gc, nodes, bj->merge_files[0],
                                               bj->top_format);
    yajl_val tb = top ? node_bitmaps(nodes, top) : NULL;
    yajl_val bb = node_bitmaps(nodes, base);
    size_t i;
    int j;

    if (!tb || !YAJL_IS_ARRAY(tb) || !tb->u.array.len) return;
    GCNEW_ARRAY(bj->bitmaps, tb->u.array.len);
    for (i = 0; i < tb->u.array.len; i++) {
        yajl_val b = tb->u.array.values[i];
        struct libxl__blockjob_bitmap *m = &bj->bitmaps[bj->num_bitmaps];
        const char *name = libxl__json_get_string(b, "name");
        if (!name || !libxl__json_get_bool(b, "persistent", false) ||
            libxl__json_get_bool(b, "inconsistent", false))
            continue;
        m->name = GCSTRDUP(name);
        m->granularity = libxl__json_get_integer(b, "granularity", 65536);
        m->add = !node_has_bitmap(bb, name);
        /* base records what top recorded: for an active commit base
         * becomes the active image (a checkpoint's older bitmap must not
         * record in it), and a bitmap added to a base below one must not
         * record the next commit's writes into it */
        m->state = libxl__json_get_bool(b, "recording", true) ? 1 : -1;
        GCNEW_ARRAY(m->sources, bj->num_merge_files);
        for (j = 0; j < bj->num_merge_files; j++) {
            const char *n = libxl__qmp_node_for_file(gc, nodes,
                                                     bj->merge_files[j],
                                                     LIBXL_DISK_FORMAT_QCOW2);
            if (!n || !node_has_bitmap(node_bitmaps(nodes, n), name)) break;
            m->sources[m->num_sources++] = bj->merge_files[j];
        }
        bj->num_bitmaps++;
    }
}

/*
 * The transaction that merges the bitmaps into base, as libvirt does:
 * for each bitmap of top, add it to base if missing, then merge it from
 * each image from top down to (not including) base, stopping at the
 * first image that lacks it.
 */
static int merge_actions(libxl__gc *gc, libxl__blockjob *bj, yajl_val nodes,
                         const char *base)
{
    /* kept until the merge: the ao's gc owns it */
    libxl__gc *agc = &bj->ao->gc;
    yajl_val args = NULL, acts, act, data, srcs, src;
    int i, j;

    acts = libxl__json_add_array(agc, &args, "actions");
    for (i = 0; i < bj->num_bitmaps; i++) {
        const struct libxl__blockjob_bitmap *b = &bj->bitmaps[i];

        if (b->add) {
            act = libxl__json_append_object(agc, acts);
            libxl__json_add_string(agc, &act, "type",
                                   "block-dirty-bitmap-add");
            data = libxl__json_add_object(agc, &act, "data");
            libxl__json_add_string(agc, &data, "node", base);
            libxl__json_add_string(agc, &data, "name", b->name);
            libxl__json_add_uint64(agc, &data, "granularity",
                                   b->granularity);
            libxl__json_add_bool(agc, &data, "persistent", true);
            if (b->state < 0)
                libxl__json_add_bool(agc, &data, "disabled", true);
        } else if (b->state) {
            act = libxl__json_append_object(agc, acts);
            libxl__json_add_string(agc, &act, "type", b->state > 0
                                   ? "block-dirty-bitmap-enable"
                                   : "block-dirty-bitmap-disable");
            data = libxl__json_add_object(agc, &act, "data");
            libxl__json_add_string(agc, &data, "node", base);
            libxl__json_add_string(agc, &data, "name", b->name);
        }
        act = libxl__json_append_object(agc, acts);
        libxl__json_add_string(agc, &act, "type", "block-dirty-bitmap-merge");
        data = libxl__json_add_object(agc, &act, "data");
        libxl__json_add_string(agc, &data, "node", base);
        libxl__json_add_string(agc, &data, "target", b->name);
        srcs = libxl__json_add_array(agc, &data, "bitmaps");
        for (j = 0; j < b->num_sources; j++) {
            const char *n = libxl__qmp_node_for_file(gc, nodes, b->sources[j],
                                                     LIBXL_DISK_FORMAT_QCOW2);
            if (!n) {
                LOG(ERROR, "job %s: no node for '%s'", bj->info.id,
                    b->sources[j]);
                return ERROR_FAIL;
            }
            src = libxl__json_append_object(agc, srcs);
            libxl__json_add_string(agc, &src, "node", n);
            libxl__json_add_string(agc, &src, "name", b->name);
        }
    }
    bj->merge_actions = args;
    return 0;
}

/*
 * A copy's bitmaps, as libvirt's: each persistent, consistent bitmap of
 * the source node (full: and of the layers below it, each merged from
 * every layer that has it, since a full copy holds the whole chain)
 * added to the target node (same name, granularity, recording as on
 * the source) and merged, in one transaction sent just before the
 * pivot.  NULL: none.
 */
static yajl_val copy_bitmap_actions(libxl__gc *gc, yajl_val nodes,
                                    const char *src, const char *target,
                                    const char *active,
                                    libxl_disk_format active_format,
                                    bool full)
{
    yajl_val bms = node_bitmaps(nodes, src), args = NULL, acts = NULL;
    yajl_val act, data, srcs, one;
    libxl__disk_bitmaps db;
    const char *why, **names = NULL;
    int n = 0, k, l;
    size_t i;

    /* which: src's persistent bitmaps; a full copy also those of the
     * layers below (their union is the bitmap of the whole disk) */
    memset(&db, 0, sizeof(db));
    if (full && libxl__disk_bitmaps_probe(gc, NULL, nodes, NULL, active,
                                          active_format, &db, &why))
        memset(&db, 0, sizeof(db));
    for (i = 0; bms && YAJL_IS_ARRAY(bms) && i < bms->u.array.len; i++) {
        const char *name = libxl__json_get_string(bms->u.array.values[i],
                                                  "name");
        if (!name || !libxl__json_get_bool(bms->u.array.values[i],
                                           "persistent", false))
            continue;
        GCREALLOC_ARRAY(names, n + 1);
        names[n++] = name;
    }
    for (l = 1; l < db.num_layers; l++)
        for (k = 0; k < db.layers[l].num_bitmaps; k++) {
            const char *name = db.layers[l].bitmaps[k].name;
            int m;
            if (!db.layers[l].node) continue;
            for (m = 0; m < n && strcmp(names[m], name); m++) ;
            if (m < n) continue;
            GCREALLOC_ARRAY(names, n + 1);
            names[n++] = name;
        }
    for (k = 0; k < n; k++) {
        const char *name = names[k];
        yajl_val b = NULL;
        bool bad = false;
        for (i = 0; bms && YAJL_IS_ARRAY(bms) && i < bms->u.array.len; i++)
            if (!strcmp(libxl__json_get_string(bms->u.array.values[i],
                                               "name") ?: "", name))
                b = bms->u.array.values[i];
        for (l = 1; l < db.num_layers; l++) {
            const libxl__bitmap_state *bs =
                libxl__disk_bitmap_find(&db, l, name);
            if (bs && bs->inconsistent) bad = true;
        }
        if (bad || (b && libxl__json_get_bool(b, "inconsistent", false)))
            continue;
        if (!acts) acts = libxl__json_add_array(gc, &args, "actions");
        act = libxl__json_append_object(gc, acts);
        libxl__json_add_string(gc, &act, "type", "block-dirty-bitmap-add");
        data = libxl__json_add_object(gc, &act, "data");
        libxl__json_add_string(gc, &data, "node", target);
        libxl__json_add_string(gc, &data, "name", name);
        if (b)
            libxl__json_add_uint64(gc, &data, "granularity",
                                   libxl__json_get_integer(b, "granularity",
                                                           65536));
        libxl__json_add_bool(gc, &data, "persistent", true);
        /* it records on the copy as it did on the source */
        if (!b || !libxl__json_get_bool(b, "recording", false))
            libxl__json_add_bool(gc, &data, "disabled", true);
        act = libxl__json_append_object(gc, acts);
        libxl__json_add_string(gc, &act, "type", "block-dirty-bitmap-merge");
        data = libxl__json_add_object(gc, &act, "data");
        libxl__json_add_string(gc, &data, "node", target);
        libxl__json_add_string(gc, &data, "target", name);
        srcs = libxl__json_add_array(gc, &data, "bitmaps");
        if (b) {
            one = libxl__json_append_object(gc, srcs);
            libxl__json_add_string(gc, &one, "node", src);
            libxl__json_add_string(gc, &one, "name", name);
        }
        for (l = 1; l < db.num_layers; l++) {
            if (!db.layers[l].node ||
                !libxl__disk_bitmap_find(&db, l, name))
                continue;
            one = libxl__json_append_object(gc, srcs);
            libxl__json_add_string(gc, &one, "node", db.layers[l].node);
            libxl__json_add_string(gc, &one, "name", name);
        }
    }
    return args;
}

void libxl__blockjob_copy_bitmaps_sync(libxl__gc *gc, const char *qmp_path,
                                       const char *active,
                                       libxl_disk_format active_format,
                                       const char *target_node, bool full)
{
    yajl_val nodes = NULL, acts;
    const char *src;

    if (libxl__qmp_run_sync(gc, qmp_path, "query-named-block-nodes",
                            libxl__qmp_args_flat(gc), 0, true, &nodes) ||
        !nodes || !YAJL_IS_ARRAY(nodes))
        return;
    src = libxl__qmp_node_for_file(gc, nodes, active, active_format);
    acts = src ? copy_bitmap_actions(gc, nodes, src, target_node, active,
                                     active_format, full) : NULL;
    if (acts && libxl__qmp_run_sync(gc, qmp_path, "transaction", acts, 0,
                                    true, NULL))
        LOG(WARN, "the dirty bitmaps of '%s' could not be carried over to "
            "the copy", active);
}

int libxl__blockjob_finalize_sync(libxl__gc *gc, const char *qmp_path,
                                  const char *id)
{
    yajl_val args = NULL;
    bool cont_failed;
    int rc;

    rc = libxl__qmp_flush_images(gc, qmp_path, NULL, &cont_failed);
    if (cont_failed)
        LOG(ERROR, "job %s: QEMU did not resume the guest after "
            "writing its images out: xl unpause it", id);
    if (rc) goto out;
    libxl__json_add_string(gc, &args, "id", id);
    rc = libxl__qmp_run_sync(gc, qmp_path, "job-finalize", args, 0, false,
                             NULL);
 out:
    return rc;
}

static const char *node_backing(yajl_val nodes, const char *file)
{
    size_t i;
    for (i = 0; i < nodes->u.array.len; i++) {
        yajl_val n = nodes->u.array.values[i];
        const char *f = libxl__json_get_string(n, "file");
        const char *b = libxl__json_get_string(n, "backing_file");
        if (f && b && !strcmp(f, file)) return b;
    }
    return NULL;
}

/*
 * The nodes (format and protocol) of the images that leave the chain:
 * commit, top down to base (excluded); stream, below top down to base
 * (excluded), or to the bottom.
 */
static void plan_leaving(libxl__gc *gc, libxl__blockjob *bj, yajl_val nodes)
{
    const char *file = bj->info.top;
    size_t i;
    int depth;

    if (bj->info.type == LIBXLSNAP_BLOCKJOB_TYPE_STREAM)
        file = node_backing(nodes, file);
    GCNEW_ARRAY(bj->leaving, nodes->u.array.len);
    for (depth = 0; file && depth < 64; depth++) {
        if (bj->info.base && !strcmp(file, bj->info.base)) break;
        for (i = 0; i < nodes->u.array.len; i++) {
            yajl_val n = nodes->u.array.values[i];
            const char *f = libxl__json_get_string(n, "file");
            const char *name = libxl__json_get_string(n, "node-name");
            if (f && name && !strcmp(f, file) &&
                bj->num_leaving < (int)nodes->u.array.len)
                bj->leaving[bj->num_leaving++] = GCSTRDUP(name);
        }
        file = node_backing(nodes, file);
    }
}

static void blockjob_nodes(libxl__egc *egc, libxl__qmp *qmp,
                           yajl_val nodes, int rc)
{
    libxl__blockjob *bj = CONTAINER_OF(qmp, libxl__blockjob, qmp);
    STATE_AO_GC(bj->ao);
    const char *top, *base = NULL, *dev, *cmd;
    yajl_val args = NULL;

    if (rc) goto out;
    rc = ERROR_FAIL;
    if (!nodes || !YAJL_IS_ARRAY(nodes)) goto out;
    dev = node_or_fail(gc, nodes, bj->active, bj->active_format,
                       bj->info.vdev);
    top = node_or_fail(gc, nodes, bj->info.top, bj->top_format,
                       bj->info.vdev);
    if (!dev || !top) goto out;
    if (bj->info.base && bj->info.type != LIBXLSNAP_BLOCKJOB_TYPE_COPY) {
        base = node_or_fail(gc, nodes, bj->info.base, bj->base_format,
                            bj->info.vdev);
        if (!base) goto out;
    }

    plan_leaving(gc, bj, nodes);
    libxl__json_add_string(gc, &args, "job-id", bj->info.id);
    libxl__json_add_bool(gc, &args, "auto-dismiss", false);
    if (bj->info.type == LIBXLSNAP_BLOCKJOB_TYPE_COPY) {
        if (bj->at_ready == LIBXL__BLOCKJOB_AT_READY_PIVOT &&
            bj->base_format == LIBXL_DISK_FORMAT_QCOW2)
            bj->merge_actions = copy_bitmap_actions(&bj->ao->gc, nodes, dev,
                                                    bj->target_node,
                                                    bj->active,
                                                    bj->active_format,
                                                    !bj->copy_shallow);
        if (bj->info.speed) {
            libxl__json_add_uint64(gc, &args, "speed", bj->info.speed);
            /* QEMU's 16 MiB buffer would make a slow copy go in bursts
             * of 16 MiB then long waits: in MiB steps, it is steady */
            libxl__json_add_uint64(gc, &args, "buf-size", 1 << 20);
        }
        libxl__json_add_string(gc, &args, "device", dev);
        libxl__json_add_string(gc, &args, "target", bj->info.base);
        libxl__json_add_string(gc, &args, "format",
                               libxl__disk_format_qemu(bj->base_format));
        libxl__json_add_string(gc, &args, "node-name", bj->target_node);
        libxl__json_add_string(gc, &args, "mode", "existing");
        libxl__json_add_string(gc, &args, "sync",
                               bj->copy_shallow ? "top" : "full");
        rc = libxl__qmp_send(egc, qmp, "drive-mirror", args, -1,
                             blockjob_started);
        if (rc) goto out;
        return;
    }
    if (bj->num_merge_files && base) live_bitmaps(gc, bj, nodes, base);
    if (bj->num_bitmaps) {
        rc = merge_actions(gc, bj, nodes, base);
        if (rc) goto out;
    }
    /* a stream or an intermediate commit stops at PENDING: the merge,
     * and the images written out before the graph changes */
    if (bj->info.type != LIBXLSNAP_BLOCKJOB_TYPE_ACTIVE_COMMIT &&
        (!bj->no_wait ||
         (bj->num_bitmaps && bj->info.type == LIBXLSNAP_BLOCKJOB_TYPE_COMMIT)))
        libxl__json_add_bool(gc, &args, "auto-finalize", false);
    if (bj->info.speed)
        libxl__json_add_uint64(gc, &args, "speed", bj->info.speed);
    if (base)
        libxl__json_add_string(gc, &args, "base-node", base);
    if (bj->info.type == LIBXLSNAP_BLOCKJOB_TYPE_STREAM) {
        /* the image that receives the data */
        cmd = "block-stream";
        libxl__json_add_string(gc, &args, "device", top);
    } else {
        cmd = "block-commit";
        libxl__json_add_string(gc, &args, "device", dev);
        if (bj->info.type == LIBXLSNAP_BLOCKJOB_TYPE_COMMIT)
            libxl__json_add_string(gc, &args, "top-node", top);
        if (bj->backing_file)
            libxl__json_add_string(gc, &args, "backing-file",
                                   bj->backing_file);
    }
    rc = libxl__qmp_send(egc, qmp, cmd, args, -1, blockjob_started);
    if (rc) goto out;
    return;
 out:
    blockjob_done(egc, bj, rc);
}

static void blockjob_started(libxl__egc *egc, libxl__qmp *qmp,
                             yajl_val ret, int rc)
{
    libxl__blockjob *bj = CONTAINER_OF(qmp, libxl__blockjob, qmp);
    STATE_AO_GC(bj->ao);

    libxl__qmp_close(gc, qmp);
    if (rc) goto out;
    bj->started = true;
    blockjob_set_state(gc, bj, S_RUNNING);
    blockjob_progress(bj);
    if (bj->fault_op) libxl__fault_point(bj->fault_op);
    if (bj->no_wait) goto out;
    libxl__ev_time_register_rel(gc, &bj->poll, blockjob_poll, 0);
    return;
 out:
    blockjob_done(egc, bj, rc);
}

void libxl__blockjob_follow(libxl__egc *egc, libxl__blockjob *bj)
{
    STATE_AO_GC(bj->ao);
    int rc;

    bj->info.live = true;
    bj->started = true;
    bj->info.state = S_RUNNING;
    rc = blockjob_arm(gc, bj);
    if (rc) {
        blockjob_done(egc, bj, rc);
        return;
    }
    libxl__ev_time_register_rel(gc, &bj->poll, blockjob_poll, 0);
}

/* ---------------------------------------------------------------- */
/* live: follow */

static void blockjob_poll(libxl__egc *egc, libxl__ev_time *ev, int rc)
{
    libxl__blockjob *bj = CONTAINER_OF(ev, libxl__blockjob, poll);

    bj->qmp.ao = bj->ao;
    bj->qmp.path = bj->d->qmp_path;
    bj->qmp.domid = bj->d->domid;
    if (bj->quiet_failure) bj->qmp.quiet = true;
    rc = libxl__qmp_connect(egc, &bj->qmp, blockjob_poll_connected);
    if (rc) blockjob_done(egc, bj, rc);
}

static void blockjob_poll_connected(libxl__egc *egc, libxl__qmp *qmp,
                                    yajl_val ret, int rc)
{
    libxl__blockjob *bj = CONTAINER_OF(qmp, libxl__blockjob, qmp);

    qmp->quiet = true;                /* a refusal is said once final */
    if (!rc) rc = libxl__qmp_send(egc, qmp, "query-jobs", NULL, -1,
                                  blockjob_polled);
    if (rc) blockjob_done(egc, bj, rc);
}

/* Sends verb on the open connection; blockjob_verb_sent follows. */
static int blockjob_send_verb(libxl__egc *egc, libxl__blockjob *bj,
                              libxl__blockjob_verb verb)
{
    STATE_AO_GC(bj->ao);
    yajl_val args = NULL;

    if (!libxl__blockjob_verb_ok(bj->info.state, verb)) {
        LOG(ERROR, "job %s: cannot %s it while it is %s", bj->info.id,
            verb_command(verb), libxlsnap_blockjob_state_to_string(
                bj->info.state));
        return ERROR_INVAL;
    }
    if (verb == LIBXL__BLOCKJOB_VERB_SET_SPEED) {
        libxl__json_add_string(gc, &args, "device", bj->info.id);
        libxl__json_add_uint64(gc, &args, "speed", bj->info.speed);
    } else if (verb == LIBXL__BLOCKJOB_VERB_CANCEL &&
               bj->info.type == LIBXLSNAP_BLOCKJOB_TYPE_COPY &&
               bj->info.state == S_READY && !bj->cancel_rc) {
        /* a copy's finish: the mirror completes without a pivot, its
         * target consistent (job-cancel would force) */
        libxl__json_add_string(gc, &args, "device", bj->info.id);
        bj->verb = verb;
        bj->qmp.quiet = true;
        return libxl__qmp_send(egc, &bj->qmp, "block-job-cancel", args, -1,
                               blockjob_verb_sent);
    } else {
        libxl__json_add_string(gc, &args, "id", bj->info.id);
    }
    bj->verb = verb;
    bj->qmp.quiet = true;     /* a refusal may be a race: said if final */
    return libxl__qmp_send(egc, &bj->qmp, verb_command(verb), args, -1,
                           blockjob_verb_sent);
}

static void blockjob_polled(libxl__egc *egc, libxl__qmp *qmp, yajl_val jobs,
                            int rc)
{
    libxl__blockjob *bj = CONTAINER_OF(qmp, libxl__blockjob, qmp);
    STATE_AO_GC(bj->ao);
    yajl_val job = NULL;
    libxlsnap_blockjob_state st;
    bool pending;
    size_t i;

    qmp->quiet = bj->quiet_failure;
    if (rc && qmp->error_class && ++bj->poll_failures <= 5) {
        /* QEMU answered, with an error: the job runs on; ask again */
        libxl__qmp_close(gc, qmp);
        libxl__ev_time_register_rel(gc, &bj->poll, blockjob_poll,
                                    next_poll_ms(bj));
        return;
    }
    if (rc) {
        LOG(ERROR, "job %s: QEMU does not list its jobs: %s", bj->info.id,
            qmp->error_desc ? qmp->error_desc : "QMP failed");
        goto out;
    }
    for (i = 0; jobs && YAJL_IS_ARRAY(jobs) && i < jobs->u.array.len; i++) {
        const char *id = libxl__json_get_string(jobs->u.array.values[i],
                                                "id");
        if (id && !strcmp(id, bj->info.id)) job = jobs->u.array.values[i];
    }
    if (!job) {
        LOG(ERROR, "job %s: QEMU no longer knows it", bj->info.id);
        bj->info.state = S_FAILED;
        rc = ERROR_FAIL;
        goto out;
    }
    bj->info.offset = libxl__json_get_integer(job, "current-progress", 0);
    bj->info.len = libxl__json_get_integer(job, "total-progress", 0);
    if (libxl__blockjob_state_from_qemu(libxl__json_get_string(job,
                                                               "status"),
                                        &st)) {
        LOG(ERROR, "job %s: unknown status '%s'", bj->info.id,
            libxl__json_get_string(job, "status") ?: "");
        rc = ERROR_QEMU_API;
        goto out;
    }
    if (st != bj->info.state) {
        blockjob_set_state(gc, bj, st);
        LOG(DEBUG, "job %s: %s", bj->info.id,
            libxlsnap_blockjob_state_to_string(st));
    }
    blockjob_progress(bj);

    /* at PENDING all is copied: an abort or a timeout comes too late
     * (as for a job that finalizes itself), the job is finished */
    pending = st == S_RUNNING && !bj->cancel_sent && !bj->flush_refused &&
        !strcmp(libxl__json_get_string(job, "status") ?: "", "pending");

    /* the bitmap merge, once, just before the job may finish */
    if (bj->merge_actions && !bj->merged &&
        ((st == S_READY && bj->at_ready == LIBXL__BLOCKJOB_AT_READY_PIVOT &&
          !bj->cancel_rc) || pending)) {
        bj->merged = true;
        rc = libxl__qmp_send(egc, qmp, "transaction", bj->merge_actions, -1,
                             blockjob_merged);
        if (rc) goto out;
        return;
    }
    /* at PENDING: the images written out, then the graph change */
    if (pending) {
        if (!bj->flushed) {
            /* each refusal is reported below, once (a refused
             * query-status is asked again) */
            qmp->quiet_refusal = true;
            rc = libxl__qmp_send(egc, qmp, "query-status", NULL, -1,
                                 blockjob_flush_status);
        } else {
            rc = blockjob_send_verb(egc, bj, LIBXL__BLOCKJOB_VERB_FINALIZE);
        }
        if (rc) goto out;
        return;
    }
    if (st == S_CONCLUDED) {
        const char *err = libxl__json_get_string(job, "error");
        if (err) bj->info.error = GCSTRDUP(err);
        rc = blockjob_send_verb(egc, bj, LIBXL__BLOCKJOB_VERB_DISMISS);
        if (rc) goto out;
        return;
    }
    if (bj->cancel_rc && !bj->cancel_sent &&
        libxl__blockjob_verb_ok(st, LIBXL__BLOCKJOB_VERB_CANCEL)) {
        bj->cancel_sent = true;
        rc = blockjob_send_verb(egc, bj, LIBXL__BLOCKJOB_VERB_CANCEL);
        if (rc) goto out;
        return;
    }
    if (st == S_READY && !bj->cancel_sent && !bj->complete_sent) {
        switch (bj->at_ready) {
        case LIBXL__BLOCKJOB_AT_READY_PIVOT:
            if (bj->info.type == LIBXLSNAP_BLOCKJOB_TYPE_COPY &&
                libxl__blockjob_copy_dest_changed(gc, bj->info.id,
                        bj->info.base, bj->copy_dest_dev,
                        bj->copy_dest_ino)) {
                /* left at READY, for an abort */
                libxl__qmp_close(gc, qmp);
                blockjob_done(egc, bj, ERROR_FAIL);
                return;
            }
            bj->complete_sent = true;
            rc = blockjob_send_verb(egc, bj, LIBXL__BLOCKJOB_VERB_COMPLETE);
            if (rc) goto out;
            return;
        case LIBXL__BLOCKJOB_AT_READY_CANCEL:
            bj->cancel_sent = true;
            rc = blockjob_send_verb(egc, bj, LIBXL__BLOCKJOB_VERB_CANCEL);
            if (rc) goto out;
            return;
        default:
            /* leave it READY for a later pivot or abort */
            libxl__qmp_close(gc, qmp);
            blockjob_done(egc, bj, 0);
            return;
        }
    }
    libxl__qmp_close(gc, qmp);
    libxl__ev_time_register_rel(gc, &bj->poll, blockjob_poll,
                                next_poll_ms(bj));
    return;
 out:
    blockjob_done(egc, bj, rc);
}

static void blockjob_merged(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                            int rc)
{
    libxl__blockjob *bj = CONTAINER_OF(qmp, libxl__blockjob, qmp);
    STATE_AO_GC(bj->ao);

    /* bitmaps are metadata: a failed merge does not undo the data */
    if (rc)
        LOG(WARN, "job %s: the dirty bitmaps could not be merged into "
            "'%s'", bj->info.id, bj->info.base);
    libxl__qmp_close(gc, qmp);
    libxl__ev_time_register_rel(gc, &bj->poll, blockjob_poll, 0);
}

/*
 * At PENDING: "stop" drains and flushes every image of QEMU (even when
 * the guest is paused already), "cont" if the guest ran, then
 * job-finalize.  A refused stop cancels the job: nothing changed.
 */
static void blockjob_flush_status(libxl__egc *egc, libxl__qmp *qmp,
                                  yajl_val ret, int rc)
{
    libxl__blockjob *bj = CONTAINER_OF(qmp, libxl__blockjob, qmp);

    if (rc) goto out;
    bj->flush_was_running = libxl__json_get_bool(ret, "running", false);
    bj->flush_t0_ms = libxl__now_ms();
    rc = libxl__qmp_send(egc, qmp, "stop", NULL, -1,
                         blockjob_flush_stopped);
    if (rc) goto out;
    return;
 out:
    blockjob_flushed(egc, qmp, NULL, rc);
}

static void blockjob_flush_stopped(libxl__egc *egc, libxl__qmp *qmp,
                                   yajl_val ret, int rc)
{
    libxl__blockjob *bj = CONTAINER_OF(qmp, libxl__blockjob, qmp);
    STATE_AO_GC(bj->ao);

    if (rc) {
        LOG(ERROR, "job %s: QEMU could not write its images out before "
            "the job's end (%s): the job is cancelled", bj->info.id,
            qmp->error_desc ?: "QMP failed");
        bj->flush_refused = true;
        if (!bj->cancel_rc) bj->cancel_rc = ERROR_FAIL;
        /* (a stop that failed may have stopped it: cont all the same) */
    } else {
        bj->flushed = true;
    }
    if (!bj->flush_was_running) {
        blockjob_flushed(egc, qmp, NULL, 0);
        return;
    }
    rc = libxl__qmp_send(egc, qmp, "cont", NULL, -1, blockjob_flushed);
    if (rc) blockjob_flushed(egc, qmp, NULL, rc);
}

static void blockjob_flushed(libxl__egc *egc, libxl__qmp *qmp,
                             yajl_val ret, int rc)
{
    libxl__blockjob *bj = CONTAINER_OF(qmp, libxl__blockjob, qmp);
    STATE_AO_GC(bj->ao);

    if (bj->flush_was_running && (bj->flushed || bj->flush_refused)) {
        if (rc && qmp->error_class && ++bj->verb_failures <= 5) {
            /* QEMU answered: a refused cont is asked again */
            rc = libxl__qmp_send(egc, qmp, "cont", NULL, -1,
                                 blockjob_flushed);
            if (!rc) return;
        }
        if (rc)
            LOG(ERROR, "job %s: QEMU did not resume the guest after "
                "writing its images out (%s): xl unpause it", bj->info.id,
                qmp->error_desc ?: "QMP failed");
        else if (bj->flushed)
            LOG(DEBUG, "job %s: guest paused %"PRIu64" ms to write the "
                "images out", bj->info.id,
                libxl__now_ms() - bj->flush_t0_ms);
    }
    qmp->quiet_refusal = false;
    if (!bj->flushed && !bj->flush_refused) {
        /* query-status failed: QEMU answered (poll again) or is gone */
        if (++bj->verb_failures > 5 || !qmp->error_class) {
            LOG(ERROR, "job %s: QEMU did not stop to write its images "
                "out: %s", bj->info.id, qmp->error_desc ?: "QMP failed");
            bj->flush_refused = true;
            if (!bj->cancel_rc) bj->cancel_rc = rc ? rc : ERROR_FAIL;
        }
    }
    libxl__qmp_close(gc, qmp);
    bj->poll_ms = 0;
    libxl__ev_time_register_rel(gc, &bj->poll, blockjob_poll, 0);
}

static void blockjob_verb_sent(libxl__egc *egc, libxl__qmp *qmp,
                               yajl_val ret, int rc)
{
    libxl__blockjob *bj = CONTAINER_OF(qmp, libxl__blockjob, qmp);
    STATE_AO_GC(bj->ao);

    bj->qmp.quiet = bj->quiet_failure;
    if (bj->verb == LIBXL__BLOCKJOB_VERB_DISMISS && !rc) {
        /* the job is over: decide how it ended */
        if (bj->info.error && !bj->cancel_sent &&
            !strcmp(bj->info.error, "Operation canceled")) {
            /* xl block-job --abort, from another process */
            blockjob_set_state(gc, bj, S_CANCELLED);
            LOG(ERROR, "job %s was cancelled (by another command)",
                bj->info.id);
            rc = ERROR_FAIL;
        } else if (bj->info.error && !bj->cancel_sent) {
            blockjob_set_state(gc, bj, S_FAILED);
            if (!bj->quiet_failure)
                LOG(ERROR, "job %s failed: %s", bj->info.id,
                    bj->info.error);
            rc = ERROR_FAIL;
        } else if (bj->cancel_sent) {
            blockjob_set_state(gc, bj, S_CANCELLED);
            rc = bj->cancel_rc;
        } else {
            blockjob_set_state(gc, bj, S_COMPLETED);
        }
        blockjob_progress(bj);
        qmp->quiet = true;            /* best effort: the nodes stay */
        if (bj->info.state == S_COMPLETED && bj->num_leaving &&
            !libxl__qmp_send(egc, qmp, "query-named-block-nodes",
                             libxl__qmp_args_flat(gc), -1,
                             blockjob_leftovers))
            return;
        blockjob_done(egc, bj, rc);
        return;
    }
    if (rc) {
        /*
         * A race at READY: the job may have moved on; or QEMU refused
         * (a dismiss too: the job stays listed, concluded, and would
         * take its id from the next job).  Poll again, and the verb is
         * sent again while the job is where it was.
         */
        if (bj->verb == LIBXL__BLOCKJOB_VERB_COMPLETE)
            bj->complete_sent = false;
        else if (bj->verb == LIBXL__BLOCKJOB_VERB_CANCEL)
            bj->cancel_sent = false;
        if (++bj->verb_failures > 5) {
            LOG(ERROR, "job %s: QEMU refused %s: %s", bj->info.id,
                verb_command(bj->verb),
                qmp->error_desc ? qmp->error_desc : "QMP failed");
            libxl__qmp_close(gc, qmp);
            blockjob_done(egc, bj, rc);
            return;
        }
    }
    libxl__qmp_close(gc, qmp);
    bj->poll_ms = 0;                  /* the job answers a verb at once */
    libxl__ev_time_register_rel(gc, &bj->poll, blockjob_poll,
                                next_poll_ms(bj));
}

/* The leaving nodes still in the graph: delete them, one by one. */
static void blockjob_leftovers(libxl__egc *egc, libxl__qmp *qmp,
                               yajl_val nodes, int rc)
{
    libxl__blockjob *bj = CONTAINER_OF(qmp, libxl__blockjob, qmp);
    int i, n = 0;
    size_t j;

    if (rc || !nodes || !YAJL_IS_ARRAY(nodes)) {
        blockjob_done(egc, bj, 0);
        return;
    }
    for (i = 0; i < bj->num_leaving; i++) {
        for (j = 0; j < nodes->u.array.len; j++) {
            const char *name = libxl__json_get_string(
                nodes->u.array.values[j], "node-name");
            if (name && !strcmp(name, bj->leaving[i])) {
                bj->leaving[n++] = bj->leaving[i];
                break;
            }
        }
    }
    bj->num_leaving = n;
    bj->next_leaving = 0;
    qmp->quiet = true;                /* a refusal is said below */
    blockjob_drop_next(egc, qmp, NULL, 0);
}

static void blockjob_drop_next(libxl__egc *egc, libxl__qmp *qmp,
                               yajl_val ret, int rc)
{
    libxl__blockjob *bj = CONTAINER_OF(qmp, libxl__blockjob, qmp);
    STATE_AO_GC(bj->ao);
    const char *node;
    yajl_val args = NULL;

    if (bj->next_leaving > 0) {
        node = bj->leaving[bj->next_leaving - 1];
        if (rc)
            LOG(DEBUG, "job %s: node '%s' kept: %s", bj->info.id, node,
                qmp->error_desc ?: "QEMU refused to delete it");
        else
            LOG(DEBUG, "job %s: deleted node '%s', left behind by the "
                "job", bj->info.id, node);
    }
    if (bj->next_leaving >= bj->num_leaving) {
        blockjob_done(egc, bj, 0);
        return;
    }
    node = bj->leaving[bj->next_leaving++];
    libxl__json_add_string(gc, &args, "node-name", node);
    rc = libxl__qmp_send(egc, qmp, "blockdev-del", args, -1,
                         blockjob_drop_next);
    if (rc) blockjob_done(egc, bj, 0);
}

/* ---------------------------------------------------------------- */
/* offline */

static void blockjob_exec_line(libxl__egc *egc, libxl__exec_state *es,
                               const char *line)
{
    libxl__blockjob *bj = CONTAINER_OF(es, libxl__blockjob, es);
    double pct;

    /* "    (45.00/100%)" */
    if (sscanf(line, " (%lf/100%%)", &pct) == 1) {
        if (!bj->info.len) bj->info.len = 100;
        bj->info.offset = (uint64_t)(pct / 100.0 * bj->info.len);
        blockjob_progress(bj);
        /* tests: once qemu-img is under way */
        if (bj->fault_op && pct > 0 && !bj->fault_passed) {
            bj->fault_passed = true;
            libxl__fault_point(bj->fault_op);
        }
    }
}

static void blockjob_exec_done(libxl__egc *egc, libxl__exec_state *es,
                               int rc, int status)
{
    libxl__blockjob *bj = CONTAINER_OF(es, libxl__blockjob, es);
    STATE_AO_GC(bj->ao);

    blockjob_set_state(gc, bj, S_CONCLUDED);
    if (rc == ERROR_ABORTED || rc == ERROR_TIMEDOUT) {
        blockjob_set_state(gc, bj, S_CANCELLED);
    } else if (rc) {
        bj->info.error = GCSTRDUP(es->err);
        blockjob_set_state(gc, bj, S_FAILED);
    } else {
        bj->info.offset = bj->info.len;
        blockjob_set_state(gc, bj, S_COMPLETED);
    }
    blockjob_progress(bj);
    blockjob_done(egc, bj, rc);
}

/* ---------------------------------------------------------------- */
/* abort, timeout, end */

static void blockjob_cancel(libxl__egc *egc, libxl__blockjob *bj, int rc)
{
    if (!bj->info.live) {
        /* the exec's own abortable or timeout does the killing */
        return;
    }
    if (!bj->cancel_rc) bj->cancel_rc = rc;
    /* the next poll sends job-cancel; until then it may still finish */
}

static void blockjob_timeout(libxl__egc *egc, libxl__ev_time *ev, int rc)
{
    libxl__blockjob *bj = CONTAINER_OF(ev, libxl__blockjob, timeout);
    STATE_AO_GC(bj->ao);

    LOG(ERROR, "job %s did not finish within %d ms%s; aborting it",
        bj->info.id, bj->timeout_ms,
        bj->info.state == S_RUNNING &&
        bj->info.type == LIBXLSNAP_BLOCKJOB_TYPE_ACTIVE_COMMIT
        ? " (the guest may write faster than it can converge)" : "");
    if (bj->info.live) {
        blockjob_cancel(egc, bj, ERROR_TIMEDOUT);
    } else if (libxl__exec_running(&bj->es)) {
        /* as an abort of the child, reported as a timeout */
        bj->es.kill_rc = ERROR_TIMEDOUT;
        kill(bj->es.pid, SIGTERM);
    }
}

static void blockjob_abort(libxl__egc *egc, libxl__ao_abortable *ab, int rc)
{
    libxl__blockjob *bj = CONTAINER_OF(ab, libxl__blockjob, abrt);
    blockjob_cancel(egc, bj, ERROR_ABORTED);
}

static void blockjob_done(libxl__egc *egc, libxl__blockjob *bj, int rc)
{
    STATE_AO_GC(bj->ao);

    libxl__qmp_close(gc, &bj->qmp);
    libxl__ev_time_deregister(gc, &bj->poll);
    libxl__ev_time_deregister(gc, &bj->timeout);
    libxl__ao_abortable_deregister(&bj->abrt);
    bj->callback(egc, bj, rc);
}

/* ---------------------------------------------------------------- */
/* public helpers */

void libxlsnap_blockjob_info_init(libxlsnap_blockjob_info *p)
{
    if (!p) return;
    memset(p, 0, sizeof(*p));
}

void libxlsnap_blockjob_info_dispose(libxlsnap_blockjob_info *p)
{
    if (!p) return;
    free(p->id);
    free(p->vdev);
    free(p->top);
    free(p->base);
    free(p->error);
    libxlsnap_blockjob_info_init(p);
}

const char *libxlsnap_blockjob_type_to_string(libxlsnap_blockjob_type t)
{
    switch (t) {
    case LIBXLSNAP_BLOCKJOB_TYPE_COMMIT: return "commit";
    case LIBXLSNAP_BLOCKJOB_TYPE_ACTIVE_COMMIT: return "active-commit";
    case LIBXLSNAP_BLOCKJOB_TYPE_STREAM: return "stream";
    case LIBXLSNAP_BLOCKJOB_TYPE_COPY: return "copy";
    case LIBXLSNAP_BLOCKJOB_TYPE_BACKUP: return "backup";
    default: return "unknown";
    }
}

const char *libxlsnap_blockjob_state_to_string(libxlsnap_blockjob_state s)
{
    static const char *const names[NSTATES] = {
        "new", "running", "ready", "aborting", "concluded", "completed",
        "failed", "cancelled",
    };
    return (unsigned)s < NSTATES ? names[s] : "unknown";
}

void libxl__blockjob_copy_dest_id(const char *dest, uint64_t *dev_r,
                                  uint64_t *ino_r)
{
    struct stat st;

    *dev_r = *ino_r = 0;
    if (!dest || !libxl__image_is_file(dest) || stat(dest, &st)) return;
    *dev_r = st.st_dev;
    *ino_r = st.st_ino;
}

const char *libxl__blockjob_copy_dest_changed(libxl__gc *gc, const char *id,
                                              const char *dest, uint64_t dev,
                                              uint64_t ino)
{
    struct stat st;
    const char *why = NULL;

    if (!dest || !libxl__image_is_file(dest)) return NULL;
    if (stat(dest, &st))
        why = "no longer exists";
    else if (ino && (st.st_dev != dev || st.st_ino != ino))
        why = "is no longer the file the copy writes (replaced)";
    if (why)
        LOG(ERROR, "job %s: the destination '%s' %s: not pivoted (the job "
            "waits at READY: abort it with xl block-job --abort)", id, dest,
            why);
    return why;
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
