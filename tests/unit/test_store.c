/*
 * test_store.c - snapshot records on disk, the tree, the lock
 *
 * Each test works in its own mkdtemp() state directory, removed at the
 * end.  The gc has no ctx, so LOG is silent.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE                   /* nftw */
#endif
#include <CUnit/CUnit.h>

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libxl_snapshot_internal.h"

static const char *const dom_uuid = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";

static int rm_one(const char *path, const struct stat *sb, int flag,
                  struct FTW *ftw)
{
    return remove(path);
}

static void rm_rf(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh state dir and a store opened in it. */
static char *new_state_dir(void)
{
    char tmpl[] = "/tmp/test-store-XXXXXX";
    char *d = mkdtemp(tmpl);

    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    return strdup(d);
}

static void open_store(libxl__gc *gc, const char *state,
                       libxl__snapshot_store *st)
{
    libxl_uuid u;

    CU_ASSERT_EQUAL_FATAL(libxl_uuid_from_string(&u, dom_uuid), 0);
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_open(gc, state, &u, st), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st->dir);
    CU_ASSERT_EQUAL(st->lockfd, -1);
}

static void add_snap(libxl__gc *gc, libxl__snapshot_tree *t,
                     const char *name, const char *parent, uint64_t when,
                     const char *file)
{
    libxlsnap_domain_snapshot s;
    libxlsnap_disk_snapshot d;

    libxlsnap_domain_snapshot_init(&s);
    libxlsnap_disk_snapshot_init(&d);
    s.name = (char *)name;
    s.parent = (char *)parent;
    s.creation_time = when;
    s.state = LIBXLSNAP_DOMAIN_STATE_RUNNING;
    s.domain_name = (char *)"vm1";
    d.vdev = (char *)"xvda";
    d.type = LIBXLSNAP_DISK_SNAPSHOT_TYPE_EXTERNAL;
    d.format = LIBXL_DISK_FORMAT_QCOW2;
    d.file = (char *)file;
    d.overlay = (char *)GCSPRINTF("%s.ov", file);
    s.disks = &d;
    s.num_disks = 1;
    libxl__snapshot_tree_add(gc, t, &s);
}

/*
 *   root (100)
 *   +-- a (200)
 *   |   +-- a1 (300)    current
 *   +-- b (250)
 */
static void build_tree(libxl__gc *gc, libxl__snapshot_tree *t)
{
    memset(t, 0, sizeof(*t));
    t->dom.name = GCSTRDUP("vm1");
    CU_ASSERT_EQUAL(libxl_uuid_from_string(&t->dom.uuid, dom_uuid), 0);
    t->dom.config_file = GCSTRDUP("/etc/xen/vm1.cfg");
    /*
     * Parents before children (a missing parent is dropped), but not
     * in creation order: the tree sorts by creation_time.
     */
    add_snap(gc, t, "root", NULL, 100, "/img/root.qcow2");
    add_snap(gc, t, "b", "root", 250, "/img/b.qcow2");
    add_snap(gc, t, "a", "root", 200, "/img/a.qcow2");
    add_snap(gc, t, "a1", "a", 300, "/img/a1.qcow2");
    t->dom.current = GCSTRDUP("a1");
    libxl__domain_record_set_disk(gc, &t->dom, NULL, "xvda", "/img/a1.qcow2.ov",
                                  LIBXL_DISK_FORMAT_QCOW2);
    libxl__snapshot_tree_fixup(gc, t);
}

/* t and l hold the same snapshots (as JSON), in the same order */
static void expect_same_snapshots(const libxl__snapshot_tree *t,
                                  const libxl__snapshot_tree *l)
{
    int i;

    CU_ASSERT_EQUAL_FATAL(l->num_snaps, t->num_snaps);
    for (i = 0; i < t->num_snaps; i++) {
        char *j1 = libxlsnap_domain_snapshot_to_json(NULL, &t->snaps[i]);
        char *j2 = libxlsnap_domain_snapshot_to_json(NULL, &l->snaps[i]);
        CU_ASSERT_PTR_NOT_NULL(j1);
        CU_ASSERT_PTR_NOT_NULL(j2);
        if (j1 && j2) {
            CU_ASSERT_STRING_EQUAL(j1, j2);
        }
        free(j1);
        free(j2);
    }
}

