/*
 * libxl_snapshot_store.c - snapshot records: the store, and the tree
 *
 * The records are named blobs of one domain's store, reached through
 * st->ops (libxl__snapshot_store_ops: open, trylock/unlock, get, put,
 * list, domains).  Two stores: the directory store here, the default,
 * and the RADOS store (libxl_snapshot_store_rados.c), whose omap keys
 * are the same names.  Everything else (load, save, the journal, job
 * records, snapshot-check) names a blob only by its name, and gets the
 * text a message shows from libxl__snapshot_store_where.
 *
 * The directory store's layout, one directory per domain (mode 0700):
 *
 *   <state_dir>/<uuid>/lock                                 flock(2)
 *
 * (a directory left with only its lock is removed on unlock: see
 * libxl__snapshot_store_unlock and trylock)
 *   <state_dir>/<uuid>/domain.libxl-json                    domain record
 *   <state_dir>/<uuid>/snapshotdata-<name>.libxl-json       one per snapshot
 *
 * Every write is libxl__write_file_atomic (tmp file, fsync, rename), so
 * a record is either the old one or the new one.  A crash can leave a
 * "*.tmp" behind: loading never reads one, and removes it when we hold
 * the lock (without the lock it may be another process's write in
 * progress).
 *
 * Saving is one put, of the records whose text changed (the store
 * leaves out the others), in an order that keeps the directory (each
 * name written on its own) consistent after a crash at any point: snapshot
 * records parents first (a new child never names a parent that has no
 * file yet), then the domain record (its current snapshot is on disk
 * by then), and only then are records of removed snapshots deleted
 * (their children were already re-parented on disk).
 *
 * A save of many new records at once (a redefine of many:
 * libxl__snapshot_store_save_many) puts the same names in the same
 * order through put_many: the directory store writes every changed
 * name to its .tmp unsynced, syncs the file system once (syncfs), then
 * renames them in, in order, and syncs the directory once: each name
 * still old or new, the order kept, one sync instead of two a record.
 * (Its all-or-none is the redefine's journal, not the store's.)
 *
 * An operation that only adds snapshots (create) loads a partial tree:
 * the domain record and the current snapshot's record.  Its save writes
 * those and the new ones, the current one's children kept from its file
 * plus the new, and removes nothing; so creating one more snapshot costs
 * the same with 10 records as with 10,000.  The files are those a full
 * load and save would write, but for the order of the current one's
 * children if a sibling is younger than the new snapshot (a clock set
 * back, a redefined creation time): any full save sorts them again.
 * Leftover "*.tmp" files wait for the next full load.
 *
 * The tree in memory is gc-owned.  Children and the current flags are
 * derived data: libxl__snapshot_tree_fixup recomputes them from the
 * parent pointers and the domain record, whatever the files said.
 */
#include "libxl_snapshot_internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define RECORD_PREFIX "snapshotdata-"
#define RECORD_SUFFIX ".libxl-json"
#define DOMAIN_RECORD "domain.libxl-json"
#define LOCK_FILE     "lock"
#define TMP_SUFFIX    ".tmp"

static bool has_suffix(const char *s, const char *suffix)
{
    size_t l = strlen(s), m = strlen(suffix);
    return l >= m && !strcmp(s + l - m, suffix);
}

/* ---------------------------------------------------------------- */
/* the directory store: one file a name in <state_dir>/<uuid>/ */

static int dir_open(libxl__gc *gc, libxl__snapshot_store *st,
                    const char *state_dir, const libxl_uuid *uuid)
{
    if (!state_dir || !*state_dir) {
        LOG(ERROR, "no snapshot state directory");
        return ERROR_INVAL;
    }
    st->dir = GCSPRINTF("%s/"LIBXL_UUID_FMT, state_dir,
                        LIBXL_UUID_BYTES(*uuid));
    return libxl__mkdir_p(gc, st->dir, 0700);
}

/*
 * The lock file may be removed, with the directory, by its holder (see
 * unlock): a lock taken on a file that is no longer <dir>/lock locks
 * nothing, so after flock the file is checked to still be the one in
 * the directory, and the open is tried again if not.  flock does not
 * say who holds it: *holder_r stays NULL.
 */
#define LOCK_REOPEN_TRIES 100

static int dir_trylock(libxl__gc *gc, libxl__snapshot_store *st,
                       const char *me, const char **holder_r)
{
    const char *path = GCSPRINTF("%s/"LOCK_FILE, st->dir);
    int fd = -1, rc, r, tries = 0;
    struct stat ours, named;

 again:
    if (fd >= 0) close(fd);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 && errno == ENOENT && tries++ < LOCK_REOPEN_TRIES) {
        /* the directory went with its last lock holder */
        rc = libxl__mkdir_p(gc, st->dir, 0700);
        if (rc) goto out;
        goto again;
    }
    if (fd < 0) {
        LOGE(ERROR, "cannot open lock file '%s'", path);
        rc = ERROR_FAIL;
        goto out;
    }
    do {
        r = flock(fd, LOCK_EX | LOCK_NB);
    } while (r && errno == EINTR);
    if (r) {
        if (errno == EWOULDBLOCK) {
            rc = ERROR_LOCK_FAIL;    /* the caller retries */
        } else {
            LOGE(ERROR, "cannot lock '%s'", path);
            rc = ERROR_FAIL;
        }
        goto out;
    }
    if (fstat(fd, &ours) || stat(path, &named) ||
        ours.st_dev != named.st_dev || ours.st_ino != named.st_ino) {
        if (tries++ < LOCK_REOPEN_TRIES) goto again;
        rc = ERROR_LOCK_FAIL;
        goto out;
    }
    st->lockfd = fd;
    fd = -1;
    rc = 0;
 out:
    if (fd >= 0) close(fd);
    return rc;
}

/* Does dir hold nothing but the lock file? */
static bool only_lock_file(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    bool lock = false;

    if (!d) return false;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        n++;
        if (!strcmp(de->d_name, LOCK_FILE)) lock = true;
    }
    closedir(d);
    return n == 1 && lock;
}

/*
 * A directory left with nothing but the lock (a first command that was
 * refused) is removed, lock file first, while the lock is held: a
 * command waiting for it then finds its file gone and takes the lock
 * anew (trylock).
 */
static void dir_unlock(libxl__snapshot_store *st)
{
    char *lock;

    if (st->dir && only_lock_file(st->dir) &&
        asprintf(&lock, "%s/"LOCK_FILE, st->dir) >= 0) {
        if (!unlink(lock)) rmdir(st->dir);   /* fails if no longer empty */
        free(lock);
    }
    close(st->lockfd);   /* releases the flock */
    st->lockfd = -1;
}

static int dir_get(libxl__gc *gc, const libxl__snapshot_store *st,
                   const char *name, char **data_r, size_t *len_r)
{
    const char *path = GCSPRINTF("%s/%s", st->dir, name);
    struct stat sb;

    if (!data_r)                      /* is there one? (not read) */
        return !lstat(path, &sb) ? 0 : errno == ENOENT ? ERROR_NOTFOUND
            : ERROR_FAIL;
    return libxl__read_file_nofollow(gc, path, data_r, len_r);
}

/* 1 if path holds exactly data, 0 if not (or it is missing), or ERROR_* */
static int holds(libxl__gc *gc, const char *path, const char *data,
                 size_t len)
{
    char *old;
    size_t oldlen;
    int rc;

    rc = libxl__read_file_nofollow(gc, path, &old, &oldlen);
    if (!rc) return oldlen == len && !memcmp(old, data, len);
    return rc == ERROR_NOTFOUND ? 0 : rc;
}

/* Writes path unless it already holds exactly data. */
static int write_if_changed(libxl__gc *gc, const char *path,
                            const char *data, size_t len,
                            xentoollog_level lvl)
{
    int r = holds(gc, path, data, len);

    if (r) return r > 0 ? 0 : r;
    return libxl__write_file_atomic_lvl(gc, path, data, len, lvl);
}

