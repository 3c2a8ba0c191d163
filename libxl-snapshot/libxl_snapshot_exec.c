/*
 * libxl_snapshot_exec.c - external tools, run with argv
 *
 * qemu-img, lvcreate, vhd-util and friends are run here: fork, execvp
 * with the argv as given (never a shell), stdin from /dev/null, stdout
 * and stderr on pipes watched by the event loop.  The child is reaped
 * when both pipes reach EOF (a tool that closes its output and keeps
 * running is not one we run).  stdout may be delivered line by line
 * (split on \n and \r, for progress output such as qemu-img -p).
 *
 * A timeout or an abort sends SIGTERM, then SIGKILL after a grace
 * period; the callback is still made only once the child is reaped,
 * so that nothing it touches is used while it may still run.  A child
 * dies with its parent (PR_SET_PDEATHSIG): a qemu-img commit must not
 * write on after the process that journaled it was killed, while the
 * next command recovers.
 *
 * The same step runs slow file work that is no tool (child_fn: the
 * unlink of a merged image of hundreds of MiB, the fsync of a memory
 * image): a forked child does it, so that the caller's loop goes on
 * meanwhile, exactly as libxl does its slow file work in children.
 */
#include "libxl_snapshot_internal.h"

#include <ctype.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXEC_KILL_GRACE_MS 2000

static void exec_out_readable(libxl__egc *egc, libxl__ev_fd *ev, int fd,
                              short events, short revents);
static void exec_err_readable(libxl__egc *egc, libxl__ev_fd *ev, int fd,
                              short events, short revents);
static void exec_timeout(libxl__egc *egc, libxl__ev_time *ev, int rc);
static void exec_abort(libxl__egc *egc, libxl__ao_abortable *ab, int rc);
static void exec_check_done(libxl__egc *egc, libxl__exec_state *es);

/*
 * How messages name a run: the tool actually run and its subcommand
 * (from argv: "vhd-util snapshot", "lvm lvcreate", "qemu-img commit"),
 * then what it was for, as the caller says ("snapshot of xvda").
 */
static const char *exec_label(libxl__gc *gc, const libxl__exec_state *es)
{
    const char *tool, *sub;

    if (!es->args) return es->what ? es->what : "child";
    tool = strrchr(es->args[0], '/');
    sub = es->args[1] && es->args[1][0] != '-' ? es->args[1] : NULL;

    tool = tool ? tool + 1 : es->args[0];
    return GCSPRINTF("%s%s%s%s%s%s", tool, sub ? " " : "", sub ? sub : "",
                     es->what ? " (" : "", es->what ? es->what : "",
                     es->what ? ")" : "");
}

void libxl__exec_init(libxl__exec_state *es)
{
    memset(es, 0, sizeof(*es));
    es->pid = -1;
    es->outfd = es->errfd = -1;
    libxl__ev_fd_init(&es->outev);
    libxl__ev_fd_init(&es->errev);
    libxl__ev_time_init(&es->timeout);
    libxl__ao_abortable_init(&es->abrt);
}

bool libxl__exec_running(const libxl__exec_state *es)
{
    return es->pid > 0;
}

