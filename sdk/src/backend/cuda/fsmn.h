/*
 * The FSMN memory of a SAN-M attention block (SenseVoice, encoders/sensevoice) on the device,
 * which cuda_ops.h has no layer for: a depthwise conv over the value rows with zero padding,
 * plus the values themselves, read straight from the fused QKV output (rows ld floats apart),
 * so neither a padded copy of v nor a separate add is needed. Errors follow cuda_ops.h.
 */
#ifndef SOTTO_BACKEND_CUDA_FSMN_H
#define SOTTO_BACKEND_CUDA_FSMN_H

#include <stdint.h>

#include "backend/cuda/cuda_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * y[t][c] = Σ_{j<k} w[j][c] · v[t + j − left][c] + v[t][c] for t < T, c < C, with v rows
 * outside [0, T) read as zero: the CPU's zero-padded sotto_conv1d (no bias) on v padded by
 * `left` rows before and k − 1 − left after, then + v. w is a depthwise sotto_cuda_conv1d_w
 * (c_in = c_out = groups = C, stride and dilation 1); v rows are ldv ≥ C floats apart, y rows
 * ldy ≥ C; y must not overlap v. Returns SOTTO_OK, SOTTO_ERR_INVALID_ARG or the sticky error.
 */
int sotto_cuda_fsmn(sotto_cuda *cu, const sotto_cuda_conv1d_w *w, const float *v, int64_t ldv,
                    int64_t T, int C, int left, float *y, int64_t ldy);

#ifdef __cplusplus
}
#endif

#endif
