/*
 * cuBLAS and cuFFT for the CUDA emulator (tests/cudaemu/README.md), with the semantics their
 * documentation gives, checked as strictly as the runtime: every matrix or signal must lie
 * inside device allocations for the extent its sizes and strides imply, and calls on a
 * capturing stream are recorded into the graph (host scalars by value, as cuBLAS reads them
 * at the call in host pointer mode).
 *
 * GEMM: C_b = alpha·op(A_b)·op(B_b) + beta·C_b in column-major terms, f32 C, with A and B both
 * f32 or both bf16 (CUDA_R_16BF, then only CUBLAS_COMPUTE_32F, as cuBLAS's table allows); C is
 * not read when beta is 0 (so NaN there does not propagate, as in cuBLAS); with
 * CUBLAS_COMPUTE_32F_FAST_TF32 the inputs are rounded to TF32 (10-bit mantissa) first, which
 * models the tensor cores' input precision. bf16 inputs widen to f32 exactly and the product
 * is then the f32 one. R2C: the forward DFT's n/2 + 1 bins (KissFFT for even sizes, a
 * direct sum in double for odd ones). C2R: the unnormalised inverse DFT of a Hermitian
 * half spectrum (the imaginary parts of DC and Nyquist ignored), by KissFFT's real inverse
 * transform for even sizes and a direct sum in double for odd ones; afterwards the
 * input is overwritten with NaN, because cuFFT documents that an out-of-place C2R transform
 * may overwrite its input.
 *
 * sotto_cublas_api_get replaces src/backend/cuda/cublas.cu (which opens the real library).
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <kissfft/kiss_fftr.h>

#include <memory>
#include <vector>

#include "cublas_v2.h"
#include "cufft.h"
#include "emu_internal.h"

#include "backend/cuda/common.cuh"

using namespace emu;

struct cublasContext {
    cudaStream_t stream;
    cublasPointerMode_t mode;
};

extern "C" cublasStatus_t cublasCreate_v2(cublasHandle_t *h)
{
    if (!h) return CUBLAS_STATUS_INVALID_VALUE;
    *h = new cublasContext{nullptr, CUBLAS_POINTER_MODE_HOST};
    return CUBLAS_STATUS_SUCCESS;
}

extern "C" cublasStatus_t cublasDestroy_v2(cublasHandle_t h)
{
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}

extern "C" cublasStatus_t cublasSetStream_v2(cublasHandle_t h, cudaStream_t s)
{
    std::lock_guard<std::recursive_mutex> lk(g_lock);
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!known_stream(s)) return CUBLAS_STATUS_INVALID_VALUE;
    h->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}

extern "C" cublasStatus_t cublasSetPointerMode_v2(cublasHandle_t h, cublasPointerMode_t m)
{
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    h->mode = m;
    return CUBLAS_STATUS_SUCCESS;
}

extern "C" cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t h, void *ws, size_t bytes)
{
    std::lock_guard<std::recursive_mutex> lk(g_lock);
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (bytes && !device_range_locked(ws, bytes)) return CUBLAS_STATUS_INVALID_VALUE;
    return CUBLAS_STATUS_SUCCESS;
}

extern "C" const char *cublasGetStatusString(cublasStatus_t s)
{
    switch (s) {
    case CUBLAS_STATUS_SUCCESS:
        return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED:
        return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_INVALID_VALUE:
        return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_NOT_SUPPORTED:
        return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_EXECUTION_FAILED:
        return "CUBLAS_STATUS_EXECUTION_FAILED";
    default:
        return "CUBLAS_STATUS_INTERNAL_ERROR";
    }
}

static float tf32(float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0xfffu + ((u >> 13) & 1u)) & ~0x1fffu;
    memcpy(&v, &u, 4);
    return v;
}

static float bf16_to_f32(uint16_t b)
{
    const uint32_t u = (uint32_t)b << 16;
    float v;
    memcpy(&v, &u, 4);
    return v;
}

/* Elements a column-major rows x cols matrix with leading dimension ld spans (0 if empty). */
static size_t span(int rows, int cols, int ld)
{
    if (rows <= 0 || cols <= 0) return 0;
    return (size_t)(cols - 1) * (size_t)ld + (size_t)rows;
}

