/*
 * The mel front end on the device (cuda_mel.h). Its work buffers are allocated with the plan,
 * so a call takes nothing from the scratch pool. Per block of up to `batch` frames: one kernel
 * cuts and windows the frames, one batched cuFFT R2C transforms them (the plan is made at
 * creation; it always transforms `batch` frames, those past the block's rows hold stale
 * samples and their bins are never read), one kernel takes |X| or |X|², one GEMM applies the
 * filterbank (its transpose uploaded, [n_mels][n_bins], so the GEMM reads it as a Linear
 * weight) and one kernel takes the log, each in dsp/mel.c's float formulas.
 */
#include <cufft.h>
#include <stdlib.h>

#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_mel.h"

extern "C" {
#include "dsp/mel.h"
#include "dsp/stft.h"
}

struct sotto_cuda_mel {
    int n_fft, hop, n_bins, n_mels, batch, power, log;
    float floor, db_mult;
    float *win;         /* [n_fft] device */
    float *fbt;         /* [n_mels][n_bins] device */
    float *frames;      /* [batch][n_fft] device */
    cufftComplex *spec; /* [batch][n_bins] device */
    float *mag;         /* [batch][n_bins] device */
    cufftHandle plan;
    int has_plan;
};

extern "C" int sotto_cuda_mel_n_mels(const sotto_cuda_mel *p)
{
    return p ? p->n_mels : 0;
}

extern "C" void sotto_cuda_mel_destroy(sotto_cuda *cu, sotto_cuda_mel *p)
{
    if (!p) return;
    if (p->has_plan) (void)cufftDestroy(p->plan);
    sotto_cuda_free(cu, p->win);
    sotto_cuda_free(cu, p->fbt);
    sotto_cuda_free(cu, p->frames);
    sotto_cuda_free(cu, p->spec);
    sotto_cuda_free(cu, p->mag);
    free(p);
}

static int mel_resources(sotto_cuda *cu, sotto_cuda_mel *p, const float *window, const float *fb)
{
    const size_t nb = (size_t)p->n_bins, nm = (size_t)p->n_mels;
    float *fbt = (float *)malloc(sizeof(float) * nb * nm);
    if (!fbt) return SOTTO_ERR_OUT_OF_MEMORY;
    for (size_t k = 0; k < nb; k++) /* fb is [n_bins][n_mels] */
        for (size_t j = 0; j < nm; j++)
            fbt[j * nb + k] = fb[k * nm + j];
    int rc = sotto_cuda_alloc(cu, sizeof(float) * (size_t)p->n_fft, (void **)&p->win);
    if (!rc) rc = sotto_cuda_alloc(cu, sizeof(float) * nb * nm, (void **)&p->fbt);
    if (!rc) rc = sotto_cuda_upload(cu, p->win, window, sizeof(float) * (size_t)p->n_fft);
    if (!rc) rc = sotto_cuda_upload(cu, p->fbt, fbt, sizeof(float) * nb * nm);
    const size_t B = (size_t)p->batch;
    if (!rc) rc = sotto_cuda_alloc(cu, B * p->n_fft * sizeof(float), (void **)&p->frames);
    if (!rc) rc = sotto_cuda_alloc(cu, B * nb * sizeof(cufftComplex), (void **)&p->spec);
    if (!rc) rc = sotto_cuda_alloc(cu, B * nb * sizeof(float), (void **)&p->mag);
    free(fbt);
    if (rc) return rc;
    int n = p->n_fft;
    /* NULL embeddings: the basic layout, frames n_fft floats apart in, n_bins complex out */
    SOTTO_CUFFT(cu, cufftPlanMany(&p->plan, 1, &n, NULL, 1, p->n_fft, NULL, 1, p->n_bins, CUFFT_R2C,
                                  p->batch));
    p->has_plan = 1;
    SOTTO_CUFFT(cu, cufftSetStream(p->plan, cu->stream));
    return SOTTO_OK;
}

