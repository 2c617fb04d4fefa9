/*
 * FlexiCodec's transformers: a stack of N Mimi-style layers (the package's
 * `ProjectedTransformer`, flexicodec/model_blocks/mimi/transformer.py, flexicodec 0.1.2) as
 * used for the decoder's bottleneck transformer (32 layers, d 512, 8 heads, FFN 2048 in the
 * release) and inside the encoder's two query-token aggregators (6 layers, same widths). Each
 * layer is a sotto_tlayer (nn/attn.h):
 *
 *   x += ls1 ⊙ out_proj(attn(LN1(x)))     LayerNorm eps 1e-5 with weight and bias
 *   x += ls2 ⊙ linear2(GELU(linear1(LN2(x))))   exact (erf) GELU
 *
 * with one fused QKV weight [3d][d] (q, k, v stacked, head h at rows h·D … h·D + D − 1 of
 * each), no bias in any of the four Linears, RoPE on interleaved pairs (2i, 2i+1) with
 * θ = max_period = 10000 and positions 0 … T − 1, scores scaled 1/sqrt(D) and, in the
 * released non-causal setting, full attention over the whole sequence (`context` is ignored
 * there). With `causal` the official mask keeps keys s with 0 ≤ t − s < context. There is no
 * positional embedding added to x, no final norm and, since the input and output dimensions
 * equal d_model, no input or output projection.
 *
 * The official module takes and returns [B][C][T] (conv layout, transposed internally); here
 * activations are time-major x[T][d], one utterance at a time (offline, whole sequence).
 *
 * Tensor names are the official state_dict's under a prefix, per layer i:
 *   <prefix><i>.self_attn.in_proj_weight [3d][d]    <prefix><i>.self_attn.out_proj.weight [d][d]
 *   <prefix><i>.norm1.weight, .norm1.bias [d]       <prefix><i>.norm2.weight, .norm2.bias [d]
 *   <prefix><i>.linear1.weight [ffn][d]             <prefix><i>.linear2.weight [d][ffn]
 *   <prefix><i>.layer_scale_1.scale [d]             <prefix><i>.layer_scale_2.scale [d]
 * e.g. prefix "bottleneck_transformer.transformer.layers." (decoder) or
 * "semantic_aggregator.transformer.transformer.layers." / "acoustic_aggregator.…" (encoder;
 * the aggregator builds the interleaved frame/query sequence and runs this stack on it).
 *
 * Conventions of nn/ops.h: the load function allocates; flexicodec_bottleneck_forward checks
 * its arguments, writes into a caller buffer (or in place), takes caller scratch sized by
 * flexicodec_bottleneck_scratch_size and never allocates, locks or logs.
 */
#ifndef SOTTO_FLEXICODEC_BOTTLENECK_H
#define SOTTO_FLEXICODEC_BOTTLENECK_H

#include <stddef.h>
#include <stdint.h>

#include "backend/cpu/cpu.h"
#include "core/core.h"
#include "core/gguf.h"
#include "nn/attn.h"

/* The release's bottleneck tensor-name prefix. */
#define FLEXICODEC_BOTTLENECK_PREFIX "bottleneck_transformer.transformer.layers."

/* Hyperparameters of a stack. */
typedef struct flexicodec_bottleneck_cfg {
    int n_layers;          /* N ≥ 0 (0: the identity, as FlexiCodec's num_layers 0) */
    int dim;               /* d_model (512) */
    int n_heads;           /* 8; d / n_heads must be even (RoPE) */
    int ffn_dim;           /* dim_feedforward (2048) */
    int causal;            /* transformer_causal (the release: 0) */
    int context;           /* context frames; used only when causal (0: unlimited) */
    float norm_eps;        /* 1e-5 */
    float rope_max_period; /* 10000 */
    int keep_f16;          /* store the Linear weights as binary16 (sotto_tlayer_cfg.keep_f16) */
} flexicodec_bottleneck_cfg;

