/*
 * Vocos parity and streaming: small-config models converted from the official `vocos`
 * package with random weights (tools/golden/vocos.py) must reproduce the official forward on
 * real speech, from features, from codes and from audio through the model's own mel front
 * end; and every chunking of a stream must equal the offline output.
 *
 * Tolerances (fp32): waveform max-abs ≤ 1e-4 (the parity bound) from features and
 * codes; from audio the SDK's mel front end differs from torchaudio's by ≤ 1e-3 nats in quiet
 * bands (docs/dsp.md), so that path is held to max-abs ≤ 1e-3 and NMSE ≤ 1e-6. Streaming vs
 * offline: max-abs ≤ 1e-5 and identical lengths. f16 weights: NMSE ≤ 1e-4 against fp32.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sotto/sotto.h"
#include "sotto/sotto_vocoder.h"
#include "testutil.h"

typedef struct run_out {
    float *y;
    int64_t n;
} run_out;

static sotto_model *load(const char *rel)
{
    sotto_model *m = NULL;
    sotto_status st;
    int rc = sotto_model_load_file(tu_data_path(rel), NULL, &m, &st);
    if (rc) fprintf(stderr, "load %s: %s\n", rel, st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    return m;
}

enum { IN_FEATURES, IN_CODES, IN_AUDIO };

/* Runs a whole input through a fresh stream in chunks of `chunk` frames (samples for audio;
 * chunk ≤ 0: all at once). */
static run_out run(sotto_model *m, int kind, const void *in, int64_t n, int dim, int chunk,
                   int bw, int max_chunk)
{
    run_out r = {NULL, 0};
    sotto_vocoder_params vp = sotto_vocoder_default_params();
    vp.bandwidth_id = bw;
    if (max_chunk > 0) vp.max_chunk_frames = max_chunk;
    sotto_vocoder *v = NULL;
    sotto_status st;
    int rc = sotto_vocoder_create(m, &vp, &v, &st);
    if (rc) fprintf(stderr, "create: %s\n", st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    int hop = sotto_vocoder_hop_samples(v);
    int64_t frames = kind == IN_AUDIO ? n / hop + 2 : n;
    size_t cap = sotto_vocoder_max_output_samples(v, (int)frames) + (size_t)n;
    r.y = calloc(cap, sizeof(float));
    int64_t step = chunk > 0 ? chunk : n;
    for (int64_t i = 0; i < n; i += step) {
        int64_t k = n - i < step ? n - i : step;
        int got;
        if (kind == IN_FEATURES)
            got = sotto_vocoder_push_features(v, (const float *)in + i * dim, (int)k, r.y + r.n,
                                              cap - (size_t)r.n);
        else if (kind == IN_CODES)
            got = sotto_vocoder_push_codes(v, (const int32_t *)in + i * dim, (int)k, r.y + r.n,
                                           cap - (size_t)r.n);
        else
            got = sotto_vocoder_push_audio(v, (const float *)in + i, (size_t)k, r.y + r.n,
                                           cap - (size_t)r.n);
        if (got < 0) fprintf(stderr, "push: %s\n", sotto_vocoder_last_error(v));
        CU_ASSERT_TRUE_FATAL(got >= 0);
        r.n += got;
    }
    int got = sotto_vocoder_flush(v, r.y + r.n, cap - (size_t)r.n);
    if (got < 0) fprintf(stderr, "flush: %s\n", sotto_vocoder_last_error(v));
    CU_ASSERT_TRUE_FATAL(got >= 0);
    r.n += got;
    sotto_vocoder_free(v);
    return r;
}

static void check_model_from_features(const char *model_rel, const char *golden_rel)
{
    sotto_model *m = load(model_rel);
    sotto_gguf *g = tu_golden_open(golden_rel);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    int64_t n_mel, n_wave, shape[4];
    float *mel = tu_golden_f32(g, "mel", &n_mel, shape);
    float *wave = tu_golden_f32(g, "wave", &n_wave, NULL);
    float *audio = tu_golden_f32(g, "audio", NULL, NULL);
    int64_t T = shape[0], dim = shape[1], n_audio = n_wave;

    run_out off = run(m, IN_FEATURES, mel, T, (int)dim, 0, 0, 0);
    CU_ASSERT_EQUAL(off.n, n_wave);
    TU_ASSERT_CLOSE("wave from official features", off.y, wave, n_wave, 1e-4, 1e-8);

    /* Chunk-size independence: 1, 2, 7, 64 frames and odd internal step sizes. */
    const int chunks[] = {1, 2, 7, 64};
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(chunks); i++) {
        run_out s = run(m, IN_FEATURES, mel, T, (int)dim, chunks[i], 0, i == 2 ? 5 : 0);
        CU_ASSERT_EQUAL(s.n, off.n);
        char what[64];
        snprintf(what, sizeof what, "streamed in %d-frame chunks vs offline", chunks[i]);
        TU_ASSERT_CLOSE(what, s.y, off.y, off.n, 1e-5, -1);
        free(s.y);
    }

    /* Analysis–synthesis through the SDK's own mel front end, in odd sample chunks. */
    const int achunks[] = {0, 1000, 333};
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(achunks); i++) {
        run_out a = run(m, IN_AUDIO, audio, n_audio, 1, achunks[i], 0, 0);
        CU_ASSERT_EQUAL(a.n, n_wave);
        TU_ASSERT_CLOSE("wave from audio (SDK mel front end)", a.y, wave, n_wave, 1e-3, 1e-6);
        free(a.y);
    }
    free(off.y);
    free(mel);
    free(wave);
    free(audio);
    sotto_gguf_close(g);
    sotto_model_free(m);
}

