/*
 * libxl_snapshot_drv_qemu.c - domains that are plain QEMU processes
 *
 * For hosts without Xen, for the demo and for the tests, a "domain" is
 * a QEMU process started from an xl-format config.  It is built to
 * look like Xen's qdisk backend from the QMP side, so the snapshot
 * code has one path for both drivers:
 *
 *   qemu-system-x86_64 -machine none -nodefaults -display none
 *       -qmp unix:<run dir>/qmp-libxl-<domid>,server=on,wait=off
 *       -drive if=none,id=<vdev>,node-name=<vdev>-<format>,file=...
 *
 * (-drive, not a bare -blockdev: only a BlockBackend keeps the overlays
 * of blockdev-snapshot-sync.)  A config with device_model_override
 * pointing at Xen's xen-qemu-system-i386 runs that binary with
 * -accel qtest, which exercises the exact QEMU Xen uses.
 *
 * Runtime state, one file per domain in the run dir:
 *   qemu-dm-<domid>.libxl-json  {domid, name, uuid, pid, config_file,
 *                                disks: [{vdev, path, format}]}
 *   qemu-dm-<name>.log          QEMU's stdout/stderr
 * The process is double-forked and runs in its own session, so it
 * outlives xl and leaves no zombie.  A runtime file whose process is
 * gone is stale and removed when seen.
 */
#include "libxl_snapshot_internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define QEMU_START_TIMEOUT_MS 15000
#define QEMU_QUIT_TIMEOUT_MS 5000

typedef struct {
    uint32_t domid;
    char *name;
    libxl_uuid uuid;
    pid_t pid;
    unsigned long long start_time;   /* of pid, see pid_stat */
    char *config_file;
    libxl__active_disk *disks;
    int num_disks;
} qemu_runtime;

static char *runtime_path(libxl__gc *gc, uint32_t domid)
{
    return GCSPRINTF("%s/qemu-dm-%u.libxl-json", CTX->run_dir, domid);
}

static char *qmp_path(libxl__gc *gc, uint32_t domid)
{
    return GCSPRINTF("%s/qmp-libxl-%u", CTX->run_dir, domid);
}

static int runtime_write(libxl__gc *gc, const qemu_runtime *rt)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    const unsigned char *buf;
    size_t len;
    char uuid[40];
    int i, rc;

#define S(s) libxl__yajl_gen_str(g, (s))
    yajl_gen_config(g, yajl_gen_beautify, 1);
    snprintf(uuid, sizeof(uuid), LIBXL_UUID_FMT, LIBXL_UUID_BYTES(rt->uuid));
    yajl_gen_map_open(g);
    S("domid"); yajl_gen_integer(g, rt->domid);
    S("name"); S(rt->name);
    S("uuid"); S(uuid);
    S("pid"); yajl_gen_integer(g, rt->pid);
    S("start_time"); yajl_gen_integer(g, (long long)rt->start_time);
    if (rt->config_file) { S("config_file"); S(rt->config_file); }
    S("disks");
    yajl_gen_array_open(g);
    for (i = 0; i < rt->num_disks; i++) {
        yajl_gen_map_open(g);
        S("vdev"); S(rt->disks[i].vdev);
        S("path"); S(rt->disks[i].path);
        S("format"); S(libxl_disk_format_to_string(rt->disks[i].format));
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
#undef S
    yajl_gen_get_buf(g, &buf, &len);
    rc = libxl__write_file_atomic(gc, runtime_path(gc, rt->domid), buf, len);
    yajl_gen_free(g);
    return rc;
}

/*
 * A process's state letter and start time (clock ticks after boot,
 * field 22 of /proc/PID/stat); false if there is no such process.
 */
static bool pid_stat(pid_t pid, char *state_r, unsigned long long *start_r)
{
    char path[64], buf[1024], *p;
    FILE *f;
    bool ok = false;
    int i;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (!f) return false;
    if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) &&
        p[1] == ' ') {
        *state_r = p[2];
        /* fields after the name: 3 is the state, 22 the start time */
        for (i = 3, p += 2; i < 22 && p; i++) {
            p = strchr(p, ' ');
            if (p) p++;
        }
        ok = p && sscanf(p, "%llu", start_r) == 1;
    }
    fclose(f);
    return ok;
}

/*
 * The domain's QEMU still runs: the pid exists, is not a zombie
 * waiting for a reaper that may never come, and started when the
 * runtime file says (so a recycled pid is never taken for it).
 */
static bool qemu_alive(pid_t pid, unsigned long long start)
{
    unsigned long long now_start;
    char st;

    if (pid <= 0 || !pid_stat(pid, &st, &now_start)) return false;
    return st != 'Z' && (!start || start == now_start);
}

