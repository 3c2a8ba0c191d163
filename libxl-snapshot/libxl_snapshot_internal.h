/*
 * libxl_snapshot_internal.h - internal interfaces of libxl-snapshot
 *
 * Layout, one area per file:
 *   libxl_snapshot_core.c      ctx, gc arena, logging, helpers
 *   libxl_snapshot_event.c     poll loop: fds, timers, ao, abort
 *   libxl_snapshot_exec.c      child processes run with argv
 *   libxl_snapshot_qmp.c       QMP client
 *   libxl_snapshot_json.c      record <-> libxl-json (yajl)
 *   libxl_snapshot_store.c     records on disk: atomic write, lock
 *   libxl_snapshot_config.c    xl domain / snapshot config parsing
 *   libxl_snapshot_chain.c     backing chain length: the limit, auto-commit
 *   libxlsnap_domain.c    domain lookup, active images
 *   libxl_snapshot_drv_qemu.c  qemu driver
 *   libxl_snapshot_drv_xen.c   xen driver
 *   libxl_snapshot_create.c    snapshot create, and its recovery
 *   libxl_snapshot_revert.c    snapshot revert, and its recovery
 *   libxl_snapshot_delete.c    snapshot delete, and its recovery
 *   libxl_snapshot_journal.c   journal file, recovery dispatch
 *   libxl_snapshot_backend.c   the table of disk backends, lookups
 *   libxl_snapshot_backend_internal.c  qcow2 internal snapshots
 *   libxl_snapshot_backend_overlay.c   external snapshots (qcow2)
 *   libxl_snapshot_backend_vhd.c       VHD chains (vhd-util)
 *   libxl_snapshot_backend_lvm.c       LVM snapshot volumes
 *   libxl_snapshot_qcow2.c     qcow2 tables read (diff, sizes)
 *   libxl_snapshot_size.c      what each snapshot costs and would free
 *
 * Internal names are libxl__*, chosen so that none collides with the
 * libxl__* symbols libxenlight exports (checked by
 * scripts/check-symbols.sh).  The shared library is built with
 * -fvisibility=hidden, so only LIBXLSNAP_EXPORT names leave it.
 *
 * Memory: a libxl__gc arena per operation (or per call for quick
 * synchronous functions).  Everything allocated from a gc is freed
 * with it; gc == NOGC allocates with plain malloc for the caller.
 * Allocation failure aborts, as in libxl.
 */
#ifndef LIBXL_SNAPSHOT_INTERNAL_H
#define LIBXL_SNAPSHOT_INTERNAL_H

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/types.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "libxl_snapshot.h"

/* ---------------------------------------------------------------- */
/* gc arena */

typedef struct libxl__gc {
    libxlsnap_ctx *owner;
    void **ptrs;
    int nptrs, alloc;
} libxl__gc;

#define NOGC ((libxl__gc *)0)
#define LIBXL_INIT_GC(gc, ctx) do { \
        (gc).owner = (ctx); (gc).ptrs = NULL; \
        (gc).nptrs = 0; (gc).alloc = 0; } while (0)
#define GC_INIT(ctx) libxl__gc gc[1]; LIBXL_INIT_GC(gc[0], ctx)
#define GC_FREE libxl__gc_free_all(gc)
#define CTX (gc->owner)

