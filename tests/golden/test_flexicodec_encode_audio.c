/*
 * FlexiCodec encode path from audio (fbank → SenseVoice → 4/3 downsampling → encode) against
 * the official flexicodec 0.1.2 FlexiCodec.forward(encode_only=True) with SenseVoice attached:
 * the small random model and fixtures of tools/golden/flexicodec_encode_audio.py (1.94 s of
 * real speech, thresholds 0.91 (the model's default), 1.0 and one between the clip's
 * similarities).
 *
 * Checks: the model file (decoder + encoder + SenseVoice in one GGUF) loads with an encoder,
 * decode-only files refuse one ("model has no encoder"); the intermediate values (fbank,
 * SenseVoice output, downsampled features) within fp32 tolerances; group lengths, FSQ and
 * RVQ indices identical through the public API (sotto_encoder_*) for every threshold
 * (near-ties of the reference — an FSQ value within 1e-4 of a rounding boundary, an RVQ
 * best/second-best gap below 1e-4 — are counted and printed; there are none in this
 * fixture, so any mismatch fails); encode → decode gives 1280·T − 16 samples; the file
 * round trip (sotto_codec_encode_file → sotto_codec_decode_file) returns exactly the input's
 * length, also from a 24 kHz file; argument errors.
 *
 * With SOTTO_FLEXICODEC_ENCODE_FULL=DIR (the output folder of `flexicodec_encode_audio.py
 * --full DIR`: the full released configuration with random weights and a random
 * SenseVoice-Small of the real size, 4 thresholds, 24 RVQ stages) the same checks run on
 * DIR's model and fixture, plus the similarities of the merging; there a mismatch is
 * accepted only where the reference is near a tie (an FSQ group with a value within 1e-4 of a
 * rounding boundary; an RVQ stage whose best/second-best gap is under 1e-4, the later stages
 * of that group then following another residual), and such mismatches are counted and
 * printed. The encode time is printed too. Without the variable it prints "not run".
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codecs/flexicodec/codec_internal.h"
#include "codecs/flexicodec/encode.h"
#include "sotto/sotto.h"
#include "sotto/sotto_audio.h"
#include "sotto/sotto_codec.h"
#include "testutil.h"

#define MODEL "flexicodec/encode-audio-small.gguf"
#define MODEL_DECODE_ONLY "flexicodec/decode-small.gguf"
#define MODEL_NO_SENSEVOICE "flexicodec/encode-small.gguf"
#define GOLDEN "flexicodec/encode-audio-small_golden.gguf"
#define TOL_FBANK 2e-3 /* log-mel, |values| up to ~20 */
#define TOL_SV 2e-3
#define TOL_TIE 1e-4

