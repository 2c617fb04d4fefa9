/*
 * The inverse STFT of dsp/stft.h on the device, from magnitude and phase (the Vocos ISTFT
 * head): bins = mag·e^{iφ} (one kernel), a batched cuFFT C2R of up to `batch` frames per call
 * (the plan and its work area are made at creation), then an overlap-add kernel in which each
 * output sample gathers the windowed frames that cover it in increasing frame order, and a last
 * pass dividing by the squared-window envelope. Gathering instead of scattering keeps the sums
 * free of atomics, hence deterministic and in the CPU's order; long inputs run in blocks of
 * `batch` frames that add onto the output in turn.
 */
#include <cufft.h>
#include <stdlib.h>

#include "backend/cuda/common.cuh"

struct sotto_cuda_istft {
    int n_fft, hop, trim, n_bins, batch;
    float *iwin; /* window / n_fft (device), applied to each inverse frame */
    float *wsq;  /* window² (device), summed into the envelope */
    cufftHandle plan;
    int has_plan;
};

static size_t align256(size_t n)
{
    return (n + 255) & ~(size_t)255;
}

extern "C" size_t sotto_cuda_istft_scratch(const sotto_cuda_istft *p)
{
    if (!p) return 0;
    return align256((size_t)p->batch * p->n_bins * sizeof(cufftComplex)) +
           align256((size_t)p->batch * p->n_fft * sizeof(float));
}

extern "C" int64_t sotto_cuda_istft_length(const sotto_cuda_istft *p, int64_t n_frames)
{
    if (!p || n_frames <= 0) return 0;
    return (n_frames - 1) * p->hop + p->n_fft - 2 * (int64_t)p->trim;
}

/* Creation after the struct exists; failures are recorded in cu. */
static int istft_resources(sotto_cuda *cu, sotto_cuda_istft *p, const float *window)
{
    const size_t bytes = sizeof(float) * (size_t)p->n_fft;
    float *h = (float *)malloc(2 * bytes);
    if (!h) return SOTTO_ERR_OUT_OF_MEMORY;
    for (int i = 0; i < p->n_fft; i++) {
        h[i] = window[i] / (float)p->n_fft;
        h[p->n_fft + i] = window[i] * window[i];
    }
    int rc = sotto_cuda_alloc(cu, bytes, (void **)&p->iwin);
    if (!rc) rc = sotto_cuda_alloc(cu, bytes, (void **)&p->wsq);
    if (!rc) rc = sotto_cuda_upload(cu, p->iwin, h, bytes);
    if (!rc) rc = sotto_cuda_upload(cu, p->wsq, h + p->n_fft, bytes);
    free(h);
    if (rc) return rc;
    int n = p->n_fft;
    /* NULL embeddings: the basic layout, frames n_bins complex apart in, n_fft floats out */
    SOTTO_CUFFT(cu, cufftPlanMany(&p->plan, 1, &n, NULL, 1, p->n_bins, NULL, 1, p->n_fft, CUFFT_C2R,
                                  p->batch));
    p->has_plan = 1;
    SOTTO_CUFFT(cu, cufftSetStream(p->plan, cu->stream));
    return SOTTO_OK;
}

extern "C" int sotto_cuda_istft_create(sotto_cuda *cu, int n_fft, int hop, int trim,
                                       const float *window, int max_frames, sotto_cuda_istft **out,
                                       sotto_status *st)
{
    if (!out) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "cuda istft: out is NULL");
    *out = NULL;
    if (!cu || !window || n_fft < 2 || n_fft % 2 || n_fft > (1 << 20) || hop < 1 || hop > n_fft ||
        trim < 0 || 2 * trim > n_fft || max_frames < 1 || max_frames > (1 << 20))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "cuda istft: bad geometry (n_fft %d, hop %d, trim %d, frames %d)",
                                n_fft, hop, trim, max_frames);
    int rc = sotto_cuda_enter(cu);
    if (rc) return sotto_status_set(st, rc, "cuda istft: %s", sotto_cuda_error_message(cu));
    sotto_cuda_istft *p = (sotto_cuda_istft *)calloc(1, sizeof *p);
    if (!p) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    p->n_fft = n_fft;
    p->hop = hop;
    p->trim = trim;
    p->n_bins = n_fft / 2 + 1;
    p->batch = max_frames;
    if ((rc = istft_resources(cu, p, window))) {
        sotto_status_set(st, rc, "cuda istft: %s",
                         rc == SOTTO_ERR_OUT_OF_MEMORY ? "out of memory" : cu->msg);
        sotto_cuda_istft_destroy(cu, p);
        return rc;
    }
    *out = p;
    return SOTTO_OK;
}

extern "C" void sotto_cuda_istft_destroy(sotto_cuda *cu, sotto_cuda_istft *p)
{
    if (!p) return;
    if (p->has_plan) (void)cufftDestroy(p->plan);
    sotto_cuda_free(cu, p->iwin);
    sotto_cuda_free(cu, p->wsq);
    free(p);
}

/* spec[t][f] = mag·(cos φ, sin φ) for frames [t0, t0 + rows); DC and Nyquist kept real, as
 * the CPU's irfft ignores their imaginary parts (cuFFT's C2R does not promise to). */
