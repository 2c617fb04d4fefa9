/*
 * The Ogg mapping of Sotto codec streams (`.sotto` files), after RFC 7845 (Ogg Opus). One
 * logical Ogg stream carries:
 *
 *   page 0       the ID header packet alone ("SottoHead": version, codec, model identity,
 *                rates, frame rate, pre-skip, packet layout), beginning-of-stream flag,
 *                granule position 0;
 *   page 1..     the comment header packet ("SottoTags": vendor, "KEY=value" comments, as in
 *                Vorbis comments), ending its last page, granule position 0;
 *   then         audio data pages, one codec packet (packet.h) per Ogg packet, beginning on a
 *                fresh page. A page's granule position is the number of output samples
 *                decoded from the start of the stream up to the end of the last packet that
 *                ends on that page (pre-skip included). The last page (end-of-stream flag)
 *                may carry a smaller granule position: the samples after it are padding
 *                (end trimming). The first pre_skip samples are dropped (start trimming), so
 *                the playable length is last granule - pre_skip, exactly the original length.
 *
 * docs/bitstream.md gives the byte layouts. The reader validates everything it reads and never
 * trusts a count or position it can check; damaged input is reported, not fatal, once the
 * headers are read: see sotto_oggmap_reader_next.
 */
#ifndef SOTTO_OGGMAP_H
#define SOTTO_OGGMAP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/core.h"
#include "io/packet.h"

#define SOTTO_OGGMAP_VERSION 1      /* what the writer writes; readers take 1..15 */
#define SOTTO_OGGMAP_ID_BYTES 92    /* ID header size, version 1 */
#define SOTTO_OGGMAP_CODEC_BYTES 16 /* codec name field: 1..16 printable ASCII, NUL-padded */
#define SOTTO_OGGMAP_MODEL_ID_BYTES 32
/* Longest pre-skip: one second of output. */
#define SOTTO_OGGMAP_MAX_PRE_SKIP_S 1
/* Largest comment header the reader takes. */
#define SOTTO_OGGMAP_MAX_TAGS_BYTES (1u << 20)

typedef struct sotto_oggmap_head {
    int version; /* written as SOTTO_OGGMAP_VERSION; read: the file's */
    char codec[SOTTO_OGGMAP_CODEC_BYTES + 1]; /* e.g. "flexicodec" */
    /* Identity of the model the stream was encoded with: the caller's hash of the model's
     * tensors (e.g. SHA-256), carried as given; a reader can insist on it. */
    uint8_t model_id[SOTTO_OGGMAP_MODEL_ID_BYTES];
    uint32_t sample_rate;    /* decoder output rate, Hz: the granule position's unit */
    uint32_t input_rate;     /* rate of the original input, Hz (informational; 0: unknown) */
    uint32_t frame_rate_num; /* frames per second = num / den (FlexiCodec: 25 / 2) */
    uint32_t frame_rate_den; /* sample_rate * den / num must be a whole number of samples */
    uint32_t pre_skip;       /* output samples to drop at the start, ≤ 1 s */
    sotto_packet_layout layout;
} sotto_oggmap_head;

/* Output samples per codec frame (sample_rate * den / num) of a checked head. */
int64_t sotto_oggmap_samples_per_frame(const sotto_oggmap_head *h);

/* SOTTO_OK when every field of h is valid (version not checked), else `bad_code` with a
 * message naming the field. */
int sotto_oggmap_head_check(const sotto_oggmap_head *h, int bad_code, sotto_status *st);

/* ---- writer ------------------------------------------------------------------------------ */

/* Writes size bytes; returns 0, or a negative value on failure. */
typedef int (*sotto_oggmap_write_fn)(void *user, const void *data, size_t size);

typedef struct sotto_oggmap_writer_params {
    uint32_t serial;    /* Ogg stream serial number (choose a random one when multiplexing) */
    int page_ms;        /* a page is closed once its packets span this much audio; 1..60000 */
    const char *vendor; /* NULL: "sotto <version>" */
    const char *const *comments; /* "KEY=value" strings (UTF-8), n_comments of them */
    int n_comments;
} sotto_oggmap_writer_params;

/* serial 0x536f7474, page_ms 5000, vendor NULL, no comments. */
sotto_oggmap_writer_params sotto_oggmap_writer_default_params(void);

typedef struct sotto_oggmap_writer sotto_oggmap_writer;

/*
 * Starts a stream: checks head, writes the ID header page and the comment header page(s).
 * [in] head (its version is ignored: SOTTO_OGGMAP_VERSION is written), params (NULL:
 * defaults), fn + user or a FILE* opened for binary writing (not closed by the writer).
 * Errors: SOTTO_ERR_INVALID_ARG, SOTTO_ERR_IO, SOTTO_ERR_OUT_OF_MEMORY.
 */
int sotto_oggmap_writer_open(const sotto_oggmap_head *head,
                             const sotto_oggmap_writer_params *params, sotto_oggmap_write_fn fn,
                             void *user, sotto_oggmap_writer **out, sotto_status *st);
int sotto_oggmap_writer_open_file(const sotto_oggmap_head *head,
                                  const sotto_oggmap_writer_params *params, FILE *f,
                                  sotto_oggmap_writer **out, sotto_status *st);

/*
 * Appends one codec packet (from sotto_packet_pack; it is validated against the layout and
 * its frames counted for the granule positions). The packet is held back until the next one
 * or finish, so that the last page can be marked. Errors: SOTTO_ERR_INVALID_ARG (a malformed
 * packet), SOTTO_ERR_IO, SOTTO_ERR_STATE (after finish or a failed write).
 */
