/*
 * xl_blockjob.c - xl block-commit, block-stream (block-pull), block-job,
 * block-copy
 *
 * Options follow virsh's blockcommit / blockpull / blockjob.  Jobs run
 * through the library's asynchronous API: xl polls the library's event
 * loop, so that Ctrl-C (SIGINT; SIGTERM and SIGHUP alike) can abort the
 * job cleanly, and draws a
 * progress line on a terminal (to a pipe only with --verbose, one line
 * when the job is ready and one for its end: completed, failed or
 * cancelled, never "concluded", a step on the way to each), then says
 * how long the job took and how fast
 * (xl_job_*, which snapshot-delete shares); a Ctrl-C that comes too
 * late to stop anything is said so, and the command's outcome stands
 * (exit 0).  Without --async the
 * command waits for the job (--wait is accepted and is the default);
 * with --async it returns once the job runs, and `xl block-job` then
 * shows or controls it.
 */
#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "xl.h"

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    interrupted = 1;
}

static void job_done_cb(libxl_ctx *unused, int rc, void *for_callback)
{
    xl_job_wait *w = for_callback;
    w->done = true;
    w->rc = rc;
}

static void job_progress_cb(const libxlsnap_progress *p,
                            void *for_callback)
{
    const libxlsnap_blockjob_info *info = p->job;
    xl_job_wait *w = for_callback;
    unsigned pct;

    if (!info) return;                /* only jobs are followed here */

    if (info->state == LIBXLSNAP_BLOCKJOB_STATE_COMPLETED &&
        w->state != LIBXLSNAP_BLOCKJOB_STATE_COMPLETED)
        w->bytes += info->len;        /* one more job done */
    w->reported = true;
    w->state = info->state;
    w->len = info->len;
    /* a progress line on a terminal; to a pipe only with --verbose */
    if (!w->tty && !w->verbose) return;
    pct = info->len ? (unsigned)(info->offset * 100 / info->len) : 0;
    if (w->tty) {
        fprintf(stdout, "\r%s: [%3u %%]", w->what, pct);
    } else if (info->state < LIBXLSNAP_BLOCKJOB_STATE_READY) {
        w->printed = -1;              /* a job (of a delete's) runs */
    } else if (info->state != LIBXLSNAP_BLOCKJOB_STATE_ABORTING &&
               info->state != LIBXLSNAP_BLOCKJOB_STATE_CONCLUDED &&
               (int)info->state != w->printed) {
        /* a state the job stays in (READY) or ends in, once: not the
         * ones on the way (CONCLUDED comes before CANCELLED too) */
        fprintf(stdout, "%s: [%3u %%] %s\n", w->what, pct,
                libxlsnap_blockjob_state_to_string(info->state));
        w->printed = info->state;
    }
    fflush(stdout);
}

void xl_job_setup(xl_job_wait *w, const char *what,
                  libxlsnap_progress_how *progress,
                  libxl_asyncop_how *how)
{
    w->what = what;
    w->tty = isatty(STDOUT_FILENO);
    w->printed = -1;
    clock_gettime(CLOCK_MONOTONIC, &w->t0);
    progress->callback = job_progress_cb;
    progress->for_callback = w;
    memset(how, 0, sizeof(*how));
    how->callback = job_done_cb;
    how->u.for_callback = w;
}

/* what aborts a job xl waits for: Ctrl-C, and a kill or a hang-up (the
 * job must not run on with a record owned by a dead process) */
static const int abort_signals[] = { SIGINT, SIGTERM, SIGHUP };
#define NUM_ABORT_SIGNALS \
    (int)(sizeof(abort_signals) / sizeof(abort_signals[0]))

int xl_job_wait_for(xl_job_wait *w, const libxl_asyncop_how *how)
{
    struct sigaction sa, old[NUM_ABORT_SIGNALS];
    bool aborted = false;
    int i;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;
    for (i = 0; i < NUM_ABORT_SIGNALS; i++)
        sigaction(abort_signals[i], &sa, &old[i]);
    while (!w->done) {
        /* (short turns: the loop runs its steps until the time is up,
         * and a signal that came outside its poll must stop the job
         * before its next step, e.g. the pivot of a job found READY) */
        libxlsnap_event_loop_run(ctx, 1);
        if (interrupted && !aborted) {
            aborted = true;
            fprintf(stderr, "\nAborting the job...\n");
            libxlsnap_ao_abort(ctx, how);
        }
    }
    for (i = 0; i < NUM_ABORT_SIGNALS; i++)
        sigaction(abort_signals[i], &old[i], NULL);
    if (w->tty && w->reported) fputc('\n', stdout);
    /* the abort came too late to stop anything: say so, not "aborted" */
    if (aborted && !w->rc)
        fprintf(stderr, "Too late to abort: the job had already finished, "
                "and the command completed.\n");
    return w->rc;
}

