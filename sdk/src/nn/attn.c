/*
 * Processing half of the transformer layers (nn/attn.h). A layer is a sequence of calls into
 * the layer library: norm, the fused QKV Linear, RoPE on q and k, attention, the output
 * Linear, LayerScale and residual, norm, FFN.
 *
 * Attention runs per head on keys stored transposed, k[D][ldk] (one column per frame), and
 * values v[frames][ldv], the layouts sotto_linear_ex reads as Linear weights: the scores of a
 * block of up to QBLOCK queries are one GEMM S = q·kᵀ, each row is scaled, masked (−inf) and
 * put through the context's softmax (max-subtracted, so exp sees values ≤ 0 and masked keys
 * become exactly 0), and the head's output is a second GEMM S·v written into its D columns
 * of o[T][d]. Both GEMMs use the context's kernels and pool as any Linear does. A whole
 * sequence builds this layout in scratch; a stream keeps it in its sotto_kv_cache, where a
 * frame at position p sits in slot (p − pos0) mod capacity.
 */
#include <math.h>
#include <string.h>

#include "nn/attn.h"

/* Queries per score block: bounds the score scratch at QBLOCK × keys floats. */
#define QBLOCK 64

static int64_t r16(int64_t n)
{
    return (n + 15) & ~(int64_t)15;
}

/* Accumulates the size of a scratch part of a·b floats (rounded to 16); -1 on overflow. */
static int part_add(size_t *acc, int64_t a, int64_t b)
{
    size_t n;
    if (a < 0 || b < 0 || sotto_mul_size((size_t)a, (size_t)b, &n) || n > SIZE_MAX - 16 ||
        sotto_add_size(*acc, (n + 15) & ~(size_t)15, acc))
        return -1;
    return 0;
}

static int layer_ok(const sotto_tlayer *L)
{
    return L && L->cfg.dim > 0 && L->cfg.n_heads > 0 &&
           L->head_dim * L->cfg.n_heads == L->cfg.dim && L->qkv.n_out == 3 * L->cfg.dim &&
           L->out.n_in == L->cfg.dim && L->ff1.n_in == L->cfg.dim && L->ff2.n_out == L->cfg.dim &&
           (L->qkv.w || L->qkv.w16 || L->qkv.h16);
}

static int cache_ok(const sotto_kv_cache *c, const sotto_tlayer *L)
{
    return c && c->k && c->v && c->n_heads == L->cfg.n_heads && c->head_dim == L->head_dim &&
           c->dim == L->cfg.dim && c->window == L->cfg.window && c->capacity >= 1 &&
           (c->window == 0 || c->capacity >= c->window) && c->n >= 0 && c->n <= c->capacity &&
           c->pos >= c->pos0;
}

/* ---- RoPE --------------------------------------------------------------------------------- */

int sotto_rope_apply(const sotto_rope *r, float *x, int64_t ldx, int64_t T, int n_heads,
                     int64_t pos0, float *cs)
{
    if (!r || T < 0 || n_heads < 1 || pos0 < 0 || ldx < (int64_t)n_heads * r->head_dim)
        return SOTTO_ERR_INVALID_ARG;
    if (r->kind == SOTTO_ROPE_NONE || T == 0) return SOTTO_OK;
    if (!x || !cs || !r->freq || r->head_dim < 2 || r->head_dim % 2) return SOTTO_ERR_INVALID_ARG;
    const int D = r->head_dim, half = D / 2;
    /* pair i is (x[a·i], x[a·i + b]): interleaved (2i, 2i+1), half-split (i, i + D/2) */
    const int a = r->kind == SOTTO_ROPE_INTERLEAVED ? 2 : 1;
    const int b = r->kind == SOTTO_ROPE_INTERLEAVED ? 1 : half;
    float *cosv = cs, *sinv = cs + half;
    for (int64_t t = 0; t < T; t++) {
        const double p = (double)(pos0 + t);
        for (int i = 0; i < half; i++) {
            const double ang = p * r->freq[i];
            cosv[i] = (float)cos(ang);
            sinv[i] = (float)sin(ang);
        }
        float *row = x + t * ldx;
        for (int h = 0; h < n_heads; h++) {
            float *xh = row + (int64_t)h * D;
            for (int i = 0; i < half; i++) {
                const float x0 = xh[a * i], x1 = xh[a * i + b];
                xh[a * i] = x0 * cosv[i] - x1 * sinv[i];
                xh[a * i + b] = x0 * sinv[i] + x1 * cosv[i];
            }
        }
    }
    return SOTTO_OK;
}

