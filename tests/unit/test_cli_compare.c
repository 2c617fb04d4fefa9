/*
 * `sotto compare` end to end on a bundled clip with the small codec fixture: one row for
 * the codec and one per Opus bitrate, Opus's actual bitrate within 20 % of the request,
 * scores in range (STOI included), decoded WAVs in --out, the --plot PNG (signature and IHDR
 * dimensions; exit 8 when built without libpng), several inputs (a table per file and an
 * overall one whose bit/s is the duration-weighted mean; Opus at Sotto's own bitrate with
 * 'same'; the JSON wrapper), and the documented exit codes for bad arguments.
 * Skips (77) when the apps are not built, or when they were built without libopus (exit 8).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sotto/sotto_audio.h"
#include "testutil.h"

#ifdef SOTTO_CLI_PATH
static char tmpdir[512];
#define SAMPLE "../samples/speech/cmuarctic_aew_a0001_16k.flac"
#define SAMPLE2 "../samples/speech/cmuarctic_axb_a0004_16k.flac"

static void run(const char *args, tu_cli_result *r)
{
    tu_cli_run(SOTTO_CLI_PATH, tmpdir, args, r);
}

/* The number after "key": in the n-th row object of the JSON output; -1e30 if absent. */
static double row_value(const char *json, int n, const char *key)
{
    const char *p = strstr(json, "\"rows\":[");
    for (int i = 0; p && i <= n; i++) p = strstr(p + 1, "{\"codec\"");
    if (!p) return -1e30;
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *q = strstr(p, pat), *end = strchr(p, '}');
    if (!q || (end && q > end)) return -1e30;
    return strtod(q + strlen(pat), NULL);
}

static int wav_len(const char *dir, const char *name, int64_t *n)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    float *x = NULL;
    sotto_audio_info info;
    int rc = sotto_audio_read_file(path, NULL, &x, n, &info, NULL);
    sotto_audio_free(x, NULL);
    return rc;
}

