/*
 * The GEMM-shaped layers: linear, conv1d (general and depthwise), transposed conv1d and
 * conv2d. Time-major activations let every 1-D convolution read its taps in place: output
 * frame t of an undilated ungrouped conv sees k consecutive input frames, i.e. k·c_in
 * contiguous floats, so the conv is one GEMM whose input rows start stride·c_in floats apart;
 * dilated or grouped convs become one accumulating GEMM per tap and group, and a transposed
 * conv writes each tap's GEMM into every stride-th output row. No im2col buffer is needed.
 *
 * Each GEMM runs either the context's small-M kernel (M ≤ 16 rows, and always for f16
 * weights), its binary16 kernel (weights switched by *_use_h16; a dilated conv's taps are
 * then gathered into one product), or cblas_sgemm, and is split across the thread pool by
 * output rows when there are many, else by 16-column blocks of output channels, so threads
 * never write the same float.
 */
#include <cblas.h>
#include <string.h>

#include "nn/ops.h"

#define SMALL_M 16
/* Below this many multiply-adds a job is not worth waking the pool for. */
#define PAR_MIN_MACS (1 << 18)
/* Row split once every thread gets at least this many rows. */
#define PAR_MIN_ROWS 32

typedef struct gemm_op {
    int K, N; /* N: real output columns */
    const float *x;
    int64_t ldx;
    const float *w; /* f32 weights, or NULL */
    const uint16_t *w16;
    const uint16_t *h16; /* pair-packed binary16 weights (gemm_h16), or NULL */
    int64_t h16_stride;  /* their panel stride in halves; 0: 32·round_up(K, 2) */
    int seg;             /* h16 only: x rows gathered from taps of seg columns (0: plain) */
    int64_t tap_step;    /* ... tap_step floats apart (backend.h, gemm_h16) */
    int64_t ldw;
    const float *bias; /* [N] or NULL */
    float *y;
    int64_t ldy;
    int acc;
} gemm_op;

/* Rows [m0, m1) and columns [n0, n1) of one GEMM on the calling thread. */
static void gemm_block(const sotto_cpu *ctx, const gemm_op *g, int64_t m0, int64_t m1, int n0,
                       int n1)
{
    const int M = (int)(m1 - m0);
    if (M <= 0 || n1 <= n0) return;
    const float *x = g->x + m0 * g->ldx;
    float *y = g->y + m0 * g->ldy;
    if (g->h16) {
        const int64_t pstride =
            g->h16_stride ? g->h16_stride : (int64_t)((g->K + 1) & ~1) * SOTTO_F16_PANEL;
        ctx->k.gemm_h16(M, g->K, g->seg ? g->seg : g->K, g->tap_step, n0, n1, x, g->ldx, g->h16,
                        pstride, g->bias, y, g->ldy, g->acc);
        return;
    }
    if (g->w16) {
        /* f16 weights are panel-major: pass the panel stride (backend.h). */
        ctx->k.gemm_f16(M, g->K, n0, n1, x, g->ldx, g->w16, (int64_t)g->K * SOTTO_F16_PANEL,
                        g->bias, y, g->ldy, g->acc);
        return;
    }
    if (M <= SMALL_M || g->K == 0 || !ctx->blas_large) {
        ctx->k.gemm_f32(M, g->K, n0, n1, x, g->ldx, g->w, g->ldw, g->bias, y, g->ldy, g->acc);
        return;
    }
    float beta = g->acc ? 1.0f : 0.0f;
    const size_t nb = sizeof(float) * (size_t)(n1 - n0);
    if (g->bias && !g->acc) {
        for (int m = 0; m < M; m++)
            memcpy(y + (int64_t)m * g->ldy + n0, g->bias + n0, nb);
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, n1 - n0, g->K, 1.0f, x, (int)g->ldx,
                g->w + n0, (int)g->ldw, beta, y + n0, (int)g->ldy);
    if (g->bias && g->acc)
        for (int m = 0; m < M; m++) {
            float *yr = y + (int64_t)m * g->ldy;
            for (int n = n0; n < n1; n++)
                yr[n] += g->bias[n];
        }
}

/* How a job is cut across nth threads: by rows, by groups, or by 16-column blocks. */
typedef enum split_kind { SPLIT_NONE, SPLIT_ROWS, SPLIT_GROUPS, SPLIT_COLS } split_kind;

