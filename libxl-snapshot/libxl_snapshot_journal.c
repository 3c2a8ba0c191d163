/*
 * libxl_snapshot_journal.c - intent records, and recovery after a crash
 *
 * An operation that changes images writes its intent first, in the
 * domain's record directory (journal.libxl-json, written atomically):
 * what it is, and everything it will create, as the record it is about
 * to write.  It removes the journal once its records are saved, or once
 * it has undone its work after a failure.  A journal still there means
 * the process died on the way (kill -9, a crash, a power cut).
 *
 * Every command on a domain, under the domain's lock and before
 * anything else, reconciles a journal it finds with reality, then rolls
 * the interrupted operation forward or back, and says which
 * (`xl snapshot-recover` does only that):
 *
 * Each operation's recovery is beside it, reading the journal it
 * writes: libxl__create_recover (libxl_snapshot_create.c),
 * libxl__revert_recover (_revert.c), libxl__delete_recover (_delete.c);
 * a block job's record, libxl__blockjob_recover (_commit.c).  This file
 * has the journal file itself and the dispatch (libxl__journal_recover).
 *
 *  snapshot create: forward when the snapshot happened, back otherwise.
 *   - Live, QEMU running: it happened if QEMU has a node for each new
 *     overlay (the transaction is atomic: all or none).
 *   - Otherwise (offline, or QEMU gone): it happened if every overlay
 *     exists on its image and every internal snapshot is in its image.
 *   Forward: the record is written as planned (without its memory when
 *   the memory image was not finished), the overlays become the active
 *   images.  Back: the overlays, internal snapshots and memory image it
 *   made are removed; nothing else was touched.
 *   - The memory image is finished if it exists under its own name: it
 *     is written as <image>.tmp (the journal's "memory_tmp"), fsync'ed,
 *     and only then renamed (libxl_snapshot_memory.c).  The proof is
 *     the rename, which needs no free space, not a second journal
 *     write, which a full file system refuses just when the record
 *     write is about to fail too: a finished image is never taken for
 *     a partial one (and removed), nor a partial one for a finished
 *     one.  A journal without "memory_tmp" (an older version) says
 *     "memory_done" instead, and is believed.
 *
 *  snapshot revert: the domain is stopped after the journal is written,
 *  and internal reverts cannot be undone, so:
 *   - records saved (the revert marks its journal so): only
 *     what came after is redone: discarded images removed, the domain
 *     started as planned;
 *   - not saved, the domain still running: it died before stopping it,
 *     nothing changed: the fresh overlays it may have made go (back);
 *   - not saved, the domain stopped: every disk is done again (a fresh
 *     overlay is made unless a good one is there; an internal revert is
 *     applied again, which is idempotent), the records saved, and the
 *     domain started as planned (forward).  A revert that *failed* once
 *     an internal revert had run leaves this case on purpose (its
 *     journal kept, the domain stopped): it is finished the same way.
 *
 *  snapshot create, QEMU gone: a live transaction that got no answer
 *  keeps its journal (it may have happened): the offline test above
 *  decides.  snapshot-recover of a shut-off domain then also repairs
 *  the clusters the killed QEMU leaked in its disks' active chains.
 *
 *  snapshot delete: it marks each disk done in the record before that
 *  disk's file goes, so the records are true at every step.  A QEMU job
 *  it left is cancelled; a merge into the snapshot's image that had
 *  finished is recorded (also when the records were saved only in
 *  part), one that had not drops the snapshot (its image may hold part
 *  of the newer data); a disk whose file or tag is gone is marked
 *  done; the snapshot stays listed with what is left, and the user is
 *  told to run the delete again, which finishes it.  snapshot-recover
 *  finishes it at once (a delete of that snapshot, after the lock is
 *  released).  Said once, when it is known: snapshot-recover says it
 *  was finished (or could not be), a delete that finishes it says
 *  nothing of it, any other command that it is left part-done.  The
 *  snapshots the interrupted command was to delete after it
 *  (--children: the journal's "then") are not: they are named as kept.
 *
 *  migrate (qemu driver): back to one QEMU, libxl__migrate_recover
 *  (libxl_snapshot_migrate.c).
 *
 *  snapshot-create --redefine of many (libxl_snapshot_xml.c,
 *  libxl__redefine_recover): forward when every record it names was
 *  written (its current set), back otherwise (those written removed).
 *
 *  checkpoint-create: back (its bitmaps undone) unless its record was
 *  written; checkpoint-delete: forward (done again).
 *  libxl__checkpoint_recover (libxl_snapshot_checkpoint.c).
 *
 * A journal no recovery can complete (not valid JSON, an operation this
 * version does not know, a create without a readable record, a revert
 * of a snapshot the domain does not have) is never guessed at: every
 * command refuses to go on, saying so and that `xl snapshot-recover`
 * moves it aside; snapshot-recover (set_aside_journal) renames it
 * journal.corrupt-<YYYYmmdd-HHMMSS>, says so, and fails, pointing at
 * `xl snapshot-check`, which reports what the operation may have left
 * half-done, and the moved journal until it is removed.
 *
 * libxlsnap_domain_snapshot_recover: only that (op_begin does the work),
 * reporting whether there was anything to recover, then the rest of an
 * interrupted delete.  On a shut-off domain it also repairs the
 * clusters a killed QEMU leaked in its disks' images (snapshot-check
 * reports them).
 *
 * Fault injection (tests only): libxl_snapshot_fault.c.
 */
