/*
 * libxl_snapshot_backend_rbd.c - disks on Ceph RBD images
 *
 * A disk whose target is an RBD image, in QEMU's form
 * (target=rbd:POOL/IMAGE[:conf=FILE][:id=USER], served by QEMU's rbd
 * driver), is snapshotted by Ceph itself: the snapshot is an RBD
 * snapshot of the image, named after the snapshot, and the image stays
 * the disk's active image.  The record's disk is of type "rbd": file
 * the target as the config names it (host-independent: pool and image,
 * never a /dev/rbdN), tag the RBD snapshot's name.
 *
 *  - create, live: in the create's QMP transaction, as a qcow2 internal
 *    snapshot (blockdev-snapshot-internal-sync: QEMU's rbd driver makes
 *    an RBD snapshot).  QEMU drains every disk of the transaction
 *    first, so the RBD disks and the file disks of one snapshot are
 *    taken at one instant without pausing the guest's vCPUs (the
 *    guest's I/O waits while the RBD snapshots are made: measured in
 *    bench/).
 *  - create, offline: `ceph-util snap-create` per disk (no writer).
 *  - revert: `ceph-util rollback` in place, the domain stopped (a
 *    running one is stopped and started again, as for any revert).
 *    The other snapshots of the image are untouched by a rollback, so
 *    any snapshot of the tree can be reverted to, in any order.  A
 *    rollback cannot be undone: it runs after the undoable disks, and a
 *    revert that dies in it is finished by its journal (a rollback
 *    again).
 *  - delete: `ceph-util snap-remove` (unprotected first); a snapshot
 *    that clones made outside xl depend on is refused with one line
 *    naming them (this library makes no clones).
 *  - check: the snapshot is there, asked of the image once per
 *    operation (`ceph-util image-info`).
 *
 * The kernel form (backend "krbd", the same type "rbd" and the same
 * operations but for these): a phy: disk (blkback) on a block device
 * that krbd mapped, /dev/rbdN or udev's /dev/rbd/POOL/IMAGE, found by
 * its device number in sysfs (/sys/bus/rbd/devices/N/{major,minor,pool,
 * pool_ns,name,current_snap}); a mapped snapshot (read-only) or an image
 * in a namespace is refused.  The record's file is /dev/rbd/POOL/IMAGE,
 * the name any host that maps the image gives it (udev's link), never
 * /dev/rbdN: libxl__rbd_parse reads that form too, so every operation
 * below is the same for both.  No QEMU serves such a disk, so a live
 * snapshot pauses the guest while the RBD snapshots are made
 * (live_paused, as LVM's; the pause is measured and reported): the
 * disks are taken at one instant with the domain's other volume disks.
 * A rollback leaves the mapping in place (blkback has closed the device,
 * the domain being stopped): ceph-util is told the watch of this host's
 * kernel client is ours (--kernel-client, sysfs client_id); krbd keeps
 * no data cache, it reads the rolled-back objects.  The revert keeps the
 * domain's own name of the device (its /dev/rbdN).
 *
 * Every call goes through ceph-util (tools/ceph-util.c, CTX->ceph_util),
 * which uses librbd's C API: the library itself needs no Ceph library,
 * and the slow calls (rollback) run as a child of the loop, with a
 * timeout, Ctrl-C and progress.
 */
#include "libxl_snapshot_internal.h"

#define RBD_TIMEOUT_MS 120000
#define RBD_ROLLBACK_TIMEOUT_MS 3600000

#include <stdarg.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#define KRBD_DEV "/dev/rbd/"
#define KRBD_SYSFS "/sys/bus/rbd/devices"

static bool streq(const char *a, const char *b)
{
    return a && b && !strcmp(a, b);
}

static bool rbd_names_image(const char *path)
{
    return path && !strncmp(path, "rbd:", 4);
}

/*
 * QEMU's rbd filename: rbd:POOL/IMAGE[@SNAP][:KEY=VALUE]..., '\' quoting
 * the next character.  Only conf and id are passed on to ceph-util; a
 * namespace, a snapshot (a read-only disk) or another option is
 * refused, in words (*why_r, gc).
 */
