/*
 * Sample-rate conversion of mono float audio with soxr at its "high quality" preset (SOXR_HQ:
 * 20-bit precision, about 120 dB of stop-band rejection, linear phase, pass band flat to 91.3 %
 * of the lower Nyquist frequency). soxr compensates its own filter delay, so output sample k
 * sits at time k / out_hz exactly as input sample j sits at j / in_hz; a stream only holds
 * output back until the input that determines it has arrived.
 *
 * Length rule (offline and streamed alike): n_in input samples become
 *     n_out = round_half_up(n_in · out_hz / in_hz) = floor((2·n_in·out_hz + in_hz) / (2·in_hz))
 * samples, computed in exact integer arithmetic. soxr's own flushed output is within one
 * sample of that; the stream trims the excess or pads zeros so the count is always exact.
 * Equal rates copy the input unchanged (no filtering at all).
 *
 * Offline and streamed outputs are identical: soxr's output does not depend on how the input
 * is chunked, and the stream trims and pads exactly as the offline call does (the tests check
 * this bit-exactly for chunk sizes 1, 7, 160 and 4096).
 *
 * Latency: a stream holds back output it cannot finish yet; sotto_resampler_pending_samples()
 * reports how much. It is bounded by soxr's filter and block lengths and depends on the rate
 * pair (measured for HQ: about 600 output samples for 48 kHz → 16 kHz, 900 for 48 kHz → 24 kHz,
 * up to about 8500 for 8 kHz → 48 kHz); see docs/audio.md.
 *
 * Memory: creation allocates the object through the caller's hooks; soxr allocates its own
 * filter tables and FIFOs with the C library. Push and flush never allocate in Sotto; soxr may
 * grow its FIFOs during the first pushes and then reuses them. Reset re-initialises soxr and
 * may allocate.
 *
 * Input must be finite (NaN/Inf are refused with SOTTO_ERR_BAD_AUDIO). Finite values near
 * float's range limit can still overflow inside the filter; the audio reader never passes
 * values beyond 2^20.
 *
 * Threads: one resampler serves one thread at a time; the offline call is reentrant.
 *
 * Usage (streaming)
 *     sotto_resampler *rs; if (sotto_resampler_create(48000, 16000, NULL, &rs, &st)) ...;
 *     for each chunk: int64_t cap = sotto_resampler_max_output(rs, n);
 *                     int64_t got = sotto_resampler_push(rs, chunk, n, out, cap);
 *     at the end:     while ((got = sotto_resampler_flush(rs, out, cap)) > 0) ...;
 *     sotto_resampler_destroy(rs);
 */
#ifndef SOTTO_DSP_RESAMPLE_H
#define SOTTO_DSP_RESAMPLE_H

#include <stdint.h>

#include "core/core.h"

/* Rates accepted anywhere in Sotto's resampling and audio I/O, in Hz. */
#define SOTTO_RESAMPLE_MIN_HZ 1000
#define SOTTO_RESAMPLE_MAX_HZ 768000
/* The most input samples one stream or offline call accepts in total (2^50, centuries of
 * audio); it keeps every length computation inside int64_t. */
#define SOTTO_RESAMPLE_MAX_SAMPLES ((int64_t)1 << 50)

typedef struct sotto_resampler sotto_resampler;

/*
 * Output length for n_in input samples under the length rule above.
 * [in] n_in    input samples, 0..SOTTO_RESAMPLE_MAX_SAMPLES
 * [in] in_hz   input rate, SOTTO_RESAMPLE_MIN_HZ..SOTTO_RESAMPLE_MAX_HZ
 * [in] out_hz  output rate, same range
 * Returns the length, or SOTTO_ERR_INVALID_ARG when an argument is out of range.
 */
int64_t sotto_resample_length(int64_t n_in, int in_hz, int out_hz);

/*
 * Resamples a whole signal in one call.
 * [in]  in        n_in samples at in_hz (finite values)
 * [in]  n_in      input length in samples, 0..SOTTO_RESAMPLE_MAX_SAMPLES
 * [in]  in_hz     input rate in Hz; [in] out_hz output rate in Hz (both in the range above)
 * [out] out       receives sotto_resample_length(n_in, in_hz, out_hz) samples; must not
 *                 overlap in
 * [in]  capacity  size of out in samples
 * [in]  alloc     allocator for the temporary stream (NULL: the C library)
 * [out] st        optional detail of a failure
 * Returns the number of samples written (the length rule), or SOTTO_ERR_INVALID_ARG,
 * SOTTO_ERR_BUFFER_TOO_SMALL (nothing written), SOTTO_ERR_BAD_AUDIO (a NaN or Inf input
 * sample, index named in st), SOTTO_ERR_OUT_OF_MEMORY, SOTTO_ERR_INTERNAL (soxr failed).
 */
