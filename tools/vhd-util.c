/*
 * vhd-util.c - the subset of blktap's vhd-util that libxl-snapshot's
 * VHD backend needs, for hosts without blktap (Debian has none)
 *
 * The format is Microsoft's "Virtual Hard Disk Image Format
 * Specification" (VHD): a 512-byte footer at the end of the file (and
 * its copy at the start of dynamic and differencing disks), a 1024-byte
 * dynamic header, the block allocation table (BAT: one big-endian
 * sector offset per block, 0xffffffff when unallocated), and blocks of
 * 2 MiB, each a sector bitmap then the data.  In a differencing disk a
 * clear bit means "read the parent"; the parent is named by the dynamic
 * header (its unique id, its timestamp, its file name in UTF-16BE) and
 * by parent locators (W2ku: the absolute path, W2ru: the path relative
 * to the child, both UTF-16LE).  The creator application is "tap", as
 * blktap's, so that QEMU's vpc driver takes the footer's current size.
 *
 * Commands (blktap's options):
 *   create   -n VHD -s SIZE_MB             a dynamic disk
 *   snapshot -n CHILD -p PARENT            a differencing child of PARENT
 *   query    -n VHD [-p] [-v] [-a]         parent path; virtual size (MB);
 *                                          -a: the allocated blocks'
 *                                          numbers, one a line (ours)
 *   coalesce -n CHILD                      CHILD's sectors into its parent,
 *                                          progress as "(NN.NN/100%)"
 *   modify   -n VHD -p NEWPARENT           re-parent (same data below)
 *   check    -n VHD                        footer, header, BAT, blocks,
 *                                          the parent chain (no loop)
 * and two of ours, which blktap's tapdisk does in its place:
 *   read     -n VHD -o OFFSET -l LENGTH    data to stdout, through parents
 *   write    -n VHD -o OFFSET -i FILE      FILE's bytes at OFFSET
 *
 * Crash safety of the writes (coalesce, write): a new block is written
 * where the footer was, then the footer after it, then the BAT entry;
 * each step is synced, so a crash leaves at worst an unreferenced block.
 * Exit status: 0, or an errno value, with one line on stderr.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SECTOR 512
#define BLOCK_SIZE (2u << 20)
#define BITMAP_SIZE 512                 /* 4096 sectors: 512 bytes */
#define BAT_UNUSED 0xffffffffu
#define TYPE_DYNAMIC 3
#define TYPE_DIFF 4
#define VHD_EPOCH 946684800             /* 2000-01-01 00:00:00 UTC */
#define MAX_CHAIN 64

typedef struct vhd {
    char *path;
    int fd;
    bool rw;
    uint8_t footer[SECTOR];
    uint8_t header[1024];
    uint64_t size, table_offset, footer_offset;
    uint32_t type, entries, block_size;
    uint32_t *bat;                      /* host order */
    struct vhd *parent;
} vhd;

static const char *prog = "vhd-util";

static int fail(int err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int fail(int err, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return err ? err : EINVAL;
}

/* ---------------------------------------------------------------- */
/* big-endian fields, checksums */

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
        p[3];
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static void put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v; }

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, v >> 32);
    put32(p + 4, (uint32_t)v);
}

/* one's complement of the byte sum, the checksum field counted as 0 */
static uint32_t checksum(const uint8_t *p, size_t len, size_t field)
{
    uint32_t sum = 0;
    size_t i;

    for (i = 0; i < len; i++)
        if (i < field || i >= field + 4) sum += p[i];
    return ~sum;
}

/* footer: offsets of the fields used */
#define F_COOKIE 0
#define F_FEATURES 8
#define F_VERSION 12
#define F_DATA_OFFSET 16
#define F_TIMESTAMP 24
#define F_CREATOR 28
#define F_CREATOR_VER 32
#define F_CREATOR_OS 36
#define F_ORIG_SIZE 40
#define F_CUR_SIZE 48
#define F_GEOMETRY 56
#define F_TYPE 60
#define F_CHECKSUM 64
#define F_UUID 68
/* dynamic header */
#define H_COOKIE 0
#define H_DATA_OFFSET 8
#define H_TABLE_OFFSET 16
#define H_VERSION 24
#define H_ENTRIES 28
#define H_BLOCK_SIZE 32
#define H_CHECKSUM 36
#define H_PARENT_UUID 40
#define H_PARENT_TIME 56
#define H_PARENT_NAME 64
#define H_LOCATORS 576
#define LOCATOR_SIZE 24