int libxl__rbd_parse(libxl__gc *gc, const char *target, libxl__rbd_image *r,
                     const char **why_r)
{
    char *s, *out, *field[16];
    const char *p;
    int n = 0, i;

    memset(r, 0, sizeof(*r));
    *why_r = NULL;
    if (target && !strncmp(target, KRBD_DEV, strlen(KRBD_DEV))) {
        /* the kernel form's record: /dev/rbd/POOL/IMAGE */
        char *pool = GCSTRDUP(target + strlen(KRBD_DEV));
        char *slash = strchr(pool, '/');
        if (!slash || slash == pool || !slash[1] || strchr(slash + 1, '/')
            || strchr(slash + 1, '@')) {
            *why_r = "is not an RBD image mapped by the kernel "
                     "(/dev/rbd/POOL/IMAGE)";
            return ERROR_INVAL;
        }
        *slash = 0;
        r->pool = pool;
        r->image = slash + 1;
        return 0;
    }
    if (!rbd_names_image(target)) {
        *why_r = "is not an RBD image (rbd:POOL/IMAGE)";
        return ERROR_INVAL;
    }
    /* split on unquoted ':' */
    s = out = libxl__gc_zalloc(gc, strlen(target) + 1);
    field[n++] = out;
    for (p = target + 4; *p; p++) {
        if (*p == '\\' && p[1]) {
            *out++ = *++p;
        } else if (*p == ':') {
            *out++ = 0;
            if (n == 16) {
                *why_r = "has too many options";
                return ERROR_INVAL;
            }
            field[n++] = out;
        } else {
            *out++ = *p;
        }
    }
    *out = 0;
    (void)s;
    {
        char *slash = strchr(field[0], '/');
        if (!slash || slash == field[0] || !slash[1]) {
            *why_r = "names no pool and image (rbd:POOL/IMAGE)";
            return ERROR_INVAL;
        }
        if (strchr(slash + 1, '/')) {
            *why_r = "names an RBD namespace, which is not supported";
            return ERROR_INVAL;
        }
        if (strchr(slash + 1, '@')) {
            *why_r = "names an RBD snapshot (a read-only disk)";
            return ERROR_INVAL;
        }
        *slash = 0;
        r->pool = field[0];
        r->image = slash + 1;
    }
    for (i = 1; i < n; i++) {
        if (!strncmp(field[i], "conf=", 5) && field[i][5]) {
            r->conf = field[i] + 5;
        } else if (!strncmp(field[i], "id=", 3) && field[i][3]) {
            r->id = field[i] + 3;
        } else {
            *why_r = GCSPRINTF("has option '%s': only conf= and id= are "
                               "supported", libxl__printable(gc, field[i]));
            return ERROR_INVAL;
        }
    }
    return 0;
}

/*
 * Is a QEMU node's "file" (json:{..."driver": "rbd", "pool": P,
 * "image": I...}, the rbd node's own or its format node's "file") the
 * image of spec?
 */
static bool rbd_same_image(libxl__gc *gc, const char *node_file,
                           const char *spec)
{
    libxl__rbd_image r;
    const char *why;
    yajl_val v, f;

    if (!node_file || strncmp(node_file, "json:", 5) ||
        libxl__rbd_parse(gc, spec, &r, &why))
        return false;
    v = libxl__json_parse(gc, node_file + 5);
    if (!v) return false;
    f = libxl__json_get(v, "file");
    if (f && YAJL_IS_OBJECT(f)) v = f;
    return streq(libxl__json_get_string(v, "driver"), "rbd") &&
        streq(libxl__json_get_string(v, "pool"), r.pool) &&
        streq(libxl__json_get_string(v, "image"), r.image);
}

/* ceph-util [--conf F] [--id U] CMD [ARG...] on r's cluster (gc) */
static const char *const *rbd_args(libxl__gc *gc, const libxl__rbd_image *r,
                                   const char *cmd, ...)
{
    libxl__flexarray *a = libxl__flexarray_new(gc);
    const char *arg;
    va_list ap;

    libxl__flexarray_append(a, CTX->ceph_util);
    if (r->conf) libxl__flexarray_append_pair(a, "--conf", r->conf);
    if (r->id) libxl__flexarray_append_pair(a, "--id", r->id);
    libxl__flexarray_append(a, cmd);
    va_start(ap, cmd);
    while ((arg = va_arg(ap, const char *))) libxl__flexarray_append(a, arg);
    va_end(ap);
    return (const char *const *)a->data;
}

static const char *pool_image(libxl__gc *gc, const libxl__rbd_image *r)
{
    return GCSPRINTF("%s/%s", r->pool, r->image);
}

/* ---------------------------------------------------------------- */
/* the kernel form: krbd's mappings, in sysfs */

typedef struct {
    const char *dev;                  /* /dev/rbdN */
    const char *pool, *ns, *image;
    const char *snap;                 /* "-": the image itself */
    const char *client;               /* the client's id (N of clientN) */
    unsigned major, minor;
} krbd_map;

