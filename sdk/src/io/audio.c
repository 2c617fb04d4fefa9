/*
 * Audio file I/O on libsndfile (sotto_audio.h): a block reader that validates what libsndfile
 * accepts (rate and channel limits, truncation, NaN/Inf), down-mixes to mono and feeds an
 * optional streaming resampler; the whole-file read is that reader run to the end, so the two
 * can never disagree. Writers convert to 16-bit themselves so the scale (32768) matches the
 * reading side exactly; libsndfile's own float-to-short path scales by 32767.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "dsp/resample.h"
#include "sotto/sotto_audio.h"

_Static_assert(SOTTO_AUDIO_MIN_RATE_HZ == SOTTO_RESAMPLE_MIN_HZ, "rate limits must agree");
_Static_assert(SOTTO_AUDIO_MAX_RATE_HZ == SOTTO_RESAMPLE_MAX_HZ, "rate limits must agree");

/* Frames decoded per libsndfile call: large enough to amortise the call, small enough that a
 * reader's memory stays in the tens of kilobytes per channel. */
#define BLOCK_FRAMES 4096
/* Samples converted per libsndfile write call. */
#define WRITE_BLOCK 4096

struct sotto_audio_reader {
    sotto_alloc alloc;
    SNDFILE *sf;
    sotto_audio_read_params params;
    sotto_audio_info info;
    int64_t declared_frames; /* -1: unknown or not trusted for the truncation check */
    int64_t frames_read;
    float *raw;  /* BLOCK_FRAMES × channels, interleaved as decoded */
    float *mono; /* BLOCK_FRAMES down-mixed */
    int64_t mono_pos, mono_len;
    sotto_resampler *rs; /* NULL when no rate change */
    int eof;
    int decode_stopped; /* libsndfile reported a decoding error (allow_truncated) */
    int error;          /* sticky: once a read fails, the reader stays failed */
    char path[160];
    char last_error[256];
};

struct sotto_audio_writer {
    sotto_alloc alloc;
    SNDFILE *sf;
    sotto_audio_file_format format;
    int64_t written;
    short *pcm; /* WRITE_BLOCK conversion buffer for 16-bit formats */
    char path[160];
    char last_error[256];
};

/* ---- helpers --------------------------------------------------------------------------- */

/* Messages name the file; very long paths keep their tail, which is the informative part. */
static void short_path(char *dst, size_t size, const char *path)
{
    size_t n = strlen(path);
    if (n < size) {
        memcpy(dst, path, n + 1);
    } else {
        snprintf(dst, size, "...%s", path + n - (size - 4));
    }
}

static int rate_ok(int hz)
{
    return hz >= SOTTO_AUDIO_MIN_RATE_HZ && hz <= SOTTO_AUDIO_MAX_RATE_HZ;
}

typedef struct code_name {
    int code;
    const char *name;
} code_name;

/* Short names for sotto_audio_info (libsndfile's own are long descriptions). */
static const code_name k_majors[] = {
    {SF_FORMAT_WAV, "WAV"},   {SF_FORMAT_AIFF, "AIFF"}, {SF_FORMAT_AU, "AU"},
    {SF_FORMAT_RAW, "RAW"},   {SF_FORMAT_PAF, "PAF"},   {SF_FORMAT_SVX, "SVX"},
    {SF_FORMAT_NIST, "NIST"}, {SF_FORMAT_VOC, "VOC"},   {SF_FORMAT_IRCAM, "IRCAM"},
    {SF_FORMAT_W64, "W64"},   {SF_FORMAT_MAT4, "MAT4"}, {SF_FORMAT_MAT5, "MAT5"},
    {SF_FORMAT_PVF, "PVF"},   {SF_FORMAT_XI, "XI"},     {SF_FORMAT_HTK, "HTK"},
    {SF_FORMAT_SDS, "SDS"},   {SF_FORMAT_AVR, "AVR"},   {SF_FORMAT_WAVEX, "WAVEX"},
    {SF_FORMAT_SD2, "SD2"},   {SF_FORMAT_FLAC, "FLAC"}, {SF_FORMAT_CAF, "CAF"},
    {SF_FORMAT_WVE, "WVE"},   {SF_FORMAT_OGG, "OGG"},   {SF_FORMAT_MPC2K, "MPC2K"},
    {SF_FORMAT_RF64, "RF64"}, {SF_FORMAT_MPEG, "MPEG"},
};

