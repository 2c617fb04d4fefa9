/*
 * The transformer layers (nn/attn.h) against PyTorch: fixtures written by
 * tools/golden/attn.py (a pre-norm layer in torch float32 with SDPA attention, masks, both
 * RoPE conventions, LayerScale and four activations, on seeded random data, time-major).
 * Layers are prepared from the fixture's GGUF tensors as a model loader does; one case is also
 * prepared from float arrays with separate Q/K/V projections. Every case runs on the SIMD
 * context, the scalar context (features mask 0) and a 2-thread pool.
 * Tolerances: max-abs 1e-5 against torch for layer outputs, sublayers and RoPE (data of unit
 * scale, outputs up to |y| ≈ 5); streaming through the KV cache in chunks of 1, 3 and 7
 * frames (and mixed) equals the whole-sequence run to 1e-5.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/threadpool.h"
#include "nn/attn.h"
#include "testutil.h"

#define TOL 1e-5
#define FIXTURE "attn/layer.gguf"

static sotto_alloc g_a;
static sotto_cpu g_ctx[3];
static const char *const g_ctx_name[3] = {"simd", "scalar", "2 threads"};
static sotto_threadpool *g_tp;

static const char *const g_cases[] = {"full_plain",    "full_half_ls",    "causal_inter",
                                      "local_inter",   "local_sym_relu",  "causal_plain_bias",
                                      "rms_half_silu", "local_half_relu", "noaffine_inter"};

static const sotto_gguf_tensor *tensor(const sotto_gguf *g, const char *name)
{
    const sotto_gguf_tensor *t = sotto_gguf_find_tensor(g, name);
    if (!t) fprintf(stderr, "fixture has no tensor '%s'\n", name);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    return t;
}

static float *floats(const sotto_gguf *g, const char *c, const char *key, int64_t *n)
{
    char name[128];
    snprintf(name, sizeof name, "%s.%s", c, key);
    float *p = tu_golden_f32(g, name, n, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    return p;
}

static int meta_i(const sotto_gguf *g, const char *c, const char *key)
{
    char name[128];
    int32_t v = 0;
    snprintf(name, sizeof name, "%s.%s", c, key);
    CU_ASSERT_EQUAL(sotto_gguf_get_i32(g, name, &v, NULL), SOTTO_OK);
    return v;
}

static int meta_b(const sotto_gguf *g, const char *c, const char *key)
{
    char name[128];
    int v = 0;
    snprintf(name, sizeof name, "%s.%s", c, key);
    CU_ASSERT_EQUAL(sotto_gguf_get_bool(g, name, &v, NULL), SOTTO_OK);
    return v;
}

static const char *meta_s(const sotto_gguf *g, const char *c, const char *key)
{
    char name[128];
    const char *v = "";
    snprintf(name, sizeof name, "%s.%s", c, key);
    CU_ASSERT_EQUAL(sotto_gguf_get_str(g, name, &v, NULL), SOTTO_OK);
    return v;
}

static double meta_f(const sotto_gguf *g, const char *c, const char *key)
{
    char name[128];
    double v = 0;
    snprintf(name, sizeof name, "%s.%s", c, key);
    CU_ASSERT_EQUAL(sotto_gguf_get_f64(g, name, &v, NULL), SOTTO_OK);
    return v;
}

/* A case's configuration and which shared tensors it uses. */
typedef struct case_cfg {
    sotto_tlayer_cfg cfg;
    int affine, bias, ls, pos0;
} case_cfg;

static case_cfg read_case(const sotto_gguf *g, const char *c)
{
    int32_t dim = 0, heads = 0, ffn = 0;
    CU_ASSERT_EQUAL(sotto_gguf_get_i32(g, "dim", &dim, NULL), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_gguf_get_i32(g, "n_heads", &heads, NULL), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_gguf_get_i32(g, "ffn_dim", &ffn, NULL), SOTTO_OK);
    case_cfg k;
    k.cfg = sotto_tlayer_cfg_default(dim, heads, ffn);
    k.cfg.norm = strcmp(meta_s(g, c, "norm"), "rms") ? SOTTO_NORM_LAYER : SOTTO_NORM_RMS;
    k.cfg.norm_eps = (float)meta_f(g, c, "eps");
    const char *act = meta_s(g, c, "act");
    k.cfg.act = !strcmp(act, "gelu_tanh") ? SOTTO_ACT_GELU_TANH
                : !strcmp(act, "relu")    ? SOTTO_ACT_RELU
                : !strcmp(act, "silu")    ? SOTTO_ACT_SILU
                                          : SOTTO_ACT_GELU_ERF;
    const char *rope = meta_s(g, c, "rope");
    k.cfg.rope = !strcmp(rope, "interleaved") ? SOTTO_ROPE_INTERLEAVED
                 : !strcmp(rope, "half")      ? SOTTO_ROPE_HALF
                                              : SOTTO_ROPE_NONE;
    k.cfg.rope_theta = (float)meta_f(g, c, "rope_theta");
    k.cfg.causal = meta_i(g, c, "causal");
    k.cfg.window = meta_i(g, c, "window");
    k.affine = meta_b(g, c, "affine");
    k.bias = meta_b(g, c, "bias");
    k.ls = meta_b(g, c, "layerscale");
    k.pos0 = meta_i(g, c, "pos0");
    return k;
}

