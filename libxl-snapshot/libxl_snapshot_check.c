/*
 * libxl_snapshot_check.c - do the records say what is true?
 *
 * `xl snapshot-check` compares a domain's records with its images and
 * lists every discrepancy, one line each; it changes nothing.  Under
 * the domain's lock, so that no other command is half-way through; but
 * unlike every other command it does not recover what a dead one left
 * (a journal is reported, `xl snapshot-recover` acts on it), and a
 * corrupt record is reported, not fatal (libxl__snapshot_store_load_check).
 *
 *  0. The records themselves: a journal left pending (or one that
 *     snapshot-recover moved aside, unreadable), a corrupt record,
 *     a parent without a record, a loop of parents; and anything two
 *     records own (libxl__snapshot_ownership: overlays, frozen images,
 *     internal snapshots, memory images, LVM volumes).
 *  1. Every record's images exist; an internal snapshot is in its image
 *     exactly once; a memory image exists.
 *  2. Each disk's active image opens with its whole backing chain.
 *  3. The chains match the tree: a snapshot's external image is built on
 *     the image of its nearest ancestor that has one for that disk, and
 *     the current snapshot's images are in the active chain.
 *  4. `qemu-img check` of every qcow2 image involved is clean
 *     (corruption always; leaked clusters only while the domain is shut
 *     off: read under a running QEMU, they can be transient).
 *  4b. A running domain runs each disk on the image the records say
 *     (QEMU's query-block against the domain and driver records).
 *  5. Nothing is unowned: in the domain's record directory every file is
 *     a record, the lock, a block job record or a record's memory image;
 *     beside each disk's configured image, every <stem>.*.qcow2 is an
 *     image some record or active chain uses (or the image a block-copy
 *     pivoted the disk away from, kept); every internal snapshot
 *     in those images is a record's.
 * A disk with a block job going (check_jobs: QEMU has the job, or the
 * process running it is alive) is left out of 1-5 but for its images'
 * existence, and that is said in a warning, not counted as a problem:
 * QEMU holds its images (a commit does not share "consistent read" of
 * the images it merges, so qemu-img cannot open them, even with -U, the
 * force-share it is always run with here), and the records follow the
 * job only when it is over.  A job record nothing runs any more is a
 * problem (the next command clears it).
 *
 * Nothing here blocks the caller's loop for long: every qemu-img run
 * is a child process step on the loop (libxl__exec), one at a time, and
 * the checks themselves are pure work on what those runs gave.  The
 * `qemu-img info --backing-chain` of every image checks 1-3 read is run
 * first (check_prefetch: the records' images and the disks' active
 * images, each once), then 1-3 and 5 run at once on the results, then
 * check 4 runs `qemu-img info` and `qemu-img check` of each image in
 * turn.  What is still done inside a step: the journal and records
 * read, a block job record's QMP query (check_jobs, only for a disk
 * with a job), and 4b's query-block (a QMP exchange of a few ms with a
 * QEMU that answers; libxl__qmp_run_sync, 5 s at most).
 * Abort: the qemu-img running is killed and the check ends with
 * ERROR_ABORTED, reporting nothing (it changed nothing).
 *
 * Steps: libxlsnap_domain_snapshot_check -> check_begun ->
 *   check_prefetch_next <-> check_prefetch_done -> check_probed ->
 *   check_images_next -> check_image_info_done -> check_image_checked
 *   -> check_images_next ... -> check_done
 */
#include "libxl_snapshot_internal.h"

#include <dirent.h>
#include <fnmatch.h>
#include <sys/stat.h>

#define CHECK_TIMEOUT_MS (10 * 60 * 1000)   /* qemu-img check */

typedef struct {
    libxl__ao *ao;
    libxl__snapshot_op op;
    char ***problems_r;
    int *num_r;
    char **problems;
    int num;
    const char **known;              /* every image in use */
    int num_known;
    const char **job_vdevs;          /* disks with a block job going */
    int num_jobs;
    const char **busy;               /* the images such jobs may hold */
    int num_busy;
    /* qemu-img info --backing-chain of the images checks 1-3 read, run
     * on the loop beforehand: info NULL and err when it did not open */
    const char **pf_paths;
    yajl_val *pf_infos;
    char **pf_errs;
    int num_pf, pf_next;
    int img_next;                    /* check 4: known[img_next] */
    libxl__exec_state es;
} check_state;