/* /sys/bus/rbd/devices/ID/ATTR, its first line, or NULL (gc) */
static const char *krbd_attr(libxl__gc *gc, const char *id, const char *attr)
{
    char *data, *nl;
    size_t len;

    if (libxl__read_file(gc, GCSPRINTF(KRBD_SYSFS "/%s/%s", id, attr),
                         &data, &len))
        return NULL;
    nl = strchr(data, '\n');
    if (nl) *nl = 0;
    return data;
}

static bool krbd_read(libxl__gc *gc, const char *id, krbd_map *m)
{
    const char *maj = krbd_attr(gc, id, "major");
    const char *min = krbd_attr(gc, id, "minor");
    const char *client = krbd_attr(gc, id, "client_id");

    memset(m, 0, sizeof(*m));
    m->pool = krbd_attr(gc, id, "pool");
    m->ns = krbd_attr(gc, id, "pool_ns");
    m->image = krbd_attr(gc, id, "name");
    m->snap = krbd_attr(gc, id, "current_snap");
    if (!maj || !min || !m->pool || !m->image || !m->snap) return false;
    m->major = strtoul(maj, NULL, 10);
    m->minor = strtoul(min, NULL, 10);
    m->dev = GCSPRINTF("/dev/rbd%s", id);
    /* "client4123": the watcher id librbd lists */
    m->client = client && !strncmp(client, "client", 6) ? client + 6 : NULL;
    return true;
}

/* the first mapping that match() takes, into *m */
static bool krbd_scan(libxl__gc *gc, bool (*match)(const krbd_map *m,
                                                   const void *arg),
                      const void *arg, krbd_map *m)
{
    DIR *dir = opendir(KRBD_SYSFS);
    struct dirent *e;
    bool found = false;

    if (!dir) return false;
    while (!found && (e = readdir(dir)))
        found = e->d_name[0] != '.' && krbd_read(gc, e->d_name, m) &&
                match(m, arg);
    closedir(dir);
    return found;
}

static bool krbd_match_dev(const krbd_map *m, const void *arg)
{
    const struct stat *st = arg;
    return m->major == major(st->st_rdev) && m->minor == minor(st->st_rdev);
}

/* Is path a block device krbd mapped (/dev/rbdN, /dev/rbd/POOL/IMAGE)? */
static bool krbd_of_device(libxl__gc *gc, const char *path, krbd_map *m)
{
    struct stat st;

    if (!path || stat(path, &st) || !S_ISBLK(st.st_mode)) return false;
    return krbd_scan(gc, krbd_match_dev, &st, m);
}

static bool krbd_match_image(const krbd_map *m, const void *arg)
{
    const libxl__rbd_image *r = arg;
    return !strcmp(m->pool, r->pool) && !strcmp(m->image, r->image) &&
        !strcmp(m->snap, "-") && (!m->ns || !*m->ns);
}

/* this host's mapping of pool/image itself (not of a snapshot) */
static bool krbd_mapped(libxl__gc *gc, const char *pool, const char *image,
                        krbd_map *m)
{
    libxl__rbd_image r = { .pool = pool, .image = image };
    return krbd_scan(gc, krbd_match_image, &r, m) && m->client;
}

/*
 * `ceph-util image-info` of spec: 0 and *info_r; ERROR_NOTFOUND (the
 * image is not there); else ERROR_FAIL and *why_r, the tool's line.
 */
/* ceph-util COMMAND IMAGE's JSON object (image-info, du) */
static int rbd_query(libxl__gc *gc, const char *spec, const char *command,
                     yajl_val *info_r, const char **why_r)
{
    libxl__rbd_image r;
    char *out = NULL, *err = NULL;
    int rc, status = 0;

    *info_r = NULL;
    *why_r = NULL;
    rc = libxl__rbd_parse(gc, spec, &r, why_r);
    if (rc) return rc;
    rc = libxl__exec_sync_exit(gc, rbd_args(gc, &r, command,
                                              pool_image(gc, &r), NULL),
                                 RBD_TIMEOUT_MS, &out, &err, &status);
    if (rc && status == 2) return ERROR_NOTFOUND;
    if (rc) {
        *why_r = libxl__tool_error_line(gc, err);
        return ERROR_FAIL;
    }
    *info_r = libxl__json_parse(gc, out ? out : "");
    if (!*info_r || !YAJL_IS_OBJECT(*info_r)) {
        *why_r = GCSPRINTF("ceph-util %s gave no JSON object", command);
        return ERROR_FAIL;
    }
    return 0;
}

int libxl__rbd_image_info(libxl__gc *gc, const char *spec, yajl_val *info_r,
                          const char **why_r)
{
    return rbd_query(gc, spec, "image-info", info_r, why_r);
}

