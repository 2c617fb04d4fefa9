/*
 * Audio files in and out: read any format libsndfile knows (WAV, FLAC, Ogg Vorbis/Opus, MP3,
 * AIFF, ...) as mono float samples, optionally resampled to a model's rate in the same call;
 * write mono WAV (16-bit PCM or 32-bit float) and FLAC (16-bit). A streaming reader and writer
 * handle long files in bounded memory. docs/audio.md has the background and measured numbers.
 *
 * Usage walkthrough
 *
 *     // whole file, resampled to 16 kHz
 *     sotto_audio_read_params rp = sotto_audio_default_read_params();
 *     rp.target_rate_hz = 16000;
 *     float *x = NULL; int64_t n = 0; sotto_audio_info info; sotto_status st;
 *     if (sotto_audio_read_file("in.wav", &rp, &x, &n, &info, &st) != SOTTO_OK) {
 *         fprintf(stderr, "%s\n", st.message);   // names the file and the reason
 *         return 1;
 *     }
 *     ... info.sample_rate_hz, info.channels, info.frames describe the file itself ...
 *     sotto_audio_free(x, rp.allocator);
 *
 *     // streaming: 10-minute files in a few hundred kilobytes
 *     sotto_audio_reader *rd; sotto_audio_writer *wr;
 *     if (sotto_audio_reader_open("in.flac", &rp, &rd, &info, &st)) ...;
 *     if (sotto_audio_writer_open("out.wav", 16000, SOTTO_AUDIO_WAV_PCM16, NULL, &wr, &st)) ...;
 *     float buf[4096]; int64_t got;
 *     while ((got = sotto_audio_reader_read(rd, buf, 4096)) > 0)
 *         if (sotto_audio_writer_write(wr, buf, got)) ...;
 *     if (got < 0) ...sotto_audio_reader_last_error(rd)...;
 *     sotto_audio_reader_close(rd);
 *     if (sotto_audio_writer_close(wr, &st)) ...;
 *
 * Conventions
 *   - Down-mix: every file is delivered as mono, the arithmetic mean of its channels
 *     ((L + R) / 2 for stereo; a mono file is passed through unchanged).
 *   - Scaling: integer files map to [-1, 1) by dividing by 2^(bits-1) (16-bit: x / 32768);
 *     float files pass through unchanged, values beyond ±1 included (nothing is clipped).
 *   - Resampling: soxr, "high quality" preset (20-bit precision, linear phase, pass band to
 *     91.3 % of the lower Nyquist frequency). A file of F frames at rate R read at rate T
 *     gives exactly round_half_up(F · T / R) samples, sotto_audio_output_length(F, R, T);
 *     with T == R (or target_rate_hz 0) samples are not filtered at all.
 *   - Non-finite samples (NaN, ±Inf) and absurd ones (magnitude above
 *     SOTTO_AUDIO_MAX_ABS_SAMPLE = 2^20, 120 dB over full scale, e.g. double-precision files
 *     holding 1e300) are rejected by default with SOTTO_ERR_BAD_AUDIO, the message naming the
 *     file, the frame index (0-based, at the file's rate) and the channel. With
 *     SOTTO_AUDIO_NONFINITE_ZERO they are replaced by 0 before the down-mix and counted in
 *     nonfinite_samples. Delivered samples are therefore always finite.
 *   - Truncated files (a header declaring more audio than the file holds, a compressed
 *     stream that decodes to fewer frames than declared or stops with a decoding error) fail
 *     with SOTTO_ERR_FORMAT unless allow_truncated is set; then what decodes is read and the
 *     shortfall is reported in missing_frames. "Streaming" WAVs whose size fields are
 *     placeholders fall in this class.
 *   - Limits: rates SOTTO_AUDIO_MIN_RATE_HZ..SOTTO_AUDIO_MAX_RATE_HZ, 1..SOTTO_AUDIO_MAX_CHANNELS
 *     channels. Files outside them fail with SOTTO_ERR_UNSUPPORTED.
 *
 * Errors: every failure names the file and the reason in sotto_status.message (or in the
 * reader's / writer's last_error). Codes: SOTTO_ERR_INVALID_ARG (bad argument),
 * SOTTO_ERR_IO (cannot open, read or write), SOTTO_ERR_FORMAT (not an audio file, malformed
 * header, zero channels, truncated or corrupt data), SOTTO_ERR_UNSUPPORTED (valid but outside
 * the limits above, or an encoding libsndfile cannot decode), SOTTO_ERR_BAD_AUDIO (non-finite
 * samples), SOTTO_ERR_OUT_OF_MEMORY, SOTTO_ERR_INTERNAL.
 *
 * Memory: Sotto's buffers (returned samples, reader/writer state) come from the allocator
 * given in the parameters (NULL: the C library); libsndfile and soxr allocate their own
 * internal state with the C library. Readers and writers hold a fixed amount of memory
 * whatever the file length: a reader decodes 4096-frame blocks (16 KiB per channel plus
 * 16 KiB, and soxr's tables when resampling); a writer converts through an 8 KiB buffer.
 *
 * Threads: every function is reentrant; a reader or writer is used by one thread at a time.
 */
