/*
 * FlexiCodec in the SDK: the model loader hook (decode-side weights and the bottleneck
 * transformer, and the encoder and SenseVoice when the file has them, read once when the
 * model loads) and the decoder object of sotto_codec.h (the encoder object: encoder.c).
 *
 * The decoder buffers groups (lengths, FSQ index, the RVQ codes it will decode, a stage
 * count; -1 marks a concealed group) and decodes the whole utterance at flush, in the order
 * of the official FlexiCodec.decode_from_codes:
 *
 *   FSQ index → code [G][5] (concealed rows interpolated) → project_out → ConvNeXt decoder
 *   RVQ decode per run of groups with the same stage count (0 stages: zeros)
 *   semantic + acoustic per group → repeated by the lengths → x[T][latent]
 *   bottleneck transformer (in place) → DAC decoder → 1280·T − 16 samples
 *
 * Adding per group and then expanding gives the same floats as the official
 * expand-both-then-add. project_out is affine, so interpolating FSQ codes equals
 * interpolating its outputs. In segmented mode the group-rate stages and the expansion still
 * run over the whole utterance (a few KB per group); only the transformer and the DAC
 * decoder run per window, into a window buffer whose core samples are copied out, the seams
 * cross-faded linearly over one hop.
 *
 * Memory: one arena sized at create from params (max_groups, max_frames, the window); the
 * processing calls only carve it.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "codecs/flexicodec/bottleneck.h"
#include "codecs/flexicodec/codec_internal.h"
#include "codecs/flexicodec/flexicodec.h"
#include "codecs/flexicodec/flexicodec_cuda.h"
#include "codecs/flexicodec/flexicodec_cuda_enc.h"
#include "core/arena.h"
#include "core/model.h"
#include "core/threadpool.h"
#include "sotto/sotto_codec.h"

#define MAX_FRAMES_LIMIT 1000000
#define MIN_SEGMENT 8
#define DEFAULT_GROUP_LEN 2 /* concealment before any group was received */
#define NO_GROUP_LIMIT 8    /* max group length when the model sets none (the 3-bit field) */
#define MAX_GROUP_LIMIT 4096
#define LOST (-1) /* stage count of a concealed group */

/* ---- model loader ------------------------------------------------------------------------ */

static void flexicodec_model_free(sotto_model *m)
{
    flexicodec_model *fm = m->arch_data;
    if (!fm) return;
#ifdef SOTTO_HAVE_CUDA
    flexicodec_cuda_weights_free(fm->cuda);
    flexicodec_cuda_enc_weights_free(fm->cuda_enc);
#endif
    sensevoice_free(&fm->sv);
    flexicodec_encoder_weights_free(&fm->enc);
    flexicodec_bottleneck_free(&fm->bt);
    flexicodec_decoder_weights_free(&fm->w);
    sotto_free(&m->alloc, fm);
    m->arch_data = NULL;
}

/*
 * The encode side, when the file has it: the encoder tensors (`flexicodec.ssl_dim` marks a
 * --with-encoder file) and SenseVoice (`sensevoice.*` metadata). A file with neither, or with
 * only one of them, loads as a decode-only model (no_encoder_why says what is missing); a
 * file that declares a part but holds it damaged fails to load.
 */
static int load_encode_side(sotto_model *m, flexicodec_model *fm, sotto_status *st)
{
    const int has_enc = sotto_gguf_find_kv(m->gguf, "flexicodec.ssl_dim") != NULL;
    const int has_sv = sotto_gguf_find_kv(m->gguf, "sensevoice.input_size") != NULL;
    if (!has_enc || !has_sv) {
        snprintf(fm->no_encoder_why, sizeof fm->no_encoder_why, "%s",
                 !has_enc && !has_sv ? "a decode-only file (no encoder, no SenseVoice)"
                 : !has_enc          ? "the file has SenseVoice but not the codec's encoder"
                                     : "the file has the codec's encoder but not SenseVoice "
                                       "(convert with --sensevoice and --am-mvn)");
        return SOTTO_OK;
    }
    int rc;
    if ((rc = flexicodec_encoder_weights_load(&fm->enc, m->gguf, &fm->w, &m->alloc, st))) return rc;
    sensevoice_cfg cfg;
    const char *prefix = SENSEVOICE_PREFIX_FLEXICODEC;
    if ((rc = sotto_gguf_get_str_or(m->gguf, "sensevoice.tensor_prefix",
                                    SENSEVOICE_PREFIX_FLEXICODEC, &prefix, st)) ||
        (rc = sensevoice_cfg_from_gguf(m->gguf, &cfg, st)) ||
        (rc = sensevoice_load(&fm->sv, m->gguf, prefix, &cfg, &m->alloc, st)))
        return rc;
    if (fm->sv.cfg.dim != fm->enc.hp.ssl_dim)
        return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                "SenseVoice output width %d differs from flexicodec.ssl_dim %d",
                                fm->sv.cfg.dim, fm->enc.hp.ssl_dim);
    if (fm->enc.hp.sample_rate != 16000)
        return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                "encoder sample rate %d Hz (SenseVoice's front end needs 16000)",
                                fm->enc.hp.sample_rate);
    /* Binary16 arithmetic in the analysis path only when asked for it (f16_arithmetic 2): it
     * can move merge boundaries and code indices. Only with an f16 file, as for decoding. */
    const sotto_gguf_tensor *t = sotto_gguf_find_tensor(m->gguf, "dac.encoder.block.0.weight");
    if (m->f16_math == 2 && fm->w.h16 && t && t->dtype == SOTTO_DTYPE_F16) {
        if ((rc = flexicodec_encoder_weights_use_h16(&fm->enc, st)) ||
            (rc = sensevoice_use_h16(&fm->sv, st)))
            return rc;
        m->f16_math_used = 2;
    }
    fm->has_encoder = 1;
    return SOTTO_OK;
}

