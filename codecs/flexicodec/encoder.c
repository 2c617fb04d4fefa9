/*
 * The FlexiCodec encoder object of sotto_codec.h (audio in, groups out) and
 * sotto_codec_encode_file. The work is flexicodec_encode_audio (encode_audio.c): fbank →
 * SenseVoice → 4/3 downsampling → DAC encoder, merging, aggregation, FSQ, RVQ, over one whole
 * utterance (the model is not causal). create sizes one buffer for params.max_seconds of
 * audio (scratch + the output groups); encode only carves it. On a CUDA model each encoder
 * also makes its own CUDA context, sized for max_seconds at create, and runs the SenseVoice
 * stack and the DAC encoder there (flexicodec_cuda_enc.h); its host scratch then holds only
 * the buffers of the stages that stay on the CPU.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "codecs/flexicodec/codec_internal.h"
#include "codecs/flexicodec/encode.h"
#include "codecs/flexicodec/flexicodec_cuda_enc.h"
#include "core/model.h"
#include "core/threadpool.h"
#include "sotto/sotto_audio.h"
#include "sotto/sotto_codec.h"

#define ENC_RATE 16000
#define MAX_SECONDS_LIMIT 3600.0
#define FILE_MAX_SECONDS 600.0
#define SEGMENT_SECONDS 30.0 /* sotto_codec_encode_file's default segment */
#define SEGMENT_MIN_SECONDS 1.0

struct sotto_encoder {
    const sotto_model *model;
    const flexicodec_model *fm;
    sotto_encoder_params params;
    float threshold; /* resolved */
    int stages;
    int64_t max_samples;
    int max_groups;
    sotto_status err;
    sotto_threadpool *tp;
    sotto_cpu cpu;
    sotto_fbank *fb;
    float *scratch; /* flexicodec_encode_audio_scratch(max_samples) floats */
    size_t scratch_floats;
    int32_t *len, *fsq, *rvq; /* [max_groups], [max_groups], [max_groups][stages] */
    double target_gps;        /* rate control: groups/s aimed at (a bitrate converted); 0: off */
    int bits_per_group;       /* code payload per group (0: the packet layout is unknown) */
    float *sim, *work;        /* rate control scratch, [max_groups] each */
    float chosen;             /* the threshold the last encode in target mode chose */
    int has_chosen;
#ifdef SOTTO_HAVE_CUDA
    flexicodec_cuda_enc *cu; /* SenseVoice + DAC encoder on the device (a CUDA model), or NULL */
#endif
};

sotto_encoder_params sotto_encoder_default_params(void)
{
    sotto_encoder_params p;
    memset(&p, 0, sizeof p);
    p.threshold = -1.0f;
    p.n_stages = -1;
    p.max_seconds = 30.0;
    return p;
}

static int fail(sotto_encoder *e, int code, const char *fmt, ...) SOTTO_PRINTF(3, 4);
static int fail(sotto_encoder *e, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = sotto_status_setv(&e->err, code, fmt, ap);
    va_end(ap);
    return rc;
}

const char *sotto_encoder_last_error(const sotto_encoder *e)
{
    return e ? e->err.message : "";
}

static int check_threshold(float t)
{
    return !isnan(t) && t <= 1.0f;
}

static double frame_rate(const flexicodec_model *fm)
{
    return fm->enc.hp.hop_length > 0 ? (double)ENC_RATE / fm->enc.hp.hop_length : 0.0;
}

/* Validates a target pair and converts it to groups/s (*gps, 0: off); SOTTO_OK or an error
 * with the reason in msg. */
