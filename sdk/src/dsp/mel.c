/*
 * Mel filterbanks and the mel front end (see mel.h). The filterbank follows torchaudio's
 * formulas step for step but in double precision, then rounds once; the front end keeps it
 * transposed per mel band with the band's non-zero bin range, since a triangle touches only a
 * few dozen of the n_fft/2+1 bins and skipping exact zeros does not change the sum.
 */
#include "dsp/mel.h"

#include <math.h>
#include <string.h>

struct sotto_mel {
    sotto_alloc alloc;
    sotto_stft *stft;
    int n_bins, n_mels, power;
    sotto_mel_log log;
    float log_floor, db_multiplier, top_db;
    float *fb;   /* [n_bins][n_mels] as given or computed */
    float *fbt;  /* [n_mels][n_bins] */
    int *lo;     /* [n_mels] first non-zero bin */
    int *hi;     /* [n_mels] one past the last non-zero bin */
    float *spec; /* 2·n_bins scratch */
    float *mag;  /* n_bins scratch */
};

static double hz_to_mel(double f, sotto_mel_scale scale)
{
    if (scale == SOTTO_MEL_SCALE_HTK) return 2595.0 * log10(1.0 + f / 700.0);
    const double f_sp = 200.0 / 3.0;
    const double min_log_hz = 1000.0;
    const double min_log_mel = min_log_hz / f_sp;
    const double logstep = log(6.4) / 27.0;
    if (f >= min_log_hz) return min_log_mel + log(f / min_log_hz) / logstep;
    return f / f_sp;
}

static double mel_to_hz(double m, sotto_mel_scale scale)
{
    if (scale == SOTTO_MEL_SCALE_HTK) return 700.0 * (pow(10.0, m / 2595.0) - 1.0);
    const double f_sp = 200.0 / 3.0;
    const double min_log_hz = 1000.0;
    const double min_log_mel = min_log_hz / f_sp;
    const double logstep = log(6.4) / 27.0;
    if (m >= min_log_mel) return min_log_hz * exp(logstep * (m - min_log_mel));
    return f_sp * m;
}

int sotto_mel_fbanks(int n_freqs, double f_min_hz, double f_max_hz, int n_mels, int sample_rate_hz,
                     sotto_mel_norm norm, sotto_mel_scale scale, float *fb, sotto_status *st)
{
    if (!fb) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "mel fbanks: fb is NULL");
    if (n_freqs < 2 || n_freqs > (1 << 20))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "mel fbanks: n_freqs %d out of range",
                                n_freqs);
    if (n_mels < 1 || n_mels > 4096)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "mel fbanks: n_mels %d out of range",
                                n_mels);
    if (sample_rate_hz < 1)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "mel fbanks: sample rate %d",
                                sample_rate_hz);
    if (!(f_min_hz >= 0.0) || !(f_max_hz > f_min_hz) || !isfinite(f_max_hz))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "mel fbanks: need 0 ≤ f_min (%g) < f_max (%g)", f_min_hz, f_max_hz);
    if (scale != SOTTO_MEL_SCALE_HTK && scale != SOTTO_MEL_SCALE_SLANEY)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "mel fbanks: unknown scale %d",
                                (int)scale);
    if (norm != SOTTO_MEL_NORM_NONE && norm != SOTTO_MEL_NORM_SLANEY)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "mel fbanks: unknown norm %d",
                                (int)norm);

    /* torchaudio: all_freqs = linspace(0, sample_rate // 2, n_freqs). */
    const double f_top = (double)(sample_rate_hz / 2);
    const double m_min = hz_to_mel(f_min_hz, scale);
    const double m_max = hz_to_mel(f_max_hz, scale);
    /* Band edges: n_mels + 2 points equally spaced in mel. f(m) for m in 0..n_mels+1 is
     * computed on the fly to stay allocation-free. */
    for (int k = 0; k < n_freqs; k++) {
        const double fk = f_top * (double)k / (double)(n_freqs - 1);
        for (int m = 0; m < n_mels; m++) {
            const double step = (m_max - m_min) / (double)(n_mels + 1);
            const double f0 = mel_to_hz(m_min + step * m, scale);
            const double f1 = mel_to_hz(m_min + step * (m + 1), scale);
            const double f2 = mel_to_hz(m_min + step * (m + 2), scale);
            const double down = (fk - f0) / (f1 - f0); /* rising edge */
            const double up = (f2 - fk) / (f2 - f1);   /* falling edge */
            double v = down < up ? down : up;
            if (v < 0.0) v = 0.0;
            if (norm == SOTTO_MEL_NORM_SLANEY) v *= 2.0 / (f2 - f0);
            fb[(size_t)k * n_mels + m] = (float)v;
        }
    }
    return SOTTO_OK;
}

