/*
 * The FlexiCodec encoder on CUDA (codecs/flexicodec/flexicodec_cuda_enc.h: the SenseVoice stack,
 * the DAC encoder and the aggregators on the device, the rest on the CPU) against the CPU encoder,
 * on the small encoder fixture of tests/data/flexicodec (encode-audio-small: decoder, encoder and a
 * 64-wide SenseVoice in one file; its 1.94 s of real speech from encode-audio-small_golden).
 *
 *   - model selection: loaded with SOTTO_BACKEND_CUDA the model runs on CUDA and holds the
 *     encoder's device weights; loaded with SOTTO_BACKEND_CPU it holds none.
 *   - SenseVoice output (LFR + CMVN features of the clip → [T_lfr][64]) of the device stack
 *     against sensevoice_encode, on the whole clip and then on its first half (same context:
 *     buffers reused with a shorter length).
 *   - DAC encoder output ([T][latent]) against flexicodec_dac_encode, on the whole clip and on
 *     a length that is not a multiple of the hop (the zero padding on the device).
 *   - both query-token aggregators against flexicodec_aggregate: the acoustic one on the
 *     clip's latent, the semantic one on a deterministic signal, in groups of 1..4 frames.
 *   - the codes through the public API, sotto_encoder_encode on the CUDA model against the same
 *     call on the CPU model: group lengths, FSQ indices and RVQ indices identical, at the
 *     model's default threshold, at 1.0, at the fixture's thresholds, with rate control
 *     (a groups/s target) and with 2 of the 4 stages; each also against the fixture's
 *     reference codes where it has them.
 *   - argument errors of the device calls, and creation errors.
 * Where no device exists, or Sotto was built without its CUDA backend, the test reports SKIP
 * (exit code 77), never a pass.
 *
 * Tolerances (f32 on both sides, TF32 off on the device): max-abs ≤ 1e-4 and NMSE ≤ 1e-9
 * (NMSE = Σ(gpu − cpu)² / Σ cpu²) for both intermediate features. The two sides run the same
 * formulas in different summation orders (cuBLAS against the CPU GEMMs, the attention's
 * softmax sums, each residual unit's 1×1 conv accumulated in one GEMM), nothing else; a wrong
 * index, padding or stride gives an NMSE near 1. The codes are compared exactly: the merging
 * and the code choices run on the CPU's own code on features that differ only by that
 * rounding, and the fixture has no reference near-ties (test_flexicodec_encode_audio.c checks
 * that). Each comparison prints its max-abs and NMSE, so the log records the achieved error.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cuda_probe.h"
#include "testutil.h"

#ifdef SOTTO_HAVE_CUDA

#include "codecs/flexicodec/codec_internal.h"
#include "codecs/flexicodec/encode.h"
#include "codecs/flexicodec/flexicodec_cuda_enc.h"
#include "core/model.h"
#include "sotto/sotto.h"
#include "sotto/sotto_codec.h"

#define MODEL "flexicodec/encode-audio-small.gguf"
#define GOLDEN "flexicodec/encode-audio-small_golden.gguf"
#define MAX_ABS_F32 1e-4
#define NMSE_F32 1e-9
#define TARGET_GPS 5.0          /* rate control: groups per second aimed at */
#define TOL_RATE_THRESHOLD 1e-5 /* the threshold rate control picks: a similarity value */

static sotto_cpu g_cpu;

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    return p;
}