int sotto_flexicodec_load(sotto_model *m, sotto_status *st)
{
    flexicodec_model *fm = sotto_calloc(&m->alloc, 1, sizeof *fm);
    if (!fm) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    m->arch_data = fm;
    m->arch_free = flexicodec_model_free;
    int rc;
    if ((rc = flexicodec_decoder_weights_load(&fm->w, m->gguf, &m->alloc, st))) return rc;
    /* Binary16 arithmetic on the decode path only: the encoder keeps f32, where a rounding
     * could move a merge boundary or a code index (docs/architecture.md). */
    if (m->f16_math && (rc = flexicodec_decoder_weights_use_h16(&fm->w, m->gguf, st))) return rc;
    m->f16_math_used = fm->w.h16;
    const flexicodec_hparams *hp = &fm->w.hp;

    flexicodec_bottleneck_cfg cfg;
    if ((rc = flexicodec_bottleneck_cfg_from_gguf(m->gguf, "flexicodec.transformer.", &cfg, st)))
        return rc;
    if (cfg.n_layers == 0) cfg.dim = hp->latent_dim; /* the identity, at the latent width */
    if (cfg.dim != hp->latent_dim)
        return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                "flexicodec.transformer.dim %d differs from latent_dim %d", cfg.dim,
                                hp->latent_dim);
    if (cfg.n_layers != hp->transformer_layers)
        return sotto_status_set(st, SOTTO_ERR_FORMAT, "transformer layers: %d and %d", cfg.n_layers,
                                hp->transformer_layers);
    /* An f16 file's transformer stays f16 in memory (the 32 released layers: 200 MB instead of
     * 400), and joins binary16 arithmetic with the decoder. */
    cfg.keep_f16 = flexicodec_bottleneck_file_f16(m->gguf, FLEXICODEC_BOTTLENECK_PREFIX);
    if ((rc = flexicodec_bottleneck_load(&fm->bt, m->gguf, FLEXICODEC_BOTTLENECK_PREFIX, &cfg,
                                         &m->alloc, st)))
        return rc;
    if (fm->w.h16 && cfg.keep_f16 && (rc = flexicodec_bottleneck_use_h16(&fm->bt, st))) return rc;

    int32_t mtpg = 0;
    if ((rc = sotto_gguf_get_i32_or(m->gguf, "flexicodec.max_tokens_per_group", 0, &mtpg, st)))
        return rc;
    if (mtpg < 0 || mtpg > MAX_GROUP_LIMIT)
        return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                "flexicodec.max_tokens_per_group %d out of range 0..%d", (int)mtpg,
                                MAX_GROUP_LIMIT);
    fm->max_group_len = mtpg ? mtpg : NO_GROUP_LIMIT;
    if ((rc = load_encode_side(m, fm, st))) return rc;
#ifdef SOTTO_HAVE_CUDA
    /* On a CUDA model each decoder runs its whole decode after packet parsing (group stages,
     * transformer, DAC) on the device (flexicodec_cuda.h). The weights go to the device
     * once, here, for every decoder made on the model. */
    m->cuda_path = m->cuda_ok;
    if (m->cuda_path) {
        rc = flexicodec_cuda_weights_create(&fm->w, &fm->bt, m->params.device, &fm->cuda, st);
        /* The encoder's SenseVoice stack and DAC encoder likewise, when the model has an
         * encoder (flexicodec_cuda_enc.h); its other stages stay on the CPU, which the log
         * says once. */
        if (!rc && fm->has_encoder &&
            !(rc = flexicodec_cuda_enc_weights_create(&fm->enc, &fm->sv, m->params.device,
                                                      &fm->cuda_enc, st)))
            sotto_log(SOTTO_LOG_INFO, "flexicodec encoder on CUDA: %s", FLEXICODEC_CUDA_ENC_STAGES);
        if (rc) {
            flexicodec_cuda_weights_free(fm->cuda);
            flexicodec_cuda_enc_weights_free(fm->cuda_enc);
            fm->cuda = NULL;
            fm->cuda_enc = NULL;
        }
        /* with AUTO a device that cannot take the model leaves it on the CPU */
        if ((rc = sotto_model_cuda_fallback(m, rc, st))) return rc;
    }
#endif
    return SOTTO_OK;
}

static const flexicodec_model *flexi(const sotto_model *m)
{
    return m && m->arch && !strcmp(m->arch, "flexicodec") ? m->arch_data : NULL;
}

const flexicodec_model *flexicodec_model_get(const sotto_model *m)
{
    return flexi(m);
}

int flexicodec_model_layout(const sotto_model *m, sotto_packet_layout *l, sotto_status *st)
{
    const flexicodec_model *fm = flexi(m);
    if (!fm)
        return sotto_status_set(st, SOTTO_ERR_UNSUPPORTED,
                                "model architecture '%s' is not a codec (expected flexicodec)",
                                m && m->arch ? m->arch : "?");
    const flexicodec_hparams *hp = &fm->w.hp;
    const int stages =
        hp->n_codebooks < SOTTO_PACKET_MAX_STAGES ? hp->n_codebooks : SOTTO_PACKET_MAX_STAGES;
    const int len = fm->max_group_len < SOTTO_PACKET_MAX_GROUP_LEN ? fm->max_group_len
                                                                   : SOTTO_PACKET_MAX_GROUP_LEN;
    sotto_status ls;
    if (sotto_packet_layout_init(l, hp->fsq_size, hp->n_codebooks ? hp->codebook_size : 0, stages,
                                 len, SOTTO_PACKET_FLEXICODEC_GROUPS, &ls) != SOTTO_OK)
        return sotto_status_set(st, SOTTO_ERR_UNSUPPORTED,
                                "the model's codes do not fit packets: %s", ls.message);
    return SOTTO_OK;
}

int flexicodec_packet_span_frames(const sotto_model *m)
{
    const flexicodec_model *fm = flexi(m);
    if (!fm) return 0;
    const int rate = fm->w.hp.sample_rate, hop = fm->w.hp.hop_length;
    int f = hop > 0 ? (rate + hop - 1) / hop : 1;
    return f < 1 ? 1 : f;
}

int flexicodec_model_rate(const sotto_model *m)
{
    const flexicodec_model *fm = flexi(m);
    return fm ? fm->w.hp.sample_rate : 0;
}

int flexicodec_model_hop(const sotto_model *m)
{
    const flexicodec_model *fm = flexi(m);
    return fm ? fm->w.hp.hop_length : 0;
}

int64_t flexicodec_model_out_len(const sotto_model *m, int64_t T)
{
    const flexicodec_model *fm = flexi(m);
    return fm ? flexicodec_dac_out_len(&fm->w.hp, T) : 0;
}

/* ---- decoder object ---------------------------------------------------------------------- */

