/*
 * The offline Vocos forward on the CUDA layer library (vocos_cuda.h). Load time converts the
 * CPU loader's repacked weights back to PyTorch layout and uploads them; the forward is a
 * fixed sequence of cuda_ops.h layers on buffers allocated at creation.
 *
 * Padding: the CPU vocoder streams every k = 7 conv with 3 zero frames of history at the start
 * and 3 zero frames pushed at flush, which is zero padding 3 on each side of the whole
 * sequence. Here the features sit between 3 zero frames in `feat`, and the residual stream
 * lives in rows [3, 3 + T) of `xp` between 3 zero frames that no layer writes, so each block's
 * depthwise conv reads its padded input in place and its pwconv2 adds onto the residual in one
 * accumulating GEMM (γ folded into its rows and bias at load).
 *
 * Built only with the CUDA backend: sdk/CMakeLists.txt compiles every .c of the model folders and
 * defines SOTTO_HAVE_CUDA when the backend is built.
 */
#include "vocoder/vocos/vocos_cuda.h"

#ifdef SOTTO_HAVE_CUDA

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_ops.h"
#include "dsp/stft.h"

/* The ISTFT plan transforms at most this many frames per cuFFT call (longer inputs run in
 * blocks), which bounds its scratch. */
#define ISTFT_BATCH 256
/* The head's magnitude clip (vocos.spectral_ops: torch.clip(mag, max=1e2)). */
#define MAG_MAX 100.0f
#define LN_EPS 1e-6f

typedef struct vocos_cuda_block {
    sotto_cuda_conv1d_w dw;
    sotto_cuda_linear_w pw1, pw2;              /* pw2: γ folded into its rows */
    float *dw_b, *ln_w, *ln_b, *pw1_b, *pw2_b; /* device; pw2_b = γ·b */
} vocos_cuda_block;

struct vocos_cuda {
    sotto_cuda *cu;
    vocos_hparams hp;
    int max_frames;
    int n_bins; /* F = n_fft/2 + 1 */
    sotto_cuda_conv1d_w embed;
    float *embed_b, *norm_w, *norm_b, *final_w, *final_b;
    vocos_cuda_block *blocks;
    sotto_cuda_linear_w head_mag, head_phase; /* rows [0, F) and [F, 2F) of head.out */
    float *head_b;                            /* [2F]: magnitude bias, then phase bias */
    sotto_cuda_istft *istft;
    /* activations (device) */
    float *feat;        /* [(max_frames + 6)][input_channels], zero frames around the input */
    float *xp;          /* [(max_frames + 6)][dim], the residual stream between zero frames */
    float *y;           /* [max_frames][dim] */
    float *h;           /* [max_frames][intermediate_dim] */
    float *mag, *phase; /* [max_frames][F] */
    float *out;         /* [output_length(max_frames)] */
    char msg[256];      /* what the last failed call found */
};

/* ---- weights back to PyTorch layout (host) ----------------------------------------------- */

/* Element (r, n) of a pair-packed binary16 matrix of `rows` rows (nn/ops_weights.c, pack_h16:
 * 32-column panels of round_up(rows, 2)·32 halves; backend.h, gemm_h16). */
static float h16_at(const uint16_t *h, int64_t rows, int64_t r, int n)
{
    const int P = SOTTO_F16_PANEL;
    const int64_t rp = (rows + 1) & ~(int64_t)1;
    const int c = n % P;
    return sotto_f16_to_f32(
        h[(int64_t)(n / P) * rp * P + (r / 2) * 64 + (c / 16) * 32 + (c % 16) * 2 + r % 2]);
}

/* W[n_out][n_in] from a prepared Linear weight, whichever form it holds: f32 w[n_in][ldw],
 * f16 panels (32 columns, n_in rows of 32 halves each) or pair-packed binary16. */
