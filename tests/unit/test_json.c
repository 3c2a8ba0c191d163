/*
 * test_json.c - snapshot records <-> libxl-json, yajl helpers, names
 *
 * The gc has no ctx (LOG is then silent): these are pure functions.
 */
#include <CUnit/CUnit.h>
#include <limits.h>

#include "libxl_snapshot_internal.h"

/* A record with every field set, two disks. */
static void full_record(libxlsnap_domain_snapshot *s)
{
    libxlsnap_domain_snapshot_init(s);
    s->name = strdup("before-upgrade");
    s->description = strdup("a \"quoted\" description\nwith a newline\t/");
    s->creation_time = 1795456355;
    s->creation_nsec = 123456789;
    s->parent = strdup("s0");
    s->num_children = 2;
    s->children = calloc(2, sizeof(*s->children));
    s->children[0] = strdup("a");
    s->children[1] = strdup("b");
    s->current = true;
    s->state = LIBXLSNAP_DOMAIN_STATE_PAUSED;
    s->memory = strdup("/var/lib/xen/snapshots/vm1.mem");
    s->domain_name = strdup("vm1");
    CU_ASSERT_EQUAL_FATAL(libxl_uuid_from_string(&s->domain_uuid,
                              "5f0c8a4e-1b2d-4c3e-9f00-aabbccddeeff"), 0);
    s->num_disks = 2;
    s->disks = calloc(2, sizeof(*s->disks));
    libxlsnap_disk_snapshot_init(&s->disks[0]);
    s->disks[0].vdev = strdup("xvda");
    s->disks[0].type = LIBXLSNAP_DISK_SNAPSHOT_TYPE_INTERNAL;
    s->disks[0].backend = LIBXL_DISK_BACKEND_QDISK;
    s->disks[0].format = LIBXL_DISK_FORMAT_QCOW2;
    s->disks[0].file = strdup("/abs/img.qcow2");
    s->disks[0].tag = strdup("before-upgrade");
    libxlsnap_disk_snapshot_init(&s->disks[1]);
    s->disks[1].vdev = strdup("xvdb");
    s->disks[1].type = LIBXLSNAP_DISK_SNAPSHOT_TYPE_EXTERNAL;
    s->disks[1].backend = LIBXL_DISK_BACKEND_PHY;
    s->disks[1].format = LIBXL_DISK_FORMAT_RAW;
    s->disks[1].file = strdup("/abs/data.raw");
    s->disks[1].overlay = strdup("/abs/data.before-upgrade.qcow2");
}

static void assert_str_eq(const char *a, const char *b)
{
    if (!a || !b) {
        CU_ASSERT_PTR_EQUAL(a, b);
    } else {
        CU_ASSERT_STRING_EQUAL(a, b);
    }
}

static void assert_snapshot_eq(const libxlsnap_domain_snapshot *a,
                               const libxlsnap_domain_snapshot *b)
{
    int i;

    assert_str_eq(a->name, b->name);
    assert_str_eq(a->description, b->description);
    CU_ASSERT_EQUAL(a->creation_time, b->creation_time);
    CU_ASSERT_EQUAL(a->creation_nsec, b->creation_nsec);
    assert_str_eq(a->parent, b->parent);
    CU_ASSERT_EQUAL_FATAL(a->num_children, b->num_children);
    for (i = 0; i < a->num_children; i++)
        assert_str_eq(a->children[i], b->children[i]);
    CU_ASSERT_EQUAL(a->current, b->current);
    CU_ASSERT_EQUAL(a->state, b->state);
    assert_str_eq(a->memory, b->memory);
    assert_str_eq(a->domain_name, b->domain_name);
    CU_ASSERT_EQUAL(libxl_uuid_compare(&a->domain_uuid, &b->domain_uuid), 0);
    CU_ASSERT_EQUAL_FATAL(a->num_disks, b->num_disks);
    for (i = 0; i < a->num_disks; i++) {
        const libxlsnap_disk_snapshot *x = &a->disks[i], *y = &b->disks[i];
        assert_str_eq(x->vdev, y->vdev);
        CU_ASSERT_EQUAL(x->type, y->type);
        CU_ASSERT_EQUAL(x->backend, y->backend);
        CU_ASSERT_EQUAL(x->format, y->format);
        assert_str_eq(x->file, y->file);
        assert_str_eq(x->overlay, y->overlay);
        assert_str_eq(x->tag, y->tag);
    }
}

