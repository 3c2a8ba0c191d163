/*
 * xl.h - the xl front end of libxl-snapshot
 *
 * Shaped like Xen's tools/xl: a command table (xl_cmdtable.c), one
 * main_<command>() per subcommand, options parsed with
 * SWITCH_FOREACH_OPT, exit status EXIT_SUCCESS, EXIT_FAILURE, or
 * EXIT_USAGE for a usage error (as Xen's xl, whose def_getopt exits 2).
 * Subcommands that are not ours are handed to the system's xl.
 */
#ifndef XL_H
#define XL_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "libxl_snapshot.h"

/* A usage error: unknown option, missing or extra argument (Xen's 2) */
#define EXIT_USAGE 2

struct cmd_spec {
    const char *cmd_name;
    int (*cmd_impl)(int argc, char **argv);
    int can_dryrun;
    int modifies;
    /* which driver it belongs to: 0 any, else LIBXLSNAP_DRIVER_* */
    int driver;
    const char *cmd_desc;
    const char *cmd_usage;
    const char *cmd_option;
};

extern const struct cmd_spec cmd_table[];
extern const int cmdtable_len;
const struct cmd_spec *cmdtable_lookup(const char *s);

/* global state, as xl's */
extern libxlsnap_ctx *ctx;
extern xentoollog_logger_stdiostream *logger;
extern int dryrun_only;
extern int verbosity;
/* number of error messages the library logged (see xl.c) */
extern int xl_errors_logged;
/* What the library's messages are about (a file), said before each of
 * its warnings and errors while set; NULL: nothing. */
extern const char *xl_message_source;
/* xl/tree/xl_tree.c, in xl/xl only: the tree's vhd-util and ceph-util,
 * by path from the binary's directory (NULL in an installed xl) */
extern const char xl_tree_vhd_util[] __attribute__((weak));
extern const char xl_tree_ceph_util[] __attribute__((weak));

/* Prints the help of one command (or all if NULL: ours, then the
 * system xl's). */
void help(const char *command);

/* A usage error: the one-line message on stderr, the command's usage
 * on stdout; returns EXIT_USAGE. */
int usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Like xl's def_getopt: returns the next option, -1 at the end; on -h
 * prints help and returns 0; on a bad option or too few arguments
 * prints usage and returns 2.
 */
int def_getopt(int argc, char *const argv[], const char *optstring,
               const struct option *longopts, const char *helpstr,
               int reqargs);

#define COMMON_LONG_OPTS {"help", 0, 0, 'h'}

#define SWITCH_FOREACH_OPT(opt, opts, longopts, commandname,            \
                           num_required_opts)                           \
    while (((opt) = def_getopt(argc, argv, ":h" opts, (longopts),       \
                                (commandname), (num_required_opts)))    \
           != -1)                                                       \
        if ((opt) == 0 || (opt) == 2)                                   \
            return (opt) == 0 ? EXIT_SUCCESS : EXIT_USAGE;              \
        else switch (opt)

/*
 * Reports a failed library call on one line, unless the library has
 * already said why.
 */
int xl_fail(const char *what, int rc);
/*
 * Options the library refuses together, refused first in xl's words
 * (the library names its flags): one line, 1 when a and b are both set.
 */
int xl_options_exclude(const char *cmd, bool a, const char *oa, bool b,
                       const char *ob);
/*
 * --json: a command that fails prints, besides xl_fail's line, a JSON
 * document on stdout, {"error": <why, xl_error_message>, "error_code":
 * <libxl_error_to_string>}, so that a script never reads an empty one.
 */
int xl_fail_json(const char *what, int rc, bool json);
/* Those two members (no braces), for a document that has more. */
void xl_print_json_error_members(int rc);
/* s as a JSON string, on stdout */
void xl_print_json_string(const char *s);
/* What a libxl ERROR_* code means, in words (its name, for scripts, is
 * libxl_error_to_string's). */
const char *xl_error_text(int rc);
/* Why the command failed with rc, in one line: the first error the
 * library logged, else xl_error_text(rc). */
