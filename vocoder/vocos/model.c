/*
 * Vocos weights: hyperparameters from the `vocos.*` metadata written by
 * tools/convert/vocos.py, then every tensor looked up by its official state_dict name,
 * checked for dtype and shape (the culprit is named on failure) and repacked once into the
 * layout the kernels want.
 */
#include <stdio.h>
#include <string.h>

#include "core/gguf.h"
#include "vocoder/vocos/vocos.h"
#include "vocoder/vocos/vocos_cuda.h"

/* A tensor as f32: borrowed from the file when stored as f32, else converted into the pool. */
static int tensor_f32(vocos_weights *w, const sotto_model *m, const char *name, int n_dims,
                      const int64_t *shape, const float **out, sotto_status *st)
{
    return sotto_gguf_tensor_f32(m->gguf, name, n_dims, shape, &w->owned, out, st);
}

static int get_hparams(const sotto_gguf *g, vocos_hparams *hp, sotto_status *st)
{
    const char *feat, *pad, *mel_pad;
    int rc;
    memset(hp, 0, sizeof *hp);
    if ((rc = sotto_gguf_get_str(g, "vocos.feature_extractor", &feat, st)) ||
        (rc = sotto_gguf_get_i32(g, "vocos.sample_rate", &hp->sample_rate, st)) ||
        (rc = sotto_gguf_get_i32(g, "vocos.input_channels", &hp->input_channels, st)) ||
        (rc = sotto_gguf_get_i32(g, "vocos.dim", &hp->dim, st)) ||
        (rc = sotto_gguf_get_i32(g, "vocos.intermediate_dim", &hp->intermediate_dim, st)) ||
        (rc = sotto_gguf_get_i32(g, "vocos.num_layers", &hp->num_layers, st)) ||
        (rc = sotto_gguf_get_i32_or(g, "vocos.adanorm_num_embeddings", 0,
                                    &hp->adanorm_num_embeddings, st)) ||
        (rc = sotto_gguf_get_i32(g, "vocos.n_fft", &hp->n_fft, st)) ||
        (rc = sotto_gguf_get_i32(g, "vocos.hop_length", &hp->hop_length, st)) ||
        (rc = sotto_gguf_get_str(g, "vocos.padding", &pad, st)))
        return rc;
    if (!strcmp(feat, "mel"))
        hp->features = VOCOS_FEAT_MEL;
    else if (!strcmp(feat, "encodec"))
        hp->features = VOCOS_FEAT_ENCODEC;
    else
        return sotto_status_set(st, SOTTO_ERR_UNSUPPORTED,
                                "vocos.feature_extractor '%s' (expected mel or encodec)", feat);
    if (strcmp(pad, "center") && strcmp(pad, "same"))
        return sotto_status_set(st, SOTTO_ERR_UNSUPPORTED,
                                "vocos.padding '%s' (expected center or same)", pad);
    hp->head_pad_same = !strcmp(pad, "same");

    if (hp->sample_rate < 1000 || hp->sample_rate > 384000 || hp->input_channels < 1 ||
        hp->input_channels > 4096 || hp->dim < 1 || hp->dim > 8192 ||
        hp->intermediate_dim < 1 || hp->intermediate_dim > 32768 || hp->num_layers < 0 ||
        hp->num_layers > 256 || hp->adanorm_num_embeddings < 0 ||
        hp->adanorm_num_embeddings > 64 || hp->n_fft < 4 || hp->n_fft > 16384 ||
        (hp->n_fft & 1) || hp->hop_length < 1 || hp->hop_length > hp->n_fft)
        return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                "vocos hyperparameters out of range (sample_rate %d, dim %d, "
                                "intermediate %d, layers %d, n_fft %d, hop %d)",
                                hp->sample_rate, hp->dim, hp->intermediate_dim,
                                hp->num_layers, hp->n_fft, hp->hop_length);

    if (hp->features == VOCOS_FEAT_MEL) {
        if ((rc = sotto_gguf_get_i32(g, "vocos.mel.n_fft", &hp->mel_n_fft, st)) ||
            (rc = sotto_gguf_get_i32(g, "vocos.mel.hop_length", &hp->mel_hop, st)) ||
            (rc = sotto_gguf_get_i32(g, "vocos.mel.n_mels", &hp->mel_n_mels, st)) ||
            (rc = sotto_gguf_get_str_or(g, "vocos.mel.padding", "center", &mel_pad, st)))
            return rc;
        hp->mel_pad_same = !strcmp(mel_pad, "same");
        if (hp->mel_n_mels != hp->input_channels || hp->mel_n_fft < 4 ||
            hp->mel_n_fft > 16384 || (hp->mel_n_fft & 1) || hp->mel_hop != hp->hop_length)
            return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                    "vocos mel front end inconsistent: n_mels %d vs input "
                                    "channels %d, n_fft %d, hop %d vs head hop %d",
                                    hp->mel_n_mels, hp->input_channels, hp->mel_n_fft,
                                    hp->mel_hop, hp->hop_length);
    } else {
        int64_t per_bw[8];
        size_t n = 0;
        if ((rc = sotto_gguf_get_i32(g, "vocos.encodec.bins", &hp->codebook_bins, st)) ||
            (rc = sotto_gguf_get_i32(g, "vocos.encodec.num_codebooks", &hp->codebooks_total,
                                     st)) ||
            (rc = sotto_gguf_get_arr_i64(g, "vocos.encodec.codebooks_per_bandwidth", per_bw, 8,
                                         &n, st)))
            return rc;
        if (hp->codebook_bins < 1 || hp->codebook_bins > 65536 || hp->codebooks_total < 1 ||
            hp->codebooks_total > 64 || n < 1)
            return sotto_status_set(st, SOTTO_ERR_FORMAT, "vocos.encodec.* out of range");
        hp->n_bandwidths = (int)n;
        for (size_t i = 0; i < n; i++) {
            if (per_bw[i] < 1 || per_bw[i] > hp->codebooks_total)
                return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                        "vocos.encodec.codebooks_per_bandwidth[%zu] = %lld "
                                        "(stored codebooks: %d)",
                                        i, (long long)per_bw[i], hp->codebooks_total);
            hp->codebooks_per_bw[i] = (int)per_bw[i];
        }
        if (hp->adanorm_num_embeddings && hp->adanorm_num_embeddings < hp->n_bandwidths)
            return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                    "vocos: %d bandwidths but %d AdaLayerNorm rows",
                                    hp->n_bandwidths, hp->adanorm_num_embeddings);
    }
    return SOTTO_OK;
}