static const code_name k_subtypes[] = {
    {SF_FORMAT_PCM_S8, "PCM_S8"},
    {SF_FORMAT_PCM_16, "PCM_16"},
    {SF_FORMAT_PCM_24, "PCM_24"},
    {SF_FORMAT_PCM_32, "PCM_32"},
    {SF_FORMAT_PCM_U8, "PCM_U8"},
    {SF_FORMAT_FLOAT, "FLOAT"},
    {SF_FORMAT_DOUBLE, "DOUBLE"},
    {SF_FORMAT_ULAW, "ULAW"},
    {SF_FORMAT_ALAW, "ALAW"},
    {SF_FORMAT_IMA_ADPCM, "IMA_ADPCM"},
    {SF_FORMAT_MS_ADPCM, "MS_ADPCM"},
    {SF_FORMAT_GSM610, "GSM610"},
    {SF_FORMAT_VOX_ADPCM, "VOX_ADPCM"},
    {SF_FORMAT_G721_32, "G721_32"},
    {SF_FORMAT_G723_24, "G723_24"},
    {SF_FORMAT_G723_40, "G723_40"},
    {SF_FORMAT_DWVW_12, "DWVW_12"},
    {SF_FORMAT_DWVW_16, "DWVW_16"},
    {SF_FORMAT_DWVW_24, "DWVW_24"},
    {SF_FORMAT_DWVW_N, "DWVW_N"},
    {SF_FORMAT_DPCM_8, "DPCM_8"},
    {SF_FORMAT_DPCM_16, "DPCM_16"},
    {SF_FORMAT_VORBIS, "VORBIS"},
    {SF_FORMAT_OPUS, "OPUS"},
    {SF_FORMAT_ALAC_16, "ALAC_16"},
    {SF_FORMAT_ALAC_20, "ALAC_20"},
    {SF_FORMAT_ALAC_24, "ALAC_24"},
    {SF_FORMAT_ALAC_32, "ALAC_32"},
    {SF_FORMAT_MPEG_LAYER_I, "MPEG_LAYER_I"},
    {SF_FORMAT_MPEG_LAYER_II, "MPEG_LAYER_II"},
    {SF_FORMAT_MPEG_LAYER_III, "MPEG_LAYER_III"},
};

static const char *lookup_name(const code_name *t, size_t n, int code)
{
    for (size_t i = 0; i < n; i++)
        if (t[i].code == code) return t[i].name;
    return "other";
}

/* Bytes per frame of the WAV encodings whose data size maps directly to frames; 0 for block
 * codecs (ADPCM, GSM), whose shortfall is estimated from the byte ratio instead. */
static int pcm_bytes_per_sample(int sub)
{
    switch (sub) {
    case SF_FORMAT_PCM_U8:
    case SF_FORMAT_PCM_S8:
    case SF_FORMAT_ULAW:
    case SF_FORMAT_ALAW:
        return 1;
    case SF_FORMAT_PCM_16:
        return 2;
    case SF_FORMAT_PCM_24:
        return 3;
    case SF_FORMAT_PCM_32:
    case SF_FORMAT_FLOAT:
        return 4;
    case SF_FORMAT_DOUBLE:
        return 8;
    default:
        return 0;
    }
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* What a RIFF/WAVE header says about itself, read independently of libsndfile. */
typedef struct wav_scan {
    int have_fmt, have_data;
    unsigned channels, rate_hz;  /* from the fmt chunk */
    int64_t declared, available; /* data chunk bytes: claimed, and present in the file */
} wav_scan;

/*
 * libsndfile silently shortens a WAV whose data chunk claims more bytes than the file holds,
 * and its messages for a zero rate or channel count are generic, so the header is walked here
 * too: the RIFF chunk list (bounded) up to the "data" chunk. Returns 1 for a RIFF/WAVE file.
 */
static int scan_wav(const char *path, wav_scan *w)
{
    memset(w, 0, sizeof *w);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    int riff = 0;
    unsigned char h[16];
    if (fseek(f, 0, SEEK_END) != 0) goto done;
    long long file_size = ftell(f);
    if (file_size < 12 || fseek(f, 0, SEEK_SET) != 0) goto done;
    if (fread(h, 1, 12, f) != 12 || memcmp(h, "RIFF", 4) || memcmp(h + 8, "WAVE", 4)) goto done;
    riff = 1;
    long long pos = 12;
    for (int i = 0; i < 4096 && pos + 8 <= file_size; i++) {
        if (fseek(f, (long)pos, SEEK_SET) != 0 || fread(h, 1, 8, f) != 8) break;
        long long size = le32(h + 4);
        if (!memcmp(h, "fmt ", 4) && size >= 16 && fread(h, 1, 16, f) == 16) {
            w->have_fmt = 1;
            w->channels = (unsigned)h[2] | (unsigned)h[3] << 8;
            w->rate_hz = le32(h + 4);
        } else if (!memcmp(h, "data", 4)) {
            w->have_data = 1;
            w->declared = size;
            w->available = file_size - (pos + 8);
            break;
        }
        pos += 8 + size + (size & 1); /* chunks are padded to even sizes */
    }
done:
    fclose(f);
    return riff;
}

static void fill_names(sotto_audio_info *info, int sf_format)
{
    snprintf(info->format, sizeof info->format, "%s",
             lookup_name(k_majors, SOTTO_ARRAY_LEN(k_majors), sf_format & SF_FORMAT_TYPEMASK));
    snprintf(info->encoding, sizeof info->encoding, "%s",
             lookup_name(k_subtypes, SOTTO_ARRAY_LEN(k_subtypes), sf_format & SF_FORMAT_SUBMASK));
}

/* Maps libsndfile's open errors: a missing or unreadable file is I/O, an encoding it knows
 * but cannot decode is unsupported, everything else is a malformed or unknown file. */
static int map_open_error(int sf_err)
{
    switch (sf_err) {
    case SF_ERR_SYSTEM:
        return SOTTO_ERR_IO;
    case SF_ERR_UNSUPPORTED_ENCODING:
        return SOTTO_ERR_UNSUPPORTED;
    default:
        return SOTTO_ERR_FORMAT;
    }
}

/* ---- reader ---------------------------------------------------------------------------- */

sotto_audio_read_params sotto_audio_default_read_params(void)
{
    sotto_audio_read_params p;
    memset(&p, 0, sizeof p);
    p.target_rate_hz = 0;
    p.nonfinite = SOTTO_AUDIO_NONFINITE_REJECT;
    p.allow_truncated = 0;
    p.max_frames = 0;
    p.allocator = NULL;
    return p;
}

int64_t sotto_audio_output_length(int64_t frames, int in_rate_hz, int out_rate_hz)
{
    return sotto_resample_length(frames, in_rate_hz, out_rate_hz);
}

static int reader_fail(sotto_audio_reader *r, int code, const char *fmt, ...) SOTTO_PRINTF(3, 4);
static int reader_fail(sotto_audio_reader *r, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->last_error, sizeof r->last_error, fmt, ap);
    va_end(ap);
    r->error = code;
    return code;
}

