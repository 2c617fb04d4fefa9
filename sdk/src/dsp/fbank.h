/*
 * Kaldi log mel filterbank features with torchaudio.compliance.kaldi.fbank semantics, the
 * front end of SenseVoice (hamming window, 80 mels) and CAM++ (povey window, 80 mels).
 *
 * Per frame of frame_length_ms (25 ms = 400 samples at 16 kHz) every frame_shift_ms (10 ms =
 * 160 samples): scale by input_scale → remove the DC offset (subtract the frame mean) →
 * pre-emphasis x[i] −= k·x[i−1] with x[−1] := x[0] → window → zero-pad to the next power of
 * two (512) → |rfft|² (or |rfft| when use_power is 0) → Kaldi mel banks (mel = 1127·ln(1 +
 * f/700), triangles equally spaced in mel between low_freq and high_freq, the Nyquist bin
 * unused) → ln(max(E, FLT_EPSILON)). Optionally the per-bin mean over the utterance is
 * subtracted (subtract_mean, offline only).
 *
 * Framing: snip_edges = 1: frames = 1 + floor((N − 400)/160) (0 when N < 400), frame t
 * covers x[t·160, t·160 + 400). snip_edges = 0: frames = floor((N + 80)/160), frame t starts
 * at t·160 − (200 − 80), reading across the ends with Kaldi's mirror (x[−1−i] = x[i],
 * x[N+i] = x[N−1−i]; the edge sample repeated, unlike the STFT's reflect).
 *
 * Dither: only 0 is supported, so the features are deterministic. FlexiCodec's SenseVoice
 * front end dithers (Gaussian, std 1 on int16-scaled samples); docs/dsp.md gives the size of
 * the difference that makes. use_energy, raw_energy, VTLN and htk_compat are not offered
 * (all off in the models we run).
 *
 * Output layout: [T][n_mels], time-major (torchaudio also returns [T][n_mels]).
 * Threads: one object serves one thread at a time (it owns scratch).
 */
#ifndef SOTTO_DSP_FBANK_H
#define SOTTO_DSP_FBANK_H

#include <stdint.h>

#include "core/core.h"

typedef enum sotto_fbank_window {
    SOTTO_FBANK_WINDOW_POVEY = 0,   /* (0.5 − 0.5 cos(2πn/(N−1)))^0.85, the Kaldi default */
    SOTTO_FBANK_WINDOW_HAMMING = 1, /* 0.54 − 0.46 cos(2πn/(N−1)) */
    SOTTO_FBANK_WINDOW_HANNING = 2, /* 0.5 − 0.5 cos(2πn/(N−1)) */
    SOTTO_FBANK_WINDOW_RECTANGULAR = 3,
    SOTTO_FBANK_WINDOW_BLACKMAN = 4 /* c − 0.5 cos(2πn/(N−1)) + (0.5 − c) cos(4πn/(N−1)) */
} sotto_fbank_window;

typedef struct sotto_fbank_params {
    int sample_rate_hz;        /* default 16000 */
    float frame_length_ms;     /* default 25 */
    float frame_shift_ms;      /* default 10 */
    int snip_edges;            /* default 1 */
    float dither;              /* must be 0 (default) */
    int remove_dc_offset;      /* default 1 */
    float preemphasis;         /* 0..1, default 0.97 */
    sotto_fbank_window window; /* default POVEY */
    float blackman_coeff;      /* default 0.42 */
    int round_to_power_of_two; /* default 1 */
    int n_mels;                /* > 3; default 80 (torchaudio's default is 23) */
    float low_freq_hz;         /* default 20 */
    float high_freq_hz;        /* ≤ 0: Nyquist + high_freq_hz; default 0 */
    int use_power;             /* default 1 */
    int use_log;               /* default 1 */
    int subtract_mean;         /* default 0 */
    float input_scale;         /* samples are multiplied by it first; default 1 (SenseVoice:
                                  32768, it works on int16-range samples) */
} sotto_fbank_params;

typedef struct sotto_fbank sotto_fbank;

/* The defaults listed above (torchaudio's, with 80 mels). */
sotto_fbank_params sotto_fbank_default_params(void);

/*
 * Kaldi mel banks as torchaudio.compliance.kaldi.get_mel_banks (no VTLN), extended with the
 * zero Nyquist column that kaldi.fbank appends.
 * [out] banks  [n_mels][padded_window/2 + 1]
 * Errors: SOTTO_ERR_INVALID_ARG (NULL banks, n_mels ≤ 3, odd or < 2 padded_window,
 * frequencies outside 0 ≤ low < high ≤ Nyquist after resolving high ≤ 0).
 */
int sotto_kaldi_mel_banks(int n_mels, int padded_window, float sample_rate_hz, float low_freq_hz,
                          float high_freq_hz, float *banks, sotto_status *st);

/*
 * Creates a front end. Errors: SOTTO_ERR_INVALID_ARG (NULL, a field out of range, named in
 * st), SOTTO_ERR_UNSUPPORTED (dither ≠ 0), SOTTO_ERR_OUT_OF_MEMORY.
 */
int sotto_fbank_create(const sotto_fbank_params *p, const sotto_alloc *alloc, sotto_fbank **out,
                       sotto_status *st);
void sotto_fbank_destroy(sotto_fbank *f);

int sotto_fbank_n_mels(const sotto_fbank *f);
int sotto_fbank_window_samples(const sotto_fbank *f); /* 400 at 16 kHz / 25 ms */
int sotto_fbank_shift_samples(const sotto_fbank *f);  /* 160 at 16 kHz / 10 ms */
int sotto_fbank_fft_size(const sotto_fbank *f);       /* 512 at 16 kHz / 25 ms */
/* Frames for n_samples samples (see Framing). */
int64_t sotto_fbank_num_frames(const sotto_fbank *f, int64_t n_samples);

/*
 * Offline features of a whole utterance.
 * [out] out  [T][n_mels], T = sotto_fbank_num_frames(f, n)
 * Returns T, or SOTTO_ERR_INVALID_ARG (NULL, n < 0), SOTTO_ERR_BAD_AUDIO (NaN/Inf sample),
 * SOTTO_ERR_BUFFER_TOO_SMALL (cap_frames < T).
 */
int64_t sotto_fbank_compute(sotto_fbank *f, const float *x, int64_t n, float *out,
                            int64_t cap_frames);

/*
 * One frame, for streaming (snip_edges = 1 framing: frame t is x[t·shift, t·shift + window)).
 * [in]  frame  window_samples samples
 * [out] out    n_mels values (subtract_mean does not apply)
 */
void sotto_fbank_frame(sotto_fbank *f, const float *frame, float *out);

#endif
