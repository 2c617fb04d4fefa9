/*
 * Weight preparation for the layers in ops.h: checks a GGUF tensor's dtype and shape, converts
 * it to float once, and repacks it into the layout its kernel reads (transposed GEMM operands
 * padded to 16 columns, tap-major depthwise filters). Runs at load time only; the
 * processing path never converts or allocates weights.
 */
#include <stdio.h>
#include <string.h>

#include "nn/ops.h"

/* Row length of a packed GEMM operand: n rounded up to 16 floats (whole 64-byte lines for the
 * kernel's 16-column tiles), then to an odd number of lines. An even count (any N that is a
 * multiple of 32, e.g. 512 or 1536) makes the rows of a column tile fall into only a few
 * cache sets, so a K × 16 panel that should stay in L1 keeps evicting itself. */
static int ld_for(int n)
{
    int ld = (n + 15) & ~15;
    return (ld / 16) % 2 ? ld : ld + 16;
}

static int is_float_dtype(int dt)
{
    return dt == SOTTO_DTYPE_F32 || dt == SOTTO_DTYPE_F16 || dt == SOTTO_DTYPE_BF16;
}

/* The tensor as a fresh float array (free with sotto_free). */
static int tensor_floats(const sotto_gguf_tensor *t, const sotto_alloc *a, float **out,
                         sotto_status *st)
{
    size_t bytes;
    *out = NULL;
    if (!is_float_dtype(t->dtype))
        return sotto_status_set(st, SOTTO_ERR_MODEL, "tensor '%s': dtype %s, expected f32/f16/bf16",
                                t->name.data, sotto_dtype_name(t->dtype));
    if (t->n_elems <= 0 || sotto_mul_size((size_t)t->n_elems, sizeof(float), &bytes))
        return sotto_status_set(st, SOTTO_ERR_MODEL, "tensor '%s': bad size", t->name.data);
    float *f = sotto_malloc(a, bytes);
    if (!f) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    sotto_gguf_tensor_to_f32(t, f);
    *out = f;
    return SOTTO_OK;
}

/* The tensor's floats for a repack that only reads them: an f32 tensor of the (little-endian)
 * file in place, else a converted copy; *owned says whether to free it. Reading in place
 * skips a copy of every f32 weight (fresh pages the kernel must clear, for a few ms each). */
static int tensor_view(const sotto_gguf_tensor *t, const sotto_alloc *a, const float **out,
                       int *owned, sotto_status *st)
{
    *owned = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (t->dtype == SOTTO_DTYPE_F32 && t->data && ((uintptr_t)t->data & 3) == 0 && t->n_elems > 0) {
        *out = (const float *)(const void *)t->data;
        return SOTTO_OK;
    }
#endif
    float *f;
    int rc = tensor_floats(t, a, &f, st);
    *out = f;
    *owned = rc == SOTTO_OK;
    return rc;
}

/* Allocates rows × cols floats (or halves), zeroed; NULL on overflow or failure. */
static void *alloc_matrix(const sotto_alloc *a, int64_t rows, int64_t cols, size_t elem)
{
    size_t n, bytes;
    if (rows < 0 || cols < 0 || sotto_mul_size((size_t)rows, (size_t)cols, &n) ||
        sotto_mul_size(n ? n : 1, elem, &bytes))
        return NULL;
    return sotto_calloc(a, 1, bytes);
}

static int oom(sotto_status *st)
{
    return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
}

/* A geometry error found while preparing a tensor is the model's fault: say which tensor. */
static int blame_tensor(const sotto_gguf_tensor *t, sotto_status *st)
{
    char msg[sizeof st->message];
    snprintf(msg, sizeof msg, "%s", st ? st->message : "bad geometry");
    return sotto_status_set(st, SOTTO_ERR_MODEL, "tensor '%s': %s", t->name.data, msg);
}

int sotto_vec_init(float **out, const sotto_gguf_tensor *t, int64_t n, const sotto_alloc *a,
                   sotto_status *st)
{
    if (!out || !t || !a) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    if (t->n_elems != n)
        return sotto_status_set(st, SOTTO_ERR_MODEL, "tensor '%s': %lld elements, expected %lld",
                                t->name.data, (long long)t->n_elems, (long long)n);
    return tensor_floats(t, a, out, st);
}

/* ---- linear ------------------------------------------------------------------------------- */

