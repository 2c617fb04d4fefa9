/*
 * Objective quality scores of a degraded signal against its reference, both mono float at
 * the same rate and time-aligned (the caller compensates any delay first). Used by
 * `sotto compare`; plain C with no state, so other tools can reuse it.
 *
 *   log-mel L1   mean |ln mel(ref) − ln mel(deg)| over frames × mels, with the SDK's mel
 *                front end (16 kHz: n_fft 512, window 400 (25 ms), hop 160 (10 ms), 80 HTK
 *                mels 0..8 kHz, magnitude, ln(max(x, 1e-5))). 0 for identical signals.
 *   SI-SDR       scale-invariant SDR in dB (means removed): 10·log10(|αs|² / |αs − ŝ|²),
 *                α = <ŝ, s> / <s, s>. Capped at METRICS_MAX_DB (identical signals).
 *   segSNR       mean over 20 ms frames of 10·log10(Σs² / Σ(s − ŝ)²), each frame clamped to
 *                [−10, 35] dB (the usual limits); frames where the reference is silent
 *                (energy below 1e-10 per sample) are skipped.
 *   STOI         classic short-time objective intelligibility (Taal et al. 2011), computed
 *                as pystoi 0.4.1 stoi(x, y, fs, extended=False): resampled to 10 kHz with
 *                pystoi's polyphase filter (Kaiser-windowed sinc, 60 dB, unit sum; scipy
 *                resample_poly with zero padding), frames of the clean signal more than 40 dB
 *                below its loudest removed (256 samples, hop 128, Hann as np.hanning(258)[1:-1],
 *                overlap-added back), 512-point STFT of 256-sample frames, 15 one-third
 *                octave bands from 150 Hz, 30-frame segments, clipping at β = −15 dB, mean
 *                correlation. About 0..1, higher is more intelligible; 1 for identical
 *                signals.
 *
 * Signals of different lengths are compared over the shorter one.
 */
#ifndef SOTTO_APP_METRICS_H
#define SOTTO_APP_METRICS_H

#include <stdint.h>

#define METRICS_MAX_DB 100.0
#define METRICS_SEGSNR_MIN_DB (-10.0)
#define METRICS_SEGSNR_MAX_DB 35.0

/* Scale-invariant SDR in dB; METRICS_MAX_DB when the residual is zero, −METRICS_MAX_DB when
 * the reference (after mean removal) or the projection is zero. */
double metrics_si_sdr(const float *ref, const float *deg, int64_t n);

/* Segmental SNR in dB over frames of frame_len samples (a last partial frame included);
 * METRICS_SEGSNR_MIN_DB when no frame has energy. */
double metrics_seg_snr(const float *ref, const float *deg, int64_t n, int frame_len);

/* Log-mel L1 distance at 16 kHz (see above). Returns the distance (≥ 0), or a negative
 * SOTTO_ERR_* code (signal shorter than 257 samples, non-finite sample, out of memory). */
double metrics_log_mel_l1(const float *ref, const float *deg, int64_t n, int sample_rate_hz);

/* STOI (see above) of deg against ref at sample_rate_hz into *out. Fewer than 30 STFT frames
 * after silence removal give 1e-5, as pystoi does. Returns SOTTO_OK, or SOTTO_ERR_INVALID_ARG
 * (NULL, n ≤ 0, rate ≤ 0, non-finite sample) or SOTTO_ERR_OUT_OF_MEMORY. */
int metrics_stoi(const float *ref, const float *deg, int64_t n, int sample_rate_hz, double *out);

#endif
