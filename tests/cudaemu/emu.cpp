/*
 * The CUDA emulator's runtime (tests/cudaemu/README.md): one emulated device, memory,
 * streams, stream capture and graphs, and kernel launches whose threads run as fibers on the
 * calling CPU thread, one block at a time.
 *
 * It is stricter than a GPU where that finds bugs: cudaMalloc fills new memory with NaN bytes
 * and surrounds it with NaN red zones (checked after every kernel, copy and library call, so
 * an out-of-bounds write is reported with the kernel that made it, and an out-of-bounds or
 * uninitialised read shows up as NaN); every pointer argument of a kernel must be NULL or
 * point into a device allocation; copies must match their direction; calls that CUDA forbids
 * while a stream is being captured (synchronising, cudaMalloc/cudaFree, synchronous copies)
 * fail and invalidate the capture, as they do on a GPU; a graph replays exactly what was
 * recorded, so host values read at capture time stay frozen. Barriers are checked: a block
 * whose threads wait at different barriers, a __syncthreads that some threads of the block
 * never reach because they returned, or a shuffle among lanes of which some have exited, is
 * reported as an error (CUDA leaves all three undefined) instead of hanging.
 *
 * Every API call takes one process-wide lock; kernels run inside it.
 */
#include <sys/mman.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "cuda_runtime.h"

#include "emu_internal.h"

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

namespace emu
{

std::recursive_mutex g_lock;

/* ---- errors -------------------------------------------------------------------------------- */
static cudaError_t g_last = cudaSuccess;   /* cleared by cudaGetLastError */
static cudaError_t g_sticky = cudaSuccess; /* a kernel fault: every later call fails */

cudaError_t set_error(cudaError_t e, const char *fmt, ...)
{
    if (e == cudaSuccess) return e;
    if (fmt && !getenv("SOTTO_CUDAEMU_QUIET")) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "cudaemu: ");
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\n");
        va_end(ap);
    }
    if (g_last == cudaSuccess) g_last = e;
    if (e == cudaErrorIllegalAddress || e == cudaErrorLaunchFailure) g_sticky = e;
    return e;
}

static cudaError_t sticky()
{
    return g_sticky;
}

/* ---- memory -------------------------------------------------------------------------------- */
static const size_t RZ = 256; /* red zone bytes on each side */
struct alloc_rec {
    size_t bytes;
    unsigned char *raw;
};
static std::map<uintptr_t, alloc_rec> g_allocs; /* user pointer -> record */

static bool rz_intact(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0xff) return false;
    return true;
}

bool device_range_locked(const void *p, size_t bytes)
{
    if (!p) return true;
    const uintptr_t a = (uintptr_t)p;
    auto it = g_allocs.upper_bound(a);
    if (it == g_allocs.begin()) return false;
    --it;
    const uintptr_t base = it->first, end = base + it->second.bytes;
    return a >= base && a <= end && bytes <= end - a;
}

bool is_device_ptr(const void *p)
{
    return p && device_range_locked(p, 0);
}

/* Every allocation's red zones; reports the first overrun with `after` (what ran last). */
cudaError_t check_red_zones(const char *after)
{
    for (auto &kv : g_allocs) {
        const alloc_rec &r = kv.second;
        const size_t tail = RZ + ((r.bytes + 255) & ~(size_t)255) - r.bytes;
        if (!rz_intact(r.raw, RZ) || !rz_intact(r.raw + RZ + r.bytes, tail))
            return set_error(cudaErrorIllegalAddress,
                             "%s wrote outside a %zu-byte device allocation (red zone changed)",
                             after, r.bytes);
    }
    return cudaSuccess;
}

/* ---- streams and capture ---------------------------------------------------------------- */
typedef std::function<cudaError_t()> op_fn;
} // namespace emu

struct CUstream_st {
    bool capturing = false, invalidated = false;
    std::vector<emu::op_fn> rec;
};
struct CUgraph_st {
    std::vector<emu::op_fn> ops;
};
struct CUgraphExec_st {
    std::vector<emu::op_fn> ops;
};

