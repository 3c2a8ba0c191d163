/*
 * libxl_snapshot_core.c - context, gc arena, logging, file helpers
 *
 * The gc arena is libxl's: a growing array of pointers freed together.
 * NOGC allocations are plain malloc for memory handed to the caller.
 * Out of memory is not an error callers handle: we abort, as libxl
 * does, so that no half-done operation is reported as a failure.
 *
 * Log messages are one line each (line breaks in quoted tool output
 * become "; "), and a warning or error identical to one just logged is
 * not repeated.
 *
 * The context picks a driver once (xen if the hypervisor is there,
 * else qemu; $XL_SNAPSHOT_DRIVER overrides) and reads the directory
 * settings from the environment, with Config.mk's defaults.
 */
#include "libxl_snapshot_internal.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef LIBXL_SNAPSHOT_STATE_DIR
#define LIBXL_SNAPSHOT_STATE_DIR "/var/lib/xen/snapshots"
#endif
#ifndef LIBXL_SNAPSHOT_RUN_DIR
#define LIBXL_SNAPSHOT_RUN_DIR "/var/run/xen"
#endif
#ifndef LIBXL_SNAPSHOT_CONFIG_DIR
#define LIBXL_SNAPSHOT_CONFIG_DIR "/etc/xen"
#endif
#ifndef LIBXL_SNAPSHOT_QEMU
#define LIBXL_SNAPSHOT_QEMU "qemu-system-x86_64"
#endif
#ifndef LIBXL_SNAPSHOT_QEMU_IMG
#define LIBXL_SNAPSHOT_QEMU_IMG "qemu-img"
#endif
#ifndef LIBXL_SNAPSHOT_VHD_UTIL
#define LIBXL_SNAPSHOT_VHD_UTIL "vhd-util"
#endif
#ifndef LIBXL_SNAPSHOT_CEPH_UTIL
#define LIBXL_SNAPSHOT_CEPH_UTIL "ceph-util"
#endif
#ifndef LIBXL_SNAPSHOT_LVM
#define LIBXL_SNAPSHOT_LVM "lvm"
#endif
#ifndef LIBXL_SNAPSHOT_SYSTEM_XL
#define LIBXL_SNAPSHOT_SYSTEM_XL "/usr/sbin/xl"
#endif
#ifndef LIBXL_SNAPSHOT_XEN_QEMU
#define LIBXL_SNAPSHOT_XEN_QEMU "/usr/libexec/xen-qemu-system-i386"
#endif

/* ---------------------------------------------------------------- */
/* gc */

static void oom(void)
{
    fputs("libxl-snapshot: out of memory\n", stderr);
    abort();
}

void libxl__gc_adopt(libxl__gc *gc, void *ptr)
{
    if (!gc || !ptr) return;
    if (gc->nptrs == gc->alloc) {
        int n = gc->alloc ? gc->alloc * 2 : 16;
        void **p = realloc(gc->ptrs, n * sizeof(*p));
        if (!p) oom();
        gc->ptrs = p;
        gc->alloc = n;
    }
    gc->ptrs[gc->nptrs++] = ptr;
}

void libxl__gc_free_all(libxl__gc *gc)
{
    int i;
    for (i = 0; i < gc->nptrs; i++)
        free(gc->ptrs[i]);
    free(gc->ptrs);
    gc->ptrs = NULL;
    gc->nptrs = gc->alloc = 0;
}

void *libxl__gc_zalloc(libxl__gc *gc, size_t sz)
{
    void *p = calloc(1, sz ? sz : 1);
    if (!p) oom();
    libxl__gc_adopt(gc, p);
    return p;
}

void *libxl__gc_calloc(libxl__gc *gc, size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p) oom();
    libxl__gc_adopt(gc, p);
    return p;
}

