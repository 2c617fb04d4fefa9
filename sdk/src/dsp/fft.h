/*
 * Real FFT plans on the CPU (KissFFT, mixed radix, so every even size works: 400, 512, 1024,
 * 1280, 2048, ...). A plan is made once per size and per stream; the transforms then run on
 * caller buffers without allocating. Spectra are n/2+1 complex bins stored interleaved
 * (re, im, re, im, ...), the layout of C99 `float _Complex` and of KissFFT's kiss_fft_cpx.
 *
 * Scaling follows numpy/torch ("backward" norm): the forward transform is unscaled,
 *     X[k] = sum_n x[n] e^{-2 pi i k n / N},
 * the inverse divides by N,
 *     x[n] = (1/N) sum_k X[k] e^{+2 pi i k n / N}   (Hermitian symmetry implied),
 * so inverse(forward(x)) == x. The inverse ignores the imaginary parts of the DC and Nyquist
 * bins, as torch.fft.irfft does.
 *
 * Threads: a plan holds KissFFT's scratch, so one plan serves one thread at a time.
 */
#ifndef SOTTO_DSP_FFT_H
#define SOTTO_DSP_FFT_H

#include "core/core.h"

typedef struct sotto_fft sotto_fft;

/*
 * Creates a plan for real transforms of size n (even, 2 ≤ n ≤ 1<<24).
 * [in]  n      transform size in samples
 * [in]  alloc  allocator hooks (NULL: the C library); copied into the plan
 * [out] out    the plan, or NULL on failure
 * [out] st     optional detail of a failure
 * Errors: SOTTO_ERR_INVALID_ARG (out NULL, odd or out-of-range n), SOTTO_ERR_OUT_OF_MEMORY.
 */
int sotto_fft_create(int n, const sotto_alloc *alloc, sotto_fft **out, sotto_status *st);
/* Frees a plan (NULL is fine). */
void sotto_fft_destroy(sotto_fft *f);

/* The transform size n. */
int sotto_fft_size(const sotto_fft *f);

/*
 * Forward transform, unscaled.
 * [in]  x  n real samples
 * [out] X  (n/2+1) complex bins, interleaved: 2·(n/2+1) floats. Must not overlap x.
 */
void sotto_fft_forward(sotto_fft *f, const float *x, float *X);

/*
 * Inverse transform, scaled by 1/n (so it undoes sotto_fft_forward).
 * [in]  X  (n/2+1) complex bins, interleaved
 * [out] x  n real samples. Must not overlap X.
 */
void sotto_fft_inverse(sotto_fft *f, const float *X, float *x);

/* Inverse transform without the 1/n factor, for callers that fold it into a window. */
void sotto_fft_inverse_unscaled(sotto_fft *f, const float *X, float *x);

#endif
