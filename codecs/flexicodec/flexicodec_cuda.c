/*
 * The offline FlexiCodec decode forward on the CUDA layer library (flexicodec_cuda.h). Load
 * time converts the CPU loader's prepared weights back to PyTorch layout and uploads them; the
 * forward is a fixed sequence of cuda_ops.h layers on buffers allocated at creation.
 *
 * Buffers: the latent sits in rows [3, 3 + T) of `lat` between 3 zero frames on each side, so
 * the transformer runs in place on those rows and the DAC's first conv (k 7, padding 3) then
 * reads the padded sequence as it lies. The DAC decoder runs in three equal buffers whose
 * roles rotate: X (the current activation) lives in one; a Snake writes into a second (for a
 * residual unit's dilated conv, between 3·d zero rows, so the "same" conv is a valid conv
 * over it) and the conv writes into the third. A transposed conv writes its full output
 * (L·s + s rows) into a free buffer, and X then points past torch's padding into it: the
 * crop costs no copy. Each residual unit's 1×1 conv adds onto X in one accumulating GEMM.
 *
 * CUDA graphs: everything between the upload of the latent and the download of the samples
 * (enqueue_forward) only enqueues work on fixed buffers, with addresses and sizes that depend
 * on T alone (the scratch pool is reset at its start), so it can be captured once per T and
 * replayed. A T is captured at its second call, never its first: one-off lengths (a one-pass
 * flush of each utterance) are not captured for nothing, and every kernel the decode uses,
 * cuBLAS's included, has run (and been loaded) before a capture. The context never allows
 * TF32, so T is the whole key.
 *
 * Built only with the CUDA backend: sdk/CMakeLists.txt compiles every .c of the model folders
 * and defines SOTTO_HAVE_CUDA when the backend is built.
 */
#include "codecs/flexicodec/flexicodec_cuda.h"

#ifdef SOTTO_HAVE_CUDA

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_graph.h"
#include "backend/cuda/cuda_ops.h"

#define MAX_FRAMES (1 << 16)
#define K_HALF (FLEXICODEC_DAC_K / 2) /* padding of the k 7 convs */
/* The pool holds at least every DAC conv's whole im2col matrix up to this size; a longer
 * input runs those convs in row blocks (cuda_ops.h, sotto_cuda_conv1d_scratch). */
#define CONV_SCRATCH_CAP ((size_t)256 << 20)
/* Graphs a context keeps, one per frame count: a segmented decode's first, middle and last
 * windows and one more length all stay captured. */
#define GRAPH_SLOTS 4
/* Frame counts remembered as run directly once, so that their next call captures. */
#define SEEN_SLOTS 4

typedef struct fc_res_unit {
    int dilation;
    float *alpha1, *alpha2; /* device [C] */
    sotto_cuda_conv1d_w conv7;
    float *conv7_b;
    sotto_cuda_linear_w conv1;
    float *conv1_b;
} fc_res_unit;

typedef struct fc_block {
    int c_in, c_out, stride, padding;
    float *alpha; /* [c_in] */
    sotto_cuda_convtr1d_w up;
    float *up_b;
    fc_res_unit ru[FLEXICODEC_RU_COUNT];
} fc_block;

/* A model's decoder weights on the device (flexicodec_cuda_weights_create): uploaded once
 * through their own context, which does nothing else; every flexicodec_cuda made on them
 * reads them from its own stream. */
struct flexicodec_cuda_weights {
    sotto_cuda *cu;
    int device;
    flexicodec_hparams hp;
    int n_layers;
    sotto_cuda_tlayer *layers; /* [n_layers] */
    sotto_cuda_conv1d_w dac_in;
    float *dac_in_b;
    fc_block *blocks; /* [n_rates] */
    float *dac_alpha;
    sotto_cuda_conv1d_w dac_out;
    float *dac_out_b;
};