static sotto_model *load_model_path(const char *path, int threads)
{
    sotto_model_params mp = sotto_model_default_params();
    mp.n_threads = threads;
    sotto_model *m = NULL;
    sotto_status st;
    int rc = sotto_model_load_file(path, &mp, &m, &st);
    if (rc) fprintf(stderr, "%s: %s\n", path, st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    return m;
}

static sotto_model *load_model(const char *rel, int threads)
{
    return load_model_path(tu_data_path(rel), threads);
}

/* The full-config files (absolute paths), or NULL for the small fixtures. */
typedef struct full_paths {
    char model[1024], golden[1024];
} full_paths;

static sotto_gguf *open_golden(const full_paths *fp)
{
    if (!fp) return tu_golden_open(GOLDEN);
    sotto_gguf *g = NULL;
    sotto_status st;
    if (sotto_gguf_open_file(fp->golden, 1, NULL, &g, &st) != SOTTO_OK)
        fprintf(stderr, "cannot open fixture %s: %s\n", fp->golden, st.message);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    return g;
}

static float *floats(const sotto_gguf *g, const char *name, int64_t *n, int64_t shape[4])
{
    float *p = tu_golden_f32(g, name, n, shape);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    return p;
}

static const int32_t *ints(const sotto_gguf *g, const char *name, int64_t *n)
{
    const sotto_gguf_tensor *t = sotto_gguf_find_tensor(g, name);
    if (!t) fprintf(stderr, "fixture has no tensor '%s'\n", name);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL_FATAL(t->dtype, SOTTO_DTYPE_I32);
    int64_t k = 1;
    for (int i = 0; i < t->n_dims; i++)
        k *= t->shape[i];
    *n = k;
    return t->data;
}

static void test_no_encoder(void)
{
    const char *files[2] = {MODEL_DECODE_ONLY, MODEL_NO_SENSEVOICE};
    for (int i = 0; i < 2; i++) {
        sotto_model *m = load_model(files[i], 1);
        sotto_encoder *enc = (sotto_encoder *)1;
        sotto_status st;
        CU_ASSERT_EQUAL(sotto_encoder_create(m, NULL, &enc, &st), SOTTO_ERR_UNSUPPORTED);
        CU_ASSERT_PTR_NULL(enc);
        TU_ASSERT_HAS(st.message, "model has no encoder");
        if (i == 1) TU_ASSERT_HAS(st.message, "SenseVoice");
        CU_ASSERT_EQUAL(sotto_codec_encode_file(m, "x.wav", "y.sotto", NULL, NULL, &st),
                        SOTTO_ERR_UNSUPPORTED);
        TU_ASSERT_HAS(st.message, "model has no encoder");
        sotto_model_free(m);
    }
}

static void test_downsample(void)
{
    /* the rule int(T / 1.33333) */
    const int64_t T[] = {0, 1, 2, 3, 4, 5, 31, 32, 33, 100, 3001};
    const int64_t want[] = {0, 0, 1, 2, 3, 3, 23, 24, 24, 75, 2250};
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++)
        CU_ASSERT_EQUAL(flexicodec_downsample_frames(1.33333, T[i]), want[i]);
    CU_ASSERT_EQUAL(flexicodec_downsample_frames(2.0, 7), 3);
    CU_ASSERT_EQUAL(flexicodec_downsample_frames(1.0, 7), 7);
    CU_ASSERT(flexicodec_downsample_frames(0.0, 7) < 0);
    /* avg_pool1d for an integer factor */
    const float x[5][2] = {{1, 2}, {3, 4}, {5, 6}, {7, 8}, {9, 10}};
    float y[4] = {0};
    CU_ASSERT_EQUAL(flexicodec_downsample(2.0, &x[0][0], 5, 2, y), 2);
    CU_ASSERT_DOUBLE_EQUAL(y[0], 2.0, 0);
    CU_ASSERT_DOUBLE_EQUAL(y[3], 7.0, 0); /* (6 + 8) / 2 */

    /* the official F.interpolate on the fixture's SenseVoice output */
    sotto_gguf *io = tu_golden_open(GOLDEN);
    CU_ASSERT_PTR_NOT_NULL_FATAL(io);
    int64_t ns, nf, sh[4], shf[4];
    float *sv = floats(io, "sv_out", &ns, sh);
    float *want_f = floats(io, "features", &nf, shf);
    CU_ASSERT_EQUAL_FATAL(sh[1], shf[1]);
    float *got = malloc(sizeof(float) * (size_t)nf);
    CU_ASSERT_EQUAL_FATAL(flexicodec_downsample(1.33333, sv, sh[0], (int)sh[1], got), shf[0]);
    /* same float operations as torch: identical, up to one rounding */
    TU_ASSERT_CLOSE("4/3 downsampling", got, want_f, nf, 1e-6, -1);
    free(got);
    free(sv);
    free(want_f);
    sotto_gguf_close(io);
}

/* Full config: the SDK's downsampling of its own SenseVoice output against the reference
 * features, and the merge similarities computed on those against the reference's. */
static void full_features(const sotto_gguf *io, const float *svo, int64_t tl, int C,
                          const flexicodec_encoder_hparams *hp)
{
    int64_t nf, shf[4], ns;
    float *want = floats(io, "features", &nf, shf);
    float *got = malloc(sizeof(float) * (size_t)nf);
    CU_ASSERT_EQUAL_FATAL(flexicodec_downsample(1.33333, svo, tl, C, got), shf[0]);
    TU_ASSERT_CLOSE("features (SDK SenseVoice output, downsampled)", got, want, nf, TOL_SV, -1);
    float *sim_want = floats(io, "sim_1", &ns, NULL); /* threshold 1.0: all T frames */
    const int64_t T = ns + 1;
    CU_ASSERT_FATAL(T <= shf[0]);
    float *sim = malloc(sizeof(float) * (size_t)ns);
    int32_t *len = malloc(sizeof(int32_t) * (size_t)T);
    flexicodec_merge(got, T, C, 1.0f, hp->merge_eps, hp->max_tokens_per_group, len, sim);
    TU_ASSERT_CLOSE("merge similarities", sim, sim_want, ns, 1e-5, -1);
    free(len);
    free(sim);
    free(sim_want);
    free(got);
    free(want);
}