extern "C" int sotto_cuda_mel_create(sotto_cuda *cu, const sotto_mel *m, int batch,
                                     sotto_cuda_mel **out, sotto_status *st)
{
    if (!out) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "cuda mel: out is NULL");
    *out = NULL;
    if (!cu || !m || batch < 1 || batch > 65536)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "cuda mel: NULL context or front end, or batch %d out of 1..65536",
                                batch);
    int rc = sotto_cuda_enter(cu);
    if (rc) return sotto_status_set(st, rc, "cuda mel: %s", sotto_cuda_error_message(cu));
    sotto_cuda_mel *p = (sotto_cuda_mel *)calloc(1, sizeof *p);
    if (!p) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    const sotto_stft *s = sotto_mel_stft(m);
    p->n_fft = sotto_stft_n_fft(s);
    p->hop = sotto_stft_hop(s);
    p->n_bins = sotto_stft_n_bins(s);
    p->n_mels = sotto_mel_n_mels(m);
    p->batch = batch;
    sotto_mel_log log = SOTTO_MEL_LOG_NONE;
    sotto_mel_settings(m, &p->power, &log, &p->floor, &p->db_mult);
    p->log = (int)log;
    if ((rc = mel_resources(cu, p, sotto_stft_window(s), sotto_mel_filterbank(m)))) {
        sotto_status_set(st, rc, "cuda mel: %s",
                         cu->err ? sotto_cuda_error_message(cu) : sotto_strerror(rc));
        sotto_cuda_mel_destroy(cu, p);
        return rc;
    }
    *out = p;
    return SOTTO_OK;
}

__global__ void frames_kernel(const float *__restrict__ xp, int64_t t0, int64_t rows, int n_fft,
                              int hop, const float *__restrict__ win, float *frames)
{
    const int64_t n = rows * n_fft;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = i / n_fft;
        const int j = (int)(i % n_fft);
        frames[i] = xp[(t0 + r) * hop + j] * win[j];
    }
}

__global__ void magnitude_kernel(const cufftComplex *__restrict__ spec, int64_t n, int power,
                                 float *mag)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const float re = spec[i].x, im = spec[i].y, pw = re * re + im * im;
        mag[i] = power == 2 ? pw : sqrtf(pw);
    }
}

__global__ void log_kernel(float *x, int64_t n, int log, float fl, float db_mult)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const float a = x[i];
        float v;
        switch (log) { /* sotto_mel_log, as dsp/mel.c's mel_from_spec */
        case SOTTO_MEL_LOG_LN:
            v = logf(a > fl ? a : fl);
            break;
        case SOTTO_MEL_LOG_LOG10:
            v = log10f(a > fl ? a : fl);
            break;
        case SOTTO_MEL_LOG_LN_ADD:
            v = logf(a + fl);
            break;
        case SOTTO_MEL_LOG_DB:
            v = db_mult * log10f(a > fl ? a : fl);
            break;
        default:
            v = a;
            break;
        }
        x[i] = v;
    }
}

extern "C" int64_t sotto_cuda_mel_frames(sotto_cuda *cu, const sotto_cuda_mel *p, const float *xp,
                                         int64_t n_avail, int64_t n_frames, float *out)
{
    if (!cu || !p || n_frames < 0 || n_avail < 0 || (n_frames > 0 && (!xp || !out)))
        return SOTTO_ERR_INVALID_ARG;
    if (n_frames == 0) return 0;
    if (n_avail < (n_frames - 1) * p->hop + p->n_fft) return SOTTO_ERR_INVALID_ARG;
    int rc = sotto_cuda_enter(cu);
    if (rc) return rc;
    float *frames = p->frames, *mag = p->mag;
    cufftComplex *spec = p->spec;
    for (int64_t t0 = 0; t0 < n_frames; t0 += p->batch) {
        const int64_t rows = n_frames - t0 < p->batch ? n_frames - t0 : p->batch;
        frames_kernel<<<sotto_cuda_grid(rows * p->n_fft), SOTTO_CUDA_BLOCK, 0, cu->stream>>>(
            xp, t0, rows, p->n_fft, p->hop, p->win, frames);
        SOTTO_CU_LAUNCHED(cu, "frames_kernel");
        SOTTO_CUFFT(cu, cufftExecR2C(p->plan, frames, spec));
        magnitude_kernel<<<sotto_cuda_grid(rows * p->n_bins), SOTTO_CUDA_BLOCK, 0, cu->stream>>>(
            spec, rows * p->n_bins, p->power, mag);
        SOTTO_CU_LAUNCHED(cu, "magnitude_kernel");
        float *o = out + t0 * p->n_mels;
        if ((rc = sotto_cuda_gemm(cu, (int)rows, p->n_mels, p->n_bins, mag, p->n_bins, 0, p->fbt,
                                  p->n_bins, 0, 0.0f, o, p->n_mels, 0, 1)))
            return rc;
        log_kernel<<<sotto_cuda_grid(rows * p->n_mels), SOTTO_CUDA_BLOCK, 0, cu->stream>>>(
            o, rows * p->n_mels, p->log, p->floor, p->db_mult);
        SOTTO_CU_LAUNCHED(cu, "log_kernel");
    }
    return n_frames;
}
