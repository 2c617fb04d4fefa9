/*
 * FlexiCodec encode side without SenseVoice (encode.h): the loader of the encode-side weights
 * and the stages of FlexiCodec.forward_features(encode_only=True), offline over whole
 * utterances. The DAC encoder runs in three scratch buffers X, A, B as the decoder does
 * (decode.c): X holds the activation, a Snake writes into the middle of a zero-edged copy in A
 * so that a torch-padded conv is a valid conv over A.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codecs/flexicodec/encode.h"

#define NAME_LEN 192

/* ---- loading ------------------------------------------------------------------------------ */

/* Elements of every tensor not stored as f32 (an upper bound of what tensor_f32 converts). */
static size_t convert_elems(const sotto_gguf *g)
{
    size_t n = 0;
    for (int64_t i = 0; i < sotto_gguf_tensor_count(g); i++) {
        const sotto_gguf_tensor *t = sotto_gguf_tensor_at(g, i);
        if (t->dtype != SOTTO_DTYPE_F32) n += (size_t)t->n_elems;
    }
    return n;
}

static int vec(flexicodec_encoder_weights *w, const sotto_gguf *g, const char *name, int64_t n,
               int alpha, const float **out, sotto_status *st)
{
    int64_t s1[1] = {n}, s3[3] = {1, n, 1};
    return alpha ? sotto_gguf_tensor_f32(g, name, 3, s3, &w->owned, out, st)
                 : sotto_gguf_tensor_f32(g, name, 1, s1, &w->owned, out, st);
}

static int linear(sotto_linear_w *l, const sotto_gguf *g, const sotto_alloc *a, const char *name,
                  int64_t n_out, int64_t n_in, int in_k1, sotto_status *st)
{
    return sotto_linear_w_load(l, g, name, n_out, n_in, in_k1, a, st);
}

static int conv(sotto_conv1d_w *c, const sotto_gguf *g, const sotto_alloc *a, const char *name,
                int64_t c_out, int64_t c_in_g, int64_t k, int stride, int dilation, int groups,
                sotto_status *st)
{
    return sotto_conv1d_w_load(c, g, name, c_out, c_in_g, k, stride, dilation, groups, a, st);
}

static int arr_i32(const sotto_gguf *g, const char *key, int *out, size_t cap, int *n,
                   sotto_status *st)
{
    int64_t v[FLEXICODEC_MAX_ENC_RATES];
    size_t got = 0;
    if (cap > FLEXICODEC_MAX_ENC_RATES) cap = FLEXICODEC_MAX_ENC_RATES;
    int rc = sotto_gguf_get_arr_i64(g, key, v, cap, &got, st);
    if (rc) return rc;
    for (size_t i = 0; i < got; i++) {
        if (v[i] < 1 || v[i] > 1 << 16)
            return sotto_status_set(st, SOTTO_ERR_FORMAT, "%s[%zu] = %lld out of range", key, i,
                                    (long long)v[i]);
        out[i] = (int)v[i];
    }
    *n = (int)got;
    return SOTTO_OK;
}

static int get_hparams(const sotto_gguf *g, const flexicodec_hparams *dh,
                       flexicodec_encoder_hparams *hp, sotto_status *st)
{
    int rc, n_dil = 0;
    memset(hp, 0, sizeof *hp);
    hp->sample_rate = dh->sample_rate;
    hp->latent_dim = dh->latent_dim;
    hp->convnext_dim = dh->convnext_dim;
    hp->convnext_intermediate = dh->convnext_intermediate;
    hp->convnext_layers = dh->convnext_layers;
    hp->convnext_causal = dh->convnext_causal;
    hp->convnext_eps = dh->convnext_eps;
    hp->n_levels = dh->n_levels;
    memcpy(hp->fsq_levels, dh->fsq_levels, sizeof hp->fsq_levels);
    hp->n_codebooks = dh->n_codebooks;
    if ((rc = sotto_gguf_get_i32(g, "flexicodec.encoder_dim", &hp->encoder_dim, st)) ||
        (rc = arr_i32(g, "flexicodec.encoder_rates", hp->encoder_rates, FLEXICODEC_MAX_ENC_RATES,
                      &hp->n_rates, st)) ||
        (rc = arr_i32(g, "flexicodec.encoder_dilations", hp->dilations, FLEXICODEC_RU_COUNT, &n_dil,
                      st)) ||
        (rc = sotto_gguf_get_i32(g, "flexicodec.ssl_dim", &hp->ssl_dim, st)) ||
        (rc =
             sotto_gguf_get_f32_or(g, "flexicodec.fsq_bound_eps", 1e-3f, &hp->fsq_bound_eps, st)) ||
        (rc = sotto_gguf_get_f32_or(g, "flexicodec.merge_cosine_eps", 1e-8f, &hp->merge_eps, st)) ||
        (rc = sotto_gguf_get_f32_or(g, "flexicodec.similarity_threshold", 0.91f,
                                    &hp->default_threshold, st)) ||
        (rc = sotto_gguf_get_i32_or(g, "flexicodec.max_tokens_per_group", 8,
                                    &hp->max_tokens_per_group, st)))
        return rc;
    hp->downsample_factor = 1.33333;
    if (sotto_gguf_find_kv(g, "flexicodec.semantic_downsample_factor") &&
        (rc = sotto_gguf_get_f64(g, "flexicodec.semantic_downsample_factor", &hp->downsample_factor,
                                 st)))
        return rc;
    if (!(hp->downsample_factor >= 1.0 && hp->downsample_factor <= 64.0))
        return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                "flexicodec.semantic_downsample_factor %g out of range 1..64",
                                hp->downsample_factor);
    int64_t hop = 1;
    for (int i = 0; i < hp->n_rates; i++)
        hop *= hp->encoder_rates[i];
    hp->hop_length = (int)(hop > INT32_MAX ? -1 : hop);
    if (hop != dh->hop_length || hp->n_rates < 1 || n_dil != FLEXICODEC_RU_COUNT ||
        hp->encoder_dim < 1 || ((int64_t)hp->encoder_dim << hp->n_rates) > 65536 ||
        hp->ssl_dim < 1 || hp->ssl_dim > 65536 || hp->max_tokens_per_group < 0 ||
        !(hp->fsq_bound_eps >= 0.0f && hp->fsq_bound_eps < 1.0f) || !(hp->merge_eps >= 0.0f))
        return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                "flexicodec encoder hyperparameters out of range or inconsistent "
                                "(encoder_dim %d over %d rates, hop %lld vs the decoder's %d, "
                                "ssl_dim %d, max_tokens_per_group %d)",
                                hp->encoder_dim, hp->n_rates, (long long)hop, dh->hop_length,
                                hp->ssl_dim, hp->max_tokens_per_group);
    for (int j = 0; j < FLEXICODEC_RU_COUNT; j++)
        if (hp->dilations[j] > 64)
            return sotto_status_set(st, SOTTO_ERR_FORMAT, "flexicodec.encoder_dilations[%d] = %d",
                                    j, hp->dilations[j]);
    return SOTTO_OK;
}

