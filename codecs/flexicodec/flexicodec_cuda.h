/*
 * An offline FlexiCodec decode forward on the CUDA layer library (backend/cuda/cuda_ops.h):
 * the decoder of sotto_codec.h runs its windows with it on a model loaded for CUDA (codec.c,
 * docs/gpu.md); it is not itself part of the public API.
 *
 * It covers the part of the decode that costs (bottleneck transformer and DAC decoder, far
 * above 95% of the work) and starts where the CPU decoder's flush hands over to them: the
 * expanded latent x[T][latent_dim] (FSQ and RVQ decode, ConvNeXt decoder, the per-group sum
 * and the expansion by token lengths stay on the CPU: flexicodec.h). Then, as the CPU's
 * bottleneck forward and flexicodec_dac_decode:
 *
 *     x → N transformer layers (bottleneck.h; each a sotto_cuda_tlayer, in place)
 *       → conv k7 (latent → decoder_dim), zero padding 3 on each side
 *       → per block: Snake → ConvTranspose1d (k 2s, stride s), torch's padding ceil(s/2)
 *         cropped from both ends → 3 residual units x += conv1(Snake(conv7_d(Snake(x))))
 *         (conv7 zero-padded 3·d on each side, d = 1, 3, 9)
 *       → Snake → conv k7 to one channel (padding 3) → tanh
 *     = flexicodec_dac_out_len(T) samples (1280·T − 16 for the release's strides).
 *
 * flexicodec_cuda_create takes the weights the CPU loader made (f32, f16 panels or pair-packed
 * binary16 alike), converts each back to PyTorch layout in f32 on the host (binary16 values
 * widen exactly), and uploads everything once, with the activation buffers and a scratch pool
 * sized for max_frames latent frames. All arithmetic is f32 (TF32 off): a model loaded with
 * binary16 arithmetic runs here with f32 arithmetic on its f16 weights.
 *
 * Scope: one whole sequence of at most max_frames frames per call (the decoder's one-pass
 * flush, or one of its segment windows; no streaming state between calls). The device work of
 * a call can run as a CUDA graph replayed per frame count (flexicodec_cuda_set_graphs).
 *
 * Everything here exists only in builds with the CUDA backend (SOTTO_HAVE_CUDA); without it
 * this header declares nothing. One context serves one thread at a time; the CPU weights are
 * only read at creation and may be freed afterwards.
 */
#ifndef SOTTO_FLEXICODEC_CUDA_H
#define SOTTO_FLEXICODEC_CUDA_H

#ifdef SOTTO_HAVE_CUDA

#include <stdint.h>

#include "codecs/flexicodec/bottleneck.h"
#include "codecs/flexicodec/flexicodec.h"

typedef struct flexicodec_cuda flexicodec_cuda;

/*
 * Makes a CUDA context on `device`, uploads the DAC decoder of w and the bottleneck stack bt
 * (host, as sotto_flexicodec_load made them; bt may have 0 layers, the identity; its width
 * must be w's latent_dim) and allocates every buffer a call of up to max_frames latent frames
 * needs. Errors: SOTTO_ERR_INVALID_ARG (NULL, device < 0, max_frames out of 1..1<<16, weights
 * not loaded or of mismatched widths), SOTTO_ERR_DEVICE (no such device, device memory
 * exhausted, or another CUDA / cuBLAS failure; st says which call), SOTTO_ERR_OUT_OF_MEMORY
 * (host).
 */
int flexicodec_cuda_create(const flexicodec_decoder_weights *w, const flexicodec_bottleneck *bt,
                           int device, int max_frames, flexicodec_cuda **out, sotto_status *st);
void flexicodec_cuda_free(flexicodec_cuda *c);

/*
 * A model's decoder weights on the device, uploaded once (model load) and shared: each
 * context made with flexicodec_cuda_create_shared reads them from its own stream and owns only
 * its activations, scratch pool and graphs (flexicodec_cuda_create is weights_create +
 * create_shared in one, the context owning its weights). The weights must outlive every
 * context made on them; they are only read, so contexts on several threads may use them at
 * once. Errors as flexicodec_cuda_create's, less the max_frames check.
 */
typedef struct flexicodec_cuda_weights flexicodec_cuda_weights;
int flexicodec_cuda_weights_create(const flexicodec_decoder_weights *w,
                                   const flexicodec_bottleneck *bt, int device,
                                   flexicodec_cuda_weights **out, sotto_status *st);
void flexicodec_cuda_weights_free(flexicodec_cuda_weights *wt);
int flexicodec_cuda_create_shared(const flexicodec_cuda_weights *wt, int max_frames,
                                  flexicodec_cuda **out, sotto_status *st);

/* Samples flexicodec_cuda_decode writes for T frames: flexicodec_dac_out_len (0 for T < 1). */
int64_t flexicodec_cuda_output_length(const flexicodec_cuda *c, int64_t T);

/*
 * The decode of T expanded latent frames, latent_host[T][latent_dim] (what the CPU decoder
 * feeds its bottleneck transformer), into out_host[flexicodec_cuda_output_length(c, T)].
 * Blocks until the samples are on the host. Returns the sample count, or
 * SOTTO_ERR_INVALID_ARG (NULL, T outside 1..max_frames, a non-finite latent value),
 * SOTTO_ERR_BUFFER_TOO_SMALL (capacity below the count), SOTTO_ERR_INTERNAL (a non-finite
 * output sample, as the CPU decoder's flush reports it), or the context's sticky error
 * (SOTTO_ERR_DEVICE, SOTTO_ERR_OUT_OF_MEMORY for an exhausted scratch pool), after which every
 * call returns that same error.
 */
int64_t flexicodec_cuda_decode(flexicodec_cuda *c, const float *latent_host, int T, float *out_host,
                               int64_t capacity);

/*
 * CUDA graphs (backend/cuda/cuda_graph.h), off in a new context. With them on, the device work
 * of a decode (everything between the upload of the latent and the download of the samples)
 * runs as a CUDA graph: a frame count T runs directly at its first call, is captured at its
 * second (so a one-off length is never captured, and every kernel has been loaded before a
 * capture) and replayed, as one launch, at every later call. The context keeps 4 graphs, one
 * per T; a fifth T replaces the least recently replayed, which then starts over (a direct run,
 * then a capture). The output is the direct run's (same kernels on the same buffers). A
 * device failure during a capture is the context's sticky error (SOTTO_ERR_DEVICE from then
 * on, like any failed layer; never a silent fallback to direct execution); a capture cut short
 * by any other error is discarded, never replayed. Turning graphs off releases the captured
 * graphs. Returns SOTTO_OK, or SOTTO_ERR_INVALID_ARG for NULL.
 */
int flexicodec_cuda_set_graphs(flexicodec_cuda *c, int on);
/* 1 when graphs are on, else 0 (also for NULL). */
int flexicodec_cuda_graphs(const flexicodec_cuda *c);
/* Graph captures completed, and graph replays launched, since creation (0 for NULL). */
int64_t flexicodec_cuda_graph_captures(const flexicodec_cuda *c);
int64_t flexicodec_cuda_graph_launches(const flexicodec_cuda *c);

/* What the last failed call found ("" when none did). */
const char *flexicodec_cuda_last_error(const flexicodec_cuda *c);

#endif /* SOTTO_HAVE_CUDA */

#endif
