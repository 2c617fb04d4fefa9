/*
 * The FlexiCodec encode path with SenseVoice and the DAC encoder on the CUDA layers
 * (flexicodec_cuda_enc.h). Load time converts the CPU loader's prepared weights back to
 * PyTorch layout and uploads them; a forward is a fixed sequence of cuda_ops.h layers on
 * buffers allocated at creation.
 *
 * DAC encoder buffers: the waveform sits in rows [3, 3 + L) of `wave` between zero rows (the
 * right ones also pad it to a multiple of hop, DAC.preprocess), so the first conv (k 7,
 * padding 3) reads it as it lies. The blocks run in three equal buffers whose roles rotate, as
 * the decoder's (flexicodec_cuda.c) and the CPU's (encode.c): X (the activation) in one; a
 * Snake writes into the middle of a zero-edged second one, so that a torch-padded conv is a
 * valid conv over it, and the conv writes into the third, which becomes X after a strided conv.
 * Each residual unit's 1×1 conv adds onto X in one accumulating GEMM. The buffers are sized
 * as the CPU's scratch (flexicodec_dac_encode_scratch / 3 each).
 *
 * The CPU stages between and after the device ones are the CPU's own functions, called as
 * flexicodec_encode_audio and flexicodec_encode_from_features_rc call them.
 *
 * Built only with the CUDA backend: sdk/CMakeLists.txt compiles every .c of the model folders
 * and defines SOTTO_HAVE_CUDA when the backend is built.
 */
#include "codecs/flexicodec/flexicodec_cuda_enc.h"

#ifdef SOTTO_HAVE_CUDA

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_ops.h"
#include "codecs/flexicodec/dac_cuda.h"
#include "encoders/sensevoice/sensevoice_cuda.h"

#define K_HALF (FLEXICODEC_DAC_K / 2) /* padding of the k 7 convs */
/* The pool holds at least every DAC conv's whole im2col matrix up to this size; a longer
 * input runs those convs in row blocks (cuda_ops.h, sotto_cuda_conv1d_scratch). */
#define CONV_SCRATCH_CAP ((size_t)256 << 20)

typedef struct fe_block {
    int c_in, c_out, stride, padding;
    flexicodec_cuda_res_unit ru[FLEXICODEC_RU_COUNT];
    float *alpha; /* [c_in] */
    sotto_cuda_conv1d_w down;
    float *down_b;
} fe_block;

/* One query-token aggregator (encode.h, flexicodec_aggregate) on the device. */
typedef struct fe_agg {
    const flexicodec_aggregator *src; /* the CPU aggregator it came from (identifies it) */
    int D, d, has_proj, n_layers;
    sotto_cuda_linear_w in_proj, out_proj; /* when has_proj */
    sotto_cuda_tlayer *layers;             /* [n_layers] */
} fe_agg;

/* The device weights, uploaded through their own context, which does nothing else. */
struct flexicodec_cuda_enc_weights {
    sotto_cuda *cu;
    int device;
    flexicodec_encoder_hparams hp;
    sensevoice_cuda_weights sv;
    sotto_cuda_conv1d_w dac_in;
    float *dac_in_b;
    fe_block *blocks; /* [n_rates] */
    float *dac_alpha;
    sotto_cuda_conv1d_w dac_out;
    float *dac_out_b;
    fe_agg agg[2]; /* semantic, acoustic */
};

struct flexicodec_cuda_enc {
    sotto_cuda *cu;
    const flexicodec_cuda_enc_weights *wt; /* read only */
    int64_t max_samples, max_lfr, max_frames;
    sensevoice_cuda *sv;
    float *wave;   /* [max_frames·hop + 2·K_HALF] */
    float *buf[3]; /* buf_floats each */
    size_t buf_floats;
    float *agg_buf[2]; /* aggregators: 2·max_frames rows of agg_width floats each */
    char msg[256];     /* what the last failed call found */
};

/* ---- weights ------------------------------------------------------------------------------ */

