/* SHA-256 (FIPS 180-4) for checkpoint versions: a model's version is the digest of its file. */
#ifndef TRCD_SHA256_H
#define TRCD_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct sha256_ctx {
    uint32_t h[8];
    uint64_t bits;
    uint8_t block[64];
    size_t used;
} sha256_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const void *data, size_t len);
void sha256_final(sha256_ctx *c, uint8_t out[32]);
/* The digest of buf as 64 lowercase hex characters + NUL. */
void sha256_hex(const void *buf, size_t len, char out[65]);

#endif
