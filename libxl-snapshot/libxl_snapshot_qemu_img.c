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
    libxl__flexarray *a;

    if (be->overlay_args) return be->overlay_args(gc, base, overlay);
    a = libxl__flexarray_new(gc);
    libxl__flexarray_append_pair(a, CTX->qemu_img, "create");
    libxl__flexarray_append(a, "-q");
    libxl__flexarray_append_pair(a, "-f", "qcow2");
    libxl__flexarray_append_pair(a, "-b", base);
    libxl__flexarray_append_pair(a, "-F", libxl__disk_format_qemu(fmt));
    libxl__flexarray_append(a, overlay);
    return a->data;
}

const char *const *libxl__qemu_img_rebase_args(libxl__gc *gc,
                                               const char *image,
                                               const char *base,
                                               libxl_disk_format base_fmt)
{
    const libxl__snapshot_backend *be = libxl__chain_backend(base_fmt);
    libxl__flexarray *a;

    if (be->rebase_args) return be->rebase_args(gc, image, base);
    a = libxl__flexarray_new(gc);
    libxl__flexarray_append_pair(a, CTX->qemu_img, "rebase");
    libxl__flexarray_append(a, "-u");
    libxl__flexarray_append_pair(a, "-F", libxl__disk_format_qemu(base_fmt));
    libxl__flexarray_append_pair(a, "-b", base);
    libxl__flexarray_append(a, image);
    return a->data;
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
    libxl__flexarray *a = libxl__flexarray_new(gc);

    libxl__flexarray_append_pair(a, CTX->qemu_img, "convert");
    libxl__flexarray_append(a, "-p");
    libxl__flexarray_append_pair(a, "-f", "qcow2");
    libxl__flexarray_append_pair(a, "-l", GCSPRINTF("snapshot.id=%s", id));
    libxl__flexarray_append_pair(a, "-O", "qcow2");
    if (base) {
        libxl__flexarray_append_pair(a, "-B", base);
        libxl__flexarray_append_pair(a, "-F",
                                     libxl__disk_format_qemu(base_fmt));
    }
    libxl__flexarray_append_pair(a, image, out);
    return a->data;
}

const char *const *libxl__qemu_img_snapshot_args(libxl__gc *gc, char op,
                                                 const char *tag,
                                                 const char *image)
{
    libxl__flexarray *a = libxl__flexarray_new(gc);

    assert(op == 'c' || op == 'a' || op == 'd');
    libxl__flexarray_append_pair(a, CTX->qemu_img, "snapshot");
    libxl__flexarray_append_pair(a, op == 'c' ? "-c" : op == 'a' ? "-a"
                                                                  : "-d",
                                 tag);
    libxl__flexarray_append(a, image);
    return a->data;
}

/* `qemu-img check --output=json`: -U (read only), or -r leaks. */
const char *const *libxl__qemu_img_check_args(libxl__gc *gc,
                                              const char *image,
                                              bool repair_leaks)
{
    libxl__flexarray *a = libxl__flexarray_new(gc);

    libxl__flexarray_append_pair(a, CTX->qemu_img, "check");
    if (repair_leaks)
        libxl__flexarray_append_pair(a, "-r", "leaks");
    else
        libxl__flexarray_append(a, "-U");
    libxl__flexarray_append_pair(a, "--output=json", image);
    return a->data;
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
    libxl__flexarray *a = libxl__flexarray_new(gc);

    libxl__flexarray_append_pair(a, CTX->qemu_img, "bitmap");
    if (src) {
        libxl__flexarray_append_pair(a, "--merge", name);
        libxl__flexarray_append_pair(a, "-b", src);
        libxl__flexarray_append_pair(a, "-F",
                                     libxl__disk_format_qemu(srcfmt));
    } else {
        libxl__flexarray_append(a, "--add");
        if (granularity)
            libxl__flexarray_append_pair(a, "-g",
                GCSPRINTF("%llu", (unsigned long long)granularity));
    }
    libxl__flexarray_append_pair(a, image, name);
    return a->data;
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
    GCNEW_ARRAY(qi->errs, qi->num_images);
    qi->next = 0;
    qemu_img_info_next(egc, qi);
}

