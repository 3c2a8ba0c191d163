/*
 * test_lvm.c - LVM names, LVM's error lines, and the LVM steps that
 * must not trust the origin (issue 14: defects 8 and 10)
 *
 * The volume checks run against a fake `lvm` (a shell script written
 * here, $XL_SNAPSHOT_LVM) that keeps each volume as a file
 * <state>/<vg>/<lv> holding its lv_attr, logs its commands, and fails
 * a command <cmd> with the text of <state>/fail-<cmd> on stderr.
 * The error lines are LVM 2.03.16's own, recorded in the Xen test
 * host's dom0 (tests/xen, scenarios 9t and 9n).
 */
#include <CUnit/CUnit.h>

#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

static const char fake_lvm[] =
    "#!/bin/sh\n"
    "S=$FAKE_LVM_STATE\n"
    "cmd=$1; shift\n"
    "echo \"$cmd $*\" >>\"$S/log\"\n"
    "if [ -f \"$S/fail-$cmd\" ]; then cat \"$S/fail-$cmd\" >&2; exit 5; fi\n"
    "for a in \"$@\"; do last=$a; done\n"
    "line() { echo \"  $1|$2|$(cat \"$S/$1/$2\")|8388608|||\"; }\n"
    "case $cmd in\n"
    "lvs)\n"
    "    case $last in\n"
    "    */*) [ -f \"$S/$last\" ] || { echo \"  Failed to find logical volume \\\"$last\\\"\" >&2; exit 5; }\n"
    "         line \"${last%%/*}\" \"${last#*/}\" ;;\n"
    "    *) [ -d \"$S/$last\" ] || { echo \"  Volume group \\\"$last\\\" not found\" >&2;\n"
    "                             echo \"  Cannot process volume group $last\" >&2; exit 5; }\n"
    "       for f in \"$S/$last\"/*; do [ -f \"$f\" ] && line \"$last\" \"${f##*/}\"; done ;;\n"
    "    esac ;;\n"
    "lvrename) mv \"$S/$1/$2\" \"$S/$1/$3\" ;;\n"
    "lvremove) rm \"$S/$last\" ;;\n"
    "lvcreate) while [ \"$1\" != -n ]; do shift; done\n"
    "    echo Vwi---tz-k >\"$S/${last%%/*}/$2\" ;;\n"
    "esac\n";

typedef struct {
    char *base, *state;
    libxlsnap_ctx *ctx;
} fixture;

static void setup(fixture *f)
{
    char *script;

    memset(f, 0, sizeof(*f));
    f->base = unit_tmpdir("lvm");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->base);
    CU_ASSERT_FATAL(asprintf(&f->state, "%s/lvm", f->base) > 0);
    CU_ASSERT_FATAL(asprintf(&script, "%s/fake-lvm", f->base) > 0);
    CU_ASSERT_EQUAL_FATAL(mkdir(f->state, 0755), 0);
    CU_ASSERT_EQUAL_FATAL(unit_write_file(script, fake_lvm), 0);
    CU_ASSERT_EQUAL_FATAL(chmod(script, 0755), 0);
    setenv("FAKE_LVM_STATE", f->state, 1);
    setenv("XL_SNAPSHOT_LVM", script, 1);
    free(script);
    f->ctx = unit_ctx(f->base);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->ctx);
}

static void teardown(fixture *f)
{
    unit_ctx_free(f->ctx);
    unsetenv("XL_SNAPSHOT_LVM");
    unsetenv("FAKE_LVM_STATE");
    unit_rm_rf(f->base);
    free(f->base);
    free(f->state);
}

/* a volume (attr) in the fake's state; attr NULL: the VG only */
static void volume(fixture *f, const char *vg, const char *lv,
                   const char *attr)
{
    char *p;

    CU_ASSERT_FATAL(asprintf(&p, "%s/%s", f->state, vg) > 0);
    mkdir(p, 0755);
    free(p);
    if (!attr) return;
    CU_ASSERT_FATAL(asprintf(&p, "%s/%s/%s", f->state, vg, lv) > 0);
    CU_ASSERT_EQUAL(unit_write_file(p, attr), 0);
    free(p);
}

