/*
 * The Ogg mapping of Sotto codec streams (see oggmap.h and docs/bitstream.md) on libogg.
 *
 * Writer: the ID header goes alone on the first page, the comment header ends its own page(s),
 * then each codec packet becomes one Ogg packet whose granule position is the running sample
 * count. The last packet is held back until the next one arrives or the stream is finished,
 * so finish can put it on the end-of-stream page with the trimmed granule position.
 *
 * Reader: pages come from ogg_sync_pageseek, which checks each page's CRC; a page that fails
 * or bytes outside any page are dropped and reported. Packets are collected a page at a time,
 * each validated by unpacking it, so the page's granule position can be checked against the
 * packets' samples and, after lost data, used to place the packets that follow. Damage after
 * the headers is reported (SOTTO_ERR_FORMAT) and reading goes on; only a failing read
 * callback or allocation is final.
 */
#include "io/oggmap.h"

#include <inttypes.h>
#include <ogg/ogg.h>
#include <stdlib.h>
#include <string.h>

#include "sotto/sotto_audio.h"

#define HEAD_MAGIC "SottoHead"
#define TAGS_MAGIC "SottoTags"
#define MAGIC_BYTES 9u
#define MAX_SPF ((int64_t)1 << 20)     /* samples per frame */
#define MAX_GRANULE ((int64_t)1 << 62) /* positions beyond this are lies */
#define READ_CHUNK 4096
/* Bytes the reader takes from the input before both headers must have been found. */
#define HEADER_INPUT_LIMIT ((uint64_t)SOTTO_OGGMAP_MAX_TAGS_BYTES + (1u << 20))
#define MAX_PAGE_BODY 65025u /* 255 lacing values of 255 */
#define QUEUE_CAP 256        /* packets that can end on one page: ≤ 255 */
#define DEFAULT_SERIAL 0x536f7474u
#define DEFAULT_PAGE_MS 5000

static const uint8_t k_empty[1] = {0};

/* ---- little-endian fields ----------------------------------------------------------------- */

static void st_u16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void st_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t ld_u16(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8);
}

static uint32_t ld_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* ---- ID header ---------------------------------------------------------------------------- */

int64_t sotto_oggmap_samples_per_frame(const sotto_oggmap_head *h)
{
    if (!h || h->frame_rate_num == 0) return 0;
    return (int64_t)h->sample_rate * h->frame_rate_den / h->frame_rate_num;
}

static int rate_ok(uint32_t hz)
{
    return hz >= SOTTO_AUDIO_MIN_RATE_HZ && hz <= SOTTO_AUDIO_MAX_RATE_HZ;
}

int sotto_oggmap_head_check(const sotto_oggmap_head *h, int bad_code, sotto_status *st)
{
    if (!h) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "Sotto head: NULL");
    size_t n = strnlen(h->codec, sizeof h->codec);
    if (n == 0 || n > SOTTO_OGGMAP_CODEC_BYTES)
        return sotto_status_set(st, bad_code,
                                "Sotto head: codec name of %zu characters, "
                                "need 1..%d",
                                n, SOTTO_OGGMAP_CODEC_BYTES);
    for (size_t i = 0; i < n; i++)
        if (h->codec[i] < 0x21 || h->codec[i] > 0x7e)
            return sotto_status_set(st, bad_code,
                                    "Sotto head: codec name has a byte 0x%02x "
                                    "that is not printable ASCII",
                                    (unsigned char)h->codec[i]);
    if (!rate_ok(h->sample_rate))
        return sotto_status_set(st, bad_code,
                                "Sotto head: sample rate %" PRIu32 " Hz outside "
                                "%d..%d",
                                h->sample_rate, SOTTO_AUDIO_MIN_RATE_HZ, SOTTO_AUDIO_MAX_RATE_HZ);
    if (h->input_rate != 0 && !rate_ok(h->input_rate))
        return sotto_status_set(st, bad_code,
                                "Sotto head: input rate %" PRIu32 " Hz outside "
                                "%d..%d",
                                h->input_rate, SOTTO_AUDIO_MIN_RATE_HZ, SOTTO_AUDIO_MAX_RATE_HZ);
    if (h->frame_rate_num == 0 || h->frame_rate_den == 0)
        return sotto_status_set(st, bad_code, "Sotto head: frame rate %" PRIu32 "/%" PRIu32,
                                h->frame_rate_num, h->frame_rate_den);
    uint64_t prod = (uint64_t)h->sample_rate * h->frame_rate_den;
    if (prod % h->frame_rate_num != 0 || prod / h->frame_rate_num < 1 ||
        prod / h->frame_rate_num > (uint64_t)MAX_SPF)
        return sotto_status_set(st, bad_code,
                                "Sotto head: frame rate %" PRIu32 "/%" PRIu32 " at %" PRIu32
                                " Hz is not a whole number of samples in 1..%" PRId64,
                                h->frame_rate_num, h->frame_rate_den, h->sample_rate, MAX_SPF);
    if (h->pre_skip > h->sample_rate * SOTTO_OGGMAP_MAX_PRE_SKIP_S)
        return sotto_status_set(st, bad_code,
                                "Sotto head: pre-skip %" PRIu32 " samples is "
                                "longer than %d s",
                                h->pre_skip, SOTTO_OGGMAP_MAX_PRE_SKIP_S);
    return sotto_packet_layout_check(&h->layout, bad_code, st);
}