sotto_mel_params sotto_mel_default_params(void)
{
    sotto_mel_params p;
    memset(&p, 0, sizeof(p));
    p.sample_rate_hz = 24000;
    p.n_fft = 1024;
    p.hop_length = 256;
    p.win_length = 0;
    p.pad = SOTTO_STFT_PAD_CENTER;
    p.n_mels = 100;
    p.f_min_hz = 0.0f;
    p.f_max_hz = 0.0f;
    p.scale = SOTTO_MEL_SCALE_HTK;
    p.norm = SOTTO_MEL_NORM_NONE;
    p.power = 1;
    p.log = SOTTO_MEL_LOG_LN;
    p.log_floor = 1e-7f;
    p.db_multiplier = 10.0f;
    p.top_db = -1.0f;
    p.window = NULL;
    p.fbank = NULL;
    return p;
}

int sotto_mel_create(const sotto_mel_params *p, const sotto_alloc *alloc, sotto_mel **out,
                     sotto_status *st)
{
    if (!out) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "mel: out is NULL");
    *out = NULL;
    if (!p) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "mel: params is NULL");
    if (p->sample_rate_hz < 1)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "mel: sample_rate_hz %d",
                                p->sample_rate_hz);
    if (p->power != 1 && p->power != 2)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "mel: power %d must be 1 or 2",
                                p->power);
    if (p->log < SOTTO_MEL_LOG_NONE || p->log > SOTTO_MEL_LOG_DB)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "mel: unknown log type %d", (int)p->log);
    if (p->log != SOTTO_MEL_LOG_NONE && !(p->log_floor > 0.0f && isfinite(p->log_floor)))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "mel: log_floor %g must be > 0",
                                (double)p->log_floor);
    if (p->log == SOTTO_MEL_LOG_DB &&
        (!isfinite(p->db_multiplier) || p->db_multiplier == 0.0f || !isfinite(p->top_db)))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "mel: db_multiplier %g / top_db %g invalid",
                                (double)p->db_multiplier, (double)p->top_db);
    if (p->n_mels < 1 || p->n_mels > 4096)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "mel: n_mels %d out of range",
                                p->n_mels);

    sotto_alloc a;
    if (alloc)
        a = *alloc;
    else
        sotto_alloc_init(&a, NULL);

    sotto_mel *m = sotto_calloc(&a, 1, sizeof(*m));
    if (!m) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "mel: out of memory");
    m->alloc = a;
    m->n_mels = p->n_mels;
    m->power = p->power;
    m->log = p->log;
    m->log_floor = p->log_floor;
    m->db_multiplier = p->db_multiplier;
    m->top_db = p->top_db;

    sotto_stft_params sp = sotto_stft_default_params();
    sp.n_fft = p->n_fft;
    sp.hop_length = p->hop_length;
    sp.win_length = p->win_length;
    sp.pad = p->pad;
    sp.window = p->window;
    sp.for_inverse = 0;
    int rc = sotto_stft_create(&sp, &a, &m->stft, st);
    if (rc != SOTTO_OK) {
        sotto_mel_destroy(m);
        return rc;
    }
    m->n_bins = sotto_stft_n_bins(m->stft);
    const size_t nb = (size_t)m->n_bins, nm = (size_t)m->n_mels;
    size_t nfb;
    if (sotto_mul_size(nb, nm, &nfb)) {
        sotto_mel_destroy(m);
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "mel: filterbank too large");
    }
    m->fb = sotto_calloc(&a, nfb, sizeof(float));
    m->fbt = sotto_calloc(&a, nfb, sizeof(float));
    m->lo = sotto_calloc(&a, nm, sizeof(int));
    m->hi = sotto_calloc(&a, nm, sizeof(int));
    m->spec = sotto_calloc(&a, 2 * nb, sizeof(float));
    m->mag = sotto_calloc(&a, nb, sizeof(float));
    if (!m->fb || !m->fbt || !m->lo || !m->hi || !m->spec || !m->mag) {
        sotto_mel_destroy(m);
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "mel: out of memory");
    }
    if (p->fbank) {
        for (size_t i = 0; i < nfb; i++) {
            if (!isfinite(p->fbank[i])) {
                sotto_mel_destroy(m);
                return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                        "mel: fbank[%zu][%zu] is not finite", i / nm, i % nm);
            }
        }
        memcpy(m->fb, p->fbank, nfb * sizeof(float));
    } else {
        const double f_max =
            p->f_max_hz > 0.0f ? (double)p->f_max_hz : (double)(p->sample_rate_hz / 2);
        rc = sotto_mel_fbanks(m->n_bins, (double)p->f_min_hz, f_max, m->n_mels, p->sample_rate_hz,
                              p->norm, p->scale, m->fb, st);
        if (rc != SOTTO_OK) {
            sotto_mel_destroy(m);
            return rc;
        }
    }
    for (size_t j = 0; j < nm; j++) {
        int lo = m->n_bins, hi = 0;
        for (size_t k = 0; k < nb; k++) {
            const float v = m->fb[k * nm + j];
            m->fbt[j * nb + k] = v;
            if (v != 0.0f) {
                if ((int)k < lo) lo = (int)k;
                hi = (int)k + 1;
            }
        }
        m->lo[j] = lo < hi ? lo : 0;
        m->hi[j] = lo < hi ? hi : 0;
    }
    *out = m;
    return SOTTO_OK;
}