static void qemu_img_info_next(libxl__egc *egc,
                               libxl__qemu_img_info_state *qi)
{
    STATE_AO_GC(qi->ao);
    int rc;

    while (qi->next < qi->num_images && !qi->images[qi->next])
        qi->next++;                     /* NULL: nothing to probe */
    if (qi->next == qi->num_images) {
        qi->callback(egc, qi, 0);
        return;
    }
    libxl__exec_init(&qi->es);
    qi->es.ao = ao;
    qi->es.what = qi->images[qi->next];
    qi->es.args = libxl__qemu_img_info_args(gc, qi->images[qi->next],
                                            qi->backing_chain);
    qi->es.timeout_ms = 60000;
    qi->es.quiet = qi->keep_going;
    qi->es.unabortable = qi->unabortable;
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

    if (rc == ERROR_FAIL && qi->keep_going) {
        /* this one does not open: said by the caller, if at all */
        libxl__qemu_img_info_parse(gc, rc, es->out, es->err, &err);
        qi->errs[qi->next++] = err;
        qemu_img_info_next(egc, qi);
        return;
    }
    if (rc) goto out;
    v = libxl__image_info_complete(gc, libxl__json_parse(gc, es->out), &err);
    if (!v && qi->keep_going) {
        qi->errs[qi->next++] = err ? err : "output is not JSON";
        qemu_img_info_next(egc, qi);
        return;
    }
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

/* `qemu-img info --output=json -U [--backing-chain] image` */
const char *const *libxl__qemu_img_info_args(libxl__gc *gc,
                                             const char *image, bool chain)
{
    libxl__flexarray *a = libxl__flexarray_new(gc);

    libxl__flexarray_append_pair(a, CTX->qemu_img, "info");
    libxl__flexarray_append_pair(a, "--output=json", "-U");
    if (chain) libxl__flexarray_append(a, "--backing-chain");
    libxl__flexarray_append(a, image);
    return a->data;
}

/*
 * What one run of those args gave (rc, stdout, stderr), parsed (gc);
 * NULL and *err_r (gc, trimmed) when the image does not open.
 */
yajl_val libxl__qemu_img_info_parse(libxl__gc *gc, int rc, const char *out,
                                    char *err, char **err_r)
{
    yajl_val v = NULL;
    size_t l;

    if (!rc && out)
        v = libxl__image_info_complete(gc, libxl__json_parse(gc, out), &err);
    if (!v && err_r) {
        l = err ? strlen(err) : 0;
        while (l && (err[l - 1] == '\n' || err[l - 1] == ' ')) err[--l] = 0;
        *err_r = l ? err : GCSTRDUP("qemu-img info failed");
    }
    return v;
}

/* Synchronous qemu-img info (libxl__qemu_img_info_parse). */
yajl_val libxl__qemu_img_info_sync(libxl__gc *gc, const char *image,
                                   bool chain, char **err_r)
{
    char *out = NULL, *err = NULL;
    int rc;

    rc = libxl__exec_sync(gc, libxl__qemu_img_info_args(gc, image, chain),
                          10 * 60 * 1000, &out, &err);
    return libxl__qemu_img_info_parse(gc, rc, out, err, err_r);
}

/*
 * The files of image's backing chain, image first (synchronous).
 * ERROR_FAIL with *err_r (gc) when it does not open.
 */
int libxl__qemu_img_chain(libxl__gc *gc, const char *image,
                          const char ***files_r, int *n_r, char **err_r)
{
    yajl_val v = libxl__qemu_img_info_sync(gc, image, true, err_r);

    *files_r = NULL;
    *n_r = 0;
    if (!v || !YAJL_IS_ARRAY(v)) {
        if (v && err_r) *err_r = GCSTRDUP("unexpected qemu-img info output");
        return ERROR_FAIL;
    }
    *n_r = libxl__qemu_img_chain_files(gc, v, files_r);
    return 0;
}

int libxl__qemu_img_chain_files(libxl__gc *gc, yajl_val chain,
                                const char ***files_r)
{
    const char **f;
    size_t i;
    int n = 0;

    *files_r = NULL;
    if (!chain || !YAJL_IS_ARRAY(chain)) return 0;
    GCNEW_ARRAY(f, chain->u.array.len + 1);
    for (i = 0; i < chain->u.array.len; i++) {
        const char *name = libxl__json_get_string(chain->u.array.values[i],
                                                  "filename");
        if (name) f[n++] = name;
    }
    *files_r = f;
    return n;
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
