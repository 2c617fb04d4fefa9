/* Objective scores for `sotto compare` (see metrics.h). */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>

#include "core/core.h"
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