static int check_target(const flexicodec_model *fm, int bits_per_group, double gps, double bps,
                        double *out, char *msg, size_t msg_size)
{
    const double fr = frame_rate(fm);
    if (isnan(gps) || isnan(bps) || isinf(gps) || isinf(bps) || gps < 0.0 || bps < 0.0) {
        snprintf(msg, msg_size, "rate target %g groups/s, %g bit/s: not a number >= 0", gps, bps);
        return SOTTO_ERR_INVALID_ARG;
    }
    if (gps > 0.0 && bps > 0.0) {
        snprintf(msg, msg_size, "set a target in groups/s or in bit/s, not both");
        return SOTTO_ERR_INVALID_ARG;
    }
    if (gps > fr) {
        snprintf(msg, msg_size, "target %g groups/s above the frame rate %g", gps, fr);
        return SOTTO_ERR_INVALID_ARG;
    }
    if (bps > 0.0) {
        if (bits_per_group <= 0) {
            snprintf(msg, msg_size, "a bitrate target needs the model's packet layout");
            return SOTTO_ERR_INVALID_ARG;
        }
        if (bps > bits_per_group * fr) {
            snprintf(msg, msg_size,
                     "target %g bit/s above the most this stage count gives (%d bits per group "
                     "at %g groups/s: %g bit/s)",
                     bps, bits_per_group, fr, bits_per_group * fr);
            return SOTTO_ERR_INVALID_ARG;
        }
        gps = bps / bits_per_group;
    }
    *out = gps;
    return SOTTO_OK;
}

static float resolve_threshold(const flexicodec_model *fm, float t)
{
    return t < 0.0f ? fm->enc.hp.default_threshold : t;
}

/* Host scratch floats one encode of n samples needs: the whole CPU pipeline's, or on a CUDA
 * model only that of the stages left on the CPU. */
static size_t scratch_for(const sotto_encoder *e, int64_t n)
{
    const flexicodec_model *fm = e->fm;
#ifdef SOTTO_HAVE_CUDA
    if (e->model->backend_used == SOTTO_BACKEND_CUDA && fm->cuda_enc)
        return flexicodec_cuda_enc_audio_scratch(&fm->w, &fm->enc, &fm->sv, e->fb, n);
#endif
    return flexicodec_encode_audio_scratch(&fm->w, &fm->enc, &fm->sv, e->fb, n);
}

void sotto_encoder_free(sotto_encoder *e)
{
    if (!e) return;
    const sotto_alloc *a = &e->model->alloc;
#ifdef SOTTO_HAVE_CUDA
    flexicodec_cuda_enc_free(e->cu);
#endif
    sotto_fbank_destroy(e->fb);
    sotto_threadpool_free(e->tp);
    sotto_free(a, e->scratch);
    sotto_free(a, e->len);
    sotto_free(a, e->fsq);
    sotto_free(a, e->rvq);
    sotto_free(a, e->sim);
    sotto_free(a, e->work);
    sotto_free(a, e);
}

