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

static void redefine_begun(libxl__egc *egc, libxl__snapshot_op *op, int rc)
{
    redefine_state *rs = CONTAINER_OF(op, redefine_state, op);
    STATE_AO_GC(rs->ao);
    libxlsnap_domain_snapshot *s = &rs->snap;
    libxl__snapshot_tree *t = &op->tree;
    int i;

    if (rc) goto out;
    rc = ERROR_INVAL;
    if (libxlsnap_name_check(s->name)) {
        LOG(ERROR, "'%s' is not a valid snapshot name",
            libxl__printable(gc, s->name ? s->name : ""));
        goto out;
    }
    if (!libxl_uuid_is_nil(&s->domain_uuid) &&
        libxl_uuid_compare(&s->domain_uuid, &op->d.uuid)) {
        LOG(ERROR, "the snapshot is of another domain (its uuid is not %s's)",
            op->d.name);
        goto out;
    }
    if (s->parent && !strcmp(s->parent, s->name)) {
        LOG(ERROR, "it names itself as its parent");
        goto out;
    }
    if (s->parent && !libxl__snapshot_tree_find(t, s->parent)) {
        LOG(ERROR, "its parent '%s' is not a snapshot of domain %s",
            libxl__printable(gc, s->parent), op->d.name);
        goto out;
    }
    if (s->parent) {
        /* a parent that descends from it would close a loop */
        const libxlsnap_domain_snapshot *a =
            libxl__snapshot_tree_find(t, s->parent);
        int depth;
        for (depth = 0; a && depth <= t->num_snaps; depth++) {
            if (!strcmp(a->name, s->name)) {
                LOG(ERROR, "its parent '%s' descends from it: the tree "
                    "would loop", libxl__printable(gc, s->parent));
                goto out;
            }
            a = a->parent ? libxl__snapshot_tree_find(t, a->parent) : NULL;
        }
    }
    if (s->memory && !libxl__file_exists(s->memory)) {
        LOG(ERROR, "its memory image '%s' does not exist", s->memory);
        goto out;
    }
    for (i = 0; i < s->num_disks; i++) {
        const libxlsnap_disk_snapshot *d = &s->disks[i];
        const libxl__snapshot_backend *be;
        const char *why;
        if (!libxl__domain_disk(&op->d, d->vdev)) {
            LOG(ERROR, "domain %s has no disk %s", op->d.name, d->vdev);
            goto out;
        }
        if (d->type == LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO) continue;
        why = libxl__image_missing(gc, d->file);
        if (why) {
            LOG(ERROR, "disk %s: '%s' %s", d->vdev, d->file, why);
            goto out;
        }
        be = libxl__snapshot_backend_of(d);
        why = be && be->redefine_missing ? be->redefine_missing(gc, d) : NULL;
        if (why) {
            LOG(ERROR, "disk %s: %s", d->vdev, why);
            goto out;
        }
    }
    if (!s->creation_time) {
        LOG(ERROR, "<creationTime> is missing (libvirt's redefine needs it "
            "too)");
        goto out;
    }
    /* nothing another record owns (libxl__snapshot_ownership) */
    rc = libxl__snapshot_claim(gc, t, s);
    if (rc) goto out;
    rc = ERROR_INVAL;
    /* s is the caller's copy (malloc'ed, disposed below) */
    free(s->domain_name);
    s->domain_name = libxl__gc_strdup(NOGC, op->d.name);
    libxl_uuid_copy(NULL, &s->domain_uuid, &op->d.uuid);
    s->current = false;
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
        FLAGS_UNKNOWN(ctx, flags, LIBXLSNAP_REDEFINE_CURRENT))
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

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
