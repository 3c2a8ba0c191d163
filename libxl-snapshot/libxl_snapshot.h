/*
 * libxl_snapshot.h - domain snapshots and block jobs for libxl domains
 *
 * A libxl-style API, built out of tree on libxenlight's public
 * interface.  Conventions follow libxl.h:
 *
 *  - Every function returns int rc: 0 on success or a negative
 *    libxl ERROR_* code (libxenlight's libxl_error_to_string() names
 *    them).  Why it failed is logged through the context's logger, in
 *    the library's words (a caller such as xl adds its own, naming its
 *    options).
 *  - A running asynchronous operation can be cancelled with
 *    libxlsnap_ao_abort().  Its callback then comes later, from
 *    the loop (never from inside ao_abort), with ERROR_ABORTED; or with
 *    its own rc when it had finished, or was at a step that does not
 *    stop (a QMP exchange, a live memory save's copy, the removal of
 *    merged or discarded images and a revert's search for the images
 *    it leaves unused, a `qemu-img check -r leaks` repair,
 *    the xen driver's resume after its suspend): such a step finishes,
 *    and the operation then goes on or stops at its next step that
 *    can.  An operation still waiting
 *    for the domain's lock stops having done nothing.  An abort does not
 *    always undo: what it leaves is said above each operation.
 *  - Objects returned to the caller are owned by the caller and freed
 *    with the matching _dispose() (or _list_free()).
 *  - Pointer arguments are required, ctx included, unless said
 *    otherwise: NULL is allowed only for every progress and ao_how (no
 *    progress; synchronous), ctx_alloc's settings, the ctx of the
 *    record conversions (_to_json, _from_json, _to_xml, _from_xml:
 *    nothing is logged then), and the arguments whose comment says
 *    "may be NULL".  A required one that is NULL makes the call fail
 *    before it does anything, with ERROR_INVAL (NULL from a function
 *    that returns a pointer, false from one that returns bool) and
 *    one logged line naming it; nothing is logged when ctx itself is
 *    NULL (there is no logger).  ctx_free, the _init, _dispose and
 *    _free functions take NULL and do nothing.
 *  - Flags this header does not define for a call (create, redefine,
 *    delete, revert, block commit's params->flags, block stream) make
 *    it fail the same way, before anything is looked at: ERROR_INVAL
 *    and one line naming the call and the unknown bits.
 *
 * Asynchronous operations
 * -----------------------
 * Slow operations take `const libxl_asyncop_how *ao_how`, as libxl's:
 *
 *  - NULL: synchronous; the call runs the library's own event loop and
 *    returns the operation's final rc.
 *  - a callback: the call returns 0 at once (or an error if the
 *    operation could not even start, and then the callback is never
 *    made) and the callback is made exactly once, later, with the
 *    final rc.  It comes only from inside
 *    libxlsnap_osevent_afterpoll() or
 *    libxlsnap_event_loop_run(), in the thread that calls them,
 *    never from inside the starting call.  Its libxl_ctx* argument is
 *    the xen driver's libxenlight context (NULL on the qemu driver):
 *    use for_callback.
 *  - for_event is not supported (ERROR_INVAL).
 *
 * Until the callback, the caller keeps alive every object whose
 * address it passed for a result: *snapshot (create), *problems_r and
 * *num_r (check), *recovered_r (recover), *domid_r (domain_create).
 * They are written when the operation ends, never after the callback.
 * Every other argument (strings, params, progress, ao_how itself) is
 * copied by the starting call and may be freed as soon as it returns.
 *
 * libxlsnap_ao_abort(ctx, how) finds the operation by the pair
 * (how->callback, how->u.for_callback), as libxl_ao_abort does: give
 * each outstanding operation its own for_callback (the address of a
 * per-operation struct), or an abort may reach the wrong one.  What an
 * abort leaves is said per operation below; every aborted operation
 * completes through its callback, with ERROR_ABORTED (or 0 when the
 * abort came too late to stop anything).
 *
 * Progress: the long operations take an optional
 * `const libxlsnap_progress_how *progress` (NULL: none), called
 * from the same places as the completion callback.
 *
 * Names
 * -----
 * Every name this header defines, exported function, type, enum value
 * or macro, begins with libxlsnap_ or LIBXLSNAP_.  The 2014 RFC this
 * API grew from spelt it libxl_domain_snapshot_*, and earlier versions
 * of this library exported a mix of libxl_domain_snapshot_*,
 * libxl_snapshot_*, libxl_disk_snapshot_*, libxl_block_* and
 * libxl_blockjob_*.  Those were given up (with the soname, now
 * libxlsnapshot.so.1) because:
 *  - xen.git's CODING_STYLE reserves libxl_ for libxenlight itself,
 *    and the names were exactly the ones libxenlight would pick if it
 *    grew snapshots or block jobs (the RFC proposed them for it);
 *  - the xen driver links libxenlight into the same process, and the
 *    caller includes libxl.h: a libxenlight that later defined one of
 *    them would clash at compile time (a type or macro) or, worse,
 *    bind one library's callers to the other's code at run time (a
 *    function), with no soname to tell them apart;
 *  - a prefix of our own, as libxlutil has (xlu_), says at each call
 *    which library is called.  libxlsnap_ cannot collide with
 *    libxenlight's namespace (libxl_ is followed by '_', never by
 *    "snap_"), nor with libxlutil's.
 * The capability macros follow: LIBXLSNAP_HAVE_*, in the style of
 * libxl's LIBXL_HAVE_* but in our namespace, so that libxl.h's own can
 * never be confused with them.  libxenlight's own types (libxl_ctx,
 * libxl_asyncop_how, libxl_device_disk, libxl_uuid) and error codes
 * (ERROR_*) keep their names: they are libxenlight's, used as such.
 * scripts/check-symbols.sh fails the build's check when the library
 * exports any other name, or one libxenlight also defines.
 *
 * Domains are named as in xl: by name, by domid, or by uuid.  A domain
 * that is not running is found through the configuration it was last
 * started from (recorded by this library), or through
 * <config dir>/<name>.cfg, or is given as the path of an xl config
 * file.
 *
 * Records live under <state dir>/<domain-uuid>/, one
 * snapshotdata-<name>.libxl-json per snapshot plus domain.libxl-json
 * (current snapshot, active image per disk).
 */
#ifndef LIBXL_SNAPSHOT_H
#define LIBXL_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>
#include <poll.h>
#include <sys/time.h>

#include <libxl.h>
#include <xentoollog.h>

#if defined(__GNUC__)
#define LIBXLSNAP_EXPORT __attribute__((visibility("default")))
#else
#define LIBXLSNAP_EXPORT
#endif

/*
 * Capabilities, as libxl's LIBXL_HAVE_*: each macro is defined when
 * the functions, types or flags it names exist.
 */

/* LIBXLSNAP_HAVE_SNAPSHOT: the functions and types in this file exist. */
#define LIBXLSNAP_HAVE_SNAPSHOT 1
/* LIBXLSNAP_HAVE_SNAPSHOT_QEMU_DRIVER: domains may be plain QEMU processes. */
#define LIBXLSNAP_HAVE_SNAPSHOT_QEMU_DRIVER 1
/*
 * LIBXLSNAP_HAVE_SNAPSHOT_API_V1: the revised API of LIBXLSNAP_VERSION
 * 1: one entry point per operation with an optional progress argument
 * (libxlsnap_progress_how), libxlsnap_settings given to
 * ctx_alloc, ao_how on libxlsnap_domain_create/_destroy.
 */
#define LIBXLSNAP_HAVE_SNAPSHOT_API_V1 1
/*
 * LIBXLSNAP_HAVE_SNAPSHOT_SETTINGS: libxlsnap_settings (state, run
 * and config dirs, driver, lock timeout, tools, the caller's own
 * libxl_ctx) passed to libxlsnap_ctx_alloc.
 */
#define LIBXLSNAP_HAVE_SNAPSHOT_SETTINGS 1
/*
 * LIBXLSNAP_HAVE_SNAPSHOT_PROGRESS: libxlsnap_progress_how on create,
 * revert, delete, block commit and block stream.
 */
#define LIBXLSNAP_HAVE_SNAPSHOT_PROGRESS 1
/*
 * LIBXLSNAP_HAVE_SNAPSHOT_MEMORY: memory checkpoints
 * (libxlsnap_domain_snapshot.memory), reverted to with the domain's RAM.
 */
#define LIBXLSNAP_HAVE_SNAPSHOT_MEMORY 1
/*
 * LIBXLSNAP_HAVE_SNAPSHOT_LIVE_CHECKPOINT: LIBXLSNAP_CREATE_LIVE, the
 * memory copied while the guest runs.
 */
#define LIBXLSNAP_HAVE_SNAPSHOT_LIVE_CHECKPOINT 1
/*
 * LIBXLSNAP_HAVE_SNAPSHOT_QUIESCE: LIBXLSNAP_CREATE_QUIESCE(_TRY) and
 * libxlsnap_domain_snapshot.quiesce/.agent (guest agent fsfreeze).
 */
#define LIBXLSNAP_HAVE_SNAPSHOT_QUIESCE 1
/*
 * LIBXLSNAP_HAVE_SNAPSHOT_DELETE_CHILDREN: LIBXLSNAP_DELETE_CHILDREN
 * and _CHILDREN_ONLY.
 */
#define LIBXLSNAP_HAVE_SNAPSHOT_DELETE_CHILDREN 1
/* LIBXLSNAP_HAVE_SNAPSHOT_REVERT_FORCE: LIBXLSNAP_REVERT_FORCE. */
#define LIBXLSNAP_HAVE_SNAPSHOT_REVERT_FORCE 1
/*
 * LIBXLSNAP_HAVE_SNAPSHOT_REDEFINE: libxlsnap_domain_snapshot_redefine and
 * LIBXLSNAP_REDEFINE_CURRENT.
 */
#define LIBXLSNAP_HAVE_SNAPSHOT_REDEFINE 1
/*
 * LIBXLSNAP_HAVE_SNAPSHOT_REDEFINE_MANY:
 * libxlsnap_domain_snapshot_redefine_many (a batch: one lock, one save).
 */
#define LIBXLSNAP_HAVE_SNAPSHOT_REDEFINE_MANY 1
/*
 * LIBXLSNAP_HAVE_SNAPSHOT_XML: libxlsnap_domain_snapshot_to_xml/_from_xml
 * (libvirt's domainsnapshot XML).
 */