/* LayerNorm or AdaLayerNorm parameters under `prefix` ("backbone.norm", ...). */
static int load_norm(vocos_weights *w, const sotto_model *m, const char *prefix, int ada,
                     const float **lw, const float **lb, const float **as, const float **ash,
                     sotto_status *st)
{
    char name[160];
    const vocos_hparams *hp = &w->hp;
    int64_t vec[1] = {hp->dim}, tab[2] = {hp->adanorm_num_embeddings, hp->dim};
    int rc;
    *lw = *lb = *as = *ash = NULL;
    if (ada) {
        snprintf(name, sizeof name, "%s.scale.weight", prefix);
        if ((rc = tensor_f32(w, m, name, 2, tab, as, st))) return rc;
        snprintf(name, sizeof name, "%s.shift.weight", prefix);
        return tensor_f32(w, m, name, 2, tab, ash, st);
    }
    snprintf(name, sizeof name, "%s.weight", prefix);
    if ((rc = tensor_f32(w, m, name, 1, vec, lw, st))) return rc;
    snprintf(name, sizeof name, "%s.bias", prefix);
    return tensor_f32(w, m, name, 1, vec, lb, st);
}

static void vocos_free(sotto_model *m)
{
    vocos_weights *w = m->arch_data;
    if (!w) return;
#ifdef SOTTO_HAVE_CUDA
    vocos_cuda_weights_free(w->cuda);
#endif
    if (w->blocks) {
        for (int i = 0; i < w->hp.num_layers; i++) {
            sotto_linear_w_free(&w->blocks[i].pw1, &m->alloc);
            sotto_linear_w_free(&w->blocks[i].pw2, &m->alloc);
            sotto_conv1d_w_free(&w->blocks[i].dw, &m->alloc);
        }
        sotto_free(&m->alloc, w->blocks);
    }
    sotto_conv1d_w_free(&w->embed, &m->alloc);
    sotto_linear_w_free(&w->head, &m->alloc);
    sotto_free(&m->alloc, w->owned.data);
    sotto_free(&m->alloc, w);
    m->arch_data = NULL;
}