int libxl__rbd_du(libxl__gc *gc, const char *spec, yajl_val *du_r,
                  const char **why_r)
{
    return rbd_query(gc, spec, "du", du_r, why_r);
}

/*
 * Does the RBD image of spec exist?  (block-copy's destination)  0: no;
 * 1: yes; <0: ERROR_*, *why_r said nothing yet.
 */
int libxl__rbd_image_exists(libxl__gc *gc, const char *spec,
                            const char **why_r)
{
    yajl_val info;
    int rc = libxl__rbd_image_info(gc, spec, &info, why_r);

    if (rc == ERROR_NOTFOUND) return 0;
    return rc ? rc : 1;
}

/* `ceph-util remove`: a block-copy's unfinished destination */
int libxl__rbd_image_remove(libxl__gc *gc, const char *spec)
{
    libxl__rbd_image r;
    const char *why;
    char *err = NULL;
    int rc, status = 0;

    rc = libxl__rbd_parse(gc, spec, &r, &why);
    if (rc) return rc;
    rc = libxl__exec_sync_exit(gc, rbd_args(gc, &r, "remove",
                                              pool_image(gc, &r), NULL),
                                 RBD_TIMEOUT_MS, NULL, &err, &status);
    if (rc && status == 2) return 0;  /* not there */
    if (rc)
        LOG(WARN, "cannot remove RBD image %s: %s", pool_image(gc, &r),
            libxl__tool_error_line(gc, err) ?: "ceph-util remove failed");
    return rc;
}

/* The snapshot named tag in image-info's output, or NULL */
static yajl_val info_snap(yajl_val info, const char *tag)
{
    yajl_val snaps = libxl__json_get(info, "snaps");
    size_t i;

    for (i = 0; tag && snaps && YAJL_IS_ARRAY(snaps) &&
                i < snaps->u.array.len; i++) {
        yajl_val s = snaps->u.array.values[i];
        if (streq(libxl__json_get_string(s, "name"), tag))
            return s;
    }
    return NULL;
}

/*
 * Is the snapshot of ds there: 0 yes, ERROR_NOTFOUND no (the image
 * lists none of that name, or is gone), else cannot tell (*why_r).
 */
static int rbd_lookup(libxl__gc *gc, const libxlsnap_disk_snapshot *ds,
                      const char **why_r)
{
    yajl_val info;
    int rc = libxl__rbd_image_info(gc, ds->file, &info, why_r);

    if (rc) return rc;
    return info_snap(info, ds->tag) ? 0 : ERROR_NOTFOUND;
}

/* ---------------------------------------------------------------- */
/* the backend */

static bool rbd_probe(libxl__gc *gc, const libxl_device_disk *dk,
                      const libxl_device_disk *config, void **priv_r)
{
    return rbd_names_image(dk->pdev_path);
}

/* the plan of both forms, ds->file set: r, its image */
static int rbd_plan_image(libxl__gc *gc, const libxl__create_plan *p,
                          const libxl__rbd_image *rp,
                          libxlsnap_disk_snapshot *ds);

static int rbd_snapshot_plan(libxl__gc *gc, const libxl__create_plan *p,
                             libxlsnap_disk_snapshot *ds)
{
    const libxl_device_disk *dk = p->dk;
    libxl__rbd_image r;
    const char *why;
    int rc;

    rc = libxl__rbd_parse(gc, dk->pdev_path, &r, &why);
    if (rc) {
        LOG(ERROR, "disk %s: '%s' %s", dk->vdev, dk->pdev_path, why);
        return rc;
    }
    rc = libxl__qemu_disk_refused(gc, p);
    if (rc) return rc;
    if (dk->format != LIBXL_DISK_FORMAT_RAW) {
        /* QEMU would take a qcow2 snapshot inside the image */
        LOG(ERROR, "disk %s: RBD image %s/%s is used as %s: RBD snapshots "
            "are of raw images (format=raw)", dk->vdev, r.pool, r.image,
            libxl_disk_format_to_string(dk->format));
        return ERROR_INVAL;
    }
    return rbd_plan_image(gc, p, &r, ds);
}

