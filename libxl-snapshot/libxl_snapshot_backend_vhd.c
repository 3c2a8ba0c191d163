/*
 * libxl_snapshot_backend_vhd.c - VHD chains through vhd-util
 *
 * QEMU cannot follow a differencing VHD: its vpc driver opens one as a
 * standalone disk and reads the parent's blocks as zeros.  So VHD
 * chains are made and merged offline by a vhd-util (the in-tree
 * tools/vhd-util, or blktap's: CTX->vhd_util), and never handed to
 * QEMU:
 *  - snapshot: the active VHD becomes the read-only parent of a new
 *    differencing child (`vhd-util snapshot -n CHILD -p PARENT`), which
 *    becomes the active image;
 *  - revert: a fresh child of the snapshot's VHD;
 *  - delete: the child is coalesced into the snapshot's VHD
 *    (`vhd-util coalesce`), the images built on the child are
 *    re-parented (`vhd-util modify -p`), the child goes: the block job
 *    engine and snapshot delete do it as for qcow2, with these
 *    commands in place of qemu-img's.
 * For the code that plans from backing chains (delete, check, revert,
 * recovery), `qemu-img info` output is completed here: a differencing
 * VHD gets its parent as "full-backing-filename", and a chain gets the
 * parents as further entries, as qemu-img would for qcow2.
 * A domain whose active image is a differencing VHD is not started
 * (libxl__domain_start): VHD chains are an offline feature here; a
 * running domain on a dynamic VHD (qdisk, "vpc") takes qcow2 overlays
 * through QMP like a raw disk.
 */
#include "libxl_snapshot_internal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define VHD_TIMEOUT_MS 60000
#define VHD_MAX_CHAIN 64

bool libxl__vhd_is_differencing(const char *path)
{
    unsigned char f[512];
    struct stat sb;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    bool r = false;

    if (fd < 0) return false;
    if (!fstat(fd, &sb) && S_ISREG(sb.st_mode) && sb.st_size >= 1536 &&
        pread(fd, f, sizeof(f), (sb.st_size & ~511) - 512) == sizeof(f) &&
        !memcmp(f, "conectix", 8))
        r = f[60] == 0 && f[61] == 0 && f[62] == 0 && f[63] == 4;
    close(fd);
    return r;
}

/* The parent vhd-util names for a differencing VHD, or NULL. */
char *libxl__vhd_parent_sync(libxl__gc *gc, const char *path)
{
    const char *a[] = { CTX->vhd_util, "query", "-n", path, "-p", NULL };
    char *out = NULL, *err = NULL, *nl;

    if (!libxl__vhd_is_differencing(path) ||
        libxl__exec_sync(gc, a, VHD_TIMEOUT_MS, &out, &err) || !out)
        return NULL;
    nl = strchr(out, '\n');
    if (nl) *nl = 0;
    if (!*out || strstr(out, "has no parent")) return NULL;
    return out;
}

/*
 * qemu-img info output (parsed as v, in gc) completed for a
 * differencing VHD: see the design comment.  v is completed in place
 * and returned (also when there is nothing to add).  A chain that loops, or a parent that cannot be read or is
 * missing, is an error, as qemu-img's for a qcow2 chain: NULL, and
 * *err_r (gc) says why.
 */
static yajl_val vhd_complete_info(libxl__gc *gc, yajl_val v, char **err_r)
{
    yajl_val last = v && YAJL_IS_ARRAY(v) && v->u.array.len
        ? v->u.array.values[v->u.array.len - 1] : v;
    const char *fmt = libxl__json_get_string(last, "format");
    const char *file = libxl__json_get_string(last, "filename");
    const char *files[VHD_MAX_CHAIN + 1];
    long long vsize = libxl__json_get_integer(last, "virtual-size", 0);
    yajl_val img;
    int n = 0, k;

    if (!fmt || strcmp(fmt, "vpc") || !file ||
        !libxl__vhd_is_differencing(file))
        return v;
    files[n++] = file;
    while (libxl__vhd_is_differencing(files[n - 1])) {
        char *p = libxl__vhd_parent_sync(gc, files[n - 1]);
        if (!p) {
            *err_r = GCSPRINTF("cannot read the parent of the VHD '%s' "
                               "(%s query)", files[n - 1], CTX->vhd_util);
            return NULL;
        }
        for (k = 0; k < n; k++)
            if (!strcmp(files[k], p)) {
                *err_r = GCSPRINTF("the VHD chain of '%s' is a loop: the "
                                   "parent of '%s' is '%s'", file,
                                   files[n - 1], p);
                return NULL;
            }
        if (n == VHD_MAX_CHAIN + 1) {
            *err_r = GCSPRINTF("the VHD chain of '%s' is longer than %d",
                               file, VHD_MAX_CHAIN);
            return NULL;
        }
        if (!libxl__file_exists(p)) {
            *err_r = GCSPRINTF("the parent '%s' of the VHD '%s' is missing",
                               p, files[n - 1]);
            return NULL;
        }
        files[n++] = p;
        if (!YAJL_IS_ARRAY(v)) break;       /* one image: its parent only */
    }
    if (n == 1) return v;
    /* the last image gets its backing; parents follow */
    libxl__json_add_string(gc, &last, "full-backing-filename", files[1]);
    libxl__json_add_string(gc, &last, "backing-filename", files[1]);
    for (k = 1; YAJL_IS_ARRAY(v) && k < n; k++) {
        img = libxl__json_append_object(gc, v);
        libxl__json_add_string(gc, &img, "filename", files[k]);
        libxl__json_add_string(gc, &img, "format", "vpc");
        libxl__json_add_integer(gc, &img, "virtual-size", vsize);
        if (k + 1 < n)
            libxl__json_add_string(gc, &img, "full-backing-filename",
                                   files[k + 1]);
    }
    return v;
}

