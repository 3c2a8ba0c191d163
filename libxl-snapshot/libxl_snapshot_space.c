/*
 * libxl_snapshot_space.c - will a snapshot fit?  The space guards of
 * snapshot-create
 *
 * A snapshot that cannot fit must be refused before the guest notices
 * anything: so once snapshot-create has planned (libxl_snapshot_
 * create.c, under the domain lock, before its journal, any pause, any
 * QMP command that changes state, any file), what it will write is
 * costed here, part by part, and added up per file system, known by
 * the st_dev of the directory a new file goes in (or of an image
 * written in place):
 *
 *  - a memory image: the domain's RAM (the driver's ->memory_bytes:
 *    QEMU's query-memory-size-summary, Xen's libxl_domain_info) plus
 *    the format's overhead, MEMORY_OVERHEAD: 1/256 of it for the
 *    stream's page headers and 4 MiB for device state;
 *  - an external overlay: its qcow2 metadata (header, L1 table,
 *    refcount table and block; from the disk's virtual size and the
 *    cluster size, 64 KiB, as QEMU makes it) plus the reserve of first
 *    writes (libxl__space_first_writes) with the L2 tables they need;
 *    a VHD child: its footer, header and BAT;
 *  - an internal qcow2 snapshot: the copy of the image's L1 table, the
 *    snapshot table written anew, refcount growth, and the reserve
 *    (the first writes after it copy clusters the snapshot shares);
 *  - the state dir (directory store only; RADOS is no local file
 *    system): the journal, the new record and the records rewritten
 *    (their sizes now, each in whole blocks) plus STATE_RESERVE;
 *  - LVM (the backend's ->space): a thin pool at or over the threshold
 *    (data or metadata), a thick COW larger than the VG's free space,
 *    or a VG whose use would go over the threshold with it.
 * The threshold (percent) is the setting space_threshold (libxl__
 * snapshot_setting: XL_SNAPSHOT_SPACE_THRESHOLD, the domain's config,
 * xl-snapshot.conf, Config.mk's SNAPSHOT_SPACE_THRESHOLD, 90).
 *
 * What is free is statvfs's f_bavail (what an unprivileged writer may
 * use; one that gives no size at all, ramfs, is not judged): a file system where the parts need more is named (its mount
 * point and device, from /proc/self/mountinfo) with the figures, in one
 * error line for all of them, and the snapshot is refused with
 * ERROR_FAIL.  LIBXLSNAP_CREATE_FORCE: one warning line saying what
 * was overridden, and the snapshot goes on (and fails or succeeds on
 * its own: a failure leaves the domain wholly old).  A dry run says
 * the figures, one notice line per file system.
 */
#include "libxl_snapshot_internal.h"

#include <inttypes.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>

#define KiB 1024ULL
#define MiB (1024ULL * KiB)
#define GiB (1024ULL * MiB)

/* the memory stream beyond the RAM: page headers, device state */
#define MEMORY_OVERHEAD(ram) ((ram) / 256 + 4 * MiB)
/* the state dir beyond the records' own sizes */
#define STATE_RESERVE (64 * KiB)
/* QEMU's (and qemu-img's) default qcow2 cluster */
#define QCOW2_CLUSTER (64 * KiB)

struct libxl__space_plan {
    struct libxl__space_fs {
        dev_t dev;
        const char *path;             /* where statvfs asks */
        uint64_t need;
        const char *what;             /* "overlay of xvda 1.2 MiB, ..." */
    } *fs;
    int num_fs;
    struct libxl__space_key {
        const char *key;              /* the backend's: "vg:NAME" */
        uint64_t total;               /* libxl__space_tally */
        const char *refusal;          /* libxl__space_refuse, or NULL */
    } *keys;
    int num_keys;
    long threshold;
};

/* ---------------------------------------------------------------- */
/* figures */

const char *libxl__bytes_human(libxl__gc *gc, uint64_t b)
{
    static const char *const units[] = { "KiB", "MiB", "GiB", "TiB",
                                         "PiB" };
    double v = b;
    int u = -1;

    if (b < KiB) return GCSPRINTF("%"PRIu64" B", b);
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    return GCSPRINTF("%.1f %s", v, units[u]);
}

