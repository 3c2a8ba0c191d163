/*
 * libxlsnap_domain.c - finding domains, their disks, the lock
 *
 * A snapshot operation needs three things about a domain: whether a
 * device model runs for it (then QMP, else qemu-img), its disks, and
 * the image each disk is *active* on now.  The active image is not
 * the config's after an external snapshot or a revert: it is kept in
 * the domain record (domain.libxl-json) and wins over the config, so
 * the domain never boots from a backing file.
 *
 * Resolution order for a name: a running domain of the driver; a path
 * to an xl config file; a domain record in the state dir (by name or
 * uuid); <config dir>/<name>.cfg.
 *
 * The per-domain lock is a flock on <state>/<uuid>/lock, tried without
 * blocking and retried from a timer, so an asynchronous caller's loop
 * never blocks and a second command waits (up to
 * $XL_SNAPSHOT_LOCK_TIMEOUT seconds, default 10) then fails cleanly.
 *
 * Every operation begins here (libxl__snapshot_op_begin): the domain
 * resolved, its lock taken, its records loaded, and what a dead process
 * left recovered (journal, then block jobs).  A block job adopted at
 * READY and told to finish is waited for on the loop (op_recover_jobs,
 * polled by a timer, abortable), not in place.  Steps: op_begin ->
 * op_locked -> [op_recover_jobs <-> op_adopt_poll] -> op_recovered.
 * libxl__domain_stop_async / _start_async: a domain stopped and started
 * as steps of an ao (the driver's destroy_async / create_async, or its
 * synchronous forms called from the step).
 */
#include "libxl_snapshot_internal.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOCK_RETRY_MS 50
/* the RADOS store: each try is a ceph-util run, a cluster connection */
#define LOCK_RETRY_RADOS_MS 500
#define LOCK_RETRY(gc) \
    (libxl__snapshot_store_is_dir(gc) ? LOCK_RETRY_MS : LOCK_RETRY_RADOS_MS)

/* ---------------------------------------------------------------- */
/* resolution */

static bool looks_like_path(const char *s)
{
    size_t n = strlen(s);
    return strchr(s, '/') || (n > 4 && !strcmp(s + n - 4, ".cfg"));
}

/* Finds the record dir whose domain record has this name or uuid. */
static int find_record_by_name(libxl__gc *gc, const char *domain,
                               libxl__domain_record *rec_r)
{
    libxl_uuid *uuids, u;
    int i, n, rc = ERROR_DOMAIN_NOTFOUND;

    if (libxl__snapshot_store_domains(gc, &uuids, &n))
        return ERROR_DOMAIN_NOTFOUND;
    for (i = 0; i < n; i++) {
        libxl__snapshot_store st;
        libxl__domain_record dom;
        char uuidstr[40];

        u = uuids[i];
        if (libxl__snapshot_store_open(gc, CTX->state_dir, &u, &st))
            continue;
        if (libxl__snapshot_store_load_domain(gc, &st, &dom)) continue;
        snprintf(uuidstr, sizeof(uuidstr), LIBXL_UUID_FMT,
                 LIBXL_UUID_BYTES(u));
        if ((dom.name && !strcmp(dom.name, domain)) ||
            !strcmp(uuidstr, domain)) {
            *rec_r = dom;
            libxl_uuid_copy(NULL, &rec_r->uuid, &u);
            rc = 0;
            break;
        }
    }
    return rc;
}

/*
 * A config without uuid= takes the uuid its name's records are kept
 * under (a uuid= it once had), over the one derived from its name.
 */
static void config_records_uuid(libxl__gc *gc, libxl__domain_config *cfg)
{
    libxl__domain_record rec;

    if (!cfg->have_uuid && cfg->name && !find_record_by_name(gc, cfg->name,
                                                             &rec))
        libxl_uuid_copy(NULL, &cfg->uuid, &rec.uuid);
}

static int load_domain_record(libxl__gc *gc, const libxl_uuid *uuid,
                              libxl__domain_record *rec_r)
{
    libxl__snapshot_store st;
    int rc;

    memset(rec_r, 0, sizeof(*rec_r));
    rc = libxl__snapshot_store_open(gc, CTX->state_dir, uuid, &st);
    if (rc) return rc;
    return libxl__snapshot_store_load_domain(gc, &st, rec_r);
}