/* The layer of case c from the fixture's tensors (fused QKV). */
static void load_layer(const sotto_gguf *g, const case_cfg *k, sotto_tlayer *L)
{
    sotto_tlayer_tensors t;
    memset(&t, 0, sizeof t);
    t.qkv_w = tensor(g, "w.qkv_w");
    t.out_w = tensor(g, "w.out_w");
    t.ff1_w = tensor(g, "w.ff1_w");
    t.ff2_w = tensor(g, "w.ff2_w");
    if (k->affine) {
        t.norm1_w = tensor(g, "w.n1_w");
        t.norm2_w = tensor(g, "w.n2_w");
        if (k->cfg.norm == SOTTO_NORM_LAYER) {
            t.norm1_b = tensor(g, "w.n1_b");
            t.norm2_b = tensor(g, "w.n2_b");
        }
    }
    if (k->bias) {
        t.qkv_b = tensor(g, "w.qkv_b");
        t.out_b = tensor(g, "w.out_b");
        t.ff1_b = tensor(g, "w.ff1_b");
        t.ff2_b = tensor(g, "w.ff2_b");
    }
    if (k->ls) {
        t.ls1 = tensor(g, "w.ls1");
        t.ls2 = tensor(g, "w.ls2");
    }
    sotto_status st;
    sotto_status_clear(&st);
    const int rc = sotto_tlayer_init(L, &k->cfg, &t, &g_a, &st);
    if (rc) fprintf(stderr, "tlayer_init: %s\n", st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
}

static float *alloc_f(size_t n)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    return p;
}

/* ---- whole sequences ---------------------------------------------------------------------- */

static void test_layers(void)
{
    sotto_gguf *g = tu_golden_open(FIXTURE);
    if (!g) return;
    int64_t nx, sh[4];
    float *x = tu_golden_f32(g, "x", &nx, sh);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    const int64_t T = sh[0];
    float *got = alloc_f((size_t)nx);
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(g_cases); i++) {
        const char *c = g_cases[i];
        const case_cfg k = read_case(g, c);
        sotto_tlayer L;
        load_layer(g, &k, &L);
        int64_t ny;
        float *y = floats(g, c, "y", &ny);
        CU_ASSERT_EQUAL(ny, nx);
        const size_t ns = sotto_tlayer_scratch_size(&L, T);
        CU_ASSERT_TRUE(ns > 0);
        float *scratch = alloc_f(ns);
        for (int j = 0; j < 3; j++) {
            memset(got, 0, sizeof(float) * (size_t)nx);
            CU_ASSERT_EQUAL(sotto_tlayer_forward(&g_ctx[j], &L, x, T, k.pos0, got, scratch),
                            SOTTO_OK);
            char what[96];
            snprintf(what, sizeof what, "layer %s (%s)", c, g_ctx_name[j]);
            TU_ASSERT_CLOSE(what, got, y, ny, TOL, -1);
        }
        /* in place */
        memcpy(got, x, sizeof(float) * (size_t)nx);
        CU_ASSERT_EQUAL(sotto_tlayer_forward(&g_ctx[0], &L, got, T, k.pos0, got, scratch),
                        SOTTO_OK);
        char what[96];
        snprintf(what, sizeof what, "layer %s (in place)", c);
        TU_ASSERT_CLOSE(what, got, y, ny, TOL, -1);
        sotto_tlayer_free(&L, &g_a);
        free(y);
        free(scratch);
    }
    free(x);
    free(got);
    sotto_gguf_close(g);
}