/* Serialises a checked head (docs/bitstream.md, "ID header"). */
static void head_write(const sotto_oggmap_head *h, uint8_t out[SOTTO_OGGMAP_ID_BYTES])
{
    memset(out, 0, SOTTO_OGGMAP_ID_BYTES);
    memcpy(out, HEAD_MAGIC, MAGIC_BYTES);
    out[9] = SOTTO_OGGMAP_VERSION;
    memcpy(out + 10, h->codec, strnlen(h->codec, SOTTO_OGGMAP_CODEC_BYTES));
    memcpy(out + 26, h->model_id, SOTTO_OGGMAP_MODEL_ID_BYTES);
    st_u32(out + 58, h->sample_rate);
    st_u32(out + 62, h->input_rate);
    st_u32(out + 66, h->frame_rate_num);
    st_u32(out + 70, h->frame_rate_den);
    st_u32(out + 74, h->pre_skip);
    st_u32(out + 78, (uint32_t)h->layout.sem_size);
    st_u32(out + 82, (uint32_t)h->layout.ac_size);
    out[86] = (uint8_t)h->layout.sem_bits;
    out[87] = (uint8_t)h->layout.ac_bits;
    out[88] = (uint8_t)h->layout.max_stages;
    out[89] = (uint8_t)(h->layout.max_group_len - 1);
    st_u16(out + 90, (uint32_t)(h->layout.max_groups - 1));
}

static int head_parse(const uint8_t *p, size_t size, sotto_oggmap_head *h, sotto_status *st)
{
    memset(h, 0, sizeof *h);
    if (size < MAGIC_BYTES + 1 || memcmp(p, HEAD_MAGIC, MAGIC_BYTES) != 0)
        return sotto_status_set(st, SOTTO_ERR_FORMAT, "ID header: too short or bad magic");
    int version = p[9];
    if (version < 1 || version > 15)
        return sotto_status_set(st, SOTTO_ERR_UNSUPPORTED,
                                "ID header: unknown version %d "
                                "(this reader reads 1..15)",
                                version);
    if (size < SOTTO_OGGMAP_ID_BYTES || (version == 1 && size != SOTTO_OGGMAP_ID_BYTES))
        return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                "ID header: %zu bytes, version %d has "
                                "%s%d",
                                size, version, version == 1 ? "" : "at least ",
                                SOTTO_OGGMAP_ID_BYTES);
    h->version = version;
    const uint8_t *c = p + 10;
    size_t n = 0;
    while (n < SOTTO_OGGMAP_CODEC_BYTES && c[n] != 0)
        n++;
    for (size_t i = n; i < SOTTO_OGGMAP_CODEC_BYTES; i++)
        if (c[i] != 0)
            return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                    "ID header: codec name is not "
                                    "NUL-padded");
    memcpy(h->codec, c, n);
    h->codec[n] = '\0';
    memcpy(h->model_id, p + 26, SOTTO_OGGMAP_MODEL_ID_BYTES);
    h->sample_rate = ld_u32(p + 58);
    h->input_rate = ld_u32(p + 62);
    h->frame_rate_num = ld_u32(p + 66);
    h->frame_rate_den = ld_u32(p + 70);
    h->pre_skip = ld_u32(p + 74);
    uint32_t sem_size = ld_u32(p + 78), ac_size = ld_u32(p + 82);
    if (sem_size > INT32_MAX || ac_size > INT32_MAX)
        return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                "ID header: codebook sizes %" PRIu32 ", %" PRIu32 " out of range",
                                sem_size, ac_size);
    h->layout.sem_size = (int32_t)sem_size;
    h->layout.ac_size = (int32_t)ac_size;
    h->layout.sem_bits = p[86];
    h->layout.ac_bits = p[87];
    h->layout.max_stages = p[88];
    h->layout.max_group_len = p[89] + 1;
    h->layout.max_groups = (int)ld_u16(p + 90) + 1;
    int rc = sotto_oggmap_head_check(h, SOTTO_ERR_FORMAT, st);
    if (rc != SOTTO_OK && st) {
        /* the check says "Sotto head: "; say where it came from instead */
        char msg[sizeof st->message];
        const char *m = st->message;
        if (strncmp(m, "Sotto head: ", 12) == 0) m += 12;
        snprintf(msg, sizeof msg, "%s", m);
        sotto_status_set(st, rc, "ID header lies: %s", msg);
    }
    return rc;
}

static void hex8(char out[17], const uint8_t *id)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 8; i++) {
        out[2 * i] = digits[id[i] >> 4];
        out[2 * i + 1] = digits[id[i] & 15];
    }
    out[16] = '\0';
}

/* ---- writer ------------------------------------------------------------------------------ */

struct sotto_oggmap_writer {
    sotto_alloc alloc;
    sotto_oggmap_write_fn fn;
    void *user;
    ogg_stream_state os;
    sotto_oggmap_head head;
    int64_t spf;
    int64_t page_samples; /* close a page once it spans this many samples */
    int64_t pos;          /* samples of every packet given (held one included) */
    int64_t page_start;   /* position where the open page's audio begins */
    int64_t packetno;
    uint8_t *held; /* the held-back packet, max_packet bytes */
    size_t held_size, max_packet;
    int64_t held_samples;
    int have_held;
    int finished, failed;
};

sotto_oggmap_writer_params sotto_oggmap_writer_default_params(void)
{
    sotto_oggmap_writer_params p;
    memset(&p, 0, sizeof p);
    p.serial = DEFAULT_SERIAL;
    p.page_ms = DEFAULT_PAGE_MS;
    return p;
}

