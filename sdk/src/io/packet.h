/*
 * Sotto codec packets: a run of consecutive groups of a token codec, bit-packed. A group is
 * one or more merged frames that share one semantic index (FlexiCodec: the FSQ index) and
 * k acoustic indices (FlexiCodec: the first k RVQ stages); its length in frames travels
 * with it. The packet says how many groups it holds and how many acoustic stages each of
 * them carries, so the stage count (the bitrate) may change from one packet to the next.
 *
 * Bit layout (docs/bitstream.md has the table and the bitrates), most significant bit first,
 * every field an unsigned binary number of the width the layout gives it:
 *
 *     n_groups - 1             count_bits   = ceil(log2(max_groups))
 *     n_stages                 stage_bits   = ceil(log2(max_stages + 1))
 *     len[g] - 1,  g = 0..G-1  len_bits     = ceil(log2(max_group_len))
 *     sem[g],      g = 0..G-1  sem_bits
 *     ac[g][s],    s = 0..k-1 (outer), g = 0..G-1 (inner)   ac_bits
 *     zero bits up to the next byte boundary
 *
 * A zero-length packet is valid and holds no groups (it ends a stream that has no audio).
 * A packet is exactly as long as its header says: a byte more or less, a non-zero padding bit,
 * an index outside its codebook, a group longer than max_group_len or more stages than
 * max_stages is SOTTO_ERR_FORMAT. Nothing is read outside the bytes given.
 *
 * The acoustic indices are stage-major in the packet (all groups' stage 0, then stage 1, ...),
 * so the coarse stages come first; in memory they are group-major with a caller stride
 * (codes[g * ldc + s]), the order flexicodec_rvq_decode takes.
 */
#ifndef SOTTO_PACKET_H
#define SOTTO_PACKET_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* Limits of a layout: indices of at most 24 bits, 64 stages, groups of at most 256 frames,
 * at most 1024 groups in a packet. */
#define SOTTO_PACKET_MAX_INDEX_BITS 24
#define SOTTO_PACKET_MAX_STAGES 64
#define SOTTO_PACKET_MAX_GROUP_LEN 256
#define SOTTO_PACKET_MAX_GROUPS 1024

/* FlexiCodec: groups per packet. At 12.5 groups/s (no merging) 16 groups are 1.28 s; an
 * encoder closes a packet at 16 groups or once it spans 1 s, whichever comes first. */
#define SOTTO_PACKET_FLEXICODEC_GROUPS 16

/*
 * How a codec's tokens are coded. The codec fills it from its model hyperparameters
 * (sotto_packet_layout_init computes the minimal bit widths); it travels in the Ogg ID header.
 *   sem_size     valid semantic indices are [0, sem_size)        (FlexiCodec: 32768)
 *   sem_bits     bits per semantic index, ≥ bits for sem_size-1  (15)
 *   ac_size      valid acoustic indices are [0, ac_size)         (4096)
 *   ac_bits      bits per acoustic index                         (12)
 *   max_stages   acoustic stages a packet may carry, 0..64       (23)
 *   max_group_len  frames per group, 1..256                      (8)
 *   max_groups   groups per packet, 1..1024                      (16)
 * When max_stages is 0, ac_size and ac_bits may be 0 (a codec with one stream).
 */
typedef struct sotto_packet_layout {
    int32_t sem_size;
    int sem_bits;
    int32_t ac_size;
    int ac_bits;
    int max_stages;
    int max_group_len;
    int max_groups;
} sotto_packet_layout;

/* What a packet holds. */
typedef struct sotto_packet_info {
    int n_groups; /* 0 only for the empty packet */
    int n_stages; /* acoustic stages per group */
    int n_frames; /* Σ group lengths */
} sotto_packet_info;

/* Bits needed for the values 0..max_value (0 for max_value 0). */
int sotto_packet_bits_for(uint32_t max_value);

/* Fills *l with the minimal bit widths for the given sizes, then checks it. Errors:
 * SOTTO_ERR_INVALID_ARG with a message. */
int sotto_packet_layout_init(sotto_packet_layout *l, int32_t sem_size, int32_t ac_size,
                             int max_stages, int max_group_len, int max_groups, sotto_status *st);