void *libxl__gc_realloc(libxl__gc *gc, void *ptr, size_t sz)
{
    void *p = realloc(ptr, sz ? sz : 1);
    int i;

    if (!p) oom();
    if (!gc) return p;
    if (!ptr) {
        libxl__gc_adopt(gc, p);
        return p;
    }
    for (i = gc->nptrs - 1; i >= 0; i--) {
        if (gc->ptrs[i] == ptr) {
            gc->ptrs[i] = p;
            return p;
        }
    }
    abort(); /* realloc of memory not in this gc */
}

char *libxl__gc_strdup(libxl__gc *gc, const char *s)
{
    char *p;
    if (!s) return NULL;
    p = strdup(s);
    if (!p) oom();
    libxl__gc_adopt(gc, p);
    return p;
}

char *libxl__gc_vsprintf(libxl__gc *gc, const char *fmt, va_list ap)
{
    char *s;
    if (vasprintf(&s, fmt, ap) < 0) oom();
    libxl__gc_adopt(gc, s);
    return s;
}

char *libxl__gc_sprintf(libxl__gc *gc, const char *fmt, ...)
{
    va_list ap;
    char *s;
    va_start(ap, fmt);
    s = libxl__gc_vsprintf(gc, fmt, ap);
    va_end(ap);
    return s;
}

/* ---------------------------------------------------------------- */
/* growing array of strings (argv) */

libxl__flexarray *libxl__flexarray_new(libxl__gc *gc)
{
    libxl__flexarray *fa;

    GCNEW(fa);
    fa->gc = gc;
    fa->alloc = 16;
    GCNEW_ARRAY(fa->data, fa->alloc);   /* zeroed: NULL-terminated */
    return fa;
}

void libxl__flexarray_append(libxl__flexarray *fa, const char *s)
{
    libxl__gc *gc = fa->gc;

    assert(s);                          /* a NULL would end the argv */
    if (fa->count + 1 >= fa->alloc) {
        fa->alloc *= 2;
        GCREALLOC_ARRAY(fa->data, fa->alloc);
    }
    fa->data[fa->count++] = s;
    fa->data[fa->count] = NULL;
}

void libxl__flexarray_append_pair(libxl__flexarray *fa, const char *a,
                                  const char *b)
{
    libxl__flexarray_append(fa, a);
    libxl__flexarray_append(fa, b);
}

/* ---------------------------------------------------------------- */
/* logging */

/*
 * One message, one line: text a message quotes (a tool's stderr, QEMU's
 * error) may hold line breaks; each run of them becomes "; ", trailing
 * ones go.  Returns msg, or a new malloc'd string (msg freed).
 */
static char *one_line(char *msg)
{
    char *r, *out, *w;
    size_t n = strlen(msg);

    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r' ||
                 msg[n - 1] == ' '))
        msg[--n] = 0;
    if (!strpbrk(msg, "\r\n")) return msg;
    out = malloc(2 * n + 1);
    if (!out) return msg;
    for (r = msg, w = out; *r; r++) {
        if (*r != '\n' && *r != '\r') {
            *w++ = *r;
            continue;
        }
        while (r[1] == '\n' || r[1] == '\r' || r[1] == ' ') r++;
        if (w > out && w[-1] != ';') *w++ = ';';
        *w++ = ' ';
    }
    *w = 0;
    free(msg);
    return out;
}

/*
 * One line per error: a failure seen by several layers (a write, the
 * save that made it, the operation that saved) may be logged by more
 * than one with the same text.  A warning or error identical to one of
 * the last few logged in the last minute is not said again (they are
 * remembered by a 64-bit FNV-1a hash: nothing to allocate or free, and
 * a bare ctx works).  Forgotten when an operation starts with
 * none other under way (libxl__ao_create): a caller that tries again
 * hears the error again.
 */
#define LOG_RECENT_MS 60000

