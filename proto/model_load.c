/* POST /v1/models/{name}/load in its JSON form: {"checkpoint": "file.safetensors"}, a path that
 * must stay inside the models directory. */
#include <stdio.h>
#include <string.h>

#include "proto.h"

static const char *const load_keys[] = {"checkpoint", NULL};

int proto_load_parse(const char *body, size_t len, proto_load_req *req, proto_error *err) {
    memset(req, 0, sizeof *req);
    json_t *root = proto_parse_object(body, len, err);
    if (!root)
        return -1;
    const char *path = NULL;
    int rc = proto_check_keys(root, load_keys, err);
    if (!rc) {
        int got = proto_get_string(root, "checkpoint", &path, err);
        if (got == 0)
            rc = proto_fail(err, 400, "checkpoint", "missing field 'checkpoint'");
        else if (got < 0)
            rc = -1;
    }
    if (!rc && strlen(path) >= sizeof req->checkpoint)
        rc = proto_fail(err, 400, "checkpoint", "checkpoint path is too long");
    if (!rc)
        rc = proto_check_relpath(path, "checkpoint", err);
    if (!rc)
        snprintf(req->checkpoint, sizeof req->checkpoint, "%s", path);
    json_decref(root);
    return rc;
}
