/*
 * xl.c - main() of the libxl-snapshot xl front end
 *
 *   xl [-v] [-N] <subcommand> [args]
 *
 * Our subcommands (snapshot-*, and on the qemu driver the domain
 * commands create/destroy/list/pause/unpause) run here.  Everything
 * else is exec'd unchanged in the system's xl, so this binary can stand
 * in for xl on a Xen host; `help CMD` too when CMD is the system xl's,
 * and `help` lists its subcommands after ours (from its own `help`).
 * A usage error exits 2 (EXIT_USAGE), as Xen's xl.
 *
 * Messages: the library logs through a xentoollog stdio logger on
 * stderr, as libxl does for xl; errors are one line each.  A wrapper
 * logger counts the errors, so that xl adds its own one-line summary
 * only when the library said nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "xl.h"

libxlsnap_ctx *ctx;
xentoollog_logger_stdiostream *logger;
int dryrun_only;
int verbosity;
int xl_errors_logged;
const char *xl_message_source;

typedef struct {
    xentoollog_logger vtable;
    xentoollog_logger *inner;
} xentoollog_logger_counting;

/* The first error the library logged, as the stdio logger prints it
 * (without its "libxl-snapshot: error: " prefix): for --json. */
static char first_error[2048];

/*
 * The library names its flags; xl's user knows them as options.  Each
 * flag a library message can name for an xl command, and its option
 * (longest names first: "_KEEP_OVERLAY" is how a list abbreviates).
 */
static const struct { const char *flag, *option; } flag_options[] = {
    { "LIBXLSNAP_BLOCK_COMMIT_KEEP_RELATIVE", "--keep-relative" },
    { "LIBXLSNAP_BLOCK_COMMIT_ACTIVE", "--active" },
    { "LIBXLSNAP_BLOCK_COMMIT_PIVOT", "--pivot" },
    { "LIBXLSNAP_BLOCK_COMMIT_SHALLOW", "--shallow" },
    { "LIBXLSNAP_BLOCK_COMMIT_DELETE", "--delete" },
    { "LIBXLSNAP_DELETE_CHILDREN", "--children" },
    { "LIBXLSNAP_REVERT_RUNNING", "--running" },
    { "LIBXLSNAP_REVERT_FORCE", "--force" },
    { "_KEEP_OVERLAY", "--keep-overlay" },
    { "_CHILDREN_ONLY", "--children-only" },
    { "_PAUSED", "--paused" },
    { "LIBXLSNAP_IMPORT_FORCE", "--force" },
};

/* msg, in place, with each flag_options[].flag as its option. */
static void xl_wording(char *msg, size_t size)
{
    size_t i;

    for (i = 0; i < sizeof(flag_options) / sizeof(flag_options[0]); i++) {
        size_t fl = strlen(flag_options[i].flag);
        size_t ol = strlen(flag_options[i].option);
        char *p;

        while ((p = strstr(msg, flag_options[i].flag))) {
            size_t tail = strlen(p + fl) + 1;
            if ((size_t)(p - msg) + ol + tail > size) break;
            memmove(p + ol, p + fl, tail);
            memcpy(p, flag_options[i].option, ol);
        }
    }
}

static void inner_message(xentoollog_logger *inner, xentoollog_level level,
                          int errnoval, const char *context,
                          const char *format, ...)
{
    va_list al;

    va_start(al, format);
    inner->vmessage(inner, level, errnoval, context, format, al);
    va_end(al);
}