/* Disks of cfg with pdev_path/format replaced by the active images. */
static void apply_active(libxl__gc *gc, libxl__domain *d,
                         const libxl__domain_config *cfg,
                         libxl__domain_record *rec)
{
    int i;

    d->num_disks = cfg->num_disks;
    GCNEW_ARRAY(d->disks, cfg->num_disks);
    for (i = 0; i < cfg->num_disks; i++) {
        const libxl__active_disk *ad;
        d->disks[i] = cfg->disks[i];
        ad = libxl__domain_record_active(gc, rec, &cfg->disks[i], true);
        if (ad) {
            d->disks[i].pdev_path = ad->path;
            d->disks[i].format = ad->format;
        }
    }
}

/*
 * fallback: the config file to resolve domain by when nothing else here
 * knows it (snapshot-import-records: the one its records name); it must
 * exist and be domain's (its name=).
 */
static int resolve(libxl__gc *gc, const char *domain, bool run_state,
                   const char *fallback,
                   libxl__domain *d_r, libxl__domain_config *cfg_r)
{
    libxl__domain_config cfg;
    libxl__domain_record rec;
    const char *cfgfile = NULL;
    bool have_rec = false;
    int rc;

    memset(d_r, 0, sizeof(*d_r));
    memset(&cfg, 0, sizeof(cfg));
    memset(&rec, 0, sizeof(rec));

    rc = CTX->driver->lookup_running(gc, domain, run_state, d_r);
    if (!rc) {
        /* The disks the driver reports are the active ones. */
        if (!load_domain_record(gc, &d_r->uuid, &rec)) have_rec = true;
        if (d_r->config_file) cfgfile = d_r->config_file;
        else if (have_rec && rec.config_file) cfgfile = rec.config_file;
        if (cfgfile && libxl__file_exists(cfgfile)) {
            rc = libxl__domain_config_parse(gc, cfgfile, &cfg);
            if (rc) return rc;
            /* no uuid=: the domain keeps the one it runs with (its
             * records are kept under it) when it is started again */
            if (!cfg.have_uuid)
                libxl_uuid_copy(NULL, &cfg.uuid, &d_r->uuid);
        } else {
            cfg.name = d_r->name;
            libxl_uuid_copy(NULL, &cfg.uuid, &d_r->uuid);
            cfg.have_uuid = true;
            cfg.disks = d_r->disks;
            cfg.num_disks = d_r->num_disks;
        }
        if (!d_r->config_file && cfg.file) d_r->config_file = cfg.file;
        if (cfg_r) *cfg_r = cfg;
        return 0;
    }
    if (rc != ERROR_DOMAIN_NOTFOUND) return rc;

    if (looks_like_path(domain) && libxl__file_exists(domain)) {
        cfgfile = domain;
    } else if (!find_record_by_name(gc, domain, &rec) && rec.config_file) {
        have_rec = true;
        cfgfile = rec.config_file;
        if (!libxl__file_exists(cfgfile)) {
            LOG(ERROR, "domain '%s' is not running and its config '%s' "
                "is gone", domain, cfgfile);
            return ERROR_DOMAIN_NOTFOUND;
        }
    } else {
        char *p = GCSPRINTF("%s/%s.cfg", CTX->config_dir, domain);
        if (!strchr(domain, '/') && libxl__file_exists(p)) cfgfile = p;
    }
    if (!cfgfile && fallback) {
        if (!libxl__file_exists(fallback)) {
            LOG(ERROR, "domain '%s' not found here, and the config file "
                "'%s' its records name is missing",
                libxl__printable(gc, domain), fallback);
            return ERROR_DOMAIN_NOTFOUND;
        }
        cfgfile = fallback;
    }
    if (!cfgfile) {
        LOG(ERROR, "domain '%s' not found (not running, and no config "
            "file is known for it)", libxl__printable(gc, domain));
        return ERROR_DOMAIN_NOTFOUND;
    }
    rc = libxl__domain_config_parse(gc, cfgfile, &cfg);
    if (rc) return rc;
    if (cfgfile == fallback && strcmp(cfg.name, domain)) {
        LOG(ERROR, "domain '%s' not found here, and the config file '%s' "
            "its records name is domain %s's", libxl__printable(gc, domain),
            fallback, cfg.name);
        return ERROR_DOMAIN_NOTFOUND;
    }
    if (!have_rec) config_records_uuid(gc, &cfg);
    if (!have_rec && !load_domain_record(gc, &cfg.uuid, &rec))
        have_rec = true;

    /* A config path given for a domain that is in fact running. */
    if (!CTX->driver->lookup_running(gc, cfg.name, run_state, d_r) &&
        !libxl_uuid_compare(&d_r->uuid, &cfg.uuid)) {
        if (!d_r->config_file) d_r->config_file = cfg.file;
        if (cfg_r) *cfg_r = cfg;
        return 0;
    }

    memset(d_r, 0, sizeof(*d_r));
    d_r->name = cfg.name;
    libxl_uuid_copy(NULL, &d_r->uuid, &cfg.uuid);
    d_r->domid = INVALID_DOMID;
    d_r->running = false;
    d_r->config_file = cfg.file;
    apply_active(gc, d_r, &cfg, have_rec ? &rec : NULL);
    if (cfg_r) *cfg_r = cfg;
    return 0;
}