#include "libxl_snapshot_internal.h"

#include <time.h>
#include <unistd.h>

#define JOURNAL_FILE "journal.libxl-json"

static char *journal_path(libxl__gc *gc, const libxl__snapshot_store *st)
{
    return libxl__snapshot_store_where(gc, st, JOURNAL_FILE);
}

bool libxl__journal_op_known(const char *op)
{
    return op && (!strcmp(op, "create") || !strcmp(op, "revert") ||
                  !strcmp(op, "delete") || !strcmp(op, "migrate") ||
                  !strcmp(op, "checkpoint-create") ||
                  !strcmp(op, "checkpoint-delete") ||
                  !strcmp(op, "redefine"));
}

/*
 * The journal cannot be completed (why: "is unreadable"...).  Other
 * commands refuse, pointing at snapshot-recover; snapshot-recover moves
 * it aside to journal.corrupt-<time> (never over another) and fails,
 * pointing at snapshot-check.  Always an error: nothing was recovered.
 */
int libxl__journal_unusable(libxl__gc *gc, libxl__snapshot_op *op,
                            const char *why)
{
    const char *path = journal_path(gc, &op->st), *aside;
    time_t now = time(NULL);
    struct tm tm;
    char stamp[32], *data;
    size_t len;
    int i, rc;

    if (!op->set_aside_journal) {
        LOG(ERROR, "domain %s: the journal %s %s, so the operation it "
            "records cannot be completed; xl snapshot-recover %s moves it "
            "aside", op->d.name, path, why, op->d.name);
        return ERROR_INVAL;
    }
    localtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
    aside = GCSPRINTF("journal.corrupt-%s", stamp);
    for (i = 2; libxl__snapshot_store_get(gc, &op->st, aside, NULL, NULL)
             != ERROR_NOTFOUND && i < 100; i++)
        aside = GCSPRINTF("journal.corrupt-%s.%d", stamp, i);
    rc = libxl__snapshot_store_get(gc, &op->st, JOURNAL_FILE, &data, &len);
    if (!rc) {
        /* (a store has no rename: the copy first, then the journal
         * goes; a crash between leaves both, and this runs again) */
        libxl__store_put p[2] = { { aside, data, len },
                                  { JOURNAL_FILE, NULL, 0 } };
        rc = libxl__snapshot_store_get(gc, &op->st, aside, NULL, NULL)
            != ERROR_NOTFOUND ? ERROR_FAIL
            : libxl__snapshot_store_put(gc, &op->st, p, 2, XTL_ERROR);
    }
    aside = libxl__snapshot_store_where(gc, &op->st, aside);
    if (rc) {
        LOG(ERROR, "domain %s: the journal %s %s, and cannot be moved "
            "aside to %s", op->d.name, path, why, aside);
        return ERROR_FAIL;
    }
    LOG(ERROR, "domain %s: the journal %s %s, so the operation it records "
        "cannot be completed: moved aside to %s; xl snapshot-check %s "
        "reports what it may have left half-done", op->d.name, path, why,
        aside, op->d.name);
    return ERROR_FAIL;
}

