/*
 * fuzz_xml.c - libFuzzer target: the libvirt domainsnapshot XML reader
 *
 * Any bytes as XML (libxl_domain_snapshot_from_xml); a document that
 * reads is written back (libxl_domain_snapshot_to_xml) and read again,
 * and the second writing must equal the first.
 */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    libxl_snapshot_ctx *ctx = fuzz_ctx();
    libxl_domain_snapshot s, t;
    char *text = fuzz_string(data, size), *x1, *x2;

    if (!libxl_domain_snapshot_from_xml(ctx, text, &s)) {
        x1 = libxl_domain_snapshot_to_xml(ctx, &s);
        if (x1) {
            if (libxl_domain_snapshot_from_xml(ctx, x1, &t)) abort();
            x2 = libxl_domain_snapshot_to_xml(ctx, &t);
            if (!x2 || strcmp(x1, x2)) abort();
            free(x2);
            libxl_domain_snapshot_dispose(&t);
        }
        free(x1);
        libxl_domain_snapshot_dispose(&s);
    }
    free(text);
    return 0;
}
