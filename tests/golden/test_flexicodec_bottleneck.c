/*
 * FlexiCodec's transformer stacks (codecs/flexicodec/bottleneck.h) against the official
 * flexicodec 0.1.2 modules: fixtures written by tools/golden/flexicodec_bottleneck.py (the
 * package's ProjectedTransformer built with FlexiCodec's keyword arguments, small: d 64, 4
 * heads, FFN 128, 3 layers, T 37; and a QueryTokenAggregator's transformer: d 24, 2 heads,
 * FFN 48, 2 layers, on the interleaved frame/query sequence of 28 frames in 11 groups), all
 * parameters random, weights under their official state_dict names.
 * Every comparison runs on the SIMD context, the scalar context (features mask 0) and a
 * 2-thread pool, plus once in place, at max-abs 1e-4 against torch (outputs up to |y| ≈ 5.3;
 * achieved ≤ 2e-6). Also: the causal variant (context 16), f16 weights (narrowed at load or
 * stored as f16 in the file) at 2e-3·max|y|, and load errors that name the tensor (missing,
 * wrong shape, wrong dtype, more layers in the file than configured).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codecs/flexicodec/bottleneck.h"
#include "core/threadpool.h"
#include "testutil.h"

#define TOL 1e-4
#define WEIGHTS "flexicodec_bottleneck/weights.gguf"
#define IO "flexicodec_bottleneck/io.gguf"
#define AGG_PREFIX "semantic_aggregator.transformer.transformer.layers."

static sotto_alloc g_a;
static sotto_cpu g_ctx[3];
static const char *const g_ctx_name[3] = {"simd", "scalar", "2 threads"};
static sotto_threadpool *g_tp;

static float *alloc_f(size_t n)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    return p;
}

static float *io_f32(const sotto_gguf *g, const char *name, int64_t *n, int64_t sh[4])
{
    float *p = tu_golden_f32(g, name, n, sh);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    return p;
}

/* Configuration from the weights file's metadata, then the stack; fails the test on error. */
static void load(const sotto_gguf *w, const char *keys, const char *prefix, int causal,
                 int keep_f16, flexicodec_bottleneck *b)
{
    flexicodec_bottleneck_cfg cfg;
    sotto_status st;
    sotto_status_clear(&st);
    int rc = flexicodec_bottleneck_cfg_from_gguf(w, keys, &cfg, &st);
    if (rc) fprintf(stderr, "cfg_from_gguf: %s\n", st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    cfg.causal = causal;
    cfg.keep_f16 = keep_f16;
    rc = flexicodec_bottleneck_load(b, w, prefix, &cfg, &g_a, &st);
    if (rc) fprintf(stderr, "load: %s\n", st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
}

/* Runs b on x[T][d] on the three contexts (into a separate buffer) and once in place on the
 * first, comparing each with want at tol. Returns the last output (caller frees). */
static float *run_all(const flexicodec_bottleneck *b, const float *x, int64_t T, const float *want,
                      const char *tag, double tol)
{
    const int64_t n = T * b->cfg.dim;
    const size_t ns = flexicodec_bottleneck_scratch_size(b, T);
    CU_ASSERT_TRUE_FATAL(ns > 0);
    float *scratch = alloc_f(ns), *y = alloc_f((size_t)n);
    char what[96];
    for (int j = 0; j < 3; j++) {
        memset(y, 0, sizeof(float) * (size_t)n);
        CU_ASSERT_EQUAL(flexicodec_bottleneck_forward(&g_ctx[j], b, x, T, y, scratch), SOTTO_OK);
        snprintf(what, sizeof what, "%s (%s)", tag, g_ctx_name[j]);
        TU_ASSERT_CLOSE(what, y, want, n, tol, -1);
    }
    memcpy(y, x, sizeof(float) * (size_t)n);
    CU_ASSERT_EQUAL(flexicodec_bottleneck_forward(&g_ctx[0], b, y, T, y, scratch), SOTTO_OK);
    snprintf(what, sizeof what, "%s (in place)", tag);
    TU_ASSERT_CLOSE(what, y, want, n, tol, -1);
    free(scratch);
    return y;
}

static double max_abs(const float *v, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++)
        if (fabsf(v[i]) > m) m = fabsf(v[i]);
    return m;
}

/* ---- parity ------------------------------------------------------------------------------- */

static void test_bottleneck(void)
{
    sotto_gguf *w = tu_golden_open(WEIGHTS), *io = tu_golden_open(IO);
    if (!w || !io) goto done;
    const char *arch = NULL;
    CU_ASSERT_EQUAL(sotto_gguf_get_str(w, "general.architecture", &arch, NULL), SOTTO_OK);
    CU_ASSERT_STRING_EQUAL(arch ? arch : "", "flexicodec-test");
    flexicodec_bottleneck b;
    load(w, "flexicodec.transformer.", FLEXICODEC_BOTTLENECK_PREFIX, 0, 0, &b);
    CU_ASSERT_EQUAL(b.cfg.n_layers, 3);
    CU_ASSERT_EQUAL(b.cfg.dim, 64);
    CU_ASSERT_EQUAL(b.cfg.n_heads, 4);
    CU_ASSERT_EQUAL(b.cfg.ffn_dim, 128);
    CU_ASSERT_EQUAL(b.cfg.causal, 0);
    CU_ASSERT_EQUAL(b.cfg.context, 16);
    CU_ASSERT_DOUBLE_EQUAL(b.cfg.norm_eps, 1e-5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(b.cfg.rope_max_period, 10000.0, 1e-9);
    int64_t nx, ny, sh[4];
    float *x = io_f32(io, "bottleneck.x", &nx, sh);
    float *want = io_f32(io, "bottleneck.y", &ny, NULL);
    const int64_t T = sh[0];
    CU_ASSERT_EQUAL(T, 37);
    CU_ASSERT_EQUAL_FATAL(nx, T * 64);
    CU_ASSERT_EQUAL_FATAL(ny, nx);
    float *y = run_all(&b, x, T, want, "bottleneck", TOL);
    printf("  max|y| %.3f\n", max_abs(want, ny));
    /* the output is not the input: the layers did something */
    CU_ASSERT_TRUE(tu_compare(y, x, nx).max_abs > 0.5);
    /* prefixes of the sequence are not what the whole sequence gives (non-causal) */
    float *scratch = alloc_f(flexicodec_bottleneck_scratch_size(&b, T));
    CU_ASSERT_EQUAL(flexicodec_bottleneck_forward(&g_ctx[0], &b, x, T - 5, y, scratch), SOTTO_OK);
    CU_ASSERT_TRUE(tu_compare(y, want, (T - 5) * 64).max_abs > 1e-3);
    free(scratch);
    flexicodec_bottleneck_free(&b);
    CU_ASSERT_PTR_NULL(b.layers);
    flexicodec_bottleneck_free(&b); /* twice is fine */
    free(x);
    free(want);
    free(y);
done:
    if (w) sotto_gguf_close(w);
    if (io) sotto_gguf_close(io);
}

static void test_causal(void)
{
    sotto_gguf *w = tu_golden_open(WEIGHTS), *io = tu_golden_open(IO);
    if (!w || !io) goto done;
    flexicodec_bottleneck b;
    load(w, "flexicodec.transformer.", FLEXICODEC_BOTTLENECK_PREFIX, 1, 0, &b);
    CU_ASSERT_EQUAL(b.layers[0].cfg.window, 16);
    int64_t nx, ny, sh[4];
    float *x = io_f32(io, "bottleneck.x", &nx, sh);
    float *want = io_f32(io, "bottleneck_causal.y", &ny, NULL);
    CU_ASSERT_EQUAL_FATAL(ny, nx);
    float *y = run_all(&b, x, sh[0], want, "bottleneck causal ctx 16", TOL);
    /* causal: the first 20 frames alone give the same first 20 outputs */
    float *scratch = alloc_f(flexicodec_bottleneck_scratch_size(&b, 20));
    CU_ASSERT_EQUAL(flexicodec_bottleneck_forward(&g_ctx[0], &b, x, 20, y, scratch), SOTTO_OK);
    TU_ASSERT_CLOSE("causal prefix of 20 frames", y, want, 20 * 64, TOL, -1);
    free(scratch);
    flexicodec_bottleneck_free(&b);
    free(x);
    free(want);
    free(y);
done:
    if (w) sotto_gguf_close(w);
    if (io) sotto_gguf_close(io);
}

static void test_aggregator(void)
{
    sotto_gguf *w = tu_golden_open(WEIGHTS), *io = tu_golden_open(IO);
    if (!w || !io) goto done;
    flexicodec_bottleneck b;
    load(w, "flexicodec.aggregator.", AGG_PREFIX, 0, 0, &b);
    CU_ASSERT_EQUAL(b.cfg.n_layers, 2);
    const int d = b.cfg.dim;
    CU_ASSERT_EQUAL(d, 24);
    int64_t nx, ny, nq, no, sh[4];
    float *x = io_f32(io, "aggregator.x", &nx, sh);
    float *want = io_f32(io, "aggregator.y", &ny, NULL);
    float *qpos = io_f32(io, "aggregator.query_pos", &nq, NULL);
    float *out = io_f32(io, "aggregator.out", &no, NULL);
    const int64_t T = sh[0];
    CU_ASSERT_EQUAL_FATAL(nx, T * d);
    CU_ASSERT_EQUAL_FATAL(ny, nx);
    CU_ASSERT_EQUAL_FATAL(no, nq * d);
    float *y = run_all(&b, x, T, want, "aggregator transformer", TOL);
    /* QueryTokenAggregator's output: the rows at the query positions */
    float *got = alloc_f((size_t)no);
    for (int64_t gi = 0; gi < nq; gi++) {
        const int64_t p = (int64_t)qpos[gi];
        CU_ASSERT_FATAL(p >= 0 && p < T);
        memcpy(got + gi * d, y + p * d, sizeof(float) * (size_t)d);
    }
    TU_ASSERT_CLOSE("aggregator output at the queries", got, out, no, TOL, -1);
    flexicodec_bottleneck_free(&b);
    free(x);
    free(want);
    free(qpos);
    free(out);
    free(got);
    free(y);
done:
    if (w) sotto_gguf_close(w);
    if (io) sotto_gguf_close(io);
}

/* ---- GGUF images made from the fixture ---------------------------------------------------- */

/* How rebuild changes the fixture's tensors. */
typedef enum edit_kind {
    EDIT_DROP,      /* leave the tensor named `name` out */
    EDIT_I32,       /* store it as i32 (the same 4-byte words, read as integers) */
    EDIT_F16_MATRIX /* store every 2-D tensor as f16, as tools/convert/flexicodec.py --dtype f16 */
} edit_kind;

typedef struct buf {
    unsigned char *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b->p);
    }
    if (src)
        memcpy(b->p + b->n, src, n);
    else
        memset(b->p + b->n, 0, n);
    b->n += n;
}