__global__ void polar_kernel(const float *__restrict__ mag, const float *__restrict__ phase,
                             int64_t t0, int64_t rows, int n_bins, cufftComplex *__restrict__ spec)
{
    const int64_t n = rows * n_bins;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t src = t0 * n_bins + i;
        const int f = (int)(i % n_bins);
        const float m = mag[src], ph = phase[src];
        cufftComplex c;
        c.x = m * cosf(ph);
        c.y = (f == 0 || f == n_bins - 1) ? 0.0f : m * sinf(ph);
        spec[i] = c;
    }
}

/* y[i] += Σ frames[t − t0][p − t·hop]·iwin[p − t·hop] over the block's frames t covering
 * p = i + trim, in increasing t; i runs over the block's footprint [i0, i1). */
__global__ void ola_kernel(const float *__restrict__ frames, const float *__restrict__ iwin,
                           int n_fft, int hop, int trim, int64_t t0, int64_t rows, int64_t i0,
                           int64_t i1, float *__restrict__ y)
{
    for (int64_t i = i0 + blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < i1;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t p = i + trim;
        int64_t t_lo = p - n_fft + 1 > 0 ? (p - n_fft + 1 + hop - 1) / hop : 0;
        int64_t t_hi = p / hop;
        if (t_lo < t0) t_lo = t0;
        if (t_hi > t0 + rows - 1) t_hi = t0 + rows - 1;
        float acc = y[i];
        for (int64_t t = t_lo; t <= t_hi; t++) {
            const int64_t j = p - t * hop;
            acc += frames[(t - t0) * n_fft + j] * iwin[j];
        }
        y[i] = acc;
    }
}

/* y[i] /= Σ window²[p − t·hop] over all frames covering p = i + trim (dsp/stft.c). */
__global__ void envelope_kernel(const float *__restrict__ wsq, int n_fft, int hop, int trim,
                                int64_t n_frames, int64_t len, float *__restrict__ y)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < len;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t p = i + trim;
        const int64_t t_lo = p - n_fft + 1 > 0 ? (p - n_fft + 1 + hop - 1) / hop : 0;
        int64_t t_hi = p / hop;
        if (t_hi > n_frames - 1) t_hi = n_frames - 1;
        float e = 0.0f;
        for (int64_t t = t_lo; t <= t_hi; t++)
            e += wsq[p - t * hop];
        y[i] = y[i] / e;
    }
}

extern "C" int64_t sotto_cuda_istft_polar(sotto_cuda *cu, sotto_cuda_istft *p, const float *mag,
                                          const float *phase, int64_t n_frames, float *y)
{
    if (!cu || !p || !mag || !phase || !y || n_frames < 1) return SOTTO_ERR_INVALID_ARG;
    int rc = sotto_cuda_enter(cu);
    if (rc) return rc;
    const int64_t len = sotto_cuda_istft_length(p, n_frames);
    const size_t mark = sotto_cuda_scratch_mark(cu);
    cufftComplex *spec;
    float *frames;
    if ((rc = sotto_cuda_scratch_alloc(cu, sizeof(cufftComplex) * (size_t)p->batch * p->n_bins,
                                       (void **)&spec)) ||
        (rc = sotto_cuda_scratch_alloc(cu, sizeof(float) * (size_t)p->batch * p->n_fft,
                                       (void **)&frames)))
        return rc;
    SOTTO_CU(cu, cudaMemsetAsync(y, 0, sizeof(float) * (size_t)len, cu->stream));
    for (int64_t t0 = 0; t0 < n_frames; t0 += p->batch) {
        const int64_t rows = n_frames - t0 < p->batch ? n_frames - t0 : p->batch;
        polar_kernel<<<sotto_cuda_grid(rows * p->n_bins), SOTTO_CUDA_BLOCK, 0, cu->stream>>>(
            mag, phase, t0, rows, p->n_bins, spec);
        SOTTO_CU_LAUNCHED(cu, "polar_kernel");
        /* The plan always transforms `batch` frames; those past `rows` hold stale bins and
         * their outputs are never read. */
        SOTTO_CUFFT(cu, cufftExecC2R(p->plan, spec, frames));
        /* OLA positions of this block: [t0·hop, (t0 + rows − 1)·hop + n_fft) */
        int64_t i0 = t0 * p->hop - p->trim, i1 = (t0 + rows - 1) * p->hop + p->n_fft - p->trim;
        if (i0 < 0) i0 = 0;
        if (i1 > len) i1 = len;
        if (i1 <= i0) continue;
        ola_kernel<<<sotto_cuda_grid(i1 - i0), SOTTO_CUDA_BLOCK, 0, cu->stream>>>(
            frames, p->iwin, p->n_fft, p->hop, p->trim, t0, rows, i0, i1, y);
        SOTTO_CU_LAUNCHED(cu, "ola_kernel");
    }
    envelope_kernel<<<sotto_cuda_grid(len), SOTTO_CUDA_BLOCK, 0, cu->stream>>>(
        p->wsq, p->n_fft, p->hop, p->trim, n_frames, len, y);
    SOTTO_CU_LAUNCHED(cu, "envelope_kernel");
    sotto_cuda_scratch_release(cu, mark);
    return len;
}
