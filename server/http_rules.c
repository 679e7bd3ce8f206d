/* Request rules without an HTTP library (see http_rules.h). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http_rules.h"

int rules_content_length(const char *s, unsigned long long *out) {
    unsigned long long v = 0;
    size_t n = 0;
    for (; s[n]; n++) {
        if (s[n] < '0' || s[n] > '9' || n == 18)
            return -1;
        v = v * 10 + (unsigned long long)(s[n] - '0');
    }
    if (n == 0)
        return -1;
    *out = v;
    return 0;
}

/* Trims spaces and tabs at both ends of s[0..n) into out (at most cap-1 bytes, lower case). */
static void trim_lower(const char *s, size_t n, char *out, size_t cap) {
    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n >= cap)
        n = cap - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[n] = '\0';
}

int rules_framing(const char *const *cl, size_t ncl, const char *const *te, size_t nte,
                  unsigned long long *length, int *chunked, char *msg, size_t msglen) {
    *length = 0;
    *chunked = 0;
    if (ncl && nte) {
        snprintf(msg, msglen,
                 "a request must not have both Content-Length and "
                 "Transfer-Encoding");
        return 400;
    }
    for (size_t i = 0; i < ncl; i++) {
        char v[32];
        trim_lower(cl[i], strlen(cl[i]), v, sizeof v);
        unsigned long long x;
        if (strlen(cl[i]) >= sizeof v || rules_content_length(v, &x)) {
            snprintf(msg, msglen, "Content-Length must be a number of bytes, got '%.40s'", cl[i]);
            return 400;
        }
        if (i > 0 && x != *length) {
            snprintf(msg, msglen, "conflicting Content-Length headers (%llu and %llu)", *length, x);
            return 400;
        }
        *length = x;
    }
    if (nte) {
        /* exactly one coding, "chunked": content codings (gzip, ...) are not supported, and
         * "identity" is obsolete (RFC 9112) */
        char v[64];
        const char *s = te[0];
        trim_lower(s, strlen(s), v, sizeof v);
        if (nte > 1 || strcmp(v, "chunked") != 0) {
            snprintf(msg, msglen, "Transfer-Encoding '%.40s'%s is not supported (only \"chunked\")",
                     s, nte > 1 ? " (and more)" : "");
            return 501;
        }
        *chunked = 1;
    }
    return 0;
}

rules_ctype rules_content_type(const char *ct) {
    static const struct {
        const char *type;
        rules_ctype cls;
    } known[] = {
        {"application/json", CTYPE_JSON},
        {"application/octet-stream", CTYPE_RAW},
        {"application/x-www-form-urlencoded", CTYPE_FORM},
    };
    if (!ct)
        return CTYPE_NONE;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, "; \t");
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strlen(known[i].type) == n && strncasecmp(ct, known[i].type, n) == 0) {
            const char *rest = ct + n;
            while (*rest == ' ' || *rest == '\t')
                rest++;
            return *rest == '\0' || *rest == ';' ? known[i].cls : CTYPE_OTHER;
        }
    return CTYPE_OTHER;
}

/* Splits "host[:port]" (or "[v6]:port") into a lower-case host and a port ("" when none). */
static int split_authority(const char *a, size_t n, char *host, size_t hcap, char *port,
                           size_t pcap) {
    const char *colon = NULL;
    if (n && a[0] == '[') {
        const char *end = memchr(a, ']', n);
        if (!end)
            return -1;
        if ((size_t)(end - a) + 1 < n) {
            if (end[1] != ':')
                return -1;
            colon = end + 1;
        }
    } else {
        colon = memchr(a, ':', n);
    }
    size_t hn = colon ? (size_t)(colon - a) : n;
    size_t pn = colon ? n - hn - 1 : 0;
    if (hn == 0 || hn >= hcap || pn >= pcap)
        return -1;
    for (size_t i = 0; i < hn; i++)
        host[i] = (char)tolower((unsigned char)a[i]);
    host[hn] = '\0';
    for (size_t i = 0; i < pn; i++)
        if (!isdigit((unsigned char)colon[1 + i]))
            return -1;
    memcpy(port, colon ? colon + 1 : "", pn);
    port[pn] = '\0';
    return 0;
}

int rules_cross_site(const char *origin, const char *host) {
    if (!origin)
        return 0;
    const char *def;
    size_t skip;
    if (strncasecmp(origin, "http://", 7) == 0) {
        def = "80";
        skip = 7;
    } else if (strncasecmp(origin, "https://", 8) == 0) {
        def = "443";
        skip = 8;
    } else {
        return 1; /* "null", file:, chrome-extension:, garbage */
    }
    const char *a = origin + skip;
    size_t an = strcspn(a, "/?#");
    if (a[an] != '\0' && !(a[an] == '/' && a[an + 1] == '\0'))
        return 1; /* an Origin has no path */
    char oh[256], op[8], hh[256], hp[8];
    if (!host || split_authority(a, an, oh, sizeof oh, op, sizeof op) ||
        split_authority(host, strlen(host), hh, sizeof hh, hp, sizeof hp))
        return 1;
    const char *o_port = op[0] ? op : def, *h_port = hp[0] ? hp : def;
    return strcmp(oh, hh) != 0 || strcmp(o_port, h_port) != 0;
}
