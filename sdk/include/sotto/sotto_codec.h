/*
 * Neural speech codec streams, for models whose architecture is "flexicodec" (FlexiCodec:
 * 16 kHz, 12.5 Hz frames merged into groups of 1..max_group_length frames, each group
 * carrying one FSQ index (semantic), up to max_stages RVQ codes (acoustic) and its length).
 * The decoder side: groups of codes in, waveform out. The encoder side (sotto_encoder_*,
 * sotto_codec_encode_file; further down): audio in, groups out, for model files that hold
 * the encoder and SenseVoice as well.
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
 *     // packets from the network: bytes in, NULL for a lost one
 *     sotto_decoder_push_packet(dec, bytes, size);
 *     sotto_decoder_push_packet(dec, NULL, 0);
 *
 *     // a whole .sotto file: samples at the original length, damage reported in info
 *     float *x; int64_t n; sotto_codec_file_info info;
 *     sotto_codec_decode_file(model, "in.sotto", &dp, &x, &n, &info, &st);
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
 * max_groups, segment_frames, max_batch_frames); push, conceal, flush, reset and
 * decode_batch never allocate, lock, print or log. Threads: the model params' n_threads workers
 * serve one decoder; a decoder is used by one thread at a time and many decoders may share one
 * model.
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
    int max_frames;       /**< frames (12.5 Hz) one utterance may hold, pushed and concealed
                               together; 1..1000000; default 375 (30 s). Sizes the code buffer
                               and, without segmenting, the decode scratch (the full model
                               needs about 0.75 MB per frame). */
    int max_groups;       /**< groups one utterance may hold; 0 (default): max_frames */
    int max_stages;       /**< RVQ stages decoded, 0..the model's (sotto_decoder_max_stages);
                               stages pushed beyond it are checked and dropped (a lower
                               bitrate); -1 (default): all the model has */
    int segment_frames;   /**< 0 (default): decode the whole utterance in one pass. Else
                               8..max_frames: windows of this many frames (see above); when
                               segment + 2·overlap ≥ max_frames every utterance fits one
                               window and nothing is segmented */
    int overlap_frames;   /**< context frames on each side of a window, 1..segment_frames;
                               default 16 (1.28 s); used only when segmenting */
    int max_batch_frames; /**< sotto_decoder_decode_batch on a CUDA model: frames of one
                               batched forward, the items and the zero frames between them
                               (sotto_decoder_batch_gap_frames each) together; 0..1000000;
                               default 0: the decoder's own window (max_frames, or the
                               segment window). Sizes device memory like max_frames; ignored
                               on the CPU */
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

/* ---- batch ------------------------------------------------------------------------------ */

/** One utterance of sotto_decoder_decode_batch: its groups as sotto_decoder_push takes them
 *  (received groups only; nothing concealed), and where its samples go. */
typedef struct sotto_decoder_item {
    const int32_t *lengths; /**< [n_groups] frames per group, 1..max_group_length */
    const int32_t *fsq;     /**< [n_groups] FSQ indices */
    const int32_t *rvq;     /**< [n_groups][n_stages], stage q of group g at g·n_stages + q
                                 (may be NULL when n_stages is 0) */
    int n_groups;           /**< ≥ 0 (0: an empty utterance, 0 samples) */
    int n_stages;           /**< 0..sotto_decoder_max_stages(); stages beyond the decoder's
                                 decoded stages are checked and dropped, as by push */
    float *out;             /**< the utterance's samples */
    size_t capacity;        /**< samples at out; the output length of Σ lengths frames
                                 (sotto_decoder_output_samples after pushing them) suffices */
    int result;             /**< [out] samples written, or this item's error */
} sotto_decoder_item;

