/*
 * libxl_snapshot_list.c - reading the snapshot tree
 *
 * Listing takes no lock: records are replaced by rename, so a reader
 * sees each record either before or after a change, never half of it.
 * What it returns is a deep copy the caller owns and frees with
 * libxlsnap_domain_snapshot_list_free / _dispose.  The list is sorted by
 * creation time (then name), parents before their children.  Getting
 * one snapshot reads only its record and the domain's (the records
 * keep their children and parent; a parent or child without a record
 * is corrected as a full load would), so snapshot-info costs the same
 * at 10 snapshots as at 10,000.
 */
#include "libxl_snapshot_internal.h"

/*
 * The whole tree, or (name) only that snapshot's record.  A journal no
 * recovery can complete (unreadable, or an operation this version does
 * not know) does not stop a listing, which changes nothing: it is said
 * in one warning line, with what moves it aside (the commands that
 * change the domain refuse until then).
 */
int libxl__snapshot_tree_load(libxl__gc *gc, const char *domain,
                              const char *name,
                              libxl__snapshot_tree *tree_r)
{
    libxl__domain d;
    libxl__snapshot_store st;
    const char *journal, *op;
    int rc;

    rc = libxl__domain_identify(gc, domain, &d, NULL);
    if (rc) return rc;
    rc = libxl__snapshot_store_open(gc, CTX->state_dir, &d.uuid, &st);
    if (rc) return rc;
    journal = libxl__journal_pending(gc, &st, &op);
    if (journal && !libxl__journal_op_known(op))
        LOG(WARN, "domain %s: the journal %s cannot be completed "
            "(unreadable, or an operation this version does not know): "
            "listed as the records stand; xl snapshot-recover %s moves "
            "it aside", d.name, journal, d.name);
    rc = name ? libxl__snapshot_store_load_one(gc, &st, name, tree_r)
              : libxl__snapshot_store_load(gc, &st, tree_r);
    if (!rc && journal && op && !strcmp(op, "redefine"))
        libxl__redefine_hide(gc, &st, tree_r);   /* all or none */
    return rc;
}

/* The problem of each disk on a volume backend (LVM: quick to ask),
 * for the caller's copy (not recorded). */
static void fill_problems(libxl__gc *gc, libxl__backend_cache *c,
                          libxlsnap_domain_snapshot *s)
{
    int i;
    const char *p;

    for (i = 0; i < s->num_disks; i++) {
        const libxl__snapshot_backend *be =
            libxl__snapshot_backend_of(&s->disks[i]);
        if (!be || !be->volume) continue;
        p = libxl__disk_snapshot_check(gc, c, &s->disks[i], NULL);
        if (p) s->disks[i].problem = libxl__gc_strdup(NOGC, p);
    }
}

int libxlsnap_domain_snapshot_list(libxlsnap_ctx *ctx, const char *domain,
                               libxlsnap_domain_snapshot **list_r, int *nb_r)
{
    if (ARGS_MISSING(ctx, domain, list_r, nb_r)) return ERROR_INVAL;
    GC_INIT(ctx);
    libxl__snapshot_tree t;
    libxl__backend_cache bc = { { 0 } };
    libxlsnap_domain_snapshot *l;
    int i, rc;

    *list_r = NULL;
    *nb_r = 0;
    rc = libxl__snapshot_tree_load(gc, domain, NULL, &t);
    if (rc) goto out;
    l = calloc(t.num_snaps ? t.num_snaps : 1, sizeof(*l));
    if (!l) abort();
    for (i = 0; i < t.num_snaps; i++) {
        libxlsnap_domain_snapshot_init(&l[i]);
        libxl__domain_snapshot_copy(&l[i], &t.snaps[i]);
        fill_problems(gc, &bc, &l[i]);
    }
    *list_r = l;
    *nb_r = t.num_snaps;
 out:
    GC_FREE;
    return rc;
}

int libxlsnap_domain_snapshot_get(libxlsnap_ctx *ctx, const char *domain,
                              const char *name,
                              libxlsnap_domain_snapshot *snapshot_r)
{
    if (ARGS_MISSING(ctx, domain, name, snapshot_r)) return ERROR_INVAL;
    GC_INIT(ctx);
    libxl__snapshot_tree t;
    libxl__backend_cache bc = { { 0 } };
    libxlsnap_domain_snapshot *s;
    int rc;

    rc = libxl__snapshot_tree_load(gc, domain, name, &t);
    if (rc && rc != ERROR_NOTFOUND) goto out;
    s = rc ? NULL : libxl__snapshot_tree_find(&t, name);
    if (!s) {
        LOG(ERROR, "domain %s has no snapshot named '%s'",
            libxl__printable(gc, domain), libxl__printable(gc, name));
        rc = ERROR_NOTFOUND;
        goto out;
    }
    libxlsnap_domain_snapshot_init(snapshot_r);
    libxl__domain_snapshot_copy(snapshot_r, s);
    fill_problems(gc, &bc, snapshot_r);
 out:
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