void libxl__gc_free_all(libxl__gc *gc);
/* Takes ownership of ptr (malloc'ed) into gc; gc NOGC: no-op. */
void libxl__gc_adopt(libxl__gc *gc, void *ptr);
void *libxl__gc_zalloc(libxl__gc *gc, size_t sz);
void *libxl__gc_calloc(libxl__gc *gc, size_t n, size_t sz);
void *libxl__gc_realloc(libxl__gc *gc, void *ptr, size_t sz);
char *libxl__gc_strdup(libxl__gc *gc, const char *s);   /* NULL ok */
char *libxl__gc_sprintf(libxl__gc *gc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *libxl__gc_vsprintf(libxl__gc *gc, const char *fmt, va_list ap);

/*
 * A growing array of strings in gc, as libxl's flexarray, for argvs:
 * nothing is counted by hand.  data is NULL-terminated at all times
 * (data[count] == NULL), ready for libxl__exec's args or execvp.
 * Strings are not copied; appending NULL is a bug (it would end the
 * argv early).
 */
typedef struct libxl__flexarray {
    libxl__gc *gc;
    const char **data;
    int count, alloc;
} libxl__flexarray;
libxl__flexarray *libxl__flexarray_new(libxl__gc *gc);
void libxl__flexarray_append(libxl__flexarray *fa, const char *s);
void libxl__flexarray_append_pair(libxl__flexarray *fa, const char *a,
                                  const char *b);

#define GCNEW(var)         ((var) = libxl__gc_zalloc(gc, sizeof(*(var))))
#define GCNEW_ARRAY(var,n) ((var) = libxl__gc_calloc(gc, (n), sizeof(*(var))))
#define GCREALLOC_ARRAY(var,n) \
    ((var) = libxl__gc_realloc(gc, (var), (n) * sizeof(*(var))))
#define GCSPRINTF(fmt, ...) libxl__gc_sprintf(gc, fmt, __VA_ARGS__)
#define GCSTRDUP(s) libxl__gc_strdup(gc, (s))

/* The struct of type outer_type whose member `member` is at ptr. */
#define CONTAINER_OF(ptr, outer_type, member) \
    ((outer_type *)((char *)(ptr) - offsetof(outer_type, member)))

/* ---------------------------------------------------------------- */
/* logging: LOG(ERROR, "cannot create overlay '%s'", path) */

void libxl__snapshot_log(libxlsnap_ctx *ctx, xentoollog_level lvl,
                         int errnoval, const char *file, int line,
                         const char *func, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

#define LIBXL__LOG(ctx, lvl, errnoval, ...) \
    libxl__snapshot_log((ctx), XTL_##lvl, (errnoval), __FILE__, \
                        __LINE__, __func__, __VA_ARGS__)
#define LOG(lvl, ...)  LIBXL__LOG(CTX, lvl, -1, __VA_ARGS__)
#define LOGE(lvl, ...) LIBXL__LOG(CTX, lvl, errno, __VA_ARGS__)
#define LOGEV(lvl, e, ...) LIBXL__LOG(CTX, lvl, (e), __VA_ARGS__)
/* LOGE at a level chosen at run time (an xentoollog_level: XTL_INFO) */
#define LOGE_AT(xtl, ...) \
    libxl__snapshot_log(CTX, (xtl), errno, __FILE__, __LINE__, __func__, \
                        __VA_ARGS__)

/*
 * The pointer arguments a public call requires (libxl_snapshot.h says
 * which may be NULL): true when one is NULL, said in one line naming
 * the call and the first such argument.  ctx itself is the first
 * argument: NULL, it is refused with nothing logged (no logger); with
 * ARGS_MISSING_CTX_OPTIONAL (the conversions, which need ctx only to
 * log), a NULL ctx is allowed, and nothing is logged.  Use, before
 * anything is done:
 *     if (ARGS_MISSING(ctx, domain, name)) return ERROR_INVAL;
 * (Object pointers only: each is converted to const void *.)
 */
#define ARGS_MISSING(ctx, ...) LIBXL__ARGS_MISSING(ctx, true, __VA_ARGS__)
#define ARGS_MISSING_CTX_OPTIONAL(ctx, ...) \
    LIBXL__ARGS_MISSING(ctx, false, __VA_ARGS__)
#define LIBXL__ARGS_MISSING(ctx, ctx_required, ...)                     \
    libxl__args_missing((ctx), (ctx_required), __func__, #__VA_ARGS__,  \
                        (const void *const []){ __VA_ARGS__ },          \
                        sizeof((const void *const []){ __VA_ARGS__ }) / \
                        sizeof(const void *))
/*
 * Flags a public call does not know (bits outside known): true, said in
 * one line naming the call.  Use, before anything is done:
 *     if (FLAGS_UNKNOWN(ctx, flags, LIBXLSNAP_DELETE_...)) return ERROR_INVAL;
 */
#define FLAGS_UNKNOWN(ctx, flags, known) \
    libxl__flags_unknown((ctx), __func__, (flags), (known))
bool libxl__flags_unknown(libxlsnap_ctx *ctx, const char *func,
                          unsigned flags, unsigned known);
bool libxl__args_missing(libxlsnap_ctx *ctx, bool ctx_required,
                         const char *func, const char *names,
                         const void *const *args, size_t n);

/* ---------------------------------------------------------------- */
/* misc helpers (libxl_snapshot_core.c) */

/* mkdir -p with mode; 0 or ERROR_FAIL (logged). */
int libxl__mkdir_p(libxl__gc *gc, const char *path, mode_t mode);
/* Whole file into a gc string; ERROR_NOTFOUND if missing. */
int libxl__read_file(libxl__gc *gc, const char *path, char **data_r,
                     size_t *len_r);
/* The same for files of ours (records): a symbolic link is refused. */
int libxl__read_file_nofollow(libxl__gc *gc, const char *path,
                              char **data_r, size_t *len_r);
/*
 * Writes data to path atomically: path.tmp, fsync, rename, fsync of
 * the directory.  ERROR_FAIL (logged, with ENOSPC said plainly).
 */
int libxl__write_file_atomic(libxl__gc *gc, const char *path,
                             const void *data, size_t len);
/* The same, its failure logged at lvl: a write the caller can do
 * without, which then says what that means (if anything) itself. */
int libxl__write_file_atomic_lvl(libxl__gc *gc, const char *path,
                                 const void *data, size_t len,
                                 xentoollog_level lvl);
/*
 * Its first part: data written to path.tmp (a stale one, or a link
 * planted there, removed first), fsync'ed if sync, closed; removed on
 * failure (logged at lvl).  The caller renames it (a batch: many
 * written unsynced, one syncfs, then the renames: libxl_snapshot_store.c).
 */
int libxl__write_file_tmp(libxl__gc *gc, const char *path,
                          const void *data, size_t len, bool sync,
                          xentoollog_level lvl);
/* fsync of a directory (a rename or unlink in it made durable) */
void libxl__fsync_dir(const char *dir);
bool libxl__file_exists(const char *path);
/* Absolute, normalised path (the file need not exist). */
char *libxl__abs_path(libxl__gc *gc, const char *path);
char *libxl__path_dirname(libxl__gc *gc, const char *path);
char *libxl__path_basename(libxl__gc *gc, const char *path);
/* Basename without its last extension ("/a/vm1.qcow2" -> "vm1"). */
char *libxl__path_stem(libxl__gc *gc, const char *path);
/* s with control characters shown as '?', for one-line messages. */
char *libxl__printable(libxl__gc *gc, const char *s);
uint64_t libxl__now_ms(void);

/* ---------------------------------------------------------------- */
/* JSON helpers (libxl_snapshot_json.c) */

/*
 * Building JSON (QMP arguments, journal entries): a gc-owned yajl tree,
 * turned into text by libxl__json_to_string, which does all quoting.
 * Never splice JSON text with GCSPRINTF.
 *
 * The _add functions add "key": value to the object *obj, allocating
 * it first when *obj is NULL (as libxl's libxl__qmp_param_add_*), so
 *     yajl_val args = NULL;
 *     libxl__json_add_string(gc, &args, "node-name", node);
 *     libxl__json_add_bool(gc, &args, "flat", true);
 * leaves args NULL (no arguments) until something is added.  A NULL
 * string, or a NULL value, is JSON null.  Keys are added in order and
 * not checked for repeats.  _add_object and _add_array return the new
 * (empty) child, to fill in; _append* add to an array.
 */
yajl_val libxl__json_new_object(libxl__gc *gc);
yajl_val libxl__json_new_array(libxl__gc *gc);
yajl_val libxl__json_new_string(libxl__gc *gc, const char *s);
yajl_val libxl__json_new_integer(libxl__gc *gc, long long i);
yajl_val libxl__json_new_uint64(libxl__gc *gc, uint64_t u);
yajl_val libxl__json_new_bool(libxl__gc *gc, bool b);
yajl_val libxl__json_new_null(libxl__gc *gc);
void libxl__json_add(libxl__gc *gc, yajl_val *obj, const char *key,
                     yajl_val v);
void libxl__json_add_string(libxl__gc *gc, yajl_val *obj, const char *key,
                            const char *s);
void libxl__json_add_integer(libxl__gc *gc, yajl_val *obj, const char *key,
                             long long i);
void libxl__json_add_uint64(libxl__gc *gc, yajl_val *obj, const char *key,
                            uint64_t u);
void libxl__json_add_bool(libxl__gc *gc, yajl_val *obj, const char *key,
                          bool b);
yajl_val libxl__json_add_object(libxl__gc *gc, yajl_val *obj,
                                const char *key);
yajl_val libxl__json_add_array(libxl__gc *gc, yajl_val *obj,
                               const char *key);
void libxl__json_append(libxl__gc *gc, yajl_val arr, yajl_val v);
void libxl__json_append_string(libxl__gc *gc, yajl_val arr, const char *s);
yajl_val libxl__json_append_object(libxl__gc *gc, yajl_val arr);
/* Parses with yajl_tree; the tree is freed with the gc. */
yajl_val libxl__json_parse(libxl__gc *gc, const char *s);
/* Lookups on a yajl tree; NULL/default when absent or wrong type. */
yajl_val libxl__json_get(yajl_val v, const char *key);
const char *libxl__json_get_string(yajl_val v, const char *key);
long long libxl__json_get_integer(yajl_val v, const char *key,
                                  long long dflt);
bool libxl__json_get_bool(yajl_val v, const char *key, bool dflt);
/* yajl generator helpers shared by the record writers */
yajl_gen_status libxl__yajl_gen_str(yajl_gen hand, const char *s);
/* "key": "value", left out when value is NULL or "" */
yajl_gen_status libxl__yajl_gen_opt_str(yajl_gen hand, const char *key,
                                        const char *val);
/* Serialises a yajl tree value back to JSON text (gc string). */
char *libxl__json_to_string(libxl__gc *gc, yajl_val v);

int libxl__domain_snapshot_gen_json(yajl_gen hand,
                                    const libxlsnap_domain_snapshot *p);
int libxl__blockjob_info_gen_json(yajl_gen hand,
                                  const libxlsnap_blockjob_info *p);
/* Fills *p (NOGC allocations, caller disposes) from a record. */
int libxl__domain_snapshot_parse_json(libxl__gc *gc, yajl_val v,
                                      libxlsnap_domain_snapshot *p);
void libxl__disk_snapshot_copy(libxlsnap_disk_snapshot *dst,
                               const libxlsnap_disk_snapshot *src);
/*
 * Reports progress to how (NULL, or no callback: nothing): a step's
 * what, done and total, and for a block job's step the job
 * (libxl__progress_report_job: what, done, total taken from it).
 */
void libxl__progress_report(const libxlsnap_progress_how *how,
                            const char *what, uint64_t done,
                            uint64_t total);
void libxl__progress_report_job(const libxlsnap_progress_how *how,
                                const libxlsnap_blockjob_info *job);
void libxl__domain_snapshot_copy(libxlsnap_domain_snapshot *dst,
                                 const libxlsnap_domain_snapshot *src);

/* ---------------------------------------------------------------- */
/* event loop, ao (libxl_snapshot_event.c) */

typedef struct libxl__egc {
    libxl__gc gc;
} libxl__egc;

#define EGC_GC libxl__gc *const gc = &egc->gc
#define EGC_INIT(ctx) libxl__egc egc[1]; LIBXL_INIT_GC(egc->gc, ctx)
#define EGC_FREE libxl__gc_free_all(&egc->gc)

typedef struct libxl__ev_fd libxl__ev_fd;
typedef void libxl__ev_fd_callback(libxl__egc *egc, libxl__ev_fd *ev,
                                   int fd, short events, short revents);
struct libxl__ev_fd {
    /* caller fills in func before register */
    libxl__ev_fd_callback *func;
    /* private */
    int fd;
    short events;
    bool registered;
    unsigned gen;
    LIST_ENTRY(libxl__ev_fd) entry;
};

typedef struct libxl__ev_time libxl__ev_time;
/* rc is ERROR_TIMEDOUT */
typedef void libxl__ev_time_callback(libxl__egc *egc, libxl__ev_time *ev,
                                     int rc);
struct libxl__ev_time {
    libxl__ev_time_callback *func;
    /* private */
    uint64_t abs_ms;
    bool registered;
    LIST_ENTRY(libxl__ev_time) entry;
};

void libxl__ev_fd_init(libxl__ev_fd *ev);
int libxl__ev_fd_register(libxl__gc *gc, libxl__ev_fd *ev,
                          libxl__ev_fd_callback *func, int fd,
                          short events);
int libxl__ev_fd_modify(libxl__gc *gc, libxl__ev_fd *ev, short events);
void libxl__ev_fd_deregister(libxl__gc *gc, libxl__ev_fd *ev);
static inline bool libxl__ev_fd_isregistered(const libxl__ev_fd *ev)
    { return ev->registered; }

void libxl__ev_time_init(libxl__ev_time *ev);
int libxl__ev_time_register_rel(libxl__gc *gc, libxl__ev_time *ev,
                                libxl__ev_time_callback *func,
                                int milliseconds);
void libxl__ev_time_deregister(libxl__gc *gc, libxl__ev_time *ev);
static inline bool libxl__ev_time_isregistered(const libxl__ev_time *ev)
    { return ev->registered; }

/*
 * Asynchronous operations.
 *
 *   AO_CREATE(ctx, ao_how);        declares gc (the ao's gc) and ao
 *   ... set up state, start the first step ...
 *   return AO_INPROGRESS;          sync: runs the loop until done
 *   out: return AO_CREATE_FAIL(rc);
 *
 * The operation ends with exactly one libxl__ao_complete(egc, ao, rc),
 * from its op_done() step.  Anything that can be cancelled registers a
 * libxl__ao_abortable; libxlsnap_ao_abort() calls every
 * registered one with ERROR_ABORTED.
 */
typedef struct libxl__ao libxl__ao;
struct libxl__ao {
    libxlsnap_ctx *ctx;
    libxl__gc gc;
    bool sync, complete, notified, aborting;
    int rc;
    libxl_asyncop_how how;
    LIST_HEAD(, libxl__ao_abortable) abortables;
    LIST_ENTRY(libxl__ao) entry;
};

typedef struct libxl__ao_abortable libxl__ao_abortable;
typedef void libxl__ao_abortable_callback(libxl__egc *egc,
                                          libxl__ao_abortable *ab, int rc);
struct libxl__ao_abortable {
    libxl__ao *ao;
    libxl__ao_abortable_callback *callback;
    /* private */
    bool registered;
    LIST_ENTRY(libxl__ao_abortable) entry;
};

libxl__ao *libxl__ao_create(libxlsnap_ctx *ctx,
                            const libxl_asyncop_how *how);
int libxl__ao_inprogress(libxl__ao *ao);
int libxl__ao_create_fail(libxl__ao *ao, int rc);
void libxl__ao_complete(libxl__egc *egc, libxl__ao *ao, int rc);
bool libxl__ao_is_aborting(const libxl__ao *ao);
void libxl__ao_abortable_init(libxl__ao_abortable *ab);
int libxl__ao_abortable_register(libxl__ao_abortable *ab);
void libxl__ao_abortable_deregister(libxl__ao_abortable *ab);

#define AO_CREATE(ctx, ao_how)                                  \
    libxl__ao *ao = libxl__ao_create((ctx), (ao_how));          \
    if (!ao) return ERROR_INVAL;                                \
    libxl__gc *const gc = &ao->gc
#define AO_INPROGRESS libxl__ao_inprogress(ao)
#define AO_CREATE_FAIL(rc) libxl__ao_create_fail(ao, (rc))
#define AO_GC libxl__gc *const gc = &ao->gc
#define STATE_AO_GC(op_ao) \
    libxl__ao *const ao = (op_ao); libxl__gc *const gc = &ao->gc

/* One pass of the loop: poll for at most timeout_ms, dispatch. */
int libxl__ev_loop_once(libxlsnap_ctx *ctx, int timeout_ms);

/* ---------------------------------------------------------------- */
/* child processes (libxl_snapshot_exec.c) */

/*
 * Runs args[0] with argv args (PATH searched), stdin /dev/null,
 * stdout and stderr captured.  Never through a shell.
 * callback: rc 0 when the child exited 0; ERROR_FAIL when it exited
 * non-zero (libxl__tool_error_line is logged unless quiet);
 * ERROR_TIMEDOUT or ERROR_ABORTED after it was killed.
 */
typedef struct libxl__exec_state libxl__exec_state;
typedef void libxl__exec_callback(libxl__egc *egc, libxl__exec_state *es,
                                  int rc, int status);
typedef void libxl__exec_line_callback(libxl__egc *egc,
                                       libxl__exec_state *es,
                                       const char *line);
struct libxl__exec_state {
    /* caller fills in */
    libxl__ao *ao;
    const char *what;                 /* for messages */
    const char *const *args;
    int timeout_ms;                   /* 0: none */
    bool quiet;                       /* do not log failure */
    libxl__exec_callback *callback;
    libxl__exec_line_callback *stdout_line;  /* optional; \r or \n */
    /*
     * Instead of args: slow file work (unlink of a big image, fsync)
     * done in a forked child, off the caller's loop; its return value
     * is the exit status (0: success).  It runs after fork in a process
     * that may have had threads: async-signal-safe calls only (unlink,
     * fsync, write on fd 2; no malloc, no stdio).  Not counted by the
     * io:N fault injection (it is no tool).
     */
    int (*child_fn)(libxl__exec_state *es);
    void *child_arg;
    bool unabortable;                 /* finishes even on ao_abort */
    /* results, valid in callback (ao gc) */
    char *out;                        /* all of stdout */
    char *err;                        /* all of stderr */
    /* private */
    pid_t pid;
    int outfd, errfd;
    size_t outlen, errlen, outline;
    libxl__ev_fd outev, errev;
    libxl__ev_time timeout;
    libxl__ao_abortable abrt;
    int kill_rc;
};

void libxl__exec_init(libxl__exec_state *es);
int libxl__exec_start(libxl__egc *egc, libxl__exec_state *es);
bool libxl__exec_running(const libxl__exec_state *es);
/*
 * Synchronous convenience for quick commands: runs the loop.  With
 * err_r the caller gets stderr and reports a failure itself; without,
 * a failure is logged here.
 */
int libxl__exec_sync(libxl__gc *gc, const char *const *args,
                     int timeout_ms, char **out_r, char **err_r);
/* ... and *exit_r: the tool's exit code (-1: killed, or not run) */
int libxl__exec_sync_exit(libxl__gc *gc, const char *const *args,
                          int timeout_ms, char **out_r, char **err_r,
                          int *exit_r);
/*
 * A child_fn: the files of the NULL-terminated list child_arg removed
 * (an unlink of an image of hundreds of MiB takes 100 ms and more);
 * status 1 and those it could not remove on stderr, one a line.
 */
int libxl__unlink_files_child(libxl__exec_state *es);
/* its failures, one warning a file ("cannot remove <what> '<file>'");
 * how many */
int libxl__unlink_files_report(libxl__gc *gc, libxl__exec_state *es,
                               const char *what);
/* the line of a tool's stderr that says what failed (NULL: none) */
const char *libxl__tool_error_line(libxl__gc *gc, const char *err);

/* LVM (libxl_snapshot_backend_lvm.c), in gc */
typedef struct libxl__lvm_volume {
    char *vg, *lv, *path;
    char attr[16];
    uint64_t size;                    /* bytes */
    char *origin, *pool;
    double use_percent;               /* of size: a thick snapshot's COW,
                                         a thin volume's mapped blocks;
                                         -1: not measured (inactive thin) */
    bool thin, thick_snapshot, invalid;
} libxl__lvm_volume;
int libxl__lvm_probe(libxl__gc *gc, const char *path, libxl__lvm_volume *v);
const char *libxl__lvm_snapshot_lv(libxl__gc *gc, const char *lv,
                                   const char *snapshot);
int libxl__lvm_probe_lv(libxl__gc *gc, const libxl__lvm_volume *origin,
                        const char *lv, libxl__lvm_volume *v);
void libxl__lvm_create_cmds(libxl__gc *gc, const libxl__lvm_volume *origin,
                            const char *snap_lv, const char *cow,
                            const char *const **cmds_r[], int *n);
void libxl__lvm_remove_cmds(libxl__gc *gc, const libxl__lvm_volume *origin,
                            const char *snap_lv,
                            const char *const **cmds_r[], int *n);
void libxl__lvm_revert_cmds(libxl__gc *gc, const libxl__lvm_volume *origin,
                            const libxl__lvm_volume *snap,
                            const char *const **cmds_r[], int *n);
typedef struct libxl__lvm_cache {
    struct { const char *file; bool ok; libxl__lvm_volume v; } *origins;
    int num_origins;
    struct { const char *vg; libxl__lvm_volume *vols; int n; } *vgs;
    int num_vgs;
} libxl__lvm_cache;
const char *libxl__lvm_snapshot_state(libxl__gc *gc, libxl__lvm_cache *c,
                                      const libxlsnap_disk_snapshot *ds,
                                      libxl__lvm_volume *origin_r,
                                      libxl__lvm_volume *snap_r);
bool libxl__lvm_snapshot_exists(libxl__gc *gc, const libxlsnap_disk_snapshot *ds);
/* 0: there; ERROR_NOTFOUND: lvs says it is not; else lvs failed (logged) */
int libxl__lvm_snapshot_lookup(libxl__gc *gc, const libxlsnap_disk_snapshot *ds);
const char *const *libxl__lvm_snapshot_remove_args(libxl__gc *gc,
                                          const libxlsnap_disk_snapshot *ds);
/* why LVM would refuse a new volume's name (NULL: it would not) */
const char *libxl__lvm_name_problem(libxl__gc *gc, const char *vg,
                                    const char *lv, const char *layer);
const char *libxl__lvm_snapshot_name_problem(libxl__gc *gc,
                                             const libxl__lvm_volume *origin,
                                             const char *snap_lv);
/* a failed revert step undone (0), or not undoable (the journal's) */
int libxl__lvm_revert_undo(libxl__gc *gc, const char *file, const char *tag);
/* a revert of an LVM disk that died half-way, done again (recovery) */
int libxl__lvm_revert_redo(libxl__gc *gc, const char *file, const char *tag,
                           uint64_t size);
/* lvremove of the snapshot volume, synchronous (recovery, undo) */
int libxl__lvm_snapshot_remove_sync(libxl__gc *gc,
                                    const libxlsnap_disk_snapshot *ds);

/* VHD (libxl_snapshot_backend_vhd.c), in gc */
bool libxl__vhd_is_differencing(const char *path);
char *libxl__vhd_parent_sync(libxl__gc *gc, const char *path);
/* `vhd-util CMD -n vhd [-p parent]` */
const char *const *libxl__vhd_util_args(libxl__gc *gc, const char *cmd,
                                        const char *vhd, const char *parent);

/*
 * qemu-img command lines (libxl_snapshot_qemu_img.c), in gc.  The
 * overlay and rebase ones are vhd-util's for a VHD base.
 */
libxl_disk_format libxl__overlay_format(libxl_disk_format base_fmt,
                                        bool live);
const char *libxl__overlay_ext(libxl_disk_format base_fmt, bool live);
/* base NULL: a standalone copy; else built on base (image's backing) */
const char *const *libxl__qemu_img_copy_snapshot_args(libxl__gc *gc,
                                                      const char *image,
                                                      const char *id,
                                                      const char *base,
                                                      libxl_disk_format base_fmt,
                                                      const char *out);
const char *const *libxl__qemu_img_rebase_args(libxl__gc *gc,
                                               const char *image,
                                               const char *base,
                                               libxl_disk_format base_fmt);
const char *const *libxl__qemu_img_overlay_args(libxl__gc *gc,
                                                const char *base,
                                                libxl_disk_format fmt,
                                                const char *overlay);
/* check --output=json: -U, or -r leaks */
const char *const *libxl__qemu_img_check_args(libxl__gc *gc,
                                              const char *image,
                                              bool repair_leaks);
/* op: 'c' create, 'a' apply, 'd' delete */
const char *const *libxl__qemu_img_snapshot_args(libxl__gc *gc, char op,
                                                 const char *tag,
                                                 const char *image);

const char *const *libxl__qemu_img_bitmap_args(libxl__gc *gc,
                                               const char *image,
                                               const char *name,
                                               uint64_t granularity,
                                               const char *src,
                                               libxl_disk_format srcfmt);
/* A persistent dirty bitmap, as qemu-img info shows it. */
typedef struct libxl__qemu_img_bitmap {
    const char *name;
    uint64_t granularity;
    bool recording;                   /* "auto": records new writes */
} libxl__qemu_img_bitmap;
/* The valid (not "in-use") bitmaps of one image's `info`. */
int libxl__qemu_img_bitmaps(yajl_val info, libxl__qemu_img_bitmap **bm_r,
                            libxl__gc *gc);

/*
 * `qemu-img info --output=json -U [--backing-chain]` of each image in
 * turn; callback(rc) with infos[i] parsed (in the ao gc).  A NULL
 * images[i] is skipped (infos[i] stays NULL).
 */
typedef struct libxl__qemu_img_info_state libxl__qemu_img_info_state;
typedef void libxl__qemu_img_info_callback(libxl__egc *egc,
                                           libxl__qemu_img_info_state *qi,
                                           int rc);
struct libxl__qemu_img_info_state {
    /* caller fills in */
    libxl__ao *ao;
    const char **images;
    int num_images;
    bool backing_chain;
    /* an image that does not open leaves infos[i] NULL and errs[i] its
     * error (nothing logged), and the next one is probed: rc 0 unless
     * aborted or a run could not start */
    bool keep_going;
    bool unabortable;                 /* each run finishes on ao_abort */
    libxl__qemu_img_info_callback *callback;
    /* results */
    yajl_val *infos;
    const char **errs;                /* keep_going: why infos[i] is NULL */
    /* private */
    int next;
    libxl__exec_state es;
};
void libxl__qemu_img_info(libxl__egc *egc, libxl__qemu_img_info_state *qi);
/* info --output=json -U [--backing-chain] image */
const char *const *libxl__qemu_img_info_args(libxl__gc *gc,
                                             const char *image, bool chain);
/*
 * One run of those args (its rc, stdout, stderr) parsed, in gc; NULL
 * and *err_r (gc, trimmed) when the image does not open.
 */
yajl_val libxl__qemu_img_info_parse(libxl__gc *gc, int rc, const char *out,
                                    char *err, char **err_r);
/* Synchronous qemu-img info (--backing-chain: an array), parsed. */
yajl_val libxl__qemu_img_info_sync(libxl__gc *gc, const char *image,
                                   bool chain, char **err_r);
/* The files of image's backing chain, image first (synchronous). */
int libxl__qemu_img_chain(libxl__gc *gc, const char *image,
                          const char ***files_r, int *n_r, char **err_r);
/*
 * An image's backing chain as the checks before a create need it
 * (libxl_snapshot_chain.c): from its qcow2 headers, read in the process
 * (no child per disk), else from qemu-img info --backing-chain.
 */
typedef struct libxl__image_chain {
    bool known;                       /* false: not read (why) */
    const char *why;
    const char **files;               /* top first */
    int n;
    uint64_t virtual_size, cluster_size;  /* of the top image */
    int num_snaps;                    /* the top's internal snapshots */
} libxl__image_chain;
/* from the headers (fmt: the top's): false when they do not say it all
 * (not qcow2, a protocol backing...: qemu-img's then) */
bool libxl__image_chain_headers(libxl__gc *gc, const char *top,
                                libxl_disk_format fmt,
                                libxl__image_chain *c);
/* from a qemu-img info --backing-chain (NULL: not read, why) */
void libxl__image_chain_qemu_img(libxl__gc *gc, yajl_val chain,
                                 const char *why, libxl__image_chain *c);
/* The files of a --backing-chain info (an array), top first; how many
 * (0 when it is not one) */
int libxl__qemu_img_chain_files(libxl__gc *gc, yajl_val chain,
                                const char ***files_r);
/*
 * How many internal snapshots of one `info` are named tag; *id_r gets
 * the ID of the last (meaningful when the count is 1).
 */
int libxl__qemu_img_find_tag(yajl_val info, const char *tag,
                             const char **id_r);

/* ---------------------------------------------------------------- */
/* QMP client (libxl_snapshot_qmp.c) */

/*
 * One connection, held for one operation only (QEMU serves one client
 * at a time).  States:
 *   DISCONNECTED -> CONNECTING -> (greeting) -> CAPABILITIES -> IDLE
 *   IDLE -> WAITING (one command outstanding) -> IDLE
 * The callback gets the "return" value (or NULL) and rc: 0, an
 * ERROR_QMP_* code mapped from the error class (the "desc" is in
 * qmp->error_desc and logged unless quiet), ERROR_TIMEDOUT, or
 * ERROR_PROTOCOL_ERROR_QMP when the connection broke.
 */
typedef struct libxl__qmp libxl__qmp;
typedef void libxl__qmp_callback(libxl__egc *egc, libxl__qmp *qmp,
                                 yajl_val ret, int rc);
typedef void libxl__qmp_event_callback(libxl__egc *egc, libxl__qmp *qmp,
                                       const char *event, yajl_val data);
typedef enum {
    LIBXL__QMP_DISCONNECTED,
    LIBXL__QMP_CONNECTING,
    LIBXL__QMP_CAPABILITIES,
    LIBXL__QMP_IDLE,
    LIBXL__QMP_WAITING,
} libxl__qmp_state;

struct libxl__qmp {
    /* caller fills in */
    libxl__ao *ao;
    const char *path;                 /* unix socket */
    uint32_t domid;
    int timeout_ms;                   /* per command; 0: default */
    libxl__qmp_event_callback *event_callback;  /* optional */
    bool quiet;                       /* do not log QMP errors */
    bool quiet_refusal;               /* nor QEMU's error replies (the
                                         caller reports them) */
    bool agent;                       /* QEMU guest agent: no greeting,
                                         no capabilities */
    /* results */
    unsigned version;                 /* QEMU's, from the greeting:
                                         LIBXL__QEMU_VERSION(), 0 if not
                                         said */
    /* private */
    libxl__qmp_state state;
    int fd;
    libxl__ev_fd efd;
    libxl__ev_time timeout, retry;
    char *rx; size_t rxlen, rxalloc;
    char *tx; size_t txlen, txoff;
    int txfd;                         /* fd to pass with the command */
    unsigned next_id, wait_id;
    libxl__qmp_callback *callback;
    char *error_class, *error_desc;
    int fault_errno;                  /* tests: this command fails */
    bool locked;                      /* the driver's socket lock held */
    int lockfd;
    char *lockfile;                   /* in the ao's gc */
};

#define LIBXL__QEMU_VERSION(major, minor, micro) \
    ((major) * 10000u + (minor) * 100u + (micro))
void libxl__qmp_init(libxl__qmp *qmp);
/* Connects and negotiates; callback(ret NULL, rc) when IDLE. */
int libxl__qmp_connect(libxl__egc *egc, libxl__qmp *qmp,
                       libxl__qmp_callback *callback);
/*
 * args: an object built with libxl__json_add_* (or NULL: none); it is
 * turned into text at once.  fd >= 0 is passed (getfd).
 */
int libxl__qmp_send(libxl__egc *egc, libxl__qmp *qmp, const char *cmd,
                    yajl_val args, int fd, libxl__qmp_callback *cb);
void libxl__qmp_close(libxl__gc *gc, libxl__qmp *qmp);
int libxl__qmp_error_class_to_rc(const char *klass);
/*
 * Synchronous: connect, one command, disconnect.  *ret_r in gc.  quiet:
 * no message on failure (the caller reports it).
 */
int libxl__qmp_run_sync(libxl__gc *gc, const char *path, const char *cmd,
                        yajl_val args, int timeout_ms, bool quiet,
                        yajl_val *ret_r);
/*
 * A running domain's images written out: QEMU stopped (which drains and
 * flushes every image) and, if the guest ran, continued; a pause of
 * milliseconds.  SIGINT, SIGTERM, SIGHUP and SIGQUIT wait until the
 * guest runs again.  fault: a crash point between stop and cont (NULL:
 * none).  *cont_failed_r: the guest was left paused (rc non-zero).
 */
int libxl__qmp_flush_images(libxl__gc *gc, const char *qmp_path,
                            const char *fault, bool *cont_failed_r);
/* {"flat": true}: the arguments of query-named-block-nodes, in gc */
yajl_val libxl__qmp_args_flat(libxl__gc *gc);
/*
 * Deletes the nodes on the image file that nothing uses any more (left
 * by a job: monitor-owned nodes stay in the graph); QEMU refuses, and
 * we ignore, those still in use.
 */
void libxl__qmp_drop_file_nodes(libxl__gc *gc, const char *qmp_path,
                                const char *file);
/* Does a BlockBackend of that QEMU run on the image file (query-block)? */
bool libxl__qmp_runs_on(libxl__gc *gc, const char *qmp_path,
                        const char *file);
/*
 * Has that QEMU a block node on the image file (query-named-block-nodes:
 * its disks' chains, and nodes a job left)?  True when it cannot tell.
 */
bool libxl__qmp_has_file_node(libxl__gc *gc, const char *qmp_path,
                              const char *file);
/*
 * In a query-named-block-nodes (flat) reply: the name of the format
 * node (drv = fmt) whose image is path, or NULL.
 */
const char *libxl__qmp_node_for_file(libxl__gc *gc, yajl_val nodes,
                                     const char *path, libxl_disk_format fmt);
/*
 * In a query-qmp-schema reply: does command exist, and (arg non-NULL)
 * does it take that argument?
 */
bool libxl__qmp_schema_has(yajl_val schema, const char *command,
                           const char *arg);
/* Splits one received line into a parsed message (pure; tested). */
int libxl__qmp_parse_line(libxl__gc *gc, const char *line, yajl_val *v_r);

/* ---------------------------------------------------------------- */
/* one block job (libxl_snapshot_blockjob.c) */

typedef enum {
    LIBXL__BLOCKJOB_VERB_COMPLETE,
    LIBXL__BLOCKJOB_VERB_CANCEL,
    LIBXL__BLOCKJOB_VERB_SET_SPEED,
    LIBXL__BLOCKJOB_VERB_DISMISS,
    LIBXL__BLOCKJOB_VERB_FINALIZE,
    LIBXL__BLOCKJOB_VERB_NUM
} libxl__blockjob_verb;

/* What an active commit does at READY. */
typedef enum {
    LIBXL__BLOCKJOB_AT_READY_STOP,    /* the ao completes, job stays */
    LIBXL__BLOCKJOB_AT_READY_PIVOT,   /* job-complete */
    LIBXL__BLOCKJOB_AT_READY_CANCEL,  /* job-cancel: keep the overlay */
} libxl__blockjob_at_ready;

bool libxl__blockjob_transition_ok(libxlsnap_blockjob_state from,
                                   libxlsnap_blockjob_state to);
bool libxl__blockjob_verb_ok(libxlsnap_blockjob_state s,
                             libxl__blockjob_verb verb);
int libxl__blockjob_state_from_qemu(const char *status,
                                    libxlsnap_blockjob_state *s_r);

typedef struct libxl__blockjob libxl__blockjob;
typedef struct libxl__domain libxl__domain;
/*
 * rc 0: COMPLETED, or READY with AT_READY_STOP, or started with
 * no_wait; ERROR_ABORTED / ERROR_TIMEDOUT after a cancel; ERROR_FAIL
 * with info.error when the job failed.  info.state says which.
 */
typedef void libxl__blockjob_callback(libxl__egc *egc, libxl__blockjob *bj,
                                      int rc);
struct libxl__blockjob {
    /* caller fills in */
    libxl__ao *ao;
    const libxl__domain *d;           /* live: its qmp_path, domid */
    libxlsnap_blockjob_info info;         /* id, vdev, type, live, top, base,
                                         speed, len (offline) */
    const char *active;               /* live: the device's top image */
    libxl_disk_format active_format, top_format, base_format;
    const char *backing_file;         /* commit: backing string to write */
    /*
     * Commit: persistent bitmaps to merge into base in one transaction
     * just before the job finishes (at READY before job-complete, or at
     * PENDING before job-finalize).  sources[] are image files, top
     * first; a bitmap missing in base is added first.
     */
    struct libxl__blockjob_bitmap {
        const char *name;
        uint64_t granularity;
        bool add;
        const char **sources;
        int num_sources;
        /* base's copy then records (1) as top's did, or not (-1); 0:
         * left as it is */
        int state;
    } *bitmaps;
    int num_bitmaps;
    /* live commit: the images top..base (excluded), to merge the
     * bitmaps QEMU has on them (the on-disk ones are "in-use") */
    char **merge_files;
    int num_merge_files;
    libxl__blockjob_at_ready at_ready;
    /* copy (info.top: the active image, info.base: the destination,
     * base_format its format): */
    const char *target_node;          /* live: the node-name it gets */
    const char *copy_backing;         /* shallow: the active's backing */
    libxl_disk_format copy_backing_format;
    bool copy_shallow, copy_reuse;    /* sync=top / -B; dest exists */
    uint64_t copy_dest_dev, copy_dest_ino;  /* a file dest's identity
                                         when the copy began (0: unknown):
                                         no pivot onto another file */
    bool no_wait;                     /* live: done once started */
    bool quiet_failure;               /* live: the job's failure (its
                                         error, QMP gone) is not logged:
                                         the caller says it, once */
    int timeout_ms;                   /* 0: none */
    const libxlsnap_progress_how *progress;
    libxl__blockjob_callback *callback;
    const char *fault_op;             /* tests: a fault point once the
                                         job is under way */
    /* private */
    libxl__qmp qmp;
    libxl__exec_state es;
    libxl__ev_time poll, timeout;
    libxl__ao_abortable abrt;
    libxl__blockjob_verb verb;
    yajl_val merge_actions;           /* resolved at start */
    /* live: the nodes of the images that leave the chain, to delete
     * those the monitor still holds once the job has completed */
    const char **leaving;
    int num_leaving, next_leaving;
    bool started, cancel_sent, complete_sent, merged, fault_passed;
    bool flushed, flush_was_running;  /* at PENDING: images written out */
    bool flush_refused;               /* then the job is cancelled */
    uint64_t flush_t0_ms;             /* when the guest was stopped */
    int cancel_rc, verb_failures, poll_failures;
    int poll_ms;                      /* the last poll interval */
    uint64_t polled_at_ms, polled_offset;   /* the last poll's progress */
};
void libxl__blockjob_init(libxl__blockjob *bj);

/* ---------------------------------------------------------------- */
/* memory checkpoints (libxl_snapshot_memory.c) */

/*
 * A driver's suspend of a running domain's memory into fd (xen:
 * libxl_domain_suspend, asynchronous on this library's loop): the
 * callback comes once, from the loop; progress while it writes;
 * ao_abort reaches it.  The guest then stays suspended (stopped) until
 * the driver's resume.
 */
typedef struct libxl__driver_suspend_state libxl__driver_suspend_state;
typedef void libxl__driver_suspend_cb(libxl__egc *egc,
                                      libxl__driver_suspend_state *ss,
                                      int rc);
struct libxl__driver_suspend_state {
    /* caller fills in */
    libxl__ao *ao;
    const libxl__domain *d;
    int fd;
    bool live;
    const libxlsnap_progress_how *progress;   /* or NULL */
    libxl__driver_suspend_cb *callback;
    /* out */
    bool stopped;                     /* the guest may be suspended, even
                                         after a failure: resume it */
    uint64_t bytes;                   /* written to fd */
    /* private */
    libxl_asyncop_how how;
    libxl__ev_time tick, done;
    libxl__ao_abortable abrt;
    uint64_t total;
    int rc;
    bool running;
};

typedef struct libxl__memory_save_state libxl__memory_save_state;
typedef void libxl__memory_save_cb(libxl__egc *egc,
                                   libxl__memory_save_state *mss, int rc);
struct libxl__memory_save_state {
    /* caller fills in */
    libxl__ao *ao;
    const libxl__domain *d;
    const char *file;                 /* created here (as its tmp path,
                                         renamed once complete), removed
                                         on failure */
    bool live;                        /* copy memory while the guest runs */
    /*
     * The instant: the guest is stopped and its memory state final.
     * Take the disks (mss->qmp is connected and idle), then call
     * libxl__memory_save_instant_done with the result.
     */
    libxl__memory_save_cb *instant;
    libxl__memory_save_cb *callback;  /* once, at the end */
    const libxlsnap_progress_how *progress;   /* or NULL */
    /*
     * A migration (qemu driver, libxl_snapshot_migrate.c): file NULL,
     * the stream goes to fd (set after _init; ours from then on, closed
     * once QEMU has it), a destination QEMU reads it; at completion
     * the guest stays stopped, its images inactive (the destination's).
     */
    bool migration;
    uint64_t bandwidth;               /* bytes/s, 0: unlimited */
    const char *fault_op;             /* the fault points' op: "create"
                                         when NULL */
    /* out */
    bool disks_taken;                 /* even when rc says failure */
    const char *why;                  /* failed: QEMU's reason, not yet
                                         logged (the caller says it in
                                         its one line), or NULL: logged */
    uint64_t pause_ms, bytes, total, size;
    bool not_resumed;                 /* a failure, and the guest QEMU
                                         had stopped not resumed (a
                                         migration: not logged) */
    /* private */
    libxl__qmp qmp;
    libxl__ev_time poll;
    libxl__exec_state es;             /* the image's fsync, in a child */
    libxl__driver_suspend_state dsusp;    /* xen */
    libxl__ao_abortable abrt;         /* until the instant (QMP) */
    bool aborted;
    const char *tmp;                  /* libxl__memory_tmp_path(file) */
    int fd, rc, downtime_ms;
    bool created, was_running, stopped, migrating, at_instant;
    uint64_t t_pause, t_raise, t_progress;
};
void libxl__memory_save_init(libxl__memory_save_state *mss);
/* Where the image is written until complete, then renamed to file. */
char *libxl__memory_tmp_path(libxl__gc *gc, const char *file);
void libxl__memory_save(libxl__egc *egc, libxl__memory_save_state *mss);
void libxl__memory_save_instant_done(libxl__egc *egc,
                                     libxl__memory_save_state *mss, int rc);
/*
 * QEMU's outgoing migration, if one goes on, cancelled, and waited for
 * until query-migrate says it is over (10 s at most): 0 over (or none),
 * ERROR_FAIL QEMU does not answer, ERROR_TIMEDOUT still going.
 */
int libxl__memory_migration_end(libxl__gc *gc, const char *qmp_path);
/*
 * qemu driver: QEMU started with -incoming defer; runs it unless
 * paused.  progress (may be NULL): the bytes of file QEMU has read.
 * A step of ao: callback(egc, arg, rc) once QEMU has read the image
 * (and resumed, unless paused).  abortable: ao_abort ends it with
 * ERROR_ABORTED (the caller then kills that QEMU: its state is
 * half-read).
 */
typedef void libxl__memory_restore_cb(libxl__egc *egc, void *arg, int rc);
int libxl__memory_restore(libxl__egc *egc, libxl__ao *ao,
                          const libxl__domain *d, const char *file,
                          bool paused, bool abortable,
                          const libxlsnap_progress_how *progress,
                          libxl__memory_restore_cb *callback, void *arg);
/* The same from a migration stream: fd is ours from the call on (given
 * to QEMU, then closed); no progress (the sender has it). */
int libxl__memory_incoming(libxl__egc *egc, libxl__ao *ao,
                           const libxl__domain *d, int fd, bool paused,
                           bool abortable,
                           libxl__memory_restore_cb *callback, void *arg);
void libxl__blockjob_start(libxl__egc *egc, libxl__blockjob *bj);
/* A live job already running in QEMU (by id): follow it to its end. */
void libxl__blockjob_follow(libxl__egc *egc, libxl__blockjob *bj);
/*
 * A live copy about to pivot: each persistent dirty bitmap of the
 * active image's node (full: and of the layers below, merged from each
 * that has it: a full copy holds the whole chain) added to target_node,
 * recording as on the active one, and merged into it, in one
 * transaction (as libvirt).  Best effort: a failure is a warning.
 */
void libxl__blockjob_copy_bitmaps_sync(libxl__gc *gc, const char *qmp_path,
                                       const char *active,
                                       libxl_disk_format active_format,
                                       const char *target_node, bool full);
/* A job of QEMU at qmp_path waiting at PENDING (its process died):
 * the images written out ("stop", "cont" if the guest ran), then
 * job-finalize; synchronous, for an adoption. */
int libxl__blockjob_finalize_sync(libxl__gc *gc, const char *qmp_path,
                                  const char *id);
/* Why a copy must not pivot to dest (a file removed or replaced since
 * the copy began: dev, ino from libxl__blockjob_copy_dest_id, 0 0:
 * only that it exists), or NULL; logged as ERROR for job id. */
const char *libxl__blockjob_copy_dest_changed(libxl__gc *gc, const char *id,
                                              const char *dest, uint64_t dev,
                                              uint64_t ino);
/* A file dest's identity (0 0: none, or not a file) */
void libxl__blockjob_copy_dest_id(const char *dest, uint64_t *dev_r,
                                  uint64_t *ino_r);

/* ---------------------------------------------------------------- */
/* domain config (libxl_snapshot_config.c) */

/* The parts of an xl domain config this layer needs. */
typedef struct libxl__domain_config {
    char *file;                       /* absolute path */
    char *name;
    libxl_uuid uuid;
    bool have_uuid;
    long memory_mb;                   /* 0: not set */
    char *device_model;               /* device_model_override or NULL */
    char **dm_args;                   /* device_model_args (qemu driver) */
    char *agent_path;                 /* channel name=org.qemu.guest_agent.0,
                                         connection=socket: its path */
    int num_dm_args;
    libxl_device_disk *disks;         /* xlu_disk_parse results */
    int num_disks;
} libxl__domain_config;

/*
 * Parses an xl config with libxlutil.  A missing uuid= gets one
 * derived from the name (stable, so records survive restarts).
 * Allocations in gc.  ERROR_INVAL with a one-line message on error.
 */
int libxl__domain_config_parse(libxl__gc *gc, const char *file,
                               libxl__domain_config *cfg_r);
void libxl__uuid_from_name(const char *name, libxl_uuid *uuid_r);

/*
 * Settings of the snapshot layer, each a whole number: KEY's value from,
 * first found, the environment (XL_SNAPSHOT_<KEY upper-cased>; empty is
 * unset), the domain's xl config (snapshot_<key> = N; dc may be NULL),
 * the host file <config dir>/xl-snapshot.conf (key = N; the config dir
 * is $XL_SNAPSHOT_CONFIG_DIR or XEN_CONFIG_DIR), else dflt.  A value
 * that is not a whole number in [min, max], or a file that cannot be
 * read: ERROR_INVAL and one line naming where it came from.  KEY is
 * lower case ([a-z_]).  _from also says where the value came from
 * ("XL_SNAPSHOT_MAX_CHAIN in the environment", "FILE:LINE", "built-in
 * default"; gc).
 */
#define LIBXL__SNAPSHOT_HOST_CONFIG "xl-snapshot.conf"
#ifndef LIBXL_SNAPSHOT_MAX_CHAIN
#define LIBXL_SNAPSHOT_MAX_CHAIN 16
#endif
#ifndef LIBXL_SNAPSHOT_SPACE_THRESHOLD
#define LIBXL_SNAPSHOT_SPACE_THRESHOLD 90
#endif
/* Config.mk's values, in the ranges their readers take (chain, space) */
#if LIBXL_SNAPSHOT_MAX_CHAIN < 2 || LIBXL_SNAPSHOT_MAX_CHAIN > 1000
#error "SNAPSHOT_MAX_CHAIN (Config.mk) must be 2 to 1000"
#endif
#if LIBXL_SNAPSHOT_SPACE_THRESHOLD < 1 || LIBXL_SNAPSHOT_SPACE_THRESHOLD > 100
#error "SNAPSHOT_SPACE_THRESHOLD (Config.mk) must be 1 to 100 (percent)"
#endif
int libxl__snapshot_setting(libxl__gc *gc, const libxl__domain_config *dc,
                            const char *key, long dflt, long min, long max,
                            long *val_r);
int libxl__snapshot_setting_from(libxl__gc *gc,
                                 const libxl__domain_config *dc,
                                 const char *key, long dflt, long min,
                                 long max, long *val_r, const char **from_r);

/* ---------------------------------------------------------------- */
/* records (libxl_snapshot_store.c) */

/* Per-disk active image, kept in domain.libxl-json. */
typedef struct libxl__active_disk {
    char *vdev;
    char *path;
    libxl_disk_format format;
    char *config;         /* the config's image for vdev when path was set
                             (NULL: unknown, or in no config) */
    char **copied_from;   /* the active images block-copies pivoted the
                             disk away from, kept (not orphans), until a
                             revert leaves them behind */
    int num_copied_from;
} libxl__active_disk;

/* domain.libxl-json */
typedef struct libxl__domain_record {
    char *name;
    libxl_uuid uuid;
    char *config_file;
    char *current;                    /* current snapshot or NULL */
    libxl__active_disk *disks;
    int num_disks;
} libxl__domain_record;

/*
 * Where one domain's records are kept, and its lock: named blobs (a
 * record's JSON text, the journal, a block job record) behind one small
 * table of operations, because there are two homes for them:
 *  - the directory store, <state_dir>/<uuid>/, one file a name, flock
 *    on its "lock" file (libxl_snapshot_store.c: the default);
 *  - the RADOS store, XL_SNAPSHOT_STORE=rados:POOL: the names are omap
 *    keys of one object a domain, the lock is a RADOS lock with a lease
 *    (libxl_snapshot_store_rados.c), so that every host of a pool sees
 *    the same records.
 * Everything above the table (load, save, the journal, job records,
 * snapshot-check) names a blob only by its name.
 */
typedef struct libxl__snapshot_store libxl__snapshot_store;
/* One name of a put: value NULL removes it. */
typedef struct libxl__store_put {
    const char *name;
    const char *value;
    size_t len;
} libxl__store_put;
typedef struct libxl__snapshot_store_ops {
    /* st->dir (where, for messages) and the store's own state */
    int (*open)(libxl__gc *gc, libxl__snapshot_store *st,
                const char *state_dir, const libxl_uuid *uuid);
    /* once: 0, or ERROR_LOCK_FAIL (*holder_r: who, when known) */
    int (*trylock)(libxl__gc *gc, libxl__snapshot_store *st,
                   const char *me, const char **holder_r);
    void (*unlock)(libxl__snapshot_store *st);
    /* ERROR_NOTFOUND (not logged) when name has no blob; data_r NULL:
     * only whether it has one (the directory store: lstat) */
    int (*get)(libxl__gc *gc, const libxl__snapshot_store *st,
               const char *name, char **data_r, size_t *len_r);
    /* in order, each name atomically (RADOS: all of them in one op);
     * a name whose value is unchanged need not be written; failure
     * logged at lvl */
    int (*put)(libxl__gc *gc, const libxl__snapshot_store *st,
               const libxl__store_put *p, int n, xentoollog_level lvl);
    /* the same, for many names at once (NULL: put does; the directory
     * store's syncs once for all) */
    int (*put_many)(libxl__gc *gc, const libxl__snapshot_store *st,
                    const libxl__store_put *p, int n, xentoollog_level lvl);
    /* the names that begin with prefix, and their values if values_r
     * (a value NULL: the name vanished meanwhile) */
    int (*list)(libxl__gc *gc, const libxl__snapshot_store *st,
                const char *prefix, char ***names_r, char ***values_r,
                int *n_r);
    /* the uuids of the domains that have a store */
    int (*domains)(libxl__gc *gc, libxl_uuid **uuids_r, int *n_r);
} libxl__snapshot_store_ops;
/* the RADOS lock's lease when XL_SNAPSHOT_LOCK_LEASE is not set */
#define LIBXL__LOCK_LEASE_S 30
extern const libxl__snapshot_store_ops libxl__snapshot_store_dir_ops;
extern const libxl__snapshot_store_ops libxl__snapshot_store_rados_ops;
/* the RADOS store's own (libxl_snapshot_store_rados.c) */
typedef struct libxl__rados_store {
    char *pool, *obj;
    pid_t holder;                     /* lock-hold, -1 when none */
    char *cookie;                     /* our lock's, while held */
    /* the omap as last read, and our puts since (sorted by key) */
    bool cached;
    char **keys, **vals;
    int n;
} libxl__rados_store;
/* (pure, for the unit tests) the cache from omap-dump's JSON object */
int libxl__rados_cache_parse(libxl__gc *gc, libxl__rados_store *r,
                             const char *json);
/* the omap-set argvs of a put, unchanged names left out (cache) */
const char ***libxl__rados_put_args(libxl__gc *gc,
                                    const libxl__rados_store *r,
                                    const libxl__store_put *p, int np,
                                    int *nargs_r);
/* who holds the lock, from lock-hold's busy JSON (NULL: unknown) */
const char *libxl__rados_holder(libxl__gc *gc, const char *json);

struct libxl__snapshot_store {
    const libxl__snapshot_store_ops *ops;
    char *dir;                        /* <state>/<uuid>, rados:POOL/OBJ */
    int lockfd;                       /* -1 when not held (RADOS: the
                                         lock holder's stdin) */
    struct libxl__rados_store *rados; /* the RADOS store's own */
};

/*
 * Everything under one domain's directory, loaded; or, when partial,
 * the domain record and its current snapshot only (an operation that
 * only adds a snapshot costs the same at 10 records as at 10,000).
 * A partial tree's snapshots keep the parents and children their files
 * name, and it saves only them: see libxl__snapshot_store_load_one.
 */
typedef struct libxl__snapshot_tree {
    libxl__domain_record dom;
    libxlsnap_domain_snapshot *snaps;     /* gc-owned, see below */
    int num_snaps;
    bool partial;
    /*
     * What loading and fixup found wrong and set aside: a corrupt
     * record (left out, by libxl__snapshot_store_load_check only), a
     * parent without a record, a loop of parents (the snapshot where it
     * closes taken as a root).  snapshot-check reports each.
     */
    char **damage;
    int num_damage;
    char **skipped;                   /* the corrupt records' file names */
    int num_skipped;
} libxl__snapshot_tree;

int libxl__snapshot_store_open(libxl__gc *gc, const char *state_dir,
                               const libxl_uuid *uuid,
                               libxl__snapshot_store *st_r);
/*
 * Tries the per-domain lock once: 0, or ERROR_LOCK_FAIL if another
 * process holds it (*holder_r, if not NULL: who, "host H pid P", when
 * the store knows; else NULL).
 */
int libxl__snapshot_store_trylock(libxl__gc *gc, libxl__snapshot_store *st,
                                  const char **holder_r);
void libxl__snapshot_store_unlock(libxl__snapshot_store *st);
/* "domain D is busy: ... holds its lock[, holder]", logged */
void libxl__snapshot_lock_busy(libxl__gc *gc, const char *domain,
                               const char *holder);
/* The blobs (see libxl__snapshot_store_ops). */
int libxl__snapshot_store_get(libxl__gc *gc, const libxl__snapshot_store *st,
                              const char *name, char **data_r,
                              size_t *len_r);
int libxl__snapshot_store_put(libxl__gc *gc, const libxl__snapshot_store *st,
                              const libxl__store_put *p, int n,
                              xentoollog_level lvl);
int libxl__snapshot_store_put_many(libxl__gc *gc,
                                   const libxl__snapshot_store *st,
                                   const libxl__store_put *p, int n,
                                   xentoollog_level lvl);
int libxl__snapshot_store_put1(libxl__gc *gc,
                               const libxl__snapshot_store *st,
                               const char *name, const char *value,
                               size_t len, xentoollog_level lvl);
int libxl__snapshot_store_list(libxl__gc *gc,
                               const libxl__snapshot_store *st,
                               const char *prefix, char ***names_r,
                               char ***values_r, int *n_r);
/* name as messages show it: <dir>/<name> */
char *libxl__snapshot_store_where(libxl__gc *gc,
                                  const libxl__snapshot_store *st,
                                  const char *name);
/* The uuids of the domains with records, in the context's store. */
int libxl__snapshot_store_domains(libxl__gc *gc, libxl_uuid **uuids_r,
                                  int *n_r);
/* Is the context's store the directory store (records in files)? */
bool libxl__snapshot_store_is_dir(libxl__gc *gc);
/*
 * Is the state dir on storage other hosts see (libxl_snapshot_
 * migrate.c)?  $XL_SNAPSHOT_STATE_SHARED says so (1, or 0: host-local),
 * else the file system: NFS, CIFS, CephFS, GFS2, OCFS2, GPFS, Lustre.
 */
bool libxl__state_dir_shared(libxl__gc *gc, const char *dir);
/*
 * The tree of domain as listings read it (libxl_snapshot_list.c): no
 * lock; (name) only that snapshot's record; a journal no recovery can
 * complete said in a warning.
 */
int libxl__snapshot_tree_load(libxl__gc *gc, const char *domain,
                              const char *name,
                              libxl__snapshot_tree *tree_r);
/*
 * Loads the domain record and every snapshot record; fills children
 * and current.  A corrupt record is an error (ERROR_INVAL naming the
 * file), never silently skipped.
 */
int libxl__snapshot_store_load(libxl__gc *gc, libxl__snapshot_store *st,
                               libxl__snapshot_tree *tree_r);
/*
 * The same for snapshot-check, which changes nothing: a corrupt record
 * is left out and noted in tree_r->damage, leftover "*.tmp" stay.
 */
int libxl__snapshot_store_load_check(libxl__gc *gc, libxl__snapshot_store *st,
                                     libxl__snapshot_tree *tree_r);
/*
 * A partial tree: the domain record and the record of its current
 * snapshot, checked as load checks it (a missing or corrupt current
 * record, a parent or children without a record).  Adding snapshots to
 * it, then saving, leaves the directory as a full load and save would
 * (the current snapshot's children gain the new ones; see the store's
 * design comment for the one difference); removing or re-parenting
 * needs the full tree.  That is name NULL (create); a name loads that
 * snapshot instead (snapshot-info, at the cost of one record), with the
 * same checks: ERROR_NOTFOUND (not logged) if it has no record.
 */
int libxl__snapshot_store_load_one(libxl__gc *gc, libxl__snapshot_store *st,
                                   const char *name,
                                   libxl__snapshot_tree *tree_r);
/* Is there a record for snapshot name?  (No record is read.) */
bool libxl__snapshot_store_has(libxl__gc *gc, const libxl__snapshot_store *st,
                               const char *name);
/* Only the domain record (empty if there is none). */
int libxl__snapshot_store_load_domain(libxl__gc *gc,
                                      libxl__snapshot_store *st,
                                      libxl__domain_record *dom_r);
/* The domain record as its file's text, and back (what: for messages;
 * an error is logged) */
char *libxl__domain_record_to_json(libxl__gc *gc,
                                   const libxl__domain_record *d);
int libxl__domain_record_from_json(libxl__gc *gc, const char *what,
                                   yajl_val v, libxl__domain_record *d_r);
/* Atomic writes; only records whose text changed are rewritten. */
int libxl__snapshot_store_save(libxl__gc *gc, libxl__snapshot_store *st,
                               const libxl__snapshot_tree *tree);
/* The same, its writes synced once for all (many new records at once) */
int libxl__snapshot_store_save_many(libxl__gc *gc, libxl__snapshot_store *st,
                                    const libxl__snapshot_tree *tree);
char *libxl__snapshot_record_path(libxl__gc *gc,
                                  const libxl__snapshot_store *st,
                                  const char *name);
/* Tree helpers; recompute children and current from parents. */
void libxl__snapshot_tree_fixup(libxl__gc *gc, libxl__snapshot_tree *t);
libxlsnap_domain_snapshot *libxl__snapshot_tree_find(libxl__snapshot_tree *t,
                                                 const char *name);
/* Removes a snapshot, re-parenting its children. */
void libxl__snapshot_tree_remove(libxl__gc *gc, libxl__snapshot_tree *t,
                                 const char *name);
void libxl__snapshot_tree_add(libxl__gc *gc, libxl__snapshot_tree *t,
                              const libxlsnap_domain_snapshot *s);
/* n snapshots whose names t does not have, one fixup */
void libxl__snapshot_tree_add_many(libxl__gc *gc, libxl__snapshot_tree *t,
                                   const libxlsnap_domain_snapshot *snaps,
                                   int n);
libxl__active_disk *libxl__domain_record_disk(libxl__domain_record *d,
                                              const char *vdev);
/*
 * The record's image for config disk dk, the one the domain starts on:
 * NULL when the record has none, or when the config now names another
 * image than the one the record's was set under (the config changed by
 * hand: it wins; said once with warn).
 */
const libxl__active_disk *libxl__domain_record_active(
    libxl__gc *gc, const libxl__domain_record *d,
    const libxl_device_disk *dk, bool warn);
/* The driver's create, refused on a differencing VHD (see domain.c). */
int libxl__domain_start(libxl__gc *gc, const libxl__domain_config *cfg,
                        libxl__domain_record *rec, bool paused,
                        const char *restore,
                        const libxlsnap_progress_how *progress,
                        uint32_t *domid_r);
/* (cfg: the domain config, whose image for vdev the entry keeps) */
void libxl__domain_record_set_disk(libxl__gc *gc, libxl__domain_record *d,
                                   const libxl__domain_config *cfg,
                                   const char *vdev, const char *path,
                                   libxl_disk_format format);
/* Is path the active image of a disk in the domain record? */
bool libxl__domain_record_has_image(const libxl__domain_record *d,
                                    const char *path);
/* Is s valid UTF-8?  Records are JSON: what they hold must be text. */
bool libxl__utf8_valid(const char *s);
/* Is name (in a domain's record directory) a record, the lock...? */
bool libxl__snapshot_store_owns(libxl__gc *gc, const libxl__snapshot_tree *t,
                                const char *name);
/* True if some snapshot record refers to path as an image. */
bool libxl__snapshot_tree_uses_file(const libxl__snapshot_tree *t,
                                    const char *path);
/*
 * True if a record's disk (not one marked done, "no") has path as its
 * image: the image an external snapshot froze, the one holding an
 * internal snapshot, an LVM origin.
 */
bool libxl__snapshot_tree_has_image(const libxl__snapshot_tree *t,
                                    const char *path);
/*
 * The images that nothing needs any more: each of from[] (with_self)
 * and the images below it in its backing chain, down to the first one
 * that is an image of the domain config (cfg), a record's image, or in
 * the backing chain of a record's image or of one of keep[] (the active
 * images).  In two parts, so that the qemu-img runs are steps on the
 * loop (libxl__snapshot_remove_unused):
 *  - _probe: the images whose chains decide it (gc), each once: the
 *    records' and keep[]'s first (*num_need_r of them), then those of
 *    from[] that exist;
 *  - _images: given their --backing-chain infos (chains[i] NULL: it did
 *    not open), what nothing needs, top first, in *unused_r; returns
 *    how many: 0, and *why_r the image, when a needed chain cannot be
 *    read (nothing goes on a guess); an image of from[] that does not
 *    open is passed over.
 */
int libxl__snapshot_unused_probe(libxl__gc *gc,
                                 const libxl__snapshot_tree *t,
                                 const char *const *keep, int num_keep,
                                 const char *const *from, int num_from,
                                 const char ***images_r, int *num_need_r);
int libxl__snapshot_unused_images(libxl__gc *gc,
                                  const libxl__domain_config *cfg,
                                  const char *const *images,
                                  const yajl_val *chains, int num_need,
                                  int num_images, bool with_self,
                                  const char ***unused_r,
                                  const char **why_r);
/*
 * Ownership, in one place: every overlay a snapshot made, image an
 * external snapshot froze, internal snapshot (image and tag), memory
 * image and LVM volume belongs to exactly one record of the domain.
 * (A later snapshot freezing the overlay an earlier one made is a
 * chain, not a clash.)  Create, redefine and delete ask it about one
 * record s (in t or not; t's record of the same name is left out):
 * the parts of s that another record owns.  snapshot-check asks it
 * about t as a whole (s NULL): every part two records own.  Returns
 * how many; *clashes_r (may be NULL) in gc.
 */
typedef struct libxl__snapshot_clash {
    const char *name, *what;          /* a record and its part */
    const char *owner, *owner_what;   /* the other record claiming it */
} libxl__snapshot_clash;
int libxl__snapshot_ownership(libxl__gc *gc, const libxl__snapshot_tree *t,
                              const libxlsnap_domain_snapshot *s,
                              libxl__snapshot_clash **clashes_r);
/* The same, as a refusal: 0, or ERROR_INVAL with one line naming the
 * owner of the first part of s another record owns. */
int libxl__snapshot_claim(libxl__gc *gc, const libxl__snapshot_tree *t,
                          const libxlsnap_domain_snapshot *s);
/*
 * After a commit of from into to (to holds what from held): the
 * records on vdev that named from name to, the domain record's entry
 * for vdev too; an overlay from is gone.
 */
void libxl__snapshot_tree_move_file(libxl__gc *gc, libxl__snapshot_tree *t,
                                    const char *vdev, const char *from,
                                    const char *to, libxl_disk_format fmt);

/* ---------------------------------------------------------------- */
/* domains and drivers (libxlsnap_domain.c, _drv_*.c) */

struct libxl__domain {
    char *name;
    libxl_uuid uuid;
    uint32_t domid;                   /* INVALID_DOMID if shut off */
    bool running;                     /* a device model to talk to */
    bool paused;
    char *qmp_path;                   /* when running */
    char *config_file;                /* may be NULL on xen */
    /* disks with pdev_path = active image */
    libxl_device_disk *disks;
    int num_disks;
};

/*
 * Stopping and starting a domain as steps of an ao (the revert):
 * libxl__domain_stop_async runs the driver's destroy_async (never
 * aborted: a domain half-stopped is no state to leave), and
 * libxl__domain_start_async its create_async, or their synchronous
 * destroy / create from the step when it has none (xen).
 * callback(rc): 0 (da->domid), an error, or ERROR_ABORTED (ao_abort,
 * unless unabortable: the half-started domain is destroyed, the domain
 * is left shut off).
 */
typedef struct libxl__domain_async libxl__domain_async;
typedef void libxl__domain_async_cb(libxl__egc *egc,
                                    libxl__domain_async *da, int rc);
struct libxl__domain_async {
    /* caller fills in */
    libxl__ao *ao;
    libxl__domain *d;                 /* stop */
    const libxl__domain_config *cfg;  /* start */
    libxl__domain_record *rec;
    bool paused;
    const char *restore;
    /*
     * start (qemu driver): restore from a migration stream instead,
     * incoming_fd, the driver's from the call on (closed in every case)
     */
    bool incoming;
    int incoming_fd;
    const libxlsnap_progress_how *progress;
    bool unabortable;
    libxl__domain_async_cb *callback;
    /* results */
    uint32_t domid;
    bool incoming_started;            /* QEMU has incoming_fd: it says
                                         nothing of a failure from then
                                         on (the sender does) */
    /* private (driver) */
    libxl__qmp qmp;
    libxl__ev_time poll;
    libxl__ao_abortable abrt;
    uint64_t deadline;
    pid_t pid;
    unsigned long long start_time;
    const char *qmp_path, *logfile;
    int lockfd;
    libxl__exec_state es;             /* xen: the system xl */
    libxl__ev_time tick;              /* xen: restore's progress */
    const char *const *args;
    char *rcfg;
    uint64_t size;
};
void libxl__domain_start_async(libxl__egc *egc, libxl__domain_async *da);
/*
 * qemu driver: where a migration's destination listens for the guest
 * agent (the source holds path) until the switch renames it to path.
 */
char *libxl__agent_incoming_path(libxl__gc *gc, const char *path);
void libxl__domain_stop_async(libxl__egc *egc, libxl__domain_async *da);

typedef struct libxl__snapshot_driver {
    const char *name;
    int (*init)(libxlsnap_ctx *ctx);
    void (*fini)(libxlsnap_ctx *ctx);
    /*
     * Running domain by name, domid or uuid: ERROR_DOMAIN_NOTFOUND.
     * run_state: d_r->paused must be right; the qemu driver asks QEMU
     * (query-status, up to 5 s while another client holds its
     * monitor).  Without it, paused is false and nothing is asked of
     * the device model (the runtime file and the pid only).
     */
    int (*lookup_running)(libxl__gc *gc, const char *domain,
                          bool run_state, libxl__domain *d_r);
    int (*pause)(libxl__gc *gc, libxl__domain *d);
    int (*unpause)(libxl__gc *gc, libxl__domain *d);
    /* the running domain's RAM, in bytes (read only; NULL: unknown) */
    int (*memory_bytes)(libxl__gc *gc, const libxl__domain *d,
                        uint64_t *bytes_r);

    /* Stops the domain at once (as xl destroy). */
    int (*destroy)(libxl__gc *gc, libxl__domain *d);
    /*
     * Starts from config, disks replaced by the active images; with
     * restore (a memory image), from that saved state, its reading
     * reported to progress (may be NULL).
     */
    int (*create)(libxl__gc *gc, const libxl__domain_config *cfg,
                  const libxl__domain_record *rec, bool paused,
                  const char *restore,
                  const libxlsnap_progress_how *progress,
                  uint32_t *domid_r);
    /* create and destroy on the loop (libxl__domain_async); may be NULL */
    void (*create_async)(libxl__egc *egc, libxl__domain_async *da);
    void (*destroy_async)(libxl__egc *egc, libxl__domain_async *da);
    /*
     * Memory checkpoints of domains whose memory QEMU does not hold
     * (xen): suspend into fd (the guest stays suspended), and resume
     * in place.  NULL: QEMU's migration does it (qemu driver).
     */
    /* 0: ss->callback will come; else no callback (ss->stopped says) */
    int (*suspend)(libxl__egc *egc, libxl__driver_suspend_state *ss);
    int (*resume)(libxl__gc *gc, const libxl__domain *d);
    /*
     * The same resume on the loop, after ss's suspend (ss->callback
     * set anew by the caller): 0, ss->callback will come (never
     * aborted: it is the cleanup); else no callback.
     */
    int (*resume_async)(libxl__egc *egc, libxl__driver_suspend_state *ss);
    /*
     * A disk's active image changed on a running domain (after a live
     * external snapshot, a pivot): make save/migrate/reboot use path
     * instead of from.  Only if the disk still runs from (or path
     * already): one another toolstack command detached, or attached
     * anew, meanwhile is left as that command left it (warned, 0).
     * May be NULL (nothing to do).
     */
    int (*set_active_disk)(libxl__gc *gc, libxl__domain *d,
                           const char *vdev, const char *from,
                           const char *path, libxl_disk_format format);
    int (*list)(libxl__gc *gc, libxl__domain **list_r, int *nb_r);
    /*
     * The system toolstack starts domains itself (xen): the config
     * override ("disk=[ ... ]") that makes it use the active images.
     * NULL when this driver starts domains through ->create only.
     */
    int (*disk_override)(libxl__gc *gc, const libxl__domain_config *cfg,
                         const libxl__domain_record *rec, char **arg_r);
    /*
     * The toolstack's own lock on a QMP socket (xen: libxl's
     * qmp-socket-lock), held from before connecting until closing:
     * 0 and *fd_r the lock (-1: this socket has none), ERROR_LOCK_FAIL
     * while another holds it (tried again later), or an error (logged).
     * NULL: no such lock.
     */
    int (*qmp_trylock)(libxl__gc *gc, const char *qmp_path,
                       char **lockfile_r, int *fd_r);
    void (*qmp_unlock)(const char *lockfile, int fd);
} libxl__snapshot_driver;

extern const libxl__snapshot_driver libxl__snapshot_driver_qemu;
extern const libxl__snapshot_driver libxl__snapshot_driver_xen;

/* the repeated-message filter of the log (core.c) starts afresh */
void libxl__log_forget(libxlsnap_ctx *ctx);

struct libxlsnap_ctx {
    xentoollog_logger *lg;
    libxl_ctx *xl;                    /* xen driver only */
    bool xl_is_callers;               /* xl: settings.xl_ctx, not ours */
    int lock_timeout;                 /* seconds (settings) */
    libxlsnap_driver driver_id;
    const libxl__snapshot_driver *driver;
    char *state_dir;
    char *run_dir;
    char *config_dir;                 /* /etc/xen */
    char *qemu_bin, *qemu_img, *xen_qemu, *lvm, *vhd_util;
    char *ceph_util;                  /* tools/ceph-util: librbd, librados */
    char *system_xl;                  /* the real xl, for the xen driver */
    /* the record store (XL_SNAPSHOT_STORE): NULL the directory store,
     * else the RADOS store's pool; its client id, its lock's lease */
    char *store_pool, *ceph_id;
    bool store_dir_said;              /* rados: the state dir's records */
    int lock_lease;
    unsigned fd_gen;
    /* the last warnings and errors logged, each said once (core.c) */
#define LIBXL__LOG_RECENT 8
    uint64_t log_recent[LIBXL__LOG_RECENT];    /* hashes of the text */
    uint64_t log_recent_ms[LIBXL__LOG_RECENT];
    int log_recent_next;
    LIST_HEAD(, libxl__ev_fd) fds;
    LIST_HEAD(, libxl__ev_time) timers;
    LIST_HEAD(, libxl__ao) aos;
};

/*
 * Resolves a domain: running (driver), else a config file path, else
 * a domain record in the state dir or <config_dir>/<name>.cfg.
 * The active image of each disk comes from the domain record when it
 * has one, else from the config.
 */
int libxl__domain_resolve(libxl__gc *gc, const char *domain,
                          libxl__domain *d_r, libxl__domain_config *cfg_r);
/*
 * The same without the run state (d_r->paused false): nothing is asked
 * of the device model, so it never waits on QEMU's monitor, which
 * another client (a context holding the domain's lock) may hold.  For
 * what needs only the domain's identity, disks and records: finding
 * the lock to take, listing records.
 */
int libxl__domain_identify(libxl__gc *gc, const char *domain,
                           libxl__domain *d_r, libxl__domain_config *cfg_r);
/* Loads cfg for d (may be a running xen domain without config). */
libxl_device_disk *libxl__domain_disk(libxl__domain *d, const char *vdev);
/*
 * Node names: QEMU names Xen qdisk nodes <vdev>-<driver>
 * ("xvda-qcow2"); overlays we add are <vdev>-ovN.
 */
char *libxl__disk_node_name(libxl__gc *gc, const char *vdev,
                            libxl_disk_format format);
const char *libxl__disk_format_qemu(libxl_disk_format f);
int libxl__disk_format_from_qemu(const char *s, libxl_disk_format *f);

/*
 * Operations run under the per-domain lock.  A step that must wait for
 * the lock uses libxl__snapshot_lock (retry timer, gives up with
 * ERROR_LOCK_FAIL after the context's lock timeout: settings, else
 * $XL_SNAPSHOT_LOCK_TIMEOUT seconds, else 10).
 */
typedef struct libxl__snapshot_lock libxl__snapshot_lock;
typedef void libxl__snapshot_lock_callback(libxl__egc *egc,
                                           libxl__snapshot_lock *lk,
                                           int rc);
struct libxl__snapshot_lock {
    libxl__ao *ao;
    libxl__snapshot_store *st;
    libxl__snapshot_lock_callback *callback;
    const char *domain_name;          /* for the message */
    bool once;                        /* try once: ERROR_LOCK_FAIL, quiet */
    /* private */
    libxl__ev_time retry;
    uint64_t deadline_ms;
    libxl__ao_abortable abrt;
};
void libxl__snapshot_lock_acquire(libxl__egc *egc,
                                  libxl__snapshot_lock *lk);

/*
 * The common start of every snapshot operation: resolve the domain,
 * take its lock, resolve again (it may have changed while we waited),
 * load the records.  callback(rc) with everything filled in; the lock
 * is held if and only if rc == 0.  libxl__snapshot_op_end releases it.
 */
typedef struct libxl__snapshot_op libxl__snapshot_op;
typedef void libxl__snapshot_op_callback(libxl__egc *egc,
                                         libxl__snapshot_op *op, int rc);
struct libxl__snapshot_op {
    /* caller fills in */
    libxl__ao *ao;
    const char *domain;
    libxl__snapshot_op_callback *callback;
    bool lock_once;                   /* busy: ERROR_LOCK_FAIL at once */
    const char *own_job;              /* the disk whose block job this op
                                         controls: recovery leaves it */
    bool partial_tree;                /* the op only adds snapshots: load
                                         a partial tree (recovery loads
                                         the whole one when it acts) */
    bool read_only;                   /* snapshot-check: changes nothing
                                         (no recovery; a corrupt record
                                         is damage: load_check) */
    bool set_aside_journal;           /* snapshot-recover: a journal no
                                         recovery can complete is moved
                                         aside (and the op fails) */
    bool finishes_delete;             /* a delete recovery leaves part-
                                         done is the caller's to finish
                                         and to say (not recovery's:
                                         libxl__journal_say_unfinished) */
    const char *config_if_unknown;    /* snapshot-import-records: a domain
                                         nothing here knows is resolved
                                         by this config file (the one its
                                         records name), if it is there */
    /* results */
    bool recovered;                   /* a journal was found and handled */
    const char *unfinished_delete;    /* a recovered delete left this */
    const char *unfinished_how;       /* "it had stopped after ..." */
    const char *unfinished_rest;      /* "; 'p', which ...", or "" */
    libxl__domain d;
    libxl__domain_config cfg;
    libxl__snapshot_store st;
    libxl__snapshot_tree tree;
    /* private */
    libxl__snapshot_lock lk;
    libxl_uuid locked_uuid;
    libxl__snapshot_op_callback *recovered_cb;  /* journal_recover's */
    /* a job adopted at READY, told to finish: waited for on the loop
     * (libxl__blockjob_recover says ERROR_NOT_READY meanwhile) */
    const char *adopt_id;
    uint64_t adopt_deadline;
    libxl__ev_time adopt_poll;
    libxl__ao_abortable adopt_abrt;
};
void libxl__snapshot_op_begin(libxl__egc *egc, libxl__snapshot_op *op);
/* Makes op->tree whole, if it was loaded partial. */
int libxl__snapshot_op_load_all(libxl__gc *gc, libxl__snapshot_op *op);
/*
 * ERROR_DEVICE_EXISTS (logged) if a disk of d has a block job record:
 * snapshot operations leave such a disk alone (libxl_snapshot_commit.c).
 */
int libxl__blockjob_check_idle(libxl__gc *gc,
                               const libxl__snapshot_store *st,
                               const libxl__domain *d);
/*
 * Once begun: ERROR_* (said) while a journal is left that recovery
 * could not complete, or a disk is in a block job: what reads the
 * images as the records say them (export, snapshot-diff) waits.
 */
int libxl__snapshot_op_settled(libxl__gc *gc, libxl__snapshot_op *op);
void libxl__snapshot_op_end(libxl__gc *gc, libxl__snapshot_op *op);

/* ---------------------------------------------------------------- */
/* chain length (libxl_snapshot_chain.c) */

/* max_chain for the domain of cfg (may be NULL), and where it is set */
int libxl__chain_max(libxl__gc *gc, const libxl__domain_config *cfg,
                     long *max_r, const char **from_r);
/* A layer to merge before a create: top into its backing, base. */
typedef struct libxl__chain_merge {
    const char *vdev, *top, *base;
    bool active;                      /* top is the active image */
    int length;                       /* the chain's, before */
    long max;
} libxl__chain_merge;
/*
 * Before a create writes anything: would the external snapshots of s
 * make a disk's chain longer than max_chain (chains: per disk, its
 * image's chain; one not known is not checked)?  0: no;
 * ERROR_* refused (said, one line); 1 with auto_commit: *m_r is the
 * layer to merge first.  May load op's whole tree.
 */
int libxl__chain_limit(libxl__gc *gc, libxl__snapshot_op *op,
                       const libxlsnap_domain_snapshot *s,
                       const libxl__image_chain *chains, bool auto_commit,
                       libxl__chain_merge *m_r);
/*
 * A block commit within ao (libxlsnap_block_commit is one):
 * callback(for_callback, rc) once it is over, the lock released.
 */
typedef void libxl__block_commit_cb(libxl__egc *egc, void *for_callback,
                                    int rc);
void libxl__block_commit_start(libxl__egc *egc, libxl__ao *ao,
                               const char *domain, const char *vdev,
                               const libxlsnap_block_commit_params *params,
                               const libxlsnap_progress_how *progress,
                               libxl__block_commit_cb *callback,
                               void *for_callback);
/*
 * A job record for a job another file runs (a backup's disk): info's
 * id, vdev, type, live, top, base.  Snapshot commands leave the disk
 * alone while it exists; libxl__blockjob_recover leaves a BACKUP one to
 * libxl__backup_recover.
 */
int libxl__blockjob_record_put(libxl__gc *gc,
                               const libxl__snapshot_store *st,
                               const libxlsnap_blockjob_info *info,
                               libxl_disk_format top_format);
void libxl__blockjob_record_remove(libxl__gc *gc,
                                   const libxl__snapshot_store *st,
                                   const char *vdev);
/*
 * Under the lock, at the start of every command (from
 * libxl__blockjob_recover): the domain's backup
 * whose process died or that nobody waits for (--async): a push whose
 * copies QEMU has finished is recorded (completed, or undone), one QEMU
 * no longer runs is undone; a running push, and a pull's exports, are
 * left alone (libxl_snapshot_backup.c).
 */
int libxl__backup_recover(libxl__gc *gc, libxl__snapshot_op *op);
/*
 * A pull backup's NBD address as QMP's SocketAddress (*addr_r, gc): a
 * unix socket (a path with a '/'), HOST:PORT or [IPv6]:PORT.
 * ERROR_INVAL, said, for anything else.
 */
int libxl__backup_nbd_addr(libxl__gc *gc, const char *s, yajl_val *addr_r);
/* The images of the domain's backup while it is not over (a push's
 * targets, a pull's fleecing overlays): how many, *files_r (gc). */
int libxl__backup_files(libxl__gc *gc, const libxl__snapshot_store *st,
                        const char ***files_r);
/*
 * snapshot-check (which recovers nothing): is vdev's block job, by its
 * record, still going: QEMU has it (any state: running, ready,
 * concluded but not yet recorded...) or the process that runs it is
 * alive?  0 and *seen_r (gc) if so; ERROR_NOTFOUND if vdev has no job
 * record; another error if the record is left with nothing behind it.
 */
typedef struct {
    const char *id, *status;          /* QEMU's status, or "running" */
    const char *top, *base;           /* the images it was given */
} libxl__blockjob_seen;
int libxl__blockjob_pending(libxl__gc *gc, const libxl__snapshot_store *st,
                            const libxl__domain *d, const char *vdev,
                            libxl__blockjob_seen *seen_r);
/* Under the lock: clears job records whose process and QEMU job died. */
int libxl__blockjob_recover(libxl__gc *gc, libxl__snapshot_op *op);
/*
 * Under the lock: a commit of top into base (one level) that stopped
 * before it completed, and may have written part of top into base: as
 * after an aborted block-commit, the records whose data was base's are
 * removed (and saved), with what only they held.  *dropped_r: their
 * names, comma-separated, for the caller to say (NULL: none).
 */
int libxl__commit_stopped_records(libxl__gc *gc, libxl__snapshot_op *op,
                                  const char *vdev, const char *top,
                                  const char *base, const char **dropped_r);

/* ---------------------------------------------------------------- */
/* disk backends (libxl_snapshot_backend*.c) */

/*
 * How one disk is snapshotted: one table of operations a backend, as
 * the domain drivers are.  The operations (create, revert, delete,
 * check, recovery) go over the disks and call the disk's backend
 * (libxl__snapshot_backend_of), so that a new kind of disk is one
 * new file and one entry in libxl__snapshot_backends.
 *   internal  qcow2 snapshot inside the image  (backend_internal.c)
 *   overlay   image frozen, new qcow2 overlay  (backend_overlay.c)
 *   vhd       overlay of a VHD image, vhd-util (backend_vhd.c)
 *   lvm       LVM snapshot volume              (backend_lvm.c)
 * Everything here is synchronous and quick (lvs, qemu-img info,
 * qemu-img snapshot -d, unlink); what takes long stays a step of
 * its operation (commands it runs on the loop: ->snapshot_cmds; QEMU's
 * transaction: ->live_actions), but for recovery's ->revert_redo,
 * synchronous as the journal's recovery always was.
 * An op left NULL is a backend with nothing to do there (said per op).
 */
/*
 * ->live_refused: how surely ds is the disk QEMU refused.  QEMU
 * prepares the actions in order and stops at the first that fails; the
 * surest disk is named, of NAMED and MISSING the first, of MAYBE the
 * last (all were prepared: the last failed).
 */
enum {
    LIBXL__REFUSED_MAYBE = 1,         /* it could be */
    LIBXL__REFUSED_MISSING,           /* the file it makes is missing */
    LIBXL__REFUSED_NAMED,             /* QEMU's message names it */
};
/* A disk snapshot's file in libvirt's XML: <disk type=TYPE><driver
 * type=DRIVER/><source ATTR=VALUE/></disk> (libxl_snapshot_xml.c) */
typedef struct {
    const char *type;                 /* "file", "block" */
    const char *driver;               /* NULL: no <driver> */
    const char *attr, *value;
} libxl__xml_source;
/* What a record owns (libxl__snapshot_ownership, store.c), part by part */
typedef enum {
    LIBXL__PART_OVERLAY,              /* the overlay an external made */
    LIBXL__PART_FROZEN,               /* the image an external froze */
    LIBXL__PART_TAG,                  /* an internal snapshot: image, tag */
    LIBXL__PART_MEMORY,
    LIBXL__PART_VOLUME,               /* an LVM snapshot volume */
} libxl__part_kind;
typedef struct {
    libxl__part_kind kind;
    const char *path, *tag;           /* path NULL: none */
} libxl__snapshot_part;

/* One disk of a new snapshot (libxl_snapshot_create.c), to be planned */
typedef struct libxl__create_plan {
    libxl__snapshot_op *op;
    const libxlsnap_domain_snapshot *s;   /* its disks before this one are
                                         planned */
    int index;                        /* this disk: s->disks[index] */
    void *const *priv;                /* per disk of s: its probe's */
    const libxl_device_disk *dk;      /* the domain's disk */
    const libxl_device_disk *config;  /* its disk in the domain config */
    const libxlsnap_disk_snapshot *req;   /* the request's, or NULL */
    /* ": it is snapshot S's ..." when a record owns path, else "" */
    const char *(*owner_of)(libxl__gc *gc, void *ctx, const char *path);
    void *owner_ctx;
} libxl__create_plan;

/* One disk of a revert (libxl_snapshot_revert.c), as its backend plans
 * it. */
typedef struct libxl__revert_disk {
    const libxlsnap_disk_snapshot *ds;
    const char *old_active;          /* the image being left */
    char *new_active;
    libxl_disk_format new_format;
    const char *const **cmds;        /* run in turn */
    int num_cmds;
    bool new_image;                  /* new_active is made by cmds: a
                                        failure removes it */
    bool forward_only;               /* once run, it cannot be undone
                                        (an internal revert in place) */
    int timeout_ms;                  /* each command's (0: 5 minutes) */
    /* internal */
    const char *tag_id;              /* the qcow2 snapshot ID */
    bool copy;                       /* frozen: copied out */
    uint64_t copy_size;              /* its virtual size: progress of a
                                        copy's (or rollback's) -p lines */
    const char *copy_base;           /* the copy is built on it: the
                                        backing of the image copied */
    libxl_disk_format copy_base_format;
    /* lvm: merge, then the snapshot volume again (see backend_lvm) */
    const char *volume;              /* the snapshot volume */
    uint64_t lvm_size;               /* thick: the snapshot's size */
    bool rbd;                        /* rbd: rolled back to tag_id */
} libxl__revert_disk;
typedef struct libxl__revert_plan {
    const libxl__snapshot_op *op;
    const char *snapshot;            /* its name, for messages */
    bool force;                      /* a running domain may be stopped */
    yajl_val info;                   /* ->image_info: the image's */
    const libxl_device_disk *dk;     /* the domain's disk */
    char *fresh;                     /* a free path for a new image */
} libxl__revert_plan;

/*
 * The space guards of snapshot-create (libxl_snapshot_space.c): what a
 * planned snapshot will write, per file system, against statvfs's
 * f_bavail, before anything is done.  The backends' ->space add their
 * disks' parts: libxl__space_add (bytes written into path: a new
 * file's, or an image's written in place), libxl__space_tally (a
 * running total under key, "vg:NAME", of several disks) and
 * libxl__space_refuse (why not, their own rule; one per key, the last
 * said).
 */
typedef struct libxl__space_plan libxl__space_plan;
void libxl__space_add(libxl__gc *gc, libxl__space_plan *sp, const char *path,
                      uint64_t bytes, const char *what);
uint64_t libxl__space_tally(libxl__gc *gc, libxl__space_plan *sp,
                            const char *key, uint64_t bytes);
void libxl__space_refuse(libxl__gc *gc, libxl__space_plan *sp,
                         const char *key, const char *why);
/* the threshold (percent) LVM's rules go by */
long libxl__space_threshold(const libxl__space_plan *sp);
/* the reserve of first writes after a snapshot of a disk of vsize
 * bytes: 1 %, at least 1 MiB, at most 1 GiB, at most the disk */
uint64_t libxl__space_first_writes(uint64_t vsize);
/* "1.5 MiB", "512 B" (gc) */
const char *libxl__bytes_human(libxl__gc *gc, uint64_t b);
/* an empty plan (gc); the verdict on it, for snapshot name: as below */
libxl__space_plan *libxl__space_plan_new(libxl__gc *gc, long threshold);
int libxl__space_verdict(libxl__gc *gc, libxl__space_plan *sp,
                         const char *name, bool force, bool dry_run);
/*
 * s (planned; priv: its disks' probes; chains: per disk, its image's
 * chain, libxl_snapshot_chain.c) checked: 0, it fits (or force:
 * a warning line says what it overrode); ERROR_FAIL, one error line
 * naming each file system short of space, or the LVM rule broken, with
 * the figures.  dry_run: the figures said too (notice lines).
 */
int libxl__snapshot_space_check(libxl__gc *gc, libxl__snapshot_op *op,
                                const libxlsnap_domain_snapshot *s,
                                void *const *priv,
                                const libxl__image_chain *chains,
                                bool force, bool dry_run);
void libxl__overlay_space(libxl__gc *gc, const libxlsnap_disk_snapshot *ds,
                          void *priv, const libxl__image_chain *c,
                          libxl__space_plan *sp);
void libxl__internal_space(libxl__gc *gc, const libxlsnap_disk_snapshot *ds,
                           void *priv, const libxl__image_chain *c,
                           libxl__space_plan *sp);

typedef struct libxl__snapshot_backend {
    const char *name;
    libxlsnap_disk_snapshot_type type;    /* its disks' type in records */
    /*
     * revert: can the revert of ds to dk (NULL: the domain lost it) be
     * undone (it makes a new image)?  Those disks go first.
     */
    bool (*revert_undoable)(const libxlsnap_disk_snapshot *ds,
                            const libxl_device_disk *dk);
    /* revert: its plan for rd->ds (ERROR_*, said); image_info: it is
     * given the image's qemu-img info */
    int (*revert_plan)(libxl__gc *gc, const libxl__revert_plan *p,
                       libxl__revert_disk *rd);
    bool image_info;
    /*
     * revert: a command of rd failed (exit_code: its exit status, -1
     * killed); its steps are put back as they were, or it changed
     * nothing (0), else the revert's journal is to finish it (the
     * caller says so).  NULL: nothing to put back but rd->new_image.
     */
    int (*revert_failed)(libxl__gc *gc, const libxl__revert_disk *rd,
                         int exit_code);
    /*
     * Recovery of a revert that died with the domain stopped, for one
     * disk d of its journal (a libxl__revert_disk as the revert wrote
     * it, file its ds->file and format, na its new_active):
     * revert_journal_owns, is d this backend's (NULL: the entries no
     * backend claims are the chained backends', by their format);
     * revert_redo, to be done again: 0, *fmt_r the disk's format
     * after, and *args_r the command the recovery runs for it (a step
     * on the loop, within *timeout_ms_r), or NULL: nothing to run (done
     * here: LVM's commands); or ERROR_* (said).
     */
    bool (*revert_journal_owns)(yajl_val d);
    int (*revert_redo)(libxl__gc *gc, yajl_val d, const char *file,
                       libxl_disk_format fmt, const char *na,
                       libxl_disk_format *fmt_r,
                       const char *const **args_r, int *timeout_ms_r);
    /*
     * delete, before anything is touched: is ds's snapshot there to
     * remove (1), gone already (0, said), or not to be removed now
     * (ERROR_*, said)?  info: as for ->revert_plan.  NULL: a chained
     * backend, whose images the delete merges (libxl_snapshot_delete.c).
     */
    int (*delete_probe)(libxl__gc *gc, libxl__snapshot_op *op,
                        const char *snapshot, const libxlsnap_disk_snapshot *ds,
                        yajl_val info, const char **tag_id_r);
    /* delete: the command that removes it (NULL: an internal snapshot,
     * removed by the delete, through QMP while QEMU runs the image) */
    const char *const *(*delete_args)(libxl__gc *gc,
                                      const libxlsnap_disk_snapshot *ds);
    /* the parts ds owns, into parts[0..1] (gc): how many */
    int (*parts)(libxl__gc *gc, const libxlsnap_disk_snapshot *ds,
                 libxl__snapshot_part parts[2]);
    /* of the backends of one type, are images of fmt this one's?
     * NULL: yes */
    bool (*owns)(libxl_disk_format fmt);
    /* ... and is a record's disk of that file its (RBD: QEMU's form or
     * the kernel's)?  NULL: yes */
    bool (*owns_file)(const char *file);
    /*
     * A chained backend's images (libxl__chain_backend): the format and
     * file name extension of an overlay on one, and the commands that
     * make one, and re-parent one (metadata only).  NULL: qcow2's, by
     * qemu-img (libxl_snapshot_qemu_img.c).
     */
    libxl_disk_format (*overlay_format)(bool live);
    const char *(*overlay_ext)(bool live);
    const char *const *(*overlay_args)(libxl__gc *gc, const char *base,
                                       const char *overlay);
    const char *const *(*rebase_args)(libxl__gc *gc, const char *image,
                                      const char *base);
    /*
     * The offline merge of a block job (info: top into base, or a
     * stream) on its images: the command, or ERROR_INVAL, said, when
     * it cannot be merged so.  NULL: qemu-img commit or rebase.
     */
    int (*merge_args)(libxl__gc *gc, const libxlsnap_blockjob_info *info,
                      const char *const **args_r);
    /* merges only one image into its parent: never streams into an
     * image, nor into branches (delete plans accordingly) */
    bool one_level;
    /* the image one of its images is built on, or NULL (synchronous) */
    char *(*parent)(libxl__gc *gc, const char *path);
    /* why QEMU cannot run a domain on image path, or NULL */
    const char *(*unrunnable)(libxl__gc *gc, const char *path);
    /*
     * Its images that are no files (RBD: rbd:POOL/IMAGE...): does path
     * name one (names_image)?  image_problem: why that image cannot be
     * used (missing, or the cluster cannot be asked), or NULL, and the
     * names of the snapshots it holds (*tags_r, *n_r; tags_r may be
     * NULL); same_image: is QEMU's filename of a block node (json:{...}) that
     * image?  NULL: its images are files.
     */
    bool (*names_image)(const char *path);
    const char *(*image_problem)(libxl__gc *gc, const char *path,
                                 const char ***tags_r, int *n_r);
    bool (*same_image)(libxl__gc *gc, const char *qemu_file,
                       const char *path);
    /*
     * `qemu-img info` output v (parsed, in gc; NULL: none) completed in
     * place for its images where qemu-img does not follow their chain
     * (VHD): v, or NULL and *err_r (gc) when the chain is broken.
     * NULL op: qemu-img's is complete.  (libxl__image_info_complete)
     */
    yajl_val (*complete_info)(libxl__gc *gc, yajl_val v, char **err_r);
    /*
     * Does it take disk dk (active image; config: the disk in the
     * domain config) when the request leaves the type to the library?
     * May set *priv_r (gc), kept for ->snapshot_cmds.  must_probe: also
     * when the type is asked for (false: the type is then enough).
     */
    bool (*probe)(libxl__gc *gc, const libxl_device_disk *dk,
                  const libxl_device_disk *config, void **priv_r);
    bool must_probe;
    const char *refusal;              /* must_probe: why it refuses */
    /*
     * snapshot: fills in the new record's ds (vdev, file, format set)
     * and checks it can be taken; ERROR_INVAL, said, if not.
     */
    int (*snapshot_plan)(libxl__gc *gc, const libxl__create_plan *p,
                         libxlsnap_disk_snapshot *ds);
    /*
     * snapshot, before anything is done: what taking ds will write, or
     * why it must not be taken for want of space (libxl__space_*;
     * priv: probe's).  NULL: nothing on a local file system (RBD).
     */
    void (*space)(libxl__gc *gc, const libxlsnap_disk_snapshot *ds,
                  void *priv, const libxl__image_chain *c,
                  libxl__space_plan *sp);
    /*
     * snapshot, offline: the commands that take the snapshot of ds (in
     * gc; run in turn); priv: probe's; info: the image's qemu-img info.
     */
    void (*snapshot_cmds)(libxl__gc *gc, const libxlsnap_disk_snapshot *ds,
                          void *priv, yajl_val info,
                          const char *const **cmds_r[], int *n_r);
    /*
     * snapshot, offline, before any command: ERROR_INVAL, said, when ds
     * cannot be taken on its image as info (its qemu-img info) shows it.
     * NULL: it can.
     */
    int (*snapshot_info_check)(libxl__gc *gc,
                               const libxlsnap_disk_snapshot *ds,
                               yajl_val info);
    /*
     * snapshot, live: appends the actions that take ds to the create's
     * QMP transaction (actions), on node, the block node QEMU runs ds's
     * image on (nodes: query-named-block-nodes); *seq numbers the new
     * node names over the transaction.  NULL: not in the transaction
     * (live_paused).
     */
    void (*live_actions)(libxl__gc *gc, const libxlsnap_disk_snapshot *ds,
                         yajl_val nodes, const char *node, yajl_val actions,
                         int *seq);
    /*
     * snapshot, live: QEMU refused the transaction, saying desc: is ds
     * the disk it refused (LIBXL__REFUSED_*, 0: no)?  NULL: no.
     */
    int (*live_refused)(libxl__gc *gc, const libxlsnap_disk_snapshot *ds,
                        const char *desc);
    /*
     * live: QEMU takes it in the create's transaction; live_paused:
     * the guest is paused instead while ->snapshot_cmds run (LVM).
     */
    bool live_paused;
    /*
     * The disk's active image once ds is taken (live or offline), when
     * it changes (NULL: it stays ds->file).
     */
    void (*active_after)(const libxlsnap_disk_snapshot *ds, bool live,
                         const char **path_r, libxl_disk_format *fmt_r);
    /* recovery of a create: was the snapshot of ds taken?  1 yes, 0 no,
     * ERROR_* cannot tell (said): the journal is kept for later */
    int (*taken)(libxl__gc *gc, const libxlsnap_disk_snapshot *ds);
    /* ... live, QEMU running: does its node graph (nodes) say so?  NULL:
     * it says nothing of ds (the transaction took it with the others) */
    bool (*taken_live)(libxl__gc *gc, const libxlsnap_disk_snapshot *ds,
                       yajl_val nodes);
    /*
     * recovery of a delete: 0, its data is there; ERROR_NOTFOUND, it is
     * gone; another error: cannot tell (keep it).
     */
    int (*present)(libxl__gc *gc, const libxlsnap_disk_snapshot *ds);
    /*
     * Undoes one disk snapshot (a create that failed or died): removes
     * what it made, if it is there and no record of t (may be NULL)
     * uses it.  0, or ERROR_* and *why_r (gc, may be NULL): the
     * caller says it.  Through QMP while op's QEMU runs the image.
     */
    int (*undo)(libxl__gc *gc, const libxl__snapshot_op *op,
                const libxlsnap_disk_snapshot *ds,
                const libxl__snapshot_tree *t, const char **why_r);
    /*
     * Drops what only this record holds in place (its records are
     * gone): as ->undo; NULL when the data is an image of its own,
     * which the unused-image sweep removes (overlay, vhd).
     */
    int (*drop)(libxl__gc *gc, const libxl__snapshot_op *op,
                const libxlsnap_disk_snapshot *ds,
                const libxl__snapshot_tree *t, const char **why_r);
    /*
     * check (snapshot-check; snapshot-list, of a volume backend): what
     * is wrong with ds, in words, or NULL.  info: its image's qemu-img
     * info with the backing chain (NULL for a volume backend).  cache:
     * the backend's own, one per operation (NULL at first).
     */
    const char *(*check)(libxl__gc *gc, void **cache,
                         const libxlsnap_disk_snapshot *ds, yajl_val info);
    /* its data is a volume of its own, not in an image file (LVM):
     * ->check needs no image, and is quick */
    bool volume;
    /* its image is in the disk's backing chain, built on its ancestors'
     * (overlay, vhd) */
    bool chained;
    /* its data lives inside its image (a qcow2 snapshot): it survives
     * writes to the image, and needs the image kept */
    bool in_image;
    /*
     * libvirt's <domainsnapshot> XML (libxl_snapshot_xml.c): xml_type,
     * the name of its snapshots there (<disk snapshot=>, unique but for
     * backends sharing their ops); xml_source, the file ds's snapshot
     * made (live: taken while the domain ran), false: none written;
     * xml_parse, ds's own fields from the snapshot's name and its
     * <source file=> and <source dev=> (NULL: absent), false when its
     * file is missing or not absolute.  NULL: nothing of its own.
     */
    const char *xml_type;
    bool (*xml_source)(libxl__gc *gc, const libxlsnap_disk_snapshot *ds,
                       bool live, libxl__xml_source *src);
    bool (*xml_parse)(libxl__gc *gc, libxlsnap_disk_snapshot *ds,
                      const libxlsnap_domain_snapshot *s, const char *file,
                      const char *dev);
    /* redefining ds's record (XML): why its snapshot is not there (its
     * image is), in gc, or NULL.  NULL: the image is enough.  cache: the
     * backend's own, one per operation (a batch asks one image once) */
    const char *(*redefine_missing)(libxl__gc *gc, void **cache,
                                    const libxlsnap_disk_snapshot *ds);
} libxl__snapshot_backend;

/* one per operation, zeroed: what the backends' checks learn once */
typedef struct libxl__backend_cache {
    const libxl__snapshot_backend *owner[8];
    void *data[8];
} libxl__backend_cache;
/* ->redefine_missing of ds's backend (NULL: its snapshot is there) */
const char *libxl__disk_redefine_missing(libxl__gc *gc,
                                         libxl__backend_cache *c,
                                         const libxlsnap_disk_snapshot *ds);
/* ->check of ds's backend (NULL: nothing wrong, or type "no") */
const char *libxl__disk_snapshot_check(libxl__gc *gc,
                                       libxl__backend_cache *c,
                                       const libxlsnap_disk_snapshot *ds,
                                       yajl_val info);

extern const libxl__snapshot_backend libxl__snapshot_backend_internal;
extern const libxl__snapshot_backend libxl__snapshot_backend_overlay;
extern const libxl__snapshot_backend libxl__snapshot_backend_vhd;
extern const libxl__snapshot_backend libxl__snapshot_backend_lvm;
extern const libxl__snapshot_backend libxl__snapshot_backend_rbd;
extern const libxl__snapshot_backend libxl__snapshot_backend_krbd;

/* the internal backend's live operations, which the rbd one shares
 * (QEMU's rbd driver takes blockdev-snapshot-internal-sync) */
void libxl__internal_live_actions(libxl__gc *gc,
                                  const libxlsnap_disk_snapshot *ds,
                                  yajl_val nodes, const char *node,
                                  yajl_val actions, int *seq);
int libxl__internal_live_refused(libxl__gc *gc,
                                 const libxlsnap_disk_snapshot *ds,
                                 const char *desc);
/* ->xml_parse of a snapshot inside its image: the tag is its name */
bool libxl__tag_xml_parse(libxl__gc *gc, libxlsnap_disk_snapshot *ds,
                          const libxlsnap_domain_snapshot *s,
                          const char *file, const char *dev);

/* RBD images (libxl_snapshot_backend_rbd.c), QEMU's form of them:
 * rbd:POOL/IMAGE[:conf=FILE][:id=USER], or the kernel form's record:
 * /dev/rbd/POOL/IMAGE (no conf, no id: ceph-util's defaults) */
typedef struct {
    const char *pool, *image;
    const char *conf, *id;            /* NULL: ceph-util's defaults */
} libxl__rbd_image;
/* 0, or ERROR_INVAL and *why_r ("is not ...", gc) */
int libxl__rbd_parse(libxl__gc *gc, const char *target, libxl__rbd_image *r,
                     const char **why_r);
/* `ceph-util image-info` of spec: 0 and *info_r; ERROR_NOTFOUND; else
 * ERROR_* and *why_r */
int libxl__rbd_image_info(libxl__gc *gc, const char *spec, yajl_val *info_r,
                          const char **why_r);
/* ceph-util du of spec: {"snapshots": [{"name", "used"...}], "head"}
 * (each snapshot's rbd du figure); errors as image_info's */
int libxl__rbd_du(libxl__gc *gc, const char *spec, yajl_val *du_r,
                  const char **why_r);
/* block-copy's RBD destination: 1 exists, 0 not, <0 ERROR_* (*why_r);
 * its removal (an unfinished copy; not there: 0; a failure is warned) */
int libxl__rbd_image_exists(libxl__gc *gc, const char *spec,
                            const char **why_r);
int libxl__rbd_image_remove(libxl__gc *gc, const char *spec);

/* The backend of a disk snapshot in a record (NULL: type "no"). */
const libxl__snapshot_backend *libxl__snapshot_backend_of(
    const libxlsnap_disk_snapshot *ds);
/* The backend libvirt's XML names xml_type, or NULL */
const libxl__snapshot_backend *libxl__xml_backend(const char *xml_type);
/* The chained backend whose images are of format fmt (overlay, vhd). */
const libxl__snapshot_backend *libxl__chain_backend(libxl_disk_format fmt);
/* The backend of disk d of a revert's journal, its image of format fmt
 * (->revert_journal_owns) */
const libxl__snapshot_backend *libxl__revert_journal_backend(
    yajl_val d, libxl_disk_format fmt);
/* Why QEMU cannot run a domain on image path (a backend's
 * ->unrunnable), or NULL. */
const char *libxl__image_unrunnable(libxl__gc *gc, const char *path);
/* Is path an image file (no backend's ->names_image names it)? */
bool libxl__image_is_file(const char *path);
/* Why image path cannot be used ("does not exist", ...; gc), or NULL */
const char *libxl__image_missing(libxl__gc *gc, const char *path);
/* ... an image that is no file: and the snapshots it holds (*tags_r) */
const char *libxl__image_problem(libxl__gc *gc, const char *path,
                                 const char ***tags_r, int *n_r);
/* Is QEMU's filename of a block node the image path? */
bool libxl__qemu_file_is(libxl__gc *gc, const char *qemu_file,
                         const char *path);
/* Are images a and b one image?  Files: the same file (st_dev and
 * st_ino: a symbolic or hard link is its target); others as
 * libxl__qemu_file_is.  NULL is no image. */
bool libxl__image_same(libxl__gc *gc, const char *a, const char *b);
/* qemu-img info output v completed by each backend's ->complete_info */
yajl_val libxl__image_info_complete(libxl__gc *gc, yajl_val v, char **err_r);
/*
 * The backend for a new snapshot of disk dk, type asked for (DEFAULT:
 * the first backend whose probe takes it), or NULL when the backend of
 * that type refuses dk (its probe: *why_r says why); *priv_r: the
 * probe's.
 */
const libxl__snapshot_backend *libxl__snapshot_backend_select(
    libxl__gc *gc, libxlsnap_disk_snapshot_type type,
    const libxl_device_disk *dk, const libxl_device_disk *config,
    void **priv_r, const char **why_r);
/*
 * A disk QEMU's backends snapshot (internal, overlay): ERROR_INVAL,
 * said, if QEMU does not serve it while the domain runs, or does not
 * know its format.
 */
int libxl__qemu_disk_refused(libxl__gc *gc, const libxl__create_plan *p);
/*
 * ERROR_INVAL, said, if p's disk is no image file (an RBD image), which
 * a qcow2 snapshot (internal, external) cannot be taken of.
 */
int libxl__image_file_refused(libxl__gc *gc, const libxl__create_plan *p);
/* ->undo of ds's backend (0 for type "no") */
int libxl__disk_snapshot_undo(libxl__gc *gc, const libxl__snapshot_op *op,
                              const libxlsnap_disk_snapshot *ds,
                              const libxl__snapshot_tree *t,
                              const char **why_r);
/* the overlay backend's operations, which the vhd one shares */
bool libxl__overlay_revert_undoable(const libxlsnap_disk_snapshot *ds,
                                     const libxl_device_disk *dk);
int libxl__overlay_revert_plan(libxl__gc *gc, const libxl__revert_plan *p,
                               libxl__revert_disk *rd);
int libxl__overlay_revert_redo(libxl__gc *gc, yajl_val d, const char *file,
                               libxl_disk_format fmt, const char *na,
                               libxl_disk_format *fmt_r,
                               const char *const **args_r,
                               int *timeout_ms_r);
bool libxl__overlay_xml_source(libxl__gc *gc, const libxlsnap_disk_snapshot *ds,
                               bool live, libxl__xml_source *src);
bool libxl__overlay_xml_parse(libxl__gc *gc, libxlsnap_disk_snapshot *ds,
                              const libxlsnap_domain_snapshot *s,
                              const char *file, const char *dev);
int libxl__overlay_parts(libxl__gc *gc, const libxlsnap_disk_snapshot *ds,
                         libxl__snapshot_part parts[2]);
int libxl__overlay_snapshot_plan(libxl__gc *gc, const libxl__create_plan *p,
                                 libxlsnap_disk_snapshot *ds);
#define LIBXL__OVERLAY_BACKEND_OPS                          \
    .snapshot_plan = libxl__overlay_snapshot_plan,          \
    .space = libxl__overlay_space,                          \
    .parts = libxl__overlay_parts,                          \
    .revert_undoable = libxl__overlay_revert_undoable,      \
    .revert_plan = libxl__overlay_revert_plan,              \
    .revert_redo = libxl__overlay_revert_redo,              \
    .snapshot_cmds = libxl__overlay_snapshot_cmds,          \
    .live_actions = libxl__overlay_live_actions,            \
    .live_refused = libxl__overlay_live_refused,            \
    .active_after = libxl__overlay_active_after,            \
    .taken = libxl__overlay_taken,                          \
    .taken_live = libxl__overlay_taken_live,                \
    .present = libxl__overlay_present,                      \
    .undo = libxl__overlay_undo,                            \
    .xml_type = "external",                                 \
    .xml_source = libxl__overlay_xml_source,                \
    .xml_parse = libxl__overlay_xml_parse,                  \
    .chained = true
void libxl__overlay_snapshot_cmds(libxl__gc *gc,
                                  const libxlsnap_disk_snapshot *ds,
                                  void *priv, yajl_val info,
                                  const char *const **cmds_r[], int *n_r);
void libxl__overlay_live_actions(libxl__gc *gc,
                                 const libxlsnap_disk_snapshot *ds,
                                 yajl_val nodes, const char *node,
                                 yajl_val actions, int *seq);
int libxl__overlay_live_refused(libxl__gc *gc,
                                const libxlsnap_disk_snapshot *ds,
                                const char *desc);
int libxl__overlay_taken(libxl__gc *gc, const libxlsnap_disk_snapshot *ds);
bool libxl__overlay_taken_live(libxl__gc *gc,
                               const libxlsnap_disk_snapshot *ds, yajl_val nodes);
void libxl__overlay_active_after(const libxlsnap_disk_snapshot *ds, bool live,
                                 const char **path_r,
                                 libxl_disk_format *fmt_r);
int libxl__overlay_present(libxl__gc *gc, const libxlsnap_disk_snapshot *ds);
int libxl__overlay_undo(libxl__gc *gc, const libxl__snapshot_op *op,
                        const libxlsnap_disk_snapshot *ds,
                        const libxl__snapshot_tree *t, const char **why_r);
/* Does image file hold internal snapshot tag (qemu-img info -U)? */
bool libxl__qcow2_has_tag(libxl__gc *gc, const char *file, const char *tag);
/* Is overlay an image on base (its backing file)? */
bool libxl__overlay_on(libxl__gc *gc, const char *overlay, const char *base);
/*
 * An offline external snapshot rolled forward by recovery: the frozen
 * image's recording bitmaps the overlay lacks added to it, then stopped
 * in the image (what its commands had still to do).  0, or ERROR_*
 * (logged).
 */
int libxl__overlay_bitmaps_finish(libxl__gc *gc,
                                  const libxlsnap_disk_snapshot *ds);

/* ---------------------------------------------------------------- */
/* snapshot-diff (libxl_snapshot_diff.c): its pure parts, unit-tested */

/* A growing list of extents, in gc; _add grows the last one when the
 * new one follows it. */
typedef struct libxl__extents {
    libxlsnap_extent *e;
    int n, alloc;
} libxl__extents;
void libxl__extents_add(libxl__gc *gc, libxl__extents *x, uint64_t off,
                        uint64_t len);
/* e[0..n) sorted by offset, those that overlap or touch merged: the new
 * count */
int libxl__extents_merge(libxlsnap_extent *e, int n);
/* the extents (merged) cut at size */
void libxl__extents_clip(libxl__extents *x, uint64_t size);

/* A qcow2 image opened to read its tables (read-only, never written). */
typedef struct libxl__qcow2_snap {
    const char *id, *name;
    uint64_t l1_offset, disk_size;
    uint32_t l1_size;
} libxl__qcow2_snap;
typedef struct libxl__qcow2 {
    int fd;
    const char *path;
    unsigned version, cluster_bits;
    uint64_t cluster_size, size;      /* the active state's size */
    uint64_t file_size;               /* of the image file, at open */
    uint64_t l1_offset;
    uint32_t l1_size;
    bool has_backing, extended_l2, encrypted;
    const char *backing;              /* its backing file name, or NULL */
    const char *backing_format;       /* as its header names it, or NULL */
    libxl__qcow2_snap *snaps;
    int num_snaps;
} libxl__qcow2;
/* One state's L1 table (entries: the L2 tables' offsets, host order) */
typedef struct libxl__qcow2_l1 {
    uint64_t *e;
    uint32_t n;
    uint64_t size;                    /* the disk's size in that state */
} libxl__qcow2_l1;
/* header and snapshot table: 0, or ERROR_* (said); _close it after */
int libxl__qcow2_open(libxl__gc *gc, const char *path, libxl__qcow2 *q);
void libxl__qcow2_close(libxl__qcow2 *q);
/* the file opened again after _close (the header read stands): 0, or
 * ERROR_FAIL (said) */
int libxl__qcow2_reopen(libxl__gc *gc, libxl__qcow2 *q);
/* the L1 table of the snapshot named tag (exactly one), or (NULL) of
 * the active state */
int libxl__qcow2_state(libxl__gc *gc, libxl__qcow2 *q, const char *tag,
                       libxl__qcow2_l1 *l1_r);
/*
 * The clusters whose mapping differs between states a and b, added to
 * x (a NULL: b's allocated clusters, data or zero); data: those that
 * map to data on both sides, or data against zeros, are read and left
 * out when equal.
 */
int libxl__qcow2_diff(libxl__gc *gc, const libxl__qcow2 *q,
                      const libxl__qcow2_l1 *a, const libxl__qcow2_l1 *b,
                      bool data, libxl__extents *x);
/*
 * The same between state a of qa and b of qb, another image over the
 * same backing (or none) with the same cluster size and no extended L2
 * entries (the caller checks): the clusters either holds of its own.
 */
int libxl__qcow2_diff2(libxl__gc *gc, const libxl__qcow2 *qa,
                       const libxl__qcow2_l1 *a, const libxl__qcow2 *qb,
                       const libxl__qcow2_l1 *b, bool data,
                       libxl__extents *x);
/*
 * The active state's allocated data clusters (guest extents, sorted),
 * and of them (inplace) those a write changes where they are: refcount
 * 1 (QCOW2_COPIED on the cluster and its L2 table), not compressed;
 * where an internal snapshot shares one, a write allocates anew.
 */
int libxl__qcow2_allocation(libxl__gc *gc, const libxl__qcow2 *q,
                            libxl__extents *data, libxl__extents *inplace);
/*
 * The bytes each internal snapshot q->snaps[i] holds alone: the data
 * clusters, L2 tables and L1 table that no other snapshot nor the
 * active state references, as the file stands (*bytes_r: a gc array of
 * q->num_snaps).  libxl_snapshot_qcow2.c says how.
 */
int libxl__qcow2_exclusive(libxl__gc *gc, libxl__qcow2 *q,
                           uint64_t **bytes_r);
/* `qemu-img map --output=json`'s "present" extents, added to x */
int libxl__qemu_img_map_parse(libxl__gc *gc, const char *json,
                              libxl__extents *x);

/*
 * The NBD client snapshot-diff reads bitmaps with
 * (libxl_snapshot_nbd.c): blocking, one connection.  _connect_unix
 * fills in fd and what (for messages; or set them by hand, a unit
 * test's socketpair); _handshake asks for the meta contexts (their ids
 * in context_ids, the export's size in size), refused: ERROR_* (said);
 * _block_status adds to x the extents of the whole export whose status
 * flags have a bit of mask, in any of the contexts; _close says
 * NBD_CMD_DISC (after a handshake) and closes.
 */
typedef struct libxl__nbd {
    int fd;
    const char *what;
    bool no_zeroes;
    uint64_t size, cookie;
    uint32_t *context_ids;
    int num_contexts;
} libxl__nbd;
int libxl__nbd_connect_unix(libxl__gc *gc, libxl__nbd *c, const char *path,
                            int timeout_ms);
int libxl__nbd_handshake(libxl__gc *gc, libxl__nbd *c, const char *export,
                         const char *const *contexts, int n);
int libxl__nbd_block_status(libxl__gc *gc, libxl__nbd *c, uint32_t mask,
                            libxl__extents *x);
void libxl__nbd_close(libxl__gc *gc, libxl__nbd *c);

/* ---------------------------------------------------------------- */
/* journal and recovery (libxl_snapshot_journal.c) */

/* The intent of op ("create"), before it changes anything; memory_tmp:
 * where its memory image is written until complete, or NULL; extra_key
 * (or NULL): one more member, extra (a snapshot's checkpoint). */
int libxl__journal_write(libxl__gc *gc, const libxl__snapshot_store *st,
                         const char *op, const libxlsnap_domain_snapshot *s,
                         bool live, const char *memory_tmp,
                         const char *extra_key, yajl_val extra);
/*
 * Any operation's journal, as JSON text with an "op" member.  optional:
 * an update the operation goes on without, and then says what that
 * means itself (the write's own failure is logged at INFO, not ERROR).
 */
int libxl__journal_write_text(libxl__gc *gc, const libxl__snapshot_store *st,
                              const char *json, size_t len, bool optional);
/* 0, or ERROR_FAIL (logged: WARN) when it is still there */
int libxl__journal_remove(libxl__gc *gc, const libxl__snapshot_store *st);
/* The delete op->unfinished_delete is left part-done: said (WARN). */
void libxl__journal_say_unfinished(libxl__gc *gc,
                                   const libxl__snapshot_op *op);
/*
 * A snapshot delete within ao (libxlsnap_domain_snapshot_delete is one):
 * callback(for_callback, rc) once it is over, the lock released.
 */
typedef void libxl__snapshot_delete_cb(libxl__egc *egc, void *for_callback,
                                       int rc);
void libxl__snapshot_delete_start(libxl__egc *egc, libxl__ao *ao,
                                  const char *domain, const char *name,
                                  unsigned flags,
                                  const libxlsnap_progress_how *progress,
                                  libxl__snapshot_delete_cb *callback,
                                  void *for_callback);
/*
 * Removes the images of from[] (with_self), and those below them, once
 * nothing needs them (libxl__snapshot_unused_images against op's
 * records, its domain config and keep[], or, keep NULL, its disks'
 * active images), never one the running QEMU has open; then also[]
 * (files the caller knows go).  On the loop, as steps: one `qemu-img
 * info --backing-chain` of each image that decides it (the number of
 * records' images grows with the snapshots), then one child that
 * removes them all (libxl__unlink_files_child: an image can be hundreds
 * of MiB), which finishes even on an abort.  A chain that cannot be
 * read, or a file that cannot be removed: a warning, rc 0.  ao_abort
 * during the chains' reads (unless unabortable): callback with
 * ERROR_ABORTED, nothing removed.  After a delete's disk, in its
 * recovery, and once a revert's records are saved.
 */
typedef struct libxl__remove_unused_state libxl__remove_unused_state;
typedef void libxl__remove_unused_callback(libxl__egc *egc,
                                           libxl__remove_unused_state *ru,
                                           int rc);
struct libxl__remove_unused_state {
    /* caller fills in */
    libxl__ao *ao;
    libxl__snapshot_op *op;
    const char *const *keep;          /* NULL: op's disks' active images */
    int num_keep;
    const char *const *from;
    int num_from;
    bool with_self;
    const char *const *also;
    int num_also;
    bool unabortable;
    bool stopped;                     /* the op stopped the domain: QEMU
                                       * has none open (op->d.running
                                       * says how it was found) */
    libxl__remove_unused_callback *callback;
    /* private */
    libxl__qemu_img_info_state qi;
    int num_need;
    libxl__exec_state es;
};
void libxl__snapshot_remove_unused(libxl__egc *egc,
                                   libxl__remove_unused_state *ru);
/*
 * Each operation's recovery, beside it (create.c, revert.c, delete.c):
 * its journal j rolled forward or back; ERROR_* keeps the journal.
 */
int libxl__create_recover(libxl__gc *gc, libxl__snapshot_op *op, yajl_val j);
/* A redefine of many's (libxl_snapshot_xml.c): all or none. */
int libxl__redefine_recover(libxl__gc *gc, libxl__snapshot_op *op,
                            yajl_val j);
/* What a lock-free reader (list, info) shows while a redefine of many
 * is pending: its snapshots only once all their records are written. */
void libxl__redefine_hide(libxl__gc *gc, const libxl__snapshot_store *st,
                          libxl__snapshot_tree *t);
/* A migration's journal (libxl_snapshot_migrate.c): back to one QEMU. */
int libxl__migrate_recover(libxl__gc *gc, libxl__snapshot_op *op, yajl_val j);
/* a delete's: callback(rc) when done (the removal of what its disk
 * left unused is a step: libxl__snapshot_remove_unused) */
void libxl__delete_recover(libxl__egc *egc, libxl__snapshot_op *op,
                           yajl_val j,
                           libxl__snapshot_op_callback *callback);
/* a revert's, on the loop (its qemu-img runs are child-process steps,
 * the start is libxl__domain_start_async): callback(rc) when done */
void libxl__revert_recover(libxl__egc *egc, libxl__snapshot_op *op,
                           yajl_val j,
                           libxl__snapshot_op_callback *callback);
/*
 * The journal cannot be completed (why: "is unreadable"...): refused,
 * or (snapshot-recover) moved aside; always an error.
 */
int libxl__journal_unusable(libxl__gc *gc, libxl__snapshot_op *op,
                            const char *why);
/* Does op's running QEMU have a node on path? */
bool libxl__op_runs_image(libxl__gc *gc,
                                  const libxl__snapshot_op *op,
                                  const char *path);
/*
 * Under the lock, tree loaded: finish or undo what a dead process left
 * (op->recovered: there was a journal); callback(rc), on the loop.
 */
void libxl__journal_recover(libxl__egc *egc, libxl__snapshot_op *op,
                            libxl__snapshot_op_callback *callback);
/* The journal an interrupted operation left, or NULL: its path, and its
 * op ("create"...) in *op_r (NULL if it is unreadable or has none). */
/* The journal, parsed (NULL: none, or not JSON) */
yajl_val libxl__journal_get(libxl__gc *gc, const libxl__snapshot_store *st);
const char *libxl__journal_pending(libxl__gc *gc,
                                   const libxl__snapshot_store *st,
                                   const char **op_r);
/* snapshot-check's checks of the records themselves and their images on
 * tree t, in memory (libxl_snapshot_check.c): the number of problems,
 * each a line in *problems_r. */
int libxl__snapshot_check_tree_records(libxl__gc *gc,
                                       const libxl__snapshot_tree *t,
                                       char ***problems_r);
/* Is op one a journal's recovery completes (create, revert, delete)? */
bool libxl__journal_op_known(const char *op);
/* A journal is pending: say so, naming the snapshot-recover to run (and
 * then, suffix: "" or ", then start it"), ERROR_INVAL; else 0. */
int libxl__journal_refuse_pending(libxl__gc *gc,
                                  const libxl__snapshot_store *st,
                                  const char *name, const char *suffix);
/*
 * Fault injection (libxl_snapshot_fault.c), in the test library only
 * (-DLIBXL_SNAPSHOT_TESTING); no-ops in the release library.
 *
 * XL_SNAPSHOT_FAULT=<op>:<n> exits at op's n-th fault point;
 * <op>:<n>:killqemu SIGKILLs the domain's QEMU there (the domain
 * libxl__fault_domain named) and returns true; <op>:<n>:sigint raises
 * SIGINT there.
 * XL_SNAPSHOT_FAULT=io:<n>[:enospc|eio]: libxl__fault_io returns the
 * errno the n-th I/O point of the process (a write, a QMP command, a
 * tool run) must fail with, else 0 (io@<label>: the first point so
 * labelled).  what: the point, for the message.
 */
#ifdef LIBXL_SNAPSHOT_TESTING
bool libxl__fault_point(const char *op);
void libxl__fault_domain(const libxl__domain *d);
int libxl__fault_io(const char *what);
#else
static inline bool libxl__fault_point(const char *op) { return false; }
static inline void libxl__fault_domain(const libxl__domain *d) { }
static inline int libxl__fault_io(const char *what) { return 0; }
#endif

/* ---------------------------------------------------------------- */
/* checkpoints (libxl_snapshot_checkpoint.c) */

/*
 * Records: checkpoint-NAME.libxl-json in the domain's store, beside the
 * snapshots' snapshotdata-NAME.libxl-json (whose listing, by their
 * prefix, never sees a checkpoint).  The internal API the checkpoint
 * commands, backups and snapshot-diff build on; see the design comment
 * of libxl_snapshot_checkpoint.c.
 */
#define LIBXL__CHECKPOINT_PREFIX "checkpoint-"
/* The store name of checkpoint name's record (gc). */
char *libxl__checkpoint_record_name(libxl__gc *gc, const char *name);
/* A store name: the checkpoint whose record it is (gc), else NULL. */
char *libxl__checkpoint_record_file(libxl__gc *gc, const char *file);
/* A record as JSON: a yajl tree (gc), and its text (gc). */
yajl_val libxl__checkpoint_to_tree(libxl__gc *gc,
                                   const libxlsnap_checkpoint *cp);
char *libxl__checkpoint_to_text(libxl__gc *gc, const libxlsnap_checkpoint *cp);
/*
 * A record from JSON, into *cp (allocations from agc; NOGC: malloc,
 * the caller disposes).  ERROR_INVAL, and *why_r (gc) what is wrong,
 * nothing logged.
 */
int libxl__checkpoint_from_tree(libxl__gc *gc, libxl__gc *agc, yajl_val v,
                                libxlsnap_checkpoint *cp, const char **why_r);
void libxl__checkpoint_copy(libxlsnap_checkpoint *dst,
                            const libxlsnap_checkpoint *src);

/* A domain's checkpoints, oldest first (by creation time: each one's
 * parent is the one before it). */
typedef struct libxl__checkpoint_list {
    libxlsnap_checkpoint *cps;        /* gc */
    int num;
    /* lenient load (snapshot-check): corrupt records, left out */
    char **damage;
    int num_damage;
    char **skipped;                   /* their store names */
    int num_skipped;
} libxl__checkpoint_list;
/*
 * Loads every checkpoint record of the store (no lock needed: records
 * are replaced atomically).  A corrupt record: ERROR_INVAL, said; with
 * lenient, left out and noted in damage instead.
 */
int libxl__checkpoint_load(libxl__gc *gc, const libxl__snapshot_store *st,
                           bool lenient, libxl__checkpoint_list *l_r);
/* index of name in l, or -1 */
int libxl__checkpoint_index(const libxl__checkpoint_list *l, const char *name);
/* cp's disk vdev, or NULL */
const libxlsnap_checkpoint_disk *libxl__checkpoint_disk(
    const libxlsnap_checkpoint *cp, const char *vdev);
/* The newest checkpoint before index before (l->num: of all) that has
 * disk vdev: its index, or -1. */
int libxl__checkpoint_newest_on(const libxl__checkpoint_list *l,
                                const char *vdev, int before);
/*
 * What changed on disk vdev since checkpoint from, until checkpoint to
 * (NULL: until now): the names of the bitmaps whose union it is, oldest
 * first (from's, the checkpoints merged into it, and each later one's
 * that has vdev and comes before to, with theirs).  gc.  ERROR_NOTFOUND
 * (said) when from or to has no record; ERROR_INVAL (said) when from or
 * to does not cover vdev (its changes are unknown: a full copy).
 */
int libxl__checkpoint_bitmaps(libxl__gc *gc, const libxl__checkpoint_list *l,
                              const char *vdev, const char *from,
                              const char *to, const char ***names_r,
                              int *n_r);

/*
 * The persistent dirty bitmaps of one disk's backing chain, layer by
 * layer, top (the active image) first.  Live (qmp_path: the domain's
 * QEMU): as QEMU has them (query-named-block-nodes: "recording",
 * "inconsistent"), each layer with its node; offline: qemu-img info
 * ("auto": recording, "in-use" with no QEMU running the image: QEMU
 * died with it open, inconsistent).
 */
typedef struct libxl__bitmap_state {
    const char *name;
    uint64_t granularity;
    bool recording;
    bool inconsistent;
} libxl__bitmap_state;
typedef struct libxl__bitmap_layer {
    const char *file;
    libxl_disk_format format;
    const char *node;                 /* live: QEMU's node of it, or NULL */
    libxl__bitmap_state *bitmaps;
    int num_bitmaps;
} libxl__bitmap_layer;
typedef struct libxl__disk_bitmaps {
    const char *vdev;
    libxl__bitmap_layer *layers;
    int num_layers;
} libxl__disk_bitmaps;
/*
 * image (format fmt): the disk's active image.  qmp_path NULL: offline.
 * nodes: a query-named-block-nodes (flat) reply, or NULL (asked here).
 * 0, or ERROR_* and *why_r (gc; nothing logged): the chain unreadable.
 */
int libxl__disk_bitmaps_probe(libxl__gc *gc, const char *qmp_path,
                              yajl_val nodes, const char *vdev,
                              const char *image, libxl_disk_format fmt,
                              libxl__disk_bitmaps *db_r, const char **why_r);
/* bitmap name on layer i of db, or NULL */
const libxl__bitmap_state *libxl__disk_bitmap_find(
    const libxl__disk_bitmaps *db, int layer, const char *name);
/*
 * Can checkpoint bitmap name on this disk be trusted?  NULL yes, else
 * why, in words (gc): it is on no layer ("missing"), a layer has it
 * inconsistent, or (newest: it is the disk's newest checkpoint) it is
 * not recording on the active image.
 */
const char *libxl__checkpoint_bitmap_problem(libxl__gc *gc,
                                             const libxl__disk_bitmaps *db,
                                             const char *name, bool newest);
/*
 * The same for the union "changed on db's disk since checkpoint from
 * until to (NULL: now)" (libxl__checkpoint_bitmaps's names): NULL, or
 * the first problem: an inconsistent copy of any of its names, or a
 * layer missing one it must be on (continuity: each checkpoint's
 * bitmap, or one merged into it, on every layer from the lowest having
 * it up to where the disk's next checkpoint begins; the newest's up to
 * the active image, recording there).  checkpoint-list --check and
 * snapshot-check apply the same rule to each checkpoint.
 */
const char *libxl__checkpoint_union_problem(libxl__gc *gc,
                                            const libxl__disk_bitmaps *db,
                                            const libxl__checkpoint_list *l,
                                            const char *from, const char *to);
/*
 * Live: the "bitmaps" of one block-dirty-bitmap-merge (a JSON array,
 * gc) that unites names over every layer of db that has them:
 * [{"node": N, "name": B}, ...]; NULL when no layer has any.
 */
yajl_val libxl__checkpoint_merge_sources(libxl__gc *gc,
                                         const libxl__disk_bitmaps *db,
                                         const char *const *names, int n);

/*
 * The persistent bitmaps of image from (format ffmt) merged into those
 * of image into, each added where into lacks it: after a commit of
 * from into into, or for a stream that drops from from below into.
 * set_state: into becomes what from was (the active image): its copies
 * then record as from's did; else an added one does not record, and
 * into's own keep their state.  Live (qmp_path: both images in that
 * QEMU, into writable) in one transaction, else qemu-img.  An
 * inconsistent bitmap is left out.  0, or ERROR_* and *why_r (gc;
 * nothing logged: the caller says what it means).
 */
int libxl__bitmaps_fold_image(libxl__gc *gc, const char *qmp_path,
                              const char *from, libxl_disk_format ffmt,
                              const char *into, libxl_disk_format ifmt,
                              bool set_state, const char **why_r);
/* the warning a caller of it gives (vdev's bitmaps of from not in into) */
void libxl__bitmaps_fold_warn(libxl__gc *gc, const char *vdev,
                              const char *from, const char *into,
                              const char *why);

/*
 * Making a checkpoint inside another operation (a backup, a snapshot):
 *  1. libxl__checkpoint_plan: the record, checked (name valid, no such
 *     checkpoint, no such bitmap on a disk, every disk qcow2);
 *  2. live: libxl__checkpoint_live_actions, for each disk, appended to
 *     the operation's own QMP transaction;
 *     offline: libxl__checkpoint_offline_cmds, run in turn;
 *  3. after success, libxl__checkpoint_save (the record);
 *     after the operation failed (the transaction ran, the record is
 *     not written): libxl__checkpoint_undo.
 * Under the domain's lock throughout.
 */
/*
 * cp_r: name, description, creation time (after the newest's), parent
 * (the newest), domain, and a disk for each of vdevs (num_vdevs 0:
 * every disk of d), its image d's active one.  l: the domain's
 * checkpoints.  ERROR_INVAL (said) when refused.  Synchronous: asks
 * QEMU (query-named-block-nodes) or qemu-img info for each disk.
 */
int libxl__checkpoint_plan(libxl__gc *gc, const libxl__domain *d,
                           const libxl__checkpoint_list *l, const char *name,
                           const char *description,
                           const char *const *vdevs, int num_vdevs,
                           libxlsnap_checkpoint *cp_r);
/*
 * The same record on images the caller names (each qcow2; vdevs[i]'s
 * image after the caller's step, such as a snapshot's overlay): only
 * name, duplicate and description are checked, nothing is probed.
 */
int libxl__checkpoint_plan_images(libxl__gc *gc, const libxl__domain *d,
                                  const libxl__checkpoint_list *l,
                                  const char *name, const char *description,
                                  const char *const *vdevs,
                                  const char *const *images, int n,
                                  libxlsnap_checkpoint *cp_r);
/*
 * Appends to actions (a JSON array) what makes cp's bitmap on disk
 * vdev, whose active image is QEMU's node: block-dirty-bitmap-disable
 * of the disk's newest checkpoint's bitmap on node (when it records
 * there), then block-dirty-bitmap-add of cp's (persistent).  nodes:
 * query-named-block-nodes (flat), to see what the node has; from_node:
 * NULL, or, when node is made by an earlier action of the same
 * transaction (a snapshot's overlay, which gets the recording bitmaps
 * of the image it goes on), that image's node, whose bitmaps tell.
 */
void libxl__checkpoint_live_actions(libxl__gc *gc,
                                    const libxl__checkpoint_list *l,
                                    const libxlsnap_checkpoint *cp,
                                    const char *vdev, yajl_val nodes,
                                    const char *from_node, const char *node,
                                    yajl_val actions);
/* Offline, the same as qemu-img commands on the disk's image (gc):
 * bitmap --disable of the previous, --add of cp's. */
void libxl__checkpoint_offline_cmds(libxl__gc *gc,
                                    const libxl__checkpoint_list *l,
                                    const libxlsnap_checkpoint *cp,
                                    const char *vdev, const char *image,
                                    const char *const **cmds_r[], int *n_r);
/* The record written (atomically). */
int libxl__checkpoint_save(libxl__gc *gc, const libxl__snapshot_store *st,
                           const libxlsnap_checkpoint *cp);
/*
 * Undoes cp's bitmaps (made by the actions or commands above, its
 * record not written): on each disk, cp's bitmap merged into the
 * previous newest one's, which records again, and removed (live: one
 * transaction; offline: qemu-img).  Quick, synchronous; what it cannot
 * undo is logged (WARN) and snapshot-check reports it.  d: running or
 * not decides live or offline.
 */
int libxl__checkpoint_undo(libxl__gc *gc, const libxl__domain *d,
                           const libxl__checkpoint_list *l,
                           const libxlsnap_checkpoint *cp);
/* A checkpoint operation's journal (op "checkpoint-create" or
 * "checkpoint-delete"), rolled back or forward by the next operation. */
int libxl__checkpoint_recover(libxl__gc *gc, libxl__snapshot_op *op,
                              yajl_val j);
/*
 * snapshot-check: each checkpoint disk whose bitmap is missing or
 * inconsistent, one line each, appended to *problems (gc); and each
 * corrupt checkpoint record.  d: running or not (live or offline).
 */
void libxl__checkpoint_check(libxl__gc *gc, const libxl__snapshot_store *st,
                             const libxl__domain *d, char ***problems,
                             int *num);
/* Is store name one of l's records (or a corrupt one it skipped)? */
bool libxl__checkpoint_owns(libxl__gc *gc, const libxl__checkpoint_list *l,
                            const char *file);

#endif /* LIBXL_SNAPSHOT_INTERNAL_H */

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