/**
 * Decodes n independent utterances in one call, for throughput (a folder of files): item i
 * gets exactly the samples that sotto_decoder_push of its groups then sotto_decoder_flush give
 * on a fresh decoder with dec's parameters, or an error in its `result`, and the other items
 * still run: SOTTO_ERR_INVALID_ARG (NULL out, a NULL array, a count, length, index or code out
 * of range), SOTTO_ERR_BUFFER_TOO_SMALL (more groups or frames than params max_groups /
 * max_frames allow, or a capacity below the output length). On a CUDA model (docs/gpu.md)
 * the items run as batched forwards: consecutive items are grouped greedily into forwards of
 * at most params.max_batch_frames frames (gaps included) and 64 items, every layer running
 * once over the group, the transformer's attention per item; an item longer than that, or
 * one the decoder would segment, runs alone through the normal path. The samples match the
 * normal path's within f32 rounding (cuBLAS may sum in another order for more rows). On the
 * CPU the items run one after another through the normal path, bit for bit. The decoder's
 * own utterance is lost: it is reset before and after. Nothing is allocated: every buffer was
 * sized at create. Threads: as every call on a decoder, one thread at a time. Returns
 * SOTTO_OK when every item succeeded, else the first failing item's error, with its detail in
 * sotto_decoder_last_error (a device failure: every later item reports SOTTO_ERR_DEVICE);
 * SOTTO_ERR_INVALID_ARG for dec NULL, n < 0 or items NULL with n > 0.
 */
SOTTO_API int sotto_decoder_decode_batch(sotto_decoder *dec, sotto_decoder_item *items, int n);

/** Zero frames sotto_decoder_decode_batch puts between two items of a batched forward on a
 *  CUDA model (14 for the release; each costs as much as a frame of audio); 0 on the CPU. */
SOTTO_API int sotto_decoder_batch_gap_frames(const sotto_decoder *dec);

/* ---- packets ---------------------------------------------------------------------------- */
/*
 * A packet is a run of consecutive groups bit-packed as docs/bitstream.md §1 specifies, with
 * the layout the model implies (its FSQ size, RVQ codebook size, stages and longest group;
 * 16 groups at most). It is what a `.sotto` file carries per Ogg packet and what a network
 * transport would carry per datagram.
 */

/**
 * Unpacks one packet of [in] size bytes and pushes its groups, as sotto_decoder_push.
 * data == NULL marks a lost packet: it is concealed as sotto_decoder_lost_packet_frames()
 * frames of unknown grouping (sotto_decoder_conceal_frames). When the lost duration is known
 * (timestamps, Ogg granule positions), call sotto_decoder_conceal_frames() instead: the output
 * then keeps its exact length. A zero-byte packet is valid and holds no groups. Errors:
 * SOTTO_ERR_FORMAT (a malformed packet: truncated, trailing bytes, a field out of range,
 * named in sotto_decoder_last_error), SOTTO_ERR_UNSUPPORTED (the model's codes do not fit
 * the packet format), and those of sotto_decoder_push; nothing is appended on error.
 */
SOTTO_API SOTTO_WUR int sotto_decoder_push_packet(sotto_decoder *dec, const uint8_t *data,
                                                  size_t size);

/** Groups one packet holds at most (16 for FlexiCodec); 0 when the model has no packets. */
SOTTO_API int sotto_decoder_packet_max_groups(const sotto_decoder *dec);
/** Bytes of the largest packet (max groups, all stages): a receive buffer always enough. */
SOTTO_API size_t sotto_decoder_packet_max_bytes(const sotto_decoder *dec);
/**
 * Frames a lost packet (push_packet with NULL) is concealed as: the rounded mean frame count
 * of the packets received so far, or before any the span of one packet of unmerged groups
 * (one second of frames rounded up: 13 for FlexiCodec, 1.04 s).
 */
SOTTO_API int sotto_decoder_lost_packet_frames(const sotto_decoder *dec);

/**
 * Packs groups into one packet for [in] model (the encoder side; what push_packet reads):
 * lengths[n_groups], fsq[n_groups], rvq[n_groups][n_stages] as in sotto_decoder_push,
 * n_groups 0..16 (0: the empty packet), n_stages 0..the model's stages. Writes the packet to
 * [out] out of [in] capacity bytes and its size to [out] written. out == NULL only computes
 * the size (nothing else is checked). Errors: SOTTO_ERR_INVALID_ARG (a value out of range,
 * named in status), SOTTO_ERR_BUFFER_TOO_SMALL, SOTTO_ERR_UNSUPPORTED (not a codec model).
 */