static void runtime_remove(libxl__gc *gc, uint32_t domid)
{
    unlink(runtime_path(gc, domid));
    unlink(qmp_path(gc, domid));
}

/* 0, ERROR_NOTFOUND (absent or stale: removed) or ERROR_INVAL. */
static int runtime_read(libxl__gc *gc, uint32_t domid, qemu_runtime *rt)
{
    char *data;
    yajl_val v, disks;
    const char *s;
    int rc, i;

    memset(rt, 0, sizeof(*rt));
    rc = libxl__read_file(gc, runtime_path(gc, domid), &data, NULL);
    if (rc) return rc;
    v = libxl__json_parse(gc, data);
    if (!v || !libxl__json_get_string(v, "name") ||
        !(s = libxl__json_get_string(v, "uuid")) ||
        libxl_uuid_from_string(&rt->uuid, s)) {
        LOG(ERROR, "corrupt runtime file %s", runtime_path(gc, domid));
        return ERROR_INVAL;
    }
    rt->domid = domid;
    rt->name = GCSTRDUP(libxl__json_get_string(v, "name"));
    rt->pid = libxl__json_get_integer(v, "pid", -1);
    rt->start_time = libxl__json_get_integer(v, "start_time", 0);
    rt->config_file = GCSTRDUP(libxl__json_get_string(v, "config_file"));
    disks = libxl__json_get(v, "disks");
    if (disks && YAJL_IS_ARRAY(disks)) {
        rt->num_disks = disks->u.array.len;
        GCNEW_ARRAY(rt->disks, rt->num_disks);
        for (i = 0; i < rt->num_disks; i++) {
            yajl_val dv = disks->u.array.values[i];
            const char *f = libxl__json_get_string(dv, "format");
            rt->disks[i].vdev = GCSTRDUP(libxl__json_get_string(dv, "vdev"));
            rt->disks[i].path = GCSTRDUP(libxl__json_get_string(dv, "path"));
            if (!f || libxl_disk_format_from_string(f,
                                                    &rt->disks[i].format))
                rt->disks[i].format = LIBXL_DISK_FORMAT_RAW;
        }
    }
    if (!qemu_alive(rt->pid, rt->start_time)) {
        runtime_remove(gc, domid);
        return ERROR_NOTFOUND;
    }
    return 0;
}

/* All live domains, by domid. */
static int runtime_scan(libxl__gc *gc, qemu_runtime **list_r, int *nb_r)
{
    DIR *dir = opendir(CTX->run_dir);
    struct dirent *de;
    qemu_runtime *l = NULL;
    int n = 0;

    *list_r = NULL;
    *nb_r = 0;
    if (!dir) return 0;
    while ((de = readdir(dir))) {
        unsigned domid;
        char tail[32];
        qemu_runtime rt;
        if (sscanf(de->d_name, "qemu-dm-%u.libxl-jso%31s", &domid,
                   tail) != 2 || strcmp(tail, "n"))
            continue;
        if (runtime_read(gc, domid, &rt)) continue;
        GCREALLOC_ARRAY(l, n + 1);
        l[n++] = rt;
    }
    closedir(dir);
    *list_r = l;
    *nb_r = n;
    return 0;
}

/*
 * rc: whether QEMU answered query-status (d is filled anyway); without
 * run_state, QEMU is not asked (d->paused false) and rc is 0.
 */
/* how long a list waits for a QEMU's status (a busy monitor: a
 * migration, another client) */
#define QEMU_LIST_STATUS_MS 1000

/* run_state: asked of QEMU, waiting up to status_ms for its monitor */
static int runtime_to_domain(libxl__gc *gc, const qemu_runtime *rt,
                             bool run_state, int status_ms,
                             libxl__domain *d)
{
    int rc;
    yajl_val st = NULL;
    int i;

    memset(d, 0, sizeof(*d));
    d->name = rt->name;
    libxl_uuid_copy(NULL, &d->uuid, &rt->uuid);
    d->domid = rt->domid;
    d->running = true;
    d->qmp_path = qmp_path(gc, rt->domid);
    d->config_file = rt->config_file;
    d->num_disks = rt->num_disks;
    GCNEW_ARRAY(d->disks, rt->num_disks);
    for (i = 0; i < rt->num_disks; i++) {
        libxl_device_disk *dk = &d->disks[i];
        libxl_device_disk_init(dk);
        dk->vdev = rt->disks[i].vdev;
        dk->pdev_path = rt->disks[i].path;
        dk->format = rt->disks[i].format;
        dk->backend = LIBXL_DISK_BACKEND_QDISK;
        dk->readwrite = 1;
    }
    if (!run_state) return 0;
    rc = libxl__qmp_run_sync(gc, d->qmp_path, "query-status", NULL,
                             status_ms, true, &st);
    if (!rc && st) {
        const char *s = libxl__json_get_string(st, "status");
        d->paused = s && strcmp(s, "running");
    }
    return rc;
}

