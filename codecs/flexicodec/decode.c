/*
 * FlexiCodec decode-side stages (see flexicodec.h), offline over whole sequences, on the
 * layer library. The DAC decoder runs in three scratch buffers X, A, B of equal size: X holds
 * the current activation; a Snake writes straight into the middle of a zero-edged padded copy
 * in A so that a "same" conv (torch padding p) is a valid conv over A; a transposed conv
 * writes its full output into B and torch's padding is cropped from both ends into X.
 */
#include <string.h>

#include "codecs/flexicodec/flexicodec.h"

#define MAX_DILATION_PAD(hp) (3 * max_dilation(hp))

static int max_dilation(const flexicodec_hparams *hp)
{
    int d = 1;
    for (int j = 0; j < FLEXICODEC_RU_COUNT; j++)
        if (hp->dilations[j] > d) d = hp->dilations[j];
    return d;
}

/* ---- semantic branch ------------------------------------------------------------------- */

int flexicodec_fsq_codes(const flexicodec_hparams *hp, const int32_t *idx, int64_t G, float *codes)
{
    if (!hp || G < 0 || (G && (!idx || !codes))) return SOTTO_ERR_INVALID_ARG;
    const int D = hp->n_levels;
    for (int64_t g = 0; g < G; g++) {
        int32_t v = idx[g];
        if (v < 0 || v >= hp->fsq_size) return SOTTO_ERR_INVALID_ARG;
        for (int d = 0; d < D; d++) {
            const int L = hp->fsq_levels[d], half = L / 2;
            const int digit = (int)(v % L);
            v /= L;
            codes[g * D + d] = (float)(digit - half) / (float)half;
        }
    }
    return SOTTO_OK;
}

int flexicodec_fsq_project_out(const sotto_cpu *cpu, const flexicodec_decoder_weights *w,
                               const float *codes, int64_t G, float *y)
{
    if (!cpu || !w || G < 0 || (G && (!codes || !y))) return SOTTO_ERR_INVALID_ARG;
    return sotto_linear(cpu, &w->fsq_out, w->fsq_out_b, codes, G, y);
}

size_t flexicodec_convnext_scratch(const flexicodec_hparams *hp, int64_t G)
{
    if (!hp || G < 0) return 0;
    const size_t C = (size_t)hp->convnext_dim, I = (size_t)hp->convnext_intermediate;
    return ((size_t)G + FLEXICODEC_CONVNEXT_K - 1) * C + (size_t)G * C + (size_t)G * I;
}

int flexicodec_convnext_decode(const sotto_cpu *cpu, const flexicodec_decoder_weights *w, float *x,
                               int64_t G, float *y, float *scratch)
{
    if (!cpu || !w || G < 0 || (G && (!x || !y || !scratch))) return SOTTO_ERR_INVALID_ARG;
    const flexicodec_hparams *hp = &w->hp;
    const int C = hp->convnext_dim, I = hp->convnext_intermediate;
    if (G == 0) return SOTTO_OK;
    if (!hp->decode_semantic) {
        memcpy(y, x, sizeof(float) * (size_t)G * (size_t)C);
        return SOTTO_OK;
    }
    const int pad_l = hp->convnext_causal ? FLEXICODEC_CONVNEXT_K - 1 : FLEXICODEC_CONVNEXT_K / 2;
    const int pad_r = FLEXICODEC_CONVNEXT_K - 1 - pad_l;
    float *padbuf = scratch;
    float *t = padbuf + ((size_t)G + FLEXICODEC_CONVNEXT_K - 1) * (size_t)C;
    float *h = t + (size_t)G * (size_t)C;
    const int64_t n = G * C;
    int64_t rc;
    for (int i = 0; i < hp->convnext_layers; i++) {
        const flexicodec_convnext_block *b = &w->cnx[i];
        rc = sotto_conv1d_padded(cpu, &b->dw, b->dw_b, x, G, pad_l, pad_r, SOTTO_PAD_ZERO, t,
                                 padbuf);
        if (rc < 0) return (int)rc;
        if ((rc = sotto_layernorm(cpu, t, G, C, b->ln_w, b->ln_b, hp->convnext_eps, t)) ||
            (rc = sotto_linear(cpu, &b->pw1, b->pw1_b, t, G, h)) ||
            (rc = sotto_gelu_erf(cpu, h, G * I, h)) ||
            (rc = sotto_linear(cpu, &b->pw2, b->pw2_b, h, G, t)))
            return (int)rc;
        if (b->gamma)
            for (int64_t r = 0; r < G; r++)
                for (int c = 0; c < C; c++)
                    t[r * C + c] *= b->gamma[c];
        for (int64_t k = 0; k < n; k++)
            x[k] += t[k];
    }
    return sotto_linear(cpu, &w->cnx_out, w->cnx_out_b, x, G, y);
}

