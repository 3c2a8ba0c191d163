/*
 * test_qmp.c - the QMP client against recorded transcripts
 *
 * A fake QEMU (a forked child listening on a unix socket) replays a
 * transcript from tests/unit/qmp/ (one file per case):
 *
 *   < JSON      sent to the client; consecutive lines in one write
 *   <~ JSON     sent in two halves with a pause (split framing)
 *   > command   the next client message must execute `command`;
 *               its "id" replaces $ID in the lines that follow
 *   ! close     the server hangs up
 *   ! sleep MS  the server waits
 *
 * The child exits 0 only if every expectation was met, so the tests
 * check both sides.  These complement, never replace, the tests
 * against real QEMU processes (tests/qemu, test_ao.c).
 */
#include <CUnit/CUnit.h>

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

#define TRANSCRIPTS "tests/unit/qmp"

/* ---------------------------------------------------------------- */
/* the fake server */

static int read_line(int fd, char *buf, size_t len)
{
    size_t n = 0;
    while (n + 1 < len) {
        ssize_t r = read(fd, buf + n, 1);
        if (r <= 0) return -1;
        if (buf[n] == '\n') break;
        n++;
    }
    buf[n] = 0;
    return 0;
}

static char *subst_id(const char *line, const char *id)
{
    static char out[8192];
    const char *p = strstr(line, "$ID");
    if (!p) {
        snprintf(out, sizeof(out), "%s", line);
    } else {
        snprintf(out, sizeof(out), "%.*s%s%s", (int)(p - line), line, id,
                 p + 3);
    }
    return out;
}

/* Serves one connection from the transcript; exit status = verdict. */
static void serve(int lfd, const char *transcript)
{
    FILE *f = fopen(transcript, "r");
    char line[8192], msg[8192], id[64] = "0", pending[65536] = "";
    int fd;

    if (!f) _exit(2);
    fd = accept(lfd, NULL, NULL);
    if (fd < 0) _exit(2);
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = 0;
        if (line[0] == '#' || !line[0]) continue;
        if (line[0] != '<' && *pending) {
            if (write(fd, pending, strlen(pending)) < 0) _exit(3);
            pending[0] = 0;
        }
        if (!strncmp(line, "<~ ", 3)) {
            char *s = subst_id(line + 3, id);
            size_t half = strlen(s) / 2;
            if (write(fd, s, half) < 0) _exit(3);
            usleep(20000);
            if (write(fd, s + half, strlen(s) - half) < 0 ||
                write(fd, "\r\n", 2) < 0)
                _exit(3);
        } else if (!strncmp(line, "< ", 2)) {
            strncat(pending, subst_id(line + 2, id),
                    sizeof(pending) - strlen(pending) - 3);
            strcat(pending, "\r\n");
        } else if (!strncmp(line, "> ", 2)) {
            /* the child exits soon: NOGC's allocations are left */
            yajl_val m, n;
            const char *x;
            if (read_line(fd, msg, sizeof(msg))) _exit(4);
            m = libxl__json_parse(NOGC, msg);
            x = libxl__json_get_string(m, "execute");
            if (!x || strcmp(x, line + 2)) _exit(5);
            n = libxl__json_get(m, "id");
            if (!YAJL_IS_INTEGER(n)) _exit(6);
            snprintf(id, sizeof(id), "%lld", YAJL_GET_INTEGER(n));
        } else if (!strcmp(line, "! close")) {
            close(fd);
            fd = -1;
            break;
        } else if (!strncmp(line, "! sleep ", 8)) {
            usleep(atoi(line + 8) * 1000);
        } else {
            _exit(7);
        }
    }
    if (*pending && fd >= 0 && write(fd, pending, strlen(pending)) < 0)
        _exit(3);
    /* let the client read everything before we go */
    if (fd >= 0) {
        usleep(100000);
        close(fd);
    }
    _exit(0);
}

typedef struct {
    char *dir, *sock;
    pid_t pid;
} fake_qemu;

