/*
 * The FlexiCodec encode path (encode.h, encode_audio.c) with its costly stages on the CUDA
 * layer library: the SenseVoice stack (encoders/sensevoice/sensevoice_cuda.h), the DAC encoder
 * and the two query-token aggregators. The encoder of sotto_codec.h runs it on a model loaded for
 * CUDA (encoder.c, docs/gpu.md); it is not itself part of the public API. The pipeline of
 * flexicodec_encode_audio, with where each stage runs:
 *
 *     wave → Kaldi fbank → LFR + CMVN                                          (CPU)
 *          → input rows (queries, · sqrt(d), sinusoid)                         (CPU)
 *          → SenseVoice blocks, after_norm                                     (device)
 *          → 4/3 downsampling                                                  (CPU)
 *     wave → DAC encoder: conv k7; per block 3 residual units, Snake, strided conv;
 *            Snake, conv k3                                                    (device)
 *     → merging                                                                (CPU)
 *     → both aggregators (the interleaved sequence built on the CPU)           (device)
 *     → ConvNeXt + FSQ, semantic decode, RVQ                                   (CPU)
 *
 * The stages left on the CPU are cheap next to those on the device (at the released size the
 * SenseVoice stack, the DAC encoder and the aggregators are nearly all of an encode's
 * arithmetic), and the merging and code choices run on the CPU's own f32 code, so the device
 * changes only the features they read (within f32 rounding).
 *
 * Two parts, as the decoder's flexicodec_cuda.h: flexicodec_cuda_enc_weights, uploaded once at
 * model load and only read afterwards (by contexts on any thread); flexicodec_cuda_enc, one
 * encoder's CUDA context (stream, cuBLAS handle, scratch pool) and activations for up to
 * max_samples samples. Arithmetic is f32 with TF32 off; f16 and binary16 CPU weights are
 * widened exactly at upload.
 *
 * Everything here exists only in builds with the CUDA backend (SOTTO_HAVE_CUDA); without it
 * this header declares nothing. One context serves one thread at a time.
 */
#ifndef SOTTO_FLEXICODEC_CUDA_ENC_H
#define SOTTO_FLEXICODEC_CUDA_ENC_H

#ifdef SOTTO_HAVE_CUDA

#include <stddef.h>
#include <stdint.h>

#include "codecs/flexicodec/encode.h"
#include "dsp/fbank.h"
#include "encoders/sensevoice/sensevoice.h"

/* One line for the load log: which stages run where. */
#define FLEXICODEC_CUDA_ENC_STAGES                                                                 \
    "SenseVoice stack, DAC encoder and aggregators on the device; fbank + LFR + CMVN, merging, "   \
    "ConvNeXt + FSQ and RVQ on the CPU"

typedef struct flexicodec_cuda_enc_weights flexicodec_cuda_enc_weights;

/*
 * Uploads the DAC encoder of w and the SenseVoice stack of sv (host, as the model loader made
 * them) to `device`, through a context of their own. Errors: SOTTO_ERR_INVALID_ARG (NULL,
 * device < 0, weights not loaded or of mismatched widths), SOTTO_ERR_DEVICE (no such device,
 * device memory exhausted, another CUDA / cuBLAS failure; st says which call),
 * SOTTO_ERR_OUT_OF_MEMORY (host). On failure nothing stays allocated.
 */
int flexicodec_cuda_enc_weights_create(const flexicodec_encoder_weights *w, const sensevoice *sv,
                                       int device, flexicodec_cuda_enc_weights **out,
                                       sotto_status *st);
/* Frees the device weights (NULL is a no-op); every context made on them must be gone. */
void flexicodec_cuda_enc_weights_free(flexicodec_cuda_enc_weights *wt);

typedef struct flexicodec_cuda_enc flexicodec_cuda_enc;

