/*
 * The row-wise and element-wise layers: time padding, norms, activations, softmax and
 * embedding lookup. They check their arguments, then run the context's kernel; large inputs
 * are cut into row ranges for the thread pool (element-wise ops by 64-float-aligned chunks so
 * no two threads share a cache line of the output).
 */
#include <math.h>
#include <string.h>

#include "nn/ops.h"

/* Element counts below this run on the calling thread. */
#define PAR_MIN_ELEMS (1 << 16)

/* ---- padding ------------------------------------------------------------------------------ */

int sotto_pad1d(const float *x, int64_t T, int C, int left, int right, sotto_pad_mode mode,
                float *y)
{
    if (!y || C < 1 || T < 0 || left < 0 || right < 0 || (T > 0 && !x))
        return SOTTO_ERR_INVALID_ARG;
    if (mode == SOTTO_PAD_REFLECT && (left > 0 || right > 0) && (left >= T || right >= T))
        return SOTTO_ERR_INVALID_ARG;
    if (mode == SOTTO_PAD_REPLICATE && (left > 0 || right > 0) && T < 1)
        return SOTTO_ERR_INVALID_ARG;
    if (mode != SOTTO_PAD_ZERO && mode != SOTTO_PAD_REFLECT && mode != SOTTO_PAD_REPLICATE)
        return SOTTO_ERR_INVALID_ARG;
    const size_t row = sizeof(float) * (size_t)C;
    for (int i = 0; i < left; i++) {
        float *d = y + (int64_t)i * C;
        if (mode == SOTTO_PAD_ZERO)
            memset(d, 0, row);
        else if (mode == SOTTO_PAD_REFLECT)
            memcpy(d, x + (int64_t)(left - i) * C, row); /* y[i] = x[left − i] */
        else
            memcpy(d, x, row);
    }
    if (T > 0) memcpy(y + (int64_t)left * C, x, row * (size_t)T);
    for (int i = 0; i < right; i++) {
        float *d = y + (left + T + i) * C;
        if (mode == SOTTO_PAD_ZERO)
            memset(d, 0, row);
        else if (mode == SOTTO_PAD_REFLECT)
            memcpy(d, x + (T - 2 - i) * C, row); /* mirror around the last frame */
        else
            memcpy(d, x + (T - 1) * C, row);
    }
    return SOTTO_OK;
}

/* ---- parallel helpers --------------------------------------------------------------------- */

typedef enum row_kind { ROW_LN, ROW_RMS, ROW_SNAKE, ROW_SOFTMAX, ROW_UNARY, ROW_UNARY_P } row_kind;

typedef struct row_job {
    const sotto_cpu *ctx;
    row_kind kind;
    const float *x;
    float *y;
    int64_t rows;
    int C;
    const float *a, *b; /* gamma/beta, alpha */
    float p;            /* eps, alpha, slope */
    void (*unary)(const float *, int64_t, float *);
    void (*unary_p)(const float *, int64_t, float, float *);
} row_job;

static void row_task(void *p, int ith, int nth)
{
    const row_job *j = p;
    int64_t r0 = 0, r1 = j->rows;
    if (nth > 1) {
        sotto_split_range(j->rows, ith, nth, &r0, &r1);
    }
    if (r1 <= r0) return;
    const int64_t off = r0 * j->C, n = r1 - r0;
    const sotto_cpu_kernels *k = &j->ctx->k;
    switch (j->kind) {
    case ROW_LN:
        k->layernorm(j->x + off, n, j->C, j->a, j->b, j->p, j->y + off);
        break;
    case ROW_RMS:
        k->rmsnorm(j->x + off, n, j->C, j->a, j->p, j->y + off);
        break;
    case ROW_SNAKE:
        k->snake(j->x + off, n, j->C, j->a, j->y + off);
        break;
    case ROW_SOFTMAX:
        k->softmax(j->x + off, n, j->C, j->y + off);
        break;
    case ROW_UNARY:
        j->unary(j->x + off, n * j->C, j->y + off);
        break;
    case ROW_UNARY_P:
        j->unary_p(j->x + off, n * j->C, j->p, j->y + off);
        break;
    }
}

