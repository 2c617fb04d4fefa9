/*
 * What the CUDA layers share: the context's definition, the checking macros that turn a failed
 * CUDA, cuBLAS or cuFFT call into a recorded, sticky SOTTO_ERR_DEVICE, launch geometry for
 * grid-stride kernels, scratch marks, and the two GEMM-shaped helpers (a strided-batched f32
 * GEMM in our row-major terms, its bf16 twin with the rounding that feeds it, and bias rows)
 * that linear and the convolutions are built on.
 * Internal to backend/cuda: C++ linkage, never included by C code.
 */
#ifndef SOTTO_BACKEND_CUDA_COMMON_CUH
#define SOTTO_BACKEND_CUDA_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/cuda/cuda_ops.h"

extern "C" {
#include "core/core.h"
}

/* cuBLAS, opened on first use (cublas.cu) rather than linked: loading libcublas (with
 * libcublasLt) costs a process about 210 MB of resident memory at start, which every program
 * of a CUDA build would pay whether it ever ran on a GPU or not. */
struct sotto_cublas_api {
    decltype(&cublasCreate_v2) create;
    decltype(&cublasDestroy_v2) destroy;
    decltype(&cublasSetStream_v2) set_stream;
    decltype(&cublasSetPointerMode_v2) set_pointer_mode;
    decltype(&cublasSetWorkspace_v2) set_workspace;
    /* the C entry point (C++ also declares a 64-bit overload of the name) */
    cublasStatus_t (*gemm_strided_batched_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t,
                                              int, int, int, const void *, const void *,
                                              cudaDataType, int, long long, const void *,
                                              cudaDataType, int, long long, const void *, void *,
                                              cudaDataType, int, long long, int,
                                              cublasComputeType_t, cublasGemmAlgo_t);
    decltype(&cublasGetStatusString) status_string;
};
/* The loaded functions (the first call opens the library; thread-safe), or NULL with *why
 * saying what failed. */
const sotto_cublas_api *sotto_cublas_api_get(const char **why);

struct sotto_cuda {
    int device;
    cudaStream_t stream;
    const sotto_cublas_api *cublas; /* set at creation */
    cublasHandle_t blas;
    void *blas_ws; /* cuBLAS workspace, blas_ws_size bytes, set at creation */
    size_t blas_ws_size;
    char *scratch; /* the pool: scratch_size bytes, bump-allocated from scratch_used */
    size_t scratch_size, scratch_used;
    int *flags;     /* device word: SOTTO_CUDA_FLAG_* bits raised by kernels, read by sync */
    int allow_tf32; /* GEMMs may use TF32 tensor cores */
    int weight_dt;  /* sotto_cuda_dtype of the weights uploads make now */
    int err;        /* sticky error, SOTTO_OK while the context works */
    char msg[256];  /* what failed */
};

/* Bits of sotto_cuda.flags. */
#define SOTTO_CUDA_FLAG_BAD_ID 1 /* an embedding id was out of range */

/* Records the first failure (call name and message) and returns code; later failures keep
 * the first message, which is the one that explains the rest. */
int sotto_cuda_fail(sotto_cuda *cu, int code, const char *call, const char *detail);
int sotto_cuda_fail_rt(sotto_cuda *cu, const char *call, cudaError_t e);
int sotto_cuda_fail_blas(sotto_cuda *cu, const char *call, cublasStatus_t s);
int sotto_cuda_fail_fft(sotto_cuda *cu, const char *call, int result);

/* Entry of every call that touches the device: the sticky error if the context has failed
 * (or SOTTO_ERR_INVALID_ARG for a NULL context), else makes the context's device current. */
int sotto_cuda_enter(sotto_cuda *cu);

