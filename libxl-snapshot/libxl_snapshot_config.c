/*
 * libxl_snapshot_config.c - xl domain and snapshot configuration
 *
 * Domain configs are read with libxlutil, exactly as xl reads them:
 * xlu_cfg_readfile for the file and xlu_disk_parse for each disk= entry,
 * so whatever xl accepts here means the same thing.  We keep only what
 * the snapshot layer needs (libxl__domain_config).  libxlutil prints
 * its diagnostics to a FILE; we hand it a memory stream and put its
 * last line into our own one-line message, so a caller sees one error
 * naming the file and nothing on stderr.  The libxl_device_disk
 * strings xlu_disk_parse malloc's are adopted into the gc rather than
 * copied.
 *
 * A domain without uuid= gets a uuid derived from its name: SHA-1 of
 * "libxl-snapshot:<name>" cut to 128 bits and marked as an RFC 4122
 * version 5 (name-based, SHA-1) uuid.  It only has to be stable, so
 * that the records of a domain started from an xl config without a
 * uuid are found again after a restart.
 *
 * Snapshot configs (xl.snapshot.cfg, after the 2014 RFC on xl
 * snapshots) take name, description, memory, an optional type (the
 * default for the listed disks) and disk = [...], where an entry is
 * either
 *   - xl disk syntax, as in the RFC: 'format=qcow2,vdev=hda,target=PATH'
 *     is an external snapshot with its new overlay at PATH, and
 *     'vdev=hdc,target=null' an internal one (as in any xl disk spec,
 *     target= must come last); or
 *   - a libvirt-style disk spec "vdev[,snapshot=TYPE][,file=PATH]", as
 *     virsh --diskspec and `xl snapshot-create --disk`, parsed by
 *     libxlsnap_disk_snapshot_parse_spec.  ",," stands for a comma in a
 *     value.
 * An entry whose first item has an '=' is xl syntax; otherwise it
 * starts with a bare vdev and is a disk spec.  A snapshot config is
 * strict, as its settings are few and a mistake costs a snapshot: a
 * setting it does not take, a value of the wrong kind (memory = 1, a
 * number: libxlutil would hand it over as the string "1") and a relative
 * path (memory=, an overlay's target= or file=: relative to whose cwd?)
 * are refused in one line naming the file, the line and the setting.
 * libxlutil does not say which settings a file makes, on which line,
 * nor whether a value was quoted: cfg_scan reads that from the text.
 *
 * Settings (libxl__snapshot_setting: max_chain, space_threshold...) are
 * whole numbers looked up, first found wins, in the environment
 * (XL_SNAPSHOT_<KEY>), the domain's xl config (snapshot_<key> = N, which
 * xl itself ignores), the host file <config dir>/xl-snapshot.conf
 * (key = N, xl.conf syntax) and last the built-in default (Config.mk).
 * A value that is not a number in range is refused, naming where it
 * came from, rather than replaced by the default: a limit the admin
 * believes set must not silently be another.
 * Nothing here runs a shell or touches the disks.
 */
#include "libxl_snapshot_internal.h"

#include <limits.h>

#include <ctype.h>

#include <libxlutil.h>

/* ---------------------------------------------------------------- */
/* libxlutil's report, captured */

typedef struct xlu_report {
    FILE *f;
    char *buf;
    size_t len;
} xlu_report;

/* Opens the report stream and an XLU_Config reporting to it. */
static int xlu_open(libxl__gc *gc, const char *file, xlu_report *rep,
                    XLU_Config **xlu_r)
{
    rep->buf = NULL;
    rep->len = 0;
    rep->f = open_memstream(&rep->buf, &rep->len);
    if (!rep->f) {
        LOGE(ERROR, "%s: cannot allocate parser report stream", file);
        return ERROR_FAIL;
    }
    *xlu_r = xlu_cfg_init(rep->f, file);
    if (!*xlu_r) {
        LOGE(ERROR, "%s: cannot initialise config parser", file);
        return ERROR_FAIL;
    }
    return 0;
}

static void xlu_close(XLU_Config *xlu, xlu_report *rep)
{
    if (xlu) xlu_cfg_destroy(xlu);
    if (rep->f) fclose(rep->f);
    free(rep->buf);
    rep->f = NULL;
    rep->buf = NULL;
}

/* The last line libxlutil reported (gc), or NULL. */
/*
 * Its last line, but for the "warning:" lines libxlutil adds after an
 * error (a '-' in a value makes it suspect Python and say so in three
 * lines after the one naming the file and line).
 */
static const char *xlu_last_report(libxl__gc *gc, xlu_report *rep)
{
    char *s, *nl;

    if (!rep->f) return NULL;
    fflush(rep->f);
    if (!rep->buf || !rep->len) return NULL;
    s = GCSTRDUP(rep->buf);
    for (;;) {
        while (*s && s[strlen(s) - 1] == '\n')
            s[strlen(s) - 1] = 0;
        nl = strrchr(s, '\n');
        if (!nl || strncmp(nl + 1, "warning:", 8)) break;
        *nl = 0;
    }
    if (nl) s = nl + 1;
    return *s ? s : NULL;
}

/*
 * Logs a libxlutil failure as one line naming file.  libxlutil's own
 * messages already start with the file name; others get it prefixed.
 */
static void log_xlu_error(libxl__gc *gc, xlu_report *rep, const char *file,
                          const char *what)
{
    const char *msg = xlu_last_report(gc, rep);
    size_t flen = strlen(file);

    if (msg && !strncmp(msg, file, flen) && msg[flen] == ':')
        LOG(ERROR, "%s", msg);
    else if (msg)
        LOG(ERROR, "%s: %s: %s", file, what, msg);
    else
        LOG(ERROR, "%s: %s", file, what);
}

/*
 * The file is read here and parsed from memory: a NUL byte is refused
 * first, as libxlutil's lexer takes it inside a string and then fails
 * an assertion (found by tests/fuzz/fuzz_config.c), and a config file
 * has no business holding one.
 */
static int xlu_read(libxl__gc *gc, XLU_Config *xlu, xlu_report *rep,
                    const char *file, const char **data_r)
{
    char *data;
    size_t len;
    int e, rc;

    rc = libxl__read_file(gc, file, &data, &len);
    if (rc) {
        LOG(ERROR, "%s: cannot read config: %s", file,
            rc == ERROR_NOTFOUND ? "no such file" : "read error");
        return ERROR_INVAL;
    }
    if (memchr(data, 0, len) || len > INT_MAX) {
        LOG(ERROR, "%s: not a config file (it holds a NUL byte)", file);
        return ERROR_INVAL;
    }
    e = xlu_cfg_readdata(xlu, data, (int)len);
    if (!e) {
        if (data_r) *data_r = data;
        return 0;
    }
    if (e == EINVAL) {
        log_xlu_error(gc, rep, file, "syntax error");
    } else {
        /* libxlutil's own message has a clobbered errno */
        LOG(ERROR, "%s: cannot read config: %s", file, strerror(e));
    }
    return ERROR_INVAL;
}

