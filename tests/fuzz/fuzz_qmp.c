/*
 * fuzz_qmp.c - libFuzzer target: QMP messages as QEMU sends them
 *
 * The bytes are split into lines as the client does, each parsed as a
 * message (libxl__qmp_parse_line), and what the library reads from
 * replies is looked up in it: the error class, the node of an image in
 * a query-named-block-nodes reply, a command in a query-qmp-schema
 * reply.
 */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    libxlsnap_ctx *ctx = fuzz_ctx();
    char *text = fuzz_string(data, size), *line, *save;

    for (line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        GC_INIT(ctx);
        yajl_val v, ret, err;
        if (libxl__qmp_parse_line(gc, line, &v) == 0) {
            err = libxl__json_get(v, "error");
            if (err)
                libxl__qmp_error_class_to_rc(
                    libxl__json_get_string(err, "class"));
            ret = libxl__json_get(v, "return");
            if (ret && YAJL_IS_ARRAY(ret)) {
                libxl__qmp_node_for_file(gc, ret, "/img/vm1-xvda.qcow2",
                                         LIBXL_DISK_FORMAT_QCOW2);
                /* an RBD image: QEMU's json:{...} filenames parsed */
                libxl__qmp_node_for_file(gc, ret, "rbd:rbd/vm1-a:conf=/c",
                                         LIBXL_DISK_FORMAT_RAW);
                libxl__qmp_schema_has(ret, "block-commit", "top-node");
                libxl__qmp_schema_has(ret, "query-jobs", NULL);
            }
            libxl__json_get_integer(v, "id", 0);
            libxl__json_get_string(v, "event");
        }
        GC_FREE;
    }
    free(text);
    return 0;
}
