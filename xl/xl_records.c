/*
 * xl_records.c - xl snapshot-export-records, snapshot-import-records
 *
 * A domain's snapshot records carried to a host that shares its images
 * but not its record store (a host-local state dir): export writes one
 * JSON document (to FILE, or stdout), import writes it into this
 * host's store, all or nothing (libxlsnap_domain_records_export/
 * _import).  The file is read whole, up to RECORDS_MAX bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xl.h"

#define RECORDS_MAX (64 << 20)

int main_snapshot_export_records(int argc, char **argv)
{
    static const struct option opts[] = {
        COMMON_LONG_OPTS,
        {0, 0, 0, 0}
    };
    const char *domain, *file = NULL;
    char *json = NULL, *tmp = NULL;
    FILE *f;
    int opt, rc, ok;

    SWITCH_FOREACH_OPT(opt, "", opts, "snapshot-export-records", 1) {
        /* no options */
    }
    if (argc - optind > 2)
        return usage_error("snapshot-export-records",
                           "takes a domain and at most a file.");
    domain = argv[optind];
    if (argc - optind == 2) file = argv[optind + 1];
    rc = libxlsnap_domain_records_export(ctx, domain, &json, NULL);
    if (rc) return xl_fail("snapshot-export-records", rc);
    if (!file || !strcmp(file, "-")) {
        ok = fputs(json, stdout) >= 0 && putchar('\n') != EOF &&
            !fflush(stdout);
        free(json);
        if (!ok) {
            fprintf(stderr, "libxl-snapshot: error: snapshot-export-records:"
                    " cannot write to stdout: %s\n", strerror(errno));
            return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
    }
    /* whole or not at all: a tmp file renamed once written */
    if (asprintf(&tmp, "%s.tmp", file) < 0) abort();
    f = fopen(tmp, "wx");
    ok = f && fputs(json, f) >= 0 && fputc('\n', f) != EOF &&
        !fflush(f) && !fsync(fileno(f));
    if (f && fclose(f)) ok = 0;
    if (ok && rename(tmp, file)) ok = 0;
    if (!ok) {
        fprintf(stderr, "libxl-snapshot: error: snapshot-export-records: "
                "cannot write '%s': %s\n", f ? file : tmp, strerror(errno));
        if (f) unlink(tmp);
    }
    free(tmp);
    free(json);
    if (!ok) return EXIT_FAILURE;
    printf("Records of domain %s exported to %s\n", domain, file);
    return EXIT_SUCCESS;
}

/* file, whole, NUL-terminated (malloc'ed); NULL and errno */
static char *read_whole(const char *file)
{
    struct stat sb;
    char *buf = NULL;
    ssize_t n;
    size_t len = 0;
    int fd = open(file, O_RDONLY | O_CLOEXEC);

    if (fd < 0) return NULL;
    if (fstat(fd, &sb)) goto fail;
    if (!S_ISREG(sb.st_mode) || sb.st_size > RECORDS_MAX) {
        errno = S_ISREG(sb.st_mode) ? EFBIG : EINVAL;
        goto fail;
    }
    buf = malloc(sb.st_size + 1);
    if (!buf) goto fail;
    while (len < (size_t)sb.st_size &&
           (n = read(fd, buf + len, sb.st_size - len)) != 0) {
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) goto fail;
        len += n;
    }
    buf[len] = 0;
    if (strlen(buf) != len) {
        errno = EILSEQ;               /* a NUL byte: no text */
        goto fail;
    }
    close(fd);
    return buf;
 fail:
    n = errno;
    free(buf);
    close(fd);
    errno = n;
    return NULL;
}

int main_snapshot_import_records(int argc, char **argv)
{
    static const struct option opts[] = {
        {"force", 0, 0, 'f'},
        COMMON_LONG_OPTS,
        {0, 0, 0, 0}
    };
    unsigned flags = 0;
    char *json;
    int opt, rc;

    SWITCH_FOREACH_OPT(opt, "f", opts, "snapshot-import-records", 2) {
    case 'f':
        flags |= LIBXLSNAP_IMPORT_FORCE;
        break;
    }
    if (argc - optind != 2)
        return usage_error("snapshot-import-records",
                           "takes a domain and a file.");
    json = read_whole(argv[optind + 1]);
    if (!json) {
        fprintf(stderr, "libxl-snapshot: error: snapshot-import-records: "
                "cannot read '%s': %s\n", argv[optind + 1],
                strerror(errno));
        return EXIT_FAILURE;
    }
    rc = libxlsnap_domain_records_import(ctx, argv[optind], json, flags,
                                         NULL);
    free(json);
    if (rc) return xl_fail("snapshot-import-records", rc);
    printf("Records of domain %s imported from %s\n", argv[optind],
           argv[optind + 1]);
    return EXIT_SUCCESS;
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
