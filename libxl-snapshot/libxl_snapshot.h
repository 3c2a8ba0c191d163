/*
 * libxl_snapshot.h - domain snapshots and block jobs for libxl domains
 *
 * A libxl-style API, built out of tree on libxenlight's public
 * interface.  Conventions follow libxl.h:
 *
 *  - Every function returns int rc: 0 on success or a negative
 *    libxl ERROR_* code (libxl_error_to_string() names them).
 *  - Slow operations take `const libxl_asyncop_how *ao_how`.  NULL
 *    means synchronous: the call returns when the operation is done.
 *    With a callback, the call returns 0 at once and the callback is
 *    made later, from inside libxl_snapshot_osevent_afterpoll() or
 *    libxl_snapshot_event_loop_run(), with the final rc.  The
 *    libxl_ctx* handed to that callback is the libxenlight context of
 *    the xen driver, or NULL on the qemu driver; use for_callback.
 *    The for_event form of libxl_asyncop_how is not supported
 *    (ERROR_INVAL).
 *  - A running asynchronous operation can be cancelled with
 *    libxl_snapshot_ao_abort().  Its callback then comes later, from
 *    the loop (never from inside ao_abort), with ERROR_ABORTED; or with
 *    its own rc when it had finished, or was at a step that does not
 *    stop (a QMP exchange, a live memory save's copy, the removal of
 *    merged images): such a step finishes, and the operation then goes
 *    on or stops at its next step that can.  An operation still waiting
 *    for the domain's lock stops having done nothing.  An abort does not
 *    always undo: what it leaves, per operation (each is also a state
 *    libxl_domain_snapshot_check finds consistent):
 *     - snapshot_check: nothing changed; nothing reported (*num_r 0).
 *     - snapshot_create: as a failure: no record, the disks already
 *       snapshotted undone, no memory image; a running domain runs on
 *       as before.  A live checkpoint's memory copy does not stop: the
 *       abort takes effect when the image is synced, then undone.
 *     - snapshot_revert: before any disk is changed: nothing changed, a
 *       domain that was stopped for it started again on its old images
 *       (that restart is never aborted).  While its disks are reverted:
 *       as a failure: the new overlays removed and the domain started
 *       as it was, or, once an internal snapshot was applied (which
 *       cannot be undone), the domain left shut off with its journal,
 *       which snapshot_recover (or any next command) completes.  Once
 *       the records say reverted, only the start is left: the QEMU
 *       being started (or restored from the memory image) is killed,
 *       and the domain is left reverted and shut off.
 *     - block_commit: the job is cancelled, no pivot: the chain and the
 *       active image are as before and read the same data, the images
 *       are kept.  But base may already hold part of top: the snapshots
 *       whose data was in base are dropped (records removed, with what
 *       only they held; logged), the others kept.
 *     - block_stream: the job is cancelled: the active image holds part
 *       of the data it was pulling in, the chain and the records are
 *       unchanged.
 *     - snapshot_delete: the merge running is cancelled and the delete
 *       stops there.  Before it wrote anything, the snapshot is kept
 *       unchanged; once it wrote into the snapshot's image, that
 *       snapshot's data is lost and its record goes (as after an
 *       aborted commit), the images stay.  Snapshots already deleted
 *       stay deleted.
 *     - snapshot_recover, snapshot_redefine, blockjob_abort,
 *       blockjob_pivot: no step of theirs stops on an abort; they end
 *       with their own rc.
 *  - Objects returned to the caller are owned by the caller and freed
 *    with the matching _dispose() (or _list_free()).
 *
 * Domains are named as in xl: by name, by domid, or by uuid.  A domain
 * that is not running is found through the configuration it was last
 * started from (recorded by this library), or through
 * <XEN_CONFIG_DIR>/<name>.cfg, or is given as the path of an xl config
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
#define LIBXL_SNAPSHOT_EXPORT __attribute__((visibility("default")))
#else
#define LIBXL_SNAPSHOT_EXPORT
#endif

/* LIBXL_HAVE_SNAPSHOT: the functions and types in this file exist. */
#define LIBXL_HAVE_SNAPSHOT 1
/* LIBXL_HAVE_SNAPSHOT_QEMU_DRIVER: domains may be plain QEMU processes. */
#define LIBXL_HAVE_SNAPSHOT_QEMU_DRIVER 1

