/*
 * libxl_snapshot_json.c - snapshot records <-> libxl-json, yajl helpers
 *
 * Parsing builds the yajl_val tree directly from yajl's parser
 * callbacks, every node and string allocated from the caller's gc.
 * yajl_tree_parse would give a tree only yajl_tree_free can release,
 * and the gc can only free(); building it ourselves keeps the gc the
 * only owner and lets a tree live exactly as long as the operation.
 * The nodes are ordinary struct yajl_val_s, so YAJL_IS_* / YAJL_GET_*
 * and yajl_tree_get work on them.  Strings are not required to be
 * valid UTF-8 (the generator does not require it either), so any name
 * that libxlsnap_name_check accepts survives a round trip; a
 * string holding NUL is refused, as it could not be a C string.
 *
 * Other JSON (QMP arguments, journal entries) is built as a tree of
 * the same gc-owned nodes with libxl__json_add_* (as libxl's
 * libxl__qmp_param_add_*) and turned into text by libxl__json_to_string:
 * yajl_gen does every escape, so no caller quotes anything.
 *
 * A record is written with yajl_gen, beautified with four spaces as
 * libxl's generated *_to_json do.  Keys come in a fixed order and
 * keys whose value is NULL or empty are left out, except "name" and
 * "disks".  Reading is strict about what it knows (a known key of the
 * wrong type, an unknown enum value, a disk without vdev: ERROR_INVAL)
 * and ignores keys it does not know, so that records written by a
 * later version still load.
 */
#include "libxl_snapshot_internal.h"

#include <inttypes.h>
#include <limits.h>
#include <strings.h>

#include <yajl/yajl_parse.h>

/* ---------------------------------------------------------------- */
/* parsing into a gc-owned yajl tree */

typedef struct json_frame {
    yajl_val v;                       /* object or array being filled */
    size_t alloc;                     /* slots in keys/values */
} json_frame;

typedef struct json_builder {
    libxl__gc *gc;
    yajl_val root;
    json_frame *stack;
    int depth, alloc;
    char *key;                        /* pending key in the top object */
} json_builder;

static int json_add(json_builder *b, yajl_val v)
{
    libxl__gc *gc = b->gc;
    json_frame *f;
    yajl_val c;
    size_t i;

    if (!b->depth) {
        if (b->root) return 0;        /* a second top-level value */
        b->root = v;
        return 1;
    }
    f = &b->stack[b->depth - 1];
    c = f->v;
    if (c->type == yajl_t_object) {
        if (!b->key) return 0;
        /* A repeated key: the last one wins, as in most readers. */
        for (i = 0; i < c->u.object.len; i++) {
            if (!strcmp(c->u.object.keys[i], b->key)) {
                c->u.object.values[i] = v;
                b->key = NULL;
                return 1;
            }
        }
        if (c->u.object.len == f->alloc) {
            f->alloc = f->alloc ? f->alloc * 2 : 8;
            GCREALLOC_ARRAY(c->u.object.keys, f->alloc);
            GCREALLOC_ARRAY(c->u.object.values, f->alloc);
        }
        c->u.object.keys[c->u.object.len] = b->key;
        c->u.object.values[c->u.object.len] = v;
        c->u.object.len++;
        b->key = NULL;
    } else {
        if (c->u.array.len == f->alloc) {
            f->alloc = f->alloc ? f->alloc * 2 : 8;
            GCREALLOC_ARRAY(c->u.array.values, f->alloc);
        }
        c->u.array.values[c->u.array.len++] = v;
    }
    return 1;
}

static yajl_val json_node(json_builder *b, yajl_type type)
{
    libxl__gc *gc = b->gc;
    yajl_val v;

    GCNEW(v);
    v->type = type;
    return v;
}

static int json_push(json_builder *b, yajl_type type)
{
    libxl__gc *gc = b->gc;
    yajl_val v = json_node(b, type);

    if (!json_add(b, v)) return 0;
    if (b->depth == b->alloc) {
        b->alloc = b->alloc ? b->alloc * 2 : 8;
        GCREALLOC_ARRAY(b->stack, b->alloc);
    }
    b->stack[b->depth].v = v;
    b->stack[b->depth].alloc = 0;
    b->depth++;
    return 1;
}

static int json_cb_null(void *ctx)
{
    json_builder *b = ctx;
    return json_add(b, json_node(b, yajl_t_null));
}

static int json_cb_boolean(void *ctx, int val)
{
    json_builder *b = ctx;
    return json_add(b, json_node(b, val ? yajl_t_true : yajl_t_false));
}