/* The FlexiCodec layout (FSQ 8^5 = 32768 indices, RVQ codebooks of 4096, groups of 1..8
 * frames, SOTTO_PACKET_FLEXICODEC_GROUPS groups per packet) with at most max_stages RVQ
 * stages: 23 for the release, whose num_quantizers ≤ 24 counts the FSQ stream as one. */
int sotto_packet_layout_flexicodec(sotto_packet_layout *l, int max_stages, sotto_status *st);

/* SOTTO_OK when every field is in range and consistent, else SOTTO_ERR_INVALID_ARG (or
 * `bad_code`, e.g. SOTTO_ERR_FORMAT for a layout read from a file) with a message. */
int sotto_packet_layout_check(const sotto_packet_layout *l, int bad_code, sotto_status *st);

/* Bytes of a packet with n_groups groups (0..max_groups) of n_stages stages
 * (0..max_stages): 0 for 0 groups. Errors: SOTTO_ERR_INVALID_ARG. */
int sotto_packet_size(const sotto_packet_layout *l, int n_groups, int n_stages, size_t *bytes);

/* Bits of the packet before padding (what it really costs: header + fields). */
int64_t sotto_packet_bits(const sotto_packet_layout *l, int n_groups, int n_stages);

/*
 * Packs n_groups groups: lens[g] in 1..max_group_len, sem[g] in [0, sem_size),
 * ac[g * ldc + s] (s < n_stages ≤ ldc) in [0, ac_size); ac may be NULL when n_stages is 0.
 * Writes sotto_packet_size() bytes to out (capacity cap) and stores the count in *written.
 * Errors: SOTTO_ERR_INVALID_ARG (a value out of range, named in the message),
 * SOTTO_ERR_BUFFER_TOO_SMALL.
 */
int sotto_packet_pack(const sotto_packet_layout *l, int n_groups, int n_stages, const int32_t *lens,
                      const int32_t *sem, const int32_t *ac, int ldc, uint8_t *out, size_t cap,
                      size_t *written, sotto_status *st);

/*
 * Unpacks and validates a packet of `size` bytes. Outputs: lens[g] and sem[g] for
 * g < n_groups (capacity max_groups each), ac[g * ldc + s] for s < n_stages (capacity
 * max_groups rows of ldc). All three may be NULL (with max_groups 0 and ldc 0) to validate
 * only; info (may be NULL) receives the counts. On error the outputs are unspecified.
 * Errors: SOTTO_ERR_FORMAT (malformed packet), SOTTO_ERR_BUFFER_TOO_SMALL (more groups than
 * max_groups or more stages than ldc), SOTTO_ERR_INVALID_ARG.
 */
int sotto_packet_unpack(const sotto_packet_layout *l, const uint8_t *data, size_t size,
                        int32_t *lens, int32_t *sem, int32_t *ac, int max_groups, int ldc,
                        sotto_packet_info *info, sotto_status *st);

/* ---- bit writer / reader (MSB first), usable by other formats --------------------------- */

typedef struct sotto_bitwriter {
    uint8_t *p;
    size_t cap;   /* bytes */
    uint64_t pos; /* bits written */
    int overflow; /* set once a write did not fit; later writes are dropped */
} sotto_bitwriter;

typedef struct sotto_bitreader {
    const uint8_t *p;
    size_t size;  /* bytes */
    uint64_t pos; /* bits read */
    int overrun;  /* set once a read went past the end; it then returns zeros */
} sotto_bitreader;

void sotto_bitwriter_init(sotto_bitwriter *w, uint8_t *p, size_t cap);
/* Appends the low `bits` (0..32) bits of v; zero-fills the rest of the byte it ends in. */
void sotto_bitwriter_put(sotto_bitwriter *w, uint32_t v, int bits);
void sotto_bitreader_init(sotto_bitreader *r, const uint8_t *p, size_t size);
/* Reads `bits` (0..32) bits; past the end it sets overrun and returns 0. */
uint32_t sotto_bitreader_get(sotto_bitreader *r, int bits);

#endif