/* Elements of every tensor not stored as f32, so one conversion block can hold them all. */
static size_t non_f32_elems(const sotto_gguf *g)
{
    size_t n = 0;
    for (int64_t i = 0; i < sotto_gguf_tensor_count(g); i++) {
        const sotto_gguf_tensor *t = sotto_gguf_tensor_at(g, i);
        if (t->dtype != SOTTO_DTYPE_F32) n += (size_t)t->n_elems;
    }
    return n;
}

/* Depthwise conv [dim][1][7]: groups = dim. */
static int load_dwconv(vocos_weights *w, const sotto_model *m, int i, vocos_block *b,
                       sotto_status *st)
{
    char name[96];
    const int C = w->hp.dim;
    int64_t shape[3] = {C, 1, VOCOS_KERNEL}, bshape[1] = {C};
    const sotto_gguf_tensor *t;
    int rc;
    snprintf(name, sizeof name, "backbone.convnext.%d.dwconv.weight", i);
    if ((rc = sotto_gguf_tensor_check(m->gguf, name, -1, 3, shape, &t, st)) ||
        (rc = sotto_conv1d_w_init(&b->dw, t, 1, 1, C, &m->alloc, st)))
        return rc;
    sotto_gguf_tensor_release(m->gguf, t);
    snprintf(name, sizeof name, "backbone.convnext.%d.dwconv.bias", i);
    return tensor_f32(w, m, name, 1, bshape, &b->dw_b, st);
}

/* A Linear weight in the file's precision (see vocos.h). */
static int load_linear(sotto_linear_w *l, const sotto_model *m, const char *name,
                       const int64_t *shape, sotto_status *st)
{
    return sotto_linear_w_load(l, m->gguf, name, shape[0], shape[1], 0, &m->alloc, st);
}

static int load_block(vocos_weights *w, const sotto_model *m, int i, sotto_status *st)
{
    const vocos_hparams *hp = &w->hp;
    vocos_block *b = &w->blocks[i];
    char name[96];
    int64_t s_pw1[2] = {hp->intermediate_dim, hp->dim}, s_pw2[2] = {hp->dim,
                                                                    hp->intermediate_dim};
    int64_t s_i[1] = {hp->intermediate_dim}, s_d[1] = {hp->dim};
    int rc;
    if ((rc = load_dwconv(w, m, i, b, st))) return rc;
    snprintf(name, sizeof name, "backbone.convnext.%d.norm", i);
    if ((rc = load_norm(w, m, name, hp->adanorm_num_embeddings > 0, &b->ln_w, &b->ln_b,
                        &b->ada_scale, &b->ada_shift, st)))
        return rc;
    snprintf(name, sizeof name, "backbone.convnext.%d.pwconv1.weight", i);
    if ((rc = load_linear(&b->pw1, m, name, s_pw1, st))) return rc;
    snprintf(name, sizeof name, "backbone.convnext.%d.pwconv1.bias", i);
    if ((rc = tensor_f32(w, m, name, 1, s_i, &b->pw1_b, st))) return rc;
    snprintf(name, sizeof name, "backbone.convnext.%d.pwconv2.weight", i);
    if ((rc = load_linear(&b->pw2, m, name, s_pw2, st))) return rc;
    /* The ConvNeXt products carry 94 % of the work; the head stays in f32 arithmetic, since
     * exp() of its magnitude output would magnify a binary16 error (vocos.h). */
    if (m->f16_math && b->pw1.w16 && b->pw2.w16 &&
        ((rc = sotto_linear_w_use_h16(&b->pw1, &m->alloc, st)) ||
                        (rc = sotto_linear_w_use_h16(&b->pw2, &m->alloc, st))))
        return rc;
    snprintf(name, sizeof name, "backbone.convnext.%d.pwconv2.bias", i);
    if ((rc = tensor_f32(w, m, name, 1, s_d, &b->pw2_b, st))) return rc;
    snprintf(name, sizeof name, "backbone.convnext.%d.gamma", i);
    b->gamma = NULL; /* layer scale is optional (layer_scale_init_value <= 0) */
    if (sotto_gguf_find_tensor(m->gguf, name)) return tensor_f32(w, m, name, 1, s_d, &b->gamma,
                                                                 st);
    return SOTTO_OK;
}

