/*
 * libxl_snapshot_migrate.c - a running domain moved to a new QEMU
 *
 * On the qemu driver a domain is a QEMU process (libxl_snapshot_drv_
 * qemu.c).  libxlsnap_domain_migrate_local moves it to a second QEMU
 * on the same host, started from the same config on the ACTIVE images
 * of the domain record, as xl create would start it: a new domid, a
 * new runtime file, the same uuid, so the snapshot records (kept by
 * uuid) are the new domain's as they were the old one's.
 *
 * The stream is a socketpair: one end is given to the destination
 * (started with -incoming defer -S, then getfd and migrate-incoming
 * "fd:": libxl__memory_incoming, through the driver's create_async
 * with da->incoming), the other to the source (getfd and migrate
 * "fd:": libxl__memory_save with mss->migration, the same QMP sequence
 * as a live memory checkpoint, pause-before-switchover included).
 * Both halves run at once on the loop; each closes its end once its
 * QEMU has it, so that either QEMU's failure is the other's end of
 * stream, never a wait.
 *
 * The guest agent's socket (a config's channel): the destination
 * listens on <path>.incoming, renamed to <path> once the source has
 * quit (which removes the path of its own socket).
 *
 * The images: the destination opens them inactive (QEMU's -incoming),
 * the source inactivates them when the migration completes, writing
 * its persistent dirty bitmaps into the qcow2 files then; the
 * destination activates them (and loads the bitmaps) when it has read
 * everything.  Nothing in the records changes: the same images.
 *
 * Wholly old or wholly new.  Until both sides say "completed", any
 * failure (the destination does not start, the migration fails or its
 * stream stalls, ao_abort at any time before both completed) kills the
 * destination (the driver
 * does, for a start that failed) and leaves the source running (its
 * QEMU goes on after a cancelled or failed migration; it is continued
 * if it had been running, and a source that completed is continued
 * too: cont activates its images again).  Once both completed, the
 * destination is continued (if the domain was running), and the
 * source is told to quit (killed if it does not: the driver's
 * destroy).  A failure of that cont is handled as before the switch.
 *
 * Refused: another driver (xl migrate is Xen's there), a domain that
 * does not run, a disk in a block job, a journal recovery could not
 * complete, a running disk that is not the record's active image, no
 * config file to start the destination from.
 *
 * Fault points ("migrate", tests): RAM being copied (1), the source
 * stopped at the switchover (2), after it (3), the rest being written
 * (4), both completed, before the destination runs (5), the source
 * stopped, the journal not yet removed (6).  At 1 and 2
 * the fault's domain (killqemu's) is the destination, from 3 on the
 * source.
 *
 * Crash safety: before the destination starts, a journal names the
 * source QEMU (and whether the domain ran); the next command on the
 * domain (libxl__migrate_recover) finds the destination (the other QEMU
 * of the domain's uuid), keeps it if the source is gone and it has it
 * all, else kills it and gives the source back its images and run
 * state.
 *
 * Steps: libxlsnap_domain_migrate_local -> migrate_begun -> (both at
 *   once: destination started [migrate_dest_done], source saving
 *   [migrate_instant -> migrate_src_done]) -> migrate_joined ->
 *   [migrate_src_stopped | migrate_dest_stopped] -> migrate_done
 */
#include "libxl_snapshot_internal.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <unistd.h>

typedef struct {
    libxl__ao *ao;
    libxl__snapshot_op op;
    unsigned flags;
    uint64_t bandwidth;
    uint32_t *domid_r;
    libxlsnap_progress_how progress;  /* a copy; zero: none */
    libxl__domain_async dest;         /* the destination's start */
    libxl__memory_save_state mss;     /* the source's half */
    libxl__domain_async stop;         /* the QEMU that goes */
    libxl__domain dest_d;
    libxl__ao_abortable abrt;         /* until both halves are done */
    bool dest_done, src_done, journaled, aborted, keep_journal;
    int dest_rc, src_rc, rc;
} migrate_state;

#define JOURNAL_OP "migrate"

