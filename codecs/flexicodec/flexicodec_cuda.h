/*
 * An offline FlexiCodec decode forward on the CUDA layer library (backend/cuda/cuda_ops.h):
 * the decoder of sotto_codec.h runs its windows with it on a model loaded for CUDA (codec.c,
 * docs/gpu.md); it is not itself part of the public API.
 *
 * flexicodec_cuda_decode starts where the CPU decoder's flush hands over to the part that
 * costs (bottleneck transformer and DAC decoder, far above 95% of the work): the expanded
 * latent x[T][latent_dim]. flexicodec_cuda_decode_codes starts from the codes instead and
 * runs the group stages too, as flexicodec.h's (below, "Codes in"). From the latent, as the
 * CPU's bottleneck forward and flexicodec_dac_decode:
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
 * of a decode (everything between the upload of the latent or codes and the download of the
 * samples) runs as a CUDA graph: a key (the frame count T; for codes in, T, the group count
 * and the stages decoded) runs directly at its first call, is captured at its second (so a
 * one-off length is never captured, and every kernel has been loaded before a capture) and
 * replayed, as one launch, at every later call. The context keeps 4 graphs, one per key; a
 * fifth key replaces the least recently replayed, which then starts over (a direct run, then
 * a capture). The output is the direct run's (same kernels on the same buffers). A
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

/*
 * Codes in: the group stages on the device, so that only integers go up per call. For G
 * groups, as the CPU decoder's flush computes them (flexicodec.h, codec.c):
 *
 *     FSQ index → normalised code (a concealed group's code interpolated between its
 *       received neighbours) → project_out → ConvNeXt decoder (depthwise conv k 7, LayerNorm,
 *       pointwise Linear → GELU → Linear, layer scale when the model has one, residual) → cnx
 *       out, the semantic latent (without decode_semantic_for_codec: project_out's output)
 *     + Σ over the group's transmitted stages q of out_proj_q(codebook_q[code]) (0 stages:
 *       nothing added)
 *     → each group's row repeated for its length in frames → x[T][latent_dim].
 */
typedef struct flexicodec_cuda_codes {
    int n_groups;           /* G ≥ 1 */
    const int32_t *lengths; /* [G] frames per group, ≥ 0 (Σ ≥ 1) */
    const int32_t *fsq;     /* [G] FSQ indices in [0, fsq_size); a concealed group's is unread */
    const int32_t *rvq;     /* [G][ldr]: group g's stage-q code at rvq[g·ldr + q] */
    int ldr;                /* ≥ every group's stage count; entries past a group's count unread */
    const int32_t *n_stages; /* [G] stages decoded per group (≤ the context's max_stages);
                              * negative: a concealed group (no codes, FSQ code interpolated) */
} flexicodec_cuda_codes;

/*
 * Makes the context take codes (load time): allocates the group-stage buffers for up to
 * max_groups groups with up to max_stages RVQ stages (≤ the model's n_codebooks) and a latent
 * of up to max_latent_frames frames for a segmented decode. Once per context. Errors:
 * SOTTO_ERR_INVALID_ARG (NULL, a bound out of range), SOTTO_ERR_STATE (already enabled),
 * SOTTO_ERR_DEVICE, SOTTO_ERR_OUT_OF_MEMORY.
 */
int flexicodec_cuda_enable_codes(flexicodec_cuda *c, int max_groups, int max_stages,
                                 int max_latent_frames, sotto_status *st);

/*
 * One window from codes: the group stages and the decode of their T ≤ max_frames frames into
 * out_host[flexicodec_cuda_output_length(c, T)], as flexicodec_cuda_decode of the latent the
 * CPU would build. The codes are checked on the host, then uploaded in one copy. With graphs
 * on, the whole device work (group stages included) is one graph per (T, G, stages decoded).
 * Returns the sample count, or SOTTO_ERR_STATE (codes not enabled), SOTTO_ERR_INVALID_ARG
 * (NULL, counts out of range, an index or code out of range, T > max_frames or > the latent
 * bound), SOTTO_ERR_BUFFER_TOO_SMALL, SOTTO_ERR_INTERNAL (a non-finite sample), or the sticky
 * error, as flexicodec_cuda_decode.
 */