static int rbd_plan_image(libxl__gc *gc, const libxl__create_plan *p,
                          const libxl__rbd_image *rp,
                          libxlsnap_disk_snapshot *ds)
{
    libxl__rbd_image r = *rp, o;
    const char *why;
    yajl_val info;
    int rc, j;

    ds->tag = GCSTRDUP(p->s->name);
    for (j = 0; j < p->index; j++)
        if (p->s->disks[j].type == LIBXLSNAP_DISK_SNAPSHOT_TYPE_RBD &&
            !libxl__rbd_parse(gc, p->s->disks[j].file, &o, &why) &&
            !strcmp(o.pool, r.pool) && !strcmp(o.image, r.image)) {
            LOG(ERROR, "disks %s and %s are the same RBD image %s/%s",
                p->s->disks[j].vdev, ds->vdev, r.pool, r.image);
            return ERROR_INVAL;
        }
    rc = libxl__rbd_image_info(gc, ds->file, &info, &why);
    if (rc == ERROR_NOTFOUND) {
        LOG(ERROR, "disk %s: RBD image %s/%s does not exist", ds->vdev,
            r.pool, r.image);
        return ERROR_INVAL;
    }
    if (rc) {
        LOG(ERROR, "disk %s: RBD image %s/%s: %s", ds->vdev, r.pool,
            r.image, why);
        return ERROR_FAIL;
    }
    if (info_snap(info, ds->tag)) {
        LOG(ERROR, "disk %s: RBD image %s/%s already has a snapshot named "
            "'%s' (made outside xl?)", ds->vdev, r.pool, r.image, ds->tag);
        return ERROR_INVAL;
    }
    if (!p->op->d.running && rbd_names_image(p->dk->pdev_path) &&
        libxl__json_get_bool(info, "locked", false)) {
        /* a writer we do not know: not a shut-off domain's snapshot (a
         * kernel mapping keeps the lock after it wrote: not asked) */
        LOG(ERROR, "disk %s: RBD image %s/%s is open for writing elsewhere "
            "(the domain on another host, or a client killed in the last 30 "
            "s?)", ds->vdev, r.pool, r.image);
        return ERROR_INVAL;
    }
    return 0;
}

static void rbd_snapshot_cmds(libxl__gc *gc, const libxlsnap_disk_snapshot *ds,
                              void *priv, yajl_val info,
                              const char *const **cmds_r[], int *n_r)
{
    libxl__rbd_image r;
    const char *why;

    GCNEW_ARRAY(*cmds_r, 1);
    *n_r = 0;
    if (libxl__rbd_parse(gc, ds->file, &r, &why)) return;   /* planned */
    (*cmds_r)[(*n_r)++] = rbd_args(gc, &r, "snap-create", pool_image(gc, &r),
                                   ds->tag, NULL);
}

static int rbd_present(libxl__gc *gc, const libxlsnap_disk_snapshot *ds)
{
    const char *why;
    int rc = rbd_lookup(gc, ds, &why);

    if (rc && rc != ERROR_NOTFOUND)
        LOG(ERROR, "disk %s: cannot tell whether RBD snapshot %s@%s exists: "
            "%s", ds->vdev, ds->file, ds->tag, why ? why : "?");
    return rc;
}

/* the cluster not answering is no answer */
static int rbd_taken(libxl__gc *gc, const libxlsnap_disk_snapshot *ds)
{
    int rc = rbd_present(gc, ds);

    if (rc == ERROR_NOTFOUND) return 0;
    return rc ? rc : 1;
}

static const char *const *rbd_remove_args(libxl__gc *gc,
                                   const libxlsnap_disk_snapshot *ds)
{
    libxl__rbd_image r;
    const char *why;

    if (!ds->tag || libxl__rbd_parse(gc, ds->file, &r, &why)) return NULL;
    return rbd_args(gc, &r, "snap-remove", pool_image(gc, &r), ds->tag,
                    NULL);
}

/* removed if it is there (a failed create may have made none) */
static int rbd_undo(libxl__gc *gc, const libxl__snapshot_op *op,
                    const libxlsnap_disk_snapshot *ds,
                    const libxl__snapshot_tree *t, const char **why_r)
{
    const char *const *a;
    char *err = NULL;
    int rc, status = 0;

    if (!ds->tag || !ds->file) return 0;
    a = rbd_remove_args(gc, ds);
    if (!a) return ERROR_INVAL;
    rc = libxl__exec_sync_exit(gc, a, RBD_TIMEOUT_MS, NULL, &err, &status);
    if (rc && status == 2) return 0;            /* never made, or gone */
    if (rc && why_r) *why_r = libxl__tool_error_line(gc, err);
    return rc;
}

/* one image-info per image and operation */
typedef struct {
    const char **spec;
    yajl_val *info;
    const char **why;
    int n;
} rbd_cache;

