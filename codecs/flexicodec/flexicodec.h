/*
 * FlexiCodec, decode side (without the bottleneck transformer): the hyperparameters and
 * weights read from a GGUF written by tools/convert/flexicodec.py, and the stages of the
 * official `FlexiCodec.decode_from_codes` (flexicodec 0.1.2):
 *
 *   FSQ index --flexicodec_fsq_codes--> normalised code [G][n_levels]
 *             --flexicodec_fsq_project_out--> [G][convnext_dim]
 *             --flexicodec_convnext_decode--> semantic latent [G][latent_dim]
 *   RVQ codes [G][n_q] --flexicodec_rvq_decode--> acoustic latent [G][latent_dim]
 *   semantic + acoustic (per group) --flexicodec_expand (token lengths)--> [T][latent_dim]
 *   [bottleneck transformer: not here]
 *   --flexicodec_dac_decode--> waveform [flexicodec_dac_out_len(T)] samples
 *
 * Expansion repeats rows, so summing the two streams before or after it gives the same
 * floats; the official code expands each stream and then adds.
 *
 * Conventions are those of nn/ops.h: activations time-major x[T][C]; the run functions write
 * into caller buffers, take a caller scratch of the size the matching *_scratch function
 * returns (in floats), never allocate, lock or log, and return SOTTO_OK, a count ≥ 0, or a
 * negative sotto_error (SOTTO_ERR_INVALID_ARG for NULL pointers, sizes out of range, a code
 * or index outside its table, or a negative token length). Only flexicodec_decoder_weights_load
 * allocates.
 */
#ifndef SOTTO_FLEXICODEC_H
#define SOTTO_FLEXICODEC_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "core/gguf.h"
#include "nn/ops.h"

#define FLEXICODEC_MAX_LEVELS 8     /* FSQ code dims (the release: 5) */
#define FLEXICODEC_MAX_CODEBOOKS 64 /* RVQ stages stored (the release: 24) */
#define FLEXICODEC_MAX_RATES 8      /* DAC decoder blocks (the release: 5) */
#define FLEXICODEC_RU_COUNT 3       /* residual units per DAC decoder block, dilations 1, 3, 9 */
#define FLEXICODEC_CONVNEXT_K 7     /* ConvNeXt depthwise kernel */
#define FLEXICODEC_DAC_K 7          /* DAC first/last/residual conv kernel */

/* The `flexicodec.*` metadata the decode side uses (see tools/convert/flexicodec.py). */
typedef struct flexicodec_hparams {
    int sample_rate;
    int hop_length;  /* prod(decoder_rates): samples per latent frame (1280) */
    int latent_dim;  /* DAC latent width (512) */
    int decoder_dim; /* DAC decoder width (1536); block i has decoder_dim / 2^i inputs */
    int n_rates;
    int decoder_rates[FLEXICODEC_MAX_RATES];    /* [2, 8, 5, 4, 4] */
    int dilations[FLEXICODEC_RU_COUNT];         /* [1, 3, 9] */
    int n_codebooks;                            /* RVQ stages stored (24) */
    int codebook_size;                          /* entries per stage (4096) */
    int codebook_dim[FLEXICODEC_MAX_CODEBOOKS]; /* code width per stage (8) */
    int n_levels;                               /* FSQ code dims (5) */
    int fsq_levels[FLEXICODEC_MAX_LEVELS];      /* [8, 8, 8, 8, 8] */
    int32_t fsq_size;                           /* prod(levels): FSQ indices are [0, fsq_size) */
    int convnext_dim, convnext_intermediate, convnext_layers;
    int convnext_causal;    /* 1: depthwise conv padded 6 on the left only (is_causal) */
    float convnext_eps;     /* 1e-6 */
    int decode_semantic;    /* decode_semantic_for_codec: the ConvNeXt decoder runs */
    int transformer_layers; /* informational here: 0 means the transformer is the identity */
} flexicodec_hparams;

typedef struct flexicodec_convnext_block {
    sotto_conv1d_w dw;          /* depthwise [C][1][7] */
    const float *dw_b;          /* [C] */
    const float *ln_w, *ln_b;   /* [C] */
    sotto_linear_w pw1, pw2;    /* [I][C], [C][I] */
    const float *pw1_b, *pw2_b; /* [I], [C] */
    const float *gamma;         /* [C] layer scale, NULL when absent (the release) */
} flexicodec_convnext_block;

typedef struct flexicodec_rvq_stage {
    int dim;                 /* code width */
    const float *codebook;   /* [codebook_size][dim] */
    sotto_linear_w out_proj; /* [latent][dim] (folded weight-norm 1×1 conv) */
    const float *out_b;      /* [latent] */
} flexicodec_rvq_stage;

typedef struct flexicodec_res_unit {
    int dilation;
    const float *alpha1, *alpha2; /* Snake [C] */
    sotto_conv1d_w conv7;         /* [C][C][7], dilation d, zero padding 3·d */
    const float *conv7_b;
    sotto_linear_w conv1; /* 1×1 conv [C][C][1] */
    const float *conv1_b;
} flexicodec_res_unit;

