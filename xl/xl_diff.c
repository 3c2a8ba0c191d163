/*
 * xl_diff.c - xl snapshot-diff
 *
 * The changed extents of each disk between two snapshots, or between
 * one and now (libxlsnap_domain_snapshot_diff).  People get one summary
 * line a disk (how the extents were found, and whether guest data was
 * read), and with --verbose one line an extent, "OFFSET LENGTH" in
 * bytes; scripts get --json, one document, always (a failure too).
 */
#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "xl.h"

/* bytes as people read them: 1.5 MiB */
static void print_size(uint64_t b)
{
    static const char *const units[] = { "bytes", "KiB", "MiB", "GiB",
                                         "TiB" };
    double v = b;
    int u = 0;

    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (!u) printf("%" PRIu64 " bytes", b);
    else printf("%.1f %s", v, units[u]);
}

static void print_json(const char *domain, const libxlsnap_domain_diff *d)
{
    int i, j;

    char uuid[LIBXL_UUID_FMTLEN + 1];

    snprintf(uuid, sizeof(uuid), LIBXL_UUID_FMT, LIBXL_UUID_BYTES(d->uuid));
    printf("{\"domain\": ");
    xl_print_json_string(d->domain ? d->domain : domain);
    printf(", \"uuid\": \"%s\", \"from\": ", uuid);
    xl_print_json_string(d->from);
    printf(", \"to\": ");
    xl_print_json_string(d->to);
    printf(", \"disks\": [");
    for (i = 0; i < d->num_disks; i++) {
        const libxlsnap_disk_diff *dd = &d->disks[i];
        printf("%s\n  {\"vdev\": ", i ? "," : "");
        xl_print_json_string(dd->vdev);
        printf(", \"method\": \"%s\", \"reads_data\": %s, \"size\": %"
               PRIu64 ", \"granularity\": %" PRIu64 ", \"total\": %" PRIu64
               ", \"num_extents\": %d, \"extents\": [",
               libxlsnap_diff_methods_to_string(dd->methods),
               dd->methods & LIBXLSNAP_DIFF_COMPARE ? "true" : "false",
               dd->size, dd->granularity, dd->total, dd->num_extents);
        for (j = 0; j < dd->num_extents; j++)
            printf("%s{\"offset\": %" PRIu64 ", \"length\": %" PRIu64 "}",
                   j ? ", " : "", dd->extents[j].offset,
                   dd->extents[j].length);
        printf("]}");
    }
    printf("]}\n");
}

/*
 * Ctrl-C: the diff changes nothing (a live one's export, if one was up,
 * the next diff removes), so it ends there, as a failure: one line, and
 * with --json the error document (written from the handler: write(2)
 * and _exit are async-signal-safe; stdout holds nothing yet).
 */
static char intr_err[256], intr_doc[256];
static size_t intr_err_len, intr_doc_len;

static void diff_interrupted(int sig)
{
    ssize_t r;

    if (intr_doc_len) r = write(STDOUT_FILENO, intr_doc, intr_doc_len);
    r = write(STDERR_FILENO, intr_err, intr_err_len);
    (void)r;
    _exit(EXIT_FAILURE);
}

static void diff_on_interrupt(bool json)
{
    static const char why[] = "snapshot-diff interrupted: no diff, "
        "nothing changed";
    struct sigaction sa;

    snprintf(intr_err, sizeof(intr_err), "libxl-snapshot: error: %s\n",
             why);
    intr_err_len = strlen(intr_err);
    if (json) {
        snprintf(intr_doc, sizeof(intr_doc),
                 "{\"error\": \"%s\", \"error_code\": \"%s\"}\n", why,
                 libxl_error_to_string(ERROR_ABORTED));
        intr_doc_len = strlen(intr_doc);
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = diff_interrupted;
    sigaction(SIGINT, &sa, NULL);
}

int main_snapshot_diff(int argc, char **argv)
{
    static const struct option opts[] = {
        {"disk", 1, 0, 'd'},
        {"json", 0, 0, 'j'},
        {"verbose", 0, 0, 'v'},
        {"no-data", 0, 0, 'n'},
        COMMON_LONG_OPTS,
        {0, 0, 0, 0}
    };
    libxlsnap_domain_diff d;
    const char *domain, *from, *to = NULL, *vdev = NULL;
    bool json = false, verbose = false;
    unsigned flags = 0;
    int opt, rc, i, j;

    SWITCH_FOREACH_OPT(opt, "v", opts, "snapshot-diff", 2) {
    case 'd': vdev = optarg; break;
    case 'j': json = true; break;
    case 'v': verbose = true; break;
    case 'n': flags |= LIBXLSNAP_DIFF_NO_DATA; break;
    }
    if (argc - optind > 3)
        return usage_error("snapshot-diff",
                           "takes a domain, FROM and at most TO.");
    if (vdev && !*vdev)
        return usage_error("snapshot-diff", "--disk needs a disk name.");
    domain = argv[optind];
    from = argv[optind + 1];
    if (argc - optind == 3) to = argv[optind + 2];
    libxlsnap_domain_diff_init(&d);
    diff_on_interrupt(json);
    rc = libxlsnap_domain_snapshot_diff(ctx, domain, from, to, vdev, flags,
                                        &d, NULL);
    xl_exit_on_interrupt(NULL, NULL, NULL, NULL);
    if (rc) return xl_fail_json("snapshot-diff", rc, json);
    if (json) {
        print_json(domain, &d);
    } else {
        for (i = 0; i < d.num_disks; i++) {
            const libxlsnap_disk_diff *dd = &d.disks[i];
            printf("%s: %d extent%s, ", dd->vdev, dd->num_extents,
                   dd->num_extents == 1 ? "" : "s");
            print_size(dd->total);
            printf(" of ");
            print_size(dd->size);
            printf(" changed from %s to %s (%s: %s)\n", d.from, d.to,
                   libxlsnap_diff_methods_to_string(dd->methods),
                   dd->methods & LIBXLSNAP_DIFF_COMPARE
                   ? "guest data read" : "no guest data read");
            if (!verbose) continue;
            for (j = 0; j < dd->num_extents; j++)
                printf("  %" PRIu64 " %" PRIu64 "\n", dd->extents[j].offset,
                       dd->extents[j].length);
        }
    }
    libxlsnap_domain_diff_dispose(&d);
    return EXIT_SUCCESS;
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