static const char *rbd_check(libxl__gc *gc, void **cache,
                             const libxlsnap_disk_snapshot *ds, yajl_val unused)
{
    rbd_cache *c;
    int i, rc;

    if (!*cache) *cache = libxl__gc_zalloc(gc, sizeof(rbd_cache));
    c = *cache;
    for (i = 0; i < c->n; i++)
        if (!strcmp(c->spec[i], ds->file)) break;
    if (i == c->n) {
        GCREALLOC_ARRAY(c->spec, c->n + 1);
        GCREALLOC_ARRAY(c->info, c->n + 1);
        GCREALLOC_ARRAY(c->why, c->n + 1);
        c->spec[i] = ds->file;
        rc = libxl__rbd_image_info(gc, ds->file, &c->info[i], &c->why[i]);
        if (rc == ERROR_NOTFOUND) c->why[i] = "is missing";
        c->n++;
    }
    if (!c->info[i])
        return GCSPRINTF("RBD image '%s' %s", ds->file,
                         c->why[i] ? c->why[i] : "cannot be read");
    if (!info_snap(c->info[i], ds->tag))
        return GCSPRINTF("RBD image '%s' has no snapshot '%s'", ds->file,
                         ds->tag ? ds->tag : "");
    return NULL;
}

static bool rbd_revert_undoable(const libxlsnap_disk_snapshot *ds,
                                const libxl_device_disk *dk)
{
    return false;
}

static const char *const *rbd_rollback_args(libxl__gc *gc, const char *spec,
                                            const char *tag)
{
    libxl__rbd_image r;
    krbd_map m;
    const char *why;

    if (libxl__rbd_parse(gc, spec, &r, &why)) return NULL;
    /* the kernel form: this host's mapping stays (blkback closed it) */
    if (!rbd_names_image(spec) && krbd_mapped(gc, r.pool, r.image, &m))
        return rbd_args(gc, &r, "rollback", "-p", "--kernel-client",
                        m.client, pool_image(gc, &r), tag, NULL);
    return rbd_args(gc, &r, "rollback", "-p", pool_image(gc, &r), tag, NULL);
}

static int rbd_revert_plan(libxl__gc *gc, const libxl__revert_plan *p,
                           libxl__revert_disk *rd)
{
    const libxlsnap_disk_snapshot *ds = rd->ds;
    const char *why;
    yajl_val info;
    int rc = libxl__rbd_image_info(gc, ds->file, &info, &why);

    if (!rc && !info_snap(info, ds->tag)) rc = ERROR_NOTFOUND;
    if (rc == ERROR_NOTFOUND) {
        LOG(ERROR, "snapshot '%s': RBD image '%s' of disk %s has no "
            "snapshot '%s'", p->snapshot, ds->file, ds->vdev, ds->tag);
        return ERROR_FAIL;
    }
    if (rc) {
        LOG(ERROR, "snapshot '%s': disk %s: RBD image '%s': %s",
            p->snapshot, ds->vdev, ds->file, why ? why : "?");
        return ERROR_FAIL;
    }
    GCNEW_ARRAY(rd->cmds, 1);
    rd->cmds[0] = rbd_rollback_args(gc, ds->file, ds->tag);
    rd->num_cmds = 1;
    /* the kernel form: the domain's own name of the device (its
     * /dev/rbdN) when it has the disk on that image */
    rd->new_active = GCSTRDUP(ds->file);
    if (!rbd_names_image(ds->file) && p->dk && p->dk->pdev_path) {
        krbd_map m;
        libxl__rbd_image r;
        if (!libxl__rbd_parse(gc, ds->file, &r, &why) &&
            krbd_of_device(gc, p->dk->pdev_path, &m) &&
            !strcmp(m.pool, r.pool) && !strcmp(m.image, r.image))
            rd->new_active = GCSTRDUP(p->dk->pdev_path);
    }
    rd->new_format = ds->format;
    rd->forward_only = true;
    rd->tag_id = ds->tag;
    rd->rbd = true;
    rd->timeout_ms = RBD_ROLLBACK_TIMEOUT_MS;
    if (!p->op->d.running && rbd_names_image(ds->file) &&
        libxl__json_get_bool(info, "locked", false)) {
        /* a writer we do not know (the domain on another host?) */
        LOG(ERROR, "snapshot '%s': RBD image '%s' of disk %s is open for "
            "writing elsewhere (the domain on another host, or a "
            "client killed in the last 30 s?)", p->snapshot, ds->file, ds->vdev);
        return ERROR_INVAL;
    }
    rd->copy_size = libxl__json_get_integer(info, "size", 0);
    return 0;
}

/*
 * ceph-util checks before it rolls back: 2, the image or the snapshot
 * is gone; 3, the image is open elsewhere.  The image was not touched.
 * Anything else (killed, a failure half-way) may have rolled part of it
 * back: the journal does it again.
 */
static int rbd_revert_failed(libxl__gc *gc, const libxl__revert_disk *rd,
                             int exit_code)
{
    return exit_code == 2 || exit_code == 3 ? 0 : ERROR_FAIL;
}

