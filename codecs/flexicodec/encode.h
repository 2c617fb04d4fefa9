/*
 * FlexiCodec, encode side without SenseVoice: the stages of the official
 * `FlexiCodec.forward_features(..., encode_only=True)` (flexicodec 0.1.2) from a 16 kHz
 * waveform and the 12.5 Hz semantic features that SenseVoice and the 4/3 downsampling
 * deliver:
 *
 *   waveform [N] --zero-pad to a multiple of hop, flexicodec_dac_encode--> acoustic [T_ac][lat]
 *   both streams truncated to T = min(T_ac, T_sem)
 *   semantic [T][ssl] --flexicodec_merge (threshold)--> group lengths [G]
 *   semantic --flexicodec_aggregate (semantic_aggregator)--> [G][ssl]
 *            --flexicodec_semantic_encode (ConvNeXt encoder, project_in, FSQ)--> fsq [G]
 *   acoustic --flexicodec_aggregate (acoustic_aggregator)--> [G][lat]
 *            − flexicodec_semantic_decode(fsq) --flexicodec_rvq_encode (n_q stages)--> rvq [G][n_q]
 *
 * flexicodec_encode_from_features chains everything. The weights come from a GGUF written
 * by `tools/convert/flexicodec.py --with-encoder`; the decode-side weights
 * (flexicodec_decoder_weights, flexicodec.h) are needed as well (ConvNeXt decoder and FSQ
 * project_out for the acoustic residual, RVQ codebooks and out_proj).
 *
 * Conventions of nn/ops.h and flexicodec.h: time-major activations x[T][C]; run functions write
 * into caller buffers, take caller scratch sized by the matching *_scratch function (floats),
 * never allocate, lock or log, and return SOTTO_OK, a count ≥ 0 or a negative sotto_error.
 */
#ifndef SOTTO_FLEXICODEC_ENCODE_H
#define SOTTO_FLEXICODEC_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "codecs/flexicodec/bottleneck.h"
#include "codecs/flexicodec/flexicodec.h"
#include "dsp/fbank.h"
#include "encoders/sensevoice/sensevoice.h"

#define FLEXICODEC_MAX_ENC_RATES 8 /* DAC encoder blocks (the release: 5) */

/* The encode-side `flexicodec.*` metadata. */
typedef struct flexicodec_encoder_hparams {
    int sample_rate;
    int hop_length;  /* prod(encoder_rates) (1280); must equal the decoder's */
    int latent_dim;  /* DAC latent (512) */
    int encoder_dim; /* width of the first conv (32); block i doubles it */
    int n_rates;
    int encoder_rates[FLEXICODEC_MAX_ENC_RATES]; /* [4, 4, 5, 8, 2] */
    int dilations[FLEXICODEC_RU_COUNT];          /* [1, 3, 9] */
    int ssl_dim;                                 /* semantic feature width (512) */
    int convnext_dim, convnext_intermediate, convnext_layers, convnext_causal;
    float convnext_eps;
    int n_levels;
    int fsq_levels[FLEXICODEC_MAX_LEVELS];
    float fsq_bound_eps;      /* FSQ.bound eps (1e-3) */
    float merge_eps;          /* F.cosine_similarity eps (1e-8) */
    float default_threshold;  /* similarity_threshold of the config (0.91) */
    double downsample_factor; /* semantic_downsample_factor (1.33333): SenseVoice rate → 12.5 Hz */
    int max_tokens_per_group; /* 8; 0 = no limit */
    int n_codebooks;          /* RVQ stages with an in_proj (all stored stages) */
} flexicodec_encoder_hparams;

/* One query-token aggregator (QueryTokenAggregator with mean-pooling queries). */
typedef struct flexicodec_aggregator {
    int in_out_dim;              /* feature width (ssl_dim or latent_dim) */
    int dim;                     /* transformer d_model */
    const float *query;          /* query_embedding [in_out_dim] */
    int has_proj;                /* in_out_dim != dim: input_proj / output_projs.0 */
    sotto_linear_w in_proj;      /* [dim][in_out_dim], no bias */
    sotto_linear_w out_proj;     /* [in_out_dim][dim], no bias */
    flexicodec_bottleneck stack; /* the Mimi transformer layers */
} flexicodec_aggregator;