static int file_write(void *user, const void *data, size_t size)
{
    return fwrite(data, 1, size, (FILE *)user) == size ? 0 : -1;
}

/* Writes the pages libogg has ready (all of them when flush is set). */
static int write_pages(sotto_oggmap_writer *w, int flush, sotto_status *st)
{
    ogg_page og;
    for (;;) {
        int got = flush ? ogg_stream_flush(&w->os, &og) : ogg_stream_pageout(&w->os, &og);
        if (!got) return SOTTO_OK;
        if (w->fn(w->user, og.header, (size_t)og.header_len) != 0 ||
            w->fn(w->user, og.body, (size_t)og.body_len) != 0) {
            w->failed = 1;
            return sotto_status_set(st, SOTTO_ERR_IO, "Sotto writer: writing a page failed");
        }
        w->page_start = w->pos - (w->have_held ? w->held_samples : 0);
    }
}

static int submit(sotto_oggmap_writer *w, const uint8_t *data, size_t size, int bos, int eos,
                  int64_t granule, sotto_status *st)
{
    ogg_packet op;
    memset(&op, 0, sizeof op);
    op.packet = (unsigned char *)(uintptr_t)data;
    op.bytes = (long)size;
    op.b_o_s = bos;
    op.e_o_s = eos;
    op.granulepos = granule;
    op.packetno = w->packetno++;
    if (ogg_stream_packetin(&w->os, &op) != 0) {
        w->failed = 1;
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY,
                                "Sotto writer: libogg failed to "
                                "take a packet");
    }
    return SOTTO_OK;
}

static int tags_build(const sotto_oggmap_writer_params *p, uint8_t **out, size_t *size,
                      const sotto_alloc *a, sotto_status *st)
{
    char vendor_buf[64];
    const char *vendor = p->vendor;
    if (!vendor) {
        snprintf(vendor_buf, sizeof vendor_buf, "sotto %s", sotto_version_string());
        vendor = vendor_buf;
    }
    if (p->n_comments < 0 || (p->n_comments > 0 && !p->comments))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "Sotto writer: %d comments",
                                p->n_comments);
    uint64_t total = MAGIC_BYTES + 4 + strlen(vendor) + 4;
    for (int i = 0; i < p->n_comments; i++) {
        if (!p->comments[i])
            return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                    "Sotto writer: comment %d is "
                                    "NULL",
                                    i);
        total += 4 + (uint64_t)strlen(p->comments[i]);
        if (total > SOTTO_OGGMAP_MAX_TAGS_BYTES) break;
    }
    if (total > SOTTO_OGGMAP_MAX_TAGS_BYTES)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "Sotto writer: comments exceed %u "
                                "bytes",
                                SOTTO_OGGMAP_MAX_TAGS_BYTES);
    uint8_t *b = sotto_malloc(a, (size_t)total);
    if (!b) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "Sotto writer: out of memory");
    size_t o = 0;
    memcpy(b, TAGS_MAGIC, MAGIC_BYTES);
    o += MAGIC_BYTES;
    size_t n = strlen(vendor);
    st_u32(b + o, (uint32_t)n);
    memcpy(b + o + 4, vendor, n);
    o += 4 + n;
    st_u32(b + o, (uint32_t)p->n_comments);
    o += 4;
    for (int i = 0; i < p->n_comments; i++) {
        n = strlen(p->comments[i]);
        st_u32(b + o, (uint32_t)n);
        memcpy(b + o + 4, p->comments[i], n);
        o += 4 + n;
    }
    *out = b;
    *size = o;
    return SOTTO_OK;
}

int sotto_oggmap_writer_open(const sotto_oggmap_head *head,
                             const sotto_oggmap_writer_params *params, sotto_oggmap_write_fn fn,
                             void *user, sotto_oggmap_writer **out, sotto_status *st)
{
    if (!out || !fn)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "Sotto writer: NULL argument");
    *out = NULL;
    int rc = sotto_oggmap_head_check(head, SOTTO_ERR_INVALID_ARG, st);
    if (rc != SOTTO_OK) return rc;
    sotto_oggmap_writer_params p = params ? *params : sotto_oggmap_writer_default_params();
    if (p.page_ms < 1 || p.page_ms > 60000)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "Sotto writer: page duration %d ms "
                                "outside 1..60000",
                                p.page_ms);
    sotto_alloc a;
    sotto_alloc_init(&a, NULL);
    sotto_oggmap_writer *w = sotto_calloc(&a, 1, sizeof *w);
    if (!w) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "Sotto writer: out of memory");
    w->alloc = a;
    w->fn = fn;
    w->user = user;
    w->head = *head;
    w->head.version = SOTTO_OGGMAP_VERSION;
    w->spf = sotto_oggmap_samples_per_frame(head);
    w->page_samples = (int64_t)head->sample_rate * p.page_ms / 1000;
    if (w->page_samples < 1) w->page_samples = 1;
    (void)sotto_packet_size(&head->layout, head->layout.max_groups, head->layout.max_stages,
                            &w->max_packet);
    w->held = sotto_malloc(&a, w->max_packet > 0 ? w->max_packet : 1);
    if (!w->held || ogg_stream_init(&w->os, (int)p.serial) != 0) {
        sotto_free(&a, w->held);
        sotto_free(&a, w);
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "Sotto writer: out of memory");
    }
    uint8_t id[SOTTO_OGGMAP_ID_BYTES];
    head_write(&w->head, id);
    uint8_t *tags = NULL;
    size_t tags_size = 0;
    rc = tags_build(&p, &tags, &tags_size, &a, st);
    if (rc == SOTTO_OK) rc = submit(w, id, sizeof id, 1, 0, 0, st);
    if (rc == SOTTO_OK) rc = write_pages(w, 1, st);
    if (rc == SOTTO_OK) rc = submit(w, tags, tags_size, 0, 0, 0, st);
    if (rc == SOTTO_OK) rc = write_pages(w, 1, st);
    sotto_free(&a, tags);
    if (rc != SOTTO_OK) {
        sotto_oggmap_writer_free(w);
        return rc;
    }
    *out = w;
    return SOTTO_OK;
}

