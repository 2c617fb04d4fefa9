/*
 * The CUDA emulator checked against what it claims (tests/cudaemu/README.md): block barriers
 * and warp shuffles give the right reduction; a host pointer passed to a kernel, a write past
 * an allocation, a divergent barrier, and synchronising inside a capture are reported as
 * errors; a captured graph replays the arguments of capture time and reads host memory at
 * replay; cuBLAS's strided-batched GEMM matches a direct column-major product for every
 * transpose pair (and ignores C when beta is 0), on f32 and on bf16 inputs (widened exactly,
 * f32 output; other type mixes refused); cuFFT's C2R matches a direct inverse DFT for
 * even and odd sizes and leaves NaN in its input. Cases that leave a sticky error (as a real
 * fault does) run in a child process.
 *
 * Built only with SOTTO_CUDA_EMU=ON, through the same launch rewrite as the backend.
 */
#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cufft.h>

__global__ void fill_kernel(float *y, int n, float v)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        y[i] = v + (float)i;
}

/* out[b] = Σ x over block b's slice of 256·per elements (shuffles, then shared memory). */
__global__ void block_sum_kernel(const float *x, int per, float *out)
{
    __shared__ float sh[32];
    float s = 0.0f;
    for (int i = 0; i < per; i++)
        s += x[((size_t)blockIdx.x * per + i) * blockDim.x + threadIdx.x];
    for (int o = 16; o > 0; o >>= 1)
        s += __shfl_xor_sync(0xffffffffu, s, o);
    if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = s;
    __syncthreads();
    if (threadIdx.x < 32) {
        float v = threadIdx.x < blockDim.x / 32 ? sh[threadIdx.x] : 0.0f;
        for (int o = 16; o > 0; o >>= 1)
            v += __shfl_down_sync(0xffffffffu, v, o);
        if (threadIdx.x == 0) out[blockIdx.x] = v;
    }
}

__global__ void divergent_kernel(float *y)
{
    if (threadIdx.x < 16) __syncthreads();
    y[threadIdx.x] = 1.0f;
}

/* Runs f in a child process; returns its exit status (-1 when it crashed). */
static int in_child(int (*f)(void))
{
    fflush(stdout);
    fflush(stderr);
    const pid_t pid = fork();
    if (pid == 0) _exit(f());
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
}

static void test_reduce(void)
{
    const int blocks = 3, per = 5, threads = 256, n = blocks * per * threads;
    float *h = (float *)malloc(sizeof(float) * n), *x = NULL, *out = NULL;
    double want[3] = {0, 0, 0};
    for (int i = 0; i < n; i++) {
        h[i] = (float)((i * 37) % 101) - 50.0f;
        want[i / (per * threads)] += h[i];
    }
    CU_ASSERT_EQUAL_FATAL(cudaMalloc(&x, sizeof(float) * n), cudaSuccess);
    CU_ASSERT_EQUAL_FATAL(cudaMalloc(&out, sizeof(float) * blocks), cudaSuccess);
    CU_ASSERT_EQUAL(cudaMemcpy(x, h, sizeof(float) * n, cudaMemcpyHostToDevice), cudaSuccess);
    block_sum_kernel<<<blocks, threads>>>(x, per, out);
    CU_ASSERT_EQUAL(cudaGetLastError(), cudaSuccess);
    float got[3];
    CU_ASSERT_EQUAL(cudaMemcpy(got, out, sizeof got, cudaMemcpyDeviceToHost), cudaSuccess);
    for (int b = 0; b < blocks; b++)
        CU_ASSERT_DOUBLE_EQUAL(got[b], want[b], 1e-3); /* small integers: exact in float */
    /* memory nobody wrote reads as NaN */
    float *fresh = NULL, probe[4];
    CU_ASSERT_EQUAL(cudaMalloc(&fresh, sizeof probe), cudaSuccess);
    CU_ASSERT_EQUAL(cudaMemcpy(probe, fresh, sizeof probe, cudaMemcpyDeviceToHost), cudaSuccess);
    for (int i = 0; i < 4; i++)
        CU_ASSERT(isnan(probe[i]));
    cudaFree(fresh);
    cudaFree(x);
    cudaFree(out);
    free(h);
}

