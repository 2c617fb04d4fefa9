/*
 * Real FFT plans over KissFFT's kiss_fftr. KissFFT is asked for the size of its state first
 * and then given memory from our allocator, so no allocation escapes the application's hooks
 * and nothing is allocated after creation. KissFFT leaves the inverse unscaled; the 1/n that
 * torch.fft.irfft applies is added here.
 */
#include "dsp/fft.h"

#include <kissfft/kiss_fftr.h>

/* Our spectra are float pairs; KissFFT must have been built for float to share them. */
_Static_assert(sizeof(kiss_fft_cpx) == 2 * sizeof(float), "KissFFT must be the float build");

struct sotto_fft {
    sotto_alloc alloc;
    int n;
    float inv_n;
    kiss_fftr_cfg fwd;
    kiss_fftr_cfg inv;
    void *mem; /* one block holding both KissFFT states */
};

/* KissFFT state sizes are multiples of the struct alignment already; rounding each to 64 keeps
 * the second state cache-line aligned as well. */
static size_t round_up_64(size_t v)
{
    return (v + 63u) & ~(size_t)63u;
}

int sotto_fft_create(int n, const sotto_alloc *alloc, sotto_fft **out, sotto_status *st)
{
    if (!out) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "fft: out is NULL");
    *out = NULL;
    if (n < 2 || n > (1 << 24) || (n & 1))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "fft: size %d must be even and in [2, 16777216]", n);

    sotto_alloc a;
    if (alloc)
        a = *alloc;
    else
        sotto_alloc_init(&a, NULL);

    size_t len_fwd = 0, len_inv = 0;
    /* With mem == NULL and a length pointer, kiss_fftr_alloc only reports the size it needs. */
    (void)kiss_fftr_alloc(n, 0, NULL, &len_fwd);
    (void)kiss_fftr_alloc(n, 1, NULL, &len_inv);
    if (len_fwd == 0 || len_inv == 0)
        return sotto_status_set(st, SOTTO_ERR_INTERNAL, "fft: KissFFT rejected size %d", n);
    len_fwd = round_up_64(len_fwd);
    len_inv = round_up_64(len_inv);

    sotto_fft *f = sotto_calloc(&a, 1, sizeof(*f));
    if (!f) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "fft: out of memory (plan %d)", n);
    f->alloc = a;
    f->n = n;
    f->inv_n = 1.0f / (float)n;
    f->mem = sotto_malloc(&a, len_fwd + len_inv);
    if (!f->mem) {
        sotto_free(&a, f);
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "fft: out of memory (%zu bytes)",
                                len_fwd + len_inv);
    }
    size_t lf = len_fwd, li = len_inv;
    f->fwd = kiss_fftr_alloc(n, 0, f->mem, &lf);
    f->inv = kiss_fftr_alloc(n, 1, (char *)f->mem + len_fwd, &li);
    if (!f->fwd || !f->inv) {
        sotto_free(&a, f->mem);
        sotto_free(&a, f);
        return sotto_status_set(st, SOTTO_ERR_INTERNAL, "fft: KissFFT setup failed for %d", n);
    }
    *out = f;
    return SOTTO_OK;
}

void sotto_fft_destroy(sotto_fft *f)
{
    if (!f) return;
    sotto_alloc a = f->alloc;
    sotto_free(&a, f->mem);
    sotto_free(&a, f);
}

int sotto_fft_size(const sotto_fft *f)
{
    return f->n;
}

void sotto_fft_forward(sotto_fft *f, const float *x, float *X)
{
    kiss_fftr(f->fwd, x, (kiss_fft_cpx *)X);
}

void sotto_fft_inverse_unscaled(sotto_fft *f, const float *X, float *x)
{
    kiss_fftri(f->inv, (const kiss_fft_cpx *)X, x);
}

void sotto_fft_inverse(sotto_fft *f, const float *X, float *x)
{
    kiss_fftri(f->inv, (const kiss_fft_cpx *)X, x);
    const float s = f->inv_n;
    for (int i = 0; i < f->n; i++)
        x[i] *= s;
}
