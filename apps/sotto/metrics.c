/* Objective scores for `sotto compare` (see metrics.h). */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>

#include "core/core.h"
#include "dsp/fft.h"
#include "dsp/mel.h"

double metrics_si_sdr(const float *ref, const float *deg, int64_t n)
{
    if (n <= 0) return -METRICS_MAX_DB;
    double mr = 0, md = 0;
    for (int64_t i = 0; i < n; i++) {
        mr += ref[i];
        md += deg[i];
    }
    mr /= (double)n;
    md /= (double)n;
    double ss = 0, sd = 0;
    for (int64_t i = 0; i < n; i++) {
        const double s = ref[i] - mr, d = deg[i] - md;
        ss += s * s;
        sd += s * d;
    }
    if (ss <= 0) return -METRICS_MAX_DB;
    const double alpha = sd / ss;
    double et = 0, en = 0;
    for (int64_t i = 0; i < n; i++) {
        const double t = alpha * (ref[i] - mr), e = t - (deg[i] - md);
        et += t * t;
        en += e * e;
    }
    if (et <= 0) return -METRICS_MAX_DB;
    if (en <= et * pow(10.0, -METRICS_MAX_DB / 10)) return METRICS_MAX_DB;
    return 10.0 * log10(et / en);
}

double metrics_seg_snr(const float *ref, const float *deg, int64_t n, int frame_len)
{
    if (frame_len < 1) frame_len = 1;
    double sum = 0;
    int64_t frames = 0;
    for (int64_t s0 = 0; s0 < n; s0 += frame_len) {
        const int64_t len = n - s0 < frame_len ? n - s0 : frame_len;
        double es = 0, ee = 0;
        for (int64_t i = s0; i < s0 + len; i++) {
            const double e = (double)ref[i] - deg[i];
            es += (double)ref[i] * ref[i];
            ee += e * e;
        }
        if (es < 1e-10 * (double)len) continue; /* silent reference frame */
        double db = ee > 0 ? 10.0 * log10(es / ee) : METRICS_SEGSNR_MAX_DB;
        if (db > METRICS_SEGSNR_MAX_DB) db = METRICS_SEGSNR_MAX_DB;
        if (db < METRICS_SEGSNR_MIN_DB) db = METRICS_SEGSNR_MIN_DB;
        sum += db;
        frames++;
    }
    return frames ? sum / (double)frames : METRICS_SEGSNR_MIN_DB;
}

double metrics_log_mel_l1(const float *ref, const float *deg, int64_t n, int sample_rate_hz)
{
    sotto_mel_params p = sotto_mel_default_params();
    p.sample_rate_hz = sample_rate_hz;
    p.n_fft = 512;
    p.win_length = 400;
    p.hop_length = 160;
    p.n_mels = 80;
    p.f_min_hz = 0;
    p.f_max_hz = (float)(sample_rate_hz / 2);
    p.power = 1;
    p.log = SOTTO_MEL_LOG_LN;
    p.log_floor = 1e-5f;
    if (n <= p.n_fft / 2) return SOTTO_ERR_INVALID_ARG;
    sotto_mel *m = NULL;
    int rc = sotto_mel_create(&p, NULL, &m, NULL);
    if (rc != SOTTO_OK) return rc;
    const int64_t T = sotto_mel_num_frames(m, n);
    const size_t count = (size_t)T * (size_t)p.n_mels;
    float *a = malloc(sizeof(float) * count), *b = malloc(sizeof(float) * count);
    double result = SOTTO_ERR_OUT_OF_MEMORY;
    if (a && b) {
        const int64_t ta = sotto_mel_compute(m, ref, n, a, T);
        const int64_t tb = sotto_mel_compute(m, deg, n, b, T);
        if (ta < 0 || tb < 0) {
            result = (double)(ta < 0 ? ta : tb);
        } else {
            double sum = 0;
            for (size_t i = 0; i < count; i++) sum += fabs((double)a[i] - b[i]);
            result = count ? sum / (double)count : 0.0;
        }
    }
    free(a);
    free(b);
    sotto_mel_destroy(m);
    return result;
}

/* ---- STOI (Taal et al. 2011), following pystoi 0.4.1 step by step ---- */