static int host_pointer_case(void)
{
    static float host[64];
    fill_kernel<<<1, 64>>>(host, 64, 0.0f);
    return cudaGetLastError() == cudaErrorIllegalAddress &&
                   cudaMemset(host, 0, 4) != cudaSuccess /* sticky, or not device memory */
               ? 0
               : 1;
}

static int overrun_case(void)
{
    float *y = NULL;
    if (cudaMalloc(&y, sizeof(float) * 100) != cudaSuccess) return 2;
    fill_kernel<<<1, 128>>>(y, 101, 0.0f); /* one float too many */
    const cudaError_t e = cudaGetLastError();
    return e == cudaErrorIllegalAddress && cudaDeviceSynchronize() == cudaErrorIllegalAddress ? 0
                                                                                              : 1;
}

static int divergent_case(void)
{
    float *y = NULL;
    if (cudaMalloc(&y, sizeof(float) * 64) != cudaSuccess) return 2;
    divergent_kernel<<<1, 64>>>(y);
    return cudaGetLastError() == cudaErrorLaunchFailure ? 0 : 1;
}

static void test_faults(void)
{
    setenv("SOTTO_CUDAEMU_QUIET", "1", 1);
    CU_ASSERT_EQUAL(in_child(host_pointer_case), 0);
    CU_ASSERT_EQUAL(in_child(overrun_case), 0);
    CU_ASSERT_EQUAL(in_child(divergent_case), 0);
    unsetenv("SOTTO_CUDAEMU_QUIET");
}

