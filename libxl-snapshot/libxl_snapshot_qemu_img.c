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
 *    belongs to; names were checked not to start with '-'.
 */
#include "libxl_snapshot_internal.h"

const char *const *libxl__qemu_img_overlay_args(libxl__gc *gc,
                                                const char *base,
                                                libxl_disk_format fmt,
                                                const char *overlay)
{
    const char **a;

    GCNEW_ARRAY(a, 11);
    a[0] = CTX->qemu_img;
    a[1] = "create"; a[2] = "-q"; a[3] = "-f"; a[4] = "qcow2";
    a[5] = "-b"; a[6] = base;
    a[7] = "-F"; a[8] = libxl__disk_format_qemu(fmt);
    a[9] = overlay;
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

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