#define LIBXL_SNAPSHOT_VERSION 0

/* Environment variables read by libxl_snapshot_ctx_alloc(). */
#define LIBXL_SNAPSHOT_ENV_DRIVER    "XL_SNAPSHOT_DRIVER"    /* xen|qemu */
#define LIBXL_SNAPSHOT_ENV_STATE_DIR "XL_SNAPSHOT_STATE_DIR"
#define LIBXL_SNAPSHOT_ENV_RUN_DIR   "XL_SNAPSHOT_RUN_DIR"

typedef struct libxl_snapshot_ctx libxl_snapshot_ctx;

typedef enum libxl_snapshot_driver {
    LIBXL_SNAPSHOT_DRIVER_AUTO = 0,
    LIBXL_SNAPSHOT_DRIVER_XEN = 1,
    LIBXL_SNAPSHOT_DRIVER_QEMU = 2,
} libxl_snapshot_driver;

/* How one disk takes part in a snapshot. */
typedef enum libxl_disk_snapshot_type {
    LIBXL_DISK_SNAPSHOT_TYPE_DEFAULT = 0,  /* internal on qcow2, else external */
    LIBXL_DISK_SNAPSHOT_TYPE_INTERNAL = 1, /* qcow2 snapshot inside the image */
    LIBXL_DISK_SNAPSHOT_TYPE_EXTERNAL = 2, /* image frozen, new qcow2 overlay */
    LIBXL_DISK_SNAPSHOT_TYPE_NO = 3,       /* disk not snapshotted */
    LIBXL_DISK_SNAPSHOT_TYPE_LVM = 4,      /* LVM snapshot volume (default
                                              for a disk on an LV) */
} libxl_disk_snapshot_type;

/* State of the domain when the snapshot was taken. */
typedef enum libxl_snapshot_domain_state {
    LIBXL_SNAPSHOT_DOMAIN_STATE_SHUTOFF = 0,
    LIBXL_SNAPSHOT_DOMAIN_STATE_RUNNING = 1,
    LIBXL_SNAPSHOT_DOMAIN_STATE_PAUSED = 2,
} libxl_snapshot_domain_state;

typedef struct libxl_disk_snapshot {
    char *vdev;                     /* "xvda" */
    libxl_disk_snapshot_type type;
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
     * use for the new overlay, or NULL for the default name
     * <dir of image>/<stem>.<snapshot>.qcow2.
     */
    char *overlay;
    char *tag;                      /* internal: qcow2 snapshot name;
                                       lvm: the snapshot LV's name */
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
} libxl_disk_snapshot;

typedef struct libxl_domain_snapshot {
    char *name;
    char *description;
    uint64_t creation_time;         /* seconds since the epoch */
    uint32_t creation_nsec;         /* and nanoseconds: orders a second */
    char *parent;                   /* NULL for a root */
    char **children;                /* computed from the tree */
    int num_children;
    bool current;
    libxl_snapshot_domain_state state;
    /*
     * The memory image, NULL for a disk-only snapshot.  On input to
     * libxl_domain_snapshot_create: NULL or "no", disk-only; "" or
     * "yes", <state dir>/<domain uuid>/<name>.save; else that path.
     */
    char *memory;
    /*
     * Guest quiesce (LIBXL_SNAPSHOT_CREATE_QUIESCE*): in the record,
     * "frozen" when the guest's file systems were frozen for the disk
     * snapshot, "crash-consistent" when freezing was tried and failed;
     * NULL when not asked.  agent, input only: the guest agent's socket,
     * overriding the domain config's channel.
     */
    char *quiesce;
    char *agent;
    char *domain_name;
    libxl_uuid domain_uuid;
    libxl_disk_snapshot *disks;
    int num_disks;
} libxl_domain_snapshot;

/* A domain as the snapshot layer sees it. */
typedef struct libxl_snapshot_domain {
    char *name;
    libxl_uuid uuid;
    uint32_t domid;                 /* INVALID_DOMID when shut off */
    libxl_snapshot_domain_state state;
    char *config_file;              /* xl config it was started from */
    libxl_device_disk *disks;       /* pdev_path: the active image */
    int num_disks;
} libxl_snapshot_domain;

