/*
 * Device-to-device copies and zeroing of row groups (cuda_rows.h). The row groups are the
 * zero frames between sequences packed into one buffer; their offsets are read from device
 * memory, so one launch clears every gap of a batch whatever the sequence lengths.
 */
#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_rows.h"

extern "C" int sotto_cuda_copy(sotto_cuda *cu, void *dst, const void *src, size_t bytes)
{
    if (bytes && (!dst || !src)) return SOTTO_ERR_INVALID_ARG;
    int rc = sotto_cuda_enter(cu);
    if (rc || !bytes) return rc;
    SOTTO_CU(cu, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cu->stream));
    return SOTTO_OK;
}

/* One thread per zeroed value: group g = i / (rows_each·C), then the row within it and the
 * channel, so consecutive threads write consecutive floats. */
__global__ void zero_row_groups_kernel(float *x, int C, const int32_t *__restrict__ starts,
                                       int64_t n, int rows_each)
{
    const int64_t per_group = (int64_t)rows_each * C;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t g = i / per_group;
        const int64_t r = i - g * per_group;
        x[(int64_t)starts[g] * C + r] = 0.0f;
    }
}

extern "C" int sotto_cuda_zero_row_groups(sotto_cuda *cu, float *x, int C, const int32_t *starts,
                                          int n_groups, int rows_each)
{
    if (!cu || C < 1 || n_groups < 0 || rows_each < 0) return SOTTO_ERR_INVALID_ARG;
    int rc = sotto_cuda_enter(cu);
    if (rc || n_groups == 0 || rows_each == 0) return rc;
    if (!x || !starts) return SOTTO_ERR_INVALID_ARG;
    const int64_t n = (int64_t)n_groups * rows_each * C;
    zero_row_groups_kernel<<<sotto_cuda_grid(n), SOTTO_CUDA_BLOCK, 0, cu->stream>>>(x, C, starts, n,
                                                                                    rows_each);
    SOTTO_CU_LAUNCHED(cu, "zero_row_groups_kernel");
    return SOTTO_OK;
}
