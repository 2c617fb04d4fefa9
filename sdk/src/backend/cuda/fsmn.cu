/*
 * The FSMN memory of a SAN-M block (fsmn.h): one thread per output value, consecutive threads
 * on consecutive channels, taps summed in order from the first as the depthwise conv does
 * (conv1d.cu), then v added, as the CPU adds it after its conv.
 */
#include "backend/cuda/common.cuh"
#include "backend/cuda/fsmn.h"

__global__ void fsmn_kernel(const float *__restrict__ v, int64_t ldv, int64_t T, int C,
                            const float *__restrict__ w, int K, int left, float *__restrict__ y,
                            int64_t ldy)
{
    const int64_t n = T * C;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t t = i / C;
        const int c = (int)(i - t * C);
        float acc = 0.0f;
        for (int k = 0; k < K; k++) {
            const int64_t s = t + k - left;
            /* a zero row contributes w·0 = 0 (w is finite), so skipping it adds the same */
            if (s >= 0 && s < T) acc += w[(int64_t)k * C + c] * v[s * ldv + c];
        }
        y[t * ldy + c] = acc + v[t * ldv + c];
    }
}

extern "C" int sotto_cuda_fsmn(sotto_cuda *cu, const sotto_cuda_conv1d_w *w, const float *v,
                               int64_t ldv, int64_t T, int C, int left, float *y, int64_t ldy)
{
    if (!cu || !w || !w->w || !w->depthwise || w->c_in != C || w->stride != 1 || w->dilation != 1 ||
        T < 0 || C < 1 || left < 0 || left >= w->k || ldv < C || ldy < C || (T > 0 && (!v || !y)))
        return SOTTO_ERR_INVALID_ARG;
    int rc = sotto_cuda_enter(cu);
    if (rc || T == 0) return rc;
    const int64_t n = T * C;
    fsmn_kernel<<<sotto_cuda_grid(n), SOTTO_CUDA_BLOCK, 0, cu->stream>>>(v, ldv, T, C, w->w, w->k,
                                                                         left, y, ldy);
    SOTTO_CU_LAUNCHED(cu, "fsmn_kernel");
    return SOTTO_OK;
}
