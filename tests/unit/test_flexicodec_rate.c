/*
 * FlexiCodec rate control (target groups/s or bit/s instead of a fixed merge threshold).
 *
 * Checks: flexicodec_merge_count gives flexicodec_merge's group count from the similarities
 * for every threshold (random features, with and without the group-length limit), and it is
 * monotone in the threshold; flexicodec_pick_threshold takes the candidate nearest the target
 * (ties: the lower count), clamps outside [G(0), G(1)]; through the public encoder on the
 * small model with real speech (the golden clip and samples/speech): every reachable target
 * of 3..12.5 groups/s is met within one group, the chosen threshold given as a fixed one
 * gives the same groups, threshold 1.0 gives one group per frame, a target below what
 * max_tokens_per_group allows clamps to θ = 0 with clamped −1, bitrate targets, the file API
 * reports the achieved figures, bad targets are rejected.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codecs/flexicodec/encode.h"
#include "sotto/sotto.h"
#include "sotto/sotto_audio.h"
#include "sotto/sotto_codec.h"
#include "testutil.h"

#define MODEL "flexicodec/encode-audio-small.gguf"
#define GOLDEN "flexicodec/encode-audio-small_golden.gguf"
#define SPEECH "../../samples/speech/cmuarctic_aew_a0001_16k.flac"

static void test_merge_count(void)
{
    tu_rng r;
    tu_rng_init(&r, tu_seed());
    enum { T = 120, C = 6 };
    float *h = malloc(sizeof(float) * T * C), sim[T], sim2[T];
    int32_t len[T];
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    /* slowly drifting features: similarities spread over (−1, 1) with many near 1 */
    for (int c = 0; c < C; c++)
        h[c] = tu_rng_normal(&r);
    for (int t = 1; t < T; t++)
        for (int c = 0; c < C; c++)
            h[t * C + c] = h[(t - 1) * C + c] + (t % 17 == 0 ? 3.0f : 0.4f) * tu_rng_normal(&r);
    for (int M = 0; M <= 8; M += 4) {
        CU_ASSERT_EQUAL(flexicodec_merge(h, T, C, 1.0f, 1e-8f, M, len, sim), T);
        int64_t prev = 0;
        for (int k = 0; k <= 100; k++) {
            const float th = -1.0f + 0.02f * (float)k;
            const int64_t G = flexicodec_merge(h, T, C, th, 1e-8f, M, len, sim2);
            CU_ASSERT_EQUAL(flexicodec_merge_count(sim, T, th, M), G);
            CU_ASSERT(G >= prev); /* monotone */
            prev = G;
        }
        /* at the similarity values themselves (the candidates) */
        for (int t = 0; t + 1 < T; t++)
            CU_ASSERT_EQUAL(flexicodec_merge_count(sim, T, sim[t], M),
                            flexicodec_merge(h, T, C, sim[t], 1e-8f, M, len, NULL));
    }
    CU_ASSERT_EQUAL(flexicodec_merge_count(NULL, 1, 0.5f, 8), 1);
    CU_ASSERT_EQUAL(flexicodec_merge_count(NULL, 0, 0.5f, 8), 0);
    CU_ASSERT(flexicodec_merge_count(NULL, 5, 0.5f, 8) < 0);
    free(h);
}

