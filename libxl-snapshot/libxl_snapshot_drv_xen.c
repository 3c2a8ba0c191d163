/*
 * libxl_snapshot_drv_xen.c - the xen driver: domains run by libxenlight
 *
 * On a Xen dom0 the domains belong to libxenlight and xl.  This driver
 * lets the snapshot layer find them, stop and start them, and keep
 * Xen's own records right after a live snapshot.  It uses only the
 * public interfaces a toolstack add-on has: libxl.h (a real libxl_ctx,
 * in ctx->xl), xenstore.h, and the system xl binary.
 *
 *  - lookup_running / list: libxl_name_to_domid, libxl_domain_info,
 *    libxl_list_domain and libxl_device_disk_list.  libxl rebuilds
 *    disks from xenstore and leaves their format unknown, so the
 *    format is read back from the "<format>:<path>" params node libxl
 *    wrote for the qdisk backend.  The device model's QMP socket is
 *    the one libxl gives QEMU: <run dir>/qmp-libxl-<domid>.  Domain-0
 *    and device-model stub domains are refused: they are not guests.
 *
 *  - pause / unpause / destroy: the libxl calls, synchronous.
 *
 *  - create: libxl has no public parser for xl config files (xl's
 *    parse_config_data lives in xl itself), so a domain is started by
 *    running the system xl, with argv and never a shell:
 *        xl create [-p] -f <config> 'disk=[ "spec", ... ]'
 *    Extra key=value arguments are appended to the config and override
 *    it, so each disk starts on its active image.  The config is given
 *    with -f because xl takes any bare argument containing '=' for an
 *    extra setting.  Each spec is rebuilt from what xlu_disk_parse
 *    made of the config, with target= last, since it takes the rest of
 *    the spec.  In xl's string syntax a backslash starts an escape and
 *    a string ends at a double quote or a line break; backslashes are
 *    doubled, and values holding a double quote or a control character
 *    are refused (ERROR_INVAL), as they cannot be written there.
 *
 *    A memory checkpoint is started with `xl restore [-p] <config>
 *    <image>`, the config being the domain's with the same overrides
 *    appended (xl restore takes no key=value arguments).
 *
 *  - suspend / resume (memory checkpoints): the xl save-image header
 *    and libxl_domain_suspend (LIBXL_SUSPEND_LIVE for --live) into the
 *    memory image; the domain stays suspended while the caller takes
 *    the disks over QMP; then libxl_domain_resume with suspend_cancel,
 *    so the guest carries on where it was.  Both are asynchronous: a
 *    callback ao_how, with libxl's fds and timeouts on this library's
 *    loop (libxl_osevent_register_hooks, at init), so the caller's
 *    loop runs while libxl writes; progress is the image's size, every
 *    500 ms; ao_abort calls libxl_ao_abort for the suspend (the resume,
 *    the suspend's cleanup, always finishes).  Only the recovery of a
 *    checkpoint interrupted while the guest was suspended resumes it
 *    synchronously (libxl runs its own loop inside; milliseconds).
 *
 *  - set_active_disk: after a live external snapshot, QEMU writes to
 *    the new overlay, but libxl still names the old image.  It would
 *    start the old one again on save/restore, migration and reboot.
 *    Two records are updated:
 *      1. xenstore: "params" of the qdisk backend and of libxl's private
 *         copy under /libxl/<domid>/device/vbd/<devid>, both
 *         "<format>:<path>" as libxl_disk.c writes them, in one
 *         transaction (retried on EAGAIN).  The backend path comes from
 *         libxl's copy.  The guest can write the frontend's "backend"
 *         node, so we only compare it, never follow it.  QEMU's
 *         xen-block reads params when it creates the device and, as
 *         far as we know, does not watch it, so rewriting it should
 *         not reopen anything (to be confirmed under Xen).
 *      2. libxl's stored domain config (userdata "libxl-json"), the
 *         source for save, migrate and reboot: read, parse, change
 *         the disk's pdev_path and format, write.
 *    Both under libxl's domain userdata lock (below).
 *
 *  - libxl's locks.  libxl 4.17 has no public call to take them, so
 *    the files and protocol of libxl_internal.c are followed exactly:
 *      file:  <XEN_LIB_DIR>/userdata-l.<domid>.<uuid>.<name>
 *             (libxl__userdata_path; XEN_LIB_DIR /var/lib/xen unless
 *             built with -DXEN_LIB_DIR=...)
 *      take:  open O_RDWR|O_CREAT 0666, flock LOCK_EX (ours: LOCK_NB,
 *             retried), then held only if fstat and stat of the path
 *             agree (device, inode), else reopen
 *      drop:  unlink, then LOCK_UN and close
 *    "domain-userdata-lock" (libxl__lock_domain_userdata) is held
 *    around the xenstore params transaction and the libxl-json
 *    read-modify-write, in libxl's order (lock, xenstore, file): while
 *    held, libxl-json is read and written directly (userdata-d.<domid>.
 *    <uuid>.libxl-json, a new file renamed over it), since
 *    libxl_userdata_retrieve/_store take the lock themselves.  libxl
 *    holds it for milliseconds; we wait up to 10 s in 5 ms sleeps.
 *    Before taking it, libxl_userdata_retrieve must agree that the
 *    file is where we look, else we stop (a libxl with another
 *    XEN_LIB_DIR).  "qmp-socket-lock" (libxl__ev_qmplock_init, held by
 *    libxl__ev_qmp while connected) is taken by the QMP client for
 *    every connection to qmp-libxl-<domid> (qmp_trylock/qmp_unlock),
 *    waited for from a timer.  Order, as libxl's: the QMP lock, then
 *    the userdata lock, never the other way round.  Reads of params
 *    for a disk's format (lookup) take no lock: libxl's own
 *    libxl_device_disk_list does not either.
 *
 * Children: libxl is set to libxl_sigchld_owner_libxl_always_selective_reap,
 * so it reaps only its own children (hotplug scripts, etc.).  Our own
 * children (xl, qemu-img) are the exec engine's to waitpid() by pid.
 * Under the default mode libxl would reap every child of the process
 * while one of its own runs.
 *
 * Testing: the development machine's kernel is not a Xen dom0, so
 * there the file is only compiled.  Two things were checked without
 * Xen: init fails cleanly when libxl_ctx_alloc fails (libxl logs its
 * own reason, then we log one line), and disk specs survive the trip
 * through libxlutil's own parser (xlu_cfg_readdata + xlu_disk_parse
 * give back the same libxl_device_disk).  Everything that talks to
 * libxl, xenstore or xl is tested by a later issue, which boots Xen
 * 4.17 and a dom0 under QEMU TCG (see the xen-tcg-probe report).
 */
#include "libxl_snapshot_internal.h"

#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <libxl_utils.h>
#include <xenstore.h>

/* Domain ids from here on are not ordinary domains (xen/xen.h). */
#define XEN_DOMID_FIRST_RESERVED 0x7FF0U

/* xl create: 11-17 s under TCG, seconds on hardware; bootloaders vary. */
#define XEN_CREATE_TIMEOUT_MS (5 * 60 * 1000)
#define XEN_XS_TRANSACTION_RETRIES 100
#define XEN_LIBXL_JSON "libxl-json"
/* progress of a memory save: the image's size, this often */
#define XEN_SUSPEND_TICK_MS 500
/* libxl's lock files (libxl_internal.c) */
#define XEN_USERDATA_LOCK "domain-userdata-lock"
#define XEN_QMP_LOCK "qmp-socket-lock"
#define XEN_USERDATA_LOCK_WAIT_MS 10000
/* libxl's XEN_LIB_DIR, where it keeps userdata and its lock files */
#ifndef XEN_LIB_DIR
#define XEN_LIB_DIR "/var/lib/xen"
#endif

static const libxl_childproc_hooks xen_childproc_hooks = {
    .chldowner = libxl_sigchld_owner_libxl_always_selective_reap,
};

static const char *xen_strerror(int rc)
{
    const char *s = libxl_error_to_string(rc);
    return s ? s : "unknown error";
}

static bool xen_domid_valid(const libxl__domain *d)
{
    return d->domid != (uint32_t)INVALID_DOMID && d->domid != 0 &&
           d->domid < XEN_DOMID_FIRST_RESERVED;
}

/* ---------------------------------------------------------------- */
/* qdisk "params": "<format>:<path>" */

/* As libxl writes it; NULL if qdisk cannot open the format. */
static const char *xen_qdisk_format(libxl_disk_format f)
{
    switch (f) {
    case LIBXL_DISK_FORMAT_QCOW:  return "qcow";
    case LIBXL_DISK_FORMAT_QCOW2: return "qcow2";
    case LIBXL_DISK_FORMAT_VHD:   return "vhd";
    case LIBXL_DISK_FORMAT_RAW:   return "aio";
    case LIBXL_DISK_FORMAT_QED:   return "qed";
    default:                      return NULL;
    }
}

static libxl_disk_format xen_qdisk_format_parse(const char *params)
{
    static const struct {
        const char *s;
        libxl_disk_format f;
    } tbl[] = {
        { "qcow", LIBXL_DISK_FORMAT_QCOW },
        { "qcow2", LIBXL_DISK_FORMAT_QCOW2 },
        { "vhd", LIBXL_DISK_FORMAT_VHD },
        { "aio", LIBXL_DISK_FORMAT_RAW },
        { "raw", LIBXL_DISK_FORMAT_RAW },
        { "qed", LIBXL_DISK_FORMAT_QED },
    };
    const char *colon = params ? strchr(params, ':') : NULL;
    size_t n, i;

    if (!colon) return LIBXL_DISK_FORMAT_UNKNOWN;
    n = colon - params;
    for (i = 0; i < sizeof(tbl) / sizeof(tbl[0]); i++)
        if (strlen(tbl[i].s) == n && !strncmp(params, tbl[i].s, n))
            return tbl[i].f;
    return LIBXL_DISK_FORMAT_UNKNOWN;
}

/* ---------------------------------------------------------------- */
/* xenstore */

static struct xs_handle *xen_xs_open(libxl__gc *gc)
{
    struct xs_handle *xsh = xs_open(0);
    if (!xsh) LOGE(ERROR, "cannot connect to xenstore");
    return xsh;
}