static int device_status(sotto_cuda *cu, int rc, const char *what, sotto_status *st)
{
    const char *m = cu ? sotto_cuda_error_message(cu) : "";
    return sotto_status_set(st, rc, "flexicodec cuda encoder: %s: %s", what,
                            m[0] ? m : sotto_strerror(rc));
}

static int dev_vec(sotto_cuda *cu, const float *h, int n, float **d, sotto_status *st)
{
    if (!h)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "flexicodec cuda encoder: vector "
                                "missing");
    int rc = sotto_cuda_alloc(cu, sizeof(float) * (size_t)n, (void **)d);
    if (!rc) rc = sotto_cuda_upload(cu, *d, h, sizeof(float) * (size_t)n);
    return rc ? device_status(cu, rc, "upload", st) : SOTTO_OK;
}

static int upload_weights(flexicodec_cuda_enc_weights *c, const flexicodec_encoder_weights *w,
                          sotto_status *st)
{
    sotto_cuda *cu = c->cu;
    const flexicodec_encoder_hparams *hp = &w->hp;
    int rc;
    if ((rc = sotto_cuda_conv1d_w_from_cpu(cu, &c->dac_in, &w->dac_in, st)) ||
        (rc = dev_vec(cu, w->dac_in_b, hp->encoder_dim, &c->dac_in_b, st)))
        return rc;
    for (int i = 0; i < hp->n_rates; i++) {
        const flexicodec_enc_block *s = &w->blocks[i];
        fe_block *b = &c->blocks[i];
        b->c_in = s->c_in;
        b->c_out = s->c_out;
        b->stride = s->stride;
        b->padding = s->padding;
        for (int j = 0; j < FLEXICODEC_RU_COUNT; j++)
            if ((rc = flexicodec_cuda_res_unit_upload(cu, &s->ru[j], s->c_in, &b->ru[j], st)))
                return rc;
        if ((rc = dev_vec(cu, s->alpha, s->c_in, &b->alpha, st)) ||
            (rc = sotto_cuda_conv1d_w_from_cpu(cu, &b->down, &s->down, st)) ||
            (rc = dev_vec(cu, s->down_b, s->c_out, &b->down_b, st)))
            return rc;
        if (b->down.c_in != s->c_in || b->down.c_out != s->c_out || b->down.k != 2 * s->stride ||
            b->down.stride != s->stride || b->down.dilation != 1 || b->down.groups != 1 ||
            2 * b->padding < b->stride)
            return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                    "flexicodec cuda encoder: block %d's strided conv does not "
                                    "match its geometry",
                                    i);
    }
    const int c_last = hp->encoder_dim << hp->n_rates;
    if ((rc = dev_vec(cu, w->dac_alpha, c_last, &c->dac_alpha, st)) ||
        (rc = sotto_cuda_conv1d_w_from_cpu(cu, &c->dac_out, &w->dac_out, st)) ||
        (rc = dev_vec(cu, w->dac_out_b, hp->latent_dim, &c->dac_out_b, st)))
        return rc;
    if (c->dac_in.c_in != 1 || c->dac_in.k != FLEXICODEC_DAC_K || c->dac_in.stride != 1 ||
        c->dac_in.dilation != 1 || c->dac_out.c_in != c_last || c->dac_out.k != 3 ||
        c->dac_out.c_out != hp->latent_dim || c->dac_out.stride != 1 || c->dac_out.dilation != 1)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "flexicodec cuda encoder: the DAC encoder's first or last conv "
                                "does not match the hyperparameters");
    return SOTTO_OK;
}

static int upload_agg(sotto_cuda *cu, const flexicodec_aggregator *a, fe_agg *f, sotto_status *st)
{
    f->src = a;
    f->D = a->in_out_dim;
    f->d = a->dim;
    f->has_proj = a->has_proj;
    f->n_layers = a->stack.cfg.n_layers;
    if (f->n_layers < 0 || (f->n_layers > 0 && !a->stack.layers) || (!f->has_proj && f->D != f->d))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "flexicodec cuda encoder: an aggregator is not loaded");
    if (!(f->layers = calloc((size_t)(f->n_layers ? f->n_layers : 1), sizeof *f->layers)))
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    int rc;
    if (f->has_proj && ((rc = sotto_cuda_linear_w_from_cpu(cu, &f->in_proj, &a->in_proj, st)) ||
                        (rc = sotto_cuda_linear_w_from_cpu(cu, &f->out_proj, &a->out_proj, st))))
        return rc;
    for (int i = 0; i < f->n_layers; i++)
        if ((rc = sotto_cuda_tlayer_init(cu, &f->layers[i], &a->stack.layers[i], st))) return rc;
    return SOTTO_OK;
}

