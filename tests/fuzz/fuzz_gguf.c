/*
 * libFuzzer target for the GGUF reader. The input is parsed in place (borrowed, so the
 * sanitizers see any read past the fuzzer's exact-size buffer); when it opens, every value is
 * formatted and queried through the typed getters, every tensor is checked and converted to
 * float, and the same bytes go through sotto_model_load_buffer. Build and run: docs/testing.md.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void touch_kv(const sotto_gguf *g, const sotto_gguf_kv *kv)
{
    char text[256], tiny[7];
    sotto_status st;
    sotto_gguf_kv_format(kv, text, sizeof text);
    sotto_gguf_kv_format(kv, tiny, sizeof tiny);
    const char *key = kv->key.data, *s;
    int64_t i64;
    int32_t i32;
    float f;
    double d;
    int b;
    int64_t ai[16];
    float af[16];
    size_t n;
    (void)sotto_gguf_get_i64(g, key, &i64, &st);
    (void)sotto_gguf_get_i32(g, key, &i32, &st);
    (void)sotto_gguf_get_f32(g, key, &f, &st);
    (void)sotto_gguf_get_f64(g, key, &d, &st);
    (void)sotto_gguf_get_bool(g, key, &b, &st);
    (void)sotto_gguf_get_str(g, key, &s, &st);
    (void)sotto_gguf_get_arr_i64(g, key, ai, 16, &n, &st);
    (void)sotto_gguf_get_arr_f32(g, key, af, 16, &n, &st);
    if (sotto_gguf_find_kv(g, key) != kv) abort(); /* keys are unique */
}

static void touch_tensor(const sotto_gguf *g, const sotto_gguf_tensor *t)
{
    sotto_status st;
    const sotto_gguf_tensor *found;
    if (sotto_gguf_tensor_check(g, t->name.data, t->dtype, t->n_dims, t->shape, &found, &st) !=
            SOTTO_OK ||
        found != t)
        abort(); /* a tensor always passes the check of its own description */
    (void)sotto_gguf_tensor_check(g, t->name.data, -1, t->n_dims, (const int64_t[]){1, 2, 3, 4},
                                  NULL, &st);
    float *v = malloc((size_t)t->n_elems * sizeof(float));
    if (!v) return;
    if (sotto_gguf_tensor_to_f32(t, v) != SOTTO_OK) abort();
    /* read the last element so an out-of-bounds conversion cannot hide */
    volatile float last = v[t->n_elems - 1];
    (void)last;
    free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sotto_gguf *g = NULL;
    sotto_status st;
    if (sotto_gguf_open_buffer(data, size, 0, NULL, &g, &st) == SOTTO_OK) {
        for (int64_t i = 0; i < sotto_gguf_kv_count(g); i++)
            touch_kv(g, sotto_gguf_kv_at(g, i));
        for (int64_t i = 0; i < sotto_gguf_tensor_count(g); i++)
            touch_tensor(g, sotto_gguf_tensor_at(g, i));
        sotto_gguf_close(g);
    } else if (g != NULL || st.code == SOTTO_OK || st.message[0] == '\0') {
        abort(); /* a failure must leave no reader and say why */
    }
    sotto_model *m = NULL;
    if (sotto_model_load_buffer(data, size, 0, NULL, &m, &st) == SOTTO_OK) {
        char v[64];
        for (int64_t i = 0; i < sotto_model_meta_count(m); i++)
            (void)sotto_model_meta(m, i, v, sizeof v);
        sotto_tensor_info ti;
        for (int64_t i = 0; i < sotto_model_tensor_count(m); i++)
            (void)sotto_model_tensor_info(m, i, &ti);
        sotto_model_free(m);
    }
    return 0;
}