/*
 * Optional string setting: 0 and *s_r, or 0 and *s_r NULL when absent;
 * ERROR_INVAL (logged) when it is a list.
 */
static int get_opt_string(libxl__gc *gc, XLU_Config *xlu, const char *file,
                          const char *key, const char **s_r)
{
    int e = xlu_cfg_get_string(xlu, key, s_r, 1);

    if (e == ESRCH) {
        *s_r = NULL;
        return 0;
    }
    if (e) {
        LOG(ERROR, "%s: %s= must be a single value, not a list", file, key);
        return ERROR_INVAL;
    }
    return 0;
}

/* ---------------------------------------------------------------- */
/* uuid from name: SHA-1 (FIPS 180-4), for 20 bytes of a short string */

static uint32_t rol32(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static void sha1_block(uint32_t h[5], const unsigned char *p)
{
    uint32_t w[80], a, b, c, d, e, f, k, t;
    int i;

    for (i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (i = 16; i < 80; i++)
        w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);

    a = h[0]; b = h[1]; c = h[2]; d = h[3]; e = h[4];
    for (i = 0; i < 80; i++) {
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }
        t = rol32(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol32(b, 30);
        b = a;
        a = t;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
}

static void sha1(const void *data, size_t len, unsigned char out[20])
{
    uint32_t h[5] = { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476,
                      0xc3d2e1f0 };
    const unsigned char *p = data;
    unsigned char tail[128];
    size_t rest, tlen;
    uint64_t bits = (uint64_t)len * 8;
    int i;

    for (; len >= 64; p += 64, len -= 64)
        sha1_block(h, p);

    /* last bytes, 0x80, zeros, 64-bit big-endian length: 1 or 2 blocks */
    rest = len;
    memset(tail, 0, sizeof(tail));
    memcpy(tail, p, rest);
    tail[rest] = 0x80;
    tlen = rest + 1 + 8 <= 64 ? 64 : 128;
    for (i = 0; i < 8; i++)
        tail[tlen - 1 - i] = (unsigned char)(bits >> (8 * i));
    sha1_block(h, tail);
    if (tlen == 128)
        sha1_block(h, tail + 64);

    for (i = 0; i < 20; i++)
        out[i] = (unsigned char)(h[i / 4] >> (24 - 8 * (i % 4)));
}

void libxl__uuid_from_name(const char *name, libxl_uuid *uuid_r)
{
    static const char prefix[] = "libxl-snapshot:";
    size_t plen = sizeof(prefix) - 1, nlen = strlen(name);
    unsigned char digest[20];
    uint8_t *u = libxl_uuid_bytearray(uuid_r);
    char *buf = malloc(plen + nlen + 1);

    if (!buf) {
        fputs("libxl-snapshot: out of memory\n", stderr);
        abort();
    }
    memcpy(buf, prefix, plen);
    memcpy(buf + plen, name, nlen + 1);
    sha1(buf, plen + nlen, digest);
    free(buf);

    memcpy(u, digest, 16);
    u[6] = (u[6] & 0x0f) | 0x50;        /* version 5: name-based, SHA-1 */
    u[8] = (u[8] & 0x3f) | 0x80;        /* variant: RFC 4122 */
}

/* ---------------------------------------------------------------- */
/* domain config */

/*
 * The xlu_disk_parse'd disk is moved into *dst: the struct is copied
 * and its malloc'ed strings adopted by the gc.
 */
static void disk_adopt(libxl__gc *gc, libxl_device_disk *dst,
                       libxl_device_disk *src)
{
    *dst = *src;
    libxl__gc_adopt(gc, dst->backend_domname);
    libxl__gc_adopt(gc, dst->pdev_path);
    libxl__gc_adopt(gc, dst->vdev);
    libxl__gc_adopt(gc, dst->script);
    libxl__gc_adopt(gc, dst->colo_host);
    libxl__gc_adopt(gc, dst->colo_export);
    libxl__gc_adopt(gc, dst->active_disk);
    libxl__gc_adopt(gc, dst->hidden_disk);
    libxl_device_disk_init(src);
}

/*
 * libxlutil's disk lexer (flex) exits the process on some input with a
 * control character in it (found by fuzzing: "\xf8k=\n"): such a disk
 * is refused here first, in one line.  No path or option has one.
 */
static int disk_spec_check(libxl__gc *gc, const char *file,
                           const char *spec)
{
    const unsigned char *p;

    for (p = (const unsigned char *)spec; *p; p++)
        if (*p < 0x20 || *p == 0x7f) {
            LOG(ERROR, "%s: disk '%s' holds a control character", file,
                libxl__printable(gc, spec));
            return ERROR_INVAL;
        }
    return 0;
}

static int parse_domain_disk(libxl__gc *gc, XLU_Config *xlu,
                             xlu_report *rep, const char *file,
                             const char *spec, libxl_device_disk *disk_r)
{
    libxl_device_disk disk;
    int e, rc;

    libxl_device_disk_init(&disk);
    rc = disk_spec_check(gc, file, spec);
    if (rc) goto out;
    e = xlu_disk_parse(xlu, 1, &spec, &disk);
    if (e) {
        log_xlu_error(gc, rep, file,
                      GCSPRINTF("bad disk '%s'", spec));
        rc = ERROR_INVAL;
        goto out;
    }
    if (!disk.vdev || !*disk.vdev) {
        LOG(ERROR, "%s: disk '%s' has no vdev=", file, spec);
        rc = ERROR_INVAL;
        goto out;
    }
    if (!disk.is_cdrom && (!disk.pdev_path || !*disk.pdev_path)) {
        LOG(ERROR, "%s: disk '%s' has no target=", file, spec);
        rc = ERROR_INVAL;
        goto out;
    }
    disk_adopt(gc, disk_r, &disk);
    /*
     * Images are named by absolute path from here on: records, QEMU's
     * node "file" and qemu-img must all agree whatever the cwd.
     */
    if (disk_r->pdev_path && *disk_r->pdev_path &&
        disk_r->pdev_path[0] != '/' &&
        libxl__image_is_file(disk_r->pdev_path))
        disk_r->pdev_path = libxl__abs_path(gc, disk_r->pdev_path);
    rc = 0;
 out:
    libxl_device_disk_dispose(&disk);
    return rc;
}

/*
 * One channel= entry, "key=value,...": the guest agent's is
 * name=org.qemu.guest_agent.0 with connection=socket and a path.
 */
static int parse_agent_channel(libxl__gc *gc, const char *file,
                               const char *spec, char **path_r)
{
    char *copy = GCSTRDUP(spec), *tok, *save;
    const char *name = NULL, *conn = NULL, *path = NULL;

    for (tok = strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) continue;
        *eq++ = 0;
        while (*tok == ' ') tok++;
        if (!strcmp(tok, "name")) name = eq;
        else if (!strcmp(tok, "connection")) conn = eq;
        else if (!strcmp(tok, "path")) path = eq;
    }
    if (!name || strcmp(name, "org.qemu.guest_agent.0")) return 0;
    if (!conn || strcmp(conn, "socket") || !path || *path != '/') {
        LOG(ERROR, "%s: the guest agent's channel needs connection=socket "
            "and an absolute path=", file);
        return ERROR_INVAL;
    }
    *path_r = GCSTRDUP(path);
    return 0;
}

/*
 * Domain names.  xl only requires one (libxl: unique among running
 * domains), but an all-digit name is what xl takes for a domain id
 * (libxl_domain_qualifier_to_domid), so xl could never name that
 * domain; and the name goes into file names (the qemu driver's
 * <run dir>/qemu-dm-<name>.log, as libxl's qemu-dm-<name>.log), so
 * it must be one file name component: no '/', not hidden or "." /
 * "..", no control characters, and short enough for NAME_MAX with
 * the prefix and suffix.  Returns why name is refused, or NULL.
 */
#define DOMAIN_NAME_MAX 200           /* and in the message below */

static const char *domain_name_problem(const char *name)
{
    const unsigned char *p;
    size_t len = strlen(name);

    if (!len) return "it is empty";
    if (len > DOMAIN_NAME_MAX)
        return "it is longer than 200 bytes";
    if (strchr(name, '/')) return "it contains '/'";
    if (name[0] == '.') return "it starts with '.'";
    for (p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return "it contains a control character";
    if (strspn(name, "0123456789") == len)
        return "it is all digits, which xl takes for a domain id";
    return NULL;
}

int libxl__domain_config_parse(libxl__gc *gc, const char *file,
                               libxl__domain_config *cfg_r)
{
    XLU_Config *xlu = NULL;
    xlu_report rep = { 0 };
    libxl__domain_config cfg;
    XLU_ConfigList *list;
    const char *s;
    long l;
    int e, i, j, n, rc;

    memset(&cfg, 0, sizeof(cfg));
    cfg.file = libxl__abs_path(gc, file);

    rc = xlu_open(gc, cfg.file, &rep, &xlu);
    if (rc) goto out;
    rc = xlu_read(gc, xlu, &rep, cfg.file, NULL);
    if (rc) goto out;

    rc = get_opt_string(gc, xlu, cfg.file, "name", &s);
    if (rc) goto out;
    if (!s || !*s) {
        LOG(ERROR, "%s: no name= (a domain needs a name)", cfg.file);
        rc = ERROR_INVAL;
        goto out;
    }
    if (domain_name_problem(s)) {
        LOG(ERROR, "%s: name=\"%s\" is not a valid domain name: %s",
            cfg.file, libxl__printable(gc, s), domain_name_problem(s));
        rc = ERROR_INVAL;
        goto out;
    }
    cfg.name = GCSTRDUP(s);

    rc = get_opt_string(gc, xlu, cfg.file, "uuid", &s);
    if (rc) goto out;
    if (s) {
        if (libxl_uuid_from_string(&cfg.uuid, s)) {
            LOG(ERROR, "%s: uuid=\"%s\" is not a valid uuid", cfg.file, s);
            rc = ERROR_INVAL;
            goto out;
        }
        cfg.have_uuid = true;
    } else {
        libxl__uuid_from_name(cfg.name, &cfg.uuid);
    }

    e = xlu_cfg_get_long(xlu, "memory", &l, 1);
    if (!e) {
        if (l <= 0) {
            LOG(ERROR, "%s: memory=%ld is not a size in MB", cfg.file, l);
            rc = ERROR_INVAL;
            goto out;
        }
        cfg.memory_mb = l;
    } else if (e != ESRCH) {
        LOG(ERROR, "%s: memory= must be a number of MB", cfg.file);
        rc = ERROR_INVAL;
        goto out;
    }

    /* the device model binary, as xl's device_model_override */
    rc = get_opt_string(gc, xlu, cfg.file, "device_model_override", &s);
    if (rc) goto out;
    cfg.device_model = GCSTRDUP(s);

    /* more arguments for the device model, as xl's device_model_args */
    e = xlu_cfg_get_list(xlu, "device_model_args", &list, &n, 1);
    if (e && e != ESRCH) {
        LOG(ERROR, "%s: device_model_args= must be a list of strings",
            cfg.file);
        rc = ERROR_INVAL;
        goto out;
    }
    if (!e) {
        GCNEW_ARRAY(cfg.dm_args, n);
        for (i = 0; i < n; i++) {
            s = xlu_cfg_get_listitem(list, i);
            if (!s) {
                LOG(ERROR, "%s: device_model_args entry %d is not a string",
                    cfg.file, i + 1);
                rc = ERROR_INVAL;
                goto out;
            }
            cfg.dm_args[cfg.num_dm_args++] = GCSTRDUP(s);
        }
    }

    /* the guest agent's channel, as xl's channel=[...] */
    e = xlu_cfg_get_list(xlu, "channel", &list, &n, 1);
    if (e && e != ESRCH) {
        LOG(ERROR, "%s: channel= must be a list of strings", cfg.file);
        rc = ERROR_INVAL;
        goto out;
    }
    for (i = 0; !e && i < n; i++) {
        s = xlu_cfg_get_listitem(list, i);
        if (s) {
            rc = parse_agent_channel(gc, cfg.file, s, &cfg.agent_path);
            if (rc) goto out;
        }
    }

    e = xlu_cfg_get_list(xlu, "disk", &list, &n, 1);
    if (e == ESRCH) {
        n = 0;
    } else if (e) {
        LOG(ERROR, "%s: disk= must be a list: disk = [ '...', ... ]",
            cfg.file);
        rc = ERROR_INVAL;
        goto out;
    }
    GCNEW_ARRAY(cfg.disks, n);
    for (i = 0; i < n; i++) {
        libxl_device_disk *d = &cfg.disks[i];

        s = xlu_cfg_get_listitem(list, i);
        if (!s) {
            LOG(ERROR, "%s: disk entry %d is not a string", cfg.file, i + 1);
            rc = ERROR_INVAL;
            goto out;
        }
        rc = parse_domain_disk(gc, xlu, &rep, cfg.file, s, d);
        if (rc) goto out;
        cfg.num_disks++;
        for (j = 0; j < i; j++) {
            if (!strcmp(cfg.disks[j].vdev, d->vdev)) {
                LOG(ERROR, "%s: two disks with vdev=%s", cfg.file, d->vdev);
                rc = ERROR_INVAL;
                goto out;
            }
        }
    }

    *cfg_r = cfg;
    rc = 0;
 out:
    xlu_close(xlu, &rep);
    return rc;
}

/* ---------------------------------------------------------------- */
/* disk formats and QEMU node names */

const char *libxl__disk_format_qemu(libxl_disk_format f)
{
    switch (f) {
    case LIBXL_DISK_FORMAT_QCOW2: return "qcow2";
    case LIBXL_DISK_FORMAT_QCOW:  return "qcow";
    case LIBXL_DISK_FORMAT_RAW:   return "raw";
    case LIBXL_DISK_FORMAT_VHD:   return "vpc";
    case LIBXL_DISK_FORMAT_QED:   return "qed";
    default:                      return NULL;
    }
}

int libxl__disk_format_from_qemu(const char *s, libxl_disk_format *f)
{
    static const libxl_disk_format all[] = {
        LIBXL_DISK_FORMAT_QCOW2, LIBXL_DISK_FORMAT_QCOW,
        LIBXL_DISK_FORMAT_RAW, LIBXL_DISK_FORMAT_VHD,
        LIBXL_DISK_FORMAT_QED,
    };
    size_t i;

    if (!s) return ERROR_INVAL;
    for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (!strcmp(s, libxl__disk_format_qemu(all[i]))) {
            *f = all[i];
            return 0;
        }
    }
    return ERROR_INVAL;
}

/*
 * Formats QEMU has no driver name for here (unknown: libxl treats it
 * as raw) get "raw", so callers always have a name.
 */
char *libxl__disk_node_name(libxl__gc *gc, const char *vdev,
                            libxl_disk_format format)
{
    const char *drv = libxl__disk_format_qemu(format);
    return GCSPRINTF("%s-%s", vdev, drv ? drv : "raw");
}

/* ---------------------------------------------------------------- */
/* disk specs */

/*
 * Splits spec at commas into gc strings; ",," stands for a literal
 * comma.  There is always at least one (maybe empty) item.
 */
static char **spec_split(libxl__gc *gc, const char *spec, int *n_r)
{
    size_t len = strlen(spec);
    char *buf = libxl__gc_zalloc(gc, len + 1), *w = buf;
    char **items;
    const char *p;
    int n = 0;

    GCNEW_ARRAY(items, len + 2);
    items[n++] = w;
    for (p = spec; *p; p++) {
        if (*p == ',') {
            if (p[1] == ',') {
                *w++ = ',';
                p++;
                continue;
            }
            *w++ = 0;
            items[n++] = w;
            continue;
        }
        *w++ = *p;
    }
    *w = 0;
    *n_r = n;
    return items;
}

static bool vdev_valid(const char *vdev)
{
    const char *p;

    if (!*vdev) return false;
    for (p = vdev; *p; p++)
        if (!isalnum((unsigned char)*p)) return false;
    return true;
}

/*
 * "vdev[,snapshot=internal|external|lvm|no][,file=PATH][,cow=SIZE]" into *out (gc
 * strings).  where names the spec in messages.  absolute: a relative
 * file= is refused (a config file's: relative to what?); else it is
 * taken from the cwd (the command line's).
 */
static int diskspec_parse(libxl__gc *gc, const char *where,
                          const char *spec, bool absolute,
                          libxlsnap_disk_snapshot *out)
{
    char **items;
    const char *type_s = NULL, *file = NULL, *cow = NULL;
    libxlsnap_disk_snapshot_type type = LIBXLSNAP_DISK_SNAPSHOT_TYPE_DEFAULT;
    int i, n;

    items = spec_split(gc, spec, &n);
    if (!vdev_valid(items[0])) {
        if (!*items[0] || strchr(items[0], '='))
            LOG(ERROR, "%s: must start with the disk's vdev "
                "(vdev[,snapshot=TYPE][,file=PATH])", where);
        else
            LOG(ERROR, "%s: '%s' is not a vdev", where, items[0]);
        return ERROR_INVAL;
    }
    for (i = 1; i < n; i++) {
        char *key = items[i], *val = strchr(key, '=');

        if (!val) {
            LOG(ERROR, "%s: '%s' is not key=value", where, key);
            return ERROR_INVAL;
        }
        *val++ = 0;
        if (!strcmp(key, "snapshot")) {
            if (type_s) {
                LOG(ERROR, "%s: snapshot= given twice", where);
                return ERROR_INVAL;
            }
            type_s = val;
        } else if (!strcmp(key, "file")) {
            if (file) {
                LOG(ERROR, "%s: file= given twice", where);
                return ERROR_INVAL;
            }
            file = val;
        } else if (!strcmp(key, "cow")) {
            /* an LVM size or N%: lvcreate checks it; we keep it to argv */
            if (cow || !*val || val[0] == '-' ||
                val[strspn(val, "0123456789.%bBsSkKmMgGtTpPeE")]) {
                LOG(ERROR, "%s: cow=%s: give one size, e.g. 512M or 20%%",
                    where, val);
                return ERROR_INVAL;
            }
            cow = val;
        } else {
            LOG(ERROR, "%s: unknown key '%s' (snapshot=, file= or cow=)",
                where, key);
            return ERROR_INVAL;
        }
    }

    /* the type's own name, as spelt (not "default") */
    if (type_s &&
        (libxlsnap_disk_snapshot_type_from_string(type_s, &type) ||
         type == LIBXLSNAP_DISK_SNAPSHOT_TYPE_DEFAULT ||
         strcmp(type_s, libxlsnap_disk_snapshot_type_to_string(type)))) {
        LOG(ERROR, "%s: snapshot=%s: use internal, external, lvm or no",
            where, type_s);
        return ERROR_INVAL;
    }
    if (file) {
        if (!*file) {
            LOG(ERROR, "%s: file= needs a path", where);
            return ERROR_INVAL;
        }
        if (absolute && file[0] != '/') {
            LOG(ERROR, "%s: file=%s is a relative path: give an absolute "
                "one", where, file);
            return ERROR_INVAL;
        }
        if (type == LIBXLSNAP_DISK_SNAPSHOT_TYPE_DEFAULT) {
            type = LIBXLSNAP_DISK_SNAPSHOT_TYPE_EXTERNAL;
        } else if (type != LIBXLSNAP_DISK_SNAPSHOT_TYPE_EXTERNAL) {
            LOG(ERROR, "%s: file= is only for snapshot=external", where);
            return ERROR_INVAL;
        }
    }

    if (cow && type != LIBXLSNAP_DISK_SNAPSHOT_TYPE_DEFAULT &&
        type != LIBXLSNAP_DISK_SNAPSHOT_TYPE_LVM) {
        LOG(ERROR, "%s: cow= is only for LVM snapshots", where);
        return ERROR_INVAL;
    }
    out->vdev = GCSTRDUP(items[0]);
    out->type = type;
    out->overlay = file ? libxl__abs_path(gc, file) : NULL;
    out->cow = cow ? GCSTRDUP(cow) : NULL;
    return 0;
}

int libxlsnap_disk_snapshot_parse_spec(libxlsnap_ctx *ctx,
                                   const char *spec,
                                   libxlsnap_disk_snapshot *disk)
{
    if (ARGS_MISSING(ctx, spec, disk)) return ERROR_INVAL;
    GC_INIT(ctx);
    libxlsnap_disk_snapshot d;
    int rc;

    memset(&d, 0, sizeof(d));
    rc = diskspec_parse(gc, GCSPRINTF("disk spec '%s'", spec), spec, false,
                        &d);
    if (rc) goto out;

    free(disk->vdev);
    free(disk->overlay);
    free(disk->cow);
    disk->vdev = strdup(d.vdev);
    disk->overlay = d.overlay ? strdup(d.overlay) : NULL;
    disk->cow = d.cow ? strdup(d.cow) : NULL;
    if (!disk->vdev || (d.overlay && !disk->overlay) ||
        (d.cow && !disk->cow)) {
        fputs("libxl-snapshot: out of memory\n", stderr);
        abort();
    }
    disk->type = d.type;
    rc = 0;
 out:
    GC_FREE;
    return rc;
}

/* ---------------------------------------------------------------- */
/* snapshot config */

/* ---------------------------------------------------------------- */
/* the settings a config file makes, with their lines */

/*
 * libxlutil answers by key, but says neither which keys a file sets,
 * nor on which line, nor whether a value was quoted.  A snapshot config
 * is checked for those (an unknown setting, a number where a string is
 * meant), so it is scanned again here, with xl's tokens (xl.cfg(5)):
 * identifiers, numbers, strings in '' or "" (with \ escapes), = += , ;
 * [ ], # comments, and newlines, which end a setting outside brackets.
 * Text libxlutil refused is not scanned: cfg_scan returns ERROR_INVAL
 * for anything it does not follow, and logs nothing.
 */
typedef enum { CFG_STRING, CFG_NUMBER, CFG_LIST } cfg_kind;

typedef struct {
    const char *key;
    int line;                         /* of its (last) assignment */
    cfg_kind kind;
    const char *atom;                 /* a string's (unquoted) or number's */
    int num_items;                    /* a list's top-level items: */
    int *item_line;                   /*   the line of each */
    bool *item_quoted;                /*   whether it is a string */
    const char **item_atom;           /*   its text (NULL: a list) */
} cfg_setting;

typedef struct {
    const char *p;
    int line;
} cfg_lexer;

/* tokens; a punctuation character is itself: = , ; [ ] */
enum { TOK_EOF = 256, TOK_BAD, TOK_IDENT, TOK_NUMBER, TOK_STRING, TOK_NL,
       TOK_ADD };

/* The next token, and its text (a string's without its quotes). */
static int cfg_token(cfg_lexer *lx, const char **text, size_t *len)
{
    const char *p = lx->p, *start;
    int t;

    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r') p++;
        if (*p != '#') break;
        while (*p && *p != '\n') p++;
    }
    start = p;
    if (!*p) {
        t = TOK_EOF;
    } else if (*p == '\n') {
        lx->line++;
        p++;
        t = TOK_NL;
    } else if (isalpha((unsigned char)*p) || *p == '_') {
        while (isalnum((unsigned char)*p) || *p == '_') p++;
        t = TOK_IDENT;
    } else if (isdigit((unsigned char)*p)) {
        while (isalnum((unsigned char)*p) || *p == '.') p++;
        t = TOK_NUMBER;
    } else if (*p == '"' || *p == '\'') {
        char q = *p++;
        start = p;
        while (*p && *p != q && *p != '\n')
            p += *p == '\\' && p[1] && p[1] != '\n' ? 2 : 1;
        if (*p != q) return TOK_BAD;
        *text = start;
        *len = p - start;
        lx->p = p + 1;
        return TOK_STRING;
    } else if (*p == '+' && p[1] == '=') {
        p += 2;
        t = TOK_ADD;
    } else if (strchr("=,;[]", *p)) {
        t = *p++;
    } else {
        return TOK_BAD;
    }
    *text = start;
    *len = p - start;
    lx->p = p;
    return t;
}