int64_t sotto_resample(const float *in, int64_t n_in, int in_hz, int out_hz, float *out,
                       int64_t capacity, const sotto_alloc *alloc, sotto_status *st);

/*
 * Creates a streaming resampler.
 * [in]  in_hz, out_hz  rates in Hz, SOTTO_RESAMPLE_MIN_HZ..SOTTO_RESAMPLE_MAX_HZ
 * [in]  alloc          allocator hooks for the object (NULL: the C library); copied
 * [out] out            the resampler, or NULL on failure
 * [out] st             optional detail of a failure
 * Errors: SOTTO_ERR_INVALID_ARG, SOTTO_ERR_OUT_OF_MEMORY, SOTTO_ERR_INTERNAL (soxr failed).
 */
int sotto_resampler_create(int in_hz, int out_hz, const sotto_alloc *alloc, sotto_resampler **out,
                           sotto_status *st);

/* Frees a resampler (NULL is fine). */
void sotto_resampler_destroy(sotto_resampler *r);

/* Back to the freshly created state, same rates. Returns SOTTO_OK or SOTTO_ERR_INTERNAL. */
int sotto_resampler_reset(sotto_resampler *r);

/*
 * The most samples the next sotto_resampler_push(r, ..., n_in, ...) can write: a capacity of
 * this size is always enough. It is sotto_resample_length(total input + n_in) minus the
 * output written so far, so it depends on the stream's state; it never exceeds
 * ceil(n_in · out_hz / in_hz) + 1 + sotto_resampler_pending_samples(r).
 * Returns the count, or SOTTO_ERR_INVALID_ARG (n_in < 0 or too large).
 */
int64_t sotto_resampler_max_output(const sotto_resampler *r, int64_t n_in);

/*
 * Pushes n_in samples and writes the output that is ready. All of the input is consumed.
 * [in]  in        n_in samples (finite values)
 * [in]  n_in      input samples, ≥ 0
 * [out] out       output samples; must not overlap in
 * [in]  capacity  size of out in samples
 * Returns samples written (≥ 0), or SOTTO_ERR_INVALID_ARG, SOTTO_ERR_STATE (after flush
 * without reset), SOTTO_ERR_BUFFER_TOO_SMALL (capacity < sotto_resampler_max_output(r,
 * n_in); nothing consumed), SOTTO_ERR_BAD_AUDIO (a NaN or Inf sample; nothing consumed),
 * SOTTO_ERR_INTERNAL (soxr failed; the stream must be reset).
 */
int64_t sotto_resampler_push(sotto_resampler *r, const float *in, int64_t n_in, float *out,
                             int64_t capacity);

/*
 * Pull-style push for callers with a fixed output buffer: consumes only as much input as
 * can be turned into at most `capacity` output samples and leaves the rest to the caller.
 * [in]  in, n_in  as sotto_resampler_push
 * [out] n_used    input samples consumed (≥ 1 whenever n_in ≥ 1 and capacity ≥ 1)
 * [out] out       output samples; [in] capacity its size (any value ≥ 0)
 * Returns samples written (≥ 0) or an error as sotto_resampler_push (except
 * SOTTO_ERR_BUFFER_TOO_SMALL); *n_used is 0 on error.
 */
int64_t sotto_resampler_push_some(sotto_resampler *r, const float *in, int64_t n_in,
                                  int64_t *n_used, float *out, int64_t capacity);

/*
 * Ends the input and writes the rest of the output, up to `capacity` samples per call; call
 * again until it returns 0. Afterwards the total output is exactly
 * sotto_resample_length(total input, in_hz, out_hz). Push after flush is SOTTO_ERR_STATE
 * until sotto_resampler_reset().
 * Returns samples written (≥ 0), or SOTTO_ERR_INVALID_ARG, SOTTO_ERR_INTERNAL.
 */
int64_t sotto_resampler_flush(sotto_resampler *r, float *out, int64_t capacity);

/* Output samples the stream still owes for the input pushed so far (before flush: the
 * current latency in output samples; after flush starts: what flush has yet to write). */
int64_t sotto_resampler_pending_samples(const sotto_resampler *r);

/* Input and output samples seen so far. */
int64_t sotto_resampler_total_in(const sotto_resampler *r);
int64_t sotto_resampler_total_out(const sotto_resampler *r);

#endif