static int load_res_unit(flexicodec_encoder_weights *w, const sotto_gguf *g, const char *base,
                         int C, int dilation, flexicodec_res_unit *r, sotto_status *st)
{
    char name[NAME_LEN];
    int rc;
    r->dilation = dilation;
#define RU(field) (snprintf(name, sizeof name, "%s.block.%s", base, field), name)
    if ((rc = vec(w, g, RU("0.alpha"), C, 1, &r->alpha1, st)) ||
        (rc = conv(&r->conv7, g, &w->alloc, RU("1.weight"), C, C, FLEXICODEC_DAC_K, 1, dilation, 1,
                   st)) ||
        (rc = vec(w, g, RU("1.bias"), C, 0, &r->conv7_b, st)) ||
        (rc = vec(w, g, RU("2.alpha"), C, 1, &r->alpha2, st)) ||
        (rc = linear(&r->conv1, g, &w->alloc, RU("3.weight"), C, C, 1, st)) ||
        (rc = vec(w, g, RU("3.bias"), C, 0, &r->conv1_b, st)))
        return rc;
#undef RU
    return SOTTO_OK;
}

static int load_dac_encoder(flexicodec_encoder_weights *w, const sotto_gguf *g, sotto_status *st)
{
    const flexicodec_encoder_hparams *hp = &w->hp;
    char name[NAME_LEN], base[NAME_LEN / 2];
    int rc;
    if ((rc = conv(&w->dac_in, g, &w->alloc, "dac.encoder.block.0.weight", hp->encoder_dim, 1,
                   FLEXICODEC_DAC_K, 1, 1, 1, st)) ||
        (rc = vec(w, g, "dac.encoder.block.0.bias", hp->encoder_dim, 0, &w->dac_in_b, st)))
        return rc;
    w->blocks = sotto_calloc(&w->alloc, (size_t)hp->n_rates, sizeof *w->blocks);
    if (!w->blocks) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    for (int i = 0; i < hp->n_rates; i++) {
        flexicodec_enc_block *b = &w->blocks[i];
        b->c_in = hp->encoder_dim << i;
        b->c_out = b->c_in * 2;
        b->stride = hp->encoder_rates[i];
        b->padding = (b->stride + 1) / 2;
        for (int j = 0; j < FLEXICODEC_RU_COUNT; j++) {
            snprintf(base, sizeof base, "dac.encoder.block.%d.block.%d", i + 1, j);
            if ((rc = load_res_unit(w, g, base, b->c_in, hp->dilations[j], &b->ru[j], st)))
                return rc;
        }
        snprintf(name, sizeof name, "dac.encoder.block.%d.block.3.alpha", i + 1);
        if ((rc = vec(w, g, name, b->c_in, 1, &b->alpha, st))) return rc;
        snprintf(name, sizeof name, "dac.encoder.block.%d.block.4.weight", i + 1);
        if ((rc = conv(&b->down, g, &w->alloc, name, b->c_out, b->c_in, 2 * b->stride, b->stride, 1,
                       1, st)))
            return rc;
        snprintf(name, sizeof name, "dac.encoder.block.%d.block.4.bias", i + 1);
        if ((rc = vec(w, g, name, b->c_out, 0, &b->down_b, st))) return rc;
    }
    const int c_last = hp->encoder_dim << hp->n_rates;
    snprintf(name, sizeof name, "dac.encoder.block.%d.alpha", hp->n_rates + 1);
    if ((rc = vec(w, g, name, c_last, 1, &w->dac_alpha, st))) return rc;
    snprintf(name, sizeof name, "dac.encoder.block.%d.weight", hp->n_rates + 2);
    if ((rc = conv(&w->dac_out, g, &w->alloc, name, hp->latent_dim, c_last, 3, 1, 1, 1, st)))
        return rc;
    snprintf(name, sizeof name, "dac.encoder.block.%d.bias", hp->n_rates + 2);
    return vec(w, g, name, hp->latent_dim, 0, &w->dac_out_b, st);
}

static int load_convnext_block(flexicodec_encoder_weights *w, const sotto_gguf *g, int i,
                               flexicodec_convnext_block *b, sotto_status *st)
{
    const int C = w->hp.convnext_dim, I = w->hp.convnext_intermediate;
    char name[NAME_LEN];
    int rc;
#define CNX(field) (snprintf(name, sizeof name, "convnext_encoder.%d.%s", i, field), name)
    if ((rc = conv(&b->dw, g, &w->alloc, CNX("dwconv.weight"), C, 1, FLEXICODEC_CONVNEXT_K, 1, 1, C,
                   st)) ||
        (rc = vec(w, g, CNX("dwconv.bias"), C, 0, &b->dw_b, st)) ||
        (rc = vec(w, g, CNX("norm.weight"), C, 0, &b->ln_w, st)) ||
        (rc = vec(w, g, CNX("norm.bias"), C, 0, &b->ln_b, st)) ||
        (rc = linear(&b->pw1, g, &w->alloc, CNX("pwconv1.weight"), I, C, 0, st)) ||
        (rc = vec(w, g, CNX("pwconv1.bias"), I, 0, &b->pw1_b, st)) ||
        (rc = linear(&b->pw2, g, &w->alloc, CNX("pwconv2.weight"), C, I, 0, st)) ||
        (rc = vec(w, g, CNX("pwconv2.bias"), C, 0, &b->pw2_b, st)))
        return rc;
    b->gamma = NULL;
    if (sotto_gguf_find_tensor(g, CNX("gamma"))) return vec(w, g, name, C, 0, &b->gamma, st);
#undef CNX
    return SOTTO_OK;
}