static split_kind choose_split(int nth, double macs, int64_t rows, int groups, int cols)
{
    if (nth <= 1 || macs < PAR_MIN_MACS) return SPLIT_NONE;
    if (rows >= (int64_t)PAR_MIN_ROWS * nth) return SPLIT_ROWS;
    if (groups >= nth) return SPLIT_GROUPS;
    if (cols > 16) return SPLIT_COLS;
    return rows >= nth ? SPLIT_ROWS : SPLIT_NONE;
}

/* The part of [0, rows) × [0, groups) × [0, cols) thread ith of nth owns. */
typedef struct part {
    int64_t m0, m1;
    int g0, g1, n0, n1;
} part;

static part split_part(split_kind s, int ith, int nth, int64_t rows, int groups, int cols)
{
    part p = {0, rows, 0, groups, 0, cols};
    int64_t b, e;
    switch (s) {
    case SPLIT_ROWS:
        sotto_split_range(rows, ith, nth, &p.m0, &p.m1);
        break;
    case SPLIT_GROUPS:
        sotto_split_range(groups, ith, nth, &b, &e);
        p.g0 = (int)b;
        p.g1 = (int)e;
        break;
    case SPLIT_COLS:
        sotto_split_range((cols + 15) / 16, ith, nth, &b, &e);
        p.n0 = (int)(b * 16);
        p.n1 = (int)(e * 16 < cols ? e * 16 : cols);
        break;
    default:
        break;
    }
    return p;
}

static void run_job(const sotto_cpu *ctx, split_kind s, sotto_task_fn fn, void *job)
{
    if (s == SPLIT_NONE || !ctx->tp)
        fn(job, 0, 1);
    else
        sotto_threadpool_run(ctx->tp, fn, job);
}

/* ---- linear ------------------------------------------------------------------------------- */

typedef struct linear_job {
    const sotto_cpu *ctx;
    gemm_op g;
    int64_t M;
    split_kind s;
} linear_job;

static void linear_task(void *p, int ith, int nth)
{
    const linear_job *j = p;
    part q = split_part(nth > 1 ? j->s : SPLIT_NONE, ith, nth, j->M, 1, j->g.N);
    gemm_block(j->ctx, &j->g, q.m0, q.m1, q.n0, q.n1);
}

int sotto_linear_ex(const sotto_cpu *ctx, const sotto_linear_w *w, const float *bias,
                    const float *x, int64_t ldx, int64_t M, float *y, int64_t ldy, int accumulate)
{
    if (!ctx || !w || (!w->w && !w->w16 && !w->h16) || M < 0 || M > INT32_MAX || ldx < w->n_in ||
        ldy < w->n_out || ldx > INT32_MAX || ldy > INT32_MAX)
        return SOTTO_ERR_INVALID_ARG;
    if (M == 0) return SOTTO_OK;
    if (!x || !y) return SOTTO_ERR_INVALID_ARG;
    linear_job j = {ctx,
                    {.K = w->n_in,
                     .N = w->n_out,
                     .x = x,
                     .ldx = ldx,
                     .w = w->w,
                     .w16 = w->w16,
                     .h16 = w->h16,
                     .ldw = w->ldw,
                     .bias = bias,
                     .y = y,
                     .ldy = ldy,
                     .acc = accumulate},
                    M,
                    SPLIT_NONE};
    j.s = choose_split(sotto_cpu_threads(ctx), (double)M * w->n_out * w->n_in, M, 1, w->n_out);
    /* The small-M kernel re-reads all weights per row block: split its columns instead. */
    if (j.s == SPLIT_ROWS && (w->w16 || w->h16 || M <= SMALL_M || !ctx->blas_large) && w->n_out > 16)
        j.s = SPLIT_COLS;
    run_job(ctx, j.s, linear_task, &j);
    return SOTTO_OK;
}

int sotto_linear(const sotto_cpu *ctx, const sotto_linear_w *w, const float *bias, const float *x,
                 int64_t M, float *y)
{
    if (!w) return SOTTO_ERR_INVALID_ARG;
    return sotto_linear_ex(ctx, w, bias, x, w->n_in, M, y, w->n_out, 0);
}

/* ---- conv1d ------------------------------------------------------------------------------- */

int64_t sotto_conv1d_out_len(const sotto_conv1d_w *w, int64_t T_in)
{
    if (!w || T_in <= 0) return 0;
    const int64_t span = (int64_t)w->dilation * (w->k - 1) + 1;
    return T_in < span ? 0 : (T_in - span) / w->stride + 1;
}

typedef struct conv_job {
    const sotto_cpu *ctx;
    const sotto_conv1d_w *w;
    const float *bias, *x;
    float *y;
    int64_t T_out;
    split_kind s;
} conv_job;