static void test_capture(void)
{
    setenv("SOTTO_CUDAEMU_QUIET", "1", 1);
    cudaStream_t s = NULL;
    CU_ASSERT_EQUAL_FATAL(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
    float *y = NULL, *z = NULL;
    CU_ASSERT_EQUAL_FATAL(cudaMalloc(&y, sizeof(float) * 8), cudaSuccess);
    CU_ASSERT_EQUAL_FATAL(cudaMalloc(&z, sizeof(float) * 8), cudaSuccess);

    /* arguments frozen at capture, host memory read at replay */
    float v = 10.0f, host[8], back[8];
    for (int i = 0; i < 8; i++)
        host[i] = 1.0f;
    CU_ASSERT_EQUAL(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    fill_kernel<<<1, 32, 0, s>>>(y, 8, v);
    CU_ASSERT_EQUAL(cudaMemcpyAsync(z, host, sizeof host, cudaMemcpyHostToDevice, s), cudaSuccess);
    cudaGraph_t g = NULL;
    CU_ASSERT_EQUAL(cudaStreamEndCapture(s, &g), cudaSuccess);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    /* nothing ran while recording */
    CU_ASSERT_EQUAL(cudaMemcpy(back, y, sizeof back, cudaMemcpyDeviceToHost), cudaSuccess);
    CU_ASSERT(isnan(back[0]));
    cudaGraphExec_t x = NULL;
    CU_ASSERT_EQUAL(cudaGraphInstantiate(&x, g, 0), cudaSuccess);
    v = 20.0f;
    for (int i = 0; i < 8; i++)
        host[i] = 2.0f;
    CU_ASSERT_EQUAL(cudaGraphLaunch(x, s), cudaSuccess);
    CU_ASSERT_EQUAL(cudaStreamSynchronize(s), cudaSuccess);
    CU_ASSERT_EQUAL(cudaMemcpy(back, y, sizeof back, cudaMemcpyDeviceToHost), cudaSuccess);
    CU_ASSERT_EQUAL(back[3], 13.0f);
    CU_ASSERT_EQUAL(cudaMemcpy(back, z, sizeof back, cudaMemcpyDeviceToHost), cudaSuccess);
    CU_ASSERT_EQUAL(back[3], 2.0f);
    cudaGraphExecDestroy(x);
    cudaGraphDestroy(g);

    /* what CUDA forbids while capturing fails and invalidates the capture */
    CU_ASSERT_EQUAL(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    CU_ASSERT_EQUAL(cudaStreamSynchronize(s), cudaErrorStreamCaptureUnsupported);
    void *p = NULL;
    CU_ASSERT_EQUAL(cudaMalloc(&p, 16), cudaErrorStreamCaptureUnsupported);
    cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
    CU_ASSERT_EQUAL(cudaStreamIsCapturing(s, &st), cudaSuccess);
    CU_ASSERT_EQUAL(st, cudaStreamCaptureStatusInvalidated);
    g = NULL;
    CU_ASSERT_EQUAL(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
    CU_ASSERT_PTR_NULL(g);
    (void)cudaGetLastError();
    /* and the stream works again afterwards */
    CU_ASSERT_EQUAL(cudaStreamSynchronize(s), cudaSuccess);
    cudaFree(y);
    cudaFree(z);
    cudaStreamDestroy(s);
    unsetenv("SOTTO_CUDAEMU_QUIET");
}

static void test_gemm(void)
{
    cublasHandle_t h = NULL;
    CU_ASSERT_EQUAL_FATAL(cublasCreate_v2(&h), CUBLAS_STATUS_SUCCESS);
    const int m = 5, n = 4, k = 3, batch = 2, lda = 7, ldb = 6, ldc = 8;
    const long long sa = 40, sb = 30, sc = 40;
    float ha[2 * 40], hb[2 * 30], hc[2 * 40];
    for (int i = 0; i < 80; i++)
        ha[i] = (float)((i * 7) % 11) - 5.0f;
    for (int i = 0; i < 60; i++)
        hb[i] = (float)((i * 5) % 13) - 6.0f;
    float *a, *b, *c;
    CU_ASSERT_EQUAL_FATAL(cudaMalloc(&a, sizeof ha), cudaSuccess);
    CU_ASSERT_EQUAL_FATAL(cudaMalloc(&b, sizeof hb), cudaSuccess);
    CU_ASSERT_EQUAL_FATAL(cudaMalloc(&c, sizeof hc), cudaSuccess);
    cudaMemcpy(a, ha, sizeof ha, cudaMemcpyHostToDevice);
    cudaMemcpy(b, hb, sizeof hb, cudaMemcpyHostToDevice);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            const float alpha = 1.5f, beta = 0.0f;
            cudaMemset(c, 0xff, sizeof hc); /* NaN: beta 0 must not read it */
            CU_ASSERT_EQUAL(cublasGemmStridedBatchedEx(
                                h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                m, n, k, &alpha, a, CUDA_R_32F, lda, sa, b, CUDA_R_32F, ldb, sb,
                                &beta, c, CUDA_R_32F, ldc, sc, batch, CUBLAS_COMPUTE_32F,
                                CUBLAS_GEMM_DEFAULT),
                            CUBLAS_STATUS_SUCCESS);
            cudaMemcpy(hc, c, sizeof hc, cudaMemcpyDeviceToHost);
            for (int q = 0; q < batch; q++)
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++) {
                        double s = 0.0;
                        for (int l = 0; l < k; l++) {
                            const float av =
                                ta ? ha[q * sa + l + i * lda] : ha[q * sa + i + l * lda];
                            const float bv =
                                tb ? hb[q * sb + j + l * ldb] : hb[q * sb + l + j * ldb];
                            s += (double)av * bv;
                        }
                        CU_ASSERT_DOUBLE_EQUAL(hc[q * sc + i + j * ldc], 1.5 * s, 1e-4);
                    }
        }
    /* a leading dimension below the rows is refused */
    const float one = 1.0f;
    CU_ASSERT_EQUAL(cublasGemmStridedBatchedEx(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, a,
                                               CUDA_R_32F, m - 1, sa, b, CUDA_R_32F, ldb, sb, &one,
                                               c, CUDA_R_32F, ldc, sc, 1, CUBLAS_COMPUTE_32F,
                                               CUBLAS_GEMM_DEFAULT),
                    CUBLAS_STATUS_INVALID_VALUE);
    cudaFree(a);
    cudaFree(b);
    cudaFree(c);
    cublasDestroy_v2(h);
}

static float bf16_value(uint16_t b)
{
    const uint32_t u = (uint32_t)b << 16;
    float v;
    memcpy(&v, &u, 4);
    return v;
}

/* A bf16 operand's extent is counted in 2-byte elements: a batch whose last matrix ends
 * exactly at the allocation's end runs, one element further is a fault (sticky: a child). */
static int bf16_extent_case(void)
{
    setenv("SOTTO_CUDAEMU_QUIET", "1", 1);
    cublasHandle_t h = NULL;
    uint16_t *a, *b;
    float *c;
    const float one = 1.0f;
    if (cublasCreate_v2(&h) != CUBLAS_STATUS_SUCCESS || cudaMalloc(&a, 2 * 4 * 2) != cudaSuccess ||
        cudaMalloc(&b, 2 * 4 * 2) != cudaSuccess || cudaMalloc(&c, 2 * 4 * 4) != cudaSuccess ||
        cudaMemset(a, 0, 16) != cudaSuccess || cudaMemset(b, 0, 16) != cudaSuccess)
        return 1;
    /* 2 × 2 · 2 × 2, batch 2, matrices 4 elements apart: 8 elements = 16 bytes each */
    if (cublasGemmStridedBatchedEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, a, CUDA_R_16BF, 2, 4,
                                   b, CUDA_R_16BF, 2, 4, &one, c, CUDA_R_32F, 2, 4, 2,
                                   CUBLAS_COMPUTE_32F,
                                   CUBLAS_GEMM_DEFAULT) != CUBLAS_STATUS_SUCCESS)
        return 2;
    if (cublasGemmStridedBatchedEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, a, CUDA_R_16BF, 2, 5,
                                   b, CUDA_R_16BF, 2, 4, &one, c, CUDA_R_32F, 2, 4, 2,
                                   CUBLAS_COMPUTE_32F,
                                   CUBLAS_GEMM_DEFAULT) != CUBLAS_STATUS_EXECUTION_FAILED)
        return 3;
    return 0;
}

