/*
 * The CUDA emulator's cufft.h (tests/cudaemu/README.md): the plans and the real-to-complex
 * and complex-to-real transforms Sotto's backend uses, implemented on the CPU by tests/cudaemu/emu_libs.cpp
 * (unnormalised inverse DFT, as cuFFT computes it).
 */
#ifndef SOTTO_CUDAEMU_CUFFT_H
#define SOTTO_CUDAEMU_CUFFT_H

#include "cuda_runtime.h"

typedef int cufftHandle;
typedef float cufftReal;
struct cufftComplex {
    float x, y;
};
enum cufftResult {
    CUFFT_SUCCESS = 0,
    CUFFT_INVALID_PLAN = 1,
    CUFFT_ALLOC_FAILED = 2,
    CUFFT_INVALID_TYPE = 3,
    CUFFT_INVALID_VALUE = 4,
    CUFFT_INTERNAL_ERROR = 5,
    CUFFT_EXEC_FAILED = 6,
    CUFFT_SETUP_FAILED = 7,
    CUFFT_INVALID_SIZE = 8
};
enum cufftType { CUFFT_R2C = 0x2a, CUFFT_C2R = 0x2c, CUFFT_C2C = 0x29 };

cufftResult cufftPlanMany(cufftHandle *plan, int rank, int *n, int *inembed, int istride, int idist,
                          int *onembed, int ostride, int odist, cufftType type, int batch);
cufftResult cufftSetStream(cufftHandle plan, cudaStream_t stream);
cufftResult cufftExecC2R(cufftHandle plan, cufftComplex *idata, cufftReal *odata);
cufftResult cufftExecR2C(cufftHandle plan, cufftReal *idata, cufftComplex *odata);
cufftResult cufftDestroy(cufftHandle plan);

#endif
