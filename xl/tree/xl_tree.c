/*
 * xl_tree.c - linked into xl/xl, the front end that runs from the tree
 * (never into xl/xl.install)
 *
 * As xl/xl finds the tree's library through its RUNPATH
 * ($ORIGIN/../libxl-snapshot), it finds the tree's tools here, by path
 * from its own directory: xl.c uses them unless the environment names
 * others.  An installed xl uses the compiled-in paths (Config.mk).
 */
#include "xl.h"

const char xl_tree_vhd_util[] = "../tools/vhd-util";
const char xl_tree_ceph_util[] = "../tools/ceph-util";

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
