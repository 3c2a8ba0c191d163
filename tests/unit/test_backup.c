/*
 * test_backup.c - the pure parts of backups: the NBD address of a pull,
 * the backup's JSON, the job type's name.  (The backups themselves run
 * against real QEMU in tests/qemu/test-101-backup.sh.)
 */
#include <CUnit/CUnit.h>

#include "helpers.h"

static const char *addr_field(yajl_val a, const char *key)
{
    return libxl__json_get_string(libxl__json_get(a, "data"), key);
}

void test_backup__nbd_address(void)
{
    GC_INIT(NULL);
    yajl_val a;

    CU_ASSERT_EQUAL_FATAL(libxl__backup_nbd_addr(gc, "/run/vm1.sock", &a), 0);
    CU_ASSERT_STRING_EQUAL(libxl__json_get_string(a, "type"), "unix");
    CU_ASSERT_STRING_EQUAL(addr_field(a, "path"), "/run/vm1.sock");
    CU_ASSERT_EQUAL_FATAL(libxl__backup_nbd_addr(gc, "./rel/s", &a), 0);
    CU_ASSERT_STRING_EQUAL(libxl__json_get_string(a, "type"), "unix");

    CU_ASSERT_EQUAL_FATAL(libxl__backup_nbd_addr(gc, "backup.example:10809",
                                                 &a), 0);
    CU_ASSERT_STRING_EQUAL(libxl__json_get_string(a, "type"), "inet");
    CU_ASSERT_STRING_EQUAL(addr_field(a, "host"), "backup.example");
    CU_ASSERT_STRING_EQUAL(addr_field(a, "port"), "10809");
    CU_ASSERT_EQUAL_FATAL(libxl__backup_nbd_addr(gc, "[::1]:10900", &a), 0);
    CU_ASSERT_STRING_EQUAL(addr_field(a, "host"), "::1");
    CU_ASSERT_STRING_EQUAL(addr_field(a, "port"), "10900");

    /* refused: no port, a bad port, a bare IPv6 address, no host */
    CU_ASSERT_EQUAL(libxl__backup_nbd_addr(gc, "nope", &a), ERROR_INVAL);
    CU_ASSERT_EQUAL(libxl__backup_nbd_addr(gc, "host:", &a), ERROR_INVAL);
    CU_ASSERT_EQUAL(libxl__backup_nbd_addr(gc, "host:0", &a), ERROR_INVAL);
    CU_ASSERT_EQUAL(libxl__backup_nbd_addr(gc, "host:65536", &a),
                    ERROR_INVAL);
    CU_ASSERT_EQUAL(libxl__backup_nbd_addr(gc, "host:80x", &a), ERROR_INVAL);
    CU_ASSERT_EQUAL(libxl__backup_nbd_addr(gc, ":80", &a), ERROR_INVAL);
    CU_ASSERT_EQUAL(libxl__backup_nbd_addr(gc, "::1:80", &a), ERROR_INVAL);
    CU_ASSERT_EQUAL(libxl__backup_nbd_addr(gc, "[]:80", &a), ERROR_INVAL);
    CU_ASSERT_EQUAL(libxl__backup_nbd_addr(gc, "", &a), ERROR_INVAL);
    GC_FREE;
}

void test_backup__info_json(void)
{
    GC_INIT(NULL);
    libxlsnap_backup_info info;
    libxlsnap_blockjob_info jobs[2];
    yajl_val v, j;
    char *s;

    memset(jobs, 0, sizeof(jobs));
    libxlsnap_backup_info_init(&info);
    info.pull = false;
    info.live = true;
    info.target = "/backup/d1";
    info.incremental = "d0";
    info.checkpoint = "d1";
    info.state = LIBXLSNAP_BLOCKJOB_STATE_RUNNING;
    info.offset = 10;
    info.len = 30;
    jobs[0].id = "libxl-backup-xvda";
    jobs[0].vdev = "xvda";
    jobs[0].type = LIBXLSNAP_BLOCKJOB_TYPE_BACKUP;
    jobs[0].state = LIBXLSNAP_BLOCKJOB_STATE_COMPLETED;
    jobs[0].top = "/img/a.qcow2";
    jobs[0].base = "/backup/d1/xvda.qcow2";
    jobs[1] = jobs[0];
    jobs[1].vdev = "xvdb";
    jobs[1].error = "No space left on device";
    info.jobs = jobs;
    info.num_jobs = 2;

    s = libxlsnap_backup_info_to_json(NULL, &info);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    v = libxl__json_parse(gc, s);
    free(s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_STRING_EQUAL(libxl__json_get_string(v, "mode"), "push");
    CU_ASSERT_STRING_EQUAL(libxl__json_get_string(v, "target"), "/backup/d1");
    CU_ASSERT_STRING_EQUAL(libxl__json_get_string(v, "incremental"), "d0");
    CU_ASSERT_STRING_EQUAL(libxl__json_get_string(v, "checkpoint"), "d1");
    CU_ASSERT_STRING_EQUAL(libxl__json_get_string(v, "state"), "running");
    CU_ASSERT_EQUAL(libxl__json_get_integer(v, "len", 0), 30);
    CU_ASSERT_EQUAL(libxl__json_get_bool(v, "fell_back", true), false);
    CU_ASSERT_PTR_NULL(libxl__json_get(v, "error"));
    j = libxl__json_get(v, "jobs");
    CU_ASSERT_FATAL(j && YAJL_IS_ARRAY(j) && j->u.array.len == 2);
    CU_ASSERT_STRING_EQUAL(libxl__json_get_string(j->u.array.values[0],
                                                  "type"), "backup");
    CU_ASSERT_STRING_EQUAL(libxl__json_get_string(j->u.array.values[1],
                                                  "vdev"), "xvdb");
    CU_ASSERT_STRING_EQUAL(libxl__json_get_string(j->u.array.values[1],
                                                  "error"),
                           "No space left on device");
    /* a pull, full */
    info.pull = true;
    info.incremental = info.checkpoint = NULL;
    info.num_jobs = 0;
    s = libxlsnap_backup_info_to_json(NULL, &info);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    v = libxl__json_parse(gc, s);
    free(s);
    CU_ASSERT_STRING_EQUAL(libxl__json_get_string(v, "mode"), "pull");
    CU_ASSERT_PTR_NULL(libxl__json_get(v, "incremental"));
    CU_ASSERT_EQUAL(libxl__json_get(v, "jobs")->u.array.len, 0);
    CU_ASSERT_PTR_NULL(libxlsnap_backup_info_to_json(NULL, NULL));
    GC_FREE;
}

void test_backup__type_name(void)
{
    CU_ASSERT_STRING_EQUAL(
        libxlsnap_blockjob_type_to_string(LIBXLSNAP_BLOCKJOB_TYPE_BACKUP),
        "backup");
}