static int json_cb_number(void *ctx, const char *s, size_t len)
{
    json_builder *b = ctx;
    libxl__gc *gc = b->gc;
    yajl_val v = json_node(b, yajl_t_number);
    char *end;

    v->u.number.r = libxl__gc_zalloc(gc, len + 1);
    memcpy(v->u.number.r, s, len);

    errno = 0;
    v->u.number.i = strtoll(v->u.number.r, &end, 10);
    if (!errno && !*end)
        v->u.number.flags |= YAJL_NUMBER_INT_VALID;
    errno = 0;
    v->u.number.d = strtod(v->u.number.r, &end);
    if (!errno && !*end)
        v->u.number.flags |= YAJL_NUMBER_DOUBLE_VALID;
    return json_add(b, v);
}

static char *json_strndup(libxl__gc *gc, const unsigned char *s, size_t len)
{
    char *p;

    if (memchr(s, 0, len)) return NULL;
    p = libxl__gc_zalloc(gc, len + 1);
    memcpy(p, s, len);
    return p;
}

static int json_cb_string(void *ctx, const unsigned char *s, size_t len)
{
    json_builder *b = ctx;
    yajl_val v = json_node(b, yajl_t_string);

    v->u.string = json_strndup(b->gc, s, len);
    if (!v->u.string) return 0;
    return json_add(b, v);
}

static int json_cb_start_map(void *ctx)
{
    return json_push(ctx, yajl_t_object);
}

static int json_cb_map_key(void *ctx, const unsigned char *s, size_t len)
{
    json_builder *b = ctx;

    b->key = json_strndup(b->gc, s, len);
    return b->key != NULL;
}

static int json_cb_end(void *ctx)
{
    json_builder *b = ctx;

    if (!b->depth) return 0;
    b->depth--;
    return 1;
}

static int json_cb_start_array(void *ctx)
{
    return json_push(ctx, yajl_t_array);
}

static const yajl_callbacks json_callbacks = {
    .yajl_null = json_cb_null,
    .yajl_boolean = json_cb_boolean,
    .yajl_number = json_cb_number,
    .yajl_string = json_cb_string,
    .yajl_start_map = json_cb_start_map,
    .yajl_map_key = json_cb_map_key,
    .yajl_end_map = json_cb_end,
    .yajl_start_array = json_cb_start_array,
    .yajl_end_array = json_cb_end,
};

yajl_val libxl__json_parse(libxl__gc *gc, const char *s)
{
    json_builder b;
    yajl_handle h;
    yajl_status st;
    size_t len;

    if (!s) return NULL;
    len = strlen(s);
    memset(&b, 0, sizeof(b));
    b.gc = gc;

    h = yajl_alloc(&json_callbacks, NULL, &b);
    if (!h) abort();
    yajl_config(h, yajl_dont_validate_strings, 1);
    st = yajl_parse(h, (const unsigned char *)s, len);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(h);
    if (st != yajl_status_ok) {
        unsigned char *msg = yajl_get_error(h, 0, (const unsigned char *)s,
                                            len);
        if (msg) {
            size_t n = strlen((char *)msg);
            while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
                msg[--n] = 0;
        }
        if (gc)
            LOG(DEBUG, "cannot parse JSON: %s",
                msg ? (const char *)msg : "unknown error");
        if (msg) yajl_free_error(h, msg);
        b.root = NULL;
    } else if (!b.root && gc) {
        LOG(DEBUG, "cannot parse JSON: no value");
    }
    yajl_free(h);
    return b.root;
}

/* ---------------------------------------------------------------- */
/* building a tree (QMP arguments, journal entries) */

static yajl_val json_new(libxl__gc *gc, yajl_type type)
{
    yajl_val v;

    GCNEW(v);
    v->type = type;
    return v;
}

yajl_val libxl__json_new_object(libxl__gc *gc)
{
    return json_new(gc, yajl_t_object);
}

yajl_val libxl__json_new_array(libxl__gc *gc)
{
    return json_new(gc, yajl_t_array);
}

yajl_val libxl__json_new_string(libxl__gc *gc, const char *s)
{
    yajl_val v;

    if (!s) return json_new(gc, yajl_t_null);
    v = json_new(gc, yajl_t_string);
    v->u.string = libxl__gc_strdup(gc, s);
    return v;
}