void xl_job_summary(const xl_job_wait *w, bool all_jobs)
{
    struct timespec t1;
    double s, mib = (all_jobs ? w->bytes : w->len) / 1048576.0;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    s = (t1.tv_sec - w->t0.tv_sec) + (t1.tv_nsec - w->t0.tv_nsec) / 1e9;
    printf("%s: %.1f MiB in %.2f s (%.1f MiB/s)\n", w->what, mib, s,
           s > 0 ? mib / s : 0.0);
}

int xl_parse_bandwidth(const char *s, uint64_t *bytes_r)
{
    char *end;
    unsigned long long mib = strtoull(s, &end, 10);
    if (!*s || *end || mib > (UINT64_MAX >> 20)) {
        fprintf(stderr, "libxl-snapshot: error: invalid bandwidth '%s' "
                "(MiB/s, a whole number; 0: no limit)\n", s);
        return -1;
    }
    *bytes_r = (uint64_t)mib << 20;
    return 0;
}

static int parse_timeout(const char *s, int *ms_r)
{
    char *end;
    long secs = strtol(s, &end, 10);
    if (!*s || *end || secs <= 0 || secs > 86400 * 7) {
        fprintf(stderr, "libxl-snapshot: error: invalid timeout '%s' "
                "(seconds)\n", s);
        return -1;
    }
    *ms_r = (int)secs * 1000;
    return 0;
}

