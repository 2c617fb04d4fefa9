/*
 * `sotto-live` without audio hardware: the --file-in/--file-out mode runs the real-time
 * processing loop (rings + processing thread) on a bundled clip through vocos-16k-mini, for
 * several block sizes; the output has the input's length and matches `sotto vocode --float`
 * on the same file within 1e-5 (the samples past the vocoder's last full hop are zero).
 * --list-devices exits 0 whether or not there are devices. The codec path (FlexiCodec with an
 * encoder; the small random-weight test model, so only lengths and counts are checked): the
 * output has exactly the input's length (no tolerance), the --json counts agree with each
 * other, --loss 30 loses packets and still gives the full length with finite samples, and bad
 * codec options give one line and exit 2. Skips (77) when sotto-live (needs PortAudio) or
 * sotto is not built.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sotto/sotto_audio.h"
#include "testutil.h"

#if defined(SOTTO_LIVE_PATH) && defined(SOTTO_CLI_PATH)
static char tmpdir[512];
#define SAMPLE "../samples/speech/cmuarctic_axb_a0004_16k.flac"
#define MODEL "../samples/models/vocos-16k-mini.gguf"

static float *read_all(const char *path, int64_t *n)
{
    float *x = NULL;
    sotto_audio_info info;
    sotto_status st;
    if (sotto_audio_read_file(path, NULL, &x, n, &info, &st)) {
        fprintf(stderr, "%s: %s\n", path, st.message);
        return NULL;
    }
    return x;
}

static void test_file_mode(void)
{
    tu_cli_result *r = malloc(sizeof *r);
    char args[2048], ref[600], out[600];
    snprintf(ref, sizeof ref, "%s/vocode.wav", tmpdir);
    snprintf(args, sizeof args, "vocode '%s' -o '%s' -m '%s' --float", SAMPLE, ref, MODEL);
    tu_cli_run(SOTTO_CLI_PATH, tmpdir, args, r);
    CU_ASSERT_EQUAL_FATAL(r->code, 0);
    int64_t n_in = 0, n_ref = 0, n_out = 0;
    float *x = read_all(SAMPLE, &n_in), *want = read_all(ref, &n_ref);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    CU_ASSERT(n_ref <= n_in && n_ref > n_in - 256); /* hop·floor(N/hop) */

    static const char *const blocks[] = {"20", "1", "7.5", "250"};
    for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++) {
        snprintf(out, sizeof out, "%s/live-%zu.wav", tmpdir, b);
        snprintf(args, sizeof args, "--file-in '%s' --file-out '%s' -m '%s' --block %s", SAMPLE,
                 out, MODEL, blocks[b]);
        tu_cli_run(SOTTO_LIVE_PATH, tmpdir, args, r);
        CU_ASSERT_EQUAL(r->code, 0);
        TU_ASSERT_HAS(r->err, "look-ahead");
        float *got = read_all(out, &n_out);
        CU_ASSERT_PTR_NOT_NULL_FATAL(got);
        CU_ASSERT_EQUAL(n_out, n_in);
        if (n_out == n_in) {
            fprintf(stderr, "block %s ms: ", blocks[b]);
            TU_ASSERT_CLOSE("live vs vocode", got, want, n_ref, 1e-5, -1);
            double tail = 0, energy = 0;
            for (int64_t i = n_ref; i < n_out; i++)
                tail = fmax(tail, fabs(got[i]));
            for (int64_t i = 0; i < n_ref; i++)
                energy += (double)got[i] * got[i];
            CU_ASSERT_EQUAL(tail, 0.0);
            CU_ASSERT(energy > 1.0); /* real audio, not silence */
        }
        sotto_audio_free(got, NULL);
    }
    /* --f16-arithmetic: used exactly when the CPU has AVX512-FP16 (the shipped Vocos model is
     * stored in f16), and said so; then within the binary16 budget of the f32-arithmetic
     * output (SNR about 55 dB: NMSE 1e-4), else identical */
    const int have = (sotto_cpu_features() & SOTTO_CPU_AVX512FP16) != 0;
    snprintf(out, sizeof out, "%s/live-h16.wav", tmpdir);
    snprintf(args, sizeof args, "--file-in '%s' --file-out '%s' -m '%s' --f16-arithmetic", SAMPLE,
             out, MODEL);
    tu_cli_run(SOTTO_LIVE_PATH, tmpdir, args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    TU_ASSERT_HAS(r->err, have ? "sotto-live: binary16 arithmetic" : "f32 arithmetic: no AVX512");
    float *got = read_all(out, &n_out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_EQUAL(n_out, n_in);
    if (n_out == n_in) TU_ASSERT_CLOSE("live --f16-arithmetic vs vocode", got, want, n_ref, -1, 1e-4);
    sotto_audio_free(got, NULL);
    sotto_audio_free(x, NULL);
    sotto_audio_free(want, NULL);
    free(r);
}

#define CODEC "data/flexicodec/encode-audio-small.gguf"

/* A number after "key": in a JSON line; NAN when absent. */
static double json_num(const char *text, const char *key)
{
    char pat[80];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(text, pat);
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

/* 20 s of a gliding tone with noise: 10 segments of 2 s, 2 packets each. */
static int make_long_input(char *path, size_t size, int64_t *n)
{
    snprintf(path, size, "%s/long.wav", tmpdir);
    *n = 20 * 16000;
    float *x = malloc(sizeof(float) * (size_t)*n);
    if (!x) return -1;
    tu_rng rng;
    tu_rng_init(&rng, 7);
    for (int64_t i = 0; i < *n; i++) {
        const double t = (double)i / 16000.0;
        x[i] = (float)(0.3 * sin(2 * M_PI * (200 + 100 * sin(t)) * t)) +
               tu_rng_uniform(&rng, -0.05f, 0.05f);
    }
    sotto_status st;
    int rc = sotto_audio_write_file(path, x, *n, 16000, SOTTO_AUDIO_WAV_FLOAT, &st);
    free(x);
    return rc;
}

/* Checks the counts of one codec run's --json line; returns packets_lost (-1 on failure). */
static long check_codec_counts(const char *json, double seconds, int segment_ms)
{
    const double segs = json_num(json, "segments"), groups = json_num(json, "groups"),
                 frames = json_num(json, "frames"), sent = json_num(json, "packets_sent"),
                 lost = json_num(json, "packets_lost"), gps = json_num(json, "groups_per_s"),
                 audio = json_num(json, "audio_seconds"), la = json_num(json, "lookahead_ms"),
                 algo = json_num(json, "algorithmic_latency_ms");
    CU_ASSERT_EQUAL(segs, ceil(seconds * 1000.0 / segment_ms));
    CU_ASSERT(fabs(audio - seconds) < 1e-3);
    CU_ASSERT(groups >= 1 && groups <= frames);
    /* each segment is coded with its look-ahead: at most 12.5 frames/s + a few per segment */
    CU_ASSERT(frames >= floor(seconds * 12.5) && frames <= seconds * 12.5 + 4 * segs);
    CU_ASSERT(sent >= ceil(groups / 16.0) && sent <= groups);
    CU_ASSERT(lost >= 0 && lost <= sent);
    CU_ASSERT(fabs(gps - groups / seconds) < 1e-3);
    CU_ASSERT(la >= 0 && la < 200 && fabs(algo - (segment_ms + la)) < 0.05);
    return isnan(lost) ? -1 : (long)lost;
}

static void test_codec_path(void)
{
    tu_cli_result *r = malloc(sizeof *r);
    char args[2048], in[600], out[600];
    int64_t n_in = 0, n_out = 0;
    CU_ASSERT_EQUAL_FATAL(make_long_input(in, sizeof in, &n_in), 0);
    static const struct {
        const char *opts;
        int segment_ms;
        int lossy;
    } runs[] = {
        {"", 2000, 0},
        {"--segment 800 --rate 6", 800, 0},
        {"--bitrate 300 --quantizers 2", 2000, 0},
        {"--loss 30", 2000, 1},
        {"--loss 30 --seed 5 --segment 1040", 1040, 1},
    };
    for (size_t k = 0; k < sizeof runs / sizeof runs[0]; k++) {
        snprintf(out, sizeof out, "%s/codec-%zu.wav", tmpdir, k);
        snprintf(args, sizeof args, "--file-in '%s' --file-out '%s' -m '%s' --json %s", in, out,
                 CODEC, runs[k].opts);
        tu_cli_run(SOTTO_LIVE_PATH, tmpdir, args, r);
        fprintf(stderr, "codec %s: %s", runs[k].opts, r->out);
        CU_ASSERT_EQUAL(r->code, 0);
        if (r->code) fprintf(stderr, "%s\n", r->err);
        TU_ASSERT_HAS(r->out, "\"mode\":\"codec\"");
        TU_ASSERT_HAS(r->err, "look-ahead");
        TU_ASSERT_HAS(r->err, "packets sent");
        long lost = check_codec_counts(r->out, 20.0, runs[k].segment_ms);
        if (runs[k].lossy) {
            CU_ASSERT(lost > 0);
        } else {
            CU_ASSERT_EQUAL(lost, 0);
        }
        float *got = read_all(out, &n_out);
        CU_ASSERT_PTR_NOT_NULL_FATAL(got);
        CU_ASSERT_EQUAL(n_out, n_in); /* exactly the input's length */
        int finite = 1;
        double energy = 0;
        for (int64_t i = 0; i < n_out; i++) {
            if (!isfinite(got[i]))
                finite = 0;
            else
                energy += (double)got[i] * got[i];
        }
        CU_ASSERT(finite);
        CU_ASSERT(energy > 0);
        sotto_audio_free(got, NULL);
    }
    /* The same seed loses the same packets. */
    snprintf(args, sizeof args,
             "--file-in '%s' --file-out '%s/again.wav' -m '%s' --json "
             "--loss 30",
             in, tmpdir, CODEC);
    tu_cli_run(SOTTO_LIVE_PATH, tmpdir, args, r);
    CU_ASSERT_EQUAL(json_num(r->out, "packets_lost"), 2);

    /* Bad values: one clear line on stderr, exit 2, no output file. */
    static const char *const bad[] = {
        "--segment 100",    "--segment 0",       "--segment abc", "--segment 40000",
        "--loss 101",       "--loss -1",         "--loss x",      "--rate 0",
        "--rate 13",        "--rate -1",         "--threshold 2", "--rate 5 --bitrate 200",
        "--quantizers 1.5", "--bitrate 99999999"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        snprintf(args, sizeof args, "--file-in '%s' --file-out '%s/bad.wav' -m '%s' %s", in, tmpdir,
                 CODEC, bad[k]);
        tu_cli_run(SOTTO_LIVE_PATH, tmpdir, args, r);
        CU_ASSERT_EQUAL(r->code, 2);
        const char *nl = strchr(r->err, '\n');
        CU_ASSERT(nl != NULL && nl[1] == '\0' && !strncmp(r->err, "sotto-live: ", 12));
        if (r->code != 2 || !nl || nl[1])
            fprintf(stderr, "%s: rc %d, <%s>\n", bad[k], r->code, r->err);
    }
    /* Codec options with the vocoder model are a usage error too. */
    snprintf(args, sizeof args, "--file-in '%s' --file-out '%s/bad.wav' -m '%s' --loss 5", in,
             tmpdir, MODEL);
    tu_cli_run(SOTTO_LIVE_PATH, tmpdir, args, r);
    CU_ASSERT_EQUAL(r->code, 2);
    free(r);
}

static void test_devices_and_errors(void)
{
    tu_cli_result *r = malloc(sizeof *r);
    char args[2048];
    tu_cli_run(SOTTO_LIVE_PATH, tmpdir, "--list-devices", r);
    CU_ASSERT_EQUAL(r->code, 0);
    TU_ASSERT_HAS(r->out, "audio devices:");
    /* Either devices are listed (indented rows) or it says none. */
    CU_ASSERT(strstr(r->out, "audio devices: none") != NULL || strstr(r->out, "\n   ") != NULL);

    tu_cli_run(SOTTO_LIVE_PATH, tmpdir, "--block 0 --file-in a.wav --file-out b.wav", r);
    CU_ASSERT_EQUAL(r->code, 2);
    tu_cli_run(SOTTO_LIVE_PATH, tmpdir, "--file-in a.wav", r); /* no --file-out */
    CU_ASSERT_EQUAL(r->code, 2);
    tu_cli_run(SOTTO_LIVE_PATH, tmpdir, "--bogus", r);
    CU_ASSERT_EQUAL(r->code, 2);
    tu_cli_run(SOTTO_LIVE_PATH, tmpdir, "--help", r);
    CU_ASSERT_EQUAL(r->code, 0);
    TU_ASSERT_HAS(r->out, "usage: sotto-live");
    snprintf(args, sizeof args, "--file-in '%s/missing.wav' --file-out '%s/o.wav' -m '%s'", tmpdir,
             tmpdir, MODEL);
    tu_cli_run(SOTTO_LIVE_PATH, tmpdir, args, r);
    CU_ASSERT_EQUAL(r->code, 3);
    snprintf(args, sizeof args, "--file-in '%s' --file-out '%s/o.wav' -m '%s'", SAMPLE, tmpdir,
             tu_data_path("gguf/sample.gguf"));
    tu_cli_run(SOTTO_LIVE_PATH, tmpdir, args, r);
    CU_ASSERT_EQUAL(r->code, 4);
    snprintf(args, sizeof args, "--file-in '%s' --file-out '%s/no/dir/o.wav' -m '%s'", SAMPLE,
             tmpdir, MODEL);
    tu_cli_run(SOTTO_LIVE_PATH, tmpdir, args, r);
    CU_ASSERT_EQUAL(r->code, 5);
    free(r);
}

int main(void)
{
    if (tu_make_tmpdir("sotto_cli_live", tmpdir, sizeof tmpdir)) {
        fprintf(stderr, "no usable temporary folder\n");
        return 1;
    }
    static const tu_test tests[] = {
        {"file mode matches sotto vocode, input length", test_file_mode},
        {"codec path: length, counts, loss, bad values", test_codec_path},
        {"list devices, errors and exit codes", test_devices_and_errors},
        {NULL, NULL},
    };
    int rc = tu_run_suite("cli_live", tests);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return rc;
}
#else
int main(void)
{
    fprintf(stderr, "sotto-live (needs PortAudio) or sotto is not built: skipping\n");
    return TU_SKIP;
}
#endif