/* Flags for libxl_domain_snapshot_create(). */
#define LIBXL_SNAPSHOT_CREATE_DRY_RUN      (1U << 0) /* plan only */
#define LIBXL_SNAPSHOT_CREATE_NO_METADATA  (1U << 1) /* no record */
/*
 * With snapshot->memory (a memory checkpoint): copy memory while the
 * guest runs, and take the disks at the final pause.  Without it, the
 * guest is paused for the whole save (stop-the-world).
 */
#define LIBXL_SNAPSHOT_CREATE_LIVE         (1U << 2)
/*
 * Disk-only snapshots of a running domain: freeze the guest's file
 * systems through the QEMU guest agent (guest-fsfreeze-freeze) for the
 * disk transaction, and thaw them after, whatever happened.  _QUIESCE:
 * fail if the agent cannot freeze; _QUIESCE_TRY: take the snapshot
 * crash-consistent then, and say so (in the record too).
 */
#define LIBXL_SNAPSHOT_CREATE_QUIESCE      (1U << 3)
#define LIBXL_SNAPSHOT_CREATE_QUIESCE_TRY  (1U << 4)
/* Flags for libxl_domain_snapshot_delete(). */
#define LIBXL_SNAPSHOT_DELETE_METADATA_ONLY (1U << 0)
#define LIBXL_SNAPSHOT_DELETE_CHILDREN      (1U << 1) /* and descendants */
#define LIBXL_SNAPSHOT_DELETE_CHILDREN_ONLY (1U << 2) /* descendants only */
/* Flags for libxl_domain_snapshot_revert(). */
#define LIBXL_SNAPSHOT_REVERT_RUNNING      (1U << 0)
#define LIBXL_SNAPSHOT_REVERT_PAUSED       (1U << 1)
/* a running domain with LVM disks may be stopped for the merge */
#define LIBXL_SNAPSHOT_REVERT_FORCE        (1U << 2)

/* Context ------------------------------------------------------- */

/*
 * flags: none.  lg: where messages go; required.  The driver is
 * chosen from $XL_SNAPSHOT_DRIVER, else xen when a hypervisor is
 * present, else qemu.  Fails with ERROR_FAIL when the xen driver is
 * chosen and libxenlight cannot be initialised.
 */
LIBXL_SNAPSHOT_EXPORT
int libxl_snapshot_ctx_alloc(libxl_snapshot_ctx **pctx, int version,
                             unsigned flags, xentoollog_logger *lg);
LIBXL_SNAPSHOT_EXPORT
int libxl_snapshot_ctx_free(libxl_snapshot_ctx *ctx /* NULL is OK */);
LIBXL_SNAPSHOT_EXPORT
libxl_snapshot_driver libxl_snapshot_ctx_driver(libxl_snapshot_ctx *ctx);
LIBXL_SNAPSHOT_EXPORT
const char *libxl_snapshot_driver_to_string(libxl_snapshot_driver d);

/* Event loop integration, as libxl_osevent_beforepoll/afterpoll. */
LIBXL_SNAPSHOT_EXPORT
int libxl_snapshot_osevent_beforepoll(libxl_snapshot_ctx *ctx,
                                      int *nfds_io, struct pollfd *fds,
                                      int *timeout_upd, struct timeval now);
LIBXL_SNAPSHOT_EXPORT
void libxl_snapshot_osevent_afterpoll(libxl_snapshot_ctx *ctx, int nfds,
                                      const struct pollfd *fds,
                                      struct timeval now);
/*
 * Runs the library's own poll loop until no asynchronous operation is
 * outstanding, or for at most timeout_ms (-1: no limit).  Returns 0,
 * or ERROR_TIMEDOUT if operations are still outstanding.
 */
LIBXL_SNAPSHOT_EXPORT
int libxl_snapshot_event_loop_run(libxl_snapshot_ctx *ctx, int timeout_ms);
LIBXL_SNAPSHOT_EXPORT
int libxl_snapshot_ao_abort(libxl_snapshot_ctx *ctx,
                            const libxl_asyncop_how *how);

/* Types -------------------------------------------------------- */

