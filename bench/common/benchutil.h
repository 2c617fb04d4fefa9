/*
 * What the benchmark programs share: a monotonic clock, the process's peak RSS, order
 * statistics of timings, the --threads list parser, the deterministic Vocos feature generator
 * (the PyTorch side of bench/vocos and bench/vocos_gpu makes the same numbers) and JSON string
 * output.
 */
#ifndef SOTTO_BENCHUTIL_H
#define SOTTO_BENCHUTIL_H

#include <stdint.h>

/* Seconds on a monotonic clock. */
double bench_now_s(void);
/* The process's peak resident set (getrusage ru_maxrss: kilobytes on Linux), -1 on failure. */
long bench_peak_rss_kb(void);
/* Sorts v[0..n) ascending. */
void bench_sort(double *v, int n);
/* Median of v[0..n) (sorts v in place); n ≥ 1. */
double bench_median(double *v, int n);
/* Nearest-rank percentile q (0..100) of an ascending array; 0 for n ≤ 0. */
double bench_percentile(const double *sorted, int n, double q);
/* A comma-separated list of integers in 1..hi into out[max]: the count, or -1 when malformed. */
int bench_parse_list(const char *s, int *out, int max, int hi);
/* n floats of a 32-bit LCG (Numerical Recipes constants, seed 12345), 24 high bits mapped to
 * [-8, 0), frame-major [T][dim]: log-mel values of speech span about this range. */
void bench_make_features(float *f, int64_t n);
/* s as a JSON string literal (quotes, backslashes and control characters escaped) on stdout. */
void bench_json_string(const char *s);

#endif
