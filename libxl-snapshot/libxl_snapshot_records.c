/*
 * libxl_snapshot_records.c - a domain's records carried to another host
 *
 * For hosts that share the storage of a domain's images but not a
 * record store (the directory store on a local disk): export writes the
 * domain's records as one JSON document, import writes them into this
 * host's store (whichever it is: only the store interface is used).
 *
 * The document (libxl-json, versioned):
 *   { "format": "libxl-snapshot-records", "version": 1,
 *     "uuid": "<the domain's>", "name": "<its name>",
 *     "domain": { <domain.libxl-json: active images, current> },
 *     "snapshots": [ { <snapshotdata-NAME.libxl-json> }, ... ],
 *     "checkpoints": [ { <checkpoint-NAME.libxl-json> }, ... ] }
 * ("checkpoints" may be absent: an export of a version without them.)
 *
 * Export runs under the domain's lock, after the recovery every
 * operation does, and is refused while a journal is left (recovery
 * could not complete it) or a disk is in a block job: the records would
 * say a state the images are not in.
 *
 * Import checks everything before it writes anything, under the lock:
 * the document (format, version, every record as the store would load
 * it, unique names, parents there, no loop, the current one there), the
 * uuid (the domain's here: the records are kept by it), that the domain
 * has no records yet (LIBXLSNAP_IMPORT_FORCE replaces them), that a
 * running domain runs on the active images the document names, and
 * that every image the records name is reachable from this host (files,
 * LVM volumes, RBD images and their snapshots, memory images: the
 * backends' image_problem).  Then one save of the whole tree (the
 * store's order: a crash leaves the old domain record with some new
 * snapshot records, which snapshot-check reports); a failed save puts
 * the old tree back.
 */
#include "libxl_snapshot_internal.h"

#define RECORDS_FORMAT "libxl-snapshot-records"
#define RECORDS_VERSION 1

typedef struct {
    libxl__ao *ao;
    libxl__snapshot_op op;
    bool import;
    unsigned flags;
    char **json_r;                    /* export */
    const char *json;                 /* import */
} records_state;

static void records_begun(libxl__egc *egc, libxl__snapshot_op *op, int rc);

static int records_start(libxlsnap_ctx *ctx, const char *domain,
                         bool import, unsigned flags, char **json_r,
                         const char *json, const libxl_asyncop_how *ao_how)
{
    AO_CREATE(ctx, ao_how);
    EGC_INIT(ctx);
    records_state *rs;

    GCNEW(rs);
    rs->ao = ao;
    rs->import = import;
    rs->flags = flags;
    rs->json_r = json_r;
    rs->json = json ? GCSTRDUP(json) : NULL;
    rs->op.ao = ao;
    rs->op.domain = GCSTRDUP(domain);
    rs->op.callback = records_begun;
    if (import) {
        /* a domain this host does not know yet: the config its records
         * name, when it is here (resolve checks it is the domain's) */
        yajl_val doc = libxl__json_parse(gc, rs->json);
        yajl_val dom = doc ? libxl__json_get(doc, "domain") : NULL;
        rs->op.config_if_unknown =
            dom ? libxl__json_get_string(dom, "config_file") : NULL;
    }
    libxl__snapshot_op_begin(egc, &rs->op);
    EGC_FREE;
    return AO_INPROGRESS;
}

int libxlsnap_domain_records_export(libxlsnap_ctx *ctx, const char *domain,
                                    char **json_r,
                                    const libxl_asyncop_how *ao_how)
{
    if (ARGS_MISSING(ctx, domain, json_r)) return ERROR_INVAL;
    *json_r = NULL;
    return records_start(ctx, domain, false, 0, json_r, NULL, ao_how);
}

int libxlsnap_domain_records_import(libxlsnap_ctx *ctx, const char *domain,
                                    const char *json, unsigned flags,
                                    const libxl_asyncop_how *ao_how)
{
    if (ARGS_MISSING(ctx, domain, json) ||
        FLAGS_UNKNOWN(ctx, flags, LIBXLSNAP_IMPORT_FORCE))
        return ERROR_INVAL;
    return records_start(ctx, domain, true, flags, NULL, json, ao_how);
}