LIBXL_SNAPSHOT_EXPORT void libxl_disk_snapshot_init(libxl_disk_snapshot *p);
LIBXL_SNAPSHOT_EXPORT void libxl_disk_snapshot_dispose(libxl_disk_snapshot *p);
LIBXL_SNAPSHOT_EXPORT void libxl_domain_snapshot_init(libxl_domain_snapshot *p);
LIBXL_SNAPSHOT_EXPORT void libxl_domain_snapshot_dispose(libxl_domain_snapshot *p);
LIBXL_SNAPSHOT_EXPORT
void libxl_domain_snapshot_list_free(libxl_domain_snapshot *list, int nb);
LIBXL_SNAPSHOT_EXPORT void libxl_snapshot_domain_init(libxl_snapshot_domain *p);
LIBXL_SNAPSHOT_EXPORT void libxl_snapshot_domain_dispose(libxl_snapshot_domain *p);
LIBXL_SNAPSHOT_EXPORT
void libxl_snapshot_domain_list_free(libxl_snapshot_domain *list, int nb);

LIBXL_SNAPSHOT_EXPORT
const char *libxl_disk_snapshot_type_to_string(libxl_disk_snapshot_type t);
LIBXL_SNAPSHOT_EXPORT
int libxl_disk_snapshot_type_from_string(const char *s,
                                         libxl_disk_snapshot_type *t);
LIBXL_SNAPSHOT_EXPORT
const char *libxl_snapshot_domain_state_to_string(
    libxl_snapshot_domain_state s);

/* The record, as libxl-json.  Returns a malloc'ed string or NULL. */
LIBXL_SNAPSHOT_EXPORT
char *libxl_domain_snapshot_to_json(libxl_snapshot_ctx *ctx,
                                    const libxl_domain_snapshot *p);
LIBXL_SNAPSHOT_EXPORT
int libxl_domain_snapshot_from_json(libxl_snapshot_ctx *ctx,
                                    libxl_domain_snapshot *p,
                                    const char *s);

/*
 * Parses an xl.snapshot.cfg(5) file (the 2014 RFC's format: name,
 * description, memory, type, disk=[...]) into *snapshot.  Any other
 * setting, a value of the wrong kind (memory = 1: not a string) and a
 * relative path are refused: ERROR_INVAL, one line naming the file,
 * the line and the setting.
 */
LIBXL_SNAPSHOT_EXPORT
int libxl_domain_snapshot_config_parse(libxl_snapshot_ctx *ctx,
                                       const char *config_file,
                                       libxl_domain_snapshot *snapshot);
/*
 * Whether config_file reads as a snapshot config rather than a domain
 * config (xl snapshot-create FILE X).  A domain config sets something a
 * snapshot config does not take (vcpus=, kernel=, type="pv"...), or
 * memory= as a number (MB) with a disk= entry naming an image; anything
 * else is a snapshot config, and so is always a file with description=
 * or type="internal"|"external", which no domain config has.  False for
 * a file that cannot be read or is not in xl syntax.  Logs nothing but
 * a read error.
 */
LIBXL_SNAPSHOT_EXPORT
bool libxl_domain_snapshot_config_is_snapshot(libxl_snapshot_ctx *ctx,
                                              const char *config_file);
/*
 * Parses one libvirt-style disk spec "vdev[,snapshot=TYPE][,file=PATH]"
 * into *disk (initialised by the caller).
 */
LIBXL_SNAPSHOT_EXPORT
int libxl_disk_snapshot_parse_spec(libxl_snapshot_ctx *ctx,
                                   const char *spec,
                                   libxl_disk_snapshot *disk);
/*
 * 0 if name can be a snapshot name, else ERROR_INVAL: at most 200
 * bytes, no '/', ',', "..", blanks or control characters, no leading
 * '.' or '-',
 * not digits only (qemu-img would take it for a snapshot ID).
 */
LIBXL_SNAPSHOT_EXPORT
int libxl_snapshot_name_check(const char *name);

/* Domains ------------------------------------------------------ */

LIBXL_SNAPSHOT_EXPORT
int libxl_snapshot_domain_lookup(libxl_snapshot_ctx *ctx,
                                 const char *domain,
                                 libxl_snapshot_domain *info_r);
/* Running domains of the qemu driver (ERROR_NI on xen: use xl). */
LIBXL_SNAPSHOT_EXPORT
int libxl_snapshot_domain_list(libxl_snapshot_ctx *ctx,
                               libxl_snapshot_domain **list_r, int *nb_r);