/*
 * Makes one encoder's CUDA context on wt's device, with the activations of an utterance of up
 * to max_samples 16 kHz samples (max_lfr: the LFR frames of that many samples, from the
 * encoder's fbank) and a scratch pool for them. Errors: SOTTO_ERR_INVALID_ARG (NULL,
 * max_samples < 1, max_lfr < 1), SOTTO_ERR_DEVICE, SOTTO_ERR_OUT_OF_MEMORY.
 */
int flexicodec_cuda_enc_create(const flexicodec_cuda_enc_weights *wt, int64_t max_samples,
                               int64_t max_lfr, flexicodec_cuda_enc **out, sotto_status *st);
void flexicodec_cuda_enc_free(flexicodec_cuda_enc *c);

/* What the last failed call found ("" when none did). */
const char *flexicodec_cuda_enc_last_error(const flexicodec_cuda_enc *c);

/*
 * sensevoice_encode on the device: x_host[T_lfr][input_size] (LFR + CMVN features) with the
 * default queries → y_host[T_lfr][dim]. sv is the CPU model the weights came from. Returns
 * SOTTO_OK, SOTTO_ERR_INVALID_ARG (T_lfr outside 1..max_lfr), SOTTO_ERR_INTERNAL (a non-finite
 * output) or the context's sticky error (SOTTO_ERR_DEVICE, SOTTO_ERR_OUT_OF_MEMORY), after
 * which every call returns that error.
 */
int flexicodec_cuda_enc_sensevoice(flexicodec_cuda_enc *c, const sensevoice *sv,
                                   const float *x_host, int64_t T_lfr, float *y_host);

/*
 * flexicodec_dac_encode on the device: wave[n] (host, 1 ≤ n ≤ max_samples), zero-padded to a
 * multiple of hop → z_host[T][latent_dim], T = flexicodec_dac_encode_frames(n). Returns T or
 * an error as above.
 */
int64_t flexicodec_cuda_enc_dac(flexicodec_cuda_enc *c, const float *wave, int64_t n,
                                float *z_host);

/*
 * flexicodec_aggregate on the device, for a (&w->sem_agg or &w->ac_agg of the weights c was
 * made from): x[T][in_out_dim] in groups lengths[G] → y[G][in_out_dim], host buffers; T ≤ the
 * context's frames. scratch: (T + G)·in_out_dim host floats. Returns SOTTO_OK or an error as
 * above (SOTTO_ERR_INVALID_ARG also for another aggregator or lengths not adding up to T).
 */
int flexicodec_cuda_enc_aggregate(flexicodec_cuda_enc *c, const flexicodec_aggregator *a,
                                  const float *x, int64_t T, const int32_t *lengths, int64_t G,
                                  float *y, float *scratch);

/* Host scratch floats flexicodec_cuda_enc_audio needs for n samples (0 on bad arguments):
 * the CPU stages' buffers only, far less than flexicodec_encode_audio_scratch. */
size_t flexicodec_cuda_enc_audio_scratch(const flexicodec_decoder_weights *dw,
                                         const flexicodec_encoder_weights *w, const sensevoice *sv,
                                         const sotto_fbank *fb, int64_t n);

/*
 * flexicodec_encode_audio with the SenseVoice stack and the DAC encoder on c's device:
 * same arguments, outputs, return value and errors (plus the context's sticky error), same
 * stages on the CPU for the rest. n ≤ max_samples. scratch: flexicodec_cuda_enc_audio_scratch
 * floats.
 */
int64_t flexicodec_cuda_enc_audio(flexicodec_cuda_enc *c, const sotto_cpu *cpu,
                                  const flexicodec_decoder_weights *dw,
                                  const flexicodec_encoder_weights *w, const sensevoice *sv,
                                  sotto_fbank *fb, const float *wave, int64_t n, float threshold,
                                  flexicodec_rate_ctl *rate, int n_q, int32_t *lengths,
                                  int32_t *fsq, int32_t *rvq, float *scratch);

#endif /* SOTTO_HAVE_CUDA */

#endif