/* The settings data makes, in the order first made (gc). */
static int cfg_scan(libxl__gc *gc, const char *data, cfg_setting **set_r,
                    int *n_r)
{
    cfg_lexer lx = { data, 1 };
    cfg_setting *set = NULL, *cur;
    const char *text, *key;
    size_t len;
    int n = 0, t, i, line, depth;

    for (;;) {
        line = lx.line;
        t = cfg_token(&lx, &text, &len);
        if (t == TOK_EOF) break;
        if (t == TOK_NL || t == ';') continue;
        if (t != TOK_IDENT) return ERROR_INVAL;
        key = GCSPRINTF("%.*s", (int)len, text);
        t = cfg_token(&lx, &text, &len);
        if (t != '=' && t != TOK_ADD) return ERROR_INVAL;
        for (i = 0; i < n && strcmp(set[i].key, key); i++)
            ;
        if (i == n) {
            GCREALLOC_ARRAY(set, n + 1);
            memset(&set[n++], 0, sizeof(*set));
        }
        cur = &set[i];
        if (t == '=' || cur->kind != CFG_LIST)   /* += adds list items */
            memset(cur, 0, sizeof(*cur));
        cur->key = key;
        cur->line = line;
        t = cfg_token(&lx, &text, &len);
        if (t == TOK_STRING || t == TOK_NUMBER) {
            cur->kind = t == TOK_STRING ? CFG_STRING : CFG_NUMBER;
            cur->atom = GCSPRINTF("%.*s", (int)len, text);
        } else if (t == '[') {
            cur->kind = CFG_LIST;
            for (depth = 1; depth; ) {
                line = lx.line;
                t = cfg_token(&lx, &text, &len);
                if (t == ']') {
                    depth--;
                    continue;
                }
                if (t == ',' || t == TOK_NL) continue;
                if (t != TOK_STRING && t != TOK_NUMBER && t != '[')
                    return ERROR_INVAL;
                if (depth == 1) {
                    GCREALLOC_ARRAY(cur->item_line, cur->num_items + 1);
                    GCREALLOC_ARRAY(cur->item_quoted, cur->num_items + 1);
                    GCREALLOC_ARRAY(cur->item_atom, cur->num_items + 1);
                    cur->item_line[cur->num_items] = line;
                    cur->item_atom[cur->num_items] = t == '[' ? NULL
                        : GCSPRINTF("%.*s", (int)len, text);
                    cur->item_quoted[cur->num_items++] = t == TOK_STRING;
                }
                if (t == '[') depth++;
            }
        } else {
            return ERROR_INVAL;
        }
        t = cfg_token(&lx, &text, &len);
        if (t == TOK_EOF) break;
        if (t != TOK_NL && t != ';') return ERROR_INVAL;
    }
    *set_r = set;
    *n_r = n;
    return 0;
}