#ifndef SOTTO_AUDIO_H
#define SOTTO_AUDIO_H

#include "sotto.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Sample rates accepted for files, targets and output, in Hz. */
#define SOTTO_AUDIO_MIN_RATE_HZ 1000
#define SOTTO_AUDIO_MAX_RATE_HZ 768000
/** The most channels a file may have. */
#define SOTTO_AUDIO_MAX_CHANNELS 256
/** Largest sample magnitude accepted from a file (2^20); larger counts as non-finite. */
#define SOTTO_AUDIO_MAX_ABS_SAMPLE 1048576.0f

/** What to do with NaN / Inf (and beyond SOTTO_AUDIO_MAX_ABS_SAMPLE) samples in a file. */
typedef enum sotto_audio_nonfinite {
    SOTTO_AUDIO_NONFINITE_REJECT = 0, /**< fail with SOTTO_ERR_BAD_AUDIO (the default) */
    SOTTO_AUDIO_NONFINITE_ZERO = 1    /**< replace by 0, count in nonfinite_samples */
} sotto_audio_nonfinite;

/** Options for reading. Get the defaults from sotto_audio_default_read_params(). */
typedef struct sotto_audio_read_params {
    int target_rate_hz;               /**< deliver samples at this rate; 0 (default) keeps
                                           the file's rate */
    sotto_audio_nonfinite nonfinite;  /**< default SOTTO_AUDIO_NONFINITE_REJECT */
    int allow_truncated;              /**< 1: read what a truncated file holds; default 0 */
    int64_t max_frames;               /**< fail with SOTTO_ERR_UNSUPPORTED on files longer
                                           than this many frames (at the file's rate);
                                           0 (default): no limit */
    const sotto_allocator *allocator; /**< for returned samples and reader state; NULL
                                           (default): the C library. The hooks are copied;
                                           their `user` data must outlive what they made. */
} sotto_audio_read_params;

/** What a file holds and what the read delivers. */
typedef struct sotto_audio_info {
    int sample_rate_hz;        /**< the file's own rate */
    int channels;              /**< the file's channel count */
    int64_t frames;            /**< frames at the file's rate: as declared when a reader
                                    opens (-1 if the format does not say); after the whole
                                    file has been read, the frames actually read */
    int out_rate_hz;           /**< rate of the delivered mono samples */
    int64_t out_samples;       /**< delivered samples: sotto_audio_output_length(frames,
                                    sample_rate_hz, out_rate_hz) (-1 while frames is -1) */
    int64_t missing_frames;    /**< frames declared but absent (allow_truncated only) */
    int64_t nonfinite_samples; /**< values replaced by 0 (SOTTO_AUDIO_NONFINITE_ZERO) */
    char format[16];           /**< container: "WAV", "FLAC", "OGG", "MPEG", "AIFF", ... */
    char encoding[16];         /**< samples: "PCM_16", "PCM_24", "FLOAT", "VORBIS", ... */
} sotto_audio_info;

/** The defaults listed in sotto_audio_read_params. */
SOTTO_API sotto_audio_read_params sotto_audio_default_read_params(void);

/**
 * Length rule: samples delivered for [in] frames at [in] in_rate_hz read at [in] out_rate_hz,
 * round_half_up(frames · out_rate_hz / in_rate_hz), exact integer arithmetic.
 * Returns the length, or SOTTO_ERR_INVALID_ARG (negative or huge frames, rate out of range).
 */