static void update_out_samples(sotto_audio_reader *r)
{
    r->info.out_samples =
        r->info.frames < 0
            ? -1
            : sotto_resample_length(r->info.frames, r->info.sample_rate_hz, r->info.out_rate_hz);
}

void sotto_audio_reader_close(sotto_audio_reader *r)
{
    if (!r) return;
    if (r->sf) sf_close(r->sf);
    sotto_resampler_destroy(r->rs);
    sotto_alloc a = r->alloc;
    sotto_free(&a, r->raw);
    sotto_free(&a, r->mono);
    sotto_free(&a, r);
}

int sotto_audio_reader_open(const char *path, const sotto_audio_read_params *params,
                            sotto_audio_reader **out, sotto_audio_info *info, sotto_status *status)
{
    if (out) *out = NULL;
    if (!path || !out)
        return sotto_status_set(status, SOTTO_ERR_INVALID_ARG, "audio: path or out is NULL");
    sotto_audio_read_params p = params ? *params : sotto_audio_default_read_params();
    char name[160];
    short_path(name, sizeof name, path);
    if (p.target_rate_hz != 0 && !rate_ok(p.target_rate_hz))
        return sotto_status_set(status, SOTTO_ERR_INVALID_ARG,
                                "%s: target rate %d Hz outside %d..%d Hz", name, p.target_rate_hz,
                                SOTTO_AUDIO_MIN_RATE_HZ, SOTTO_AUDIO_MAX_RATE_HZ);
    if (p.nonfinite != SOTTO_AUDIO_NONFINITE_REJECT && p.nonfinite != SOTTO_AUDIO_NONFINITE_ZERO)
        return sotto_status_set(status, SOTTO_ERR_INVALID_ARG, "%s: bad nonfinite policy %d", name,
                                (int)p.nonfinite);
    if (p.max_frames < 0)
        return sotto_status_set(status, SOTTO_ERR_INVALID_ARG, "%s: max_frames < 0", name);

    sotto_alloc alloc;
    sotto_alloc_init(&alloc, p.allocator);
    sotto_audio_reader *r = sotto_calloc(&alloc, 1, sizeof *r);
    if (!r) return sotto_status_set(status, SOTTO_ERR_OUT_OF_MEMORY, "%s: out of memory", name);
    r->alloc = alloc;
    r->params = p;
    memcpy(r->path, name, sizeof name);

    /* libsndfile's own message for a missing file is generic; errno names the cause. */
    FILE *probe = fopen(path, "rb");
    if (!probe) {
        int e = errno;
        sotto_audio_reader_close(r);
        return sotto_status_set(status, SOTTO_ERR_IO, "%s: cannot open: %s", name, strerror(e));
    }
    fclose(probe);

    wav_scan ws;
    int is_wav = scan_wav(path, &ws);
    SF_INFO si;
    memset(&si, 0, sizeof si);
    r->sf = sf_open(path, SFM_READ, &si);
    if (!r->sf) {
        int e = sf_error(NULL);
        int code = map_open_error(e);
        if (is_wav && ws.have_fmt && (ws.channels == 0 || ws.rate_hz == 0)) {
            sotto_status_set(status, SOTTO_ERR_FORMAT,
                             "%s: WAV header declares channel count %u, rate %u Hz", name,
                             ws.channels, ws.rate_hz);
            sotto_audio_reader_close(r);
            return SOTTO_ERR_FORMAT;
        }
        const char *why =
            e == SF_ERR_UNRECOGNISED_FORMAT ? "not a recognised audio file" : "cannot read audio";
        sotto_status_set(status, code, "%s: %s (libsndfile: %s)", name, why, sf_strerror(NULL));
        sotto_audio_reader_close(r);
        return code;
    }
    int code = SOTTO_OK;
    if (si.channels < 1) {
        code = sotto_status_set(status, SOTTO_ERR_FORMAT, "%s: header declares %d channels", name,
                                si.channels);
    } else if (si.channels > SOTTO_AUDIO_MAX_CHANNELS) {
        code = sotto_status_set(status, SOTTO_ERR_UNSUPPORTED,
                                "%s: %d channels, at most %d are supported", name, si.channels,
                                SOTTO_AUDIO_MAX_CHANNELS);
    } else if (si.samplerate <= 0) {
        code = sotto_status_set(status, SOTTO_ERR_FORMAT, "%s: header declares rate %d Hz", name,
                                si.samplerate);
    } else if (!rate_ok(si.samplerate)) {
        code = sotto_status_set(status, SOTTO_ERR_UNSUPPORTED,
                                "%s: sample rate %d Hz outside the supported %d..%d Hz", name,
                                si.samplerate, SOTTO_AUDIO_MIN_RATE_HZ, SOTTO_AUDIO_MAX_RATE_HZ);
    }
    if (code) {
        sotto_audio_reader_close(r);
        return code;
    }

    int major = si.format & SF_FORMAT_TYPEMASK, sub = si.format & SF_FORMAT_SUBMASK;
    r->info.sample_rate_hz = si.samplerate;
    r->info.channels = si.channels;
    r->info.out_rate_hz = p.target_rate_hz ? p.target_rate_hz : si.samplerate;
    fill_names(&r->info, si.format);
    /* SF_COUNT_MAX means "unknown" (pipes); MP3 frame counts may be estimates from the
     * bit rate, so they are reported but not held against the file. */
    int count_known = si.frames >= 0 && si.frames < SF_COUNT_MAX;
    r->info.frames = count_known ? si.frames : -1;
    r->declared_frames = count_known && major != SF_FORMAT_MPEG ? si.frames : -1;

    if ((major == SF_FORMAT_WAV || major == SF_FORMAT_WAVEX) && is_wav && ws.have_data) {
        int64_t declared = ws.declared, available = ws.available;
        if (declared > available) {
            int bps = pcm_bytes_per_sample(sub);
            int64_t missing = bps ? (declared - available) / ((int64_t)bps * si.channels)
                                  : (int64_t)((double)si.frames * (double)(declared - available) /
                                              (double)(available > 0 ? available : 1));
            if (!p.allow_truncated) {
                code = sotto_status_set(
                    status, SOTTO_ERR_FORMAT,
                    "%s: truncated: the data chunk declares %lld bytes but the file holds "
                    "%lld (a cut file, or a streaming header with a placeholder size; "
                    "allow_truncated reads what is there)",
                    name, (long long)declared, (long long)available);
                sotto_audio_reader_close(r);
                return code;
            }
            r->info.missing_frames = missing;
        }
    }
    if (p.max_frames > 0 && r->declared_frames > p.max_frames) {
        code = sotto_status_set(status, SOTTO_ERR_UNSUPPORTED,
                                "%s: %lld frames, more than the limit of %lld", name,
                                (long long)r->declared_frames, (long long)p.max_frames);
        sotto_audio_reader_close(r);
        return code;
    }
    update_out_samples(r);

    /* Sizes: BLOCK_FRAMES × 256 channels × 4 bytes = 4 MiB at most. */
    r->raw = sotto_malloc(&alloc, (size_t)BLOCK_FRAMES * (size_t)si.channels * sizeof(float));
    r->mono = sotto_malloc(&alloc, (size_t)BLOCK_FRAMES * sizeof(float));
    if (!r->raw || !r->mono) {
        sotto_audio_reader_close(r);
        return sotto_status_set(status, SOTTO_ERR_OUT_OF_MEMORY, "%s: out of memory", name);
    }
    if (r->info.out_rate_hz != si.samplerate) {
        sotto_status rst;
        code = sotto_resampler_create(si.samplerate, r->info.out_rate_hz, &alloc, &r->rs, &rst);
        if (code) {
            sotto_audio_reader_close(r);
            return sotto_status_set(status, code, "%s: %s", name, rst.message);
        }
    }
    if (info) *info = r->info;
    sotto_status_clear(status);
    *out = r;
    return SOTTO_OK;
}

