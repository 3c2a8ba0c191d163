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
 *  - revert: `lvconvert --merge` of the snapshot into the origin,
 *    which consumes the snapshot LV; it is then made again, from the
 *    origin just reverted, with the same name (and, thick, the same
 *    size), so that the snapshot stays in the tree and can be reverted
 *    to again.  A thin merge needs the origin inactive: lvchange -an,
 *    merge, lvchange -ay (the merge runs at that activation).
 *  - delete: `lvremove` of the snapshot LV.
 *
 * Every command runs through libxl_snapshot_exec.c (argv, no shell),
 * with a timeout; its exit code and stderr are reported.  The lvm
 * binary is CTX->lvm (Config.mk LVM, or $XL_SNAPSHOT_LVM).
 */
#include "libxl_snapshot_internal.h"

#include <ctype.h>
#include <inttypes.h>
#include <sys/stat.h>

#define LVM_TIMEOUT_MS 120000

/* lvs of one volume (a device or VG/LV); ERROR_NOTFOUND (quiet) if none */
static int lvs_query(libxl__gc *gc, const char *which, const char *path,
                     libxl__lvm_volume *v)
{
    const char *args[] = { CTX->lvm, "lvs", "--noheadings", "--nosuffix",
        "--units", "b", "--separator", "|", "-o",
        "vg_name,lv_name,lv_attr,lv_size,origin,pool_lv,snap_percent",
        which, NULL };
    char *out = NULL, *err = NULL, *f[7], *p, *save = NULL;
    int i, rc;

    memset(v, 0, sizeof(*v));
    rc = libxl__exec_sync(gc, args, LVM_TIMEOUT_MS, &out, &err);
    if (rc || !out) return ERROR_NOTFOUND;
    p = out;
    while (*p == ' ' || *p == '\t') p++;
    for (i = 0; i < 7; i++) {
        f[i] = strtok_r(i ? NULL : p, "|\n", &save);
        if (!f[i] && i < 4) return ERROR_NOTFOUND;
        if (f[i]) {
            char *e;
            while (*f[i] == ' ') f[i]++;
            e = f[i] + strlen(f[i]);
            while (e > f[i] && (e[-1] == ' ' || e[-1] == '\r')) *--e = 0;
        }
    }
    v->vg = GCSTRDUP(f[0]);
    v->lv = GCSTRDUP(f[1]);
    v->path = GCSTRDUP(path);
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
    return 0;
}

int libxl__lvm_probe(libxl__gc *gc, const char *path, libxl__lvm_volume *v)
{
    struct stat sb;

    memset(v, 0, sizeof(*v));
    if (!path || stat(path, &sb) || !S_ISBLK(sb.st_mode))
        return ERROR_NOTFOUND;
    return lvs_query(gc, path, path, v);
}

/* An LV beside origin, active or not (thin snapshots are not). */
int libxl__lvm_probe_lv(libxl__gc *gc, const libxl__lvm_volume *origin,
                        const char *lv, libxl__lvm_volume *v)
{
    return lvs_query(gc, GCSPRINTF("%s/%s", origin->vg, lv),
                     GCSPRINTF("/dev/%s/%s", origin->vg, lv), v);
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
    const char **a;

    GCNEW_ARRAY(a, 5);
    a[0] = CTX->lvm; a[1] = "lvremove"; a[2] = "-y";
    a[3] = vg_lv(gc, origin->vg, snap_lv);
    add(gc, cmds_r, n, a);
}

void libxl__lvm_revert_cmds(libxl__gc *gc, const libxl__lvm_volume *origin,
                            const libxl__lvm_volume *snap,
                            const char *const **cmds_r[], int *n)
{
    const char *ovl = vg_lv(gc, origin->vg, origin->lv);
    const char **a;

    if (origin->thin) {
        GCNEW_ARRAY(a, 5);
        a[0] = CTX->lvm; a[1] = "lvchange"; a[2] = "-an"; a[3] = ovl;
        add(gc, cmds_r, n, a);
    }
    GCNEW_ARRAY(a, 6);
    a[0] = CTX->lvm; a[1] = "lvconvert"; a[2] = "-y"; a[3] = "--merge";
    a[4] = vg_lv(gc, origin->vg, snap->lv);
    add(gc, cmds_r, n, a);
    if (origin->thin) {
        GCNEW_ARRAY(a, 5);
        a[0] = CTX->lvm; a[1] = "lvchange"; a[2] = "-ay"; a[3] = ovl;
        add(gc, cmds_r, n, a);
    }
    /* the merge consumed the snapshot: the same one again, kept */
    libxl__lvm_create_cmds(gc, origin, snap->lv,
                           origin->thin ? NULL
                           : GCSPRINTF("%"PRIu64, snap->size), cmds_r, n);
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
 * The state of a snapshot's LV, for list and check: NULL when it is
 * fine, else what is wrong, in words.
 */
const char *libxl__lvm_snapshot_problem(libxl__gc *gc,
                                        const libxl_disk_snapshot *ds)
{
    libxl__lvm_volume origin, snap;

    if (ds->type != LIBXL_DISK_SNAPSHOT_TYPE_LVM) return NULL;
    if (libxl__lvm_probe(gc, ds->file, &origin))
        return GCSPRINTF("origin '%s' is not a logical volume", ds->file);
    if (!ds->tag || libxl__lvm_probe_lv(gc, &origin, ds->tag, &snap))
        return GCSPRINTF("snapshot volume %s/%s is missing", origin.vg,
                         ds->tag ? ds->tag : "?");
    if (snap.invalid)
        return GCSPRINTF("snapshot volume %s/%s is invalid: its "
                         "copy-on-write space filled up", origin.vg,
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
