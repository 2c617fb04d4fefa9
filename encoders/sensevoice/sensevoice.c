/*
 * SenseVoice-Small encoder (sensevoice.h): configuration from metadata, loading under the
 * checkpoint's names, LFR + CMVN, and the whole-utterance SAN-M stack.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "encoders/sensevoice/sensevoice.h"

#define NAME_LEN 320
#define MAX_DIM (1 << 15)
#define MAX_BLOCKS 1024
#define MAX_FRAMES (1 << 22)

const int32_t sensevoice_default_queries[SENSEVOICE_N_QUERIES] = {0, 1, 2, 15};

static int cfg_ok(const sensevoice_cfg *c)
{
    if (c->n_mels < 1 || c->n_mels > 1024 || c->lfr_m < 1 || c->lfr_m > 64 || c->lfr_n < 1 ||
        c->lfr_n > 64 || c->input_size != c->n_mels * c->lfr_m || c->input_size % 2 ||
        c->input_size < 4)
        return 0;
    if (c->dim < 1 || c->dim > MAX_DIM || c->n_heads < 1 || c->dim % c->n_heads ||
        c->ffn_dim < 1 || c->ffn_dim > 4 * MAX_DIM || c->n_blocks < 1 ||
        c->n_blocks > MAX_BLOCKS)
        return 0;
    if (c->kernel_size < 1 || c->kernel_size > 255 || c->sanm_shift < 0 ||
        (c->kernel_size - 1) / 2 + c->sanm_shift > c->kernel_size - 1)
        return 0;
    return c->norm_eps > 0 && c->norm_eps < 1;
}

int sensevoice_cfg_from_gguf(const sotto_gguf *g, sensevoice_cfg *cfg, sotto_status *st)
{
    if (!g || !cfg) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    sensevoice_cfg c;
    memset(&c, 0, sizeof c);
    const struct {
        const char *key;
        int *v;
    } keys[] = {
        {"sensevoice.n_mels", &c.n_mels},           {"sensevoice.lfr_m", &c.lfr_m},
        {"sensevoice.lfr_n", &c.lfr_n},             {"sensevoice.input_size", &c.input_size},
        {"sensevoice.output_size", &c.dim},         {"sensevoice.attention_heads", &c.n_heads},
        {"sensevoice.linear_units", &c.ffn_dim},    {"sensevoice.num_blocks", &c.n_blocks},
        {"sensevoice.kernel_size", &c.kernel_size}, {"sensevoice.sanm_shift", &c.sanm_shift},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        int32_t v = 0;
        const int rc = sotto_gguf_get_i32(g, keys[i].key, &v, st);
        if (rc) return rc;
        *keys[i].v = v;
    }
    int rc = sotto_gguf_get_f32_or(g, "sensevoice.norm_eps", 1e-5f, &c.norm_eps, st);
    if (rc) return rc;
    c.n_embed = 16;
    if (!cfg_ok(&c))
        return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                "sensevoice.*: configuration out of range (mels %d, lfr %d/%d, "
                                "input %d, dim %d, heads %d, ffn %d, blocks %d, kernel %d, "
                                "shift %d)",
                                c.n_mels, c.lfr_m, c.lfr_n, c.input_size, c.dim, c.n_heads,
                                c.ffn_dim, c.n_blocks, c.kernel_size, c.sanm_shift);
    *cfg = c;
    return SOTTO_OK;
}

static void block_free(sensevoice_block *b, const sotto_alloc *a)
{
    float **v[] = {&b->norm1_w, &b->norm1_b, &b->qkv_b, &b->out_b, &b->norm2_w,
                   &b->norm2_b, &b->ff1_b,   &b->ff2_b};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        sotto_free(a, *v[i]);
        *v[i] = NULL;
    }
    sotto_linear_w_free(&b->qkv, a);
    sotto_linear_w_free(&b->out, a);
    sotto_linear_w_free(&b->ff1, a);
    sotto_linear_w_free(&b->ff2, a);
    sotto_conv1d_w_free(&b->fsmn, a);
}

int sensevoice_use_h16(sensevoice *sv, sotto_status *st)
{
    if (!sv) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    for (int i = 0; sv->blocks && i < sv->cfg.n_blocks; i++) {
        sensevoice_block *b = &sv->blocks[i];
        int rc;
        if ((rc = sotto_linear_w_use_h16(&b->qkv, &sv->alloc, st)) ||
            (rc = sotto_linear_w_use_h16(&b->out, &sv->alloc, st)) ||
            (rc = sotto_linear_w_use_h16(&b->ff1, &sv->alloc, st)) ||
            (rc = sotto_linear_w_use_h16(&b->ff2, &sv->alloc, st)))
            return rc;
    }
    return SOTTO_OK;
}

void sensevoice_free(sensevoice *sv)
{
    if (!sv) return;
    const sotto_alloc *a = &sv->alloc;
    if (sv->blocks) {
        for (int i = 0; i < sv->cfg.n_blocks; i++)
            block_free(&sv->blocks[i], a);
        sotto_free(a, sv->blocks);
    }
    sotto_free(a, sv->cmvn_shift);
    sotto_free(a, sv->cmvn_scale);
    sotto_free(a, sv->embed);
    sotto_free(a, sv->pos_inv);
    sotto_free(a, sv->after_w);
    sotto_free(a, sv->after_b);
    sotto_alloc alloc = sv->alloc;
    memset(sv, 0, sizeof *sv);
    sv->alloc = alloc;
}

/* Checked copy of a tensor of n_dims dims (shape), as floats. */
static int load_vec(const sotto_gguf *g, const char *name, int n_dims, const int64_t *shape,
                    const sotto_alloc *a, float **out, sotto_status *st)
{
    const sotto_gguf_tensor *t = NULL;
    int rc = sotto_gguf_tensor_check(g, name, -1, n_dims, shape, &t, st);
    if (rc) return rc;
    int64_t n = 1;
    for (int i = 0; i < n_dims; i++)
        n *= shape[i];
    rc = sotto_vec_init(out, t, n, a, st);
    if (!rc) sotto_gguf_tensor_release(g, t);
    return rc;
}

