/*
 * Conv1d on the device: depthwise convs as a direct kernel (one thread per output value, its
 * taps read down the time axis, consecutive threads on consecutive channels), every other conv
 * as GEMMs. A pointwise conv, or an undilated ungrouped one whose stride is at least its
 * kernel, reads its windows in place (output frame t sees k·c_in contiguous floats); the rest
 * first gather the windows into an im2col matrix in scratch, rows [T_out][g][k][c_in/g], and
 * run one strided-batched GEMM over the groups. When the pool cannot hold the whole matrix,
 * the output is made in row blocks that fit, so a small pool costs launches, not failure.
 * A bf16 weight (SOTTO_CUDA_BF16) always gathers: the im2col matrix is where its input gets
 * rounded to bf16, so reading in place would need the same copy anyway.
 */
#include "backend/cuda/common.cuh"

extern "C" int64_t sotto_cuda_conv1d_out_len(const sotto_cuda_conv1d_w *w, int64_t T_in)
{
    if (!w || T_in <= 0) return 0;
    const int64_t span = (int64_t)w->dilation * (w->k - 1) + 1;
    return T_in < span ? 0 : (T_in - span) / w->stride + 1;
}

/* The windows can be read straight from x (no im2col). */
static int reads_in_place(const sotto_cuda_conv1d_w *w)
{
    return w->depthwise || w->k == 1 || (w->groups == 1 && w->dilation == 1 && w->stride >= w->k);
}

extern "C" size_t sotto_cuda_conv1d_scratch(const sotto_cuda_conv1d_w *w, int64_t T_in)
{
    if (!w || w->depthwise || (!w->wb && reads_in_place(w))) return 0;
    const int64_t T_out = sotto_cuda_conv1d_out_len(w, T_in);
    /* + 256: the pool rounds every request up to its alignment */
    return (size_t)T_out * (size_t)w->k * (size_t)w->c_in *
               (w->wb ? sizeof(uint16_t) : sizeof(float)) +
           256;
}

/* The im2col matrix's element: f32, or the bf16 bits a bf16 GEMM reads. */
__device__ inline void col_store(float *p, float v)
{
    *p = v;
}
__device__ inline void col_store(uint16_t *p, float v)
{
    *p = sotto_bf16_rne(v);
}

__global__ void dwconv_kernel(const float *__restrict__ x, int C, const float *__restrict__ w,
                              int K, int stride, int dilation, const float *__restrict__ bias,
                              float *__restrict__ y, int64_t T_out)
{
    const int64_t n = T_out * C;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t t = i / C;
        const int c = (int)(i - t * C);
        const float *xc = x + t * stride * (int64_t)C + c;
        float acc = bias ? bias[c] : 0.0f;
        for (int k = 0; k < K; k++)
            acc += w[(int64_t)k * C + c] * xc[(int64_t)k * dilation * C];
        y[i] = acc;
    }
}

/* col[t][g][k][ci] = x[(t0 + t)·stride + k·dilation][g·cig + ci] for t < rows. */
template <typename T>
__global__ void im2col_kernel(const float *__restrict__ x, int c_in, int cig, int K, int stride,
                              int dilation, int64_t t0, int64_t rows, T *__restrict__ col)
{
    const int64_t kc = (int64_t)K * c_in, per_group = (int64_t)K * cig;
    const int64_t n = rows * kc;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t t = i / kc;
        const int64_t r = i - t * kc;
        const int64_t g = r / per_group;
        const int64_t r2 = r - g * per_group;
        const int64_t k = r2 / cig;
        const int64_t ci = r2 - k * cig;
        col_store(col + i, x[((t0 + t) * stride + k * dilation) * c_in + g * cig + ci]);
    }
}