/*
 * The journal: the source QEMU, and how the domain was.  Written before
 * the destination starts (any other QEMU of the domain's uuid is the
 * destination), removed at the end.
 */
static int migrate_journal(libxl__gc *gc, migrate_state *ms)
{
    yajl_val j = NULL;
    char *text;

    libxl__json_add_string(gc, &j, "op", JOURNAL_OP);
    libxl__json_add_integer(gc, &j, "source", ms->op.d.domid);
    libxl__json_add_bool(gc, &j, "was_running", !ms->op.d.paused);
    libxl__json_add_bool(gc, &j, "paused",
                         !!(ms->flags & LIBXLSNAP_MIGRATE_PAUSED));
    text = libxl__json_to_string(gc, j);
    return libxl__journal_write_text(gc, &ms->op.st, text, strlen(text),
                                     false);
}

/* After the switch the domain runs, unless LIBXLSNAP_MIGRATE_PAUSED
 * (as Xen's xl migrate -p), whether or not it was paused before. */
static void migrate_begun(libxl__egc *egc, libxl__snapshot_op *op, int rc);
static void migrate_dest_done(libxl__egc *egc, libxl__domain_async *da,
                              int rc);
static void migrate_instant(libxl__egc *egc, libxl__memory_save_state *mss,
                            int rc);
static void migrate_src_done(libxl__egc *egc, libxl__memory_save_state *mss,
                             int rc);
static void migrate_joined(libxl__egc *egc, migrate_state *ms);
static void migrate_src_stopped(libxl__egc *egc, libxl__domain_async *da,
                                int rc);
static void migrate_dest_stopped(libxl__egc *egc, libxl__domain_async *da,
                                 int rc);
static void migrate_done(libxl__egc *egc, migrate_state *ms, int rc);

/*
 * The destination ended before it has it all (the source failed, or
 * ao_abort): killed, its half then ends (its QMP connection closes) and
 * the source's stream breaks.  Nothing waits on a stalled peer.
 */
static void migrate_kill_dest(migrate_state *ms)
{
    if (!ms->dest_done && ms->dest.pid > 0)
        kill(ms->dest.pid, SIGKILL);
}

/* ao_abort (Ctrl-C) at any time before both completed: wholly old */
static void migrate_abort(libxl__egc *egc, libxl__ao_abortable *ab, int rc)
{
    migrate_state *ms = CONTAINER_OF(ab, migrate_state, abrt);

    libxl__ao_abortable_deregister(&ms->abrt);
    ms->aborted = true;
    migrate_kill_dest(ms);
}

int libxlsnap_domain_migrate_local(libxlsnap_ctx *ctx, const char *domain,
                                   unsigned flags, uint64_t bandwidth,
                                   uint32_t *domid_r,
                                   const libxlsnap_progress_how *progress,
                                   const libxl_asyncop_how *ao_how)
{
    if (ARGS_MISSING(ctx, domain) ||
        FLAGS_UNKNOWN(ctx, flags, LIBXLSNAP_MIGRATE_PAUSED))
        return ERROR_INVAL;
    AO_CREATE(ctx, ao_how);
    EGC_INIT(ctx);
    migrate_state *ms;

    GCNEW(ms);
    ms->ao = ao;
    ms->flags = flags;
    ms->bandwidth = bandwidth;
    ms->domid_r = domid_r;
    if (progress) ms->progress = *progress;
    libxl__memory_save_init(&ms->mss);
    libxl__ao_abortable_init(&ms->abrt);
    ms->op.ao = ao;
    ms->op.domain = GCSTRDUP(domain);
    ms->op.callback = migrate_begun;
    libxl__snapshot_op_begin(egc, &ms->op);
    EGC_FREE;
    return AO_INPROGRESS;
}

