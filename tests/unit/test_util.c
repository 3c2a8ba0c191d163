/*
 * test_util.c - small internal helpers: the growing argv array
 *
 * The gc has no ctx: these are pure functions.
 */
#include <CUnit/CUnit.h>

#include "libxl_snapshot_internal.h"
#include "helpers.h"

#include <fcntl.h>
#include <unistd.h>

/* always NULL-terminated, grows past its first allocation, keeps order */
void test_util__flexarray(void)
{
    GC_INIT(NULL);
    libxl__flexarray *a = libxl__flexarray_new(gc);
    char *want[100];
    int i;

    CU_ASSERT_EQUAL(a->count, 0);
    CU_ASSERT_PTR_NULL(a->data[0]);
    libxl__flexarray_append(a, "qemu-img");
    CU_ASSERT_EQUAL(a->count, 1);
    CU_ASSERT_PTR_NULL(a->data[1]);
    libxl__flexarray_append_pair(a, "-f", "qcow2");
    CU_ASSERT_EQUAL(a->count, 3);
    CU_ASSERT_STRING_EQUAL(a->data[1], "-f");
    CU_ASSERT_STRING_EQUAL(a->data[2], "qcow2");
    CU_ASSERT_PTR_NULL(a->data[3]);
    for (i = 0; i < 97; i++) {
        want[i] = GCSPRINTF("arg%d", i);
        libxl__flexarray_append(a, want[i]);
        CU_ASSERT_PTR_NULL(a->data[a->count]);
    }
    CU_ASSERT_EQUAL(a->count, 100);
    CU_ASSERT(a->alloc > a->count);
    CU_ASSERT_STRING_EQUAL(a->data[0], "qemu-img");
    for (i = 0; i < 97; i++)
        CU_ASSERT_PTR_EQUAL(a->data[3 + i], want[i]);
    GC_FREE;
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */

/* libxl__image_same: a file is itself, and its symbolic and hard links
 * are it; another file is not, nor is a missing one */
void test_util__image_same(void)
{
    GC_INIT(NULL);
    char *dir = unit_tmpdir("image-same");
    const char *a, *b, *sym, *hard, *gone;
    int fd;

    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    a = GCSPRINTF("%s/a.qcow2", dir);
    b = GCSPRINTF("%s/b.qcow2", dir);
    sym = GCSPRINTF("%s/sym.qcow2", dir);
    hard = GCSPRINTF("%s/hard.qcow2", dir);
    gone = GCSPRINTF("%s/gone.qcow2", dir);
    fd = open(a, O_CREAT | O_WRONLY, 0600);
    CU_ASSERT(fd >= 0);
    if (fd >= 0) close(fd);
    fd = open(b, O_CREAT | O_WRONLY, 0600);
    CU_ASSERT(fd >= 0);
    if (fd >= 0) close(fd);
    CU_ASSERT_EQUAL(symlink(a, sym), 0);
    CU_ASSERT_EQUAL(link(a, hard), 0);

    CU_ASSERT(libxl__image_same(gc, a, a));
    CU_ASSERT(libxl__image_same(gc, sym, a));
    CU_ASSERT(libxl__image_same(gc, a, hard));
    CU_ASSERT(libxl__image_same(gc, sym, hard));
    CU_ASSERT(!libxl__image_same(gc, a, b));
    CU_ASSERT(!libxl__image_same(gc, sym, b));
    CU_ASSERT(!libxl__image_same(gc, gone, a));
    CU_ASSERT(libxl__image_same(gc, gone, gone));   /* the same name */
    CU_ASSERT(!libxl__image_same(gc, NULL, a));
    CU_ASSERT(!libxl__image_same(gc, a, NULL));

    unlink(sym);
    unlink(hard);
    unlink(a);
    unlink(b);
    rmdir(dir);
    free(dir);
    GC_FREE;
}