/* Shared by the DAC decoder and encoder (decode.c). dst[pad .. pad + L) = Snake(x[L][C])
 * with `pad` zero frames on both sides of dst. */
int flexicodec_snake_padded(const sotto_cpu *cpu, const float *x, int64_t L, int C,
                            const float *alpha, int pad, float *dst);
/* A residual unit in place: X[L][C] += conv1(Snake(conv7_d(Snake(X)))); A, B scratch of
 * (L + 6·dilation)·C floats each. */
int flexicodec_res_unit_run(const sotto_cpu *cpu, const flexicodec_res_unit *r, float *X, int64_t L,
                            int C, float *A, float *B);

typedef struct flexicodec_dac_block {
    int c_in, c_out, stride, padding; /* ConvTranspose1d k = 2·stride, padding ceil(stride/2) */
    const float *alpha;               /* Snake [c_in] */
    sotto_convtr1d_w up;              /* [c_in][c_out][2·stride] */
    const float *up_b;                /* [c_out] */
    flexicodec_res_unit ru[FLEXICODEC_RU_COUNT];
} flexicodec_dac_block;

typedef struct flexicodec_decoder_weights {
    flexicodec_hparams hp;
    sotto_alloc alloc;      /* what the repacked weights were allocated with */
    sotto_linear_w fsq_out; /* semantic_vq.fsq.project_out [convnext_dim][n_levels] */
    const float *fsq_out_b;
    flexicodec_convnext_block *cnx; /* [convnext_layers] (none when !decode_semantic) */
    sotto_linear_w cnx_out;         /* convnext_decoder.L: 1×1 conv [latent][convnext_dim] */
    const float *cnx_out_b;
    flexicodec_rvq_stage *rvq; /* [n_codebooks] */
    sotto_conv1d_w dac_in;     /* dac.decoder.model.0 [decoder_dim][latent][7] */
    const float *dac_in_b;
    flexicodec_dac_block *blocks; /* [n_rates] */
    const float *dac_alpha;       /* final Snake [decoder_dim / 2^n_rates] */
    sotto_conv1d_w dac_out;       /* [1][C_last][7] */
    const float *dac_out_b;       /* [1] */
    sotto_f32_pool owned;         /* f32 copies of tensors stored as f16/bf16 */
    int h16;                      /* switched to binary16 arithmetic (use_h16 below) */
} flexicodec_decoder_weights;

/*
 * Reads the hyperparameters and every decode-side tensor (FSQ project_out, ConvNeXt decoder,
 * RVQ codebooks and out_proj, DAC decoder) from g, checking each tensor's name, dtype and
 * shape (f32, f16 or bf16; a failure names the tensor, e.g. "tensor 'dac.decoder.model.0.weight':
 * shape [...], expected [...]"), and repacks them. Linear weights stored as f16 stay f16 in
 * memory; convolutions become f32. Vectors stored as f32 are borrowed from g, which must stay
 * open until flexicodec_decoder_weights_free. Errors: SOTTO_ERR_MODEL (missing key or tensor,
 * wrong shape or dtype), SOTTO_ERR_FORMAT (hyperparameters out of range or inconsistent),
 * SOTTO_ERR_UNSUPPORTED (another architecture), SOTTO_ERR_OUT_OF_MEMORY, SOTTO_ERR_INVALID_ARG.
 * On failure *w is left freed (zeroed). alloc may be NULL (libc).
 */
int flexicodec_decoder_weights_load(flexicodec_decoder_weights *w, const sotto_gguf *g,
                                    const sotto_alloc *alloc, sotto_status *st);
/* Releases what load made; safe on a zeroed or already-freed struct. */
void flexicodec_decoder_weights_free(flexicodec_decoder_weights *w);
/* Binary16 arithmetic (sotto_model_params.f16_arithmetic): when g stores the decoder's
 * matrices in f16, switches every Linear and ungrouped conv / transposed conv of the decode
 * path (FSQ project_out, ConvNeXt decoder, RVQ out_proj, DAC decoder) to gemm_h16 and sets
 * w->h16; an f32 file is left as it is. Load time; errors: SOTTO_ERR_OUT_OF_MEMORY. */
int flexicodec_decoder_weights_use_h16(flexicodec_decoder_weights *w, const sotto_gguf *g,
                                       sotto_status *st);

/*
 * Model loader hook for architecture "flexicodec" (codec.c): loads the decode-side weights
 * above and the bottleneck transformer (bottleneck.h) and, when the file holds them, the
 * encode side (encode.h) and SenseVoice (encoders/sensevoice), and attaches them to
 * model->arch_data, released by model->arch_free. The decoder and the encoder of
 * sotto_codec.h run on them.
 */
int sotto_flexicodec_load(sotto_model *model, sotto_status *st);

/* ---- semantic branch ------------------------------------------------------------------- */