/* ---------------------------------------------------------------- */
/* I/O */

static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    size_t done = 0;

    while (done < len) {
        ssize_t r = pread(fd, (char *)buf + done, len - done, off + done);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return errno;
        if (r == 0) return EIO;       /* truncated */
        done += r;
    }
    return 0;
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
    size_t done = 0;

    while (done < len) {
        ssize_t r = pwrite(fd, (const char *)buf + done, len - done,
                           off + done);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return errno;
        done += r;
    }
    return 0;
}

static int write_sync(const vhd *v, const void *buf, size_t len,
                      uint64_t off)
{
    int rc = pwrite_all(v->fd, buf, len, off);

    if (!rc && fdatasync(v->fd)) rc = errno;
    if (rc) return fail(rc, "%s: cannot write: %s", v->path, strerror(rc));
    return 0;
}

/* ---------------------------------------------------------------- */
/* opening */

static void vhd_close(vhd *v)
{
    if (!v) return;
    vhd_close(v->parent);
    if (v->fd >= 0) close(v->fd);
    free(v->bat);
    free(v->path);
    free(v);
}

static char *dir_of(const char *path)
{
    char *d = strdup(path), *s;

    if (!d) abort();
    s = strrchr(d, '/');
    if (!s) {
        free(d);
        d = strdup(".");
        if (!d) abort();
    } else if (s == d) {
        s[1] = 0;
    } else {
        *s = 0;
    }
    return d;
}

/* UTF-16 (le or be) of plain ASCII/UTF-8 text: non-ASCII kept as '?' */
static size_t to_utf16(const char *s, uint8_t *out, size_t max, bool be)
{
    size_t n = 0;

    for (; *s && n + 2 <= max; s++, n += 2) {
        unsigned char c = (unsigned char)*s < 0x80 ? (unsigned char)*s : '?';
        out[n + (be ? 1 : 0)] = c;
        out[n + (be ? 0 : 1)] = 0;
    }
    return n;
}

static char *from_utf16(const uint8_t *p, size_t len, bool be)
{
    char *s = calloc(len / 2 + 1, 1);
    size_t i, n = 0;

    if (!s) abort();
    for (i = 0; i + 1 < len; i += 2) {
        unsigned c = be ? (p[i] << 8 | p[i + 1]) : (p[i + 1] << 8 | p[i]);
        if (!c) break;
        s[n++] = c < 0x80 ? (char)c : '?';
    }
    return s;
}

/* The parent's path: W2ku (absolute), else W2ru relative to the child. */
static char *parent_path(const vhd *v)
{
    char *rel = NULL, *abs = NULL, *res = NULL;
    int i;

    for (i = 0; i < 8; i++) {
        const uint8_t *l = v->header + H_LOCATORS + i * LOCATOR_SIZE;
        uint32_t code = get32(l), len = get32(l + 8);
        uint64_t off = get64(l + 16);
        uint8_t *buf;

        if ((code != 0x57326b75 && code != 0x57327275) || !len ||
            len > 4096 || off + len > v->footer_offset)
            continue;
        buf = malloc(len);
        if (!buf) abort();
        if (!pread_all(v->fd, buf, len, off)) {
            char *s = from_utf16(buf, len, false), *p;
            for (p = s; *p; p++) if (*p == '\\') *p = '/';
            if (code == 0x57326b75) { free(abs); abs = s; }
            else { free(rel); rel = s; }
        }
        free(buf);
    }
    if (abs && access(abs, F_OK) == 0) {
        res = abs;
        abs = NULL;
    } else if (rel) {
        char *d = dir_of(v->path);
        const char *r = strncmp(rel, "./", 2) ? rel : rel + 2;
        if (rel[0] == '/') res = strdup(rel);
        else if (asprintf(&res, "%s/%s", d, r) < 0) abort();
        free(d);
    } else if (abs) {
        res = abs;
        abs = NULL;
    }
    free(abs);
    free(rel);
    return res;
}

static int vhd_open_depth(const char *path, bool rw, bool parents, int depth,
                          vhd **v_r);