const char *const *libxl__vhd_util_args(libxl__gc *gc, const char *cmd,
                                        const char *vhd, const char *parent)
{
    libxl__flexarray *a = libxl__flexarray_new(gc);

    libxl__flexarray_append_pair(a, CTX->vhd_util, cmd);
    libxl__flexarray_append_pair(a, "-n", vhd);
    if (parent) libxl__flexarray_append_pair(a, "-p", parent);
    return a->data;
}

/* ---------------------------------------------------------------- */
/* the backend: an overlay whose image is a VHD (the overlay's
 * operations; its commands are vhd-util's offline: qemu_img.c) */

/* a VHD chain: vhd-util, one level (top into its parent) */
static int vhd_merge_args(libxl__gc *gc, const libxlsnap_blockjob_info *info,
                          const char *const **args_r)
{
    char *parent = libxl__vhd_parent_sync(gc, info->top);

    if (info->type == LIBXLSNAP_BLOCKJOB_TYPE_STREAM || !parent ||
        !info->base || strcmp(parent, info->base)) {
        LOG(ERROR, "disk %s: a VHD chain is only merged one image into "
            "its parent (vhd-util coalesce)", info->vdev);
        return ERROR_INVAL;
    }
    *args_r = libxl__vhd_util_args(gc, "coalesce", info->top, NULL);
    return 0;
}

static const char *vhd_unrunnable(libxl__gc *gc, const char *path)
{
    if (!libxl__vhd_is_differencing(path)) return NULL;
    return GCSPRINTF("is on the VHD chain '%s', which QEMU cannot read "
                     "(VHD chains are offline here: revert to a snapshot, "
                     "or delete the snapshots to coalesce them)", path);
}

static bool vhd_owns(libxl_disk_format fmt)
{
    return fmt == LIBXL_DISK_FORMAT_VHD;
}

/* offline a VHD's child is a differencing VHD; live, QEMU makes qcow2
 * overlays on a dynamic VHD as on any image */
static libxl_disk_format vhd_overlay_format(bool live)
{
    return live ? LIBXL_DISK_FORMAT_QCOW2 : LIBXL_DISK_FORMAT_VHD;
}

static const char *vhd_overlay_ext(bool live)
{
    return live ? "qcow2" : "vhd";
}

/* a VHD's children are VHDs, made by vhd-util */
static const char *const *vhd_overlay_args(libxl__gc *gc, const char *base,
                                           const char *overlay)
{
    return libxl__vhd_util_args(gc, "snapshot", overlay, base);
}

static const char *const *vhd_rebase_args(libxl__gc *gc, const char *image,
                                          const char *base)
{
    return libxl__vhd_util_args(gc, "modify", image, base);
}

static bool vhd_probe(libxl__gc *gc, const libxl_device_disk *dk,
                      const libxl_device_disk *config, void **priv_r)
{
    return dk->format == LIBXL_DISK_FORMAT_VHD;
}

const libxl__snapshot_backend libxl__snapshot_backend_vhd = {
    .name = "vhd",
    .type = LIBXLSNAP_DISK_SNAPSHOT_TYPE_EXTERNAL,
    .owns = vhd_owns,
    .overlay_format = vhd_overlay_format,
    .overlay_ext = vhd_overlay_ext,
    .overlay_args = vhd_overlay_args,
    .rebase_args = vhd_rebase_args,
    .merge_args = vhd_merge_args,
    .one_level = true,
    .parent = libxl__vhd_parent_sync,
    .unrunnable = vhd_unrunnable,
    .complete_info = vhd_complete_info,
    .probe = vhd_probe,
    LIBXL__OVERLAY_BACKEND_OPS,
};

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
