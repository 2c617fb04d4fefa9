/*
 * Neural speech codec streams. This header holds the decoder side: groups of codes in,
 * waveform out, for models whose architecture is "flexicodec" (FlexiCodec: 16 kHz, 12.5 Hz
 * frames merged into groups of 1..max_group_length frames, each group carrying one FSQ
 * index (semantic), up to max_stages RVQ codes (acoustic) and its length). The encoder side
 * (audio in, groups out) will join it here.
 *
 * Usage walkthrough
 *
 *     sotto_decoder *dec = NULL;
 *     sotto_decoder_params dp = sotto_decoder_default_params();
 *     dp.max_frames = 750;                            // up to one minute (12.5 Hz)
 *     if (sotto_decoder_create(model, &dp, &dec, &st) != SOTTO_OK) { ...st.message... }
 *     for (each packet: G groups, n_stages RVQ codes per group) {
 *         int rc = sotto_decoder_push(dec, lengths, fsq, rvq, G, n_stages);
 *         if (rc < 0) { ...sotto_decoder_last_error(dec)... }
 *     }
 *     // a packet of K groups was lost (lengths known from side information, or NULL):
 *     sotto_decoder_conceal(dec, K, NULL);
 *     size_t cap = sotto_decoder_max_output_samples(dec);
 *     float *pcm = malloc(cap * sizeof(float));
 *     int n = sotto_decoder_flush(dec, pcm, cap);     // the whole utterance
 *     play(pcm, n);
 *     sotto_decoder_reset(dec);                       // next utterance
 *     sotto_decoder_free(dec);
 *
 * How decoding works. The model is not causal: the semantic ConvNeXt decoder and the DAC
 * decoder use symmetric convolutions and the bottleneck transformer attends to the whole
 * utterance. So the decoder buffers the groups it is given (codes only: a few bytes each)
 * and decodes at sotto_decoder_flush(), which runs the official chain
 * (FlexiCodec.decode_from_codes, flexicodec 0.1.2) once over everything pushed since create
 * or reset: FSQ decode and ConvNeXt decoder over the groups, RVQ decode per group, both
 * streams repeated by the group lengths and added, bottleneck transformer, DAC decoder.
 * Pushing in one call or in many gives the same samples.
 *
 * Segmented decoding (optional, params.segment_frames > 0): an utterance longer than
 * segment_frames frames runs the transformer and the DAC decoder in windows: each core of
 * segment_frames frames is decoded with overlap_frames frames of context on either side and
 * the seams are cross-faded linearly over one frame (hop samples). The decode scratch then
 * grows with the window instead of the utterance (only the codes and the expanded latent,
 * 2 KB per frame for the release, still grow with max_frames) and the output has the same
 * length, but it is an approximation: the transformer no longer sees the whole utterance.
 * How good it is depends on how local the trained model's attention is; it has not been
 * measured on the released weights (with random weights, whose attention is not local at
 * all, 16 frames + 2 × 8 of context differ from the whole-utterance decode by NMSE 0.17).
 * Utterances of at most segment_frames frames decode in one pass, bit-identical to the
 * default (segment_frames = 0), which never approximates.
 *
 * Output length: for T = Σ lengths frames (concealed groups included) a flush returns
 * exactly what decode_from_codes returns, 1280·T − 16 samples for the released model
 * (hop·T minus what the decoder's odd-stride block trims; see
 * sotto_decoder_output_samples()). Trimming the codec's padding is the container's job.
 *
 * Lost packets (sotto_decoder_conceal*): every lost group keeps its place and its length,
 * so the output keeps its duration and stays aligned. Its semantic input (the FSQ code
 * after project_out) is interpolated linearly between the nearest received groups before
 * and after the gap (held from the one side at the utterance's edges; the zero code when
 * nothing was received at all), and it gets no acoustic residual (0 RVQ stages): the lost
 * span decodes from the semantic path alone, a smooth continuation without silence. Since
 * decoding waits for flush, a gap is filled from both sides even when packets after it
 * arrive later. A lost group of unknown length gets the rounded mean length of the groups
 * received so far (2 before any), clamped to 1..max_group_length; when the lost duration
 * is known in frames (e.g. from timestamps), sotto_decoder_conceal_frames() keeps it exact.
 *
 * Memory: everything is allocated by sotto_decoder_create, sized from params (max_frames,
 * max_groups, segment_frames); push, conceal, flush and reset never allocate, lock, print or
 * log. Threads: the model params' n_threads workers serve one decoder; a decoder is used by
 * one thread at a time and many decoders may share one model.
 *
 * Errors: calls return SOTTO_OK / a count ≥ 0, or a negative sotto_error. A failing call
 * changes nothing (every input is validated before anything is buffered) and leaves its
 * reason in sotto_decoder_last_error().
 */
