/*
 * xl_backup.c - xl backup-begin, backup-info, backup-end
 *
 * Shaped as virsh's backup-begin / domjobinfo / domjobabort, with
 * options instead of backup XML.  A push waits for its copies (the job
 * wait of xl_blockjob.c: a progress line, Ctrl-C cancels and undoes)
 * unless --async; then backup-end waits.  A pull returns once its NBD
 * exports are up, and backup-end ends them.
 */
#include <inttypes.h>
#include <string.h>

#include "xl.h"

int main_backup_begin(int argc, char **argv)
{
    static const struct option opts[] = {
        {"target", 1, 0, 't'},
        {"nbd", 1, 0, 'n'},
        {"incremental", 1, 0, 'i'},
        {"checkpoint", 1, 0, 'c'},
        {"fallback-full", 0, 0, 'F'},
        {"disk", 1, 0, 'd'},
        {"bandwidth", 1, 0, 'B'},
        {"async", 0, 0, 'A'},
        {"verbose", 0, 0, 'v'},
        COMMON_LONG_OPTS,
        {0, 0, 0, 0}
    };
    libxlsnap_backup_params p;
    libxlsnap_progress_how progress;
    libxl_asyncop_how how;
    xl_job_wait w;
    const char **disks = NULL;
    int opt, rc;

    memset(&p, 0, sizeof(p));
    memset(&w, 0, sizeof(w));
    SWITCH_FOREACH_OPT(opt, "", opts, "backup-begin", 1) {
    case 't': p.target_dir = optarg; break;
    case 'n': p.nbd = optarg; break;
    case 'i': p.incremental = optarg; break;
    case 'c': p.checkpoint = optarg; break;
    case 'F': p.flags |= LIBXLSNAP_BACKUP_FALLBACK_FULL; break;
    case 'd':
        disks = realloc(disks, (p.num_disks + 1) * sizeof(*disks));
        if (!disks) return EXIT_FAILURE;
        disks[p.num_disks++] = optarg;
        break;
    case 'B':
        if (xl_parse_bandwidth(optarg, &p.bandwidth)) return EXIT_FAILURE;
        break;
    case 'A': p.flags |= LIBXLSNAP_BACKUP_NO_WAIT; break;
    case 'v': w.verbose = true; break;
    }
    p.disks = disks;
    if (argc - optind != 1)
        return usage_error("backup-begin", "takes one domain.");
    if (!p.target_dir == !p.nbd)
        return usage_error("backup-begin", "takes one of --target (push) "
                           "and --nbd (pull).");
    if (xl_options_exclude("backup-begin", p.nbd, "--nbd",
                           p.flags & LIBXLSNAP_BACKUP_NO_WAIT,
                           "--async (a pull returns once its exports are "
                           "up)") ||
        xl_options_exclude("backup-begin", p.nbd, "--nbd", p.bandwidth,
                           "--bandwidth (the NBD client reads at its own "
                           "pace)")) {
        free(disks);
        return EXIT_FAILURE;
    }

    xl_job_setup(&w, "Backup", &progress, &how);
    rc = libxlsnap_backup_begin(ctx, argv[optind], &p, &progress, &how);
    if (!rc) rc = xl_job_wait_for(&w, &how);
    free(disks);
    if (rc) return xl_fail("backup-begin", rc);
    if (p.nbd) {
        printf("Backup of %s exported on %s (export names: the disks); "
               "end it with xl backup-end\n", argv[optind], p.nbd);
    } else if (p.flags & LIBXLSNAP_BACKUP_NO_WAIT) {
        printf("Backup of %s to %s started\n", argv[optind], p.target_dir);
    } else {
        printf("Backup of %s to %s complete\n", argv[optind], p.target_dir);
        xl_job_summary(&w, false);
    }
    return EXIT_SUCCESS;
}