int libxl__domain_resolve(libxl__gc *gc, const char *domain,
                          libxl__domain *d_r, libxl__domain_config *cfg_r)
{
    return resolve(gc, domain, true, NULL, d_r, cfg_r);
}

int libxl__domain_identify(libxl__gc *gc, const char *domain,
                           libxl__domain *d_r, libxl__domain_config *cfg_r)
{
    return resolve(gc, domain, false, NULL, d_r, cfg_r);
}

libxl_device_disk *libxl__domain_disk(libxl__domain *d, const char *vdev)
{
    int i;
    for (i = 0; i < d->num_disks; i++)
        if (d->disks[i].vdev && !strcmp(d->disks[i].vdev, vdev))
            return &d->disks[i];
    return NULL;
}

/* ---------------------------------------------------------------- */
/* the per-domain lock */

void libxl__snapshot_lock_busy(libxl__gc *gc, const char *domain,
                               const char *holder)
{
    LOG(ERROR, "domain %s is busy: another snapshot or block job "
        "command holds its lock%s%s%s", domain,
        holder ? " (" : "", holder ? holder : "", holder ? ")" : "");
}

static void lock_retry(libxl__egc *egc, libxl__ev_time *ev, int rc);
static void lock_abort(libxl__egc *egc, libxl__ao_abortable *ab, int rc);

static void lock_done(libxl__egc *egc, libxl__snapshot_lock *lk, int rc)
{
    STATE_AO_GC(lk->ao);
    libxl__ev_time_deregister(gc, &lk->retry);
    libxl__ao_abortable_deregister(&lk->abrt);
    lk->callback(egc, lk, rc);
}

void libxl__snapshot_lock_acquire(libxl__egc *egc,
                                  libxl__snapshot_lock *lk)
{
    STATE_AO_GC(lk->ao);
    int secs = CTX->lock_timeout;
    int rc;

    libxl__ev_time_init(&lk->retry);
    libxl__ao_abortable_init(&lk->abrt);
    lk->deadline_ms = libxl__now_ms() + (uint64_t)(secs > 0 ? secs : 0)
        * 1000;
    rc = libxl__snapshot_store_trylock(gc, lk->st, NULL);
    if (rc != ERROR_LOCK_FAIL || lk->once) {
        lk->callback(egc, lk, rc);
        return;
    }
    LOG(INFO, "domain %s: waiting for another snapshot operation",
        lk->domain_name);
    lk->abrt.ao = ao;
    lk->abrt.callback = lock_abort;
    rc = libxl__ao_abortable_register(&lk->abrt);
    if (rc) goto out;
    libxl__ev_time_register_rel(gc, &lk->retry, lock_retry, LOCK_RETRY(gc));
    return;
 out:
    lock_done(egc, lk, rc);
}

static void lock_retry(libxl__egc *egc, libxl__ev_time *ev, int rc)
{
    libxl__snapshot_lock *lk = CONTAINER_OF(ev, libxl__snapshot_lock,
                                            retry);
    STATE_AO_GC(lk->ao);
    const char *holder;

    rc = libxl__snapshot_store_trylock(gc, lk->st, &holder);
    if (rc == ERROR_LOCK_FAIL) {
        if (libxl__now_ms() < lk->deadline_ms) {
            libxl__ev_time_register_rel(gc, &lk->retry, lock_retry,
                                        LOCK_RETRY(gc));
            return;
        }
        libxl__snapshot_lock_busy(gc, lk->domain_name, holder);
    }
    lock_done(egc, lk, rc);
}

static void lock_abort(libxl__egc *egc, libxl__ao_abortable *ab, int rc)
{
    libxl__snapshot_lock *lk = CONTAINER_OF(ab, libxl__snapshot_lock,
                                            abrt);
    lock_done(egc, lk, rc);
}

/* ---------------------------------------------------------------- */
/* the common start of an operation */

static void op_locked(libxl__egc *egc, libxl__snapshot_lock *lk, int rc);
static void op_journal_done(libxl__egc *egc, libxl__snapshot_op *op,
                            int rc);
