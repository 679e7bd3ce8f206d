/* libFuzzer harness for POST /v1/models/{name}/load's JSON body (proto_load_parse) and the path
 * rule behind it (proto_check_relpath). Run through `make fuzz` (tests/fuzz/README.md).
 *
 * An accepted body must name a non-empty relative path with no ".." segment, no control byte
 * and no backslash, that fits the struct; a refused one carries a 4xx with a message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int has_dotdot(const char *p) {
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t seg = slash ? (size_t)(slash - p) : strlen(p);
        if (seg == 2 && p[0] == '.' && p[1] == '.')
            return 1;
        if (!slash)
            return 0;
        p = slash + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    proto_load_req req;
    proto_error err = {0};
    if (proto_load_parse((const char *)data, size, &req, &err) != 0) {
        if (err.code < 400 || err.code > 499 || !err.message[0])
            abort();
        return 0;
    }
    const char *p = req.checkpoint;
    size_t n = strnlen(p, sizeof req.checkpoint);
    if (n == 0 || n >= sizeof req.checkpoint || p[0] == '/' || has_dotdot(p))
        abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] < 0x20 || p[i] == '\\')
            abort();
    return 0;
}
