/*
 * xl_checkpoint.c - xl checkpoint-* commands, shaped as virsh's
 *
 * checkpoint-create, -list, -info, -delete, -dumpxml.  As the
 * snapshot-* commands: a table for people, --json (the libxl-json
 * records) or --name for scripts; one line on stderr and a non-zero
 * exit on failure, 2 for a usage error.
 */
#include <inttypes.h>
#include <string.h>

#include "xl.h"

static void print_json(const libxlsnap_checkpoint *cp)
{
    char *s = libxlsnap_checkpoint_to_json(ctx, cp);
    printf("%s\n", s ? s : "null");
    free(s);
}

int main_checkpoint_create(int argc, char **argv)
{
    static const struct option opts[] = {
        {"description", 1, 0, 'd'},
        {"disk", 1, 0, 'k'},
        COMMON_LONG_OPTS,
        {0, 0, 0, 0}
    };
    libxlsnap_checkpoint cp;
    const char *domain;
    int opt, rc;

    libxlsnap_checkpoint_init(&cp);
    SWITCH_FOREACH_OPT(opt, "d:", opts, "checkpoint-create", 2) {
    case 'd':
        free(cp.description);
        cp.description = strdup(optarg);
        break;
    case 'k':
        cp.disks = realloc(cp.disks, (cp.num_disks + 1) * sizeof(*cp.disks));
        if (!cp.disks) abort();
        memset(&cp.disks[cp.num_disks], 0, sizeof(*cp.disks));
        cp.disks[cp.num_disks++].vdev = strdup(optarg);
        break;
    }
    if (argc - optind != 2) {
        libxlsnap_checkpoint_dispose(&cp);
        return usage_error("checkpoint-create", "needs a domain and a "
                           "checkpoint name.");
    }
    domain = argv[optind];
    cp.name = strdup(argv[optind + 1]);
    xl_exit_on_interrupt("checkpoint-create", domain, "the checkpoint may "
                         "be part-made (recorded in the domain's journal)",
                         "rolls it back");
    rc = libxlsnap_checkpoint_create(ctx, domain, &cp, 0, NULL, NULL);
    xl_exit_on_interrupt(NULL, NULL, NULL, NULL);
    if (!rc)
        printf("Domain checkpoint %s created (%d disk%s)\n", cp.name,
               cp.num_disks, cp.num_disks == 1 ? "" : "s");
    libxlsnap_checkpoint_dispose(&cp);
    return rc ? xl_fail("checkpoint-create", rc) : EXIT_SUCCESS;
}

static void disks_summary(const libxlsnap_checkpoint *cp, char *buf,
                          size_t len)
{
    size_t o = 0;
    int i;

    buf[0] = 0;
    for (i = 0; i < cp->num_disks && o < len; i++)
        o += snprintf(buf + o, len - o, "%s%s", i ? "," : "",
                      cp->disks[i].vdev);
    if (!cp->num_disks) snprintf(buf, len, "-");
}

int main_checkpoint_list(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", 0, 0, 'j'},
        {"name", 0, 0, 'N'},
        {"tree", 0, 0, 't'},
        {"check", 0, 0, 'c'},
        COMMON_LONG_OPTS,
        {0, 0, 0, 0}
    };
    libxlsnap_checkpoint *l = NULL;
    bool json = false, names = false, tree = false, check = false;
    int opt, rc, n = 0, i, k;
    char tbuf[32], dbuf[256];
    size_t wname = 6;                 /* "PARENT" */

    SWITCH_FOREACH_OPT(opt, "t", opts, "checkpoint-list", 1) {
    case 'j': json = true; break;
    case 'N': names = true; break;
    case 't': tree = true; break;
    case 'c': check = true; break;
    }
    rc = libxlsnap_checkpoint_list(ctx, argv[optind],
                                   check ? LIBXLSNAP_CHECKPOINT_LIST_CHECK : 0,
                                   &l, &n);
    if (rc) return xl_fail_json("checkpoint-list", rc, json);
    if (json) {
        printf("[");
        for (i = 0; i < n; i++) {
            char *s = libxlsnap_checkpoint_to_json(ctx, &l[i]);
            printf("%s\n%s", i ? "," : "", s ? s : "null");
            free(s);
        }
        printf("%s]\n", n ? "\n" : "");
    } else if (names) {
        for (i = 0; i < n; i++) printf("%s\n", l[i].name);
    } else if (tree) {
        /* checkpoints form one line of descent, oldest at the top */
        for (i = 0; i < n; i++)
            printf("%*s%s%s\n", 2 * i, "", i ? "+- " : "", l[i].name);
    } else {
        for (i = 0; i < n; i++)
            if (strlen(l[i].name) > wname) wname = strlen(l[i].name);
        printf("%-*s  %-19s  %-*s  %s\n", (int)wname, "NAME", "CREATED",
               (int)wname, "PARENT", "DISKS");
        for (i = 0; i < n; i++) {
            disks_summary(&l[i], dbuf, sizeof(dbuf));
            printf("%-*s  %-19s  %-*s  %s\n", (int)wname, l[i].name,
                   xl_fmt_time(l[i].creation_time, tbuf, sizeof(tbuf)),
                   (int)wname, l[i].parent ? l[i].parent : "-", dbuf);
            for (k = 0; check && k < l[i].num_disks; k++)
                if (l[i].disks[k].problem)
                    printf("    %s: INVALID: %s\n", l[i].disks[k].vdev,
                           l[i].disks[k].problem);
        }
    }
    libxlsnap_checkpoint_list_free(l, n);
    return EXIT_SUCCESS;
}

