/*
 * FlexiCodec decode-side weights: hyperparameters from the `flexicodec.*` metadata written by
 * tools/convert/flexicodec.py, then every tensor looked up by its official state_dict name
 * (weight norm already folded into `.weight`), checked for dtype and shape (the culprit is
 * named on failure) and repacked once into the layout the kernels want.
 */
#include <stdio.h>
#include <string.h>

#include "codecs/flexicodec/flexicodec.h"

#define NAME_LEN 160

/* Tensors that tensor_f32 may have to convert (vectors, Snake alphas, codebooks) and that are
 * not stored as f32: the size of the one conversion block. Matrix weights are repacked by
 * their own init functions and the transformer is not loaded here. */
static size_t convert_elems(const sotto_gguf *g)
{
    size_t n = 0;
    for (int64_t i = 0; i < sotto_gguf_tensor_count(g); i++) {
        const sotto_gguf_tensor *t = sotto_gguf_tensor_at(g, i);
        const char *s = t->name.data;
        size_t len = strlen(s);
        int matrix = t->n_dims >= 2 && len >= 7 && !strcmp(s + len - 7, ".weight") &&
                     !strstr(s, "codebook.weight");
        if (t->dtype == SOTTO_DTYPE_F32 || matrix || !strncmp(s, "bottleneck_transformer.", 23))
            continue;
        n += (size_t)t->n_elems;
    }
    return n;
}

/* A tensor as f32: borrowed from the file when stored as f32, else converted into the pool. */
static int tensor_f32(flexicodec_decoder_weights *w, const sotto_gguf *g, const char *name,
                      int n_dims, const int64_t *shape, const float **out, sotto_status *st)
{
    return sotto_gguf_tensor_f32(g, name, n_dims, shape, &w->owned, out, st);
}

/* A vector [n] (or a Snake alpha [1][n][1] when alpha). */
static int vec(flexicodec_decoder_weights *w, const sotto_gguf *g, const char *name, int64_t n,
               int alpha, const float **out, sotto_status *st)
{
    int64_t s1[1] = {n}, s3[3] = {1, n, 1};
    return alpha ? tensor_f32(w, g, name, 3, s3, out, st) : tensor_f32(w, g, name, 1, s1, out, st);
}

/* A Linear [out][in] (in_k1: a 1×1 conv [out][in][1]) in the file's precision. */
static int linear(sotto_linear_w *l, const sotto_gguf *g, const sotto_alloc *a, const char *name,
                  int64_t n_out, int64_t n_in, int in_k1, sotto_status *st)
{
    return sotto_linear_w_load(l, g, name, n_out, n_in, in_k1, a, st);
}

static int conv(sotto_conv1d_w *c, const sotto_gguf *g, const sotto_alloc *a, const char *name,
                int64_t c_out, int64_t c_in_g, int64_t k, int dilation, int groups,
                sotto_status *st)
{
    return sotto_conv1d_w_load(c, g, name, c_out, c_in_g, k, 1, dilation, groups, a, st);
}

static int arr_i32(const sotto_gguf *g, const char *key, int *out, size_t cap, int *n,
                   sotto_status *st)
{
    int64_t v[FLEXICODEC_MAX_CODEBOOKS];
    size_t got = 0;
    if (cap > FLEXICODEC_MAX_CODEBOOKS) cap = FLEXICODEC_MAX_CODEBOOKS;
    int rc = sotto_gguf_get_arr_i64(g, key, v, cap, &got, st);
    if (rc) return rc;
    for (size_t i = 0; i < got; i++) {
        if (v[i] < 1 || v[i] > 1 << 20)
            return sotto_status_set(st, SOTTO_ERR_FORMAT, "%s[%zu] = %lld out of range", key, i,
                                    (long long)v[i]);
        out[i] = (int)v[i];
    }
    *n = (int)got;
    return SOTTO_OK;
}

