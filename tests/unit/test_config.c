/*
 * test_config.c - unit tests for libxl_snapshot_config.c
 *
 * Domain configs and snapshot configs are written to a fresh mkdtemp
 * directory per test and parsed for real with libxlutil.  The context
 * is a bare libxlsnap_ctx with a logger that keeps the last
 * message, so the tests can check that an error is one line naming
 * the file or spec (and show it on stderr).
 */
#include "libxl_snapshot_internal.h"

#include <ftw.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "helpers.h"

/* ---------------------------------------------------------------- */
/* fixture */

/* the shared logger (helpers.c) */
#define last_log unit_last_log
#define nlogs unit_nlogs

typedef struct fixture {
    libxlsnap_ctx ctx;
    libxl__gc gc[1];
    char dir[64];
} fixture;

static void fixture_init(fixture *f)
{
    memset(f, 0, sizeof(*f));
    f->ctx.lg = unit_capture_logger();
    LIBXL_INIT_GC(f->gc[0], &f->ctx);
    strcpy(f->dir, "/tmp/test_config.XXXXXX");
    CU_ASSERT_FATAL(mkdtemp(f->dir) != NULL);
    last_log[0] = 0;
    nlogs = 0;
}

static int rm_entry(const char *path, const struct stat *st, int type,
                    struct FTW *ftw)
{
    return remove(path);
}

static void fixture_fini(fixture *f)
{
    libxl__gc_free_all(f->gc);
    nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* Writes dir/name; returns its path (gc). */
static char *write_cfg(fixture *f, const char *name, const char *text)
{
    libxl__gc *gc = f->gc;
    char *path = GCSPRINTF("%s/%s", f->dir, name);
    FILE *fp = fopen(path, "w");

    CU_ASSERT_FATAL(fp != NULL);
    fputs(text, fp);
    fclose(fp);
    return path;
}

/* The last error was logged once, on one line, and names what. */
static void assert_logged_about(const char *what)
{
    CU_ASSERT(nlogs >= 1);
    CU_ASSERT(strchr(last_log, '\n') == NULL);
    CU_ASSERT(strstr(last_log, what) != NULL);
}

static char *uuid_str(libxl__gc *gc, const libxl_uuid *u)
{
    return GCSPRINTF(LIBXL_UUID_FMT, LIBXL_UUID_BYTES(*u));
}

/* ---------------------------------------------------------------- */
/* domain config */

void test_config__domain_two_disks(void)
{
    fixture f;
    libxl__gc *gc;
    libxl__domain_config cfg;
    libxl_uuid expect;
    char *file, *cwd;
    int rc;

    fixture_init(&f);
    gc = f.gc;
    file = write_cfg(&f, "vm1.cfg",
        "name = \"vm1\"\n"
        "memory = 512\n"
        "vcpus = 2\n"
        "disk = [ 'format=qcow2,vdev=xvda,access=rw,target=/img/vm1.qcow2',\n"
        "         'format=raw,vdev=xvdb,target=data.img' ]\n");

    rc = libxl__domain_config_parse(gc, file, &cfg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(cfg.file, file);
    CU_ASSERT_STRING_EQUAL(cfg.name, "vm1");
    CU_ASSERT_EQUAL(cfg.memory_mb, 512);
    CU_ASSERT(!cfg.have_uuid);
    libxl__uuid_from_name("vm1", &expect);
    CU_ASSERT(!libxl_uuid_compare(&cfg.uuid, &expect));

    CU_ASSERT_EQUAL_FATAL(cfg.num_disks, 2);
    CU_ASSERT_STRING_EQUAL(cfg.disks[0].vdev, "xvda");
    CU_ASSERT_STRING_EQUAL(cfg.disks[0].pdev_path, "/img/vm1.qcow2");
    CU_ASSERT_EQUAL(cfg.disks[0].format, LIBXL_DISK_FORMAT_QCOW2);
    CU_ASSERT_STRING_EQUAL(cfg.disks[1].vdev, "xvdb");
    /* a relative image path is made absolute (from the cwd, as xl) */
    {
        char cwd[4096], *want;
        CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof(cwd)));
        CU_ASSERT_FATAL(asprintf(&want, "%s/data.img", cwd) > 0);
        CU_ASSERT_STRING_EQUAL(cfg.disks[1].pdev_path, want);
        free(want);
    }
    CU_ASSERT_EQUAL(cfg.disks[1].format, LIBXL_DISK_FORMAT_RAW);
    CU_ASSERT_EQUAL(nlogs, 0);

    /* a relative config path comes back absolute */
    cwd = getcwd(NULL, 0);
    CU_ASSERT_FATAL(cwd != NULL);
    CU_ASSERT_FATAL(chdir(f.dir) == 0);
    rc = libxl__domain_config_parse(gc, "./sub/../vm1.cfg", &cfg);
    CU_ASSERT_FATAL(chdir(cwd) == 0);
    free(cwd);
    CU_ASSERT_EQUAL(rc, 0);
    if (!rc) CU_ASSERT_STRING_EQUAL(cfg.file, file);

    fixture_fini(&f);
}