struct flexicodec_cuda {
    sotto_cuda *cu;
    flexicodec_hparams hp;
    const flexicodec_cuda_weights *wt; /* read only */
    flexicodec_cuda_weights *own;      /* wt, when flexicodec_cuda_create made it */
    int max_frames;
    /* activations (device) */
    float *lat;    /* [(max_frames + 6)][latent_dim], zero frames around the latent */
    float *buf[3]; /* buf_floats each */
    size_t buf_floats;
    /* CUDA graphs, used with use_graph: graph[i] holds the decode of one frame count (its key)
     * and leaves its samples at wave[i]; the least recently used is replaced first. */
    int use_graph;
    sotto_cuda_graph *graph[GRAPH_SLOTS];
    float *wave[GRAPH_SLOTS];
    int64_t used[GRAPH_SLOTS]; /* call number of the slot's last replay (0: free) */
    int seen[SEEN_SLOTS];      /* frame counts run directly once and not captured since */
    int seen_next;             /* the entry of seen replaced next */
    int64_t calls, captures, launches;
    char msg[256]; /* what the last failed call found */
};

/* ---- sizes -------------------------------------------------------------------------------- */

/* Output length of one decoder block: ConvTranspose1d k 2s, stride s, padding ceil(s/2). */
static int64_t block_out_len(int64_t L, int s)
{
    return L * s + s - 2 * ((s + 1) / 2);
}

static int max_dilation(const flexicodec_hparams *hp)
{
    int d = 1;
    for (int j = 0; j < FLEXICODEC_RU_COUNT; j++)
        if (hp->dilations[j] > d) d = hp->dilations[j];
    return d;
}

static void upd(int64_t *m, int64_t v)
{
    if (v > *m) *m = v;
}

/* Floats of each DAC buffer for T frames: every stage's input, Snake output, transposed-conv
 * output, padded residual-unit input and conv output. */
static int64_t dac_buf_floats(const flexicodec_hparams *hp, int64_t T)
{
    const int64_t P = 3 * (int64_t)max_dilation(hp);
    int64_t need = T * hp->decoder_dim, L = T;
    for (int i = 0; i < hp->n_rates; i++) {
        const int s = hp->decoder_rates[i];
        const int64_t c_in = hp->decoder_dim >> i, c_out = hp->decoder_dim >> (i + 1);
        const int64_t out = block_out_len(L, s);
        upd(&need, L * c_in);
        upd(&need, (L * s + s) * c_out);
        upd(&need, (out + 2 * P) * c_out);
        L = out;
    }
    upd(&need, (L + 2 * K_HALF) * (hp->decoder_dim >> hp->n_rates));
    return need;
}

/* ---- creation ----------------------------------------------------------------------------- */

static int device_status(sotto_cuda *cu, int rc, const char *what, sotto_status *st)
{
    const char *m = cu ? sotto_cuda_error_message(cu) : "";
    return sotto_status_set(st, rc, "flexicodec cuda: %s: %s", what, m[0] ? m : sotto_strerror(rc));
}

static int dev_buffer(flexicodec_cuda *c, size_t n_floats, float **d, sotto_status *st)
{
    int rc = sotto_cuda_alloc(c->cu, sizeof(float) * n_floats, (void **)d);
    return rc ? device_status(c->cu, rc, "buffer", st) : SOTTO_OK;
}

static int dev_vec(flexicodec_cuda_weights *c, const float *h, size_t n, float **d,
                   sotto_status *st)
{
    if (!h) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "flexicodec cuda: vector missing");
    int rc = sotto_cuda_alloc(c->cu, sizeof(float) * n, (void **)d);
    if (!rc) rc = sotto_cuda_upload(c->cu, *d, h, sizeof(float) * n);
    return rc ? device_status(c->cu, rc, "upload", st) : SOTTO_OK;
}

