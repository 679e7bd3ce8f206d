/* Option descriptors: defaults, parsing, validation and text from one table; see option.h. */
#include "trc/option.h"
#include "trc/error.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The option's field inside the struct at base. */
static void *field_at(const trc_option *o, void *base) {
    return (char *)base + o->offset;
}
static const void *cfield_at(const trc_option *o, const void *base) {
    return (const char *)base + o->offset;
}
#define FIELD(o, base, type) ((type *)field_at((o), (base)))
#define CFIELD(o, base, type) ((const type *)cfield_at((o), (base)))

const char *trc_option_type_name(trc_opt_type type) {
    static const char *const names[] = {"integer", "integer", "number",
                                        "boolean", "string",  "string"};
    return (unsigned)type < sizeof names / sizeof *names ? names[type] : "unknown";
}

const char *trc_option_choice(const trc_option *o, size_t i) {
    if (o->choice_at)
        return o->choice_at(i);
    if (!o->choices)
        return NULL;
    for (size_t k = 0; k <= i; k++)
        if (!o->choices[k])
            return NULL;
    return o->choices[i];
}

int trc_option_choice_index(const trc_option *o, const char *text) {
    const char *c;
    for (size_t i = 0; text && (c = trc_option_choice(o, i)) != NULL; i++)
        if (strcmp(c, text) == 0)
            return (int)i;
    return -1;
}

static int has_choices(const trc_option *o) {
    return trc_option_choice(o, 0) != NULL;
}

void trc_option_flag(const trc_option *o, char *buf, size_t size) {
    if (strlen(o->name) == 1) {
        snprintf(buf, size, "-%s", o->name);
        return;
    }
    int w = snprintf(buf, size, "--%s", o->name);
    for (int i = 2; i < w && (size_t)i < size; i++)
        if (buf[i] == '_')
            buf[i] = '-';
}

const trc_option *trc_option_find(const trc_option *opts, size_t n, const char *name) {
    if (!name)
        return NULL;
    char flag[80];
    for (size_t i = 0; i < n; i++) {
        if (strcmp(opts[i].name, name) == 0)
            return &opts[i];
        trc_option_flag(&opts[i], flag, sizeof flag);
        if (strcmp(flag, name) == 0)
            return &opts[i];
    }
    return NULL;
}

double trc_option_max(const trc_option *o, int job) {
    return job && o->job_max != 0 ? o->job_max : o->max;
}

static int ranged(const trc_option *o) {
    return !(o->min == 0 && o->max == 0);
}

/* The default is an "automatic" sentinel, accepted whatever the range says. */
static int is_auto(const trc_option *o, double v) {
    return o->auto_text && v == o->def;
}

static int in_range(const trc_option *o, double v, int job) {
    if (!ranged(o))
        return 1;
    double hi = trc_option_max(o, job);
    int open_hi = o->max_open && hi == o->max; /* job_max is always inclusive */
    return (o->min_open ? v > o->min : v >= o->min) && (open_hi ? v < hi : v <= hi);
}

static void list_choices(const trc_option *o, char *buf, size_t size) {
    size_t len = 0;
    const char *c;
    buf[0] = 0;
    for (size_t i = 0; (c = trc_option_choice(o, i)) != NULL && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? ", " : "", c);
}

void trc_option_describe(const trc_option *o, int job, char *buf, size_t size) {
    double hi = trc_option_max(o, job);
    int max_open = o->max_open && hi == o->max; /* job_max is always inclusive */
    switch (o->type) {
    case TRC_OPT_INT:
        if (!ranged(o))
            snprintf(buf, size, "an integer");
        else if (isinf(hi))
            snprintf(buf, size, "an integer >= %.0f", o->min + (o->min_open ? 1 : 0));
        else
            snprintf(buf, size, "an integer in %.0f..%.0f", o->min + (o->min_open ? 1 : 0),
                     hi - (max_open ? 1 : 0));
        return;
    case TRC_OPT_U64:
        snprintf(buf, size, "a non-negative integer");
        return;
    case TRC_OPT_DOUBLE:
        if (!ranged(o))
            snprintf(buf, size, "a finite number");
        else if (isinf(hi))
            snprintf(buf, size, "a number %s %g", o->min_open ? ">" : ">=", o->min);
        else
            snprintf(buf, size, "a number in %s%g, %g%s", o->min_open ? "(" : "[", o->min, hi,
                     max_open ? ")" : "]");
        return;
    case TRC_OPT_BOOL:
        snprintf(buf, size, "true or false");
        return;
    case TRC_OPT_STRING:
    case TRC_OPT_ENUM:
        if (has_choices(o)) {
            char list[512];
            list_choices(o, list, sizeof list);
            snprintf(buf, size, "one of %s", list);
        } else {
            snprintf(buf, size, "a non-empty string of at most %zu characters",
                     o->size ? o->size - 1 : 0);
        }
        return;
    }
    snprintf(buf, size, "a value");
}

