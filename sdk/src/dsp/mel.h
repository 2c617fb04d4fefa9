/*
 * torchaudio-style mel front ends: mel filterbanks with torchaudio.functional.melscale_fbanks
 * semantics (HTK or Slaney mel scale, no or Slaney area normalisation), and a front-end
 * object computing STFT magnitude or power → mel → log, as torchaudio.transforms
 * .MelSpectrogram followed by the model's log (Vocos: ln(max(x, 1e-7)); AmplitudeToDB:
 * 10·log10(max(x, 1e-10)) with a top_db floor).
 *
 * Layouts: filterbank matrices are [n_freqs][n_mels] (torchaudio's `fb`, row k = FFT bin k);
 * features are time-major [T][n_mels]. (torchaudio returns [n_mels][T].)
 *
 * Offline: sotto_mel_compute(x) pads like the STFT plan (CENTER: reflect n_fft/2; SAME: the
 * Vocos padding="same" feature extractor; NONE) and applies top_db over the whole utterance.
 * Streaming: keep the padded signal (sotto_reflect_pad for its head and, at the end, its tail)
 * and call sotto_mel_frames() for frames whose samples have all arrived; frame t needs padded
 * samples [t·hop, t·hop + n_fft). Every log type is per frame and exact when streamed, except
 * the dB top_db floor, which needs the utterance maximum: sotto_mel_frames() leaves it out and
 * sotto_mel_apply_top_db() applies it to whatever block the caller holds (a streamed result
 * therefore differs from offline wherever the utterance maximum lies outside that block).
 *
 * Threads: one front end serves one thread at a time (it owns scratch).
 */
#ifndef SOTTO_DSP_MEL_H
#define SOTTO_DSP_MEL_H

#include <stdint.h>

#include "core/core.h"
#include "dsp/stft.h"

typedef enum sotto_mel_scale {
    SOTTO_MEL_SCALE_HTK = 0,   /* m = 2595·log10(1 + f/700) */
    SOTTO_MEL_SCALE_SLANEY = 1 /* linear f/(200/3) below 1 kHz, log step ln(6.4)/27 above */
} sotto_mel_scale;

typedef enum sotto_mel_norm {
    SOTTO_MEL_NORM_NONE = 0,  /* triangles peak at 1 */
    SOTTO_MEL_NORM_SLANEY = 1 /* filter m scaled by 2 / (f[m+2] − f[m]) (equal area) */
} sotto_mel_norm;

typedef enum sotto_mel_log {
    SOTTO_MEL_LOG_NONE = 0,   /* linear mel energies */
    SOTTO_MEL_LOG_LN = 1,     /* ln(max(x, floor))    Vocos safe_log (floor 1e-7) */
    SOTTO_MEL_LOG_LOG10 = 2,  /* log10(max(x, floor)) */
    SOTTO_MEL_LOG_LN_ADD = 3, /* ln(x + floor) */
    SOTTO_MEL_LOG_DB = 4      /* db_multiplier·log10(max(x, floor)), then the top_db floor */
} sotto_mel_log;

/*
 * Fills a filterbank as torchaudio.functional.melscale_fbanks(n_freqs, f_min, f_max, n_mels,
 * sample_rate, norm, mel_scale): bin k sits at k·(sample_rate/2 in integer division)/(n_freqs−1)
 * Hz; n_mels+2 points equally spaced in mel between f_min and f_max give the triangles.
 * Computed in double precision and rounded once.
 * [out] fb  [n_freqs][n_mels] floats
 * Errors: SOTTO_ERR_INVALID_ARG (NULL fb, n_freqs < 2, n_mels < 1, sample_rate < 1,
 * f_min < 0, f_max ≤ f_min, unknown scale/norm).
 */
int sotto_mel_fbanks(int n_freqs, double f_min_hz, double f_max_hz, int n_mels, int sample_rate_hz,
                     sotto_mel_norm norm, sotto_mel_scale scale, float *fb, sotto_status *st);