yajl_val libxl__json_new_integer(libxl__gc *gc, long long i)
{
    yajl_val v = json_new(gc, yajl_t_number);

    v->u.number.i = i;
    v->u.number.d = i;
    v->u.number.r = GCSPRINTF("%lld", i);
    v->u.number.flags = YAJL_NUMBER_INT_VALID | YAJL_NUMBER_DOUBLE_VALID;
    return v;
}

yajl_val libxl__json_new_uint64(libxl__gc *gc, uint64_t u)
{
    yajl_val v = json_new(gc, yajl_t_number);

    /* the text is what is sent: exact also above LLONG_MAX */
    v->u.number.r = GCSPRINTF("%"PRIu64, u);
    v->u.number.d = u;
    v->u.number.flags = YAJL_NUMBER_DOUBLE_VALID;
    if (u <= LLONG_MAX) {
        v->u.number.i = u;
        v->u.number.flags |= YAJL_NUMBER_INT_VALID;
    }
    return v;
}

yajl_val libxl__json_new_bool(libxl__gc *gc, bool b)
{
    return json_new(gc, b ? yajl_t_true : yajl_t_false);
}

yajl_val libxl__json_new_null(libxl__gc *gc)
{
    return json_new(gc, yajl_t_null);
}

void libxl__json_add(libxl__gc *gc, yajl_val *obj, const char *key,
                     yajl_val v)
{
    yajl_val o;
    size_t n;

    if (!*obj) *obj = libxl__json_new_object(gc);
    o = *obj;
    assert(o->type == yajl_t_object && key);
    n = o->u.object.len;
    /* keys are few: grow by one, as libxl's flexarray would by more */
    GCREALLOC_ARRAY(o->u.object.keys, n + 1);
    GCREALLOC_ARRAY(o->u.object.values, n + 1);
    o->u.object.keys[n] = libxl__gc_strdup(gc, key);
    o->u.object.values[n] = v ? v : libxl__json_new_null(gc);
    o->u.object.len = n + 1;
}

void libxl__json_add_string(libxl__gc *gc, yajl_val *obj, const char *key,
                            const char *s)
{
    libxl__json_add(gc, obj, key, libxl__json_new_string(gc, s));
}

void libxl__json_add_integer(libxl__gc *gc, yajl_val *obj, const char *key,
                             long long i)
{
    libxl__json_add(gc, obj, key, libxl__json_new_integer(gc, i));
}

void libxl__json_add_uint64(libxl__gc *gc, yajl_val *obj, const char *key,
                            uint64_t u)
{
    libxl__json_add(gc, obj, key, libxl__json_new_uint64(gc, u));
}

void libxl__json_add_bool(libxl__gc *gc, yajl_val *obj, const char *key,
                          bool b)
{
    libxl__json_add(gc, obj, key, libxl__json_new_bool(gc, b));
}

yajl_val libxl__json_add_object(libxl__gc *gc, yajl_val *obj,
                                const char *key)
{
    yajl_val v = libxl__json_new_object(gc);

    libxl__json_add(gc, obj, key, v);
    return v;
}

yajl_val libxl__json_add_array(libxl__gc *gc, yajl_val *obj,
                               const char *key)
{
    yajl_val v = libxl__json_new_array(gc);

    libxl__json_add(gc, obj, key, v);
    return v;
}

void libxl__json_append(libxl__gc *gc, yajl_val arr, yajl_val v)
{
    size_t n;

    assert(arr && arr->type == yajl_t_array);
    n = arr->u.array.len;
    GCREALLOC_ARRAY(arr->u.array.values, n + 1);
    arr->u.array.values[n] = v ? v : libxl__json_new_null(gc);
    arr->u.array.len = n + 1;
}

void libxl__json_append_string(libxl__gc *gc, yajl_val arr, const char *s)
{
    libxl__json_append(gc, arr, libxl__json_new_string(gc, s));
}

yajl_val libxl__json_append_object(libxl__gc *gc, yajl_val arr)
{
    yajl_val v = libxl__json_new_object(gc);

    libxl__json_append(gc, arr, v);
    return v;
}

/* ---------------------------------------------------------------- */
/* lookups */

yajl_val libxl__json_get(yajl_val v, const char *key)
{
    size_t i;

    if (!YAJL_IS_OBJECT(v) || !key) return NULL;
    for (i = 0; i < v->u.object.len; i++) {
        if (!strcmp(v->u.object.keys[i], key))
            return v->u.object.values[i];
    }
    return NULL;
}

const char *libxl__json_get_string(yajl_val v, const char *key)
{
    return YAJL_GET_STRING(libxl__json_get(v, key));
}

