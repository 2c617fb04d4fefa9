/*
 * Snake (DAC's Snake1d) on the device: y = x + sin²(α_c·x)/(α_c + 1e-9) over x[T][C], one
 * thread per value. Written in torch's order, the reciprocal of α + 1e-9 times the square, as
 * the CPU reference; sinf is the accurate one (range reduction included), since α·x can be
 * large in a trained model.
 */
#include "backend/cuda/common.cuh"

__global__ void snake_kernel(const float *x, int64_t n, int C, const float *__restrict__ alpha,
                             float *y)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const float a = alpha[i % C], v = x[i];
        const float s = sinf(a * v);
        y[i] = v + (1.0f / (a + 1e-9f)) * (s * s);
    }
}

extern "C" int sotto_cuda_snake(sotto_cuda *cu, const float *x, int64_t T, int C,
                                const float *alpha, float *y)
{
    if (!cu || T < 0 || C < 1 || !alpha || (T > 0 && (!x || !y))) return SOTTO_ERR_INVALID_ARG;
    int rc = sotto_cuda_enter(cu);
    if (rc || T == 0) return rc;
    const int64_t n = T * C;
    snake_kernel<<<sotto_cuda_grid(n), SOTTO_CUDA_BLOCK, 0, cu->stream>>>(x, n, C, alpha, y);
    SOTTO_CU_LAUNCHED(cu, "snake_kernel");
    return SOTTO_OK;
}
