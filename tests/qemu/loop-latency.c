/*
 * loop-latency.c - an application with its own poll() loop, as a
 * daemon using libxl-snapshot would be (test-61-loop-latency.sh)
 *
 *   loop-latency [--abort-after MS] DOMAIN check
 *   loop-latency [--abort-after MS] DOMAIN commit VDEV    (active, pivot,
 *                                                          delete)
 *   loop-latency [--abort-after MS] DOMAIN revert SNAPSHOT
 *   loop-latency [--abort-after MS] DOMAIN delete SNAPSHOT
 *   loop-latency [--abort-after MS] DOMAIN checkpoint NAME  (live, memory
 *                                                          and disks)
 *   loop-latency [--abort-after MS] DOMAIN recover   (what an interrupted
 *                                                operation left)
 *   loop-latency idle MS
 *
 * It starts the operation with a callback ao_how and runs its own loop:
 * libxlsnap_osevent_beforepoll, poll, afterpoll, with a timer of
 * its own that ticks every 10 ms.  Two measures:
 *  - maxgap: the longest gap between two ticks (the starting call
 *    included), what the application sees, the machine's own delays
 *    included (a loaded VM can leave a process unscheduled for tens
 *    of ms while QEMU writes hundreds of MiB);
 *  - maxlib: the longest time the library held the loop, summed over
 *    its calls between two ticks (the starting call, beforepoll,
 *    afterpoll, ao_abort): what a step that blocks shows, and all that
 *    the library can be held to.
 * With --abort-after, libxlsnap_ao_abort is called that many ms
 * after the start (0: right after the starting call, before the loop
 * runs).
 *
 * Prints one line:
 *   <op>: rc=<callback rc> maxlib=<ms> maxgap=<ms> gap2=<ms> ticks=<n>
 *         time=<ms> start=<ms of the starting call>
 *         [abort_rc=<rc> abort_at=<ms>] [problems=<n>] [recovered=<0|1>]
 *         [get_rc=<rc>]
 * (get_rc, after a checkpoint: libxlsnap_domain_snapshot_get's rc for
 * its name once the callback has come, 0 when the snapshot exists)
 * and the three longest gaps with what the loop was doing before each
 * (start / afterpoll / abort).  Exit 0 when the callback came (whatever
 * its rc), 2 on a usage or setup error, 3 when the operation never
 * completed (60 s).
 *
 * It asks for SCHED_FIFO with SCHED_RESET_ON_FORK when it may (root):
 * the loop is then not delayed by the other processes of a loaded
 * machine, only by what the library does in it, and the tools the
 * library starts run as usual.  Said on stderr when refused.
 */
#define _GNU_SOURCE                 /* SCHED_RESET_ON_FORK */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxl_snapshot.h>

#define TICK_MS 10
#define MAX_FDS 256
#define LIMIT_MS 60000

static int done_rc = 1;
static int done;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void op_done(libxl_ctx *xl, int rc, void *for_callback)
{
    (void)xl;
    (void)for_callback;
    done_rc = rc;
    done = 1;
}

typedef struct { double gap; const char *where; } gap_t;
static gap_t top[3];

static void note_gap(double gap, const char *where)
{
    int i, j;
    for (i = 0; i < 3; i++) {
        if (gap > top[i].gap) {
            for (j = 2; j > i; j--) top[j] = top[j - 1];
            top[i].gap = gap;
            top[i].where = where;
            return;
        }
    }
}

