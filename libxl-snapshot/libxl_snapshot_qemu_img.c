/*
 * libxl_snapshot_qemu_img.c - qemu-img command lines
 *
 * Every qemu-img invocation of the library is built here, as an argv
 * (never a shell string), so the flags that matter are chosen once:
 *
 *  - `create -f qcow2 -b BASE -F FMT OVERLAY`: QEMU 7.2 refuses a
 *    backing file without its format, and probing a raw base would let
 *    guest data pick the format.  The base path is absolute, so the
 *    overlay works from any directory.
 *  - `snapshot -c|-a|-d TAG IMAGE`: TAG comes after the option it
 *    belongs to; names were checked not to start with '-'.  qemu-img
 *    finds a snapshot by ID before name, and allows duplicate names,
 *    so -a and -d are given the ID found by name with `info` first.
 *  - `info --output=json -U`: -U (force share) so that images a
 *    running QEMU holds can be read; info only reads.
 */
#include "libxl_snapshot_internal.h"

/*
 * The format of an overlay on an image of base_fmt: qcow2, unless the
 * image's chained backend says otherwise (a VHD's, offline: a
 * differencing VHD, libxl_snapshot_backend_vhd.c).
 */
libxl_disk_format libxl__overlay_format(libxl_disk_format base_fmt,
                                        bool live)
{
    const libxl__snapshot_backend *be = libxl__chain_backend(base_fmt);

    return be->overlay_format ? be->overlay_format(live)
                              : LIBXL_DISK_FORMAT_QCOW2;
}

const char *libxl__overlay_ext(libxl_disk_format base_fmt, bool live)
{
    const libxl__snapshot_backend *be = libxl__chain_backend(base_fmt);

    return be->overlay_ext ? be->overlay_ext(live) : "qcow2";
}

const char *const *libxl__qemu_img_overlay_args(libxl__gc *gc,
                                                const char *base,
                                                libxl_disk_format fmt,
                                                const char *overlay)
{
    const libxl__snapshot_backend *be = libxl__chain_backend(fmt);
    const char **a;

    if (be->overlay_args) return be->overlay_args(gc, base, overlay);
    GCNEW_ARRAY(a, 11);
    a[0] = CTX->qemu_img;
    a[1] = "create"; a[2] = "-q"; a[3] = "-f"; a[4] = "qcow2";
    a[5] = "-b"; a[6] = base;
    a[7] = "-F"; a[8] = libxl__disk_format_qemu(fmt);
    a[9] = overlay;
    return a;
}

const char *const *libxl__qemu_img_rebase_args(libxl__gc *gc,
                                               const char *image,
                                               const char *base,
                                               libxl_disk_format base_fmt)
{
    const libxl__snapshot_backend *be = libxl__chain_backend(base_fmt);
    const char **a;

    if (be->rebase_args) return be->rebase_args(gc, image, base);
    GCNEW_ARRAY(a, 9);
    a[0] = CTX->qemu_img; a[1] = "rebase"; a[2] = "-u";
    a[3] = "-F"; a[4] = libxl__disk_format_qemu(base_fmt);
    a[5] = "-b"; a[6] = base; a[7] = image;
    return a;
}

/*
 * The state of internal snapshot id of image, as a new qcow2 image: on
 * base (image's backing, of format base_fmt), only image's own clusters
 * copied (convert -B reads the source's top layer only); without base,
 * the whole disk.
 */
const char *const *libxl__qemu_img_copy_snapshot_args(libxl__gc *gc,
                                                      const char *image,
                                                      const char *id,
                                                      const char *base,
                                                      libxl_disk_format base_fmt,
                                                      const char *out)
{
    const char **a;
    int n = 0;

    GCNEW_ARRAY(a, 16);
    a[n++] = CTX->qemu_img; a[n++] = "convert"; a[n++] = "-p";
    a[n++] = "-f"; a[n++] = "qcow2";
    a[n++] = "-l"; a[n++] = GCSPRINTF("snapshot.id=%s", id);
    a[n++] = "-O"; a[n++] = "qcow2";
    if (base) {
        a[n++] = "-B"; a[n++] = base;
        a[n++] = "-F"; a[n++] = libxl__disk_format_qemu(base_fmt);
    }
    a[n++] = image; a[n++] = out;
    return a;
}

