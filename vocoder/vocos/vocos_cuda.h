/*
 * Vocos on the CUDA layer library (backend/cuda/cuda_ops.h): what a sotto_vocoder on a model
 * loaded for CUDA runs (vocoder.c; docs/gpu.md). None of it has run on a GPU yet.
 *
 * vocos_cuda_create reads the weights the CPU loader made (vocos.h), converts each back to
 * PyTorch layout in f32 on the host (f32, f16-panel and pair-packed binary16 Linear weights
 * alike: f16 values widen exactly), folds each block's layer scale γ into its pwconv2 rows
 * and bias, and uploads everything once, with the activation buffers, a scratch pool and the
 * ISTFT plan sized for max_frames. Every forward is then the same fixed list of layers:
 *
 *     features → zero-pad 3 frames each side → embed conv (k 7) → (Ada)LayerNorm
 *     → per ConvNeXt block, on the residual stream kept between 3 zero frames each side:
 *         dwconv (k 7) → (Ada)LayerNorm (eps 1e-6) → pwconv1 → GELU (erf)
 *         → x += (γ·pwconv2)(·) + γ·b
 *     → final LayerNorm → head: mag = min(exp(x[:F]), 100), phase = x[F:]
 *     → ISTFT ("center" or "same", as the model says)
 *
 * Three ways to run it:
 *   - offline (vocos_cuda_offline): one feature sequence, the CPU vocoder's offline output
 *     (push_features of all frames, then flush): sotto_istft_length(T) samples;
 *   - batch (vocos_cuda_offline_batch): many independent sequences in one call. They are
 *     packed time-major into one buffer with 3 zero frames between neighbours (the padding
 *     each k = 7 conv needs), zeroed again after every layer that writes them, so every conv,
 *     norm and GEMM runs once over the whole batch; the ISTFT runs per sequence. Each output
 *     equals what vocos_cuda_offline gives for that sequence alone;
 *   - streaming (vocos_cuda_stream_*): push a few frames, get the samples the CPU vocoder's
 *     exact streaming (sotto_vocoder_push_features / flush) releases for them. Each step
 *     recomputes a fixed window of recent frames that covers the receptive field (3 frames
 *     per k = 7 conv on each side, plus the ISTFT overlap) from a device-side copy of the
 *     recent features, and keeps only the samples that just became final. A step of fixed
 *     size can be captured once as a CUDA graph and replayed (backend/cuda/cuda_graph.h).
 *
 * All arithmetic is f32; vocos_cuda_set_tf32 lets the GEMMs use TF32 tensor cores instead
 * (faster, less exact; off by default). Weights made with vocos_cuda_weights_create(bf16 = 1)
 * keep the embedding conv, pwconv1/2 and head Linears in bf16 (half their device memory) and
 * run those GEMMs on bf16 inputs with f32 sums (backend/cuda/cuda_ops.h, SOTTO_CUDA_BF16);
 * norms, depthwise convs, activations and the ISTFT stay f32. Against the f32 CPU vocoder
 * that costs an output NMSE of about 3e-5, an SNR of 45 dB (tests/gpu/test_vocos_cuda.c).
 *
 * Scope: every Vocos model sotto_vocos_load accepts. Mel and EnCodec-feature models alike take
 * feature frames here: an EnCodec model's frames are the sums of the selected codebook rows,
 * which the caller makes on the host (vocoder.c does, for sotto_vocoder_push_codes), as it
 * makes mel frames from audio. AdaLayerNorm (bandwidth-conditioned) models run with the
 * context's selected bandwidth (vocos_cuda_set_bandwidth; 0 at creation).
 *
 * Threads and ownership: a context and the streams made on it serve one thread at a time.
 * Streams borrow the context's activation buffers (each call leaves nothing in them that a
 * later call needs), so offline, batch and stream calls on one context may interleave in one
 * thread. Free the streams before their context.
 *
 * Everything here exists only in builds with the CUDA backend (SOTTO_HAVE_CUDA); without it
 * this header declares nothing.
 */
#ifndef SOTTO_VOCOS_CUDA_H
#define SOTTO_VOCOS_CUDA_H

#ifdef SOTTO_HAVE_CUDA

#include <stdint.h>

#include "vocoder/vocos/vocos.h"

typedef struct vocos_cuda vocos_cuda;
typedef struct vocos_cuda_stream vocos_cuda_stream;

