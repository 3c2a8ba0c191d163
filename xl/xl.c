/*
 * xl.c - main() of the libxl-snapshot xl front end
 *
 *   xl [-v] [-N] <subcommand> [args]
 *
 * Our subcommands (snapshot-*, and on the qemu driver the domain
 * commands create/destroy/list/pause/unpause) run here.  Everything
 * else is exec'd unchanged in the system's xl, so this binary can stand
 * in for xl on a Xen host.
 *
 * Messages: the library logs through a xentoollog stdio logger on
 * stderr, as libxl does for xl; errors are one line each.  A wrapper
 * logger counts the errors, so that xl adds its own one-line summary
 * only when the library said nothing.
 */
#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <string.h>
#include <unistd.h>

#include "xl.h"

libxl_snapshot_ctx *ctx;
xentoollog_logger_stdiostream *logger;
int dryrun_only;
int verbosity;
int xl_errors_logged;

typedef struct {
    xentoollog_logger vtable;
    xentoollog_logger *inner;
} xentoollog_logger_counting;

static void counting_vmessage(xentoollog_logger *lg, xentoollog_level level,
                              int errnoval, const char *context,
                              const char *format, va_list al)
{
    xentoollog_logger_counting *c = (xentoollog_logger_counting *)lg;
    if (level >= XTL_ERROR) xl_errors_logged++;
    c->inner->vmessage(c->inner, level, errnoval, context, format, al);
}

static void counting_progress(xentoollog_logger *lg, const char *context,
                              const char *doing_what, int percent,
                              unsigned long done, unsigned long total)
{
    xentoollog_logger_counting *c = (xentoollog_logger_counting *)lg;
    if (c->inner->progress)
        c->inner->progress(c->inner, context, doing_what, percent, done,
                           total);
}

static void counting_destroy(xentoollog_logger *lg)
{
    xentoollog_logger_counting *c = (xentoollog_logger_counting *)lg;
    xtl_logger_destroy(c->inner);
    free(c);
}

static xentoollog_logger_counting *counting_logger;

int xl_fail(const char *what, int rc)
{
    if (!xl_errors_logged)
        fprintf(stderr, "libxl-snapshot: error: %s failed: %s\n", what,
                libxl_error_to_string(rc));
    return EXIT_FAILURE;
}

const struct cmd_spec *cmdtable_lookup(const char *s)
{
    int i;
    for (i = 0; i < cmdtable_len; i++)
        if (!strcmp(s, cmd_table[i].cmd_name))
            return &cmd_table[i];
    return NULL;
}

void help(const char *command)
{
    const struct cmd_spec *cmd = command ? cmdtable_lookup(command) : NULL;
    int i;

    if (!cmd) {
        printf("Usage xl [-v] [-N] <subcommand> [args]\n\n");
        printf("xl snapshot front end (libxl-snapshot).  Subcommands "
               "handled here:\n\n");
        for (i = 0; i < cmdtable_len; i++)
            printf(" %-22s%s\n", cmd_table[i].cmd_name,
                   cmd_table[i].cmd_desc);
        printf("\nAny other subcommand is passed to the system xl.\n"
               "Options: -v verbose (repeat for more), -N dry run.\n");
        return;
    }
    printf("Usage: xl [-v%s] %s %s\n\n%s.\n\n", cmd->can_dryrun ? "N" : "",
           cmd->cmd_name, cmd->cmd_usage, cmd->cmd_desc);
    if (cmd->cmd_option && *cmd->cmd_option)
        printf("Options:\n\n%s\n", cmd->cmd_option);
}

int def_getopt(int argc, char *const argv[], const char *optstring,
               const struct option *longopts, const char *helpstr,
               int reqargs)
{
    int opt;

    opterr = 0;
    while ((opt = getopt_long(argc, argv, optstring, longopts, NULL))
           != -1) {
        if (opt == 'h') {
            help(helpstr);
            return 0;
        }
        if (opt == '?' || opt == ':') {
            if (optopt)
                fprintf(stderr, "option `-%c' not supported or missing "
                        "its argument.\n", optopt);
            else
                fprintf(stderr, "option `%s' not supported or missing "
                        "its argument.\n", argv[optind - 1]);
            help(helpstr);
            return 2;
        }
        return opt;
    }
    if (argc - optind < reqargs) {
        fprintf(stderr, "'xl %s' requires at least %d argument%s.\n",
                helpstr, reqargs, reqargs > 1 ? "s" : "");
        help(helpstr);
        return 2;
    }
    return -1;
}

int main_help(int argc, char **argv)
{
    help(argc > 1 ? argv[1] : NULL);
    return EXIT_SUCCESS;
}

static const char *system_xl(void)
{
    const char *p = getenv("XL_SNAPSHOT_SYSTEM_XL");
    return p && *p ? p : LIBXL_SNAPSHOT_SYSTEM_XL;
}

static char **orig_argv;
static int orig_argc;