static int upload_block(flexicodec_cuda_weights *c, const flexicodec_dac_block *s, fc_block *b,
                        sotto_status *st)
{
    b->c_in = s->c_in;
    b->c_out = s->c_out;
    b->stride = s->stride;
    b->padding = s->padding;
    const size_t C = (size_t)s->c_out;
    int rc;
    if ((rc = dev_vec(c, s->alpha, (size_t)s->c_in, &b->alpha, st)) ||
        (rc = sotto_cuda_convtr1d_w_from_cpu(c->cu, &b->up, &s->up, st)) ||
        (rc = dev_vec(c, s->up_b, C, &b->up_b, st)))
        return rc;
    for (int j = 0; j < FLEXICODEC_RU_COUNT; j++) {
        const flexicodec_res_unit *r = &s->ru[j];
        fc_res_unit *u = &b->ru[j];
        u->dilation = r->dilation;
        if ((rc = dev_vec(c, r->alpha1, C, &u->alpha1, st)) ||
            (rc = dev_vec(c, r->alpha2, C, &u->alpha2, st)) ||
            (rc = sotto_cuda_conv1d_w_from_cpu(c->cu, &u->conv7, &r->conv7, st)) ||
            (rc = dev_vec(c, r->conv7_b, C, &u->conv7_b, st)) ||
            (rc = sotto_cuda_linear_w_from_cpu(c->cu, &u->conv1, &r->conv1, st)) ||
            (rc = dev_vec(c, r->conv1_b, C, &u->conv1_b, st)))
            return rc;
        if (u->conv7.c_in != s->c_out || u->conv7.c_out != s->c_out || u->conv7.k != 7 ||
            u->conv7.dilation != r->dilation || u->conv7.stride != 1 || u->conv7.groups != 1 ||
            u->conv1.n_in != s->c_out || u->conv1.n_out != s->c_out)
            return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                    "flexicodec cuda: residual unit weights of the wrong shape");
    }
    if (b->up.c_in != s->c_in || b->up.c_out != s->c_out || b->up.k != 2 * s->stride ||
        b->up.stride != s->stride || b->up.dilation != 1 || b->up.groups != 1 ||
        s->padding != (s->stride + 1) / 2)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "flexicodec cuda: upsampler weights of the wrong shape");
    return SOTTO_OK;
}

static int upload_weights(flexicodec_cuda_weights *c, const flexicodec_decoder_weights *w,
                          const flexicodec_bottleneck *bt, sotto_status *st)
{
    const flexicodec_hparams *hp = &c->hp;
    int rc;
    for (int i = 0; i < c->n_layers; i++)
        if ((rc = sotto_cuda_tlayer_init(c->cu, &c->layers[i], &bt->layers[i], st))) return rc;
    if ((rc = sotto_cuda_conv1d_w_from_cpu(c->cu, &c->dac_in, &w->dac_in, st)) ||
        (rc = dev_vec(c, w->dac_in_b, (size_t)hp->decoder_dim, &c->dac_in_b, st)))
        return rc;
    for (int i = 0; i < hp->n_rates; i++)
        if ((rc = upload_block(c, &w->blocks[i], &c->blocks[i], st))) return rc;
    const int c_last = hp->decoder_dim >> hp->n_rates;
    if ((rc = dev_vec(c, w->dac_alpha, (size_t)c_last, &c->dac_alpha, st)) ||
        (rc = sotto_cuda_conv1d_w_from_cpu(c->cu, &c->dac_out, &w->dac_out, st)) ||
        (rc = dev_vec(c, w->dac_out_b, 1, &c->dac_out_b, st)))
        return rc;
    if (c->dac_in.c_in != hp->latent_dim || c->dac_in.c_out != hp->decoder_dim ||
        c->dac_in.k != FLEXICODEC_DAC_K || c->dac_in.groups != 1 || c->dac_in.stride != 1 ||
        c->dac_in.dilation != 1 || c->dac_out.c_in != c_last || c->dac_out.c_out != 1 ||
        c->dac_out.k != FLEXICODEC_DAC_K || c->dac_out.stride != 1 || c->dac_out.dilation != 1)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "flexicodec cuda: DAC conv weights of the wrong shape");
    return SOTTO_OK;
}

