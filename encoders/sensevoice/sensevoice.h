/*
 * The SenseVoice-Small encoder as FlexiCodec uses it (flexicodec 0.1.2:
 * customized_sensevoice/model.py `SenseVoiceEncoderSmall` + `SenseVoiceSmall.prepend_inputs`,
 * FunASR's WavFrontend for LFR and CMVN, modeling_flexicodec.py for the features taken):
 *
 *   fbank[T][80] → LFR (m 7, n 6) → CMVN → prepend 4 query rows → ·sqrt(d) → + sinusoid →
 *   block 0 (560 → d, no residual on its attention) → blocks 1 … N−1 → after_norm →
 *   drop the 4 query positions → y[T_lfr][d]
 *
 * LFR: 3 (= (m−1)/2) copies of frame 0 are prepended; output frame i concatenates rows
 * 6i … 6i+6 of that, rows past the end repeat the last frame; T_lfr = ceil(T / 6).
 * CMVN: y = (x + shift) · scale, the <AddShift> and <Rescale> rows of am.mvn.
 * Queries: rows of the embedding table `embed.weight [16][560]` in the order language
 * (auto: 0), event (1), emotion (2), text norm (woitn: 15, withitn: 14).
 * Position encoding (depth = the 560 input dims, positions 1 … T+4): inv_j =
 * exp(−j·ln(10000)/(280 − 1)), j < 280; [sin(p·inv), cos(p·inv)] (sin block first).
 * Block (pre-norm, LayerNorm eps 1e-5): h = LN1(x); q, k, v = split(linear_q_k_v(h));
 * fsmn = DWConv_k(pad(v, (k−1)/2 + sanm_shift left, rest right), no bias) + v;
 * a = linear_out(softmax(q·kᵀ/sqrt(D))·v per head) + fsmn; x = (in == d ? x + a : a);
 * x = x + w_2(ReLU(w_1(LN2(x)))). The 20 tp blocks that follow after_norm in the checkpoint
 * (they feed the CTC head) are not part of what FlexiCodec takes and are not loaded.
 *
 * Tensor names are the checkpoint's under a caller prefix ("" for FunASR's model.pt,
 * "semantic_model." for FlexiCodec's state dict): <prefix>embed.weight,
 * <prefix>encoder.encoders0.0.*, <prefix>encoder.encoders.{i}.*, <prefix>encoder.after_norm.*;
 * per block self_attn.linear_q_k_v.{weight,bias}, self_attn.fsmn_block.weight [d][1][k],
 * self_attn.linear_out.{weight,bias}, feed_forward.w_1/w_2.{weight,bias},
 * norm1/norm2.{weight,bias}. The CMVN is `sensevoice.cmvn.shift` / `.scale` [560] and the
 * configuration the `sensevoice.*` metadata (tools/convert/sensevoice.py).
 *
 * Conventions of nn/ops.h: the load function allocates; the run functions take caller
 * buffers and scratch, never allocate, lock or log. Whole utterance, one at a time.
 */
#ifndef SOTTO_ENCODERS_SENSEVOICE_H
#define SOTTO_ENCODERS_SENSEVOICE_H

#include <stddef.h>
#include <stdint.h>

#include "backend/cpu/cpu.h"
#include "core/core.h"
#include "core/gguf.h"
#include "nn/ops.h"

/* FlexiCodec's tensor prefix. */
#define SENSEVOICE_PREFIX_FLEXICODEC "semantic_model."
/* Number of prepended query positions. */
#define SENSEVOICE_N_QUERIES 4

typedef struct sensevoice_cfg {
    int n_mels;      /* 80 */
    int lfr_m;       /* 7 */
    int lfr_n;       /* 6 */
    int input_size;  /* n_mels · lfr_m = 560 */
    int dim;         /* output_size, 512 */
    int n_heads;     /* 4 */
    int ffn_dim;     /* linear_units, 2048 */
    int n_blocks;    /* num_blocks incl. block 0, 50 */
    int kernel_size; /* FSMN kernel, 11 */
    int sanm_shift;  /* 0 */
    int n_embed;     /* rows of the query-embedding table, 16 */
    float norm_eps;  /* 1e-5 */
} sensevoice_cfg;

/* Reads the `sensevoice.*` metadata (tools/convert/sensevoice.py); n_embed is set from the
 * table at load. Errors: SOTTO_ERR_MODEL (a key missing or mistyped), SOTTO_ERR_FORMAT (out of
 * range, input_size ≠ n_mels·lfr_m), SOTTO_ERR_INVALID_ARG. */
int sensevoice_cfg_from_gguf(const sotto_gguf *g, sensevoice_cfg *cfg, sotto_status *st);