void test_config__domain_uuid_given(void)
{
    fixture f;
    libxl__domain_config cfg;
    char *file;
    int rc;

    fixture_init(&f);
    file = write_cfg(&f, "vm.cfg",
        "name = \"vm2\"\n"
        "uuid = \"6a9b2c1e-0d3f-4e5a-8b7c-1234567890ab\"\n");
    rc = libxl__domain_config_parse(f.gc, file, &cfg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT(cfg.have_uuid);
    CU_ASSERT_STRING_EQUAL(uuid_str(f.gc, &cfg.uuid),
                           "6a9b2c1e-0d3f-4e5a-8b7c-1234567890ab");
    CU_ASSERT_EQUAL(cfg.memory_mb, 0);
    CU_ASSERT_EQUAL(cfg.num_disks, 0);
    fixture_fini(&f);
}

void test_config__domain_missing_name(void)
{
    fixture f;
    libxl__domain_config cfg;
    char *file;

    fixture_init(&f);
    file = write_cfg(&f, "noname.cfg",
        "memory = 256\n"
        "disk = [ 'vdev=xvda,target=/img/a.img' ]\n");
    CU_ASSERT_EQUAL(libxl__domain_config_parse(f.gc, file, &cfg),
                    ERROR_INVAL);
    assert_logged_about(file);
    assert_logged_about("name");
    fixture_fini(&f);
}

void test_config__domain_bad_uuid(void)
{
    fixture f;
    libxl__domain_config cfg;
    char *file;

    fixture_init(&f);
    file = write_cfg(&f, "baduuid.cfg",
        "name = \"vm\"\nuuid = \"not-a-uuid\"\n");
    CU_ASSERT_EQUAL(libxl__domain_config_parse(f.gc, file, &cfg),
                    ERROR_INVAL);
    assert_logged_about(file);
    assert_logged_about("not-a-uuid");
    fixture_fini(&f);
}

void test_config__domain_bad_files(void)
{
    fixture f;
    libxl__gc *gc;
    libxl__domain_config cfg;
    char *file;

    fixture_init(&f);
    gc = f.gc;

    file = GCSPRINTF("%s/missing.cfg", f.dir);
    CU_ASSERT_EQUAL(libxl__domain_config_parse(gc, file, &cfg), ERROR_INVAL);
    assert_logged_about(file);

    file = write_cfg(&f, "syntax.cfg", "name = \"vm\"\ndisk = [ 'a'\n");
    CU_ASSERT_EQUAL(libxl__domain_config_parse(gc, file, &cfg), ERROR_INVAL);
    assert_logged_about(file);

    /* target= must come last in an xl disk spec: here vdev is lost */
    file = write_cfg(&f, "order.cfg",
        "name = \"vm\"\ndisk = [ 'target=/img/a.img,vdev=xvda' ]\n");
    CU_ASSERT_EQUAL(libxl__domain_config_parse(gc, file, &cfg), ERROR_INVAL);
    assert_logged_about(file);

    file = write_cfg(&f, "notarget.cfg",
        "name = \"vm\"\ndisk = [ 'format=raw,vdev=xvda' ]\n");
    CU_ASSERT_EQUAL(libxl__domain_config_parse(gc, file, &cfg), ERROR_INVAL);
    assert_logged_about(file);

    file = write_cfg(&f, "badfmt.cfg",
        "name = \"vm\"\ndisk = [ 'format=bogus,vdev=xvda,target=/a' ]\n");
    CU_ASSERT_EQUAL(libxl__domain_config_parse(gc, file, &cfg), ERROR_INVAL);
    assert_logged_about(file);

    file = write_cfg(&f, "dup.cfg",
        "name = \"vm\"\n"
        "disk = [ 'vdev=xvda,target=/a', 'vdev=xvda,target=/b' ]\n");
    CU_ASSERT_EQUAL(libxl__domain_config_parse(gc, file, &cfg), ERROR_INVAL);
    assert_logged_about("xvda");

    file = write_cfg(&f, "notlist.cfg",
        "name = \"vm\"\ndisk = 'vdev=xvda,target=/a'\n");
    CU_ASSERT_EQUAL(libxl__domain_config_parse(gc, file, &cfg), ERROR_INVAL);
    assert_logged_about(file);

    file = write_cfg(&f, "mem.cfg", "name = \"vm\"\nmemory = 0\n");
    CU_ASSERT_EQUAL(libxl__domain_config_parse(gc, file, &cfg), ERROR_INVAL);
    assert_logged_about(file);

    fixture_fini(&f);
}

void test_config__domain_cdrom_without_target(void)
{
    fixture f;
    libxl__domain_config cfg;
    char *file;

    fixture_init(&f);
    file = write_cfg(&f, "cd.cfg",
        "name = \"vm\"\n"
        "disk = [ 'vdev=xvda,target=/img/a.img',\n"
        "         'vdev=hdc,devtype=cdrom,target=' ]\n");
    CU_ASSERT_EQUAL_FATAL(libxl__domain_config_parse(f.gc, file, &cfg), 0);
    CU_ASSERT_EQUAL_FATAL(cfg.num_disks, 2);
    CU_ASSERT(cfg.disks[1].is_cdrom);
    CU_ASSERT_STRING_EQUAL(cfg.disks[1].vdev, "hdc");
    fixture_fini(&f);
}

/* ---------------------------------------------------------------- */
/* uuid from name */

void test_config__uuid_from_name(void)
{
    fixture f;
    libxl_uuid a, b, c;
    const uint8_t *u;

    fixture_init(&f);
    libxl__uuid_from_name("vm1", &a);
    libxl__uuid_from_name("vm1", &b);
    libxl__uuid_from_name("vm2", &c);
    CU_ASSERT(!libxl_uuid_compare(&a, &b));
    CU_ASSERT(libxl_uuid_compare(&a, &c));

    /* SHA-1("libxl-snapshot:vm1"), first 16 bytes, version 5, RFC 4122 */
    CU_ASSERT_STRING_EQUAL(uuid_str(f.gc, &a),
                           "9b228cd6-7f39-5282-a5c0-cfac97b63e78");

    u = libxl_uuid_bytearray_const(&c);
    CU_ASSERT_EQUAL(u[6] >> 4, 5);
    CU_ASSERT_EQUAL(u[8] & 0xc0, 0x80);
    CU_ASSERT(!libxl_uuid_is_nil(&c));

    /* long names take more than one SHA-1 block */
    libxl__uuid_from_name("a-domain-name-that-is-long-enough-for-two-blocks"
                          "-of-sha1-input-xxxxxxxxxxxxxxxxxxxxxxxxxxxx", &a);
    CU_ASSERT_STRING_EQUAL(uuid_str(f.gc, &a),
                           "84708556-53a7-51a2-b876-e2ea4407f408");
    /* padding edges: 55, 56 and 64 bytes of SHA-1 input */
    {
        static const struct { int len; const char *uuid; } edge[] = {
            { 55, "1e40edda-04cf-5b77-b8f6-cf1b12fce478" },
            { 56, "7be49d85-e823-5205-9b14-bc8abcb55389" },
            { 64, "d69d8044-0f0e-574d-b391-178c2f03376b" },
        };
        size_t i;
        for (i = 0; i < sizeof(edge) / sizeof(edge[0]); i++) {
            char name[80];
            memset(name, 'x', sizeof(name));
            name[edge[i].len - strlen("libxl-snapshot:")] = 0;
            libxl__uuid_from_name(name, &a);
            CU_ASSERT_STRING_EQUAL(uuid_str(f.gc, &a), edge[i].uuid);
        }
    }
    libxl__uuid_from_name("", &b);
    u = libxl_uuid_bytearray_const(&b);
    CU_ASSERT_EQUAL(u[6] >> 4, 5);
    fixture_fini(&f);
}

/* ---------------------------------------------------------------- */
/* formats and node names */

void test_config__node_names(void)
{
    fixture f;
    libxl__gc *gc;
    libxl_disk_format fmt;

    fixture_init(&f);
    gc = f.gc;
    CU_ASSERT_STRING_EQUAL(
        libxl__disk_node_name(gc, "xvda", LIBXL_DISK_FORMAT_QCOW2),
        "xvda-qcow2");
    CU_ASSERT_STRING_EQUAL(
        libxl__disk_node_name(gc, "xvdb", LIBXL_DISK_FORMAT_RAW),
        "xvdb-raw");
    CU_ASSERT_STRING_EQUAL(
        libxl__disk_node_name(gc, "xvdc", LIBXL_DISK_FORMAT_VHD),
        "xvdc-vpc");

    CU_ASSERT_STRING_EQUAL(libxl__disk_format_qemu(LIBXL_DISK_FORMAT_QCOW),
                           "qcow");
    CU_ASSERT_STRING_EQUAL(libxl__disk_format_qemu(LIBXL_DISK_FORMAT_QED),
                           "qed");
    CU_ASSERT_PTR_NULL(libxl__disk_format_qemu(LIBXL_DISK_FORMAT_EMPTY));
    CU_ASSERT_PTR_NULL(libxl__disk_format_qemu(LIBXL_DISK_FORMAT_UNKNOWN));

    CU_ASSERT_EQUAL(libxl__disk_format_from_qemu("vpc", &fmt), 0);
    CU_ASSERT_EQUAL(fmt, LIBXL_DISK_FORMAT_VHD);
    CU_ASSERT_EQUAL(libxl__disk_format_from_qemu("qcow2", &fmt), 0);
    CU_ASSERT_EQUAL(fmt, LIBXL_DISK_FORMAT_QCOW2);
    CU_ASSERT_EQUAL(libxl__disk_format_from_qemu("raw", &fmt), 0);
    CU_ASSERT_EQUAL(fmt, LIBXL_DISK_FORMAT_RAW);
    CU_ASSERT_EQUAL(libxl__disk_format_from_qemu("vmdk", &fmt), ERROR_INVAL);
    CU_ASSERT_EQUAL(libxl__disk_format_from_qemu("", &fmt), ERROR_INVAL);
    fixture_fini(&f);
}

/* ---------------------------------------------------------------- */
/* disk specs */

void test_config__diskspec_good(void)
{
    fixture f;
    libxlsnap_disk_snapshot d;
    char *cwd;

    fixture_init(&f);
    libxlsnap_disk_snapshot_init(&d);

    CU_ASSERT_EQUAL_FATAL(libxlsnap_disk_snapshot_parse_spec(&f.ctx, "xvda", &d),
                          0);
    CU_ASSERT_STRING_EQUAL(d.vdev, "xvda");
    CU_ASSERT_EQUAL(d.type, LIBXLSNAP_DISK_SNAPSHOT_TYPE_DEFAULT);
    CU_ASSERT_PTR_NULL(d.overlay);

    CU_ASSERT_EQUAL(libxlsnap_disk_snapshot_parse_spec(&f.ctx,
                        "xvdb,snapshot=internal", &d), 0);
    CU_ASSERT_STRING_EQUAL(d.vdev, "xvdb");
    CU_ASSERT_EQUAL(d.type, LIBXLSNAP_DISK_SNAPSHOT_TYPE_INTERNAL);

    CU_ASSERT_EQUAL(libxlsnap_disk_snapshot_parse_spec(&f.ctx,
                        "xvdc,snapshot=no", &d), 0);
    CU_ASSERT_EQUAL(d.type, LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO);

    CU_ASSERT_EQUAL(libxlsnap_disk_snapshot_parse_spec(&f.ctx,
                        "xvda,snapshot=external", &d), 0);
    CU_ASSERT_EQUAL(d.type, LIBXLSNAP_DISK_SNAPSHOT_TYPE_EXTERNAL);
    CU_ASSERT_PTR_NULL(d.overlay);

    /* file= implies external */
    CU_ASSERT_EQUAL(libxlsnap_disk_snapshot_parse_spec(&f.ctx,
                        "xvda,file=/img/ov.qcow2", &d), 0);
    CU_ASSERT_EQUAL(d.type, LIBXLSNAP_DISK_SNAPSHOT_TYPE_EXTERNAL);
    CU_ASSERT_STRING_EQUAL(d.overlay, "/img/ov.qcow2");

    /* ",," is a comma; relative paths become absolute */
    cwd = getcwd(NULL, 0);
    CU_ASSERT_FATAL(cwd && chdir(f.dir) == 0);
    CU_ASSERT_EQUAL(libxlsnap_disk_snapshot_parse_spec(&f.ctx,
                        "xvde,file=a,,b.qcow2,snapshot=external", &d), 0);
    CU_ASSERT_FATAL(chdir(cwd) == 0);
    free(cwd);
    CU_ASSERT_STRING_EQUAL(d.vdev, "xvde");
    CU_ASSERT_STRING_EQUAL(d.overlay,
                           libxl__gc_sprintf(f.gc, "%s/a,b.qcow2", f.dir));

    /* a later spec without file= clears the overlay */
    CU_ASSERT_EQUAL(libxlsnap_disk_snapshot_parse_spec(&f.ctx, "xvdf", &d), 0);
    CU_ASSERT_PTR_NULL(d.overlay);
    CU_ASSERT_EQUAL(nlogs, 0);

    libxlsnap_disk_snapshot_dispose(&d);
    fixture_fini(&f);
}

void test_config__diskspec_bad(void)
{
    static const char *const bad[] = {
        "xvda,snapshot=bogus",
        "xvda,file=",
        "xvda,snapshot=internal,file=/x",
        "xvda,snapshot=no,file=/x",
        ",snapshot=no",
        "",
        "snapshot=no",
        "xvda,driver=qcow2",
        "xvda,snapshot",
        "xvda,",
        "xvda,snapshot=internal,snapshot=external",
        "xv/da",
        "xvda;rm -rf /",
    };
    fixture f;
    libxlsnap_disk_snapshot d;
    size_t i;

    fixture_init(&f);
    libxlsnap_disk_snapshot_init(&d);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        nlogs = 0;
        last_log[0] = 0;
        CU_ASSERT_EQUAL(libxlsnap_disk_snapshot_parse_spec(&f.ctx, bad[i], &d),
                        ERROR_INVAL);
        assert_logged_about("disk spec");
        assert_logged_about(bad[i]);
        /* untouched on error */
        CU_ASSERT_PTR_NULL(d.vdev);
        CU_ASSERT_PTR_NULL(d.overlay);
    }
    libxlsnap_disk_snapshot_dispose(&d);
    fixture_fini(&f);
}