void trc_option_default_text(const trc_option *o, char *buf, size_t size) {
    if (o->auto_text || o->def_text)
        snprintf(buf, size, "%s", o->auto_text ? o->auto_text : o->def_text);
    else if (o->type == TRC_OPT_STRING || o->type == TRC_OPT_ENUM)
        snprintf(buf, size, "%s", o->def_str ? o->def_str : "");
    else if (o->type == TRC_OPT_BOOL)
        snprintf(buf, size, "%s", o->def != 0 ? "true" : "false");
    else
        snprintf(buf, size, "%g", o->def);
}

void trc_options_default(const trc_option *opts, size_t n, void *base) {
    for (size_t i = 0; i < n; i++) {
        const trc_option *o = &opts[i];
        switch (o->type) {
        case TRC_OPT_INT:
        case TRC_OPT_BOOL:
            *FIELD(o, base, int) = (int)o->def;
            break;
        case TRC_OPT_U64:
            *FIELD(o, base, uint64_t) = (uint64_t)o->def;
            break;
        case TRC_OPT_DOUBLE:
            *FIELD(o, base, double) = o->def;
            break;
        case TRC_OPT_STRING:
            if (o->size)
                snprintf(FIELD(o, base, char), o->size, "%s", o->def_str ? o->def_str : "");
            break;
        case TRC_OPT_ENUM: {
            int k = trc_option_choice_index(o, o->def_str);
            *FIELD(o, base, int) = k < 0 ? 0 : k;
            break;
        }
        }
    }
}

static size_t field_size(const trc_option *o) {
    switch (o->type) {
    case TRC_OPT_U64:
        return sizeof(uint64_t);
    case TRC_OPT_DOUBLE:
        return sizeof(double);
    case TRC_OPT_STRING:
        return o->size;
    default:
        return sizeof(int);
    }
}

int trc_option_is_default(const trc_option *o, const void *base) {
    if (o->type == TRC_OPT_STRING || o->type == TRC_OPT_ENUM) {
        const char *t = trc_option_text(o, base);
        return !t || !t[0] || (o->def_str && strcmp(t, o->def_str) == 0);
    }
    if (o->type == TRC_OPT_U64)
        return trc_option_u64(o, base) == (uint64_t)o->def;
    return trc_option_number(o, base) == o->def;
}

void trc_option_copy(const trc_option *o, void *dst, const void *src) {
    memcpy(field_at(o, dst), cfield_at(o, src), field_size(o));
}

double trc_option_number(const trc_option *o, const void *base) {
    switch (o->type) {
    case TRC_OPT_INT:
    case TRC_OPT_BOOL:
    case TRC_OPT_ENUM:
        return *CFIELD(o, base, int);
    case TRC_OPT_U64:
        return (double)*CFIELD(o, base, uint64_t);
    case TRC_OPT_DOUBLE:
        return *CFIELD(o, base, double);
    case TRC_OPT_STRING:
        break;
    }
    return NAN;
}

uint64_t trc_option_u64(const trc_option *o, const void *base) {
    return o->type == TRC_OPT_U64 ? *CFIELD(o, base, uint64_t)
                                  : (uint64_t)fmax(0, trc_option_number(o, base));
}

const char *trc_option_text(const trc_option *o, const void *base) {
    if (o->type == TRC_OPT_STRING)
        return CFIELD(o, base, char);
    if (o->type == TRC_OPT_ENUM)
        return trc_option_choice(o, (size_t)*CFIELD(o, base, int));
    return NULL;
}