/* Scratch pool bytes for T frames, from the device weights' geometry: the larger of a
 * transformer layer's temporaries and the DAC convs' im2col matrices (capped; longer inputs
 * run in row blocks). */
static size_t scratch_bytes(const flexicodec_cuda_weights *d, int64_t T)
{
    const flexicodec_hparams *hp = &d->hp;
    size_t conv = sotto_cuda_conv1d_scratch(&d->dac_in, T + 2 * K_HALF), s;
    int64_t L = T;
    for (int i = 0; i < hp->n_rates; i++) {
        const fc_block *b = &d->blocks[i];
        L = block_out_len(L, b->stride);
        for (int j = 0; j < FLEXICODEC_RU_COUNT; j++)
            if ((s = sotto_cuda_conv1d_scratch(&b->ru[j].conv7,
                                               L + 6 * (int64_t)b->ru[j].dilation)) > conv)
                conv = s;
    }
    if ((s = sotto_cuda_conv1d_scratch(&d->dac_out, L + 2 * K_HALF)) > conv) conv = s;
    if (conv > CONV_SCRATCH_CAP) conv = CONV_SCRATCH_CAP;
    size_t tl = 0;
    if (d->n_layers > 0 && !(tl = sotto_cuda_tlayer_scratch(&d->layers[0], T))) return 0;
    return (tl > conv ? tl : conv) + 4096;
}

/* ---- weights ------------------------------------------------------------------------------ */

void flexicodec_cuda_weights_free(flexicodec_cuda_weights *c)
{
    if (!c) return;
    sotto_cuda *cu = c->cu;
    if (cu) {
        for (int i = 0; c->layers && i < c->n_layers; i++)
            sotto_cuda_tlayer_free(cu, &c->layers[i]);
        for (int i = 0; c->blocks && i < c->hp.n_rates; i++) {
            fc_block *b = &c->blocks[i];
            sotto_cuda_convtr1d_w_free(cu, &b->up);
            sotto_cuda_free(cu, b->alpha);
            sotto_cuda_free(cu, b->up_b);
            for (int j = 0; j < FLEXICODEC_RU_COUNT; j++) {
                fc_res_unit *u = &b->ru[j];
                sotto_cuda_conv1d_w_free(cu, &u->conv7);
                sotto_cuda_linear_w_free(cu, &u->conv1);
                sotto_cuda_free(cu, u->alpha1);
                sotto_cuda_free(cu, u->alpha2);
                sotto_cuda_free(cu, u->conv7_b);
                sotto_cuda_free(cu, u->conv1_b);
            }
        }
        sotto_cuda_conv1d_w_free(cu, &c->dac_in);
        sotto_cuda_conv1d_w_free(cu, &c->dac_out);
        float *bufs[] = {c->dac_in_b, c->dac_alpha, c->dac_out_b};
        for (size_t i = 0; i < SOTTO_ARRAY_LEN(bufs); i++)
            sotto_cuda_free(cu, bufs[i]);
        sotto_cuda_destroy(cu);
    }
    free(c->layers);
    free(c->blocks);
    free(c);
}

int flexicodec_cuda_weights_create(const flexicodec_decoder_weights *w,
                                   const flexicodec_bottleneck *bt, int device,
                                   flexicodec_cuda_weights **out, sotto_status *st)
{
    if (!out) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "flexicodec cuda: out is NULL");
    *out = NULL;
    if (!w || !bt || device < 0)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "flexicodec cuda: NULL weights or device %d out of range", device);
    const flexicodec_hparams *hp = &w->hp;
    if (!w->blocks || hp->n_rates < 1 || hp->n_rates > FLEXICODEC_MAX_RATES || hp->latent_dim < 1 ||
        bt->cfg.n_layers < 0 || (bt->cfg.n_layers > 0 && !bt->layers) ||
        (bt->cfg.n_layers > 0 && bt->cfg.dim != hp->latent_dim))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "flexicodec cuda: weights not loaded, or a transformer width "
                                "(%d) other than the latent width (%d)",
                                bt->cfg.dim, hp->latent_dim);
    flexicodec_cuda_weights *c = calloc(1, sizeof *c);
    if (!c) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    c->hp = *hp;
    c->device = device;
    c->n_layers = bt->cfg.n_layers;
    int rc;
    if (!(c->layers = calloc((size_t)(c->n_layers ? c->n_layers : 1), sizeof *c->layers)) ||
        !(c->blocks = calloc((size_t)hp->n_rates, sizeof *c->blocks))) {
        flexicodec_cuda_weights_free(c);
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    }
    if ((rc = sotto_cuda_create(&c->cu, device, 0, st)) || (rc = upload_weights(c, w, bt, st))) {
        flexicodec_cuda_weights_free(c);
        return rc;
    }
    *out = c;
    return SOTTO_OK;
}

