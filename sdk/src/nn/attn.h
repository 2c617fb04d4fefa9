/*
 * Transformer layers shared by the models: a pre-norm encoder/decoder layer (norm → multi-head
 * self-attention with a fused QKV projection → optional LayerScale → residual; norm → FFN →
 * optional LayerScale → residual), rotary position embeddings in the two conventions found in
 * the wild, causal and local-window masks, and a key/value cache for streaming. Built on the
 * layer library (nn/ops.h) and following its conventions: activations are time-major x[T][C];
 * *_init runs at load time (converts, repacks, may allocate); the run functions validate
 * their arguments, write into caller buffers, take scratch from the caller (sized by the
 * *_scratch_size functions) and never allocate, lock or log. They return SOTTO_OK or a
 * negative sotto_error.
 *
 * Attention. With d = dim, H = n_heads and head dimension D = d/H, one Linear [3d][d] gives
 * q, k and v for every frame (rows [0, d), [d, 2d), [2d, 3d) of the weight, the layout of
 * torch nn.MultiheadAttention's in_proj_weight); head h uses channels [h·D, (h+1)·D) of each.
 * RoPE (if any) rotates q and k of every head by the frame's absolute position; scores are
 * q·k/sqrt(D), masked, put through a max-subtracted softmax over the keys, and weight v;
 * the heads' outputs, concatenated, go through the output Linear [d][d].
 *
 * Masks (query at position t, key at position s; every mask keeps s = t, so no row is empty):
 *   causal:      s ≤ t
 *   window W>0:  t − s < W, and when not causal also s − t < W
 *                (causal + window: keys in (t − W, t], the streaming local attention)
 *
 * RoPE (θ = rope_theta, e.g. 10000; f_i = θ^(−2i/D) for i < D/2; angle a = p·f_i):
 *   SOTTO_ROPE_INTERLEAVED  pairs (2i, 2i+1)    Mimi / Kyutai apply_rope (max_period θ)
 *   SOTTO_ROPE_HALF         pairs (i, i + D/2)  HF Llama rotate_half
 *   each pair (x0, x1) → (x0·cos a − x1·sin a, x0·sin a + x1·cos a). Angles and their sines
 *   are computed in double precision, then rounded to float.
 *
 * KV cache. A sotto_kv_cache holds the rotated keys and the values of one layer for one
 * stream, sized at creation; sotto_tlayer_step pushes n new frames (positions continuing from
 * the cache) and lets them attend over the cached and the new keys under the layer's masks.
 * For a causal layer, steps of any sizes give the same result as one sotto_tlayer_forward
 * over the whole sequence (to float rounding). With a window the cache is a ring of
 * `capacity` ≥ W frames: older frames are overwritten once no later query can see them, and a
 * step longer than capacity − W + 1 frames is attended in parts internally. Without a window
 * the cache keeps every frame and a step that would exceed capacity fails with
 * SOTTO_ERR_STATE (nothing changed); reset it to start over. A non-causal layer stepping
 * through a cache sees the keys pushed so far (its own step's included), not later ones.
 *
 * Usage (a causal Mimi-style layer, load time, then per chunk of n frames)
 *     sotto_tlayer_cfg cfg = sotto_tlayer_cfg_default(512, 8, 2048);
 *     cfg.causal = 1;  cfg.window = 250;  cfg.rope = SOTTO_ROPE_INTERLEAVED;
 *     sotto_tlayer_tensors t = {0};
 *     t.norm1_w = ...;  t.qkv_w = ...;  t.out_w = ...;  t.ls1 = ...;   // absent: NULL
 *     sotto_tlayer layer;
 *     sotto_tlayer_init(&layer, &cfg, &t, &model->alloc, st);
 *     sotto_kv_cache kv;                                          // per stream
 *     sotto_kv_cache_init(&kv, &layer, 250 + 16, &model->alloc, st);
 *     float *scratch = ...sotto_tlayer_step_scratch_size(&layer, &kv, max_n) floats...;
 *     sotto_tlayer_step(&cpu, &layer, &kv, x, n, x, scratch);      // x[n][512], in place
 * A whole utterance at once (a bidirectional pre-norm encoder such as Dasheng's):
 *     sotto_tlayer_forward(&cpu, &layer, x, T, 0, y, scratch);     // scratch_size(&layer, T)
 * Post-norm layers (HuBERT base) call sotto_tlayer_self_attn and sotto_tlayer_ffn between
 * their own residuals and sotto_layernorm calls.
 */
#ifndef SOTTO_NN_ATTN_H
#define SOTTO_NN_ATTN_H

#include <stddef.h>
#include <stdint.h>

#include "nn/ops.h"

typedef enum sotto_norm_kind {
    SOTTO_NORM_LAYER = 0, /* LayerNorm (biased variance), affine optional */
    SOTTO_NORM_RMS = 1    /* RMSNorm, scale optional, no bias */
} sotto_norm_kind;

typedef enum sotto_act_kind {
    SOTTO_ACT_GELU_ERF = 0,  /* exact GELU (torch default) */
    SOTTO_ACT_GELU_TANH = 1, /* GELU, approximate="tanh" */
    SOTTO_ACT_RELU = 2,
    SOTTO_ACT_SILU = 3
} sotto_act_kind;

