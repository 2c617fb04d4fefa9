/*
 * The layer library against PyTorch: fixtures written by tools/golden/ops.py (torch.nn.
 * functional on seeded random data, sequences transposed to time-major [T][C]). Weights are
 * prepared from the fixture's GGUF tensors exactly as a model loader does, so the PyTorch
 * layouts and the repacking are checked too. Every case runs on the SIMD context, the scalar
 * context (features mask 0) and a 2-thread pool.
 * Tolerances: max-abs 1e-5 for every f32 layer (data and weights of unit scale);
 * f16-stored weights 1e-5 against torch using the same rounded weights, and 2e-3·max|y|
 * against torch with the original f32 weights (the cost of keeping f16).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/threadpool.h"
#include "nn/ops.h"
#include "testutil.h"

#define TOL 1e-5

static sotto_alloc g_a;
static sotto_cpu g_ctx[3];
static const char *const g_ctx_name[3] = {"simd", "scalar", "2 threads"};
static sotto_threadpool *g_tp;

static const sotto_gguf_tensor *tensor(const sotto_gguf *g, const char *fmt, const char *c)
{
    char name[128];
    snprintf(name, sizeof name, fmt, c);
    const sotto_gguf_tensor *t = sotto_gguf_find_tensor(g, name);
    if (!t) fprintf(stderr, "fixture has no tensor '%s'\n", name);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    return t;
}

static float *floats(const sotto_gguf *g, const char *fmt, const char *c, int64_t *n)
{
    char name[128];
    snprintf(name, sizeof name, fmt, c);
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

/* ---- linear ------------------------------------------------------------------------------- */

static void test_linear(void)
{
    sotto_gguf *g = tu_golden_open("ops/linear.gguf");
    if (!g) return;
    const char *cases[] = {"small", "gemv", "big"};
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(cases); i++) {
        const char *c = cases[i];
        const sotto_gguf_tensor *wt = tensor(g, "%s.w", c);
        int64_t nx, ny;
        float *x = floats(g, "%s.x", c, &nx), *b = floats(g, "%s.b", c, NULL);
        float *y = floats(g, "%s.y", c, &ny), *got = malloc(sizeof(float) * (size_t)ny);
        sotto_linear_w w;
        CU_ASSERT_EQUAL_FATAL(sotto_linear_w_init(&w, wt, 0, &g_a, NULL), SOTTO_OK);
        const int64_t M = nx / w.n_in;
        for (int k = 0; k < 3; k++) {
            CU_ASSERT_EQUAL(sotto_linear(&g_ctx[k], &w, b, x, M, got), SOTTO_OK);
            char what[64];
            snprintf(what, sizeof what, "linear %s (%s)", c, g_ctx_name[k]);
            TU_ASSERT_CLOSE(what, got, y, ny, TOL, -1);
        }
        sotto_linear_w_free(&w, &g_a);
        free(x);
        free(b);
        free(y);
        free(got);
    }
    /* f16-stored weights */
    const sotto_gguf_tensor *wt = tensor(g, "%s.w", "half");
    CU_ASSERT_EQUAL(wt->dtype, SOTTO_DTYPE_F16);
    int64_t nx, ny;
    float *x = floats(g, "%s.x", "half", &nx), *b = floats(g, "%s.b", "half", NULL);
    float *ye = floats(g, "%s.y_exact", "half", &ny), *yf = floats(g, "%s.y_f32", "half", NULL);
    float *got = malloc(sizeof(float) * (size_t)ny);
    sotto_linear_w w;
    CU_ASSERT_EQUAL_FATAL(sotto_linear_w_init(&w, wt, 1, &g_a, NULL), SOTTO_OK);
    CU_ASSERT_TRUE(w.is_f16);
    double ymax = 0;
    for (int64_t i = 0; i < ny; i++)
        ymax = fmax(ymax, fabs(yf[i]));
    for (int k = 0; k < 3; k++) {
        CU_ASSERT_EQUAL(sotto_linear(&g_ctx[k], &w, b, x, nx / w.n_in, got), SOTTO_OK);
        char what[64];
        snprintf(what, sizeof what, "linear f16 vs same weights (%s)", g_ctx_name[k]);
        TU_ASSERT_CLOSE(what, got, ye, ny, TOL, -1);
        snprintf(what, sizeof what, "linear f16 vs f32 weights (%s)", g_ctx_name[k]);
        TU_ASSERT_CLOSE(what, got, yf, ny, 2e-3 * ymax, -1);
    }
    sotto_linear_w_free(&w, &g_a);
    free(x);
    free(b);
    free(ye);
    free(yf);
    free(got);
    sotto_gguf_close(g);
}