/* Every running disk is on the image the record says is active. */
static int disks_as_recorded(libxl__gc *gc, const libxl__snapshot_op *op)
{
    const libxl__domain_config *cfg = &op->cfg;
    int i;

    for (i = 0; i < cfg->num_disks; i++) {
        const libxl_device_disk *dk = &cfg->disks[i];
        const libxl__active_disk *ad;
        const char *want;
        libxl_device_disk *run;

        if (dk->is_cdrom || !dk->vdev) continue;
        ad = libxl__domain_record_active(gc, &op->tree.dom, dk, false);
        want = ad ? ad->path : dk->pdev_path;
        run = libxl__domain_disk((libxl__domain *)&op->d, dk->vdev);
        if (!run) {
            /* the config changed since the domain started */
            LOG(ERROR, "domain %s: its config file '%s' has disk %s, which "
                "the running domain lacks: the new QEMU would not be the "
                "same domain (restart it to add the disk)", op->d.name,
                cfg->file, dk->vdev);
            return ERROR_INVAL;
        }
        if (!run->pdev_path || !want ||
            strcmp(run->pdev_path, want)) {
            LOG(ERROR, "domain %s: disk %s runs on '%s', its records say "
                "'%s'; run xl snapshot-check %s first", op->d.name,
                dk->vdev, run && run->pdev_path ? run->pdev_path : "-",
                want ? want : "-", op->d.name);
            return ERROR_INVAL;
        }
    }
    return 0;
}

static void migrate_begun(libxl__egc *egc, libxl__snapshot_op *op, int rc)
{
    migrate_state *ms = CONTAINER_OF(op, migrate_state, op);
    STATE_AO_GC(ms->ao);
    int sv[2];

    if (rc) {
        libxl__ao_complete(egc, ao, rc);
        return;
    }
    if (!CTX->driver->create_async || CTX->driver->suspend) {
        LOG(ERROR, "a local migration is the qemu driver's; on %s, "
            "migrate with the system xl", CTX->driver->name);
        rc = ERROR_NI;
        goto out;
    }
    if (!op->d.running) {
        LOG(ERROR, "domain %s is not running", op->d.name);
        rc = ERROR_DOMAIN_NOTFOUND;
        goto out;
    }
    rc = libxl__snapshot_op_settled(gc, op);
    if (rc) goto out;
    if (!op->cfg.file || !libxl__file_exists(op->cfg.file)) {
        LOG(ERROR, "domain %s: no config file to start the destination "
            "from", op->d.name);
        rc = ERROR_INVAL;
        goto out;
    }
    rc = disks_as_recorded(gc, op);
    if (rc) goto out;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
        LOGE(ERROR, "domain %s: cannot create the migration stream",
             op->d.name);
        rc = ERROR_FAIL;
        goto out;
    }
    LOG(DEBUG, "domain %s: migrating (domid %u) to a new QEMU",
        op->d.name, op->d.domid);

    /* the destination: stays paused until both sides completed */
    ms->dest.ao = ao;
    ms->dest.cfg = &op->cfg;
    ms->dest.rec = &op->tree.dom;
    ms->dest.paused = true;
    ms->dest.incoming = true;
    ms->dest.incoming_fd = sv[1];
    ms->dest.unabortable = true;      /* the source's half is aborted */
    ms->dest.callback = migrate_dest_done;

    ms->mss.ao = ao;
    ms->mss.d = &op->d;
    ms->mss.migration = true;
    ms->mss.fd = sv[0];
    ms->mss.live = true;
    ms->mss.bandwidth = ms->bandwidth;
    ms->mss.fault_op = "migrate";
    ms->mss.instant = migrate_instant;
    ms->mss.callback = migrate_src_done;
    ms->mss.progress = ms->progress.callback ? &ms->progress : NULL;

    /* a crash from here on: the next command puts the domain back on
     * one QEMU (libxl__migrate_recover) */
    rc = migrate_journal(gc, ms);
    if (rc) {
        close(sv[0]);
        close(sv[1]);
        ms->mss.fd = -1;
        goto out;
    }
    ms->journaled = true;
    ms->abrt.ao = ao;
    ms->abrt.callback = migrate_abort;
    rc = libxl__ao_abortable_register(&ms->abrt);
    if (rc) {
        close(sv[0]);
        close(sv[1]);
        ms->mss.fd = -1;
        goto out;
    }

    libxl__domain_start_async(egc, &ms->dest);
    if (ms->dest_done && ms->dest_rc) {
        /* it did not start: the source is not asked anything */
        close(ms->mss.fd);
        ms->mss.fd = -1;
        ms->src_done = true;
        ms->src_rc = ms->dest_rc;
        migrate_joined(egc, ms);
        return;
    }
    /* tests: killqemu until the switchover kills the destination */
    ms->dest_d.name = op->d.name;
    ms->dest_d.domid = ms->dest.domid;
    ms->dest_d.qmp_path = (char *)ms->dest.qmp_path;
    ms->dest_d.running = true;
    libxl__fault_domain(&ms->dest_d);
    libxl__memory_save(egc, &ms->mss);
    return;
 out:
    migrate_done(egc, ms, rc);
}

