/*
 * `sotto encode` end to end with the small FlexiCodec model that holds the encoder and
 * SenseVoice (tests/data/flexicodec/encode-audio-small.gguf): a 16 kHz WAV of real speech
 * and a 24 kHz copy encode, `sotto decode` gives back exactly the input's length at 16 kHz;
 * the summary (text and --json) carries duration, groups, frame rate, bitrate and RTF; the
 * codes equal the public API's (sotto_encoder_encode on the same samples, through
 * sotto_codec_probe_file's group count); --threshold and --quantizers change the stream as
 * they should; a decode-only model, a missing input and bad options give the documented exit
 * codes and messages. Skips (77) when the apps are not built.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sotto/sotto.h"
#include "sotto/sotto_audio.h"
#include "sotto/sotto_codec.h"
#include "testutil.h"

#ifdef SOTTO_CLI_PATH
#define MODEL "flexicodec/encode-audio-small.gguf"
#define MODEL_DECODE_ONLY "flexicodec/decode-small.gguf"
#define GOLDEN "flexicodec/encode-audio-small_golden.gguf"

static char tmpdir[512], model_path[600], wav16[600], wav24[600];
static int64_t n16, n24;

static void run(const char *args, tu_cli_result *r)
{
    tu_cli_run(SOTTO_CLI_PATH, tmpdir, args, r);
}

static void setup_audio(void)
{
    sotto_gguf *io = tu_golden_open(GOLDEN);
    CU_ASSERT_PTR_NOT_NULL_FATAL(io);
    int64_t n;
    float *wave = tu_golden_f32(io, "wave", &n, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(wave);
    sotto_status st;
    snprintf(wav16, sizeof wav16, "%s/speech16.wav", tmpdir);
    snprintf(wav24, sizeof wav24, "%s/speech24.wav", tmpdir);
    n16 = n - 777; /* not a multiple of anything */
    CU_ASSERT_EQUAL_FATAL(
        sotto_audio_write_file(wav16, wave, n16, 16000, SOTTO_AUDIO_WAV_PCM16, &st), SOTTO_OK);
    n24 = 30000;
    CU_ASSERT_EQUAL_FATAL(
        sotto_audio_write_file(wav24, wave, n24, 24000, SOTTO_AUDIO_WAV_PCM16, &st), SOTTO_OK);
    free(wave);
    sotto_gguf_close(io);
}