/* Decodes the next block into r->mono. At the end of the file sets eof and checks that the
 * file delivered what its header declared. */
static int reader_fill(sotto_audio_reader *r)
{
    const int ch = r->info.channels;
    sf_count_t m = r->decode_stopped ? 0 : sf_readf_float(r->sf, r->raw, BLOCK_FRAMES);
    if (!r->decode_stopped && sf_error(r->sf) != SF_ERR_NO_ERROR) {
        if (!r->params.allow_truncated)
            return reader_fail(r, SOTTO_ERR_FORMAT, "%s: decoding failed after frame %lld: %s",
                               r->path, (long long)(r->frames_read + (m > 0 ? m : 0)),
                               sf_strerror(r->sf));
        /* A cut or damaged stream: keep what decoded before the error, end there. */
        r->decode_stopped = 1;
    }
    if (m <= 0) {
        r->eof = 1;
        if (r->declared_frames >= 0 && r->frames_read < r->declared_frames) {
            int64_t missing = r->declared_frames - r->frames_read;
            if (!r->params.allow_truncated)
                return reader_fail(r, SOTTO_ERR_FORMAT,
                                   "%s: truncated or corrupt: the header declares %lld frames, "
                                   "only %lld could be decoded",
                                   r->path, (long long)r->declared_frames,
                                   (long long)r->frames_read);
            r->info.missing_frames += missing;
        }
        r->info.frames = r->frames_read;
        update_out_samples(r);
        return SOTTO_OK;
    }
    if (r->params.max_frames > 0 && r->frames_read + m > r->params.max_frames)
        return reader_fail(r, SOTTO_ERR_UNSUPPORTED, "%s: longer than the limit of %lld frames",
                           r->path, (long long)r->params.max_frames);

    /* One comparison catches NaN (fails every comparison), ±Inf and absurd magnitudes, so
     * nothing downstream (down-mix sum, soxr's filter) can overflow to Inf. */
    float *x = r->raw;
    const size_t n = (size_t)m * (size_t)ch;
    for (size_t i = 0; i < n; i++) {
        if (fabsf(x[i]) <= SOTTO_AUDIO_MAX_ABS_SAMPLE) continue;
        if (r->params.nonfinite == SOTTO_AUDIO_NONFINITE_REJECT) {
            char what[32];
            if (isnan(x[i]))
                snprintf(what, sizeof what, "NaN");
            else if (isinf(x[i]))
                snprintf(what, sizeof what, "Inf");
            else
                snprintf(what, sizeof what, "%.3g, beyond +-%.0f", (double)x[i],
                         (double)SOTTO_AUDIO_MAX_ABS_SAMPLE);
            return reader_fail(r, SOTTO_ERR_BAD_AUDIO, "%s: frame %lld channel %d is %s", r->path,
                               (long long)(r->frames_read + (int64_t)(i / ch)), (int)(i % ch),
                               what);
        }
        x[i] = 0.0f;
        r->info.nonfinite_samples++;
    }
    if (ch == 1) {
        memcpy(r->mono, x, (size_t)m * sizeof *x);
    } else if (ch == 2) {
        /* Halving is exact, so this is (L + R) / 2 correctly rounded. */
        for (sf_count_t t = 0; t < m; t++)
            r->mono[t] = 0.5f * x[2 * t] + 0.5f * x[2 * t + 1];
    } else {
        const float scale = 1.0f / (float)ch;
        for (sf_count_t t = 0; t < m; t++) {
            const float *f = x + (size_t)t * ch;
            float s = 0.0f;
            for (int c = 0; c < ch; c++)
                s += f[c];
            r->mono[t] = s * scale;
        }
    }
    r->mono_pos = 0;
    r->mono_len = m;
    r->frames_read += m;
    return SOTTO_OK;
}

