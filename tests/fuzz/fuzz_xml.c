/*
 * fuzz_xml.c - libFuzzer target: the libvirt domainsnapshot XML reader
 *
 * Any bytes as XML (libxlsnap_domain_snapshot_from_xml); a document that
 * reads is written back (libxlsnap_domain_snapshot_to_xml) and read again,
 * and the second writing must equal the first.
 */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    libxlsnap_ctx *ctx = fuzz_ctx();
    libxlsnap_domain_snapshot s, t;
    char *text = fuzz_string(data, size), *x1, *x2;

    if (!libxlsnap_domain_snapshot_from_xml(ctx, text, &s)) {
        x1 = libxlsnap_domain_snapshot_to_xml(ctx, &s);
        if (x1) {
            if (libxlsnap_domain_snapshot_from_xml(ctx, x1, &t)) abort();
            x2 = libxlsnap_domain_snapshot_to_xml(ctx, &t);
            if (!x2 || strcmp(x1, x2)) abort();
            free(x2);
            libxlsnap_domain_snapshot_dispose(&t);
        }
        free(x1);
        libxlsnap_domain_snapshot_dispose(&s);
    }
    free(text);
    return 0;
}