void trc_option_format(const trc_option *o, const void *base, char *buf, size_t size) {
    switch (o->type) {
    case TRC_OPT_INT:
    case TRC_OPT_BOOL:
        snprintf(buf, size, "%d", *CFIELD(o, base, int));
        return;
    case TRC_OPT_U64:
        snprintf(buf, size, "%llu", (unsigned long long)*CFIELD(o, base, uint64_t));
        return;
    case TRC_OPT_DOUBLE:
        snprintf(buf, size, "%.17g", *CFIELD(o, base, double));
        return;
    case TRC_OPT_STRING:
    case TRC_OPT_ENUM: {
        const char *t = trc_option_text(o, base);
        snprintf(buf, size, "%s", t ? t : "");
        return;
    }
    }
}

/* The one message of a refused value: "<name> must be <what>, got <value>". */
static int refuse(const trc_option *o, const char *got) {
    char what[600];
    trc_option_describe(o, 0, what, sizeof what);
    return trc_fail(TRC_EINVAL, "%s must be %s, got %s", o->name, what, got);
}

int trc_option_check(const trc_option *o, const void *base) {
    char got[64];
    switch (o->type) {
    case TRC_OPT_INT:
    case TRC_OPT_DOUBLE: {
        double v = trc_option_number(o, base);
        if (is_auto(o, v))
            return TRC_OK;
        if (!isfinite(v) || !in_range(o, v, 0)) {
            snprintf(got, sizeof got, "%g", v);
            return refuse(o, got);
        }
        return TRC_OK;
    }
    case TRC_OPT_U64:
        return TRC_OK;
    case TRC_OPT_BOOL: {
        int v = *CFIELD(o, base, int);
        if (v != 0 && v != 1) {
            snprintf(got, sizeof got, "%d", v);
            return refuse(o, got);
        }
        return TRC_OK;
    }
    case TRC_OPT_STRING: {
        const char *s = CFIELD(o, base, char);
        if (!o->size || !memchr(s, 0, o->size))
            return refuse(o, "an unterminated string");
        /* empty is refused unless it is the default ("" = none, as trc train --init) */
        int empty_ok = o->def_str && !o->def_str[0];
        if (has_choices(o) ? trc_option_choice_index(o, s) < 0 : !s[0] && !empty_ok) {
            snprintf(got, sizeof got, "'%.40s'", s);
            return refuse(o, got);
        }
        return TRC_OK;
    }
    case TRC_OPT_ENUM: {
        int k = *CFIELD(o, base, int);
        if (k < 0 || !trc_option_choice(o, (size_t)k)) {
            snprintf(got, sizeof got, "choice %d", k);
            return refuse(o, got);
        }
        return TRC_OK;
    }
    }
    return trc_fail(TRC_EINVAL, "%s: unknown option type %d", o->name, (int)o->type);
}

int trc_options_validate(const trc_option *opts, size_t n, const void *base) {
    for (size_t i = 0; i < n; i++) {
        int rc = trc_option_check(&opts[i], base);
        if (rc)
            return rc;
    }
    return TRC_OK;
}

int trc_option_set_number(const trc_option *o, double value, void *base) {
    char got[64];
    snprintf(got, sizeof got, "%g", value);
    switch (o->type) {
    case TRC_OPT_INT:
        if (value != floor(value) || !(fabs(value) <= 2147483647.0) ||
            (!is_auto(o, value) && !in_range(o, value, 0)))
            return refuse(o, got);
        *FIELD(o, base, int) = (int)value;
        return TRC_OK;
    case TRC_OPT_U64:
        if (!(value >= 0) || value != floor(value) || value >= 18446744073709551616.0)
            return refuse(o, got);
        *FIELD(o, base, uint64_t) = (uint64_t)value;
        return TRC_OK;
    case TRC_OPT_DOUBLE:
        if (!isfinite(value) || (!is_auto(o, value) && !in_range(o, value, 0)))
            return refuse(o, got);
        *FIELD(o, base, double) = value;
        return TRC_OK;
    case TRC_OPT_BOOL:
        if (value != 0 && value != 1)
            return refuse(o, got);
        *FIELD(o, base, int) = (int)value;
        return TRC_OK;
    case TRC_OPT_STRING:
    case TRC_OPT_ENUM:
        break;
    }
    return refuse(o, got);
}

int trc_option_set_u64(const trc_option *o, uint64_t value, void *base) {
    if (o->type != TRC_OPT_U64)
        return trc_option_set_number(o, (double)value, base);
    *FIELD(o, base, uint64_t) = value;
    return TRC_OK;
}