void sotto_mel_destroy(sotto_mel *m)
{
    if (!m) return;
    sotto_alloc a = m->alloc;
    sotto_stft_destroy(m->stft);
    sotto_free(&a, m->fb);
    sotto_free(&a, m->fbt);
    sotto_free(&a, m->lo);
    sotto_free(&a, m->hi);
    sotto_free(&a, m->spec);
    sotto_free(&a, m->mag);
    sotto_free(&a, m);
}

int sotto_mel_n_mels(const sotto_mel *m)
{
    return m->n_mels;
}

const sotto_stft *sotto_mel_stft(const sotto_mel *m)
{
    return m->stft;
}

const float *sotto_mel_filterbank(const sotto_mel *m)
{
    return m->fb;
}

int64_t sotto_mel_num_frames(const sotto_mel *m, int64_t n_samples)
{
    return sotto_stft_num_frames(m->stft, n_samples);
}

/* Spectrum of one frame (already in m->spec) → mel → log. */
void sotto_mel_settings(const sotto_mel *m, int *power, sotto_mel_log *log, float *log_floor,
                        float *db_multiplier)
{
    if (!m) return;
    if (power) *power = m->power;
    if (log) *log = m->log;
    if (log_floor) *log_floor = m->log_floor;
    if (db_multiplier) *db_multiplier = m->db_multiplier;
}

static void mel_from_spec(sotto_mel *m, float *out)
{
    const int nb = m->n_bins;
    for (int k = 0; k < nb; k++) {
        const float re = m->spec[2 * k], im = m->spec[2 * k + 1];
        const float pw = re * re + im * im;
        m->mag[k] = m->power == 2 ? pw : sqrtf(pw);
    }
    const float fl = m->log_floor;
    for (int j = 0; j < m->n_mels; j++) {
        const float *w = m->fbt + (size_t)j * nb;
        float acc = 0.0f;
        for (int k = m->lo[j]; k < m->hi[j]; k++)
            acc += w[k] * m->mag[k];
        float v;
        switch (m->log) {
        case SOTTO_MEL_LOG_LN:
            v = logf(acc > fl ? acc : fl);
            break;
        case SOTTO_MEL_LOG_LOG10:
            v = log10f(acc > fl ? acc : fl);
            break;
        case SOTTO_MEL_LOG_LN_ADD:
            v = logf(acc + fl);
            break;
        case SOTTO_MEL_LOG_DB:
            v = m->db_multiplier * log10f(acc > fl ? acc : fl);
            break;
        default:
            v = acc;
            break;
        }
        out[j] = v;
    }
}

int64_t sotto_mel_frames(sotto_mel *m, const float *xp, int64_t n_avail, int64_t n_frames,
                         float *out, int64_t cap_frames)
{
    if (!m || !xp || !out || n_frames < 0 || n_avail < 0) return SOTTO_ERR_INVALID_ARG;
    if (n_frames == 0) return 0;
    const int hop = sotto_stft_hop(m->stft), nf = sotto_stft_n_fft(m->stft);
    if (n_avail < (n_frames - 1) * hop + nf) return SOTTO_ERR_INVALID_ARG;
    if (cap_frames < n_frames) return SOTTO_ERR_BUFFER_TOO_SMALL;
    for (int64_t t = 0; t < n_frames; t++) {
        sotto_stft_frame(m->stft, xp + t * hop, m->spec);
        mel_from_spec(m, out + (size_t)t * m->n_mels);
    }
    return n_frames;
}

void sotto_mel_apply_top_db(const sotto_mel *m, float *feat, int64_t n_frames)
{
    if (!m || !feat || n_frames <= 0 || m->log != SOTTO_MEL_LOG_DB || m->top_db < 0.0f) return;
    const size_t n = (size_t)n_frames * (size_t)m->n_mels;
    float mx = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (feat[i] > mx) mx = feat[i];
    const float lo = mx - m->top_db;
    for (size_t i = 0; i < n; i++)
        if (feat[i] < lo) feat[i] = lo;
}

int64_t sotto_mel_compute(sotto_mel *m, const float *x, int64_t n, float *out, int64_t cap_frames)
{
    if (!m || !x || !out || n < 0) return SOTTO_ERR_INVALID_ARG;
    const int pad = sotto_stft_pad_samples(m->stft);
    if (pad > 0 && n <= pad) return SOTTO_ERR_INVALID_ARG;
    const int64_t T = sotto_mel_num_frames(m, n);
    if (cap_frames < T) return SOTTO_ERR_BUFFER_TOO_SMALL;
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return SOTTO_ERR_BAD_AUDIO;
    /* One frame at a time through the STFT plan (which handles the reflection), so no
     * utterance-sized scratch is needed. */
    for (int64_t t = 0; t < T; t++) {
        int rc = sotto_stft_frame_at(m->stft, x, n, t, m->spec);
        if (rc < 0) return rc;
        mel_from_spec(m, out + (size_t)t * m->n_mels);
    }
    sotto_mel_apply_top_db(m, out, T);
    return T;
}
