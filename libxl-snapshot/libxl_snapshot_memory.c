/*
 * libxl_snapshot_memory.c - the domain's memory, saved with its disks
 *
 * A memory checkpoint is the domain's RAM and device state in a file,
 * taken at the same instant as a disk snapshot, so that a revert brings
 * the domain back running where it was, with no fsck.
 *
 * Domains QEMU runs whole (the qemu driver): a QMP migration to the
 * memory file, with the pause-before-switchover capability.  QEMU
 * copies RAM while the guest runs, then stops the guest and waits at
 * the "pre-switchover" state: there, with the guest stopped and nothing
 * left to change, the caller takes the disks (its QMP transaction, on
 * our connection), then migrate-continue writes the rest and the guest
 * is resumed (cont).
 *  - live: as above; the guest is paused only for the last dirty pages
 *    and the disk transaction;
 *  - stop-the-world: the guest is stopped first (stop), then the same
 *    sequence; it is paused for the whole save.
 * The file is opened here and passed to QEMU (getfd, "fd:" URI): no
 * shell, no path QEMU could be tricked into.  Bandwidth is unlimited
 * (a file is not a network), and progress is polled with query-migrate.
 *
 * Domains whose memory is not QEMU's (Xen: QEMU only serves disks) go
 * through the driver's suspend (libxl_domain_suspend into the file),
 * then the disks (QMP to the device model, the domain suspended), then
 * the driver's resume (suspend_cancel), both on the loop (libxl's
 * asynchronous forms: the image's size is the suspend's progress).
 *
 * The image is written as <file>.tmp (libxl__memory_tmp_path), and
 * renamed to its name only once complete and fsync'ed: an image under
 * its name is a whole one, which recovery can tell without a journal
 * update (one a full file system may refuse: libxl_snapshot_journal.c).
 *
 * Failure before the disks were taken: the migration is cancelled, the
 * guest resumed if we stopped it, and the partial file removed.  After
 * the disks were taken, disks_taken says so: the caller keeps the disk
 * snapshot (the domain already runs on its overlays) without memory.
 * When the disks' transaction got no answer (QEMU died), the caller
 * cannot tell: it keeps its journal, and the next command decides.
 * Fault points ("create", tests): RAM being copied, at the instant
 * before the disks, after them, while the rest is written.
 *
 * Restore (qemu driver): QEMU started with -incoming defer -S; then
 * getfd, migrate-incoming "fd:" and query-migrate until completed, and
 * cont unless the domain is to stay paused.  QEMU reads the image
 * through the very open file our fd is (SCM_RIGHTS passes the file,
 * not a copy), so our fd's offset is how far it has read: the
 * progress, against the image's size.
 *
 * Migration (qemu driver, libxl_snapshot_migrate.c) is the same two
 * halves on a socket instead of a file: the save with mss->migration
 * (the caller's fd, no file; at completion the source stays stopped,
 * its images inactive) and libxl__memory_incoming (the other end, for
 * a QEMU started with -incoming defer).  Each side closes its fd as
 * soon as its QEMU has it, so that either QEMU's end is seen by the
 * other as the end of the stream, never a wait.
 *
 * Steps (save, QMP): libxl__memory_save -> ms_connected -> ms_status ->
 *   [ms_stopped] -> ms_caps -> ms_params -> ms_getfd -> ms_migrating ->
 *   [ms_poll -> ms_polled (-> ms_raised)]* -> (caller's instant) ->
 *   libxl__memory_save_instant_done -> ms_continued ->
 *   [ms_poll -> ms_polled]* -> [ms_resumed] -> ms_done
 * Steps (save, driver): libxl__memory_save -> (suspend, asynchronous)
 *   -> ms_suspended -> ms_dm_connected
 *   -> (caller's instant) -> libxl__memory_save_instant_done -> ms_done
 *   -> (resume, asynchronous) -> ms_drv_resumed
 * then: ms_after_resume [-> ms_synced] -> ms_finish.  The fsync of the image
 * (hundreds of MiB just written: 100 ms and more) is done by a forked
 * child (a libxl__exec step with child_fn), off the caller's loop, the
 * guest already resumed; only once it succeeded is the image renamed to
 * its name, as before.  It is not aborted: the disks are taken by
 * then.  ao_abort before the instant cancels the migration at the next
 * poll (ERROR_ABORTED, nothing taken); from the instant on, the save
 * finishes.
 * Steps (restore): libxl__memory_restore (a step of the caller's ao:
 *   the qemu driver's start of the domain) -> mr_connected -> mr_getfd -> mr_incoming
 *   -> [mr_poll -> mr_polled]* -> [mr_resumed] -> mr_done.  An abort
 *   (when the caller asked for one) ends it at once: mr_done.
 */
#include "libxl_snapshot_internal.h"