#define LIBXLSNAP_HAVE_SNAPSHOT_XML 1
/*
 * LIBXLSNAP_HAVE_SNAPSHOT_CONFIG: libxlsnap_domain_snapshot_config_parse and
 * _config_is_snapshot (xl.snapshot.cfg(5) files).
 */
#define LIBXLSNAP_HAVE_SNAPSHOT_CONFIG 1
/* LIBXLSNAP_HAVE_SNAPSHOT_CHECK: libxlsnap_domain_snapshot_check. */
#define LIBXLSNAP_HAVE_SNAPSHOT_CHECK 1
/* LIBXLSNAP_HAVE_SNAPSHOT_RECOVER: libxlsnap_domain_snapshot_recover. */
#define LIBXLSNAP_HAVE_SNAPSHOT_RECOVER 1
/*
 * LIBXLSNAP_HAVE_SNAPSHOT_LVM: LIBXLSNAP_DISK_SNAPSHOT_TYPE_LVM, disks on LVM
 * logical volumes (libxlsnap_disk_snapshot.cow).
 */
#define LIBXLSNAP_HAVE_SNAPSHOT_LVM 1
/*
 * LIBXLSNAP_HAVE_SNAPSHOT_RBD: LIBXLSNAP_DISK_SNAPSHOT_TYPE_RBD, disks on
 * Ceph RBD images (target=rbd:POOL/IMAGE...), snapshotted by Ceph.
 */
#define LIBXLSNAP_HAVE_SNAPSHOT_RBD 1
/*
 * LIBXLSNAP_HAVE_SNAPSHOT_VHD: VHD images (LIBXL_DISK_FORMAT_VHD),
 * snapshotted as VHD differencing chains.
 */
#define LIBXLSNAP_HAVE_SNAPSHOT_VHD 1
/*
 * LIBXLSNAP_HAVE_SNAPSHOT_DISK_PROBLEM: libxlsnap_disk_snapshot.problem in what
 * list and get return.
 */
#define LIBXLSNAP_HAVE_SNAPSHOT_DISK_PROBLEM 1
/*
 * LIBXLSNAP_HAVE_SNAPSHOT_START_OVERRIDES:
 * libxlsnap_domain_start_overrides, for toolstacks that start
 * domains themselves.
 */
#define LIBXLSNAP_HAVE_SNAPSHOT_START_OVERRIDES 1
/*
 * LIBXLSNAP_HAVE_BLOCKJOB: block commit, block stream and job control
 * (libxlsnap_block_commit, libxlsnap_block_stream, libxlsnap_blockjob_get,
 * libxlsnap_blockjob_set_speed, libxlsnap_blockjob_abort, libxlsnap_blockjob_pivot).
 */
#define LIBXLSNAP_HAVE_BLOCKJOB 1
/*
 * LIBXLSNAP_HAVE_BLOCK_COPY: libxlsnap_block_copy, a block job of type
 * LIBXLSNAP_BLOCKJOB_TYPE_COPY, controlled as the others.
 */
#define LIBXLSNAP_HAVE_BLOCK_COPY 1
/*
 * LIBXLSNAP_HAVE_BACKUP: libxlsnap_backup_begin, _get, _end: push and
 * pull backups of a domain's disks, each disk's copy a block job of
 * type LIBXLSNAP_BLOCKJOB_TYPE_BACKUP.
 */
#define LIBXLSNAP_HAVE_BACKUP 1

/* The version libxlsnap_ctx_alloc() expects. */
#define LIBXLSNAP_VERSION 1

/* Environment variables: defaults of libxlsnap_settings. */
#define LIBXLSNAP_ENV_DRIVER    "XL_SNAPSHOT_DRIVER"    /* xen|qemu */
#define LIBXLSNAP_ENV_STATE_DIR "XL_SNAPSHOT_STATE_DIR"
#define LIBXLSNAP_ENV_RUN_DIR   "XL_SNAPSHOT_RUN_DIR"
#define LIBXLSNAP_ENV_CONFIG_DIR "XL_SNAPSHOT_CONFIG_DIR"
#define LIBXLSNAP_ENV_LOCK_TIMEOUT "XL_SNAPSHOT_LOCK_TIMEOUT"

typedef struct libxlsnap_ctx libxlsnap_ctx;

typedef enum libxlsnap_driver {
    LIBXLSNAP_DRIVER_AUTO = 0,
    LIBXLSNAP_DRIVER_XEN = 1,
    LIBXLSNAP_DRIVER_QEMU = 2,
} libxlsnap_driver;

/* How one disk takes part in a snapshot. */
typedef enum libxlsnap_disk_snapshot_type {
    LIBXLSNAP_DISK_SNAPSHOT_TYPE_DEFAULT = 0,  /* internal on qcow2, else external */
    LIBXLSNAP_DISK_SNAPSHOT_TYPE_INTERNAL = 1, /* qcow2 snapshot inside the image */
    LIBXLSNAP_DISK_SNAPSHOT_TYPE_EXTERNAL = 2, /* image frozen, new qcow2 overlay */
    LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO = 3,       /* disk not snapshotted */
    LIBXLSNAP_DISK_SNAPSHOT_TYPE_LVM = 4,      /* LVM snapshot volume (default
                                              for a disk on an LV) */
    LIBXLSNAP_DISK_SNAPSHOT_TYPE_RBD = 5,      /* Ceph RBD snapshot (default
                                              for a disk on an RBD image) */
} libxlsnap_disk_snapshot_type;

/* State of the domain when the snapshot was taken. */
typedef enum libxlsnap_domain_state {
    LIBXLSNAP_DOMAIN_STATE_SHUTOFF = 0,
    LIBXLSNAP_DOMAIN_STATE_RUNNING = 1,
    LIBXLSNAP_DOMAIN_STATE_PAUSED = 2,
} libxlsnap_domain_state;

typedef struct libxlsnap_disk_snapshot {
    char *vdev;                     /* "xvda" */
    libxlsnap_disk_snapshot_type type;
    libxl_disk_backend backend;
    libxl_disk_format format;       /* format of `file` */
    /*
     * internal: the image that holds the qcow2 snapshot `tag`.
     * external: the image frozen by the snapshot (its data at that
     *           instant); on input, the overlay path to create
     *           (optional, see `overlay`).
     */
    char *file;
    /*
     * external: the qcow2 overlay that became the active image on top
     * of `file` when the snapshot was taken.  On input: the path to
     * use for the new overlay (absolute; external snapshots only), or
     * NULL (or "") for the default name
     * <dir of image>/<stem>.<snapshot>.qcow2.
     */
    char *overlay;
    char *tag;                      /* internal: qcow2 snapshot name;
                                       lvm: the snapshot LV's name;
                                       rbd: the RBD snapshot's name */
    /*
     * lvm, input only: the copy-on-write size of a thick snapshot (an
     * LVM size such as "512M", or "N%" of the origin); NULL: 20%.
     */
    char *cow;
    /*
     * Output of list and get only: what makes this disk's snapshot
     * unusable, NULL when nothing does (an LVM snapshot volume whose
     * copy-on-write space filled up, or that is gone).
     */
    char *problem;
} libxlsnap_disk_snapshot;

typedef struct libxlsnap_domain_snapshot {
    char *name;
    char *description;
    uint64_t creation_time;         /* seconds since the epoch */
    uint32_t creation_nsec;         /* and nanoseconds: orders a second */
    char *parent;                   /* NULL for a root */
    char **children;                /* computed from the tree */
    int num_children;
    bool current;
    libxlsnap_domain_state state;
    /*
     * The memory image, NULL for a disk-only snapshot.  On input to
     * libxlsnap_domain_snapshot_create: NULL or "no", disk-only; "" or
     * "yes", <state dir>/<domain uuid>/<name>.save; else that path,
     * absolute.
     */
    char *memory;
    /*
     * Guest quiesce (LIBXLSNAP_CREATE_QUIESCE*): in the record,
     * "frozen" when the guest's file systems were frozen for the disk
     * snapshot, "crash-consistent" when freezing was tried and failed;
     * NULL when not asked.  agent, input only: the guest agent's socket,
     * overriding the domain config's channel.
     */
    char *quiesce;
    char *agent;
    char *domain_name;
    libxl_uuid domain_uuid;
    libxlsnap_disk_snapshot *disks;
    int num_disks;
} libxlsnap_domain_snapshot;

/* A domain as the snapshot layer sees it. */
typedef struct libxlsnap_domain {
    char *name;
    libxl_uuid uuid;
    uint32_t domid;                 /* INVALID_DOMID when shut off */
    libxlsnap_domain_state state;
    char *config_file;              /* xl config it was started from */
    libxl_device_disk *disks;       /* pdev_path: the active image */
    int num_disks;
} libxlsnap_domain;

/* Block jobs: types --------------------------------------------- */

typedef enum libxlsnap_blockjob_type {
    LIBXLSNAP_BLOCKJOB_TYPE_COMMIT = 1,        /* top below the active image */
    LIBXLSNAP_BLOCKJOB_TYPE_ACTIVE_COMMIT = 2, /* top is the active image */
    LIBXLSNAP_BLOCKJOB_TYPE_STREAM = 3,
    LIBXLSNAP_BLOCKJOB_TYPE_COPY = 4,          /* the active image to another
                                                 (top: the source, base: the
                                                 destination) */
    LIBXLSNAP_BLOCKJOB_TYPE_BACKUP = 5,        /* a disk's part of a backup
                                                 (top: the active image,
                                                 base: the backup's image,
                                                 or a pull's fleecing
                                                 overlay) */
} libxlsnap_blockjob_type;

/*
 * A job's life, as QEMU's job.c: NEW -> RUNNING [-> READY] ->
 * CONCLUDED -> COMPLETED | FAILED | CANCELLED; ABORTING on the way to
 * CANCELLED.  READY: an active commit has caught up and waits for
 * pivot (base becomes active) or abort (the top stays active).
 */
typedef enum libxlsnap_blockjob_state {
    LIBXLSNAP_BLOCKJOB_STATE_NEW = 0,
    LIBXLSNAP_BLOCKJOB_STATE_RUNNING = 1,
    LIBXLSNAP_BLOCKJOB_STATE_READY = 2,
    LIBXLSNAP_BLOCKJOB_STATE_ABORTING = 3,
    LIBXLSNAP_BLOCKJOB_STATE_CONCLUDED = 4,
    LIBXLSNAP_BLOCKJOB_STATE_COMPLETED = 5,
    LIBXLSNAP_BLOCKJOB_STATE_FAILED = 6,
    LIBXLSNAP_BLOCKJOB_STATE_CANCELLED = 7,
} libxlsnap_blockjob_state;

