/*
 * fuzz_record.c - libFuzzer target: the snapshot record parser
 *
 * Any bytes as a record (libxlsnap_domain_snapshot_from_json); a record
 * that parses is written back and parsed again, and must survive the
 * round trip unchanged.  The same bytes as a checkpoint record
 * (libxl__checkpoint_from_tree), with the same round trip.
 */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    libxlsnap_ctx *ctx = fuzz_ctx();
    libxlsnap_domain_snapshot s, t;
    char *text = fuzz_string(data, size), *j1, *j2;

    libxlsnap_domain_snapshot_init(&s);
    if (!libxlsnap_domain_snapshot_from_json(ctx, &s, text)) {
        j1 = libxlsnap_domain_snapshot_to_json(ctx, &s);
        if (j1) {
            libxlsnap_domain_snapshot_init(&t);
            if (libxlsnap_domain_snapshot_from_json(ctx, &t, j1)) abort();
            j2 = libxlsnap_domain_snapshot_to_json(ctx, &t);
            if (!j2 || strcmp(j1, j2)) abort();
            free(j2);
            libxlsnap_domain_snapshot_dispose(&t);
        }
        free(j1);
    }
    libxlsnap_domain_snapshot_dispose(&s);
    {
        GC_INIT(ctx);
        yajl_val v = libxl__json_parse(gc, text), w;
        libxlsnap_checkpoint c, d;
        const char *why, *k1, *k2;

        if (v && !libxl__checkpoint_from_tree(gc, gc, v, &c, &why)) {
            k1 = libxl__checkpoint_to_text(gc, &c);
            w = k1 ? libxl__json_parse(gc, k1) : NULL;
            if (!w || libxl__checkpoint_from_tree(gc, gc, w, &d, &why))
                abort();
            k2 = libxl__checkpoint_to_text(gc, &d);
            if (!k2 || strcmp(k1, k2)) abort();
        }
        GC_FREE;
    }
    free(text);
    return 0;
}