static int qemu_lookup_running(libxl__gc *gc, const char *domain,
                               bool run_state, libxl__domain *d_r)
{
    qemu_runtime *l;
    int n, i;
    char uuid[40];

    runtime_scan(gc, &l, &n);
    for (i = 0; i < n; i++) {
        char id[16];
        snprintf(id, sizeof(id), "%u", l[i].domid);
        snprintf(uuid, sizeof(uuid), LIBXL_UUID_FMT,
                 LIBXL_UUID_BYTES(l[i].uuid));
        if (!strcmp(l[i].name, domain) || !strcmp(id, domain) ||
            !strcmp(uuid, domain)) {
            /* asked for, its state decides what a revert restores:
             * it must be known */
            if (runtime_to_domain(gc, &l[i], run_state, 5000, d_r)) {
                if (!qemu_alive(l[i].pid, l[i].start_time)) {
                    /* it died just now: the domain is shut off */
                    runtime_remove(gc, l[i].domid);
                    return ERROR_DOMAIN_NOTFOUND;
                }
                LOG(ERROR, "domain %s: its QEMU (pid %d) does not answer "
                    "QMP", l[i].name, (int)l[i].pid);
                return ERROR_FAIL;
            }
            return 0;
        }
    }
    return ERROR_DOMAIN_NOTFOUND;
}

static int qemu_list(libxl__gc *gc, libxl__domain **list_r, int *nb_r)
{
    qemu_runtime *l;
    int n, i;

    bool *busy;
    int j;

    runtime_scan(gc, &l, &n);
    GCNEW_ARRAY(*list_r, n);
    GCNEW_ARRAY(busy, n + 1);
    /* a list never waits long for a busy monitor (xl list during a
     * migration) */
    for (i = 0; i < n; i++)
        busy[i] = runtime_to_domain(gc, &l[i], true, QEMU_LIST_STATUS_MS,
                                    &(*list_r)[i]) != 0;
    /*
     * Two QEMUs of one uuid: a migration (libxl_snapshot_migrate.c).
     * The newer one (the destination, started -S) is paused until the
     * switch; its monitor is the migration's meanwhile.
     */
    for (i = 0; i < n; i++)
        for (j = 0; j < n; j++)
            if (i != j && busy[i] &&
                !libxl_uuid_compare(&l[i].uuid, &l[j].uuid) &&
                l[i].domid > l[j].domid)
                (*list_r)[i].paused = true;
    *nb_r = n;
    return 0;
}

static int qemu_simple(libxl__gc *gc, libxl__domain *d, const char *cmd)
{
    return libxl__qmp_run_sync(gc, d->qmp_path, cmd, NULL, 0, false, NULL);
}

static int qemu_pause(libxl__gc *gc, libxl__domain *d)
{
    return qemu_simple(gc, d, "stop");
}

static int qemu_unpause(libxl__gc *gc, libxl__domain *d)
{
    return qemu_simple(gc, d, "cont");
}

/* the guest's RAM: QEMU's query-memory-size-summary (read only) */
static int qemu_memory_bytes(libxl__gc *gc, const libxl__domain *d,
                             uint64_t *bytes_r)
{
    yajl_val v = NULL;
    int rc = libxl__qmp_run_sync(gc, d->qmp_path, "query-memory-size-summary",
                                 NULL, 5000, true, &v);

    if (rc) return rc;
    *bytes_r = libxl__json_get_integer(v, "base-memory", 0) +
        libxl__json_get_integer(v, "plugged-memory", 0);
    return *bytes_r ? 0 : ERROR_FAIL;
}

/*
 * The synchronous forms (xl create, xl destroy, recovery): the async
 * ones below, never aborted, run in a nested loop (as libxl__exec_sync).
 */
typedef struct {
    libxl__domain_async da;
    uint32_t *domid_r;
} qemu_sync_state;

static void qemu_destroy_async(libxl__egc *egc, libxl__domain_async *da);
static void qemu_create_async(libxl__egc *egc, libxl__domain_async *da);

static void qemu_sync_done(libxl__egc *egc, libxl__domain_async *da, int rc)
{
    qemu_sync_state *ss = CONTAINER_OF(da, qemu_sync_state, da);

    if (!rc && ss->domid_r) *ss->domid_r = da->domid;
    libxl__ao_complete(egc, da->ao, rc);
}

