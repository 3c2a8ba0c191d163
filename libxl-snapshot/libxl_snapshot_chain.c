/*
 * libxl_snapshot_chain.c - how long a disk's backing chain may grow
 *
 * Every external snapshot puts one more image on top of its disk's
 * backing chain, and each image is one more lookup on every read the
 * guest makes that the upper images miss, one more open file, one more
 * place a leak or a crash can hurt.  The limit is the setting max_chain
 * (libxl__snapshot_setting: environment, domain config, host file,
 * default 16): the images of one disk's chain, from the base image to
 * the image the guest writes to, base included.  Internal snapshots
 * (and LVM, RBD) do not lengthen chains.
 *
 * snapshot-create asks libxl__chain_limit after its plan and before
 * anything is written: the chain of each disk it would put an overlay
 * on (qcow2 or VHD), read with `qemu-img info --backing-chain` (VHD
 * chains completed by their backend; a chain that cannot be read is
 * not checked: the snapshot fails on it anyway, saying why), plus one.
 * Over the limit it
 * refuses, in one line naming the disk, its chain (length, top and
 * bottom files) and three ways to shorten it; or, asked to
 * (LIBXLSNAP_CREATE_AUTO_COMMIT), it names a layer to merge first:
 *
 * A layer X (an image of the chain above its backing P) may be merged
 * into P when no snapshot needs P's own data, which a merge changes:
 * no record has P as the frozen image of a chained (external) disk
 * snapshot.  A record whose frozen image is X itself follows the merge
 * to P (same data: the commit's records move it); an internal snapshot
 * inside P survives it (qcow2 copies its clusters first), but one
 * inside X would go with X, so such an X is not merged.  Merged only
 * into the domain config's image or an image above it in the chain,
 * never below it (a template other domains may share); when the
 * config's image is not in the chain (a block-copy pivoted the disk),
 * into none.  Images are compared as files (device and inode), not by
 * their spelling.  The oldest
 * such layer (nearest the base) goes first: `xl block-commit --shallow
 * --delete` of it, by the commit machinery (live a QMP commit, an
 * active one pivoting; offline qemu-img commit; its job record, its
 * recovery, its progress and its abort), after which the create starts
 * again from its lock (libxl_snapshot_create.c).
 *
 * libxlsnap_domain_disk_chains gives each disk's chain and the limit,
 * for `xl snapshot-chain` and xl-snapshot-rotate, which deletes old
 * snapshots until every chain has room for the next one.
 */
#include "libxl_snapshot_internal.h"

#include <sys/stat.h>

/* the deepest chain read from headers (max_chain's own maximum) */
#define CHAIN_HEADERS_MAX 1000

bool libxl__image_chain_headers(libxl__gc *gc, const char *top,
                                libxl_disk_format fmt,
                                libxl__image_chain *c)
{
    const char *img = top;
    int k;

    /* each image read as the format its parent's header names (the
     * top's: the records'), never guessed from its first bytes (a raw
     * disk's are the guest's) */
    memset(c, 0, sizeof(*c));
    if (fmt != LIBXL_DISK_FORMAT_QCOW2) return false;
    for (k = 0; k < CHAIN_HEADERS_MAX; k++) {
        libxl__qcow2 q;
        const char *b;

        GCREALLOC_ARRAY(c->files, k + 1);
        c->files[k] = img;
        if (access(img, F_OK)) return false;      /* qemu-img says why */
        if (!libxl__image_is_file(img)) return false;
        if (libxl__qcow2_open(gc, img, &q)) return false;
        libxl__qcow2_close(&q);
        if (!k) {
            c->virtual_size = q.size;
            c->cluster_size = q.cluster_size;
            c->num_snaps = q.num_snaps;
        }
        b = q.backing;
        if (!b || !*b) break;
        if (!strncmp(b, "json:", 5) || (strchr(b, ':') && b[0] != '/'))
            return false;                       /* a protocol's */
        img = b[0] == '/' ? b
            : GCSPRINTF("%s/%s", libxl__path_dirname(gc, img), b);
        if (!q.backing_format) return false;    /* qemu-img would guess */
        if (strcmp(q.backing_format, "qcow2")) {
            /* a raw (or other one-layer) base: the chain's last */
            if (strcmp(q.backing_format, "raw")) return false;
            k++;
            GCREALLOC_ARRAY(c->files, k + 1);
            c->files[k] = img;
            break;
        }
    }
    if (k == CHAIN_HEADERS_MAX) return false;
    c->n = k + 1;
    c->known = true;
    return true;
}

