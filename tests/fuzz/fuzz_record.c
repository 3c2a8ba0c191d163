/*
 * fuzz_record.c - libFuzzer target: the snapshot record parser
 *
 * Any bytes as a record (libxlsnap_domain_snapshot_from_json); a record
 * that parses is written back and parsed again, and must survive the
 * round trip unchanged.
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
    free(text);
    return 0;
}
