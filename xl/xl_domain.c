/*
 * xl_domain.c - domain commands of the qemu driver
 *
 * With the qemu driver a domain is a QEMU process started from an
 * xl-format config, so xl's create/destroy/list/pause/unpause are
 * provided here with xl's usage and output.  On Xen these commands go
 * to the system xl (see xl_cmdtable.c).  xl migrate moves a domain to
 * a new QEMU on this host; on Xen it is the system xl's, after a
 * warning when the domain's snapshot records would stay behind.
 */
#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "xl.h"

/*
 * On Xen, domains are started by the system xl.  If snapshots moved a
 * domain's disks to other active images, its config would boot it from
 * backing files: append the disk override to xl's command line (xl
 * create takes config lines after the file; the last disk= wins).  A
 * config without uuid= gets the uuid its records are kept under.
 */
static int create_xen(int argc, char **argv)
{
    const char *config = NULL;
    char *override = NULL, *uuid = NULL;
    int i, rc;

    for (i = 1; i < argc && !config; i++) {
        if (!strcmp(argv[i], "-f") && i + 1 < argc)
            config = argv[++i];
        else if (!strncmp(argv[i], "--defconfig=", 12))
            config = argv[i] + 12;
        else if (argv[i][0] != '-' && !strchr(argv[i], '='))
            config = argv[i];
    }
    if (config) {
        rc = libxlsnap_domain_start_overrides(ctx, config, &override,
                                                   &uuid);
        if (rc) return xl_fail("create", rc);
        if (override)
            fprintf(stderr, "xl-snapshot: starting on the active images "
                    "of its snapshots: %s\n", override);
    }
    rc = exec_system_xl("create", override, uuid);
    free(override);
    free(uuid);
    return rc;
}

int main_create(int argc, char **argv)
{
    static const struct option opts[] = {
        COMMON_LONG_OPTS,
        {0, 0, 0, 0}
    };
    bool paused = false;
    uint32_t domid;
    int opt, rc;

    if (libxlsnap_ctx_driver(ctx) == LIBXLSNAP_DRIVER_XEN)
        return create_xen(argc, argv);
    SWITCH_FOREACH_OPT(opt, "p", opts, "create", 1) {
    case 'p':
        paused = true;
        break;
    }
    if (argc - optind != 1)
        return usage_error("create", "takes one config file.");
    fprintf(stderr, "Parsing config from %s\n", argv[optind]);
    rc = libxlsnap_domain_create(ctx, argv[optind], paused, &domid,
                                      NULL);
    if (rc) return xl_fail("create", rc);
    return EXIT_SUCCESS;
}

static int one_domain(int argc, char **argv, const char *cmd,
                      int (*fn)(libxlsnap_ctx *, const char *))
{
    static const struct option opts[] = {
        COMMON_LONG_OPTS,
        {0, 0, 0, 0}
    };
    int opt, rc;

    SWITCH_FOREACH_OPT(opt, "", opts, cmd, 1) {
        /* no options */
    }
    if (argc - optind != 1)
        return usage_error(cmd, "takes one domain.");
    rc = fn(ctx, argv[optind]);
    return rc ? xl_fail(cmd, rc) : EXIT_SUCCESS;
}

static int domain_destroy(libxlsnap_ctx *c, const char *domain)
{
    return libxlsnap_domain_destroy(c, domain, NULL);
}

int main_destroy(int argc, char **argv)
{
    return one_domain(argc, argv, "destroy", domain_destroy);
}

int main_pause(int argc, char **argv)
{
    return one_domain(argc, argv, "pause", libxlsnap_domain_pause);
}

int main_unpause(int argc, char **argv)
{
    return one_domain(argc, argv, "unpause",
                      libxlsnap_domain_unpause);
}

/* xl list's argument: a name, or an all-digit domain id (as xl's) */
static bool list_matches(const libxlsnap_domain *d, const char *which)
{
    if (which[0] && strspn(which, "0123456789") == strlen(which))
        return strtoul(which, NULL, 10) == d->domid;
    return d->name && !strcmp(d->name, which);
}