/* ---------------------------------------------------------------- */
/* snapshot config */

void test_config__snapshot_cfg_xl_syntax(void)
{
    fixture f;
    libxlsnap_domain_snapshot s;
    char *file;

    fixture_init(&f);
    libxlsnap_domain_snapshot_init(&s);
    file = write_cfg(&f, "snap.cfg",
        "name = \"before-upgrade\"\n"
        "description = \"state before the upgrade\"\n"
        "memory = \"no\"\n"
        "disk = [ 'format=qcow2,vdev=hda,target=/var/lib/xen/ov.qcow2',\n"
        "         'vdev=hdc,target=null' ]\n");

    CU_ASSERT_EQUAL_FATAL(libxlsnap_domain_snapshot_config_parse(&f.ctx, file,
                                                             &s), 0);
    CU_ASSERT_STRING_EQUAL(s.name, "before-upgrade");
    CU_ASSERT_STRING_EQUAL(s.description, "state before the upgrade");
    CU_ASSERT_PTR_NULL(s.memory);
    CU_ASSERT_EQUAL_FATAL(s.num_disks, 2);
    CU_ASSERT_STRING_EQUAL(s.disks[0].vdev, "hda");
    CU_ASSERT_EQUAL(s.disks[0].type, LIBXLSNAP_DISK_SNAPSHOT_TYPE_EXTERNAL);
    CU_ASSERT_STRING_EQUAL(s.disks[0].overlay, "/var/lib/xen/ov.qcow2");
    CU_ASSERT_STRING_EQUAL(s.disks[1].vdev, "hdc");
    CU_ASSERT_EQUAL(s.disks[1].type, LIBXLSNAP_DISK_SNAPSHOT_TYPE_INTERNAL);
    CU_ASSERT_PTR_NULL(s.disks[1].overlay);
    CU_ASSERT_EQUAL(nlogs, 0);

    libxlsnap_domain_snapshot_dispose(&s);
    fixture_fini(&f);
}