int sotto_encoder_create(const sotto_model *model, const sotto_encoder_params *params,
                         sotto_encoder **out, sotto_status *st)
{
    sotto_status_clear(st);
    if (out) *out = NULL;
    if (!model || !out) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "model/out is NULL");
    const flexicodec_model *fm = flexicodec_model_get(model);
    if (!fm)
        return sotto_status_set(st, SOTTO_ERR_UNSUPPORTED,
                                "model architecture '%s' is not a codec (expected flexicodec)",
                                model->arch ? model->arch : "?");
    if (!fm->has_encoder)
        return sotto_status_set(st, SOTTO_ERR_UNSUPPORTED, "model has no encoder: %s",
                                fm->no_encoder_why);
    sotto_encoder_params p = params ? *params : sotto_encoder_default_params();
    if (!check_threshold(p.threshold))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "threshold %g out of range 0..1 (negative: the model's)",
                                (double)p.threshold);
    if (p.n_stages < -1 || p.n_stages > fm->enc.hp.n_codebooks)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "n_stages %d out of range -1..%d (the model's stages)", p.n_stages,
                                fm->enc.hp.n_codebooks);
    if (!(p.max_seconds > 0.0 && p.max_seconds <= MAX_SECONDS_LIMIT))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "max_seconds %g out of range (0, %g]",
                                p.max_seconds, MAX_SECONDS_LIMIT);

    const sotto_alloc *a = &model->alloc;
    sotto_encoder *e = sotto_calloc(a, 1, sizeof *e);
    if (!e) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    e->model = model;
    e->fm = fm;
    e->params = p;
    e->threshold = resolve_threshold(fm, p.threshold);
    e->stages = p.n_stages < 0 ? fm->enc.hp.n_codebooks : p.n_stages;
    e->max_samples = (int64_t)ceil(p.max_seconds * ENC_RATE);
    int rc;
    sotto_packet_layout lay;
    if (flexicodec_model_layout(model, &lay, NULL) == SOTTO_OK)
        e->bits_per_group =
            (lay.max_group_len > 1 ? sotto_packet_bits_for((uint32_t)(lay.max_group_len - 1)) : 0) +
            lay.sem_bits + e->stages * lay.ac_bits;
    char msg[200];
    if ((rc = check_target(fm, e->bits_per_group, p.target_groups_per_s, p.target_bits_per_s,
                           &e->target_gps, msg, sizeof msg))) {
        sotto_status_set(st, rc, "%s", msg);
        goto fail;
    }
    sotto_fbank_params fp = flexicodec_fbank_params(fm->sv.cfg.n_mels);
    if ((rc = sotto_fbank_create(&fp, a, &e->fb, st))) goto fail;
    const int64_t T = flexicodec_encode_audio_frames(&fm->enc, &fm->sv, e->fb, e->max_samples);
    e->scratch_floats = scratch_for(e, e->max_samples);
    if (T < 0 || T > INT32_MAX / 64 || !e->scratch_floats) {
        rc = sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "max_seconds %g: sizes overflow",
                              p.max_seconds);
        goto fail;
    }
    e->max_groups = (int)T;
    const size_t G = (size_t)(T ? T : 1);
    size_t bytes;
    if (sotto_mul_size(e->scratch_floats, sizeof(float), &bytes) ||
        !(e->scratch = sotto_malloc(a, bytes)) ||
        !(e->len = sotto_malloc(a, G * sizeof(int32_t))) ||
        !(e->fsq = sotto_malloc(a, G * sizeof(int32_t))) ||
        !(e->rvq = sotto_malloc(a, G * (size_t)(e->stages ? e->stages : 1) * sizeof(int32_t))) ||
        !(e->sim = sotto_malloc(a, G * sizeof(float))) ||
        !(e->work = sotto_malloc(a, G * sizeof(float)))) {
        rc = sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY,
                              "out of memory for encoder buffers (%zu MB for %g s)",
                              (e->scratch_floats * sizeof(float)) >> 20, p.max_seconds);
        goto fail;
    }
    if (model->params.n_threads > 1 &&
        (rc = sotto_threadpool_create(model->params.n_threads, a, &e->tp))) {
        sotto_status_set(st, rc, "cannot start %d worker threads", model->params.n_threads);
        goto fail;
    }
    sotto_cpu_init(&e->cpu, model->cpu_features, e->tp);
#ifdef SOTTO_HAVE_CUDA
    if (model->backend_used == SOTTO_BACKEND_CUDA && fm->cuda_enc) {
        const int64_t T_fb = sotto_fbank_num_frames(e->fb, e->max_samples);
        const int64_t max_lfr = sensevoice_lfr_frames(T_fb, fm->sv.cfg.lfr_n);
        if ((rc = flexicodec_cuda_enc_create(fm->cuda_enc, e->max_samples,
                                             max_lfr > 0 ? max_lfr : 1, &e->cu, st)))
            goto fail;
    }
#endif
    *out = e;
    return SOTTO_OK;
fail:
    sotto_encoder_free(e);
    return rc;
}

int sotto_encoder_set_threshold(sotto_encoder *e, float threshold)
{
    if (!e) return SOTTO_ERR_INVALID_ARG;
    if (!check_threshold(threshold))
        return fail(e, SOTTO_ERR_INVALID_ARG,
                    "threshold %g out of range 0..1 (negative: the model's)", (double)threshold);
    e->threshold = resolve_threshold(e->fm, threshold);
    return SOTTO_OK;
}

int sotto_encoder_set_target(sotto_encoder *e, double groups_per_s, double bits_per_s)
{
    if (!e) return SOTTO_ERR_INVALID_ARG;
    char msg[200];
    double gps = 0.0;
    int rc =
        check_target(e->fm, e->bits_per_group, groups_per_s, bits_per_s, &gps, msg, sizeof msg);
    if (rc) return fail(e, rc, "%s", msg);
    e->target_gps = gps;
    return SOTTO_OK;
}

int sotto_encoder_bits_per_group(const sotto_encoder *e)
{
    return e ? e->bits_per_group : 0;
}

double sotto_encoder_frame_rate_hz(const sotto_encoder *e)
{
    return e ? frame_rate(e->fm) : 0.0;
}

