/* Dense kernels for the Vocos stream; see kernels.h. */
#include "vocoder/vocos/kernels.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

static int to_f32(const sotto_gguf_tensor *t, float **out, const sotto_alloc *a,
                  sotto_status *st)
{
    *out = sotto_malloc(a, sizeof(float) * (size_t)t->n_elems);
    if (!*out) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    int rc = sotto_gguf_tensor_to_f32(t, *out);
    if (rc) return sotto_status_set(st, rc, "tensor '%s': cannot convert to f32", t->name.data);
    return SOTTO_OK;
}

int vk_linear_init(vk_matrix *l, const sotto_gguf_tensor *t, const sotto_alloc *a,
                   sotto_status *st)
{
    memset(l, 0, sizeof *l);
    l->N = (int)t->shape[0];
    l->K = (int)t->shape[1];
    return to_f32(t, &l->w, a, st);
}

int vk_conv_init(vk_matrix *l, const sotto_gguf_tensor *t, const sotto_alloc *a,
                 sotto_status *st)
{
    memset(l, 0, sizeof *l);
    const int Co = (int)t->shape[0], Ci = (int)t->shape[1], k = (int)t->shape[2];
    float *src;
    int rc = to_f32(t, &src, a, st);
    if (rc) return rc;
    l->w = sotto_malloc(a, sizeof(float) * (size_t)t->n_elems);
    if (!l->w) {
        sotto_free(a, src);
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    }
    for (int o = 0; o < Co; o++)
        for (int i = 0; i < Ci; i++)
            for (int j = 0; j < k; j++)
                l->w[((size_t)j * Co + o) * Ci + i] = src[((size_t)o * Ci + i) * k + j];
    sotto_free(a, src);
    l->N = Co;
    l->K = Ci;
    return SOTTO_OK;
}

void vk_linear_free(vk_matrix *l, const sotto_alloc *a)
{
    sotto_free(a, l->w);
    l->w = NULL;
}

static void gemm_bias(const vk_matrix *l, const float *bias, const float *x, int lda, int M,
                      float *y)
{
    if (M <= 0) return;
    for (int m = 0; m < M; m++) memcpy(y + (size_t)m * l->N, bias, sizeof(float) * l->N);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, l->N, l->K, 1.0f, x, lda, l->w,
                l->K, 1.0f, y, l->N);
}

void vk_linear(const vk_matrix *l, const float *bias, const float *x, int M, float *y)
{
    gemm_bias(l, bias, x, l->K, M, y);
}

void vk_conv(const vk_matrix *l, int k, const float *bias, const float *x, int T_in, float *y)
{
    /* One GEMM per tap: output frame t adds tap j's matrix times input frame t + j. */
    const int M = T_in - k + 1, Cin = l->K, N = l->N;
    if (M <= 0) return;
    for (int m = 0; m < M; m++) memcpy(y + (size_t)m * N, bias, sizeof(float) * N);
    for (int j = 0; j < k; j++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, Cin, 1.0f,
                    x + (size_t)j * Cin, Cin, l->w + (size_t)j * N * Cin, Cin, 1.0f, y, N);
}

void vk_depthwise(const float *w, int k, const float *bias, const float *x, int T_in, int C,
                  float *y)
{
    for (int t = 0; t + k <= T_in; t++) {
        float *o = y + (size_t)t * C;
        memcpy(o, bias, sizeof(float) * (size_t)C);
        for (int j = 0; j < k; j++) {
            const float *xi = x + (size_t)(t + j) * C, *wj = w + (size_t)j * C;
            for (int c = 0; c < C; c++) o[c] += wj[c] * xi[c];
        }
    }
}

void vk_layernorm(const float *x, int M, int C, const float *g, const float *b, float eps,
                  float *y)
{
    for (int m = 0; m < M; m++) {
        const float *xr = x + (size_t)m * C;
        float *yr = y + (size_t)m * C;
        double mean = 0, var = 0;
        for (int c = 0; c < C; c++) mean += xr[c];
        mean /= C;
        for (int c = 0; c < C; c++) var += ((double)xr[c] - mean) * ((double)xr[c] - mean);
        var /= C;
        const float inv = (float)(1.0 / sqrt(var + eps)), mu = (float)mean;
        for (int c = 0; c < C; c++) yr[c] = (xr[c] - mu) * inv * g[c] + b[c];
    }
}

void vk_gelu(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}
