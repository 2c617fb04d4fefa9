/*
 * FlexiCodec encode side (without SenseVoice) against the official flexicodec 0.1.2 modules:
 * the small random-weight model and fixtures of tools/golden/flexicodec_encode.py (a real
 * speech excerpt, piecewise-constant semantic features, thresholds 0.91 and 1.0).
 *
 * Bounds (fp32): DAC encoder output, aggregates and FSQ bound values max-abs ≤ 1e-4; merge
 * boundaries and group lengths identical; FSQ and RVQ indices identical except where the
 * reference's own decision is within 1e-5 (an FSQ bound value that close to a rounding
 * boundary, an RVQ best/second-best score gap that small): such cases are counted and
 * printed, and the later RVQ stages of that group are not compared. Every parity case runs
 * on the SIMD kernels, the scalar kernels and a 2-thread pool. A decode-only model file and a
 * file with an encoder tensor missing fail to load with an error naming the culprit.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codecs/flexicodec/encode.h"
#include "core/threadpool.h"
#include "testutil.h"

#define TOL_FEAT 1e-4
#define TOL_TIE 1e-5

#define MODEL "flexicodec/encode-small.gguf"
#define MODEL_DECODE_ONLY "flexicodec/decode-small.gguf"
#define GOLDEN "flexicodec/encode-small_golden.gguf"
#define N_THRESHOLDS 2

static sotto_threadpool *g_tp;

typedef struct ctx {
    sotto_cpu cpu;
    const char *name;
} ctx;

static int contexts(ctx out[3])
{
    sotto_cpu_init(&out[0].cpu, ~0u, NULL);
    out[0].name = "simd";
    sotto_cpu_init(&out[1].cpu, 0u, NULL);
    out[1].name = "scalar";
    sotto_cpu_init(&out[2].cpu, ~0u, g_tp);
    out[2].name = "2 threads";
    return g_tp ? 3 : 2;
}

typedef struct loaded {
    sotto_gguf *g;
    flexicodec_decoder_weights dw;
    flexicodec_encoder_weights ew;
} loaded;

static void load(loaded *m)
{
    sotto_status st;
    memset(m, 0, sizeof *m);
    int rc = sotto_gguf_open_file(tu_data_path(MODEL), 1, NULL, &m->g, &st);
    if (rc) fprintf(stderr, "open: %s\n", st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    rc = flexicodec_decoder_weights_load(&m->dw, m->g, NULL, &st);
    if (rc) fprintf(stderr, "decoder load: %s\n", st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    rc = flexicodec_encoder_weights_load(&m->ew, m->g, &m->dw, NULL, &st);
    if (rc) fprintf(stderr, "encoder load: %s\n", st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
}

static void unload(loaded *m)
{
    flexicodec_encoder_weights_free(&m->ew);
    flexicodec_decoder_weights_free(&m->dw);
    sotto_gguf_close(m->g);
}

static const int32_t *ints(const sotto_gguf *g, const char *name, int64_t shape[2])
{
    const sotto_gguf_tensor *t = sotto_gguf_find_tensor(g, name);
    if (!t) fprintf(stderr, "fixture has no tensor '%s'\n", name);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL_FATAL(t->dtype, SOTTO_DTYPE_I32);
    if (shape) {
        shape[0] = t->shape[0];
        shape[1] = t->n_dims > 1 ? t->shape[1] : 1;
    }
    return t->data;
}

static float *floats(const sotto_gguf *g, const char *name, int64_t *n, int64_t shape[4])
{
    float *p = tu_golden_f32(g, name, n, shape);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    return p;
}

static void *buf(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    return p;
}

static float threshold(const sotto_gguf *g, int k)
{
    char key[64];
    double v = 0.0;
    snprintf(key, sizeof key, "flexicodec.threshold.%d", k);
    CU_ASSERT_EQUAL_FATAL(sotto_gguf_get_f64(g, key, &v, NULL), SOTTO_OK);
    return (float)v;
}

static void name_k(char *out, size_t size, const char *stem, int k)
{
    snprintf(out, size, "%s_%d", stem, k);
}

static void test_hparams(void)
{
    loaded m;
    load(&m);
    const flexicodec_encoder_hparams *hp = &m.ew.hp;
    CU_ASSERT_EQUAL(hp->hop_length, 1280);
    CU_ASSERT_EQUAL(hp->encoder_dim, 2);
    CU_ASSERT_EQUAL(hp->n_rates, 5);
    CU_ASSERT_EQUAL(hp->encoder_rates[2], 5);
    CU_ASSERT_EQUAL(hp->latent_dim, 32);
    CU_ASSERT_EQUAL(hp->ssl_dim, 512);
    CU_ASSERT_EQUAL(hp->max_tokens_per_group, 8);
    CU_ASSERT_EQUAL(hp->n_codebooks, 4);
    CU_ASSERT_TRUE(fabsf(hp->default_threshold - 0.91f) < 1e-7f);
    CU_ASSERT_TRUE(fabsf(hp->fsq_bound_eps - 1e-3f) < 1e-9f);
    CU_ASSERT_TRUE(m.ew.sem_agg.has_proj); /* width 64 inside, 512-d features */
    CU_ASSERT_EQUAL(m.ew.sem_agg.dim, 64);
    CU_ASSERT_FALSE(m.ew.ac_agg.has_proj);
    CU_ASSERT_EQUAL(m.ew.ac_agg.stack.cfg.n_layers, 2);
    CU_ASSERT_EQUAL(flexicodec_dac_encode_frames(hp, 0), 0);
    CU_ASSERT_EQUAL(flexicodec_dac_encode_frames(hp, 1), 1);
    CU_ASSERT_EQUAL(flexicodec_dac_encode_frames(hp, 1280), 1);
    CU_ASSERT_EQUAL(flexicodec_dac_encode_frames(hp, 1281), 2);
    CU_ASSERT_EQUAL(flexicodec_dac_encode_frames(hp, 31000), 25);
    unload(&m);
}