struct sotto_decoder {
    const sotto_model *model;
    const flexicodec_model *fm;
    const flexicodec_hparams *hp;
    sotto_decoder_params params;
    sotto_status err;
    sotto_arena arena;
    sotto_threadpool *tp; /* model params' n_threads > 1, else NULL */
    sotto_cpu cpu;

    int stages;     /* RVQ stages decoded and stored per group */
    int max_groups; /* bounds from params */
    int max_frames;
    int win;       /* frames of one transformer + DAC pass */
    int segmented; /* 1: windows of params.segment_frames (+ overlap) */
#ifdef SOTTO_HAVE_CUDA
    flexicodec_cuda *cu; /* the transformer + DAC on the device (a CUDA model), or NULL */
#endif

    /* the utterance */
    int32_t *len; /* [max_groups] */
    int32_t *fsq; /* [max_groups] (0 for concealed groups) */
    int32_t *rvq; /* [max_groups][stages] */
    int32_t *nst; /* [max_groups] stages decoded for the group, LOST when concealed */
    int n_groups;
    int n_frames;
    int64_t recv_groups, recv_frames; /* received (not concealed): for unknown lengths */
    int flushed;

    /* scratch, all from the arena */
    float *codes;   /* [max_groups][n_levels] */
    float *sx;      /* [max_groups][convnext_dim] project_out output */
    float *sem;     /* [max_groups][latent] semantic latent, then the per-group sum */
    float *ac;      /* [max_groups][latent] acoustic latent */
    float *lat;     /* [max_frames][latent] expanded latent */
    float *wx;      /* [win][latent] window latent (segmented) */
    float *wwave;   /* [dac_out_len(win)] window waveform (segmented) */
    float *scratch; /* max of the stages' scratch sizes */

    /* packets (sotto_decoder_push_packet) */
    sotto_packet_layout layout;
    int layout_ok;                  /* 0: the model's codes do not fit packets */
    int64_t pk_received, pk_frames; /* packets received and their frames (lost-packet span) */
    int32_t pk_len[SOTTO_PACKET_FLEXICODEC_GROUPS];
    int32_t pk_sem[SOTTO_PACKET_FLEXICODEC_GROUPS];
    int32_t pk_ac[SOTTO_PACKET_FLEXICODEC_GROUPS * SOTTO_PACKET_MAX_STAGES];
};

sotto_decoder_params sotto_decoder_default_params(void)
{
    sotto_decoder_params p;
    memset(&p, 0, sizeof p);
    p.max_frames = 375;
    p.max_groups = 0;
    p.max_stages = -1;
    p.segment_frames = 0;
    p.overlap_frames = 16;
    p.max_batch_frames = 0;
    return p;
}

static int fail(sotto_decoder *d, int code, const char *fmt, ...) SOTTO_PRINTF(3, 4);
static int fail(sotto_decoder *d, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = sotto_status_setv(&d->err, code, fmt, ap);
    va_end(ap);
    return rc;
}

const char *sotto_decoder_last_error(const sotto_decoder *d)
{
    return d ? d->err.message : "";
}

int sotto_decoder_sample_rate_hz(const sotto_decoder *d)
{
    return d ? d->hp->sample_rate : 0;
}

int sotto_decoder_hop_samples(const sotto_decoder *d)
{
    return d ? d->hp->hop_length : 0;
}

int sotto_decoder_max_stages(const sotto_decoder *d)
{
    return d ? d->hp->n_codebooks : 0;
}

int sotto_decoder_decoded_stages(const sotto_decoder *d)
{
    return d ? d->stages : 0;
}

int sotto_decoder_codebook_size(const sotto_decoder *d)
{
    return d ? d->hp->codebook_size : 0;
}

int32_t sotto_decoder_fsq_size(const sotto_decoder *d)
{
    return d ? d->hp->fsq_size : 0;
}

int sotto_decoder_max_group_length(const sotto_decoder *d)
{
    return d ? d->fm->max_group_len : 0;
}

int sotto_decoder_buffered_frames(const sotto_decoder *d)
{
    return d ? d->n_frames : 0;
}

int sotto_decoder_buffered_groups(const sotto_decoder *d)
{
    return d ? d->n_groups : 0;
}

size_t sotto_decoder_output_samples(const sotto_decoder *d)
{
    return d ? (size_t)flexicodec_dac_out_len(d->hp, d->n_frames) : 0;
}

size_t sotto_decoder_max_output_samples(const sotto_decoder *d)
{
    return d ? (size_t)flexicodec_dac_out_len(d->hp, d->max_frames) : 0;
}

/* ---- life cycle -------------------------------------------------------------------------- */

static void reset_state(sotto_decoder *d)
{
    d->n_groups = d->n_frames = 0;
    d->recv_groups = d->recv_frames = 0;
    d->pk_received = d->pk_frames = 0;
    d->flushed = 0;
    sotto_status_clear(&d->err);
}

static size_t max3(size_t a, size_t b, size_t c)
{
    size_t m = a > b ? a : b;
    return m > c ? m : c;
}

/* Bytes of the arena for the bounds in d (0 on overflow), and the scratch floats. */
static size_t arena_bytes(const sotto_decoder *d, size_t *scratch_floats)
{
    const flexicodec_hparams *hp = d->hp;
    const size_t G = (size_t)d->max_groups, T = (size_t)d->max_frames, W = (size_t)d->win;
    const size_t lat = (size_t)hp->latent_dim;
    const size_t bt = flexicodec_bottleneck_scratch_size(&d->fm->bt, (int64_t)W);
    const size_t dac = flexicodec_dac_scratch(hp, (int64_t)W);
    if (!bt || !dac) return 0;
    const size_t sc = max3(max3(flexicodec_convnext_scratch(hp, (int64_t)G),
                                flexicodec_rvq_scratch(hp, (int64_t)G), 1),
                           bt, dac);
    /* floats, each array rounded up to 64 bytes by the arena */
    const size_t parts[9] = {G * (size_t)hp->n_levels,
                             G * (size_t)hp->convnext_dim,
                             G * lat,
                             G * lat,
                             T * lat,
                             d->segmented ? W * lat : 0,
                             d->segmented ? (size_t)flexicodec_dac_out_len(hp, (int64_t)W) : 0,
                             sc,
                             G * (4 + (size_t)d->stages) /* the int32 code arrays */};
    size_t total = 0;
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(parts); i++) {
        size_t b;
        if (sotto_mul_size(parts[i], sizeof(float), &b) || sotto_add_size(total, b, &total) ||
            sotto_add_size(total, 5 * 64, &total))
            return 0;
    }
    *scratch_floats = sc;
    return total;
}