/* xs_read into the gc; NULL if absent. */
static char *xen_xs_read(libxl__gc *gc, struct xs_handle *xsh,
                         xs_transaction_t t, const char *path)
{
    unsigned int len;
    char *v = xs_read(xsh, t, path, &len);
    libxl__gc_adopt(gc, v);
    return v;
}

/* The device number libxl gives vdev (51712 for xvda); ERROR_FAIL. */
static int xen_disk_devid(libxl__gc *gc, uint32_t domid, const char *vdev,
                          int *devid_r)
{
    libxl_device_disk key;
    libxl_diskinfo info;
    int rc;

    libxl_device_disk_init(&key);
    key.vdev = (char *)vdev;        /* only read; key is not disposed */
    libxl_diskinfo_init(&info);
    rc = libxl_device_disk_getinfo(CTX->xl, domid, &key, &info);
    if (!rc) *devid_r = info.devid;
    libxl_diskinfo_dispose(&info);
    return rc ? ERROR_FAIL : 0;
}

static char *xen_libxl_vbd_path(libxl__gc *gc, uint32_t domid, int devid)
{
    return GCSPRINTF("/libxl/%u/device/vbd/%d", domid, devid);
}

/* Format of a running qdisk disk, from libxl's copy of params. */
static libxl_disk_format xen_disk_format(libxl__gc *gc,
                                         struct xs_handle *xsh,
                                         uint32_t domid,
                                         const libxl_device_disk *disk)
{
    int devid;
    char *params;

    switch (disk->backend) {
    case LIBXL_DISK_BACKEND_PHY:
    case LIBXL_DISK_BACKEND_STANDALONE:
        return LIBXL_DISK_FORMAT_RAW;   /* the only format they serve */
    case LIBXL_DISK_BACKEND_QDISK:
        break;
    default:
        return LIBXL_DISK_FORMAT_UNKNOWN;
    }
    if (!xsh || xen_disk_devid(gc, domid, disk->vdev, &devid))
        return LIBXL_DISK_FORMAT_UNKNOWN;
    params = xen_xs_read(gc, xsh, XBT_NULL,
                         GCSPRINTF("%s/params",
                                   xen_libxl_vbd_path(gc, domid, devid)));
    return xen_qdisk_format_parse(params);
}

/* ---------------------------------------------------------------- */
/* libxl's events on this library's loop (libxl_osevent_register_hooks) */

/*
 * Each fd and timeout libxl registers becomes one of ours; when it
 * fires, libxl is told (libxl_osevent_occurred_*), and runs its own
 * callbacks from there, our ao_how callbacks among them.  libxl's
 * synchronous calls still run their own poll inside (the fds are
 * libxl's either way).
 */
typedef struct {
    libxlsnap_ctx *ctx;
    void *for_libxl;
    libxl__ev_fd ev;
} xen_osevent_fd;

typedef struct {
    libxlsnap_ctx *ctx;
    void *for_libxl;
    libxl__ev_time ev;
} xen_osevent_time;

static void xen_osevent_fd_cb(libxl__egc *egc, libxl__ev_fd *ev, int fd,
                              short events, short revents)
{
    xen_osevent_fd *r = CONTAINER_OF(ev, xen_osevent_fd, ev);
    /* libxl may deregister r (free it) from inside */
    libxl_osevent_occurred_fd(r->ctx->xl, r->for_libxl, fd, events,
                              revents);
}

static int xen_fd_register(void *user, int fd, void **for_app_r,
                           short events, void *for_libxl)
{
    libxlsnap_ctx *ctx = user;
    GC_INIT(ctx);
    xen_osevent_fd *r = calloc(1, sizeof(*r));
    int rc;

    if (!r) {
        GC_FREE;
        return ERROR_NOMEM;
    }
    r->ctx = ctx;
    r->for_libxl = for_libxl;
    libxl__ev_fd_init(&r->ev);
    rc = libxl__ev_fd_register(gc, &r->ev, xen_osevent_fd_cb, fd, events);
    if (rc) {
        free(r);
        r = NULL;
    }
    *for_app_r = r;
    GC_FREE;
    return rc;
}

static int xen_fd_modify(void *user, int fd, void **for_app_update,
                         short events)
{
    xen_osevent_fd *r = *for_app_update;
    GC_INIT(r->ctx);
    int rc = libxl__ev_fd_modify(gc, &r->ev, events);
    GC_FREE;
    return rc;
}

static void xen_fd_deregister(void *user, int fd, void *for_app)
{
    xen_osevent_fd *r = for_app;
    GC_INIT(r->ctx);
    libxl__ev_fd_deregister(gc, &r->ev);
    GC_FREE;
    free(r);
}

static void xen_osevent_time_cb(libxl__egc *egc, libxl__ev_time *ev,
                                int rc)
{
    xen_osevent_time *r = CONTAINER_OF(ev, xen_osevent_time, ev);
    libxl_ctx *xl = r->ctx->xl;
    void *for_libxl = r->for_libxl;

    /* a timeout fires once; libxl never deregisters it after */
    free(r);
    libxl_osevent_occurred_timeout(xl, for_libxl);
}

static int xen_timeout_ms(struct timeval abs)
{
    struct timeval now;
    int64_t ms;

    gettimeofday(&now, NULL);
    ms = (int64_t)(abs.tv_sec - now.tv_sec) * 1000 +
         (abs.tv_usec - now.tv_usec) / 1000;
    if (ms < 0) ms = 0;
    if (ms > INT32_MAX) ms = INT32_MAX;
    return ms;
}

static int xen_timeout_register(void *user, void **for_app_r,
                                struct timeval abs, void *for_libxl)
{
    libxlsnap_ctx *ctx = user;
    GC_INIT(ctx);
    xen_osevent_time *r = calloc(1, sizeof(*r));
    int rc;

    if (!r) {
        GC_FREE;
        return ERROR_NOMEM;
    }
    r->ctx = ctx;
    r->for_libxl = for_libxl;
    libxl__ev_time_init(&r->ev);
    rc = libxl__ev_time_register_rel(gc, &r->ev, xen_osevent_time_cb,
                                     xen_timeout_ms(abs));
    if (rc) {
        free(r);
        r = NULL;
    }
    *for_app_r = r;
    GC_FREE;
    return rc;
}

/* only ever asked with abs {0,0}: at once */
static int xen_timeout_modify(void *user, void **for_app_update,
                              struct timeval abs)
{
    xen_osevent_time *r = *for_app_update;
    GC_INIT(r->ctx);
    int rc;

    libxl__ev_time_deregister(gc, &r->ev);
    rc = libxl__ev_time_register_rel(gc, &r->ev, xen_osevent_time_cb,
                                     abs.tv_sec || abs.tv_usec
                                     ? xen_timeout_ms(abs) : 0);
    GC_FREE;
    return rc;
}

static void xen_timeout_deregister(void *user, void *for_app)
{
    /* libxl 4.17 never calls it (libxl_event.h) */
    xen_osevent_time *r = for_app;
    GC_INIT(r->ctx);
    libxl__ev_time_deregister(gc, &r->ev);
    GC_FREE;
    free(r);
}

static const libxl_osevent_hooks xen_osevent_hooks = {
    .fd_register = xen_fd_register,
    .fd_modify = xen_fd_modify,
    .fd_deregister = xen_fd_deregister,
    .timeout_register = xen_timeout_register,
    .timeout_modify = xen_timeout_modify,
    .timeout_deregister = xen_timeout_deregister,
};

/* ---------------------------------------------------------------- */
/* init, fini */

static int xen_init(libxlsnap_ctx *ctx)
{
    int rc;

    if (ctx->xl) return 0;            /* the caller's (settings.xl_ctx) */
    rc = libxl_ctx_alloc(&ctx->xl, LIBXL_VERSION, 0, ctx->lg);
    if (rc || !ctx->xl) {
        ctx->xl = NULL;
        LIBXL__LOG(ctx, ERROR, -1, "cannot open libxenlight (is this a "
                   "Xen dom0 with xenstored running?)");
        return ERROR_FAIL;
    }
    /* first: libxl refuses hooks once it has an fd (childproc_setmode
     * registers its SIGCHLD self-pipe) */
    libxl_osevent_register_hooks(ctx->xl, &xen_osevent_hooks, ctx);
    libxl_childproc_setmode(ctx->xl, &xen_childproc_hooks, NULL);
    return 0;
}

static void xen_fini(libxlsnap_ctx *ctx)
{
    if (!ctx->xl) return;
    libxl_ctx_free(ctx->xl);
    ctx->xl = NULL;
}

/* ---------------------------------------------------------------- */
/* lookup, list */

static bool xen_all_digits(const char *s)
{
    if (!*s) return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s)) return false;
    return true;
}

/*
 * domain as a domid, then a uuid, then a name (a name may look like
 * either).  0, ERROR_DOMAIN_NOTFOUND (not logged), or an error (logged).
 */
static int xen_find_domid(libxl__gc *gc, const char *domain,
                          uint32_t *domid_r)
{
    libxl_ctx *xl = CTX->xl;
    libxl_uuid uuid;
    libxl_dominfo *info;
    int nb, i, rc;

    if (!domain || !*domain) return ERROR_DOMAIN_NOTFOUND;

    if (xen_all_digits(domain) && strlen(domain) < 6) {
        unsigned long v = strtoul(domain, NULL, 10);
        if (v < XEN_DOMID_FIRST_RESERVED) {
            rc = libxl_domain_info(xl, NULL, v);
            if (!rc) {
                *domid_r = v;
                return 0;
            }
            if (rc != ERROR_DOMAIN_NOTFOUND) {
                LOG(ERROR, "cannot query Xen domain %lu: %s", v,
                    xen_strerror(rc));
                return rc;
            }
        }
    }

    if (!libxl_uuid_from_string(&uuid, domain)) {
        info = libxl_list_domain(xl, &nb);
        if (!info) {
            LOG(ERROR, "cannot list Xen domains");
            return ERROR_FAIL;
        }
        rc = ERROR_DOMAIN_NOTFOUND;
        for (i = 0; i < nb; i++) {
            if (!libxl_uuid_compare(&info[i].uuid, &uuid)) {
                *domid_r = info[i].domid;
                rc = 0;
                break;
            }
        }
        libxl_dominfo_list_free(info, nb);
        if (!rc) return 0;
    }

    /* ERROR_INVAL when no domain has that name */
    if (!libxl_name_to_domid(xl, domain, domid_r)) return 0;
    return ERROR_DOMAIN_NOTFOUND;
}

