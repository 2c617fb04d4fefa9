/*
 * The SenseVoice-Small encoder (encoders/sensevoice/sensevoice.h) against the official code
 * (flexicodec 0.1.2 customized_sensevoice SenseVoiceEncoderSmall + SenseVoiceSmall
 * .prepend_inputs, FunASR WavFrontend apply_lfr / apply_cmvn): fixtures written by
 * tools/golden/sensevoice.py, a small random configuration (560 → 64, 4 heads, FFN 128,
 * 3 blocks, FSMN kernel 11) on 1.5 s of speech (148 fbank frames → 25 LFR frames), weights
 * under FlexiCodec's names ("semantic_model.") as written by tools/convert/sensevoice.py.
 * Checks: LFR alone on several lengths (exact), LFR + CMVN (≤ 1e-5), the encoder output
 * (hidden_out[:, 4:]) at max-abs 1e-4 on the SIMD, scalar and 2-thread contexts, and load
 * errors that name the missing tensor.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/threadpool.h"
#include "encoders/sensevoice/sensevoice.h"
#include "testutil.h"

#define TOL_LFR 1e-5
#define TOL 1e-4
#define WEIGHTS "sensevoice/small.gguf"
#define GOLDEN "sensevoice/small_golden.gguf"

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

static void load(const sotto_gguf *w, sensevoice *sv)
{
    sensevoice_cfg cfg;
    sotto_status st;
    sotto_status_clear(&st);
    int rc = sensevoice_cfg_from_gguf(w, &cfg, &st);
    if (rc) fprintf(stderr, "cfg_from_gguf: %s\n", st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    rc = sensevoice_load(sv, w, SENSEVOICE_PREFIX_FLEXICODEC, &cfg, &g_a, &st);
    if (rc) fprintf(stderr, "load: %s\n", st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
}

static void test_lfr(void)
{
    sotto_gguf *io = tu_golden_open(GOLDEN);
    if (!io) return;
    int64_t nf, sh[4];
    float *fb = io_f32(io, "fbank", &nf, sh);
    CU_ASSERT_EQUAL_FATAL(sh[1], 80);
    const int lens[] = {1, 3, 5, 6, 7, 12, 13, 37};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "lfr.%d", lens[i]);
        int64_t n, wsh[4];
        float *want = io_f32(io, name, &n, wsh);
        const int64_t tl = sensevoice_lfr_frames(lens[i], 6);
        CU_ASSERT_EQUAL(tl, wsh[0]);
        CU_ASSERT_EQUAL_FATAL(n, tl * 560);
        float *y = alloc_f((size_t)n);
        CU_ASSERT_EQUAL(sensevoice_lfr(fb, lens[i], 80, 7, 6, y), tl);
        TU_ASSERT_CLOSE(name, y, want, n, 0, -1);
        free(y);
        free(want);
    }
    float y1[560];
    CU_ASSERT_EQUAL(sensevoice_lfr(fb, 0, 80, 7, 6, y1), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sensevoice_lfr(NULL, 3, 80, 7, 6, y1), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sensevoice_lfr_frames(148, 6), 25);
    free(fb);
    sotto_gguf_close(io);
}

static void test_encoder(void)
{
    sotto_gguf *w = tu_golden_open(WEIGHTS), *io = tu_golden_open(GOLDEN);
    if (!w || !io) goto done;
    sensevoice sv;
    load(w, &sv);
    CU_ASSERT_EQUAL(sv.cfg.input_size, 560);
    CU_ASSERT_EQUAL(sv.cfg.dim, 64);
    CU_ASSERT_EQUAL(sv.cfg.n_heads, 4);
    CU_ASSERT_EQUAL(sv.cfg.ffn_dim, 128);
    CU_ASSERT_EQUAL(sv.cfg.n_blocks, 3);
    CU_ASSERT_EQUAL(sv.cfg.kernel_size, 11);
    CU_ASSERT_EQUAL(sv.cfg.n_embed, 16);
    int64_t nf, nl, no, sh[4], lsh[4];
    float *fb = io_f32(io, "fbank", &nf, sh);
    float *lfr_want = io_f32(io, "lfr_cmvn", &nl, lsh);
    float *want = io_f32(io, "enc_out", &no, NULL);
    const int64_t T = sh[0], tl = lsh[0];
    CU_ASSERT_EQUAL_FATAL(T, 148);
    CU_ASSERT_EQUAL_FATAL(tl, 25);
    CU_ASSERT_EQUAL_FATAL(no, tl * 64);
    float *lfr = alloc_f((size_t)nl);
    CU_ASSERT_EQUAL_FATAL(sensevoice_lfr_cmvn(&sv, fb, T, lfr), tl);
    TU_ASSERT_CLOSE("lfr + cmvn", lfr, lfr_want, nl, TOL_LFR, -1);
    const size_t ns = sensevoice_scratch_size(&sv, tl);
    CU_ASSERT_TRUE_FATAL(ns > 0);
    float *scratch = alloc_f(ns), *y = alloc_f((size_t)no);
    for (int j = 0; j < 3; j++) {
        char what[64];
        memset(y, 0, sizeof(float) * (size_t)no);
        CU_ASSERT_EQUAL(sensevoice_encode(&g_ctx[j], &sv, NULL, lfr, tl, y, scratch), SOTTO_OK);
        snprintf(what, sizeof what, "encoder output (%s)", g_ctx_name[j]);
        TU_ASSERT_CLOSE(what, y, want, no, TOL, -1);
    }
    /* other query rows (withitn: 14) change the output: the queries are used */
    const int32_t q2[4] = {0, 1, 2, 14};
    CU_ASSERT_EQUAL(sensevoice_encode(&g_ctx[0], &sv, q2, lfr, tl, y, scratch), SOTTO_OK);
    CU_ASSERT_TRUE(tu_compare(y, want, no).max_abs > 1e-3);
    const int32_t bad[4] = {0, 1, 2, 16};
    CU_ASSERT_EQUAL(sensevoice_encode(&g_ctx[0], &sv, bad, lfr, tl, y, scratch),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sensevoice_encode(&g_ctx[0], &sv, NULL, lfr, tl, y, NULL),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sensevoice_encode(&g_ctx[0], &sv, NULL, lfr, 0, y, scratch), SOTTO_OK);
    sensevoice_free(&sv);
    CU_ASSERT_PTR_NULL(sv.blocks);
    sensevoice_free(&sv); /* twice is fine */
    CU_ASSERT_EQUAL(sensevoice_scratch_size(&sv, tl), 0);
    free(fb);
    free(lfr_want);
    free(want);
    free(lfr);
    free(scratch);
    free(y);