static const cfg_setting *cfg_find(const cfg_setting *set, int n,
                                   const char *key)
{
    int i;
    for (i = 0; i < n; i++)
        if (!strcmp(set[i].key, key)) return &set[i];
    return NULL;
}

/* "FILE:LINE" of key's setting, for messages (FILE if it has none). */
static const char *cfg_at(libxl__gc *gc, const char *file,
                          const cfg_setting *set, int n, const char *key)
{
    const cfg_setting *c = cfg_find(set, n, key);
    return c ? GCSPRINTF("%s:%d", file, c->line) : file;
}

/* What a snapshot config may set, and how. */
static const struct {
    const char *key;
    cfg_kind kind;
    const char *want;                 /* said when it is given otherwise */
} snapshot_settings[] = {
    { "name", CFG_STRING, "a snapshot name, in quotes" },
    { "description", CFG_STRING, "text, in quotes" },
    { "memory", CFG_STRING,
      "\"no\", \"yes\" or an absolute path, in quotes" },
    { "type", CFG_STRING, "\"internal\" or \"external\"" },
    { "disk", CFG_LIST, "a list: disk = [ '...', ... ]" },
};

/* Each setting is a snapshot config's, of its kind; else logged. */
static int snapshot_settings_check(libxl__gc *gc, const char *file,
                                   const cfg_setting *set, int n)
{
    const size_t nk = sizeof(snapshot_settings) / sizeof(snapshot_settings[0]);
    const cfg_setting *c;
    size_t k;
    int i, j;

    for (i = 0; i < n; i++) {
        c = &set[i];
        for (k = 0; k < nk; k++)
            if (!strcmp(c->key, snapshot_settings[k].key)) break;
        if (k == nk) {
            LOG(ERROR, "%s:%d: unknown setting '%s' (a snapshot config "
                "takes name, description, memory, type and disk)", file,
                c->line, c->key);
            return ERROR_INVAL;
        }
        if (c->kind != snapshot_settings[k].kind) {
            LOG(ERROR, "%s:%d: %s=%s: give %s", file, c->line, c->key,
                c->kind == CFG_LIST ? "[...]"
                : c->kind == CFG_NUMBER ? c->atom
                : GCSPRINTF("\"%s\"", libxl__printable(gc, c->atom)),
                snapshot_settings[k].want);
            return ERROR_INVAL;
        }
        for (j = 0; c->kind == CFG_LIST && j < c->num_items; j++)
            if (!c->item_quoted[j]) {
                LOG(ERROR, "%s:%d: %s= entry %d is not a string in quotes",
                    file, c->item_line[j], c->key, j + 1);
                return ERROR_INVAL;
            }
    }
    return 0;
}

