/* JSON text writer (see jtext.h). Float32 values are rounded to 7, 8 or 9 significant digits
 * with exact integer arithmetic (a float is mant * 2^e; the digits are mant * 2^e * 10^k
 * rounded half to even, in 128 bits), and the first that reads back as the same float is kept:
 * the same value snprintf("%.7g"/"%.9g") + strtof would choose, at a fraction of the cost. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jtext.h"

typedef unsigned __int128 u128;

static void grow(jtext *t, size_t need) {
    if (t->failed || t->len + need + 1 <= t->cap)
        return;
    size_t cap = t->cap ? t->cap : 1024;
    while (cap < t->len + need + 1)
        cap *= 2;
    char *p = realloc(t->buf, cap);
    if (!p) {
        t->failed = 1;
        return;
    }
    t->buf = p;
    t->cap = cap;
}

void jtext_raw(jtext *t, const char *s, size_t n) {
    grow(t, n);
    if (t->failed)
        return;
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

void jtext_lit(jtext *t, const char *s) {
    jtext_raw(t, s, strlen(s));
}

void jtext_str(jtext *t, const char *s) {
    static const char hex[] = "0123456789abcdef";
    jtext_raw(t, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p && !t->failed; p++) {
        /* a run of characters that need no escape goes in one copy (names, versions) */
        size_t run = 0;
        while (p[run] >= 0x20 && p[run] != '"' && p[run] != '\\')
            run++;
        if (run) {
            jtext_raw(t, (const char *)p, run);
            p += run - 1;
            continue;
        }
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t n = 2;
        switch (*p) {
        case '"':
        case '\\':
            esc[1] = (char)*p;
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 15];
            n = 6;
        }
        jtext_raw(t, esc, n);
    }
    jtext_raw(t, "\"", 1);
}

void jtext_int(jtext *t, long long v) {
    char b[24];
    int n = snprintf(b, sizeof b, "%lld", v);
    jtext_raw(t, b, (size_t)n);
}

/* Appends ".0" when text (length n) has neither a point nor an exponent: a JSON real. */
static size_t as_real(char *buf, size_t n) {
    if (!memchr(buf, '.', n) && !memchr(buf, 'e', n)) {
        memcpy(buf + n, ".0", 3);
        n += 2;
    }
    return n;
}

void jtext_f64(jtext *t, double v) {
    if (!isfinite(v)) {
        t->nonfinite = 1;
        return;
    }
    char b[40];
    size_t n = proto_f64_text(v, b);
    jtext_raw(t, b, n);
}

static u128 pow10_u128(int k) {
    u128 p = 1;
    while (k-- > 0)
        p *= 10;
    return p;
}

/* The first 9 significant digits t (truncated) and the decimal exponent *d of a = mant * 2^e
 * (a ~ t * 10^(*d - 8)): a * 10^(8 - *d) = num / den exactly, t = num / den, r = num % den,
 * num = mant * step. *d starts as an estimate of floor(log10(a)). One division (shifts for
 * values below 1e9). */
static uint64_t digits9(uint64_t mant, int e, int *d, u128 *num, u128 *den, u128 *r, u128 *step) {
    for (;;) {
        int k = 8 - *d, shift = e < 0 ? -e : 0;
        *step = 1;
        *den = 1;
        if (e >= 0)
            *step <<= e;
        else
            *den <<= -e;
        if (k >= 0)
            *step *= pow10_u128(k);
        else
            *den *= pow10_u128(-k);
        *num = *step * mant;
        u128 t;
        if (k >= 0) { /* den = 2^shift: shifts, not a 128-bit division */
            t = *num >> shift;
            *r = *num & (*den - 1);
        } else {
            t = *num / *den;
            *r = *num % *den;
        }
        if (t >= 1000000000u)
            (*d)++;
        else if (t < 100000000u)
            (*d)--;
        else
            return (uint64_t)t;
    }
}

/* 1 when the decimal q (prec digits, exponent d) reads back as the float mant * 2^e, i.e. lies
 * in its rounding interval (half a step to either neighbour, a quarter below a power of two;
 * the ends belong to an even mant). num / den is the float in units of 10^(d9 - 8) (digits9),
 * step / den the distance between floats. Exact, no strtof. */
static int reads_back(uint32_t mant, u128 num, u128 den, u128 step, uint64_t q, int prec, int d,
                      int d9) {
    u128 x = (u128)q * pow10_u128(9 - prec + d - d9) * den;
    int below = x < num;
    u128 diff = below ? num - x : x - num;
    u128 lhs = (below && mant == (1u << 23)) ? 4 * diff : 2 * diff;
    return lhs < step || (lhs == step && !(mant & 1));
}

