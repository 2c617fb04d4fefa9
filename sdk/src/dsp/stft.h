/*
 * Short-time Fourier transform with torch.stft / torchaudio semantics, and its inverses:
 * torch.istft(center=True) and the Vocos "same"-padding ISTFT. Offline calls take a whole
 * signal; frame-level calls let a streaming caller run the same arithmetic one frame at a
 * time, and sotto_istft_stream does the incremental overlap-add for it. Offline and streamed
 * results are bit-identical (same operations in the same order).
 *
 * Conventions
 *   - Window: periodic Hann of win_length (w[n] = 0.5 − 0.5 cos(2πn/win_length)), or the
 *     caller's window (e.g. copied from a checkpoint buffer); when win_length < n_fft it is
 *     zero-padded to n_fft with floor((n_fft − win_length)/2) zeros on the left (torch).
 *   - Padding of the analysed signal (reflect, without repeating the edge sample, as
 *     torch.nn.functional.pad(mode="reflect")):
 *       CENTER  n_fft/2 each side (torch.stft center=True);    frames = 1 + floor(N / hop)
 *       SAME    (win_length − hop)/2 each side (Vocos feature extractor padding="same");
 *               frames = 1 + floor((N + 2·pad − n_fft) / hop)
 *       NONE    no padding (center=False);                    frames = 1 + floor((N − n_fft)/hop)
 *     Reflection needs N > pad, as in torch.
 *   - Spectra are one-sided, F = n_fft/2 + 1 bins, unnormalised (torch normalized=False).
 *     Layout is time-major: spec[t][f][2] with (re, im) interleaved, i.e. frame t starts at
 *     spec + 2·F·t. (torch returns [F][T]; transpose to compare.)
 *   - Inverse (needs params.for_inverse): per frame irfft (1/n_fft) × window, overlap-add at
 *     hop, divide by the overlap-added squared window (the "envelope"), then trim `trim`
 *     samples at each end:
 *       CENTER  trim = n_fft/2, output hop·(T − 1) samples (torch.istft center=True,
 *               length=None)
 *       SAME    trim = (win_length − hop)/2, requires win_length == n_fft, output
 *               (T − 1)·hop + win_length − 2·trim samples (= T·hop when win − hop is even)
 *     The envelope is evaluated exactly, edges included, so any T ≥ 1 works; creation checks
 *     that it never drops below 1e-11 in the kept region (torch's NOLA check).
 *   - Positions: "OLA position" p counts samples from the first sample of frame 0 in the
 *     padded signal (frame t covers p ∈ [t·hop, t·hop + n_fft)); output sample i of the
 *     inverse is OLA position i + trim.
 *
 * Threads: a plan owns scratch buffers, so one plan serves one thread at a time; create a
 * plan per stream. A sotto_istft_stream uses its plan's scratch: the plan must outlive it and
 * must not be used by another thread while the stream runs.
 *
 * Offline usage
 *     sotto_stft_params p = sotto_stft_default_params();   // Vocos: 1024 / 256, center
 *     sotto_stft *s; if (sotto_stft_create(&p, NULL, &s, &st)) ...;
 *     int64_t T = sotto_stft_num_frames(s, n);
 *     float *spec = malloc(sizeof(float) * 2 * sotto_stft_n_bins(s) * T);
 *     sotto_stft_forward(s, x, n, spec, T);
 *     sotto_istft(s, spec, T, y, sotto_istft_length(s, T));
 * Streaming inverse
 *     sotto_istft_stream *is; sotto_istft_stream_create(s, NULL, &is, &st);
 *     for each frame: n_out = sotto_istft_stream_push(is, frame, out, cap);   // ≤ hop samples
 *     at the end:     n_out = sotto_istft_stream_flush(is, out, cap);        // ≤ n_fft samples
 */
#ifndef SOTTO_DSP_STFT_H
#define SOTTO_DSP_STFT_H

#include <stdint.h>

#include "core/core.h"

typedef enum sotto_stft_pad {
    SOTTO_STFT_PAD_CENTER = 0, /* reflect n_fft/2 each side; inverse = torch.istft(center) */
    SOTTO_STFT_PAD_SAME = 1,   /* reflect (win − hop)/2 each side; inverse = Vocos "same" */
    SOTTO_STFT_PAD_NONE = 2    /* no padding, analysis only */
} sotto_stft_pad;

