/*
 * `sotto-live` without audio hardware: the --file-in/--file-out mode runs the real-time
 * processing loop (rings + processing thread) on a bundled clip through vocos-16k-mini, for
 * several block sizes; the output has the input's length and matches `sotto vocode --float`
 * on the same file within 1e-5 (the samples past the vocoder's last full hop are zero).
 * --list-devices exits 0 whether or not there are devices. Skips (77) when sotto-live (needs
 * PortAudio) or sotto is not built.
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
            for (int64_t i = n_ref; i < n_out; i++) tail = fmax(tail, fabs(got[i]));
            for (int64_t i = 0; i < n_ref; i++) energy += (double)got[i] * got[i];
            CU_ASSERT_EQUAL(tail, 0.0);
            CU_ASSERT(energy > 1.0); /* real audio, not silence */
        }
        sotto_audio_free(got, NULL);
    }
    sotto_audio_free(x, NULL);
    sotto_audio_free(want, NULL);
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
    snprintf(args, sizeof args, "--file-in '%s/missing.wav' --file-out '%s/o.wav' -m '%s'",
             tmpdir, tmpdir, MODEL);
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
