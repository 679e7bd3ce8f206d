/* Option descriptors on the wire; see option_json.h. */
#include "option_json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "trc/error.h"

static const char *wire_type(const trc_option *o) {
    return trc_option_type_name(o->type);
}

static int ranged(const trc_option *o) {
    return !(o->min == 0 && o->max == 0);
}

/* The auto sentinel (gamma 0, bound 0) is accepted whatever the range says. */
static int is_auto(const trc_option *o, double v) {
    return o->auto_text && v == o->def;
}

static int in_served_range(const trc_option *o, double v) {
    if (!ranged(o) || is_auto(o, v))
        return 1;
    double hi = trc_option_max(o, 1);
    int open_hi = o->max_open && hi == o->max; /* job_max is inclusive */
    return (o->min_open ? v > o->min : v >= o->min) && (open_hi ? v < hi : v <= hi);
}

static int refuse_number(const trc_option *o, double v, proto_error *err) {
    if (o->type == TRC_OPT_INT) {
        long long lo = (long long)o->min + (o->min_open ? 1 : 0);
        double max = trc_option_max(o, 1);
        long long hi = (long long)max - (o->max_open && max == o->max ? 1 : 0);
        return proto_fail(err, 400, o->name, "%s must be between %lld and %lld, got %.0f", o->name,
                          lo, hi, v);
    }
    char what[256];
    trc_option_describe(o, 1, what, sizeof what);
    return proto_fail(err, 400, o->name, "%s must be %s, got %g", o->name, what, v);
}

static int check_text(const trc_option *o, const char *text, proto_error *err) {
    if (trc_option_choice(o, 0)) {
        if (trc_option_choice_index(o, text) >= 0)
            return 0;
        char list[512];
        size_t len = 0;
        const char *c;
        list[0] = 0;
        for (size_t i = 0; (c = trc_option_choice(o, i)) != NULL && len < sizeof list; i++)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", c);
        return proto_fail(err, 400, o->name, "unknown %s '%.64s' (known: %s)", o->name, text, list);
    }
    if (!text[0])
        return proto_fail(err, 400, o->name, "%s must not be empty", o->name);
    if (o->type == TRC_OPT_STRING && strlen(text) >= o->size)
        return proto_fail(err, 400, o->name, "%s is too long (at most %zu characters)", o->name,
                          o->size - 1);
    return 0;
}

int proto_option_read(const json_t *obj, const trc_option *o, void *base, proto_error *err) {
    const json_t *v = json_object_get(obj, o->name);
    if (!v)
        return 0;
    switch (o->type) {
    case TRC_OPT_INT:
    case TRC_OPT_U64: {
        double x;
        if (json_is_integer(v))
            x = (double)json_integer_value(v);
        else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
                 fabs(json_real_value(v)) < 9e18)
            x = json_real_value(v);
        else
            return proto_fail(err, 400, o->name, "%s must be an integer", o->name);
        if (o->type == TRC_OPT_U64) {
            if (x < 0)
                return proto_fail(err, 400, o->name,
                                  "%s must be between 0 and %" PRId64 ", got %.0f", o->name,
                                  INT64_MAX, x);
            json_int_t i = json_is_integer(v) ? json_integer_value(v) : (json_int_t)x;
            return trc_option_set_u64(o, (uint64_t)i, base) == TRC_OK ? 1 : -1;
        }
        if (!in_served_range(o, x) || fabs(x) > 2147483647.0)
            return refuse_number(o, x, err);
        break;
    }
    case TRC_OPT_DOUBLE: {
        if (!json_is_number(v))
            return proto_fail(err, 400, o->name, "%s must be a number", o->name);
        double x = json_number_value(v);
        if (!isfinite(x))
            return proto_fail(err, 400, o->name, "%s must be finite", o->name);
        if (!in_served_range(o, x))
            return refuse_number(o, x, err);
        break;
    }
    case TRC_OPT_BOOL:
        if (!json_is_boolean(v))
            return proto_fail(err, 400, o->name, "%s must be true or false", o->name);
        break;
    case TRC_OPT_STRING:
    case TRC_OPT_ENUM:
        if (!json_is_string(v))
            return proto_fail(err, 400, o->name, "%s must be a string", o->name);
        if (check_text(o, json_string_value(v), err) != 0)
            return -1;
        if (trc_option_set_text(o, json_string_value(v), base) != TRC_OK)
            return proto_fail(err, 400, o->name, "%s", trc_errmsg());
        return 1;
    }
    double x = json_is_boolean(v) ? (double)json_is_true(v) : json_number_value(v);
    if (trc_option_set_number(o, x, base) != TRC_OK)
        return proto_fail(err, 400, o->name, "%s", trc_errmsg());
    return 1;
}

int proto_option_check(const trc_option *o, const void *base, proto_error *err) {
    switch (o->type) {
    case TRC_OPT_INT:
    case TRC_OPT_DOUBLE: {
        double x = trc_option_number(o, base);
        if (!isfinite(x))
            return proto_fail(err, 400, o->name, "%s must be finite", o->name);
        return in_served_range(o, x) ? 0 : refuse_number(o, x, err);
    }
    case TRC_OPT_STRING:
    case TRC_OPT_ENUM: {
        const char *t = trc_option_text(o, base);
        if (!t || (o->type == TRC_OPT_STRING && !memchr(t, 0, o->size)))
            return proto_fail(err, 400, o->name, "%s is not a valid value", o->name);
        return check_text(o, t, err);
    }
    default:
        return trc_option_check(o, base) == TRC_OK
                   ? 0
                   : proto_fail(err, 400, o->name, "%s", trc_errmsg());
    }
}

