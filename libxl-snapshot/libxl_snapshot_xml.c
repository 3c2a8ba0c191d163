/*
 * libxl_snapshot_xml.c - libvirt's domainsnapshot XML, both ways
 *
 * `xl snapshot-dumpxml` writes a record as libvirt's formatsnapshot
 * describes it, and `xl snapshot-create --redefine --xmlfile` reads one
 * back as metadata (libvirt's --redefine), with libxml2.  The fields:
 *
 *   <domainsnapshot>
 *     <name/> <description/>
 *     <state>         running | paused | shutoff, and disk-snapshot for
 *                     a disk-only snapshot of a running domain (as
 *                     libvirt says; read back as running)
 *     <parent><name/></parent>
 *     <creationTime>  seconds since the epoch
 *     <memory snapshot='no'|'external' file='...'/>
 *     <disks><disk name='xvda' snapshot='internal|external|manual|no'>
 *         external: <driver type='qcow2'/> <source file='OVERLAY'/>
 *                   (the file the snapshot made, as libvirt)
 *         manual:   an LVM snapshot volume, <source dev='/dev/VG/LV'/>
 *     </disk></disks>
 *     (each disk backend names its type and writes and reads its
 *     <source>: ->xml_type, ->xml_source, ->xml_parse)
 *     <domain type='xen'> <name/> <uuid/>, and per disk
 *       <devices><disk><source file|dev='IMAGE'/><target dev='xvda'/>
 *       <driver type='FORMAT'/></disk></devices>: the image each disk
 *       was on when the snapshot was taken (the frozen image of an
 *       external snapshot, the image holding an internal one, the LVM
 *       origin), as libvirt keeps the domain definition.
 *   </domainsnapshot>
 *
 * docs/schema/domainsnapshot.rng is this as a RelaxNG schema (every dump
 * validates against it: test-68).
 *
 * dump then redefine then dump gives the same text.  Reading is strict:
 * an unknown state, disk type or format, a missing name, a disk without
 * its image is refused with one message; entities are not expanded and
 * no network access is made (XML_PARSE_NONET, no DTD loading).  libvirt's
 * <cookie>, <inactiveDomain> and <active> are not kept: one warning line
 * each.  A redefine also refuses a missing <creationTime> (as libvirt),
 * and files or volumes another record owns (libxl__snapshot_claim).
 *
 * A redefine of many (libxlsnap_domain_snapshot_redefine_many: xl's
 * --xmlfile given many times, or a directory) is one operation: one
 * lock, everything checked before anything is written (check_many: each
 * as a single one is, the names unique and new, each parent in the
 * batch or the domain's, no loop; claim_many: one ownership pass over
 * the whole tree), the first problem said naming its source.  Then a
 * journal {"op": "redefine", "names", "current"}, one batched save
 * (libxl__snapshot_store_save_many: one sync for all the records), and
 * the journal removed.  A save that fails is undone (redefine_undo: the
 * records it wrote removed); a crash is completed by the next command
 * (libxl__redefine_recover: forward if every record was written, back
 * otherwise), and lock-free readers meanwhile show none of the batch
 * until all of it is there (libxl__redefine_hide).  Fault points
 * "redefine" (1: the journal written, no record; 2: all records, the
 * journal left) and the store's "save" (after each record renamed in).
 */
#include "libxl_snapshot_internal.h"

#include <inttypes.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

static const char *xml_state(const libxlsnap_domain_snapshot *s)
{
    if (!s->memory && s->state != LIBXLSNAP_DOMAIN_STATE_SHUTOFF)
        return "disk-snapshot";
    return libxlsnap_domain_state_to_string(s->state);
}

static bool is_block(const char *path)
{
    return path && !strncmp(path, "/dev/", 5);
}

static xmlNodePtr child(xmlNodePtr parent, const char *name,
                        const char *text)
{
    return xmlNewTextChild(parent, NULL, BAD_CAST name,
                           text ? BAD_CAST text : NULL);
}

static void prop(xmlNodePtr n, const char *name, const char *value)
{
    xmlNewProp(n, BAD_CAST name, BAD_CAST value);
}

/* The document as indented UTF-8 text (malloc'ed), and freed. */
static char *doc_text(xmlDocPtr doc)
{
    xmlChar *buf = NULL;
    char *res = NULL;
    int len = 0;

    xmlDocDumpFormatMemoryEnc(doc, &buf, &len, "UTF-8", 1);
    if (buf) {
        res = strdup((const char *)buf);
        if (!res) abort();
    }
    xmlFree(buf);
    xmlFreeDoc(doc);
    return res;
}