static int get_hparams(const sotto_gguf *g, flexicodec_hparams *hp, sotto_status *st)
{
    const char *arch;
    int rc, n_cd = 0, n_dil = 0;
    memset(hp, 0, sizeof *hp);
    if ((rc = sotto_gguf_get_str(g, "general.architecture", &arch, st))) return rc;
    if (strcmp(arch, "flexicodec"))
        return sotto_status_set(st, SOTTO_ERR_UNSUPPORTED,
                                "general.architecture '%s' (expected flexicodec)", arch);
    if ((rc = sotto_gguf_get_i32(g, "flexicodec.sample_rate", &hp->sample_rate, st)) ||
        (rc = sotto_gguf_get_i32(g, "flexicodec.hop_length", &hp->hop_length, st)) ||
        (rc = sotto_gguf_get_i32(g, "flexicodec.latent_dim", &hp->latent_dim, st)) ||
        (rc = sotto_gguf_get_i32(g, "flexicodec.decoder_dim", &hp->decoder_dim, st)) ||
        (rc = arr_i32(g, "flexicodec.decoder_rates", hp->decoder_rates, FLEXICODEC_MAX_RATES,
                      &hp->n_rates, st)) ||
        (rc = arr_i32(g, "flexicodec.decoder_dilations", hp->dilations, FLEXICODEC_RU_COUNT, &n_dil,
                      st)) ||
        (rc = sotto_gguf_get_i32(g, "flexicodec.n_codebooks", &hp->n_codebooks, st)) ||
        (rc = sotto_gguf_get_i32(g, "flexicodec.codebook_size", &hp->codebook_size, st)) ||
        (rc = arr_i32(g, "flexicodec.codebook_dim", hp->codebook_dim, FLEXICODEC_MAX_CODEBOOKS,
                      &n_cd, st)) ||
        (rc = arr_i32(g, "flexicodec.fsq_levels", hp->fsq_levels, FLEXICODEC_MAX_LEVELS,
                      &hp->n_levels, st)) ||
        (rc = sotto_gguf_get_i32(g, "flexicodec.convnext_dim", &hp->convnext_dim, st)) ||
        (rc = sotto_gguf_get_i32(g, "flexicodec.convnext_intermediate_dim",
                                 &hp->convnext_intermediate, st)) ||
        (rc = sotto_gguf_get_i32(g, "flexicodec.convnext_layers", &hp->convnext_layers, st)) ||
        (rc = sotto_gguf_get_bool(g, "flexicodec.convnext_causal", &hp->convnext_causal, st)) ||
        (rc = sotto_gguf_get_f32_or(g, "flexicodec.convnext_norm_eps", 1e-6f, &hp->convnext_eps,
                                    st)) ||
        (rc = sotto_gguf_get_bool(g, "flexicodec.decode_semantic_for_codec", &hp->decode_semantic,
                                  st)) ||
        (rc = sotto_gguf_get_i32_or(g, "flexicodec.transformer.num_layers", 0,
                                    &hp->transformer_layers, st)))
        return rc;

    int64_t hop = 1;
    for (int i = 0; i < hp->n_rates; i++)
        hop *= hp->decoder_rates[i];
    if (hp->sample_rate < 1000 || hp->sample_rate > 384000 || hp->latent_dim < 1 ||
        hp->latent_dim > 16384 || hp->n_rates < 1 || hp->decoder_dim < 1 ||
        hp->decoder_dim > 65536 || hp->decoder_dim % (1 << hp->n_rates) || hop != hp->hop_length ||
        n_dil != FLEXICODEC_RU_COUNT || hp->n_codebooks < 0 ||
        hp->n_codebooks > FLEXICODEC_MAX_CODEBOOKS || n_cd != hp->n_codebooks ||
        hp->codebook_size < 1 || hp->codebook_size > (1 << 24) || hp->n_levels < 1 ||
        hp->convnext_dim < 1 || hp->convnext_dim > 16384 || hp->convnext_intermediate < 1 ||
        hp->convnext_intermediate > 65536 || hp->convnext_layers < 0 || hp->convnext_layers > 256 ||
        !(hp->convnext_eps > 0.0f) || hp->transformer_layers < 0)
        return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                "flexicodec hyperparameters out of range or inconsistent "
                                "(latent %d, decoder_dim %d over %d rates, hop %d vs %lld, "
                                "%d codebooks with %d dims, %d FSQ levels, convnext %d/%d/%d)",
                                hp->latent_dim, hp->decoder_dim, hp->n_rates, hp->hop_length,
                                (long long)hop, hp->n_codebooks, n_cd, hp->n_levels,
                                hp->convnext_dim, hp->convnext_intermediate, hp->convnext_layers);
    int64_t size = 1;
    for (int i = 0; i < hp->n_levels; i++) {
        if (hp->fsq_levels[i] < 2 || hp->fsq_levels[i] > 1 << 16)
            return sotto_status_set(st, SOTTO_ERR_FORMAT, "flexicodec.fsq_levels[%d] = %d", i,
                                    hp->fsq_levels[i]);
        size *= hp->fsq_levels[i];
        if (size > INT32_MAX)
            return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                    "flexicodec.fsq_levels: codebook "
                                    "larger than 2^31");
    }
    hp->fsq_size = (int32_t)size;
    for (int i = 0; i < hp->n_codebooks; i++)
        if (hp->codebook_dim[i] > 4096)
            return sotto_status_set(st, SOTTO_ERR_FORMAT, "flexicodec.codebook_dim[%d] = %d", i,
                                    hp->codebook_dim[i]);
    if (!hp->decode_semantic && hp->convnext_dim != hp->latent_dim)
        return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                "flexicodec: without decode_semantic_for_codec the FSQ output "
                                "(%d) must have the latent width (%d)",
                                hp->convnext_dim, hp->latent_dim);
    return SOTTO_OK;
}