float sotto_encoder_threshold(const sotto_encoder *e)
{
    if (!e) return 0.0f;
    return e->target_gps > 0.0 && e->has_chosen ? e->chosen : e->threshold;
}

int sotto_encoder_stages(const sotto_encoder *e)
{
    return e ? e->stages : 0;
}

int64_t sotto_encoder_max_samples(const sotto_encoder *e)
{
    return e ? e->max_samples : 0;
}

int sotto_encoder_frames_for(const sotto_encoder *e, int64_t n)
{
    if (!e || n < 0) return 0;
    const int64_t T = flexicodec_encode_audio_frames(&e->fm->enc, &e->fm->sv, e->fb, n);
    return T < 0 ? 0 : T > INT32_MAX ? INT32_MAX : (int)T;
}

/* One encode; in target mode the target count is target_gps · n_basis / 16000 (n_basis: the
 * duration the rate is measured over, n itself unless a file was padded). */
static int encode_impl(sotto_encoder *e, const float *pcm, int64_t n, int64_t n_basis,
                       sotto_encoder_groups *groups)
{
    if (groups) memset(groups, 0, sizeof *groups);
    if (!e) return SOTTO_ERR_INVALID_ARG;
    if (!groups || n < 0 || (n > 0 && !pcm))
        return fail(e, SOTTO_ERR_INVALID_ARG, "NULL groups/pcm or negative length");
    if (n > e->max_samples)
        return fail(e, SOTTO_ERR_BUFFER_TOO_SMALL,
                    "%lld samples (%.2f s) exceed the encoder's max_seconds %g", (long long)n,
                    (double)n / ENC_RATE, e->params.max_seconds);
    const flexicodec_model *fm = e->fm;
    if (scratch_for(e, n) > e->scratch_floats)
        return fail(e, SOTTO_ERR_INTERNAL, "encoder scratch too small for %lld samples",
                    (long long)n);
    flexicodec_rate_ctl rate;
    memset(&rate, 0, sizeof rate);
    rate.target_groups = e->target_gps * (double)n_basis / ENC_RATE;
    rate.sim = e->sim;
    rate.work = e->work;
    flexicodec_rate_ctl *rp = e->target_gps > 0.0 ? &rate : NULL;
    int64_t G = SOTTO_ERR_INTERNAL;
    int on_device = 0;
#ifdef SOTTO_HAVE_CUDA
    if (e->cu) {
        on_device = 1;
        G = flexicodec_cuda_enc_audio(e->cu, &e->cpu, &fm->w, &fm->enc, &fm->sv, e->fb, pcm, n,
                                      e->threshold, rp, e->stages, e->len, e->fsq, e->rvq,
                                      e->scratch);
        /* a device stage names the failing layer and call */
        if (G < 0 && flexicodec_cuda_enc_last_error(e->cu)[0])
            return fail(e, (int)G, "encoding on CUDA failed: %s",
                        flexicodec_cuda_enc_last_error(e->cu));
    }
#endif
    if (!on_device)
        G = flexicodec_encode_audio(&e->cpu, &fm->w, &fm->enc, &fm->sv, e->fb, pcm, n, e->threshold,
                                    rp, e->stages, e->len, e->fsq, e->rvq, e->scratch);
    if (G < 0)
        return fail(e, (int)G,
                    G == SOTTO_ERR_BAD_AUDIO ? "the input has NaN or infinite samples"
                                             : "encoding failed (%d)",
                    (int)G);
    int64_t frames = 0;
    for (int64_t g = 0; g < G; g++)
        frames += e->len[g];
    groups->n_groups = (int)G;
    groups->n_frames = (int)frames;
    groups->n_stages = e->stages;
    groups->lengths = e->len;
    groups->fsq = e->fsq;
    groups->rvq = e->rvq;
    groups->threshold = e->threshold;
    if (rp) {
        /* no frame at all (under 0.03 s): nothing was chosen, the target is trivially met */
        if (G > 0) {
            e->chosen = rate.threshold;
            e->has_chosen = 1;
            groups->threshold = rate.threshold;
            groups->clamped = rate.clamped;
        }
        groups->target_groups = rate.target_groups;
    }
    e->err.code = SOTTO_OK;
    e->err.message[0] = '\0';
    return (int)G;
}

int sotto_encoder_encode(sotto_encoder *e, const float *pcm, int64_t n,
                         sotto_encoder_groups *groups)
{
    return encode_impl(e, pcm, n, n, groups);
}