static void test_mel_small(void)
{
    check_model_from_features("vocos/mel-small.gguf", "vocos/mel-small_golden.gguf");
}

static void test_mel_same_1280(void)
{
    check_model_from_features("vocos/mel-same-1280.gguf", "vocos/mel-same-1280_golden.gguf");
}

/* Codes [n_q][T] (PyTorch layout) → [T][n_q] (ours). */
static int32_t *codes_time_major(const sotto_gguf *g, const char *name, int64_t *T, int64_t *nq)
{
    const sotto_gguf_tensor *t = sotto_gguf_find_tensor(g, name);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    *nq = t->shape[0];
    *T = t->shape[1];
    const int32_t *src = t->data;
    int32_t *c = malloc(sizeof(int32_t) * (size_t)t->n_elems);
    for (int64_t q = 0; q < *nq; q++)
        for (int64_t i = 0; i < *T; i++) c[i * *nq + q] = src[q * *T + i];
    return c;
}

static void test_encodec_small(void)
{
    sotto_model *m = load("vocos/encodec-small.gguf");
    sotto_gguf *g = tu_golden_open("vocos/encodec-small_golden.gguf");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    const char *prefix[2] = {"bw0.", ""};
    const int bws[2] = {0, 1};
    for (int k = 0; k < 2; k++) {
        char name[32];
        int64_t T, nq, n_wave, n_feat, fshape[4];
        snprintf(name, sizeof name, "%scodes", prefix[k]);
        int32_t *codes = codes_time_major(g, name, &T, &nq);
        snprintf(name, sizeof name, "%swave", prefix[k]);
        float *wave = tu_golden_f32(g, name, &n_wave, NULL);
        snprintf(name, sizeof name, "%sfeatures", prefix[k]);
        float *feat = tu_golden_f32(g, name, &n_feat, fshape);

        run_out c = run(m, IN_CODES, codes, T, (int)nq, 0, bws[k], 0);
        CU_ASSERT_EQUAL(c.n, n_wave);
        TU_ASSERT_CLOSE("encodec: wave from codes", c.y, wave, n_wave, 1e-4, 1e-8);
        run_out f = run(m, IN_FEATURES, feat, T, (int)fshape[1], 3, bws[k], 0);
        CU_ASSERT_EQUAL(f.n, n_wave);
        TU_ASSERT_CLOSE("encodec: wave from features, 3-frame chunks", f.y, wave, n_wave, 1e-4,
                        1e-8);
        run_out s = run(m, IN_CODES, codes, T, (int)nq, 1, bws[k], 0);
        TU_ASSERT_CLOSE("encodec: codes 1 frame at a time vs offline", s.y, c.y, c.n, 1e-5, -1);
        free(c.y);
        free(f.y);
        free(s.y);
        free(codes);
        free(wave);
        free(feat);
    }
    sotto_gguf_close(g);
    sotto_model_free(m);
}