typedef struct libxlsnap_blockjob_info {
    char *id;                       /* our job id, "libxl-commit-xvda" */
    char *vdev;
    libxlsnap_blockjob_type type;
    libxlsnap_blockjob_state state;
    bool live;                      /* in QEMU (else qemu-img) */
    uint64_t offset, len;           /* bytes done, bytes to do */
    uint64_t speed;                 /* bytes/s limit, 0: none */
    char *top, *base;               /* images */
    char *error;                    /* why it failed */
} libxlsnap_blockjob_info;

/* Progress ----------------------------------------------------- */

/*
 * One report of progress of a long step of an operation:
 *  - what: the step.  "memory" (a checkpoint's memory saved, or read
 *    back by a revert), "disk xvda" (a disk's state copied out of an
 *    image others are built on), or, for a block job, the job's id
 *    ("libxl-commit-xvda").  A step ends where the next begins.
 *  - done <= total, in bytes; total may grow while a live save copies
 *    pages the guest dirtied again.
 *  - job: for a block job's step, the job (state, offset = done,
 *    len = total, speed, images); a job starts at state NEW and ends
 *    at COMPLETED, FAILED or CANCELLED.  NULL for other steps.
 * Everything it points to is valid during the callback only.  Where a
 * step cannot be followed as it runs (a Xen domain's save or restore,
 * done by libxl), it is reported once, when it is over.
 */
typedef struct libxlsnap_progress {
    const char *what;
    uint64_t done, total;
    const libxlsnap_blockjob_info *job;
} libxlsnap_progress;

/*
 * How progress is reported: callback (NULL: not at all) with
 * for_callback.  Called from where the completion callback comes
 * (libxlsnap_osevent_afterpoll, libxlsnap_event_loop_run, or
 * the synchronous call's own loop).  Copied by the starting call.
 */
typedef struct libxlsnap_progress_how {
    void (*callback)(const libxlsnap_progress *progress,
                     void *for_callback);
    void *for_callback;
} libxlsnap_progress_how;

/* Context ------------------------------------------------------- */

/*
 * Settings of a context, given to libxlsnap_ctx_alloc.  Strings
 * are owned by the struct (malloc'ed, freed by _dispose); _init gives
 * the defaults: every field unset, so that the environment variable
 * (LIBXLSNAP_ENV_*) applies, else the built-in default.
 */
typedef struct libxlsnap_settings {
    /* AUTO: $XL_SNAPSHOT_DRIVER, else xen when a hypervisor is present,
     * else qemu */
    libxlsnap_driver driver;
    char *state_dir;                /* records; NULL: $XL_SNAPSHOT_STATE_DIR,
                                       else /var/lib/xen/snapshots */
    char *run_dir;                  /* QMP sockets; NULL: $XL_SNAPSHOT_RUN_DIR,
                                       else /var/run/xen */
    char *config_dir;               /* <name>.cfg of shut-off domains;
                                       NULL: $XL_SNAPSHOT_CONFIG_DIR,
                                       else /etc/xen */
    /*
     * Seconds an operation waits for another one on the same domain
     * before failing with ERROR_LOCK_FAIL; -1 (the default):
     * $XL_SNAPSHOT_LOCK_TIMEOUT, else 10; 0: try once.
     */
    int lock_timeout;
    /*
     * The xen driver's libxenlight context: NULL (the default) makes
     * the library open its own.  A caller's context stays the
     * caller's (never freed here) and must outlive this one; its
     * libxl_childproc_setmode must leave other children alone
     * (libxl_sigchld_owner_libxl_always_selective_reap, or the
     * caller's own SIGCHLD handling that reaps only libxl's), since
     * this library waits for its own children (qemu-img, xl) by pid.
     */
    libxl_ctx *xl_ctx;
} libxlsnap_settings;

LIBXLSNAP_EXPORT
void libxlsnap_settings_init(libxlsnap_settings *p);
LIBXLSNAP_EXPORT
void libxlsnap_settings_dispose(libxlsnap_settings *p);

/*
 * Makes a context.  version: LIBXLSNAP_VERSION.  flags: none (0).
 * lg: where messages go; required (without it, ERROR_INVAL, said
 * nowhere).  settings: NULL for every default;
 * copied, so it may be disposed of once this returns.  Fails with
 * ERROR_INVAL on a bad argument or setting (an unknown driver in
 * $XL_SNAPSHOT_DRIVER, a directory that is not an absolute path, a
 * lock_timeout below -1), and ERROR_FAIL when the xen driver is chosen
 * and libxenlight cannot be initialised.  The directories need not
 * exist: each is made (0700) when first needed.
 */
LIBXLSNAP_EXPORT
int libxlsnap_ctx_alloc(libxlsnap_ctx **pctx, int version,
                             unsigned flags, xentoollog_logger *lg,
                             const libxlsnap_settings *settings);
/*
 * Frees ctx.  NULL is OK.  With an operation still outstanding (its
 * callback not yet made) it frees nothing and fails with ERROR_INVAL:
 * ao_abort it, and run the loop until its callback has come.
 */
LIBXLSNAP_EXPORT
int libxlsnap_ctx_free(libxlsnap_ctx *ctx);
/* The driver the context uses (never AUTO; AUTO for a NULL ctx). */
LIBXLSNAP_EXPORT
libxlsnap_driver libxlsnap_ctx_driver(libxlsnap_ctx *ctx);
/* "xen", "qemu" or "auto". */
LIBXLSNAP_EXPORT
const char *libxlsnap_driver_to_string(libxlsnap_driver d);

/* Event loop integration ----------------------------------------- */

/*
 * As libxl_osevent_beforepoll: adds the library's fds to fds[] (at most
 * *nfds_io; on ERROR_BUFFERFULL *nfds_io says how many are needed) and
 * lowers *timeout_upd to the next timer's deadline.  fds may be NULL
 * when *nfds_io is 0 (to ask how many are needed).
 */
LIBXLSNAP_EXPORT
int libxlsnap_osevent_beforepoll(libxlsnap_ctx *ctx,
                                      int *nfds_io, struct pollfd *fds,
                                      int *timeout_upd, struct timeval now);
/*
 * As libxl_osevent_afterpoll: handles what poll() reported and the
 * timers that are due; completion and progress callbacks are made from
 * here.
 */
LIBXLSNAP_EXPORT
void libxlsnap_osevent_afterpoll(libxlsnap_ctx *ctx, int nfds,
                                      const struct pollfd *fds,
                                      struct timeval now);
/*
 * Runs the library's own poll loop until no asynchronous operation is
 * outstanding, or for at most timeout_ms (-1: no limit).  Returns 0,
 * or ERROR_TIMEDOUT if operations are still outstanding.
 */
LIBXLSNAP_EXPORT
int libxlsnap_event_loop_run(libxlsnap_ctx *ctx, int timeout_ms);
/*
 * Asks the asynchronous operation started with `how` (found by
 * how->callback and how->u.for_callback, see the top of this file) to
 * stop.  0: asked (its callback follows); ERROR_NOTFOUND: no such
 * operation outstanding; ERROR_ABORTED: already asked.
 */
LIBXLSNAP_EXPORT
int libxlsnap_ao_abort(libxlsnap_ctx *ctx,
                            const libxl_asyncop_how *how);

/* Types -------------------------------------------------------- */

LIBXLSNAP_EXPORT void libxlsnap_disk_snapshot_init(libxlsnap_disk_snapshot *p);
LIBXLSNAP_EXPORT void libxlsnap_disk_snapshot_dispose(libxlsnap_disk_snapshot *p);
LIBXLSNAP_EXPORT void libxlsnap_domain_snapshot_init(libxlsnap_domain_snapshot *p);
LIBXLSNAP_EXPORT void libxlsnap_domain_snapshot_dispose(libxlsnap_domain_snapshot *p);
LIBXLSNAP_EXPORT
void libxlsnap_domain_snapshot_list_free(libxlsnap_domain_snapshot *list, int nb);
LIBXLSNAP_EXPORT void libxlsnap_domain_init(libxlsnap_domain *p);
LIBXLSNAP_EXPORT void libxlsnap_domain_dispose(libxlsnap_domain *p);
LIBXLSNAP_EXPORT
void libxlsnap_domain_list_free(libxlsnap_domain *list, int nb);
LIBXLSNAP_EXPORT void libxlsnap_blockjob_info_init(libxlsnap_blockjob_info *p);
LIBXLSNAP_EXPORT
void libxlsnap_blockjob_info_dispose(libxlsnap_blockjob_info *p);
/* Frees the n strings of s and s (libxlsnap_domain_snapshot_check's). */
LIBXLSNAP_EXPORT void libxlsnap_strings_free(char **s, int n);

LIBXLSNAP_EXPORT
const char *libxlsnap_disk_snapshot_type_to_string(libxlsnap_disk_snapshot_type t);
LIBXLSNAP_EXPORT
int libxlsnap_disk_snapshot_type_from_string(const char *s,
                                         libxlsnap_disk_snapshot_type *t);
LIBXLSNAP_EXPORT
const char *libxlsnap_domain_state_to_string(
    libxlsnap_domain_state s);
LIBXLSNAP_EXPORT
const char *libxlsnap_blockjob_type_to_string(libxlsnap_blockjob_type t);
LIBXLSNAP_EXPORT
const char *libxlsnap_blockjob_state_to_string(libxlsnap_blockjob_state s);

/*
 * Records and jobs as text.  In the conversions below (to and from
 * JSON and XML) ctx may be NULL: it is used only to log why a
 * conversion failed.
 *
 * The record, as libxl-json.  Returns a malloc'ed string or NULL.
 */
LIBXLSNAP_EXPORT
char *libxlsnap_domain_snapshot_to_json(libxlsnap_ctx *ctx,
                                    const libxlsnap_domain_snapshot *p);
/* libxl-json into *p (initialised by the caller, freed with _dispose). */
LIBXLSNAP_EXPORT
int libxlsnap_domain_snapshot_from_json(libxlsnap_ctx *ctx,
                                    libxlsnap_domain_snapshot *p,
                                    const char *s);
/*
 * A job as JSON (malloc'ed, or NULL): id, vdev, type, state, live,
 * offset, len, speed, and top, base, error when known.
 */