static int load_block(sensevoice *sv, const sotto_gguf *g, const char *pre, int in,
                      sensevoice_block *b, sotto_status *st)
{
    const sensevoice_cfg *c = &sv->cfg;
    const sotto_alloc *a = &sv->alloc;
    const int64_t d = c->dim, f = c->ffn_dim;
    char name[NAME_LEN + 64];
    int rc;
    b->in = in;
#define NM(key) (snprintf(name, sizeof name, "%s%s", pre, key), name)
#define VEC(key, n, dst)                                                                      \
    do {                                                                                      \
        const int64_t sh_[1] = {(n)};                                                         \
        if ((rc = load_vec(g, NM(key), 1, sh_, a, (dst), st))) return rc;                      \
    } while (0)
    VEC("norm1.weight", in, &b->norm1_w);
    VEC("norm1.bias", in, &b->norm1_b);
    if ((rc = sotto_linear_w_load(&b->qkv, g, NM("self_attn.linear_q_k_v.weight"), 3 * d, in, 0,
                                  a, st)))
        return rc;
    VEC("self_attn.linear_q_k_v.bias", 3 * d, &b->qkv_b);
    if ((rc = sotto_conv1d_w_load(&b->fsmn, g, NM("self_attn.fsmn_block.weight"), d, 1,
                                  c->kernel_size, 1, 1, (int)d, a, st)))
        return rc;
    if ((rc = sotto_linear_w_load(&b->out, g, NM("self_attn.linear_out.weight"), d, d, 0, a, st)))
        return rc;
    VEC("self_attn.linear_out.bias", d, &b->out_b);
    VEC("norm2.weight", d, &b->norm2_w);
    VEC("norm2.bias", d, &b->norm2_b);
    if ((rc = sotto_linear_w_load(&b->ff1, g, NM("feed_forward.w_1.weight"), f, d, 0, a, st)))
        return rc;
    VEC("feed_forward.w_1.bias", f, &b->ff1_b);
    if ((rc = sotto_linear_w_load(&b->ff2, g, NM("feed_forward.w_2.weight"), d, f, 0, a, st)))
        return rc;
    VEC("feed_forward.w_2.bias", d, &b->ff2_b);
#undef VEC
#undef NM
    return SOTTO_OK;
}

