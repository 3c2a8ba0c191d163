/*
 * libxl_snapshot_qmp.c - a QMP client on the library's event loop
 *
 * libxenlight has a QMP client (libxl__ev_qmp) but does not export it,
 * so this is our own, with the same life cycle: connect for one
 * operation, do the work, disconnect.  QEMU serves one monitor client
 * at a time and queues the others without a word, so holding the
 * socket longer would stall libxl's own QMP users (and ours); every
 * wait has a timeout.  For the sockets libxl gives QEMU, libxl's own
 * lock on them is taken first, as libxl__ev_qmp does, held until the
 * close (the driver's qmp_trylock; waited for from a timer, within
 * the connect's timeout).
 *
 * Protocol handling:
 *  - The greeting {"QMP": ...} is awaited, then qmp_capabilities is
 *    sent; only then is the connection IDLE.
 *  - Every command carries an "id"; one command is outstanding at a
 *    time.  Replies with another id are ignored.
 *  - Messages with "event" may arrive at any time, also before the
 *    reply to the command that caused them; they go to the
 *    event_callback.
 *  - QEMU ends lines with \r\n; each line is one message.  yajl's tree
 *    parser refuses trailing data, so lines are split first.
 *  - An fd to pass (for getfd) travels as SCM_RIGHTS with the first
 *    byte of the command.
 *  - Error classes map to libxl's ERROR_QMP_* codes.
 *  - Arguments must be UTF-8: QEMU silently drops a command that is not
 *    (seen: no reply at all), so such a command is refused here.
 *  - The QEMU guest agent (agent = true) speaks the same protocol over
 *    its channel's socket, without greeting or capabilities: it is
 *    idle once connected.  Replies to an earlier, abandoned client may
 *    still come first; their ids do not match and they are ignored.
 */
#include "libxl_snapshot_internal.h"

#include <fcntl.h>
#include <signal.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define QMP_DEFAULT_TIMEOUT_MS 30000
#define QMP_RETRY_MS 20

static void qmp_io(libxl__egc *egc, libxl__ev_fd *ev, int fd, short events,
                   short revents);