int sotto_encoder_encode_to(sotto_encoder *e, const float *pcm, int64_t n, int32_t *lengths,
                            int32_t *fsq, int32_t *rvq, int max_groups)
{
    if (!e) return SOTTO_ERR_INVALID_ARG;
    if (!lengths || !fsq || (e->stages && !rvq) || max_groups < 0)
        return fail(e, SOTTO_ERR_INVALID_ARG, "NULL output buffer or negative max_groups");
    sotto_encoder_groups g;
    int rc = sotto_encoder_encode(e, pcm, n, &g);
    if (rc < 0) return rc;
    if (g.n_groups > max_groups)
        return fail(e, SOTTO_ERR_BUFFER_TOO_SMALL, "%d groups, room for %d", g.n_groups,
                    max_groups);
    const size_t G = (size_t)g.n_groups;
    if (G) {
        memcpy(lengths, g.lengths, G * sizeof(int32_t));
        memcpy(fsq, g.fsq, G * sizeof(int32_t));
        if (g.n_stages) memcpy(rvq, g.rvq, G * (size_t)g.n_stages * sizeof(int32_t));
    }
    return g.n_groups;
}

/* ---- files ----------------------------------------------------------------------------- */

sotto_codec_encode_params sotto_codec_default_encode_params(void)
{
    sotto_codec_encode_params p;
    memset(&p, 0, sizeof p);
    p.encoder = sotto_encoder_default_params();
    p.encoder.max_seconds = FILE_MAX_SECONDS;
    p.segment_seconds = SEGMENT_SECONDS;
    return p;
}

/* What both file paths end with: the groups written as one `.sotto` stream of the input's
 * length, and the summary. */
typedef struct file_result {
    const int32_t *len, *fsq, *rvq;
    int n_groups, stages, segments, clamped;
    int64_t n, frames;
    float threshold;
    double segment_seconds;
} file_result;

static int write_file_and_info(const sotto_model *model, const sotto_encoder *enc,
                               const char *out_path, const sotto_codec_encode_params *p,
                               const sotto_audio_info *ai, const file_result *r,
                               sotto_codec_encode_info *info, sotto_status *st)
{
    sotto_codec_write_params wp = sotto_codec_default_write_params();
    wp.length = r->n;
    wp.input_rate_hz = ai->sample_rate_hz;
    wp.comments = p->comments;
    wp.n_comments = p->n_comments;
    const int rc = sotto_codec_write_file(model, out_path, r->len, r->fsq, r->rvq, r->n_groups,
                                          r->stages, &wp, st);
    if (rc || !info) return rc;
    sotto_codec_file_info fi;
    memset(&fi, 0, sizeof fi);
    if (sotto_codec_probe_file(out_path, NULL, &fi, NULL) == SOTTO_OK)
        info->file_bytes = fi.file_bytes;
    const double d = (double)r->n / ENC_RATE;
    info->input_rate_hz = ai->sample_rate_hz;
    info->input_channels = ai->channels;
    info->samples = r->n;
    info->duration_s = d;
    info->groups = r->n_groups;
    info->frames = r->frames;
    info->n_stages = r->stages;
    info->threshold = r->threshold;
    info->groups_per_s = r->n > 0 ? (double)r->n_groups / d : 0.0;
    info->payload_bps = r->n > 0 ? (double)r->n_groups * enc->bits_per_group / d : 0.0;
    info->target_groups_per_s = enc->target_gps;
    info->clamped = r->clamped;
    info->bitrate_bps = r->n > 0 ? (double)info->file_bytes * 8.0 / d : 0.0;
    info->segments = r->segments;
    info->segment_seconds = r->segment_seconds;
    return SOTTO_OK;
}

/* Groups of a whole file, appended segment by segment (a few ints per 80 ms: small). */
typedef struct group_list {
    const sotto_alloc *a;
    int32_t *len, *fsq, *rvq;
    int n, cap, stages;
} group_list;