static sotto_model *load(sotto_backend_kind backend)
{
    sotto_model_params p = sotto_model_default_params();
    p.backend = backend;
    sotto_model *m = NULL;
    sotto_status st;
    int rc = sotto_model_load_file(tu_data_path(MODEL), &p, &m, &st);
    if (rc) fprintf(stderr, "load %s: %s\n", MODEL, st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    const flexicodec_model *fm = flexicodec_model_get(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fm);
    CU_ASSERT_TRUE_FATAL(fm->has_encoder);
    return m;
}

/* The clip of the fixture: *n samples (caller frees). */
static float *clip(int64_t *n)
{
    sotto_gguf *io = tu_golden_open(GOLDEN);
    CU_ASSERT_PTR_NOT_NULL_FATAL(io);
    float *wave = tu_golden_f32(io, "wave", n, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(wave);
    sotto_gguf_close(io);
    return wave;
}

static flexicodec_cuda_enc *ctx_create(const flexicodec_model *fm, int64_t max_samples,
                                       int64_t max_lfr)
{
    flexicodec_cuda_enc *c = NULL;
    sotto_status st;
    int rc = flexicodec_cuda_enc_create(fm->cuda_enc, max_samples, max_lfr, &c, &st);
    if (rc) fprintf(stderr, "flexicodec_cuda_enc_create: %s\n", st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    return c;
}

static void test_selection(void)
{
    sotto_model *gpu = load(SOTTO_BACKEND_CUDA), *cpu = load(SOTTO_BACKEND_CPU);
    CU_ASSERT_EQUAL(sotto_model_backend(gpu), SOTTO_BACKEND_CUDA);
    CU_ASSERT_PTR_NOT_NULL(flexicodec_model_get(gpu)->cuda_enc);
    CU_ASSERT_EQUAL(sotto_model_backend(cpu), SOTTO_BACKEND_CPU);
    CU_ASSERT_PTR_NULL(flexicodec_model_get(cpu)->cuda_enc);
    sotto_model_free(cpu);
    sotto_model_free(gpu);
}

/* SenseVoice output and DAC encoder output, device against CPU. */
static void test_features(void)
{
    sotto_model *m = load(SOTTO_BACKEND_CUDA);
    const flexicodec_model *fm = flexicodec_model_get(m);
    const sensevoice *sv = &fm->sv;
    int64_t n;
    float *wave = clip(&n);

    /* LFR + CMVN features of the clip, as the encoder computes them */
    sotto_fbank_params fp = flexicodec_fbank_params(sv->cfg.n_mels);
    sotto_fbank *fb = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_fbank_create(&fp, NULL, &fb, NULL), SOTTO_OK);
    const int64_t T_fb = sotto_fbank_num_frames(fb, n);
    const int64_t T_lfr = sensevoice_lfr_frames(T_fb, sv->cfg.lfr_n);
    const int d = sv->cfg.dim;
    float *fbank = xmalloc(sizeof(float) * (size_t)(T_fb * sv->cfg.n_mels));
    float *lfr = xmalloc(sizeof(float) * (size_t)(T_lfr * sv->cfg.input_size));
    CU_ASSERT_EQUAL_FATAL(sotto_fbank_compute(fb, wave, n, fbank, T_fb), T_fb);
    CU_ASSERT_EQUAL_FATAL(sensevoice_lfr_cmvn(sv, fbank, T_fb, lfr), T_lfr);
    printf("  %lld samples: %lld LFR frames, SenseVoice %d blocks of width %d\n", (long long)n,
           (long long)T_lfr, sv->cfg.n_blocks, d);

    flexicodec_cuda_enc *c = ctx_create(fm, n, T_lfr);
    float *s = xmalloc(sizeof(float) * sensevoice_scratch_size(sv, T_lfr));
    float *want = xmalloc(sizeof(float) * (size_t)(T_lfr * d));
    float *got = xmalloc(sizeof(float) * (size_t)(T_lfr * d));
    const int64_t lens[2] = {T_lfr, T_lfr / 2 + 1};
    for (int i = 0; i < 2; i++) {
        const int64_t t = lens[i];
        CU_ASSERT_EQUAL_FATAL(sensevoice_encode(&g_cpu, sv, NULL, lfr, t, want, s), SOTTO_OK);
        const int rc = flexicodec_cuda_enc_sensevoice(c, sv, lfr, t, got);
        if (rc) fprintf(stderr, "sensevoice: %s\n", flexicodec_cuda_enc_last_error(c));
        CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
        char label[96];
        snprintf(label, sizeof label, "SenseVoice output, %lld frames: GPU vs CPU", (long long)t);
        TU_ASSERT_CLOSE(label, got, want, t * d, MAX_ABS_F32, NMSE_F32);
    }
    free(s);
    free(want);
    free(got);

    /* the DAC encoder: the whole clip, then a length that is not a multiple of the hop */
    const flexicodec_encoder_hparams *hp = &fm->enc.hp;
    const int lat = hp->latent_dim;
    s = xmalloc(sizeof(float) * flexicodec_dac_encode_scratch(hp, n));
    const int64_t T = flexicodec_dac_encode_frames(hp, n);
    want = xmalloc(sizeof(float) * (size_t)(T * lat));
    got = xmalloc(sizeof(float) * (size_t)(T * lat));
    const int64_t ns[2] = {n, n / 2 + 37};
    for (int i = 0; i < 2; i++) {
        const int64_t t = flexicodec_dac_encode_frames(hp, ns[i]);
        CU_ASSERT_EQUAL_FATAL(flexicodec_dac_encode(&g_cpu, &fm->enc, wave, ns[i], want, s), t);
        const int64_t r = flexicodec_cuda_enc_dac(c, wave, ns[i], got);
        if (r < 0) fprintf(stderr, "dac: %s\n", flexicodec_cuda_enc_last_error(c));
        CU_ASSERT_EQUAL_FATAL(r, t);
        char label[96];
        snprintf(label, sizeof label, "DAC encoder output, %lld samples (%lld frames): GPU vs CPU",
                 (long long)ns[i], (long long)t);
        TU_ASSERT_CLOSE(label, got, want, t * lat, MAX_ABS_F32, NMSE_F32);
    }

    /* both aggregators, in groups of 1, 2, 3, 4, 1, ... frames */
    int32_t *glens = xmalloc(sizeof(int32_t) * (size_t)T);
    int64_t G = 0;
    for (int64_t t = 0; t < T; G++) {
        const int32_t l = (int32_t)(1 + G % 4 < T - t ? 1 + G % 4 : T - t);
        glens[G] = l;
        t += l;
    }
    CU_ASSERT_EQUAL_FATAL(flexicodec_dac_encode(&g_cpu, &fm->enc, wave, n, want, s), T);
    const flexicodec_aggregator *aggs[2] = {&fm->enc.sem_agg, &fm->enc.ac_agg};
    for (int k = 0; k < 2; k++) {
        const flexicodec_aggregator *a = aggs[k];
        const int D = a->in_out_dim;
        float *x = want; /* the acoustic aggregator reads the latent */
        if (k == 0) {
            x = xmalloc(sizeof(float) * (size_t)(T * D));
            for (int64_t i = 0; i < T * D; i++)
                x[i] = 0.8f * sinf(0.37f * (float)i);
        }
        float *sc = xmalloc(sizeof(float) * flexicodec_aggregate_scratch(a, T, G));
        float *yc = xmalloc(sizeof(float) * (size_t)(G * D));
        float *yg = xmalloc(sizeof(float) * (size_t)(G * D));
        CU_ASSERT_EQUAL_FATAL(flexicodec_aggregate(&g_cpu, a, x, T, glens, G, yc, sc), SOTTO_OK);
        const int rc = flexicodec_cuda_enc_aggregate(c, a, x, T, glens, G, yg, sc);
        if (rc) fprintf(stderr, "aggregate: %s\n", flexicodec_cuda_enc_last_error(c));
        CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
        char label[96];
        snprintf(label, sizeof label, "%s aggregator, %lld frames in %lld groups: GPU vs CPU",
                 k ? "acoustic" : "semantic", (long long)T, (long long)G);
        TU_ASSERT_CLOSE(label, yg, yc, G * D, MAX_ABS_F32, NMSE_F32);
        /* lengths that do not add up to T, and T past the context's frames */
        CU_ASSERT_EQUAL(flexicodec_cuda_enc_aggregate(c, a, x, T - 1, glens, G, yg, sc),
                        SOTTO_ERR_INVALID_ARG);
        CU_ASSERT_EQUAL(flexicodec_cuda_enc_aggregate(c, a, x, T + 1, glens, G, yg, sc),
                        SOTTO_ERR_INVALID_ARG);
        if (k == 0) free(x);
        free(sc);
        free(yc);
        free(yg);
    }
    free(glens);

    /* argument errors leave the context working */
    CU_ASSERT_EQUAL(flexicodec_cuda_enc_dac(c, wave, n + 1, got), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(flexicodec_cuda_enc_dac(c, wave, 0, got), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(flexicodec_cuda_enc_dac(c, NULL, n, got), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(flexicodec_cuda_enc_dac(NULL, wave, n, got), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(flexicodec_cuda_enc_sensevoice(c, sv, lfr, T_lfr + 1, got),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(flexicodec_cuda_enc_sensevoice(c, sv, lfr, 0, got), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(flexicodec_cuda_enc_sensevoice(c, NULL, lfr, T_lfr, got),
                    SOTTO_ERR_INVALID_ARG);
    printf("  (%s)\n", flexicodec_cuda_enc_last_error(c));
    CU_ASSERT_EQUAL(flexicodec_cuda_enc_dac(c, wave, n, got), T);

    flexicodec_cuda_enc_free(c);
    free(s);
    free(want);
    free(got);
    free(lfr);
    free(fbank);
    sotto_fbank_destroy(fb);
    free(wave);
    sotto_model_free(m);
}

static sotto_encoder *encoder(const sotto_model *m, int n_stages)
{
    sotto_encoder_params ep = sotto_encoder_default_params();
    ep.max_seconds = 2.0;
    ep.n_stages = n_stages;
    sotto_encoder *e = NULL;
    sotto_status st;
    int rc = sotto_encoder_create(m, &ep, &e, &st);
    if (rc) fprintf(stderr, "sotto_encoder_create: %s\n", st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    return e;
}

/* Encodes the clip with both encoders; counts what differs. *G_out gets the group count. */
static void compare_codes(sotto_encoder *eg, sotto_encoder *ec, const float *wave, int64_t n,
                          int rate, const char *what, int *G_out)
{
    sotto_encoder_groups g, c;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const int Gg = sotto_encoder_encode(eg, wave, n, &g);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (Gg < 0) fprintf(stderr, "encode on CUDA: %s\n", sotto_encoder_last_error(eg));
    const int Gc = sotto_encoder_encode(ec, wave, n, &c);
    CU_ASSERT_TRUE_FATAL(Gg > 0 && Gc > 0);
    CU_ASSERT_EQUAL(Gg, Gc);
    CU_ASSERT_EQUAL(g.n_frames, c.n_frames);
    CU_ASSERT_EQUAL(g.n_stages, c.n_stages);
    /* rate control picks a threshold among the similarities of the features, which differ in
     * the last bits; a fixed threshold is passed through as it is */
    CU_ASSERT_DOUBLE_EQUAL(g.threshold, c.threshold, rate ? TOL_RATE_THRESHOLD : 0.0);
    const int G = Gg < Gc ? Gg : Gc, S = g.n_stages;
    int bad_len = 0, bad_fsq = 0, bad_rvq = 0;
    for (int i = 0; i < G; i++) {
        bad_len += g.lengths[i] != c.lengths[i];
        bad_fsq += g.fsq[i] != c.fsq[i];
        for (int q = 0; q < S && S == c.n_stages; q++)
            bad_rvq += g.rvq[(int64_t)i * S + q] != c.rvq[(int64_t)i * S + q];
    }
    const double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    printf("  %s: threshold %.7g (CPU %.7g), %d groups over %d frames, %d stages: lengths %d, "
           "FSQ %d, RVQ %d differ (GPU vs CPU; the GPU encode took %.2f s)\n",
           what, g.threshold, c.threshold, Gg, g.n_frames, S, bad_len, bad_fsq, bad_rvq, secs);
    CU_ASSERT_EQUAL(bad_len, 0);
    CU_ASSERT_EQUAL(bad_fsq, 0);
    CU_ASSERT_EQUAL(bad_rvq, 0);
    *G_out = Gg;
}

/* The CUDA encoder's codes against the fixture's reference ones at threshold k. */
static void against_reference(sotto_encoder *eg, const sotto_gguf *io, int k, const float *wave,
                              int64_t n)
{
    char key[64];
    const sotto_gguf_tensor *tl, *tf, *tr;
    snprintf(key, sizeof key, "lengths_%d", k);
    tl = sotto_gguf_find_tensor(io, key);
    snprintf(key, sizeof key, "fsq_%d", k);
    tf = sotto_gguf_find_tensor(io, key);
    snprintf(key, sizeof key, "rvq_%d", k);
    tr = sotto_gguf_find_tensor(io, key);
    CU_ASSERT_TRUE_FATAL(tl && tf && tr);
    sotto_encoder_groups g;
    const int G = sotto_encoder_encode(eg, wave, n, &g);
    CU_ASSERT_EQUAL_FATAL(G, tl->shape[0]);
    CU_ASSERT_EQUAL(memcmp(g.lengths, tl->data, sizeof(int32_t) * (size_t)G), 0);
    CU_ASSERT_EQUAL(memcmp(g.fsq, tf->data, sizeof(int32_t) * (size_t)G), 0);
    CU_ASSERT_EQUAL(memcmp(g.rvq, tr->data, sizeof(int32_t) * (size_t)G * (size_t)g.n_stages), 0);
}

static void test_codes(void)
{
    sotto_model *mg = load(SOTTO_BACKEND_CUDA), *mc = load(SOTTO_BACKEND_CPU);
    int64_t n;
    float *wave = clip(&n);
    sotto_encoder *eg = encoder(mg, -1), *ec = encoder(mc, -1);
    int G;
    compare_codes(eg, ec, wave, n, 0, "default threshold", &G);
    CU_ASSERT_EQUAL(sotto_encoder_set_threshold(eg, 1.0f), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_encoder_set_threshold(ec, 1.0f), SOTTO_OK);
    compare_codes(eg, ec, wave, n, 0, "threshold 1.0", &G);

    /* the fixture's thresholds, and its reference codes */
    sotto_gguf *io = tu_golden_open(GOLDEN);
    CU_ASSERT_PTR_NOT_NULL_FATAL(io);
    int32_t nth = 0;
    CU_ASSERT_EQUAL_FATAL(sotto_gguf_get_i32(io, "flexicodec.n_thresholds", &nth, NULL), SOTTO_OK);
    for (int k = 0; k < nth; k++) {
        char key[64], what[64];
        double theta = 0;
        snprintf(key, sizeof key, "flexicodec.threshold.%d", k);
        CU_ASSERT_EQUAL_FATAL(sotto_gguf_get_f64(io, key, &theta, NULL), SOTTO_OK);
        CU_ASSERT_EQUAL(sotto_encoder_set_threshold(eg, (float)theta), SOTTO_OK);
        CU_ASSERT_EQUAL(sotto_encoder_set_threshold(ec, (float)theta), SOTTO_OK);
        snprintf(what, sizeof what, "fixture threshold %d", k);
        compare_codes(eg, ec, wave, n, 0, what, &G);
        against_reference(eg, io, k, wave, n);
    }
    sotto_gguf_close(io);

    /* rate control picks the threshold from the device features' similarities */
    CU_ASSERT_EQUAL(sotto_encoder_set_target(eg, TARGET_GPS, 0.0), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_encoder_set_target(ec, TARGET_GPS, 0.0), SOTTO_OK);
    compare_codes(eg, ec, wave, n, 1, "rate control", &G);
    sotto_encoder_free(eg);
    sotto_encoder_free(ec);

    /* fewer stages */
    eg = encoder(mg, 2);
    ec = encoder(mc, 2);
    compare_codes(eg, ec, wave, n, 0, "2 stages", &G);
    sotto_encoder_free(eg);
    sotto_encoder_free(ec);
    free(wave);
    sotto_model_free(mc);
    sotto_model_free(mg);
}

static void test_create_errors(void)
{
    sotto_model *m = load(SOTTO_BACKEND_CUDA);
    const flexicodec_model *fm = flexicodec_model_get(m);
    flexicodec_cuda_enc *c = NULL;
    sotto_status st;
    CU_ASSERT_EQUAL(flexicodec_cuda_enc_create(NULL, 100, 1, &c, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(flexicodec_cuda_enc_create(fm->cuda_enc, 0, 1, &c, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(flexicodec_cuda_enc_create(fm->cuda_enc, 100, 0, &c, &st),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(flexicodec_cuda_enc_create(fm->cuda_enc, 100, 1, NULL, &st),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NULL(c);
    flexicodec_cuda_enc_weights *w = NULL;
    CU_ASSERT_EQUAL(flexicodec_cuda_enc_weights_create(NULL, &fm->sv, 0, &w, &st),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(flexicodec_cuda_enc_weights_create(&fm->enc, &fm->sv, -1, &w, &st),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(flexicodec_cuda_enc_weights_create(&fm->enc, &fm->sv, 1 << 20, &w, &st),
                    SOTTO_ERR_DEVICE);
    printf("  (%s)\n", st.message);
    CU_ASSERT_PTR_NULL(w);
    flexicodec_cuda_enc_free(NULL);
    flexicodec_cuda_enc_weights_free(NULL);
    CU_ASSERT_STRING_EQUAL(flexicodec_cuda_enc_last_error(NULL), "");
    sotto_model_free(m);
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
    sotto_cpu_init(&g_cpu, sotto_cpu_features(), NULL);
    static const tu_test tests[] = {{"selection", test_selection},
                                    {"features", test_features},
                                    {"codes", test_codes},
                                    {"create_errors", test_create_errors},
                                    {NULL, NULL}};
    return tu_run_suite("flexicodec_encode_cuda", tests);
#endif
}