int sotto_oggmap_writer_open_file(const sotto_oggmap_head *head,
                                  const sotto_oggmap_writer_params *params, FILE *f,
                                  sotto_oggmap_writer **out, sotto_status *st)
{
    if (!f) {
        if (out) *out = NULL;
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "Sotto writer: NULL file");
    }
    return sotto_oggmap_writer_open(head, params, file_write, f, out, st);
}

static int writer_usable(sotto_oggmap_writer *w, sotto_status *st)
{
    if (!w) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "Sotto writer: NULL");
    if (w->finished || w->failed)
        return sotto_status_set(st, SOTTO_ERR_STATE, "Sotto writer: the stream is %s",
                                w->finished ? "finished" : "broken by an earlier failure");
    return SOTTO_OK;
}

int sotto_oggmap_writer_packet(sotto_oggmap_writer *w, const uint8_t *data, size_t size,
                               sotto_status *st)
{
    int rc = writer_usable(w, st);
    if (rc != SOTTO_OK) return rc;
    sotto_packet_info info;
    sotto_status pst;
    if (sotto_packet_unpack(&w->head.layout, data, size, NULL, NULL, NULL, 0, 0, &info, &pst) !=
        SOTTO_OK)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "Sotto writer: invalid packet: %s",
                                pst.message);
    int64_t samples = (int64_t)info.n_frames * w->spf;
    if (w->pos > MAX_GRANULE - samples)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "Sotto writer: the stream is too "
                                "long");
    if (w->have_held) {
        w->have_held = 0;
        rc = submit(w, w->held, w->held_size, 0, 0, w->pos, st);
        if (rc == SOTTO_OK) rc = write_pages(w, 0, st);
        if (rc == SOTTO_OK && w->pos - w->page_start >= w->page_samples) rc = write_pages(w, 1, st);
        if (rc != SOTTO_OK) return rc;
    }
    if (size > 0) memcpy(w->held, data, size);
    w->held_size = size;
    w->held_samples = samples;
    w->have_held = 1;
    w->pos += samples;
    return SOTTO_OK;
}

int sotto_oggmap_writer_finish(sotto_oggmap_writer *w, int64_t length, sotto_status *st)
{
    int rc = writer_usable(w, st);
    if (rc != SOTTO_OK) return rc;
    int64_t end = w->pos, last_start = w->pos - (w->have_held ? w->held_samples : 0);
    int64_t final = end;
    if (length >= 0) {
        if (length > MAX_GRANULE) length = MAX_GRANULE;
        final = (int64_t)w->head.pre_skip + length;
        if (final > end || final < last_start)
            return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                    "Sotto writer: length %" PRId64 " + pre-skip %" PRIu32
                                    " must lie in the last packet "
                                    "(samples %" PRId64 "..%" PRId64 ")",
                                    length, w->head.pre_skip, last_start, end);
    } else if (length != -1) {
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "Sotto writer: length %" PRId64, length);
    }
    if (w->have_held)
        rc = submit(w, w->held, w->held_size, 0, 1, final, st);
    else
        rc = submit(w, k_empty, 0, 0, 1, final, st); /* the empty packet: no audio at all */
    w->have_held = 0;
    if (rc == SOTTO_OK) rc = write_pages(w, 1, st);
    w->finished = 1;
    return rc;
}

int64_t sotto_oggmap_writer_samples(const sotto_oggmap_writer *w)
{
    return w ? w->pos : 0;
}

void sotto_oggmap_writer_free(sotto_oggmap_writer *w)
{
    if (!w) return;
    sotto_alloc a = w->alloc;
    ogg_stream_clear(&w->os);
    sotto_free(&a, w->held);
    sotto_free(&a, w);
}

/* ---- reader ------------------------------------------------------------------------------ */

typedef struct queued {
    size_t off, size;
    sotto_packet_info info;
    int64_t start, n_samples, lost_before;
    int after_loss; /* data was lost just before it */
    int last_page;  /* it ends on the end-of-stream page */
} queued;

struct sotto_oggmap_reader {
    sotto_alloc alloc;
    sotto_oggmap_read_fn fn;
    void *user;
    ogg_sync_state oy;
    ogg_stream_state os;
    int os_init;
    int serial;
    sotto_oggmap_head head;
    int64_t spf;
    char *vendor;
    char **comments;
    int n_comments;
    /* the current page's packets */
    uint8_t *qbuf;
    size_t qcap, qfill, max_packet;
    queued q[QUEUE_CAP];
    int qn, qi;
    int32_t *lens, *sem, *ac;
    int ldc;
    int64_t pos;       /* end of the last placed packet */
    int lost;          /* data was lost since the last placed packet */
    int64_t final;     /* granule position of the end-of-stream page, -1 before */
    uint64_t offset;   /* input bytes consumed by pages and skips */
    uint64_t received; /* input bytes read */
    int input_end, ended, skipping;
    int fatal;
    char fatal_msg[256];
    int report, extra_reports;
    char report_msg[200];
    sotto_oggmap_stats stats;
};