static int export_records(libxl__gc *gc, records_state *rs)
{
    libxl__snapshot_op *op = &rs->op;
    yajl_val doc = NULL, arr, v;
    char uuid[LIBXL_UUID_FMTLEN + 1];
    char *text;
    int i;

    snprintf(uuid, sizeof(uuid), LIBXL_UUID_FMT, LIBXL_UUID_BYTES(op->d.uuid));
    libxl__json_add_string(gc, &doc, "format", RECORDS_FORMAT);
    libxl__json_add_integer(gc, &doc, "version", RECORDS_VERSION);
    libxl__json_add_string(gc, &doc, "uuid", uuid);
    libxl__json_add_string(gc, &doc, "name", op->d.name);
    text = libxl__domain_record_to_json(gc, &op->tree.dom);
    if (!text || !(v = libxl__json_parse(gc, text))) return ERROR_FAIL;
    libxl__json_add(gc, &doc, "domain", v);
    arr = libxl__json_add_array(gc, &doc, "snapshots");
    for (i = 0; i < op->tree.num_snaps; i++) {
        text = libxlsnap_domain_snapshot_to_json(CTX, &op->tree.snaps[i]);
        if (!text) return ERROR_FAIL;
        libxl__gc_adopt(gc, text);
        v = libxl__json_parse(gc, text);
        if (!v) return ERROR_FAIL;
        libxl__json_append(gc, arr, v);
    }
    {
        libxl__checkpoint_list cl;
        int rc = libxl__checkpoint_load(gc, &op->st, false, &cl);
        if (rc) return rc;
        arr = libxl__json_add_array(gc, &doc, "checkpoints");
        for (i = 0; i < cl.num; i++)
            libxl__json_append(gc, arr,
                               libxl__checkpoint_to_tree(gc, &cl.cps[i]));
    }
    text = libxl__json_to_string(gc, doc);
    if (!text) return ERROR_FAIL;
    *rs->json_r = strdup(text);
    if (!*rs->json_r) return ERROR_NOMEM;
    return 0;
}

/* why one image of a record is not reachable here, or NULL */
static const char *disk_unreachable(libxl__gc *gc,
                                    const libxlsnap_disk_snapshot *ds)
{
    const char **tags;
    const char *why;
    int i, n;

    if (ds->type == LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO) return NULL;
    if (!ds->file || !*ds->file) return "names no image";
    why = libxl__image_problem(gc, ds->file, &tags, &n);
    if (why) return GCSPRINTF("'%s' %s", ds->file, why);
    if (ds->type == LIBXLSNAP_DISK_SNAPSHOT_TYPE_LVM && ds->tag) {
        const char *lv = GCSPRINTF("%s/%s", libxl__path_dirname(gc, ds->file),
                                   ds->tag);
        why = libxl__image_missing(gc, lv);
        if (why) return GCSPRINTF("'%s' %s", lv, why);
    }
    if (ds->type == LIBXLSNAP_DISK_SNAPSHOT_TYPE_RBD && ds->tag) {
        for (i = 0; i < n && strcmp(tags[i], ds->tag); i++)
            ;
        if (i == n)
            return GCSPRINTF("'%s' has no snapshot '%s'", ds->file, ds->tag);
    }
    return NULL;
}

/* the snapshot whose name is name, among the first n of snaps */
static bool has_snapshot(const libxlsnap_domain_snapshot *snaps, int n,
                         const char *name)
{
    int i;

    for (i = 0; i < n; i++)
        if (!strcmp(snaps[i].name, name)) return true;
    return false;
}

/* vdev is a disk of the domain (its config, or its running QEMU) */
static bool domain_has_disk(libxl__snapshot_op *op, const char *vdev)
{
    int i;

    for (i = 0; i < op->cfg.num_disks; i++)
        if (op->cfg.disks[i].vdev && !strcmp(op->cfg.disks[i].vdev, vdev))
            return true;
    return libxl__domain_disk(&op->d, vdev) != NULL;
}

