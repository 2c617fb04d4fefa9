/*
 * Per-group row ops for token-group codecs (FlexiCodec's decode stages before its transformer):
 * finite scalar quantiser codes from their indices (with concealed groups interpolated), a
 * masked accumulation of one residual-VQ stage onto the groups that transmitted it, and the
 * expansion of each group's row by its length in frames. The per-group data (indices, stage
 * counts, frame offsets) lives on the device, so a CUDA graph captured over these calls
 * (cuda_graph.h) reads the values uploaded before each replay. Only enqueue work on the
 * context's stream. Errors follow cuda_ops.h: SOTTO_ERR_INVALID_ARG leaves the context
 * working; a CUDA failure is recorded and returned as SOTTO_ERR_DEVICE, the context's sticky
 * error from then on.
 */
#ifndef SOTTO_BACKEND_CUDA_GROUPS_H
#define SOTTO_BACKEND_CUDA_GROUPS_H

#include <stddef.h>
#include <stdint.h>

#include "backend/cuda/cuda_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Code dimensions sotto_cuda_fsq_codes takes. */
#define SOTTO_CUDA_FSQ_MAX_LEVELS 8

/*
 * codes[g][0..n_levels) for g < G: digit d of idx[g] in the mixed radix of levels[] (host,
 * each ≥ 2), (digit − ⌊L/2⌋) / ⌊L/2⌋. A concealed group (count[g] < 0; its idx is not read)
 * gets the linear interpolation between the nearest groups before and after its run of
 * concealed groups, t = (k − start + 1) / (run + 1), held at the ends, zero when nothing was
 * received (the CPU decoder's concealment). idx and count: device int32 [G]; the indices must
 * be in range (the host checks them before the upload).
 */
int sotto_cuda_fsq_codes(sotto_cuda *cu, const int32_t *idx, const int32_t *count, int G,
                         const int *levels, int n_levels, float *codes);

/* acc[g][c] = (first ? 0 : acc[g][c]) + (stage < count[g] ? x[g][c] + bias[c] : 0) for g < G,
 * c < C (bias may be NULL): one residual-VQ stage added for the groups that carry it. */
int sotto_cuda_rows_masked_add(sotto_cuda *cu, float *acc, const float *x, const float *bias,
                               const int32_t *count, int stage, int first, int G, int C);

/* y[t][c] = a[g][c] + b[g][c] (b NULL: a alone) for off[g] ≤ t < off[g + 1], t < T = off[G]:
 * each group's row repeated for its frames. off: device int32 [G + 1], non-decreasing from 0
 * (groups of no frames allowed). */
int sotto_cuda_expand_rows(sotto_cuda *cu, const float *a, const float *b, const int32_t *off,
                           int G, int C, int64_t T, float *y);

#ifdef __cplusplus
}
#endif

#endif
