/*
 * Vocoder streams: features (or codec codes, or audio for analysis–synthesis) in, waveform
 * out, with exact chunked streaming. Works with models whose architecture is "vocos".
 *
 * Usage walkthrough
 *
 *     sotto_vocoder *voc = NULL;
 *     sotto_vocoder_params vp = sotto_vocoder_default_params();
 *     if (sotto_vocoder_create(model, &vp, &voc, &st) != SOTTO_OK) { ...st.message... }
 *     int hop = sotto_vocoder_hop_samples(voc);
 *     float out[64 * 1024];
 *     for (each chunk of n mel frames, [n][feature_dim] floats) {
 *         int got = sotto_vocoder_push_features(voc, frames, n, out, 64 * 1024);
 *         if (got < 0) { ...sotto_vocoder_last_error(voc)... }
 *         play(out, got);
 *     }
 *     int got = sotto_vocoder_flush(voc, out, 64 * 1024);   // the tail
 *     sotto_vocoder_free(voc);
 *
 * Exactness: the stream emits only samples that no future input can change. Whatever the
 * chunking (1 frame at a time or all at once), the concatenated output equals the offline
 * output of the reference model (within float rounding) and has the same length:
 * hop·(T−1) samples for "center" models, hop·T for "same" models, T = frames pushed.
 * The price is a look-ahead: sample output trails input by sotto_vocoder_lookahead_samples().
 *
 * Output buffers: every push/flush returns the number of samples written (≥ 0) or a negative
 * error. If `capacity` is too small for what the call would emit, it returns
 * SOTTO_ERR_BUFFER_TOO_SMALL and consumes nothing; sotto_vocoder_max_output_samples() gives a
 * capacity that is always enough.
 *
 * Batches: sotto_vocoder_vocode_batch vocodes many whole feature sequences in one call, each
 * exactly as a fresh stream would (on a CUDA model as batched forwards: docs/gpu.md).
 *
 * Threads: a vocoder is used by one thread at a time; many vocoders may share one model.
 * Nothing allocates, locks or logs inside push/flush/reset and vocode_batch.
 */
#ifndef SOTTO_VOCODER_H
#define SOTTO_VOCODER_H

#include "sotto.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sotto_vocoder sotto_vocoder;

typedef struct sotto_vocoder_params {
    int max_chunk_frames; /**< frames processed per internal step, 1..4096; default 64.
                               Larger pushes are split; it only sizes scratch memory. */
    int bandwidth_id;     /**< AdaLayerNorm row for bandwidth-conditioned models (EnCodec
                               features: 0 = 1.5, 1 = 3, 2 = 6, 3 = 12 kbps); default 0 */
    int max_batch_frames; /**< sotto_vocoder_vocode_batch on a CUDA model: frames of one batched
                               forward (the items of a call are grouped to fit), 0..1<<20;
                               default 0: the stream's own window, which suits short items
                               only. Sizes device memory; ignored on the CPU. */
} sotto_vocoder_params;

/** Defaults listed in sotto_vocoder_params. */
SOTTO_API sotto_vocoder_params sotto_vocoder_default_params(void);

/**
 * Creates a vocoder stream on a loaded model. [in] model (must outlive the stream),
 * [in] params (NULL: defaults), [out] out, [out] status (may be NULL).
 * Errors: SOTTO_ERR_INVALID_ARG, SOTTO_ERR_UNSUPPORTED (model is not a vocoder),
 * SOTTO_ERR_MODEL (missing or misshapen tensor, named in status), SOTTO_ERR_OUT_OF_MEMORY.
 */
SOTTO_API SOTTO_WUR int sotto_vocoder_create(const sotto_model *model,
                                             const sotto_vocoder_params *params,
                                             sotto_vocoder **out, sotto_status *status);

/** Frees a vocoder (NULL is ignored). */
SOTTO_API void sotto_vocoder_free(sotto_vocoder *voc);

/**
 * Pushes n_frames feature frames, [n_frames][feature_dim] floats (time-major: one frame's
 * features contiguous). For mel models these are the model's log-mel features (as its own
 * front end computes them); for EnCodec models, summed code embeddings. Returns samples
 * written to [out] out (capacity in samples), or an error: SOTTO_ERR_INVALID_ARG,
 * SOTTO_ERR_BAD_AUDIO (non-finite feature), SOTTO_ERR_BUFFER_TOO_SMALL, SOTTO_ERR_STATE
 * (after flush without reset).
 */
SOTTO_API SOTTO_WUR int sotto_vocoder_push_features(sotto_vocoder *voc, const float *frames,
                                                    int n_frames, float *out,
                                                    size_t capacity);

/**
 * Pushes codec codes for code-conditioned models (EnCodec features): [n_frames][n_codebooks]
 * indices, n_codebooks = sotto_vocoder_num_codebooks() for the current bandwidth. Errors as
 * push_features, plus SOTTO_ERR_UNSUPPORTED for mel models and SOTTO_ERR_INVALID_ARG for an
 * index outside the codebook.
 */