/*
 * Makes a CUDA context on `device`, uploads the weights w (host, as loaded by
 * sotto_vocos_load; only read, and not needed afterwards) and allocates every buffer a call of
 * up to max_frames feature frames needs (for a batch: all its sequences together, plus 3 per
 * gap between neighbours). Errors: SOTTO_ERR_INVALID_ARG (NULL, max_frames out of
 * 1..1<<20), SOTTO_ERR_DEVICE (no such device, or a CUDA / cuBLAS / cuFFT failure; st says
 * which call), SOTTO_ERR_OUT_OF_MEMORY.
 */
int vocos_cuda_create(const vocos_weights *w, int device, int max_frames, vocos_cuda **out,
                      sotto_status *st);
void vocos_cuda_free(vocos_cuda *c);

/*
 * A model's weights on the device, uploaded once (model load) and shared: each context made
 * with vocos_cuda_create_shared reads them from its own stream and owns only its activations,
 * ISTFT plan and scratch (vocos_cuda_create is weights_create + create_shared in one, the
 * context owning its weights, in f32). bf16 = 1 stores the GEMM weights in bf16 (see above;
 * the contexts' scratch then also holds a Linear's input rounded to bf16), 0 in f32. The
 * weights must outlive every context made on them; they are only read, so contexts on several
 * threads may use them at once. Errors of weights_create as vocos_cuda_create's, less the
 * max_frames check.
 */
typedef struct vocos_cuda_weights vocos_cuda_weights;
int vocos_cuda_weights_create(const vocos_weights *w, int device, int bf16,
                              vocos_cuda_weights **out, sotto_status *st);
void vocos_cuda_weights_free(vocos_cuda_weights *wt);
int vocos_cuda_create_shared(const vocos_cuda_weights *wt, int max_frames, vocos_cuda **out,
                             sotto_status *st);

/* Lets the GEMMs run on TF32 tensor cores (allow = 1) or keeps them f32 (0, the default). */
void vocos_cuda_set_tf32(vocos_cuda *c, int allow);

/*
 * AdaLayerNorm models: selects the bandwidth row (0..adanorm_num_embeddings − 1) every later
 * forward of the context and of its streams uses (one device copy of that row of each norm
 * into the context's own buffer, enqueued on its stream; no allocation). Captured graphs read
 * that buffer, so they stay valid across changes and are not captured again. A change in the
 * middle of a stream's signal applies to every frame its next step recomputes, frames already
 * pushed included (the CPU vocoder applies it as each layer reaches a frame): for the CPU's
 * exact samples, change it between signals (after a flush or reset). Returns SOTTO_OK,
 * SOTTO_ERR_UNSUPPORTED (the model has no AdaLayerNorm), SOTTO_ERR_INVALID_ARG (NULL, id out
 * of range; the selection is kept), or the context's sticky error.
 */
int vocos_cuda_set_bandwidth(vocos_cuda *c, int id);
/* The selected bandwidth row (0 on a model without AdaLayerNorm). */
int vocos_cuda_bandwidth(const vocos_cuda *c);

/* Samples vocos_cuda_offline writes for T frames (0 for T < 1). */
int64_t vocos_cuda_output_length(const vocos_cuda *c, int64_t T);
/* The max_frames the context was made for. */
int vocos_cuda_max_frames(const vocos_cuda *c);

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

/*
 * The offline forward of n_seq independent sequences in one pass: sequence i is
 * features_host[i][frames[i]][input_channels] and gets its vocos_cuda_output_length(c,
 * frames[i]) samples in out_host[i] (capacity[i] floats). The sequences together must fit the
 * context: Σ frames[i] + 3·(n_seq − 1) ≤ max_frames. Blocks until every output is on the
 * host. Returns the total sample count, or SOTTO_ERR_INVALID_ARG (NULL array or pointer,
 * n_seq < 1, a frame count < 1, the batch larger than the context), SOTTO_ERR_BAD_AUDIO,
 * SOTTO_ERR_BUFFER_TOO_SMALL (any capacity below its count; nothing is written), or the
 * context's sticky error.
 */
int64_t vocos_cuda_offline_batch(vocos_cuda *c, int n_seq, const float *const *features_host,
                                 const int *frames, float *const *out_host,
                                 const int64_t *capacity);

/* What the last failed call on the context or one of its streams found ("" when none did). */
const char *vocos_cuda_last_error(const vocos_cuda *c);

/* ---- streaming ---------------------------------------------------------------------------- */