/* Separate Q/K/V projections (stacked at load), f32 arrays, and f16-stored weights. */
static void test_split_qkv_and_f16(void)
{
    sotto_gguf *g = tu_golden_open(FIXTURE);
    if (!g) return;
    const char *c = "full_plain"; /* no RoPE: a key bias cannot change the result */
    const case_cfg k = read_case(g, c);
    const int d = k.cfg.dim;
    int64_t nx, sh[4], ny;
    float *x = tu_golden_f32(g, "x", &nx, sh), *y = floats(g, c, "y", &ny);
    const char *names[] = {"w.n1_w", "w.n1_b", "w.qkv_w", "w.qkv_b", "w.out_w", "w.out_b", "w.ls1",
                           "w.n2_w", "w.n2_b", "w.ff1_w", "w.ff1_b", "w.ff2_w", "w.ff2_b", "w.ls2"};
    float *w[SOTTO_ARRAY_LEN(names)];
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(names); i++) {
        w[i] = tu_golden_f32(g, names[i], NULL, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(w[i]);
    }
    const size_t dd = (size_t)d * d;
    sotto_tlayer_f32 f;
    memset(&f, 0, sizeof f);
    f.norm1_w = w[0];
    f.norm1_b = w[1];
    f.q_w = w[2];
    f.k_w = w[2] + dd;
    f.v_w = w[2] + 2 * dd;
    f.q_b = w[3];
    f.k_b = NULL; /* checked below against a zero key bias */
    f.v_b = w[3] + 2 * d;
    f.out_w = w[4];
    f.out_b = w[5];
    f.ls1 = k.ls ? w[6] : NULL;
    f.norm2_w = w[7];
    f.norm2_b = w[8];
    f.ff1_w = w[9];
    f.ff1_b = w[10];
    f.ff2_w = w[11];
    f.ff2_b = w[12];
    f.ls2 = k.ls ? w[13] : NULL;
    const int64_t T = sh[0];
    float *got = alloc_f((size_t)nx), *ref = alloc_f((size_t)nx);

    /* reference for a zero key bias: the fused layer with qkv_b[d, 2d) = 0 (a key bias
     * shifts every score of a query by the same amount, so the result must not change) */
    sotto_tlayer L;
    CU_ASSERT_EQUAL_FATAL(sotto_tlayer_init_f32(&L, &k.cfg, &f, &g_a, NULL), SOTTO_OK);
    float *scratch = alloc_f(sotto_tlayer_scratch_size(&L, T));
    for (int j = 0; j < 3; j++) {
        CU_ASSERT_EQUAL(sotto_tlayer_forward(&g_ctx[j], &L, x, T, k.pos0, got, scratch), 0);
        char what[96];
        snprintf(what, sizeof what, "separate q/k/v, no key bias (%s)", g_ctx_name[j]);
        TU_ASSERT_CLOSE(what, got, y, ny, TOL, -1);
    }
    sotto_tlayer_free(&L, &g_a);
    sotto_tlayer_free(&L, &g_a); /* twice is safe */

    /* f16-stored weights: within f16 rounding of the f32 result */
    f.k_b = w[3] + d;
    sotto_tlayer_cfg c16 = k.cfg;
    c16.keep_f16 = 1;
    CU_ASSERT_EQUAL_FATAL(sotto_tlayer_init_f32(&L, &c16, &f, &g_a, NULL), SOTTO_OK);
    CU_ASSERT_TRUE(L.qkv.is_f16 && L.out.is_f16 && L.ff1.is_f16 && L.ff2.is_f16);
    CU_ASSERT_EQUAL(sotto_tlayer_forward(&g_ctx[0], &L, x, T, k.pos0, ref, scratch), 0);
    double ymax = 0;
    for (int64_t i = 0; i < ny; i++)
        ymax = fmax(ymax, fabs(y[i]));
    TU_ASSERT_CLOSE("f16-stored weights vs torch f32", ref, y, ny, 1e-3 * ymax, -1);
    sotto_tlayer_free(&L, &g_a);
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(names); i++)
        free(w[i]);
    free(x);
    free(y);
    free(got);
    free(ref);
    free(scratch);
    sotto_gguf_close(g);
}

/* The sublayers against the fixture's intermediates. */
static void test_sublayers(void)
{
    sotto_gguf *g = tu_golden_open(FIXTURE);
    if (!g) return;
    const char *cases[] = {"full_half_ls", "local_inter"};
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(cases); i++) {
        const char *c = cases[i];
        const case_cfg k = read_case(g, c);
        sotto_tlayer L;
        load_layer(g, &k, &L);
        int64_t n, sh[4];
        char name[64];
        snprintf(name, sizeof name, "%s.h1", c);
        float *h1 = tu_golden_f32(g, name, &n, sh);
        CU_ASSERT_PTR_NOT_NULL_FATAL(h1);
        float *attn = floats(g, c, "attn", NULL), *h2 = floats(g, c, "h2", NULL);
        float *ff = floats(g, c, "ffn", NULL);
        const int64_t T = sh[0];
        float *got = alloc_f((size_t)n), *scratch = alloc_f(sotto_tlayer_scratch_size(&L, T));
        for (int j = 0; j < 3; j++) {
            char what[96];
            CU_ASSERT_EQUAL(
                sotto_tlayer_self_attn(&g_ctx[j], &L, NULL, h1, T, k.pos0, got, scratch), 0);
            snprintf(what, sizeof what, "self-attention %s (%s)", c, g_ctx_name[j]);
            TU_ASSERT_CLOSE(what, got, attn, n, TOL, -1);
            CU_ASSERT_EQUAL(sotto_tlayer_ffn(&g_ctx[j], &L, h2, T, got, scratch), 0);
            snprintf(what, sizeof what, "ffn %s (%s)", c, g_ctx_name[j]);
            TU_ASSERT_CLOSE(what, got, ff, n, TOL, -1);
        }
        sotto_tlayer_free(&L, &g_a);
        free(h1);
        free(attn);
        free(h2);
        free(ff);
        free(got);
        free(scratch);
    }
    sotto_gguf_close(g);
}