static int load_semantic(flexicodec_encoder_weights *w, const sotto_gguf *g, sotto_status *st)
{
    const flexicodec_encoder_hparams *hp = &w->hp;
    int rc;
    if ((rc = linear(&w->cnx_in, g, &w->alloc, "convnext_encoder.0.weight", hp->convnext_dim,
                     hp->ssl_dim, 1, st)) ||
        (rc = vec(w, g, "convnext_encoder.0.bias", hp->convnext_dim, 0, &w->cnx_in_b, st)))
        return rc;
    w->cnx = sotto_calloc(&w->alloc, (size_t)hp->convnext_layers + 1, sizeof *w->cnx);
    if (!w->cnx) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    for (int i = 0; i < hp->convnext_layers; i++)
        if ((rc = load_convnext_block(w, g, i + 1, &w->cnx[i], st))) return rc;
    if ((rc = linear(&w->fsq_in, g, &w->alloc, "semantic_vq.fsq.project_in.weight", hp->n_levels,
                     hp->convnext_dim, 0, st)))
        return rc;
    return vec(w, g, "semantic_vq.fsq.project_in.bias", hp->n_levels, 0, &w->fsq_in_b, st);
}

static int load_rvq(flexicodec_encoder_weights *w, const sotto_gguf *g,
                    const flexicodec_decoder_weights *dec, sotto_status *st)
{
    const int n = w->hp.n_codebooks, lat = w->hp.latent_dim;
    char name[NAME_LEN];
    int rc;
    w->rvq_in = sotto_calloc(&w->alloc, (size_t)n + 1, sizeof *w->rvq_in);
    w->rvq_in_b = sotto_calloc(&w->alloc, (size_t)n + 1, sizeof *w->rvq_in_b);
    w->rvq_cb_norm = sotto_calloc(&w->alloc, (size_t)n + 1, sizeof *w->rvq_cb_norm);
    w->rvq_cb_sq = sotto_calloc(&w->alloc, (size_t)n + 1, sizeof *w->rvq_cb_sq);
    if (!w->rvq_in || !w->rvq_in_b || !w->rvq_cb_norm || !w->rvq_cb_sq)
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    for (int i = 0; i < n; i++) {
        const int d = dec->rvq[i].dim, size = dec->hp.codebook_size;
        snprintf(name, sizeof name, "dac.quantizer.quantizers.%d.in_proj.weight", i);
        if ((rc = linear(&w->rvq_in[i], g, &w->alloc, name, d, lat, 1, st))) return rc;
        snprintf(name, sizeof name, "dac.quantizer.quantizers.%d.in_proj.bias", i);
        if ((rc = vec(w, g, name, d, 0, &w->rvq_in_b[i], st))) return rc;
        float *cn = sotto_malloc(&w->alloc, sizeof(float) * (size_t)size * (size_t)d);
        float *sq = sotto_malloc(&w->alloc, sizeof(float) * (size_t)size);
        w->rvq_cb_norm[i] = cn;
        w->rvq_cb_sq[i] = sq;
        if (!cn || !sq) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
        /* F.normalize: row / max(‖row‖, 1e-12), then the squared norms of those rows */
        for (int r = 0; r < size; r++) {
            const float *row = dec->rvq[i].codebook + (int64_t)r * d;
            double s = 0.0;
            for (int k = 0; k < d; k++)
                s += (double)row[k] * row[k];
            float nrm = (float)sqrt(s);
            if (nrm < 1e-12f) nrm = 1e-12f;
            double q = 0.0;
            for (int k = 0; k < d; k++) {
                cn[(int64_t)r * d + k] = row[k] / nrm;
                q += (double)cn[(int64_t)r * d + k] * cn[(int64_t)r * d + k];
            }
            sq[r] = (float)q;
        }
    }
    return SOTTO_OK;
}

static int load_aggregator(flexicodec_encoder_weights *w, const sotto_gguf *g, const char *which,
                           int in_out_expected, flexicodec_aggregator *a, sotto_status *st)
{
    char key[NAME_LEN], name[NAME_LEN];
    flexicodec_bottleneck_cfg cfg;
    int32_t io = 0;
    int rc;
    snprintf(key, sizeof key, "flexicodec.%s_aggregator.", which);
    if ((rc = flexicodec_bottleneck_cfg_from_gguf(g, key, &cfg, st))) return rc;
    snprintf(key, sizeof key, "flexicodec.%s_aggregator.in_out_dim", which);
    if ((rc = sotto_gguf_get_i32(g, key, &io, st))) return rc;
    if (io != in_out_expected)
        return sotto_status_set(st, SOTTO_ERR_FORMAT, "%s = %d, expected %d", key, io,
                                in_out_expected);
    a->in_out_dim = io;
    a->dim = cfg.dim;
    a->has_proj = io != cfg.dim;
    int64_t s3[3] = {1, io, 1};
    snprintf(name, sizeof name, "%s_aggregator.query_embedding", which);
    if ((rc = sotto_gguf_tensor_f32(g, name, 3, s3, &w->owned, &a->query, st))) return rc;
    if (a->has_proj) {
        snprintf(name, sizeof name, "%s_aggregator.transformer.input_proj.weight", which);
        if ((rc = linear(&a->in_proj, g, &w->alloc, name, cfg.dim, io, 0, st))) return rc;
        snprintf(name, sizeof name, "%s_aggregator.transformer.output_projs.0.weight", which);
        if ((rc = linear(&a->out_proj, g, &w->alloc, name, io, cfg.dim, 0, st))) return rc;
    }
    snprintf(name, sizeof name, "%s_aggregator.transformer.transformer.layers.", which);
    cfg.keep_f16 = flexicodec_bottleneck_file_f16(g, name); /* f16 files stay f16 in memory */
    return flexicodec_bottleneck_load(&a->stack, g, name, &cfg, &w->alloc, st);
}

static int load_all(flexicodec_encoder_weights *w, const sotto_gguf *g,
                    const flexicodec_decoder_weights *dec, sotto_status *st)
{
    int rc;
    if ((rc = get_hparams(g, &dec->hp, &w->hp, st))) return rc;
    if (!dec->rvq && w->hp.n_codebooks > 0)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "decode-side weights not loaded");
    w->owned.cap = convert_elems(g);
    if (w->owned.cap && !(w->owned.data = sotto_malloc(&w->alloc, w->owned.cap * sizeof(float))))
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    if ((rc = load_dac_encoder(w, g, st)) || (rc = load_semantic(w, g, st)) ||
        (rc = load_rvq(w, g, dec, st)) ||
        (rc = load_aggregator(w, g, "semantic", w->hp.ssl_dim, &w->sem_agg, st)) ||
        (rc = load_aggregator(w, g, "acoustic", w->hp.latent_dim, &w->ac_agg, st)))
        return rc;
    return SOTTO_OK;
}

