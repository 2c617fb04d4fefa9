/*
 * Row moves on device activations x[T][C] that packing several sequences into one buffer
 * needs and cuda_ops.h does not have: a device-to-device copy, and zeroing groups of rows at
 * offsets held on the device (the zero frames between packed sequences, which every k = 7
 * convolution reads as padding and every layer in between writes). Both only enqueue work on
 * the context's stream, so both may be captured in a CUDA graph (cuda_graph.h). Errors follow
 * cuda_ops.h: SOTTO_ERR_INVALID_ARG leaves the context working; a CUDA failure is recorded
 * and returned as SOTTO_ERR_DEVICE, and the context's sticky error is returned from then on.
 */
#ifndef SOTTO_BACKEND_CUDA_ROWS_H
#define SOTTO_BACKEND_CUDA_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "backend/cuda/cuda_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Enqueues dst[0..bytes) = src[0..bytes), both device pointers; the ranges must not overlap. */
int sotto_cuda_copy(sotto_cuda *cu, void *dst, const void *src, size_t bytes);

/* Enqueues x[starts[i] + r][0..C) = 0 for i < n_groups and r < rows_each (starts: n_groups
 * device int32 row indices, each ≥ 0; the caller keeps every row inside x). n_groups = 0 is a
 * no-op. */
int sotto_cuda_zero_row_groups(sotto_cuda *cu, float *x, int C, const int32_t *starts, int n_groups,
                               int rows_each);

#ifdef __cplusplus
}
#endif

#endif