/* ---- conv1d ------------------------------------------------------------------------------- */

static void test_conv1d(void)
{
    sotto_gguf *g = tu_golden_open("ops/conv1d.gguf");
    if (!g) return;
    const char *cases[] = {"basic",
                           "strided_dilated_reflect",
                           "groups_replicate",
                           "depthwise_k7",
                           "blas_k7",
                           "dac_down",
                           "causal_left"};
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(cases); i++) {
        const char *c = cases[i];
        char key[128];
        const char *mode_s = NULL;
        snprintf(key, sizeof key, "%s.pad_mode", c);
        CU_ASSERT_EQUAL(sotto_gguf_get_str(g, key, &mode_s, NULL), SOTTO_OK);
        const sotto_pad_mode mode = !strcmp(mode_s, "reflect")     ? SOTTO_PAD_REFLECT
                                    : !strcmp(mode_s, "replicate") ? SOTTO_PAD_REPLICATE
                                                                   : SOTTO_PAD_ZERO;
        const int pl = meta_i(g, c, "pad_left"), pr = meta_i(g, c, "pad_right");
        sotto_conv1d_w w;
        CU_ASSERT_EQUAL_FATAL(sotto_conv1d_w_init(&w, tensor(g, "%s.w", c), meta_i(g, c, "stride"),
                                                  meta_i(g, c, "dilation"), meta_i(g, c, "groups"),
                                                  &g_a, NULL),
                              SOTTO_OK);
        float *b = NULL;
        CU_ASSERT_EQUAL_FATAL(sotto_vec_init(&b, tensor(g, "%s.b", c), w.c_out, &g_a, NULL), 0);
        int64_t nx, ny;
        float *x = floats(g, "%s.x", c, &nx), *y = floats(g, "%s.y", c, &ny);
        const int64_t T = nx / w.c_in;
        float *scratch = malloc(sizeof(float) * sotto_conv1d_padded_scratch(&w, T, pl, pr));
        float *got = malloc(sizeof(float) * (size_t)ny);
        for (int k = 0; k < 3; k++) {
            const int64_t T_out =
                sotto_conv1d_padded(&g_ctx[k], &w, b, x, T, pl, pr, mode, got, scratch);
            CU_ASSERT_EQUAL(T_out * w.c_out, ny);
            char what[80];
            snprintf(what, sizeof what, "conv1d %s (%s)", c, g_ctx_name[k]);
            TU_ASSERT_CLOSE(what, got, y, ny, TOL, -1);
        }
        sotto_conv1d_w_free(&w, &g_a);
        sotto_free(&g_a, b);
        free(x);
        free(y);
        free(scratch);
        free(got);
    }
    sotto_gguf_close(g);
}

/* ---- conv_transpose1d ------------------------------------------------------------------- */