static void migrate_dest_done(libxl__egc *egc, libxl__domain_async *da,
                              int rc)
{
    migrate_state *ms = CONTAINER_OF(da, migrate_state, dest);

    if (da->incoming_fd >= 0) {
        /* refused before the driver had it (disks_startable) */
        close(da->incoming_fd);
        da->incoming_fd = -1;
    }
    ms->dest_done = true;
    ms->dest_rc = rc;
    if (ms->src_done) migrate_joined(egc, ms);
}

/* the source is stopped at the switchover: nothing to take here */
static void migrate_instant(libxl__egc *egc, libxl__memory_save_state *mss,
                            int rc)
{
    migrate_state *ms = CONTAINER_OF(mss, migrate_state, mss);

    libxl__fault_domain(&ms->op.d);
    libxl__memory_save_instant_done(egc, mss, rc);
}

static void migrate_src_done(libxl__egc *egc, libxl__memory_save_state *mss,
                             int rc)
{
    migrate_state *ms = CONTAINER_OF(mss, migrate_state, mss);

    ms->src_done = true;
    ms->src_rc = rc;
    if (rc) migrate_kill_dest(ms);    /* it would wait for ever */
    if (ms->dest_done) migrate_joined(egc, ms);
}

/* A QEMU to stop as a step, by its domain. */
static void migrate_stop(libxl__egc *egc, migrate_state *ms,
                         libxl__domain *d, libxl__domain_async_cb *cb)
{
    memset(&ms->stop, 0, sizeof(ms->stop));
    ms->stop.ao = ms->ao;
    ms->stop.d = d;
    ms->stop.callback = cb;
    libxl__domain_stop_async(egc, &ms->stop);
}

/* The source QEMU is no more (killed during the migration?). */
static bool migrate_src_gone(libxl__gc *gc, const libxl__domain *src)
{
    libxl__domain d;
    int r = CTX->driver->lookup_running(gc, GCSPRINTF("%u", src->domid),
                                        false, &d);
    return r == ERROR_DOMAIN_NOTFOUND || r == ERROR_NOTFOUND ||
        (!r && d.domid != src->domid);
}