/* the journal's "rbd": rolled back in place, to its "tag_id" */
static bool rbd_revert_journal_owns(yajl_val d)
{
    return libxl__json_get_bool(d, "rbd", false);
}

static int rbd_revert_redo(libxl__gc *gc, yajl_val d, const char *file,
                           libxl_disk_format fmt, const char *na,
                           libxl_disk_format *fmt_r,
                           const char *const **args_r, int *timeout_ms_r)
{
    const char *tag = libxl__json_get_string(d, "tag_id");

    if (!tag) return ERROR_INVAL;
    *fmt_r = fmt;
    *args_r = rbd_rollback_args(gc, file, tag);
    *timeout_ms_r = RBD_ROLLBACK_TIMEOUT_MS;
    return *args_r ? 0 : ERROR_INVAL;
}

/* gone only if the image says so; a failure to ask stops the delete */
static int rbd_delete_probe(libxl__gc *gc, libxl__snapshot_op *op,
                            const char *snapshot,
                            const libxlsnap_disk_snapshot *ds, yajl_val info,
                            const char **tag_id_r)
{
    const char *why;
    yajl_val inf, snap, kids;
    int rc = libxl__rbd_image_info(gc, ds->file, &inf, &why);

    snap = rc ? NULL : info_snap(inf, ds->tag);
    if (!rc && !snap) rc = ERROR_NOTFOUND;
    if (!rc) {
        /* clones made outside xl need it: refused before any disk of
         * the snapshot is touched */
        kids = libxl__json_get(snap, "children");
        if (kids && YAJL_IS_ARRAY(kids) && kids->u.array.len) {
            const char *l = NULL;
            size_t i;
            for (i = 0; i < kids->u.array.len; i++) {
                const char *c = YAJL_IS_STRING(kids->u.array.values[i])
                    ? kids->u.array.values[i]->u.string : "?";
                l = GCSPRINTF("%s%s%s", l ? l : "", l ? ", " : "", c);
            }
            LOG(ERROR, "disk %s: RBD snapshot %s@%s has clones (%s): "
                "flatten or remove them first; nothing was changed",
                ds->vdev, ds->file, ds->tag, l);
            return ERROR_INVAL;
        }
        if (libxl__json_get_bool(snap, "protected", false))
            LOG(WARN, "disk %s: RBD snapshot %s@%s is protected (by hand: "
                "xl makes no clones); it is unprotected to be removed",
                ds->vdev, ds->file, ds->tag);
        return 1;
    }
    if (rc == ERROR_NOTFOUND) {
        LOG(WARN, "disk %s: RBD snapshot %s@%s is gone already", ds->vdev,
            ds->file, ds->tag);
        return 0;
    }
    LOG(ERROR, "disk %s: RBD image '%s': %s; nothing was changed",
        ds->vdev, ds->file, why ? why : "?");
    return rc;
}

static const char *rbd_image_problem(libxl__gc *gc, const char *spec,
                                     const char ***tags_r, int *n_r)
{
    yajl_val info, snaps;
    const char *why;
    int rc = libxl__rbd_image_info(gc, spec, &info, &why);
    size_t i;

    if (rc == ERROR_NOTFOUND) return "does not exist";
    if (rc) return why ? why : "cannot be read";
    snaps = libxl__json_get(info, "snaps");
    if (!tags_r || !snaps || !YAJL_IS_ARRAY(snaps)) return NULL;
    GCNEW_ARRAY(*tags_r, snaps->u.array.len + 1);
    for (i = 0; i < snaps->u.array.len; i++) {
        const char *n = libxl__json_get_string(snaps->u.array.values[i],
                                               "name");
        if (n) (*tags_r)[(*n_r)++] = n;
    }
    return NULL;
}

static const char *rbd_redefine_missing(libxl__gc *gc, void **cache,
                                        const libxlsnap_disk_snapshot *ds)
{
    const char *why;
    int rc = rbd_lookup(gc, ds, &why);

    if (rc == ERROR_NOTFOUND)
        return GCSPRINTF("RBD image '%s' has no snapshot '%s'", ds->file,
                         ds->tag ? ds->tag : "");
    return rc ? why : NULL;
}

/* its snapshot in the image */
static int rbd_parts(libxl__gc *gc, const libxlsnap_disk_snapshot *ds,
                     libxl__snapshot_part parts[2])
{
    if (!ds->tag || !ds->file) return 0;
    parts[0].kind = LIBXL__PART_TAG;
    parts[0].path = ds->file;
    parts[0].tag = ds->tag;
    return 1;
}

/* ---------------------------------------------------------------- */
/* the kernel form */

