/* What the CUDA emulator's files share (tests/cudaemu/README.md). */
#ifndef SOTTO_CUDAEMU_INTERNAL_H
#define SOTTO_CUDAEMU_INTERNAL_H

#include <functional>
#include <mutex>

#include "cuda_runtime.h"

namespace emu
{
extern std::recursive_mutex g_lock;
/* Records e as the last error (and as sticky for a fault), printing the message unless
 * SOTTO_CUDAEMU_QUIET is set; returns e. */
cudaError_t set_error(cudaError_t e, const char *fmt, ...);
/* p NULL, or [p, p + bytes) inside one cudaMalloc allocation (its end included for 0 bytes). */
bool device_range_locked(const void *p, size_t bytes);
bool is_device_ptr(const void *p);
cudaError_t check_red_zones(const char *after);
bool any_capture();
bool known_stream(cudaStream_t s);
/* Runs op now, or records it into the capture under way on s. */
cudaError_t submit(cudaStream_t s, std::function<cudaError_t()> op);
} // namespace emu

#endif