static int group_list_append(group_list *l, const sotto_encoder_groups *g)
{
    if (l->n + g->n_groups > l->cap) {
        int cap = l->cap ? l->cap : 256;
        while (cap < l->n + g->n_groups)
            cap *= 2;
        const size_t S = (size_t)(l->stages > 0 ? l->stages : 1);
        int32_t *len = sotto_malloc(l->a, (size_t)cap * sizeof(int32_t));
        int32_t *fsq = sotto_malloc(l->a, (size_t)cap * sizeof(int32_t));
        int32_t *rvq = sotto_malloc(l->a, (size_t)cap * S * sizeof(int32_t));
        if (!len || !fsq || !rvq) {
            sotto_free(l->a, len);
            sotto_free(l->a, fsq);
            sotto_free(l->a, rvq);
            return SOTTO_ERR_OUT_OF_MEMORY;
        }
        if (l->n) {
            memcpy(len, l->len, (size_t)l->n * sizeof(int32_t));
            memcpy(fsq, l->fsq, (size_t)l->n * sizeof(int32_t));
            memcpy(rvq, l->rvq, (size_t)l->n * S * sizeof(int32_t));
        }
        sotto_free(l->a, l->len);
        sotto_free(l->a, l->fsq);
        sotto_free(l->a, l->rvq);
        l->len = len;
        l->fsq = fsq;
        l->rvq = rvq;
        l->cap = cap;
    }
    const size_t G = (size_t)g->n_groups, S = (size_t)l->stages;
    if (G) {
        memcpy(l->len + l->n, g->lengths, G * sizeof(int32_t));
        memcpy(l->fsq + l->n, g->fsq, G * sizeof(int32_t));
        if (S) memcpy(l->rvq + (size_t)l->n * S, g->rvq, G * S * sizeof(int32_t));
    }
    l->n += g->n_groups;
    return SOTTO_OK;
}

static void group_list_free(group_list *l)
{
    sotto_free(l->a, l->len);
    sotto_free(l->a, l->fsq);
    sotto_free(l->a, l->rvq);
}

/*
 * Segmented sotto_codec_encode_file (params.segment_seconds > 0): the file is read in pieces
 * (sotto_audio_reader, resampled to 16 kHz as it is read) and cut into consecutive segments
 * of seg_frames 12.5 Hz frames, each encoded as its own utterance by one encoder sized for one
 * segment, so memory does not grow with the file. seg_frames is the largest count ≤
 * segment_seconds · 12.5 whose samples give exactly that many SenseVoice frames (otherwise the
 * encoder would truncate a segment and the next would start misaligned). The last segment is
 * zero-padded as the whole-file path pads the whole input; a file of one segment or less is
 * encoded exactly as without segmenting. One sample is read ahead so that a file whose length
 * is a multiple of the segment still gets the padding its end needs.
 */