char *libxlsnap_domain_snapshot_to_xml(libxlsnap_ctx *ctx,
                                   const libxlsnap_domain_snapshot *s)
{
    if (ARGS_MISSING_CTX_OPTIONAL(ctx, s)) return NULL;
    GC_INIT(ctx);
    xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
    xmlNodePtr root, n, disks, dom, devs;
    char uuid[40], *res = NULL;
    int i;

    if (!doc) abort();
    root = xmlNewNode(NULL, BAD_CAST "domainsnapshot");
    xmlDocSetRootElement(doc, root);
    child(root, "name", s->name);
    if (s->description) child(root, "description", s->description);
    child(root, "state", xml_state(s));
    if (s->parent) {
        n = child(root, "parent", NULL);
        child(n, "name", s->parent);
    }
    child(root, "creationTime", GCSPRINTF("%"PRIu64, s->creation_time));
    n = child(root, "memory", NULL);
    prop(n, "snapshot", s->memory ? "external" : "no");
    if (s->memory) prop(n, "file", s->memory);
    disks = child(root, "disks", NULL);
    for (i = 0; i < s->num_disks; i++) {
        const libxlsnap_disk_snapshot *d = &s->disks[i];
        const libxl__snapshot_backend *be = libxl__snapshot_backend_of(d);
        libxl__xml_source src;
        n = child(disks, "disk", NULL);
        prop(n, "name", d->vdev);
        prop(n, "snapshot", be ? be->xml_type : "no");
        if (be && be->xml_source &&
            be->xml_source(gc, d,
                           s->state != LIBXLSNAP_DOMAIN_STATE_SHUTOFF,
                           &src)) {
            prop(n, "type", src.type);
            if (src.driver)
                prop(child(n, "driver", NULL), "type", src.driver);
            prop(child(n, "source", NULL), src.attr, src.value);
        }
    }
    dom = child(root, "domain", NULL);
    prop(dom, "type", "xen");
    if (s->domain_name) child(dom, "name", s->domain_name);
    if (!libxl_uuid_is_nil(&s->domain_uuid)) {
        snprintf(uuid, sizeof(uuid), LIBXL_UUID_FMT,
                 LIBXL_UUID_BYTES(s->domain_uuid));
        child(dom, "uuid", uuid);
    }
    devs = child(dom, "devices", NULL);
    for (i = 0; i < s->num_disks; i++) {
        const libxlsnap_disk_snapshot *d = &s->disks[i];
        const char *fmt = libxl__disk_format_qemu(d->format);
        if (!d->file) continue;
        n = child(devs, "disk", NULL);
        prop(n, "type", is_block(d->file) ? "block" : "file");
        prop(n, "device", "disk");
        prop(child(n, "driver", NULL), "type", fmt ? fmt : "raw");
        prop(child(n, "source", NULL), is_block(d->file) ? "dev" : "file",
             d->file);
        prop(child(n, "target", NULL), "dev", d->vdev);
    }
    res = doc_text(doc);
    GC_FREE;
    return res;
}

/*
 * libvirt's <domaincheckpoint>: name, description, parent, creationTime,
 * and each disk with checkpoint='bitmap' bitmap='NAME'.
 */
char *libxlsnap_checkpoint_to_xml(libxlsnap_ctx *ctx,
                                  const libxlsnap_checkpoint *cp)
{
    if (ARGS_MISSING_CTX_OPTIONAL(ctx, cp)) return NULL;
    GC_INIT(ctx);
    xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
    xmlNodePtr root, n, disks, dom;
    char uuid[40], *res = NULL;
    int i;

    if (!doc) abort();
    root = xmlNewNode(NULL, BAD_CAST "domaincheckpoint");
    xmlDocSetRootElement(doc, root);
    child(root, "name", cp->name);
    if (cp->description) child(root, "description", cp->description);
    if (cp->parent) {
        n = child(root, "parent", NULL);
        child(n, "name", cp->parent);
    }
    child(root, "creationTime", GCSPRINTF("%"PRIu64, cp->creation_time));
    disks = child(root, "disks", NULL);
    for (i = 0; i < cp->num_disks; i++) {
        n = child(disks, "disk", NULL);
        prop(n, "name", cp->disks[i].vdev);
        prop(n, "checkpoint", "bitmap");
        prop(n, "bitmap", cp->disks[i].bitmap);
    }
    dom = child(root, "domain", NULL);
    prop(dom, "type", "xen");
    if (cp->domain_name) child(dom, "name", cp->domain_name);
    if (!libxl_uuid_is_nil(&cp->domain_uuid)) {
        snprintf(uuid, sizeof(uuid), LIBXL_UUID_FMT,
                 LIBXL_UUID_BYTES(cp->domain_uuid));
        child(dom, "uuid", uuid);
    }
    res = doc_text(doc);
    GC_FREE;
    return res;
}

/* ---------------------------------------------------------------- */
/* reading */

static xmlNodePtr first(xmlNodePtr parent, const char *name)
{
    xmlNodePtr n;

    for (n = parent ? parent->children : NULL; n; n = n->next)
        if (n->type == XML_ELEMENT_NODE && !xmlStrcmp(n->name, BAD_CAST name))
            return n;
    return NULL;
}

/* The text of parent's child element name, in gc, or NULL. */
static char *text_of(libxl__gc *gc, xmlNodePtr parent, const char *name)
{
    xmlNodePtr n = first(parent, name);
    xmlChar *t;
    char *r;

    if (!n) return NULL;
    t = xmlNodeGetContent(n);
    r = t ? GCSTRDUP((const char *)t) : NULL;
    xmlFree(t);
    return r;
}