static int qemu_destroy(libxl__gc *callergc, libxl__domain *d)
{
    libxlsnap_ctx *ctx = callergc->owner;
    AO_CREATE(ctx, NULL);
    EGC_INIT(ctx);
    qemu_sync_state *ss;

    GCNEW(ss);
    ss->da.ao = ao;
    ss->da.d = d;
    ss->da.unabortable = true;
    ss->da.callback = qemu_sync_done;
    qemu_destroy_async(egc, &ss->da);
    EGC_FREE;
    return AO_INPROGRESS;
}

/*
 * qemu_destroy on the loop: quit over an async QMP connection (2 s; the
 * socket closing before the reply is normal), then a timer looks every
 * QEMU_QUIT_POLL_MS whether QEMU is gone, and kills it after
 * QEMU_QUIT_TIMEOUT_MS.  Never aborted (libxl__domain_stop_async).
 *
 * Steps: qemu_destroy_async -> qda_quit -> qda_poll* -> qda_done
 */
#define QEMU_QUIT_POLL_MS 10

static void qda_quit(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                     int rc);
static void qda_poll(libxl__egc *egc, libxl__ev_time *ev, int rc);

static void qda_connected(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                          int rc)
{
    if (!rc) rc = libxl__qmp_send(egc, qmp, "quit", NULL, -1, qda_quit);
    if (rc) qda_quit(egc, qmp, NULL, rc);
}

static void qemu_destroy_async(libxl__egc *egc, libxl__domain_async *da)
{
    STATE_AO_GC(da->ao);
    qemu_runtime rt;
    int rc;

    libxl__qmp_init(&da->qmp);
    libxl__ev_time_init(&da->poll);
    rc = runtime_read(gc, da->d->domid, &rt);
    if (rc == ERROR_NOTFOUND) rc = 0;    /* already gone */
    if (rc) goto out;
    da->pid = rt.pid;
    da->start_time = rt.start_time;
    da->domid = da->d->domid;
    da->qmp.ao = ao;
    da->qmp.path = da->d->qmp_path;
    da->qmp.domid = da->d->domid;
    da->qmp.timeout_ms = 2000;
    da->qmp.quiet = true;
    rc = libxl__qmp_connect(egc, &da->qmp, qda_connected);
    if (rc) qda_quit(egc, &da->qmp, NULL, rc);
    return;
 out:
    da->callback(egc, da, rc);
}

static void qda_quit(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                     int rc)
{
    libxl__domain_async *da = CONTAINER_OF(qmp, libxl__domain_async, qmp);
    STATE_AO_GC(da->ao);

    libxl__qmp_close(gc, qmp);
    da->deadline = libxl__now_ms() + QEMU_QUIT_TIMEOUT_MS;
    qda_poll(egc, &da->poll, 0);
}

static void qda_poll(libxl__egc *egc, libxl__ev_time *ev, int rc)
{
    libxl__domain_async *da = CONTAINER_OF(ev, libxl__domain_async, poll);
    STATE_AO_GC(da->ao);

    if (qemu_alive(da->pid, da->start_time)) {
        if (da->deadline && libxl__now_ms() >= da->deadline) {
            LOG(WARN, "domain %s: QEMU (pid %d) did not quit, killing it",
                da->d->name, (int)da->pid);
            kill(da->pid, SIGKILL);
            da->deadline = 0;       /* now wait for it to go */
        }
        libxl__ev_time_register_rel(gc, &da->poll, qda_poll,
                                    QEMU_QUIT_POLL_MS);
        return;
    }
    runtime_remove(gc, da->domid);
    da->callback(egc, da, 0);
}

char *libxl__agent_incoming_path(libxl__gc *gc, const char *path)
{
    return GCSPRINTF("%s.incoming", path);
}

/* Escapes a value for QEMU's option syntax (',' doubles). */
static char *qemu_opt_escape(libxl__gc *gc, const char *s)
{
    char *o = libxl__gc_zalloc(gc, strlen(s) * 2 + 1), *p = o;
    for (; *s; s++) {
        *p++ = *s;
        if (*s == ',') *p++ = ',';
    }
    return o;
}

/* The lowest domid not in use, with the run dir locked by the caller. */
static uint32_t alloc_domid(libxl__gc *gc)
{
    qemu_runtime rt;
    uint32_t id;

    for (id = 1; ; id++) {
        if (runtime_read(gc, id, &rt) == ERROR_NOTFOUND &&
            !libxl__file_exists(runtime_path(gc, id)))
            return id;
    }
}