static void test_dac_encoder(void)
{
    loaded m;
    load(&m);
    sotto_gguf *g = tu_golden_open(GOLDEN);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    int64_t n, n_z, zshape[4];
    float *wave = floats(g, "wave", &n, NULL);
    float *want = floats(g, "dac_enc", &n_z, zshape);
    const int64_t T = flexicodec_dac_encode_frames(&m.ew.hp, n);
    CU_ASSERT_EQUAL_FATAL(T, zshape[0]);
    CU_ASSERT_EQUAL_FATAL(zshape[1], m.ew.hp.latent_dim);
    float *z = buf(sizeof(float) * (size_t)n_z);
    float *s = buf(sizeof(float) * flexicodec_dac_encode_scratch(&m.ew.hp, n));
    ctx c[3];
    const int nc = contexts(c);
    for (int k = 0; k < nc; k++) {
        char what[96];
        memset(z, 0, sizeof(float) * (size_t)n_z);
        CU_ASSERT_EQUAL(flexicodec_dac_encode(&c[k].cpu, &m.ew, wave, n, z, s), T);
        snprintf(what, sizeof what, "DAC encoder, %lld samples -> %lld frames (%s)", (long long)n,
                 (long long)T, c[k].name);
        TU_ASSERT_CLOSE(what, z, want, n_z, TOL_FEAT, -1);
    }
    CU_ASSERT_EQUAL(flexicodec_dac_encode(&c[0].cpu, &m.ew, wave, 0, z, s), 0);
    CU_ASSERT_EQUAL(flexicodec_dac_encode(&c[0].cpu, &m.ew, NULL, n, z, s), SOTTO_ERR_INVALID_ARG);
    free(wave), free(want), free(z), free(s);
    sotto_gguf_close(g);
    unload(&m);
}

/* Frames both streams are truncated to. */
static int64_t common_frames(const sotto_gguf *g, int64_t *T_sem)
{
    int64_t fs[4], zs[4];
    free(floats(g, "features", NULL, fs));
    free(floats(g, "dac_enc", NULL, zs));
    *T_sem = fs[0];
    return fs[0] < zs[0] ? fs[0] : zs[0];
}

