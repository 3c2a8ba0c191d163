/*
 * libxl_snapshot_event.c - the poll loop and asynchronous operations
 *
 * libxenlight's ao machinery (AO_CREATE, libxl__ev_*, egc) is private
 * to libxenlight, so this file mirrors it for our own operations, with
 * the same shape and the same rules:
 *
 *  - An ao is created by the public entry point, its first step
 *    started, then AO_INPROGRESS.  If the caller passed ao_how NULL,
 *    AO_INPROGRESS runs the loop until the ao completes and returns
 *    its rc; otherwise it returns 0 and the callback is made later.
 *  - Every callback runs with an egc whose gc is freed when the
 *    callback returns.  Completion callbacks to the application are
 *    made after the internal callback has returned (ao->notified).
 *  - fds and timers are plain registrations on the ctx; the loop
 *    polls them.  Deregistering from inside a callback is safe: the
 *    dispatcher rescans after each call.
 *  - Abort: libxlsnap_ao_abort() finds the ao by its
 *    libxl_asyncop_how, marks it aborting and calls every registered
 *    abortable with ERROR_ABORTED.  An operation without a registered
 *    abortable at that moment finishes normally (as in libxl).
 *
 * Quick synchronous helpers (a QMP query, starting or stopping a
 * device model) run this loop nested, from inside a step.  Steps of
 * other operations on the same ctx may then run; application
 * callbacks never do (they are made only from afterpoll and
 * libxlsnap_event_loop_run).
 *
 * The library is not thread-safe: one ctx per thread.
 */
#include "libxl_snapshot_internal.h"

#include <poll.h>

/* ---------------------------------------------------------------- */
/* fds and timers */

void libxl__ev_fd_init(libxl__ev_fd *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->fd = -1;
}

int libxl__ev_fd_register(libxl__gc *gc, libxl__ev_fd *ev,
                          libxl__ev_fd_callback *func, int fd,
                          short events)
{
    assert(!ev->registered);
    ev->func = func;
    ev->fd = fd;
    ev->events = events;
    ev->registered = true;
    ev->gen = CTX->fd_gen;
    LIST_INSERT_HEAD(&CTX->fds, ev, entry);
    return 0;
}

int libxl__ev_fd_modify(libxl__gc *gc, libxl__ev_fd *ev, short events)
{
    assert(ev->registered);
    ev->events = events;
    return 0;
}

void libxl__ev_fd_deregister(libxl__gc *gc, libxl__ev_fd *ev)
{
    if (!ev->registered) return;
    LIST_REMOVE(ev, entry);
    ev->registered = false;
}

void libxl__ev_time_init(libxl__ev_time *ev)
{
    memset(ev, 0, sizeof(*ev));
}

int libxl__ev_time_register_rel(libxl__gc *gc, libxl__ev_time *ev,
                                libxl__ev_time_callback *func,
                                int milliseconds)
{
    assert(!ev->registered);
    ev->func = func;
    ev->abs_ms = libxl__now_ms() + (milliseconds > 0 ? milliseconds : 0);
    ev->registered = true;
    LIST_INSERT_HEAD(&CTX->timers, ev, entry);
    return 0;
}

void libxl__ev_time_deregister(libxl__gc *gc, libxl__ev_time *ev)
{
    if (!ev->registered) return;
    LIST_REMOVE(ev, entry);
    ev->registered = false;
}

/* ---------------------------------------------------------------- */
/* ao */

libxl__ao *libxl__ao_create(libxlsnap_ctx *ctx,
                            const libxl_asyncop_how *how)
{
    libxl__ao *ao;

    if (how && !how->callback) {
        LIBXL__LOG(ctx, ERROR, -1, "for_event completion is not "
                   "supported; pass a callback or NULL");
        return NULL;
    }
    ao = calloc(1, sizeof(*ao));
    if (!ao) abort();
    ao->ctx = ctx;
    LIBXL_INIT_GC(ao->gc, ctx);
    ao->sync = !how;
    if (how) ao->how = *how;
    LIST_INIT(&ao->abortables);
    if (LIST_EMPTY(&ctx->aos)) libxl__log_forget(ctx);  /* a new op */
    LIST_INSERT_HEAD(&ctx->aos, ao, entry);
    return ao;
}

static void ao_free(libxl__ao *ao)
{
    LIST_REMOVE(ao, entry);
    libxl__gc_free_all(&ao->gc);
    free(ao);
}

