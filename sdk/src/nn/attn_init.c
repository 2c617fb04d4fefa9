/*
 * Load-time half of the transformer layers (nn/attn.h): checks a layer's configuration and
 * the shapes of its tensors, converts them to float, stacks separate Q/K/V projections into
 * one fused [3d][d] weight, repacks the four Linear weights (sotto_linear_w), copies the
 * vectors the layer owns, prepares RoPE frequencies, and allocates KV caches. Nothing here
 * runs on the processing path.
 */
#include <math.h>
#include <string.h>

#include "nn/attn.h"

/* Largest model dimension accepted (keeps every size product far from overflow). */
#define MAX_DIM (1 << 16)
/* Largest KV cache, in frames. */
#define MAX_CAPACITY (1 << 24)

static int round16(int n)
{
    return (n + 15) & ~15;
}

/* ---- RoPE --------------------------------------------------------------------------------- */

int sotto_rope_init(sotto_rope *r, sotto_rope_kind kind, int head_dim, double theta,
                    const sotto_alloc *a, sotto_status *st)
{
    if (!r || !a) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    memset(r, 0, sizeof *r);
    if (kind != SOTTO_ROPE_NONE && kind != SOTTO_ROPE_INTERLEAVED && kind != SOTTO_ROPE_HALF)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "rope: unknown kind %d", (int)kind);
    if (head_dim < 1 || head_dim > MAX_DIM)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "rope: head dimension %d", head_dim);
    r->kind = kind;
    r->head_dim = head_dim;
    if (kind == SOTTO_ROPE_NONE) return SOTTO_OK;
    if (head_dim % 2 || !(theta > 0) || !isfinite(theta))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "rope: needs an even head dimension (%d) and theta > 0 (%g)",
                                head_dim, theta);
    const int half = head_dim / 2;
    if (!(r->freq = sotto_malloc(a, sizeof(double) * (size_t)half)))
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    /* f_i = θ^(−2i/D): Mimi writes exp(−ln θ · 2i/D), Llama 1/θ^(2i/D); equal in exact math */
    for (int i = 0; i < half; i++)
        r->freq[i] = exp(-log(theta) * (2.0 * i / head_dim));
    return SOTTO_OK;
}

void sotto_rope_free(sotto_rope *r, const sotto_alloc *a)
{
    if (!r) return;
    sotto_free(a, r->freq);
    memset(r, 0, sizeof *r);
}

/* ---- configuration ------------------------------------------------------------------------ */

sotto_tlayer_cfg sotto_tlayer_cfg_default(int dim, int n_heads, int ffn_dim)
{
    sotto_tlayer_cfg c;
    memset(&c, 0, sizeof c);
    c.dim = dim;
    c.n_heads = n_heads;
    c.ffn_dim = ffn_dim;
    c.norm = SOTTO_NORM_LAYER;
    c.norm_eps = 1e-5f;
    c.act = SOTTO_ACT_GELU_ERF;
    c.rope = SOTTO_ROPE_NONE;
    c.rope_theta = 10000.0f;
    return c;
}

static int check_cfg(const sotto_tlayer_cfg *c, sotto_status *st)
{
    if (c->dim < 1 || c->dim > MAX_DIM || c->n_heads < 1 || c->dim % c->n_heads || c->ffn_dim < 1 ||
        c->ffn_dim > 4 * MAX_DIM)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "transformer layer: bad shape (dim %d, heads %d, ffn %d)", c->dim,
                                c->n_heads, c->ffn_dim);
    if ((c->norm != SOTTO_NORM_LAYER && c->norm != SOTTO_NORM_RMS) || !(c->norm_eps > 0))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "transformer layer: bad norm (kind %d, eps %g)", (int)c->norm,
                                (double)c->norm_eps);
    if (c->act != SOTTO_ACT_GELU_ERF && c->act != SOTTO_ACT_GELU_TANH && c->act != SOTTO_ACT_RELU &&
        c->act != SOTTO_ACT_SILU)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "transformer layer: unknown activation %d", (int)c->act);
    if (c->window < 0 || c->causal < 0 || c->causal > 1)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "transformer layer: bad mask (causal %d, window %d)", c->causal,
                                c->window);
    return SOTTO_OK;
}

/* ---- layer from float arrays -------------------------------------------------------------- */

void sotto_tlayer_free(sotto_tlayer *L, const sotto_alloc *a)
{
    if (!L) return;
    sotto_linear_w_free(&L->qkv, a);
    sotto_linear_w_free(&L->out, a);
    sotto_linear_w_free(&L->ff1, a);
    sotto_linear_w_free(&L->ff2, a);
    float **vecs[] = {&L->norm1_w, &L->norm1_b, &L->norm2_w, &L->norm2_b, &L->qkv_b,
                      &L->out_b,   &L->ff1_b,   &L->ff2_b,   &L->ls1,     &L->ls2};
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(vecs); i++)
        sotto_free(a, *vecs[i]);
    sotto_rope_free(&L->rope, a);
    memset(L, 0, sizeof *L);
}

