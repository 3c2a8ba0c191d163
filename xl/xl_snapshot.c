/*
 * xl_snapshot.c - xl snapshot-* commands
 *
 * Output is for people by default (a table, a tree, key: value lines)
 * and for scripts with --json (the libxl-json records themselves) or
 * --name (one name per line).  The table has no empty cells and no
 * spaces inside a cell but the last, so `awk '{print $1}'` works.
 * Times are local, ISO 8601.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include "xl.h"

const char *xl_fmt_time(uint64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    return buf;
}

const char *xl_fmt_bytes(uint64_t b, char *buf, size_t len)
{
    double v = b / 1024.0;
    const char *u = "KMGTP";

    if (b < 1024) {
        snprintf(buf, len, b ? "%" PRIu64 "B" : "0", b);
        return buf;
    }
    while (v >= 1024 && u[1]) {
        v /= 1024;
        u++;
    }
    snprintf(buf, len, v < 10 ? "%.1f%c" : "%.0f%c", v, *u);
    return buf;
}

/*
 * The columns s takes on a terminal, for padding: wcswidth in the
 * user's locale (xl sets LC_CTYPE from the environment), else, in a
 * single-byte locale or for text the locale cannot decode, one column
 * per UTF-8 code point (names are UTF-8).
 */
static size_t text_width(const char *s)
{
    size_t n = MB_CUR_MAX > 1 ? mbstowcs(NULL, s, 0) : (size_t)-1;
    const unsigned char *p;

    if (n != (size_t)-1) {
        wchar_t *w = calloc(n + 1, sizeof(*w));
        int r;
        if (!w) abort();
        mbstowcs(w, s, n + 1);
        r = wcswidth(w, n);
        free(w);
        if (r >= 0) return r;
    }
    for (n = 0, p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xc0) != 0x80) n++;
    return n;
}

/* s, then spaces up to width columns */
static void print_padded(const char *s, size_t width)
{
    size_t w = text_width(s);
    printf("%s%*s", s, w < width ? (int)(width - w) : 0, "");
}

static bool is_regular_file(const char *p)
{
    struct stat st;
    return !stat(p, &st) && S_ISREG(st.st_mode);
}

/* A config file's path rather than a name: it holds a '/' or ends in
 * .cfg (as the library tells a domain config path from a name). */
static bool looks_like_path(const char *s)
{
    size_t n = strlen(s);
    return strchr(s, '/') || (n > 4 && !strcmp(s + n - 4, ".cfg"));
}

/*
 * A path given on the command line, relative to xl's working directory:
 * the library takes absolute paths only (it has no cwd of the
 * caller's).  malloc'ed.
 */
static char *path_from_cwd(const char *p)
{
    char cwd[PATH_MAX], *abs;

    if (p[0] == '/' || !getcwd(cwd, sizeof(cwd))) {
        abs = strdup(p);       /* no cwd: the library refuses it */
    } else if (asprintf(&abs, "%s/%s", cwd, p) < 0) {
        abs = NULL;
    }
    if (!abs) abort();
    return abs;
}

static int add_diskspec(libxlsnap_domain_snapshot *s, const char *spec)
{
    libxlsnap_disk_snapshot d;
    int i, rc;

    libxlsnap_disk_snapshot_init(&d);
    rc = libxlsnap_disk_snapshot_parse_spec(ctx, spec, &d);
    if (rc) {
        libxlsnap_disk_snapshot_dispose(&d);
        return rc;
    }
    for (i = 0; i < s->num_disks; i++) {
        if (!strcmp(s->disks[i].vdev, d.vdev)) {
            fprintf(stderr, "libxl-snapshot: error: --diskspec names disk %s "
                    "twice\n", d.vdev);
            xl_errors_logged++;           /* said: no second line */
            libxlsnap_disk_snapshot_dispose(&d);
            return ERROR_INVAL;
        }
    }
    s->disks = realloc(s->disks, (s->num_disks + 1) * sizeof(*s->disks));
    if (!s->disks) abort();
    s->disks[s->num_disks++] = d;
    return 0;
}

static void print_json(const libxlsnap_domain_snapshot *s)
{
    char *j = libxlsnap_domain_snapshot_to_json(ctx, s);
    if (j) printf("%s\n", j);
    free(j);
}

/* The whole of a small text file, malloc'ed (NULL: said why). */
static char *read_text(const char *file)
{
    FILE *f = fopen(file, "r");
    char *buf = NULL;
    size_t len = 0, n;

    if (!f) {
        fprintf(stderr, "cannot open '%s': %s\n", file, strerror(errno));
        return NULL;
    }
    do {
        buf = realloc(buf, len + 65536 + 1);
        if (!buf) abort();
        n = fread(buf + len, 1, 65536, f);
        len += n;
    } while (n && len < (4u << 20));
    fclose(f);
    if (len >= (4u << 20)) {
        fprintf(stderr, "'%s' is larger than 4 MiB\n", file);
        free(buf);
        return NULL;
    }
    buf[len] = 0;
    return buf;
}

/* snapshot-create --redefine --xmlfile FILE [--current] <Domain> */
static int redefine_from_xml(const char *domain, const char *file,
                             bool current)
{
    libxlsnap_domain_snapshot snap;
    char *xml = read_text(file);
    int rc;

    if (!xml) return EXIT_FAILURE;
    xl_message_source = file;       /* its problems name it */
    rc = libxlsnap_domain_snapshot_from_xml(ctx, xml, &snap);
    free(xml);
    if (!rc)
        rc = libxlsnap_domain_snapshot_redefine(ctx, domain, &snap,
                 (current ? LIBXLSNAP_REDEFINE_CURRENT : 0) |
                 (dryrun_only ? LIBXLSNAP_REDEFINE_DRY_RUN : 0), NULL);
    xl_message_source = NULL;
    if (!rc)
        printf("Domain snapshot %s %s from '%s'\n", snap.name,
               dryrun_only ? "would be defined" : "defined", file);
    libxlsnap_domain_snapshot_dispose(&snap);
    return rc ? xl_fail("snapshot-create", rc) : EXIT_SUCCESS;
}

/* ---------------------------------------------------------------- */
/* snapshot-create --redefine of many files, or of a directory */

typedef struct {
    char **files;
    int num;
} xml_files;