static void migrate_joined(libxl__egc *egc, migrate_state *ms)
{
    STATE_AO_GC(ms->ao);
    libxl__domain *src = &ms->op.d;
    /* as Xen's xl: it runs on the new QEMU unless -p, paused before
     * or not */
    bool run = !(ms->flags & LIBXLSNAP_MIGRATE_PAUSED);
    int rc;

    libxl__ao_abortable_deregister(&ms->abrt);
    ms->dest_d.name = src->name;
    ms->dest_d.domid = ms->dest.domid;
    ms->dest_d.qmp_path = (char *)ms->dest.qmp_path;
    ms->dest_d.running = true;
    if (ms->aborted && !ms->src_rc && !ms->dest_rc) {
        /* both had completed: too late to cancel, it goes on */
        ms->aborted = false;
    }
    if (ms->src_rc || ms->dest_rc) {
        rc = ms->src_rc ? ms->src_rc : ms->dest_rc;
        if (ms->aborted) rc = ERROR_ABORTED;
        if (ms->mss.not_resumed) {
            /* its QEMU does not answer: the next command resumes it */
            ms->keep_journal = true;
            LOG(ERROR, "domain %s: %s; its QEMU (domid %u) does not "
                "answer: the new QEMU is killed, and the next command on "
                "%s (xl snapshot-recover %s) resumes it", src->name,
                ms->aborted ? "migration cancelled"
                : ms->mss.why ? ms->mss.why : "the migration failed",
                src->domid, src->name, src->name);
            goto fail;
        }
        /*
         * One line: a destination that did not start said why (the
         * source's broken stream follows from it); one that failed
         * reading is silent, the source's side says what happened.
         */
        if (ms->src_rc && migrate_src_gone(gc, src))
            LOG(ERROR, "domain %s: its QEMU (domid %u) ended during the "
                "migration, before the new one had it all: the domain is "
                "shut off", src->name, src->domid);
        else if (ms->src_rc == ERROR_ABORTED || ms->aborted)
            LOG(ERROR, "domain %s: migration cancelled; it stays on "
                "domid %u", src->name, src->domid);
        else if (ms->src_rc && (!ms->dest_rc || ms->dest.incoming_started))
            LOG(ERROR, "domain %s: %s; it stays on domid %u", src->name,
                ms->mss.why ? ms->mss.why : "the migration failed",
                src->domid);
        else if (ms->dest.incoming_started)
            /* the source sent it all (into the socket), in vain */
            LOG(ERROR, "domain %s: the new QEMU failed while receiving it; "
                "it stays on domid %u", src->name, src->domid);
        goto fail;
    }
    /* both completed: the destination is the domain from here on */
    libxl__fault_point("migrate");
    if (run) {
        rc = libxl__qmp_run_sync(gc, ms->dest_d.qmp_path, "cont", NULL,
                                 5000, false, NULL);
        if (rc) {
            LOG(ERROR, "domain %s: the new QEMU (domid %u) does not run "
                "it", src->name, ms->dest_d.domid);
            goto fail;
        }
    }
    ms->rc = 0;
    if (ms->domid_r) *ms->domid_r = ms->dest_d.domid;
    migrate_stop(egc, ms, src, migrate_src_stopped);
    return;

 fail:
    ms->rc = rc;
    if (ms->keep_journal) {
        /* nothing more to ask of it */
    } else if (!ms->src_rc && ms->mss.was_running) {
        /* it completed, its images inactive: cont takes them back */
        if (libxl__qmp_run_sync(gc, src->qmp_path, "cont", NULL, 5000,
                                false, NULL))
            LOG(ERROR, "domain %s: cannot resume it (xl unpause %s)",
                src->name, src->name);
    } else if (!ms->src_rc) {
        /* paused before: its images back, still paused */
        if (libxl__qmp_run_sync(gc, src->qmp_path, "cont", NULL, 5000,
                                false, NULL) ||
            libxl__qmp_run_sync(gc, src->qmp_path, "stop", NULL, 5000,
                                false, NULL))
            LOG(ERROR, "domain %s: cannot take its images back",
                src->name);
    }
    if (!ms->dest_rc && ms->dest_d.domid) {
        /* it completed: a QEMU the domain does not run on any more */
        migrate_stop(egc, ms, &ms->dest_d, migrate_dest_stopped);
        return;
    }
    migrate_done(egc, ms, rc);
}

static void migrate_src_stopped(libxl__egc *egc, libxl__domain_async *da,
                                int rc)
{
    migrate_state *ms = CONTAINER_OF(da, migrate_state, stop);
    EGC_GC;

    /* the domain runs on the new QEMU whatever the old one did */
    libxl__fault_point("migrate");    /* the old one gone, journal kept */
    if (rc)
        LOG(WARN, "domain %s: the old QEMU (domid %u) did not stop",
            ms->op.d.name, ms->op.d.domid);
    /* the guest agent's socket: the new QEMU's from now on (not before:
     * the old one removes its socket's path when it quits) */
    if (ms->op.cfg.agent_path &&
        rename(libxl__agent_incoming_path(gc, ms->op.cfg.agent_path),
               ms->op.cfg.agent_path))
        LOGE(WARN, "domain %s: cannot move the guest agent's socket to "
             "'%s'", ms->op.d.name, ms->op.cfg.agent_path);
    migrate_done(egc, ms, 0);
}

