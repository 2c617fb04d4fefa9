/*
 * sotto_vocoder_vocode_batch on the CPU: every item equals, bit for bit, what push_features of
 * its frames then flush give on a fresh stream (the golden mel features of mel-small, cut and
 * tiled to 1, 2, 5, T and 3T - 7 frames, and an EnCodec-feature model's features); the stream
 * is reset afterwards and still works; bad items (NULL buffers, no frames, a capacity below
 * sotto_vocoder_offline_samples, a NaN feature) report their own error while the others run,
 * and the call returns the first item's error.
 */
#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sotto/sotto.h"
#include "sotto/sotto_vocoder.h"
#include "testutil.h"

static sotto_model *load(const char *rel)
{
    sotto_model *m = NULL;
    sotto_status st;
    int rc = sotto_model_load_file(tu_data_path(rel), NULL, &m, &st);
    if (rc) fprintf(stderr, "load %s: %s\n", rel, st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    return m;
}

/* The features of a golden file tiled to T frames. */
static float *tiled(const char *golden, const char *name, int T, int *Cin)
{
    sotto_gguf *g = tu_golden_open(golden);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    int64_t shape[4];
    float *f = tu_golden_f32(g, name, NULL, shape);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    sotto_gguf_close(g);
    const int T0 = (int)shape[0];
    *Cin = (int)shape[1];
    float *x = malloc(sizeof(float) * (size_t)T * *Cin);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    for (int t = 0; t < T; t++)
        memcpy(x + (size_t)t * *Cin, f + (size_t)(t % T0) * *Cin, sizeof(float) * (size_t)*Cin);
    free(f);
    return x;
}

/* The stream's offline output: all frames pushed at once, then flush. */
static float *offline(sotto_vocoder *v, const float *x, int T, int64_t *n)
{
    const size_t cap = (size_t)sotto_vocoder_offline_samples(v, T);
    float *y = malloc(sizeof(float) * (cap ? cap : 1));
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    CU_ASSERT_EQUAL_FATAL(sotto_vocoder_reset(v), SOTTO_OK);
    const int a = sotto_vocoder_push_features(v, x, T, y, cap);
    CU_ASSERT_FATAL(a >= 0);
    const int b = sotto_vocoder_flush(v, y + a, cap - (size_t)a);
    CU_ASSERT_FATAL(b >= 0);
    *n = a + b;
    CU_ASSERT_EQUAL(*n, (int64_t)cap);
    CU_ASSERT_EQUAL_FATAL(sotto_vocoder_reset(v), SOTTO_OK);
    return y;
}

static void check_model(const char *model, const char *golden, const char *name)
{
    sotto_model *m = load(model);
    sotto_vocoder *v = NULL;
    sotto_status st;
    sotto_vocoder_params vp = sotto_vocoder_default_params();
    vp.max_chunk_frames = 16; /* items longer than a step go through several */
    CU_ASSERT_EQUAL_FATAL(sotto_vocoder_create(m, &vp, &v, &st), SOTTO_OK);
    int Cin = 0, Tg = 0;
    {
        sotto_gguf *g = tu_golden_open(golden);
        const sotto_gguf_tensor *t = sotto_gguf_find_tensor(g, name);
        CU_ASSERT_PTR_NOT_NULL_FATAL(t);
        Tg = (int)t->shape[0];
        sotto_gguf_close(g);
    }
    const int lens[] = {1, 2, 5, Tg, 3 * Tg - 7};
    enum { N = sizeof lens / sizeof lens[0] };
    float *x[N], *ref[N];
    int64_t nref[N];
    sotto_vocoder_item items[N];
    for (int i = 0; i < N; i++) {
        x[i] = tiled(golden, name, lens[i], &Cin);
        ref[i] = offline(v, x[i], lens[i], &nref[i]);
        items[i] = (sotto_vocoder_item){.frames = x[i],
                                        .n_frames = lens[i],
                                        .out = malloc(sizeof(float) * (size_t)(nref[i] + 8)),
                                        .capacity = (size_t)nref[i] + 8};
        CU_ASSERT_PTR_NOT_NULL_FATAL(items[i].out);
    }
    CU_ASSERT_EQUAL(sotto_vocoder_vocode_batch(v, items, N), SOTTO_OK);
    for (int i = 0; i < N; i++) {
        CU_ASSERT_EQUAL(items[i].result, nref[i]);
        CU_ASSERT(items[i].result == nref[i] &&
                  memcmp(items[i].out, ref[i], sizeof(float) * (size_t)nref[i]) == 0);
    }
    printf("  %s: %d items, each equal to its own offline stream\n", model, N);

    /* the stream starts from a reset afterwards */
    int64_t again;
    float *y = offline(v, x[3], lens[3], &again);
    CU_ASSERT(again == nref[3] && memcmp(y, ref[3], sizeof(float) * (size_t)again) == 0);
    free(y);

    /* bad items: each its own error, the good ones still run, the first error returned */
    float nan_frame[4096];
    CU_ASSERT_FATAL(Cin <= 4096);
    memcpy(nan_frame, x[2], sizeof(float) * (size_t)Cin);
    nan_frame[Cin / 2] = NAN;
    float small[4];
    sotto_vocoder_item bad[6] = {
        {.frames = NULL, .n_frames = 3, .out = items[2].out, .capacity = items[2].capacity},
        {.frames = x[2], .n_frames = 0, .out = items[2].out, .capacity = items[2].capacity},
        {.frames = x[2], .n_frames = 5, .out = small, .capacity = 4},
        {.frames = nan_frame, .n_frames = 1, .out = items[0].out, .capacity = items[0].capacity},
        items[3],
        {.frames = x[2], .n_frames = 5, .out = NULL, .capacity = 100000}};
    memset(items[3].out, 0, sizeof(float) * (size_t)nref[3]);
    CU_ASSERT_EQUAL(sotto_vocoder_vocode_batch(v, bad, 6), SOTTO_ERR_INVALID_ARG);
    TU_ASSERT_HAS(sotto_vocoder_last_error(v), "batch item 0");
    CU_ASSERT_EQUAL(bad[0].result, SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(bad[1].result, SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(bad[2].result, SOTTO_ERR_BUFFER_TOO_SMALL);
    CU_ASSERT_EQUAL(bad[3].result, SOTTO_ERR_BAD_AUDIO);
    CU_ASSERT_EQUAL(bad[4].result, nref[3]);
    CU_ASSERT(memcmp(items[3].out, ref[3], sizeof(float) * (size_t)nref[3]) == 0);
    CU_ASSERT_EQUAL(bad[5].result, SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_vocoder_vocode_batch(v, NULL, 1), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_vocoder_vocode_batch(v, items, -1), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_vocoder_vocode_batch(NULL, items, 1), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_vocoder_vocode_batch(v, NULL, 0), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_vocoder_offline_samples(v, 0), 0);
    CU_ASSERT_EQUAL(sotto_vocoder_offline_samples(NULL, 5), 0);

    for (int i = 0; i < N; i++) {
        free(x[i]);
        free(ref[i]);
        free(items[i].out);
    }
    sotto_vocoder_free(v);
    sotto_model_free(m);
}

static void test_mel(void)
{
    check_model("vocos/mel-small.gguf", "vocos/mel-small_golden.gguf", "mel");
}

static void test_same(void)
{
    check_model("vocos/mel-same-1280.gguf", "vocos/mel-same-1280_golden.gguf", "mel");
}

static void test_encodec(void)
{
    check_model("vocos/encodec-small.gguf", "vocos/encodec-small_golden.gguf", "features");
}

static void test_params(void)
{
    sotto_model *m = load("vocos/mel-small.gguf");
    sotto_vocoder *v = NULL;
    sotto_status st;
    sotto_vocoder_params vp = sotto_vocoder_default_params();
    CU_ASSERT_EQUAL(vp.max_batch_frames, 0);
    vp.max_batch_frames = -1;
    CU_ASSERT_EQUAL(sotto_vocoder_create(m, &vp, &v, &st), SOTTO_ERR_INVALID_ARG);
    TU_ASSERT_HAS(st.message, "max_batch_frames");
    vp.max_batch_frames = (1 << 20) + 1;
    CU_ASSERT_EQUAL(sotto_vocoder_create(m, &vp, &v, &st), SOTTO_ERR_INVALID_ARG);
    vp.max_batch_frames = 4096; /* ignored on the CPU */
    CU_ASSERT_EQUAL(sotto_vocoder_create(m, &vp, &v, &st), SOTTO_OK);
    sotto_vocoder_free(v);
    sotto_model_free(m);
}

int main(void)
{
    static const tu_test tests[] = {{"batch equals streams, mel (center)", test_mel},
                                    {"batch equals streams, mel (same)", test_same},
                                    {"batch equals streams, EnCodec features", test_encodec},
                                    {"batch parameters", test_params},
                                    {NULL, NULL}};
    return tu_run_suite("vocoder_batch", tests);
}