static int load_convnext(flexicodec_decoder_weights *w, const sotto_gguf *g, int i,
                         sotto_status *st)
{
    const flexicodec_hparams *hp = &w->hp;
    flexicodec_convnext_block *b = &w->cnx[i];
    const int C = hp->convnext_dim, I = hp->convnext_intermediate;
    char name[NAME_LEN];
    int rc;
#define CNX(field) (snprintf(name, sizeof name, "convnext_decoder.%d.%s", i, field), name)
    if ((rc = conv(&b->dw, g, &w->alloc, CNX("dwconv.weight"), C, 1, FLEXICODEC_CONVNEXT_K, 1, C,
                   st)) ||
        (rc = vec(w, g, CNX("dwconv.bias"), C, 0, &b->dw_b, st)) ||
        (rc = vec(w, g, CNX("norm.weight"), C, 0, &b->ln_w, st)) ||
        (rc = vec(w, g, CNX("norm.bias"), C, 0, &b->ln_b, st)) ||
        (rc = linear(&b->pw1, g, &w->alloc, CNX("pwconv1.weight"), I, C, 0, st)) ||
        (rc = vec(w, g, CNX("pwconv1.bias"), I, 0, &b->pw1_b, st)) ||
        (rc = linear(&b->pw2, g, &w->alloc, CNX("pwconv2.weight"), C, I, 0, st)) ||
        (rc = vec(w, g, CNX("pwconv2.bias"), C, 0, &b->pw2_b, st)))
        return rc;
    b->gamma = NULL; /* layer scale only when layer_scale_init_value > 0 (not in FlexiCodec) */
    if (sotto_gguf_find_tensor(g, CNX("gamma"))) return vec(w, g, name, C, 0, &b->gamma, st);
#undef CNX
    return SOTTO_OK;
}

static int load_rvq(flexicodec_decoder_weights *w, const sotto_gguf *g, int i, sotto_status *st)
{
    const flexicodec_hparams *hp = &w->hp;
    flexicodec_rvq_stage *q = &w->rvq[i];
    char name[NAME_LEN];
    int64_t s_cb[2] = {hp->codebook_size, hp->codebook_dim[i]};
    int rc;
    q->dim = hp->codebook_dim[i];
#define RVQ(field) (snprintf(name, sizeof name, "dac.quantizer.quantizers.%d.%s", i, field), name)
    if ((rc = tensor_f32(w, g, RVQ("codebook.weight"), 2, s_cb, &q->codebook, st)) ||
        (rc = linear(&q->out_proj, g, &w->alloc, RVQ("out_proj.weight"), hp->latent_dim, q->dim, 1,
                     st)) ||
        (rc = vec(w, g, RVQ("out_proj.bias"), hp->latent_dim, 0, &q->out_b, st)))
        return rc;
#undef RVQ
    return SOTTO_OK;
}