int main_list(int argc, char **argv)
{
    static const struct option opts[] = {
        {"long", 0, 0, 'l'},
        COMMON_LONG_OPTS,
        {0, 0, 0, 0}
    };
    libxlsnap_domain *l = NULL;
    const char *which = NULL;
    bool details = false;
    int opt, rc, n = 0, i, j;

    SWITCH_FOREACH_OPT(opt, "l", opts, "list", 0) {
    case 'l':
        details = true;
        break;
    }
    /* as Xen's xl: one domain at most (each must exist, below) */
    if (argc - optind > 1)
        return usage_error("list", "takes at most one domain.");
    if (argc > optind) which = argv[optind];
    rc = libxlsnap_domain_list(ctx, &l, &n);
    if (rc) return xl_fail("list", rc);
    /* as Xen's xl: a named domain that does not exist is an error */
    for (i = 0; which && i < n; i++)
        if (list_matches(&l[i], which)) break;
    if (which && i == n) {
        fprintf(stderr, "xl list: domain '%s' does not exist\n", which);
        libxlsnap_domain_list_free(l, n);
        return EXIT_FAILURE;
    }
    printf("%-40s %5s %-8s %s\n", "Name", "ID", "State", "UUID");
    for (i = 0; i < n; i++) {
        const libxlsnap_domain *d = &l[i];
        if (which && !list_matches(d, which)) continue;
        printf("%-40s %5u %-8s " LIBXL_UUID_FMT "\n", d->name, d->domid,
               d->state == LIBXLSNAP_DOMAIN_STATE_PAUSED
               ? "--p---" : "r-----",
               LIBXL_UUID_BYTES(d->uuid));
        if (!details) continue;
        printf("    config: %s\n", d->config_file ? d->config_file : "-");
        for (j = 0; j < d->num_disks; j++)
            printf("    disk %s: %s (%s)\n", d->disks[j].vdev,
                   d->disks[j].pdev_path,
                   libxl_disk_format_to_string(d->disks[j].format));
    }
    libxlsnap_domain_list_free(l, n);
    return EXIT_SUCCESS;
}

int main_qemu_monitor_command(int argc, char **argv)
{
    static const struct option opts[] = {
        COMMON_LONG_OPTS,
        {0, 0, 0, 0}
    };
    char *out = NULL;
    int opt, rc;

    SWITCH_FOREACH_OPT(opt, "", opts, "qemu-monitor-command", 2) {
        /* no options */
    }
    rc = libxlsnap_domain_monitor_command(ctx, argv[optind],
                                               argv[optind + 1], &out);
    if (rc) return xl_fail("qemu-monitor-command", rc);
    if (out && *out) fputs(out, stdout);
    free(out);
    return EXIT_SUCCESS;
}

/* A destination that is this host (the qemu driver's only one). */
static bool host_is_local(const char *host)
{
    char me[256];

    /* (host names are case-insensitive; "" is no host) */
    if (!strcasecmp(host, "localhost") ||
        !strcasecmp(host, "localhost.localdomain") ||
        !strcmp(host, "127.0.0.1") || !strcmp(host, "::1"))
        return true;
    return *host && !gethostname(me, sizeof(me)) &&
        (me[sizeof(me) - 1] = 0, !strcasecmp(host, me));
}

/*
 * On Xen, `xl migrate` is the system xl's.  Its records do not go with
 * a domain to another host when they are in a host-local state dir:
 * say so first, and how to carry them.  Xen's usage: [options]
 * <Domain> <host>, -s and -C (and --max-iters/--max-factor) take a
 * value.
 */
static int migrate_xen(int argc, char **argv)
{
    const char *pos[2] = { NULL, NULL };
    int i, n = 0, nb = 0;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            for (i++; i < argc && n < 2; i++) pos[n++] = argv[i];
            break;
        }
        if (a[0] == '-' && a[1]) {
            if ((!strcmp(a, "-s") || !strcmp(a, "-C") ||
                 !strcmp(a, "--max-iters") || !strcmp(a, "--max-factor"))
                && i + 1 < argc)
                i++;
            continue;
        }
        if (n < 2) pos[n++] = a;
    }
    if (pos[0] && pos[1] && !host_is_local(pos[1]) &&
        !libxlsnap_domain_records_stay_behind(ctx, pos[0], &nb) && nb)
        fprintf(stderr, "xl-snapshot: warning: the %d snapshot record%s of "
                "%s stay%s on this host (its state dir is host-local); "
                "carry them with\n  xl snapshot-export-records %s FILE, "
                "then on %s: xl snapshot-import-records %s FILE\n", nb,
                nb == 1 ? "" : "s", pos[0], nb == 1 ? "s" : "", pos[0],
                pos[1], pos[0]);
    return exec_system_xl("migrate", NULL, NULL);
}

static volatile sig_atomic_t migrate_interrupted;

static void migrate_on_sigint(int sig)
{
    migrate_interrupted = 1;
}

typedef struct {
    bool done, tty;
    int rc;
    uint64_t done_bytes, total;
} migrate_wait;

