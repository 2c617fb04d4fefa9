/*
 * SHA-256 (FIPS 180-4), incremental. Used for model identities (sotto_model_identity); a
 * plain portable implementation without SHA CPU extensions: several seconds per GB on one
 * core.
 *
 *     sotto_sha256 h;
 *     sotto_sha256_init(&h);
 *     sotto_sha256_update(&h, data, size);   // any number of times, any sizes
 *     sotto_sha256_final(&h, digest);        // 32 bytes; h must be re-initialised to reuse
 */
#ifndef SOTTO_SHA256_H
#define SOTTO_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SOTTO_SHA256_BYTES 32

typedef struct sotto_sha256 {
    uint32_t h[8];
    uint64_t n_bytes; /* message bytes so far */
    uint8_t buf[64];  /* pending partial block */
    size_t n_buf;
} sotto_sha256;

void sotto_sha256_init(sotto_sha256 *s);
void sotto_sha256_update(sotto_sha256 *s, const void *data, size_t size);
void sotto_sha256_final(sotto_sha256 *s, uint8_t digest[SOTTO_SHA256_BYTES]);
/* One call: digest of size bytes at data. */
void sotto_sha256_digest(const void *data, size_t size, uint8_t digest[SOTTO_SHA256_BYTES]);

#endif