static int dir_put(libxl__gc *gc, const libxl__snapshot_store *st,
                   const libxl__store_put *p, int n, xentoollog_level lvl)
{
    const char *path;
    bool removed = false;
    int i, rc = 0;

    for (i = 0; i < n; i++) {
        path = GCSPRINTF("%s/%s", st->dir, p[i].name);
        if (p[i].value) {
            rc = write_if_changed(gc, path, p[i].value, p[i].len, lvl);
            if (rc) break;
            continue;
        }
        if (unlink(path) && errno != ENOENT) {
            LOGE_AT(lvl, "cannot remove '%s'", path);
            rc = ERROR_FAIL;
            break;
        }
        removed = true;
    }
    if (removed) libxl__fsync_dir(st->dir);
    return rc;
}

/*
 * A batch (libxl__snapshot_store_save_many): every changed name written
 * to its .tmp unsynced, one syncfs(2) for them all, then the renames
 * and removals in the put's order and one fsync of the directory.  Each
 * name is still the old text or the new, as with dir_put, for one sync
 * in all instead of two a name.  A failure before the renames changes
 * nothing (the .tmp files go).  Fault point "save" after each name.
 */
static int dir_put_many(libxl__gc *gc, const libxl__snapshot_store *st,
                        const libxl__store_put *p, int n,
                        xentoollog_level lvl)
{
    const char *path;
    bool *tmp;                        /* p[i]'s .tmp is written */
    int i, r, rc = 0, dfd = -1;

    GCNEW_ARRAY(tmp, n + 1);
    for (i = 0; i < n; i++) {
        if (!p[i].value) continue;
        path = GCSPRINTF("%s/%s", st->dir, p[i].name);
        r = holds(gc, path, p[i].value, p[i].len);
        if (r < 0) {
            rc = r;
            goto out;
        }
        if (r) continue;
        rc = libxl__write_file_tmp(gc, path, p[i].value, p[i].len, false,
                                   lvl);
        if (rc) goto out;
        tmp[i] = true;
    }
    dfd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || syncfs(dfd)) {
        LOGE_AT(lvl, "cannot sync the file system of '%s'", st->dir);
        rc = ERROR_FAIL;
        goto out;
    }
    for (i = 0; i < n; i++) {
        path = GCSPRINTF("%s/%s", st->dir, p[i].name);
        if (p[i].value && !tmp[i]) continue;      /* unchanged */
        if (p[i].value && rename(GCSPRINTF("%s.tmp", path), path)) {
            LOGE_AT(lvl, "cannot rename '%s.tmp' to '%s'", path, path);
            rc = ERROR_FAIL;
            goto out;
        }
        if (!p[i].value && unlink(path) && errno != ENOENT) {
            LOGE_AT(lvl, "cannot remove '%s'", path);
            rc = ERROR_FAIL;
            goto out;
        }
        tmp[i] = false;
        libxl__fault_point("save");   /* tests: a crash mid-batch */
    }
    if (fsync(dfd)) {
        LOGE_AT(lvl, "cannot sync '%s'", st->dir);
        rc = ERROR_FAIL;
    }
 out:
    for (i = 0; i < n; i++)
        if (tmp[i]) unlink(GCSPRINTF("%s/%s.tmp", st->dir, p[i].name));
    if (dfd >= 0) close(dfd);
    return rc;
}

static int dir_list(libxl__gc *gc, const libxl__snapshot_store *st,
                    const char *prefix, char ***names_r, char ***values_r,
                    int *n_r)
{
    DIR *dir = opendir(st->dir);
    struct dirent *de;
    char **names = NULL, **values = NULL;
    size_t pl = strlen(prefix);
    int n = 0, alloc = 0, rc;

    if (!dir && errno == ENOENT) {
        rc = 0;                 /* removed by a lock holder: nothing */
        goto out;
    }
    if (!dir) {
        LOGE(ERROR, "cannot read directory '%s'", st->dir);
        rc = ERROR_FAIL;
        goto out;
    }
    for (;;) {
        errno = 0;
        de = readdir(dir);
        if (!de) {
            if (errno) {
                LOGE(ERROR, "cannot read directory '%s'", st->dir);
                rc = ERROR_FAIL;
                goto out;
            }
            break;
        }
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
            strncmp(de->d_name, prefix, pl))
            continue;
        if (n == alloc) {
            alloc = alloc ? alloc * 2 : 16;
            GCREALLOC_ARRAY(names, alloc);
            if (values_r) GCREALLOC_ARRAY(values, alloc);
        }
        names[n] = GCSTRDUP(de->d_name);
        if (values_r) {
            rc = dir_get(gc, st, names[n], &values[n], NULL);
            if (rc == ERROR_NOTFOUND) values[n] = NULL;   /* vanished */
            else if (rc) goto out;
        }
        n++;
    }
    rc = 0;
 out:
    if (dir) closedir(dir);
    *names_r = rc ? NULL : names;
    if (values_r) *values_r = rc ? NULL : values;
    *n_r = rc ? 0 : n;
    return rc;
}

static int dir_domains(libxl__gc *gc, libxl_uuid **uuids_r, int *n_r)
{
    DIR *dir = opendir(CTX->state_dir);
    struct dirent *de;
    libxl_uuid *u = NULL;
    int n = 0;

    *uuids_r = NULL;
    *n_r = 0;
    if (!dir) return 0;
    while ((de = readdir(dir))) {
        GCREALLOC_ARRAY(u, n + 1);
        if (!libxl_uuid_from_string(&u[n], de->d_name)) n++;
    }
    closedir(dir);
    *uuids_r = u;
    *n_r = n;
    return 0;
}

const libxl__snapshot_store_ops libxl__snapshot_store_dir_ops = {
    .open = dir_open,
    .trylock = dir_trylock,
    .unlock = dir_unlock,
    .get = dir_get,
    .put = dir_put,
    .put_many = dir_put_many,
    .list = dir_list,
    .domains = dir_domains,
};

/* Leftover "*.tmp" of crashed writes: ours to remove under the lock. */
static void dir_remove_leftovers(libxl__gc *gc, libxl__snapshot_store *st)
{
    DIR *dir;
    struct dirent *de;
    const char *path;

    if (st->ops != &libxl__snapshot_store_dir_ops || st->lockfd < 0) return;
    dir = opendir(st->dir);
    while (dir && (de = readdir(dir))) {
        if (!has_suffix(de->d_name, TMP_SUFFIX)) continue;
        path = GCSPRINTF("%s/%s", st->dir, de->d_name);
        if (unlink(path) && errno != ENOENT)
            LOGE(WARN, "cannot remove leftover '%s'", path);
        else
            LOG(DEBUG, "removed leftover '%s'", path);
    }
    if (dir) closedir(dir);
}

/* ---------------------------------------------------------------- */
/* the store's operations, whichever store */

bool libxl__snapshot_store_is_dir(libxl__gc *gc)
{
    return !CTX || !CTX->store_pool;   /* (a gc of no context: tests) */
}

static const libxl__snapshot_store_ops *store_ops(libxl__gc *gc)
{
    return libxl__snapshot_store_is_dir(gc)
        ? &libxl__snapshot_store_dir_ops : &libxl__snapshot_store_rados_ops;
}

int libxl__snapshot_store_open(libxl__gc *gc, const char *state_dir,
                               const libxl_uuid *uuid,
                               libxl__snapshot_store *st_r)
{
    int rc;

    memset(st_r, 0, sizeof(*st_r));
    st_r->lockfd = -1;
    st_r->ops = store_ops(gc);
    rc = st_r->ops->open(gc, st_r, state_dir, uuid);
    if (rc) st_r->dir = NULL;
    return rc;
}

int libxl__snapshot_store_trylock(libxl__gc *gc, libxl__snapshot_store *st,
                                  const char **holder_r)
{
    char host[256] = "";
    const char *holder = NULL;
    int rc;

    if (holder_r) *holder_r = NULL;
    if (st->lockfd >= 0) return 0;   /* already ours */
    gethostname(host, sizeof(host) - 1);
    rc = st->ops->trylock(gc, st, GCSPRINTF("host %s pid %d", host,
                                            (int)getpid()), &holder);
    if (holder_r) *holder_r = holder;
    return rc;
}

void libxl__snapshot_store_unlock(libxl__snapshot_store *st)
{
    if (st->lockfd < 0) return;
    st->ops->unlock(st);
}

int libxl__snapshot_store_get(libxl__gc *gc, const libxl__snapshot_store *st,
                              const char *name, char **data_r,
                              size_t *len_r)
{
    return st->ops->get(gc, st, name, data_r, len_r);
}