/* Released settings for a given size: non-causal, context 16, eps 1e-5, max_period 10000,
 * f32 weights. */
flexicodec_bottleneck_cfg flexicodec_bottleneck_cfg_default(int n_layers, int dim, int n_heads,
                                                            int ffn_dim);

/*
 * Reads a configuration from the metadata keys <key_prefix>num_layers, dim, num_heads,
 * dim_feedforward, causal, context_frames and, when present, norm_eps, rope_max_period and
 * has_input_proj (as tools/convert/flexicodec.py writes them under "flexicodec.transformer.").
 * has_input_proj true gives SOTTO_ERR_UNSUPPORTED (d_model ≠ latent dim: no release has it).
 * Errors: SOTTO_ERR_MODEL (a key missing or of the wrong type), SOTTO_ERR_FORMAT (values out
 * of range), SOTTO_ERR_INVALID_ARG.
 */
int flexicodec_bottleneck_cfg_from_gguf(const sotto_gguf *g, const char *key_prefix,
                                        flexicodec_bottleneck_cfg *cfg, sotto_status *st);

/* A loaded stack. */
typedef struct flexicodec_bottleneck {
    flexicodec_bottleneck_cfg cfg;
    sotto_tlayer *layers; /* [n_layers] */
    sotto_alloc alloc;    /* what the layers were allocated with */
} flexicodec_bottleneck;

/*
 * Loads the N layers named <prefix><i>.* (i < N) from g, checking every tensor's presence,
 * dtype (f32, f16 or bf16) and shape and naming the culprit on failure ("missing tensor
 * '…layers.3.layer_scale_2.scale'", "tensor '…layers.0.linear1.weight': shape [128, 64],
 * expected [96, 64]"), and that g holds no layer N (a file with more layers than configured).
 * The weights are copied: g may be closed afterwards. alloc may be NULL (libc).
 * Errors: SOTTO_ERR_INVALID_ARG (NULL, a configuration out of range), SOTTO_ERR_MODEL,
 * SOTTO_ERR_OUT_OF_MEMORY. On failure *b is left freed (zeroed).
 */
int flexicodec_bottleneck_load(flexicodec_bottleneck *b, const sotto_gguf *g, const char *prefix,
                               const flexicodec_bottleneck_cfg *cfg, const sotto_alloc *alloc,
                               sotto_status *st);
/* Releases what load made; safe on a zeroed or already-freed struct. */
void flexicodec_bottleneck_free(flexicodec_bottleneck *b);
/* 1 when layer 0's Linear weights are stored as f16 under prefix (a converter's --dtype f16
 * file): then the caller keeps them f16 in memory (cfg.keep_f16), half the f32 size. */
int flexicodec_bottleneck_file_f16(const sotto_gguf *g, const char *prefix);
/* Binary16 arithmetic for every layer's four Linear weights (sotto_linear_w_use_h16), for a
 * model loaded with f16_arithmetic whose file stores them in f16 (the caller checks). Load
 * time; errors: SOTTO_ERR_OUT_OF_MEMORY. */
int flexicodec_bottleneck_use_h16(flexicodec_bottleneck *b, sotto_status *st);

/* Scratch floats flexicodec_bottleneck_forward needs for T frames (≥ 1 for a valid stack,
 * about 2·T·d + max(6·T·d + min(T, 64)·T, T·ffn) floats); 0 when b is not loaded or the size
 * would overflow. */
size_t flexicodec_bottleneck_scratch_size(const flexicodec_bottleneck *b, int64_t T);

/*
 * The stack over a whole sequence: y[T][d] from x[T][d], frame t at position t. y may equal x
 * (in place), else must not overlap it. T = 0 does nothing. Returns SOTTO_OK or
 * SOTTO_ERR_INVALID_ARG (NULL pointers, a stack not loaded, T < 0 or too large, overlap).
 */
int flexicodec_bottleneck_forward(const sotto_cpu *cpu, const flexicodec_bottleneck *b,
                                  const float *x, int64_t T, float *y, float *scratch);

#endif