static void xml_files_add(xml_files *xf, char *file)
{
    xf->files = realloc(xf->files, (xf->num + 1) * sizeof(*xf->files));
    if (!xf->files) abort();
    xf->files[xf->num++] = file;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* arg's files: itself, or each *.xml file in it (a directory) */
static int xml_files_of(xml_files *xf, const char *arg)
{
    struct dirent *de;
    struct stat st;
    DIR *dir;
    int first = xf->num;
    char *path;

    if (stat(arg, &st) || !S_ISDIR(st.st_mode)) {
        path = strdup(arg);
        if (!path) abort();
        xml_files_add(xf, path);
        return 0;
    }
    dir = opendir(arg);
    if (!dir) {
        fprintf(stderr, "libxl-snapshot: error: cannot read directory "
                "'%s': %s\n", arg, strerror(errno));
        xl_errors_logged++;
        return ERROR_FAIL;
    }
    while ((de = readdir(dir))) {
        size_t l = strlen(de->d_name);
        if (de->d_name[0] == '.' || l < 5 ||
            strcmp(de->d_name + l - 4, ".xml"))
            continue;
        if (asprintf(&path, "%s/%s", arg, de->d_name) < 0) abort();
        if (stat(path, &st) || !S_ISREG(st.st_mode)) {
            free(path);
            continue;
        }
        xml_files_add(xf, path);
    }
    closedir(dir);
    if (xf->num == first) {
        fprintf(stderr, "libxl-snapshot: error: directory '%s' holds no "
                "*.xml file\n", arg);
        xl_errors_logged++;
        return ERROR_INVAL;
    }
    /* (the library puts parents first: this is only a stable order) */
    qsort(xf->files + first, xf->num - first, sizeof(*xf->files), name_cmp);
    return 0;
}

/*
 * --redefine --xmlfile=F1 --xmlfile=F2... or --xmlfile=DIR: every file
 * read and parsed (a message about one names it: xl_message_source),
 * then one libxlsnap_domain_snapshot_redefine_many: all or none.  With
 * -N (any number of files): checked only.
 */
static int redefine_many_from_xml(const char *domain, const char **args,
                                  int nargs, bool current)
{
    xml_files xf = { NULL, 0 };
    libxlsnap_domain_snapshot *snaps = NULL;
    int i, n = 0, rc = 0;

    for (i = 0; !rc && i < nargs; i++)
        rc = xml_files_of(&xf, args[i]);
    if (rc) goto out;
    snaps = calloc(xf.num, sizeof(*snaps));
    if (!snaps) abort();
    for (n = 0; n < xf.num; n++) {
        char *xml = read_text(xf.files[n]);
        if (!xml) {
            xl_errors_logged++;           /* said */
            rc = ERROR_FAIL;
            goto out;
        }
        xl_message_source = xf.files[n];
        rc = libxlsnap_domain_snapshot_from_xml(ctx, xml, &snaps[n]);
        xl_message_source = NULL;
        free(xml);
        if (rc) goto out;
    }
    rc = libxlsnap_domain_snapshot_redefine_many(ctx, domain, snaps, n,
             (const char *const *)xf.files,
             (current ? LIBXLSNAP_REDEFINE_CURRENT : 0) |
             (dryrun_only ? LIBXLSNAP_REDEFINE_DRY_RUN : 0), NULL);
    for (i = 0; !rc && i < n; i++)
        printf("Domain snapshot %s %s from '%s'\n", snaps[i].name,
               dryrun_only ? "would be defined" : "defined", xf.files[i]);
 out:
    for (i = 0; i < n; i++) libxlsnap_domain_snapshot_dispose(&snaps[i]);
    free(snaps);
    for (i = 0; i < xf.num; i++) free(xf.files[i]);
    free(xf.files);
    return rc ? xl_fail("snapshot-create", rc) : EXIT_SUCCESS;
}

int main_snapshot_dumpxml(int argc, char **argv)
{
    static const struct option opts[] = {
        COMMON_LONG_OPTS,
        {0, 0, 0, 0}
    };
    libxlsnap_domain_snapshot s;
    char *xml;
    int opt, rc;

    SWITCH_FOREACH_OPT(opt, "", opts, "snapshot-dumpxml", 2) {
        /* no options */
    }
    rc = libxlsnap_domain_snapshot_get(ctx, argv[optind], argv[optind + 1], &s);
    if (rc) return xl_fail("snapshot-dumpxml", rc);
    xml = libxlsnap_domain_snapshot_to_xml(ctx, &s);
    libxlsnap_domain_snapshot_dispose(&s);
    if (!xml) return xl_fail("snapshot-dumpxml", ERROR_FAIL);
    fputs(xml, stdout);
    free(xml);
    return EXIT_SUCCESS;
}

/*
 * The progress of an operation's long steps (a checkpoint's memory
 * saved or restored, a disk's state copied out by a revert), each with
 * its own line: redrawn on a terminal, to a pipe with --verbose (at
 * every quarter); then, after the outcome, each step's size, time and
 * speed.  A step runs from the end of the one before (or the start of
 * the command) to its last report.
 */
#define MAX_STEPS 64

typedef struct {
    char what[48];                    /* "Memory", "Disk xvda" */
    uint64_t done, total;
    struct timespec t0, t1;
} step_progress;

typedef struct {
    bool tty, verbose, ok;
    int n;
    unsigned last_pct;
    struct timespec start;
    step_progress steps[MAX_STEPS];
} op_progress;

static double seconds_between(const struct timespec *a,
                              const struct timespec *b)
{
    return (b->tv_sec - a->tv_sec) + (b->tv_nsec - a->tv_nsec) / 1e9;
}

static void op_progress_cb(const libxlsnap_progress *p,
                           void *for_callback)
{
    const char *what = p->what;
    uint64_t done = p->done, total = p->total;
    op_progress *m = for_callback;
    step_progress *st = m->n ? &m->steps[m->n - 1] : NULL;
    unsigned pct = total ? (unsigned)(done * 100 / total) : 0;
    char name[sizeof(st->what)];

    snprintf(name, sizeof(name), "%s", what);
    name[0] = toupper((unsigned char)name[0]);
    if (!st || strcmp(st->what, name)) {
        if (m->n == MAX_STEPS) return;
        if (st && m->tty) putchar('\n');
        st = &m->steps[m->n++];
        snprintf(st->what, sizeof(st->what), "%s", name);
        st->t0 = m->n > 1 ? m->steps[m->n - 2].t1 : m->start;
        m->last_pct = UINT_MAX;
    }
    st->done = done;
    st->total = total;
    clock_gettime(CLOCK_MONOTONIC, &st->t1);
    if (m->tty) {
        printf("\r%s: [%3u %%] %" PRIu64 "/%" PRIu64 " MiB", name, pct,
               done >> 20, total >> 20);
        fflush(stdout);
    } else if (m->verbose &&
               (m->last_pct == UINT_MAX || pct / 25 != m->last_pct / 25)) {
        printf("%s: [%3u %%] %" PRIu64 "/%" PRIu64 " MiB\n", name, pct,
               done >> 20, total >> 20);
    }
    m->last_pct = pct;
}

static void op_progress_start(op_progress *m, bool json)
{
    m->tty = isatty(STDOUT_FILENO) && !json;
    m->last_pct = UINT_MAX;
    clock_gettime(CLOCK_MONOTONIC, &m->start);
}

/* After the call: ends the terminal's line; summaries only if ok. */
static void op_progress_end(op_progress *m, bool ok, bool json)
{
    if (m->tty && m->n) putchar('\n');
    m->ok = ok && !json;
}

static void op_progress_summary(const op_progress *m)
{
    const step_progress *st;
    double s, mib;
    int i;

    for (i = 0; m->ok && i < m->n; i++) {
        st = &m->steps[i];
        s = seconds_between(&st->t0, &st->t1);
        mib = st->done / 1048576.0;
        printf("%s: %.1f MiB in %.2f s (%.1f MiB/s)\n", st->what, mib, s,
               s > 0 ? mib / s : 0.0);
    }
}

/* snapshot-create --auto-commit: a merge's job, and the memory saved */
typedef struct {
    op_progress *mp;
    libxlsnap_progress_how job;
} create_progress;

static void create_progress_cb(const libxlsnap_progress *p,
                               void *for_callback)
{
    create_progress *cp = for_callback;

    if (p->job)
        cp->job.callback(p, cp->job.for_callback);
    else
        op_progress_cb(p, cp->mp);
}

int main_snapshot_create(int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", 1, 0, 'n'},
        {"description", 1, 0, 'd'},
        {"diskspec", 1, 0, 'S'},
        {"disk-only", 0, 0, 'D'},
        {"memory", 2, 0, 'm'},
        {"live", 0, 0, 'L'},
        {"quiesce", 2, 0, 'Q'},
        {"agent", 1, 0, 'A'},
        {"no-metadata", 0, 0, 'M'},
        {"json", 0, 0, 'j'},
        {"redefine", 0, 0, 'R'},
        {"xmlfile", 1, 0, 'X'},
        {"current", 0, 0, 'C'},
        {"verbose", 0, 0, 'v'},
        {"checkpoint", 1, 0, 'K'},
        {"force", 0, 0, 'F'},
        {"auto-commit", 0, 0, 'a'},
        COMMON_LONG_OPTS,
        {0, 0, 0, 0}
    };
    const char **xmlfiles = NULL, *checkpoint = NULL;
    int nxml = 0;
    bool redefine = false, current = false;
    op_progress mp = { .last_pct = UINT_MAX };
    libxlsnap_progress_how progress = { op_progress_cb, &mp };
    libxlsnap_domain_snapshot snap;
    libxlsnap_checkpoint ckpt;
    const char *name = NULL, *desc = NULL, *config = NULL, *domain;
    const char **specs = NULL;
    int nspecs = 0, opt, rc, nargs, i, ret = EXIT_FAILURE;
    const char *memory = NULL, *agent = NULL;
    unsigned flags = 0;
    bool json = false, disk_only = false;
    xl_job_wait cw;                   /* --auto-commit: its merge */
    libxlsnap_progress_how cw_progress;
    libxl_asyncop_how cw_how, *ao_how = NULL;
    create_progress cp;

    memset(&cw, 0, sizeof(cw));
    memset(&cp, 0, sizeof(cp));
    libxlsnap_domain_snapshot_init(&snap);
    libxlsnap_checkpoint_init(&ckpt);
    SWITCH_FOREACH_OPT(opt, "n:d:DN", opts, "snapshot-create", 1) {
    case 'n': name = optarg; break;
    case 'N': dryrun_only = 1; break;   /* as xl -N snapshot-create */
    case 'd': desc = optarg; break;
    case 'D': disk_only = true; break;
    case 'm': memory = optarg ? optarg : "yes"; break;
    case 'L': flags |= LIBXLSNAP_CREATE_LIVE; break;
    case 'Q':
        if (!optarg || !strcmp(optarg, "required")) {
            flags |= LIBXLSNAP_CREATE_QUIESCE;
        } else if (!strcmp(optarg, "try")) {
            flags |= LIBXLSNAP_CREATE_QUIESCE_TRY;
        } else {
            fprintf(stderr, "snapshot-create: --quiesce takes 'required' "
                    "or 'try', not '%s'\n", optarg);
            goto out;
        }
        break;
    case 'A': agent = optarg; break;
    case 'M': flags |= LIBXLSNAP_CREATE_NO_METADATA; break;
    case 'j': json = true; break;
    case 'R': redefine = true; break;
    case 'X':
        xmlfiles = realloc(xmlfiles, (nxml + 1) * sizeof(*xmlfiles));
        if (!xmlfiles) abort();
        xmlfiles[nxml++] = optarg;
        break;
    case 'C': current = true; break;
    case 'v': mp.verbose = true; break;
    case 'K': checkpoint = optarg; break;
    case 'F': flags |= LIBXLSNAP_CREATE_FORCE; break;
    case 'a': flags |= LIBXLSNAP_CREATE_AUTO_COMMIT; break;
    case 'S':
        specs = realloc(specs, (nspecs + 1) * sizeof(*specs));
        if (!specs) abort();
        specs[nspecs++] = optarg;
        break;
    }
    nargs = argc - optind;
    if (redefine || nxml || current) {
        struct stat st;
        if (!redefine || !nxml || nargs != 1 || name || desc || nspecs ||
            memory || flags || checkpoint || json) {
            ret = usage_error("snapshot-create", "--redefine --xmlfile="
                              "FILE|DIR... [--current] <Domain> takes "
                              "nothing else.");
            goto out;
        }
        if (nxml == 1 && (stat(xmlfiles[0], &st) || !S_ISDIR(st.st_mode)))
            ret = redefine_from_xml(argv[optind], xmlfiles[0], current);
        else
            ret = redefine_many_from_xml(argv[optind], xmlfiles, nxml,
                                         current);
        goto out;
    }
    if (nargs > 3) {
        ret = usage_error("snapshot-create", "takes at most 3 arguments.");
        goto out;
    }
    /*
     * [<ConfigFile>] <Domain> [<Name>]: with three arguments the first
     * is the snapshot config.  With two, it is when it is a path (it
     * holds a '/' or ends in .cfg, as a domain config path) to a file
     * that reads as a snapshot config, not a domain config
     * (libxlsnap_domain_snapshot_config_is_snapshot: by the settings it
     * makes); otherwise they are <Domain> <Name>.
     */
    if (nargs == 3 ||
        (nargs == 2 && looks_like_path(argv[optind]) &&
         is_regular_file(argv[optind]) &&
         libxlsnap_domain_snapshot_config_is_snapshot(ctx, argv[optind]))) {
        config = argv[optind++];
        nargs--;
    }
    domain = argv[optind];
    if (nargs == 2) {
        if (name && strcmp(name, argv[optind + 1])) {
            fprintf(stderr, "snapshot-create: two names given ('%s' and "
                    "'%s')\n", name, argv[optind + 1]);
            goto out;
        }
        name = argv[optind + 1];
    }
    if (config) {
        rc = libxlsnap_domain_snapshot_config_parse(ctx, config, &snap);
        if (rc) {
            xl_fail_json("snapshot-create", rc, json);
            goto out;
        }
        if (snap.memory && (!strcmp(snap.memory, "no") ||
                            !strcmp(snap.memory, ""))) {
            free(snap.memory);
            snap.memory = NULL;
        }
    }
    if (disk_only && memory) {
        fprintf(stderr, "snapshot-create: --disk-only and --memory "
                "exclude each other\n");
        goto out;
    }
    if (memory || disk_only) {
        free(snap.memory);
        /* --memory FILE; bare --memory is "yes", --memory=no none */
        snap.memory = !memory ? NULL
            : !strcmp(memory, "yes") || !strcmp(memory, "no") || !*memory
            ? strdup(memory) : path_from_cwd(memory);
    }
    if (agent) {
        free(snap.agent);
        snap.agent = strdup(agent);
    }
    if ((flags & LIBXLSNAP_CREATE_LIVE) && !snap.memory)
        snap.memory = strdup("yes");     /* --live means with memory */
    if (name) {
        free(snap.name);
        snap.name = strdup(name);
    }
    if (desc) {
        free(snap.description);
        snap.description = strdup(desc);
    }
    for (i = 0; i < nspecs; i++) {
        rc = add_diskspec(&snap, specs[i]);
        if (rc) {
            xl_fail_json("snapshot-create", rc, json);
            goto out;
        }
    }
    if (dryrun_only) flags |= LIBXLSNAP_CREATE_DRY_RUN;

    op_progress_start(&mp, json);
    xl_exit_on_interrupt("snapshot-create", domain, "the snapshot may be "
                         "part-taken (recorded in the domain's journal)",
                         "completes or undoes it");
    if (flags & LIBXLSNAP_CREATE_AUTO_COMMIT) {
        /* a merge may come first: its progress, and Ctrl-C aborts it,
         * as for xl block-commit */
        xl_job_setup(&cw, "Auto-commit", &cw_progress, &cw_how);
        cw.tty = cw.tty && !json;     /* stdout is the document */
        ao_how = &cw_how;
        progress.callback = create_progress_cb;
        progress.for_callback = &cp;
        cp.mp = &mp;
        cp.job = cw_progress;
    }
    if (checkpoint) {
        libxlsnap_checkpoint_init(&ckpt);
        ckpt.name = strdup(checkpoint);
        rc = libxlsnap_domain_snapshot_create_checkpoint(ctx, domain, &snap,
                                                         &ckpt, flags,
                                                         &progress, ao_how);
    } else {
        rc = libxlsnap_domain_snapshot_create(ctx, domain, &snap, flags,
                                              &progress, ao_how);
    }
    if (!rc && ao_how) rc = xl_job_wait_for(&cw, ao_how);
    xl_exit_on_interrupt(NULL, NULL, NULL, NULL);
    op_progress_end(&mp, !rc && snap.memory, json);
    if (rc) {
        xl_fail_json("snapshot-create", rc, json);
        goto out;
    }
    if (json || dryrun_only)
        print_json(&snap);
    else if (snap.memory)
        printf("Domain snapshot %s created, with memory (%s)\n", snap.name,
               snap.memory);
    else if (snap.quiesce && !strcmp(snap.quiesce, "frozen"))
        printf("Domain snapshot %s created, the guest's file systems "
               "frozen\n", snap.name);
    else if (snap.quiesce)
        printf("Domain snapshot %s created, crash-consistent (the guest "
               "could not be quiesced)\n", snap.name);
    else
        printf("Domain snapshot %s created\n", snap.name);
    if (checkpoint && !json && !dryrun_only)
        printf("Domain checkpoint %s created with it (%d disk%s)\n",
               ckpt.name, ckpt.num_disks, ckpt.num_disks == 1 ? "" : "s");
    op_progress_summary(&mp);
    if (cw.bytes && !json) xl_job_summary(&cw, true);   /* the merges */
    ret = EXIT_SUCCESS;
 out:
    free(specs);
    free(xmlfiles);
    libxlsnap_domain_snapshot_dispose(&snap);
    libxlsnap_checkpoint_dispose(&ckpt);
    return ret;
}