typedef struct flexicodec_enc_block {
    int c_in, c_out, stride, padding; /* strided conv k 2s, padding ceil(s/2); c_out = 2 c_in */
    flexicodec_res_unit ru[FLEXICODEC_RU_COUNT];
    const float *alpha; /* Snake [c_in] */
    sotto_conv1d_w down;
    const float *down_b;
} flexicodec_enc_block;

typedef struct flexicodec_encoder_weights {
    flexicodec_encoder_hparams hp;
    sotto_alloc alloc;
    sotto_conv1d_w dac_in; /* dac.encoder.block.0 [encoder_dim][1][7] */
    const float *dac_in_b;
    flexicodec_enc_block *blocks; /* [n_rates] */
    const float *dac_alpha;       /* final Snake [encoder_dim·2^n_rates] */
    sotto_conv1d_w dac_out;       /* [latent][C_last][3], padding 1 */
    const float *dac_out_b;
    sotto_linear_w cnx_in; /* convnext_encoder.0: 1×1 conv [convnext_dim][ssl_dim] */
    const float *cnx_in_b;
    flexicodec_convnext_block *cnx; /* convnext_encoder.1 … L */
    sotto_linear_w fsq_in;          /* semantic_vq.fsq.project_in [n_levels][convnext_dim] */
    const float *fsq_in_b;
    sotto_linear_w *rvq_in; /* [n_codebooks] in_proj [dim][latent] (folded 1×1 conv) */
    const float **rvq_in_b;
    float **rvq_cb_norm; /* [n_codebooks] L2-normalised codebook rows [size][dim] */
    float **rvq_cb_sq;   /* [n_codebooks] squared norms of the normalised rows [size] */
    flexicodec_aggregator sem_agg, ac_agg;
    sotto_f32_pool owned;
} flexicodec_encoder_weights;

/*
 * Reads the encode-side metadata and tensors (names as the official state_dict, weight norm
 * folded by the converter), checking every tensor's presence, dtype and shape (a failure names
 * it, e.g. "missing tensor 'dac.encoder.block.2.block.4.weight'"), and the consistency with
 * the decode side `dec` (latent width, hop, FSQ levels, ConvNeXt width, codebooks). Vectors
 * stored as f32 are borrowed from g, which must stay open until
 * flexicodec_encoder_weights_free. Errors: SOTTO_ERR_MODEL (a key or tensor missing or of the
 * wrong shape: a decode-only file), SOTTO_ERR_FORMAT (values out of range or inconsistent),
 * SOTTO_ERR_OUT_OF_MEMORY, SOTTO_ERR_INVALID_ARG. On failure *w is left freed (zeroed).
 */
int flexicodec_encoder_weights_load(flexicodec_encoder_weights *w, const sotto_gguf *g,
                                    const flexicodec_decoder_weights *dec, const sotto_alloc *alloc,
                                    sotto_status *st);
/* Releases what load made; safe on a zeroed or already-freed struct. */
void flexicodec_encoder_weights_free(flexicodec_encoder_weights *w);
/* Binary16 arithmetic for the encode side's Linear weights and ungrouped convs (DAC encoder,
 * ConvNeXt encoder, FSQ project_in, RVQ in_proj, both aggregators); the RVQ code search
 * (cosine against the codebooks) and the merge similarities stay f32. For a model loaded with
 * f16_arithmetic = 2 whose file stores them in f16 (the caller checks). Load time; errors:
 * SOTTO_ERR_OUT_OF_MEMORY. */
int flexicodec_encoder_weights_use_h16(flexicodec_encoder_weights *w, sotto_status *st);

/* ---- DAC encoder ----------------------------------------------------------------------- */

/* Frames the DAC encoder gives for n samples: ceil(n / hop) (the input is zero-padded on the
 * right to a multiple of hop, DAC.preprocess); 0 for n = 0. */