int sotto_decoder_create(const sotto_model *model, const sotto_decoder_params *params,
                         sotto_decoder **out, sotto_status *st)
{
    sotto_status_clear(st);
    if (out) *out = NULL;
    if (!model || !out) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "model/out is NULL");
    if (strcmp(model->arch, "flexicodec") || !model->arch_data)
        return sotto_status_set(st, SOTTO_ERR_UNSUPPORTED,
                                "model architecture '%s' is not a codec (expected flexicodec)",
                                model->arch);
    const flexicodec_model *fm = model->arch_data;
    const flexicodec_hparams *hp = &fm->w.hp;
    sotto_decoder_params p = params ? *params : sotto_decoder_default_params();
    if (p.max_frames < 1 || p.max_frames > MAX_FRAMES_LIMIT)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "max_frames %d out of range 1..%d",
                                p.max_frames, MAX_FRAMES_LIMIT);
    if (p.max_groups < 0 || p.max_groups > p.max_frames)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "max_groups %d out of range 0..max_frames (%d)", p.max_groups,
                                p.max_frames);
    if (p.max_stages < -1 || p.max_stages > hp->n_codebooks)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "max_stages %d out of range -1..%d (the model's stages)",
                                p.max_stages, hp->n_codebooks);
    if (p.segment_frames && (p.segment_frames < MIN_SEGMENT || p.segment_frames > p.max_frames ||
                             p.overlap_frames < 1 || p.overlap_frames > p.segment_frames))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "segment_frames %d / overlap_frames %d out of range (segment "
                                "%d..max_frames %d, overlap 1..segment)",
                                p.segment_frames, p.overlap_frames, MIN_SEGMENT, p.max_frames);
    if (p.max_batch_frames < 0 || p.max_batch_frames > MAX_FRAMES_LIMIT)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "max_batch_frames %d out of range 0..%d",
                                p.max_batch_frames, MAX_FRAMES_LIMIT);
    if (flexicodec_dac_out_len(hp, p.max_frames) > INT32_MAX)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "max_frames %d: output too long for one flush", p.max_frames);

    const sotto_alloc *a = &model->alloc;
    sotto_decoder *d = sotto_calloc(a, 1, sizeof *d);
    if (!d) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    d->model = model;
    d->fm = fm;
    d->hp = hp;
    d->params = p;
    d->stages = p.max_stages < 0 ? hp->n_codebooks : p.max_stages;
    d->max_frames = p.max_frames;
    d->max_groups = p.max_groups ? p.max_groups : p.max_frames;
    d->segmented = p.segment_frames > 0 && p.segment_frames + 2 * p.overlap_frames < p.max_frames;
    d->win = d->segmented ? p.segment_frames + 2 * p.overlap_frames : p.max_frames;
    int rc;

    size_t sc = 0, bytes = arena_bytes(d, &sc);
    if (!bytes) {
        rc = sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "decoder bounds overflow");
        goto fail;
    }
    if ((rc = sotto_arena_init(&d->arena, a, bytes))) {
        sotto_status_set(st, rc, "out of memory for decoder buffers (%zu MB for %d frames)",
                         bytes >> 20, d->max_frames);
        goto fail;
    }
    const size_t G = (size_t)d->max_groups, lat = (size_t)hp->latent_dim;
    sotto_arena *ar = &d->arena;
    d->len = sotto_arena_alloc(ar, G * sizeof(int32_t), 64);
    d->fsq = sotto_arena_alloc(ar, G * sizeof(int32_t), 64);
    d->nst = sotto_arena_alloc(ar, G * sizeof(int32_t), 64);
    d->rvq = sotto_arena_alloc(ar, G * (size_t)(d->stages ? d->stages : 1) * sizeof(int32_t), 64);
    d->codes = sotto_arena_floats(ar, G * (size_t)hp->n_levels);
    d->sx = sotto_arena_floats(ar, G * (size_t)hp->convnext_dim);
    d->sem = sotto_arena_floats(ar, G * lat);
    d->ac = sotto_arena_floats(ar, G * lat);
    d->lat = sotto_arena_floats(ar, (size_t)d->max_frames * lat);
    d->scratch = sotto_arena_floats(ar, sc);
    if (d->segmented) {
        d->wx = sotto_arena_floats(ar, (size_t)d->win * lat);
        d->wwave = sotto_arena_floats(ar, (size_t)flexicodec_dac_out_len(hp, d->win));
    }
    if (!d->len || !d->fsq || !d->nst || !d->rvq || !d->codes || !d->sx || !d->sem || !d->ac ||
        !d->lat || !d->scratch || (d->segmented && (!d->wx || !d->wwave))) {
        rc = sotto_status_set(st, SOTTO_ERR_INTERNAL, "decoder arena too small");
        goto fail;
    }

    if (model->params.n_threads > 1 &&
        (rc = sotto_threadpool_create(model->params.n_threads, a, &d->tp))) {
        sotto_status_set(st, rc, "cannot start %d worker threads", model->params.n_threads);
        goto fail;
    }
    sotto_cpu_init(&d->cpu, model->cpu_features, d->tp);
#ifdef SOTTO_HAVE_CUDA
    /* one context for the decoder's windows and the batches of sotto_decoder_decode_batch */
    const int ctx_frames = p.max_batch_frames > d->win ? p.max_batch_frames : d->win;
    if (model->backend_used == SOTTO_BACKEND_CUDA &&
        (rc = flexicodec_cuda_create_shared(fm->cuda, ctx_frames, &d->cu, st)))
        goto fail;
    /* Segment windows repeat a few lengths (and a reused decoder its flushes): each length
     * seen twice runs as a replayed CUDA graph from then on. */
    if (d->cu && (rc = flexicodec_cuda_set_graphs(d->cu, 1))) {
        sotto_status_set(st, rc, "flexicodec cuda: graphs");
        goto fail;
    }
    /* the group stages run on the device too: a flush uploads only the codes and lengths */
    if (d->cu && (rc = flexicodec_cuda_enable_codes(
                      d->cu, d->max_groups > ctx_frames ? d->max_groups : ctx_frames, d->stages,
                      d->max_frames, st)))
        goto fail;
#endif
    d->layout_ok = flexicodec_model_layout(model, &d->layout, NULL) == SOTTO_OK;
    reset_state(d);
    *out = d;
    return SOTTO_OK;
