/*
 * pause-write.c - an LD_PRELOAD shim for tests/ceph: stops ceph-util
 * between its checks and its RADOS write, so that a test can change the
 * cluster in that window (test-01: the lock is taken over after
 * omap-set --lock has checked it, before its write op reaches the OSD).
 *
 * With PAUSE_WRITE=PATH in the environment, the first
 * rados_write_op_operate() creates PATH.reached, waits (up to 60 s) for
 * PATH.go to exist, then goes on to librados' own.  Built by the test:
 *   cc -shared -fPIC -o pause-write.so pause-write.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <rados/librados.h>

typedef int (*operate_fn)(rados_write_op_t, rados_ioctx_t, const char *,
                          time_t *, int);

int rados_write_op_operate(rados_write_op_t op, rados_ioctx_t io,
                           const char *oid, time_t *mtime, int flags)
{
    static int paused;
    operate_fn real = (operate_fn)dlsym(RTLD_NEXT, "rados_write_op_operate");
    const char *path = getenv("PAUSE_WRITE");
    char f[4096];
    int i, fd;

    if (path && !paused) {
        paused = 1;
        snprintf(f, sizeof(f), "%s.reached", path);
        fd = open(f, O_WRONLY | O_CREAT, 0644);
        if (fd >= 0) close(fd);
        snprintf(f, sizeof(f), "%s.go", path);
        for (i = 0; i < 600 && access(f, F_OK); i++)
            usleep(100000);
    }
    return real(op, io, oid, mtime, flags);
}
