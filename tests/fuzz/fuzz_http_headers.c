/* libFuzzer harness for the header rules of trcd's HTTP layer (server/http_rules.c): framing
 * (Content-Length / Transfer-Encoding, request smuggling), Content-Type classes and the
 * cross-site Origin check. The input is lines: "L:<Content-Length value>",
 * "T:<Transfer-Encoding value>", "C:<Content-Type>", "O:<Origin>", "H:<Host>".
 * Run through `make fuzz` (tests/fuzz/README.md).
 *
 * What must hold: framing answers 0, 400 or 501; 0 only with at most one kind of header, every
 * Content-Length value all digits and equal to the length given, "chunked" alone; both kinds
 * are always 400; a refusal has a message. An Origin built from the Host is same-site. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../server/http_rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXV 4

static int all_digits(const char *s) {
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = 0;
    while (isdigit((unsigned char)s[n]))
        n++;
    const char *t = s + n;
    while (*t == ' ' || *t == '\t')
        t++;
    return n > 0 && n <= 18 && *t == '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *in = malloc(size + 1);
    if (!in)
        return 0;
    memcpy(in, data, size);
    in[size] = '\0';
    const char *cl[MAXV], *te[MAXV], *ct = NULL, *origin = NULL, *host = NULL;
    size_t ncl = 0, nte = 0;
    for (char *line = in, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (strlen(line) < 2 || line[1] != ':')
            continue;
        const char *v = line + 2;
        switch (line[0]) {
        case 'L':
            if (ncl < MAXV)
                cl[ncl++] = v;
            break;
        case 'T':
            if (nte < MAXV)
                te[nte++] = v;
            break;
        case 'C':
            ct = v;
            break;
        case 'O':
            origin = v;
            break;
        case 'H':
            host = v;
            break;
        default:
            break;
        }
    }
    unsigned long long len = 7;
    int chunked = 7;
    char msg[256] = "";
    int st = rules_framing(cl, ncl, te, nte, &len, &chunked, msg, sizeof msg);
    if (st != 0 && st != 400 && st != 501)
        abort();
    if (st != 0 && !msg[0])
        abort();
    if (ncl && nte && st != 400)
        abort();
    if (st == 0) {
        if (chunked != (nte == 1) || (nte && ncl))
            abort();
        for (size_t i = 0; i < ncl; i++) {
            if (!all_digits(cl[i]))
                abort();
            const char *s = cl[i];
            while (*s == ' ' || *s == '\t')
                s++;
            if (strtoull(s, NULL, 10) != len)
                abort();
        }
        if (!ncl && len != 0)
            abort();
    }
    rules_ctype c = rules_content_type(ct);
    if (c < CTYPE_NONE || c > CTYPE_OTHER || (c == CTYPE_NONE) != (ct == NULL))
        abort();
    int cross = rules_cross_site(origin, host);
    if (cross != 0 && cross != 1)
        abort();
    if (!origin && cross)
        abort();
    /* the page's own origin is never cross-site when the Host is a plain host[:port] */
    if (host && host[0] && strlen(host) < 200 &&
        strspn(host, "abcdefghijklmnopqrstuvwxyz0123456789.-") == strlen(host)) {
        char own[256];
        snprintf(own, sizeof own, "http://%s", host);
        if (rules_cross_site(own, host))
            abort();
    }
    free(in);
    return 0;
}