int sotto_oggmap_writer_packet(sotto_oggmap_writer *w, const uint8_t *data, size_t size,
                               sotto_status *st);

/*
 * Ends the stream: writes the held packet on the last page with end-of-stream set and
 * granule position pre_skip + length, where `length` is the original length in output
 * samples (-1: no end trimming). The trimmed samples must all come from the last packet:
 * 0 ≤ (decoded samples − pre_skip − length) < last packet's samples (or = 0). A stream
 * without packets gets one empty packet. Errors: SOTTO_ERR_INVALID_ARG (length out of
 * range), SOTTO_ERR_IO, SOTTO_ERR_STATE.
 */
int sotto_oggmap_writer_finish(sotto_oggmap_writer *w, int64_t length, sotto_status *st);

/* Output samples of all packets given so far (pre-skip included). */
int64_t sotto_oggmap_writer_samples(const sotto_oggmap_writer *w);

void sotto_oggmap_writer_free(sotto_oggmap_writer *w);

/* ---- reader ------------------------------------------------------------------------------ */

/* Reads up to size bytes; returns the count, 0 at the end of the input, negative on error. */
typedef long (*sotto_oggmap_read_fn)(void *user, void *buf, size_t size);

typedef struct sotto_oggmap_reader_params {
    /* When not NULL, a stream whose model identity differs is refused (SOTTO_ERR_MODEL). */
    const uint8_t *expected_model_id;
} sotto_oggmap_reader_params;

typedef struct sotto_oggmap_reader sotto_oggmap_reader;

/*
 * Opens a stream and reads both headers. The input must begin with an Ogg page; the first
 * beginning-of-stream page whose packet starts with "SottoHead" is the stream read, other
 * logical streams are skipped. Errors: SOTTO_ERR_FORMAT (not an Ogg file, not a Sotto stream,
 * damaged or lying headers), SOTTO_ERR_UNSUPPORTED (unknown version), SOTTO_ERR_MODEL (other
 * model), SOTTO_ERR_IO, SOTTO_ERR_OUT_OF_MEMORY, SOTTO_ERR_INVALID_ARG.
 */
int sotto_oggmap_reader_open(sotto_oggmap_read_fn fn, void *user,
                             const sotto_oggmap_reader_params *params, sotto_oggmap_reader **out,
                             sotto_status *st);
int sotto_oggmap_reader_open_file(FILE *f, const sotto_oggmap_reader_params *params,
                                  sotto_oggmap_reader **out, sotto_status *st);

const sotto_oggmap_head *sotto_oggmap_reader_head(const sotto_oggmap_reader *r);
const char *sotto_oggmap_reader_vendor(const sotto_oggmap_reader *r);
int sotto_oggmap_reader_comment_count(const sotto_oggmap_reader *r);
const char *sotto_oggmap_reader_comment(const sotto_oggmap_reader *r, int i); /* NULL: none */

/* One packet, valid until the next call. Positions are in output samples from the start of
 * the stream (granule units, pre-skip included). */
typedef struct sotto_oggmap_packet {
    const uint8_t *data; /* the codec packet */
    size_t size;
    sotto_packet_info info;
    const int32_t *lens, *sem, *ac; /* unpacked; ac[g * ldc + s] */
    int ldc;                        /* layout.max_stages (≥ 1) */
    int64_t start;                  /* position of the packet's first decoded sample */
    int64_t n_samples;              /* info.n_frames * samples per frame */
    int64_t lost_before;            /* samples lost just before this packet (damage) */
    int64_t skip;                   /* decoded samples to drop at its start (pre-skip) */
    int64_t keep;                   /* samples to keep after those (end trimming) */
    int64_t out_pos;                /* position of the kept samples in the trimmed output */
} sotto_oggmap_packet;

/*
 * The next packet. Returns SOTTO_OK with *pkt filled; 1 at the end of the stream (again on
 * every later call); SOTTO_ERR_FORMAT when data was damaged or lost (a page failed its CRC,
 * bytes were garbage, a page is missing, a packet is malformed, a granule position lies, the
 * input ends before the last page): the message in *st says what, and the next call goes on
 * with what follows. Any other negative code (SOTTO_ERR_IO from the read callback,
 * SOTTO_ERR_OUT_OF_MEMORY, SOTTO_ERR_INVALID_ARG) is final and returned again by later calls.
 */
int sotto_oggmap_reader_next(sotto_oggmap_reader *r, sotto_oggmap_packet *pkt, sotto_status *st);

typedef struct sotto_oggmap_stats {
    int64_t pages;         /* pages of this stream read (headers included) */
    int64_t packets;       /* audio packets returned */
    int64_t damaged;       /* pages dropped for a CRC mismatch */
    int64_t garbage_bytes; /* bytes skipped outside any valid page */
    int64_t holes;         /* gaps in the page sequence seen by the stream */
    int64_t bad_packets;   /* packets that failed validation (dropped) */
    int64_t lost_samples;  /* samples known to be lost (Σ lost_before) */
    int64_t kept_samples;  /* Σ keep of the returned packets */
    int eos;               /* the end-of-stream page was read */
    int truncated;         /* the input ended before it */
    int64_t final_granule; /* the last page's granule position, -1 until eos */
} sotto_oggmap_stats;

void sotto_oggmap_reader_stats(const sotto_oggmap_reader *r, sotto_oggmap_stats *s);
void sotto_oggmap_reader_free(sotto_oggmap_reader *r);

#endif