int libxl__snapshot_store_put(libxl__gc *gc, const libxl__snapshot_store *st,
                              const libxl__store_put *p, int n,
                              xentoollog_level lvl)
{
    return n ? st->ops->put(gc, st, p, n, lvl) : 0;
}

int libxl__snapshot_store_put_many(libxl__gc *gc,
                                   const libxl__snapshot_store *st,
                                   const libxl__store_put *p, int n,
                                   xentoollog_level lvl)
{
    if (!n) return 0;
    return st->ops->put_many ? st->ops->put_many(gc, st, p, n, lvl)
                             : st->ops->put(gc, st, p, n, lvl);
}

int libxl__snapshot_store_put1(libxl__gc *gc,
                               const libxl__snapshot_store *st,
                               const char *name, const char *value,
                               size_t len, xentoollog_level lvl)
{
    libxl__store_put p = { name, value, len };
    return st->ops->put(gc, st, &p, 1, lvl);
}

int libxl__snapshot_store_list(libxl__gc *gc,
                               const libxl__snapshot_store *st,
                               const char *prefix, char ***names_r,
                               char ***values_r, int *n_r)
{
    return st->ops->list(gc, st, prefix, names_r, values_r, n_r);
}

char *libxl__snapshot_store_where(libxl__gc *gc,
                                  const libxl__snapshot_store *st,
                                  const char *name)
{
    return GCSPRINTF("%s/%s", st->dir, name);
}

int libxl__snapshot_store_domains(libxl__gc *gc, libxl_uuid **uuids_r,
                                  int *n_r)
{
    return store_ops(gc)->domains(gc, uuids_r, n_r);
}

char *libxl__snapshot_record_path(libxl__gc *gc,
                                  const libxl__snapshot_store *st,
                                  const char *name)
{
    return GCSPRINTF("%s/"RECORD_PREFIX"%s"RECORD_SUFFIX, st->dir, name);
}

static char *record_name(libxl__gc *gc, const char *name)
{
    return GCSPRINTF(RECORD_PREFIX"%s"RECORD_SUFFIX, name);
}

/* ---------------------------------------------------------------- */
/* domain record */

static int domain_record_parse(libxl__gc *gc, const char *path,
                               yajl_val v, libxl__domain_record *d)
{
    static const char *const strs[] = { "name", "config_file", "current" };
    char **dst[] = { &d->name, &d->config_file, &d->current };
    const char *s;
    yajl_val n;
    size_t i;

    if (!YAJL_IS_OBJECT(v)) {
        LOG(ERROR, "corrupt domain record '%s': not a JSON object", path);
        return ERROR_INVAL;
    }
    for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        n = libxl__json_get(v, strs[i]);
        if (!n || YAJL_IS_NULL(n)) continue;
        if (!YAJL_IS_STRING(n)) {
            LOG(ERROR, "corrupt domain record '%s': '%s' is not a string",
                path, strs[i]);
            return ERROR_INVAL;
        }
        *dst[i] = GCSTRDUP(YAJL_GET_STRING(n));
    }
    if (d->current && libxlsnap_name_check(d->current)) {
        LOG(ERROR, "corrupt domain record '%s': invalid current snapshot"
            " name '%s'", path, d->current);
        return ERROR_INVAL;
    }

    n = libxl__json_get(v, "uuid");
    if (n && !YAJL_IS_NULL(n)) {
        s = YAJL_GET_STRING(n);
        if (!s || libxl_uuid_from_string(&d->uuid, s)) {
            LOG(ERROR, "corrupt domain record '%s': invalid uuid", path);
            return ERROR_INVAL;
        }
    }

    n = libxl__json_get(v, "disks");
    if (!n || YAJL_IS_NULL(n)) return 0;
    if (!YAJL_IS_ARRAY(n)) {
        LOG(ERROR, "corrupt domain record '%s': 'disks' is not an array",
            path);
        return ERROR_INVAL;
    }
    GCNEW_ARRAY(d->disks, n->u.array.len);
    for (i = 0; i < n->u.array.len; i++) {
        yajl_val dv = n->u.array.values[i];
        libxl__active_disk *a = &d->disks[d->num_disks];
        const char *vdev = libxl__json_get_string(dv, "vdev");
        yajl_val pv = libxl__json_get(dv, "path");
        yajl_val fv = libxl__json_get(dv, "format");
        yajl_val cv;
        size_t k;

        if (!YAJL_IS_OBJECT(dv) || !vdev || !*vdev) {
            LOG(ERROR, "corrupt domain record '%s': disk %zu has no vdev",
                path, i);
            return ERROR_INVAL;
        }
        if ((pv && !YAJL_IS_NULL(pv) && !YAJL_IS_STRING(pv)) ||
            (fv && !YAJL_IS_NULL(fv) && !YAJL_IS_STRING(fv))) {
            LOG(ERROR, "corrupt domain record '%s': disk '%s': path or"
                " format is not a string", path, vdev);
            return ERROR_INVAL;
        }
        a->vdev = GCSTRDUP(vdev);
        a->path = GCSTRDUP(YAJL_GET_STRING(pv));
        a->config = GCSTRDUP(libxl__json_get_string(dv, "config"));
        cv = libxl__json_get(dv, "copied_from");
        a->copied_from = NULL;
        a->num_copied_from = 0;
        if (cv && YAJL_IS_ARRAY(cv)) {
            GCNEW_ARRAY(a->copied_from, cv->u.array.len + 1);
            for (k = 0; k < cv->u.array.len; k++)
                if (YAJL_IS_STRING(cv->u.array.values[k]))
                    a->copied_from[a->num_copied_from++] = GCSTRDUP(
                        YAJL_GET_STRING(cv->u.array.values[k]));
        }
        a->format = LIBXL_DISK_FORMAT_UNKNOWN;
        s = YAJL_GET_STRING(fv);
        if (s && libxl_disk_format_from_string(s, &a->format)) {
            LOG(ERROR, "corrupt domain record '%s': disk '%s': unknown"
                " format '%s'", path, vdev, s);
            return ERROR_INVAL;
        }
        d->num_disks++;
    }
    return 0;
}


static yajl_gen_status domain_record_gen(yajl_gen hand,
                                         const libxl__domain_record *d)
{
    char buf[LIBXL_UUID_FMTLEN + 1];
    yajl_gen_status s;
    int i;

    s = yajl_gen_map_open(hand);
    if (s) return s;
    s = libxl__yajl_gen_opt_str(hand, "name", d->name);
    if (s) return s;
    if (!libxl_uuid_is_nil(&d->uuid)) {
        snprintf(buf, sizeof(buf), LIBXL_UUID_FMT, LIBXL_UUID_BYTES(d->uuid));
        s = libxl__yajl_gen_opt_str(hand, "uuid", buf);
        if (s) return s;
    }
    s = libxl__yajl_gen_opt_str(hand, "config_file", d->config_file);
    if (s) return s;
    s = libxl__yajl_gen_opt_str(hand, "current", d->current);
    if (s) return s;

    s = libxl__yajl_gen_str(hand, "disks");
    if (s) return s;
    s = yajl_gen_array_open(hand);
    if (s) return s;
    for (i = 0; i < d->num_disks; i++) {
        const libxl__active_disk *a = &d->disks[i];

        s = yajl_gen_map_open(hand);
        if (s) return s;
        s = libxl__yajl_gen_opt_str(hand, "vdev", a->vdev);
        if (s) return s;
        s = libxl__yajl_gen_opt_str(hand, "path", a->path);
        if (s) return s;
        s = libxl__yajl_gen_opt_str(hand, "config", a->config);
        if (s) return s;
        if (a->num_copied_from) {
            int k;
            s = libxl__yajl_gen_str(hand, "copied_from");
            if (s) return s;
            s = yajl_gen_array_open(hand);
            if (s) return s;
            for (k = 0; k < a->num_copied_from; k++) {
                s = libxl__yajl_gen_str(hand, a->copied_from[k]);
                if (s) return s;
            }
            s = yajl_gen_array_close(hand);
            if (s) return s;
        }
        if (a->format != LIBXL_DISK_FORMAT_UNKNOWN) {
            s = libxl__yajl_gen_opt_str(hand, "format",
                            libxl_disk_format_to_string(a->format));
            if (s) return s;
        }
        s = yajl_gen_map_close(hand);
        if (s) return s;
    }
    s = yajl_gen_array_close(hand);
    if (s) return s;
    return yajl_gen_map_close(hand);
}