size_t flexicodec_semantic_scratch(const flexicodec_hparams *hp, int64_t G)
{
    if (!hp || G < 0) return 0;
    return (size_t)G * (size_t)(hp->n_levels + hp->convnext_dim) +
           flexicodec_convnext_scratch(hp, G);
}

int flexicodec_semantic_decode(const sotto_cpu *cpu, const flexicodec_decoder_weights *w,
                               const int32_t *idx, int64_t G, float *y, float *scratch)
{
    if (!cpu || !w || G < 0 || (G && (!idx || !y || !scratch))) return SOTTO_ERR_INVALID_ARG;
    const flexicodec_hparams *hp = &w->hp;
    float *codes = scratch;
    float *x = codes + (size_t)G * (size_t)hp->n_levels;
    float *rest = x + (size_t)G * (size_t)hp->convnext_dim;
    int rc;
    if ((rc = flexicodec_fsq_codes(hp, idx, G, codes)) ||
        (rc = flexicodec_fsq_project_out(cpu, w, codes, G, x)))
        return rc;
    return flexicodec_convnext_decode(cpu, w, x, G, y, rest);
}

/* ---- acoustic branch ------------------------------------------------------------------- */

size_t flexicodec_rvq_scratch(const flexicodec_hparams *hp, int64_t G)
{
    if (!hp || G < 0) return 0;
    int d = 1;
    for (int i = 0; i < hp->n_codebooks; i++)
        if (hp->codebook_dim[i] > d) d = hp->codebook_dim[i];
    return (size_t)G * (size_t)d;
}

int flexicodec_rvq_decode(const sotto_cpu *cpu, const flexicodec_decoder_weights *w,
                          const int32_t *codes, int64_t G, int ldc, int n_q, float *y,
                          float *scratch)
{
    if (!cpu || !w || G < 0 || n_q < 0 || n_q > w->hp.n_codebooks || ldc < n_q ||
        (G && (!y || (n_q && (!codes || !scratch)))))
        return SOTTO_ERR_INVALID_ARG;
    const int lat = w->hp.latent_dim;
    if (G == 0) return SOTTO_OK;
    for (int64_t g = 0; g < G; g++)
        for (int q = 0; q < n_q; q++)
            if (codes[g * ldc + q] < 0 || codes[g * ldc + q] >= w->hp.codebook_size)
                return SOTTO_ERR_INVALID_ARG;
    if (n_q == 0) {
        memset(y, 0, sizeof(float) * (size_t)G * (size_t)lat);
        return SOTTO_OK;
    }
    for (int q = 0; q < n_q; q++) {
        const flexicodec_rvq_stage *s = &w->rvq[q];
        for (int64_t g = 0; g < G; g++)
            memcpy(scratch + g * s->dim, s->codebook + (int64_t)codes[g * ldc + q] * s->dim,
                   sizeof(float) * (size_t)s->dim);
        int rc = sotto_linear_ex(cpu, &s->out_proj, s->out_b, scratch, s->dim, G, y, lat, q > 0);
        if (rc) return rc;
    }
    return SOTTO_OK;
}

/* ---- expansion --------------------------------------------------------------------------- */

int64_t flexicodec_expanded_len(const int32_t *lengths, int64_t G)
{
    if (G < 0 || (G && !lengths)) return SOTTO_ERR_INVALID_ARG;
    int64_t T = 0;
    for (int64_t g = 0; g < G; g++) {
        if (lengths[g] < 0) return SOTTO_ERR_INVALID_ARG;
        T += lengths[g];
    }
    return T;
}

