/*
 * STFT / ISTFT plans (see stft.h for the semantics). The offline inverse and the streaming
 * overlap-add share one rule, so they agree bit for bit: every output sample starts at 0.0f,
 * receives the windowed frames that cover it in increasing frame order, and is divided once by
 * sotto_istft_envelope(), which sums the squared window over exactly those frames in the same
 * order. The envelope is periodic away from the signal's ends; that period is tabulated at
 * creation with the same summation, so the fast path returns identical values.
 */
#include "dsp/stft.h"

#include <math.h>
#include <string.h>

#include "dsp/fft.h"

/* torch.istft refuses envelopes at or below this (its NOLA check); we refuse them at
 * creation so the processing calls cannot fail on it. */
#define SOTTO_NOLA_MIN 1e-11f

struct sotto_stft {
    sotto_alloc alloc;
    int n_fft, hop, win, n_bins;
    int pad_amt; /* reflect padding per end for analysis */
    int trim;    /* inverse: samples dropped per end */
    sotto_stft_pad pad;
    int inverse;
    sotto_fft *fft;
    float *window;  /* n_fft, zero-padded and centred */
    float *iwindow; /* n_fft, window / n_fft: the irfft's 1/N folded into the window */
    float *wsq;     /* n_fft, window² */
    float *env_mid; /* hop, the envelope where no signal end is near */
    float *frame;   /* n_fft scratch */
    float *spec;    /* 2·n_bins scratch */
};

struct sotto_istft_stream {
    sotto_alloc alloc;
    sotto_stft *s;
    float *acc;     /* n_fft: OLA positions [frames·hop, frames·hop + n_fft) */
    int64_t frames; /* pushed since reset */
};

sotto_stft_params sotto_stft_default_params(void)
{
    sotto_stft_params p;
    memset(&p, 0, sizeof(p));
    p.n_fft = 1024;
    p.hop_length = 256;
    p.win_length = 0;
    p.pad = SOTTO_STFT_PAD_CENTER;
    p.window = NULL;
    p.for_inverse = 1;
    return p;
}

/* Direct envelope: frames t ∈ [t_lo, t_hi] cover p; summed with increasing t. */
static float envelope_direct(const sotto_stft *s, int64_t p, int64_t n_frames)
{
    const int64_t hop = s->hop;
    int64_t t_hi = p / hop;
    int64_t t_lo = 0;
    if (p - s->n_fft + 1 > 0) t_lo = (p - s->n_fft + 1 + hop - 1) / hop;
    if (n_frames >= 0 && t_hi > n_frames - 1) t_hi = n_frames - 1;
    float e = 0.0f;
    for (int64_t t = t_lo; t <= t_hi; t++)
        e += s->wsq[p - t * hop];
    return e;
}

float sotto_istft_envelope(const sotto_stft *s, int64_t p, int64_t n_frames)
{
    if (p < 0) return 0.0f;
    /* Interior: frame −1 would have covered p (so the left end is not felt) and every
     * frame up to p/hop exists (so the right end is not either). */
    if (p >= (int64_t)s->n_fft - s->hop && (n_frames < 0 || p / s->hop < n_frames))
        return s->env_mid[p % s->hop];
    return envelope_direct(s, p, n_frames);
}

int64_t sotto_istft_length(const sotto_stft *s, int64_t n_frames)
{
    if (n_frames <= 0) return 0;
    return (n_frames - 1) * s->hop + s->n_fft - 2 * (int64_t)s->trim;
}

/* Minimum envelope over the kept output of a T-frame signal. */
static float envelope_min_kept(const sotto_stft *s, int64_t T)
{
    float m = INFINITY;
    const int64_t len = sotto_istft_length(s, T);
    for (int64_t i = 0; i < len; i++) {
        float e = envelope_direct(s, i + s->trim, T);
        if (e < m) m = e;
    }
    return m;
}

/*
 * NOLA over every signal length: once T ≥ 2·ceil(n_fft/hop) + 1 no kept sample feels both
 * ends, so longer signals only repeat values already seen. Short signals are all checked when
 * that is cheap (n_fft/hop ≤ 32, every real configuration); else the longest and T = 1.
 */