static void conv1d_task(void *p, int ith, int nth)
{
    const conv_job *j = p;
    const sotto_conv1d_w *w = j->w;
    if (w->depthwise) {
        int64_t t0 = 0, t1 = j->T_out;
        if (nth > 1) sotto_split_range(j->T_out, ith, nth, &t0, &t1);
        j->ctx->k.dwconv(j->x, w->c_in, w->w, w->k, w->stride, w->dilation, j->bias, j->y, t0, t1);
        return;
    }
    const int G = w->groups, cig = w->c_in / G, cog = w->c_out / G;
    part q = split_part(nth > 1 ? j->s : SPLIT_NONE, ith, nth, j->T_out, G, cog);
    /* BLAS refuses overlapping rows (lda < K), so a BLAS-sized block of an overlapping
     * conv takes one GEMM per tap instead. */
    const int fused =
        G == 1 && (w->dilation == 1 || w->k == 1) &&
        (q.m1 - q.m0 <= SMALL_M || w->stride >= w->k || !j->ctx->blas_large || w->h16);
    gemm_op g = {0};
    g.ldx = (int64_t)w->stride * w->c_in;
    g.ldw = w->ldw;
    g.h16_stride = w->h16 ? (((int64_t)w->k * w->c_in + 1) & ~1) * SOTTO_F16_PANEL : 0;
    g.ldy = w->c_out;
    g.N = cog;
    for (int gi = q.g0; gi < q.g1; gi++) {
        g.y = j->y + (int64_t)gi * cog;
        if (!fused && w->h16) {
            /* binary16 (ungrouped): the taps are gathered while x is rounded, so a dilated
             * conv is still one product over K = k·c_in */
            g.K = w->k * w->c_in;
            g.seg = w->c_in;
            g.tap_step = (int64_t)w->dilation * w->c_in;
            g.x = j->x;
            g.h16 = w->h16;
            g.bias = j->bias;
            g.acc = 0;
            gemm_block(j->ctx, &g, q.m0, q.m1, q.n0, q.n1);
            continue;
        }
        if (fused) {
            /* all taps at once: k consecutive frames are k·c_in contiguous floats */
            g.K = w->k * w->c_in;
            g.x = j->x;
            g.w = w->w;
            g.h16 = w->h16;
            g.bias = j->bias;
            g.acc = 0;
            gemm_block(j->ctx, &g, q.m0, q.m1, q.n0, q.n1);
            continue;
        }
        for (int kk = 0; kk < w->k; kk++) {
            g.K = cig;
            g.x = j->x + (int64_t)kk * w->dilation * w->c_in + (int64_t)gi * cig;
            g.w = w->w + (((int64_t)gi * w->k + kk) * cig) * w->ldw;
            g.bias = kk == 0 && j->bias ? j->bias + (int64_t)gi * cog : NULL;
            g.acc = kk > 0;
            gemm_block(j->ctx, &g, q.m0, q.m1, q.n0, q.n1);
        }
    }
}

int64_t sotto_conv1d(const sotto_cpu *ctx, const sotto_conv1d_w *w, const float *bias,
                     const float *x, int64_t T_in, float *y)
{
    if (!ctx || !w || (!w->w && !w->h16) || T_in < 0) return SOTTO_ERR_INVALID_ARG;
    const int64_t T_out = sotto_conv1d_out_len(w, T_in);
    if (T_out == 0) return 0;
    if (!x || !y || T_out > INT32_MAX || (int64_t)w->stride * w->c_in > INT32_MAX)
        return SOTTO_ERR_INVALID_ARG;
    conv_job j = {ctx, w, bias, x, y, T_out, SPLIT_NONE};
    const double macs = (double)T_out * w->c_out * (w->c_in / w->groups) * w->k;
    if (w->depthwise)
        j.s = sotto_cpu_threads(ctx) > 1 && macs >= PAR_MIN_MACS / 4 && T_out >= 2 ? SPLIT_ROWS
                                                                                   : SPLIT_NONE;
    else
        j.s = choose_split(sotto_cpu_threads(ctx), macs, T_out, w->groups, w->c_out / w->groups);
    run_job(ctx, j.s, conv1d_task, &j);
    return T_out;
}

size_t sotto_conv1d_padded_scratch(const sotto_conv1d_w *w, int64_t T, int pad_left, int pad_right)
{
    if (!w || T < 0 || pad_left < 0 || pad_right < 0) return 0;
    return (size_t)(T + pad_left + pad_right) * (size_t)w->c_in;
}