/* The memory image's size, "64M" (no blanks), or "-" when disk-only. */
static const char *memory_summary(const libxlsnap_domain_snapshot *s, char *buf,
                                  size_t len)
{
    struct stat st;

    if (!s->memory) return "-";
    if (stat(s->memory, &st)) return "missing";
    return xl_fmt_bytes(st.st_size, buf, len);
}

static void disks_summary(const libxlsnap_domain_snapshot *s, char *buf,
                          size_t len)
{
    int i;
    size_t o = 0;

    buf[0] = 0;
    for (i = 0; i < s->num_disks && o < len; i++)
        o += snprintf(buf + o, len - o, "%s%s:%s%s", i ? "," : "",
                      s->disks[i].vdev,
                      libxlsnap_disk_snapshot_type_to_string(s->disks[i].type),
                      s->disks[i].problem ? "(INVALID)" : "");
    if (!s->num_disks) snprintf(buf, len, "-");
}

/* The list's indices sorted by name, to find a child in O(log n). */
static const libxlsnap_domain_snapshot *by_name_list;

static int by_name_cmp(const void *a, const void *b)
{
    return strcmp(by_name_list[*(const int *)a].name,
                  by_name_list[*(const int *)b].name);
}

static const libxlsnap_domain_snapshot *find_by_name(
    const libxlsnap_domain_snapshot *l, const int *sorted, int n,
    const char *name)
{
    int lo = 0, hi = n - 1;

    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(l[sorted[mid]].name, name);
        if (!c) return &l[sorted[mid]];
        if (c < 0) lo = mid + 1; else hi = mid - 1;
    }
    return NULL;
}