static void counting_vmessage(xentoollog_logger *lg, xentoollog_level level,
                              int errnoval, const char *context,
                              const char *format, va_list al)
{
    xentoollog_logger_counting *c = (xentoollog_logger_counting *)lg;
    char msg[2048];

    if (xl_message_source && level >= XTL_WARN) {
        int n = snprintf(msg, sizeof(msg), "%s: ", xl_message_source);
        if (n < 0 || (size_t)n >= sizeof(msg)) n = 0;
        vsnprintf(msg + n, sizeof(msg) - n, format, al);
    } else {
        vsnprintf(msg, sizeof(msg), format, al);
    }
    xl_wording(msg, sizeof(msg));
    if (level >= XTL_ERROR && !xl_errors_logged++) {
        size_t n;

        snprintf(first_error, sizeof(first_error), "%s", msg);
        n = strlen(first_error);
        if (errnoval >= 0 && n < sizeof(first_error))
            snprintf(first_error + n, sizeof(first_error) - n, ": %s",
                     strerror(errnoval));
    }
    inner_message(c->inner, level, errnoval, context, "%s", msg);
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

/*
 * What a libxl ERROR_* code means, for people (libxl_error_to_string
 * gives its name, for scripts).  The codes this library returns.
 */
const char *xl_error_text(int rc)
{
    switch (rc) {
    case ERROR_FAIL: return "failed";
    case ERROR_INVAL: return "invalid request";
    case ERROR_NOMEM: return "out of memory";
    case ERROR_NI: return "not implemented";
    case ERROR_NOT_READY: return "not ready";
    case ERROR_TIMEDOUT: return "timed out";
    case ERROR_ABORTED: return "aborted";
    case ERROR_NOTFOUND: return "not found";
    case ERROR_DOMAIN_NOTFOUND: return "no such domain";
    case ERROR_LOCK_FAIL:
        return "another command holds the domain's lock";
    case ERROR_DEVICE_EXISTS: return "already exists, or is in use";
    case ERROR_BUFFERFULL: return "too much data";
    case ERROR_PROTOCOL_ERROR_QMP:
        return "QEMU's monitor (QMP) answered what it should not";
    case ERROR_UNKNOWN_QMP_ERROR:
    case ERROR_QMP_GENERIC_ERROR: return "QEMU refused the command";
    case ERROR_QMP_COMMAND_NOT_FOUND:
        return "QEMU does not know the command";
    case ERROR_QMP_DEVICE_NOT_FOUND: return "QEMU has no such device";
    case ERROR_QMP_DEVICE_NOT_ACTIVE: return "QEMU's device is not active";
    case ERROR_QEMU_API:
        return "QEMU lacks a command or argument this needs";
    default: return libxl_error_to_string(rc);
    }
}

const char *xl_error_message(int rc)
{
    return xl_errors_logged ? first_error : xl_error_text(rc);
}

int xl_options_exclude(const char *cmd, bool a, const char *oa, bool b,
                       const char *ob)
{
    if (!a || !b) return 0;
    fprintf(stderr, "libxl-snapshot: error: %s: %s and %s exclude each "
            "other\n", cmd, oa, ob);
    return 1;
}

int xl_fail(const char *what, int rc)
{
    if (!xl_errors_logged)
        fprintf(stderr, "libxl-snapshot: error: %s: %s\n", what,
                xl_error_text(rc));
    return EXIT_FAILURE;
}

void xl_print_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = *s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

void xl_print_json_error_members(int rc)
{
    /* why, for people; the libxl code's name, for scripts */
    printf("\"error\": ");
    xl_print_json_string(xl_error_message(rc));
    printf(", \"error_code\": ");
    xl_print_json_string(libxl_error_to_string(rc));
}

int xl_fail_json(const char *what, int rc, bool json)
{
    if (json) {
        printf("{");
        xl_print_json_error_members(rc);
        printf("}\n");
    }
    return xl_fail(what, rc);
}

/*
 * Ctrl-C of a command that changes a domain and cannot be aborted part
 * way (a revert, a create, the steps of a delete outside its block
 * jobs): the process ends as a crash would, leaving what its journal
 * records for the next command, but first says so in one line (written
 * from the handler: write(2) and _exit are async-signal-safe).
 */
static char interrupt_line[1024];
static size_t interrupt_len;

static void interrupt_exit(int sig)
{
    ssize_t r = write(STDERR_FILENO, interrupt_line, interrupt_len);
    (void)r;
    _exit(EXIT_FAILURE);
}

void xl_exit_on_interrupt(const char *cmd, const char *domain,
                          const char *left, const char *next)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    if (!cmd) {
        sa.sa_handler = SIG_DFL;
        sigaction(SIGINT, &sa, NULL);
        return;
    }
    snprintf(interrupt_line, sizeof(interrupt_line),
             "libxl-snapshot: error: %s interrupted: %s; `xl "
             "snapshot-recover %s` (or the next command on the domain) %s\n",
             cmd, left, domain, next);
    interrupt_len = strlen(interrupt_line);
    sa.sa_handler = interrupt_exit;
    sigaction(SIGINT, &sa, NULL);
}

const struct cmd_spec *cmdtable_lookup(const char *s)
{
    int i;
    for (i = 0; i < cmdtable_len; i++)
        if (!strcmp(s, cmd_table[i].cmd_name))
            return &cmd_table[i];
    return NULL;
}

static const char *system_xl(void)
{
    const char *p = getenv("XL_SNAPSHOT_SYSTEM_XL");
    return p && *p ? p : LIBXL_SNAPSHOT_SYSTEM_XL;
}

/*
 * The output of the system xl's `help`, or NULL when it cannot be run
 * or fails (no hypervisor, say).  Its subcommands are the lines
 * " name  description", as Xen's bash completion reads them.
 */