#ifndef SOTTO_CODEC_H
#define SOTTO_CODEC_H

#include "sotto.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- decoder ---------------------------------------------------------------------------- */

typedef struct sotto_decoder sotto_decoder;

typedef struct sotto_decoder_params {
    int max_frames;     /**< frames (12.5 Hz) one utterance may hold, pushed and concealed
                             together; 1..1000000; default 375 (30 s). Sizes the code buffer
                             and, without segmenting, the decode scratch (the full model
                             needs about 0.75 MB per frame). */
    int max_groups;     /**< groups one utterance may hold; 0 (default): max_frames */
    int max_stages;     /**< RVQ stages decoded, 0..the model's (sotto_decoder_max_stages);
                             stages pushed beyond it are checked and dropped (a lower
                             bitrate); -1 (default): all the model has */
    int segment_frames; /**< 0 (default): decode the whole utterance in one pass. Else
                             8..max_frames: windows of this many frames (see above); when
                             segment + 2·overlap ≥ max_frames every utterance fits one
                             window and nothing is segmented */
    int overlap_frames; /**< context frames on each side of a window, 1..segment_frames;
                             default 16 (1.28 s); used only when segmenting */
} sotto_decoder_params;

/** Defaults listed in sotto_decoder_params. */
SOTTO_API sotto_decoder_params sotto_decoder_default_params(void);

/**
 * Creates a decoder on a loaded model. [in] model (architecture "flexicodec"; must outlive
 * the decoder), [in] params (NULL: defaults), [out] out (NULL on failure), [out] status (may
 * be NULL). Errors: SOTTO_ERR_INVALID_ARG (NULL model/out, a parameter out of range, named
 * in status), SOTTO_ERR_UNSUPPORTED (the model is not a FlexiCodec model),
 * SOTTO_ERR_OUT_OF_MEMORY (the bounds need more memory than can be allocated).
 */
SOTTO_API SOTTO_WUR int sotto_decoder_create(const sotto_model *model,
                                             const sotto_decoder_params *params,
                                             sotto_decoder **out, sotto_status *status);

/** Frees a decoder (NULL is ignored). */
SOTTO_API void sotto_decoder_free(sotto_decoder *dec);

/**
 * Appends n_groups received groups. [in] lengths[n_groups]: frames per group,
 * 1..sotto_decoder_max_group_length(); [in] fsq[n_groups]: FSQ indices,
 * 0..sotto_decoder_fsq_size() − 1; [in] rvq[n_groups][n_stages] (row-major, group by group;
 * may be NULL when n_stages is 0): RVQ codes, stage q of group g at rvq[g·n_stages + q],
 * each 0..sotto_decoder_codebook_size() − 1; n_stages 0..sotto_decoder_max_stages() (the
 * first n_stages stages, coarse to fine; it may change from push to push: fewer stages =
 * lower bitrate; 0: semantic only). n_groups 0 does nothing. Returns SOTTO_OK or an error,
 * with nothing appended: SOTTO_ERR_INVALID_ARG (NULL pointer, negative count, n_stages out
 * of range, a code or length out of range: the message names the group and stage),
 * SOTTO_ERR_BUFFER_TOO_SMALL (the utterance would exceed params max_frames or max_groups:
 * flush first, or create with larger bounds), SOTTO_ERR_STATE (after flush, before reset).
 */
