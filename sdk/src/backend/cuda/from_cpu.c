/*
 * Weights for the CUDA layers from the CPU loader's prepared ones (cuda_ops.h, "transformer
 * layers"): a model loads once with the CPU loader, and its device copy is made from what
 * that loader holds, so the two backends run the same values and a model needs no second
 * loader. Each prepared weight goes back to PyTorch layout in f32 on the host, from any of the
 * forms nn/ops_weights.c leaves (f32 with padded rows, f16 panels, pair-packed binary16; a
 * binary16 value widens to f32 exactly), and is then uploaded by the ordinary *_w_init calls.
 * Load time only.
 */
#include <stdlib.h>

#include "backend/cuda/cuda_ops.h"
#include "core/core.h"
#include "nn/ops.h"

/* Element (r, n) of a pair-packed binary16 matrix of `rows` rows (nn/ops_weights.c, pack_h16:
 * per 32-column panel, round_up(rows, 2)·32 halves; rows r, r + 1 interleaved per column). */
static float h16_at(const uint16_t *h, int64_t rows, int64_t r, int n)
{
    const int P = SOTTO_F16_PANEL;
    const int64_t rp = (rows + 1) & ~(int64_t)1;
    const int c = n % P;
    return sotto_f16_to_f32(
        h[(int64_t)(n / P) * rp * P + (r / 2) * 64 + (c / 16) * 32 + (c % 16) * 2 + r % 2]);
}

int sotto_cuda_linear_to_f32(const sotto_linear_w *l, float *W)
{
    if (!l || !W || (!l->w && !l->w16 && !l->h16)) return SOTTO_ERR_INVALID_ARG;
    const int N = l->n_out, K = l->n_in, P = SOTTO_F16_PANEL;
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            float v;
            if (l->w) /* w[n_in][ldw] */
                v = l->w[(int64_t)k * l->ldw + n];
            else if (l->w16) /* panels of 32 columns, each [n_in][32] */
                v = sotto_f16_to_f32(l->w16[(int64_t)(n / P) * K * P + (int64_t)k * P + n % P]);
            else
                v = h16_at(l->h16, K, k, n);
            W[(int64_t)n * K + k] = v;
        }
    return SOTTO_OK;
}

int sotto_cuda_conv1d_to_f32(const sotto_conv1d_w *cw, float *W)
{
    if (!cw || !W) return SOTTO_ERR_INVALID_ARG;
    const int K = cw->k;
    if (cw->depthwise) {
        /* w[k][c] */
        if (!cw->w) return SOTTO_ERR_INVALID_ARG;
        for (int c = 0; c < cw->c_in; c++)
            for (int j = 0; j < K; j++)
                W[(int64_t)c * K + j] = cw->w[(int64_t)j * cw->c_in + c];
        return SOTTO_OK;
    }
    /* w[g][k][ci][ldw], or (ungrouped) the pair-packed matrix of k·c_in rows */
    const int G = cw->groups, cig = cw->c_in / G, cog = cw->c_out / G;
    if (!cw->w && !(cw->h16 && G == 1)) return SOTTO_ERR_INVALID_ARG;
    for (int g = 0; g < G; g++)
        for (int n = 0; n < cog; n++)
            for (int ci = 0; ci < cig; ci++)
                for (int j = 0; j < K; j++) {
                    const int64_t r = ((int64_t)g * K + j) * cig + ci;
                    W[(((int64_t)g * cog + n) * cig + ci) * K + j] =
                        cw->w ? cw->w[r * cw->ldw + n]
                              : h16_at(cw->h16, (int64_t)K * cw->c_in, r, n);
                }
    return SOTTO_OK;
}

int sotto_cuda_convtr1d_to_f32(const sotto_convtr1d_w *cw, float *W)
{
    if (!cw || !W) return SOTTO_ERR_INVALID_ARG;
    const int K = cw->k, G = cw->groups, cig = cw->c_in / G, cog = cw->c_out / G;
    if (!cw->w && !(cw->h16 && G == 1)) return SOTTO_ERR_INVALID_ARG;
    /* w[g][k][ci][ldw] (or pair-packed, rows k·c_in) → W[g·cig + ci][n][k] */
    for (int g = 0; g < G; g++)
        for (int ci = 0; ci < cig; ci++)
            for (int n = 0; n < cog; n++)
                for (int j = 0; j < K; j++) {
                    const int64_t r = ((int64_t)g * K + j) * cig + ci;
                    W[(((int64_t)g * cig + ci) * cog + n) * K + j] =
                        cw->w ? cw->w[r * cw->ldw + n]
                              : h16_at(cw->h16, (int64_t)K * cw->c_in, r, n);
                }
    return SOTTO_OK;
}

/* Host staging of a·b·c floats; NULL on overflow or when out of memory. */
static float *staging(int64_t a, int64_t b, int64_t c)
{
    size_t n, bytes;
    if (a < 1 || b < 1 || c < 1 || sotto_mul_size((size_t)a, (size_t)b, &n) ||
        sotto_mul_size(n, (size_t)c, &n) || sotto_mul_size(n, sizeof(float), &bytes))
        return NULL;
    return malloc(bytes);
}

int sotto_cuda_linear_w_from_cpu(sotto_cuda *cu, sotto_cuda_linear_w *w, const sotto_linear_w *src,
                                 sotto_status *st)
{
    if (!cu || !w || !src) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    float *W = staging(src->n_out, src->n_in, 1);
    if (!W) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    int rc = sotto_cuda_linear_to_f32(src, W);
    if (rc)
        rc = sotto_status_set(st, rc, "cuda linear: the CPU weight [%d, %d] holds no data",
                              src->n_out, src->n_in);
    else
        rc = sotto_cuda_linear_w_init(cu, w, W, src->n_out, src->n_in, st);
    free(W);
    return rc;
}

int sotto_cuda_conv1d_w_from_cpu(sotto_cuda *cu, sotto_cuda_conv1d_w *w, const sotto_conv1d_w *src,
                                 sotto_status *st)
{
    if (!cu || !w || !src || src->groups < 1)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    float *W = staging(src->c_out, src->c_in / src->groups, src->k);
    if (!W) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    int rc = sotto_cuda_conv1d_to_f32(src, W);
    if (rc)
        rc = sotto_status_set(st, rc, "cuda conv1d: the CPU weight holds no data");
    else
        rc = sotto_cuda_conv1d_w_init(cu, w, W, src->c_out, src->c_in, src->k, src->stride,
                                      src->dilation, src->groups, st);
    free(W);
    return rc;
}

int sotto_cuda_convtr1d_w_from_cpu(sotto_cuda *cu, sotto_cuda_convtr1d_w *w,
                                   const sotto_convtr1d_w *src, sotto_status *st)
{
    if (!cu || !w || !src || src->groups < 1)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    float *W = staging(src->c_in, src->c_out / src->groups, src->k);
    if (!W) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    int rc = sotto_cuda_convtr1d_to_f32(src, W);
    if (rc)
        rc = sotto_status_set(st, rc, "cuda convtr1d: the CPU weight holds no data");
    else
        rc = sotto_cuda_convtr1d_w_init(cu, w, W, src->c_in, src->c_out, src->k, src->stride,
                                        src->dilation, src->groups, st);
    free(W);
    return rc;
}