static void check_begun(libxl__egc *egc, libxl__snapshot_op *op, int rc);
static void check_prefetch_next(libxl__egc *egc, check_state *cs);
static void check_prefetch_done(libxl__egc *egc, libxl__exec_state *es,
                                int rc, int status);
static void check_probed(libxl__egc *egc, check_state *cs);
static void check_images_next(libxl__egc *egc, check_state *cs);
static void check_image_info_done(libxl__egc *egc, libxl__exec_state *es,
                                  int rc, int status);
static void check_image_checked(libxl__egc *egc, libxl__exec_state *es,
                                int rc, int status);
static void check_done(libxl__egc *egc, check_state *cs, int rc);

static void problem(libxl__gc *gc, check_state *cs, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void problem(libxl__gc *gc, check_state *cs, const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0) abort();
    va_end(ap);
    GCREALLOC_ARRAY(cs->problems, cs->num + 1);
    cs->problems[cs->num++] = libxl__gc_strdup(gc, s);
    free(s);
}

static bool in_list(const char **l, int n, const char *s)
{
    int i;
    for (i = 0; s && i < n; i++)
        if (l[i] && !strcmp(l[i], s)) return true;
    return false;
}

static void know(libxl__gc *gc, check_state *cs, const char *file)
{
    if (!file || in_list(cs->known, cs->num_known, file)) return;
    GCREALLOC_ARRAY(cs->known, cs->num_known + 1);
    cs->known[cs->num_known++] = file;
}

/* Does vdev have a block job going (check_jobs)? */
static bool job_disk(const check_state *cs, const char *vdev)
{
    return in_list(cs->job_vdevs, cs->num_jobs, vdev);
}

/* file is an image a block job may hold: not opened here */
static void busy(libxl__gc *gc, check_state *cs, const char *file)
{
    if (!file || in_list(cs->busy, cs->num_busy, file)) return;
    know(gc, cs, file);
    GCREALLOC_ARRAY(cs->busy, cs->num_busy + 1);
    cs->busy[cs->num_busy++] = file;
}

/*
 * The disks with a block job going: an --async one QEMU runs, one
 * READY waiting for its pivot, one QEMU has concluded that the next
 * command records.  Their images (the job's top and base, the active
 * chain) are left out, said once per disk.
 */
static void check_jobs(libxl__gc *gc, check_state *cs)
{
    libxl__domain *d = &cs->op.d;
    libxl__blockjob_seen js;
    const char **files;
    int i, j, nf;

    for (i = 0; i < d->num_disks; i++) {
        const libxl_device_disk *dk = &d->disks[i];

        if (dk->is_cdrom || !dk->vdev ||
            libxl__blockjob_pending(gc, &cs->op.st, d, dk->vdev, &js))
            continue;
        GCREALLOC_ARRAY(cs->job_vdevs, cs->num_jobs + 1);
        cs->job_vdevs[cs->num_jobs++] = dk->vdev;
        busy(gc, cs, js.top);
        busy(gc, cs, js.base);
        if (dk->pdev_path && *dk->pdev_path) {
            busy(gc, cs, dk->pdev_path);
            if (!libxl__qemu_img_chain(gc, dk->pdev_path, &files, &nf,
                                       NULL))
                for (j = 0; j < nf; j++) busy(gc, cs, files[j]);
        }
        LOG(WARN, "domain %s: disk %s is in block job %s (%s): its images "
            "are not checked until the job is over", d->name, dk->vdev,
            js.id, js.status);
    }
}

/* The files of a --backing-chain info, top first, all known. */
static int chain_files(libxl__gc *gc, check_state *cs, yajl_val info,
                       const char ***files_r)
{
    const char **f;
    size_t i;
    int n = 0;

    if (!info || !YAJL_IS_ARRAY(info)) return 0;
    GCNEW_ARRAY(f, info->u.array.len);
    for (i = 0; i < info->u.array.len; i++) {
        const char *name = libxl__json_get_string(info->u.array.values[i],
                                                  "filename");
        if (!name) continue;
        f[n++] = name;
        know(gc, cs, name);
    }
    *files_r = f;
    return n;
}

/*
 * qemu-img info --backing-chain of path: the one check_prefetch ran,
 * else (an image it did not foresee) run now.
 */
static yajl_val chain_info(libxl__gc *gc, check_state *cs, const char *path,
                           char **err_r)
{
    int i;

    for (i = 0; i < cs->num_pf; i++)
        if (!strcmp(cs->pf_paths[i], path)) {
            *err_r = cs->pf_errs[i];
            return cs->pf_infos[i];
        }
    return libxl__qemu_img_info_sync(gc, path, true, err_r);
}

