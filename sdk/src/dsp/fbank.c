/*
 * Kaldi fbank (see fbank.h). The mel banks are built with torchaudio's float32 arithmetic in
 * the same order (band edges as low + b·delta in float, bin centres through 1127·ln(1+f/700)),
 * because each bank value then matches the reference to the last bit or two and the banks are
 * what a feature is most sensitive to near band edges. Frames are processed in float like the
 * reference; only the frame mean is summed in double.
 */
#include "dsp/fbank.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "dsp/fft.h"

struct sotto_fbank {
    sotto_alloc alloc;
    int win, shift, n_fft, n_bins, n_mels;
    int snip_edges, remove_dc, use_power, use_log, subtract_mean;
    float preemph, input_scale;
    sotto_fft *fft;
    float *window; /* win */
    float *banks;  /* [n_mels][n_bins] */
    int *lo, *hi;  /* non-zero bin range per band */
    float *frame;  /* n_fft scratch (zero beyond win) */
    float *spec;   /* 2·n_bins scratch */
    float *pw;     /* n_bins scratch */
};

sotto_fbank_params sotto_fbank_default_params(void)
{
    sotto_fbank_params p;
    memset(&p, 0, sizeof(p));
    p.sample_rate_hz = 16000;
    p.frame_length_ms = 25.0f;
    p.frame_shift_ms = 10.0f;
    p.snip_edges = 1;
    p.dither = 0.0f;
    p.remove_dc_offset = 1;
    p.preemphasis = 0.97f;
    p.window = SOTTO_FBANK_WINDOW_POVEY;
    p.blackman_coeff = 0.42f;
    p.round_to_power_of_two = 1;
    p.n_mels = 80;
    p.low_freq_hz = 20.0f;
    p.high_freq_hz = 0.0f;
    p.use_power = 1;
    p.use_log = 1;
    p.subtract_mean = 0;
    p.input_scale = 1.0f;
    return p;
}

static float kaldi_mel(float f)
{
    return 1127.0f * logf(1.0f + f / 700.0f);
}

int sotto_kaldi_mel_banks(int n_mels, int padded_window, float sample_rate_hz, float low_freq_hz,
                          float high_freq_hz, float *banks, sotto_status *st)
{
    if (!banks)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "kaldi mel banks: banks is NULL");
    if (n_mels <= 3 || n_mels > 4096)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "kaldi mel banks: n_mels %d must be in [4, 4096]", n_mels);
    if (padded_window < 2 || (padded_window & 1) || padded_window > (1 << 20))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "kaldi mel banks: padded window %d must be even", padded_window);
    const double nyquist = 0.5 * (double)sample_rate_hz;
    double high = high_freq_hz;
    if (high <= 0.0) high += nyquist;
    const double low = low_freq_hz;
    if (!(sample_rate_hz > 0.0f) || !(low >= 0.0 && low < nyquist) ||
        !(high > 0.0 && high <= nyquist) || !(low < high))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "kaldi mel banks: low %g / high %g Hz vs Nyquist %g", low, high,
                                nyquist);
    const int n_half = padded_window / 2;
    const int n_bins = n_half + 1;
    /* Python-side scalars in torchaudio are doubles; tensors are float32. */
    const double mel_lo_d = 1127.0 * log(1.0 + low / 700.0);
    const double mel_hi_d = 1127.0 * log(1.0 + high / 700.0);
    const float delta = (float)((mel_hi_d - mel_lo_d) / (double)(n_mels + 1));
    const float mel_lo = (float)mel_lo_d;
    const float bin_width = (float)((double)sample_rate_hz / (double)padded_window);
    for (int b = 0; b < n_mels; b++) {
        const float left = mel_lo + (float)b * delta;
        const float center = mel_lo + ((float)b + 1.0f) * delta;
        const float right = mel_lo + ((float)b + 2.0f) * delta;
        float *row = banks + (size_t)b * n_bins;
        for (int k = 0; k < n_half; k++) {
            const float mel = kaldi_mel(bin_width * (float)k);
            const float up = (mel - left) / (center - left);
            const float down = (right - mel) / (right - center);
            float v = up < down ? up : down;
            row[k] = v > 0.0f ? v : 0.0f;
        }
        row[n_half] = 0.0f; /* kaldi.fbank pads the Nyquist column with zeros */
    }
    return SOTTO_OK;
}

static int next_pow2(int v)
{
    int p = 1;
    while (p < v)
        p <<= 1;
    return p;
}