#include <sys/wait.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define MEMORY_POLL_MS 5
#define MEMORY_FDNAME "libxl-memory"
/*
 * Live: QEMU stops the guest once what is left can be written within
 * the downtime limit at the measured rate.  Its default, 300 ms, sends
 * most of the RAM of an idle guest with the guest stopped (a file takes
 * GB/s).  Start low, and double it every few seconds while the guest
 * dirties memory faster than it is written, so it always converges.
 */
#define MEMORY_DOWNTIME_START_MS 20
#define MEMORY_DOWNTIME_MAX_MS 5000
#define MEMORY_DOWNTIME_RAISE_MS 3000
/* a migration whose stream has not moved for so long has failed */
#define MEMORY_STALL_MS 20000
/* how long a cancelled migration may take to end */
#define MEMORY_END_WAIT_MS 10000

static void ms_connected(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                         int rc);
static void ms_status(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                      int rc);
static void ms_stopped(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                       int rc);
static void ms_caps(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret, int rc);
static void ms_params(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                      int rc);
static void ms_getfd(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                     int rc);
static void ms_migrating(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                         int rc);
static void ms_poll(libxl__egc *egc, libxl__ev_time *ev, int rc);
static void ms_polled(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                      int rc);
static void ms_raised(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                      int rc);
static void ms_continued(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                         int rc);
static void ms_cancelled(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                         int rc);
static void ms_resumed(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                       int rc);
static void ms_drv_resumed(libxl__egc *egc, libxl__driver_suspend_state *ss,
                           int r);
static void ms_after_resume(libxl__egc *egc, libxl__memory_save_state *mss,
                            int rc, bool gone);
static void ms_dm_connected(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                            int rc);
static void ms_done(libxl__egc *egc, libxl__memory_save_state *mss, int rc);
static int ms_fsync_child(libxl__exec_state *es);
static void ms_synced(libxl__egc *egc, libxl__exec_state *es, int rc,
                      int status);
static void ms_finish(libxl__egc *egc, libxl__memory_save_state *mss,
                      int rc);
static void ms_suspended(libxl__egc *egc, libxl__driver_suspend_state *ss,
                         int rc);

/* The fault points of the save: its caller's op (tests) */
static void ms_fault_point(const libxl__memory_save_state *mss)
{
    libxl__fault_point(mss->fault_op ? mss->fault_op : "create");
}

void libxl__memory_save_init(libxl__memory_save_state *mss)
{
    memset(mss, 0, sizeof(*mss));
    libxl__qmp_init(&mss->qmp);
    libxl__ev_time_init(&mss->poll);
    libxl__exec_init(&mss->es);
    libxl__ao_abortable_init(&mss->abrt);
    mss->fd = -1;
}

/*
 * ao_abort before the instant: the migration is cancelled at the next
 * poll, nothing taken.  From the instant on (the disks taken) the save
 * finishes: the rest is short, and it is what the disks need.
 */
static void ms_abort(libxl__egc *egc, libxl__ao_abortable *ab, int rc)
{
    libxl__memory_save_state *mss =
        CONTAINER_OF(ab, libxl__memory_save_state, abrt);

    libxl__ao_abortable_deregister(&mss->abrt);
    mss->aborted = true;
}

char *libxl__memory_tmp_path(libxl__gc *gc, const char *file)
{
    return GCSPRINTF("%s.tmp", file);
}

/* The memory file: new, ours only, never through a planted link. */
static int open_memory_file(libxl__gc *gc, const char *file, int *fd_r)
{
    int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0600);
    if (fd < 0) {
        LOGE(ERROR, "cannot create memory image '%s'", file);
        return errno == EEXIST ? ERROR_INVAL : ERROR_FAIL;
    }
    *fd_r = fd;
    return 0;
}

void libxl__memory_save(libxl__egc *egc, libxl__memory_save_state *mss)
{
    STATE_AO_GC(mss->ao);
    int rc;

    if (mss->migration) {
        /* the caller's stream (mss->fd), to a QEMU: QMP only */
        if (CTX->driver->suspend || mss->fd < 0) {
            rc = ERROR_NI;
            goto out;
        }
    } else {
        mss->tmp = libxl__memory_tmp_path(gc, mss->file);
        rc = open_memory_file(gc, mss->tmp, &mss->fd);
        if (rc) goto out;
        mss->created = true;
    }
    mss->qmp.ao = ao;
    mss->qmp.path = mss->d->qmp_path;
    mss->qmp.domid = mss->d->domid;
    mss->qmp.quiet = true;            /* the caller reports mss->why */

    if (CTX->driver->suspend) {
        /* Xen: the guest's memory is the hypervisor's, not QEMU's */
        libxl__driver_suspend_state *ss = &mss->dsusp;
        mss->t_pause = libxl__now_ms();
        ss->ao = ao;
        ss->d = mss->d;
        ss->fd = mss->fd;
        ss->live = mss->live;
        ss->progress = mss->progress;
        ss->callback = ms_suspended;
        rc = CTX->driver->suspend(egc, ss);
        /* a failed save may have suspended the guest all the same */
        mss->stopped = ss->stopped;
        if (rc) goto out;
        return;
    }
    mss->abrt.ao = ao;
    mss->abrt.callback = ms_abort;
    rc = libxl__ao_abortable_register(&mss->abrt);
    if (rc) goto out;                   /* aborted already */
    rc = libxl__qmp_connect(egc, &mss->qmp, ms_connected);
    if (rc) goto out;
    return;
 out:
    ms_done(egc, mss, rc);
}