static char *system_xl_help(void)
{
    char *buf = NULL, *nbuf;
    size_t len = 0, cap = 0;
    int fds[2], status = -1, fd;
    ssize_t n;
    pid_t pid;

    /* a system xl that is this one again (a loop) lists nothing more */
    if (getenv("XL_SNAPSHOT_LISTING_SYSTEM_XL")) return NULL;
    fflush(stdout);
    if (pipe(fds)) return NULL;
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return NULL;
    }
    if (!pid) {
        fd = open("/dev/null", O_RDWR);
        if (fd >= 0) {
            dup2(fd, 0);
            dup2(fd, 2);
        }
        dup2(fds[1], 1);
        setenv("XL_SNAPSHOT_LISTING_SYSTEM_XL", "1", 1);
        execl(system_xl(), system_xl(), "help", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    for (;;) {
        if (cap - len < 4096) {
            nbuf = realloc(buf, cap + 65536);
            if (!nbuf) break;
            buf = nbuf;
            cap += 65536;
        }
        n = read(fds[0], buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        len += n;
    }
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!buf || !WIFEXITED(status) || WEXITSTATUS(status)) {
        free(buf);
        return NULL;
    }
    buf[len] = 0;
    return buf;
}

/*
 * Walks the system xl's help text: prints (if print) its subcommand
 * entries that are not ours, with their continuation lines; returns
 * whether it lists name (if not NULL).
 */
static bool system_xl_commands(const char *text, bool print,
                               const char *name)
{
    const char *line, *end, *w;
    bool in_list = false, skip = true, found = false;
    size_t wl;
    int i;

    for (line = text; *line; line = *end ? end + 1 : end) {
        end = strchrnul(line, '\n');
        if (line[0] == ' ' && line[1] && line[1] != ' ' && line[1] != '\n') {
            in_list = true;
            w = line + 1;
            wl = strcspn(w, " \n");
            if (name && strlen(name) == wl && !strncmp(w, name, wl))
                found = true;
            skip = false;
            for (i = 0; i < cmdtable_len; i++)
                if (strlen(cmd_table[i].cmd_name) == wl &&
                    !strncmp(cmd_table[i].cmd_name, w, wl))
                    skip = true;
        }
        if (print && in_list && !skip)
            printf("%.*s\n", (int)(end - line), line);
    }
    return found;
}

void help(const char *command)
{
    const struct cmd_spec *cmd = command ? cmdtable_lookup(command) : NULL;
    char *sys;
    int i;

    if (!cmd) {
        printf("Usage xl [-v] [-N] <subcommand> [args]\n\n");
        printf("xl snapshot front end (libxl-snapshot).  Subcommands "
               "handled here:\n\n");
        for (i = 0; i < cmdtable_len; i++)
            printf(" %-21s %s\n", cmd_table[i].cmd_name,
                   cmd_table[i].cmd_desc);
        printf("\nAny other subcommand is passed to the system xl.\n"
               "Options: -v verbose (repeat for more), -N dry run.\n");
        sys = system_xl_help();
        if (sys) {
            printf("\nSubcommands of the system xl (%s):\n\n", system_xl());
            system_xl_commands(sys, true, NULL);
            free(sys);
        }
        return;
    }
    printf("Usage: xl [-v%s] %s %s\n\n%s.\n\n", cmd->can_dryrun ? "N" : "",
           cmd->cmd_name, cmd->cmd_usage, cmd->cmd_desc);
    if (cmd->cmd_option && *cmd->cmd_option)
        printf("Options:\n\n%s\n", cmd->cmd_option);
}

int usage_error(const char *command, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "xl %s: ", command);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    help(command);
    return EXIT_USAGE;
}

/*
 * The option getopt_long refused, as the user wrote it: its long form
 * when it was one (optopt is then the long option's val, or 0 for an
 * unknown one), else -<optopt>.
 */
static void bad_option(char *buf, size_t sz, char *const argv[],
                       const struct option *longopts)
{
    const char *a = optind > 0 ? argv[optind - 1] : "";
    const struct option *o;
    size_t n;

    if (!strncmp(a, "--", 2) && a[2]) {
        n = strcspn(a + 2, "=");
        for (o = longopts; optopt && o && o->name; o++)
            if (o->val == optopt && !strncmp(o->name, a + 2, n))
                break;
        if (!optopt || (o && o->name)) {
            snprintf(buf, sz, "--%.*s", (int)n, a + 2);
            return;
        }
    }
    snprintf(buf, sz, "-%c", optopt);
}