/* *dst = a copy of src[n] (NULL when src is NULL). */
static int copy_vec(float **dst, const float *src, int64_t n, const sotto_alloc *a)
{
    *dst = NULL;
    if (!src) return SOTTO_OK;
    if (!(*dst = sotto_malloc(a, sizeof(float) * (size_t)n))) return SOTTO_ERR_OUT_OF_MEMORY;
    memcpy(*dst, src, sizeof(float) * (size_t)n);
    return SOTTO_OK;
}

/* The init body; on error the caller frees the partial layer. */
static int init_f32(sotto_tlayer *L, const sotto_tlayer_cfg *cfg, const sotto_tlayer_f32 *w,
                    const sotto_alloc *a, sotto_status *st)
{
    int rc = check_cfg(cfg, st);
    if (rc) return rc;
    const int d = cfg->dim, D = d / cfg->n_heads, F = cfg->ffn_dim;
    const int fused = w->qkv_w != NULL, split = w->q_w || w->k_w || w->v_w;
    if (fused == split || (split && !(w->q_w && w->k_w && w->v_w)) ||
        (fused && (w->q_b || w->k_b || w->v_b)) || (split && w->qkv_b))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "transformer layer: give either qkv_w or all of q_w, k_w, v_w");
    if (!w->out_w || !w->ff1_w || !w->ff2_w)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "transformer layer: out_w, ff1_w and ff2_w are required");
    if (cfg->norm == SOTTO_NORM_RMS && (w->norm1_b || w->norm2_b))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "transformer layer: RMSNorm takes no bias");
    L->cfg = *cfg;
    L->head_dim = D;
    rc = sotto_rope_init(&L->rope, cfg->rope, D, cfg->rope_theta, a, st);
    if (rc) return rc;

    if (fused) {
        rc = sotto_linear_w_init_f32(&L->qkv, w->qkv_w, 3 * d, d, cfg->keep_f16, a, st);
        if (!rc && copy_vec(&L->qkv_b, w->qkv_b, 3 * (int64_t)d, a)) rc = SOTTO_ERR_OUT_OF_MEMORY;
    } else {
        /* stack [Wq; Wk; Wv] and the biases (a missing one is zero) */
        const size_t dd = (size_t)d * (size_t)d;
        float *W = sotto_malloc(a, sizeof(float) * 3 * dd);
        if (!W) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
        memcpy(W, w->q_w, sizeof(float) * dd);
        memcpy(W + dd, w->k_w, sizeof(float) * dd);
        memcpy(W + 2 * dd, w->v_w, sizeof(float) * dd);
        rc = sotto_linear_w_init_f32(&L->qkv, W, 3 * d, d, cfg->keep_f16, a, st);
        sotto_free(a, W);
        if (!rc && (w->q_b || w->k_b || w->v_b)) {
            if (!(L->qkv_b = sotto_calloc(a, 3 * (size_t)d, sizeof(float))))
                return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
            const float *b[3] = {w->q_b, w->k_b, w->v_b};
            for (int i = 0; i < 3; i++)
                if (b[i]) memcpy(L->qkv_b + (size_t)i * d, b[i], sizeof(float) * (size_t)d);
        }
    }
    if (rc) return rc;
    if ((rc = sotto_linear_w_init_f32(&L->out, w->out_w, d, d, cfg->keep_f16, a, st)) ||
        (rc = sotto_linear_w_init_f32(&L->ff1, w->ff1_w, F, d, cfg->keep_f16, a, st)) ||
        (rc = sotto_linear_w_init_f32(&L->ff2, w->ff2_w, d, F, cfg->keep_f16, a, st)))
        return rc;
    if (copy_vec(&L->out_b, w->out_b, d, a) || copy_vec(&L->ff1_b, w->ff1_b, F, a) ||
        copy_vec(&L->ff2_b, w->ff2_b, d, a) || copy_vec(&L->norm1_w, w->norm1_w, d, a) ||
        copy_vec(&L->norm1_b, w->norm1_b, d, a) || copy_vec(&L->norm2_w, w->norm2_w, d, a) ||
        copy_vec(&L->norm2_b, w->norm2_b, d, a) || copy_vec(&L->ls1, w->ls1, d, a) ||
        copy_vec(&L->ls2, w->ls2, d, a))
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    return SOTTO_OK;
}

int sotto_tlayer_init_f32(sotto_tlayer *L, const sotto_tlayer_cfg *cfg, const sotto_tlayer_f32 *w,
                          const sotto_alloc *a, sotto_status *st)
{
    if (!L) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    memset(L, 0, sizeof *L);
    if (!cfg || !w || !a) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    const int rc = init_f32(L, cfg, w, a, st);
    if (rc) {
        sotto_tlayer_free(L, a);
        if (rc == SOTTO_ERR_OUT_OF_MEMORY && st && !st->message[0])
            sotto_status_set(st, rc, "out of memory");
    }
    return rc;
}

/* ---- layer from GGUF tensors -------------------------------------------------------------- */