void sotto_linear_w_free(sotto_linear_w *w, const sotto_alloc *a)
{
    if (!w) return;
    sotto_free(a, w->w);
    sotto_free(a, w->w16);
    sotto_free(a, w->h16);
    memset(w, 0, sizeof *w);
}

/* Pair-packed binary16 panels (backend.h, gemm_h16) of an f32 matrix M[rows][ld] (columns
 * [0, cols) used, the rest zero), rows rounded up to even; NULL when out of memory. */
static uint16_t *pack_h16(const sotto_alloc *a, const float *M, int64_t rows, int cols, int64_t ld)
{
    const int P = SOTTO_F16_PANEL;
    const int64_t rp = (rows + 1) & ~(int64_t)1, panels = (cols + P - 1) / P;
    uint16_t *h = alloc_matrix(a, rp, panels * P, sizeof(uint16_t));
    if (!h) return NULL;
    uint16_t run[256];
    for (int64_t r = 0; r < rows; r++) {
        uint16_t *hr = h + (r / 2) * 64 + r % 2;
        for (int c0 = 0; c0 < cols; c0 += 256) {
            const int cc = cols - c0 < 256 ? cols - c0 : 256;
            sotto_f32_to_f16_n(M + r * ld + c0, run, (size_t)cc);
            for (int j = 0; j < cc; j++) {
                const int c = c0 + j;
                hr[(c / P) * rp * P + ((c % P) / 16) * 32 + (c % 16) * 2] = run[j];
            }
        }
    }
    return h;
}

int sotto_linear_w_use_h16(sotto_linear_w *w, const sotto_alloc *a, sotto_status *st)
{
    if (!w || !a) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    const int P = SOTTO_F16_PANEL, K = w->n_in, Kp = (K + 1) & ~1;
    if (w->w) {
        /* f32 (a file's f16 weights widened at load, or f32 ones: rounded here) */
        uint16_t *h = pack_h16(a, w->w, K, w->n_out, w->ldw);
        if (!h) return oom(st);
        sotto_free(a, w->w);
        w->w = NULL;
        w->h16 = h;
        w->ldw = (w->n_out + P - 1) / P * P;
        w->is_f16 = 1;
        return SOTTO_OK;
    }
    if (!w->w16) return SOTTO_OK;
    const int64_t src_stride = (int64_t)K * P, dst_stride = (int64_t)Kp * P;
    /* ldw is a multiple of 32 for f16 weights, so every panel is whole and zero-padded */
    uint16_t *h = alloc_matrix(a, Kp, w->ldw, sizeof(uint16_t));
    if (!h) return oom(st);
    static const uint16_t zeros[SOTTO_F16_PANEL];
    for (int p = 0; p < w->ldw / P; p++)
        for (int k = 0; k < Kp; k += 2) {
            /* rows k and k + 1 of the panel, interleaved per 16 columns */
            const uint16_t *r0 = w->w16 + p * src_stride + (int64_t)k * P;
            const uint16_t *r1 = k + 1 < K ? r0 + P : zeros;
            uint16_t *o = h + p * dst_stride + (int64_t)(k / 2) * 64;
            for (int c = 0; c < P; c++) {
                o[(c / 16) * 32 + (c % 16) * 2] = r0[c];
                o[(c / 16) * 32 + (c % 16) * 2 + 1] = r1[c];
            }
        }
    sotto_free(a, w->w16);
    w->w16 = NULL;
    w->h16 = h;
    return SOTTO_OK;
}

/* Binary16 bits as the f32 round trip leaves them: a NaN quieted, every other value as it is
 * (so weights kept from an f16 file equal those widened and narrowed again). */
static uint16_t f16_kept(uint16_t h)
{
    return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) ? (uint16_t)(h | 0x200u) : h;
}

/* Shared by the f32 and the f16-tensor inits: exactly one of W (f32, [n_out][n_in]) and H
 * (binary16 bits, same layout; keep_f16 only) is set. */