long long libxl__json_get_integer(yajl_val v, const char *key,
                                  long long dflt)
{
    yajl_val n = libxl__json_get(v, key);

    return YAJL_IS_INTEGER(n) ? YAJL_GET_INTEGER(n) : dflt;
}

bool libxl__json_get_bool(yajl_val v, const char *key, bool dflt)
{
    yajl_val n = libxl__json_get(v, key);

    if (YAJL_IS_TRUE(n)) return true;
    if (YAJL_IS_FALSE(n)) return false;
    return dflt;
}

/* ---------------------------------------------------------------- */
/* generating */

yajl_gen_status libxl__yajl_gen_str(yajl_gen hand, const char *s)
{
    return yajl_gen_string(hand, (const unsigned char *)s, strlen(s));
}

static yajl_gen_status gen_value(yajl_gen hand, yajl_val v)
{
    yajl_gen_status s;
    size_t i;
    char buf[64];

    if (!v) return yajl_gen_null(hand);
    switch (v->type) {
    case yajl_t_string:
        return libxl__yajl_gen_str(hand, v->u.string);
    case yajl_t_number:
        if (v->u.number.r)
            return yajl_gen_number(hand, v->u.number.r,
                                   strlen(v->u.number.r));
        if (v->u.number.flags & YAJL_NUMBER_INT_VALID)
            return yajl_gen_integer(hand, v->u.number.i);
        snprintf(buf, sizeof(buf), "%.17g", v->u.number.d);
        return yajl_gen_number(hand, buf, strlen(buf));
    case yajl_t_object:
        s = yajl_gen_map_open(hand);
        for (i = 0; !s && i < v->u.object.len; i++) {
            s = libxl__yajl_gen_str(hand, v->u.object.keys[i]);
            if (!s) s = gen_value(hand, v->u.object.values[i]);
        }
        return s ? s : yajl_gen_map_close(hand);
    case yajl_t_array:
        s = yajl_gen_array_open(hand);
        for (i = 0; !s && i < v->u.array.len; i++)
            s = gen_value(hand, v->u.array.values[i]);
        return s ? s : yajl_gen_array_close(hand);
    case yajl_t_true:
        return yajl_gen_bool(hand, 1);
    case yajl_t_false:
        return yajl_gen_bool(hand, 0);
    default:
        return yajl_gen_null(hand);
    }
}

char *libxl__json_to_string(libxl__gc *gc, yajl_val v)
{
    yajl_gen hand = yajl_gen_alloc(NULL);
    const unsigned char *buf;
    size_t len;
    char *r = NULL;

    if (!hand) abort();
    if (gen_value(hand, v) != yajl_gen_status_ok) {
        if (gc) LOG(ERROR, "cannot generate JSON");
        goto out;
    }
    if (yajl_gen_get_buf(hand, &buf, &len))
        goto out;
    r = libxl__gc_zalloc(gc, len + 1);
    memcpy(r, buf, len);
 out:
    yajl_gen_free(hand);
    return r;
}

yajl_gen_status libxl__yajl_gen_opt_str(yajl_gen hand, const char *key,
                                        const char *val)
{
    yajl_gen_status s;

    if (!val || !*val) return yajl_gen_status_ok;
    s = libxl__yajl_gen_str(hand, key);
    return s ? s : libxl__yajl_gen_str(hand, val);
}

static yajl_gen_status gen_disk(yajl_gen hand, const libxlsnap_disk_snapshot *d)
{
    yajl_gen_status s;
    const char *t;

    s = yajl_gen_map_open(hand);
    if (s) return s;

    s = libxl__yajl_gen_str(hand, "vdev");
    if (s) return s;
    s = d->vdev ? libxl__yajl_gen_str(hand, d->vdev) : yajl_gen_null(hand);
    if (s) return s;

    t = libxlsnap_disk_snapshot_type_to_string(d->type);
    if (t) {
        s = libxl__yajl_gen_opt_str(hand, "type", t);
        if (s) return s;
    }
    if (d->backend != LIBXL_DISK_BACKEND_UNKNOWN) {
        s = libxl__yajl_gen_opt_str(hand, "backend",
                        libxl_disk_backend_to_string(d->backend));
        if (s) return s;
    }
    if (d->format != LIBXL_DISK_FORMAT_UNKNOWN) {
        s = libxl__yajl_gen_opt_str(hand, "format",
                        libxl_disk_format_to_string(d->format));
        if (s) return s;
    }
    s = libxl__yajl_gen_opt_str(hand, "file", d->file);
    if (s) return s;
    s = libxl__yajl_gen_opt_str(hand, "overlay", d->overlay);
    if (s) return s;
    s = libxl__yajl_gen_opt_str(hand, "tag", d->tag);
    if (s) return s;
    /* list/get output only: records never hold it */
    s = libxl__yajl_gen_opt_str(hand, "problem", d->problem);
    if (s) return s;

    return yajl_gen_map_close(hand);
}