void test_config__snapshot_cfg_diskspec_syntax(void)
{
    fixture f;
    libxlsnap_domain_snapshot s;
    char *file;

    fixture_init(&f);
    libxlsnap_domain_snapshot_init(&s);
    /* fields the file does not set are left as the caller had them */
    s.description = strdup("from the caller");
    file = write_cfg(&f, "snap.cfg",
        "name = \"s1\"\n"
        "memory = \"yes\"\n"
        "type = \"internal\"\n"
        "disk = [ 'xvda,snapshot=external,file=/img/a.s1.qcow2',\n"
        "         'xvdb,snapshot=no',\n"
        "         'xvdc',\n"
        "         'vdev=xvdd,target=null' ]\n");

    CU_ASSERT_EQUAL_FATAL(libxlsnap_domain_snapshot_config_parse(&f.ctx, file,
                                                             &s), 0);
    CU_ASSERT_STRING_EQUAL(s.name, "s1");
    CU_ASSERT_STRING_EQUAL(s.description, "from the caller");
    CU_ASSERT_STRING_EQUAL(s.memory, "yes");
    CU_ASSERT_EQUAL_FATAL(s.num_disks, 4);
    CU_ASSERT_STRING_EQUAL(s.disks[0].vdev, "xvda");
    CU_ASSERT_EQUAL(s.disks[0].type, LIBXLSNAP_DISK_SNAPSHOT_TYPE_EXTERNAL);
    CU_ASSERT_STRING_EQUAL(s.disks[0].overlay, "/img/a.s1.qcow2");
    CU_ASSERT_EQUAL(s.disks[1].type, LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO);
    /* type= is the default for entries that do not choose */
    CU_ASSERT_STRING_EQUAL(s.disks[2].vdev, "xvdc");
    CU_ASSERT_EQUAL(s.disks[2].type, LIBXLSNAP_DISK_SNAPSHOT_TYPE_INTERNAL);
    CU_ASSERT_EQUAL(s.disks[3].type, LIBXLSNAP_DISK_SNAPSHOT_TYPE_INTERNAL);

    /* parsing again replaces the disks; memory path made absolute */
    file = write_cfg(&f, "snap2.cfg",
        "memory = \"/var/lib/xen/s2.mem\"\n"
        "disk = [ 'xvdz' ]\n");
    CU_ASSERT_EQUAL_FATAL(libxlsnap_domain_snapshot_config_parse(&f.ctx, file,
                                                             &s), 0);
    CU_ASSERT_STRING_EQUAL(s.name, "s1");
    CU_ASSERT_STRING_EQUAL(s.memory, "/var/lib/xen/s2.mem");
    CU_ASSERT_EQUAL_FATAL(s.num_disks, 1);
    CU_ASSERT_STRING_EQUAL(s.disks[0].vdev, "xvdz");
    CU_ASSERT_EQUAL(s.disks[0].type, LIBXLSNAP_DISK_SNAPSHOT_TYPE_DEFAULT);

    libxlsnap_domain_snapshot_dispose(&s);
    fixture_fini(&f);
}