static int linear_init(sotto_linear_w *w, const float *W, const uint16_t *H, int n_out, int n_in,
                       int keep_f16, const sotto_alloc *a, sotto_status *st)
{
    memset(w, 0, sizeof *w);
    if (n_out < 1 || n_in < 1 || n_out > (1 << 28) || n_in > (1 << 28))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "linear: bad shape [%d, %d]", n_out,
                                n_in);
    const int P = SOTTO_F16_PANEL;
    const int ld = keep_f16 ? (n_out + P - 1) / P * P : ld_for(n_out);
    w->n_out = n_out;
    w->n_in = n_in;
    w->ldw = ld;
    w->is_f16 = keep_f16 != 0;
    /* Both layouts transpose W: blocks of 32 outputs × 64 inputs go through a small buffer so
     * that the writes run along whole rows of the packed matrix (a row at a time wrote one
     * element per cache line). */
    enum { BN = 32, BK = 64 };
    if (w->is_f16) {
        /* Panel-major (backend.h, gemm_f16): 32-column panels, each n_in rows of 32 halves. */
        const int64_t pstride = (int64_t)n_in * P;
        if (!(w->w16 = alloc_matrix(a, n_in, ld, sizeof(uint16_t)))) return oom(st);
        uint16_t blk[BN][BK];
        for (int n0 = 0; n0 < n_out; n0 += BN) {
            const int nb = n_out - n0 < BN ? n_out - n0 : BN;
            uint16_t *panel = w->w16 + (n0 / P) * pstride; /* BN == P: one panel */
            for (int k0 = 0; k0 < n_in; k0 += BK) {
                const int kb = n_in - k0 < BK ? n_in - k0 : BK;
                for (int i = 0; i < nb; i++) {
                    const int64_t src = (int64_t)(n0 + i) * n_in + k0;
                    if (H)
                        for (int k = 0; k < kb; k++)
                            blk[i][k] = f16_kept(H[src + k]);
                    else
                        sotto_f32_to_f16_n(W + src, blk[i], (size_t)kb);
                }
                for (int k = 0; k < kb; k++) {
                    uint16_t *row = panel + (int64_t)(k0 + k) * P;
                    for (int i = 0; i < nb; i++)
                        row[i] = blk[i][k];
                }
            }
        }
    } else {
        if (!(w->w = alloc_matrix(a, n_in, ld, sizeof(float)))) return oom(st);
        for (int n0 = 0; n0 < n_out; n0 += BN) {
            const int nb = n_out - n0 < BN ? n_out - n0 : BN;
            for (int k0 = 0; k0 < n_in; k0 += BK) {
                const int kb = n_in - k0 < BK ? n_in - k0 : BK;
                for (int k = 0; k < kb; k++) {
                    float *row = w->w + (int64_t)(k0 + k) * ld + n0;
                    const float *col = W + (int64_t)n0 * n_in + k0 + k;
                    for (int i = 0; i < nb; i++)
                        row[i] = col[(int64_t)i * n_in];
                }
            }
        }
    }
    return SOTTO_OK;
}

int sotto_linear_w_init_f32(sotto_linear_w *w, const float *W, int n_out, int n_in, int keep_f16,
                            const sotto_alloc *a, sotto_status *st)
{
    if (!w || !W || !a) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    return linear_init(w, W, NULL, n_out, n_in, keep_f16, a, st);
}

int sotto_linear_w_init(sotto_linear_w *w, const sotto_gguf_tensor *t, int keep_f16,
                        const sotto_alloc *a, sotto_status *st)
{
    if (!w || !t || !a) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    memset(w, 0, sizeof *w);
    if (!(t->n_dims == 2 || (t->n_dims == 3 && t->shape[2] == 1)) || t->shape[0] > (1 << 28) ||
        t->shape[1] > (1 << 28))
        return sotto_status_set(st, SOTTO_ERR_MODEL,
                                "tensor '%s': %d dims, expected a linear weight [out, in]",
                                t->name.data, t->n_dims);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* f16 kept as f16: the file's bits go straight into the panels (no float copy) */
    if (keep_f16 && t->dtype == SOTTO_DTYPE_F16 && t->data && ((uintptr_t)t->data & 1) == 0 &&
        t->n_elems == t->shape[0] * t->shape[1])
        return linear_init(w, NULL, (const uint16_t *)(const void *)t->data, (int)t->shape[0],
                           (int)t->shape[1], 1, a, st);
#endif
    const float *f;
    int owned;
    int rc = tensor_view(t, a, &f, &owned, st);
    if (rc) return rc;
    rc = sotto_linear_w_init_f32(w, f, (int)t->shape[0], (int)t->shape[1], keep_f16, a, st);
    if (owned) sotto_free(a, (void *)f);
    return rc;
}