static void migrate_done_cb(libxl_ctx *unused, int rc, void *for_callback)
{
    migrate_wait *w = for_callback;
    w->done = true;
    w->rc = rc;
}

static void migrate_progress_cb(const libxlsnap_progress *p,
                                void *for_callback)
{
    migrate_wait *w = for_callback;

    w->done_bytes = p->done;
    w->total = p->total;
    if (!w->tty) return;
    printf("\rMigration: [%3u %%] %" PRIu64 "/%" PRIu64 " MiB",
           p->total ? (unsigned)(p->done * 100 / p->total) : 0,
           p->done >> 20, p->total >> 20);
    fflush(stdout);
}

/*
 * qemu driver: the domain to a new QEMU on this host (its snapshots
 * stay its own).  Ctrl-C before the switch cancels the migration: the
 * domain stays where it was.
 */
int main_migrate(int argc, char **argv)
{
    static const struct option opts[] = {
        {"paused", 0, 0, 'p'},
        {"bandwidth", 1, 0, 'B'},
        COMMON_LONG_OPTS,
        {0, 0, 0, 0}
    };
    libxlsnap_progress_how progress;
    libxl_asyncop_how how;
    static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
    struct sigaction sa, old[3];
    migrate_wait w;
    const char *domain;
    unsigned flags = 0;
    uint64_t bandwidth = 0;
    uint32_t domid = 0;
    char *end;
    bool aborted = false;
    int opt, rc, i;

    if (libxlsnap_ctx_driver(ctx) == LIBXLSNAP_DRIVER_XEN)
        return migrate_xen(argc, argv);
    SWITCH_FOREACH_OPT(opt, "p", opts, "migrate", 1) {
    case 'p':
        flags |= LIBXLSNAP_MIGRATE_PAUSED;
        break;
    case 'B':
        bandwidth = strtoull(optarg, &end, 10);
        if (!*optarg || *end || !bandwidth || bandwidth > (UINT64_MAX >> 20)) {
            fprintf(stderr, "libxl-snapshot: error: migrate: invalid "
                    "bandwidth '%s' (MiB/s, a whole number)\n", optarg);
            return EXIT_FAILURE;
        }
        bandwidth <<= 20;
        break;
    }
    if (argc - optind > 2)
        return usage_error("migrate", "takes a domain and at most a host.");
    domain = argv[optind];
    if (argc - optind == 2 && !host_is_local(argv[optind + 1])) {
        fprintf(stderr, "libxl-snapshot: error: migrate: the qemu driver "
                "migrates a domain to a new QEMU on this host only (xl "
                "migrate %s [localhost]), not to '%s'\n", domain,
                argv[optind + 1]);
        return EXIT_FAILURE;
    }
    memset(&w, 0, sizeof(w));
    w.tty = isatty(STDOUT_FILENO);
    progress.callback = migrate_progress_cb;
    progress.for_callback = &w;
    memset(&how, 0, sizeof(how));
    how.callback = migrate_done_cb;
    how.u.for_callback = &w;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = migrate_on_sigint;
    /* Ctrl-C, and a kill or a hangup alike: cancelled, wholly old */
    for (i = 0; i < 3; i++) sigaction(sigs[i], &sa, &old[i]);
    rc = libxlsnap_domain_migrate_local(ctx, domain, flags, bandwidth,
                                        &domid, &progress, &how);
    while (!rc && !w.done) {
        libxlsnap_event_loop_run(ctx, 200);
        if (migrate_interrupted && !aborted) {
            aborted = true;
            fprintf(stderr, "\nCancelling the migration...\n");
            libxlsnap_ao_abort(ctx, &how);
        }
    }
    for (i = 0; i < 3; i++) sigaction(sigs[i], &old[i], NULL);
    if (w.tty && w.total) putchar('\n');
    if (!rc) rc = w.rc;
    if (rc) return xl_fail("migrate", rc);
    if (aborted)
        fprintf(stderr, "Too late to cancel: the domain had already "
                "switched over.\n");
    {
        /* by its name (the user may have said a domid, now gone) */
        libxlsnap_domain info;
        char id[16];
        memset(&info, 0, sizeof(info));
        snprintf(id, sizeof(id), "%u", domid);
        if (!libxlsnap_domain_lookup(ctx, id, &info) && info.name)
            domain = info.name;
        printf("Domain %s migrated: now domid %u\n", domain, domid);
        libxlsnap_domain_dispose(&info);
    }
    return EXIT_SUCCESS;
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
