/*
 * libxl_snapshot_backend_lvm.c - disks on LVM logical volumes
 *
 * A disk whose image is a logical volume (a block device that `lvs`
 * knows) is snapshotted by LVM, not by QEMU: the snapshot is an LV of
 * its own beside the origin, which stays the disk's active image.  The
 * record's disk is of type "lvm": file is the origin's path, tag the
 * snapshot LV's name (in the origin's volume group).
 *
 *  - thick (classic) origin: `lvcreate -s -L SIZE -n NAME VG/LV`, the
 *    copy-on-write space SIZE from --diskspec cow=SIZE, 20% of the
 *    origin by default (`-l 20%ORIGIN`).  A thick snapshot whose COW
 *    space filled up is invalid (lv_attr state 'I'): it is reported by
 *    snapshot-list and snapshot-check and never reverted to.  LVM has
 *    no snapshots of thick snapshots: a disk on one is refused.
 *  - thin origin: `lvcreate -s -n NAME VG/LV`, no size (the pool
 *    holds it); snapshots of thin snapshots work.
 *  - revert, thick: `lvconvert --merge` of the snapshot into the
 *    origin, which consumes the snapshot LV; it is then made again,
 *    from the origin just reverted, with the same name and size, so
 *    that the snapshot stays in the tree and can be reverted to again.
 *  - revert, thin: the origin is replaced by a thin snapshot of the
 *    snapshot volume, under the origin's name (lvrename, lvcreate -s,
 *    lvremove of the old one).  A thin merge would do the same data-wise
 *    but takes their origin from the other snapshots of the volume, so
 *    that none of them could be reverted to afterwards.
 *  - delete: `lvremove` of the snapshot LV.
 *
 * Every command runs through libxl_snapshot_exec.c (argv, no shell),
 * with a timeout; its exit code and stderr are reported.  The lvm
 * binary is CTX->lvm (Config.mk LVM, or $XL_SNAPSHOT_LVM).
 */
#include "libxl_snapshot_internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <inttypes.h>
#include <sys/stat.h>

#define LVM_TIMEOUT_MS 120000
#define LVM_MERGE_TIMEOUT_MS 600000

/* One line of lvs (the fields of LVS_FIELDS) into *v; false if short. */
#define LVS_FIELDS "vg_name,lv_name,lv_attr,lv_size,origin,pool_lv,snap_percent"
static bool lvs_line(libxl__gc *gc, char *line, libxl__lvm_volume *v)
{
    char *f[7], *save = NULL;
    int i;

    memset(v, 0, sizeof(*v));
    for (i = 0; i < 7; i++) {
        f[i] = strtok_r(i ? NULL : line, "|", &save);
        if (!f[i] && i < 4) return false;
        if (f[i]) {
            char *e;
            while (*f[i] == ' ' || *f[i] == '\t') f[i]++;
            e = f[i] + strlen(f[i]);
            while (e > f[i] && (e[-1] == ' ' || e[-1] == '\r')) *--e = 0;
        }
    }
    v->vg = GCSTRDUP(f[0]);
    v->lv = GCSTRDUP(f[1]);
    v->path = GCSPRINTF("/dev/%s/%s", f[0], f[1]);
    snprintf(v->attr, sizeof(v->attr), "%s", f[2]);
    v->size = strtoull(f[3], NULL, 10);
    v->origin = f[4] && *f[4] ? GCSTRDUP(f[4]) : NULL;
    v->pool = f[5] && *f[5] ? GCSTRDUP(f[5]) : NULL;
    v->snap_percent = f[6] && *f[6] ? strtod(f[6], NULL) : 0;
    v->thin = v->attr[0] == 'V';
    v->thick_snapshot = v->attr[0] == 's' || v->attr[0] == 'S';
    /* state (5th attribute) I: invalid snapshot; S: suspended invalid */
    v->invalid = strlen(v->attr) > 4 &&
        (v->attr[4] == 'I' || v->attr[4] == 'S');
    return true;
}

/*
 * lvs of `which` (a device, VG/LV or VG): every volume it lists, in gc.
 * ERROR_NOTFOUND (quiet) when lvs knows none.
 */