/*
 * qemu driver: start a domain from an xl config.  Disks whose image
 * was replaced by a snapshot operation start on their active image.
 */
LIBXL_SNAPSHOT_EXPORT
int libxl_snapshot_domain_create(libxl_snapshot_ctx *ctx,
                                 const char *config_file, bool paused,
                                 uint32_t *domid_r);
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
LIBXL_SNAPSHOT_EXPORT
int libxl_snapshot_domain_start_overrides(libxl_snapshot_ctx *ctx,
                                          const char *config_file,
                                          char **disk_r, char **uuid_r);
LIBXL_SNAPSHOT_EXPORT
int libxl_snapshot_domain_destroy(libxl_snapshot_ctx *ctx,
                                  const char *domain);
LIBXL_SNAPSHOT_EXPORT
int libxl_snapshot_domain_pause(libxl_snapshot_ctx *ctx, const char *domain);
LIBXL_SNAPSHOT_EXPORT
int libxl_snapshot_domain_unpause(libxl_snapshot_ctx *ctx,
                                  const char *domain);
/*
 * Runs one HMP command line in the domain's QEMU; *output_r gets the
 * reply (malloc'ed).  Meant for tests and debugging, as
 * libxl_qemu_monitor_command.
 */
LIBXL_SNAPSHOT_EXPORT
int libxl_snapshot_domain_monitor_command(libxl_snapshot_ctx *ctx,
                                          const char *domain,
                                          const char *command_line,
                                          char **output_r);

/* Snapshots ---------------------------------------------------- */

/*
 * Takes a snapshot of every disk of the domain.  On input,
 * snapshot->name (NULL: the local time, YYYYmmdd-HHMMSS), ->description, and
 * optionally ->disks with per-disk choices (vdev, type, overlay); disks
 * not named get the default.  On success, *snapshot holds the record
 * as stored.  A running domain's disks are snapshotted in one QMP
 * transaction (one instant); a shut-off domain's with qemu-img.  On
 * failure nothing is left behind.
 */
/*
 * Progress of a long step of an operation (a memory checkpoint's save,
 * or its restore by a revert): what ("memory", "disk xvda"; a step
 * ends where the next begins), bytes done and to do
 * (done <= total; total may grow while a live save copies pages the
 * guest dirtied again).  Called from the operation's event loop, in
 * the thread that runs it.  Where the step cannot be followed as it
 * runs (a Xen domain's save or restore, done by libxl), it is reported
 * once, when it is over.
 */
/* Both progress structs are copied: they need not outlive the call. */
typedef struct libxl_snapshot_progress_how {
    void (*callback)(const char *what, uint64_t done, uint64_t total,
                     void *for_callback);
    void *for_callback;
} libxl_snapshot_progress_how;

/* As libxl_domain_snapshot_create, with progress (NULL: none). */
LIBXL_SNAPSHOT_EXPORT
int libxl_domain_snapshot_create_progress(libxl_snapshot_ctx *ctx,
                                 const char *domain,
                                 libxl_domain_snapshot *snapshot,
                                 unsigned flags,
                                 const libxl_snapshot_progress_how *progress,
                                 const libxl_asyncop_how *ao_how)
                                 LIBXL_EXTERNAL_CALLERS_ONLY;

LIBXL_SNAPSHOT_EXPORT
int libxl_domain_snapshot_create(libxl_snapshot_ctx *ctx,
                                 const char *domain,
                                 libxl_domain_snapshot *snapshot,
                                 unsigned flags,
                                 const libxl_asyncop_how *ao_how)
                                 LIBXL_EXTERNAL_CALLERS_ONLY;

/*
 * libvirt's domainsnapshot XML (libxl_snapshot_xml.c): a record as XML
 * (malloc'ed, NULL on failure), and XML into a record (the caller's,
 * freed with _dispose).
 */
LIBXL_SNAPSHOT_EXPORT
char *libxl_domain_snapshot_to_xml(libxl_snapshot_ctx *ctx,
                                   const libxl_domain_snapshot *snapshot);