static int vhd_open(const char *path, bool rw, bool parents, vhd **v_r)
{
    return vhd_open_depth(path, rw, parents, 0, v_r);
}

static int vhd_open_depth(const char *path, bool rw, bool parents, int depth,
                          vhd **v_r)
{
    struct stat sb;
    vhd *v;
    uint64_t bat_bytes, fsize;
    uint32_t i;
    int rc;

    *v_r = NULL;
    if (depth > MAX_CHAIN)
        return fail(ELOOP, "%s: the parent chain is longer than %d (a loop?)",
                    path, MAX_CHAIN);
    v = calloc(1, sizeof(*v));
    if (!v) abort();
    v->path = strdup(path);
    if (!v->path) abort();
    v->rw = rw;
    v->fd = open(path, (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (v->fd < 0) {
        rc = fail(errno, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(v->fd, &sb) || sb.st_size < 3 * SECTOR) {
        rc = fail(EINVAL, "%s: too small to be a VHD", path);
        goto out;
    }
    fsize = sb.st_size;
    v->footer_offset = (fsize & ~(uint64_t)(SECTOR - 1)) - SECTOR;
    rc = pread_all(v->fd, v->footer, SECTOR, v->footer_offset);
    if (rc || memcmp(v->footer, "conectix", 8)) {
        /* an older writer may have left 511 bytes: use the copy */
        rc = pread_all(v->fd, v->footer, SECTOR, 0);
        if (rc || memcmp(v->footer, "conectix", 8)) {
            rc = fail(EINVAL, "%s: no VHD footer", path);
            goto out;
        }
    }
    if (get32(v->footer + F_CHECKSUM) !=
        checksum(v->footer, SECTOR, F_CHECKSUM)) {
        rc = fail(EINVAL, "%s: bad footer checksum", path);
        goto out;
    }
    v->type = get32(v->footer + F_TYPE);
    v->size = get64(v->footer + F_CUR_SIZE);
    if (v->type != TYPE_DYNAMIC && v->type != TYPE_DIFF) {
        rc = fail(EINVAL, "%s: disk type %u: only dynamic and differencing "
                  "VHDs are supported", path, v->type);
        goto out;
    }
    rc = pread_all(v->fd, v->header, sizeof(v->header),
                   get64(v->footer + F_DATA_OFFSET));
    if (rc || memcmp(v->header, "cxsparse", 8)) {
        rc = fail(EINVAL, "%s: no dynamic header", path);
        goto out;
    }
    if (get32(v->header + H_CHECKSUM) !=
        checksum(v->header, sizeof(v->header), H_CHECKSUM)) {
        rc = fail(EINVAL, "%s: bad dynamic header checksum", path);
        goto out;
    }
    v->table_offset = get64(v->header + H_TABLE_OFFSET);
    v->entries = get32(v->header + H_ENTRIES);
    v->block_size = get32(v->header + H_BLOCK_SIZE);
    if (v->block_size != BLOCK_SIZE) {
        rc = fail(EINVAL, "%s: block size %u: only 2 MiB is supported",
                  path, v->block_size);
        goto out;
    }
    if ((uint64_t)v->entries * BLOCK_SIZE < v->size ||
        v->entries > (1u << 24)) {
        rc = fail(EINVAL, "%s: the BAT (%u entries) does not cover the "
                  "disk", path, v->entries);
        goto out;
    }
    bat_bytes = (uint64_t)v->entries * 4;
    if (v->table_offset + bat_bytes > v->footer_offset) {
        rc = fail(EINVAL, "%s: truncated BAT", path);
        goto out;
    }
    v->bat = malloc(bat_bytes ? bat_bytes : 4);
    if (!v->bat) abort();
    rc = pread_all(v->fd, v->bat, bat_bytes, v->table_offset);
    if (rc) {
        rc = fail(rc, "%s: cannot read the BAT", path);
        goto out;
    }
    for (i = 0; i < v->entries; i++) {
        v->bat[i] = get32((uint8_t *)&v->bat[i]);
        if (v->bat[i] != BAT_UNUSED &&
            (uint64_t)v->bat[i] * SECTOR + BITMAP_SIZE + BLOCK_SIZE >
            v->footer_offset) {
            rc = fail(EINVAL, "%s: block %u lies beyond the end of the "
                      "file", path, i);
            goto out;
        }
    }
    if (v->type == TYPE_DIFF && parents) {
        char *pp = parent_path(v);
        if (!pp) {
            rc = fail(EINVAL, "%s: differencing disk without a parent "
                      "locator", path);
            goto out;
        }
        rc = vhd_open_depth(pp, false, true, depth + 1, &v->parent);
        if (!rc && memcmp(v->parent->footer + F_UUID,
                          v->header + H_PARENT_UUID, 16))
            rc = fail(EINVAL, "%s: its parent %s is not the disk it was "
                      "made on (unique id differs)", path, pp);
        if (!rc && v->parent->size != v->size)
            rc = fail(EINVAL, "%s: its parent %s has another size", path,
                      pp);
        free(pp);
        if (rc) goto out;
    }
    *v_r = v;
    return 0;
 out:
    vhd_close(v);
    return rc;
}

/* ---------------------------------------------------------------- */
/* creating */

static void geometry(uint64_t size, uint8_t *g)
{
    uint64_t total = size / SECTOR, cth;
    uint32_t spt, heads;

    if (total > 65535ull * 16 * 255) total = 65535ull * 16 * 255;
    if (total >= 65535ull * 16 * 63) {
        spt = 255; heads = 16; cth = total / spt;
    } else {
        spt = 17; cth = total / spt;
        heads = (cth + 1023) / 1024;
        if (heads < 4) heads = 4;
        if (cth >= heads * 1024ull || heads > 16) {
            spt = 31; heads = 16; cth = total / spt;
        }
        if (cth >= heads * 1024ull) {
            spt = 63; heads = 16; cth = total / spt;
        }
    }
    put16(g, (uint16_t)(cth / heads));
    g[2] = heads;
    g[3] = spt;
}

static int random_id(uint8_t *id)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC), rc;

    if (fd < 0) return errno;
    rc = read(fd, id, 16) == 16 ? 0 : EIO;
    close(fd);
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    return rc;
}

static void seal_footer(uint8_t *f)
{
    put32(f + F_CHECKSUM, checksum(f, SECTOR, F_CHECKSUM));
}

static void seal_header(uint8_t *h)
{
    put32(h + H_CHECKSUM, checksum(h, 1024, H_CHECKSUM));
}

/* Parent fields of the header, and the locators' data into *loc. */
static size_t set_parent(uint8_t *h, const vhd *p, const char *child,
                         uint64_t loc_offset, uint8_t *loc, size_t loc_max)
{
    char *abs = realpath(p->path, NULL), *base, *rel;
    size_t n, used = 0;
    int k;

    if (!abs) abs = strdup(p->path);
    if (!abs) abort();
    base = strrchr(abs, '/') ? strrchr(abs, '/') + 1 : abs;
    memcpy(h + H_PARENT_UUID, p->footer + F_UUID, 16);
    put32(h + H_PARENT_TIME, get32(p->footer + F_TIMESTAMP));
    memset(h + H_PARENT_NAME, 0, 512);
    to_utf16(base, h + H_PARENT_NAME, 512, true);
    memset(h + H_LOCATORS, 0, 8 * LOCATOR_SIZE);
    {
        /* relative to the child's directory when they share it */
        char *cd = dir_of(child), *cabs = realpath(cd, NULL);
        char *pd = dir_of(abs);
        if (cabs && !strcmp(cabs, pd)) {
            if (asprintf(&rel, ".\\%s", base) < 0) abort();
        } else {
            rel = NULL;
        }
        free(cd); free(cabs); free(pd);
    }
    for (k = 0; k < 2; k++) {
        const char *text = k == 0 ? abs : rel;
        uint8_t *l = h + H_LOCATORS + k * LOCATOR_SIZE;
        char *t, *q;
        if (!text) continue;
        t = strdup(text);
        if (!t) abort();
        if (k == 0)
            for (q = t; *q; q++) if (*q == '/') *q = '\\';
        n = to_utf16(t, loc + used, loc_max - used, false);
        free(t);
        put32(l, k == 0 ? 0x57326b75 : 0x57327275);   /* W2ku, W2ru */
        put32(l + 4, (uint32_t)((n + SECTOR - 1) / SECTOR * SECTOR));
        put32(l + 8, (uint32_t)n);
        put64(l + 16, loc_offset + used);
        used += (n + SECTOR - 1) / SECTOR * SECTOR;
    }
    free(rel);
    free(abs);
    return used;
}

/* A new dynamic (parent NULL) or differencing disk at path. */
static int vhd_create(const char *path, uint64_t size, const vhd *parent)
{
    uint8_t footer[SECTOR] = { 0 }, header[1024] = { 0 }, *bat, loc[4096];
    uint32_t entries = (uint32_t)((size + BLOCK_SIZE - 1) / BLOCK_SIZE);
    uint64_t bat_bytes = ((uint64_t)entries * 4 + SECTOR - 1) / SECTOR * SECTOR;
    uint64_t table = 3 * SECTOR, end;
    size_t loc_bytes = 0;
    int fd, rc;

    if (!size || size % SECTOR)
        return fail(EINVAL, "%s: the size must be a whole number of sectors",
                    path);
    memcpy(footer + F_COOKIE, "conectix", 8);
    put32(footer + F_FEATURES, 2);
    put32(footer + F_VERSION, 0x00010000);
    put64(footer + F_DATA_OFFSET, SECTOR);
    put32(footer + F_TIMESTAMP, (uint32_t)(time(NULL) - VHD_EPOCH));
    memcpy(footer + F_CREATOR, "tap", 4);
    put32(footer + F_CREATOR_VER, 0x00010003);
    memcpy(footer + F_CREATOR_OS, "Lnux", 4);
    put64(footer + F_ORIG_SIZE, size);
    put64(footer + F_CUR_SIZE, size);
    geometry(size, footer + F_GEOMETRY);
    put32(footer + F_TYPE, parent ? TYPE_DIFF : TYPE_DYNAMIC);
    rc = random_id(footer + F_UUID);
    if (rc) return fail(rc, "cannot read /dev/urandom");
    seal_footer(footer);

    memcpy(header + H_COOKIE, "cxsparse", 8);
    put64(header + H_DATA_OFFSET, UINT64_MAX);
    put64(header + H_TABLE_OFFSET, table);
    put32(header + H_VERSION, 0x00010000);
    put32(header + H_ENTRIES, entries);
    put32(header + H_BLOCK_SIZE, BLOCK_SIZE);
    if (parent)
        loc_bytes = set_parent(header, parent, path, table + bat_bytes, loc,
                               sizeof(loc));
    seal_header(header);

    bat = malloc(bat_bytes);
    if (!bat) abort();
    memset(bat, 0xff, bat_bytes);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        free(bat);
        return fail(errno, "%s: %s", path, strerror(errno));
    }
    end = table + bat_bytes + loc_bytes;
    rc = pwrite_all(fd, footer, SECTOR, 0);
    if (!rc) rc = pwrite_all(fd, header, sizeof(header), SECTOR);
    if (!rc) rc = pwrite_all(fd, bat, bat_bytes, table);
    if (!rc && loc_bytes) rc = pwrite_all(fd, loc, loc_bytes, table + bat_bytes);
    if (!rc) rc = pwrite_all(fd, footer, SECTOR, end);
    if (!rc && fsync(fd)) rc = errno;
    close(fd);
    free(bat);
    if (rc) {
        unlink(path);
        return fail(rc, "%s: cannot write: %s", path, strerror(rc));
    }
    return 0;
}