static int fake_start(fake_qemu *fq, const char *name)
{
    struct sockaddr_un un;
    char *transcript;
    int lfd;

    fq->dir = unit_tmpdir("qmp");
    if (!fq->dir) return -1;
    if (asprintf(&fq->sock, "%s/qmp.sock", fq->dir) < 0 ||
        asprintf(&transcript, "%s/%s", TRANSCRIPTS, name) < 0)
        return -1;
    lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    strcpy(un.sun_path, fq->sock);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&un, sizeof(un)) ||
        listen(lfd, 1))
        return -1;
    fq->pid = fork();
    if (!fq->pid) serve(lfd, transcript);
    close(lfd);
    free(transcript);
    return fq->pid > 0 ? 0 : -1;
}

/* The server's verdict: 0 if the client did what the transcript says. */
static int fake_finish(fake_qemu *fq)
{
    int status = -1;
    kill(fq->pid, SIGTERM);
    waitpid(fq->pid, &status, 0);
    unit_rm_rf(fq->dir);
    free(fq->dir);
    free(fq->sock);
    if (WIFSIGNALED(status)) return 0;  /* stopped by us while sleeping */
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---------------------------------------------------------------- */
/* a client: connect, one command, record what happened */

typedef struct {
    libxl__qmp qmp;
    const char *cmd;
    yajl_val args;
    int rc;
    int events, events_before_reply;
    char *reply;                      /* JSON text of "return" */
} client;

static void client_reply(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                         int rc)
{
    client *c = CONTAINER_OF(qmp, client, qmp);
    c->rc = rc;
    c->events_before_reply = c->events;
    if (ret) c->reply = strdup(libxl__json_to_string(&egc->gc, ret));
    libxl__qmp_close(&egc->gc, qmp);
    libxl__ao_complete(egc, qmp->ao, 0);
}

static void client_connected(libxl__egc *egc, libxl__qmp *qmp,
                             yajl_val ret, int rc)
{
    client *c = CONTAINER_OF(qmp, client, qmp);
    if (!rc) rc = libxl__qmp_send(egc, qmp, c->cmd, c->args, -1,
                                  client_reply);
    if (rc) {
        c->rc = rc;
        libxl__qmp_close(&egc->gc, qmp);
        libxl__ao_complete(egc, qmp->ao, 0);
    }
}

static void client_event(libxl__egc *egc, libxl__qmp *qmp,
                         const char *event, yajl_val data)
{
    client *c = CONTAINER_OF(qmp, client, qmp);
    c->events++;
}

static int run_client(libxlsnap_ctx *ctx, client *c, const char *sock,
                      int timeout_ms)
{
    AO_CREATE(ctx, NULL);
    EGC_INIT(ctx);
    int rc;

    (void)gc;
    libxl__qmp_init(&c->qmp);
    c->qmp.ao = ao;
    c->qmp.path = sock;
    c->qmp.timeout_ms = timeout_ms;
    c->qmp.quiet = true;
    c->qmp.event_callback = client_event;
    c->rc = 1;
    rc = libxl__qmp_connect(egc, &c->qmp, client_connected);
    EGC_FREE;
    if (rc) return AO_CREATE_FAIL(rc);
    return AO_INPROGRESS;
}

static client *transcript_run(const char *name, const char *cmd,
                              int timeout_ms, int *verdict)
{
    static client c;
    fake_qemu fq;
    char *base = unit_tmpdir("qmpctx");
    libxlsnap_ctx *ctx = unit_ctx(base);

    memset(&c, 0, sizeof(c));
    c.cmd = cmd;
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    CU_ASSERT_EQUAL_FATAL(fake_start(&fq, name), 0);
    CU_ASSERT_EQUAL(run_client(ctx, &c, fq.sock, timeout_ms), 0);
    *verdict = fake_finish(&fq);
    unit_ctx_free(ctx);
    unit_rm_rf(base);
    free(base);
    return &c;
}

/* ---------------------------------------------------------------- */

void test_qmp__parse_line(void)
{
    GC_INIT(NULL);
    yajl_val v;

    CU_ASSERT_EQUAL(libxl__qmp_parse_line(gc, "", &v), ERROR_NOTFOUND);
    CU_ASSERT_EQUAL(libxl__qmp_parse_line(gc, "\r", &v), ERROR_NOTFOUND);
    CU_ASSERT_EQUAL(libxl__qmp_parse_line(gc, "{\"return\": {}}\r", &v), 0);
    CU_ASSERT_PTR_NOT_NULL(libxl__json_get(v, "return"));
    CU_ASSERT_EQUAL(libxl__qmp_parse_line(gc, "[1, 2]", &v),
                    ERROR_PROTOCOL_ERROR_QMP);
    CU_ASSERT_EQUAL(libxl__qmp_parse_line(gc, "{\"return\": ", &v),
                    ERROR_PROTOCOL_ERROR_QMP);
    CU_ASSERT_EQUAL(libxl__qmp_parse_line(gc, "{} {}", &v),
                    ERROR_PROTOCOL_ERROR_QMP);
    GC_FREE;
}

void test_qmp__error_classes(void)
{
    CU_ASSERT_EQUAL(libxl__qmp_error_class_to_rc("GenericError"),
                    ERROR_QMP_GENERIC_ERROR);
    CU_ASSERT_EQUAL(libxl__qmp_error_class_to_rc("CommandNotFound"),
                    ERROR_QMP_COMMAND_NOT_FOUND);
    CU_ASSERT_EQUAL(libxl__qmp_error_class_to_rc("DeviceNotActive"),
                    ERROR_QMP_DEVICE_NOT_ACTIVE);
    CU_ASSERT_EQUAL(libxl__qmp_error_class_to_rc("DeviceNotFound"),
                    ERROR_QMP_DEVICE_NOT_FOUND);
    CU_ASSERT_EQUAL(libxl__qmp_error_class_to_rc("KVMMissingCap"),
                    ERROR_UNKNOWN_QMP_ERROR);
    CU_ASSERT_EQUAL(libxl__qmp_error_class_to_rc(NULL),
                    ERROR_UNKNOWN_QMP_ERROR);
}

void test_qmp__node_for_file(void)
{
    GC_INIT(NULL);
    yajl_val nodes = libxl__json_parse(gc,
        "[{\"node-name\": \"xvda-ov1\", \"drv\": \"qcow2\", "
        "\"file\": \"/i/a.s1.qcow2\"},"
        " {\"node-name\": \"#block123\", \"drv\": \"file\", "
        "\"file\": \"/i/a.qcow2\"},"
        " {\"node-name\": \"xvda-qcow2\", \"drv\": \"qcow2\", "
        "\"file\": \"/i/a.qcow2\"}]");

    CU_ASSERT_PTR_NOT_NULL_FATAL(nodes);
    CU_ASSERT_STRING_EQUAL(libxl__qmp_node_for_file(gc, nodes, "/i/a.qcow2",
                               LIBXL_DISK_FORMAT_QCOW2), "xvda-qcow2");
    CU_ASSERT_STRING_EQUAL(libxl__qmp_node_for_file(gc, nodes, "/i/a.s1.qcow2",
                               LIBXL_DISK_FORMAT_QCOW2), "xvda-ov1");
    CU_ASSERT_PTR_NULL(libxl__qmp_node_for_file(gc, nodes, "/i/a.qcow2",
                                                LIBXL_DISK_FORMAT_RAW));
    CU_ASSERT_PTR_NULL(libxl__qmp_node_for_file(gc, nodes, "/i/none.qcow2",
                                                LIBXL_DISK_FORMAT_QCOW2));
    GC_FREE;
}

void test_qmp__event_before_reply(void)
{
    int verdict;
    client *c = transcript_run("event-before-reply.qmp", "block-commit",
                               0, &verdict);
    CU_ASSERT_EQUAL(verdict, 0);
    CU_ASSERT_EQUAL(c->rc, 0);
    CU_ASSERT_EQUAL(c->events_before_reply, 2);
    CU_ASSERT_PTR_NOT_NULL(c->reply);
    free(c->reply);
}

void test_qmp__error_reply(void)
{
    int verdict;
    client *c = transcript_run("error-class.qmp", "block-commit", 0,
                               &verdict);
    CU_ASSERT_EQUAL(verdict, 0);
    CU_ASSERT_EQUAL(c->rc, ERROR_QMP_DEVICE_NOT_FOUND);
    CU_ASSERT_PTR_NULL(c->reply);
    /* the greeting's version: 7.2.22 (a block job skips the schema) */
    CU_ASSERT_EQUAL(c->qmp.version, LIBXL__QEMU_VERSION(7, 2, 22));
}

void test_qmp__split_and_coalesced(void)
{
    int verdict;
    client *c = transcript_run("split-and-coalesced.qmp", "query-status",
                               0, &verdict);
    CU_ASSERT_EQUAL(verdict, 0);
    CU_ASSERT_EQUAL(c->rc, 0);
    CU_ASSERT_EQUAL(c->events_before_reply, 1);
    /* the reply with a foreign id was ignored: we got "running" */
    CU_ASSERT_PTR_NOT_NULL_FATAL(c->reply);
    CU_ASSERT_PTR_NOT_NULL(strstr(c->reply, "\"running\""));
    CU_ASSERT_PTR_NULL(strstr(c->reply, "paused"));
    free(c->reply);
}

void test_qmp__closed_mid_command(void)
{
    int verdict;
    client *c = transcript_run("closed-mid-command.qmp", "transaction", 0,
                               &verdict);
    CU_ASSERT_EQUAL(verdict, 0);
    CU_ASSERT_EQUAL(c->rc, ERROR_PROTOCOL_ERROR_QMP);
}

void test_qmp__timeout(void)
{
    int verdict;
    uint64_t t0 = libxl__now_ms(), dt;
    client *c = transcript_run("no-answer.qmp", "query-status", 300,
                               &verdict);
    dt = libxl__now_ms() - t0;
    CU_ASSERT_EQUAL(verdict, 0);
    CU_ASSERT_EQUAL(c->rc, ERROR_TIMEDOUT);
    CU_ASSERT(dt >= 300 && dt < 1900);
}

void test_qmp__no_socket(void)
{
    char *base = unit_tmpdir("qmpctx");
    libxlsnap_ctx *ctx = unit_ctx(base);
    client c;
    char *sock;

    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    memset(&c, 0, sizeof(c));
    c.cmd = "query-status";
    CU_ASSERT_FATAL(asprintf(&sock, "%s/none.sock", base) > 0);
    CU_ASSERT_EQUAL(run_client(ctx, &c, sock, 0), ERROR_FAIL);
    free(sock);
    unit_ctx_free(ctx);
    unit_rm_rf(base);
    free(base);
}

void test_qmp__schema_has(void)
{
    GC_INIT(NULL);
    /* the shape of query-qmp-schema: commands point at numbered types */
    yajl_val schema = libxl__json_parse(gc,
        "[{\"name\": \"block-commit\", \"meta-type\": \"command\", "
        "  \"arg-type\": \"42\", \"ret-type\": \"0\"},"
        " {\"name\": \"42\", \"meta-type\": \"object\", \"members\": ["
        "  {\"name\": \"job-id\", \"type\": \"str\"},"
        "  {\"name\": \"top-node\", \"type\": \"str\"}]},"
        " {\"name\": \"query-jobs\", \"meta-type\": \"command\"}]");

    CU_ASSERT_PTR_NOT_NULL_FATAL(schema);
    CU_ASSERT(libxl__qmp_schema_has(schema, "block-commit", NULL));
    CU_ASSERT(libxl__qmp_schema_has(schema, "block-commit", "top-node"));
    CU_ASSERT(!libxl__qmp_schema_has(schema, "block-commit", "base-node"));
    CU_ASSERT(libxl__qmp_schema_has(schema, "query-jobs", NULL));
    CU_ASSERT(!libxl__qmp_schema_has(schema, "query-jobs", "x"));
    CU_ASSERT(!libxl__qmp_schema_has(schema, "block-stream", NULL));
    CU_ASSERT(!libxl__qmp_schema_has(NULL, "block-commit", NULL));
    GC_FREE;
}