int libxl__journal_write(libxl__gc *gc, const libxl__snapshot_store *st,
                         const char *op, const libxlsnap_domain_snapshot *s,
                         bool live, const char *memory_tmp,
                         const char *extra_key, yajl_val extra)
{
    yajl_gen hand = yajl_gen_alloc(NULL);
    const unsigned char *buf;
    size_t len;
    int rc = ERROR_FAIL;

    if (!hand) abort();
    if (yajl_gen_map_open(hand) ||
        libxl__yajl_gen_str(hand, "op") || libxl__yajl_gen_str(hand, op) ||
        libxl__yajl_gen_str(hand, "live") || yajl_gen_bool(hand, live) ||
        libxl__yajl_gen_opt_str(hand, "memory_tmp", memory_tmp) ||
        libxl__yajl_gen_str(hand, "snapshot") ||
        libxl__domain_snapshot_gen_json(hand, s) ||
        yajl_gen_map_close(hand) ||
        yajl_gen_get_buf(hand, &buf, &len)) {
        LOG(ERROR, "cannot generate the journal");
        goto out;
    }
    if (extra_key) {
        /* one more member: through the tree, never spliced as text */
        yajl_val j = libxl__json_parse(gc, GCSPRINTF("%.*s", (int)len,
                                                     (const char *)buf));
        const char *text;
        if (!j) {
            LOG(ERROR, "cannot generate the journal");
            goto out;
        }
        libxl__json_add(gc, &j, extra_key, extra);
        text = libxl__json_to_string(gc, j);
        rc = libxl__journal_write_text(gc, st, text, strlen(text), false);
        goto out;
    }
    rc = libxl__journal_write_text(gc, st, (const char *)buf, len, false);
 out:
    yajl_gen_free(hand);
    return rc;
}

int libxl__journal_write_text(libxl__gc *gc, const libxl__snapshot_store *st,
                              const char *json, size_t len, bool optional)
{
    return libxl__snapshot_store_put1(gc, st, JOURNAL_FILE, json, len,
                                      optional ? XTL_INFO : XTL_ERROR);
}

int libxl__journal_remove(libxl__gc *gc, const libxl__snapshot_store *st)
{
    if (libxl__snapshot_store_put1(gc, st, JOURNAL_FILE, NULL, 0,
                                   XTL_DEBUG)) {
        LOG(WARN, "cannot remove the journal %s", journal_path(gc, st));
        return ERROR_FAIL;
    }
    return 0;
}

/* ---------------------------------------------------------------- */
/* shared by the recoveries (libxl__*_recover, beside their operations) */

bool libxl__op_runs_image(libxl__gc *gc,
                                  const libxl__snapshot_op *op,
                                  const char *path)
{
    return op->d.running &&
        libxl__qmp_has_file_node(gc, op->d.qmp_path, path);
}

void libxl__journal_say_unfinished(libxl__gc *gc,
                                   const libxl__snapshot_op *op)
{
    if (!op->unfinished_delete) return;
    LOG(WARN, "domain %s: an interrupted snapshot-delete of '%s' is left "
        "part-done (%s): its record lists what is left, and "
        "snapshot-recover (or the delete again) finishes it%s", op->d.name,
        op->unfinished_delete, op->unfinished_how, op->unfinished_rest);
}