static bool has_volume(fixture *f, const char *vg, const char *lv)
{
    char *p;
    bool r;

    if (asprintf(&p, "%s/%s/%s", f->state, vg, lv) < 0) return false;
    r = access(p, F_OK) == 0;
    free(p);
    return r;
}

static void fail_next(fixture *f, const char *cmd, const char *text)
{
    char *p;

    CU_ASSERT_FATAL(asprintf(&p, "%s/fail-%s", f->state, cmd) > 0);
    CU_ASSERT_EQUAL(unit_write_file(p, text), 0);
    free(p);
}

static void disk(libxlsnap_disk_snapshot *ds, const char *file, const char *tag)
{
    libxlsnap_disk_snapshot_init(ds);
    ds->vdev = (char *)"xvda";
    ds->type = LIBXLSNAP_DISK_SNAPSHOT_TYPE_LVM;
    ds->file = (char *)file;
    ds->tag = (char *)tag;
}

/* ---------------------------------------------------------------- names */

static char *repeat(libxl__gc *gc, char c, int n)
{
    char *s = libxl__gc_zalloc(gc, n + 1);
    memset(s, c, n);
    return s;
}

void test_lvm__names_lvm_would_refuse(void)
{
    libxlsnap_ctx ctx;
    libxl__gc gc[1];
    const char *why;

    memset(&ctx, 0, sizeof(ctx));
    LIBXL_INIT_GC(gc[0], &ctx);
    CU_ASSERT_PTR_NULL(libxl__lvm_name_problem(gc, "vg0", "lv0-s1", "cow"));
    CU_ASSERT_PTR_NULL(libxl__lvm_name_problem(gc, "vg0", "a+b.c_d-e", NULL));
    why = libxl__lvm_name_problem(gc, "vg0", "lv0-x_tdata", NULL);
    CU_ASSERT(why && strstr(why, "\"_tdata\"") && strstr(why, "reserved"));
    why = libxl__lvm_name_problem(gc, "vg0", "lv0-x_rimage_1", NULL);
    CU_ASSERT(why && strstr(why, "\"_rimage\""));
    why = libxl__lvm_name_problem(gc, "vg0", "lv0-_pmspare", NULL);
    CU_ASSERT(why && strstr(why, "\"_pmspare\""));
    why = libxl__lvm_name_problem(gc, "vg0", "snapshot1", NULL);
    CU_ASSERT(why && strstr(why, "starting \"snapshot\""));
    why = libxl__lvm_name_problem(gc, "vg0", "pvmove0", NULL);
    CU_ASSERT(why && strstr(why, "starting \"pvmove\""));
    CU_ASSERT_PTR_NOT_NULL(libxl__lvm_name_problem(gc, "vg0", ".", NULL));
    CU_ASSERT_PTR_NOT_NULL(libxl__lvm_name_problem(gc, "vg0", "..", NULL));
    CU_ASSERT_PTR_NOT_NULL(libxl__lvm_name_problem(gc, "vg0", "-x", NULL));
    CU_ASSERT_PTR_NOT_NULL(libxl__lvm_name_problem(gc, "vg0", "a b", NULL));
    CU_ASSERT_PTR_NOT_NULL(libxl__lvm_name_problem(gc, "vg0", "", NULL));
    /* 128 characters: too long as a name, whatever the VG */
    why = libxl__lvm_name_problem(gc, "v", repeat(gc, 'n', 128), NULL);
    CU_ASSERT(why && strstr(why, "at most 127"));
    /* the case: vg0-lv0--<118 n>-cow, over the dm limit */
    why = libxl__lvm_name_problem(gc, "vg0", GCSPRINTF("lv0-%s",
                                  repeat(gc, 'n', 118)), "cow");
    CU_ASSERT(why && strstr(why, "too long") && strstr(why, "-cow"));
    /* dm name vg0-lv0--<n> is 126 at most (LVM: "length 128 is not
     * supported" for 127 and its NUL), each '-' counted twice */
    CU_ASSERT_PTR_NULL(libxl__lvm_name_problem(gc, "vg0",
                       GCSPRINTF("lv0-%s", repeat(gc, 'n', 117)), NULL));
    CU_ASSERT_PTR_NOT_NULL(libxl__lvm_name_problem(gc, "vg0",
                       GCSPRINTF("lv0-%s", repeat(gc, 'n', 118)), NULL));
    CU_ASSERT_PTR_NOT_NULL(libxl__lvm_name_problem(gc, "vg-0",
                       GCSPRINTF("lv0-%s", repeat(gc, 'n', 117)), NULL));
    CU_ASSERT_PTR_NULL(libxl__lvm_name_problem(gc, "vg0",
                       GCSPRINTF("lv0-%s", repeat(gc, 'n', 113)), "cow"));
    CU_ASSERT_PTR_NOT_NULL(libxl__lvm_name_problem(gc, "vg0",
                       GCSPRINTF("lv0-%s", repeat(gc, 'n', 114)), "cow"));
    libxl__gc_free_all(gc);
}