static void test_f16_weights(void)
{
    sotto_model *m32 = load("vocos/mel-small.gguf"), *m16 = load("vocos/mel-small-f16.gguf");
    sotto_gguf *g = tu_golden_open("vocos/mel-small_golden.gguf");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    int64_t shape[4];
    float *mel = tu_golden_f32(g, "mel", NULL, shape);
    run_out a = run(m32, IN_FEATURES, mel, shape[0], (int)shape[1], 0, 0, 0);
    run_out b = run(m16, IN_FEATURES, mel, shape[0], (int)shape[1], 0, 0, 0);
    CU_ASSERT_EQUAL(a.n, b.n);
    TU_ASSERT_CLOSE("f16 weights vs f32 weights", b.y, a.y, a.n, -1, 1e-4);
    free(a.y);
    free(b.y);
    free(mel);
    sotto_gguf_close(g);
    sotto_model_free(m32);
    sotto_model_free(m16);
}

static sotto_model *load_with_f16(const char *rel, int n_threads, unsigned mask, int f16_math)
{
    sotto_model_params mp = sotto_model_default_params();
    mp.n_threads = n_threads;
    mp.cpu_features_mask = mask;
    mp.f16_arithmetic = f16_math;
    sotto_model *m = NULL;
    sotto_status st;
    int rc = sotto_model_load_file(tu_data_path(rel), &mp, &m, &st);
    if (rc) fprintf(stderr, "load %s: %s\n", rel, st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    return m;
}

static sotto_model *load_with(const char *rel, int n_threads, unsigned mask)
{
    return load_with_f16(rel, n_threads, mask, 0);
}

/* Binary16 arithmetic (sotto_model_params.f16_arithmetic, docs/architecture.md): used exactly
 * when the CPU has AVX512-FP16, and then within its error budget of the official f32 output:
 * NMSE ≤ 1e-4 (the f16-weights budget; measured about 1e-6), and every chunking equal to the
 * offline output within the f32 streaming bound, max-abs ≤ 1e-5 (measured: identical; a row's
 * GEMM sums do not depend on the rows computed with it). Without the CPU bit the flag is
 * ignored. */
static void test_f16_arithmetic(void)
{
    sotto_gguf *g = tu_golden_open("vocos/mel-small_golden.gguf");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    int64_t n_wave, shape[4];
    float *mel = tu_golden_f32(g, "mel", NULL, shape);
    float *wave = tu_golden_f32(g, "wave", &n_wave, NULL);
    sotto_model *m = load_with_f16("vocos/mel-small-f16.gguf", 1, ~0u, 1);
    const int have = (sotto_cpu_features() & SOTTO_CPU_AVX512FP16) != 0;
    CU_ASSERT_EQUAL(sotto_model_f16_arithmetic(m), have);
    if (!have) printf("  (no AVX512-FP16: the model keeps f32 arithmetic, as documented)\n");
    run_out off = run(m, IN_FEATURES, mel, shape[0], (int)shape[1], 0, 0, 0);
    CU_ASSERT_EQUAL(off.n, n_wave);
    TU_ASSERT_CLOSE("binary16 arithmetic vs official f32", off.y, wave, n_wave, -1, 1e-4);
    const int chunks[] = {1, 7, 64};
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(chunks); i++) {
        run_out s = run(m, IN_FEATURES, mel, shape[0], (int)shape[1], chunks[i], 0, 0);
        CU_ASSERT_EQUAL(s.n, off.n);
        char what[80];
        snprintf(what, sizeof what, "binary16 arithmetic, %d-frame chunks vs offline", chunks[i]);
        TU_ASSERT_CLOSE(what, s.y, off.y, off.n, 1e-5, -1);
        free(s.y);
    }
    /* Flag without the CPU bit (mask): never used, the result is the f16-weights one. */
    sotto_model *m0 = load_with_f16("vocos/mel-small-f16.gguf", 1, ~(unsigned)SOTTO_CPU_AVX512FP16,
                                    1);
    CU_ASSERT_EQUAL(sotto_model_f16_arithmetic(m0), 0);
    sotto_model_free(m0);
    free(off.y);
    free(mel);
    free(wave);
    sotto_gguf_close(g);
    sotto_model_free(m);
}

