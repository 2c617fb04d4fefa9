/* Test helpers; see testutil.h. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int tu_run_suite(const char *suite, const tu_test *tests)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite(suite, NULL, NULL);
    if (!s) {
        CU_cleanup_registry();
        return 1;
    }
    for (const tu_test *t = tests; t->name; t++) {
        if (!CU_add_test(s, t->name, t->fn)) {
            CU_cleanup_registry();
            return 1;
        }
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (run == 0) return 1;
    return failed ? 1 : 0;
}

const char *tu_data_path(const char *rel)
{
    static char buf[4096];
    const char *root = getenv("SOTTO_TEST_DATA");
    snprintf(buf, sizeof buf, "%s/%s", root && *root ? root : "data", rel);
    return buf;
}

sotto_gguf *tu_golden_open(const char *rel)
{
    sotto_gguf *g = NULL;
    sotto_status st;
    const char *path = tu_data_path(rel);
    int rc = sotto_gguf_open_file(path, 1, NULL, &g, &st);
    if (rc != SOTTO_OK) {
        fprintf(stderr, "cannot open fixture %s: %s\n", path, st.message);
        CU_FAIL("fixture missing or unreadable");
        return NULL;
    }
    return g;
}

float *tu_golden_f32(const sotto_gguf *g, const char *name, int64_t *n, int64_t shape[4])
{
    const sotto_gguf_tensor *t = sotto_gguf_find_tensor(g, name);
    if (!t) {
        fprintf(stderr, "fixture has no tensor '%s'\n", name);
        CU_FAIL("fixture tensor missing");
        return NULL;
    }
    float *out = malloc((size_t)(t->n_elems > 0 ? t->n_elems : 1) * sizeof(float));
    if (!out || sotto_gguf_tensor_to_f32(t, out) != SOTTO_OK) {
        free(out);
        CU_FAIL("fixture tensor not convertible to f32");
        return NULL;
    }
    if (n) *n = t->n_elems;
    if (shape)
        for (int i = 0; i < 4; i++) shape[i] = t->shape[i];
    return out;
}

tu_diff tu_compare(const float *got, const float *want, int64_t n)
{
    tu_diff d = {0, -1, 0, 0};
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(got[i]) || !isfinite(want[i])) {
            d.non_finite++;
            continue;
        }
        double e = (double)got[i] - (double)want[i];
        if (fabs(e) > d.max_abs) {
            d.max_abs = fabs(e);
            d.argmax = i;
        }
        num += e * e;
        den += (double)want[i] * want[i];
    }
    d.nmse = num / (den > 1e-30 ? den : 1e-30);
    return d;
}

int tu_check_close(const char *what, const float *got, const float *want, int64_t n,
                   double tol_abs, double tol_nmse, const char *file, int line)
{
    if (!got || !want) {
        fprintf(stderr, "%s:%d: %s: missing data\n", file, line, what);
        return 0;
    }
    tu_diff d = tu_compare(got, want, n);
    int ok = d.non_finite == 0 && (tol_abs < 0 || d.max_abs <= tol_abs) &&
             (tol_nmse < 0 || d.nmse <= tol_nmse);
    fprintf(stderr, "%s:%d: %s: n=%lld max_abs=%.3g (at %lld) nmse=%.3g non_finite=%d %s\n",
            file, line, what, (long long)n, d.max_abs, (long long)d.argmax, d.nmse,
            d.non_finite, ok ? "ok" : "FAIL");
    if (!ok && d.argmax >= 0)
        fprintf(stderr, "    got %.9g want %.9g (tolerance abs %.3g nmse %.3g)\n",
                got[d.argmax], want[d.argmax], tol_abs, tol_nmse);
    return ok;
}

uint64_t tu_seed(void)
{
    const char *e = getenv("SOTTO_TEST_SEED");
    uint64_t seed = e && *e ? strtoull(e, NULL, 10) : 20261122u;
    fprintf(stderr, "seed=%llu (rerun with SOTTO_TEST_SEED=%llu)\n", (unsigned long long)seed,
            (unsigned long long)seed);
    return seed;
}

void tu_rng_init(tu_rng *r, uint64_t seed)
{
    r->s = seed ? seed : 0x9e3779b97f4a7c15ull;
}

uint32_t tu_rng_u32(tu_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return (uint32_t)((r->s * 0x2545f4914f6cdd1dull) >> 32);
}

float tu_rng_uniform(tu_rng *r, float lo, float hi)
{
    return lo + (hi - lo) * (float)(tu_rng_u32(r) >> 8) * (1.0f / 16777216.0f);
}

float tu_rng_normal(tu_rng *r)
{
    float u1 = tu_rng_uniform(r, 1e-7f, 1.0f), u2 = tu_rng_uniform(r, 0.0f, 1.0f);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}

void tu_fill_uniform(tu_rng *r, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) x[i] = tu_rng_uniform(r, lo, hi);
}

int tu_make_tmpdir(const char *tag, char *dir, size_t size)
{
    const char *base = getenv("TMPDIR");
    snprintf(dir, size, "%s/%s_XXXXXX", base && *base ? base : "/tmp", tag);
    if (!mkdtemp(dir) || strchr(dir, '\'')) return -1;
    return 0;
}

static void slurp(const char *path, char *buf, size_t size)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f) return;
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
}

void tu_cli_run(const char *cli, const char *tmpdir, const char *args, tu_cli_result *r)
{
    char cmd[8192], out[600], err[600];
    snprintf(out, sizeof out, "%s/out.txt", tmpdir);
    snprintf(err, sizeof err, "%s/err.txt", tmpdir);
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s' 2>'%s'", cli, args, out, err);
    int st = system(cmd);
    r->code = st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    slurp(out, r->out, sizeof r->out);
    slurp(err, r->err, sizeof r->err);
    remove(out);
    remove(err);
}

int tu_files_equal(const char *path_a, const char *path_b)
{
    FILE *a = fopen(path_a, "rb"), *b = fopen(path_b, "rb");
    int same = a && b;
    while (same) {
        const int ca = fgetc(a), cb = fgetc(b);
        if (ca != cb) same = 0;
        if (ca == EOF || cb == EOF) break;
    }
    if (a) fclose(a);
    if (b) fclose(b);
    return same;
}