/* fbank, SenseVoice output and features through the internal functions of the chain; for
 * the full config also the 4/3 downsampling of the SDK's own SenseVoice output and the
 * similarities of the merging. */
static void check_intermediates(const full_paths *full)
{
    sotto_model *m = full ? load_model_path(full->model, 1) : load_model(MODEL, 1);
    const flexicodec_model *fm = flexicodec_model_get(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fm);
    CU_ASSERT_TRUE_FATAL(fm->has_encoder);
    const int width = full ? 512 : 64;
    CU_ASSERT_EQUAL(fm->sv.cfg.dim, width);
    CU_ASSERT_EQUAL(fm->enc.hp.ssl_dim, width);
    CU_ASSERT_DOUBLE_EQUAL(fm->enc.hp.downsample_factor, 1.33333, 1e-12);
    sotto_gguf *io = open_golden(full);
    int64_t n, nfb, nsv, shfb[4], shsv[4];
    float *wave = floats(io, "wave", &n, NULL);
    float *fb_want = floats(io, "fbank", &nfb, shfb);
    float *sv_want = floats(io, "sv_out", &nsv, shsv);
    sotto_fbank_params fp = flexicodec_fbank_params(80);
    sotto_fbank *fb = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_fbank_create(&fp, NULL, &fb, NULL), SOTTO_OK);
    float *fbank = malloc(sizeof(float) * (size_t)nfb);
    CU_ASSERT_EQUAL_FATAL(sotto_fbank_compute(fb, wave, n, fbank, shfb[0]), shfb[0]);
    TU_ASSERT_CLOSE("fbank (dither 0)", fbank, fb_want, nfb, TOL_FBANK, -1);
    const int64_t tl = sensevoice_lfr_frames(shfb[0], 6);
    CU_ASSERT_EQUAL_FATAL(tl, shsv[0]);
    float *lfr = malloc(sizeof(float) * (size_t)(tl * 560));
    float *svo = malloc(sizeof(float) * (size_t)nsv);
    float *scratch = malloc(sizeof(float) * sensevoice_scratch_size(&fm->sv, tl));
    sotto_cpu cpu;
    sotto_cpu_init(&cpu, ~0u, NULL);
    CU_ASSERT_EQUAL_FATAL(sensevoice_lfr_cmvn(&fm->sv, fbank, shfb[0], lfr), tl);
    CU_ASSERT_EQUAL_FATAL(sensevoice_encode(&cpu, &fm->sv, NULL, lfr, tl, svo, scratch), SOTTO_OK);
    TU_ASSERT_CLOSE("SenseVoice output", svo, sv_want, nsv, TOL_SV, -1);
    CU_ASSERT_EQUAL(flexicodec_encode_audio_frames(&fm->enc, &fm->sv, fb, n), 24);
    if (full) full_features(io, svo, tl, width, &fm->enc.hp);
    free(lfr);
    free(svo);
    free(scratch);
    free(fbank);
    sotto_fbank_destroy(fb);
    free(wave);
    free(fb_want);
    free(sv_want);
    sotto_gguf_close(io);
    sotto_model_free(m);
}

static void test_intermediates(void)
{
    check_intermediates(NULL);
}

static int near_ties(const sotto_gguf *io, int k, int64_t G, int n_q)
{
    char name[64];
    int64_t nb, nm, sh[4];
    snprintf(name, sizeof name, "fsq_bound_%d", k);
    float *bound = floats(io, name, &nb, sh);
    snprintf(name, sizeof name, "rvq_margin_%d", k);
    float *margin = floats(io, name, &nm, NULL);
    int ties = 0;
    for (int64_t i = 0; i < nb; i++) {
        const double f = bound[i] - floor(bound[i]);
        if (fabs(f - 0.5) < TOL_TIE) {
            fprintf(stderr, "  near-tie: FSQ value %g (group %lld)\n", bound[i],
                    (long long)(i / sh[1]));
            ties++;
        }
    }
    /* margins are [G][n_q] */
    for (int64_t i = 0; i < nm && i < (int64_t)n_q * G; i++)
        if (margin[i] < TOL_TIE) {
            fprintf(stderr, "  near-tie: RVQ margin %g (group %lld, stage %lld)\n", margin[i],
                    (long long)(i / n_q), (long long)(i % n_q));
            ties++;
        }
    free(bound);
    free(margin);
    return ties;
}