/* ---------------------------------------------------------------- */
/* sectors */

static bool bit(const uint8_t *bm, uint32_t i)
{
    return bm[i / 8] & (0x80 >> (i % 8));
}

/* Reads one sector of v (through its parents), zeros if none has it. */
static int read_sector(vhd *v, uint64_t sector, uint8_t *buf)
{
    uint32_t blk = (uint32_t)(sector / (BLOCK_SIZE / SECTOR));
    uint32_t in = (uint32_t)(sector % (BLOCK_SIZE / SECTOR));

    for (; v; v = v->parent) {
        uint8_t bm;
        uint64_t base;
        if (blk >= v->entries || v->bat[blk] == BAT_UNUSED) continue;
        base = (uint64_t)v->bat[blk] * SECTOR;
        if (pread_all(v->fd, &bm, 1, base + in / 8)) return EIO;
        if (!bit(&bm, in % 8)) continue;
        return pread_all(v->fd, buf, SECTOR,
                         base + BITMAP_SIZE + (uint64_t)in * SECTOR);
    }
    memset(buf, 0, SECTOR);
    return 0;
}

/* The block's offset in v, allocated (zero bitmap) if it had none. */
static int block_for_write(vhd *v, uint32_t blk, uint64_t *base_r)
{
    uint8_t *fresh, entry[4];
    uint64_t at = v->footer_offset;
    int rc;

    if (v->bat[blk] != BAT_UNUSED) {
        *base_r = (uint64_t)v->bat[blk] * SECTOR;
        return 0;
    }
    fresh = calloc(1, BITMAP_SIZE + BLOCK_SIZE);
    if (!fresh) abort();
    /* the block where the footer was, the footer after it, then the BAT */
    rc = write_sync(v, fresh, BITMAP_SIZE + BLOCK_SIZE, at);
    free(fresh);
    if (!rc) rc = write_sync(v, v->footer, SECTOR, at + BITMAP_SIZE +
                             BLOCK_SIZE);
    if (rc) return rc;
    v->footer_offset = at + BITMAP_SIZE + BLOCK_SIZE;
    put32(entry, (uint32_t)(at / SECTOR));
    rc = write_sync(v, entry, 4, v->table_offset + (uint64_t)blk * 4);
    if (rc) return rc;
    v->bat[blk] = (uint32_t)(at / SECTOR);
    *base_r = at;
    return 0;
}