typedef struct sotto_stft_params {
    int n_fft;           /* FFT size, even, 2..1<<20; default 1024 */
    int hop_length;      /* samples between frames, ≥ 1; default 256 */
    int win_length;      /* window length, 1..n_fft, 0 means n_fft; default 0 */
    sotto_stft_pad pad;  /* default SOTTO_STFT_PAD_CENTER */
    const float *window; /* win_length values copied at creation; NULL: periodic Hann */
    int for_inverse;     /* also prepare the inverse (validates NOLA); default 1 */
} sotto_stft_params;

typedef struct sotto_stft sotto_stft;
typedef struct sotto_istft_stream sotto_istft_stream;

/* The defaults listed in sotto_stft_params (the Vocos 24 kHz STFT). */
sotto_stft_params sotto_stft_default_params(void);

/*
 * Creates a plan.
 * [in]  p      parameters (copied; the window too)
 * [in]  alloc  allocator hooks, NULL for the C library (copied)
 * [out] out    the plan or NULL
 * [out] st     optional failure detail
 * Errors: SOTTO_ERR_INVALID_ARG (NULL p/out, sizes out of range, SAME inverse with
 * win_length != n_fft, inverse with PAD_NONE, window whose envelope fails NOLA),
 * SOTTO_ERR_OUT_OF_MEMORY.
 */
int sotto_stft_create(const sotto_stft_params *p, const sotto_alloc *alloc, sotto_stft **out,
                      sotto_status *st);
/* Frees a plan (NULL is fine). */
void sotto_stft_destroy(sotto_stft *s);

int sotto_stft_n_fft(const sotto_stft *s);
int sotto_stft_hop(const sotto_stft *s);
int sotto_stft_win_length(const sotto_stft *s);
int sotto_stft_n_bins(const sotto_stft *s); /* n_fft/2 + 1 */
/* Reflect padding added at each end of the analysed signal (0 for PAD_NONE). */
int sotto_stft_pad_samples(const sotto_stft *s);
/* The window zero-padded to n_fft (n_fft values, owned by the plan). */
const float *sotto_stft_window(const sotto_stft *s);

/* Frames produced for n_samples input samples (0 when too short; see the padding table). */
int64_t sotto_stft_num_frames(const sotto_stft *s, int64_t n_samples);

/*
 * Offline STFT of a whole signal, padding included.
 * [in]  x          n samples
 * [out] spec       [T][F][2] (see the header comment), T = sotto_stft_num_frames(s, n)
 * [in]  cap_frames frames spec can hold
 * Returns T ≥ 0, or SOTTO_ERR_INVALID_ARG (NULL pointers, n < 0, n ≤ pad for reflection),
 * SOTTO_ERR_BAD_AUDIO (a NaN/Inf sample), SOTTO_ERR_BUFFER_TOO_SMALL (cap_frames < T).
 */
int64_t sotto_stft_forward(sotto_stft *s, const float *x, int64_t n, float *spec,
                           int64_t cap_frames);

/*
 * One frame: window × rfft of n_fft samples of the already-padded signal.
 * [in]  frame  n_fft samples (frame t of a padded signal xp starts at xp + t·hop)
 * [out] spec   F complex bins, interleaved (2·F floats)
 */
void sotto_stft_frame(sotto_stft *s, const float *frame, float *spec);

/*
 * Frame t of the padded signal, reading the unpadded signal x (n samples) and reflecting at
 * its ends as the padding mode says; what sotto_stft_forward does for each frame.
 * Returns SOTTO_OK or SOTTO_ERR_INVALID_ARG (NULL, t outside [0, num_frames(n)), n ≤ pad).
 */
int sotto_stft_frame_at(sotto_stft *s, const float *x, int64_t n, int64_t t, float *spec);

/*
 * n_frames consecutive frames of an already-padded signal, for streaming analysis.
 * [in]  xp          padded samples starting at the first sample of the first wanted frame
 * [in]  n_avail     samples readable at xp; needs (n_frames − 1)·hop + n_fft
 * [out] spec        [n_frames][F][2]
 * Returns n_frames, or SOTTO_ERR_INVALID_ARG (too few samples, NULL, negative counts),
 * SOTTO_ERR_BUFFER_TOO_SMALL (cap_frames < n_frames).
 */
int64_t sotto_stft_frames(sotto_stft *s, const float *xp, int64_t n_avail, int64_t n_frames,
                          float *spec, int64_t cap_frames);

/*
 * Reflect padding as torch "reflect": out = x[left..1], x[0..n−1], x[n−2..n−1−right].
 * A streaming caller pads the head with the first left+1 samples and the tail with the last
 * right+1 samples. out holds left + n + right samples and must not overlap x.
 * Returns SOTTO_OK or SOTTO_ERR_INVALID_ARG (NULL, negative sizes, left ≥ n or right ≥ n).
 */