/*
 * An RFC-style entry in xl disk syntax: target=null is internal, any
 * other target the path of the new (qcow2) overlay.
 */
static int rfc_disk_parse(libxl__gc *gc, XLU_Config *xlu, xlu_report *rep,
                          const char *file, const char *where,
                          const char *spec, libxlsnap_disk_snapshot *out)
{
    libxl_device_disk disk;
    char **items;
    int e, i, n, rc;

    libxl_device_disk_init(&disk);
    rc = disk_spec_check(gc, file, spec);
    if (rc) goto out;
    e = xlu_disk_parse(xlu, 1, &spec, &disk);
    if (e) {
        log_xlu_error(gc, rep, file, GCSPRINTF("bad disk '%s'", spec));
        rc = ERROR_INVAL;
        goto out;
    }
    if (!disk.vdev || !*disk.vdev) {
        LOG(ERROR, "%s: no vdev=", where);
        rc = ERROR_INVAL;
        goto out;
    }
    if (!disk.pdev_path || !*disk.pdev_path) {
        LOG(ERROR, "%s: no target= (an overlay path, or null for an "
            "internal snapshot)", where);
        rc = ERROR_INVAL;
        goto out;
    }

    out->vdev = GCSTRDUP(disk.vdev);
    if (!strcmp(disk.pdev_path, "null")) {
        out->type = LIBXLSNAP_DISK_SNAPSHOT_TYPE_INTERNAL;
    } else {
        /* xlu reports a missing format= as raw: look at what was said */
        items = spec_split(gc, spec, &n);
        for (i = 0; i < n; i++) {
            if (!strncmp(items[i], "target=", 7)) break;
            if (!strncmp(items[i], "format=", 7) &&
                strcmp(items[i] + 7, "qcow2")) {
                LOG(ERROR, "%s: an external snapshot's overlay is qcow2, "
                    "not %s", where, items[i] + 7);
                rc = ERROR_INVAL;
                goto out;
            }
        }
        if (disk.pdev_path[0] != '/') {
            LOG(ERROR, "%s: target=%s is a relative path: give an absolute "
                "one", where, disk.pdev_path);
            rc = ERROR_INVAL;
            goto out;
        }
        out->type = LIBXLSNAP_DISK_SNAPSHOT_TYPE_EXTERNAL;
        out->overlay = GCSTRDUP(disk.pdev_path);
    }
    rc = 0;
 out:
    libxl_device_disk_dispose(&disk);
    return rc;
}