yajl_val libxl__journal_get(libxl__gc *gc, const libxl__snapshot_store *st)
{
    char *data;

    if (libxl__snapshot_store_get(gc, st, JOURNAL_FILE, &data, NULL))
        return NULL;
    return libxl__json_parse(gc, data);
}

const char *libxl__journal_pending(libxl__gc *gc,
                                   const libxl__snapshot_store *st,
                                   const char **op_r)
{
    const char *path = journal_path(gc, st);
    char *data;
    yajl_val j;
    int rc;

    rc = libxl__snapshot_store_get(gc, st, JOURNAL_FILE, &data, NULL);
    if (rc == ERROR_NOTFOUND) return NULL;
    if (rc) data = "";
    j = libxl__json_parse(gc, data);
    *op_r = j ? libxl__json_get_string(j, "op") : NULL;
    return path;
}

int libxl__journal_refuse_pending(libxl__gc *gc,
                                  const libxl__snapshot_store *st,
                                  const char *name, const char *suffix)
{
    const char *jop = NULL;

    if (!libxl__journal_pending(gc, st, &jop)) return 0;
    LOG(ERROR, "domain %s has an interrupted snapshot %s to finish first: "
        "run xl snapshot-recover %s%s", name, jop ? jop : "operation", name,
        suffix ? suffix : "");
    return ERROR_INVAL;
}

static void journal_recovered(libxl__egc *egc, libxl__snapshot_op *op,
                              int rc);

void libxl__journal_recover(libxl__egc *egc, libxl__snapshot_op *op,
                            libxl__snapshot_op_callback *callback)
{
    STATE_AO_GC(op->ao);
    char *data;
    yajl_val j;
    const char *what;
    int rc;

    op->recovered_cb = callback;
    libxl__fault_domain(&op->d);      /* tests: whose QEMU to kill */
    op->recovered = false;
    rc = libxl__snapshot_store_get(gc, &op->st, JOURNAL_FILE, &data, NULL);
    if (rc == ERROR_NOTFOUND) {
        callback(egc, op, 0);
        return;
    }
    if (rc) goto out;
    op->recovered = true;
    rc = libxl__snapshot_op_load_all(gc, op);
    if (rc) goto out;
    j = libxl__json_parse(gc, data);
    what = j ? libxl__json_get_string(j, "op") : NULL;
    if (what && !strcmp(what, "create")) {
        rc = libxl__create_recover(gc, op, j);
    } else if (what && !strcmp(what, "revert")) {
        libxl__revert_recover(egc, op, j, journal_recovered);
        return;
    } else if (what && !strcmp(what, "delete")) {
        libxl__delete_recover(egc, op, j, journal_recovered);
        return;
    } else if (what && !strcmp(what, "migrate")) {
        rc = libxl__migrate_recover(gc, op, j);
    } else if (what && !strcmp(what, "redefine")) {
        rc = libxl__redefine_recover(gc, op, j);
    } else if (what && (!strcmp(what, "checkpoint-create") ||
                        !strcmp(what, "checkpoint-delete"))) {
        rc = libxl__checkpoint_recover(gc, op, j);
    } else if (what) {
        rc = libxl__journal_unusable(gc, op, GCSPRINTF("holds an operation "
                                     "this version does not know ('%s')",
                                     libxl__printable(gc, what)));
    } else {
        rc = libxl__journal_unusable(gc, op, "is unreadable (not a journal)");
    }
 out:
    journal_recovered(egc, op, rc);
}

static void journal_recovered(libxl__egc *egc, libxl__snapshot_op *op,
                              int rc)
{
    STATE_AO_GC(op->ao);

    if (rc) goto out;
    libxl__journal_remove(gc, &op->st);
    if (!op->finishes_delete) libxl__journal_say_unfinished(gc, op);
    /* the tree as it is now on disk */
    rc = libxl__snapshot_store_load(gc, &op->st, &op->tree);
 out:
    op->recovered_cb(egc, op, rc);
}

/* ---------------------------------------------------------------- */
/* xl snapshot-recover */