static int lvs_run(libxl__gc *gc, const char *which, libxl__lvm_volume **vols_r,
                   int *n_r)
{
    const char *args[] = { CTX->lvm, "lvs", "--noheadings", "--nosuffix",
        "--units", "b", "--separator", "|", "-o", LVS_FIELDS, which, NULL };
    char *out = NULL, *err = NULL, *line, *save = NULL;
    int rc;

    *vols_r = NULL;
    *n_r = 0;
    rc = libxl__exec_sync(gc, args, LVM_TIMEOUT_MS, &out, &err);
    if (rc || !out) return ERROR_NOTFOUND;
    for (line = strtok_r(out, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        GCREALLOC_ARRAY(*vols_r, *n_r + 1);
        if (lvs_line(gc, line, &(*vols_r)[*n_r])) (*n_r)++;
    }
    return *n_r ? 0 : ERROR_NOTFOUND;
}

static int lvs_query(libxl__gc *gc, const char *which, libxl__lvm_volume *v)
{
    libxl__lvm_volume *l;
    int n, rc;

    memset(v, 0, sizeof(*v));
    rc = lvs_run(gc, which, &l, &n);
    if (rc) return rc;
    *v = l[0];
    return 0;
}

int libxl__lvm_probe(libxl__gc *gc, const char *path, libxl__lvm_volume *v)
{
    struct stat sb;

    memset(v, 0, sizeof(*v));
    if (!path || stat(path, &sb) || !S_ISBLK(sb.st_mode))
        return ERROR_NOTFOUND;
    return lvs_query(gc, path, v);
}

/* An LV beside origin, active or not (thin snapshots are not). */
int libxl__lvm_probe_lv(libxl__gc *gc, const libxl__lvm_volume *origin,
                        const char *lv, libxl__lvm_volume *v)
{
    return lvs_query(gc, GCSPRINTF("%s/%s", origin->vg, lv), v);
}

/* The snapshot LV's name: <lv>-<snapshot>, other characters as '_'. */
const char *libxl__lvm_snapshot_lv(libxl__gc *gc, const char *lv,
                                   const char *snapshot)
{
    char *n = GCSPRINTF("%s-%s", lv, snapshot), *p;

    for (p = n; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '+' || *p == '_' || *p == '.' ||
              *p == '-'))
            *p = '_';
    if (strlen(n) > 120) n[120] = 0;
    return n;
}

static const char *vg_lv(libxl__gc *gc, const char *vg, const char *lv)
{
    return GCSPRINTF("%s/%s", vg, lv);
}

/* Appends argv to the command list (*cmds_r, *n). */
static void add(libxl__gc *gc, const char *const **cmds_r[], int *n,
                const char **argv)
{
    GCREALLOC_ARRAY(*cmds_r, *n + 1);
    (*cmds_r)[(*n)++] = argv;
}

/* Appends `lvm ARGS...` (NULL-terminated) to the command list. */
static void add_lvm(libxl__gc *gc, const char *const **cmds_r[], int *n,
                    ...)
{
    const char **a, *arg;
    va_list ap;
    int k = 1;

    GCNEW_ARRAY(a, 8);
    a[0] = CTX->lvm;
    va_start(ap, n);
    while ((arg = va_arg(ap, const char *)) && k < 7) a[k++] = arg;
    va_end(ap);
    add(gc, cmds_r, n, a);
}

/*
 * cow: NULL for the default, a size with an LVM unit ("512M"), a plain
 * number of bytes, or "N%" of the origin.  Ignored for a thin origin.
 */
void libxl__lvm_create_cmds(libxl__gc *gc, const libxl__lvm_volume *origin,
                            const char *snap_lv, const char *cow,
                            const char *const **cmds_r[], int *n)
{
    const char **a;
    int k = 0;

    GCNEW_ARRAY(a, 12);
    a[k++] = CTX->lvm; a[k++] = "lvcreate"; a[k++] = "-y"; a[k++] = "-s";
    if (!origin->thin) {
        if (!cow || !*cow) {
            a[k++] = "-l"; a[k++] = "20%ORIGIN";
        } else if (cow[strlen(cow) - 1] == '%') {
            a[k++] = "-l"; a[k++] = GCSPRINTF("%sORIGIN", cow);
        } else {
            a[k++] = "-L";
            a[k++] = isdigit((unsigned char)cow[strlen(cow) - 1])
                ? GCSPRINTF("%sb", cow) : cow;
        }
    }
    a[k++] = "-n"; a[k++] = snap_lv;
    a[k++] = vg_lv(gc, origin->vg, origin->lv);
    add(gc, cmds_r, n, a);
}