static char *domain_record_to_json(libxl__gc *gc,
                                   const libxl__domain_record *d)
{
    yajl_gen hand = yajl_gen_alloc(NULL);
    const unsigned char *buf;
    size_t len;
    char *r = NULL;

    if (!hand) abort();
    yajl_gen_config(hand, yajl_gen_beautify, 1);
    yajl_gen_config(hand, yajl_gen_indent_string, "    ");
    if (domain_record_gen(hand, d) != yajl_gen_status_ok ||
        yajl_gen_get_buf(hand, &buf, &len) != yajl_gen_status_ok) {
        LOG(ERROR, "cannot generate domain record");
        goto out;
    }
    r = libxl__gc_zalloc(gc, len + 1);
    memcpy(r, buf, len);
 out:
    yajl_gen_free(hand);
    return r;
}

char *libxl__domain_record_to_json(libxl__gc *gc,
                                   const libxl__domain_record *d)
{
    return domain_record_to_json(gc, d);
}

int libxl__domain_record_from_json(libxl__gc *gc, const char *what,
                                   yajl_val v, libxl__domain_record *d_r)
{
    memset(d_r, 0, sizeof(*d_r));
    return domain_record_parse(gc, what, v, d_r);
}

/* ---------------------------------------------------------------- */
/* load */

/* "snapshotdata-NAME.libxl-json" -> NAME (gc), else NULL */
static char *record_file_name(libxl__gc *gc, const char *file)
{
    size_t p = strlen(RECORD_PREFIX), s = strlen(RECORD_SUFFIX);
    size_t l = strlen(file);
    char *name;

    if (l <= p + s || strncmp(file, RECORD_PREFIX, p) ||
        !has_suffix(file, RECORD_SUFFIX))
        return NULL;
    name = libxl__gc_zalloc(gc, l - p - s + 1);
    memcpy(name, file + p, l - p - s);
    return name;
}

/*
 * The record's text and JSON tree live in a private arena, freed at
 * once: only the parsed record (in agc) stays, so that loading 10,000
 * records does not hold 10,000 texts and trees.
 */
static int load_snapshot(libxl__gc *agc, const libxl__snapshot_store *st,
                         const char *path, const char *fname,
                         libxlsnap_domain_snapshot *s, const char **why_r)
{
    GC_INIT(agc->owner);
    char *data;
    yajl_val v;
    int rc;

    *why_r = NULL;
    rc = libxl__snapshot_store_get(gc, st, record_name(gc, fname), &data,
                                   NULL);
    if (rc) {
        *why_r = libxl__gc_sprintf(agc, rc == ERROR_NOTFOUND
                                   ? "cannot read record '%s': it vanished"
                                   : "cannot read record '%s' (see the "
                                   "message above)", path);
        goto out;
    }
    v = libxl__json_parse(gc, data);
    if (!v) {
        *why_r = libxl__gc_sprintf(agc, "corrupt snapshot record '%s': not "
                                   "valid JSON", path);
        rc = ERROR_INVAL;
        goto out;
    }
    rc = libxl__domain_snapshot_parse_json(agc, v, s);
    if (rc) {
        *why_r = libxl__gc_sprintf(agc, "corrupt snapshot record '%s': "
                                   "invalid record", path);
        rc = ERROR_INVAL;
        goto out;
    }
    if (strcmp(s->name, fname)) {
        *why_r = libxl__gc_sprintf(agc, "corrupt snapshot record '%s': it "
                                   "holds snapshot '%s'", path, s->name);
        rc = ERROR_INVAL;
        goto out;
    }
    rc = 0;
 out:
    GC_FREE;
    return rc;
}

/* Something wrong found while loading t (snapshot-check reports it). */
static void damage(libxl__gc *gc, libxl__snapshot_tree *t, char *what)
{
    GCREALLOC_ARRAY(t->damage, t->num_damage + 1);
    t->damage[t->num_damage++] = what;
}

int libxl__snapshot_store_load_domain(libxl__gc *gc,
                                      libxl__snapshot_store *st,
                                      libxl__domain_record *dom_r)
{
    const char *path = libxl__snapshot_store_where(gc, st, DOMAIN_RECORD);
    char *data;
    yajl_val v;
    int rc;

    memset(dom_r, 0, sizeof(*dom_r));
    rc = libxl__snapshot_store_get(gc, st, DOMAIN_RECORD, &data, NULL);
    if (rc == ERROR_NOTFOUND) return 0;   /* no record yet: empty */
    if (rc) return rc;
    v = libxl__json_parse(gc, data);
    if (!v) {
        LOG(ERROR, "corrupt domain record '%s': not valid JSON", path);
        return ERROR_INVAL;
    }
    return domain_record_parse(gc, path, v, dom_r);
}

/*
 * lenient (snapshot-check): a corrupt record is left out and noted in
 * the tree's damage, and leftover "*.tmp" files stay (it changes
 * nothing).
 */
static int load_tree(libxl__gc *gc, libxl__snapshot_store *st,
                     libxl__snapshot_tree *tree_r, bool lenient)
{
    const char *path, *why;
    char **files, *name;
    int rc, i, num;

    memset(tree_r, 0, sizeof(*tree_r));

    rc = libxl__snapshot_store_load_domain(gc, st, &tree_r->dom);
    if (rc) goto out;
    /* Left by a crashed write.  Only ours to remove when we hold the
     * lock: otherwise it may be a write in progress. */
    if (!lenient) dir_remove_leftovers(gc, st);

    rc = libxl__snapshot_store_list(gc, st, RECORD_PREFIX, &files, NULL,
                                    &num);
    if (rc) goto out;
    GCNEW_ARRAY(tree_r->snaps, num + 1);
    for (i = 0; i < num; i++) {
        name = record_file_name(gc, files[i]);
        if (!name) continue;

        path = libxl__snapshot_store_where(gc, st, files[i]);
        rc = load_snapshot(gc, st, path, name,
                           &tree_r->snaps[tree_r->num_snaps], &why);
        if (rc && lenient) {
            damage(gc, tree_r, GCSTRDUP(why));
            GCREALLOC_ARRAY(tree_r->skipped, tree_r->num_skipped + 1);
            tree_r->skipped[tree_r->num_skipped++] = GCSTRDUP(files[i]);
            memset(&tree_r->snaps[tree_r->num_snaps], 0,
                   sizeof(*tree_r->snaps));
            continue;
        }
        if (rc) {
            if (rc != ERROR_FAIL) LOG(ERROR, "%s", why);   /* else logged */
            goto out;
        }
        tree_r->num_snaps++;
    }

    libxl__snapshot_tree_fixup(gc, tree_r);
    rc = 0;
 out:
    if (rc) memset(tree_r, 0, sizeof(*tree_r));
    return rc;
}

int libxl__snapshot_store_load(libxl__gc *gc, libxl__snapshot_store *st,
                               libxl__snapshot_tree *tree_r)
{
    return load_tree(gc, st, tree_r, false);
}

int libxl__snapshot_store_load_check(libxl__gc *gc, libxl__snapshot_store *st,
                                     libxl__snapshot_tree *tree_r)
{
    return load_tree(gc, st, tree_r, true);
}

bool libxl__snapshot_store_has(libxl__gc *gc, const libxl__snapshot_store *st,
                               const char *name)
{
    return !libxl__snapshot_store_get(gc, st, record_name(gc, name), NULL,
                                      NULL);
}

