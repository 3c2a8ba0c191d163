/*
 * libxl_snapshot_backend.c - the table of disk backends, and lookups
 *
 * Each kind of disk snapshot is one backend (libxl__snapshot_backend,
 * libxl_snapshot_internal.h), in a file of its own:
 * libxl_snapshot_backend_internal.c (qcow2 internal), _overlay.c
 * (external qcow2 overlays), _vhd.c (VHD chains), _lvm.c (LVM
 * snapshot volumes) and _rbd.c (Ceph RBD snapshots: two entries, QEMU's
 * form and the kernel's, of one type).  The table below is the only place that knows
 * them all: a new backend is one file and one entry here.
 *
 * A record's disk names its backend by its type, and for an external
 * snapshot also by its image's format (a VHD image is chained by
 * vhd-util, any other by qemu-img).  A new snapshot's disk is given
 * the first backend in the table whose probe takes it, unless the
 * request names the type.  Other lookups: the chained backend of an
 * image format (its overlays, merges, `qemu-img info` completion), the
 * backend of a revert journal's disk (its own keys, else chained by
 * format), and the backend of a libvirt XML disk type.
 *
 * Nothing outside these files branches on a backend: the operations
 * (create, its live QMP transaction included, revert, delete, check,
 * recovery, the XML) go over the disks and call the disk's backend.
 * What is left of the disk type elsewhere is not a backend choice: the
 * type's names (libxl_snapshot_types.c), the disk-spec grammar (config:
 * which keys go with which type), type "no" (a disk not snapshotted),
 * and image formats, which are not backends (qcow2-only features:
 * bitmaps, leak repair, QMP commit).  So a new backend (Ceph RBD) is
 * one file and one entry here.
 */
#include "libxl_snapshot_internal.h"

#include <sys/stat.h>

/* in the order their probes are asked */
static const libxl__snapshot_backend *const backends[] = {
    &libxl__snapshot_backend_rbd,
    &libxl__snapshot_backend_krbd,
    &libxl__snapshot_backend_lvm,
    &libxl__snapshot_backend_internal,
    &libxl__snapshot_backend_vhd,
    &libxl__snapshot_backend_overlay,
};
#define NUM_BACKENDS (sizeof(backends) / sizeof(backends[0]))

const libxl__snapshot_backend *libxl__snapshot_backend_of(
    const libxlsnap_disk_snapshot *ds)
{
    size_t i;

    for (i = 0; i < NUM_BACKENDS; i++)
        if (backends[i]->type == ds->type &&
            (!backends[i]->owns || backends[i]->owns(ds->format)) &&
            (!backends[i]->owns_file || backends[i]->owns_file(ds->file)))
            return backends[i];
    return NULL;
}

const libxl__snapshot_backend *libxl__xml_backend(const char *xml_type)
{
    size_t i;

    for (i = 0; i < NUM_BACKENDS; i++)
        if (backends[i]->xml_type && !strcmp(backends[i]->xml_type, xml_type))
            return backends[i];
    return NULL;
}

const libxl__snapshot_backend *libxl__chain_backend(libxl_disk_format fmt)
{
    size_t i;

    for (i = 0; i < NUM_BACKENDS; i++)
        if (backends[i]->chained &&
            (!backends[i]->owns || backends[i]->owns(fmt)))
            return backends[i];
    abort();                          /* the overlay backend takes all */
}

const libxl__snapshot_backend *libxl__revert_journal_backend(
    yajl_val d, libxl_disk_format fmt)
{
    size_t i;

    for (i = 0; i < NUM_BACKENDS; i++)
        if (backends[i]->revert_journal_owns &&
            backends[i]->revert_journal_owns(d))
            return backends[i];
    return libxl__chain_backend(fmt);
}

const char *libxl__image_unrunnable(libxl__gc *gc, const char *path)
{
    const char *why = NULL;
    size_t i;

    for (i = 0; !why && i < NUM_BACKENDS; i++)
        if (backends[i]->unrunnable)
            why = backends[i]->unrunnable(gc, path);
    return why;
}

static const libxl__snapshot_backend *image_backend(const char *path)
{
    size_t i;

    for (i = 0; path && i < NUM_BACKENDS; i++)
        if (backends[i]->names_image && backends[i]->names_image(path))
            return backends[i];
    return NULL;
}

bool libxl__image_is_file(const char *path)
{
    return !image_backend(path);
}

const char *libxl__image_missing(libxl__gc *gc, const char *path)
{
    return libxl__image_problem(gc, path, NULL, NULL);
}

const char *libxl__image_problem(libxl__gc *gc, const char *path,
                                 const char ***tags_r, int *n_r)
{
    const libxl__snapshot_backend *be = image_backend(path);
    int n;

    if (!n_r) n_r = &n;
    *n_r = 0;
    if (be) return be->image_problem(gc, path, tags_r, n_r);
    return libxl__file_exists(path) ? NULL : "does not exist";
}

bool libxl__qemu_file_is(libxl__gc *gc, const char *qemu_file,
                         const char *path)
{
    const libxl__snapshot_backend *be = image_backend(path);

    if (!qemu_file || !path) return false;
    if (!strcmp(qemu_file, path)) return true;
    return be && be->same_image(gc, qemu_file, path);
}