void libxl__image_chain_qemu_img(libxl__gc *gc, yajl_val chain,
                                 const char *why, libxl__image_chain *c)
{
    yajl_val top;

    memset(c, 0, sizeof(*c));
    c->n = chain ? libxl__qemu_img_chain_files(gc, chain, &c->files) : 0;
    if (!c->n) {
        c->why = why ? why : "no backing chain";
        return;
    }
    top = chain->u.array.values[0];
    c->virtual_size = libxl__json_get_integer(top, "virtual-size", 0);
    c->cluster_size = libxl__json_get_integer(top, "cluster-size", 0);
    top = libxl__json_get(top, "snapshots");
    c->num_snaps = top && YAJL_IS_ARRAY(top) ? top->u.array.len : 0;
    c->known = true;
}

/* The limit, and where it comes from ("built-in default"...). */
int libxl__chain_max(libxl__gc *gc, const libxl__domain_config *cfg,
                     long *max_r, const char **from_r)
{
    return libxl__snapshot_setting_from(gc, cfg && cfg->file ? cfg : NULL,
                                        "max_chain",
                                        LIBXL_SNAPSHOT_MAX_CHAIN, 2, 1000,
                                        max_r, from_r);
}

/* (paths compared as files: a chain names them as its headers do) */
static int chain_index(libxl__gc *gc, const char **files, int n,
                       const char *path)
{
    int i;

    for (i = 0; path && i < n; i++)
        if (libxl__image_same(gc, files[i], path)) return i;
    return -1;
}

/*
 * The record disks of vdev with a backend, in turn: start with *i = 0,
 * *j = -1; false once there are no more.
 */
static bool next_disk(const libxl__snapshot_tree *t, const char *vdev,
                      int *i, int *j, const libxlsnap_domain_snapshot **s_r,
                      const libxlsnap_disk_snapshot **ds_r,
                      const libxl__snapshot_backend **be_r)
{
    for (; *i < t->num_snaps; (*i)++, *j = -1) {
        const libxlsnap_domain_snapshot *s = &t->snaps[*i];
        while (++*j < s->num_disks) {
            *s_r = s;
            *ds_r = &s->disks[*j];
            *be_r = libxl__snapshot_backend_of(*ds_r);
            if (*be_r && (*ds_r)->file && !strcmp((*ds_r)->vdev, vdev))
                return true;
        }
    }
    return false;
}

/*
 * The oldest snapshot (its image lowest in the chain) whose external
 * disk snapshot of vdev froze an image of the chain, or NULL.
 */
static const char *oldest_on_chain(libxl__gc *gc,
                                   const libxl__snapshot_tree *t,
                                   const char *vdev, const char **files,
                                   int n)
{
    const libxlsnap_domain_snapshot *s;
    const libxlsnap_disk_snapshot *ds;
    const libxl__snapshot_backend *be;
    const char *name = NULL;
    int i = 0, j = -1, k, best = -1;

    while (next_disk(t, vdev, &i, &j, &s, &ds, &be)) {
        k = be->chained ? chain_index(gc, files, n, ds->file) : -1;
        if (k > best) {
            best = k;
            name = s->name;
        }
    }
    return name;
}

