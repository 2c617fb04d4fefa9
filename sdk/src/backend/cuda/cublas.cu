/*
 * cuBLAS opened on first use (common.cuh, sotto_cublas_api): the library's soname for this
 * toolkit (SOTTO_CUBLAS_SONAME, from CMake), found the way the dynamic linker finds any
 * library, else in the toolkit's library folder the build saw (SOTTO_CUBLAS_DIR).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "backend/cuda/common.cuh"

#ifndef SOTTO_CUBLAS_SONAME
#define SOTTO_CUBLAS_SONAME "libcublas.so"
#endif

static sotto_cublas_api g_api;
static const sotto_cublas_api *g_ok;
static char g_why[320];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

template <typename F> static bool resolve(void *lib, const char *name, F *out)
{
    *out = reinterpret_cast<F>(dlsym(lib, name));
    if (!*out) snprintf(g_why, sizeof g_why, "%s has no %s", SOTTO_CUBLAS_SONAME, name);
    return *out != nullptr;
}

static void load(void)
{
    void *lib = dlopen(SOTTO_CUBLAS_SONAME, RTLD_NOW | RTLD_LOCAL);
#ifdef SOTTO_CUBLAS_DIR
    if (!lib) lib = dlopen(SOTTO_CUBLAS_DIR "/" SOTTO_CUBLAS_SONAME, RTLD_NOW | RTLD_LOCAL);
#endif
    if (!lib) {
        const char *e = dlerror();
        snprintf(g_why, sizeof g_why, "cannot open %s: %s", SOTTO_CUBLAS_SONAME, e ? e : "?");
        return;
    }
    if (resolve(lib, "cublasCreate_v2", &g_api.create) &&
        resolve(lib, "cublasDestroy_v2", &g_api.destroy) &&
        resolve(lib, "cublasSetStream_v2", &g_api.set_stream) &&
        resolve(lib, "cublasSetPointerMode_v2", &g_api.set_pointer_mode) &&
        resolve(lib, "cublasSetWorkspace_v2", &g_api.set_workspace) &&
        resolve(lib, "cublasGemmStridedBatchedEx", &g_api.gemm_strided_batched_ex) &&
        resolve(lib, "cublasGetStatusString", &g_api.status_string))
        g_ok = &g_api;
    /* the library stays open for the life of the process, as a linked one would */
}

const sotto_cublas_api *sotto_cublas_api_get(const char **why)
{
    pthread_once(&g_once, load);
    if (!g_ok && why) *why = g_why;
    return g_ok;
}