void libxl__lvm_remove_cmds(libxl__gc *gc, const libxl__lvm_volume *origin,
                            const char *snap_lv,
                            const char *const **cmds_r[], int *n)
{
    add_lvm(gc, cmds_r, n, "lvremove", "-y", vg_lv(gc, origin->vg, snap_lv),
            NULL);
}

/* The origin's name while a thin revert replaces it. */
static const char *reverting_lv(libxl__gc *gc, const char *lv)
{
    return GCSPRINTF("%s.reverting", lv);
}

/*
 * A thin revert, from step `from` on: the origin renamed away (0), a
 * thin snapshot of the snapshot made under the origin's name (1),
 * activated like any volume (2, 3), the old origin removed (4).  The
 * snapshot volume itself is not touched, nor are the other snapshots
 * (a thin merge would take their origin from them).
 */
static void thin_revert_cmds(libxl__gc *gc, const char *vg, const char *lv,
                             const char *snap_lv, int from,
                             const char *const **cmds_r[], int *n)
{
    const char *ovl = vg_lv(gc, vg, lv), *old = reverting_lv(gc, lv);

    if (from <= 0) add_lvm(gc, cmds_r, n, "lvrename", vg, lv, old, NULL);
    if (from <= 1)
        add_lvm(gc, cmds_r, n, "lvcreate", "-y", "-s", "-n", lv,
                vg_lv(gc, vg, snap_lv), NULL);
    add_lvm(gc, cmds_r, n, "lvchange", "-kn", ovl, NULL);
    add_lvm(gc, cmds_r, n, "lvchange", "-ay", ovl, NULL);
    add_lvm(gc, cmds_r, n, "lvremove", "-y", vg_lv(gc, vg, old), NULL);
}

void libxl__lvm_revert_cmds(libxl__gc *gc, const libxl__lvm_volume *origin,
                            const libxl__lvm_volume *snap,
                            const char *const **cmds_r[], int *n)
{
    if (origin->thin) {
        thin_revert_cmds(gc, origin->vg, origin->lv, snap->lv, 0, cmds_r, n);
        return;
    }
    add_lvm(gc, cmds_r, n, "lvconvert", "-y", "--merge",
            vg_lv(gc, origin->vg, snap->lv), NULL);
    /* the merge consumed the snapshot: the same one again, kept */
    libxl__lvm_create_cmds(gc, origin, snap->lv,
                           GCSPRINTF("%"PRIu64, snap->size), cmds_r, n);
}

/*
 * An LVM disk of a revert that died half-way, the domain stopped: done
 * again from where the volumes say it was.  Thick: the merge again if
 * the snapshot volume is there (one of the reverted origin merges to no
 * change), then the snapshot volume again if the merge consumed it.
 * Thin: on from the step the volumes show (the origin renamed away, or
 * already replaced), else the whole revert again.
 */
int libxl__lvm_revert_redo(libxl__gc *gc, const char *file, const char *tag,
                           uint64_t size)
{
    libxl__lvm_volume origin, cur, snap, old;
    const char *const **l = NULL;
    char *vg, *lv, *p;
    bool have_origin;
    int n = 0, k, rc;

    /* /dev/VG/LV: the origin may be renamed away */
    vg = GCSTRDUP(file);
    p = strrchr(vg, '/');
    if (!p || p == vg) return ERROR_INVAL;
    *p = 0;
    lv = p + 1;
    p = strrchr(vg, '/');
    if (!p) return ERROR_INVAL;
    vg = p + 1;
    memset(&origin, 0, sizeof(origin));
    origin.vg = vg;
    origin.lv = lv;
    have_origin = !libxl__lvm_probe_lv(gc, &origin, lv, &cur);
    if (have_origin) origin = cur;
    if (!libxl__lvm_probe_lv(gc, &origin, reverting_lv(gc, lv), &old)) {
        thin_revert_cmds(gc, vg, lv, tag, have_origin ? 2 : 1, &l, &n);
    } else if (!have_origin) {
        return ERROR_NOTFOUND;
    } else if (libxl__lvm_probe_lv(gc, &origin, tag, &snap)) {
        /* thick: consumed by the merge */
        libxl__lvm_create_cmds(gc, &origin, tag,
                               size ? GCSPRINTF("%"PRIu64, size) : NULL,
                               &l, &n);
    } else {
        libxl__lvm_revert_cmds(gc, &origin, &snap, &l, &n);
    }
    for (k = 0; k < n; k++) {
        rc = libxl__exec_sync(gc, l[k], LVM_MERGE_TIMEOUT_MS, NULL, NULL);
        if (rc) return rc;
    }
    return 0;
}