static void test_merge(void)
{
    loaded m;
    load(&m);
    sotto_gguf *g = tu_golden_open(GOLDEN);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    int64_t T_sem;
    const int64_t T = common_frames(g, &T_sem);
    CU_ASSERT_TRUE_FATAL(T > 1 && T < T_sem + 2);
    float *feats = floats(g, "features", NULL, NULL);
    int32_t *lengths = buf(sizeof(int32_t) * (size_t)T);
    float *sim = buf(sizeof(float) * (size_t)T);
    const int ssl = m.ew.hp.ssl_dim;
    for (int k = 0; k < N_THRESHOLDS; k++) {
        char nm[32], what[96];
        int64_t ls[2];
        const float th = threshold(g, k);
        name_k(nm, sizeof nm, "lengths", k);
        const int32_t *want = ints(g, nm, ls);
        name_k(nm, sizeof nm, "sim", k);
        float *want_sim = floats(g, nm, NULL, NULL);
        const int64_t G = flexicodec_merge(feats, T, ssl, th, m.ew.hp.merge_eps,
                                           m.ew.hp.max_tokens_per_group, lengths, sim);
        printf("  threshold %.2f: %lld frames -> %lld groups (reference %lld)\n", (double)th,
               (long long)T, (long long)G, (long long)ls[0]);
        CU_ASSERT_EQUAL_FATAL(G, ls[0]);
        CU_ASSERT_EQUAL(memcmp(lengths, want, sizeof(int32_t) * (size_t)G), 0);
        snprintf(what, sizeof what, "cosine similarities (threshold %.2f)", (double)th);
        TU_ASSERT_CLOSE(what, sim, want_sim, T - 1, 1e-6, -1);
        free(want_sim);
    }
    /* Rules: a run of 19 equal frames is cut 8 + 8 + 3; without a limit it stays whole; the
     * opposite frame 19 starts a group of its own. */
    float x[20 * 2];
    for (int t = 0; t < 20; t++)
        x[2 * t] = 1.0f, x[2 * t + 1] = 0.5f;
    x[2 * 19] = -1.0f; /* frame 19: opposite direction */
    int32_t l[20];
    CU_ASSERT_EQUAL(flexicodec_merge(x, 20, 2, 0.91f, 1e-8f, 8, l, NULL), 4);
    CU_ASSERT(l[0] == 8 && l[1] == 8 && l[2] == 3 && l[3] == 1);
    CU_ASSERT_EQUAL(flexicodec_merge(x, 20, 2, 0.91f, 1e-8f, 0, l, NULL), 2);
    CU_ASSERT_EQUAL(l[0], 19);
    /* sim <= threshold starts a group: equal frames have sim exactly 1 (1 ≤ 1.0) */
    CU_ASSERT_EQUAL(flexicodec_merge(x, 19, 2, 1.0f, 1e-8f, 8, l, NULL), 19);
    CU_ASSERT_EQUAL(flexicodec_merge(x, 1, 2, 0.5f, 1e-8f, 8, l, NULL), 1);
    CU_ASSERT_EQUAL(flexicodec_merge(x, 0, 2, 0.5f, 1e-8f, 8, l, NULL), 0);
    free(feats), free(lengths), free(sim);
    sotto_gguf_close(g);
    unload(&m);
}