static ino_t inode_of(const char *path)
{
    struct stat sb;

    if (stat(path, &sb)) return 0;
    return sb.st_ino;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

void test_store__tree_fixup(void)
{
    GC_INIT(NULL);
    libxl__snapshot_tree t;
    libxlsnap_domain_snapshot *s;

    build_tree(gc, &t);
    CU_ASSERT_EQUAL_FATAL(t.num_snaps, 4);
    CU_ASSERT_STRING_EQUAL(t.snaps[0].name, "root");
    CU_ASSERT_STRING_EQUAL(t.snaps[1].name, "a");
    CU_ASSERT_STRING_EQUAL(t.snaps[2].name, "b");
    CU_ASSERT_STRING_EQUAL(t.snaps[3].name, "a1");

    s = libxl__snapshot_tree_find(&t, "root");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL_FATAL(s->num_children, 2);
    CU_ASSERT_STRING_EQUAL(s->children[0], "a");
    CU_ASSERT_STRING_EQUAL(s->children[1], "b");
    CU_ASSERT_FALSE(s->current);
    s = libxl__snapshot_tree_find(&t, "a1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_TRUE(s->current);
    CU_ASSERT_EQUAL(s->num_children, 0);
    CU_ASSERT_PTR_NULL(libxl__snapshot_tree_find(&t, "nope"));

    /* same-time siblings are ordered by name */
    add_snap(gc, &t, "b0", "root", 250, "/img/b0.qcow2");
    s = libxl__snapshot_tree_find(&t, "root");
    CU_ASSERT_EQUAL_FATAL(s->num_children, 3);
    CU_ASSERT_STRING_EQUAL(s->children[1], "b");
    CU_ASSERT_STRING_EQUAL(s->children[2], "b0");
    /* ... unless their nanoseconds tell which came first */
    libxl__snapshot_tree_find(&t, "b")->creation_nsec = 7;
    libxl__snapshot_tree_find(&t, "b0")->creation_nsec = 3;
    libxl__snapshot_tree_fixup(gc, &t);
    s = libxl__snapshot_tree_find(&t, "root");
    CU_ASSERT_STRING_EQUAL(s->children[1], "b0");
    CU_ASSERT_STRING_EQUAL(s->children[2], "b");

    /* adding an existing name replaces it */
    add_snap(gc, &t, "b0", NULL, 260, "/img/b0-new.qcow2");
    CU_ASSERT_EQUAL(t.num_snaps, 5);
    s = libxl__snapshot_tree_find(&t, "b0");
    CU_ASSERT_PTR_NULL(s->parent);
    CU_ASSERT_STRING_EQUAL(s->disks[0].file, "/img/b0-new.qcow2");
    CU_ASSERT_EQUAL(libxl__snapshot_tree_find(&t, "root")->num_children, 2);
    /* adding one of the tree's own snapshots is safe */
    libxl__snapshot_tree_add(gc, &t, libxl__snapshot_tree_find(&t, "b0"));
    CU_ASSERT_EQUAL(t.num_snaps, 5);
    CU_ASSERT_STRING_EQUAL(libxl__snapshot_tree_find(&t, "b0")->disks[0].file,
                           "/img/b0-new.qcow2");

    /* a missing parent is taken as NULL; a loop is broken */
    s = libxl__snapshot_tree_find(&t, "b");
    s->parent = GCSTRDUP("gone");
    s = libxl__snapshot_tree_find(&t, "a1");
    s->parent = GCSTRDUP("a1");
    libxl__snapshot_tree_fixup(gc, &t);
    CU_ASSERT_PTR_NULL(libxl__snapshot_tree_find(&t, "b")->parent);
    CU_ASSERT_PTR_NULL(libxl__snapshot_tree_find(&t, "a1")->parent);
    CU_ASSERT_EQUAL(libxl__snapshot_tree_find(&t, "root")->num_children, 1);
    CU_ASSERT_EQUAL(libxl__snapshot_tree_find(&t, "a")->num_children, 0);
    GC_FREE;
}

/*
 * save_many (a batch: every record to its .tmp, one syncfs, the renames):
 * the same files as save, none left as .tmp; add_many adds children
 * before or after their parents in one go; a second save_many of the
 * same tree writes nothing (the inodes stay).
 */
void test_store__save_many(void)
{
    GC_INIT(NULL);
    char *state = new_state_dir();
    libxl__snapshot_store st;
    libxl__snapshot_tree t, l, more;
    libxlsnap_domain_snapshot *s;
    ino_t ino;
    int i;

    open_store(gc, state, &st);
    build_tree(gc, &t);
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_save(gc, &st, &t), 0);

    /* 20 new ones (a chain on a1), given children first */
    memset(&more, 0, sizeof(more));
    more.partial = true;              /* (keeps parents it does not hold) */
    for (i = 0; i < 20; i++)
        add_snap(gc, &more, GCSPRINTF("n%d", i),
                 i ? GCSPRINTF("n%d", i - 1) : "a1", 1000 + i,
                 GCSPRINTF("/img/n%d.qcow2", i));
    for (i = 0; i < 10; i++) {
        libxlsnap_domain_snapshot x = more.snaps[i];
        more.snaps[i] = more.snaps[19 - i];
        more.snaps[19 - i] = x;
    }
    CU_ASSERT_STRING_EQUAL(more.snaps[0].name, "n19");
    libxl__snapshot_tree_add_many(gc, &t, more.snaps, more.num_snaps);
    CU_ASSERT_EQUAL_FATAL(t.num_snaps, 24);
    s = libxl__snapshot_tree_find(&t, "n5");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s->parent, "n4");
    CU_ASSERT_EQUAL_FATAL(s->num_children, 1);
    CU_ASSERT_STRING_EQUAL(s->children[0], "n6");
    CU_ASSERT_EQUAL(libxl__snapshot_tree_find(&t, "a1")->num_children, 1);
    t.dom.current = GCSTRDUP("n19");
    libxl__snapshot_tree_fixup(gc, &t);

    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_save_many(gc, &st, &t), 0);
    for (i = 0; i < 20; i++) {
        const char *r = libxl__snapshot_record_path(gc, &st,
                                                    GCSPRINTF("n%d", i));
        CU_ASSERT_TRUE(libxl__file_exists(r));
        CU_ASSERT_FALSE(libxl__file_exists(GCSPRINTF("%s.tmp", r)));
    }
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_load(gc, &st, &l), 0);
    CU_ASSERT_EQUAL_FATAL(l.num_snaps, 24);
    CU_ASSERT_STRING_EQUAL(l.dom.current, "n19");
    expect_same_snapshots(&t, &l);
    /* unchanged: nothing is written again */
    ino = inode_of(libxl__snapshot_record_path(gc, &st, "n7"));
    CU_ASSERT_NOT_EQUAL(ino, 0);
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_save_many(gc, &st, &l), 0);
    CU_ASSERT_EQUAL(inode_of(libxl__snapshot_record_path(gc, &st, "n7")), ino);
    rm_rf(state);
    free(state);
    GC_FREE;
}