/* ---- conv1d ------------------------------------------------------------------------------- */

void sotto_conv1d_w_free(sotto_conv1d_w *w, const sotto_alloc *a)
{
    if (!w) return;
    sotto_free(a, w->w);
    sotto_free(a, w->h16);
    memset(w, 0, sizeof *w);
}

/* The f32 matrix w[k·c_in][ldw] of an ungrouped conv (or transposed conv) → pair-packed
 * binary16 in *h16, freeing *w. Each tap's rows must start on a pair (c_in even, or k = 1). */
static int conv_to_h16(float **w, uint16_t **h16, int k, int c_in, int c_out, int ldw,
                       const sotto_alloc *a, sotto_status *st)
{
    uint16_t *h = pack_h16(a, *w, (int64_t)k * c_in, c_out, ldw);
    if (!h) return oom(st);
    sotto_free(a, *w);
    *w = NULL;
    *h16 = h;
    return SOTTO_OK;
}

int sotto_conv1d_w_use_h16(sotto_conv1d_w *w, const sotto_alloc *a, sotto_status *st)
{
    if (!w || !a) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    if (!w->w || w->depthwise || w->groups != 1 || (w->k > 1 && (w->c_in & 1))) return SOTTO_OK;
    return conv_to_h16(&w->w, &w->h16, w->k, w->c_in, w->c_out, w->ldw, a, st);
}

int sotto_conv_geom_check(const char *what, int c_a, int c_b, int k, int stride, int dilation,
                          int groups, sotto_status *st)
{
    if (c_a < 1 || c_b < 1 || k < 1 || stride < 1 || dilation < 1 || groups < 1 ||
        c_a > (1 << 24) || c_b > (1 << 24) || k > (1 << 16) || stride > (1 << 16) ||
        dilation > (1 << 16) || c_a % groups || c_b % groups)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "%s: bad geometry (channels %d, %d, k %d, stride %d, dilation %d, "
                                "groups %d)",
                                what, c_a, c_b, k, stride, dilation, groups);
    return SOTTO_OK;
}

int sotto_conv1d_w_init_f32(sotto_conv1d_w *w, const float *W, int c_out, int c_in, int k,
                            int stride, int dilation, int groups, const sotto_alloc *a,
                            sotto_status *st)
{
    if (!w || !W || !a) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    memset(w, 0, sizeof *w);
    int rc = sotto_conv_geom_check("conv1d", c_out, c_in, k, stride, dilation, groups, st);
    if (rc) return rc;
    *w = (sotto_conv1d_w){.c_in = c_in,
                          .c_out = c_out,
                          .k = k,
                          .stride = stride,
                          .dilation = dilation,
                          .groups = groups};
    if (groups == c_in && c_out == c_in) {
        /* depthwise: W[c][0][k] → w[k][c] */
        w->depthwise = 1;
        if (!(w->w = alloc_matrix(a, k, c_in, sizeof(float)))) return oom(st);
        for (int c = 0; c < c_in; c++)
            for (int j = 0; j < k; j++)
                w->w[(int64_t)j * c_in + c] = W[(int64_t)c * k + j];
        return SOTTO_OK;
    }
    const int cig = c_in / groups, cog = c_out / groups, ld = ld_for(cog);
    w->ldw = ld;
    /* W[g·cog + n][ci][j] → w[g][j][ci][n] */
    if (!(w->w = alloc_matrix(a, (int64_t)groups * k * cig, ld, sizeof(float)))) return oom(st);
    /* 64 outputs at a time, so the writes run along rows of w and the reads stay in cache */
    for (int g = 0; g < groups; g++)
        for (int n0 = 0; n0 < cog; n0 += 64) {
            const int n1 = cog - n0 < 64 ? cog : n0 + 64;
            for (int ci = 0; ci < cig; ci++)
                for (int j = 0; j < k; j++) {
                    float *row = w->w + (((int64_t)g * k + j) * cig + ci) * ld;
                    const float *src = W + ((int64_t)g * cog * cig + ci) * k + j;
                    for (int n = n0; n < n1; n++)
                        row[n] = src[(int64_t)n * cig * k];
                }
        }
    return SOTTO_OK;
}

