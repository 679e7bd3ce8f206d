/* The request rules of trcd's HTTP layer that need no HTTP library, so they can be unit-tested
 * and fuzzed on their own (tests/unit/server/test_router.c, tests/fuzz/fuzz_http_rules.c):
 * message framing (Content-Length / Transfer-Encoding, the request-smuggling rules of
 * RFC 9112 section 6.3), Content-Type classes and the cross-site Origin check. */
#ifndef TRCD_HTTP_RULES_H
#define TRCD_HTTP_RULES_H

#include <stddef.h>

/* Parses a Content-Length value: decimal digits only (no sign, no spaces inside, no list), at
 * most 18 digits. Returns 0 and *out, or -1. */
int rules_content_length(const char *s, unsigned long long *out);

/* Decides the framing of a request from all its Content-Length values (cl[0..ncl)) and all its
 * Transfer-Encoding values (te[0..nte)). Returns 0 with *length (0 when none) and *chunked, or
 * the status to answer with a message: 400 for a malformed or conflicting Content-Length or
 * both headers at once, 501 for a transfer coding other than "chunked". */
int rules_framing(const char *const *cl, size_t ncl, const char *const *te, size_t nte,
                  unsigned long long *length, int *chunked, char *msg, size_t msglen);

typedef enum {
    CTYPE_NONE,  /* no Content-Type */
    CTYPE_JSON,  /* application/json */
    CTYPE_RAW,   /* application/octet-stream */
    CTYPE_FORM,  /* application/x-www-form-urlencoded: curl -d's default; accepted when the body
                    parses as JSON */
    CTYPE_OTHER, /* anything else: multipart, text/plain, text/xml, ... (415) */
} rules_ctype;

/* The class of a Content-Type value (media type compared case-insensitively, parameters such
 * as "; charset=utf-8" ignored). */
rules_ctype rules_content_type(const char *ct);

/* 1 when a request with this Origin comes from another site than the Host it was sent to
 * ("null" and unparsable origins count as cross-site); 0 for no Origin or the same
 * host[:port]. Default ports (80 for http, 443 for https) compare equal to none. */
int rules_cross_site(const char *origin, const char *host);

#endif
