/* A generated bearer token for a trcd listening beyond loopback (see api_token.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api_token.h"
#include "log.h"
#include "trc/fileio.h"

#define TOKEN_HEX 64 /* 32 random bytes */

static char token[TOKEN_HEX + 1]; /* lives as long as the process, like cfg */

int api_token_host_is_loopback(const char *host) {
    return !strcmp(host, "localhost") || !strcmp(host, "::1") || !strcmp(host, "[::1]") ||
           !strncmp(host, "127.", 4);
}

static int is_token(const char *s, size_t len) {
    if (len != TOKEN_HEX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!strchr("0123456789abcdef", s[i]))
            return 0;
    return 1;
}

/* Reads a token a previous run stored; 0 when there is a valid one owned only by us. */
static int read_stored(const char *path) {
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    char buf[TOKEN_HEX + 2];
    ssize_t n = -1;
    if (!fstat(fd, &st) && S_ISREG(st.st_mode) && !(st.st_mode & 077))
        n = read(fd, buf, sizeof buf);
    close(fd);
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (n < 0 || !is_token(buf, (size_t)n))
        return -1;
    memcpy(token, buf, TOKEN_HEX);
    token[TOKEN_HEX] = '\0';
    return 0;
}

static int make_and_store(const char *path, char *err, size_t errlen) {
    unsigned char raw[TOKEN_HEX / 2];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        snprintf(err, errlen, "cannot generate an API token: %s", strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(token + 2 * i, 3, "%02x", raw[i]);
    char tmp[4096], line[TOKEN_HEX + 1];
    int fd;
    if (trc_create_tmp(path, tmp, sizeof tmp, &fd)) {
        snprintf(err, errlen, "cannot store the generated API token in api-token of --data-dir: %s",
                 strerror(errno));
        return -1;
    }
    memcpy(line, token, TOKEN_HEX);
    line[TOKEN_HEX] = '\n';
    int ok = fchmod(fd, 0600) == 0 && write(fd, line, sizeof line) == (ssize_t)sizeof line;
    ok = close(fd) == 0 && ok;
    if (!ok || trc_commit_file(tmp, path)) {
        if (!ok)
            unlink(tmp);
        snprintf(err, errlen, "cannot store the generated API token in api-token of --data-dir");
        return -1;
    }
    return 0;
}

int api_token_ensure(app_config *cfg, char *err, size_t errlen) {
    if (cfg->api_token || cfg->insecure_no_auth || api_token_host_is_loopback(cfg->host))
        return 0;
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/api-token", cfg->data_dir) >= sizeof path) {
        snprintf(err, errlen, "--data-dir is too long");
        return -1;
    }
    if (trc_mkdir_p(cfg->data_dir)) {
        snprintf(err, errlen, "cannot create --data-dir: %s", strerror(errno));
        return -1;
    }
    int reused = read_stored(path) == 0;
    if (!reused && make_and_store(path, err, errlen))
        return -1;
    cfg->api_token = token;
    log_msg("listening on %s with no TRC_API_TOKEN: state-changing routes need "
            "'Authorization: Bearer %s' (%s api-token in the data directory; "
            "--insecure-no-auth turns this off)",
            cfg->host, token, reused ? "kept in" : "stored in");
    return 0;
}