/* Reference near-ties of group i: an FSQ value within TOL_TIE of a rounding boundary. */
static int fsq_tie(const float *bound, int64_t i, int64_t levels)
{
    for (int64_t d = 0; d < levels; d++) {
        const double f = bound[i * levels + d] - floor(bound[i * levels + d]);
        if (fabs(f - 0.5) < TOL_TIE) return 1;
    }
    return 0;
}

static void check_parity(const full_paths *fp, int threads)
{
    sotto_model *m = fp ? load_model_path(fp->model, threads) : load_model(MODEL, threads);
    sotto_gguf *io = open_golden(fp);
    int64_t n;
    float *wave = floats(io, "wave", &n, NULL);
    int32_t nth = 0;
    CU_ASSERT_EQUAL_FATAL(sotto_gguf_get_i32(io, "flexicodec.n_thresholds", &nth, NULL), SOTTO_OK);
    sotto_encoder *enc = NULL;
    sotto_status st;
    sotto_encoder_params ep = sotto_encoder_default_params();
    ep.max_seconds = 2.0;
    CU_ASSERT_EQUAL_FATAL(sotto_encoder_create(m, &ep, &enc, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_encoder_stages(enc), fp ? 24 : 4);
    sotto_encoder_groups def;
    CU_ASSERT_TRUE_FATAL(sotto_encoder_encode(enc, wave, n, &def) > 0);
    int ties = 0, tie_miss = 0;
    for (int k = 0; k < nth; k++) {
        char key[64];
        double theta = 0;
        snprintf(key, sizeof key, "flexicodec.threshold.%d", k);
        CU_ASSERT_EQUAL_FATAL(sotto_gguf_get_f64(io, key, &theta, NULL), SOTTO_OK);
        int64_t nl, nf, nr;
        snprintf(key, sizeof key, "lengths_%d", k);
        const int32_t *len = ints(io, key, &nl);
        snprintf(key, sizeof key, "fsq_%d", k);
        const int32_t *fsq = ints(io, key, &nf);
        snprintf(key, sizeof key, "rvq_%d", k);
        const int32_t *rvq = ints(io, key, &nr); /* [G][n_q] */
        CU_ASSERT_EQUAL_FATAL(nf, nl);
        const int n_q = (int)(nr / nl);
        ties += near_ties(io, k, nl, n_q);
        int64_t nb, nm, shb[4];
        snprintf(key, sizeof key, "fsq_bound_%d", k);
        float *bound = floats(io, key, &nb, shb);
        snprintf(key, sizeof key, "rvq_margin_%d", k);
        float *margin = floats(io, key, &nm, NULL); /* [G][n_q] */
        CU_ASSERT_EQUAL_FATAL(nm, nr);
        CU_ASSERT_EQUAL(sotto_encoder_set_threshold(enc, (float)theta), SOTTO_OK);
        sotto_encoder_groups g;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        const int G = sotto_encoder_encode(enc, wave, n, &g);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        const double secs =
            (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        CU_ASSERT_EQUAL(G, nl);
        CU_ASSERT_EQUAL(g.n_stages, n_q);
        CU_ASSERT_EQUAL(g.n_frames, 24);
        /* A mismatch where the reference is near a tie is counted apart (tie_miss); after
         * one, the rest of that group follows another residual and is not compared. */
        int bad_len = 0, bad_fsq = 0, bad_rvq = 0, miss_k = 0;
        for (int i = 0; i < G && i < nl; i++) {
            bad_len += g.lengths[i] != len[i];
            if (g.fsq[i] != fsq[i]) {
                if (fsq_tie(bound, i, shb[1])) {
                    fprintf(stderr, "  threshold %.6f group %d: FSQ %d vs %d at a near-tie\n",
                            theta, i, g.fsq[i], fsq[i]);
                    miss_k++;
                    continue;
                }
                bad_fsq++;
            }
            for (int q = 0; q < n_q; q++) {
                const int64_t j = (int64_t)i * n_q + q;
                if (g.rvq[j] == rvq[j]) continue;
                if (margin[j] < TOL_TIE) {
                    fprintf(stderr,
                            "  threshold %.6f group %d stage %d: RVQ %d vs %d at a "
                            "near-tie (reference gap %.3g)\n",
                            theta, i, q, g.rvq[j], rvq[j], margin[j]);
                    miss_k++;
                    break;
                }
                bad_rvq++;
                fprintf(stderr,
                        "  threshold %.6f group %d stage %d: RVQ %d vs %d (reference "
                        "gap %.3g)\n",
                        theta, i, q, g.rvq[j], rvq[j], margin[j]);
            }
        }
        tie_miss += miss_k;
        printf("  threshold %.6f (%d thread%s): %d groups, lengths %d/%lld, FSQ %d/%lld, "
               "RVQ %d/%lld differ",
               theta, threads, threads > 1 ? "s" : "", G, bad_len, (long long)nl, bad_fsq,
               (long long)nl, bad_rvq, (long long)nr);
        if (fp)
            printf(", %d at reference near-ties; encode %.3f s (%.1fx real time)", miss_k, secs,
                   ((double)n / 16000.0) / secs);
        printf("\n");
        CU_ASSERT_EQUAL(bad_len, 0);
        CU_ASSERT_EQUAL(bad_fsq, 0);
        CU_ASSERT_EQUAL(bad_rvq, 0);
        if (k == 0) { /* the model's default threshold (0.91) is what create resolved */
            CU_ASSERT_EQUAL(def.n_groups, G);
        }
        free(bound);
        free(margin);
    }
    printf("  near-ties in the reference: %d; mismatches at them: %d\n", ties, tie_miss);
    if (!fp) CU_ASSERT_EQUAL(ties, 0);
    sotto_encoder_free(enc);
    free(wave);
    sotto_gguf_close(io);
    sotto_model_free(m);
}

static void test_parity(void)
{
    check_parity(NULL, 1);
}

static void test_parity_threads(void)
{
    check_parity(NULL, 2);
}

/* The full released configuration (random weights), when its folder is given. */
static void test_full_config(void)
{
    const char *dir = getenv("SOTTO_FLEXICODEC_ENCODE_FULL");
    if (!dir || !*dir) {
        printf("  SOTTO_FLEXICODEC_ENCODE_FULL not set: full-config check not run\n");
        return;
    }
    full_paths fp;
    snprintf(fp.model, sizeof fp.model, "%s/encode-audio-full.gguf", dir);
    snprintf(fp.golden, sizeof fp.golden, "%s/encode-audio-full_golden.gguf", dir);
    check_intermediates(&fp);
    check_parity(&fp, 1);
    check_parity(&fp, 2);
}

/* Fewer stages = the first stages; caller buffers; the decoder takes the groups. */
static void test_stages_and_decode(void)
{
    sotto_model *m = load_model(MODEL, 1);
    sotto_gguf *io = tu_golden_open(GOLDEN);
    int64_t n;
    float *wave = floats(io, "wave", &n, NULL);
    sotto_encoder_params ep = sotto_encoder_default_params();
    ep.threshold = 0.470595f;
    sotto_encoder *e4 = NULL, *e2 = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_encoder_create(m, &ep, &e4, NULL), SOTTO_OK);
    ep.n_stages = 2;
    CU_ASSERT_EQUAL_FATAL(sotto_encoder_create(m, &ep, &e2, NULL), SOTTO_OK);
    const int cap = sotto_encoder_frames_for(e4, n);
    CU_ASSERT_EQUAL(cap, 24);
    int32_t len[24], fsq[24], rvq[24 * 4], len2[24], fsq2[24], rvq2[24 * 2];
    const int G = sotto_encoder_encode_to(e4, wave, n, len, fsq, rvq, cap);
    CU_ASSERT_TRUE_FATAL(G > 0 && G < 24);
    CU_ASSERT_EQUAL(sotto_encoder_encode_to(e2, wave, n, len2, fsq2, rvq2, cap), G);
    CU_ASSERT_EQUAL(sotto_encoder_encode_to(e4, wave, n, len, fsq, rvq, G - 1),
                    SOTTO_ERR_BUFFER_TOO_SMALL);
    for (int i = 0; i < G; i++) {
        CU_ASSERT_EQUAL(len[i], len2[i]);
        CU_ASSERT_EQUAL(fsq[i], fsq2[i]);
        CU_ASSERT_EQUAL(rvq[i * 4], rvq2[i * 2]);
        CU_ASSERT_EQUAL(rvq[i * 4 + 1], rvq2[i * 2 + 1]);
    }
    sotto_decoder *dec = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_decoder_create(m, NULL, &dec, NULL), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_decoder_push(dec, len, fsq, rvq, G, 4), SOTTO_OK);
    float *out = malloc(sizeof(float) * sotto_decoder_max_output_samples(dec));
    CU_ASSERT_EQUAL(sotto_decoder_flush(dec, out, sotto_decoder_max_output_samples(dec)),
                    1280 * 24 - 16);
    free(out);
    sotto_decoder_free(dec);
    sotto_encoder_free(e4);
    sotto_encoder_free(e2);
    free(wave);
    sotto_gguf_close(io);
    sotto_model_free(m);
}