void test_store__save_load_roundtrip(void)
{
    GC_INIT(NULL);
    char *state = new_state_dir();
    libxl__snapshot_store st;
    libxl__snapshot_tree t, l;
    libxlsnap_domain_snapshot *s;
    libxl__active_disk *a;
    struct stat sb;

    open_store(gc, state, &st);
    CU_ASSERT_EQUAL(stat(st.dir, &sb), 0);
    CU_ASSERT_TRUE(S_ISDIR(sb.st_mode));
    CU_ASSERT_EQUAL(sb.st_mode & 0777, 0700);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.dir, dom_uuid));

    /* an empty directory loads as an empty tree */
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_load(gc, &st, &l), 0);
    CU_ASSERT_EQUAL(l.num_snaps, 0);
    CU_ASSERT_PTR_NULL(l.dom.current);

    build_tree(gc, &t);
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_save(gc, &st, &t), 0);
    CU_ASSERT_TRUE(libxl__file_exists(
                       libxl__snapshot_record_path(gc, &st, "a1")));
    CU_ASSERT_TRUE(libxl__file_exists(GCSPRINTF("%s/domain.libxl-json",
                                                st.dir)));
    CU_ASSERT_STRING_EQUAL(libxl__snapshot_record_path(gc, &st, "x"),
                           GCSPRINTF("%s/snapshotdata-x.libxl-json", st.dir));

    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_load(gc, &st, &l), 0);
    CU_ASSERT_EQUAL_FATAL(l.num_snaps, t.num_snaps);
    expect_same_snapshots(&t, &l);
    s = libxl__snapshot_tree_find(&l, "root");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL_FATAL(s->num_children, 2);
    CU_ASSERT_STRING_EQUAL(s->children[0], "a");
    CU_ASSERT_STRING_EQUAL(s->children[1], "b");
    s = libxl__snapshot_tree_find(&l, "a1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s->parent, "a");
    CU_ASSERT_TRUE(s->current);
    CU_ASSERT_STRING_EQUAL(s->disks[0].overlay, "/img/a1.qcow2.ov");

    CU_ASSERT_STRING_EQUAL(l.dom.name, "vm1");
    CU_ASSERT_STRING_EQUAL(l.dom.config_file, "/etc/xen/vm1.cfg");
    CU_ASSERT_STRING_EQUAL(l.dom.current, "a1");
    CU_ASSERT_EQUAL(libxl_uuid_compare(&l.dom.uuid, &t.dom.uuid), 0);
    CU_ASSERT_EQUAL_FATAL(l.dom.num_disks, 1);
    a = libxl__domain_record_disk(&l.dom, "xvda");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_STRING_EQUAL(a->path, "/img/a1.qcow2.ov");
    CU_ASSERT_EQUAL(a->format, LIBXL_DISK_FORMAT_QCOW2);
    CU_ASSERT_PTR_NULL(libxl__domain_record_disk(&l.dom, "xvdb"));

    /* set_disk replaces, or adds */
    libxl__domain_record_set_disk(gc, &l.dom, NULL, "xvda", "/img/new.qcow2",
                                  LIBXL_DISK_FORMAT_QCOW2);
    libxl__domain_record_set_disk(gc, &l.dom, NULL, "xvdb", "/img/b.raw",
                                  LIBXL_DISK_FORMAT_RAW);
    CU_ASSERT_EQUAL(l.dom.num_disks, 2);
    CU_ASSERT_STRING_EQUAL(libxl__domain_record_disk(&l.dom, "xvda")->path,
                           "/img/new.qcow2");
    CU_ASSERT_EQUAL(libxl__domain_record_disk(&l.dom, "xvdb")->format,
                    LIBXL_DISK_FORMAT_RAW);

    /* uses_file: frozen images and overlays alike */
    CU_ASSERT_TRUE(libxl__snapshot_tree_uses_file(&l, "/img/b.qcow2"));
    CU_ASSERT_TRUE(libxl__snapshot_tree_uses_file(&l, "/img/root.qcow2.ov"));
    CU_ASSERT_FALSE(libxl__snapshot_tree_uses_file(&l, "/img/other.qcow2"));
    CU_ASSERT_FALSE(libxl__snapshot_tree_uses_file(&l, NULL));

    rm_rf(state);
    free(state);
    GC_FREE;
}

void test_store__remove_reparents(void)
{
    GC_INIT(NULL);
    char *state = new_state_dir();
    libxl__snapshot_store st;
    libxl__snapshot_tree t, l;
    libxlsnap_domain_snapshot *s;

    open_store(gc, state, &st);
    build_tree(gc, &t);
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_save(gc, &st, &t), 0);

    /* removing "a": a1 moves up to root */
    libxl__snapshot_tree_remove(gc, &t, "a");
    CU_ASSERT_EQUAL(t.num_snaps, 3);
    CU_ASSERT_PTR_NULL(libxl__snapshot_tree_find(&t, "a"));
    s = libxl__snapshot_tree_find(&t, "a1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s->parent);
    CU_ASSERT_STRING_EQUAL(s->parent, "root");
    s = libxl__snapshot_tree_find(&t, "root");
    CU_ASSERT_EQUAL_FATAL(s->num_children, 2);
    CU_ASSERT_STRING_EQUAL(s->children[0], "b");
    CU_ASSERT_STRING_EQUAL(s->children[1], "a1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t.dom.current);
    CU_ASSERT_STRING_EQUAL(t.dom.current, "a1");   /* not the removed one */

    /* removing the current one: current moves to its parent */
    libxl__snapshot_tree_remove(gc, &t, "a1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t.dom.current);
    CU_ASSERT_STRING_EQUAL(t.dom.current, "root");
    CU_ASSERT_TRUE(libxl__snapshot_tree_find(&t, "root")->current);
    CU_ASSERT_EQUAL(libxl__snapshot_tree_find(&t, "root")->num_children, 1);

    /* removing an unknown name changes nothing */
    libxl__snapshot_tree_remove(gc, &t, "nope");
    CU_ASSERT_EQUAL(t.num_snaps, 2);

    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_save(gc, &st, &t), 0);
    CU_ASSERT_FALSE(libxl__file_exists(
                        libxl__snapshot_record_path(gc, &st, "a")));
    CU_ASSERT_FALSE(libxl__file_exists(
                        libxl__snapshot_record_path(gc, &st, "a1")));
    CU_ASSERT_TRUE(libxl__file_exists(
                       libxl__snapshot_record_path(gc, &st, "b")));

    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_load(gc, &st, &l), 0);
    CU_ASSERT_EQUAL(l.num_snaps, 2);
    CU_ASSERT_STRING_EQUAL(l.dom.current, "root");
    CU_ASSERT_TRUE(libxl__snapshot_tree_find(&l, "root")->current);

    /* removing a root: its children become roots, current goes NULL */
    libxl__snapshot_tree_remove(gc, &l, "root");
    CU_ASSERT_PTR_NULL(l.dom.current);
    CU_ASSERT_PTR_NULL(libxl__snapshot_tree_find(&l, "b")->parent);
    CU_ASSERT_FALSE(libxl__snapshot_tree_find(&l, "b")->current);

    rm_rf(state);
    free(state);
    GC_FREE;
}