static void migrate_dest_stopped(libxl__egc *egc, libxl__domain_async *da,
                                 int rc)
{
    migrate_state *ms = CONTAINER_OF(da, migrate_state, stop);
    EGC_GC;

    if (rc)
        LOG(ERROR, "domain %s: cannot stop the new QEMU (domid %u): xl "
            "destroy %u", ms->op.d.name, ms->dest_d.domid,
            ms->dest_d.domid);
    else if (ms->op.cfg.agent_path)
        unlink(libxl__agent_incoming_path(gc, ms->op.cfg.agent_path));
    migrate_done(egc, ms, ms->rc);
}

static void migrate_done(libxl__egc *egc, migrate_state *ms, int rc)
{
    STATE_AO_GC(ms->ao);

    if (!rc)
        LOG(DEBUG, "domain %s: migrated, domid %u", ms->op.d.name,
            ms->dest_d.domid);
    /* one QEMU runs the domain: wholly old or wholly new */
    libxl__ao_abortable_deregister(&ms->abrt);
    if (ms->journaled && !ms->keep_journal)
        libxl__journal_remove(gc, &ms->op.st);
    libxl__snapshot_op_end(gc, &ms->op);
    libxl__ao_complete(egc, ao, rc);
}

/* ---------------------------------------------------------------- */
/* recovery: a migration whose process died */

/* The QEMU of domid, if it still runs (d_r), and its run state. */
static bool migrate_qemu(libxl__gc *gc, long long domid, libxl__domain *d_r,
                         const char **status_r)
{
    yajl_val st = NULL;

    *status_r = "";
    if (domid <= 0 ||
        CTX->driver->lookup_running(gc, GCSPRINTF("%lld", domid), false, d_r))
        return false;
    if (!libxl__qmp_run_sync(gc, d_r->qmp_path, "query-status", NULL, 5000,
                             true, &st) && st)
        *status_r = libxl__json_get_string(st, "status") ?: "";
    return true;
}

/*
 * Back to one QEMU.  The destination is the domain only when the
 * source is gone (it quits only after the switch) and the destination
 * has the whole state (paused or running, not "inmigrate"); then it
 * runs unless the migration was --paused.  Otherwise the destination goes, and the source is given back
 * what the migration took: its migration cancelled, its images (cont
 * activates them after a completed migration), and its run state.
 */