static int load_all(sensevoice *sv, const sotto_gguf *g, const char *prefix, sotto_status *st)
{
    sensevoice_cfg *c = &sv->cfg;
    const sotto_alloc *a = &sv->alloc;
    char name[NAME_LEN];
    const int64_t in = c->input_size;
    int rc;
    if ((rc = load_vec(g, "sensevoice.cmvn.shift", 1, &in, a, &sv->cmvn_shift, st)) ||
        (rc = load_vec(g, "sensevoice.cmvn.scale", 1, &in, a, &sv->cmvn_scale, st)))
        return rc;
    /* the query table: its row count is read off the file (16 in SenseVoiceSmall) */
    snprintf(name, sizeof name, "%sembed.weight", prefix);
    const sotto_gguf_tensor *t = sotto_gguf_find_tensor(g, name);
    if (!t) return sotto_status_set(st, SOTTO_ERR_MODEL, "missing tensor '%s'", name);
    const int64_t esh[2] = {t->n_dims == 2 ? t->shape[0] : 0, in};
    if (esh[0] < 16 || esh[0] > 4096)
        return sotto_status_set(st, SOTTO_ERR_MODEL, "tensor '%s': expected [16+, %lld]", name,
                                (long long)in);
    c->n_embed = (int)esh[0];
    if ((rc = load_vec(g, name, 2, esh, a, &sv->embed, st))) return rc;
    const int64_t d = c->dim;
    snprintf(name, sizeof name, "%sencoder.after_norm.weight", prefix);
    if ((rc = load_vec(g, name, 1, &d, a, &sv->after_w, st))) return rc;
    snprintf(name, sizeof name, "%sencoder.after_norm.bias", prefix);
    if ((rc = load_vec(g, name, 1, &d, a, &sv->after_b, st))) return rc;
    /* a block beyond the configured count means the metadata is wrong */
    snprintf(name, sizeof name, "%sencoder.encoders.%d.norm1.weight", prefix, c->n_blocks - 1);
    if (sotto_gguf_find_tensor(g, name))
        return sotto_status_set(st, SOTTO_ERR_MODEL,
                                "tensor '%s': the file has more than the %d blocks configured",
                                name, c->n_blocks);
    sv->pos_inv = sotto_calloc(a, (size_t)(in / 2), sizeof(float));
    sv->blocks = sotto_calloc(a, (size_t)c->n_blocks, sizeof *sv->blocks);
    if (!sv->pos_inv || !sv->blocks)
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    /* as torch in float32: inc = ln(10000)/(depth/2 − 1), inv_j = exp(j·(−inc)) */
    const float inc = logf(10000.0f) / (float)(in / 2 - 1);
    for (int64_t j = 0; j < in / 2; j++)
        sv->pos_inv[j] = expf((float)j * -inc);
    for (int i = 0; i < c->n_blocks; i++) {
        if (i == 0)
            snprintf(name, sizeof name, "%sencoder.encoders0.0.", prefix);
        else
            snprintf(name, sizeof name, "%sencoder.encoders.%d.", prefix, i - 1);
        if ((rc = load_block(sv, g, name, i == 0 ? (int)in : c->dim, &sv->blocks[i], st)))
            return rc;
    }
    return SOTTO_OK;
}

int sensevoice_load(sensevoice *sv, const sotto_gguf *g, const char *prefix,
                    const sensevoice_cfg *cfg, const sotto_alloc *alloc, sotto_status *st)
{
    if (!sv) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    memset(sv, 0, sizeof *sv);
    if (alloc)
        sv->alloc = *alloc;
    else
        sotto_alloc_init(&sv->alloc, NULL);
    if (!g || !prefix || !cfg) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    if (strlen(prefix) > 200)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "tensor prefix too long");
    if (!cfg_ok(cfg))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "sensevoice: configuration out of range");
    sv->cfg = *cfg;
    const int rc = load_all(sv, g, prefix, st);
    if (rc) sensevoice_free(sv);
    return rc;
}