static void qmp_timeout(libxl__egc *egc, libxl__ev_time *ev, int rc);
static void qmp_fail(libxl__egc *egc, libxl__qmp *qmp, int rc);
static void qmp_callback(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                         int rc);
static void qmp_retry(libxl__egc *egc, libxl__ev_time *ev, int rc);
static void qmp_agent_ready_soon(libxl__gc *gc, libxl__qmp *qmp);
static void qmp_say(libxl__gc *gc, libxl__qmp *qmp, int errnoval,
                    const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

void libxl__qmp_init(libxl__qmp *qmp)
{
    memset(qmp, 0, sizeof(*qmp));
    qmp->fd = -1;
    qmp->txfd = -1;
    qmp->lockfd = -1;
    qmp->state = LIBXL__QMP_DISCONNECTED;
    libxl__ev_fd_init(&qmp->efd);
    libxl__ev_time_init(&qmp->timeout);
    libxl__ev_time_init(&qmp->retry);
}

int libxl__qmp_error_class_to_rc(const char *klass)
{
    if (!klass) return ERROR_UNKNOWN_QMP_ERROR;
    if (!strcmp(klass, "GenericError")) return ERROR_QMP_GENERIC_ERROR;
    if (!strcmp(klass, "CommandNotFound"))
        return ERROR_QMP_COMMAND_NOT_FOUND;
    if (!strcmp(klass, "DeviceNotActive"))
        return ERROR_QMP_DEVICE_NOT_ACTIVE;
    if (!strcmp(klass, "DeviceNotFound")) return ERROR_QMP_DEVICE_NOT_FOUND;
    return ERROR_UNKNOWN_QMP_ERROR;
}

int libxl__qmp_parse_line(libxl__gc *gc, const char *line, yajl_val *v_r)
{
    yajl_val v;

    while (*line == ' ' || *line == '\t') line++;
    if (!*line || !strcmp(line, "\r")) return ERROR_NOTFOUND; /* blank */
    v = libxl__json_parse(gc, line);
    if (!v || !YAJL_IS_OBJECT(v)) return ERROR_PROTOCOL_ERROR_QMP;
    *v_r = v;
    return 0;
}

static void qmp_arm_timeout(libxl__gc *gc, libxl__qmp *qmp)
{
    libxl__ev_time_deregister(gc, &qmp->timeout);
    libxl__ev_time_register_rel(gc, &qmp->timeout, qmp_timeout,
                                qmp->timeout_ms > 0 ? qmp->timeout_ms
                                : QMP_DEFAULT_TIMEOUT_MS);
}

static void qmp_update_events(libxl__gc *gc, libxl__qmp *qmp)
{
    libxl__ev_fd_modify(gc, &qmp->efd,
                        POLLIN | (qmp->txoff < qmp->txlen ? POLLOUT : 0));
}

/*
 * The guest agent greets nobody and negotiates nothing: once connected
 * it is idle.  The callback comes from the loop, never from inside
 * libxl__qmp_connect.
 */
static void qmp_agent_ready(libxl__egc *egc, libxl__ev_time *ev, int rc)
{
    libxl__qmp *qmp = CONTAINER_OF(ev, libxl__qmp, retry);
    qmp->state = LIBXL__QMP_IDLE;
    qmp_callback(egc, qmp, NULL, 0);
}

static void qmp_agent_ready_soon(libxl__gc *gc, libxl__qmp *qmp)
{
    libxl__ev_time_register_rel(gc, &qmp->retry, qmp_agent_ready, 0);
}

/*
 * The toolstack's lock on this socket (the xen driver: libxl's
 * qmp-socket-lock, which libxl's own QMP client holds while it is
 * connected), taken before connecting and held until the close:
 * 0 (held, or none to take), ERROR_LOCK_FAIL (busy: try again), or an
 * error (logged).
 */
static int qmp_lock(libxl__gc *gc, libxl__qmp *qmp)
{
    const libxl__snapshot_driver *drv = CTX->driver;
    char *file = NULL;
    int fd = -1, rc;

    if (qmp->locked || qmp->agent || !drv || !drv->qmp_trylock) return 0;
    rc = drv->qmp_trylock(gc, qmp->path, &file, &fd);
    if (file && !qmp->lockfile)
        qmp->lockfile = libxl__gc_strdup(&qmp->ao->gc, file);
    if (rc) return rc;
    if (fd >= 0) {
        qmp->locked = true;
        qmp->lockfd = fd;
    }
    return 0;
}

static void qmp_unlock(libxl__gc *gc, libxl__qmp *qmp)
{
    if (!qmp->locked) return;
    CTX->driver->qmp_unlock(qmp->lockfile, qmp->lockfd);
    qmp->locked = false;
    qmp->lockfd = -1;
}

/* connect(2), the lock held: 0 (connected, or retried later) or rc */
static int qmp_connect_socket(libxl__gc *gc, libxl__qmp *qmp)
{
    struct sockaddr_un un;

    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    strcpy(un.sun_path, qmp->path);
    if (connect(qmp->fd, (struct sockaddr *)&un, sizeof(un))) {
        if (errno == EAGAIN) {
            /* QEMU's listen backlog is full: not connected, try again */
            libxl__ev_time_register_rel(gc, &qmp->retry, qmp_retry,
                                        QMP_RETRY_MS);
            return 0;
        }
        qmp_say(gc, qmp, errno, "cannot connect to QMP socket %s (is the "
                "domain's device model running?)", qmp->path);
        return ERROR_FAIL;
    }
    libxl__ev_fd_register(gc, &qmp->efd, qmp_io, qmp->fd, POLLIN);
    if (qmp->agent) qmp_agent_ready_soon(gc, qmp);
    return 0;
}

/* the lock was busy: until the connect's timeout */
static void qmp_lock_retry(libxl__egc *egc, libxl__ev_time *ev, int rc)
{
    libxl__qmp *qmp = CONTAINER_OF(ev, libxl__qmp, retry);
    EGC_GC;

    rc = qmp_lock(gc, qmp);
    if (rc == ERROR_LOCK_FAIL) {
        libxl__ev_time_register_rel(gc, &qmp->retry, qmp_lock_retry,
                                    QMP_RETRY_MS);
        return;
    }
    if (!rc) rc = qmp_connect_socket(gc, qmp);
    if (rc) qmp_fail(egc, qmp, rc);
}

int libxl__qmp_connect(libxl__egc *egc, libxl__qmp *qmp,
                       libxl__qmp_callback *callback)
{
    STATE_AO_GC(qmp->ao);
    struct sockaddr_un un;
    int rc;

    assert(qmp->state == LIBXL__QMP_DISCONNECTED);
    if (strlen(qmp->path) >= sizeof(un.sun_path)) {
        LOG(ERROR, "QMP socket path too long: %s", qmp->path);
        return ERROR_INVAL;
    }
    qmp->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                     0);
    if (qmp->fd < 0) {
        LOGE(ERROR, "cannot create socket");
        return ERROR_FAIL;
    }
    qmp->callback = callback;
    qmp->state = LIBXL__QMP_CONNECTING;
    qmp_arm_timeout(gc, qmp);
    rc = qmp_lock(gc, qmp);
    if (rc == ERROR_LOCK_FAIL) {
        LOG(DEBUG, "QMP socket %s: waiting for the lock %s", qmp->path,
            qmp->lockfile);
        libxl__ev_time_register_rel(gc, &qmp->retry, qmp_lock_retry,
                                    QMP_RETRY_MS);
        return 0;
    }
    if (!rc) rc = qmp_connect_socket(gc, qmp);
    if (rc) goto out;
    return 0;

 out:
    libxl__ev_time_deregister(gc, &qmp->timeout);
    libxl__ev_time_deregister(gc, &qmp->retry);
    qmp_unlock(gc, qmp);
    qmp->state = LIBXL__QMP_DISCONNECTED;
    qmp->callback = NULL;
    close(qmp->fd);
    qmp->fd = -1;
    return rc;
}