static void free_agg(sotto_cuda *cu, fe_agg *f)
{
    for (int i = 0; f->layers && i < f->n_layers; i++)
        sotto_cuda_tlayer_free(cu, &f->layers[i]);
    free(f->layers);
    if (f->has_proj) {
        sotto_cuda_linear_w_free(cu, &f->in_proj);
        sotto_cuda_linear_w_free(cu, &f->out_proj);
    }
}

void flexicodec_cuda_enc_weights_free(flexicodec_cuda_enc_weights *c)
{
    if (!c) return;
    sotto_cuda *cu = c->cu;
    if (cu) {
        sensevoice_cuda_weights_free(cu, &c->sv);
        sotto_cuda_conv1d_w_free(cu, &c->dac_in);
        sotto_cuda_free(cu, c->dac_in_b);
        for (int i = 0; c->blocks && i < c->hp.n_rates; i++) {
            fe_block *b = &c->blocks[i];
            for (int j = 0; j < FLEXICODEC_RU_COUNT; j++)
                flexicodec_cuda_res_unit_free(cu, &b->ru[j]);
            sotto_cuda_free(cu, b->alpha);
            sotto_cuda_conv1d_w_free(cu, &b->down);
            sotto_cuda_free(cu, b->down_b);
        }
        sotto_cuda_free(cu, c->dac_alpha);
        sotto_cuda_conv1d_w_free(cu, &c->dac_out);
        sotto_cuda_free(cu, c->dac_out_b);
        for (int i = 0; i < 2; i++)
            free_agg(cu, &c->agg[i]);
        sotto_cuda_destroy(cu);
    }
    free(c->blocks);
    free(c);
}

int flexicodec_cuda_enc_weights_create(const flexicodec_encoder_weights *w, const sensevoice *sv,
                                       int device, flexicodec_cuda_enc_weights **out,
                                       sotto_status *st)
{
    if (!out)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "flexicodec cuda encoder: out is NULL");
    *out = NULL;
    if (!w || !sv || device < 0)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "flexicodec cuda encoder: NULL weights or device %d out of range",
                                device);
    const flexicodec_encoder_hparams *hp = &w->hp;
    if (!w->blocks || hp->n_rates < 1 || hp->n_rates > FLEXICODEC_MAX_ENC_RATES ||
        hp->hop_length < 1 || !sv->blocks || sv->cfg.dim != hp->ssl_dim)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "flexicodec cuda encoder: weights not loaded, or a SenseVoice "
                                "width (%d) other than the semantic width (%d)",
                                sv->cfg.dim, hp->ssl_dim);
    flexicodec_cuda_enc_weights *c = calloc(1, sizeof *c);
    if (!c || !(c->blocks = calloc((size_t)hp->n_rates, sizeof *c->blocks))) {
        free(c);
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    }
    c->hp = *hp;
    c->device = device;
    int rc;
    if ((rc = sotto_cuda_create(&c->cu, device, 0, st)) || (rc = upload_weights(c, w, st)) ||
        (rc = sensevoice_cuda_weights_init(c->cu, &c->sv, sv, st)) ||
        (rc = upload_agg(c->cu, &w->sem_agg, &c->agg[0], st)) ||
        (rc = upload_agg(c->cu, &w->ac_agg, &c->agg[1], st))) {
        flexicodec_cuda_enc_weights_free(c);
        return rc;
    }
    *out = c;
    return SOTTO_OK;
}

/* ---- contexts ----------------------------------------------------------------------------- */

static size_t max_sz(size_t a, size_t b)
{
    return a > b ? a : b;
}