static void print_tree(const libxlsnap_domain_snapshot *l, const int *sorted,
                       int n, const libxlsnap_domain_snapshot *s,
                       const char *prefix, bool last, bool root)
{
    const libxlsnap_domain_snapshot *child;
    char *childprefix;
    int c;

    printf("%s%s%s%s\n", prefix, root ? "" : "+- ", s->name,
           s->current ? " (current)" : "");
    if (asprintf(&childprefix, "%s%s", prefix,
                 root ? "" : last ? "   " : "|  ") < 0)
        abort();
    for (c = 0; c < s->num_children; c++) {
        child = find_by_name(l, sorted, n, s->children[c]);
        if (child)
            print_tree(l, sorted, n, child, childprefix,
                       c == s->num_children - 1, false);
    }
    free(childprefix);
}

/* The figures of one snapshot's disks of one kind, summed: "-" when
 * none of its disks is of that kind, "?" when one's figure is missing */
typedef struct {
    bool any, missing;
    uint64_t bytes, cow_size;
} size_cell;

static void size_cells(const libxlsnap_snapshot_size *z, size_cell *ext,
                       size_cell *in, size_cell *cow, size_cell *rbd)
{
    int j;

    memset(ext, 0, sizeof(*ext));
    memset(in, 0, sizeof(*in));
    memset(cow, 0, sizeof(*cow));
    memset(rbd, 0, sizeof(*rbd));
    for (j = 0; j < z->num_disks; j++) {
        const libxlsnap_disk_size *d = &z->disks[j];
        size_cell *c = NULL;
        uint64_t b = 0;

        switch (d->type) {
        case LIBXLSNAP_DISK_SNAPSHOT_TYPE_EXTERNAL:
            c = ext;
            b = d->allocated;
            break;
        case LIBXLSNAP_DISK_SNAPSHOT_TYPE_INTERNAL:
            c = in;
            b = d->exclusive;
            break;
        case LIBXLSNAP_DISK_SNAPSHOT_TYPE_LVM:
            c = cow;
            b = d->cow;
            cow->cow_size += d->cow_size;
            break;
        case LIBXLSNAP_DISK_SNAPSHOT_TYPE_RBD:
            c = rbd;
            b = d->rbd;
            break;
        default:
            break;
        }
        if (!c) continue;
        c->any = true;
        c->bytes += b;
        if (d->problem) c->missing = true;
    }
}