void test_store__only_changed_rewritten(void)
{
    GC_INIT(NULL);
    char *state = new_state_dir();
    libxl__snapshot_store st;
    libxl__snapshot_tree t;
    const char *names[] = { "root", "a", "b", "a1" };
    ino_t before[4], dom_before;
    const char *dom_path;
    int i;

    open_store(gc, state, &st);
    dom_path = GCSPRINTF("%s/domain.libxl-json", st.dir);
    build_tree(gc, &t);
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_save(gc, &st, &t), 0);
    for (i = 0; i < 4; i++) {
        before[i] = inode_of(libxl__snapshot_record_path(gc, &st, names[i]));
        CU_ASSERT_NOT_EQUAL(before[i], 0);
    }
    dom_before = inode_of(dom_path);

    /* nothing changed: nothing rewritten (atomic writes change inodes) */
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_save(gc, &st, &t), 0);
    for (i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(inode_of(libxl__snapshot_record_path(gc, &st,
                                                             names[i])),
                        before[i]);
    CU_ASSERT_EQUAL(inode_of(dom_path), dom_before);

    /* one description: that record only */
    libxl__snapshot_tree_find(&t, "b")->description = GCSTRDUP("changed");
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_save(gc, &st, &t), 0);
    CU_ASSERT_EQUAL(inode_of(libxl__snapshot_record_path(gc, &st, "root")),
                    before[0]);
    CU_ASSERT_EQUAL(inode_of(libxl__snapshot_record_path(gc, &st, "a")),
                    before[1]);
    CU_ASSERT_NOT_EQUAL(inode_of(libxl__snapshot_record_path(gc, &st, "b")),
                        before[2]);
    CU_ASSERT_EQUAL(inode_of(libxl__snapshot_record_path(gc, &st, "a1")),
                    before[3]);
    CU_ASSERT_EQUAL(inode_of(dom_path), dom_before);
    before[2] = inode_of(libxl__snapshot_record_path(gc, &st, "b"));

    /* current moves from a1 to b: those two and the domain record */
    t.dom.current = GCSTRDUP("b");
    libxl__snapshot_tree_fixup(gc, &t);
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_save(gc, &st, &t), 0);
    CU_ASSERT_EQUAL(inode_of(libxl__snapshot_record_path(gc, &st, "root")),
                    before[0]);
    CU_ASSERT_EQUAL(inode_of(libxl__snapshot_record_path(gc, &st, "a")),
                    before[1]);
    CU_ASSERT_NOT_EQUAL(inode_of(libxl__snapshot_record_path(gc, &st, "b")),
                        before[2]);
    CU_ASSERT_NOT_EQUAL(inode_of(libxl__snapshot_record_path(gc, &st, "a1")),
                        before[3]);
    CU_ASSERT_NOT_EQUAL(inode_of(dom_path), dom_before);

    /* a record changed behind our back is put right */
    write_text(libxl__snapshot_record_path(gc, &st, "root"), "garbage");
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_save(gc, &st, &t), 0);
    {
        char *data;
        CU_ASSERT_EQUAL_FATAL(libxl__read_file(gc,
            libxl__snapshot_record_path(gc, &st, "root"), &data, NULL), 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(data, "\"name\": \"root\""));
    }

    rm_rf(state);
    free(state);
    GC_FREE;
}

void test_store__corrupt_record_fails_load(void)
{
    GC_INIT(NULL);
    char *state = new_state_dir();
    libxl__snapshot_store st;
    libxl__snapshot_tree t, l;
    const char *path;
    char *good;

    open_store(gc, state, &st);
    build_tree(gc, &t);
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_save(gc, &st, &t), 0);
    path = libxl__snapshot_record_path(gc, &st, "b");
    CU_ASSERT_EQUAL_FATAL(libxl__read_file(gc, path, &good, NULL), 0);

    /* truncated JSON */
    write_text(path, "{\"name\": \"b\", \"disks\": [");
    CU_ASSERT_EQUAL(libxl__snapshot_store_load(gc, &st, &l), ERROR_INVAL);
    CU_ASSERT_EQUAL(l.num_snaps, 0);

    /* valid JSON, invalid record */
    write_text(path, "{\"name\": \"b\", \"state\": \"exploded\"}");
    CU_ASSERT_EQUAL(libxl__snapshot_store_load(gc, &st, &l), ERROR_INVAL);

    /* a record under another snapshot's file name */
    write_text(path, "{\"name\": \"a\", \"disks\": []}");
    CU_ASSERT_EQUAL(libxl__snapshot_store_load(gc, &st, &l), ERROR_INVAL);

    /* put back: loads again */
    write_text(path, good);
    CU_ASSERT_EQUAL(libxl__snapshot_store_load(gc, &st, &l), 0);
    CU_ASSERT_EQUAL(l.num_snaps, 4);

    /* a corrupt domain record fails too */
    write_text(GCSPRINTF("%s/domain.libxl-json", st.dir),
               "{\"current\": 3}");
    CU_ASSERT_EQUAL(libxl__snapshot_store_load(gc, &st, &l), ERROR_INVAL);
    write_text(GCSPRINTF("%s/domain.libxl-json", st.dir), "][");
    CU_ASSERT_EQUAL(libxl__snapshot_store_load(gc, &st, &l), ERROR_INVAL);

    rm_rf(state);
    free(state);
    GC_FREE;
}

void test_store__tmp_leftovers_ignored(void)
{
    GC_INIT(NULL);
    char *state = new_state_dir();
    libxl__snapshot_store st;
    libxl__snapshot_tree t, l;
    const char *tmp1, *tmp2;

    open_store(gc, state, &st);
    build_tree(gc, &t);
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_save(gc, &st, &t), 0);

    /* a crashed write of a new record, and of an existing one */
    tmp1 = GCSPRINTF("%s.tmp", libxl__snapshot_record_path(gc, &st, "new"));
    tmp2 = GCSPRINTF("%s.tmp", libxl__snapshot_record_path(gc, &st, "a"));
    write_text(tmp1, "{\"name\": \"new\", \"disk");
    write_text(tmp2, "{\"na");

    /* without the lock: ignored, and left alone (maybe a live write) */
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_load(gc, &st, &l), 0);
    CU_ASSERT_EQUAL(l.num_snaps, 4);
    CU_ASSERT_PTR_NULL(libxl__snapshot_tree_find(&l, "new"));
    CU_ASSERT_TRUE(libxl__file_exists(tmp1));

    /* with the lock: ignored and removed */
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_trylock(gc, &st, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_load(gc, &st, &l), 0);
    CU_ASSERT_EQUAL(l.num_snaps, 4);
    CU_ASSERT_FALSE(libxl__file_exists(tmp1));
    CU_ASSERT_FALSE(libxl__file_exists(tmp2));
    libxl__snapshot_store_unlock(&st);

    /* saving never deletes a file it does not own */
    write_text(GCSPRINTF("%s/unrelated", st.dir), "x");
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_save(gc, &st, &l), 0);
    CU_ASSERT_TRUE(libxl__file_exists(GCSPRINTF("%s/unrelated", st.dir)));

    rm_rf(state);
    free(state);
    GC_FREE;
}

