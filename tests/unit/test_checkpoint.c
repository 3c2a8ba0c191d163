/*
 * test_checkpoint.c - checkpoint records <-> libxl-json, their store
 * names, the bitmap unions ("changed since X"), the bitmap checks, and
 * that snapshot loading never takes a checkpoint record for its own
 *
 * The gc has no ctx (LOG is then silent): pure functions, and the
 * directory store in a temporary state dir.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE                   /* nftw */
#endif
#include <CUnit/CUnit.h>

#include <ftw.h>
#include <unistd.h>

#include "libxl_snapshot_internal.h"

static const char *const dom_uuid = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f1";

static void one_disk(libxlsnap_checkpoint *cp, const char *vdev,
                     const char *image)
{
    libxlsnap_checkpoint_disk *d;

    cp->disks = realloc(cp->disks, (cp->num_disks + 1) * sizeof(*d));
    d = &cp->disks[cp->num_disks++];
    memset(d, 0, sizeof(*d));
    d->vdev = strdup(vdev);
    d->bitmap = strdup(cp->name);
    d->image = image ? strdup(image) : NULL;
    d->format = LIBXL_DISK_FORMAT_QCOW2;
}

static void full_record(libxlsnap_checkpoint *cp)
{
    libxlsnap_checkpoint_init(cp);
    cp->name = strdup("nightly-2");
    cp->description = strdup("a \"quoted\" one\nwith a newline");
    cp->creation_time = 1796317407;
    cp->creation_nsec = 52000054;
    cp->parent = strdup("nightly-1");
    cp->num_merged = 2;
    cp->merged = calloc(2, sizeof(*cp->merged));
    cp->merged[0] = strdup("gone-a");
    cp->merged[1] = strdup("gone-b");
    cp->snapshot = strdup("s1");
    cp->domain_name = strdup("vm1");
    CU_ASSERT_EQUAL_FATAL(libxl_uuid_from_string(&cp->domain_uuid,
                                                 dom_uuid), 0);
    one_disk(cp, "xvda", "/abs/a.qcow2");
    one_disk(cp, "xvdb", "/abs/b.s1.qcow2");
}

static void assert_str_eq(const char *a, const char *b)
{
    if (!a || !b) CU_ASSERT_PTR_EQUAL(a, b)
    else CU_ASSERT_STRING_EQUAL(a, b);
}

