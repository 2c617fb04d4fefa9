/*
 * FlexiCodec decoder (sotto_codec.h) end to end against the official flexicodec 0.1.2
 * FlexiCodec.decode_from_codes, through the public API only: the small random-weight model
 * WITH its 3-layer bottleneck transformer and the fixtures of tools/golden/flexicodec_decode.py
 * (14 groups of lengths 1..8, 3 RVQ stages, 0 stages, and a stage count per group).
 *
 * Tolerances (fp32): waveform max-abs ≤ 1e-3 and NMSE ≤ 1e-6, output length exact
 * (1280·T − 16). Chunked pushes, max_stages, reset and a segment window longer than the
 * utterance must give bit-identical samples; 2 threads and the scalar kernels must meet the
 * parity bounds. Concealment must keep the length and give finite, non-silent output; bad
 * inputs must give the documented error codes and change nothing. With
 * SOTTO_FLEXICODEC_FULL=DIR (the output folder of `flexicodec_decode.py --full DIR`) the
 * full released configuration is checked too and its decode speed printed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sotto/sotto.h"
#include "sotto/sotto_codec.h"
#include "testutil.h"

#define TOL_WAVE 1e-3
#define TOL_WAVE_NMSE 1e-6

#define MODEL "flexicodec/decode-small.gguf"
#define GOLDEN "flexicodec/decode-small_golden.gguf"

/* The fixture: codes, lengths and reference waveforms. */
typedef struct golden {
    sotto_gguf *g;
    int G, nq, hi; /* groups, stored stages, stages of wave<hi> */
    const int32_t *fsq, *rvq, *len, *stages;
    float *wave_hi, *wave0, *wave_mixed;
    int64_t n; /* samples of each waveform */
} golden;

static const int32_t *ints(const sotto_gguf *g, const char *name, int64_t *n0, int64_t *n1)
{
    const sotto_gguf_tensor *t = sotto_gguf_find_tensor(g, name);
    if (!t) fprintf(stderr, "fixture has no tensor '%s'\n", name);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL_FATAL(t->dtype, SOTTO_DTYPE_I32);
    if (n0) *n0 = t->shape[0];
    if (n1) *n1 = t->n_dims > 1 ? t->shape[1] : 1;
    return t->data;
}

static int64_t meta_i64(const sotto_gguf *g, const char *key)
{
    int64_t v = 0;
    sotto_status st;
    int rc = sotto_gguf_get_i64(g, key, &v, &st);
    if (rc) fprintf(stderr, "fixture key %s: %s\n", key, st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    return v;
}

static void golden_open(golden *f, const char *path_or_rel, int absolute)
{
    memset(f, 0, sizeof *f);
    if (absolute) {
        sotto_status st;
        int rc = sotto_gguf_open_file(path_or_rel, 1, NULL, &f->g, &st);
        if (rc) fprintf(stderr, "open %s: %s\n", path_or_rel, st.message);
    } else {
        f->g = tu_golden_open(path_or_rel);
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->g);
    int64_t G, nq, n;
    f->fsq = ints(f->g, "fsq", &G, NULL);
    f->rvq = ints(f->g, "rvq", NULL, &nq);
    f->len = ints(f->g, "lengths", NULL, NULL);
    f->stages = ints(f->g, "stages_mixed", NULL, NULL);
    f->G = (int)G;
    f->nq = (int)nq;
    f->hi = (int)meta_i64(f->g, "flexicodec.hi_stages");
    char name[32];
    snprintf(name, sizeof name, "wave%d", f->hi);
    f->wave_hi = tu_golden_f32(f->g, name, &f->n, NULL);
    f->wave0 = tu_golden_f32(f->g, "wave0", &n, NULL);
    f->wave_mixed = tu_golden_f32(f->g, "wave_mixed", &n, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->wave_hi);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->wave0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->wave_mixed);
    CU_ASSERT_EQUAL_FATAL(n, f->n);
}