bool libxl__lvm_snapshot_exists(libxl__gc *gc, const libxl_disk_snapshot *ds)
{
    libxl__lvm_volume origin, snap;

    return ds->tag && !libxl__lvm_probe(gc, ds->file, &origin) &&
        !libxl__lvm_probe_lv(gc, &origin, ds->tag, &snap);
}

int libxl__lvm_snapshot_remove_sync(libxl__gc *gc,
                                    const libxl_disk_snapshot *ds)
{
    libxl__lvm_volume origin;
    const char *const **l = NULL;
    int n = 0;

    if (libxl__lvm_probe(gc, ds->file, &origin)) return ERROR_NOTFOUND;
    libxl__lvm_remove_cmds(gc, &origin, ds->tag, &l, &n);
    return libxl__exec_sync(gc, l[0], LVM_TIMEOUT_MS, NULL, NULL);
}

/*
 * The state of a snapshot's LV: NULL when it can be reverted to, else
 * what is wrong, in words; *origin_r and *snap_r (optional) filled when
 * they are known.  cache (zeroed by the caller, one per operation):
 * each origin device and each volume group is asked once (lvs of the
 * whole VG), so that listing n snapshots runs two lvs, not 2n.
 */
const char *libxl__lvm_snapshot_state(libxl__gc *gc, libxl__lvm_cache *c,
                                      const libxl_disk_snapshot *ds,
                                      libxl__lvm_volume *origin_r,
                                      libxl__lvm_volume *snap_r)
{
    libxl__lvm_volume *origin = NULL, *snap = NULL;
    int i, k;

    if (ds->type != LIBXL_DISK_SNAPSHOT_TYPE_LVM) return NULL;
    for (i = 0; i < c->num_origins; i++)
        if (!strcmp(c->origins[i].file, ds->file)) break;
    if (i == c->num_origins) {
        GCREALLOC_ARRAY(c->origins, c->num_origins + 1);
        c->origins[i].file = GCSTRDUP(ds->file);
        c->origins[i].ok = !libxl__lvm_probe(gc, ds->file,
                                             &c->origins[i].v);
        c->num_origins++;
    }
    if (!c->origins[i].ok)
        return GCSPRINTF("origin '%s' is not a logical volume", ds->file);
    origin = &c->origins[i].v;
    if (origin_r) *origin_r = *origin;
    for (i = 0; i < c->num_vgs; i++)
        if (!strcmp(c->vgs[i].vg, origin->vg)) break;
    if (i == c->num_vgs) {
        GCREALLOC_ARRAY(c->vgs, c->num_vgs + 1);
        c->vgs[i].vg = origin->vg;
        lvs_run(gc, origin->vg, &c->vgs[i].vols, &c->vgs[i].n);
        c->num_vgs++;
    }
    for (k = 0; ds->tag && k < c->vgs[i].n; k++)
        if (!strcmp(c->vgs[i].vols[k].lv, ds->tag))
            snap = &c->vgs[i].vols[k];
    if (!snap)
        return GCSPRINTF("snapshot volume %s/%s is missing", origin->vg,
                         ds->tag ? ds->tag : "?");
    if (snap_r) *snap_r = *snap;
    if (snap->invalid)
        return GCSPRINTF("snapshot volume %s/%s is invalid: its "
                         "copy-on-write space filled up", origin->vg,
                         ds->tag);
    return NULL;
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