/* Writes count sectors at sector (within one block) into v itself. */
static int write_sectors(vhd *v, uint64_t sector, uint32_t count,
                         const uint8_t *data)
{
    uint32_t blk = (uint32_t)(sector / (BLOCK_SIZE / SECTOR));
    uint32_t in = (uint32_t)(sector % (BLOCK_SIZE / SECTOR)), i;
    uint8_t bm[BITMAP_SIZE];
    uint64_t base;
    int rc;

    rc = block_for_write(v, blk, &base);
    if (rc) return rc;
    rc = write_sync(v, data, (size_t)count * SECTOR,
                    base + BITMAP_SIZE + (uint64_t)in * SECTOR);
    if (rc) return rc;
    if (pread_all(v->fd, bm, BITMAP_SIZE, base)) return EIO;
    for (i = in; i < in + count; i++) bm[i / 8] |= 0x80 >> (i % 8);
    return write_sync(v, bm, BITMAP_SIZE, base);
}

/* ---------------------------------------------------------------- */
/* commands */

static int parse_u64(const char *s, uint64_t *r)
{
    char *end;

    errno = 0;
    if (!s || !*s || *s == '-') return EINVAL;
    *r = strtoull(s, &end, 10);
    return errno || *end ? EINVAL : 0;
}

static int cmd_create(const char *name, const char *size_mb)
{
    uint64_t mb;

    if (parse_u64(size_mb, &mb) || !mb || mb > (2040ull << 10))
        return fail(EINVAL, "create: -s SIZE: a size in MB, 1 to 2088960");
    return vhd_create(name, mb << 20, NULL);
}