LIBXLSNAP_EXPORT
char *libxlsnap_blockjob_info_to_json(libxlsnap_ctx *ctx,
                                  const libxlsnap_blockjob_info *p);

/*
 * libvirt's domainsnapshot XML: a record as XML (malloc'ed, NULL on
 * failure).
 */
LIBXLSNAP_EXPORT
char *libxlsnap_domain_snapshot_to_xml(libxlsnap_ctx *ctx,
                                   const libxlsnap_domain_snapshot *snapshot);
/* XML into a record (the caller's, freed with _dispose). */
LIBXLSNAP_EXPORT
int libxlsnap_domain_snapshot_from_xml(libxlsnap_ctx *ctx, const char *xml,
                                   libxlsnap_domain_snapshot *snapshot_r);

/*
 * Parses an xl.snapshot.cfg(5) file (the 2014 RFC's format: name,
 * description, memory, type, disk=[...]) into *snapshot.  Any other
 * setting, a value of the wrong kind (memory = 1: not a string) and a
 * relative path are refused: ERROR_INVAL, one line naming the file,
 * the line and the setting.
 */
LIBXLSNAP_EXPORT
int libxlsnap_domain_snapshot_config_parse(libxlsnap_ctx *ctx,
                                       const char *config_file,
                                       libxlsnap_domain_snapshot *snapshot);
/*
 * Whether config_file reads as a snapshot config rather than a domain
 * config.  A domain config sets something a snapshot config does not
 * take (vcpus=, kernel=, type="pv"...), or memory= as a number (MB)
 * with a disk= entry naming an image; anything else is a snapshot
 * config, and so is always a file with description= or
 * type="internal"|"external", which no domain config has.  False for
 * a file that cannot be read or is not in xl syntax.  Logs nothing but
 * a read error (or a NULL config_file).
 */
LIBXLSNAP_EXPORT
bool libxlsnap_domain_snapshot_config_is_snapshot(libxlsnap_ctx *ctx,
                                              const char *config_file);
/*
 * Parses one libvirt-style disk spec "vdev[,snapshot=TYPE][,file=PATH]"
 * into *disk (initialised by the caller).  A relative PATH is made
 * absolute against the calling process's working directory, now (the
 * overlay snapshot_create takes must be absolute).
 */
LIBXLSNAP_EXPORT
int libxlsnap_disk_snapshot_parse_spec(libxlsnap_ctx *ctx,
                                   const char *spec,
                                   libxlsnap_disk_snapshot *disk);
/*
 * 0 if name can be a snapshot name, else ERROR_INVAL: at most 200
 * bytes, no '/', ',', "..", blanks or control characters, no leading
 * '.' or '-', not digits only (qemu-img would take it for a snapshot
 * ID).  A new snapshot's name must also be valid UTF-8 (create and
 * redefine refuse it otherwise); records with older such names load.
 */
LIBXLSNAP_EXPORT
int libxlsnap_name_check(const char *name);

/* Domains ------------------------------------------------------ */

/*
 * The domain named `domain` (running or not) into *info_r.  Its state
 * (running or paused) is asked of its QEMU on the qemu driver: this
 * waits (5 s at most) while another QMP client holds QEMU's monitor,
 * such as an operation of another context of this process whose loop
 * is not running meanwhile.  The operations ask only once they hold
 * the domain's lock (so one that has to wait for it waits on the loop
 * at once); snapshot list and get never talk to QEMU.
 */
LIBXLSNAP_EXPORT
int libxlsnap_domain_lookup(libxlsnap_ctx *ctx,
                                 const char *domain,
                                 libxlsnap_domain *info_r);
/* Running domains of the qemu driver (ERROR_NI on xen: use libxl). */
LIBXLSNAP_EXPORT
int libxlsnap_domain_list(libxlsnap_ctx *ctx,
                               libxlsnap_domain **list_r, int *nb_r);
/*
 * qemu driver: starts a domain from an xl config, under the domain's
 * lock (so that no snapshot operation sees it half-started).  Disks
 * whose image was replaced by a snapshot operation start on their
 * active image.  *domid_r (may be NULL): the new domain's id.
 * Abort: while it waits for the lock, nothing is done; once QEMU is
 * starting, the start runs to its end.
 */
LIBXLSNAP_EXPORT
int libxlsnap_domain_create(libxlsnap_ctx *ctx,
                                 const char *config_file, bool paused,
                                 uint32_t *domid_r,
                                 const libxl_asyncop_how *ao_how)
                                 LIBXL_EXTERNAL_CALLERS_ONLY;
/*
 * For toolstacks that start domains themselves (xen: the system xl):
 * the extra config lines for the domain of config_file, each NULL when
 * not needed, malloc'ed otherwise:
 *  - *disk_r, "disk=[ ... ]": start on the active images instead of
 *    the images the config names (after an external snapshot or a
 *    revert those are backing files);
 *  - *uuid_r, "uuid=...": a config without uuid= gets the uuid its
 *    records are kept under (else Xen picks a random one).
 * Also remembers config_file for the domain, as the qemu driver's
 * create does, so that commands on it find its config later.
 */
LIBXLSNAP_EXPORT
int libxlsnap_domain_start_overrides(libxlsnap_ctx *ctx,
                                          const char *config_file,
                                          char **disk_r, char **uuid_r);
/*
 * Destroys a running domain, under its lock (never while a snapshot
 * operation works on it).  Abort: while it waits for the lock, nothing
 * is done.
 */
LIBXLSNAP_EXPORT
int libxlsnap_domain_destroy(libxlsnap_ctx *ctx,
                                  const char *domain,
                                  const libxl_asyncop_how *ao_how)
                                  LIBXL_EXTERNAL_CALLERS_ONLY;
LIBXLSNAP_EXPORT
int libxlsnap_domain_pause(libxlsnap_ctx *ctx, const char *domain);
LIBXLSNAP_EXPORT
int libxlsnap_domain_unpause(libxlsnap_ctx *ctx,
                                  const char *domain);
/*
 * Runs one HMP command line in the domain's QEMU; *output_r gets the
 * reply (malloc'ed; output_r may be NULL: the reply is dropped).  Meant for tests and debugging, as
 * libxl_qemu_monitor_command.
 */
LIBXLSNAP_EXPORT
int libxlsnap_domain_monitor_command(libxlsnap_ctx *ctx,
                                          const char *domain,
                                          const char *command_line,
                                          char **output_r);

/* Snapshots ---------------------------------------------------- */

/* Flags for libxlsnap_domain_snapshot_create(). */
#define LIBXLSNAP_CREATE_DRY_RUN      (1U << 0) /* plan only */
#define LIBXLSNAP_CREATE_NO_METADATA  (1U << 1) /* no record */
/*
 * With snapshot->memory (a memory checkpoint): copy memory while the
 * guest runs, and take the disks at the final pause.  Without it, the
 * guest is paused for the whole save (stop-the-world).
 */
#define LIBXLSNAP_CREATE_LIVE         (1U << 2)
/*
 * Disk-only snapshots of a running domain: freeze the guest's file
 * systems through the QEMU guest agent (guest-fsfreeze-freeze) for the
 * disk transaction, and thaw them after, whatever happened.  _QUIESCE:
 * fail if the agent cannot freeze; _QUIESCE_TRY: take the snapshot
 * crash-consistent then, and say so (in the record too).
 */
#define LIBXLSNAP_CREATE_QUIESCE      (1U << 3)
#define LIBXLSNAP_CREATE_QUIESCE_TRY  (1U << 4)
/*
 * Space guards: before anything is done, what the snapshot will write
 * (memory image, overlays, internal snapshots, records and journal) is
 * checked against the free space of each file system it goes on, and
 * LVM disks against their thin pool's use or their VG's free space and
 * the threshold (setting space_threshold, 90 %); a snapshot that would
 * not fit is refused, one error line naming the file system and the
 * figures.  _FORCE takes it anyway, saying in one warning line what it
 * overrode.  A dry run says the figures.
 */
#define LIBXLSNAP_CREATE_FORCE        (1U << 5)
/*
 * When an external snapshot would make a disk's backing chain longer
 * than max_chain (the setting: XL_SNAPSHOT_MAX_CHAIN, the domain
 * config's snapshot_max_chain, xl-snapshot.conf(5); default 16 images,
 * base included), first merge the oldest layer of that chain no
 * snapshot needs (a block commit: shallow, the merged image removed),
 * then take the snapshot.  Without it such a snapshot is refused, as
 * is one whose chain has no layer to merge.  Progress: the commit's.
 */
#define LIBXLSNAP_CREATE_AUTO_COMMIT  (1U << 6)

/*
 * Takes a snapshot of every disk of the domain.  On input,
 * snapshot->name (may be NULL: the local time, YYYYmmdd-HHMMSS),
 * ->description, ->memory (a checkpoint), and optionally ->disks with
 * per-disk choices (vdev, type, overlay, cow); disks not named get the
 * default (->disks may be NULL when ->num_disks is 0).  Refused with
 * ERROR_INVAL before the domain is looked at, nothing done: flags
 * this header does not define, a disk named twice, a memory image or
 * overlay given as a relative path (the library has no working
 * directory of the caller's: a front end makes the user's paths
 * absolute, as xl does); once the disks are known, an overlay given
 * for a disk whose snapshot is not external (internal, lvm or no).  On success, *snapshot holds the record as stored (it is
 * written when the operation ends: keep it alive until then).  A
 * running domain's disks are snapshotted in one QMP transaction (one
 * instant); a shut-off domain's with qemu-img.  progress (NULL: none):
 * the memory saved ("memory").
 * Failure and abort: nothing is left behind (what was made is undone;
 * a crash part-way leaves a journal that the next operation on the
 * domain, or libxlsnap_domain_snapshot_recover, rolls back).
 */
LIBXLSNAP_EXPORT
int libxlsnap_domain_snapshot_create(libxlsnap_ctx *ctx,
                                 const char *domain,
                                 libxlsnap_domain_snapshot *snapshot,
                                 unsigned flags,
                                 const libxlsnap_progress_how *progress,
                                 const libxl_asyncop_how *ao_how)
                                 LIBXL_EXTERNAL_CALLERS_ONLY;