/* bf16 A and B (CUDA_R_16BF), f32 C, f32 compute: the exact product of the widened values. */
static void test_gemm_bf16(void)
{
    cublasHandle_t h = NULL;
    CU_ASSERT_EQUAL_FATAL(cublasCreate_v2(&h), CUBLAS_STATUS_SUCCESS);
    const int m = 6, n = 5, k = 9, batch = 2, lda = 11, ldb = 10, ldc = 7;
    const long long sa = 110, sb = 100, sc = 40;
    uint16_t ha[2 * 110], hb[2 * 100];
    float hc[2 * 40];
    /* bit patterns with every mantissa bit in use, exponents within ±2^3 */
    for (int i = 0; i < 220; i++)
        ha[i] = (uint16_t)(((i & 1) << 15) | ((124 + (i * 7) % 7) << 7) | ((i * 37) % 128));
    for (int i = 0; i < 200; i++)
        hb[i] = (uint16_t)((((i / 3) & 1) << 15) | ((123 + (i * 5) % 8) << 7) | ((i * 53) % 128));
    uint16_t *a, *b;
    float *c;
    CU_ASSERT_EQUAL_FATAL(cudaMalloc(&a, sizeof ha), cudaSuccess);
    CU_ASSERT_EQUAL_FATAL(cudaMalloc(&b, sizeof hb), cudaSuccess);
    CU_ASSERT_EQUAL_FATAL(cudaMalloc(&c, sizeof hc), cudaSuccess);
    cudaMemcpy(a, ha, sizeof ha, cudaMemcpyHostToDevice);
    cudaMemcpy(b, hb, sizeof hb, cudaMemcpyHostToDevice);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            const float alpha = 1.0f, beta = 0.0f;
            cudaMemset(c, 0xff, sizeof hc);
            CU_ASSERT_EQUAL(cublasGemmStridedBatchedEx(
                                h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                m, n, k, &alpha, a, CUDA_R_16BF, lda, sa, b, CUDA_R_16BF, ldb, sb,
                                &beta, c, CUDA_R_32F, ldc, sc, batch, CUBLAS_COMPUTE_32F,
                                CUBLAS_GEMM_DEFAULT),
                            CUBLAS_STATUS_SUCCESS);
            cudaMemcpy(hc, c, sizeof hc, cudaMemcpyDeviceToHost);
            for (int q = 0; q < batch; q++)
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++) {
                        double s = 0.0, mag = 0.0;
                        for (int l = 0; l < k; l++) {
                            const float av = bf16_value(ta ? ha[q * sa + l + i * lda]
                                                           : ha[q * sa + i + l * lda]);
                            const float bv = bf16_value(tb ? hb[q * sb + j + l * ldb]
                                                           : hb[q * sb + l + j * ldb]);
                            s += (double)av * bv;
                            mag += fabs((double)av * bv);
                        }
                        /* f32 sums of exact products: a few f32 ulps of Σ|a·b| */
                        CU_ASSERT_DOUBLE_EQUAL(hc[q * sc + i + j * ldc], s, 1e-6 * mag);
                    }
        }
    /* cuBLAS has no TF32 compute on bf16 inputs, nor mixed input types */
    const float one = 1.0f;
    CU_ASSERT_EQUAL(cublasGemmStridedBatchedEx(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, a,
                                               CUDA_R_16BF, lda, sa, b, CUDA_R_16BF, ldb, sb, &one,
                                               c, CUDA_R_32F, ldc, sc, 1,
                                               CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT),
                    CUBLAS_STATUS_NOT_SUPPORTED);
    CU_ASSERT_EQUAL(cublasGemmStridedBatchedEx(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, a,
                                               CUDA_R_16BF, lda, sa, b, CUDA_R_32F, ldb, sb, &one,
                                               c, CUDA_R_32F, ldc, sc, 1, CUBLAS_COMPUTE_32F,
                                               CUBLAS_GEMM_DEFAULT),
                    CUBLAS_STATUS_NOT_SUPPORTED);
    CU_ASSERT_EQUAL(in_child(bf16_extent_case), 0);
    cudaFree(a);
    cudaFree(b);
    cudaFree(c);
    cublasDestroy_v2(h);
}