const char *const *libxl__qemu_img_snapshot_args(libxl__gc *gc, char op,
                                                 const char *tag,
                                                 const char *image)
{
    const char **a;

    assert(op == 'c' || op == 'a' || op == 'd');
    GCNEW_ARRAY(a, 6);
    a[0] = CTX->qemu_img;
    a[1] = "snapshot";
    a[2] = op == 'c' ? "-c" : op == 'a' ? "-a" : "-d";
    a[3] = tag;
    a[4] = image;
    return a;
}

/* `qemu-img check --output=json`: -U (read only), or -r leaks. */
const char *const *libxl__qemu_img_check_args(libxl__gc *gc,
                                              const char *image,
                                              bool repair_leaks)
{
    const char **a;
    int n = 0;

    GCNEW_ARRAY(a, 7);
    a[n++] = CTX->qemu_img;
    a[n++] = "check";
    if (repair_leaks) {
        a[n++] = "-r";
        a[n++] = "leaks";
    } else {
        a[n++] = "-U";
    }
    a[n++] = "--output=json";
    a[n++] = image;
    return a;
}

/*
 * `qemu-img bitmap`: --add NAME (-g granularity) to image, or --merge
 * NAME of src (format srcfmt) into image's NAME.
 */
const char *const *libxl__qemu_img_bitmap_args(libxl__gc *gc,
                                               const char *image,
                                               const char *name,
                                               uint64_t granularity,
                                               const char *src,
                                               libxl_disk_format srcfmt)
{
    const char **a;
    int n = 0;

    GCNEW_ARRAY(a, 14);
    a[n++] = CTX->qemu_img;
    a[n++] = "bitmap";
    if (src) {
        a[n++] = "--merge"; a[n++] = name;
        a[n++] = "-b"; a[n++] = src;
        a[n++] = "-F"; a[n++] = libxl__disk_format_qemu(srcfmt);
    } else {
        a[n++] = "--add";
        if (granularity) {
            a[n++] = "-g";
            a[n++] = GCSPRINTF("%llu", (unsigned long long)granularity);
        }
    }
    a[n++] = image;
    a[n++] = name;
    return a;
}

int libxl__qemu_img_bitmaps(yajl_val info, libxl__qemu_img_bitmap **bm_r,
                            libxl__gc *gc)
{
    yajl_val fs = libxl__json_get(info, "format-specific");
    yajl_val data = fs ? libxl__json_get(fs, "data") : NULL;
    yajl_val bms = data ? libxl__json_get(data, "bitmaps") : NULL;
    libxl__qemu_img_bitmap *bm;
    size_t i, j;
    int n = 0;

    *bm_r = NULL;
    if (!bms || !YAJL_IS_ARRAY(bms)) return 0;
    GCNEW_ARRAY(bm, bms->u.array.len);
    for (i = 0; i < bms->u.array.len; i++) {
        yajl_val b = bms->u.array.values[i];
        yajl_val flags = libxl__json_get(b, "flags");
        const char *name = libxl__json_get_string(b, "name");
        bool in_use = false, recording = false;
        if (!name) continue;
        for (j = 0; flags && YAJL_IS_ARRAY(flags) &&
                    j < flags->u.array.len; j++) {
            const char *f = YAJL_IS_STRING(flags->u.array.values[j])
                ? YAJL_GET_STRING(flags->u.array.values[j]) : NULL;
            if (!f) continue;
            if (!strcmp(f, "in-use")) in_use = true;
            if (!strcmp(f, "auto")) recording = true;
        }
        /* "in-use" on a closed image: inconsistent, not valid */
        if (in_use) continue;
        bm[n].name = name;
        bm[n].granularity = libxl__json_get_integer(b, "granularity", 0);
        bm[n].recording = recording;
        n++;
    }
    *bm_r = bm;
    return n;
}

/* ---------------------------------------------------------------- */
/* qemu-img info, image after image */

static void qemu_img_info_next(libxl__egc *egc,
                               libxl__qemu_img_info_state *qi);
static void qemu_img_info_done(libxl__egc *egc, libxl__exec_state *es,
                               int rc, int status);

void libxl__qemu_img_info(libxl__egc *egc, libxl__qemu_img_info_state *qi)
{
    STATE_AO_GC(qi->ao);

    GCNEW_ARRAY(qi->infos, qi->num_images);
    qi->next = 0;
    qemu_img_info_next(egc, qi);
}

