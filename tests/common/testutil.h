/*
 * Test helpers: a CUnit runner that exits non-zero on any failure (77 for skip), golden
 * fixture loading through our own GGUF reader, tolerance comparisons that report where they
 * fail, and seeded random data that prints its seed so a failure can be rerun.
 */
#ifndef SOTTO_TESTUTIL_H
#define SOTTO_TESTUTIL_H

#include <CUnit/Basic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/gguf.h"

#define TU_SKIP 77

typedef struct tu_test {
    const char *name;
    void (*fn)(void);
} tu_test;

/* Registers one suite with the tests (NULL-terminated by a {NULL, NULL} entry), runs it, and
 * returns the process exit code: 0 when all pass, 1 otherwise. */
int tu_run_suite(const char *suite, const tu_test *tests);

/* Path of a fixture: $SOTTO_TEST_DATA/<rel> (or "data/<rel>"). Returns a static buffer. */
const char *tu_data_path(const char *rel);

/* Opens a golden fixture (a GGUF file under tests/data). Fails the test (CU_FAIL) and returns
 * NULL when it cannot be opened. */
sotto_gguf *tu_golden_open(const char *rel);
/* A fixture tensor as freshly allocated float32 (free with free()); *n gets the count.
 * Fails the test and returns NULL when missing. shape (may be NULL) gets 4 dims. */
float *tu_golden_f32(const sotto_gguf *g, const char *name, int64_t *n, int64_t shape[4]);

/* Statistics of got vs want over n values. */
typedef struct tu_diff {
    double max_abs;
    int64_t argmax;
    double nmse; /* sum (g-w)^2 / max(sum w^2, 1e-30) */
    int non_finite;
} tu_diff;
tu_diff tu_compare(const float *got, const float *want, int64_t n);

/* CUnit assertion: max-abs ≤ tol_abs and NMSE ≤ tol_nmse (pass a negative value to skip
 * one of the two). Prints the figures either way, so logs record the achieved error. */
#define TU_ASSERT_CLOSE(what, got, want, n, tol_abs, tol_nmse)                                 \
    CU_ASSERT_TRUE(tu_check_close((what), (got), (want), (n), (tol_abs), (tol_nmse),          \
                                  __FILE__, __LINE__))
int tu_check_close(const char *what, const float *got, const float *want, int64_t n,
                   double tol_abs, double tol_nmse, const char *file, int line);

/* Deterministic RNG (xorshift64*). tu_seed() reads SOTTO_TEST_SEED or uses a fixed default
 * and prints "seed=N (rerun with SOTTO_TEST_SEED=N)". */
uint64_t tu_seed(void);
typedef struct tu_rng {
    uint64_t s;
} tu_rng;
void tu_rng_init(tu_rng *r, uint64_t seed);
uint32_t tu_rng_u32(tu_rng *r);
float tu_rng_uniform(tu_rng *r, float lo, float hi);
float tu_rng_normal(tu_rng *r);
void tu_fill_uniform(tu_rng *r, float *x, size_t n, float lo, float hi);

/* ---- running the `sotto` binary (tests of the command line) ---------------------------- */

typedef struct tu_cli_result {
    int code; /* exit status, -1 if it did not exit normally */
    char out[16384];
    char err[8192];
} tu_cli_result;

/* Makes a fresh temporary folder named after `tag` (under $TMPDIR or /tmp) into dir; returns
 * 0, or -1 when it cannot be made or its path holds a quote. */
int tu_make_tmpdir(const char *tag, char *dir, size_t size);
/* 1 when both files can be read and hold the same bytes, else 0. */
int tu_files_equal(const char *path_a, const char *path_b);
/* Runs `<cli> <args>` (args already shell-quoted) with stdout/stderr captured through files in
 * tmpdir (both truncated to the result's buffers). */
void tu_cli_run(const char *cli, const char *tmpdir, const char *args, tu_cli_result *r);
/* CUnit check that text contains needle, printing the text when it does not. */
#define TU_ASSERT_HAS(text, needle)                                                            \
    do {                                                                                       \
        if (!strstr((text), (needle))) {                                                       \
            fprintf(stderr, "missing <%s> in:\n%s\n", (needle), (text));                      \
            CU_FAIL("output lacks an expected line");                                          \
        }                                                                                      \
    } while (0)

#endif