int main_backup_info(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", 0, 0, 'j'},
        COMMON_LONG_OPTS,
        {0, 0, 0, 0}
    };
    libxlsnap_backup_info info;
    bool json = false;
    int opt, rc, i;

    SWITCH_FOREACH_OPT(opt, "", opts, "backup-info", 1) {
    case 'j': json = true; break;
    }
    if (argc - optind != 1)
        return usage_error("backup-info", "takes one domain.");
    rc = libxlsnap_backup_get(ctx, argv[optind], &info);
    if (rc) return xl_fail_json("backup-info", rc, json);
    if (json) {
        char *j = libxlsnap_backup_info_to_json(ctx, &info);
        if (!j) {
            libxlsnap_backup_info_dispose(&info);
            return xl_fail_json("backup-info", ERROR_FAIL, true);
        }
        printf("%s\n", j);
        free(j);
    } else {
        /* a pull's progress is its client's: not known here */
        if (!info.pull)
            printf("Backup: [%3u %%]\n", info.len
                   ? (unsigned)(info.offset * 100 / info.len) : 0);
        printf("%-13s %s%s\n", "Mode:", info.pull ? "pull" : "push",
               info.live ? "" : " (offline)");
        printf("%-13s %s\n", "Target:", info.target);
        if (info.incremental && !info.fell_back)
            printf("%-13s incremental since %s\n", "Kind:", info.incremental);
        else
            printf("%-13s full%s\n", "Kind:", info.fell_back
                   ? " (the incremental's bitmaps were not trusted)" : "");
        if (info.checkpoint)
            printf("%-13s %s\n", "Checkpoint:", info.checkpoint);
        printf("%-13s %s\n", "State:",
               libxlsnap_blockjob_state_to_string(info.state));
        if (!info.pull)
            printf("%-13s %"PRIu64"/%"PRIu64" bytes\n", "Progress:",
                   info.offset, info.len);
        if (info.error) printf("%-13s %s\n", "Error:", info.error);
        for (i = 0; i < info.num_jobs; i++) {
            const libxlsnap_blockjob_info *j = &info.jobs[i];
            if (info.pull)
                printf("%-5s %-10s %s -> export %s%s%s\n", j->vdev,
                       libxlsnap_blockjob_state_to_string(j->state),
                       j->top, j->base, j->error ? "  " : "",
                       j->error ? j->error : "");
            else
                printf("%-5s %-10s %3u %%  %s -> %s%s%s\n", j->vdev,
                       libxlsnap_blockjob_state_to_string(j->state),
                       j->len ? (unsigned)(j->offset * 100 / j->len) : 0,
                       j->top, j->base, j->error ? "  " : "",
                       j->error ? j->error : "");
        }
    }
    libxlsnap_backup_info_dispose(&info);
    return EXIT_SUCCESS;
}

int main_backup_end(int argc, char **argv)
{
    static const struct option opts[] = {
        {"abort", 0, 0, 'a'},
        {"verbose", 0, 0, 'v'},
        COMMON_LONG_OPTS,
        {0, 0, 0, 0}
    };
    libxlsnap_progress_how progress;
    libxl_asyncop_how how;
    xl_job_wait w;
    unsigned flags = 0;
    int opt, rc;

    memset(&w, 0, sizeof(w));
    SWITCH_FOREACH_OPT(opt, "", opts, "backup-end", 1) {
    case 'a': flags |= LIBXLSNAP_BACKUP_END_ABORT; break;
    case 'v': w.verbose = true; break;
    }
    if (argc - optind != 1)
        return usage_error("backup-end", "takes one domain.");
    xl_job_setup(&w, "Backup", &progress, &how);
    rc = libxlsnap_backup_end(ctx, argv[optind], flags, &progress, &how);
    if (!rc) rc = xl_job_wait_for(&w, &how);
    if (rc == ERROR_ABORTED && (flags & LIBXLSNAP_BACKUP_END_ABORT)) {
        printf("Backup of %s aborted; what it made is removed\n",
               argv[optind]);
        return EXIT_SUCCESS;
    }
    if (rc) return xl_fail("backup-end", rc);
    printf("Backup of %s complete\n", argv[optind]);
    return EXIT_SUCCESS;
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