static void golden_close(golden *f)
{
    free(f->wave_hi);
    free(f->wave0);
    free(f->wave_mixed);
    sotto_gguf_close(f->g);
}

static sotto_model *load(const char *path, int n_threads, unsigned mask)
{
    sotto_model_params mp = sotto_model_default_params();
    mp.n_threads = n_threads;
    mp.cpu_features_mask = mask;
    sotto_model *m = NULL;
    sotto_status st;
    int rc = sotto_model_load_file(path, &mp, &m, &st);
    if (rc) fprintf(stderr, "load %s: %s\n", path, st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    return m;
}

static sotto_decoder *create(const sotto_model *m, const sotto_decoder_params *p)
{
    sotto_decoder *d = NULL;
    sotto_status st;
    int rc = sotto_decoder_create(m, p, &d, &st);
    if (rc) fprintf(stderr, "create: %s\n", st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    return d;
}

/* Groups [g0, g1) of the fixture with the first ns stages (ns ≤ the stored stages). */
static int push_range(sotto_decoder *d, const golden *f, int g0, int g1, int ns)
{
    int32_t *codes = malloc(sizeof(int32_t) * (size_t)((g1 - g0) * (ns ? ns : 1)));
    CU_ASSERT_PTR_NOT_NULL_FATAL(codes);
    for (int g = g0; g < g1; g++)
        for (int q = 0; q < ns; q++)
            codes[(g - g0) * ns + q] = f->rvq[g * f->nq + q];
    int rc = sotto_decoder_push(d, f->len + g0, f->fsq + g0, ns ? codes : NULL, g1 - g0, ns);
    if (rc) fprintf(stderr, "push: %s\n", sotto_decoder_last_error(d));
    free(codes);
    return rc;
}

/* Flushes into a fresh buffer; *n gets the count (or the error). */
static float *flush(sotto_decoder *d, int64_t *n)
{
    size_t cap = sotto_decoder_max_output_samples(d);
    float *y = malloc(sizeof(float) * (cap ? cap : 1));
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    int got = sotto_decoder_flush(d, y, cap);
    if (got < 0) fprintf(stderr, "flush: %s\n", sotto_decoder_last_error(d));
    *n = got;
    return y;
}

/* The whole fixture with `ns` stages in one push, flushed. */
static float *decode_all(sotto_decoder *d, const golden *f, int ns, int64_t *n)
{
    CU_ASSERT_EQUAL_FATAL(push_range(d, f, 0, f->G, ns), SOTTO_OK);
    return flush(d, n);
}

static float *decode_mixed(sotto_decoder *d, const golden *f, int64_t *n)
{
    for (int g = 0; g < f->G; g++)
        CU_ASSERT_EQUAL_FATAL(push_range(d, f, g, g + 1, f->stages[g]), SOTTO_OK);
    return flush(d, n);
}

static int64_t total_frames(const golden *f)
{
    int64_t T = 0;
    for (int g = 0; g < f->G; g++)
        T += f->len[g];
    return T;
}

static double rms(const float *x, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    return n ? sqrt(s / (double)n) : 0.0;
}

/* wave<hi>, wave0 and the per-group stage counts on one model. */
static void check_parity(sotto_model *m, const golden *f, const char *what)
{
    char label[96];
    int64_t n;
    sotto_decoder *d = create(m, NULL);
    float *y = decode_all(d, f, f->hi, &n);
    CU_ASSERT_EQUAL(n, f->n);
    CU_ASSERT_EQUAL(n, 1280 * total_frames(f) - 16);
    snprintf(label, sizeof label, "%s: %d stages", what, f->hi);
    if (n == f->n) TU_ASSERT_CLOSE(label, y, f->wave_hi, n, TOL_WAVE, TOL_WAVE_NMSE);
    free(y);

    CU_ASSERT_EQUAL(sotto_decoder_reset(d), SOTTO_OK);
    y = decode_all(d, f, 0, &n);
    CU_ASSERT_EQUAL(n, f->n);
    snprintf(label, sizeof label, "%s: 0 stages", what);
    if (n == f->n) TU_ASSERT_CLOSE(label, y, f->wave0, n, TOL_WAVE, TOL_WAVE_NMSE);
    free(y);

    CU_ASSERT_EQUAL(sotto_decoder_reset(d), SOTTO_OK);
    y = decode_mixed(d, f, &n);
    CU_ASSERT_EQUAL(n, f->n);
    snprintf(label, sizeof label, "%s: stages per group", what);
    if (n == f->n) TU_ASSERT_CLOSE(label, y, f->wave_mixed, n, TOL_WAVE, TOL_WAVE_NMSE);
    free(y);
    sotto_decoder_free(d);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_info(void)
{
    sotto_model *m = load(tu_data_path(MODEL), 1, ~0u);
    CU_ASSERT_STRING_EQUAL(sotto_model_architecture(m), "flexicodec");
    sotto_decoder_params p = sotto_decoder_default_params();
    CU_ASSERT_EQUAL(p.max_frames, 375);
    CU_ASSERT_EQUAL(p.max_groups, 0);
    CU_ASSERT_EQUAL(p.max_stages, -1);
    CU_ASSERT_EQUAL(p.segment_frames, 0);
    sotto_decoder *d = create(m, NULL);
    CU_ASSERT_EQUAL(sotto_decoder_sample_rate_hz(d), 16000);
    CU_ASSERT_EQUAL(sotto_decoder_hop_samples(d), 1280);
    CU_ASSERT_EQUAL(sotto_decoder_max_stages(d), 4);
    CU_ASSERT_EQUAL(sotto_decoder_decoded_stages(d), 4);
    CU_ASSERT_EQUAL(sotto_decoder_codebook_size(d), 64);
    CU_ASSERT_EQUAL(sotto_decoder_fsq_size(d), 32768);
    CU_ASSERT_EQUAL(sotto_decoder_max_group_length(d), 8);
    CU_ASSERT_EQUAL(sotto_decoder_max_output_samples(d), 1280 * 375 - 16);
    CU_ASSERT_EQUAL(sotto_decoder_output_samples(d), 0);
    CU_ASSERT_STRING_EQUAL(sotto_decoder_last_error(d), "");
    /* Nothing pushed: an empty flush. */
    float one;
    CU_ASSERT_EQUAL(sotto_decoder_flush(d, &one, 1), 0);
    sotto_decoder_free(d);
    p.max_stages = 2;
    d = create(m, &p);
    CU_ASSERT_EQUAL(sotto_decoder_decoded_stages(d), 2);
    sotto_decoder_free(d);
    /* NULL getters do not crash. */
    CU_ASSERT_EQUAL(sotto_decoder_hop_samples(NULL), 0);
    CU_ASSERT_EQUAL(sotto_decoder_max_output_samples(NULL), 0);
    CU_ASSERT_STRING_EQUAL(sotto_decoder_last_error(NULL), "");
    sotto_decoder_free(NULL);
    sotto_model_free(m);
}

static void test_parity(void)
{
    golden f;
    golden_open(&f, GOLDEN, 0);
    sotto_model *m = load(tu_data_path(MODEL), 1, ~0u);
    check_parity(m, &f, "simd");
    sotto_model_free(m);
    golden_close(&f);
}

static void test_threads_and_scalar(void)
{
    golden f;
    golden_open(&f, GOLDEN, 0);
    sotto_model *m = load(tu_data_path(MODEL), 2, ~0u);
    check_parity(m, &f, "2 threads");
    sotto_model_free(m);
    m = load(tu_data_path(MODEL), 1, 0u);
    check_parity(m, &f, "scalar");
    sotto_model_free(m);
    golden_close(&f);
}

static void test_chunks_stages_reset(void)
{
    golden f;
    golden_open(&f, GOLDEN, 0);
    sotto_model *m = load(tu_data_path(MODEL), 1, ~0u);
    sotto_decoder *d = create(m, NULL);
    int64_t n_ref, n;
    float *ref = decode_all(d, &f, f.hi, &n_ref);
    CU_ASSERT_EQUAL_FATAL(n_ref, f.n);

    /* After flush: pushes need a reset; the state error changes nothing. */
    CU_ASSERT_EQUAL(push_range(d, &f, 0, 1, 1), SOTTO_ERR_STATE);
    CU_ASSERT_EQUAL(sotto_decoder_conceal(d, 1, NULL), SOTTO_ERR_STATE);
    float one;
    CU_ASSERT_EQUAL(sotto_decoder_flush(d, &one, 1), SOTTO_ERR_STATE);
    CU_ASSERT_PTR_NOT_NULL(strstr(sotto_decoder_last_error(d), "reset"));

    /* Reset reproduces. */
    CU_ASSERT_EQUAL(sotto_decoder_reset(d), SOTTO_OK);
    float *y = decode_all(d, &f, f.hi, &n);
    CU_ASSERT_EQUAL(n, n_ref);
    CU_ASSERT_EQUAL(memcmp(y, ref, sizeof(float) * (size_t)n_ref), 0);
    free(y);

    /* Chunked pushes (1, 4, 2, then the rest, one empty push between) equal one push. */
    CU_ASSERT_EQUAL(sotto_decoder_reset(d), SOTTO_OK);
    const int cuts[] = {0, 1, 5, 5, 7, f.G};
    for (size_t i = 0; i + 1 < sizeof cuts / sizeof cuts[0]; i++) {
        CU_ASSERT_EQUAL(push_range(d, &f, cuts[i], cuts[i + 1], f.hi), SOTTO_OK);
        CU_ASSERT_EQUAL(sotto_decoder_buffered_groups(d), cuts[i + 1]);
    }
    CU_ASSERT_EQUAL(sotto_decoder_buffered_frames(d), total_frames(&f));
    CU_ASSERT_EQUAL(sotto_decoder_output_samples(d), (size_t)f.n);
    y = flush(d, &n);
    CU_ASSERT_EQUAL(n, n_ref);
    CU_ASSERT_EQUAL(memcmp(y, ref, sizeof(float) * (size_t)n_ref), 0);
    free(y);
    sotto_decoder_free(d);

    /* All stored stages pushed, max_stages = hi decodes only the first hi: the same. */
    sotto_decoder_params p = sotto_decoder_default_params();
    p.max_stages = f.hi;
    d = create(m, &p);
    y = decode_all(d, &f, f.nq, &n);
    CU_ASSERT_EQUAL(n, n_ref);
    CU_ASSERT_EQUAL(memcmp(y, ref, sizeof(float) * (size_t)n_ref), 0);
    free(y);
    sotto_decoder_free(d);

    /* A segment window longer than the utterance: the whole-utterance path, bit-identical. */
    p = sotto_decoder_default_params();
    p.max_frames = 200;
    p.segment_frames = 100;
    p.overlap_frames = 8;
    d = create(m, &p);
    y = decode_all(d, &f, f.hi, &n);
    CU_ASSERT_EQUAL(n, n_ref);
    CU_ASSERT_EQUAL(memcmp(y, ref, sizeof(float) * (size_t)n_ref), 0);
    free(y);
    sotto_decoder_free(d);

    free(ref);
    sotto_model_free(m);
    golden_close(&f);
}

/* Segmented decoding of an utterance longer than the window. The stitching is checked
 * exactly: windows whose context covers the whole utterance must reproduce the reference.
 * With less context the result is an approximation; with random weights the transformer's
 * attention has no locality at all, so the figures printed here are a worst case (the bound
 * only catches a broken window). */
static void test_segmented(void)
{
    golden f;
    golden_open(&f, GOLDEN, 0);
    sotto_model *m = load(tu_data_path(MODEL), 1, ~0u);
    const struct {
        int seg, ov;
        double nmse;
    } cases[] = {{40, 40, TOL_WAVE_NMSE}, {32, 16, 0.2}, {16, 8, 0.5}, {8, 1, 2.0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sotto_decoder_params p = sotto_decoder_default_params();
        p.max_frames = 200;
        p.segment_frames = cases[i].seg;
        p.overlap_frames = cases[i].ov;
        sotto_decoder *d = create(m, &p);
        int64_t n;
        float *y = decode_all(d, &f, f.hi, &n);
        CU_ASSERT_EQUAL_FATAL(n, f.n);
        char label[96];
        snprintf(label, sizeof label, "segments of %d frames + 2 x %d context (T = %lld)",
                 cases[i].seg, cases[i].ov, (long long)total_frames(&f));
        const double tol_abs = i == 0 ? TOL_WAVE : -1.0;
        TU_ASSERT_CLOSE(label, y, f.wave_hi, n, tol_abs, cases[i].nmse);
        free(y);
        sotto_decoder_free(d);
    }
    sotto_model_free(m);
    golden_close(&f);
}

/* Samples of frames [t0, t1) (the hop grid) of y. */
static double span_rms(const float *y, int64_t n, int64_t t0, int64_t t1)
{
    int64_t a = t0 * 1280, b = t1 * 1280 < n ? t1 * 1280 : n;
    return rms(y + a, b - a);
}

static int all_finite(const float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(y[i])) return 0;
    return 1;
}

static void test_conceal(void)
{
    golden f;
    golden_open(&f, GOLDEN, 0);
    sotto_model *m = load(tu_data_path(MODEL), 1, ~0u);
    sotto_decoder *d = create(m, NULL);
    int64_t n, t0 = 0, t1 = 0;
    for (int g = 0; g < 5; g++)
        t0 += f.len[g];
    t1 = t0 + f.len[5] + f.len[6] + f.len[7];
    const double whole = rms(f.wave_hi, f.n);

    /* Groups 5..7 lost, lengths known: same length, finite, not silent where they were. */
    CU_ASSERT_EQUAL(push_range(d, &f, 0, 5, f.hi), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_decoder_conceal(d, 3, f.len + 5), SOTTO_OK);
    CU_ASSERT_EQUAL(push_range(d, &f, 8, f.G, f.hi), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_decoder_buffered_groups(d), f.G);
    float *y = flush(d, &n);
    CU_ASSERT_EQUAL(n, f.n);
    CU_ASSERT_TRUE(all_finite(y, n));
    double r = span_rms(y, n, t0, t1);
    printf("  concealed 3 groups (%lld frames): rms %.3g there, whole utterance %.3g\n",
           (long long)(t1 - t0), r, whole);
    CU_ASSERT_TRUE(r > 0.05 * whole);
    free(y);

    /* Unknown lengths: each gets the rounded mean received length. */
    CU_ASSERT_EQUAL(sotto_decoder_reset(d), SOTTO_OK);
    CU_ASSERT_EQUAL(push_range(d, &f, 0, 5, f.hi), SOTTO_OK);
    const int mean = (int)((t0 + 2) / 5);
    CU_ASSERT_EQUAL(sotto_decoder_conceal(d, 3, NULL), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_decoder_buffered_frames(d), t0 + 3 * mean);
    CU_ASSERT_EQUAL(push_range(d, &f, 8, f.G, 2), SOTTO_OK);
    const int64_t T = t0 + 3 * mean + (total_frames(&f) - t1);
    CU_ASSERT_EQUAL(sotto_decoder_output_samples(d), (size_t)(1280 * T - 16));
    y = flush(d, &n);
    CU_ASSERT_EQUAL(n, 1280 * T - 16);
    CU_ASSERT_TRUE(all_finite(y, n));
    CU_ASSERT_TRUE(span_rms(y, n, t0, t0 + 3 * mean) > 0.05 * whole);
    free(y);

    /* A known duration with unknown grouping keeps the exact frame count; loss at the start
     * and at the end of the utterance. */
    CU_ASSERT_EQUAL(sotto_decoder_reset(d), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_decoder_conceal_frames(d, 5), SOTTO_OK); /* nothing received yet */
    CU_ASSERT_EQUAL(sotto_decoder_buffered_frames(d), 5);
    CU_ASSERT_EQUAL(sotto_decoder_buffered_groups(d), 3); /* 2 + 2 + 1 */
    CU_ASSERT_EQUAL(push_range(d, &f, 0, f.G, 1), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_decoder_conceal_frames(d, 11), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_decoder_conceal_frames(d, 0), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_decoder_buffered_frames(d), 5 + total_frames(&f) + 11);
    y = flush(d, &n);
    CU_ASSERT_EQUAL(n, 1280 * (5 + total_frames(&f) + 11) - 16);
    CU_ASSERT_TRUE(all_finite(y, n));
    CU_ASSERT_TRUE(span_rms(y, n, 0, 5) > 0.05 * whole);
    CU_ASSERT_TRUE(span_rms(y, n, 5 + total_frames(&f), 16 + total_frames(&f)) > 0.05 * whole);
    free(y);

    /* Everything lost: the zero code, still finite and of the right length. */
    CU_ASSERT_EQUAL(sotto_decoder_reset(d), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_decoder_conceal(d, 4, NULL), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_decoder_buffered_frames(d), 8);
    y = flush(d, &n);
    CU_ASSERT_EQUAL(n, 1280 * 8 - 16);
    CU_ASSERT_TRUE(all_finite(y, n));
    free(y);
    sotto_decoder_free(d);
    sotto_model_free(m);
    golden_close(&f);
}

static void test_errors(void)
{
    golden f;
    golden_open(&f, GOLDEN, 0);
    sotto_model *m = load(tu_data_path(MODEL), 1, ~0u);
    sotto_decoder *d = NULL;
    sotto_status st;

    /* create */
    CU_ASSERT_EQUAL(sotto_decoder_create(NULL, NULL, &d, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_decoder_create(m, NULL, NULL, &st), SOTTO_ERR_INVALID_ARG);
    sotto_decoder_params p = sotto_decoder_default_params();
    const struct {
        int field, value;
    } bad[] = {{0, 0}, {0, 2000000}, {1, -1}, {1, 376}, {2, -2}, {2, 5}, {3, 4}, {3, 400}, {4, 0}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sotto_decoder_params q = p;
        int *fields[5] = {&q.max_frames, &q.max_groups, &q.max_stages, &q.segment_frames,
                          &q.overlap_frames};
        *fields[bad[i].field] = bad[i].value;
        if (bad[i].field == 4) q.segment_frames = 32;
        d = (sotto_decoder *)&f; /* must be reset to NULL */
        CU_ASSERT_EQUAL(sotto_decoder_create(m, &q, &d, &st), SOTTO_ERR_INVALID_ARG);
        CU_ASSERT_PTR_NULL(d);
        CU_ASSERT_TRUE(st.message[0] != '\0');
    }

    /* wrong model kind */
    sotto_model *voc = load(tu_data_path("vocos/mel-small.gguf"), 1, ~0u);
    CU_ASSERT_EQUAL(sotto_decoder_create(voc, NULL, &d, &st), SOTTO_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NULL(d);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "vocos"));
    sotto_model_free(voc);

    /* push */
    p.max_frames = 40;
    p.max_groups = 6;
    d = create(m, &p);
    const int32_t len_ok[2] = {3, 8}, fsq_ok[2] = {0, 32767}, rvq_ok[4] = {0, 63, 5, 6};
    int32_t len[2], fsq[2], rvq[4];
#define RESET_INPUTS()                                                                             \
    do {                                                                                           \
        memcpy(len, len_ok, sizeof len);                                                           \
        memcpy(fsq, fsq_ok, sizeof fsq);                                                           \
        memcpy(rvq, rvq_ok, sizeof rvq);                                                           \
    } while (0)
#define PUSH_FAILS(code)                                                                           \
    do {                                                                                           \
        CU_ASSERT_EQUAL(sotto_decoder_push(d, len, fsq, rvq, 2, 2), (code));                       \
        CU_ASSERT_EQUAL(sotto_decoder_buffered_groups(d), 0);                                      \
        RESET_INPUTS();                                                                            \
    } while (0)
    RESET_INPUTS();
    fsq[1] = 32768;
    PUSH_FAILS(SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(sotto_decoder_last_error(d), "FSQ"));
    fsq[0] = -1;
    PUSH_FAILS(SOTTO_ERR_INVALID_ARG);
    rvq[3] = 64;
    PUSH_FAILS(SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(sotto_decoder_last_error(d), "group 1, stage 1"));
    rvq[0] = -1;
    PUSH_FAILS(SOTTO_ERR_INVALID_ARG);
    len[0] = 0;
    PUSH_FAILS(SOTTO_ERR_INVALID_ARG);
    len[1] = 9;
    PUSH_FAILS(SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(sotto_decoder_last_error(d), "length 9"));
    CU_ASSERT_EQUAL(sotto_decoder_push(d, len, fsq, rvq, 2, 5), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_decoder_push(d, len, fsq, rvq, 2, -1), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_decoder_push(d, len, fsq, rvq, -1, 2), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_decoder_push(d, NULL, fsq, rvq, 2, 2), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_decoder_push(d, len, NULL, rvq, 2, 2), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_decoder_push(d, len, fsq, NULL, 2, 2), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_decoder_push(NULL, len, fsq, rvq, 2, 2), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_decoder_push(d, len, fsq, NULL, 2, 0), SOTTO_OK); /* no stages */
    CU_ASSERT_EQUAL(sotto_decoder_push(d, NULL, NULL, NULL, 0, 0), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_decoder_buffered_groups(d), 2);
    CU_ASSERT_EQUAL(sotto_decoder_buffered_frames(d), 11);

    /* bounds: 6 groups, 40 frames */
    CU_ASSERT_EQUAL(sotto_decoder_push(d, len, fsq, rvq, 2, 2), SOTTO_OK); /* 4 groups, 22 */
    CU_ASSERT_EQUAL(sotto_decoder_push(d, len, fsq, rvq, 2, 2), SOTTO_OK); /* 6 groups, 33 */
    len[0] = len[1] = 1;
    CU_ASSERT_EQUAL(sotto_decoder_push(d, len, fsq, rvq, 1, 2), SOTTO_ERR_BUFFER_TOO_SMALL);
    CU_ASSERT_PTR_NOT_NULL(strstr(sotto_decoder_last_error(d), "max_groups"));
    CU_ASSERT_EQUAL(sotto_decoder_conceal(d, 1, NULL), SOTTO_ERR_BUFFER_TOO_SMALL);
    CU_ASSERT_EQUAL(sotto_decoder_buffered_groups(d), 6);
    CU_ASSERT_EQUAL(sotto_decoder_reset(d), SOTTO_OK);
    const int32_t eights[6] = {8, 8, 8, 8, 8, 8}, zeros[6] = {0};
    CU_ASSERT_EQUAL(sotto_decoder_push(d, eights, zeros, NULL, 5, 0), SOTTO_OK); /* 40 */
    CU_ASSERT_EQUAL(sotto_decoder_push(d, eights, zeros, NULL, 1, 0), SOTTO_ERR_BUFFER_TOO_SMALL);
    CU_ASSERT_PTR_NOT_NULL(strstr(sotto_decoder_last_error(d), "max_frames"));
    CU_ASSERT_EQUAL(sotto_decoder_conceal_frames(d, 1), SOTTO_ERR_BUFFER_TOO_SMALL);
    CU_ASSERT_EQUAL(sotto_decoder_buffered_frames(d), 40);

    /* conceal arguments */
    CU_ASSERT_EQUAL(sotto_decoder_conceal(d, -1, NULL), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_decoder_conceal_frames(d, -1), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_decoder_conceal(NULL, 1, NULL), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_decoder_conceal_frames(NULL, 1), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_decoder_reset(d), SOTTO_OK);
    len[0] = 9;
    CU_ASSERT_EQUAL(sotto_decoder_conceal(d, 1, len), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_decoder_buffered_groups(d), 0);

    /* flush: NULL, too small (nothing lost: a second flush with room works) */
    CU_ASSERT_EQUAL(sotto_decoder_push(d, eights, zeros, NULL, 2, 0), SOTTO_OK);
    const size_t need = sotto_decoder_output_samples(d);
    CU_ASSERT_EQUAL(need, 1280 * 16 - 16);
    float *y = malloc(sizeof(float) * need);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    CU_ASSERT_EQUAL(sotto_decoder_flush(d, NULL, need), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_decoder_flush(d, y, need - 1), SOTTO_ERR_BUFFER_TOO_SMALL);
    CU_ASSERT_EQUAL(sotto_decoder_flush(d, y, need), (int)need);
    CU_ASSERT_EQUAL(sotto_decoder_flush(NULL, y, need), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_decoder_reset(NULL), SOTTO_ERR_INVALID_ARG);
    free(y);
    sotto_decoder_free(d);
    sotto_model_free(m);
    golden_close(&f);
}

/* The full released configuration (random weights), when its fixture folder is given. */
static void test_full_config(void)
{
    const char *dir = getenv("SOTTO_FLEXICODEC_FULL");
    if (!dir || !*dir) {
        printf("  SOTTO_FLEXICODEC_FULL not set: full-config check not run\n");
        return;
    }
    char path[1024];
    golden f;
    snprintf(path, sizeof path, "%s/full_golden.gguf", dir);
    golden_open(&f, path, 1);
    snprintf(path, sizeof path, "%s/full.gguf", dir);
    sotto_model *m = load(path, 1, ~0u);
    sotto_decoder_params p = sotto_decoder_default_params();
    p.max_frames = (int)total_frames(&f);
    sotto_decoder *d = create(m, &p);
    CU_ASSERT_EQUAL(sotto_decoder_max_stages(d), 24);
    CU_ASSERT_EQUAL(sotto_decoder_codebook_size(d), 4096);
    for (int rep = 0; rep < 2; rep++) {
        int64_t n;
        CU_ASSERT_EQUAL(sotto_decoder_reset(d), SOTTO_OK);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        float *y = decode_all(d, &f, f.hi, &n);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        const double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        CU_ASSERT_EQUAL(n, f.n);
        if (n == f.n) TU_ASSERT_CLOSE("full config", y, f.wave_hi, n, TOL_WAVE, TOL_WAVE_NMSE);
        printf("  full config, %d stages, %lld frames (%.2f s of audio): decode %.3f s on 1 "
               "thread (%.1fx real time)\n",
               f.hi, (long long)total_frames(&f), (double)n / 16000.0, s,
               ((double)n / 16000.0) / s);
        free(y);
    }
    sotto_decoder_free(d);
    check_parity(m, &f, "full config"); /* 0 stages and stages per group too */
    sotto_model_free(m);
    golden_close(&f);
}

int main(void)
{
    static const tu_test tests[] = {
        {"info", test_info},
        {"parity", test_parity},
        {"threads_and_scalar", test_threads_and_scalar},
        {"chunks_stages_reset", test_chunks_stages_reset},
        {"segmented", test_segmented},
        {"conceal", test_conceal},
        {"errors", test_errors},
        {"full_config", test_full_config},
        {NULL, NULL},
    };
    return tu_run_suite("flexicodec_decode", tests);
}