#define STOI_FS 10000
#define STOI_FRAME 256
#define STOI_HOP 128
#define STOI_NFFT 512
#define STOI_BINS (STOI_NFFT / 2 + 1)
#define STOI_BANDS 15
#define STOI_MIN_FREQ 150.0
#define STOI_SEG 30
#define STOI_BETA_DB (-15.0)
#define STOI_DYN_RANGE 40.0
#define STOI_EPS 2.220446049250313e-16 /* numpy's float eps, as pystoi adds it */

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b) {
        const int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Modified Bessel function of the first kind, order 0 (power series). */
static double bessel_i0(double x)
{
    double sum = 1, term = 1;
    const double q = x * x / 4;
    for (int k = 1; k < 200; k++) {
        term *= q / ((double)k * k);
        sum += term;
        if (term < sum * 1e-17) break;
    }
    return sum;
}

/* pystoi's resample_oct (an Octave port): a Kaiser-windowed sinc (60 dB rejection) scaled
 * to unit sum, then scipy's resample_poly(x, up, down) with zero padding. out gets
 * ceil(n·up/down) samples (malloc'd). */
static int stoi_resample(const double *x, int64_t n, int rate, double **out, int64_t *n_out)
{
    const int64_t g = gcd64(STOI_FS, rate), up = STOI_FS / g, down = rate / g;
    const double fc = 1.0 / (2.0 * (double)(up > down ? up : down)), roll = fc / 10;
    const double rej_db = 60.0, beta = 0.1102 * (rej_db - 8.7);
    const int64_t L = (int64_t)ceil((rej_db - 8) / (28.714 * roll));
    const int64_t taps = 2 * L + 1, half = L;
    double *h = malloc(sizeof(double) * (size_t)taps);
    const int64_t m = (n * up + down - 1) / down;
    double *y = malloc(sizeof(double) * (size_t)(m > 0 ? m : 1));
    if (!h || !y) {
        free(h);
        free(y);
        return SOTTO_ERR_OUT_OF_MEMORY;
    }
    const double i0b = bessel_i0(beta);
    double hsum = 0;
    for (int64_t i = 0; i < taps; i++) {
        const double t = (double)(i - L), a = 2 * fc * t;
        const double sinc = a == 0 ? 1.0 : sin(M_PI * a) / (M_PI * a);
        const double r = 2.0 * (double)i / (double)(taps - 1) - 1.0;
        const double kais = bessel_i0(beta * sqrt(fmax(0.0, 1.0 - r * r))) / i0b;
        h[i] = kais * 2.0 * (double)up * fc * sinc;
        hsum += h[i];
    }
    for (int64_t i = 0; i < taps; i++) h[i] = h[i] / hsum * (double)up;
    /* y[j] = Σ_k x[k]·h[j·down + half − k·up], h index in [0, taps). */
    for (int64_t j = 0; j < m; j++) {
        const int64_t c = j * down + half; /* h index for k = 0 */
        int64_t k0 = c - (taps - 1) > 0 ? (c - (taps - 1) + up - 1) / up : 0;
        int64_t k1 = c / up;
        if (k1 > n - 1) k1 = n - 1;
        double s = 0;
        for (int64_t k = k0; k <= k1; k++) s += x[k] * h[c - k * up];
        y[j] = s;
    }
    free(h);
    *out = y;
    *n_out = m;
    return SOTTO_OK;
}

/* np.hanning(M + 2)[1:-1]: the window without its zero end points. */
static void stoi_hann(double *w, int len)
{
    for (int i = 0; i < len; i++) w[i] = 0.5 - 0.5 * cos(2.0 * M_PI * (i + 1) / (len + 1));
}

/* pystoi's remove_silent_frames: frames (256, hop 128, windowed) whose clean energy is within
 * 40 dB of the loudest are kept and overlap-added back. Writes into xs/ys (n samples room);
 * returns the new length (0 when no frame). */
static int64_t stoi_remove_silent(const double *x, const double *y, int64_t n, const double *w,
                                  double *xs, double *ys, double *energy)
{
    int64_t nf = 0;
    double emax = -INFINITY;
    for (int64_t i = 0; i + STOI_FRAME < n; i += STOI_HOP, nf++) {
        double e = 0;
        for (int k = 0; k < STOI_FRAME; k++) {
            const double v = w[k] * x[i + k];
            e += v * v;
        }
        energy[nf] = 20.0 * log10(sqrt(e) + STOI_EPS);
        if (energy[nf] > emax) emax = energy[nf];
    }
    int64_t kept = 0;
    for (int64_t f = 0; f < nf; f++) {
        if (!(emax - STOI_DYN_RANGE - energy[f] < 0)) continue;
        const int64_t o = kept * STOI_HOP, src = f * STOI_HOP;
        if (kept == 0) {
            for (int k = 0; k < STOI_FRAME; k++) xs[k] = ys[k] = 0;
        }
        for (int k = STOI_FRAME - STOI_HOP; k < STOI_FRAME; k++) xs[o + k] = ys[o + k] = 0;
        for (int k = 0; k < STOI_FRAME; k++) {
            xs[o + k] += w[k] * x[src + k];
            ys[o + k] += w[k] * y[src + k];
        }
        kept++;
    }
    return kept ? (kept - 1) * STOI_HOP + STOI_FRAME : 0;
}

/* One-third octave band energies (sqrt of summed |X|²) of frames (256, hop 128, windowed,
 * 512-point FFT); tob gets frames × STOI_BANDS. Returns the frame count. */
static int64_t stoi_tob(sotto_fft *fft, const double *x, int64_t n, const double *w,
                        const int *lo, const int *hi, double *tob)
{
    float frame[STOI_NFFT], spec[2 * STOI_BINS];
    double pw[STOI_BINS];
    int64_t t = 0;
    for (int64_t i = 0; i + STOI_FRAME < n; i += STOI_HOP, t++) {
        for (int k = 0; k < STOI_NFFT; k++) frame[k] = k < STOI_FRAME ? (float)(w[k] * x[i + k])
                                                                      : 0.0f;
        sotto_fft_forward(fft, frame, spec);
        for (int b = 0; b < STOI_BINS; b++)
            pw[b] = (double)spec[2 * b] * spec[2 * b] + (double)spec[2 * b + 1] * spec[2 * b + 1];
        for (int j = 0; j < STOI_BANDS; j++) {
            double s = 0;
            for (int b = lo[j]; b < hi[j]; b++) s += pw[b];
            tob[t * STOI_BANDS + j] = sqrt(s);
        }
    }
    return t;
}

/* pystoi's thirdoct: band j covers FFT bins [lo, hi), the bins nearest its edges. */
static void stoi_bands(int *lo, int *hi)
{
    for (int j = 0; j < STOI_BANDS; j++) {
        const double fl = STOI_MIN_FREQ * pow(2.0, (2.0 * j - 1) / 6);
        const double fh = STOI_MIN_FREQ * pow(2.0, (2.0 * j + 1) / 6);
        double bl = INFINITY, bh = INFINITY;
        for (int b = 0; b < STOI_BINS; b++) {
            const double f = (double)STOI_FS * b / STOI_NFFT;
            const double dl = (f - fl) * (f - fl), dh = (f - fh) * (f - fh);
            if (dl < bl) {
                bl = dl;
                lo[j] = b;
            }
            if (dh < bh) {
                bh = dh;
                hi[j] = b;
            }
        }
    }
}

static double stoi_score(const double *xt, const double *yt, int64_t frames)
{
    const double clip = pow(10.0, -STOI_BETA_DB / 20);
    double sum = 0;
    const int64_t J = frames - STOI_SEG + 1;
    for (int64_t m = STOI_SEG; m <= frames; m++) {
        for (int j = 0; j < STOI_BANDS; j++) {
            double xv[STOI_SEG], yv[STOI_SEG], nx = 0, ny = 0;
            for (int k = 0; k < STOI_SEG; k++) {
                xv[k] = xt[(m - STOI_SEG + k) * STOI_BANDS + j];
                yv[k] = yt[(m - STOI_SEG + k) * STOI_BANDS + j];
                nx += xv[k] * xv[k];
                ny += yv[k] * yv[k];
            }
            const double c = sqrt(nx) / (sqrt(ny) + STOI_EPS);
            double mx = 0, my = 0;
            for (int k = 0; k < STOI_SEG; k++) {
                yv[k] = fmin(yv[k] * c, xv[k] * (1 + clip));
                mx += xv[k];
                my += yv[k];
            }
            mx /= STOI_SEG;
            my /= STOI_SEG;
            nx = ny = 0;
            for (int k = 0; k < STOI_SEG; k++) {
                xv[k] -= mx;
                yv[k] -= my;
                nx += xv[k] * xv[k];
                ny += yv[k] * yv[k];
            }
            nx = sqrt(nx) + STOI_EPS;
            ny = sqrt(ny) + STOI_EPS;
            double dot = 0;
            for (int k = 0; k < STOI_SEG; k++) dot += (xv[k] / nx) * (yv[k] / ny);
            sum += dot;
        }
    }
    return sum / ((double)J * STOI_BANDS);
}

int metrics_stoi(const float *ref, const float *deg, int64_t n, int sample_rate_hz, double *out)
{
    if (!ref || !deg || !out || n <= 0 || sample_rate_hz <= 0) return SOTTO_ERR_INVALID_ARG;
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(ref[i]) || !isfinite(deg[i])) return SOTTO_ERR_INVALID_ARG;
    int rc = SOTTO_OK;
    double *x0 = malloc(sizeof(double) * (size_t)n), *y0 = malloc(sizeof(double) * (size_t)n);
    double *x = NULL, *y = NULL, *xs = NULL, *ys = NULL, *tmp = NULL, *xt = NULL, *yt = NULL;
    sotto_fft *fft = NULL;
    int64_t m = n;
    if (!x0 || !y0) {
        rc = SOTTO_ERR_OUT_OF_MEMORY;
        goto done;
    }
    for (int64_t i = 0; i < n; i++) {
        x0[i] = ref[i];
        y0[i] = deg[i];
    }
    if (sample_rate_hz != STOI_FS) {
        int64_t my = 0;
        if ((rc = stoi_resample(x0, n, sample_rate_hz, &x, &m))) goto done;
        if ((rc = stoi_resample(y0, n, sample_rate_hz, &y, &my))) goto done;
    } else {
        x = x0;
        y = y0;
        x0 = y0 = NULL;
    }
    const size_t cap = (size_t)(m > STOI_FRAME ? m : STOI_FRAME);
    xs = malloc(sizeof(double) * cap);
    ys = malloc(sizeof(double) * cap);
    tmp = malloc(sizeof(double) * (cap / STOI_HOP + 1));
    if (!xs || !ys || !tmp) {
        rc = SOTTO_ERR_OUT_OF_MEMORY;
        goto done;
    }
    double w[STOI_FRAME];
    stoi_hann(w, STOI_FRAME);
    const int64_t ns = stoi_remove_silent(x, y, m, w, xs, ys, tmp);
    const int64_t nt = ns > STOI_FRAME ? (ns - STOI_FRAME - 1) / STOI_HOP + 1 : 0;
    if (nt < STOI_SEG) { /* pystoi warns and returns 1e-5 */
        *out = 1e-5;
        goto done;
    }
    xt = malloc(sizeof(double) * (size_t)nt * STOI_BANDS);
    yt = malloc(sizeof(double) * (size_t)nt * STOI_BANDS);
    if (!xt || !yt) {
        rc = SOTTO_ERR_OUT_OF_MEMORY;
        goto done;
    }
    if ((rc = sotto_fft_create(STOI_NFFT, NULL, &fft, NULL))) goto done;
    int lo[STOI_BANDS], hi[STOI_BANDS];
    stoi_bands(lo, hi);
    stoi_tob(fft, xs, ns, w, lo, hi, xt);
    stoi_tob(fft, ys, ns, w, lo, hi, yt);
    *out = stoi_score(xt, yt, nt);
done:
    sotto_fft_destroy(fft);
    free(x0);
    free(y0);
    free(x);
    free(y);
    free(xs);
    free(ys);
    free(tmp);
    free(xt);
    free(yt);
    return rc;
}