static int encode_file_segmented(const sotto_model *model, const char *in_path,
                                 const char *out_path, const sotto_codec_encode_params *p,
                                 sotto_codec_encode_info *info, sotto_status *st)
{
    const int hop = flexicodec_model_hop(model);
    if (hop <= 0) return sotto_status_set(st, SOTTO_ERR_UNSUPPORTED, "not a codec model");
    sotto_audio_read_params rp = sotto_audio_default_read_params();
    rp.target_rate_hz = ENC_RATE;
    sotto_audio_reader *rd = NULL;
    sotto_audio_info ai;
    int rc = sotto_audio_reader_open(in_path, &rp, &rd, &ai, st);
    if (rc) return rc;
    const double max_n = p->encoder.max_seconds * ENC_RATE;
    if (ai.frames >= 0 &&
        (double)sotto_audio_output_length(ai.frames, ai.sample_rate_hz, ENC_RATE) > max_n) {
        sotto_audio_reader_close(rd);
        return sotto_status_set(st, SOTTO_ERR_BUFFER_TOO_SMALL,
                                "%s: %.1f s is longer than max_seconds %g", in_path,
                                (double)ai.frames / ai.sample_rate_hz, p->encoder.max_seconds);
    }
    int seg_frames = (int)floor(p->segment_seconds * ENC_RATE / hop);
    sotto_encoder_params ep = p->encoder;
    ep.max_seconds = (double)((int64_t)(seg_frames + 6) * hop) / ENC_RATE;
    sotto_encoder *enc = NULL;
    float *buf = NULL;
    group_list gl;
    memset(&gl, 0, sizeof gl);
    gl.a = &model->alloc;
    if ((rc = sotto_encoder_create(model, &ep, &enc, st))) {
        sotto_audio_reader_close(rd);
        return rc;
    }
    while (seg_frames > 1 && sotto_encoder_frames_for(enc, (int64_t)seg_frames * hop) != seg_frames)
        seg_frames--;
    const int64_t seg = (int64_t)seg_frames * hop, cap = sotto_encoder_max_samples(enc);
    gl.stages = enc->stages;
    buf = sotto_calloc(&model->alloc, (size_t)(cap > seg ? cap : seg) + 1, sizeof(float));
    if (!buf) {
        rc = sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    int64_t have = 0, n = 0, frames = 0;
    int last = 0, n_seg = 0, clamped = 0;
    double thr_sum = 0.0;
    while (!last) {
        while (have < seg + 1) { /* a segment and one sample of look-ahead */
            const int64_t got = sotto_audio_reader_read(rd, buf + have, seg + 1 - have);
            if (got < 0) {
                rc = sotto_status_set(st, (int)got, "%s", sotto_audio_reader_last_error(rd));
                goto done;
            }
            if (got == 0) break;
            have += got;
        }
        const int64_t m = have > seg ? seg : have;
        n += m;
        if ((double)n > max_n) {
            rc = sotto_status_set(st, SOTTO_ERR_BUFFER_TOO_SMALL, "%s: longer than max_seconds %g",
                                  in_path, p->encoder.max_seconds);
            goto done;
        }
        int64_t n_pad = m;
        if (have <= seg) { /* the last segment: pad as the whole-file path does */
            last = 1;
            int64_t t = 0;
            while (flexicodec_model_out_len(model, t) < m)
                t++;
            n_pad = t * hop;
            while (sotto_encoder_frames_for(enc, n_pad) < n_pad / hop && n_pad < cap)
                n_pad += 160;
            if (n_pad > cap) n_pad = cap;
            if (n_pad > have) memset(buf + have, 0, (size_t)(n_pad - have) * sizeof(float));
        }
        sotto_encoder_groups g;
        if ((rc = encode_impl(enc, buf, n_pad, m, &g)) < 0) {
            sotto_status_set(st, rc, "%s: %s", in_path, sotto_encoder_last_error(enc));
            goto done;
        }
        if (!last && g.n_frames != seg_frames) {
            rc = sotto_status_set(st, SOTTO_ERR_INTERNAL, "%s: segment %d gave %d frames, not %d",
                                  in_path, n_seg + 1, g.n_frames, seg_frames);
            goto done;
        }
        if ((rc = group_list_append(&gl, &g))) {
            sotto_status_set(st, rc, "out of memory");
            goto done;
        }
        frames += g.n_frames;
        thr_sum += g.threshold;
        n_seg++;
        if (!clamped && m >= hop) clamped = g.clamped;
        if (!last) {
            buf[0] = buf[seg];
            have = 1;
        }
    }
    if (flexicodec_model_out_len(model, frames) < n) {
        rc = sotto_status_set(st, SOTTO_ERR_INTERNAL,
                              "%s: the groups cover %lld samples, fewer than the input's %lld",
                              in_path, (long long)flexicodec_model_out_len(model, frames),
                              (long long)n);
        goto done;
    }
    const file_result res = {gl.len,
                             gl.fsq,
                             gl.rvq,
                             gl.n,
                             gl.stages,
                             n_seg,
                             clamped,
                             n,
                             frames,
                             (float)(thr_sum / n_seg),
                             (double)seg / ENC_RATE};
    if ((rc = write_file_and_info(model, enc, out_path, p, &ai, &res, info, st))) goto done;
    rc = SOTTO_OK;
done:
    group_list_free(&gl);
    sotto_free(&model->alloc, buf);
    sotto_encoder_free(enc);
    sotto_audio_reader_close(rd);
    return rc;
}

int sotto_codec_encode_file(const sotto_model *model, const char *in_path, const char *out_path,
                            const sotto_codec_encode_params *params, sotto_codec_encode_info *info,
                            sotto_status *st)
{
    sotto_status_clear(st);
    if (info) memset(info, 0, sizeof *info);
    if (!model || !in_path || !out_path)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "model/in_path/out_path is NULL");
    const sotto_codec_encode_params p = params ? *params : sotto_codec_default_encode_params();
    const flexicodec_model *fm = flexicodec_model_get(model);
    if (fm && !fm->has_encoder)
        return sotto_status_set(st, SOTTO_ERR_UNSUPPORTED, "model has no encoder: %s",
                                fm->no_encoder_why);
    if (!(p.encoder.max_seconds > 0.0 && p.encoder.max_seconds <= MAX_SECONDS_LIMIT))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "max_seconds %g out of range (0, %g]",
                                p.encoder.max_seconds, MAX_SECONDS_LIMIT);
    if (!(p.segment_seconds == 0.0 ||
          (p.segment_seconds >= SEGMENT_MIN_SECONDS && p.segment_seconds <= MAX_SECONDS_LIMIT)))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "segment_seconds %g: 0 (whole file) or %g..%g", p.segment_seconds,
                                SEGMENT_MIN_SECONDS, MAX_SECONDS_LIMIT);
    if (p.segment_seconds > 0.0)
        return encode_file_segmented(model, in_path, out_path, &p, info, st);

    sotto_audio_read_params rp = sotto_audio_default_read_params();
    rp.target_rate_hz = ENC_RATE;
    float *x = NULL;
    int64_t n = 0;
    sotto_audio_info ai;
    int rc = sotto_audio_read_file(in_path, &rp, &x, &n, &ai, st);
    if (rc) return rc;
    if ((double)n > p.encoder.max_seconds * ENC_RATE) {
        sotto_audio_free(x, rp.allocator);
        return sotto_status_set(st, SOTTO_ERR_BUFFER_TOO_SMALL,
                                "%s: %.1f s is longer than max_seconds %g", in_path,
                                (double)n / ENC_RATE, p.encoder.max_seconds);
    }

    /*
     * The groups must decode to at least n samples (hop·T − trim): the encoder gives
     * min(DAC frames, downsampled SenseVoice frames), which can fall short of ceil(n / hop),
     * so the input is zero-padded at the end (by less than two frames) until it covers n; the
     * file's length then trims the decoded padding away.
     */
    sotto_encoder_params ep = p.encoder;
    const int hop = flexicodec_model_hop(model);
    int64_t n_pad = n;
    if (hop > 0) {
        int64_t t = 0;
        while (t < 100000000 && flexicodec_model_out_len(model, t) < n)
            t++;
        n_pad = t * hop;
        ep.max_seconds = (double)(n_pad + 4 * hop) / ENC_RATE;
    }
    sotto_encoder *enc = NULL;
    if ((rc = sotto_encoder_create(model, &ep, &enc, st))) {
        sotto_audio_free(x, rp.allocator);
        return rc;
    }
    const int64_t need = hop > 0 ? n_pad / hop : 0;
    while (sotto_encoder_frames_for(enc, n_pad) < need && n_pad < sotto_encoder_max_samples(enc))
        n_pad += 160;
    if (n_pad > sotto_encoder_max_samples(enc)) n_pad = sotto_encoder_max_samples(enc);
    float *xp = NULL;
    if (n_pad > n) {
        xp = sotto_calloc(&model->alloc, (size_t)n_pad, sizeof(float));
        if (!xp) {
            rc = sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
        if (n) memcpy(xp, x, (size_t)n * sizeof(float));
    }
    sotto_encoder_groups g;
    rc = encode_impl(enc, xp ? xp : x, n_pad, n, &g);
    if (rc < 0) {
        sotto_status_set(st, rc, "%s: %s", in_path, sotto_encoder_last_error(enc));
        goto done;
    }
    const int64_t covered = flexicodec_model_out_len(model, g.n_frames);
    if (covered < n) {
        rc = sotto_status_set(st, SOTTO_ERR_INTERNAL,
                              "%s: the groups cover %lld samples, fewer than the input's %lld",
                              in_path, (long long)covered, (long long)n);
        goto done;
    }
    const file_result res = {g.lengths, g.fsq, g.rvq,      g.n_groups,  g.n_stages, 1,
                             g.clamped, n,     g.n_frames, g.threshold, 0.0};
    if ((rc = write_file_and_info(model, enc, out_path, &p, &ai, &res, info, st))) goto done;
    rc = SOTTO_OK;
done:
    sotto_free(&model->alloc, xp);
    sotto_encoder_free(enc);
    sotto_audio_free(x, rp.allocator);
    return rc;
}
