/*
 * FlexiCodec decode-side parts against the official flexicodec 0.1.2 modules: the small
 * random-weight model and fixtures of tools/golden/flexicodec.py (FSQ decode, project_out,
 * ConvNeXt decoder, RVQ decode, expansion by token lengths, DAC decoder, and the whole chain
 * of FlexiCodec.decode_from_codes with the bottleneck transformer replaced by the identity).
 *
 * Tolerances (fp32): intermediate features max-abs ≤ 1e-4, FSQ codes and expansion exact;
 * waveforms max-abs ≤ 1e-3 and NMSE ≤ 1e-6. f16-stored weights: NMSE ≤ 1e-4 against the fp32
 * model. Every parity case also runs on the scalar kernels and on a 2-thread pool. A model file
 * with a missing tensor, a wrong shape or a missing key must fail to load with an error that
 * names the culprit.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codecs/flexicodec/flexicodec.h"
#include "core/threadpool.h"
#include "testutil.h"

#define TOL_FEAT 1e-4
#define TOL_WAVE 1e-3
#define TOL_WAVE_NMSE 1e-6

#define MODEL "flexicodec/small.gguf"
#define MODEL_F16 "flexicodec/small-f16.gguf"
#define GOLDEN "flexicodec/small_golden.gguf"

static sotto_threadpool *g_tp;

typedef struct ctx {
    sotto_cpu cpu;
    const char *name;
} ctx;

/* SIMD, scalar reference kernels, SIMD on a 2-thread pool. */
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
    flexicodec_decoder_weights w;
} loaded;