int trc_option_set_text(const trc_option *o, const char *text, void *base) {
    char got[64];
    snprintf(got, sizeof got, "'%.40s'", text ? text : "");
    if (!text || (o->type != TRC_OPT_STRING && o->type != TRC_OPT_ENUM))
        return refuse(o, got);
    if (has_choices(o)) {
        int k = trc_option_choice_index(o, text);
        if (k < 0)
            return refuse(o, got);
        if (o->type == TRC_OPT_ENUM) {
            *FIELD(o, base, int) = k;
            return TRC_OK;
        }
    } else if (!text[0]) {
        return refuse(o, got);
    }
    if (strlen(text) >= o->size)
        return trc_fail(TRC_EINVAL, "%s is too long (at most %zu characters)", o->name,
                        o->size ? o->size - 1 : 0);
    snprintf(FIELD(o, base, char), o->size, "%s", text);
    return TRC_OK;
}

/* Text -> number with the whole text consumed; integers exactly (no "1e3", no "1.0"). */
static int text_int(const char *t, long long *out) {
    if (!t || !*t || (*t != '-' && *t != '+' && (*t < '0' || *t > '9')))
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(t, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

static int text_u64(const char *t, uint64_t *out) {
    if (!t || *t < '0' || *t > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(t, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

static int text_double(const char *t, double *out) {
    if (!t || !*t || *t == ' ' || *t == '\t' || *t == '\n')
        return -1;
    char *end;
    errno = 0;
    double v = strtod(t, &end);
    if (*end || !isfinite(v) || (errno == ERANGE && fabs(v) > 1.0))
        return -1;
    *out = v;
    return 0;
}

int trc_option_parse(const trc_option *o, const char *text, const char *label, void *base) {
    const char *who = label ? label : o->name;
    char what[600];
    trc_option_describe(o, 0, what, sizeof what);
    int ok = 0;
    switch (o->type) {
    case TRC_OPT_INT: {
        long long v;
        ok = text_int(text, &v) == 0 && v >= -2147483647LL && v <= 2147483647LL &&
             (is_auto(o, (double)v) || in_range(o, (double)v, 0));
        if (ok)
            *FIELD(o, base, int) = (int)v;
        break;
    }
    case TRC_OPT_U64: {
        uint64_t v;
        ok = text_u64(text, &v) == 0;
        if (ok)
            *FIELD(o, base, uint64_t) = v;
        break;
    }
    case TRC_OPT_DOUBLE: {
        double v;
        ok = text_double(text, &v) == 0 && (is_auto(o, v) || in_range(o, v, 0));
        if (ok)
            *FIELD(o, base, double) = v;
        break;
    }
    case TRC_OPT_BOOL:
        ok = text && (!strcmp(text, "true") || !strcmp(text, "1") || !strcmp(text, "false") ||
                      !strcmp(text, "0"));
        if (ok)
            *FIELD(o, base, int) = !strcmp(text, "true") || !strcmp(text, "1");
        break;
    case TRC_OPT_STRING:
    case TRC_OPT_ENUM:
        if (!text || !*text)
            return trc_fail(TRC_EINVAL, "%s: empty value", who);
        if (has_choices(o)) {
            int k = trc_option_choice_index(o, text);
            if (k < 0) {
                char list[512];
                list_choices(o, list, sizeof list);
                return trc_fail(TRC_EINVAL, "%s%sunknown %s '%.80s' (known: %s)",
                                label ? label : "", label ? ": " : "", o->name, text, list);
            }
            ok = 1;
            if (o->type == TRC_OPT_ENUM)
                *FIELD(o, base, int) = k;
        } else {
            ok = 1;
        }
        if (ok && o->type == TRC_OPT_STRING) {
            if (strlen(text) >= o->size)
                return trc_fail(TRC_EINVAL, "%s: at most %zu characters, got '%.40s...'", who,
                                o->size ? o->size - 1 : 0, text);
            snprintf(FIELD(o, base, char), o->size, "%s", text);
        }
        break;
    }
    if (!ok)
        return trc_fail(TRC_EINVAL, "%s: expected %s, got '%.80s'", who, what, text ? text : "");
    return TRC_OK;
}
