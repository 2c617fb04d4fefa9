/*
 * soxr behind Sotto's streaming contract (see resample.h): exact integer length rule, output
 * into caller buffers with a capacity, non-finite input refused before it reaches the filter,
 * and a flush that trims or pads soxr's tail to the documented length. soxr keeps any output
 * that did not fit in its own FIFO, so a small capacity delays output but never loses it.
 */
#include "dsp/resample.h"

#include <math.h>
#include <soxr.h>
#include <string.h>

struct sotto_resampler {
    sotto_alloc alloc;
    soxr_t soxr; /* NULL when in_hz == out_hz: a plain copy */
    int in_hz;
    int out_hz;
    int64_t n_in;  /* input samples consumed */
    int64_t n_out; /* output samples written */
    int flushing;  /* flush started: no more input until reset */
    int soxr_done; /* soxr has nothing left; any shortfall is padded with zeros */
};

static int rate_ok(int hz)
{
    return hz >= SOTTO_RESAMPLE_MIN_HZ && hz <= SOTTO_RESAMPLE_MAX_HZ;
}

/* round_half_up(n·out/in) without overflow: split n = q·in + rem so the products stay below
 * 2^61 for every n ≤ SOTTO_RESAMPLE_MAX_SAMPLES and rates ≤ SOTTO_RESAMPLE_MAX_HZ. */
static int64_t length_unchecked(int64_t n, int in_hz, int out_hz)
{
    int64_t q = n / in_hz, rem = n % in_hz;
    return q * out_hz + (2 * rem * out_hz + in_hz) / (2 * (int64_t)in_hz);
}

int64_t sotto_resample_length(int64_t n_in, int in_hz, int out_hz)
{
    if (n_in < 0 || n_in > SOTTO_RESAMPLE_MAX_SAMPLES || !rate_ok(in_hz) || !rate_ok(out_hz))
        return SOTTO_ERR_INVALID_ARG;
    return length_unchecked(n_in, in_hz, out_hz);
}

/* Index of the first NaN/Inf in x[0..n), or -1. */
static int64_t first_nonfinite(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return i;
    return -1;
}

static int make_soxr(sotto_resampler *r)
{
    soxr_error_t err = NULL;
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
    /* One thread: callers parallelise across streams, and soxr's OpenMP would spin up a
     * pool behind the application's back. */
    soxr_runtime_spec_t rt = soxr_runtime_spec(1);
    r->soxr = soxr_create(r->in_hz, r->out_hz, 1, &err, &io, &q, &rt);
    if (err || !r->soxr) {
        if (r->soxr) soxr_delete(r->soxr);
        r->soxr = NULL;
        return -1;
    }
    return 0;
}

int sotto_resampler_create(int in_hz, int out_hz, const sotto_alloc *alloc, sotto_resampler **out,
                           sotto_status *st)
{
    if (!out) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "resampler: out is NULL");
    *out = NULL;
    if (!rate_ok(in_hz) || !rate_ok(out_hz))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "resampler: rates %d -> %d Hz outside %d..%d Hz", in_hz, out_hz,
                                SOTTO_RESAMPLE_MIN_HZ, SOTTO_RESAMPLE_MAX_HZ);
    sotto_resampler *r = sotto_calloc(alloc, 1, sizeof *r);
    if (!r) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "resampler: out of memory");
    if (alloc) r->alloc = *alloc;
    r->in_hz = in_hz;
    r->out_hz = out_hz;
    if (in_hz != out_hz && make_soxr(r)) {
        sotto_free(alloc, r);
        return sotto_status_set(st, SOTTO_ERR_INTERNAL,
                                "resampler: soxr_create failed for "
                                "%d -> %d Hz",
                                in_hz, out_hz);
    }
    *out = r;
    return SOTTO_OK;
}

void sotto_resampler_destroy(sotto_resampler *r)
{
    if (!r) return;
    if (r->soxr) soxr_delete(r->soxr);
    sotto_alloc a = r->alloc;
    sotto_free(&a, r);
}

int sotto_resampler_reset(sotto_resampler *r)
{
    if (!r) return SOTTO_ERR_INVALID_ARG;
    r->n_in = r->n_out = 0;
    r->flushing = r->soxr_done = 0;
    if (r->soxr && soxr_clear(r->soxr)) return SOTTO_ERR_INTERNAL;
    return SOTTO_OK;
}

int64_t sotto_resampler_max_output(const sotto_resampler *r, int64_t n_in)
{
    if (!r || n_in < 0 || n_in > SOTTO_RESAMPLE_MAX_SAMPLES - r->n_in) return SOTTO_ERR_INVALID_ARG;
    int64_t m = length_unchecked(r->n_in + n_in, r->in_hz, r->out_hz) - r->n_out;
    return m > 0 ? m : 0;
}

int64_t sotto_resampler_pending_samples(const sotto_resampler *r)
{
    if (!r) return SOTTO_ERR_INVALID_ARG;
    int64_t m = length_unchecked(r->n_in, r->in_hz, r->out_hz) - r->n_out;
    return m > 0 ? m : 0;
}

int64_t sotto_resampler_total_in(const sotto_resampler *r)
{
    return r ? r->n_in : SOTTO_ERR_INVALID_ARG;
}

int64_t sotto_resampler_total_out(const sotto_resampler *r)
{
    return r ? r->n_out : SOTTO_ERR_INVALID_ARG;
}

/* Checks shared by both pushes. */
static int push_check(const sotto_resampler *r, const float *in, int64_t n_in, const float *out,
                      int64_t capacity)
{
    if (!r || n_in < 0 || capacity < 0 || (n_in > 0 && !in) || (capacity > 0 && !out))
        return SOTTO_ERR_INVALID_ARG;
    if (n_in > SOTTO_RESAMPLE_MAX_SAMPLES - r->n_in) return SOTTO_ERR_INVALID_ARG;
    if (r->flushing) return SOTTO_ERR_STATE;
    if (first_nonfinite(in, n_in) >= 0) return SOTTO_ERR_BAD_AUDIO;
    return SOTTO_OK;
}