int main(int argc, char **argv)
{
    libxlsnap_ctx *ctx = NULL;
    xentoollog_logger_stdiostream *lg;
    libxl_asyncop_how how;
    static int token;
    const char *domain, *op, *arg = NULL, *where;
    char **problems = NULL;
    int num_problems = -1, rc, abort_after = -1, abort_rc = 1, ticks = 0;
    static bool recovered;               /* kept until the callback */
    bool recover = false;
    double t0, t_start, last_tick, next_tick, abort_at = -1, t, idle_ms = 0;
    double lib = 0, maxlib = 0, c;       /* ms in the library since the
                                            last tick; the most */
    struct sched_param sp = { .sched_priority = 10 };

    if (argc > 2 && !strcmp(argv[1], "--abort-after")) {
        abort_after = atoi(argv[2]);
        argv += 2;
        argc -= 2;
    }
    if (argc == 3 && !strcmp(argv[1], "idle")) {
        idle_ms = atof(argv[2]);
        domain = op = "idle";
    } else {
        if (argc < 3) goto usage;
        domain = argv[1];
        op = argv[2];
        if (strcmp(op, "check") && strcmp(op, "recover")) {
            if (argc != 4) goto usage;
            arg = argv[3];
        }
    }
    if (sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &sp))
        fprintf(stderr, "loop-latency: no SCHED_FIFO (%s): gaps include "
                "the machine's scheduling\n", strerror(errno));

    lg = xtl_createlogger_stdiostream(stderr, XTL_ERROR, 0);
    if (!lg) return 2;
    rc = libxlsnap_ctx_alloc(&ctx, LIBXLSNAP_VERSION, 0,
                                  (xentoollog_logger *)lg, NULL);
    if (rc) {
        fprintf(stderr, "loop-latency: ctx_alloc: %d\n", rc);
        return 2;
    }
    memset(&how, 0, sizeof(how));
    how.callback = op_done;
    how.u.for_callback = &token;

    t0 = last_tick = now_ms();
    next_tick = t0 + TICK_MS;
    if (!strcmp(op, "idle")) {
        rc = 0;
    } else if (!strcmp(op, "check")) {
        rc = libxlsnap_domain_snapshot_check(ctx, domain, &problems,
                                         &num_problems, &how);
    } else if (!strcmp(op, "recover")) {
        recover = true;
        rc = libxlsnap_domain_snapshot_recover(ctx, domain, &recovered,
                                               &how);
    } else if (!strcmp(op, "commit")) {
        libxlsnap_block_commit_params p;
        memset(&p, 0, sizeof(p));
        p.flags = LIBXLSNAP_BLOCK_COMMIT_ACTIVE | LIBXLSNAP_BLOCK_COMMIT_PIVOT |
                  LIBXLSNAP_BLOCK_COMMIT_DELETE;
        rc = libxlsnap_block_commit(ctx, domain, arg, &p, NULL, &how);
    } else if (!strcmp(op, "revert")) {
        rc = libxlsnap_domain_snapshot_revert(ctx, domain, arg, 0, NULL, &how);
    } else if (!strcmp(op, "delete")) {
        rc = libxlsnap_domain_snapshot_delete(ctx, domain, arg, 0, NULL, &how);
    } else if (!strcmp(op, "checkpoint")) {
        static libxlsnap_domain_snapshot snap;   /* kept until the callback */
        libxlsnap_domain_snapshot_init(&snap);
        snap.name = strdup(arg);
        snap.memory = strdup("yes");
        rc = libxlsnap_domain_snapshot_create(ctx, domain, &snap,
                                          LIBXLSNAP_CREATE_LIVE, NULL,
                                          &how);
    } else {
        goto usage;
    }
    t_start = now_ms() - t0;
    lib = t_start;
    if (rc) {
        fprintf(stderr, "loop-latency: %s: the starting call failed: %d\n",
                op, rc);
        libxlsnap_ctx_free(ctx);
        return 2;
    }
    where = "start";
    if (abort_after == 0) {
        c = now_ms();
        abort_rc = libxlsnap_ao_abort(ctx, &how);
        abort_at = now_ms() - t0;
        lib += now_ms() - c;
        where = "abort";
    }

    for (;;) {
        struct pollfd fds[MAX_FDS];
        int nfds = MAX_FDS, timeout;
        struct timeval tv;

        t = now_ms();
        if (t >= next_tick) {
            double gap = t - last_tick;
            note_gap(gap, where);
            if (lib > maxlib) maxlib = lib;
            lib = 0;
            last_tick = t;
            next_tick = t + TICK_MS;
            ticks++;
            where = "tick";
        }
        if (done && strcmp(op, "idle")) break;
        if (!strcmp(op, "idle") && t - t0 >= idle_ms) break;
        if (t - t0 > LIMIT_MS) {
            fprintf(stderr, "loop-latency: %s: not done after %d ms\n", op,
                    LIMIT_MS);
            return 3;
        }
        if (abort_after > 0 && abort_at < 0 && t - t0 >= abort_after) {
            c = now_ms();
            abort_rc = libxlsnap_ao_abort(ctx, &how);
            abort_at = now_ms() - t0;
            lib += now_ms() - c;
            where = "abort";
            continue;
        }
        timeout = (int)(next_tick - t) + 1;
        if (abort_after > 0 && abort_at < 0 &&
            t0 + abort_after - t < timeout)
            timeout = (int)(t0 + abort_after - t) + 1;
        if (timeout < 0) timeout = 0;
        gettimeofday(&tv, NULL);
        c = now_ms();
        rc = libxlsnap_osevent_beforepoll(ctx, &nfds, fds, &timeout, tv);
        lib += now_ms() - c;
        if (rc) {
            fprintf(stderr, "loop-latency: beforepoll: %d\n", rc);
            return 2;
        }
        if (poll(fds, nfds, timeout) < 0 && errno != EINTR) {
            perror("poll");
            return 2;
        }
        gettimeofday(&tv, NULL);
        c = now_ms();
        libxlsnap_osevent_afterpoll(ctx, nfds, fds, tv);
        lib += now_ms() - c;
        where = "afterpoll";
    }

    if (lib > maxlib) maxlib = lib;
    printf("%s: rc=%d maxlib=%.0f maxgap=%.0f gap2=%.0f ticks=%d time=%.0f "
           "start=%.0f", op, strcmp(op, "idle") ? done_rc : 0, maxlib,
           top[0].gap, top[1].gap,
           ticks, now_ms() - t0, t_start);
    if (abort_after >= 0)
        printf(" abort_rc=%d abort_at=%.0f", abort_rc, abort_at);
    if (num_problems >= 0) printf(" problems=%d", num_problems);
    if (recover) printf(" recovered=%d", recovered);
    if (!strcmp(op, "checkpoint")) {
        libxlsnap_domain_snapshot got;
        libxlsnap_domain_snapshot_init(&got);
        printf(" get_rc=%d",
               libxlsnap_domain_snapshot_get(ctx, domain, arg, &got));
        libxlsnap_domain_snapshot_dispose(&got);
    }
    printf("\n");
    printf("  longest gaps: %.1f ms (%s), %.1f ms (%s), %.1f ms (%s)\n",
           top[0].gap, top[0].where ? top[0].where : "-",
           top[1].gap, top[1].where ? top[1].where : "-",
           top[2].gap, top[2].where ? top[2].where : "-");
    libxlsnap_strings_free(problems, num_problems);
    libxlsnap_ctx_free(ctx);
    return 0;

 usage:
    fprintf(stderr, "usage: loop-latency [--abort-after MS] DOMAIN "
            "check | recover | commit VDEV | revert SNAPSHOT | delete SNAPSHOT | "
            "checkpoint NAME;  loop-latency idle MS\n");
    return 2;
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
