/*
 * The transformer layer of nn/attn.h on the device (cuda_ops.h, "transformer layers"): the
 * upload of a prepared CPU layer, and the whole-sequence forward as the same sequence of
 * calls as nn/attn.c, each a CUDA layer: norm → QKV Linear → RoPE on q and k → attention →
 * output Linear → residual with LayerScale → norm → FFN → residual. Temporaries come from the
 * context's pool and are given back before each call returns. The streaming step is the same
 * sequence with attention through a sotto_cuda_kv_cache (attn.cu), split into the parts
 * nn/attn.c splits a ring into, so both backends see the same keys for every query.
 */
#include <string.h>

#include "backend/cuda/cuda_ops.h"
#include "core/core.h"
#include "nn/attn.h"

/* cuda_ops.h spells the CPU enums as plain ints. */
_Static_assert(SOTTO_ROPE_NONE == 0 && SOTTO_ROPE_INTERLEAVED == 1 && SOTTO_ROPE_HALF == 2,
               "sotto_cuda_rope.kind values");
_Static_assert(SOTTO_NORM_LAYER == 0 && SOTTO_NORM_RMS == 1, "sotto_cuda_tlayer.norm values");
_Static_assert(SOTTO_ACT_GELU_ERF == 0 && SOTTO_ACT_GELU_TANH == 1 && SOTTO_ACT_RELU == 2 &&
                   SOTTO_ACT_SILU == 3,
               "sotto_cuda_tlayer.act values");

/* ---- load time ---------------------------------------------------------------------------- */

static int device_fail(sotto_cuda *cu, int rc, const char *what, sotto_status *st)
{
    return sotto_status_set(st, rc, "%s: %s", what, sotto_cuda_error_message(cu));
}

/* *d = a device copy of n host floats, or NULL when h is NULL. */
static int dev_vec(sotto_cuda *cu, const float *h, int64_t n, float **d, sotto_status *st)
{
    *d = NULL;
    if (!h) return SOTTO_OK;
    int rc = sotto_cuda_alloc(cu, sizeof(float) * (size_t)n, (void **)d);
    if (!rc) rc = sotto_cuda_upload(cu, *d, h, sizeof(float) * (size_t)n);
    return rc ? device_fail(cu, rc, "cuda tlayer: vector upload", st) : SOTTO_OK;
}

int sotto_cuda_rope_init(sotto_cuda *cu, sotto_cuda_rope *r, const sotto_rope *src,
                         sotto_status *st)
{
    if (!cu || !r || !src) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    memset(r, 0, sizeof *r);
    if (src->kind == SOTTO_ROPE_NONE) {
        r->head_dim = src->head_dim;
        return SOTTO_OK;
    }
    if ((src->kind != SOTTO_ROPE_INTERLEAVED && src->kind != SOTTO_ROPE_HALF) || !src->freq ||
        src->head_dim < 2 || src->head_dim % 2)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "cuda rope: table not prepared");
    const size_t bytes = sizeof(double) * (size_t)(src->head_dim / 2);
    int rc = sotto_cuda_alloc(cu, bytes, (void **)&r->freq);
    if (!rc) rc = sotto_cuda_upload(cu, r->freq, src->freq, bytes);
    if (rc) {
        sotto_cuda_free(cu, r->freq);
        r->freq = NULL;
        return device_fail(cu, rc, "cuda rope", st);
    }
    r->kind = (int)src->kind;
    r->head_dim = src->head_dim;
    return SOTTO_OK;
}

void sotto_cuda_rope_free(sotto_cuda *cu, sotto_cuda_rope *r)
{
    if (!r) return;
    sotto_cuda_free(cu, r->freq);
    memset(r, 0, sizeof *r);
}

void sotto_cuda_tlayer_free(sotto_cuda *cu, sotto_cuda_tlayer *L)
{
    if (!L) return;
    sotto_cuda_rope_free(cu, &L->rope);
    sotto_cuda_linear_w_free(cu, &L->qkv);
    sotto_cuda_linear_w_free(cu, &L->out);
    sotto_cuda_linear_w_free(cu, &L->ff1);
    sotto_cuda_linear_w_free(cu, &L->ff2);
    float *v[] = {L->norm1_w, L->norm1_b, L->norm2_w, L->norm2_b, L->qkv_b,
                  L->out_b,   L->ff1_b,   L->ff2_b,   L->ls1,     L->ls2};
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(v); i++)
        sotto_cuda_free(cu, v[i]);
    memset(L, 0, sizeof *L);
}