static void test_aggregators(void)
{
    loaded m;
    load(&m);
    sotto_gguf *g = tu_golden_open(GOLDEN);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    int64_t T_sem;
    const int64_t T = common_frames(g, &T_sem);
    float *feats = floats(g, "features", NULL, NULL);
    float *ac = floats(g, "dac_enc", NULL, NULL);
    const int ssl = m.ew.hp.ssl_dim, lat = m.ew.hp.latent_dim;
    float *y = buf(sizeof(float) * (size_t)T * (size_t)ssl);
    size_t ns = flexicodec_aggregate_scratch(&m.ew.sem_agg, T, T);
    if (flexicodec_aggregate_scratch(&m.ew.ac_agg, T, T) > ns)
        ns = flexicodec_aggregate_scratch(&m.ew.ac_agg, T, T);
    float *s = buf(sizeof(float) * ns);
    ctx c[3];
    const int nc = contexts(c);
    for (int k = 0; k < N_THRESHOLDS; k++) {
        char nm[32], what[128];
        int64_t ls[2], n_sem, n_ac;
        name_k(nm, sizeof nm, "lengths", k);
        const int32_t *lengths = ints(g, nm, ls);
        const int64_t G = ls[0];
        name_k(nm, sizeof nm, "sem_agg", k);
        float *want_sem = floats(g, nm, &n_sem, NULL);
        name_k(nm, sizeof nm, "ac_agg", k);
        float *want_ac = floats(g, nm, &n_ac, NULL);
        CU_ASSERT_EQUAL_FATAL(n_sem, G * ssl);
        CU_ASSERT_EQUAL_FATAL(n_ac, G * lat);
        for (int i = 0; i < nc; i++) {
            CU_ASSERT_EQUAL(
                flexicodec_aggregate(&c[i].cpu, &m.ew.sem_agg, feats, T, lengths, G, y, s),
                SOTTO_OK);
            snprintf(what, sizeof what, "semantic aggregator, %lld groups (%s)", (long long)G,
                     c[i].name);
            TU_ASSERT_CLOSE(what, y, want_sem, n_sem, TOL_FEAT, -1);
            CU_ASSERT_EQUAL(flexicodec_aggregate(&c[i].cpu, &m.ew.ac_agg, ac, T, lengths, G, y, s),
                            SOTTO_OK);
            snprintf(what, sizeof what, "acoustic aggregator, %lld groups (%s)", (long long)G,
                     c[i].name);
            TU_ASSERT_CLOSE(what, y, want_ac, n_ac, TOL_FEAT, -1);
        }
        /* lengths that do not add up to T */
        CU_ASSERT_EQUAL(flexicodec_aggregate(&c[0].cpu, &m.ew.ac_agg, ac, T - 1, lengths, G, y, s),
                        SOTTO_ERR_INVALID_ARG);
        free(want_sem), free(want_ac);
    }
    free(feats), free(ac), free(y), free(s);
    sotto_gguf_close(g);
    unload(&m);
}

/* FSQ indices: identical, except where a golden bound value lies within TOL_TIE of a rounding
 * boundary (counted in *ties). Returns the number of other mismatches. */
static int fsq_mismatches(const int32_t *got, const int32_t *want, const float *bound, int64_t G,
                          int D, int *ties)
{
    int bad = 0;
    for (int64_t g = 0; g < G; g++) {
        if (got[g] == want[g]) continue;
        int tie = 0;
        for (int d = 0; d < D; d++) {
            const float b = bound[g * D + d];
            tie |= fabsf(b - floorf(b) - 0.5f) < TOL_TIE;
        }
        if (tie) {
            (*ties)++;
        } else {
            fprintf(stderr, "  FSQ group %lld: %d, reference %d\n", (long long)g, got[g], want[g]);
            bad++;
        }
    }
    return bad;
}

static void test_fsq(void)
{
    loaded m;
    load(&m);
    sotto_gguf *g = tu_golden_open(GOLDEN);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    const int D = m.ew.hp.n_levels;
    ctx c[3];
    const int nc = contexts(c);
    for (int k = 0; k < N_THRESHOLDS; k++) {
        char nm[32], what[128];
        int64_t fs[2], n_b;
        name_k(nm, sizeof nm, "fsq", k);
        const int32_t *want = ints(g, nm, fs);
        const int64_t G = fs[0];
        name_k(nm, sizeof nm, "sem_agg", k);
        float *x = floats(g, nm, NULL, NULL);
        name_k(nm, sizeof nm, "fsq_bound", k);
        float *want_b = floats(g, nm, &n_b, NULL);
        CU_ASSERT_EQUAL_FATAL(n_b, G * D);
        int32_t *idx = buf(sizeof(int32_t) * (size_t)G);
        float *b = buf(sizeof(float) * (size_t)n_b);
        float *s = buf(sizeof(float) * flexicodec_semantic_encode_scratch(&m.ew.hp, G));
        for (int i = 0; i < nc; i++) {
            int ties = 0;
            CU_ASSERT_EQUAL(flexicodec_semantic_encode(&c[i].cpu, &m.ew, x, G, idx, b, s),
                            SOTTO_OK);
            snprintf(what, sizeof what, "FSQ bound(project_in(ConvNeXt encoder)) (%s)", c[i].name);
            TU_ASSERT_CLOSE(what, b, want_b, n_b, TOL_FEAT, -1);
            CU_ASSERT_EQUAL(fsq_mismatches(idx, want, want_b, G, D, &ties), 0);
            printf("  FSQ indices, %lld groups (%s): %d near-tie mismatches\n", (long long)G,
                   c[i].name, ties);
        }
        free(x), free(want_b), free(idx), free(b), free(s);
    }
    /* Levels [8]×5: bound values −4 … 3 → digits 0 … 7; index = Σ digit·8^d. */
    const float z[10] = {-50.0f, -50.0f, -50.0f, -50.0f, -50.0f, 50.0f, 50.0f, 50.0f, 50.0f, 50.0f};
    int32_t idx2[2];
    CU_ASSERT_EQUAL(flexicodec_fsq_quantize(&m.ew.hp, z, 2, idx2, NULL), SOTTO_OK);
    CU_ASSERT_EQUAL(idx2[0], 0);
    CU_ASSERT_EQUAL(idx2[1], 32767);
    sotto_gguf_close(g);
    unload(&m);
}