/* Pool bytes for an utterance of T frames (T·hop samples) and T_lfr LFR frames: the largest
 * im2col matrix of the DAC convs (capped: beyond the cap they run in row blocks) or the
 * SenseVoice attention scores, whichever is larger (the two never hold scratch at once). */
static size_t pool_bytes(const flexicodec_cuda_enc_weights *wt, int64_t T, int64_t T_lfr)
{
    const flexicodec_encoder_hparams *hp = &wt->hp;
    int64_t L = T * hp->hop_length;
    size_t conv = sotto_cuda_conv1d_scratch(&wt->dac_in, L + 2 * K_HALF);
    for (int i = 0; i < hp->n_rates; i++) {
        const fe_block *b = &wt->blocks[i];
        for (int j = 0; j < FLEXICODEC_RU_COUNT; j++)
            conv = max_sz(conv, sotto_cuda_conv1d_scratch(&b->ru[j].conv7,
                                                          L + 6 * (int64_t)b->ru[j].dilation));
        conv = max_sz(conv, sotto_cuda_conv1d_scratch(&b->down, L + 2 * b->padding));
        L /= b->stride;
    }
    conv = max_sz(conv, sotto_cuda_conv1d_scratch(&wt->dac_out, L + 2));
    if (conv > CONV_SCRATCH_CAP) conv = CONV_SCRATCH_CAP;
    /* an aggregator's transformer sees T frames and at most T queries */
    for (int i = 0; i < 2; i++)
        if (wt->agg[i].n_layers > 0)
            conv = max_sz(conv, sotto_cuda_tlayer_scratch(&wt->agg[i].layers[0], 2 * T));
    return max_sz(conv, sensevoice_cuda_scratch(&wt->sv, T_lfr)) + 4096;
}

/* Widest row either aggregator holds (its input/output or its transformer width). */
static int agg_width(const flexicodec_cuda_enc_weights *wt)
{
    int w = 1;
    for (int i = 0; i < 2; i++) {
        if (wt->agg[i].D > w) w = wt->agg[i].D;
        if (wt->agg[i].d > w) w = wt->agg[i].d;
    }
    return w;
}

void flexicodec_cuda_enc_free(flexicodec_cuda_enc *c)
{
    if (!c) return;
    sotto_cuda *cu = c->cu;
    if (cu) {
        sensevoice_cuda_free(cu, c->sv);
        float *bufs[] = {c->wave, c->buf[0], c->buf[1], c->buf[2], c->agg_buf[0], c->agg_buf[1]};
        for (size_t i = 0; i < SOTTO_ARRAY_LEN(bufs); i++)
            sotto_cuda_free(cu, bufs[i]);
        sotto_cuda_destroy(cu);
    }
    free(c);
}

int flexicodec_cuda_enc_create(const flexicodec_cuda_enc_weights *wt, int64_t max_samples,
                               int64_t max_lfr, flexicodec_cuda_enc **out, sotto_status *st)
{
    if (!out)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "flexicodec cuda encoder: out is NULL");
    *out = NULL;
    if (!wt || max_samples < 1 || max_lfr < 1)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "flexicodec cuda encoder: NULL weights, or max_samples %lld / "
                                "max_lfr %lld below 1",
                                (long long)max_samples, (long long)max_lfr);
    const flexicodec_encoder_hparams *hp = &wt->hp;
    flexicodec_cuda_enc *c = calloc(1, sizeof *c);
    if (!c) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    c->wt = wt;
    c->max_samples = max_samples;
    c->max_lfr = max_lfr;
    c->max_frames = flexicodec_dac_encode_frames(hp, max_samples);
    /* the last conv writes the latent into one of the three buffers too */
    c->buf_floats = max_sz(flexicodec_dac_encode_scratch(hp, max_samples) / 3,
                           (size_t)c->max_frames * (size_t)hp->latent_dim);
    const size_t wave_floats = (size_t)(c->max_frames * hp->hop_length) + 2 * K_HALF;
    int rc;
    if ((rc = sotto_cuda_create(&c->cu, wt->device, pool_bytes(wt, c->max_frames, max_lfr), st)))
        goto fail;
    if ((rc = sotto_cuda_alloc(c->cu, sizeof(float) * wave_floats, (void **)&c->wave))) {
        device_status(c->cu, rc, "buffer", st);
        goto fail;
    }
    for (int i = 0; i < 3; i++)
        if ((rc = sotto_cuda_alloc(c->cu, sizeof(float) * c->buf_floats, (void **)&c->buf[i]))) {
            device_status(c->cu, rc, "buffer", st);
            goto fail;
        }
    const size_t agg_floats = (size_t)(2 * c->max_frames) * (size_t)agg_width(wt);
    for (int i = 0; i < 2; i++)
        if ((rc = sotto_cuda_alloc(c->cu, sizeof(float) * (agg_floats ? agg_floats : 1),
                                   (void **)&c->agg_buf[i]))) {
            device_status(c->cu, rc, "buffer", st);
            goto fail;
        }
    if ((rc = sensevoice_cuda_create(c->cu, &wt->sv, max_lfr, &c->sv, st))) goto fail;
    *out = c;
    return SOTTO_OK;