/* ---- front end ---------------------------------------------------------------------------- */

int64_t sensevoice_lfr_frames(int64_t T, int n)
{
    if (T <= 0 || n < 1) return 0;
    return (T + n - 1) / n;
}

int64_t sensevoice_lfr(const float *x, int64_t T, int n_mels, int m, int n, float *y)
{
    if (!x || !y || T < 1 || T > MAX_FRAMES || n_mels < 1 || m < 1 || n < 1)
        return SOTTO_ERR_INVALID_ARG;
    const int64_t tl = sensevoice_lfr_frames(T, n), left = (m - 1) / 2;
    if (!(x + T * n_mels <= y || y + tl * m * n_mels <= x)) return SOTTO_ERR_INVALID_ARG;
    for (int64_t i = 0; i < tl; i++)
        for (int j = 0; j < m; j++) {
            int64_t r = i * n + j - left;
            r = r < 0 ? 0 : r >= T ? T - 1 : r;
            memcpy(y + (i * m + j) * n_mels, x + r * n_mels, sizeof(float) * (size_t)n_mels);
        }
    return tl;
}

int64_t sensevoice_lfr_cmvn(const sensevoice *sv, const float *fbank, int64_t T, float *y)
{
    if (!sv || !sv->cmvn_shift) return SOTTO_ERR_INVALID_ARG;
    const sensevoice_cfg *c = &sv->cfg;
    const int64_t tl = sensevoice_lfr(fbank, T, c->n_mels, c->lfr_m, c->lfr_n, y);
    if (tl < 0) return tl;
    const int in = c->input_size;
    for (int64_t i = 0; i < tl; i++) {
        float *r = y + i * in;
        for (int k = 0; k < in; k++)
            r[k] = (r[k] + sv->cmvn_shift[k]) * sv->cmvn_scale[k];
    }
    return tl;
}

/* ---- encoder ------------------------------------------------------------------------------ */

/* Scratch layout for T' = T_lfr + 4 positions (floats):
 *   xin [T'][in]   cur [T'][d]   h [T'][max(in, d)]   qkv [T'][3d]
 *   vpad [T' + k − 1][d]   mem [T'][d]   att [T'][d]   ffh [T'][ffn]
 *   kt [D][r16(T')] (one head's keys, transposed)   S [QBLOCK][T'] (a block of scores) */
#define QBLOCK 64
typedef struct layout {
    float *xin, *cur, *h, *qkv, *vpad, *mem, *att, *ffh, *kt, *S;
    size_t total;
} layout;

static int make_layout(const sensevoice_cfg *c, int64_t T, float *base, layout *L)
{
    const double tp = (double)T, in = c->input_size, d = c->dim;
    const double hw = in > d ? in : d, D = (double)(c->dim / c->n_heads);
    const double sizes[10] = {tp * in, tp * d, tp * hw, tp * 3 * d, (tp + c->kernel_size - 1) * d,
                              tp * d, tp * d, tp * c->ffn_dim, D * (tp + 16), QBLOCK * tp};
    double tot = 0;
    for (int i = 0; i < 10; i++)
        tot += sizes[i] + 16; /* keep every part 64-byte aligned */
    if (tot > (double)(SIZE_MAX / sizeof(float)) / 2) return 0;
    float **dst[10] = {&L->xin, &L->cur, &L->h,   &L->qkv, &L->vpad,
                       &L->mem, &L->att, &L->ffh, &L->kt,  &L->S};
    size_t off = 0;
    for (int i = 0; i < 10; i++) {
        if (base) *dst[i] = base + off;
        off += ((size_t)sizes[i] + 15) / 16 * 16;
    }
    L->total = off;
    return 1;
}

size_t sensevoice_scratch_size(const sensevoice *sv, int64_t T_lfr)
{
    if (!sv || !sv->blocks || T_lfr < 0 || T_lfr > MAX_FRAMES) return 0;
    layout L;
    if (!make_layout(&sv->cfg, T_lfr + SENSEVOICE_N_QUERIES, NULL, &L)) return 0;
    return L.total;
}

