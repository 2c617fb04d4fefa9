/*
 * Row softmax on the device: one block per row, max-subtracted as the CPU reference (max, then
 * the exponentials and their sum, then the scaling), each thread owning the same elements in
 * every pass so the softmax may run in place.
 */
#include "backend/cuda/common.cuh"

#define ROW_BLOCK 256

__global__ void softmax_kernel(const float *x, int64_t rows, int n, float *y)
{
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        float mx = -INFINITY;
        for (int i = threadIdx.x; i < n; i += blockDim.x)
            mx = fmaxf(mx, xr[i]);
        mx = sotto_block_reduce<true>(mx);
        float s = 0.0f;
        for (int i = threadIdx.x; i < n; i += blockDim.x) {
            const float e = expf(xr[i] - mx);
            yr[i] = e;
            s += e;
        }
        const float inv = 1.0f / sotto_block_reduce<false>(s);
        for (int i = threadIdx.x; i < n; i += blockDim.x)
            yr[i] *= inv;
    }
}

extern "C" int sotto_cuda_softmax(sotto_cuda *cu, const float *x, int64_t rows, int n, float *y)
{
    if (!cu || rows < 0 || n < 1 || (rows > 0 && (!x || !y))) return SOTTO_ERR_INVALID_ARG;
    int rc = sotto_cuda_enter(cu);
    if (rc || rows == 0) return rc;
    const unsigned grid = (unsigned)(rows < 65535 ? rows : 65535);
    softmax_kernel<<<grid, ROW_BLOCK, 0, cu->stream>>>(x, rows, n, y);
    SOTTO_CU_LAUNCHED(cu, "softmax_kernel");
    return SOTTO_OK;
}