/* ---- contexts ----------------------------------------------------------------------------- */

int flexicodec_cuda_create(const flexicodec_decoder_weights *w, const flexicodec_bottleneck *bt,
                           int device, int max_frames, flexicodec_cuda **out, sotto_status *st)
{
    if (!out) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "flexicodec cuda: out is NULL");
    *out = NULL;
    if (max_frames < 1 || max_frames > MAX_FRAMES)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "flexicodec cuda: max_frames %d out of range (1..%d)", max_frames,
                                MAX_FRAMES);
    flexicodec_cuda_weights *d = NULL;
    int rc = flexicodec_cuda_weights_create(w, bt, device, &d, st);
    if (rc) return rc;
    if ((rc = flexicodec_cuda_create_shared(d, max_frames, out, st))) {
        flexicodec_cuda_weights_free(d);
        return rc;
    }
    (*out)->own = d;
    return SOTTO_OK;
}

int flexicodec_cuda_create_shared(const flexicodec_cuda_weights *wt, int max_frames,
                                  flexicodec_cuda **out, sotto_status *st)
{
    if (!out) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "flexicodec cuda: out is NULL");
    *out = NULL;
    if (!wt || max_frames < 1 || max_frames > MAX_FRAMES)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "flexicodec cuda: NULL weights or max_frames %d out of range "
                                "(1..%d)",
                                max_frames, MAX_FRAMES);
    const flexicodec_hparams *hp = &wt->hp;
    const size_t scratch = scratch_bytes(wt, max_frames);
    if (!scratch)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "flexicodec cuda: transformer layers not prepared");
    flexicodec_cuda *c = calloc(1, sizeof *c);
    if (!c) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    c->hp = *hp;
    c->wt = wt;
    c->max_frames = max_frames;
    int rc;
    c->buf_floats = (size_t)dac_buf_floats(hp, max_frames);
    if ((rc = sotto_cuda_create(&c->cu, wt->device, scratch, st)) ||
        (rc = dev_buffer(c, ((size_t)max_frames + 2 * K_HALF) * (size_t)hp->latent_dim, &c->lat,
                         st)))
        goto fail;
    for (int i = 0; i < 3; i++)
        if ((rc = dev_buffer(c, c->buf_floats, &c->buf[i], st))) goto fail;
    for (int i = 0; i < GRAPH_SLOTS; i++)
        if ((rc = sotto_cuda_graph_create(c->cu, &c->graph[i]))) {
            rc = device_status(c->cu, rc, "graph", st);
            goto fail;
        }
    *out = c;
    return SOTTO_OK;
fail:
    flexicodec_cuda_free(c);
    return rc;
}

void flexicodec_cuda_free(flexicodec_cuda *c)
{
    if (!c) return;
    sotto_cuda *cu = c->cu;
    for (int i = 0; i < GRAPH_SLOTS; i++)
        sotto_cuda_graph_destroy(c->graph[i]);
    if (cu) {
        float *bufs[] = {c->lat, c->buf[0], c->buf[1], c->buf[2]};
        for (size_t i = 0; i < SOTTO_ARRAY_LEN(bufs); i++)
            sotto_cuda_free(cu, bufs[i]);
        sotto_cuda_destroy(cu);
    }
    flexicodec_cuda_weights_free(c->own);
    free(c);
}