int sotto_fbank_create(const sotto_fbank_params *p, const sotto_alloc *alloc, sotto_fbank **out,
                       sotto_status *st)
{
    if (!out) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "fbank: out is NULL");
    *out = NULL;
    if (!p) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "fbank: params is NULL");
    if (p->dither != 0.0f)
        return sotto_status_set(st, SOTTO_ERR_UNSUPPORTED,
                                "fbank: dither %g: only 0 is supported (deterministic output)",
                                (double)p->dither);
    if (p->sample_rate_hz < 1 || p->sample_rate_hz > 1000000)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "fbank: sample_rate_hz %d",
                                p->sample_rate_hz);
    if (!(p->frame_length_ms > 0.0f) || !(p->frame_shift_ms > 0.0f) ||
        p->frame_length_ms > 10000.0f || p->frame_shift_ms > 10000.0f)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "fbank: frame_length_ms %g / frame_shift_ms %g",
                                (double)p->frame_length_ms, (double)p->frame_shift_ms);
    /* torchaudio: int(sample_frequency * frame_length * 0.001), evaluated in double. */
    const int win = (int)((double)p->sample_rate_hz * (double)p->frame_length_ms * 0.001);
    const int shift = (int)((double)p->sample_rate_hz * (double)p->frame_shift_ms * 0.001);
    if (win < 2 || shift < 1)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "fbank: window %d / shift %d samples too small", win, shift);
    const int n_fft = p->round_to_power_of_two ? next_pow2(win) : win;
    if (n_fft & 1)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "fbank: padded window %d must be even",
                                n_fft);
    if (!(p->preemphasis >= 0.0f && p->preemphasis <= 1.0f))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "fbank: preemphasis %g not in [0, 1]",
                                (double)p->preemphasis);
    if (p->n_mels <= 3 || p->n_mels > 4096)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "fbank: n_mels %d not in [4, 4096]",
                                p->n_mels);
    if (p->window < SOTTO_FBANK_WINDOW_POVEY || p->window > SOTTO_FBANK_WINDOW_BLACKMAN)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "fbank: unknown window %d",
                                (int)p->window);
    if (!isfinite(p->input_scale) || !isfinite(p->blackman_coeff))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "fbank: input_scale / blackman_coeff not finite");

    sotto_alloc a;
    if (alloc)
        a = *alloc;
    else
        sotto_alloc_init(&a, NULL);
    sotto_fbank *f = sotto_calloc(&a, 1, sizeof(*f));
    if (!f) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "fbank: out of memory");
    f->alloc = a;
    f->win = win;
    f->shift = shift;
    f->n_fft = n_fft;
    f->n_bins = n_fft / 2 + 1;
    f->n_mels = p->n_mels;
    f->snip_edges = p->snip_edges != 0;
    f->remove_dc = p->remove_dc_offset != 0;
    f->use_power = p->use_power != 0;
    f->use_log = p->use_log != 0;
    f->subtract_mean = p->subtract_mean != 0;
    f->preemph = p->preemphasis;
    f->input_scale = p->input_scale;

    int rc = sotto_fft_create(n_fft, &a, &f->fft, st);
    if (rc != SOTTO_OK) {
        sotto_fbank_destroy(f);
        return rc;
    }
    const size_t nb = (size_t)f->n_bins;
    const size_t nm = (size_t)p->n_mels;
    f->window = sotto_calloc(&a, (size_t)win, sizeof(float));
    f->banks = sotto_calloc(&a, nm * nb, sizeof(float));
    f->lo = sotto_calloc(&a, nm, sizeof(int));
    f->hi = sotto_calloc(&a, nm, sizeof(int));
    f->frame = sotto_calloc(&a, (size_t)n_fft, sizeof(float));
    f->spec = sotto_calloc(&a, 2 * nb, sizeof(float));
    f->pw = sotto_calloc(&a, nb, sizeof(float));
    if (!f->window || !f->banks || !f->lo || !f->hi || !f->frame || !f->spec || !f->pw) {
        sotto_fbank_destroy(f);
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "fbank: out of memory");
    }
    rc = sotto_kaldi_mel_banks(p->n_mels, n_fft, (float)p->sample_rate_hz, p->low_freq_hz,
                               p->high_freq_hz, f->banks, st);
    if (rc != SOTTO_OK) {
        sotto_fbank_destroy(f);
        return rc;
    }
    for (size_t j = 0; j < nm; j++) {
        int lo = f->n_bins, hi = 0;
        for (size_t k = 0; k < nb; k++) {
            if (f->banks[j * nb + k] != 0.0f) {
                if ((int)k < lo) lo = (int)k;
                hi = (int)k + 1;
            }
        }
        f->lo[j] = lo < hi ? lo : 0;
        f->hi[j] = lo < hi ? hi : 0;
    }

    /* Symmetric windows (torch's periodic=False), in double and rounded once. */
    const double a2 = 2.0 * M_PI / (double)(win - 1);
    const double c = p->blackman_coeff;
    for (int n = 0; n < win; n++) {
        double w;
        switch (p->window) {
        case SOTTO_FBANK_WINDOW_HAMMING:
            w = 0.54 - 0.46 * cos(a2 * n);
            break;
        case SOTTO_FBANK_WINDOW_HANNING:
            w = 0.5 - 0.5 * cos(a2 * n);
            break;
        case SOTTO_FBANK_WINDOW_RECTANGULAR:
            w = 1.0;
            break;
        case SOTTO_FBANK_WINDOW_BLACKMAN:
            w = c - 0.5 * cos(a2 * n) + (0.5 - c) * cos(2.0 * a2 * n);
            break;
        default:
            w = pow(0.5 - 0.5 * cos(a2 * n), 0.85);
            break;
        }
        f->window[n] = (float)w;
    }
    *out = f;
    return SOTTO_OK;
}