static int linear_to_f32(const sotto_linear_w *l, float *W)
{
    const int N = l->n_out, K = l->n_in, P = SOTTO_F16_PANEL;
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            float v;
            if (l->w)
                v = l->w[(int64_t)k * l->ldw + n];
            else if (l->w16)
                v = sotto_f16_to_f32(l->w16[(int64_t)(n / P) * K * P + (int64_t)k * P + n % P]);
            else if (l->h16)
                v = h16_at(l->h16, K, k, n);
            else
                return SOTTO_ERR_INVALID_ARG;
            W[(int64_t)n * K + k] = v;
        }
    return SOTTO_OK;
}

/* W[c_out][c_in/groups][k] from a prepared Conv1d weight: depthwise w[k][c], else
 * w[g][k][ci][ldw] in f32, or (ungrouped) the pair-packed matrix of rows k·c_in. */
static int conv_to_f32(const sotto_conv1d_w *cw, float *W)
{
    const int K = cw->k;
    if (cw->depthwise) {
        if (!cw->w) return SOTTO_ERR_INVALID_ARG;
        for (int c = 0; c < cw->c_in; c++)
            for (int j = 0; j < K; j++)
                W[(int64_t)c * K + j] = cw->w[(int64_t)j * cw->c_in + c];
        return SOTTO_OK;
    }
    const int G = cw->groups, cig = cw->c_in / G, cog = cw->c_out / G;
    if (!cw->w && !(cw->h16 && G == 1)) return SOTTO_ERR_INVALID_ARG;
    for (int g = 0; g < G; g++)
        for (int n = 0; n < cog; n++)
            for (int ci = 0; ci < cig; ci++)
                for (int j = 0; j < K; j++) {
                    const int64_t r = ((int64_t)g * K + j) * cig + ci;
                    W[(((int64_t)g * cog + n) * cig + ci) * K + j] =
                        cw->w ? cw->w[r * cw->ldw + n]
                              : h16_at(cw->h16, (int64_t)K * cw->c_in, r, n);
                }
    return SOTTO_OK;
}

/* ---- creation ----------------------------------------------------------------------------- */

static size_t align256(size_t n)
{
    return (n + 255) & ~(size_t)255;
}

/* A failed device call at load: the context's message into st. */
static int device_status(const vocos_cuda *c, int rc, const char *what, sotto_status *st)
{
    const char *m = c->cu ? sotto_cuda_error_message(c->cu) : "";
    return sotto_status_set(st, rc, "vocos cuda: %s: %s", what, m[0] ? m : sotto_strerror(rc));
}

static int dev_buffer(vocos_cuda *c, size_t n_floats, float **d, sotto_status *st)
{
    int rc = sotto_cuda_alloc(c->cu, sizeof(float) * n_floats, (void **)d);
    return rc ? device_status(c, rc, "buffer", st) : SOTTO_OK;
}

static int dev_vec(vocos_cuda *c, const float *h, size_t n, float **d, sotto_status *st)
{
    int rc = sotto_cuda_alloc(c->cu, sizeof(float) * n, (void **)d);
    if (!rc) rc = sotto_cuda_upload(c->cu, *d, h, sizeof(float) * n);
    return rc ? device_status(c, rc, "upload", st) : SOTTO_OK;
}

/* A Linear weight's rows [r0, r0 + rows) to the device; W holds the whole [n_out][n_in]. */
static int dev_linear_rows(vocos_cuda *c, sotto_cuda_linear_w *d, const float *W, int r0, int rows,
                           int n_in, sotto_status *st)
{
    return sotto_cuda_linear_w_init(c->cu, d, W + (int64_t)r0 * n_in, rows, n_in, st);
}