/*
 * Is the chain files (nf images, top first) another disk than the one
 * image anc is of: do their base images differ (the disk's config entry
 * pointed at another image since, libxl__domain_record_active)?
 */
static bool other_disk(libxl__gc *gc, check_state *cs, const char **files,
                       int nf, const char *anc)
{
    const char **af = NULL;
    char *err;
    yajl_val info = chain_info(gc, cs, anc, &err);
    int na = info ? chain_files(gc, cs, info, &af) : 0;

    return nf > 0 && na > 0 && strcmp(files[nf - 1], af[na - 1]);
}

/* The nearest ancestor of s with an external image for vdev. */
static const char *ancestor_image(libxl__snapshot_tree *t,
                                  const libxlsnap_domain_snapshot *s,
                                  const char *vdev, const char **name_r)
{
    const libxlsnap_domain_snapshot *p = s;
    int guard, j;

    for (guard = 0; p && p->parent && guard < t->num_snaps; guard++) {
        p = libxl__snapshot_tree_find(t, p->parent);
        for (j = 0; p && j < p->num_disks; j++) {
            const libxlsnap_disk_snapshot *ds = &p->disks[j];
            const libxl__snapshot_backend *be =
                libxl__snapshot_backend_of(ds);
            if (!strcmp(ds->vdev, vdev) && ds->file && be && be->chained) {
                *name_r = p->name;
                return ds->file;
            }
        }
    }
    return NULL;
}

/* Anything two records own. */
static void check_owners(libxl__gc *gc, check_state *cs)
{
    libxl__snapshot_clash *c;
    int i, n;

    n = libxl__snapshot_ownership(gc, &cs->op.tree, NULL, &c);
    for (i = 0; i < n; i++)
        problem(gc, cs, "snapshot %s: its %s is also snapshot %s's",
                c[i].name, c[i].what, c[i].owner);
}

static void check_tree(libxl__gc *gc, check_state *cs)
{
    libxl__snapshot_tree *t = &cs->op.tree;
    const char *journal, *what;
    int i;

    journal = libxl__journal_pending(gc, &cs->op.st, &what);
    if (journal && libxl__journal_op_known(what))
        problem(gc, cs, "an interrupted operation (%s) is pending in '%s': "
                "xl snapshot-recover finishes or undoes it", what, journal);
    else if (journal)
        problem(gc, cs, "the journal '%s' %s, so the operation it records "
                "cannot be completed: xl snapshot-recover moves it aside",
                journal, what ? GCSPRINTF("holds an operation this version "
                                          "does not know ('%s')",
                                          libxl__printable(gc, what))
                              : "is unreadable");
    for (i = 0; i < t->num_damage; i++)
        problem(gc, cs, "%s", t->damage[i]);
    check_owners(gc, cs);
}

static void check_records(libxl__gc *gc, check_state *cs)
{
    libxl__snapshot_tree *t = &cs->op.tree;
    libxl__backend_cache bc = { { 0 } };
    int i, j, nf;
    char *err;

    for (i = 0; i < t->num_snaps; i++) {
        const libxlsnap_domain_snapshot *s = &t->snaps[i];
        if (s->memory && !libxl__file_exists(s->memory))
            problem(gc, cs, "snapshot %s: its memory image '%s' is missing",
                    s->name, s->memory);
        for (j = 0; j < s->num_disks; j++) {
            const libxlsnap_disk_snapshot *ds = &s->disks[j];
            const libxl__snapshot_backend *be =
                libxl__snapshot_backend_of(ds);
            const char **files = NULL, *anc, *aname = NULL, *why;
            yajl_val info;

            if (!be || !ds->file) continue;
            if (be->volume) {
                why = libxl__disk_snapshot_check(gc, &bc, ds, NULL);
                if (why)
                    problem(gc, cs, "snapshot %s: disk %s: %s", s->name,
                            ds->vdev, why);
                continue;
            }
            know(gc, cs, ds->file);
            if (!libxl__file_exists(ds->file)) {
                problem(gc, cs, "snapshot %s: disk %s: image '%s' is "
                        "missing", s->name, ds->vdev, ds->file);
                continue;
            }
            if (job_disk(cs, ds->vdev)) {
                busy(gc, cs, ds->file);
                continue;
            }
            info = chain_info(gc, cs, ds->file, &err);
            if (!info) {
                problem(gc, cs, "snapshot %s: disk %s: '%s' does not open "
                        "with its backing chain: %s", s->name, ds->vdev,
                        ds->file, libxl__printable(gc, err));
                continue;
            }
            nf = chain_files(gc, cs, info, &files);
            why = libxl__disk_snapshot_check(gc, &bc, ds, info);
            if (why)
                problem(gc, cs, "snapshot %s: disk %s: %s", s->name,
                        ds->vdev, why);
            if (!be->chained) continue;
            anc = ancestor_image(t, s, ds->vdev, &aname);
            if (anc && strcmp(anc, ds->file) && !in_list(files, nf, anc) &&
                !other_disk(gc, cs, files, nf, anc))
                problem(gc, cs, "snapshot %s: disk %s: '%s' is not built on "
                        "'%s', the image of its ancestor %s", s->name,
                        ds->vdev, ds->file, anc, aname);
        }
    }
}