fail:
    flexicodec_cuda_enc_free(c);
    return rc;
}

const char *flexicodec_cuda_enc_last_error(const flexicodec_cuda_enc *c)
{
    return c ? c->msg : "";
}

/* ---- forward ------------------------------------------------------------------------------ */

static int64_t fail_msg(flexicodec_cuda_enc *c, int code, const char *msg)
{
    snprintf(c->msg, sizeof c->msg, "flexicodec cuda encoder: %s", msg);
    return code;
}

/* A layer call returned r: the context's error (with its message) when it failed, else a
 * layer refused the arguments this file sized, or produced the wrong frame count. */
static int64_t layer_failed(flexicodec_cuda_enc *c, int64_t r, const char *layer)
{
    const int err = sotto_cuda_error(c->cu);
    if (err) {
        snprintf(c->msg, sizeof c->msg, "flexicodec cuda encoder: %s: %s", layer,
                 sotto_cuda_error_message(c->cu));
        return err;
    }
    snprintf(c->msg, sizeof c->msg, "flexicodec cuda encoder: internal error: %s returned %lld",
             layer, (long long)r);
    return r < 0 ? r : SOTTO_ERR_INTERNAL;
}

int flexicodec_cuda_enc_sensevoice(flexicodec_cuda_enc *c, const sensevoice *sv,
                                   const float *x_host, int64_t T_lfr, float *y_host)
{
    if (!c) return SOTTO_ERR_INVALID_ARG;
    c->msg[0] = '\0';
    if (!sv || !x_host || !y_host || T_lfr < 1 || T_lfr > c->max_lfr)
        return (int)fail_msg(c, SOTTO_ERR_INVALID_ARG,
                             "SenseVoice: NULL buffer or frame count outside 1..max_lfr");
    int rc = sotto_cuda_error(c->cu);
    if (rc) return (int)layer_failed(c, rc, "context");
    sotto_cuda_scratch_reset(c->cu);
    rc = sensevoice_cuda_encode(c->cu, &c->wt->sv, c->sv, sv, NULL, x_host, T_lfr, y_host);
    if (rc == SOTTO_ERR_INTERNAL && !sotto_cuda_error(c->cu))
        return (int)fail_msg(c, rc, "SenseVoice: non-finite output");
    return rc ? (int)layer_failed(c, rc, "SenseVoice") : SOTTO_OK;
}

/* X[L][C] (in buffer ix) += the residual unit, its conv7 input and output in the two free
 * buffers (dac_cuda.h). */
static int64_t res_unit(flexicodec_cuda_enc *c, const flexicodec_cuda_res_unit *u, float *X, int ix,
                        int64_t L, int C)
{
    const char *what = "";
    const int64_t r = flexicodec_cuda_res_unit_run(c->cu, u, X, c->buf[(ix + 1) % 3],
                                                   c->buf[(ix + 2) % 3], L, C, &what);
    return r ? layer_failed(c, r, what) : SOTTO_OK;
}

