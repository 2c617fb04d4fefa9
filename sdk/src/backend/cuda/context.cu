/*
 * The CUDA context: device, stream, cuBLAS handle, scratch pool and sticky error, plus the
 * load-time buffer helpers. Everything that can fail is checked; the first failure is
 * recorded with the call that failed and the runtime's own words, and from then on every call
 * on the context returns the same code (a half-run step has no trustworthy state to continue
 * from). Creation is the only place the pool is allocated.
 */
#include <cufft.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/common.cuh"

/* ---- errors ------------------------------------------------------------------------------- */

int sotto_cuda_fail(sotto_cuda *cu, int code, const char *call, const char *detail)
{
    if (!cu) return code;
    if (cu->err == SOTTO_OK) {
        cu->err = code;
        snprintf(cu->msg, sizeof cu->msg, "%s: %s", call, detail);
    }
    return cu->err;
}

int sotto_cuda_fail_rt(sotto_cuda *cu, const char *call, cudaError_t e)
{
    /* Clear the error if it is not sticky, so destroy can still release resources. */
    (void)cudaGetLastError();
    return sotto_cuda_fail(cu, SOTTO_ERR_DEVICE, call, cudaGetErrorString(e));
}

int sotto_cuda_fail_blas(sotto_cuda *cu, const char *call, cublasStatus_t s)
{
    return sotto_cuda_fail(cu, SOTTO_ERR_DEVICE, call,
                           cu && cu->cublas ? cu->cublas->status_string(s) : "cuBLAS error");
}

static const char *cufft_result_name(int r)
{
    switch (r) {
    case CUFFT_INVALID_PLAN:
        return "CUFFT_INVALID_PLAN";
    case CUFFT_ALLOC_FAILED:
        return "CUFFT_ALLOC_FAILED";
    case CUFFT_INVALID_VALUE:
        return "CUFFT_INVALID_VALUE";
    case CUFFT_INTERNAL_ERROR:
        return "CUFFT_INTERNAL_ERROR";
    case CUFFT_EXEC_FAILED:
        return "CUFFT_EXEC_FAILED";
    case CUFFT_SETUP_FAILED:
        return "CUFFT_SETUP_FAILED";
    case CUFFT_INVALID_SIZE:
        return "CUFFT_INVALID_SIZE";
    default:
        return "cuFFT error";
    }
}

int sotto_cuda_fail_fft(sotto_cuda *cu, const char *call, int result)
{
    char detail[64];
    snprintf(detail, sizeof detail, "%s (%d)", cufft_result_name(result), result);
    return sotto_cuda_fail(cu, SOTTO_ERR_DEVICE, call, detail);
}

int sotto_cuda_enter(sotto_cuda *cu)
{
    if (!cu) return SOTTO_ERR_INVALID_ARG;
    if (cu->err) return cu->err;
    SOTTO_CU(cu, cudaSetDevice(cu->device));
    return SOTTO_OK;
}

extern "C" int sotto_cuda_error(const sotto_cuda *cu)
{
    return cu ? cu->err : SOTTO_ERR_INVALID_ARG;
}

extern "C" const char *sotto_cuda_error_message(const sotto_cuda *cu)
{
    return cu ? cu->msg : "";
}

extern "C" void sotto_cuda_set_tf32(sotto_cuda *cu, int allow)
{
    if (cu) cu->allow_tf32 = allow != 0;
}

extern "C" int sotto_cuda_set_weight_dtype(sotto_cuda *cu, sotto_cuda_dtype dtype)
{
    if (!cu || (dtype != SOTTO_CUDA_F32 && dtype != SOTTO_CUDA_BF16)) return SOTTO_ERR_INVALID_ARG;
    cu->weight_dt = (int)dtype;
    return SOTTO_OK;
}

extern "C" sotto_cuda_dtype sotto_cuda_weight_dtype(const sotto_cuda *cu)
{
    return cu && cu->weight_dt == SOTTO_CUDA_BF16 ? SOTTO_CUDA_BF16 : SOTTO_CUDA_F32;
}

/* ---- create / destroy --------------------------------------------------------------------- */