/*
 * The document's checkpoints (none when it has no "checkpoints"): each
 * a valid record of this domain, of a disk it has, named once.
 */
static int import_checkpoints(libxl__gc *gc, libxl__snapshot_op *op,
                              yajl_val doc, const libxl_uuid *u,
                              libxl__checkpoint_list *l)
{
    yajl_val arr = libxl__json_get(doc, "checkpoints");
    const char *why;
    size_t i;
    int k;

    memset(l, 0, sizeof(*l));
    if (!arr || YAJL_IS_NULL(arr)) return 0;
    if (!YAJL_IS_ARRAY(arr)) {
        LOG(ERROR, "corrupt snapshot records: 'checkpoints' is not a list");
        return ERROR_INVAL;
    }
    GCNEW_ARRAY(l->cps, arr->u.array.len + 1);
    for (i = 0; i < arr->u.array.len; i++) {
        libxlsnap_checkpoint *cp = &l->cps[l->num];
        if (libxl__checkpoint_from_tree(gc, gc, arr->u.array.values[i], cp,
                                        &why)) {
            LOG(ERROR, "corrupt snapshot records: checkpoint %zu: %s", i,
                why);
            return ERROR_INVAL;
        }
        if (libxl__checkpoint_index(l, cp->name) >= 0) {
            LOG(ERROR, "corrupt snapshot records: checkpoint '%s' twice",
                cp->name);
            return ERROR_INVAL;
        }
        if (!libxl_uuid_is_nil(&cp->domain_uuid) &&
            libxl_uuid_compare(&cp->domain_uuid, u)) {
            LOG(ERROR, "corrupt snapshot records: checkpoint '%s' is of "
                "another domain", cp->name);
            return ERROR_INVAL;
        }
        for (k = 0; k < cp->num_disks; k++)
            if (!domain_has_disk(op, cp->disks[k].vdev)) {
                LOG(ERROR, "cannot import the records of %s: it has no "
                    "disk %s (checkpoint '%s')", op->d.name,
                    cp->disks[k].vdev, cp->name);
                return ERROR_INVAL;
            }
        l->num++;
    }
    return 0;
}

/*
 * The document names the domain it is of: its name (and the domain
 * record's) is the domain's, and its config file, when it is on this
 * host (or when this host knows none for the domain), is the domain's
 * config (name=, and uuid= if it has one).
 */
static int check_identity(libxl__gc *gc, libxl__snapshot_op *op,
                          yajl_val doc, const libxl_uuid *u,
                          const libxl__domain_record *dom)
{
    libxl__domain_config cfg;
    const char *name = libxl__json_get_string(doc, "name");
    const char *file = dom->config_file;
    int rc;

    if (!name || strcmp(name, op->d.name) ||
        (dom->name && strcmp(dom->name, op->d.name))) {
        LOG(ERROR, "cannot import the records of %s: they are of domain "
            "'%s'", op->d.name,
            libxl__printable(gc, name && strcmp(name, op->d.name) ? name
                                 : dom->name ? dom->name : ""));
        return ERROR_INVAL;
    }
    if (!file || (op->d.config_file && !strcmp(file, op->d.config_file)))
        return 0;
    if (!libxl__file_exists(file)) {
        if (op->d.config_file) return 0;   /* this host's is used */
        LOG(ERROR, "cannot import the records of %s: the config file '%s' "
            "they name is missing", op->d.name, file);
        return ERROR_INVAL;
    }
    memset(&cfg, 0, sizeof(cfg));
    rc = libxl__domain_config_parse(gc, file, &cfg);
    if (rc) return rc;                /* said why, naming the file */
    if (strcmp(cfg.name, op->d.name) ||
        (cfg.have_uuid && libxl_uuid_compare(&cfg.uuid, u))) {
        LOG(ERROR, "cannot import the records of %s: the config file '%s' "
            "they name is domain %s's", op->d.name, file,
            strcmp(cfg.name, op->d.name) ? cfg.name
            : GCSPRINTF("uuid " LIBXL_UUID_FMT, LIBXL_UUID_BYTES(cfg.uuid)));
        return ERROR_INVAL;
    }
    return 0;
}