/* The stream's layers run on the model's thread count and CPU features: 2 threads and the
 * scalar reference kernels must give the official output too. */
static void test_threads_and_scalar(void)
{
    sotto_gguf *g = tu_golden_open("vocos/mel-same-1280_golden.gguf");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    int64_t n_wave, shape[4];
    float *mel = tu_golden_f32(g, "mel", NULL, shape);
    float *wave = tu_golden_f32(g, "wave", &n_wave, NULL);
    const struct {
        int threads;
        unsigned mask;
        const char *what;
    } cfg[] = {{2, ~0u, "2 threads, SIMD"}, {2, 0u, "2 threads, scalar"}, {1, 0u, "scalar"}};
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(cfg); i++) {
        sotto_model *m = load_with("vocos/mel-same-1280.gguf", cfg[i].threads, cfg[i].mask);
        const int chunks[] = {0, 3};
        for (size_t c = 0; c < SOTTO_ARRAY_LEN(chunks); c++) {
            run_out r = run(m, IN_FEATURES, mel, shape[0], (int)shape[1], chunks[c], 0, 0);
            CU_ASSERT_EQUAL(r.n, n_wave);
            TU_ASSERT_CLOSE(cfg[i].what, r.y, wave, n_wave, 1e-4, 1e-8);
            free(r.y);
        }
        sotto_model_free(m);
    }
    free(mel);
    free(wave);
    sotto_gguf_close(g);
}

static void test_lookahead_and_reset(void)
{
    sotto_model *m = load("vocos/mel-small.gguf");
    sotto_vocoder *v = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_vocoder_create(m, NULL, &v, NULL), SOTTO_OK);
    const int dim = sotto_vocoder_feature_dim(v), hop = sotto_vocoder_hop_samples(v);
    const int T = 100;
    float *feat = calloc((size_t)T * dim, sizeof(float));
    tu_rng r;
    tu_rng_init(&r, tu_seed());
    tu_fill_uniform(&r, feat, (size_t)T * dim, -8.0f, 1.0f);
    size_t cap = sotto_vocoder_max_output_samples(v, T);
    float *y1 = calloc(cap, sizeof(float)), *y2 = calloc(cap, sizeof(float));
    int got = sotto_vocoder_push_features(v, feat, T, y1, cap);
    CU_ASSERT_TRUE(got > 0);
    /* Released samples trail the offline output (hop·(T−1) for "center") by the look-ahead. */
    CU_ASSERT_EQUAL(got, hop * (T - 1) - sotto_vocoder_lookahead_samples(v));
    CU_ASSERT_TRUE(sotto_vocoder_lookahead_frames(v) > 0);
    int tail = sotto_vocoder_flush(v, y1 + got, cap - (size_t)got);
    CU_ASSERT_EQUAL(got + tail, hop * (T - 1));
    /* After reset the same input gives the same output. */
    CU_ASSERT_EQUAL(sotto_vocoder_reset(v), SOTTO_OK);
    int got2 = sotto_vocoder_push_features(v, feat, T, y2, cap);
    int tail2 = sotto_vocoder_flush(v, y2 + got2, cap - (size_t)got2);
    CU_ASSERT_EQUAL(got2 + tail2, got + tail);
    CU_ASSERT_EQUAL(memcmp(y1, y2, sizeof(float) * (size_t)(got + tail)), 0);
    free(feat);
    free(y1);
    free(y2);
    sotto_vocoder_free(v);
    sotto_model_free(m);
}

