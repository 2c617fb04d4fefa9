/*
 * `sotto transcode` end to end with the small FlexiCodec model that holds the encoder
 * (tests/data/flexicodec/encode-audio-small.gguf): a temporary folder tree with two small WAVs
 * of real speech (the golden clip and a samples/speech clip, written with the SDK's writer)
 * and one broken file. Checks: outputs named after the input tree (.sotto, and .wav with
 * --decode), the summary table lists all three files with the broken one as FAILED and the
 * totals, exit code 9 when a file fails and 0 when all succeed, decoded WAVs of exactly the
 * input's length, a 24 kHz input decoded back at 24 kHz (and at --decode-rate 48000) with the
 * documented length, --rate met within one group per file (from the files themselves), --json,
 * --progress lines, a file over --max-seconds refused without stopping the batch, bad options
 * and a decode-only model, --jobs 3 writing the same bytes as one job; where a CUDA device
 * exists, the batched decode's WAVs against --cpu's. Skips (77) when the apps are not built.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend/cuda_probe.h"
#include "sotto/sotto.h"
#include "sotto/sotto_audio.h"
#include "sotto/sotto_codec.h"
#include "testutil.h"

#ifdef SOTTO_CLI_PATH
#define MODEL "flexicodec/encode-audio-small.gguf"
#define MODEL_DECODE_ONLY "flexicodec/decode-small.gguf"
#define GOLDEN "flexicodec/encode-audio-small_golden.gguf"
#define SPEECH "../../samples/speech/cmuarctic_axb_a0004_16k.flac"

static char tmpdir[512], model_path[600], in_dir[600];
static int64_t n_a, n_b;

static void run(const char *args, tu_cli_result *r)
{
    tu_cli_run(SOTTO_CLI_PATH, tmpdir, args, r);
}

static int exists(const char *path)
{
    struct stat s;
    return stat(path, &s) == 0;
}

/* in/a.wav (golden clip), in/sub/deeper/b.wav (samples clip, 2.5 s), in/sub/broken.wav */
static void setup_tree(void)
{
    char path[1400];
    snprintf(in_dir, sizeof in_dir, "%s/in", tmpdir);
    snprintf(path, sizeof path, "mkdir -p '%s/sub/deeper' '%s/empty'", in_dir, in_dir);
    CU_ASSERT_EQUAL_FATAL(system(path), 0);
    sotto_gguf *io = tu_golden_open(GOLDEN);
    CU_ASSERT_PTR_NOT_NULL_FATAL(io);
    int64_t n;
    float *wave = tu_golden_f32(io, "wave", &n, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(wave);
    sotto_status st;
    n_a = n - 333;
    snprintf(path, sizeof path, "%s/a.wav", in_dir);
    CU_ASSERT_EQUAL_FATAL(
        sotto_audio_write_file(path, wave, n_a, 16000, SOTTO_AUDIO_WAV_PCM16, &st), SOTTO_OK);
    free(wave);
    sotto_gguf_close(io);

    sotto_audio_read_params rp = sotto_audio_default_read_params();
    rp.target_rate_hz = 16000;
    float *x = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_audio_read_file(tu_data_path(SPEECH), &rp, &x, &n, NULL, &st),
                          SOTTO_OK);
    n_b = n < 40000 ? n : 40000;
    snprintf(path, sizeof path, "%s/sub/deeper/b.wav", in_dir);
    CU_ASSERT_EQUAL_FATAL(sotto_audio_write_file(path, x, n_b, 16000, SOTTO_AUDIO_WAV_PCM16, &st),
                          SOTTO_OK);
    sotto_audio_free(x, rp.allocator);

    snprintf(path, sizeof path, "%s/sub/broken.wav", in_dir);
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("RIFF\x10\x00\x00\x00WAVEjunk: not a wave file at all", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/sub/notes.txt", in_dir); /* not audio: ignored */
    f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("ignored", f);
    fclose(f);
}

static int64_t wav_len_at(const char *path, int rate)
{
    float *x = NULL;
    int64_t n = -1;
    sotto_audio_info info;
    sotto_status st;
    int rc = sotto_audio_read_file(path, NULL, &x, &n, &info, &st);
    if (rc) fprintf(stderr, "%s: %s\n", path, st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    CU_ASSERT_EQUAL(info.sample_rate_hz, rate);
    sotto_audio_free(x, NULL);
    return n;
}

static int64_t wav_len(const char *path) { return wav_len_at(path, 16000); }

static void probe(const char *path, sotto_codec_file_info *fi)
{
    sotto_status st;
    int rc = sotto_codec_probe_file(path, NULL, fi, &st);
    if (rc) fprintf(stderr, "%s: %s\n", path, st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
}

static void test_tree_decode(void)
{
    tu_cli_result *r = malloc(sizeof *r);
    char out[700], args[4096], p[800];
    snprintf(out, sizeof out, "%s/out1", tmpdir);
    snprintf(args, sizeof args, "transcode '%s' -o '%s' -m '%s' --decode", in_dir, out, model_path);
    run(args, r);
    if (r->code != 9) fprintf(stderr, "exit %d\n%s\n%s\n", r->code, r->out, r->err);
    CU_ASSERT_EQUAL(r->code, 9); /* some failed: the broken file */
    /* the summary lists all three, in name order, the broken one failed */
    TU_ASSERT_HAS(r->out, "file");
    TU_ASSERT_HAS(r->out, "groups/s");
    TU_ASSERT_HAS(r->out, "bit/s");
    TU_ASSERT_HAS(r->out, "RTF");
    TU_ASSERT_HAS(r->out, "status");
    const char *a = strstr(r->out, "/a.wav"), *bk = strstr(r->out, "/sub/broken.wav");
    const char *b = strstr(r->out, "/sub/deeper/b.wav");
    CU_ASSERT(a && bk && b && a < bk && bk < b);
    if (bk) {
        const char *eol = strchr(bk, '\n');
        const char *fail = strstr(bk, "FAILED");
        CU_ASSERT(fail && eol && fail < eol);
    }
    CU_ASSERT_PTR_NULL(strstr(r->out, "notes.txt"));
    TU_ASSERT_HAS(r->out, "total: 3 files, 2 ok, 1 failed");
    TU_ASSERT_HAS(r->err, "broken.wav"); /* reported on stderr too */
    /* no progress: stderr is not a terminal */
    CU_ASSERT_PTR_NULL(strstr(r->err, "[3/3 files]"));

    /* outputs mirror the tree; the decoded WAVs have the inputs' exact lengths */
    snprintf(p, sizeof p, "%s/a.sotto", out);
    CU_ASSERT_TRUE(exists(p));
    snprintf(p, sizeof p, "%s/a.wav", out);
    CU_ASSERT_EQUAL(wav_len(p), n_a);
    snprintf(p, sizeof p, "%s/sub/deeper/b.sotto", out);
    CU_ASSERT_TRUE(exists(p));
    snprintf(p, sizeof p, "%s/sub/deeper/b.wav", out);
    CU_ASSERT_EQUAL(wav_len(p), n_b);
    snprintf(p, sizeof p, "%s/sub/broken.sotto", out);
    CU_ASSERT_FALSE(exists(p));
    snprintf(p, sizeof p, "%s/sub/broken.wav", out);
    CU_ASSERT_FALSE(exists(p));
    snprintf(p, sizeof p, "%s/empty", out);
    CU_ASSERT_FALSE(exists(p)); /* no audio there: no folder */
    free(r);
}

/* A 24 kHz input comes back at 24 kHz by default and at --decode-rate otherwise, with
 * sotto_audio_output_length(N16, 16000, RATE) samples, N16 its length at 16 kHz. */
static void test_decode_rate(void)
{
    tu_cli_result *r = malloc(sizeof *r);
    char dir[700], out[700], args[4096], p[800];
    snprintf(dir, sizeof dir, "%s/r24", tmpdir);
    snprintf(p, sizeof p, "mkdir -p '%s'", dir);
    CU_ASSERT_EQUAL_FATAL(system(p), 0);
    sotto_audio_read_params rp = sotto_audio_default_read_params();
    rp.target_rate_hz = 24000;
    float *x = NULL;
    int64_t n = 0;
    sotto_status st;
    CU_ASSERT_EQUAL_FATAL(sotto_audio_read_file(tu_data_path(SPEECH), &rp, &x, &n, NULL, &st),
                          SOTTO_OK);
    const int64_t f = n < 37001 ? n : 37001; /* odd: the round trip is not trivially exact */
    snprintf(p, sizeof p, "%s/c.wav", dir);
    CU_ASSERT_EQUAL_FATAL(sotto_audio_write_file(p, x, f, 24000, SOTTO_AUDIO_WAV_PCM16, &st),
                          SOTTO_OK);
    sotto_audio_free(x, rp.allocator);
    const int64_t n16 = sotto_audio_output_length(f, 24000, 16000);

    snprintf(out, sizeof out, "%s/out_r24", tmpdir);
    snprintf(args, sizeof args, "transcode '%s' -o '%s' -m '%s' --decode -q", dir, out,
             model_path);
    run(args, r);
    if (r->code != 0) fprintf(stderr, "exit %d\n%s\n%s\n", r->code, r->out, r->err);
    CU_ASSERT_EQUAL(r->code, 0);
    snprintf(p, sizeof p, "%s/c.wav", out);
    CU_ASSERT_EQUAL(wav_len_at(p, 24000), sotto_audio_output_length(n16, 16000, 24000));

    /* --f16-arithmetic on this f32 model changes nothing and says so; same lengths */
    snprintf(out, sizeof out, "%s/out_r24h", tmpdir);
    snprintf(args, sizeof args, "transcode '%s' -o '%s' -m '%s' --decode --f16-arithmetic", dir,
             out, model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    TU_ASSERT_HAS(r->err, "f32 arithmetic: no AVX512-FP16 or no f16 weights");
    snprintf(p, sizeof p, "%s/c.wav", out);
    CU_ASSERT_EQUAL(wav_len_at(p, 24000), sotto_audio_output_length(n16, 16000, 24000));

    snprintf(out, sizeof out, "%s/out_r48", tmpdir);
    snprintf(args, sizeof args, "transcode '%s' -o '%s' -m '%s' --decode-rate 48000 -q", dir,
             out, model_path);
    run(args, r);
    if (r->code != 0) fprintf(stderr, "exit %d\n%s\n%s\n", r->code, r->out, r->err);
    CU_ASSERT_EQUAL(r->code, 0);
    snprintf(p, sizeof p, "%s/c.wav", out);
    CU_ASSERT_EQUAL(wav_len_at(p, 48000), sotto_audio_output_length(n16, 16000, 48000));

    static const char *const bad[] = {"0", "999", "16000.5", "abc", "800000"};
    for (int i = 0; i < 5; i++) {
        snprintf(args, sizeof args, "transcode '%s' -o '%s/out_bad' -m '%s' --decode-rate %s",
                 dir, tmpdir, model_path, bad[i]);
        run(args, r);
        CU_ASSERT_EQUAL(r->code, 2);
        TU_ASSERT_HAS(r->err, "--decode-rate");
    }
    free(r);
}

static void test_rate_json(void)
{
    tu_cli_result *r = malloc(sizeof *r);
    char out[700], args[4096], p[800], fa[700], fb[700];
    snprintf(out, sizeof out, "%s/out2", tmpdir);
    snprintf(fa, sizeof fa, "%s/a.wav", in_dir);
    snprintf(fb, sizeof fb, "%s/sub/deeper/b.wav", in_dir);
    const double rates[] = {4.0, 8.0};
    for (int k = 0; k < 2; k++) {
        /* two files named directly: OUTDIR/<name>.sotto; all succeed: exit 0 */
        snprintf(args, sizeof args,
                 "transcode '%s' '%s' -o '%s' -m '%s' --rate %g --json --progress --jobs 1", fa, fb,
                 out, model_path, rates[k]);
        run(args, r);
        if (r->code != 0) fprintf(stderr, "exit %d\n%s\n%s\n", r->code, r->out, r->err);
        CU_ASSERT_EQUAL(r->code, 0);
        TU_ASSERT_HAS(r->out, "{\"files\":[{\"input\":");
        TU_ASSERT_HAS(r->out, "\"total\":{\"files\":2,\"ok\":2,\"failed\":0");
        TU_ASSERT_HAS(r->out, "\"rate_clamped\":0");
        TU_ASSERT_HAS(r->err, "[1/2 files]");
        TU_ASSERT_HAS(r->err, "[2/2 files]");
        TU_ASSERT_HAS(r->err, "RTF");
        const int64_t lens[2] = {n_a, n_b};
        const char *names[2] = {"a", "b"};
        for (int i = 0; i < 2; i++) {
            snprintf(p, sizeof p, "%s/%s.sotto", out, names[i]);
            sotto_codec_file_info fi;
            probe(p, &fi);
            CU_ASSERT_EQUAL(fi.samples, lens[i]);
            const double want = rates[k] * (double)lens[i] / 16000.0;
            printf("--rate %g, %s: %lld groups for %.2f wanted\n", rates[k], names[i],
                   (long long)fi.groups, want);
            CU_ASSERT(fabs((double)fi.groups - want) <= 1.0);
        }
    }
    /* a bitrate target too: accepted, reported */
    snprintf(args, sizeof args, "transcode '%s' -o '%s' -m '%s' --bitrate 500 -q", fa, out,
             model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    CU_ASSERT_EQUAL(r->out[0], '\0'); /* -q: no table */
    free(r);
}

/* --jobs 3 over the tree: the same files, byte for byte, as one job; the summary in input
 * order; the broken file still reported */
static void test_jobs(void)
{
    tu_cli_result *r = malloc(sizeof *r);
    char o1[700], o3[700], args[4096], pa[800], pb[800];
    snprintf(o1, sizeof o1, "%s/jobs1", tmpdir);
    snprintf(o3, sizeof o3, "%s/jobs3", tmpdir);
    snprintf(args, sizeof args, "transcode '%s' -o '%s' -m '%s' --rate 6 --decode -q", in_dir, o1,
             model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 9);
    snprintf(args, sizeof args, "transcode '%s' -o '%s' -m '%s' --rate 6 --decode --jobs 3 --json",
             in_dir, o3, model_path);
    run(args, r);
    if (r->code != 9) fprintf(stderr, "exit %d\n%s\n%s\n", r->code, r->out, r->err);
    CU_ASSERT_EQUAL(r->code, 9);
    TU_ASSERT_HAS(r->out, "\"total\":{\"files\":3,\"ok\":2,\"failed\":1");
    TU_ASSERT_HAS(r->err, "broken.wav");
    const char *a = strstr(r->out, "/a.wav\""), *bk = strstr(r->out, "/sub/broken.wav\"");
    const char *b = strstr(r->out, "/sub/deeper/b.wav\"");
    CU_ASSERT(a && bk && b && a < bk && bk < b);
    const char *names[] = {"a.sotto", "a.wav", "sub/deeper/b.sotto", "sub/deeper/b.wav"};
    for (int i = 0; i < 4; i++) {
        snprintf(pa, sizeof pa, "%s/%s", o1, names[i]);
        snprintf(pb, sizeof pb, "%s/%s", o3, names[i]);
        CU_ASSERT(exists(pb));
        CU_ASSERT(tu_files_equal(pa, pb));
    }
    free(r);
}

static void test_limits_errors(void)
{
    tu_cli_result *r = malloc(sizeof *r);
    char out[700], args[4096], fa[700], fb[700];
    snprintf(out, sizeof out, "%s/out3", tmpdir);
    snprintf(fa, sizeof fa, "%s/a.wav", in_dir);
    snprintf(fb, sizeof fb, "%s/sub/deeper/b.wav", in_dir);
    /* b (2.5 s) over --max-seconds 2: refused, a still done */
    snprintf(args, sizeof args, "transcode '%s' '%s' -o '%s' -m '%s' --max-seconds 2", fb, fa, out,
             model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 9);
    TU_ASSERT_HAS(r->err, "longer than the maximum 2 s");
    TU_ASSERT_HAS(r->out, "total: 2 files, 1 ok, 1 failed");
    /* a missing input is a failed file too */
    snprintf(args, sizeof args, "transcode '%s/nope.wav' '%s' -o '%s' -m '%s' -q", tmpdir, fa, out,
             model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 9);
    TU_ASSERT_HAS(r->err, "nope.wav");
    /* a folder without audio */
    snprintf(args, sizeof args, "transcode '%s/empty' -o '%s' -m '%s'", in_dir, out, model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 3);
    TU_ASSERT_HAS(r->err, "no audio files");
    /* model errors */
    snprintf(args, sizeof args, "transcode '%s' -o '%s' -m '%s'", fa, out,
             tu_data_path(MODEL_DECODE_ONLY));
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 4);
    TU_ASSERT_HAS(r->err, "model has no encoder");
    /* bad options: exit 2 */
    const char *bad[] = {"--rate 0",     "--rate 13",         "--rate 4 --threshold 0.5",
                         "--bitrate -1", "--bitrate 1e9",     "--rate 4 --bitrate 300",
                         "--jobs 0",     "--jobs 65",         "--jobs 1.5",
                         "--max-seconds 0.5", "--threshold 2", "-t 0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(args, sizeof args, "transcode '%s' -o '%s' -m '%s' %s", fa, out, model_path,
                 bad[i]);
        run(args, r);
        if (r->code != 2) fprintf(stderr, "%s: exit %d, %s\n", bad[i], r->code, r->err);
        CU_ASSERT_EQUAL(r->code, 2);
    }
    snprintf(args, sizeof args, "transcode '%s' -m '%s'", fa, model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 2);
    /* --gpu: a device index, not with --cpu, exit 8 without that device */
    snprintf(args, sizeof args, "transcode '%s' -o '%s' -m '%s' --gpu 0 --cpu", fa, out,
             model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 2);
    TU_ASSERT_HAS(r->err, "--cpu and --gpu");
    snprintf(args, sizeof args, "transcode '%s' -o '%s' -m '%s' --decode --gpu x", fa, out,
             model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 2);
    snprintf(args, sizeof args, "transcode '%s' -o '%s' -m '%s' --decode --gpu 0", fa, out,
             model_path);
    run(args, r);
    if (sotto_cuda_device_count() > 0) {
        CU_ASSERT_EQUAL(r->code, 0);
        TU_ASSERT_HAS(r->err, "on CUDA device 0");
    } else {
        CU_ASSERT_EQUAL(r->code, 8);
        TU_ASSERT_HAS(r->err, "no CUDA device");
    }
    free(r);
}

static float *read_wav(const char *path, int64_t *n)
{
    float *x = NULL;
    sotto_status st;
    int rc = sotto_audio_read_file(path, NULL, &x, n, NULL, &st);
    if (rc) fprintf(stderr, "%s: %s\n", path, st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    return x;
}

static double max_abs(const float *a, const float *b, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        const double d = fabs((double)a[i] - b[i]);
        m = d > m ? d : m;
    }
    return m;
}

/* Where a CUDA device exists (the default then takes it), --decode decodes the folder in
 * batched forwards after the encodes: its WAVs against --cpu's (per-file decodes) within
 * max-abs 2e-4, the decode budget of tests/gpu/test_flexicodec_cuda.c, plus one step of the
 * 16-bit WAV (either side may round the other way); when the encoders made other codes, the
 * device's WAVs against the CPU decode of the device's own .sotto files instead. The
 * summaries agree. */
static void test_device_decode(void)
{
    if (sotto_cuda_device_count() <= 0) {
        printf("no CUDA device: the batched decode is not exercised\n");
        return;
    }
    tu_cli_result *r = malloc(sizeof *r);
    char oc[700], og[700], args[4096], pc[800], pg[800];
    snprintf(oc, sizeof oc, "%s/dev_cpu", tmpdir);
    snprintf(og, sizeof og, "%s/dev_gpu", tmpdir);
    snprintf(args, sizeof args, "transcode '%s' -o '%s' -m '%s' --decode --cpu", in_dir, oc,
             model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 9);
    TU_ASSERT_HAS(r->out, "total: 3 files, 2 ok, 1 failed");
    snprintf(args, sizeof args, "transcode '%s' -o '%s' -m '%s' --decode --jobs 2 --progress",
             in_dir, og, model_path);
    run(args, r);
    if (r->code != 9) fprintf(stderr, "exit %d\n%s\n%s\n", r->code, r->out, r->err);
    CU_ASSERT_EQUAL(r->code, 9);
    TU_ASSERT_HAS(r->err, "on CUDA device 0");
    TU_ASSERT_HAS(r->err, "[3/3 files]");
    TU_ASSERT_HAS(r->err, "broken.wav");
    TU_ASSERT_HAS(r->out, "total: 3 files, 2 ok, 1 failed");
    sotto_model *cpu = NULL;
    sotto_model_params mp = sotto_model_default_params();
    mp.backend = SOTTO_BACKEND_CPU;
    CU_ASSERT_EQUAL_FATAL(sotto_model_load_file(model_path, &mp, &cpu, NULL), SOTTO_OK);
    const char *names[] = {"a", "sub/deeper/b"};
    const int64_t lens[] = {n_a, n_b};
    const double tol = 2e-4 + 1.0 / 32768;
    for (int i = 0; i < 2; i++) {
        snprintf(pc, sizeof pc, "%s/%s.sotto", oc, names[i]);
        snprintf(pg, sizeof pg, "%s/%s.sotto", og, names[i]);
        const int same_codes = tu_files_equal(pc, pg);
        int64_t nc = 0, ng = 0;
        snprintf(pg, sizeof pg, "%s/%s.wav", og, names[i]);
        float *g = read_wav(pg, &ng), *c = NULL;
        CU_ASSERT_EQUAL(ng, lens[i]);
        if (same_codes) {
            snprintf(pc, sizeof pc, "%s/%s.wav", oc, names[i]);
            c = read_wav(pc, &nc);
        } else { /* the CPU decode of the device's codes */
            snprintf(pg, sizeof pg, "%s/%s.sotto", og, names[i]);
            sotto_status st;
            CU_ASSERT_EQUAL_FATAL(sotto_codec_decode_file(cpu, pg, NULL, &c, &nc, NULL, &st),
                                  SOTTO_OK);
        }
        CU_ASSERT_EQUAL(nc, ng);
        const double m = nc == ng ? max_abs(c, g, ng) : 1.0;
        printf("%s: device vs CPU decode (%s codes): max-abs %.3g\n", names[i],
               same_codes ? "the same" : "other", m);
        CU_ASSERT(m <= tol);
        free(g);
        free(c);
    }
    sotto_model_free(cpu);
    free(r);
}

/* `sotto encode --rate`: the achieved figures in the summary and --json */
static void test_encode_rate(void)
{
    tu_cli_result *r = malloc(sizeof *r);
    char out[700], args[4096], fa[700];
    snprintf(out, sizeof out, "%s/e.sotto", tmpdir);
    snprintf(fa, sizeof fa, "%s/a.wav", in_dir);
    snprintf(args, sizeof args, "encode '%s' -o '%s' -m '%s' --rate 5", fa, out, model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    TU_ASSERT_HAS(r->err, "target 5.00 groups/s");
    TU_ASSERT_HAS(r->err, "achieved");
    sotto_codec_file_info fi;
    probe(out, &fi);
    CU_ASSERT(fabs((double)fi.groups - 5.0 * (double)n_a / 16000.0) <= 1.0);
    /* below 12.5 / 8: clamped, reported */
    snprintf(args, sizeof args, "encode '%s' -o '%s' -m '%s' --rate 1 --json", fa, out, model_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    TU_ASSERT_HAS(r->out, "\"rate_clamped\":-1");
    TU_ASSERT_HAS(r->out, "\"threshold\":0.0000");
    TU_ASSERT_HAS(r->out, "\"target_rate_hz\":1.0000");
    const char *bad[] = {"--rate 0",      "--rate 20",  "--rate x", "--rate 4 --threshold 0.5",
                         "--bitrate 1e9", "--bitrate 0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(args, sizeof args, "encode '%s' -o '%s' -m '%s' %s", fa, out, model_path, bad[i]);
        run(args, r);
        if (r->code != 2) fprintf(stderr, "%s: exit %d, %s\n", bad[i], r->code, r->err);
        CU_ASSERT_EQUAL(r->code, 2);
    }
    free(r);
}

int main(void)
{
    if (tu_make_tmpdir("sotto_cli_transcode", tmpdir, sizeof tmpdir)) {
        fprintf(stderr, "no usable temporary folder\n");
        return 1;
    }
    snprintf(model_path, sizeof model_path, "%s", tu_data_path(MODEL));
    static const tu_test setup[] = {{"input tree", setup_tree}, {NULL, NULL}};
    static const tu_test tests[] = {
        {"folder tree, --decode, summary, exit code", test_tree_decode},
        {"--decode at the input's rate, --decode-rate", test_decode_rate},
        {"--rate, --json, --progress", test_rate_json},
        {"--jobs 3 equals one job", test_jobs},
        {"limits and errors", test_limits_errors},
        {"encode --rate", test_encode_rate},
        {"device decode (batched) vs --cpu", test_device_decode},
        {NULL, NULL},
    };
    int rc = tu_run_suite("cli_transcode_setup", setup);
    if (!rc) rc = tu_run_suite("cli_transcode", tests);
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
