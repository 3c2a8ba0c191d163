/*
 * helpers.c - shared helpers of the unit tests
 */
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

char *unit_tmpdir(const char *tag)
{
    char *tmpl;
    if (asprintf(&tmpl, "/tmp/unit-%s-XXXXXX", tag) < 0) return NULL;
    if (!mkdtemp(tmpl)) {
        free(tmpl);
        return NULL;
    }
    return tmpl;
}

static int rm_one(const char *path, const struct stat *sb, int flag,
                  struct FTW *ftw)
{
    return remove(path);
}

void unit_rm_rf(const char *dir)
{
    if (dir) nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static xentoollog_logger_stdiostream *unit_logger;

libxlsnap_ctx *unit_ctx(const char *base)
{
    libxlsnap_ctx *ctx = NULL;
    char *state, *run;

    if (asprintf(&state, "%s/state", base) < 0 ||
        asprintf(&run, "%s/run", base) < 0)
        return NULL;
    setenv("XL_SNAPSHOT_DRIVER", "qemu", 1);
    setenv("XL_SNAPSHOT_STATE_DIR", state, 1);
    setenv("XL_SNAPSHOT_RUN_DIR", run, 1);
    free(state);
    free(run);
    if (!unit_logger)
        unit_logger = xtl_createlogger_stdiostream(stderr, XTL_ERROR, 0);
    if (libxlsnap_ctx_alloc(&ctx, LIBXLSNAP_VERSION, 0,
                                 (xentoollog_logger *)unit_logger, NULL))
        return NULL;
    return ctx;
}

void unit_ctx_free(libxlsnap_ctx *ctx)
{
    libxlsnap_ctx_free(ctx);
}

int unit_run(const char *const *argv)
{
    int status;
    pid_t pid = fork();

    if (pid < 0) return -1;
    if (!pid) {
        int fd = open("/dev/null", O_RDWR);
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (waitpid(pid, &status, 0) < 0) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int unit_qemu_io(const char *img, const char *cmd)
{
    const char *argv[] = { "qemu-io", "-f", "qcow2", "-c", cmd, img, NULL };
    return unit_run(argv);
}

int unit_qemu_img_snapshot(const char *img, const char *tag)
{
    const char *argv[] = { "qemu-img", "snapshot", "-c", tag, img, NULL };
    return unit_run(argv);
}

int unit_qcow2_script(const char *img, const char *size,
                      const char *const *steps)
{
    const char *mk[] = { "qemu-img", "create", "-q", "-f", "qcow2", img,
                         size, NULL };
    int rc = unit_run(mk);

    for (; !rc && *steps; steps++)
        rc = !strncmp(*steps, "snapshot ", 9)
            ? unit_qemu_img_snapshot(img, *steps + 9)
            : unit_qemu_io(img, *steps);
    return rc;
}

int unit_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

char unit_last_log[4096];
int unit_nlogs;

static void capture_vmessage(xentoollog_logger *lg, xentoollog_level level,
                             int errnoval, const char *context,
                             const char *format, va_list al)
{
    if (level < XTL_WARN) return;     /* what a user sees by default */
    vsnprintf(unit_last_log, sizeof(unit_last_log), format, al);
    unit_nlogs++;
    fprintf(stderr, "    [log] %s\n", unit_last_log);
}

static void capture_destroy(xentoollog_logger *lg)
{
}

static xentoollog_logger capture_logger = {
    .vmessage = capture_vmessage,
    .destroy = capture_destroy,
};

xentoollog_logger *unit_capture_logger(void)
{
    return &capture_logger;
}