int64_t sotto_audio_reader_read(sotto_audio_reader *r, float *out, int64_t n_samples)
{
    if (!r) return SOTTO_ERR_INVALID_ARG;
    if (n_samples < 0 || (n_samples > 0 && !out)) {
        snprintf(r->last_error, sizeof r->last_error, "%s: bad read arguments", r->path);
        return SOTTO_ERR_INVALID_ARG;
    }
    if (r->error) return r->error;
    int64_t got = 0;
    while (got < n_samples) {
        if (r->mono_pos < r->mono_len) {
            const float *src = r->mono + r->mono_pos;
            int64_t avail = r->mono_len - r->mono_pos;
            if (!r->rs) {
                int64_t k = avail < n_samples - got ? avail : n_samples - got;
                memcpy(out + got, src, (size_t)k * sizeof *src);
                r->mono_pos += k;
                got += k;
                continue;
            }
            int64_t used = 0;
            int64_t k =
                sotto_resampler_push_some(r->rs, src, avail, &used, out + got, n_samples - got);
            if (k < 0)
                return reader_fail(r, (int)k, "%s: resampling failed (%s)", r->path,
                                   sotto_strerror((int)k));
            if (k == 0 && used == 0)
                return reader_fail(r, SOTTO_ERR_INTERNAL, "%s: resampler made no progress",
                                   r->path);
            r->mono_pos += used;
            got += k;
            continue;
        }
        if (!r->eof) {
            int rc = reader_fill(r);
            if (rc) return rc;
            continue;
        }
        if (!r->rs) break;
        int64_t k = sotto_resampler_flush(r->rs, out + got, n_samples - got);
        if (k < 0)
            return reader_fail(r, (int)k, "%s: resampling failed (%s)", r->path,
                               sotto_strerror((int)k));
        if (k == 0) break;
        got += k;
    }
    return got;
}