/* The first item (up to an unescaped comma) is key=value: xl syntax. */
static bool spec_is_xl_syntax(const char *spec)
{
    const char *p;

    for (p = spec; *p; p++) {
        if (*p == ',') {
            if (p[1] != ',') return false;
            p++;
            continue;
        }
        if (*p == '=') return true;
    }
    return false;
}

static void snapshot_set_string(char **field, const char *v)
{
    free(*field);
    *field = NULL;
    if (v) {
        *field = strdup(v);
        if (!*field) {
            fputs("libxl-snapshot: out of memory\n", stderr);
            abort();
        }
    }
}

/*
 * Settings present in the file replace the corresponding fields of
 * *snapshot (initialised by the caller); absent ones leave them as
 * they are, so a caller can fill in defaults first.  On error
 * *snapshot is unchanged.
 */
int libxlsnap_domain_snapshot_config_parse(libxlsnap_ctx *ctx,
                                       const char *config_file,
                                       libxlsnap_domain_snapshot *snapshot)
{
    if (ARGS_MISSING(ctx, config_file, snapshot)) return ERROR_INVAL;
    GC_INIT(ctx);
    XLU_Config *xlu = NULL;
    xlu_report rep = { 0 };
    XLU_ConfigList *list = NULL;
    const char *file, *name, *desc, *mem, *type_s, *data;
    char *memory = NULL;
    libxlsnap_disk_snapshot_type dflt = LIBXLSNAP_DISK_SNAPSHOT_TYPE_DEFAULT;
    libxlsnap_disk_snapshot *disks = NULL;
    cfg_setting *set = NULL;
    const cfg_setting *dset;
    int e, i, j, n = 0, nset = 0, rc;
    bool have_disks;

    file = libxl__abs_path(gc, config_file);
    rc = xlu_open(gc, file, &rep, &xlu);
    if (rc) goto out;
    rc = xlu_read(gc, xlu, &rep, file, &data);
    if (rc) goto out;
    /* every setting known, each of its kind (libxlutil does not say) */
    if (cfg_scan(gc, data, &set, &nset)) {
        LOG(ERROR, "%s: cannot tell its settings apart", file);
        rc = ERROR_INVAL;
        goto out;
    }
    rc = snapshot_settings_check(gc, file, set, nset);
    if (rc) goto out;
#define AT(key) cfg_at(gc, file, set, nset, (key))

    rc = get_opt_string(gc, xlu, file, "name", &name);
    if (rc) goto out;
    if (name && libxlsnap_name_check(name)) {
        LOG(ERROR, "%s: name=\"%s\" is not a valid snapshot name",
            AT("name"), libxl__printable(gc, name));
        rc = ERROR_INVAL;
        goto out;
    }

    rc = get_opt_string(gc, xlu, file, "description", &desc);
    if (rc) goto out;

    rc = get_opt_string(gc, xlu, file, "memory", &mem);
    if (rc) goto out;
    if (mem) {
        if (!*mem) {
            LOG(ERROR, "%s: memory= must be yes, no or an absolute path",
                AT("memory"));
            rc = ERROR_INVAL;
            goto out;
        }
        /* relative to what?  the cwd of whoever runs xl: refused */
        if (strcmp(mem, "yes") && strcmp(mem, "no") && mem[0] != '/') {
            LOG(ERROR, "%s: memory=\"%s\" is a relative path: give an "
                "absolute one (or \"yes\": beside the record, or \"no\")",
                AT("memory"), libxl__printable(gc, mem));
            rc = ERROR_INVAL;
            goto out;
        }
        if (!strcmp(mem, "yes"))
            memory = GCSTRDUP("yes");
        else if (strcmp(mem, "no"))
            memory = GCSTRDUP(mem);
    }

    rc = get_opt_string(gc, xlu, file, "type", &type_s);
    if (rc) goto out;
    /* the type's own name, as spelt: internal or external only */
    if (type_s &&
        (libxlsnap_disk_snapshot_type_from_string(type_s, &dflt) ||
         strcmp(type_s, libxlsnap_disk_snapshot_type_to_string(dflt)) ||
         (dflt != LIBXLSNAP_DISK_SNAPSHOT_TYPE_INTERNAL &&
          dflt != LIBXLSNAP_DISK_SNAPSHOT_TYPE_EXTERNAL))) {
        LOG(ERROR, "%s: type=\"%s\": use internal or external",
            AT("type"), libxl__printable(gc, type_s));
        rc = ERROR_INVAL;
        goto out;
    }

    e = xlu_cfg_get_list(xlu, "disk", &list, &n, 1);
    if (e == ESRCH) {
        have_disks = false;
        n = 0;
    } else if (e) {
        LOG(ERROR, "%s: disk= must be a list: disk = [ '...', ... ]",
            AT("disk"));
        rc = ERROR_INVAL;
        goto out;
    } else {
        have_disks = true;
    }
    if (type_s && !n) {
        /* no field for a default of unlisted disks in the record */
        LOG(ERROR, "%s: type= applies to the disks listed in disk=, "
            "and there are none", AT("type"));
        rc = ERROR_INVAL;
        goto out;
    }

    GCNEW_ARRAY(disks, n);
    dset = cfg_find(set, nset, "disk");
    for (i = 0; i < n; i++) {
        const char *spec = xlu_cfg_get_listitem(list, i);
        const char *where;

        if (!spec) {
            LOG(ERROR, "%s: disk entry %d is not a string", AT("disk"),
                i + 1);
            rc = ERROR_INVAL;
            goto out;
        }
        where = GCSPRINTF("%s:%d: disk '%s'", file,
                          dset && i < dset->num_items ? dset->item_line[i]
                          : dset ? dset->line : 0, spec);
        if (spec_is_xl_syntax(spec))
            rc = rfc_disk_parse(gc, xlu, &rep, file, where, spec, &disks[i]);
        else
            rc = diskspec_parse(gc, where, spec, true, &disks[i]);
        if (rc) goto out;
        if (disks[i].type == LIBXLSNAP_DISK_SNAPSHOT_TYPE_DEFAULT)
            disks[i].type = dflt;
        for (j = 0; j < i; j++) {
            if (!strcmp(disks[j].vdev, disks[i].vdev)) {
                LOG(ERROR, "%s: disk %s listed twice", AT("disk"),
                    disks[i].vdev);
                rc = ERROR_INVAL;
                goto out;
            }
        }
    }

    /* all parsed: now change *snapshot */
    if (name) snapshot_set_string(&snapshot->name, name);
    if (desc) snapshot_set_string(&snapshot->description, desc);
    if (mem) snapshot_set_string(&snapshot->memory, memory);
    if (have_disks) {
        for (i = 0; i < snapshot->num_disks; i++)
            libxlsnap_disk_snapshot_dispose(&snapshot->disks[i]);
        free(snapshot->disks);
        snapshot->disks = NULL;
        snapshot->num_disks = 0;
        if (n) {
            snapshot->disks = calloc(n, sizeof(*snapshot->disks));
            if (!snapshot->disks) {
                fputs("libxl-snapshot: out of memory\n", stderr);
                abort();
            }
        }
        for (i = 0; i < n; i++) {
            libxlsnap_disk_snapshot *d = &snapshot->disks[i];

            libxlsnap_disk_snapshot_init(d);
            snapshot_set_string(&d->vdev, disks[i].vdev);
            snapshot_set_string(&d->overlay, disks[i].overlay);
            snapshot_set_string(&d->cow, disks[i].cow);
            d->type = disks[i].type;
        }
        snapshot->num_disks = n;
    }
    rc = 0;
 out:
#undef AT
    xlu_close(xlu, &rep);
    GC_FREE;
    return rc;
}