static void op_recover_jobs(libxl__egc *egc, libxl__snapshot_op *op);
static void op_adopt_poll(libxl__egc *egc, libxl__ev_time *ev, int rc);
static void op_adopt_abort(libxl__egc *egc, libxl__ao_abortable *ab,
                           int rc);
static void op_recovered(libxl__egc *egc, libxl__snapshot_op *op, int rc);

void libxl__snapshot_op_begin(libxl__egc *egc, libxl__snapshot_op *op)
{
    STATE_AO_GC(op->ao);
    int rc;

    op->st.lockfd = -1;
    /*
     * Only which lock to take: the domain's run state is asked for
     * once the lock is held (op_locked).  Asking QEMU now would wait
     * on its monitor, which the lock's holder may hold (in this
     * process, whose loop cannot run while this call waits).
     */
    rc = resolve(gc, op->domain, false, op->config_if_unknown, &op->d,
                 &op->cfg);
    if (rc) goto out;
    rc = libxl__snapshot_store_open(gc, CTX->state_dir, &op->d.uuid,
                                    &op->st);
    if (rc) goto out;
    libxl_uuid_copy(NULL, &op->locked_uuid, &op->d.uuid);
    op->lk.ao = ao;
    op->lk.st = &op->st;
    op->lk.domain_name = op->d.name;
    op->lk.once = op->lock_once;
    op->lk.callback = op_locked;
    libxl__snapshot_lock_acquire(egc, &op->lk);
    return;
 out:
    op->callback(egc, op, rc);
}

static void op_locked(libxl__egc *egc, libxl__snapshot_lock *lk, int rc)
{
    libxl__snapshot_op *op = CONTAINER_OF(lk, libxl__snapshot_op, lk);
    STATE_AO_GC(op->ao);

    if (rc) goto out;
    /* The domain may have started or stopped while we waited. */
    rc = resolve(gc, op->domain, true, op->config_if_unknown, &op->d,
                 &op->cfg);
    if (rc) goto out;
    if (libxl_uuid_compare(&op->d.uuid, &op->locked_uuid)) {
        /* not expected to happen: the name now means another domain */
        LOG(ERROR, "domain %s changed identity while waiting for its lock",
            op->domain);
        rc = ERROR_DOMAIN_NOTFOUND;
        goto out;
    }
    rc = op->read_only
        ? libxl__snapshot_store_load_check(gc, &op->st, &op->tree)
        : op->partial_tree
        ? libxl__snapshot_store_load_one(gc, &op->st, NULL, &op->tree)
        : libxl__snapshot_store_load(gc, &op->st, &op->tree);
    if (rc) goto out;
    if (op->read_only) goto done;     /* check reports what is pending */
    /* an operation a dead process left half-done: finish or undo it */
    libxl__journal_recover(egc, op, op_journal_done);
    return;
 done:
    op_recovered(egc, op, 0);
    return;
 out:
    op_recovered(egc, op, rc);
}

static void op_journal_done(libxl__egc *egc, libxl__snapshot_op *op,
                            int rc)
{
    if (rc) {
        op_recovered(egc, op, rc);
        return;
    }
    op_recover_jobs(egc, op);
}

/*
 * The block jobs whose process died (libxl__blockjob_recover); one
 * adopted at READY and told to finish is waited for here, polled every
 * OP_ADOPT_POLL_MS on the loop; ao_abort stops the wait (the job goes
 * on in QEMU, its record stays: the next command adopts it again).
 */
#define OP_ADOPT_POLL_MS 50

static void op_recover_jobs(libxl__egc *egc, libxl__snapshot_op *op)
{
    STATE_AO_GC(op->ao);
    int rc;

    rc = libxl__blockjob_recover(gc, op);
    if (rc == ERROR_NOT_READY) {
        if (!op->adopt_abrt.registered) {
            op->adopt_abrt.ao = ao;
            op->adopt_abrt.callback = op_adopt_abort;
            rc = libxl__ao_abortable_register(&op->adopt_abrt);
            if (rc) goto out;
        }
        libxl__ev_time_register_rel(gc, &op->adopt_poll, op_adopt_poll,
                                    OP_ADOPT_POLL_MS);
        return;
    }
    if (rc) goto out;
    if (op->recovered) {
        /* the active images may have moved */
        rc = resolve(gc, op->domain, true, op->config_if_unknown,
                     &op->d, &op->cfg);
        if (rc) goto out;
    }
 out:
    op_recovered(egc, op, rc);
}