SOTTO_API SOTTO_WUR int sotto_decoder_push(sotto_decoder *dec, const int32_t *lengths,
                                           const int32_t *fsq, const int32_t *rvq, int n_groups,
                                           int n_stages);

/**
 * Marks n_groups groups as lost (a lost packet) and conceals them as described at the top.
 * [in] lengths[n_groups]: their lengths when known (1..max_group_length), or NULL when
 * unknown (each then gets the mean received length). Errors as sotto_decoder_push.
 */
SOTTO_API SOTTO_WUR int sotto_decoder_conceal(sotto_decoder *dec, int n_groups,
                                              const int32_t *lengths);

/**
 * Marks a lost span of exactly n_frames frames (duration known, grouping unknown) and
 * conceals it as groups of the mean received length (the last one shorter), so the output
 * keeps the exact duration. n_frames 0 does nothing. Errors as sotto_decoder_push.
 */
SOTTO_API SOTTO_WUR int sotto_decoder_conceal_frames(sotto_decoder *dec, int n_frames);

/**
 * Decodes everything pushed since create or reset into [out] out (capacity in samples) and
 * ends the utterance; returns the number of samples, sotto_decoder_output_samples() (0 when
 * nothing was pushed). Further pushes need sotto_decoder_reset(). Errors (nothing decoded,
 * the utterance kept): SOTTO_ERR_INVALID_ARG (NULL), SOTTO_ERR_BUFFER_TOO_SMALL (capacity
 * below the output length), SOTTO_ERR_STATE (already flushed), SOTTO_ERR_INTERNAL.
 */
SOTTO_API SOTTO_WUR int sotto_decoder_flush(sotto_decoder *dec, float *out, size_t capacity);

/** Forgets the buffered utterance (and the flushed state); parameters are kept. */
SOTTO_API int sotto_decoder_reset(sotto_decoder *dec);

/** Samples a flush would return now (for the frames buffered so far). */
SOTTO_API size_t sotto_decoder_output_samples(const sotto_decoder *dec);
/** A flush capacity always enough: the output length for params.max_frames frames. */
SOTTO_API size_t sotto_decoder_max_output_samples(const sotto_decoder *dec);
/** Frames (12.5 Hz) buffered so far, concealed ones included. */
SOTTO_API int sotto_decoder_buffered_frames(const sotto_decoder *dec);
/** Groups buffered so far, concealed ones included. */
SOTTO_API int sotto_decoder_buffered_groups(const sotto_decoder *dec);

SOTTO_API int sotto_decoder_sample_rate_hz(const sotto_decoder *dec);
/** Samples per frame (1280 at 16 kHz: 12.5 Hz). */
SOTTO_API int sotto_decoder_hop_samples(const sotto_decoder *dec);
/** RVQ stages the model stores (24 for the release); a push may carry up to this many. */
SOTTO_API int sotto_decoder_max_stages(const sotto_decoder *dec);
/** RVQ stages actually decoded: min(params.max_stages, max_stages). */
SOTTO_API int sotto_decoder_decoded_stages(const sotto_decoder *dec);
/** Entries per RVQ codebook (4096: 12-bit codes). */
SOTTO_API int sotto_decoder_codebook_size(const sotto_decoder *dec);
/** FSQ indices per group (32768: 15-bit codes). */
SOTTO_API int32_t sotto_decoder_fsq_size(const sotto_decoder *dec);
/** Longest group in frames (the model's max_tokens_per_group, 8 for the release). */
SOTTO_API int sotto_decoder_max_group_length(const sotto_decoder *dec);
/** Detail of the last failed call on this object ("" if none); never NULL. */
SOTTO_API const char *sotto_decoder_last_error(const sotto_decoder *dec);

#ifdef __cplusplus
}
#endif

#endif /* SOTTO_CODEC_H */