LIBXL_SNAPSHOT_EXPORT
int libxl_domain_snapshot_from_xml(libxl_snapshot_ctx *ctx, const char *xml,
                                   libxl_domain_snapshot *snapshot_r);

/* libxl_domain_snapshot_redefine flags */
#define LIBXL_SNAPSHOT_REDEFINE_CURRENT (1U << 0)  /* it becomes current */
/*
 * Adds (or replaces, same name) a record made elsewhere, metadata only
 * (libvirt's --redefine): its images must exist, its parent be in the
 * tree, its disks be the domain's.  Nothing is done to the disks.
 */
LIBXL_SNAPSHOT_EXPORT
int libxl_domain_snapshot_redefine(libxl_snapshot_ctx *ctx,
                                   const char *domain,
                                   const libxl_domain_snapshot *snapshot,
                                   unsigned flags,
                                   const libxl_asyncop_how *ao_how)
                                   LIBXL_EXTERNAL_CALLERS_ONLY;

LIBXL_SNAPSHOT_EXPORT
int libxl_domain_snapshot_list(libxl_snapshot_ctx *ctx, const char *domain,
                               libxl_domain_snapshot **list_r, int *nb_r);
LIBXL_SNAPSHOT_EXPORT
int libxl_domain_snapshot_get(libxl_snapshot_ctx *ctx, const char *domain,
                              const char *name,
                              libxl_domain_snapshot *snapshot_r);

/*
 * Deletes a snapshot, anywhere in the tree.  Internal disk snapshots
 * are removed from their image.  For an external one, the image it
 * froze is merged away so that every other snapshot and branch keeps
 * its data: with one image built on it, that image is committed into
 * it; with several (branches), it is streamed into each of them; with
 * none, it is removed.  LIBXL_SNAPSHOT_DELETE_METADATA_ONLY drops only
 * the record.  Children are re-parented to the deleted snapshot's
 * parent.  With _CHILDREN the descendants go too (leaves first), with
 * _CHILDREN_ONLY only they do.
 */
/*
 * Compares the domain's records with its images (files, backing chains
 * against the tree, qemu-img check, unowned files) and changes nothing.
 * 0 with *num_r == 0: consistent; else *problems_r holds one line per
 * discrepancy (free with libxl_snapshot_strings_free).
 */
LIBXL_SNAPSHOT_EXPORT
int libxl_domain_snapshot_check(libxl_snapshot_ctx *ctx, const char *domain,
                                char ***problems_r, int *num_r,
                                const libxl_asyncop_how *ao_how)
                                LIBXL_EXTERNAL_CALLERS_ONLY;
LIBXL_SNAPSHOT_EXPORT void libxl_snapshot_strings_free(char **s, int n);

/*
 * Finishes or undoes an operation a dead process left half-done on the
 * domain (every command does this first; this does only that).
 * *recovered_r: whether there was one.  What was done is logged.
 */
LIBXL_SNAPSHOT_EXPORT
int libxl_domain_snapshot_recover(libxl_snapshot_ctx *ctx,
                                  const char *domain, bool *recovered_r,
                                  const libxl_asyncop_how *ao_how)
                                  LIBXL_EXTERNAL_CALLERS_ONLY;

LIBXL_SNAPSHOT_EXPORT
int libxl_domain_snapshot_delete(libxl_snapshot_ctx *ctx,
                                 const char *domain, const char *name,
                                 unsigned flags,
                                 const libxl_asyncop_how *ao_how)
                                 LIBXL_EXTERNAL_CALLERS_ONLY;

/*
 * Brings the disks back to the snapshot.  A running domain is stopped
 * first.  Internal: qemu-img snapshot -a.  External: a fresh overlay
 * on the snapshot's image, so the snapshot stays reusable.  The
 * domain then runs or stays paused as it was when the snapshot was
 * taken, unless LIBXL_SNAPSHOT_REVERT_RUNNING / _PAUSED.
 */
LIBXL_SNAPSHOT_EXPORT
int libxl_domain_snapshot_revert(libxl_snapshot_ctx *ctx,
                                 const char *domain, const char *name,
                                 unsigned flags,
                                 const libxl_asyncop_how *ao_how)
                                 LIBXL_EXTERNAL_CALLERS_ONLY;