/*
 * A stream on context c that takes up to max_step_frames frames per push. Its window of
 * recent frames, max_step_frames + 6·(num_layers + 1) + ⌊(n_fft − 1)/hop⌋ frames, must fit
 * the context's max_frames. With use_graph, every push whose window has its full, steady size
 * runs as a CUDA graph, captured at the first such push of its size and TF32 setting and
 * replayed after that; the stream keeps 4 such graphs (a fifth size replaces the least
 * recently used, which is captured again when its size comes back). Other steps (the first
 * few, and flush) run the same layers directly. Errors: SOTTO_ERR_INVALID_ARG (NULL,
 * max_step_frames outside 1..4096 or its window larger than max_frames), SOTTO_ERR_OUT_OF_MEMORY,
 * the context's sticky error or SOTTO_ERR_DEVICE (st says which call).
 */
int vocos_cuda_stream_create(vocos_cuda *c, int max_step_frames, int use_graph,
                             vocos_cuda_stream **out, sotto_status *st);
void vocos_cuda_stream_free(vocos_cuda_stream *s);
/* The window of a stream of up to max_step_frames-frame pushes on a model with weights w:
 * max_step_frames + 6·(num_layers + 1) + ⌊(n_fft − 1)/hop⌋ frames, the smallest max_frames of
 * a context that can hold such a stream (0 for NULL or max_step_frames < 1). */
int vocos_cuda_stream_window_frames(const vocos_weights *w, int max_step_frames);
/* Forgets the signal (a flushed stream can be used again). Returns SOTTO_OK, or the context's
 * sticky error. */
int vocos_cuda_stream_reset(vocos_cuda_stream *s);

/* Samples a push of n frames releases at most (any n ≥ 0), or flush when n = 0: capacity that
 * never gives SOTTO_ERR_BUFFER_TOO_SMALL. */
int64_t vocos_cuda_stream_max_output(const vocos_cuda_stream *s, int n);

/*
 * Pushes n frames (0..max_step_frames), features_host[n][input_channels], and writes the
 * samples that became final to out_host: exactly the count, and the samples, that
 * sotto_vocoder_push_features releases for the same frames on the CPU (0 while the stream is
 * filling). Blocks until they are on the host. Returns the count, or SOTTO_ERR_INVALID_ARG
 * (NULL, n out of range), SOTTO_ERR_STATE (flushed: reset first), SOTTO_ERR_BAD_AUDIO,
 * SOTTO_ERR_BUFFER_TOO_SMALL (the frames are not consumed), or the context's sticky error.
 */
int64_t vocos_cuda_stream_push(vocos_cuda_stream *s, const float *features_host, int n,
                               float *out_host, int64_t capacity);
/*
 * The mel front end on the device for this stream (backend/cuda/cuda_mel.h, a copy of m's
 * settings; m's mels must be the model's input channels): vocos_cuda_stream_push_padded then
 * takes samples instead of features. Load time; errors as stream_create's.
 */
struct sotto_mel;
int vocos_cuda_stream_enable_mel(vocos_cuda_stream *s, const struct sotto_mel *m, sotto_status *st);
/*
 * vocos_cuda_stream_push for n frames computed on the device from the padded signal
 * xp_host[n_avail] (sotto_mel_frames' contract: frame t reads [t·hop, t·hop + n_fft) of the
 * front end's analysis): the same frames, counts and samples as sotto_mel_frames on the CPU
 * followed by push. Errors as push, SOTTO_ERR_STATE without enable_mel, SOTTO_ERR_INVALID_ARG
 * for samples short of the frames, SOTTO_ERR_BAD_AUDIO for a NaN or infinite sample.
 */
int64_t vocos_cuda_stream_push_padded(vocos_cuda_stream *s, const float *xp_host, int64_t n_avail,
                                      int n, float *out_host, int64_t capacity);
/* Ends the signal: writes the rest of the samples (those sotto_vocoder_flush gives). Then only
 * reset is accepted. Errors as push. */
int64_t vocos_cuda_stream_flush(vocos_cuda_stream *s, float *out_host, int64_t capacity);

/* Frames accepted since reset. */
int64_t vocos_cuda_stream_frames(const vocos_cuda_stream *s);
/* Graph captures and graph replays so far (0 without use_graph). */
int64_t vocos_cuda_stream_graph_captures(const vocos_cuda_stream *s);
int64_t vocos_cuda_stream_graph_launches(const vocos_cuda_stream *s);

#endif /* SOTTO_HAVE_CUDA */

#endif