static int check_nola(const sotto_stft *s, float *min_out)
{
    const int64_t ratio = (s->n_fft + s->hop - 1) / s->hop;
    const int64_t t_check = 2 * ratio + 1;
    float m = INFINITY;
    for (int64_t T = 1; T <= t_check; T++) {
        if (ratio > 32 && T != 1 && T != t_check) continue;
        float e = envelope_min_kept(s, T);
        if (e < m) m = e;
    }
    *min_out = m;
    return m > SOTTO_NOLA_MIN;
}

int sotto_stft_create(const sotto_stft_params *p, const sotto_alloc *alloc, sotto_stft **out,
                      sotto_status *st)
{
    if (!out) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "stft: out is NULL");
    *out = NULL;
    if (!p) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "stft: params is NULL");
    const int n_fft = p->n_fft;
    const int win = p->win_length == 0 ? n_fft : p->win_length;
    const int hop = p->hop_length;
    if (n_fft < 2 || n_fft > (1 << 20) || (n_fft & 1))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "stft: n_fft %d must be even and in [2, 1048576]", n_fft);
    if (win < 1 || win > n_fft)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "stft: win_length %d must be in [1, n_fft=%d]", win, n_fft);
    if (hop < 1 || hop > (1 << 20))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "stft: hop_length %d must be ≥ 1", hop);
    if (p->pad != SOTTO_STFT_PAD_CENTER && p->pad != SOTTO_STFT_PAD_SAME &&
        p->pad != SOTTO_STFT_PAD_NONE)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "stft: unknown pad mode %d",
                                (int)p->pad);
    if (p->pad == SOTTO_STFT_PAD_SAME && hop > win)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "stft: SAME padding needs hop_length %d ≤ win_length %d", hop, win);
    if (p->for_inverse) {
        if (p->pad == SOTTO_STFT_PAD_NONE)
            return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                    "stft: the inverse needs CENTER or SAME padding");
        if (p->pad == SOTTO_STFT_PAD_SAME && win != n_fft)
            return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                    "stft: the SAME inverse needs win_length (%d) == n_fft (%d)",
                                    win, n_fft);
    }
    if (p->window) {
        for (int i = 0; i < win; i++)
            if (!isfinite(p->window[i]))
                return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "stft: window[%d] is not finite",
                                        i);
    }

    sotto_alloc a;
    if (alloc)
        a = *alloc;
    else
        sotto_alloc_init(&a, NULL);

    sotto_stft *s = sotto_calloc(&a, 1, sizeof(*s));
    if (!s) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "stft: out of memory");
    s->alloc = a;
    s->n_fft = n_fft;
    s->hop = hop;
    s->win = win;
    s->n_bins = n_fft / 2 + 1;
    s->pad = p->pad;
    s->inverse = p->for_inverse != 0;
    s->pad_amt = p->pad == SOTTO_STFT_PAD_CENTER ? n_fft / 2
                 : p->pad == SOTTO_STFT_PAD_SAME ? (win - hop) / 2
                                                 : 0;
    s->trim = p->pad == SOTTO_STFT_PAD_CENTER ? n_fft / 2
              : p->pad == SOTTO_STFT_PAD_SAME ? (win - hop) / 2
                                              : 0;

    int rc = sotto_fft_create(n_fft, &a, &s->fft, st);
    if (rc != SOTTO_OK) {
        sotto_stft_destroy(s);
        return rc;
    }
    const size_t nf = (size_t)n_fft;
    s->window = sotto_calloc(&a, nf, sizeof(float));
    s->iwindow = sotto_calloc(&a, nf, sizeof(float));
    s->wsq = sotto_calloc(&a, nf, sizeof(float));
    s->env_mid = sotto_calloc(&a, (size_t)hop, sizeof(float));
    s->frame = sotto_calloc(&a, nf, sizeof(float));
    s->spec = sotto_calloc(&a, 2 * (size_t)s->n_bins, sizeof(float));
    if (!s->window || !s->iwindow || !s->wsq || !s->env_mid || !s->frame || !s->spec) {
        sotto_stft_destroy(s);
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "stft: out of memory (n_fft %d)",
                                n_fft);
    }

    /* torch centres a shorter window with floor((n_fft − win)/2) zeros on the left. */
    const int left = (n_fft - win) / 2;
    for (int i = 0; i < win; i++) {
        double w = p->window ? (double)p->window[i]
                             : 0.5 - 0.5 * cos(2.0 * M_PI * (double)i / (double)win);
        s->window[left + i] = (float)w;
    }
    for (int i = 0; i < n_fft; i++) {
        s->iwindow[i] = s->window[i] / (float)n_fft;
        s->wsq[i] = s->window[i] * s->window[i];
    }
    /* The interior envelope, by the same summation as envelope_direct(). */
    const int64_t k = (n_fft + hop - 1) / hop;
    for (int r = 0; r < hop; r++)
        s->env_mid[r] = envelope_direct(s, r + k * hop, -1);

    if (s->inverse) {
        float m;
        if (!check_nola(s, &m)) {
            sotto_stft_destroy(s);
            return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                    "stft: window envelope falls to %g (n_fft %d, hop %d, "
                                    "win %d): the inverse is not defined (NOLA)",
                                    (double)m, n_fft, hop, win);
        }
    }
    *out = s;
    return SOTTO_OK;
}