void test_config__snapshot_cfg_bad(void)
{
    static const struct {
        const char *text, *about;
    } bad[] = {
        { "name = \"a/b\"\n", "a/b" },
        { "name = \"ok\"\ntype = \"sideways\"\ndisk = [ 'xvda' ]\n",
          "sideways" },
        { "type = \"internal\"\n", "type" },
        { "memory = \"\"\n", "memory" },
        { "disk = [ 'xvda,snapshot=bogus' ]\n", "xvda,snapshot=bogus" },
        { "disk = [ 'xvda', 'xvda,snapshot=no' ]\n", "xvda" },
        { "disk = [ 'format=raw,vdev=hda,target=/img/ov.img' ]\n", "raw" },
        { "disk = [ 'target=/img/ov.qcow2,vdev=hda' ]\n", "disk" },
        { "disk = [ 'vdev=hda' ]\n", "disk" },
        { "disk = \"xvda\"\n", "disk" },
        { "name = \"x\"\ndisk = [ 'xvda'\n", "" },
    };
    fixture f;
    libxlsnap_domain_snapshot s;
    size_t i;

    fixture_init(&f);
    libxlsnap_domain_snapshot_init(&s);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *file = write_cfg(&f, "bad.cfg", bad[i].text);

        nlogs = 0;
        last_log[0] = 0;
        CU_ASSERT_EQUAL(libxlsnap_domain_snapshot_config_parse(&f.ctx, file, &s),
                        ERROR_INVAL);
        assert_logged_about(file);
        assert_logged_about(bad[i].about);
        /* untouched on error */
        CU_ASSERT_PTR_NULL(s.name);
        CU_ASSERT_EQUAL(s.num_disks, 0);
    }
    CU_ASSERT_EQUAL(libxlsnap_domain_snapshot_config_parse(&f.ctx,
                        libxl__gc_sprintf(f.gc, "%s/none.cfg", f.dir), &s),
                    ERROR_INVAL);
    assert_logged_about("none.cfg");

    libxlsnap_domain_snapshot_dispose(&s);
    fixture_fini(&f);
}

