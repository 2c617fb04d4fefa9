/*
 * The few dense kernels the Vocos stream runs, on time-major activations: GEMM-backed linear
 * and k-tap convolution (no im2col: with channels contiguous, tap j of every output frame
 * reads the input shifted by j frames, so the conv is k accumulating GEMMs), depthwise k-tap convolution, LayerNorm and
 * exact GELU. Weights are repacked once at load.
 */
#ifndef SOTTO_VOCOS_KERNELS_H
#define SOTTO_VOCOS_KERNELS_H

#include <stdint.h>

#include "core/core.h"
#include "core/gguf.h"

/* y[M][N] = x[M][K] · Wᵀ + b. `w` is [N][K] row-major (PyTorch Linear layout). */
typedef struct vk_matrix {
    float *w;
    int N, K;
} vk_matrix;

/* From a [N][K] tensor (f32/f16/bf16), or for a conv [Cout][Cin][k] repacked to
 * [k][Cout][Cin]: one matrix per tap. */
int vk_linear_init(vk_matrix *l, const sotto_gguf_tensor *t, const sotto_alloc *a,
                   sotto_status *st);
int vk_conv_init(vk_matrix *l, const sotto_gguf_tensor *t, const sotto_alloc *a,
                 sotto_status *st);
void vk_linear_free(vk_matrix *l, const sotto_alloc *a);

void vk_linear(const vk_matrix *l, const float *bias, const float *x, int M, float *y);
/* Valid k-tap convolution, stride 1: x has T_in frames of Cin; writes T_in − k + 1 frames. */
void vk_conv(const vk_matrix *l, int k, const float *bias, const float *x, int T_in, float *y);
/* Depthwise k-tap convolution: w tap-major [k][C]; writes T_in − k + 1 frames. */
void vk_depthwise(const float *w, int k, const float *bias, const float *x, int T_in, int C,
                  float *y);
/* Row-wise LayerNorm over C with affine g, b (in place allowed). */
void vk_layernorm(const float *x, int M, int C, const float *g, const float *b, float eps,
                  float *y);
/* Exact GELU, x·Φ(x), in place. */
void vk_gelu(float *x, int64_t n);

#endif