static void test_rope(void)
{
    sotto_gguf *g = tu_golden_open(FIXTURE);
    if (!g) return;
    int32_t heads = 0;
    CU_ASSERT_EQUAL(sotto_gguf_get_i32(g, "n_heads", &heads, NULL), SOTTO_OK);
    int64_t n, sh[4];
    float *x = tu_golden_f32(g, "rope.x", &n, sh);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    const int64_t T = sh[0];
    const int D = (int)(sh[1] / heads);
    const char *kinds[] = {"interleaved", "half"};
    float *got = alloc_f((size_t)n), cs[256];
    CU_ASSERT_FATAL(D <= 256);
    for (int i = 0; i < 2; i++) {
        char key[64];
        snprintf(key, sizeof key, "rope.%s", kinds[i]);
        float *want = tu_golden_f32(g, key, NULL, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(want);
        const int pos0 = meta_i(g, key, "pos0");
        const double theta = meta_f(g, key, "theta");
        sotto_rope r;
        CU_ASSERT_EQUAL_FATAL(sotto_rope_init(&r, i == 0 ? SOTTO_ROPE_INTERLEAVED : SOTTO_ROPE_HALF,
                                              D, theta, &g_a, NULL),
                              SOTTO_OK);
        memcpy(got, x, sizeof(float) * (size_t)n);
        CU_ASSERT_EQUAL(sotto_rope_apply(&r, got, sh[1], T, heads, pos0, cs), SOTTO_OK);
        char what[64];
        snprintf(what, sizeof what, "rope %s (pos0 %d)", kinds[i], pos0);
        TU_ASSERT_CLOSE(what, got, want, n, TOL, -1);
        /* row by row with the position offset gives the same */
        memcpy(got, x, sizeof(float) * (size_t)n);
        for (int64_t t = 0; t < T; t++)
            CU_ASSERT_EQUAL(sotto_rope_apply(&r, got + t * sh[1], sh[1], 1, heads, pos0 + t, cs),
                            SOTTO_OK);
        snprintf(what, sizeof what, "rope %s row by row", kinds[i]);
        TU_ASSERT_CLOSE(what, got, want, n, 0.0, -1);
        sotto_rope_free(&r, &g_a);
        free(want);
    }
    free(x);
    free(got);
    sotto_gguf_close(g);
}

/* ---- streaming ---------------------------------------------------------------------------- */

/* Runs x[T] through cache c in chunks of the sizes in sched (cycled), output into y. */
static void run_chunks(const sotto_cpu *ctx, const sotto_tlayer *L, sotto_kv_cache *c,
                       const float *x, int64_t T, const int *sched, int n_sched, float *y,
                       float *scratch)
{
    const int d = L->cfg.dim;
    int64_t t = 0;
    for (int i = 0; t < T; i++) {
        int64_t n = sched[i % n_sched];
        if (n > T - t) n = T - t;
        const int rc = sotto_tlayer_step(ctx, L, c, x + t * d, n, y + t * d, scratch);
        CU_ASSERT_EQUAL(rc, SOTTO_OK);
        if (rc) return;
        t += n;
    }
    CU_ASSERT_EQUAL(c->pos - c->pos0, T);
}

static void test_streaming(void)
{
    sotto_gguf *g = tu_golden_open(FIXTURE);
    if (!g) return;
    int64_t nx, sh[4];
    float *x = tu_golden_f32(g, "x", &nx, sh);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    const int64_t T = sh[0];
    const char *cases[] = {"causal_inter", "local_inter", "causal_plain_bias", "rms_half_silu",
                           "local_half_relu"};
    static const int s1[] = {1}, s3[] = {3}, s7[] = {7}, smix[] = {1, 3, 7};
    const struct {
        const int *s;
        int n;
        const char *name;
    } scheds[] = {{s1, 1, "1"}, {s3, 1, "3"}, {s7, 1, "7"}, {smix, 3, "1,3,7"}};
    float *full = alloc_f((size_t)nx), *got = alloc_f((size_t)nx);
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(cases); i++) {
        const char *c = cases[i];
        const case_cfg k = read_case(g, c);
        sotto_tlayer L;
        load_layer(g, &k, &L);
        float *y = floats(g, c, "y", NULL);
        float *fs = alloc_f(sotto_tlayer_scratch_size(&L, T));
        CU_ASSERT_EQUAL(sotto_tlayer_forward(&g_ctx[0], &L, x, T, k.pos0, full, fs), SOTTO_OK);
        free(fs);
        /* capacities: a window's minimum (parts of one frame), a little more (steps of 7
         * split into parts), and room for everything; without a window exactly T */
        const int W = k.cfg.window;
        const int caps[3] = {W > 0 ? W : (int)T, W > 0 ? W + 2 : (int)T, (int)T + 5};
        for (int ci = 0; ci < 3; ci++) {
            sotto_kv_cache kv;
            CU_ASSERT_EQUAL_FATAL(sotto_kv_cache_init(&kv, &L, caps[ci], &g_a, NULL), SOTTO_OK);
            float *scratch = alloc_f(sotto_tlayer_step_scratch_size(&L, &kv, 7));
            for (size_t si = 0; si < SOTTO_ARRAY_LEN(scheds); si++)
                for (int j = 0; j < 3; j++) {
                    if (j > 0 && si != 3) continue; /* other contexts: the mixed schedule */
                    sotto_kv_cache_reset(&kv, k.pos0);
                    memset(got, 0, sizeof(float) * (size_t)nx);
                    run_chunks(&g_ctx[j], &L, &kv, x, T, scheds[si].s, scheds[si].n, got, scratch);
                    char what[128];
                    snprintf(what, sizeof what, "%s chunks %s, capacity %d vs full (%s)", c,
                             scheds[si].name, caps[ci], g_ctx_name[j]);
                    TU_ASSERT_CLOSE(what, got, full, nx, TOL, -1);
                    snprintf(what, sizeof what, "%s chunks %s, capacity %d vs torch (%s)", c,
                             scheds[si].name, caps[ci], g_ctx_name[j]);
                    TU_ASSERT_CLOSE(what, got, y, nx, TOL, -1);
                }
            free(scratch);
            sotto_kv_cache_free(&kv, &g_a);
        }
        sotto_tlayer_free(&L, &g_a);
        free(y);
    }

    /* a bidirectional layer with one step of the whole sequence is the full run, and a
     * longer step than a ring's part size runs in parts */
    {
        const case_cfg k = read_case(g, "full_plain");
        sotto_tlayer L;
        load_layer(g, &k, &L);
        float *y = floats(g, "full_plain", "y", NULL);
        sotto_kv_cache kv;
        CU_ASSERT_EQUAL_FATAL(sotto_kv_cache_init(&kv, &L, (int)T, &g_a, NULL), SOTTO_OK);
        float *scratch = alloc_f(sotto_tlayer_step_scratch_size(&L, &kv, T));
        CU_ASSERT_EQUAL(sotto_tlayer_step(&g_ctx[0], &L, &kv, x, T, got, scratch), SOTTO_OK);
        TU_ASSERT_CLOSE("bidirectional single step vs torch", got, y, nx, TOL, -1);
        free(scratch);
        sotto_kv_cache_free(&kv, &g_a);
        sotto_tlayer_free(&L, &g_a);
        free(y);
    }
    {
        const case_cfg k = read_case(g, "local_inter");
        sotto_tlayer L;
        load_layer(g, &k, &L);
        float *y = floats(g, "local_inter", "y", NULL);
        sotto_kv_cache kv;
        CU_ASSERT_EQUAL_FATAL(sotto_kv_cache_init(&kv, &L, k.cfg.window + 1, &g_a, NULL), 0);
        float *scratch = alloc_f(sotto_tlayer_step_scratch_size(&L, &kv, T));
        sotto_kv_cache_reset(&kv, k.pos0);
        CU_ASSERT_EQUAL(sotto_tlayer_step(&g_ctx[2], &L, &kv, x, T, got, scratch), SOTTO_OK);
        TU_ASSERT_CLOSE("windowed single step in parts of 2 vs torch", got, y, nx, TOL, -1);
        free(scratch);
        sotto_kv_cache_free(&kv, &g_a);
        sotto_tlayer_free(&L, &g_a);
        free(y);
    }
    free(x);
    free(full);
    free(got);
    sotto_gguf_close(g);
}