/* Converts tensor t (NULL: *out = NULL) after checking its shape: a matrix [rows][cols]
 * (2 dims, or 3 with a trailing 1 as a pointwise Conv1d) when cols > 0, else a vector of
 * rows elements in any shape. */
static int tensor_in(float **out, const sotto_gguf_tensor *t, int64_t rows, int64_t cols,
                     const sotto_alloc *a, sotto_status *st)
{
    *out = NULL;
    if (!t) return SOTTO_OK;
    if (cols > 0) {
        const int dims_ok = t->n_dims == 2 || (t->n_dims == 3 && t->shape[2] == 1);
        if (!dims_ok || t->shape[0] != rows || t->shape[1] != cols)
            return sotto_status_set(st, SOTTO_ERR_MODEL,
                                    "tensor '%s': shape [%lld, %lld, ...] (%d dims), expected "
                                    "[%lld, %lld]",
                                    t->name.data, (long long)t->shape[0], (long long)t->shape[1],
                                    t->n_dims, (long long)rows, (long long)cols);
        return sotto_vec_init(out, t, rows * cols, a, st);
    }
    return sotto_vec_init(out, t, rows, a, st);
}

int sotto_tlayer_init(sotto_tlayer *L, const sotto_tlayer_cfg *cfg, const sotto_tlayer_tensors *t,
                      const sotto_alloc *a, sotto_status *st)
{
    if (!L) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    memset(L, 0, sizeof *L);
    if (!cfg || !t || !a) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    int rc = check_cfg(cfg, st);
    if (rc) return rc;
    const int64_t d = cfg->dim, F = cfg->ffn_dim;
    /* every tensor with the shape it must have: matrices [rows][cols], vectors [rows] */
    const struct {
        const sotto_gguf_tensor *t;
        int64_t rows, cols;
    } in[] = {{t->norm1_w, d, 0}, {t->norm1_b, d, 0}, {t->qkv_w, 3 * d, d}, {t->qkv_b, 3 * d, 0},
              {t->q_w, d, d},     {t->k_w, d, d},     {t->v_w, d, d},       {t->q_b, d, 0},
              {t->k_b, d, 0},     {t->v_b, d, 0},     {t->out_w, d, d},     {t->out_b, d, 0},
              {t->ls1, d, 0},     {t->norm2_w, d, 0}, {t->norm2_b, d, 0},   {t->ff1_w, F, d},
              {t->ff1_b, F, 0},   {t->ff2_w, d, F},   {t->ff2_b, d, 0},     {t->ls2, d, 0}};
    enum { N_IN = SOTTO_ARRAY_LEN(in) };
    float *f[N_IN];
    memset(f, 0, sizeof f);
    for (int i = 0; i < N_IN && !rc; i++)
        rc = tensor_in(&f[i], in[i].t, in[i].rows, in[i].cols, a, st);
    if (!rc) {
        const sotto_tlayer_f32 w = {f[0],  f[1],  f[2],  f[3],  f[4],  f[5],  f[6],
                                    f[7],  f[8],  f[9],  f[10], f[11], f[12], f[13],
                                    f[14], f[15], f[16], f[17], f[18], f[19]};
        rc = sotto_tlayer_init_f32(L, cfg, &w, a, st);
    }
    for (int i = 0; i < N_IN; i++)
        sotto_free(a, f[i]);
    return rc;
}

/* ---- KV cache ----------------------------------------------------------------------------- */

void sotto_kv_cache_free(sotto_kv_cache *c, const sotto_alloc *a)
{
    if (!c) return;
    sotto_free(a, c->k);
    sotto_free(a, c->v);
    memset(c, 0, sizeof *c);
}

int sotto_kv_cache_init(sotto_kv_cache *c, const sotto_tlayer *L, int capacity,
                        const sotto_alloc *a, sotto_status *st)
{
    if (!c) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    memset(c, 0, sizeof *c);
    if (!L || !a || !L->qkv.n_in)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL or uninitialised layer");
    const int W = L->cfg.window;
    if (capacity < 1 || capacity > MAX_CAPACITY || (W > 0 && capacity < W))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "kv cache: capacity %d below the window %d, or out of range",
                                capacity, W);
    c->n_heads = L->cfg.n_heads;
    c->head_dim = L->head_dim;
    c->dim = L->cfg.dim;
    c->capacity = capacity;
    c->window = W;
    c->ldk = round16(capacity);
    c->ldv = round16(L->head_dim);
    /* zeroed: the GEMM reads key columns up to the next multiple of 16 */
    c->k = sotto_calloc(a, (size_t)c->n_heads * (size_t)c->head_dim, sizeof(float) * c->ldk);
    c->v = sotto_calloc(a, (size_t)c->n_heads * (size_t)capacity, sizeof(float) * c->ldv);
    if (!c->k || !c->v) {
        sotto_kv_cache_free(c, a);
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    }
    return SOTTO_OK;
}

void sotto_kv_cache_reset(sotto_kv_cache *c, int64_t pos0)
{
    if (!c) return;
    c->pos0 = c->pos = pos0 < 0 ? 0 : pos0;
    c->n = 0;
}