typedef struct {
    libxl__ao *ao;
    libxl__snapshot_op op;
    bool *recovered_r;
    const char *domain, *name, *how, *rest;   /* the delete it finishes */
    /* the leak repair of a shut-off domain */
    libxl__qemu_img_info_state qi;    /* each disk's chain */
    libxl__exec_state es;
    const char **files, **vdevs;      /* its qcow2 images */
    int num_files, next;
} recover_state;

static void recover_delete_done(libxl__egc *egc, void *for_callback,
                                int rc);
static void leaks_chains(libxl__egc *egc, libxl__qemu_img_info_state *qi,
                         int rc);
static void leaks_next(libxl__egc *egc, recover_state *rs);
static void leaks_checked(libxl__egc *egc, libxl__exec_state *es, int rc,
                          int status);
static void recover_finish(libxl__egc *egc, recover_state *rs, int rc);

/*
 * A shut-off domain: the clusters a killed QEMU leaked in the qcow2
 * images it had open (each disk's active chain), which snapshot-check
 * reports, are repaired (qemu-img check -r leaks: space only), on the
 * loop: one `qemu-img info --backing-chain` step for the chains, then
 * each check a child-process step that finishes even on an abort (as
 * the delete's leak repair: a repair is not cut short).
 */
static void repair_leaks(libxl__egc *egc, recover_state *rs)
{
    libxl__snapshot_op *op = &rs->op;
    STATE_AO_GC(rs->ao);
    const char **images;
    int i;

    GCNEW_ARRAY(images, op->d.num_disks ? op->d.num_disks : 1);
    for (i = 0; i < op->d.num_disks; i++) {
        const libxl_device_disk *dk = &op->d.disks[i];
        if (!dk->is_cdrom && dk->pdev_path && *dk->pdev_path &&
            libxl__image_is_file(dk->pdev_path))
            images[i] = dk->pdev_path;
    }
    rs->qi.ao = ao;
    rs->qi.images = images;
    rs->qi.num_images = op->d.num_disks;
    rs->qi.backing_chain = true;
    rs->qi.callback = leaks_chains;
    libxl__qemu_img_info(egc, &rs->qi);
}

static void leaks_chains(libxl__egc *egc, libxl__qemu_img_info_state *qi,
                         int rc)
{
    recover_state *rs = CONTAINER_OF(qi, recover_state, qi);
    libxl__snapshot_op *op = &rs->op;
    STATE_AO_GC(rs->ao);
    int i, n = 0;
    size_t j;

    if (rc == ERROR_ABORTED) goto out;
    rc = 0;                           /* (a repair where it can) */
    for (i = 0; i < qi->num_images; i++)
        if (qi->infos && qi->infos[i] && YAJL_IS_ARRAY(qi->infos[i]))
            n += qi->infos[i]->u.array.len;
    GCNEW_ARRAY(rs->files, n ? n : 1);
    GCNEW_ARRAY(rs->vdevs, n ? n : 1);
    for (i = 0; i < qi->num_images; i++) {
        yajl_val chain = qi->infos ? qi->infos[i] : NULL;
        for (j = 0; chain && YAJL_IS_ARRAY(chain) &&
                    j < chain->u.array.len; j++) {
            yajl_val v = chain->u.array.values[j];
            const char *fmt = libxl__json_get_string(v, "format");
            const char *f = libxl__json_get_string(v, "filename");
            if (!f || !fmt || strcmp(fmt, "qcow2")) continue;
            rs->vdevs[rs->num_files] = op->d.disks[i].vdev;
            rs->files[rs->num_files++] = f;
        }
    }
    rs->next = 0;
    leaks_next(egc, rs);
    return;
 out:
    recover_finish(egc, rs, rc);
}