fail:
    sotto_decoder_free(d);
    return rc;
}

void sotto_decoder_free(sotto_decoder *d)
{
    if (!d) return;
    const sotto_alloc *a = &d->model->alloc;
#ifdef SOTTO_HAVE_CUDA
    flexicodec_cuda_free(d->cu);
#endif
    sotto_arena_free(&d->arena);
    sotto_threadpool_free(d->tp);
    sotto_free(a, d);
}

int sotto_decoder_reset(sotto_decoder *d)
{
    if (!d) return SOTTO_ERR_INVALID_ARG;
    reset_state(d);
    return SOTTO_OK;
}

/* ---- push / conceal ---------------------------------------------------------------------- */

/* Checks that n_groups groups of n_frames frames fit and that the stream is open. */
static int check_room(sotto_decoder *d, int64_t n_groups, int64_t n_frames)
{
    if (d->flushed) return fail(d, SOTTO_ERR_STATE, "decoder was flushed: call reset first");
    if (d->n_groups + n_groups > d->max_groups)
        return fail(d, SOTTO_ERR_BUFFER_TOO_SMALL, "%d + %lld groups exceed max_groups %d",
                    d->n_groups, (long long)n_groups, d->max_groups);
    if (d->n_frames + n_frames > d->max_frames)
        return fail(d, SOTTO_ERR_BUFFER_TOO_SMALL, "%d + %lld frames exceed max_frames %d",
                    d->n_frames, (long long)n_frames, d->max_frames);
    return SOTTO_OK;
}

/* Sum of lengths[0..n), or an error naming the first length outside 1..max. */
static int64_t check_lengths(sotto_decoder *d, const int32_t *lengths, int n)
{
    const int max = d->fm->max_group_len;
    int64_t T = 0;
    for (int g = 0; g < n; g++) {
        if (lengths[g] < 1 || lengths[g] > max)
            return fail(d, SOTTO_ERR_INVALID_ARG, "group %d: length %d out of range 1..%d", g,
                        (int)lengths[g], max);
        T += lengths[g];
    }
    return T;
}

/* The checks of sotto_decoder_push on its arguments, in push's order (with `open`, that the
 * decoder was not flushed, between the pointers and the values), but not on the decoder's
 * room: the frame count Σ lengths, or an error with its message in d. */
static int64_t check_codes(sotto_decoder *d, const int32_t *lengths, const int32_t *fsq,
                           const int32_t *rvq, int n_groups, int n_stages, int open)
{
    const flexicodec_hparams *hp = d->hp;
    if (n_groups < 0) return fail(d, SOTTO_ERR_INVALID_ARG, "negative group count");
    if (n_stages < 0 || n_stages > hp->n_codebooks)
        return fail(d, SOTTO_ERR_INVALID_ARG, "n_stages %d out of range 0..%d", n_stages,
                    hp->n_codebooks);
    if (n_groups > 0 && (!lengths || !fsq || (n_stages > 0 && !rvq)))
        return fail(d, SOTTO_ERR_INVALID_ARG, "NULL %s",
                    !lengths ? "lengths"
                    : !fsq   ? "fsq"
                             : "rvq");
    if (open && d->flushed)
        return fail(d, SOTTO_ERR_STATE, "decoder was flushed: call reset first");
    const int64_t T = check_lengths(d, lengths, n_groups);
    if (T < 0) return T;
    for (int g = 0; g < n_groups; g++) {
        if (fsq[g] < 0 || fsq[g] >= hp->fsq_size)
            return fail(d, SOTTO_ERR_INVALID_ARG, "group %d: FSQ index %d out of range 0..%d", g,
                        (int)fsq[g], (int)hp->fsq_size - 1);
        for (int q = 0; q < n_stages; q++) {
            const int32_t c = rvq[(int64_t)g * n_stages + q];
            if (c < 0 || c >= hp->codebook_size)
                return fail(d, SOTTO_ERR_INVALID_ARG,
                            "group %d, stage %d: RVQ code %d out of range 0..%d", g, q, (int)c,
                            hp->codebook_size - 1);
        }
    }
    return T;
}

int sotto_decoder_push(sotto_decoder *d, const int32_t *lengths, const int32_t *fsq,
                       const int32_t *rvq, int n_groups, int n_stages)
{
    if (!d) return SOTTO_ERR_INVALID_ARG;
    const int64_t T = check_codes(d, lengths, fsq, rvq, n_groups, n_stages, 1);
    if (T < 0) return (int)T;
    int rc = check_room(d, n_groups, T);
    if (rc) return rc;

    const int keep = n_stages < d->stages ? n_stages : d->stages, S = d->stages;
    for (int g = 0; g < n_groups; g++) {
        const int i = d->n_groups + g;
        d->len[i] = lengths[g];
        d->fsq[i] = fsq[g];
        d->nst[i] = keep;
        for (int q = 0; q < keep; q++)
            d->rvq[(int64_t)i * S + q] = rvq[(int64_t)g * n_stages + q];
    }
    d->n_groups += n_groups;
    d->n_frames += (int)T;
    d->recv_groups += n_groups;
    d->recv_frames += T;
    return SOTTO_OK;
}

/* The length given to a lost group of unknown length. */
static int mean_length(const sotto_decoder *d)
{
    if (!d->recv_groups)
        return DEFAULT_GROUP_LEN < d->fm->max_group_len ? DEFAULT_GROUP_LEN : d->fm->max_group_len;
    int64_t m = (d->recv_frames + d->recv_groups / 2) / d->recv_groups;
    if (m < 1) m = 1;
    if (m > d->fm->max_group_len) m = d->fm->max_group_len;
    return (int)m;
}

static void append_lost(sotto_decoder *d, int32_t length)
{
    const int i = d->n_groups++;
    d->len[i] = length;
    d->fsq[i] = 0;
    d->nst[i] = LOST;
    d->n_frames += length;
}

int sotto_decoder_conceal(sotto_decoder *d, int n_groups, const int32_t *lengths)
{
    if (!d) return SOTTO_ERR_INVALID_ARG;
    if (n_groups < 0) return fail(d, SOTTO_ERR_INVALID_ARG, "negative group count");
    if (d->flushed) return fail(d, SOTTO_ERR_STATE, "decoder was flushed: call reset first");
    const int m = mean_length(d);
    const int64_t T = lengths ? check_lengths(d, lengths, n_groups) : (int64_t)n_groups * m;
    if (T < 0) return (int)T;
    int rc = check_room(d, n_groups, T);
    if (rc) return rc;
    for (int g = 0; g < n_groups; g++)
        append_lost(d, lengths ? lengths[g] : m);
    return SOTTO_OK;
}