static const char *size_cell_text(const size_cell *c, bool percent,
                                  char *buf, size_t len)
{
    char b[32];

    if (!c->any) return "-";
    if (c->missing && !c->bytes) return "?";
    xl_fmt_bytes(c->bytes, b, sizeof(b));
    if (percent && c->cow_size)
        snprintf(buf, len, "%s(%.0f%%)%s", b,
                 c->bytes * 100.0 / c->cow_size, c->missing ? "?" : "");
    else
        snprintf(buf, len, "%s%s", b, c->missing ? "?" : "");
    return buf;
}

/* One disk's figure, for --long and snapshot-info */
static void print_disk_size(const char *indent,
                            const libxlsnap_disk_size *d)
{
    char a[32], f[32];

    printf("%s%-6s %-9s ", indent, d->vdev,
           libxlsnap_disk_snapshot_type_to_string(d->type));
    switch (d->type) {
    case LIBXLSNAP_DISK_SNAPSHOT_TYPE_EXTERNAL:
        printf("allocated %s", xl_fmt_bytes(d->allocated, a, sizeof(a)));
        break;
    case LIBXLSNAP_DISK_SNAPSHOT_TYPE_INTERNAL:
        printf("exclusive %s", xl_fmt_bytes(d->exclusive, a, sizeof(a)));
        break;
    case LIBXLSNAP_DISK_SNAPSHOT_TYPE_LVM:
        printf("cow %s of %s (%.1f%%)", xl_fmt_bytes(d->cow, a, sizeof(a)),
               xl_fmt_bytes(d->cow_size, f, sizeof(f)),
               d->cow_size ? d->cow * 100.0 / d->cow_size : 0.0);
        break;
    case LIBXLSNAP_DISK_SNAPSHOT_TYPE_RBD:
        printf("rbd du %s", xl_fmt_bytes(d->rbd, a, sizeof(a)));
        break;
    default:
        printf("-");
        break;
    }
    printf(", frees %s", xl_fmt_bytes(d->frees, f, sizeof(f)));
    if (d->problem) printf(" (unknown: %s)", d->problem);
    printf("\n");
}

/*
 * snapshot-list --size: a row per snapshot, a column per figure (the
 * sums over its disks of that kind), then the totals per disk and the
 * domain's.
 */
static int list_sizes(const char *domain, bool json, bool longfmt)
{
    libxlsnap_domain_sizes z;
    size_t wname = 4;
    int i, j, rc;
    char m[32], e[48], in[48], c[48], r[48], o[32], f[32];

    libxlsnap_domain_sizes_init(&z);
    rc = libxlsnap_domain_snapshot_sizes(ctx, domain, NULL, &z);
    if (rc) return xl_fail_json("snapshot-list", rc, json);
    if (json) {
        char *t = libxlsnap_domain_sizes_to_json(ctx, &z);
        printf("%s\n", t ? t : "null");
        free(t);
        libxlsnap_domain_sizes_dispose(&z);
        return t ? EXIT_SUCCESS : EXIT_FAILURE;
    }
    for (i = 0; i < z.num_snapshots; i++)
        if (text_width(z.snapshots[i].name) > wname)
            wname = text_width(z.snapshots[i].name);
    for (i = 0; i < z.num_disks; i++)
        if (strlen(z.disks[i].vdev) + 6 > wname)
            wname = strlen(z.disks[i].vdev) + 6;
    printf("%-*s  %8s  %9s  %9s  %14s  %8s  %8s  %8s\n", (int)wname, "NAME",
           "MEMORY", "EXTERNAL", "INTERNAL", "LVM-COW", "RBD", "OWN",
           "FREES");
    for (i = 0; i < z.num_snapshots; i++) {
        const libxlsnap_snapshot_size *s = &z.snapshots[i];
        size_cell ce, ci, cc, cr;
        bool unknown = s->memory_problem != NULL;

        size_cells(s, &ce, &ci, &cc, &cr);
        for (j = 0; j < s->num_disks; j++)
            if (s->disks[j].problem) unknown = true;
        xl_fmt_bytes(s->frees, f, sizeof(f));
        if (unknown) strcat(f, "?");
        print_padded(s->name, wname);
        printf("  %8s  %9s  %9s  %14s  %8s  %8s  %8s\n",
               s->memory_problem ? "?"
               : s->memory ? xl_fmt_bytes(s->memory, m, sizeof(m)) : "-",
               size_cell_text(&ce, false, e, sizeof(e)),
               size_cell_text(&ci, false, in, sizeof(in)),
               size_cell_text(&cc, true, c, sizeof(c)),
               size_cell_text(&cr, false, r, sizeof(r)),
               xl_fmt_bytes(s->own, o, sizeof(o)), f);
        if (s->memory_problem)
            fprintf(stderr, "warning: %s memory: size unknown: %s\n",
                    s->name, s->memory_problem);
        for (j = 0; j < s->num_disks; j++) {
            if (longfmt) print_disk_size("    ", &s->disks[j]);
            else if (s->disks[j].problem)
                fprintf(stderr, "warning: %s %s: size unknown: %s\n",
                        s->name, s->disks[j].vdev, s->disks[j].problem);
        }
    }
    for (i = 0; i < z.num_disks; i++) {
        char *lbl;
        if (asprintf(&lbl, "total %s", z.disks[i].vdev) < 0) abort();
        print_padded(lbl, wname);
        printf("  %8s  %9s  %9s  %14s  %8s  %8s  %8s\n", "-", "-", "-", "-",
               "-", xl_fmt_bytes(z.disks[i].own, o, sizeof(o)), "-");
        free(lbl);
    }
    print_padded("total", wname);
    printf("  %8s  %9s  %9s  %14s  %8s  %8s  %8s\n",
           xl_fmt_bytes(z.memory, m, sizeof(m)), "-", "-", "-", "-",
           xl_fmt_bytes(z.total, o, sizeof(o)), "-");
    libxlsnap_domain_sizes_dispose(&z);
    return EXIT_SUCCESS;
}