static void run_rows(const sotto_cpu *ctx, row_job *j)
{
    const int nth = sotto_cpu_threads(ctx);
    if (nth > 1 && j->rows >= nth && (double)j->rows * j->C >= PAR_MIN_ELEMS)
        sotto_threadpool_run(ctx->tp, row_task, j);
    else
        row_task(j, 0, 1);
}

/* Element-wise op over n floats, viewed as rows of 64 (plus a tail) for the split. */
static int run_unary(const sotto_cpu *ctx, const float *x, int64_t n, float *y,
                     void (*fn)(const float *, int64_t, float *),
                     void (*fn_p)(const float *, int64_t, float, float *), float p)
{
    if (!ctx || n < 0) return SOTTO_ERR_INVALID_ARG;
    if (n == 0) return SOTTO_OK;
    if (!x || !y) return SOTTO_ERR_INVALID_ARG;
    const int64_t body = n & ~(int64_t)63;
    row_job j = {ctx, fn ? ROW_UNARY : ROW_UNARY_P, x, y, body / 64, 64, NULL, NULL, p, fn, fn_p};
    if (body) run_rows(ctx, &j);
    if (body < n) {
        if (fn)
            fn(x + body, n - body, y + body);
        else
            fn_p(x + body, n - body, p, y + body);
    }
    return SOTTO_OK;
}

/* ---- norms -------------------------------------------------------------------------------- */

static int rows_ok(const sotto_cpu *ctx, const float *x, int64_t T, int C, const float *y)
{
    return ctx && T >= 0 && C >= 1 && (T == 0 || (x && y));
}

int sotto_layernorm(const sotto_cpu *ctx, const float *x, int64_t T, int C, const float *gamma,
                    const float *beta, float eps, float *y)
{
    if (!rows_ok(ctx, x, T, C, y) || !(eps >= 0.0f)) return SOTTO_ERR_INVALID_ARG;
    row_job j = {ctx, ROW_LN, x, y, T, C, gamma, beta, eps, NULL, NULL};
    run_rows(ctx, &j);
    return SOTTO_OK;
}

int sotto_rmsnorm(const sotto_cpu *ctx, const float *x, int64_t T, int C, const float *gamma,
                  float eps, float *y)
{
    if (!rows_ok(ctx, x, T, C, y) || !(eps >= 0.0f)) return SOTTO_ERR_INVALID_ARG;
    row_job j = {ctx, ROW_RMS, x, y, T, C, gamma, NULL, eps, NULL, NULL};
    run_rows(ctx, &j);
    return SOTTO_OK;
}

int sotto_groupnorm(const sotto_cpu *ctx, const float *x, int64_t T, int C, int groups,
                    const float *gamma, const float *beta, float eps, float *y)
{
    if (!rows_ok(ctx, x, T, C, y) || groups < 1 || C % groups || !(eps >= 0.0f))
        return SOTTO_ERR_INVALID_ARG;
    if (T == 0) return SOTTO_OK;
    /* Statistics span the whole sequence, so this is two passes over x per group; it runs
     * once per utterance in the models that use it, hence plain C in double. */
    const int cg = C / groups;
    const double n = (double)T * cg;
    for (int g = 0; g < groups; g++) {
        const int c0 = g * cg;
        double s = 0.0, v = 0.0;
        for (int64_t t = 0; t < T; t++)
            for (int c = c0; c < c0 + cg; c++)
                s += x[t * C + c];
        const double mean = s / n;
        for (int64_t t = 0; t < T; t++)
            for (int c = c0; c < c0 + cg; c++) {
                const double d = x[t * C + c] - mean;
                v += d * d;
            }
        const float m = (float)mean, inv = (float)(1.0 / sqrt(v / n + eps));
        for (int64_t t = 0; t < T; t++)
            for (int c = c0; c < c0 + cg; c++) {
                float o = (x[t * C + c] - m) * inv;
                if (gamma) o *= gamma[c];
                if (beta) o += beta[c];
                y[t * C + c] = o;
            }
    }
    return SOTTO_OK;
}