/* the driver's suspend is done: its memory image is written */
static void ms_suspended(libxl__egc *egc, libxl__driver_suspend_state *ss,
                         int rc)
{
    libxl__memory_save_state *mss =
        CONTAINER_OF(ss, libxl__memory_save_state, dsusp);

    mss->stopped = ss->stopped;
    mss->bytes = mss->total = ss->bytes;
    if (rc) goto out;
    rc = libxl__qmp_connect(egc, &mss->qmp, ms_dm_connected);
    if (rc) goto out;
    return;
 out:
    ms_done(egc, mss, rc);
}

static void ms_dm_connected(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                            int rc)
{
    libxl__memory_save_state *mss =
        CONTAINER_OF(qmp, libxl__memory_save_state, qmp);

    if (rc) {
        ms_done(egc, mss, rc);
        return;
    }
    mss->at_instant = true;
    mss->instant(egc, mss, 0);
}

static void ms_connected(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                         int rc)
{
    libxl__memory_save_state *mss =
        CONTAINER_OF(qmp, libxl__memory_save_state, qmp);

    if (!rc) rc = libxl__qmp_send(egc, qmp, "query-status", NULL, -1,
                                  ms_status);
    if (rc) ms_done(egc, mss, rc);
}

/* QEMU is to wait at pre-switchover, where the disks are taken. */
static int ms_send_caps(libxl__egc *egc, libxl__qmp *qmp)
{
    EGC_GC;
    yajl_val args = NULL, cap;

    cap = libxl__json_append_object(gc,
                libxl__json_add_array(gc, &args, "capabilities"));
    libxl__json_add_string(gc, &cap, "capability", "pause-before-switchover");
    libxl__json_add_bool(gc, &cap, "state", true);
    return libxl__qmp_send(egc, qmp, "migrate-set-capabilities", args, -1,
                           ms_caps);
}

/* {key: value}: getfd's fdname, migrate's (and -incoming's) uri */
static yajl_val memory_fd_args(libxl__gc *gc, const char *key,
                               const char *value)
{
    yajl_val args = NULL;

    libxl__json_add_string(gc, &args, key, value);
    return args;
}

static void ms_status(libxl__egc *egc, libxl__qmp *qmp, yajl_val st,
                      int rc)
{
    libxl__memory_save_state *mss =
        CONTAINER_OF(qmp, libxl__memory_save_state, qmp);

    if (rc) goto out;
    mss->was_running = libxl__json_get_bool(st, "running", false);
    if (!mss->live && mss->was_running) {
        mss->t_pause = libxl__now_ms();
        rc = libxl__qmp_send(egc, qmp, "stop", NULL, -1, ms_stopped);
    } else {
        rc = ms_send_caps(egc, qmp);
    }
    if (rc) goto out;
    return;
 out:
    ms_done(egc, mss, rc);
}

static void ms_stopped(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                       int rc)
{
    libxl__memory_save_state *mss =
        CONTAINER_OF(qmp, libxl__memory_save_state, qmp);

    if (rc) goto out;
    mss->stopped = true;
    rc = ms_send_caps(egc, qmp);
    if (rc) goto out;
    return;
 out:
    ms_done(egc, mss, rc);
}

static void ms_caps(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret, int rc)
{
    libxl__memory_save_state *mss =
        CONTAINER_OF(qmp, libxl__memory_save_state, qmp);

    STATE_AO_GC(mss->ao);
    yajl_val args = NULL;

    /* a file is not a network: no bandwidth cap (QEMU's is 128 MiB/s),
     * unless the caller has one */
    mss->downtime_ms = MEMORY_DOWNTIME_START_MS;
    libxl__json_add_integer(gc, &args, "max-bandwidth",
                            mss->bandwidth ? (long long)mss->bandwidth
                                           : 1099511627776LL);
    libxl__json_add_integer(gc, &args, "downtime-limit", mss->downtime_ms);
    if (!rc) rc = libxl__qmp_send(egc, qmp, "migrate-set-parameters", args,
                                  -1, ms_params);
    if (rc) ms_done(egc, mss, rc);
}

static void ms_params(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                      int rc)
{
    libxl__memory_save_state *mss =
        CONTAINER_OF(qmp, libxl__memory_save_state, qmp);

    if (!rc) rc = libxl__qmp_send(egc, qmp, "getfd",
                                  memory_fd_args(&mss->ao->gc, "fdname",
                                                 MEMORY_FDNAME),
                                  mss->fd, ms_getfd);
    if (rc) ms_done(egc, mss, rc);
}