static void test_pick(void)
{
    /* 9 frames, similarities 0.9 0.2 0.8 0.5 0.5 0.95 −0.1 0.7 */
    const float sim[8] = {0.9f, 0.2f, 0.8f, 0.5f, 0.5f, 0.95f, -0.1f, 0.7f};
    float work[9];
    flexicodec_rate_ctl rc;
    memset(&rc, 0, sizeof rc);
    rc.work = work;
    /* M = 0: G(0) = 2 (only −0.1 is a boundary), G(1) = 9 */
    rc.target_groups = 1.0;
    CU_ASSERT_EQUAL(flexicodec_pick_threshold(sim, 9, 0, &rc), SOTTO_OK);
    CU_ASSERT_EQUAL(rc.g_min, 2);
    CU_ASSERT_EQUAL(rc.g_max, 9);
    CU_ASSERT_EQUAL(rc.clamped, -1);
    CU_ASSERT_EQUAL(rc.threshold, 0.0f);
    rc.target_groups = 12.0;
    CU_ASSERT_EQUAL(flexicodec_pick_threshold(sim, 9, 0, &rc), SOTTO_OK);
    CU_ASSERT_EQUAL(rc.clamped, 1);
    CU_ASSERT_EQUAL(rc.threshold, 1.0f);
    /* G: θ<0.2 → 2, 0.2 → 3, 0.5 → 5 (a tie of two similarities), 0.7 → 6, 0.8 → 7,
     * 0.9 → 8, 0.95 → 9 */
    const struct {
        double want;
        float th;
        int64_t G;
    } cases[] = {
        {2.0, 0.0f, 2}, {3.0, 0.2f, 3}, {3.4, 0.2f, 3}, {3.6, 0.2f, 3}, /* 5 is farther */
        {4.0, 0.2f, 3},                                                 /* tie 3 / 5: lower */
        {4.6, 0.5f, 5}, {5.5, 0.5f, 5},                                 /* tie 5 / 6 */
        {5.6, 0.7f, 6}, {8.0, 0.9f, 8}, {9.0, 1.0f, 9}, /* the largest θ with G ≤ 9 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rc.target_groups = cases[i].want;
        CU_ASSERT_EQUAL(flexicodec_pick_threshold(sim, 9, 0, &rc), SOTTO_OK);
        CU_ASSERT_EQUAL(rc.clamped, 0);
        if (rc.threshold != cases[i].th)
            fprintf(stderr, "want %g: threshold %g, expected %g\n", cases[i].want,
                    (double)rc.threshold, (double)cases[i].th);
        CU_ASSERT_EQUAL(rc.threshold, cases[i].th);
        CU_ASSERT_EQUAL(flexicodec_merge_count(sim, 9, rc.threshold, 0), cases[i].G);
    }
    /* M = 2: G(0) = ceil(7/2) + ceil(2/2) = 5 */
    rc.target_groups = 2.0;
    CU_ASSERT_EQUAL(flexicodec_pick_threshold(sim, 9, 2, &rc), SOTTO_OK);
    CU_ASSERT_EQUAL(rc.g_min, 5);
    CU_ASSERT_EQUAL(rc.clamped, -1);
    /* bad arguments */
    rc.target_groups = NAN;
    CU_ASSERT_EQUAL(flexicodec_pick_threshold(sim, 9, 0, &rc), SOTTO_ERR_INVALID_ARG);
    rc.target_groups = -1.0;
    CU_ASSERT_EQUAL(flexicodec_pick_threshold(sim, 9, 0, &rc), SOTTO_ERR_INVALID_ARG);
    rc.target_groups = 3.0;
    CU_ASSERT_EQUAL(flexicodec_pick_threshold(sim, 0, 0, &rc), SOTTO_ERR_INVALID_ARG);
    /* one frame: nothing to choose, one group */
    rc.target_groups = 1.0;
    CU_ASSERT_EQUAL(flexicodec_pick_threshold(sim, 1, 0, &rc), SOTTO_OK);
    CU_ASSERT_EQUAL(rc.g_min, 1);
    CU_ASSERT_EQUAL(rc.g_max, 1);
}

static sotto_model *model;

static int bits_for(uint32_t v)
{
    int b = 0;
    while (v >> b)
        b++;
    return b;
}

/* Payload bits per group from the decoder's view of the model: length, FSQ, stages codes. */
static int layout_bits(int stages)
{
    sotto_decoder *d = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_decoder_create(model, NULL, &d, NULL), SOTTO_OK);
    const int b = bits_for((uint32_t)sotto_decoder_max_group_length(d) - 1) +
                  bits_for((uint32_t)sotto_decoder_fsq_size(d) - 1) +
                  stages * bits_for((uint32_t)sotto_decoder_codebook_size(d) - 1);
    sotto_decoder_free(d);
    return b;
}