static bool tag_owned(libxl__gc *gc, const libxl__snapshot_tree *t,
                      const char *image, const char *tag);

static void check_active(libxl__gc *gc, check_state *cs)
{
    libxl__snapshot_tree *t = &cs->op.tree;
    libxl__domain *d = &cs->op.d;
    const libxlsnap_domain_snapshot *cur = t->dom.current
        ? libxl__snapshot_tree_find(t, t->dom.current) : NULL;
    int i, j, nf;
    char *err;
    yajl_val info;

    for (i = 0; i < d->num_disks; i++) {
        const libxl_device_disk *dk = &d->disks[i];
        const char **files = NULL;

        if (dk->is_cdrom || !dk->pdev_path || !*dk->pdev_path) continue;
        if (!libxl__image_is_file(dk->pdev_path)) {
            /* an RBD image: no chain, no file; its snapshots, owned */
            const char **tags = NULL, *why;
            int n;
            why = libxl__image_problem(gc, dk->pdev_path, &tags, &n);
            if (why)
                problem(gc, cs, "disk %s: the active image '%s' %s",
                        dk->vdev, dk->pdev_path, why);
            for (j = 0; j < n; j++)
                if (!tag_owned(gc, t, dk->pdev_path, tags[j]))
                    problem(gc, cs, "image '%s' holds snapshot '%s', which "
                            "no record owns (taken outside xl, or left by "
                            "a failed command)", dk->pdev_path,
                            libxl__printable(gc, tags[j]));
            continue;
        }
        know(gc, cs, dk->pdev_path);
        if (!libxl__file_exists(dk->pdev_path)) {
            problem(gc, cs, "disk %s: the active image '%s' is missing",
                    dk->vdev, dk->pdev_path);
            continue;
        }
        if (job_disk(cs, dk->vdev)) continue;
        info = chain_info(gc, cs, dk->pdev_path, &err);
        if (info && !YAJL_IS_ARRAY(info)) {
            info = NULL;
            err = GCSTRDUP("unexpected qemu-img info output");
        }
        if (!info) {
            problem(gc, cs, "disk %s: the active image '%s' does not open "
                    "with its backing chain: %s", dk->vdev, dk->pdev_path,
                    libxl__printable(gc, err));
            continue;
        }
        nf = chain_files(gc, cs, info, &files);
        for (j = 0; cur && j < cur->num_disks; j++) {
            const libxlsnap_disk_snapshot *ds = &cur->disks[j];
            const libxl__snapshot_backend *be =
                libxl__snapshot_backend_of(ds);
            if (strcmp(ds->vdev, dk->vdev) || !ds->file || !be ||
                !be->chained)
                continue;
            if (!in_list(files, nf, ds->file) &&
                !other_disk(gc, cs, files, nf, ds->file))
                problem(gc, cs, "disk %s: the active image '%s' is not "
                        "built on '%s', the image of the current "
                        "snapshot %s", dk->vdev, dk->pdev_path, ds->file,
                        cur->name);
        }
    }
}

/*
 * A running domain: the image QEMU really runs each disk on must be the
 * one the records (the domain record and the driver's own) say.  Disks
 * QEMU does not name by their vdev (a device model of Xen's) are left
 * to the checks above.
 */