/* Snake(X[L][C]) into rows [pad, pad + L) of `dst`, with pad zero rows on each side. */
static int64_t snake_padded(flexicodec_cuda_enc *c, const float *X, int64_t L, int C,
                            const float *alpha, int pad, float *dst)
{
    const size_t edge = sizeof(float) * (size_t)pad * (size_t)C;
    int64_t r;
    if ((r = sotto_cuda_memset0(c->cu, dst, edge)) ||
        (r = sotto_cuda_memset0(c->cu, dst + (pad + L) * C, edge)) ||
        (r = sotto_cuda_snake(c->cu, X, L, C, alpha, dst + (int64_t)pad * C)))
        return layer_failed(c, r, "Snake");
    return SOTTO_OK;
}

int64_t flexicodec_cuda_enc_dac(flexicodec_cuda_enc *c, const float *wave, int64_t n, float *z_host)
{
    if (!c) return SOTTO_ERR_INVALID_ARG;
    c->msg[0] = '\0';
    if (!wave || !z_host || n < 1 || n > c->max_samples)
        return fail_msg(c, SOTTO_ERR_INVALID_ARG,
                        "DAC encoder: NULL buffer or sample count outside 1..max_samples");
    sotto_cuda *cu = c->cu;
    const flexicodec_cuda_enc_weights *wt = c->wt;
    const flexicodec_encoder_hparams *hp = &wt->hp;
    const int64_t T = flexicodec_dac_encode_frames(hp, n);
    int64_t L = T * hp->hop_length, r = sotto_cuda_error(cu);
    if (r) return layer_failed(c, r, "context");
    sotto_cuda_scratch_reset(cu);

    /* the waveform between K_HALF zero rows on the left and zeros up to L + K_HALF after it */
    if ((r = sotto_cuda_memset0(cu, c->wave, sizeof(float) * (size_t)(L + 2 * K_HALF))) ||
        (r = sotto_cuda_upload(cu, c->wave + K_HALF, wave, sizeof(float) * (size_t)n)))
        return layer_failed(c, r, "waveform upload");
    int ix = 0;
    float *X = c->buf[0];
    if ((r = sotto_cuda_conv1d(cu, &wt->dac_in, wt->dac_in_b, c->wave, L + 2 * K_HALF, X)) != L)
        return layer_failed(c, r, "DAC input conv");
    for (int i = 0; i < hp->n_rates; i++) {
        const fe_block *b = &wt->blocks[i];
        for (int j = 0; j < FLEXICODEC_RU_COUNT; j++)
            if ((r = res_unit(c, &b->ru[j], X, ix, L, b->c_in))) return r;
        float *A = c->buf[(ix + 1) % 3];
        const int ib = (ix + 2) % 3;
        if ((r = snake_padded(c, X, L, b->c_in, b->alpha, b->padding, A))) return r;
        const int64_t out = L / b->stride;
        if ((r = sotto_cuda_conv1d(cu, &b->down, b->down_b, A, L + 2 * b->padding, c->buf[ib])) !=
            out)
            return layer_failed(c, r, "strided conv");
        ix = ib;
        X = c->buf[ib];
        L = out;
    }
    if (L != T) return fail_msg(c, SOTTO_ERR_INTERNAL, "DAC encoder: frame count");
    const int c_last = hp->encoder_dim << hp->n_rates;
    float *A = c->buf[(ix + 1) % 3], *z = c->buf[(ix + 2) % 3];
    if ((r = snake_padded(c, X, L, c_last, wt->dac_alpha, 1, A))) return r;
    if ((r = sotto_cuda_conv1d(cu, &wt->dac_out, wt->dac_out_b, A, L + 2, z)) != T)
        return layer_failed(c, r, "DAC output conv");
    const size_t nz = (size_t)T * (size_t)hp->latent_dim;
    if ((r = sotto_cuda_download(cu, z_host, z, sizeof(float) * nz)))
        return layer_failed(c, r, "latent download");
    for (size_t i = 0; i < nz; i++)
        if (!isfinite(z_host[i]))
            return fail_msg(c, SOTTO_ERR_INTERNAL, "DAC encoder: non-finite output");
    return T;
}