void test_lvm__snapshot_names(void)
{
    libxlsnap_ctx ctx;
    libxl__gc gc[1];
    libxl__lvm_volume thick = { .vg = (char *)"vg0", .lv = (char *)"lv0" };
    libxl__lvm_volume thin = { .vg = (char *)"vg0", .lv = (char *)"thin1",
                               .thin = true };
    const char *why, *n;

    memset(&ctx, 0, sizeof(ctx));
    LIBXL_INIT_GC(gc[0], &ctx);
    /* not shortened any more: a long one is refused, not truncated */
    n = libxl__lvm_snapshot_lv(gc, "lv0", repeat(gc, 'n', 130));
    CU_ASSERT_EQUAL(strlen(n), 134);
    CU_ASSERT_STRING_EQUAL(libxl__lvm_snapshot_lv(gc, "lv0", "a b/c"),
                           "lv0-a_b_c");
    CU_ASSERT_PTR_NULL(libxl__lvm_snapshot_name_problem(gc, &thick, "lv0-s1"));
    CU_ASSERT_PTR_NULL(libxl__lvm_snapshot_name_problem(gc, &thin, "thin1-s1"));
    why = libxl__lvm_snapshot_name_problem(gc, &thick,
              libxl__lvm_snapshot_lv(gc, "lv0", repeat(gc, 'n', 118)));
    CU_ASSERT(why && strstr(why, "snapshot volume vg0/lv0-nnn") &&
              strstr(why, "too long"));
    why = libxl__lvm_snapshot_name_problem(gc, &thin, "thin1-x_tdata");
    CU_ASSERT(why && strstr(why, "reserved"));
    /* a thin origin is renamed <lv>.reverting during a revert */
    thin.lv = repeat(gc, 't', 115);
    CU_ASSERT_PTR_NULL(libxl__lvm_name_problem(gc, "vg0", thin.lv, NULL));
    why = libxl__lvm_snapshot_name_problem(gc, &thin, "x");
    CU_ASSERT(why && strstr(why, "origin vg0/ttt"));
    libxl__gc_free_all(gc);
}

/* ---------------------------------------------------------- error lines */