bool libxl__image_same(libxl__gc *gc, const char *a, const char *b)
{
    struct stat sa, sb;

    if (!a || !b) return false;
    if (!strcmp(a, b)) return true;
    if (!libxl__image_is_file(a) || !libxl__image_is_file(b))
        return libxl__qemu_file_is(gc, a, b) || libxl__qemu_file_is(gc, b, a);
    return !stat(a, &sa) && !stat(b, &sb) && sa.st_dev == sb.st_dev &&
        sa.st_ino == sb.st_ino;
}

yajl_val libxl__image_info_complete(libxl__gc *gc, yajl_val v, char **err_r)
{
    size_t i;

    for (i = 0; v && i < NUM_BACKENDS; i++)
        if (backends[i]->complete_info)
            v = backends[i]->complete_info(gc, v, err_r);
    return v;
}

const libxl__snapshot_backend *libxl__snapshot_backend_select(
    libxl__gc *gc, libxlsnap_disk_snapshot_type type,
    const libxl_device_disk *dk, const libxl_device_disk *config,
    void **priv_r, const char **why_r)
{
    size_t i;

    *priv_r = NULL;
    *why_r = "cannot take a snapshot of that type";
    for (i = 0; i < NUM_BACKENDS; i++) {
        const libxl__snapshot_backend *be = backends[i];
        if (type == LIBXLSNAP_DISK_SNAPSHOT_TYPE_DEFAULT) {
            if (be->probe(gc, dk, config, priv_r)) return be;
            continue;
        }
        if (be->type != type) continue;
        if (!be->must_probe) {
            /* the first of that type whose probe takes it, else the
             * last of that type */
            size_t j;
            for (j = i; j < NUM_BACKENDS; j++)
                if (backends[j]->type == type &&
                    backends[j]->probe(gc, dk, config, priv_r))
                    return backends[j];
            for (j = NUM_BACKENDS; j-- > i; )
                if (backends[j]->type == type) return backends[j];
        }
        if (be->probe(gc, dk, config, priv_r)) return be;
        /* another of that type may take it (RBD's two forms); the
         * last one's refusal says why none does */
        *why_r = be->refusal;
    }
    return NULL;
}

int libxl__qemu_disk_refused(libxl__gc *gc, const libxl__create_plan *p)
{
    const libxl_device_disk *dk = p->dk;

    if (p->op->d.running && dk->backend != LIBXL_DISK_BACKEND_QDISK &&
        dk->backend != LIBXL_DISK_BACKEND_UNKNOWN) {
        LOG(ERROR, "disk %s of domain %s is served by %s, not by QEMU "
            "(qdisk): it cannot be snapshotted while the domain runs "
            "(a disk snapshot of type no leaves it out)", dk->vdev,
            p->op->d.name, libxl_disk_backend_to_string(dk->backend));
        return ERROR_INVAL;
    }
    if (!libxl__disk_format_qemu(dk->format)) {
        LOG(ERROR, "disk %s: format %s cannot be snapshotted here",
            dk->vdev, libxl_disk_format_to_string(dk->format));
        return ERROR_INVAL;
    }
    return 0;
}

int libxl__image_file_refused(libxl__gc *gc, const libxl__create_plan *p)
{
    const libxl_device_disk *dk = p->dk;
    const libxl__snapshot_backend *own = image_backend(dk->pdev_path);

    if (!own) return 0;
    LOG(ERROR, "disk %s: '%s' is no image file: its snapshots are of type "
        "%s", dk->vdev, dk->pdev_path,
        libxlsnap_disk_snapshot_type_to_string(own->type));
    return ERROR_INVAL;
}

int libxl__disk_snapshot_undo(libxl__gc *gc, const libxl__snapshot_op *op,
                              const libxlsnap_disk_snapshot *ds,
                              const libxl__snapshot_tree *t,
                              const char **why_r)
{
    const libxl__snapshot_backend *be = libxl__snapshot_backend_of(ds);

    if (why_r) *why_r = NULL;
    return be ? be->undo(gc, op, ds, t, why_r) : 0;
}

/* be's slot of c */
static void **cache_of(libxl__backend_cache *c,
                       const libxl__snapshot_backend *be)
{
    size_t k;

    for (k = 0; k < NUM_BACKENDS && c->owner[k] && c->owner[k] != be; k++)
        ;
    c->owner[k] = be;
    return &c->data[k];
}

const char *libxl__disk_snapshot_check(libxl__gc *gc,
                                       libxl__backend_cache *c,
                                       const libxlsnap_disk_snapshot *ds,
                                       yajl_val info)
{
    const libxl__snapshot_backend *be = libxl__snapshot_backend_of(ds);

    if (!be || !be->check) return NULL;
    return be->check(gc, cache_of(c, be), ds, info);
}

const char *libxl__disk_redefine_missing(libxl__gc *gc,
                                         libxl__backend_cache *c,
                                         const libxlsnap_disk_snapshot *ds)
{
    const libxl__snapshot_backend *be = libxl__snapshot_backend_of(ds);

    if (!be || !be->redefine_missing) return NULL;
    return be->redefine_missing(gc, cache_of(c, be), ds);
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
