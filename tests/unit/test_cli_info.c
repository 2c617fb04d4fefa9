/*
 * `sotto info` end to end: runs the built binary (its path comes from the build as
 * SOTTO_CLI_PATH) on the Python-written fixture, on broken and missing files and with bad
 * arguments, and checks stdout, stderr and the exit codes documented in apps/sotto/cli.h.
 * Skips (77) when the apps are not part of the build.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#ifdef SOTTO_CLI_PATH
static char tmpdir[512];

typedef tu_cli_result run_result;

static void run(const char *args, run_result *r)
{
    tu_cli_run(SOTTO_CLI_PATH, tmpdir, args, r);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

#define HAS TU_ASSERT_HAS

static void test_sample(void)
{
    char args[1200];
    run_result *r = malloc(sizeof *r);
    snprintf(args, sizeof args, "info '%s'", tu_data_path("gguf/sample.gguf"));
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    CU_ASSERT_STRING_EQUAL(r->err, "");
    HAS(r->out, "gguf version: 3\n");
    HAS(r->out, "alignment:    32\n");
    HAS(r->out, "architecture: sotto-golden\n");
    HAS(r->out, "name:         gguf-sample\n");
    HAS(r->out, "metadata (24 keys):\n");
    HAS(r->out, "  sample.u8 = 200\n");
    HAS(r->out, "  sample.f64 = -1e-300\n");
    HAS(r->out, "  sample.str = \"h\xc3\xa9llo \\\"world\\\"\"\n");
    HAS(r->out, "  sample.arr_i32 = [-10, -9, -8, -7, -6, -5, -4, -3, ... (20 int32)]\n");
    HAS(r->out, "  sample.arr_str = [\"a\", \"bc\", \"\xc3\xbc\"]\n");
    HAS(r->out, "tensors (5):\n");
    HAS(r->out, "t.f16_3d       f16    [2, 3, 4]");
    HAS(r->out, "t.f16_special  f16    [1, 2, 1, 3]");
    HAS(r->out, "total: 5 tensors, 44 parameters, 116 bytes\n");

    snprintf(args, sizeof args, "info --json '%s'", tu_data_path("gguf/sample.gguf"));
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 0);
    HAS(r->out, "\"version\": 3,");
    HAS(r->out, "\"architecture\": \"sotto-golden\",");
    HAS(r->out, "{\"key\": \"sample.u64\", \"type\": \"uint64\", \"value\": 9223372036854775813}");
    HAS(r->out, "\"type\": \"array[string]\", \"value\": [\"a\", \"bc\", \"\xc3\xbc\"]}");
    HAS(r->out, "{\"name\": \"t.f32_2d\", \"dtype\": \"f32\", \"shape\": [2, 3], \"bytes\": 24");
    HAS(r->out, "\"totals\": {\"tensors\": 5, \"parameters\": 44, \"bytes\": 116}");
    free(r);
}

static void test_broken(void)
{
    run_result *r = malloc(sizeof *r);
    char path[700], args[1400];
    /* the fixture cut short: its last tensor's data runs past the end */
    FILE *in = fopen(tu_data_path("gguf/sample.gguf"), "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    char bytes[1500];
    size_t n = fread(bytes, 1, sizeof bytes, in);
    fclose(in);
    CU_ASSERT_EQUAL_FATAL(n, sizeof bytes);
    snprintf(path, sizeof path, "%s/cut.gguf", tmpdir);
    FILE *out = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    fwrite(bytes, 1, n, out);
    fclose(out);
    snprintf(args, sizeof args, "info '%s'", path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 3);
    CU_ASSERT_STRING_EQUAL(r->out, "");
    CU_ASSERT_EQUAL(count_lines(r->err), 1);
    HAS(r->err, "sotto info: ");
    HAS(r->err, path);
    HAS(r->err, "runs past the end of the file");
    remove(path);

    /* not a GGUF at all */
    snprintf(path, sizeof path, "%s/text.gguf", tmpdir);
    out = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    fputs("hello, this is not a model\n", out);
    fclose(out);
    snprintf(args, sizeof args, "info --json '%s'", path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 3);
    CU_ASSERT_STRING_EQUAL(r->out, "");
    HAS(r->err, "not a GGUF file");
    remove(path);

    /* missing */
    snprintf(path, sizeof path, "%s/missing.gguf", tmpdir);
    snprintf(args, sizeof args, "info '%s'", path);
    run(args, r);
    CU_ASSERT_EQUAL(r->code, 3);
    CU_ASSERT_EQUAL(count_lines(r->err), 1);
    HAS(r->err, path);
    HAS(r->err, "No such file");
    free(r);
}

static void test_usage(void)
{
    run_result *r = malloc(sizeof *r);
    run("info", r);
    CU_ASSERT_EQUAL(r->code, 2);
    HAS(r->err, "missing FILE");
    run("info --frobnicate x.gguf", r);
    CU_ASSERT_EQUAL(r->code, 2);
    HAS(r->err, "unknown option '--frobnicate'");
    run("info a.gguf b.gguf", r);
    CU_ASSERT_EQUAL(r->code, 2);
    run("info --help", r);
    CU_ASSERT_EQUAL(r->code, 0);
    HAS(r->out, "usage: sotto info");
    CU_ASSERT_STRING_EQUAL(r->err, "");
    /* --version: the version, the CPU features the library uses, the CUDA devices it sees */
    run("--version", r);
    CU_ASSERT_EQUAL(r->code, 0);
    char want[64];
    snprintf(want, sizeof want, "sotto %s\ncpu:", sotto_version_string());
    HAS(r->out, want);
    HAS(r->out, (sotto_cpu_features() & SOTTO_CPU_AVX512FP16) ? "(--f16-arithmetic available)"
                                                                : "\ncuda: ");
    HAS(r->out, "\ncuda: ");
    free(r);
}

int main(void)
{
    if (tu_make_tmpdir("sotto_cli_info", tmpdir, sizeof tmpdir) ||
        strchr(tu_data_path(""), '\'')) {
        fprintf(stderr, "no usable temporary folder\n");
        return 1;
    }
    static const tu_test tests[] = {
        {"info on the Python fixture", test_sample},
        {"info on broken and missing files", test_broken},
        {"info usage errors", test_usage},
        {NULL, NULL},
    };
    int rc = tu_run_suite("cli_info", tests);
    rmdir(tmpdir);
    return rc;
}
#else
int main(void)
{
    fprintf(stderr, "the sotto app is not built (SOTTO_APPS=OFF): skipping\n");
    return TU_SKIP;
}
#endif