static void op_adopt_poll(libxl__egc *egc, libxl__ev_time *ev, int rc)
{
    libxl__snapshot_op *op = CONTAINER_OF(ev, libxl__snapshot_op,
                                          adopt_poll);
    op_recover_jobs(egc, op);
}

static void op_adopt_abort(libxl__egc *egc, libxl__ao_abortable *ab,
                           int rc)
{
    libxl__snapshot_op *op = CONTAINER_OF(ab, libxl__snapshot_op,
                                          adopt_abrt);
    STATE_AO_GC(op->ao);

    libxl__ev_time_deregister(gc, &op->adopt_poll);
    op_recovered(egc, op, ERROR_ABORTED);
}

static void op_recovered(libxl__egc *egc, libxl__snapshot_op *op, int rc)
{
    STATE_AO_GC(op->ao);

    libxl__ev_time_deregister(gc, &op->adopt_poll);
    libxl__ao_abortable_deregister(&op->adopt_abrt);
    if (rc) goto out;
    if (!op->tree.dom.name) op->tree.dom.name = op->d.name;
    libxl_uuid_copy(NULL, &op->tree.dom.uuid, &op->d.uuid);
    if (op->d.config_file) op->tree.dom.config_file = op->d.config_file;
 out:
    if (rc) libxl__snapshot_store_unlock(&op->st);
    op->callback(egc, op, rc);
}

int libxl__snapshot_op_load_all(libxl__gc *gc, libxl__snapshot_op *op)
{
    libxl__snapshot_tree t;
    int rc;

    if (!op->tree.partial) return 0;
    rc = libxl__snapshot_store_load(gc, &op->st, &t);
    if (rc) return rc;
    op->tree = t;
    return 0;
}

int libxl__snapshot_op_settled(libxl__gc *gc, libxl__snapshot_op *op)
{
    int rc = libxl__journal_refuse_pending(gc, &op->st, op->d.name, "");
    return rc ? rc : libxl__blockjob_check_idle(gc, &op->st, &op->d);
}

void libxl__snapshot_op_end(libxl__gc *gc, libxl__snapshot_op *op)
{
    libxl__snapshot_store_unlock(&op->st);
}

/* ---------------------------------------------------------------- */
/* public: domains */

static void domain_to_public(libxl__domain *d, libxlsnap_domain *p)
{
    int i;

    libxlsnap_domain_init(p);
    p->name = d->name ? strdup(d->name) : NULL;
    libxl_uuid_copy(NULL, &p->uuid, &d->uuid);
    p->domid = d->running ? d->domid : INVALID_DOMID;
    p->state = !d->running ? LIBXLSNAP_DOMAIN_STATE_SHUTOFF
        : d->paused ? LIBXLSNAP_DOMAIN_STATE_PAUSED
        : LIBXLSNAP_DOMAIN_STATE_RUNNING;
    p->config_file = d->config_file ? strdup(d->config_file) : NULL;
    p->num_disks = d->num_disks;
    p->disks = calloc(d->num_disks ? d->num_disks : 1, sizeof(*p->disks));
    if (!p->disks) abort();
    for (i = 0; i < d->num_disks; i++) {
        libxl_device_disk *s = &d->disks[i], *t = &p->disks[i];
        libxl_device_disk_init(t);
        t->vdev = s->vdev ? strdup(s->vdev) : NULL;
        t->pdev_path = s->pdev_path ? strdup(s->pdev_path) : NULL;
        t->format = s->format;
        t->backend = s->backend;
        t->readwrite = s->readwrite;
        t->is_cdrom = s->is_cdrom;
    }
}

int libxlsnap_domain_lookup(libxlsnap_ctx *ctx,
                                 const char *domain,
                                 libxlsnap_domain *info_r)
{
    if (ARGS_MISSING(ctx, domain, info_r)) return ERROR_INVAL;
    GC_INIT(ctx);
    libxl__domain d;
    int rc;

    rc = libxl__domain_resolve(gc, domain, &d, NULL);
    if (rc) goto out;
    domain_to_public(&d, info_r);
 out:
    GC_FREE;
    return rc;
}

int libxlsnap_domain_list(libxlsnap_ctx *ctx,
                               libxlsnap_domain **list_r, int *nb_r)
{
    if (ARGS_MISSING(ctx, list_r, nb_r)) return ERROR_INVAL;
    GC_INIT(ctx);
    libxl__domain *l = NULL;
    int n = 0, i, rc;

    *list_r = NULL;
    *nb_r = 0;
    rc = ctx->driver->list(gc, &l, &n);
    if (rc) goto out;
    *list_r = calloc(n ? n : 1, sizeof(**list_r));
    if (!*list_r) abort();
    for (i = 0; i < n; i++) domain_to_public(&l[i], &(*list_r)[i]);
    *nb_r = n;
 out:
    GC_FREE;
    return rc;
}