void sotto_fbank_destroy(sotto_fbank *f)
{
    if (!f) return;
    sotto_alloc a = f->alloc;
    sotto_fft_destroy(f->fft);
    sotto_free(&a, f->window);
    sotto_free(&a, f->banks);
    sotto_free(&a, f->lo);
    sotto_free(&a, f->hi);
    sotto_free(&a, f->frame);
    sotto_free(&a, f->spec);
    sotto_free(&a, f->pw);
    sotto_free(&a, f);
}

int sotto_fbank_n_mels(const sotto_fbank *f)
{
    return f->n_mels;
}

int sotto_fbank_window_samples(const sotto_fbank *f)
{
    return f->win;
}

int sotto_fbank_shift_samples(const sotto_fbank *f)
{
    return f->shift;
}

int sotto_fbank_fft_size(const sotto_fbank *f)
{
    return f->n_fft;
}

int64_t sotto_fbank_num_frames(const sotto_fbank *f, int64_t n)
{
    if (n <= 0) return 0;
    if (f->snip_edges) return n < f->win ? 0 : 1 + (n - f->win) / f->shift;
    return (n + f->shift / 2) / f->shift;
}

/* The frame in f->frame[0..win) (already scaled) → features. */
static void fbank_process(sotto_fbank *f, float *out)
{
    float *x = f->frame;
    const int w = f->win;
    if (f->remove_dc) {
        double s = 0.0;
        for (int i = 0; i < w; i++)
            s += x[i];
        const float mean = (float)(s / (double)w);
        for (int i = 0; i < w; i++)
            x[i] -= mean;
    }
    if (f->preemph != 0.0f) {
        for (int i = w - 1; i > 0; i--)
            x[i] -= f->preemph * x[i - 1];
        x[0] -= f->preemph * x[0];
    }
    for (int i = 0; i < w; i++)
        x[i] *= f->window[i];
    /* frame[win..n_fft) stays zero: written once at creation, never touched. */
    sotto_fft_forward(f->fft, x, f->spec);
    for (int k = 0; k < f->n_bins; k++) {
        const float re = f->spec[2 * k], im = f->spec[2 * k + 1];
        const float p = re * re + im * im;
        f->pw[k] = f->use_power ? p : sqrtf(p);
    }
    const size_t nb = (size_t)f->n_bins;
    for (int j = 0; j < f->n_mels; j++) {
        const float *row = f->banks + (size_t)j * nb;
        float e = 0.0f;
        for (int k = f->lo[j]; k < f->hi[j]; k++)
            e += row[k] * f->pw[k];
        if (f->use_log) e = logf(e > FLT_EPSILON ? e : FLT_EPSILON);
        out[j] = e;
    }
}

void sotto_fbank_frame(sotto_fbank *f, const float *frame, float *out)
{
    const float s = f->input_scale;
    for (int i = 0; i < f->win; i++)
        f->frame[i] = frame[i] * s;
    fbank_process(f, out);
}

/* Kaldi's mirror for snip_edges = 0: the edge sample is repeated. Folds repeatedly so that
 * even absurdly short inputs stay in bounds. */
static int64_t mirror_index(int64_t i, int64_t n)
{
    const int64_t period = 2 * n;
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - 1 - i;
}

int64_t sotto_fbank_compute(sotto_fbank *f, const float *x, int64_t n, float *out,
                            int64_t cap_frames)
{
    if (!f || !x || !out || n < 0) return SOTTO_ERR_INVALID_ARG;
    const int64_t T = sotto_fbank_num_frames(f, n);
    if (cap_frames < T) return SOTTO_ERR_BUFFER_TOO_SMALL;
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return SOTTO_ERR_BAD_AUDIO;
    const float s = f->input_scale;
    const int64_t offset = f->snip_edges ? 0 : (int64_t)(f->win / 2 - f->shift / 2);
    for (int64_t t = 0; t < T; t++) {
        const int64_t start = t * f->shift - offset;
        if (start >= 0 && start + f->win <= n) {
            for (int i = 0; i < f->win; i++)
                f->frame[i] = x[start + i] * s;
        } else {
            for (int i = 0; i < f->win; i++)
                f->frame[i] = x[mirror_index(start + i, n)] * s;
        }
        fbank_process(f, out + (size_t)t * f->n_mels);
    }
    if (f->subtract_mean && T > 0) {
        for (int j = 0; j < f->n_mels; j++) {
            double m = 0.0;
            for (int64_t t = 0; t < T; t++)
                m += out[(size_t)t * f->n_mels + j];
            const float mf = (float)(m / (double)T);
            for (int64_t t = 0; t < T; t++)
                out[(size_t)t * f->n_mels + j] -= mf;
        }
    }
    return T;
}