void sotto_stft_destroy(sotto_stft *s)
{
    if (!s) return;
    sotto_alloc a = s->alloc;
    sotto_fft_destroy(s->fft);
    sotto_free(&a, s->window);
    sotto_free(&a, s->iwindow);
    sotto_free(&a, s->wsq);
    sotto_free(&a, s->env_mid);
    sotto_free(&a, s->frame);
    sotto_free(&a, s->spec);
    sotto_free(&a, s);
}

int sotto_stft_n_fft(const sotto_stft *s)
{
    return s->n_fft;
}

int sotto_stft_hop(const sotto_stft *s)
{
    return s->hop;
}

int sotto_stft_win_length(const sotto_stft *s)
{
    return s->win;
}

int sotto_stft_n_bins(const sotto_stft *s)
{
    return s->n_bins;
}

int sotto_stft_pad_samples(const sotto_stft *s)
{
    return s->pad_amt;
}

const float *sotto_stft_window(const sotto_stft *s)
{
    return s->window;
}

int sotto_istft_trim(const sotto_stft *s)
{
    return s->trim;
}

int64_t sotto_stft_num_frames(const sotto_stft *s, int64_t n_samples)
{
    if (n_samples <= 0) return 0;
    const int64_t np = n_samples + 2 * (int64_t)s->pad_amt;
    if (np < s->n_fft) return 0;
    return 1 + (np - s->n_fft) / s->hop;
}

void sotto_stft_frame(sotto_stft *s, const float *frame, float *spec)
{
    const int n = s->n_fft;
    for (int j = 0; j < n; j++)
        s->frame[j] = frame[j] * s->window[j];
    sotto_fft_forward(s->fft, s->frame, spec);
}

int64_t sotto_stft_frames(sotto_stft *s, const float *xp, int64_t n_avail, int64_t n_frames,
                          float *spec, int64_t cap_frames)
{
    if (!s || !xp || !spec || n_frames < 0 || n_avail < 0) return SOTTO_ERR_INVALID_ARG;
    if (n_frames == 0) return 0;
    if (n_avail < (n_frames - 1) * s->hop + s->n_fft) return SOTTO_ERR_INVALID_ARG;
    if (cap_frames < n_frames) return SOTTO_ERR_BUFFER_TOO_SMALL;
    const size_t stride = 2 * (size_t)s->n_bins;
    for (int64_t t = 0; t < n_frames; t++)
        sotto_stft_frame(s, xp + t * s->hop, spec + (size_t)t * stride);
    return n_frames;
}

int sotto_reflect_pad(const float *x, int64_t n, int64_t left, int64_t right, float *out)
{
    if (!x || !out || n < 1 || left < 0 || right < 0 || left >= n || right >= n)
        return SOTTO_ERR_INVALID_ARG;
    for (int64_t i = 0; i < left; i++)
        out[i] = x[left - i];
    memcpy(out + left, x, (size_t)n * sizeof(float));
    for (int64_t i = 0; i < right; i++)
        out[left + n + i] = x[n - 2 - i];
    return SOTTO_OK;
}

static int has_non_finite(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 1;
    return 0;
}