static void check_running(libxl__gc *gc, check_state *cs)
{
    libxl__domain *d = &cs->op.d;
    yajl_val blocks = NULL;
    size_t i;
    int j;

    if (!d->running || !d->qmp_path) return;
    /* no disk QEMU serves (blkback's: LVM, kernel RBD): a PV domain may
     * have no QEMU to ask */
    for (j = 0; j < d->num_disks; j++)
        if (d->disks[j].backend == LIBXL_DISK_BACKEND_QDISK ||
            d->disks[j].backend == LIBXL_DISK_BACKEND_UNKNOWN)
            break;
    if (j == d->num_disks) return;
    if (libxl__qmp_run_sync(gc, d->qmp_path, "query-block", NULL, 0, true,
                            &blocks) || !YAJL_IS_ARRAY(blocks)) {
        problem(gc, cs, "the running domain's QEMU does not list its "
                "disks (query-block)");
        return;
    }
    for (i = 0; i < blocks->u.array.len; i++) {
        yajl_val b = blocks->u.array.values[i];
        const char *dev = libxl__json_get_string(b, "device");
        yajl_val in = libxl__json_get(b, "inserted");
        const char *f = in ? libxl__json_get_string(in, "file") : NULL;
        const libxl__active_disk *ad;

        if (!dev || !f) continue;
        for (j = 0; j < d->num_disks; j++) {
            const libxl_device_disk *dk = &d->disks[j];
            if (!dk->vdev || strcmp(dk->vdev, dev) || !dk->pdev_path ||
                job_disk(cs, dk->vdev))
                continue;
            if (!libxl__qemu_file_is(gc, f, dk->pdev_path))
                problem(gc, cs, "disk %s: QEMU runs it on '%s', but the "
                        "toolstack's record says '%s'", dk->vdev, f,
                        dk->pdev_path);
            ad = libxl__domain_record_disk(&cs->op.tree.dom, dk->vdev);
            if (ad && ad->path && !libxl__qemu_file_is(gc, f, ad->path))
                problem(gc, cs, "disk %s: QEMU runs it on '%s', but the "
                        "domain's snapshot record says '%s'", dk->vdev, f,
                        ad->path);
        }
    }
}

/* Does a record own the internal snapshot tag of image?  (Asked of
 * libxl__snapshot_ownership, as a record of no name claiming it.) */
static bool tag_owned(libxl__gc *gc, const libxl__snapshot_tree *t,
                      const char *image, const char *tag)
{
    libxlsnap_domain_snapshot probe;
    libxlsnap_disk_snapshot ds;

    libxlsnap_domain_snapshot_init(&probe);
    libxlsnap_disk_snapshot_init(&ds);
    probe.name = (char *)"";
    ds.vdev = (char *)"";
    ds.type = LIBXLSNAP_DISK_SNAPSHOT_TYPE_INTERNAL;
    ds.file = (char *)image;
    ds.tag = (char *)tag;
    probe.disks = &ds;
    probe.num_disks = 1;
    return libxl__snapshot_ownership(gc, t, &probe, NULL) > 0;
}

/* Internal snapshots in image that no record owns. */
static void check_tags(libxl__gc *gc, check_state *cs, const char *image,
                       yajl_val info)
{
    yajl_val snaps = libxl__json_get(info, "snapshots");
    size_t i;

    for (i = 0; snaps && YAJL_IS_ARRAY(snaps) && i < snaps->u.array.len;
         i++) {
        const char *tag = libxl__json_get_string(snaps->u.array.values[i],
                                                 "name");
        if (tag && !tag_owned(gc, &cs->op.tree, image, tag))
            problem(gc, cs, "image '%s' holds internal snapshot '%s', "
                    "which no record owns (a snapshot taken without metadata, "
                    "or left by a failed command)", image, libxl__printable(gc, tag));
    }
}

static bool memory_of_record(libxl__snapshot_tree *t, const char *path)
{
    int i;
    for (i = 0; i < t->num_snaps; i++)
        if (t->snaps[i].memory && !strcmp(t->snaps[i].memory, path))
            return true;
    return false;
}