void test_json__record_roundtrip(void)
{
    libxlsnap_domain_snapshot s, back;
    char *j1, *j2;

    full_record(&s);
    j1 = libxlsnap_domain_snapshot_to_json(NULL, &s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j1);

    CU_ASSERT_EQUAL_FATAL(libxlsnap_domain_snapshot_from_json(NULL, &back, j1), 0);
    assert_snapshot_eq(&s, &back);

    j2 = libxlsnap_domain_snapshot_to_json(NULL, &back);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j2);
    CU_ASSERT_STRING_EQUAL(j1, j2);

    /* the documented spelling of each field */
    CU_ASSERT_PTR_NOT_NULL(strstr(j1, "\"name\": \"before-upgrade\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(j1, "\"creation_time\": 1795456355"));
    CU_ASSERT_PTR_NOT_NULL(strstr(j1, "\"state\": \"paused\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(j1, "\"current\": true"));
    CU_ASSERT_PTR_NOT_NULL(strstr(j1, "\"backend\": \"qdisk\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(j1, "\"format\": \"qcow2\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(j1, "\"type\": \"external\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(j1,
        "\"domain_uuid\": \"5f0c8a4e-1b2d-4c3e-9f00-aabbccddeeff\""));
    /* beautified with four spaces, keys in the documented order */
    CU_ASSERT_EQUAL(strncmp(j1, "{\n    \"name\": ", 14), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(j1, "\"parent\""));
    CU_ASSERT_TRUE(strstr(j1, "\"name\"") < strstr(j1, "\"description\""));
    CU_ASSERT_TRUE(strstr(j1, "\"description\"") <
                   strstr(j1, "\"creation_time\""));
    CU_ASSERT_TRUE(strstr(j1, "\"parent\"") < strstr(j1, "\"children\""));
    CU_ASSERT_TRUE(strstr(j1, "\"domain_uuid\"") < strstr(j1, "\"disks\""));

    free(j1);
    free(j2);
    libxlsnap_domain_snapshot_dispose(&back);
    libxlsnap_domain_snapshot_dispose(&s);
    /* dispose re-inits: a second one is harmless */
    libxlsnap_domain_snapshot_dispose(&s);
    CU_ASSERT_PTR_NULL(s.name);
    CU_ASSERT_EQUAL(s.num_disks, 0);
}

