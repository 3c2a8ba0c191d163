/*
 * libxl_snapshot_nbd.c - the small NBD client snapshot-diff reads dirty
 * bitmaps with
 *
 * What QEMU (qemu-nbd offline, block-export-add live) exports of a
 * checkpoint's bitmaps is read as metadata only: the
 * "qemu:dirty-bitmap:NAME" meta contexts, through NBD_CMD_BLOCK_STATUS;
 * no data is ever read.  Only what that needs of the protocol
 * (doc/proto.md of the NBD project):
 *  - the fixed newstyle handshake (NBDMAGIC, IHAVEOPT; our flags
 *    FIXED_NEWSTYLE and NO_ZEROES, the server must offer the first);
 *  - NBD_OPT_STRUCTURED_REPLY, NBD_OPT_SET_META_CONTEXT (one export,
 *    the contexts asked for, each answered with its id), NBD_OPT_GO
 *    (NBD_INFO_EXPORT: the size);
 *  - NBD_CMD_BLOCK_STATUS over the whole export, in requests of at most
 *    1 GiB, each answered by one structured BLOCK_STATUS chunk per
 *    context (the extents it covers from the offset on: the next
 *    request begins where the shortest answer ended) or an error
 *    chunk; NBD_CMD_DISC at the end.
 * Blocking I/O on one connected socket, each read and write under a
 * timeout (SO_RCVTIMEO/SO_SNDTIMEO): the server is a local QEMU that
 * answers at once.  The protocol parts take a plain fd, so the unit
 * tests (suite "nbd") replay a recorded server transcript through a
 * socketpair and check what the client sent.
 */
#include <endian.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "libxl_snapshot_internal.h"

#define NBD_MAGIC            0x4e42444d41474943ULL   /* "NBDMAGIC" */
#define NBD_OPTS_MAGIC       0x49484156454f5054ULL   /* "IHAVEOPT" */
#define NBD_REP_MAGIC        0x0003e889045565a9ULL
#define NBD_REQUEST_MAGIC    0x25609513U
#define NBD_SIMPLE_MAGIC     0x67446698U
#define NBD_STRUCTURED_MAGIC 0x668e33efU

#define NBD_FLAG_FIXED_NEWSTYLE 1
#define NBD_FLAG_NO_ZEROES      2

#define NBD_OPT_GO               7
#define NBD_OPT_STRUCTURED_REPLY 8
#define NBD_OPT_SET_META_CONTEXT 10

#define NBD_REP_ACK          1
#define NBD_REP_INFO         3
#define NBD_REP_META_CONTEXT 4
#define NBD_REP_FLAG_ERROR   (1U << 31)

#define NBD_INFO_EXPORT 0

#define NBD_CMD_DISC         2
#define NBD_CMD_BLOCK_STATUS 7

#define NBD_REPLY_FLAG_DONE        1
#define NBD_REPLY_TYPE_NONE        0
#define NBD_REPLY_TYPE_BLOCK_STATUS 5
#define NBD_REPLY_TYPE_ERROR_BIT   (1U << 15)

#define NBD_MAX_OPT_REPLY (1U << 20)  /* more from a local QEMU: broken */
#define NBD_STATUS_CHUNK  (1ULL << 30)

/* ---------------------------------------------------------------- */
/* I/O */

static int nbd_read(libxl__gc *gc, libxl__nbd *c, void *buf, size_t len)
{
    size_t done = 0;
    ssize_t r;

    while (done < len) {
        r = read(c->fd, (char *)buf + done, len - done);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            if (r < 0)
                LOGE(ERROR, "NBD %s: read failed", c->what);
            else
                LOG(ERROR, "NBD %s: the server closed the connection",
                    c->what);
            return ERROR_FAIL;
        }
        done += r;
    }
    return 0;
}

