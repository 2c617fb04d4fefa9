/*
 * The device KV cache and streaming transformer step (backend/cuda/cuda_ops.h, "KV cache")
 * against the CPU's (nn/attn.h: sotto_kv_cache, sotto_tlayer_step): the same random layer and
 * the same pushes of varied sizes (1, 3, 7, ...) on both backends, each step's output compared,
 * and the caches' bookkeeping (positions, filled slots) compared after every step. Layers:
 * causal with a local window (a ring, with steps longer than capacity − W + 1 so that they run
 * in parts), causal without a window (filled exactly, then refused with SOTTO_ERR_STATE as the
 * CPU refuses, then reset to a far position), bidirectional with a window (where the parts
 * change which keys a query sees) and bidirectional without; both RoPE conventions and none.
 * A causal layer's steps are also compared with the device's whole-sequence forward, which
 * nn/attn.h says they equal. Data is drawn from a printed seed; rerun a failure with
 * SOTTO_TEST_SEED=N. Without a device, or in a build without the CUDA backend, the test
 * reports SKIP (exit code 77), never a pass.
 *
 * Budgets per step, f32 activations and weights, TF32 off: max-abs 1e-4 and NMSE 1e-8 against
 * the CPU step (the error expected is a few ulp per value and √K·ulp per K-long dot product;
 * the two backends sum keys in different orders), the same against the whole-sequence forward.
 * A wrong slot, position or mask gives errors of order 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda_probe.h"
#include "testutil.h"

#ifdef SOTTO_HAVE_CUDA

#include <math.h>

#include "backend/cuda/cuda_ops.h"
#include "nn/attn.h"
#include "nn/ops.h"

#define STEP_MAX_ABS 1e-4
#define STEP_NMSE 1e-8

#define SCRATCH_BYTES ((size_t)16 << 20)

static sotto_cuda *g_cu;
static sotto_cpu g_cpu;
static sotto_alloc g_alloc;
static uint64_t g_seed;

static tu_rng rng_for(uint64_t salt)
{
    tu_rng r;
    tu_rng_init(&r, g_seed * 0x9e3779b97f4a7c15ull + salt);
    return r;
}

static void report_device(int rc, const char *what)
{
    if (rc)
        fprintf(stderr, "%s: %s (%s)\n", what, sotto_strerror(rc), sotto_cuda_error_message(g_cu));
}

static float *dev_alloc(size_t n)
{
    void *d = NULL;
    const int rc = sotto_cuda_alloc(g_cu, sizeof(float) * n, &d);
    report_device(rc, "alloc");
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    return d;
}

/* ---- a random layer ----------------------------------------------------------------------- */

typedef struct layer_data {
    float *v[20];
    int n;
    sotto_tlayer_f32 w;
} layer_data;