static int load_dac_block(flexicodec_decoder_weights *w, const sotto_gguf *g, int i,
                          sotto_status *st)
{
    const flexicodec_hparams *hp = &w->hp;
    flexicodec_dac_block *b = &w->blocks[i];
    const sotto_gguf_tensor *t;
    char name[NAME_LEN];
    int rc;
    b->c_in = hp->decoder_dim >> i;
    b->c_out = hp->decoder_dim >> (i + 1);
    b->stride = hp->decoder_rates[i];
    b->padding = (b->stride + 1) / 2;
    const int C = b->c_out;
    int64_t s_up[3] = {b->c_in, b->c_out, 2 * b->stride};
#define BLK(field)                                                                                 \
    (snprintf(name, sizeof name, "dac.decoder.model.%d.block.%s", i + 1, field), name)
    if ((rc = vec(w, g, BLK("0.alpha"), b->c_in, 1, &b->alpha, st)) ||
        (rc = sotto_gguf_tensor_check(g, BLK("1.weight"), -1, 3, s_up, &t, st)) ||
        (rc = sotto_convtr1d_w_init(&b->up, t, b->stride, 1, 1, &w->alloc, st)) ||
        (sotto_gguf_tensor_release(g, t), 0) ||
        (rc = vec(w, g, BLK("1.bias"), C, 0, &b->up_b, st)))
        return rc;
    for (int j = 0; j < FLEXICODEC_RU_COUNT; j++) {
        flexicodec_res_unit *r = &b->ru[j];
        char f[48];
        r->dilation = hp->dilations[j];
#define RU(field) (snprintf(f, sizeof f, "%d.block.%s", j + 2, field), BLK(f))
        if ((rc = vec(w, g, RU("0.alpha"), C, 1, &r->alpha1, st)) ||
            (rc = conv(&r->conv7, g, &w->alloc, RU("1.weight"), C, C, FLEXICODEC_DAC_K, r->dilation,
                       1, st)) ||
            (rc = vec(w, g, RU("1.bias"), C, 0, &r->conv7_b, st)) ||
            (rc = vec(w, g, RU("2.alpha"), C, 1, &r->alpha2, st)) ||
            (rc = linear(&r->conv1, g, &w->alloc, RU("3.weight"), C, C, 1, st)) ||
            (rc = vec(w, g, RU("3.bias"), C, 0, &r->conv1_b, st)))
            return rc;
#undef RU
    }
#undef BLK
    return SOTTO_OK;
}

static int load_all(flexicodec_decoder_weights *w, const sotto_gguf *g, sotto_status *st)
{
    flexicodec_hparams *hp = &w->hp;
    char name[NAME_LEN];
    int rc;
    if ((rc = get_hparams(g, hp, st))) return rc;
    w->owned.cap = convert_elems(g);
    if (w->owned.cap && !(w->owned.data = sotto_malloc(&w->alloc, w->owned.cap * sizeof(float))))
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");

    if ((rc = linear(&w->fsq_out, g, &w->alloc, "semantic_vq.fsq.project_out.weight",
                     hp->convnext_dim, hp->n_levels, 0, st)) ||
        (rc =
             vec(w, g, "semantic_vq.fsq.project_out.bias", hp->convnext_dim, 0, &w->fsq_out_b, st)))
        return rc;
    if (hp->decode_semantic) {
        w->cnx = sotto_calloc(&w->alloc, (size_t)hp->convnext_layers + 1, sizeof *w->cnx);
        if (!w->cnx) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
        for (int i = 0; i < hp->convnext_layers; i++)
            if ((rc = load_convnext(w, g, i, st))) return rc;
        snprintf(name, sizeof name, "convnext_decoder.%d.weight", hp->convnext_layers);
        if ((rc = linear(&w->cnx_out, g, &w->alloc, name, hp->latent_dim, hp->convnext_dim, 1, st)))
            return rc;
        snprintf(name, sizeof name, "convnext_decoder.%d.bias", hp->convnext_layers);
        if ((rc = vec(w, g, name, hp->latent_dim, 0, &w->cnx_out_b, st))) return rc;
    }

    w->rvq = sotto_calloc(&w->alloc, (size_t)hp->n_codebooks + 1, sizeof *w->rvq);
    if (!w->rvq) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    for (int i = 0; i < hp->n_codebooks; i++)
        if ((rc = load_rvq(w, g, i, st))) return rc;

    if ((rc = conv(&w->dac_in, g, &w->alloc, "dac.decoder.model.0.weight", hp->decoder_dim,
                   hp->latent_dim, FLEXICODEC_DAC_K, 1, 1, st)) ||
        (rc = vec(w, g, "dac.decoder.model.0.bias", hp->decoder_dim, 0, &w->dac_in_b, st)))
        return rc;
    w->blocks = sotto_calloc(&w->alloc, (size_t)hp->n_rates, sizeof *w->blocks);
    if (!w->blocks) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    for (int i = 0; i < hp->n_rates; i++)
        if ((rc = load_dac_block(w, g, i, st))) return rc;
    const int c_last = hp->decoder_dim >> hp->n_rates;
    snprintf(name, sizeof name, "dac.decoder.model.%d.alpha", hp->n_rates + 1);
    if ((rc = vec(w, g, name, c_last, 1, &w->dac_alpha, st))) return rc;
    snprintf(name, sizeof name, "dac.decoder.model.%d.weight", hp->n_rates + 2);
    if ((rc = conv(&w->dac_out, g, &w->alloc, name, 1, c_last, FLEXICODEC_DAC_K, 1, 1, st)))
        return rc;
    snprintf(name, sizeof name, "dac.decoder.model.%d.bias", hp->n_rates + 2);
    return vec(w, g, name, 1, 0, &w->dac_out_b, st);
}