int64_t sotto_resampler_push(sotto_resampler *r, const float *in, int64_t n_in, float *out,
                             int64_t capacity)
{
    int rc = push_check(r, in, n_in, out, capacity);
    if (rc) return rc;
    if (n_in == 0) return 0; /* soxr only produces output when given input or flushed */
    int64_t want = sotto_resampler_max_output(r, n_in);
    if (capacity < want) return SOTTO_ERR_BUFFER_TOO_SMALL;
    if (!r->soxr) {
        memcpy(out, in, (size_t)n_in * sizeof *in);
        r->n_in += n_in;
        r->n_out += n_in;
        return n_in;
    }
    /* Asking soxr for no more than `want` keeps the running total within the final length;
     * anything soxr could give beyond it stays in soxr's FIFO until the next call. */
    size_t done = 0;
    if (soxr_process(r->soxr, in, (size_t)n_in, NULL, out, (size_t)want, &done))
        return SOTTO_ERR_INTERNAL;
    r->n_in += n_in;
    r->n_out += (int64_t)done;
    return (int64_t)done;
}

int64_t sotto_resampler_push_some(sotto_resampler *r, const float *in, int64_t n_in,
                                  int64_t *n_used, float *out, int64_t capacity)
{
    if (n_used) *n_used = 0;
    if (!n_used || !r || n_in < 0 || capacity < 0) return SOTTO_ERR_INVALID_ARG;
    /* Offer soxr only about what `capacity` output samples need (soxr itself takes no more
     * than ceil(capacity·in/out)), so the finiteness scan stays proportional to the work
     * even when a caller passes a long input with a tiny output buffer again and again. */
    double need = ceil((double)capacity * r->in_hz / r->out_hz) + 1.0;
    if (need < (double)n_in) n_in = (int64_t)need;
    int rc = push_check(r, in, n_in, out, capacity);
    if (rc) return rc;
    if (n_in == 0 || capacity == 0) return 0;
    if (!r->soxr) {
        int64_t m = n_in < capacity ? n_in : capacity;
        memcpy(out, in, (size_t)m * sizeof *in);
        r->n_in += m;
        r->n_out += m;
        *n_used = m;
        return m;
    }
    /* With a non-NULL idone soxr takes only about capacity·in/out input samples (at least
     * one), so whatever it cannot emit now stays bounded by its own filter delay. */
    size_t used = 0, done = 0;
    if (soxr_process(r->soxr, in, (size_t)n_in, &used, out, (size_t)capacity, &done))
        return SOTTO_ERR_INTERNAL;
    r->n_in += (int64_t)used;
    r->n_out += (int64_t)done;
    *n_used = (int64_t)used;
    return (int64_t)done;
}

int64_t sotto_resampler_flush(sotto_resampler *r, float *out, int64_t capacity)
{
    if (!r || capacity < 0 || (capacity > 0 && !out)) return SOTTO_ERR_INVALID_ARG;
    r->flushing = 1;
    int64_t left = length_unchecked(r->n_in, r->in_hz, r->out_hz) - r->n_out;
    if (left <= 0 || capacity == 0) return 0;
    int64_t want = left < capacity ? left : capacity;
    int64_t got = 0;
    if (r->soxr && !r->soxr_done) {
        size_t done = 0;
        /* A NULL input tells soxr the signal has ended; it then drains its filters. */
        if (soxr_process(r->soxr, NULL, 0, NULL, out, (size_t)want, &done))
            return SOTTO_ERR_INTERNAL;
        got = (int64_t)done;
        if (got == 0) r->soxr_done = 1;
    }
    if (got == 0) {
        /* soxr ended a little short of the length rule: pad with silence. */
        memset(out, 0, (size_t)want * sizeof *out);
        got = want;
    }
    r->n_out += got;
    return got;
}

int64_t sotto_resample(const float *in, int64_t n_in, int in_hz, int out_hz, float *out,
                       int64_t capacity, const sotto_alloc *alloc, sotto_status *st)
{
    int64_t n_out = sotto_resample_length(n_in, in_hz, out_hz);
    if (n_out < 0)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "resample: bad length %lld or rates %d -> %d Hz", (long long)n_in,
                                in_hz, out_hz);
    if ((n_in > 0 && !in) || (n_out > 0 && !out) || capacity < 0)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "resample: NULL buffer");
    if (capacity < n_out)
        return sotto_status_set(st, SOTTO_ERR_BUFFER_TOO_SMALL,
                                "resample: output needs %lld samples, capacity is %lld",
                                (long long)n_out, (long long)capacity);
    int64_t bad = first_nonfinite(in, n_in);
    if (bad >= 0)
        return sotto_status_set(st, SOTTO_ERR_BAD_AUDIO, "resample: sample %lld is %s",
                                (long long)bad, isnan(in[bad]) ? "NaN" : "Inf");
    sotto_resampler *r = NULL;
    int rc = sotto_resampler_create(in_hz, out_hz, alloc, &r, st);
    if (rc) return rc;
    int64_t got = sotto_resampler_push(r, in, n_in, out, capacity);
    while (got >= 0 && got < n_out) {
        int64_t k = sotto_resampler_flush(r, out + got, n_out - got);
        if (k <= 0) {
            got = k < 0 ? k : SOTTO_ERR_INTERNAL;
            break;
        }
        got += k;
    }
    sotto_resampler_destroy(r);
    if (got < 0) return sotto_status_set(st, (int)got, "resample: soxr failed");
    return got;
}