namespace emu
{
static std::vector<CUstream_st *> g_streams;

bool any_capture()
{
    for (CUstream_st *s : g_streams)
        if (s->capturing) return true;
    return false;
}

/* A call CUDA forbids during capture: fails and invalidates every capture under way. */
cudaError_t capture_violation(const char *call)
{
    bool any = false;
    for (CUstream_st *s : g_streams)
        if (s->capturing) {
            s->invalidated = true;
            any = true;
        }
    if (!any) return cudaSuccess;
    return set_error(cudaErrorStreamCaptureUnsupported,
                     "%s while a stream is being captured (not allowed in CUDA graphs)", call);
}

bool known_stream(cudaStream_t s)
{
    if (!s) return true;
    for (CUstream_st *t : g_streams)
        if (t == s) return true;
    return false;
}

/* Runs op now, or records it when s is being captured. */
cudaError_t submit(cudaStream_t s, op_fn op)
{
    if (!known_stream(s)) return set_error(cudaErrorInvalidValue, "unknown stream %p", (void *)s);
    if (s && s->capturing) {
        if (!s->invalidated) s->rec.push_back(std::move(op));
        return cudaSuccess;
    }
    return op();
}

/* ---- fibers ---------------------------------------------------------------------------------- */
extern "C" void sotto_cudaemu_switch(void **save_sp, void *new_sp);
__asm__(".text\n"
        ".globl sotto_cudaemu_switch\n"
        ".type sotto_cudaemu_switch,@function\n"
        "sotto_cudaemu_switch:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    movq %rsp, (%rdi)\n"
        "    movq %rsi, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size sotto_cudaemu_switch, .-sotto_cudaemu_switch\n");

enum { F_READY, F_WAIT_BLOCK, F_WAIT_WARP, F_DONE };
struct fiber {
    void *sp;
    unsigned char *stack; /* top of its stack */
    int state;
    uint3 tid;
    unsigned n_exchanges;
};
static const size_t STACK = 128 * 1024, GUARD = 4096;
static std::vector<fiber> g_fib;
static void *g_sched_sp;
static int g_cur = -1;
static const launch_args *g_kernel;
static std::vector<uint32_t> g_slots; /* [2][warps][32] shuffle exchange words */
static int g_n_warps;
static const char *g_block_error;

static void fiber_entry()
{
    g_kernel->thunk(g_kernel->args);
    g_fib[g_cur].state = F_DONE;
    sotto_cudaemu_switch(&g_fib[g_cur].sp, g_sched_sp);
    abort(); /* never resumed */
}

static void fiber_start(fiber &f)
{
    uintptr_t top = (uintptr_t)f.stack & ~(uintptr_t)15;
    void **sp = (void **)top;
    *--sp = nullptr;              /* fake return address of fiber_entry */
    *--sp = (void *)&fiber_entry; /* where the first switch returns to */
    for (int i = 0; i < 6; i++)
        *--sp = nullptr; /* rbp rbx r12-r15 */
    f.sp = sp;
    f.state = F_READY;
    f.n_exchanges = 0;
}

static bool ensure_fibers(size_t n)
{
    while (g_fib.size() < n) {
        void *m = mmap(nullptr, STACK + GUARD, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) return false;
        mprotect(m, GUARD, PROT_NONE); /* a stack overflow faults instead of corrupting */
        fiber f;
        memset(&f, 0, sizeof f);
        f.stack = (unsigned char *)m + STACK + GUARD;
        g_fib.push_back(f);
    }
    return true;
}

static void yield_to_scheduler()
{
    sotto_cudaemu_switch(&g_fib[g_cur].sp, g_sched_sp);
}

void sync_block()
{
    if (g_cur < 0) abort(); /* __syncthreads outside a kernel */
    g_fib[g_cur].state = F_WAIT_BLOCK;
    yield_to_scheduler();
}

void sync_warp(unsigned)
{
    if (g_cur < 0) abort();
    g_fib[g_cur].state = F_WAIT_WARP;
    yield_to_scheduler();
}

uint32_t warp_exchange(uint32_t v, int src_lane)
{
    if (g_cur < 0) abort();
    fiber &f = g_fib[g_cur];
    const int lane = g_cur & 31, warp = g_cur >> 5;
    const unsigned buf = f.n_exchanges++ & 1u;
    uint32_t *slots = &g_slots[((size_t)buf * g_n_warps + warp) * 32];
    slots[lane] = v;
    sync_warp(0xffffffffu);
    return slots[src_lane & 31];
}

/* Runs one block to completion; false (with g_block_error) on a barrier error. */
static bool run_block(int n)
{
    for (int i = 0; i < n; i++) {
        fiber &f = g_fib[i];
        f.tid.x = (unsigned)(i % blockDim.x);
        f.tid.y = (unsigned)(i / blockDim.x % blockDim.y);
        f.tid.z = (unsigned)(i / (blockDim.x * blockDim.y));
        fiber_start(f);
    }
    int live = n;
    while (live > 0) {
        for (int i = 0; i < n; i++) {
            if (g_fib[i].state != F_READY) continue;
            g_cur = i;
            threadIdx = g_fib[i].tid;
            sotto_cudaemu_switch(&g_sched_sp, g_fib[i].sp);
            g_cur = -1;
            if (g_fib[i].state == F_DONE) live--;
        }
        if (live == 0) break;
        /* every live thread now waits at a barrier: release what can be released */
        bool released = false;
        for (int w = 0; w * 32 < n; w++) {
            const int b = w * 32, e = b + 32 < n ? b + 32 : n;
            int waiting = 0, done = 0;
            for (int i = b; i < e; i++) {
                waiting += g_fib[i].state == F_WAIT_WARP;
                done += g_fib[i].state == F_DONE;
            }
            if (!waiting) continue;
            if (waiting + done != e - b) continue; /* some lanes are at another barrier */
            if (done || e - b < 32) {
                g_block_error = "a warp shuffle/sync among lanes that have exited or do not exist";
                return false;
            }
            for (int i = b; i < e; i++)
                g_fib[i].state = F_READY;
            released = true;
        }
        if (released) continue;
        int at_block = 0;
        for (int i = 0; i < n; i++)
            at_block += g_fib[i].state == F_WAIT_BLOCK;
        if (at_block == live && live == n) {
            for (int i = 0; i < n; i++)
                if (g_fib[i].state == F_WAIT_BLOCK) g_fib[i].state = F_READY;
            continue;
        }
        g_block_error = at_block == live
                            ? "__syncthreads reached after some threads of the block exited"
                            : "threads of a block wait at different barriers (divergent "
                              "__syncthreads or shuffle)";
        return false;
    }
    return true;
}

static cudaError_t run_kernel(const char *name, dim3 grid, dim3 block, const launch_args &la)
{
    if (sticky()) return sticky();
    const int n = (int)(block.x * block.y * block.z);
    if (!ensure_fibers((size_t)n))
        return set_error(cudaErrorMemoryAllocation, "no memory for %d fiber stacks", n);
    g_n_warps = (n + 31) / 32;
    g_slots.assign((size_t)2 * g_n_warps * 32, 0);
    g_kernel = &la;
    blockDim = block;
    gridDim = grid;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                blockIdx.x = x;
                blockIdx.y = y;
                blockIdx.z = z;
                if (!run_block(n)) {
                    return set_error(cudaErrorLaunchFailure, "kernel %s, block (%u,%u,%u): %s",
                                     name, x, y, z, g_block_error);
                }
            }
    g_kernel = nullptr;
    return check_red_zones(name);
}