static bool said_recently(libxlsnap_ctx *ctx, const char *msg)
{
    uint64_t now = libxl__now_ms(), h = 0xcbf29ce484222325ULL;
    const unsigned char *p;
    int i;

    for (p = (const unsigned char *)msg; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    h |= 1;                                     /* 0: an empty slot */
    for (i = 0; i < LIBXL__LOG_RECENT; i++)
        if (ctx->log_recent[i] == h &&
            now - ctx->log_recent_ms[i] < LOG_RECENT_MS)
            return true;
    i = ctx->log_recent_next;
    ctx->log_recent[i] = h;
    ctx->log_recent_ms[i] = now;
    ctx->log_recent_next = (i + 1) % LIBXL__LOG_RECENT;
    return false;
}

void libxl__log_forget(libxlsnap_ctx *ctx)
{
    memset(ctx->log_recent, 0, sizeof(ctx->log_recent));
}

void libxl__snapshot_log(libxlsnap_ctx *ctx, xentoollog_level lvl,
                         int errnoval, const char *file, int line,
                         const char *func, const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;
    int esave = errno;

    if (!ctx || !ctx->lg) return;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0) msg = NULL;
    va_end(ap);
    if (!msg) return;
    msg = one_line(msg);
    if (lvl >= XTL_WARN && said_recently(ctx, msg)) {
        free(msg);
        errno = esave;
        return;
    }
    /* Users see one clean line; the source location is for -vvv. */
    if (lvl <= XTL_DEBUG)
        xtl_log(ctx->lg, lvl, errnoval, "libxl-snapshot", "%s:%d:%s: %s",
                file, line, func, msg);
    else
        xtl_log(ctx->lg, lvl, errnoval, "libxl-snapshot", "%s", msg);
    free(msg);
    errno = esave;
}

bool libxl__args_missing(libxlsnap_ctx *ctx, bool ctx_required,
                         const char *func, const char *names,
                         const void *const *args, size_t n)
{
    size_t i, len;

    if (!ctx && ctx_required) return true;
    for (i = 0; i < n; i++) {
        if (args[i]) {
            /* on to the next name: "a, b, c" */
            names += strcspn(names, ",");
            names += strspn(names, ", ");
            continue;
        }
        len = strcspn(names, ", ");
        LIBXL__LOG(ctx, ERROR, -1, "%s: %.*s is NULL, and is required",
                   func, (int)len, names);
        return true;
    }
    return false;
}

bool libxl__flags_unknown(libxlsnap_ctx *ctx, const char *func,
                          unsigned flags, unsigned known)
{
    if (!(flags & ~known)) return false;
    LIBXL__LOG(ctx, ERROR, -1, "%s: unknown flags 0x%x", func,
               flags & ~known);
    return true;
}

/* ---------------------------------------------------------------- */
/* files and paths */

int libxl__mkdir_p(libxl__gc *gc, const char *path, mode_t mode)
{
    char *p = GCSTRDUP(path), *s;

    for (s = p + 1; ; s++) {
        if (*s == '/' || !*s) {
            char c = *s;
            *s = 0;
            if (mkdir(p, mode) && errno != EEXIST) {
                LOGE(ERROR, "cannot create directory '%s'", p);
                return ERROR_FAIL;
            }
            *s = c;
            if (!c) break;
        }
    }
    return 0;
}

static int read_file(libxl__gc *gc, const char *path, int flags,
                     char **data_r, size_t *len_r)
{
    int fd, rc;
    char *buf = NULL;
    size_t len = 0, alloc = 0;
    ssize_t r;

    fd = open(path, O_RDONLY | O_CLOEXEC | flags);
    if (fd < 0) {
        if (errno == ENOENT) return ERROR_NOTFOUND;
        if (errno == ELOOP && (flags & O_NOFOLLOW))
            LOG(ERROR, "'%s' is a symbolic link: it is not followed", path);
        else
            LOGE(ERROR, "cannot open '%s'", path);
        return ERROR_FAIL;
    }
    for (;;) {
        if (len + 1 >= alloc) {
            alloc = alloc ? alloc * 2 : 4096;
            buf = libxl__gc_realloc(gc, buf, alloc);
        }
        r = read(fd, buf + len, alloc - len - 1);
        if (r < 0) {
            if (errno == EINTR) continue;
            LOGE(ERROR, "cannot read '%s'", path);
            rc = ERROR_FAIL;
            goto out;
        }
        if (!r) break;
        len += r;
    }
    buf[len] = 0;
    *data_r = buf;
    if (len_r) *len_r = len;
    rc = 0;
 out:
    close(fd);
    return rc;
}