static int import_records(libxl__gc *gc, records_state *rs)
{
    libxl__snapshot_op *op = &rs->op;
    libxl__snapshot_tree t, old = op->tree;
    libxl__checkpoint_list cps, oldcps;
    yajl_val doc, v, arr;
    libxl_uuid u;
    const char *s, *why, *probs = NULL;
    char **cprobs;
    int i, j, n, rc, nprobs = 0;

    doc = libxl__json_parse(gc, rs->json);
    if (!doc || !YAJL_IS_OBJECT(doc) ||
        !(s = libxl__json_get_string(doc, "format")) ||
        strcmp(s, RECORDS_FORMAT)) {
        LOG(ERROR, "not a document of snapshot records (from xl "
            "snapshot-export-records)");
        return ERROR_INVAL;
    }
    v = libxl__json_get(doc, "version");
    if (!v || !YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) != RECORDS_VERSION) {
        LOG(ERROR, "snapshot records of an unknown version (this one "
            "reads version %d)", RECORDS_VERSION);
        return ERROR_INVAL;
    }
    s = libxl__json_get_string(doc, "uuid");
    if (!s || libxl_uuid_from_string(&u, s)) {
        LOG(ERROR, "corrupt snapshot records: no valid uuid");
        return ERROR_INVAL;
    }
    if (libxl_uuid_compare(&u, &op->d.uuid)) {
        LOG(ERROR, "the records are of the domain with uuid %s, domain %s "
            "has uuid " LIBXL_UUID_FMT, s, op->d.name,
            LIBXL_UUID_BYTES(op->d.uuid));
        return ERROR_INVAL;
    }

    memset(&t, 0, sizeof(t));
    v = libxl__json_get(doc, "domain");
    if (!v) {
        LOG(ERROR, "corrupt snapshot records: no domain record");
        return ERROR_INVAL;
    }
    rc = libxl__domain_record_from_json(gc, "(imported)", v, &t.dom);
    if (rc) return rc;
    if (!libxl_uuid_is_nil(&t.dom.uuid) &&
        libxl_uuid_compare(&t.dom.uuid, &u)) {
        LOG(ERROR, "corrupt snapshot records: the domain record has "
            "another uuid");
        return ERROR_INVAL;
    }
    rc = check_identity(gc, op, doc, &u, &t.dom);
    if (rc) return rc;
    arr = libxl__json_get(doc, "snapshots");
    if (!arr || !YAJL_IS_ARRAY(arr)) {
        LOG(ERROR, "corrupt snapshot records: no list of snapshots");
        return ERROR_INVAL;
    }
    t.num_snaps = arr->u.array.len;
    GCNEW_ARRAY(t.snaps, t.num_snaps + 1);
    for (i = 0; i < t.num_snaps; i++) {
        libxlsnap_domain_snapshot *sn = &t.snaps[i];
        rc = libxl__domain_snapshot_parse_json(gc, arr->u.array.values[i],
                                               sn);
        if (rc) return rc;            /* the parser said why */
        if (has_snapshot(t.snaps, i, sn->name)) {
            LOG(ERROR, "corrupt snapshot records: snapshot '%s' twice",
                sn->name);
            return ERROR_INVAL;
        }
        if (!libxl_uuid_is_nil(&sn->domain_uuid) &&
            libxl_uuid_compare(&sn->domain_uuid, &u)) {
            LOG(ERROR, "corrupt snapshot records: snapshot '%s' is of "
                "another domain", sn->name);
            return ERROR_INVAL;
        }
    }
    for (i = 0; i < t.num_snaps; i++) {
        const char *pa = t.snaps[i].parent;
        if (pa && !has_snapshot(t.snaps, t.num_snaps, pa)) {
            LOG(ERROR, "corrupt snapshot records: the parent '%s' of '%s' "
                "has no record", pa, t.snaps[i].name);
            return ERROR_INVAL;
        }
    }
    rc = import_checkpoints(gc, op, doc, &u, &cps);
    if (rc) return rc;
    libxl__snapshot_tree_fixup(gc, &t);
    if (t.num_damage) {
        LOG(ERROR, "corrupt snapshot records: %s", t.damage[0]);
        return ERROR_INVAL;
    }
    if (t.dom.current && !libxl__snapshot_tree_find(&t, t.dom.current)) {
        LOG(ERROR, "corrupt snapshot records: the current snapshot '%s' "
            "has no record", t.dom.current);
        return ERROR_INVAL;
    }

    /* every disk the records name, one the domain has */
    for (i = 0; i < t.dom.num_disks; i++)
        if (t.dom.disks[i].vdev &&
            !domain_has_disk(op, t.dom.disks[i].vdev))
            probs = GCSPRINTF("%s%sthe domain record's disk %s",
                              probs ? probs : "", probs ? ", " : "",
                              t.dom.disks[i].vdev);
    for (i = 0; i < t.num_snaps; i++)
        for (j = 0; j < t.snaps[i].num_disks; j++)
            if (t.snaps[i].disks[j].vdev &&
                !domain_has_disk(op, t.snaps[i].disks[j].vdev))
                probs = GCSPRINTF("%s%s%s's disk %s", probs ? probs : "",
                                  probs ? ", " : "", t.snaps[i].name,
                                  t.snaps[i].disks[j].vdev);
    if (probs) {
        LOG(ERROR, "cannot import the records of %s: it has no such disk: "
            "%s", op->d.name, probs);
        return ERROR_INVAL;
    }

    /* every image the records name, reachable from here */
    for (i = 0; i < t.dom.num_disks; i++) {
        const libxl__active_disk *a = &t.dom.disks[i];
        if (a->path && (why = libxl__image_missing(gc, a->path))) {
            probs = GCSPRINTF("%s%sdisk %s: '%s' %s", probs ? probs : "",
                              probs ? "; " : "", a->vdev, a->path, why);
            nprobs++;
        }
    }
    for (i = 0; i < t.num_snaps; i++) {
        const libxlsnap_domain_snapshot *sn = &t.snaps[i];
        for (j = 0; j < sn->num_disks; j++) {
            why = disk_unreachable(gc, &sn->disks[j]);
            if (!why) continue;
            probs = GCSPRINTF("%s%s%s/%s: %s", probs ? probs : "",
                              probs ? "; " : "", sn->name,
                              sn->disks[j].vdev, why);
            nprobs++;
        }
        if (sn->memory && (why = libxl__image_missing(gc, sn->memory))) {
            probs = GCSPRINTF("%s%s%s: memory image '%s' %s",
                              probs ? probs : "", probs ? "; " : "",
                              sn->name, sn->memory, why);
            nprobs++;
        }
    }
    if (nprobs) {
        LOG(ERROR, "cannot import the records of %s: %d image%s not "
            "reachable from this host: %s", op->d.name, nprobs,
            nprobs == 1 ? " is" : "s are", probs);
        return ERROR_INVAL;
    }

    /* what snapshot-check says of the records and their images */
    n = libxl__snapshot_check_tree_records(gc, &t, &cprobs);
    if (n) {
        for (i = 0, probs = NULL; i < n; i++)
            probs = GCSPRINTF("%s%s%s", probs ? probs : "",
                              probs ? "; " : "", cprobs[i]);
        LOG(ERROR, "cannot import the records of %s: %d problem%s "
            "snapshot-check would report: %s", op->d.name, n,
            n == 1 ? "" : "s", probs);
        return ERROR_INVAL;
    }

    rc = libxl__checkpoint_load(gc, &op->st, false, &oldcps);
    if (rc) return rc;
    if (oldcps.num && !(rs->flags & LIBXLSNAP_IMPORT_FORCE)) {
        LOG(ERROR, "domain %s already has %d checkpoint record%s here: "
            "LIBXLSNAP_IMPORT_FORCE replaces them", op->d.name,
            oldcps.num, oldcps.num == 1 ? "" : "s");
        return ERROR_DEVICE_EXISTS;
    }
    if (old.num_snaps && !(rs->flags & LIBXLSNAP_IMPORT_FORCE)) {
        LOG(ERROR, "domain %s already has %d snapshot record%s here: "
            "LIBXLSNAP_IMPORT_FORCE replaces them", op->d.name,
            old.num_snaps, old.num_snaps == 1 ? "" : "s");
        return ERROR_DEVICE_EXISTS;
    }
    if (op->d.running) {
        /* it runs here: on the images the records say it does */
        for (i = 0; i < t.dom.num_disks; i++) {
            const libxl__active_disk *a = &t.dom.disks[i];
            libxl_device_disk *dk = libxl__domain_disk(&op->d, a->vdev);
            if (a->path && dk && dk->pdev_path &&
                strcmp(dk->pdev_path, a->path)) {
                LOG(ERROR, "domain %s: disk %s runs on '%s', the records "
                    "say '%s'", op->d.name, a->vdev, dk->pdev_path, a->path);
                return ERROR_INVAL;
            }
        }
    }

    /* this host's names for the domain, its uuid */
    t.dom.name = op->d.name;
    libxl_uuid_copy(NULL, &t.dom.uuid, &op->d.uuid);
    if (op->d.config_file) t.dom.config_file = op->d.config_file;
    rc = libxl__snapshot_store_save(gc, &op->st, &t);
    if (rc) {
        LOG(ERROR, "domain %s: the records could not be written; the "
            "ones it had are put back", op->d.name);
        if (libxl__snapshot_store_save(gc, &op->st, &old))
            LOG(ERROR, "domain %s: its old records could not be put back "
                "either: xl snapshot-check %s", op->d.name, op->d.name);
        return rc;
    }
    /* the checkpoints' records: the new ones, the old ones gone */
    {
        libxl__store_put *p;
        int np = 0;
        GCNEW_ARRAY(p, cps.num + oldcps.num + 1);
        for (i = 0; i < cps.num; i++) {
            p[np].name = libxl__checkpoint_record_name(gc, cps.cps[i].name);
            p[np].value = libxl__checkpoint_to_text(gc, &cps.cps[i]);
            p[np].len = strlen(p[np].value);
            np++;
        }
        for (i = 0; i < oldcps.num; i++)
            if (libxl__checkpoint_index(&cps, oldcps.cps[i].name) < 0)
                p[np++].name = libxl__checkpoint_record_name(gc,
                                                       oldcps.cps[i].name);
        rc = np ? libxl__snapshot_store_put(gc, &op->st, p, np, XTL_ERROR)
                : 0;
        if (rc) {
            LOG(ERROR, "domain %s: the checkpoint records could not be "
                "written; the snapshot records are put back", op->d.name);
            if (libxl__snapshot_store_save(gc, &op->st, &old))
                LOG(ERROR, "domain %s: its old records could not be put "
                    "back either: xl snapshot-check %s", op->d.name,
                    op->d.name);
            return rc;
        }
    }
    return 0;
}

static void records_begun(libxl__egc *egc, libxl__snapshot_op *op, int rc)
{
    records_state *rs = CONTAINER_OF(op, records_state, op);
    STATE_AO_GC(rs->ao);

    if (rc) {
        libxl__ao_complete(egc, ao, rc);
        return;
    }
    rc = libxl__snapshot_op_settled(gc, op);
    if (rc) goto out;
    rc = rs->import ? import_records(gc, rs) : export_records(gc, rs);
 out:
    libxl__snapshot_op_end(gc, op);
    libxl__ao_complete(egc, ao, rc);
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