int main_block_commit(int argc, char **argv)
{
    static const struct option opts[] = {
        {"top", 1, 0, 't'},
        {"base", 1, 0, 'b'},
        {"shallow", 0, 0, 's'},
        {"active", 0, 0, 'a'},
        {"pivot", 0, 0, 'p'},
        {"keep-overlay", 0, 0, 'k'},
        {"delete", 0, 0, 'd'},
        {"keep-relative", 0, 0, 'r'},
        {"bandwidth", 1, 0, 'B'},
        {"wait", 0, 0, 'w'},
        {"verbose", 0, 0, 'v'},
        {"timeout", 1, 0, 'T'},
        {"async", 0, 0, 'A'},
        COMMON_LONG_OPTS,
        {0, 0, 0, 0}
    };
    libxlsnap_block_commit_params p;
    libxlsnap_progress_how progress;
    libxl_asyncop_how how;
    xl_job_wait w;
    const char *domain, *vdev;
    int opt, rc;

    memset(&p, 0, sizeof(p));
    memset(&w, 0, sizeof(w));
    SWITCH_FOREACH_OPT(opt, "", opts, "block-commit", 2) {
    case 't': p.top = optarg; break;
    case 'b': p.base = optarg; break;
    case 's': p.flags |= LIBXLSNAP_BLOCK_COMMIT_SHALLOW; break;
    case 'a': p.flags |= LIBXLSNAP_BLOCK_COMMIT_ACTIVE; break;
    case 'p': p.flags |= LIBXLSNAP_BLOCK_COMMIT_PIVOT; break;
    case 'k': p.flags |= LIBXLSNAP_BLOCK_COMMIT_KEEP_OVERLAY; break;
    case 'd': p.flags |= LIBXLSNAP_BLOCK_COMMIT_DELETE; break;
    case 'r': p.flags |= LIBXLSNAP_BLOCK_COMMIT_KEEP_RELATIVE; break;
    case 'B':
        if (xl_parse_bandwidth(optarg, &p.bandwidth)) return EXIT_FAILURE;
        break;
    case 'w': break;
    case 'v': w.verbose = true; break;
    case 'T':
        if (parse_timeout(optarg, &p.timeout_ms)) return EXIT_FAILURE;
        break;
    case 'A': p.flags |= LIBXLSNAP_BLOCK_COMMIT_NO_WAIT; break;
    }
    if (argc - optind != 2) {
        return usage_error("block-commit", "takes a domain and a disk.");
    }
    domain = argv[optind];
    vdev = argv[optind + 1];
    if (xl_options_exclude("block-commit",
                           p.flags & LIBXLSNAP_BLOCK_COMMIT_PIVOT, "--pivot",
                           p.flags & LIBXLSNAP_BLOCK_COMMIT_KEEP_OVERLAY,
                           "--keep-overlay") ||
        xl_options_exclude("block-commit",
                           p.flags & LIBXLSNAP_BLOCK_COMMIT_SHALLOW, "--shallow",
                           p.base, "--base") ||
        xl_options_exclude("block-commit",
                           p.flags & LIBXLSNAP_BLOCK_COMMIT_DELETE, "--delete",
                           p.flags & LIBXLSNAP_BLOCK_COMMIT_KEEP_OVERLAY,
                           "--keep-overlay (the overlay still uses the "
                           "images below it)"))
        return EXIT_FAILURE;
    /* --pivot / --keep-overlay imply an active commit, as in virsh */
    if (p.flags & (LIBXLSNAP_BLOCK_COMMIT_PIVOT | LIBXLSNAP_BLOCK_COMMIT_KEEP_OVERLAY))
        p.flags |= LIBXLSNAP_BLOCK_COMMIT_ACTIVE;

    xl_job_setup(&w, "Block commit", &progress, &how);
    rc = libxlsnap_block_commit(ctx, domain, vdev, &p, &progress, &how);
    if (!rc) rc = xl_job_wait_for(&w, &how);
    if (rc) return xl_fail("block-commit", rc);
    if (p.flags & LIBXLSNAP_BLOCK_COMMIT_NO_WAIT)
        printf("Block commit of %s started\n", vdev);
    else if (p.flags & LIBXLSNAP_BLOCK_COMMIT_PIVOT)
        printf("Successfully pivoted\n");
    else if (p.flags & LIBXLSNAP_BLOCK_COMMIT_KEEP_OVERLAY)
        printf("Commit complete, overlay image kept\n");
    else if (w.state == LIBXLSNAP_BLOCKJOB_STATE_READY)
        printf("Now in synchronized phase: pivot or abort with "
               "xl block-job\n");
    else
        printf("Block commit complete\n");
    /* the job is over (not left running, nor waiting at READY) */
    if (!(p.flags & LIBXLSNAP_BLOCK_COMMIT_NO_WAIT) &&
        w.state != LIBXLSNAP_BLOCKJOB_STATE_READY)
        xl_job_summary(&w, false);
    return EXIT_SUCCESS;
}

int main_block_stream(int argc, char **argv)
{
    static const struct option opts[] = {
        {"base", 1, 0, 'b'},
        {"bandwidth", 1, 0, 'B'},
        {"wait", 0, 0, 'w'},
        {"verbose", 0, 0, 'v'},
        {"timeout", 1, 0, 'T'},
        {"async", 0, 0, 'A'},
        COMMON_LONG_OPTS,
        {0, 0, 0, 0}
    };
    libxlsnap_progress_how progress;
    libxl_asyncop_how how;
    xl_job_wait w;
    const char *base = NULL;
    uint64_t bandwidth = 0;
    unsigned flags = 0;
    int opt, rc, timeout_ms = 0;

    memset(&w, 0, sizeof(w));
    SWITCH_FOREACH_OPT(opt, "", opts, "block-stream", 2) {
    case 'b': base = optarg; break;
    case 'B':
        if (xl_parse_bandwidth(optarg, &bandwidth)) return EXIT_FAILURE;
        break;
    case 'w': break;
    case 'v': w.verbose = true; break;
    case 'T':
        if (parse_timeout(optarg, &timeout_ms)) return EXIT_FAILURE;
        break;
    case 'A': flags |= LIBXLSNAP_BLOCK_COMMIT_NO_WAIT; break;
    }
    if (argc - optind != 2) {
        return usage_error("block-stream", "takes a domain and a disk.");
    }
    xl_job_setup(&w, "Block stream", &progress, &how);
    rc = libxlsnap_block_stream(ctx, argv[optind], argv[optind + 1], base,
                            bandwidth, timeout_ms, flags, &progress, &how);
    if (!rc) rc = xl_job_wait_for(&w, &how);
    if (rc) return xl_fail("block-stream", rc);
    printf(flags ? "Block stream of %s started\n"
                 : "Block stream of %s complete\n", argv[optind + 1]);
    if (!flags) xl_job_summary(&w, false);
    return EXIT_SUCCESS;
}

