/*
 * The SenseVoice stack on the CUDA layers (sensevoice_cuda.h): upload of the CPU model's
 * blocks, and the forward as a fixed sequence of cuda_ops.h layers on buffers allocated at
 * creation. Buffers, for T' = T_lfr + 4 positions: xin [T'][input] (the uploaded input), cur
 * [T'][d] (the residual stream), h [T'][max(input, d)] (a LayerNorm output), qkv [T'][3d], mem
 * [T'][d] (the FSMN memory), att [T'][d] (the heads' outputs), ffh [T'][ffn], y [T_lfr][d].
 *
 * Built only with the CUDA backend: sdk/CMakeLists.txt compiles every .c of the model folders
 * and defines SOTTO_HAVE_CUDA when the backend is built.
 */
#include "encoders/sensevoice/sensevoice_cuda.h"

#ifdef SOTTO_HAVE_CUDA

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/fsmn.h"

struct sensevoice_cuda {
    int64_t max_lfr;
    float *xin_host; /* [max_lfr + 4][input_size] staging for the upload */
    float *xin, *cur, *h, *qkv, *mem, *att, *ffh, *y; /* device */
};

/* ---- weights ------------------------------------------------------------------------------ */

static int device_status(sotto_cuda *cu, int rc, const char *what, sotto_status *st)
{
    const char *m = sotto_cuda_error_message(cu);
    return sotto_status_set(st, rc, "sensevoice cuda: %s: %s", what, m[0] ? m : sotto_strerror(rc));
}

static int dev_vec(sotto_cuda *cu, const float *h, int n, float **d, sotto_status *st)
{
    if (!h) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "sensevoice cuda: vector missing");
    int rc = sotto_cuda_alloc(cu, sizeof(float) * (size_t)n, (void **)d);
    if (!rc) rc = sotto_cuda_upload(cu, *d, h, sizeof(float) * (size_t)n);
    return rc ? device_status(cu, rc, "upload", st) : SOTTO_OK;
}

static void block_free(sotto_cuda *cu, sensevoice_cuda_block *b)
{
    float *v[] = {b->norm1_w, b->norm1_b, b->qkv_b,   b->out_b,
                  b->ff1_b,   b->ff2_b,   b->norm2_w, b->norm2_b};
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(v); i++)
        sotto_cuda_free(cu, v[i]);
    sotto_cuda_linear_w_free(cu, &b->qkv);
    sotto_cuda_linear_w_free(cu, &b->out);
    sotto_cuda_linear_w_free(cu, &b->ff1);
    sotto_cuda_linear_w_free(cu, &b->ff2);
    sotto_cuda_conv1d_w_free(cu, &b->fsmn);
    memset(b, 0, sizeof *b);
}

static int block_upload(sotto_cuda *cu, const sensevoice_cfg *c, const sensevoice_block *s,
                        sensevoice_cuda_block *b, sotto_status *st)
{
    const int d = c->dim, f = c->ffn_dim;
    int rc;
    b->in = s->in;
    if ((rc = dev_vec(cu, s->norm1_w, s->in, &b->norm1_w, st)) ||
        (rc = dev_vec(cu, s->norm1_b, s->in, &b->norm1_b, st)) ||
        (rc = sotto_cuda_linear_w_from_cpu(cu, &b->qkv, &s->qkv, st)) ||
        (rc = dev_vec(cu, s->qkv_b, 3 * d, &b->qkv_b, st)) ||
        (rc = sotto_cuda_conv1d_w_from_cpu(cu, &b->fsmn, &s->fsmn, st)) ||
        (rc = sotto_cuda_linear_w_from_cpu(cu, &b->out, &s->out, st)) ||
        (rc = dev_vec(cu, s->out_b, d, &b->out_b, st)) ||
        (rc = dev_vec(cu, s->norm2_w, d, &b->norm2_w, st)) ||
        (rc = dev_vec(cu, s->norm2_b, d, &b->norm2_b, st)) ||
        (rc = sotto_cuda_linear_w_from_cpu(cu, &b->ff1, &s->ff1, st)) ||
        (rc = dev_vec(cu, s->ff1_b, f, &b->ff1_b, st)) ||
        (rc = sotto_cuda_linear_w_from_cpu(cu, &b->ff2, &s->ff2, st)) ||
        (rc = dev_vec(cu, s->ff2_b, d, &b->ff2_b, st)))
        return rc;
    /* the forward sizes its buffers from the configuration: the weights must agree with it */
    if (b->qkv.n_out != 3 * d || b->qkv.n_in != s->in || !b->fsmn.depthwise || b->fsmn.c_in != d ||
        b->fsmn.k != c->kernel_size || b->fsmn.stride != 1 || b->fsmn.dilation != 1 ||
        b->out.n_out != d || b->out.n_in != d || b->ff1.n_out != f || b->ff1.n_in != d ||
        b->ff2.n_out != d || b->ff2.n_in != f)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "sensevoice cuda: a block's weights disagree with the "
                                "configuration (dim %d, ffn %d, kernel %d)",
                                d, f, c->kernel_size);
    return SOTTO_OK;
}