int main_snapshot_list(int argc, char **argv)
{
    static const struct option opts[] = {
        {"long", 0, 0, 'l'},
        {"tree", 0, 0, 't'},
        {"name", 0, 0, 'N'},
        {"json", 0, 0, 'j'},
        {"size", 0, 0, 'S'},
        COMMON_LONG_OPTS,
        {0, 0, 0, 0}
    };
    libxlsnap_domain_snapshot *l = NULL;
    bool longfmt = false, tree = false, names = false, json = false;
    bool size = false;
    int opt, rc, n = 0, i, j;
    size_t wname = 4, wparent = 6, wdisks = 5;
    char tbuf[32], dbuf[512], mbuf[32];

    SWITCH_FOREACH_OPT(opt, "lt", opts, "snapshot-list", 1) {
    case 'l': longfmt = true; break;
    case 't': tree = true; break;
    case 'N': names = true; break;
    case 'j': json = true; break;
    case 'S': size = true; break;
    }
    if (size && (tree || names)) {
        fprintf(stderr, "snapshot-list: --size takes no --tree or --name\n");
        return EXIT_USAGE;
    }
    if (size) return list_sizes(argv[optind], json, longfmt);
    rc = libxlsnap_domain_snapshot_list(ctx, argv[optind], &l, &n);
    if (rc) return xl_fail_json("snapshot-list", rc, json);

    if (json) {
        printf("[");
        for (i = 0; i < n; i++) {
            char *s = libxlsnap_domain_snapshot_to_json(ctx, &l[i]);
            printf("%s\n%s", i ? "," : "", s ? s : "null");
            free(s);
        }
        printf("%s]\n", n ? "\n" : "");
    } else if (names) {
        for (i = 0; i < n; i++) printf("%s\n", l[i].name);
    } else if (tree) {
        int *sorted = calloc(n ? n : 1, sizeof(*sorted));
        if (!sorted) abort();
        for (i = 0; i < n; i++) sorted[i] = i;
        by_name_list = l;
        qsort(sorted, n, sizeof(*sorted), by_name_cmp);
        for (i = 0; i < n; i++)
            if (!l[i].parent) print_tree(l, sorted, n, &l[i], "", true, true);
        free(sorted);
    } else {
        /* widths in columns: names may be UTF-8 */
        for (i = 0; i < n; i++) {
            if (text_width(l[i].name) > wname) wname = text_width(l[i].name);
            if (l[i].parent && text_width(l[i].parent) > wparent)
                wparent = text_width(l[i].parent);
            disks_summary(&l[i], dbuf, sizeof(dbuf));
            if (text_width(dbuf) > wdisks) wdisks = text_width(dbuf);
        }
        printf("%-*s  %-19s  %-7s  %-*s  %-7s  %-*s  %s\n", (int)wname,
               "NAME", "CREATED", "STATE", (int)wparent, "PARENT",
               "CURRENT", (int)wdisks, "DISKS", "MEMORY");
        for (i = 0; i < n; i++) {
            disks_summary(&l[i], dbuf, sizeof(dbuf));
            print_padded(l[i].name, wname);
            printf("  %-19s  %-7s  ",
                   xl_fmt_time(l[i].creation_time, tbuf, sizeof(tbuf)),
                   libxlsnap_domain_state_to_string(l[i].state));
            print_padded(l[i].parent ? l[i].parent : "-", wparent);
            printf("  %-7s  ", l[i].current ? "*" : "-");
            print_padded(dbuf, wdisks);
            printf("  %s\n", memory_summary(&l[i], mbuf, sizeof(mbuf)));
            if (!longfmt) continue;
            if (l[i].description)
                printf("    description: %s\n", l[i].description);
            if (l[i].memory)
                printf("    memory: %s\n", l[i].memory);
            for (j = 0; j < l[i].num_disks; j++) {
                const libxlsnap_disk_snapshot *d = &l[i].disks[j];
                printf("    %s: %s %s%s%s\n", d->vdev,
                       libxlsnap_disk_snapshot_type_to_string(d->type),
                       d->file ? d->file : "-",
                       d->overlay ? " overlay " : "",
                       d->overlay ? d->overlay : "");
            }
        }
    }
    libxlsnap_domain_snapshot_list_free(l, n);
    return EXIT_SUCCESS;
}