int libxl__snapshot_store_load_one(libxl__gc *gc, libxl__snapshot_store *st,
                                   const char *name,
                                   libxl__snapshot_tree *tree_r)
{
    const char *cur, *why;
    int rc;

    memset(tree_r, 0, sizeof(*tree_r));
    tree_r->partial = true;
    rc = libxl__snapshot_store_load_domain(gc, st, &tree_r->dom);
    if (rc) goto out;
    cur = tree_r->dom.current;
    if (cur && (libxlsnap_name_check(cur) ||
                !libxl__snapshot_store_has(gc, st, cur))) {
        /* as the full load's fixup says it */
        LOG(WARN, "current snapshot '%s' does not exist", cur);
        tree_r->dom.current = NULL;
        cur = NULL;
    }
    if (name && (libxlsnap_name_check(name) ||
                 !libxl__snapshot_store_has(gc, st, name))) {
        rc = ERROR_NOTFOUND;
        goto out;
    }
    if (!name) name = cur;
    if (name) {
        libxlsnap_domain_snapshot *s;
        int i, n = 0;

        GCNEW(tree_r->snaps);
        s = &tree_r->snaps[0];
        rc = load_snapshot(gc, st, libxl__snapshot_record_path(gc, st, name),
                           name, s, &why);
        if (rc) {
            if (rc != ERROR_FAIL) LOG(ERROR, "%s", why);   /* else logged */
            goto out;
        }
        tree_r->num_snaps = 1;
        /* what a full fixup would correct in this record: a parent
         * without a record, children without one (O(its children)) */
        if (s->parent && (libxlsnap_name_check(s->parent) ||
                          !libxl__snapshot_store_has(gc, st, s->parent))) {
            LOG(WARN, "snapshot '%s': parent '%s' does not exist,"
                " taken as a root", s->name, s->parent);
            s->parent = NULL;
        }
        for (i = 0; i < s->num_children; i++)
            if (!libxlsnap_name_check(s->children[i]) &&
                libxl__snapshot_store_has(gc, st, s->children[i]))
                s->children[n++] = s->children[i];
        s->num_children = n;
    }
    libxl__snapshot_tree_fixup(gc, tree_r);
    rc = 0;
 out:
    if (rc) memset(tree_r, 0, sizeof(*tree_r));
    return rc;
}

/* ---------------------------------------------------------------- */
/* save */

/* The snapshots' names, sorted, with their index: lookups by name. */
typedef struct { const char *name; int idx; } name_ix;

static int name_ix_cmp(const void *a, const void *b)
{
    return strcmp(((const name_ix *)a)->name, ((const name_ix *)b)->name);
}

static name_ix *name_index(libxl__gc *gc, const libxl__snapshot_tree *t)
{
    name_ix *ix;
    int i;

    GCNEW_ARRAY(ix, t->num_snaps + 1);
    for (i = 0; i < t->num_snaps; i++) {
        ix[i].name = t->snaps[i].name;
        ix[i].idx = i;
    }
    qsort(ix, t->num_snaps, sizeof(*ix), name_ix_cmp);
    return ix;
}

static int name_lookup(const name_ix *ix, int n, const char *name)
{
    name_ix key = { name, -1 };
    const name_ix *hit = name ? bsearch(&key, ix, n, sizeof(*ix),
                                        name_ix_cmp) : NULL;
    return hit ? hit->idx : -1;
}

/*
 * pidx[i]: index in t->snaps of snapshot i's parent, or -1.  Built
 * once, in O(n log n), so that walks up the tree do not search by name.
 */
static int *parent_index(libxl__gc *gc, const libxl__snapshot_tree *t)
{
    name_ix *ix = name_index(gc, t);
    int *pidx, i;

    GCNEW_ARRAY(pidx, t->num_snaps + 1);
    for (i = 0; i < t->num_snaps; i++)
        pidx[i] = name_lookup(ix, t->num_snaps, t->snaps[i].parent);
    return pidx;
}

/*
 * depth[i]: how many ancestors snapshot i has, each computed once
 * (O(n)); a loop of parents counts as a root where it closes.
 */
static int *depths(libxl__gc *gc, const int *pidx, int n, int *max_r)
{
    int *depth, *path, i, j, k, len;

    GCNEW_ARRAY(depth, n + 1);
    GCNEW_ARRAY(path, n + 1);
    for (i = 0; i < n; i++) depth[i] = -1;
    *max_r = 0;
    for (i = 0; i < n; i++) {
        for (len = 0, j = i; j >= 0 && depth[j] == -1 && len < n;
             j = pidx[j]) {
            depth[j] = -2;                /* on the path */
            path[len++] = j;
        }
        k = j >= 0 && depth[j] >= 0 ? depth[j] + 1 : 0;
        while (len--) {
            depth[path[len]] = k++;
            if (depth[path[len]] > *max_r) *max_r = depth[path[len]];
        }
    }
    return depth;
}

/*
 * One put: the directory store writes its names in this order (each
 * atomically), the RADOS store all of them in one op.  save_many: the
 * same names in the same order, put as a batch (put_many: one sync for
 * them all), for a save that writes many records at once.
 */
static int save(libxl__gc *gc, libxl__snapshot_store *st,
                const libxl__snapshot_tree *tree, bool many);

int libxl__snapshot_store_save(libxl__gc *gc, libxl__snapshot_store *st,
                               const libxl__snapshot_tree *tree)
{
    return save(gc, st, tree, false);
}

int libxl__snapshot_store_save_many(libxl__gc *gc, libxl__snapshot_store *st,
                                    const libxl__snapshot_tree *tree)
{
    return save(gc, st, tree, true);
}

static int save(libxl__gc *gc, libxl__snapshot_store *st,
                const libxl__snapshot_tree *tree, bool many)
{
    int *pidx, *depth = NULL, *order = NULL;
    name_ix *ix;
    libxl__store_put *p;
    char **files;
    int rc, i, n = tree->num_snaps, np = 0, nfiles, maxdepth = 0;
    char *json, *name;

    /* 1. snapshot records, parents before children (by depth, O(n)) */
    pidx = parent_index(gc, tree);
    depth = depths(gc, pidx, n, &maxdepth);
    GCNEW_ARRAY(order, n + 1);
    {
        int *start;
        GCNEW_ARRAY(start, maxdepth + 2);
        for (i = 0; i < n; i++) start[depth[i] + 1]++;
        for (i = 1; i <= maxdepth + 1; i++) start[i] += start[i - 1];
        for (i = 0; i < n; i++) order[start[depth[i]]++] = i;
    }
    GCNEW_ARRAY(p, n + 1);
    for (i = 0; i < n; i++) {
        const libxlsnap_domain_snapshot *s = &tree->snaps[order[i]];

        if (libxlsnap_name_check(s->name)) {
            LOG(ERROR, "cannot save snapshot '%s': invalid name",
                s->name ? s->name : "(null)");
            rc = ERROR_INVAL;
            goto out;
        }
        json = libxlsnap_domain_snapshot_to_json(CTX, s);
        if (!json) {
            rc = ERROR_FAIL;
            goto out;
        }
        libxl__gc_adopt(gc, json);
        p[np].name = record_name(gc, s->name);
        p[np].value = json;
        p[np++].len = strlen(json);
    }

    /* 2. the domain record, whose current is now written */
    json = domain_record_to_json(gc, &tree->dom);
    if (!json) {
        rc = ERROR_FAIL;
        goto out;
    }
    p[np].name = DOMAIN_RECORD;
    p[np].value = json;
    p[np++].len = strlen(json);

    /* 3. records of snapshots no longer in the tree (a partial tree
     *    removes none: it does not hold them) */
    if (!tree->partial) {
        rc = libxl__snapshot_store_list(gc, st, RECORD_PREFIX, &files, NULL,
                                        &nfiles);
        if (rc) goto out;
        ix = name_index(gc, tree);
        for (i = 0; i < nfiles; i++) {
            name = record_file_name(gc, files[i]);
            if (!name || name_lookup(ix, n, name) >= 0) continue;
            GCREALLOC_ARRAY(p, np + 1);
            p[np].name = files[i];
            p[np].value = NULL;
            p[np++].len = 0;
        }
    }
    rc = many ? libxl__snapshot_store_put_many(gc, st, p, np, XTL_ERROR)
              : libxl__snapshot_store_put(gc, st, p, np, XTL_ERROR);
 out:
    return rc;
}

/* ---------------------------------------------------------------- */
/* tree */

static int snapshot_cmp(const void *a, const void *b)
{
    const libxlsnap_domain_snapshot *x = a, *y = b;

    if (x->creation_time != y->creation_time)
        return x->creation_time < y->creation_time ? -1 : 1;
    if (x->creation_nsec != y->creation_nsec)
        return x->creation_nsec < y->creation_nsec ? -1 : 1;
    return strcmp(x->name, y->name);
}