static int nbd_write(libxl__gc *gc, libxl__nbd *c, const void *buf,
                     size_t len)
{
    size_t done = 0;
    ssize_t r;

    while (done < len) {
        r = write(c->fd, (const char *)buf + done, len - done);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            LOGE(ERROR, "NBD %s: write failed", c->what);
            return ERROR_FAIL;
        }
        done += r;
    }
    return 0;
}

static void put16(unsigned char *p, uint16_t v) { v = htobe16(v); memcpy(p, &v, 2); }
static void put32(unsigned char *p, uint32_t v) { v = htobe32(v); memcpy(p, &v, 4); }
static void put64(unsigned char *p, uint64_t v) { v = htobe64(v); memcpy(p, &v, 8); }
static uint16_t get16(const unsigned char *p) { uint16_t v; memcpy(&v, p, 2); return be16toh(v); }
static uint32_t get32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return be32toh(v); }
static uint64_t get64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return be64toh(v); }

/* ---------------------------------------------------------------- */
/* handshake */

static int send_option(libxl__gc *gc, libxl__nbd *c, uint32_t opt,
                       const void *data, uint32_t len)
{
    unsigned char h[16];
    int rc;

    put64(h, NBD_OPTS_MAGIC);
    put32(h + 8, opt);
    put32(h + 12, len);
    rc = nbd_write(gc, c, h, sizeof(h));
    if (!rc && len) rc = nbd_write(gc, c, data, len);
    return rc;
}

/* One option reply to opt: its type and data (gc, NUL-terminated). */
static int recv_reply(libxl__gc *gc, libxl__nbd *c, uint32_t opt,
                      uint32_t *type_r, unsigned char **data_r,
                      uint32_t *len_r)
{
    unsigned char h[20];
    uint32_t len;
    int rc;

    rc = nbd_read(gc, c, h, sizeof(h));
    if (rc) return rc;
    len = get32(h + 16);
    if (get64(h) != NBD_REP_MAGIC || get32(h + 8) != opt ||
        len > NBD_MAX_OPT_REPLY) {
        LOG(ERROR, "NBD %s: a malformed reply to option %u", c->what, opt);
        return ERROR_FAIL;
    }
    *type_r = get32(h + 12);
    *data_r = libxl__gc_zalloc(gc, len + 1);
    *len_r = len;
    return len ? nbd_read(gc, c, *data_r, len) : 0;
}

static int reply_refused(libxl__gc *gc, libxl__nbd *c, const char *what,
                         uint32_t type, const unsigned char *data)
{
    LOG(ERROR, "NBD %s: the server refused %s (error %u%s%s)", c->what,
        what, type & ~NBD_REP_FLAG_ERROR, *data ? ": " : "",
        libxl__printable(gc, (const char *)data));
    return ERROR_FAIL;
}