/* Flags for libxlsnap_domain_snapshot_redefine(). */
#define LIBXLSNAP_REDEFINE_CURRENT (1U << 0)  /* it becomes current */
/* everything checked, nothing written */
#define LIBXLSNAP_REDEFINE_DRY_RUN (1U << 1)
/*
 * Adds (or replaces, same name) a record made elsewhere, metadata only
 * (libvirt's --redefine): its images must exist, its parent be in the
 * tree, its disks be the domain's.  Nothing is done to the disks.
 */
LIBXLSNAP_EXPORT
int libxlsnap_domain_snapshot_redefine(libxlsnap_ctx *ctx,
                                   const char *domain,
                                   const libxlsnap_domain_snapshot *snapshot,
                                   unsigned flags,
                                   const libxl_asyncop_how *ao_how)
                                   LIBXL_EXTERNAL_CALLERS_ONLY;

/*
 * Adds num records made elsewhere at once (libvirt's --redefine of a
 * domain's snapshot files), metadata only, under one lock with one
 * save: all of them or none, also across a crash (a journal: the next
 * call on the domain completes or undoes it).  Each is checked as
 * _redefine checks one; besides, the names must be unique in the batch
 * and new to the domain (ERROR_INVAL otherwise: use _redefine to
 * replace one), each parent be in the batch or the domain's, and no
 * loop.  Any order: parents need not come first.  sources (may be
 * NULL): what each came from (a file name), named in messages about
 * it.  LIBXLSNAP_REDEFINE_CURRENT: the newest of the batch (by creation
 * time, then name) becomes current.  LIBXLSNAP_REDEFINE_DRY_RUN: all
 * the checks, nothing written (0: the batch would be taken).
 */
LIBXLSNAP_EXPORT
int libxlsnap_domain_snapshot_redefine_many(libxlsnap_ctx *ctx,
                                        const char *domain,
                                        const libxlsnap_domain_snapshot
                                            *snapshots,
                                        int num,
                                        const char *const *sources,
                                        unsigned flags,
                                        const libxl_asyncop_how *ao_how)
                                        LIBXL_EXTERNAL_CALLERS_ONLY;

/* The domain's snapshots (*list_r: free with _list_free). */
LIBXLSNAP_EXPORT
int libxlsnap_domain_snapshot_list(libxlsnap_ctx *ctx, const char *domain,
                               libxlsnap_domain_snapshot **list_r, int *nb_r);
/* One snapshot by name: ERROR_NOTFOUND if there is none. */
LIBXLSNAP_EXPORT
int libxlsnap_domain_snapshot_get(libxlsnap_ctx *ctx, const char *domain,
                              const char *name,
                              libxlsnap_domain_snapshot *snapshot_r);

/* Flags for libxlsnap_domain_snapshot_delete(). */
#define LIBXLSNAP_DELETE_METADATA_ONLY (1U << 0)
#define LIBXLSNAP_DELETE_CHILDREN      (1U << 1) /* and descendants */
#define LIBXLSNAP_DELETE_CHILDREN_ONLY (1U << 2) /* descendants only */
/*
 * Deletes a snapshot, anywhere in the tree.  Internal disk snapshots
 * are removed from their image.  For an external one, the image it
 * froze is merged away so that every other snapshot and branch keeps
 * its data: with one image built on it, that image is committed into
 * it; with several (branches), it is streamed into each of them; with
 * none, it is removed.  LIBXLSNAP_DELETE_METADATA_ONLY drops only
 * the record.  Children are re-parented to the deleted snapshot's
 * parent.  With _CHILDREN the descendants go too (leaves first), with
 * _CHILDREN_ONLY only they do.  progress (NULL: none): each block job
 * the delete runs (a commit or stream per disk and branch, one after
 * the other), with progress->job set.
 * Abort: the running block job is cancelled; records and images still
 * agree, and deleting again finishes.  Aborted while it reads the
 * backing chains to find the images a disk left unused: the journal
 * stays, and the next operation on the domain removes them (until
 * then snapshot-check reports the pending delete).  A merge into the
 * snapshot's own image stopped after it wrote part of it leaves that
 * image holding newer data: the snapshot is then dropped from the
 * records (logged, naming it).
 */
LIBXLSNAP_EXPORT
int libxlsnap_domain_snapshot_delete(libxlsnap_ctx *ctx,
                                 const char *domain, const char *name,
                                 unsigned flags,
                                 const libxlsnap_progress_how *progress,
                                 const libxl_asyncop_how *ao_how)
                                 LIBXL_EXTERNAL_CALLERS_ONLY;

/* Flags for libxlsnap_domain_snapshot_revert(). */
#define LIBXLSNAP_REVERT_RUNNING      (1U << 0)
#define LIBXLSNAP_REVERT_PAUSED       (1U << 1)
/* a running domain with LVM disks may be stopped for the merge */
#define LIBXLSNAP_REVERT_FORCE        (1U << 2)
/*
 * Brings the disks back to the snapshot.  A running domain is stopped
 * first.  Internal: qemu-img snapshot -a.  External: a fresh overlay
 * on the snapshot's image, so the snapshot stays reusable.  The
 * domain then runs or stays paused as it was when the snapshot was
 * taken, unless LIBXLSNAP_REVERT_RUNNING / _PAUSED.  progress
 * (NULL: none): the memory image read back, for a snapshot with memory
 * ("memory"), and a disk's state copied out of an image others are
 * built on ("disk xvda": an internal snapshot in a frozen image).
 * Failure: the step running is stopped; the revert is then rolled
 * back, or, past the point where it cannot be, completed, by its
 * journal (at once, or by the next operation on the domain).
 * Abort: before any disk is changed, nothing is changed (a domain
 * stopped for it is started again on its old images; that restart is
 * never aborted).  While its disks are reverted: as a failure; once an
 * internal snapshot was applied (which cannot be undone) the domain is
 * left shut off with its journal.  Once the records say reverted, only
 * the start is left (the removal of the images the revert leaves
 * unused, before it, finishes): the QEMU being started (or restored
 * from the memory image) is killed and the domain left reverted and
 * shut off.
 */
LIBXLSNAP_EXPORT
int libxlsnap_domain_snapshot_revert(libxlsnap_ctx *ctx,
                                 const char *domain, const char *name,
                                 unsigned flags,
                                 const libxlsnap_progress_how *progress,
                                 const libxl_asyncop_how *ao_how)
                                 LIBXL_EXTERNAL_CALLERS_ONLY;

/*
 * Compares the domain's records with its images (files, backing chains
 * against the tree, qemu-img check, unowned files) and changes nothing.
 * 0 with *num_r == 0: consistent; else *problems_r holds one line per
 * discrepancy (free with libxlsnap_strings_free).  *problems_r and
 * *num_r are written when the operation ends: keep them alive until
 * then.  Abort: stops; nothing was changed.
 */
LIBXLSNAP_EXPORT
int libxlsnap_domain_snapshot_check(libxlsnap_ctx *ctx, const char *domain,
                                char ***problems_r, int *num_r,
                                const libxl_asyncop_how *ao_how)
                                LIBXL_EXTERNAL_CALLERS_ONLY;

/*
 * LIBXLSNAP_HAVE_DISK_CHAINS: libxlsnap_domain_disk_chains, and
 * LIBXLSNAP_CREATE_AUTO_COMMIT.
 */
#define LIBXLSNAP_HAVE_DISK_CHAINS 1
/* One disk's backing chain: its image files, the active one first. */
typedef struct libxlsnap_disk_chain {
    char *vdev;
    char **files;
    int num_files;
} libxlsnap_disk_chain;
/*
 * The backing chain of each disk of the domain whose image is a file
 * (volumes have none), and *max_chain_r, the longest chain an external
 * snapshot may make (images, base included; see
 * LIBXLSNAP_CREATE_AUTO_COMMIT).  Reads images only (qemu-img info -U),
 * takes no lock.  Free with libxlsnap_disk_chain_list_free.
 */
LIBXLSNAP_EXPORT
int libxlsnap_domain_disk_chains(libxlsnap_ctx *ctx, const char *domain,
                                 long *max_chain_r,
                                 libxlsnap_disk_chain **chains_r,
                                 int *num_r);
LIBXLSNAP_EXPORT
void libxlsnap_disk_chain_list_free(libxlsnap_disk_chain *l, int n);

/*
 * Finishes or undoes an operation a dead process left half-done on the
 * domain (every operation does this first; this does only that).
 * *recovered_r (kept alive until the end; recovered_r may be NULL):
 * whether there was one.
 * What was done is logged.  Abort (a revert's recovery stops in its
 * qemu-img run, a copy's convert included, or in the domain's start):
 * the journal stays, for the next operation to complete.  After it,
 * on a shut-off domain, the leak repair of its images: an abort while
 * their chains are read skips it (snapshot-check reports the leaks);
 * each image's repair, once begun, finishes.
 */
LIBXLSNAP_EXPORT
int libxlsnap_domain_snapshot_recover(libxlsnap_ctx *ctx,
                                  const char *domain, bool *recovered_r,
                                  const libxl_asyncop_how *ao_how)
                                  LIBXL_EXTERNAL_CALLERS_ONLY;

/* Block jobs --------------------------------------------------- */

/* libxlsnap_block_commit_params.flags */
#define LIBXLSNAP_BLOCK_COMMIT_SHALLOW      (1U << 0) /* base: top's backing */
#define LIBXLSNAP_BLOCK_COMMIT_ACTIVE       (1U << 1) /* top may be active */
#define LIBXLSNAP_BLOCK_COMMIT_PIVOT        (1U << 2) /* at READY: pivot */
#define LIBXLSNAP_BLOCK_COMMIT_KEEP_OVERLAY (1U << 3) /* at READY: cancel */
#define LIBXLSNAP_BLOCK_COMMIT_DELETE       (1U << 4) /* remove merged images */
#define LIBXLSNAP_BLOCK_COMMIT_KEEP_RELATIVE (1U << 5) /* relative backing */
#define LIBXLSNAP_BLOCK_COMMIT_NO_WAIT      (1U << 6) /* live: return once
                                                     started */

typedef struct libxlsnap_block_commit_params {
    const char *top;                /* NULL: the active image */
    const char *base;               /* NULL: the bottom of the chain */
    unsigned flags;
    uint64_t bandwidth;             /* bytes/s, 0: unlimited */
    int timeout_ms;                 /* 0: none; then the job is aborted */
} libxlsnap_block_commit_params;