static void check_unowned(libxl__gc *gc, check_state *cs)
{
    libxl__snapshot_tree *t = &cs->op.tree;
    const char *what, *journal = libxl__journal_pending(gc, &cs->op.st,
                                                         &what);
    DIR *dir;
    struct dirent *de;
    char **names;
    const char *tmp1 = NULL;          /* the first *.tmp, of ntmp */
    int i, j, num, ntmp = 0;

    if (libxl__snapshot_store_list(gc, &cs->op.st, "", &names, NULL, &num))
        num = 0;                      /* (logged) */
    for (i = 0; i < num; i++) {
        const char *n = names[i], *path;
        path = libxl__snapshot_store_where(gc, &cs->op.st, n);
        if (libxl__snapshot_store_owns(gc, t, n) ||
            /* a checkpoint's record: libxl__checkpoint_check's */
            libxl__checkpoint_record_file(gc, n) ||
            memory_of_record(t, path) ||
            (journal && !strcmp(path, journal)))   /* reported */
            continue;
        if (!fnmatch("blockjob-*.libxl-json", n, 0)) {
            size_t l = strlen(n) - strlen("blockjob-") -
                       strlen(".libxl-json");
            if (job_disk(cs, GCSPRINTF("%.*s", (int)l,
                                       n + strlen("blockjob-"))))
                continue;             /* its job goes on */
            problem(gc, cs, "a block job record is left: '%s' (see "
                    "xl block-job)", path);
            continue;
        }
        if (!strcmp(n, "backup.libxl-json") ||
            !strcmp(n, "backups.libxl-json"))
            continue;                 /* the backups' (backup.c) */
        if (!fnmatch("journal.corrupt-*", n, 0)) {
            problem(gc, cs, "'%s' is a journal snapshot-recover moved aside "
                    "(its operation could not be completed): fix what else "
                    "is reported here, then remove it", path);
            continue;
        }
        if (!fnmatch("*.tmp", n, 0)) {
            /* said once for all (an interrupted batch leaves thousands) */
            if (!ntmp++) tmp1 = path;
            continue;
        }
        problem(gc, cs, "'%s' belongs to no record", path);
    }
    if (ntmp == 1)
        problem(gc, cs, "'%s' is left by an interrupted write (the next "
                "command that changes the records removes it)", tmp1);
    else if (ntmp)
        problem(gc, cs, "%d files *.tmp ('%s'...) are left by an "
                "interrupted write (the next command that changes the "
                "records removes them)", ntmp, tmp1);

    /* what the domain record says a disk ran on last: also a disk the
     * domain no longer has (its snapshots' deletes merge it) */
    for (i = 0; i < t->dom.num_disks; i++) {
        if (t->dom.disks[i].path) know(gc, cs, t->dom.disks[i].path);
        /* what a block-copy pivoted away from is kept on purpose */
        for (j = 0; j < t->dom.disks[i].num_copied_from; j++)
            know(gc, cs, t->dom.disks[i].copied_from[j]);
    }
    /* a backup's images, while it goes on (a pull's fleecing overlays
     * are beside the disks' images) */
    {
        const char **bf;
        int nb = libxl__backup_files(gc, &cs->op.st, &bf);
        for (i = 0; i < nb; i++) know(gc, cs, bf[i]);
    }
    /* overlays beside each configured image: <stem>.*.qcow2 */
    for (i = 0; i < cs->op.cfg.num_disks; i++) {
        const libxl_device_disk *dk = &cs->op.cfg.disks[i];
        const char *dname, *pat;

        if (!dk->pdev_path || !*dk->pdev_path) continue;
        know(gc, cs, dk->pdev_path);
        if (job_disk(cs, dk->vdev)) continue;  /* its chain is unread */
        dname = libxl__path_dirname(gc, dk->pdev_path);
        pat = GCSPRINTF("%s.*.qcow2", libxl__path_stem(gc, dk->pdev_path));
        dir = opendir(dname);
        while (dir && (de = readdir(dir))) {
            const char *path = GCSPRINTF("%s/%s", dname, de->d_name);
            if (fnmatch(pat, de->d_name, 0) ||
                in_list(cs->known, cs->num_known, path))
                continue;
            problem(gc, cs, "'%s' looks like an overlay of disk %s, but no "
                    "record or active image uses it", path, dk->vdev);
        }
        if (dir) closedir(dir);
    }
}

int libxlsnap_domain_snapshot_check(libxlsnap_ctx *ctx, const char *domain,
                                char ***problems_r, int *num_r,
                                const libxl_asyncop_how *ao_how)
{
    if (ARGS_MISSING(ctx, domain, problems_r, num_r)) return ERROR_INVAL;
    AO_CREATE(ctx, ao_how);
    EGC_INIT(ctx);
    check_state *cs;

    *problems_r = NULL;
    *num_r = 0;
    GCNEW(cs);
    cs->ao = ao;
    cs->problems_r = problems_r;
    cs->num_r = num_r;
    cs->op.ao = ao;
    cs->op.domain = GCSTRDUP(domain);
    cs->op.callback = check_begun;
    cs->op.read_only = true;
    libxl__snapshot_op_begin(egc, &cs->op);
    EGC_FREE;
    return AO_INPROGRESS;
}