int64_t sotto_conv1d_padded(const sotto_cpu *ctx, const sotto_conv1d_w *w, const float *bias,
                            const float *x, int64_t T, int pad_left, int pad_right,
                            sotto_pad_mode mode, float *y, float *scratch)
{
    if (!w || !scratch) return SOTTO_ERR_INVALID_ARG;
    int rc = sotto_pad1d(x, T, w->c_in, pad_left, pad_right, mode, scratch);
    if (rc) return rc;
    return sotto_conv1d(ctx, w, bias, scratch, T + pad_left + pad_right, y);
}

/* ---- transposed conv1d ------------------------------------------------------------------ */

int64_t sotto_convtr1d_out_len(const sotto_convtr1d_w *w, int64_t T_in)
{
    if (!w || T_in <= 0) return 0;
    return (T_in - 1) * w->stride + (int64_t)w->dilation * (w->k - 1) + 1;
}

typedef struct convtr_job {
    const sotto_cpu *ctx;
    const sotto_convtr1d_w *w;
    const float *bias, *x;
    float *y;
    int64_t T_in, L;
    split_kind s;
} convtr_job;

static void convtr_task(void *p, int ith, int nth)
{
    const convtr_job *j = p;
    const sotto_convtr1d_w *w = j->w;
    const int G = w->groups, cig = w->c_in / G, cog = w->c_out / G;
    /* Taps of neighbouring input frames land on the same output rows: never split rows. */
    part q = split_part(nth > 1 ? j->s : SPLIT_NONE, ith, nth, j->T_in, G, cog);
    gemm_op g = {0};
    g.K = cig;
    g.N = cog;
    g.ldx = w->c_in;
    g.ldw = w->ldw;
    g.ldy = (int64_t)w->stride * w->c_out;
    g.acc = 1;
    g.h16_stride = w->h16 ? (((int64_t)w->k * w->c_in + 1) & ~1) * SOTTO_F16_PANEL : 0;
    for (int gi = q.g0; gi < q.g1; gi++) {
        const int64_t c0 = (int64_t)gi * cog;
        const size_t nb = sizeof(float) * (size_t)(q.n1 - q.n0);
        for (int64_t t = 0; t < j->L; t++) {
            float *yr = j->y + t * w->c_out + c0;
            if (j->bias)
                memcpy(yr + q.n0, j->bias + c0 + q.n0, nb);
            else
                memset(yr + q.n0, 0, nb);
        }
        for (int kk = 0; kk < w->k; kk++) {
            g.x = j->x + (int64_t)gi * cig;
            g.w = w->w ? w->w + (((int64_t)gi * w->k + kk) * cig) * w->ldw : NULL;
            g.h16 = w->h16 ? w->h16 + (int64_t)kk * cig / 2 * 64 : NULL;
            g.y = j->y + (int64_t)kk * w->dilation * w->c_out + c0;
            gemm_block(j->ctx, &g, 0, j->T_in, q.n0, q.n1);
        }
    }
}

int64_t sotto_conv_transpose1d(const sotto_cpu *ctx, const sotto_convtr1d_w *w, const float *bias,
                               const float *x, int64_t T_in, float *y)
{
    if (!ctx || !w || (!w->w && !w->h16) || T_in < 0) return SOTTO_ERR_INVALID_ARG;
    const int64_t L = sotto_convtr1d_out_len(w, T_in);
    if (L == 0) return 0;
    if (!x || !y || T_in > INT32_MAX || (int64_t)w->stride * w->c_out > INT32_MAX)
        return SOTTO_ERR_INVALID_ARG;
    convtr_job j = {ctx, w, bias, x, y, T_in, L, SPLIT_NONE};
    const double macs = (double)T_in * w->c_out * (w->c_in / w->groups) * w->k;
    /* rows are never split (see convtr_task); a row-heavy job splits columns instead */
    split_kind s = choose_split(sotto_cpu_threads(ctx), macs, 0, w->groups, w->c_out / w->groups);
    j.s = s == SPLIT_ROWS ? SPLIT_NONE : s;
    run_job(ctx, j.s, convtr_task, &j);
    return L;
}

/* ---- conv2d ------------------------------------------------------------------------------- */