json_t *proto_option_value(const trc_option *o, const void *base) {
    switch (o->type) {
    case TRC_OPT_INT:
        return json_integer((json_int_t)trc_option_number(o, base));
    case TRC_OPT_DOUBLE:
        return json_real(trc_option_number(o, base));
    case TRC_OPT_BOOL:
        return json_boolean(trc_option_number(o, base) != 0);
    case TRC_OPT_U64: {
        uint64_t v = trc_option_u64(o, base);
        if (v <= INT64_MAX)
            return json_integer((json_int_t)v);
        char buf[32];
        snprintf(buf, sizeof buf, "%" PRIu64, v);
        return json_string(buf);
    }
    case TRC_OPT_STRING:
    case TRC_OPT_ENUM: {
        const char *t = trc_option_text(o, base);
        return json_string(t ? t : "");
    }
    }
    return NULL;
}

/* The table default as JSON; null when it depends on other settings (def_text). */
static json_t *default_json(const trc_option *o) {
    if (o->def_text)
        return json_null();
    switch (o->type) {
    case TRC_OPT_INT:
    case TRC_OPT_U64:
        return json_integer((json_int_t)o->def);
    case TRC_OPT_DOUBLE:
        return json_real(o->def);
    case TRC_OPT_BOOL:
        return json_boolean(o->def != 0);
    default:
        return json_string(o->def_str ? o->def_str : "");
    }
}

static json_t *number_json(const trc_option *o, double v) {
    return o->type == TRC_OPT_DOUBLE ? json_real(v) : json_integer((json_int_t)v);
}

static json_t *choices_json(const trc_option *o) {
    json_t *arr = json_array();
    const char *c;
    for (size_t i = 0; arr && (c = trc_option_choice(o, i)) != NULL; i++)
        json_array_append_new(arr, json_string(c));
    return arr;
}

/* json_object_set_new ignoring a NULL value (an allocation failure shows as a missing key). */
static void put(json_t *obj, const char *key, json_t *value) {
    if (value)
        json_object_set_new(obj, key, value);
}

json_t *proto_option_descriptor(const trc_option *o) {
    json_t *d = json_object();
    if (!d)
        return NULL;
    char flag[64], text[256];
    trc_option_flag(o, flag, sizeof flag);
    put(d, "name", json_string(o->name));
    put(d, "flag", json_string(flag));
    put(d, "type", json_string(wire_type(o)));
    put(d, "default", default_json(o));
    if (o->auto_text || o->def_text) {
        trc_option_default_text(o, text, sizeof text);
        put(d, "default_text", json_string(text));
    }
    if (ranged(o)) {
        put(d, "minimum", number_json(o, o->min));
        if (isfinite(o->max))
            put(d, "maximum", number_json(o, o->max));
        if (o->job_max != 0) /* inclusive */
            put(d, "job_maximum", number_json(o, o->job_max));
        put(d, "exclusive_minimum", json_boolean(o->min_open));
        put(d, "exclusive_maximum", json_boolean(o->max_open));
    } else if (o->type == TRC_OPT_U64) {
        put(d, "minimum", json_integer(0));
    }
    if (trc_option_choice(o, 0))
        put(d, "choices", choices_json(o));
    trc_option_describe(o, 0, text, sizeof text);
    put(d, "accepts", json_string(text));
    put(d, "help", json_string(o->help ? o->help : ""));
    if (o->unit)
        put(d, "unit", json_string(o->unit));
    json_t *where = json_array();
    if (where) {
        if (o->where & TRC_OPT_CLI)
            json_array_append_new(where, json_string("cli"));
        if (o->where & TRC_OPT_WIRE)
            json_array_append_new(where, json_string("wire"));
        if (o->where & TRC_OPT_SAVED)
            json_array_append_new(where, json_string("saved"));
        json_object_set_new(d, "where", where);
    }
    return d;
}

json_t *proto_option_schema(const trc_option *o) {
    json_t *s = json_object();
    if (!s)
        return NULL;
    put(s, "type", json_string(wire_type(o)));
    char desc[512], def[160];
    trc_option_default_text(o, def, sizeof def);
    if (o->auto_text)
        snprintf(desc, sizeof desc, "%s; %g = %s", o->help, o->def, o->auto_text);
    else if (o->def_text)
        snprintf(desc, sizeof desc, "%s (default: %s)", o->help, o->def_text);
    else
        snprintf(desc, sizeof desc, "%s", o->help);
    put(s, "description", json_string(desc));
    if (!o->def_text)
        put(s, "default", default_json(o));
    if (ranged(o)) {
        /* an auto sentinel at the open end stays valid: the bound is then inclusive */
        int open_lo = o->min_open && !(o->auto_text && o->def == o->min);
        put(s, "minimum", number_json(o, o->min));
        if (open_lo)
            put(s, "exclusiveMinimum", json_true());
        double hi = trc_option_max(o, 1);
        if (isfinite(hi)) {
            put(s, "maximum", number_json(o, hi));
            if (o->max_open && hi == o->max)
                put(s, "exclusiveMaximum", json_true());
        }
    } else if (o->type == TRC_OPT_U64) {
        put(s, "minimum", json_integer(0));
    }
    if (trc_option_choice(o, 0))
        put(s, "enum", choices_json(o));
    return s;
}