int sotto_stft_frame_at(sotto_stft *s, const float *x, int64_t n, int64_t t, float *spec)
{
    if (!s || !x || !spec || n < 1 || t < 0 || t >= sotto_stft_num_frames(s, n))
        return SOTTO_ERR_INVALID_ARG;
    if (s->pad_amt > 0 && n <= s->pad_amt)
        return SOTTO_ERR_INVALID_ARG; /* reflection needs more samples than the padding */
    const int nf = s->n_fft;
    const int64_t start = t * s->hop - s->pad_amt;
    if (start >= 0 && start + nf <= n) {
        for (int j = 0; j < nf; j++)
            s->frame[j] = x[start + j] * s->window[j];
    } else {
        for (int j = 0; j < nf; j++) {
            int64_t i = start + j;
            if (i < 0)
                i = -i;
            else if (i >= n)
                i = 2 * (n - 1) - i;
            s->frame[j] = x[i] * s->window[j];
        }
    }
    sotto_fft_forward(s->fft, s->frame, spec);
    return SOTTO_OK;
}

int64_t sotto_stft_forward(sotto_stft *s, const float *x, int64_t n, float *spec,
                           int64_t cap_frames)
{
    if (!s || !x || !spec || n < 0) return SOTTO_ERR_INVALID_ARG;
    if (s->pad_amt > 0 && n <= s->pad_amt) return SOTTO_ERR_INVALID_ARG;
    const int64_t T = sotto_stft_num_frames(s, n);
    if (cap_frames < T) return SOTTO_ERR_BUFFER_TOO_SMALL;
    if (has_non_finite(x, n)) return SOTTO_ERR_BAD_AUDIO;
    const size_t stride = 2 * (size_t)s->n_bins;
    for (int64_t t = 0; t < T; t++) {
        int rc = sotto_stft_frame_at(s, x, n, t, spec + (size_t)t * stride);
        if (rc != SOTTO_OK) return rc;
    }
    return T;
}

/* ---- inverse --------------------------------------------------------------------------- */

void sotto_istft_frame(sotto_stft *s, const float *spec, float *out)
{
    sotto_fft_inverse_unscaled(s->fft, spec, out);
    for (int j = 0; j < s->n_fft; j++)
        out[j] *= s->iwindow[j];
}

void sotto_istft_frame_polar(sotto_stft *s, const float *mag, const float *phase, float *out)
{
    for (int k = 0; k < s->n_bins; k++) {
        s->spec[2 * k] = mag[k] * cosf(phase[k]);
        s->spec[2 * k + 1] = mag[k] * sinf(phase[k]);
    }
    sotto_istft_frame(s, s->spec, out);
}

int64_t sotto_istft(sotto_stft *s, const float *spec, int64_t n_frames, float *y, int64_t cap)
{
    if (!s || !spec || !y || n_frames < 1) return SOTTO_ERR_INVALID_ARG;
    if (!s->inverse) return SOTTO_ERR_STATE;
    const int64_t len = sotto_istft_length(s, n_frames);
    if (cap < len) return SOTTO_ERR_BUFFER_TOO_SMALL;
    memset(y, 0, (size_t)len * sizeof(float));
    const size_t stride = 2 * (size_t)s->n_bins;
    for (int64_t t = 0; t < n_frames; t++) {
        sotto_istft_frame(s, spec + (size_t)t * stride, s->frame);
        const int64_t base = t * s->hop - s->trim;
        int j0 = base < 0 ? (int)-base : 0;
        int j1 = s->n_fft;
        if (base + j1 > len) j1 = (int)(len - base);
        for (int j = j0; j < j1; j++)
            y[base + j] += s->frame[j];
    }
    for (int64_t i = 0; i < len; i++)
        y[i] = y[i] / sotto_istft_envelope(s, i + s->trim, n_frames);
    return len;
}

/* ---- streaming inverse ----------------------------------------------------------------- */