int sotto_decoder_conceal_frames(sotto_decoder *d, int n_frames)
{
    if (!d) return SOTTO_ERR_INVALID_ARG;
    if (n_frames < 0) return fail(d, SOTTO_ERR_INVALID_ARG, "negative frame count");
    if (d->flushed) return fail(d, SOTTO_ERR_STATE, "decoder was flushed: call reset first");
    const int m = mean_length(d);
    const int64_t groups = (n_frames + m - 1) / m;
    int rc = check_room(d, groups, n_frames);
    if (rc) return rc;
    for (int left = n_frames; left > 0; left -= m)
        append_lost(d, left < m ? left : m);
    return SOTTO_OK;
}

/* ---- decoding ---------------------------------------------------------------------------- */

/* FSQ codes of the concealed groups: linear between the nearest received groups around each
 * gap, held at the edges, zero when nothing was received. */
static void conceal_codes(sotto_decoder *d)
{
    const int G = d->n_groups, D = d->hp->n_levels;
    float *c = d->codes;
    for (int g = 0; g < G;) {
        if (d->nst[g] != LOST) {
            g++;
            continue;
        }
        int e = g;
        while (e < G && d->nst[e] == LOST)
            e++;
        const float *l = g > 0 ? c + (int64_t)(g - 1) * D : NULL;
        const float *r = e < G ? c + (int64_t)e * D : NULL;
        for (int k = g; k < e; k++) {
            const float t = (float)(k - g + 1) / (float)(e - g + 1);
            for (int j = 0; j < D; j++) {
                float v = 0.0f;
                if (l && r)
                    v = (1.0f - t) * l[j] + t * r[j];
                else if (l || r)
                    v = (l ? l : r)[j];
                c[(int64_t)k * D + j] = v;
            }
        }
        g = e;
    }
}

/* x[T][latent] of the whole utterance: semantic and acoustic branches, sum, expansion. */
static int group_stages(sotto_decoder *d)
{
    const flexicodec_decoder_weights *w = &d->fm->w;
    const int G = d->n_groups, lat = d->hp->latent_dim, S = d->stages;
    int rc;
    if ((rc = flexicodec_fsq_codes(d->hp, d->fsq, G, d->codes))) return rc;
    conceal_codes(d);
    if ((rc = flexicodec_fsq_project_out(&d->cpu, w, d->codes, G, d->sx)) ||
        (rc = flexicodec_convnext_decode(&d->cpu, w, d->sx, G, d->sem, d->scratch)))
        return rc;
    for (int g = 0; g < G;) {
        const int n = d->nst[g] == LOST ? 0 : d->nst[g];
        int e = g + 1;
        while (e < G && (d->nst[e] == LOST ? 0 : d->nst[e]) == n)
            e++;
        if ((rc = flexicodec_rvq_decode(&d->cpu, w, d->rvq + (int64_t)g * S, e - g, S, n,
                                        d->ac + (int64_t)g * lat, d->scratch)))
            return rc;
        g = e;
    }
    const int64_t n = (int64_t)G * lat;
    for (int64_t k = 0; k < n; k++)
        d->sem[k] += d->ac[k];
    const int64_t T = flexicodec_expand(d->sem, G, lat, d->len, d->lat);
    return T == d->n_frames ? SOTTO_OK : SOTTO_ERR_INTERNAL;
}

/* Transformer (in place on x[T][latent]) and DAC decoder into wave. */
static int64_t run_window(sotto_decoder *d, float *x, int64_t T, float *wave)
{
    int rc = flexicodec_bottleneck_forward(&d->cpu, &d->fm->bt, x, T, x, d->scratch);
    if (rc) return rc;
    return flexicodec_dac_decode(&d->cpu, &d->fm->w, x, T, wave, d->scratch);
}

/* Segmented decode of T > segment frames into out[N]. */
static int64_t run_segmented(sotto_decoder *d, float *out, int64_t N)
{
    const int64_t T = d->n_frames, H = d->hp->hop_length, F = H, half = F / 2;
    const int64_t seg = d->params.segment_frames, ov = d->params.overlap_frames;
    const int lat = d->hp->latent_dim;
    for (int64_t c0 = 0; c0 < T; c0 += seg) {
        const int64_t c1 = c0 + seg < T ? c0 + seg : T;
        const int64_t a = c0 - ov > 0 ? c0 - ov : 0, b = c1 + ov < T ? c1 + ov : T;
        int64_t got;
#ifdef SOTTO_HAVE_CUDA
        /* the utterance's latent is on the device (cuda_flush): the window's frames too */
        if (d->cu)
            got = flexicodec_cuda_decode_window(d->cu, a, (int)(b - a), d->wwave,
                                                flexicodec_dac_out_len(d->hp, b - a));
        else
#endif
        {
            memcpy(d->wx, d->lat + a * lat, sizeof(float) * (size_t)((b - a) * lat));
            got = run_window(d, d->wx, b - a, d->wwave);
        }
        if (got < 0) return got;
        if (got != flexicodec_dac_out_len(d->hp, b - a)) return SOTTO_ERR_INTERNAL;
        const int64_t lo = c0 ? c0 * H - half : 0, hi = c1 < T ? c1 * H + half : N;
        for (int64_t p = lo; p < hi; p++) {
            const float v = d->wwave[p - a * H];
            if (c0 && p < c0 * H + half) {
                const float t = ((float)(p - lo) + 0.5f) / (float)F;
                out[p] = (1.0f - t) * out[p] + t * v;
            } else {
                out[p] = v;
            }
        }
    }
    return N;
}

#ifdef SOTTO_HAVE_CUDA
/* A flush on the device: the codes go up once and every stage after packet parsing runs
 * there (flexicodec_cuda.h), in one pass or in the windows of run_segmented. */