void test_json__empty_keys_omitted(void)
{
    libxlsnap_domain_snapshot s, back;
    char *j;

    libxlsnap_domain_snapshot_init(&s);
    s.name = strdup("bare");
    s.description = strdup("");
    j = libxlsnap_domain_snapshot_to_json(NULL, &s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_PTR_NOT_NULL(strstr(j, "\"name\": \"bare\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(j, "\"disks\""));
    CU_ASSERT_PTR_NULL(strstr(j, "\"description\""));
    CU_ASSERT_PTR_NULL(strstr(j, "\"parent\""));
    CU_ASSERT_PTR_NULL(strstr(j, "\"children\""));
    CU_ASSERT_PTR_NULL(strstr(j, "\"memory\""));
    CU_ASSERT_PTR_NULL(strstr(j, "\"domain_uuid\""));

    CU_ASSERT_EQUAL_FATAL(libxlsnap_domain_snapshot_from_json(NULL, &back, j), 0);
    CU_ASSERT_STRING_EQUAL(back.name, "bare");
    CU_ASSERT_PTR_NULL(back.parent);
    CU_ASSERT_PTR_NULL(back.description);
    CU_ASSERT_EQUAL(back.num_disks, 0);
    CU_ASSERT_TRUE(libxl_uuid_is_nil(&back.domain_uuid));
    free(j);
    libxlsnap_domain_snapshot_dispose(&back);
    libxlsnap_domain_snapshot_dispose(&s);
}

void test_json__name_check(void)
{
    static const char *const bad[] = {
        "../x", "a/b", "", ".hidden", "-rf", "a,b", "x\n", "..", ".",
        "a..b", "tab\there", "del\x7f", "/abs",
        /* digits only: qemu-img would take it for a snapshot ID */
        "1795456355", "1",
        /* blanks: names are table cells and file name parts */
        "snap 1", " x",
    };
    static const char *const good[] = {
        "before-upgrade", "v1.2_x", "20261123-193000", "a-",
        "x.y", "1a",
    };
    char longname[202];
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT_EQUAL(libxlsnap_name_check(bad[i]), ERROR_INVAL);
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        CU_ASSERT_EQUAL(libxlsnap_name_check(good[i]), 0);
    CU_ASSERT_EQUAL(libxlsnap_name_check(NULL), ERROR_INVAL);

    memset(longname, 'n', sizeof(longname));
    longname[201] = 0;                /* 201 bytes */
    CU_ASSERT_EQUAL(libxlsnap_name_check(longname), ERROR_INVAL);
    longname[200] = 0;                /* 200 bytes: the limit */
    CU_ASSERT_EQUAL(libxlsnap_name_check(longname), 0);
}

void test_json__parse_rejects_invalid(void)
{
    static const char *const bad[] = {
        "",
        "not json",
        "{\"name\": \"x\"",                          /* truncated */
        "{\"name\": \"x\"} {}",                      /* trailing value */
        "[\"name\", \"x\"]",                         /* not an object */
        "{}",                                        /* no name */
        "{\"name\": 7}",
        "{\"name\": \"../x\"}",
        "{\"name\": \"\"}",
        "{\"name\": \"x\", \"disks\": [{\"type\": \"internal\"}]}",
        "{\"name\": \"x\", \"disks\": [{\"vdev\": \"\"}]}",
        "{\"name\": \"x\", \"disks\": [42]}",
        "{\"name\": \"x\", \"disks\": {}}",
        "{\"name\": \"x\", \"disks\": [{\"vdev\": \"xvda\","
            " \"type\": \"sideways\"}]}",
        "{\"name\": \"x\", \"disks\": [{\"vdev\": \"xvda\","
            " \"format\": \"floppy\"}]}",
        "{\"name\": \"x\", \"disks\": [{\"vdev\": \"xvda\","
            " \"backend\": \"cloud\"}]}",
        "{\"name\": \"x\", \"disks\": [{\"vdev\": \"xvda\", \"file\": 1}]}",
        "{\"name\": \"x\", \"state\": \"dancing\"}",
        "{\"name\": \"x\", \"state\": 1}",
        "{\"name\": \"x\", \"creation_time\": \"1\"}",
        "{\"name\": \"x\", \"creation_time\": -1}",
        "{\"name\": \"x\", \"creation_time\": 1.5}",
        "{\"name\": \"x\", \"creation_nsec\": 1000000000}",
        "{\"name\": \"x\", \"creation_nsec\": -1}",
        "{\"name\": \"x\", \"current\": \"yes\"}",
        "{\"name\": \"x\", \"parent\": []}",
        "{\"name\": \"x\", \"children\": [1]}",
        "{\"name\": \"x\", \"children\": \"a\"}",
        "{\"name\": \"x\", \"domain_uuid\": \"not-a-uuid\"}",
        "{\"name\": \"x\", \"description\": \"nul\\u0000inside\"}",
    };
    libxlsnap_domain_snapshot s;
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = libxlsnap_domain_snapshot_from_json(NULL, &s, bad[i]);
        if (rc != ERROR_INVAL)
            fprintf(stderr, "accepted or wrong rc %d: %s\n", rc, bad[i]);
        CU_ASSERT_EQUAL(rc, ERROR_INVAL);
        /* nothing left for the caller to free */
        CU_ASSERT_PTR_NULL(s.name);
        CU_ASSERT_PTR_NULL(s.disks);
    }
}