/* A random layer of width d on seeded random weights and input: the contexts agree, and
 * streaming frame by frame (one query per step, so no query blocks) and in chunks of 7 equals
 * the whole-sequence run. */
static void run_consistency(int d, int H, int F, int T, int W)
{
    tu_rng rng;
    tu_rng_init(&rng, tu_seed());
    float *qkv = alloc_f((size_t)3 * d * d), *out = alloc_f((size_t)d * d);
    float *ff1 = alloc_f((size_t)F * d), *ff2 = alloc_f((size_t)d * F), *ls = alloc_f((size_t)d);
    float *x = alloc_f((size_t)T * d);
    tu_fill_uniform(&rng, qkv, (size_t)3 * d * d, -0.15f, 0.15f);
    tu_fill_uniform(&rng, out, (size_t)d * d, -0.1f, 0.1f);
    tu_fill_uniform(&rng, ff1, (size_t)F * d, -0.1f, 0.1f);
    tu_fill_uniform(&rng, ff2, (size_t)d * F, -0.07f, 0.07f);
    tu_fill_uniform(&rng, ls, (size_t)d, 0.1f, 1.0f);
    tu_fill_uniform(&rng, x, (size_t)T * d, -1.5f, 1.5f);
    sotto_tlayer_f32 w;
    memset(&w, 0, sizeof w);
    w.qkv_w = qkv;
    w.out_w = out;
    w.ff1_w = ff1;
    w.ff2_w = ff2;
    w.ls1 = w.ls2 = ls;
    for (int variant = 0; variant < 2; variant++) {
        sotto_tlayer_cfg cfg = sotto_tlayer_cfg_default(d, H, F);
        cfg.causal = 1;
        cfg.window = variant ? W : 0;
        cfg.rope = variant ? SOTTO_ROPE_INTERLEAVED : SOTTO_ROPE_HALF;
        sotto_tlayer L;
        CU_ASSERT_EQUAL_FATAL(sotto_tlayer_init_f32(&L, &cfg, &w, &g_a, NULL), SOTTO_OK);
        float *scratch = alloc_f(sotto_tlayer_scratch_size(&L, T));
        float *ref = alloc_f((size_t)T * d), *got = alloc_f((size_t)T * d);
        CU_ASSERT_EQUAL(sotto_tlayer_forward(&g_ctx[0], &L, x, T, 0, ref, scratch), SOTTO_OK);
        char what[96];
        for (int j = 1; j < 3; j++) {
            CU_ASSERT_EQUAL(sotto_tlayer_forward(&g_ctx[j], &L, x, T, 0, got, scratch), 0);
            snprintf(what, sizeof what, "d %d, %s: %s vs simd", d, variant ? "window" : "causal",
                     g_ctx_name[j]);
            TU_ASSERT_CLOSE(what, got, ref, (int64_t)T * d, TOL, -1);
        }
        sotto_kv_cache kv;
        CU_ASSERT_EQUAL_FATAL(sotto_kv_cache_init(&kv, &L, variant ? W + 10 : T, &g_a, NULL), 0);
        for (int chunk = 1; chunk <= 7; chunk += 6) {
            float *ss = alloc_f(sotto_tlayer_step_scratch_size(&L, &kv, chunk));
            memset(got, 0, sizeof(float) * (size_t)T * d);
            sotto_kv_cache_reset(&kv, 0);
            run_chunks(&g_ctx[2], &L, &kv, x, T, &chunk, 1, got, ss);
            snprintf(what, sizeof what, "d %d, %s: chunks of %d vs whole", d,
                     variant ? "window" : "causal", chunk);
            TU_ASSERT_CLOSE(what, got, ref, (int64_t)T * d, TOL, -1);
            free(ss);
        }
        sotto_kv_cache_free(&kv, &g_a);
        sotto_tlayer_free(&L, &g_a);
        free(scratch);
        free(ref);
        free(got);
    }
    free(qkv);
    free(out);
    free(ff1);
    free(ff2);
    free(ls);
    free(x);
}