static char *prop_of(libxl__gc *gc, xmlNodePtr n, const char *name)
{
    xmlChar *t = n ? xmlGetProp(n, BAD_CAST name) : NULL;
    char *r = t ? GCSTRDUP((const char *)t) : NULL;

    xmlFree(t);
    return r;
}

static int parse_doc(libxl__gc *gc, xmlDocPtr doc, libxlsnap_domain_snapshot *s)
{
    xmlNodePtr root = xmlDocGetRootElement(doc), n, dom, devs, d;
    char *st, *t, *mem;
    int nd = 0;

    if (!root || xmlStrcmp(root->name, BAD_CAST "domainsnapshot")) {
        LOG(ERROR, "not a libvirt domainsnapshot document");
        return ERROR_INVAL;
    }
    s->name = text_of(gc, root, "name");
    if (!s->name || libxlsnap_name_check(s->name) ||
        !libxl__utf8_valid(s->name)) {
        LOG(ERROR, "<name> is missing or not a valid snapshot name");
        return ERROR_INVAL;
    }
    for (n = root->children; n; n = n->next)
        if (n->type == XML_ELEMENT_NODE &&
            (!xmlStrcmp(n->name, BAD_CAST "cookie") ||
             !xmlStrcmp(n->name, BAD_CAST "inactiveDomain") ||
             !xmlStrcmp(n->name, BAD_CAST "active")))
            LOG(WARN, "<%s> is ignored: the record does not keep it",
                (const char *)n->name);
    s->description = text_of(gc, root, "description");
    st = text_of(gc, root, "state");
    if (!st || !strcmp(st, "disk-snapshot") || !strcmp(st, "running")) {
        s->state = LIBXLSNAP_DOMAIN_STATE_RUNNING;
    } else if (!strcmp(st, "paused")) {
        s->state = LIBXLSNAP_DOMAIN_STATE_PAUSED;
    } else if (!strcmp(st, "shutoff")) {
        s->state = LIBXLSNAP_DOMAIN_STATE_SHUTOFF;
    } else {
        LOG(ERROR, "<state>%s</state>: use running, paused, shutoff or "
            "disk-snapshot", st);
        return ERROR_INVAL;
    }
    s->parent = text_of(gc, first(root, "parent"), "name");
    t = text_of(gc, root, "creationTime");
    if (t) {
        char *end;
        errno = 0;
        s->creation_time = strtoull(t, &end, 10);
        if (errno || *end || !*t || *t == '-') {
            LOG(ERROR, "<creationTime>%s</creationTime> is not a number of "
                "seconds", t);
            return ERROR_INVAL;
        }
    }
    n = first(root, "memory");
    mem = prop_of(gc, n, "snapshot");
    if (mem && !strcmp(mem, "external")) {
        s->memory = prop_of(gc, n, "file");
        if (!s->memory || s->memory[0] != '/') {
            LOG(ERROR, "<memory snapshot='external'> needs an absolute "
                "file=");
            return ERROR_INVAL;
        }
    } else if (mem && strcmp(mem, "no")) {
        LOG(ERROR, "<memory snapshot='%s'>: use no or external", mem);
        return ERROR_INVAL;
    }
    dom = first(root, "domain");
    s->domain_name = text_of(gc, dom, "name");
    t = text_of(gc, dom, "uuid");
    if (t && libxl_uuid_from_string(&s->domain_uuid, t)) {
        LOG(ERROR, "<uuid>%s</uuid> is not a uuid", t);
        return ERROR_INVAL;
    }
    devs = first(dom, "devices");

    for (d = first(root, "disks") ? first(root, "disks")->children : NULL;
         d; d = d->next)
        if (d->type == XML_ELEMENT_NODE) nd++;
    GCNEW_ARRAY(s->disks, nd ? nd : 1);
    for (d = first(root, "disks") ? first(root, "disks")->children : NULL;
         d; d = d->next) {
        libxlsnap_disk_snapshot *ds;
        const libxl__snapshot_backend *be;
        const char *type;
        xmlNodePtr dd, src;
        bool own = true;

        if (d->type != XML_ELEMENT_NODE) continue;
        if (xmlStrcmp(d->name, BAD_CAST "disk")) {
            LOG(ERROR, "<disks> holds a <%s>", (const char *)d->name);
            return ERROR_INVAL;
        }
        ds = &s->disks[s->num_disks++];
        libxlsnap_disk_snapshot_init(ds);
        ds->vdev = prop_of(gc, d, "name");
        type = prop_of(gc, d, "snapshot");
        if (!ds->vdev || !type) {
            LOG(ERROR, "a <disk> needs name= and snapshot=");
            return ERROR_INVAL;
        }
        be = libxl__xml_backend(type);
        if (be) {
            ds->type = be->type;
            src = first(d, "source");
            if (be->xml_parse)
                own = be->xml_parse(gc, ds, s, prop_of(gc, src, "file"),
                                    prop_of(gc, src, "dev"));
        } else if (!strcmp(type, "no")) {
            ds->type = LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO;
        } else {
            LOG(ERROR, "disk %s: snapshot='%s': use internal, external, "
                "manual or no", ds->vdev, type);
            return ERROR_INVAL;
        }
        /* the image it was on: the domain definition's disk */
        for (dd = devs ? devs->children : NULL; dd; dd = dd->next) {
            char *tgt, *fmt;
            if (dd->type != XML_ELEMENT_NODE ||
                xmlStrcmp(dd->name, BAD_CAST "disk"))
                continue;
            tgt = prop_of(gc, first(dd, "target"), "dev");
            if (!tgt || strcmp(tgt, ds->vdev)) continue;
            src = first(dd, "source");
            ds->file = prop_of(gc, src, "file");
            if (!ds->file) ds->file = prop_of(gc, src, "dev");
            fmt = prop_of(gc, first(dd, "driver"), "type");
            ds->format = LIBXL_DISK_FORMAT_RAW;
            if (fmt && libxl__disk_format_from_qemu(fmt, &ds->format)) {
                LOG(ERROR, "disk %s: driver type '%s' is not known",
                    ds->vdev, fmt);
                return ERROR_INVAL;
            }
        }
        if (ds->type != LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO &&
            (!ds->file || !own ||
             (ds->file[0] != '/' && libxl__image_is_file(ds->file)))) {
            LOG(ERROR, "disk %s: its image (<domain><devices><disk>"
                "<source>) or its snapshot's file (<source>) is missing "
                "or not an absolute path", ds->vdev);
            return ERROR_INVAL;
        }
    }
    return 0;
}