/* Does a record of vdev need file: as its frozen image (chained), or,
 * in_image, as the image its snapshot is inside? */
static bool needed(libxl__gc *gc, const libxl__snapshot_tree *t,
                   const char *vdev, const char *file, bool in_image)
{
    const libxlsnap_domain_snapshot *s;
    const libxlsnap_disk_snapshot *ds;
    const libxl__snapshot_backend *be;
    int i = 0, j = -1;

    while (next_disk(t, vdev, &i, &j, &s, &ds, &be))
        if (be->in_image == in_image && libxl__image_same(gc, ds->file, file))
            return true;
    return false;
}

/*
 * The oldest layer of the chain (files, top first) that may be merged
 * into its backing (see the design comment): its index, or -1.
 */
static int mergeable_layer(libxl__gc *gc, libxl__snapshot_op *op,
                           const char *vdev, const char **files, int n)
{
    const libxl_device_disk *cd = NULL;
    int i, bottom;

    for (i = 0; i < op->cfg.num_disks; i++)
        if (op->cfg.disks[i].vdev && !strcmp(op->cfg.disks[i].vdev, vdev))
            cd = &op->cfg.disks[i];
    bottom = cd ? chain_index(gc, files, n, cd->pdev_path) : -1;
    /* (the config's image not in the chain: none is known to be ours) */
    for (i = bottom - 1; i >= 0; i--) {
        if (needed(gc, &op->tree, vdev, files[i + 1], false)) continue;
        if (needed(gc, &op->tree, vdev, files[i], true)) continue;
        return i;
    }
    return -1;
}

int libxl__chain_limit(libxl__gc *gc, libxl__snapshot_op *op,
                       const libxlsnap_domain_snapshot *s,
                       const libxl__image_chain *chains, bool auto_commit,
                       libxl__chain_merge *m_r)
{
    const char **files, **worst_files = NULL;
    const char *from, *worst = NULL, *oldest;
    long max;
    int i, n, worst_n = 0, layer, rc;

    memset(m_r, 0, sizeof(*m_r));
    rc = libxl__chain_max(gc, &op->cfg, &max, &from);
    if (rc) return rc;
    for (i = 0; i < s->num_disks; i++) {
        const libxlsnap_disk_snapshot *ds = &s->disks[i];
        const libxl__snapshot_backend *be = libxl__snapshot_backend_of(ds);

        if (!be || !be->chained) continue;
        files = chains[i].files;
        n = chains[i].known ? chains[i].n : 0;
        if (!n) {
            /* the snapshot itself fails on it, saying why (a dry run
             * of a config whose images are still to be made passes) */
            LOG(DEBUG, "disk %s: cannot read the backing chain of '%s' "
                "(not checked against max_chain)", ds->vdev, ds->file);
            continue;
        }
        if (n + 1 > max && n > worst_n) {
            worst = ds->vdev;
            worst_files = files;
            worst_n = n;
        }
    }
    if (!worst) return 0;

    rc = libxl__snapshot_op_load_all(gc, op);
    if (rc) return rc;
    oldest = oldest_on_chain(gc, &op->tree, worst, worst_files, worst_n);
    layer = mergeable_layer(gc, op, worst, worst_files, worst_n);
    if (!auto_commit) {
        /* the ways that work: a block commit only of a layer no
         * snapshot needs (any other drops snapshots) */
        const char *del = oldest
            ? GCSPRINTF("xl snapshot-delete %s %s", op->d.name, oldest)
            : NULL;
        const char *commit = layer < 0 ? NULL
            : GCSPRINTF("xl block-commit --shallow --delete %s--top=%s "
                        "%s %s, or snapshot-create --auto-commit",
                        layer ? "" : "--active --pivot ",
                        worst_files[layer], op->d.name, worst);
        LOG(ERROR, "domain %s: disk %s: its backing chain is %d images "
            "(%s down to %s): a new snapshot would make it %d, over "
            "max_chain %ld (%s); %s%s%s%s", op->d.name, worst, worst_n,
            worst_files[0], worst_files[worst_n - 1], worst_n + 1, max, from,
            del || commit ? "shorten it first: " : "no snapshot or layer of "
            "it is xl's to merge: raise max_chain",
            del ? del : "", del && commit ? ", " : "",
            commit ? commit : del ? " (every layer of it is needed by a "
            "snapshot)" : "");
        return ERROR_INVAL;
    }
    if (layer < 0) {
        LOG(ERROR, "domain %s: disk %s: its backing chain is %d images "
            "(%s down to %s), %s max_chain %ld (%s), and %s", op->d.name,
            worst, worst_n, worst_files[0], worst_files[worst_n - 1],
            worst_n > max ? "over" : "at", max, from, oldest
            ? GCSPRINTF("every layer of it is needed by a snapshot: delete "
                        "one first: xl snapshot-delete %s %s", op->d.name,
                        oldest)
            : "no layer of it is xl's to merge: raise max_chain");
        return ERROR_INVAL;
    }
    m_r->vdev = worst;
    m_r->top = worst_files[layer];
    m_r->base = worst_files[layer + 1];
    m_r->active = layer == 0;
    m_r->length = worst_n;
    m_r->max = max;
    return 1;
}

