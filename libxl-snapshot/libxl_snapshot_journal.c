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
 * A journal no recovery can complete (not valid JSON, an operation this
 * version does not know, a create without a readable record, a revert
 * of a snapshot the domain does not have) is never guessed at: every
 * command refuses to go on, saying so and that `xl snapshot-recover`
 * moves it aside; snapshot-recover (set_aside_journal) renames it
 * journal.corrupt-<YYYYmmdd-HHMMSS>, says so, and fails, pointing at
 * `xl snapshot-check`, which reports what the operation may have left
 * half-done, and the moved journal until it is removed.
 *
 * libxl_domain_snapshot_recover: only that (op_begin does the work),
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
    return GCSPRINTF("%s/" JOURNAL_FILE, st->dir);
}

bool libxl__journal_op_known(const char *op)
{
    return op && (!strcmp(op, "create") || !strcmp(op, "revert") ||
                  !strcmp(op, "delete"));
}

/*
 * The journal cannot be completed (why: "is unreadable"...).  Other
 * commands refuse, pointing at snapshot-recover; snapshot-recover moves
 * it aside to journal.corrupt-<time> (never over another) and fails,
 * pointing at snapshot-check.  Always an error: nothing was recovered.
 */
static int journal_unusable(libxl__gc *gc, libxl__snapshot_op *op,
                            const char *why)
{
    const char *path = journal_path(gc, &op->st), *aside;
    time_t now = time(NULL);
    struct tm tm;
    char stamp[32];
    int i;

    if (!op->set_aside_journal) {
        LOG(ERROR, "domain %s: the journal %s %s, so the operation it "
            "records cannot be completed; xl snapshot-recover %s moves it "
            "aside", op->d.name, path, why, op->d.name);
        return ERROR_INVAL;
    }
    localtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
    aside = GCSPRINTF("%s/journal.corrupt-%s", op->st.dir, stamp);
    for (i = 2; libxl__file_exists(aside) && i < 100; i++)
        aside = GCSPRINTF("%s/journal.corrupt-%s.%d", op->st.dir, stamp, i);
    if (libxl__file_exists(aside) || rename(path, aside)) {
        LOGE(ERROR, "domain %s: the journal %s %s, and cannot be moved "
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
                         const char *op, const libxl_domain_snapshot *s,
                         bool live, const char *memory_tmp)
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
    rc = libxl__journal_write_text(gc, st, (const char *)buf, len, false);
 out:
    yajl_gen_free(hand);
    return rc;
}

int libxl__journal_write_text(libxl__gc *gc, const libxl__snapshot_store *st,
                              const char *json, size_t len, bool optional)
{
    return libxl__write_file_atomic_lvl(gc, journal_path(gc, st), json, len,
                                        optional ? XTL_INFO : XTL_ERROR);
}

int libxl__journal_remove(libxl__gc *gc, const libxl__snapshot_store *st)
{
    if (unlink(journal_path(gc, st)) && errno != ENOENT) {
        LOGE(WARN, "cannot remove the journal %s", journal_path(gc, st));
        return ERROR_FAIL;
    }
    return 0;
}

/* ---------------------------------------------------------------- */
/* recovery: snapshot create */

/* Is overlay a qcow2 image on base? */
static bool overlay_on(libxl__gc *gc, const char *overlay, const char *base)
{
    yajl_val v = libxl__file_exists(overlay)
        ? libxl__qemu_img_info_sync(gc, overlay, false, NULL) : NULL;
    const char *b = v ? libxl__json_get_string(v, "full-backing-filename")
                      : NULL;

    if (!b && v) b = libxl__json_get_string(v, "backing-filename");
    return b && !strcmp(b, base);
}

static bool has_tag(libxl__gc *gc, const char *file, const char *tag)
{
    yajl_val v = libxl__qemu_img_info_sync(gc, file, false, NULL);
    const char *id;

    return v && libxl__qemu_img_find_tag(v, tag, &id) > 0;
}

/* Did the snapshot happen?  See the design comment. */
static bool create_happened(libxl__gc *gc, libxl__snapshot_op *op,
                            const libxl_domain_snapshot *s, bool live)
{
    yajl_val nodes = NULL;
    bool ext = false, all = true;
    int i;

    for (i = 0; i < s->num_disks; i++)
        ext |= s->disks[i].type == LIBXL_DISK_SNAPSHOT_TYPE_EXTERNAL;
    if (live && ext && op->d.running &&
        !libxl__qmp_run_sync(gc, op->d.qmp_path, "query-named-block-nodes",
                             libxl__qmp_args_flat(gc), 10000, true, &nodes) &&
        nodes && YAJL_IS_ARRAY(nodes)) {
        /* one transaction: the internal snapshots went with these */
        for (i = 0; i < s->num_disks; i++) {
            const libxl_disk_snapshot *ds = &s->disks[i];
            if (ds->type == LIBXL_DISK_SNAPSHOT_TYPE_EXTERNAL &&
                !libxl__qmp_node_for_file(nodes, ds->overlay,
                                          LIBXL_DISK_FORMAT_QCOW2))
                all = false;
        }
        return all;
    }
    for (i = 0; i < s->num_disks; i++) {
        const libxl_disk_snapshot *ds = &s->disks[i];
        if (ds->type == LIBXL_DISK_SNAPSHOT_TYPE_EXTERNAL &&
            !overlay_on(gc, ds->overlay, ds->file))
            return false;
        if (ds->type == LIBXL_DISK_SNAPSHOT_TYPE_INTERNAL &&
            !has_tag(gc, ds->file, ds->tag))
            return false;
        if (ds->type == LIBXL_DISK_SNAPSHOT_TYPE_LVM &&
            !libxl__lvm_snapshot_exists(gc, ds))
            return false;
    }
    return true;
}

/*
 * A memory save that died half-way may leave the guest stopped: QEMU
 * waiting at pre-switchover or done (postmigrate), or stopped by us
 * (stop-the-world); a Xen domain suspended.  Put it back running, as
 * the snapshot found it.
 */
static void unstick_memory_save(libxl__gc *gc, libxl__snapshot_op *op,
                                const libxl_domain_snapshot *s)
{
    yajl_val v = NULL;
    const char *st;
    int i;

    if (!op->d.running) return;
    if (CTX->driver->suspend) {
        /* not logged by the driver: it may never have been suspended */
        CTX->driver->resume(gc, &op->d);
        return;
    }
    for (i = 0; i < 50; i++) {
        if (libxl__qmp_run_sync(gc, op->d.qmp_path, "query-migrate", NULL,
                                5000, true, &v))
            return;
        st = v ? libxl__json_get_string(v, "status") : NULL;
        if (!st || !strcmp(st, "completed") || !strcmp(st, "failed") ||
            !strcmp(st, "cancelled"))
            break;
        if (i == 0)
            libxl__qmp_run_sync(gc, op->d.qmp_path, "migrate_cancel", NULL,
                                5000, true, NULL);
        usleep(100000);
    }
    if (s->state == LIBXL_SNAPSHOT_DOMAIN_STATE_RUNNING &&
        !libxl__qmp_run_sync(gc, op->d.qmp_path, "query-status", NULL, 5000,
                             true, &v) &&
        v && !libxl__json_get_bool(v, "running", true)) {
        if (libxl__qmp_run_sync(gc, op->d.qmp_path, "cont", NULL, 5000,
                                true, NULL))
            /* the recovery itself goes on: the user is to act */
            LOG(WARN, "domain %s: it stays paused after the interrupted "
                "checkpoint (xl unpause)", op->d.name);
        else
            LOG(WARN, "domain %s: resumed after the interrupted checkpoint",
                op->d.name);
    }
}

static int recover_create(libxl__gc *gc, libxl__snapshot_op *op,
                          yajl_val j)
{
    libxl_domain_snapshot s;
    bool live = libxl__json_get_bool(j, "live", false);
    const char *memory_tmp = libxl__json_get_string(j, "memory_tmp");
    bool memory_done;
    libxl__snapshot_tree *t = &op->tree;
    int i, rc;

    rc = libxl__domain_snapshot_parse_json(gc, libxl__json_get(j,
                                                              "snapshot"),
                                           &s);
    if (rc || !s.name)
        return journal_unusable(gc, op, "holds no readable snapshot "
                                "record");
    /* the image is renamed to its name once complete (see the design
     * comment); a journal of an older version said so itself */
    memory_done = memory_tmp ? s.memory && libxl__file_exists(s.memory)
                             : libxl__json_get_bool(j, "memory_done", false);
    if (s.memory) unstick_memory_save(gc, op, &s);
    for (i = 0; op->d.running && i < s.num_disks; i++)
        if (s.disks[i].type == LIBXL_DISK_SNAPSHOT_TYPE_LVM &&
            s.state == LIBXL_SNAPSHOT_DOMAIN_STATE_RUNNING) {
            /* paused for the lvcreates: it runs again */
            CTX->driver->unpause(gc, &op->d);
            break;
        }
    if (libxl__snapshot_tree_find(t, s.name) || create_happened(gc, op, &s,
                                                                live)) {
        /* forward: what the snapshot made is in use; record it */
        if (memory_tmp && unlink(memory_tmp) && errno != ENOENT)
            LOGE(WARN, "cannot remove the partial memory image '%s'",
                 memory_tmp);
        if (s.memory && !memory_done) {
            if (!memory_tmp) unlink(s.memory);
            s.memory = NULL;
        }
        if (!libxl__snapshot_tree_find(t, s.name)) {
            s.current = true;
            libxl__snapshot_tree_add(gc, t, &s);
        }
        t->dom.current = s.name;
        for (i = 0; i < s.num_disks; i++) {
            const libxl_disk_snapshot *ds = &s.disks[i];
            if (ds->type != LIBXL_DISK_SNAPSHOT_TYPE_EXTERNAL) continue;
            libxl__domain_record_set_disk(gc, &t->dom, ds->vdev,
                                          ds->overlay,
                                          libxl__overlay_format(ds->format,
                                                                live));
            if (op->d.running && CTX->driver->set_active_disk) {
                rc = CTX->driver->set_active_disk(gc, &op->d, ds->vdev,
                                                  ds->overlay,
                                                  LIBXL_DISK_FORMAT_QCOW2);
                if (rc) return rc;      /* the journal stays: again */
            }
        }
        libxl__snapshot_tree_fixup(gc, t);
        rc = libxl__snapshot_store_save(gc, &op->st, t);
        if (rc) return rc;
        LOG(WARN, "domain %s: an interrupted snapshot-create of '%s' was "
            "completed (its disks had been taken)%s", op->d.name, s.name,
            s.memory ? ", with its memory image"
            : !libxl__json_get(libxl__json_get(j, "snapshot"), "memory")
            ? "" : "; its memory image was not finished: disk-only");
        return 0;
    }
    /* back: nothing it made is in use; remove it */
    for (i = 0; i < s.num_disks; i++) {
        const libxl_disk_snapshot *ds = &s.disks[i];
        if (ds->type == LIBXL_DISK_SNAPSHOT_TYPE_EXTERNAL && ds->overlay &&
            !libxl__snapshot_tree_uses_file(t, ds->overlay) &&
            unlink(ds->overlay) && errno != ENOENT)
            LOGE(WARN, "cannot remove '%s'", ds->overlay);
        if (ds->type == LIBXL_DISK_SNAPSHOT_TYPE_LVM &&
            libxl__lvm_snapshot_exists(gc, ds) &&
            libxl__lvm_snapshot_remove_sync(gc, ds))
            LOG(WARN, "cannot remove snapshot volume '%s'", ds->tag);
        if (ds->type == LIBXL_DISK_SNAPSHOT_TYPE_INTERNAL && ds->tag &&
            has_tag(gc, ds->file, ds->tag)) {
            char *err = NULL;
            if (libxl__exec_sync(gc, libxl__qemu_img_snapshot_args(gc, 'd',
                                     ds->tag, ds->file), 60000, NULL, &err))
                LOG(WARN, "cannot remove internal snapshot '%s' from '%s'",
                    ds->tag, ds->file);
        }
    }
    if (s.memory) unlink(s.memory);
    if (memory_tmp) unlink(memory_tmp);
    LOG(WARN, "domain %s: an interrupted snapshot-create of '%s' was "
        "rolled back (its disks had not all been taken)", op->d.name,
        s.name);
    return 0;
}

/* ---------------------------------------------------------------- */
/* recovery: snapshot revert */

/* Starts the domain as the revert meant to (journal "start"...). */
static int revert_start(libxl__gc *gc, libxl__snapshot_op *op, yajl_val j)
{
    uint32_t domid;

    if (!libxl__json_get_bool(j, "start", false) || op->d.running)
        return 0;
    if (!op->cfg.file) {
        LOG(ERROR, "domain %s: no config to start it from", op->d.name);
        return ERROR_FAIL;
    }
    return libxl__domain_start(gc, &op->cfg, &op->tree.dom,
                               libxl__json_get_bool(j, "paused", false),
                               libxl__json_get_string(j, "restore"), NULL,
                               &domid);
}

static bool running_image(libxl__gc *gc, libxl__snapshot_op *op,
                          const char *path);

/* Is path an active image the domain record names? */
static bool active_image(const libxl__snapshot_tree *t, const char *path)
{
    int i;
    for (i = 0; i < t->dom.num_disks; i++)
        if (t->dom.disks[i].path && !strcmp(t->dom.disks[i].path, path))
            return true;
    return false;
}

/* The revert journal j again, with "saved" true. */
static int mark_saved(libxl__gc *gc, libxl__snapshot_op *op, yajl_val j)
{
    const char *text;
    size_t i;

    for (i = 0; i < j->u.object.len; i++)
        if (!strcmp(j->u.object.keys[i], "saved"))
            j->u.object.values[i]->type = yajl_t_true;
    text = libxl__json_to_string(gc, j);
    if (!text) return ERROR_FAIL;
    return libxl__journal_write_text(gc, &op->st, text, strlen(text), true);
}

static int recover_revert(libxl__gc *gc, libxl__snapshot_op *op, yajl_val j)
{
    libxl__snapshot_tree *t = &op->tree;
    const char *name = libxl__json_get_string(j, "snapshot");
    yajl_val disks = libxl__json_get(j, "disks");
    yajl_val discard = libxl__json_get(j, "discard");
    bool saved;
    size_t i;
    int rc;

    if (!name || !disks || !YAJL_IS_ARRAY(disks))
        return journal_unusable(gc, op, "holds no readable revert plan");
    if (!libxl__snapshot_tree_find(t, name))
        return journal_unusable(gc, op, GCSPRINTF("names snapshot '%s', "
                                "which the domain does not have",
                                libxl__printable(gc, name)));
    /* the revert says so once its records are saved (then only what
     * comes after is left); a disk may keep its image (internal, LVM),
     * so the records cannot tell by themselves */
    saved = libxl__json_get_bool(j, "saved", false);
    /* records that name a disk's new image were saved, whatever the
     * journal says (a recovery killed before it could say so) */
    for (i = 0; !saved && i < disks->u.array.len; i++) {
        yajl_val d = disks->u.array.values[i];
        const char *na = libxl__json_get_string(d, "new_active");
        const char *file = libxl__json_get_string(d, "file");
        /* (an LVM or in-place internal disk keeps its image: no sign) */
        saved = na && file && strcmp(na, file) && active_image(t, na) &&
            !libxl__json_get_string(d, "lvm") &&
            !libxl__json_get_bool(d, "internal", false);
    }
    if (!saved && op->d.running) {
        /* it died before stopping the domain: nothing was changed */
        for (i = 0; i < disks->u.array.len; i++) {
            yajl_val d = disks->u.array.values[i];
            const char *na = libxl__json_get_string(d, "new_active");
            /* (an image the records or QEMU run on is not the revert's
             * to take back, whatever its journal says) */
            if (libxl__json_get_bool(d, "internal", false) || !na ||
                libxl__snapshot_tree_uses_file(t, na) ||
                active_image(t, na) || running_image(gc, op, na))
                continue;
            unlink(na);
        }
        LOG(WARN, "domain %s: an interrupted snapshot-revert to '%s' was "
            "rolled back (the domain had not been stopped yet)", op->d.name,
            name);
        return 0;
    }
    if (!saved) {
        /* stopped, disks maybe half done: do them all again, then record */
        for (i = 0; i < disks->u.array.len; i++) {
            yajl_val d = disks->u.array.values[i];
            const char *vdev = libxl__json_get_string(d, "vdev");
            const char *file = libxl__json_get_string(d, "file");
            const char *na = libxl__json_get_string(d, "new_active");
            libxl_disk_format fmt =
                libxl__json_get_integer(d, "format", LIBXL_DISK_FORMAT_RAW);
            char *err = NULL;

            if (!vdev || !file || !na) return ERROR_INVAL;
            if (libxl__json_get_string(d, "lvm")) {
                rc = libxl__lvm_revert_redo(gc, file,
                         libxl__json_get_string(d, "lvm"),
                         libxl__json_get_integer(d, "lvm_size", 0));
            } else if (libxl__json_get_bool(d, "copy", false)) {
                /* a copy may have been cut short: made again */
                const char *id = libxl__json_get_string(d, "tag_id");
                unlink(na);
                rc = id ? libxl__exec_sync(gc,
                         libxl__qemu_img_copy_snapshot_args(gc, file, id,
                             libxl__json_get_string(d, "copy_base"),
                             libxl__json_get_integer(d, "copy_base_format",
                                                     LIBXL_DISK_FORMAT_RAW),
                             na),
                         3600000, NULL, &err) : ERROR_INVAL;
            } else if (libxl__json_get_bool(d, "internal", false)) {
                const char *id = libxl__json_get_string(d, "tag_id");
                rc = id ? libxl__exec_sync(gc,
                         libxl__qemu_img_snapshot_args(gc, 'a', id, file),
                         300000, NULL, &err) : ERROR_INVAL;
            } else {
                rc = 0;
                if (!overlay_on(gc, na, file)) {
                    unlink(na);
                    rc = libxl__exec_sync(gc,
                             libxl__qemu_img_overlay_args(gc, file, fmt, na),
                             300000, NULL, &err);
                }
            }
            if (rc) {
                LOG(ERROR, "domain %s: cannot finish the interrupted revert "
                    "of disk %s: %s", op->d.name, vdev, err ? err : "");
                return rc;
            }
            libxl__domain_record_set_disk(gc, &t->dom, vdev, na,
                libxl__json_get_bool(d, "internal", false) ||
                libxl__json_get_string(d, "lvm")
                ? fmt : libxl__overlay_format(fmt, false));
        }
        t->dom.current = GCSTRDUP(name);
        libxl__snapshot_tree_fixup(gc, t);
        rc = libxl__snapshot_store_save(gc, &op->st, t);
        if (rc) return rc;
        /* as the revert does: the journal says the records are saved
         * before the domain starts, so that a recovery killed after the
         * start is not taken, by the next one, for a revert that never
         * stopped the domain (which would take back the image it runs
         * on); a journal that cannot say so goes */
        if (mark_saved(gc, op, j)) libxl__journal_remove(gc, &op->st);
    }
    /* chosen by the revert itself: images nothing will refer to */
    for (i = 0; discard && YAJL_IS_ARRAY(discard) &&
                i < discard->u.array.len; i++) {
        const char *f = YAJL_GET_STRING(discard->u.array.values[i]);
        if (f && unlink(f) && errno != ENOENT)
            LOGE(WARN, "cannot remove discarded image '%s'", f);
    }
    rc = revert_start(gc, op, j);
    LOG(WARN, "domain %s: an interrupted snapshot-revert to '%s' was "
        "completed%s", op->d.name, name, rc ? ", but the domain could not "
        "be started" : "");
    return rc;
}

/* ---------------------------------------------------------------- */
/* recovery: snapshot delete */

/*
 * Jobs of a dead delete (ids libxl-delete-*) left in QEMU: cancelled
 * (a commit stopped at READY keeps its top active, which the records
 * still name; its base is the snapshot's own image), then dismissed.
 */
static void cancel_delete_jobs(libxl__gc *gc, libxl__snapshot_op *op)
{
    yajl_val jobs = NULL;
    int tries;
    size_t i;
    bool left = true;

    if (!op->d.running) return;
    for (tries = 0; left && tries < 100; tries++) {
        left = false;
        if (libxl__qmp_run_sync(gc, op->d.qmp_path, "query-jobs", NULL,
                                5000, true, &jobs) || !jobs ||
            !YAJL_IS_ARRAY(jobs))
            return;
        for (i = 0; i < jobs->u.array.len; i++) {
            yajl_val jb = jobs->u.array.values[i];
            const char *id = libxl__json_get_string(jb, "id");
            const char *st = libxl__json_get_string(jb, "status");
            yajl_val args = NULL;
            if (!id || strncmp(id, "libxl-delete-", 13) || !st) continue;
            libxl__json_add_string(gc, &args, "id", id);
            left = true;
            if (!strcmp(st, "concluded"))
                libxl__qmp_run_sync(gc, op->d.qmp_path, "job-dismiss", args,
                                    5000, true, NULL);
            else if (tries == 0 || !strcmp(st, "ready"))
                libxl__qmp_run_sync(gc, op->d.qmp_path, "job-cancel", args,
                                    5000, true, NULL);
        }
        if (left) usleep(50000);
    }
}

/* Does the running QEMU have a node on path? */
static bool running_image(libxl__gc *gc, libxl__snapshot_op *op,
                          const char *path)
{
    return op->d.running &&
        libxl__qmp_has_file_node(gc, op->d.qmp_path, path);
}

static bool config_image(const libxl__snapshot_op *op, const char *path)
{
    int i;
    for (i = 0; i < op->cfg.num_disks; i++)
        if (op->cfg.disks[i].pdev_path &&
            !strcmp(op->cfg.disks[i].pdev_path, path))
            return true;
    return false;
}

/*
 * The commit of C (top) into the snapshot's image F (base) that the
 * delete had under way (the journal's "commit"), if it had finished:
 *  - live, QEMU finished it after the process died: an active commit
 *    pivoted (a BlockBackend of QEMU runs on F), an intermediate one
 *    rewired the image above C onto F (a node other than C's now has F
 *    as its backing);
 *  - offline, qemu-img had, and the process died re-parenting the
 *    images built on C: one of them already backs onto F.
 * Then it is done as the delete would have: the other images built on
 * C are rebased onto F (metadata only), the records and the active
 * image move from C to F (F holds what C held), the snapshot's own disk
 * is done, and C goes.  A commit that had not finished was cancelled
 * (cancel_delete_jobs; offline, qemu-img died with its process): F may
 * hold part of C, and C and the images on it are as they were; the
 * snapshots whose data was F's lost it there, so their records go (as
 * after a stopped commit: libxl__commit_stopped_records), said, and
 * never listed with F's new data.
 * ERROR_* when the records could not be saved (the journal stays).
 */
static int committed_records(libxl__gc *gc, libxl__snapshot_op *op,
                             libxl_domain_snapshot *s, yajl_val commit)
{
    libxl__snapshot_tree *t = &op->tree;
    const char *vdev = libxl__json_get_string(commit, "vdev");
    const char *c = libxl__json_get_string(commit, "top");
    const char *f = libxl__json_get_string(commit, "base");
    yajl_val kids = libxl__json_get(commit, "children");
    yajl_val nodes = NULL;
    libxl_disk_snapshot *ds = NULL;
    libxl__active_disk *ad;
    bool pivot, done = false, rebased = true;
    const char *dropped = NULL;
    size_t i;
    int k, rc;

    if (!vdev || !c || !f) return 0;
    for (k = 0; k < s->num_disks; k++)
        if (!strcmp(s->disks[k].vdev, vdev) && s->disks[k].file &&
            !strcmp(s->disks[k].file, f))
            ds = &s->disks[k];
    ad = libxl__domain_record_disk(&t->dom, vdev);
    if (!ds || ds->type != LIBXL_DISK_SNAPSHOT_TYPE_EXTERNAL || !ad ||
        !ad->path)
        return 0;
    pivot = op->d.running && !strcmp(ad->path, c);
    if (!op->d.running) {
        for (i = 0; kids && YAJL_IS_ARRAY(kids) && i < kids->u.array.len;
             i++) {
            const char *kid = YAJL_GET_STRING(kids->u.array.values[i]);
            if (kid && overlay_on(gc, kid, f)) done = true;
        }
    } else if (libxl__qmp_run_sync(gc, op->d.qmp_path,
                                   "query-named-block-nodes",
                                   libxl__qmp_args_flat(gc), 10000, true, &nodes) ||
               !nodes || !YAJL_IS_ARRAY(nodes)) {
        /* cannot tell: the journal stays for the next command */
        LOG(ERROR, "domain %s: disk %s: QEMU does not say whether it had "
            "finished merging '%s' into '%s'; the journal is kept",
            op->d.name, vdev, c, f);
        return ERROR_FAIL;
    } else if (pivot) {
        done = libxl__qmp_runs_on(gc, op->d.qmp_path, f);
    } else {
        for (i = 0; i < nodes->u.array.len; i++) {
            yajl_val n = nodes->u.array.values[i];
            const char *nf = libxl__json_get_string(n, "file");
            const char *nb = libxl__json_get_string(n, "backing_file");
            if (nf && nb && !strcmp(nb, f) && strcmp(nf, c) &&
                strcmp(nf, f))
                done = true;
        }
    }
    if (!done) {
        rc = libxl__commit_stopped_records(gc, op, vdev, c, f, &dropped);
        if (rc) return rc;
        if (dropped)
            LOG(WARN, "domain %s: disk %s: the interrupted merge of '%s' "
                "into '%s' may have written part of it: the data of "
                "snapshot(s) %s there is lost, so their records are "
                "removed", op->d.name, vdev, c, f, dropped);
        return 0;
    }

    for (i = 0; kids && YAJL_IS_ARRAY(kids) && i < kids->u.array.len; i++) {
        const char *kid = YAJL_GET_STRING(kids->u.array.values[i]);
        char *err = NULL;
        /* an image QEMU runs: the live commit re-parented it itself */
        if (kid && op->d.running && running_image(gc, op, kid)) continue;
        /* a failure is said here, as a warning: the recovery goes on */
        if (kid && !overlay_on(gc, kid, f) &&
            libxl__exec_sync(gc, libxl__qemu_img_rebase_args(gc, kid,
                                 f, ds->format), 60000, NULL, &err)) {
            const char *why = libxl__tool_error_line(gc, err);
            LOG(WARN, "domain %s: disk %s: '%s' could not be rebased "
                "onto '%s'%s%s%s; '%s' is kept", op->d.name, vdev, kid, f,
                why ? " (" : "", why ? why : "", why ? ")" : "", c);
            rebased = false;
        }
    }
    c = GCSTRDUP(c);
    f = GCSTRDUP(f);
    libxl__snapshot_tree_move_file(gc, t, vdev, c, f, ds->format);
    if (pivot) {
        libxl__domain_record_set_disk(gc, &t->dom, vdev, f, ds->format);
        if (CTX->driver->set_active_disk) {
            rc = CTX->driver->set_active_disk(gc, &op->d, vdev, f,
                                              ds->format);
            if (rc) return rc;        /* the journal stays */
        }
    }
    ds->type = LIBXL_DISK_SNAPSHOT_TYPE_NO;
    if (op->d.running) libxl__qmp_drop_file_nodes(gc, op->d.qmp_path, c);
    rc = libxl__snapshot_store_save(gc, &op->st, t);
    if (rc) return rc;                /* the journal stays */
    if (rebased && !libxl__snapshot_tree_uses_file(t, c) &&
        !config_image(op, c) && !running_image(gc, op, c))
        unlink(c);
    LOG(WARN, "domain %s: disk %s: %s had finished merging '%s' into "
        "'%s'; the records follow", op->d.name, vdev,
        op->d.running ? "QEMU" : "qemu-img", c, f);
    return 0;
}

/* Is path the active image of a disk in the domain record? */
static bool active_in_record(const libxl__snapshot_op *op, const char *path)
{
    int i;
    for (i = 0; i < op->tree.dom.num_disks; i++)
        if (op->tree.dom.disks[i].path &&
            !strcmp(op->tree.dom.disks[i].path, path))
            return true;
    return false;
}

/*
 * A commit's disk already marked done in the deleted snapshot's record,
 * but a record the same save should have moved from top to base, or the
 * domain record's active image (saved last), still names top: the save
 * stopped part-way (a full disk), after the merge.
 * Moving them again is idempotent.  Before the journal's file removal,
 * which keeps a file some record names.
 */
static int moved_records(libxl__gc *gc, libxl__snapshot_op *op,
                         const char *name, yajl_val commit)
{
    libxl__snapshot_tree *t = &op->tree;
    libxl_domain_snapshot *s = name ? libxl__snapshot_tree_find(t, name)
                                    : NULL;
    const char *vdev = libxl__json_get_string(commit, "vdev");
    const char *c = libxl__json_get_string(commit, "top");
    const char *f = libxl__json_get_string(commit, "base");
    libxl__active_disk *ad = vdev ? libxl__domain_record_disk(&t->dom, vdev)
                                  : NULL;
    int k;

    if (!s || !vdev || !c || !f) return 0;
    /* (the domain record is saved last: it may be the one behind) */
    if (!libxl__snapshot_tree_uses_file(t, c) &&
        !(ad && ad->path && !strcmp(ad->path, c)))
        return 0;
    for (k = 0; k < s->num_disks; k++) {
        libxl_disk_snapshot *ds = &s->disks[k];
        if (strcmp(ds->vdev, vdev) || !ds->file || strcmp(ds->file, f) ||
            ds->type != LIBXL_DISK_SNAPSHOT_TYPE_NO)
            continue;
        libxl__snapshot_tree_move_file(gc, t, vdev, GCSTRDUP(c),
                                       GCSTRDUP(f), ds->format);
        if (ad && ad->path && !strcmp(ad->path, c) &&
            !running_image(gc, op, c))
            libxl__domain_record_set_disk(gc, &t->dom, vdev, f, ds->format);
        LOG(WARN, "domain %s: disk %s: the records still naming '%s', "
            "merged into '%s', now name it", op->d.name, vdev, c, f);
        return libxl__snapshot_store_save(gc, &op->st, t);
    }
    return 0;
}

/*
 * The snapshots the interrupted command was to delete after this one
 * (--children), which recovery leaves: "; 'p', which ... is kept", or
 * "".
 */
static const char *delete_rest(libxl__gc *gc, libxl__snapshot_op *op,
                               yajl_val j)
{
    yajl_val then = libxl__json_get(j, "then");
    const char *l = NULL;
    size_t i;
    int n = 0;

    for (i = 0; then && YAJL_IS_ARRAY(then) && i < then->u.array.len; i++) {
        const char *name = YAJL_GET_STRING(then->u.array.values[i]);
        if (!name || !libxl__snapshot_tree_find(&op->tree, name)) continue;
        l = GCSPRINTF("%s%s'%s'", l ? l : "", l ? ", " : "", name);
        n++;
    }
    return !n ? "" : GCSPRINTF("; %s, which the interrupted command was to "
                               "delete next, %s kept", l,
                               n > 1 ? "are" : "is");
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

void libxl__snapshot_remove_unused(libxl__gc *gc, libxl__snapshot_op *op,
                                   const char *from)
{
    const char **keep, **unused;
    int i, n, nk = 0;

    GCNEW_ARRAY(keep, op->d.num_disks + op->tree.dom.num_disks + 1);
    for (i = 0; i < op->d.num_disks; i++)
        if (op->d.disks[i].pdev_path) keep[nk++] = op->d.disks[i].pdev_path;
    for (i = 0; i < op->tree.dom.num_disks; i++)
        if (op->tree.dom.disks[i].path) keep[nk++] = op->tree.dom.disks[i].path;
    n = libxl__snapshot_unused_images(gc, &op->tree, &op->cfg, keep, nk,
                                      &from, 1, true, &unused);
    for (i = 0; i < n; i++) {
        /* (what is below an image QEMU has open, it has open too) */
        if (running_image(gc, op, unused[i])) break;
        if (unlink(unused[i]) && errno != ENOENT)
            LOGE(WARN, "cannot remove '%s', which nothing uses any more",
                 unused[i]);
        else
            LOG(DEBUG, "removed '%s', which nothing uses any more",
                unused[i]);
    }
}

static int recover_delete_records(libxl__gc *gc, libxl__snapshot_op *op,
                                  yajl_val j);

/* The records, then the image the journal's disk may have left unused. */
static int recover_delete(libxl__gc *gc, libxl__snapshot_op *op, yajl_val j)
{
    const char *unused = libxl__json_get_string(j, "unused");
    int rc = recover_delete_records(gc, op, j);

    if (!rc && unused) libxl__snapshot_remove_unused(gc, op, unused);
    return rc;
}

static int recover_delete_records(libxl__gc *gc, libxl__snapshot_op *op,
                                  yajl_val j)
{
    const char *name = libxl__json_get_string(j, "snapshot");
    const char *remove = libxl__json_get_string(j, "remove");
    libxl_domain_snapshot *s;
    int i, n = 0, rc;

    cancel_delete_jobs(gc, op);
    rc = moved_records(gc, op, name, libxl__json_get(j, "commit"));
    if (rc) return rc;
    /* then a merge that finished, or that did not */
    s = name ? libxl__snapshot_tree_find(&op->tree, name) : NULL;
    if (s) {
        rc = committed_records(gc, op, s, libxl__json_get(j, "commit"));
        if (rc) return rc;
    }
    if (remove && libxl__file_exists(remove) &&
        !libxl__snapshot_tree_uses_file(&op->tree, remove) &&
        !active_in_record(op, remove) &&
        !config_image(op, remove) && !running_image(gc, op, remove)) {
        /* its data had been merged and the records moved: it goes */
        if (unlink(remove))
            LOGE(WARN, "cannot remove '%s'", remove);
    }
    if (!s) {
        LOG(WARN, "domain %s: an interrupted snapshot-delete of '%s' had "
            "finished%s", op->d.name, name ? name : "?",
            delete_rest(gc, op, j));
        return 0;
    }
    s = libxl__snapshot_tree_find(&op->tree, name);
    if (!s) {
        LOG(WARN, "domain %s: an interrupted snapshot-delete of '%s' "
            "is over: its record is removed%s", op->d.name, name,
            delete_rest(gc, op, j));
        return 0;
    }
    /* what is gone is marked so (the delete did it before each file) */
    for (i = 0; i < s->num_disks; i++) {
        libxl_disk_snapshot *ds = &s->disks[i];
        if (ds->type == LIBXL_DISK_SNAPSHOT_TYPE_NO) {
            n++;
            continue;
        }
        /* an LVM volume is gone only if lvs says so (not because its
         * origin is) */
        if (ds->type == LIBXL_DISK_SNAPSHOT_TYPE_LVM
            ? libxl__lvm_snapshot_lookup(gc, ds) == ERROR_NOTFOUND
            : !libxl__file_exists(ds->file) ||
              (ds->type == LIBXL_DISK_SNAPSHOT_TYPE_INTERNAL &&
               !has_tag(gc, ds->file, ds->tag))) {
            ds->type = LIBXL_DISK_SNAPSHOT_TYPE_NO;
            n++;
        }
    }
    if (n == s->num_disks) {
        /* nothing of it is left but its record: the delete is over */
        if (s->memory && unlink(s->memory) && errno != ENOENT)
            LOGE(WARN, "cannot remove '%s'", s->memory);
        libxl__snapshot_tree_remove(gc, &op->tree, name);
        libxl__snapshot_tree_fixup(gc, &op->tree);
        rc = libxl__snapshot_store_save(gc, &op->st, &op->tree);
        if (rc) return rc;
        LOG(WARN, "domain %s: an interrupted snapshot-delete of '%s' is "
            "finished: every disk of it was done, its record is removed%s",
            op->d.name, name, delete_rest(gc, op, j));
        return 0;
    }
    if (n) {
        rc = libxl__snapshot_store_save(gc, &op->st, &op->tree);
        if (rc) return rc;
    }
    /* said once: by whoever finishes it, or else once recovered */
    op->unfinished_delete = GCSTRDUP(name);
    op->unfinished_how = GCSPRINTF("it had stopped after %d of its %d "
                                   "disks", n, s->num_disks);
    op->unfinished_rest = delete_rest(gc, op, j);
    return 0;
}

/*
 * Under the lock, with op's tree loaded: reconcile a journal left by a
 * process that died; *found_r says whether there was one.
 */
const char *libxl__journal_pending(libxl__gc *gc,
                                   const libxl__snapshot_store *st,
                                   const char **op_r)
{
    const char *path = journal_path(gc, st);
    char *data;
    yajl_val j;

    if (libxl__read_file_nofollow(gc, path, &data, NULL)) {
        if (!libxl__file_exists(path)) return NULL;
        data = "";
    }
    j = libxl__json_parse(gc, data);
    *op_r = j ? libxl__json_get_string(j, "op") : NULL;
    return path;
}

int libxl__journal_recover(libxl__gc *gc, libxl__snapshot_op *op,
                           bool *found_r)
{
    char *data;
    yajl_val j;
    const char *what;
    int rc;

    libxl__fault_domain(&op->d);      /* tests: whose QEMU to kill */
    if (found_r) *found_r = false;
    rc = libxl__read_file_nofollow(gc, journal_path(gc, &op->st), &data,
                                   NULL);
    if (rc == ERROR_NOTFOUND) return 0;
    if (rc) return rc;
    if (found_r) *found_r = true;
    rc = libxl__snapshot_op_load_all(gc, op);
    if (rc) return rc;
    j = libxl__json_parse(gc, data);
    what = j ? libxl__json_get_string(j, "op") : NULL;
    if (what && !strcmp(what, "create")) {
        rc = recover_create(gc, op, j);
    } else if (what && !strcmp(what, "revert")) {
        rc = recover_revert(gc, op, j);
    } else if (what && !strcmp(what, "delete")) {
        rc = recover_delete(gc, op, j);
    } else if (what) {
        rc = journal_unusable(gc, op, GCSPRINTF("holds an operation this "
                              "version does not know ('%s')",
                              libxl__printable(gc, what)));
    } else {
        rc = journal_unusable(gc, op, "is unreadable (not a journal)");
    }
    if (rc) return rc;
    libxl__journal_remove(gc, &op->st);
    if (!op->finishes_delete) libxl__journal_say_unfinished(gc, op);
    /* the tree as it is now on disk */
    return libxl__snapshot_store_load(gc, &op->st, &op->tree);
}

/* ---------------------------------------------------------------- */
/* xl snapshot-recover */

typedef struct {
    libxl__ao *ao;
    libxl__snapshot_op op;
    bool *recovered_r;
    const char *domain, *name, *how, *rest;   /* the delete it finishes */
} recover_state;

static void recover_delete_done(libxl__egc *egc, void *for_callback,
                                int rc);

/*
 * A shut-off domain: the clusters a killed QEMU leaked in the qcow2
 * images it had open (each disk's active chain), which snapshot-check
 * reports, are repaired (qemu-img check -r leaks: space only).
 */
static void repair_leaks(libxl__gc *gc, libxl__snapshot_op *op)
{
    const char **files;
    int i, j, nf;

    for (i = 0; i < op->d.num_disks; i++) {
        const libxl_device_disk *dk = &op->d.disks[i];
        if (dk->is_cdrom || !dk->pdev_path || !*dk->pdev_path ||
            libxl__qemu_img_chain(gc, dk->pdev_path, &files, &nf, NULL))
            continue;
        for (j = 0; j < nf; j++) {
            yajl_val v = libxl__qemu_img_info_sync(gc, files[j], false,
                                                   NULL), res;
            const char *fmt = v ? libxl__json_get_string(v, "format") : NULL;
            char *out = NULL, *err = NULL;
            long long fixed;

            if (!fmt || strcmp(fmt, "qcow2")) continue;
            libxl__exec_sync(gc, libxl__qemu_img_check_args(gc, files[j],
                                                            true),
                             600000, &out, &err);
            res = out ? libxl__json_parse(gc, out) : NULL;
            fixed = res ? libxl__json_get_integer(res, "leaks-fixed", 0) : 0;
            if (fixed)
                LOG(WARN, "domain %s: disk %s: %lld leaked cluster(s) of "
                    "'%s' repaired", op->d.name, dk->vdev, fixed, files[j]);
        }
    }
}

static void recover_begun(libxl__egc *egc, libxl__snapshot_op *op, int rc)
{
    recover_state *rs = CONTAINER_OF(op, recover_state, op);
    STATE_AO_GC(rs->ao);
    const char *name = op->unfinished_delete;

    /* op_begin did the work, under the lock */
    if (!rc) *rs->recovered_r = op->recovered;
    if (!rc && !op->d.running) repair_leaks(gc, op);
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

int libxl_domain_snapshot_recover(libxl_snapshot_ctx *ctx,
                                  const char *domain, bool *recovered_r,
                                  const libxl_asyncop_how *ao_how)
{
    AO_CREATE(ctx, ao_how);
    EGC_INIT(ctx);
    recover_state *rs;

    *recovered_r = false;
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
