/* Per-thread error detail behind trc_errmsg(); see error.h. */
#include "trc/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char errbuf[1024];

const char *trc_strerror(int status) {
    switch (status) {
    case TRC_OK:
        return "success";
    case TRC_EINVAL:
        return "invalid argument";
    case TRC_ENOMEM:
        return "out of memory";
    case TRC_EIO:
        return "input/output error";
    case TRC_EFORMAT:
        return "malformed data";
    case TRC_ENOTFOUND:
        return "not found";
    case TRC_ECANCELED:
        return "cancelled";
    case TRC_ENUMERIC:
        return "non-finite value";
    case TRC_EUNSUPPORTED:
        return "unsupported";
    default:
        return "unknown error";
    }
}

const char *trc_errmsg(void) {
    return errbuf;
}

int trc_fail(int status, const char *fmt, ...) {
    /* Format into a local buffer first: callers may pass trc_errmsg() as an argument. */
    char msg[sizeof errbuf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(errbuf, msg, sizeof errbuf);
    return status;
}

int trc_fail_prefix(int status, const char *fmt, ...) {
    char prefix[512], old[sizeof errbuf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, errbuf, sizeof old);
    size_t n = strlen(prefix);
    if (n >= sizeof errbuf)
        n = sizeof errbuf - 1;
    memcpy(errbuf, prefix, n);
    size_t rest = strnlen(old, sizeof old - 1);
    if (rest > sizeof errbuf - 1 - n)
        rest = sizeof errbuf - 1 - n;
    memcpy(errbuf + n, old, rest);
    errbuf[n + rest] = 0;
    return status;
}