const char *xl_error_message(int rc);

/*
 * From now on, SIGINT ends the command with exit 1 after one line on
 * stderr: "<cmd> interrupted: <left>; `xl snapshot-recover <domain>`
 * (or the next command on the domain) <next>".  cmd NULL: SIGINT's
 * default again.  A block job xl waits for (xl_job_wait_for) is
 * aborted instead while it runs.
 */
void xl_exit_on_interrupt(const char *cmd, const char *domain,
                          const char *left, const char *next);

/* Hands the command line to the system xl (plus extra, if any). */
int exec_system_xl(const char *cmd, const char *extra, const char *extra2);

/*
 * A job xl waits for (xl_blockjob.c): a progress line on a terminal, to
 * a pipe only with verbose (a line per state change); SIGINT aborts it;
 * then how long it took and how fast.
 */
typedef struct {
    bool done;
    int rc;
    bool verbose, tty;
    const char *what;
    libxlsnap_blockjob_state state;       /* the last one reported */
    int printed;                      /* the last state line printed
                                         for the running job, or -1 */
    uint64_t len;                     /* the last length reported */
    uint64_t bytes;                   /* of the jobs completed */
    bool reported;                    /* a job reported progress */
    struct timespec t0;
} xl_job_wait;
/* The progress and completion callbacks of a job xl waits for. */
void xl_job_setup(xl_job_wait *w, const char *what,
                  libxlsnap_progress_how *progress,
                  libxl_asyncop_how *how);
/* Runs the event loop until the job's ao completes; SIGINT aborts. */
int xl_job_wait_for(xl_job_wait *w, const libxl_asyncop_how *how);
/* After the outcome line: the last job's size, or all jobs', per time. */
void xl_job_summary(const xl_job_wait *w, bool all_jobs);

/* --bandwidth=MIB (MiB/s, a whole number; 0: no limit) in bytes/s;
 * -1 after one line on stderr */
int xl_parse_bandwidth(const char *s, uint64_t *bytes_r);

/* a time as the listings show it: local, ISO 8601 (buf, len >= 20) */
const char *xl_fmt_time(uint64_t t, char *buf, size_t len);
/* bytes in xl list's units, no blanks: "0", "512B", "1.5K", "64M" */
const char *xl_fmt_bytes(uint64_t b, char *buf, size_t len);

int main_snapshot_create(int argc, char **argv);
int main_snapshot_dumpxml(int argc, char **argv);
int main_snapshot_list(int argc, char **argv);
int main_snapshot_info(int argc, char **argv);
int main_snapshot_check(int argc, char **argv);
int main_snapshot_chain(int argc, char **argv);
int main_snapshot_recover(int argc, char **argv);
int main_snapshot_current(int argc, char **argv);
int main_snapshot_delete(int argc, char **argv);
int main_snapshot_revert(int argc, char **argv);
int main_create(int argc, char **argv);
int main_destroy(int argc, char **argv);
int main_list(int argc, char **argv);
int main_pause(int argc, char **argv);
int main_unpause(int argc, char **argv);
int main_qemu_monitor_command(int argc, char **argv);
int main_block_commit(int argc, char **argv);
int main_block_stream(int argc, char **argv);
int main_block_job(int argc, char **argv);
int main_help(int argc, char **argv);
int main_block_copy(int argc, char **argv);
int main_migrate(int argc, char **argv);
int main_snapshot_export_records(int argc, char **argv);
int main_snapshot_import_records(int argc, char **argv);
int main_snapshot_diff(int argc, char **argv);
int main_checkpoint_create(int argc, char **argv);
int main_checkpoint_list(int argc, char **argv);
int main_checkpoint_info(int argc, char **argv);
int main_checkpoint_dumpxml(int argc, char **argv);
int main_checkpoint_delete(int argc, char **argv);
int main_backup_begin(int argc, char **argv);
int main_backup_info(int argc, char **argv);
int main_backup_end(int argc, char **argv);

#endif /* XL_H */

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