/* ---- forward ------------------------------------------------------------------------------ */

int64_t flexicodec_cuda_output_length(const flexicodec_cuda *c, int64_t T)
{
    return c && T > 0 ? flexicodec_dac_out_len(&c->hp, T) : 0;
}

const char *flexicodec_cuda_last_error(const flexicodec_cuda *c)
{
    return c ? c->msg : "";
}

static int64_t fail_msg(flexicodec_cuda *c, int code, const char *msg)
{
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    return code;
}

/* A layer call returned r: the context's error (with its message) when it failed, else a
 * layer refused the arguments this file sized, or produced the wrong frame count. */
static int64_t layer_failed(flexicodec_cuda *c, int64_t r, const char *layer)
{
    const int err = sotto_cuda_error(c->cu);
    if (err) {
        snprintf(c->msg, sizeof c->msg, "flexicodec cuda: %s: %s", layer,
                 sotto_cuda_error_message(c->cu));
        return err;
    }
    snprintf(c->msg, sizeof c->msg, "flexicodec cuda: internal error: %s returned %lld", layer,
             (long long)r);
    return r < 0 ? r : SOTTO_ERR_INTERNAL;
}

/* x[L][C] (in buffer ix) += conv1(Snake(conv7_d(Snake(x)))), the conv7 input zero-padded 3·d
 * on each side in one free buffer, its output in the other. */
static int64_t res_unit(flexicodec_cuda *c, const fc_res_unit *u, float *x, int ix, int64_t L,
                        int C)
{
    sotto_cuda *cu = c->cu;
    float *A = c->buf[(ix + 1) % 3], *B = c->buf[(ix + 2) % 3];
    const int64_t pad = 3 * (int64_t)u->dilation;
    const size_t edge = sizeof(float) * (size_t)pad * (size_t)C;
    int64_t r;
    if ((r = sotto_cuda_memset0(cu, A, edge)) ||
        (r = sotto_cuda_memset0(cu, A + (pad + L) * C, edge)) ||
        (r = sotto_cuda_snake(cu, x, L, C, u->alpha1, A + pad * C)))
        return layer_failed(c, r, "residual unit");
    if ((r = sotto_cuda_conv1d(cu, &u->conv7, u->conv7_b, A, L + 2 * pad, B)) != L)
        return layer_failed(c, r, "residual unit conv7");
    if ((r = sotto_cuda_snake(cu, B, L, C, u->alpha2, B)) ||
        (r = sotto_cuda_linear_ex(cu, &u->conv1, u->conv1_b, B, C, L, x, C, 1)))
        return layer_failed(c, r, "residual unit conv1");
    return SOTTO_OK;
}

/*
 * The device work of a decode of T frames whose latent is already in rows [K_HALF, K_HALF + T)
 * of c->lat: the zero frames around it, the transformer, the DAC decoder and the tanh, into
 * *wave. Only enqueues work on fixed buffers (no upload, download or sync), with addresses and
 * sizes fixed by T, so a graph can record it. Returns the sample count or an error.
 */