static int upload_block(vocos_cuda *c, const vocos_block *b, vocos_cuda_block *d, float *W,
                        float *tmp, sotto_status *st)
{
    const int C = c->hp.dim, I = c->hp.intermediate_dim;
    int rc;
    if (conv_to_f32(&b->dw, W) || linear_to_f32(&b->pw1, W + (size_t)C * VOCOS_KERNEL))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "vocos cuda: block weights empty");
    if ((rc = sotto_cuda_conv1d_w_init(c->cu, &d->dw, W, C, C, VOCOS_KERNEL, 1, 1, C, st)) ||
        (rc = sotto_cuda_linear_w_init(c->cu, &d->pw1, W + (size_t)C * VOCOS_KERNEL, I, C, st)) ||
        (rc = dev_vec(c, b->dw_b, (size_t)C, &d->dw_b, st)) ||
        (rc = dev_vec(c, b->ln_w, (size_t)C, &d->ln_w, st)) ||
        (rc = dev_vec(c, b->ln_b, (size_t)C, &d->ln_b, st)) ||
        (rc = dev_vec(c, b->pw1_b, (size_t)I, &d->pw1_b, st)))
        return rc;
    /* pwconv2 [C][I] with the layer scale folded in: x + γ⊙(W·h + b) = x + (γ⊙W)·h + γ⊙b */
    if (linear_to_f32(&b->pw2, W))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "vocos cuda: block weights empty");
    for (int n = 0; n < C; n++) {
        const float g = b->gamma ? b->gamma[n] : 1.0f;
        if (b->gamma)
            for (int k = 0; k < I; k++)
                W[(int64_t)n * I + k] *= g;
        tmp[n] = g * b->pw2_b[n];
    }
    if ((rc = sotto_cuda_linear_w_init(c->cu, &d->pw2, W, C, I, st)) ||
        (rc = dev_vec(c, tmp, (size_t)C, &d->pw2_b, st)))
        return rc;
    return SOTTO_OK;
}

static int upload_weights(vocos_cuda *c, const vocos_weights *w, sotto_status *st)
{
    const vocos_hparams *hp = &c->hp;
    const int C = hp->dim, Cin = hp->input_channels, I = hp->intermediate_dim;
    const int F = c->n_bins, L = hp->num_layers;
    /* One host staging matrix for the largest weight (a block's dwconv and pwconv1 together,
     * pwconv2, the head, the embedding) and one vector. */
    size_t n = (size_t)C * VOCOS_KERNEL + (size_t)I * C;
    if ((size_t)(2 * F) * C > n) n = (size_t)(2 * F) * C;
    if ((size_t)C * Cin * VOCOS_KERNEL > n) n = (size_t)C * Cin * VOCOS_KERNEL;
    size_t nv = (size_t)(I > 2 * F ? I : 2 * F);
    if ((size_t)C > nv) nv = (size_t)C;
    float *W = malloc(sizeof(float) * n), *tmp = malloc(sizeof(float) * nv);
    int rc = SOTTO_OK;
    if (!W || !tmp) {
        rc = sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    if (conv_to_f32(&w->embed, W)) {
        rc = sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "vocos cuda: embed weight empty");
        goto done;
    }
    if ((rc = sotto_cuda_conv1d_w_init(c->cu, &c->embed, W, C, Cin, VOCOS_KERNEL, 1, 1, 1, st)) ||
        (rc = dev_vec(c, w->embed_b, (size_t)C, &c->embed_b, st)) ||
        (rc = dev_vec(c, w->norm_w, (size_t)C, &c->norm_w, st)) ||
        (rc = dev_vec(c, w->norm_b, (size_t)C, &c->norm_b, st)) ||
        (rc = dev_vec(c, w->final_w, (size_t)C, &c->final_w, st)) ||
        (rc = dev_vec(c, w->final_b, (size_t)C, &c->final_b, st)) ||
        (rc = dev_vec(c, w->head_b, (size_t)(2 * F), &c->head_b, st)))
        goto done;
    if (linear_to_f32(&w->head, W)) {
        rc = sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "vocos cuda: head weight empty");
        goto done;
    }
    if ((rc = dev_linear_rows(c, &c->head_mag, W, 0, F, C, st)) ||
        (rc = dev_linear_rows(c, &c->head_phase, W, F, F, C, st)))
        goto done;
    for (int i = 0; i < L; i++)
        if ((rc = upload_block(c, &w->blocks[i], &c->blocks[i], W, tmp, st))) goto done;