static void ms_getfd(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                     int rc)
{
    libxl__memory_save_state *mss =
        CONTAINER_OF(qmp, libxl__memory_save_state, qmp);

    if (!rc && mss->migration) {
        /* QEMU has the stream: the destination sees its end when this
         * QEMU closes it (a failure), not when we do */
        close(mss->fd);
        mss->fd = -1;
    }
    if (!rc) rc = libxl__qmp_send(egc, qmp, "migrate",
                                  memory_fd_args(&mss->ao->gc, "uri",
                                                 "fd:" MEMORY_FDNAME), -1,
                                  ms_migrating);
    if (rc) ms_done(egc, mss, rc);
}

static void ms_migrating(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                         int rc)
{
    libxl__memory_save_state *mss =
        CONTAINER_OF(qmp, libxl__memory_save_state, qmp);
    STATE_AO_GC(mss->ao);

    if (rc) {
        ms_done(egc, mss, rc);
        return;
    }
    mss->migrating = true;
    ms_fault_point(mss);              /* RAM being copied */
    mss->t_raise = libxl__now_ms() + MEMORY_DOWNTIME_RAISE_MS;
    mss->t_progress = libxl__now_ms();
    libxl__ev_time_register_rel(gc, &mss->poll, ms_poll, 0);
}

static void ms_poll(libxl__egc *egc, libxl__ev_time *ev, int rc)
{
    libxl__memory_save_state *mss =
        CONTAINER_OF(ev, libxl__memory_save_state, poll);
    STATE_AO_GC(mss->ao);

    if (mss->qmp.state != LIBXL__QMP_IDLE) {
        /* the monitor closed between two polls (QEMU failing or gone):
         * one failure, said by ms_done, not a second line here */
        LOG(DEBUG, "domain %s: QMP connection lost (state %d)",
            mss->d->name, mss->qmp.state);
        if (!mss->why)
            mss->why = mss->qmp.error_desc ?: "QEMU's monitor closed";
        ms_done(egc, mss, ERROR_FAIL);
        return;
    }
    rc = libxl__qmp_send(egc, &mss->qmp, "query-migrate", NULL, -1,
                         ms_polled);
    if (rc) ms_done(egc, mss, rc);
}

static void ms_polled(libxl__egc *egc, libxl__qmp *qmp, yajl_val mig,
                      int rc)
{
    libxl__memory_save_state *mss =
        CONTAINER_OF(qmp, libxl__memory_save_state, qmp);
    STATE_AO_GC(mss->ao);
    const char *status;
    yajl_val ram;

    if (rc) goto out;
    if (mss->aborted && !mss->at_instant) {
        mss->why = "aborted";
        rc = ERROR_ABORTED;
        goto out;                       /* ms_done cancels it */
    }
    status = libxl__json_get_string(mig, "status") ?: "";
    ram = libxl__json_get(mig, "ram");
    if (ram) {
        uint64_t b = libxl__json_get_integer(ram, "transferred", 0);
        if (b != mss->bytes) mss->t_progress = libxl__now_ms();
        mss->bytes = b;
        mss->total = libxl__json_get_integer(ram, "total", 0);
        if (!strcmp(status, "completed"))
            mss->bytes = mss->total;       /* all there (zero pages too) */
        libxl__progress_report(mss->progress, "memory",
            mss->bytes < mss->total ? mss->bytes : mss->total, mss->total);
    }
    if (!strcmp(status, "pre-switchover") && !mss->at_instant) {
        /* the guest is stopped now, and nothing else will change */
        if (!mss->t_pause) mss->t_pause = libxl__now_ms();
        mss->at_instant = true;
        libxl__ao_abortable_deregister(&mss->abrt);
        ms_fault_point(mss);           /* stopped, disks not taken */
        mss->instant(egc, mss, 0);
        return;
    }
    if (!strcmp(status, "completed")) {
        mss->migrating = false;
        /* a migration: the destination runs it now, this one stays
         * stopped */
        if (mss->was_running && !mss->migration) {
            qmp->quiet = true;        /* a refusal is tried again */
            rc = libxl__qmp_send(egc, qmp, "cont", NULL, -1, ms_resumed);
            if (rc) goto out;
            return;
        }
        ms_done(egc, mss, 0);
        return;
    }
    if (!strcmp(status, "failed") || !strcmp(status, "cancelled")) {
        const char *e = libxl__json_get_string(mig, "error-desc");
        mss->migrating = false;
        mss->why = mss->migration
            ? GCSPRINTF("the migration failed%s%s", e ? ": " : "", e ? e : "")
            : GCSPRINTF("saving the memory to '%s' failed%s%s",
                        mss->file, e ? ": " : "", e ? e : "");
        rc = ERROR_FAIL;
        goto out;
    }
    if (mss->migration && strcmp(status, "pre-switchover") &&
        libxl__now_ms() - mss->t_progress >= MEMORY_STALL_MS) {
        /* the other end reads nothing (stopped?): a failure, cancelled */
        mss->why = GCSPRINTF("the migration stream has not moved for %d s",
                             MEMORY_STALL_MS / 1000);
        rc = ERROR_TIMEDOUT;
        goto out;
    }
    if (!mss->at_instant && libxl__now_ms() >= mss->t_raise &&
        mss->downtime_ms < MEMORY_DOWNTIME_MAX_MS) {
        /* not converging: allow a longer final pause */
        mss->downtime_ms *= 2;
        mss->t_raise = libxl__now_ms() + MEMORY_DOWNTIME_RAISE_MS;
        LOG(DEBUG, "domain %s: memory not converging, downtime limit "
            "%d ms", mss->d->name, mss->downtime_ms);
        yajl_val args = NULL;
        libxl__json_add_integer(gc, &args, "downtime-limit",
                                mss->downtime_ms);
        rc = libxl__qmp_send(egc, qmp, "migrate-set-parameters", args, -1,
                             ms_raised);
        if (rc) goto out;
        return;
    }
    libxl__ev_time_register_rel(gc, &mss->poll, ms_poll, MEMORY_POLL_MS);
    return;
 out:
    ms_done(egc, mss, rc);
}