static void qmp_retry(libxl__egc *egc, libxl__ev_time *ev, int rc)
{
    libxl__qmp *qmp = CONTAINER_OF(ev, libxl__qmp, retry);
    EGC_GC;
    struct sockaddr_un un;

    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    strcpy(un.sun_path, qmp->path);
    if (!connect(qmp->fd, (struct sockaddr *)&un, sizeof(un))) {
        libxl__ev_fd_register(gc, &qmp->efd, qmp_io, qmp->fd, POLLIN);
        if (qmp->agent) qmp_agent_ready_soon(gc, qmp);
        return;
    }
    if (errno == EAGAIN) {
        /* the command timeout ends this if it never gets through */
        libxl__ev_time_register_rel(gc, &qmp->retry, qmp_retry,
                                    QMP_RETRY_MS);
        return;
    }
    qmp_say(gc, qmp, errno, "cannot connect to QMP socket %s", qmp->path);
    qmp_fail(egc, qmp, ERROR_FAIL);
}

/* The command as one line of text; NULL if it cannot be. */
static char *qmp_message_text(libxl__gc *gc, const char *cmd, yajl_val args,
                              unsigned id)
{
    yajl_val m = NULL;
    char *text;

    libxl__json_add_string(gc, &m, "execute", cmd);
    if (args) libxl__json_add(gc, &m, "arguments", args);
    libxl__json_add_integer(gc, &m, "id", id);
    text = libxl__json_to_string(gc, m);
    return text ? GCSPRINTF("%s\r\n", text) : NULL;
}

/* msg: in the ao's gc (it outlives the callback that sends it) */
static void qmp_queue(libxl__gc *gc, libxl__qmp *qmp, char *msg)
{
    qmp->tx = msg;
    qmp->txlen = strlen(msg);
    qmp->txoff = 0;
    LOG(DEBUG, "QMP %u <- %s", qmp->domid, msg);
}

