/*
 * test_util.c - small internal helpers: the growing argv array
 *
 * The gc has no ctx: these are pure functions.
 */
#include <CUnit/CUnit.h>

#include "libxl_snapshot_internal.h"

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