typedef enum sotto_rope_kind {
    SOTTO_ROPE_NONE = 0,
    SOTTO_ROPE_INTERLEAVED = 1, /* pairs (2i, 2i+1) */
    SOTTO_ROPE_HALF = 2         /* pairs (i, i + D/2) */
} sotto_rope_kind;

/* Rotary embedding tables: the convention and the frequencies f_i = θ^(−2i/D), i < D/2. */
typedef struct sotto_rope {
    sotto_rope_kind kind;
    int head_dim; /* D, even */
    double *freq; /* [D/2]; NULL for SOTTO_ROPE_NONE */
} sotto_rope;

/* Prepares the table (kind NONE: nothing to allocate). Errors: SOTTO_ERR_INVALID_ARG (odd or
 * non-positive D, θ ≤ 0, unknown kind), SOTTO_ERR_OUT_OF_MEMORY. */
int sotto_rope_init(sotto_rope *r, sotto_rope_kind kind, int head_dim, double theta,
                    const sotto_alloc *a, sotto_status *st);
void sotto_rope_free(sotto_rope *r, const sotto_alloc *a);

/*
 * Rotates, in place, n_heads heads of D channels in each of T rows of x (row r starts at
 * x + r·ldx, head h at channel h·D), row r at position pos0 + r. SOTTO_ROPE_NONE leaves x as
 * it is. cs: scratch of D floats. Returns SOTTO_OK or SOTTO_ERR_INVALID_ARG.
 */
int sotto_rope_apply(const sotto_rope *r, float *x, int64_t ldx, int64_t T, int n_heads,
                     int64_t pos0, float *cs);

typedef struct sotto_kv_cache sotto_kv_cache;

/* Hyperparameters of one layer. */
typedef struct sotto_tlayer_cfg {
    int dim;     /* d ≥ 1 */
    int n_heads; /* H ≥ 1, dividing d */
    int ffn_dim; /* hidden width of the FFN, ≥ 1 */
    sotto_norm_kind norm;
    float norm_eps; /* > 0 */
    sotto_act_kind act;
    sotto_rope_kind rope;
    float rope_theta; /* > 0 when rope is used (the head dimension must then be even) */
    int causal;       /* 1: keys at positions ≤ the query's */
    int window;       /* 0: unlimited; W ≥ 1: see the masks above */
    int keep_f16;     /* store the four Linear weights as binary16 (see sotto_linear_w_init) */
} sotto_tlayer_cfg;

/* LayerNorm, eps 1e-5, exact GELU, no RoPE, bidirectional, f32 weights. */
sotto_tlayer_cfg sotto_tlayer_cfg_default(int dim, int n_heads, int ffn_dim);

/*
 * Weights as GGUF tensors in PyTorch layout; NULL where the model has none. Give either the
 * fused qkv_w [3d][d] (and qkv_b [3d]) or all three of q_w, k_w, v_w [d][d] (and any of
 * q_b, k_b, v_b [d]; a missing one is zero), which are stacked at load. out_w [d][d],
 * ff1_w [ffn][d] and ff2_w [d][ffn] are required; norm weights/biases [d] (none: no affine;
 * RMSNorm takes no bias), LayerScale vectors ls1, ls2 [d] (none: scale 1).
 */
typedef struct sotto_tlayer_tensors {
    const sotto_gguf_tensor *norm1_w, *norm1_b;
    const sotto_gguf_tensor *qkv_w, *qkv_b;
    const sotto_gguf_tensor *q_w, *k_w, *v_w, *q_b, *k_b, *v_b;
    const sotto_gguf_tensor *out_w, *out_b;
    const sotto_gguf_tensor *ls1;
    const sotto_gguf_tensor *norm2_w, *norm2_b;
    const sotto_gguf_tensor *ff1_w, *ff1_b, *ff2_w, *ff2_b;
    const sotto_gguf_tensor *ls2;
} sotto_tlayer_tensors;

/* The same as float arrays (row-major PyTorch shapes as above). */
typedef struct sotto_tlayer_f32 {
    const float *norm1_w, *norm1_b;
    const float *qkv_w, *qkv_b;
    const float *q_w, *k_w, *v_w, *q_b, *k_b, *v_b;
    const float *out_w, *out_b;
    const float *ls1;
    const float *norm2_w, *norm2_b;
    const float *ff1_w, *ff1_b, *ff2_w, *ff2_b;
    const float *ls2;
} sotto_tlayer_f32;

/* A prepared layer. Every vector is owned by the layer (NULL when absent). */
typedef struct sotto_tlayer {
    sotto_tlayer_cfg cfg;
    int head_dim;            /* D = dim / n_heads */
    sotto_linear_w qkv, out; /* [3d][d], [d][d] */
    sotto_linear_w ff1, ff2; /* [ffn][d], [d][ffn] */
    float *norm1_w, *norm1_b, *norm2_w, *norm2_b;
    float *qkv_b, *out_b, *ff1_b, *ff2_b;
    float *ls1, *ls2;
    sotto_rope rope;
} sotto_tlayer;

