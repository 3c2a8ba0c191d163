/*
 * xl_cmdtable.c - the subcommands this front end implements
 *
 * As in Xen's tools/xl/xl_cmdtable.c: name, handler, whether -N (dry
 * run) is supported, whether it modifies state, description, usage and
 * option text.  `driver` marks the domain commands that exist only
 * for the qemu driver; on Xen they go to the system xl.
 */
#include "xl.h"

#define QEMU_ONLY LIBXL_SNAPSHOT_DRIVER_QEMU

const struct cmd_spec cmd_table[] = {
    { "snapshot-create", &main_snapshot_create, 1, 1, 0,
      "Take a snapshot of a domain's disks",
      "[options] [<ConfigFile>] <Domain> [<Name>]",
      "-n, --name=NAME          Snapshot name (default: the local time, "
      "YYYYmmdd-HHMMSS).\n"
      "-d, --description=TEXT   Free text kept with the snapshot.\n"
      "--diskspec=SPEC          vdev[,snapshot=internal|external|no]"
      "[,file=PATH]\n"
      "                         per disk, as virsh; repeatable.  Default:"
      " internal\n"
      "                         for qcow2 disks, external otherwise.\n"
      "-D, --disk-only          Disks only, no memory (the default).\n"
      "--no-metadata            Snapshot the disks but keep no record.\n"
      "--json                   Print the record as JSON.\n"
      "<ConfigFile>             An xl.snapshot.cfg(5) file (name, "
      "description,\n"
      "                         memory, disk=[...])."
    },
    { "snapshot-list", &main_snapshot_list, 0, 0, 0,
      "List the snapshots of a domain",
      "[options] <Domain>",
      "-l, --long               Also show descriptions and per-disk files.\n"
      "-t, --tree               Show the snapshots as a tree.\n"
      "--name                   Only the names, one per line.\n"
      "--json                   All records as a JSON array."
    },
    { "snapshot-info", &main_snapshot_info, 0, 0, 0,
      "Show one snapshot of a domain",
      "[options] <Domain> <Name>",
      "--json                   The record as JSON."
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
      "-n, --name=NAME          The snapshot (instead of <Name>)."
    },
    { "snapshot-revert", &main_snapshot_revert, 0, 1, 0,
      "Revert a domain's disks to a snapshot",
      "[options] <Domain> <Name>",
      "--running                Run the domain afterwards.\n"
      "--paused                 Leave the domain paused afterwards.\n"
      "                         Default: the state the snapshot "
      "recorded.\n"
      "-n, --name=NAME          The snapshot (instead of <Name>)."
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
};

const int cmdtable_len = sizeof(cmd_table) / sizeof(cmd_table[0]);

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