static void ms_raised(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                      int rc)
{
    libxl__memory_save_state *mss =
        CONTAINER_OF(qmp, libxl__memory_save_state, qmp);
    STATE_AO_GC(mss->ao);

    if (rc) {
        ms_done(egc, mss, rc);
        return;
    }
    libxl__ev_time_register_rel(gc, &mss->poll, ms_poll, MEMORY_POLL_MS);
}

void libxl__memory_save_instant_done(libxl__egc *egc,
                                     libxl__memory_save_state *mss, int rc)
{
    STATE_AO_GC(mss->ao);
    yajl_val args = NULL;

    if (CTX->driver->suspend) {
        /* Xen: the disks are taken (or not); resume the domain */
        if (!rc) mss->disks_taken = true;
        ms_done(egc, mss, rc);
        return;
    }
    if (rc) {
        /* no disks taken: cancel, QEMU resumes the guest it stopped */
        mss->rc = rc;
        if (!mss->why) mss->why = mss->qmp.error_desc;
        if (mss->qmp.state != LIBXL__QMP_IDLE) {
            /* the connection is gone (QEMU too?): ms_done tries anew */
            ms_done(egc, mss, rc);
            return;
        }
        rc = libxl__qmp_send(egc, &mss->qmp, "migrate_cancel", NULL, -1,
                             ms_cancelled);
        if (rc) ms_done(egc, mss, mss->rc);
        return;
    }
    mss->disks_taken = true;
    ms_fault_point(mss);              /* disks taken, memory not */
    libxl__json_add_string(gc, &args, "state", "pre-switchover");
    rc = libxl__qmp_send(egc, &mss->qmp, "migrate-continue", args, -1,
                         ms_continued);
    if (rc) ms_done(egc, mss, rc);
}

static void ms_cancelled(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                         int rc)
{
    libxl__memory_save_state *mss =
        CONTAINER_OF(qmp, libxl__memory_save_state, qmp);
    mss->migrating = false;
    ms_done(egc, mss, mss->rc);
}

static void ms_continued(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                         int rc)
{
    libxl__memory_save_state *mss =
        CONTAINER_OF(qmp, libxl__memory_save_state, qmp);
    STATE_AO_GC(mss->ao);

    if (rc) {
        ms_done(egc, mss, rc);
        return;
    }
    ms_fault_point(mss);              /* the rest being written */
    libxl__ev_time_register_rel(gc, &mss->poll, ms_poll, 0);
}

static void ms_resumed(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                       int rc)
{
    libxl__memory_save_state *mss =
        CONTAINER_OF(qmp, libxl__memory_save_state, qmp);
    STATE_AO_GC(mss->ao);

    /* the memory is saved whatever cont said: ms_done tries it again */
    qmp->quiet = false;
    if (rc)
        LOG(DEBUG, "domain %s: cont refused: %s", mss->d->name,
            qmp->error_desc ?: "?");
    mss->stopped = rc != 0;
    ms_done(egc, mss, 0);
}

/* The domain's QEMU died (killed?) during the save. */
static bool dm_gone(libxl__gc *gc, const libxl__memory_save_state *mss)
{
    libxl__domain d;
    /* by domid: a migration's destination has the same name */
    int r = CTX->driver->lookup_running(gc,
                GCSPRINTF("%u", mss->d->domid), false, &d);
    return r == ERROR_DOMAIN_NOTFOUND || r == ERROR_NOTFOUND ||
        (!r && d.domid != mss->d->domid);
}