int libxlsnap_domain_snapshot_from_xml(libxlsnap_ctx *ctx, const char *xml,
                                   libxlsnap_domain_snapshot *out)
{
    if (ARGS_MISSING_CTX_OPTIONAL(ctx, xml, out)) return ERROR_INVAL;
    GC_INIT(ctx);
    libxlsnap_domain_snapshot tmp;
    xmlDocPtr doc;
    int rc;

    libxlsnap_domain_snapshot_init(out);
    libxlsnap_domain_snapshot_init(&tmp);
    doc = xml ? xmlReadMemory(xml, (int)strlen(xml), "snapshot.xml", NULL,
                              XML_PARSE_NONET | XML_PARSE_NOERROR |
                              XML_PARSE_NOWARNING) : NULL;
    if (!doc) {
        const xmlError *e = xmlGetLastError();
        char *m = e && e->message ? GCSTRDUP(e->message) : NULL;
        size_t l = m ? strlen(m) : 0;
        while (l && (m[l - 1] == '\n' || m[l - 1] == ' ')) m[--l] = 0;
        LOG(ERROR, "not well-formed XML%s%s%s", m ? ": " : "", m ? m : "",
            e && e->line ? GCSPRINTF(" (line %d)", e->line) : "");
        rc = ERROR_INVAL;
        goto out;
    }
    rc = parse_doc(gc, doc, &tmp);
    xmlFreeDoc(doc);
    if (rc) goto out;
    libxl__domain_snapshot_copy(out, &tmp);
 out:
    GC_FREE;
    return rc;
}

/* ---------------------------------------------------------------- */
/* redefine: a record from outside, metadata only */

typedef struct {
    libxl__ao *ao;
    libxl__snapshot_op op;
    libxlsnap_domain_snapshot snap;
    unsigned flags;
} redefine_state;

/*
 * Is file (it exists) in another domain's directory of the state dir
 * (<state_dir>/<uuid>/: its records, memory images)?  What to say, or
 * NULL.  A redefined record would own it, and its delete remove it.
 */
static const char *of_another_domain(libxl__gc *gc, libxl__snapshot_op *op,
                                     const char *file)
{
    char *f = realpath(file, NULL), *root = realpath(CTX->state_dir, NULL);
    const char *dir, *why = NULL;
    size_t n;

    if (!f || !root) goto out;
    dir = libxl__path_dirname(gc, f);
    n = strlen(root);
    if (!strncmp(dir, root, n) && dir[n] == '/' && !strchr(dir + n + 1, '/')) {
        char uuid[LIBXL_UUID_FMTLEN + 1];
        snprintf(uuid, sizeof(uuid), LIBXL_UUID_FMT,
                 LIBXL_UUID_BYTES(op->d.uuid));
        if (strcmp(dir + n + 1, uuid))
            why = GCSPRINTF("'%s' is in another domain's snapshot directory "
                            "(%s)", file, dir);
    }
 out:
    free(f);
    free(root);
    return why;
}

/*
 * Why s cannot be added to the domain of op (NULL: it can), in this
 * order: its name, its domain, its parent (parent_why: the caller's
 * finding, NULL when the parent is fine), its memory image, its disks
 * and images (backends' redefine_missing), its creation time.
 */