SOTTO_API SOTTO_WUR int sotto_codec_pack_packet(const sotto_model *model, const int32_t *lengths,
                                                const int32_t *fsq, const int32_t *rvq,
                                                int n_groups, int n_stages, uint8_t *out,
                                                size_t capacity, size_t *written,
                                                sotto_status *status);

/* ---- .sotto files ----------------------------------------------------------------------- */
/*
 * A `.sotto` file is one Ogg stream of packets (docs/bitstream.md §2): an ID header naming
 * the codec, the identity of the model that made the codes (sotto_model_identity), rates,
 * pre-skip and packet layout; a comment header; the packets, with granule positions that
 * give the exact original length. Damage (a page failing its CRC, a lost page, a malformed
 * packet, truncation) is reported and concealed, never fatal once the headers are read.
 */

/** What a `.sotto` file holds, as sotto_codec_probe_file and sotto_codec_decode_file see it. */
typedef struct sotto_codec_file_info {
    char codec[17];             /**< codec name from the ID header ("flexicodec") */
    uint8_t model_identity[32]; /**< identity of the model the stream was made with */
    int identity_matches;       /**< 1: the given model's, 0: another model's, -1: no model */
    int version;                /**< mapping version of the ID header */
    int sample_rate_hz;         /**< output rate */
    int input_rate_hz;          /**< rate of the original input (0: unknown) */
    double frame_rate_hz;       /**< nominal frame rate (12.5 for FlexiCodec) */
    int64_t pre_skip;           /**< output samples dropped at the start */
    int64_t samples;            /**< playable samples (pre-skip and end trimming applied) */
    double duration_s;          /**< samples / sample_rate_hz */
    int64_t packets;            /**< audio packets received intact */
    int64_t groups;             /**< groups received */
    int64_t frames;             /**< frames received (Σ group lengths) */
    double groups_per_s;        /**< average group (token) rate: groups / duration */
    double frames_per_s;        /**< frames received / duration (below nominal after losses) */
    int min_stages, max_stages; /**< RVQ stages per packet, fewest and most (0, 0: none) */
    int64_t file_bytes;         /**< size of the file */
    double bitrate_bps;         /**< file_bytes · 8 / duration (headers and Ogg framing in) */
    int n_comments;             /**< "KEY=value" comments in the comment header */
    /* damage */
    int64_t lost_samples;    /**< output samples lost to damage (concealed when decoding) */
    int64_t lost_frames;     /**< frames concealed by sotto_codec_decode_file */
    int64_t bad_packets;     /**< packets dropped as malformed */
    int64_t damaged_pages;   /**< pages dropped for a CRC mismatch */
    int64_t holes;           /**< gaps in the page sequence (lost pages) */
    int64_t garbage_bytes;   /**< bytes outside any valid page */
    int truncated;           /**< the file ends before its last page */
    int n_problems;          /**< damage reports (0: the file is intact) */
    char first_problem[256]; /**< the first report ("" when intact) */
} sotto_codec_file_info;

/**
 * Reads a `.sotto` file's headers and packets without decoding, into [out] info. [in] model
 * (may be NULL): when given, info->identity_matches says whether the file is from it (a
 * different model is not an error here). Errors: SOTTO_ERR_IO (cannot open or read),
 * SOTTO_ERR_FORMAT (not a `.sotto` file, damaged headers), SOTTO_ERR_UNSUPPORTED (unknown
 * mapping version), SOTTO_ERR_OUT_OF_MEMORY; damage after the headers is reported in info.
 */
SOTTO_API SOTTO_WUR int sotto_codec_probe_file(const char *path, const sotto_model *model,
                                               sotto_codec_file_info *info, sotto_status *status);