/* name, uuid, domid, state, QMP socket; no disks. */
static int xen_fill_domain(libxl__gc *gc, const libxl_dominfo *info,
                           libxl__domain *d)
{
    char *name = libxl_domid_to_name(CTX->xl, info->domid);

    if (!name) return ERROR_DOMAIN_NOTFOUND;  /* it has just gone */
    libxl__gc_adopt(gc, name);
    memset(d, 0, sizeof(*d));
    d->name = name;
    d->uuid = info->uuid;
    d->domid = info->domid;
    /*
     * A device model exists if some disk is served by qdisk (or the
     * guest is HVM); but say running regardless: connecting to the QMP
     * socket is what tells.
     */
    d->running = true;
    d->paused = info->paused;
    d->qmp_path = GCSPRINTF("%s/qmp-libxl-%u", CTX->run_dir, info->domid);
    d->config_file = NULL;
    return 0;
}

/* How many disks libxl has entries for in xenstore (0 on failure). */
static unsigned int xen_vbd_entries(libxl__gc *gc, uint32_t domid)
{
    struct xs_handle *xsh = xs_open(0);
    unsigned int n = 0;
    char **dir;

    if (!xsh) return 0;
    dir = xs_directory(xsh, XBT_NULL,
                       GCSPRINTF("/libxl/%u/device/vbd", domid), &n);
    free(dir);
    xs_close(xsh);
    return dir ? n : 0;
}

/*
 * Disks other than cdroms, copied into the gc.  libxl_device_disk_list
 * gives NULL both for no disk and when one entry does not read (a
 * disk half detached: its backend gone, libxl's entry not yet); the
 * entries under /libxl tell them apart, and the list is asked again
 * while a disk is coming or going (XEN_DISK_LIST_TRIES, 20 ms apart),
 * then the lookup fails, rather than taking the domain for diskless.
 */
#define XEN_DISK_LIST_TRIES 25

static int xen_get_disks(libxl__gc *gc, libxl__domain *d)
{
    libxl_device_disk *list;
    struct xs_handle *xsh = NULL;
    int num = 0, i, n = 0, tries = 0;

    d->disks = NULL;
    d->num_disks = 0;
    while (!(list = libxl_device_disk_list(CTX->xl, d->domid, &num)) &&
           xen_vbd_entries(gc, d->domid)) {
        if (++tries == XEN_DISK_LIST_TRIES) {
            LOG(ERROR, "domain %s: libxl cannot list its disks (one is "
                "being attached or detached?); nothing was done", d->name);
            return ERROR_FAIL;
        }
        usleep(20000);
    }
    if (!list) return 0;
    if (num <= 0) {
        libxl_device_disk_list_free(list, num);
        return 0;
    }

    GCNEW_ARRAY(d->disks, num);
    for (i = 0; i < num; i++) {
        const libxl_device_disk *src = &list[i];
        libxl_device_disk *dst;

        if (src->is_cdrom || !src->vdev) continue;
        dst = &d->disks[n++];
        libxl_device_disk_init(dst);    /* gc strings: never disposed */
        dst->backend_domid = src->backend_domid;
        dst->vdev = GCSTRDUP(src->vdev);
        dst->pdev_path = GCSTRDUP(src->pdev_path);
        dst->backend = src->backend;
        dst->format = src->format;
        dst->readwrite = src->readwrite;
        dst->is_cdrom = 0;
        if (dst->format == LIBXL_DISK_FORMAT_UNKNOWN) {
            if (!xsh && dst->backend == LIBXL_DISK_BACKEND_QDISK) {
                xsh = xs_open(0);
                if (!xsh)
                    LOGE(WARN, "cannot connect to xenstore: formats of "
                         "the disks of domain %s unknown", d->name);
            }
            dst->format = xen_disk_format(gc, xsh, d->domid, dst);
        }
    }
    d->num_disks = n;
    if (xsh) xs_close(xsh);
    libxl_device_disk_list_free(list, num);
    return 0;
}

static int xen_lookup_running(libxl__gc *gc, const char *domain,
                              bool run_state, libxl__domain *d_r)
{
    libxl_dominfo info;
    uint32_t domid, target;
    int rc;

    libxl_dominfo_init(&info);

    rc = xen_find_domid(gc, domain, &domid);
    if (rc) goto out;

    rc = libxl_domain_info(CTX->xl, &info, domid);
    if (rc == ERROR_DOMAIN_NOTFOUND) goto out;
    if (rc) {
        LOG(ERROR, "cannot query Xen domain %u: %s", domid,
            xen_strerror(rc));
        goto out;
    }
    if (domid == 0) {
        LOG(ERROR, "%s is Domain-0, which cannot be snapshotted", domain);
        rc = ERROR_INVAL;
        goto out;
    }
    if (libxl_is_stubdom(CTX->xl, domid, &target) == 1) {
        LOG(ERROR, "%s is the device-model stub domain of domain %u; "
            "name the guest instead", domain, target);
        rc = ERROR_INVAL;
        goto out;
    }

    rc = xen_fill_domain(gc, &info, d_r);
    if (rc) goto out;
    rc = xen_get_disks(gc, d_r);

 out:
    libxl_dominfo_dispose(&info);
    return rc;
}

static int xen_list(libxl__gc *gc, libxl__domain **list_r, int *nb_r)
{
    libxl_dominfo *info;
    libxl__domain *list;
    uint32_t target;
    int nb = 0, i, n = 0;

    info = libxl_list_domain(CTX->xl, &nb);
    if (!info) {
        LOG(ERROR, "cannot list Xen domains");
        return ERROR_FAIL;
    }
    GCNEW_ARRAY(list, nb);
    for (i = 0; i < nb; i++) {
        if (info[i].domid == 0) continue;
        if (libxl_is_stubdom(CTX->xl, info[i].domid, &target) == 1)
            continue;
        if (xen_fill_domain(gc, &info[i], &list[n])) continue;
        n++;
    }
    libxl_dominfo_list_free(info, nb);
    *list_r = list;
    *nb_r = n;
    return 0;
}

/* ---------------------------------------------------------------- */
/* pause, unpause, destroy */

static int xen_check_domid(libxl__gc *gc, libxl__domain *d, const char *op)
{
    if (xen_domid_valid(d)) return 0;
    LOG(ERROR, "cannot %s domain %s: it is not running", op,
        d->name ? d->name : "?");
    return ERROR_INVAL;
}

static int xen_pause(libxl__gc *gc, libxl__domain *d)
{
    int rc = xen_check_domid(gc, d, "pause");
    if (rc) return rc;
    rc = libxl_domain_pause(CTX->xl, d->domid, NULL);
    if (rc) {
        LOG(ERROR, "cannot pause domain %s (%u): %s", d->name, d->domid,
            xen_strerror(rc));
        return rc;
    }
    d->paused = true;
    return 0;
}

/* the guest's RAM as libxl_domain_info says (current_memkb) */
static int xen_memory_bytes(libxl__gc *gc, const libxl__domain *d,
                            uint64_t *bytes_r)
{
    libxl_dominfo di;
    int rc;

    libxl_dominfo_init(&di);
    rc = libxl_domain_info(CTX->xl, &di, d->domid);
    if (!rc) *bytes_r = (uint64_t)di.current_memkb * 1024;
    libxl_dominfo_dispose(&di);
    return rc;
}

static int xen_unpause(libxl__gc *gc, libxl__domain *d)
{
    int rc = xen_check_domid(gc, d, "unpause");
    if (rc) return rc;
    rc = libxl_domain_unpause(CTX->xl, d->domid, NULL);
    if (rc) {
        LOG(ERROR, "cannot unpause domain %s (%u): %s", d->name, d->domid,
            xen_strerror(rc));
        return rc;
    }
    d->paused = false;
    return 0;
}

static int xen_destroy(libxl__gc *gc, libxl__domain *d)
{
    int rc = xen_check_domid(gc, d, "destroy");
    if (rc) return rc;
    rc = libxl_domain_destroy(CTX->xl, d->domid, NULL);
    if (rc) {
        LOG(ERROR, "cannot destroy domain %s (%u): %s", d->name, d->domid,
            xen_strerror(rc));
        return rc;
    }
    d->domid = INVALID_DOMID;
    d->running = false;
    d->paused = false;
    return 0;
}

/* ---------------------------------------------------------------- */
/* create: xl create with the disks on their active images */

/*
 * One item of a disk spec.  Only target= may hold a comma (it comes
 * last and takes the rest of the spec).
 */
static int xen_spec_add(libxl__gc *gc, char **spec, const char *vdev,
                        const char *what, const char *item)
{
    const char *eq = strchr(item, '=');

    if (strchr(eq ? eq + 1 : item, ',')) {
        LOG(ERROR, "disk %s: %s '%s' contains a comma, which an xl disk "
            "spec cannot hold", vdev, what, eq ? eq + 1 : item);
        return ERROR_INVAL;
    }
    *spec = *spec ? GCSPRINTF("%s,%s", *spec, item) : GCSTRDUP(item);
    return 0;
}

/*
 * What in s an xl config string cannot hold (a string ends at a double
 * quote or a line break), or NULL.
 */
static const char *xen_xl_unwritable(const char *s)
{
    for (; *s; s++) {
        unsigned char c = *s;
        if (c == '"') return "a double quote";
        if (c == '\n') return "a newline";
        if (c < 0x20 || c == 0x7f) return "a control character";
    }
    return NULL;
}

