/*
 * `sotto bench` end to end with the two small models (the vocos-16k-mini vocoder and the
 * FlexiCodec model with the encoder), --seconds 2 --reps 1 --threads 1: exit 0, the table's
 * rows, the JSON's keys, positive figures; bad arguments (2), a missing model (4), a missing
 * input (3). Skips (77) when the apps are not built.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#ifdef SOTTO_CLI_PATH
#define VOCODER "../../samples/models/vocos-16k-mini.gguf"
#define CODEC "flexicodec/encode-audio-small.gguf"

static char tmpdir[512], voc_path[600], codec_path[600];

static void run(const char *args, tu_cli_result *r)
{
    tu_cli_run(SOTTO_CLI_PATH, tmpdir, args, r);
}

/* Every number after each occurrence of "key": must be > 0; returns how many were seen. */
static int positive_values(const char *json, const char *key)
{
    int n = 0;
    for (const char *p = strstr(json, key); p; p = strstr(p + 1, key)) {
        double v = strtod(p + strlen(key), NULL);
        CU_ASSERT(v > 0);
        n++;
    }
    return n;
}

static void test_vocoder(void)
{
    tu_cli_result *r = malloc(sizeof *r);
    char args[2048];
    snprintf(args, sizeof args, "bench -m '%s' --seconds 2 --reps 1 --threads 1", voc_path);
    run(args, r);
    if (r->code != 0) fprintf(stderr, "exit %d\n%s\n%s\n", r->code, r->out, r->err);
    CU_ASSERT_EQUAL(r->code, 0);
    TU_ASSERT_HAS(r->out, "vocoder");
    TU_ASSERT_HAS(r->out, "look-ahead");
    TU_ASSERT_HAS(r->out, "x real time");
    TU_ASSERT_HAS(r->out, "offline");
    TU_ASSERT_HAS(r->out, "streaming       1");
    TU_ASSERT_HAS(r->out, "streaming       4");
    TU_ASSERT_HAS(r->out, "streaming      16");
    TU_ASSERT_HAS(r->out, "peak RSS");

    snprintf(args, sizeof args, "bench -m '%s' --seconds 2 --reps 1 --threads 1 --json",
             voc_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    CU_ASSERT(r->out[0] == '{');
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "}\n"));
    TU_ASSERT_HAS(r->out, "\"kind\":\"vocoder\"");
    TU_ASSERT_HAS(r->out, "\"input\":\"synthetic\"");
    TU_ASSERT_HAS(r->out, "\"mode\":\"offline\"");
    TU_ASSERT_HAS(r->out, "\"mode\":\"streaming\"");
    TU_ASSERT_HAS(r->out, "\"lookahead_ms\":");
    CU_ASSERT_EQUAL(positive_values(r->out, "\"x_real_time\":"), 4);
    CU_ASSERT_EQUAL(positive_values(r->out, "\"p50_ms\":"), 4);
    CU_ASSERT_EQUAL(positive_values(r->out, "\"p99_ms\":"), 4);
    CU_ASSERT_EQUAL(positive_values(r->out, "\"seconds\":"), 1);
    CU_ASSERT_EQUAL(positive_values(r->out, "\"peak_rss_mb\":"), 1);
    free(r);
}

static void test_codec(void)
{
    tu_cli_result *r = malloc(sizeof *r);
    char args[2048];
    snprintf(args, sizeof args, "bench -m '%s' --seconds 2 --reps 1 --threads 1", codec_path);
    run(args, r);
    if (r->code != 0) fprintf(stderr, "exit %d\n%s\n%s\n", r->code, r->out, r->err);
    CU_ASSERT_EQUAL(r->code, 0);
    TU_ASSERT_HAS(r->out, "codec");
    TU_ASSERT_HAS(r->out, "x real time");
    TU_ASSERT_HAS(r->out, "encode");
    TU_ASSERT_HAS(r->out, "decode");
    TU_ASSERT_HAS(r->out, "peak RSS");

    snprintf(args, sizeof args, "bench -m '%s' --seconds 2 --reps 1 --threads 1 --json",
             codec_path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    CU_ASSERT(r->out[0] == '{');
    TU_ASSERT_HAS(r->out, "\"kind\":\"codec\"");
    TU_ASSERT_HAS(r->out, "\"mode\":\"encode\"");
    TU_ASSERT_HAS(r->out, "\"mode\":\"decode\"");
    CU_ASSERT_EQUAL(positive_values(r->out, "\"x_real_time\":"), 2);
    CU_ASSERT_EQUAL(positive_values(r->out, "\"peak_rss_mb\":"), 1);
    free(r);
}

static void test_errors(void)
{
    tu_cli_result *r = malloc(sizeof *r);
    char args[2048];
    static const char *const bad[] = {"--reps 0", "--reps 1.5", "--seconds 0", "--seconds x",
                                      "--threads 0", "--threads 1,,2", "--chunks 5000",
                                      "--bogus", "a.wav b.wav"};
    for (int i = 0; i < 9; i++) {
        snprintf(args, sizeof args, "bench -m '%s' %s", voc_path, bad[i]);
        run(args, r);
        if (r->code != 2) fprintf(stderr, "%s: exit %d, %s\n", bad[i], r->code, r->err);
        CU_ASSERT_EQUAL(r->code, 2);
    }
    run("bench --seconds 2", r); /* no model */
    CU_ASSERT_EQUAL(r->code, 2);
    snprintf(args, sizeof args, "bench -m '%s/missing.gguf' --seconds 2", tmpdir);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 4);
    TU_ASSERT_HAS(r->err, "missing.gguf");
    snprintf(args, sizeof args, "bench -m '%s' '%s/missing.wav' --reps 1", voc_path, tmpdir);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 3);
    TU_ASSERT_HAS(r->err, "missing.wav");
    free(r);
}

int main(void)
{
    if (tu_make_tmpdir("sotto_cli_bench", tmpdir, sizeof tmpdir)) {
        fprintf(stderr, "no usable temporary folder\n");
        return 1;
    }
    snprintf(voc_path, sizeof voc_path, "%s", tu_data_path(VOCODER));
    snprintf(codec_path, sizeof codec_path, "%s", tu_data_path(CODEC));
    static const tu_test tests[] = {
        {"vocoder: table and JSON", test_vocoder},
        {"codec: table and JSON", test_codec},
        {"bad arguments, missing model and input", test_errors},
        {NULL, NULL},
    };
    int rc = tu_run_suite("cli_bench", tests);
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