/*
 * The synchronous libxlsnap_domain_start_overrides takes the
 * domain's lock the simple way: try, sleep, try, until the same
 * timeout as operations.
 */
static int lock_wait(libxl__gc *gc, libxl__snapshot_store *st,
                     const char *name)
{
    uint64_t deadline = libxl__now_ms() + (uint64_t)CTX->lock_timeout * 1000;
    const char *holder;
    int rc;

    for (;;) {
        rc = libxl__snapshot_store_trylock(gc, st, &holder);
        if (rc != ERROR_LOCK_FAIL || libxl__now_ms() >= deadline) break;
        usleep(LOCK_RETRY(gc) * 1000);
    }
    if (rc == ERROR_LOCK_FAIL) libxl__snapshot_lock_busy(gc, name, holder);
    return rc;
}

/*
 * No disk is handed to QEMU as a differencing VHD: its vpc driver would
 * read the parent's data as zeros, silently.  Checked by every start
 * (libxl__domain_start, and the disk overrides of Xen's xl create).
 */
static int disks_startable(libxl__gc *gc, const libxl__domain_config *cfg,
                           libxl__domain_record *rec)
{
    int i;

    for (i = 0; i < cfg->num_disks; i++) {
        const libxl_device_disk *dk = &cfg->disks[i];
        const libxl__active_disk *ad = dk->vdev
            ? libxl__domain_record_active(gc, rec, dk, true) : NULL;
        const char *img = ad && ad->path ? ad->path : dk->pdev_path;
        const char *why = img && !dk->is_cdrom
            ? libxl__image_unrunnable(gc, img) : NULL;
        if (why) {
            LOG(ERROR, "domain %s: disk %s %s", cfg->name, dk->vdev, why);
            return ERROR_INVAL;
        }
    }
    return 0;
}

int libxl__domain_start(libxl__gc *gc, const libxl__domain_config *cfg,
                        libxl__domain_record *rec, bool paused,
                        const char *restore,
                        const libxlsnap_progress_how *progress,
                        uint32_t *domid_r)
{
    int rc = disks_startable(gc, cfg, rec);

    if (rc) return rc;
    return CTX->driver->create(gc, cfg, rec, paused, restore, progress,
                               domid_r);
}

void libxl__domain_start_async(libxl__egc *egc, libxl__domain_async *da)
{
    STATE_AO_GC(da->ao);
    int rc = disks_startable(gc, da->cfg, da->rec);

    if (!rc && CTX->driver->create_async) {
        CTX->driver->create_async(egc, da);
        return;
    }
    if (!rc)
        rc = CTX->driver->create(gc, da->cfg, da->rec, da->paused,
                                 da->restore, da->progress, &da->domid);
    da->callback(egc, da, rc);
}

void libxl__domain_stop_async(libxl__egc *egc, libxl__domain_async *da)
{
    STATE_AO_GC(da->ao);
    int rc;

    if (CTX->driver->destroy_async) {
        CTX->driver->destroy_async(egc, da);
        return;
    }
    rc = CTX->driver->destroy(gc, da->d);
    da->callback(egc, da, rc);
}

/*
 * Starts a domain, under its lock, so that no snapshot command sees it
 * half-started; remembers which config it was started from, so that
 * commands on it still work once it is shut off.  An ao: the lock is
 * waited for on the event loop (libxl__snapshot_lock), the start is
 * the driver's.
 */
typedef struct {
    libxl__ao *ao;
    libxl__domain_config cfg;
    libxl__snapshot_store st;
    libxl__snapshot_lock lk;
    bool paused;
    uint32_t *domid_r;
    libxl__domain d;                  /* destroy: the running domain */
} domain_cmd_state;

static void domain_create_locked(libxl__egc *egc, libxl__snapshot_lock *lk,
                                 int rc);
static void domain_destroy_locked(libxl__egc *egc,
                                  libxl__snapshot_lock *lk, int rc);

static void domain_cmd_done(libxl__egc *egc, domain_cmd_state *dcs, int rc)
{
    libxl__snapshot_store_unlock(&dcs->st);
    libxl__ao_complete(egc, dcs->ao, rc);
}

