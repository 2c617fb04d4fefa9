/*
 * The CUDA emulator's cuda_runtime.h (tests/cudaemu/README.md): the part of the CUDA runtime
 * API and of the device language that Sotto's backend uses, for compiling its .cu files as
 * host C++ and running their kernels on the CPU. Not NVIDIA's header and not a CUDA
 * implementation: every kernel thread runs as a fiber, a block at a time, so the kernels'
 * indexing, reductions and barriers, the launches' argument and memory rules, and the
 * capture/replay of CUDA graphs are exercised without a GPU. Timing, concurrency between
 * blocks and streams, and the real hardware's numerics are not.
 */
#ifndef SOTTO_CUDAEMU_CUDA_RUNTIME_H
#define SOTTO_CUDAEMU_CUDA_RUNTIME_H

#ifndef __cplusplus
#error "the CUDA emulator headers are C++ only"
#endif

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <tuple>
#include <type_traits>
#include <utility>

/* ---- qualifiers ------------------------------------------------------------------------ */
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
/* One block runs at a time, so a function-static array is the block's shared memory. */
#define __shared__ static
#define __constant__ static

/* ---- types ------------------------------------------------------------------------------- */
struct uint3 {
    unsigned x, y, z;
};
struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct float2 {
    float x, y;
};

enum cudaError_t {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevicePointer = 17,
    cudaErrorInvalidMemcpyDirection = 21,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
    cudaErrorIllegalAddress = 700,
    cudaErrorLaunchFailure = 719,
    cudaErrorStreamCaptureUnsupported = 900,
    cudaErrorStreamCaptureInvalidated = 901,
    cudaErrorStreamCaptureWrongThread = 908,
    cudaErrorIllegalState = 401,
    cudaErrorUnknown = 999
};
typedef cudaError_t cudaError;

enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4
};
enum cudaStreamCaptureStatus {
    cudaStreamCaptureStatusNone = 0,
    cudaStreamCaptureStatusActive = 1,
    cudaStreamCaptureStatusInvalidated = 2
};
enum cudaStreamCaptureMode {
    cudaStreamCaptureModeGlobal = 0,
    cudaStreamCaptureModeThreadLocal = 1,
    cudaStreamCaptureModeRelaxed = 2
};
enum cudaDeviceAttr {
    cudaDevAttrMaxThreadsPerBlock = 1,
    cudaDevAttrMultiProcessorCount = 16,
    cudaDevAttrComputeCapabilityMajor = 75,
    cudaDevAttrComputeCapabilityMinor = 76
};
#define cudaStreamDefault 0x00
#define cudaStreamNonBlocking 0x01

struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
    int major, minor;
    int multiProcessorCount;
    int maxThreadsPerBlock;
    size_t sharedMemPerBlock;
    int warpSize;
};

struct CUstream_st;
struct CUgraph_st;
struct CUgraphExec_st;
typedef CUstream_st *cudaStream_t;
typedef CUgraph_st *cudaGraph_t;
typedef CUgraphExec_st *cudaGraphExec_t;

/* ---- runtime API (tests/cudaemu/emu.cpp) ------------------------------------------------- */
cudaError_t cudaGetDeviceCount(int *count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int *device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device);
cudaError_t cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int device);
cudaError_t cudaDriverGetVersion(int *v);
cudaError_t cudaRuntimeGetVersion(int *v);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);
const char *cudaGetErrorString(cudaError_t e);
const char *cudaGetErrorName(cudaError_t e);

cudaError_t cudaMalloc(void **ptr, size_t bytes);
template <typename T> inline cudaError_t cudaMalloc(T **ptr, size_t bytes)
{
    return cudaMalloc(reinterpret_cast<void **>(ptr), bytes);
}
cudaError_t cudaFree(void *ptr);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t s = 0);
cudaError_t cudaMemset(void *dst, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void *dst, int value, size_t bytes, cudaStream_t s = 0);

cudaError_t cudaStreamCreate(cudaStream_t *s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *graph);
cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus *status);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph,
                                 unsigned long long flags = 0);
cudaError_t cudaGraphUpload(cudaGraphExec_t exec, cudaStream_t s);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);

/* ---- the device side --------------------------------------------------------------------- */
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;
static const int warpSize = 32;