static bool krbd_probe(libxl__gc *gc, const libxl_device_disk *dk,
                       const libxl_device_disk *config, void **priv_r)
{
    krbd_map *m;

    GCNEW(m);
    if (!krbd_of_device(gc, dk->pdev_path, m)) return false;
    *priv_r = m;
    return true;
}

static int krbd_snapshot_plan(libxl__gc *gc, const libxl__create_plan *p,
                              libxlsnap_disk_snapshot *ds)
{
    const libxl_device_disk *dk = p->dk;
    const krbd_map *m = p->priv[p->index];
    libxl__rbd_image r = { 0 };

    if (strcmp(m->snap, "-")) {
        LOG(ERROR, "disk %s: '%s' is RBD snapshot %s/%s@%s mapped by the "
            "kernel (read-only): it cannot be snapshotted", dk->vdev,
            dk->pdev_path, m->pool, m->image, m->snap);
        return ERROR_INVAL;
    }
    if (m->ns && *m->ns) {
        LOG(ERROR, "disk %s: '%s' is RBD image %s/%s/%s, in a namespace, "
            "which is not supported", dk->vdev, dk->pdev_path, m->pool,
            m->ns, m->image);
        return ERROR_INVAL;
    }
    if (strchr(m->pool, '/') || strchr(m->image, '/')) {
        LOG(ERROR, "disk %s: RBD image '%s/%s' has a '/' in its names",
            dk->vdev, m->pool, m->image);
        return ERROR_INVAL;
    }
    /* host-independent: udev's name of the image, never /dev/rbdN */
    ds->file = GCSPRINTF(KRBD_DEV "%s/%s", m->pool, m->image);
    r.pool = m->pool;
    r.image = m->image;
    return rbd_plan_image(gc, p, &r, ds);
}

/* the kernel form's name of an image in records: no file on a host
 * without udev's link, or that has not mapped it; asked of the cluster */
static bool krbd_names_image(const char *path)
{
    return path && !strncmp(path, KRBD_DEV, strlen(KRBD_DEV));
}

/* of the two forms' records, a kernel one is /dev/rbd/POOL/IMAGE */
static bool rbd_owns_file(const char *file)
{
    return rbd_names_image(file);
}

/* what the two forms share */
#define RBD_COMMON_OPS                                      \
    .type = LIBXLSNAP_DISK_SNAPSHOT_TYPE_RBD,               \
    .must_probe = true,                                     \
    .snapshot_cmds = rbd_snapshot_cmds,                     \
    .taken = rbd_taken,                                     \
    .present = rbd_present,                                 \
    .undo = rbd_undo,                                       \
    .drop = rbd_undo,                                       \
    .check = rbd_check,                                     \
    .volume = true,                                         \
    .in_image = true,                                       \
    .revert_undoable = rbd_revert_undoable,                 \
    .revert_plan = rbd_revert_plan,                         \
    .revert_failed = rbd_revert_failed,                     \
    .revert_journal_owns = rbd_revert_journal_owns,         \
    .revert_redo = rbd_revert_redo,                         \
    .image_problem = rbd_image_problem,                     \
    .same_image = rbd_same_image,                           \
    .xml_type = "rbd",                                      \
    .xml_parse = libxl__tag_xml_parse,                      \
    .redefine_missing = rbd_redefine_missing,               \
    .delete_probe = rbd_delete_probe,                       \
    .delete_args = rbd_remove_args,                         \
    .parts = rbd_parts

const libxl__snapshot_backend libxl__snapshot_backend_rbd = {
    RBD_COMMON_OPS,
    .name = "rbd",
    .probe = rbd_probe,
    .owns_file = rbd_owns_file,
    .refusal = "is not an RBD image (rbd:POOL/IMAGE)",
    .snapshot_plan = rbd_snapshot_plan,
    .live_actions = libxl__internal_live_actions,
    .live_refused = libxl__internal_live_refused,
    .names_image = rbd_names_image,
};

/*
 * The kernel form: the same operations but for the probe, the plan (no
 * QEMU serves it) and a live create (the guest paused while the
 * snapshot commands run, as for LVM, instead of QEMU's transaction).
 */
const libxl__snapshot_backend libxl__snapshot_backend_krbd = {
    RBD_COMMON_OPS,
    .name = "krbd",
    .probe = krbd_probe,
    .refusal = "is not an RBD image (rbd:POOL/IMAGE, or a block device "
               "krbd mapped: /dev/rbdN, /dev/rbd/POOL/IMAGE)",
    .snapshot_plan = krbd_snapshot_plan,
    .live_paused = true,
    .names_image = krbd_names_image,
};

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