extern "C" int64_t sotto_cuda_conv1d(sotto_cuda *cu, const sotto_cuda_conv1d_w *w,
                                     const float *bias, const float *x, int64_t T_in, float *y)
{
    if (!cu || !w || (!w->w && !w->wb) || (w->depthwise && !w->w) || T_in < 0)
        return SOTTO_ERR_INVALID_ARG;
    int rc = sotto_cuda_enter(cu);
    if (rc) return rc;
    const int64_t T_out = sotto_cuda_conv1d_out_len(w, T_in);
    if (T_out == 0) return 0;
    const int64_t kc = (int64_t)w->k * w->c_in;
    if (!x || !y || T_out > INT32_MAX || (int64_t)w->stride * w->c_in > INT32_MAX || kc > INT32_MAX)
        return SOTTO_ERR_INVALID_ARG;

    if (w->depthwise) {
        dwconv_kernel<<<sotto_cuda_grid(T_out * w->c_in), SOTTO_CUDA_BLOCK, 0, cu->stream>>>(
            x, w->c_in, w->w, w->k, w->stride, w->dilation, bias, y, T_out);
        SOTTO_CU_LAUNCHED(cu, "dwconv_kernel");
        return T_out;
    }

    const int G = w->groups, cig = w->c_in / G, cog = w->c_out / G;
    const int Kg = w->k * cig; /* GEMM depth per group */
    const float beta = bias ? 1.0f : 0.0f;
    if (bias && (rc = sotto_cuda_bias_rows(cu, bias, T_out, w->c_out, y, w->c_out, 0))) return rc;
    if (!w->wb && reads_in_place(w)) {
        /* k == 1: group g reads channels [g·cig, (g+1)·cig) of every stride-th frame;
         * otherwise G == 1 and frame t's window is k·c_in floats at t·stride·c_in. */
        rc = sotto_cuda_gemm(cu, (int)T_out, cog, Kg, x, (int64_t)w->stride * w->c_in, cig, w->w,
                             Kg, (int64_t)cog * Kg, beta, y, w->c_out, cog, G);
        return rc ? rc : T_out;
    }

    const size_t mark = sotto_cuda_scratch_mark(cu);
    const size_t row_bytes = (size_t)kc * (w->wb ? sizeof(uint16_t) : sizeof(float));
    int64_t block = (int64_t)(sotto_cuda_scratch_free(cu) / row_bytes);
    if (block > T_out) block = T_out;
    if (block < 1) block = 1; /* the request below then fails and names the shortfall */
    void *col;
    if ((rc = sotto_cuda_scratch_alloc(cu, (size_t)block * row_bytes, &col))) return rc;
    for (int64_t t0 = 0; t0 < T_out; t0 += block) {
        const int64_t rows = T_out - t0 < block ? T_out - t0 : block;
        float *yb = y + t0 * w->c_out;
        if (w->wb) {
            im2col_kernel<uint16_t>
                <<<sotto_cuda_grid(rows * kc), SOTTO_CUDA_BLOCK, 0, cu->stream>>>(
                    x, w->c_in, cig, w->k, w->stride, w->dilation, t0, rows, (uint16_t *)col);
            SOTTO_CU_LAUNCHED(cu, "im2col_kernel");
            rc = sotto_cuda_gemm_bf16(cu, (int)rows, cog, Kg, (const uint16_t *)col, kc, Kg, w->wb,
                                      Kg, (int64_t)cog * Kg, beta, yb, w->c_out, cog, G);
        } else {
            im2col_kernel<float><<<sotto_cuda_grid(rows * kc), SOTTO_CUDA_BLOCK, 0, cu->stream>>>(
                x, w->c_in, cig, w->k, w->stride, w->dilation, t0, rows, (float *)col);
            SOTTO_CU_LAUNCHED(cu, "im2col_kernel");
            rc = sotto_cuda_gemm(cu, (int)rows, cog, Kg, (const float *)col, kc, Kg, w->w, Kg,
                                 (int64_t)cog * Kg, beta, yb, w->c_out, cog, G);
        }
        if (rc) return rc;
    }
    sotto_cuda_scratch_release(cu, mark);
    return T_out;
}