done:
    free(W);
    free(tmp);
    return rc;
}

int vocos_cuda_create(const vocos_weights *w, int device, int max_frames, vocos_cuda **out,
                      sotto_status *st)
{
    if (!out) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "vocos cuda: out is NULL");
    *out = NULL;
    if (!w || device < 0 || max_frames < 1 || max_frames > (1 << 20))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "vocos cuda: NULL weights, device %d or max_frames %d out of "
                                "range (1..%d)",
                                device, max_frames, 1 << 20);
    const vocos_hparams *hp = &w->hp;
    if (hp->features != VOCOS_FEAT_MEL || hp->adanorm_num_embeddings > 0)
        return sotto_status_set(st, SOTTO_ERR_UNSUPPORTED,
                                "vocos cuda: only mel-feature models with plain LayerNorm run "
                                "on the GPU (this one has %s features%s)",
                                hp->features == VOCOS_FEAT_MEL ? "mel" : "EnCodec",
                                hp->adanorm_num_embeddings ? " and AdaLayerNorm" : "");
    /* The ISTFT geometry and window exactly as the CPU vocoder builds them. */
    sotto_stft_params sp = sotto_stft_default_params();
    sp.n_fft = hp->n_fft;
    sp.hop_length = hp->hop_length;
    sp.pad = hp->head_pad_same ? SOTTO_STFT_PAD_SAME : SOTTO_STFT_PAD_CENTER;
    sp.window = w->head_window;
    sotto_stft *plan = NULL;
    int rc = sotto_stft_create(&sp, NULL, &plan, st);
    if (rc) return rc;

    vocos_cuda *c = calloc(1, sizeof *c);
    if (!c) {
        sotto_stft_destroy(plan);
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    }
    c->hp = *hp;
    c->max_frames = max_frames;
    c->n_bins = hp->n_fft / 2 + 1;
    const int C = hp->dim, Cin = hp->input_channels, I = hp->intermediate_dim, F = c->n_bins;
    const int L = hp->num_layers;
    const size_t rows = (size_t)max_frames + 2 * VOCOS_HALF;
    const int batch = max_frames < ISTFT_BATCH ? max_frames : ISTFT_BATCH;

    /* Scratch: the larger of the embedding conv's im2col matrix and the ISTFT's spectra and
     * frames (each layer gives its scratch back before the next runs). */
    const sotto_cuda_conv1d_w geom = {
        .c_in = Cin, .c_out = C, .k = VOCOS_KERNEL, .stride = 1, .dilation = 1, .groups = 1};
    size_t scratch = sotto_cuda_conv1d_scratch(&geom, (int64_t)rows);
    const size_t istft_bytes = align256((size_t)batch * (size_t)F * 2 * sizeof(float)) +
                               align256((size_t)batch * (size_t)hp->n_fft * sizeof(float));
    if (istft_bytes > scratch) scratch = istft_bytes;
    scratch += 4096;

    if ((rc = sotto_cuda_create(&c->cu, device, scratch, st))) goto fail;
    if (!(c->blocks = calloc((size_t)(L ? L : 1), sizeof *c->blocks))) {
        rc = sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    if ((rc = upload_weights(c, w, st)) ||
        (rc = sotto_cuda_istft_create(c->cu, hp->n_fft, hp->hop_length, sotto_istft_trim(plan),
                                      sotto_stft_window(plan), batch, &c->istft, st)))
        goto fail;
    if (sotto_cuda_istft_scratch(c->istft) + 512 > sotto_cuda_scratch_size(c->cu)) {
        rc = sotto_status_set(st, SOTTO_ERR_INTERNAL, "vocos cuda: ISTFT scratch mis-sized");
        goto fail;
    }
    if ((rc = dev_buffer(c, rows * (size_t)Cin, &c->feat, st)) ||
        (rc = dev_buffer(c, rows * (size_t)C, &c->xp, st)) ||
        (rc = dev_buffer(c, (size_t)max_frames * C, &c->y, st)) ||
        (rc = dev_buffer(c, (size_t)max_frames * I, &c->h, st)) ||
        (rc = dev_buffer(c, (size_t)max_frames * F, &c->mag, st)) ||
        (rc = dev_buffer(c, (size_t)max_frames * F, &c->phase, st)) ||
        (rc = dev_buffer(c, (size_t)sotto_cuda_istft_length(c->istft, max_frames), &c->out, st)))
        goto fail;
    sotto_stft_destroy(plan);
    *out = c;
    return SOTTO_OK;
fail:
    sotto_stft_destroy(plan);
    vocos_cuda_free(c);
    return rc;
}

