/* A JSON text writer for large, regular responses: numbers are formatted straight into one
 * growing buffer, without a tree of jansson values and without printf for float32 values (the
 * /v1/control response is mostly float32 numbers; building it through jansson cost two
 * snprintf calls, a strtof, a strtod and a malloc per number: a fifth of trcd's CPU). */
#ifndef TRC_PROTO_JTEXT_H
#define TRC_PROTO_JTEXT_H

#include <stddef.h>

typedef struct jtext {
    char *buf;
    size_t len, cap;
    int failed;    /* out of memory */
    int nonfinite; /* a non-finite number was written (not written: JSON has none) */
} jtext;

/* Appends n bytes / a NUL-terminated literal. */
void jtext_raw(jtext *t, const char *s, size_t n);
void jtext_lit(jtext *t, const char *s);
/* A JSON string, escaped. */
void jtext_str(jtext *t, const char *s);
void jtext_int(jtext *t, long long v);
/* The shortest decimal (at most 9 significant digits) that reads back as the same float;
 * always a JSON real (4.0, not 4). A non-finite value sets nonfinite. */
void jtext_f32(jtext *t, float v);
/* A double with 9 significant digits (as jansson's JSON_REAL_PRECISION(9)); non-finite: as
 * jtext_f32. */
void jtext_f64(jtext *t, double v);

/* Writes the shortest float32 text (as jtext_f32) into buf (>= 32 bytes); returns its length,
 * 0 for a non-finite value. */
size_t proto_f32_text(float v, char *buf);
/* A finite double with 9 significant digits, correctly rounded (jtext_f64's text). */
size_t proto_f64_text(double v, char *buf);

#endif