static yajl_gen_status gen_snapshot(yajl_gen hand,
                                    const libxlsnap_domain_snapshot *p)
{
    yajl_gen_status s;
    char buf[LIBXL_UUID_FMTLEN + 1];
    const char *state;
    int i;

    s = yajl_gen_map_open(hand);
    if (s) return s;

    s = libxl__yajl_gen_str(hand, "name");
    if (s) return s;
    s = p->name ? libxl__yajl_gen_str(hand, p->name) : yajl_gen_null(hand);
    if (s) return s;

    s = libxl__yajl_gen_opt_str(hand, "description", p->description);
    if (s) return s;

    s = libxl__yajl_gen_str(hand, "creation_time");
    if (s) return s;
    snprintf(buf, sizeof(buf), "%"PRIu64, p->creation_time);
    s = yajl_gen_number(hand, buf, strlen(buf));
    if (s) return s;
    if (p->creation_nsec) {
        s = libxl__yajl_gen_str(hand, "creation_nsec");
        if (s) return s;
        snprintf(buf, sizeof(buf), "%"PRIu32, p->creation_nsec);
        s = yajl_gen_number(hand, buf, strlen(buf));
        if (s) return s;
    }

    s = libxl__yajl_gen_opt_str(hand, "parent", p->parent);
    if (s) return s;

    if (p->num_children > 0 && p->children) {
        s = libxl__yajl_gen_str(hand, "children");
        if (s) return s;
        s = yajl_gen_array_open(hand);
        if (s) return s;
        for (i = 0; i < p->num_children; i++) {
            if (!p->children[i]) continue;
            s = libxl__yajl_gen_str(hand, p->children[i]);
            if (s) return s;
        }
        s = yajl_gen_array_close(hand);
        if (s) return s;
    }

    s = libxl__yajl_gen_str(hand, "current");
    if (s) return s;
    s = yajl_gen_bool(hand, p->current);
    if (s) return s;

    state = libxlsnap_domain_state_to_string(p->state);
    if (state) {
        s = libxl__yajl_gen_opt_str(hand, "state", state);
        if (s) return s;
    }

    s = libxl__yajl_gen_opt_str(hand, "memory", p->memory);
    if (s) return s;
    s = libxl__yajl_gen_opt_str(hand, "quiesce", p->quiesce);
    if (s) return s;
    s = libxl__yajl_gen_opt_str(hand, "domain_name", p->domain_name);
    if (s) return s;

    if (!libxl_uuid_is_nil(&p->domain_uuid)) {
        snprintf(buf, sizeof(buf), LIBXL_UUID_FMT,
                 LIBXL_UUID_BYTES(p->domain_uuid));
        s = libxl__yajl_gen_opt_str(hand, "domain_uuid", buf);
        if (s) return s;
    }

    s = libxl__yajl_gen_str(hand, "disks");
    if (s) return s;
    s = yajl_gen_array_open(hand);
    if (s) return s;
    for (i = 0; i < p->num_disks && p->disks; i++) {
        s = gen_disk(hand, &p->disks[i]);
        if (s) return s;
    }
    s = yajl_gen_array_close(hand);
    if (s) return s;

    return yajl_gen_map_close(hand);
}

int libxl__domain_snapshot_gen_json(yajl_gen hand,
                                    const libxlsnap_domain_snapshot *p)
{
    return gen_snapshot(hand, p) == yajl_gen_status_ok ? 0 : ERROR_FAIL;
}