typedef struct sotto_mel_params {
    int sample_rate_hz;    /* default 24000 */
    int n_fft;             /* default 1024 */
    int hop_length;        /* default 256 */
    int win_length;        /* 0: n_fft (default) */
    sotto_stft_pad pad;    /* default SOTTO_STFT_PAD_CENTER */
    int n_mels;            /* default 100 */
    float f_min_hz;        /* default 0 */
    float f_max_hz;        /* ≤ 0: sample_rate/2 in integer division, torchaudio's default */
    sotto_mel_scale scale; /* default HTK */
    sotto_mel_norm norm;   /* default NONE */
    int power;             /* 1: magnitude |X| (default, Vocos), 2: power |X|² */
    sotto_mel_log log;     /* default SOTTO_MEL_LOG_LN */
    float log_floor;       /* clamp / offset of the log; default 1e-7 (AmplitudeToDB: 1e-10) */
    float db_multiplier;   /* LOG_DB only: 10 for power spectra (default), 20 for magnitude */
    float top_db;          /* LOG_DB only: floor at (max − top_db); < 0 disables (default) */
    const float *window;   /* win_length values, copied; NULL: periodic Hann */
    const float *fbank;    /* [n_fft/2+1][n_mels] copied (e.g. a checkpoint's mel_scale.fb);
                              NULL: computed from the fields above */
} sotto_mel_params;

typedef struct sotto_mel sotto_mel;

/* The defaults listed above: the Vocos 24 kHz feature extractor (n_fft 1024, hop 256, 100
 * mels, power 1, center, ln(max(x, 1e-7))). */
sotto_mel_params sotto_mel_default_params(void);

/*
 * Creates a front end.
 * Errors: SOTTO_ERR_INVALID_ARG (NULL p/out, any field out of range, with the field named in
 * st), SOTTO_ERR_OUT_OF_MEMORY.
 */
int sotto_mel_create(const sotto_mel_params *p, const sotto_alloc *alloc, sotto_mel **out,
                     sotto_status *st);
void sotto_mel_destroy(sotto_mel *m);

int sotto_mel_n_mels(const sotto_mel *m);
/* The analysis plan (n_fft, hop, padding, frame counts). */
const sotto_stft *sotto_mel_stft(const sotto_mel *m);
/* The filterbank in use, [n_fft/2+1][n_mels]. */
const float *sotto_mel_filterbank(const sotto_mel *m);
/* The per-frame settings after the filterbank: power (1 or 2), log type, log floor and dB
 * multiplier (for another implementation of the same front end, e.g. the CUDA one). */
void sotto_mel_settings(const sotto_mel *m, int *power, sotto_mel_log *log, float *log_floor,
                        float *db_multiplier);
/* Frames for n_samples input samples. */
int64_t sotto_mel_num_frames(const sotto_mel *m, int64_t n_samples);

/*
 * Offline features of a whole utterance, top_db included.
 * [in]  x           n samples
 * [out] out         [T][n_mels], T = sotto_mel_num_frames(m, n)
 * [in]  cap_frames  frames out can hold
 * Returns T, or SOTTO_ERR_INVALID_ARG (NULL, n too short to reflect), SOTTO_ERR_BAD_AUDIO
 * (NaN/Inf input), SOTTO_ERR_BUFFER_TOO_SMALL.
 */
int64_t sotto_mel_compute(sotto_mel *m, const float *x, int64_t n, float *out, int64_t cap_frames);

/*
 * n_frames frames of an already-padded signal (see the header comment), without top_db.
 * [in]  xp       padded samples from the first sample of the first wanted frame
 * [in]  n_avail  samples readable at xp; needs (n_frames − 1)·hop + n_fft
 * [out] out      [n_frames][n_mels]
 * Returns n_frames, or SOTTO_ERR_INVALID_ARG, SOTTO_ERR_BUFFER_TOO_SMALL.
 */
int64_t sotto_mel_frames(sotto_mel *m, const float *xp, int64_t n_avail, int64_t n_frames,
                         float *out, int64_t cap_frames);

/* Applies the top_db floor over n_frames frames in place: x = max(x, max(all) − top_db). A
 * no-op unless log is LOG_DB with top_db ≥ 0. */
void sotto_mel_apply_top_db(const sotto_mel *m, float *feat, int64_t n_frames);

#endif