cudaError_t launch_kernel(const char *what, dim3 grid, dim3 block, size_t shmem, cudaStream_t s,
                          const launch_args &la, const void *const *ptrs, const int *ptr_index,
                          int n_ptrs)
{
    std::lock_guard<std::recursive_mutex> lk(g_lock);
    struct owner {
        const launch_args &l;
        ~owner()
        {
            l.destroy(l.args);
        }
    } own{la};
    if (sticky()) return set_error(sticky(), nullptr);
    const unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
    if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 ||
        grid.z == 0 || grid.y > 65535 || grid.z > 65535 || grid.x > 0x7fffffffu ||
        shmem > 48 * 1024)
        return set_error(cudaErrorInvalidConfiguration,
                         "kernel %s: bad launch configuration grid (%u,%u,%u) block (%u,%u,%u) "
                         "shared %zu",
                         what, grid.x, grid.y, grid.z, block.x, block.y, block.z, shmem);
    for (int i = 0; i < n_ptrs; i++)
        if (ptrs[i] && !is_device_ptr(ptrs[i]))
            return set_error(cudaErrorIllegalAddress,
                             "kernel %s: argument %d (%p) is not device memory", what,
                             ptr_index[i] + 1, ptrs[i]);
    if (!known_stream(s))
        return set_error(cudaErrorInvalidValue, "kernel %s: unknown stream", what);
    if (s && s->capturing) {
        if (!s->invalidated) {
            /* the graph owns a copy of the arguments as they are now */
            launch_args copy = la;
            copy.args = la.clone(la.args);
            std::shared_ptr<void> keep(copy.args, la.destroy);
            s->rec.push_back(
                [what, grid, block, copy, keep]() { return run_kernel(what, grid, block, copy); });
        }
        return cudaSuccess;
    }
    return run_kernel(what, grid, block, la);
}