/* A block job's state, as xl block-job --info --json prints it. */
int libxl__blockjob_info_gen_json(yajl_gen hand, const libxlsnap_blockjob_info *p)
{
    yajl_gen_status s;

#define GEN(x) do { s = (x); if (s) return ERROR_FAIL; } while (0)
    GEN(yajl_gen_map_open(hand));
    GEN(libxl__yajl_gen_opt_str(hand, "id", p->id));
    GEN(libxl__yajl_gen_opt_str(hand, "vdev", p->vdev));
    GEN(libxl__yajl_gen_opt_str(hand, "type",
                                libxlsnap_blockjob_type_to_string(p->type)));
    GEN(libxl__yajl_gen_opt_str(hand, "state",
                                libxlsnap_blockjob_state_to_string(p->state)));
    GEN(libxl__yajl_gen_str(hand, "live"));
    GEN(yajl_gen_bool(hand, p->live));
    GEN(libxl__yajl_gen_str(hand, "offset"));
    GEN(yajl_gen_integer(hand, (long long)p->offset));
    GEN(libxl__yajl_gen_str(hand, "len"));
    GEN(yajl_gen_integer(hand, (long long)p->len));
    GEN(libxl__yajl_gen_str(hand, "speed"));
    GEN(yajl_gen_integer(hand, (long long)p->speed));
    GEN(libxl__yajl_gen_opt_str(hand, "top", p->top));
    GEN(libxl__yajl_gen_opt_str(hand, "base", p->base));
    if (p->type == LIBXLSNAP_BLOCKJOB_TYPE_COPY) {
        /* a copy's top and base, by what they are to it */
        GEN(libxl__yajl_gen_opt_str(hand, "source", p->top));
        GEN(libxl__yajl_gen_opt_str(hand, "dest", p->base));
    }
    GEN(libxl__yajl_gen_opt_str(hand, "error", p->error));
    GEN(yajl_gen_map_close(hand));
#undef GEN
    return 0;
}

/* ---------------------------------------------------------------- */
/* reading a record */

/*
 * Optional string member: absent or null leaves *r NULL; a string is
 * copied with agc; anything else is an error.
 */
static int parse_opt_str(libxl__gc *gc, libxl__gc *agc, yajl_val v,
                         const char *key, const char *what, char **r)
{
    yajl_val n = libxl__json_get(v, key);

    *r = NULL;
    if (!n || YAJL_IS_NULL(n)) return 0;
    if (!YAJL_IS_STRING(n)) {
        LOG(ERROR, "%s: '%s' is not a string", what, key);
        return ERROR_INVAL;
    }
    *r = libxl__gc_strdup(agc, YAJL_GET_STRING(n));
    return 0;
}

/* Optional member read as a string (enums, uuid); absent or null: NULL. */
static int parse_opt_enum(libxl__gc *gc, yajl_val v, const char *key,
                          const char *what, const char **s_r)
{
    yajl_val n = libxl__json_get(v, key);

    *s_r = NULL;
    if (!n || YAJL_IS_NULL(n)) return 0;
    if (!YAJL_IS_STRING(n)) {
        LOG(ERROR, "%s: '%s' is not a string", what, key);
        return ERROR_INVAL;
    }
    *s_r = YAJL_GET_STRING(n);
    return 0;
}

static int state_from_string(const char *s, libxlsnap_domain_state *r)
{
    libxlsnap_domain_state st;

    for (st = LIBXLSNAP_DOMAIN_STATE_SHUTOFF;
         st <= LIBXLSNAP_DOMAIN_STATE_PAUSED; st++) {
        if (!strcasecmp(s, libxlsnap_domain_state_to_string(st))) {
            *r = st;
            return 0;
        }
    }
    return ERROR_INVAL;
}

static int parse_disk(libxl__gc *gc, libxl__gc *agc, yajl_val v,
                      const char *snap, int idx, libxlsnap_disk_snapshot *d)
{
    const char *what = GCSPRINTF("snapshot '%s' disk %d", snap, idx);
    const char *s;
    int rc;

    if (!YAJL_IS_OBJECT(v)) {
        LOG(ERROR, "%s: not an object", what);
        return ERROR_INVAL;
    }

    rc = parse_opt_str(gc, agc, v, "vdev", what, &d->vdev);
    if (rc) return rc;
    if (!d->vdev || !*d->vdev) {
        LOG(ERROR, "%s: no vdev", what);
        return ERROR_INVAL;
    }
    what = GCSPRINTF("snapshot '%s' disk '%s'", snap, d->vdev);

    rc = parse_opt_enum(gc, v, "type", what, &s);
    if (rc) return rc;
    if (s && libxlsnap_disk_snapshot_type_from_string(s, &d->type)) {
        LOG(ERROR, "%s: unknown snapshot type '%s'", what, s);
        return ERROR_INVAL;
    }

    rc = parse_opt_enum(gc, v, "backend", what, &s);
    if (rc) return rc;
    if (s && libxl_disk_backend_from_string(s, &d->backend)) {
        LOG(ERROR, "%s: unknown backend '%s'", what, s);
        return ERROR_INVAL;
    }

    rc = parse_opt_enum(gc, v, "format", what, &s);
    if (rc) return rc;
    if (s && libxl_disk_format_from_string(s, &d->format)) {
        LOG(ERROR, "%s: unknown format '%s'", what, s);
        return ERROR_INVAL;
    }

    rc = parse_opt_str(gc, agc, v, "file", what, &d->file);
    if (rc) return rc;
    rc = parse_opt_str(gc, agc, v, "overlay", what, &d->overlay);
    if (rc) return rc;
    rc = parse_opt_str(gc, agc, v, "tag", what, &d->tag);
    if (rc) return rc;
    return 0;
}