int libxl__qmp_send(libxl__egc *egc, libxl__qmp *qmp, const char *cmd,
                    yajl_val args, int fd, libxl__qmp_callback *cb)
{
    STATE_AO_GC(qmp->ao);
    char *msg;

    if (qmp->state != LIBXL__QMP_IDLE) {
        LOG(ERROR, "QMP: command %s sent while not idle", cmd);
        return ERROR_FAIL;
    }
    /* the message outlives this callback: the ao's gc owns it */
    msg = qmp_message_text(gc, cmd, args, qmp->next_id + 1);
    if (!msg) {
        LOG(ERROR, "QMP: %s: cannot put the command into JSON", cmd);
        return ERROR_FAIL;
    }
    if (!libxl__utf8_valid(msg)) {
        /* QEMU drops such a command without a reply: refuse it here */
        LOG(ERROR, "QMP: %s: an argument (a file name?) is not UTF-8 "
            "text, which QEMU cannot take", cmd);
        return ERROR_INVAL;
    }
    qmp->fault_errno = libxl__fault_io(GCSPRINTF("QMP %s", cmd));
    if (qmp->fault_errno) {
        /* tests: QEMU refuses a command it does not know, as it would
         * refuse this one; the reply is given as this one's */
        msg = qmp_message_text(gc, GCSPRINTF("x-libxl-snapshot-fault-%s",
                                             cmd), NULL, qmp->next_id + 1);
        fd = -1;
    }
    qmp->wait_id = ++qmp->next_id;
    qmp->callback = cb;
    qmp->txfd = fd;
    qmp->error_class = qmp->error_desc = NULL;
    qmp_queue(gc, qmp, msg);
    qmp->state = LIBXL__QMP_WAITING;
    qmp_update_events(gc, qmp);
    qmp_arm_timeout(gc, qmp);
    return 0;
}

void libxl__qmp_close(libxl__gc *gc, libxl__qmp *qmp)
{
    libxl__ev_fd_deregister(gc, &qmp->efd);
    libxl__ev_time_deregister(gc, &qmp->timeout);
    libxl__ev_time_deregister(gc, &qmp->retry);
    if (qmp->fd >= 0) close(qmp->fd);
    qmp->fd = -1;
    qmp_unlock(gc, qmp);              /* after the close, as libxl */
    qmp->state = LIBXL__QMP_DISCONNECTED;
    qmp->rxlen = 0;
    qmp->txlen = qmp->txoff = 0;
    /* error_class and error_desc stay: a failure callback reads them */
}

/* Calls the pending callback once, leaving the connection idle. */
static void qmp_callback(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                         int rc)
{
    libxl__qmp_callback *cb = qmp->callback;
    EGC_GC;

    libxl__ev_time_deregister(gc, &qmp->timeout);
    qmp->callback = NULL;
    if (qmp->state != LIBXL__QMP_DISCONNECTED)
        qmp->state = LIBXL__QMP_IDLE;
    if (cb) cb(egc, qmp, ret, rc);
}

/*
 * Records why the connection failed in error_desc (for quiet callers,
 * who report it themselves) and logs it unless quiet.
 */
static void qmp_say(libxl__gc *gc, libxl__qmp *qmp, int errnoval,
                    const char *fmt, ...)
{
    va_list ap;
    char *msg;

    va_start(ap, fmt);
    msg = libxl__gc_vsprintf(gc, fmt, ap);
    va_end(ap);
    if (errnoval > 0) msg = GCSPRINTF("%s: %s", msg, strerror(errnoval));
    qmp->error_desc = libxl__gc_strdup(&qmp->ao->gc, msg);
    if (!qmp->quiet) LOG(ERROR, "%s", msg);
}

static void qmp_fail(libxl__egc *egc, libxl__qmp *qmp, int rc)
{
    EGC_GC;
    libxl__qmp_close(gc, qmp);
    qmp_callback(egc, qmp, NULL, rc);
}

static void qmp_timeout(libxl__egc *egc, libxl__ev_time *ev, int rc)
{
    libxl__qmp *qmp = CONTAINER_OF(ev, libxl__qmp, timeout);
    EGC_GC;

    int ms = qmp->timeout_ms > 0 ? qmp->timeout_ms : QMP_DEFAULT_TIMEOUT_MS;

    if (qmp->state == LIBXL__QMP_CONNECTING && qmp->lockfile && !qmp->locked)
        qmp_say(gc, qmp, -1, "QMP socket %s: its lock %s is still held by "
                "another process (a toolstack command using QMP?) after "
                "%d ms", qmp->path, qmp->lockfile, ms);
    else
        qmp_say(gc, qmp, -1, "QMP socket %s: no answer within %d ms",
                qmp->path, ms);
    qmp_fail(egc, qmp, ERROR_TIMEDOUT);
}