int sotto_audio_reader_info(const sotto_audio_reader *r, sotto_audio_info *info)
{
    if (!r || !info) return SOTTO_ERR_INVALID_ARG;
    *info = r->info;
    return SOTTO_OK;
}

const char *sotto_audio_reader_last_error(const sotto_audio_reader *r)
{
    return r ? r->last_error : "";
}

/* ---- whole-file read ------------------------------------------------------------------- */

void sotto_audio_free(float *samples, const sotto_allocator *allocator)
{
    sotto_alloc a;
    sotto_alloc_init(&a, allocator);
    sotto_free(&a, samples);
}

int sotto_audio_read_file(const char *path, const sotto_audio_read_params *params, float **samples,
                          int64_t *n_samples, sotto_audio_info *info, sotto_status *status)
{
    if (samples) *samples = NULL;
    if (n_samples) *n_samples = 0;
    if (!path || !samples || !n_samples)
        return sotto_status_set(status, SOTTO_ERR_INVALID_ARG,
                                "audio: path, samples or n_samples is NULL");
    sotto_audio_reader *r = NULL;
    int rc = sotto_audio_reader_open(path, params, &r, NULL, status);
    if (rc) return rc;
    sotto_alloc alloc = r->alloc;

    /* Start from the declared length but never trust a header for more than a few times the
     * file's size (FLAC STREAMINFO can claim anything); grow as audio actually arrives. */
    long long file_bytes = 0;
    FILE *f = fopen(path, "rb");
    if (f) {
        if (fseek(f, 0, SEEK_END) == 0) file_bytes = ftell(f);
        fclose(f);
    }
    int64_t cap = r->info.out_samples > 0 ? r->info.out_samples : 0;
    int64_t sane = (int64_t)1 << 20;
    if (file_bytes > 0 && file_bytes < ((int64_t)1 << 40) && 8 * (int64_t)file_bytes > sane)
        sane = 8 * (int64_t)file_bytes;
    if (cap > sane) cap = sane;
    if (cap < 1) cap = 1;
    float *buf = sotto_malloc(&alloc, (size_t)cap * sizeof *buf);
    int64_t n = 0;
    if (!buf) {
        rc = sotto_status_set(status, SOTTO_ERR_OUT_OF_MEMORY, "%s: out of memory for %lld samples",
                              r->path, (long long)cap);
        goto fail;
    }
    for (;;) {
        if (n == cap) {
            /* Full: the usual case when the header was right. Peek one sample before
             * doubling so an exact-size buffer is not grown just to find the end. */
            float one;
            int64_t k = sotto_audio_reader_read(r, &one, 1);
            if (k < 0) {
                rc = sotto_status_set(status, (int)k, "%s", r->last_error);
                goto fail;
            }
            if (k == 0) break;
            size_t bytes;
            int64_t ncap = cap < ((int64_t)1 << 60) ? cap * 2 : -1;
            float *nb = NULL;
            if (ncap > 0 && !sotto_mul_size((size_t)ncap, sizeof *buf, &bytes))
                nb = sotto_malloc(&alloc, bytes);
            if (!nb) {
                rc =
                    sotto_status_set(status, SOTTO_ERR_OUT_OF_MEMORY,
                                     "%s: out of memory after %lld samples", r->path, (long long)n);
                goto fail;
            }
            memcpy(nb, buf, (size_t)n * sizeof *buf);
            sotto_free(&alloc, buf);
            buf = nb;
            cap = ncap;
            buf[n++] = one;
            continue;
        }
        int64_t k = sotto_audio_reader_read(r, buf + n, cap - n);
        if (k < 0) {
            rc = sotto_status_set(status, (int)k, "%s", r->last_error);
            goto fail;
        }
        if (k == 0) break;
        n += k;
    }
    if (info) *info = r->info;
    sotto_audio_reader_close(r);
    *samples = buf;
    *n_samples = n;
    sotto_status_clear(status);
    return SOTTO_OK;
fail:
    sotto_free(&alloc, buf);
    sotto_audio_reader_close(r);
    return rc;
}

