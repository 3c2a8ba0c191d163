/*
 * libxl_snapshot_types.c - init/dispose and strings of the public types
 *
 * As libxl's generated _init/_dispose: init zeroes, dispose frees every
 * pointer the object owns and leaves it initialised again, so that
 * disposing twice is harmless.  Objects handed to the caller are plain
 * malloc; gc-owned objects (the store's tree) must not be disposed.
 *
 * Snapshot names become file names (snapshotdata-<name>.libxl-json)
 * and appear in xl command lines and disk specs, so the name check
 * refuses whatever could escape the directory, hide the file, look
 * like an option, or break a "vdev,snapshot=...,file=..." list.
 */
#include "libxl_snapshot_internal.h"

#include <strings.h>

#define SNAPSHOT_NAME_MAX 200

void libxlsnap_disk_snapshot_init(libxlsnap_disk_snapshot *p)
{
    if (!p) return;
    memset(p, 0, sizeof(*p));
}

void libxlsnap_disk_snapshot_dispose(libxlsnap_disk_snapshot *p)
{
    if (!p) return;
    free(p->vdev);
    free(p->file);
    free(p->overlay);
    free(p->cow);
    free(p->problem);
    free(p->tag);
    libxlsnap_disk_snapshot_init(p);
}

void libxlsnap_domain_snapshot_init(libxlsnap_domain_snapshot *p)
{
    if (!p) return;
    memset(p, 0, sizeof(*p));
}

void libxlsnap_domain_snapshot_dispose(libxlsnap_domain_snapshot *p)
{
    int i;

    if (!p) return;
    free(p->name);
    free(p->description);
    free(p->parent);
    if (p->children) {
        for (i = 0; i < p->num_children; i++)
            free(p->children[i]);
        free(p->children);
    }
    free(p->memory);
    free(p->quiesce);
    free(p->agent);
    free(p->domain_name);
    if (p->disks) {
        for (i = 0; i < p->num_disks; i++)
            libxlsnap_disk_snapshot_dispose(&p->disks[i]);
        free(p->disks);
    }
    libxlsnap_domain_snapshot_init(p);
}

void libxlsnap_domain_snapshot_list_free(libxlsnap_domain_snapshot *list, int nb)
{
    int i;

    if (!list) return;
    for (i = 0; i < nb; i++)
        libxlsnap_domain_snapshot_dispose(&list[i]);
    free(list);
}

void libxlsnap_domain_init(libxlsnap_domain *p)
{
    if (!p) return;
    memset(p, 0, sizeof(*p));
}

void libxlsnap_domain_dispose(libxlsnap_domain *p)
{
    int i;

    if (!p) return;
    free(p->name);
    free(p->config_file);
    if (p->disks) {
        for (i = 0; i < p->num_disks; i++)
            libxl_device_disk_dispose(&p->disks[i]);
        free(p->disks);
    }
    libxlsnap_domain_init(p);
}

void libxlsnap_domain_list_free(libxlsnap_domain *list, int nb)
{
    int i;

    if (!list) return;
    for (i = 0; i < nb; i++)
        libxlsnap_domain_dispose(&list[i]);
    free(list);
}

void libxlsnap_settings_init(libxlsnap_settings *p)
{
    if (!p) return;
    memset(p, 0, sizeof(*p));
    p->lock_timeout = -1;
}

void libxlsnap_settings_dispose(libxlsnap_settings *p)
{
    if (!p) return;
    free(p->state_dir);
    free(p->run_dir);
    free(p->config_dir);
    libxlsnap_settings_init(p);
}

/* ---------------------------------------------------------------- */
/* progress */

void libxl__progress_report(const libxlsnap_progress_how *how,
                            const char *what, uint64_t done,
                            uint64_t total)
{
    libxlsnap_progress p;

    if (!how || !how->callback) return;
    memset(&p, 0, sizeof(p));
    p.what = what;
    p.done = done;
    p.total = total;
    how->callback(&p, how->for_callback);
}

void libxl__progress_report_job(const libxlsnap_progress_how *how,
                                const libxlsnap_blockjob_info *job)
{
    libxlsnap_progress p;

    if (!how || !how->callback) return;
    memset(&p, 0, sizeof(p));
    p.what = job->id ? job->id : "block job";
    p.done = job->offset;
    p.total = job->len;
    p.job = job;
    how->callback(&p, how->for_callback);
}

/* ---------------------------------------------------------------- */
/* enum strings */

const char *libxlsnap_disk_snapshot_type_to_string(libxlsnap_disk_snapshot_type t)
{
    switch (t) {
    case LIBXLSNAP_DISK_SNAPSHOT_TYPE_DEFAULT: return "default";
    case LIBXLSNAP_DISK_SNAPSHOT_TYPE_INTERNAL: return "internal";
    case LIBXLSNAP_DISK_SNAPSHOT_TYPE_EXTERNAL: return "external";
    case LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO: return "no";
    case LIBXLSNAP_DISK_SNAPSHOT_TYPE_LVM: return "lvm";
    case LIBXLSNAP_DISK_SNAPSHOT_TYPE_RBD: return "rbd";
    default: return NULL;
    }
}

/* Case-insensitive, as libxl's generated _from_string. */
int libxlsnap_disk_snapshot_type_from_string(const char *s,
                                         libxlsnap_disk_snapshot_type *t)
{
    libxlsnap_disk_snapshot_type i;

    if (!s || !t) return ERROR_INVAL;
    for (i = LIBXLSNAP_DISK_SNAPSHOT_TYPE_DEFAULT;
         i <= LIBXLSNAP_DISK_SNAPSHOT_TYPE_RBD; i++) {
        if (!strcasecmp(s, libxlsnap_disk_snapshot_type_to_string(i))) {
            *t = i;
            return 0;
        }
    }
    return ERROR_INVAL;
}