int flexicodec_encoder_weights_load(flexicodec_encoder_weights *w, const sotto_gguf *g,
                                    const flexicodec_decoder_weights *dec, const sotto_alloc *alloc,
                                    sotto_status *st)
{
    if (!w) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    memset(w, 0, sizeof *w);
    if (alloc)
        w->alloc = *alloc;
    else
        sotto_alloc_init(&w->alloc, NULL);
    if (!g || !dec) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    int rc = load_all(w, g, dec, st);
    if (rc) flexicodec_encoder_weights_free(w);
    return rc;
}

static void free_aggregator(flexicodec_aggregator *a, const sotto_alloc *al)
{
    sotto_linear_w_free(&a->in_proj, al);
    sotto_linear_w_free(&a->out_proj, al);
    flexicodec_bottleneck_free(&a->stack);
}

int flexicodec_encoder_weights_use_h16(flexicodec_encoder_weights *w, sotto_status *st)
{
    if (!w) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    const flexicodec_encoder_hparams *hp = &w->hp;
    const sotto_alloc *a = &w->alloc;
    int rc;
    if ((rc = sotto_conv1d_w_use_h16(&w->dac_in, a, st)) ||
        (rc = sotto_conv1d_w_use_h16(&w->dac_out, a, st)) ||
        (rc = sotto_linear_w_use_h16(&w->cnx_in, a, st)) ||
        (rc = sotto_linear_w_use_h16(&w->fsq_in, a, st)))
        return rc;
    for (int i = 0; w->blocks && i < hp->n_rates; i++) {
        flexicodec_enc_block *b = &w->blocks[i];
        if ((rc = sotto_conv1d_w_use_h16(&b->down, a, st))) return rc;
        for (int j = 0; j < FLEXICODEC_RU_COUNT; j++)
            if ((rc = sotto_conv1d_w_use_h16(&b->ru[j].conv7, a, st)) ||
                (rc = sotto_linear_w_use_h16(&b->ru[j].conv1, a, st)))
                return rc;
    }
    for (int i = 0; w->cnx && i < hp->convnext_layers; i++)
        if ((rc = sotto_linear_w_use_h16(&w->cnx[i].pw1, a, st)) ||
            (rc = sotto_linear_w_use_h16(&w->cnx[i].pw2, a, st)))
            return rc;
    for (int i = 0; w->rvq_in && i < hp->n_codebooks; i++)
        if ((rc = sotto_linear_w_use_h16(&w->rvq_in[i], a, st))) return rc;
    flexicodec_aggregator *ag[2] = {&w->sem_agg, &w->ac_agg};
    for (int i = 0; i < 2; i++)
        if ((ag[i]->has_proj && ((rc = sotto_linear_w_use_h16(&ag[i]->in_proj, a, st)) ||
                                 (rc = sotto_linear_w_use_h16(&ag[i]->out_proj, a, st)))) ||
            (rc = flexicodec_bottleneck_use_h16(&ag[i]->stack, st)))
            return rc;
    return SOTTO_OK;
}

void flexicodec_encoder_weights_free(flexicodec_encoder_weights *w)
{
    if (!w) return;
    const sotto_alloc *a = &w->alloc;
    sotto_conv1d_w_free(&w->dac_in, a);
    if (w->blocks) {
        for (int i = 0; i < w->hp.n_rates; i++) {
            flexicodec_enc_block *b = &w->blocks[i];
            for (int j = 0; j < FLEXICODEC_RU_COUNT; j++) {
                sotto_conv1d_w_free(&b->ru[j].conv7, a);
                sotto_linear_w_free(&b->ru[j].conv1, a);
            }
            sotto_conv1d_w_free(&b->down, a);
        }
        sotto_free(a, w->blocks);
    }
    sotto_conv1d_w_free(&w->dac_out, a);
    sotto_linear_w_free(&w->cnx_in, a);
    if (w->cnx) {
        for (int i = 0; i < w->hp.convnext_layers; i++) {
            sotto_conv1d_w_free(&w->cnx[i].dw, a);
            sotto_linear_w_free(&w->cnx[i].pw1, a);
            sotto_linear_w_free(&w->cnx[i].pw2, a);
        }
        sotto_free(a, w->cnx);
    }
    sotto_linear_w_free(&w->fsq_in, a);
    for (int i = 0; i < w->hp.n_codebooks; i++) {
        if (w->rvq_in) sotto_linear_w_free(&w->rvq_in[i], a);
        if (w->rvq_cb_norm) sotto_free(a, w->rvq_cb_norm[i]);
        if (w->rvq_cb_sq) sotto_free(a, w->rvq_cb_sq[i]);
    }
    sotto_free(a, w->rvq_in);
    sotto_free(a, (void *)w->rvq_in_b);
    sotto_free(a, w->rvq_cb_norm);
    sotto_free(a, w->rvq_cb_sq);
    free_aggregator(&w->sem_agg, a);
    free_aggregator(&w->ac_agg, a);
    sotto_free(a, w->owned.data);
    sotto_alloc alloc = w->alloc;
    memset(w, 0, sizeof *w);
    w->alloc = alloc;
}

/* ---- DAC encoder -------------------------------------------------------------------------- */

int64_t flexicodec_dac_encode_frames(const flexicodec_encoder_hparams *hp, int64_t n)
{
    if (!hp || n < 0 || hp->hop_length < 1) return SOTTO_ERR_INVALID_ARG;
    return (n + hp->hop_length - 1) / hp->hop_length;
}

static int max_dilation(const flexicodec_encoder_hparams *hp)
{
    int d = 1;
    for (int j = 0; j < FLEXICODEC_RU_COUNT; j++)
        if (hp->dilations[j] > d) d = hp->dilations[j];
    return d;
}

/* Floats of each of X, A, B for T frames (T·hop samples). */
static size_t dac_buf(const flexicodec_encoder_hparams *hp, int64_t T)
{
    const int64_t P = 3 * (int64_t)max_dilation(hp);
    int64_t L = T * hp->hop_length, need = L + 2 * (FLEXICODEC_DAC_K / 2);
    for (int i = 0; i < hp->n_rates; i++) {
        const int64_t c = (int64_t)hp->encoder_dim << i, s = hp->encoder_rates[i];
        const int64_t pad = P > (s + 1) / 2 ? P : (s + 1) / 2;
        const int64_t cand = (L + 2 * pad) * c;
        if (cand > need) need = cand;
        L /= s;
    }
    const int64_t fin = (L + 2) * ((int64_t)hp->encoder_dim << hp->n_rates);
    return (size_t)(fin > need ? fin : need);
}