static int set_fatal(sotto_oggmap_reader *r, int code, const char *msg)
{
    r->fatal = code;
    snprintf(r->fatal_msg, sizeof r->fatal_msg, "%s", msg);
    return code;
}

/* Queues a damage report for the next call of next(): the first one is kept, later ones are
 * counted. */
static void SOTTO_PRINTF(2, 3) note(sotto_oggmap_reader *r, const char *fmt, ...)
{
    if (r->report) {
        r->extra_reports++;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->report_msg, sizeof r->report_msg, fmt, ap);
    va_end(ap);
    r->report = 1;
    r->extra_reports = 0;
}

/* Reads more input into libogg's buffer: 1 when bytes came, 0 at the end, negative on a
 * failure (made final). */
static int read_more(sotto_oggmap_reader *r)
{
    if (r->input_end) return 0;
    char *buf = ogg_sync_buffer(&r->oy, READ_CHUNK);
    if (!buf) return set_fatal(r, SOTTO_ERR_OUT_OF_MEMORY, "Sotto reader: out of memory");
    long got = r->fn(r->user, buf, READ_CHUNK);
    if (got < 0 || got > READ_CHUNK)
        return set_fatal(r, SOTTO_ERR_IO, "Sotto reader: the read callback failed");
    if (got == 0) {
        r->input_end = 1;
        return 0;
    }
    if (ogg_sync_wrote(&r->oy, got) != 0)
        return set_fatal(r, SOTTO_ERR_INTERNAL, "Sotto reader: libogg refused the input");
    r->received += (uint64_t)got;
    return 1;
}

/* The next page with a valid CRC: 1, or 0 at the end of the input, or a final error. Skipped
 * bytes are counted and reported (a damaged page, or garbage). */
static int get_page(sotto_oggmap_reader *r, ogg_page *og)
{
    for (;;) {
        size_t avail = (size_t)(r->oy.fill - r->oy.returned);
        int at_page = avail >= 4 && memcmp(r->oy.data + r->oy.returned, "OggS", 4) == 0;
        long n = ogg_sync_pageseek(&r->oy, og);
        if (n > 0) {
            r->offset += (uint64_t)n;
            r->skipping = 0;
            return 1;
        }
        if (n < 0) {
            if (!r->skipping) {
                if (at_page) {
                    r->stats.damaged++;
                    note(r, "damaged page (CRC mismatch) at byte %" PRIu64 " dropped", r->offset);
                } else {
                    note(r, "bytes outside any Ogg page at byte %" PRIu64 " skipped", r->offset);
                }
            }
            r->skipping = 1;
            r->stats.garbage_bytes += at_page ? 0 : -n;
            r->offset += (uint64_t)-n;
            continue;
        }
        int rc = read_more(r);
        if (rc <= 0) return rc;
    }
}

/* Places the packets queued from one page: before the last loss forward from the previous
 * packet, from it on backwards from the page's granule position. */
static void place_packets(sotto_oggmap_reader *r, int64_t granule, int eos, long pageno)
{
    int b = -1;
    for (int i = 0; i < r->qn; i++)
        if (r->q[i].after_loss) b = i;
    int64_t pos = r->pos;
    int n_fwd = b < 0 ? r->qn : b;
    for (int i = 0; i < n_fwd; i++) {
        r->q[i].start = pos;
        pos += r->q[i].n_samples;
    }
    if (b >= 0) {
        int64_t tail = 0;
        for (int i = b; i < r->qn; i++)
            tail += r->q[i].n_samples;
        int64_t start = pos;
        if (granule < 0 || granule > MAX_GRANULE || granule - tail < pos)
            note(r,
                 "page %ld: granule position %" PRId64 " cannot place the packets after "
                 "lost data",
                 pageno, (int64_t)granule);
        else
            start = granule - tail;
        r->q[b].lost_before = start - pos;
        pos = start;
        for (int i = b; i < r->qn; i++) {
            r->q[i].start = pos;
            pos += r->q[i].n_samples;
        }
    }
    int64_t first = r->qn > 0 ? r->q[0].start : r->pos;
    if (eos) {
        int64_t final = pos;
        if (b >= 0) {
            /* after a loss the end trimming cannot be told apart from the loss */
        } else if (granule < first || granule > pos) {
            note(r,
                 "last page: granule position %" PRId64 " outside its packets' samples %" PRId64
                 "..%" PRId64 "; not trimmed",
                 (int64_t)granule, first, pos);
        } else {
            final = granule;
        }
        r->final = final;
        r->stats.eos = 1;
        r->stats.final_granule = final;
        for (int i = 0; i < r->qn; i++)
            r->q[i].last_page = 1;
    } else if (b < 0 && r->qn > 0 && granule != pos) {
        note(r, "page %ld: granule position %" PRId64 " but its packets end at %" PRId64, pageno,
             (int64_t)granule, pos);
    }
    r->pos = pos;
}