int flexicodec_decoder_weights_use_h16(flexicodec_decoder_weights *w, const sotto_gguf *g,
                                       sotto_status *st)
{
    if (!w || !g) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    const sotto_gguf_tensor *t = sotto_gguf_find_tensor(g, "dac.decoder.model.0.weight");
    if (!t || t->dtype != SOTTO_DTYPE_F16) return SOTTO_OK; /* an f32 model keeps f32 */
    const flexicodec_hparams *hp = &w->hp;
    const sotto_alloc *a = &w->alloc;
    int rc;
    if ((rc = sotto_linear_w_use_h16(&w->fsq_out, a, st)) ||
        (rc = sotto_linear_w_use_h16(&w->cnx_out, a, st)) ||
        (rc = sotto_conv1d_w_use_h16(&w->dac_in, a, st)) ||
        (rc = sotto_conv1d_w_use_h16(&w->dac_out, a, st)))
        return rc;
    for (int i = 0; w->cnx && i < hp->convnext_layers; i++)
        if ((rc = sotto_linear_w_use_h16(&w->cnx[i].pw1, a, st)) ||
            (rc = sotto_linear_w_use_h16(&w->cnx[i].pw2, a, st)))
            return rc;
    for (int i = 0; i < hp->n_codebooks; i++)
        if ((rc = sotto_linear_w_use_h16(&w->rvq[i].out_proj, a, st))) return rc;
    for (int i = 0; i < hp->n_rates; i++) {
        flexicodec_dac_block *b = &w->blocks[i];
        if ((rc = sotto_convtr1d_w_use_h16(&b->up, a, st))) return rc;
        for (int j = 0; j < FLEXICODEC_RU_COUNT; j++)
            if ((rc = sotto_conv1d_w_use_h16(&b->ru[j].conv7, a, st)) ||
                (rc = sotto_linear_w_use_h16(&b->ru[j].conv1, a, st)))
                return rc;
    }
    w->h16 = 1;
    return SOTTO_OK;
}

int flexicodec_decoder_weights_load(flexicodec_decoder_weights *w, const sotto_gguf *g,
                                    const sotto_alloc *alloc, sotto_status *st)
{
    if (!w || !g) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    memset(w, 0, sizeof *w);
    if (alloc)
        w->alloc = *alloc;
    else
        sotto_alloc_init(&w->alloc, NULL);
    int rc = load_all(w, g, st);
    if (rc) flexicodec_decoder_weights_free(w);
    return rc;
}

void flexicodec_decoder_weights_free(flexicodec_decoder_weights *w)
{
    if (!w) return;
    const sotto_alloc *a = &w->alloc;
    sotto_linear_w_free(&w->fsq_out, a);
    if (w->cnx) {
        for (int i = 0; i < w->hp.convnext_layers; i++) {
            sotto_conv1d_w_free(&w->cnx[i].dw, a);
            sotto_linear_w_free(&w->cnx[i].pw1, a);
            sotto_linear_w_free(&w->cnx[i].pw2, a);
        }
        sotto_free(a, w->cnx);
    }
    sotto_linear_w_free(&w->cnx_out, a);
    if (w->rvq) {
        for (int i = 0; i < w->hp.n_codebooks; i++)
            sotto_linear_w_free(&w->rvq[i].out_proj, a);
        sotto_free(a, w->rvq);
    }
    sotto_conv1d_w_free(&w->dac_in, a);
    if (w->blocks) {
        for (int i = 0; i < w->hp.n_rates; i++) {
            flexicodec_dac_block *b = &w->blocks[i];
            sotto_convtr1d_w_free(&b->up, a);
            for (int j = 0; j < FLEXICODEC_RU_COUNT; j++) {
                sotto_conv1d_w_free(&b->ru[j].conv7, a);
                sotto_linear_w_free(&b->ru[j].conv1, a);
            }
        }
        sotto_free(a, w->blocks);
    }
    sotto_conv1d_w_free(&w->dac_out, a);
    sotto_free(a, w->owned.data);
    sotto_alloc alloc = w->alloc;
    memset(w, 0, sizeof *w);
    w->alloc = alloc;
}