int sotto_vocos_load(sotto_model *m, sotto_status *st)
{
    int rc;
    vocos_weights *w = sotto_calloc(&m->alloc, 1, sizeof *w);
    if (!w) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    m->arch_data = w;
    m->arch_free = vocos_free;
    vocos_hparams *hp = &w->hp;
    if ((rc = get_hparams(m->gguf, hp, st))) return rc;

    w->owned.cap = non_f32_elems(m->gguf);
    if (w->owned.cap && !(w->owned.data = sotto_malloc(&m->alloc, w->owned.cap * sizeof(float))))
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");

    const int ada = hp->adanorm_num_embeddings > 0;
    const sotto_gguf_tensor *t;
    int64_t s_embed[3] = {hp->dim, hp->input_channels, VOCOS_KERNEL}, s_d[1] = {hp->dim};
    if ((rc = sotto_gguf_tensor_check(m->gguf, "backbone.embed.weight", -1, 3, s_embed, &t,
                                      st)) ||
        (rc = sotto_conv1d_w_init(&w->embed, t, 1, 1, 1, &m->alloc, st)) ||
        (sotto_gguf_tensor_release(m->gguf, t), 0) ||
        (rc = tensor_f32(w, m, "backbone.embed.bias", 1, s_d, &w->embed_b, st)) ||
        (rc = load_norm(w, m, "backbone.norm", ada, &w->norm_w, &w->norm_b,
                        &w->norm_ada_scale, &w->norm_ada_shift, st)) ||
        (rc = tensor_f32(w, m, "backbone.final_layer_norm.weight", 1, s_d, &w->final_w, st)) ||
        (rc = tensor_f32(w, m, "backbone.final_layer_norm.bias", 1, s_d, &w->final_b, st)))
        return rc;

    w->blocks = sotto_calloc(&m->alloc, (size_t)(hp->num_layers ? hp->num_layers : 1),
                             sizeof *w->blocks);
    if (!w->blocks) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    for (int i = 0; i < hp->num_layers; i++)
        if ((rc = load_block(w, m, i, st))) return rc;
    m->f16_math_used = m->f16_math && hp->num_layers > 0 && w->blocks[0].pw1.h16 != NULL;

    int64_t s_head[2] = {hp->n_fft + 2, hp->dim}, s_hb[1] = {hp->n_fft + 2},
            s_win[1] = {hp->n_fft};
    if ((rc = load_linear(&w->head, m, "head.out.weight", s_head, st)) ||
        (rc = tensor_f32(w, m, "head.out.bias", 1, s_hb, &w->head_b, st)))
        return rc;
    /* The ISTFT window is a buffer in the checkpoint; NULL means the periodic Hann the
     * official head builds, which the DSP code makes itself. */
    if (sotto_gguf_find_tensor(m->gguf, "head.istft.window") &&
        (rc = tensor_f32(w, m, "head.istft.window", 1, s_win, &w->head_window, st)))
        return rc;

    if (hp->features == VOCOS_FEAT_MEL) {
        int64_t s_fb[2] = {hp->mel_n_fft / 2 + 1, hp->mel_n_mels}, s_mw[1] = {hp->mel_n_fft};
        if ((rc = tensor_f32(w, m, "feature_extractor.mel_spec.mel_scale.fb", 2, s_fb,
                             &w->mel_fb, st)))
            return rc;
        if (sotto_gguf_find_tensor(m->gguf, "feature_extractor.mel_spec.spectrogram.window") &&
            (rc = tensor_f32(w, m, "feature_extractor.mel_spec.spectrogram.window", 1, s_mw,
                             &w->mel_window, st)))
            return rc;
    } else {
        int64_t s_cb[2] = {(int64_t)hp->codebooks_total * hp->codebook_bins,
                           hp->input_channels};
        if ((rc = tensor_f32(w, m, "feature_extractor.codebook_weights", 2, s_cb,
                             &w->codebooks, st)))
            return rc;
    }
#ifdef SOTTO_HAVE_CUDA
    /* The CUDA forward (vocos_cuda.h) covers every model loaded here (mel or EnCodec features,
     * LayerNorm or AdaLayerNorm); the weights go to the device once, here, for every vocoder
     * made on the model, in bf16 when params.gpu_bf16 asks for it. */
    m->cuda_path = m->cuda_ok;
    if (m->cuda_path &&
        (rc = sotto_model_cuda_fallback(
             m, vocos_cuda_weights_create(w, m->params.device, m->params.gpu_bf16, &w->cuda, st),
             st)))
        return rc;
#endif
    return SOTTO_OK;
}