int64_t flexicodec_dac_encode_frames(const flexicodec_encoder_hparams *hp, int64_t n);
/* Scratch floats flexicodec_dac_encode needs for n samples. */
size_t flexicodec_dac_encode_scratch(const flexicodec_encoder_hparams *hp, int64_t n);
/*
 * dac.encoder on wave[n] zero-padded to a multiple of hop: conv k7 p3 (1 → encoder_dim); per
 * block three residual units x + conv1(Snake(conv7_d(Snake(x)))) (d = 1, 3, 9), Snake, conv
 * k 2s stride s padding ceil(s/2) (width doubles); Snake; conv k3 p1 → z[T][latent_dim].
 * Returns T = flexicodec_dac_encode_frames(n).
 */
int64_t flexicodec_dac_encode(const sotto_cpu *cpu, const flexicodec_encoder_weights *w,
                              const float *wave, int64_t n, float *z, float *scratch);

/* ---- frame merging ----------------------------------------------------------------------- */

/*
 * Similarity-based grouping of h[T][C] (FlexiCodec._perform_similarity_alignment_vectorized):
 * sim[t] = cos(h[t], h[t+1]) (each row divided by max(‖row‖, eps), then the dot product), a
 * new group at frame 0 and wherever sim[t−1] <= threshold, runs cut into pieces of
 * max_per_group frames (0: no limit) counted from each similarity boundary. Writes
 * lengths[G] (G ≤ T) and, when sim is not NULL, sim[T−1] (doubles accumulate, the result is
 * rounded to float before the comparison). threshold 1.0 (or more) gives one group per
 * frame unless two frames are exactly parallel. Returns G.
 */
int64_t flexicodec_merge(const float *h, int64_t T, int C, float threshold, float eps,
                         int max_per_group, int32_t *lengths, float *sim);

/* Groups flexicodec_merge gives at `threshold` from the similarities sim[T−1] it wrote (the
 * same rule and the same float comparison), without the features: O(T). */
int64_t flexicodec_merge_count(const float *sim, int64_t T, float threshold, int max_per_group);

/*
 * Rate control: the threshold whose group count comes nearest a target. G(θ) =
 * flexicodec_merge_count(sim, T, θ, M) is monotone non-decreasing in θ (a higher θ only adds
 * boundaries, and cutting a run of L frames into L1 + L2 gives ceil(L1/M) + ceil(L2/M) ≥
 * ceil(L/M) groups, at most one more), and it changes only at the similarity values. The
 * candidates are θ = 0, every distinct similarity strictly between 0 and 1, and θ = 1, sorted;
 * a bisection over them finds the largest candidate with G ≤ target, then the next candidate
 * is taken instead when its count is strictly nearer the target (a tie keeps the lower rate).
 * Targets outside [G(0), G(1)] clamp to θ = 0 (clamped −1) or θ = 1 (clamped +1).
 */
typedef struct flexicodec_rate_ctl {
    double target_groups; /* in: groups wanted for this utterance (≥ 0) */
    float *sim, *work;    /* in: scratch of T floats each (T: the frames merged) */
    float threshold;      /* out: the chosen threshold, 0..1 */
    int clamped;          /* out: 0, −1 (target below G(0)), +1 (target above G(1)) */
    int64_t g_min, g_max; /* out: groups at θ = 0 and at θ = 1 */
} flexicodec_rate_ctl;

/* Fills rc's outputs for sim[T−1] (T ≥ 1) and max_per_group (0: no limit). Returns SOTTO_OK or
 * SOTTO_ERR_INVALID_ARG. */
int flexicodec_pick_threshold(const float *sim, int64_t T, int max_per_group,
                              flexicodec_rate_ctl *rc);

/* ---- query-token aggregation ------------------------------------------------------------- */