/* ---- attention core ----------------------------------------------------------------------- */

/* Keys and values as attention reads them: n frames in slots [0, n), the oldest (position
 * p_first) in slot s_first and the rest following it around the ring of cap slots. */
typedef struct kv_view {
    const float *k, *v; /* k[h][D][ldk], v[h][cap][ldv] */
    int ldk, ldv, cap;
    int n, s_first;
    int64_t p_first;
} kv_view;

/* Queries q[m] (row stride ldq, position t0 + row) of every head against the view:
 * o[m][d] (row stride d). S: min(m, QBLOCK)·n floats. */
static int attend(const sotto_cpu *ctx, const sotto_tlayer *L, const kv_view *kv, const float *q,
                  int64_t ldq, int64_t m, int64_t t0, float *o, float *S)
{
    const int d = L->cfg.dim, D = L->head_dim, H = L->cfg.n_heads, n = kv->n;
    const int causal = L->cfg.causal, W = L->cfg.window;
    const float scale = (float)(1.0 / sqrt((double)D));
    int rc = SOTTO_OK;
    for (int h = 0; h < H && !rc; h++) {
        /* kᵀ and v of head h as Linear weights: scores = q·kᵀ (K = D, N = n), o = P·v
         * (K = n, N = D) */
        float *kh = (float *)(kv->k + (int64_t)h * D * kv->ldk);
        float *vh = (float *)(kv->v + (int64_t)h * kv->cap * kv->ldv);
        const sotto_linear_w wk = {.n_out = n, .n_in = D, .ldw = kv->ldk, .w = kh};
        const sotto_linear_w wv = {.n_out = D, .n_in = n, .ldw = kv->ldv, .w = vh};
        for (int64_t b0 = 0; b0 < m && !rc; b0 += QBLOCK) {
            const int64_t mb = m - b0 < QBLOCK ? m - b0 : QBLOCK;
            rc = sotto_linear_ex(ctx, &wk, NULL, q + b0 * ldq + (int64_t)h * D, ldq, mb, S, n, 0);
            if (rc) break;
            for (int64_t r = 0; r < mb; r++) {
                const int64_t t = t0 + b0 + r;
                /* allowed key positions [lo, hi] */
                const int64_t lo = W > 0 ? t - W + 1 : INT64_MIN;
                const int64_t hi = causal ? t : (W > 0 ? t + W - 1 : INT64_MAX);
                float *row = S + r * n;
                /* slots [s_first, n) hold p_first + (s − s_first), slots [0, s_first) follow */
                const int64_t p_a = kv->p_first - kv->s_first;
                const int64_t p_b = kv->p_first + (n - kv->s_first);
                for (int s = 0; s < n; s++) {
                    const int64_t p = s >= kv->s_first ? p_a + s : p_b + s;
                    row[s] = p >= lo && p <= hi ? row[s] * scale : -INFINITY;
                }
            }
            if ((rc = sotto_softmax(ctx, S, mb, n, S))) break;
            rc = sotto_linear_ex(ctx, &wv, NULL, S, n, mb, o + b0 * d + (int64_t)h * D, d, 0);
        }
    }
    return rc;
}

/* Stores frames [0, m) of k and v (rows ldq apart, head h at channel h·D) in slots
 * first, first + 1, ... (mod cap) of the per-head layouts. */