static int cmd_snapshot(const char *name, const char *parent_path)
{
    vhd *p;
    int rc;

    if (!parent_path) return fail(EINVAL, "snapshot: -p PARENT is needed");
    rc = vhd_open(parent_path, false, true, &p);
    if (rc) return rc;
    rc = vhd_create(name, p->size, p);
    vhd_close(p);
    return rc;
}

static int cmd_query(const char *name, bool parent, bool vsize, bool alloc)
{
    vhd *v;
    char *pp;
    uint32_t i;
    int rc;

    rc = vhd_open(name, false, false, &v);
    if (rc) return rc;
    if (vsize) printf("%" PRIu64 "\n", v->size >> 20);
    for (i = 0; alloc && v->bat && i < v->entries; i++)
        if (v->bat[i] != BAT_UNUSED) printf("%" PRIu32 "\n", i);
    if (parent) {
        if (v->type != TYPE_DIFF) {
            printf("%s has no parent\n", name);
        } else {
            pp = parent_path(v);
            if (!pp) rc = fail(EINVAL, "%s: no parent locator", name);
            else printf("%s\n", pp);
            free(pp);
        }
    }
    vhd_close(v);
    return rc;
}

static int cmd_coalesce(const char *name)
{
    vhd *c, *p;
    uint8_t *data = malloc(BLOCK_SIZE), bm[BITMAP_SIZE];
    uint32_t blk, i, run;
    int rc;

    if (!data) abort();
    rc = vhd_open(name, false, true, &c);
    if (rc) goto out_free;
    if (c->type != TYPE_DIFF) {
        rc = fail(EINVAL, "%s is not a differencing disk: nothing to "
                  "coalesce into", name);
        goto out;
    }
    /* the parent, writable; its own parents for nothing (own sectors) */
    p = c->parent;
    c->parent = NULL;
    vhd_close(p);
    {
        char *pp = parent_path(c);
        rc = vhd_open(pp, true, false, &p);
        free(pp);
        if (rc) goto out;
        c->parent = p;
    }
    for (blk = 0; blk < c->entries; blk++) {
        uint64_t base;
        if (c->bat[blk] != BAT_UNUSED) {
            base = (uint64_t)c->bat[blk] * SECTOR;
            rc = pread_all(c->fd, bm, BITMAP_SIZE, base);
            if (!rc) rc = pread_all(c->fd, data, BLOCK_SIZE,
                                    base + BITMAP_SIZE);
            if (rc) {
                rc = fail(rc, "%s: cannot read block %u", name, blk);
                goto out;
            }
            /* runs of present sectors, copied as they are */
            for (i = 0; i < BLOCK_SIZE / SECTOR; i += run ? run : 1) {
                run = 0;
                while (i + run < BLOCK_SIZE / SECTOR && bit(bm, i + run))
                    run++;
                if (!run) continue;
                rc = write_sectors(p, (uint64_t)blk * (BLOCK_SIZE / SECTOR) + i,
                                   run, data + (size_t)i * SECTOR);
                if (rc) goto out;
            }
        }
        printf("    (%.2f/100%%)\n", 100.0 * (blk + 1) / c->entries);
        fflush(stdout);
    }
 out:
    vhd_close(c);
 out_free:
    free(data);
    return rc;
}