static int64_t cuda_flush(sotto_decoder *d, float *out, int64_t N)
{
    const flexicodec_cuda_codes in = {.n_groups = d->n_groups,
                                      .lengths = d->len,
                                      .fsq = d->fsq,
                                      .rvq = d->rvq,
                                      .ldr = d->stages,
                                      .n_stages = d->nst};
    if (d->segmented && d->n_frames > d->params.segment_frames) {
        const int64_t T = flexicodec_cuda_latent_from_codes(d->cu, &in);
        if (T < 0) return T;
        if (T != d->n_frames) return SOTTO_ERR_INTERNAL;
        return run_segmented(d, out, N);
    }
    return flexicodec_cuda_decode_codes(d->cu, &in, out, N);
}
#endif

int sotto_decoder_flush(sotto_decoder *d, float *out, size_t capacity)
{
    if (!d) return SOTTO_ERR_INVALID_ARG;
    if (!out) return fail(d, SOTTO_ERR_INVALID_ARG, "NULL output buffer");
    if (d->flushed) return fail(d, SOTTO_ERR_STATE, "decoder was flushed: call reset first");
    const int64_t T = d->n_frames, N = flexicodec_dac_out_len(d->hp, T);
    if ((uint64_t)N > capacity)
        return fail(d, SOTTO_ERR_BUFFER_TOO_SMALL, "output needs %lld samples, capacity %zu",
                    (long long)N, capacity);
    int64_t got = 0;
    if (T > 0) {
#ifdef SOTTO_HAVE_CUDA
        if (d->cu)
            got = cuda_flush(d, out, N);
        else
#endif
        {
            int rc = group_stages(d);
            if (rc) return fail(d, rc, "decoding the groups failed (%s)", sotto_strerror(rc));
            if (d->segmented && T > d->params.segment_frames)
                got = run_segmented(d, out, N);
            else
                got = run_window(d, d->lat, T, out);
        }
#ifdef SOTTO_HAVE_CUDA
        if (got < 0 && d->cu)
            return fail(d, (int)got, "decoding on CUDA failed: %s",
                        flexicodec_cuda_last_error(d->cu));
#endif
        if (got < 0) return fail(d, (int)got, "decoding failed (%s)", sotto_strerror((int)got));
        if (got != N)
            return fail(d, SOTTO_ERR_INTERNAL, "decoded %lld samples, expected %lld",
                        (long long)got, (long long)N);
        for (int64_t i = 0; i < N; i++)
            if (!isfinite(out[i]))
                return fail(d, SOTTO_ERR_INTERNAL, "non-finite sample %lld", (long long)i);
    }
    d->flushed = 1;
    return (int)got;
}

/* ---- batch ------------------------------------------------------------------------------- */

int sotto_decoder_batch_gap_frames(const sotto_decoder *d)
{
#ifdef SOTTO_HAVE_CUDA
    if (d && d->cu) return flexicodec_cuda_batch_gap(d->cu);
#endif
    (void)d;
    return 0;
}

/* What is wrong with an item before it runs, with its message in d; else its frame count. */
static int64_t item_check(sotto_decoder *d, const sotto_decoder_item *it)
{
    if (!it->out) return fail(d, SOTTO_ERR_INVALID_ARG, "NULL output buffer");
    const int64_t T = check_codes(d, it->lengths, it->fsq, it->rvq, it->n_groups, it->n_stages, 0);
    if (T < 0) return T;
    if (it->n_groups > d->max_groups || T > d->max_frames)
        return fail(d, SOTTO_ERR_BUFFER_TOO_SMALL,
                    "%d groups of %lld frames exceed max_groups %d or max_frames %d", it->n_groups,
                    (long long)T, d->max_groups, d->max_frames);
    const int64_t N = flexicodec_dac_out_len(d->hp, T);
    if ((uint64_t)N > it->capacity)
        return fail(d, SOTTO_ERR_BUFFER_TOO_SMALL, "output needs %lld samples, capacity %zu",
                    (long long)N, it->capacity);
    return T;
}

/* The detail of item i's failure rc (in d->err) kept in *first when i is the lowest so far. */
static void note_failure(const sotto_decoder *d, int i, int rc, sotto_status *first, int *first_i)
{
    if (rc >= 0 || i >= *first_i) return;
    *first_i = i;
    *first = d->err;
    first->code = rc;
}

/* One item through the normal path from a reset: push, then flush. */
static int decode_one(sotto_decoder *d, const sotto_decoder_item *it)
{
    reset_state(d);
    const int rc = sotto_decoder_push(d, it->lengths, it->fsq, it->rvq, it->n_groups, it->n_stages);
    return rc ? rc : sotto_decoder_flush(d, it->out, it->capacity);
}

#ifdef SOTTO_HAVE_CUDA
/* The items idx[0..m) (T[j] frames each) as one batched forward on the device. */
static void run_group(sotto_decoder *d, sotto_decoder_item *items, const int *idx, const int *T,
                      int m, sotto_status *first, int *first_i)
{
    enum { B = FLEXICODEC_CUDA_BATCH_MAX };
    flexicodec_cuda_item ci[B] = {{0}};
    float *op[B] = {0};
    int64_t cp[B] = {0};
    if (m == 0) return;
    for (int j = 0; j < m; j++) {
        const sotto_decoder_item *it = &items[idx[j]];
        ci[j] =
            (flexicodec_cuda_item){.n_groups = it->n_groups,
                                   .lengths = it->lengths,
                                   .fsq = it->fsq,
                                   .rvq = it->rvq,
                                   .ldr = it->n_stages,
                                   .n_stages = it->n_stages < d->stages ? it->n_stages : d->stages};
        op[j] = it->out;
        cp[j] = it->capacity > (size_t)INT64_MAX ? INT64_MAX : (int64_t)it->capacity;
    }
    const int rc = flexicodec_cuda_decode_batch(d->cu, m, ci, op, cp);
    if (rc) fail(d, rc, "decoding on CUDA failed: %s", flexicodec_cuda_last_error(d->cu));
    for (int j = 0; j < m; j++) {
        items[idx[j]].result = rc ? rc : (int)flexicodec_dac_out_len(d->hp, T[j]);
        note_failure(d, idx[j], rc, first, first_i);
    }
}

/* The items on the device: greedy groups of consecutive items whose packed frames and groups
 * (gaps included) fit the context, at most FLEXICODEC_CUDA_BATCH_MAX each; an item that does
 * not fit alone, or that the decoder would segment, goes through the normal path. */