int libxlsnap_domain_create(libxlsnap_ctx *ctx,
                                 const char *config_file, bool paused,
                                 uint32_t *domid_r,
                                 const libxl_asyncop_how *ao_how)
{
    if (ARGS_MISSING(ctx, config_file)) return ERROR_INVAL;
    AO_CREATE(ctx, ao_how);
    EGC_INIT(ctx);
    domain_cmd_state *dcs;
    int rc;

    GCNEW(dcs);
    dcs->ao = ao;
    dcs->st.lockfd = -1;
    dcs->paused = paused;
    dcs->domid_r = domid_r;
    rc = libxl__domain_config_parse(gc, config_file, &dcs->cfg);
    if (rc) goto out;
    config_records_uuid(gc, &dcs->cfg);
    rc = libxl__snapshot_store_open(gc, ctx->state_dir, &dcs->cfg.uuid,
                                    &dcs->st);
    if (rc) goto out;
    dcs->lk.ao = ao;
    dcs->lk.st = &dcs->st;
    dcs->lk.domain_name = dcs->cfg.name;
    dcs->lk.callback = domain_create_locked;
    libxl__snapshot_lock_acquire(egc, &dcs->lk);
    EGC_FREE;
    return AO_INPROGRESS;
 out:
    libxl__snapshot_store_unlock(&dcs->st);
    EGC_FREE;
    return AO_CREATE_FAIL(rc);
}

static void domain_create_locked(libxl__egc *egc, libxl__snapshot_lock *lk,
                                 int rc)
{
    domain_cmd_state *dcs = CONTAINER_OF(lk, domain_cmd_state, lk);
    STATE_AO_GC(dcs->ao);
    libxl__domain_config *cfg = &dcs->cfg;
    libxl__snapshot_tree t;
    libxl__domain d;

    if (rc) goto out;
    if (!CTX->driver->lookup_running(gc, cfg->name, false, &d)) {
        LOG(ERROR, "domain '%s' already exists (domid %u)", cfg->name,
            d.domid);
        rc = ERROR_DEVICE_EXISTS;
        goto out;
    }
    /*
     * An interrupted revert may have rolled some disks back and not
     * others, its records not yet saved: started so, the domain would
     * run on a mix.  Its recovery comes first.
     */
    rc = libxl__journal_refuse_pending(gc, &dcs->st, cfg->name,
                                       ", then start it");
    if (rc) goto out;
    rc = libxl__snapshot_store_load(gc, &dcs->st, &t);
    if (rc) goto out;
    if (!t.dom.name || !t.dom.config_file ||
        strcmp(t.dom.name, cfg->name) ||
        strcmp(t.dom.config_file, cfg->file)) {
        t.dom.name = cfg->name;
        libxl_uuid_copy(NULL, &t.dom.uuid, &cfg->uuid);
        t.dom.config_file = cfg->file;
        rc = libxl__snapshot_store_save(gc, &dcs->st, &t);
        if (rc) goto out;
    }
    rc = libxl__domain_start(gc, cfg, &t.dom, dcs->paused, NULL, NULL,
                             dcs->domid_r);
 out:
    domain_cmd_done(egc, dcs, rc);
}

int libxlsnap_domain_start_overrides(libxlsnap_ctx *ctx,
                                          const char *config_file,
                                          char **disk_r, char **uuid_r)
{
    if (ARGS_MISSING(ctx, config_file, disk_r, uuid_r)) return ERROR_INVAL;
    GC_INIT(ctx);
    libxl__domain_config cfg;
    libxl__snapshot_store st;
    libxl__snapshot_tree t;
    char *arg = NULL;
    int i, rc;

    *disk_r = *uuid_r = NULL;
    st.lockfd = -1;
    rc = libxl__domain_config_parse(gc, config_file, &cfg);
    if (rc) goto out;
    config_records_uuid(gc, &cfg);
    rc = libxl__snapshot_store_open(gc, ctx->state_dir, &cfg.uuid, &st);
    if (rc) goto out;
    rc = lock_wait(gc, &st, cfg.name);
    if (rc) goto out;
    rc = libxl__snapshot_store_load(gc, &st, &t);
    if (rc) goto out;
    if (!t.dom.name || !t.dom.config_file ||
        strcmp(t.dom.name, cfg.name) || strcmp(t.dom.config_file, cfg.file)) {
        t.dom.name = cfg.name;
        libxl_uuid_copy(NULL, &t.dom.uuid, &cfg.uuid);
        t.dom.config_file = cfg.file;
        rc = libxl__snapshot_store_save(gc, &st, &t);
        if (rc) goto out;
    }
    rc = disks_startable(gc, &cfg, &t.dom);
    if (rc) goto out;
    if (!cfg.have_uuid &&
        asprintf(uuid_r, "uuid=\"" LIBXL_UUID_FMT "\"",
                 LIBXL_UUID_BYTES(cfg.uuid)) < 0)
        abort();
    for (i = 0; i < cfg.num_disks; i++) {
        const libxl__active_disk *ad =
            libxl__domain_record_active(gc, &t.dom, &cfg.disks[i], false);
        if (ad && (!cfg.disks[i].pdev_path ||
                               strcmp(ad->path, cfg.disks[i].pdev_path)))
            break;
    }
    if (i == cfg.num_disks || !ctx->driver->disk_override) goto out;
    rc = ctx->driver->disk_override(gc, &cfg, &t.dom, &arg);
    if (rc) goto out;
    if (arg) *disk_r = strdup(arg);
 out:
    libxl__snapshot_store_unlock(&st);
    GC_FREE;
    return rc;
}

