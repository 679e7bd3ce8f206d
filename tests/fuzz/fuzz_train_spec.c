/* libFuzzer harness for POST /v1/train's body: proto_parse_object then trc_train_spec_parse
 * (types, ranges, unknown keys, then the semantic checks: system, expert, model size,
 * scheduler). Run through `make fuzz` (tests/fuzz/README.md).
 *
 * An accepted spec must validate again, survive its own JSON form (to_json, read, the same
 * struct field by field) and give training options; the job store's reader
 * (trc_train_spec_read) must accept whatever the full parser accepts; a Job object built
 * from it must serialize. A refused body carries a 4xx with a message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "train_spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_error(const proto_error *err) {
    if (err->code < 400 || err->code > 499 || !err->message[0])
        abort();
}

/* Every wire option (from core's tables) and the name agree. */
static int same_spec(const trc_train_spec *a, const trc_train_spec *b) {
    if (strcmp(a->name, b->name) != 0)
        return 0;
    const trc_option *o;
    const void *ba, *bb;
    for (size_t i = 0; (o = trc_train_spec_option(i, a, &ba)) != NULL; i++) {
        char va[64], vb[64];
        trc_train_spec_option(i, b, &bb);
        trc_option_format(o, ba, va, sizeof va);
        trc_option_format(o, bb, vb, sizeof vb);
        if (strcmp(va, vb) != 0)
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    proto_error err = {0};
    json_t *obj = NULL;
    /* As routes_jobs.c: an empty body means every default. */
    if (size > 0 && !(obj = proto_parse_object((const char *)data, size, &err))) {
        check_error(&err);
        return 0;
    }
    trc_train_spec spec, again;
    if (trc_train_spec_parse(obj, &spec, &err) != 0) {
        check_error(&err);
        json_decref(obj);
        return 0;
    }
    if (trc_train_spec_read(obj, &again, &err) != 0 || !same_spec(&spec, &again))
        abort();
    json_decref(obj);
    if (trc_train_spec_validate(&spec, &err) != 0)
        abort();
    json_t *j = trc_train_spec_to_json(&spec);
    if (!j || trc_train_spec_parse(j, &again, &err) != 0 || !same_spec(&spec, &again))
        abort();
    json_decref(j);
    trc_train_opts opts;
    if (trc_train_spec_to_opts(&spec, &opts) != 0)
        abort();
    trc_job job = {.status = TRC_JOB_QUEUED, .spec = spec, .epochs = spec.train.epochs};
    memcpy(job.id, "0123abcd", 9);
    memcpy(job.name, spec.name, sizeof job.name);
    json_t *jj = trc_job_to_json(&job);
    char *text = jj ? json_dumps(jj, JSON_COMPACT) : NULL;
    if (!text)
        abort();
    free(text);
    json_decref(jj);
    return 0;
}
