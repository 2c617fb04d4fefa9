/*
 * `sotto vocode` end to end: analysis–synthesis of a bundled sample through a small Vocos
 * fixture model (16 kHz), resampling in and out for a 24 kHz model, synthesis from a feature
 * file, the JSON summary, and the documented exit codes for a missing file, a model of the
 * wrong kind and bad arguments. Skips (77) when the apps are not built.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/cuda_probe.h"
#include "sotto/sotto_audio.h"
#include "testutil.h"

#ifdef SOTTO_CLI_PATH
static char tmpdir[512];
#define SAMPLE "../samples/speech/cmuarctic_axb_a0004_16k.flac"

static void run(const char *args, tu_cli_result *r)
{
    tu_cli_run(SOTTO_CLI_PATH, tmpdir, args, r);
}

static int read_len(const char *path, int *rate, int64_t *n)
{
    float *x = NULL;
    sotto_audio_info info;
    sotto_status st;
    int rc = sotto_audio_read_file(path, NULL, &x, n, &info, &st);
    if (rc) fprintf(stderr, "%s: %s\n", path, st.message);
    *rate = info.out_rate_hz;
    sotto_audio_free(x, NULL);
    return rc;
}

static void test_analysis_synthesis(void)
{
    tu_cli_result *r = malloc(sizeof *r);
    char args[2048], out[600];
    int rate;
    int64_t n_in, n_out;
    CU_ASSERT_EQUAL_FATAL(read_len(SAMPLE, &rate, &n_in), SOTTO_OK);

    /* Model at the file's rate: center ISTFT gives hop·floor(N/hop) samples. */
    snprintf(out, sizeof out, "%s/a.wav", tmpdir);
    snprintf(args, sizeof args, "vocode '%s' -o '%s' -m '%s'", SAMPLE, out,
             tu_data_path("vocos/mel-small.gguf"));
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    TU_ASSERT_HAS(r->err, "RTF");
    TU_ASSERT_HAS(r->err, "real time");
    CU_ASSERT_EQUAL(read_len(out, &rate, &n_out), SOTTO_OK);
    CU_ASSERT_EQUAL(rate, 16000);
    CU_ASSERT_EQUAL(n_out, n_in / 64 * 64);

    /* A 24 kHz model: resampled in and back out to the file's 16 kHz, same duration ±1 hop. */
    snprintf(out, sizeof out, "%s/b.flac", tmpdir);
    snprintf(args, sizeof args, "vocode '%s' -o '%s' -m '%s' --json --threads 2", SAMPLE, out,
             tu_data_path("vocos/encodec-small.gguf"));
    run(args, r);
    /* EnCodec-feature models have no audio front end: a clear error, not a crash. */
    CU_ASSERT_EQUAL(r->code, 4);
    TU_ASSERT_HAS(r->err, "not audio");

    /* Features from a file (the EnCodec fixture's 'features' tensor), written at 24 kHz. */
    snprintf(out, sizeof out, "%s/c.wav", tmpdir);
    char feat[600]; /* tu_data_path returns one static buffer: copy before the next call */
    snprintf(feat, sizeof feat, "%s", tu_data_path("vocos/encodec-small_golden.gguf"));
    snprintf(args, sizeof args, "vocode --features '%s' -o '%s' -m '%s' --bandwidth 1 --json",
             feat, out, tu_data_path("vocos/encodec-small.gguf"));
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    TU_ASSERT_HAS(r->out, "\"output_rate_hz\":24000");
    TU_ASSERT_HAS(r->out, "\"output_samples\":24000");
    CU_ASSERT_EQUAL(read_len(out, &rate, &n_out), SOTTO_OK);
    CU_ASSERT_EQUAL(rate, 24000);
    CU_ASSERT_EQUAL(n_out, 24000); /* 75 frames × hop 320, "same" padding */

    /* --f16-arithmetic on an f16 model: used exactly when the CPU has AVX512-FP16, and the
     * summary says which arithmetic ran; same length as without it. */
    snprintf(out, sizeof out, "%s/d.wav", tmpdir);
    snprintf(args, sizeof args, "vocode '%s' -o '%s' -m '%s' --f16-arithmetic --json", SAMPLE,
             out, tu_data_path("vocos/mel-small-f16.gguf"));
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    const int have = (sotto_cpu_features() & SOTTO_CPU_AVX512FP16) != 0;
    TU_ASSERT_HAS(r->out, have ? "\"f16_arithmetic\":1" : "\"f16_arithmetic\":0");
    CU_ASSERT_EQUAL(read_len(out, &rate, &n_out), SOTTO_OK);
    CU_ASSERT_EQUAL(n_out, n_in / 64 * 64);
    snprintf(args, sizeof args, "vocode '%s' -o '%s' -m '%s' --f16-arithmetic", SAMPLE, out,
             tu_data_path("vocos/mel-small-f16.gguf"));
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    TU_ASSERT_HAS(r->err, have ? "binary16 arithmetic" : "f32 arithmetic: no AVX512-FP16");
    free(r);
}