static const char *refusal(libxl__gc *gc, libxl__snapshot_op *op,
                           libxl__backend_cache *bc,
                           const libxlsnap_domain_snapshot *s,
                           const char *parent_why)
{
    const char *why;
    int i;

    if (libxlsnap_name_check(s->name))
        return GCSPRINTF("'%s' is not a valid snapshot name",
                         libxl__printable(gc, s->name ? s->name : ""));
    if (!libxl_uuid_is_nil(&s->domain_uuid) &&
        libxl_uuid_compare(&s->domain_uuid, &op->d.uuid))
        return GCSPRINTF("the snapshot is of another domain (its uuid is "
                         "not %s's)", op->d.name);
    if (s->parent && !strcmp(s->parent, s->name))
        return "it names itself as its parent";
    if (parent_why) return parent_why;
    if (s->memory && !libxl__file_exists(s->memory))
        return GCSPRINTF("its memory image '%s' does not exist", s->memory);
    if (s->memory && (why = of_another_domain(gc, op, s->memory)))
        return GCSPRINTF("its memory image %s", why);
    for (i = 0; i < s->num_disks; i++) {
        const libxlsnap_disk_snapshot *d = &s->disks[i];
        if (!libxl__domain_disk(&op->d, d->vdev))
            return GCSPRINTF("domain %s has no disk %s", op->d.name,
                             d->vdev);
        if (d->type == LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO) continue;
        why = libxl__image_missing(gc, d->file);
        if (why) return GCSPRINTF("disk %s: '%s' %s", d->vdev, d->file, why);
        if (libxl__image_is_file(d->file) &&
            (why = of_another_domain(gc, op, d->file)))
            return GCSPRINTF("disk %s: %s", d->vdev, why);
        why = libxl__disk_redefine_missing(gc, bc, d);
        if (why) return GCSPRINTF("disk %s: %s", d->vdev, why);
    }
    if (!s->creation_time)
        return "<creationTime> is missing (libvirt's redefine needs it too)";
    return NULL;
}

/* s as the domain's record: its domain's name and uuid, not current */
static void as_domains(libxl__gc *gc, libxl__snapshot_op *op,
                       libxlsnap_domain_snapshot *s)
{
    /* s is the caller's copy (malloc'ed, disposed by the caller) */
    free(s->domain_name);
    s->domain_name = libxl__gc_strdup(NOGC, op->d.name);
    libxl_uuid_copy(NULL, &s->domain_uuid, &op->d.uuid);
    s->current = false;
}

static void redefine_begun(libxl__egc *egc, libxl__snapshot_op *op, int rc)
{
    redefine_state *rs = CONTAINER_OF(op, redefine_state, op);
    STATE_AO_GC(rs->ao);
    libxlsnap_domain_snapshot *s = &rs->snap;
    libxl__snapshot_tree *t = &op->tree;
    libxl__backend_cache bc = { { NULL } };
    const char *why = NULL;

    if (rc) goto out;
    rc = ERROR_INVAL;
    if (s->parent && s->name && strcmp(s->parent, s->name) &&
        !libxl__snapshot_tree_find(t, s->parent)) {
        why = GCSPRINTF("its parent '%s' is not a snapshot of domain %s",
                        libxl__printable(gc, s->parent), op->d.name);
    } else if (s->parent && s->name) {
        /* a parent that descends from it would close a loop */
        const libxlsnap_domain_snapshot *a =
            libxl__snapshot_tree_find(t, s->parent);
        int depth;
        for (depth = 0; a && depth <= t->num_snaps; depth++) {
            if (!strcmp(a->name, s->name)) {
                why = GCSPRINTF("its parent '%s' descends from it: the tree "
                                "would loop", libxl__printable(gc, s->parent));
                break;
            }
            a = a->parent ? libxl__snapshot_tree_find(t, a->parent) : NULL;
        }
    }
    why = refusal(gc, op, &bc, s, why);
    if (why) {
        LOG(ERROR, "%s", why);
        goto out;
    }
    /* nothing another record owns (libxl__snapshot_ownership) */
    rc = libxl__snapshot_claim(gc, t, s);
    if (rc) goto out;
    if (rs->flags & LIBXLSNAP_REDEFINE_DRY_RUN) goto out;
    as_domains(gc, op, s);
    libxl__snapshot_tree_add(gc, t, s);
    if (rs->flags & LIBXLSNAP_REDEFINE_CURRENT)
        t->dom.current = GCSTRDUP(s->name);
    libxl__snapshot_tree_fixup(gc, t);
    rc = libxl__snapshot_store_save(gc, &op->st, t);
 out:
    libxl__snapshot_op_end(gc, op);
    libxlsnap_domain_snapshot_dispose(&rs->snap);
    libxl__ao_complete(egc, ao, rc);
}

int libxlsnap_domain_snapshot_redefine(libxlsnap_ctx *ctx,
                                   const char *domain,
                                   const libxlsnap_domain_snapshot *snapshot,
                                   unsigned flags,
                                   const libxl_asyncop_how *ao_how)
{
    if (ARGS_MISSING(ctx, domain, snapshot) ||
        FLAGS_UNKNOWN(ctx, flags, LIBXLSNAP_REDEFINE_CURRENT |
                      LIBXLSNAP_REDEFINE_DRY_RUN))
        return ERROR_INVAL;
    AO_CREATE(ctx, ao_how);
    EGC_INIT(ctx);
    redefine_state *rs;

    GCNEW(rs);
    rs->ao = ao;
    rs->flags = flags;
    libxlsnap_domain_snapshot_init(&rs->snap);
    libxl__domain_snapshot_copy(&rs->snap, snapshot);
    rs->op.ao = ao;
    rs->op.domain = GCSTRDUP(domain);
    rs->op.callback = redefine_begun;
    libxl__snapshot_op_begin(egc, &rs->op);
    EGC_FREE;
    return AO_INPROGRESS;
}

