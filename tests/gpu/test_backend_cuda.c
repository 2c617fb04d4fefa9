/*
 * The public API on a CUDA model: a model loaded with params.backend = SOTTO_BACKEND_CUDA runs
 * its vocoder streams (sotto_vocoder.h) and its codec decoders' transformer + DAC windows
 * (sotto_codec.h) on the device, and must give what the same model gives on the CPU:
 *
 *   - selection: CUDA and AUTO models report SOTTO_BACKEND_CUDA (AUTO also takes the device),
 *     CPU ones SOTTO_BACKEND_CPU, an EnCodec-feature AdaLayerNorm Vocos included; AUTO with a
 *     device index past the last runs on the CPU (the CPU fallback of an architecture without
 *     a CUDA path is test_gguf's);
 *   - vocoder: the golden mel features (tiled to 160+ frames) pushed in uneven chunks
 *     (1, 3, 4, 64, ... frames), then flush, and a waveform pushed through the mel front end:
 *     every push releases the same number of samples as on the CPU, and the samples agree
 *     within max-abs 1e-4 / NMSE 1e-8 (f32 arithmetic on both sides; the CUDA step runs as a
 *     captured graph once its window is steady);
 *   - vocoder batch (sotto_vocoder_vocode_batch): seven items of 1..300 frames grouped into
 *     batched forwards of at most 200 frames (the 300-frame item through the stream) against
 *     the CPU model's batch, same budget;
 *   - decoder: the small FlexiCodec fixture's codes, in one pass and in segmented windows,
 *     within max-abs 2e-4 / NMSE 1e-8 (the budget of test_flexicodec_cuda);
 *   - decoder batch (sotto_decoder_decode_batch): nine items of 0..3·37 frames (0, some and all
 *     RVQ stages) grouped into batched forwards of at most 100 frames (the 111-frame item alone),
 *     against the CPU model's batch and against each item decoded alone by a decoder on the
 *     CUDA model, same budget.
 *
 * Where no device exists, or Sotto was built without its CUDA backend, loading with
 * SOTTO_BACKEND_CUDA fails with SOTTO_ERR_DEVICE (checked) and the test reports SKIP (exit
 * code 77), never a pass. Nothing here has run on a GPU yet (docs/gpu.md).
 */
#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "sotto/sotto.h"
#include "sotto/sotto_codec.h"
#include "sotto/sotto_vocoder.h"

#define VOC_MAX_ABS 1e-4
#define VOC_NMSE 1e-8
#define DEC_MAX_ABS 2e-4
#define DEC_NMSE 1e-8

