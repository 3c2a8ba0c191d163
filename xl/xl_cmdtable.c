/*
 * xl_cmdtable.c - the subcommands this front end implements
 *
 * As in Xen's tools/xl/xl_cmdtable.c: name, handler, whether -N (dry
 * run) is supported, whether it modifies state, description, usage and
 * option text.  `driver` marks the domain commands that exist only
 * for the qemu driver; on Xen they go to the system xl.
 */
#include "xl.h"

#define QEMU_ONLY LIBXLSNAP_DRIVER_QEMU

/* block-stream's options, and block-pull's (the same command) */
#define BLOCK_STREAM_OPTIONS                                              \
      "--base=FILE              Keep this image and those below it.\n"   \
      "--bandwidth=MIB          Limit to MIB MiB/s (live only).\n"        \
      "--timeout=SECONDS        Abort the job after SECONDS.\n"           \
      "--wait, --async, --verbose  As for block-commit."

const struct cmd_spec cmd_table[] = {
    { "snapshot-create", &main_snapshot_create, 1, 1, 0,
      "Take a snapshot of a domain's disks (and memory)",
      "[options] [<ConfigFile>] <Domain> [<Name>]",
      "-n, --name=NAME          Snapshot name (default: the local time, "
      "YYYYmmdd-HHMMSS).\n"
      "-d, --description=TEXT   Free text kept with the snapshot.\n"
      "--diskspec=SPEC          vdev[,snapshot=internal|external|lvm|rbd|no]"
      "[,file=PATH][,cow=SIZE]\n"
      "                         per disk, as virsh; repeatable.  Default:"
      " internal\n"
      "                         for qcow2 disks, lvm for disks on an LVM"
      " volume,\n"
      "                         rbd for disks on a Ceph RBD image\n"
      "                         (cow=: a thick snapshot's COW size, e.g."
      " 512M or 20%;\n"
      "                         default 20%), external otherwise.\n"
      "-D, --disk-only          Disks only, no memory (the default).\n"
      "--memory[=FILE]          A checkpoint: the domain's memory too, in FILE\n"
      "                         (default <state dir>/<uuid>/<name>.save; relative:\n"
      "                         to the working directory).  The guest is paused\n"
      "                         while memory is saved.\n"
      "--live                   With memory: copy it while the guest runs, and\n"
      "                         take the disks at the final short pause.\n"
      "--quiesce[=required|try] Freeze the guest's file systems through the QEMU\n"
      "                         guest agent for the disk snapshot (disk-only);\n"
      "                         try: crash-consistent if it cannot, and say so.\n"
      "--agent=SOCKET           The guest agent's socket (default: the config's\n"
      "                         channel name=org.qemu.guest_agent.0).\n"
      "--no-metadata            Snapshot the disks but keep no record.\n"
      "--auto-commit            When a new overlay would make a disk's backing\n"
      "                         chain longer than max_chain (xl-snapshot.conf(5)),\n"
      "                         first merge the oldest layer no snapshot needs\n"
      "                         (a block commit: progress, Ctrl-C aborts it).\n"
      "--checkpoint=NAME        Also make checkpoint NAME at the same instant\n"
      "                         (running: in the same QMP transaction; shut off:\n"
      "                         right after, under the same lock).\n"
      "-N                       Dry run: plan and check, change nothing (as\n"
      "                         xl -N snapshot-create); says the space figures.\n"
      "--force                  Take it even where the space guards refuse it\n"
      "                         (file systems too full, LVM over the threshold).\n"
      "--json                   Print the record as JSON.\n"
      "--verbose                With memory: progress lines to a pipe too\n"
      "                         (a terminal always gets one).\n"
      "--redefine --xmlfile=FILE [--current]\n"
      "                         Import libvirt domainsnapshot XML as a record\n"
      "                         (metadata only; --current: it becomes current).\n"
      "--redefine --xmlfile=F1 --xmlfile=F2... | --xmlfile=DIR [--current]\n"
      "                         Import many at once (DIR: its *.xml files), in\n"
      "                         any order (parents are put first): all checked\n"
      "                         first, one lock, one save, all or none; names\n"
      "                         must be new (--current: the newest becomes\n"
      "                         current; -N: check them all, import nothing).\n"
      "<ConfigFile>             An xl.snapshot.cfg(5) file (name, "
      "description,\n"
      "                         memory, type, disk=[...]).  Three arguments:\n"
      "                         <ConfigFile> <Domain> <Name>.  Two: <ConfigFile>\n"
      "                         <Domain> if the first is a path (with a / or\n"
      "                         ending in .cfg) to a file that is not a domain\n"
      "                         config, else <Domain> <Name>.  A domain config\n"
      "                         sets what a snapshot config does not take\n"
      "                         (vcpus=, kernel=...), or memory= as a number with\n"
      "                         a disk naming an image; a file with description=\n"
      "                         or type=\"internal\"|\"external\" never is one."
    },
    { "snapshot-list", &main_snapshot_list, 0, 0, 0,
      "List the snapshots of a domain",
      "[options] <Domain>",
      "-l, --long               Also show descriptions and per-disk files.\n"
      "-t, --tree               Show the snapshots as a tree.\n"
      "--name                   Only the names, one per line.\n"
      "--size                   What each snapshot costs and would free,\n"
      "                         a column per figure, then the totals per\n"
      "                         disk and the domain's (with --long: per\n"
      "                         disk; with --json: bytes).\n"
      "--json                   All records as a JSON array."
    },
    { "snapshot-info", &main_snapshot_info, 0, 0, 0,
      "Show one snapshot of a domain",
      "[options] <Domain> <Name>",
      "--json                   The record as JSON."
    },
    { "snapshot-dumpxml", &main_snapshot_dumpxml, 0, 0, 0,
      "Print a snapshot as libvirt domainsnapshot XML",
      "<Domain> <Name>",
      ""
    },
    { "snapshot-check", &main_snapshot_check, 0, 0, 0,
      "Check a domain's snapshot records against its images",
      "[options] <Domain>",
      "--json                   The problems as JSON: {\"domain\", \"problems\": [...]};\n"
      "                         when the check could not run, also \"error\" (why,\n"
      "                         the line said on stderr) and \"error_code\" (libxl's\n"
      "                         code: \"domain_notfound\", \"lock_fail\"...).\n"
      "Lists every discrepancy (missing image or memory file, broken backing\n"
      "chain, chain not matching the tree, qemu-img check errors, files no\n"
      "record owns, files two records own, a corrupt record, a parent loop\n"
      "or a missing parent); exit 1 if there is any.  Changes nothing: an\n"
      "interrupted operation is reported, snapshot-recover completes it.\n"
      "A disk in a block job QEMU runs is left out (a warning says so)."
    },
    { "snapshot-chain", &main_snapshot_chain, 0, 0, 0,
      "Show each disk's backing chain and the longest a snapshot may make",
      "[--json] <Domain>",
      "--json                   {\"domain\", \"max_chain\", \"disks\": [{\"vdev\",\n"
      "                         \"length\", \"files\": [active first...]}...]}.\n"
      "max_chain counts images, base included (xl-snapshot.conf(5): the\n"
      "environment's XL_SNAPSHOT_MAX_CHAIN, the domain config's\n"
      "snapshot_max_chain, /etc/xen/xl-snapshot.conf, default 16).  A disk\n"
      "whose chain is that long refuses the next external snapshot."
    },
    { "snapshot-diff", &main_snapshot_diff, 0, 0, 0,
      "Show the extents of each disk that changed between two snapshots or checkpoints",
      "[options] <Domain> <From> [<To>|now]",
      "--disk=VDEV              Only this disk.\n"
      "-v, --verbose            Also one line per extent: OFFSET LENGTH (bytes).\n"
      "--json                   {\"domain\", \"from\", \"to\", \"disks\": [{\"vdev\",\n"
      "                         \"method\", \"reads_data\", \"size\", \"granularity\",\n"
      "                         \"total\", \"num_extents\", \"extents\": [{\"offset\",\n"
      "                         \"length\"}...]}...]}; a failure: \"error\", \"error_code\".\n"
      "--no-data                Internal snapshots: compare the qcow2 mapping only,\n"
      "                         read no guest data.\n"
      "<To> omitted or \"now\": the disks as they are.  <From> must be <To>'s\n"
      "ancestor (now: the current snapshot or an ancestor of it).  External\n"
      "snapshots: the allocation of the overlays between them (method\n"
      "allocation, no data read).  Internal: the qcow2 tables of both states\n"
      "compared, then the data of the clusters that differ read (method\n"
      "compare).  <From> a checkpoint: to another checkpoint or now, the\n"
      "union of their dirty bitmaps (method bitmap, read over NBD).  A\n"
      "running domain, to now: QEMU flushes its images first (the guest\n"
      "pauses for milliseconds).  Extents are rounded to the cluster size."
    },
    { "snapshot-recover", &main_snapshot_recover, 0, 0, 0,
      "Finish or undo an operation a dead xl left half-done",
      "<Domain>",
      "Every command on the domain does this first; this does only that,\n"
      "and says what it did.  A journal no recovery can complete (unreadable,\n"
      "or an operation this version does not know) is moved aside to\n"
      "journal.corrupt-<time>, said so, and the command fails: snapshot-check\n"
      "then reports what the operation may have left half-done."
    },
    { "snapshot-current", &main_snapshot_current, 0, 0, 0,
      "Print the name of a domain's current snapshot",
      "<Domain>",
      ""
    },
    { "snapshot-delete", &main_snapshot_delete, 0, 1, 0,
      "Delete a snapshot of a domain",
      "[options] <Domain> <Name>",
      "--metadata               Drop only the record; images untouched.\n"
      "--children               Also delete its descendants.\n"
      "--children-only          Delete only its descendants.\n"
      "-n, --name=NAME          The snapshot (instead of <Name>).\n"
      "-v, --verbose            The block jobs' progress to a pipe too."
    },
    { "checkpoint-create", &main_checkpoint_create, 0, 1, 0,
      "Make a checkpoint for incremental backups",
      "[options] <Domain> <Name>",
      "-d, --description=TEXT   Free text kept with the checkpoint.\n"
      "--disk=VDEV              Only this disk (repeatable; default: every qcow2 disk).\n"
      "One persistent dirty bitmap <Name> on each disk's active image (qcow2),\n"
      "all started at one instant; the previous checkpoint's bitmaps stop\n"
      "recording at that instant."
    },
    { "checkpoint-list", &main_checkpoint_list, 0, 0, 0,
      "List a domain's checkpoints, oldest first",
      "[options] <Domain>",
      "--json                   The records as JSON.\n"
      "--name                   Names only, one a line.\n"
      "-t, --tree               As a line of descent.\n"
      "--check                  Also say which bitmaps are missing or inconsistent."
    },
    { "checkpoint-info", &main_checkpoint_info, 0, 0, 0,
      "Show one checkpoint of a domain",
      "[options] <Domain> <Name>",
      "--json                   The record as JSON."
    },
    { "checkpoint-dumpxml", &main_checkpoint_dumpxml, 0, 0, 0,
      "Print a checkpoint as libvirt domaincheckpoint XML",
      "<Domain> <Name>",
      ""
    },
    { "checkpoint-delete", &main_checkpoint_delete, 0, 1, 0,
      "Delete a checkpoint (its bitmap merged into its predecessor's)",
      "<Domain> <Name>",
      ""
    },
    { "snapshot-revert", &main_snapshot_revert, 0, 1, 0,
      "Revert a domain's disks to a snapshot",
      "[options] <Domain> <Name>",
      "--running                Run the domain afterwards.\n"
      "--paused                 Leave the domain paused afterwards.\n"
      "                         Default: the state the snapshot "
      "recorded.\n"
      "-f, --force              Stop a running domain with LVM disks for"
      " the merge.\n"
      "-n, --name=NAME          The snapshot (instead of <Name>).\n"
      "-v, --verbose            A checkpoint's memory restore progress to"
      " a pipe too."
    },
    { "block-commit", &main_block_commit, 0, 1, 0,
      "Merge images of a disk's backing chain into a lower one",
      "[options] <Domain> <Disk>",
      "--top=FILE               Image to merge from (default: active).\n"
      "--base=FILE              Image to merge into (default: bottom).\n"
      "--shallow                Base is top's backing file.\n"
      "--active                 Allow top to be the active image.\n"
      "--pivot                  Active commit: then make base active.\n"
      "--keep-overlay           Active commit: keep top active.\n"
      "--delete                 Remove the merged images afterwards.\n"
      "--keep-relative          Keep a relative backing file name.\n"
      "--bandwidth=MIB          Limit to MIB MiB/s.\n"
      "--timeout=SECONDS        Abort the job after SECONDS.\n"
      "--wait                   Wait for the job (the default).\n"
      "--async                  Return once the job runs (live).\n"
      "--verbose                Show progress.  Ctrl-C aborts the job."
    },
    { "block-stream", &main_block_stream, 0, 1, 0,
      "Pull the data of backing images into a disk's active image",
      "[options] <Domain> <Disk>",
      BLOCK_STREAM_OPTIONS
    },
    { "block-pull", &main_block_stream, 0, 1, 0,
      "Same as block-stream",
      "[options] <Domain> <Disk>",
      BLOCK_STREAM_OPTIONS
    },
    { "block-job", &main_block_job, 0, 1, 0,
      "Show or control the block job of a disk",
      "[--info | --abort | --pivot | --bandwidth=MIB] [--json] "
      "<Domain> <Disk>",
      "--info                   Type, state, progress, speed (default).\n"
      "--abort                  Cancel the job.  A stream or copy leaves\n"
      "                         the chain as it was; a commit has already\n"
      "                         written part of top into base: snapshots\n"
      "                         whose data was in base are dropped (said).\n"
      "--pivot                  Complete a ready active commit or copy\n"
      "                         (the disk switches to base, or Dest).\n"
      "--bandwidth=MIB          Change the limit to MIB MiB/s (0: none).\n"
      "--json                   --info as JSON."
    },
    { "create", &main_create, 0, 1, 0,
      "Create a domain from a config file (on Xen: the system xl, "
      "told to use the disks' active images)",
      "[options] <ConfigFile>",
      "-p                       Leave the domain paused after it is "
      "created."
    },
    { "destroy", &main_destroy, 0, 1, QEMU_ONLY,
      "Terminate a domain immediately (qemu driver)",
      "<Domain>",
      ""
    },
    { "list", &main_list, 0, 0, QEMU_ONLY,
      "List information about all/some domains (qemu driver)",
      "[options] [Domain]",
      "-l, --long               Also the config file and disks."
    },
    { "pause", &main_pause, 0, 1, QEMU_ONLY,
      "Pause execution of a domain (qemu driver)",
      "<Domain>",
      ""
    },
    { "unpause", &main_unpause, 0, 1, QEMU_ONLY,
      "Unpause a paused domain (qemu driver)",
      "<Domain>",
      ""
    },
    { "qemu-monitor-command", &main_qemu_monitor_command, 0, 1, QEMU_ONLY,
      "Issue a qemu monitor (HMP) command to the device model of a domain",
      "<Domain> <Command>",
      ""
    },
    { "help", &main_help, 0, 0, 0,
      "Print this help",
      "[<Command>]",
      ""
    },
    { "block-copy", &main_block_copy, 0, 1, 0,
      "Copy a disk's active image to another image, live or offline",
      "[options] <Domain> <Disk> <Dest>",
      "--shallow                Copy the active image only; Dest is built\n"
      "                         on its backing file (default: the whole\n"
      "                         chain into a standalone image).\n"
      "--reuse-external         Dest exists: write into it.\n"
      "--format=qcow2|raw       Dest's format (default: the disk's).\n"
      "--pivot                  Then switch the domain to Dest.\n"
      "--finish                 Then keep Dest as a point-in-time copy;\n"
      "                         the domain stays on its image.\n"
      "--bandwidth=MIB          Limit to MIB MiB/s (0: no limit).\n"
      "--timeout=SECONDS        Abort the job after SECONDS.\n"
      "--wait                   Wait for the job (the default).\n"
      "--async                  Return once the job runs (live only; no\n"
      "                         --timeout).\n"
      "--verbose                Show progress.  Ctrl-C aborts the job."
    },
    { "backup-begin", &main_backup_begin, 0, 1, 0,
      "Back up a domain's disks: push into a directory, or pull over NBD",
      "[options] <Domain>",
      "--target=DIR             Push: each disk into DIR/<vdev>.qcow2 (DIR is\n"
      "                         made if missing; an image there is refused).\n"
      "--nbd=SOCKET|HOST:PORT   Pull: export each disk's point-in-time view\n"
      "                         over NBD (export name: the vdev) until\n"
      "                         backup-end.\n"
      "--incremental=CKPT       Only the clusters changed since checkpoint\n"
      "                         CKPT; a push's image is built on the backup\n"
      "                         taken with CKPT; a pull exports them as the\n"
      "                         meta context qemu:dirty-bitmap:CKPT.\n"
      "--checkpoint=NAME        Make checkpoint NAME at the backup's instant\n"
      "                         (undone if the backup fails or is cancelled;\n"
      "                         a pull's is kept only when backup-end ends it\n"
      "                         well, not aborted).\n"
      "--fallback-full          An incremental whose bitmaps are not trusted\n"
      "                         (QEMU killed): a full backup instead, said so.\n"
      "--disk=VDEV              Back up this disk (repeatable; default: all).\n"
      "--bandwidth=MIB          Push: limit each disk's copy to MIB MiB/s.\n"
      "--async                  Push: return once the copies run; backup-end\n"
      "                         waits for them.\n"
      "--verbose                Progress lines to a pipe too.  Ctrl-C cancels\n"
      "                         a push and removes what it made."
    },
    { "backup-info", &main_backup_info, 0, 0, 0,
      "Show a domain's backup: the running one, or the last one",
      "[options] <Domain>",
      "--json                   As JSON."
    },
    { "backup-end", &main_backup_end, 0, 1, 0,
      "End a domain's backup: wait for a push, stop a pull's exports",
      "[options] <Domain>",
      "--abort                  Cancel it: a push's images and the new\n"
      "                         checkpoint are removed; a pull's checkpoint\n"
      "                         is undone.\n"
      "--verbose                Progress lines to a pipe too.  Ctrl-C cancels\n"
      "                         a push it waits for."
    },
    { "migrate", &main_migrate, 0, 1, 0,
      "Migrate a domain to a new QEMU on this host, its snapshots kept "
      "(qemu driver; on Xen: the system xl's, after a warning when its "
      "snapshot records stay on this host)",
      "[options] <Domain> [localhost]",
      "-p, --paused             Leave the domain paused on the new QEMU\n"
      "                         (else it runs there, paused before or not).\n"
      "--bandwidth=MIB          Limit the migration to MIB MiB/s.\n"
      "Ctrl-C (SIGTERM, SIGHUP) before both QEMUs completed cancels it: the\n"
      "domain stays where it was.  A stream that stalls 20 s fails it.\n"
      "A remote host is refused on the qemu driver.  On Xen, the system\n"
      "xl's options and <host>; set XL_SNAPSHOT_STATE_SHARED=1 when the\n"
      "state dir is on storage both hosts see (no warning then)."
    },
    { "snapshot-export-records", &main_snapshot_export_records, 0, 0, 0,
      "Write a domain's snapshot records as one JSON document, for "
      "another host that shares its images",
      "<Domain> [<File>]",
      "<File>                   Where to write it (default, or -: stdout)."
    },
    { "snapshot-import-records", &main_snapshot_import_records, 0, 1, 0,
      "Import a domain's snapshot records from snapshot-export-records, "
      "all or nothing",
      "[options] <Domain> <File>",
      "-f, --force              Replace the records the domain has here.\n"
      "<File> is read as a stream: - (stdin), /dev/stdin, <(...) work.\n"
      "Refused: another domain's uuid, a corrupt document, records already\n"
      "there (without --force), an image they name that this host cannot\n"
      "reach (each named)."
    },
};

const int cmdtable_len = sizeof(cmd_table) / sizeof(cmd_table[0]);

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