static int64_t enqueue_forward(flexicodec_cuda *c, int T, float **wave)
{
    sotto_cuda *cu = c->cu;
    const flexicodec_hparams *hp = &c->hp;
    const int lat = hp->latent_dim;
    int64_t r;
    sotto_cuda_scratch_reset(cu);

    /* the latent between K_HALF zero frames on each side */
    const size_t edge = sizeof(float) * (size_t)K_HALF * (size_t)lat;
    float *x = c->lat + (size_t)K_HALF * lat;
    if ((r = sotto_cuda_memset0(cu, c->lat, edge)) ||
        (r = sotto_cuda_memset0(cu, x + (size_t)T * lat, edge)))
        return layer_failed(c, r, "latent padding");

    for (int i = 0; i < c->wt->n_layers; i++)
        if ((r = sotto_cuda_tlayer_forward(cu, &c->wt->layers[i], x, T, 0, x)))
            return layer_failed(c, r, "bottleneck transformer");

    /* DAC decoder: X in buffer ix */
    int ix = 0;
    float *X = c->buf[0];
    if ((r = sotto_cuda_conv1d(cu, &c->wt->dac_in, c->wt->dac_in_b, c->lat, T + 2 * K_HALF, X)) !=
        T)
        return layer_failed(c, r, "DAC input conv");
    int64_t L = T;
    for (int i = 0; i < hp->n_rates; i++) {
        const fc_block *b = &c->wt->blocks[i];
        float *A = c->buf[(ix + 1) % 3];
        const int ib = (ix + 2) % 3;
        if ((r = sotto_cuda_snake(cu, X, L, b->c_in, b->alpha, A)))
            return layer_failed(c, r, "block Snake");
        if ((r = sotto_cuda_conv_transpose1d(cu, &b->up, b->up_b, A, L, c->buf[ib])) !=
            L * b->stride + b->stride)
            return layer_failed(c, r, "upsampler");
        /* torch's padding cropped from both ends: X starts `padding` rows into the output */
        ix = ib;
        X = c->buf[ib] + (size_t)b->padding * b->c_out;
        L = block_out_len(L, b->stride);
        for (int j = 0; j < FLEXICODEC_RU_COUNT; j++)
            if ((r = res_unit(c, &b->ru[j], X, ix, L, b->c_out))) return r;
    }
    if (L != flexicodec_dac_out_len(hp, T))
        return fail_msg(c, SOTTO_ERR_INTERNAL, "flexicodec cuda: output length");

    const int c_last = hp->decoder_dim >> hp->n_rates;
    float *A = c->buf[(ix + 1) % 3], *w = c->buf[(ix + 2) % 3];
    const size_t edge_last = sizeof(float) * (size_t)K_HALF * (size_t)c_last;
    if ((r = sotto_cuda_memset0(cu, A, edge_last)) ||
        (r = sotto_cuda_memset0(cu, A + (size_t)(K_HALF + L) * c_last, edge_last)) ||
        (r = sotto_cuda_snake(cu, X, L, c_last, c->wt->dac_alpha, A + (size_t)K_HALF * c_last)))
        return layer_failed(c, r, "final Snake");
    if ((r = sotto_cuda_conv1d(cu, &c->wt->dac_out, c->wt->dac_out_b, A, L + 2 * K_HALF, w)) != L)
        return layer_failed(c, r, "DAC output conv");
    if ((r = sotto_cuda_tanh(cu, w, L, w))) return layer_failed(c, r, "output tanh");
    *wave = w;
    return L;
}

/* 1 (and forgets it) when T ran directly once since it was last captured, else remembers it
 * and returns 0. */
static int seen_before(flexicodec_cuda *c, int T)
{
    for (int i = 0; i < SEEN_SLOTS; i++)
        if (c->seen[i] == T) {
            c->seen[i] = 0;
            return 1;
        }
    c->seen[c->seen_next] = T;
    c->seen_next = (c->seen_next + 1) % SEEN_SLOTS;
    return 0;
}

/* The forward of enqueue_forward: directly, or as a graph replay of T (captured first when T
 * comes for the second time). */