void test_checkpoint__record_roundtrip(void)
{
    GC_INIT(NULL);
    libxlsnap_checkpoint cp, back;
    const char *why = NULL, *text;
    yajl_val v;
    int i;

    full_record(&cp);
    text = libxl__checkpoint_to_text(gc, &cp);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    v = libxl__json_parse(gc, text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL_FATAL(libxl__checkpoint_from_tree(gc, NOGC, v, &back,
                                                      &why), 0);
    assert_str_eq(back.name, cp.name);
    assert_str_eq(back.description, cp.description);
    CU_ASSERT_EQUAL(back.creation_time, cp.creation_time);
    CU_ASSERT_EQUAL(back.creation_nsec, cp.creation_nsec);
    assert_str_eq(back.parent, cp.parent);
    CU_ASSERT_EQUAL_FATAL(back.num_merged, 2);
    assert_str_eq(back.merged[1], "gone-b");
    assert_str_eq(back.snapshot, "s1");
    assert_str_eq(back.domain_name, "vm1");
    CU_ASSERT(!libxl_uuid_compare(&back.domain_uuid, &cp.domain_uuid));
    CU_ASSERT_EQUAL_FATAL(back.num_disks, 2);
    for (i = 0; i < 2; i++) {
        assert_str_eq(back.disks[i].vdev, cp.disks[i].vdev);
        assert_str_eq(back.disks[i].bitmap, cp.disks[i].bitmap);
        assert_str_eq(back.disks[i].image, cp.disks[i].image);
        CU_ASSERT_EQUAL(back.disks[i].format, LIBXL_DISK_FORMAT_QCOW2);
        CU_ASSERT_PTR_NULL(back.disks[i].problem);
    }
    /* the same text again: the format is stable */
    assert_str_eq(libxl__checkpoint_to_text(gc, &back), text);
    /* a minimal one: absent members stay absent */
    libxlsnap_checkpoint_dispose(&back);
    v = libxl__json_parse(gc, "{\"name\": \"c\", \"disks\": []}");
    CU_ASSERT_EQUAL(libxl__checkpoint_from_tree(gc, gc, v, &back, &why), 0);
    CU_ASSERT_PTR_NULL(back.parent);
    CU_ASSERT_PTR_NULL(back.description);
    CU_ASSERT_EQUAL(back.num_disks, 0);
    CU_ASSERT_EQUAL(back.creation_time, 0);
    text = libxl__checkpoint_to_text(gc, &back);
    CU_ASSERT_PTR_NULL(strstr(text, "parent"));
    CU_ASSERT_PTR_NULL(strstr(text, "merged"));
    libxlsnap_checkpoint_dispose(&cp);
    GC_FREE;
}

void test_checkpoint__parse_rejects_invalid(void)
{
    static const char *const bad[] = {
        "[]",
        "{\"disks\": []}",
        "{\"name\": \"../x\", \"disks\": []}",
        "{\"name\": \"123\", \"disks\": []}",
        "{\"name\": \"c\"}",
        "{\"name\": \"c\", \"disks\": {}}",
        "{\"name\": \"c\", \"disks\": [{\"bitmap\": \"c\"}]}",
        "{\"name\": \"c\", \"disks\": [{\"vdev\": \"xvda\"}]}",
        "{\"name\": \"c\", \"disks\": [{\"vdev\": \"a/b\", \"bitmap\": \"c\"}]}",
        "{\"name\": \"c\", \"disks\": [{\"vdev\": \"xvda\", \"bitmap\": \"c\","
        " \"format\": \"floppy\"}]}",
        "{\"name\": \"c\", \"disks\": [], \"creation_nsec\": 1000000000}",
        "{\"name\": \"c\", \"disks\": [], \"creation_time\": -1}",
        "{\"name\": \"c\", \"disks\": [], \"parent\": \"a,b\"}",
        "{\"name\": \"c\", \"disks\": [], \"merged\": \"x\"}",
        "{\"name\": \"c\", \"disks\": [], \"merged\": [\"..\"]}",
        "{\"name\": \"c\", \"disks\": [], \"domain_uuid\": \"nope\"}",
        "{\"name\": \"c\", \"disks\": [], \"description\": 3}",
    };
    GC_INIT(NULL);
    libxlsnap_checkpoint cp;
    const char *why;
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        yajl_val v = libxl__json_parse(gc, bad[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(v);
        why = NULL;
        CU_ASSERT_EQUAL(libxl__checkpoint_from_tree(gc, NOGC, v, &cp, &why),
                        ERROR_INVAL);
        CU_ASSERT_PTR_NOT_NULL(why);
        CU_ASSERT_PTR_NULL(cp.name);  /* nothing left to free */
    }
    GC_FREE;
}

void test_checkpoint__record_names(void)
{
    GC_INIT(NULL);

    assert_str_eq(libxl__checkpoint_record_name(gc, "c1"),
                  "checkpoint-c1.libxl-json");
    assert_str_eq(libxl__checkpoint_record_file(gc,
                      "checkpoint-c1.libxl-json"), "c1");
    assert_str_eq(libxl__checkpoint_record_file(gc,
                      "checkpoint-a-b.libxl-json"), "a-b");
    CU_ASSERT_PTR_NULL(libxl__checkpoint_record_file(gc,
                       "checkpoint-.libxl-json"));
    CU_ASSERT_PTR_NULL(libxl__checkpoint_record_file(gc,
                       "checkpoint-c1.libxl-json.tmp"));
    CU_ASSERT_PTR_NULL(libxl__checkpoint_record_file(gc,
                       "snapshotdata-checkpoint-c1.libxl-json"));
    CU_ASSERT_PTR_NULL(libxl__checkpoint_record_file(gc,
                       "domain.libxl-json"));
    GC_FREE;
}

/* c1 (xvda, xvdb), c2 (xvda), c3 (xvda, xvdb; x merged into it), c4
 * (xvdb) */
static void a_list(libxl__gc *gc, libxl__checkpoint_list *l)
{
    static const char *const names[] = { "c1", "c2", "c3", "c4" };
    int i;

    memset(l, 0, sizeof(*l));
    l->cps = calloc(4, sizeof(*l->cps));
    libxl__gc_adopt(gc, l->cps);
    for (i = 0; i < 4; i++) {
        libxlsnap_checkpoint *cp = &l->cps[l->num++];
        libxlsnap_checkpoint_init(cp);
        cp->name = (char *)names[i];
        cp->creation_time = 100 + i;
        cp->disks = libxl__gc_calloc(gc, 2, sizeof(*cp->disks));
        if (i != 3) {
            cp->disks[cp->num_disks].vdev = (char *)"xvda";
            cp->disks[cp->num_disks++].bitmap = (char *)names[i];
        }
        if (i != 1) {
            cp->disks[cp->num_disks].vdev = (char *)"xvdb";
            cp->disks[cp->num_disks++].bitmap = (char *)names[i];
        }
    }
    l->cps[2].merged = libxl__gc_calloc(gc, 1, sizeof(char *));
    l->cps[2].merged[0] = (char *)"x";
    l->cps[2].num_merged = 1;
}

static char *joined(libxl__gc *gc, const char **names, int n)
{
    char *s = GCSTRDUP("");
    int i;
    for (i = 0; i < n; i++) s = GCSPRINTF("%s%s%s", s, i ? "," : "", names[i]);
    return s;
}

void test_checkpoint__bitmap_unions(void)
{
    GC_INIT(NULL);
    libxl__checkpoint_list l;
    const char **names;
    int n;

    a_list(gc, &l);
    CU_ASSERT_EQUAL(libxl__checkpoint_index(&l, "c3"), 2);
    CU_ASSERT_EQUAL(libxl__checkpoint_index(&l, "nope"), -1);
    CU_ASSERT_EQUAL(libxl__checkpoint_newest_on(&l, "xvda", l.num), 2);
    CU_ASSERT_EQUAL(libxl__checkpoint_newest_on(&l, "xvdb", l.num), 3);
    CU_ASSERT_EQUAL(libxl__checkpoint_newest_on(&l, "xvdb", 2), 0);
    CU_ASSERT_EQUAL(libxl__checkpoint_newest_on(&l, "xvdc", l.num), -1);

    CU_ASSERT_EQUAL(libxl__checkpoint_bitmaps(gc, &l, "xvda", "c1", NULL,
                                              &names, &n), 0);
    assert_str_eq(joined(gc, names, n), "c1,c2,c3,x");
    CU_ASSERT_EQUAL(libxl__checkpoint_bitmaps(gc, &l, "xvdb", "c1", NULL,
                                              &names, &n), 0);
    assert_str_eq(joined(gc, names, n), "c1,c3,x,c4");
    CU_ASSERT_EQUAL(libxl__checkpoint_bitmaps(gc, &l, "xvda", "c1", "c3",
                                              &names, &n), 0);
    assert_str_eq(joined(gc, names, n), "c1,c2");
    CU_ASSERT_EQUAL(libxl__checkpoint_bitmaps(gc, &l, "xvdb", "c3", "c4",
                                              &names, &n), 0);
    assert_str_eq(joined(gc, names, n), "c3,x");
    CU_ASSERT_EQUAL(libxl__checkpoint_bitmaps(gc, &l, "xvda", "c3", "c3",
                                              &names, &n), 0);
    CU_ASSERT_EQUAL(n, 0);
    /* a checkpoint without the disk: what changed there is unknown */
    CU_ASSERT_EQUAL(libxl__checkpoint_bitmaps(gc, &l, "xvdb", "c2", NULL,
                                              &names, &n), ERROR_INVAL);
    CU_ASSERT_EQUAL(libxl__checkpoint_bitmaps(gc, &l, "xvda", "c1", "c4",
                                              &names, &n), ERROR_INVAL);
    CU_ASSERT_EQUAL(libxl__checkpoint_bitmaps(gc, &l, "xvda", "c3", "c1",
                                              &names, &n), ERROR_INVAL);
    CU_ASSERT_EQUAL(libxl__checkpoint_bitmaps(gc, &l, "xvda", "nope", NULL,
                                              &names, &n), ERROR_NOTFOUND);
    CU_ASSERT_EQUAL(libxl__checkpoint_bitmaps(gc, &l, "xvda", "c1", "nope",
                                              &names, &n), ERROR_NOTFOUND);
    GC_FREE;
}

/* checkpoints named in names (space-separated), oldest first, each on
 * xvda with its own bitmap; no merged names */
static void seq_list(libxl__gc *gc, libxl__checkpoint_list *l,
                     const char *names)
{
    char *s = GCSTRDUP(names), *save = NULL, *w;

    memset(l, 0, sizeof(*l));
    l->cps = libxl__gc_calloc(gc, 8, sizeof(*l->cps));
    for (w = strtok_r(s, " ", &save); w && l->num < 8;
         w = strtok_r(NULL, " ", &save)) {
        libxlsnap_checkpoint *cp = &l->cps[l->num++];
        cp->name = w;
        cp->creation_time = 100 + l->num;
        GCNEW(cp->disks);
        cp->disks[0].vdev = (char *)"xvda";
        cp->disks[0].bitmap = w;
        cp->num_disks = 1;
    }
}

void test_checkpoint__bitmap_problems(void)
{
    GC_INIT(NULL);
    libxl__bitmap_state top[] = {
        { "c2", 65536, true, false },
        { "c1", 65536, false, false },
        { "old", 65536, false, false },
    };
    libxl__bitmap_state base[] = {
        { "c1", 65536, false, false },
        { "c0", 65536, false, true },
    };
    libxl__bitmap_layer layers[] = {
        { "/i/top.qcow2", LIBXL_DISK_FORMAT_QCOW2, "xvda-ov1", top, 3 },
        { "/i/base.qcow2", LIBXL_DISK_FORMAT_QCOW2, NULL, base, 2 },
    };
    libxl__disk_bitmaps db = { "xvda", layers, 2 };
    const char *c12[] = { "c1", "c2" };
    libxl__checkpoint_list l;
    const char *p;
    yajl_val srcs;

    CU_ASSERT_PTR_NULL(libxl__checkpoint_bitmap_problem(gc, &db, "c2", true));
    CU_ASSERT_PTR_NULL(libxl__checkpoint_bitmap_problem(gc, &db, "c1", false));
    p = libxl__checkpoint_bitmap_problem(gc, &db, "c1", true);
    CU_ASSERT_PTR_NOT_NULL(p);
    CU_ASSERT_PTR_NOT_NULL(p ? strstr(p, "does not record") : NULL);
    p = libxl__checkpoint_bitmap_problem(gc, &db, "c9", false);
    CU_ASSERT_PTR_NOT_NULL(p ? strstr(p, "missing") : NULL);
    p = libxl__checkpoint_bitmap_problem(gc, &db, "c0", false);
    CU_ASSERT_PTR_NOT_NULL(p ? strstr(p, "inconsistent on '/i/base.qcow2'")
                             : NULL);
    CU_ASSERT_PTR_NOT_NULL(p ? strstr(p, "died") : NULL);
    seq_list(gc, &l, "c0 c1 c2");
    CU_ASSERT_PTR_NULL(libxl__checkpoint_union_problem(gc, &db, &l, "c1",
                                                       NULL));
    p = libxl__checkpoint_union_problem(gc, &db, &l, "c0", NULL);
    CU_ASSERT_PTR_NOT_NULL(p ? strstr(p, "inconsistent") : NULL);
    top[1].inconsistent = true;
    p = libxl__checkpoint_union_problem(gc, &db, &l, "c1", NULL);
    CU_ASSERT_PTR_NOT_NULL(p ? strstr(p, "QEMU says so") : NULL);
    top[1].inconsistent = false;
    /* live merge sources: only the layers QEMU has a node for */
    srcs = libxl__checkpoint_merge_sources(gc, &db, c12, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(srcs);
    assert_str_eq(libxl__json_to_string(gc, srcs),
                  "[{\"node\":\"xvda-ov1\",\"name\":\"c1\"},"
                  "{\"node\":\"xvda-ov1\",\"name\":\"c2\"}]");
    CU_ASSERT_PTR_NULL(libxl__checkpoint_merge_sources(gc, &db,
                       (const char *[]){ "zz" }, 1));
    GC_FREE;
}

/* The continuity rule: each checkpoint's bitmap on every layer from the
 * lowest having it up to where the next begins, the newest up to the
 * active image (recording) */
void test_checkpoint__union_continuity(void)
{
    GC_INIT(NULL);
    /* base: c1, then c2; e1 made while c2 recorded, c3 made on it; e2
     * made while c3 recorded */
    libxl__bitmap_state e2[] = { { "c3", 65536, true, false } };
    libxl__bitmap_state e1[] = {
        { "c2", 65536, false, false },
        { "c3", 65536, false, false },
    };
    libxl__bitmap_state base[] = {
        { "c1", 65536, false, false },
        { "c2", 65536, false, false },
    };
    libxl__bitmap_layer layers[] = {
        { "/i/e2.qcow2", LIBXL_DISK_FORMAT_QCOW2, NULL, e2, 1 },
        { "/i/e1.qcow2", LIBXL_DISK_FORMAT_QCOW2, NULL, e1, 2 },
        { "/i/base.qcow2", LIBXL_DISK_FORMAT_QCOW2, NULL, base, 2 },
    };
    libxl__disk_bitmaps db = { "xvda", layers, 3 };
    libxl__checkpoint_list l;
    const char *p;

    seq_list(gc, &l, "c1 c2 c3");
    CU_ASSERT_PTR_NULL(libxl__checkpoint_union_problem(gc, &db, &l, "c1",
                                                       NULL));
    CU_ASSERT_PTR_NULL(libxl__checkpoint_union_problem(gc, &db, &l, "c1",
                                                       "c3"));
    CU_ASSERT_PTR_NULL(libxl__checkpoint_union_problem(gc, &db, &l, "c3",
                                                       NULL));
    /* c2 gone from e1 (qemu-img bitmap --remove): e1's writes lost */
    e1[0].name = "zz";
    p = libxl__checkpoint_union_problem(gc, &db, &l, "c1", NULL);
    CU_ASSERT_PTR_NOT_NULL(p ? strstr(p, "bitmap 'c2' is missing on "
                                      "'/i/e1.qcow2'") : NULL);
    p = libxl__checkpoint_union_problem(gc, &db, &l, "c2", "c3");
    CU_ASSERT_PTR_NOT_NULL(p);
    CU_ASSERT_PTR_NULL(libxl__checkpoint_union_problem(gc, &db, &l, "c1",
                                                       "c2"));
    CU_ASSERT_PTR_NULL(libxl__checkpoint_union_problem(gc, &db, &l, "c3",
                                                       NULL));
    e1[0].name = "c2";
    /* c3 never written to e2 (QEMU killed): writes since not tracked */
    e2[0].name = "zz";
    p = libxl__checkpoint_union_problem(gc, &db, &l, "c1", NULL);
    CU_ASSERT_PTR_NOT_NULL(p ? strstr(p, "bitmap 'c3' is not on the active "
                                      "image '/i/e2.qcow2'") : NULL);
    CU_ASSERT_PTR_NULL(libxl__checkpoint_union_problem(gc, &db, &l, "c1",
                                                       "c3"));
    e2[0].name = "c3";
    /* on the active image but disabled */
    e2[0].recording = false;
    p = libxl__checkpoint_union_problem(gc, &db, &l, "c2", NULL);
    CU_ASSERT_PTR_NOT_NULL(p ? strstr(p, "does not record") : NULL);
    e2[0].recording = true;
    /* c2 deleted live, merged into c1: c1 covers e1 through c2 */
    seq_list(gc, &l, "c1 c3");
    l.cps[0].merged = libxl__gc_calloc(gc, 1, sizeof(char *));
    l.cps[0].merged[0] = (char *)"c2";
    l.cps[0].num_merged = 1;
    CU_ASSERT_PTR_NULL(libxl__checkpoint_union_problem(gc, &db, &l, "c1",
                                                       NULL));
    /* then c3 too (the newest): c1 recording on e2 with c3's bits */
    l.cps[0].merged = libxl__gc_calloc(gc, 2, sizeof(char *));
    l.cps[0].merged[0] = (char *)"c2";
    l.cps[0].merged[1] = (char *)"c3";
    l.cps[0].num_merged = 2;
    l.num = 1;
    e2[0].name = "c1";
    CU_ASSERT_PTR_NULL(libxl__checkpoint_union_problem(gc, &db, &l, "c1",
                                                       NULL));
    e2[0].name = "c3";
    /* a union of nothing; an unknown name */
    seq_list(gc, &l, "c1 c2 c3");
    CU_ASSERT_PTR_NOT_NULL(libxl__checkpoint_union_problem(gc, &db, &l, "c3",
                                                           "c3"));
    CU_ASSERT_PTR_NOT_NULL(libxl__checkpoint_union_problem(gc, &db, &l, "c9",
                                                           NULL));
    GC_FREE;
}

void test_checkpoint__xml(void)
{
    libxlsnap_checkpoint cp;
    char *x;

    full_record(&cp);
    x = libxlsnap_checkpoint_to_xml(NULL, &cp);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_PTR_NOT_NULL(strstr(x, "<domaincheckpoint>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(x, "<name>nightly-2</name>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(x, "<creationTime>1796317407</creationTime>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(x, "&quot;quoted&quot;") ?:
                           strstr(x, "\"quoted\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(x, "<disk name=\"xvdb\" checkpoint=\"bitmap\" "
                                  "bitmap=\"nightly-2\"/>"));
    free(x);
    libxlsnap_checkpoint_dispose(&cp);
}

static int put(libxl__gc *gc, const libxl__snapshot_store *st,
               const char *name, const char *text)
{
    return libxl__snapshot_store_put1(gc, st, name, text,
                                      text ? strlen(text) : 0, XTL_DEBUG);
}

static int rm_one(const char *path, const struct stat *sb, int flag,
                  struct FTW *ftw)
{
    return remove(path);
}

/* checkpoint and snapshot records side by side in one store */
void test_checkpoint__store_beside_snapshots(void)
{
    GC_INIT(NULL);
    char tmpl[] = "/tmp/test-ckpt-XXXXXX";
    char *state = mkdtemp(tmpl);
    libxl__snapshot_store st;
    libxl__snapshot_tree t;
    libxl__checkpoint_list l;
    libxlsnap_checkpoint cp;
    libxl_uuid u;

    CU_ASSERT_PTR_NOT_NULL_FATAL(state);
    CU_ASSERT_EQUAL_FATAL(libxl_uuid_from_string(&u, dom_uuid), 0);
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_open(gc, state, &u, &st), 0);
    full_record(&cp);
    CU_ASSERT_EQUAL(libxl__checkpoint_save(gc, &st, &cp), 0);
    libxlsnap_checkpoint_dispose(&cp);
    /* the snapshots see none of it */
    CU_ASSERT_EQUAL(libxl__snapshot_store_load(gc, &st, &t), 0);
    CU_ASSERT_EQUAL(t.num_snaps, 0);
    CU_ASSERT(!libxl__snapshot_store_has(gc, &st, "nightly-2"));
    CU_ASSERT_EQUAL(libxl__checkpoint_load(gc, &st, false, &l), 0);
    CU_ASSERT_EQUAL_FATAL(l.num, 1);
    assert_str_eq(l.cps[0].name, "nightly-2");
    CU_ASSERT(libxl__checkpoint_owns(gc, &l, "checkpoint-nightly-2.libxl-json"));
    CU_ASSERT(!libxl__checkpoint_owns(gc, &l, "checkpoint-other.libxl-json"));
    /* a corrupt one, and one holding another name */
    CU_ASSERT_EQUAL(put(gc, &st, "checkpoint-bad.libxl-json", "{not json"), 0);
    CU_ASSERT_EQUAL(libxl__checkpoint_load(gc, &st, false, &l), ERROR_INVAL);
    CU_ASSERT_EQUAL(libxl__checkpoint_load(gc, &st, true, &l), 0);
    CU_ASSERT_EQUAL(l.num, 1);
    CU_ASSERT_EQUAL_FATAL(l.num_damage, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(l.damage[0], "checkpoint-bad.libxl-json"));
    CU_ASSERT(libxl__checkpoint_owns(gc, &l, "checkpoint-bad.libxl-json"));
    CU_ASSERT_EQUAL(put(gc, &st, "checkpoint-bad.libxl-json",
                        "{\"name\": \"other\", \"disks\": []}"), 0);
    CU_ASSERT_EQUAL(libxl__checkpoint_load(gc, &st, true, &l), 0);
    CU_ASSERT_EQUAL_FATAL(l.num_damage, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(l.damage[0], "holds checkpoint 'other'"));
    /* oldest first, whatever the listing order */
    CU_ASSERT_EQUAL(put(gc, &st, "checkpoint-bad.libxl-json", NULL), 0);
    CU_ASSERT_EQUAL(put(gc, &st, "checkpoint-aaa.libxl-json",
                        "{\"name\": \"aaa\", \"creation_time\": 1796317408,"
                        " \"disks\": []}"), 0);
    CU_ASSERT_EQUAL(libxl__checkpoint_load(gc, &st, false, &l), 0);
    CU_ASSERT_EQUAL_FATAL(l.num, 2);
    assert_str_eq(l.cps[0].name, "nightly-2");
    assert_str_eq(l.cps[1].name, "aaa");
    nftw(state, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    GC_FREE;
}