bool device_range(const void *p, size_t bytes)
{
    std::lock_guard<std::recursive_mutex> lk(g_lock);
    return device_range_locked(p, bytes);
}

} // namespace emu

using namespace emu;

#define LOCK std::lock_guard<std::recursive_mutex> lk_(g_lock)

/* ---- device ------------------------------------------------------------------------------------
 */
static int g_device;

static int device_count()
{
    const char *e = getenv("SOTTO_CUDAEMU_DEVICES");
    return e ? atoi(e) : 1;
}

cudaError_t cudaGetDeviceCount(int *count)
{
    LOCK;
    if (!count) return set_error(cudaErrorInvalidValue, nullptr);
    *count = device_count();
    if (*count <= 0) {
        *count = 0;
        return set_error(cudaErrorNoDevice, nullptr);
    }
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device)
{
    LOCK;
    if (sticky()) return sticky();
    if (device < 0 || device >= device_count())
        return set_error(cudaErrorInvalidDevice, "cudaSetDevice(%d)", device);
    g_device = device;
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int *device)
{
    LOCK;
    if (!device) return set_error(cudaErrorInvalidValue, nullptr);
    *device = g_device;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device)
{
    LOCK;
    if (!prop) return set_error(cudaErrorInvalidValue, nullptr);
    if (device < 0 || device >= device_count()) return set_error(cudaErrorInvalidDevice, nullptr);
    memset(prop, 0, sizeof *prop);
    snprintf(prop->name, sizeof prop->name, "Sotto CUDA emulator (kernels on the CPU)");
    prop->totalGlobalMem = (size_t)16 << 30;
    prop->major = 9;
    prop->minor = 0;
    prop->multiProcessorCount = 1;
    prop->maxThreadsPerBlock = 1024;
    prop->sharedMemPerBlock = 48 * 1024;
    prop->warpSize = 32;
    return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int device)
{
    LOCK;
    if (!value) return set_error(cudaErrorInvalidValue, nullptr);
    if (device < 0 || device >= device_count()) return set_error(cudaErrorInvalidDevice, nullptr);
    switch (attr) {
    case cudaDevAttrComputeCapabilityMajor:
        *value = 9;
        break;
    case cudaDevAttrComputeCapabilityMinor:
        *value = 0;
        break;
    case cudaDevAttrMultiProcessorCount:
        *value = 1;
        break;
    case cudaDevAttrMaxThreadsPerBlock:
        *value = 1024;
        break;
    default:
        return set_error(cudaErrorInvalidValue, "cudaDeviceGetAttribute(%d)", (int)attr);
    }
    return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int *v)
{
    if (!v) return cudaErrorInvalidValue;
    *v = 0;
    return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int *v)
{
    if (!v) return cudaErrorInvalidValue;
    *v = 0;
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void)
{
    LOCK;
    if (sticky()) return sticky();
    if (any_capture()) return capture_violation("cudaDeviceSynchronize");
    return check_red_zones("an earlier call");
}

cudaError_t cudaGetLastError(void)
{
    LOCK;
    const cudaError_t e = g_last;
    g_last = sticky();
    return e;
}

cudaError_t cudaPeekAtLastError(void)
{
    LOCK;
    return g_last;
}

const char *cudaGetErrorName(cudaError_t e)
{
    switch (e) {
    case cudaSuccess:
        return "cudaSuccess";
    case cudaErrorInvalidValue:
        return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation:
        return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration:
        return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer:
        return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection:
        return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorNoDevice:
        return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice:
        return "cudaErrorInvalidDevice";
    case cudaErrorIllegalAddress:
        return "cudaErrorIllegalAddress";
    case cudaErrorLaunchFailure:
        return "cudaErrorLaunchFailure";
    case cudaErrorStreamCaptureUnsupported:
        return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated:
        return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureWrongThread:
        return "cudaErrorStreamCaptureWrongThread";
    case cudaErrorIllegalState:
        return "cudaErrorIllegalState";
    default:
        return "cudaErrorUnknown";
    }
}