static void test_errors(void)
{
    tu_cli_result *r = malloc(sizeof *r);
    char args[2048], out[600];
    snprintf(out, sizeof out, "%s/e.wav", tmpdir);

    snprintf(args, sizeof args, "vocode '%s/missing.wav' -o '%s' -m '%s'", tmpdir, out,
             tu_data_path("vocos/mel-small.gguf"));
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 3);
    TU_ASSERT_HAS(r->err, "missing.wav");

    snprintf(args, sizeof args, "vocode '%s' -o '%s' -m '%s'", SAMPLE, out,
             tu_data_path("gguf/sample.gguf"));
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 4);
    TU_ASSERT_HAS(r->err, "not a vocoder");

    snprintf(args, sizeof args, "vocode '%s' -o '%s' -m '%s/none.gguf'", SAMPLE, out, tmpdir);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 4);
    TU_ASSERT_HAS(r->err, "none.gguf");

    run("vocode " SAMPLE, r); /* no -o */
    CU_ASSERT_EQUAL(r->code, 2);
    run("vocode --threads 0 a.wav -o b.wav", r);
    CU_ASSERT_EQUAL(r->code, 2);
    run("vocode --bogus", r);
    CU_ASSERT_EQUAL(r->code, 2);
    run("vocode --help", r);
    CU_ASSERT_EQUAL(r->code, 0);
    TU_ASSERT_HAS(r->out, "usage: sotto vocode");

    /* An output that cannot be created. */
    snprintf(args, sizeof args, "vocode '%s' -o '%s/no/such/dir/x.wav' -m '%s'", SAMPLE, tmpdir,
             tu_data_path("vocos/mel-small.gguf"));
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 5);

    /* --gpu: a bad index is a usage error; a missing device exit 8 with the library's reason,
     * a present one runs there and says so */
    run("vocode --gpu x a.wav -o b.wav", r);
    CU_ASSERT_EQUAL(r->code, 2);
    TU_ASSERT_HAS(r->err, "--gpu");
    run("vocode --gpu 64 a.wav -o b.wav", r);
    CU_ASSERT_EQUAL(r->code, 2);
    snprintf(args, sizeof args, "vocode '%s' -o '%s' -m '%s' --gpu 0", SAMPLE, out,
             tu_data_path("vocos/mel-small.gguf"));
    run(args, r);
    if (sotto_cuda_device_count() > 0) {
        CU_ASSERT_EQUAL(r->code, 0);
        TU_ASSERT_HAS(r->err, "on CUDA device 0");
    } else {
        CU_ASSERT_EQUAL(r->code, 8);
        TU_ASSERT_HAS(r->err, "no CUDA device");
    }
    /* --cpu: the CPU whatever exists; never together with --gpu */
    snprintf(args, sizeof args, "vocode '%s' -o '%s' -m '%s' --cpu --json", SAMPLE, out,
             tu_data_path("vocos/mel-small.gguf"));
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    TU_ASSERT_HAS(r->out, "\"backend\":\"cpu\"");
    run("vocode --cpu --gpu 0 a.wav -o b.wav", r);
    CU_ASSERT_EQUAL(r->code, 2);
    TU_ASSERT_HAS(r->err, "--cpu and --gpu");
    free(r);
}

int main(void)
{
    if (tu_make_tmpdir("sotto_cli_vocode", tmpdir, sizeof tmpdir)) {
        fprintf(stderr, "no usable temporary folder\n");
        return 1;
    }
    static const tu_test tests[] = {
        {"vocode analysis-synthesis and features", test_analysis_synthesis},
        {"vocode errors and exit codes", test_errors},
        {NULL, NULL},
    };
    int rc = tu_run_suite("cli_vocode", tests);
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