void libxl__ao_complete(libxl__egc *egc, libxl__ao *ao, int rc)
{
    assert(!ao->complete);
    ao->complete = true;
    ao->rc = rc;
}

/* Makes the application callbacks of completed asynchronous aos. */
static void ao_notify_completed(libxlsnap_ctx *ctx)
{
    libxl__ao *ao;

 again:
    LIST_FOREACH(ao, &ctx->aos, entry) {
        if (ao->complete && !ao->sync && !ao->notified) {
            libxl_asyncop_how how = ao->how;
            int rc = ao->rc;
            ao->notified = true;
            ao_free(ao);
            how.callback(ctx->xl, rc, how.u.for_callback);
            goto again;
        }
    }
}

int libxl__ao_inprogress(libxl__ao *ao)
{
    libxlsnap_ctx *ctx = ao->ctx;
    int rc;

    if (!ao->sync) {
        /*
         * Even if a step completed it already, the callback is made
         * from the event loop, never from inside the initiating call.
         */
        return 0;
    }
    while (!ao->complete) {
        rc = libxl__ev_loop_once(ctx, -1);
        if (rc) {
            /* Nothing left to wait for: a bug in an operation. */
            LIBXL__LOG(ctx, ERROR, -1,
                       "operation stalled with nothing to wait for");
            ao->complete = true;
            ao->rc = ERROR_FAIL;
        }
    }
    rc = ao->rc;
    ao_free(ao);
    return rc;
}

int libxl__ao_create_fail(libxl__ao *ao, int rc)
{
    assert(rc);
    assert(!ao->complete);
    ao_free(ao);
    return rc;
}

bool libxl__ao_is_aborting(const libxl__ao *ao)
{
    return ao->aborting;
}

void libxl__ao_abortable_init(libxl__ao_abortable *ab)
{
    ab->registered = false;
}

int libxl__ao_abortable_register(libxl__ao_abortable *ab)
{
    libxl__ao *ao = ab->ao;
    if (ao->aborting) return ERROR_ABORTED;
    assert(!ab->registered);
    LIST_INSERT_HEAD(&ao->abortables, ab, entry);
    ab->registered = true;
    return 0;
}

void libxl__ao_abortable_deregister(libxl__ao_abortable *ab)
{
    if (!ab->registered) return;
    LIST_REMOVE(ab, entry);
    ab->registered = false;
}

int libxlsnap_ao_abort(libxlsnap_ctx *ctx,
                            const libxl_asyncop_how *how)
{
    if (ARGS_MISSING(ctx, how)) return ERROR_INVAL;
    libxl__ao *ao;
    libxl__ao_abortable *ab;
    EGC_INIT(ctx);
    int rc;

    LIST_FOREACH(ao, &ctx->aos, entry) {
        if (!ao->sync && !ao->complete &&
            ao->how.callback == how->callback &&
            ao->how.u.for_callback == how->u.for_callback)
            break;
    }
    if (!ao) {
        rc = ERROR_NOTFOUND;
        goto out;
    }
    if (ao->aborting) {
        rc = ERROR_ABORTED;
        goto out;
    }
    ao->aborting = true;
    while ((ab = LIST_FIRST(&ao->abortables))) {
        libxl__ao_abortable_deregister(ab);
        ab->callback(egc, ab, ERROR_ABORTED);
    }
    rc = 0;
 out:
    EGC_FREE;
    ao_notify_completed(ctx);
    return rc;
}

/* ---------------------------------------------------------------- */
/* the loop */

static int next_timeout(libxlsnap_ctx *ctx, int timeout_ms)
{
    libxl__ev_time *t;
    uint64_t now = libxl__now_ms();

    LIST_FOREACH(t, &ctx->timers, entry) {
        int left = t->abs_ms > now ? (int)(t->abs_ms - now) : 0;
        if (timeout_ms < 0 || left < timeout_ms) timeout_ms = left;
    }
    return timeout_ms;
}

static void dispatch_timers(libxlsnap_ctx *ctx)
{
    libxl__ev_time *t;

 again:
    LIST_FOREACH(t, &ctx->timers, entry) {
        if (t->abs_ms <= libxl__now_ms()) {
            EGC_INIT(ctx);
            libxl__ev_time_deregister(&egc->gc, t);
            t->func(egc, t, ERROR_TIMEDOUT);
            EGC_FREE;
            goto again;
        }
    }
}