uint64_t libxl__space_first_writes(uint64_t vsize)
{
    uint64_t r = vsize / 100;

    if (r < MiB) r = MiB;
    if (r > GiB) r = GiB;
    return r < vsize ? r : vsize;
}

static uint64_t round_up(uint64_t v, uint64_t unit)
{
    return (v + unit - 1) / unit * unit;
}

/* L2 tables (of cluster c) that data bytes of guest writes need */
static uint64_t qcow2_l2_for(uint64_t data, uint64_t c)
{
    uint64_t per_l2 = c * (c / 8);    /* what one L2 table maps */
    return (data / per_l2 + 1) * c;
}

/* a new qcow2 image of virtual size vsize: its metadata */
static uint64_t qcow2_new_metadata(uint64_t vsize, uint64_t c)
{
    uint64_t per_l2 = c * (c / 8);
    uint64_t l1 = round_up((vsize + per_l2 - 1) / per_l2 * 8, c);

    if (!l1) l1 = c;
    /* header, L1, refcount table, one refcount block */
    return c + l1 + c + c;
}

/* ---------------------------------------------------------------- */
/* the plan */

/* The device of the file system path is on (a file not there yet: its
 * directory's); false when neither can be asked */
static bool path_dev(const char *path, char *buf, size_t len, dev_t *dev_r,
                     const char **where_r)
{
    struct stat sb;
    char *slash;

    if (!stat(path, &sb)) {
        *dev_r = sb.st_dev;
        *where_r = path;
        return true;
    }
    snprintf(buf, len, "%s", path);
    slash = strrchr(buf, '/');
    if (!slash) return false;
    if (slash == buf) slash[1] = 0;
    else *slash = 0;
    if (stat(buf, &sb)) return false;
    *dev_r = sb.st_dev;
    *where_r = buf;
    return true;
}

void libxl__space_add(libxl__gc *gc, libxl__space_plan *sp, const char *path,
                      uint64_t bytes, const char *what)
{
    char buf[4096];
    const char *where;
    dev_t dev;
    int i;

    /* a path that is not there: its own step says so, in its words */
    if (!path || !path_dev(path, buf, sizeof(buf), &dev, &where)) return;
    what = GCSPRINTF("%s %s", what, libxl__bytes_human(gc, bytes));
    for (i = 0; i < sp->num_fs; i++)
        if (sp->fs[i].dev == dev) {
            sp->fs[i].need += bytes;
            sp->fs[i].what = GCSPRINTF("%s, %s", sp->fs[i].what, what);
            return;
        }
    GCREALLOC_ARRAY(sp->fs, sp->num_fs + 1);
    sp->fs[i].dev = dev;
    sp->fs[i].path = GCSTRDUP(where);
    sp->fs[i].need = bytes;
    sp->fs[i].what = what;
    sp->num_fs++;
}

static struct libxl__space_key *space_key(libxl__gc *gc,
                                          libxl__space_plan *sp,
                                          const char *key)
{
    int i;

    for (i = 0; i < sp->num_keys; i++)
        if (!strcmp(sp->keys[i].key, key)) return &sp->keys[i];
    GCREALLOC_ARRAY(sp->keys, sp->num_keys + 1);
    memset(&sp->keys[i], 0, sizeof(sp->keys[i]));
    sp->keys[i].key = GCSTRDUP(key);
    sp->num_keys++;
    return &sp->keys[i];
}

uint64_t libxl__space_tally(libxl__gc *gc, libxl__space_plan *sp,
                            const char *key, uint64_t bytes)
{
    struct libxl__space_key *k = space_key(gc, sp, key);

    k->total += bytes;
    return k->total;
}

void libxl__space_refuse(libxl__gc *gc, libxl__space_plan *sp,
                         const char *key, const char *why)
{
    space_key(gc, sp, key)->refusal = why;
}

long libxl__space_threshold(const libxl__space_plan *sp)
{
    return sp->threshold;
}

/*
 * The mount point and the device of the file system dev is (from
 * /proc/self/mountinfo: "ID PARENT MAJ:MIN ROOT MOUNTPOINT ... - TYPE
 * SOURCE ..."), as "/mnt (tmpfs)" or "/ (/dev/sda1)"; else path.
 */
