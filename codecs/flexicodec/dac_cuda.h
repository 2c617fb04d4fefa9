/*
 * The DAC residual unit on the CUDA layer library, shared by the FlexiCodec decoder
 * (flexicodec_cuda.c) and encoder (flexicodec_cuda_enc.c), which use it in the same way:
 *
 *     x[L][C] += conv1(Snake_2(conv7_d(Snake_1(x))))
 *
 * with conv7_d the k 7 conv of dilation d zero-padded 3·d on each side (flexicodec_res_unit
 * of flexicodec.h, as the CPU's flexicodec_res_unit_run). Built only with the CUDA backend.
 */
#ifndef SOTTO_FLEXICODEC_DAC_CUDA_H
#define SOTTO_FLEXICODEC_DAC_CUDA_H

#ifdef SOTTO_HAVE_CUDA

#include <stdint.h>

#include "backend/cuda/cuda_ops.h"
#include "codecs/flexicodec/flexicodec.h"

typedef struct flexicodec_cuda_res_unit {
    int dilation;
    float *alpha1, *alpha2; /* device [C] */
    sotto_cuda_conv1d_w conv7;
    float *conv7_b;
    sotto_cuda_linear_w conv1;
    float *conv1_b;
} flexicodec_cuda_res_unit;

/* Uploads the CPU unit r of width C (load time) and checks its convs' shapes. Errors:
 * SOTTO_ERR_INVALID_ARG (a missing vector, convs not C → C with k 7 and r's dilation), and
 * the upload's (SOTTO_ERR_DEVICE, SOTTO_ERR_OUT_OF_MEMORY); what was uploaded before a failure
 * stays in u for flexicodec_cuda_res_unit_free. */
int flexicodec_cuda_res_unit_upload(sotto_cuda *cu, const flexicodec_res_unit *r, int C,
                                    flexicodec_cuda_res_unit *u, sotto_status *st);
void flexicodec_cuda_res_unit_free(sotto_cuda *cu, flexicodec_cuda_res_unit *u);

/* x[L][C] += the unit's residual, with A and B two free buffers of at least (L + 6·d)·C
 * floats (the padded conv7 input goes into A, its output into B). Returns SOTTO_OK, or the
 * failing layer's result (an error code, or a wrong frame count) with *what naming it. */
int64_t flexicodec_cuda_res_unit_run(sotto_cuda *cu, const flexicodec_cuda_res_unit *u, float *x,
                                     float *A, float *B, int64_t L, int C, const char **what);

#endif /* SOTTO_HAVE_CUDA */

#endif