void test_json__parse_lenient_where_documented(void)
{
    /* unknown keys (a later version's) and nulls are fine */
    const char *rec =
        "{\"name\": \"fwd\", \"future\": {\"x\": [1, 2]},"
        " \"parent\": null, \"creation_time\": 18446744073709551615,"
        " \"state\": \"running\","
        " \"disks\": [{\"vdev\": \"xvda\", \"type\": \"no\","
        " \"new_disk_key\": true}]}";
    libxlsnap_domain_snapshot s;

    CU_ASSERT_EQUAL_FATAL(libxlsnap_domain_snapshot_from_json(NULL, &s, rec), 0);
    CU_ASSERT_STRING_EQUAL(s.name, "fwd");
    CU_ASSERT_PTR_NULL(s.parent);
    CU_ASSERT_EQUAL(s.creation_time, UINT64_MAX);
    CU_ASSERT_EQUAL(s.state, LIBXLSNAP_DOMAIN_STATE_RUNNING);
    CU_ASSERT_EQUAL_FATAL(s.num_disks, 1);
    CU_ASSERT_STRING_EQUAL(s.disks[0].vdev, "xvda");
    CU_ASSERT_EQUAL(s.disks[0].type, LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO);
    CU_ASSERT_EQUAL(s.disks[0].format, LIBXL_DISK_FORMAT_UNKNOWN);
    libxlsnap_domain_snapshot_dispose(&s);
}

void test_json__parse_into_gc(void)
{
    GC_INIT(NULL);
    libxlsnap_domain_snapshot s;
    yajl_val v = libxl__json_parse(gc,
        "{\"name\": \"g\", \"disks\": [{\"vdev\": \"hda\"}]}");

    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL_FATAL(libxl__domain_snapshot_parse_json(gc, v, &s), 0);
    CU_ASSERT_STRING_EQUAL(s.name, "g");
    CU_ASSERT_EQUAL_FATAL(s.num_disks, 1);
    CU_ASSERT_STRING_EQUAL(s.disks[0].vdev, "hda");
    /* NOGC: malloc'ed, the caller disposes */
    CU_ASSERT_EQUAL_FATAL(libxl__domain_snapshot_parse_json(NOGC, v, &s), 0);
    CU_ASSERT_STRING_EQUAL(s.name, "g");
    libxlsnap_domain_snapshot_dispose(&s);
    /* an invalid record leaves nothing behind, with either gc */
    v = libxl__json_parse(gc, "{\"name\": \"g\", \"disks\": [{}]}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(libxl__domain_snapshot_parse_json(NOGC, v, &s),
                    ERROR_INVAL);
    CU_ASSERT_PTR_NULL(s.name);
    CU_ASSERT_EQUAL(libxl__domain_snapshot_parse_json(gc, v, &s),
                    ERROR_INVAL);
    CU_ASSERT_PTR_NULL(s.disks);
    GC_FREE;
}

/* The builder: what it makes serialises exactly, and parses back. */
void test_json__builder_strings(void)
{
    GC_INIT(NULL);
    const char *nasty = "a\"b\\c\nd\x01\x1f\t/\x7f";
    const char *utf8 = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
    yajl_val o = NULL, back;
    char *t;

    libxl__json_add_string(gc, &o, "s", nasty);
    t = libxl__json_to_string(gc, o);
    CU_ASSERT_STRING_EQUAL(t,
        "{\"s\":\"a\\\"b\\\\c\\nd\\u0001\\u001F\\t/\x7f\"}");
    back = libxl__json_parse(gc, t);
    CU_ASSERT_STRING_EQUAL(libxl__json_get_string(back, "s"), nasty);

    /* quotes and backslashes in keys are escaped too */
    o = NULL;
    libxl__json_add_string(gc, &o, "k\"\\", "v");
    t = libxl__json_to_string(gc, o);
    CU_ASSERT_STRING_EQUAL(t, "{\"k\\\"\\\\\":\"v\"}");
    back = libxl__json_parse(gc, t);
    CU_ASSERT_STRING_EQUAL(libxl__json_get_string(back, "k\"\\"), "v");

    /* UTF-8 goes through as it is, and stays valid */
    o = NULL;
    libxl__json_add_string(gc, &o, "u", utf8);
    t = libxl__json_to_string(gc, o);
    CU_ASSERT_STRING_EQUAL(t, GCSPRINTF("{\"u\":\"%s\"}", utf8));
    CU_ASSERT(libxl__utf8_valid(t));
    back = libxl__json_parse(gc, t);
    CU_ASSERT_STRING_EQUAL(libxl__json_get_string(back, "u"), utf8);

    /* a JSON-looking value is a string, not JSON: no injection */
    o = NULL;
    libxl__json_add_string(gc, &o, "node-name", "x\", \"y\": \"z");
    t = libxl__json_to_string(gc, o);
    back = libxl__json_parse(gc, t);
    CU_ASSERT_EQUAL(back->u.object.len, 1);
    CU_ASSERT_STRING_EQUAL(libxl__json_get_string(back, "node-name"),
                           "x\", \"y\": \"z");

    /* the string is copied: the caller's buffer may change */
    {
        char buf[] = "before";
        o = NULL;
        libxl__json_add_string(gc, &o, "b", buf);
        strcpy(buf, "after!");
        CU_ASSERT_STRING_EQUAL(libxl__json_to_string(gc, o),
                               "{\"b\":\"before\"}");
    }
    GC_FREE;
}