static void check_clip(const float *x, int64_t n, const char *what)
{
    sotto_encoder_params ep = sotto_encoder_default_params();
    sotto_encoder *e = NULL;
    sotto_status st;
    CU_ASSERT_EQUAL_FATAL(sotto_encoder_create(model, &ep, &e, &st), SOTTO_OK);
    const double d = (double)n / 16000.0;
    sotto_encoder_groups g;
    /* θ = 1: one group per frame, 12.5 frames/s */
    CU_ASSERT_EQUAL_FATAL(sotto_encoder_set_threshold(e, 1.0f), SOTTO_OK);
    CU_ASSERT_FATAL(sotto_encoder_encode(e, x, n, &g) > 0);
    const int T = g.n_frames;
    CU_ASSERT_EQUAL(g.n_groups, T);
    CU_ASSERT_EQUAL(T, sotto_encoder_frames_for(e, n));
    CU_ASSERT_EQUAL(g.target_groups, 0.0);
    CU_ASSERT_EQUAL(g.threshold, 1.0f);

    const double targets[] = {3.0, 3.5, 4.0, 5.0, 6.25, 8.0, 10.0, 11.0, 12.0};
    int reached = 0;
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        CU_ASSERT_EQUAL_FATAL(sotto_encoder_set_target(e, targets[i], 0.0), SOTTO_OK);
        CU_ASSERT_FATAL(sotto_encoder_encode(e, x, n, &g) > 0);
        const double want = targets[i] * d;
        const int G = g.n_groups;
        const float th = g.threshold;
        printf("%s: target %5.2f groups/s (%.1f groups): %d groups (%.2f/s), threshold %.4f, "
               "clamped %d\n",
               what, targets[i], want, G, G / d, (double)th, g.clamped);
        CU_ASSERT(fabs(g.target_groups - want) < 1e-9);
        CU_ASSERT_EQUAL(g.n_frames, T);
        CU_ASSERT(th >= 0.0f && th <= 1.0f);
        CU_ASSERT_EQUAL(sotto_encoder_threshold(e), th);
        if (g.clamped == 0) {
            reached++;
            CU_ASSERT(fabs(G - want) <= 1.0); /* within one group */
        } else {
            CU_ASSERT(g.clamped == 1 ? G == T && want > T : want < G);
        }
        /* the chosen threshold as a fixed one: the same groups */
        int32_t len0[512];
        CU_ASSERT_FATAL(G <= 512);
        memcpy(len0, g.lengths, sizeof(int32_t) * (size_t)G);
        CU_ASSERT_EQUAL(sotto_encoder_set_target(e, 0.0, 0.0), SOTTO_OK);
        CU_ASSERT_EQUAL(sotto_encoder_set_threshold(e, th), SOTTO_OK);
        CU_ASSERT_EQUAL(sotto_encoder_encode(e, x, n, &g), G);
        CU_ASSERT_EQUAL(memcmp(len0, g.lengths, sizeof(int32_t) * (size_t)G), 0);
    }
    CU_ASSERT(reached >= 6);

    /* below 12.5 / 8 groups/s: clamps to θ = 0, clamped −1, never fewer than ceil(T / 8) */
    CU_ASSERT_EQUAL(sotto_encoder_set_target(e, 1.0, 0.0), SOTTO_OK);
    CU_ASSERT_FATAL(sotto_encoder_encode(e, x, n, &g) > 0);
    CU_ASSERT_EQUAL(g.clamped, -1);
    CU_ASSERT_EQUAL(g.threshold, 0.0f);
    CU_ASSERT(g.n_groups >= (T + 7) / 8);
    /* 12.5 exactly: G(1) = T covers it within one group (T ≥ 12.5·d − 1) */
    CU_ASSERT_EQUAL(sotto_encoder_set_target(e, 12.5, 0.0), SOTTO_OK);
    CU_ASSERT_FATAL(sotto_encoder_encode(e, x, n, &g) > 0);
    CU_ASSERT(fabs(g.n_groups - 12.5 * d) <= 1.0);

    /* bitrate target: the payload within one group's bits per second */
    const int bpg = sotto_encoder_bits_per_group(e);
    CU_ASSERT_EQUAL(bpg, layout_bits(sotto_encoder_stages(e)));
    const double bps = 5.0 * bpg;
    CU_ASSERT_EQUAL(sotto_encoder_set_target(e, 0.0, bps), SOTTO_OK);
    CU_ASSERT_FATAL(sotto_encoder_encode(e, x, n, &g) > 0);
    CU_ASSERT_EQUAL(g.clamped, 0);
    CU_ASSERT(fabs(g.n_groups * bpg / d - bps) <= bpg / d);
    sotto_encoder_free(e);
}