int main_block_copy(int argc, char **argv)
{
    static const struct option opts[] = {
        {"shallow", 0, 0, 's'},
        {"reuse-external", 0, 0, 'r'},
        {"format", 1, 0, 'f'},
        {"pivot", 0, 0, 'p'},
        {"finish", 0, 0, 'F'},
        {"bandwidth", 1, 0, 'B'},
        {"wait", 0, 0, 'w'},
        {"verbose", 0, 0, 'v'},
        {"timeout", 1, 0, 'T'},
        {"async", 0, 0, 'A'},
        COMMON_LONG_OPTS,
        {0, 0, 0, 0}
    };
    libxlsnap_block_copy_params p;
    libxlsnap_progress_how progress;
    libxl_asyncop_how how;
    xl_job_wait w;
    const char *domain, *vdev, *dest, *format = NULL;
    int opt, rc;

    memset(&p, 0, sizeof(p));
    memset(&w, 0, sizeof(w));
    SWITCH_FOREACH_OPT(opt, "", opts, "block-copy", 3) {
    case 's': p.flags |= LIBXLSNAP_BLOCK_COPY_SHALLOW; break;
    case 'r': p.flags |= LIBXLSNAP_BLOCK_COPY_REUSE_EXTERNAL; break;
    case 'f': format = optarg; break;
    case 'p': p.flags |= LIBXLSNAP_BLOCK_COPY_PIVOT; break;
    case 'F': p.flags |= LIBXLSNAP_BLOCK_COPY_FINISH; break;
    case 'B':
        if (xl_parse_bandwidth(optarg, &p.bandwidth)) return EXIT_FAILURE;
        break;
    case 'w': break;
    case 'v': w.verbose = true; break;
    case 'T':
        if (parse_timeout(optarg, &p.timeout_ms)) return EXIT_FAILURE;
        break;
    case 'A': p.flags |= LIBXLSNAP_BLOCK_COPY_NO_WAIT; break;
    }
    if (argc - optind != 3) {
        return usage_error("block-copy", "takes a domain, a disk and a "
                           "destination.");
    }
    if (format && strcmp(format, "qcow2") && strcmp(format, "raw")) {
        fprintf(stderr, "libxl-snapshot: error: block-copy: invalid format "
                "'%s' (qcow2 or raw)\n", format);
        return EXIT_FAILURE;
    }
    if (format)
        p.format = strcmp(format, "raw") ? LIBXL_DISK_FORMAT_QCOW2
                                         : LIBXL_DISK_FORMAT_RAW;
    domain = argv[optind];
    vdev = argv[optind + 1];
    dest = argv[optind + 2];
    if (xl_options_exclude("block-copy",
                           p.flags & LIBXLSNAP_BLOCK_COPY_PIVOT, "--pivot",
                           p.flags & LIBXLSNAP_BLOCK_COPY_FINISH, "--finish") ||
        xl_options_exclude("block-copy",
                           p.flags & LIBXLSNAP_BLOCK_COPY_NO_WAIT, "--async",
                           p.timeout_ms, "--timeout (nothing waits for the "
                           "job to time it)") ||
        xl_options_exclude("block-copy",
                           p.flags & LIBXLSNAP_BLOCK_COPY_SHALLOW, "--shallow",
                           p.format == LIBXL_DISK_FORMAT_RAW,
                           "--format=raw (a raw image has no backing file)"))
        return EXIT_FAILURE;

    xl_job_setup(&w, "Block copy", &progress, &how);
    rc = libxlsnap_block_copy(ctx, domain, vdev, dest, &p, &progress, &how);
    if (!rc) rc = xl_job_wait_for(&w, &how);
    if (rc) return xl_fail("block-copy", rc);
    if (p.flags & LIBXLSNAP_BLOCK_COPY_NO_WAIT)
        printf("Block copy of %s started\n", vdev);
    else if (p.flags & LIBXLSNAP_BLOCK_COPY_PIVOT)
        printf("Successfully pivoted to %s\n", dest);
    else if (w.state == LIBXLSNAP_BLOCKJOB_STATE_READY)
        printf("Now in mirroring phase: pivot or abort with xl block-job\n");
    else
        printf("Copy of %s complete in %s; the domain stays on its image\n",
               vdev, dest);
    if (!(p.flags & LIBXLSNAP_BLOCK_COPY_NO_WAIT) &&
        w.state != LIBXLSNAP_BLOCKJOB_STATE_READY)
        xl_job_summary(&w, false);
    return EXIT_SUCCESS;
}

