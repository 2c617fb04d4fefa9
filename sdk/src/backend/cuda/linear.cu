/*
 * Linear on cuBLAS, and the GEMM helper the convolutions share. Activations are row-major
 * x[M][K] and the weight stays in PyTorch layout W[N][K], which cuBLAS (column-major) sees as
 * Xᵀ (K × M) and Wᵀ (K × N): y = x·Wᵀ is Yᵀ = op_T(Wᵀ)·Xᵀ, one call with no transposed copy.
 * The bias is written into y first and the product added with beta = 1, so bias and
 * accumulation cost one light kernel and no second pass after the GEMM. A bf16 weight
 * (SOTTO_CUDA_BF16) takes its input rounded to bf16 in scratch, in row blocks when the pool is
 * short, since cuBLAS has no GEMM mixing f32 and bf16 operands.
 */
#include "backend/cuda/common.cuh"

int sotto_cuda_gemm(sotto_cuda *cu, int M, int N, int K, const float *X, int64_t ldx, int64_t sx,
                    const float *W, int64_t ldw, int64_t sw, float beta, float *Y, int64_t ldy,
                    int64_t sy, int batch)
{
    const float alpha = 1.0f;
    /* CUBLAS_COMPUTE_32F never uses TF32, whatever the handle's math mode or the
     * NVIDIA_TF32_OVERRIDE environment says; the _FAST_TF32 type asks for it. */
    const cublasComputeType_t ct =
        cu->allow_tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    SOTTO_CUBLAS(cu, cu->cublas->gemm_strided_batched_ex(
                         cu->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &alpha, W, CUDA_R_32F,
                         (int)ldw, (long long)sw, X, CUDA_R_32F, (int)ldx, (long long)sx, &beta, Y,
                         CUDA_R_32F, (int)ldy, (long long)sy, batch, ct, CUBLAS_GEMM_DEFAULT));
    return SOTTO_OK;
}

int sotto_cuda_gemm_bf16(sotto_cuda *cu, int M, int N, int K, const uint16_t *X, int64_t ldx,
                         int64_t sx, const uint16_t *W, int64_t ldw, int64_t sw, float beta,
                         float *Y, int64_t ldy, int64_t sy, int batch)
{
    const float alpha = 1.0f;
    /* bf16 inputs, f32 output: cuBLAS accepts CUBLAS_COMPUTE_32F (tensor cores, f32 sums) */
    SOTTO_CUBLAS(cu,
                 cu->cublas->gemm_strided_batched_ex(
                     cu->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &alpha, W, CUDA_R_16BF, (int)ldw,
                     (long long)sw, X, CUDA_R_16BF, (int)ldx, (long long)sx, &beta, Y, CUDA_R_32F,
                     (int)ldy, (long long)sy, batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return SOTTO_OK;
}

__global__ void to_bf16_kernel(const float *__restrict__ X, int64_t ldx, int64_t rows, int cols,
                               uint16_t *__restrict__ Xb)
{
    const int64_t n = rows * cols;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = i / cols;
        Xb[i] = sotto_bf16_rne(X[r * ldx + (i - r * cols)]);
    }
}

int sotto_cuda_to_bf16(sotto_cuda *cu, const float *X, int64_t ldx, int64_t rows, int cols,
                       uint16_t *Xb)
{
    if (rows <= 0 || cols <= 0) return SOTTO_OK;
    to_bf16_kernel<<<sotto_cuda_grid(rows * cols), SOTTO_CUDA_BLOCK, 0, cu->stream>>>(X, ldx, rows,
                                                                                      cols, Xb);
    SOTTO_CU_LAUNCHED(cu, "to_bf16_kernel");
    return SOTTO_OK;
}

__global__ void bias_rows_kernel(const float *__restrict__ bias, int64_t M, int N, float *Y,
                                 int64_t ldy, int acc)
{
    const int64_t n_all = M * N;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n_all;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t m = i / N;
        const int n = (int)(i - m * N);
        float *y = Y + m * ldy + n;
        const float b = bias ? bias[n] : 0.0f;
        *y = acc ? *y + b : b;
    }
}