static int64_t wav_len(const char *path)
{
    float *x = NULL;
    int64_t n = -1;
    sotto_audio_info info;
    sotto_status st;
    int rc = sotto_audio_read_file(path, NULL, &x, &n, &info, &st);
    if (rc) fprintf(stderr, "%s: %s\n", path, st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    CU_ASSERT_EQUAL(info.sample_rate_hz, 16000);
    sotto_audio_free(x, NULL);
    return n;
}

/* groups in a .sotto file */
static int64_t groups_of(const char *path)
{
    sotto_codec_file_info fi;
    sotto_status st;
    CU_ASSERT_EQUAL_FATAL(sotto_codec_probe_file(path, NULL, &fi, &st), SOTTO_OK);
    return fi.groups;
}

static void test_encode_decode(void)
{
    tu_cli_result *r = malloc(sizeof *r);
    char out[600], dec[600], args[2048], want[128];
    snprintf(out, sizeof out, "%s/a.sotto", tmpdir);
    snprintf(dec, sizeof dec, "%s/a.wav", tmpdir);

    snprintf(args, sizeof args, "encode '%s' -o '%s' -m '%s'", wav16, out, model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    TU_ASSERT_HAS(r->err, "sotto encode:");
    TU_ASSERT_HAS(r->err, "groups/s");
    TU_ASSERT_HAS(r->err, "bit/s");
    TU_ASSERT_HAS(r->err, "RTF");
    TU_ASSERT_HAS(r->err, "threshold 0.910");
    snprintf(args, sizeof args, "decode '%s' -o '%s' -m '%s'", out, dec, model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    CU_ASSERT_EQUAL(wav_len(dec), n16); /* exactly the input's length */

    /* --json, merging threshold, fewer quantizers, 2 threads, on the CPU whatever exists */
    snprintf(args, sizeof args,
             "encode '%s' -o '%s' -m '%s' --threshold 0.45 --quantizers 2 --json -t 2 --cpu", wav16,
             out, model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    TU_ASSERT_HAS(r->out, "\"backend\":\"cpu\"");
    snprintf(want, sizeof want, "\"samples\":%lld", (long long)n16);
    TU_ASSERT_HAS(r->out, want);
    TU_ASSERT_HAS(r->out, "\"quantizers\":2");
    TU_ASSERT_HAS(r->out, "\"threshold\":0.4500");
    TU_ASSERT_HAS(r->out, "\"frame_rate_hz\":");
    TU_ASSERT_HAS(r->out, "\"bitrate_bps\":");
    TU_ASSERT_HAS(r->out, "\"rtf\":");
    TU_ASSERT_HAS(r->out, "\"seconds\":1.8");
    const int64_t g_merged = groups_of(out);
    sotto_codec_file_info fi;
    CU_ASSERT_EQUAL(sotto_codec_probe_file(out, NULL, &fi, NULL), SOTTO_OK);
    CU_ASSERT_EQUAL(fi.max_stages, 2);
    snprintf(want, sizeof want, "\"groups\":%lld", (long long)g_merged);
    TU_ASSERT_HAS(r->out, want);
    snprintf(args, sizeof args, "decode '%s' -o '%s' -m '%s' -q", out, dec, model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    CU_ASSERT_EQUAL(wav_len(dec), n16);

    /* threshold 1: no merging, one group per frame: more groups than at 0.45 */
    snprintf(args, sizeof args, "encode '%s' -o '%s' -m '%s' --threshold 1 -q", wav16, out,
             model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    CU_ASSERT_EQUAL(r->err[0], '\0'); /* -q: nothing printed */
    const int64_t g_all = groups_of(out);
    CU_ASSERT(g_all > g_merged);
    CU_ASSERT(g_all >= (n16 + 1279) / 1280);

    /* 24 kHz input: resampled once, decodes to the 16 kHz length */
    snprintf(args, sizeof args, "encode '%s' -o '%s' -m '%s' --json", wav24, out, model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    TU_ASSERT_HAS(r->out, "\"input_rate_hz\":24000");
    TU_ASSERT_HAS(r->out, "\"samples\":20000");
    snprintf(args, sizeof args, "decode '%s' -o '%s' -m '%s' -q", out, dec, model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    CU_ASSERT_EQUAL(wav_len(dec), n24 * 2 / 3);
    free(r);
}

/* The CLI's codes are the API's. */
static void test_same_as_api(void)
{
    tu_cli_result *r = malloc(sizeof *r);
    char out[600], args[2048];
    snprintf(out, sizeof out, "%s/b.sotto", tmpdir);
    snprintf(args, sizeof args, "encode '%s' -o '%s' -m '%s' -q --threshold 0.45", wav16, out,
             model_path);
    run(args, r);
    CU_ASSERT_EQUAL_FATAL(r->code, 0);
    sotto_model *m = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_model_load_file(model_path, NULL, &m, NULL), SOTTO_OK);
    sotto_codec_encode_params p = sotto_codec_default_encode_params();
    p.encoder.threshold = 0.45f;
    char out2[600];
    snprintf(out2, sizeof out2, "%s/b2.sotto", tmpdir);
    sotto_codec_encode_info info;
    CU_ASSERT_EQUAL_FATAL(sotto_codec_encode_file(m, wav16, out2, &p, &info, NULL), SOTTO_OK);
    /* byte-identical files */
    CU_ASSERT_TRUE(tu_files_equal(out, out2));
    CU_ASSERT_EQUAL(groups_of(out), info.groups);
    sotto_model_free(m);
    free(r);
}

/* --segment: a file longer than a segment is cut into whole-frame segments (0.96 s for
 * --segment 1: 12 frames, the longest ≤ 12.5 whose samples give exactly that many SenseVoice
 * frames), decodes to exactly its length (also when it is a multiple of the segment), and a
 * file of one segment or less gives the same bytes as --segment 0 */
static void test_segments(void)
{
    tu_cli_result *r = malloc(sizeof *r);
    char out[600], out0[600], args[2048], dec[600], lw[600], mw[600];
    /* 3 copies of the clip: 5.67 s */
    float *x = NULL;
    int64_t n = 0;
    CU_ASSERT_EQUAL_FATAL(sotto_audio_read_file(wav16, NULL, &x, &n, NULL, NULL), SOTTO_OK);
    float *y = malloc(sizeof(float) * (size_t)(3 * n));
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    for (int k = 0; k < 3; k++)
        memcpy(y + k * n, x, sizeof(float) * (size_t)n);
    snprintf(lw, sizeof lw, "%s/long.wav", tmpdir);
    snprintf(mw, sizeof mw, "%s/multiple.wav", tmpdir);
    CU_ASSERT_EQUAL_FATAL(sotto_audio_write_file(lw, y, 3 * n, 16000, SOTTO_AUDIO_WAV_PCM16, NULL),
                          SOTTO_OK);
    CU_ASSERT_EQUAL_FATAL(
        sotto_audio_write_file(mw, y, 2 * 15360, 16000, SOTTO_AUDIO_WAV_PCM16, NULL), SOTTO_OK);
    sotto_audio_free(x, NULL);
    free(y);

    snprintf(out, sizeof out, "%s/long.sotto", tmpdir);
    snprintf(dec, sizeof dec, "%s/long_dec.wav", tmpdir);
    snprintf(args, sizeof args, "encode '%s' -o '%s' -m '%s' --segment 1 --rate 6 --json", lw, out,
             model_path);
    run(args, r);
    if (r->code) fprintf(stderr, "%s\n", r->err);
    CU_ASSERT_EQUAL_FATAL(r->code, 0);
    const int64_t want_segments = (3 * n + 15359) / 15360;
    char pat[64];
    snprintf(pat, sizeof pat, "\"segments\":%lld,", (long long)want_segments);
    TU_ASSERT_HAS(r->out, pat);
    TU_ASSERT_HAS(r->out, "\"segment_seconds\":0.96,");
    /* rate control per segment: each within half a group, so the file within one per segment */
    const double want_groups = 6.0 * (double)(3 * n) / 16000.0;
    CU_ASSERT(fabs((double)groups_of(out) - want_groups) <= (double)want_segments);
    snprintf(args, sizeof args, "decode '%s' -o '%s' -m '%s' -q", out, dec, model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    CU_ASSERT_EQUAL(wav_len(dec), 3 * n);

    /* a length that is exactly two segments */
    snprintf(out, sizeof out, "%s/multiple.sotto", tmpdir);
    snprintf(args, sizeof args, "encode '%s' -o '%s' -m '%s' --segment 1 --json", mw, out,
             model_path);
    run(args, r);
    CU_ASSERT_EQUAL_FATAL(r->code, 0);
    /* the second segment is the last: padded by one frame for the decoder's end trim */
    TU_ASSERT_HAS(r->out, "\"segments\":2,");
    TU_ASSERT_HAS(r->out, "\"frames\":25,");
    snprintf(args, sizeof args, "decode '%s' -o '%s' -m '%s' -q", out, dec, model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    CU_ASSERT_EQUAL(wav_len(dec), 2 * 15360);

    /* one segment or less: the same bytes as the whole-file path */
    snprintf(out, sizeof out, "%s/seg_default.sotto", tmpdir);
    snprintf(out0, sizeof out0, "%s/seg_0.sotto", tmpdir);
    snprintf(args, sizeof args, "encode '%s' -o '%s' -m '%s' -q --rate 5", wav16, out, model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    snprintf(args, sizeof args, "encode '%s' -o '%s' -m '%s' -q --rate 5 --segment 0", wav16, out0,
             model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    CU_ASSERT(tu_files_equal(out, out0));

    const char *bad[] = {"--segment 0.5", "--segment -1", "--segment x", "--segment 4000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(args, sizeof args, "encode '%s' -o '%s' -m '%s' %s", wav16, out, model_path,
                 bad[i]);
        run(args, r);
        CU_ASSERT_EQUAL(r->code, 2);
        TU_ASSERT_HAS(r->err, "--segment");
    }
    sotto_model *m = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_model_load_file(model_path, NULL, &m, NULL), SOTTO_OK);
    sotto_codec_encode_params p = sotto_codec_default_encode_params();
    CU_ASSERT_EQUAL(p.segment_seconds, 30.0);
    p.segment_seconds = 0.5;
    sotto_status st;
    CU_ASSERT_EQUAL(sotto_codec_encode_file(m, wav16, out, &p, NULL, &st), SOTTO_ERR_INVALID_ARG);
    TU_ASSERT_HAS(st.message, "segment_seconds");
    sotto_model_free(m);
    free(r);
}

static void test_errors(void)
{
    tu_cli_result *r = malloc(sizeof *r);
    char out[600], args[2048], dmodel[600];
    snprintf(out, sizeof out, "%s/e.sotto", tmpdir);
    snprintf(dmodel, sizeof dmodel, "%s", tu_data_path(MODEL_DECODE_ONLY));

    snprintf(args, sizeof args, "encode '%s' -o '%s' -m '%s'", wav16, out, dmodel);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 4);
    TU_ASSERT_HAS(r->err, "model has no encoder");

    snprintf(args, sizeof args, "encode '%s/missing.wav' -o '%s' -m '%s'", tmpdir, out, model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 3);
    TU_ASSERT_HAS(r->err, "missing.wav");

    snprintf(args, sizeof args, "encode '%s' -o '%s' -m '%s/nomodel.gguf'", wav16, out, tmpdir);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 4);

    const char *bad[] = {"--threshold 1.5", "--threshold -0.1", "--threshold abc",
                         "--quantizers 9",  "--quantizers 1.5", "-t 0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(args, sizeof args, "encode '%s' -o '%s' -m '%s' %s", wav16, out, model_path,
                 bad[i]);
        run(args, r);
        if (r->code != 2) fprintf(stderr, "%s: exit %d, %s\n", bad[i], r->code, r->err);
        CU_ASSERT_EQUAL(r->code, 2);
    }
    TU_ASSERT_HAS(r->err, "threads");
    snprintf(args, sizeof args, "encode '%s' -o '%s' -m '%s' --threshold 2", wav16, out,
             model_path);
    run(args, r);
    TU_ASSERT_HAS(r->err, "--threshold must be a number in 0..1");

    snprintf(args, sizeof args, "encode '%s' -m '%s'", wav16, model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 2);
    snprintf(args, sizeof args, "encode '%s' -o '%s/no/such/dir/x.sotto' -m '%s'", wav16, tmpdir,
             model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 5);
    free(r);
}

int main(void)
{
    if (tu_make_tmpdir("sotto_cli_encode", tmpdir, sizeof tmpdir)) {
        fprintf(stderr, "no usable temporary folder\n");
        return 1;
    }
    snprintf(model_path, sizeof model_path, "%s", tu_data_path(MODEL));
    static const tu_test setup[] = {{"input audio", setup_audio}, {NULL, NULL}};
    static const tu_test tests[] = {
        {"encode, decode, summary", test_encode_decode},
        {"same codes as the API", test_same_as_api},
        {"--segment: segmented encode of longer files", test_segments},
        {"errors and exit codes", test_errors},
        {NULL, NULL},
    };
    int rc = tu_run_suite("cli_encode_setup", setup);
    if (!rc) rc = tu_run_suite("cli_encode", tests);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return rc;
}
#else
int main(void)
{
    fprintf(stderr, "the sotto app is not built (SOTTO_APPS=OFF): skipping\n");
    return TU_SKIP;
}
#endif