/* Softmax attention of all T queries over all T keys, per head, into att[T][d]; q, k, v are
 * column blocks of qkv[T][3d]. Both products run on the context's GEMMs: a head's keys are
 * transposed into kt [D][r16(T)] so scores = q·kᵀ is a Linear with kᵀ as its weight, and
 * v is read in place as the weight of o = softmax(scale·scores)·v; queries go in blocks of
 * QBLOCK rows (S). */
static int attention(const sotto_cpu *cpu, const float *qkv, int64_t T, int d, int H,
                     float scale, float *kt, float *S, float *att)
{
    const int D = d / H;
    const int64_t ldk = (T + 15) / 16 * 16, ld = 3 * (int64_t)d;
    int rc = SOTTO_OK;
    for (int hh = 0; hh < H && !rc; hh++) {
        for (int i = 0; i < D; i++) {
            float *kr = kt + (int64_t)i * ldk;
            const float *k = qkv + d + (int64_t)hh * D + i;
            for (int64_t s = 0; s < T; s++)
                kr[s] = k[s * ld];
            for (int64_t s = T; s < ldk; s++)
                kr[s] = 0.0f;
        }
        const sotto_linear_w wk = {.n_out = (int)T, .n_in = D, .ldw = (int)ldk, .w = kt};
        const sotto_linear_w wv = {
            .n_out = D, .n_in = (int)T, .ldw = (int)ld, .w = (float *)(qkv + 2 * d + hh * D)};
        for (int64_t b0 = 0; b0 < T && !rc; b0 += QBLOCK) {
            const int64_t mb = T - b0 < QBLOCK ? T - b0 : QBLOCK;
            if ((rc = sotto_linear_ex(cpu, &wk, NULL, qkv + b0 * ld + hh * D, ld, mb, S, T, 0)))
                break;
            for (int64_t i = 0; i < mb * T; i++)
                S[i] *= scale;
            if ((rc = sotto_softmax(cpu, S, mb, (int)T, S))) break;
            rc = sotto_linear_ex(cpu, &wv, NULL, S, T, mb, att + b0 * d + hh * D, d, 0);
        }
    }
    return rc;
}

/* One block: x[T][b->in] → y[T][d] (y may be x only when in == d). */
static int block_forward(const sotto_cpu *cpu, const sensevoice *sv, const sensevoice_block *b,
                         const float *x, int64_t T, float *y, const layout *L)
{
    const sensevoice_cfg *c = &sv->cfg;
    const int d = c->dim, in = b->in, k = c->kernel_size;
    const int left = (k - 1) / 2 + c->sanm_shift, right = k - 1 - left;
    int rc;
    if ((rc = sotto_layernorm(cpu, x, T, in, b->norm1_w, b->norm1_b, c->norm_eps, L->h)) ||
        (rc = sotto_linear(cpu, &b->qkv, b->qkv_b, L->h, T, L->qkv)))
        return rc;
    /* FSMN memory on v: zero-padded depthwise conv (no bias) plus v itself */
    memset(L->vpad, 0, sizeof(float) * (size_t)(left * d));
    memset(L->vpad + (T + left) * d, 0, sizeof(float) * (size_t)(right * d));
    for (int64_t t = 0; t < T; t++)
        memcpy(L->vpad + (t + left) * d, L->qkv + t * 3 * d + 2 * d, sizeof(float) * (size_t)d);
    const int64_t tc = sotto_conv1d(cpu, &b->fsmn, NULL, L->vpad, T + k - 1, L->mem);
    if (tc != T) return tc < 0 ? (int)tc : SOTTO_ERR_INTERNAL;
    for (int64_t t = 0; t < T; t++) {
        float *m = L->mem + t * d;
        const float *v = L->vpad + (t + left) * d;
        for (int i = 0; i < d; i++)
            m[i] += v[i];
    }
    if ((rc = attention(cpu, L->qkv, T, d, c->n_heads, 1.0f / sqrtf((float)(d / c->n_heads)),
                        L->kt, L->S, L->att)))
        return rc;
    /* a = linear_out(att) + fsmn; block 0 (in ≠ d) has no residual */
    if (in == d) {
        if (y != x) memcpy(y, x, sizeof(float) * (size_t)(T * d));
        for (int64_t i = 0; i < T * d; i++)
            y[i] += L->mem[i];
        if ((rc = sotto_linear_ex(cpu, &b->out, b->out_b, L->att, d, T, y, d, 1))) return rc;
    } else {
        memcpy(y, L->mem, sizeof(float) * (size_t)(T * d));
        if ((rc = sotto_linear_ex(cpu, &b->out, b->out_b, L->att, d, T, y, d, 1))) return rc;
    }
    /* x += w_2(ReLU(w_1(LN2(x)))) */
    if ((rc = sotto_layernorm(cpu, y, T, d, b->norm2_w, b->norm2_b, c->norm_eps, L->h)) ||
        (rc = sotto_linear(cpu, &b->ff1, b->ff1_b, L->h, T, L->ffh)))
        return rc;
    for (int64_t i = 0; i < T * c->ffn_dim; i++)
        L->ffh[i] = L->ffh[i] > 0 ? L->ffh[i] : 0;
    return sotto_linear_ex(cpu, &b->ff2, b->ff2_b, L->ffh, c->ffn_dim, T, y, d, 1);
}