void test_json__builder_scalars(void)
{
    GC_INIT(NULL);
    yajl_val o = NULL, back;
    char *t;

    libxl__json_add_integer(gc, &o, "zero", 0);
    libxl__json_add_integer(gc, &o, "neg", -42);
    libxl__json_add_integer(gc, &o, "min", LLONG_MIN);
    libxl__json_add_uint64(gc, &o, "big", 1099511627776ULL);
    libxl__json_add_uint64(gc, &o, "max", UINT64_MAX);
    libxl__json_add_bool(gc, &o, "t", true);
    libxl__json_add_bool(gc, &o, "f", false);
    libxl__json_add_string(gc, &o, "nulls", NULL);
    libxl__json_add(gc, &o, "nullv", NULL);
    libxl__json_add(gc, &o, "null", libxl__json_new_null(gc));
    t = libxl__json_to_string(gc, o);
    CU_ASSERT_STRING_EQUAL(t,
        "{\"zero\":0,\"neg\":-42,\"min\":-9223372036854775808,"
        "\"big\":1099511627776,\"max\":18446744073709551615,"
        "\"t\":true,\"f\":false,\"nulls\":null,\"nullv\":null,"
        "\"null\":null}");
    back = libxl__json_parse(gc, t);
    CU_ASSERT_EQUAL(libxl__json_get_integer(back, "neg", 0), -42);
    CU_ASSERT_EQUAL(libxl__json_get_integer(back, "min", 0), LLONG_MIN);
    CU_ASSERT_EQUAL(libxl__json_get_integer(back, "big", 0),
                    1099511627776LL);
    CU_ASSERT_TRUE(libxl__json_get_bool(back, "t", false));
    CU_ASSERT_FALSE(libxl__json_get_bool(back, "f", true));
    CU_ASSERT_TRUE(YAJL_IS_NULL(libxl__json_get(back, "nulls")));
    /* the nodes are read by the same accessors as parsed ones */
    CU_ASSERT_EQUAL(libxl__json_get_integer(o, "neg", 0), -42);
    CU_ASSERT_TRUE(YAJL_IS_INTEGER(libxl__json_get(o, "big")));
    CU_ASSERT_FALSE(YAJL_IS_INTEGER(libxl__json_get(o, "max")));
    CU_ASSERT_STRING_EQUAL(YAJL_GET_NUMBER(libxl__json_get(o, "max")),
                           "18446744073709551615");
    GC_FREE;
}