int main_snapshot_info(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", 0, 0, 'j'},
        COMMON_LONG_OPTS,
        {0, 0, 0, 0}
    };
    libxlsnap_domain_snapshot s;
    libxlsnap_domain_sizes z;
    bool json = false, sized;
    int opt, rc, i;
    char tbuf[32];

    SWITCH_FOREACH_OPT(opt, "", opts, "snapshot-info", 2) {
    case 'j': json = true; break;
    }
    rc = libxlsnap_domain_snapshot_get(ctx, argv[optind], argv[optind + 1], &s);
    if (rc) return xl_fail_json("snapshot-info", rc, json);
    /* what it costs: a figure that cannot be had is said, never fatal */
    libxlsnap_domain_sizes_init(&z);
    sized = !libxlsnap_domain_snapshot_sizes(ctx, argv[optind], s.name, &z) &&
        z.num_snapshots == 1;
    if (json) {
        char *r = libxlsnap_domain_snapshot_to_json(ctx, &s);
        char *t = sized ? libxlsnap_domain_sizes_to_json(ctx, &z) : NULL;
        char *end = r ? strrchr(r, '}') : NULL;

        /* the record, with "size": the sizes of it alone */
        if (end) *end = 0;
        if (r && end)
            printf("%s, \"size\": %s\n}\n", r, t ? t : "null");
        else
            printf("%s\n", r ? r : "null");
        free(r);
        free(t);
    } else {
        printf("%-13s %s\n", "Name:", s.name);
        printf("%-13s %s\n", "Domain:", s.domain_name ? s.domain_name : "-");
        printf("%-13s %s\n", "Created:",
               xl_fmt_time(s.creation_time, tbuf, sizeof(tbuf)));
        printf("%-13s %s\n", "State:",
               libxlsnap_domain_state_to_string(s.state));
        printf("%-13s %s\n", "Parent:", s.parent ? s.parent : "-");
        printf("%-13s ", "Children:");
        for (i = 0; i < s.num_children; i++)
            printf("%s%s", i ? ", " : "", s.children[i]);
        printf("%s\n", s.num_children ? "" : "-");
        printf("%-13s %s\n", "Current:", s.current ? "yes" : "no");
        printf("%-13s %s\n", "Description:",
               s.description ? s.description : "-");
        if (s.memory)
            printf("%-13s %s (%s)\n", "Memory:", s.memory,
                   memory_summary(&s, tbuf, sizeof(tbuf)));
        else
            printf("%-13s %s\n", "Memory:", "- (disk-only)");
        if (s.quiesce)
            printf("%-13s %s\n", "Quiesce:", s.quiesce);
        printf("%-13s %d\n", "Disks:", s.num_disks);
        for (i = 0; i < s.num_disks; i++) {
            const libxlsnap_disk_snapshot *d = &s.disks[i];
            printf("  %-6s %-9s %-6s %s", d->vdev,
                   libxlsnap_disk_snapshot_type_to_string(d->type),
                   libxl_disk_format_to_string(d->format),
                   d->file ? d->file : "-");
            if (d->tag) printf(" (tag %s)", d->tag);
            if (d->overlay) printf(" (overlay %s)", d->overlay);
            if (d->problem) printf(" (INVALID: %s)", d->problem);
            printf("\n");
        }
        if (sized) {
            const libxlsnap_snapshot_size *zs = &z.snapshots[0];
            char a[32], b[32];

            printf("%-13s own %s, frees %s\n", "Size:",
                   xl_fmt_bytes(zs->own, a, sizeof(a)),
                   xl_fmt_bytes(zs->frees, b, sizeof(b)));
            if (s.memory)
                printf("  %-6s %-9s allocated %s%s%s%s\n", "-", "memory",
                       xl_fmt_bytes(zs->memory, a, sizeof(a)),
                       zs->memory_problem ? " (unknown: " : "",
                       zs->memory_problem ? zs->memory_problem : "",
                       zs->memory_problem ? ")" : "");
            for (i = 0; i < zs->num_disks; i++)
                print_disk_size("  ", &zs->disks[i]);
        } else {
            printf("%-13s %s\n", "Size:", "unknown");
        }
    }
    libxlsnap_domain_sizes_dispose(&z);
    libxlsnap_domain_snapshot_dispose(&s);
    return EXIT_SUCCESS;
}

int main_snapshot_current(int argc, char **argv)
{
    static const struct option opts[] = {
        COMMON_LONG_OPTS,
        {0, 0, 0, 0}
    };
    libxlsnap_domain_snapshot *l = NULL;
    int opt, rc, n = 0, i, ret = EXIT_FAILURE;

    SWITCH_FOREACH_OPT(opt, "", opts, "snapshot-current", 1) {
        /* no options */
    }
    rc = libxlsnap_domain_snapshot_list(ctx, argv[optind], &l, &n);
    if (rc) return xl_fail("snapshot-current", rc);
    for (i = 0; i < n; i++) {
        if (l[i].current) {
            printf("%s\n", l[i].name);
            ret = EXIT_SUCCESS;
        }
    }
    if (ret)
        fprintf(stderr, "domain %s has no current snapshot\n",
                argv[optind]);
    libxlsnap_domain_snapshot_list_free(l, n);
    return ret;
}

int main_snapshot_check(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", 0, 0, 'j'},
        COMMON_LONG_OPTS,
        {0, 0, 0, 0}
    };
    char **p = NULL;
    int opt, rc, n = 0, i;
    bool json = false;

    SWITCH_FOREACH_OPT(opt, "", opts, "snapshot-check", 1) {
    case 'j': json = true; break;
    }
    rc = libxlsnap_domain_snapshot_check(ctx, argv[optind], &p, &n, NULL);
    if (rc && !json) return xl_fail("snapshot-check", rc);
    if (json) {
        /* always a document: a check that could not run says why */
        printf("{\"domain\": ");
        xl_print_json_string(argv[optind]);
        printf(", \"problems\": [");
        for (i = 0; i < n; i++) {
            if (i) printf(", ");
            xl_print_json_string(p[i]);
        }
        printf("]");
        if (rc) {
            printf(", ");
            xl_print_json_error_members(rc);
        }
        printf("}\n");
        if (rc) {
            xl_fail("snapshot-check", rc);
            libxlsnap_strings_free(p, n);
            return EXIT_FAILURE;
        }
    } else {
        for (i = 0; i < n; i++) printf("%s: %s\n", argv[optind], p[i]);
        if (n)
            printf("%s: %d problem%s\n", argv[optind], n, n == 1 ? "" : "s");
        else
            printf("%s: the records and the images agree\n", argv[optind]);
    }
    libxlsnap_strings_free(p, n);
    return n ? EXIT_FAILURE : EXIT_SUCCESS;
}

/*
 * Each disk's backing chain and the limit snapshot-create keeps it to:
 * "xvda 3 /a/top.qcow2 ... /a/base.qcow2" a disk, or --json.
 */
int main_snapshot_chain(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", 0, 0, 'j'},
        COMMON_LONG_OPTS,
        {0, 0, 0, 0}
    };
    libxlsnap_disk_chain *l = NULL;
    long max = 0;
    int opt, rc, n = 0, i, j;
    bool json = false;

    SWITCH_FOREACH_OPT(opt, "", opts, "snapshot-chain", 1) {
    case 'j': json = true; break;
    }
    rc = libxlsnap_domain_disk_chains(ctx, argv[optind], &max, &l, &n);
    if (rc) return xl_fail_json("snapshot-chain", rc, json);
    if (json) {
        printf("{\"domain\": ");
        xl_print_json_string(argv[optind]);
        printf(", \"max_chain\": %ld, \"disks\": [", max);
        for (i = 0; i < n; i++) {
            printf("%s{\"vdev\": ", i ? ", " : "");
            xl_print_json_string(l[i].vdev);
            printf(", \"length\": %d, \"files\": [", l[i].num_files);
            for (j = 0; j < l[i].num_files; j++) {
                if (j) printf(", ");
                xl_print_json_string(l[i].files[j]);
            }
            printf("]}");
        }
        printf("]}\n");
    } else {
        printf("max_chain %ld (images, base included)\n", max);
        for (i = 0; i < n; i++) {
            printf("%s %d", l[i].vdev, l[i].num_files);
            for (j = 0; j < l[i].num_files; j++)
                printf(" %s", l[i].files[j]);
            printf("%s\n", l[i].num_files >= max
                   ? "  (full: the next external snapshot is refused)" : "");
        }
    }
    libxlsnap_disk_chain_list_free(l, n);
    return EXIT_SUCCESS;
}