/* ---------------------------------------------------------------- */
/* snapshot config, or domain config? */

/*
 * A disk= entry only a snapshot config has: xl syntax with target=null
 * (an internal snapshot), or a disk spec, which starts with a bare vdev
 * (a domain's positional form starts with its image, 'phy:/dev/...').
 */
static bool snapshot_only_disk(libxl__gc *gc, const char *spec)
{
    char **items;
    const char *it;
    int i, n;

    items = spec_split(gc, spec, &n);
    if (!spec_is_xl_syntax(spec)) return vdev_valid(items[0]);
    for (i = 0; i < n; i++) {
        for (it = items[i]; *it == ' ' || *it == '\t'; it++)
            ;
        if (!strncmp(it, "target=", 7)) return !strcmp(it + 7, "null");
    }
    return false;
}

/*
 * The settings of xl domain configs (xl.cfg(5)) a snapshot config does
 * not take: one of these makes a file a domain config.  A setting that
 * is neither (a typo, bogus=) leaves it a snapshot config, whose strict
 * reading refuses it, naming the file, the line and the setting.
 */
static const char *const domain_only_settings[] = {
    "acpi", "altp2m", "apic", "bios", "boot", "bootloader",
    "bootloader_args", "builder", "cap", "channel", "cmdline", "cpus",
    "cpus_soft", "cpu_weight", "device_model_args",
    "device_model_args_hvm", "device_model_args_pv",
    "device_model_override", "device_model_stubdomain_override",
    "device_model_version", "device_tree", "driver_domain", "dtdev",
    "e820_host", "extra", "firmware", "gfx_passthru", "hap", "hdtype",
    "iomem", "ioports", "irqs", "kernel", "keymap", "localtime",
    "max_grant_frames", "max_maptrack_frames", "maxmem", "maxvcpus",
    "mmio_hole", "nestedhvm", "nographic", "nomigrate", "on_crash",
    "on_poweroff", "on_reboot", "on_soft_reset", "on_watchdog", "pae",
    "pci", "pool", "ramdisk", "root", "rtc_timeoffset", "sdl", "seclabel",
    "serial", "shadow_memory", "soundhw", "spice", "stdvga", "timer_mode",
    "tsc_mode", "usb", "usbctrl", "usbdev", "usbdevice", "uuid", "vcpus",
    "vfb", "vga", "videoram", "vif", "viridian", "vkb", "vnc", "vncdisplay",
    "vnclisten", "vncpasswd", "vncunused", "vnuma", "vtpm",
    "xen_platform_pci",
};