static int running_domain(libxl__gc *gc, const char *domain,
                          libxl__domain *d)
{
    int rc = CTX->driver->lookup_running(gc, domain, false, d);
    if (rc == ERROR_DOMAIN_NOTFOUND)
        LOG(ERROR, "domain '%s' is not running", domain);
    return rc;
}

int libxlsnap_domain_destroy(libxlsnap_ctx *ctx,
                                  const char *domain,
                                  const libxl_asyncop_how *ao_how)
{
    if (ARGS_MISSING(ctx, domain)) return ERROR_INVAL;
    AO_CREATE(ctx, ao_how);
    EGC_INIT(ctx);
    domain_cmd_state *dcs;
    int rc;

    GCNEW(dcs);
    dcs->ao = ao;
    dcs->st.lockfd = -1;
    rc = running_domain(gc, domain, &dcs->d);
    if (rc) goto out;
    /* not while a snapshot command works on it */
    rc = libxl__snapshot_store_open(gc, ctx->state_dir, &dcs->d.uuid,
                                    &dcs->st);
    if (rc) goto out;
    dcs->lk.ao = ao;
    dcs->lk.st = &dcs->st;
    dcs->lk.domain_name = dcs->d.name;
    dcs->lk.callback = domain_destroy_locked;
    libxl__snapshot_lock_acquire(egc, &dcs->lk);
    EGC_FREE;
    return AO_INPROGRESS;
 out:
    EGC_FREE;
    return AO_CREATE_FAIL(rc);
}

static void domain_destroy_locked(libxl__egc *egc,
                                  libxl__snapshot_lock *lk, int rc)
{
    domain_cmd_state *dcs = CONTAINER_OF(lk, domain_cmd_state, lk);
    STATE_AO_GC(dcs->ao);

    if (!rc) rc = CTX->driver->destroy(gc, &dcs->d);
    domain_cmd_done(egc, dcs, rc);
}

int libxlsnap_domain_pause(libxlsnap_ctx *ctx, const char *domain)
{
    if (ARGS_MISSING(ctx, domain)) return ERROR_INVAL;
    GC_INIT(ctx);
    libxl__domain d;
    int rc = running_domain(gc, domain, &d);
    if (!rc) rc = ctx->driver->pause(gc, &d);
    GC_FREE;
    return rc;
}

int libxlsnap_domain_unpause(libxlsnap_ctx *ctx,
                                  const char *domain)
{
    if (ARGS_MISSING(ctx, domain)) return ERROR_INVAL;
    GC_INIT(ctx);
    libxl__domain d;
    int rc = running_domain(gc, domain, &d);
    if (!rc) rc = ctx->driver->unpause(gc, &d);
    GC_FREE;
    return rc;
}

int libxlsnap_domain_monitor_command(libxlsnap_ctx *ctx,
                                          const char *domain,
                                          const char *command_line,
                                          char **output_r)
{
    if (ARGS_MISSING(ctx, domain, command_line)) return ERROR_INVAL;
    GC_INIT(ctx);
    libxl__domain d;
    yajl_val ret = NULL, args = NULL;
    int rc;

    if (output_r) *output_r = NULL;
    rc = running_domain(gc, domain, &d);
    if (rc) goto out;
    libxl__json_add_string(gc, &args, "command-line", command_line);
    rc = libxl__qmp_run_sync(gc, d.qmp_path, "human-monitor-command", args,
                             0, false, &ret);
    if (rc || !output_r) goto out;
    {
        const char *o = ret && YAJL_IS_STRING(ret) ? YAJL_GET_STRING(ret)
                                                   : NULL;
        *output_r = strdup(o ? o : "");
    }
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