/* ---------------------------------------------------------------- */
/* public: each disk's chain */

void libxlsnap_disk_chain_list_free(libxlsnap_disk_chain *l, int n)
{
    int i;

    for (i = 0; l && i < n; i++) {
        free(l[i].vdev);
        libxlsnap_strings_free(l[i].files, l[i].num_files);
    }
    free(l);
}

int libxlsnap_domain_disk_chains(libxlsnap_ctx *ctx, const char *domain,
                                 long *max_chain_r,
                                 libxlsnap_disk_chain **chains_r, int *num_r)
{
    if (ARGS_MISSING(ctx, domain, max_chain_r, chains_r, num_r))
        return ERROR_INVAL;
    GC_INIT(ctx);
    libxl__domain d;
    libxl__domain_config cfg;
    libxlsnap_disk_chain *l = NULL;
    const char **files;
    char *err = NULL;
    int i, j, n, num = 0, rc;

    *chains_r = NULL;
    *num_r = 0;
    memset(&cfg, 0, sizeof(cfg));
    rc = libxl__domain_identify(gc, domain, &d, &cfg);
    if (rc) goto out;
    rc = libxl__chain_max(gc, &cfg, max_chain_r, NULL);
    if (rc) goto out;
    l = calloc(d.num_disks + 1, sizeof(*l));
    if (!l) abort();
    for (i = 0; i < d.num_disks; i++) {
        const libxl_device_disk *dk = &d.disks[i];
        libxlsnap_disk_chain *c;

        struct stat st;

        if (dk->is_cdrom || !dk->pdev_path || !*dk->pdev_path) continue;
        /* image files: volumes (LVM, RBD) have no backing chain */
        if (stat(dk->pdev_path, &st) || !S_ISREG(st.st_mode)) continue;
        rc = libxl__qemu_img_chain(gc, dk->pdev_path, &files, &n, &err);
        if (rc) {
            LOG(ERROR, "disk %s: cannot read the backing chain of '%s': %s",
                dk->vdev, dk->pdev_path, err);
            goto out;
        }
        c = &l[num++];
        c->vdev = strdup(dk->vdev);
        c->files = calloc(n + 1, sizeof(*c->files));
        if (!c->vdev || !c->files) abort();
        for (j = 0; j < n; j++)
            if (!(c->files[c->num_files++] = strdup(files[j]))) abort();
    }
    *chains_r = l;
    *num_r = num;
    l = NULL;
    rc = 0;
 out:
    libxlsnap_disk_chain_list_free(l, num);
    GC_FREE;
    return rc;
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
