/*
 * xl_domain.c - domain commands of the qemu driver
 *
 * With the qemu driver a domain is a QEMU process started from an
 * xl-format config, so xl's create/destroy/list/pause/unpause are
 * provided here with xl's usage and output.  On Xen these commands go
 * to the system xl (see xl_cmdtable.c).
 */
#include <string.h>

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

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