/* The steps of creation after the struct exists; a failure is recorded in cu. */
static int create_resources(sotto_cuda *cu, size_t scratch_bytes)
{
    SOTTO_CU(cu, cudaSetDevice(cu->device));
    SOTTO_CU(cu, cudaStreamCreateWithFlags(&cu->stream, cudaStreamNonBlocking));
    const char *why = "";
    if (!(cu->cublas = sotto_cublas_api_get(&why)))
        return sotto_cuda_fail(cu, SOTTO_ERR_DEVICE, "loading cuBLAS", why);
    SOTTO_CUBLAS(cu, cu->cublas->create(&cu->blas));
    SOTTO_CUBLAS(cu, cu->cublas->set_stream(cu->blas, cu->stream));
    /* alpha and beta are host scalars in every call */
    SOTTO_CUBLAS(cu, cu->cublas->set_pointer_mode(cu->blas, CUBLAS_POINTER_MODE_HOST));
    /* cuBLAS would otherwise take its workspace with cudaMalloc on first use (and again for
     * CUDA graph capture); give it one now, of the size NVIDIA recommends per architecture. */
    int major = 0;
    SOTTO_CU(cu, cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, cu->device));
    cu->blas_ws_size = (size_t)(major >= 9 ? 32 : 4) << 20;
    SOTTO_CU(cu, cudaMalloc(&cu->blas_ws, cu->blas_ws_size));
    SOTTO_CUBLAS(cu, cu->cublas->set_workspace(cu->blas, cu->blas_ws, cu->blas_ws_size));
    /* the flags word is cleared and read on the context's stream only: a non-blocking stream
     * does not wait for the legacy default stream */
    SOTTO_CU(cu, cudaMalloc((void **)&cu->flags, sizeof(int)));
    SOTTO_CU(cu, cudaMemsetAsync(cu->flags, 0, sizeof(int), cu->stream));
    if (scratch_bytes) {
        SOTTO_CU(cu, cudaMalloc((void **)&cu->scratch, scratch_bytes));
        cu->scratch_size = scratch_bytes;
    }
    SOTTO_CU(cu, cudaStreamSynchronize(cu->stream));
    return SOTTO_OK;
}

extern "C" int sotto_cuda_create(sotto_cuda **out, int device, size_t scratch_bytes,
                                 sotto_status *st)
{
    if (!out) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "cuda: out is NULL");
    *out = NULL;
    if (device < 0) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "cuda: device %d", device);
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return sotto_status_set(st, SOTTO_ERR_DEVICE, "cuda: cudaGetDeviceCount: %s",
                                cudaGetErrorString(e));
    }
    if (device >= n)
        return sotto_status_set(st, SOTTO_ERR_DEVICE, "cuda: device %d of %d", device, n);
    sotto_cuda *cu = (sotto_cuda *)calloc(1, sizeof *cu);
    if (!cu) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    cu->device = device;
    const int rc = create_resources(cu, scratch_bytes);
    if (rc) {
        sotto_status_set(st, rc, "cuda: %s", cu->msg);
        sotto_cuda_destroy(cu);
        return rc;
    }
    *out = cu;
    return SOTTO_OK;
}

extern "C" void sotto_cuda_destroy(sotto_cuda *cu)
{
    if (!cu) return;
    /* Teardown runs even on a failed context; its own errors have nowhere to go. */
    (void)cudaSetDevice(cu->device);
    if (cu->stream) (void)cudaStreamSynchronize(cu->stream);
    if (cu->scratch) (void)cudaFree(cu->scratch);
    if (cu->flags) (void)cudaFree(cu->flags);
    if (cu->blas) (void)cu->cublas->destroy(cu->blas);
    if (cu->blas_ws) (void)cudaFree(cu->blas_ws);
    if (cu->stream) (void)cudaStreamDestroy(cu->stream);
    (void)cudaGetLastError();
    free(cu);
}

