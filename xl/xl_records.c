/*
 * xl_records.c - xl snapshot-export-records, snapshot-import-records
 *
 * A domain's snapshot records carried to a host that shares its images
 * but not its record store (a host-local state dir): export writes one
 * JSON document (to FILE, or stdout), import writes it into this
 * host's store, all or nothing (libxlsnap_domain_records_export/
 * _import).  The file ("-": stdin) is read whole, as a stream, up to
 * RECORDS_MAX bytes.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xl.h"

#define RECORDS_MAX (64 << 20)

/* all of buf to fd */
static bool write_all(int fd, const char *buf, size_t len)
{
    ssize_t n;

    while (len) {
        n = write(fd, buf, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        buf += n;
        len -= n;
    }
    return true;
}

/*
 * The document (and a newline) to file.  A regular file, or a path
 * that does not exist, is written whole or not at all: a tmp file next
 * to it, renamed; a symlink to a regular file so writes its target.
 * Anything else (a device, a FIFO, /dev/stdout, /dev/fd/N, a symlink
 * to such) is written to as it is, never replaced.  1 done, 0 said.
 */
static int write_records(const char *file, const char *json)
{
    const char *what = file;
    char *real = NULL, *tmp = NULL;
    struct stat sb, lsb;
    bool exists = !stat(file, &sb);
    int fd = -1, ok = 0;

    if (!exists && errno == ENOENT && !lstat(file, &lsb) &&
        S_ISLNK(lsb.st_mode)) {
        fprintf(stderr, "libxl-snapshot: error: snapshot-export-records: "
                "'%s' is a symlink to nothing: not replaced\n", file);
        return 0;
    }
    if (!exists && errno != ENOENT) goto fail;
    /* (/dev/stdout, /dev/fd/N, /proc/self/fd/N: the caller's open file,
     * even when that is a regular one) */
    if (exists && (!S_ISREG(sb.st_mode) || !strncmp(file, "/dev/", 5) ||
                   !strncmp(file, "/proc/", 6))) {
        fd = open(file, O_WRONLY | O_CLOEXEC |
                  (S_ISREG(sb.st_mode) ? O_TRUNC : 0));
        ok = fd >= 0 && write_all(fd, json, strlen(json)) &&
            write_all(fd, "\n", 1);
        if (fd >= 0 && close(fd)) ok = 0;
        if (!ok) goto fail;
        return 1;
    }
    if (exists && !(real = realpath(file, NULL))) goto fail;
    if (real) file = real;
    /* whole or not at all: a tmp file renamed once written */
    if (asprintf(&tmp, "%s.tmp", file) < 0) abort();
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
        what = tmp;
        goto fail;
    }
    ok = write_all(fd, json, strlen(json)) && write_all(fd, "\n", 1) &&
        !fsync(fd);
    if (close(fd)) ok = 0;
    if (ok && rename(tmp, file)) ok = 0;
    if (!ok) unlink(tmp);
    if (!ok) goto fail;
    free(tmp);
    free(real);
    return 1;
 fail:
    fprintf(stderr, "libxl-snapshot: error: snapshot-export-records: "
            "cannot write '%s': %s\n", what, strerror(errno));
    free(tmp);
    free(real);
    return 0;
}

int main_snapshot_export_records(int argc, char **argv)
{
    static const struct option opts[] = {
        COMMON_LONG_OPTS,
        {0, 0, 0, 0}
    };
    const char *domain, *file = NULL;
    char *json = NULL;
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
    ok = write_records(file, json);
    free(json);
    if (!ok) return EXIT_FAILURE;
    {
        /* not into the document, when FILE is stdout (/dev/stdout) */
        struct stat a, b;
        if (stat(file, &a) || fstat(STDOUT_FILENO, &b) ||
            a.st_dev != b.st_dev || a.st_ino != b.st_ino)
            printf("Records of domain %s exported to %s\n", domain, file);
    }
    return EXIT_SUCCESS;
}

/*
 * file ("-": stdin), whole, NUL-terminated (malloc'ed); NULL and errno.
 * Read as a stream: a pipe, /dev/stdin or <(...) as well as a file.
 */
static char *read_whole(const char *file)
{
    char *buf = NULL, *nb;
    size_t len = 0, cap = 0;
    ssize_t n;
    int fd = !strcmp(file, "-") ? STDIN_FILENO
        : open(file, O_RDONLY | O_CLOEXEC);

    if (fd < 0) return NULL;
    for (;;) {
        if (cap - len < 65536) {
            if (cap > RECORDS_MAX) {
                errno = EFBIG;
                goto fail;
            }
            cap = cap ? cap * 2 : 65536;
            nb = realloc(buf, cap + 1);
            if (!nb) goto fail;
            buf = nb;
        }
        n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) goto fail;
        if (!n) break;
        len += n;
    }
    if (len > RECORDS_MAX) {
        errno = EFBIG;
        goto fail;
    }
    buf[len] = 0;
    if (strlen(buf) != len) {
        errno = EILSEQ;               /* a NUL byte: no text */
        goto fail;
    }
    if (fd != STDIN_FILENO) close(fd);
    return buf;
 fail:
    n = errno;
    free(buf);
    if (fd != STDIN_FILENO) close(fd);
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