/*
 * Strict: a setting a snapshot config does not take, a value of the
 * wrong kind, a relative path.  One line naming the file, the line
 * ("file:N:") and the setting.
 */
void test_config__snapshot_cfg_strict(void)
{
    static const struct {
        const char *text, *line, *about;
    } bad[] = {
        /* memory = 1 was taken as the path "1" in the cwd */
        { "name = \"s1\"\n\nmemory = 1\n", ":3:", "memory=1" },
        { "name = \"s1\"\nmemroy = \"yes\"\n", ":2:", "'memroy'" },
        { "# a comment\nvcpus = 2\n", ":2:", "'vcpus'" },
        { "name = 42\n", ":1:", "name=42" },
        { "description = [ 'a' ]\n", ":1:", "description=" },
        { "disk = [ 'xvda' ]\ntype = 3\n", ":2:", "type=3" },
        { "disk = \"xvda\"\n", ":1:", "disk=" },
        { "name = \"s1\"; disk = [ 'xvda',\n  7 ]\n", ":2:", "disk" },
        { "memory = \"vm1.save\"\n", ":1:", "vm1.save" },
        { "name = \"s1\"\ndisk = [ 'xvda',\n"
          "         'xvdb,snapshot=external,file=ov.qcow2' ]\n",
          ":3:", "file=ov.qcow2" },
        { "disk = [ 'format=qcow2,vdev=xvdb,target=ov.qcow2' ]\n", ":1:",
          "target=ov.qcow2" },
        { "disk = [ 'xvda' ]\ndisk += [ 'xvda,snapshot=no' ]\n", ":2:",
          "xvda listed twice" },
    };
    fixture f;
    libxlsnap_domain_snapshot s;
    char *file;
    size_t i;

    fixture_init(&f);
    libxlsnap_domain_snapshot_init(&s);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        file = write_cfg(&f, "strict.cfg", bad[i].text);
        nlogs = 0;
        last_log[0] = 0;
        CU_ASSERT_EQUAL(libxlsnap_domain_snapshot_config_parse(&f.ctx, file, &s),
                        ERROR_INVAL);
        CU_ASSERT_EQUAL(nlogs, 1);
        assert_logged_about(libxl__gc_sprintf(f.gc, "%s%s", file,
                                              bad[i].line));
        assert_logged_about(bad[i].about);
        CU_ASSERT_PTR_NULL(s.name);
        CU_ASSERT_PTR_NULL(s.memory);
    }

    /* what is fine: quoted strings, comments, ';', lists over lines,
     * absolute paths */
    file = write_cfg(&f, "good.cfg",
        "# before-upgrade\n"
        "name = 's1' ; "
        "description = \"a \\\"quoted\\\" word # not a comment\"\n"
        "memory = \"/var/lib/xen/s1.save\"   # the memory image\n"
        "disk = [ 'xvda',\n"
        "         'xvdb,snapshot=external,file=/img/b.s1.qcow2', ]\n");
    nlogs = 0;
    CU_ASSERT_EQUAL_FATAL(libxlsnap_domain_snapshot_config_parse(&f.ctx, file,
                                                             &s), 0);
    CU_ASSERT_EQUAL(nlogs, 0);
    CU_ASSERT_STRING_EQUAL(s.memory, "/var/lib/xen/s1.save");
    CU_ASSERT_EQUAL(s.num_disks, 2);

    libxlsnap_domain_snapshot_dispose(&s);
    fixture_fini(&f);
}

