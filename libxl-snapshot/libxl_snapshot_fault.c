/*
 * libxl_snapshot_fault.c - fault injection, in the test library only
 *
 * The test variant of the library (build/test: the objects compiled
 * again with -DLIBXL_SNAPSHOT_TESTING, as libxl has libxenlight_test)
 * has these; the release library, the one installed and packaged, has
 * not: there libxl__fault_* are static inline no-ops
 * (libxl_snapshot_internal.h), the fault points compile to nothing, and
 * no environment variable can make it crash on purpose.  The tests'
 * xl (build/test/xl/xl) links the test library; `make
 * check-release-lib` checks that the release one has no trace of this.
 *
 * The fault points are placed by the operations (create, revert,
 * delete, the block job engine, the memory save, a redefine of many,
 * and "save": after each name a batched save of the directory store
 * renames in, libxl__snapshot_store_save_many) and the I/O points
 * by the code that writes, sends QMP or runs tools.
 *
 * Fault injection, from XL_SNAPSHOT_FAULT:
 *  - <op>:<n> makes the process _exit(86) at the n-th fault point of
 *    <op>, as a crash would;
 *  - io:<n>[:enospc|eio] makes the n-th I/O point of the process fail,
 *    as a full or broken disk would, and the operation go on through
 *    its own error path.  The I/O points are every atomic file write
 *    (the write fails with that errno), every QMP command (QEMU is sent
 *    a command it does not know instead, and its error reply is given
 *    as the command's, GenericError), every external tool run (the
 *    child exits 1 with the errno's text instead of running the tool)
 *    and every QEMU the qemu driver starts (it exits so at once).
 *    Each injection says so on stderr ("fault injected: io ..."), so
 *    that a test knows when n is past the last point;
 *  - io@<label>: the first I/O point whose label starts with <label>
 *    ("QMP cont", "QEMU start") fails so (their number varies with
 *    polling);
 *  - <op>:<n>:killqemu SIGKILLs the domain's QEMU at the n-th fault
 *    point of <op> instead (found as the peer of its QMP socket), waits
 *    until it is gone, and goes on: libxl__fault_point returns true, so
 *    that a point placed before a QMP answer is read can treat the
 *    answer as lost;
 *  - <op>:<n>:sigint raises SIGINT at the n-th fault point (a Ctrl-C
 *    there, without a race), and goes on if the process survives it;
 *  - <op>:<n>:stop stops the process there (SIGSTOP), holding what it
 *    holds (the domain's lock): it goes on when sent SIGCONT (the
 *    tests of two commands at once, without a race).
 */
#include "libxl_snapshot_internal.h"

#ifdef LIBXL_SNAPSHOT_TESTING

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define FAULT_EXIT 86

/* tests, killqemu: the QMP socket of the domain of this process's op */
static char *fault_qmp_path;

/* The QEMU listening on path (its peer credentials), SIGKILLed. */
static void fault_kill_qemu(const char *op, int n)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct ucred cr;
    socklen_t len = sizeof(cr);
    int fd = -1, i;

    if (!fault_qmp_path ||
        strlen(fault_qmp_path) >= sizeof(sa.sun_path) ||
        (fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        goto fail;
    strcpy(sa.sun_path, fault_qmp_path);
    /* QEMU serves one client, but the kernel answers the connect */
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) ||
        cr.pid <= 0 || kill(cr.pid, SIGKILL))
        goto fail;
    close(fd);
    fprintf(stderr, "libxl-snapshot: fault injected: %s step %d: QEMU "
            "(pid %d) killed\n", op, n, (int)cr.pid);
    for (i = 0; i < 500 && !kill(cr.pid, 0); i++) {
        char st = 0, path[64];
        FILE *f;
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)cr.pid);
        f = fopen(path, "r");
        if (f && fscanf(f, "%*d (%*[^)]) %c", &st) != 1) st = 0;
        if (f) fclose(f);
        if (st == 'Z') break;
        usleep(10000);
    }
    return;
 fail:
    if (fd >= 0) close(fd);
    fprintf(stderr, "libxl-snapshot: fault injection: %s step %d: no QEMU "
            "to kill\n", op, n);
    _exit(FAULT_EXIT);
}

void libxl__fault_domain(const libxl__domain *d)
{
    if (!getenv("XL_SNAPSHOT_FAULT")) return;
    free(fault_qmp_path);
    fault_qmp_path = d->running && d->qmp_path ? strdup(d->qmp_path) : NULL;
}

bool libxl__fault_point(const char *op)
{
    static int count;
    const char *f = getenv("XL_SNAPSHOT_FAULT");
    const char *mode;
    size_t l = strlen(op);

    if (!f || strncmp(f, op, l) || f[l] != ':') return false;
    if (++count != atoi(f + l + 1)) return false;
    mode = strchr(f + l + 1, ':');
    mode = mode ? mode + 1 : "exit";
    if (!strcmp(mode, "killqemu")) {
        fault_kill_qemu(op, count);
        return true;
    }
    if (!strcmp(mode, "sigint")) {
        raise(SIGINT);                /* as a Ctrl-C there */
        return false;
    }
    if (!strcmp(mode, "stop")) {
        raise(SIGSTOP);               /* until SIGCONT */
        return false;
    }
    fprintf(stderr, "libxl-snapshot: fault injected: %s step %d\n", op,
            count);
    _exit(FAULT_EXIT);
}

int libxl__fault_io(const char *what)
{
    static int count;
    static bool fired;
    const char *f = getenv("XL_SNAPSHOT_FAULT"), *mode;
    int e = ENOSPC;

    if (f && !strncmp(f, "io@", 3)) {
        /* the first point whose label starts so (counts vary: polls) */
        if (fired || strncmp(what, f + 3, strlen(f + 3))) return 0;
        fired = true;
        fprintf(stderr, "libxl-snapshot: fault injected: io (%s): %s\n",
                what, strerror(e));
        return e;
    }
    if (!f || strncmp(f, "io:", 3)) return 0;
    mode = strchr(f + 3, ':');
    if (mode && !strcmp(mode + 1, "eio")) e = EIO;
    if (++count != atoi(f + 3)) return 0;
    fprintf(stderr, "libxl-snapshot: fault injected: io %d (%s): %s\n",
            count, what, strerror(e));
    return e;
}

#endif /* LIBXL_SNAPSHOT_TESTING */

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