int libxl__migrate_recover(libxl__gc *gc, libxl__snapshot_op *op, yajl_val j)
{
    long long src_id = libxl__json_get_integer(j, "source", -1);
    long long dest_id = -1;
    bool was_running = libxl__json_get_bool(j, "was_running", true);
    bool paused = libxl__json_get_bool(j, "paused", false);
    libxl__domain src, dest, *l;
    const char *src_st, *dest_st;
    bool have_src, have_dest;
    int rc = 0, n, i;

    if (src_id <= 0)
        return libxl__journal_unusable(gc, op, "holds a migration without "
                                       "its source's domid");
    /* the destination: the other QEMU of the domain's uuid, if any */
    if (!CTX->driver->list(gc, &l, &n))
        for (i = 0; i < n; i++)
            if (!libxl_uuid_compare(&l[i].uuid, &op->d.uuid) &&
                l[i].domid != (uint32_t)src_id)
                dest_id = l[i].domid;
    have_src = migrate_qemu(gc, src_id, &src, &src_st);
    have_dest = migrate_qemu(gc, dest_id, &dest, &dest_st);
    if (!have_src && have_dest &&
        (!strcmp(dest_st, "paused") || !strcmp(dest_st, "running"))) {
        if (op->cfg.agent_path)
            rename(libxl__agent_incoming_path(gc, op->cfg.agent_path),
                   op->cfg.agent_path);
        if (!paused && strcmp(dest_st, "running") &&
            libxl__qmp_run_sync(gc, dest.qmp_path, "cont", NULL, 5000, false,
                                NULL))
            return ERROR_FAIL;
        LOG(WARN, "domain %s: an interrupted migration is finished: it "
            "runs on domid %lld", op->d.name, dest_id);
        return 0;
    }
    if (have_dest) {
        rc = CTX->driver->destroy(gc, &dest);
        if (rc) return rc;
        if (op->cfg.agent_path)
            unlink(libxl__agent_incoming_path(gc, op->cfg.agent_path));
    }
    if (!have_src) {
        LOG(WARN, "domain %s: an interrupted migration left neither QEMU "
            "with the domain: it is shut off", op->d.name);
        return 0;
    }
    /* over, not cancelling, before the next command goes on */
    if (libxl__memory_migration_end(gc, src.qmp_path)) {
        LOG(ERROR, "domain %s: the interrupted migration of domid %lld "
            "does not end", op->d.name, src_id);
        return ERROR_FAIL;
    }
    if ((was_running || !strcmp(src_st, "postmigrate")) &&
        strcmp(src_st, "running") &&
        libxl__qmp_run_sync(gc, src.qmp_path, "cont", NULL, 5000, false,
                            NULL))
        return ERROR_FAIL;
    if (!was_running && !strcmp(src_st, "postmigrate") &&
        libxl__qmp_run_sync(gc, src.qmp_path, "stop", NULL, 5000, false,
                            NULL))
        return ERROR_FAIL;
    LOG(WARN, "domain %s: an interrupted migration is undone: it %s on "
        "domid %lld", op->d.name, was_running ? "runs" : "is paused",
        src_id);
    return 0;
}

/* ---------------------------------------------------------------- */
/* across hosts: do the records follow? */

/* Network file systems a state dir can be shared on (statfs f_type) */
static const unsigned long shared_fs_magic[] = {
    0x6969,                           /* NFS */
    0xff534d42,                       /* CIFS */
    0xfe534d42,                       /* SMB2 */
    0x00c36400,                       /* CephFS */
    0x01161970,                       /* GFS2 */
    0x7461636f,                       /* OCFS2 */
    0x47504653,                       /* GPFS */
    0x0bd00bd0,                       /* Lustre */
};

bool libxl__state_dir_shared(libxl__gc *gc, const char *dir)
{
    const char *v = getenv("XL_SNAPSHOT_STATE_SHARED");
    struct statfs sf;
    size_t i;

    /* the user's word first: 1 shared, 0 host-local */
    if (v && *v) return strcmp(v, "0") != 0;
    if (statfs(dir, &sf)) return false;
    for (i = 0; i < sizeof(shared_fs_magic) / sizeof(*shared_fs_magic);
         i++)
        if ((unsigned long)sf.f_type == shared_fs_magic[i]) return true;
    return false;
}

int libxlsnap_domain_records_stay_behind(libxlsnap_ctx *ctx,
                                         const char *domain,
                                         int *nb_snapshots_r)
{
    if (ARGS_MISSING(ctx, domain, nb_snapshots_r)) return ERROR_INVAL;
    GC_INIT(ctx);
    libxl__snapshot_store st;
    libxl__snapshot_tree t;
    libxl__domain d;
    int rc = 0;

    *nb_snapshots_r = 0;
    /* the RADOS store, or a state dir on shared storage: they follow */
    if (!libxl__snapshot_store_is_dir(gc) ||
        libxl__state_dir_shared(gc, ctx->state_dir))
        goto out;
    rc = libxl__domain_identify(gc, domain, &d, NULL);
    if (rc) goto out;
    rc = libxl__snapshot_store_open(gc, ctx->state_dir, &d.uuid, &st);
    if (rc) goto out;
    if (libxl__snapshot_store_load(gc, &st, &t)) goto out;
    *nb_snapshots_r = t.num_snaps;
 out:
    GC_FREE;
    return rc;
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