/* Scratch floats flexicodec_aggregate needs for T frames in G groups. */
size_t flexicodec_aggregate_scratch(const flexicodec_aggregator *a, int64_t T, int64_t G);
/*
 * QueryTokenAggregator.forward for one utterance: x[T][in_out_dim] grouped by lengths[G]
 * (Σ lengths = T, each ≥ 1); query g = mean of its frames + query_embedding, placed right
 * after the group's last frame; the interleaved sequence of T + G rows (positions 0 … T+G−1)
 * goes through input_proj (when present), the transformer stack and output_projs.0; y[G][in_out]
 * = the outputs at the query positions.
 */
int flexicodec_aggregate(const sotto_cpu *cpu, const flexicodec_aggregator *a, const float *x,
                         int64_t T, const int32_t *lengths, int64_t G, float *y, float *scratch);
/* The interleaved input sequence of flexicodec_aggregate: seq[T + G][in_out_dim], group g's
 * frames then its query (mean of the frames + query_embedding). Returns SOTTO_OK, or
 * SOTTO_ERR_INVALID_ARG when the lengths are not each ≥ 1 with Σ = T. */
int flexicodec_aggregate_sequence(const flexicodec_aggregator *a, const float *x, int64_t T,
                                  const int32_t *lengths, int64_t G, float *seq);
/* An aggregation with flexicodec_aggregate's contract, run elsewhere (the CUDA encoder's
 * device aggregators): ctx is the caller's, scratch holds flexicodec_aggregate_scratch floats. */
typedef int (*flexicodec_aggregate_fn)(void *ctx, const flexicodec_aggregator *a, const float *x,
                                       int64_t T, const int32_t *lengths, int64_t G, float *y,
                                       float *scratch);

/* ---- semantic branch --------------------------------------------------------------------- */

/*
 * FSQ quantisation of z[G][n_levels] (FSQ.quantize + codes_to_indices, float32 as torch):
 * b = tanh(z + shift)·half_l − offset with half_l = (L − 1)(1 − eps)/2, offset 0.5 for even L
 * (0 for odd), shift = tan(offset / half_l); q = round-half-even(b); index = Σ (q + ⌊L/2⌋)·basis.
 * bound (may be NULL) receives b [G][n_levels].
 */
int flexicodec_fsq_quantize(const flexicodec_encoder_hparams *hp, const float *z, int64_t G,
                            int32_t *idx, float *bound);
/* Scratch floats flexicodec_semantic_encode needs. */
size_t flexicodec_semantic_encode_scratch(const flexicodec_encoder_hparams *hp, int64_t G);
/* x[G][ssl_dim] (aggregated features) → ConvNeXt encoder → project_in → FSQ: idx[G]; bound
 * as flexicodec_fsq_quantize (may be NULL). */
int flexicodec_semantic_encode(const sotto_cpu *cpu, const flexicodec_encoder_weights *w,
                               const float *x, int64_t G, int32_t *idx, float *bound,
                               float *scratch);

/* ---- acoustic branch --------------------------------------------------------------------- */

/* Scratch floats flexicodec_rvq_encode needs. */
size_t flexicodec_rvq_encode_scratch(const flexicodec_encoder_weights *w, int64_t G);
/*
 * Residual VQ of r[G][latent] (overwritten with the final residual) for n_q stages: per stage
 * z = in_proj(r); code = argmax over rows of −(‖ẑ‖² − 2 ẑ·ĉ + ‖ĉ‖²) with ẑ, ĉ the
 * L2-normalised z and codebook rows (VectorQuantize.decode_latents; the first maximum wins);
 * r −= out_proj(codebook[code]) (the un-normalised row). codes[g·ldc + q]; ldc ≥ n_q.
 */
int flexicodec_rvq_encode(const sotto_cpu *cpu, const flexicodec_decoder_weights *dw,
                          const flexicodec_encoder_weights *w, float *r, int64_t G, int n_q,
                          int32_t *codes, int ldc, float *scratch);

/* ---- everything -------------------------------------------------------------------------- */

/* Scratch floats flexicodec_encode_from_features needs for n samples and T_sem feature frames
 * (0 on bad arguments). */