const char *cudaGetErrorString(cudaError_t e)
{
    switch (e) {
    case cudaSuccess:
        return "no error";
    case cudaErrorIllegalAddress:
        return "an illegal memory access was encountered (emulator)";
    case cudaErrorLaunchFailure:
        return "unspecified launch failure (emulator: barrier error)";
    default:
        return cudaGetErrorName(e);
    }
}

/* ---- memory ------------------------------------------------------------------------------------
 */
cudaError_t cudaMalloc(void **ptr, size_t bytes)
{
    LOCK;
    if (!ptr) return set_error(cudaErrorInvalidValue, nullptr);
    *ptr = nullptr;
    if (sticky()) return sticky();
    if (any_capture()) return capture_violation("cudaMalloc");
    if (bytes == 0) return cudaSuccess;
    const size_t body = (bytes + 255) & ~(size_t)255;
    if (bytes > ((size_t)64 << 30) || body < bytes)
        return set_error(cudaErrorMemoryAllocation, nullptr);
    unsigned char *raw = (unsigned char *)aligned_alloc(256, body + 2 * RZ);
    if (!raw) return set_error(cudaErrorMemoryAllocation, nullptr);
    memset(raw, 0xff, body + 2 * RZ); /* red zones, and NaN in what nobody wrote yet */
    g_allocs[(uintptr_t)(raw + RZ)] = alloc_rec{bytes, raw};
    *ptr = raw + RZ;
    return cudaSuccess;
}

cudaError_t cudaFree(void *ptr)
{
    LOCK;
    if (!ptr) return cudaSuccess;
    if (any_capture()) return capture_violation("cudaFree");
    auto it = g_allocs.find((uintptr_t)ptr);
    if (it == g_allocs.end())
        return set_error(cudaErrorInvalidDevicePointer, "cudaFree(%p): not an allocation", ptr);
    const cudaError_t e = check_red_zones("an earlier call");
    free(it->second.raw);
    g_allocs.erase(it);
    return e;
}

static cudaError_t copy_check(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                              const char *call)
{
    const bool dd = device_range_locked(dst, bytes) && dst,
               sd = device_range_locked(src, bytes) && src;
    const bool dh = !is_device_ptr(dst), sh = !is_device_ptr(src);
    bool ok;
    switch (kind) {
    case cudaMemcpyHostToDevice:
        ok = dd && sh;
        break;
    case cudaMemcpyDeviceToHost:
        ok = dh && sd;
        break;
    case cudaMemcpyDeviceToDevice:
        ok = dd && sd;
        break;
    case cudaMemcpyHostToHost:
        ok = dh && sh;
        break;
    case cudaMemcpyDefault:
        ok = (dd || dh) && (sd || sh);
        break;
    default:
        return set_error(cudaErrorInvalidMemcpyDirection, "%s: kind %d", call, (int)kind);
    }
    if (!ok || !dst || !src)
        return set_error(cudaErrorInvalidValue,
                         "%s: %zu bytes from %p to %p do not match kind %d (or leave an "
                         "allocation)",
                         call, bytes, src, dst, (int)kind);
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind)
{
    LOCK;
    if (sticky()) return sticky();
    if (any_capture()) return capture_violation("cudaMemcpy");
    if (!bytes) return cudaSuccess;
    cudaError_t e = copy_check(dst, src, bytes, kind, "cudaMemcpy");
    if (e) return e;
    memmove(dst, src, bytes);
    return check_red_zones("cudaMemcpy");
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t s)
{
    LOCK;
    if (sticky()) return sticky();
    if (!bytes) return cudaSuccess;
    cudaError_t e = copy_check(dst, src, bytes, kind, "cudaMemcpyAsync");
    if (e) return e;
    return submit(s, [dst, src, bytes]() {
        memmove(dst, src, bytes);
        return check_red_zones("cudaMemcpyAsync");
    });
}