void test_store__lock(void)
{
    GC_INIT(NULL);
    char *state = new_state_dir();
    libxl__snapshot_store st1, st2;

    open_store(gc, state, &st1);
    open_store(gc, state, &st2);
    CU_ASSERT_STRING_EQUAL(st1.dir, st2.dir);

    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_trylock(gc, &st1, NULL), 0);
    CU_ASSERT_TRUE(st1.lockfd >= 0);
    /* a second open file description conflicts, even in one process */
    CU_ASSERT_EQUAL(libxl__snapshot_store_trylock(gc, &st2, NULL),
                    ERROR_LOCK_FAIL);
    CU_ASSERT_EQUAL(st2.lockfd, -1);
    /* taking it again through the holder is fine */
    CU_ASSERT_EQUAL(libxl__snapshot_store_trylock(gc, &st1, NULL), 0);

    libxl__snapshot_store_unlock(&st1);
    CU_ASSERT_EQUAL(st1.lockfd, -1);
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_trylock(gc, &st2, NULL), 0);
    CU_ASSERT_EQUAL(libxl__snapshot_store_trylock(gc, &st1, NULL),
                    ERROR_LOCK_FAIL);
    libxl__snapshot_store_unlock(&st2);
    libxl__snapshot_store_unlock(&st2);     /* twice is harmless */
    CU_ASSERT_EQUAL(libxl__snapshot_store_trylock(gc, &st1, NULL), 0);
    libxl__snapshot_store_unlock(&st1);

    rm_rf(state);
    free(state);
    GC_FREE;
}

void test_store__missing_parent_on_disk(void)
{
    GC_INIT(NULL);
    char *state = new_state_dir();
    libxl__snapshot_store st;
    libxl__snapshot_tree l;

    open_store(gc, state, &st);
    write_text(libxl__snapshot_record_path(gc, &st, "orphan"),
               "{\"name\": \"orphan\", \"parent\": \"gone\","
               " \"creation_time\": 5, \"disks\": []}");
    write_text(GCSPRINTF("%s/domain.libxl-json", st.dir),
               "{\"name\": \"vm1\", \"current\": \"vanished\"}");
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_load(gc, &st, &l), 0);
    CU_ASSERT_EQUAL_FATAL(l.num_snaps, 1);
    CU_ASSERT_PTR_NULL(l.snaps[0].parent);
    CU_ASSERT_PTR_NULL(l.dom.current);
    CU_ASSERT_FALSE(l.snaps[0].current);

    rm_rf(state);
    free(state);
    GC_FREE;
}

/*
 * Create's partial tree: adding "c" under the current snapshot "root"
 * through load_one(NULL) leaves the directory exactly as a full load,
 * add and save would, reading no other record (b's is garbage while it
 * runs), and rewriting none of them.
 */
void test_store__partial_tree_add(void)
{
    GC_INIT(NULL);
    char *sfull = new_state_dir(), *spart = new_state_dir();
    libxl__snapshot_store full, part;
    libxl__snapshot_tree t, l;
    const char *names[] = { "root", "a", "b", "a1", "c" };
    char *b_text, *x, *y;
    ino_t a1_before;
    int i;

    open_store(gc, sfull, &full);
    open_store(gc, spart, &part);
    build_tree(gc, &t);
    t.dom.current = GCSTRDUP("root");
    libxl__snapshot_tree_fixup(gc, &t);
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_save(gc, &full, &t), 0);
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_save(gc, &part, &t), 0);

    /* the full way */
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_load(gc, &full, &l), 0);
    CU_ASSERT_FALSE(l.partial);
    add_snap(gc, &l, "c", l.dom.current, 400, "/img/c.qcow2");
    l.dom.current = GCSTRDUP("c");
    libxl__snapshot_tree_fixup(gc, &l);
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_save(gc, &full, &l), 0);

    /* the partial way, with an unrelated record unreadable */
    CU_ASSERT_EQUAL_FATAL(libxl__read_file(gc,
        libxl__snapshot_record_path(gc, &part, "b"), &b_text, NULL), 0);
    write_text(libxl__snapshot_record_path(gc, &part, "b"), "garbage {{");
    a1_before = inode_of(libxl__snapshot_record_path(gc, &part, "a1"));
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_load_one(gc, &part, NULL, &l),
                          0);
    CU_ASSERT_TRUE(l.partial);
    CU_ASSERT_EQUAL_FATAL(l.num_snaps, 1);
    CU_ASSERT_STRING_EQUAL(l.snaps[0].name, "root");
    CU_ASSERT_TRUE(l.snaps[0].current);
    CU_ASSERT_EQUAL(l.snaps[0].num_children, 2);   /* from its file */
    CU_ASSERT_TRUE(libxl__snapshot_store_has(gc, &part, "b"));
    CU_ASSERT_FALSE(libxl__snapshot_store_has(gc, &part, "c"));
    add_snap(gc, &l, "c", l.dom.current, 400, "/img/c.qcow2");
    l.dom.current = GCSTRDUP("c");
    libxl__snapshot_tree_fixup(gc, &l);
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_save(gc, &part, &l), 0);
    CU_ASSERT_EQUAL(inode_of(libxl__snapshot_record_path(gc, &part, "a1")),
                    a1_before);
    write_text(libxl__snapshot_record_path(gc, &part, "b"), b_text);

    /* the same files, record for record */
    for (i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL_FATAL(libxl__read_file(gc,
            libxl__snapshot_record_path(gc, &full, names[i]), &x, NULL), 0);
        CU_ASSERT_EQUAL_FATAL(libxl__read_file(gc,
            libxl__snapshot_record_path(gc, &part, names[i]), &y, NULL), 0);
        CU_ASSERT_STRING_EQUAL(x, y);
    }
    CU_ASSERT_EQUAL_FATAL(libxl__read_file(gc,
        GCSPRINTF("%s/domain.libxl-json", full.dir), &x, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(libxl__read_file(gc,
        GCSPRINTF("%s/domain.libxl-json", part.dir), &y, NULL), 0);
    CU_ASSERT_STRING_EQUAL(x, y);

    /* a current snapshot whose record is gone: none, as a full load */
    CU_ASSERT_EQUAL(unlink(libxl__snapshot_record_path(gc, &part, "c")), 0);
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_load_one(gc, &part, NULL, &l),
                          0);
    CU_ASSERT_PTR_NULL(l.dom.current);
    CU_ASSERT_EQUAL(l.num_snaps, 0);
    /* a corrupt current record fails, naming it, as a full load */
    write_text(libxl__snapshot_record_path(gc, &part, "c"), "garbage {{");
    CU_ASSERT_EQUAL(libxl__snapshot_store_load_one(gc, &part, NULL, &l),
                    ERROR_INVAL);

    rm_rf(sfull);
    rm_rf(spart);
    free(sfull);
    free(spart);
    GC_FREE;
}