static void qemu_img_info_next(libxl__egc *egc,
                               libxl__qemu_img_info_state *qi)
{
    STATE_AO_GC(qi->ao);
    const char **a;
    int rc;

    while (qi->next < qi->num_images && !qi->images[qi->next])
        qi->next++;                     /* NULL: nothing to probe */
    if (qi->next == qi->num_images) {
        qi->callback(egc, qi, 0);
        return;
    }
    GCNEW_ARRAY(a, 8);
    a[0] = CTX->qemu_img;
    a[1] = "info";
    a[2] = "--output=json";
    a[3] = "-U";
    a[4] = qi->backing_chain ? "--backing-chain" : qi->images[qi->next];
    a[5] = qi->backing_chain ? qi->images[qi->next] : NULL;
    libxl__exec_init(&qi->es);
    qi->es.ao = ao;
    qi->es.what = qi->images[qi->next];
    qi->es.args = a;
    qi->es.timeout_ms = 60000;
    qi->es.callback = qemu_img_info_done;
    rc = libxl__exec_start(egc, &qi->es);
    if (rc) qi->callback(egc, qi, rc);
}

static void qemu_img_info_done(libxl__egc *egc, libxl__exec_state *es,
                               int rc, int status)
{
    libxl__qemu_img_info_state *qi =
        CONTAINER_OF(es, libxl__qemu_img_info_state, es);
    STATE_AO_GC(qi->ao);
    yajl_val v;
    char *err = NULL;

    if (rc) goto out;
    v = libxl__vhd_complete_info(gc, es->out,
                                 libxl__json_parse(gc, es->out), &err);
    if (!v) {
        LOG(ERROR, "qemu-img info %s: %s", qi->images[qi->next],
            err ? err : "output is not JSON");
        rc = ERROR_FAIL;
        goto out;
    }
    qi->infos[qi->next++] = v;
    qemu_img_info_next(egc, qi);
    return;
 out:
    qi->callback(egc, qi, rc);
}

int libxl__qemu_img_find_tag(yajl_val info, const char *tag,
                             const char **id_r)
{
    yajl_val snaps = libxl__json_get(info, "snapshots");
    int n = 0;
    size_t i;

    *id_r = NULL;
    if (!snaps || !YAJL_IS_ARRAY(snaps)) return 0;
    for (i = 0; i < snaps->u.array.len; i++) {
        yajl_val sn = snaps->u.array.values[i];
        const char *name = libxl__json_get_string(sn, "name");
        if (name && !strcmp(name, tag)) {
            n++;
            *id_r = libxl__json_get_string(sn, "id");
        }
    }
    return n;
}

/*
 * Synchronous `qemu-img info --output=json -U [--backing-chain] image`,
 * parsed (gc); NULL and *err_r (gc, trimmed) when it does not open.
 */
yajl_val libxl__qemu_img_info_sync(libxl__gc *gc, const char *image,
                                   bool chain, char **err_r)
{
    const char *a[] = { CTX->qemu_img, "info", "--output=json", "-U",
                        chain ? "--backing-chain" : image,
                        chain ? image : NULL, NULL };
    char *out = NULL, *err = NULL;
    yajl_val v = NULL;
    size_t l;

    if (!libxl__exec_sync(gc, a, 10 * 60 * 1000, &out, &err))
        v = libxl__vhd_complete_info(gc, out, libxl__json_parse(gc, out),
                                     &err);
    if (!v && err_r) {
        l = err ? strlen(err) : 0;
        while (l && (err[l - 1] == '\n' || err[l - 1] == ' ')) err[--l] = 0;
        *err_r = l ? err : GCSTRDUP("qemu-img info failed");
    }
    return v;
}

/*
 * The files of image's backing chain, image first (synchronous).
 * ERROR_FAIL with *err_r (gc) when it does not open.
 */
int libxl__qemu_img_chain(libxl__gc *gc, const char *image,
                          const char ***files_r, int *n_r, char **err_r)
{
    yajl_val v = libxl__qemu_img_info_sync(gc, image, true, err_r);
    const char **f;
    size_t i;
    int n = 0;

    *files_r = NULL;
    *n_r = 0;
    if (!v || !YAJL_IS_ARRAY(v)) {
        if (v && err_r) *err_r = GCSTRDUP("unexpected qemu-img info output");
        return ERROR_FAIL;
    }
    GCNEW_ARRAY(f, v->u.array.len);
    for (i = 0; i < v->u.array.len; i++) {
        const char *name = libxl__json_get_string(v->u.array.values[i],
                                                  "filename");
        if (name) f[n++] = name;
    }
    *files_r = f;
    *n_r = n;
    return 0;
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