cudaError_t cudaMemset(void *dst, int value, size_t bytes)
{
    LOCK;
    if (sticky()) return sticky();
    if (any_capture()) return capture_violation("cudaMemset");
    if (!bytes) return cudaSuccess;
    if (!dst || !device_range_locked(dst, bytes))
        return set_error(cudaErrorInvalidValue, "cudaMemset: %zu bytes at %p", bytes, dst);
    memset(dst, value, bytes);
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *dst, int value, size_t bytes, cudaStream_t s)
{
    LOCK;
    if (sticky()) return sticky();
    if (!bytes) return cudaSuccess;
    if (!dst || !device_range_locked(dst, bytes))
        return set_error(cudaErrorInvalidValue, "cudaMemsetAsync: %zu bytes at %p", bytes, dst);
    return submit(s, [dst, value, bytes]() {
        memset(dst, value, bytes);
        return cudaSuccess;
    });
}

/* ---- streams, capture, graphs --------------------------------------------------------------- */
cudaError_t cudaStreamCreate(cudaStream_t *s)
{
    return cudaStreamCreateWithFlags(s, cudaStreamDefault);
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags)
{
    LOCK;
    (void)flags;
    if (!s) return set_error(cudaErrorInvalidValue, nullptr);
    if (sticky()) return sticky();
    *s = new CUstream_st;
    g_streams.push_back(*s);
    return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t s)
{
    LOCK;
    for (size_t i = 0; i < g_streams.size(); i++)
        if (g_streams[i] == s) {
            g_streams.erase(g_streams.begin() + (long)i);
            delete s;
            return cudaSuccess;
        }
    return set_error(cudaErrorInvalidValue, "cudaStreamDestroy: unknown stream");
}

cudaError_t cudaStreamSynchronize(cudaStream_t s)
{
    LOCK;
    if (!known_stream(s)) return set_error(cudaErrorInvalidValue, "unknown stream");
    if (sticky()) return sticky();
    if (s && s->capturing) return capture_violation("cudaStreamSynchronize");
    return check_red_zones("an earlier call");
}

cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode)
{
    LOCK;
    (void)mode;
    if (sticky()) return sticky();
    if (!s) return set_error(cudaErrorStreamCaptureUnsupported, "capture of the legacy stream");
    if (!known_stream(s)) return set_error(cudaErrorInvalidValue, "unknown stream");
    if (s->capturing) return set_error(cudaErrorIllegalState, "stream already capturing");
    s->capturing = true;
    s->invalidated = false;
    s->rec.clear();
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *graph)
{
    LOCK;
    if (!graph) return set_error(cudaErrorInvalidValue, nullptr);
    *graph = nullptr;
    if (!s || !known_stream(s) || !s->capturing)
        return set_error(cudaErrorIllegalState, "cudaStreamEndCapture: stream not capturing");
    s->capturing = false;
    if (s->invalidated) {
        s->rec.clear();
        return set_error(cudaErrorStreamCaptureInvalidated, nullptr);
    }
    CUgraph_st *g = new CUgraph_st;
    g->ops.swap(s->rec);
    *graph = g;
    return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus *status)
{
    LOCK;
    if (!status || !known_stream(s)) return set_error(cudaErrorInvalidValue, nullptr);
    *status = s && s->capturing ? (s->invalidated ? cudaStreamCaptureStatusInvalidated
                                                  : cudaStreamCaptureStatusActive)
                                : cudaStreamCaptureStatusNone;
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long)
{
    LOCK;
    if (!exec || !graph) return set_error(cudaErrorInvalidValue, nullptr);
    if (sticky()) return sticky();
    CUgraphExec_st *x = new CUgraphExec_st;
    x->ops = graph->ops;
    *exec = x;
    return cudaSuccess;
}

cudaError_t cudaGraphUpload(cudaGraphExec_t exec, cudaStream_t s)
{
    LOCK;
    if (!exec || !known_stream(s)) return set_error(cudaErrorInvalidValue, nullptr);
    return sticky();
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s)
{
    LOCK;
    if (!exec || !known_stream(s)) return set_error(cudaErrorInvalidValue, nullptr);
    if (sticky()) return sticky();
    if (s && s->capturing)
        return set_error(cudaErrorStreamCaptureUnsupported, "graph launch into a capture");
    for (auto &op : exec->ops) {
        const cudaError_t e = op();
        if (e) return e;
    }
    return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec)
{
    LOCK;
    delete exec;
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph)
{
    LOCK;
    delete graph;
    return cudaSuccess;
}