int main_snapshot_recover(int argc, char **argv)
{
    static const struct option opts[] = {
        COMMON_LONG_OPTS,
        {0, 0, 0, 0}
    };
    bool recovered = false;
    int opt, rc;

    SWITCH_FOREACH_OPT(opt, "", opts, "snapshot-recover", 1) {
        /* no options */
    }
    rc = libxlsnap_domain_snapshot_recover(ctx, argv[optind], &recovered, NULL);
    if (rc) return xl_fail("snapshot-recover", rc);
    printf("%s: %s\n", argv[optind], recovered
           ? "an interrupted operation was recovered (see above)"
           : "nothing to recover");
    return EXIT_SUCCESS;
}

/* <Domain> <Name>, or <Domain> with -n NAME (the 2014 RFC's form). */
static int domain_and_name(int argc, char **argv, const char *cmd,
                           const char *name, const char **domain_r,
                           const char **name_r)
{
    int nargs = argc - optind;
    if (nargs == 2 && !name) {
        *domain_r = argv[optind];
        *name_r = argv[optind + 1];
        return 0;
    }
    if (nargs == 1 && name) {
        *domain_r = argv[optind];
        *name_r = name;
        return 0;
    }
    return usage_error(cmd, "needs a domain and a snapshot name (or "
                       "--name=NAME and a domain).");
}

int main_snapshot_delete(int argc, char **argv)
{
    static const struct option opts[] = {
        {"metadata", 0, 0, 'M'},
        {"children", 0, 0, 'c'},
        {"children-only", 0, 0, 'C'},
        {"name", 1, 0, 'n'},
        {"verbose", 0, 0, 'v'},
        COMMON_LONG_OPTS,
        {0, 0, 0, 0}
    };
    const char *domain, *name = NULL;
    libxlsnap_progress_how progress;
    libxl_asyncop_how how;
    xl_job_wait w;
    unsigned flags = 0;
    int opt, rc;

    memset(&w, 0, sizeof(w));
    SWITCH_FOREACH_OPT(opt, "n:v", opts, "snapshot-delete", 0) {
    case 'M': flags |= LIBXLSNAP_DELETE_METADATA_ONLY; break;
    case 'c': flags |= LIBXLSNAP_DELETE_CHILDREN; break;
    case 'C': flags |= LIBXLSNAP_DELETE_CHILDREN_ONLY; break;
    case 'n': name = optarg; break;
    case 'v': w.verbose = true; break;
    }
    if (domain_and_name(argc, argv, "snapshot-delete", name, &domain,
                        &name))
        return EXIT_USAGE;
    if (xl_options_exclude("snapshot-delete",
                           flags & LIBXLSNAP_DELETE_CHILDREN,
                           "--children",
                           flags & LIBXLSNAP_DELETE_CHILDREN_ONLY,
                           "--children-only"))
        return EXIT_FAILURE;
    /* its block jobs' progress; Ctrl-C aborts them, records intact */
    xl_job_setup(&w, "Snapshot delete", &progress, &how);
    xl_exit_on_interrupt("snapshot-delete", domain, "the delete may be "
                         "part-done (recorded in the domain's journal)",
                         "finishes it");
    rc = libxlsnap_domain_snapshot_delete(ctx, domain, name, flags, &progress,
                                      &how);
    if (!rc) rc = xl_job_wait_for(&w, &how);
    xl_exit_on_interrupt(NULL, NULL, NULL, NULL);
    if (rc) return xl_fail("snapshot-delete", rc);
    if (flags & LIBXLSNAP_DELETE_CHILDREN_ONLY)
        printf("Domain snapshot %s children deleted\n", name);
    else
        printf("Domain snapshot %s deleted\n", name);
    if (w.bytes) xl_job_summary(&w, true);
    return EXIT_SUCCESS;
}

int main_snapshot_revert(int argc, char **argv)
{
    static const struct option opts[] = {
        {"running", 0, 0, 'r'},
        {"paused", 0, 0, 'p'},
        {"force", 0, 0, 'f'},
        {"name", 1, 0, 'n'},
        {"verbose", 0, 0, 'v'},
        COMMON_LONG_OPTS,
        {0, 0, 0, 0}
    };
    const char *domain, *name = NULL;
    op_progress mp = { .last_pct = UINT_MAX };
    libxlsnap_progress_how progress = { op_progress_cb, &mp };
    unsigned flags = 0;
    int opt, rc;

    SWITCH_FOREACH_OPT(opt, "fn:v", opts, "snapshot-revert", 0) {
    case 'r': flags |= LIBXLSNAP_REVERT_RUNNING; break;
    case 'p': flags |= LIBXLSNAP_REVERT_PAUSED; break;
    case 'f': flags |= LIBXLSNAP_REVERT_FORCE; break;
    case 'n': name = optarg; break;
    case 'v': mp.verbose = true; break;
    }
    if (domain_and_name(argc, argv, "snapshot-revert", name, &domain,
                        &name))
        return EXIT_USAGE;
    if (xl_options_exclude("snapshot-revert",
                           flags & LIBXLSNAP_REVERT_RUNNING, "--running",
                           flags & LIBXLSNAP_REVERT_PAUSED, "--paused"))
        return EXIT_FAILURE;
    op_progress_start(&mp, false);
    xl_exit_on_interrupt("snapshot-revert", domain, "the domain may be "
                         "left stopped, its revert part-done (recorded in "
                         "its journal)", "finishes it (or rolls it back if the "
                         "domain was not stopped yet)");
    rc = libxlsnap_domain_snapshot_revert(ctx, domain, name, flags, &progress,
                                      NULL);
    xl_exit_on_interrupt(NULL, NULL, NULL, NULL);
    op_progress_end(&mp, !rc, false);
    if (rc) return xl_fail("snapshot-revert", rc);
    printf("Domain %s reverted to snapshot %s\n", domain, name);
    op_progress_summary(&mp);
    return EXIT_SUCCESS;
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