static int tlayer_upload(sotto_cuda *cu, sotto_cuda_tlayer *L, const sotto_tlayer *s,
                         sotto_status *st)
{
    const int64_t d = s->cfg.dim, f = s->cfg.ffn_dim;
    int rc;
    if ((rc = sotto_cuda_rope_init(cu, &L->rope, &s->rope, st)) ||
        (rc = sotto_cuda_linear_w_from_cpu(cu, &L->qkv, &s->qkv, st)) ||
        (rc = sotto_cuda_linear_w_from_cpu(cu, &L->out, &s->out, st)) ||
        (rc = sotto_cuda_linear_w_from_cpu(cu, &L->ff1, &s->ff1, st)) ||
        (rc = sotto_cuda_linear_w_from_cpu(cu, &L->ff2, &s->ff2, st)) ||
        (rc = dev_vec(cu, s->norm1_w, d, &L->norm1_w, st)) ||
        (rc = dev_vec(cu, s->norm1_b, d, &L->norm1_b, st)) ||
        (rc = dev_vec(cu, s->norm2_w, d, &L->norm2_w, st)) ||
        (rc = dev_vec(cu, s->norm2_b, d, &L->norm2_b, st)) ||
        (rc = dev_vec(cu, s->qkv_b, 3 * d, &L->qkv_b, st)) ||
        (rc = dev_vec(cu, s->out_b, d, &L->out_b, st)) ||
        (rc = dev_vec(cu, s->ff1_b, f, &L->ff1_b, st)) ||
        (rc = dev_vec(cu, s->ff2_b, d, &L->ff2_b, st)) ||
        (rc = dev_vec(cu, s->ls1, d, &L->ls1, st)) || (rc = dev_vec(cu, s->ls2, d, &L->ls2, st)))
        return rc;
    return SOTTO_OK;
}

int sotto_cuda_tlayer_init(sotto_cuda *cu, sotto_cuda_tlayer *L, const sotto_tlayer *src,
                           sotto_status *st)
{
    if (!cu || !L || !src) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    memset(L, 0, sizeof *L);
    const sotto_tlayer_cfg *c = &src->cfg;
    if (c->dim < 1 || c->n_heads < 1 || src->head_dim * c->n_heads != c->dim || c->ffn_dim < 1 ||
        src->qkv.n_out != 3 * c->dim || src->qkv.n_in != c->dim || src->out.n_out != c->dim ||
        src->out.n_in != c->dim || src->ff1.n_out != c->ffn_dim || src->ff1.n_in != c->dim ||
        src->ff2.n_out != c->dim || src->ff2.n_in != c->ffn_dim || c->window < 0 ||
        (c->norm != SOTTO_NORM_LAYER && c->norm != SOTTO_NORM_RMS) || (int)c->act < 0 ||
        c->act > SOTTO_ACT_SILU)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "cuda tlayer: CPU layer not prepared");
    L->dim = c->dim;
    L->n_heads = c->n_heads;
    L->head_dim = src->head_dim;
    L->ffn_dim = c->ffn_dim;
    L->norm = (int)c->norm;
    L->norm_eps = c->norm_eps;
    L->act = (int)c->act;
    L->causal = c->causal != 0;
    L->window = c->window;
    const int rc = tlayer_upload(cu, L, src, st);
    if (rc) sotto_cuda_tlayer_free(cu, L);
    return rc;
}

/* ---- run time ----------------------------------------------------------------------------- */

/* Bytes of a pool request of n floats, rounded as the pool rounds; 0 on overflow. */
static size_t part(int64_t rows, int64_t cols)
{
    size_t n;
    if (rows < 0 || cols < 0 || sotto_mul_size((size_t)rows, (size_t)cols, &n) ||
        sotto_mul_size(n, sizeof(float), &n) || n > SIZE_MAX - 512)
        return 0;
    return (n + 255) & ~(size_t)255;
}

static int layer_ok(const sotto_cuda_tlayer *L)
{
    return L && L->dim > 0 && L->n_heads > 0 && L->head_dim * L->n_heads == L->dim &&
           L->ffn_dim > 0 && (L->qkv.w || L->qkv.wb) && (L->out.w || L->out.wb) &&
           (L->ff1.w || L->ff1.wb) && (L->ff2.w || L->ff2.wb);
}

static size_t attn_bytes(const sotto_cuda_tlayer *L, int64_t T)
{
    const size_t qkv = part(T, 3 * (int64_t)L->dim), o = part(T, L->dim);
    const size_t s = sotto_cuda_attention_scratch(T, L->n_heads, L->causal, L->window);
    if (!qkv || !o || !s || s > SIZE_MAX / 4) return 0;
    return qkv + o + s;
}