int libxl__exec_start(libxl__egc *egc, libxl__exec_state *es)
{
    STATE_AO_GC(es->ao);
    int outp[2] = { -1, -1 }, errp[2] = { -1, -1 }, rc, fault;
    pid_t pid, parent;

    assert(((es->args && es->args[0]) || es->child_fn) && es->callback);
    es->out = GCSTRDUP("");
    es->err = GCSTRDUP("");
    es->outlen = es->errlen = es->outline = 0;
    es->kill_rc = 0;

    if (pipe2(outp, O_CLOEXEC) || pipe2(errp, O_CLOEXEC)) {
        LOGE(ERROR, "%s: cannot create pipe", exec_label(gc, es));
        rc = ERROR_FAIL;
        goto out;
    }
    parent = getpid();
    fault = es->child_fn ? 0 : libxl__fault_io(es->what ?: es->args[0]);
    pid = fork();
    if (pid < 0) {
        LOGE(ERROR, "%s: cannot fork", exec_label(gc, es));
        rc = ERROR_FAIL;
        goto out;
    }
    if (!pid) {
        int nullfd = open("/dev/null", O_RDONLY);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
            _exit(127);
        if (nullfd < 0 || dup2(nullfd, 0) < 0 ||
            dup2(outp[1], 1) < 0 || dup2(errp[1], 2) < 0)
            _exit(127);
        signal(SIGPIPE, SIG_DFL);
        if (es->child_fn) _exit(es->child_fn(es));
        if (fault) {            /* tests: the tool fails, as on a bad disk */
            fprintf(stderr, "%s: %s\n", es->args[0], strerror(fault));
            _exit(1);
        }
        execvp(es->args[0], (char *const *)es->args);
        fprintf(stderr, "cannot execute %s: %s\n", es->args[0],
                strerror(errno));
        _exit(127);
    }
    close(outp[1]);
    close(errp[1]);
    es->pid = pid;
    es->outfd = outp[0];
    es->errfd = errp[0];
    libxl__ev_fd_register(gc, &es->outev, exec_out_readable, es->outfd, POLLIN);
    libxl__ev_fd_register(gc, &es->errev, exec_err_readable, es->errfd, POLLIN);
    if (es->timeout_ms > 0)
        libxl__ev_time_register_rel(gc, &es->timeout, exec_timeout,
                                    es->timeout_ms);
    es->abrt.ao = ao;
    es->abrt.callback = exec_abort;
    if (es->unabortable) {
        /* a few ms of file work that must finish once begun */
    } else if (libxl__ao_abortable_register(&es->abrt)) {
        /* already aborting: kill at once, finish when reaped */
        kill(pid, SIGKILL);
        es->kill_rc = ERROR_ABORTED;
    }
    return 0;

 out:
    if (outp[0] >= 0) { close(outp[0]); close(outp[1]); }
    if (errp[0] >= 0) { close(errp[0]); close(errp[1]); }
    return rc;
}

/* Delivers complete stdout lines, split on \n or \r. */
static void exec_deliver_lines(libxl__egc *egc, libxl__exec_state *es,
                               bool eof)
{
    while (es->outline < es->outlen) {
        size_t i;
        for (i = es->outline; i < es->outlen; i++)
            if (es->out[i] == '\n' || es->out[i] == '\r') break;
        if (i == es->outlen && !eof) return;
        {
            EGC_GC;
            char *line = libxl__gc_zalloc(gc, i - es->outline + 1);
            memcpy(line, es->out + es->outline, i - es->outline);
            es->outline = i < es->outlen ? i + 1 : i;
            if (*line) es->stdout_line(egc, es, line);
        }
    }
}

static void exec_read(libxl__egc *egc, libxl__exec_state *es,
                      libxl__ev_fd *ev, int fd, bool isout)
{
    char buf[4096];
    ssize_t r;

    {
        STATE_AO_GC(es->ao);
        r = read(fd, buf, sizeof(buf));
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) return;
        if (r > 0) {
            char **bufp = isout ? &es->out : &es->err;
            size_t *lenp = isout ? &es->outlen : &es->errlen;
            *bufp = libxl__gc_realloc(gc, *bufp, *lenp + r + 1);
            memcpy(*bufp + *lenp, buf, r);
            *lenp += r;
            (*bufp)[*lenp] = 0;
            if (isout && es->stdout_line) exec_deliver_lines(egc, es, false);
            return;
        }
        /* EOF or error */
        libxl__ev_fd_deregister(gc, ev);
        close(fd);
        if (isout) {
            es->outfd = -1;
            if (es->stdout_line) exec_deliver_lines(egc, es, true);
        } else {
            es->errfd = -1;
        }
        exec_check_done(egc, es);
    }
}

static void exec_out_readable(libxl__egc *egc, libxl__ev_fd *ev, int fd,
                              short events, short revents)
{
    exec_read(egc, CONTAINER_OF(ev, libxl__exec_state, outev), ev, fd,
              true);
}