static void test_table(void)
{
    tu_cli_result *r = malloc(sizeof *r);
    char args[2048], model[600];
    snprintf(model, sizeof model, "%s", tu_data_path("flexicodec/encode-audio-small.gguf"));

    snprintf(args, sizeof args, "compare '%s' -m '%s'", SAMPLE, model);
    run(args, r);
    CU_ASSERT_EQUAL_FATAL(r->code, 0);
    TU_ASSERT_HAS(r->out, "logmel-L1");
    TU_ASSERT_HAS(r->out, "SI-SDR");
    TU_ASSERT_HAS(r->out, "segSNR");
    TU_ASSERT_HAS(r->out, "\nsotto  thr ");
    /* default Opus settings: Sotto's own bitrate, then 6, 12 and 24 kbit/s */
    TU_ASSERT_HAS(r->out, " bit/s (= sotto)");
    TU_ASSERT_HAS(r->out, "\nopus   6000 bit/s");
    TU_ASSERT_HAS(r->out, "\nopus   12000 bit/s");
    TU_ASSERT_HAS(r->out, "\nopus   24000 bit/s");
    TU_ASSERT_HAS(r->out, "Ogg overhead excluded");
    TU_ASSERT_HAS(r->out, "    STOI\n");
    CU_ASSERT_PTR_NULL(strstr(r->out, "STOI not computed"));

    snprintf(args, sizeof args,
             "compare '%s' -m '%s' --opus-bitrates 6000,9000,16000 --threshold 1 --json "
             "--out '%s'",
             SAMPLE, model, tmpdir);
    run(args, r);
    CU_ASSERT_EQUAL_FATAL(r->code, 0);
    TU_ASSERT_HAS(r->out, "\"setting\":\"thr 1.000");
    const double want[3] = {6000, 9000, 16000};
    for (int i = 0; i < 4; i++) {
        const double br = row_value(r->out, i, "bitrate_bps");
        const double mel = row_value(r->out, i, "log_mel_l1");
        const double sdr = row_value(r->out, i, "si_sdr_db");
        const double seg = row_value(r->out, i, "seg_snr_db");
        const double rtf = row_value(r->out, i, "rtf");
        const double stoi = row_value(r->out, i, "stoi");
        fprintf(stderr,
                "row %d: %.0f bit/s, mel %.3f, SI-SDR %.2f, segSNR %.2f, STOI %.4f, RTF %.4f\n",
                i, br, mel, sdr, seg, stoi, rtf);
        CU_ASSERT(stoi >= -1 && stoi <= 1);
        CU_ASSERT(br > 0);
        CU_ASSERT(mel >= 0);
        CU_ASSERT(sdr >= -100 && sdr <= 100);
        CU_ASSERT(seg >= -10 && seg <= 35);
        CU_ASSERT(rtf > 0);
        if (i > 0) {
            CU_ASSERT(br > 0.8 * want[i - 1] && br < 1.2 * want[i - 1]);
            /* Opus decodes speech into something close: far better than unrelated audio. */
            CU_ASSERT(mel < 2.5);
            CU_ASSERT(seg > 0);
            /* Opus keeps speech intelligible at these rates. */
            CU_ASSERT(stoi > 0.8);
        }
    }
    /* More bits, closer to the original. */
    CU_ASSERT(row_value(r->out, 3, "log_mel_l1") < row_value(r->out, 1, "log_mel_l1"));
    CU_ASSERT(row_value(r->out, 4, "bitrate_bps") < -1e29); /* no fifth row */

    int64_t n_in = 0, n;
    float *x = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_audio_read_file(SAMPLE, NULL, &x, &n_in, NULL, NULL), 0);
    sotto_audio_free(x, NULL);
    static const char *const outs[] = {"sotto.wav", "opus-6000.wav", "opus-9000.wav",
                                       "opus-16000.wav"};
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(wav_len(tmpdir, outs[i], &n), 0);
        CU_ASSERT_EQUAL(n, n_in);
    }
    /* The codec alone. */
    snprintf(args, sizeof args, "compare '%s' -m '%s' --opus-bitrates none --quantizers 2",
             SAMPLE, model);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    TU_ASSERT_HAS(r->out, ", 2 q,");
    CU_ASSERT_PTR_NULL(strstr(r->out, "\nopus"));
    free(r);
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void test_plot(void)
{
    tu_cli_result *r = malloc(sizeof *r);
    char args[2048], model[600], png[600];
    snprintf(model, sizeof model, "%s", tu_data_path("flexicodec/encode-audio-small.gguf"));
    snprintf(png, sizeof png, "%s/plot.png", tmpdir);
    snprintf(args, sizeof args, "compare '%s' -m '%s' --opus-bitrates 6000,12000 --plot '%s'",
             SAMPLE, model, png);
    run(args, r);
    if (r->code == 8) { /* built without libpng: the documented refusal */
        TU_ASSERT_HAS(r->err, "libpng");
        fprintf(stderr, "sotto was built without libpng: --plot refused with exit 8\n");
        free(r);
        return;
    }
    CU_ASSERT_EQUAL_FATAL(r->code, 0);
    unsigned char head[33] = {0};
    FILE *f = fopen(png, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    const size_t got = fread(head, 1, sizeof head, f);
    fclose(f);
    CU_ASSERT_EQUAL_FATAL(got, sizeof head);
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    CU_ASSERT_EQUAL(memcmp(head, sig, 8), 0);
    CU_ASSERT_EQUAL(be32(head + 8), 13); /* IHDR length */
    CU_ASSERT_EQUAL(memcmp(head + 12, "IHDR", 4), 0);
    /* Width: one column per 10 ms frame (512-point window, hop 160) up to 1600; height: four
     * panels (original, Sotto, two Opus rates) of 256 rows with 4-row gaps. */
    int64_t n_in = 0;
    float *x = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_audio_read_file(SAMPLE, NULL, &x, &n_in, NULL, NULL), 0);
    sotto_audio_free(x, NULL);
    int64_t want_w = (n_in - 512) / 160 + 1;
    if (want_w > 1600) want_w = 1600;
    const uint32_t w = be32(head + 16), h = be32(head + 20);
    fprintf(stderr, "plot: %u x %u, bit depth %u, colour type %u\n", w, h, head[24], head[25]);
    CU_ASSERT_EQUAL(w, (uint32_t)want_w);
    CU_ASSERT_EQUAL(h, 4 * 256 + 3 * 4);
    CU_ASSERT_EQUAL(head[24], 8); /* bit depth */
    CU_ASSERT_EQUAL(head[25], 2); /* RGB */

    /* An unwritable plot path is an output error. */
    snprintf(args, sizeof args,
             "compare '%s' -m '%s' --opus-bitrates none --plot '%s/no/such/dir/p.png'", SAMPLE,
             model, tmpdir);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 5);
    free(r);
}

/* Several inputs: a table per file and an overall one (bit/s over the total duration);
 * --opus-bitrates same codes Opus at Sotto's bitrate for each file; JSON wraps both. */