/**
 * Decodes a whole `.sotto` file with [in] model into [out] *samples (malloc'd, at least one
 * element, free with free()), *n_samples of them at the model's rate: exactly the original
 * length (the first pre_skip decoded samples dropped, the end trimmed to the last granule
 * position). [in] params (NULL: defaults): max_stages, segment_frames and overlap_frames are
 * used as in sotto_decoder_create; max_frames is the longest stream accepted (the decoder is
 * sized to the stream's actual frames; default 375 = 30 s, raise it for longer files);
 * max_groups is ignored. [out] info (may be NULL) as sotto_codec_probe_file, plus
 * lost_frames. Damage after the headers is not an error: the lost spans are concealed with
 * their exact duration (from the granule positions) so the output keeps its length and
 * alignment, the rest is decoded, and info reports it (n_problems > 0, first_problem). A
 * truncated file decodes to what it holds. Errors (nothing returned): those of
 * sotto_codec_probe_file; SOTTO_ERR_MODEL (the file is from another model or codec: the
 * message shows both identities), SOTTO_ERR_BUFFER_TOO_SMALL (longer than params
 * max_frames), SOTTO_ERR_UNSUPPORTED (not a codec model, or a file whose rates or layout the
 * model cannot decode), SOTTO_ERR_INVALID_ARG.
 */
SOTTO_API SOTTO_WUR int sotto_codec_decode_file(const sotto_model *model, const char *path,
                                                const sotto_decoder_params *params, float **samples,
                                                int64_t *n_samples, sotto_codec_file_info *info,
                                                sotto_status *status);

/** One file of sotto_codec_decode_files: its path in, what sotto_codec_decode_file would
 *  return for it out. */
typedef struct sotto_codec_decode_job {
    const char *path;           /**< [in] the `.sotto` file */
    float *samples;             /**< [out] malloc'd (at least one element; free with free()),
                                     NULL on failure */
    int64_t n_samples;          /**< [out] samples at the model's rate (0 on failure) */
    sotto_codec_file_info info; /**< [out] as sotto_codec_decode_file's info */
    sotto_status status;        /**< [out] this file's result: code SOTTO_OK, or the error and
                                     message sotto_codec_decode_file gives for it */
} sotto_codec_decode_job;

/**
 * Decodes n `.sotto` files in one call, for throughput (a folder of files): job i gets
 * exactly what sotto_codec_decode_file(model, jobs[i].path, params, ...) gives (samples,
 * length, info, and for a file that fails its error code and message), and a failing file
 * does not stop the others. One decoder serves the call, sized for its longest stream
 * (params.max_frames still bounds each file: a longer one fails as in decode_file), and
 * params.max_batch_frames sizes its batches: intact files whose packets all carry the same
 * RVQ stage count decode through sotto_decoder_decode_batch, so on a CUDA model
 * (docs/gpu.md) they run as batched forwards and their samples match decode_file's within
 * f32 rounding; files with lost or concealed spans, mixed stage counts, or a length that
 * decode_file would window differently (params.segment_frames) decode one by one inside the
 * call, as decode_file does. On the CPU every file is bit-identical to decode_file's. Memory:
 * the codes of every file (a few bytes per group) and the decoded samples of every file are
 * held together until the call returns: bound a call by the total duration of its files.
 * Threads: calls on one model may run at once (each has its own decoder). [in] model, [in,out]
 * jobs[n] (path in; samples, n_samples, info, status out), [in] params (NULL: defaults, as
 * decode_file), [out] status (may be NULL). Returns SOTTO_OK when every file decoded, else the
 * first failing job's error, its message in status; SOTTO_ERR_INVALID_ARG (nothing done) for n < 0
 * or jobs NULL with n > 0.
 */
SOTTO_API SOTTO_WUR int sotto_codec_decode_files(const sotto_model *model,
                                                 sotto_codec_decode_job *jobs, int n,
                                                 const sotto_decoder_params *params,
                                                 sotto_status *status);