done:
    if (w) sotto_gguf_close(w);
    if (io) sotto_gguf_close(io);
}

/* A load that must fail with SOTTO_ERR_MODEL and a message containing `needle`. */
static void expect_fail(const sotto_gguf *w, const char *prefix, const sensevoice_cfg *cfg,
                        const char *needle)
{
    sensevoice sv;
    sotto_status st;
    sotto_status_clear(&st);
    CU_ASSERT_EQUAL(sensevoice_load(&sv, w, prefix, cfg, &g_a, &st), SOTTO_ERR_MODEL);
    printf("  expected error: %s\n", st.message);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.message, needle));
    CU_ASSERT_PTR_NULL(sv.blocks);
}

static void test_load_errors(void)
{
    sotto_gguf *w = tu_golden_open(WEIGHTS);
    if (!w) return;
    sensevoice_cfg cfg;
    sotto_status st;
    sotto_status_clear(&st);
    CU_ASSERT_EQUAL_FATAL(sensevoice_cfg_from_gguf(w, &cfg, &st), SOTTO_OK);
    /* the checkpoint's own names (no prefix) are not in this file */
    expect_fail(w, "", &cfg, "missing tensor 'embed.weight'");
    /* one block more than the file holds: its first tensor is missing */
    sensevoice_cfg c4 = cfg;
    c4.n_blocks = 4;
    expect_fail(w, SENSEVOICE_PREFIX_FLEXICODEC, &c4,
                "missing tensor 'semantic_model.encoder.encoders.2.norm1.weight'");
    /* one block fewer: the file has more than configured */
    sensevoice_cfg c2 = cfg;
    c2.n_blocks = 2;
    expect_fail(w, SENSEVOICE_PREFIX_FLEXICODEC, &c2, "more than the 2 blocks");
    /* a wrong width: the shape check names the tensor */
    sensevoice_cfg cf = cfg;
    cf.ffn_dim = 96;
    expect_fail(w, SENSEVOICE_PREFIX_FLEXICODEC, &cf, "encoders0.0.feed_forward.w_1.weight");
    sensevoice sv;
    CU_ASSERT_EQUAL(sensevoice_load(&sv, NULL, "", &cfg, NULL, &st), SOTTO_ERR_INVALID_ARG);
    sotto_gguf_close(w);
}

int main(void)
{
    sotto_alloc_init(&g_a, NULL);
    if (sotto_threadpool_create(2, &g_a, &g_tp) != SOTTO_OK) return 1;
    sotto_cpu_init(&g_ctx[0], ~0u, NULL);
    sotto_cpu_init(&g_ctx[1], 0, NULL);
    sotto_cpu_init(&g_ctx[2], ~0u, g_tp);
    static const tu_test tests[] = {{"lfr", test_lfr},
                                    {"encoder", test_encoder},
                                    {"load_errors", test_load_errors},
                                    {NULL, NULL}};
    const int rc = tu_run_suite("sensevoice", tests);
    sotto_threadpool_free(g_tp);
    return rc;
}