/* load_one corrects what a full fixup would: a parent or children
 * without a record */
void test_store__partial_tree_fixes(void)
{
    GC_INIT(NULL);
    char *state = new_state_dir();
    libxl__snapshot_store st;
    libxl__snapshot_tree t, l;

    open_store(gc, state, &st);
    build_tree(gc, &t);                    /* current a1, parent a */
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_save(gc, &st, &t), 0);
    CU_ASSERT_EQUAL(unlink(libxl__snapshot_record_path(gc, &st, "a")), 0);
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_load_one(gc, &st, NULL, &l),
                          0);
    CU_ASSERT_EQUAL_FATAL(l.num_snaps, 1);
    CU_ASSERT_PTR_NULL(l.snaps[0].parent);

    t.dom.current = GCSTRDUP("root");      /* children a (gone), b */
    libxl__snapshot_tree_fixup(gc, &t);
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_save(gc, &st, &t), 0);
    CU_ASSERT_EQUAL(unlink(libxl__snapshot_record_path(gc, &st, "a")), 0);
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_load_one(gc, &st, NULL, &l),
                          0);
    CU_ASSERT_STRING_EQUAL(l.snaps[0].name, "root");
    CU_ASSERT_EQUAL_FATAL(l.snaps[0].num_children, 1);
    CU_ASSERT_STRING_EQUAL(l.snaps[0].children[0], "b");

    rm_rf(state);
    free(state);
    GC_FREE;
}

/* load_one: any snapshot's record, the current one kept as it is */
void test_store__load_one(void)
{
    GC_INIT(NULL);
    char *state = new_state_dir();
    libxl__snapshot_store st;
    libxl__snapshot_tree t, l;

    open_store(gc, state, &st);
    build_tree(gc, &t);                    /* current a1 */
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_save(gc, &st, &t), 0);
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_load_one(gc, &st, "root",
                                                         &l), 0);
    CU_ASSERT_EQUAL_FATAL(l.num_snaps, 1);
    CU_ASSERT_STRING_EQUAL(l.snaps[0].name, "root");
    CU_ASSERT_FALSE(l.snaps[0].current);
    CU_ASSERT_EQUAL_FATAL(l.snaps[0].num_children, 2);
    CU_ASSERT_STRING_EQUAL(l.snaps[0].children[0], "a");
    CU_ASSERT_STRING_EQUAL(l.snaps[0].children[1], "b");
    CU_ASSERT_STRING_EQUAL(l.dom.current, "a1");   /* not loaded, kept */
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_load_one(gc, &st, "a1", &l),
                          0);
    CU_ASSERT_TRUE(l.snaps[0].current);
    CU_ASSERT_STRING_EQUAL(l.snaps[0].parent, "a");
    CU_ASSERT_EQUAL(libxl__snapshot_store_load_one(gc, &st, "nope", &l),
                    ERROR_NOTFOUND);
    CU_ASSERT_EQUAL(libxl__snapshot_store_load_one(gc, &st, "../x", &l),
                    ERROR_NOTFOUND);

    rm_rf(state);
    free(state);
    GC_FREE;
}

/*
 * Ownership: a chain (b freezes the overlay a made) is no clash; a copy
 * of a record clashes on each part; a memory image clashes with any
 * role; an internal snapshot is its image and tag.
 */
void test_store__ownership(void)
{
    GC_INIT(NULL);
    libxl__snapshot_tree t;
    libxl__snapshot_clash *c;
    libxlsnap_domain_snapshot copy, *a;
    libxlsnap_disk_snapshot d[2];

    build_tree(gc, &t);
    /* a1 froze a's overlay: a chain */
    libxl__snapshot_tree_find(&t, "a1")->disks[0].file =
        GCSTRDUP("/img/a.qcow2.ov");
    CU_ASSERT_EQUAL(libxl__snapshot_ownership(gc, &t, NULL, &c), 0);
    a = libxl__snapshot_tree_find(&t, "a");
    CU_ASSERT_EQUAL(libxl__snapshot_ownership(gc, &t, a, &c), 0);
    CU_ASSERT_EQUAL(libxl__snapshot_claim(gc, &t, a), 0);

    /* a copy of a under another name: its frozen image and overlay */
    copy = *a;
    copy.name = (char *)"copy";
    copy.memory = NULL;
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_ownership(gc, &t, &copy, &c), 2);
    CU_ASSERT_STRING_EQUAL(c[0].name, "copy");
    CU_ASSERT_STRING_EQUAL(c[0].owner, "a");
    CU_ASSERT_EQUAL(libxl__snapshot_claim(gc, &t, &copy), ERROR_INVAL);
    libxl__snapshot_tree_add(gc, &t, &copy);
    CU_ASSERT_EQUAL(libxl__snapshot_ownership(gc, &t, NULL, &c), 2);
    /* asked about a, the tree's copy answers */
    CU_ASSERT_EQUAL(libxl__snapshot_ownership(gc, &t,
                        libxl__snapshot_tree_find(&t, "a"), &c), 2);
    CU_ASSERT_STRING_EQUAL(c[0].owner, "copy");
    libxl__snapshot_tree_remove(gc, &t, "copy");

    /* a memory image that is b's overlay, in any role */
    memset(&copy, 0, sizeof(copy));
    copy.name = (char *)"m";
    copy.memory = (char *)"/img/b.qcow2.ov";
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_ownership(gc, &t, &copy, &c), 1);
    CU_ASSERT_STRING_EQUAL(c[0].owner, "b");
    CU_ASSERT_PTR_NOT_NULL(strstr(c[0].owner_what, "overlay"));

    /* internal snapshots: the same image, other tags are no clash */
    memset(d, 0, sizeof(d));
    d[0].vdev = d[1].vdev = (char *)"xvda";
    d[0].type = d[1].type = LIBXLSNAP_DISK_SNAPSHOT_TYPE_INTERNAL;
    d[0].file = d[1].file = (char *)"/img/root.qcow2";   /* root froze it */
    d[0].tag = (char *)"i1";
    d[1].tag = (char *)"i2";
    copy.memory = NULL;
    copy.name = (char *)"i1";
    copy.disks = &d[0];
    copy.num_disks = 1;
    libxl__snapshot_tree_add(gc, &t, &copy);
    copy.name = (char *)"i2";
    copy.disks = &d[1];
    CU_ASSERT_EQUAL(libxl__snapshot_ownership(gc, &t, &copy, &c), 0);
    d[1].tag = (char *)"i1";
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_ownership(gc, &t, &copy, &c), 1);
    CU_ASSERT_STRING_EQUAL(c[0].owner, "i1");

    /* LVM: the volume beside the origin (i1 in the tree made LVM) */
    a = libxl__snapshot_tree_find(&t, "i1");
    a->disks[0].type = d[1].type = LIBXLSNAP_DISK_SNAPSHOT_TYPE_LVM;
    a->disks[0].file = (char *)"/dev/vg0/lv0";
    d[1].file = (char *)"/dev/vg0/lv1";
    a->disks[0].tag = d[1].tag = (char *)"snap";
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_ownership(gc, &t, &copy, &c), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(c[0].what, "/dev/vg0/snap"));
    GC_FREE;
}

