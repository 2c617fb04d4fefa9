/*
 * y = min(exp(x), hi), element-wise: the magnitude of the Vocos ISTFT head (vocoder/vocos,
 * head_run: mag = exp(x) clipped at 100), in the CPU's order of operations (exp first, then
 * the clip, so a NaN stays NaN). CUDA's accurate expf (never the __expf intrinsic) stays within
 * a few ulp of libm.
 */
#include "backend/cuda/common.cuh"

__global__ void exp_clamp_kernel(const float *x, int64_t n, float hi, float *y)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const float m = expf(x[i]);
        y[i] = m > hi ? hi : m;
    }
}

extern "C" int sotto_cuda_exp_clamp(sotto_cuda *cu, const float *x, int64_t n, float hi, float *y)
{
    if (!cu || n < 0) return SOTTO_ERR_INVALID_ARG;
    int rc = sotto_cuda_enter(cu);
    if (rc || n == 0) return rc;
    if (!x || !y) return SOTTO_ERR_INVALID_ARG;
    exp_clamp_kernel<<<sotto_cuda_grid(n), SOTTO_CUDA_BLOCK, 0, cu->stream>>>(x, n, hi, y);
    SOTTO_CU_LAUNCHED(cu, "exp_clamp_kernel");
    return SOTTO_OK;
}
