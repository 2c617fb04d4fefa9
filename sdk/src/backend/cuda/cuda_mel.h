/*
 * The mel front end of dsp/mel.h on the device: STFT magnitude (or power) through a batched
 * cuFFT R2C plan made at creation, the mel filterbank as one GEMM, and the log, for the frames
 * of a padded signal already on the device (sotto_mel_frames' contract: frame t reads padded
 * samples [t·hop, t·hop + n_fft)). The settings (n_fft, hop, window, filterbank, power, log
 * type, floor, dB multiplier) are copied from a CPU front end, so both compute the same
 * features; the dB top_db floor, which needs a whole utterance, is left out as
 * sotto_mel_frames leaves it out. Errors follow cuda_ops.h (a CUDA failure is the context's
 * sticky SOTTO_ERR_DEVICE).
 */
#ifndef SOTTO_BACKEND_CUDA_MEL_H
#define SOTTO_BACKEND_CUDA_MEL_H

#include <stddef.h>
#include <stdint.h>

#include "backend/cuda/cuda_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sotto_mel;
typedef struct sotto_cuda_mel sotto_cuda_mel;

/* Uploads m's window and filterbank to cu's device, plans R2C transforms of up to `batch`
 * frames per call (1..65536) and allocates their work buffers (about batch·2·n_fft floats), so
 * sotto_cuda_mel_frames takes nothing from the scratch pool. Errors: SOTTO_ERR_INVALID_ARG (NULL,
 * batch out of range), SOTTO_ERR_DEVICE, SOTTO_ERR_OUT_OF_MEMORY. */
int sotto_cuda_mel_create(sotto_cuda *cu, const struct sotto_mel *m, int batch,
                          sotto_cuda_mel **out, sotto_status *st);
void sotto_cuda_mel_destroy(sotto_cuda *cu, sotto_cuda_mel *p);
int sotto_cuda_mel_n_mels(const sotto_cuda_mel *p);
/* out[n_frames][n_mels] (device) from the padded signal xp[n_avail] (device), as
 * sotto_mel_frames; blocks of `batch` frames run in turn. Returns n_frames or an error:
 * SOTTO_ERR_INVALID_ARG (NULL, n_frames < 0, n_avail too short for the frames). */
int64_t sotto_cuda_mel_frames(sotto_cuda *cu, const sotto_cuda_mel *p, const float *xp,
                              int64_t n_avail, int64_t n_frames, float *out);

#ifdef __cplusplus
}
#endif

#endif