/** Options of sotto_codec_write_file. */
typedef struct sotto_codec_write_params {
    int64_t pre_skip;  /**< decoded samples the reader drops at the start, 0..1 s; default 0 */
    int64_t length;    /**< original length in output samples; -1 (default): everything the
                            groups decode to after pre_skip. At most that, and the trimmed
                            tail must lie within the last packet */
    int input_rate_hz; /**< rate of the original input, informational; default 0 (unknown) */
    int page_ms;       /**< an Ogg page is closed once it spans this much audio; default 5000 */
    const char *const *comments; /**< "KEY=value" strings (UTF-8); default none */
    int n_comments;
} sotto_codec_write_params;

/** Defaults listed in sotto_codec_write_params. */
SOTTO_API sotto_codec_write_params sotto_codec_default_write_params(void);

/**
 * Writes groups (as sotto_decoder_push takes them: lengths, fsq, rvq[g·n_stages + q], one
 * stage count for the whole stream) to a `.sotto` file for [in] model, the model's identity
 * in its header. Packets close at 16 groups or once they span one second, as the encoder
 * does. sotto_codec_encode_file (and `sotto encode`) write through it. n_groups 0 writes a
 * valid empty
 * stream. Errors: SOTTO_ERR_INVALID_ARG (a code, length or parameter out of range, named in
 * status), SOTTO_ERR_IO (the file cannot be written; a partial file is removed),
 * SOTTO_ERR_UNSUPPORTED (not a codec model), SOTTO_ERR_OUT_OF_MEMORY.
 */
SOTTO_API SOTTO_WUR int sotto_codec_write_file(const sotto_model *model, const char *path,
                                               const int32_t *lengths, const int32_t *fsq,
                                               const int32_t *rvq, int n_groups, int n_stages,
                                               const sotto_codec_write_params *params,
                                               sotto_status *status);

/* ---- encoder ---------------------------------------------------------------------------- */
/*
 * Audio in, groups out: the official encode chain (FlexiCodec.forward with encode_only,
 * flexicodec 0.1.2) on a 16 kHz waveform: Kaldi fbank (dither 0) → LFR + CMVN → SenseVoice →
 * 4/3 downsampling to 12.5 Hz → with the waveform: DAC encoder, similarity merging of
 * neighbouring frames at the threshold, query-token aggregation, FSQ (one semantic index per
 * group) and residual VQ (n_stages acoustic codes per group). Needs a model file converted
 * with the encoder and SenseVoice (tools/convert/flexicodec.py --with-encoder --sensevoice
 * ... --am-mvn ...); a decode-only file gives SOTTO_ERR_UNSUPPORTED ("model has no
 * encoder").
 *
 * The model is not causal (SenseVoice and the aggregators attend to the whole input, the
 * convolutions look ahead), so an encoder encodes one whole utterance (or one segment the
 * caller cut) per call; there is no streaming push. Encoding a long recording in segments
 * is the caller's choice and changes the codes near the cuts.
 *
 *     sotto_encoder *enc = NULL;
 *     sotto_encoder_params ep = sotto_encoder_default_params();   // model's threshold
 *     if (sotto_encoder_create(model, &ep, &enc, &st) != SOTTO_OK) { ...st.message... }
 *     sotto_encoder_groups g;
 *     if (sotto_encoder_encode(enc, pcm16k, n, &g) < 0) { ...sotto_encoder_last_error(enc)... }
 *     sotto_decoder_push(dec, g.lengths, g.fsq, g.rvq, g.n_groups, g.n_stages);
 *     sotto_encoder_free(enc);
 *
 * The threshold sets the frame rate: consecutive 12.5 Hz frames whose semantic features
 * have a cosine similarity above it are merged (up to max_group_length frames per group);
 * 1.0 merges nothing (12.5 groups/s), lower values merge more (fewer groups, lower bitrate).
 *
 * Rate control (params target_groups_per_s or target_bits_per_s, sotto_encoder_set_target):
 * instead of a fixed threshold, each encode call (one utterance, or one segment when the
 * caller cuts a recording) picks the threshold whose group count comes nearest the target
 * count R·d (R the target in groups/s, d = n_samples / 16000 s), then encodes at it. The
 * cosine similarities of neighbouring frames are computed once; the group count G(θ) is
 * monotone non-decreasing in θ and changes only at those similarity values (each step adds
 * at most one group: cutting a run of L frames in two gives at most one group more, even with
 * the max_group_length limit), so a bisection over the candidates θ = 0, the distinct
 * similarities in (0, 1) and θ = 1 finds the largest θ with G(θ) ≤ R·d; the next candidate is
 * taken instead when its count is strictly nearer (a tie keeps the lower rate). The result is
 * within half a group of R·d (more only when several neighbours have exactly equal
 * similarities), and passing the chosen threshold as `threshold` gives the same groups. The
 * search stays in 0..1: the lowest reachable count is G(0), at least ceil(T / max_group_length)
 * for T frames (12.5 / 8 = 1.5625 groups/s for the release) and more when neighbours have
 * similarities ≤ 0; the highest is G(1) = T (12.5 groups/s). A target outside that range is
 * not an error: it clamps to θ = 0 (clamped −1) or θ = 1 (clamped +1), reported in the
 * groups. A bitrate target counts the code payload only, bits_per_group =
 * sotto_encoder_bits_per_group() (length + FSQ index + one code per RVQ stage: 3 + 15 + 12·k
 * for the release), and targets R = bits/s ÷ bits_per_group; packet headers, padding and Ogg
 * framing (about 5 % at 16 groups per packet) come on top in a file.
 *
 * Memory: create allocates everything for params.max_seconds of audio; encode never
 * allocates. Threads: the model params' n_threads workers serve one encoder, used by one
 * thread at a time; many encoders may share a model.
 */