int libxl__read_file(libxl__gc *gc, const char *path, char **data_r,
                     size_t *len_r)
{
    return read_file(gc, path, 0, data_r, len_r);
}

int libxl__read_file_nofollow(libxl__gc *gc, const char *path,
                              char **data_r, size_t *len_r)
{
    return read_file(gc, path, O_NOFOLLOW, data_r, len_r);
}

int libxl__write_file_tmp(libxl__gc *gc, const char *path,
                          const void *data, size_t len, bool sync,
                          xentoollog_level lvl)
{
    char *tmp = GCSPRINTF("%s.tmp", path);
    const char *p = data;
    int fd = -1, rc;
    size_t done = 0;

    /* a stale tmp, or a link planted there, goes; never followed */
    unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
              0600);
    if (fd < 0) {
        LOGE_AT(lvl, "cannot create '%s'", tmp);
        rc = ERROR_FAIL;
        goto out;
    }
    while (done < len) {
        int e = libxl__fault_io(path);
        ssize_t r = e ? (errno = e, -1) : write(fd, p + done, len - done);
        if (r < 0) {
            if (errno == EINTR) continue;
            LOGE_AT(lvl, "cannot write '%s'%s", tmp,
                    errno == ENOSPC ? " (file system full)" : "");
            rc = ERROR_FAIL;
            goto out;
        }
        done += r;
    }
    if (sync && fsync(fd)) {
        LOGE_AT(lvl, "cannot sync '%s'%s", tmp,
                errno == ENOSPC ? " (file system full)" : "");
        rc = ERROR_FAIL;
        goto out;
    }
    if (close(fd)) {
        fd = -1;
        LOGE_AT(lvl, "cannot close '%s'", tmp);
        rc = ERROR_FAIL;
        goto out;
    }
    fd = -1;
    rc = 0;
 out:
    if (fd >= 0) close(fd);
    if (rc) unlink(tmp);
    return rc;
}

int libxl__write_file_atomic_lvl(libxl__gc *gc, const char *path,
                                 const void *data, size_t len,
                                 xentoollog_level lvl)
{
    char *tmp = GCSPRINTF("%s.tmp", path);
    int rc;

    rc = libxl__write_file_tmp(gc, path, data, len, true, lvl);
    if (rc) return rc;
    if (rename(tmp, path)) {
        LOGE_AT(lvl, "cannot rename '%s' to '%s'", tmp, path);
        unlink(tmp);
        return ERROR_FAIL;
    }
    libxl__fsync_dir(libxl__path_dirname(gc, path));
    return 0;
}

int libxl__write_file_atomic(libxl__gc *gc, const char *path,
                             const void *data, size_t len)
{
    return libxl__write_file_atomic_lvl(gc, path, data, len, XTL_ERROR);
}

void libxl__fsync_dir(const char *dir)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
}

bool libxl__file_exists(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0;
}

