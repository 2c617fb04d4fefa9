/*
 * FlexiCodec encode path from audio: the front end and the semantic features that
 * flexicodec_encode_from_features (encode.c) takes.
 *
 *   wave [n] (16 kHz) --Kaldi fbank (hamming, 80 mels, ×32768, dither 0)--> [T_fb][80]
 *   --LFR 7/6 + CMVN--> [T_lfr][560] --SenseVoice--> [T_lfr][ssl]
 *   --4/3 downsampling (F.interpolate linear)--> [T'][ssl] (12.5 Hz)
 *   --flexicodec_encode_from_features--> groups
 *
 * Scratch layout (floats): features [T'][ssl] | then either the semantic stream's fbank
 * [T_fb][n_mels] | LFR [T_lfr][input] | SenseVoice out [T_lfr][dim] | SenseVoice scratch, or,
 * once the features are made, the encode scratch.
 */
#include <math.h>
#include <string.h>

#include "codecs/flexicodec/encode.h"

int64_t flexicodec_downsample_frames(double factor, int64_t T)
{
    if (!(factor > 0.0) || isinf(factor)) return SOTTO_ERR_INVALID_ARG;
    if (T <= 0) return 0;
    if (factor == 1.0) return T;
    if (factor == floor(factor)) return T / (int64_t)factor;
    return (int64_t)((double)T / factor);
}

int64_t flexicodec_downsample(double factor, const float *x, int64_t T, int C, float *y)
{
    const int64_t To = flexicodec_downsample_frames(factor, T);
    if (To < 0 || C < 1 || (To > 0 && (!x || !y))) return To < 0 ? To : SOTTO_ERR_INVALID_ARG;
    if (To == 0) return 0;
    if (factor == 1.0) {
        memmove(y, x, sizeof(float) * (size_t)T * (size_t)C);
        return T;
    }
    if (factor == floor(factor)) { /* avg_pool1d(k = s = factor) */
        const int64_t k = (int64_t)factor;
        for (int64_t t = 0; t < To; t++)
            for (int c = 0; c < C; c++) {
                float acc = 0.0f;
                for (int64_t j = 0; j < k; j++)
                    acc += x[(t * k + j) * C + c];
                y[t * C + c] = acc / (float)k;
            }
        return To;
    }
    /* torch upsample_linear1d, align_corners = False, output size given (no scale factor) */
    const float scale = (float)T / (float)To;
    for (int64_t t = 0; t < To; t++) {
        float src = scale * ((float)t + 0.5f) - 0.5f;
        if (src < 0.0f) src = 0.0f;
        int64_t i0 = (int64_t)floorf(src);
        if (i0 > T - 1) i0 = T - 1;
        float l1 = src - (float)i0;
        l1 = l1 < 0.0f ? 0.0f : l1 > 1.0f ? 1.0f : l1;
        const float l0 = 1.0f - l1;
        const int64_t i1 = i0 + (i0 < T - 1 ? 1 : 0);
        const float *a = x + i0 * C, *b = x + i1 * C;
        float *o = y + t * C;
        for (int c = 0; c < C; c++)
            o[c] = fmaf(a[c], l0, l1 * b[c]);
    }
    return To;
}

sotto_fbank_params flexicodec_fbank_params(int n_mels)
{
    sotto_fbank_params p = sotto_fbank_default_params();
    p.sample_rate_hz = 16000;
    p.frame_length_ms = 25.0f;
    p.frame_shift_ms = 10.0f;
    p.snip_edges = 1;
    p.dither = 0.0f;
    p.window = SOTTO_FBANK_WINDOW_HAMMING;
    p.n_mels = n_mels;
    p.input_scale = 32768.0f;
    return p;
}

int flexicodec_semantic_sizes(const flexicodec_encoder_weights *w, const sensevoice *sv,
                              const sotto_fbank *fb, int64_t n, flexicodec_semantic_size *z)
{
    if (!w || !sv || !sv->blocks || !fb || n < 0 || !z) return SOTTO_ERR_INVALID_ARG;
    const sensevoice_cfg *c = &sv->cfg;
    if (c->dim != w->hp.ssl_dim || sotto_fbank_n_mels(fb) != c->n_mels)
        return SOTTO_ERR_INVALID_ARG;
    z->T_fb = sotto_fbank_num_frames(fb, n);
    if (z->T_fb < 0) return SOTTO_ERR_INVALID_ARG;
    z->T_lfr = sensevoice_lfr_frames(z->T_fb, c->lfr_n);
    z->T_sem = flexicodec_downsample_frames(w->hp.downsample_factor, z->T_lfr);
    if (z->T_sem < 0) return SOTTO_ERR_INVALID_ARG;
    z->fb = (size_t)z->T_fb * (size_t)c->n_mels;
    z->lfr = (size_t)z->T_lfr * (size_t)c->input_size;
    z->svo = (size_t)z->T_lfr * (size_t)c->dim;
    z->feat = (size_t)z->T_sem * (size_t)w->hp.ssl_dim;
    return SOTTO_OK;
}

