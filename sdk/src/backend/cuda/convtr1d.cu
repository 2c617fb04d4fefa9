/*
 * ConvTranspose1d on the device, the CPU's way: the output is first filled with the bias, then
 * each tap adds one GEMM, y[t·stride + k·dilation] += x[t]·W_k for every input frame t, written
 * straight into every stride-th output row (ldc = stride·c_out). Taps that land on the same
 * rows follow each other on the stream, so no two writers ever race and no scratch is needed;
 * groups are the batch of a strided-batched GEMM. A bf16 weight (SOTTO_CUDA_BF16) first rounds
 * the input to bf16 in scratch, in blocks of input frames when the pool is short: every tap
 * accumulates into rows the bias already filled, so the blocks may follow each other freely.
 */
#include "backend/cuda/common.cuh"

extern "C" int64_t sotto_cuda_convtr1d_out_len(const sotto_cuda_convtr1d_w *w, int64_t T_in)
{
    if (!w || T_in <= 0) return 0;
    return (T_in - 1) * w->stride + (int64_t)w->dilation * (w->k - 1) + 1;
}

extern "C" size_t sotto_cuda_convtr1d_scratch(const sotto_cuda_convtr1d_w *w, int64_t T_in)
{
    if (!w || !w->wb || T_in <= 0) return 0;
    /* + 256: the pool rounds every request up to its alignment */
    return (size_t)T_in * (size_t)w->c_in * sizeof(uint16_t) + 256;
}

/* The bf16 taps: input frames in blocks whose rounded copy fits the free scratch. */
static int convtr_bf16(sotto_cuda *cu, const sotto_cuda_convtr1d_w *w, const float *x, int64_t T_in,
                       float *y)
{
    const int G = w->groups, cig = w->c_in / G, cog = w->c_out / G;
    const size_t mark = sotto_cuda_scratch_mark(cu);
    const size_t row_bytes = (size_t)w->c_in * sizeof(uint16_t);
    int64_t block = (int64_t)(sotto_cuda_scratch_free(cu) / row_bytes);
    if (block > T_in) block = T_in;
    if (block < 1) block = 1; /* the request below then fails and names the shortfall */
    uint16_t *xb;
    int rc = sotto_cuda_scratch_alloc(cu, (size_t)block * row_bytes, (void **)&xb);
    if (rc) return rc;
    const int64_t ldy = (int64_t)w->stride * w->c_out;
    for (int64_t t0 = 0; t0 < T_in; t0 += block) {
        const int64_t rows = T_in - t0 < block ? T_in - t0 : block;
        if ((rc = sotto_cuda_to_bf16(cu, x + t0 * w->c_in, w->c_in, rows, w->c_in, xb))) return rc;
        for (int k = 0; k < w->k; k++) {
            const uint16_t *wk = w->wb + (int64_t)k * cog * cig;
            rc = sotto_cuda_gemm_bf16(
                cu, (int)rows, cog, cig, xb, w->c_in, cig, wk, cig, (int64_t)w->k * cog * cig, 1.0f,
                y + t0 * ldy + (int64_t)k * w->dilation * w->c_out, ldy, cog, G);
            if (rc) return rc;
        }
    }
    sotto_cuda_scratch_release(cu, mark);
    return SOTTO_OK;
}

extern "C" int64_t sotto_cuda_conv_transpose1d(sotto_cuda *cu, const sotto_cuda_convtr1d_w *w,
                                               const float *bias, const float *x, int64_t T_in,
                                               float *y)
{
    if (!cu || !w || (!w->w && !w->wb) || T_in < 0) return SOTTO_ERR_INVALID_ARG;
    int rc = sotto_cuda_enter(cu);
    if (rc) return rc;
    const int64_t L = sotto_cuda_convtr1d_out_len(w, T_in);
    if (L == 0) return 0;
    if (!x || !y || T_in > INT32_MAX || (int64_t)w->stride * w->c_out > INT32_MAX)
        return SOTTO_ERR_INVALID_ARG;
    const int G = w->groups, cig = w->c_in / G, cog = w->c_out / G;
    /* The taps of neighbouring frames overlap (stride < k) and some rows get none (stride >
     * dilation·(k − 1) + 1), so every row starts from its bias or zero. */
    if ((rc = sotto_cuda_bias_rows(cu, bias, L, w->c_out, y, w->c_out, 0))) return rc;
    if (w->wb) return (rc = convtr_bf16(cu, w, x, T_in, y)) ? rc : L;
    for (int k = 0; k < w->k; k++) {
        /* per group: rows of W_{g,k} are the cog outputs, each cig inputs long */
        const float *wk = w->w + (int64_t)k * cog * cig;
        rc = sotto_cuda_gemm(
            cu, (int)T_in, cog, cig, x, w->c_in, cig, wk, cig, (int64_t)w->k * cog * cig, 1.0f,
            y + (int64_t)k * w->dilation * w->c_out, (int64_t)w->stride * w->c_out, cog, G);
        if (rc) return rc;
    }
    return L;
}