size_t sotto_cuda_tlayer_scratch(const sotto_cuda_tlayer *L, int64_t T)
{
    /* geometry only: a caller may size its pool before the weights are on the device */
    if (!L || L->dim < 1 || L->n_heads < 1 || L->head_dim * L->n_heads != L->dim ||
        L->ffn_dim < 1 || L->window < 0 || T < 1 || T > INT32_MAX)
        return 0;
    const size_t h = part(T, L->dim), a = attn_bytes(L, T), f = part(T, L->ffn_dim);
    if (!h || !a || !f) return 0;
    size_t n;
    if (sotto_add_size(2 * h, a > f ? a : f, &n)) return 0;
    return n;
}

/* A pool request for n floats; a failure is the context's (now sticky) error. */
static int take(sotto_cuda *cu, int64_t rows, int64_t cols, float **p)
{
    return sotto_cuda_scratch_alloc(cu, (size_t)rows * (size_t)cols * sizeof(float), (void **)p);
}

/* Attention of T frames through cache c: the keys and values go into the ring part by part,
 * each part's queries attending over what the ring then holds (nn/attn.c's self_attn). */
static int attend_kv(sotto_cuda *cu, const sotto_cuda_tlayer *L, sotto_cuda_kv_cache *c,
                     const float *qkv, int64_t T, float *o)
{
    const int64_t d = L->dim, ld3 = 3 * d;
    /* a ring takes at most capacity − W + 1 frames at once: the first query of a part still
     * needs the W − 1 frames before it */
    const int64_t part = c->window > 0 ? (int64_t)c->capacity - c->window + 1 : T;
    int rc = SOTTO_OK;
    for (int64_t t0 = 0; t0 < T && !rc; t0 += part) {
        const int64_t m = T - t0 < part ? T - t0 : part;
        const float *q = qkv + t0 * ld3;
        rc = sotto_cuda_kv_cache_append(cu, c, q + d, q + 2 * d, ld3, m);
        if (!rc) rc = sotto_cuda_kv_attention(cu, c, q, ld3, m, L->causal, o + t0 * d, d);
    }
    return rc;
}

/* y = out(attention(qkv(x))), positions from pos0, or from c (and through it) when not NULL. */
static int self_attn(sotto_cuda *cu, const sotto_cuda_tlayer *L, sotto_cuda_kv_cache *c,
                     const float *x, int64_t T, int64_t pos0, float *y)
{
    const int64_t d = L->dim, ld3 = 3 * d;
    const int64_t p0 = c ? c->pos : pos0;
    const size_t mark = sotto_cuda_scratch_used(cu);
    float *qkv, *o;
    int rc;
    if ((rc = take(cu, T, ld3, &qkv)) || (rc = take(cu, T, d, &o)) ||
        (rc = sotto_cuda_linear(cu, &L->qkv, L->qkv_b, x, T, qkv)) ||
        (rc = sotto_cuda_rope_apply(cu, &L->rope, qkv, ld3, T, L->n_heads, p0)) ||
        (rc = sotto_cuda_rope_apply(cu, &L->rope, qkv + d, ld3, T, L->n_heads, p0)))
        return rc;
    if (c)
        rc = attend_kv(cu, L, c, qkv, T, o);
    else
        rc = sotto_cuda_attention(cu, qkv, qkv + d, qkv + 2 * d, ld3, T, L->n_heads, L->head_dim,
                                  L->causal, L->window, o, d);
    if (rc || (rc = sotto_cuda_linear(cu, &L->out, L->out_b, o, T, y))) return rc;
    sotto_cuda_scratch_rewind(cu, mark);
    return SOTTO_OK;
}

static int ffn(sotto_cuda *cu, const sotto_cuda_tlayer *L, const float *x, int64_t T, float *y)
{
    const int64_t nf = T * L->ffn_dim;
    const size_t mark = sotto_cuda_scratch_used(cu);
    float *h;
    int rc;
    if ((rc = take(cu, T, L->ffn_dim, &h)) ||
        (rc = sotto_cuda_linear(cu, &L->ff1, L->ff1_b, x, T, h)))
        return rc;
    switch (L->act) {
    case SOTTO_ACT_GELU_ERF:
        rc = sotto_cuda_gelu_erf(cu, h, nf, h);
        break;
    case SOTTO_ACT_GELU_TANH:
        rc = sotto_cuda_gelu_tanh(cu, h, nf, h);
        break;
    case SOTTO_ACT_RELU:
        rc = sotto_cuda_leaky_relu(cu, h, nf, 0.0f, h);
        break;
    case SOTTO_ACT_SILU:
        rc = sotto_cuda_silu(cu, h, nf, h);
        break;
    default:
        rc = SOTTO_ERR_INVALID_ARG;
    }
    if (rc || (rc = sotto_cuda_linear(cu, &L->ff2, L->ff2_b, h, T, y))) return rc;
    sotto_cuda_scratch_rewind(cu, mark);
    return SOTTO_OK;
}