/* The spec as an xl config string literal: "..." with backslashes doubled. */
static int xen_spec_quote(libxl__gc *gc, const char *vdev, const char *spec,
                          char **quoted_r)
{
    const char *bad = xen_xl_unwritable(spec);
    char *q, *p;

    if (bad) {
        LOG(ERROR, "disk %s: a setting contains %s, which cannot be "
            "written in an xl config", vdev, bad);
        return ERROR_INVAL;
    }
    q = p = libxl__gc_zalloc(gc, 2 * strlen(spec) + 3);
    *p++ = '"';
    for (; *spec; spec++) {
        if (*spec == '\\') *p++ = '\\';
        *p++ = *spec;
    }
    *p++ = '"';
    *p = 0;
    *quoted_r = q;
    return 0;
}

/*
 * The xl disk spec for disk on image path/format: every setting
 * xlu_disk_parse can give, then target= last.  An empty cdrom has
 * neither format nor target.
 */
static int xen_disk_spec(libxl__gc *gc, const libxl_device_disk *disk,
                         const char *path, libxl_disk_format format,
                         char **spec_r)
{
    const char *vdev = disk->vdev;
    libxl_disk_backend backend = disk->backend;
    bool empty = disk->is_cdrom &&
        (format == LIBXL_DISK_FORMAT_EMPTY || !path || !*path);
    char *spec = NULL;
    int rc;

#define ADD(what, ...) do {                                             \
        rc = xen_spec_add(gc, &spec, vdev, (what),                      \
                          libxl__gc_sprintf(gc, __VA_ARGS__));          \
        if (rc) return rc;                                              \
    } while (0)

    if (!empty && (!path || !*path)) {
        LOG(ERROR, "disk %s has no image", vdev);
        return ERROR_INVAL;
    }
    /*
     * phy serves raw images only: an image that became qcow2 (an
     * external snapshot taken while shut off) needs qdisk.
     */
    if (!empty && backend == LIBXL_DISK_BACKEND_PHY &&
        format != LIBXL_DISK_FORMAT_RAW) {
        LOG(INFO, "disk %s: active image '%s' is %s, using backendtype="
            "qdisk instead of phy", vdev, path,
            libxl_disk_format_to_string(format));
        backend = LIBXL_DISK_BACKEND_QDISK;
    }

    if (!empty && format != LIBXL_DISK_FORMAT_UNKNOWN)
        ADD("format", "format=%s", libxl_disk_format_to_string(format));
    ADD("vdev", "vdev=%s", vdev);
    ADD("access", "access=%s", disk->readwrite ? "rw" : "ro");
    if (disk->is_cdrom)
        ADD("devtype", "devtype=cdrom");
    if (backend != LIBXL_DISK_BACKEND_UNKNOWN)
        ADD("backendtype", "backendtype=%s",
            libxl_disk_backend_to_string(backend));
    if (disk->backend_domname)
        ADD("backend", "backend=%s", disk->backend_domname);
    if (disk->script)
        ADD("script", "script=%s", disk->script);
    if (disk->direct_io_safe)
        ADD("flag", "direct-io-safe");
    if (!libxl_defbool_is_default(disk->discard_enable))
        ADD("flag", "%s", libxl_defbool_val(disk->discard_enable)
                          ? "discard" : "no-discard");
    /* Xen 4.17's parser sets neither trusted nor transport (nor knows
     * their keywords); they are written only if a newer one did. */
    if (!libxl_defbool_is_default(disk->trusted))
        ADD("flag", "%s", libxl_defbool_val(disk->trusted)
                          ? "trusted" : "untrusted");
    if (disk->specification != LIBXL_DISK_SPECIFICATION_UNKNOWN)
        ADD("specification", "specification=%s",
            libxl_disk_specification_to_string(disk->specification));
    if (disk->transport != LIBXL_DISK_TRANSPORT_UNKNOWN)
        ADD("transport", "transport=%s",
            libxl_disk_transport_to_string(disk->transport));
    if (!libxl_defbool_is_default(disk->colo_enable) &&
        libxl_defbool_val(disk->colo_enable)) {
        ADD("flag", "colo");
        if (disk->colo_host)
            ADD("colo-host", "colo-host=%s", disk->colo_host);
        if (disk->colo_port)
            ADD("colo-port", "colo-port=%d", disk->colo_port);
        if (disk->colo_export)
            ADD("colo-export", "colo-export=%s", disk->colo_export);
        if (disk->active_disk)
            ADD("active-disk", "active-disk=%s", disk->active_disk);
        if (disk->hidden_disk)
            ADD("hidden-disk", "hidden-disk=%s", disk->hidden_disk);
    }
#undef ADD
    if (!empty)
        spec = GCSPRINTF("%s,target=%s", spec, path);
    else if (path)
        spec = GCSPRINTF("%s,target=", spec);   /* "" rather than NULL */
    *spec_r = spec;
    return 0;
}

/* 'disk=[ "spec", ... ]' for xl create; *arg_r NULL if no disks. */
static int xen_disk_override(libxl__gc *gc, const libxl__domain_config *cfg,
                             const libxl__domain_record *rec, char **arg_r)
{
    char *arg = NULL;
    int i, rc;

    *arg_r = NULL;
    for (i = 0; i < cfg->num_disks; i++) {
        const libxl_device_disk *disk = &cfg->disks[i];
        const libxl__active_disk *ad = NULL;
        const char *path = disk->pdev_path;
        libxl_disk_format format = disk->format;
        const char *bad;
        char *spec, *quoted;

        if (!disk->vdev) {
            LOG(ERROR, "%s: a disk has no vdev", cfg->file);
            return ERROR_INVAL;
        }
        ad = libxl__domain_record_active(gc, rec, disk, false);
        if (ad) {
            path = ad->path;
            format = ad->format;
        }
        bad = path ? xen_xl_unwritable(path) : NULL;
        if (bad) {
            /* a path with a control character is not printed */
            if (!strcmp(bad, "a double quote"))
                LOG(ERROR, "the image path '%s' of disk %s contains %s, "
                    "which cannot be written in an xl config", path,
                    disk->vdev, bad);
            else
                LOG(ERROR, "the image path of disk %s contains %s, which "
                    "cannot be written in an xl config", disk->vdev, bad);
            return ERROR_INVAL;
        }
        rc = xen_disk_spec(gc, disk, path, format, &spec);
        if (rc) return rc;
        rc = xen_spec_quote(gc, disk->vdev, spec, &quoted);
        if (rc) return rc;
        arg = arg ? GCSPRINTF("%s, %s", arg, quoted)
                  : GCSPRINTF("disk=[ %s", quoted);
    }
    if (arg) *arg_r = GCSPRINTF("%s ]", arg);
    return 0;
}

/*
 * The config `xl restore` starts a checkpoint with: the domain's config
 * with the overrides xl create gets as arguments (active images, uuid)
 * appended, as xl restore takes none.  The config inside the save image
 * names the images of the moment it was saved, which are now frozen
 * backing files: restoring with it would write into them.
 */
static int xen_restore_config(libxl__gc *gc, const libxl__domain_config *cfg,
                              const char *disks, const char *uuid,
                              char **file_r)
{
    char *text, *file;
    int rc;

    rc = libxl__read_file(gc, cfg->file, &text, NULL);
    if (rc) {
        LOG(ERROR, "cannot read the config '%s' of domain %s", cfg->file,
            cfg->name);
        return rc;
    }
    text = GCSPRINTF("%s\n# libxl-snapshot: restore on the active images\n"
                     "%s\n%s\n", text, disks ? disks : "", uuid ? uuid : "");
    file = GCSPRINTF("%s/xl-snapshot-restore-" LIBXL_UUID_FMT ".cfg",
                     CTX->run_dir, LIBXL_UUID_BYTES(cfg->uuid));
    rc = libxl__mkdir_p(gc, CTX->run_dir, 0755);
    if (!rc) rc = libxl__write_file_atomic(gc, file, text, strlen(text));
    if (rc) return rc;
    *file_r = file;
    return 0;
}

/*
 * The xl command line that starts cfg on its active images (*args_r),
 * and the restore config it names (*rcfg_r, removed by the caller
 * after the run) or NULL.
 */
static int xen_create_args(libxl__gc *gc, const libxl__domain_config *cfg,
                           const libxl__domain_record *rec, bool paused,
                           const char *restore, const char *const **args_r,
                           char **rcfg_r)
{
    libxl__flexarray *args;
    const char *verb = restore ? "restore" : "create";
    char *disks, *uuid = NULL, *rcfg = NULL;
    int rc;

    *rcfg_r = NULL;
    if (!cfg->file || !cfg->name) {
        LOG(ERROR, "%s: no domain name", cfg->file ? cfg->file : "config");
        return ERROR_INVAL;
    }
    rc = xen_disk_override(gc, cfg, rec, &disks);
    if (rc) return rc;
    /* the uuid the records are kept under, if the config has none */
    if (!cfg->have_uuid)
        uuid = GCSPRINTF("uuid=\"" LIBXL_UUID_FMT "\"",
                         LIBXL_UUID_BYTES(cfg->uuid));

    args = libxl__flexarray_new(gc);
    libxl__flexarray_append_pair(args, CTX->system_xl, verb);
    if (paused) libxl__flexarray_append(args, "-p");
    if (restore) {
        rc = xen_restore_config(gc, cfg, disks, uuid, &rcfg);
        if (rc) return rc;
        libxl__flexarray_append_pair(args, rcfg, restore);
    } else {
        libxl__flexarray_append_pair(args, "-f", cfg->file);
        if (disks) libxl__flexarray_append(args, disks);
        if (uuid) libxl__flexarray_append(args, uuid);
    }
    LOG(DEBUG, "%s %s%s %s %s", CTX->system_xl, verb,
        paused ? " -p" : "", rcfg ? rcfg : cfg->file,
        restore ? restore : disks ? disks : "");
    *args_r = args->data;
    *rcfg_r = rcfg;
    return 0;
}

/* After xl's run (rc): the new domain's id. */
static int xen_create_done(libxl__gc *gc, const libxl__domain_config *cfg,
                           const char *verb, int rc, uint32_t *domid_r)
{
    if (rc) {
        LOG(ERROR, "cannot start domain %s: %s %s %s", cfg->name,
            CTX->system_xl, verb,
            rc == ERROR_TIMEDOUT ? "failed (timed out)" :
            rc == ERROR_ABORTED ? "was aborted" : "failed");
        return rc;
    }
    if (libxl_name_to_domid(CTX->xl, cfg->name, domid_r)) {
        LOG(ERROR, "%s %s succeeded but no domain is named %s",
            CTX->system_xl, verb, cfg->name);
        return ERROR_FAIL;
    }
    return 0;
}

