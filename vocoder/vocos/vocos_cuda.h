/*
 * An offline Vocos forward on the CUDA layer library (backend/cuda/cuda_ops.h): an internal
 * building block toward running Vocos on a GPU. It is not reachable through the public API
 * and nothing in model loading or backend selection uses it yet (docs/gpu.md).
 *
 * vocos_cuda_create reads the weights the CPU loader made (vocos.h), converts each back to
 * PyTorch layout in f32 on the host (f32, f16-panel and pair-packed binary16 Linear weights
 * alike: f16 values widen exactly), folds each block's layer scale γ into its pwconv2 rows
 * and bias, and uploads everything once, with the activation buffers, a scratch pool and the
 * ISTFT plan sized for max_frames. vocos_cuda_offline then runs a whole feature sequence:
 *
 *     features → zero-pad 3 frames each side → embed conv (k 7) → LayerNorm
 *     → per ConvNeXt block, on the residual stream kept between 3 zero frames each side:
 *         dwconv (k 7) → LayerNorm (eps 1e-6) → pwconv1 → GELU (erf) → x += (γ·pwconv2)(·) + γ·b
 *     → final LayerNorm → head: mag = min(exp(x[:F]), 100), phase = x[F:]
 *     → ISTFT ("center" or "same", as the model says)
 *
 * which is the CPU vocoder's offline output (push_features of all frames, then flush): the
 * same sotto_istft_length(T) samples. All arithmetic is f32 (TF32 off).
 *
 * Scope: mel-feature models with plain LayerNorm. EnCodec-feature and AdaLayerNorm
 * (bandwidth-conditioned) models are refused with SOTTO_ERR_UNSUPPORTED.
 *
 * Everything here exists only in builds with the CUDA backend (SOTTO_HAVE_CUDA); without it
 * this header declares nothing. One context serves one thread at a time.
 */
#ifndef SOTTO_VOCOS_CUDA_H
#define SOTTO_VOCOS_CUDA_H

#ifdef SOTTO_HAVE_CUDA

#include <stdint.h>

#include "vocoder/vocos/vocos.h"

typedef struct vocos_cuda vocos_cuda;

/*
 * Makes a CUDA context on `device`, uploads the weights w (host, as loaded by
 * sotto_vocos_load; only read, and not needed afterwards) and allocates every buffer a call of
 * up to max_frames feature frames needs. Errors: SOTTO_ERR_INVALID_ARG (NULL, max_frames out of
 * 1..1<<20), SOTTO_ERR_UNSUPPORTED (EnCodec features, AdaLayerNorm), SOTTO_ERR_DEVICE (no such
 * device, or a CUDA / cuBLAS / cuFFT failure; st says which call), SOTTO_ERR_OUT_OF_MEMORY.
 */
int vocos_cuda_create(const vocos_weights *w, int device, int max_frames, vocos_cuda **out,
                      sotto_status *st);
void vocos_cuda_free(vocos_cuda *c);

/* Samples vocos_cuda_offline writes for T frames (0 for T < 1). */
int64_t vocos_cuda_output_length(const vocos_cuda *c, int64_t T);

/*
 * The offline forward of T feature frames, features_host[T][input_channels], into
 * out_host[vocos_cuda_output_length(c, T)]. Blocks until the samples are on the host.
 * Returns the sample count, or SOTTO_ERR_INVALID_ARG (NULL, T outside 1..max_frames),
 * SOTTO_ERR_BAD_AUDIO (a non-finite feature value), SOTTO_ERR_BUFFER_TOO_SMALL (capacity
 * below the count), or the context's sticky error (SOTTO_ERR_DEVICE, SOTTO_ERR_OUT_OF_MEMORY
 * for an exhausted scratch pool), after which every call returns that same error.
 */
int64_t vocos_cuda_offline(vocos_cuda *c, const float *features_host, int T, float *out_host,
                           int64_t capacity);

/* What the last failed call found ("" when none did). */
const char *vocos_cuda_last_error(const vocos_cuda *c);

#endif /* SOTTO_HAVE_CUDA */

#endif