static int norm(sotto_cuda *cu, const sotto_cuda_tlayer *L, const float *x, int64_t T,
                const float *w, const float *b, float *y)
{
    if (L->norm == SOTTO_NORM_RMS) return sotto_cuda_rmsnorm(cu, x, T, L->dim, w, L->norm_eps, y);
    return sotto_cuda_layernorm(cu, x, T, L->dim, w, b, L->norm_eps, y);
}

/* Device pointers x and y (n floats each) are equal or disjoint. */
static int alias_ok(const float *x, const float *y, int64_t n)
{
    return x == y || x + n <= y || y + n <= x;
}

/* The argument rules of the CPU twins, then the context's state. */
static int enter(sotto_cuda *cu, const sotto_cuda_tlayer *L, const float *x, int64_t T,
                 int64_t pos0, const float *y)
{
    if (!cu || !layer_ok(L) || T < 0 || T > INT32_MAX || pos0 < 0) return SOTTO_ERR_INVALID_ARG;
    const int err = sotto_cuda_error(cu);
    if (err) return err;
    if (T > 0 && (!x || !y)) return SOTTO_ERR_INVALID_ARG;
    return SOTTO_OK;
}

int sotto_cuda_tlayer_self_attn(sotto_cuda *cu, const sotto_cuda_tlayer *L, const float *x,
                                int64_t T, int64_t pos0, float *y)
{
    int rc = enter(cu, L, x, T, pos0, y);
    if (rc || T == 0) return rc;
    if (!alias_ok(x, y, T * L->dim) || x == y) return SOTTO_ERR_INVALID_ARG;
    return self_attn(cu, L, NULL, x, T, pos0, y);
}

int sotto_cuda_tlayer_ffn(sotto_cuda *cu, const sotto_cuda_tlayer *L, const float *x, int64_t T,
                          float *y)
{
    int rc = enter(cu, L, x, T, 0, y);
    if (rc || T == 0) return rc;
    if (!alias_ok(x, y, T * L->dim) || x == y) return SOTTO_ERR_INVALID_ARG;
    return ffn(cu, L, x, T, y);
}

/* The pre-norm layer, through cache c when not NULL. */
static int layer(sotto_cuda *cu, const sotto_cuda_tlayer *L, sotto_cuda_kv_cache *c, const float *x,
                 int64_t T, int64_t pos0, float *y)
{
    const int d = L->dim;
    const size_t mark = sotto_cuda_scratch_used(cu);
    float *h, *a;
    int rc;
    if ((rc = take(cu, T, d, &h)) || (rc = take(cu, T, d, &a)) ||
        (rc = norm(cu, L, x, T, L->norm1_w, L->norm1_b, h)) ||
        (rc = self_attn(cu, L, c, h, T, pos0, a)) ||
        (rc = sotto_cuda_residual(cu, x, a, L->ls1, T, d, y)) ||
        (rc = norm(cu, L, y, T, L->norm2_w, L->norm2_b, h)) || (rc = ffn(cu, L, h, T, a)) ||
        (rc = sotto_cuda_residual(cu, y, a, L->ls2, T, d, y)))
        return rc;
    sotto_cuda_scratch_rewind(cu, mark);
    return SOTTO_OK;
}

int sotto_cuda_tlayer_forward(sotto_cuda *cu, const sotto_cuda_tlayer *L, const float *x, int64_t T,
                              int64_t pos0, float *y)
{
    int rc = enter(cu, L, x, T, pos0, y);
    if (rc || T == 0) return rc;
    if (!alias_ok(x, y, T * L->dim)) return SOTTO_ERR_INVALID_ARG;
    return layer(cu, L, NULL, x, T, pos0, y);
}

/* ---- KV cache ----------------------------------------------------------------------------- */

/* nn/attn_init.c's bound, so both backends accept the same capacities */
#define KV_MAX_CAPACITY (1 << 24)

void sotto_cuda_kv_cache_free(sotto_cuda *cu, sotto_cuda_kv_cache *c)
{
    if (!c) return;
    sotto_cuda_free(cu, c->k);
    sotto_cuda_free(cu, c->v);
    memset(c, 0, sizeof *c);
}

