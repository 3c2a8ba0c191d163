/*
 * fuzz_config.c - libFuzzer target: the config file parsers
 *
 * The bytes as a snapshot config (xl.snapshot.cfg: name, description,
 * memory, disk=[...]), asked which of the two it is (its settings
 * scanned without libxlutil having accepted them first), and as a
 * domain config (name, uuid, memory, disk=[...], channel=[...],
 * device_model_args=[...]), read from a memfd as the library reads any
 * file.
 */
#include "fuzz.h"

#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    libxlsnap_ctx *ctx = fuzz_ctx();
    libxlsnap_domain_snapshot s;
    libxl__domain_config cfg;
    char path[64];
    int fd = memfd_create("fuzz-config", MFD_CLOEXEC);

    if (fd < 0) abort();
    if (size && write(fd, data, size) != (ssize_t)size) abort();
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

    libxlsnap_domain_snapshot_init(&s);
    libxlsnap_domain_snapshot_config_parse(ctx, path, &s);
    libxlsnap_domain_snapshot_dispose(&s);
    libxlsnap_domain_snapshot_config_is_snapshot(ctx, path);
    {
        GC_INIT(ctx);
        libxl__domain_config_parse(gc, path, &cfg);
        GC_FREE;
    }
    close(fd);
    return 0;
}