static int cmd_modify(const char *name, const char *new_parent)
{
    vhd *v, *p;
    uint8_t loc[4096];
    uint64_t loc_at;
    size_t n;
    int rc;

    if (!new_parent) return fail(EINVAL, "modify: -p NEWPARENT is needed");
    rc = vhd_open(name, true, false, &v);
    if (rc) return rc;
    if (v->type != TYPE_DIFF) {
        vhd_close(v);
        return fail(EINVAL, "%s is not a differencing disk", name);
    }
    rc = vhd_open(new_parent, false, true, &p);
    if (rc) {
        vhd_close(v);
        return rc;
    }
    if (p->size != v->size) {
        rc = fail(EINVAL, "%s and %s differ in size", name, new_parent);
        goto out;
    }
    {
        const vhd *w;
        for (w = p; w; w = w->parent)
            if (!memcmp(w->footer + F_UUID, v->footer + F_UUID, 16)) {
                rc = fail(ELOOP, "%s: %s is built on it: that would make "
                          "a loop", name, new_parent);
                goto out;
            }
    }
    /* the new locators go where the footer was; the footer after them */
    loc_at = v->footer_offset;
    n = set_parent(v->header, p, name, loc_at, loc, sizeof(loc));
    seal_header(v->header);
    rc = write_sync(v, loc, n, loc_at);
    if (!rc) rc = write_sync(v, v->footer, SECTOR, loc_at + n);
    if (!rc) rc = write_sync(v, v->header, sizeof(v->header),
                             get64(v->footer + F_DATA_OFFSET));
 out:
    vhd_close(p);
    vhd_close(v);
    return rc;
}

static int cmd_check(const char *name)
{
    vhd *v, *w;
    uint8_t copy[SECTOR];
    int rc, depth = 0;

    rc = vhd_open(name, false, true, &v);
    if (rc) return rc;
    for (w = v; w; w = w->parent, depth++) {
        if (pread_all(w->fd, copy, SECTOR, 0) ||
            memcmp(copy, w->footer, SECTOR)) {
            rc = fail(EINVAL, "%s: the footer's copy at the start differs",
                      w->path);
            break;
        }
    }
    if (!rc) printf("%s is valid (%d image%s in its chain)\n", name, depth,
                    depth == 1 ? "" : "s");
    vhd_close(v);
    return rc;
}