static void test_convtr1d(void)
{
    sotto_gguf *g = tu_golden_open("ops/convtr1d.gguf");
    if (!g) return;
    const char *cases[] = {"basic", "groups_outpad", "dac_up", "blas"};
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(cases); i++) {
        const char *c = cases[i];
        sotto_convtr1d_w w;
        CU_ASSERT_EQUAL_FATAL(
            sotto_convtr1d_w_init(&w, tensor(g, "%s.w", c), meta_i(g, c, "stride"),
                                  meta_i(g, c, "dilation"), meta_i(g, c, "groups"), &g_a, NULL),
            SOTTO_OK);
        const int p = meta_i(g, c, "padding"), op = meta_i(g, c, "output_padding");
        int64_t nx, ny;
        float *x = floats(g, "%s.x", c, &nx), *y = floats(g, "%s.y", c, &ny);
        float *b = floats(g, "%s.b", c, NULL);
        const int64_t T = nx / w.c_in, L = sotto_convtr1d_out_len(&w, T);
        /* torch's output: full[p .. L − p + op), frames past L holding the bias */
        const int64_t T_torch = L - 2 * p + op;
        CU_ASSERT_EQUAL_FATAL(T_torch * w.c_out, ny);
        float *full = malloc(sizeof(float) * (size_t)(L + op) * w.c_out);
        float *got = malloc(sizeof(float) * (size_t)ny);
        for (int k = 0; k < 3; k++) {
            CU_ASSERT_EQUAL(sotto_conv_transpose1d(&g_ctx[k], &w, b, x, T, full), L);
            for (int64_t t = L; t < L + op; t++)
                memcpy(full + t * w.c_out, b, sizeof(float) * (size_t)w.c_out);
            memcpy(got, full + (int64_t)p * w.c_out, sizeof(float) * (size_t)ny);
            char what[80];
            snprintf(what, sizeof what, "conv_transpose1d %s (%s)", c, g_ctx_name[k]);
            TU_ASSERT_CLOSE(what, got, y, ny, TOL, -1);
        }
        sotto_convtr1d_w_free(&w, &g_a);
        free(x);
        free(y);
        free(b);
        free(full);
        free(got);
    }
    sotto_gguf_close(g);
}

/* ---- conv2d ------------------------------------------------------------------------------- */

static void test_conv2d(void)
{
    sotto_gguf *g = tu_golden_open("ops/conv2d.gguf");
    if (!g) return;
    const char *cases[] = {"front_3x3", "strided_grouped"};
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(cases); i++) {
        const char *c = cases[i];
        sotto_conv2d_geom geo = {meta_i(g, c, "stride_h"), meta_i(g, c, "stride_w"),
                                 meta_i(g, c, "pad_h"),    meta_i(g, c, "pad_w"),
                                 meta_i(g, c, "dil_h"),    meta_i(g, c, "dil_w"),
                                 meta_i(g, c, "groups")};
        sotto_conv2d_w w;
        CU_ASSERT_EQUAL_FATAL(sotto_conv2d_w_init(&w, tensor(g, "%s.w", c), &geo, &g_a, NULL),
                              SOTTO_OK);
        int64_t nx, ny, xs[4];
        char name[64];
        snprintf(name, sizeof name, "%s.x", c);
        float *x = tu_golden_f32(g, name, &nx, xs);
        float *y = floats(g, "%s.y", c, &ny), *b = floats(g, "%s.b", c, NULL);
        float *got = malloc(sizeof(float) * (size_t)ny);
        int64_t Ho, Wo;
        sotto_conv2d_out_size(&w, xs[1], xs[2], &Ho, &Wo);
        CU_ASSERT_EQUAL(Ho * Wo * w.c_out, ny);
        for (int k = 0; k < 3; k++) {
            CU_ASSERT_EQUAL(sotto_conv2d(&g_ctx[k], &w, b, x, xs[1], xs[2], got), SOTTO_OK);
            char what[80];
            snprintf(what, sizeof what, "conv2d %s (%s)", c, g_ctx_name[k]);
            TU_ASSERT_CLOSE(what, got, y, ny, TOL, -1);
        }
        sotto_conv2d_w_free(&w, &g_a);
        free(x);
        free(y);
        free(b);
        free(got);
    }
    sotto_gguf_close(g);
}

/* ---- norms -------------------------------------------------------------------------------- */