/* What fixup sets aside is kept for snapshot-check: loops, orphans. */
void test_store__tree_damage(void)
{
    GC_INIT(NULL);
    char *state = new_state_dir();
    libxl__snapshot_store st;
    libxl__snapshot_tree t, l;

    build_tree(gc, &t);
    CU_ASSERT_EQUAL(t.num_damage, 0);
    libxl__snapshot_tree_find(&t, "root")->parent = GCSTRDUP("root");
    libxl__snapshot_tree_fixup(gc, &t);
    CU_ASSERT_EQUAL_FATAL(t.num_damage, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(t.damage[0], "its own parent"));
    CU_ASSERT_PTR_NULL(libxl__snapshot_tree_find(&t, "root")->parent);

    libxl__snapshot_tree_find(&t, "root")->parent = GCSTRDUP("a1");
    libxl__snapshot_tree_fixup(gc, &t);       /* root -> a1 -> a -> root */
    CU_ASSERT_EQUAL_FATAL(t.num_damage, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(t.damage[1], "make a loop"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t.damage[1], "a1"));

    libxl__snapshot_tree_find(&t, "b")->parent = GCSTRDUP("nope");
    libxl__snapshot_tree_fixup(gc, &t);
    CU_ASSERT_EQUAL_FATAL(t.num_damage, 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(t.damage[2], "'nope' has no record"));
    libxl__snapshot_tree_fixup(gc, &t);       /* set aside once */
    CU_ASSERT_EQUAL(t.num_damage, 3);

    /* load_check: a corrupt record is damage, not a failure */
    open_store(gc, state, &st);
    build_tree(gc, &t);
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_save(gc, &st, &t), 0);
    write_text(libxl__snapshot_record_path(gc, &st, "a"), "{");
    write_text(GCSPRINTF("%s/x.tmp", st.dir), "");
    CU_ASSERT_EQUAL(libxl__snapshot_store_load(gc, &st, &l), ERROR_INVAL);
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_trylock(gc, &st, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_load_check(gc, &st, &l), 0);
    CU_ASSERT_EQUAL(l.num_snaps, 3);
    CU_ASSERT_EQUAL_FATAL(l.num_damage, 2);   /* a corrupt, a1's parent */
    CU_ASSERT_PTR_NOT_NULL(strstr(l.damage[0], "corrupt snapshot record"));
    CU_ASSERT_TRUE(libxl__snapshot_store_owns(gc, &l,
                       "snapshotdata-a.libxl-json"));
    CU_ASSERT_TRUE(libxl__file_exists(GCSPRINTF("%s/x.tmp", st.dir)));
    libxl__snapshot_store_unlock(&st);

    rm_rf(state);
    free(state);
    GC_FREE;
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */

/* --backing-chain info of a chain, top first (gc) */
static yajl_val chain_of(libxl__gc *gc, const char *const *files)
{
    yajl_val v = libxl__json_parse(gc, "[]");
    int i;

    for (i = 0; files[i]; i++) {
        yajl_val img = libxl__json_append_object(gc, v);
        libxl__json_add_string(gc, &img, "filename", files[i]);
    }
    return v;
}

/*
 * What nothing needs any more, from the chains: each record's image
 * and each active image probed once, then the images of from[] that
 * exist; below an image of from[], what no record, active chain nor
 * the config needs, down to the first that is needed; nothing when a
 * needed chain did not open; an image of from[] that did not open is
 * passed over.
 */
/*
 * The domain record's image for a disk applies while the config names
 * the image it was set under: kept through a save and a load; a config
 * pointed at another image wins; an entry set with no config file (a
 * running domain known without one) applies whatever the config says.
 */
void test_store__record_active(void)
{
    GC_INIT(NULL);
    char *state = new_state_dir();
    libxl__snapshot_store st;
    libxl__snapshot_tree t, l;
    libxl__domain_config cfg, nofile;
    libxl_device_disk dk[2], other;
    const libxl__active_disk *a;

    memset(&t, 0, sizeof(t));
    memset(&cfg, 0, sizeof(cfg));
    libxl_device_disk_init(&dk[0]);
    libxl_device_disk_init(&dk[1]);
    dk[0].vdev = "xvda";
    dk[0].pdev_path = "/img/a.qcow2";
    dk[1].vdev = "xvdb";
    dk[1].pdev_path = "/img/b.raw";
    cfg.file = "/etc/xen/vm1.cfg";
    cfg.disks = dk;
    cfg.num_disks = 2;
    nofile = cfg;
    nofile.file = NULL;
    t.dom.name = "vm1";
    libxl__domain_record_set_disk(gc, &t.dom, &cfg, "xvdb",
                                  "/img/b.s1.qcow2", LIBXL_DISK_FORMAT_QCOW2);
    libxl__domain_record_set_disk(gc, &t.dom, &nofile, "xvda",
                                  "/img/a.s1.qcow2", LIBXL_DISK_FORMAT_QCOW2);
    open_store(gc, state, &st);
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_save(gc, &st, &t), 0);
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_load(gc, &st, &l), 0);

    a = libxl__domain_record_active(gc, &l.dom, &dk[1], false);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_STRING_EQUAL(a->path, "/img/b.s1.qcow2");
    CU_ASSERT_STRING_EQUAL(a->config, "/img/b.raw");
    other = dk[1];
    other.pdev_path = "/img/new.raw";
    CU_ASSERT_PTR_NULL(libxl__domain_record_active(gc, &l.dom, &other,
                                                   false));
    /* set with no config file: no config kept, so it applies */
    a = libxl__domain_record_disk(&l.dom, "xvda");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NULL(a->config);
    other = dk[0];
    other.pdev_path = "/img/elsewhere.qcow2";
    CU_ASSERT_PTR_NOT_NULL(libxl__domain_record_active(gc, &l.dom, &other,
                                                       false));
    /* no record */
    CU_ASSERT_PTR_NULL(libxl__domain_record_active(gc, NULL, &dk[0], false));

    rm_rf(state);
    free(state);
    GC_FREE;
}