namespace emu
{
/* Barriers of the running block (emu.cpp): every live thread of the block, or of the caller's
 * warp, arrives before any leaves. */
void sync_block();
void sync_warp(unsigned mask);
/* The caller's warp exchanges one 32-bit word per lane: returns lane src_lane's value. */
uint32_t warp_exchange(uint32_t v, int src_lane);

/* Launch machinery: a kernel call becomes launch_t(grid, block, shmem, stream)("name", kernel,
 * args), written so by the build's rewrite of <<<...>>> (rewrite.cmake). */
typedef void (*thunk_fn)(void *);
struct launch_args {
    thunk_fn thunk; /* calls the kernel with *args */
    void *args;
    void (*destroy)(void *);
    void *(*clone)(const void *);
};
cudaError_t launch_kernel(const char *what, dim3 grid, dim3 block, size_t shmem, cudaStream_t s,
                          const launch_args &la, const void *const *ptrs, const int *ptr_index,
                          int n_ptrs);
/* Is p NULL or inside an allocation made by cudaMalloc (ptr[0, bytes) must fit)? */
bool device_range(const void *p, size_t bytes);

template <typename T> inline const void *as_ptr(const T &v)
{
    if constexpr (std::is_pointer<T>::value)
        return reinterpret_cast<const void *>(v);
    else
        return nullptr;
}

template <typename... P> struct kernel_call {
    void (*kernel)(P...);
    std::tuple<typename std::decay<P>::type...> args;
    static void thunk(void *self)
    {
        kernel_call *k = static_cast<kernel_call *>(self);
        std::apply(k->kernel, k->args);
    }
    static void destroy(void *self)
    {
        delete static_cast<kernel_call *>(self);
    }
    static void *clone(const void *self)
    {
        return new kernel_call(*static_cast<const kernel_call *>(self));
    }
};

struct launch_t {
    dim3 grid, block;
    size_t shmem;
    cudaStream_t stream;
    launch_t(dim3 g, dim3 b, size_t sh = 0, cudaStream_t s = 0)
        : grid(g), block(b), shmem(sh), stream(s)
    {
    }

    template <typename... P, typename... A>
    void operator()(const char *name, void (*kernel)(P...), A &&...a) const
    {
        static_assert(sizeof...(P) == sizeof...(A), "kernel argument count");
        auto *k = new kernel_call<P...>{
            kernel, std::tuple<typename std::decay<P>::type...>(
                        static_cast<typename std::decay<P>::type>(std::forward<A>(a))...)};
        /* pointer arguments, checked against the device allocations at launch */
        const void *ptrs[sizeof...(P) + 1];
        int idx[sizeof...(P) + 1];
        int n = 0, i = 0;
        std::apply(
            [&](const auto &...v) {
                ((std::is_pointer<typename std::decay<decltype(v)>::type>::value
                      ? (void)(ptrs[n] = as_ptr(v), idx[n++] = i++)
                      : (void)i++),
                 ...);
            },
            k->args);
        launch_args la = {&kernel_call<P...>::thunk, k, &kernel_call<P...>::destroy,
                          &kernel_call<P...>::clone};
        launch_kernel(name, grid, block, shmem, stream, la, ptrs, idx, n);
    }
};
} // namespace emu

inline void __syncthreads()
{
    emu::sync_block();
}
inline void __syncwarp(unsigned mask = 0xffffffffu)
{
    emu::sync_warp(mask);
}
template <typename T> inline T emu_shfl(T v, int src)
{
    static_assert(sizeof(T) == 4, "32-bit shuffles only");
    uint32_t u;
    __builtin_memcpy(&u, &v, 4);
    u = emu::warp_exchange(u, src);
    T r;
    __builtin_memcpy(&r, &u, 4);
    return r;
}
template <typename T> inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32)
{
    (void)mask;
    const int lane = (int)(threadIdx.x & 31);
    return emu_shfl(v, (lane & ~(width - 1)) | ((lane ^ lane_mask) & (width - 1)));
}
template <typename T> inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32)
{
    (void)mask;
    const int lane = (int)(threadIdx.x & 31), base = lane & ~(width - 1);
    const int src = (lane - base) + (int)delta < width ? lane + (int)delta : lane;
    return emu_shfl(v, src);
}
template <typename T> inline T __shfl_sync(unsigned mask, T v, int src, int width = 32)
{
    (void)mask;
    const int lane = (int)(threadIdx.x & 31);
    return emu_shfl(v, (lane & ~(width - 1)) | (src & (width - 1)));
}

/* Fibers of one block never run at the same time: plain read-modify-writes are atomic. */
inline int atomicOr(int *p, int v)
{
    const int o = *p;
    *p = o | v;
    return o;
}
inline int atomicAdd(int *p, int v)
{
    const int o = *p;
    *p = o + v;
    return o;
}
inline float atomicAdd(float *p, float v)
{
    const float o = *p;
    *p = o + v;
    return o;
}

inline float __expf(float x)
{
    return expf(x);
}
inline float __logf(float x)
{
    return logf(x);
}
inline float __fdividef(float a, float b)
{
    return a / b;
}
inline float rsqrtf(float x)
{
    return 1.0f / sqrtf(x);
}
inline float __saturatef(float x)
{
    return x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x;
}
inline void __sincosf(float x, float *s, float *c)
{
    *s = sinf(x);
    *c = cosf(x);
}
inline float __ldg(const float *p)
{
    return *p;
}
inline unsigned int __float_as_uint(float x)
{
    unsigned int u;
    memcpy(&u, &x, sizeof u);
    return u;
}
inline float __uint_as_float(unsigned int u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

#endif
