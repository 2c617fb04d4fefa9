/*
 * Vocos inside the SDK: the hyperparameters read from a converted checkpoint, the weights
 * repacked at load, and the hooks the model loader and the vocoder stream call. The model is
 * generic over what the released configs vary: mel or EnCodec-code features, backbone width,
 * depth and intermediate size, LayerNorm or bandwidth-conditioned AdaLayerNorm, and the ISTFT
 * head's n_fft / hop / padding ("center" or "same").
 */
#ifndef SOTTO_VOCOS_H
#define SOTTO_VOCOS_H

#include "core/model.h"
#include "nn/ops.h"

#define VOCOS_KERNEL 7 /* every conv in the backbone: k = 7, padding 3 */
#define VOCOS_HALF 3

typedef enum vocos_features { VOCOS_FEAT_MEL = 0, VOCOS_FEAT_ENCODEC = 1 } vocos_features;

typedef struct vocos_hparams {
    vocos_features features;
    int sample_rate;
    int input_channels; /* feature dim: n_mels, or the codebook embedding width */
    int dim;
    int intermediate_dim;
    int num_layers;
    int adanorm_num_embeddings; /* 0: plain LayerNorm */
    int n_fft, hop_length;
    int head_pad_same; /* 0: "center", 1: "same" */
    /* mel front end */
    int mel_n_fft, mel_hop, mel_n_mels, mel_pad_same;
    /* EnCodec features */
    int codebook_bins;     /* rows per codebook (1024) */
    int codebooks_total;   /* codebooks stored */
    int n_bandwidths;
    int codebooks_per_bw[8];
} vocos_hparams;

/* Linear weights keep the file's precision: f16 in the file stays f16 in memory (the F16C
 * GEMM, half the bandwidth of a streaming step), f32 and bf16 become f32. */
typedef struct vocos_block {
    sotto_conv1d_w dw; /* depthwise, k 7 (groups = dim) */
    const float *dw_b; /* [dim] */
    const float *ln_w, *ln_b;     /* [dim], NULL with AdaLayerNorm */
    const float *ada_scale, *ada_shift; /* [n_emb][dim], NULL without */
    sotto_linear_w pw1, pw2;
    const float *pw1_b, *pw2_b; /* [intermediate], [dim] */
    const float *gamma;         /* [dim], NULL when the block has no layer scale */
} vocos_block;

typedef struct vocos_weights {
    vocos_hparams hp;
    sotto_conv1d_w embed; /* k 7, input_channels → dim */
    const float *embed_b;
    const float *norm_w, *norm_b, *norm_ada_scale, *norm_ada_shift;
    vocos_block *blocks;
    const float *final_w, *final_b;
    sotto_linear_w head;
    const float *head_b;       /* [n_fft + 2] */
    const float *head_window;  /* [n_fft] (head.istft.window) */
    const float *mel_fb;       /* [n_freqs][n_mels] (feature_extractor...mel_scale.fb) */
    const float *mel_window;   /* [mel_n_fft] */
    const float *codebooks;    /* [codebooks_total * bins][input_channels] */
    sotto_f32_pool owned;      /* f32 copies of tensors stored as f16/bf16 */
    struct vocos_cuda_weights *cuda; /* the device copy on a CUDA model (vocos_cuda.h), made
                                        once at load and shared by its vocoders; else NULL */
} vocos_weights;

/* Model loader hook for architecture "vocos": reads hyperparameters, checks and repacks every
 * tensor, attaches the result to model->arch_data. */
int sotto_vocos_load(sotto_model *model, sotto_status *st);

#endif
