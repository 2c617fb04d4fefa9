/*
 * The per-group row ops of cuda_groups.h. Each is a grid-stride kernel over its output
 * elements; the concealment scan and the group search of the expansion run per thread (a
 * run of concealed groups and a binary search over the offsets are short, and no thread
 * depends on another, so no pass over the groups is needed first).
 */
#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_groups.h"

/* The levels travel by value: no device copy, and a graph replays them as captured (they are
 * the model's, fixed). */
struct fsq_levels {
    int n;
    int L[SOTTO_CUDA_FSQ_MAX_LEVELS];
};

/* Code dimension d of FSQ index v, as flexicodec_fsq_codes computes it. */
__device__ static float fsq_code(int32_t v, int d, const fsq_levels &lv)
{
    for (int j = 0; j < d; j++)
        v /= lv.L[j];
    const int half = lv.L[d] / 2;
    return (float)(v % lv.L[d] - half) / (float)half;
}

__global__ void fsq_codes_kernel(const int32_t *__restrict__ idx, const int32_t *__restrict__ count,
                                 int G, fsq_levels lv, float *codes)
{
    const int64_t n = (int64_t)G * lv.n;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int k = (int)(i / lv.n), d = (int)(i % lv.n);
        if (count[k] >= 0) {
            codes[i] = fsq_code(idx[k], d, lv);
            continue;
        }
        /* the run of concealed groups around k: [g, e) */
        int g = k, e = k + 1;
        while (g > 0 && count[g - 1] < 0)
            g--;
        while (e < G && count[e] < 0)
            e++;
        const int has_l = g > 0, has_r = e < G;
        const float l = has_l ? fsq_code(idx[g - 1], d, lv) : 0.0f;
        const float r = has_r ? fsq_code(idx[e], d, lv) : 0.0f;
        const float t = (float)(k - g + 1) / (float)(e - g + 1);
        float v = 0.0f;
        if (has_l && has_r)
            v = (1.0f - t) * l + t * r;
        else if (has_l || has_r)
            v = has_l ? l : r;
        codes[i] = v;
    }
}

extern "C" int sotto_cuda_fsq_codes(sotto_cuda *cu, const int32_t *idx, const int32_t *count, int G,
                                    const int *levels, int n_levels, float *codes)
{
    if (!cu || G < 0 || !levels || n_levels < 1 || n_levels > SOTTO_CUDA_FSQ_MAX_LEVELS)
        return SOTTO_ERR_INVALID_ARG;
    fsq_levels lv = {};
    lv.n = n_levels;
    for (int d = 0; d < n_levels; d++) {
        if (levels[d] < 2) return SOTTO_ERR_INVALID_ARG;
        lv.L[d] = levels[d];
    }
    int rc = sotto_cuda_enter(cu);
    if (rc || G == 0) return rc;
    if (!idx || !count || !codes) return SOTTO_ERR_INVALID_ARG;
    const int64_t n = (int64_t)G * n_levels;
    fsq_codes_kernel<<<sotto_cuda_grid(n), SOTTO_CUDA_BLOCK, 0, cu->stream>>>(idx, count, G, lv,
                                                                              codes);
    SOTTO_CU_LAUNCHED(cu, "fsq_codes_kernel");
    return SOTTO_OK;
}

__global__ void rows_masked_add_kernel(float *acc, const float *x, const float *__restrict__ bias,
                                       const int32_t *__restrict__ count, int stage, int first,
                                       int64_t n, int C)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int c = (int)(i % C);
        const float add = stage < count[i / C] ? (bias ? x[i] + bias[c] : x[i]) : 0.0f;
        acc[i] = first ? add : acc[i] + add;
    }
}

extern "C" int sotto_cuda_rows_masked_add(sotto_cuda *cu, float *acc, const float *x,
                                          const float *bias, const int32_t *count, int stage,
                                          int first, int G, int C)
{
    if (!cu || G < 0 || C < 1 || stage < 0) return SOTTO_ERR_INVALID_ARG;
    int rc = sotto_cuda_enter(cu);
    if (rc || G == 0) return rc;
    if (!acc || !x || !count) return SOTTO_ERR_INVALID_ARG;
    const int64_t n = (int64_t)G * C;
    rows_masked_add_kernel<<<sotto_cuda_grid(n), SOTTO_CUDA_BLOCK, 0, cu->stream>>>(
        acc, x, bias, count, stage, first != 0, n, C);
    SOTTO_CU_LAUNCHED(cu, "rows_masked_add_kernel");
    return SOTTO_OK;
}

__global__ void expand_rows_kernel(const float *__restrict__ a, const float *__restrict__ b,
                                   const int32_t *__restrict__ off, int G, int C, int64_t n,
                                   float *y)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t t = i / C;
        const int c = (int)(i % C);
        /* the last group starting at or before t: the one whose frames hold t (a group of no
         * frames starts where the next one does) */
        int lo = 0, hi = G; /* off[lo] ≤ t < off[hi] */
        while (hi - lo > 1) {
            const int mid = (lo + hi) / 2;
            if (off[mid] <= t)
                lo = mid;
            else
                hi = mid;
        }
        const int64_t k = (int64_t)lo * C + c;
        y[i] = b ? a[k] + b[k] : a[k];
    }
}

extern "C" int sotto_cuda_expand_rows(sotto_cuda *cu, const float *a, const float *b,
                                      const int32_t *off, int G, int C, int64_t T, float *y)
{
    if (!cu || G < 0 || C < 1 || T < 0) return SOTTO_ERR_INVALID_ARG;
    int rc = sotto_cuda_enter(cu);
    if (rc || T == 0) return rc;
    if (!a || !off || !y || G < 1) return SOTTO_ERR_INVALID_ARG;
    const int64_t n = T * C;
    expand_rows_kernel<<<sotto_cuda_grid(n), SOTTO_CUDA_BLOCK, 0, cu->stream>>>(a, b, off, G, C, n,
                                                                                y);
    SOTTO_CU_LAUNCHED(cu, "expand_rows_kernel");
    return SOTTO_OK;
}