static void put_u32(buf *b, uint32_t v)
{
    put(b, &v, 4);
}

static void put_u64(buf *b, uint64_t v)
{
    put(b, &v, 8);
}

/* A GGUF v3 image in memory holding g's tensors (f32), edited; no metadata. */
static buf rebuild(const sotto_gguf *g, const char *name, edit_kind kind)
{
    buf b = {NULL, 0, 0}, data = {NULL, 0, 0};
    int64_t count = 0;
    for (int64_t i = 0; i < sotto_gguf_tensor_count(g); i++)
        if (kind != EDIT_DROP || strcmp(sotto_gguf_tensor_at(g, i)->name.data, name)) count++;
    put(&b, "GGUF", 4);
    put_u32(&b, 3);
    put_u64(&b, (uint64_t)count);
    put_u64(&b, 0);
    for (int64_t i = 0; i < sotto_gguf_tensor_count(g); i++) {
        const sotto_gguf_tensor *t = sotto_gguf_tensor_at(g, i);
        CU_ASSERT_EQUAL_FATAL(t->dtype, SOTTO_DTYPE_F32);
        const int hit = kind != EDIT_F16_MATRIX && !strcmp(t->name.data, name);
        const int f16 = kind == EDIT_F16_MATRIX && t->n_dims == 2;
        if (hit && kind == EDIT_DROP) continue;
        put_u64(&b, t->name.len);
        put(&b, t->name.data, t->name.len);
        put_u32(&b, (uint32_t)t->n_dims);
        for (int k = t->n_dims - 1; k >= 0; k--)
            put_u64(&b, (uint64_t)t->shape[k]);
        put_u32(&b, hit ? SOTTO_DTYPE_I32 : f16 ? SOTTO_DTYPE_F16 : SOTTO_DTYPE_F32);
        put_u64(&b, data.n);
        if (f16) {
            const float *src = t->data;
            for (int64_t k = 0; k < t->n_elems; k++) {
                const uint16_t h = sotto_f32_to_f16(src[k]);
                put(&data, &h, 2);
            }
        } else {
            put(&data, t->data, t->n_bytes);
        }
        put(&data, NULL, (32 - data.n % 32) % 32);
    }
    put(&b, NULL, (32 - b.n % 32) % 32);
    put(&b, data.p, data.n);
    free(data.p);
    return b;
}