/* Takes one page of the stream: collects and validates its packets. */
static void take_page(sotto_oggmap_reader *r, ogg_page *og)
{
    if (ogg_page_serialno(og) != r->serial) return; /* another logical stream */
    r->stats.pages++;
    long pageno = ogg_page_pageno(og);
    if (r->pos > MAX_GRANULE) { /* a page adds < 2^47 samples: no overflow before this */
        note(r, "page %ld: the stream exceeds %" PRId64 " samples; the rest is ignored", pageno,
             MAX_GRANULE);
        r->ended = 1;
        return;
    }
    r->qn = r->qi = 0;
    r->qfill = 0;
    if (ogg_stream_pagein(&r->os, og) != 0) {
        note(r, "page %ld rejected by libogg", pageno);
        r->lost = 1;
        return;
    }
    for (;;) {
        ogg_packet op;
        int rc = ogg_stream_packetout(&r->os, &op);
        if (rc == 0) break;
        if (rc < 0) {
            r->stats.holes++;
            note(r, "data missing before page %ld (a page was lost)", pageno);
            r->lost = 1;
            continue;
        }
        sotto_packet_info info;
        sotto_status pst;
        size_t size = op.bytes > 0 ? (size_t)op.bytes : 0;
        if (size > r->max_packet || r->qn >= QUEUE_CAP || r->qcap - r->qfill < size) {
            r->stats.bad_packets++;
            note(r, "page %ld: packet of %zu bytes dropped (at most %zu)", pageno, size,
                 r->max_packet);
            r->lost = 1;
            continue;
        }
        if (sotto_packet_unpack(&r->head.layout, op.packet, size, NULL, NULL, NULL, 0, 0, &info,
                                &pst) != SOTTO_OK) {
            r->stats.bad_packets++;
            note(r, "page %ld: packet dropped: %s", pageno, pst.message);
            r->lost = 1;
            continue;
        }
        queued *q = &r->q[r->qn++];
        memset(q, 0, sizeof *q);
        q->off = r->qfill;
        q->size = size;
        q->info = info;
        q->n_samples = (int64_t)info.n_frames * r->spf;
        q->after_loss = r->lost;
        r->lost = 0;
        if (size > 0) memcpy(r->qbuf + r->qfill, op.packet, size);
        r->qfill += size;
    }
    place_packets(r, ogg_page_granulepos(og), ogg_page_eos(og), pageno);
}

static void deliver(sotto_oggmap_reader *r, sotto_oggmap_packet *pkt)
{
    const queued *q = &r->q[r->qi++];
    memset(pkt, 0, sizeof *pkt);
    pkt->data = r->qbuf + q->off;
    pkt->size = q->size;
    (void)sotto_packet_unpack(&r->head.layout, pkt->data, pkt->size, r->lens, r->sem, r->ac,
                              r->head.layout.max_groups, r->ldc, &pkt->info, NULL);
    pkt->lens = r->lens;
    pkt->sem = r->sem;
    pkt->ac = r->ac;
    pkt->ldc = r->ldc;
    pkt->start = q->start;
    pkt->n_samples = q->n_samples;
    pkt->lost_before = q->lost_before;
    int64_t pre = r->head.pre_skip, end = q->start + q->n_samples;
    int64_t hi = q->last_page && r->final < end ? r->final : end;
    int64_t lo = q->start > pre ? q->start : pre;
    if (lo > end) lo = end;
    pkt->skip = lo - q->start;
    pkt->keep = hi > lo ? hi - lo : 0;
    pkt->out_pos = lo - pre > 0 ? lo - pre : 0;
    r->stats.packets++;
    r->stats.lost_samples += q->lost_before;
    r->stats.kept_samples += pkt->keep;
}

int sotto_oggmap_reader_next(sotto_oggmap_reader *r, sotto_oggmap_packet *pkt, sotto_status *st)
{
    if (!r || !pkt) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "Sotto reader: NULL");
    for (;;) {
        if (r->fatal) return sotto_status_set(st, r->fatal, "%s", r->fatal_msg);
        if (r->report) {
            r->report = 0;
            if (r->extra_reports)
                return sotto_status_set(st, SOTTO_ERR_FORMAT, "%s (and %d more problem%s)",
                                        r->report_msg, r->extra_reports,
                                        r->extra_reports > 1 ? "s" : "");
            return sotto_status_set(st, SOTTO_ERR_FORMAT, "%s", r->report_msg);
        }
        if (r->qi < r->qn) {
            deliver(r, pkt);
            sotto_status_clear(st);
            return SOTTO_OK;
        }
        if (r->ended || r->stats.eos) {
            r->ended = 1;
            sotto_status_clear(st);
            return 1;
        }
        ogg_page og;
        int rc = get_page(r, &og);
        if (rc < 0) continue; /* final: reported at the top */
        if (rc == 0) {
            r->ended = 1;
            r->stats.truncated = 1;
            long left = r->oy.fill - r->oy.returned;
            if (left > 0)
                note(r,
                     "truncated: the input ends inside a page (%ld bytes dropped), before "
                     "the last page, after %" PRId64 " samples",
                     left, r->pos);
            else
                note(r, "truncated: the input ends before the last page, after %" PRId64 " samples",
                     r->pos);
            continue;
        }
        take_page(r, &og);
    }
}

/* ---- opening: both headers ----------------------------------------------------------------- */

/* The next page of the Sotto stream while reading headers; any damage is an error here. */
static int header_page(sotto_oggmap_reader *r, ogg_page *og, const char *what, sotto_status *st)
{
    for (;;) {
        int rc = get_page(r, og);
        if (rc < 0) return sotto_status_set(st, r->fatal, "%s", r->fatal_msg);
        if (r->report) {
            r->report = 0;
            return sotto_status_set(st, SOTTO_ERR_FORMAT, "%s: %s", what, r->report_msg);
        }
        if (rc == 0)
            return sotto_status_set(st, SOTTO_ERR_FORMAT, "%s: the input ends first", what);
        if (r->offset > HEADER_INPUT_LIMIT)
            return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                    "%s: not found in the first %" PRIu64 " bytes", what,
                                    HEADER_INPUT_LIMIT);
        if (!r->os_init || ogg_page_serialno(og) == r->serial) return SOTTO_OK;
    }
}