typedef struct sensevoice_block {
    int in;                   /* input width: input_size for block 0, dim for the rest */
    float *norm1_w, *norm1_b; /* [in] */
    sotto_linear_w qkv;       /* [3d][in] */
    float *qkv_b;             /* [3d] */
    sotto_conv1d_w fsmn;      /* depthwise [d][1][k] */
    sotto_linear_w out;       /* [d][d] */
    float *out_b;             /* [d] */
    float *norm2_w, *norm2_b; /* [d] */
    sotto_linear_w ff1, ff2;  /* [ffn][d], [d][ffn] */
    float *ff1_b, *ff2_b;
} sensevoice_block;

typedef struct sensevoice {
    sensevoice_cfg cfg;
    float *cmvn_shift, *cmvn_scale; /* [input_size] */
    float *embed;                   /* [n_embed][input_size] */
    float *pos_inv;                 /* [input_size / 2] inverse timescales */
    sensevoice_block *blocks;       /* [n_blocks] */
    float *after_w, *after_b;       /* [dim] */
    sotto_alloc alloc;
} sensevoice;

/*
 * Loads the CMVN, the query table and the n_blocks blocks named as above under `prefix`,
 * checking every tensor's presence, dtype and shape and naming the culprit ("missing tensor
 * 'semantic_model.encoder.encoders.1.norm2.bias'"). The weights are copied: g may be closed
 * afterwards. alloc may be NULL. Errors: SOTTO_ERR_INVALID_ARG, SOTTO_ERR_MODEL,
 * SOTTO_ERR_OUT_OF_MEMORY; on failure *sv is left freed.
 */
int sensevoice_load(sensevoice *sv, const sotto_gguf *g, const char *prefix,
                    const sensevoice_cfg *cfg, const sotto_alloc *alloc, sotto_status *st);
/* Binary16 arithmetic for every block's four Linear weights (sotto_linear_w_use_h16; the
 * FSMN depthwise memory stays f32), for a model loaded with f16_arithmetic = 2 whose file
 * stores them in f16 (the caller checks). Load time; errors: SOTTO_ERR_OUT_OF_MEMORY. */
int sensevoice_use_h16(sensevoice *sv, sotto_status *st);
void sensevoice_free(sensevoice *sv);

/* LFR output frames for T fbank frames: ceil(T / n) (0 for T ≤ 0 or n < 1). */
int64_t sensevoice_lfr_frames(int64_t T, int n);

/*
 * FunASR's apply_lfr: fbank x[T][n_mels] → y[ceil(T/n)][m·n_mels] (rule in the file comment).
 * Returns the number of output frames, or SOTTO_ERR_INVALID_ARG. y must not overlap x.
 */
int64_t sensevoice_lfr(const float *x, int64_t T, int n_mels, int m, int n, float *y);

/* LFR with the model's m, n, then CMVN: y[T_lfr][input_size]. Returns T_lfr or an error. */
int64_t sensevoice_lfr_cmvn(const sensevoice *sv, const float *fbank, int64_t T, float *y);

/* The default query rows: language auto (0), event (1), emotion (2), text norm woitn (15). */
extern const int32_t sensevoice_default_queries[SENSEVOICE_N_QUERIES];

/* Scratch floats sensevoice_encode needs for T_lfr frames; 0 when sv is not loaded or the size
 * would overflow. */
size_t sensevoice_scratch_size(const sensevoice *sv, int64_t T_lfr);

/*
 * The stack's input, as sensevoice_encode builds it: xin[T_lfr + 4][input_size] = the query
 * rows `queries` (NULL: the default ones; each < n_embed) then x[T_lfr][input_size], all
 * · sqrt(dim), plus the sinusoid of positions 1 … T_lfr + 4. A backend that runs the blocks
 * elsewhere (sensevoice_cuda.h) starts from it. Returns SOTTO_OK or SOTTO_ERR_INVALID_ARG.
 */
int sensevoice_embed_input(const sensevoice *sv, const int32_t *queries, const float *x,
                           int64_t T_lfr, float *xin);

/*
 * The encoder on x[T_lfr][input_size] (LFR + CMVN features): prepends the query rows
 * `queries` (NULL: sensevoice_default_queries; each < n_embed), runs the stack and after_norm
 * and writes the frames after the queries, y[T_lfr][dim] (FlexiCodec's semantic features
 * before its 4/3 downsampling). Scratch as sensevoice_scratch_size. T_lfr = 0 does nothing.
 * Returns SOTTO_OK or SOTTO_ERR_INVALID_ARG.
 */
int sensevoice_encode(const sotto_cpu *cpu, const sensevoice *sv, const int32_t *queries,
                      const float *x, int64_t T_lfr, float *y, float *scratch);

#endif