static sotto_gguf *open_image(const buf *img)
{
    sotto_gguf *g = NULL;
    sotto_status st;
    const int rc = sotto_gguf_open_buffer(img->p, img->n, 1, &g_a, &g, &st);
    if (rc) fprintf(stderr, "image: %s\n", st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    return g;
}

/* f16 weights, kept as f16 in memory: the error stays a small fraction of the output's scale.
 * A file whose matrices are stored as f16 (the converter's --dtype f16) gives the same floats
 * as f32 matrices narrowed at load; widened to f32 (keep_f16 0) it is as close. */
static void test_f16(void)
{
    sotto_gguf *w = tu_golden_open(WEIGHTS), *io = tu_golden_open(IO);
    if (!w || !io) goto done;
    flexicodec_bottleneck b;
    load(w, "flexicodec.transformer.", FLEXICODEC_BOTTLENECK_PREFIX, 0, 1, &b);
    int64_t nx, ny, sh[4];
    float *x = io_f32(io, "bottleneck.x", &nx, sh);
    float *want = io_f32(io, "bottleneck.y", &ny, NULL);
    const double tol = 2e-3 * max_abs(want, ny);
    float *y = run_all(&b, x, sh[0], want, "bottleneck f16 weights", tol);
    flexicodec_bottleneck_free(&b);

    buf img = rebuild(w, NULL, EDIT_F16_MATRIX);
    sotto_gguf *g16 = open_image(&img);
    CU_ASSERT_EQUAL(
        sotto_gguf_find_tensor(g16, FLEXICODEC_BOTTLENECK_PREFIX "0.linear1.weight")->dtype,
        SOTTO_DTYPE_F16);
    sotto_status st;
    float *yh = NULL;
    for (int keep = 1; keep >= 0; keep--) {
        flexicodec_bottleneck_cfg c = flexicodec_bottleneck_cfg_default(3, 64, 4, 128);
        c.keep_f16 = keep;
        CU_ASSERT_EQUAL_FATAL(
            flexicodec_bottleneck_load(&b, g16, FLEXICODEC_BOTTLENECK_PREFIX, &c, &g_a, &st),
            SOTTO_OK);
        float *y16 =
            run_all(&b, x, sh[0], want, keep ? "f16 file, kept f16" : "f16 file, widened", tol);
        if (keep) TU_ASSERT_CLOSE("f16 file vs narrowed at load", y16, y, ny, 0, -1);
        free(y16);
        /* binary16 arithmetic on the same weights (flexicodec_bottleneck_use_h16, from the f16
         * panels or from the widened f32 copy): the same values either way, within 2e-2 of the
         * output's scale against the official output (measured NMSE 1.1e-6) */
        CU_ASSERT_EQUAL_FATAL(flexicodec_bottleneck_use_h16(&b, &st), SOTTO_OK);
        CU_ASSERT_PTR_NOT_NULL(b.layers[0].ff1.h16);
        y16 = run_all(&b, x, sh[0], want, keep ? "binary16 arithmetic (from f16)"
                                               : "binary16 arithmetic (from f32)",
                      1e-2 * max_abs(want, ny));
        if (keep)
            yh = y16;
        else {
            TU_ASSERT_CLOSE("binary16 arithmetic: same from f16 and f32 copies", y16, yh, ny, 0,
                            -1);
            free(y16);
        }
        flexicodec_bottleneck_free(&b);
    }
    free(yh);
    sotto_gguf_close(g16);
    free(img.p);
    free(x);
    free(want);
    free(y);
done:
    if (w) sotto_gguf_close(w);
    if (io) sotto_gguf_close(io);
}

/* ---- load errors -------------------------------------------------------------------------- */

/* Expects load to fail with code and a message containing needle; the struct is zeroed. */
static void expect_fail(const sotto_gguf *g, const char *prefix, const flexicodec_bottleneck_cfg *c,
                        int code, const char *needle)
{
    flexicodec_bottleneck b;
    sotto_status st;
    sotto_status_clear(&st);
    CU_ASSERT_EQUAL(flexicodec_bottleneck_load(&b, g, prefix, c, &g_a, &st), code);
    printf("  message: %s\n", st.message);
    CU_ASSERT_EQUAL(st.code, code);
    if (!strstr(st.message, needle)) {
        fprintf(stderr, "missing <%s> in <%s>\n", needle, st.message);
        CU_FAIL("error message lacks the culprit");
    }
    CU_ASSERT_PTR_NULL(b.layers);
    CU_ASSERT_EQUAL(flexicodec_bottleneck_scratch_size(&b, 10), 0);
    flexicodec_bottleneck_free(&b);
}

static void test_load_errors(void)
{
    sotto_gguf *w = tu_golden_open(WEIGHTS);
    if (!w) return;
    const char *P = FLEXICODEC_BOTTLENECK_PREFIX;
    const flexicodec_bottleneck_cfg good = flexicodec_bottleneck_cfg_default(3, 64, 4, 128);
    flexicodec_bottleneck_cfg c = good;

    /* one layer more than the file: layer 3 is missing */
    c.n_layers = 4;
    expect_fail(w, P, &c, SOTTO_ERR_MODEL,
                "missing tensor 'bottleneck_transformer.transformer.layers.3.self_attn."
                "in_proj_weight'");
    /* one layer fewer: the file's layer 2 would be ignored */
    c.n_layers = 2;
    expect_fail(w, P, &c, SOTTO_ERR_MODEL, "bottleneck_transformer.transformer.layers.2.");
    /* wrong FFN width and model width: shapes, naming the tensor */
    c = good;
    c.ffn_dim = 96;
    expect_fail(w, P, &c, SOTTO_ERR_MODEL,
                "tensor 'bottleneck_transformer.transformer.layers.0.linear1.weight': shape "
                "[128, 64], expected [96, 64]");
    c = good;
    c.dim = 32;
    expect_fail(w, P, &c, SOTTO_ERR_MODEL, "layers.0.self_attn.in_proj_weight': shape");
    /* another prefix */
    expect_fail(w, "bottleneck_transformer.layers.", &good, SOTTO_ERR_MODEL,
                "missing tensor 'bottleneck_transformer.layers.0.");
    /* configurations out of range */
    c = good;
    c.n_heads = 3; /* 64 % 3 */
    expect_fail(w, P, &c, SOTTO_ERR_INVALID_ARG, "configuration");
    c.n_heads = 64; /* head dimension 1: odd, no RoPE pairs */
    expect_fail(w, P, &c, SOTTO_ERR_INVALID_ARG, "configuration");
    c = good;
    c.norm_eps = 0;
    expect_fail(w, P, &c, SOTTO_ERR_INVALID_ARG, "configuration");
    expect_fail(NULL, P, &good, SOTTO_ERR_INVALID_ARG, "NULL");
    expect_fail(w, NULL, &good, SOTTO_ERR_INVALID_ARG, "NULL");
    expect_fail(w, P, NULL, SOTTO_ERR_INVALID_ARG, "NULL");

    /* a tensor missing inside a layer, and one of the wrong dtype */
    const char *ls = "bottleneck_transformer.transformer.layers.1.layer_scale_2.scale";
    for (int i32 = 0; i32 < 2; i32++) {
        buf img = rebuild(w, ls, i32 ? EDIT_I32 : EDIT_DROP);
        sotto_gguf *g2 = open_image(&img);
        if (i32)
            expect_fail(g2, P, &good, SOTTO_ERR_MODEL, "layers.1.layer_scale_2.scale': dtype i32");
        else
            expect_fail(g2, P, &good, SOTTO_ERR_MODEL,
                        "missing tensor 'bottleneck_transformer."
                        "transformer.layers.1.layer_scale_2.scale'");
        /* the rest of the file is fine: the aggregator stack still loads from it */
        flexicodec_bottleneck b;
        sotto_status st;
        const flexicodec_bottleneck_cfg ca = flexicodec_bottleneck_cfg_default(2, 24, 2, 48);
        CU_ASSERT_EQUAL(flexicodec_bottleneck_load(&b, g2, AGG_PREFIX, &ca, &g_a, &st), SOTTO_OK);
        flexicodec_bottleneck_free(&b);
        sotto_gguf_close(g2);
        free(img.p);
    }
    sotto_gguf_close(w);
}

static void test_cfg_errors(void)
{
    sotto_gguf *w = tu_golden_open(WEIGHTS);
    if (!w) return;
    flexicodec_bottleneck_cfg c;
    sotto_status st;
    sotto_status_clear(&st);
    CU_ASSERT_EQUAL(flexicodec_bottleneck_cfg_from_gguf(w, "flexicodec.nothing.", &c, &st),
                    SOTTO_ERR_MODEL);
    printf("  message: %s\n", st.message);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "flexicodec.nothing.num_layers"));
    CU_ASSERT_EQUAL(flexicodec_bottleneck_cfg_from_gguf(NULL, "x.", &c, &st),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(flexicodec_bottleneck_cfg_from_gguf(w, "x.", NULL, &st), SOTTO_ERR_INVALID_ARG);
    sotto_gguf_close(w);
}