int sotto_cuda_kv_cache_init(sotto_cuda *cu, sotto_cuda_kv_cache *c, const sotto_cuda_tlayer *L,
                             int capacity, sotto_status *st)
{
    if (!c) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    memset(c, 0, sizeof *c);
    if (!cu || !layer_ok(L))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL or unprepared layer");
    const int W = L->window;
    if (capacity < 1 || capacity > KV_MAX_CAPACITY || W < 0 || (W > 0 && capacity < W))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "cuda kv cache: capacity %d below the window %d, or out of range",
                                capacity, W);
    c->n_heads = L->n_heads;
    c->head_dim = L->head_dim;
    c->dim = L->dim;
    c->capacity = capacity;
    c->window = W;
    const size_t bytes = (size_t)capacity * (size_t)L->dim * sizeof(float);
    /* zeroed as the CPU's: attention reads only the n filled slots, but a cache read back for
     * inspection then holds no stale NaN */
    int rc = sotto_cuda_alloc(cu, bytes, (void **)&c->k);
    if (!rc) rc = sotto_cuda_alloc(cu, bytes, (void **)&c->v);
    if (!rc) rc = sotto_cuda_memset0(cu, c->k, bytes);
    if (!rc) rc = sotto_cuda_memset0(cu, c->v, bytes);
    if (rc) {
        sotto_cuda_kv_cache_free(cu, c);
        return device_fail(cu, rc, "cuda kv cache", st);
    }
    return SOTTO_OK;
}

void sotto_cuda_kv_cache_reset(sotto_cuda_kv_cache *c, int64_t pos0)
{
    if (!c) return;
    c->pos0 = c->pos = pos0 < 0 ? 0 : pos0;
    c->n = 0;
}

/* A cache made for L's shape, its bookkeeping in range (nn/attn.c's cache_ok). */
static int cache_ok(const sotto_cuda_kv_cache *c, const sotto_cuda_tlayer *L)
{
    return c && c->k && c->v && c->n_heads == L->n_heads && c->head_dim == L->head_dim &&
           c->dim == L->dim && c->window == L->window && c->capacity >= 1 &&
           (c->window == 0 || c->capacity >= c->window) && c->n >= 0 && c->n <= c->capacity &&
           c->pos >= c->pos0;
}

size_t sotto_cuda_tlayer_step_scratch(const sotto_cuda_tlayer *L, const sotto_cuda_kv_cache *c,
                                      int64_t n)
{
    if (!layer_ok(L) || !cache_ok(c, L) || n < 1 || n > INT32_MAX) return 0;
    const size_t h = part(n, L->dim), qkv = part(n, 3 * (int64_t)L->dim), o = part(n, L->dim);
    const size_t s = sotto_cuda_kv_attention_scratch(n, L->n_heads, c->capacity);
    const size_t f = part(n, L->ffn_dim);
    if (!h || !qkv || !o || !s || !f || s > SIZE_MAX / 4) return 0;
    const size_t a = qkv + o + s;
    size_t total;
    if (sotto_add_size(2 * h, a > f ? a : f, &total)) return 0;
    return total;
}

/* The argument rules of sotto_tlayer_step, then the context's state. */
static int enter_kv(sotto_cuda *cu, const sotto_cuda_tlayer *L, sotto_cuda_kv_cache *c,
                    const float *x, int64_t n, const float *y)
{
    if (!cu || !layer_ok(L) || !cache_ok(c, L) || n < 0 || n > INT32_MAX)
        return SOTTO_ERR_INVALID_ARG;
    if (c->window == 0 && n > (int64_t)c->capacity - c->n) return SOTTO_ERR_STATE;
    const int err = sotto_cuda_error(cu);
    if (err) return err;
    if (n > 0 && (!x || !y)) return SOTTO_ERR_INVALID_ARG;
    return SOTTO_OK;
}

int sotto_cuda_tlayer_step(sotto_cuda *cu, const sotto_cuda_tlayer *L, sotto_cuda_kv_cache *c,
                           const float *x, int64_t n, float *y)
{
    int rc = enter_kv(cu, L, c, x, n, y);
    if (rc || n == 0) return rc;
    if (!alias_ok(x, y, n * L->dim)) return SOTTO_ERR_INVALID_ARG;
    return layer(cu, L, c, x, n, 0, y);
}

int sotto_cuda_tlayer_self_attn_kv(sotto_cuda *cu, const sotto_cuda_tlayer *L,
                                   sotto_cuda_kv_cache *c, const float *x, int64_t n, float *y)
{
    int rc = enter_kv(cu, L, c, x, n, y);
    if (rc || n == 0) return rc;
    if (!alias_ok(x, y, n * L->dim) || x == y) return SOTTO_ERR_INVALID_ARG;
    return self_attn(cu, L, c, x, n, 0, y);
}
