/*
 * Per-row norms and the per-channel affine on the device. One block per row (rows beyond the
 * grid loop back): the block sums the row in float, with each thread owning the same channels
 * in every pass, so y may be x. LayerNorm takes the mean first and then the centred squares
 * (two passes, as the CPU reference), which keeps the variance exact for rows with a large
 * mean; the CPU accumulates in double, the difference stays far below the test's budget for
 * the row lengths models use.
 */
#include "backend/cuda/common.cuh"

#define ROW_BLOCK 256

static unsigned row_grid(int64_t rows)
{
    return (unsigned)(rows < 65535 ? rows : 65535);
}

__global__ void layernorm_kernel(const float *x, int64_t T, int C, const float *__restrict__ gamma,
                                 const float *__restrict__ beta, float eps, float *y)
{
    for (int64_t r = blockIdx.x; r < T; r += gridDim.x) {
        const float *xr = x + r * C;
        float *yr = y + r * C;
        float s = 0.0f;
        for (int c = threadIdx.x; c < C; c += blockDim.x)
            s += xr[c];
        const float mean = sotto_block_reduce<false>(s) / (float)C;
        float v = 0.0f;
        for (int c = threadIdx.x; c < C; c += blockDim.x) {
            const float d = xr[c] - mean;
            v += d * d;
        }
        const float inv = 1.0f / sqrtf(sotto_block_reduce<false>(v) / (float)C + eps);
        for (int c = threadIdx.x; c < C; c += blockDim.x) {
            float o = (xr[c] - mean) * inv;
            if (gamma) o *= gamma[c];
            if (beta) o += beta[c];
            yr[c] = o;
        }
    }
}

__global__ void rmsnorm_kernel(const float *x, int64_t T, int C, const float *__restrict__ gamma,
                               float eps, float *y)
{
    for (int64_t r = blockIdx.x; r < T; r += gridDim.x) {
        const float *xr = x + r * C;
        float *yr = y + r * C;
        float s = 0.0f;
        for (int c = threadIdx.x; c < C; c += blockDim.x)
            s += xr[c] * xr[c];
        const float inv = 1.0f / sqrtf(sotto_block_reduce<false>(s) / (float)C + eps);
        for (int c = threadIdx.x; c < C; c += blockDim.x)
            yr[c] = xr[c] * inv * (gamma ? gamma[c] : 1.0f);
    }
}

__global__ void channel_affine_kernel(const float *x, int64_t n, int C,
                                      const float *__restrict__ scale,
                                      const float *__restrict__ shift, float *y)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int c = (int)(i % C);
        y[i] = shift ? x[i] * scale[c] + shift[c] : x[i] * scale[c];
    }
}

/* The CPU's argument rules (nn/ops.h rows_ok), then the context's state. */
static int rows_enter(sotto_cuda *cu, const float *x, int64_t T, int C, const float *y)
{
    if (!cu || T < 0 || C < 1 || (T > 0 && (!x || !y))) return SOTTO_ERR_INVALID_ARG;
    return sotto_cuda_enter(cu);
}

extern "C" int sotto_cuda_layernorm(sotto_cuda *cu, const float *x, int64_t T, int C,
                                    const float *gamma, const float *beta, float eps, float *y)
{
    if (!(eps >= 0.0f)) return SOTTO_ERR_INVALID_ARG;
    int rc = rows_enter(cu, x, T, C, y);
    if (rc || T == 0) return rc;
    layernorm_kernel<<<row_grid(T), ROW_BLOCK, 0, cu->stream>>>(x, T, C, gamma, beta, eps, y);
    SOTTO_CU_LAUNCHED(cu, "layernorm_kernel");
    return SOTTO_OK;
}

extern "C" int sotto_cuda_rmsnorm(sotto_cuda *cu, const float *x, int64_t T, int C,
                                  const float *gamma, float eps, float *y)
{
    if (!(eps >= 0.0f)) return SOTTO_ERR_INVALID_ARG;
    int rc = rows_enter(cu, x, T, C, y);
    if (rc || T == 0) return rc;
    rmsnorm_kernel<<<row_grid(T), ROW_BLOCK, 0, cu->stream>>>(x, T, C, gamma, eps, y);
    SOTTO_CU_LAUNCHED(cu, "rmsnorm_kernel");
    return SOTTO_OK;
}

extern "C" int sotto_cuda_channel_affine(sotto_cuda *cu, const float *x, int64_t T, int C,
                                         const float *scale, const float *shift, float *y)
{
    if (!scale) return SOTTO_ERR_INVALID_ARG;
    int rc = rows_enter(cu, x, T, C, y);
    if (rc || T == 0) return rc;
    const int64_t n = T * C;
    channel_affine_kernel<<<sotto_cuda_grid(n), SOTTO_CUDA_BLOCK, 0, cu->stream>>>(x, n, C, scale,
                                                                                   shift, y);
    SOTTO_CU_LAUNCHED(cu, "channel_affine_kernel");
    return SOTTO_OK;
}