static int xen_create(libxl__gc *gc, const libxl__domain_config *cfg,
                      const libxl__domain_record *rec, bool paused,
                      const char *restore,
                      const libxlsnap_progress_how *progress,
                      uint32_t *domid_r)
{
    const char *const *args;
    char *rcfg;
    struct stat sb;
    uint32_t domid;
    int rc;

    rc = xen_create_args(gc, cfg, rec, paused, restore, &args, &rcfg);
    if (rc) return rc;
    rc = libxl__exec_sync(gc, args, XEN_CREATE_TIMEOUT_MS, NULL, NULL);
    if (rcfg) unlink(rcfg);
    rc = xen_create_done(gc, cfg, args[1], rc, &domid);
    if (rc) return rc;
    if (restore && !stat(restore, &sb))
        /* xl restore has read it all: reported once, now */
        libxl__progress_report(progress, "memory", sb.st_size, sb.st_size);
    if (domid_r) *domid_r = domid;
    return 0;
}

/*
 * Asynchronous: xl is a child of the loop (libxl__exec_start), which
 * ao_abort kills (SIGTERM, then SIGKILL); a domain it leaves half-made
 * is destroyed.  While xl restore reads the memory image, its read
 * offset (/proc/<pid>/fdinfo of the fd open on the image, shared with
 * libxl's save helper) is reported as progress every 500 ms.
 */
static void xen_create_exec_done(libxl__egc *egc, libxl__exec_state *es,
                                 int rc, int status);
static void xen_create_tick(libxl__egc *egc, libxl__ev_time *ev, int rc);

static void xen_create_async(libxl__egc *egc, libxl__domain_async *dss)
{
    STATE_AO_GC(dss->ao);
    struct stat sb;
    int rc;

    libxl__exec_init(&dss->es);
    libxl__ev_time_init(&dss->tick);
    rc = xen_create_args(gc, dss->cfg, dss->rec, dss->paused, dss->restore,
                         &dss->args, &dss->rcfg);
    if (rc) goto out;
    dss->es.ao = ao;
    dss->es.what = GCSPRINTF("domain %s", dss->cfg->name);
    dss->es.args = dss->args;
    dss->es.timeout_ms = XEN_CREATE_TIMEOUT_MS;
    dss->es.callback = xen_create_exec_done;
    dss->es.unabortable = dss->unabortable;   /* a restart finishes */
    /* a domain of that name before xl runs is not xl's to clean up */
    if (libxl_name_to_domid(CTX->xl, dss->cfg->name, &dss->domid))
        dss->domid = INVALID_DOMID;
    rc = libxl__exec_start(egc, &dss->es);
    if (rc) {
        if (dss->rcfg) unlink(dss->rcfg);
        goto out;
    }
    dss->size = dss->restore && !stat(dss->restore, &sb) ? sb.st_size : 0;
    if (dss->size && dss->progress && dss->progress->callback)
        libxl__ev_time_register_rel(gc, &dss->tick, xen_create_tick,
                                    XEN_SUSPEND_TICK_MS);
    return;
 out:
    dss->callback(egc, dss, rc);
}

/* How far xl (pid) has read path, from /proc; false if not found. */
static bool xen_read_offset(libxl__gc *gc, pid_t pid, const char *path,
                            uint64_t *pos_r)
{
    char *dir = GCSPRINTF("/proc/%d/fd", (int)pid);
    DIR *dh = opendir(dir);
    struct dirent *de;
    bool found = false;

    if (!dh) return false;
    while (!found && (de = readdir(dh))) {
        char link[PATH_MAX], *info;
        ssize_t n;
        const char *p;

        if (de->d_name[0] == '.') continue;
        n = readlink(GCSPRINTF("%s/%s", dir, de->d_name), link,
                     sizeof(link) - 1);
        if (n <= 0) continue;
        link[n] = 0;
        if (strcmp(link, path)) continue;
        if (libxl__read_file(gc, GCSPRINTF("/proc/%d/fdinfo/%s", (int)pid,
                                           de->d_name), &info, NULL))
            continue;
        p = strstr(info, "pos:");
        if (!p) continue;
        *pos_r = strtoull(p + 4, NULL, 10);
        found = true;
    }
    closedir(dh);
    return found;
}

static void xen_create_tick(libxl__egc *egc, libxl__ev_time *ev, int rc)
{
    libxl__domain_async *dss = CONTAINER_OF(ev, libxl__domain_async, tick);
    EGC_GC;
    uint64_t pos;

    if (!libxl__exec_running(&dss->es)) return;
    if (xen_read_offset(gc, dss->es.pid, dss->restore, &pos))
        libxl__progress_report(dss->progress, "memory",
                               pos < dss->size ? pos : dss->size, dss->size);
    libxl__ev_time_register_rel(gc, &dss->tick, xen_create_tick,
                                XEN_SUSPEND_TICK_MS);
}

static void xen_create_exec_done(libxl__egc *egc, libxl__exec_state *es,
                                 int rc, int status)
{
    libxl__domain_async *dss = CONTAINER_OF(es, libxl__domain_async, es);
    STATE_AO_GC(dss->ao);
    uint32_t domid;

    libxl__ev_time_deregister(gc, &dss->tick);
    if (dss->rcfg) unlink(dss->rcfg);
    if ((rc == ERROR_ABORTED || rc == ERROR_TIMEDOUT) &&
        !libxl_name_to_domid(CTX->xl, dss->cfg->name, &domid) &&
        domid != dss->domid) {
        /* xl killed part-way (abort, timeout): not half a domain */
        LOG(INFO, "destroying the half-made domain %s (%u)",
            dss->cfg->name, domid);
        libxl_domain_destroy(CTX->xl, domid, NULL);
    }
    rc = xen_create_done(gc, dss->cfg, dss->args[1], rc, &dss->domid);
    if (!rc && dss->size)
        libxl__progress_report(dss->progress, "memory", dss->size,
                               dss->size);
    dss->callback(egc, dss, rc);
}

/* ---------------------------------------------------------------- */
/* libxl's locks */

/*
 * libxl 4.17 guards a domain's state with lock files beside its
 * userdata (libxl_internal.c: libxl__lock_file, libxl__ev_slowlock),
 * named as libxl__userdata_path names them:
 *     <XEN_LIB_DIR>/userdata-l.<domid>.<uuid>.<name>
 * Taken: open(O_RDWR|O_CREAT, 0666), flock(LOCK_EX), then the lock
 * counts only if the path still names the file locked (fstat and stat
 * agree on device and inode), else it is opened afresh.  Released:
 * unlink first, then LOCK_UN and close (so that a waiter holding the
 * old file sees it gone and reopens).  We try with LOCK_NB and retry
 * (libxl blocks in flock, or in a forked child).
 */
static char *xen_lock_file(libxl__gc *gc, uint32_t domid,
                           const libxl_uuid *uuid, const char *name)
{
    return GCSPRINTF("%s/userdata-l.%u." LIBXL_UUID_FMT ".%s", XEN_LIB_DIR,
                     domid, LIBXL_UUID_BYTES(*uuid), name);
}

/* 0 held (*fd_r), ERROR_LOCK_FAIL another holds it, ERROR_FAIL (logged) */
static int xen_lockfile_try(libxl__gc *gc, const char *path, int *fd_r)
{
    struct stat ours, named;
    int fd, r, tries;

    for (tries = 0; tries < 100; tries++) {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0) {
            LOGE(ERROR, "cannot open libxl's lock file %s", path);
            return ERROR_FAIL;
        }
        do {
            r = flock(fd, LOCK_EX | LOCK_NB);
        } while (r && errno == EINTR);
        if (r) {
            int e = errno;
            close(fd);
            if (e == EWOULDBLOCK) return ERROR_LOCK_FAIL;
            errno = e;
            LOGE(ERROR, "cannot lock libxl's lock file %s", path);
            return ERROR_FAIL;
        }
        if (fstat(fd, &ours)) {
            LOGE(ERROR, "cannot fstat libxl's lock file %s", path);
            close(fd);
            return ERROR_FAIL;
        }
        if (!stat(path, &named) && named.st_dev == ours.st_dev &&
            named.st_ino == ours.st_ino) {
            *fd_r = fd;
            return 0;
        }
        close(fd);                      /* unlinked by its last holder */
    }
    return ERROR_LOCK_FAIL;
}

static void xen_lockfile_release(const char *path, int fd)
{
    if (fd < 0) return;
    unlink(path);
    flock(fd, LOCK_UN);
    close(fd);
}

/*
 * libxl's QMP socket lock ("qmp-socket-lock", libxl__ev_qmplock_init),
 * which libxl__ev_qmp holds from before its connect until it closes,
 * for the sockets libxl gives QEMU: <run dir>/qmp-libxl-<domid>.
 * Other paths (the guest agent's) have no lock: *fd_r -1.
 */
static int xen_qmp_trylock(libxl__gc *gc, const char *qmp_path,
                           char **lockfile_r, int *fd_r)
{
    const char *prefix = GCSPRINTF("%s/qmp-libxl-", CTX->run_dir);
    size_t pl = strlen(prefix);
    libxl_dominfo info;
    unsigned long domid;
    int rc;

    *fd_r = -1;
    *lockfile_r = NULL;
    if (strncmp(qmp_path, prefix, pl) || !xen_all_digits(qmp_path + pl) ||
        strlen(qmp_path + pl) > 5)
        return 0;
    domid = strtoul(qmp_path + pl, NULL, 10);
    libxl_dominfo_init(&info);
    rc = libxl_domain_info(CTX->xl, &info, domid);
    if (rc) {
        /* no domain, no device model: the connect says so */
        libxl_dominfo_dispose(&info);
        return 0;
    }
    *lockfile_r = xen_lock_file(gc, domid, &info.uuid, XEN_QMP_LOCK);
    libxl_dominfo_dispose(&info);
    return xen_lockfile_try(gc, *lockfile_r, fd_r);
}