static void load(loaded *m, const char *rel)
{
    sotto_status st;
    memset(m, 0, sizeof *m);
    int rc = sotto_gguf_open_file(tu_data_path(rel), 1, NULL, &m->g, &st);
    if (rc) fprintf(stderr, "open %s: %s\n", rel, st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    rc = flexicodec_decoder_weights_load(&m->w, m->g, NULL, &st);
    if (rc) fprintf(stderr, "load %s: %s\n", rel, st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
}

static void unload(loaded *m)
{
    flexicodec_decoder_weights_free(&m->w);
    sotto_gguf_close(m->g);
}

/* An int32 fixture tensor (borrowed) and its shape. */
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

static float *scratch(size_t n)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    return p;
}

static void test_hparams(void)
{
    loaded m;
    load(&m, MODEL);
    const flexicodec_hparams *hp = &m.w.hp;
    /* The small config of tools/golden/flexicodec_make_checkpoint.py. */
    CU_ASSERT_EQUAL(hp->sample_rate, 16000);
    CU_ASSERT_EQUAL(hp->latent_dim, 64);
    CU_ASSERT_EQUAL(hp->decoder_dim, 96);
    CU_ASSERT_EQUAL(hp->n_rates, 5);
    CU_ASSERT_EQUAL(hp->hop_length, 1280);
    CU_ASSERT_EQUAL(hp->n_codebooks, 4);
    CU_ASSERT_EQUAL(hp->codebook_size, 64);
    CU_ASSERT_EQUAL(hp->n_levels, 5);
    CU_ASSERT_EQUAL(hp->fsq_size, 32768);
    CU_ASSERT_EQUAL(hp->convnext_dim, 96);
    CU_ASSERT_EQUAL(hp->convnext_intermediate, 128);
    CU_ASSERT_EQUAL(hp->convnext_layers, 2);
    CU_ASSERT_EQUAL(hp->convnext_causal, 0);
    CU_ASSERT_EQUAL(hp->decode_semantic, 1);
    CU_ASSERT_EQUAL(hp->transformer_layers, 2);
    CU_ASSERT_TRUE(fabsf(hp->convnext_eps - 1e-6f) < 1e-12f);
    /* Released strides [2, 8, 5, 4, 4]: 1280·T − 16 samples (the odd stride loses one). */
    for (int64_t T = 1; T < 40; T += 7)
        CU_ASSERT_EQUAL(flexicodec_dac_out_len(hp, T), 1280 * T - 16);
    CU_ASSERT_EQUAL(flexicodec_dac_out_len(hp, 0), 0);
    unload(&m);
}

static void test_semantic(void)
{
    loaded m;
    load(&m, MODEL);
    sotto_gguf *g = tu_golden_open(GOLDEN);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    const flexicodec_hparams *hp = &m.w.hp;
    int64_t ishape[2], n_code, n_fsq, n_sem;
    const int32_t *idx = ints(g, "fsq_index", ishape);
    const int64_t G = ishape[0];
    float *want_code = floats(g, "fsq_code", &n_code, NULL);
    float *want_fsq = floats(g, "fsq_out", &n_fsq, NULL);
    float *want_sem = floats(g, "semantic", &n_sem, NULL);
    CU_ASSERT_EQUAL_FATAL(n_code, G * hp->n_levels);
    CU_ASSERT_EQUAL_FATAL(n_fsq, G * hp->convnext_dim);
    CU_ASSERT_EQUAL_FATAL(n_sem, G * hp->latent_dim);

    float *code = scratch((size_t)n_code), *x = scratch((size_t)n_fsq), *y = scratch((size_t)n_sem);
    float *s1 = scratch(flexicodec_convnext_scratch(hp, G)),
          *s2 = scratch(flexicodec_semantic_scratch(hp, G));
    CU_ASSERT_EQUAL(flexicodec_fsq_codes(hp, idx, G, code), SOTTO_OK);
    TU_ASSERT_CLOSE("FSQ index -> normalised code", code, want_code, n_code, 0.0, -1);

    ctx c[3];
    const int nc = contexts(c);
    for (int k = 0; k < nc; k++) {
        char what[96];
        CU_ASSERT_EQUAL(flexicodec_fsq_project_out(&c[k].cpu, &m.w, code, G, x), SOTTO_OK);
        snprintf(what, sizeof what, "FSQ project_out (%s)", c[k].name);
        TU_ASSERT_CLOSE(what, x, want_fsq, n_fsq, TOL_FEAT, -1);
        /* ConvNeXt decoder from the official project_out output. */
        memcpy(x, want_fsq, sizeof(float) * (size_t)n_fsq);
        CU_ASSERT_EQUAL(flexicodec_convnext_decode(&c[k].cpu, &m.w, x, G, y, s1), SOTTO_OK);
        snprintf(what, sizeof what, "ConvNeXt decoder (%s)", c[k].name);
        TU_ASSERT_CLOSE(what, y, want_sem, n_sem, TOL_FEAT, -1);
        /* The whole semantic branch from the indices. */
        memset(y, 0, sizeof(float) * (size_t)n_sem);
        CU_ASSERT_EQUAL(flexicodec_semantic_decode(&c[k].cpu, &m.w, idx, G, y, s2), SOTTO_OK);
        snprintf(what, sizeof what, "FSQ index -> semantic latent (%s)", c[k].name);
        TU_ASSERT_CLOSE(what, y, want_sem, n_sem, TOL_FEAT, -1);
    }

    /* Indices outside [0, 8^5) are refused, not wrapped. */
    const int32_t bad[2] = {5, 32768}, neg[1] = {-1};
    CU_ASSERT_EQUAL(flexicodec_fsq_codes(hp, bad, 2, code), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(flexicodec_semantic_decode(&c[0].cpu, &m.w, neg, 1, y, s2),
                    SOTTO_ERR_INVALID_ARG);
    free(code), free(x), free(y), free(s1), free(s2);
    free(want_code), free(want_fsq), free(want_sem);
    sotto_gguf_close(g);
    unload(&m);
}

static void test_rvq_and_expand(void)
{
    loaded m;
    load(&m, MODEL);
    sotto_gguf *g = tu_golden_open(GOLDEN);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    const flexicodec_hparams *hp = &m.w.hp;
    const int lat = hp->latent_dim;
    int64_t cshape[2], lshape[2], n_rvq, n_sx, n_ax, n_lat;
    const int32_t *codes = ints(g, "rvq_codes", cshape);
    const int32_t *lengths = ints(g, "token_lengths", lshape);
    const int64_t G = cshape[0];
    const int nq = (int)cshape[1];
    CU_ASSERT_EQUAL_FATAL(nq, hp->n_codebooks);
    CU_ASSERT_EQUAL_FATAL(lshape[0], G);
    float *want = floats(g, "rvq", &n_rvq, NULL), *want2 = floats(g, "rvq2", NULL, NULL);
    float *sem = floats(g, "semantic", NULL, NULL);
    float *want_sx = floats(g, "semantic_expanded", &n_sx, NULL);
    float *want_ax = floats(g, "acoustic_expanded", &n_ax, NULL);
    float *want_lat = floats(g, "latent", &n_lat, NULL);
    CU_ASSERT_EQUAL_FATAL(n_rvq, G * lat);

    float *y = scratch((size_t)n_rvq), *s = scratch(flexicodec_rvq_scratch(hp, G));
    ctx c[3];
    const int nc = contexts(c);
    for (int k = 0; k < nc; k++) {
        char what[96];
        CU_ASSERT_EQUAL(flexicodec_rvq_decode(&c[k].cpu, &m.w, codes, G, nq, nq, y, s), SOTTO_OK);
        snprintf(what, sizeof what, "RVQ decode, %d stages (%s)", nq, c[k].name);
        TU_ASSERT_CLOSE(what, y, want, n_rvq, TOL_FEAT, -1);
    }
    /* The first 2 stages of the same [G][4] code array. */
    CU_ASSERT_EQUAL(flexicodec_rvq_decode(&c[0].cpu, &m.w, codes, G, nq, 2, y, s), SOTTO_OK);
    TU_ASSERT_CLOSE("RVQ decode, 2 stages", y, want2, n_rvq, TOL_FEAT, -1);
    /* No acoustic codes: zeros. */
    CU_ASSERT_EQUAL(flexicodec_rvq_decode(&c[0].cpu, &m.w, NULL, G, 0, 0, y, NULL), SOTTO_OK);
    int zeros = 1;
    for (int64_t i = 0; i < n_rvq; i++)
        zeros &= y[i] == 0.0f;
    CU_ASSERT_TRUE(zeros);
    /* Codes outside the table, too many stages, ldc < n_q. */
    int32_t bad[4] = {0, 64, 0, 0};
    CU_ASSERT_EQUAL(flexicodec_rvq_decode(&c[0].cpu, &m.w, bad, 1, 4, 4, y, s),
                    SOTTO_ERR_INVALID_ARG);
    bad[1] = -1;
    CU_ASSERT_EQUAL(flexicodec_rvq_decode(&c[0].cpu, &m.w, bad, 1, 4, 4, y, s),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(flexicodec_rvq_decode(&c[0].cpu, &m.w, codes, G, 5, 5, y, s),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(flexicodec_rvq_decode(&c[0].cpu, &m.w, codes, G, 2, 3, y, s),
                    SOTTO_ERR_INVALID_ARG);

    /* Expansion by token lengths (exact), and the transformer input. */
    const int64_t T = flexicodec_expanded_len(lengths, G);
    CU_ASSERT_EQUAL_FATAL(T * lat, n_sx);
    CU_ASSERT_EQUAL_FATAL(n_ax, n_sx);
    float *sx = scratch((size_t)n_sx), *ax = scratch((size_t)n_ax), *sum = scratch((size_t)G * lat);
    CU_ASSERT_EQUAL(flexicodec_expand(sem, G, lat, lengths, sx), T);
    TU_ASSERT_CLOSE("semantic expanded", sx, want_sx, n_sx, 0.0, -1);
    CU_ASSERT_EQUAL(flexicodec_expand(want, G, lat, lengths, ax), T);
    TU_ASSERT_CLOSE("acoustic expanded", ax, want_ax, n_ax, 0.0, -1);
    /* Adding per group and expanding once gives the same floats as expanding both. */
    for (int64_t i = 0; i < G * lat; i++)
        sum[i] = want[i] + sem[i];
    CU_ASSERT_EQUAL(flexicodec_expand(sum, G, lat, lengths, sx), T);
    TU_ASSERT_CLOSE("latent (sum, then expanded)", sx, want_lat, n_lat, 0.0, -1);

    const int32_t neg[3] = {2, -1, 3}, zero[3] = {2, 0, 3};
    CU_ASSERT_EQUAL(flexicodec_expanded_len(neg, 3), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(flexicodec_expand(sum, 3, lat, neg, sx), SOTTO_ERR_INVALID_ARG);
    /* A length of 0 drops the group, as torch.repeat_interleave does. */
    CU_ASSERT_EQUAL(flexicodec_expand(sum, 3, lat, zero, sx), 5);
    CU_ASSERT_EQUAL(memcmp(sx + 2 * lat, sum + 2 * lat, sizeof(float) * (size_t)lat), 0);

    free(y), free(s), free(sx), free(ax), free(sum);
    free(want), free(want2), free(sem), free(want_sx), free(want_ax), free(want_lat);
    sotto_gguf_close(g);
    unload(&m);
}

static void test_dac_decoder(void)
{
    loaded m;
    load(&m, MODEL);
    sotto_gguf *g = tu_golden_open(GOLDEN);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    const flexicodec_hparams *hp = &m.w.hp;
    int64_t zshape[4], n_wave;
    float *z = floats(g, "dac_in", NULL, zshape);
    float *want = floats(g, "dac_wave", &n_wave, NULL);
    const int64_t T = zshape[0];
    CU_ASSERT_EQUAL_FATAL(zshape[1], hp->latent_dim);
    CU_ASSERT_EQUAL(flexicodec_dac_out_len(hp, T), n_wave);
    float *wave = scratch((size_t)n_wave), *s = scratch(flexicodec_dac_scratch(hp, T));
    ctx c[3];
    const int nc = contexts(c);
    for (int k = 0; k < nc; k++) {
        char what[96];
        memset(wave, 0, sizeof(float) * (size_t)n_wave);
        CU_ASSERT_EQUAL(flexicodec_dac_decode(&c[k].cpu, &m.w, z, T, wave, s), n_wave);
        snprintf(what, sizeof what, "DAC decoder waveform (%s)", c[k].name);
        TU_ASSERT_CLOSE(what, wave, want, n_wave, TOL_WAVE, TOL_WAVE_NMSE);
    }
    CU_ASSERT_EQUAL(flexicodec_dac_decode(&c[0].cpu, &m.w, z, 0, wave, s), 0);
    CU_ASSERT_EQUAL(flexicodec_dac_decode(&c[0].cpu, &m.w, z, -1, wave, s), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(flexicodec_dac_decode(&c[0].cpu, &m.w, NULL, T, wave, s),
                    SOTTO_ERR_INVALID_ARG);
    free(wave), free(s), free(z), free(want);
    sotto_gguf_close(g);
    unload(&m);
}

/* Codes → waveform through every stage but the transformer; returns the samples (malloc). */
static float *decode_chain(const sotto_cpu *cpu, const flexicodec_decoder_weights *w,
                           const sotto_gguf *g, int64_t *n_out)
{
    const flexicodec_hparams *hp = &w->hp;
    const int lat = hp->latent_dim;
    int64_t ishape[2], cshape[2];
    const int32_t *idx = ints(g, "fsq_index", ishape);
    const int32_t *codes = ints(g, "rvq_codes", cshape);
    const int32_t *lengths = ints(g, "token_lengths", NULL);
    const int64_t G = ishape[0];
    const int64_t T = flexicodec_expanded_len(lengths, G);
    CU_ASSERT_TRUE_FATAL(T > 0);
    float *sem = scratch((size_t)G * lat), *ac = scratch((size_t)G * lat);
    float *z = scratch((size_t)T * lat);
    size_t ns = flexicodec_semantic_scratch(hp, G);
    if (flexicodec_rvq_scratch(hp, G) > ns) ns = flexicodec_rvq_scratch(hp, G);
    if (flexicodec_dac_scratch(hp, T) > ns) ns = flexicodec_dac_scratch(hp, T);
    float *s = scratch(ns);
    const int64_t n = flexicodec_dac_out_len(hp, T);
    float *wave = scratch((size_t)n);
    CU_ASSERT_EQUAL(flexicodec_semantic_decode(cpu, w, idx, G, sem, s), SOTTO_OK);
    CU_ASSERT_EQUAL(flexicodec_rvq_decode(cpu, w, codes, G, (int)cshape[1], (int)cshape[1], ac, s),
                    SOTTO_OK);
    for (int64_t i = 0; i < G * lat; i++)
        ac[i] += sem[i];
    CU_ASSERT_EQUAL(flexicodec_expand(ac, G, lat, lengths, z), T);
    CU_ASSERT_EQUAL(flexicodec_dac_decode(cpu, w, z, T, wave, s), n);
    free(sem), free(ac), free(z), free(s);
    *n_out = n;
    return wave;
}

static void test_codes_to_wave(void)
{
    loaded m;
    load(&m, MODEL);
    sotto_gguf *g = tu_golden_open(GOLDEN);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    int64_t n_want, n;
    float *want = floats(g, "e2e_wave", &n_want, NULL);
    ctx c[3];
    const int nc = contexts(c);
    for (int k = 0; k < nc; k++) {
        char what[128];
        float *wave = decode_chain(&c[k].cpu, &m.w, g, &n);
        CU_ASSERT_EQUAL_FATAL(n, n_want);
        snprintf(what, sizeof what, "codes -> waveform, transformer = identity (%s)", c[k].name);
        TU_ASSERT_CLOSE(what, wave, want, n, TOL_WAVE, TOL_WAVE_NMSE);
        free(wave);
    }
    free(want);
    sotto_gguf_close(g);
    unload(&m);
}

static void test_f16_weights(void)
{
    loaded m32, m16;
    load(&m32, MODEL);
    load(&m16, MODEL_F16);
    sotto_gguf *g = tu_golden_open(GOLDEN);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_TRUE(m16.w.cnx[0].pw1.is_f16);
    CU_ASSERT_TRUE(m16.w.rvq[0].out_proj.is_f16);
    ctx c[3];
    contexts(c);
    int64_t n32, n16;
    float *a = decode_chain(&c[0].cpu, &m32.w, g, &n32);
    float *b = decode_chain(&c[0].cpu, &m16.w, g, &n16);
    CU_ASSERT_EQUAL_FATAL(n32, n16);
    TU_ASSERT_CLOSE("f16 weights vs f32 weights (codes -> waveform)", b, a, n32, -1, 1e-4);
    free(a), free(b);
    sotto_gguf_close(g);
    unload(&m32);
    unload(&m16);
}

/* Binary16 arithmetic on the decode path (flexicodec_decoder_weights_use_h16): the f16 file
 * switches its Linear, conv and transposed-conv weights (an f32 file does not); codes →
 * waveform stays within NMSE 1e-4 of the f32 model (measured 6e-5 on this small random-weight
 * model, whose deep Snake stack magnifies rounding more than a trained one), in every context;
 * one and two threads give the same bits (a row's sums do not depend on the split). The
 * scalar context differs in its other kernels' last bits, which binary16 then magnifies, so it
 * is held to the budget only (test_ops_simd checks gemm_h16 itself bit for bit). */
static void test_f16_arithmetic(void)
{
    loaded m32, m16;
    load(&m32, MODEL);
    load(&m16, MODEL_F16);
    sotto_status st;
    CU_ASSERT_EQUAL(flexicodec_decoder_weights_use_h16(&m32.w, m32.g, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(m32.w.h16, 0);
    CU_ASSERT_PTR_NOT_NULL(m32.w.dac_in.w);
    CU_ASSERT_EQUAL(flexicodec_decoder_weights_use_h16(&m16.w, m16.g, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(m16.w.h16, 1);
    CU_ASSERT_PTR_NOT_NULL(m16.w.dac_in.h16);
    CU_ASSERT_PTR_NOT_NULL(m16.w.blocks[0].up.h16);
    CU_ASSERT_PTR_NOT_NULL(m16.w.blocks[0].ru[0].conv7.h16);
    CU_ASSERT_PTR_NOT_NULL(m16.w.rvq[0].out_proj.h16);
    sotto_gguf *g = tu_golden_open(GOLDEN);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    ctx c[3];
    const int nc = contexts(c);
    int64_t n32, n16;
    float *a = decode_chain(&c[0].cpu, &m32.w, g, &n32);
    float *b0 = NULL;
    for (int k = 0; k < nc; k++) { /* simd, scalar, 2 threads */
        float *b = decode_chain(&c[k].cpu, &m16.w, g, &n16);
        CU_ASSERT_EQUAL_FATAL(n32, n16);
        char what[96];
        snprintf(what, sizeof what, "binary16 arithmetic vs f32 (codes -> waveform, %s)",
                 c[k].name);
        TU_ASSERT_CLOSE(what, b, a, n32, -1, 1e-4);
        if (k == 0) {
            b0 = b;
            continue;
        }
        if (k == 2) TU_ASSERT_CLOSE("binary16 arithmetic: 2 threads = 1 thread", b, b0, n32, 0, -1);
        free(b);
    }
    free(a), free(b0);
    sotto_gguf_close(g);
    unload(&m32);
    unload(&m16);
}

/* ---- broken model files ------------------------------------------------------------------ */

typedef struct bytes {
    unsigned char *p;
    size_t n;
} bytes;

static bytes read_model(void)
{
    bytes b = {NULL, 0};
    FILE *f = fopen(tu_data_path(MODEL), "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, 0, SEEK_END);
    b.n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    b.p = malloc(b.n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b.p);
    CU_ASSERT_EQUAL_FATAL(fread(b.p, 1, b.n, f), b.n);
    fclose(f);
    return b;
}

/* Offset of the GGUF string `s` (u64 length, then the bytes) in the header; fails if absent. */
static size_t find_gguf_str(const bytes *b, const char *s)
{
    const size_t len = strlen(s);
    unsigned char pre[8];
    for (int i = 0; i < 8; i++)
        pre[i] = (unsigned char)((uint64_t)len >> (8 * i));
    for (size_t o = 0; o + 8 + len <= b->n; o++)
        if (!memcmp(b->p + o, pre, 8) && !memcmp(b->p + o + 8, s, len)) return o;
    fprintf(stderr, "'%s' not found in the model file\n", s);
    CU_FAIL_FATAL("string not in file");
    return 0;
}

/* Loads the (modified) bytes; expects failure with `code` and a message holding `needle`. */
static void expect_load_error(const bytes *b, int code, const char *needle)
{
    sotto_gguf *g = NULL;
    sotto_status st;
    CU_ASSERT_EQUAL_FATAL(sotto_gguf_open_buffer(b->p, b->n, 1, NULL, &g, &st), SOTTO_OK);
    flexicodec_decoder_weights w;
    memset(&w, 0x5a, sizeof w); /* load must not rely on a zeroed struct */
    int rc = flexicodec_decoder_weights_load(&w, g, NULL, &st);
    CU_ASSERT_EQUAL(rc, code);
    if (rc) fprintf(stderr, "  expected failure: %s\n", st.message);
    TU_ASSERT_HAS(st.message, needle);
    /* Left freed: freeing again is harmless. */
    CU_ASSERT_PTR_NULL(w.blocks);
    CU_ASSERT_PTR_NULL(w.rvq);
    flexicodec_decoder_weights_free(&w);
    sotto_gguf_close(g);
}

static void test_broken_model(void)
{
    bytes b = read_model();
    unsigned char *orig = malloc(b.n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(orig);
    memcpy(orig, b.p, b.n);

    /* A missing tensor: rename one of the DAC decoder's transposed convs. */
    const char *up = "dac.decoder.model.3.block.1.weight";
    size_t o = find_gguf_str(&b, up);
    b.p[o + 8 + strlen(up) - 1] = 'X';
    expect_load_error(&b, SOTTO_ERR_MODEL, up);

    /* A wrong shape: swap the two dims of a ConvNeXt linear ([128, 96] -> [96, 128]). */
    memcpy(b.p, orig, b.n);
    const char *pw = "convnext_decoder.1.pwconv1.weight";
    o = find_gguf_str(&b, pw) + 8 + strlen(pw);
    uint32_t nd;
    memcpy(&nd, b.p + o, 4);
    CU_ASSERT_EQUAL_FATAL(nd, 2);
    unsigned char d0[8];
    memcpy(d0, b.p + o + 4, 8);
    memmove(b.p + o + 4, b.p + o + 12, 8);
    memcpy(b.p + o + 12, d0, 8);
    expect_load_error(&b, SOTTO_ERR_MODEL, pw);

    /* A wrong shape in a Snake alpha's channel count: [1, 12, 1] -> [1, 6, 2]. */
    memcpy(b.p, orig, b.n);
    const char *al = "dac.decoder.model.4.block.0.alpha";
    o = find_gguf_str(&b, al) + 8 + strlen(al);
    memcpy(&nd, b.p + o, 4);
    CU_ASSERT_EQUAL_FATAL(nd, 3);
    uint64_t dims[3];
    memcpy(dims, b.p + o + 4, sizeof dims); /* innermost first: [1, C, 1] */
    CU_ASSERT_EQUAL_FATAL(dims[1], 12);
    dims[0] = 2;
    dims[1] = 6;
    memcpy(b.p + o + 4, dims, sizeof dims);
    expect_load_error(&b, SOTTO_ERR_MODEL, al);

    /* A missing hyperparameter. */
    memcpy(b.p, orig, b.n);
    const char *key = "flexicodec.latent_dim";
    o = find_gguf_str(&b, key);
    b.p[o + 8 + strlen(key) - 1] = 'X';
    expect_load_error(&b, SOTTO_ERR_MODEL, key);

    /* Inconsistent hyperparameters: hop_length that is not the product of the rates. */
    memcpy(b.p, orig, b.n);
    key = "flexicodec.hop_length";
    o = find_gguf_str(&b, key) + 8 + strlen(key);
    uint32_t type, hop;
    memcpy(&type, b.p + o, 4);
    CU_ASSERT_EQUAL_FATAL(type, SOTTO_GGUF_UINT32);
    memcpy(&hop, b.p + o + 4, 4);
    CU_ASSERT_EQUAL_FATAL(hop, 1280);
    hop = 1281;
    memcpy(b.p + o + 4, &hop, 4);
    expect_load_error(&b, SOTTO_ERR_FORMAT, "hop 1281");

    /* The untouched bytes load. */
    memcpy(b.p, orig, b.n);
    sotto_gguf *g = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_gguf_open_buffer(b.p, b.n, 0, NULL, &g, NULL), SOTTO_OK);
    flexicodec_decoder_weights w;
    CU_ASSERT_EQUAL(flexicodec_decoder_weights_load(&w, g, NULL, NULL), SOTTO_OK);
    flexicodec_decoder_weights_free(&w);
    flexicodec_decoder_weights_free(&w);
    sotto_gguf_close(g);
    CU_ASSERT_EQUAL(flexicodec_decoder_weights_load(NULL, g, NULL, NULL), SOTTO_ERR_INVALID_ARG);
    free(orig);
    free(b.p);
}

int main(void)
{
    static const tu_test tests[] = {
        {"hparams_and_output_length", test_hparams},
        {"fsq_project_out_convnext", test_semantic},
        {"rvq_decode_and_expansion", test_rvq_and_expand},
        {"dac_decoder", test_dac_decoder},
        {"codes_to_waveform_without_transformer", test_codes_to_wave},
        {"f16_weights", test_f16_weights},
        {"f16_arithmetic", test_f16_arithmetic},
        {"broken_model_files", test_broken_model},
        {NULL, NULL},
    };
    if (sotto_threadpool_create(2, NULL, &g_tp)) g_tp = NULL;
    int rc = tu_run_suite("flexicodec_parts", tests);
    sotto_threadpool_free(g_tp);
    return rc;
}
