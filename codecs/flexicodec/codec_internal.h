/*
 * What the `.sotto` file code (codec_file.c) needs from the FlexiCodec decoder object
 * (codec.c) beyond the public API: the model's packet layout and its output length; and what
 * the encoder object (encoder.c) needs: the loaded model.
 */
#ifndef SOTTO_FLEXICODEC_CODEC_INTERNAL_H
#define SOTTO_FLEXICODEC_CODEC_INTERNAL_H

#include <stdint.h>

#include "codecs/flexicodec/bottleneck.h"
#include "codecs/flexicodec/encode.h"
#include "codecs/flexicodec/flexicodec.h"
#include "core/core.h"
#include "encoders/sensevoice/sensevoice.h"
#include "io/packet.h"

/* What sotto_flexicodec_load attaches to model->arch_data. */
typedef struct flexicodec_model {
    flexicodec_decoder_weights w;
    flexicodec_bottleneck bt;
    int max_group_len; /* flexicodec.max_tokens_per_group (NO_GROUP_LIMIT when 0) */
    /* encode side: loaded when the file holds both the encoder and SenseVoice */
    int has_encoder;
    flexicodec_encoder_weights enc;
    sensevoice sv;
    char no_encoder_why[160];             /* why has_encoder is 0 */
    struct flexicodec_cuda_weights *cuda; /* the decoder's device copy on a CUDA model
                                             (flexicodec_cuda.h), made once at load and shared
                                             by its decoders; else NULL */
    /* the encoder's device copy on a CUDA model with an encoder (flexicodec_cuda_enc.h), made
     * once at load and shared by its encoders; else NULL */
    struct flexicodec_cuda_enc_weights *cuda_enc;
} flexicodec_model;

/* The model's FlexiCodec data, or NULL when it is not a FlexiCodec model. */
const flexicodec_model *flexicodec_model_get(const sotto_model *model);

/* Frames a packet spans at most before the encoder closes it (one second of frames, rounded
 * up), and the default span of a lost packet before any packet was received. */
int flexicodec_packet_span_frames(const sotto_model *model);

/* The packet layout of a FlexiCodec model: its FSQ size and RVQ codebook size, all its RVQ
 * stages (at most 64), its longest group (at most 256) and SOTTO_PACKET_FLEXICODEC_GROUPS
 * groups per packet. Errors: SOTTO_ERR_UNSUPPORTED (not a FlexiCodec model, or sizes the
 * packet format cannot carry), with a message. */
int flexicodec_model_layout(const sotto_model *model, sotto_packet_layout *l, sotto_status *st);

/* Output sample rate, samples per frame, and samples a flush returns for T frames. */
int flexicodec_model_rate(const sotto_model *model);
int flexicodec_model_hop(const sotto_model *model);
int64_t flexicodec_model_out_len(const sotto_model *model, int64_t T);

#endif