int sotto_reflect_pad(const float *x, int64_t n, int64_t left, int64_t right, float *out);

/* ---- inverse ------------------------------------------------------------------------- */

/* Samples trimmed at each end of the overlap-add (see the header comment). */
int sotto_istft_trim(const sotto_stft *s);
/* Output samples of the inverse of n_frames frames (0 for n_frames ≤ 0). */
int64_t sotto_istft_length(const sotto_stft *s, int64_t n_frames);

/*
 * Offline inverse.
 * [in]  spec      [n_frames][F][2]
 * [out] y         sotto_istft_length(s, n_frames) samples
 * [in]  cap       samples y can hold
 * Returns the sample count, or SOTTO_ERR_INVALID_ARG (NULL, n_frames < 1),
 * SOTTO_ERR_STATE (plan made without for_inverse), SOTTO_ERR_BUFFER_TOO_SMALL.
 */
int64_t sotto_istft(sotto_stft *s, const float *spec, int64_t n_frames, float *y, int64_t cap);

/*
 * One frame of the inverse before overlap-add: irfft (1/n_fft) × window.
 * [in]  spec  F complex bins, interleaved (the imaginary parts of DC and Nyquist are ignored)
 * [out] out   n_fft samples to add at OLA positions [t·hop, t·hop + n_fft)
 */
void sotto_istft_frame(sotto_stft *s, const float *spec, float *out);
/* As sotto_istft_frame from magnitude and phase (F values each): bin = mag·(cos φ + i sin φ),
 * the Vocos ISTFT head's S. */
void sotto_istft_frame_polar(sotto_stft *s, const float *mag, const float *phase, float *out);

/*
 * The squared-window envelope at OLA position p: the sum of window[p − t·hop]² over the
 * frames t ∈ [0, n_frames) that cover p, in increasing t (pass n_frames < 0 when more frames
 * will follow, i.e. no right edge). Dividing the overlap-added frames by it is the inverse's
 * normalisation.
 */
float sotto_istft_envelope(const sotto_stft *s, int64_t p, int64_t n_frames);

/* ---- streaming inverse ---------------------------------------------------------------- */

/*
 * Creates an incremental overlap-add for plan s (made with for_inverse). Each pushed frame
 * releases the output samples no later frame can change: after frame t, the samples up to OLA
 * position (t+1)·hop, i.e. hop samples once past the first trim; flush releases the tail.
 * The concatenated outputs equal sotto_istft of all frames, bit for bit.
 * Errors: SOTTO_ERR_INVALID_ARG (NULL), SOTTO_ERR_STATE (plan without for_inverse),
 * SOTTO_ERR_UNSUPPORTED (CENTER with hop > n_fft/2, where a frame would release samples
 * beyond the final end), SOTTO_ERR_OUT_OF_MEMORY.
 */
int sotto_istft_stream_create(sotto_stft *s, const sotto_alloc *alloc, sotto_istft_stream **out,
                              sotto_status *st);
void sotto_istft_stream_destroy(sotto_istft_stream *is);

/*
 * Pushes one spectral frame (F complex bins, interleaved) and writes the released samples.
 * Returns their count (0..hop), or SOTTO_ERR_BUFFER_TOO_SMALL (cap below that count; nothing
 * consumed: pass cap ≥ hop to never see it), SOTTO_ERR_INVALID_ARG (NULL).
 */
int64_t sotto_istft_stream_push(sotto_istft_stream *is, const float *spec, float *out, int64_t cap);
/* As push, for a frame already inverted and windowed (sotto_istft_frame's output, e.g. from a
 * GPU): n_fft samples. */
int64_t sotto_istft_stream_push_windowed(sotto_istft_stream *is, const float *frame, float *out,
                                         int64_t cap);
/*
 * Ends the signal: writes the remaining samples (at most n_fft − hop − trim) and resets the
 * stream for a new signal. Returns the count or SOTTO_ERR_BUFFER_TOO_SMALL (cap below it;
 * nothing done: pass cap ≥ n_fft to never see it).
 */
int64_t sotto_istft_stream_flush(sotto_istft_stream *is, float *out, int64_t cap);
/* Forgets the current signal. */
void sotto_istft_stream_reset(sotto_istft_stream *is);
/* Frames pushed since the last reset/flush. */
int64_t sotto_istft_stream_frames(const sotto_istft_stream *is);

#endif