static void xen_qmp_unlock(const char *lockfile, int fd)
{
    xen_lockfile_release(lockfile, fd);
}

/*
 * libxl's domain userdata lock ("domain-userdata-lock",
 * libxl__lock_domain_userdata), which libxl holds around every
 * read-modify-write of the stored config (libxl-json: device add and
 * remove, mem-set, cdrom insert, ...), around the xenstore transaction
 * of a device add, and inside each libxl_userdata_retrieve and _store.
 * libxl holds it for milliseconds (file and xenstore I/O, never a
 * child or QMP), so it is waited for in short sleeps, up to
 * XEN_USERDATA_LOCK_WAIT_MS.  As libxl does, the domain must still
 * exist once it is held.
 */
static int xen_userdata_lock(libxl__gc *gc, const libxl__domain *d,
                             char **lockfile_r, int *fd_r)
{
    uint64_t deadline = libxl__now_ms() + XEN_USERDATA_LOCK_WAIT_MS;
    char *lockfile = xen_lock_file(gc, d->domid, &d->uuid,
                                   XEN_USERDATA_LOCK);
    int rc;

    for (;;) {
        rc = xen_lockfile_try(gc, lockfile, fd_r);
        if (rc != ERROR_LOCK_FAIL) break;
        if (libxl__now_ms() >= deadline) {
            LOG(ERROR, "domain %s (%u): libxl's lock %s is still held "
                "after %d s", d->name, d->domid, lockfile,
                XEN_USERDATA_LOCK_WAIT_MS / 1000);
            return rc;
        }
        poll(NULL, 0, 5);
    }
    if (rc) return rc;
    if (libxl_domain_info(CTX->xl, NULL, d->domid)) {
        LOG(ERROR, "domain %s (%u) is gone", d->name, d->domid);
        xen_lockfile_release(lockfile, *fd_r);
        *fd_r = -1;
        return ERROR_DOMAIN_NOTFOUND;
    }
    *lockfile_r = lockfile;
    return 0;
}

/* ---------------------------------------------------------------- */
/* libxl's stored config (userdata "libxl-json"), under its lock */

/*
 * libxl_userdata_retrieve and _store each take the userdata lock
 * themselves, so they cannot be called while we hold it (flock locks
 * per open file: we would wait for ourselves).  Under the lock, the
 * file is read and written directly, where libxl__userdata_path puts
 * it, as libxl__userdata_store writes it: a new file renamed over it.
 */
static char *xen_userdata_file(libxl__gc *gc, const libxl__domain *d,
                               const char *userid)
{
    return GCSPRINTF("%s/userdata-d.%u." LIBXL_UUID_FMT ".%s", XEN_LIB_DIR,
                     d->domid, LIBXL_UUID_BYTES(d->uuid), userid);
}

/*
 * Before the lock: libxl's own view, so that a libxl whose lib dir is
 * not XEN_LIB_DIR is told rather than silently not locked against.
 * *have_r: libxl has a stored config.
 */
static int xen_userdata_where(libxl__gc *gc, const libxl__domain *d,
                              bool *have_r)
{
    uint8_t *data = NULL;
    int len = 0, rc;
    struct stat sb;
    const char *file = xen_userdata_file(gc, d, XEN_LIBXL_JSON);

    rc = libxl_userdata_retrieve(CTX->xl, d->domid, XEN_LIBXL_JSON, &data,
                                 &len);
    free(data);
    if (rc) {
        LOG(ERROR, "cannot read libxl's stored configuration of domain %s "
            "(%u): %s", d->name, d->domid, xen_strerror(rc));
        return rc;
    }
    *have_r = len > 0;
    if (*have_r && stat(file, &sb)) {
        LOG(ERROR, "libxl's stored configuration of domain %s (%u) is not "
            "%s: this libxl keeps its userdata elsewhere, and its locks "
            "cannot be shared (build with XEN_LIB_DIR set to libxl's)",
            d->name, d->domid, file);
        return ERROR_FAIL;
    }
    return 0;
}

static libxl_device_disk *xen_config_disk(libxl_domain_config *dc,
                                          const char *vdev)
{
    int i;
    for (i = 0; i < dc->num_disks; i++)
        if (dc->disks[i].vdev && !strcmp(dc->disks[i].vdev, vdev))
            return &dc->disks[i];
    return NULL;
}

/*
 * (2) the disk in libxl-json, read-modify-write; the lock is held.
 * Only from path from: libxl keeps the entry of a detached disk, and
 * writes a new one at the next attach, neither of which is ours.
 */
static int xen_set_stored_config(libxl__gc *gc, libxl__domain *d,
                                 const char *vdev, const char *from,
                                 const char *path, libxl_disk_format format)
{
    const char *file = xen_userdata_file(gc, d, XEN_LIBXL_JSON);
    libxl_domain_config dc;
    libxl_device_disk *disk;
    char *text, *json = NULL, *p;
    size_t len;
    int rc;

    libxl_domain_config_init(&dc);
    rc = libxl__read_file(gc, file, &text, &len);
    if (rc == ERROR_NOTFOUND || (!rc && !len)) {
        LOG(WARN, "domain %s (%u) has no stored libxl configuration; "
            "save, migrate and reboot will not know that disk %s is now "
            "'%s'", d->name, d->domid, vdev, path);
        rc = 0;
        goto out;
    }
    if (rc) goto out;
    rc = libxl_domain_config_from_json(CTX->xl, &dc, text);
    if (rc) {
        LOG(ERROR, "cannot parse libxl's stored configuration of domain "
            "%s (%u)", d->name, d->domid);
        rc = ERROR_FAIL;
        goto out;
    }
    disk = xen_config_disk(&dc, vdev);
    if (!disk) {
        LOG(ERROR, "libxl's stored configuration of domain %s (%u) has no "
            "disk %s", d->name, d->domid, vdev);
        rc = ERROR_FAIL;
        goto out;
    }
    if (disk->pdev_path && !strcmp(disk->pdev_path, path) &&
        disk->format == format)
        goto out;                       /* already so */
    if (from && (!disk->pdev_path || strcmp(disk->pdev_path, from))) {
        LOG(WARN, "disk %s of domain %s (%u): libxl's stored configuration "
            "names '%s', not '%s': left as it is", vdev, d->name, d->domid,
            disk->pdev_path ? disk->pdev_path : "", from);
        goto out;
    }

    p = strdup(path);
    if (!p) {
        rc = ERROR_NOMEM;
        goto out;
    }
    free(disk->pdev_path);
    disk->pdev_path = p;
    disk->format = format;

    json = libxl_domain_config_to_json(CTX->xl, &dc);
    if (!json) {
        LOG(ERROR, "cannot write libxl's configuration of domain %s (%u) "
            "as JSON", d->name, d->domid);
        rc = ERROR_FAIL;
        goto out;
    }
    /* with its NUL, as libxl_userdata_store is given it */
    rc = libxl__write_file_atomic(gc, file, json, strlen(json) + 1);
    if (rc)
        LOG(ERROR, "cannot store libxl's configuration of domain %s (%u)",
            d->name, d->domid);
 out:
    free(json);
    libxl_domain_config_dispose(&dc);
    return rc;
}

/* ---------------------------------------------------------------- */
/* set_active_disk */

/* the path of a qdisk "params" ("<format>:<path>") */
static const char *xen_params_path(const char *params)
{
    const char *c = params ? strchr(params, ':') : NULL;
    return c ? c + 1 : params;
}

/*
 * (1) params in xenstore, backend and libxl's copy, in one
 * transaction, if the disk still runs from.  ERROR_NOTFOUND (said):
 * the disk is gone, or runs another image (a block-detach, a new
 * block-attach, by another toolstack command: libxl does not lock a
 * detach); nothing is written.
 */
static int xen_set_xenstore_params(libxl__gc *gc, libxl__domain *d,
                                   const char *vdev, const char *from,
                                   const char *path, libxl_disk_format format)
{
    struct xs_handle *xsh = NULL;
    xs_transaction_t t = XBT_NULL;
    char *libxl_path, *be_suffix, *params;
    int devid, attempt, rc;

    if (xen_disk_devid(gc, d->domid, vdev, &devid)) {
        LOG(WARN, "disk %s is no longer attached to domain %s (%u): "
            "libxl's records of it are left as they are", vdev, d->name,
            d->domid);
        return ERROR_NOTFOUND;
    }
    libxl_path = xen_libxl_vbd_path(gc, d->domid, devid);
    be_suffix = GCSPRINTF("/backend/qdisk/%u/%d", d->domid, devid);
    params = GCSPRINTF("%s:%s", xen_qdisk_format(format), path);

    xsh = xen_xs_open(gc);
    if (!xsh) return ERROR_FAIL;

    for (attempt = 0; ; attempt++) {
        char *be, *fe_be, *type, *cur;
        size_t bl, sl = strlen(be_suffix);

        t = xs_transaction_start(xsh);
        if (t == XBT_NULL) {
            LOGE(ERROR, "cannot start a xenstore transaction");
            rc = ERROR_FAIL;
            goto out;
        }
        type = xen_xs_read(gc, xsh, t, GCSPRINTF("%s/type", libxl_path));
        be = xen_xs_read(gc, xsh, t, GCSPRINTF("%s/backend", libxl_path));
        if (!type || !be) {
            LOG(WARN, "disk %s is no longer attached to domain %s (%u): "
                "libxl's records of it are left as they are", vdev,
                d->name, d->domid);
            rc = ERROR_NOTFOUND;
            goto out;
        }
        if (strcmp(type, "qdisk")) {
            LOG(ERROR, "disk %s of domain %s (%u) is served by %s; only "
                "qdisk disks can change image while running", vdev,
                d->name, d->domid, type);
            rc = ERROR_INVAL;
            goto out;
        }
        bl = strlen(be);
        if (strncmp(be, "/local/domain/", 14) || bl <= sl ||
            strcmp(be + bl - sl, be_suffix)) {
            LOG(ERROR, "disk %s of domain %s (%u): unexpected backend "
                "path '%s'", vdev, d->name, d->domid, be);
            rc = ERROR_FAIL;
            goto out;
        }
        /* The guest can write its frontend: compare, never follow. */
        fe_be = xen_xs_read(gc, xsh, t,
                            GCSPRINTF("/local/domain/%u/device/vbd/%d/backend",
                                      d->domid, devid));
        if (fe_be && strcmp(fe_be, be))
            LOG(WARN, "disk %s of domain %s (%u): the frontend names "
                "backend '%s', libxl '%s'; using libxl's", vdev, d->name,
                d->domid, fe_be, be);
        cur = xen_xs_read(gc, xsh, t, GCSPRINTF("%s/params", be));
        if (!cur) {
            LOG(WARN, "disk %s is no longer attached to domain %s (%u) "
                "(backend '%s' has no params): libxl's records of it are "
                "left as they are", vdev, d->name, d->domid, be);
            rc = ERROR_NOTFOUND;
            goto out;
        }
        if (!strcmp(cur, params)) {     /* already so */
            rc = 0;
            goto out;
        }
        if (from && strcmp(xen_params_path(cur), from)) {
            LOG(WARN, "disk %s of domain %s (%u) now runs '%s', not '%s' "
                "(attached anew by another command): left as it is", vdev,
                d->name, d->domid, xen_params_path(cur), from);
            rc = ERROR_NOTFOUND;
            goto out;
        }
        if (!xs_write(xsh, t, GCSPRINTF("%s/params", be), params,
                      strlen(params)) ||
            !xs_write(xsh, t, GCSPRINTF("%s/params", libxl_path), params,
                      strlen(params))) {
            LOGE(ERROR, "cannot write params of disk %s of domain %s (%u)",
                 vdev, d->name, d->domid);
            rc = ERROR_FAIL;
            goto out;
        }
        if (xs_transaction_end(xsh, t, false)) {
            t = XBT_NULL;
            break;
        }
        t = XBT_NULL;
        if (errno != EAGAIN || attempt >= XEN_XS_TRANSACTION_RETRIES) {
            LOGE(ERROR, "cannot commit params of disk %s of domain %s (%u)",
                 vdev, d->name, d->domid);
            rc = ERROR_FAIL;
            goto out;
        }
    }
    rc = 0;

 out:
    if (t != XBT_NULL) xs_transaction_end(xsh, t, true);
    xs_close(xsh);
    return rc;
}

