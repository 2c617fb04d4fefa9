/*
 * Weight upload for the CUDA layers (cuda_ops.h): checks the geometry with the CPU's rules
 * (nn/ops_weights.c), repacks the PyTorch layout on the host into the layout each device
 * layer reads, and uploads it once, in f32 or, when the context asks for it
 * (sotto_cuda_set_weight_dtype), rounded to bf16 here on the host. Load time only: these
 * functions allocate host staging and device memory and wait for the copy.
 */
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_ops.h"
#include "core/core.h"
#include "nn/ops.h"

/* Device copy of n host floats into *out. */
static int upload_floats(sotto_cuda *cu, const float *h, size_t n, float **out, const char *what,
                         sotto_status *st)
{
    void *d = NULL;
    size_t bytes;
    *out = NULL;
    if (sotto_mul_size(n, sizeof(float), &bytes))
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "%s: size overflows", what);
    int rc = sotto_cuda_alloc(cu, bytes, &d);
    if (!rc) rc = sotto_cuda_upload(cu, d, h, bytes);
    if (rc) {
        sotto_cuda_free(cu, d);
        return sotto_status_set(st, rc, "%s: %s", what, cu ? sotto_cuda_error_message(cu) : "");
    }
    *out = d;
    return SOTTO_OK;
}

/* f32 → bf16 bits, rounded to nearest even, a NaN kept a quiet NaN: the host twin of
 * common.cuh's sotto_bf16_rne, so weights and activations round alike. */
static uint16_t bf16_rne(float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* A GEMM weight of n host floats to the device in the context's weight dtype: *w (f32) or *wb
 * (bf16); the other stays NULL. */
static int upload_weight(sotto_cuda *cu, const float *h, size_t n, float **w, uint16_t **wb,
                         const char *what, sotto_status *st)
{
    *w = NULL;
    *wb = NULL;
    if (sotto_cuda_weight_dtype(cu) != SOTTO_CUDA_BF16) return upload_floats(cu, h, n, w, what, st);
    size_t bytes;
    uint16_t *b;
    if (sotto_mul_size(n, sizeof(uint16_t), &bytes))
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "%s: size overflows", what);
    if (!(b = malloc(bytes ? bytes : 1)))
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
    for (size_t i = 0; i < n; i++)
        b[i] = bf16_rne(h[i]);
    void *d = NULL;
    int rc = sotto_cuda_alloc(cu, bytes, &d);
    if (!rc) rc = sotto_cuda_upload(cu, d, b, bytes);
    free(b);
    if (rc) {
        sotto_cuda_free(cu, d);
        return sotto_status_set(st, rc, "%s: %s", what, sotto_cuda_error_message(cu));
    }
    *wb = d;
    return SOTTO_OK;
}

/* Host staging of n floats (checked). */
static float *staging(size_t n)
{
    size_t bytes;
    return sotto_mul_size(n ? n : 1, sizeof(float), &bytes) ? NULL : malloc(bytes);
}

/* ---- linear ------------------------------------------------------------------------------- */

int sotto_cuda_linear_w_init(sotto_cuda *cu, sotto_cuda_linear_w *w, const float *W, int n_out,
                             int n_in, sotto_status *st)
{
    if (!cu || !w || !W) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    memset(w, 0, sizeof *w);
    if (n_out < 1 || n_in < 1 || n_out > (1 << 28) || n_in > (1 << 28))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "cuda linear: bad shape [%d, %d]", n_out,
                                n_in);
    /* PyTorch's [out][in] is what the GEMM reads (cuda/linear.cu): upload as is. */
    int rc = upload_weight(cu, W, (size_t)n_out * (size_t)n_in, &w->w, &w->wb, "cuda linear", st);
    if (rc) return rc;
    w->n_out = n_out;
    w->n_in = n_in;
    return SOTTO_OK;
}

void sotto_cuda_linear_w_free(sotto_cuda *cu, sotto_cuda_linear_w *w)
{
    if (!w) return;
    sotto_cuda_free(cu, w->w);
    sotto_cuda_free(cu, w->wb);
    memset(w, 0, sizeof *w);
}