/* RVQ codes [G][ldc] against the reference [G][nq]: per group, stages are compared in order;
 * the first mismatch is tolerated (counted in *ties, later stages of the group skipped) when
 * the reference's margin there is below TOL_TIE. Returns the other mismatches. */
static int rvq_mismatches(const int32_t *got, int ldc, const int32_t *want, const float *margin,
                          int64_t G, int nq, int n_cmp, int *ties)
{
    int bad = 0;
    for (int64_t g = 0; g < G; g++)
        for (int q = 0; q < n_cmp; q++) {
            if (got[g * ldc + q] == want[g * nq + q]) continue;
            if (margin[g * nq + q] < TOL_TIE) {
                (*ties)++;
            } else {
                fprintf(stderr, "  RVQ group %lld stage %d: %d, reference %d (margin %.3g)\n",
                        (long long)g, q, got[g * ldc + q], want[g * nq + q],
                        (double)margin[g * nq + q]);
                bad++;
            }
            break;
        }
    return bad;
}

static void test_rvq(void)
{
    loaded m;
    load(&m);
    sotto_gguf *g = tu_golden_open(GOLDEN);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    const int lat = m.ew.hp.latent_dim;
    ctx c[3];
    const int nc = contexts(c);
    for (int k = 0; k < N_THRESHOLDS; k++) {
        char nm[32];
        int64_t rs[2], n_in;
        name_k(nm, sizeof nm, "rvq", k);
        const int32_t *want = ints(g, nm, rs);
        const int64_t G = rs[0];
        const int nq = (int)rs[1];
        CU_ASSERT_EQUAL_FATAL(nq, m.ew.hp.n_codebooks);
        name_k(nm, sizeof nm, "rvq_in", k);
        float *in = floats(g, nm, &n_in, NULL);
        name_k(nm, sizeof nm, "rvq_margin", k);
        float *margin = floats(g, nm, NULL, NULL);
        CU_ASSERT_EQUAL_FATAL(n_in, G * lat);
        float *r = buf(sizeof(float) * (size_t)n_in);
        int32_t *codes = buf(sizeof(int32_t) * (size_t)G * (size_t)nq);
        float *s = buf(sizeof(float) * flexicodec_rvq_encode_scratch(&m.ew, G));
        for (int i = 0; i < nc; i++) {
            int ties = 0;
            memcpy(r, in, sizeof(float) * (size_t)n_in);
            CU_ASSERT_EQUAL(flexicodec_rvq_encode(&c[i].cpu, &m.dw, &m.ew, r, G, nq, codes, nq, s),
                            SOTTO_OK);
            CU_ASSERT_EQUAL(rvq_mismatches(codes, nq, want, margin, G, nq, nq, &ties), 0);
            printf("  RVQ %d stages, %lld groups (%s): %d near-tie mismatches\n", nq, (long long)G,
                   c[i].name, ties);
        }
        /* 2 stages: the first two of the 4 (row stride 4) */
        int ties = 0;
        memcpy(r, in, sizeof(float) * (size_t)n_in);
        memset(codes, 0xff, sizeof(int32_t) * (size_t)G * (size_t)nq);
        CU_ASSERT_EQUAL(flexicodec_rvq_encode(&c[0].cpu, &m.dw, &m.ew, r, G, 2, codes, nq, s),
                        SOTTO_OK);
        CU_ASSERT_EQUAL(rvq_mismatches(codes, nq, want, margin, G, nq, 2, &ties), 0);
        CU_ASSERT_EQUAL(codes[2], -1); /* stage 2 untouched */
        CU_ASSERT_EQUAL(
            flexicodec_rvq_encode(&c[0].cpu, &m.dw, &m.ew, r, G, nq + 1, codes, nq + 1, s),
            SOTTO_ERR_INVALID_ARG);
        CU_ASSERT_EQUAL(flexicodec_rvq_encode(&c[0].cpu, &m.dw, &m.ew, r, G, 3, codes, 2, s),
                        SOTTO_ERR_INVALID_ARG);
        free(in), free(margin), free(r), free(codes), free(s);
    }
    sotto_gguf_close(g);
    unload(&m);
}