libxlsnap_domain_snapshot *libxl__snapshot_tree_find(libxl__snapshot_tree *t,
                                                 const char *name)
{
    int i;

    if (!name) return NULL;
    for (i = 0; i < t->num_snaps; i++)
        if (!strcmp(t->snaps[i].name, name))
            return &t->snaps[i];
    return NULL;
}

/* Children, in the order of snaps: creation time, then name. */
static void all_children(libxl__gc *gc, libxl__snapshot_tree *t,
                         const int *pidx)
{
    int i;

    for (i = 0; i < t->num_snaps; i++) {
        t->snaps[i].children = NULL;
        t->snaps[i].num_children = 0;
    }
    for (i = 0; i < t->num_snaps; i++)
        if (pidx[i] >= 0) t->snaps[pidx[i]].num_children++;
    for (i = 0; i < t->num_snaps; i++) {
        if (t->snaps[i].num_children)
            GCNEW_ARRAY(t->snaps[i].children, t->snaps[i].num_children);
        t->snaps[i].num_children = 0;
    }
    for (i = 0; i < t->num_snaps; i++) {
        libxlsnap_domain_snapshot *p;
        if (pidx[i] < 0) continue;
        p = &t->snaps[pidx[i]];
        p->children[p->num_children++] = t->snaps[i].name;
    }
}

/*
 * A partial tree's children: those its files name (the snapshots it
 * does not hold), and those it holds, each named once.  New snapshots
 * come last, as in a full fixup: they are the youngest.
 */
static void partial_children(libxl__gc *gc, libxl__snapshot_tree *t,
                             const int *pidx)
{
    libxlsnap_domain_snapshot *p;
    char **c;
    int i, j;

    for (i = 0; i < t->num_snaps; i++) {
        if (pidx[i] < 0) continue;
        p = &t->snaps[pidx[i]];
        for (j = 0; j < p->num_children; j++)
            if (!strcmp(p->children[j], t->snaps[i].name)) break;
        if (j < p->num_children) continue;
        GCNEW_ARRAY(c, p->num_children + 1);
        if (p->num_children)
            memcpy(c, p->children, p->num_children * sizeof(*c));
        c[p->num_children++] = t->snaps[i].name;
        p->children = c;
    }
}

void libxl__snapshot_tree_fixup(libxl__gc *gc, libxl__snapshot_tree *t)
{
    int *pidx, *state, *path, i, j, len;

    if (t->num_snaps > 1)
        qsort(t->snaps, t->num_snaps, sizeof(*t->snaps), snapshot_cmp);
    pidx = parent_index(gc, t);

    /* parents that do not exist, or that make a loop, become roots
     * (a partial tree does not hold them all: it keeps them) */
    for (i = 0; !t->partial && i < t->num_snaps; i++) {
        libxlsnap_domain_snapshot *s = &t->snaps[i];
        if (s->parent && pidx[i] < 0) {
            LOG(WARN, "snapshot '%s': parent '%s' does not exist,"
                " taken as a root", s->name, s->parent);
            damage(gc, t, GCSPRINTF("snapshot %s: its parent '%s' has no "
                                    "record", s->name, s->parent));
            s->parent = NULL;
        }
    }
    /* a loop: each walk up stops at a snapshot seen before (O(n)) */
    GCNEW_ARRAY(state, t->num_snaps + 1);    /* 0 new, 1 on path, 2 done */
    GCNEW_ARRAY(path, t->num_snaps + 1);
    for (i = 0; i < t->num_snaps; i++) {
        for (len = 0, j = i; j >= 0 && !state[j]; j = pidx[j]) {
            state[j] = 1;
            path[len++] = j;
        }
        if (j >= 0 && state[j] == 1) {
            /* back on this walk's own path: break the loop at j */
            char *loop = GCSTRDUP(t->snaps[j].name);
            int k = len;
            while (k > 0 && path[k - 1] != j) k--;   /* after j's place */
            for (k = k ? k - 1 : 0; k < len; k++)
                loop = GCSPRINTF("%s -> %s", loop, t->snaps[path[k]].parent);
            LOG(WARN, "snapshot '%s': parent '%s' makes a loop,"
                " taken as a root", t->snaps[j].name, t->snaps[j].parent);
            damage(gc, t, !strcmp(t->snaps[j].name, t->snaps[j].parent)
                   ? GCSPRINTF("snapshot %s: it is its own parent",
                               t->snaps[j].name)
                   : GCSPRINTF("snapshots %s: their parents make a loop",
                               loop));
            t->snaps[j].parent = NULL;
            pidx[j] = -1;
        }
        while (len--) state[path[len]] = 2;
    }

    if (t->partial)
        partial_children(gc, t, pidx);
    else
        all_children(gc, t, pidx);

    /* (a partial tree checked its current on loading: see load_one) */
    if (!t->partial && t->dom.current &&
        !libxl__snapshot_tree_find(t, t->dom.current)) {
        LOG(WARN, "current snapshot '%s' does not exist", t->dom.current);
        t->dom.current = NULL;
    }
    for (i = 0; i < t->num_snaps; i++)
        t->snaps[i].current = t->dom.current &&
            !strcmp(t->snaps[i].name, t->dom.current);
}

void libxl__snapshot_tree_remove(libxl__gc *gc, libxl__snapshot_tree *t,
                                 const char *name)
{
    libxlsnap_domain_snapshot *s = libxl__snapshot_tree_find(t, name);
    char *parent, *gone;
    int i, idx;

    if (!s) return;
    idx = s - t->snaps;
    gone = GCSTRDUP(s->name);
    parent = GCSTRDUP(s->parent);

    for (i = 0; i < t->num_snaps; i++) {
        if (t->snaps[i].parent && !strcmp(t->snaps[i].parent, gone))
            t->snaps[i].parent = GCSTRDUP(parent);
    }
    if (t->dom.current && !strcmp(t->dom.current, gone))
        t->dom.current = parent;

    memmove(&t->snaps[idx], &t->snaps[idx + 1],
            (t->num_snaps - idx - 1) * sizeof(*t->snaps));
    t->num_snaps--;
    libxl__snapshot_tree_fixup(gc, t);
}

/* A deep copy of s whose every pointer belongs to gc. */
static void snapshot_copy_gc(libxl__gc *gc, libxlsnap_domain_snapshot *dst,
                             const libxlsnap_domain_snapshot *src)
{
    int i;

    libxl__domain_snapshot_copy(dst, src);
    libxl__gc_adopt(gc, dst->name);
    libxl__gc_adopt(gc, dst->description);
    libxl__gc_adopt(gc, dst->parent);
    for (i = 0; i < dst->num_children; i++)
        libxl__gc_adopt(gc, dst->children[i]);
    libxl__gc_adopt(gc, dst->children);
    libxl__gc_adopt(gc, dst->memory);
    libxl__gc_adopt(gc, dst->domain_name);
    for (i = 0; i < dst->num_disks; i++) {
        libxl__gc_adopt(gc, dst->disks[i].vdev);
        libxl__gc_adopt(gc, dst->disks[i].file);
        libxl__gc_adopt(gc, dst->disks[i].overlay);
        libxl__gc_adopt(gc, dst->disks[i].tag);
    }
    libxl__gc_adopt(gc, dst->disks);
}

/*
 * Adds a copy of s, replacing a snapshot of the same name.  s may be
 * one of t's own snapshots: it is copied before t changes.
 */
void libxl__snapshot_tree_add(libxl__gc *gc, libxl__snapshot_tree *t,
                              const libxlsnap_domain_snapshot *s)
{
    libxlsnap_domain_snapshot copy, *old;

    snapshot_copy_gc(gc, &copy, s);
    old = libxl__snapshot_tree_find(t, copy.name);
    if (!old) {
        GCREALLOC_ARRAY(t->snaps, t->num_snaps + 1);
        old = &t->snaps[t->num_snaps++];
    }
    *old = copy;
    libxl__snapshot_tree_fixup(gc, t);
}

/*
 * Adds copies of snaps[0..n), whose names t does not have yet, with one
 * fixup (n tree_adds would sort the tree n times).
 */