static void ms_done(libxl__egc *egc, libxl__memory_save_state *mss, int rc)
{
    STATE_AO_GC(mss->ao);
    bool gone;

    libxl__ev_time_deregister(gc, &mss->poll);
    libxl__ao_abortable_deregister(&mss->abrt);
    if (rc && !mss->why) mss->why = mss->qmp.error_desc;
    libxl__qmp_close(gc, &mss->qmp);  /* QEMU serves one client */
    gone = rc && !CTX->driver->suspend && dm_gone(gc, mss);
    if (gone)
        mss->why = GCSPRINTF("the domain's QEMU is gone%s%s%s",
                             mss->why ? " (" : "", mss->why ? mss->why : "",
                             mss->why ? ")" : "");
    if (mss->t_pause) mss->pause_ms = libxl__now_ms() - mss->t_pause;
    if (CTX->driver->suspend && mss->stopped) {
        /* Xen: resume in place (suspend_cancel), whatever happened, on
         * the loop: ms_drv_resumed */
        mss->rc = rc;
        mss->dsusp.callback = ms_drv_resumed;
        if (!CTX->driver->resume_async(egc, &mss->dsusp)) return;
        ms_drv_resumed(egc, &mss->dsusp, ERROR_FAIL);
        return;
    }
    ms_after_resume(egc, mss, rc, gone);
}

/* the driver's resume is done (Xen) */
static void ms_drv_resumed(libxl__egc *egc, libxl__driver_suspend_state *ss,
                           int r)
{
    libxl__memory_save_state *mss =
        CONTAINER_OF(ss, libxl__memory_save_state, dsusp);
    int rc = mss->rc;
    EGC_GC;

    if (r && !rc) {
        LOG(ERROR, "domain %s: cannot resume it after the checkpoint",
            mss->d->name);
        rc = r;
    }
    mss->stopped = false;
    if (mss->t_pause) mss->pause_ms = libxl__now_ms() - mss->t_pause;
    ms_after_resume(egc, mss, rc, false);
}

int libxl__memory_migration_end(libxl__gc *gc, const char *qmp_path)
{
    yajl_val v = NULL;
    const char *st;
    int i;

    for (i = 0; i < MEMORY_END_WAIT_MS / 100; i++) {
        if (libxl__qmp_run_sync(gc, qmp_path, "query-migrate", NULL, 5000,
                                true, &v))
            return ERROR_FAIL;
        st = v ? libxl__json_get_string(v, "status") : NULL;
        if (!st || !strcmp(st, "completed") || !strcmp(st, "failed") ||
            !strcmp(st, "cancelled"))
            return 0;
        if (i == 0)
            libxl__qmp_run_sync(gc, qmp_path, "migrate_cancel", NULL, 5000,
                                true, NULL);
        usleep(100000);
    }
    return ERROR_TIMEDOUT;
}

static void ms_after_resume(libxl__egc *egc, libxl__memory_save_state *mss,
                            int rc, bool gone)
{
    STATE_AO_GC(mss->ao);

    if (mss->migrating && !gone) {
        /* a failure with the migration still going: end it (a next
         * command would find it still cancelling) */
        libxl__memory_migration_end(gc, mss->d->qmp_path);
        mss->migrating = false;
    }
    /*
     * A failure may leave the guest stopped by QEMU itself (at
     * pre-switchover, or after a migration that went on to complete,
     * its images then inactive): cont brings it back, and is harmless
     * on a guest already running.
     */
    if (mss->was_running && !gone &&
        (mss->stopped || (rc && !CTX->driver->suspend)) &&
        libxl__qmp_run_sync(gc, mss->d->qmp_path, "cont", NULL, 5000,
                               true, NULL)) {
        mss->not_resumed = true;
        if (rc && mss->migration)
            ;                         /* the migration says it */
        else if (rc)
            LOG(ERROR, "domain %s: cannot resume it (xl unpause)",
                mss->d->name);
        else
            LOG(WARN, "domain %s: its memory is saved, but it could not be "
                "resumed: xl unpause %s", mss->d->name, mss->d->name);
    }
    if (mss->fd >= 0 && !rc && !mss->migration) {
        /* the image to disk, in a child: ms_synced */
        libxl__exec_init(&mss->es);
        mss->es.ao = ao;
        mss->es.what = GCSPRINTF("fsync of '%s'", mss->tmp);
        mss->es.child_fn = ms_fsync_child;
        mss->es.child_arg = mss;
        mss->es.quiet = true;
        mss->es.unabortable = true;   /* the disks are taken: finish */
        mss->es.callback = ms_synced;
        if (!libxl__exec_start(egc, &mss->es)) return;
        if (fsync(mss->fd)) {           /* no child: here, then */
            LOGE(ERROR, "cannot write memory image '%s'", mss->tmp);
            rc = ERROR_FAIL;
        }
    }
    ms_finish(egc, mss, rc);
}

/* In the child: errno of a failed fsync is the exit status. */
static int ms_fsync_child(libxl__exec_state *es)
{
    libxl__memory_save_state *mss = es->child_arg;
    return fsync(mss->fd) ? (errno & 0x7f) | 0x80 : 0;
}