/* ---------------------------------------------------------------- */
/* redefine of many: one lock, one save, all or none */

typedef struct {
    libxl__ao *ao;
    libxl__snapshot_op op;
    libxlsnap_domain_snapshot *snaps;     /* the caller's, copied */
    const char **sources;                 /* for messages (NULL: names) */
    int num;
    unsigned flags;
} redefine_many_state;

/* A name, and whose: i >= 0 the batch's i-th, -1 the domain's. */
typedef struct { const char *name; int i; } batch_name;

static int batch_name_cmp(const void *a, const void *b)
{
    const batch_name *x = a, *y = b;
    int r = strcmp(x->name, y->name);

    return r ? r : x->i - y->i;
}

/* names[0..n) sorted (for find) */
static batch_name *batch_index(libxl__gc *gc, const libxl__snapshot_tree *t,
                               const libxlsnap_domain_snapshot *snaps,
                               int num, int *n_r)
{
    batch_name *ix;
    int i, n = 0;

    GCNEW_ARRAY(ix, (t ? t->num_snaps : 0) + num + 1);
    for (i = 0; t && i < t->num_snaps; i++) {
        ix[n].name = t->snaps[i].name;
        ix[n++].i = -1;
    }
    for (i = 0; i < num; i++) {
        ix[n].name = snaps[i].name;
        ix[n++].i = i;
    }
    qsort(ix, n, sizeof(*ix), batch_name_cmp);
    *n_r = n;
    return ix;
}

/* the first entry named name, or NULL */
static const batch_name *batch_find(const batch_name *ix, int n,
                                    const char *name)
{
    int lo = 0, hi = n;

    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (strcmp(ix[mid].name, name) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && !strcmp(ix[lo].name, name) ? &ix[lo] : NULL;
}

/* what the i-th came from, for messages */
static const char *source_of(libxl__gc *gc, const redefine_many_state *rs,
                             int i)
{
    if (rs->sources && rs->sources[i]) return rs->sources[i];
    return GCSPRINTF("snapshot '%s'",
                     libxl__printable(gc, rs->snaps[i].name
                                      ? rs->snaps[i].name : ""));
}

#define REFUSE(i, ...) do {                                             \
        LOG(ERROR, "%s: %s", source_of(gc, rs, (i)), GCSPRINTF(__VA_ARGS__)); \
        return ERROR_INVAL;                                             \
    } while (0)

/*
 * Everything checked before anything is written: each as a single
 * redefine checks it (refusal), the names unique in the batch and new
 * to the domain, each parent in the batch or the domain's, no loop.
 * The first problem is said, naming its source; ERROR_INVAL.
 */
static int check_many(libxl__gc *gc, redefine_many_state *rs)
{
    libxl__snapshot_op *op = &rs->op;
    libxlsnap_domain_snapshot *snaps = rs->snaps;
    libxl__backend_cache bc = { { NULL } };  /* an image's info asked once */
    const batch_name *b;
    batch_name *ix;
    int *pidx, *state, i, j, n;

    for (i = 0; i < rs->num; i++)
        if (libxlsnap_name_check(snaps[i].name))
            REFUSE(i, "%s", refusal(gc, op, &bc, &snaps[i], NULL));
    ix = batch_index(gc, &op->tree, snaps, rs->num, &n);
    for (j = 1; j < n; j++) {
        if (strcmp(ix[j].name, ix[j - 1].name)) continue;
        if (ix[j - 1].i < 0)
            REFUSE(ix[j].i, "domain %s already has a snapshot '%s'",
                   op->d.name, ix[j].name);
        REFUSE(ix[j].i, "snapshot '%s' is also in %s", ix[j].name,
               source_of(gc, rs, ix[j - 1].i));
    }
    GCNEW_ARRAY(pidx, rs->num + 1);
    for (i = 0; i < rs->num; i++) {
        const libxlsnap_domain_snapshot *s = &snaps[i];
        const char *why = NULL;

        pidx[i] = -1;
        if (s->parent && strcmp(s->parent, s->name)) {
            b = batch_find(ix, n, s->parent);
            if (!b)
                why = GCSPRINTF("its parent '%s' is neither in the batch nor "
                                "a snapshot of domain %s",
                                libxl__printable(gc, s->parent), op->d.name);
            else
                pidx[i] = b->i;
        }
        why = refusal(gc, op, &bc, s, why);
        if (why) REFUSE(i, "%s", why);
    }
    /* a loop can only be the batch's (the domain's have no parent in it) */
    GCNEW_ARRAY(state, rs->num + 1);          /* 0 new, 1 on path, 2 done */
    for (i = 0; i < rs->num; i++) {
        for (j = i; j >= 0 && !state[j]; j = pidx[j])
            state[j] = 1;
        if (j >= 0 && state[j] == 1)
            REFUSE(j, "its parent '%s' descends from it: the tree would "
                   "loop", libxl__printable(gc, snaps[j].parent));
        for (j = i; j >= 0 && state[j] == 1; j = pidx[j])
            state[j] = 2;
    }
    return 0;
}