char *libxl__abs_path(libxl__gc *gc, const char *path)
{
    char cwd[PATH_MAX];
    char *in, *out, *tok, *save = NULL;
    char **parts;
    int n = 0, i;
    size_t len;

    if (path[0] == '/') {
        in = GCSTRDUP(path);
    } else {
        if (!getcwd(cwd, sizeof(cwd))) return GCSTRDUP(path);
        in = GCSPRINTF("%s/%s", cwd, path);
    }
    len = strlen(in);
    GCNEW_ARRAY(parts, len + 1);
    for (tok = strtok_r(in, "/", &save); tok;
         tok = strtok_r(NULL, "/", &save)) {
        if (!strcmp(tok, ".")) continue;
        if (!strcmp(tok, "..")) {
            if (n) n--;
            continue;
        }
        parts[n++] = tok;
    }
    out = libxl__gc_zalloc(gc, len + 2);
    if (!n) strcpy(out, "/");
    for (i = 0; i < n; i++) {
        strcat(out, "/");
        strcat(out, parts[i]);
    }
    return out;
}

char *libxl__path_dirname(libxl__gc *gc, const char *path)
{
    char *p = GCSTRDUP(path), *s = strrchr(p, '/');
    if (!s) return GCSTRDUP(".");
    if (s == p) return GCSTRDUP("/");
    *s = 0;
    return p;
}

char *libxl__path_basename(libxl__gc *gc, const char *path)
{
    const char *s = strrchr(path, '/');
    return GCSTRDUP(s ? s + 1 : path);
}

char *libxl__path_stem(libxl__gc *gc, const char *path)
{
    char *b = libxl__path_basename(gc, path), *dot = strrchr(b, '.');
    if (dot && dot != b) *dot = 0;
    return b;
}