int64_t flexicodec_semantic_features(const sotto_cpu *cpu, const flexicodec_encoder_weights *w,
                                     const sensevoice *sv, sotto_fbank *fb, const float *wave,
                                     int64_t n, float *feat, float *scratch,
                                     flexicodec_sensevoice_fn sv_fn, void *sv_ctx)
{
    flexicodec_semantic_size z;
    int64_t rc;
    if ((!sv_fn && !cpu) || !scratch || (n && !wave) ||
        (rc = flexicodec_semantic_sizes(w, sv, fb, n, &z)))
        return SOTTO_ERR_INVALID_ARG;
    if (z.T_fb == 0) return 0;
    if (z.T_sem && !feat) return SOTTO_ERR_INVALID_ARG;
    float *fbank = scratch;
    float *lfr = fbank + z.fb;
    float *svo = lfr + z.lfr;
    float *rest = svo + z.svo;
    rc = sotto_fbank_compute(fb, wave, n, fbank, z.T_fb);
    if (rc < 0) return rc;
    if (rc != z.T_fb) return SOTTO_ERR_INTERNAL;
    rc = sensevoice_lfr_cmvn(sv, fbank, z.T_fb, lfr);
    if (rc < 0) return rc;
    if (rc != z.T_lfr) return SOTTO_ERR_INTERNAL;
    if (z.T_lfr > 0 && (rc = sv_fn ? sv_fn(sv_ctx, sv, lfr, z.T_lfr, svo, rest)
                                   : sensevoice_encode(cpu, sv, NULL, lfr, z.T_lfr, svo, rest)))
        return rc;
    rc = flexicodec_downsample(w->hp.downsample_factor, svo, z.T_lfr, sv->cfg.dim, feat);
    if (rc < 0) return rc;
    return rc == z.T_sem ? rc : SOTTO_ERR_INTERNAL;
}

/* The CPU encode's scratch: the semantic features, then the semantic stream's buffers and the
 * SenseVoice scratch, reused afterwards as flexicodec_encode_from_features_rc's scratch. */
typedef struct sizes {
    flexicodec_semantic_size sem;
    size_t rest;
} sizes;

static int get_sizes(const flexicodec_decoder_weights *dw, const flexicodec_encoder_weights *w,
                     const sensevoice *sv, const sotto_fbank *fb, int64_t n, sizes *z)
{
    if (!dw || flexicodec_semantic_sizes(w, sv, fb, n, &z->sem)) return SOTTO_ERR_INVALID_ARG;
    const flexicodec_semantic_size *m = &z->sem;
    const size_t sv_s = m->T_lfr ? sensevoice_scratch_size(sv, m->T_lfr) : 1;
    const size_t s1 = m->fb + m->lfr + m->svo + sv_s;
    const size_t s2 = flexicodec_encode_scratch(dw, w, n, m->T_sem);
    if (!sv_s || !s2) return SOTTO_ERR_INVALID_ARG;
    z->rest = s1 > s2 ? s1 : s2;
    return SOTTO_OK;
}

size_t flexicodec_encode_audio_scratch(const flexicodec_decoder_weights *dw,
                                       const flexicodec_encoder_weights *w, const sensevoice *sv,
                                       const sotto_fbank *fb, int64_t n)
{
    sizes z;
    if (get_sizes(dw, w, sv, fb, n, &z)) return 0;
    return z.sem.feat + z.rest + 4;
}

int64_t flexicodec_encode_audio_frames(const flexicodec_encoder_weights *w, const sensevoice *sv,
                                       const sotto_fbank *fb, int64_t n)
{
    if (!w || !sv || !fb || n < 0) return SOTTO_ERR_INVALID_ARG;
    const int64_t T_fb = sotto_fbank_num_frames(fb, n);
    if (T_fb < 0) return SOTTO_ERR_INVALID_ARG;
    const int64_t T_sem = flexicodec_downsample_frames(w->hp.downsample_factor,
                                                       sensevoice_lfr_frames(T_fb, sv->cfg.lfr_n));
    const int64_t T_ac = flexicodec_dac_encode_frames(&w->hp, n);
    if (T_sem < 0 || T_ac < 0) return SOTTO_ERR_INVALID_ARG;
    return T_sem < T_ac ? T_sem : T_ac;
}

int64_t flexicodec_encode_audio(const sotto_cpu *cpu, const flexicodec_decoder_weights *dw,
                                const flexicodec_encoder_weights *w, const sensevoice *sv,
                                sotto_fbank *fb, const float *wave, int64_t n, float threshold,
                                flexicodec_rate_ctl *rate, int n_q, int32_t *lengths, int32_t *fsq,
                                int32_t *rvq, float *scratch)
{
    sizes z;
    int64_t rc;
    if (!cpu || !scratch || (n && !wave) || (rc = get_sizes(dw, w, sv, fb, n, &z)))
        return SOTTO_ERR_INVALID_ARG;
    float *feat = scratch;
    float *rest = feat + z.sem.feat;
    if ((rc = flexicodec_semantic_features(cpu, w, sv, fb, wave, n, feat, rest, NULL, NULL)) < 0)
        return rc;
    return flexicodec_encode_from_features_rc(cpu, dw, w, wave, n, feat, z.sem.T_sem, threshold,
                                              rate, n_q, lengths, fsq, rvq, rest);
}