int sotto_conv1d_w_init(sotto_conv1d_w *w, const sotto_gguf_tensor *t, int stride, int dilation,
                        int groups, const sotto_alloc *a, sotto_status *st)
{
    if (!w || !t || !a) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    memset(w, 0, sizeof *w);
    if (t->n_dims != 3 || groups < 1 || t->shape[0] > (1 << 24) ||
        t->shape[1] * groups > (1 << 24) || t->shape[2] > (1 << 16))
        return sotto_status_set(st, SOTTO_ERR_MODEL,
                                "tensor '%s': expected a conv1d weight [out, in/groups, k]",
                                t->name.data);
    const float *f;
    int owned;
    int rc = tensor_view(t, a, &f, &owned, st);
    if (rc) return rc;
    rc = sotto_conv1d_w_init_f32(w, f, (int)t->shape[0], (int)(t->shape[1] * groups),
                                 (int)t->shape[2], stride, dilation, groups, a, st);
    if (owned) sotto_free(a, (void *)f);
    return rc == SOTTO_ERR_INVALID_ARG ? blame_tensor(t, st) : rc;
}

/* ---- transposed conv1d ------------------------------------------------------------------ */

void sotto_convtr1d_w_free(sotto_convtr1d_w *w, const sotto_alloc *a)
{
    if (!w) return;
    sotto_free(a, w->w);
    sotto_free(a, w->h16);
    memset(w, 0, sizeof *w);
}

int sotto_convtr1d_w_use_h16(sotto_convtr1d_w *w, const sotto_alloc *a, sotto_status *st)
{
    if (!w || !a) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    if (!w->w || w->groups != 1 || (w->k > 1 && (w->c_in & 1))) return SOTTO_OK;
    return conv_to_h16(&w->w, &w->h16, w->k, w->c_in, w->c_out, w->ldw, a, st);
}

int sotto_convtr1d_w_init_f32(sotto_convtr1d_w *w, const float *W, int c_in, int c_out, int k,
                              int stride, int dilation, int groups, const sotto_alloc *a,
                              sotto_status *st)
{
    if (!w || !W || !a) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    memset(w, 0, sizeof *w);
    int rc =
        sotto_conv_geom_check("conv_transpose1d", c_in, c_out, k, stride, dilation, groups, st);
    if (rc) return rc;
    const int cig = c_in / groups, cog = c_out / groups, ld = ld_for(cog);
    *w = (sotto_convtr1d_w){.c_in = c_in,
                            .c_out = c_out,
                            .k = k,
                            .stride = stride,
                            .dilation = dilation,
                            .groups = groups,
                            .ldw = ld};
    /* W[g·cig + ci][n][j] → w[g][j][ci][n] */
    if (!(w->w = alloc_matrix(a, (int64_t)groups * k * cig, ld, sizeof(float)))) return oom(st);
    for (int g = 0; g < groups; g++)
        for (int ci = 0; ci < cig; ci++)
            for (int n = 0; n < cog; n++)
                for (int j = 0; j < k; j++)
                    w->w[(((int64_t)g * k + j) * cig + ci) * ld + n] =
                        W[(((int64_t)g * cig + ci) * cog + n) * k + j];
    return SOTTO_OK;
}

int sotto_convtr1d_w_init(sotto_convtr1d_w *w, const sotto_gguf_tensor *t, int stride, int dilation,
                          int groups, const sotto_alloc *a, sotto_status *st)
{
    if (!w || !t || !a) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    memset(w, 0, sizeof *w);
    if (t->n_dims != 3 || groups < 1 || t->shape[0] > (1 << 24) ||
        t->shape[1] * groups > (1 << 24) || t->shape[2] > (1 << 16))
        return sotto_status_set(st, SOTTO_ERR_MODEL,
                                "tensor '%s': expected a conv_transpose1d weight "
                                "[in, out/groups, k]",
                                t->name.data);
    const float *f;
    int owned;
    int rc = tensor_view(t, a, &f, &owned, st);
    if (rc) return rc;
    rc = sotto_convtr1d_w_init_f32(w, f, (int)t->shape[0], (int)(t->shape[1] * groups),
                                   (int)t->shape[2], stride, dilation, groups, a, st);
    if (owned) sotto_free(a, (void *)f);
    return rc == SOTTO_ERR_INVALID_ARG ? blame_tensor(t, st) : rc;
}