char *libxl__printable(libxl__gc *gc, const char *s)
{
    char *p, *r = GCSTRDUP(s ? s : "");
    for (p = r; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    return r;
}

uint64_t libxl__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------- */
/* context */

static char *env_or(const char *var, const char *dflt)
{
    const char *v = getenv(var);
    return strdup(v && *v ? v : dflt);
}

/* A setting given, else the environment variable, else the default. */
static char *setting_or(const char *set, const char *var, const char *dflt)
{
    return set && *set ? strdup(set) : env_or(var, dflt);
}

static bool xen_hypervisor_present(void)
{
    char buf[16] = "";
    FILE *f = fopen("/sys/hypervisor/type", "r");
    if (!f) return false;
    if (!fgets(buf, sizeof(buf), f)) buf[0] = 0;
    fclose(f);
    return !strncmp(buf, "xen", 3);
}

const char *libxlsnap_driver_to_string(libxlsnap_driver d)
{
    switch (d) {
    case LIBXLSNAP_DRIVER_XEN: return "xen";
    case LIBXLSNAP_DRIVER_QEMU: return "qemu";
    case LIBXLSNAP_DRIVER_AUTO: return "auto";
    default: return NULL;
    }
}

libxlsnap_driver libxlsnap_ctx_driver(libxlsnap_ctx *ctx)
{
    if (!ctx) return LIBXLSNAP_DRIVER_AUTO;
    return ctx->driver_id;
}

/*
 * The record store: XL_SNAPSHOT_STORE "dir" (or unset: Config.mk's
 * STORE) is the directory store; "rados:POOL" the RADOS store, with
 * XL_SNAPSHOT_CEPH_ID (the client id, without "client.") and
 * XL_SNAPSHOT_LOCK_LEASE (seconds the lock outlives a dead holder).
 */
static int store_setting(libxlsnap_ctx *ctx)
{
    const char *v = getenv("XL_SNAPSHOT_STORE");
    const char *id = getenv("XL_SNAPSHOT_CEPH_ID");
    const char *lease = getenv("XL_SNAPSHOT_LOCK_LEASE");
    char *end;
    long l;

    if (!v || !*v) v = LIBXL_SNAPSHOT_STORE;
    ctx->lock_lease = LIBXL__LOCK_LEASE_S;
    if (!strcmp(v, "dir")) return 0;
    if (strncmp(v, "rados:", 6) || !v[6] || strchr(v + 6, '/')) {
        LIBXL__LOG(ctx, ERROR, -1, "XL_SNAPSHOT_STORE=%s: unknown store "
                   "(use dir, or rados:POOL)", v);
        return ERROR_INVAL;
    }
    if (lease && *lease) {
        errno = 0;
        l = strtol(lease, &end, 10);
        if (errno || *end || l < 3 || l > 3600) {
            LIBXL__LOG(ctx, ERROR, -1, "XL_SNAPSHOT_LOCK_LEASE=%s: give "
                       "seconds, 3 to 3600", lease);
            return ERROR_INVAL;
        }
        ctx->lock_lease = l;
    }
    ctx->store_pool = strdup(v + 6);
    if (id && *id) ctx->ceph_id = strdup(id);
    if (!ctx->store_pool || (id && *id && !ctx->ceph_id))
        return ERROR_NOMEM;
    return 0;
}

int libxlsnap_ctx_alloc(libxlsnap_ctx **pctx, int version,
                             unsigned flags, xentoollog_logger *lg,
                             const libxlsnap_settings *settings)
{
    libxlsnap_settings dflt;
    libxlsnap_ctx *ctx;
    const char *drv = getenv(LIBXLSNAP_ENV_DRIVER);
    const char *t = getenv(LIBXLSNAP_ENV_LOCK_TIMEOUT);
    int rc;

    if (!lg) return ERROR_INVAL;          /* nowhere to say it */
    if (!pctx) {
        xtl_log(lg, XTL_ERROR, -1, "libxl-snapshot", "%s: pctx is NULL, "
                "and is required", __func__);
        return ERROR_INVAL;
    }
    *pctx = NULL;
    if (version != LIBXLSNAP_VERSION || flags) {
        xtl_log(lg, XTL_ERROR, -1, "libxl-snapshot", "%s: version %d, flags "
                "0x%x: this library takes version %d and no flags",
                __func__, version, flags, LIBXLSNAP_VERSION);
        return ERROR_INVAL;
    }
    if (!settings) {
        libxlsnap_settings_init(&dflt);
        settings = &dflt;
    }
    if (settings->lock_timeout < -1) {
        xtl_log(lg, XTL_ERROR, -1, "libxl-snapshot",
                "lock_timeout %d in the settings: -1 (the default), 0 or "
                "seconds", settings->lock_timeout);
        return ERROR_INVAL;
    }

    ctx = calloc(1, sizeof(*ctx));
    if (!ctx) return ERROR_NOMEM;
    ctx->lg = lg;
    LIST_INIT(&ctx->fds);
    LIST_INIT(&ctx->timers);
    LIST_INIT(&ctx->aos);
    ctx->state_dir = setting_or(settings->state_dir,
                                LIBXLSNAP_ENV_STATE_DIR,
                                LIBXL_SNAPSHOT_STATE_DIR);
    ctx->run_dir = setting_or(settings->run_dir, LIBXLSNAP_ENV_RUN_DIR,
                              LIBXL_SNAPSHOT_RUN_DIR);
    ctx->config_dir = setting_or(settings->config_dir,
                                 LIBXLSNAP_ENV_CONFIG_DIR,
                                 LIBXL_SNAPSHOT_CONFIG_DIR);
    if (!ctx->state_dir || !ctx->run_dir || !ctx->config_dir) {
        rc = ERROR_NOMEM;
        goto out;
    }
    /* records name files under them: never relative to a cwd */
    if (ctx->state_dir[0] != '/' || ctx->run_dir[0] != '/' ||
        ctx->config_dir[0] != '/') {
        LIBXL__LOG(ctx, ERROR, -1, "the state, run and config directories "
                   "must be absolute paths (got '%s', '%s', '%s')",
                   ctx->state_dir, ctx->run_dir, ctx->config_dir);
        rc = ERROR_INVAL;
        goto out;
    }
    if (settings->lock_timeout >= 0)
        ctx->lock_timeout = settings->lock_timeout;
    else
        ctx->lock_timeout = t && *t && atoi(t) >= 0 ? atoi(t) : 10;
    if (settings->xl_ctx) {
        ctx->xl = settings->xl_ctx;
        ctx->xl_is_callers = true;
    }
    ctx->qemu_bin = env_or("XL_SNAPSHOT_QEMU", LIBXL_SNAPSHOT_QEMU);
    ctx->qemu_img = env_or("XL_SNAPSHOT_QEMU_IMG", LIBXL_SNAPSHOT_QEMU_IMG);
    ctx->lvm = env_or("XL_SNAPSHOT_LVM", LIBXL_SNAPSHOT_LVM);
    ctx->vhd_util = env_or("XL_SNAPSHOT_VHD_UTIL", LIBXL_SNAPSHOT_VHD_UTIL);
    ctx->ceph_util = env_or("XL_SNAPSHOT_CEPH_UTIL", LIBXL_SNAPSHOT_CEPH_UTIL);
    ctx->xen_qemu = env_or("XL_SNAPSHOT_XEN_QEMU", LIBXL_SNAPSHOT_XEN_QEMU);
    ctx->system_xl = env_or("XL_SNAPSHOT_SYSTEM_XL",
                            LIBXL_SNAPSHOT_SYSTEM_XL);
    rc = store_setting(ctx);
    if (rc) goto out;

    if (settings->driver != LIBXLSNAP_DRIVER_AUTO) {
        if (settings->driver != LIBXLSNAP_DRIVER_XEN &&
            settings->driver != LIBXLSNAP_DRIVER_QEMU) {
            LIBXL__LOG(ctx, ERROR, -1, "unknown driver %d in the settings",
                       (int)settings->driver);
            rc = ERROR_INVAL;
            goto out;
        }
        ctx->driver_id = settings->driver;
    } else if (drv && *drv) {
        if (!strcmp(drv, "xen")) {
            ctx->driver_id = LIBXLSNAP_DRIVER_XEN;
        } else if (!strcmp(drv, "qemu")) {
            ctx->driver_id = LIBXLSNAP_DRIVER_QEMU;
        } else {
            LIBXL__LOG(ctx, ERROR, -1,
                       "%s=%s: unknown driver (use xen or qemu)",
                       LIBXLSNAP_ENV_DRIVER, drv);
            rc = ERROR_INVAL;
            goto out;
        }
    } else {
        ctx->driver_id = xen_hypervisor_present()
            ? LIBXLSNAP_DRIVER_XEN : LIBXLSNAP_DRIVER_QEMU;
    }
    ctx->driver = ctx->driver_id == LIBXLSNAP_DRIVER_XEN
        ? &libxl__snapshot_driver_xen : &libxl__snapshot_driver_qemu;
    if (ctx->driver->init) {
        rc = ctx->driver->init(ctx);
        if (rc) goto out;
    }
    *pctx = ctx;
    return 0;

 out:
    libxlsnap_ctx_free(ctx);
    return rc;
}

int libxlsnap_ctx_free(libxlsnap_ctx *ctx)
{
    if (!ctx) return 0;
    if (!LIST_EMPTY(&ctx->aos)) {
        /* its callback would come on freed memory, or never */
        LIBXL__LOG(ctx, ERROR, -1, "libxlsnap_ctx_free: an operation is "
                   "still outstanding; the context is not freed");
        return ERROR_INVAL;
    }
    if (ctx->xl_is_callers) ctx->xl = NULL;      /* the caller's to free */
    if (ctx->driver && ctx->driver->fini) ctx->driver->fini(ctx);
    free(ctx->state_dir);
    free(ctx->run_dir);
    free(ctx->config_dir);
    free(ctx->qemu_bin);
    free(ctx->qemu_img);
    free(ctx->lvm);
    free(ctx->vhd_util);
    free(ctx->ceph_util);
    free(ctx->xen_qemu);
    free(ctx->system_xl);
    free(ctx->store_pool);
    free(ctx->ceph_id);
    free(ctx);
    return 0;
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