int sotto_channel_affine(const sotto_cpu *ctx, const float *x, int64_t T, int C, const float *scale,
                         const float *shift, float *y)
{
    if (!rows_ok(ctx, x, T, C, y) || !scale) return SOTTO_ERR_INVALID_ARG;
    for (int64_t t = 0; t < T; t++) {
        const float *xr = x + t * C;
        float *yr = y + t * C;
        if (shift)
            for (int c = 0; c < C; c++)
                yr[c] = xr[c] * scale[c] + shift[c];
        else
            for (int c = 0; c < C; c++)
                yr[c] = xr[c] * scale[c];
    }
    return SOTTO_OK;
}

/* ---- activations -------------------------------------------------------------------------- */

int sotto_gelu_erf(const sotto_cpu *ctx, const float *x, int64_t n, float *y)
{
    return ctx ? run_unary(ctx, x, n, y, ctx->k.gelu_erf, NULL, 0.0f) : SOTTO_ERR_INVALID_ARG;
}

int sotto_gelu_tanh(const sotto_cpu *ctx, const float *x, int64_t n, float *y)
{
    return ctx ? run_unary(ctx, x, n, y, ctx->k.gelu_tanh, NULL, 0.0f) : SOTTO_ERR_INVALID_ARG;
}

int sotto_silu(const sotto_cpu *ctx, const float *x, int64_t n, float *y)
{
    return ctx ? run_unary(ctx, x, n, y, ctx->k.silu, NULL, 0.0f) : SOTTO_ERR_INVALID_ARG;
}

int sotto_tanh(const sotto_cpu *ctx, const float *x, int64_t n, float *y)
{
    return ctx ? run_unary(ctx, x, n, y, ctx->k.tanh, NULL, 0.0f) : SOTTO_ERR_INVALID_ARG;
}

int sotto_elu(const sotto_cpu *ctx, const float *x, int64_t n, float alpha, float *y)
{
    return ctx ? run_unary(ctx, x, n, y, NULL, ctx->k.elu, alpha) : SOTTO_ERR_INVALID_ARG;
}

int sotto_leaky_relu(const sotto_cpu *ctx, const float *x, int64_t n, float slope, float *y)
{
    return ctx ? run_unary(ctx, x, n, y, NULL, ctx->k.leaky_relu, slope) : SOTTO_ERR_INVALID_ARG;
}

int sotto_snake(const sotto_cpu *ctx, const float *x, int64_t T, int C, const float *alpha,
                float *y)
{
    if (!rows_ok(ctx, x, T, C, y) || !alpha) return SOTTO_ERR_INVALID_ARG;
    row_job j = {ctx, ROW_SNAKE, x, y, T, C, alpha, NULL, 0.0f, NULL, NULL};
    run_rows(ctx, &j);
    return SOTTO_OK;
}

int sotto_softmax(const sotto_cpu *ctx, const float *x, int64_t rows, int n, float *y)
{
    if (!rows_ok(ctx, x, rows, n, y)) return SOTTO_ERR_INVALID_ARG;
    row_job j = {ctx, ROW_SOFTMAX, x, y, rows, n, NULL, NULL, 0.0f, NULL, NULL};
    run_rows(ctx, &j);
    return SOTTO_OK;
}

int sotto_sincos(const sotto_cpu *ctx, const float *x, int64_t n, float *s, float *c)
{
    if (!ctx || n < 0) return SOTTO_ERR_INVALID_ARG;
    if (n == 0) return SOTTO_OK;
    if (!x || !s || !c || s == c || s == x || c == x) return SOTTO_ERR_INVALID_ARG;
    ctx->k.sincos(x, n, s, c);
    return SOTTO_OK;
}

/* ---- embedding ---------------------------------------------------------------------------- */

int sotto_embedding(const float *table, int64_t n_rows, int dim, const int32_t *ids, int64_t n_ids,
                    float *y)
{
    if (n_ids < 0 || dim < 1 || n_rows < 0) return SOTTO_ERR_INVALID_ARG;
    if (n_ids == 0) return SOTTO_OK;
    if (!table || !ids || !y) return SOTTO_ERR_INVALID_ARG;
    for (int64_t i = 0; i < n_ids; i++) {
        if (ids[i] < 0 || ids[i] >= n_rows) return SOTTO_ERR_INVALID_ARG;
        memcpy(y + i * dim, table + (int64_t)ids[i] * dim, sizeof(float) * (size_t)dim);
    }
    return SOTTO_OK;
}
