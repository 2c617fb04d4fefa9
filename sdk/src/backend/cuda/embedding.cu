/*
 * Embedding lookup on the device: one thread per output value, consecutive threads along a
 * row. The ids live on the device, so a bad id cannot be refused before the launch as the CPU
 * does: its row is written as zeros (never a read outside the table) and a flag is raised that
 * the next sotto_cuda_sync reports.
 */
#include "backend/cuda/common.cuh"

__global__ void embedding_kernel(const float *__restrict__ table, int64_t n_rows, int dim,
                                 const int32_t *__restrict__ ids, int64_t n_ids,
                                 float *__restrict__ y, int *flags)
{
    const int64_t n = n_ids * dim;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t row = i / dim;
        const int d = (int)(i - row * dim);
        const int32_t id = ids[row];
        if (id < 0 || id >= n_rows) {
            y[i] = 0.0f;
            if (d == 0) atomicOr(flags, SOTTO_CUDA_FLAG_BAD_ID);
        } else {
            y[i] = table[(int64_t)id * dim + d];
        }
    }
}

extern "C" int sotto_cuda_embedding(sotto_cuda *cu, const float *table, int64_t n_rows, int dim,
                                    const int32_t *ids, int64_t n_ids, float *y)
{
    if (!cu || n_ids < 0 || dim < 1 || n_rows < 0) return SOTTO_ERR_INVALID_ARG;
    int rc = sotto_cuda_enter(cu);
    if (rc || n_ids == 0) return rc;
    if (!table || !ids || !y) return SOTTO_ERR_INVALID_ARG;
    const int64_t n = n_ids * dim;
    embedding_kernel<<<sotto_cuda_grid(n), SOTTO_CUDA_BLOCK, 0, cu->stream>>>(
        table, n_rows, dim, ids, n_ids, y, cu->flags);
    SOTTO_CU_LAUNCHED(cu, "embedding_kernel");
    return SOTTO_OK;
}