void libxl__snapshot_tree_add_many(libxl__gc *gc, libxl__snapshot_tree *t,
                                   const libxlsnap_domain_snapshot *snaps,
                                   int n)
{
    int i;

    GCREALLOC_ARRAY(t->snaps, t->num_snaps + n);
    for (i = 0; i < n; i++)
        snapshot_copy_gc(gc, &t->snaps[t->num_snaps++], &snaps[i]);
    libxl__snapshot_tree_fixup(gc, t);
}

bool libxl__snapshot_tree_uses_file(const libxl__snapshot_tree *t,
                                    const char *path)
{
    int i, j;

    if (!path) return false;
    for (i = 0; i < t->num_snaps; i++) {
        const libxlsnap_domain_snapshot *s = &t->snaps[i];
        for (j = 0; j < s->num_disks; j++) {
            const libxlsnap_disk_snapshot *d = &s->disks[j];
            if ((d->file && !strcmp(d->file, path)) ||
                (d->overlay && !strcmp(d->overlay, path)))
                return true;
        }
    }
    return false;
}

bool libxl__snapshot_tree_has_image(const libxl__snapshot_tree *t,
                                    const char *path)
{
    int i, j;
    for (i = 0; path && i < t->num_snaps; i++)
        for (j = 0; j < t->snaps[i].num_disks; j++) {
            const libxlsnap_disk_snapshot *ds = &t->snaps[i].disks[j];
            if (ds->type != LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO && ds->file &&
                !strcmp(ds->file, path))
                return true;
        }
    return false;
}

/* Appends path to l (n of them) unless it is there already. */
static void add_distinct(libxl__gc *gc, const char ***l, int *n,
                         const char *path)
{
    int i;

    for (i = 0; i < *n; i++)
        if (!strcmp((*l)[i], path)) return;
    GCREALLOC_ARRAY(*l, *n + 1);
    (*l)[(*n)++] = path;
}

int libxl__snapshot_unused_probe(libxl__gc *gc,
                                 const libxl__snapshot_tree *t,
                                 const char *const *keep, int num_keep,
                                 const char *const *from, int num_from,
                                 const char ***images_r, int *num_need_r)
{
    const char **l = NULL;
    int n = 0, i, j;

    for (i = 0; i < t->num_snaps; i++)
        for (j = 0; j < t->snaps[i].num_disks; j++) {
            const libxlsnap_disk_snapshot *ds = &t->snaps[i].disks[j];
            /* (an RBD image: no chain, nothing unused in it) */
            if (ds->type != LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO && ds->file &&
                libxl__image_is_file(ds->file))
                add_distinct(gc, &l, &n, ds->file);
        }
    for (i = 0; i < num_keep; i++)
        if (keep[i] && libxl__image_is_file(keep[i]))
            add_distinct(gc, &l, &n, keep[i]);
    *num_need_r = n;
    for (i = 0; i < num_from; i++)
        if (from[i] && libxl__file_exists(from[i]))
            add_distinct(gc, &l, &n, from[i]);
    *images_r = l;
    return n;
}

/*
 * What nothing needs any more: an image of from[] (with_self) and those
 * below it in its backing chain, followed down while they are not an
 * image of the domain config, nor a base image (the end of a chain: a
 * disk's own, from its config or attached by hand), nor a record's
 * image, nor in the backing
 * chain of a record's image or of an image of keep[] (the disks' active
 * images).  Top first.  A chain of a record's or keep[]'s image that
 * cannot be read: none (nothing goes on a guess).
 */
int libxl__snapshot_unused_images(libxl__gc *gc,
                                  const libxl__domain_config *cfg,
                                  const char *const *images,
                                  const yajl_val *chains, int num_need,
                                  int num_images, bool with_self,
                                  const char ***unused_r,
                                  const char **why_r)
{
    const char **need = NULL, **unused = NULL, **f;
    int nneed = 0, nunused = 0, nf, i, j, k;

    *unused_r = NULL;
    *why_r = NULL;
    for (i = 0; i < num_need; i++) {
        if (!chains[i] || !YAJL_IS_ARRAY(chains[i])) {
            *why_r = images[i];
            return 0;
        }
        nf = libxl__qemu_img_chain_files(gc, chains[i], &f);
        GCREALLOC_ARRAY(need, nneed + nf);
        for (k = 0; k < nf; k++) need[nneed++] = f[k];
    }
    for (i = num_need; i < num_images; i++) {
        nf = libxl__qemu_img_chain_files(gc, chains[i], &f);
        for (k = with_self ? 0 : 1; k < nf; k++) {
            /* a base image (the chain's last) is a disk's own */
            bool needed = k == nf - 1;
            for (j = 0; !needed && cfg && j < cfg->num_disks; j++)
                needed = cfg->disks[j].pdev_path &&
                    !strcmp(cfg->disks[j].pdev_path, f[k]);
            for (j = 0; !needed && j < nneed; j++)
                needed = !strcmp(need[j], f[k]);
            for (j = 0; !needed && j < nunused; j++)
                needed = !strcmp(unused[j], f[k]);  /* listed already */
            if (needed) break;        /* it, and what is below it, stay */
            GCREALLOC_ARRAY(unused, nunused + 1);
            unused[nunused++] = f[k];
        }
    }
    *unused_r = unused;
    return nunused;
}

/* ---------------------------------------------------------------- */
/* ownership */

/* (the kinds of parts: libxl__part_kind, each backend's ->parts) */
typedef libxl__part_kind part_kind;
#define PART_OVERLAY LIBXL__PART_OVERLAY
#define PART_FROZEN LIBXL__PART_FROZEN
#define PART_TAG LIBXL__PART_TAG
#define PART_MEMORY LIBXL__PART_MEMORY
#define PART_VOLUME LIBXL__PART_VOLUME

typedef struct {
    const libxlsnap_domain_snapshot *s;   /* its owner */
    const libxlsnap_disk_snapshot *ds;    /* NULL: the memory image */
    part_kind kind;
    const char *path, *tag;
    bool asked;                       /* one of the record asked about */
} part;

/* (p has room: at most 1 + 2 * num_disks parts per record) */
static void add_part(libxl__gc *gc, part **p, int *n,
                     const libxlsnap_domain_snapshot *s,
                     const libxlsnap_disk_snapshot *ds, part_kind kind,
                     const char *path, const char *tag, bool asked)
{
    if (!path) return;
    (*p)[*n].s = s;
    (*p)[*n].ds = ds;
    (*p)[*n].kind = kind;
    (*p)[*n].path = path;
    (*p)[*n].tag = tag;
    (*p)[*n].asked = asked;
    (*n)++;
}

/* What s owns: each file, internal snapshot, memory image and volume. */
static void add_parts(libxl__gc *gc, part **p, int *n,
                      const libxlsnap_domain_snapshot *s, bool asked)
{
    int j;

    add_part(gc, p, n, s, NULL, PART_MEMORY, s->memory, NULL, asked);
    for (j = 0; j < s->num_disks; j++) {
        const libxlsnap_disk_snapshot *ds = &s->disks[j];
        const libxl__snapshot_backend *be = libxl__snapshot_backend_of(ds);
        libxl__snapshot_part pp[2];
        int k, np = be ? be->parts(gc, ds, pp) : 0;

        for (k = 0; k < np; k++)
            add_part(gc, p, n, s, ds, pp[k].kind, pp[k].path, pp[k].tag,
                     asked);
    }
}

/* By path, then role, then tag: a clash of one role is a run. */
static int part_cmp(const void *a, const void *b)
{
    const part *x = a, *y = b;
    int r = strcmp(x->path, y->path);

    if (r) return r;
    if (x->kind != y->kind) return x->kind < y->kind ? -1 : 1;
    return strcmp(x->tag ? x->tag : "", y->tag ? y->tag : "");
}

static bool anyone_s(const part *p)
{
    return p->kind == PART_MEMORY || p->kind == PART_VOLUME;
}

/*
 * Do a and b, of two records, claim the same thing?  A memory image or
 * a volume is nobody else's in any role; an image is frozen by one
 * record and made by one (a later snapshot freezes the overlay an
 * earlier one made: that is a chain, not a clash); an internal
 * snapshot is its image and tag.
 */