const char *libxlsnap_domain_state_to_string(
    libxlsnap_domain_state s)
{
    switch (s) {
    case LIBXLSNAP_DOMAIN_STATE_SHUTOFF: return "shutoff";
    case LIBXLSNAP_DOMAIN_STATE_RUNNING: return "running";
    case LIBXLSNAP_DOMAIN_STATE_PAUSED: return "paused";
    default: return NULL;
    }
}

/* ---------------------------------------------------------------- */
/* names */

/* Is s valid UTF-8 (no overlong forms, no surrogates, <= U+10FFFF)? */
bool libxl__utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p) {
        unsigned c = *p++, n, v, min;
        if (c < 0x80) continue;
        if ((c & 0xe0) == 0xc0) { n = 1; v = c & 0x1f; min = 0x80; }
        else if ((c & 0xf0) == 0xe0) { n = 2; v = c & 0x0f; min = 0x800; }
        else if ((c & 0xf8) == 0xf0) { n = 3; v = c & 0x07; min = 0x10000; }
        else return false;
        while (n--) {
            if ((*p & 0xc0) != 0x80) return false;
            v = (v << 6) | (*p++ & 0x3f);
        }
        if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
            return false;
    }
    return true;
}

int libxlsnap_name_check(const char *name)
{
    const unsigned char *p;
    size_t len;

    if (!name) return ERROR_INVAL;
    len = strlen(name);
    if (!len || len > SNAPSHOT_NAME_MAX) return ERROR_INVAL;
    /* hidden files, "." and "..", and things that look like options */
    if (name[0] == '.' || name[0] == '-') return ERROR_INVAL;
    if (strstr(name, "..")) return ERROR_INVAL;
    for (p = (const unsigned char *)name; *p; p++) {
        if (*p <= 0x20 || *p == 0x7f) return ERROR_INVAL;  /* or space */
        if (*p == '/' || *p == ',') return ERROR_INVAL;
    }
    /*
     * qemu-img looks a snapshot up by ID before name: an all-digit
     * name could select another snapshot whose ID it is.
     */
    if (strspn(name, "0123456789") == len) return ERROR_INVAL;
    return 0;
}

/* ---------------------------------------------------------------- */
/* JSON */

/* The JSON text gen makes of p, indented: malloc'ed, or NULL. */
static char *to_json(libxl__gc *gc, int (*gen)(yajl_gen, const void *),
                     const void *p, const char *what)
{
    yajl_gen hand = yajl_gen_alloc(NULL);
    const unsigned char *buf;
    size_t len;
    char *r = NULL;

    if (!hand) abort();
    yajl_gen_config(hand, yajl_gen_beautify, 1);
    yajl_gen_config(hand, yajl_gen_indent_string, "    ");
    if (gen(hand, p) ||
        yajl_gen_get_buf(hand, &buf, &len) != yajl_gen_status_ok) {
        LOG(ERROR, "cannot generate the JSON of %s", what);
        goto out;
    }
    r = malloc(len + 1);
    if (!r) abort();
    memcpy(r, buf, len);
    r[len] = 0;
 out:
    yajl_gen_free(hand);
    return r;
}

static int gen_snapshot(yajl_gen hand, const void *p)
{
    return libxl__domain_snapshot_gen_json(hand, p);
}

static int gen_blockjob(yajl_gen hand, const void *p)
{
    return libxl__blockjob_info_gen_json(hand, p);
}

char *libxlsnap_domain_snapshot_to_json(libxlsnap_ctx *ctx,
                                    const libxlsnap_domain_snapshot *p)
{
    if (ARGS_MISSING_CTX_OPTIONAL(ctx, p)) return NULL;
    GC_INIT(ctx);
    char *r = to_json(gc, gen_snapshot, p,
                      GCSPRINTF("the record of snapshot '%s'",
                                p->name ? p->name : "(null)"));
    GC_FREE;
    return r;
}

char *libxlsnap_blockjob_info_to_json(libxlsnap_ctx *ctx,
                                  const libxlsnap_blockjob_info *p)
{
    if (ARGS_MISSING_CTX_OPTIONAL(ctx, p)) return NULL;
    GC_INIT(ctx);
    char *r = to_json(gc, gen_blockjob, p, "a block job");
    GC_FREE;
    return r;
}

int libxlsnap_domain_snapshot_from_json(libxlsnap_ctx *ctx,
                                    libxlsnap_domain_snapshot *p,
                                    const char *s)
{
    if (ARGS_MISSING_CTX_OPTIONAL(ctx, p, s)) return ERROR_INVAL;
    GC_INIT(ctx);
    libxlsnap_domain_snapshot tmp;
    yajl_val v;
    int rc;

    libxlsnap_domain_snapshot_init(p);

    v = libxl__json_parse(gc, s);
    if (!v) {
        LOG(ERROR, "cannot parse snapshot record: not valid JSON");
        rc = ERROR_INVAL;
        goto out;
    }
    /* into the gc first, so that the reason for a refusal is logged */
    rc = libxl__domain_snapshot_parse_json(gc, v, &tmp);
    if (rc) goto out;
    libxl__domain_snapshot_copy(p, &tmp);
    rc = 0;

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