void test_json__builder_nested(void)
{
    GC_INIT(NULL);
    yajl_val args = NULL, acts, act, data, list, empty = NULL;
    char *t;
    int i;

    /* nothing added: no object at all (a command without arguments) */
    CU_ASSERT_PTR_NULL(empty);
    empty = libxl__json_new_object(gc);
    CU_ASSERT_STRING_EQUAL(libxl__json_to_string(gc, empty), "{}");

    /* a QMP transaction, as snapshot create builds it */
    acts = libxl__json_add_array(gc, &args, "actions");
    for (i = 0; i < 2; i++) {
        act = libxl__json_append_object(gc, acts);
        libxl__json_add_string(gc, &act, "type", "blockdev-snapshot-sync");
        data = libxl__json_add_object(gc, &act, "data");
        libxl__json_add_string(gc, &data, "node-name",
                               i ? "xvdb-qcow2" : "xvda-qcow2");
        libxl__json_add_bool(gc, &data, "persistent", true);
    }
    list = libxl__json_add_array(gc, &args, "then");
    libxl__json_append_string(gc, list, "s1");
    libxl__json_append_string(gc, list, NULL);
    libxl__json_append(gc, list, libxl__json_new_integer(gc, 7));
    libxl__json_append(gc, list, libxl__json_new_array(gc));
    libxl__json_add_array(gc, &args, "none");
    t = libxl__json_to_string(gc, args);
    CU_ASSERT_STRING_EQUAL(t,
        "{\"actions\":["
        "{\"type\":\"blockdev-snapshot-sync\",\"data\":"
        "{\"node-name\":\"xvda-qcow2\",\"persistent\":true}},"
        "{\"type\":\"blockdev-snapshot-sync\",\"data\":"
        "{\"node-name\":\"xvdb-qcow2\",\"persistent\":true}}],"
        "\"then\":[\"s1\",null,7,[]],\"none\":[]}");
    /* and it round-trips */
    CU_ASSERT_STRING_EQUAL(
        libxl__json_to_string(gc, libxl__json_parse(gc, t)), t);
    GC_FREE;
}

/* A parsed tree takes additions: the VHD chain completion adds to one. */
void test_json__builder_into_parsed(void)
{
    GC_INIT(NULL);
    yajl_val v = libxl__json_parse(gc, "{\"a\": 1, \"b\": [true]}");
    yajl_val b = libxl__json_get(v, "b");

    /* a parsed tree takes additions (the VHD chain completion) */
    libxl__json_add_string(gc, &v, "c", "x");
    libxl__json_append_string(gc, b, "y");
    CU_ASSERT_STRING_EQUAL(libxl__json_to_string(gc, v),
                           "{\"a\":1,\"b\":[true,\"y\"],\"c\":\"x\"}");
    GC_FREE;
}

void test_json__tree_helpers(void)
{
    GC_INIT(NULL);
    const char *path[] = { "a", "b", NULL };
    yajl_val v, n;
    char *s;

    v = libxl__json_parse(gc,
        "{\"s\": \"str\", \"i\": -42, \"big\": 123456789012,"
        " \"d\": 2.5, \"t\": true, \"f\": false, \"n\": null,"
        " \"a\": {\"b\": [1, \"two\", {}]}, \"dup\": 1, \"dup\": 2}");
    CU_ASSERT_TRUE_FATAL(YAJL_IS_OBJECT(v));

    CU_ASSERT_STRING_EQUAL(libxl__json_get_string(v, "s"), "str");
    CU_ASSERT_PTR_NULL(libxl__json_get_string(v, "i"));     /* wrong type */
    CU_ASSERT_PTR_NULL(libxl__json_get_string(v, "missing"));
    CU_ASSERT_EQUAL(libxl__json_get_integer(v, "i", 0), -42);
    CU_ASSERT_EQUAL(libxl__json_get_integer(v, "big", 0), 123456789012LL);
    CU_ASSERT_EQUAL(libxl__json_get_integer(v, "d", 7), 7);
    CU_ASSERT_EQUAL(libxl__json_get_integer(v, "s", 7), 7);
    CU_ASSERT_TRUE(YAJL_IS_DOUBLE(libxl__json_get(v, "d")));
    CU_ASSERT_EQUAL(libxl__json_get_bool(v, "t", false), true);
    CU_ASSERT_EQUAL(libxl__json_get_bool(v, "f", true), false);
    CU_ASSERT_EQUAL(libxl__json_get_bool(v, "n", true), true);
    CU_ASSERT_EQUAL(libxl__json_get_bool(v, "missing", false), false);
    CU_ASSERT_TRUE(YAJL_IS_NULL(libxl__json_get(v, "n")));
    CU_ASSERT_PTR_NULL(libxl__json_get(NULL, "s"));
    CU_ASSERT_PTR_NULL(libxl__json_get(libxl__json_get(v, "s"), "x"));
    /* a repeated key: the last one wins */
    CU_ASSERT_EQUAL(libxl__json_get_integer(v, "dup", 0), 2);

    /* the nodes are real yajl_val nodes: yajl's own lookup works */
    n = yajl_tree_get(v, path, yajl_t_array);
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_EQUAL(n->u.array.len, 3);
    CU_ASSERT_STRING_EQUAL(YAJL_GET_STRING(n->u.array.values[1]), "two");

    s = libxl__json_to_string(gc, libxl__json_get(v, "a"));
    CU_ASSERT_STRING_EQUAL(s, "{\"b\":[1,\"two\",{}]}");
    s = libxl__json_to_string(gc, v);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    /* to_string output parses to the same text again */
    CU_ASSERT_STRING_EQUAL(libxl__json_to_string(gc,
                                                 libxl__json_parse(gc, s)),
                           s);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"big\":123456789012"));
    GC_FREE;
}