static int cmd_read(const char *name, const char *off_s, const char *len_s)
{
    uint64_t off, len, s;
    uint8_t buf[SECTOR];
    vhd *v;
    int rc;

    if (parse_u64(off_s, &off) || parse_u64(len_s, &len) ||
        off % SECTOR || len % SECTOR)
        return fail(EINVAL, "read: -o OFFSET -l LENGTH, in bytes, whole "
                    "sectors");
    rc = vhd_open(name, false, true, &v);
    if (rc) return rc;
    if (off + len > v->size) {
        vhd_close(v);
        return fail(EINVAL, "read: beyond the end of the disk");
    }
    for (s = off / SECTOR; !rc && s < (off + len) / SECTOR; s++) {
        rc = read_sector(v, s, buf);
        if (!rc && fwrite(buf, SECTOR, 1, stdout) != 1) rc = EIO;
    }
    vhd_close(v);
    if (rc) return fail(rc, "%s: read failed", name);
    return 0;
}

static int cmd_write(const char *name, const char *off_s, const char *in)
{
    uint64_t off, s;
    uint8_t buf[SECTOR];
    FILE *f;
    vhd *v;
    size_t r;
    int rc;

    if (parse_u64(off_s, &off) || off % SECTOR || !in)
        return fail(EINVAL, "write: -o OFFSET (whole sectors) -i FILE");
    f = fopen(in, "rb");
    if (!f) return fail(errno, "%s: %s", in, strerror(errno));
    rc = vhd_open(name, true, false, &v);
    for (s = off / SECTOR; !rc; s++) {
        memset(buf, 0, SECTOR);
        r = fread(buf, 1, SECTOR, f);
        if (!r) break;
        if ((s + 1) * SECTOR > v->size) {
            rc = fail(EINVAL, "write: beyond the end of the disk");
            break;
        }
        rc = write_sectors(v, s, 1, buf);
    }
    fclose(f);
    vhd_close(v);
    return rc;
}

static void usage(void)
{
    fprintf(stderr,
        "usage: %s COMMAND -n VHD [options]\n"
        "  create   -n VHD -s SIZE_MB\n"
        "  snapshot -n CHILD -p PARENT\n"
        "  query    -n VHD [-p] [-v] [-a]\n"
        "  coalesce -n CHILD\n"
        "  modify   -n VHD -p NEWPARENT\n"
        "  check    -n VHD\n"
        "  read     -n VHD -o OFFSET -l LENGTH\n"
        "  write    -n VHD -o OFFSET -i FILE\n", prog);
}

int main(int argc, char **argv)
{
    const char *cmd, *name = NULL, *size = NULL, *parent = NULL;
    const char *off = NULL, *len = NULL, *in = NULL;
    bool qp = false, qv = false, qa = false;
    int opt;

    if (argc < 2) {
        usage();
        return EINVAL;
    }
    cmd = argv[1];
    optind = 2;
    while ((opt = getopt(argc, argv, "n:s:p::vao:l:i:")) != -1) {
        switch (opt) {
        case 'n': name = optarg; break;
        case 's': size = optarg; break;
        case 'p':
            /* query -p (a flag); snapshot/modify -p PATH */
            if (optarg) parent = optarg;
            else if (optind < argc && argv[optind][0] != '-')
                parent = argv[optind++];
            else qp = true;
            break;
        case 'v': qv = true; break;
        case 'a': qa = true; break;
        case 'o': off = optarg; break;
        case 'l': len = optarg; break;
        case 'i': in = optarg; break;
        default: usage(); return EINVAL;
        }
    }
    if (!name) {
        usage();
        return fail(EINVAL, "-n VHD is needed");
    }
    if (!strcmp(cmd, "create")) return cmd_create(name, size);
    if (!strcmp(cmd, "snapshot")) return cmd_snapshot(name, parent);
    if (!strcmp(cmd, "query")) {
        if (parent) qp = true;
        return cmd_query(name, qp, qv, qa);
    }
    if (!strcmp(cmd, "coalesce")) return cmd_coalesce(name);
    if (!strcmp(cmd, "modify")) return cmd_modify(name, parent);
    if (!strcmp(cmd, "check")) return cmd_check(name);
    if (!strcmp(cmd, "read")) return cmd_read(name, off, len);
    if (!strcmp(cmd, "write")) return cmd_write(name, off, in);
    usage();
    return fail(EINVAL, "unknown command '%s'", cmd);
}
