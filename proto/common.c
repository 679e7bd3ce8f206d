/* Shared pieces of the wire format: the error shape, JSON parsing with line/column errors that
 * name the field being read, unknown-key checks, typed field readers, names and paths. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jtext.h"
#include "proto.h"

int proto_fail(proto_error *err, int code, const char *param, const char *fmt, ...) {
    if (!err)
        return -1;
    err->code = code;
    snprintf(err->param, sizeof err->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}

const char *proto_error_type(int code) {
    switch (code) {
    case 400:
        return "invalid_request";
    case 401:
        return "unauthorized";
    case 403:
        return "forbidden";
    case 404:
        return "not_found";
    case 405:
        return "method_not_allowed";
    case 409:
        return "conflict";
    case 413:
        return "payload_too_large";
    case 415:
        return "unsupported_media_type";
    case 422:
        return "unprocessable";
    case 429:
        return "rate_limited";
    case 507:
        return "insufficient_storage";
    case 503:
        return "unavailable";
    default:
        return code >= 500 ? "internal" : "invalid_request";
    }
}

json_t *proto_error_json(const proto_error *err) {
    json_t *e = json_pack("{s:i, s:s, s:s}", "code", err->code, "type", proto_error_type(err->code),
                          "message", err->message);
    if (!e)
        return NULL;
    if (err->param[0])
        json_object_set_new(e, "param", json_string(err->param));
    return json_pack("{s:o}", "error", e);
}

/* The innermost object key whose value contains byte offset pos of text (a tolerant scan of
 * the prefix: strings, brackets, colons), so a parse error can name the field being read. */
static void key_at(const char *text, size_t pos, char *out, size_t cap) {
    enum { DEPTH = 32 };
    char keys[DEPTH][64]; /* the pending key per open container ("" for arrays) */
    int is_obj[DEPTH];
    int depth = -1;
    char last[64] = ""; /* the last string seen */
    int last_is_key = 0;
    out[0] = '\0';
    for (size_t i = 0; i < pos && text[i]; i++) {
        char c = text[i];
        if (c == '"') {
            size_t j = i + 1, k = 0;
            while (j < pos && text[j] && text[j] != '"') {
                if (text[j] == '\\' && j + 1 < pos)
                    j++;
                if (k + 1 < sizeof last)
                    last[k++] = text[j];
                j++;
            }
            last[k] = '\0';
            last_is_key = 1;
            i = j;
        } else if (c == ':') {
            if (depth >= 0 && depth < DEPTH && last_is_key)
                snprintf(keys[depth], sizeof keys[depth], "%s", last);
            last_is_key = 0;
        } else if (c == '{' || c == '[') {
            depth++;
            if (depth < DEPTH) {
                keys[depth][0] = '\0';
                is_obj[depth] = c == '{';
            }
            last_is_key = 0;
        } else if (c == '}' || c == ']') {
            depth--;
            /* the value of the enclosing key is complete */
            if (depth >= 0 && depth < DEPTH && is_obj[depth])
                keys[depth][0] = '\0';
            last_is_key = 0;
        } else if (c == ',') {
            /* a comma inside an object ends that key's value */
            if (depth >= 0 && depth < DEPTH && is_obj[depth])
                keys[depth][0] = '\0';
            last_is_key = 0;
        } else if (!isspace((unsigned char)c)) {
            last_is_key = 0;
        }
    }
    /* the innermost named level: an array inside "state" reports "state" */
    for (int d = depth < DEPTH ? depth : DEPTH - 1; d >= 0; d--) {
        if (keys[d][0]) {
            snprintf(out, cap, "%s", keys[d]);
            return;
        }
    }
}

json_t *proto_parse_object(const char *body, size_t len, proto_error *err) {
    if (!body || len == 0) {
        proto_fail(err, 400, NULL, "request body is empty: expected a JSON object");
        return NULL;
    }
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        char param[64];
        size_t pos = je.position > 0 ? (size_t)je.position : 0;
        key_at(body, pos < len ? pos : len, param, sizeof param);
        const char *what =
            strstr(je.text, "overflow") ? "number out of range (not finite)" : je.text;
        proto_fail(err, 400, param, "malformed JSON at line %d, column %d: %s", je.line, je.column,
                   what);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        proto_fail(err, 400, NULL, "request body must be a JSON object");
        return NULL;
    }
    return root;
}

int proto_check_keys(const json_t *obj, const char *const *allowed, proto_error *err) {
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val) {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, key) == 0) {
                ok = 1;
                break;
            }
        if (!ok)
            return proto_fail(err, 400, key, "unknown field '%s'", key);
    }
    return 0;
}

int proto_check_name(const char *name, const char *param, proto_error *err) {
    size_t n = strlen(name);
    if (n == 0 || n > PROTO_NAME_MAX)
        return proto_fail(err, 400, param, "%s must have 1 to %d characters", param,
                          PROTO_NAME_MAX);
    if (name[0] == '.')
        return proto_fail(err, 400, param, "%s must not start with '.'", param);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!isalnum(c) && c != '_' && c != '-' && c != '.')
            return proto_fail(err, 400, param,
                              "%s may contain only letters, digits, '_', '-' and '.'", param);
    }
    return 0;
}

int proto_check_relpath(const char *path, const char *param, proto_error *err) {
    if (!path[0])
        return proto_fail(err, 400, param, "%s must not be empty", param);
    if (path[0] == '/')
        return proto_fail(err, 400, param,
                          "%s must be a path inside the models directory, not absolute", param);
    const char *p = path;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t seg = slash ? (size_t)(slash - p) : strlen(p);
        if (seg == 2 && p[0] == '.' && p[1] == '.')
            return proto_fail(err, 400, param,
                              "%s must stay inside the models directory ('..' is refused)", param);
        if (!slash)
            break;
        p = slash + 1;
    }
    for (p = path; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == '\\')
            return proto_fail(err, 400, param, "%s contains a forbidden character", param);
    return 0;
}

int proto_get_string(const json_t *obj, const char *key, const char **out, proto_error *err) {
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_string(v))
        return proto_fail(err, 400, key, "%s must be a string", key);
    *out = json_string_value(v);
    return 1;
}

int proto_get_int(const json_t *obj, const char *key, long long lo, long long hi, long long *out,
                  proto_error *err) {
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    long long x;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
               fabs(json_real_value(v)) < 9e18) {
        x = (long long)json_real_value(v);
    } else {
        return proto_fail(err, 400, key, "%s must be an integer", key);
    }
    if (x < lo || x > hi)
        return proto_fail(err, 400, key, "%s must be between %lld and %lld, got %lld", key, lo, hi,
                          x);
    *out = x;
    return 1;
}

int proto_get_number(const json_t *obj, const char *key, double lo, double hi, double *out,
                     proto_error *err) {
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_number(v))
        return proto_fail(err, 400, key, "%s must be a number", key);
    double x = json_number_value(v);
    if (!isfinite(x))
        return proto_fail(err, 400, key, "%s must be finite", key);
    if (x < lo || x > hi)
        return proto_fail(err, 400, key, "%s must be between %g and %g, got %g", key, lo, hi, x);
    *out = x;
    return 1;
}

int proto_get_bool(const json_t *obj, const char *key, int *out, proto_error *err) {
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return proto_fail(err, 400, key, "%s must be true or false", key);
    *out = json_is_true(v);
    return 1;
}

json_t *proto_real_f32(float v) {
    char buf[40];
    return proto_f32_text(v, buf) ? json_real(strtod(buf, NULL)) : NULL;
}