void test_lvm__error_line(void)
{
    libxlsnap_ctx ctx;
    libxl__gc gc[1];
    const char *l;

    memset(&ctx, 0, sizeof(ctx));
    LIBXL_INIT_GC(gc[0], &ctx);
    /* lvcreate -s -n lvk-x_tdata: the cause, not the help hint */
    l = libxl__tool_error_line(gc,
        "  Names including \"_tdata\" are reserved. Please choose a "
        "different LV name.\n"
        "  Run `lvcreate --help' for more information.\n");
    CU_ASSERT_STRING_EQUAL(l, "Names including \"_tdata\" are reserved. "
                           "Please choose a different LV name.");
    /* lvcreate -s -n <lv>-<118 n>: the error, not the warnings */
    l = libxl__tool_error_line(gc,
        "  WARNING: Sum of all thin volume sizes (128.00 MiB) exceeds the "
        "size of thin pools and the size of whole volume group (124.00 "
        "MiB).\n"
        "  Internal error: LV name \"vg9/lvk-nnnn\" length 128 is not "
        "supported.\n"
        "  WARNING: This metadata update is NOT backed up.\n");
    CU_ASSERT_STRING_EQUAL(l, "Internal error: LV name \"vg9/lvk-nnnn\" "
                           "length 128 is not supported.");
    /* the thin revert's lvcreate with the pool full */
    l = libxl__tool_error_line(gc,
        "  WARNING: Sum of all thin volume sizes (64.00 MiB) exceeds the "
        "size of thin pool vg9/tpool (8.00 MiB).\n"
        "  Cannot create new thin volume, free space in thin pool "
        "vg9/tpool reached threshold.\n");
    CU_ASSERT_STRING_EQUAL(l, "Cannot create new thin volume, free space "
                           "in thin pool vg9/tpool reached threshold.");
    /* the first failure is the cause, the rest its consequences */
    l = libxl__tool_error_line(gc,
        "  device-mapper: create ioctl on vg0-lv0--s-cow failed: Invalid "
        "argument\n"
        "  Failed to lock logical volume vg0/lv0.\n"
        "  Aborting. Manual intervention required.\n"
        "  WARNING: This metadata update is NOT backed up.\n");
    CU_ASSERT_PTR_NOT_NULL(strstr(l, "create ioctl"));
    /* no failure word: the last line that is not noise */
    l = libxl__tool_error_line(gc, "  Logical volume vg9/thinx-t3 in use.\n"
                               "  WARNING: x\n");
    CU_ASSERT_STRING_EQUAL(l, "Logical volume vg9/thinx-t3 in use.");
    /* "not" as a word only ("note" and "annotate" say nothing) */
    l = libxl__tool_error_line(gc, "a note\nthe last\n");
    CU_ASSERT_STRING_EQUAL(l, "the last");
    l = libxl__tool_error_line(gc, "  Volume group \"vgx\" not found\n"
                               "  Cannot process volume group vgx\n");
    CU_ASSERT_STRING_EQUAL(l, "Volume group \"vgx\" not found");
    /* one line (qemu-img's): as it was */
    l = libxl__tool_error_line(gc, "qemu-img: Could not open 'x': No such "
                               "file or directory\n");
    CU_ASSERT_STRING_EQUAL(l, "qemu-img: Could not open 'x': No such file "
                           "or directory");
    /* only noise: still something */
    l = libxl__tool_error_line(gc, "  WARNING: only this\n");
    CU_ASSERT_STRING_EQUAL(l, "WARNING: only this");
    CU_ASSERT_PTR_NULL(libxl__tool_error_line(gc, "\n \n"));
    CU_ASSERT_PTR_NULL(libxl__tool_error_line(gc, NULL));
    libxl__gc_free_all(gc);
}

/* ------------------------------------------- volumes, whatever the origin */

