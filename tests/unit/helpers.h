/*
 * helpers.h - shared helpers of the unit tests
 */
#ifndef UNIT_HELPERS_H
#define UNIT_HELPERS_H

#include "libxl_snapshot_internal.h"

/* A fresh mkdtemp() directory (malloc'ed path); NULL on failure. */
char *unit_tmpdir(const char *tag);
/* rm -rf, without a shell. */
void unit_rm_rf(const char *dir);
/* A ctx on the qemu driver with its dirs under base (errors to stderr). */
libxlsnap_ctx *unit_ctx(const char *base);
void unit_ctx_free(libxlsnap_ctx *ctx);
/* Runs argv, returns its exit status (or -1), output discarded. */
int unit_run(const char *const *argv);
/* qemu-io -f qcow2 -c CMD IMG; qemu-img snapshot -c TAG IMG: unit_run's */
int unit_qemu_io(const char *img, const char *cmd);
int unit_qemu_img_snapshot(const char *img, const char *tag);
/*
 * A new qcow2 image img of size, then each step in turn: "snapshot TAG"
 * (qemu-img snapshot -c), else a qemu-io command; 0 when all succeed.
 */
int unit_qcow2_script(const char *img, const char *size,
                      const char *const *steps);
/*
 * A logger that counts its messages of level XTL_WARN and above
 * (unit_nlogs: what a user sees by default) and keeps the last
 * (unit_last_log), each shown on stderr: to check that a refusal is
 * one line, and what it says.
 */
xentoollog_logger *unit_capture_logger(void);
extern char unit_last_log[4096];
extern int unit_nlogs;
/* Writes text to path; 0 on success. */
int unit_write_file(const char *path, const char *text);

#endif