int64_t flexicodec_cuda_decode_codes(flexicodec_cuda *c, const flexicodec_cuda_codes *in,
                                     float *out_host, int64_t capacity);

/*
 * A segmented decode: flexicodec_cuda_latent_from_codes runs the group stages of a whole
 * utterance into the context's latent buffer (up to max_latent_frames frames; returns T or an
 * error as above; always directly, never as a graph), then each flexicodec_cuda_decode_window
 * decodes frames [t0, t0 + T) of it (T ≤ max_frames; the frames are copied on the device,
 * outside the graph, which is keyed by T alone) into out_host, as flexicodec_cuda_decode of
 * those latent frames. A window outside the last latent (or after a decode_codes call, which
 * does not keep one) is SOTTO_ERR_INVALID_ARG.
 */
int64_t flexicodec_cuda_latent_from_codes(flexicodec_cuda *c, const flexicodec_cuda_codes *in);
int64_t flexicodec_cuda_decode_window(flexicodec_cuda *c, int64_t t0, int T, float *out_host,
                                      int64_t capacity);

/*
 * Batches: n independent utterances from codes (no concealed groups) in one forward, for
 * throughput. They are packed along time, item after item, with flexicodec_cuda_batch_gap()
 * zero frames between neighbours in the latent (and FLEXICODEC_CONVNEXT_K − 1 zero groups in
 * the group stages): the fewest that keep every convolution's receptive field, through the
 * DAC's upsamplers, inside its own item; each gap is zeroed again after every layer that
 * writes it. Every GEMM and conv runs once over the packed sequence; RoPE and attention run
 * once per item on its own rows (positions from 0), so no item attends to another. Item j's
 * samples equal flexicodec_cuda_decode_codes of that item alone, up to the summation order
 * cuBLAS picks for the larger row count.
 */
/* items of one batch */
#define FLEXICODEC_CUDA_BATCH_MAX 64
/* zero groups between items */
#define FLEXICODEC_CUDA_BATCH_GROUP_GAP (FLEXICODEC_CONVNEXT_K - 1)

typedef struct flexicodec_cuda_item {
    int n_groups;           /* ≥ 1 */
    const int32_t *lengths; /* [n_groups] frames per group, ≥ 1 */
    const int32_t *fsq;     /* [n_groups] FSQ indices in [0, fsq_size) */
    const int32_t *rvq;     /* [n_groups][ldr]: group g's stage-q code at rvq[g·ldr + q] */
    int ldr;                /* ≥ n_stages */
    int n_stages;           /* stages decoded for every group, 0..the context's max_stages */
} flexicodec_cuda_item;

/* Zero latent frames between two packed items (14 for the release's strides); 0 for NULL. */
int flexicodec_cuda_batch_gap(const flexicodec_cuda *c);
/* The context's bounds: frames of one forward (create), groups (enable_codes); 0 for NULL. */
int flexicodec_cuda_max_frames(const flexicodec_cuda *c);
int flexicodec_cuda_max_groups(const flexicodec_cuda *c);

/*
 * Decodes items[0..n) as one batch into out_host[j] (capacity[j] samples each,
 * flexicodec_cuda_output_length of the item's frames written). The packed sequence must fit
 * the context: Σ frames + (n − 1)·batch_gap ≤ max_frames and Σ groups + (n − 1)·(K − 1) ≤
 * max_groups. Runs directly, never as a graph. Returns SOTTO_OK, or (for the whole batch)
 * SOTTO_ERR_STATE (codes not enabled), SOTTO_ERR_INVALID_ARG (NULL, n outside 1..64, an item
 * out of range, a batch larger than the context), SOTTO_ERR_BUFFER_TOO_SMALL (a capacity),
 * SOTTO_ERR_INTERNAL (a non-finite sample) or the context's sticky error.
 */
int flexicodec_cuda_decode_batch(flexicodec_cuda *c, int n, const flexicodec_cuda_item *items,
                                 float *const *out_host, const int64_t *capacity);

/* What the last failed call found ("" when none did). */
const char *flexicodec_cuda_last_error(const flexicodec_cuda *c);

#endif /* SOTTO_HAVE_CUDA */

#endif