static bool parts_clash(const part *a, const part *b)
{
    if (a->s == b->s || strcmp(a->path, b->path)) return false;
    if (a->kind == PART_MEMORY || b->kind == PART_MEMORY ||
        a->kind == PART_VOLUME || b->kind == PART_VOLUME)
        return true;
    if (a->kind != b->kind) return false;
    return a->kind != PART_TAG || !strcmp(a->tag, b->tag);
}

static const char *part_what(libxl__gc *gc, const part *p)
{
    switch (p->kind) {
    case PART_OVERLAY:
        return GCSPRINTF("overlay '%s' (disk %s)", p->path, p->ds->vdev);
    case PART_FROZEN:
        return GCSPRINTF("frozen image '%s' (disk %s)", p->path,
                         p->ds->vdev);
    case PART_TAG:
        return GCSPRINTF("internal snapshot '%s' in '%s' (disk %s)", p->tag,
                         p->path, p->ds->vdev);
    case PART_MEMORY:
        return GCSPRINTF("memory image '%s'", p->path);
    default:
        return GCSPRINTF("LVM volume '%s' (disk %s)", p->path, p->ds->vdev);
    }
}

int libxl__snapshot_ownership(libxl__gc *gc, const libxl__snapshot_tree *t,
                              const libxlsnap_domain_snapshot *s,
                              libxl__snapshot_clash **clashes_r)
{
    libxl__snapshot_clash *c = NULL;
    part *p = NULL;
    int i, j, k, n = 0, nc = 0, room = s ? 1 + 2 * s->num_disks : 0;

    for (i = 0; i < t->num_snaps; i++)
        room += 1 + 2 * t->snaps[i].num_disks;
    GCNEW_ARRAY(p, room + 1);
    for (i = 0; i < t->num_snaps; i++)
        if (!s || (t->snaps[i].name && strcmp(t->snaps[i].name, s->name)))
            add_parts(gc, &p, &n, &t->snaps[i], false);
    if (s) add_parts(gc, &p, &n, s, true);
    if (n > 1) qsort(p, n, sizeof(*p), part_cmp);

    /*
     * Runs of one path.  In a run, a memory image or volume against
     * every other part; the other roles only within their own run of
     * role and tag (so 10,000 internal snapshots in one image cost
     * their sort, not their pairs).
     */
    for (i = 0; i < n; i = k) {
        int m, to;
        for (k = i + 1; k < n && !strcmp(p[k].path, p[i].path); k++)
            ;
        for (j = i; j < k; j++) {
            bool any = anyone_s(&p[j]);
            if (any) {
                to = k;                       /* every other part */
            } else {
                for (to = j + 1; to < k && !anyone_s(&p[to]) &&
                     !part_cmp(&p[to], &p[j]); to++)
                    ;                         /* its role and tag */
            }
            for (m = any ? i : j + 1; m < to; m++) {
                const part *a = &p[j], *b = &p[m];
                /* (a pair of two such parts: counted from the first) */
                if (m == j || (any && anyone_s(b) && m < j)) continue;
                if (s && a->asked == b->asked) continue;
                if (!parts_clash(a, b)) continue;
                if (s ? a->asked : strcmp(a->s->name, b->s->name) > 0) {
                    const part *x = a; a = b; b = x;
                }
                /* b is the record asked about (or the later name) */
                GCREALLOC_ARRAY(c, nc + 1);
                c[nc].name = b->s->name;
                c[nc].what = part_what(gc, b);
                c[nc].owner = a->s->name;
                c[nc].owner_what = part_what(gc, a);
                nc++;
            }
        }
    }
    if (clashes_r) *clashes_r = c;
    return nc;
}

int libxl__snapshot_claim(libxl__gc *gc, const libxl__snapshot_tree *t,
                          const libxlsnap_domain_snapshot *s)
{
    libxl__snapshot_clash *c;

    if (!libxl__snapshot_ownership(gc, t, s, &c)) return 0;
    LOG(ERROR, "snapshot %s: its %s is snapshot %s's", s->name, c[0].what,
        c[0].owner);
    return ERROR_INVAL;
}

void libxl__snapshot_tree_move_file(libxl__gc *gc, libxl__snapshot_tree *t,
                                    const char *vdev, const char *from,
                                    const char *to, libxl_disk_format fmt)
{
    int i, j;

    for (i = 0; i < t->num_snaps; i++)
        for (j = 0; j < t->snaps[i].num_disks; j++) {
            libxlsnap_disk_snapshot *o = &t->snaps[i].disks[j];
            if (strcmp(o->vdev, vdev)) continue;
            if (o->file && !strcmp(o->file, from)) {
                o->file = GCSTRDUP(to);
                o->format = fmt;
            }
            if (o->overlay && !strcmp(o->overlay, from))
                o->overlay = NULL;
        }
    /* the domain record's too (its config kept): also an entry whose
     * config now names another image, which the caller's active image
     * is not */
    for (i = 0; i < t->dom.num_disks; i++) {
        libxl__active_disk *a = &t->dom.disks[i];
        if (a->vdev && !strcmp(a->vdev, vdev) && a->path &&
            !strcmp(a->path, from)) {
            a->path = GCSTRDUP(to);
            a->format = fmt;
        }
    }
}

libxl__active_disk *libxl__domain_record_disk(libxl__domain_record *d,
                                              const char *vdev)
{
    int i;

    if (!vdev) return NULL;
    for (i = 0; i < d->num_disks; i++)
        if (d->disks[i].vdev && !strcmp(d->disks[i].vdev, vdev))
            return &d->disks[i];
    return NULL;
}

bool libxl__domain_record_has_image(const libxl__domain_record *d,
                                    const char *path)
{
    int i;

    for (i = 0; i < d->num_disks; i++)
        if (d->disks[i].path && !strcmp(d->disks[i].path, path))
            return true;
    return false;
}

void libxl__domain_record_set_disk(libxl__gc *gc, libxl__domain_record *d,
                                   const libxl__domain_config *cfg,
                                   const char *vdev, const char *path,
                                   libxl_disk_format format)
{
    libxl__active_disk *a = libxl__domain_record_disk(d, vdev);
    int i;

    if (!a) {
        GCREALLOC_ARRAY(d->disks, d->num_disks + 1);
        a = &d->disks[d->num_disks++];
        a->vdev = GCSTRDUP(vdev);
        a->config = NULL;
        a->copied_from = NULL;
        a->num_copied_from = 0;
    }
    a->path = GCSTRDUP(path);
    a->format = format;
    /* (only a config file's: a running domain known without one has
     * its running images there) */
    for (i = 0; cfg && cfg->file && i < cfg->num_disks; i++)
        if (cfg->disks[i].vdev && !strcmp(cfg->disks[i].vdev, vdev) &&
            cfg->disks[i].pdev_path)
            a->config = GCSTRDUP(cfg->disks[i].pdev_path);
}

const libxl__active_disk *libxl__domain_record_active(
    libxl__gc *gc, const libxl__domain_record *d,
    const libxl_device_disk *dk, bool warn)
{
    const libxl__active_disk *a = d
        ? libxl__domain_record_disk((libxl__domain_record *)d, dk->vdev)
        : NULL;

    if (!a || !a->path) return NULL;
    if (!a->config || !dk->pdev_path || !strcmp(a->config, dk->pdev_path))
        return a;
    if (warn)
        LOG(WARN, "disk %s: the config names '%s', no longer '%s' on "
            "which the snapshots left it running ('%s'): it starts on "
            "the config's (the snapshots keep their images)", dk->vdev,
            dk->pdev_path, a->config, a->path);
    return NULL;
}

/* Is name (in a domain's record directory) one of the store's files? */
bool libxl__snapshot_store_owns(libxl__gc *gc, const libxl__snapshot_tree *t,
                                const char *name)
{
    int i;

    if (!strcmp(name, DOMAIN_RECORD) || !strcmp(name, LOCK_FILE))
        return true;
    for (i = 0; i < t->num_skipped; i++)   /* corrupt: reported so */
        if (!strcmp(name, t->skipped[i]))
            return true;
    for (i = 0; i < t->num_snaps; i++)
        if (!strcmp(name, GCSPRINTF(RECORD_PREFIX "%s" RECORD_SUFFIX,
                                    t->snaps[i].name)))
            return true;
    return false;
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