static void c2r_case(int nfft)
{
    const int nb = nfft / 2 + 1, batch = 3;
    cufftComplex *hin = (cufftComplex *)malloc(sizeof(cufftComplex) * nb * batch);
    float *hout = (float *)malloc(sizeof(float) * nfft * batch);
    for (int i = 0; i < nb * batch; i++) {
        hin[i].x = sinf(0.7f * (float)i) + 0.1f;
        hin[i].y = cosf(1.3f * (float)i);
    }
    cufftComplex *in;
    float *out;
    CU_ASSERT_EQUAL_FATAL(cudaMalloc(&in, sizeof(cufftComplex) * nb * batch), cudaSuccess);
    CU_ASSERT_EQUAL_FATAL(cudaMalloc(&out, sizeof(float) * nfft * batch), cudaSuccess);
    cudaMemcpy(in, hin, sizeof(cufftComplex) * nb * batch, cudaMemcpyHostToDevice);
    cufftHandle p;
    int n = nfft;
    CU_ASSERT_EQUAL_FATAL(cufftPlanMany(&p, 1, &n, NULL, 1, nb, NULL, 1, nfft, CUFFT_C2R, batch),
                          CUFFT_SUCCESS);
    CU_ASSERT_EQUAL(cufftExecC2R(p, in, out), CUFFT_SUCCESS);
    cudaMemcpy(hout, out, sizeof(float) * nfft * batch, cudaMemcpyDeviceToHost);
    for (int b = 0; b < batch; b++)
        for (int t = 0; t < nfft; t++) {
            double s = 0.0; /* Σ over the full Hermitian spectrum */
            for (int kk = 0; kk < nfft; kk++) {
                const int src = kk < nb ? kk : nfft - kk;
                double re = hin[b * nb + src].x,
                       im = kk < nb ? hin[b * nb + src].y : -hin[b * nb + src].y;
                if (kk == 0 || (nfft % 2 == 0 && kk == nfft / 2)) im = 0.0;
                const double ph = 2.0 * M_PI * (double)kk * t / nfft;
                s += re * cos(ph) - im * sin(ph);
            }
            CU_ASSERT_DOUBLE_EQUAL(hout[b * nfft + t], s, 1e-4 * nfft);
        }
    cufftComplex back;
    cudaMemcpy(&back, in, sizeof back, cudaMemcpyDeviceToHost);
    CU_ASSERT(isnan(back.x)); /* cuFFT may overwrite a C2R input */
    cufftDestroy(p);
    cudaFree(in);
    cudaFree(out);
    free(hin);
    free(hout);
}