static float *rnd(layer_data *t, tu_rng *r, int64_t n, float lo, float hi)
{
    float *p = malloc(sizeof(float) * (size_t)n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    tu_fill_uniform(r, p, (size_t)n, lo, hi);
    t->v[t->n++] = p;
    return p;
}

/* Every optional tensor present (norm affine, biases unless RMSNorm's, LayerScale). */
static void make_layer(layer_data *t, tu_rng *r, const sotto_tlayer_cfg *c)
{
    const int64_t d = c->dim, f = c->ffn_dim;
    const float wd = 1.0f / sqrtf((float)d), wf = 1.0f / sqrtf((float)f);
    memset(t, 0, sizeof *t);
    t->w.qkv_w = rnd(t, r, 3 * d * d, -wd, wd);
    t->w.out_w = rnd(t, r, d * d, -wd, wd);
    t->w.ff1_w = rnd(t, r, f * d, -wd, wd);
    t->w.ff2_w = rnd(t, r, d * f, -wf, wf);
    t->w.norm1_w = rnd(t, r, d, 0.5f, 1.5f);
    t->w.norm2_w = rnd(t, r, d, 0.5f, 1.5f);
    if (c->norm == SOTTO_NORM_LAYER) {
        t->w.norm1_b = rnd(t, r, d, -0.2f, 0.2f);
        t->w.norm2_b = rnd(t, r, d, -0.2f, 0.2f);
    }
    t->w.qkv_b = rnd(t, r, 3 * d, -0.1f, 0.1f);
    t->w.out_b = rnd(t, r, d, -0.1f, 0.1f);
    t->w.ff1_b = rnd(t, r, f, -0.1f, 0.1f);
    t->w.ff2_b = rnd(t, r, d, -0.1f, 0.1f);
    t->w.ls1 = rnd(t, r, d, 0.2f, 0.6f);
    t->w.ls2 = rnd(t, r, d, -0.6f, -0.2f);
}

static void free_layer(layer_data *t)
{
    for (int i = 0; i < t->n; i++)
        free(t->v[i]);
}

/* ---- the step against the CPU ------------------------------------------------------------- */

/* A push: n frames; reset_to ≥ 0 resets both caches to that position first; expect is the
 * code both backends must return (SOTTO_OK, or SOTTO_ERR_STATE for a full cache). */
typedef struct push {
    int n;
    int64_t reset_to;
    int expect;
} push;

#define P(n)                                                                                       \
    {                                                                                              \
        (n), -1, SOTTO_OK                                                                          \
    }

/* Both backends side by side: one layer, one cache each. */
typedef struct pair {
    const char *name;
    sotto_tlayer cl;
    sotto_kv_cache ckv;
    sotto_cuda_tlayer gl;
    sotto_cuda_kv_cache gkv;
    int max_n;
    float *cpu_scratch;
    float *dx, *dy; /* device [max_n][d] */
} pair;

static void pair_open(pair *p, const char *name, const sotto_tlayer_cfg *cfg, int capacity,
                      int max_n, const layer_data *w)
{
    sotto_status st;
    memset(p, 0, sizeof *p);
    p->name = name;
    p->max_n = max_n;
    CU_ASSERT_EQUAL_FATAL(sotto_tlayer_init_f32(&p->cl, cfg, &w->w, &g_alloc, &st), SOTTO_OK);
    CU_ASSERT_EQUAL_FATAL(sotto_kv_cache_init(&p->ckv, &p->cl, capacity, &g_alloc, &st), SOTTO_OK);
    int rc = sotto_cuda_tlayer_init(g_cu, &p->gl, &p->cl, &st);
    if (!rc) rc = sotto_cuda_kv_cache_init(g_cu, &p->gkv, &p->gl, capacity, &st);
    if (rc) fprintf(stderr, "%s: %s\n", name, st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    const size_t need = sotto_cuda_tlayer_step_scratch(&p->gl, &p->gkv, max_n);
    CU_ASSERT_TRUE(need > 0 && need <= SCRATCH_BYTES);
    p->cpu_scratch = malloc(sizeof(float) * sotto_tlayer_step_scratch_size(&p->cl, &p->ckv, max_n));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p->cpu_scratch);
    p->dx = dev_alloc((size_t)max_n * cfg->dim);
    p->dy = dev_alloc((size_t)max_n * cfg->dim);
}

static void pair_close(pair *p)
{
    sotto_cuda_kv_cache_free(g_cu, &p->gkv);
    sotto_cuda_tlayer_free(g_cu, &p->gl);
    sotto_kv_cache_free(&p->ckv, &g_alloc);
    sotto_tlayer_free(&p->cl, &g_alloc);
    sotto_cuda_free(g_cu, p->dx);
    sotto_cuda_free(g_cu, p->dy);
    free(p->cpu_scratch);
}

static void expect_same_book(const pair *p, const char *what)
{
    const int same = p->gkv.pos0 == p->ckv.pos0 && p->gkv.pos == p->ckv.pos && p->gkv.n == p->ckv.n;
    if (!same)
        fprintf(stderr, "%s: device cache pos0 %lld pos %lld n %d, CPU %lld %lld %d\n", what,
                (long long)p->gkv.pos0, (long long)p->gkv.pos, p->gkv.n, (long long)p->ckv.pos0,
                (long long)p->ckv.pos, p->ckv.n);
    CU_ASSERT_TRUE(same);
}

/*
 * One push of x[n][d] on both backends. mode 0: out of place; 1: in place on the device;
 * 2: the attention sublayer alone (sotto_*_self_attn with the cache). squeeze: the pool is
 * first filled so that only the step's other temporaries and the scores of 2 queries fit, so
 * the device attention runs in query blocks. y_out (may be NULL) receives the device output.
 */
static void pair_push(pair *p, const float *x, const push *u, int mode, int squeeze, float *y_out,
                      int step_no)
{
    const int d = p->cl.cfg.dim, n = u->n;
    const size_t nf = (size_t)(n ? n : 1) * d;
    float *want = malloc(sizeof(float) * nf), *got = malloc(sizeof(float) * nf);
    CU_ASSERT_TRUE_FATAL(want && got);
    if (u->reset_to >= 0) {
        sotto_kv_cache_reset(&p->ckv, u->reset_to);
        sotto_cuda_kv_cache_reset(&p->gkv, u->reset_to);
    }
    /* a sentinel in want and dy shows whether a refused step wrote anything */
    for (size_t i = 0; i < nf; i++)
        want[i] = got[i] = 1234.5f;
    int crc = mode == 2
                  ? sotto_tlayer_self_attn(&g_cpu, &p->cl, &p->ckv, x, n, 0, want, p->cpu_scratch)
                  : sotto_tlayer_step(&g_cpu, &p->cl, &p->ckv, x, n, want, p->cpu_scratch);
    CU_ASSERT_EQUAL(crc, u->expect);

    int rc = SOTTO_OK;
    if (n > 0) {
        rc = sotto_cuda_upload(g_cu, p->dx, x, sizeof(float) * nf);
        if (!rc) rc = sotto_cuda_upload(g_cu, p->dy, got, sizeof(float) * nf);
        CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    }
    size_t used = 0;
    if (squeeze && n > 0) {
        const size_t need = sotto_cuda_tlayer_step_scratch(&p->gl, &p->gkv, n);
        const size_t scores = sotto_cuda_kv_attention_scratch(n, p->gl.n_heads, p->gkv.capacity);
        const int64_t mb = n < SOTTO_CUDA_ATTN_QBLOCK ? n : SOTTO_CUDA_ATTN_QBLOCK;
        const size_t keep = need - scores + (scores - 256) / (size_t)mb * 2 + 256;
        void *hog;
        CU_ASSERT_EQUAL_FATAL(
            sotto_cuda_scratch_alloc(g_cu, sotto_cuda_scratch_size(g_cu) - keep - 256, &hog),
            SOTTO_OK);
    }
    used = sotto_cuda_scratch_used(g_cu);
    float *dout = mode == 1 ? p->dx : p->dy;
    if (mode == 2)
        rc = sotto_cuda_tlayer_self_attn_kv(g_cu, &p->gl, &p->gkv, p->dx, n, p->dy);
    else
        rc = sotto_cuda_tlayer_step(g_cu, &p->gl, &p->gkv, p->dx, n, dout);
    report_device(rc == u->expect ? SOTTO_OK : rc, "cuda step");
    CU_ASSERT_EQUAL(rc, u->expect);
    CU_ASSERT_EQUAL(sotto_cuda_scratch_used(g_cu), used); /* temporaries given back */
    sotto_cuda_scratch_reset(g_cu);
    CU_ASSERT_EQUAL(sotto_cuda_error(g_cu), SOTTO_OK);

    char what[192];
    snprintf(what, sizeof what, "%s step %d: n=%d%s%s%s, cache pos %lld n %d", p->name, step_no, n,
             mode == 1 ? " in place" : "", mode == 2 ? " self_attn" : "",
             squeeze ? " query blocks" : "", (long long)p->ckv.pos, p->ckv.n);
    expect_same_book(p, what);
    if (n > 0) {
        rc = sotto_cuda_download(g_cu, got, u->expect == SOTTO_OK ? dout : p->dy,
                                 sizeof(float) * nf);
        report_device(rc, what);
        CU_ASSERT_EQUAL(rc, SOTTO_OK);
        if (u->expect == SOTTO_OK) {
            TU_ASSERT_CLOSE(what, got, want, (int64_t)nf, STEP_MAX_ABS, STEP_NMSE);
            if (y_out) memcpy(y_out, got, sizeof(float) * nf);
        } else {
            /* refused: neither output written */
            int untouched = 1;
            for (size_t i = 0; i < nf; i++)
                untouched &= got[i] == 1234.5f && want[i] == 1234.5f;
            printf("%s: refused by both (%s), outputs untouched %d\n", what,
                   sotto_strerror(u->expect), untouched);
            CU_ASSERT_TRUE(untouched);
        }
    }
    free(want);
    free(got);
}

/*
 * A layer over a sequence of pushes on both backends, modes cycling through out of place, in
 * place and (every fourth) squeezed. whole: the layer is causal and no push resets, so the
 * concatenated outputs also equal the device's whole-sequence forward.
 */
static void kv_case(const char *name, const sotto_tlayer_cfg *cfg, int capacity, const push *pushes,
                    int n_pushes, int sublayer, uint64_t salt)
{
    tu_rng r = rng_for(salt);
    layer_data w;
    make_layer(&w, &r, cfg);
    int max_n = 1, total = 0, whole = cfg->causal;
    for (int i = 0; i < n_pushes; i++) {
        if (pushes[i].n > max_n) max_n = pushes[i].n;
        if (pushes[i].expect == SOTTO_OK) total += pushes[i].n;
        if (pushes[i].reset_to >= 0) whole = 0;
    }
    const int d = cfg->dim;
    pair p;
    pair_open(&p, name, cfg, capacity, max_n, &w);
    float *xs = malloc(sizeof(float) * (size_t)(total ? total : 1) * d);
    float *ys = malloc(sizeof(float) * (size_t)(total ? total : 1) * d);
    CU_ASSERT_TRUE_FATAL(xs && ys);
    int at = 0;
    for (int i = 0; i < n_pushes; i++) {
        const push *u = &pushes[i];
        float *x = xs + (size_t)at * d;
        float scratch_x[1];
        if (u->expect != SOTTO_OK) x = malloc(sizeof(float) * (size_t)(u->n ? u->n : 1) * d);
        CU_ASSERT_PTR_NOT_NULL_FATAL(x);
        tu_fill_uniform(&r, x, (size_t)u->n * d, -2.0f, 2.0f);
        const int mode = sublayer ? 2 : i % 2;
        pair_push(&p, u->n ? x : scratch_x, u, mode, i % 4 == 3,
                  u->expect == SOTTO_OK ? ys + (size_t)at * d : NULL, i);
        if (u->expect != SOTTO_OK)
            free(x);
        else
            at += u->n;
    }
    if (whole && !sublayer && total > 0) {
        /* nn/attn.h: a causal layer's steps equal one forward over the whole sequence */
        float *dx = dev_alloc((size_t)total * d);
        float *got = malloc(sizeof(float) * (size_t)total * d);
        CU_ASSERT_PTR_NOT_NULL_FATAL(got);
        int rc = sotto_cuda_upload(g_cu, dx, xs, sizeof(float) * (size_t)total * d);
        if (!rc) rc = sotto_cuda_tlayer_forward(g_cu, &p.gl, dx, total, 0, dx);
        if (!rc) rc = sotto_cuda_download(g_cu, got, dx, sizeof(float) * (size_t)total * d);
        sotto_cuda_scratch_reset(g_cu);
        report_device(rc, "whole forward");
        CU_ASSERT_EQUAL(rc, SOTTO_OK);
        char what[160];
        snprintf(what, sizeof what, "%s: %d frames of steps vs the device forward", name, total);
        if (!rc) TU_ASSERT_CLOSE(what, ys, got, (int64_t)total * d, STEP_MAX_ABS, STEP_NMSE);
        sotto_cuda_free(g_cu, dx);
        free(got);
    }
    pair_close(&p);
    free_layer(&w);
    free(xs);
    free(ys);
}

static sotto_tlayer_cfg cfg_of(int dim, int heads, int ffn, int causal, int window, int rope)
{
    sotto_tlayer_cfg c = sotto_tlayer_cfg_default(dim, heads, ffn);
    c.causal = causal;
    c.window = window;
    c.rope = rope;
    c.rope_theta = rope == SOTTO_ROPE_HALF ? 500.0f : 10000.0f;
    return c;
}

/* Causal with a window of 8 in a ring of 12 (parts of 5 frames): the streaming Mimi layer. */
static void test_causal_window(void)
{
    sotto_tlayer_cfg c = cfg_of(32, 4, 64, 1, 8, SOTTO_ROPE_INTERLEAVED);
    const push pushes[] = {P(1), P(3), P(7), P(2), P(16), P(1), P(5), P(9), P(4), P(1), P(12)};
    kv_case("causal window 8 interleaved", &c, 12, pushes, SOTTO_ARRAY_LEN(pushes), 0, 100);
    /* the capacity equal to the window: parts of one frame */
    c = cfg_of(32, 2, 64, 1, 5, SOTTO_ROPE_HALF);
    c.norm = SOTTO_NORM_RMS;
    c.act = SOTTO_ACT_SILU;
    const push p2[] = {P(3), P(1), P(6), P(2)};
    kv_case("causal window 5 = capacity, half rope, rms silu", &c, 5, p2, SOTTO_ARRAY_LEN(p2), 0,
            101);
}

/* Causal without a window: the cache filled exactly, a step that would overflow refused as on
 * the CPU (nothing changed), then a reset to a far position and more steps. */
static void test_causal_full(void)
{
    sotto_tlayer_cfg c = cfg_of(48, 3, 96, 1, 0, SOTTO_ROPE_HALF);
    c.norm = SOTTO_NORM_RMS;
    c.norm_eps = 1e-6f;
    c.act = SOTTO_ACT_SILU;
    const push pushes[] = {P(1),
                           P(3),
                           P(7),
                           P(13),
                           {6, -1, SOTTO_ERR_STATE}, /* 24 + 6 > 28 */
                           P(4),                     /* 28: full */
                           {1, -1, SOTTO_ERR_STATE},
                           {0, -1, SOTTO_OK}, /* nothing, even when full */
                           {5, 1000, SOTTO_OK},
                           P(2),
                           P(9)};
    kv_case("causal unwindowed half rope, capacity 28", &c, 28, pushes, SOTTO_ARRAY_LEN(pushes), 0,
            200);
    /* the same pushes without resets compare with the whole forward */
    const push p2[] = {P(1), P(3), P(7), P(13), P(4)};
    kv_case("causal unwindowed half rope, whole", &c, 28, p2, SOTTO_ARRAY_LEN(p2), 0, 201);
}

/* Bidirectional layers: a query sees the keys pushed so far, its own step's included; with a
 * window the ring's parts bound that (a ring of 7 for a window of 5: parts of 3 frames). */
static void test_bidirectional(void)
{
    sotto_tlayer_cfg c = cfg_of(32, 2, 64, 0, 5, SOTTO_ROPE_HALF);
    const push pushes[] = {P(1), P(3), P(7), P(2), P(1), P(8), P(3)};
    kv_case("bidirectional window 5 half rope", &c, 7, pushes, SOTTO_ARRAY_LEN(pushes), 0, 300);
    c = cfg_of(32, 4, 64, 0, 0, SOTTO_ROPE_NONE);
    c.act = SOTTO_ACT_GELU_TANH;
    const push p2[] = {P(3), P(1), P(7), {4, 17, SOTTO_OK}, P(2)};
    kv_case("bidirectional unwindowed no rope", &c, 20, p2, SOTTO_ARRAY_LEN(p2), 0, 301);
}

/* The attention sublayer with a cache (post-norm layers call it), against the CPU's. */
static void test_self_attn_kv(void)
{
    sotto_tlayer_cfg c = cfg_of(32, 4, 64, 1, 6, SOTTO_ROPE_INTERLEAVED);
    const push pushes[] = {P(2), P(7), P(1), P(3), P(11)};
    kv_case("self_attn causal window 6", &c, 9, pushes, SOTTO_ARRAY_LEN(pushes), 1, 400);
}

/* Bad arguments are refused without failing the context or touching the cache. */
static void test_errors(void)
{
    tu_rng r = rng_for(500);
    sotto_tlayer_cfg c = cfg_of(32, 4, 64, 1, 8, SOTTO_ROPE_INTERLEAVED);
    layer_data w;
    make_layer(&w, &r, &c);
    sotto_status st;
    pair p;
    pair_open(&p, "errors", &c, 8, 4, &w);
    sotto_cuda_kv_cache k2;
    /* capacity below the window, or out of range */
    CU_ASSERT_EQUAL(sotto_cuda_kv_cache_init(g_cu, &k2, &p.gl, 7, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_kv_cache_init(g_cu, &k2, &p.gl, 0, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_kv_cache_init(g_cu, &k2, NULL, 8, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_kv_cache_init(g_cu, NULL, &p.gl, 8, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NULL(k2.k);

    /* a cache made for another shape (2 heads of 16 instead of 4 of 8) */
    sotto_cuda_tlayer other = p.gl;
    other.n_heads = 2;
    other.head_dim = 16;
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_kv_cache_init(g_cu, &k2, &other, 8, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_tlayer_step(g_cu, &p.gl, &k2, p.dx, 1, p.dy), SOTTO_ERR_INVALID_ARG);
    sotto_cuda_kv_cache_free(g_cu, &k2);
    CU_ASSERT_PTR_NULL(k2.k);
    sotto_cuda_kv_cache_free(g_cu, &k2); /* twice is safe */

    CU_ASSERT_EQUAL(sotto_cuda_tlayer_step(NULL, &p.gl, &p.gkv, p.dx, 1, p.dy),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_tlayer_step(g_cu, NULL, &p.gkv, p.dx, 1, p.dy),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_tlayer_step(g_cu, &p.gl, NULL, p.dx, 1, p.dy),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_tlayer_step(g_cu, &p.gl, &p.gkv, p.dx, -1, p.dy),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_tlayer_step(g_cu, &p.gl, &p.gkv, NULL, 1, p.dy),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_tlayer_step(g_cu, &p.gl, &p.gkv, p.dy, 2, p.dy + 1),
                    SOTTO_ERR_INVALID_ARG); /* overlapping */
    CU_ASSERT_EQUAL(sotto_cuda_tlayer_self_attn_kv(g_cu, &p.gl, &p.gkv, p.dx, 1, p.dx),
                    SOTTO_ERR_INVALID_ARG); /* the sublayer is never in place */
    CU_ASSERT_EQUAL(sotto_cuda_tlayer_step(g_cu, &p.gl, &p.gkv, NULL, 0, NULL), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_tlayer_step_scratch(&p.gl, &p.gkv, 0), 0);
    CU_ASSERT_EQUAL(sotto_cuda_tlayer_step_scratch(&p.gl, NULL, 4), 0);
    /* the halves: more frames than the ring holds, more queries than frames cached */
    CU_ASSERT_EQUAL(sotto_cuda_kv_cache_append(g_cu, &p.gkv, p.dx, p.dy, 32, 9),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_kv_attention(g_cu, &p.gkv, p.dx, 32, 1, 1, p.dy, 32),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(p.gkv.pos, 0);
    CU_ASSERT_EQUAL(p.gkv.n, 0);
    CU_ASSERT_EQUAL(sotto_cuda_error(g_cu), SOTTO_OK);
    sotto_cuda_kv_cache_reset(&p.gkv, -5);
    CU_ASSERT_EQUAL(p.gkv.pos0, 0);
    sotto_cuda_kv_cache_reset(NULL, 0);
    pair_close(&p);
    free_layer(&w);
}

#endif /* SOTTO_HAVE_CUDA */

int main(void)
{
#ifndef SOTTO_HAVE_CUDA
    printf("SKIP: Sotto built without the CUDA backend\n");
    return TU_SKIP;
#else
    if (sotto_cuda_device_count() == 0) {
        printf("SKIP: no CUDA device\n");
        return TU_SKIP;
    }
    g_seed = tu_seed();
    sotto_alloc_init(&g_alloc, NULL);
    sotto_cpu_init(&g_cpu, sotto_cpu_features(), NULL);
    sotto_status st;
    if (sotto_cuda_create(&g_cu, 0, SCRATCH_BYTES, &st) != SOTTO_OK) {
        fprintf(stderr, "cuda context: %s\n", st.message);
        return 1;
    }
    static const tu_test tests[] = {{"causal_window", test_causal_window},
                                    {"causal_full", test_causal_full},
                                    {"bidirectional", test_bidirectional},
                                    {"self_attn_kv", test_self_attn_kv},
                                    {"errors", test_errors},
                                    {NULL, NULL}};
    const int rc = tu_run_suite("cuda_kv", tests);
    sotto_cuda_destroy(g_cu);
    return rc;
#endif
}
