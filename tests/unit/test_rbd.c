/*
 * test_rbd.c - RBD disks: QEMU's rbd: filenames as the config names
 * them, and the block node QEMU runs one on (its filename is
 * json:{...}, as QEMU 7.2 reports it in query-named-block-nodes,
 * recorded from a real QEMU on a real cluster)
 */
#include <CUnit/CUnit.h>

#include "helpers.h"

void test_rbd__parse(void)
{
    GC_INIT(NULL);
    libxl__rbd_image r;
    const char *why;

    CU_ASSERT_EQUAL(libxl__rbd_parse(gc, "rbd:pool1/img-a", &r, &why), 0);
    CU_ASSERT_STRING_EQUAL(r.pool, "pool1");
    CU_ASSERT_STRING_EQUAL(r.image, "img-a");
    CU_ASSERT_PTR_NULL(r.conf);
    CU_ASSERT_PTR_NULL(r.id);
    CU_ASSERT_EQUAL(libxl__rbd_parse(gc,
        "rbd:rbd/d1:conf=/etc/ceph/a\\:b.conf:id=xen", &r, &why), 0);
    CU_ASSERT_STRING_EQUAL(r.conf, "/etc/ceph/a:b.conf");
    CU_ASSERT_STRING_EQUAL(r.id, "xen");
    /* refused, each saying why */
    CU_ASSERT_EQUAL(libxl__rbd_parse(gc, "/dev/rbd0", &r, &why),
                    ERROR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "not an RBD image"));
    CU_ASSERT_EQUAL(libxl__rbd_parse(gc, "rbd:img", &r, &why), ERROR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "no pool"));
    CU_ASSERT_EQUAL(libxl__rbd_parse(gc, "rbd:p/", &r, &why), ERROR_INVAL);
    CU_ASSERT_EQUAL(libxl__rbd_parse(gc, "rbd:/i", &r, &why), ERROR_INVAL);
    CU_ASSERT_EQUAL(libxl__rbd_parse(gc, "rbd:p/ns/i", &r, &why),
                    ERROR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "namespace"));
    CU_ASSERT_EQUAL(libxl__rbd_parse(gc, "rbd:p/i@snap", &r, &why),
                    ERROR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "snapshot"));
    CU_ASSERT_EQUAL(libxl__rbd_parse(gc, "rbd:p/i:mon_host=1.2.3.4", &r,
                                     &why), ERROR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "mon_host"));
    /* the kernel form's record: udev's name, host-independent */
    CU_ASSERT_EQUAL(libxl__rbd_parse(gc, "/dev/rbd/rbd/xt-a", &r, &why), 0);
    CU_ASSERT_STRING_EQUAL(r.pool, "rbd");
    CU_ASSERT_STRING_EQUAL(r.image, "xt-a");
    CU_ASSERT_PTR_NULL(r.conf);
    CU_ASSERT_EQUAL(libxl__rbd_parse(gc, "/dev/rbd/rbd/xt-a@s1", &r, &why),
                    ERROR_INVAL);
    CU_ASSERT_EQUAL(libxl__rbd_parse(gc, "/dev/rbd/p/ns/i", &r, &why),
                    ERROR_INVAL);
    CU_ASSERT_EQUAL(libxl__rbd_parse(gc, "/dev/rbd/p", &r, &why),
                    ERROR_INVAL);
    GC_FREE;
}

void test_rbd__qemu_node(void)
{
    GC_INIT(NULL);
    yajl_val nodes = libxl__json_parse(gc,
        "[{\"node-name\": \"#block151\", \"drv\": \"rbd\", \"file\": "
        "\"json:{\\\"pool\\\": \\\"rbd\\\", \\\"image\\\": \\\"d1\\\", "
        "\\\"conf\\\": \\\"/tmp/cp/ceph.conf\\\", \\\"driver\\\": "
        "\\\"rbd\\\", \\\"namespace\\\": \\\"\\\"}\"},"
        " {\"node-name\": \"xvda-raw\", \"drv\": \"raw\", \"file\": "
        "\"json:{\\\"driver\\\": \\\"raw\\\", \\\"file\\\": {\\\"pool\\\": "
        "\\\"rbd\\\", \\\"image\\\": \\\"d1\\\", \\\"conf\\\": "
        "\\\"/tmp/cp/ceph.conf\\\", \\\"driver\\\": \\\"rbd\\\", "
        "\\\"namespace\\\": \\\"\\\"}}\"},"
        " {\"node-name\": \"xvdb-raw\", \"drv\": \"raw\", \"file\": "
        "\"/i/b.img\"}]");

    CU_ASSERT_PTR_NOT_NULL_FATAL(nodes);
    CU_ASSERT_STRING_EQUAL(libxl__qmp_node_for_file(gc, nodes,
        "rbd:rbd/d1:conf=/tmp/cp/ceph.conf", LIBXL_DISK_FORMAT_RAW),
        "xvda-raw");
    /* the node is the image's, whatever conf the config names */
    CU_ASSERT_STRING_EQUAL(libxl__qmp_node_for_file(gc, nodes,
        "rbd:rbd/d1", LIBXL_DISK_FORMAT_RAW), "xvda-raw");
    CU_ASSERT_PTR_NULL(libxl__qmp_node_for_file(gc, nodes, "rbd:rbd/d2",
                                                LIBXL_DISK_FORMAT_RAW));
    CU_ASSERT_PTR_NULL(libxl__qmp_node_for_file(gc, nodes, "rbd:other/d1",
                                                LIBXL_DISK_FORMAT_RAW));
    CU_ASSERT_STRING_EQUAL(libxl__qmp_node_for_file(gc, nodes, "/i/b.img",
                               LIBXL_DISK_FORMAT_RAW), "xvdb-raw");
    CU_ASSERT(libxl__image_is_file("/i/b.img"));
    CU_ASSERT(!libxl__image_is_file("rbd:rbd/d1"));
    GC_FREE;
}