void test_json__parse_large_and_deep(void)
{
    GC_INIT(NULL);
    char *text, *p;
    yajl_val v;
    int i;

    /* 5000 elements: exercises growth of the gc-owned arrays */
    text = libxl__gc_zalloc(gc, 5000 * 8 + 16);
    p = text;
    *p++ = '[';
    for (i = 0; i < 5000; i++)
        p += sprintf(p, "%s%d", i ? "," : "", i);
    strcpy(p, "]");
    v = libxl__json_parse(gc, text);
    CU_ASSERT_TRUE_FATAL(YAJL_IS_ARRAY(v));
    CU_ASSERT_EQUAL_FATAL(v->u.array.len, 5000);
    CU_ASSERT_EQUAL(YAJL_GET_INTEGER(v->u.array.values[4999]), 4999);

    /* nesting */
    text = libxl__gc_zalloc(gc, 2 * 200 + 1);
    memset(text, '[', 200);
    memset(text + 200, ']', 200);
    v = libxl__json_parse(gc, text);
    CU_ASSERT_TRUE_FATAL(YAJL_IS_ARRAY(v));
    for (i = 1; i < 200; i++) {
        CU_ASSERT_EQUAL_FATAL(v->u.array.len, 1);
        v = v->u.array.values[0];
    }
    CU_ASSERT_TRUE(YAJL_IS_ARRAY(v));
    CU_ASSERT_EQUAL(v->u.array.len, 0);

    /* unbalanced */
    text[399] = 0;
    CU_ASSERT_PTR_NULL(libxl__json_parse(gc, text));
    CU_ASSERT_PTR_NULL(libxl__json_parse(gc, NULL));
    GC_FREE;
}