static void test_encoder_golden_clip(void)
{
    sotto_gguf *io = tu_golden_open(GOLDEN);
    CU_ASSERT_PTR_NOT_NULL_FATAL(io);
    int64_t n;
    float *wave = tu_golden_f32(io, "wave", &n, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(wave);
    check_clip(wave, n, "golden clip");
    free(wave);
    sotto_gguf_close(io);
}

static void test_encoder_sample(void)
{
    sotto_audio_read_params rp = sotto_audio_default_read_params();
    rp.target_rate_hz = 16000;
    float *x = NULL;
    int64_t n = 0;
    sotto_status st;
    int rc = sotto_audio_read_file(tu_data_path(SPEECH), &rp, &x, &n, NULL, &st);
    if (rc) fprintf(stderr, "%s: %s\n", SPEECH, st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    check_clip(x, n, "arctic a0001");
    sotto_audio_free(x, rp.allocator);
}

static void test_bad_targets(void)
{
    sotto_encoder_params ep = sotto_encoder_default_params();
    sotto_encoder *e = NULL;
    sotto_status st;
    const double bad[][2] = {{-1.0, 0.0}, {NAN, 0.0}, {INFINITY, 0.0}, {12.6, 0.0},
                             {0.0, -5.0}, {0.0, NAN}, {3.0, 100.0},    {0.0, 1e9}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ep.target_groups_per_s = bad[i][0];
        ep.target_bits_per_s = bad[i][1];
        CU_ASSERT_EQUAL(sotto_encoder_create(model, &ep, &e, &st), SOTTO_ERR_INVALID_ARG);
        CU_ASSERT_PTR_NULL(e);
    }
    ep = sotto_encoder_default_params();
    ep.target_groups_per_s = 6.0;
    CU_ASSERT_EQUAL_FATAL(sotto_encoder_create(model, &ep, &e, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_encoder_frame_rate_hz(e), 12.5);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CU_ASSERT_EQUAL(sotto_encoder_set_target(e, bad[i][0], bad[i][1]), SOTTO_ERR_INVALID_ARG);
        CU_ASSERT(strlen(sotto_encoder_last_error(e)) > 0);
    }
    CU_ASSERT_EQUAL(sotto_encoder_set_target(NULL, 3.0, 0.0), SOTTO_ERR_INVALID_ARG);
    /* the target unchanged: still 6 groups/s */
    sotto_gguf *io = tu_golden_open(GOLDEN);
    CU_ASSERT_PTR_NOT_NULL_FATAL(io);
    int64_t n;
    float *wave = tu_golden_f32(io, "wave", &n, NULL);
    sotto_encoder_groups g;
    CU_ASSERT_FATAL(sotto_encoder_encode(e, wave, n, &g) > 0);
    CU_ASSERT(fabs(g.target_groups - 6.0 * (double)n / 16000.0) < 1e-9);
    /* less than one frame: no group, no choice, no error */
    CU_ASSERT_EQUAL(sotto_encoder_encode(e, wave, 100, &g), 0);
    free(wave);
    sotto_gguf_close(io);
    sotto_encoder_free(e);
}

/* sotto_codec_encode_file with a target: the info reports the achieved figures. */
static void test_file(void)
{
    char dir[512], in[600], out[600];
    CU_ASSERT_EQUAL_FATAL(tu_make_tmpdir("sotto_rate", dir, sizeof dir), 0);
    sotto_gguf *io = tu_golden_open(GOLDEN);
    CU_ASSERT_PTR_NOT_NULL_FATAL(io);
    int64_t n;
    float *wave = tu_golden_f32(io, "wave", &n, NULL);
    snprintf(in, sizeof in, "%s/in.wav", dir);
    snprintf(out, sizeof out, "%s/out.sotto", dir);
    const int64_t n_in = 1280 * 20 - 16; /* what 20 frames decode to */
    CU_ASSERT_FATAL(n >= n_in);
    CU_ASSERT_EQUAL_FATAL(
        sotto_audio_write_file(in, wave, n_in, 16000, SOTTO_AUDIO_WAV_PCM16, NULL), SOTTO_OK);
    sotto_codec_encode_params p = sotto_codec_default_encode_params();
    sotto_codec_encode_info info;
    sotto_status st;
    /* θ = 1: exactly 12.5 groups/s */
    p.encoder.threshold = 1.0f;
    CU_ASSERT_EQUAL_FATAL(sotto_codec_encode_file(model, in, out, &p, &info, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(info.groups, 20);
    CU_ASSERT_EQUAL(info.frames, 20);
    CU_ASSERT(fabs(info.groups_per_s - 12.5) < 0.01);
    CU_ASSERT_EQUAL(info.target_groups_per_s, 0.0);
    p.encoder.target_groups_per_s = 5.0;
    CU_ASSERT_EQUAL_FATAL(sotto_codec_encode_file(model, in, out, &p, &info, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(info.target_groups_per_s, 5.0);
    CU_ASSERT_EQUAL(info.clamped, 0);
    CU_ASSERT(fabs(info.groups_per_s - 5.0) <= 16000.0 / (double)n_in); /* one group */
    CU_ASSERT(info.threshold >= 0.0f && info.threshold < 1.0f);
    CU_ASSERT(fabs(info.payload_bps - info.groups_per_s * layout_bits(info.n_stages)) < 1e-6);
    CU_ASSERT(info.bitrate_bps > info.payload_bps);
    sotto_codec_file_info fi;
    CU_ASSERT_EQUAL(sotto_codec_probe_file(out, NULL, &fi, NULL), SOTTO_OK);
    CU_ASSERT_EQUAL(fi.groups, info.groups);
    CU_ASSERT_EQUAL(fi.samples, n_in);
    p.encoder.target_groups_per_s = 20.0;
    CU_ASSERT_EQUAL(sotto_codec_encode_file(model, in, out, &p, &info, &st), SOTTO_ERR_INVALID_ARG);
    TU_ASSERT_HAS(st.message, "frame rate");
    free(wave);
    sotto_gguf_close(io);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(void)
{
    static const tu_test pure[] = {
        {"merge count equals merge", test_merge_count},
        {"threshold pick", test_pick},
        {NULL, NULL},
    };
    int rc = tu_run_suite("flexicodec_rate", pure);
    sotto_status st;
    if (sotto_model_load_file(tu_data_path(MODEL), NULL, &model, &st) != SOTTO_OK) {
        fprintf(stderr, "%s: %s\n", MODEL, st.message);
        return 1;
    }
    static const tu_test enc[] = {
        {"targets on the golden clip", test_encoder_golden_clip},
        {"targets on a sample", test_encoder_sample},
        {"bad targets", test_bad_targets},
        {"file API", test_file},
        {NULL, NULL},
    };
    if (!rc) rc = tu_run_suite("flexicodec_rate_encoder", enc);
    sotto_model_free(model);
    return rc;
}