/*
 * As libxl_domain_snapshot_revert, with progress (NULL: none): the
 * memory image read back, for a snapshot with memory ("memory"), and a
 * disk's state copied out of an image others are built on ("disk
 * xvda": an internal snapshot in a frozen image).
 */
LIBXL_SNAPSHOT_EXPORT
int libxl_domain_snapshot_revert_progress(libxl_snapshot_ctx *ctx,
                                 const char *domain, const char *name,
                                 unsigned flags,
                                 const libxl_snapshot_progress_how *progress,
                                 const libxl_asyncop_how *ao_how)
                                 LIBXL_EXTERNAL_CALLERS_ONLY;

/* Block jobs --------------------------------------------------- */

/* LIBXL_HAVE_BLOCKJOB: block commit, block stream and job control. */
#define LIBXL_HAVE_BLOCKJOB 1

typedef enum libxl_blockjob_type {
    LIBXL_BLOCKJOB_TYPE_COMMIT = 1,        /* top below the active image */
    LIBXL_BLOCKJOB_TYPE_ACTIVE_COMMIT = 2, /* top is the active image */
    LIBXL_BLOCKJOB_TYPE_STREAM = 3,
} libxl_blockjob_type;

/*
 * A job's life, as QEMU's job.c: NEW -> RUNNING [-> READY] ->
 * CONCLUDED -> COMPLETED | FAILED | CANCELLED; ABORTING on the way to
 * CANCELLED.  READY: an active commit has caught up and waits for
 * pivot (base becomes active) or abort (the top stays active).
 */
typedef enum libxl_blockjob_state {
    LIBXL_BLOCKJOB_STATE_NEW = 0,
    LIBXL_BLOCKJOB_STATE_RUNNING = 1,
    LIBXL_BLOCKJOB_STATE_READY = 2,
    LIBXL_BLOCKJOB_STATE_ABORTING = 3,
    LIBXL_BLOCKJOB_STATE_CONCLUDED = 4,
    LIBXL_BLOCKJOB_STATE_COMPLETED = 5,
    LIBXL_BLOCKJOB_STATE_FAILED = 6,
    LIBXL_BLOCKJOB_STATE_CANCELLED = 7,
} libxl_blockjob_state;

typedef struct libxl_blockjob_info {
    char *id;                       /* our job id, "libxl-commit-xvda" */
    char *vdev;
    libxl_blockjob_type type;
    libxl_blockjob_state state;
    bool live;                      /* in QEMU (else qemu-img) */
    uint64_t offset, len;           /* bytes done, bytes to do */
    uint64_t speed;                 /* bytes/s limit, 0: none */
    char *top, *base;               /* images */
    char *error;                    /* why it failed */
} libxl_blockjob_info;

/* Called at each progress step of a job (info valid during the call). */
typedef struct libxl_blockjob_progress_how {
    void (*callback)(const libxl_blockjob_info *info, void *for_callback);
    void *for_callback;
} libxl_blockjob_progress_how;

/*
 * As libxl_domain_snapshot_delete, with progress (NULL: none): each
 * block job the delete runs (a commit or stream per disk and branch,
 * one after the other) is reported as libxl_block_commit reports its
 * one; a job starts at state NEW, ends at COMPLETED.
 */
LIBXL_SNAPSHOT_EXPORT
int libxl_domain_snapshot_delete_progress(libxl_snapshot_ctx *ctx,
                                 const char *domain, const char *name,
                                 unsigned flags,
                                 const libxl_blockjob_progress_how *progress,
                                 const libxl_asyncop_how *ao_how)
                                 LIBXL_EXTERNAL_CALLERS_ONLY;

/* libxl_block_commit_params.flags */
#define LIBXL_BLOCK_COMMIT_SHALLOW      (1U << 0) /* base: top's backing */
#define LIBXL_BLOCK_COMMIT_ACTIVE       (1U << 1) /* top may be active */
#define LIBXL_BLOCK_COMMIT_PIVOT        (1U << 2) /* at READY: pivot */
#define LIBXL_BLOCK_COMMIT_KEEP_OVERLAY (1U << 3) /* at READY: cancel */
#define LIBXL_BLOCK_COMMIT_DELETE       (1U << 4) /* remove merged images */
#define LIBXL_BLOCK_COMMIT_KEEP_RELATIVE (1U << 5) /* relative backing */
#define LIBXL_BLOCK_COMMIT_NO_WAIT      (1U << 6) /* live: return once
                                                     started */