static bool domain_only_setting(const char *key)
{
    size_t i;

    for (i = 0; i < sizeof(domain_only_settings) /
                    sizeof(domain_only_settings[0]); i++)
        if (!strcmp(key, domain_only_settings[i])) return true;
    return false;
}

/*
 * xl snapshot-create FILE X: FILE is a domain config if it sets what
 * only a domain config does (vcpus=, kernel=, type="pv"...: the table
 * above), or memory= as a number (MB) with a disk that names an image;
 * it is a snapshot config otherwise (a setting neither takes included),
 * and always when it sets description= or type="internal"|"external",
 * which no domain config has (so that a mistake in a snapshot config is
 * reported as one).
 */
bool libxlsnap_domain_snapshot_config_is_snapshot(libxlsnap_ctx *ctx,
                                              const char *config_file)
{
    if (ARGS_MISSING(ctx, config_file)) return false;
    GC_INIT(ctx);
    cfg_setting *set;
    const cfg_setting *c, *mem = NULL, *disk = NULL;
    char *data;
    size_t len;
    bool marked = false, foreign = false, image = false, r = false;
    int i, n;

    if (access(config_file, R_OK) ||
        libxl__read_file(gc, config_file, &data, &len) ||
        memchr(data, 0, len) || cfg_scan(gc, data, &set, &n))
        goto out;
    for (i = 0; i < n; i++) {
        c = &set[i];
        if (!strcmp(c->key, "description"))
            marked = true;
        else if (!strcmp(c->key, "type"))
            *(c->kind == CFG_STRING && (!strcmp(c->atom, "internal") ||
                                        !strcmp(c->atom, "external"))
              ? &marked : &foreign) = true;
        else if (!strcmp(c->key, "memory"))
            mem = c;
        else if (!strcmp(c->key, "disk"))
            disk = c;
        else if (domain_only_setting(c->key))
            foreign = true;
    }
    for (i = 0; disk && disk->kind == CFG_LIST && i < disk->num_items; i++)
        if (!disk->item_atom[i] ||
            !snapshot_only_disk(gc, disk->item_atom[i]))
            image = true;
    r = marked || !(foreign || (mem && mem->kind == CFG_NUMBER && image));
 out:
    GC_FREE;
    return r;
}

/* ---------------------------------------------------------------- */
/* settings: environment > domain config > host file > built-in */

/*
 * One setting of KEY from the file: 0 and *s_r (NULL: not set there),
 * *at_r its "FILE:LINE" for messages; ERROR_INVAL, logged in one line,
 * when the file cannot be read or parsed or the setting is a list.  A
 * host file that does not exist sets nothing.
 */
static int setting_from_file(libxl__gc *gc, const char *file,
                             const char *key, bool optional,
                             const char **s_r, const char **at_r)
{
    XLU_Config *xlu = NULL;
    xlu_report rep = { 0 };
    cfg_setting *set = NULL;
    const char *data, *s;
    int e, n = 0, rc;

    *s_r = NULL;
    *at_r = file;
    if (optional && access(file, F_OK) && errno == ENOENT) return 0;
    rc = xlu_open(gc, file, &rep, &xlu);
    if (rc) goto out;
    rc = xlu_read(gc, xlu, &rep, file, &data);
    if (rc) goto out;
    e = xlu_cfg_get_string(xlu, key, &s, 1);
    if (e == ESRCH) goto out;
    if (cfg_scan(gc, data, &set, &n)) n = 0;   /* only for the line */
    *at_r = cfg_at(gc, file, set, n, key);
    if (e) {
        LOG(ERROR, "%s: %s= must be a number, not a list", *at_r, key);
        rc = ERROR_INVAL;
        goto out;
    }
    *s_r = GCSTRDUP(s);
 out:
    xlu_close(xlu, &rep);
    return rc;
}

int libxl__snapshot_setting_from(libxl__gc *gc,
                                 const libxl__domain_config *dc,
                                 const char *key, long dflt, long min,
                                 long max, long *val_r, const char **from_r)
{
    const char *s = NULL, *at = NULL, *name, *p;
    char *env, *end;
    long v;
    int i, rc;

    for (p = key; *p; p++)
        assert(islower((unsigned char)*p) || *p == '_');
    assert(min <= dflt && dflt <= max);

    env = GCSPRINTF("XL_SNAPSHOT_%s", key);
    for (i = strlen("XL_SNAPSHOT_"); env[i]; i++)
        env[i] = toupper((unsigned char)env[i]);
    s = getenv(env);
    if (s && *s) {
        at = "environment";
        name = env;
    } else {
        s = NULL;
    }
    if (!s && dc && dc->file) {
        name = GCSPRINTF("snapshot_%s", key);
        rc = setting_from_file(gc, dc->file, name, false, &s, &at);
        if (rc) return rc;
    }
    if (!s && CTX->config_dir) {
        name = key;
        rc = setting_from_file(gc, GCSPRINTF("%s/%s", CTX->config_dir,
                                             LIBXL__SNAPSHOT_HOST_CONFIG),
                               key, true, &s, &at);
        if (rc) return rc;
    }
    if (!s) {
        *val_r = dflt;
        if (from_r) *from_r = "built-in default";
        return 0;
    }

    errno = 0;
    v = strtol(s, &end, 10);
    if (!isdigit((unsigned char)*s) && !(*s == '-' &&
                                         isdigit((unsigned char)s[1])))
        end = (char *)s;
    if (end == s || *end || errno || v < min || v > max) {
        LOG(ERROR, "%s: %s=%s: give a whole number from %ld to %ld "
            "(built-in default %ld)", at, name, libxl__printable(gc, s),
            min, max, dflt);
        return ERROR_INVAL;
    }
    *val_r = v;
    if (from_r)
        *from_r = name == env ? GCSPRINTF("%s in the environment", env) : at;
    return 0;
}

int libxl__snapshot_setting(libxl__gc *gc, const libxl__domain_config *dc,
                            const char *key, long dflt, long min, long max,
                            long *val_r)
{
    return libxl__snapshot_setting_from(gc, dc, key, dflt, min, max, val_r,
                                        NULL);
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