static void exec_err_readable(libxl__egc *egc, libxl__ev_fd *ev, int fd,
                              short events, short revents)
{
    exec_read(egc, CONTAINER_OF(ev, libxl__exec_state, errev), ev, fd,
              false);
}

static void exec_kill(libxl__exec_state *es, int rc)
{
    if (es->pid <= 0) return;
    if (!es->kill_rc) {
        es->kill_rc = rc;
        kill(es->pid, SIGTERM);
    } else {
        kill(es->pid, SIGKILL);
    }
}

static void exec_timeout(libxl__egc *egc, libxl__ev_time *ev, int rc)
{
    libxl__exec_state *es = CONTAINER_OF(ev, libxl__exec_state, timeout);
    STATE_AO_GC(es->ao);

    if (!es->kill_rc)
        LOG(ERROR, "%s: timed out after %d ms, killing it",
            exec_label(gc, es),
            es->timeout_ms);
    exec_kill(es, ERROR_TIMEDOUT);
    /* escalate to SIGKILL if it does not go */
    libxl__ev_time_register_rel(gc, &es->timeout, exec_timeout,
                                EXEC_KILL_GRACE_MS);
}

static void exec_abort(libxl__egc *egc, libxl__ao_abortable *ab, int rc)
{
    libxl__exec_state *es = CONTAINER_OF(ab, libxl__exec_state, abrt);
    STATE_AO_GC(es->ao);

    exec_kill(es, ERROR_ABORTED);
    libxl__ev_time_deregister(gc, &es->timeout);
    libxl__ev_time_register_rel(gc, &es->timeout, exec_timeout,
                                EXEC_KILL_GRACE_MS);
}

static void exec_check_done(libxl__egc *egc, libxl__exec_state *es)
{
    STATE_AO_GC(es->ao);
    int status = 0, rc;
    pid_t r;

    if (es->outfd >= 0 || es->errfd >= 0) return;
    do {
        r = waitpid(es->pid, &status, 0);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        /* reaped by someone else (SIGCHLD ignored?): outcome unknown */
        LOGE(ERROR, "%s: cannot collect its exit status",
             exec_label(gc, es));
        es->kill_rc = es->kill_rc ? es->kill_rc : ERROR_FAIL;
    }
    es->pid = -1;
    libxl__ev_time_deregister(gc, &es->timeout);
    libxl__ao_abortable_deregister(&es->abrt);

    if (es->kill_rc) {
        rc = es->kill_rc;
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        rc = 0;
    } else {
        rc = ERROR_FAIL;
        if (!es->quiet) {
            const char *last = libxl__tool_error_line(gc, es->err);
            if (WIFEXITED(status))
                LOG(ERROR, "%s failed (exit %d)%s%s", exec_label(gc, es),
                    WEXITSTATUS(status), last ? ": " : "",
                    last ? last : "");
            else
                LOG(ERROR, "%s killed by signal %d", exec_label(gc, es),
                    WTERMSIG(status));
        }
    }
    es->callback(egc, es, rc, status);
}

/*
 * The line of a tool's stderr that says what failed.  Not simply the
 * last one: LVM ends with "WARNING: This metadata update is NOT backed
 * up." or "Run `lvcreate --help' for more information." after the
 * cause.  Those (warnings, help hints, blank lines) are skipped; of the
 * rest, the first line that says it failed (error, failed, invalid,
 * not, cannot, reserved, too long) is the cause (what follows it are
 * its consequences), else the last one (a noise line if that is all
 * there is).  NULL when stderr holds nothing.
 */
static bool is_noise_line(const char *l)
{
    return !*l || !strncasecmp(l, "warning", 7) ||
        (!strncmp(l, "Run `", 5) && strstr(l, "--help"));
}

static bool says_failed(const char *l)
{
    static const char *const words[] = { "error", "fail", "invalid",
        "cannot", "can't", "reserved", "too long", "not", NULL };
    const char *const *w;
    const char *p;

    for (w = words; *w; w++)
        for (p = strcasestr(l, *w); p; p = strcasestr(p + 1, *w)) {
            size_t n = strlen(*w);
            /* "not" as a word, not in "note" or "cannot" */
            if (strcmp(*w, "not") ||
                ((p == l || !isalpha((unsigned char)p[-1])) &&
                 !isalpha((unsigned char)p[n])))
                return true;
        }
    return false;
}