static void ms_synced(libxl__egc *egc, libxl__exec_state *es, int rc,
                      int status)
{
    libxl__memory_save_state *mss =
        CONTAINER_OF(es, libxl__memory_save_state, es);
    STATE_AO_GC(mss->ao);

    if (rc == ERROR_FAIL && WIFEXITED(status) &&
        (WEXITSTATUS(status) & 0x80)) {
        errno = WEXITSTATUS(status) & 0x7f;
        LOGE(ERROR, "cannot write memory image '%s'", mss->tmp);
    } else if (rc && rc != ERROR_ABORTED) {
        LOG(ERROR, "cannot write memory image '%s'", mss->tmp);
    }
    ms_finish(egc, mss, rc);
}

static void ms_finish(libxl__egc *egc, libxl__memory_save_state *mss,
                      int rc)
{
    STATE_AO_GC(mss->ao);
    struct stat st;

    if (mss->fd >= 0) {
        if (!rc && !fstat(mss->fd, &st)) mss->size = st.st_size;
        close(mss->fd);
        mss->fd = -1;
    }
    if (!rc && mss->created) {
        /* complete and on disk: only now under its name (the proof) */
        if (rename(mss->tmp, mss->file)) {
            mss->why = GCSPRINTF("cannot rename '%s' to '%s': %s", mss->tmp,
                                 mss->file, strerror(errno));
            rc = ERROR_FAIL;
        } else {
            libxl__fsync_dir(libxl__path_dirname(gc, mss->file));
            mss->created = false;
        }
    }
    if (rc && mss->created) {
        if (unlink(mss->tmp) && errno != ENOENT)
            LOGE(WARN, "cannot remove partial memory image '%s'", mss->tmp);
        mss->created = false;
    }
    mss->callback(egc, mss, rc);
}

/* ---------------------------------------------------------------- */
/* restore (qemu driver, synchronous) */

typedef struct {
    libxl__qmp qmp;
    libxl__ev_time poll;
    libxl__ao_abortable abrt;
    const char *file;
    bool paused;
    int fd;
    uint64_t size;
    const libxlsnap_progress_how *progress;
    libxl__memory_restore_cb *callback;
    void *arg;
} memory_restore_state;

static void mr_connected(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                         int rc);
static void mr_getfd(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret, int rc);
static void mr_incoming(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                        int rc);
static void mr_poll(libxl__egc *egc, libxl__ev_time *ev, int rc);
static void mr_polled(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                      int rc);
static void mr_resumed(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                       int rc);
static void mr_done(libxl__egc *egc, memory_restore_state *mrs, int rc);

/* How far QEMU has read the image (our fd's offset is its offset). */
static void mr_progress(memory_restore_state *mrs, bool over)
{
    off_t pos;
    uint64_t done;

    if (!mrs->progress || !mrs->progress->callback || !mrs->file) return;
    pos = lseek(mrs->fd, 0, SEEK_CUR);
    done = over || pos < 0 ? mrs->size : (uint64_t)pos;
    if (done > mrs->size) done = mrs->size;
    libxl__progress_report(mrs->progress, "memory", done, mrs->size);
}

static void mr_abort(libxl__egc *egc, libxl__ao_abortable *ab, int rc)
{
    memory_restore_state *mrs = CONTAINER_OF(ab, memory_restore_state, abrt);
    mr_done(egc, mrs, ERROR_ABORTED);
}

/* file NULL: fd is a migration stream (ours), else file is opened */
static int mr_start(libxl__egc *egc, libxl__ao *ao, const libxl__domain *d,
                    const char *file, int fd, bool paused, bool abortable,
                    const libxlsnap_progress_how *progress,
                    libxl__memory_restore_cb *callback, void *arg)
{
    AO_GC;
    memory_restore_state *mrs;
    struct stat sb;
    int rc;

    GCNEW(mrs);
    libxl__qmp_init(&mrs->qmp);
    libxl__ev_time_init(&mrs->poll);
    libxl__ao_abortable_init(&mrs->abrt);
    mrs->file = file;
    mrs->paused = paused;
    mrs->progress = progress;
    mrs->callback = callback;
    mrs->arg = arg;
    mrs->fd = file ? open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : fd;
    if (file && (mrs->fd < 0 || fstat(mrs->fd, &sb))) {
        LOGE(ERROR, "cannot open memory image '%s'", file);
        rc = ERROR_FAIL;
        goto out;
    }
    mrs->size = file ? sb.st_size : 0;
    mrs->qmp.ao = ao;
    mrs->qmp.path = d->qmp_path;
    mrs->qmp.domid = d->domid;
    mrs->qmp.quiet = !file;           /* a stream: the sender says why */
    if (abortable) {
        mrs->abrt.ao = ao;
        mrs->abrt.callback = mr_abort;
        rc = libxl__ao_abortable_register(&mrs->abrt);
        if (rc) goto out;
    }
    rc = libxl__qmp_connect(egc, &mrs->qmp, mr_connected);
    if (rc) goto out;
    return 0;
 out:
    libxl__ao_abortable_deregister(&mrs->abrt);
    if (mrs->fd >= 0) close(mrs->fd);
    return rc;
}