/* Checked calls: on failure, record and return from the enclosing function. */
#define SOTTO_CU(cu, call)                                                                         \
    do {                                                                                           \
        const cudaError_t e_ = (call);                                                             \
        if (e_ != cudaSuccess) return sotto_cuda_fail_rt((cu), #call, e_);                         \
    } while (0)
#define SOTTO_CUBLAS(cu, call)                                                                     \
    do {                                                                                           \
        const cublasStatus_t s_ = (call);                                                          \
        if (s_ != CUBLAS_STATUS_SUCCESS) return sotto_cuda_fail_blas((cu), #call, s_);             \
    } while (0)
#define SOTTO_CUFFT(cu, call)                                                                      \
    do {                                                                                           \
        const int r_ = (int)(call);                                                                \
        if (r_ != 0) return sotto_cuda_fail_fft((cu), #call, r_);                                  \
    } while (0)
/* After a <<<...>>> launch: a bad configuration (or an earlier asynchronous fault) shows up
 * here. `name` is the kernel's. */
#define SOTTO_CU_LAUNCHED(cu, name)                                                                \
    do {                                                                                           \
        const cudaError_t e_ = cudaGetLastError();                                                 \
        if (e_ != cudaSuccess) return sotto_cuda_fail_rt((cu), "launch " name, e_);                \
    } while (0)

/* Threads per block of the element-wise kernels, and a grid that covers n elements with a
 * grid-stride loop (capped: each thread then takes several elements). */
#define SOTTO_CUDA_BLOCK 256
static inline unsigned sotto_cuda_grid(int64_t n)
{
    const int64_t b = (n + SOTTO_CUDA_BLOCK - 1) / SOTTO_CUDA_BLOCK;
    return (unsigned)(b < 1 ? 1 : b > 65536 ? 65536 : b);
}

/* Scratch taken inside a layer is given back before it returns: the stream runs the next
 * layer's kernels only after this one's, so the bytes can be reused at once. */
static inline size_t sotto_cuda_scratch_mark(const sotto_cuda *cu)
{
    return cu->scratch_used;
}
static inline void sotto_cuda_scratch_release(sotto_cuda *cu, size_t mark)
{
    cu->scratch_used = mark;
}
/* Bytes the pool can still hand out in one request. */
static inline size_t sotto_cuda_scratch_free(const sotto_cuda *cu)
{
    const size_t used = (cu->scratch_used + 255) & ~(size_t)255;
    return used >= cu->scratch_size ? 0 : cu->scratch_size - used;
}

/* Sum (or max) of v over the block, returned to every thread. blockDim.x must be a multiple
 * of 32 (≤ 1024) and every thread of the block must call it. */
template <bool IS_MAX> __device__ inline float sotto_block_reduce(float v)
{
    __shared__ float sh[32];
    for (int o = 16; o > 0; o >>= 1) {
        const float u = __shfl_xor_sync(0xffffffffu, v, o);
        v = IS_MAX ? fmaxf(v, u) : v + u;
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads(); /* sh may still be read by a previous call */
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    if (warp == 0) {
        const int n_warps = blockDim.x >> 5;
        v = lane < n_warps ? sh[lane] : (IS_MAX ? -INFINITY : 0.0f);
        for (int o = 16; o > 0; o >>= 1) {
            const float u = __shfl_xor_sync(0xffffffffu, v, o);
            v = IS_MAX ? fmaxf(v, u) : v + u;
        }
        if (lane == 0) sh[0] = v;
    }
    __syncthreads();
    return sh[0];
}

/*
 * batch row-major products on the stream, b < batch:
 *   Y_b[m][n] = Σ_k X_b[m][k]·W_b[n][k] + beta·Y_b[m][n]    (m < M, n < N, k < K)
 * with X_b = X + b·sx (rows ldx apart), W_b = W + b·sw (rows of K floats, ldw apart), Y_b =
 * Y + b·sy (rows ldy apart). In cuBLAS's column-major terms this is Yᵀ = op_T(W)·Xᵀ, so
 * PyTorch-layout weights are read in place. TF32 when the context allows it. All sizes must
 * fit in int (callers check). Returns SOTTO_OK or the recorded SOTTO_ERR_DEVICE.
 */
int sotto_cuda_gemm(sotto_cuda *cu, int M, int N, int K, const float *X, int64_t ldx, int64_t sx,
                    const float *W, int64_t ldw, int64_t sw, float beta, float *Y, int64_t ldy,
                    int64_t sy, int batch);

/* The same product on bf16 operands (X and W hold bf16 bits, strides and leading dimensions
 * in elements), f32 sums into f32 Y: cuBLAS's CUDA_R_16BF inputs with CUBLAS_COMPUTE_32F. */
int sotto_cuda_gemm_bf16(sotto_cuda *cu, int M, int N, int K, const uint16_t *X, int64_t ldx,
                         int64_t sx, const uint16_t *W, int64_t ldw, int64_t sw, float beta,
                         float *Y, int64_t ldy, int64_t sy, int batch);

/* f32 → bf16 bits, rounded to nearest even as cuBLAS's own conversions and PyTorch's
 * .to(torch.bfloat16) round; a NaN stays a (quiet) NaN, which plain rounding could turn into
 * an infinity. weights.c rounds the weights the same way on the host. */
__device__ inline uint16_t sotto_bf16_rne(float v)
{
    const uint32_t u = __float_as_uint(v);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* Xb[r][c] = bf16(X[r][c]) for r < rows, c < cols (X rows ldx floats apart, Xb packed): a
 * bf16 GEMM's activation operand. */
int sotto_cuda_to_bf16(sotto_cuda *cu, const float *X, int64_t ldx, int64_t rows, int cols,
                       uint16_t *Xb);

/* Y[m][n] = (acc ? Y[m][n] : 0) + bias[n] for m < M, n < N (rows ldy apart); bias NULL: the
 * rows are zeroed, or left alone with acc. */
int sotto_cuda_bias_rows(sotto_cuda *cu, const float *bias, int64_t M, int N, float *Y, int64_t ldy,
                         int acc);

#endif