static void test_bad_args(void)
{
    sotto_gguf *w = tu_golden_open(WEIGHTS);
    if (!w) return;
    flexicodec_bottleneck b, zero;
    memset(&zero, 0, sizeof zero);
    load(w, "flexicodec.transformer.", FLEXICODEC_BOTTLENECK_PREFIX, 0, 0, &b);
    const int64_t T = 8, n = T * 64;
    float *x = alloc_f((size_t)(2 * n));
    float *scratch = alloc_f(flexicodec_bottleneck_scratch_size(&b, T));
    tu_rng r;
    tu_rng_init(&r, tu_seed());
    tu_fill_uniform(&r, x, (size_t)(2 * n), -1, 1);
    const sotto_cpu *cpu = &g_ctx[0];
    CU_ASSERT_EQUAL(flexicodec_bottleneck_scratch_size(&zero, T), 0);
    CU_ASSERT_EQUAL(flexicodec_bottleneck_scratch_size(NULL, T), 0);
    CU_ASSERT_EQUAL(flexicodec_bottleneck_scratch_size(&b, -1), 0);
    CU_ASSERT_EQUAL(flexicodec_bottleneck_forward(cpu, &zero, x, T, x, scratch),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(flexicodec_bottleneck_forward(NULL, &b, x, T, x, scratch),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(flexicodec_bottleneck_forward(cpu, &b, x, -1, x, scratch),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(flexicodec_bottleneck_forward(cpu, &b, NULL, T, x, scratch),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(flexicodec_bottleneck_forward(cpu, &b, x, T, x, NULL), SOTTO_ERR_INVALID_ARG);
    /* overlapping but not equal */
    CU_ASSERT_EQUAL(flexicodec_bottleneck_forward(cpu, &b, x, T, x + 1, scratch),
                    SOTTO_ERR_INVALID_ARG);
    /* T = 0: nothing to do */
    CU_ASSERT_EQUAL(flexicodec_bottleneck_forward(cpu, &b, NULL, 0, NULL, NULL), SOTTO_OK);
    /* adjacent buffers are fine */
    CU_ASSERT_EQUAL(flexicodec_bottleneck_forward(cpu, &b, x, T, x + n, scratch), SOTTO_OK);
    flexicodec_bottleneck_free(&b);

    /* zero layers: the identity (FlexiCodec's num_layers 0) */
    flexicodec_bottleneck_cfg c0 = flexicodec_bottleneck_cfg_default(0, 64, 4, 128);
    sotto_status st;
    /* the file holds layer 0, so a 0-layer stack under this prefix is refused... */
    CU_ASSERT_EQUAL(flexicodec_bottleneck_load(&b, w, FLEXICODEC_BOTTLENECK_PREFIX, &c0, NULL, &st),
                    SOTTO_ERR_MODEL);
    /* ...and accepted where there is none */
    CU_ASSERT_EQUAL_FATAL(flexicodec_bottleneck_load(&b, w, "none.", &c0, NULL, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(flexicodec_bottleneck_scratch_size(&b, T), 1);
    CU_ASSERT_EQUAL(flexicodec_bottleneck_forward(cpu, &b, x, T, x + n, scratch), SOTTO_OK);
    TU_ASSERT_CLOSE("zero layers copy", x + n, x, n, 0, -1);
    flexicodec_bottleneck_free(&b);
    free(x);
    free(scratch);
    sotto_gguf_close(w);
}

int main(void)
{
    sotto_alloc_init(&g_a, NULL);
    if (sotto_threadpool_create(2, &g_a, &g_tp) != SOTTO_OK) return 1;
    sotto_cpu_init(&g_ctx[0], ~0u, NULL);
    sotto_cpu_init(&g_ctx[1], 0, NULL);
    sotto_cpu_init(&g_ctx[2], ~0u, g_tp);
    static const tu_test tests[] = {{"bottleneck", test_bottleneck},
                                    {"causal", test_causal},
                                    {"aggregator", test_aggregator},
                                    {"f16_weights", test_f16},
                                    {"load_errors", test_load_errors},
                                    {"cfg_errors", test_cfg_errors},
                                    {"bad_args", test_bad_args},
                                    {NULL, NULL}};
    const int rc = tu_run_suite("flexicodec_bottleneck", tests);
    sotto_threadpool_free(g_tp);
    return rc;
}
