/*
 * What the `.sotto` file code (codec_file.c) needs from the FlexiCodec decoder object
 * (codec.c) beyond the public API: the model's packet layout and its output length.
 */
#ifndef SOTTO_FLEXICODEC_CODEC_INTERNAL_H
#define SOTTO_FLEXICODEC_CODEC_INTERNAL_H

#include <stdint.h>

#include "core/core.h"
#include "io/packet.h"

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