/* xl reloads a pending "xl config-update" on reboot; it has the old disk. */
static void xen_warn_config_update(libxl__gc *gc, libxl__domain *d,
                                   const char *vdev)
{
    uint8_t *data = NULL;
    int len = 0;

    if (libxl_userdata_retrieve(CTX->xl, d->domid, "xl", &data, &len))
        return;                         /* only a warning: stay quiet */
    free(data);
    if (len <= 0) return;
    LOG(WARN, "domain %s (%u) has a pending 'xl config-update'; if that "
        "configuration names disk %s, a reboot will use its image, not "
        "the active one", d->name, d->domid, vdev);
}

static int xen_set_active_disk(libxl__gc *gc, libxl__domain *d,
                               const char *vdev, const char *from,
                               const char *path, libxl_disk_format format)
{
    char *lockfile = NULL;
    int lockfd = -1, i, rc, rc2;
    bool have_json = false;

    rc = xen_check_domid(gc, d, "change a disk of");
    if (rc) return rc;
    if (!vdev || !path || path[0] != '/') {
        LOG(ERROR, "domain %s: disk %s: '%s' is not an absolute path",
            d->name, vdev ? vdev : "?", path ? path : "");
        return ERROR_INVAL;
    }
    if (!xen_qdisk_format(format)) {
        LOG(ERROR, "domain %s: disk %s: qdisk cannot serve format %s",
            d->name, vdev, libxl_disk_format_to_string(format));
        return ERROR_INVAL;
    }
    for (i = 0; i < d->num_disks; i++) {
        libxl_device_disk *disk = &d->disks[i];
        if (disk->vdev && !strcmp(disk->vdev, vdev) &&
            disk->backend != LIBXL_DISK_BACKEND_QDISK &&
            disk->backend != LIBXL_DISK_BACKEND_UNKNOWN) {
            LOG(ERROR, "disk %s of domain %s is served by %s; only qdisk "
                "disks can change image while running", vdev, d->name,
                libxl_disk_backend_to_string(disk->backend));
            return ERROR_INVAL;
        }
    }

    rc = xen_userdata_where(gc, d, &have_json);
    if (rc) return rc;
    rc = xen_userdata_lock(gc, d, &lockfile, &lockfd);
    if (rc) return rc;
    /*
     * The overlay is already live in QEMU: bring each record as close
     * to it as we can, and report the first failure.  Both under
     * libxl's userdata lock, in libxl's order (device_disk_add: the
     * lock, then the xenstore transaction, then the stored config).
     */
    rc = xen_set_xenstore_params(gc, d, vdev, from, path, format);
    if (rc != ERROR_INVAL && rc != ERROR_NOTFOUND) {
        rc2 = have_json ? xen_set_stored_config(gc, d, vdev, from, path,
                                                format)
                        : 0;
        if (!rc) rc = rc2;
    }
    xen_lockfile_release(lockfile, lockfd);
    if (rc == ERROR_NOTFOUND) return 0;     /* not ours to change: said */
    if (rc == ERROR_INVAL) return rc;
    if (!have_json)
        LOG(WARN, "domain %s (%u) has no stored libxl configuration; "
            "save, migrate and reboot will not know that disk %s is now "
            "'%s'", d->name, d->domid, vdev, path);
    xen_warn_config_update(gc, d, vdev);    /* takes the lock itself */
    if (rc) return rc;

    for (i = 0; i < d->num_disks; i++) {
        libxl_device_disk *disk = &d->disks[i];
        if (disk->vdev && !strcmp(disk->vdev, vdev)) {
            disk->pdev_path = GCSTRDUP(path);
            disk->format = format;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- */

/* ---------------------------------------------------------------- */
/* suspend / resume: memory checkpoints */

/*
 * xl's save-image header (tools/xl: "xl save" writes it, "xl restore"
 * reads it), so that the memory image is one `xl restore` takes too:
 * 32 bytes of magic, then byte order, mandatory flags, optional flags
 * and the length of the optional data, each a uint32 in host order;
 * the optional data is the domain config as libxl JSON, preceded by
 * its length (with the trailing NUL).  Then libxl's stream (v2).
 */
#define XEN_SAVE_MAGIC "Xen saved domain, xl format\n \0 \r"
#define XEN_SAVE_BYTEORDER 0x01020304U
#define XEN_SAVE_FLAG_JSON (1U << 0)
#define XEN_SAVE_FLAG_STREAMv2 (1U << 1)

static int xen_write_all(libxl__gc *gc, int fd, const void *p, size_t len)
{
    const char *c = p;
    while (len) {
        ssize_t r = write(fd, c, len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            LOGE(ERROR, "cannot write the memory image header");
            return ERROR_FAIL;
        }
        c += r;
        len -= r;
    }
    return 0;
}

/*
 * A live save tracks the pages the guest dirties: Xen's log-dirty mode,
 * which PV guests get from shadow paging and HVM/PVH ones from HAP.
 * Debian's Xen is built without shadow paging, so its PV guests cannot
 * be saved live (nor migrated live): better said now than as "domain
 * did not respond to suspend request" after the save started.
 */
static int xen_check_logdirty(libxl__gc *gc, const libxl__domain *d)
{
    libxl_physinfo pi;
    libxl_dominfo di;
    bool pv, ok;
    int rc;

    libxl_physinfo_init(&pi);
    libxl_dominfo_init(&di);
    rc = libxl_get_physinfo(CTX->xl, &pi);
    if (!rc) rc = libxl_domain_info(CTX->xl, &di, d->domid);
    if (rc) {
        LOG(ERROR, "domain %s: cannot read the hypervisor's capabilities",
            d->name);
        goto out;
    }
    pv = di.domain_type == LIBXL_DOMAIN_TYPE_PV;
    ok = pv ? pi.cap_shadow : (pi.cap_hap || pi.cap_shadow);
    if (!ok) {
        LOG(ERROR, "domain %s: a live checkpoint needs Xen's log-dirty "
            "mode, which this hypervisor lacks for %s guests (%s); take "
            "one with the guest paused (not live)",
            d->name, pv ? "PV" : "HVM/PVH",
            pv ? "no shadow paging" : "neither HAP nor shadow paging");
        rc = ERROR_NI;
    }
 out:
    libxl_dominfo_dispose(&di);
    libxl_physinfo_dispose(&pi);
    return rc;
}

/*
 * The suspend is libxl_domain_suspend with a callback ao_how: it runs
 * on this library's loop (the osevent hooks), the memory image's size
 * is reported every XEN_SUSPEND_TICK_MS while libxl writes it (total:
 * the domain's memory, an estimate: libxl writes page data plus its
 * records), and ao_abort reaches it through libxl_ao_abort.  libxl's
 * callback comes from inside libxl_osevent_occurred_*; the rest runs
 * from a fresh callback of ours (a timer at 0).
 */
static void xen_suspend_libxl_done(libxl_ctx *xl, int rc, void *for_callback);
static void xen_suspend_tick(libxl__egc *egc, libxl__ev_time *ev, int rc);
static void xen_suspend_finish(libxl__egc *egc, libxl__ev_time *ev, int rc);
static void xen_suspend_abort(libxl__egc *egc, libxl__ao_abortable *ab,
                              int rc);

static void xen_suspend_report(libxl__driver_suspend_state *ss)
{
    struct stat sb;

    if (fstat(ss->fd, &sb) || (uint64_t)sb.st_size == ss->bytes) return;
    ss->bytes = sb.st_size;
    libxl__progress_report(ss->progress, "memory", ss->bytes,
                           ss->total > ss->bytes ? ss->total : ss->bytes);
}

static int xen_suspend(libxl__egc *egc, libxl__driver_suspend_state *ss)
{
    STATE_AO_GC(ss->ao);
    const libxl__domain *d = ss->d;
    libxl_domain_config dc;
    libxl_dominfo di;
    char *json = NULL;
    uint32_t hdr[4], len;
    int rc;

    ss->stopped = false;
    ss->bytes = ss->total = 0;
    libxl__ev_time_init(&ss->tick);
    libxl__ev_time_init(&ss->done);
    libxl__ao_abortable_init(&ss->abrt);
    libxl_domain_config_init(&dc);
    libxl_dominfo_init(&di);
    if (!xen_domid_valid(d)) {
        LOG(ERROR, "domain %s is not running", d->name);
        rc = ERROR_INVAL;
        goto out;
    }
    if (ss->live) {
        rc = xen_check_logdirty(gc, d);
        if (rc) goto out;
    }
    rc = libxl_retrieve_domain_configuration(CTX->xl, d->domid, &dc, NULL);
    if (rc) {
        LOG(ERROR, "domain %s: cannot read its configuration from libxl: %s",
            d->name, xen_strerror(rc));
        goto out;
    }
    json = libxl_domain_config_to_json(CTX->xl, &dc);
    if (!json) {
        rc = ERROR_FAIL;
        goto out;
    }
    len = strlen(json) + 1;
    hdr[0] = XEN_SAVE_BYTEORDER;
    hdr[1] = XEN_SAVE_FLAG_STREAMv2 | XEN_SAVE_FLAG_JSON;
    hdr[2] = 0;
    hdr[3] = sizeof(len) + len;
    rc = xen_write_all(gc, ss->fd, XEN_SAVE_MAGIC, 32);
    if (!rc) rc = xen_write_all(gc, ss->fd, hdr, sizeof(hdr));
    if (!rc) rc = xen_write_all(gc, ss->fd, &len, sizeof(len));
    if (!rc) rc = xen_write_all(gc, ss->fd, json, len);
    if (rc) goto out;
    if (!libxl_domain_info(CTX->xl, &di, d->domid))
        ss->total = (uint64_t)di.current_memkb * 1024;

    ss->abrt.ao = ao;
    ss->abrt.callback = xen_suspend_abort;
    rc = libxl__ao_abortable_register(&ss->abrt);
    if (rc) goto out;
    memset(&ss->how, 0, sizeof(ss->how));
    ss->how.callback = xen_suspend_libxl_done;
    ss->how.u.for_callback = ss;
    ss->rc = 0;
    ss->running = true;
    rc = libxl_domain_suspend(CTX->xl, d->domid, ss->fd,
                              ss->live ? LIBXL_SUSPEND_LIVE : 0, &ss->how);
    if (rc) {
        /* no callback will come */
        ss->running = false;
        libxl__ao_abortable_deregister(&ss->abrt);
        LOG(ERROR, "domain %s: libxl_domain_suspend failed: %s", d->name,
            xen_strerror(rc));
        /* it may have suspended the guest all the same */
        ss->stopped = true;
        goto out;
    }
    libxl__ev_time_register_rel(gc, &ss->tick, xen_suspend_tick,
                                XEN_SUSPEND_TICK_MS);
    rc = 0;
 out:
    free(json);
    libxl_dominfo_dispose(&di);
    libxl_domain_config_dispose(&dc);
    return rc;
}

static void xen_suspend_tick(libxl__egc *egc, libxl__ev_time *ev, int rc)
{
    libxl__driver_suspend_state *ss =
        CONTAINER_OF(ev, libxl__driver_suspend_state, tick);
    EGC_GC;

    xen_suspend_report(ss);
    libxl__ev_time_register_rel(gc, &ss->tick, xen_suspend_tick,
                                XEN_SUSPEND_TICK_MS);
}

static void xen_suspend_abort(libxl__egc *egc, libxl__ao_abortable *ab,
                              int rc)
{
    libxl__driver_suspend_state *ss =
        CONTAINER_OF(ab, libxl__driver_suspend_state, abrt);
    EGC_GC;
    int r;

    libxl__ao_abortable_deregister(&ss->abrt);
    if (!ss->running) return;
    LOG(INFO, "domain %s: aborting the save of its memory", ss->d->name);
    /* libxl ends the suspend, then calls back with ERROR_ABORTED */
    r = libxl_ao_abort(CTX->xl, &ss->how);
    if (r)
        LOG(DEBUG, "libxl_ao_abort: %s", xen_strerror(r));
}

/* from inside libxl_osevent_occurred_*: carry on from our own loop */
static void xen_suspend_libxl_done(libxl_ctx *xl, int rc, void *for_callback)
{
    libxl__driver_suspend_state *ss = for_callback;
    libxl__gc *gc = &ss->ao->gc;

    ss->rc = rc;
    ss->running = false;
    libxl__ev_time_register_rel(gc, &ss->done, xen_suspend_finish, 0);
}

/*
 * A live save of an HVM guest ends with QEMU's xen-save-devices-state
 * (live: true, QEMU stopped), which inactivates every block node so
 * that a migration's destination may take the images; an inactive
 * node refuses internal snapshots ("does not support internal
 * snapshots") and writes.  "cont" activates them again, as libxl's
 * own resume does; the guest stays suspended by Xen, so nothing is
 * written before the disks are snapshotted.  PV guests' QEMU (qdisk
 * only) is not saved.
 */
static int xen_suspend_reactivate(libxl__gc *gc, const libxl__domain *d)
{
    libxl_dominfo di;
    bool pv;
    int rc;

    libxl_dominfo_init(&di);
    rc = libxl_domain_info(CTX->xl, &di, d->domid);
    pv = !rc && di.domain_type == LIBXL_DOMAIN_TYPE_PV;
    libxl_dominfo_dispose(&di);
    if (rc) {
        LOG(ERROR, "domain %s is gone", d->name);
        return ERROR_DOMAIN_NOTFOUND;
    }
    if (pv) return 0;
    rc = libxl__qmp_run_sync(gc, d->qmp_path, "cont", NULL, 10000, false,
                             NULL);
    if (rc)
        LOG(ERROR, "domain %s: its device model's disks could not be "
            "activated again after the save", d->name);
    return rc;
}

static void xen_suspend_finish(libxl__egc *egc, libxl__ev_time *ev, int rc)
{
    libxl__driver_suspend_state *ss =
        CONTAINER_OF(ev, libxl__driver_suspend_state, done);
    EGC_GC;

    libxl__ev_time_deregister(gc, &ss->tick);
    libxl__ao_abortable_deregister(&ss->abrt);
    rc = ss->rc;
    /* whatever the outcome, the guest may be suspended: resume it */
    ss->stopped = true;
    xen_suspend_report(ss);
    if (rc == ERROR_ABORTED)
        LOG(ERROR, "domain %s: the save of its memory was aborted",
            ss->d->name);
    else if (rc)
        LOG(ERROR, "domain %s: libxl_domain_suspend failed: %s",
            ss->d->name, xen_strerror(rc));
    else if (ss->live)
        rc = xen_suspend_reactivate(gc, ss->d);
    ss->callback(egc, ss, rc);
}

/*
 * After a suspend (ours, whatever its outcome): resume in place.  Not
 * logged: after a failed save the guest may not be suspended at all,
 * and the caller says what matters.  xen_resume (recovery) lets libxl
 * run its own loop inside; xen_resume_async is libxl_domain_resume
 * with a callback ao_how on this library's loop, as the suspend, and
 * is not abortable (it ends a suspend, whatever stopped it).
 */
static int xen_resume(libxl__gc *gc, const libxl__domain *d)
{
    int rc = libxl_domain_resume(CTX->xl, d->domid, 1, NULL);
    if (rc)
        LOG(DEBUG, "domain %s: libxl_domain_resume: %s", d->name,
            xen_strerror(rc));
    return rc;
}

static void xen_resume_libxl_done(libxl_ctx *xl, int rc, void *for_callback);
static void xen_resume_finish(libxl__egc *egc, libxl__ev_time *ev, int rc);

static int xen_resume_async(libxl__egc *egc, libxl__driver_suspend_state *ss)
{
    STATE_AO_GC(ss->ao);
    int rc;

    libxl__ev_time_init(&ss->done);
    memset(&ss->how, 0, sizeof(ss->how));
    ss->how.callback = xen_resume_libxl_done;
    ss->how.u.for_callback = ss;
    ss->rc = 0;
    ss->running = true;
    rc = libxl_domain_resume(CTX->xl, ss->d->domid, 1, &ss->how);
    if (rc) {
        /* no callback will come */
        ss->running = false;
        LOG(DEBUG, "domain %s: libxl_domain_resume: %s", ss->d->name,
            xen_strerror(rc));
    }
    return rc;
}

/* from inside libxl_osevent_occurred_*: carry on from our own loop */
static void xen_resume_libxl_done(libxl_ctx *xl, int rc, void *for_callback)
{
    libxl__driver_suspend_state *ss = for_callback;
    libxl__gc *gc = &ss->ao->gc;

    ss->rc = rc;
    ss->running = false;
    libxl__ev_time_register_rel(gc, &ss->done, xen_resume_finish, 0);
}

static void xen_resume_finish(libxl__egc *egc, libxl__ev_time *ev, int rc)
{
    libxl__driver_suspend_state *ss =
        CONTAINER_OF(ev, libxl__driver_suspend_state, done);
    EGC_GC;

    rc = ss->rc;
    if (rc)
        LOG(DEBUG, "domain %s: libxl_domain_resume: %s", ss->d->name,
            xen_strerror(rc));
    else
        ss->stopped = false;
    ss->callback(egc, ss, rc);
}

const libxl__snapshot_driver libxl__snapshot_driver_xen = {
    .name = "xen",
    .init = xen_init,
    .fini = xen_fini,
    .lookup_running = xen_lookup_running,
    .pause = xen_pause,
    .unpause = xen_unpause,
    .memory_bytes = xen_memory_bytes,
    .destroy = xen_destroy,
    .create = xen_create,
    .create_async = xen_create_async,
    .set_active_disk = xen_set_active_disk,
    .list = xen_list,
    .disk_override = xen_disk_override,
    .suspend = xen_suspend,
    .resume = xen_resume,
    .resume_async = xen_resume_async,
    .qmp_trylock = xen_qmp_trylock,
    .qmp_unlock = xen_qmp_unlock,
};

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