/* lvs decides whether a snapshot volume is there, not the origin */
void test_lvm__lookup_asks_lvs(void)
{
    fixture f;
    libxlsnap_disk_snapshot ds;

    setup(&f);
    {
        GC_INIT(f.ctx);
        /* the origin renamed away (no /dev/vg9/thinx): the volume is
         * still there */
        volume(&f, "vg9", "thinx.reverting", "Vwi-a-tz--");
        volume(&f, "vg9", "thinx-t1", "Vwi---tz-k");
        disk(&ds, "/dev/vg9/thinx", "thinx-t1");
        CU_ASSERT_EQUAL(libxl__lvm_snapshot_lookup(gc, &ds), 0);
        CU_ASSERT(libxl__lvm_snapshot_exists(gc, &ds));
        disk(&ds, "/dev/vg9/thinx", "thinx-t2");
        CU_ASSERT_EQUAL(libxl__lvm_snapshot_lookup(gc, &ds), ERROR_NOTFOUND);
        /* no such VG: gone */
        disk(&ds, "/dev/vgx/thinx", "thinx-t1");
        CU_ASSERT_EQUAL(libxl__lvm_snapshot_lookup(gc, &ds), ERROR_NOTFOUND);
        /* lvs failing: never "gone" */
        fail_next(&f, "lvs", "  Locking failed: Permission denied\n");
        disk(&ds, "/dev/vg9/thinx", "thinx-t1");
        CU_ASSERT_EQUAL(libxl__lvm_snapshot_lookup(gc, &ds), ERROR_FAIL);
        GC_FREE;
    }
    teardown(&f);
}

/* lvremove by VG/LV, the origin gone */
void test_lvm__remove_without_origin(void)
{
    fixture f;
    libxlsnap_disk_snapshot ds;

    setup(&f);
    {
        GC_INIT(f.ctx);
        volume(&f, "vg9", "thinx-t2", "Vwi---tz-k");
        disk(&ds, "/dev/vg9/thinx", "thinx-t2");
        CU_ASSERT_EQUAL(libxl__lvm_snapshot_remove_sync(gc, &ds), 0);
        CU_ASSERT(!has_volume(&f, "vg9", "thinx-t2"));
        GC_FREE;
    }
    teardown(&f);
}

/* a thin revert that failed at its lvcreate: the origin renamed back */
void test_lvm__undo_thin_revert(void)
{
    fixture f;

    setup(&f);
    {
        GC_INIT(f.ctx);
        volume(&f, "vg9", "thinx.reverting", "Vwi-a-tz--");
        volume(&f, "vg9", "thinx-t1", "Vwi---tz-k");
        CU_ASSERT_EQUAL(libxl__lvm_revert_undo(gc, "/dev/vg9/thinx",
                                               "thinx-t1"), 0);
        CU_ASSERT(has_volume(&f, "vg9", "thinx"));
        CU_ASSERT(!has_volume(&f, "vg9", "thinx.reverting"));
        CU_ASSERT(has_volume(&f, "vg9", "thinx-t1"));
        /* nothing done (the rename itself failed): nothing to undo */
        CU_ASSERT_EQUAL(libxl__lvm_revert_undo(gc, "/dev/vg9/thinx",
                                               "thinx-t1"), 0);
        CU_ASSERT(has_volume(&f, "vg9", "thinx"));
        GC_FREE;
    }
    teardown(&f);
}

/* failed after the lvcreate: the new origin removed, the old one back */
void test_lvm__undo_thin_revert_after_lvcreate(void)
{
    fixture f;

    setup(&f);
    {
        GC_INIT(f.ctx);
        volume(&f, "vg9", "thinx.reverting", "Vwi-a-tz--");
        volume(&f, "vg9", "thinx", "Vwi---tz-k");
        volume(&f, "vg9", "thinx-t1", "Vwi---tz-k");
        CU_ASSERT_EQUAL(libxl__lvm_revert_undo(gc, "/dev/vg9/thinx",
                                               "thinx-t1"), 0);
        CU_ASSERT(has_volume(&f, "vg9", "thinx"));
        CU_ASSERT(!has_volume(&f, "vg9", "thinx.reverting"));
        GC_FREE;
    }
    teardown(&f);
}