const char *libxl__tool_error_line(libxl__gc *gc, const char *err)
{
    char *e, *tok, *save = NULL, *last = NULL, *noise = NULL;

    if (!err) return NULL;
    e = GCSTRDUP(err);
    for (tok = strtok_r(e, "\n", &save); tok;
         tok = strtok_r(NULL, "\n", &save)) {
        char *end = tok + strlen(tok);
        while (*tok == ' ' || *tok == '\t') tok++;
        while (end > tok && (end[-1] == ' ' || end[-1] == '\r')) *--end = 0;
        if (is_noise_line(tok)) {
            if (*tok) noise = tok;
            continue;
        }
        if (says_failed(tok)) return tok;
        last = tok;
    }
    return last ? last : noise;
}

/* ---------------------------------------------------------------- */
/* synchronous convenience */

typedef struct {
    libxl__exec_state es;
    char **out_r, **err_r;
    int *status_r;
    libxl__gc *callergc;
} exec_sync_state;

static void exec_sync_done(libxl__egc *egc, libxl__exec_state *es, int rc,
                           int status)
{
    exec_sync_state *ss = (exec_sync_state *)es;
    if (ss->out_r) *ss->out_r = libxl__gc_strdup(ss->callergc, es->out);
    if (ss->err_r) *ss->err_r = libxl__gc_strdup(ss->callergc, es->err);
    if (ss->status_r)
        *ss->status_r = !es->kill_rc && WIFEXITED(status)
            ? WEXITSTATUS(status) : -1;
    libxl__ao_complete(egc, es->ao, rc);
}

int libxl__exec_sync(libxl__gc *callergc, const char *const *args,
                     int timeout_ms, char **out_r, char **err_r)
{
    return libxl__exec_sync_status(callergc, args, timeout_ms, out_r, err_r,
                                   NULL);
}

int libxl__exec_sync_status(libxl__gc *callergc, const char *const *args,
                            int timeout_ms, char **out_r, char **err_r,
                            int *status_r)
{
    libxlsnap_ctx *ctx = callergc->owner;
    AO_CREATE(ctx, NULL);
    EGC_INIT(ctx);
    exec_sync_state *ss;
    int rc;

    GCNEW(ss);
    libxl__exec_init(&ss->es);
    ss->es.ao = ao;
    ss->es.what = NULL;              /* the tool names the run */
    ss->es.args = args;
    ss->es.timeout_ms = timeout_ms;
    ss->es.quiet = err_r != NULL;   /* the caller reports failures */
    ss->es.callback = exec_sync_done;
    ss->out_r = out_r;
    ss->err_r = err_r;
    ss->status_r = status_r;
    if (status_r) *status_r = -1;
    ss->callergc = callergc;
    rc = libxl__exec_start(egc, &ss->es);
    EGC_FREE;
    if (rc) return AO_CREATE_FAIL(rc);
    return AO_INPROGRESS;
}

/*
 * child_fn: each file of the NULL-terminated list in es->child_arg
 * removed (a missing one is gone already); each one that cannot be is
 * named on stderr, one a line, and the status is 1.  Async-signal-safe
 * calls only.
 */
int libxl__unlink_files_child(libxl__exec_state *es)
{
    const char *const *f = es->child_arg;
    int failed = 0;

    for (; *f; f++) {
        if (!unlink(*f) || errno == ENOENT) continue;
        failed = 1;
        if (write(2, *f, strlen(*f)) < 0 || write(2, "\n", 1) < 0)
            break;
    }
    return failed;
}

/* After libxl__unlink_files_child: a warning for each file it could not
 * remove (what: "image", ...); how many it named. */
int libxl__unlink_files_report(libxl__gc *gc, libxl__exec_state *es,
                               const char *what)
{
    char *save = NULL, *line;
    int n = 0;

    for (line = es->err ? strtok_r(es->err, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save), n++)
        LOG(WARN, "cannot remove %s '%s'", what, line);
    return n;
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