SOTTO_API SOTTO_WUR int sotto_vocoder_push_codes(sotto_vocoder *voc, const int32_t *codes,
                                                 int n_frames, float *out, size_t capacity);

/**
 * Analysis–synthesis: pushes mono audio at the model's sample rate through the model's own
 * front end (mel models only) and returns resynthesised samples. Errors as push_features,
 * plus SOTTO_ERR_UNSUPPORTED for models without an audio front end.
 */
SOTTO_API SOTTO_WUR int sotto_vocoder_push_audio(sotto_vocoder *voc, const float *pcm,
                                                 size_t n_samples, float *out,
                                                 size_t capacity);

/** Ends the stream: writes every remaining sample. Further pushes need a reset. */
SOTTO_API SOTTO_WUR int sotto_vocoder_flush(sotto_vocoder *voc, float *out, size_t capacity);

/** One feature sequence of sotto_vocoder_vocode_batch. */
typedef struct sotto_vocoder_item {
    const float *frames; /**< [n_frames][feature_dim] features, as push_features takes them */
    int n_frames;        /**< ≥ 1 */
    float *out;          /**< the sequence's waveform */
    size_t capacity;     /**< samples at out; sotto_vocoder_offline_samples(n_frames) suffice */
    int result;          /**< [out] samples written (offline_samples), or this item's error */
} sotto_vocoder_item;

/** Samples an offline vocoding of n_frames frames writes: push_features of all of them then
 * flush on a fresh stream, and sotto_vocoder_vocode_batch per item (0 for n_frames < 1). */
SOTTO_API int64_t sotto_vocoder_offline_samples(const sotto_vocoder *voc, int n_frames);

/**
 * Offline vocoding of n independent feature sequences in one call, for throughput (a folder of
 * files, many speakers at once): item i gets exactly what push_features of its frames then
 * flush write on a fresh stream, or an error in its `result` (SOTTO_ERR_INVALID_ARG for a NULL
 * buffer or n_frames < 1, SOTTO_ERR_BAD_AUDIO for a non-finite feature,
 * SOTTO_ERR_BUFFER_TOO_SMALL for a capacity below sotto_vocoder_offline_samples; the other
 * items still run). On a CUDA model (docs/gpu.md) the items run as batched forwards, every
 * layer once over up to params.max_batch_frames frames of them together, at most 64 items
 * each; an item longer than that runs alone through the stream. On the CPU they run one after
 * another. The stream is reset before and after (its own signal is lost). Returns SOTTO_OK when
 * every item succeeded, else the first failing item's error (a device failure: every later
 * item reports SOTTO_ERR_DEVICE); SOTTO_ERR_INVALID_ARG for voc NULL, n < 0 or items NULL
 * with n > 0. Features only (not codes or audio).
 */
SOTTO_API int sotto_vocoder_vocode_batch(sotto_vocoder *voc, sotto_vocoder_item *items, int n);

/** Clears all stream state; parameters (bandwidth) are kept. */
SOTTO_API int sotto_vocoder_reset(sotto_vocoder *voc);

/** Selects the AdaLayerNorm bandwidth row (0..n-1); takes effect for frames pushed next.
 * Errors: SOTTO_ERR_INVALID_ARG (out of range), SOTTO_ERR_UNSUPPORTED (not conditioned). */
SOTTO_API int sotto_vocoder_set_bandwidth(sotto_vocoder *voc, int bandwidth_id);

/** An output capacity (samples) always enough for one push of n_frames frames or for a
 * flush; for push_audio pass n_frames = n_samples / hop + 1. */
SOTTO_API size_t sotto_vocoder_max_output_samples(const sotto_vocoder *voc, int n_frames);

SOTTO_API int sotto_vocoder_sample_rate_hz(const sotto_vocoder *voc);
SOTTO_API int sotto_vocoder_hop_samples(const sotto_vocoder *voc);
SOTTO_API int sotto_vocoder_feature_dim(const sotto_vocoder *voc);
/** Codebooks per frame for code input at the current bandwidth (0 for mel models). */
SOTTO_API int sotto_vocoder_num_codebooks(const sotto_vocoder *voc);
/** Frames of future input needed before a frame's samples are final. */
SOTTO_API int sotto_vocoder_lookahead_frames(const sotto_vocoder *voc);
/** Algorithmic latency in samples between input and the output it makes final. */
SOTTO_API int sotto_vocoder_lookahead_samples(const sotto_vocoder *voc);
/** Detail of the last failed call on this object ("" if none); never NULL. */
SOTTO_API const char *sotto_vocoder_last_error(const sotto_vocoder *voc);

#ifdef __cplusplus
}
#endif

#endif /* SOTTO_VOCODER_H */