SOTTO_API int64_t sotto_audio_output_length(int64_t frames, int in_rate_hz, int out_rate_hz);

/**
 * Reads a whole file as mono float samples.
 * [in]  path      file name
 * [in]  params    options (NULL: defaults)
 * [out] samples   receives a buffer of *n_samples floats (at least one element allocated,
 *                 so never NULL on success); free it with sotto_audio_free() and the same
 *                 allocator. NULL on failure.
 * [out] n_samples receives the sample count (info->out_samples)
 * [out] info      optional: the file's rate, channels and frames, and what was delivered
 * [out] status    optional: the failure's code and a message naming the file
 * Memory grows with the audio actually decoded, not with what a header claims.
 * Errors: see the top of this header.
 */
SOTTO_API SOTTO_WUR int sotto_audio_read_file(const char *path,
                                              const sotto_audio_read_params *params,
                                              float **samples, int64_t *n_samples,
                                              sotto_audio_info *info, sotto_status *status);

/** Frees [in] samples from sotto_audio_read_file() with [in] allocator (the one in the read
 *  params; NULL for the C library). NULL samples are ignored. */
SOTTO_API void sotto_audio_free(float *samples, const sotto_allocator *allocator);

/* ---- streaming reader ------------------------------------------------------------------ */

typedef struct sotto_audio_reader sotto_audio_reader;

/**
 * Opens a file for reading in pieces. Checks everything sotto_audio_read_file() checks at
 * open time (format, header, limits, WAV truncation); NaN/Inf and compressed-stream
 * truncation are found as the data is read.
 * [in]  path    file name
 * [in]  params  options (NULL: defaults); copied
 * [out] out     the reader, or NULL on failure
 * [out] info    optional: as declared by the header (frames may be -1)
 * [out] status  optional detail of a failure
 * Errors: see the top of this header.
 */
SOTTO_API SOTTO_WUR int sotto_audio_reader_open(const char *path,
                                                const sotto_audio_read_params *params,
                                                sotto_audio_reader **out, sotto_audio_info *info,
                                                sotto_status *status);

/**
 * Reads the next mono samples at the output rate.
 * [out] out        receives up to n_samples samples
 * [in]  n_samples  how many are wanted (any value ≥ 0; memory use does not depend on it)
 * Returns the number written: n_samples until the end of the file, then fewer, then 0.
 * Concatenated reads equal sotto_audio_read_file() exactly, whatever the n_samples.
 * Errors (negative; the reader then keeps returning the same error, detail in
 * sotto_audio_reader_last_error()): SOTTO_ERR_INVALID_ARG, SOTTO_ERR_BAD_AUDIO,
 * SOTTO_ERR_FORMAT (corrupt or truncated data), SOTTO_ERR_IO, SOTTO_ERR_UNSUPPORTED
 * (max_frames exceeded), SOTTO_ERR_INTERNAL.
 */
SOTTO_API SOTTO_WUR int64_t sotto_audio_reader_read(sotto_audio_reader *reader, float *out,
                                                    int64_t n_samples);

/** Fills [out] info with the reader's current view (frames become exact at the end).
 *  Returns SOTTO_OK or SOTTO_ERR_INVALID_ARG. */
SOTTO_API int sotto_audio_reader_info(const sotto_audio_reader *reader, sotto_audio_info *info);

/** The detail of the reader's last failure ("" if none); never NULL, owned by the reader. */
SOTTO_API const char *sotto_audio_reader_last_error(const sotto_audio_reader *reader);

/** Closes the file and frees the reader (NULL is ignored). */
SOTTO_API void sotto_audio_reader_close(sotto_audio_reader *reader);

/* ---- writing --------------------------------------------------------------------------- */

/** Output file formats (all mono). */
typedef enum sotto_audio_file_format {
    SOTTO_AUDIO_WAV_PCM16 = 0, /**< WAV, 16-bit PCM */
    SOTTO_AUDIO_WAV_FLOAT = 1, /**< WAV, 32-bit IEEE float: samples stored unchanged */
    SOTTO_AUDIO_FLAC_PCM16 = 2 /**< FLAC, 16-bit (rates up to 655350 Hz) */
} sotto_audio_file_format;