/*
 * Prepares a layer. Errors: SOTTO_ERR_INVALID_ARG (NULL pointers, a configuration out of
 * range: dim % n_heads, odd head dimension with RoPE, bias with RMSNorm, fused and separate
 * QKV both or neither given), SOTTO_ERR_MODEL (a tensor's shape or dtype, naming it),
 * SOTTO_ERR_OUT_OF_MEMORY. On error nothing stays allocated.
 */
int sotto_tlayer_init(sotto_tlayer *L, const sotto_tlayer_cfg *cfg, const sotto_tlayer_tensors *t,
                      const sotto_alloc *a, sotto_status *st);
int sotto_tlayer_init_f32(sotto_tlayer *L, const sotto_tlayer_cfg *cfg, const sotto_tlayer_f32 *w,
                          const sotto_alloc *a, sotto_status *st);
/* Releases the layer (safe on a zeroed or already-freed struct). */
void sotto_tlayer_free(sotto_tlayer *L, const sotto_alloc *a);

/* ---- whole sequences ---------------------------------------------------------------------- */

/* Scratch floats sotto_tlayer_forward (and the sublayers) need for T frames; 0 when L is
 * invalid or the size would overflow. */
size_t sotto_tlayer_scratch_size(const sotto_tlayer *L, int64_t T);

/*
 * One layer over a whole sequence: y[T][d] from x[T][d], frame t at position pos0 + t (RoPE
 * only; masks depend on differences). y may equal x (in place), else must not overlap it.
 * T ≥ 0, pos0 ≥ 0. Returns SOTTO_OK or SOTTO_ERR_INVALID_ARG.
 */
int sotto_tlayer_forward(const sotto_cpu *ctx, const sotto_tlayer *L, const float *x, int64_t T,
                         int64_t pos0, float *y, float *scratch);

/*
 * The sublayers, for models that arrange them otherwise (post-norm layers, cross-layer
 * sharing): both take already-normalised input and return the sublayer's output without
 * LayerScale or residual. self_attn: y[T][d] = out(attention(qkv(x))), positions from pos0,
 * through kv when not NULL (then pos0 is ignored: positions continue from the cache, and the
 * cache advances as in sotto_tlayer_step). ffn: y[T][d] = ff2(act(ff1(x))). y must not
 * overlap x. Scratch as sotto_tlayer_scratch_size (whole sequences) or
 * sotto_tlayer_step_scratch_size (with a cache).
 */
int sotto_tlayer_self_attn(const sotto_cpu *ctx, const sotto_tlayer *L, sotto_kv_cache *kv,
                           const float *x, int64_t T, int64_t pos0, float *y, float *scratch);
int sotto_tlayer_ffn(const sotto_cpu *ctx, const sotto_tlayer *L, const float *x, int64_t T,
                     float *y, float *scratch);

/* ---- streaming ---------------------------------------------------------------------------- */

/* Keys and values of one layer for one stream. Keys are stored per head transposed,
 * k[h][D][ldk] (column = slot), values v[h][capacity][ldv]; pads are zero. */
struct sotto_kv_cache {
    int n_heads, head_dim, dim;
    int capacity; /* slots */
    int window;   /* the layer's window: > 0 makes the cache a ring */
    int ldk, ldv; /* capacity and D rounded up to 16 */
    int64_t pos0; /* position of the first frame since the last reset */
    int64_t pos;  /* position the next frame pushed gets */
    int n;        /* slots holding frames: min(pos − pos0, capacity) */
    float *k, *v;
};

/*
 * A cache for layer L with room for `capacity` frames: with a window W, capacity ≥ W (a step
 * of up to capacity − W + 1 frames then runs in one part); without, the longest sequence the
 * stream may see. Positions start at 0. Errors: SOTTO_ERR_INVALID_ARG,
 * SOTTO_ERR_OUT_OF_MEMORY.
 */
int sotto_kv_cache_init(sotto_kv_cache *c, const sotto_tlayer *L, int capacity,
                        const sotto_alloc *a, sotto_status *st);
/* Forgets every frame; the next frame pushed gets position pos0 (≥ 0). */
void sotto_kv_cache_reset(sotto_kv_cache *c, int64_t pos0);
void sotto_kv_cache_free(sotto_kv_cache *c, const sotto_alloc *a);

/* Scratch floats sotto_tlayer_step needs for steps of up to n frames (0 on bad arguments). */
size_t sotto_tlayer_step_scratch_size(const sotto_tlayer *L, const sotto_kv_cache *c, int64_t n);

/*
 * One layer over n new frames x[n][d] → y[n][d] (y == x allowed, else no overlap), appending
 * their keys and values to the cache. Errors: SOTTO_ERR_INVALID_ARG (NULL pointers, n < 0, a
 * cache made for another layer shape), SOTTO_ERR_STATE (an unwindowed cache without room for
 * n more frames); on error neither y nor the cache is changed.
 */
int sotto_tlayer_step(const sotto_cpu *ctx, const sotto_tlayer *L, sotto_kv_cache *c,
                      const float *x, int64_t n, float *y, float *scratch);

#endif
