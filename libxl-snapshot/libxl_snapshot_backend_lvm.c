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
 *    A step that fails is undone (libxl__lvm_revert_undo: the thin
 *    snapshot made under the origin's name removed, the origin renamed
 *    back); what cannot be undone (a thick merge once started) is left
 *    to the revert's journal, which the next command finishes.
 *  - delete: `lvremove` of the snapshot LV.  Whether it is there is
 *    asked of lvs by its VG/LV (libxl__lvm_snapshot_lookup), never
 *    taken as gone because the origin is, or because lvs failed.
 *  - names: checked before LVM is run (libxl__lvm_name_problem: its
 *    characters, lengths, device-mapper name and reserved words), so
 *    that a refusal says why; when LVM fails all the same, the line of
 *    its output that says why is quoted (libxl__tool_error_line), not
 *    its last one, which is often a warning.
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
#define LVS_FIELDS \
    "vg_name,lv_name,lv_attr,lv_size,origin,pool_lv,snap_percent,data_percent"
static bool lvs_line(libxl__gc *gc, char *line, libxl__lvm_volume *v)
{
    char *f[8];
    const char *p;
    int i;

    memset(v, 0, sizeof(*v));
    /* strsep: an empty field (no origin, no pool) stays a field */
    for (i = 0; i < 8; i++) {
        f[i] = strsep(&line, "|");
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
    v->thin = v->attr[0] == 'V';
    v->thick_snapshot = v->attr[0] == 's' || v->attr[0] == 'S';
    /* the use: a thick snapshot's Snap%, a thin volume's Data% (lvs
     * leaves Snap% empty for it, and both empty when it is inactive) */
    p = v->thin ? f[7] : f[6];
    v->use_percent = p && *p ? strtod(p, NULL) : v->thin ? -1 : 0;
    /* state (5th attribute) I: invalid snapshot; S: suspended invalid */
    v->invalid = strlen(v->attr) > 4 &&
        (v->attr[4] == 'I' || v->attr[4] == 'S');
    return true;
}

/*
 * lvs of `which` (a device, VG/LV or VG): every volume it lists, in gc.
 * ERROR_NOTFOUND (quiet) when lvs knows none; *why_r (optional): why
 * lvs failed, in its own words (NULL when it listed something).
 */
static int lvs_run_why(libxl__gc *gc, const char *which,
                       libxl__lvm_volume **vols_r, int *n_r,
                       const char **why_r)
{
    const char *args[] = { CTX->lvm, "lvs", "--noheadings", "--nosuffix",
        "--units", "b", "--separator", "|", "-o", LVS_FIELDS, which, NULL };
    char *out = NULL, *err = NULL, *line, *save = NULL;
    int rc;

    *vols_r = NULL;
    *n_r = 0;
    if (why_r) *why_r = NULL;
    rc = libxl__exec_sync(gc, args, LVM_TIMEOUT_MS, &out, &err);
    if (rc || !out) {
        if (why_r) *why_r = libxl__tool_error_line(gc, err);
        if (why_r && !*why_r) *why_r = "lvs failed";
        return ERROR_NOTFOUND;
    }
    for (line = strtok_r(out, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        GCREALLOC_ARRAY(*vols_r, *n_r + 1);
        if (lvs_line(gc, line, &(*vols_r)[*n_r])) (*n_r)++;
    }
    return *n_r ? 0 : ERROR_NOTFOUND;
}

static int lvs_run(libxl__gc *gc, const char *which,
                   libxl__lvm_volume **vols_r, int *n_r)
{
    return lvs_run_why(gc, which, vols_r, n_r, NULL);
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

static bool lvm_name_char(char c)
{
    return isalnum((unsigned char)c) || c == '+' || c == '_' || c == '.' ||
        c == '-';
}

/*
 * The snapshot LV's name: <lv>-<snapshot>, other characters as '_'.
 * Not shortened: libxl__lvm_name_problem refuses one that is too long.
 */
const char *libxl__lvm_snapshot_lv(libxl__gc *gc, const char *lv,
                                   const char *snapshot)
{
    char *n = GCSPRINTF("%s-%s", lv, snapshot), *p;

    for (p = n; *p; p++)
        if (!lvm_name_char(*p)) *p = '_';
    return n;
}

/* The origin's name while a thin revert replaces it. */
static const char *reverting_lv(libxl__gc *gc, const char *lv)
{
    return GCSPRINTF("%s.reverting", lv);
}

/* LVM's limits: a name's length, and a device-mapper name's with its
 * terminating NUL (DM_NAME_LEN; LVM 2.03 refuses one of 128 bytes with
 * "Internal error: LV name ... length 128 is not supported") */
#define LVM_NAME_MAX 127
#define LVM_DM_NAME_LEN 128

/* The device-mapper name of vg/lv: '-' doubled in each, joined by '-',
 * then "-layer" (as LVM builds it). */
static size_t dm_name_len(const char *vg, const char *lv, const char *layer)
{
    size_t n = 1;                   /* the '-' between vg and lv */
    const char *p;

    for (p = vg; *p; p++) n += *p == '-' ? 2 : 1;
    for (p = lv; *p; p++) n += *p == '-' ? 2 : 1;
    if (layer) n += 1 + strlen(layer);
    return n;
}

/*
 * Why LVM would refuse `lv` as the name of a new volume in `vg` (NULL:
 * it would not), in words, so that the refusal says why before LVM is
 * run (it reports some of these with a help hint or a warning only).
 * LVM's rules: [A-Za-z0-9+_.-], no leading '-', not "." or "..", at
 * most 127 characters; not starting with "snapshot" or "pvmove"; none
 * of the substrings it keeps for its internal volumes (_tdata, _rimage,
 * ...); and the device-mapper name (vg-lv, each '-' doubled, then
 * -layer), with its NUL, under DM_NAME_LEN (128).  layer: the longest suffix LVM gives the volume's devices
 * ("cow" for a thick snapshot).
 */
const char *libxl__lvm_name_problem(libxl__gc *gc, const char *vg,
                                    const char *lv, const char *layer)
{
    static const char *const reserved[] = {
        "_cdata", "_cmeta", "_corig", "_cpool", "_cvol", "_imeta", "_iorig",
        "_mimage", "_mlog", "_pmspare", "_rimage", "_rmeta", "_tdata",
        "_tmeta", "_vdata", "_vorigin", "_wcorig", NULL };
    static const char *const prefixes[] = { "snapshot", "pvmove", NULL };
    const char *const *r, *p;
    size_t dm;

    if (!*lv) return "the name is empty";
    if (!strcmp(lv, ".") || !strcmp(lv, ".."))
        return GCSPRINTF("LVM refuses the name '%s'", lv);
    if (lv[0] == '-') return "a name may not start with '-'";
    for (p = lv; *p; p++)
        if (!lvm_name_char(*p))
            return GCSPRINTF("character '%s' is not allowed (only "
                             "A-Z a-z 0-9 + _ . -)",
                             libxl__printable(gc, GCSPRINTF("%c", *p)));
    if (strlen(lv) > LVM_NAME_MAX)
        return GCSPRINTF("name too long: %zu characters, LVM takes at most "
                         "%d", strlen(lv), LVM_NAME_MAX);
    for (r = prefixes; *r; r++)
        if (!strncmp(lv, *r, strlen(*r)))
            return GCSPRINTF("names starting \"%s\" are reserved by LVM", *r);
    for (r = reserved; *r; r++)
        if (strstr(lv, *r))
            return GCSPRINTF("names including \"%s\" are reserved by LVM "
                             "(its internal volumes)", *r);
    dm = dm_name_len(vg, lv, layer);
    if (dm + 1 >= LVM_DM_NAME_LEN)
        return GCSPRINTF("name too long: its device-mapper name%s would "
                         "have %zu characters, LVM takes at most %d",
                         layer ? GCSPRINTF(" (with -%s)", layer) : "", dm,
                         LVM_DM_NAME_LEN - 2);
    return NULL;
}

/*
 * What would keep LVM from making snap_lv, a snapshot of origin, and
 * from reverting to it (NULL: nothing): the snapshot's name (a thick
 * one gets a "-cow" device, its origin a "-real" one), and a thin
 * origin's name during a revert (<lv>.reverting).
 */
const char *libxl__lvm_snapshot_name_problem(libxl__gc *gc,
                                             const libxl__lvm_volume *origin,
                                             const char *snap_lv)
{
    const char *why = libxl__lvm_name_problem(gc, origin->vg, snap_lv,
                                              origin->thin ? NULL : "cow");
    if (why)
        return GCSPRINTF("snapshot volume %s/%s: %s", origin->vg,
                         snap_lv, why);
    why = libxl__lvm_name_problem(gc, origin->vg, origin->lv,
                                  origin->thin ? NULL : "real");
    if (!why && origin->thin)
        why = libxl__lvm_name_problem(gc, origin->vg,
                                      reverting_lv(gc, origin->lv),
                                      NULL);
    if (why)
        return GCSPRINTF("origin %s/%s cannot be snapshotted and reverted "
                         "by LVM: %s", origin->vg, origin->lv, why);
    return NULL;
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
    libxl__flexarray *a = libxl__flexarray_new(gc);
    const char *arg;
    va_list ap;

    libxl__flexarray_append(a, CTX->lvm);
    va_start(ap, n);
    while ((arg = va_arg(ap, const char *))) libxl__flexarray_append(a, arg);
    va_end(ap);
    add(gc, cmds_r, n, a->data);
}

/*
 * cow: NULL for the default, a size with an LVM unit ("512M"), a plain
 * number of bytes, or "N%" of the origin.  Ignored for a thin origin.
 */
void libxl__lvm_create_cmds(libxl__gc *gc, const libxl__lvm_volume *origin,
                            const char *snap_lv, const char *cow,
                            const char *const **cmds_r[], int *n)
{
    libxl__flexarray *a = libxl__flexarray_new(gc);

    libxl__flexarray_append_pair(a, CTX->lvm, "lvcreate");
    libxl__flexarray_append_pair(a, "-y", "-s");
    if (!origin->thin) {
        if (!cow || !*cow)
            libxl__flexarray_append_pair(a, "-l", "20%ORIGIN");
        else if (cow[strlen(cow) - 1] == '%')
            libxl__flexarray_append_pair(a, "-l",
                                         GCSPRINTF("%sORIGIN", cow));
        else
            libxl__flexarray_append_pair(a, "-L",
                isdigit((unsigned char)cow[strlen(cow) - 1])
                ? GCSPRINTF("%sb", cow) : cow);
    }
    libxl__flexarray_append_pair(a, "-n", snap_lv);
    libxl__flexarray_append(a, vg_lv(gc, origin->vg, origin->lv));
    add(gc, cmds_r, n, a->data);
}

void libxl__lvm_remove_cmds(libxl__gc *gc, const libxl__lvm_volume *origin,
                            const char *snap_lv,
                            const char *const **cmds_r[], int *n)
{
    add_lvm(gc, cmds_r, n, "lvremove", "-y", vg_lv(gc, origin->vg, snap_lv),
            NULL);
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

/* *v zeroed, its VG and LV from /dev/VG/LV, by the path alone (the LV
 * may be gone or renamed away) */
static int path_volume(libxl__gc *gc, const char *file, libxl__lvm_volume *v)
{
    char *vg = GCSTRDUP(file), *p;

    memset(v, 0, sizeof(*v));
    p = strrchr(vg, '/');
    if (!p || p == vg || !p[1]) return ERROR_INVAL;
    *p = 0;
    v->lv = p + 1;
    p = strrchr(vg, '/');
    if (!p || !p[1]) return ERROR_INVAL;
    v->vg = p + 1;
    return 0;
}

/* The commands in order, up to the first that fails (logged). */
static int run_cmds(libxl__gc *gc, const char *const *const *l, int n)
{
    int k, rc;

    for (k = 0; k < n; k++) {
        rc = libxl__exec_sync(gc, l[k], LVM_MERGE_TIMEOUT_MS, NULL, NULL);
        if (rc) return rc;
    }
    return 0;
}

/*
 * A revert step of an LVM disk failed (the domain stopped): the
 * volumes put back as they were before the revert, from what they
 * show.  Thin: if the origin was renamed to <lv>.reverting, the thin
 * snapshot made under its name (if any) is removed and the origin
 * renamed back.  Thick: nothing to do if the snapshot volume is still
 * there and not merging; a merge once started cannot be undone.
 * 0: the disk is as before the revert; else it is not (the revert's
 * journal then finishes it: libxl__lvm_revert_redo).
 */
int libxl__lvm_revert_undo(libxl__gc *gc, const char *file, const char *tag)
{
    libxl__lvm_volume origin, cur, v;
    const char *const **l = NULL;
    const char *vg, *lv;
    int n = 0, rc;

    rc = path_volume(gc, file, &origin);
    if (rc) return rc;
    vg = origin.vg;
    lv = origin.lv;
    if (!libxl__lvm_probe_lv(gc, &origin, reverting_lv(gc, lv), &v)) {
        if (!libxl__lvm_probe_lv(gc, &origin, lv, &cur))
            add_lvm(gc, &l, &n, "lvremove", "-y", vg_lv(gc, vg, lv), NULL);
        add_lvm(gc, &l, &n, "lvrename", vg, reverting_lv(gc, lv), lv, NULL);
        return run_cmds(gc, l, n);
    }
    rc = libxl__lvm_probe_lv(gc, &origin, lv, &cur);
    if (rc) return rc;
    if (cur.thin) return 0;          /* not renamed yet: nothing done */
    /* thick: untouched while the snapshot is there and not merging */
    rc = libxl__lvm_probe_lv(gc, &origin, tag, &v);
    if (rc) return rc;
    return v.attr[0] == 's' ? 0 : ERROR_FAIL;
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
    const char *vg, *lv;
    bool have_origin;
    int n = 0, rc;

    /* /dev/VG/LV: the origin may be renamed away */
    rc = path_volume(gc, file, &origin);
    if (rc) return rc;
    vg = origin.vg;
    lv = origin.lv;
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
    return run_cmds(gc, l, n);
}

/*
 * Whether the snapshot volume of ds is there, as lvs says, whatever
 * became of the origin (it may be renamed away or gone): 0 it is;
 * ERROR_NOTFOUND lvs lists its volume group without it, or knows no
 * such group; else lvs could not tell (logged, with its reason).  A
 * volume is never taken as gone on a failure to look.
 */
int libxl__lvm_snapshot_lookup(libxl__gc *gc, const libxlsnap_disk_snapshot *ds)
{
    libxl__lvm_volume *vols, v;
    const char *why, *vg;
    int n, k, rc;

    if (!ds->tag || path_volume(gc, ds->file, &v)) {
        LOG(ERROR, "disk %s: '%s' names no logical volume (/dev/VG/LV)",
            ds->vdev, ds->file);
        return ERROR_INVAL;
    }
    vg = v.vg;
    rc = lvs_run_why(gc, vg, &vols, &n, &why);
    if (rc && why) {
        if (strstr(why, "not found") && strstr(why, vg))
            return ERROR_NOTFOUND;   /* Volume group "vg" not found */
        LOG(ERROR, "disk %s: cannot tell whether snapshot volume %s/%s "
            "exists: lvs: %s", ds->vdev, vg, ds->tag, why);
        return ERROR_FAIL;
    }
    for (k = 0; k < n; k++)
        if (!strcmp(vols[k].lv, ds->tag)) return 0;
    return ERROR_NOTFOUND;
}

bool libxl__lvm_snapshot_exists(libxl__gc *gc, const libxlsnap_disk_snapshot *ds)
{
    return !libxl__lvm_snapshot_lookup(gc, ds);
}

/* lvremove of the snapshot volume of ds (by its VG/LV: the origin
 * need not be there) */
const char *const *libxl__lvm_snapshot_remove_args(libxl__gc *gc,
                                          const libxlsnap_disk_snapshot *ds)
{
    libxl__lvm_volume origin;
    const char *const **l = NULL;
    int n = 0;

    if (!ds->tag || path_volume(gc, ds->file, &origin)) return NULL;
    libxl__lvm_remove_cmds(gc, &origin, ds->tag, &l, &n);
    return l[0];
}

int libxl__lvm_snapshot_remove_sync(libxl__gc *gc,
                                    const libxlsnap_disk_snapshot *ds)
{
    const char *const *a = libxl__lvm_snapshot_remove_args(gc, ds);

    if (!a) return ERROR_INVAL;
    return libxl__exec_sync(gc, a, LVM_TIMEOUT_MS, NULL, NULL);
}

/*
 * The state of a snapshot's LV: NULL when it can be reverted to, else
 * what is wrong, in words; *origin_r and *snap_r (optional) filled when
 * they are known.  cache (zeroed by the caller, one per operation):
 * each origin device and each volume group is asked once (lvs of the
 * whole VG), so that listing n snapshots runs two lvs, not 2n.
 */
const char *libxl__lvm_snapshot_state(libxl__gc *gc, libxl__lvm_cache *c,
                                      const libxlsnap_disk_snapshot *ds,
                                      libxl__lvm_volume *origin_r,
                                      libxl__lvm_volume *snap_r)
{
    libxl__lvm_volume *origin = NULL, *snap = NULL;
    int i, k;

    if (ds->type != LIBXLSNAP_DISK_SNAPSHOT_TYPE_LVM) return NULL;
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

/* ---------------------------------------------------------------- */
/* the backend */

static bool lvm_probe(libxl__gc *gc, const libxl_device_disk *dk,
                      const libxl_device_disk *config, void **priv_r)
{
    libxl__lvm_volume *v;

    GCNEW(v);
    if (libxl__lvm_probe(gc, dk->pdev_path, v)) return false;
    *priv_r = v;
    return true;
}

/* the snapshot volume: named after the origin and the snapshot, in the
 * origin's VG */
static int lvm_snapshot_plan(libxl__gc *gc, const libxl__create_plan *p,
                             libxlsnap_disk_snapshot *ds)
{
    const libxl_device_disk *dk = p->dk;
    const libxlsnap_domain_snapshot *s = p->s;
    const libxl__lvm_volume *lv = p->priv[p->index];
    libxl__lvm_volume other;
    const char *why;
    int j;

    if (lv->thick_snapshot) {
        LOG(ERROR, "disk %s: '%s' is itself a thick LVM snapshot, and LVM "
            "cannot snapshot those (thin volumes can)", dk->vdev,
            dk->pdev_path);
        return ERROR_INVAL;
    }
    ds->tag = GCSTRDUP(libxl__lvm_snapshot_lv(gc, lv->lv, s->name));
    why = libxl__lvm_snapshot_name_problem(gc, lv, ds->tag);
    if (why) {
        LOG(ERROR, "disk %s: %s", dk->vdev, why);
        return ERROR_INVAL;
    }
    ds->cow = p->req && p->req->cow ? GCSTRDUP(p->req->cow) : NULL;
    if (!libxl__lvm_probe_lv(gc, lv, ds->tag, &other)) {
        LOG(ERROR, "disk %s: logical volume %s/%s already exists",
            dk->vdev, lv->vg, ds->tag);
        return ERROR_INVAL;
    }
    for (j = 0; j < p->index; j++)
        if (s->disks[j].type == LIBXLSNAP_DISK_SNAPSHOT_TYPE_LVM &&
            !strcmp(s->disks[j].tag, ds->tag) &&
            !strcmp(((const libxl__lvm_volume *)p->priv[j])->vg, lv->vg)) {
            LOG(ERROR, "disks %s and %s would share snapshot volume %s/%s",
                s->disks[j].vdev, ds->vdev, lv->vg, ds->tag);
            return ERROR_INVAL;
        }
    return 0;
}

/*
 * One line of `lvm CMD --noheadings --nosuffix --units b -o FIELDS
 * which`, split at '|' into f_r[0..n-1] (gc, blanks trimmed); false
 * when it fails or lists less (said by the caller).
 */
static bool lvm_fields(libxl__gc *gc, const char *cmd, const char *fields,
                       const char *which, char **f_r, int n)
{
    const char *args[] = { CTX->lvm, cmd, "--noheadings", "--nosuffix",
        "--units", "b", "--separator", "|", "-o", fields, which, NULL };
    char *out = NULL, *save = NULL, *line;
    int i;

    if (libxl__exec_sync(gc, args, LVM_TIMEOUT_MS, &out, NULL) || !out)
        return false;
    line = strtok_r(out, "\n", &save);
    for (i = 0; i < n; i++) {
        char *e;
        f_r[i] = strsep(&line, "|");
        if (!f_r[i]) return false;
        while (*f_r[i] == ' ' || *f_r[i] == '\t') f_r[i]++;
        e = f_r[i] + strlen(f_r[i]);
        while (e > f_r[i] && (e[-1] == ' ' || e[-1] == '\r')) *--e = 0;
    }
    return true;
}

/* the bytes of a thick snapshot's COW (ds->cow as lvm_create_cmds
 * passes it on), of origin v; 0: cannot tell */
static uint64_t cow_bytes(const char *cow, const libxl__lvm_volume *v)
{
    static const char units[] = "bskmgtpe";
    const char *u;
    char *end;
    double n;
    int k;

    if (!cow || !*cow) return v->size / 5;           /* 20%ORIGIN */
    n = strtod(cow, &end);
    if (end == cow || n < 0) return 0;
    if (*end == '%') return (uint64_t)(v->size * n / 100);
    if (!*end) return (uint64_t)n;
    u = strchr(units, tolower((unsigned char)*end));
    if (!u || end[1]) return 0;
    if (*u == 'b') return (uint64_t)n;
    if (*u == 's') return (uint64_t)(n * 512);
    for (k = 0; k < u - units - 1; k++) n *= 1024;
    return (uint64_t)n;
}

/*
 * The space rules of LVM disks (libxl_snapshot_space.c), with the
 * threshold T (percent): a thin origin's pool must be under T in both
 * data and metadata use (lvs data_percent, metadata_percent); a thick
 * snapshot's COW (the disks' on one VG added up, in whole extents)
 * must fit the VG's free space, and leave the VG's use at most T.
 */
static void lvm_space(libxl__gc *gc, const libxlsnap_disk_snapshot *ds,
                      void *priv, const libxl__image_chain *c,
                      libxl__space_plan *sp)
{
    const libxl__lvm_volume *v = priv;
    long t = libxl__space_threshold(sp);
    char *f[3];

    if (!v) return;
    if (v->thin) {
        const char *pool = GCSPRINTF("%s/%s", v->vg, v->pool ? v->pool : "");
        double data, meta;
        if (!v->pool ||
            !lvm_fields(gc, "lvs", "data_percent,metadata_percent", pool,
                        f, 2)) {
            LOG(WARN, "disk %s: lvs cannot tell how full thin pool %s is: "
                "not checked for space", ds->vdev, pool);
            return;
        }
        data = strtod(f[0], NULL);
        meta = strtod(f[1], NULL);
        if (data >= t || meta >= t)
            libxl__space_refuse(gc, sp, GCSPRINTF("pool:%s", pool),
                GCSPRINTF("thin pool %s (disk %s) is %.1f %% full in data "
                          "and %.1f %% in metadata, at or over the space "
                          "threshold of %ld %%", pool, ds->vdev, data, meta,
                          t));
        return;
    } else {
        uint64_t cow = cow_bytes(ds->cow, v), size, vfree, ext, total;
        if (!lvm_fields(gc, "vgs", "vg_size,vg_free,vg_extent_size", v->vg,
                        f, 3)) {
            LOG(WARN, "disk %s: vgs cannot tell the free space of volume "
                "group %s: not checked for space", ds->vdev, v->vg);
            return;
        }
        size = strtoull(f[0], NULL, 10);
        vfree = strtoull(f[1], NULL, 10);
        ext = strtoull(f[2], NULL, 10);
        if (ext) cow = (cow + ext - 1) / ext * ext;
        total = libxl__space_tally(gc, sp, GCSPRINTF("vg:%s", v->vg), cow);
        if (total > vfree)
            libxl__space_refuse(gc, sp, GCSPRINTF("vg:%s", v->vg),
                GCSPRINTF("volume group %s has %s free, and the thick "
                          "snapshot's copy-on-write space needs %s (disk %s)",
                          v->vg, libxl__bytes_human(gc, vfree),
                          libxl__bytes_human(gc, total), ds->vdev));
        else if (size && (size - vfree + total) * 100 > (uint64_t)t * size)
            libxl__space_refuse(gc, sp, GCSPRINTF("vg:%s", v->vg),
                GCSPRINTF("volume group %s would be %.1f %% full with the "
                          "thick snapshot's copy-on-write space (%s, disk "
                          "%s), over the space threshold of %ld %%", v->vg,
                          (size - vfree + total) * 100.0 / size,
                          libxl__bytes_human(gc, total), ds->vdev, t));
    }
}

static void lvm_snapshot_cmds(libxl__gc *gc, const libxlsnap_disk_snapshot *ds,
                              void *priv, yajl_val info,
                              const char *const **cmds_r[], int *n_r)
{
    *n_r = 0;
    libxl__lvm_create_cmds(gc, priv, ds->tag, ds->cow, cmds_r, n_r);
}

static int lvm_present(libxl__gc *gc, const libxlsnap_disk_snapshot *ds)
{
    return libxl__lvm_snapshot_lookup(gc, ds);
}

/* lvs failing is no answer (said by the lookup) */
static int lvm_taken(libxl__gc *gc, const libxlsnap_disk_snapshot *ds)
{
    int rc = libxl__lvm_snapshot_lookup(gc, ds);

    if (rc == ERROR_NOTFOUND) return 0;
    return rc ? rc : 1;
}

/* (a failed lvcreate may have made none) */
static int lvm_undo(libxl__gc *gc, const libxl__snapshot_op *op,
                    const libxlsnap_disk_snapshot *ds,
                    const libxl__snapshot_tree *t, const char **why_r)
{
    if (!libxl__lvm_snapshot_exists(gc, ds)) return 0;
    return libxl__lvm_snapshot_remove_sync(gc, ds);
}

/* (a volume lvs cannot find is not taken as gone: kept, said) */
static int lvm_drop(libxl__gc *gc, const libxl__snapshot_op *op,
                    const libxlsnap_disk_snapshot *ds,
                    const libxl__snapshot_tree *t, const char **why_r)
{
    return libxl__lvm_snapshot_remove_sync(gc, ds);
}

static const char *lvm_check(libxl__gc *gc, void **cache,
                             const libxlsnap_disk_snapshot *ds, yajl_val info)
{
    if (!*cache) *cache = libxl__gc_zalloc(gc, sizeof(libxl__lvm_cache));
    return libxl__lvm_snapshot_state(gc, *cache, ds, NULL, NULL);
}

static bool lvm_revert_undoable(const libxlsnap_disk_snapshot *ds,
                                const libxl_device_disk *dk)
{
    return false;
}

static int lvm_revert_plan(libxl__gc *gc, const libxl__revert_plan *p,
                           libxl__revert_disk *rd)
{
    const libxlsnap_disk_snapshot *ds = rd->ds;
    libxl__lvm_cache lvc = { 0 };
    libxl__lvm_volume origin, snap;
    const char *why = libxl__lvm_snapshot_state(gc, &lvc, ds, &origin,
                                                &snap);

    if (why) {
        LOG(ERROR, "snapshot '%s': disk %s: %s; it cannot be reverted to",
            p->snapshot, ds->vdev, why);
        return ERROR_FAIL;
    }
    if (p->op->d.running && !p->force) {
        LOG(ERROR, "domain %s runs: the LVM merge of disk %s needs the "
            "volume closed; shut the domain down, or force the revert "
            "(LIBXLSNAP_REVERT_FORCE) to stop it and start it again",
            p->op->d.name, ds->vdev);
        return ERROR_INVAL;
    }
    libxl__lvm_revert_cmds(gc, &origin, &snap, &rd->cmds, &rd->num_cmds);
    rd->volume = ds->tag;
    rd->lvm_size = origin.thin ? 0 : snap.size;
    rd->new_active = GCSTRDUP(ds->file);
    rd->new_format = ds->format;
    return 0;
}

static int lvm_revert_failed(libxl__gc *gc, const libxl__revert_disk *rd,
                             int exit_code)
{
    return libxl__lvm_revert_undo(gc, rd->ds->file, rd->ds->tag);
}

/* the journal's "lvm": the snapshot volume, "lvm_size" its size */
static bool lvm_revert_journal_owns(yajl_val d)
{
    return libxl__json_get_string(d, "lvm") != NULL;
}

static int lvm_revert_redo(libxl__gc *gc, yajl_val d, const char *file,
                           libxl_disk_format fmt, const char *na,
                           libxl_disk_format *fmt_r,
                           const char *const **args_r, int *timeout_ms_r)
{
    *fmt_r = fmt;
    *args_r = NULL;                   /* its commands, run here */
    return libxl__lvm_revert_redo(gc, file,
                                  libxl__json_get_string(d, "lvm"),
                                  libxl__json_get_integer(d, "lvm_size", 0));
}

/* libvirt's "manual": the snapshot volume as a block device, VG/tag */
static bool lvm_xml_source(libxl__gc *gc, const libxlsnap_disk_snapshot *ds,
                           bool live, libxl__xml_source *src)
{
    if (!ds->tag || !ds->file) return false;
    src->type = "block";
    src->driver = NULL;
    src->attr = "dev";
    src->value = GCSPRINTF("%s/%s", libxl__path_dirname(gc, ds->file),
                           ds->tag);
    return true;
}

static bool lvm_xml_parse(libxl__gc *gc, libxlsnap_disk_snapshot *ds,
                          const libxlsnap_domain_snapshot *s,
                          const char *file, const char *dev)
{
    ds->tag = dev ? libxl__path_basename(gc, dev) : NULL;
    return ds->tag != NULL;
}

/* gone only if lvs says so; lvs failing stops the delete */
static int lvm_delete_probe(libxl__gc *gc, libxl__snapshot_op *op,
                            const char *snapshot,
                            const libxlsnap_disk_snapshot *ds, yajl_val info,
                            const char **tag_id_r)
{
    int rc = libxl__lvm_snapshot_lookup(gc, ds);

    if (rc && rc != ERROR_NOTFOUND) return rc;
    if (!rc) return 1;
    LOG(WARN, "disk %s: snapshot volume '%s' is gone already", ds->vdev,
        ds->tag);
    return 0;
}

/* its snapshot volume, by path */
static int lvm_parts(libxl__gc *gc, const libxlsnap_disk_snapshot *ds,
                     libxl__snapshot_part parts[2])
{
    if (!ds->file || !ds->tag) return 0;
    parts[0].kind = LIBXL__PART_VOLUME;
    parts[0].path = GCSPRINTF("%s/%s", libxl__path_dirname(gc, ds->file),
                              ds->tag);
    parts[0].tag = NULL;
    return 1;
}

const libxl__snapshot_backend libxl__snapshot_backend_lvm = {
    .name = "lvm",
    .type = LIBXLSNAP_DISK_SNAPSHOT_TYPE_LVM,
    .probe = lvm_probe,
    .must_probe = true,
    .live_paused = true,
    .snapshot_plan = lvm_snapshot_plan,
    .space = lvm_space,
    .refusal = "is not an LVM logical volume",
    .snapshot_cmds = lvm_snapshot_cmds,
    .taken = lvm_taken,
    .present = lvm_present,
    .undo = lvm_undo,
    .drop = lvm_drop,
    .check = lvm_check,
    .volume = true,
    .revert_undoable = lvm_revert_undoable,
    .revert_plan = lvm_revert_plan,
    .revert_failed = lvm_revert_failed,
    .revert_journal_owns = lvm_revert_journal_owns,
    .revert_redo = lvm_revert_redo,
    .xml_type = "manual",
    .xml_source = lvm_xml_source,
    .xml_parse = lvm_xml_parse,
    .delete_probe = lvm_delete_probe,
    .parts = lvm_parts,
    /* by its VG/LV: the origin may be gone or renamed away */
    .delete_args = libxl__lvm_snapshot_remove_args,
};

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