size_t flexicodec_encode_scratch(const flexicodec_decoder_weights *dw,
                                 const flexicodec_encoder_weights *w, int64_t n, int64_t T_sem);
/*
 * One utterance: wave[n] (16 kHz) and feats[T_sem][ssl_dim] (12.5 Hz semantic features) →
 * T = min(ceil(n/hop), T_sem) frames, merged at `threshold` into G groups: lengths[G],
 * fsq[G], rvq[G][n_q] (row stride n_q). The caller sizes the outputs for T groups (G ≤ T).
 * 0 ≤ n_q ≤ the stored stages. Returns G (0 when T = 0).
 */
int64_t flexicodec_encode_from_features(const sotto_cpu *cpu, const flexicodec_decoder_weights *dw,
                                        const flexicodec_encoder_weights *w, const float *wave,
                                        int64_t n, const float *feats, int64_t T_sem,
                                        float threshold, int n_q, int32_t *lengths, int32_t *fsq,
                                        int32_t *rvq, float *scratch);
/* The same with rate control: when rate is not NULL, the similarities are computed once, the
 * threshold is picked by flexicodec_pick_threshold (rate's sim/work hold T floats each) and
 * `threshold` is ignored; rate's outputs say what was chosen. */
int64_t flexicodec_encode_from_features_rc(const sotto_cpu *cpu,
                                           const flexicodec_decoder_weights *dw,
                                           const flexicodec_encoder_weights *w, const float *wave,
                                           int64_t n, const float *feats, int64_t T_sem,
                                           float threshold, flexicodec_rate_ctl *rate, int n_q,
                                           int32_t *lengths, int32_t *fsq, int32_t *rvq,
                                           float *scratch);

/* ---- audio in: fbank → SenseVoice → 4/3 downsampling → the above (encode_audio.c) ------- */

/*
 * What follows the two encoders, for callers that computed both streams themselves (the CUDA
 * encoder): feats[T][ssl_dim] semantic and ac[T][latent_dim] acoustic frames (already
 * truncated to the common T) → merging at `threshold` (or by rate control when rate is not
 * NULL, as flexicodec_encode_from_features_rc), both aggregators, FSQ, the semantic decode and
 * RVQ; outputs and return value as flexicodec_encode_from_features. scratch: at least
 * T·(ssl_dim + 2·latent_dim) floats plus what those stages take (flexicodec_encode_scratch
 * covers it). agg: NULL for flexicodec_aggregate on cpu, else what runs both aggregators
 * (with agg_ctx).
 */
int64_t flexicodec_encode_streams(const sotto_cpu *cpu, const flexicodec_decoder_weights *dw,
                                  const flexicodec_encoder_weights *w, const float *feats,
                                  const float *ac, int64_t T, float threshold,
                                  flexicodec_rate_ctl *rate, int n_q, int32_t *lengths,
                                  int32_t *fsq, int32_t *rvq, float *scratch,
                                  flexicodec_aggregate_fn agg, void *agg_ctx);

/*
 * Frames _downsample_semantic_features gives for T input frames: T for factor 1,
 * floor(T / factor) for an integer factor (avg_pool1d), else int(T / factor) evaluated in
 * double precision as Python does (1.33333: 32 → 24). 0 for T ≤ 0; negative for a factor
 * that is not finite and > 0.
 */
int64_t flexicodec_downsample_frames(double factor, int64_t T);
/*
 * FlexiCodec._downsample_semantic_features on x[T][C] → y[T'][C], T' as above: a copy for
 * factor 1; the mean of each run of `factor` frames (avg_pool1d, the tail dropped) for an
 * integer factor; else F.interpolate(size=T', mode="linear", align_corners=False) with
 * torch's float arithmetic: scale = (float)T / T', src = max(scale·(t + 0.5) − 0.5, 0),
 * i0 = min(floor(src), T − 1), λ = clamp(src − i0, 0, 1), i1 = i0 + (i0 < T − 1),
 * y = fmaf(x[i0], 1 − λ, λ·x[i1]). Returns T'. y must not overlap x.
 */