static void test_end_to_end(void)
{
    loaded m;
    load(&m);
    sotto_gguf *g = tu_golden_open(GOLDEN);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    int64_t n, fshape[4];
    float *wave = floats(g, "wave", &n, NULL);
    float *feats = floats(g, "features", NULL, fshape);
    const int64_t T_sem = fshape[0];
    const int nq = m.ew.hp.n_codebooks, D = m.ew.hp.n_levels;
    const size_t ns = flexicodec_encode_scratch(&m.dw, &m.ew, n, T_sem);
    CU_ASSERT_TRUE_FATAL(ns > 0);
    float *s = buf(sizeof(float) * ns);
    int32_t *lengths = buf(sizeof(int32_t) * (size_t)T_sem);
    int32_t *fsq = buf(sizeof(int32_t) * (size_t)T_sem);
    int32_t *rvq = buf(sizeof(int32_t) * (size_t)T_sem * (size_t)nq);
    ctx c[3];
    const int nc = contexts(c);
    for (int k = 0; k < N_THRESHOLDS; k++) {
        char nm[32];
        int64_t ls[2];
        const float th = threshold(g, k);
        name_k(nm, sizeof nm, "lengths", k);
        const int32_t *want_l = ints(g, nm, ls);
        name_k(nm, sizeof nm, "fsq", k);
        const int32_t *want_f = ints(g, nm, NULL);
        name_k(nm, sizeof nm, "rvq", k);
        const int32_t *want_r = ints(g, nm, NULL);
        name_k(nm, sizeof nm, "fsq_bound", k);
        float *bound = floats(g, nm, NULL, NULL);
        name_k(nm, sizeof nm, "rvq_margin", k);
        float *margin = floats(g, nm, NULL, NULL);
        for (int i = 0; i < nc; i++) {
            int ft = 0, rt = 0;
            const int64_t G = flexicodec_encode_from_features(
                &c[i].cpu, &m.dw, &m.ew, wave, n, feats, T_sem, th, nq, lengths, fsq, rvq, s);
            CU_ASSERT_EQUAL_FATAL(G, ls[0]);
            CU_ASSERT_EQUAL(memcmp(lengths, want_l, sizeof(int32_t) * (size_t)G), 0);
            const int fb = fsq_mismatches(fsq, want_f, bound, G, D, &ft);
            CU_ASSERT_EQUAL(fb, 0);
            /* an FSQ near-tie changes the residual of that group: its RVQ codes are not
             * compared then */
            int rb = 0;
            if (ft == 0) rb = rvq_mismatches(rvq, nq, want_r, margin, G, nq, nq, &rt);
            CU_ASSERT_EQUAL(rb, 0);
            printf("  waveform + features -> codes, threshold %.2f (%s): %lld groups, FSQ %d / "
                   "RVQ %d near-tie mismatches\n",
                   (double)th, c[i].name, (long long)G, ft, rt);
        }
        free(bound), free(margin);
    }
    /* n_q 0: lengths and FSQ only */
    CU_ASSERT_TRUE(flexicodec_encode_from_features(&c[0].cpu, &m.dw, &m.ew, wave, n, feats, T_sem,
                                                   1.0f, 0, lengths, fsq, NULL, s) > 0);
    CU_ASSERT_EQUAL(flexicodec_encode_from_features(&c[0].cpu, &m.dw, &m.ew, wave, n, feats, T_sem,
                                                    1.0f, nq + 1, lengths, fsq, rvq, s),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(flexicodec_encode_from_features(&c[0].cpu, &m.dw, &m.ew, wave, n, feats, 0,
                                                    1.0f, nq, lengths, fsq, rvq, s),
                    0);
    free(wave), free(feats), free(s), free(lengths), free(fsq), free(rvq);
    sotto_gguf_close(g);
    unload(&m);
}

/* ---- broken model files ------------------------------------------------------------------ */

static void test_broken_model(void)
{
    sotto_status st;
    /* A decode-only file (converted without --with-encoder). */
    sotto_gguf *g = NULL;
    flexicodec_decoder_weights dw;
    flexicodec_encoder_weights ew;
    CU_ASSERT_EQUAL_FATAL(sotto_gguf_open_file(tu_data_path(MODEL_DECODE_ONLY), 1, NULL, &g, &st),
                          SOTTO_OK);
    CU_ASSERT_EQUAL_FATAL(flexicodec_decoder_weights_load(&dw, g, NULL, &st), SOTTO_OK);
    memset(&ew, 0x5a, sizeof ew);
    int rc = flexicodec_encoder_weights_load(&ew, g, &dw, NULL, &st);
    CU_ASSERT_EQUAL(rc, SOTTO_ERR_MODEL);
    if (rc) fprintf(stderr, "  expected failure (decode-only file): %s\n", st.message);
    TU_ASSERT_HAS(st.message, "flexicodec.encoder_dilations");
    CU_ASSERT_PTR_NULL(ew.blocks);
    flexicodec_encoder_weights_free(&ew);
    flexicodec_decoder_weights_free(&dw);
    sotto_gguf_close(g);

    /* An encoder tensor missing: rename a strided conv of the DAC encoder. */
    FILE *f = fopen(tu_data_path(MODEL), "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, 0, SEEK_END);
    const size_t n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = buf(n);
    CU_ASSERT_EQUAL_FATAL(fread(p, 1, n, f), n);
    fclose(f);
    const char *victims[2] = {
        "dac.encoder.block.2.block.4.weight",
        "acoustic_aggregator.transformer.transformer.layers.1.linear2.weight"};
    for (int v = 0; v < 2; v++) {
        const char *name = victims[v];
        const size_t len = strlen(name);
        size_t o = 0;
        int found = 0;
        for (; o + 8 + len <= n; o++) {
            uint64_t l;
            memcpy(&l, p + o, 8);
            if (l == len && !memcmp(p + o + 8, name, len)) {
                found = 1;
                break;
            }
        }
        CU_ASSERT_TRUE_FATAL(found);
        p[o + 8 + len - 1] = 'X';
        CU_ASSERT_EQUAL_FATAL(sotto_gguf_open_buffer(p, n, 1, NULL, &g, &st), SOTTO_OK);
        CU_ASSERT_EQUAL_FATAL(flexicodec_decoder_weights_load(&dw, g, NULL, &st), SOTTO_OK);
        memset(&ew, 0x5a, sizeof ew);
        rc = flexicodec_encoder_weights_load(&ew, g, &dw, NULL, &st);
        CU_ASSERT_EQUAL(rc, SOTTO_ERR_MODEL);
        if (rc) fprintf(stderr, "  expected failure (renamed tensor): %s\n", st.message);
        TU_ASSERT_HAS(st.message, name);
        CU_ASSERT_PTR_NULL(ew.blocks);
        flexicodec_encoder_weights_free(&ew);
        flexicodec_decoder_weights_free(&dw);
        sotto_gguf_close(g);
        p[o + 8 + len - 1] = name[len - 1];
    }
    CU_ASSERT_EQUAL(flexicodec_encoder_weights_load(&ew, NULL, NULL, NULL, NULL),
                    SOTTO_ERR_INVALID_ARG);
    free(p);
}

int main(void)
{
    static const tu_test tests[] = {
        {"hparams", test_hparams},
        {"dac_encoder", test_dac_encoder},
        {"frame_merging", test_merge},
        {"query_token_aggregators", test_aggregators},
        {"convnext_encoder_fsq", test_fsq},
        {"rvq_encode", test_rvq},
        {"features_to_codes", test_end_to_end},
        {"broken_model_files", test_broken_model},
        {NULL, NULL},
    };
    if (sotto_threadpool_create(2, NULL, &g_tp)) g_tp = NULL;
    int rc = tu_run_suite("flexicodec_encode", tests);
    sotto_threadpool_free(g_tp);
    return rc;
}