int flexicodec_cuda_enc_aggregate(flexicodec_cuda_enc *c, const flexicodec_aggregator *a,
                                  const float *x, int64_t T, const int32_t *lengths, int64_t G,
                                  float *y, float *scratch)
{
    if (!c) return SOTTO_ERR_INVALID_ARG;
    c->msg[0] = '\0';
    const fe_agg *f = a == c->wt->agg[0].src   ? &c->wt->agg[0]
                      : a == c->wt->agg[1].src ? &c->wt->agg[1]
                                               : NULL;
    if (!f || T < 0 || G < 0 || T > c->max_frames || G > T ||
        (G && (!x || !lengths || !y || !scratch)))
        return (int)fail_msg(c, SOTTO_ERR_INVALID_ARG,
                             "aggregator: unknown aggregator, NULL buffer or size out of range");
    if (G == 0) return T == 0 ? SOTTO_OK : SOTTO_ERR_INVALID_ARG;
    /* the interleaved sequence is built on the host by the CPU's own code */
    int rc = flexicodec_aggregate_sequence(a, x, T, lengths, G, scratch);
    if (rc) return (int)fail_msg(c, rc, "aggregator: group lengths do not add up");
    sotto_cuda *cu = c->cu;
    if ((rc = sotto_cuda_error(cu))) return (int)layer_failed(c, rc, "context");
    sotto_cuda_scratch_reset(cu);
    const int64_t S = T + G;
    float *seq = c->agg_buf[0], *h = seq, *out = seq;
    if ((rc = sotto_cuda_upload(cu, seq, scratch, sizeof(float) * (size_t)(S * f->D))))
        return (int)layer_failed(c, rc, "aggregator upload");
    if (f->has_proj) {
        h = c->agg_buf[1];
        if ((rc = sotto_cuda_linear(cu, &f->in_proj, NULL, seq, S, h)))
            return (int)layer_failed(c, rc, "aggregator input projection");
    }
    for (int i = 0; i < f->n_layers; i++)
        if ((rc = sotto_cuda_tlayer_forward(cu, &f->layers[i], h, S, 0, h)))
            return (int)layer_failed(c, rc, "aggregator transformer");
    out = h;
    if (f->has_proj) {
        /* every row through output_projs.0 (rows are independent; only the queries are kept) */
        out = seq;
        if ((rc = sotto_cuda_linear(cu, &f->out_proj, NULL, h, S, out)))
            return (int)layer_failed(c, rc, "aggregator output projection");
    }
    if ((rc = sotto_cuda_download(cu, scratch, out, sizeof(float) * (size_t)(S * f->D))))
        return (int)layer_failed(c, rc, "aggregator download");
    int64_t row = 0;
    for (int64_t g = 0; g < G; g++) {
        row += lengths[g];
        memcpy(y + g * f->D, scratch + row * f->D, sizeof(float) * (size_t)f->D);
        row++;
    }
    for (int64_t i = 0; i < G * f->D; i++)
        if (!isfinite(y[i]))
            return (int)fail_msg(c, SOTTO_ERR_INTERNAL, "aggregator: non-finite output");
    return SOTTO_OK;
}

static int device_aggregate(void *ctx, const flexicodec_aggregator *a, const float *x, int64_t T,
                            const int32_t *lengths, int64_t G, float *y, float *scratch)
{
    return flexicodec_cuda_enc_aggregate(ctx, a, x, T, lengths, G, y, scratch);
}

/* ---- the whole encode --------------------------------------------------------------------- */

/* Host buffers of one encode of n samples (floats): the semantic features, the acoustic
 * frames, then one region used first by the semantic stream (fbank, LFR, SenseVoice output)
 * and afterwards as flexicodec_encode_streams' scratch. */
typedef struct host_sizes {
    flexicodec_semantic_size sem;
    int64_t T_ac, T;
    size_t ac, region;
} host_sizes;