static sotto_model *load(const char *rel, sotto_backend_kind backend)
{
    sotto_model_params p = sotto_model_default_params();
    p.backend = backend;
    sotto_model *m = NULL;
    sotto_status st;
    int rc = sotto_model_load_file(tu_data_path(rel), &p, &m, &st);
    if (rc) fprintf(stderr, "load %s: %s\n", rel, st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    return m;
}

/* Compares n samples, printing the achieved error. */
static void check_close(const char *what, const float *cpu, const float *gpu, int64_t n,
                        double max_abs, double nmse)
{
    double e = 0, s = 0, worst = 0;
    for (int64_t i = 0; i < n; i++) {
        const double d = (double)gpu[i] - cpu[i];
        e += d * d;
        s += (double)cpu[i] * cpu[i];
        if (fabs(d) > worst || isnan(d)) worst = isnan(d) ? INFINITY : fabs(d);
    }
    const double r = s > 0 ? e / s : e;
    printf("  %s: %lld samples, max-abs %.3g, NMSE %.3g\n", what, (long long)n, worst, r);
    CU_ASSERT(worst <= max_abs);
    CU_ASSERT(r <= nmse);
}

static void test_selection(void)
{
    sotto_model *m = load("vocos/mel-small.gguf", SOTTO_BACKEND_CUDA);
    CU_ASSERT_EQUAL(sotto_model_backend(m), SOTTO_BACKEND_CUDA);
    sotto_model_free(m);
    m = load("vocos/mel-small.gguf", SOTTO_BACKEND_CPU);
    CU_ASSERT_EQUAL(sotto_model_backend(m), SOTTO_BACKEND_CPU);
    sotto_model_free(m);
    m = load("vocos/mel-small.gguf", SOTTO_BACKEND_AUTO); /* a device exists: AUTO takes it */
    CU_ASSERT_EQUAL(sotto_model_backend(m), SOTTO_BACKEND_CUDA);
    sotto_model_free(m);
    m = load("vocos/encodec-small.gguf", SOTTO_BACKEND_AUTO); /* EnCodec + AdaLayerNorm too */
    CU_ASSERT_EQUAL(sotto_model_backend(m), SOTTO_BACKEND_CUDA);
    sotto_model_free(m);
    m = load("vocos/encodec-small.gguf", SOTTO_BACKEND_CUDA);
    CU_ASSERT_EQUAL(sotto_model_backend(m), SOTTO_BACKEND_CUDA);
    sotto_model_free(m);
    m = load("flexicodec/small.gguf", SOTTO_BACKEND_CUDA);
    CU_ASSERT_EQUAL(sotto_model_backend(m), SOTTO_BACKEND_CUDA);
    sotto_model_free(m);
    sotto_model_params p = sotto_model_default_params();
    p.backend = SOTTO_BACKEND_CUDA;
    p.device = 1 << 20;
    sotto_status st;
    CU_ASSERT_EQUAL(sotto_model_load_file(tu_data_path("vocos/mel-small.gguf"), &p, &m, &st),
                    SOTTO_ERR_DEVICE);
    TU_ASSERT_HAS(st.message, "device");
    /* AUTO with a device index past the last: the CPU, not an error */
    p.backend = SOTTO_BACKEND_AUTO;
    CU_ASSERT_EQUAL_FATAL(sotto_model_load_file(tu_data_path("vocos/mel-small.gguf"), &p, &m, &st),
                          SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_model_backend(m), SOTTO_BACKEND_CPU);
    sotto_model_free(m);
}

/* Pushes T frames of features in the repeating chunk schedule, then flushes; the outputs go
 * to *out (allocated) and each push's count to counts[]. Returns the sample total. */
static int64_t vocode(sotto_model *m, const float *feat, int T, int Cin, const int *sched,
                      int n_sched, float **out, int *counts, int max_counts)
{
    sotto_vocoder *v = NULL;
    sotto_status st;
    int rc = sotto_vocoder_create(m, NULL, &v, &st);
    if (rc) fprintf(stderr, "vocoder: %s\n", st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    const size_t cap = sotto_vocoder_max_output_samples(v, T + 64);
    float *y = malloc(sizeof(float) * cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    int64_t total = 0;
    int k = 0;
    for (int t = 0, i = 0; t < T; i++) {
        int n = sched[i % n_sched];
        if (n > T - t) n = T - t;
        const int got = sotto_vocoder_push_features(v, feat + (size_t)t * Cin, n, y + total,
                                                    cap - (size_t)total);
        if (got < 0) fprintf(stderr, "push: %s\n", sotto_vocoder_last_error(v));
        CU_ASSERT_FATAL(got >= 0);
        if (k < max_counts) counts[k++] = got;
        total += got;
        t += n;
    }
    const int got = sotto_vocoder_flush(v, y + total, cap - (size_t)total);
    if (got < 0) fprintf(stderr, "flush: %s\n", sotto_vocoder_last_error(v));
    CU_ASSERT_FATAL(got >= 0);
    if (k < max_counts) counts[k++] = got;
    total += got;
    sotto_vocoder_free(v);
    *out = y;
    return total;
}

static void test_vocoder(void)
{
    sotto_model *mc = load("vocos/mel-small.gguf", SOTTO_BACKEND_CPU);
    sotto_model *mg = load("vocos/mel-small.gguf", SOTTO_BACKEND_CUDA);
    sotto_gguf *g = tu_golden_open("vocos/mel-small_golden.gguf");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    int64_t shape[4];
    float *mel = tu_golden_f32(g, "mel", NULL, shape);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mel);
    sotto_gguf_close(g);
    const int T0 = (int)shape[0], Cin = (int)shape[1];
    const int T = ((160 + T0 - 1) / T0 + 1) * T0 - 5;
    float *feat = malloc(sizeof(float) * (size_t)T * Cin);
    CU_ASSERT_PTR_NOT_NULL_FATAL(feat);
    for (int t = 0; t < T; t++)
        memcpy(feat + (size_t)t * Cin, mel + (size_t)(t % T0) * Cin, sizeof(float) * Cin);

    static const int scheds[][6] = {
        {4, 4, 4, 4, 4, 4}, {1, 3, 4, 64, 7, 2}, {64, 64, 64, 64, 64, 64}};
    for (size_t s = 0; s < sizeof scheds / sizeof scheds[0]; s++) {
        float *yc, *yg;
        int cc[512] = {0}, cg[512] = {0}; /* vocode fills the pushes' entries only */
        const int64_t nc = vocode(mc, feat, T, Cin, scheds[s], 6, &yc, cc, 512);
        const int64_t ng = vocode(mg, feat, T, Cin, scheds[s], 6, &yg, cg, 512);
        CU_ASSERT_EQUAL(nc, ng);
        CU_ASSERT(memcmp(cc, cg, sizeof cc) == 0); /* every push released the same count */
        char what[64];
        snprintf(what, sizeof what, "vocoder, chunk schedule %zu", s);
        if (nc == ng) check_close(what, yc, yg, nc, VOC_MAX_ABS, VOC_NMSE);
        free(yc);
        free(yg);
    }

    /* audio in: the CPU mel front end feeds the device */
    const int hop = 256, n = 40 * hop + 77;
    float *pcm = malloc(sizeof(float) * n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pcm);
    for (int i = 0; i < n; i++)
        pcm[i] = 0.3f * sinf(0.01f * (float)i * (1.0f + 0.0003f * (float)i));
    float *outs[2];
    int64_t lens[2];
    sotto_model *ms[2] = {mc, mg};
    for (int b = 0; b < 2; b++) {
        sotto_vocoder *v = NULL;
        sotto_status st;
        CU_ASSERT_EQUAL_FATAL(sotto_vocoder_create(ms[b], NULL, &v, &st), SOTTO_OK);
        /* the model's hop, not the 256 the test signal is laid out in */
        const size_t cap =
            sotto_vocoder_max_output_samples(v, n / sotto_vocoder_hop_samples(v) + 2);
        outs[b] = malloc(sizeof(float) * cap);
        CU_ASSERT_PTR_NOT_NULL_FATAL(outs[b]);
        int64_t total = 0;
        for (int i = 0; i < n; i += 1000) {
            const int k = n - i < 1000 ? n - i : 1000;
            const int got = sotto_vocoder_push_audio(v, pcm + i, (size_t)k, outs[b] + total,
                                                     cap - (size_t)total);
            if (got < 0) fprintf(stderr, "push_audio: %s\n", sotto_vocoder_last_error(v));
            CU_ASSERT_FATAL(got >= 0);
            total += got;
        }
        const int got = sotto_vocoder_flush(v, outs[b] + total, cap - (size_t)total);
        CU_ASSERT_FATAL(got >= 0);
        lens[b] = total + got;
        sotto_vocoder_free(v);
    }
    CU_ASSERT_EQUAL(lens[0], lens[1]);
    if (lens[0] == lens[1])
        check_close("vocoder, audio in", outs[0], outs[1], lens[0], VOC_MAX_ABS, VOC_NMSE);
    free(outs[0]);
    free(outs[1]);
    free(pcm);
    free(feat);
    free(mel);
    sotto_model_free(mc);
    sotto_model_free(mg);
}

/* sotto_vocoder_vocode_batch on the device (grouped batched forwards, and an item longer
 * than max_batch_frames through the stream) against the CPU model's batch. */
static void test_vocoder_batch(void)
{
    sotto_model *ms[2] = {load("vocos/mel-small.gguf", SOTTO_BACKEND_CPU),
                          load("vocos/mel-small.gguf", SOTTO_BACKEND_CUDA)};
    sotto_gguf *g = tu_golden_open("vocos/mel-small_golden.gguf");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    int64_t shape[4];
    float *mel = tu_golden_f32(g, "mel", NULL, shape);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mel);
    sotto_gguf_close(g);
    const int T0 = (int)shape[0], Cin = (int)shape[1];
    const int lens[] = {1, 5, 64, 150, 170, 300, 33};
    enum { N = sizeof lens / sizeof lens[0] };
    float *x[N];
    for (int i = 0; i < N; i++) {
        x[i] = malloc(sizeof(float) * (size_t)lens[i] * Cin);
        CU_ASSERT_PTR_NOT_NULL_FATAL(x[i]);
        for (int t = 0; t < lens[i]; t++)
            memcpy(x[i] + (size_t)t * Cin, mel + (size_t)((t + 7 * i) % T0) * Cin,
                   sizeof(float) * Cin);
    }
    sotto_vocoder_item items[2][N];
    for (int b = 0; b < 2; b++) {
        sotto_vocoder_params vp = sotto_vocoder_default_params();
        vp.max_batch_frames = 200;
        sotto_vocoder *v = NULL;
        sotto_status st;
        CU_ASSERT_EQUAL_FATAL(sotto_vocoder_create(ms[b], &vp, &v, &st), SOTTO_OK);
        for (int i = 0; i < N; i++) {
            const size_t cap = (size_t)sotto_vocoder_offline_samples(v, lens[i]);
            items[b][i] = (sotto_vocoder_item){.frames = x[i],
                                               .n_frames = lens[i],
                                               .out = malloc(sizeof(float) * cap),
                                               .capacity = cap};
            CU_ASSERT_PTR_NOT_NULL_FATAL(items[b][i].out);
        }
        const int rc = sotto_vocoder_vocode_batch(v, items[b], N);
        if (rc) fprintf(stderr, "batch: %s\n", sotto_vocoder_last_error(v));
        CU_ASSERT_EQUAL(rc, SOTTO_OK);
        sotto_vocoder_free(v);
    }
    for (int i = 0; i < N; i++) {
        CU_ASSERT_EQUAL(items[0][i].result, items[1][i].result);
        char what[64];
        snprintf(what, sizeof what, "vocoder batch, item of %d frames", lens[i]);
        if (items[0][i].result == items[1][i].result && items[0][i].result > 0)
            check_close(what, items[0][i].out, items[1][i].out, items[0][i].result, VOC_MAX_ABS,
                        VOC_NMSE);
        free(items[0][i].out);
        free(items[1][i].out);
        free(x[i]);
    }
    free(mel);
    sotto_model_free(ms[0]);
    sotto_model_free(ms[1]);
}

static const int32_t *ints(const sotto_gguf *g, const char *name, int64_t *n0, int64_t *n1)
{
    const sotto_gguf_tensor *t = sotto_gguf_find_tensor(g, name);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL_FATAL(t->dtype, SOTTO_DTYPE_I32);
    if (n0) *n0 = t->shape[0];
    if (n1) *n1 = t->n_dims > 1 ? t->shape[1] : 1;
    return t->data;
}

static float *decode(sotto_model *m, const sotto_decoder_params *p, const int32_t *len,
                     const int32_t *fsq, const int32_t *rvq, int G, int nq, int64_t *n)
{
    sotto_decoder *d = NULL;
    sotto_status st;
    int rc = sotto_decoder_create(m, p, &d, &st);
    if (rc) fprintf(stderr, "decoder: %s\n", st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    rc = sotto_decoder_push(d, len, fsq, rvq, G, nq);
    if (rc) fprintf(stderr, "push: %s\n", sotto_decoder_last_error(d));
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    const size_t cap = sotto_decoder_output_samples(d);
    float *y = malloc(sizeof(float) * (cap ? cap : 1));
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    const int got = sotto_decoder_flush(d, y, cap);
    if (got < 0) fprintf(stderr, "flush: %s\n", sotto_decoder_last_error(d));
    CU_ASSERT_FATAL(got >= 0);
    *n = got;
    sotto_decoder_free(d);
    return y;
}

static void test_decoder(void)
{
    sotto_model *mc = load("flexicodec/small.gguf", SOTTO_BACKEND_CPU);
    sotto_model *mg = load("flexicodec/small.gguf", SOTTO_BACKEND_CUDA);
    sotto_gguf *g = tu_golden_open("flexicodec/small_golden.gguf");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    int64_t G, nq;
    const int32_t *fsq = ints(g, "fsq_index", &G, NULL);
    const int32_t *rvq = ints(g, "rvq_codes", NULL, &nq);
    const int32_t *len = ints(g, "token_lengths", NULL, NULL);
    int64_t T = 0;
    for (int64_t i = 0; i < G; i++)
        T += len[i];
    sotto_decoder_params p = sotto_decoder_default_params();
    for (int seg = 0; seg < 2; seg++) {
        if (seg) { /* windows of 8 frames, 2 of context each side */
            p.segment_frames = 8;
            p.overlap_frames = 2;
            if (T <= 12) printf("  (fixture too short for segments: %lld frames)\n", (long long)T);
        }
        int64_t nc, ng;
        float *yc = decode(mc, &p, len, fsq, rvq, (int)G, (int)nq, &nc);
        float *yg = decode(mg, &p, len, fsq, rvq, (int)G, (int)nq, &ng);
        CU_ASSERT_EQUAL(nc, ng);
        if (nc == ng)
            check_close(seg ? "decoder, segmented" : "decoder, one pass", yc, yg, nc, DEC_MAX_ABS,
                        DEC_NMSE);
        free(yc);
        free(yg);
    }
    sotto_gguf_close(g);
    sotto_model_free(mc);
    sotto_model_free(mg);
}

/* An item of n golden groups from group o on (wrapping), with their first `stages` codes. */
static void batch_item(const int32_t *len, const int32_t *fsq, const int32_t *rvq, int G, int nq,
                       int o, int n, int stages, sotto_decoder_item *it)
{
    memset(it, 0, sizeof *it);
    int32_t *l = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    int32_t *f = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    int32_t *r = malloc(sizeof(int32_t) * (size_t)(n * stages > 0 ? n * stages : 1));
    CU_ASSERT_FATAL(l && f && r);
    int64_t T = 0;
    for (int k = 0; k < n; k++) {
        const int g = (o + k) % G;
        l[k] = len[g];
        f[k] = fsq[g];
        for (int q = 0; q < stages; q++)
            r[k * stages + q] = rvq[(int64_t)g * nq + q];
        T += l[k];
    }
    it->lengths = l;
    it->fsq = f;
    it->rvq = r;
    it->n_groups = n;
    it->n_stages = stages;
    it->capacity = (size_t)(T * 1280 + 1280);
    it->out = malloc(sizeof(float) * it->capacity);
    CU_ASSERT_PTR_NOT_NULL_FATAL(it->out);
}

static void test_decoder_batch(void)
{
    sotto_model *ms[2] = {load("flexicodec/small.gguf", SOTTO_BACKEND_CPU),
                          load("flexicodec/small.gguf", SOTTO_BACKEND_CUDA)};
    sotto_gguf *g = tu_golden_open("flexicodec/small_golden.gguf");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    int64_t G, nq;
    const int32_t *fsq = ints(g, "fsq_index", &G, NULL);
    const int32_t *rvq = ints(g, "rvq_codes", NULL, &nq);
    const int32_t *len = ints(g, "token_lengths", NULL, NULL);
    const int q = (int)nq, n = (int)G;
    /* (first group, groups, stages): a 3·G item beyond the 100-frame forwards */
    const int spec[][3] = {{0, n, q}, {1, 1, 0},     {2, 3, 1},
                           {0, 0, 0}, {3, 3 * n, q}, {5, n / 2 + 1, q - 1},
                           {0, n, 0}, {4, 2, q},     {n - 1, 7, q > 1 ? 2 : 1}};
    enum { N = sizeof spec / sizeof spec[0] };
    sotto_decoder_item it[2][N];
    sotto_decoder_params p = sotto_decoder_default_params();
    p.max_batch_frames = 100;
    for (int b = 0; b < 2; b++) {
        for (int i = 0; i < N; i++)
            batch_item(len, fsq, rvq, n, q, spec[i][0], spec[i][1], spec[i][2], &it[b][i]);
        sotto_decoder *d = NULL;
        sotto_status st;
        int rc = sotto_decoder_create(ms[b], &p, &d, &st);
        if (rc) fprintf(stderr, "decoder: %s\n", st.message);
        CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
        if (b) printf("  batch gap: %d frames\n", sotto_decoder_batch_gap_frames(d));
        rc = sotto_decoder_decode_batch(d, it[b], N);
        if (rc) fprintf(stderr, "batch: %s\n", sotto_decoder_last_error(d));
        CU_ASSERT_EQUAL(rc, SOTTO_OK);
        sotto_decoder_free(d);
    }
    for (int i = 0; i < N; i++) {
        char what[96];
        CU_ASSERT_EQUAL(it[0][i].result, it[1][i].result);
        if (it[0][i].result != it[1][i].result || it[0][i].result <= 0) continue;
        snprintf(what, sizeof what, "decoder batch, item of %d groups, %d stages, vs CPU",
                 it[0][i].n_groups, it[0][i].n_stages);
        check_close(what, it[0][i].out, it[1][i].out, it[0][i].result, DEC_MAX_ABS, DEC_NMSE);
        /* the same item alone through a decoder on the device */
        int64_t m = 0;
        float *y = decode(ms[1], &p, it[1][i].lengths, it[1][i].fsq, it[1][i].rvq,
                          it[1][i].n_groups, it[1][i].n_stages, &m);
        CU_ASSERT_EQUAL(m, it[1][i].result);
        snprintf(what, sizeof what, "decoder batch, item of %d groups, %d stages, vs alone",
                 it[0][i].n_groups, it[0][i].n_stages);
        if (m == it[1][i].result) check_close(what, y, it[1][i].out, m, DEC_MAX_ABS, DEC_NMSE);
        free(y);
    }
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < N; i++) {
            free((void *)it[b][i].lengths);
            free((void *)it[b][i].fsq);
            free((void *)it[b][i].rvq);
            free(it[b][i].out);
        }
    sotto_gguf_close(g);
    sotto_model_free(ms[0]);
    sotto_model_free(ms[1]);
}

int main(void)
{
    sotto_model_params p = sotto_model_default_params();
    p.backend = SOTTO_BACKEND_CUDA;
    sotto_model *m = NULL;
    sotto_status st;
    const int rc = sotto_model_load_file(tu_data_path("vocos/mel-small.gguf"), &p, &m, &st);
    if (rc == SOTTO_ERR_DEVICE) {
        /* the promised error without a device; anything else would be a bug */
        printf("SKIP: %s\n", st.message);
        return TU_SKIP;
    }
    if (rc) {
        fprintf(stderr, "load with SOTTO_BACKEND_CUDA: %s\n", st.message);
        return 1;
    }
    sotto_model_free(m);
    static const tu_test tests[] = {
        {"selection", test_selection},         {"vocoder", test_vocoder},
        {"vocoder batch", test_vocoder_batch}, {"decoder", test_decoder},
        {"decoder batch", test_decoder_batch}, {NULL, NULL}};
    return tu_run_suite("backend_cuda", tests);
}
