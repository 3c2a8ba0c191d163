/*
 * fuzz_diff.c - libFuzzer target: what snapshot-diff reads from outside
 *
 * The same bytes taken three ways:
 *  - as a qcow2 image (in a memfd): header, snapshot table, each
 *    state's L1 table, and the walk of the L2 tables between the active
 *    state and each snapshot, data compared (libxl__qcow2_*); and as
 *    space accounting reads it: every state's exclusive clusters, the
 *    active state's allocation;
 *  - as an NBD server's bytes (the first 32 KiB, through a socketpair):
 *    the handshake asking for two bitmaps, then block status
 *    (libxl__nbd_*): an error, never a hang or a bad access;
 *  - as `qemu-img map --output=json` (libxl__qemu_img_map_parse).
 */
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"

static void as_qcow2(libxlsnap_ctx *ctx, const uint8_t *data, size_t size)
{
    GC_INIT(ctx);
    libxl__qcow2 q;
    libxl__qcow2_l1 act, snap;
    libxl__extents x = { 0 };
    char *path;
    int fd = memfd_create("fuzz-qcow2", MFD_CLOEXEC), i;

    if (fd < 0) abort();
    if (write(fd, data, size) != (ssize_t)size) abort();
    path = GCSPRINTF("/proc/self/fd/%d", fd);
    if (!libxl__qcow2_open(gc, path, &q)) {
        uint64_t *ex;
        libxl__extents data = { 0 }, inplace = { 0 };

        libxl__qcow2_exclusive(gc, &q, &ex);
        libxl__qcow2_allocation(gc, &q, &data, &inplace);
        if (!libxl__qcow2_state(gc, &q, NULL, &act)) {
            libxl__qcow2_diff(gc, &q, NULL, &act, false, &x);
            for (i = 0; i < q.num_snaps && i < 4; i++)
                if (!libxl__qcow2_state(gc, &q, q.snaps[i].name, &snap))
                    libxl__qcow2_diff(gc, &q, &snap, &act, true, &x);
        }
        libxl__qcow2_close(&q);
    }
    x.n = libxl__extents_merge(x.e, x.n);
    close(fd);
    GC_FREE;
}

static void as_nbd(libxlsnap_ctx *ctx, const uint8_t *data, size_t size)
{
    static const char *const contexts[] = {
        "qemu:dirty-bitmap:b1", "qemu:dirty-bitmap:b2",
    };
    GC_INIT(ctx);
    libxl__nbd c;
    libxl__extents x = { 0 };
    struct timeval tv = { 1, 0 };
    int sv[2];

    if (size > 32768) size = 32768;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) abort();
    if (write(sv[1], data, size) != (ssize_t)size) abort();
    shutdown(sv[1], SHUT_WR);
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    memset(&c, 0, sizeof(c));
    c.fd = sv[0];
    c.what = "fuzz";
    if (!libxl__nbd_handshake(gc, &c, "diff", contexts, 2))
        libxl__nbd_block_status(gc, &c, 1, &x);
    libxl__nbd_close(gc, &c);
    close(sv[1]);
    GC_FREE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    libxlsnap_ctx *ctx = fuzz_ctx();
    char *text = fuzz_string(data, size);

    as_qcow2(ctx, data, size);
    as_nbd(ctx, data, size);
    {
        GC_INIT(ctx);
        libxl__extents x = { 0 };
        libxl__qemu_img_map_parse(gc, text, &x);
        GC_FREE;
    }
    free(text);
    return 0;
}