/*
 * Run from the tree (xl/xl): the library runs the tree's vhd-util
 * unless $XL_SNAPSHOT_VHD_UTIL names one, as it uses the tree's
 * library.  The binary's own directory, as its RUNPATH's $ORIGIN.
 */
static void use_tree_tools(void)
{
    char exe[PATH_MAX], *slash, *p;
    ssize_t n;

    if (!xl_tree_vhd_util || getenv("XL_SNAPSHOT_VHD_UTIL")) return;
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) return;
    exe[n] = 0;
    slash = strrchr(exe, '/');
    if (!slash) return;
    *slash = 0;
    if (asprintf(&p, "%s/%s", exe, xl_tree_vhd_util) < 0) return;
    if (!access(p, X_OK)) setenv("XL_SNAPSHOT_VHD_UTIL", p, 1);
    free(p);
}

/*
 * Replaces this process by the system xl with the original argv, plus
 * the extra arguments that are not NULL.
 */
int exec_system_xl(const char *cmd, const char *extra, const char *extra2)
{
    const char *xl = system_xl();
    char **argv = calloc(orig_argc + 3, sizeof(*argv));
    int i, n;

    if (!argv) return EXIT_FAILURE;
    for (i = 0; i < orig_argc; i++) argv[i] = orig_argv[i];
    n = orig_argc;
    if (extra) argv[n++] = (char *)extra;
    if (extra2) argv[n++] = (char *)extra2;
    argv[0] = (char *)xl;
    execv(xl, argv);
    fprintf(stderr, "xl: '%s' is not a snapshot command, and the system "
            "xl (%s) cannot be run: %s\n", cmd, xl, strerror(errno));
    return EXIT_FAILURE;
}

int main(int argc, char **argv)
{
    const struct cmd_spec *cspec;
    const char *cmd;
    int opt, ret, rc, i;
    xentoollog_level minlevel;

    /* character widths only (snapshot-list pads UTF-8 names) */
    setlocale(LC_CTYPE, "");
    orig_argv = calloc(argc + 1, sizeof(*orig_argv));
    if (!orig_argv) return EXIT_FAILURE;
    for (i = 0; i < argc; i++) orig_argv[i] = argv[i];
    orig_argc = argc;

    opterr = 0;
    while ((opt = getopt(argc, argv, "+vNfthT")) >= 0) {
        switch (opt) {
        case 'v': verbosity++; break;
        case 'N': dryrun_only = 1; break;
        case 'h': help(NULL); return EXIT_SUCCESS;
        case 'f': case 't': case 'T': break;   /* xl's; passed through */
        default:
            fprintf(stderr, "unknown global option\n");
            return EXIT_FAILURE;
        }
    }
    cmd = argv[optind];
    if (!cmd) {
        help(NULL);
        return EXIT_FAILURE;
    }
    argc -= optind;
    argv += optind;
    optind = 0;       /* glibc: full reinitialisation for the command */

    cspec = cmdtable_lookup(cmd);
    if (!cspec) return exec_system_xl(cmd, NULL, NULL);
    use_tree_tools();

    minlevel = verbosity >= 3 ? XTL_DEBUG
        : verbosity == 2 ? XTL_DETAIL
        : verbosity == 1 ? XTL_INFO : XTL_NOTICE;
    logger = xtl_createlogger_stdiostream(stderr, minlevel, 0);
    if (!logger) return EXIT_FAILURE;
    counting_logger = malloc(sizeof(*counting_logger));
    if (!counting_logger) return EXIT_FAILURE;
    counting_logger->vtable.vmessage = counting_vmessage;
    counting_logger->vtable.progress = counting_progress;
    counting_logger->vtable.destroy = counting_destroy;
    counting_logger->inner = (xentoollog_logger *)logger;

    if (cspec->cmd_impl == main_help) {
        ret = main_help(argc, argv);
        goto out;
    }
    rc = libxl_snapshot_ctx_alloc(&ctx, LIBXL_SNAPSHOT_VERSION, 0,
                                  (xentoollog_logger *)counting_logger);
    if (rc) {
        /* a domain command still works through the system xl */
        if (strncmp(cmd, "snapshot-", 9)) return exec_system_xl(cmd, NULL, NULL);
        fprintf(stderr, "cannot init xl snapshot context\n");
        ret = EXIT_FAILURE;
        goto out;
    }
    if (cspec->driver && cspec->driver != (int)libxl_snapshot_ctx_driver(ctx))
        return exec_system_xl(cmd, NULL, NULL);
    if (dryrun_only && !cspec->can_dryrun) {
        fprintf(stderr, "command does not implement -N (dryrun) "
                "option\n");
        ret = EXIT_FAILURE;
        goto out;
    }
    ret = cspec->cmd_impl(argc, argv);
 out:
    libxl_snapshot_ctx_free(ctx);
    xtl_logger_destroy((xentoollog_logger *)counting_logger);
    free(orig_argv);
    return ret;
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