void vocos_cuda_free(vocos_cuda *c)
{
    if (!c) return;
    sotto_cuda *cu = c->cu;
    if (cu) {
        if (c->blocks)
            for (int i = 0; i < c->hp.num_layers; i++) {
                vocos_cuda_block *b = &c->blocks[i];
                sotto_cuda_conv1d_w_free(cu, &b->dw);
                sotto_cuda_linear_w_free(cu, &b->pw1);
                sotto_cuda_linear_w_free(cu, &b->pw2);
                sotto_cuda_free(cu, b->dw_b);
                sotto_cuda_free(cu, b->ln_w);
                sotto_cuda_free(cu, b->ln_b);
                sotto_cuda_free(cu, b->pw1_b);
                sotto_cuda_free(cu, b->pw2_b);
            }
        sotto_cuda_conv1d_w_free(cu, &c->embed);
        sotto_cuda_linear_w_free(cu, &c->head_mag);
        sotto_cuda_linear_w_free(cu, &c->head_phase);
        float *bufs[] = {c->embed_b, c->norm_w, c->norm_b, c->final_w, c->final_b,
                         c->head_b,  c->feat,   c->xp,     c->y,       c->h,
                         c->mag,     c->phase,  c->out};
        for (size_t i = 0; i < SOTTO_ARRAY_LEN(bufs); i++)
            sotto_cuda_free(cu, bufs[i]);
        sotto_cuda_istft_destroy(cu, c->istft);
        sotto_cuda_destroy(cu);
    }
    free(c->blocks);
    free(c);
}

/* ---- forward ------------------------------------------------------------------------------ */

int64_t vocos_cuda_output_length(const vocos_cuda *c, int64_t T)
{
    return c && T > 0 ? sotto_cuda_istft_length(c->istft, T) : 0;
}

const char *vocos_cuda_last_error(const vocos_cuda *c)
{
    return c ? c->msg : "";
}

static int64_t fail_msg(vocos_cuda *c, int code, const char *msg)
{
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    return code;
}

/* A layer call returned r: the context's error (with its message) when it failed, else a
 * layer refused the arguments this file sized, or produced the wrong frame count. */
static int64_t layer_failed(vocos_cuda *c, int64_t r, const char *layer)
{
    const int err = sotto_cuda_error(c->cu);
    if (err) {
        snprintf(c->msg, sizeof c->msg, "vocos cuda: %s: %s", layer,
                 sotto_cuda_error_message(c->cu));
        return err;
    }
    snprintf(c->msg, sizeof c->msg, "vocos cuda: internal error: %s returned %lld", layer,
             (long long)r);
    return r < 0 ? r : SOTTO_ERR_INTERNAL;
}