static void store_kv(const float *k, const float *v, int64_t ldq, int64_t m, int H, int D, float *K,
                     int ldk, float *V, int ldv, int cap, int first)
{
    for (int64_t t = 0; t < m; t++) {
        const int64_t slot = (first + t) % cap;
        for (int h = 0; h < H; h++) {
            const float *kr = k + t * ldq + (int64_t)h * D, *vr = v + t * ldq + (int64_t)h * D;
            float *Kh = K + (int64_t)h * D * ldk + slot;
            for (int i = 0; i < D; i++)
                Kh[(int64_t)i * ldk] = kr[i];
            memcpy(V + ((int64_t)h * cap + slot) * ldv, vr, sizeof(float) * (size_t)D);
        }
    }
}

/* ---- scratch ------------------------------------------------------------------------------ */

/* Scratch of the attention sublayer for T queries over at most n_keys keys; with_kv adds the
 * per-head key/value layout of a whole sequence (n_keys = T). */
static size_t attn_scratch(const sotto_tlayer *L, int64_t T, int64_t n_keys, int with_kv)
{
    const int64_t d = L->cfg.dim, D = L->head_dim, H = L->cfg.n_heads;
    size_t s = 0;
    const int64_t qb = T < QBLOCK ? T : QBLOCK;
    if (part_add(&s, T, 3 * d) || part_add(&s, T, d) || part_add(&s, qb > 0 ? qb : 1, n_keys) ||
        part_add(&s, D, 1))
        return 0;
    if (with_kv && (part_add(&s, H * D, r16(T)) || part_add(&s, H * T, r16(D)))) return 0;
    return s;
}

static size_t ffn_scratch(const sotto_tlayer *L, int64_t T)
{
    size_t s = 0;
    return part_add(&s, T, L->cfg.ffn_dim) ? 0 : s;
}

/* The layer's own part (normalised input and a sublayer's output) plus the larger sublayer. */
static size_t layer_scratch(const sotto_tlayer *L, int64_t T, size_t attn)
{
    size_t s = 0;
    const size_t f = ffn_scratch(L, T);
    if (!attn || !f || part_add(&s, T, L->cfg.dim) || part_add(&s, T, L->cfg.dim) ||
        sotto_add_size(s, attn > f ? attn : f, &s))
        return 0;
    return s;
}

size_t sotto_tlayer_scratch_size(const sotto_tlayer *L, int64_t T)
{
    if (!layer_ok(L) || T < 0 || T > INT32_MAX) return 0;
    return layer_scratch(L, T, attn_scratch(L, T, T, 1));
}

size_t sotto_tlayer_step_scratch_size(const sotto_tlayer *L, const sotto_kv_cache *c, int64_t n)
{
    if (!layer_ok(L) || !cache_ok(c, L) || n < 0 || n > INT32_MAX) return 0;
    return layer_scratch(L, n, attn_scratch(L, n, c->capacity, 0));
}

/* ---- sublayers ---------------------------------------------------------------------------- */

/* Checks that a step of T frames fits an unwindowed cache. */
static int cache_room(const sotto_kv_cache *c, int64_t T)
{
    return c->window > 0 || T <= (int64_t)c->capacity - c->n;
}