void sensevoice_cuda_weights_free(sotto_cuda *cu, sensevoice_cuda_weights *w)
{
    if (!w) return;
    if (w->blocks) {
        for (int i = 0; i < w->cfg.n_blocks; i++)
            block_free(cu, &w->blocks[i]);
        free(w->blocks);
    }
    sotto_cuda_free(cu, w->after_w);
    sotto_cuda_free(cu, w->after_b);
    memset(w, 0, sizeof *w);
}

int sensevoice_cuda_weights_init(sotto_cuda *cu, sensevoice_cuda_weights *w, const sensevoice *sv,
                                 sotto_status *st)
{
    if (!w) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "sensevoice cuda: NULL weights");
    memset(w, 0, sizeof *w);
    if (!cu || !sv || !sv->blocks || sv->cfg.n_blocks < 1 || !sv->blocks[0].qkv_b)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "sensevoice cuda: NULL context or SenseVoice not loaded");
    w->cfg = sv->cfg;
    w->blocks = calloc((size_t)sv->cfg.n_blocks, sizeof *w->blocks);
    if (!w->blocks) {
        memset(w, 0, sizeof *w);
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    }
    int rc = SOTTO_OK;
    for (int i = 0; i < sv->cfg.n_blocks && !rc; i++)
        rc = block_upload(cu, &sv->cfg, &sv->blocks[i], &w->blocks[i], st);
    if (!rc && !(rc = dev_vec(cu, sv->after_w, sv->cfg.dim, &w->after_w, st)))
        rc = dev_vec(cu, sv->after_b, sv->cfg.dim, &w->after_b, st);
    if (rc) sensevoice_cuda_weights_free(cu, w);
    return rc;
}

size_t sensevoice_cuda_scratch(const sensevoice_cuda_weights *w, int64_t T_lfr)
{
    if (!w || !w->blocks || T_lfr < 1) return 0;
    return sotto_cuda_attention_scratch(T_lfr + SENSEVOICE_N_QUERIES, w->cfg.n_heads, 0, 0);
}

/* ---- activations -------------------------------------------------------------------------- */

void sensevoice_cuda_free(sotto_cuda *cu, sensevoice_cuda *s)
{
    if (!s) return;
    float *bufs[] = {s->xin, s->cur, s->h, s->qkv, s->mem, s->att, s->ffh, s->y};
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(bufs); i++)
        sotto_cuda_free(cu, bufs[i]);
    free(s->xin_host);
    free(s);
}

int sensevoice_cuda_create(sotto_cuda *cu, const sensevoice_cuda_weights *w, int64_t max_lfr,
                           sensevoice_cuda **out, sotto_status *st)
{
    if (!out) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "sensevoice cuda: out is NULL");
    *out = NULL;
    if (!cu || !w || !w->blocks || max_lfr < 1 || max_lfr > (1 << 22))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "sensevoice cuda: NULL argument or max_lfr %lld out of range",
                                (long long)max_lfr);
    const sensevoice_cfg *c = &w->cfg;
    const size_t T = (size_t)max_lfr + SENSEVOICE_N_QUERIES;
    const size_t in = (size_t)c->input_size, d = (size_t)c->dim;
    const size_t hw = in > d ? in : d;
    sensevoice_cuda *s = calloc(1, sizeof *s);
    if (!s || !(s->xin_host = malloc(sizeof(float) * T * in))) {
        free(s);
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    }
    s->max_lfr = max_lfr;
    const struct {
        float **p;
        size_t n;
    } bufs[] = {{&s->xin, T * in},
                {&s->cur, T * d},
                {&s->h, T * hw},
                {&s->qkv, T * 3 * d},
                {&s->mem, T * d},
                {&s->att, T * d},
                {&s->ffh, T * (size_t)c->ffn_dim},
                {&s->y, (size_t)max_lfr * d}};
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(bufs); i++) {
        const int rc = sotto_cuda_alloc(cu, sizeof(float) * bufs[i].n, (void **)bufs[i].p);
        if (rc) {
            device_status(cu, rc, "activation buffer", st);
            sensevoice_cuda_free(cu, s);
            return rc;
        }
    }
    *out = s;
    return SOTTO_OK;
}