/* Double fork: returns the grandchild's pid via a pipe. */
static pid_t spawn_detached(libxl__gc *gc, const char *const *args,
                            int logfd)
{
    int pfd[2];
    pid_t child, gpid = -1;
    int status, fault = libxl__fault_io("QEMU start");

    if (pipe2(pfd, O_CLOEXEC)) return -1;
    child = fork();
    if (child < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (!child) {
        pid_t g;
        int nullfd;
        setsid();
        g = fork();
        if (g) {
            if (write(pfd[1], &g, sizeof(g)) != sizeof(g)) _exit(1);
            _exit(g < 0);
        }
        nullfd = open("/dev/null", O_RDONLY);
        if (nullfd < 0) _exit(127);
        dup2(nullfd, 0);
        dup2(logfd, 1);
        dup2(logfd, 2);
        if (fault) {            /* tests: QEMU fails at start */
            fprintf(stderr, "%s: %s\n", args[0], strerror(fault));
            _exit(1);
        }
        execvp(args[0], (char *const *)args);
        fprintf(stderr, "cannot execute %s: %s\n", args[0],
                strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    if (read(pfd[0], &gpid, sizeof(gpid)) != sizeof(gpid)) gpid = -1;
    close(pfd[0]);
    while (waitpid(child, &status, 0) < 0 && errno == EINTR)
        ;
    return gpid;
}

static char *log_tail(libxl__gc *gc, const char *logfile)
{
    char *data, *last = NULL, *tok, *save;
    if (libxl__read_file(gc, logfile, &data, NULL)) return "";
    for (tok = strtok_r(data, "\n", &save); tok;
         tok = strtok_r(NULL, "\n", &save))
        last = tok;
    return last ? last : "";
}

/*
 * Starting a QEMU: qemu_spawn runs it (under the run dir's lock, which
 * the caller keeps until QEMU answers: *lockfd_r) and writes its
 * runtime file; then QEMU is ready when QMP answers, and a memory image
 * is restored: qemu_create_async, a timer polling the socket and QMP
 * exchanges on the loop (qemu_create runs it in a nested loop).  A
 * migration's destination (da->incoming) is started the same way, its
 * state read from the stream (libxl__memory_incoming) instead of a file.
 */
static int qemu_spawn(libxl__gc *gc, const libxl__domain_config *cfg,
                      const libxl__domain_record *rec, bool paused,
                      bool restore, bool incoming, qemu_runtime *rt_r,
                      char **qmp_r, char **logfile_r, int *lockfd_r)
{
    libxl__flexarray *args;
    int i, rc, lockfd = -1, logfd = -1;
    qemu_runtime rt;
    char uuid[40], *logfile, *qmp, *lockpath;
    const char *why, *bin = cfg->device_model ? cfg->device_model
                                        : CTX->qemu_bin;
    pid_t pid;

    memset(&rt, 0, sizeof(rt));
    rc = libxl__mkdir_p(gc, CTX->run_dir, 0755);
    if (rc) return rc;

    lockpath = GCSPRINTF("%s/qemu-domains.lock", CTX->run_dir);
    lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lockfd < 0 || flock(lockfd, LOCK_EX)) {
        LOGE(ERROR, "cannot lock %s", lockpath);
        rc = ERROR_LOCK_FAIL;
        goto out;
    }

    rt.domid = alloc_domid(gc);
    rt.name = cfg->name;
    libxl_uuid_copy(NULL, &rt.uuid, &cfg->uuid);
    rt.config_file = cfg->file;
    rt.num_disks = 0;
    GCNEW_ARRAY(rt.disks, cfg->num_disks);
    snprintf(uuid, sizeof(uuid), LIBXL_UUID_FMT, LIBXL_UUID_BYTES(cfg->uuid));
    qmp = qmp_path(gc, rt.domid);
    logfile = GCSPRINTF("%s/qemu-dm-%s.log", CTX->run_dir, cfg->name);
    unlink(qmp);

    args = libxl__flexarray_new(gc);
    libxl__flexarray_append(args, bin);
    libxl__flexarray_append_pair(args, "-machine", "none");
    if (strstr(bin, "xen-qemu-system"))
        libxl__flexarray_append_pair(args, "-accel", "qtest");
    libxl__flexarray_append(args, "-nodefaults");
    libxl__flexarray_append_pair(args, "-display", "none");
    libxl__flexarray_append_pair(args, "-name",
                                 qemu_opt_escape(gc, cfg->name));
    libxl__flexarray_append_pair(args, "-uuid", GCSTRDUP(uuid));
    if (cfg->memory_mb > 0)
        libxl__flexarray_append_pair(args, "-m",
                                     GCSPRINTF("%ld", cfg->memory_mb));
    libxl__flexarray_append_pair(args, "-qmp",
        GCSPRINTF("unix:%s,server=on,wait=off", qemu_opt_escape(gc, qmp)));
    if (paused || restore) libxl__flexarray_append(args, "-S");
    if (restore) {
        /* the saved state comes over QMP once QEMU is up */
        libxl__flexarray_append_pair(args, "-incoming", "defer");
    }
    if (cfg->agent_path) {
        /* the guest agent's channel, on a virtio-serial port; a
         * migration's destination listens beside the source's socket
         * until the switch (libxl__agent_incoming_path) */
        const char *agent = incoming
            ? libxl__agent_incoming_path(gc, cfg->agent_path)
            : cfg->agent_path;
        unlink(agent);
        libxl__flexarray_append_pair(args, "-chardev",
            GCSPRINTF("socket,id=qga0,path=%s,server=on,wait=off",
                      qemu_opt_escape(gc, agent)));
        libxl__flexarray_append_pair(args, "-device",
                                     "virtio-serial,id=qga-serial0");
        libxl__flexarray_append_pair(args, "-device",
            "virtserialport,bus=qga-serial0.0,chardev=qga0,"
            "name=org.qemu.guest_agent.0");
    }
    for (i = 0; i < cfg->num_dm_args; i++)
        libxl__flexarray_append(args, cfg->dm_args[i]);
    for (i = 0; i < cfg->num_disks; i++) {
        const libxl_device_disk *dk = &cfg->disks[i];
        const libxl__active_disk *ad =
            libxl__domain_record_active(gc, rec, dk, false);
        const char *path = ad ? ad->path : dk->pdev_path;
        libxl_disk_format fmt = ad ? ad->format : dk->format;
        const char *qfmt = libxl__disk_format_qemu(fmt);

        if (dk->is_cdrom || !path || !*path) continue;
        if (!qfmt) {
            LOG(ERROR, "%s: disk %s: format %s is not supported by the "
                "qemu driver", cfg->file, dk->vdev,
                libxl_disk_format_to_string(fmt));
            rc = ERROR_INVAL;
            goto out;
        }
        why = libxl__image_missing(gc, path);
        if (why) {
            LOG(ERROR, "%s: disk %s: image '%s' %s", cfg->file, dk->vdev,
                path, why);
            rc = ERROR_INVAL;
            goto out;
        }
        libxl__flexarray_append_pair(args, "-drive", GCSPRINTF(
            "if=none,id=%s,node-name=%s,file=%s,format=%s%s",
            dk->vdev, libxl__disk_node_name(gc, dk->vdev, fmt),
            qemu_opt_escape(gc, path), qfmt,
            dk->readwrite ? "" : ",readonly=on"));
        rt.disks[rt.num_disks].vdev = dk->vdev;
        rt.disks[rt.num_disks].path = GCSTRDUP(path);
        rt.disks[rt.num_disks].format = fmt;
        rt.num_disks++;
    }

    /* opened here, so that a failure has its reason */
    logfd = open(logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logfd < 0) {
        LOGE(ERROR, "domain %s: cannot open QEMU's log file '%s'",
             cfg->name, logfile);
        rc = ERROR_FAIL;
        goto out;
    }
    pid = spawn_detached(gc, args->data, logfd);
    if (pid <= 0) {
        LOGE(ERROR, "cannot start %s", bin);
        rc = ERROR_FAIL;
        goto out;
    }
    rt.pid = pid;
    {
        char st;
        if (!pid_stat(pid, &st, &rt.start_time)) rt.start_time = 0;
    }
    rc = runtime_write(gc, &rt);
    if (rc) {
        kill(pid, SIGKILL);
        goto out;
    }
    *rt_r = rt;
    *qmp_r = qmp;
    *logfile_r = logfile;
    *lockfd_r = lockfd;
    lockfd = -1;
    rc = 0;
 out:
    if (logfd >= 0) close(logfd);
    if (lockfd >= 0) close(lockfd);
    return rc;
}

static int qemu_create(libxl__gc *callergc, const libxl__domain_config *cfg,
                       const libxl__domain_record *rec, bool paused,
                       const char *restore,
                       const libxlsnap_progress_how *progress,
                       uint32_t *domid_r)
{
    libxlsnap_ctx *ctx = callergc->owner;
    AO_CREATE(ctx, NULL);
    EGC_INIT(ctx);
    qemu_sync_state *ss;

    GCNEW(ss);
    ss->domid_r = domid_r;
    ss->da.ao = ao;
    ss->da.cfg = cfg;
    ss->da.rec = (libxl__domain_record *)rec;
    ss->da.paused = paused;
    ss->da.restore = restore;
    ss->da.progress = progress;
    ss->da.unabortable = true;
    ss->da.callback = qemu_sync_done;
    qemu_create_async(egc, &ss->da);
    EGC_FREE;
    return AO_INPROGRESS;
}

/*
 * qemu_create as steps on the loop: qemu_spawn, then every
 * QEMU_START_POLL_MS a look at QEMU (alive? its socket there?) and, once
 * the socket is, query-status over an async QMP connection; then the
 * memory restore (libxl__memory_restore).  Abort (unless da->unabortable)
 * kills that QEMU and removes its runtime file: the domain is shut off.
 *
 * Steps: qemu_create_async -> qca_poll <-> qca_connected -> qca_status
 *   -> [qca_restored] -> qca_done
 */
#define QEMU_START_POLL_MS 10

static void qca_poll(libxl__egc *egc, libxl__ev_time *ev, int rc);
static void qca_connected(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                          int rc);
static void qca_status(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                       int rc);
static void qca_restored(libxl__egc *egc, void *arg, int rc);
static void qca_abort(libxl__egc *egc, libxl__ao_abortable *ab, int rc);
static void qca_done(libxl__egc *egc, libxl__domain_async *da, int rc);

static void qemu_create_async(libxl__egc *egc, libxl__domain_async *da)
{
    STATE_AO_GC(da->ao);
    qemu_runtime rt;
    char *qmp, *logfile;
    int rc;

    libxl__qmp_init(&da->qmp);
    libxl__ev_time_init(&da->poll);
    libxl__ao_abortable_init(&da->abrt);
    da->lockfd = -1;
    da->pid = -1;
    rc = qemu_spawn(gc, da->cfg, da->rec, da->paused,
                    da->restore || da->incoming, da->incoming, &rt, &qmp,
                    &logfile, &da->lockfd);
    if (rc) goto out;
    da->pid = rt.pid;
    da->start_time = rt.start_time;
    da->domid = rt.domid;
    da->qmp_path = qmp;
    da->logfile = logfile;
    da->deadline = libxl__now_ms() + QEMU_START_TIMEOUT_MS;
    if (!da->unabortable) {
        da->abrt.ao = ao;
        da->abrt.callback = qca_abort;
        rc = libxl__ao_abortable_register(&da->abrt);
        if (rc) goto out;
    }
    libxl__ev_time_register_rel(gc, &da->poll, qca_poll, 0);
    return;
 out:
    qca_done(egc, da, rc);
}

static void qca_poll(libxl__egc *egc, libxl__ev_time *ev, int rc)
{
    libxl__domain_async *da = CONTAINER_OF(ev, libxl__domain_async, poll);
    STATE_AO_GC(da->ao);

    if (!qemu_alive(da->pid, da->start_time)) {
        LOG(ERROR, "domain %s: QEMU exited at start: %s", da->cfg->name,
            log_tail(gc, da->logfile));
        rc = ERROR_FAIL;
        goto out;
    }
    if (libxl__file_exists(da->qmp_path)) {
        da->qmp.ao = ao;
        da->qmp.path = da->qmp_path;
        da->qmp.domid = da->domid;
        da->qmp.timeout_ms = 5000;
        da->qmp.quiet = true;
        rc = libxl__qmp_connect(egc, &da->qmp, qca_connected);
        if (!rc) return;
        libxl__qmp_close(gc, &da->qmp);
    }
    if (libxl__now_ms() > da->deadline) {
        LOG(ERROR, "domain %s: QEMU did not answer on %s", da->cfg->name,
            da->qmp_path);
        rc = ERROR_TIMEDOUT;
        goto out;
    }
    libxl__ev_time_register_rel(gc, &da->poll, qca_poll, QEMU_START_POLL_MS);
    return;
 out:
    qca_done(egc, da, rc);
}

static void qca_connected(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                          int rc)
{
    libxl__domain_async *da = CONTAINER_OF(qmp, libxl__domain_async, qmp);
    STATE_AO_GC(da->ao);

    if (!rc) rc = libxl__qmp_send(egc, qmp, "query-status", NULL, -1,
                                  qca_status);
    if (!rc) return;
    /* not listening yet: look again */
    libxl__qmp_close(gc, qmp);
    libxl__qmp_init(qmp);
    if (libxl__now_ms() > da->deadline) {
        qca_poll(egc, &da->poll, 0);
        return;
    }
    libxl__ev_time_register_rel(gc, &da->poll, qca_poll, QEMU_START_POLL_MS);
}

static void qca_status(libxl__egc *egc, libxl__qmp *qmp, yajl_val ret,
                       int rc)
{
    libxl__domain_async *da = CONTAINER_OF(qmp, libxl__domain_async, qmp);
    STATE_AO_GC(da->ao);
    libxl__domain *d;

    libxl__qmp_close(gc, qmp);
    libxl__qmp_init(qmp);
    if (rc) {
        if (libxl__now_ms() > da->deadline) {
            qca_poll(egc, &da->poll, 0);
            return;
        }
        libxl__ev_time_register_rel(gc, &da->poll, qca_poll,
                                    QEMU_START_POLL_MS);
        return;
    }
    /* the run dir's lock: held only until QEMU answers, as qemu_create */
    if (da->lockfd >= 0) close(da->lockfd);
    da->lockfd = -1;
    if (!da->restore && !da->incoming) {
        qca_done(egc, da, 0);
        return;
    }
    GCNEW(d);
    d->name = da->cfg->name;
    d->domid = da->domid;
    d->qmp_path = GCSTRDUP(da->qmp_path);
    /* the restore has an abortable of its own */
    libxl__ao_abortable_deregister(&da->abrt);
    if (da->incoming) {
        int fd = da->incoming_fd;
        da->incoming_fd = -1;           /* the restore's now */
        da->incoming_started = true;
        rc = libxl__memory_incoming(egc, ao, d, fd, da->paused,
                                    !da->unabortable, qca_restored, da);
    } else {
        rc = libxl__memory_restore(egc, ao, d, da->restore, da->paused,
                                   !da->unabortable, da->progress,
                                   qca_restored, da);
    }
    if (rc) qca_restored(egc, da, rc);
}

static void qca_restored(libxl__egc *egc, void *arg, int rc)
{
    libxl__domain_async *da = arg;
    STATE_AO_GC(da->ao);

    if (rc && rc != ERROR_ABORTED && da->restore)
        LOG(ERROR, "domain %s: cannot restore its memory from '%s'",
            da->cfg->name, da->restore);
    qca_done(egc, da, rc);
}

static void qca_abort(libxl__egc *egc, libxl__ao_abortable *ab, int rc)
{
    libxl__domain_async *da = CONTAINER_OF(ab, libxl__domain_async, abrt);
    STATE_AO_GC(da->ao);

    libxl__qmp_close(gc, &da->qmp);
    qca_done(egc, da, ERROR_ABORTED);
}

static void qca_done(libxl__egc *egc, libxl__domain_async *da, int rc)
{
    STATE_AO_GC(da->ao);

    libxl__ev_time_deregister(gc, &da->poll);
    libxl__ao_abortable_deregister(&da->abrt);
    if (da->incoming && da->incoming_fd >= 0) {
        /* never given to QEMU: the sender sees the end of its stream */
        close(da->incoming_fd);
        da->incoming_fd = -1;
    }
    if (rc && da->pid > 0) {
        /* a QEMU that failed or was aborted at start is no domain */
        kill(da->pid, SIGKILL);
        runtime_remove(gc, da->domid);
        if (da->incoming && da->cfg->agent_path)
            unlink(libxl__agent_incoming_path(gc, da->cfg->agent_path));
    }
    if (da->lockfd >= 0) close(da->lockfd);
    da->lockfd = -1;
    da->callback(egc, da, rc);
}

/* (no other toolstack changes this driver's domains: from is not needed) */
static int qemu_set_active_disk(libxl__gc *gc, libxl__domain *d,
                                const char *vdev, const char *from,
                                const char *path, libxl_disk_format format)
{
    qemu_runtime rt;
    int i, rc;

    rc = runtime_read(gc, d->domid, &rt);
    if (rc) return rc;
    for (i = 0; i < rt.num_disks; i++) {
        if (!strcmp(rt.disks[i].vdev, vdev)) {
            rt.disks[i].path = GCSTRDUP(path);
            rt.disks[i].format = format;
        }
    }
    return runtime_write(gc, &rt);
}

const libxl__snapshot_driver libxl__snapshot_driver_qemu = {
    .name = "qemu",
    .lookup_running = qemu_lookup_running,
    .pause = qemu_pause,
    .unpause = qemu_unpause,
    .memory_bytes = qemu_memory_bytes,
    .destroy = qemu_destroy,
    .create = qemu_create,
    .create_async = qemu_create_async,
    .destroy_async = qemu_destroy_async,
    .set_active_disk = qemu_set_active_disk,
    .list = qemu_list,
};

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