static int qmp_write(libxl__gc *gc, libxl__qmp *qmp)
{
    ssize_t r;

    if (qmp->txfd >= 0 && qmp->txoff == 0) {
        struct msghdr msg;
        struct iovec iov;
        char cbuf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr *cm;

        memset(&msg, 0, sizeof(msg));
        memset(cbuf, 0, sizeof(cbuf));
        iov.iov_base = qmp->tx;
        iov.iov_len = qmp->txlen;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf;
        msg.msg_controllen = sizeof(cbuf);
        cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &qmp->txfd, sizeof(int));
        r = sendmsg(qmp->fd, &msg, MSG_NOSIGNAL);
        if (r > 0) qmp->txfd = -1;
    } else {
        r = send(qmp->fd, qmp->tx + qmp->txoff, qmp->txlen - qmp->txoff,
                 MSG_NOSIGNAL);
    }
    if (r < 0) {
        if (errno == EAGAIN || errno == EINTR) return 0;
        qmp_say(gc, qmp, errno, "QMP socket %s: write failed", qmp->path);
        return ERROR_PROTOCOL_ERROR_QMP;
    }
    qmp->txoff += r;
    qmp_update_events(gc, qmp);
    return 0;
}

/* One message received.  Returns true if the qmp may have gone. */

/* Whose QEMU, for messages: its domain (the caller's domid, else the
 * one its socket's name says: qmp-libxl-<domid>), else the socket. */
static const char *qmp_who(libxl__gc *gc, const libxl__qmp *qmp)
{
    const char *base = qmp->path ? strrchr(qmp->path, '/') : NULL;
    unsigned id;
    char c;

    if (qmp->domid) return GCSPRINTF("domain %u", qmp->domid);
    base = base ? base + 1 : qmp->path;
    if (base && sscanf(base, "qmp-libxl-%u%c", &id, &c) == 1)
        return GCSPRINTF("domain %u", id);
    return GCSPRINTF("socket %s", qmp->path ? qmp->path : "?");
}

static bool qmp_message(libxl__egc *egc, libxl__qmp *qmp, yajl_val v)
{
    EGC_GC;
    const char *event = libxl__json_get_string(v, "event");
    yajl_val id, ret, err;

    if (event) {
        if (qmp->event_callback)
            qmp->event_callback(egc, qmp, event,
                                libxl__json_get(v, "data"));
        return false;
    }
    if (qmp->state == LIBXL__QMP_CONNECTING) {
        yajl_val q = libxl__json_get(v, "QMP"), ver;
        if (!q) {
            qmp_say(gc, qmp, -1, "QMP socket %s: no greeting", qmp->path);
            qmp_fail(egc, qmp, ERROR_PROTOCOL_ERROR_QMP);
            return true;
        }
        /* {"QMP": {"version": {"qemu": {"major": 7, "minor": 2, ...} */
        ver = libxl__json_get(libxl__json_get(q, "version"), "qemu");
        if (ver)
            qmp->version = LIBXL__QEMU_VERSION(
                libxl__json_get_integer(ver, "major", 0),
                libxl__json_get_integer(ver, "minor", 0),
                libxl__json_get_integer(ver, "micro", 0));
        qmp->wait_id = ++qmp->next_id;
        qmp_queue(gc, qmp, qmp_message_text(&qmp->ao->gc, "qmp_capabilities",
                                            NULL, qmp->wait_id));
        qmp->state = LIBXL__QMP_CAPABILITIES;
        qmp_update_events(gc, qmp);
        return false;
    }
    id = libxl__json_get(v, "id");
    if (!id || !YAJL_IS_INTEGER(id) ||
        (unsigned)YAJL_GET_INTEGER(id) != qmp->wait_id ||
        (qmp->state != LIBXL__QMP_WAITING &&
         qmp->state != LIBXL__QMP_CAPABILITIES)) {
        LOG(DEBUG, "QMP %u: ignoring unexpected message", qmp->domid);
        return false;
    }
    ret = libxl__json_get(v, "return");
    err = libxl__json_get(v, "error");
    if (err) {
        int rc;
        qmp->error_class = libxl__gc_strdup(&qmp->ao->gc,
                                libxl__json_get_string(err, "class") ?: "?");
        qmp->error_desc = libxl__gc_strdup(&qmp->ao->gc,
                                libxl__json_get_string(err, "desc") ?: "?");
        if (qmp->fault_errno) {
            qmp->error_class = "GenericError";
            qmp->error_desc = libxl__gc_strdup(&qmp->ao->gc,
                                               strerror(qmp->fault_errno));
            qmp->fault_errno = 0;
        }
        rc = libxl__qmp_error_class_to_rc(qmp->error_class);
        if (!qmp->quiet && !qmp->quiet_refusal)
            LOG(ERROR, "QEMU (%s) refused: %s", qmp_who(gc, qmp),
                qmp->error_desc);
        qmp_callback(egc, qmp, NULL, rc);
        return true;
    }
    qmp_callback(egc, qmp, ret, 0);
    return true;
}