typedef struct sotto_encoder sotto_encoder;

typedef struct sotto_encoder_params {
    float threshold;    /**< merge threshold (cosine similarity), 0..1; 1.0: no merging;
                             negative (default -1): the model's similarity_threshold (0.91 for
                             the release) */
    int n_stages;       /**< RVQ stages produced per group, 0..the model's; -1 (default): all */
    double max_seconds; /**< longest input accepted, > 0 and ≤ 3600; default 30. Sizes the
                             buffers allocated at create (they grow linearly with it) */
    double target_groups_per_s; /**< rate control (see above): target average group rate,
                                     > 0 and ≤ the frame rate (12.5); 0 (default): off, the
                                     threshold is used */
    double target_bits_per_s;   /**< rate control: target payload bitrate, > 0 and ≤
                                     bits_per_group · frame rate; 0 (default): off. At most
                                     one of the two targets may be set */
} sotto_encoder_params;

/** Defaults listed in sotto_encoder_params. */
SOTTO_API sotto_encoder_params sotto_encoder_default_params(void);

/**
 * Creates an encoder on a loaded model. [in] model (must outlive the encoder), [in] params
 * (NULL: defaults), [out] out (NULL on failure), [out] status (may be NULL). Errors:
 * SOTTO_ERR_INVALID_ARG (NULL model/out, a parameter out of range, named in status),
 * SOTTO_ERR_UNSUPPORTED (not a codec model, or "model has no encoder": a decode-only file,
 * the reason in status), SOTTO_ERR_OUT_OF_MEMORY.
 */
SOTTO_API SOTTO_WUR int sotto_encoder_create(const sotto_model *model,
                                             const sotto_encoder_params *params,
                                             sotto_encoder **out, sotto_status *status);

/** Frees an encoder (NULL is ignored); the groups it returned become invalid. */
SOTTO_API void sotto_encoder_free(sotto_encoder *enc);

/** Changes the merge threshold for the next encode, 0..1 (negative: the model's). Errors:
 *  SOTTO_ERR_INVALID_ARG (NULL, NaN or above 1), the threshold unchanged. */
SOTTO_API SOTTO_WUR int sotto_encoder_set_threshold(sotto_encoder *enc, float threshold);
/** The merge threshold in use (the model's default resolved); in target mode, the one the
 *  last encode chose (before any: the fixed threshold). */