int sotto_cuda_bias_rows(sotto_cuda *cu, const float *bias, int64_t M, int N, float *Y, int64_t ldy,
                         int acc)
{
    if (M <= 0 || N <= 0 || (acc && !bias)) return SOTTO_OK;
    bias_rows_kernel<<<sotto_cuda_grid(M * N), SOTTO_CUDA_BLOCK, 0, cu->stream>>>(bias, M, N, Y,
                                                                                  ldy, acc);
    SOTTO_CU_LAUNCHED(cu, "bias_rows_kernel");
    return SOTTO_OK;
}

extern "C" size_t sotto_cuda_linear_scratch(const sotto_cuda_linear_w *w, int64_t M)
{
    if (!w || !w->wb || M <= 0) return 0;
    /* + 256: the pool rounds every request up to its alignment */
    return (size_t)M * (size_t)w->n_in * sizeof(uint16_t) + 256;
}

/* The bf16 product y[M] (beta as sotto_cuda_gemm's) in row blocks whose rounded input fits the
 * free scratch. */
static int linear_bf16(sotto_cuda *cu, const sotto_cuda_linear_w *w, const float *x, int64_t ldx,
                       int64_t M, float beta, float *y, int64_t ldy)
{
    const size_t mark = sotto_cuda_scratch_mark(cu);
    const size_t row_bytes = (size_t)w->n_in * sizeof(uint16_t);
    int64_t block = (int64_t)(sotto_cuda_scratch_free(cu) / row_bytes);
    if (block > M) block = M;
    if (block < 1) block = 1; /* the request below then fails and names the shortfall */
    uint16_t *xb;
    int rc = sotto_cuda_scratch_alloc(cu, (size_t)block * row_bytes, (void **)&xb);
    if (rc) return rc;
    for (int64_t m0 = 0; m0 < M; m0 += block) {
        const int64_t rows = M - m0 < block ? M - m0 : block;
        if ((rc = sotto_cuda_to_bf16(cu, x + m0 * ldx, ldx, rows, w->n_in, xb)) ||
            (rc = sotto_cuda_gemm_bf16(cu, (int)rows, w->n_out, w->n_in, xb, w->n_in, 0, w->wb,
                                       w->n_in, 0, beta, y + m0 * ldy, ldy, 0, 1)))
            return rc;
    }
    sotto_cuda_scratch_release(cu, mark);
    return SOTTO_OK;
}

extern "C" int sotto_cuda_linear_ex(sotto_cuda *cu, const sotto_cuda_linear_w *w, const float *bias,
                                    const float *x, int64_t ldx, int64_t M, float *y, int64_t ldy,
                                    int accumulate)
{
    if (!cu || !w || (!w->w && !w->wb) || M < 0 || M > INT32_MAX || ldx < w->n_in ||
        ldy < w->n_out || ldx > INT32_MAX || ldy > INT32_MAX)
        return SOTTO_ERR_INVALID_ARG;
    int rc = sotto_cuda_enter(cu);
    if (rc || M == 0) return rc;
    if (!x || !y) return SOTTO_ERR_INVALID_ARG;
    float beta = accumulate ? 1.0f : 0.0f;
    if (bias) {
        rc = sotto_cuda_bias_rows(cu, bias, M, w->n_out, y, ldy, accumulate);
        if (rc) return rc;
        beta = 1.0f;
    }
    if (w->wb) return linear_bf16(cu, w, x, ldx, M, beta, y, ldy);
    return sotto_cuda_gemm(cu, (int)M, w->n_out, w->n_in, x, ldx, 0, w->w, w->n_in, 0, beta, y, ldy,
                           0, 1);
}

extern "C" int sotto_cuda_linear(sotto_cuda *cu, const sotto_cuda_linear_w *w, const float *bias,
                                 const float *x, int64_t M, float *y)
{
    if (!w) return SOTTO_ERR_INVALID_ARG;
    return sotto_cuda_linear_ex(cu, w, bias, x, w->n_in, M, y, w->n_out, 0);
}