void test_store__unused_images(void)
{
    GC_INIT(NULL);
    char *dir = new_state_dir();
    libxl__snapshot_tree t;
    libxl__domain_config cfg;
    libxl_device_disk dk;
    libxlsnap_domain_snapshot *i1;
    const char *gone = GCSPRINTF("%s/gone.qcow2", dir);
    const char *keep[] = { "/img/act.qcow2" };
    const char *from[] = { gone, "/img/missing.qcow2" };
    const char **images, **unused, *why;
    yajl_val chains[8];
    int n, num_need, k;

    write_text(gone, "");
    build_tree(gc, &t);
    /* an internal snapshot in root's image: probed once */
    add_snap(gc, &t, "i1", "root", 150, "/img/root.qcow2");
    i1 = libxl__snapshot_tree_find(&t, "i1");
    i1->disks[0].type = LIBXLSNAP_DISK_SNAPSHOT_TYPE_INTERNAL;
    n = libxl__snapshot_unused_probe(gc, &t, keep, 1, from, 2, &images,
                                     &num_need);
    /* root, b, a, a1 (in the tree's order), act; then gone (missing is
     * not there) */
    CU_ASSERT_EQUAL_FATAL(num_need, 5);
    CU_ASSERT_EQUAL_FATAL(n, 6);
    CU_ASSERT_STRING_EQUAL(images[4], "/img/act.qcow2");
    CU_ASSERT_STRING_EQUAL(images[5], gone);
    for (k = 0; k < num_need; k++) {
        const char *base = "/img/base.qcow2", *root = "/img/root.qcow2";
        const char *c[5] = { images[k], NULL };
        if (!strcmp(images[k], "/img/act.qcow2")) {
            const char *a[] = { images[k], "/img/a1.qcow2", "/img/a.qcow2",
                                root, base, NULL };
            chains[k] = chain_of(gc, a);
            continue;
        }
        if (!strcmp(images[k], "/img/a1.qcow2")) {
            const char *a[] = { images[k], "/img/a.qcow2", root, base,
                                NULL };
            chains[k] = chain_of(gc, a);
            continue;
        }
        if (strcmp(images[k], root)) c[1] = root;
        c[c[1] ? 2 : 1] = base;
        chains[k] = chain_of(gc, c);
    }
    {
        const char *g[] = { gone, "/img/x2.qcow2", "/img/x1.qcow2",
                            "/img/a1.qcow2", "/img/a.qcow2",
                            "/img/root.qcow2", "/img/base.qcow2", NULL };
        chains[5] = chain_of(gc, g);
    }
    memset(&cfg, 0, sizeof(cfg));

    /* below gone: x2, x1; a1 is needed, and all below it */
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_unused_images(gc, &cfg, images,
                              chains, num_need, n, false, &unused, &why), 2);
    CU_ASSERT_PTR_NULL(why);
    CU_ASSERT_STRING_EQUAL(unused[0], "/img/x2.qcow2");
    CU_ASSERT_STRING_EQUAL(unused[1], "/img/x1.qcow2");
    /* with itself, top first */
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_unused_images(gc, &cfg, images,
                              chains, num_need, n, true, &unused, &why), 3);
    CU_ASSERT_STRING_EQUAL(unused[0], gone);
    /* x1 is the config's image: it and what is below it stay */
    memset(&dk, 0, sizeof(dk));
    dk.pdev_path = (char *)"/img/x1.qcow2";
    cfg.disks = &dk;
    cfg.num_disks = 1;
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_unused_images(gc, &cfg, images,
                              chains, num_need, n, false, &unused, &why), 1);
    CU_ASSERT_STRING_EQUAL(unused[0], "/img/x2.qcow2");
    /* gone did not open: passed over */
    chains[5] = NULL;
    CU_ASSERT_EQUAL(libxl__snapshot_unused_images(gc, &cfg, images,
                        chains, num_need, n, false, &unused, &why), 0);
    CU_ASSERT_PTR_NULL(why);
    /* a record's chain did not open: nothing, and which one */
    chains[5] = chains[4];
    chains[2] = NULL;
    CU_ASSERT_EQUAL(libxl__snapshot_unused_images(gc, &cfg, images,
                        chains, num_need, n, false, &unused, &why), 0);
    CU_ASSERT_PTR_EQUAL(why, images[2]);
    rm_rf(dir);
    free(dir);
    GC_FREE;
}

/*
 * The images block-copies pivoted a disk away from (copied_from): kept
 * through a save and a load, in order; a disk set anew keeps them (a
 * snapshot after the copy), a new disk has none.
 */
void test_store__copied_from_roundtrip(void)
{
    GC_INIT(NULL);
    char *state = new_state_dir();
    libxl__snapshot_store st;
    libxl__snapshot_tree t, l;
    libxl__active_disk *a;

    open_store(gc, state, &st);
    build_tree(gc, &t);
    a = libxl__domain_record_disk(&t.dom, "xvda");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->num_copied_from, 0);
    GCNEW_ARRAY(a->copied_from, 2);
    a->copied_from[a->num_copied_from++] = GCSTRDUP("/img/old1.qcow2");
    a->copied_from[a->num_copied_from++] = GCSTRDUP("/img/old2.qcow2");
    libxl__domain_record_set_disk(gc, &t.dom, NULL, "xvda", "/other/c.qcow2",
                                  LIBXL_DISK_FORMAT_QCOW2);
    libxl__domain_record_set_disk(gc, &t.dom, NULL, "xvdb", "/img/b.raw",
                                  LIBXL_DISK_FORMAT_RAW);
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_save(gc, &st, &t), 0);
    CU_ASSERT_EQUAL_FATAL(libxl__snapshot_store_load(gc, &st, &l), 0);
    a = libxl__domain_record_disk(&l.dom, "xvda");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_STRING_EQUAL(a->path, "/other/c.qcow2");
    CU_ASSERT_EQUAL_FATAL(a->num_copied_from, 2);
    CU_ASSERT_STRING_EQUAL(a->copied_from[0], "/img/old1.qcow2");
    CU_ASSERT_STRING_EQUAL(a->copied_from[1], "/img/old2.qcow2");
    a = libxl__domain_record_disk(&l.dom, "xvdb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->num_copied_from, 0);
    rm_rf(state);
    free(state);
    GC_FREE;
}