SOTTO_API float sotto_encoder_threshold(const sotto_encoder *enc);
/** Switches rate control for the next encodes: groups_per_s or bits_per_s as the params'
 *  target_groups_per_s / target_bits_per_s (both 0: off, back to the threshold). Errors:
 *  SOTTO_ERR_INVALID_ARG (NULL, NaN, infinite, negative, above the frame rate or the bitrate
 *  at it, or both set), the target unchanged. */
SOTTO_API SOTTO_WUR int sotto_encoder_set_target(sotto_encoder *enc, double groups_per_s,
                                                 double bits_per_s);
/** Code payload bits per group: length + FSQ index + sotto_encoder_stages() RVQ codes
 *  (3 + 15 + 12·k bits for the release); 0 on NULL. */
SOTTO_API int sotto_encoder_bits_per_group(const sotto_encoder *enc);
/** Frames per second of the model (16000 / hop: 12.5). */
SOTTO_API double sotto_encoder_frame_rate_hz(const sotto_encoder *enc);
/** RVQ stages produced per group. */
SOTTO_API int sotto_encoder_stages(const sotto_encoder *enc);
/** Frames (12.5 Hz, an upper bound of the groups) for n_samples samples of 16 kHz input. */
SOTTO_API int sotto_encoder_frames_for(const sotto_encoder *enc, int64_t n_samples);
/** Longest input accepted, in 16 kHz samples (params.max_seconds). */
SOTTO_API int64_t sotto_encoder_max_samples(const sotto_encoder *enc);

/** The groups of one utterance, in the layout sotto_decoder_push takes. */
typedef struct sotto_encoder_groups {
    int n_groups;           /**< groups */
    int n_frames;           /**< Σ lengths: 12.5 Hz frames covered */
    int n_stages;           /**< RVQ codes per group */
    const int32_t *lengths; /**< [n_groups] frames per group */
    const int32_t *fsq;     /**< [n_groups] FSQ indices */
    const int32_t *rvq;     /**< [n_groups][n_stages], stage q of group g at g·n_stages + q */
    float threshold;        /**< merge threshold used (in target mode: the chosen one) */
    double target_groups;   /**< target mode: the group count aimed at (R·d); 0: no target */
    int clamped;            /**< target mode: 0 reached; −1 the target is below the lowest
                                 reachable count (θ = 0 used); +1 above the highest (θ = 1) */
} sotto_encoder_groups;

/**
 * Encodes one whole utterance, [in] pcm[n_samples] at 16 kHz (mono, nominally ±1), into
 * [out] groups whose arrays belong to the encoder: valid until the next encode or free.
 * ceil(n / 1280) frames at most (fewer when SenseVoice's rate gives fewer; less than 0.03 s
 * of audio gives no group at all). Returns the number of groups, or an error with groups
 * zeroed: SOTTO_ERR_INVALID_ARG (NULL, negative n), SOTTO_ERR_BUFFER_TOO_SMALL (longer than
 * params.max_seconds), SOTTO_ERR_BAD_AUDIO (NaN or Inf samples), SOTTO_ERR_INTERNAL.
 */
SOTTO_API SOTTO_WUR int sotto_encoder_encode(sotto_encoder *enc, const float *pcm,
                                             int64_t n_samples, sotto_encoder_groups *groups);

/**
 * As sotto_encoder_encode, the groups copied into caller buffers: [out] lengths[max_groups],
 * fsq[max_groups], rvq[max_groups · sotto_encoder_stages()] (may be NULL with 0 stages).
 * sotto_encoder_frames_for(n_samples) groups always fit. Returns the number of groups; errors
 * as sotto_encoder_encode, plus SOTTO_ERR_BUFFER_TOO_SMALL when more groups come out than
 * max_groups (nothing copied).
 */
SOTTO_API SOTTO_WUR int sotto_encoder_encode_to(sotto_encoder *enc, const float *pcm,
                                                int64_t n_samples, int32_t *lengths, int32_t *fsq,
                                                int32_t *rvq, int max_groups);