/*
 * Checks 0 (what two records own) and 1-3 of the records' own images,
 * on a tree that is in memory only (snapshot-import-records, before it
 * writes it): no store, no domain, no block job; the qemu-img runs are
 * synchronous.  The problems, one line each, in *problems_r (gc).
 */
int libxl__snapshot_check_tree_records(libxl__gc *gc,
                                       const libxl__snapshot_tree *t,
                                       char ***problems_r)
{
    check_state *cs;

    GCNEW(cs);
    cs->op.tree = *t;
    check_owners(gc, cs);
    check_records(gc, cs);
    *problems_r = cs->problems;
    return cs->num;
}

/* The images checks 1-3 read with their chains (as they filter). */
static void prefetch_add(libxl__gc *gc, check_state *cs, const char *path)
{
    if (!libxl__file_exists(path) || in_list(cs->pf_paths, cs->num_pf, path))
        return;
    GCREALLOC_ARRAY(cs->pf_paths, cs->num_pf + 1);
    cs->pf_paths[cs->num_pf++] = path;
}

static void check_prefetch_list(libxl__gc *gc, check_state *cs)
{
    libxl__snapshot_tree *t = &cs->op.tree;
    libxl__domain *d = &cs->op.d;
    int i, j;

    for (i = 0; i < t->num_snaps; i++)
        for (j = 0; j < t->snaps[i].num_disks; j++) {
            const libxlsnap_disk_snapshot *ds = &t->snaps[i].disks[j];
            const libxl__snapshot_backend *be =
                libxl__snapshot_backend_of(ds);
            /* (as check_records: a volume backend has no image) */
            if (!be || !ds->file || be->volume || job_disk(cs, ds->vdev))
                continue;
            prefetch_add(gc, cs, ds->file);
        }
    for (i = 0; i < d->num_disks; i++) {
        const libxl_device_disk *dk = &d->disks[i];
        if (dk->is_cdrom || !dk->pdev_path || !*dk->pdev_path ||
            job_disk(cs, dk->vdev) || !libxl__image_is_file(dk->pdev_path))
            continue;
        prefetch_add(gc, cs, dk->pdev_path);
    }
    GCNEW_ARRAY(cs->pf_infos, cs->num_pf + 1);
    GCNEW_ARRAY(cs->pf_errs, cs->num_pf + 1);
}

/* Runs one qemu-img of the check as a step; callback when it exits. */
static int check_exec(libxl__egc *egc, check_state *cs,
                      const char *const *args, int timeout_ms,
                      libxl__exec_callback *callback)
{
    libxl__exec_init(&cs->es);
    cs->es.ao = cs->ao;
    cs->es.what = NULL;               /* the tool names the run */
    cs->es.args = args;
    cs->es.timeout_ms = timeout_ms;
    cs->es.quiet = true;              /* a failure is a problem listed */
    cs->es.callback = callback;
    return libxl__exec_start(egc, &cs->es);
}

static void check_begun(libxl__egc *egc, libxl__snapshot_op *op, int rc)
{
    check_state *cs = CONTAINER_OF(op, check_state, op);
    STATE_AO_GC(cs->ao);

    if (rc) goto out;
    check_tree(gc, cs);
    check_jobs(gc, cs);
    check_prefetch_list(gc, cs);
    cs->pf_next = 0;
    check_prefetch_next(egc, cs);
    return;
 out:
    check_done(egc, cs, rc);
}

static void check_prefetch_next(libxl__egc *egc, check_state *cs)
{
    STATE_AO_GC(cs->ao);
    int rc;

    if (cs->pf_next == cs->num_pf) {
        check_probed(egc, cs);
        return;
    }
    rc = check_exec(egc, cs,
                    libxl__qemu_img_info_args(gc, cs->pf_paths[cs->pf_next],
                                              true),
                    CHECK_TIMEOUT_MS, check_prefetch_done);
    if (rc) check_done(egc, cs, rc);
}

static void check_prefetch_done(libxl__egc *egc, libxl__exec_state *es,
                                int rc, int status)
{
    check_state *cs = CONTAINER_OF(es, check_state, es);
    STATE_AO_GC(cs->ao);
    int i = cs->pf_next;

    if (rc == ERROR_ABORTED) goto out;
    cs->pf_infos[i] = libxl__qemu_img_info_parse(gc, rc, es->out, es->err,
                                                 &cs->pf_errs[i]);
    cs->pf_next++;
    check_prefetch_next(egc, cs);
    return;
 out:
    check_done(egc, cs, rc);
}