/* xl snapshot-create FILE X: a snapshot config, or a domain config? */
void test_config__snapshot_cfg_or_domain(void)
{
    static const struct {
        const char *text;
        bool snapshot;
    } files[] = {
        /* the tests' and the demo's domain configs */
        { "name = \"vm1\"\nmemory = 64\n"
          "disk = [ 'format=qcow2,vdev=xvda,access=rw,target=/i/a.qcow2' ]\n",
          false },
        { "name = \"vm1\"\nmemory = 64\ndisk = [ 'phy:/dev/vg0/lv,xvda,w' ]\n",
          false },
        { "name = \"vm1\"\nvcpus = 2\n", false },
        { "name = \"vm1\"\ntype = \"pv\"\nkernel = \"/k\"\n", false },
        /* snapshot configs: the example, memory = 1 (a mistake, told
         * as a snapshot config's), disk specs, description */
        { "name = \"before-upgrade\"\ndescription = \"x\"\n"
          "disk = [ 'vdev=xvda,target=null',\n"
          "         'format=qcow2,vdev=xvdb,target=/i/b.bu.qcow2' ]\n", true },
        { "name = \"s1\"\nmemory = 1\n", true },
        { "memory = 1\n"
          "disk = [ 'xvda,snapshot=internal', 'vdev=xvdb,target=null' ]\n",
          true },
        { "name = \"s1\"\nmemory = \"yes\"\n"
          "disk = [ 'format=qcow2,vdev=xvdb,target=/i/b.s1.qcow2' ]\n", true },
        { "description = \"x\"\nmemroy = 1\n", true },
        /* a setting neither takes: a snapshot config's mistake */
        { "name = \"x1\"\nbogus = \"y\"\n", true },
        { "name = \"vm1\"\nmemory = 64\nbuilder = \"hvm\"\n", false },
        { "name = \"vm1\"\nvif = [ 'bridge=xenbr0' ]\n", false },
        { "type = \"internal\"\nvcpus = 1\ndisk = [ 'xvda' ]\n", true },
        { "", true },
        /* not xl syntax at all */
        { "name = \n", false },
    };
    fixture f;
    char *file;
    size_t i;

    fixture_init(&f);
    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        file = write_cfg(&f, "which.cfg", files[i].text);
        nlogs = 0;
        CU_ASSERT_EQUAL(libxlsnap_domain_snapshot_config_is_snapshot(&f.ctx,
                                                                 file),
                        files[i].snapshot);
        if (libxlsnap_domain_snapshot_config_is_snapshot(&f.ctx, file) !=
            files[i].snapshot)
            fprintf(stderr, "    taken wrongly: %s\n", files[i].text);
        CU_ASSERT_EQUAL(nlogs, 0);
    }
    CU_ASSERT_FALSE(libxlsnap_domain_snapshot_config_is_snapshot(&f.ctx,
        libxl__gc_sprintf(f.gc, "%s/none.cfg", f.dir)));
    fixture_fini(&f);
}

/* ---------------------------------------------------------------- */
/* settings: environment > domain config > host file > default */

/* A domain config setting snapshot_max_chain (NULL: none), parsed. */
static void setting_domain(fixture *f, const char *extra,
                           libxl__domain_config *dc)
{
    libxl__gc *gc = f->gc;
    char *file = write_cfg(f, extra ? "vm1.cfg" : "plain.cfg",
        GCSPRINTF("name = \"vm1\"\nmemory = 64\n%s"
                  "disk = [ '/img/vm1.qcow2,qcow2,xvda,w' ]\n",
                  extra ? extra : ""));

    CU_ASSERT_EQUAL_FATAL(libxl__domain_config_parse(gc, file, dc), 0);
}

/* max_chain as dc sets it (NULL: none) is want, from where from says */
static void expect_max_chain(fixture *f, const libxl__domain_config *dc,
                             long want, const char *from_want)
{
    const char *from = NULL;
    long v = -1;

    CU_ASSERT_EQUAL(libxl__snapshot_setting_from(f->gc, dc, "max_chain",
                        16, 2, 1000, &v, &from), 0);
    CU_ASSERT_EQUAL(v, want);
    CU_ASSERT_PTR_NOT_NULL(from && strstr(from, from_want));
}