int64_t vocos_cuda_offline(vocos_cuda *c, const float *features_host, int T, float *out_host,
                           int64_t capacity)
{
    if (!c) return SOTTO_ERR_INVALID_ARG;
    c->msg[0] = '\0';
    sotto_cuda *cu = c->cu;
    const vocos_hparams *hp = &c->hp;
    const int C = hp->dim, Cin = hp->input_channels, I = hp->intermediate_dim, F = c->n_bins;
    if (!features_host || !out_host || T < 1 || T > c->max_frames)
        return fail_msg(c, SOTTO_ERR_INVALID_ARG,
                        "vocos cuda: NULL buffer or frame count outside 1..max_frames");
    for (int64_t i = 0; i < (int64_t)T * Cin; i++)
        if (!isfinite(features_host[i]))
            return fail_msg(c, SOTTO_ERR_BAD_AUDIO, "vocos cuda: non-finite feature value");
    const int64_t len = sotto_cuda_istft_length(c->istft, T);
    if (capacity < len)
        return fail_msg(c, SOTTO_ERR_BUFFER_TOO_SMALL,
                        "vocos cuda: output capacity below the "
                        "samples of the forward");
    int64_t r = sotto_cuda_error(cu);
    if (r) return layer_failed(c, r, "context");
    sotto_cuda_scratch_reset(cu);

    /* Zero padding 3 on both sides of every k 7 conv: the features between zero frames, and
     * the residual stream x = xp + 3 rows between zero frames that stay zero. */
    const int64_t rows = (int64_t)T + 2 * VOCOS_HALF;
    float *x = c->xp + (size_t)VOCOS_HALF * C;
    if ((r = sotto_cuda_memset0(cu, c->feat, sizeof(float) * (size_t)rows * Cin)) ||
        (r = sotto_cuda_upload(cu, c->feat + (size_t)VOCOS_HALF * Cin, features_host,
                               sizeof(float) * (size_t)T * Cin)) ||
        (r = sotto_cuda_memset0(cu, c->xp, sizeof(float) * (size_t)rows * C)))
        return layer_failed(c, r, "features upload");
    if ((r = sotto_cuda_conv1d(cu, &c->embed, c->embed_b, c->feat, rows, x)) != T)
        return layer_failed(c, r, "embed conv");
    if ((r = sotto_cuda_layernorm(cu, x, T, C, c->norm_w, c->norm_b, LN_EPS, x)))
        return layer_failed(c, r, "backbone norm");

    for (int i = 0; i < hp->num_layers; i++) {
        const vocos_cuda_block *b = &c->blocks[i];
        if ((r = sotto_cuda_conv1d(cu, &b->dw, b->dw_b, c->xp, rows, c->y)) != T)
            return layer_failed(c, r, "dwconv");
        if ((r = sotto_cuda_layernorm(cu, c->y, T, C, b->ln_w, b->ln_b, LN_EPS, c->y)) ||
            (r = sotto_cuda_linear(cu, &b->pw1, b->pw1_b, c->y, T, c->h)) ||
            (r = sotto_cuda_gelu_erf(cu, c->h, (int64_t)T * I, c->h)) ||
            (r = sotto_cuda_linear_ex(cu, &b->pw2, b->pw2_b, c->h, I, T, x, C, 1)))
            return layer_failed(c, r, "ConvNeXt block");
    }

    if ((r = sotto_cuda_layernorm(cu, x, T, C, c->final_w, c->final_b, LN_EPS, c->y)) ||
        (r = sotto_cuda_linear(cu, &c->head_mag, c->head_b, c->y, T, c->mag)) ||
        (r = sotto_cuda_linear(cu, &c->head_phase, c->head_b + F, c->y, T, c->phase)) ||
        (r = sotto_cuda_exp_clamp(cu, c->mag, (int64_t)T * F, MAG_MAX, c->mag)))
        return layer_failed(c, r, "head");
    if ((r = sotto_cuda_istft_polar(cu, c->istft, c->mag, c->phase, T, c->out)) != len)
        return layer_failed(c, r, "istft");
    if ((r = sotto_cuda_download(cu, out_host, c->out, sizeof(float) * (size_t)len)))
        return layer_failed(c, r, "download");
    return len;
}

#endif /* SOTTO_HAVE_CUDA */