static bool batch_in_device(const void *p, size_t elem, int rows, int cols, int ld,
                            long long stride, int batch)
{
    const size_t one = span(rows, cols, ld) * elem;
    if (!one) return true;
    /* the first and the last matrix of the batch */
    const char *last = (const char *)p + (ptrdiff_t)(batch - 1) * stride * (ptrdiff_t)elem;
    return device_range_locked(p, one) && device_range_locked(last, one);
}

/* A matrix of the batch in f32: itself when it is f32 (and not rounded to TF32), else its
 * widened (bf16) or rounded (TF32) copy in buf. */
static const float *as_f32(const void *p, bool bf16, bool t32, int rows, int cols, int ld,
                           std::vector<float> &buf)
{
    if (!bf16 && !t32) return (const float *)p;
    buf.assign(span(rows, cols, ld), 0.0f);
    for (int j = 0; j < cols; j++)
        for (int i = 0; i < rows; i++) {
            const size_t e = (size_t)j * ld + i;
            buf[e] = bf16 ? bf16_to_f32(((const uint16_t *)p)[e]) : tf32(((const float *)p)[e]);
        }
    return buf.data();
}

extern "C" cublasStatus_t
cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                           int n, int k, const void *alpha, const void *A, cudaDataType at, int lda,
                           long long sa, const void *B, cudaDataType bt, int ldb, long long sb,
                           const void *beta, void *C, cudaDataType ct, int ldc, long long sc,
                           int batch, cublasComputeType_t comp, cublasGemmAlgo_t algo)
{
    std::lock_guard<std::recursive_mutex> lk(g_lock);
    (void)algo;
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    const bool bf16 = at == CUDA_R_16BF;
    if (ct != CUDA_R_32F || bt != at ||
        (at == CUDA_R_32F && comp != CUBLAS_COMPUTE_32F && comp != CUBLAS_COMPUTE_32F_FAST_TF32) ||
        (bf16 && comp != CUBLAS_COMPUTE_32F) || (at != CUDA_R_32F && !bf16))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    const size_t elem = bf16 ? sizeof(uint16_t) : sizeof(float);
    if (h->mode != CUBLAS_POINTER_MODE_HOST || !alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
    if ((ta != CUBLAS_OP_N && ta != CUBLAS_OP_T) || (tb != CUBLAS_OP_N && tb != CUBLAS_OP_T))
        return CUBLAS_STATUS_INVALID_VALUE;
    const int ar = ta == CUBLAS_OP_N ? m : k, ac = ta == CUBLAS_OP_N ? k : m;
    const int br = tb == CUBLAS_OP_N ? k : n, bc = tb == CUBLAS_OP_N ? n : k;
    if (m < 0 || n < 0 || k < 0 || batch < 0 || lda < (ar > 1 ? ar : 1) ||
        ldb < (br > 1 ? br : 1) || ldc < (m > 1 ? m : 1))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (m == 0 || n == 0 || batch == 0) return CUBLAS_STATUS_SUCCESS;
    const float al = *(const float *)alpha, be = *(const float *)beta;
    if (!batch_in_device(C, sizeof(float), m, n, ldc, sc, batch) ||
        (k > 0 && (!batch_in_device(A, elem, ar, ac, lda, sa, batch) ||
                   !batch_in_device(B, elem, br, bc, ldb, sb, batch)))) {
        set_error(cudaErrorIllegalAddress,
                  "cublasGemmStridedBatchedEx: a matrix leaves device memory (m %d n %d k %d, "
                  "lda %d ldb %d ldc %d, strides %lld %lld %lld, batch %d)",
                  m, n, k, lda, ldb, ldc, sa, sb, sc, batch);
        return CUBLAS_STATUS_EXECUTION_FAILED;
    }
    const bool t32 = comp == CUBLAS_COMPUTE_32F_FAST_TF32;
    auto op = [=]() -> cudaError_t {
        std::vector<float> ra, rb;
        for (int b = 0; b < batch; b++) {
            const void *a0 = (const char *)A + (ptrdiff_t)b * sa * (ptrdiff_t)elem;
            const void *b0 = (const char *)B + (ptrdiff_t)b * sb * (ptrdiff_t)elem;
            float *c = (float *)C + (ptrdiff_t)b * sc;
            if (be == 0.0f)
                for (int j = 0; j < n; j++)
                    memset(c + (size_t)j * ldc, 0, sizeof(float) * (size_t)m);
            if (k == 0 || al == 0.0f) {
                if (be != 0.0f && be != 1.0f)
                    for (int j = 0; j < n; j++)
                        for (int i = 0; i < m; i++)
                            c[(size_t)j * ldc + i] *= be;
                continue;
            }
            const float *a = as_f32(a0, bf16, t32, ar, ac, lda, ra);
            const float *bb = as_f32(b0, bf16, t32, br, bc, ldb, rb);
            cblas_sgemm(CblasColMajor, ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
                        tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k, al, a, lda, bb, ldb,
                        be == 0.0f ? 0.0f : be, c, ldc);
        }
        return check_red_zones("cublasGemmStridedBatchedEx");
    };
    if (submit(h->stream, op) != cudaSuccess) return CUBLAS_STATUS_EXECUTION_FAILED;
    return CUBLAS_STATUS_SUCCESS;
}

/* ---- cuFFT ---------------------------------------------------------------------------------- */
struct fft_plan {
    bool live;
    cufftType type; /* CUFFT_C2R or CUFFT_R2C */
    int n, idist, odist, istride, ostride, batch;
    cudaStream_t stream;
    std::vector<double> cs, sn; /* odd sizes: the direct sum's twiddles */
    std::shared_ptr<void> kiss; /* even sizes: kiss_fftr configuration of the plan's direction */
};
static std::vector<fft_plan> g_plans;

cufftResult cufftPlanMany(cufftHandle *plan, int rank, int *n, int *inembed, int istride, int idist,
                          int *onembed, int ostride, int odist, cufftType type, int batch)
{
    std::lock_guard<std::recursive_mutex> lk(g_lock);
    if (!plan || !n) return CUFFT_INVALID_VALUE;
    if (any_capture()) return CUFFT_ALLOC_FAILED; /* its work area is a cudaMalloc */
    if (rank != 1 || (type != CUFFT_C2R && type != CUFFT_R2C))
        return CUFFT_INVALID_TYPE; /* what the emulator has */
    if (n[0] < 1 || batch < 1 || istride < 1 || ostride < 1) return CUFFT_INVALID_SIZE;
    (void)inembed;
    (void)onembed;
    fft_plan p;
    p.live = true;
    p.type = type;
    p.n = n[0];
    /* NULL embeddings select the basic layout, whatever the strides and distances say:
     * C2R reads n/2 + 1 complex per transform and writes n reals, R2C the reverse */
    const int half = n[0] / 2 + 1;
    p.istride = inembed ? istride : 1;
    p.ostride = onembed ? ostride : 1;
    p.idist = inembed ? idist : type == CUFFT_C2R ? half : n[0];
    p.odist = onembed ? odist : type == CUFFT_C2R ? n[0] : half;
    p.batch = batch;
    p.stream = nullptr;
    if (p.n % 2 == 0) {
        kiss_fftr_cfg c = kiss_fftr_alloc(p.n, type == CUFFT_C2R, nullptr, nullptr);
        if (!c) return CUFFT_ALLOC_FAILED;
        p.kiss = std::shared_ptr<void>(c, free);
    } else {
        p.cs.resize((size_t)p.n);
        p.sn.resize((size_t)p.n);
        for (int i = 0; i < p.n; i++) {
            p.cs[(size_t)i] = cos(2.0 * M_PI * i / p.n);
            p.sn[(size_t)i] = sin(2.0 * M_PI * i / p.n);
        }
    }
    g_plans.push_back(p);
    *plan = (cufftHandle)g_plans.size(); /* handles start at 1 */
    return CUFFT_SUCCESS;
}

static fft_plan *get_plan(cufftHandle h)
{
    if (h < 1 || (size_t)h > g_plans.size() || !g_plans[(size_t)h - 1].live) return nullptr;
    return &g_plans[(size_t)h - 1];
}

cufftResult cufftSetStream(cufftHandle plan, cudaStream_t s)
{
    std::lock_guard<std::recursive_mutex> lk(g_lock);
    fft_plan *p = get_plan(plan);
    if (!p) return CUFFT_INVALID_PLAN;
    if (!known_stream(s)) return CUFFT_INVALID_VALUE;
    p->stream = s;
    return CUFFT_SUCCESS;
}

cufftResult cufftExecR2C(cufftHandle plan, cufftReal *in, cufftComplex *out)
{
    std::lock_guard<std::recursive_mutex> lk(g_lock);
    fft_plan *p = get_plan(plan);
    if (!p) return CUFFT_INVALID_PLAN;
    if (p->type != CUFFT_R2C) return CUFFT_INVALID_TYPE;
    const int nb = p->n / 2 + 1;
    const size_t in_bytes =
        sizeof(float) * ((size_t)(p->batch - 1) * p->idist + (size_t)(p->n - 1) * p->istride + 1);
    const size_t out_bytes = sizeof(cufftComplex) * ((size_t)(p->batch - 1) * p->odist +
                                                     (size_t)(nb - 1) * p->ostride + 1);
    if (!in || !out || !device_range_locked(in, in_bytes) || !device_range_locked(out, out_bytes)) {
        set_error(cudaErrorIllegalAddress,
                  "cufftExecR2C: input (%zu bytes) or output (%zu bytes) leaves device memory",
                  in_bytes, out_bytes);
        return CUFFT_EXEC_FAILED;
    }
    const fft_plan q = *p;
    auto op = [q, in, out, nb]() -> cudaError_t {
        const int n = q.n;
        std::vector<float> x((size_t)n);
        std::vector<kiss_fft_cpx> bins((size_t)nb);
        for (int b = 0; b < q.batch; b++) {
            const float *X = in + (size_t)b * q.idist;
            cufftComplex *Y = out + (size_t)b * q.odist;
            for (int i = 0; i < n; i++)
                x[(size_t)i] = X[(size_t)i * q.istride];
            if (q.kiss) {
                kiss_fftr((kiss_fftr_cfg)q.kiss.get(), x.data(), bins.data());
                for (int k = 0; k < nb; k++)
                    Y[(size_t)k * q.ostride] = cufftComplex{bins[(size_t)k].r, bins[(size_t)k].i};
                continue;
            }
            for (int k = 0; k < nb; k++) { /* X[k] = Σ x[t]·e^{−2πi·kt/n} */
                double re = 0.0, im = 0.0;
                for (int t = 0; t < n; t++) {
                    const size_t w = (size_t)((long long)k * t % n);
                    re += x[(size_t)t] * q.cs[w];
                    im -= x[(size_t)t] * q.sn[w];
                }
                Y[(size_t)k * q.ostride] = cufftComplex{(float)re, (float)im};
            }
        }
        return check_red_zones("cufftExecR2C");
    };
    if (submit(p->stream, op) != cudaSuccess) return CUFFT_EXEC_FAILED;
    return CUFFT_SUCCESS;
}

cufftResult cufftExecC2R(cufftHandle plan, cufftComplex *in, cufftReal *out)
{
    std::lock_guard<std::recursive_mutex> lk(g_lock);
    fft_plan *p = get_plan(plan);
    if (!p) return CUFFT_INVALID_PLAN;
    if (p->type != CUFFT_C2R) return CUFFT_INVALID_TYPE;
    const int nb = p->n / 2 + 1;
    const size_t in_bytes = sizeof(cufftComplex) *
                            ((size_t)(p->batch - 1) * p->idist + (size_t)(nb - 1) * p->istride + 1);
    const size_t out_bytes =
        sizeof(float) * ((size_t)(p->batch - 1) * p->odist + (size_t)(p->n - 1) * p->ostride + 1);
    if (!in || !out || !device_range_locked(in, in_bytes) || !device_range_locked(out, out_bytes)) {
        set_error(cudaErrorIllegalAddress,
                  "cufftExecC2R: input (%zu bytes) or output (%zu bytes) leaves device memory",
                  in_bytes, out_bytes);
        return CUFFT_EXEC_FAILED;
    }
    const fft_plan q = *p;
    auto op = [q, in, out, nb]() -> cudaError_t {
        const int n = q.n;
        std::vector<double> x((size_t)n);
        std::vector<kiss_fft_cpx> bins((size_t)nb);
        std::vector<float> t((size_t)n);
        for (int b = 0; b < q.batch; b++) {
            const cufftComplex *X = in + (size_t)b * q.idist;
            float *y = out + (size_t)b * q.odist;
            if (q.kiss) {
                for (int kk = 0; kk < nb; kk++) {
                    bins[(size_t)kk].r = X[(size_t)kk * q.istride].x;
                    bins[(size_t)kk].i =
                        kk == 0 || kk == nb - 1 ? 0.0f : X[(size_t)kk * q.istride].y;
                }
                kiss_fftri((kiss_fftr_cfg)q.kiss.get(), bins.data(), t.data());
                for (int i = 0; i < n; i++)
                    y[(size_t)i * q.ostride] = t[(size_t)i];
                continue;
            }
            for (int i = 0; i < n; i++) {
                double s = X[0].x;
                for (int kk = 1; kk < nb; kk++) {
                    const cufftComplex c = X[(size_t)kk * q.istride];
                    const size_t w = (size_t)((long long)kk * i % n);
                    s += 2.0 * (c.x * q.cs[w] - c.y * q.sn[w]);
                }
                x[(size_t)i] = s;
            }
            for (int i = 0; i < n; i++)
                y[(size_t)i * q.ostride] = (float)x[(size_t)i];
        }
        /* cuFFT may overwrite the input of an out-of-place C2R transform */
        if ((void *)in != (void *)out)
            for (int b = 0; b < q.batch; b++)
                memset(in + (size_t)b * q.idist, 0xff, sizeof(cufftComplex) * (size_t)nb);
        return check_red_zones("cufftExecC2R");
    };
    if (submit(p->stream, op) != cudaSuccess) return CUFFT_EXEC_FAILED;
    return CUFFT_SUCCESS;
}

cufftResult cufftDestroy(cufftHandle plan)
{
    std::lock_guard<std::recursive_mutex> lk(g_lock);
    fft_plan *p = get_plan(plan);
    if (!p) return CUFFT_INVALID_PLAN;
    p->live = false;
    return CUFFT_SUCCESS;
}

/* ---- the loaded cuBLAS of common.cuh --------------------------------------------------------- */
const sotto_cublas_api *sotto_cublas_api_get(const char **why)
{
    static const sotto_cublas_api api = {
        &cublasCreate_v2,         &cublasDestroy_v2,      &cublasSetStream_v2,
        &cublasSetPointerMode_v2, &cublasSetWorkspace_v2, &cublasGemmStridedBatchedEx,
        &cublasGetStatusString,
    };
    (void)why;
    return &api;
}