/* t (9 digits, fraction r / den) rounded half to even to prec digits; *d moves on a carry. */
static uint64_t round_to(uint64_t t, u128 r, u128 den, int prec, int *d) {
    uint64_t div = 1;
    for (int i = prec; i < 9; i++)
        div *= 10;
    uint64_t q = t / div, rem = t % div;
    int cmp; /* the dropped part against one half of the last digit kept */
    if (div == 1)
        cmp = 2 * r > den ? 1 : (2 * r == den ? 0 : -1);
    else
        cmp = 2 * rem > div ? 1 : (2 * rem < div ? -1 : (r ? 1 : 0));
    if (cmp > 0 || (cmp == 0 && (q & 1)))
        q++;
    if (q == (uint64_t)pow10_u128(prec)) {
        q /= 10;
        (*d)++;
    }
    return q;
}

/* Writes q (prec digits, decimal exponent d), trailing zeros dropped. */
static size_t write_digits(char *p, uint64_t q, int prec, int d) {
    char dig[12] = {0};
    for (int i = prec - 1; i >= 0; i--, q /= 10)
        dig[i] = (char)('0' + q % 10);
    int nd = prec;
    while (nd > 1 && dig[nd - 1] == '0')
        nd--;
    /* the shorter of d.ddde+X and the fixed form (ties: fixed) */
    int fixed = d >= 0 ? (nd > d + 1 ? nd + 1 : d + 3) : 1 - d + nd;
    int sci = nd + (nd > 1) + (d <= -100 || d >= 100 ? 5 : 4);
    char *s = p;
    if (sci < fixed) {
        *s++ = dig[0];
        if (nd > 1) {
            *s++ = '.';
            memcpy(s, dig + 1, (size_t)nd - 1);
            s += nd - 1;
        }
        s += sprintf(s, "e%+03d", d);
    } else if (d >= 0) {
        for (int i = 0; i <= d; i++)
            *s++ = i < nd ? dig[i] : '0';
        *s++ = '.';
        if (nd > d + 1) {
            memcpy(s, dig + d + 1, (size_t)(nd - d - 1));
            s += nd - d - 1;
        } else {
            *s++ = '0';
        }
    } else {
        *s++ = '0';
        *s++ = '.';
        for (int i = 0; i < -d - 1; i++)
            *s++ = '0';
        memcpy(s, dig, (size_t)nd);
        s += nd;
    }
    *s = '\0';
    return (size_t)(s - p);
}

size_t proto_f32_text(float v, char *buf) {
    if (!isfinite(v))
        return 0;
    char *p = buf;
    if (signbit(v)) {
        *p++ = '-';
        v = -v;
    }
    if (v == 0.0f) {
        memcpy(p, "0.0", 4);
        return (size_t)(p - buf) + 3;
    }
    double a = v;
    if (a >= 1e-15 && a < 1e15) { /* normal floats whose digits fit 128-bit arithmetic */
        int be;
        double fr = frexp(a, &be); /* a = fr * 2^be, fr in [0.5, 1) */
        uint32_t mant = (uint32_t)ldexp(fr, 24);
        int e = be - 24, d9 = (int)floor(log10(a));
        u128 num, den, r, step;
        uint64_t t = digits9(mant, e, &d9, &num, &den, &r, &step);
        for (int prec = 7; prec <= 9; prec++) {
            int d = d9;
            uint64_t q = round_to(t, r, den, prec, &d);
            if (reads_back(mant, num, den, step, q, prec, d, d9))
                return (size_t)(p - buf) + write_digits(p, q, prec, d);
        }
    }
    /* elsewhere (tiny or huge): the C library's digits, 7 if they read back, else 9 */
    int n = snprintf(p, 24, "%.7g", a);
    if (strtof(p, NULL) != v)
        n = snprintf(p, 24, "%.9g", a);
    return (size_t)(p - buf) + as_real(p, (size_t)n);
}

size_t proto_f64_text(double v, char *buf) {
    char *p = buf;
    if (signbit(v)) {
        *p++ = '-';
        v = -v;
    }
    if (v == 0.0) {
        memcpy(p, "0.0", 4);
        return (size_t)(p - buf) + 3;
    }
    if (v >= 1e-6 && v < 1e15) { /* the digits fit 128-bit arithmetic */
        int be;
        double fr = frexp(v, &be);
        int d = (int)floor(log10(v));
        u128 num, den, r, step;
        uint64_t t = digits9((uint64_t)ldexp(fr, 53), be - 53, &d, &num, &den, &r, &step);
        return (size_t)(p - buf) + write_digits(p, round_to(t, r, den, 9, &d), 9, d);
    }
    int n = snprintf(p, 32, "%.9g", v);
    return (size_t)(p - buf) + as_real(p, (size_t)n);
}

void jtext_f32(jtext *t, float v) {
    char b[40];
    size_t n = proto_f32_text(v, b);
    if (!n) {
        t->nonfinite = 1;
        return;
    }
    jtext_raw(t, b, n);
}