/*
 * Merges top and the images below it, down to base, into base.
 * Running domain: QMP block-commit (an active commit waits for READY,
 * then pivots, cancels (KEEP_OVERLAY) or, with neither, completes the
 * ao at READY and leaves the job for libxlsnap_blockjob_pivot/_abort).
 * Shut-off domain: qemu-img commit, then the image above top is
 * rebased onto base.  Records follow: snapshots whose data was merged
 * away are dropped, those whose image moved are re-pointed.  Refused
 * (nothing done) when another branch of the snapshot tree is built on
 * an image the commit would change.  params is copied (may be NULL:
 * every field 0).  progress
 * (NULL: none): the job, at each step.
 * Abort (and timeout): the job is cancelled and the chain stays as it
 * was; but a commit has already written part of top's data into base,
 * so the snapshots whose data lived in base are dropped from the
 * records (logged, naming them).
 */
LIBXLSNAP_EXPORT
int libxlsnap_block_commit(libxlsnap_ctx *ctx, const char *domain,
                       const char *vdev,
                       const libxlsnap_block_commit_params *params,
                       const libxlsnap_progress_how *progress,
                       const libxl_asyncop_how *ao_how)
                       LIBXL_EXTERNAL_CALLERS_ONLY;

/*
 * Pulls the data of the images between base (exclusive; NULL: all)
 * and the active image into the active image, which then backs onto
 * base.  Running: QMP block-stream; shut off: qemu-img rebase.
 * flags: LIBXLSNAP_BLOCK_COMMIT_NO_WAIT only.  progress: as block commit.
 * Abort (and timeout): the job is cancelled; the active image keeps
 * its backing chain, and its data is unchanged.
 */
LIBXLSNAP_EXPORT
int libxlsnap_block_stream(libxlsnap_ctx *ctx, const char *domain,
                       const char *vdev, const char *base,
                       uint64_t bandwidth, int timeout_ms, unsigned flags,
                       const libxlsnap_progress_how *progress,
                       const libxl_asyncop_how *ao_how)
                       LIBXL_EXTERNAL_CALLERS_ONLY;

/* The job on vdev: ERROR_NOTFOUND if there is none. */
LIBXLSNAP_EXPORT
int libxlsnap_blockjob_get(libxlsnap_ctx *ctx, const char *domain,
                       const char *vdev, libxlsnap_blockjob_info *info_r);
/* Changes a running job's bandwidth limit (bytes/s, 0: none). */
LIBXLSNAP_EXPORT
int libxlsnap_blockjob_set_speed(libxlsnap_ctx *ctx, const char *domain,
                             const char *vdev, uint64_t bandwidth);
/*
 * Cancels the job.  If the process that started it still waits for
 * it, that process records the outcome; otherwise this call follows
 * the job to its end and records it.  The chain is left as before.
 * A qemu-img job of another process: that process is asked to cancel
 * it (SIGINT), and this call waits (30 s at most) for it to record the
 * outcome; abort stops the wait, not the cancel.
 */
LIBXLSNAP_EXPORT
int libxlsnap_blockjob_abort(libxlsnap_ctx *ctx, const char *domain,
                         const char *vdev, const libxl_asyncop_how *ao_how)
                         LIBXL_EXTERNAL_CALLERS_ONLY;
/* Completes a READY active commit: base becomes the active image. */
LIBXLSNAP_EXPORT
int libxlsnap_blockjob_pivot(libxlsnap_ctx *ctx, const char *domain,
                         const char *vdev, const libxl_asyncop_how *ao_how)
                         LIBXL_EXTERNAL_CALLERS_ONLY;

/* libxlsnap_block_copy_params.flags */
#define LIBXLSNAP_BLOCK_COPY_SHALLOW        (1U << 0) /* the active image only,
                                                     on the same backing */
#define LIBXLSNAP_BLOCK_COPY_REUSE_EXTERNAL (1U << 1) /* dest exists */
#define LIBXLSNAP_BLOCK_COPY_PIVOT          (1U << 2) /* at READY: pivot */
#define LIBXLSNAP_BLOCK_COPY_FINISH         (1U << 3) /* at READY: keep the
                                                     copy, domain stays */
#define LIBXLSNAP_BLOCK_COPY_NO_WAIT        (1U << 4) /* live: return once
                                                     started */

typedef struct libxlsnap_block_copy_params {
    unsigned flags;
    libxl_disk_format format;       /* of dest; UNKNOWN (0): the active
                                       image's (qcow2 or raw) */
    uint64_t bandwidth;             /* bytes/s, 0: unlimited */
    int timeout_ms;                 /* 0: none; then the job is aborted */
} libxlsnap_block_copy_params;

/*
 * Copies disk vdev's active image to dest (a path), a block job of type
 * LIBXLSNAP_BLOCKJOB_TYPE_COPY on the job record of the other jobs.
 * Full: dest is a standalone image with the data of the whole chain;
 * SHALLOW: dest holds the active image's own data, on its backing.
 * Running domain: QMP drive-mirror into dest (created first with
 * qemu-img unless REUSE_EXTERNAL), until READY; then PIVOT switches the
 * domain to dest, FINISH ends the mirror leaving dest a consistent
 * point-in-time copy (the domain stays on its image), and neither
 * completes the ao at READY and leaves the job for
 * libxlsnap_blockjob_pivot / _abort.  Shut-off domain: qemu-img convert
 * (-B for SHALLOW); PIVOT then makes dest the image the domain starts
 * on; without it the copy is only made.
 * Records: after a pivot the disk's active image is dest (and the
 * driver's records: libxl's stored config and xenstore on Xen); the old
 * images are never removed: the snapshots that need them keep them.
 * The persistent dirty bitmaps of the active image go with the copy.
 * Abort, timeout or failure before the end: dest is removed if this
 * call created it; the domain stays on its image.
 * Refused (nothing done): dest exists (without REUSE_EXTERNAL) or is an
 * image of the domain's chain or of a snapshot; a format mismatch with
 * REUSE_EXTERNAL; raw with SHALLOW; PIVOT with FINISH; a disk in a
 * block job.
 */
LIBXLSNAP_EXPORT
int libxlsnap_block_copy(libxlsnap_ctx *ctx, const char *domain,
                     const char *vdev, const char *dest,
                     const libxlsnap_block_copy_params *params,
                     const libxlsnap_progress_how *progress,
                     const libxl_asyncop_how *ao_how)
                     LIBXL_EXTERNAL_CALLERS_ONLY;
/* Backups ------------------------------------------------------ */

/* libxlsnap_backup_params.flags */
#define LIBXLSNAP_BACKUP_FALLBACK_FULL (1U << 0) /* an incremental whose
                                                 bitmaps are not trusted:
                                                 a full backup instead */
#define LIBXLSNAP_BACKUP_NO_WAIT       (1U << 1) /* push: return once the
                                                 copy runs */

typedef struct libxlsnap_backup_params {
    const char *target_dir;         /* push: DIR/<vdev>.qcow2 per disk */
    const char *nbd;                /* pull: a unix socket (a path with a
                                       '/'), or HOST:PORT */
    const char *incremental;        /* the checkpoint it starts from;
                                       NULL: a full backup */
    const char *checkpoint;         /* a checkpoint made at the backup's
                                       instant, or NULL */
    const char *const *disks;       /* vdevs; NULL: every disk */
    int num_disks;
    unsigned flags;
    uint64_t bandwidth;             /* push: bytes/s per disk, 0: none */
} libxlsnap_backup_params;

/*
 * A domain's backup, the one running or the last one.  state: RUNNING
 * (a push copies), READY (a pull's export is up), COMPLETED, FAILED,
 * CANCELLED.  jobs[]: each disk's part (a block job of type BACKUP;
 * base: the disk's backup image, or a pull's export name).  offset and
 * len: the sums of the jobs'.
 */
typedef struct libxlsnap_backup_info {
    bool pull, live;
    char *target;                   /* DIR, or the NBD address */
    char *incremental;              /* NULL: full */
    char *checkpoint;               /* made with it, or NULL */
    bool fell_back;                 /* an incremental done as full */
    libxlsnap_blockjob_state state;
    uint64_t offset, len;
    char *error;
    libxlsnap_blockjob_info *jobs;
    int num_jobs;
    /* the disks copied (push) or exported (pull) whole: every disk of a
     * full backup, of an incremental the disks its checkpoint does not
     * cover (a pull exports no qemu:dirty-bitmap context for them) */
    char **full_disks;
    int num_full_disks;
} libxlsnap_backup_info;

LIBXLSNAP_EXPORT void libxlsnap_backup_info_init(libxlsnap_backup_info *p);
LIBXLSNAP_EXPORT void libxlsnap_backup_info_dispose(libxlsnap_backup_info *p);
/* As JSON (malloc'ed, or NULL): the members above, jobs as
 * libxlsnap_blockjob_info_to_json's. */
LIBXLSNAP_EXPORT
char *libxlsnap_backup_info_to_json(libxlsnap_ctx *ctx,
                                    const libxlsnap_backup_info *p);

/*
 * Begins a backup of the domain's disks (params: exactly one of
 * target_dir and nbd).
 * Push (target_dir): every disk copied, at one instant, into
 * DIR/<vdev>.qcow2 (QMP blockdev-backup, all disks in one transaction);
 * an incremental's image holds only the clusters changed since the
 * checkpoint, its backing file the previous backup of the disk (the
 * one taken with that checkpoint), so that the chain opens as one
 * image.  The ao completes when every copy is over, or once they run
 * with NO_WAIT (then libxlsnap_backup_end waits).  Shut-off domain:
 * a full backup with qemu-img convert, an incremental in a
 * qemu-storage-daemon (NO_WAIT refused).
 * Pull (nbd): each disk's point-in-time view exported over NBD (export
 * name: the vdev) through a temporary fleecing overlay; an incremental
 * also exposes the changed clusters as the meta context
 * qemu:dirty-bitmap:<incremental>.  The ao completes once the exports
 * are up; libxlsnap_backup_end ends them.
 * checkpoint: made in the same transaction as the backup's start; it
 * is undone when the backup fails or is cancelled, and a pull's is kept
 * only when libxlsnap_backup_end ends it without ABORT.
 * Refused (nothing done): another backup running, an unknown
 * checkpoint, a target image that exists, a disk in a block job; an
 * incremental whose bitmaps are missing or inconsistent (QEMU killed),
 * unless FALLBACK_FULL.  progress: the jobs (NULL: none).  Abort: the
 * copies are cancelled, and everything made is undone.
 */
