/*
 * sotto_model_identity: SHA-256 of what makes a model's tokens mean what they mean (its
 * architecture and every tensor: name, dtype, shape, bytes), in the byte order
 * docs/bitstream.md specifies ("Model identity"), so another implementation (the converter,
 * a Python tool) can compute the same 32 bytes from a GGUF file. Other metadata (name,
 * converter version, comments) is left out on purpose: renaming a model keeps its identity.
 *
 * Computed on the first call and cached in the model. The model is shared between threads,
 * so the cache is published without a lock: every first caller hashes on its own (concurrent
 * first calls do the work twice, never wait), one of them stores the bytes and then sets
 * identity_state to 2 with release order; a caller that reads 2 with acquire order copies
 * them. Nobody reads the bytes before that, so there is no data race.
 */
#include <stdlib.h>
#include <string.h>

#include "core/model.h"
#include "core/sha256.h"

#define IDENTITY_TAG "sotto-model-identity-v1"

static void put_u64(sotto_sha256 *h, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    sotto_sha256_update(h, b, sizeof b);
}

static void put_u32(sotto_sha256 *h, uint32_t v)
{
    uint8_t b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    sotto_sha256_update(h, b, sizeof b);
}

static int by_name(const void *a, const void *b)
{
    const sotto_gguf_tensor *x = *(const sotto_gguf_tensor *const *)a;
    const sotto_gguf_tensor *y = *(const sotto_gguf_tensor *const *)b;
    return strcmp(x->name.data, y->name.data);
}

static int compute(const sotto_model *m, uint8_t out[SOTTO_SHA256_BYTES])
{
    const int64_t n = sotto_gguf_tensor_count(m->gguf);
    const sotto_gguf_tensor **ts = NULL;
    if (n > 0) {
        size_t bytes;
        if (sotto_mul_size((size_t)n, sizeof *ts, &bytes) || !(ts = sotto_malloc(&m->alloc, bytes)))
            return SOTTO_ERR_OUT_OF_MEMORY;
        for (int64_t i = 0; i < n; i++)
            ts[i] = sotto_gguf_tensor_at(m->gguf, i);
        qsort(ts, (size_t)n, sizeof *ts, by_name);
    }
    sotto_sha256 h;
    sotto_sha256_init(&h);
    sotto_sha256_update(&h, IDENTITY_TAG, strlen(IDENTITY_TAG));
    const char *arch = m->arch ? m->arch : "";
    put_u64(&h, strlen(arch));
    sotto_sha256_update(&h, arch, strlen(arch));
    put_u64(&h, (uint64_t)n);
    for (int64_t i = 0; i < n; i++) {
        const sotto_gguf_tensor *t = ts[i];
        put_u64(&h, t->name.len);
        sotto_sha256_update(&h, t->name.data, (size_t)t->name.len);
        put_u32(&h, (uint32_t)t->dtype);
        put_u32(&h, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++)
            put_u64(&h, (uint64_t)t->shape[d]);
        put_u64(&h, t->n_bytes);
        sotto_sha256_update(&h, t->data, (size_t)t->n_bytes);
    }
    sotto_sha256_final(&h, out);
    sotto_free(&m->alloc, ts);
    return SOTTO_OK;
}

int sotto_model_identity(const sotto_model *model, uint8_t out[32])
{
    if (!model || !out || !model->gguf) return SOTTO_ERR_INVALID_ARG;
    /* The cache is the one part of a loaded model written later; the object itself was
     * allocated writable by the loader. */
    sotto_model *m = (sotto_model *)model;
    if (atomic_load_explicit(&m->identity_state, memory_order_acquire) == 2) {
        memcpy(out, m->identity, SOTTO_SHA256_BYTES);
        return SOTTO_OK;
    }
    uint8_t id[SOTTO_SHA256_BYTES];
    int rc = compute(model, id);
    if (rc) return rc;
    int expected = 0;
    if (atomic_compare_exchange_strong_explicit(&m->identity_state, &expected, 1,
                                                memory_order_acq_rel, memory_order_acquire)) {
        memcpy(m->identity, id, SOTTO_SHA256_BYTES);
        atomic_store_explicit(&m->identity_state, 2, memory_order_release);
    }
    memcpy(out, id, SOTTO_SHA256_BYTES);
    return SOTTO_OK;
}