static void qmp_io(libxl__egc *egc, libxl__ev_fd *ev, int fd, short events,
                   short revents)
{
    libxl__qmp *qmp = CONTAINER_OF(ev, libxl__qmp, efd);
    EGC_GC;
    char buf[8192];
    ssize_t r;
    int rc;

    if (revents & POLLOUT) {
        rc = qmp_write(gc, qmp);
        if (rc) {
            qmp_fail(egc, qmp, rc);
            return;
        }
    }
    if (!(revents & (POLLIN | POLLHUP | POLLERR))) return;

    r = recv(qmp->fd, buf, sizeof(buf), 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (r <= 0) {
        qmp_say(gc, qmp, r < 0 ? errno : -1,
                "QMP socket %s: connection closed by QEMU", qmp->path);
        qmp_fail(egc, qmp, ERROR_PROTOCOL_ERROR_QMP);
        return;
    }
    if (qmp->rxlen + r + 1 > qmp->rxalloc) {
        qmp->rxalloc = (qmp->rxlen + r + 1) * 2;
        qmp->rx = libxl__gc_realloc(&qmp->ao->gc, qmp->rx, qmp->rxalloc);
    }
    memcpy(qmp->rx + qmp->rxlen, buf, r);
    qmp->rxlen += r;
    qmp->rx[qmp->rxlen] = 0;

    for (;;) {
        char *nl = memchr(qmp->rx, '\n', qmp->rxlen);
        char *line;
        yajl_val v;
        size_t n;
        bool gone;

        if (!nl) break;
        n = nl - qmp->rx + 1;
        line = libxl__gc_zalloc(gc, n + 1);
        memcpy(line, qmp->rx, n - 1);
        memmove(qmp->rx, qmp->rx + n, qmp->rxlen - n);
        qmp->rxlen -= n;
        qmp->rx[qmp->rxlen] = 0;
        LOG(DEBUG, "QMP %u -> %s", qmp->domid, line);

        rc = libxl__qmp_parse_line(gc, line, &v);
        if (rc == ERROR_NOTFOUND) continue;
        if (rc) {
            qmp_say(gc, qmp, -1, "QMP socket %s: malformed message",
                    qmp->path);
            qmp_fail(egc, qmp, ERROR_PROTOCOL_ERROR_QMP);
            return;
        }
        gone = qmp_message(egc, qmp, v);
        /* The callback may have closed or reused the connection: the
         * buffer still belongs to qmp, but stop if it is closed. */
        if (gone && qmp->state == LIBXL__QMP_DISCONNECTED) return;
        if (gone && qmp->state != LIBXL__QMP_WAITING &&
            qmp->state != LIBXL__QMP_IDLE)
            return;
    }
    /* After capabilities negotiation completes: tell the caller. */
}

/* ---------------------------------------------------------------- */
/* reply helpers */

void libxl__qmp_drop_file_nodes(libxl__gc *gc, const char *qmp_path,
                                const char *file)
{
    yajl_val nodes = NULL;
    size_t i;
    int pass;

    if (libxl__qmp_run_sync(gc, qmp_path, "query-named-block-nodes",
                            libxl__qmp_args_flat(gc), 0, true, &nodes) ||
        !YAJL_IS_ARRAY(nodes))
        return;
    /* the format nodes, then what they held (the protocol nodes) */
    for (pass = 0; pass < 2; pass++)
        for (i = 0; i < nodes->u.array.len; i++) {
            yajl_val n = nodes->u.array.values[i];
            const char *f = libxl__json_get_string(n, "file");
            const char *name = libxl__json_get_string(n, "node-name");
            const char *drv = libxl__json_get_string(n, "drv");
            yajl_val args = NULL;
            if (!f || !name || !drv || strcmp(f, file) ||
                (!strcmp(drv, "file")) != (pass == 1))
                continue;
            libxl__json_add_string(gc, &args, "node-name", name);
            libxl__qmp_run_sync(gc, qmp_path, "blockdev-del", args,
                                0, true, NULL);
        }
}

bool libxl__qmp_runs_on(libxl__gc *gc, const char *qmp_path,
                        const char *file)
{
    yajl_val blocks = NULL;
    size_t i;

    if (libxl__qmp_run_sync(gc, qmp_path, "query-block", NULL, 0, true,
                            &blocks) || !YAJL_IS_ARRAY(blocks))
        return false;
    for (i = 0; i < blocks->u.array.len; i++) {
        yajl_val in = libxl__json_get(blocks->u.array.values[i], "inserted");
        const char *f = in ? libxl__json_get_string(in, "file") : NULL;
        if (f && libxl__qemu_file_is(gc, f, file)) return true;
    }
    return false;
}

/*
 * Has that QEMU a block node on the image file, in its disks' chains or
 * anywhere in its graph (query-named-block-nodes)?  True when it cannot
 * tell: the callers then leave the file alone.
 */
bool libxl__qmp_has_file_node(libxl__gc *gc, const char *qmp_path,
                              const char *file)
{
    yajl_val nodes = NULL;
    size_t i;

    if (libxl__qmp_run_sync(gc, qmp_path, "query-named-block-nodes",
                            libxl__qmp_args_flat(gc), 10000, true, &nodes) ||
        !nodes || !YAJL_IS_ARRAY(nodes))
        return true;
    for (i = 0; i < nodes->u.array.len; i++) {
        const char *f = libxl__json_get_string(nodes->u.array.values[i],
                                               "file");
        if (f && libxl__qemu_file_is(gc, f, file)) return true;
    }
    return false;
}

/* The format node whose image is path, or NULL. */
const char *libxl__qmp_node_for_file(libxl__gc *gc, yajl_val nodes,
                                     const char *path, libxl_disk_format fmt)
{
    const char *drv = libxl__disk_format_qemu(fmt);
    size_t i;

    for (i = 0; i < nodes->u.array.len; i++) {
        yajl_val n = nodes->u.array.values[i];
        const char *file = libxl__json_get_string(n, "file");
        const char *d = libxl__json_get_string(n, "drv");
        if (file && d && drv && libxl__qemu_file_is(gc, file, path) &&
            !strcmp(d, drv))
            return libxl__json_get_string(n, "node-name");
    }
    return NULL;
}

static yajl_val schema_entity(yajl_val schema, const char *name)
{
    size_t i;
    for (i = 0; i < schema->u.array.len; i++) {
        const char *n = libxl__json_get_string(schema->u.array.values[i],
                                               "name");
        if (n && !strcmp(n, name)) return schema->u.array.values[i];
    }
    return NULL;
}

bool libxl__qmp_schema_has(yajl_val schema, const char *command,
                           const char *arg)
{
    yajl_val cmd, args, members;
    const char *argtype;
    size_t i;

    if (!schema || !YAJL_IS_ARRAY(schema)) return false;
    cmd = schema_entity(schema, command);
    if (!cmd) return false;
    if (!arg) return true;
    argtype = libxl__json_get_string(cmd, "arg-type");
    args = argtype ? schema_entity(schema, argtype) : NULL;
    members = args ? libxl__json_get(args, "members") : NULL;
    for (i = 0; members && YAJL_IS_ARRAY(members) &&
                i < members->u.array.len; i++) {
        const char *m = libxl__json_get_string(members->u.array.values[i],
                                               "name");
        if (m && !strcmp(m, arg)) return true;
    }
    return false;
}

yajl_val libxl__qmp_args_flat(libxl__gc *gc)
{
    yajl_val args = NULL;

    libxl__json_add_bool(gc, &args, "flat", true);
    return args;
}

/* ---------------------------------------------------------------- */
/* synchronous convenience */

typedef struct {
    libxl__qmp qmp;
    const char *cmd;
    yajl_val args;
    libxl__gc *callergc;
    yajl_val *ret_r;
} qmp_sync_state;

static void qmp_sync_connected(libxl__egc *egc, libxl__qmp *qmp,
                               yajl_val ret, int rc);
static void qmp_sync_reply(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                           int rc);

int libxl__qmp_run_sync(libxl__gc *callergc, const char *path,
                        const char *cmd, yajl_val args, int timeout_ms,
                        bool quiet, yajl_val *ret_r)
{
    libxlsnap_ctx *ctx = callergc->owner;
    AO_CREATE(ctx, NULL);
    EGC_INIT(ctx);
    qmp_sync_state *ss;
    int rc;

    GCNEW(ss);
    libxl__qmp_init(&ss->qmp);
    ss->qmp.ao = ao;
    ss->qmp.path = path;
    ss->qmp.timeout_ms = timeout_ms;
    ss->qmp.quiet = quiet;
    ss->cmd = cmd;
    ss->args = args;
    ss->callergc = callergc;
    ss->ret_r = ret_r;
    rc = libxl__qmp_connect(egc, &ss->qmp, qmp_sync_connected);
    EGC_FREE;
    if (rc) return AO_CREATE_FAIL(rc);
    return AO_INPROGRESS;
}

static void qmp_sync_done(libxl__egc *egc, qmp_sync_state *ss, int rc)
{
    libxl__gc *gc = &ss->qmp.ao->gc;
    libxl__ao *ao = ss->qmp.ao;
    libxl__qmp_close(gc, &ss->qmp);
    libxl__ao_complete(egc, ao, rc);
}

static void qmp_sync_connected(libxl__egc *egc, libxl__qmp *qmp,
                               yajl_val ret, int rc)
{
    qmp_sync_state *ss = CONTAINER_OF(qmp, qmp_sync_state, qmp);
    if (rc) goto out;
    rc = libxl__qmp_send(egc, qmp, ss->cmd, ss->args, -1, qmp_sync_reply);
    if (rc) goto out;
    return;
 out:
    qmp_sync_done(egc, ss, rc);
}

static void qmp_sync_reply(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                           int rc)
{
    qmp_sync_state *ss = CONTAINER_OF(qmp, qmp_sync_state, qmp);
    if (!rc && ss->ret_r) {
        /* copy out of the callback's gc into the caller's */
        *ss->ret_r = ret
            ? libxl__json_parse(ss->callergc,
                                libxl__json_to_string(&egc->gc, ret))
            : NULL;
    }
    qmp_sync_done(egc, ss, rc);
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */

int libxl__qmp_flush_images(libxl__gc *gc, const char *qmp_path,
                            const char *fault, bool *cont_failed_r)
{
    yajl_val ret = NULL;
    sigset_t block, old;
    bool running;
    int rc;

    *cont_failed_r = false;
    rc = libxl__qmp_run_sync(gc, qmp_path, "query-status", NULL, 5000,
                             false, &ret);
    if (rc) goto out;
    running = libxl__json_get_bool(ret, "running", false);
    /* a Ctrl-C (or kill) between stop and cont would leave the guest
     * paused: those signals wait until it runs again */
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGQUIT);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    rc = libxl__qmp_run_sync(gc, qmp_path, "stop", NULL, 30000, false,
                             NULL);
    if (fault) libxl__fault_point(fault);
    /* (a stop that failed may have stopped it: cont all the same; a
     * refused cont is asked again) */
    if (running) {
        int tries = 0;
        while (libxl__qmp_run_sync(gc, qmp_path, "cont", NULL, 10000,
                                   tries < 2, NULL)) {
            if (++tries < 3) continue;
            *cont_failed_r = true;
            if (!rc) rc = ERROR_FAIL;
            break;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
 out:
    return rc;
}