int libxl__memory_restore(libxl__egc *egc, libxl__ao *ao,
                          const libxl__domain *d, const char *file,
                          bool paused, bool abortable,
                          const libxlsnap_progress_how *progress,
                          libxl__memory_restore_cb *callback, void *arg)
{
    return mr_start(egc, ao, d, file, -1, paused, abortable, progress,
                    callback, arg);
}

int libxl__memory_incoming(libxl__egc *egc, libxl__ao *ao,
                           const libxl__domain *d, int fd, bool paused,
                           bool abortable,
                           libxl__memory_restore_cb *callback, void *arg)
{
    return mr_start(egc, ao, d, NULL, fd, paused, abortable, NULL,
                    callback, arg);
}

static void mr_connected(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                         int rc)
{
    memory_restore_state *mrs = CONTAINER_OF(qmp, memory_restore_state, qmp);

    if (!rc) rc = libxl__qmp_send(egc, qmp, "getfd",
                                  memory_fd_args(&mrs->qmp.ao->gc, "fdname",
                                                 MEMORY_FDNAME),
                                  mrs->fd, mr_getfd);
    if (rc) mr_done(egc, mrs, rc);
}

static void mr_getfd(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret, int rc)
{
    memory_restore_state *mrs = CONTAINER_OF(qmp, memory_restore_state, qmp);

    if (!rc && !mrs->file) {
        /* a stream: QEMU has it; the sender's failure is its EOF */
        close(mrs->fd);
        mrs->fd = -1;
    }
    if (!rc) rc = libxl__qmp_send(egc, qmp, "migrate-incoming",
                                  memory_fd_args(&mrs->qmp.ao->gc, "uri",
                                                 "fd:" MEMORY_FDNAME), -1,
                                  mr_incoming);
    if (rc) mr_done(egc, mrs, rc);
}

static void mr_incoming(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                        int rc)
{
    memory_restore_state *mrs = CONTAINER_OF(qmp, memory_restore_state, qmp);
    EGC_GC;

    if (rc) {
        mr_done(egc, mrs, rc);
        return;
    }
    libxl__ev_time_register_rel(gc, &mrs->poll, mr_poll, 0);
}

static void mr_poll(libxl__egc *egc, libxl__ev_time *ev, int rc)
{
    memory_restore_state *mrs = CONTAINER_OF(ev, memory_restore_state, poll);

    if (mrs->qmp.state != LIBXL__QMP_IDLE) {
        /* the monitor closed between two polls (a migration's
         * destination killed): one failure, said by the caller */
        mr_done(egc, mrs, ERROR_FAIL);
        return;
    }
    rc = libxl__qmp_send(egc, &mrs->qmp, "query-migrate", NULL, -1,
                         mr_polled);
    if (rc) mr_done(egc, mrs, rc);
}

static void mr_polled(libxl__egc *egc, libxl__qmp *qmp, yajl_val mig,
                      int rc)
{
    memory_restore_state *mrs = CONTAINER_OF(qmp, memory_restore_state, qmp);
    EGC_GC;
    const char *status;

    if (rc) goto out;
    status = libxl__json_get_string(mig, "status") ?: "";
    mr_progress(mrs, !strcmp(status, "completed"));
    if (!strcmp(status, "completed")) {
        if (mrs->paused) {
            mr_done(egc, mrs, 0);
            return;
        }
        rc = libxl__qmp_send(egc, qmp, "cont", NULL, -1, mr_resumed);
        if (rc) goto out;
        return;
    }
    if (!strcmp(status, "failed") || !strcmp(status, "cancelled")) {
        const char *e = libxl__json_get_string(mig, "error-desc");
        if (mrs->file)
            LOG(ERROR, "restoring the memory image '%s' failed%s%s",
                mrs->file, e ? ": " : "", e ? e : "");
        else
            LOG(DEBUG, "the incoming migration failed%s%s",
                e ? ": " : "", e ? e : "");
        rc = ERROR_FAIL;
        goto out;
    }
    libxl__ev_time_register_rel(gc, &mrs->poll, mr_poll, MEMORY_POLL_MS);
    return;
 out:
    mr_done(egc, mrs, rc);
}

static void mr_resumed(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                       int rc)
{
    memory_restore_state *mrs = CONTAINER_OF(qmp, memory_restore_state, qmp);
    mr_done(egc, mrs, rc);
}

static void mr_done(libxl__egc *egc, memory_restore_state *mrs, int rc)
{
    libxl__ao *ao = mrs->qmp.ao;
    libxl__gc *gc = &ao->gc;

    libxl__ev_time_deregister(gc, &mrs->poll);
    libxl__ao_abortable_deregister(&mrs->abrt);
    libxl__qmp_close(gc, &mrs->qmp);
    if (mrs->fd >= 0) close(mrs->fd);
    mrs->fd = -1;
    mrs->callback(egc, mrs->arg, rc);
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