/* Longer than the fixtures: several 64-query blocks, work large enough to split across the
 * pool. */
static void test_long_consistency(void)
{
    run_consistency(128, 2, 256, 150, 40);
}

/* Widths that are no multiple of 16 (padded key/value layouts, scratch parts), with scratch
 * of exactly the size asked for, so a sanitizer build sees any overrun. */
static void test_odd_shapes(void)
{
    run_consistency(18, 3, 10, 37, 5);
}

/* ---- bad arguments ------------------------------------------------------------------------ */

static void test_bad_args(void)
{
    sotto_gguf *g = tu_golden_open(FIXTURE);
    if (!g) return;
    const case_cfg k = read_case(g, "causal_inter");
    sotto_tlayer L;
    load_layer(g, &k, &L);
    const int d = k.cfg.dim;
    const int64_t T = 8;
    float x[8 * 64], y[8 * 64];
    CU_ASSERT_FATAL(d == 64);
    for (int i = 0; i < 8 * 64; i++)
        x[i] = (float)sin(0.37 * i);
    const size_t ns = sotto_tlayer_scratch_size(&L, T);
    float *scratch = alloc_f(ns);
    const sotto_cpu *ctx = &g_ctx[0];

    /* init */
    sotto_tlayer bad;
    sotto_tlayer_tensors t;
    memset(&t, 0, sizeof t);
    t.qkv_w = tensor(g, "w.qkv_w");
    t.out_w = tensor(g, "w.out_w");
    t.ff1_w = tensor(g, "w.ff1_w");
    t.ff2_w = tensor(g, "w.ff2_w");
    sotto_tlayer_cfg cfg = k.cfg;
    sotto_status st;
    CU_ASSERT_EQUAL(sotto_tlayer_init(NULL, &cfg, &t, &g_a, NULL), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_tlayer_init(&bad, NULL, &t, &g_a, NULL), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_tlayer_init(&bad, &cfg, NULL, &g_a, NULL), SOTTO_ERR_INVALID_ARG);
    cfg.n_heads = 5; /* does not divide 64 */
    CU_ASSERT_EQUAL(sotto_tlayer_init(&bad, &cfg, &t, &g_a, NULL), SOTTO_ERR_INVALID_ARG);
    cfg = k.cfg;
    cfg.window = -1;
    CU_ASSERT_EQUAL(sotto_tlayer_init(&bad, &cfg, &t, &g_a, NULL), SOTTO_ERR_INVALID_ARG);
    cfg = k.cfg;
    cfg.n_heads = 64; /* head dimension 1: odd, with RoPE */
    CU_ASSERT_EQUAL(sotto_tlayer_init(&bad, &cfg, &t, &g_a, NULL), SOTTO_ERR_INVALID_ARG);
    cfg = k.cfg;
    cfg.rope_theta = 0;
    CU_ASSERT_EQUAL(sotto_tlayer_init(&bad, &cfg, &t, &g_a, NULL), SOTTO_ERR_INVALID_ARG);
    cfg = k.cfg;
    cfg.ffn_dim = 100; /* the tensors hold 128 */
    sotto_status_clear(&st);
    CU_ASSERT_EQUAL(sotto_tlayer_init(&bad, &cfg, &t, &g_a, &st), SOTTO_ERR_MODEL);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "w.ff1_w"));
    cfg = k.cfg;
    t.qkv_w = tensor(g, "w.out_w"); /* [d][d], not [3d][d] */
    CU_ASSERT_EQUAL(sotto_tlayer_init(&bad, &cfg, &t, &g_a, NULL), SOTTO_ERR_MODEL);
    t.qkv_w = tensor(g, "w.qkv_w");
    t.q_w = tensor(g, "w.out_w"); /* fused and separate both given */
    CU_ASSERT_EQUAL(sotto_tlayer_init(&bad, &cfg, &t, &g_a, NULL), SOTTO_ERR_INVALID_ARG);
    t.qkv_w = NULL; /* separate, but k_w and v_w missing */
    CU_ASSERT_EQUAL(sotto_tlayer_init(&bad, &cfg, &t, &g_a, NULL), SOTTO_ERR_INVALID_ARG);
    t.q_w = NULL;
    t.qkv_w = tensor(g, "w.qkv_w");
    t.out_w = NULL;
    CU_ASSERT_EQUAL(sotto_tlayer_init(&bad, &cfg, &t, &g_a, NULL), SOTTO_ERR_INVALID_ARG);
    t.out_w = tensor(g, "w.out_w");
    cfg.norm = SOTTO_NORM_RMS;
    t.norm1_b = tensor(g, "w.n1_b");
    CU_ASSERT_EQUAL(sotto_tlayer_init(&bad, &cfg, &t, &g_a, NULL), SOTTO_ERR_INVALID_ARG);
    t.norm1_b = NULL;
    t.ls1 = tensor(g, "w.qkv_b"); /* 3d elements, not d */
    CU_ASSERT_EQUAL(sotto_tlayer_init(&bad, &cfg, &t, &g_a, NULL), SOTTO_ERR_MODEL);
    sotto_tlayer_free(&bad, &g_a); /* zeroed by the failed init: safe */
    sotto_tlayer_free(NULL, &g_a);
    sotto_rope r;
    CU_ASSERT_EQUAL(sotto_rope_init(&r, SOTTO_ROPE_HALF, 15, 1e4, &g_a, NULL),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_rope_init(&r, (sotto_rope_kind)7, 16, 1e4, &g_a, NULL),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_rope_apply(NULL, x, d, T, 4, 0, scratch), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_rope_apply(&L.rope, NULL, d, T, 4, 0, scratch), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_rope_apply(&L.rope, y, d - 1, T, 4, 0, scratch), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_rope_apply(&L.rope, y, d, T, 4, -1, scratch), SOTTO_ERR_INVALID_ARG);

    /* whole-sequence runs */
    CU_ASSERT_EQUAL(sotto_tlayer_scratch_size(NULL, T), 0);
    CU_ASSERT_EQUAL(sotto_tlayer_scratch_size(&L, -1), 0);
    CU_ASSERT_EQUAL(sotto_tlayer_forward(NULL, &L, x, T, 0, y, scratch), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_tlayer_forward(ctx, NULL, x, T, 0, y, scratch), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_tlayer_forward(ctx, &L, NULL, T, 0, y, scratch), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_tlayer_forward(ctx, &L, x, T, 0, NULL, scratch), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_tlayer_forward(ctx, &L, x, T, 0, y, NULL), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_tlayer_forward(ctx, &L, x, -1, 0, y, scratch), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_tlayer_forward(ctx, &L, x, T, -3, y, scratch), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_tlayer_forward(ctx, &L, x, T - 1, 0, x + 1, scratch),
                    SOTTO_ERR_INVALID_ARG); /* partial overlap */
    CU_ASSERT_EQUAL(sotto_tlayer_forward(ctx, &L, x, 0, 0, y, scratch), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_tlayer_self_attn(ctx, &L, NULL, x, T, 0, x, scratch),
                    SOTTO_ERR_INVALID_ARG); /* sublayers are not in place */
    CU_ASSERT_EQUAL(sotto_tlayer_ffn(ctx, &L, x, T, NULL, scratch), SOTTO_ERR_INVALID_ARG);
    sotto_tlayer zero;
    memset(&zero, 0, sizeof zero);
    CU_ASSERT_EQUAL(sotto_tlayer_forward(ctx, &zero, x, T, 0, y, scratch), SOTTO_ERR_INVALID_ARG);

    /* the cache */
    sotto_kv_cache kv;
    CU_ASSERT_EQUAL(sotto_kv_cache_init(NULL, &L, 8, &g_a, NULL), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_kv_cache_init(&kv, NULL, 8, &g_a, NULL), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_kv_cache_init(&kv, &L, 0, &g_a, NULL), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_kv_cache_init(&kv, &zero, 8, &g_a, NULL), SOTTO_ERR_INVALID_ARG);
    sotto_kv_cache_free(&kv, &g_a);
    CU_ASSERT_EQUAL_FATAL(sotto_kv_cache_init(&kv, &L, 10, &g_a, NULL), SOTTO_OK);
    float *ss = alloc_f(sotto_tlayer_step_scratch_size(&L, &kv, T));
    CU_ASSERT_EQUAL(sotto_tlayer_step_scratch_size(&L, NULL, T), 0);
    CU_ASSERT_EQUAL(sotto_tlayer_step(ctx, &L, NULL, x, 1, y, ss), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_tlayer_step(ctx, &L, &kv, NULL, 1, y, ss), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_tlayer_step(ctx, &L, &kv, x, 1, NULL, ss), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_tlayer_step(ctx, &L, &kv, x, 1, y, NULL), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_tlayer_step(ctx, &L, &kv, x, -1, y, ss), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(kv.pos, 0); /* nothing pushed by the failed calls */
    /* 7 frames fit, 4 more do not (unwindowed, capacity 10): refused, nothing changed */
    CU_ASSERT_EQUAL(sotto_tlayer_step(ctx, &L, &kv, x, 7, y, ss), SOTTO_OK);
    float y_before[4 * 64];
    for (int i = 0; i < 4 * 64; i++)
        y[i] = y_before[i] = -7.0f;
    CU_ASSERT_EQUAL(sotto_tlayer_step(ctx, &L, &kv, x, 4, y, ss), SOTTO_ERR_STATE);
    CU_ASSERT_EQUAL(memcmp(y, y_before, sizeof y_before), 0);
    CU_ASSERT_EQUAL(kv.pos, 7);
    CU_ASSERT_EQUAL(kv.n, 7);
    CU_ASSERT_EQUAL(sotto_tlayer_step(ctx, &L, &kv, x, 3, y, ss), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_tlayer_step(ctx, &L, &kv, x, 1, y, ss), SOTTO_ERR_STATE);
    sotto_kv_cache_reset(&kv, 0);
    CU_ASSERT_EQUAL(sotto_tlayer_step(ctx, &L, &kv, x, 1, y, ss), SOTTO_OK);
    /* a cache made for another layer shape */
    const case_cfg kw = read_case(g, "local_inter");
    sotto_tlayer Lw;
    load_layer(g, &kw, &Lw);
    CU_ASSERT_EQUAL(sotto_tlayer_step(ctx, &Lw, &kv, x, 1, y, ss), SOTTO_ERR_INVALID_ARG);
    sotto_kv_cache_free(&kv, &g_a);
    CU_ASSERT_EQUAL(sotto_kv_cache_init(&kv, &Lw, kw.cfg.window - 1, &g_a, NULL),
                    SOTTO_ERR_INVALID_ARG); /* smaller than the window */
    sotto_tlayer_free(&Lw, &g_a);
    free(ss);
    free(scratch);
    sotto_tlayer_free(&L, &g_a);
    sotto_gguf_close(g);
}

int main(void)
{
    sotto_alloc_init(&g_a, NULL);
    if (sotto_threadpool_create(2, &g_a, &g_tp) != SOTTO_OK) return 1;
    sotto_cpu_init(&g_ctx[0], ~0u, NULL);
    sotto_cpu_init(&g_ctx[1], 0, NULL);
    sotto_cpu_init(&g_ctx[2], ~0u, g_tp);
    static const tu_test tests[] = {{"layers", test_layers},
                                    {"split_qkv_f16", test_split_qkv_and_f16},
                                    {"sublayers", test_sublayers},
                                    {"rope", test_rope},
                                    {"streaming", test_streaming},
                                    {"long_consistency", test_long_consistency},
                                    {"odd_shapes", test_odd_shapes},
                                    {"bad_args", test_bad_args},
                                    {NULL, NULL}};
    const int rc = tu_run_suite("attn_golden", tests);
    sotto_threadpool_free(g_tp);
    return rc;
}