size_t flexicodec_dac_encode_scratch(const flexicodec_encoder_hparams *hp, int64_t n)
{
    const int64_t T = flexicodec_dac_encode_frames(hp, n);
    if (T <= 0) return 0;
    return 3 * dac_buf(hp, T);
}

int64_t flexicodec_dac_encode(const sotto_cpu *cpu, const flexicodec_encoder_weights *w,
                              const float *wave, int64_t n, float *z, float *scratch)
{
    if (!cpu || !w || n < 0 || (n && (!wave || !z || !scratch))) return SOTTO_ERR_INVALID_ARG;
    const flexicodec_encoder_hparams *hp = &w->hp;
    const int64_t T = flexicodec_dac_encode_frames(hp, n);
    if (T <= 0) return T;
    const size_t S = dac_buf(hp, T);
    float *X = scratch, *A = X + S, *B = A + S;
    const int K = FLEXICODEC_DAC_K / 2;
    int64_t L = T * hp->hop_length, rc;

    /* zero-padded waveform (DAC.preprocess: right pad to a multiple of hop), conv k7 p3 */
    memset(A, 0, sizeof(float) * (size_t)(L + 2 * K));
    memcpy(A + K, wave, sizeof(float) * (size_t)n);
    if ((rc = sotto_conv1d(cpu, &w->dac_in, w->dac_in_b, A, L + 2 * K, X)) != L)
        return rc < 0 ? rc : SOTTO_ERR_INTERNAL;
    for (int i = 0; i < hp->n_rates; i++) {
        const flexicodec_enc_block *b = &w->blocks[i];
        for (int j = 0; j < FLEXICODEC_RU_COUNT; j++)
            if ((rc = flexicodec_res_unit_run(cpu, &b->ru[j], X, L, b->c_in, A, B))) return rc;
        if ((rc = flexicodec_snake_padded(cpu, X, L, b->c_in, b->alpha, b->padding, A))) return rc;
        const int64_t out = L / b->stride;
        if ((rc = sotto_conv1d(cpu, &b->down, b->down_b, A, L + 2 * b->padding, X)) != out)
            return rc < 0 ? rc : SOTTO_ERR_INTERNAL;
        L = out;
    }
    const int c_last = hp->encoder_dim << hp->n_rates;
    if ((rc = flexicodec_snake_padded(cpu, X, L, c_last, w->dac_alpha, 1, A))) return rc;
    if ((rc = sotto_conv1d(cpu, &w->dac_out, w->dac_out_b, A, L + 2, z)) != T)
        return rc < 0 ? rc : SOTTO_ERR_INTERNAL;
    return T;
}

/* ---- frame merging ------------------------------------------------------------------------ */

int64_t flexicodec_merge(const float *h, int64_t T, int C, float threshold, float eps,
                         int max_per_group, int32_t *lengths, float *sim)
{
    if (T < 0 || C < 1 || max_per_group < 0 || (T && (!h || !lengths)))
        return SOTTO_ERR_INVALID_ARG;
    if (T == 0) return 0;
    int64_t G = 0, run = 0; /* run: frames since the last similarity boundary */
    double n_prev = 0.0;
    for (int c = 0; c < C; c++)
        n_prev += (double)h[c] * h[c];
    n_prev = sqrt(n_prev);
    lengths[0] = 1;
    G = 1;
    for (int64_t t = 1; t < T; t++) {
        const float *a = h + (t - 1) * C, *b = h + t * C;
        double nb = 0.0, dot = 0.0;
        for (int c = 0; c < C; c++) {
            nb += (double)b[c] * b[c];
            dot += (double)a[c] * b[c];
        }
        nb = sqrt(nb);
        const double da = n_prev > eps ? n_prev : eps, db = nb > eps ? nb : eps;
        const float s = (float)(dot / (da * db));
        if (sim) sim[t - 1] = s;
        n_prev = nb;
        run = s <= threshold ? 0 : run + 1;
        if (run == 0 || (max_per_group > 0 && run % max_per_group == 0))
            lengths[G++] = 1;
        else
            lengths[G - 1]++;
    }
    return G;
}

int64_t flexicodec_merge_count(const float *sim, int64_t T, float threshold, int max_per_group)
{
    if (T < 0 || max_per_group < 0 || (T > 1 && !sim)) return SOTTO_ERR_INVALID_ARG;
    if (T == 0) return 0;
    int64_t G = 1, run = 0;
    for (int64_t t = 1; t < T; t++) {
        run = sim[t - 1] <= threshold ? 0 : run + 1;
        if (run == 0 || (max_per_group > 0 && run % max_per_group == 0)) G++;
    }
    return G;
}

