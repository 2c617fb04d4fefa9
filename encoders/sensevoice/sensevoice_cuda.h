/*
 * The SenseVoice encoder stack (sensevoice.h) on the CUDA layer library (backend/cuda): the
 * 560 → d block 0, the SAN-M blocks and after_norm run on the device; the input rows (query
 * embeddings, · sqrt(d), sinusoid) are built on the host by sensevoice_embed_input, exactly as
 * the CPU builds them, and uploaded. Per block, as sensevoice.c:
 *
 *     h = LN1(x) → fused QKV Linear → attention over all positions (no mask, 1/sqrt(D)) and the
 *     FSMN memory (depthwise conv on v + v, backend/cuda/fsmn.h) → linear_out accumulated onto
 *     (x +) memory → x += w_2(ReLU(w_1(LN2(x))))
 *
 * Two parts, as the FlexiCodec decoder on CUDA: sensevoice_cuda_weights, the weights on the
 * device, uploaded once through any context and then only read (from any context on the same
 * device); and sensevoice_cuda, the activation buffers of one user, who passes its own context
 * to every call. All arithmetic is f32 (TF32 off): f16 or binary16 CPU weights are widened
 * exactly at upload.
 *
 * Everything here exists only in builds with the CUDA backend (SOTTO_HAVE_CUDA); without it
 * this header declares nothing. One sensevoice_cuda serves one thread at a time.
 */
#ifndef SOTTO_ENCODERS_SENSEVOICE_CUDA_H
#define SOTTO_ENCODERS_SENSEVOICE_CUDA_H

#ifdef SOTTO_HAVE_CUDA

#include <stddef.h>
#include <stdint.h>

#include "backend/cuda/cuda_ops.h"
#include "encoders/sensevoice/sensevoice.h"

typedef struct sensevoice_cuda_block {
    int in;                            /* input width: input_size for block 0, else dim */
    float *norm1_w, *norm1_b;          /* device [in] */
    sotto_cuda_linear_w qkv;           /* [3d][in] */
    float *qkv_b;                      /* [3d] */
    sotto_cuda_conv1d_w fsmn;          /* depthwise, taps major */
    sotto_cuda_linear_w out, ff1, ff2; /* [d][d], [ffn][d], [d][ffn] */
    float *out_b, *ff1_b, *ff2_b;      /* [d], [ffn], [d] */
    float *norm2_w, *norm2_b;          /* [d] */
} sensevoice_cuda_block;

typedef struct sensevoice_cuda_weights {
    sensevoice_cfg cfg;
    sensevoice_cuda_block *blocks; /* host array [n_blocks] of device weights */
    float *after_w, *after_b;      /* device [dim] */
} sensevoice_cuda_weights;

/* Uploads sv's blocks and after_norm through cu (load time; sv must be loaded). On failure
 * nothing stays allocated and *w is zeroed. Errors: SOTTO_ERR_INVALID_ARG,
 * SOTTO_ERR_OUT_OF_MEMORY (host), SOTTO_ERR_DEVICE (st says which call). */
int sensevoice_cuda_weights_init(sotto_cuda *cu, sensevoice_cuda_weights *w, const sensevoice *sv,
                                 sotto_status *st);
/* Frees what init made, through the context that made it (a zeroed struct is a no-op). */
void sensevoice_cuda_weights_free(sotto_cuda *cu, sensevoice_cuda_weights *w);

/* Scratch-pool bytes sensevoice_cuda_encode takes for T_lfr frames (the attention scores of
 * all positions, every head; 0 on bad arguments). */
size_t sensevoice_cuda_scratch(const sensevoice_cuda_weights *w, int64_t T_lfr);

typedef struct sensevoice_cuda sensevoice_cuda;

/* Allocates, through cu, the activations of up to max_lfr LFR frames (max_lfr ≥ 1), and a
 * host staging buffer for the input rows. Errors: SOTTO_ERR_INVALID_ARG,
 * SOTTO_ERR_OUT_OF_MEMORY (host), SOTTO_ERR_DEVICE. */
int sensevoice_cuda_create(sotto_cuda *cu, const sensevoice_cuda_weights *w, int64_t max_lfr,
                           sensevoice_cuda **out, sotto_status *st);
/* Frees s through the context that made it (NULL is a no-op). */
void sensevoice_cuda_free(sotto_cuda *cu, sensevoice_cuda *s);

/*
 * sensevoice_encode on the device: x_host[T_lfr][input_size] (LFR + CMVN features, host) with
 * the query rows `queries` (NULL: the defaults) → y_host[T_lfr][dim]. sv is the CPU model the
 * weights were uploaded from (its query table and position table build the input). Takes
 * scratch from cu's pool (sensevoice_cuda_scratch(T_lfr) bytes) and gives it back; blocks
 * until y_host holds the result. Returns SOTTO_OK, SOTTO_ERR_INVALID_ARG (NULL, T_lfr outside
 * 1..max_lfr, a query out of range), SOTTO_ERR_INTERNAL (a non-finite output) or cu's sticky
 * error.
 */
int sensevoice_cuda_encode(sotto_cuda *cu, const sensevoice_cuda_weights *w, sensevoice_cuda *s,
                           const sensevoice *sv, const int32_t *queries, const float *x_host,
                           int64_t T_lfr, float *y_host);

#endif /* SOTTO_HAVE_CUDA */

#endif