static int get_sizes(const flexicodec_decoder_weights *dw, const flexicodec_encoder_weights *w,
                     const sensevoice *sv, const sotto_fbank *fb, int64_t n, host_sizes *z)
{
    if (!dw || flexicodec_semantic_sizes(w, sv, fb, n, &z->sem)) return SOTTO_ERR_INVALID_ARG;
    z->T_ac = flexicodec_dac_encode_frames(&w->hp, n);
    if (z->T_ac < 0) return SOTTO_ERR_INVALID_ARG;
    z->T = z->T_ac < z->sem.T_sem ? z->T_ac : z->sem.T_sem;
    const size_t T = (size_t)z->T, lat = (size_t)w->hp.latent_dim, ssl = (size_t)w->hp.ssl_dim;
    z->ac = (size_t)z->T_ac * lat;
    size_t s = flexicodec_aggregate_scratch(&w->sem_agg, z->T, z->T);
    s = max_sz(s, flexicodec_aggregate_scratch(&w->ac_agg, z->T, z->T));
    s = max_sz(s, flexicodec_semantic_encode_scratch(&w->hp, z->T));
    s = max_sz(s, flexicodec_semantic_scratch(&dw->hp, z->T));
    s = max_sz(s, flexicodec_rvq_encode_scratch(w, z->T));
    /* the semantic and acoustic aggregates and the semantic decode, then the stages' own */
    z->region = max_sz(z->sem.fb + z->sem.lfr + z->sem.svo, T * (ssl + 2 * lat) + s + 1);
    return SOTTO_OK;
}

size_t flexicodec_cuda_enc_audio_scratch(const flexicodec_decoder_weights *dw,
                                         const flexicodec_encoder_weights *w, const sensevoice *sv,
                                         const sotto_fbank *fb, int64_t n)
{
    host_sizes z;
    if (get_sizes(dw, w, sv, fb, n, &z)) return 0;
    return z.sem.feat + z.ac + z.region + 4;
}

static int device_sensevoice(void *ctx, const sensevoice *sv, const float *x, int64_t T_lfr,
                             float *y, float *scratch)
{
    (void)scratch;
    return flexicodec_cuda_enc_sensevoice(ctx, sv, x, T_lfr, y);
}

int64_t flexicodec_cuda_enc_audio(flexicodec_cuda_enc *c, const sotto_cpu *cpu,
                                  const flexicodec_decoder_weights *dw,
                                  const flexicodec_encoder_weights *w, const sensevoice *sv,
                                  sotto_fbank *fb, const float *wave, int64_t n, float threshold,
                                  flexicodec_rate_ctl *rate, int n_q, int32_t *lengths,
                                  int32_t *fsq, int32_t *rvq, float *scratch)
{
    host_sizes z;
    int64_t rc;
    if (!c) return SOTTO_ERR_INVALID_ARG;
    c->msg[0] = '\0'; /* from here on, a message names a device failure of this call */
    if (!cpu || !scratch || (n && !wave) || n > c->max_samples || isnan(threshold) ||
        get_sizes(dw, w, sv, fb, n, &z) || n_q < 0 || n_q > w->hp.n_codebooks)
        return SOTTO_ERR_INVALID_ARG;
    float *feat = scratch;
    float *ac = feat + z.sem.feat;
    float *region = ac + z.ac;

    /* semantic stream: fbank, LFR + CMVN and downsampling on the CPU, SenseVoice on the device,
     * through the CPU encoder's own function */
    rc = flexicodec_semantic_features(cpu, w, sv, fb, wave, n, feat, region, device_sensevoice, c);
    if (rc < 0) return rc;
    const int64_t T = z.T;
    if (T == 0) return 0;
    if (!lengths || !fsq || (n_q && !rvq)) return SOTTO_ERR_INVALID_ARG;

    /* acoustic stream: the DAC encoder (device); both streams truncated to T frames */
    rc = flexicodec_cuda_enc_dac(c, wave, n, ac);
    if (rc != z.T_ac) return rc < 0 ? rc : SOTTO_ERR_INTERNAL;

    /* the rest as flexicodec_encode_from_features_rc runs it: the aggregators on the device,
     * merging and the quantizers on the CPU */
    return flexicodec_encode_streams(cpu, dw, w, feat, ac, T, threshold, rate, n_q, lengths, fsq,
                                     rvq, region, device_aggregate, c);
}

#endif /* SOTTO_HAVE_CUDA */