int def_getopt(int argc, char *const argv[], const char *optstring,
               const struct option *longopts, const char *helpstr,
               int reqargs)
{
    char opt_text[64];
    int opt;

    opterr = 0;
    /* optstring starts with ':' (SWITCH_FOREACH_OPT): ':' is returned
     * for a missing argument, '?' for an unknown option */
    while ((opt = getopt_long(argc, argv, optstring, longopts, NULL))
           != -1) {
        if (opt == 'h') {
            help(helpstr);
            return 0;
        }
        if (opt == '?' || opt == ':') {
            bad_option(opt_text, sizeof(opt_text), argv, longopts);
            return usage_error(helpstr, opt == ':'
                               ? "option `%s' needs an argument."
                               : optopt && opt_text[1] == '-'
                               ? "option `%s' takes no argument."
                               : "unknown option `%s'.", opt_text);
        }
        return opt;
    }
    if (argc - optind < reqargs)
        return usage_error(helpstr, "requires at least %d argument%s.",
                           reqargs, reqargs > 1 ? "s" : "");
    return -1;
}

/*
 * help CMD: ours, else the system xl's when it has CMD (a command of
 * the other driver, destroy... on Xen, is the system xl's).
 */
int main_help(int argc, char **argv)
{
    const struct cmd_spec *c = argc > 1 ? cmdtable_lookup(argv[1]) : NULL;
    char *sys;
    bool listed, known;

    if (argc < 2) {
        help(NULL);
        return EXIT_SUCCESS;
    }
    if (c && c->driver &&
        !libxlsnap_ctx_alloc(&ctx, LIBXLSNAP_VERSION, 0,
                                  (xentoollog_logger *)logger, NULL) &&
        c->driver != (int)libxlsnap_ctx_driver(ctx))
        c = NULL;
    if (c) {
        help(argv[1]);
        return EXIT_SUCCESS;
    }
    sys = system_xl_help();
    listed = sys != NULL;
    known = listed && system_xl_commands(sys, false, argv[1]);
    free(sys);
    if (known) return exec_system_xl("help", NULL, NULL);
    fprintf(stderr, "xl help: no subcommand '%s' here%s.\n", argv[1],
            listed ? " nor in the system xl"
            : " (and the system xl cannot list its own)");
    return EXIT_FAILURE;
}

static char **orig_argv;
static int orig_argc;

/*
 * Run from the tree (xl/xl): the library runs the tree's vhd-util and
 * ceph-util unless $XL_SNAPSHOT_VHD_UTIL / $XL_SNAPSHOT_CEPH_UTIL name
 * others, as it uses the tree's library.  The binary's own directory,
 * as its RUNPATH's $ORIGIN.  (ceph-util is there only when the tree
 * was built with librbd-dev and librados-dev.)
 */
static void use_tree_tool(const char *dir, const char *rel, const char *env)
{
    char *p;

    if (!rel || getenv(env)) return;
    if (asprintf(&p, "%s/%s", dir, rel) < 0) return;
    if (!access(p, X_OK)) setenv(env, p, 1);
    free(p);
}

static void use_tree_tools(void)
{
    char exe[PATH_MAX], *slash;
    ssize_t n;

    if (!xl_tree_vhd_util && !xl_tree_ceph_util) return;
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) return;
    exe[n] = 0;
    slash = strrchr(exe, '/');
    if (!slash) return;
    *slash = 0;
    use_tree_tool(exe, xl_tree_vhd_util, "XL_SNAPSHOT_VHD_UTIL");
    use_tree_tool(exe, xl_tree_ceph_util, "XL_SNAPSHOT_CEPH_UTIL");
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
            fprintf(stderr, "xl: unknown global option `-%c' (see xl "
                    "help).\n", optopt);
            return EXIT_USAGE;
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
    rc = libxlsnap_ctx_alloc(&ctx, LIBXLSNAP_VERSION, 0,
                                  (xentoollog_logger *)counting_logger, NULL);
    if (rc) {
        /* a domain command still works through the system xl */
        if (strncmp(cmd, "snapshot-", 9)) return exec_system_xl(cmd, NULL, NULL);
        fprintf(stderr, "cannot init xl snapshot context\n");
        ret = EXIT_FAILURE;
        goto out;
    }
    if (cspec->driver && cspec->driver != (int)libxlsnap_ctx_driver(ctx))
        return exec_system_xl(cmd, NULL, NULL);
    if (dryrun_only && !cspec->can_dryrun) {
        fprintf(stderr, "command does not implement -N (dryrun) "
                "option\n");
        ret = EXIT_FAILURE;
        goto out;
    }
    ret = cspec->cmd_impl(argc, argv);
 out:
    libxlsnap_ctx_free(ctx);
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