/*
 * 16-bit output: each sample is scaled by 32768, rounded to nearest (ties to even) and
 * clipped to [-32768, 32767]; no dither, so output is deterministic and reading it back
 * returns the value within 1/65536 (for |x| < 1). Non-finite input samples are refused with
 * SOTTO_ERR_BAD_AUDIO naming the sample index; nothing of that call is written.
 */

/**
 * Picks a format from a file name's extension (case-insensitive): ".wav" gives
 * SOTTO_AUDIO_WAV_FLOAT if [in] want_float is non-zero, else SOTTO_AUDIO_WAV_PCM16; ".flac"
 * gives SOTTO_AUDIO_FLAC_PCM16. Returns the format, or SOTTO_ERR_UNSUPPORTED (another
 * extension or a float request for FLAC), SOTTO_ERR_INVALID_ARG (path NULL).
 */
SOTTO_API int sotto_audio_format_for_path(const char *path, int want_float);

/**
 * Writes a whole mono signal to a file, replacing any file of that name.
 * [in]  path            file name
 * [in]  samples         n_samples values (finite)
 * [in]  n_samples       count, ≥ 0
 * [in]  sample_rate_hz  SOTTO_AUDIO_MIN_RATE_HZ..SOTTO_AUDIO_MAX_RATE_HZ
 * [in]  format          one of sotto_audio_file_format
 * [out] status          optional detail of a failure
 * Samples are checked before the file is created; a write that fails midway removes the
 * partial file. Errors: SOTTO_ERR_INVALID_ARG, SOTTO_ERR_BAD_AUDIO, SOTTO_ERR_IO,
 * SOTTO_ERR_UNSUPPORTED (rate the format cannot store), SOTTO_ERR_OUT_OF_MEMORY.
 */
SOTTO_API SOTTO_WUR int sotto_audio_write_file(const char *path, const float *samples,
                                               int64_t n_samples, int sample_rate_hz,
                                               sotto_audio_file_format format,
                                               sotto_status *status);

typedef struct sotto_audio_writer sotto_audio_writer;

/**
 * Creates (or replaces) a file for writing in pieces.
 * [in]  path, sample_rate_hz, format  as sotto_audio_write_file()
 * [in]  allocator  for the writer's state (NULL: the C library); copied
 * [out] out        the writer, or NULL on failure
 * [out] status     optional detail of a failure
 * Errors: SOTTO_ERR_INVALID_ARG, SOTTO_ERR_IO, SOTTO_ERR_UNSUPPORTED,
 * SOTTO_ERR_OUT_OF_MEMORY.
 */
SOTTO_API SOTTO_WUR int sotto_audio_writer_open(const char *path, int sample_rate_hz,
                                                sotto_audio_file_format format,
                                                const sotto_allocator *allocator,
                                                sotto_audio_writer **out, sotto_status *status);

/**
 * Appends [in] n_samples samples. Returns SOTTO_OK, or SOTTO_ERR_INVALID_ARG,
 * SOTTO_ERR_BAD_AUDIO (non-finite sample; nothing of this call written), SOTTO_ERR_IO
 * (detail in sotto_audio_writer_last_error()).
 */
SOTTO_API SOTTO_WUR int sotto_audio_writer_write(sotto_audio_writer *writer, const float *samples,
                                                 int64_t n_samples);

/** The detail of the writer's last failure ("" if none); never NULL, owned by the writer. */
SOTTO_API const char *sotto_audio_writer_last_error(const sotto_audio_writer *writer);

/** Samples written so far. */
SOTTO_API int64_t sotto_audio_writer_samples(const sotto_audio_writer *writer);

/**
 * Finishes the file (final header sizes) and frees the writer, also on failure (NULL is
 * ignored and returns SOTTO_OK). [out] status optional. Returns SOTTO_OK or SOTTO_ERR_IO.
 * A file whose writer was never closed has an incomplete header.
 */
SOTTO_API int sotto_audio_writer_close(sotto_audio_writer *writer, sotto_status *status);

#ifdef __cplusplus
}
#endif

#endif /* SOTTO_AUDIO_H */