int64_t flexicodec_expand(const float *x, int64_t G, int C, const int32_t *lengths, float *y)
{
    const int64_t T = flexicodec_expanded_len(lengths, G);
    if (T < 0 || C < 1 || (T && (!x || !y))) return SOTTO_ERR_INVALID_ARG;
    int64_t t = 0;
    for (int64_t g = 0; g < G; g++)
        for (int32_t r = 0; r < lengths[g]; r++, t++)
            memcpy(y + t * C, x + g * C, sizeof(float) * (size_t)C);
    return T;
}

/* ---- DAC decoder ------------------------------------------------------------------------- */

/* Output length of one decoder block: a ConvTranspose1d k 2s, stride s, padding ceil(s/2). */
static int64_t block_out_len(int64_t L, int s)
{
    return L * s + s - 2 * ((s + 1) / 2);
}

int64_t flexicodec_dac_out_len(const flexicodec_hparams *hp, int64_t T)
{
    if (!hp || T < 0) return SOTTO_ERR_INVALID_ARG;
    if (T == 0) return 0;
    int64_t L = T;
    for (int i = 0; i < hp->n_rates; i++)
        L = block_out_len(L, hp->decoder_rates[i]);
    return L;
}

/* Floats of each of the three buffers X, A, B for T frames. */
static size_t dac_buf(const flexicodec_hparams *hp, int64_t T)
{
    const int64_t P = MAX_DILATION_PAD(hp), K = FLEXICODEC_DAC_K / 2;
    int64_t L = T, need = (T + 2 * K) * hp->latent_dim;
    if (T * hp->decoder_dim > need) need = T * hp->decoder_dim;
    for (int i = 0; i < hp->n_rates; i++) {
        const int s = hp->decoder_rates[i];
        const int64_t c_in = hp->decoder_dim >> i, c_out = hp->decoder_dim >> (i + 1);
        const int64_t full = L * s + s, out = block_out_len(L, s);
        const int64_t cand[3] = {L * c_in, full * c_out, (out + 2 * P) * c_out};
        for (int k = 0; k < 3; k++)
            if (cand[k] > need) need = cand[k];
        L = out;
    }
    const int64_t fin = (L + 2 * K) * (hp->decoder_dim >> hp->n_rates);
    return (size_t)(fin > need ? fin : need);
}

size_t flexicodec_dac_scratch(const flexicodec_hparams *hp, int64_t T)
{
    if (!hp || T <= 0) return 0;
    return 3 * dac_buf(hp, T);
}

int flexicodec_snake_padded(const sotto_cpu *cpu, const float *x, int64_t L, int C,
                            const float *alpha, int pad, float *dst)
{
    const size_t edge = sizeof(float) * (size_t)pad * (size_t)C;
    memset(dst, 0, edge);
    memset(dst + (L + pad) * C, 0, edge);
    return sotto_snake(cpu, x, L, C, alpha, dst + (int64_t)pad * C);
}

/* Rows per time chunk of a residual unit: the chunk's Snake output (with halo), conv7 output
 * and conv1 output stay in L2 (about 256 KiB each) instead of streaming whole-signal arrays
 * through memory five times: the narrow, long stages (32-96 channels at 4-16 kHz) ran the
 * same products 1.3-2.5 times slower from memory. */
static int64_t ru_chunk_rows(int C)
{
    const int64_t r = 65536 / (C > 0 ? C : 1);
    return r < 64 ? 64 : r;
}