int libxl__nbd_handshake(libxl__gc *gc, libxl__nbd *c, const char *export,
                         const char *const *contexts, int n)
{
    unsigned char h[18], b[4], *d;
    uint32_t type, len, elen = strlen(export), qlen = 0;
    uint16_t hflags;
    size_t off;
    int i, rc;

    c->num_contexts = n;
    GCNEW_ARRAY(c->context_ids, n ? n : 1);
    for (i = 0; i < n; i++) c->context_ids[i] = UINT32_MAX;

    rc = nbd_read(gc, c, h, sizeof(h));
    if (rc) return rc;
    hflags = get16(h + 16);
    if (get64(h) != NBD_MAGIC || get64(h + 8) != NBD_OPTS_MAGIC ||
        !(hflags & NBD_FLAG_FIXED_NEWSTYLE)) {
        LOG(ERROR, "NBD %s: not a fixed newstyle NBD server", c->what);
        return ERROR_FAIL;
    }
    c->no_zeroes = hflags & NBD_FLAG_NO_ZEROES;
    put32(b, NBD_FLAG_FIXED_NEWSTYLE |
          (c->no_zeroes ? NBD_FLAG_NO_ZEROES : 0));
    rc = nbd_write(gc, c, b, 4);
    if (rc) return rc;

    /* structured replies: block status needs them */
    rc = send_option(gc, c, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
    if (!rc) rc = recv_reply(gc, c, NBD_OPT_STRUCTURED_REPLY, &type, &d,
                             &len);
    if (rc) return rc;
    if (type != NBD_REP_ACK)
        return reply_refused(gc, c, "structured replies", type, d);

    /* the meta contexts: export name, count, each query */
    for (i = 0; i < n; i++) qlen += 4 + strlen(contexts[i]);
    d = libxl__gc_zalloc(gc, 8 + elen + qlen);
    put32(d, elen);
    memcpy(d + 4, export, elen);
    put32(d + 4 + elen, n);
    off = 8 + elen;
    for (i = 0; i < n; i++) {
        uint32_t l = strlen(contexts[i]);
        put32(d + off, l);
        memcpy(d + off + 4, contexts[i], l);
        off += 4 + l;
    }
    rc = send_option(gc, c, NBD_OPT_SET_META_CONTEXT, d, off);
    if (rc) return rc;
    for (;;) {
        rc = recv_reply(gc, c, NBD_OPT_SET_META_CONTEXT, &type, &d, &len);
        if (rc) return rc;
        if (type == NBD_REP_ACK) break;
        if (type & NBD_REP_FLAG_ERROR)
            return reply_refused(gc, c, "the meta contexts", type, d);
        if (type != NBD_REP_META_CONTEXT || len < 4) continue;
        for (i = 0; i < n; i++)
            if (len - 4 == strlen(contexts[i]) &&
                !memcmp(d + 4, contexts[i], len - 4))
                c->context_ids[i] = get32(d);
    }
    for (i = 0; i < n; i++)
        if (c->context_ids[i] == UINT32_MAX) {
            LOG(ERROR, "NBD %s: the server has no meta context '%s'",
                c->what, contexts[i]);
            return ERROR_NOTFOUND;
        }

    /* go: export name, no info requests (NBD_INFO_EXPORT always comes) */
    d = libxl__gc_zalloc(gc, 6 + elen);
    put32(d, elen);
    memcpy(d + 4, export, elen);
    put16(d + 4 + elen, 0);
    rc = send_option(gc, c, NBD_OPT_GO, d, 6 + elen);
    if (rc) return rc;
    c->size = UINT64_MAX;
    for (;;) {
        rc = recv_reply(gc, c, NBD_OPT_GO, &type, &d, &len);
        if (rc) return rc;
        if (type == NBD_REP_ACK) break;
        if (type & NBD_REP_FLAG_ERROR)
            return reply_refused(gc, c, GCSPRINTF("export '%s'", export),
                                 type, d);
        if (type == NBD_REP_INFO && len >= 12 &&
            get16(d) == NBD_INFO_EXPORT)
            c->size = get64(d + 2);
    }
    if (c->size == UINT64_MAX) {
        LOG(ERROR, "NBD %s: the server did not say the export's size",
            c->what);
        return ERROR_FAIL;
    }
    return 0;
}

/* ---------------------------------------------------------------- */
/* transmission */

static int send_request(libxl__gc *gc, libxl__nbd *c, uint16_t type,
                        uint64_t offset, uint32_t len)
{
    unsigned char r[28];

    put32(r, NBD_REQUEST_MAGIC);
    put16(r + 4, 0);
    put16(r + 6, type);
    put64(r + 8, ++c->cookie);
    put64(r + 16, offset);
    put32(r + 24, len);
    return nbd_write(gc, c, r, sizeof(r));
}

int libxl__nbd_block_status(libxl__gc *gc, libxl__nbd *c, uint32_t mask,
                            libxl__extents *x)
{
    uint64_t off = 0;
    int rc, i;

    while (off < c->size) {
        uint64_t want = c->size - off, reach = UINT64_MAX;
        bool done = false;

        if (want > NBD_STATUS_CHUNK) want = NBD_STATUS_CHUNK;
        rc = send_request(gc, c, NBD_CMD_BLOCK_STATUS, off, want);
        if (rc) return rc;
        while (!done) {
            unsigned char h[20], *p;
            uint32_t magic, len, ctx;
            uint16_t flags, type;
            uint64_t o = off;

            rc = nbd_read(gc, c, h, 4);
            if (rc) return rc;
            magic = get32(h);
            if (magic == NBD_SIMPLE_MAGIC) {
                rc = nbd_read(gc, c, h + 4, 12);
                if (rc) return rc;
                LOG(ERROR, "NBD %s: block status failed (error %u)",
                    c->what, get32(h + 4));
                return ERROR_FAIL;
            }
            if (magic != NBD_STRUCTURED_MAGIC) goto bad;
            rc = nbd_read(gc, c, h + 4, 16);
            if (rc) return rc;
            flags = get16(h + 4);
            type = get16(h + 6);
            len = get32(h + 16);
            if (get64(h + 8) != c->cookie || len > NBD_MAX_OPT_REPLY)
                goto bad;
            /* (zeros after it: an error chunk's text at p + 6 ends) */
            p = libxl__gc_zalloc(gc, len + 8);
            rc = len ? nbd_read(gc, c, p, len) : 0;
            if (rc) return rc;
            done = flags & NBD_REPLY_FLAG_DONE;
            if (type & NBD_REPLY_TYPE_ERROR_BIT) {
                uint16_t ml = len >= 6 ? get16(p + 4) : 0;
                if (len < 6 || ml > len - 6) ml = 0;
                p[6 + ml] = 0;
                LOG(ERROR, "NBD %s: block status failed (error %u%s%s)",
                    c->what, len >= 4 ? get32(p) : 0, ml ? ": " : "",
                    libxl__printable(gc, (const char *)p + 6));
                return ERROR_FAIL;
            }
            if (type == NBD_REPLY_TYPE_NONE) continue;
            if (type != NBD_REPLY_TYPE_BLOCK_STATUS || len < 4 ||
                (len - 4) % 8)
                goto bad;
            ctx = get32(p);
            for (i = 0; i < c->num_contexts; i++)
                if (c->context_ids[i] == ctx) break;
            if (i == c->num_contexts) goto bad;
            for (i = 0; 4 + 8 * i < (int)len; i++) {
                uint32_t l = get32(p + 4 + 8 * i);
                uint32_t st = get32(p + 8 + 8 * i);
                if (!l) goto bad;
                if (st & mask) libxl__extents_add(gc, x, o, l);
                o += l;
            }
            if (o == off) goto bad;
            if (o < reach) reach = o;
        }
        if (reach == UINT64_MAX) goto bad;
        off = reach;
    }
    return 0;
 bad:
    LOG(ERROR, "NBD %s: a malformed block status reply", c->what);
    return ERROR_FAIL;
}

void libxl__nbd_close(libxl__gc *gc, libxl__nbd *c)
{
    if (c->fd < 0) return;
    if (c->cookie || c->size) send_request(gc, c, NBD_CMD_DISC, 0, 0);
    close(c->fd);
    c->fd = -1;
}

int libxl__nbd_connect_unix(libxl__gc *gc, libxl__nbd *c, const char *path,
                            int timeout_ms)
{
    struct sockaddr_un sa;
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };

    memset(c, 0, sizeof(*c));
    c->what = path;
    c->fd = -1;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        LOG(ERROR, "NBD socket path too long: '%s'", path);
        return ERROR_INVAL;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    strcpy(sa.sun_path, path);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        LOGE(ERROR, "cannot make a socket for NBD '%s'", path);
        return ERROR_FAIL;
    }
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa))) {
        LOGE(ERROR, "cannot connect to NBD server '%s'", path);
        close(c->fd);
        c->fd = -1;
        return ERROR_FAIL;
    }
    return 0;
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