LIBXLSNAP_EXPORT
int libxlsnap_backup_begin(libxlsnap_ctx *ctx, const char *domain,
                           const libxlsnap_backup_params *params,
                           const libxlsnap_progress_how *progress,
                           const libxl_asyncop_how *ao_how)
                           LIBXL_EXTERNAL_CALLERS_ONLY;
/* The backup of the domain (running, or the last one): ERROR_NOTFOUND
 * if it never had one. */
LIBXLSNAP_EXPORT
int libxlsnap_backup_get(libxlsnap_ctx *ctx, const char *domain,
                         libxlsnap_backup_info *info_r);
/* libxlsnap_backup_end flags */
#define LIBXLSNAP_BACKUP_END_ABORT (1U << 0)   /* cancel it, undo */
/*
 * Ends the domain's backup: a push is waited for (ABORT: cancelled), a
 * pull's exports stop and its overlays and bitmaps go.  The outcome:
 * 0 for a backup that completed (a pull ended without ABORT),
 * ERROR_FAIL for one that failed (said), ERROR_ABORTED when cancelled.
 * A backup already over is reported (and forgotten).
 */
LIBXLSNAP_EXPORT
int libxlsnap_backup_end(libxlsnap_ctx *ctx, const char *domain,
                         unsigned flags,
                         const libxlsnap_progress_how *progress,
                         const libxl_asyncop_how *ao_how)
                         LIBXL_EXTERNAL_CALLERS_ONLY;

/*
 * LIBXLSNAP_HAVE_DOMAIN_MIGRATE_LOCAL: libxlsnap_domain_migrate_local.
 */
#define LIBXLSNAP_HAVE_DOMAIN_MIGRATE_LOCAL 1
/* Flags for libxlsnap_domain_migrate_local(). */
#define LIBXLSNAP_MIGRATE_PAUSED      (1U << 0)   /* leave it paused */
/*
 * qemu driver: moves a running domain to a new QEMU on this host (a new
 * domid, *domid_r; the same uuid, config and active images, so its
 * snapshot records stay its own), under its lock.  Live: the guest is
 * paused only for the switch; it runs on the new QEMU unless
 * LIBXLSNAP_MIGRATE_PAUSED, paused before or not (as Xen's xl).  A
 * journal left by an interrupted operation is completed first; refused
 * (one message): another driver, a domain not running, a disk in a
 * block job, a journal that recovery cannot complete.  Any failure
 * (a stream that has not moved for 20 s is one), or ao_abort before
 * both QEMUs completed, leaves the domain on its old QEMU, running as
 * it was, and no new QEMU; when the old QEMU does not answer, the
 * journal is kept and the next command on the domain resumes it.
 * bandwidth: bytes/s, 0 for no limit.  progress (NULL: none): the
 * memory sent ("memory").
 */
LIBXLSNAP_EXPORT
int libxlsnap_domain_migrate_local(libxlsnap_ctx *ctx, const char *domain,
                                   unsigned flags, uint64_t bandwidth,
                                   uint32_t *domid_r,
                                   const libxlsnap_progress_how *progress,
                                   const libxl_asyncop_how *ao_how)
                                   LIBXL_EXTERNAL_CALLERS_ONLY;
/*
 * Before a migration to another host: *nb_snapshots_r, the number of
 * the domain's snapshot records that stay on this host (0 when the
 * records follow: the RADOS store, or a state dir on shared storage,
 * $XL_SNAPSHOT_STATE_SHARED=1 or a network file system).
 */
LIBXLSNAP_EXPORT
int libxlsnap_domain_records_stay_behind(libxlsnap_ctx *ctx,
                                         const char *domain,
                                         int *nb_snapshots_r);

/*
 * LIBXLSNAP_HAVE_DOMAIN_RECORDS_EXPORT: libxlsnap_domain_records_export
 * and _import, a domain's records carried between hosts that share its
 * images but not a record store.
 */
#define LIBXLSNAP_HAVE_DOMAIN_RECORDS_EXPORT 1
/*
 * The domain's records (its domain record, with the active images, and
 * every snapshot record) as one JSON document, *json_r (malloc'ed):
 * {"format": "libxl-snapshot-records", "version": 1, "uuid", "name",
 * "domain", "snapshots": [...]}.  Refused while a journal is left or a
 * disk is in a block job.
 */
LIBXLSNAP_EXPORT
int libxlsnap_domain_records_export(libxlsnap_ctx *ctx, const char *domain,
                                    char **json_r,
                                    const libxl_asyncop_how *ao_how)
                                    LIBXL_EXTERNAL_CALLERS_ONLY;
/* Flags for libxlsnap_domain_records_import(). */
#define LIBXLSNAP_IMPORT_FORCE        (1U << 0)   /* replace its records */
/*
 * Writes the records of such a document into this host's store, as the
 * domain's (whose uuid must be the document's), all or nothing, under
 * its lock.  Refused (one message, nothing written): a corrupt or
 * unknown document, another uuid, records already there (unless
 * LIBXLSNAP_IMPORT_FORCE), a running domain not on the document's
 * active images, an image the records name that is not reachable from
 * this host (each named: files, LVM volumes, RBD images, memory).
 */
LIBXLSNAP_EXPORT
int libxlsnap_domain_records_import(libxlsnap_ctx *ctx, const char *domain,
                                    const char *json, unsigned flags,
                                    const libxl_asyncop_how *ao_how)
                                    LIBXL_EXTERNAL_CALLERS_ONLY;

/*
 * LIBXLSNAP_HAVE_SNAPSHOT_SIZE: libxlsnap_domain_snapshot_sizes, what
 * each snapshot costs on the host and what deleting it would free.
 */
#define LIBXLSNAP_HAVE_SNAPSHOT_SIZE 1

/*
 * One disk of one snapshot, in bytes; a figure that is not this disk's
 * kind is 0.
 */
typedef struct libxlsnap_disk_size {
    char *vdev;
    libxlsnap_disk_snapshot_type type;
    /* external (qcow2, VHD): the image it froze, as the host's file
     * system holds it (its file's allocated blocks: qemu-img info's
     * actual-size) */
    uint64_t allocated;
    /* internal: the clusters (data, L2 tables, its L1 table) that this
     * qcow2 snapshot alone references (none other, not the active
     * state); on a running domain, as of QEMU's last flush */
    uint64_t exclusive;
    /* lvm: the snapshot volume's copy-on-write bytes in use, and its
     * size (cow * 100 / cow_size: the percent filled) */
    uint64_t cow, cow_size;
    /* rbd: the snapshot's `rbd du` figure (the objects that changed
     * since the image's previous snapshot, whole objects) */
    uint64_t rbd;
    /* what deleting the snapshot would free on this disk (the rule per
     * kind: libxlsnap_domain_snapshot_sizes) */
    uint64_t frees;
    char *problem;                  /* why a figure is 0 that may not be
                                       (the image is missing...), or NULL */
} libxlsnap_disk_size;

typedef struct libxlsnap_snapshot_size {
    char *name;
    uint64_t memory;                /* the memory image's allocated bytes
                                       (0: disk-only) */
    char *memory_problem;           /* why memory is 0 for a snapshot with
                                       a memory image (missing...), or
                                       NULL */
    uint64_t own;                   /* memory and each disk's figure */
    uint64_t frees;                 /* memory and each disk's frees */
    libxlsnap_disk_size *disks;
    int num_disks;
} libxlsnap_snapshot_size;

/* One disk's snapshots together */
typedef struct libxlsnap_disk_size_total {
    char *vdev;
    uint64_t own;                   /* the sum of its snapshots' figures */
} libxlsnap_disk_size_total;

typedef struct libxlsnap_domain_sizes {
    char *domain;
    libxl_uuid uuid;
    libxlsnap_snapshot_size *snapshots;  /* in the order of the list */
    int num_snapshots;
    libxlsnap_disk_size_total *disks;    /* by vdev */
    int num_disks;
    uint64_t memory;                /* the memory images' sum */
    uint64_t total;                 /* memory and every disk's own */
} libxlsnap_domain_sizes;

LIBXLSNAP_EXPORT void libxlsnap_domain_sizes_init(libxlsnap_domain_sizes *p);
LIBXLSNAP_EXPORT void libxlsnap_domain_sizes_dispose(libxlsnap_domain_sizes *p);
/* The sizes as JSON (malloc'ed; NULL on failure), bytes throughout */
LIBXLSNAP_EXPORT
char *libxlsnap_domain_sizes_to_json(libxlsnap_ctx *ctx,
                                     const libxlsnap_domain_sizes *p);

/*
 * What each snapshot of domain (name: that one only, NULL: all) costs,
 * per disk, and what deleting it would free (its frees, by the way
 * libxlsnap_domain_snapshot_delete merges):
 *  - internal: its exclusive clusters (QEMU frees those whose refcount
 *    drops to 0);
 *  - external on a frozen image F: nothing built on F, F is removed
 *    (unless it is a base image, kept): F's allocated size; one image C
 *    built on F, C is committed into F and removed: C's allocated size
 *    less what F grows by (C's clusters where F has none); C holding
 *    internal snapshots, or several images built on F, F is streamed
 *    into each and removed: F's size less what each grows by (a base
 *    image stays: 0).  VHD: the overlay, coalesced into F and
 *    removed: its allocated size less the blocks F gains;
 *  - lvm: the snapshot volume's size (thin: its bytes in use);
 *  - rbd: its rbd du figure;
 *  - and the memory image's allocated size.
 * Each figure is of the images as they are now, without their
 * metadata's changes (a refcount block, a table): close, not exact.
 * Nothing is changed, no lock is taken; a figure that cannot be had is
 * 0 with its disk's problem set, and the call still succeeds.
 * ERROR_NOTFOUND: no such domain, or no snapshot name.
 */
LIBXLSNAP_EXPORT
int libxlsnap_domain_snapshot_sizes(libxlsnap_ctx *ctx, const char *domain,
                                    const char *name,
                                    libxlsnap_domain_sizes *sizes_r);

/*
 * LIBXLSNAP_HAVE_SNAPSHOT_DIFF: libxlsnap_domain_snapshot_diff, the
 * changed extents of each disk between two points.
 */
#define LIBXLSNAP_HAVE_SNAPSHOT_DIFF 1

/* How a disk's extents were found (libxlsnap_disk_diff.methods, bits) */
#define LIBXLSNAP_DIFF_ALLOCATION (1U << 0) /* the overlays' own allocation
                                               (qemu-img map): no data read */
#define LIBXLSNAP_DIFF_MAPPING    (1U << 1) /* qcow2 L1/L2 tables of two
                                               states of one image compared */