static void check_probed(libxl__egc *egc, check_state *cs)
{
    STATE_AO_GC(cs->ao);

    check_records(gc, cs);
    check_active(gc, cs);
    check_running(gc, cs);
    check_unowned(gc, cs);
    /* each checkpoint's bitmap on each disk: missing, inconsistent */
    libxl__checkpoint_check(gc, &cs->op.st, &cs->op.d, &cs->problems,
                            &cs->num);
    cs->img_next = 0;
    check_images_next(egc, cs);
}

/* 4: qemu-img info, then qemu-img check, of each qcow2 image known */
static void check_images_next(libxl__egc *egc, check_state *cs)
{
    STATE_AO_GC(cs->ao);
    int rc;

    while (cs->img_next < cs->num_known &&
           in_list(cs->busy, cs->num_busy, cs->known[cs->img_next]))
        cs->img_next++;
    if (cs->img_next == cs->num_known) {
        check_done(egc, cs, 0);
        return;
    }
    rc = check_exec(egc, cs,
                    libxl__qemu_img_info_args(gc, cs->known[cs->img_next],
                                              false),
                    CHECK_TIMEOUT_MS, check_image_info_done);
    if (rc) check_done(egc, cs, rc);
}

static void check_image_info_done(libxl__egc *egc, libxl__exec_state *es,
                                  int rc, int status)
{
    check_state *cs = CONTAINER_OF(es, check_state, es);
    STATE_AO_GC(cs->ao);
    const char *image = cs->known[cs->img_next], *fmt;
    yajl_val info;

    if (rc == ERROR_ABORTED) goto out;
    info = libxl__qemu_img_info_parse(gc, rc, es->out, es->err, NULL);
    fmt = info ? libxl__json_get_string(info, "format") : NULL;
    if (!fmt || strcmp(fmt, "qcow2")) {
        cs->img_next++;
        check_images_next(egc, cs);
        return;
    }
    check_tags(gc, cs, image, info);
    rc = check_exec(egc, cs, libxl__qemu_img_check_args(gc, image, false),
                    CHECK_TIMEOUT_MS, check_image_checked);
    if (rc) goto out;
    return;
 out:
    check_done(egc, cs, rc);
}

static void check_image_checked(libxl__egc *egc, libxl__exec_state *es,
                                int rc, int status)
{
    check_state *cs = CONTAINER_OF(es, check_state, es);
    STATE_AO_GC(cs->ao);
    const char *image = cs->known[cs->img_next];
    long long corrupt, errors, leaks;
    yajl_val res;

    if (rc == ERROR_ABORTED) goto out;
    /* it exits non-zero when it finds something, and still reports */
    res = libxl__json_parse(gc, es->out);
    if (!res) {
        problem(gc, cs, "image '%s': qemu-img check failed: %s", image,
                libxl__printable(gc, es->err));
    } else {
        corrupt = libxl__json_get_integer(res, "corruptions", 0);
        errors = libxl__json_get_integer(res, "check-errors", 0);
        leaks = libxl__json_get_integer(res, "leaks", 0);
        if (corrupt || errors)
            problem(gc, cs, "image '%s': qemu-img check: %lld "
                    "corruption(s), %lld error(s)", image, corrupt, errors);
        else if (leaks && !cs->op.d.running)
            problem(gc, cs, "image '%s': qemu-img check: %lld leaked "
                    "cluster(s) (a killed QEMU leaves them; snapshot-recover "
                    "repairs them)", image, leaks);
    }
    cs->img_next++;
    check_images_next(egc, cs);
    return;
 out:
    check_done(egc, cs, rc);
}

static void check_done(libxl__egc *egc, check_state *cs, int rc)
{
    STATE_AO_GC(cs->ao);
    int i;

    libxl__snapshot_op_end(gc, &cs->op);
    if (!rc && cs->num) {
        char **p = calloc(cs->num + 1, sizeof(*p));
        if (!p) abort();
        for (i = 0; i < cs->num; i++) p[i] = strdup(cs->problems[i]);
        *cs->problems_r = p;
        *cs->num_r = cs->num;
    }
    libxl__ao_complete(egc, ao, rc);
}

void libxlsnap_strings_free(char **s, int n)
{
    int i;
    for (i = 0; s && i < n; i++) free(s[i]);
    free(s);
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