int64_t flexicodec_downsample(double factor, const float *x, int64_t T, int C, float *y);

/* The front end FlexiCodec's SenseVoice expects (FunASR WavFrontend): Kaldi fbank, 16 kHz,
 * 25/10 ms, hamming window, 80 mels (n_mels), snip_edges, samples scaled by 32768, dither 0
 * (FunASR dithers by default; see the README). */
sotto_fbank_params flexicodec_fbank_params(int n_mels);

/* The semantic stream's sizes for n samples: frames of the fbank, of LFR and at 12.5 Hz, and
 * the floats of its buffers. */
typedef struct flexicodec_semantic_size {
    int64_t T_fb, T_lfr, T_sem;
    size_t fb, lfr, svo, feat; /* fbank, LFR + CMVN, SenseVoice output, features */
} flexicodec_semantic_size;
int flexicodec_semantic_sizes(const flexicodec_encoder_weights *w, const sensevoice *sv,
                              const sotto_fbank *fb, int64_t n, flexicodec_semantic_size *z);
/* SenseVoice run elsewhere (the CUDA encoder's device stack), with sensevoice_encode's
 * contract and the default queries; scratch is what follows the stream's buffers. */
typedef int (*flexicodec_sensevoice_fn)(void *ctx, const sensevoice *sv, const float *x,
                                        int64_t T_lfr, float *y, float *scratch);
/*
 * The semantic stream of one utterance: fbank (fb) → LFR + CMVN → SenseVoice (sv_fn with
 * sv_ctx, else sensevoice_encode on cpu) → flexicodec_downsample into feat[T_sem][ssl_dim].
 * scratch: fb + lfr + svo floats, plus sensevoice_scratch_size(sv, T_lfr) for the CPU
 * SenseVoice. Returns T_sem (0 for a wave shorter than one fbank frame) or an error.
 */
int64_t flexicodec_semantic_features(const sotto_cpu *cpu, const flexicodec_encoder_weights *w,
                                     const sensevoice *sv, sotto_fbank *fb, const float *wave,
                                     int64_t n, float *feat, float *scratch,
                                     flexicodec_sensevoice_fn sv_fn, void *sv_ctx);

/* Scratch floats flexicodec_encode_audio needs for n samples (0 on bad arguments). */
size_t flexicodec_encode_audio_scratch(const flexicodec_decoder_weights *dw,
                                       const flexicodec_encoder_weights *w, const sensevoice *sv,
                                       const sotto_fbank *fb, int64_t n);
/*
 * One utterance, 16 kHz wave[n] (±1) → groups, the whole FlexiCodec.forward(encode_only):
 * fbank (fb, made from flexicodec_fbank_params) → LFR + CMVN → SenseVoice (default queries)
 * → flexicodec_downsample → flexicodec_encode_from_features_rc (threshold or rate, n_q). Outputs
 * and return value as flexicodec_encode_from_features (the caller sizes them for
 * min(ceil(n/hop), T') groups; flexicodec_encode_audio_frames gives that bound). fb holds
 * scratch of its own: one call at a time per fbank object. Errors: SOTTO_ERR_INVALID_ARG,
 * SOTTO_ERR_BAD_AUDIO (NaN/Inf), SOTTO_ERR_INTERNAL.
 */
int64_t flexicodec_encode_audio(const sotto_cpu *cpu, const flexicodec_decoder_weights *dw,
                                const flexicodec_encoder_weights *w, const sensevoice *sv,
                                sotto_fbank *fb, const float *wave, int64_t n, float threshold,
                                flexicodec_rate_ctl *rate, int n_q, int32_t *lengths, int32_t *fsq,
                                int32_t *rvq, float *scratch);
/* Frames (12.5 Hz) flexicodec_encode_audio works on for n samples: min(DAC frames,
 * downsampled SenseVoice frames); an upper bound of the groups. */
int64_t flexicodec_encode_audio_frames(const flexicodec_encoder_weights *w, const sensevoice *sv,
                                       const sotto_fbank *fb, int64_t n);

#endif