static const char *fs_name(libxl__gc *gc, dev_t dev, const char *path)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[4096], mnt[4096], src[1024];
    const char *found = NULL;
    unsigned ma, mi;

    if (!f) return path;
    while (fgets(line, sizeof(line), f)) {
        char *dash = strstr(line, " - ");
        if (sscanf(line, "%*s %*s %u:%u %*s %4095s", &ma, &mi, mnt) != 3 ||
            !dash || makedev(ma, mi) != dev)
            continue;
        if (sscanf(dash + 3, "%*s %1023s", src) != 1) snprintf(src, sizeof(src), "?");
        /* the last mount of that device is the one on top */
        found = GCSPRINTF("%s (%s)", mnt, src);
    }
    fclose(f);
    return found ? found : path;
}

/*
 * The state dir's part: the journal and the new record (about the
 * size of the current snapshot's record, at least 4 KiB), the domain
 * record and the current snapshot's rewritten (atomically: a new copy
 * beside the old), each in whole blocks, plus STATE_RESERVE.
 */
static void state_dir_need(libxl__gc *gc, libxl__snapshot_op *op,
                           const libxlsnap_domain_snapshot *s,
                           libxl__space_plan *sp)
{
    struct stat sb;
    struct statvfs vfs;
    uint64_t blk = 4 * KiB, rec, dom = 0, need;

    if (!libxl__snapshot_store_is_dir(gc)) return;  /* RADOS: a cluster's */
    if (!statvfs(op->st.dir, &vfs) && vfs.f_frsize > blk) blk = vfs.f_frsize;
    rec = 4 * KiB + (uint64_t)s->num_disks * 1 * KiB;
    if (op->tree.dom.current &&
        !stat(GCSPRINTF("%s/snapshotdata-%s.libxl-json", op->st.dir,
                        op->tree.dom.current), &sb) &&
        (uint64_t)sb.st_size > rec)
        rec = sb.st_size;
    if (!stat(GCSPRINTF("%s/domain.libxl-json", op->st.dir), &sb))
        dom = sb.st_size;
    need = 3 * round_up(rec, blk) + round_up(dom, blk) + STATE_RESERVE;
    libxl__space_add(gc, sp, op->st.dir, need, "records and journal");
}

/* The memory image's part: the domain's RAM and the stream's overhead */
static int memory_need(libxl__gc *gc, libxl__snapshot_op *op,
                       const libxlsnap_domain_snapshot *s,
                       libxl__space_plan *sp)
{
    uint64_t ram = 0;

    if (CTX->driver->memory_bytes &&
        CTX->driver->memory_bytes(gc, &op->d, &ram))
        ram = 0;
    if (!ram && op->cfg.memory_mb > 0) ram = (uint64_t)op->cfg.memory_mb * MiB;
    if (!ram) {
        LOG(WARN, "domain %s: the size of its memory is unknown: the "
            "memory image is not checked for space", op->d.name);
        return 0;
    }
    libxl__space_add(gc, sp, s->memory, ram + MEMORY_OVERHEAD(ram),
                     "memory image");
    return 0;
}

static const char *join(libxl__gc *gc, const char **l, int n)
{
    const char *r = "";
    int i;

    for (i = 0; i < n; i++) r = GCSPRINTF("%s%s%s", r, i ? "; " : "", l[i]);
    return r;
}

libxl__space_plan *libxl__space_plan_new(libxl__gc *gc, long threshold)
{
    libxl__space_plan *sp;

    GCNEW(sp);
    sp->threshold = threshold;
    return sp;
}

int libxl__space_verdict(libxl__gc *gc, libxl__space_plan *sp,
                         const char *name, bool force, bool dry_run)
{
    const char **short_l;
    int i, n_short = 0;

    GCNEW_ARRAY(short_l, sp->num_fs + sp->num_keys + 1);
    for (i = 0; i < sp->num_keys; i++)
        if (sp->keys[i].refusal) short_l[n_short++] = sp->keys[i].refusal;
    for (i = 0; i < sp->num_fs; i++) {
        struct libxl__space_fs *f = &sp->fs[i];
        struct statvfs vfs;
        uint64_t avail;
        const char *fs;

        if (statvfs(f->path, &vfs)) {
            LOGE(WARN, "cannot ask the file system of '%s' for its free "
                 "space", f->path);
            continue;
        }
        /* a file system that says no size (ramfs) cannot be judged */
        if (!vfs.f_blocks) continue;
        avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
        fs = fs_name(gc, f->dev, f->path);
        if (dry_run)
            LOG(NOTICE, "space on %s: snapshot '%s' needs %s (%s), %s free",
                fs, name, libxl__bytes_human(gc, f->need), f->what,
                libxl__bytes_human(gc, avail));
        if (f->need > avail)
            short_l[n_short++] = GCSPRINTF("%s needs %s (%s), %s free", fs,
                libxl__bytes_human(gc, f->need), f->what,
                libxl__bytes_human(gc, avail));
    }
    if (!n_short) return 0;
    if (force) {
        LOG(WARN, "--force: snapshot '%s' goes on without enough space: %s",
            name, join(gc, short_l, n_short));
        return 0;
    }
    LOG(ERROR, "not enough space for snapshot '%s': %s (--force to take it "
        "anyway)", name, join(gc, short_l, n_short));
    return ERROR_FAIL;
}