/*
 * Once they are in op's tree: nothing a record of the batch owns is
 * another record's (the domain's or the batch's).
 */
static int claim_many(libxl__gc *gc, redefine_many_state *rs)
{
    libxl__snapshot_clash *c;
    batch_name *ix;
    const batch_name *b;
    int k, nc, n;

    nc = libxl__snapshot_ownership(gc, &rs->op.tree, NULL, &c);
    if (!nc) return 0;
    ix = batch_index(gc, NULL, rs->snaps, rs->num, &n);
    for (k = 0; k < nc; k++) {
        if ((b = batch_find(ix, n, c[k].name)))
            REFUSE(b->i, "its %s is snapshot %s's", c[k].what, c[k].owner);
        if ((b = batch_find(ix, n, c[k].owner)))
            REFUSE(b->i, "its %s is snapshot %s's", c[k].owner_what,
                   c[k].name);
    }
    return 0;                         /* the domain's own, not ours */
}

#undef REFUSE

/* names[0..n) out of t (their children are among them), one fixup */
static void drop_names(libxl__gc *gc, libxl__snapshot_tree *t,
                       const char **names, int n)
{
    libxlsnap_domain_snapshot *gone;
    batch_name *ix;
    int i, k, nix;

    GCNEW_ARRAY(gone, n + 1);
    for (i = 0; i < n; i++) gone[i].name = (char *)names[i];
    ix = batch_index(gc, NULL, gone, n, &nix);
    for (i = k = 0; i < t->num_snaps; i++)
        if (!batch_find(ix, nix, t->snaps[i].name))
            t->snaps[k++] = t->snaps[i];
    t->num_snaps = k;
    libxl__snapshot_tree_fixup(gc, t);
}

/*
 * The snapshots names[0..n) out of the domain's records, as they are
 * now on disk (their children are among them: no one else's parent).
 */
static int redefine_undo(libxl__gc *gc, libxl__snapshot_op *op,
                         const char **names, int n)
{
    libxl__snapshot_tree *t = &op->tree;
    int rc;

    rc = libxl__snapshot_store_load(gc, &op->st, t);
    if (rc) return rc;
    drop_names(gc, t, names, n);
    return libxl__snapshot_store_save(gc, &op->st, t);
}

static const char **journal_names(libxl__gc *gc, yajl_val j, int *n_r);

/*
 * The journal of a batch: {"op": "redefine", "names": [...],
 * "current": NAME (with LIBXLSNAP_REDEFINE_CURRENT)}.  Every name in
 * it was new to the domain when it was written, under the lock.
 */
int libxl__redefine_recover(libxl__gc *gc, libxl__snapshot_op *op,
                            yajl_val j)
{
    libxl__snapshot_tree *t = &op->tree;
    const char *current = libxl__json_get_string(j, "current");
    const char **names;
    batch_name *ix;
    int i, n, nix, present = 0, rc;

    names = journal_names(gc, j, &n);
    if (!names)
        return libxl__journal_unusable(gc, op, "holds no valid list of "
                                       "snapshots to redefine");
    ix = batch_index(gc, t, NULL, 0, &nix);
    for (i = 0; i < n; i++)
        if (batch_find(ix, nix, names[i])) present++;
    if (present == n) {
        /* every record was written: only the current may be left */
        if (current) t->dom.current = GCSTRDUP(current);
        libxl__snapshot_tree_fixup(gc, t);
        rc = libxl__snapshot_store_save(gc, &op->st, t);
        if (rc) return rc;            /* the journal stays: again */
        LOG(WARN, "domain %s: an interrupted redefine of %d snapshots was "
            "completed (all their records had been written)", op->d.name,
            n);
        return 0;
    }
    rc = redefine_undo(gc, op, names, n);
    if (rc) return rc;
    LOG(WARN, "domain %s: an interrupted redefine of %d snapshots was "
        "rolled back (%d of their records had been written; none is kept)",
        op->d.name, n, present);
    return 0;
}

/* the names of a redefine's journal (NULL: not one) */
static const char **journal_names(libxl__gc *gc, yajl_val j, int *n_r)
{
    yajl_val arr = libxl__json_get(j, "names");
    const char **names;
    int i, n;

    if (!arr || !YAJL_IS_ARRAY(arr) || !arr->u.array.len) return NULL;
    n = arr->u.array.len;
    GCNEW_ARRAY(names, n + 1);
    for (i = 0; i < n; i++) {
        names[i] = YAJL_IS_STRING(arr->u.array.values[i])
            ? arr->u.array.values[i]->u.string : NULL;
        if (libxlsnap_name_check(names[i])) return NULL;
    }
    *n_r = n;
    return names;
}