static void test_c2r(void)
{
    c2r_case(16);
    c2r_case(15);
}

static void r2c_case(int nfft)
{
    const int nb = nfft / 2 + 1, batch = 2;
    float *hin = (float *)malloc(sizeof(float) * nfft * batch);
    cufftComplex *hout = (cufftComplex *)malloc(sizeof(cufftComplex) * nb * batch);
    for (int i = 0; i < nfft * batch; i++)
        hin[i] = sinf(0.9f * (float)i) + 0.25f * cosf(2.3f * (float)i);
    float *in;
    cufftComplex *out;
    CU_ASSERT_EQUAL_FATAL(cudaMalloc(&in, sizeof(float) * nfft * batch), cudaSuccess);
    CU_ASSERT_EQUAL_FATAL(cudaMalloc(&out, sizeof(cufftComplex) * nb * batch), cudaSuccess);
    cudaMemcpy(in, hin, sizeof(float) * nfft * batch, cudaMemcpyHostToDevice);
    cufftHandle p;
    int n = nfft;
    CU_ASSERT_EQUAL_FATAL(cufftPlanMany(&p, 1, &n, NULL, 1, nfft, NULL, 1, nb, CUFFT_R2C, batch),
                          CUFFT_SUCCESS);
    CU_ASSERT_EQUAL(cufftExecC2R(p, out, in), CUFFT_INVALID_TYPE); /* the plan's direction only */
    CU_ASSERT_EQUAL(cufftExecR2C(p, in, out), CUFFT_SUCCESS);
    cudaMemcpy(hout, out, sizeof(cufftComplex) * nb * batch, cudaMemcpyDeviceToHost);
    for (int b = 0; b < batch; b++)
        for (int k = 0; k < nb; k++) {
            double re = 0.0, im = 0.0;
            for (int t = 0; t < nfft; t++) {
                const double ph = 2.0 * M_PI * (double)k * t / nfft;
                re += hin[b * nfft + t] * cos(ph);
                im -= hin[b * nfft + t] * sin(ph);
            }
            CU_ASSERT_DOUBLE_EQUAL(hout[b * nb + k].x, re, 1e-4 * nfft);
            CU_ASSERT_DOUBLE_EQUAL(hout[b * nb + k].y, im, 1e-4 * nfft);
        }
    cufftDestroy(p);
    cudaFree(in);
    cudaFree(out);
    free(hin);
    free(hout);
}

static void test_r2c(void)
{
    r2c_case(16);
    r2c_case(15);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("cudaemu", NULL, NULL);
    CU_add_test(s, "reduce", test_reduce);
    CU_add_test(s, "faults", test_faults);
    CU_add_test(s, "capture", test_capture);
    CU_add_test(s, "gemm", test_gemm);
    CU_add_test(s, "gemm_bf16", test_gemm_bf16);
    CU_add_test(s, "c2r", test_c2r);
    CU_add_test(s, "r2c", test_r2c);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    const unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