static void test_errors(void)
{
    sotto_model *m = load("vocos/mel-small.gguf");
    sotto_vocoder *v = NULL;
    sotto_status st;
    sotto_vocoder_params vp = sotto_vocoder_default_params();
    vp.max_chunk_frames = 0;
    CU_ASSERT_EQUAL(sotto_vocoder_create(m, &vp, &v, &st), SOTTO_ERR_INVALID_ARG);
    vp = sotto_vocoder_default_params();
    vp.bandwidth_id = 1; /* mel model: not conditioned */
    CU_ASSERT_EQUAL(sotto_vocoder_create(m, &vp, &v, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_vocoder_create(NULL, NULL, &v, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL_FATAL(sotto_vocoder_create(m, NULL, &v, &st), SOTTO_OK);

    const int dim = sotto_vocoder_feature_dim(v), T = 64;
    float *feat = calloc((size_t)T * dim, sizeof(float));
    float out[16];
    /* Too small a buffer consumes nothing; a big enough one then works. */
    CU_ASSERT_EQUAL(sotto_vocoder_push_features(v, feat, T, out, 16), SOTTO_ERR_BUFFER_TOO_SMALL);
    CU_ASSERT_TRUE(strlen(sotto_vocoder_last_error(v)) > 0);
    feat[5] = NAN;
    CU_ASSERT_EQUAL(sotto_vocoder_push_features(v, feat, 1 + 5 / dim + 1, out, 16),
                    SOTTO_ERR_BAD_AUDIO);
    feat[5] = 0;
    int32_t codes[4] = {0};
    CU_ASSERT_EQUAL(sotto_vocoder_push_codes(v, codes, 1, out, 16), SOTTO_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(sotto_vocoder_set_bandwidth(v, 1), SOTTO_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(sotto_vocoder_push_features(v, NULL, 3, out, 16), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_vocoder_push_features(v, feat, -1, out, 16), SOTTO_ERR_INVALID_ARG);
    /* Features then audio in one stream is refused. */
    CU_ASSERT_EQUAL(sotto_vocoder_push_features(v, feat, 1, out, 16), 0);
    float pcm[8] = {0};
    CU_ASSERT_EQUAL(sotto_vocoder_push_audio(v, pcm, 8, out, 16), SOTTO_ERR_STATE);
    size_t cap = sotto_vocoder_max_output_samples(v, 1);
    float *big = calloc(cap, sizeof(float));
    CU_ASSERT_TRUE(sotto_vocoder_flush(v, big, cap) >= 0);
    CU_ASSERT_EQUAL(sotto_vocoder_flush(v, big, cap), SOTTO_ERR_STATE);
    CU_ASSERT_EQUAL(sotto_vocoder_push_features(v, feat, 1, big, cap), SOTTO_ERR_STATE);
    CU_ASSERT_EQUAL(sotto_vocoder_reset(v), SOTTO_OK);
    /* Audio too short for the reflection padding: a clear error at flush. */
    CU_ASSERT_EQUAL(sotto_vocoder_push_audio(v, pcm, 8, big, cap), 0);
    CU_ASSERT_EQUAL(sotto_vocoder_flush(v, big, cap), SOTTO_ERR_INVALID_ARG);
    pcm[2] = INFINITY;
    CU_ASSERT_EQUAL(sotto_vocoder_reset(v), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_vocoder_push_audio(v, pcm, 8, big, cap), SOTTO_ERR_BAD_AUDIO);
    free(big);
    free(feat);
    sotto_vocoder_free(v);
    sotto_model_free(m);

    /* A model of another architecture is refused by name. */
    sotto_model *other = load("gguf/sample.gguf");
    CU_ASSERT_EQUAL(sotto_vocoder_create(other, NULL, &v, &st), SOTTO_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "not a vocoder"));
    sotto_model_free(other);
}

int main(void)
{
    static const tu_test tests[] = {
        {"mel_small_parity_and_streaming", test_mel_small},
        {"mel_same_1280_parity_and_streaming", test_mel_same_1280},
        {"encodec_small_codes_and_bandwidths", test_encodec_small},
        {"f16_weights", test_f16_weights},
        {"f16_arithmetic", test_f16_arithmetic},
        {"threads_and_scalar", test_threads_and_scalar},
        {"lookahead_and_reset", test_lookahead_and_reset},
        {"errors", test_errors},
        {NULL, NULL},
    };
    return tu_run_suite("vocos", tests);
}