/* ---- conv2d ------------------------------------------------------------------------------- */

sotto_conv2d_geom sotto_conv2d_geom_default(void)
{
    sotto_conv2d_geom g = {1, 1, 0, 0, 1, 1, 1};
    return g;
}

void sotto_conv2d_w_free(sotto_conv2d_w *w, const sotto_alloc *a)
{
    if (!w) return;
    sotto_free(a, w->w);
    memset(w, 0, sizeof *w);
}

int sotto_conv2d_w_init_f32(sotto_conv2d_w *w, const float *W, int c_out, int c_in, int kh, int kw,
                            const sotto_conv2d_geom *g, const sotto_alloc *a, sotto_status *st)
{
    if (!w || !W || !a || !g) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    memset(w, 0, sizeof *w);
    int rc = sotto_conv_geom_check("conv2d", c_out, c_in, kh, g->stride_h, g->dil_h, g->groups, st);
    if (!rc)
        rc = sotto_conv_geom_check("conv2d", c_out, c_in, kw, g->stride_w, g->dil_w, g->groups, st);
    if (rc) return rc;
    if (g->pad_h < 0 || g->pad_w < 0 || g->pad_h > (1 << 16) || g->pad_w > (1 << 16))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "conv2d: bad padding %d, %d", g->pad_h,
                                g->pad_w);
    *w = (sotto_conv2d_w){.c_in = c_in, .c_out = c_out, .kh = kh, .kw = kw, .g = *g};
    const int64_t n = (int64_t)c_out * (c_in / g->groups) * kh * kw;
    if (!(w->w = alloc_matrix(a, n, 1, sizeof(float)))) return oom(st);
    memcpy(w->w, W, sizeof(float) * (size_t)n);
    return SOTTO_OK;
}

int sotto_conv2d_w_init(sotto_conv2d_w *w, const sotto_gguf_tensor *t, const sotto_conv2d_geom *g,
                        const sotto_alloc *a, sotto_status *st)
{
    if (!w || !t || !a || !g) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    memset(w, 0, sizeof *w);
    if (t->n_dims != 4 || g->groups < 1 || t->shape[0] > (1 << 24) ||
        t->shape[1] * g->groups > (1 << 24) || t->shape[2] > (1 << 16) || t->shape[3] > (1 << 16))
        return sotto_status_set(st, SOTTO_ERR_MODEL,
                                "tensor '%s': expected a conv2d weight [out, in/groups, kh, kw]",
                                t->name.data);
    const float *f;
    int owned;
    int rc = tensor_view(t, a, &f, &owned, st);
    if (rc) return rc;
    rc = sotto_conv2d_w_init_f32(w, f, (int)t->shape[0], (int)(t->shape[1] * g->groups),
                                 (int)t->shape[2], (int)t->shape[3], g, a, st);
    if (owned) sotto_free(a, (void *)f);
    return rc == SOTTO_ERR_INVALID_ARG ? blame_tensor(t, st) : rc;
}

int sotto_linear_w_load(sotto_linear_w *w, const sotto_gguf *g, const char *name, int64_t n_out,
                        int64_t n_in, int in_k1, const sotto_alloc *a, sotto_status *st)
{
    const int64_t shape[3] = {n_out, n_in, 1};
    const sotto_gguf_tensor *t;
    int rc = sotto_gguf_tensor_check(g, name, -1, in_k1 ? 3 : 2, shape, &t, st);
    if (rc) return rc;
    if ((rc = sotto_linear_w_init(w, t, t->dtype == SOTTO_DTYPE_F16, a, st))) return rc;
    sotto_gguf_tensor_release(g, t);
    return SOTTO_OK;
}

int sotto_conv1d_w_load(sotto_conv1d_w *w, const sotto_gguf *g, const char *name, int64_t c_out,
                        int64_t c_in_g, int64_t k, int stride, int dilation, int groups,
                        const sotto_alloc *a, sotto_status *st)
{
    const int64_t shape[3] = {c_out, c_in_g, k};
    const sotto_gguf_tensor *t;
    int rc = sotto_gguf_tensor_check(g, name, -1, 3, shape, &t, st);
    if (rc) return rc;
    if ((rc = sotto_conv1d_w_init(w, t, stride, dilation, groups, a, st))) return rc;
    sotto_gguf_tensor_release(g, t);
    return SOTTO_OK;
}