/* what cannot be undone is said so (the journal then finishes it) */
void test_lvm__undo_impossible(void)
{
    fixture f;

    setup(&f);
    {
        GC_INIT(f.ctx);
        volume(&f, "vg9", "thinx.reverting", "Vwi-a-tz--");
        volume(&f, "vg9", "thinx-t1", "Vwi---tz-k");
        fail_next(&f, "lvrename", "  Locking failed\n");
        CU_ASSERT_NOT_EQUAL(libxl__lvm_revert_undo(gc, "/dev/vg9/thinx",
                                                   "thinx-t1"), 0);
        CU_ASSERT(has_volume(&f, "vg9", "thinx.reverting"));
        /* thick: the snapshot volume is there, not merging: untouched */
        volume(&f, "vg0", "lv0", "owi-a-s---");
        volume(&f, "vg0", "lv0-l1", "swi-a-s---");
        CU_ASSERT_EQUAL(libxl__lvm_revert_undo(gc, "/dev/vg0/lv0",
                                               "lv0-l1"), 0);
        /* merging, or consumed by the merge: cannot be undone */
        volume(&f, "vg0", "lv0-l1", "Swi-a-s---");
        CU_ASSERT_NOT_EQUAL(libxl__lvm_revert_undo(gc, "/dev/vg0/lv0",
                                                   "lv0-l1"), 0);
        volume(&f, "vg0", "lv0-l2", NULL);
        CU_ASSERT_NOT_EQUAL(libxl__lvm_revert_undo(gc, "/dev/vg0/lv0",
                                                   "lv0-l2"), 0);
        GC_FREE;
    }
    teardown(&f);
}

/* ------------------------------------- a failing tool's logged reason */

static char tool_log[4096];

static void tool_vmessage(xentoollog_logger *lg, xentoollog_level level,
                          int errnoval, const char *context,
                          const char *format, va_list al)
{
    if (level >= XTL_ERROR) vsnprintf(tool_log, sizeof(tool_log), format, al);
}

static void tool_destroy(xentoollog_logger *lg)
{
}

static xentoollog_logger tool_logger = {
    .vmessage = tool_vmessage,
    .destroy = tool_destroy,
};

/* what a failing command logs: LVM's cause, not its last line */
void test_lvm__failure_logs_the_cause(void)
{
    libxlsnap_ctx *ctx = NULL;
    char *base = unit_tmpdir("lvmlog");
    const char *const reserved[] = { "sh", "-c",
        "echo '  Names including \"_tdata\" are reserved. Please choose a "
        "different LV name.' >&2; "
        "echo \"  Run \\`lvcreate --help' for more information.\" >&2; "
        "exit 3", NULL };
    const char *const warning[] = { "sh", "-c",
        "echo '  device-mapper: create ioctl on vg0-lv0--s-cow failed: "
        "Invalid argument' >&2; "
        "echo '  WARNING: This metadata update is NOT backed up.' >&2; "
        "exit 5", NULL };

    CU_ASSERT_PTR_NOT_NULL_FATAL(base);
    setenv("XL_SNAPSHOT_STATE_DIR", base, 1);
    setenv("XL_SNAPSHOT_RUN_DIR", base, 1);
    CU_ASSERT_EQUAL_FATAL(libxlsnap_ctx_alloc(&ctx,
                              LIBXLSNAP_VERSION, 0, &tool_logger,
                              NULL), 0);
    {
        GC_INIT(ctx);
        tool_log[0] = 0;
        CU_ASSERT_NOT_EQUAL(libxl__exec_sync(gc, reserved, 10000, NULL,
                                             NULL), 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(tool_log, "\"_tdata\" are reserved"));
        CU_ASSERT_PTR_NULL(strstr(tool_log, "--help"));
        tool_log[0] = 0;
        CU_ASSERT_NOT_EQUAL(libxl__exec_sync(gc, warning, 10000, NULL,
                                             NULL), 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(tool_log, "Invalid argument"));
        CU_ASSERT_PTR_NULL(strstr(tool_log, "NOT backed up"));
        GC_FREE;
    }
    libxlsnap_ctx_free(ctx);
    unit_rm_rf(base);
    free(base);
}