static int tags_parse(sotto_oggmap_reader *r, const uint8_t *p, size_t size, sotto_status *st)
{
    if (size > SOTTO_OGGMAP_MAX_TAGS_BYTES)
        return sotto_status_set(st, SOTTO_ERR_FORMAT, "comment header: %zu bytes (at most %u)",
                                size, SOTTO_OGGMAP_MAX_TAGS_BYTES);
    if (size < MAGIC_BYTES + 8 || memcmp(p, TAGS_MAGIC, MAGIC_BYTES) != 0)
        return sotto_status_set(st, SOTTO_ERR_FORMAT, "comment header: too short or bad magic");
    size_t o = MAGIC_BYTES;
    uint32_t vlen = ld_u32(p + o);
    o += 4;
    if (vlen > size - o - 4)
        return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                "comment header: vendor string of %" PRIu32 " bytes, %zu left",
                                vlen, size - o - 4);
    const uint8_t *vendor = p + o;
    o += vlen;
    uint32_t count = ld_u32(p + o);
    o += 4;
    if (count > (size - o) / 4)
        return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                "comment header: %" PRIu32 " comments "
                                "cannot fit in %zu bytes",
                                count, size - o);
    /* first pass: check lengths and bytes, size the pool */
    size_t pool = (size_t)vlen + 1, scan = o;
    for (uint32_t i = 0; i < count; i++) {
        if (size - scan < 4)
            return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                    "comment header: comment %" PRIu32 " truncated", i);
        uint32_t len = ld_u32(p + scan);
        scan += 4;
        if (len > size - scan)
            return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                    "comment header: comment %" PRIu32 " of %" PRIu32
                                    " bytes, %zu left",
                                    i, len, size - scan);
        if (memchr(p + scan, 0, len))
            return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                    "comment header: comment %" PRIu32 " holds a NUL byte", i);
        scan += len;
        pool += (size_t)len + 1;
    }
    if (memchr(vendor, 0, vlen))
        return sotto_status_set(st, SOTTO_ERR_FORMAT, "comment header: vendor holds a NUL byte");
    /* pointers first, then the strings */
    size_t ptrs = (size_t)(count > 0 ? count : 1) * sizeof(char *);
    char *mem = sotto_malloc(&r->alloc, ptrs + pool);
    if (!mem) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "Sotto reader: out of memory");
    r->comments = (char **)(void *)mem;
    char *s = mem + ptrs;
    r->vendor = s;
    memcpy(s, vendor, vlen);
    s[vlen] = '\0';
    s += vlen + 1;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t len = ld_u32(p + o);
        o += 4;
        memcpy(s, p + o, len);
        s[len] = '\0';
        r->comments[i] = s;
        s += len + 1;
        o += len;
    }
    r->n_comments = (int)count;
    return SOTTO_OK;
}

/* Reads the ID header (finding the Sotto stream) and the comment header. */
static int read_headers(sotto_oggmap_reader *r, const sotto_oggmap_reader_params *params,
                        sotto_status *st)
{
    while (r->oy.fill < 4) {
        int rc = read_more(r);
        if (rc < 0) return sotto_status_set(st, r->fatal, "%s", r->fatal_msg);
        if (rc == 0) break;
    }
    if (r->oy.fill < 4 || memcmp(r->oy.data, "OggS", 4) != 0)
        return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                "not an Ogg file (it does not begin with "
                                "\"OggS\")");
    ogg_page og;
    int others = 0;
    for (;;) {
        int rc = header_page(r, &og,
                             others ? "not a Sotto stream (no SottoHead "
                                      "beginning-of-stream page)"
                                    : "ID header",
                             st);
        if (rc != SOTTO_OK) return rc;
        if (!ogg_page_bos(&og))
            return sotto_status_set(st, SOTTO_ERR_FORMAT, "not a Sotto stream: %s",
                                    others ? "no beginning-of-stream page holds a SottoHead "
                                             "packet"
                                           : "the first page does not begin a "
                                             "stream");
        if (og.body_len >= (long)MAGIC_BYTES && memcmp(og.body, HEAD_MAGIC, MAGIC_BYTES) == 0)
            break;
        others++;
    }
    r->serial = ogg_page_serialno(&og);
    if (ogg_stream_init(&r->os, r->serial) != 0)
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "Sotto reader: out of memory");
    r->os_init = 1;
    r->stats.pages++;
    ogg_packet op;
    if (ogg_stream_pagein(&r->os, &og) != 0 || ogg_page_continued(&og) ||
        ogg_page_granulepos(&og) != 0 || ogg_stream_packetout(&r->os, &op) != 1)
        return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                "ID header page: not a single complete "
                                "packet with granule position 0");
    int rc = head_parse(op.packet, (size_t)op.bytes, &r->head, st);
    if (rc != SOTTO_OK) return rc;
    if (ogg_stream_packetout(&r->os, &op) != 0)
        return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                "ID header page: holds more than the ID "
                                "header");
    if (params && params->expected_model_id &&
        memcmp(params->expected_model_id, r->head.model_id, SOTTO_OGGMAP_MODEL_ID_BYTES) != 0) {
        char got[17], want[17];
        hex8(got, r->head.model_id);
        hex8(want, params->expected_model_id);
        return sotto_status_set(st, SOTTO_ERR_MODEL,
                                "the stream was encoded with another model "
                                "(identity %s..., expected %s...)",
                                got, want);
    }
    /* comment header: may span pages, must end its last page */
    for (;;) {
        rc = header_page(r, &og, "comment header", st);
        if (rc != SOTTO_OK) return rc;
        r->stats.pages++;
        if (ogg_page_bos(&og) || ogg_stream_pagein(&r->os, &og) != 0)
            return sotto_status_set(st, SOTTO_ERR_FORMAT, "comment header: page %ld rejected",
                                    ogg_page_pageno(&og));
        int got = ogg_stream_packetout(&r->os, &op);
        if (got < 0)
            return sotto_status_set(st, SOTTO_ERR_FORMAT, "comment header: a page is missing");
        if (got == 0) {
            if (ogg_page_eos(&og))
                return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                        "the stream ends in its "
                                        "comment header");
            continue;
        }
        rc = tags_parse(r, op.packet, (size_t)op.bytes, st);
        if (rc != SOTTO_OK) return rc;
        if (ogg_stream_packetout(&r->os, &op) != 0 || ogg_page_granulepos(&og) != 0)
            return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                    "comment header: its last page "
                                    "holds audio or a granule position other than 0");
        if (ogg_page_eos(&og)) {
            /* a stream with headers only: valid, ends at once */
            r->stats.eos = 1;
            r->final = 0;
            r->stats.final_granule = 0;
        }
        return SOTTO_OK;
    }
}