/* ---- writing --------------------------------------------------------------------------- */

int sotto_audio_format_for_path(const char *path, int want_float)
{
    if (!path) return SOTTO_ERR_INVALID_ARG;
    const char *dot = strrchr(path, '.');
    if (!dot) return SOTTO_ERR_UNSUPPORTED;
    char ext[8];
    size_t i = 0;
    for (const char *c = dot + 1; *c && i + 1 < sizeof ext; c++)
        ext[i++] = (char)tolower(*c);
    ext[i] = '\0';
    if (strlen(dot + 1) >= sizeof ext) return SOTTO_ERR_UNSUPPORTED;
    if (!strcmp(ext, "wav")) return want_float ? SOTTO_AUDIO_WAV_FLOAT : SOTTO_AUDIO_WAV_PCM16;
    if (!strcmp(ext, "flac") && !want_float) return SOTTO_AUDIO_FLAC_PCM16;
    return SOTTO_ERR_UNSUPPORTED;
}

static int64_t first_nonfinite(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return i;
    return -1;
}

int sotto_audio_writer_open(const char *path, int sample_rate_hz, sotto_audio_file_format format,
                            const sotto_allocator *allocator, sotto_audio_writer **out,
                            sotto_status *status)
{
    if (out) *out = NULL;
    if (!path || !out)
        return sotto_status_set(status, SOTTO_ERR_INVALID_ARG, "audio: path or out is NULL");
    char name[160];
    short_path(name, sizeof name, path);
    int sf_format;
    switch (format) {
    case SOTTO_AUDIO_WAV_PCM16:
        sf_format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
        break;
    case SOTTO_AUDIO_WAV_FLOAT:
        sf_format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
        break;
    case SOTTO_AUDIO_FLAC_PCM16:
        sf_format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
        break;
    default:
        return sotto_status_set(status, SOTTO_ERR_INVALID_ARG, "%s: unknown output format %d", name,
                                (int)format);
    }
    if (!rate_ok(sample_rate_hz))
        return sotto_status_set(status, SOTTO_ERR_INVALID_ARG,
                                "%s: sample rate %d Hz outside %d..%d Hz", name, sample_rate_hz,
                                SOTTO_AUDIO_MIN_RATE_HZ, SOTTO_AUDIO_MAX_RATE_HZ);
    SF_INFO si;
    memset(&si, 0, sizeof si);
    si.samplerate = sample_rate_hz;
    si.channels = 1;
    si.format = sf_format;
    if (!sf_format_check(&si))
        return sotto_status_set(status, SOTTO_ERR_UNSUPPORTED,
                                "%s: the format cannot store %d Hz audio", name, sample_rate_hz);

    sotto_alloc alloc;
    sotto_alloc_init(&alloc, allocator);
    sotto_audio_writer *w = sotto_calloc(&alloc, 1, sizeof *w);
    if (!w) return sotto_status_set(status, SOTTO_ERR_OUT_OF_MEMORY, "%s: out of memory", name);
    w->alloc = alloc;
    w->format = format;
    memcpy(w->path, name, sizeof name);
    if (format != SOTTO_AUDIO_WAV_FLOAT) {
        w->pcm = sotto_malloc(&alloc, WRITE_BLOCK * sizeof *w->pcm);
        if (!w->pcm) {
            sotto_free(&alloc, w);
            return sotto_status_set(status, SOTTO_ERR_OUT_OF_MEMORY, "%s: out of memory", name);
        }
    }
    w->sf = sf_open(path, SFM_WRITE, &si);
    if (!w->sf) {
        int e = sf_error(NULL);
        int code = e == SF_ERR_SYSTEM ? SOTTO_ERR_IO : SOTTO_ERR_UNSUPPORTED;
        sotto_status_set(status, code, "%s: cannot create: %s", name, sf_strerror(NULL));
        sotto_free(&alloc, w->pcm);
        sotto_free(&alloc, w);
        return code;
    }
    *out = w;
    sotto_status_clear(status);
    return SOTTO_OK;
}