static void test_several(void)
{
    tu_cli_result *r = malloc(sizeof *r);
    char args[2048], model[600];
    snprintf(model, sizeof model, "%s", tu_data_path("flexicodec/encode-audio-small.gguf"));
    snprintf(args, sizeof args, "compare '%s' '%s' -m '%s' --opus-bitrates same,6000", SAMPLE,
             SAMPLE2, model);
    run(args, r);
    CU_ASSERT_EQUAL_FATAL(r->code, 0);
    TU_ASSERT_HAS(r->out, SAMPLE ": ");
    TU_ASSERT_HAS(r->out, SAMPLE2 ": ");
    TU_ASSERT_HAS(r->out, "overall: 2 files, ");
    TU_ASSERT_HAS(r->out, "\nopus   same as sotto per file");
    snprintf(args, sizeof args, "compare '%s' '%s' -m '%s' --opus-bitrates same,6000 --json",
             SAMPLE, SAMPLE2, model);
    run(args, r);
    CU_ASSERT_EQUAL_FATAL(r->code, 0);
    TU_ASSERT_HAS(r->out, "{\"files\":[{\"input\":");
    TU_ASSERT_HAS(r->out, "],\"overall\":{\"files\":2,");
    /* the overall bit/s is the duration-weighted mean of the files' */
    double br[3], secs[3];
    const char *p = r->out;
    for (int f = 0; f < 3; f++) {
        p = strstr(p, "\"seconds\":");
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        secs[f] = strtod(p + 10, NULL);
        const char *q = strstr(p, "\"bitrate_bps\":");
        CU_ASSERT_PTR_NOT_NULL_FATAL(q);
        br[f] = strtod(q + 14, NULL);
        p = q;
    }
    const double want = (br[0] * secs[0] + br[1] * secs[1]) / (secs[0] + secs[1]);
    CU_ASSERT(fabs(secs[2] - (secs[0] + secs[1])) < 1e-3);
    CU_ASSERT(fabs(br[2] - want) < 0.2);
    /* 'same': Opus asked for Sotto's bitrate of that file, rounded to 100 */
    const char *same = strstr(r->out, " bit/s (= sotto)");
    CU_ASSERT_PTR_NOT_NULL(same);
    /* --out and --plot take one input */
    snprintf(args, sizeof args, "compare '%s' '%s' -m '%s' --out '%s'", SAMPLE, SAMPLE2, model,
             tmpdir);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 2);
    TU_ASSERT_HAS(r->err, "take one INPUT");
    free(r);
}

static void test_errors(void)
{
    tu_cli_result *r = malloc(sizeof *r);
    char args[2048], model[600];
    snprintf(model, sizeof model, "%s", tu_data_path("flexicodec/encode-audio-small.gguf"));
    static const char *const bad[] = {
        "--opus-bitrates 6000,,8000", "--opus-bitrates 100", "--opus-bitrates abc",
        "--threshold 2",             "--rate 0",            "--rate 13",
        "--threshold 0.9 --rate 5",  "--quantizers 1.5",    "--threads 0",
        "--bogus",                   "--plot",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(args, sizeof args, "compare '%s' -m '%s' %s", SAMPLE, model, bad[i]);
        run(args, r);
        if (r->code != 2) fprintf(stderr, "'%s' gave %d\n", bad[i], r->code);
        CU_ASSERT_EQUAL(r->code, 2);
    }
    run("compare -m x.gguf", r); /* no input */
    CU_ASSERT_EQUAL(r->code, 2);
    run("compare " SAMPLE, r); /* no model */
    CU_ASSERT_EQUAL(r->code, 2);

    snprintf(args, sizeof args, "compare '%s/missing.wav' -m '%s'", tmpdir, model);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 3);
    TU_ASSERT_HAS(r->err, "missing.wav");

    snprintf(args, sizeof args, "compare '%s' -m '%s/none.gguf'", SAMPLE, tmpdir);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 4);
    snprintf(args, sizeof args, "compare '%s' -m '%s'", SAMPLE,
             tu_data_path("vocos/mel-small.gguf"));
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 4);

    snprintf(args, sizeof args, "compare '%s' -m '%s' --out '%s/no/such/dir'", SAMPLE, model,
             tmpdir);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 5);

    run("compare --help", r);
    CU_ASSERT_EQUAL(r->code, 0);
    TU_ASSERT_HAS(r->out, "usage: sotto compare");
    free(r);
}

int main(void)
{
    if (tu_make_tmpdir("sotto_cli_compare", tmpdir, sizeof tmpdir)) {
        fprintf(stderr, "no usable temporary folder\n");
        return 1;
    }
    tu_cli_result *probe = malloc(sizeof *probe);
    char args[1024];
    snprintf(args, sizeof args, "compare '%s' -m '%s' --opus-bitrates 6000 --rate 1", SAMPLE,
             tu_data_path("flexicodec/encode-audio-small.gguf"));
    run(args, probe);
    const int no_opus = probe->code == 8;
    free(probe);
    int rc;
    if (no_opus) {
        fprintf(stderr, "sotto was built without libopus (exit 8): skipping\n");
        rc = TU_SKIP;
    } else {
        static const tu_test tests[] = {
            {"compare table: codec and Opus rows, bitrates, scores, WAVs", test_table},
            {"compare --plot writes a PNG of the spectrograms", test_plot},
            {"compare several inputs: overall table, same-bitrate Opus, JSON", test_several},
            {"compare errors and exit codes", test_errors},
            {NULL, NULL},
        };
        rc = tu_run_suite("cli_compare", tests);
    }
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