void sotto_conv2d_out_size(const sotto_conv2d_w *w, int64_t H, int64_t W, int64_t *H_out,
                           int64_t *W_out)
{
    int64_t h = 0, v = 0;
    if (w && H > 0 && W > 0) {
        const sotto_conv2d_geom *g = &w->g;
        const int64_t sh = H + 2LL * g->pad_h - (int64_t)g->dil_h * (w->kh - 1) - 1;
        const int64_t sw = W + 2LL * g->pad_w - (int64_t)g->dil_w * (w->kw - 1) - 1;
        h = sh < 0 ? 0 : sh / g->stride_h + 1;
        v = sw < 0 ? 0 : sw / g->stride_w + 1;
    }
    if (H_out) *H_out = h;
    if (W_out) *W_out = v;
}

typedef struct conv2d_job {
    const sotto_conv2d_w *w;
    const float *bias, *x;
    float *y;
    int64_t H, W, Ho, Wo;
} conv2d_job;

/* Output columns ow whose input column ow·s − pad + off lies in [0, W). */
static void col_range(int64_t W, int64_t Wo, int s, int64_t shift, int64_t *lo, int64_t *hi)
{
    /* shift = off − pad: need 0 ≤ ow·s + shift ≤ W − 1 */
    *lo = shift >= 0 ? 0 : (-shift + s - 1) / s;
    const int64_t r = W - 1 - shift;
    *hi = r < 0 ? 0 : r / s + 1;
    if (*hi > Wo) *hi = Wo;
    if (*lo > *hi) *lo = *hi;
}

static void conv2d_task(void *p, int ith, int nth)
{
    const conv2d_job *j = p;
    const sotto_conv2d_w *w = j->w;
    const sotto_conv2d_geom *g = &w->g;
    const int cig = w->c_in / g->groups, cog = w->c_out / g->groups;
    const int64_t plane_in = j->H * j->W, plane_out = j->Ho * j->Wo;
    int64_t c0 = 0, c1 = w->c_out;
    if (nth > 1) sotto_split_range(w->c_out, ith, nth, &c0, &c1);
    for (int64_t co = c0; co < c1; co++) {
        float *yp = j->y + co * plane_out;
        const float b = j->bias ? j->bias[co] : 0.0f;
        for (int64_t i = 0; i < plane_out; i++)
            yp[i] = b;
        const int64_t gi = co / cog;
        for (int ci = 0; ci < cig; ci++) {
            const float *xp = j->x + (gi * cig + ci) * plane_in;
            const float *wk = w->w + ((co * cig + ci) * w->kh) * w->kw;
            for (int a = 0; a < w->kh; a++)
                for (int c = 0; c < w->kw; c++) {
                    const float wv = wk[a * w->kw + c];
                    const int64_t shift = (int64_t)c * g->dil_w - g->pad_w;
                    int64_t lo, hi;
                    col_range(j->W, j->Wo, g->stride_w, shift, &lo, &hi);
                    if (lo >= hi) continue;
                    for (int64_t oh = 0; oh < j->Ho; oh++) {
                        const int64_t ih = oh * g->stride_h - g->pad_h + (int64_t)a * g->dil_h;
                        if (ih < 0 || ih >= j->H) continue;
                        const float *xr = xp + ih * j->W + shift;
                        float *yr = yp + oh * j->Wo;
                        if (g->stride_w == 1)
                            for (int64_t ow = lo; ow < hi; ow++)
                                yr[ow] += wv * xr[ow];
                        else
                            for (int64_t ow = lo; ow < hi; ow++)
                                yr[ow] += wv * xr[ow * g->stride_w];
                    }
                }
        }
    }
}

int sotto_conv2d(const sotto_cpu *ctx, const sotto_conv2d_w *w, const float *bias, const float *x,
                 int64_t H, int64_t W, float *y)
{
    if (!ctx || !w || !w->w || H < 0 || W < 0 || H > INT32_MAX || W > INT32_MAX)
        return SOTTO_ERR_INVALID_ARG;
    conv2d_job j = {w, bias, x, y, H, W, 0, 0};
    sotto_conv2d_out_size(w, H, W, &j.Ho, &j.Wo);
    if (j.Ho == 0 || j.Wo == 0) return SOTTO_OK;
    if (!x || !y) return SOTTO_ERR_INVALID_ARG;
    const double macs = (double)j.Ho * j.Wo * w->c_out * (w->c_in / w->g.groups) * w->kh * w->kw;
    const split_kind s = sotto_cpu_threads(ctx) > 1 && macs >= PAR_MIN_MACS && w->c_out > 1
                             ? SPLIT_GROUPS
                             : SPLIT_NONE;
    run_job(ctx, s, conv2d_task, &j);
    return SOTTO_OK;
}