static void batch_cuda(sotto_decoder *d, sotto_decoder_item *items, int n, sotto_status *first,
                       int *first_i)
{
    const int64_t maxf = flexicodec_cuda_max_frames(d->cu);
    const int64_t maxg = flexicodec_cuda_max_groups(d->cu);
    const int64_t gap = flexicodec_cuda_batch_gap(d->cu);
    int idx[FLEXICODEC_CUDA_BATCH_MAX], fr[FLEXICODEC_CUDA_BATCH_MAX], m = 0;
    int64_t used_f = 0, used_g = 0;
    for (int i = 0; i < n; i++) {
        sotto_decoder_item *it = &items[i];
        if (it->result) continue;
        int64_t T = 0;
        for (int g = 0; g < it->n_groups; g++)
            T += it->lengths[g];
        if (T == 0) continue; /* an empty utterance: 0 samples, as a flush gives */
        if (T > maxf || it->n_groups > maxg || (d->segmented && T > d->params.segment_frames)) {
            it->result = decode_one(d, it);
            note_failure(d, i, it->result, first, first_i);
            continue;
        }
        if (m == FLEXICODEC_CUDA_BATCH_MAX || used_f + gap + T > maxf ||
            used_g + FLEXICODEC_CUDA_BATCH_GROUP_GAP + it->n_groups > maxg) {
            run_group(d, items, idx, fr, m, first, first_i);
            m = 0;
        }
        used_f = (m ? used_f + gap : 0) + T;
        used_g = (m ? used_g + FLEXICODEC_CUDA_BATCH_GROUP_GAP : 0) + it->n_groups;
        fr[m] = (int)T;
        idx[m++] = i;
    }
    run_group(d, items, idx, fr, m, first, first_i);
}
#endif

int sotto_decoder_decode_batch(sotto_decoder *d, sotto_decoder_item *items, int n)
{
    if (!d) return SOTTO_ERR_INVALID_ARG;
    if (n < 0 || (n > 0 && !items))
        return fail(d, SOTTO_ERR_INVALID_ARG, "bad item list (%d items at %s)", n,
                    items ? "an array" : "NULL");
    sotto_status first;
    sotto_status_clear(&first);
    int first_i = n;
    reset_state(d);
    for (int i = 0; i < n; i++) {
        const int64_t T = item_check(d, &items[i]);
        items[i].result = T < 0 ? (int)T : 0;
        note_failure(d, i, items[i].result, &first, &first_i);
    }
#ifdef SOTTO_HAVE_CUDA
    if (d->cu)
        batch_cuda(d, items, n, &first, &first_i);
    else
#endif
    {
        for (int i = 0; i < n; i++) {
            if (items[i].result) continue;
            items[i].result = decode_one(d, &items[i]);
            note_failure(d, i, items[i].result, &first, &first_i);
        }
    }
    reset_state(d);
    if (first_i < n) {
        fail(d, first.code, "batch item %d: %s", first_i, first.message);
        return first.code;
    }
    return SOTTO_OK;
}

/* ---- packets ----------------------------------------------------------------------------- */

int sotto_decoder_packet_max_groups(const sotto_decoder *d)
{
    return d && d->layout_ok ? d->layout.max_groups : 0;
}

size_t sotto_decoder_packet_max_bytes(const sotto_decoder *d)
{
    size_t b = 0;
    if (!d || !d->layout_ok ||
        sotto_packet_size(&d->layout, d->layout.max_groups, d->layout.max_stages, &b) != SOTTO_OK)
        return 0;
    return b;
}

int sotto_decoder_lost_packet_frames(const sotto_decoder *d)
{
    if (!d) return 0;
    if (!d->pk_received) return flexicodec_packet_span_frames(d->model);
    int64_t f = (d->pk_frames + d->pk_received / 2) / d->pk_received;
    return f < 1 ? 1 : (int)f;
}

int sotto_decoder_push_packet(sotto_decoder *d, const uint8_t *data, size_t size)
{
    if (!d) return SOTTO_ERR_INVALID_ARG;
    if (!d->layout_ok)
        return fail(d, SOTTO_ERR_UNSUPPORTED, "the model's codes do not fit the packet format");
    if (d->flushed) return fail(d, SOTTO_ERR_STATE, "decoder was flushed: call reset first");
    if (!data) return sotto_decoder_conceal_frames(d, sotto_decoder_lost_packet_frames(d));
    sotto_packet_info info;
    sotto_status ps;
    const int ldc = SOTTO_PACKET_MAX_STAGES;
    int rc = sotto_packet_unpack(&d->layout, data, size, d->pk_len, d->pk_sem, d->pk_ac,
                                 SOTTO_PACKET_FLEXICODEC_GROUPS, ldc, &info, &ps);
    if (rc) {
        /* more groups or stages than the layout allows: a malformed packet too */
        return fail(d, rc == SOTTO_ERR_BUFFER_TOO_SMALL ? SOTTO_ERR_FORMAT : rc, "%s", ps.message);
    }
    /* compact ac[g·ldc + s] to the push's rvq[g·n_stages + s] (in place: never overtakes) */
    const int S = info.n_stages;
    for (int g = 0; g < info.n_groups; g++)
        for (int q = 0; q < S; q++)
            d->pk_ac[g * S + q] = d->pk_ac[g * ldc + q];
    if ((rc = sotto_decoder_push(d, d->pk_len, d->pk_sem, d->pk_ac, info.n_groups, S))) return rc;
    if (info.n_groups > 0) {
        d->pk_received++;
        d->pk_frames += info.n_frames;
    }
    return SOTTO_OK;
}

int sotto_codec_pack_packet(const sotto_model *model, const int32_t *lengths, const int32_t *fsq,
                            const int32_t *rvq, int n_groups, int n_stages, uint8_t *out,
                            size_t capacity, size_t *written, sotto_status *st)
{
    sotto_status_clear(st);
    if (written) *written = 0;
    if (!model || !written)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL %s", !model ? "model" : "written");
    sotto_packet_layout l;
    int rc = flexicodec_model_layout(model, &l, st);
    if (rc) return rc;
    if (n_groups < 0 || n_groups > l.max_groups || n_stages < 0 || n_stages > l.max_stages)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "%d groups of %d stages: a packet holds 0..%d groups of 0..%d "
                                "stages",
                                n_groups, n_stages, l.max_groups, l.max_stages);
    if (!out) return sotto_packet_size(&l, n_groups, n_stages, written);
    return sotto_packet_pack(&l, n_groups, n_stages, lengths, fsq, rvq, n_stages, out, capacity,
                             written, st);
}