static int self_attn(const sotto_cpu *ctx, const sotto_tlayer *L, sotto_kv_cache *c, const float *x,
                     int64_t T, int64_t pos0, float *y, float *scratch)
{
    const int64_t d = L->cfg.dim, D = L->head_dim, H = L->cfg.n_heads, ld3 = 3 * d;
    float *qkv = scratch, *o = qkv + r16(T * ld3), *S = o + r16(T * d);
    const int64_t qb = T < QBLOCK ? T : QBLOCK;
    float *cs = S + r16(qb * (c ? c->capacity : T));
    const int64_t p0 = c ? c->pos : pos0;
    int rc = sotto_linear(ctx, &L->qkv, L->qkv_b, x, T, qkv);
    if (!rc) rc = sotto_rope_apply(&L->rope, qkv, ld3, T, (int)H, p0, cs);
    if (!rc) rc = sotto_rope_apply(&L->rope, qkv + d, ld3, T, (int)H, p0, cs);
    if (rc) return rc;
    if (!c) {
        /* whole sequence: keys and values of all T frames in scratch */
        float *K = cs + r16(D), *V = K + r16(H * D * r16(T));
        const int ldk = (int)r16(T), ldv = (int)r16(D);
        for (int64_t i = 0; i < H * D; i++)
            memset(K + i * ldk + T, 0, sizeof(float) * (size_t)(ldk - T));
        store_kv(qkv + d, qkv + 2 * d, ld3, T, (int)H, (int)D, K, ldk, V, ldv, (int)T, 0);
        const kv_view kv = {.k = K,
                            .v = V,
                            .ldk = ldk,
                            .ldv = ldv,
                            .cap = (int)T,
                            .n = (int)T,
                            .s_first = 0,
                            .p_first = pos0};
        rc = attend(ctx, L, &kv, qkv, ld3, T, pos0, o, S);
    } else {
        /* a ring takes at most capacity − W + 1 frames at once: the first query of a part
         * still needs the W − 1 frames before it */
        const int64_t part = c->window > 0 ? (int64_t)c->capacity - c->window + 1 : T;
        for (int64_t t0 = 0; t0 < T && !rc; t0 += part) {
            const int64_t m = T - t0 < part ? T - t0 : part;
            const int first = (int)((c->pos - c->pos0) % c->capacity);
            store_kv(qkv + t0 * ld3 + d, qkv + t0 * ld3 + 2 * d, ld3, m, (int)H, (int)D, c->k,
                     c->ldk, c->v, c->ldv, c->capacity, first);
            c->pos += m;
            c->n = c->n + m < c->capacity ? (int)(c->n + m) : c->capacity;
            const int64_t p_first = c->pos - c->n;
            const kv_view kv = {.k = c->k,
                                .v = c->v,
                                .ldk = c->ldk,
                                .ldv = c->ldv,
                                .cap = c->capacity,
                                .n = c->n,
                                .s_first = (int)((p_first - c->pos0) % c->capacity),
                                .p_first = p_first};
            rc = attend(ctx, L, &kv, qkv + t0 * ld3, ld3, m, c->pos - m, o + t0 * d, S);
        }
    }
    if (!rc) rc = sotto_linear(ctx, &L->out, L->out_b, o, T, y);
    return rc;
}

int sotto_tlayer_self_attn(const sotto_cpu *ctx, const sotto_tlayer *L, sotto_kv_cache *kv,
                           const float *x, int64_t T, int64_t pos0, float *y, float *scratch)
{
    if (!ctx || !layer_ok(L) || T < 0 || T > INT32_MAX || pos0 < 0 || (kv && !cache_ok(kv, L)))
        return SOTTO_ERR_INVALID_ARG;
    if (kv && !cache_room(kv, T)) return SOTTO_ERR_STATE;
    if (T == 0) return SOTTO_OK;
    if (!x || !y || !scratch || x == y) return SOTTO_ERR_INVALID_ARG;
    return self_attn(ctx, L, kv, x, T, pos0, y, scratch);
}

static int ffn(const sotto_cpu *ctx, const sotto_tlayer *L, const float *x, int64_t T, float *y,
               float *scratch)
{
    const int64_t nf = T * L->cfg.ffn_dim;
    int rc = sotto_linear(ctx, &L->ff1, L->ff1_b, x, T, scratch);
    if (rc) return rc;
    switch (L->cfg.act) {
    case SOTTO_ACT_GELU_ERF:
        rc = sotto_gelu_erf(ctx, scratch, nf, scratch);
        break;
    case SOTTO_ACT_GELU_TANH:
        rc = sotto_gelu_tanh(ctx, scratch, nf, scratch);
        break;
    case SOTTO_ACT_RELU:
        rc = sotto_leaky_relu(ctx, scratch, nf, 0.0f, scratch);
        break;
    case SOTTO_ACT_SILU:
        rc = sotto_silu(ctx, scratch, nf, scratch);
        break;
    default:
        rc = SOTTO_ERR_INVALID_ARG;
    }
    if (!rc) rc = sotto_linear(ctx, &L->ff2, L->ff2_b, scratch, T, y);
    return rc;
}