int libxl__snapshot_space_check(libxl__gc *gc, libxl__snapshot_op *op,
                                const libxlsnap_domain_snapshot *s,
                                void *const *priv,
                                const libxl__image_chain *chains,
                                bool force, bool dry_run)
{
    libxl__space_plan *sp;
    long threshold;
    int i, rc;

    rc = libxl__snapshot_setting(gc, &op->cfg, "space_threshold",
                                 LIBXL_SNAPSHOT_SPACE_THRESHOLD, 1, 100,
                                 &threshold);
    if (rc) return rc;
    sp = libxl__space_plan_new(gc, threshold);
    if (s->memory) memory_need(gc, op, s, sp);
    for (i = 0; i < s->num_disks; i++) {
        const libxl__snapshot_backend *be =
            libxl__snapshot_backend_of(&s->disks[i]);
        const libxl__image_chain *c = &chains[i];

        if (!be || !be->space) continue;
        if (!c->known && (be->space == libxl__overlay_space ||
                          be->space == libxl__internal_space)) {
            LOG(WARN, "disk %s: cannot size '%s' (%s): its snapshot is not "
                "checked for space", s->disks[i].vdev, s->disks[i].file,
                c->why ? c->why : "?");
            continue;
        }
        be->space(gc, &s->disks[i], priv[i], c, sp);
    }
    state_dir_need(gc, op, s, sp);
    return libxl__space_verdict(gc, sp, s->name, force, dry_run);
}

/* ---------------------------------------------------------------- */
/* the backends' parts */

void libxl__overlay_space(libxl__gc *gc, const libxlsnap_disk_snapshot *ds,
                          void *priv, const libxl__image_chain *ch,
                          libxl__space_plan *sp)
{
    uint64_t vsize = ch->virtual_size, res, meta;

    res = libxl__space_first_writes(vsize);
    if (ds->format == LIBXL_DISK_FORMAT_VHD) {
        /* footer copy, header, BAT (4 bytes a 2 MiB block), footer */
        meta = 512 + 1024 + round_up((vsize / (2 * MiB) + 1) * 4, 512) + 512;
    } else {
        meta = qcow2_new_metadata(vsize, QCOW2_CLUSTER) +
            qcow2_l2_for(res, QCOW2_CLUSTER);
    }
    libxl__space_add(gc, sp, ds->overlay, meta + res,
                     GCSPRINTF("overlay of %s", ds->vdev));
}

void libxl__internal_space(libxl__gc *gc, const libxlsnap_disk_snapshot *ds,
                           void *priv, const libxl__image_chain *ch,
                           libxl__space_plan *sp)
{
    uint64_t vsize = ch->virtual_size, c = ch->cluster_size;
    uint64_t per_l2, l1, table, res;
    size_t n = ch->num_snaps;

    if (c < 512) c = QCOW2_CLUSTER;
    per_l2 = c * (c / 8);
    l1 = round_up((vsize + per_l2 - 1) / per_l2 * 8, c);
    /* the snapshot table written anew: an entry of at most ~1 KiB each */
    table = round_up((n + 1) * KiB, c);
    res = libxl__space_first_writes(vsize);
    /* + refcount growth: a block and a table copy */
    libxl__space_add(gc, sp, ds->file,
                     l1 + table + 2 * c + res + qcow2_l2_for(res, c),
                     GCSPRINTF("internal snapshot of %s", ds->vdev));
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