static void test_norms(void)
{
    sotto_gguf *g = tu_golden_open("ops/norm.gguf");
    if (!g) return;
    int64_t n, sh[4];
    float *x = tu_golden_f32(g, "ln.x", &n, sh);
    float *w = tu_golden_f32(g, "ln.w", NULL, NULL), *b = tu_golden_f32(g, "ln.b", NULL, NULL);
    float *y = tu_golden_f32(g, "ln.y", NULL, NULL),
          *yp = tu_golden_f32(g, "ln.y_plain", NULL, NULL);
    float *yr = tu_golden_f32(g, "rms.y", NULL, NULL);
    float *got = malloc(sizeof(float) * (size_t)n);
    const int64_t T = sh[0];
    const int C = (int)sh[1];
    for (int k = 0; k < 3; k++) {
        char what[64];
        CU_ASSERT_EQUAL(sotto_layernorm(&g_ctx[k], x, T, C, w, b, 1e-6f, got), 0);
        snprintf(what, sizeof what, "layer_norm (%s)", g_ctx_name[k]);
        TU_ASSERT_CLOSE(what, got, y, n, TOL, -1);
        CU_ASSERT_EQUAL(sotto_layernorm(&g_ctx[k], x, T, C, NULL, NULL, 1e-5f, got), 0);
        snprintf(what, sizeof what, "layer_norm no affine (%s)", g_ctx_name[k]);
        TU_ASSERT_CLOSE(what, got, yp, n, TOL, -1);
        CU_ASSERT_EQUAL(sotto_rmsnorm(&g_ctx[k], x, T, C, w, 1e-6f, got), 0);
        snprintf(what, sizeof what, "rms_norm (%s)", g_ctx_name[k]);
        TU_ASSERT_CLOSE(what, got, yr, n, TOL, -1);
    }
    free(x);
    free(w);
    free(b);
    free(y);
    free(yp);
    free(yr);
    free(got);

    /* group norm and folded eval batch norm on [T][C] */
    x = tu_golden_f32(g, "gn.x", &n, sh);
    w = tu_golden_f32(g, "gn.w", NULL, NULL);
    b = tu_golden_f32(g, "gn.b", NULL, NULL);
    y = tu_golden_f32(g, "gn.y", NULL, NULL);
    float *mean = tu_golden_f32(g, "bn.mean", NULL, NULL),
          *var = tu_golden_f32(g, "bn.var", NULL, NULL);
    float *ybn = tu_golden_f32(g, "bn.y", NULL, NULL);
    got = malloc(sizeof(float) * (size_t)n);
    int32_t groups = 0;
    CU_ASSERT_EQUAL(sotto_gguf_get_i32(g, "gn.groups", &groups, NULL), 0);
    const int Cg = (int)sh[1];
    CU_ASSERT_EQUAL(sotto_groupnorm(&g_ctx[0], x, sh[0], Cg, groups, w, b, 1e-5f, got), 0);
    TU_ASSERT_CLOSE("group_norm", got, y, n, TOL, -1);
    float scale[64], shift[64];
    for (int c = 0; c < Cg; c++) {
        scale[c] = (float)(w[c] / sqrt((double)var[c] + 1e-5));
        shift[c] = (float)(b[c] - (double)mean[c] * scale[c]);
    }
    CU_ASSERT_EQUAL(sotto_channel_affine(&g_ctx[0], x, sh[0], Cg, scale, shift, got), 0);
    TU_ASSERT_CLOSE("batch_norm eval (folded)", got, ybn, n, TOL, -1);
    free(x);
    free(w);
    free(b);
    free(y);
    free(mean);
    free(var);
    free(ybn);
    free(got);
    sotto_gguf_close(g);
}

/* ---- activations -------------------------------------------------------------------------- */