int sotto_tlayer_ffn(const sotto_cpu *ctx, const sotto_tlayer *L, const float *x, int64_t T,
                     float *y, float *scratch)
{
    if (!ctx || !layer_ok(L) || T < 0 || T > INT32_MAX) return SOTTO_ERR_INVALID_ARG;
    if (T == 0) return SOTTO_OK;
    if (!x || !y || !scratch || x == y) return SOTTO_ERR_INVALID_ARG;
    return ffn(ctx, L, x, T, y, scratch);
}

/* ---- the layer ---------------------------------------------------------------------------- */

static int norm(const sotto_cpu *ctx, const sotto_tlayer *L, const float *x, int64_t T,
                const float *w, const float *b, float *y)
{
    if (L->cfg.norm == SOTTO_NORM_RMS)
        return sotto_rmsnorm(ctx, x, T, L->cfg.dim, w, L->cfg.norm_eps, y);
    return sotto_layernorm(ctx, x, T, L->cfg.dim, w, b, L->cfg.norm_eps, y);
}

/* y = x + ls ⊙ a (ls NULL: scale 1), T rows of d; y may equal x. */
static void residual(const float *x, const float *a, const float *ls, int64_t T, int d, float *y)
{
    for (int64_t t = 0; t < T; t++) {
        const float *xr = x + t * d, *ar = a + t * d;
        float *yr = y + t * d;
        if (ls)
            for (int c = 0; c < d; c++)
                yr[c] = xr[c] + ls[c] * ar[c];
        else
            for (int c = 0; c < d; c++)
                yr[c] = xr[c] + ar[c];
    }
}

static int layer(const sotto_cpu *ctx, const sotto_tlayer *L, sotto_kv_cache *c, const float *x,
                 int64_t T, int64_t pos0, float *y, float *scratch)
{
    const int d = L->cfg.dim;
    float *h = scratch, *a = h + r16(T * d), *sub = a + r16(T * d);
    int rc = norm(ctx, L, x, T, L->norm1_w, L->norm1_b, h);
    if (!rc) rc = self_attn(ctx, L, c, h, T, pos0, a, sub);
    if (rc) return rc;
    residual(x, a, L->ls1, T, d, y);
    rc = norm(ctx, L, y, T, L->norm2_w, L->norm2_b, h);
    if (!rc) rc = ffn(ctx, L, h, T, a, sub);
    if (rc) return rc;
    residual(y, a, L->ls2, T, d, y);
    return SOTTO_OK;
}

/* x and y are the same buffer or do not overlap. */
static int alias_ok(const float *x, const float *y, int64_t n)
{
    return x == y || x + n <= y || y + n <= x;
}

int sotto_tlayer_forward(const sotto_cpu *ctx, const sotto_tlayer *L, const float *x, int64_t T,
                         int64_t pos0, float *y, float *scratch)
{
    if (!ctx || !layer_ok(L) || T < 0 || T > INT32_MAX || pos0 < 0) return SOTTO_ERR_INVALID_ARG;
    if (T == 0) return SOTTO_OK;
    if (!x || !y || !scratch || !alias_ok(x, y, T * L->cfg.dim)) return SOTTO_ERR_INVALID_ARG;
    return layer(ctx, L, NULL, x, T, pos0, y, scratch);
}

int sotto_tlayer_step(const sotto_cpu *ctx, const sotto_tlayer *L, sotto_kv_cache *c,
                      const float *x, int64_t n, float *y, float *scratch)
{
    if (!ctx || !layer_ok(L) || !cache_ok(c, L) || n < 0 || n > INT32_MAX)
        return SOTTO_ERR_INVALID_ARG;
    if (!cache_room(c, n)) return SOTTO_ERR_STATE;
    if (n == 0) return SOTTO_OK;
    if (!x || !y || !scratch || !alias_ok(x, y, n * L->cfg.dim)) return SOTTO_ERR_INVALID_ARG;
    return layer(ctx, L, c, x, n, 0, y, scratch);
}