/* a non-negative integer no greater than max, 0 when absent */
static int parse_uint(libxl__gc *gc, yajl_val v, const char *key,
                      const char *what, uint64_t max, uint64_t *r)
{
    yajl_val n = libxl__json_get(v, key);
    const char *raw;
    unsigned long long t;
    char *end;

    *r = 0;
    if (!n || YAJL_IS_NULL(n)) return 0;
    raw = YAJL_IS_NUMBER(n) ? n->u.number.r : NULL;
    if (!raw || !*raw || raw[strspn(raw, "0123456789")])
        goto bad;
    errno = 0;
    t = strtoull(raw, &end, 10);
    if (errno || *end || t > max) goto bad;
    *r = t;
    return 0;

 bad:
    LOG(ERROR, "%s: '%s' is not an integer from 0 to %"PRIu64,
        what, key, max);
    return ERROR_INVAL;
}

static int parse_snapshot(libxl__gc *gc, libxl__gc *agc, yajl_val v,
                          libxlsnap_domain_snapshot *p)
{
    const char *what, *name, *s;
    yajl_val n;
    size_t i;
    uint64_t nsec;
    int rc;

    if (!YAJL_IS_OBJECT(v)) {
        LOG(ERROR, "snapshot record is not a JSON object");
        return ERROR_INVAL;
    }

    n = libxl__json_get(v, "name");
    if (!YAJL_IS_STRING(n)) {
        LOG(ERROR, "snapshot record has no name");
        return ERROR_INVAL;
    }
    name = YAJL_GET_STRING(n);
    if (libxlsnap_name_check(name)) {
        LOG(ERROR, "snapshot record has an invalid name '%s'", name);
        return ERROR_INVAL;
    }
    p->name = libxl__gc_strdup(agc, name);
    what = GCSPRINTF("snapshot '%s'", name);

    rc = parse_opt_str(gc, agc, v, "description", what, &p->description);
    if (rc) return rc;
    rc = parse_uint(gc, v, "creation_time", what, UINT64_MAX,
                    &p->creation_time);
    if (rc) return rc;
    rc = parse_uint(gc, v, "creation_nsec", what, 999999999, &nsec);
    if (rc) return rc;
    p->creation_nsec = nsec;
    rc = parse_opt_str(gc, agc, v, "parent", what, &p->parent);
    if (rc) return rc;

    n = libxl__json_get(v, "children");
    if (n && !YAJL_IS_NULL(n)) {
        if (!YAJL_IS_ARRAY(n)) {
            LOG(ERROR, "%s: 'children' is not an array", what);
            return ERROR_INVAL;
        }
        if (n->u.array.len) {
            p->children = libxl__gc_calloc(agc, n->u.array.len,
                                           sizeof(*p->children));
            for (i = 0; i < n->u.array.len; i++) {
                yajl_val c = n->u.array.values[i];
                if (!YAJL_IS_STRING(c)) {
                    LOG(ERROR, "%s: 'children' holds a non-string", what);
                    return ERROR_INVAL;
                }
                p->children[p->num_children++] =
                    libxl__gc_strdup(agc, YAJL_GET_STRING(c));
            }
        }
    }

    n = libxl__json_get(v, "current");
    if (n && !YAJL_IS_NULL(n)) {
        if (!YAJL_IS_TRUE(n) && !YAJL_IS_FALSE(n)) {
            LOG(ERROR, "%s: 'current' is not a boolean", what);
            return ERROR_INVAL;
        }
        p->current = YAJL_IS_TRUE(n);
    }

    rc = parse_opt_enum(gc, v, "state", what, &s);
    if (rc) return rc;
    if (s && state_from_string(s, &p->state)) {
        LOG(ERROR, "%s: unknown state '%s'", what, s);
        return ERROR_INVAL;
    }

    rc = parse_opt_str(gc, agc, v, "memory", what, &p->memory);
    if (rc) return rc;
    rc = parse_opt_str(gc, agc, v, "quiesce", what, &p->quiesce);
    if (rc) return rc;
    rc = parse_opt_str(gc, agc, v, "domain_name", what, &p->domain_name);
    if (rc) return rc;

    rc = parse_opt_enum(gc, v, "domain_uuid", what, &s);
    if (rc) return rc;
    if (s && libxl_uuid_from_string(&p->domain_uuid, s)) {
        LOG(ERROR, "%s: invalid domain_uuid '%s'", what, s);
        return ERROR_INVAL;
    }

    n = libxl__json_get(v, "disks");
    if (n && !YAJL_IS_NULL(n)) {
        if (!YAJL_IS_ARRAY(n)) {
            LOG(ERROR, "%s: 'disks' is not an array", what);
            return ERROR_INVAL;
        }
        if (n->u.array.len) {
            p->disks = libxl__gc_calloc(agc, n->u.array.len,
                                        sizeof(*p->disks));
            for (i = 0; i < n->u.array.len; i++) {
                libxlsnap_disk_snapshot *d = &p->disks[i];
                libxlsnap_disk_snapshot_init(d);
                p->num_disks++;
                rc = parse_disk(gc, agc, n->u.array.values[i], name, i, d);
                if (rc) return rc;
            }
        }
    }
    return 0;
}