/** Detail of the last failed call on this object ("" if none); never NULL. */
SOTTO_API const char *sotto_encoder_last_error(const sotto_encoder *enc);

/** Options of sotto_codec_encode_file. */
typedef struct sotto_codec_encode_params {
    sotto_encoder_params encoder; /**< threshold, n_stages, rate control; max_seconds is the
                                       longest input accepted; default as
                                       sotto_encoder_default_params but 600 s */
    double segment_seconds;       /**< > 0 (default 30): a file longer than this is encoded in
                                       consecutive segments of about this length (whole 80 ms
                                       frames), each its own utterance, read in pieces by
                                       one encoder sized for one segment: memory does not
                                       grow with the file. No overlap: each segment sees
                                       only its own audio, so codes near a cut differ from
                                       a whole-file encode (measured in
                                       codecs/flexicodec/README.md); rate control meets its
                                       target per segment. A file of one segment or less is
                                       encoded exactly as with 0. 0: the whole file as one
                                       utterance (the encoder and its scratch are sized to
                                       the file). Else 1..3600 */
    const char *const *comments;  /**< "KEY=value" strings for the comment header */
    int n_comments;
} sotto_codec_encode_params;

/** Defaults listed in sotto_codec_encode_params. */
SOTTO_API sotto_codec_encode_params sotto_codec_default_encode_params(void);

/** What sotto_codec_encode_file did. */
typedef struct sotto_codec_encode_info {
    int input_rate_hz;          /**< rate of the input file */
    int input_channels;         /**< its channels (mixed down to mono) */
    int64_t samples;            /**< 16 kHz samples encoded (the length the file decodes to) */
    double duration_s;          /**< samples / 16000 */
    int64_t groups;             /**< groups written */
    int64_t frames;             /**< 12.5 Hz frames they cover */
    int n_stages;               /**< RVQ stages per group */
    float threshold;            /**< merge threshold used (in target mode: the chosen one) */
    double groups_per_s;        /**< average frame (token) rate: groups / duration */
    int64_t file_bytes;         /**< size of the .sotto file written */
    double bitrate_bps;         /**< file_bytes · 8 / duration (headers and Ogg framing in) */
    double payload_bps;         /**< groups · bits_per_group / duration: the codes alone, what a
                                     target_bits_per_s aims at */
    double target_groups_per_s; /**< the target in groups/s (a bitrate target converted); 0:
                                     no target */
    int clamped;                /**< as sotto_encoder_groups.clamped (0 without a target);
                                     segmented: the first segment's that was clamped */
    int segments;               /**< utterances encoded (1 when not segmented) */
    double segment_seconds;     /**< length of a full segment (0: not segmented); threshold
                                     is then the mean of the segments' thresholds */
} sotto_codec_encode_info;

/**
 * Encodes an audio file (any format and rate sotto_audio_read_file reads; resampled once to
 * 16 kHz, channels mixed down) as one utterance and writes a `.sotto` file at [in] out_path
 * whose length is the input's: decoding it (sotto_codec_decode_file) returns exactly
 * `samples` samples. [in] params (NULL: defaults; a rate target in params.encoder applies to
 * the whole file, d being the input's duration), [out] info (may be NULL). Errors:
 * SOTTO_ERR_IO / SOTTO_ERR_FORMAT / SOTTO_ERR_UNSUPPORTED / SOTTO_ERR_BAD_AUDIO (the input),
 * SOTTO_ERR_BUFFER_TOO_SMALL (longer than params max_seconds), those of
 * sotto_encoder_create (SOTTO_ERR_UNSUPPORTED "model has no encoder"), and of
 * sotto_codec_write_file (SOTTO_ERR_IO for the output; no partial file is left).
 */
SOTTO_API SOTTO_WUR int sotto_codec_encode_file(const sotto_model *model, const char *in_path,
                                                const char *out_path,
                                                const sotto_codec_encode_params *params,
                                                sotto_codec_encode_info *info,
                                                sotto_status *status);

#ifdef __cplusplus
}
#endif

#endif /* SOTTO_CODEC_H */