typedef struct libxl_block_commit_params {
    const char *top;                /* NULL: the active image */
    const char *base;               /* NULL: the bottom of the chain */
    unsigned flags;
    uint64_t bandwidth;             /* bytes/s, 0: unlimited */
    int timeout_ms;                 /* 0: none; then the job is aborted */
} libxl_block_commit_params;

LIBXL_SNAPSHOT_EXPORT void libxl_blockjob_info_init(libxl_blockjob_info *p);
LIBXL_SNAPSHOT_EXPORT
void libxl_blockjob_info_dispose(libxl_blockjob_info *p);
/*
 * As JSON (malloc'ed, or NULL): id, vdev, type, state, live, offset,
 * len, speed, and top, base, error when known.
 */
LIBXL_SNAPSHOT_EXPORT
char *libxl_blockjob_info_to_json(libxl_snapshot_ctx *ctx,
                                  const libxl_blockjob_info *p);
LIBXL_SNAPSHOT_EXPORT
const char *libxl_blockjob_type_to_string(libxl_blockjob_type t);
LIBXL_SNAPSHOT_EXPORT
const char *libxl_blockjob_state_to_string(libxl_blockjob_state s);

/*
 * Merges top and the images below it, down to base, into base.
 * Running domain: QMP block-commit (an active commit waits for READY,
 * then pivots, cancels (KEEP_OVERLAY) or, with neither, completes the
 * ao at READY and leaves the job for libxl_blockjob_pivot/_abort).
 * Shut-off domain: qemu-img commit, then the image above top is
 * rebased onto base.  Records follow: snapshots whose data was merged
 * away are dropped, those whose image moved are re-pointed.  Refused
 * (nothing done) when another branch of the snapshot tree is built on
 * an image the commit would change.
 */
LIBXL_SNAPSHOT_EXPORT
int libxl_block_commit(libxl_snapshot_ctx *ctx, const char *domain,
                       const char *vdev,
                       const libxl_block_commit_params *params,
                       const libxl_blockjob_progress_how *progress,
                       const libxl_asyncop_how *ao_how)
                       LIBXL_EXTERNAL_CALLERS_ONLY;

/*
 * Pulls the data of the images between base (exclusive; NULL: all)
 * and the active image into the active image, which then backs onto
 * base.  Running: QMP block-stream; shut off: qemu-img rebase.
 */
LIBXL_SNAPSHOT_EXPORT
int libxl_block_stream(libxl_snapshot_ctx *ctx, const char *domain,
                       const char *vdev, const char *base,
                       uint64_t bandwidth, int timeout_ms, unsigned flags,
                       const libxl_blockjob_progress_how *progress,
                       const libxl_asyncop_how *ao_how)
                       LIBXL_EXTERNAL_CALLERS_ONLY;

/* The job on vdev: ERROR_NOTFOUND if there is none. */
LIBXL_SNAPSHOT_EXPORT
int libxl_blockjob_get(libxl_snapshot_ctx *ctx, const char *domain,
                       const char *vdev, libxl_blockjob_info *info_r);
LIBXL_SNAPSHOT_EXPORT
int libxl_blockjob_set_speed(libxl_snapshot_ctx *ctx, const char *domain,
                             const char *vdev, uint64_t bandwidth);
/*
 * Cancels the job.  If the process that started it still waits for
 * it, that process records the outcome; otherwise this call follows
 * the job to its end and records it.  The chain is left as before.
 */
LIBXL_SNAPSHOT_EXPORT
int libxl_blockjob_abort(libxl_snapshot_ctx *ctx, const char *domain,
                         const char *vdev, const libxl_asyncop_how *ao_how)
                         LIBXL_EXTERNAL_CALLERS_ONLY;
/* Completes a READY active commit: base becomes the active image. */
LIBXL_SNAPSHOT_EXPORT
int libxl_blockjob_pivot(libxl_snapshot_ctx *ctx, const char *domain,
                         const char *vdev, const libxl_asyncop_how *ao_how)
                         LIBXL_EXTERNAL_CALLERS_ONLY;

#endif /* LIBXL_SNAPSHOT_H */

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