int flexicodec_res_unit_run(const sotto_cpu *cpu, const flexicodec_res_unit *r, float *X, int64_t L,
                            int C, float *A, float *B)
{
    /* Chunk [t0, t1) of the output needs Snake(X) on [t0 − pad, t1 + pad), zero outside
     * [0, L). X is updated in place, so the left halo of the next chunk (rows [t1 − pad, t1),
     * Snake of the values before the update) is kept at the head of A from this chunk's A.
     * Every row is computed exactly as in one whole-signal pass: the GEMMs give each row the
     * same result for any row count, and no chunk but a whole signal of ≤ 16 rows has ≤ 16. */
    const int pad = 3 * r->dilation;
    const int64_t Tc = ru_chunk_rows(C);
    const size_t row = sizeof(float) * (size_t)C;
    int64_t rc;
    memset(A, 0, row * (size_t)pad); /* left of row 0 */
    for (int64_t t0 = 0; t0 < L;) {
        int64_t t1 = L - t0 < Tc + 32 ? L : t0 + Tc; /* no short tail chunk */
        const int64_t n = t1 - t0;
        /* A rows [pad, pad + n + pad) = Snake(X[t0, t1 + pad)), zeros past L */
        const int64_t have = L - t0 < n + pad ? L - t0 : n + pad;
        if ((rc = sotto_snake(cpu, X + t0 * C, have, C, r->alpha1, A + (int64_t)pad * C)))
            return (int)rc;
        if (have < n + pad) memset(A + (pad + have) * C, 0, row * (size_t)(n + pad - have));
        if ((rc = sotto_conv1d(cpu, &r->conv7, r->conv7_b, A, n + 2 * pad, B)) != n)
            return rc < 0 ? (int)rc : SOTTO_ERR_INTERNAL;
        /* the next chunk's left halo: Snake(X[t1 − pad, t1)) = A rows [n, n + pad) */
        memmove(A, A + n * C, row * (size_t)pad);
        float *Y = A + (int64_t)pad * C;
        if ((rc = sotto_snake(cpu, B, n, C, r->alpha2, B)) ||
            (rc = sotto_linear(cpu, &r->conv1, r->conv1_b, B, n, Y)))
            return (int)rc;
        float *x = X + t0 * C;
        const int64_t m = n * C;
        for (int64_t k = 0; k < m; k++)
            x[k] += Y[k];
        t0 = t1;
    }
    return SOTTO_OK;
}

int64_t flexicodec_dac_decode(const sotto_cpu *cpu, const flexicodec_decoder_weights *w,
                              const float *z, int64_t T, float *wave, float *scratch)
{
    if (!cpu || !w || T < 0 || (T && (!z || !wave || !scratch))) return SOTTO_ERR_INVALID_ARG;
    const flexicodec_hparams *hp = &w->hp;
    if (T == 0) return 0;
    const size_t S = dac_buf(hp, T);
    float *X = scratch, *A = X + S, *B = A + S;
    const int K = FLEXICODEC_DAC_K / 2;
    int64_t rc;

    /* conv k7 p3: latent → decoder_dim */
    const size_t edge = sizeof(float) * (size_t)K * (size_t)hp->latent_dim;
    memset(A, 0, edge);
    memcpy(A + (int64_t)K * hp->latent_dim, z, sizeof(float) * (size_t)T * hp->latent_dim);
    memset(A + (T + K) * hp->latent_dim, 0, edge);
    if ((rc = sotto_conv1d(cpu, &w->dac_in, w->dac_in_b, A, T + 2 * K, X)) != T)
        return rc < 0 ? rc : SOTTO_ERR_INTERNAL;

    int64_t L = T;
    for (int i = 0; i < hp->n_rates; i++) {
        const flexicodec_dac_block *b = &w->blocks[i];
        const int64_t out = block_out_len(L, b->stride);
        if ((rc = sotto_snake(cpu, X, L, b->c_in, b->alpha, A))) return rc;
        if ((rc = sotto_conv_transpose1d(cpu, &b->up, b->up_b, A, L, B)) !=
            L * b->stride + b->stride)
            return rc < 0 ? rc : SOTTO_ERR_INTERNAL;
        memcpy(X, B + (int64_t)b->padding * b->c_out, sizeof(float) * (size_t)(out * b->c_out));
        L = out;
        for (int j = 0; j < FLEXICODEC_RU_COUNT; j++)
            if ((rc = flexicodec_res_unit_run(cpu, &b->ru[j], X, L, b->c_out, A, B))) return rc;
    }

    const int c_last = hp->decoder_dim >> hp->n_rates;
    if ((rc = flexicodec_snake_padded(cpu, X, L, c_last, w->dac_alpha, K, A))) return rc;
    if ((rc = sotto_conv1d(cpu, &w->dac_out, w->dac_out_b, A, L + 2 * K, wave)) != L)
        return rc < 0 ? rc : SOTTO_ERR_INTERNAL;
    if ((rc = sotto_tanh(cpu, wave, L, wave))) return rc;
    return L;
}