static int writer_fail(sotto_audio_writer *w, int code, const char *fmt, ...) SOTTO_PRINTF(3, 4);
static int writer_fail(sotto_audio_writer *w, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->last_error, sizeof w->last_error, fmt, ap);
    va_end(ap);
    return code;
}

int sotto_audio_writer_write(sotto_audio_writer *w, const float *samples, int64_t n_samples)
{
    if (!w) return SOTTO_ERR_INVALID_ARG;
    if (n_samples < 0 || (n_samples > 0 && !samples))
        return writer_fail(w, SOTTO_ERR_INVALID_ARG, "%s: bad write arguments", w->path);
    int64_t bad = first_nonfinite(samples, n_samples);
    if (bad >= 0)
        return writer_fail(w, SOTTO_ERR_BAD_AUDIO, "%s: sample %lld is %s", w->path,
                           (long long)(w->written + bad), isnan(samples[bad]) ? "NaN" : "Inf");
    int64_t done = 0;
    while (done < n_samples) {
        int64_t k = n_samples - done;
        sf_count_t put;
        if (w->format == SOTTO_AUDIO_WAV_FLOAT) {
            put = sf_write_float(w->sf, samples + done, k);
        } else {
            if (k > WRITE_BLOCK) k = WRITE_BLOCK;
            for (int64_t i = 0; i < k; i++) {
                float v = samples[done + i] * 32768.0f;
                v = v > 32767.0f ? 32767.0f : v < -32768.0f ? -32768.0f : v;
                w->pcm[i] = (short)lrintf(v);
            }
            put = sf_write_short(w->sf, w->pcm, k);
        }
        if (put != k)
            return writer_fail(w, SOTTO_ERR_IO, "%s: write failed after %lld samples: %s", w->path,
                               (long long)(w->written + done), sf_strerror(w->sf));
        done += k;
    }
    w->written += n_samples;
    return SOTTO_OK;
}

const char *sotto_audio_writer_last_error(const sotto_audio_writer *w)
{
    return w ? w->last_error : "";
}

int64_t sotto_audio_writer_samples(const sotto_audio_writer *w)
{
    return w ? w->written : SOTTO_ERR_INVALID_ARG;
}

int sotto_audio_writer_close(sotto_audio_writer *w, sotto_status *status)
{
    if (!w) return SOTTO_OK;
    int rc = SOTTO_OK;
    /* sf_close writes the final header sizes; its failure means the file is unusable. */
    int e = sf_close(w->sf);
    if (e != 0)
        rc = sotto_status_set(status, SOTTO_ERR_IO, "%s: closing failed: %s", w->path,
                              sf_error_number(e));
    else
        sotto_status_clear(status);
    sotto_alloc a = w->alloc;
    sotto_free(&a, w->pcm);
    sotto_free(&a, w);
    return rc;
}

int sotto_audio_write_file(const char *path, const float *samples, int64_t n_samples,
                           int sample_rate_hz, sotto_audio_file_format format, sotto_status *status)
{
    if (!path || n_samples < 0 || (n_samples > 0 && !samples))
        return sotto_status_set(status, SOTTO_ERR_INVALID_ARG, "audio: bad write arguments");
    char name[160];
    short_path(name, sizeof name, path);
    int64_t bad = first_nonfinite(samples, n_samples);
    if (bad >= 0)
        return sotto_status_set(status, SOTTO_ERR_BAD_AUDIO, "%s: sample %lld is %s", name,
                                (long long)bad, isnan(samples[bad]) ? "NaN" : "Inf");
    sotto_audio_writer *w = NULL;
    int rc = sotto_audio_writer_open(path, sample_rate_hz, format, NULL, &w, status);
    if (rc) return rc;
    rc = sotto_audio_writer_write(w, samples, n_samples);
    if (rc) {
        sotto_status_set(status, rc, "%s", w->last_error);
        sotto_audio_writer_close(w, NULL);
        remove(path);
        return rc;
    }
    rc = sotto_audio_writer_close(w, status);
    if (rc) remove(path);
    return rc;
}