extern "C" int sotto_cuda_sync(sotto_cuda *cu)
{
    int rc = sotto_cuda_enter(cu);
    if (rc) return rc;
    SOTTO_CU(cu, cudaStreamSynchronize(cu->stream));
    int flags = 0;
    SOTTO_CU(cu,
             cudaMemcpyAsync(&flags, cu->flags, sizeof flags, cudaMemcpyDeviceToHost, cu->stream));
    SOTTO_CU(cu, cudaStreamSynchronize(cu->stream));
    if (flags & SOTTO_CUDA_FLAG_BAD_ID) {
        SOTTO_CU(cu, cudaMemsetAsync(cu->flags, 0, sizeof(int), cu->stream));
        return SOTTO_ERR_INVALID_ARG;
    }
    return SOTTO_OK;
}

/* ---- device buffers ----------------------------------------------------------------------- */

extern "C" int sotto_cuda_alloc(sotto_cuda *cu, size_t bytes, void **dptr)
{
    if (!dptr || !bytes) return SOTTO_ERR_INVALID_ARG;
    *dptr = NULL;
    int rc = sotto_cuda_enter(cu);
    if (rc) return rc;
    SOTTO_CU(cu, cudaMalloc(dptr, bytes));
    return SOTTO_OK;
}

extern "C" void sotto_cuda_free(sotto_cuda *cu, void *dptr)
{
    if (!cu || !dptr) return;
    (void)cudaSetDevice(cu->device);
    /* cudaFree waits for the device; a failure here means the context already failed. */
    const cudaError_t e = cudaFree(dptr);
    if (e != cudaSuccess) sotto_cuda_fail_rt(cu, "cudaFree", e);
}

extern "C" int sotto_cuda_upload(sotto_cuda *cu, void *dst, const void *src, size_t bytes)
{
    if (bytes && (!dst || !src)) return SOTTO_ERR_INVALID_ARG;
    int rc = sotto_cuda_enter(cu);
    if (rc || !bytes) return rc;
    SOTTO_CU(cu, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cu->stream));
    SOTTO_CU(cu, cudaStreamSynchronize(cu->stream));
    return SOTTO_OK;
}

extern "C" int sotto_cuda_download(sotto_cuda *cu, void *dst, const void *src, size_t bytes)
{
    if (bytes && (!dst || !src)) return SOTTO_ERR_INVALID_ARG;
    int rc = sotto_cuda_enter(cu);
    if (rc || !bytes) return rc;
    SOTTO_CU(cu, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cu->stream));
    SOTTO_CU(cu, cudaStreamSynchronize(cu->stream));
    return SOTTO_OK;
}

extern "C" int sotto_cuda_memset0(sotto_cuda *cu, void *dst, size_t bytes)
{
    if (bytes && !dst) return SOTTO_ERR_INVALID_ARG;
    int rc = sotto_cuda_enter(cu);
    if (rc || !bytes) return rc;
    SOTTO_CU(cu, cudaMemsetAsync(dst, 0, bytes, cu->stream));
    return SOTTO_OK;
}

/* ---- scratch pool ------------------------------------------------------------------------- */

extern "C" int sotto_cuda_scratch_alloc(sotto_cuda *cu, size_t bytes, void **dptr)
{
    if (!cu || !dptr) return SOTTO_ERR_INVALID_ARG;
    *dptr = NULL;
    if (cu->err) return cu->err;
    const size_t start = (cu->scratch_used + 255) & ~(size_t)255;
    size_t end;
    if (start > cu->scratch_size || sotto_add_size(start, bytes, &end) || end > cu->scratch_size) {
        char detail[128];
        snprintf(detail, sizeof detail, "%zu bytes requested, %zu of %zu free", bytes,
                 start > cu->scratch_size ? (size_t)0 : cu->scratch_size - start, cu->scratch_size);
        return sotto_cuda_fail(cu, SOTTO_ERR_OUT_OF_MEMORY, "scratch pool", detail);
    }
    *dptr = cu->scratch + start;
    cu->scratch_used = end;
    return SOTTO_OK;
}

extern "C" void sotto_cuda_scratch_reset(sotto_cuda *cu)
{
    if (cu) cu->scratch_used = 0;
}

extern "C" size_t sotto_cuda_scratch_used(const sotto_cuda *cu)
{
    return cu ? cu->scratch_used : 0;
}

extern "C" size_t sotto_cuda_scratch_size(const sotto_cuda *cu)
{
    return cu ? cu->scratch_size : 0;
}