void libxl__redefine_hide(libxl__gc *gc, const libxl__snapshot_store *st,
                          libxl__snapshot_tree *t)
{
    const char **names;
    int i, n;

    names = journal_names(gc, libxl__journal_get(gc, st), &n);
    if (!names) return;
    for (i = 0; i < n && libxl__snapshot_store_has(gc, st, names[i]); i++)
        ;
    if (i == n) return;               /* all written: all shown */
    drop_names(gc, t, names, n);
}

static void redefine_many_begun(libxl__egc *egc, libxl__snapshot_op *op,
                                int rc)
{
    redefine_many_state *rs = CONTAINER_OF(op, redefine_many_state, op);
    STATE_AO_GC(rs->ao);
    libxl__snapshot_tree *t = &op->tree;
    const libxlsnap_domain_snapshot *newest = NULL;
    const char **names;
    yajl_val j = NULL, arr;
    char *text;
    int i, urc;

    if (rc) goto out;
    rc = check_many(gc, rs);
    if (rc) goto out;
    GCNEW_ARRAY(names, rs->num + 1);
    for (i = 0; i < rs->num; i++) {
        libxlsnap_domain_snapshot *s = &rs->snaps[i];
        as_domains(gc, op, s);
        names[i] = s->name;
        if (!newest || s->creation_time > newest->creation_time ||
            (s->creation_time == newest->creation_time &&
             (s->creation_nsec > newest->creation_nsec ||
              (s->creation_nsec == newest->creation_nsec &&
               strcmp(s->name, newest->name) > 0))))
            newest = s;
    }
    libxl__snapshot_tree_add_many(gc, t, rs->snaps, rs->num);
    rc = claim_many(gc, rs);
    if (rc || (rs->flags & LIBXLSNAP_REDEFINE_DRY_RUN)) goto out;
    if (rs->flags & LIBXLSNAP_REDEFINE_CURRENT) {
        t->dom.current = GCSTRDUP(newest->name);
        libxl__snapshot_tree_fixup(gc, t);
    }

    /* the journal first: a crash from here on is completed or undone */
    libxl__json_add_string(gc, &j, "op", "redefine");
    arr = libxl__json_add_array(gc, &j, "names");
    for (i = 0; i < rs->num; i++)
        libxl__json_append_string(gc, arr, names[i]);
    if (rs->flags & LIBXLSNAP_REDEFINE_CURRENT)
        libxl__json_add_string(gc, &j, "current", newest->name);
    text = libxl__json_to_string(gc, j);
    rc = text ? libxl__journal_write_text(gc, &op->st, text, strlen(text),
                                          false)
              : ERROR_FAIL;
    if (rc) goto out;
    libxl__fault_point("redefine");   /* tests: journal, no record */
    rc = libxl__snapshot_store_save_many(gc, &op->st, t);
    if (rc) {
        urc = redefine_undo(gc, op, names, rs->num);
        if (urc) {
            LOG(ERROR, "domain %s: the redefine failed part way and could "
                "not be undone; its journal is kept: the next command (xl "
                "snapshot-recover %s) undoes it", op->d.name, op->d.name);
            goto out;
        }
        libxl__journal_remove(gc, &op->st);
        goto out;
    }
    libxl__fault_point("redefine");   /* tests: records, journal left */
    libxl__journal_remove(gc, &op->st);
 out:
    libxl__snapshot_op_end(gc, op);
    for (i = 0; i < rs->num; i++)
        libxlsnap_domain_snapshot_dispose(&rs->snaps[i]);
    libxl__ao_complete(egc, ao, rc);
}

int libxlsnap_domain_snapshot_redefine_many(libxlsnap_ctx *ctx,
                                        const char *domain,
                                        const libxlsnap_domain_snapshot
                                            *snapshots,
                                        int num,
                                        const char *const *sources,
                                        unsigned flags,
                                        const libxl_asyncop_how *ao_how)
{
    if (ARGS_MISSING(ctx, domain, snapshots) ||
        FLAGS_UNKNOWN(ctx, flags, LIBXLSNAP_REDEFINE_CURRENT |
                                  LIBXLSNAP_REDEFINE_DRY_RUN))
        return ERROR_INVAL;
    if (num < 1) {
        GC_INIT(ctx);
        LOG(ERROR, "%s: no snapshot to redefine", __func__);
        GC_FREE;
        return ERROR_INVAL;
    }
    AO_CREATE(ctx, ao_how);
    EGC_INIT(ctx);
    redefine_many_state *rs;
    int i;

    GCNEW(rs);
    rs->ao = ao;
    rs->flags = flags;
    rs->num = num;
    GCNEW_ARRAY(rs->snaps, num);
    if (sources) GCNEW_ARRAY(rs->sources, num);
    for (i = 0; i < num; i++) {
        libxlsnap_domain_snapshot_init(&rs->snaps[i]);
        libxl__domain_snapshot_copy(&rs->snaps[i], &snapshots[i]);
        if (sources) rs->sources[i] = GCSTRDUP(sources[i]);
    }
    rs->op.ao = ao;
    rs->op.domain = GCSTRDUP(domain);
    rs->op.callback = redefine_many_begun;
    libxl__snapshot_op_begin(egc, &rs->op);
    EGC_FREE;
    return AO_INPROGRESS;
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