void test_json__non_utf8_name_roundtrip(void)
{
    /*
     * New names must be UTF-8 (snapshot-create checks: QEMU drops QMP
     * commands that are not), but records with such names must load.
     */
    libxlsnap_domain_snapshot s, back;
    char *j;

    libxlsnap_domain_snapshot_init(&s);
    s.name = strdup("caf\xe9-\xff");
    CU_ASSERT_EQUAL_FATAL(libxlsnap_name_check(s.name), 0);
    CU_ASSERT_FALSE(libxl__utf8_valid(s.name));
    CU_ASSERT_TRUE(libxl__utf8_valid("caf\xc3\xa9"));
    CU_ASSERT_FALSE(libxl__utf8_valid("a\xc0\xaf" "b"));    /* overlong */
    CU_ASSERT_FALSE(libxl__utf8_valid("\xed\xa0\x80"));     /* surrogate */
    j = libxlsnap_domain_snapshot_to_json(NULL, &s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL_FATAL(libxlsnap_domain_snapshot_from_json(NULL, &back, j), 0);
    CU_ASSERT_STRING_EQUAL(back.name, s.name);
    free(j);
    libxlsnap_domain_snapshot_dispose(&back);
    libxlsnap_domain_snapshot_dispose(&s);
}

void test_json__deep_copy(void)
{
    libxlsnap_domain_snapshot s, c;
    libxlsnap_disk_snapshot d;

    full_record(&s);
    libxl__domain_snapshot_copy(&c, &s);
    assert_snapshot_eq(&s, &c);
    CU_ASSERT_PTR_NOT_EQUAL(c.name, s.name);
    CU_ASSERT_PTR_NOT_EQUAL(c.children, s.children);
    CU_ASSERT_PTR_NOT_EQUAL(c.children[0], s.children[0]);
    CU_ASSERT_PTR_NOT_EQUAL(c.disks, s.disks);
    CU_ASSERT_PTR_NOT_EQUAL(c.disks[0].file, s.disks[0].file);

    libxl__disk_snapshot_copy(&d, &s.disks[1]);
    /* the source goes away: the copies stand alone */
    libxlsnap_domain_snapshot_dispose(&s);
    CU_ASSERT_STRING_EQUAL(c.disks[1].overlay,
                           "/abs/data.before-upgrade.qcow2");
    CU_ASSERT_STRING_EQUAL(d.overlay, "/abs/data.before-upgrade.qcow2");
    CU_ASSERT_EQUAL(d.type, LIBXLSNAP_DISK_SNAPSHOT_TYPE_EXTERNAL);
    CU_ASSERT_PTR_NULL(d.tag);
    libxlsnap_disk_snapshot_dispose(&d);
    libxlsnap_domain_snapshot_dispose(&c);
}

void test_json__enum_strings(void)
{
    libxlsnap_disk_snapshot_type t = LIBXLSNAP_DISK_SNAPSHOT_TYPE_DEFAULT;

    CU_ASSERT_STRING_EQUAL(
        libxlsnap_disk_snapshot_type_to_string(LIBXLSNAP_DISK_SNAPSHOT_TYPE_DEFAULT),
        "default");
    CU_ASSERT_STRING_EQUAL(
        libxlsnap_disk_snapshot_type_to_string(LIBXLSNAP_DISK_SNAPSHOT_TYPE_NO),
        "no");
    CU_ASSERT_PTR_NULL(libxlsnap_disk_snapshot_type_to_string(99));
    CU_ASSERT_EQUAL(libxlsnap_disk_snapshot_type_from_string("external", &t), 0);
    CU_ASSERT_EQUAL(t, LIBXLSNAP_DISK_SNAPSHOT_TYPE_EXTERNAL);
    CU_ASSERT_EQUAL(libxlsnap_disk_snapshot_type_from_string("internal", &t), 0);
    CU_ASSERT_EQUAL(t, LIBXLSNAP_DISK_SNAPSHOT_TYPE_INTERNAL);
    CU_ASSERT_EQUAL(libxlsnap_disk_snapshot_type_from_string("bogus", &t),
                    ERROR_INVAL);
    CU_ASSERT_EQUAL(t, LIBXLSNAP_DISK_SNAPSHOT_TYPE_INTERNAL);  /* untouched */
    CU_ASSERT_EQUAL(libxlsnap_disk_snapshot_type_from_string(NULL, &t),
                    ERROR_INVAL);

    CU_ASSERT_STRING_EQUAL(libxlsnap_domain_state_to_string(
                               LIBXLSNAP_DOMAIN_STATE_SHUTOFF),
                           "shutoff");
    CU_ASSERT_STRING_EQUAL(libxlsnap_domain_state_to_string(
                               LIBXLSNAP_DOMAIN_STATE_RUNNING),
                           "running");
    CU_ASSERT_STRING_EQUAL(libxlsnap_domain_state_to_string(
                               LIBXLSNAP_DOMAIN_STATE_PAUSED),
                           "paused");
    CU_ASSERT_PTR_NULL(libxlsnap_domain_state_to_string(42));
}

void test_json__snapshot_domain_dispose(void)
{
    libxlsnap_domain *list = calloc(2, sizeof(*list));
    int i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(list);
    for (i = 0; i < 2; i++) {
        libxlsnap_domain_init(&list[i]);
        list[i].name = strdup("vm");
        list[i].config_file = strdup("/etc/xen/vm.cfg");
        list[i].num_disks = 1;
        list[i].disks = calloc(1, sizeof(*list[i].disks));
        libxl_device_disk_init(&list[i].disks[0]);
        list[i].disks[0].vdev = strdup("xvda");
        list[i].disks[0].pdev_path = strdup("/img.qcow2");
    }
    libxlsnap_domain_dispose(&list[0]);
    CU_ASSERT_PTR_NULL(list[0].name);
    CU_ASSERT_PTR_NULL(list[0].disks);
    CU_ASSERT_EQUAL(list[0].num_disks, 0);
    libxlsnap_domain_dispose(&list[0]);   /* twice is harmless */
    /* frees the rest (checked by the leak checker under ASan) */
    libxlsnap_domain_list_free(list, 2);
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