static void dispatch_fds(libxlsnap_ctx *ctx, int nfds,
                         const struct pollfd *fds)
{
    libxl__ev_fd *ev;
    int i;

    /* Each registration is served at most once per pass (gen). */
    ctx->fd_gen++;
 again:
    LIST_FOREACH(ev, &ctx->fds, entry) {
        if (ev->gen == ctx->fd_gen) continue;
        for (i = 0; i < nfds; i++) {
            if (fds[i].fd != ev->fd) continue;
            short rev = fds[i].revents & (ev->events | POLLERR | POLLHUP |
                                          POLLNVAL);
            if (!rev) continue;
            {
                EGC_INIT(ctx);
                ev->gen = ctx->fd_gen;
                ev->func(egc, ev, ev->fd, ev->events, rev);
                EGC_FREE;
            }
            goto again;
        }
        ev->gen = ctx->fd_gen;
    }
}

int libxlsnap_osevent_beforepoll(libxlsnap_ctx *ctx,
                                      int *nfds_io, struct pollfd *fds,
                                      int *timeout_upd, struct timeval now)
{
    if (ARGS_MISSING(ctx, nfds_io, timeout_upd)) return ERROR_INVAL;
    if (*nfds_io > 0 && ARGS_MISSING(ctx, fds)) return ERROR_INVAL;
    libxl__ev_fd *ev;
    libxl__ao *ao;
    int n = 0, rc = 0, t;

    LIST_FOREACH(ev, &ctx->fds, entry) {
        if (n < *nfds_io) {
            fds[n].fd = ev->fd;
            fds[n].events = ev->events;
            fds[n].revents = 0;
        } else {
            rc = ERROR_BUFFERFULL;
        }
        n++;
    }
    *nfds_io = n;
    t = next_timeout(ctx, *timeout_upd);
    /* a completion waiting to be reported: do not sleep */
    LIST_FOREACH(ao, &ctx->aos, entry)
        if (ao->complete && !ao->sync && !ao->notified) t = 0;
    *timeout_upd = t;
    return rc;
}

void libxlsnap_osevent_afterpoll(libxlsnap_ctx *ctx, int nfds,
                                      const struct pollfd *fds,
                                      struct timeval now)
{
    if (!ctx || (nfds > 0 && ARGS_MISSING(ctx, fds))) return;
    dispatch_fds(ctx, nfds, fds);
    dispatch_timers(ctx);
    ao_notify_completed(ctx);
}

int libxl__ev_loop_once(libxlsnap_ctx *ctx, int timeout_ms)
{
    struct pollfd *fds = NULL;
    libxl__ev_fd *ev;
    int n = 0, i = 0, r, t;

    LIST_FOREACH(ev, &ctx->fds, entry) n++;
    t = next_timeout(ctx, timeout_ms);
    if (!n && t < 0) return ERROR_NOT_READY;   /* would block forever */
    fds = calloc(n ? n : 1, sizeof(*fds));
    if (!fds) abort();
    LIST_FOREACH(ev, &ctx->fds, entry) {
        fds[i].fd = ev->fd;
        fds[i].events = ev->events;
        i++;
    }
    r = poll(fds, n, t);
    if (r < 0 && errno != EINTR) {
        /* EFAULT, EINVAL or ENOMEM: nothing can safely go on */
        LIBXL__LOG(ctx, CRITICAL, errno, "poll failed");
        abort();
    }
    if (r > 0) dispatch_fds(ctx, n, fds);
    dispatch_timers(ctx);
    free(fds);
    return 0;
}

int libxlsnap_event_loop_run(libxlsnap_ctx *ctx, int timeout_ms)
{
    if (!ctx) return ERROR_INVAL;
    uint64_t deadline = timeout_ms >= 0 ? libxl__now_ms() + timeout_ms : 0;
    libxl__ao *ao;

    for (;;) {
        int pending = 0, left = -1;
        ao_notify_completed(ctx);
        LIST_FOREACH(ao, &ctx->aos, entry)
            if (!ao->complete) pending++;
        if (!pending) return 0;
        if (timeout_ms >= 0) {
            uint64_t now = libxl__now_ms();
            if (now >= deadline) return ERROR_TIMEDOUT;
            left = deadline - now;
        }
        if (libxl__ev_loop_once(ctx, left)) return ERROR_FAIL;
    }
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