static int64_t run_forward(flexicodec_cuda *c, int T, float **wave)
{
    if (!c->use_graph) return enqueue_forward(c, T, wave);
    c->calls++;
    int slot = -1;
    for (int i = 0; i < GRAPH_SLOTS && slot < 0; i++)
        if (sotto_cuda_graph_ready(c->graph[i], T)) slot = i;
    int64_t r;
    if (slot < 0) {
        if (!seen_before(c, T)) return enqueue_forward(c, T, wave);
        slot = 0;
        for (int i = 1; i < GRAPH_SLOTS; i++)
            if (c->used[i] < c->used[slot]) slot = i;
        sotto_cuda_graph *g = c->graph[slot];
        c->used[slot] = 0;
        if ((r = sotto_cuda_graph_begin(g, T))) return layer_failed(c, r, "graph begin");
        const int64_t got = enqueue_forward(c, T, &c->wave[slot]);
        r = sotto_cuda_graph_end(g); /* ends the capture even after a failure */
        if (got < 0 || r) {
            /* never replay a capture that stopped short (an error that left the context
             * working still instantiated what was recorded) */
            sotto_cuda_graph_invalidate(g);
            return got < 0 ? got : layer_failed(c, r, "graph end");
        }
        c->captures++;
    }
    c->used[slot] = c->calls;
    if ((r = sotto_cuda_graph_launch(c->graph[slot]))) return layer_failed(c, r, "graph launch");
    c->launches++;
    *wave = c->wave[slot];
    return flexicodec_dac_out_len(&c->hp, T);
}

int64_t flexicodec_cuda_decode(flexicodec_cuda *c, const float *latent_host, int T, float *out_host,
                               int64_t capacity)
{
    if (!c) return SOTTO_ERR_INVALID_ARG;
    c->msg[0] = '\0';
    sotto_cuda *cu = c->cu;
    const flexicodec_hparams *hp = &c->hp;
    const int lat = hp->latent_dim;
    if (!latent_host || !out_host || T < 1 || T > c->max_frames)
        return fail_msg(c, SOTTO_ERR_INVALID_ARG,
                        "flexicodec cuda: NULL buffer or frame count outside 1..max_frames");
    for (int64_t i = 0; i < (int64_t)T * lat; i++)
        if (!isfinite(latent_host[i]))
            return fail_msg(c, SOTTO_ERR_INVALID_ARG, "flexicodec cuda: non-finite latent value");
    const int64_t len = flexicodec_dac_out_len(hp, T);
    if (capacity < len)
        return fail_msg(c, SOTTO_ERR_BUFFER_TOO_SMALL,
                        "flexicodec cuda: output capacity below the samples of the forward");
    int64_t r = sotto_cuda_error(cu);
    if (r) return layer_failed(c, r, "context");

    /* the latent into its fixed rows, outside any graph */
    if ((r = sotto_cuda_upload(cu, c->lat + (size_t)K_HALF * lat, latent_host,
                               sizeof(float) * (size_t)T * lat)))
        return layer_failed(c, r, "latent upload");
    float *wave = NULL;
    const int64_t L = run_forward(c, T, &wave);
    if (L < 0) return L;
    if (L != len) return fail_msg(c, SOTTO_ERR_INTERNAL, "flexicodec cuda: output length");
    if ((r = sotto_cuda_download(cu, out_host, wave, sizeof(float) * (size_t)L)))
        return layer_failed(c, r, "output download");
    for (int64_t i = 0; i < L; i++)
        if (!isfinite(out_host[i]))
            return fail_msg(c, SOTTO_ERR_INTERNAL, "flexicodec cuda: non-finite output sample");
    return L;
}

int flexicodec_cuda_set_graphs(flexicodec_cuda *c, int on)
{
    if (!c) return SOTTO_ERR_INVALID_ARG;
    if (!on) {
        /* release the instantiated graphs; turning graphs on again starts afresh */
        for (int i = 0; i < GRAPH_SLOTS; i++) {
            sotto_cuda_graph_invalidate(c->graph[i]);
            c->used[i] = 0;
        }
        memset(c->seen, 0, sizeof c->seen);
        c->seen_next = 0;
    }
    c->use_graph = on != 0;
    return SOTTO_OK;
}

int flexicodec_cuda_graphs(const flexicodec_cuda *c)
{
    return c ? c->use_graph : 0;
}

int64_t flexicodec_cuda_graph_captures(const flexicodec_cuda *c)
{
    return c ? c->captures : 0;
}

int64_t flexicodec_cuda_graph_launches(const flexicodec_cuda *c)
{
    return c ? c->launches : 0;
}

#endif /* SOTTO_HAVE_CUDA */