int sotto_istft_stream_create(sotto_stft *s, const sotto_alloc *alloc, sotto_istft_stream **out,
                              sotto_status *st)
{
    if (!out) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "istft stream: out is NULL");
    *out = NULL;
    if (!s) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "istft stream: plan is NULL");
    if (!s->inverse)
        return sotto_status_set(st, SOTTO_ERR_STATE,
                                "istft stream: the plan was made without for_inverse");
    if (s->hop > s->n_fft - s->trim)
        return sotto_status_set(st, SOTTO_ERR_UNSUPPORTED,
                                "istft stream: hop %d > n_fft − trim = %d", s->hop,
                                s->n_fft - s->trim);
    sotto_alloc a;
    if (alloc)
        a = *alloc;
    else
        sotto_alloc_init(&a, NULL);
    sotto_istft_stream *is = sotto_calloc(&a, 1, sizeof(*is));
    if (!is) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "istft stream: out of memory");
    is->alloc = a;
    is->s = s;
    is->acc = sotto_calloc(&a, (size_t)s->n_fft, sizeof(float));
    if (!is->acc) {
        sotto_free(&a, is);
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "istft stream: out of memory");
    }
    *out = is;
    return SOTTO_OK;
}

void sotto_istft_stream_destroy(sotto_istft_stream *is)
{
    if (!is) return;
    sotto_alloc a = is->alloc;
    sotto_free(&a, is->acc);
    sotto_free(&a, is);
}

void sotto_istft_stream_reset(sotto_istft_stream *is)
{
    if (!is) return;
    memset(is->acc, 0, (size_t)is->s->n_fft * sizeof(float));
    is->frames = 0;
}

int64_t sotto_istft_stream_frames(const sotto_istft_stream *is)
{
    return is ? is->frames : 0;
}

int64_t sotto_istft_stream_push_windowed(sotto_istft_stream *is, const float *frame, float *out,
                                         int64_t cap)
{
    if (!is || !frame || (!out && cap > 0)) return SOTTO_ERR_INVALID_ARG;
    const sotto_stft *s = is->s;
    const int64_t t = is->frames;
    const int64_t p0 = t * s->hop;
    const int64_t p_start = p0 > s->trim ? p0 : s->trim;
    const int64_t p_end = p0 + s->hop;
    const int64_t count = p_end > p_start ? p_end - p_start : 0;
    if (cap < count) return SOTTO_ERR_BUFFER_TOO_SMALL;
    const int nf = s->n_fft;
    for (int j = 0; j < nf; j++)
        is->acc[j] += frame[j];
    /* Positions below (t+1)·hop are final: no later frame reaches back to them. */
    for (int64_t i = 0; i < count; i++) {
        const int64_t p = p_start + i;
        out[i] = is->acc[p - p0] / sotto_istft_envelope(s, p, -1);
    }
    memmove(is->acc, is->acc + s->hop, (size_t)(nf - s->hop) * sizeof(float));
    memset(is->acc + (nf - s->hop), 0, (size_t)s->hop * sizeof(float));
    is->frames = t + 1;
    return count;
}

int64_t sotto_istft_stream_push(sotto_istft_stream *is, const float *spec, float *out, int64_t cap)
{
    if (!is || !spec || (!out && cap > 0)) return SOTTO_ERR_INVALID_ARG;
    sotto_stft *s = is->s;
    const int64_t p0 = is->frames * s->hop;
    const int64_t p_start = p0 > s->trim ? p0 : s->trim;
    const int64_t count = p0 + s->hop > p_start ? p0 + s->hop - p_start : 0;
    if (cap < count) return SOTTO_ERR_BUFFER_TOO_SMALL;
    sotto_istft_frame(s, spec, s->frame);
    return sotto_istft_stream_push_windowed(is, s->frame, out, cap);
}

int64_t sotto_istft_stream_flush(sotto_istft_stream *is, float *out, int64_t cap)
{
    if (!is || (!out && cap > 0)) return SOTTO_ERR_INVALID_ARG;
    const sotto_stft *s = is->s;
    const int64_t T = is->frames;
    if (T == 0) return 0;
    const int64_t p0 = T * s->hop; /* acc[0] */
    const int64_t p_start = p0 > s->trim ? p0 : s->trim;
    const int64_t p_end = (T - 1) * s->hop + s->n_fft - s->trim;
    const int64_t count = p_end > p_start ? p_end - p_start : 0;
    if (cap < count) return SOTTO_ERR_BUFFER_TOO_SMALL;
    for (int64_t i = 0; i < count; i++) {
        const int64_t p = p_start + i;
        out[i] = is->acc[p - p0] / sotto_istft_envelope(s, p, T);
    }
    sotto_istft_stream_reset(is);
    return count;
}