/*
 * Allocations for *p come from agc (NOGC: malloc, the caller
 * disposes).  Messages go to agc's ctx; with NOGC there is none to
 * log to, so callers that want the reason parse into a gc and copy.
 */
int libxl__domain_snapshot_parse_json(libxl__gc *agc, yajl_val v,
                                      libxlsnap_domain_snapshot *p)
{
    GC_INIT(agc ? agc->owner : NULL);
    int rc;

    libxlsnap_domain_snapshot_init(p);
    rc = parse_snapshot(gc, agc, v, p);
    if (rc) {
        if (agc == NOGC)
            libxlsnap_domain_snapshot_dispose(p);
        else
            libxlsnap_domain_snapshot_init(p);
        goto out;
    }
    rc = 0;
 out:
    GC_FREE;
    return rc;
}

/* ---------------------------------------------------------------- */
/* deep copies (malloc) */

void libxl__disk_snapshot_copy(libxlsnap_disk_snapshot *dst,
                               const libxlsnap_disk_snapshot *src)
{
    libxlsnap_disk_snapshot_init(dst);
    dst->vdev = libxl__gc_strdup(NOGC, src->vdev);
    dst->type = src->type;
    dst->backend = src->backend;
    dst->format = src->format;
    dst->file = libxl__gc_strdup(NOGC, src->file);
    dst->overlay = libxl__gc_strdup(NOGC, src->overlay);
    dst->cow = libxl__gc_strdup(NOGC, src->cow);
    dst->tag = libxl__gc_strdup(NOGC, src->tag);
}

void libxl__domain_snapshot_copy(libxlsnap_domain_snapshot *dst,
                                 const libxlsnap_domain_snapshot *src)
{
    int i;

    libxlsnap_domain_snapshot_init(dst);
    dst->name = libxl__gc_strdup(NOGC, src->name);
    dst->description = libxl__gc_strdup(NOGC, src->description);
    dst->creation_time = src->creation_time;
    dst->creation_nsec = src->creation_nsec;
    dst->parent = libxl__gc_strdup(NOGC, src->parent);
    if (src->num_children > 0 && src->children) {
        dst->children = libxl__gc_calloc(NOGC, src->num_children,
                                         sizeof(*dst->children));
        for (i = 0; i < src->num_children; i++)
            dst->children[i] = libxl__gc_strdup(NOGC, src->children[i]);
        dst->num_children = src->num_children;
    }
    dst->current = src->current;
    dst->state = src->state;
    dst->memory = libxl__gc_strdup(NOGC, src->memory);
    dst->quiesce = libxl__gc_strdup(NOGC, src->quiesce);
    dst->agent = libxl__gc_strdup(NOGC, src->agent);
    dst->domain_name = libxl__gc_strdup(NOGC, src->domain_name);
    dst->domain_uuid = src->domain_uuid;
    if (src->num_disks > 0 && src->disks) {
        dst->disks = libxl__gc_calloc(NOGC, src->num_disks,
                                      sizeof(*dst->disks));
        for (i = 0; i < src->num_disks; i++)
            libxl__disk_snapshot_copy(&dst->disks[i], &src->disks[i]);
        dst->num_disks = src->num_disks;
    }
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