static int cmp_float(const void *a, const void *b)
{
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

int flexicodec_pick_threshold(const float *sim, int64_t T, int max_per_group,
                              flexicodec_rate_ctl *rc)
{
    if (!rc || T < 1 || max_per_group < 0 || (T > 1 && (!sim || !rc->work)) ||
        !(rc->target_groups >= 0.0) || isinf(rc->target_groups))
        return SOTTO_ERR_INVALID_ARG;
    /* candidates: 0, the distinct similarities in (0, 1), 1; sorted ascending */
    float *c = rc->work;
    int64_t m = 0;
    for (int64_t t = 0; t + 1 < T; t++)
        if (sim[t] > 0.0f && sim[t] < 1.0f) c[m++] = sim[t];
    qsort(c, (size_t)m, sizeof *c, cmp_float);
    int64_t u = 0;
    for (int64_t i = 0; i < m; i++)
        if (!u || c[i] != c[u - 1]) c[u++] = c[i];
    /* index k: 0 → θ 0, 1..u → c[k−1], u+1 → θ 1 */
    const int64_t K = u + 2;
#define CAND(k) ((k) == 0 ? 0.0f : (k) == K - 1 ? 1.0f : c[(k)-1])
    const double want = rc->target_groups;
    rc->g_min = flexicodec_merge_count(sim, T, 0.0f, max_per_group);
    rc->g_max = flexicodec_merge_count(sim, T, 1.0f, max_per_group);
    if (want < (double)rc->g_min) {
        rc->threshold = 0.0f;
        rc->clamped = -1;
        return SOTTO_OK;
    }
    if (want > (double)rc->g_max) {
        rc->threshold = 1.0f;
        rc->clamped = 1;
        return SOTTO_OK;
    }
    rc->clamped = 0;
    /* largest k with G(k) ≤ want: G(0) ≤ want holds */
    int64_t lo = 0, hi = K - 1;
    if ((double)rc->g_max <= want) lo = hi;
    while (hi - lo > 1) {
        const int64_t mid = lo + (hi - lo) / 2;
        if ((double)flexicodec_merge_count(sim, T, CAND(mid), max_per_group) <= want)
            lo = mid;
        else
            hi = mid;
    }
    int64_t k = lo;
    if (k + 1 < K) {
        const double g0 = (double)flexicodec_merge_count(sim, T, CAND(k), max_per_group);
        const double g1 = (double)flexicodec_merge_count(sim, T, CAND(k + 1), max_per_group);
        if (g1 - want < want - g0) k++;
    }
    rc->threshold = CAND(k);
#undef CAND
    return SOTTO_OK;
}

/* ---- query-token aggregation ------------------------------------------------------------- */

size_t flexicodec_aggregate_scratch(const flexicodec_aggregator *a, int64_t T, int64_t G)
{
    if (!a || T < 0 || G < 0 || a->in_out_dim < 1) return 0;
    const size_t S = (size_t)(T + G);
    const size_t st = flexicodec_bottleneck_scratch_size(&a->stack, (int64_t)S);
    if (!st) return 0;
    return S * (size_t)a->in_out_dim + (a->has_proj ? S * (size_t)a->dim : 0) +
           (size_t)G * (size_t)a->dim + st;
}

int flexicodec_aggregate_sequence(const flexicodec_aggregator *a, const float *x, int64_t T,
                                  const int32_t *lengths, int64_t G, float *seq)
{
    if (!a || T < 0 || G < 0 || (G && (!x || !lengths || !seq))) return SOTTO_ERR_INVALID_ARG;
    int64_t sum = 0;
    for (int64_t g = 0; g < G; g++) {
        if (lengths[g] < 1) return SOTTO_ERR_INVALID_ARG;
        sum += lengths[g];
    }
    if (sum != T) return SOTTO_ERR_INVALID_ARG;
    const int D = a->in_out_dim;
    /* frames of group g, then its query: mean of the frames + query_embedding */
    int64_t t = 0, row = 0;
    for (int64_t g = 0; g < G; g++) {
        const int32_t n = lengths[g];
        memcpy(seq + row * D, x + t * D, sizeof(float) * (size_t)n * (size_t)D);
        float *qr = seq + (row + n) * D;
        for (int c = 0; c < D; c++) {
            float s = 0.0f;
            for (int32_t k = 0; k < n; k++)
                s += x[(t + k) * D + c];
            qr[c] = s / (float)n + a->query[c];
        }
        t += n;
        row += n + 1;
    }
    return SOTTO_OK;
}

int flexicodec_aggregate(const sotto_cpu *cpu, const flexicodec_aggregator *a, const float *x,
                         int64_t T, const int32_t *lengths, int64_t G, float *y, float *scratch)
{
    if (!cpu || !a || T < 0 || G < 0 || (G && (!x || !lengths || !y || !scratch)))
        return SOTTO_ERR_INVALID_ARG;
    if (G == 0) return T == 0 ? SOTTO_OK : SOTTO_ERR_INVALID_ARG;
    const int D = a->in_out_dim, d = a->dim;
    const int64_t S = T + G;
    float *seq = scratch;
    float *proj = seq + S * D;
    float *q = proj + (a->has_proj ? S * d : 0);
    float *rest = q + G * d;
    int rc = flexicodec_aggregate_sequence(a, x, T, lengths, G, seq);
    if (rc) return rc;
    float *h = seq;
    if (a->has_proj) {
        if ((rc = sotto_linear(cpu, &a->in_proj, NULL, seq, S, proj))) return rc;
        h = proj;
    }
    if ((rc = flexicodec_bottleneck_forward(cpu, &a->stack, h, S, h, rest))) return rc;
    int64_t row = 0;
    for (int64_t g = 0; g < G; g++) {
        row += lengths[g];
        memcpy(q + g * d, h + row * d, sizeof(float) * (size_t)d);
        row++;
    }
    if (a->has_proj) return sotto_linear(cpu, &a->out_proj, NULL, q, G, y);
    memcpy(y, q, sizeof(float) * (size_t)G * (size_t)d);
    return SOTTO_OK;
}

/* ---- semantic branch ---------------------------------------------------------------------- */

int flexicodec_fsq_quantize(const flexicodec_encoder_hparams *hp, const float *z, int64_t G,
                            int32_t *idx, float *bound)
{
    if (!hp || G < 0 || (G && (!z || !idx))) return SOTTO_ERR_INVALID_ARG;
    const int D = hp->n_levels;
    float half_l[FLEXICODEC_MAX_LEVELS], offset[FLEXICODEC_MAX_LEVELS],
        shift[FLEXICODEC_MAX_LEVELS];
    const float one_m_eps = (float)(1.0 - (double)hp->fsq_bound_eps);
    for (int d = 0; d < D; d++) {
        /* torch, float32: (levels − 1) · (1 − eps) / 2, where(levels even, 0.5, 0), tan(o/h) */
        half_l[d] = (float)(hp->fsq_levels[d] - 1) * one_m_eps / 2.0f;
        offset[d] = hp->fsq_levels[d] % 2 == 0 ? 0.5f : 0.0f;
        shift[d] = tanf(offset[d] / half_l[d]);
    }
    for (int64_t g = 0; g < G; g++) {
        int64_t index = 0, basis = 1;
        for (int d = 0; d < D; d++) {
            const int L = hp->fsq_levels[d], half = L / 2;
            const float b = tanhf(z[g * D + d] + shift[d]) * half_l[d] - offset[d];
            if (bound) bound[g * D + d] = b;
            int q = (int)nearbyintf(b) + half;
            if (q < 0) q = 0;
            if (q > L - 1) q = L - 1;
            index += (int64_t)q * basis;
            basis *= L;
        }
        idx[g] = (int32_t)index;
    }
    return SOTTO_OK;
}

size_t flexicodec_semantic_encode_scratch(const flexicodec_encoder_hparams *hp, int64_t G)
{
    if (!hp || G < 0) return 0;
    const size_t C = (size_t)hp->convnext_dim, I = (size_t)hp->convnext_intermediate;
    const size_t g = (size_t)G;
    return g * C + (g + FLEXICODEC_CONVNEXT_K - 1) * C + g * C + g * I + g * (size_t)hp->n_levels;
}

int flexicodec_semantic_encode(const sotto_cpu *cpu, const flexicodec_encoder_weights *w,
                               const float *x, int64_t G, int32_t *idx, float *bound,
                               float *scratch)
{
    if (!cpu || !w || G < 0 || (G && (!x || !idx || !scratch))) return SOTTO_ERR_INVALID_ARG;
    if (G == 0) return SOTTO_OK;
    const flexicodec_encoder_hparams *hp = &w->hp;
    const int C = hp->convnext_dim, I = hp->convnext_intermediate;
    float *c = scratch;
    float *padbuf = c + G * C;
    float *t = padbuf + (G + FLEXICODEC_CONVNEXT_K - 1) * C;
    float *hbuf = t + G * C;
    float *z = hbuf + G * I;
    const int pad_l = hp->convnext_causal ? FLEXICODEC_CONVNEXT_K - 1 : FLEXICODEC_CONVNEXT_K / 2;
    const int pad_r = FLEXICODEC_CONVNEXT_K - 1 - pad_l;
    int64_t rc;
    if ((rc = sotto_linear(cpu, &w->cnx_in, w->cnx_in_b, x, G, c))) return (int)rc;
    for (int i = 0; i < hp->convnext_layers; i++) {
        const flexicodec_convnext_block *b = &w->cnx[i];
        rc = sotto_conv1d_padded(cpu, &b->dw, b->dw_b, c, G, pad_l, pad_r, SOTTO_PAD_ZERO, t,
                                 padbuf);
        if (rc < 0) return (int)rc;
        if ((rc = sotto_layernorm(cpu, t, G, C, b->ln_w, b->ln_b, hp->convnext_eps, t)) ||
            (rc = sotto_linear(cpu, &b->pw1, b->pw1_b, t, G, hbuf)) ||
            (rc = sotto_gelu_erf(cpu, hbuf, G * I, hbuf)) ||
            (rc = sotto_linear(cpu, &b->pw2, b->pw2_b, hbuf, G, t)))
            return (int)rc;
        if (b->gamma)
            for (int64_t r = 0; r < G; r++)
                for (int k = 0; k < C; k++)
                    t[r * C + k] *= b->gamma[k];
        for (int64_t k = 0; k < G * C; k++)
            c[k] += t[k];
    }
    if ((rc = sotto_linear(cpu, &w->fsq_in, w->fsq_in_b, c, G, z))) return (int)rc;
    return flexicodec_fsq_quantize(hp, z, G, idx, bound);
}

/* ---- acoustic branch ---------------------------------------------------------------------- */

static int max_code_dim(const flexicodec_encoder_weights *w)
{
    int d = 1;
    for (int i = 0; i < w->hp.n_codebooks; i++)
        if (w->rvq_in[i].n_out > d) d = w->rvq_in[i].n_out;
    return d;
}

size_t flexicodec_rvq_encode_scratch(const flexicodec_encoder_weights *w, int64_t G)
{
    if (!w || G < 0 || !w->rvq_in) return 0;
    return (size_t)G * (2 * (size_t)max_code_dim(w) + (size_t)w->hp.latent_dim);
}

int flexicodec_rvq_encode(const sotto_cpu *cpu, const flexicodec_decoder_weights *dw,
                          const flexicodec_encoder_weights *w, float *r, int64_t G, int n_q,
                          int32_t *codes, int ldc, float *scratch)
{
    if (!cpu || !dw || !w || G < 0 || n_q < 0 || n_q > w->hp.n_codebooks ||
        n_q > dw->hp.n_codebooks || ldc < n_q || (G && n_q && (!r || !codes || !scratch)))
        return SOTTO_ERR_INVALID_ARG;
    if (G == 0 || n_q == 0) return SOTTO_OK;
    const int lat = w->hp.latent_dim, dmax = max_code_dim(w);
    const int size = dw->hp.codebook_size;
    float *z = scratch, *rows = z + G * dmax, *v = rows + G * dmax;
    for (int q = 0; q < n_q; q++) {
        const flexicodec_rvq_stage *s = &dw->rvq[q];
        const int d = s->dim;
        const float *cn = w->rvq_cb_norm[q], *csq = w->rvq_cb_sq[q];
        int rc = sotto_linear(cpu, &w->rvq_in[q], w->rvq_in_b[q], r, G, z);
        if (rc) return rc;
        for (int64_t g = 0; g < G; g++) {
            float *e = z + g * d;
            double s2 = 0.0;
            for (int k = 0; k < d; k++)
                s2 += (double)e[k] * e[k];
            float nrm = (float)sqrt(s2);
            if (nrm < 1e-12f) nrm = 1e-12f;
            double e2d = 0.0;
            for (int k = 0; k < d; k++) {
                e[k] /= nrm;
                e2d += (double)e[k] * e[k];
            }
            const float e2 = (float)e2d;
            int best = 0;
            float best_score = -INFINITY;
            for (int j = 0; j < size; j++) {
                const float *c = cn + (int64_t)j * d;
                float dot = 0.0f;
                for (int k = 0; k < d; k++)
                    dot += e[k] * c[k];
                const float score = -(e2 - 2.0f * dot + csq[j]);
                if (score > best_score) {
                    best_score = score;
                    best = j;
                }
            }
            codes[g * ldc + q] = best;
            memcpy(rows + g * d, s->codebook + (int64_t)best * d, sizeof(float) * (size_t)d);
        }
        if ((rc = sotto_linear(cpu, &s->out_proj, s->out_b, rows, G, v))) return rc;
        for (int64_t k = 0; k < G * lat; k++)
            r[k] -= v[k];
    }
    return SOTTO_OK;
}

/* ---- everything --------------------------------------------------------------------------- */

static size_t max_sz(size_t a, size_t b)
{
    return a > b ? a : b;
}

size_t flexicodec_encode_scratch(const flexicodec_decoder_weights *dw,
                                 const flexicodec_encoder_weights *w, int64_t n, int64_t T_sem)
{
    if (!dw || !w || n < 0 || T_sem < 0) return 0;
    const int64_t T_ac = flexicodec_dac_encode_frames(&w->hp, n);
    if (T_ac < 0) return 0;
    const int64_t T = T_ac < T_sem ? T_ac : T_sem;
    const size_t lat = (size_t)w->hp.latent_dim, ssl = (size_t)w->hp.ssl_dim;
    size_t s = flexicodec_dac_encode_scratch(&w->hp, n);
    s = max_sz(s, flexicodec_aggregate_scratch(&w->sem_agg, T, T));
    s = max_sz(s, flexicodec_aggregate_scratch(&w->ac_agg, T, T));
    s = max_sz(s, flexicodec_semantic_encode_scratch(&w->hp, T));
    s = max_sz(s, flexicodec_semantic_scratch(&dw->hp, T));
    s = max_sz(s, flexicodec_rvq_encode_scratch(w, T));
    /* acoustic frames [T_ac][lat], semantic aggregate [T][ssl], acoustic aggregate and
     * semantic decoded [T][lat] each */
    return (size_t)T_ac * lat + (size_t)T * ssl + 2 * (size_t)T * lat + s + 1;
}

int64_t flexicodec_encode_from_features(const sotto_cpu *cpu, const flexicodec_decoder_weights *dw,
                                        const flexicodec_encoder_weights *w, const float *wave,
                                        int64_t n, const float *feats, int64_t T_sem,
                                        float threshold, int n_q, int32_t *lengths, int32_t *fsq,
                                        int32_t *rvq, float *scratch)
{
    return flexicodec_encode_from_features_rc(cpu, dw, w, wave, n, feats, T_sem, threshold, NULL,
                                              n_q, lengths, fsq, rvq, scratch);
}

int64_t flexicodec_encode_from_features_rc(const sotto_cpu *cpu,
                                           const flexicodec_decoder_weights *dw,
                                           const flexicodec_encoder_weights *w, const float *wave,
                                           int64_t n, const float *feats, int64_t T_sem,
                                           float threshold, flexicodec_rate_ctl *rate, int n_q,
                                           int32_t *lengths, int32_t *fsq, int32_t *rvq,
                                           float *scratch)
{
    if (!cpu || !dw || !w || n < 0 || T_sem < 0 || n_q < 0 || n_q > w->hp.n_codebooks ||
        isnan(threshold) || (n && !wave) || (T_sem && !feats) || !scratch)
        return SOTTO_ERR_INVALID_ARG;
    const int64_t T_ac = flexicodec_dac_encode_frames(&w->hp, n);
    if (T_ac < 0) return T_ac;
    const int64_t T = T_ac < T_sem ? T_ac : T_sem;
    if (T == 0) return 0;
    if (!lengths || !fsq || (n_q && !rvq)) return SOTTO_ERR_INVALID_ARG;
    const int lat = w->hp.latent_dim, ssl = w->hp.ssl_dim;
    float *ac = scratch;
    float *sem_agg = ac + T_ac * lat;            /* flexicodec_encode_streams' scratch */
    float *rest = sem_agg + T * (ssl + 2 * lat); /* past what it keeps between its stages */
    int64_t rc = flexicodec_dac_encode(cpu, w, wave, n, ac, rest);
    if (rc != T_ac) return rc < 0 ? rc : SOTTO_ERR_INTERNAL;
    /* both streams truncated to T frames: the first T rows of each */
    return flexicodec_encode_streams(cpu, dw, w, feats, ac, T, threshold, rate, n_q, lengths, fsq,
                                     rvq, sem_agg, NULL, NULL);
}

int64_t flexicodec_encode_streams(const sotto_cpu *cpu, const flexicodec_decoder_weights *dw,
                                  const flexicodec_encoder_weights *w, const float *feats,
                                  const float *ac, int64_t T, float threshold,
                                  flexicodec_rate_ctl *rate, int n_q, int32_t *lengths,
                                  int32_t *fsq, int32_t *rvq, float *scratch,
                                  flexicodec_aggregate_fn agg, void *agg_ctx)
{
    if (!cpu || !dw || !w || T < 0 || n_q < 0 || n_q > w->hp.n_codebooks || isnan(threshold) ||
        !scratch)
        return SOTTO_ERR_INVALID_ARG;
    if (T == 0) return 0;
    if (!feats || !ac || !lengths || !fsq || (n_q && !rvq)) return SOTTO_ERR_INVALID_ARG;
    const int lat = w->hp.latent_dim, ssl = w->hp.ssl_dim;
    float *sem_agg = scratch;
    float *ac_agg = sem_agg + T * ssl;
    float *sem_dec = ac_agg + T * lat;
    float *rest = sem_dec + T * lat;
    int64_t rc;
    if (rate) {
        if (!rate->sim || !rate->work) return SOTTO_ERR_INVALID_ARG;
        rc = flexicodec_merge(feats, T, ssl, 1.0f, w->hp.merge_eps, w->hp.max_tokens_per_group,
                              lengths, rate->sim);
        if (rc < 0) return rc;
        if ((rc = flexicodec_pick_threshold(rate->sim, T, w->hp.max_tokens_per_group, rate)))
            return rc;
        threshold = rate->threshold;
    }
    const int64_t G = flexicodec_merge(feats, T, ssl, threshold, w->hp.merge_eps,
                                       w->hp.max_tokens_per_group, lengths, NULL);
    if (G < 0) return G;
    if (agg) {
        if ((rc = agg(agg_ctx, &w->sem_agg, feats, T, lengths, G, sem_agg, rest)) ||
            (rc = agg(agg_ctx, &w->ac_agg, ac, T, lengths, G, ac_agg, rest)))
            return rc;
    } else if ((rc = flexicodec_aggregate(cpu, &w->sem_agg, feats, T, lengths, G, sem_agg, rest)) ||
               (rc = flexicodec_aggregate(cpu, &w->ac_agg, ac, T, lengths, G, ac_agg, rest)))
        return rc;
    if ((rc = flexicodec_semantic_encode(cpu, w, sem_agg, G, fsq, NULL, rest)) ||
        (rc = flexicodec_semantic_decode(cpu, dw, fsq, G, sem_dec, rest)))
        return rc;
    for (int64_t k = 0; k < G * lat; k++)
        ac_agg[k] -= sem_dec[k];
    if ((rc = flexicodec_rvq_encode(cpu, dw, w, ac_agg, G, n_q, rvq, n_q, rest))) return rc;
    return G;
}