static int print_job_json(const libxlsnap_blockjob_info *i)
{
    char *j = libxlsnap_blockjob_info_to_json(ctx, i);

    if (!j) return xl_fail_json("block-job", ERROR_FAIL, true);
    printf("%s\n", j);
    free(j);
    return EXIT_SUCCESS;
}

int main_block_job(int argc, char **argv)
{
    static const struct option opts[] = {
        {"info", 0, 0, 'i'},
        {"abort", 0, 0, 'a'},
        {"pivot", 0, 0, 'p'},
        {"bandwidth", 1, 0, 'B'},
        {"json", 0, 0, 'j'},
        COMMON_LONG_OPTS,
        {0, 0, 0, 0}
    };
    libxlsnap_blockjob_info info;
    const char *domain, *vdev;
    uint64_t bandwidth = 0;
    int opt, rc, ret, actions = 0, what = 'i';
    bool json = false;

    SWITCH_FOREACH_OPT(opt, "", opts, "block-job", 2) {
    case 'i': case 'a': case 'p':
        what = opt;
        actions++;
        break;
    case 'B':
        if (xl_parse_bandwidth(optarg, &bandwidth)) return EXIT_FAILURE;
        what = 'B';
        actions++;
        break;
    case 'j': json = true; break;
    }
    if (actions > 1 || argc - optind != 2) {
        return usage_error("block-job", "takes one of --info, --abort, "
                           "--pivot, --bandwidth, a domain and a disk.");
    }
    domain = argv[optind];
    vdev = argv[optind + 1];
    switch (what) {
    case 'a':
        rc = libxlsnap_blockjob_abort(ctx, domain, vdev, NULL);
        if (rc) return xl_fail_json("block-job", rc, json);
        printf("Block job on %s aborted\n", vdev);
        return EXIT_SUCCESS;
    case 'p':
        rc = libxlsnap_blockjob_pivot(ctx, domain, vdev, NULL);
        if (rc) return xl_fail_json("block-job", rc, json);
        printf("Successfully pivoted\n");
        return EXIT_SUCCESS;
    case 'B':
        rc = libxlsnap_blockjob_set_speed(ctx, domain, vdev, bandwidth);
        if (rc) return xl_fail_json("block-job", rc, json);
        return EXIT_SUCCESS;
    default:
        rc = libxlsnap_blockjob_get(ctx, domain, vdev, &info);
        if (rc) return xl_fail_json("block-job", rc, json);
        ret = EXIT_SUCCESS;
        if (json) {
            ret = print_job_json(&info);
        } else {
            printf("%s: [%3u %%]\n", info.type == LIBXLSNAP_BLOCKJOB_TYPE_STREAM
                   ? "Block stream" : info.type == LIBXLSNAP_BLOCKJOB_TYPE_COPY
                   ? "Block copy" : "Block commit",
                   info.len ? (unsigned)(info.offset * 100 / info.len) : 0);
            printf("%-9s %s\n%-9s %s\n%-9s %s\n", "Id:", info.id,
                   "Type:", libxlsnap_blockjob_type_to_string(info.type),
                   "State:", libxlsnap_blockjob_state_to_string(info.state));
            if (!info.live && !info.len)
                /* qemu-img in the process that runs it: not known here */
                printf("%-9s unknown (offline, in qemu-img)\n",
                       "Progress:");
            else
                printf("%-9s %"PRIu64"/%"PRIu64" bytes\n", "Progress:",
                       info.offset, info.len);
            printf("%-9s %"PRIu64" MiB/s\n", "Speed:", info.speed >> 20);
            if (info.error) printf("%-9s %s\n", "Error:", info.error);
        }
        libxlsnap_blockjob_info_dispose(&info);
        return ret;
    }
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