int main_checkpoint_info(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", 0, 0, 'j'},
        COMMON_LONG_OPTS,
        {0, 0, 0, 0}
    };
    libxlsnap_checkpoint cp;
    bool json = false;
    int opt, rc, i;
    char tbuf[32];

    SWITCH_FOREACH_OPT(opt, "", opts, "checkpoint-info", 2) {
    case 'j': json = true; break;
    }
    if (argc - optind != 2)
        return usage_error("checkpoint-info", "needs a domain and a "
                           "checkpoint name.");
    rc = libxlsnap_checkpoint_get(ctx, argv[optind], argv[optind + 1], &cp);
    if (rc) return xl_fail_json("checkpoint-info", rc, json);
    if (json) {
        print_json(&cp);
    } else {
        printf("%-13s %s\n", "Name:", cp.name);
        printf("%-13s %s\n", "Domain:", cp.domain_name ? cp.domain_name : "-");
        printf("%-13s %s\n", "Created:",
               xl_fmt_time(cp.creation_time, tbuf, sizeof(tbuf)));
        printf("%-13s %s\n", "Parent:", cp.parent ? cp.parent : "-");
        printf("%-13s %s\n", "Description:",
               cp.description ? cp.description : "-");
        if (cp.snapshot) printf("%-13s %s\n", "Snapshot:", cp.snapshot);
        if (cp.num_merged) {
            printf("%-13s ", "Merged:");
            for (i = 0; i < cp.num_merged; i++)
                printf("%s%s", i ? ", " : "", cp.merged[i]);
            printf("\n");
        }
        printf("%-13s %d\n", "Disks:", cp.num_disks);
        for (i = 0; i < cp.num_disks; i++) {
            const libxlsnap_checkpoint_disk *d = &cp.disks[i];
            printf("  %-6s bitmap %s on %s", d->vdev, d->bitmap,
                   d->image ? d->image : "-");
            if (d->problem) printf(" (INVALID: %s)", d->problem);
            printf("\n");
        }
    }
    libxlsnap_checkpoint_dispose(&cp);
    return EXIT_SUCCESS;
}

int main_checkpoint_dumpxml(int argc, char **argv)
{
    static const struct option opts[] = {
        COMMON_LONG_OPTS,
        {0, 0, 0, 0}
    };
    libxlsnap_checkpoint cp;
    char *xml;
    int opt, rc;

    SWITCH_FOREACH_OPT(opt, "", opts, "checkpoint-dumpxml", 2) {
        /* no options */
    }
    if (argc - optind != 2)
        return usage_error("checkpoint-dumpxml", "needs a domain and a "
                           "checkpoint name.");
    rc = libxlsnap_checkpoint_get(ctx, argv[optind], argv[optind + 1], &cp);
    if (rc) return xl_fail("checkpoint-dumpxml", rc);
    xml = libxlsnap_checkpoint_to_xml(ctx, &cp);
    libxlsnap_checkpoint_dispose(&cp);
    if (!xml) return xl_fail("checkpoint-dumpxml", ERROR_FAIL);
    fputs(xml, stdout);
    free(xml);
    return EXIT_SUCCESS;
}

int main_checkpoint_delete(int argc, char **argv)
{
    static const struct option opts[] = {
        COMMON_LONG_OPTS,
        {0, 0, 0, 0}
    };
    int opt, rc;

    SWITCH_FOREACH_OPT(opt, "", opts, "checkpoint-delete", 2) {
        /* no options */
    }
    if (argc - optind != 2)
        return usage_error("checkpoint-delete", "needs a domain and a "
                           "checkpoint name.");
    xl_exit_on_interrupt("checkpoint-delete", argv[optind], "the delete "
                         "may be part-done (recorded in the domain's "
                         "journal)", "finishes it");
    rc = libxlsnap_checkpoint_delete(ctx, argv[optind], argv[optind + 1], 0,
                                     NULL, NULL);
    xl_exit_on_interrupt(NULL, NULL, NULL, NULL);
    if (rc) return xl_fail("checkpoint-delete", rc);
    printf("Domain checkpoint %s deleted\n", argv[optind + 1]);
    return EXIT_SUCCESS;
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