static void file_round_trip(sotto_model *m, const char *dir, const float *x, int64_t n, int rate)
{
    char wav[512], out[512];
    snprintf(wav, sizeof wav, "%s/in_%d_%lld.wav", dir, rate, (long long)n);
    snprintf(out, sizeof out, "%s/out_%d_%lld.sotto", dir, rate, (long long)n);
    sotto_status st;
    int rc = sotto_audio_write_file(wav, x, n, rate, SOTTO_AUDIO_WAV_FLOAT, &st);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    sotto_codec_encode_info info;
    rc = sotto_codec_encode_file(m, wav, out, NULL, &info, &st);
    if (rc) fprintf(stderr, "encode_file: %s\n", st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    const int64_t want = rate == 16000 ? n : info.samples;
    CU_ASSERT_EQUAL(info.samples, want);
    if (rate != 16000) CU_ASSERT(llabs(info.samples - n * 16000 / rate) <= 1);
    CU_ASSERT_EQUAL(info.input_rate_hz, rate);
    CU_ASSERT(info.groups > 0 && info.groups <= info.frames);
    CU_ASSERT(info.file_bytes > 0 && info.bitrate_bps > 0);
    CU_ASSERT(fabs(info.groups_per_s - (double)info.groups / info.duration_s) < 1e-9);
    float *y = NULL;
    int64_t ny = 0;
    sotto_codec_file_info fi;
    rc = sotto_codec_decode_file(m, out, NULL, &y, &ny, &fi, &st);
    if (rc) fprintf(stderr, "decode_file: %s\n", st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    CU_ASSERT_EQUAL(ny, want);
    CU_ASSERT_EQUAL(fi.groups, info.groups);
    CU_ASSERT_EQUAL(fi.input_rate_hz, rate);
    CU_ASSERT_EQUAL(fi.n_problems, 0);
    printf("  file round trip at %d Hz: %lld samples in, %lld out, %lld groups, %lld bytes\n", rate,
           (long long)n, (long long)ny, (long long)info.groups, (long long)info.file_bytes);
    free(y);
}

static void test_file_round_trip(void)
{
    char dir[512];
    CU_ASSERT_EQUAL_FATAL(tu_make_tmpdir("encode_audio", dir, sizeof dir), 0);
    sotto_model *m = load_model(MODEL, 1);
    sotto_gguf *io = tu_golden_open(GOLDEN);
    int64_t n;
    float *wave = floats(io, "wave", &n, NULL);
    /* the whole clip, odd lengths (the groups must cover them after padding), 24 kHz */
    const int64_t lens[] = {n, 16001, 1281, 300};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        file_round_trip(m, dir, wave, lens[i], 16000);
    file_round_trip(m, dir, wave, n, 24000);
    /* errors: missing input, bad threshold, too long */
    sotto_status st;
    char path[600];
    snprintf(path, sizeof path, "%s/none.wav", dir);
    CU_ASSERT_EQUAL(sotto_codec_encode_file(m, path, "x.sotto", NULL, NULL, &st), SOTTO_ERR_IO);
    sotto_codec_encode_params p = sotto_codec_default_encode_params();
    p.encoder.threshold = 1.5f;
    snprintf(path, sizeof path, "%s/in_16000_%lld.wav", dir, (long long)n);
    char out[600];
    snprintf(out, sizeof out, "%s/bad.sotto", dir);
    CU_ASSERT_EQUAL(sotto_codec_encode_file(m, path, out, &p, NULL, &st), SOTTO_ERR_INVALID_ARG);
    TU_ASSERT_HAS(st.message, "threshold");
    p = sotto_codec_default_encode_params();
    p.encoder.max_seconds = 0.01;
    CU_ASSERT_EQUAL(sotto_codec_encode_file(m, path, out, &p, NULL, &st),
                    SOTTO_ERR_BUFFER_TOO_SMALL);
    free(wave);
    sotto_gguf_close(io);
    sotto_model_free(m);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

static void test_errors(void)
{
    sotto_model *m = load_model(MODEL, 1);
    sotto_encoder *e = NULL;
    sotto_status st;
    sotto_encoder_params ep = sotto_encoder_default_params();
    ep.threshold = 1.01f;
    CU_ASSERT_EQUAL(sotto_encoder_create(m, &ep, &e, &st), SOTTO_ERR_INVALID_ARG);
    ep.threshold = NAN;
    CU_ASSERT_EQUAL(sotto_encoder_create(m, &ep, &e, &st), SOTTO_ERR_INVALID_ARG);
    ep = sotto_encoder_default_params();
    ep.n_stages = 5;
    CU_ASSERT_EQUAL(sotto_encoder_create(m, &ep, &e, &st), SOTTO_ERR_INVALID_ARG);
    ep = sotto_encoder_default_params();
    ep.max_seconds = 0;
    CU_ASSERT_EQUAL(sotto_encoder_create(m, &ep, &e, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_encoder_create(NULL, NULL, &e, &st), SOTTO_ERR_INVALID_ARG);
    ep.max_seconds = 0.5;
    CU_ASSERT_EQUAL_FATAL(sotto_encoder_create(m, &ep, &e, &st), SOTTO_OK);
    CU_ASSERT_DOUBLE_EQUAL(sotto_encoder_threshold(e), 0.91, 1e-6);
    CU_ASSERT_EQUAL(sotto_encoder_set_threshold(e, 2.0f), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_DOUBLE_EQUAL(sotto_encoder_threshold(e), 0.91, 1e-6);
    TU_ASSERT_HAS(sotto_encoder_last_error(e), "threshold");
    CU_ASSERT_EQUAL(sotto_encoder_set_threshold(e, 1.0f), SOTTO_OK);
    CU_ASSERT_DOUBLE_EQUAL(sotto_encoder_threshold(e), 1.0, 0);
    float x[9000];
    for (int i = 0; i < 9000; i++)
        x[i] = 0.1f * sinf(0.05f * (float)i);
    sotto_encoder_groups g;
    CU_ASSERT_EQUAL(sotto_encoder_encode(e, x, 9000, &g), SOTTO_ERR_BUFFER_TOO_SMALL);
    CU_ASSERT_EQUAL(g.n_groups, 0);
    CU_ASSERT_EQUAL(sotto_encoder_encode(e, x, -1, &g), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_encoder_encode(e, NULL, 10, &g), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_encoder_encode(e, x, 0, &g), 0);
    CU_ASSERT_EQUAL(sotto_encoder_encode(e, x, 300, &g), 0); /* under one fbank window */
    const int G = sotto_encoder_encode(e, x, 8000, &g);
    CU_ASSERT_EQUAL(G, sotto_encoder_frames_for(e, 8000)); /* threshold 1: one per frame */
    x[100] = NAN;
    CU_ASSERT_EQUAL(sotto_encoder_encode(e, x, 8000, &g), SOTTO_ERR_BAD_AUDIO);
    sotto_encoder_free(e);
    sotto_encoder_free(NULL);
    sotto_model_free(m);
}

int main(void)
{
    static const tu_test tests[] = {
        {"no encoder", test_no_encoder},
        {"downsample", test_downsample},
        {"intermediates", test_intermediates},
        {"parity", test_parity},
        {"parity, 2 threads", test_parity_threads},
        {"stages and decode", test_stages_and_decode},
        {"file round trip", test_file_round_trip},
        {"errors", test_errors},
        {"full config", test_full_config},
        {NULL, NULL},
    };
    return tu_run_suite("flexicodec_encode_audio", tests);
}