int sotto_oggmap_reader_open(sotto_oggmap_read_fn fn, void *user,
                             const sotto_oggmap_reader_params *params, sotto_oggmap_reader **out,
                             sotto_status *st)
{
    if (!out || !fn)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "Sotto reader: NULL argument");
    *out = NULL;
    sotto_alloc a;
    sotto_alloc_init(&a, NULL);
    sotto_oggmap_reader *r = sotto_calloc(&a, 1, sizeof *r);
    if (!r) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "Sotto reader: out of memory");
    r->alloc = a;
    r->fn = fn;
    r->user = user;
    r->final = -1;
    r->stats.final_granule = -1;
    ogg_sync_init(&r->oy);
    int rc = read_headers(r, params, st);
    if (rc == SOTTO_OK) {
        const sotto_packet_layout *l = &r->head.layout;
        r->spf = sotto_oggmap_samples_per_frame(&r->head);
        (void)sotto_packet_size(l, l->max_groups, l->max_stages, &r->max_packet);
        r->qcap = MAX_PAGE_BODY + r->max_packet;
        r->ldc = l->max_stages > 0 ? l->max_stages : 1;
        r->qbuf = sotto_malloc(&a, r->qcap);
        r->lens = sotto_calloc(&a, (size_t)l->max_groups, sizeof(int32_t));
        r->sem = sotto_calloc(&a, (size_t)l->max_groups, sizeof(int32_t));
        r->ac = sotto_calloc(&a, (size_t)l->max_groups * (size_t)r->ldc, sizeof(int32_t));
        if (!r->qbuf || !r->lens || !r->sem || !r->ac)
            rc = sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "Sotto reader: out of memory");
    }
    if (rc != SOTTO_OK) {
        sotto_oggmap_reader_free(r);
        return rc;
    }
    *out = r;
    sotto_status_clear(st);
    return SOTTO_OK;
}

static long file_read(void *user, void *buf, size_t size)
{
    FILE *f = user;
    size_t n = fread(buf, 1, size, f);
    if (n == 0 && ferror(f)) return -1;
    return (long)n;
}

int sotto_oggmap_reader_open_file(FILE *f, const sotto_oggmap_reader_params *params,
                                  sotto_oggmap_reader **out, sotto_status *st)
{
    if (!f) {
        if (out) *out = NULL;
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "Sotto reader: NULL file");
    }
    return sotto_oggmap_reader_open(file_read, f, params, out, st);
}

const sotto_oggmap_head *sotto_oggmap_reader_head(const sotto_oggmap_reader *r)
{
    return r ? &r->head : NULL;
}

const char *sotto_oggmap_reader_vendor(const sotto_oggmap_reader *r)
{
    return r ? r->vendor : NULL;
}

int sotto_oggmap_reader_comment_count(const sotto_oggmap_reader *r)
{
    return r ? r->n_comments : 0;
}

const char *sotto_oggmap_reader_comment(const sotto_oggmap_reader *r, int i)
{
    return r && i >= 0 && i < r->n_comments ? r->comments[i] : NULL;
}

void sotto_oggmap_reader_stats(const sotto_oggmap_reader *r, sotto_oggmap_stats *s)
{
    if (!s) return;
    if (!r) {
        memset(s, 0, sizeof *s);
        s->final_granule = -1;
        return;
    }
    *s = r->stats;
}

void sotto_oggmap_reader_free(sotto_oggmap_reader *r)
{
    if (!r) return;
    sotto_alloc a = r->alloc;
    if (r->os_init) ogg_stream_clear(&r->os);
    ogg_sync_clear(&r->oy);
    sotto_free(&a, r->comments);
    sotto_free(&a, r->qbuf);
    sotto_free(&a, r->lens);
    sotto_free(&a, r->sem);
    sotto_free(&a, r->ac);
    sotto_free(&a, r);
}