static void test_activations(void)
{
    sotto_gguf *g = tu_golden_open("ops/act.gguf");
    if (!g) return;
    int64_t n;
    float *x = tu_golden_f32(g, "x", &n, NULL), *got = malloc(sizeof(float) * (size_t)n);
    for (int k = 0; k < 3; k++) {
        const sotto_cpu *c = &g_ctx[k];
        float *want;
        char what[64];
#define ACT(NAME, CALL)                                                                            \
    do {                                                                                           \
        CU_ASSERT_EQUAL(CALL, SOTTO_OK);                                                           \
        want = tu_golden_f32(g, NAME, NULL, NULL);                                                 \
        snprintf(what, sizeof what, "%s (%s)", NAME, g_ctx_name[k]);                               \
        TU_ASSERT_CLOSE(what, got, want, n, TOL, -1);                                              \
        free(want);                                                                                \
    } while (0)
        ACT("gelu_erf", sotto_gelu_erf(c, x, n, got));
        ACT("gelu_tanh", sotto_gelu_tanh(c, x, n, got));
        ACT("silu", sotto_silu(c, x, n, got));
        ACT("elu_1", sotto_elu(c, x, n, 1.0f, got));
        ACT("elu_07", sotto_elu(c, x, n, 0.7f, got));
        ACT("leaky_001", sotto_leaky_relu(c, x, n, 0.01f, got));
        ACT("leaky_02", sotto_leaky_relu(c, x, n, 0.2f, got));
        ACT("tanh", sotto_tanh(c, x, n, got));
#undef ACT
    }
    free(x);
    free(got);

    int64_t sh[4], ns;
    float *xs = tu_golden_f32(g, "snake.x", &ns, sh),
          *alpha = tu_golden_f32(g, "snake.alpha", NULL, NULL);
    float *ys = tu_golden_f32(g, "snake.y", NULL, NULL);
    got = malloc(sizeof(float) * (size_t)ns);
    for (int k = 0; k < 3; k++) {
        CU_ASSERT_EQUAL(sotto_snake(&g_ctx[k], xs, sh[0], (int)sh[1], alpha, got), SOTTO_OK);
        char what[48];
        snprintf(what, sizeof what, "snake (%s)", g_ctx_name[k]);
        TU_ASSERT_CLOSE(what, got, ys, ns, TOL, -1);
    }
    free(xs);
    free(alpha);
    free(ys);
    free(got);

    float *xm = tu_golden_f32(g, "softmax.x", &ns, sh),
          *ym = tu_golden_f32(g, "softmax.y", NULL, NULL);
    got = malloc(sizeof(float) * (size_t)ns);
    for (int k = 0; k < 3; k++) {
        CU_ASSERT_EQUAL(sotto_softmax(&g_ctx[k], xm, sh[0], (int)sh[1], got), SOTTO_OK);
        char what[48];
        snprintf(what, sizeof what, "softmax (%s)", g_ctx_name[k]);
        TU_ASSERT_CLOSE(what, got, ym, ns, TOL, -1);
    }
    free(xm);
    free(ym);
    free(got);
    sotto_gguf_close(g);
}

static void test_embedding(void)
{
    sotto_gguf *g = tu_golden_open("ops/embedding.gguf");
    if (!g) return;
    int64_t nt, sh[4], ny;
    float *table = tu_golden_f32(g, "table", &nt, sh), *y = tu_golden_f32(g, "y", &ny, NULL);
    const sotto_gguf_tensor *ids = sotto_gguf_find_tensor(g, "ids");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ids);
    CU_ASSERT_EQUAL_FATAL(ids->dtype, SOTTO_DTYPE_I32);
    int32_t id[16];
    memcpy(id, ids->data, sizeof(int32_t) * (size_t)ids->n_elems);
    float *got = malloc(sizeof(float) * (size_t)ny);
    CU_ASSERT_EQUAL(sotto_embedding(table, sh[0], (int)sh[1], id, ids->n_elems, got), SOTTO_OK);
    TU_ASSERT_CLOSE("embedding", got, y, ny, 0.0, -1);
    id[3] = (int32_t)sh[0];
    CU_ASSERT_EQUAL(sotto_embedding(table, sh[0], (int)sh[1], id, ids->n_elems, got),
                    SOTTO_ERR_INVALID_ARG);
    free(table);
    free(y);
    free(got);
    sotto_gguf_close(g);
}

int main(void)
{
    sotto_alloc_init(&g_a, NULL);
    if (sotto_threadpool_create(2, &g_a, &g_tp) != SOTTO_OK) return 1;
    sotto_cpu_init(&g_ctx[0], ~0u, NULL);
    sotto_cpu_init(&g_ctx[1], 0, NULL);
    sotto_cpu_init(&g_ctx[2], ~0u, g_tp);
    static const tu_test tests[] = {{"linear", test_linear},
                                    {"conv1d", test_conv1d},
                                    {"conv_transpose1d", test_convtr1d},
                                    {"conv2d", test_conv2d},
                                    {"norms", test_norms},
                                    {"activations", test_activations},
                                    {"embedding", test_embedding},
                                    {NULL, NULL}};
    const int rc = tu_run_suite("ops_golden", tests);
    sotto_threadpool_free(g_tp);
    return rc;
}