int sensevoice_embed_input(const sensevoice *sv, const int32_t *queries, const float *x,
                           int64_t T_lfr, float *xin)
{
    if (!sv || !sv->embed || !sv->pos_inv || T_lfr < 0 || T_lfr > MAX_FRAMES || (T_lfr && !x) ||
        !xin)
        return SOTTO_ERR_INVALID_ARG;
    const sensevoice_cfg *c = &sv->cfg;
    const int in = c->input_size, d = c->dim, nq = SENSEVOICE_N_QUERIES;
    if (!queries) queries = sensevoice_default_queries;
    for (int i = 0; i < nq; i++)
        if (queries[i] < 0 || queries[i] >= c->n_embed) return SOTTO_ERR_INVALID_ARG;
    const int64_t T = T_lfr + nq;
    /* [queries; x] · sqrt(d) + sinusoid(positions 1 …) */
    for (int i = 0; i < nq; i++)
        memcpy(xin + (int64_t)i * in, sv->embed + (int64_t)queries[i] * in,
               sizeof(float) * (size_t)in);
    if (T_lfr) memcpy(xin + (int64_t)nq * in, x, sizeof(float) * (size_t)(T_lfr * in));
    const float sc = sqrtf((float)d);
    const int half = in / 2;
    for (int64_t t = 0; t < T; t++) {
        float *r = xin + t * in;
        const float p = (float)(t + 1);
        for (int j = 0; j < half; j++) {
            const float a = p * sv->pos_inv[j];
            r[j] = r[j] * sc + sinf(a);
            r[half + j] = r[half + j] * sc + cosf(a);
        }
    }
    return SOTTO_OK;
}

int sensevoice_encode(const sotto_cpu *cpu, const sensevoice *sv, const int32_t *queries,
                      const float *x, int64_t T_lfr, float *y, float *scratch)
{
    if (!cpu || !sv || !sv->blocks || T_lfr < 0 || T_lfr > MAX_FRAMES)
        return SOTTO_ERR_INVALID_ARG;
    if (T_lfr == 0) return SOTTO_OK;
    if (!x || !y || !scratch) return SOTTO_ERR_INVALID_ARG;
    const sensevoice_cfg *c = &sv->cfg;
    const int d = c->dim, nq = SENSEVOICE_N_QUERIES;
    const int64_t T = T_lfr + nq;
    layout L;
    if (!make_layout(c, T, scratch, &L)) return SOTTO_ERR_INVALID_ARG;
    int rc = sensevoice_embed_input(sv, queries, x, T_lfr, L.xin);
    if (rc) return rc;
    rc = block_forward(cpu, sv, &sv->blocks[0], L.xin, T, L.cur, &L);
    for (int i = 1; i < c->n_blocks && !rc; i++)
        rc = block_forward(cpu, sv, &sv->blocks[i], L.cur, T, L.cur, &L);
    if (rc) return rc;
    return sotto_layernorm(cpu, L.cur + (int64_t)nq * d, T_lfr, d, sv->after_w, sv->after_b,
                           c->norm_eps, y);
}
