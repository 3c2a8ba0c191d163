/*
 * fuzz.h - what the libFuzzer targets share: one library context,
 * quiet (parsers log every rejection), and the input as a C string.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include "libxl_snapshot_internal.h"

static inline libxlsnap_ctx *fuzz_ctx(void)
{
    static libxlsnap_ctx *ctx;
    if (!ctx) {
        xentoollog_logger *lg = (xentoollog_logger *)
            xtl_createlogger_stdiostream(stderr, XTL_CRITICAL, 0);
        if (libxlsnap_ctx_alloc(&ctx, LIBXLSNAP_VERSION, 0, lg, NULL))
            abort();
    }
    return ctx;
}

/* data with a NUL after it (malloc: the caller frees) */
static inline char *fuzz_string(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) abort();
    memcpy(s, data, size);
    s[size] = 0;
    return s;
}

#endif