void test_config__setting_order(void)
{
    fixture f;
    libxl__domain_config dc, plain;
    long v;

    fixture_init(&f);
    f.ctx.config_dir = f.dir;
    unsetenv("XL_SNAPSHOT_MAX_CHAIN");

    /* nothing set: the built-in default (Config.mk's) */
    setting_domain(&f, NULL, &plain);
    CU_ASSERT_EQUAL(libxl__snapshot_setting(f.gc, &plain, "max_chain",
                        LIBXL_SNAPSHOT_MAX_CHAIN, 2, 1000, &v), 0);
    CU_ASSERT_EQUAL(v, 16);
    CU_ASSERT_EQUAL(libxl__snapshot_setting(f.gc, NULL, "space_threshold",
                        LIBXL_SNAPSHOT_SPACE_THRESHOLD, 1, 100, &v), 0);
    CU_ASSERT_EQUAL(v, 90);

    /* the host file */
    write_cfg(&f, "xl-snapshot.conf",
              "# host\nspace_threshold = 80\n\nmax_chain = 12\n");
    expect_max_chain(&f, &plain, 12, "xl-snapshot.conf:4");
    CU_ASSERT_EQUAL(libxl__snapshot_setting(f.gc, NULL, "space_threshold",
                        90, 1, 100, &v), 0);
    CU_ASSERT_EQUAL(v, 80);

    /* the domain config beats the host file; another domain's does not */
    setting_domain(&f, "snapshot_max_chain = 6\n", &dc);
    expect_max_chain(&f, &dc, 6, "vm1.cfg:3");
    expect_max_chain(&f, NULL, 12, "xl-snapshot.conf:4");
    /* a quoted number is a number, as xl takes it */
    setting_domain(&f, "snapshot_max_chain = \"7\"\n", &dc);
    expect_max_chain(&f, &dc, 7, "vm1.cfg:3");

    /* the environment beats both; empty is unset */
    setenv("XL_SNAPSHOT_MAX_CHAIN", "4", 1);
    expect_max_chain(&f, &dc, 4, "XL_SNAPSHOT_MAX_CHAIN in the environment");
    setenv("XL_SNAPSHOT_MAX_CHAIN", "", 1);
    expect_max_chain(&f, &dc, 7, "vm1.cfg:3");
    unsetenv("XL_SNAPSHOT_MAX_CHAIN");

    /* XL_SNAPSHOT_CONFIG_DIR (the ctx's config dir) moves the host file */
    f.ctx.config_dir = "/nonexistent-libxl-snapshot";
    expect_max_chain(&f, &plain, 16, "built-in default");
    CU_ASSERT_EQUAL(nlogs, 0);
    fixture_fini(&f);
}

void test_config__setting_bad(void)
{
    static const struct {
        const char *env, *domain, *host;
        const char *said[3];          /* each in the one line */
    } cases[] = {
        { "abc", NULL, NULL,
          { "environment", "XL_SNAPSHOT_MAX_CHAIN=abc", "2 to 1000" } },
        { "1", NULL, NULL, { "XL_SNAPSHOT_MAX_CHAIN=1", "2 to 1000", "" } },
        { "1001", NULL, NULL, { "XL_SNAPSHOT_MAX_CHAIN=1001", "", "" } },
        { "12x", NULL, NULL, { "XL_SNAPSHOT_MAX_CHAIN=12x", "", "" } },
        { " 12", NULL, NULL, { "XL_SNAPSHOT_MAX_CHAIN= 12", "", "" } },
        { "+12", NULL, NULL, { "XL_SNAPSHOT_MAX_CHAIN=+12", "", "" } },
        { "99999999999999999999999", NULL, NULL,
          { "XL_SNAPSHOT_MAX_CHAIN=9999", "", "" } },
        { NULL, "snapshot_max_chain = 0\n", NULL,
          { "vm1.cfg:3", "snapshot_max_chain=0", "2 to 1000" } },
        { NULL, "snapshot_max_chain = \"1.5\"\n", NULL,
          { "vm1.cfg:3", "snapshot_max_chain=1.5", "" } },
        { NULL, "snapshot_max_chain = [ 3 ]\n", NULL,
          { "vm1.cfg:3", "snapshot_max_chain=", "not a list" } },
        { NULL, NULL, "max_chain = \"many\"\n",
          { "xl-snapshot.conf:1", "max_chain=many", "" } },
        { NULL, NULL, "\n\nmax_chain = -3\n",
          { "xl-snapshot.conf:3", "-3", "" } },
        { NULL, NULL, "max_chain = = 3\n", { "xl-snapshot.conf", "", "" } },
    };
    fixture f;
    libxl__domain_config dc;
    size_t i;
    int k;
    long v;

    fixture_init(&f);
    f.ctx.config_dir = f.dir;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsetenv("XL_SNAPSHOT_MAX_CHAIN");
        if (cases[i].env) setenv("XL_SNAPSHOT_MAX_CHAIN", cases[i].env, 1);
        setting_domain(&f, cases[i].domain, &dc);
        if (cases[i].host)
            write_cfg(&f, "xl-snapshot.conf", cases[i].host);
        else
            unlink(libxl__gc_sprintf(f.gc, "%s/xl-snapshot.conf", f.dir));
        nlogs = 0;
        v = -42;
        CU_ASSERT_EQUAL(libxl__snapshot_setting(f.gc, &dc, "max_chain",
                            16, 2, 1000, &v), ERROR_INVAL);
        CU_ASSERT_EQUAL(v, -42);
        CU_ASSERT_EQUAL(nlogs, 1);
        for (k = 0; k < 3; k++)
            assert_logged_about(cases[i].said[k]);
    }
    unsetenv("XL_SNAPSHOT_MAX_CHAIN");
    /* a host file that cannot be read is refused, not skipped */
    write_cfg(&f, "xl-snapshot.conf", "max_chain = 5\n");
    if (geteuid() != 0) {
        chmod(libxl__gc_sprintf(f.gc, "%s/xl-snapshot.conf", f.dir), 0);
        nlogs = 0;
        CU_ASSERT_EQUAL(libxl__snapshot_setting(f.gc, NULL, "max_chain",
                            16, 2, 1000, &v), ERROR_INVAL);
        assert_logged_about("xl-snapshot.conf");
    }
    fixture_fini(&f);
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