/*
 * FSQ indices idx[G] → normalised codes codes[G][n_levels]: digit d = (idx / basis_d) mod L_d
 * with basis_d = L_0·…·L_(d−1), code = (digit − ⌊L_d/2⌋) / ⌊L_d/2⌋ (FSQ.indices_to_codes;
 * for L = 8 the values are −1, −0.75, …, 0.75). Index outside [0, fsq_size):
 * SOTTO_ERR_INVALID_ARG.
 */
int flexicodec_fsq_codes(const flexicodec_hparams *hp, const int32_t *idx, int64_t G, float *codes);
/* codes[G][n_levels] → y[G][convnext_dim] = project_out(codes). */
int flexicodec_fsq_project_out(const sotto_cpu *cpu, const flexicodec_decoder_weights *w,
                               const float *codes, int64_t G, float *y);

/* Scratch floats flexicodec_convnext_decode needs for G groups. */
size_t flexicodec_convnext_scratch(const flexicodec_hparams *hp, int64_t G);
/*
 * The ConvNeXt decoder over a whole sequence of G groups (offline): for each block
 * x += pw2(GELU(pw1(LN(dwconv7(x))))) (· gamma when present), the depthwise conv zero-padded
 * 3 + 3 (or 6 + 0 when causal), LayerNorm eps 1e-6; then the 1×1 output conv →
 * y[G][latent_dim]. x[G][convnext_dim] is overwritten (it holds the last block's output).
 * Without decode_semantic_for_codec, y is a copy of x (convnext_dim == latent_dim).
 */
int flexicodec_convnext_decode(const sotto_cpu *cpu, const flexicodec_decoder_weights *w, float *x,
                               int64_t G, float *y, float *scratch);

/* Scratch floats flexicodec_semantic_decode needs. */
size_t flexicodec_semantic_scratch(const flexicodec_hparams *hp, int64_t G);
/* FSQ indices idx[G] → semantic latent y[G][latent_dim]: the three functions above in a row
 * (FlexiCodec.get_semantic_feature). */
int flexicodec_semantic_decode(const sotto_cpu *cpu, const flexicodec_decoder_weights *w,
                               const int32_t *idx, int64_t G, float *y, float *scratch);

/* ---- acoustic branch ------------------------------------------------------------------- */

/* Scratch floats flexicodec_rvq_decode needs. */
size_t flexicodec_rvq_scratch(const flexicodec_hparams *hp, int64_t G);
/*
 * RVQ decode of the first n_q stages (0 ≤ n_q ≤ n_codebooks): codes[G][ldc] holds stage q's
 * code of group g at codes[g·ldc + q] (ldc ≥ n_q); y[G][latent_dim] = Σ_q
 * out_proj_q(codebook_q[code]) (ResidualVectorQuantize.from_codes); n_q = 0 gives zeros (no
 * acoustic codes). Code outside [0, codebook_size): SOTTO_ERR_INVALID_ARG.
 */
int flexicodec_rvq_decode(const sotto_cpu *cpu, const flexicodec_decoder_weights *w,
                          const int32_t *codes, int64_t G, int ldc, int n_q, float *y,
                          float *scratch);

/* ---- expansion --------------------------------------------------------------------------- */

/* Frames after expansion: Σ lengths[g], or SOTTO_ERR_INVALID_ARG for a negative length. */
int64_t flexicodec_expanded_len(const int32_t *lengths, int64_t G);
/* y[T][C]: row g of x[G][C] repeated lengths[g] times (torch.repeat_interleave; a length of 0
 * drops the group). Returns T. y must not overlap x. */
int64_t flexicodec_expand(const float *x, int64_t G, int C, const int32_t *lengths, float *y);

/* ---- DAC decoder ------------------------------------------------------------------------- */

/*
 * Samples the DAC decoder emits for T latent frames: each block maps L to
 * L·s + s − 2·ceil(s/2) (L·s for even s, L·s − 1 for odd s), the convs around it keep the
 * length; for [2, 8, 5, 4, 4] that is 1280·T − 16. 0 for T = 0.
 */
int64_t flexicodec_dac_out_len(const flexicodec_hparams *hp, int64_t T);
/* Scratch floats flexicodec_dac_decode needs for T frames (grows linearly with T). */
size_t flexicodec_dac_scratch(const flexicodec_hparams *hp, int64_t T);
/*
 * The DAC decoder (dac.decoder): conv k7 (latent → decoder_dim); per block Snake,
 * ConvTranspose1d (k 2s, stride s, torch padding ceil(s/2) cropped from both ends), three
 * residual units x + conv1(Snake(conv7_d(Snake(x)))) with d = 1, 3, 9; final Snake, conv k7
 * to one channel, tanh. z[T][latent_dim] → wave[flexicodec_dac_out_len(T)]. Returns the
 * number of samples.
 */
int64_t flexicodec_dac_decode(const sotto_cpu *cpu, const flexicodec_decoder_weights *w,
                              const float *z, int64_t T, float *wave, float *scratch);

#endif