/* ---- forward ------------------------------------------------------------------------------ */

/* One block on T positions: x[T][b->in] → cur[T][d] (x may be cur only when in == d). */
static int block_forward(sotto_cuda *cu, const sensevoice_cfg *c, const sensevoice_cuda_block *b,
                         sensevoice_cuda *s, const float *x, int64_t T)
{
    const int d = c->dim, H = c->n_heads, D = d / H, f = c->ffn_dim;
    const int left = (c->kernel_size - 1) / 2 + c->sanm_shift;
    int rc;
    if ((rc = sotto_cuda_layernorm(cu, x, T, b->in, b->norm1_w, b->norm1_b, c->norm_eps, s->h)) ||
        (rc = sotto_cuda_linear(cu, &b->qkv, b->qkv_b, s->h, T, s->qkv)))
        return rc;
    /* block 0 (in ≠ d) has no residual: its memory is the start of the new stream */
    float *mem = b->in == d ? s->mem : s->cur;
    if ((rc = sotto_cuda_fsmn(cu, &b->fsmn, s->qkv + 2 * d, 3 * (int64_t)d, T, d, left, mem, d)) ||
        (rc = sotto_cuda_attention(cu, s->qkv, s->qkv + d, s->qkv + 2 * d, 3 * (int64_t)d, T, H, D,
                                   0, 0, s->att, d)))
        return rc;
    if (b->in == d && (rc = sotto_cuda_residual(cu, s->cur, s->mem, NULL, T, d, s->cur))) return rc;
    /* cur += linear_out(att); then cur += w_2(ReLU(w_1(LN2(cur)))) */
    if ((rc = sotto_cuda_linear_ex(cu, &b->out, b->out_b, s->att, d, T, s->cur, d, 1)) ||
        (rc = sotto_cuda_layernorm(cu, s->cur, T, d, b->norm2_w, b->norm2_b, c->norm_eps, s->h)) ||
        (rc = sotto_cuda_linear(cu, &b->ff1, b->ff1_b, s->h, T, s->ffh)) ||
        (rc = sotto_cuda_leaky_relu(cu, s->ffh, T * f, 0.0f, s->ffh)))
        return rc;
    return sotto_cuda_linear_ex(cu, &b->ff2, b->ff2_b, s->ffh, f, T, s->cur, d, 1);
}

int sensevoice_cuda_encode(sotto_cuda *cu, const sensevoice_cuda_weights *w, sensevoice_cuda *s,
                           const sensevoice *sv, const int32_t *queries, const float *x_host,
                           int64_t T_lfr, float *y_host)
{
    if (!cu || !w || !w->blocks || !s || !sv || !x_host || !y_host || T_lfr < 1 ||
        T_lfr > s->max_lfr || sv->cfg.input_size != w->cfg.input_size || sv->cfg.dim != w->cfg.dim)
        return SOTTO_ERR_INVALID_ARG;
    const sensevoice_cfg *c = &w->cfg;
    const int in = c->input_size, d = c->dim, nq = SENSEVOICE_N_QUERIES;
    const int64_t T = T_lfr + nq;
    int rc = sensevoice_embed_input(sv, queries, x_host, T_lfr, s->xin_host);
    if (rc) return rc;
    const size_t mark = sotto_cuda_scratch_used(cu);
    if ((rc = sotto_cuda_upload(cu, s->xin, s->xin_host, sizeof(float) * (size_t)(T * in))))
        return rc;
    rc = block_forward(cu, c, &w->blocks[0], s, s->xin, T);
    for (int i = 1; i < c->n_blocks && !rc; i++)
        rc = block_forward(cu, c, &w->blocks[i], s, s->cur, T);
    if (!rc)
        rc = sotto_cuda_layernorm(cu, s->cur + (int64_t)nq * d, T_lfr, d, w->after_w, w->after_b,
                                  c->norm_eps, s->y);
    sotto_cuda_scratch_rewind(cu, mark);
    if (rc) return rc;
    if ((rc = sotto_cuda_download(cu, y_host, s->y, sizeof(float) * (size_t)(T_lfr * d))))
        return rc;
    for (int64_t i = 0; i < T_lfr * d; i++)
        if (!isfinite(y_host[i])) return SOTTO_ERR_INTERNAL;
    return SOTTO_OK;
}

#endif /* SOTTO_HAVE_CUDA */