/* ---- conv1d ------------------------------------------------------------------------------- */

int sotto_cuda_conv1d_w_init(sotto_cuda *cu, sotto_cuda_conv1d_w *w, const float *W, int c_out,
                             int c_in, int k, int stride, int dilation, int groups,
                             sotto_status *st)
{
    if (!cu || !w || !W) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    memset(w, 0, sizeof *w);
    int rc = sotto_conv_geom_check("cuda conv1d", c_out, c_in, k, stride, dilation, groups, st);
    if (rc) return rc;
    const int cig = c_in / groups;
    const size_t n = (size_t)c_out * (size_t)cig * (size_t)k;
    float *h = staging(n);
    if (!h) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    const int depthwise = groups == c_in && c_out == c_in;
    if (depthwise) {
        /* W[c][0][k] → w[k][c] */
        for (int c = 0; c < c_in; c++)
            for (int j = 0; j < k; j++)
                h[(size_t)j * c_in + c] = W[(size_t)c * k + j];
    } else {
        /* W[n][ci][k] → w[n][k][ci]: each row in im2col column order (cuda/conv1d.cu) */
        for (int o = 0; o < c_out; o++)
            for (int ci = 0; ci < cig; ci++)
                for (int j = 0; j < k; j++)
                    h[((size_t)o * k + j) * cig + ci] = W[((size_t)o * cig + ci) * k + j];
    }
    /* a depthwise conv runs its own f32 kernel, not a GEMM */
    rc = depthwise ? upload_floats(cu, h, n, &w->w, "cuda conv1d", st)
                   : upload_weight(cu, h, n, &w->w, &w->wb, "cuda conv1d", st);
    free(h);
    if (rc) return rc;
    w->c_in = c_in;
    w->c_out = c_out;
    w->k = k;
    w->stride = stride;
    w->dilation = dilation;
    w->groups = groups;
    w->depthwise = depthwise;
    return SOTTO_OK;
}

void sotto_cuda_conv1d_w_free(sotto_cuda *cu, sotto_cuda_conv1d_w *w)
{
    if (!w) return;
    sotto_cuda_free(cu, w->w);
    sotto_cuda_free(cu, w->wb);
    memset(w, 0, sizeof *w);
}

/* ---- transposed conv1d ------------------------------------------------------------------ */

int sotto_cuda_convtr1d_w_init(sotto_cuda *cu, sotto_cuda_convtr1d_w *w, const float *W, int c_in,
                               int c_out, int k, int stride, int dilation, int groups,
                               sotto_status *st)
{
    if (!cu || !w || !W) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    memset(w, 0, sizeof *w);
    int rc = sotto_conv_geom_check("cuda convtr1d", c_in, c_out, k, stride, dilation, groups, st);
    if (rc) return rc;
    const int cig = c_in / groups, cog = c_out / groups;
    const size_t n = (size_t)c_in * (size_t)cog * (size_t)k;
    float *h = staging(n);
    if (!h) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    /* W[g·cig + ci][o][j] → w[g][j][o][ci] (cuda/convtr1d.cu) */
    for (int g = 0; g < groups; g++)
        for (int ci = 0; ci < cig; ci++)
            for (int o = 0; o < cog; o++)
                for (int j = 0; j < k; j++)
                    h[(((size_t)g * k + j) * cog + o) * cig + ci] =
                        W[(((size_t)g * cig + ci) * cog + o) * k + j];
    rc = upload_weight(cu, h, n, &w->w, &w->wb, "cuda convtr1d", st);
    free(h);
    if (rc) return rc;
    w->c_in = c_in;
    w->c_out = c_out;
    w->k = k;
    w->stride = stride;
    w->dilation = dilation;
    w->groups = groups;
    return SOTTO_OK;
}

void sotto_cuda_convtr1d_w_free(sotto_cuda *cu, sotto_cuda_convtr1d_w *w)
{
    if (!w) return;
    sotto_cuda_free(cu, w->w);
    sotto_cuda_free(cu, w->wb);
    memset(w, 0, sizeof *w);
}