static void leaks_next(libxl__egc *egc, recover_state *rs)
{
    STATE_AO_GC(rs->ao);

    if (rs->next == rs->num_files) {
        recover_finish(egc, rs, 0);
        return;
    }
    libxl__exec_init(&rs->es);
    rs->es.ao = ao;
    rs->es.what = NULL;               /* the tool names the run */
    rs->es.args = libxl__qemu_img_check_args(gc, rs->files[rs->next], true);
    rs->es.timeout_ms = 600000;
    rs->es.unabortable = true;
    rs->es.quiet = true;
    rs->es.callback = leaks_checked;
    if (libxl__exec_start(egc, &rs->es))
        leaks_checked(egc, &rs->es, ERROR_FAIL, 0);
}

static void leaks_checked(libxl__egc *egc, libxl__exec_state *es, int rc,
                          int status)
{
    recover_state *rs = CONTAINER_OF(es, recover_state, es);
    STATE_AO_GC(rs->ao);
    yajl_val res = es->out ? libxl__json_parse(gc, es->out) : NULL;
    long long fixed = res ? libxl__json_get_integer(res, "leaks-fixed", 0)
                          : 0;

    if (fixed)
        LOG(WARN, "domain %s: disk %s: %lld leaked cluster(s) of '%s' "
            "repaired", rs->op.d.name, rs->vdevs[rs->next], fixed,
            rs->files[rs->next]);
    rs->next++;
    leaks_next(egc, rs);
}

static void recover_begun(libxl__egc *egc, libxl__snapshot_op *op, int rc)
{
    recover_state *rs = CONTAINER_OF(op, recover_state, op);

    /* op_begin did the work, under the lock */
    if (!rc && rs->recovered_r) *rs->recovered_r = op->recovered;
    if (!rc && !op->d.running) {
        repair_leaks(egc, rs);
        return;
    }
    recover_finish(egc, rs, rc);
}

static void recover_finish(libxl__egc *egc, recover_state *rs, int rc)
{
    libxl__snapshot_op *op = &rs->op;
    STATE_AO_GC(rs->ao);
    const char *name = op->unfinished_delete;

    libxl__snapshot_op_end(gc, op);
    if (!rc && name) {
        /* a delete recovery leaves the records true: finish it now */
        rs->domain = op->d.name;
        rs->name = name;
        rs->how = op->unfinished_how;
        rs->rest = op->unfinished_rest;
        libxl__snapshot_delete_start(egc, ao, op->domain, name, 0, NULL,
                                     recover_delete_done, rs);
        return;
    }
    libxl__ao_complete(egc, ao, rc);
}

static void recover_delete_done(libxl__egc *egc, void *for_callback,
                                int rc)
{
    recover_state *rs = for_callback;
    STATE_AO_GC(rs->ao);

    if (rc == ERROR_NOTFOUND) rc = 0;  /* someone else finished it */
    if (rc)
        LOG(ERROR, "domain %s: an interrupted snapshot-delete of '%s' (%s) "
            "could not be finished; its record lists what is left%s",
            rs->domain, rs->name, rs->how, rs->rest);
    else
        LOG(WARN, "domain %s: an interrupted snapshot-delete of '%s' was "
            "finished (%s)%s", rs->domain, rs->name, rs->how, rs->rest);
    libxl__ao_complete(egc, rs->ao, rc);
}

int libxlsnap_domain_snapshot_recover(libxlsnap_ctx *ctx,
                                  const char *domain, bool *recovered_r,
                                  const libxl_asyncop_how *ao_how)
{
    if (ARGS_MISSING(ctx, domain)) return ERROR_INVAL;
    AO_CREATE(ctx, ao_how);
    EGC_INIT(ctx);
    recover_state *rs;

    if (recovered_r) *recovered_r = false;
    GCNEW(rs);
    rs->ao = ao;
    rs->recovered_r = recovered_r;
    rs->op.ao = ao;
    rs->op.domain = GCSTRDUP(domain);
    rs->op.callback = recover_begun;
    rs->op.set_aside_journal = true;
    rs->op.finishes_delete = true;    /* recover_begun: said once done */
    libxl__snapshot_op_begin(egc, &rs->op);
    EGC_FREE;
    return AO_INPROGRESS;
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