#define LIBXLSNAP_DIFF_COMPARE    (1U << 2) /* ... and the data of the
                                               clusters whose mapping differs
                                               read, equal ones left out */
#define LIBXLSNAP_DIFF_BITMAP     (1U << 3) /* checkpoints' dirty bitmaps */

/* libxlsnap_domain_snapshot_diff() flags */
#define LIBXLSNAP_DIFF_NO_DATA    (1U << 0) /* internal snapshots: compare the
                                               mapping only, read no data (a
                                               cluster rewritten with the
                                               same data is reported) */

typedef struct libxlsnap_extent {
    uint64_t offset, length;        /* bytes, in the guest's disk */
} libxlsnap_extent;

typedef struct libxlsnap_disk_diff {
    char *vdev;
    unsigned methods;               /* LIBXLSNAP_DIFF_ALLOCATION... */
    uint64_t size;                  /* the disk's virtual size at TO */
    uint64_t granularity;           /* extents are multiples of it (but
                                       at the disk's end): the cluster
                                       size, or a bitmap's granularity */
    libxlsnap_extent *extents;      /* sorted, merged: none touch */
    int num_extents;
    uint64_t total;                 /* bytes: the sum of the lengths */
} libxlsnap_disk_diff;

typedef struct libxlsnap_domain_diff {
    char *domain;                   /* the domain's name */
    libxl_uuid uuid;
    char *from, *to;                /* to: "now" for the running state */
    libxlsnap_disk_diff *disks;
    int num_disks;
} libxlsnap_domain_diff;

LIBXLSNAP_EXPORT void libxlsnap_domain_diff_init(libxlsnap_domain_diff *p);
LIBXLSNAP_EXPORT void libxlsnap_domain_diff_dispose(libxlsnap_domain_diff *p);
/* "allocation", "mapping", "compare" (mapping, then data), "bitmap",
 * "allocation+compare"... (static) */
LIBXLSNAP_EXPORT const char *libxlsnap_diff_methods_to_string(unsigned m);

/*
 * The extents of each disk whose data may differ between snapshot
 * from and snapshot to (to NULL or "now": the domain's disks as they
 * are), from must be to's ancestor (now: the current snapshot or one
 * of its ancestors).  vdev (may be NULL: every disk both points have)
 * limits it to one disk.  Per disk, by how it was snapshotted:
 *  - external: the allocation of the overlays between the two points
 *    (each overlay's own, qemu-img map), no guest data read; from's
 *    image must still be in to's backing chain (a commit or a copy
 *    since: refused);
 *  - internal (qcow2): the L1/L2 tables of the two states of the image
 *    compared, and the data of the clusters whose mapping differs read
 *    to leave out those that are equal (LIBXLSNAP_DIFF_NO_DATA: not);
 *  - mixed (an internal snapshot, then external ones): both, per layer;
 *  - from (and to) a checkpoint, not a snapshot: the union of the
 *    checkpoints' bitmaps over the disk's chain (LIBXLSNAP_DIFF_BITMAP),
 *    read over NBD (offline qemu-nbd; live, a temporary bitmap QEMU
 *    exports on a unix socket in the run dir); a bitmap QEMU died with
 *    (in-use, inconsistent) is refused.  A snapshot and a checkpoint
 *    are not diffed against each other; a name both are is a snapshot
 *    unless to is a checkpoint.
 * Extents are rounded out to the cluster size (a bitmap's granularity).  A running domain, to
 * now: QEMU's image metadata is flushed first by QMP stop (then cont,
 * if it ran): the guest is paused for that flush, milliseconds.
 * Refused (one line): an unknown snapshot, from not before to, a disk
 * not in both (vdev), a disk of another kind (LVM, RBD, VHD), a
 * journal left or a disk in a block job.  *diff_r (caller disposes)
 * is written when the operation ends.  Changes nothing.  Abort: while
 * it waits for the domain's lock; the reading itself (metadata; the
 * compare reads at most two clusters a candidate) is one step that
 * runs to its end.
 */
LIBXLSNAP_EXPORT
int libxlsnap_domain_snapshot_diff(libxlsnap_ctx *ctx, const char *domain,
                                   const char *from, const char *to,
                                   const char *vdev, unsigned flags,
                                   libxlsnap_domain_diff *diff_r,
                                   const libxl_asyncop_how *ao_how)
                                   LIBXL_EXTERNAL_CALLERS_ONLY;

/* Checkpoints ---------------------------------------------------- */

/*
 * A checkpoint: a named point for incremental backups, as libvirt's
 * domaincheckpoint.  One persistent dirty bitmap named after it on each
 * of its disks' active images, all started at one instant (one QMP
 * transaction while the domain runs, `qemu-img bitmap` while it is shut
 * off).  Only the newest checkpoint's bitmap records: making one
 * disables the previous newest one's bitmap at the same instant, so
 * bitmap X holds the writes from X until the next checkpoint, and what
 * changed since X is the union of X's bitmap and its successors'.
 * Deleting X merges its bitmap into its predecessor's.  The records are
 * libxl-json, in the domain's record store beside the snapshots'
 * (checkpoint-NAME.libxl-json).
 */
typedef struct libxlsnap_checkpoint_disk {
    char *vdev;                     /* "xvda" */
    char *bitmap;                   /* the bitmap's name (the checkpoint's) */
    char *image;                    /* the active image it was added to */
    libxl_disk_format format;
    /*
     * Output of list and get only: why the bitmap cannot be trusted
     * ("missing", "inconsistent: ..."), NULL when it can.
     */
    char *problem;
} libxlsnap_checkpoint_disk;

typedef struct libxlsnap_checkpoint {
    char *name;
    char *description;
    uint64_t creation_time;         /* seconds since the epoch */
    uint32_t creation_nsec;
    char *parent;                   /* the checkpoint before it, or NULL */
    /* deleted checkpoints whose bitmaps were merged into this one's */
    char **merged;
    int num_merged;
    char *snapshot;                 /* taken with this snapshot, or NULL */
    char *domain_name;
    libxl_uuid domain_uuid;
    libxlsnap_checkpoint_disk *disks;
    int num_disks;
} libxlsnap_checkpoint;

LIBXLSNAP_EXPORT void libxlsnap_checkpoint_init(libxlsnap_checkpoint *p);
LIBXLSNAP_EXPORT void libxlsnap_checkpoint_dispose(libxlsnap_checkpoint *p);
LIBXLSNAP_EXPORT
void libxlsnap_checkpoint_list_free(libxlsnap_checkpoint *list, int nb);
/* The record as libxl-json text (malloc'ed; NULL on failure). */
LIBXLSNAP_EXPORT
char *libxlsnap_checkpoint_to_json(libxlsnap_ctx *ctx,
                                   const libxlsnap_checkpoint *p);
/* libvirt's <domaincheckpoint> XML of it (malloc'ed; NULL on failure). */
LIBXLSNAP_EXPORT
char *libxlsnap_checkpoint_to_xml(libxlsnap_ctx *ctx,
                                  const libxlsnap_checkpoint *p);

/*
 * Makes checkpoint->name (validated as a snapshot name; a duplicate is
 * refused) on the disks checkpoint->disks names (their vdev only; none:
 * every disk), with ->description.  Every disk's active image must be
 * qcow2.  Live: one QMP transaction; offline: qemu-img bitmap.  On
 * success *checkpoint holds the record as stored (written when the
 * operation ends).  Failure, abort or crash: nothing is left (a crash
 * part-way leaves a journal the next operation on the domain rolls
 * back).  flags: none yet (0).
 */
LIBXLSNAP_EXPORT
int libxlsnap_checkpoint_create(libxlsnap_ctx *ctx, const char *domain,
                                libxlsnap_checkpoint *checkpoint,
                                unsigned flags,
                                const libxlsnap_progress_how *progress,
                                const libxl_asyncop_how *ao_how)
                                LIBXL_EXTERNAL_CALLERS_ONLY;
/* The domain's checkpoints, oldest first (*list_r: _list_free).  With
 * LIBXLSNAP_CHECKPOINT_LIST_CHECK each disk's ->problem is filled
 * (reads the images' bitmaps: slower). */
#define LIBXLSNAP_CHECKPOINT_LIST_CHECK (1U << 0)
LIBXLSNAP_EXPORT
int libxlsnap_checkpoint_list(libxlsnap_ctx *ctx, const char *domain,
                              unsigned flags, libxlsnap_checkpoint **list_r,
                              int *nb_r);
/* One checkpoint, its disks' ->problem filled: ERROR_NOTFOUND if none. */
LIBXLSNAP_EXPORT
int libxlsnap_checkpoint_get(libxlsnap_ctx *ctx, const char *domain,
                             const char *name,
                             libxlsnap_checkpoint *checkpoint_r);
/*
 * Deletes a checkpoint: its bitmap is merged into its predecessor's on
 * each disk (re-enabled when it was the newest), or, for the first one,
 * removed.  Live: one QMP transaction; offline: qemu-img bitmap, under a
 * journal that the next operation completes if it is cut.  flags: none
 * yet (0).
 */
LIBXLSNAP_EXPORT
int libxlsnap_checkpoint_delete(libxlsnap_ctx *ctx, const char *domain,
                                const char *name, unsigned flags,
                                const libxlsnap_progress_how *progress,
                                const libxl_asyncop_how *ao_how)
                                LIBXL_EXTERNAL_CALLERS_ONLY;
/*
 * A snapshot and a checkpoint at one instant: as
 * libxlsnap_domain_snapshot_create, and checkpoint (its name,
 * description; disks: ignored, every disk the snapshot takes that is
 * qcow2 after it) made in the same QMP transaction when the domain runs
 * and every disk's snapshot is taken in QEMU's transaction, else right
 * after the snapshot, under the same lock, the guest still paused (a
 * failure of the checkpoint then deletes the snapshot again).
 */
LIBXLSNAP_EXPORT
int libxlsnap_domain_snapshot_create_checkpoint(libxlsnap_ctx *ctx,
                                 const char *domain,
                                 libxlsnap_domain_snapshot *snapshot,
                                 libxlsnap_checkpoint *checkpoint,
                                 unsigned flags,
                                 const libxlsnap_progress_how *progress,
                                 const libxl_asyncop_how *ao_how)
                                 LIBXL_EXTERNAL_CALLERS_ONLY;

#endif /* LIBXL_SNAPSHOT_H */

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
