/*
 * The Ogg mapping (sdk/src/io/oggmap.c): streams written in memory and to files are read
 * back packet for packet, with exact sample accounting (pre-skip, end trimming); the ID
 * header's bytes are checked against an independent encoding of docs/bitstream.md; damaged
 * files (a flipped byte in every page, truncation at every page boundary and inside pages)
 * are read to the end with the damage reported; streams built directly with libogg carry
 * lying headers, lying granule positions, malformed packets, other codecs and other logical
 * streams.
 */
#include <dirent.h>
#include <ogg/ogg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/oggmap.h"
#include "testutil.h"

/* ---- memory I/O ---------------------------------------------------------------------------- */

typedef struct mbuf {
    uint8_t *p;
    size_t n, cap;
} mbuf;

static void mb_add(mbuf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            fprintf(stderr, "test: out of memory\n");
            exit(1);
        }
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}

static int mb_write(void *user, const void *data, size_t size)
{
    mb_add(user, data, size);
    return 0;
}

typedef struct mreader {
    const uint8_t *p;
    size_t n, pos;
    size_t chunk;   /* at most this many bytes per call (0: no limit) */
    size_t fail_at; /* failing_read fails once pos reaches this */
} mreader;

static long mr_read(void *user, void *buf, size_t size)
{
    mreader *m = user;
    size_t left = m->n - m->pos;
    if (size > left) size = left;
    if (m->chunk && size > m->chunk) size = m->chunk;
    memcpy(buf, m->p + m->pos, size);
    m->pos += size;
    return (long)size;
}

/* ---- a stream of random packets ----------------------------------------------------------- */

#define MAXP 200

typedef struct stream {
    sotto_oggmap_head head;
    int n_packets;
    uint8_t *pk[MAXP];
    size_t pk_size[MAXP];
    int64_t pk_start[MAXP], pk_samples[MAXP];
    int64_t total;  /* decoded samples, pre-skip included */
    int64_t length; /* original length given to finish */
    mbuf file;
} stream;

static sotto_oggmap_head flexi_head(uint32_t pre_skip)
{
    sotto_oggmap_head h;
    memset(&h, 0, sizeof h);
    snprintf(h.codec, sizeof h.codec, "flexicodec");
    for (int i = 0; i < SOTTO_OGGMAP_MODEL_ID_BYTES; i++)
        h.model_id[i] = (uint8_t)(0xa0 + i);
    h.sample_rate = 16000;
    h.input_rate = 44100;
    h.frame_rate_num = 25;
    h.frame_rate_den = 2;
    h.pre_skip = pre_skip;
    CU_ASSERT_EQUAL(sotto_packet_layout_flexicodec(&h.layout, 23, NULL), SOTTO_OK);
    return h;
}

static const char *const k_comments[] = {"TITLE=test", "ENCODER=sotto test", "EMPTY="};

/* Writes n packets of random groups (stage counts switching) and finishes with `trim`
 * samples of end trimming (-1: finish with length -1). */
static void make_stream(stream *s, tu_rng *r, int n, uint32_t pre_skip, int64_t trim, int page_ms)
{
    memset(s, 0, sizeof *s);
    s->head = flexi_head(pre_skip);
    sotto_oggmap_writer_params wp = sotto_oggmap_writer_default_params();
    wp.page_ms = page_ms;
    wp.vendor = "sotto-test";
    wp.comments = k_comments;
    wp.n_comments = 3;
    sotto_oggmap_writer *w = NULL;
    sotto_status st;
    CU_ASSERT_EQUAL_FATAL(sotto_oggmap_writer_open(&s->head, &wp, mb_write, &s->file, &w, &st),
                          SOTTO_OK);
    const sotto_packet_layout *l = &s->head.layout;
    for (int p = 0; p < n; p++) {
        int g = 1 + (int)(tu_rng_u32(r) % 16u), k = (int)(tu_rng_u32(r) % 24u);
        int32_t lens[16], sem[16], ac[16 * 23];
        int frames = 0;
        for (int i = 0; i < g; i++) {
            lens[i] = 1 + (int32_t)(tu_rng_u32(r) % 8u);
            frames += lens[i];
            sem[i] = (int32_t)(tu_rng_u32(r) % 32768u);
            for (int j = 0; j < k; j++)
                ac[i * 23 + j] = (int32_t)(tu_rng_u32(r) % 4096u);
        }
        uint8_t buf[600];
        size_t size;
        CU_ASSERT_EQUAL_FATAL(
            sotto_packet_pack(l, g, k, lens, sem, ac, 23, buf, sizeof buf, &size, NULL), SOTTO_OK);
        s->pk[p] = malloc(size);
        memcpy(s->pk[p], buf, size);
        s->pk_size[p] = size;
        s->pk_start[p] = s->total;
        s->pk_samples[p] = (int64_t)frames * 1280;
        s->total += s->pk_samples[p];
        CU_ASSERT_EQUAL_FATAL(sotto_oggmap_writer_packet(w, buf, size, &st), SOTTO_OK);
    }
    s->n_packets = n;
    CU_ASSERT_EQUAL(sotto_oggmap_writer_samples(w), s->total);
    s->length = trim < 0 ? s->total - pre_skip : s->total - pre_skip - trim;
    CU_ASSERT_EQUAL_FATAL(sotto_oggmap_writer_finish(w, trim < 0 ? -1 : s->length, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_oggmap_writer_packet(w, s->pk[0], s->pk_size[0], &st), SOTTO_ERR_STATE);
    sotto_oggmap_writer_free(w);
}

static void free_stream(stream *s)
{
    for (int p = 0; p < s->n_packets; p++)
        free(s->pk[p]);
    free(s->file.p);
}

/* ---- reading everything ------------------------------------------------------------------- */

typedef struct got_packet {
    uint8_t *data;
    size_t size;
    int64_t start, n_samples, lost_before, skip, keep, out_pos;
} got_packet;

typedef struct result {
    int open_rc;
    char open_msg[256];
    int n;
    got_packet p[MAXP];
    int reports;     /* SOTTO_ERR_FORMAT returns of next */
    char msgs[4096]; /* their messages */
    int end_rc;      /* the last return (1 at a normal end) */
    sotto_oggmap_stats stats;
    sotto_oggmap_head head;
    char vendor[64];
    int n_comments;
} result;

static void read_all(const uint8_t *data, size_t size, size_t chunk, const uint8_t *expect_id,
                     result *res)
{
    memset(res, 0, sizeof *res);
    uint8_t *copy = malloc(size ? size : 1); /* exact size: reads past the end are caught */
    if (size) memcpy(copy, data, size);
    mreader m = {copy, size, 0, chunk, SIZE_MAX};
    sotto_oggmap_reader_params rp = {expect_id};
    sotto_oggmap_reader *r = NULL;
    sotto_status st;
    res->open_rc = sotto_oggmap_reader_open(mr_read, &m, &rp, &r, &st);
    if (res->open_rc != SOTTO_OK) {
        CU_ASSERT_PTR_NULL(r);
        CU_ASSERT_EQUAL(st.code, res->open_rc);
        CU_ASSERT(st.message[0] != '\0');
        snprintf(res->open_msg, sizeof res->open_msg, "%s", st.message);
        free(copy);
        return;
    }
    res->head = *sotto_oggmap_reader_head(r);
    snprintf(res->vendor, sizeof res->vendor, "%s", sotto_oggmap_reader_vendor(r));
    res->n_comments = sotto_oggmap_reader_comment_count(r);
    for (int guard = 0; guard < 10000; guard++) {
        sotto_oggmap_packet pkt;
        int rc = sotto_oggmap_reader_next(r, &pkt, &st);
        res->end_rc = rc;
        if (rc == SOTTO_OK) {
            CU_ASSERT_FATAL(res->n < MAXP);
            got_packet *g = &res->p[res->n++];
            g->data = malloc(pkt.size ? pkt.size : 1);
            if (pkt.size) memcpy(g->data, pkt.data, pkt.size);
            g->size = pkt.size;
            g->start = pkt.start;
            g->n_samples = pkt.n_samples;
            g->lost_before = pkt.lost_before;
            g->skip = pkt.skip;
            g->keep = pkt.keep;
            g->out_pos = pkt.out_pos;
            CU_ASSERT(pkt.skip >= 0 && pkt.keep >= 0 && pkt.skip + pkt.keep <= pkt.n_samples);
            int frames = 0;
            for (int i = 0; i < pkt.info.n_groups; i++)
                frames += pkt.lens[i];
            CU_ASSERT_EQUAL(frames, pkt.info.n_frames);
            CU_ASSERT_EQUAL(pkt.n_samples,
                            (int64_t)frames * sotto_oggmap_samples_per_frame(&res->head));
            continue;
        }
        if (rc == SOTTO_ERR_FORMAT) {
            CU_ASSERT(st.message[0] != '\0');
            res->reports++;
            size_t len = strlen(res->msgs);
            snprintf(res->msgs + len, sizeof res->msgs - len, "%s\n", st.message);
            continue;
        }
        break;
    }
    CU_ASSERT_EQUAL(res->end_rc, 1);
    /* the end is sticky */
    sotto_oggmap_packet pkt;
    CU_ASSERT_EQUAL(sotto_oggmap_reader_next(r, &pkt, &st), 1);
    sotto_oggmap_reader_stats(r, &res->stats);
    sotto_oggmap_reader_free(r);
    free(copy);
}

static void free_result(result *res)
{
    for (int i = 0; i < res->n; i++)
        free(res->p[i].data);
}

/* The packets read are stream packets a..a+n-1 in order, with the writer's positions. */
static int same_packets(const stream *s, const got_packet *g, int n, int first)
{
    for (int i = 0; i < n; i++) {
        int p = first + i;
        if (p >= s->n_packets || g[i].size != s->pk_size[p] ||
            memcmp(g[i].data, s->pk[p], g[i].size) != 0 || g[i].start != s->pk_start[p])
            return 0;
    }
    return 1;
}

/* Index of the stream packet whose bytes equal g, or -1. */
static int find_packet(const stream *s, const got_packet *g)
{
    for (int p = 0; p < s->n_packets; p++)
        if (s->pk_size[p] == g->size && s->pk_start[p] == g->start &&
            memcmp(s->pk[p], g->data, g->size) == 0)
            return p;
    return -1;
}

/* Offsets of the pages of a well-formed file (header sizes from the page headers). */
static int page_offsets(const mbuf *f, size_t *off, int max)
{
    int n = 0;
    size_t o = 0;
    while (o + 27 <= f->n && n < max) {
        CU_ASSERT_EQUAL_FATAL(memcmp(f->p + o, "OggS", 4), 0);
        size_t segs = f->p[o + 26], body = 0;
        for (size_t i = 0; i < segs; i++)
            body += f->p[o + 27 + i];
        off[n++] = o;
        o += 27 + segs + body;
    }
    CU_ASSERT_EQUAL(o, f->n);
    off[n] = o;
    return n;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void check_complete(const stream *s, const result *res)
{
    CU_ASSERT_EQUAL(res->open_rc, SOTTO_OK);
    CU_ASSERT_EQUAL(res->reports, 0);
    if (res->reports) fprintf(stderr, "unexpected reports:\n%s", res->msgs);
    CU_ASSERT_EQUAL(res->n, s->n_packets);
    CU_ASSERT(same_packets(s, res->p, res->n, 0));
    int64_t kept = 0;
    for (int i = 0; i < res->n; i++) {
        CU_ASSERT_EQUAL(res->p[i].lost_before, 0);
        if (res->p[i].keep > 0) CU_ASSERT_EQUAL(res->p[i].out_pos, kept);
        kept += res->p[i].keep;
    }
    CU_ASSERT_EQUAL(kept, s->length);
    CU_ASSERT_EQUAL(res->stats.kept_samples, s->length);
    CU_ASSERT_EQUAL(res->stats.final_granule, (int64_t)s->head.pre_skip + s->length);
    CU_ASSERT(res->stats.eos && !res->stats.truncated);
    CU_ASSERT_EQUAL(res->stats.damaged + res->stats.holes + res->stats.bad_packets, 0);
}

static void test_roundtrip(void)
{
    tu_rng r;
    tu_rng_init(&r, tu_seed());
    stream s;
    make_stream(&s, &r, 60, 0, 517, 2000);
    result res;
    read_all(s.file.p, s.file.n, 0, s.head.model_id, &res);
    check_complete(&s, &res);
    CU_ASSERT_STRING_EQUAL(res.head.codec, "flexicodec");
    CU_ASSERT_EQUAL(res.head.version, 1);
    CU_ASSERT_EQUAL(memcmp(res.head.model_id, s.head.model_id, 32), 0);
    CU_ASSERT_EQUAL(res.head.sample_rate, 16000);
    CU_ASSERT_EQUAL(res.head.input_rate, 44100);
    CU_ASSERT(res.head.frame_rate_num == 25 && res.head.frame_rate_den == 2);
    CU_ASSERT_EQUAL(memcmp(&res.head.layout, &s.head.layout, sizeof s.head.layout), 0);
    CU_ASSERT_STRING_EQUAL(res.vendor, "sotto-test");
    CU_ASSERT_EQUAL(res.n_comments, 3);
    /* the last packet keeps all but the trimmed samples */
    CU_ASSERT_EQUAL(res.p[res.n - 1].keep, s.pk_samples[s.n_packets - 1] - 517);
    free_result(&res);
    /* one byte per read call: the same */
    read_all(s.file.p, s.file.n, 1, NULL, &res);
    check_complete(&s, &res);
    free_result(&res);
    free_stream(&s);
}

/* Many lengths, pre-skips and page sizes: the playable length is always exact. */
static void test_length_accounting(void)
{
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 1);
    const uint32_t pre[] = {0, 1, 312, 1280, 5000};
    for (int t = 0; t < 40; t++) {
        stream s;
        uint32_t ps = pre[t % 5];
        int n = 1 + (int)(tu_rng_u32(&r) % 12u);
        int page_ms = 1 + (int)(tu_rng_u32(&r) % 3000u);
        /* the same packets twice: first to learn the last packet's samples, then with a
         * trim inside it (none for every third stream) */
        tu_rng base = r, copy = base;
        tu_rng_u32(&r);
        make_stream(&s, &copy, n, ps, -1, page_ms);
        int64_t last = s.pk_samples[n - 1], room = s.total - ps;
        free_stream(&s);
        if (room < 0) continue; /* shorter than the pre-skip */
        int64_t trim = t % 3 == 0 ? 0 : (int64_t)(tu_rng_u32(&r) % (uint32_t)last);
        if (trim > room) trim = room;
        copy = base;
        make_stream(&s, &copy, n, ps, trim, page_ms);
        CU_ASSERT_EQUAL(s.length, s.total - ps - trim);
        result res;
        read_all(s.file.p, s.file.n, 0, NULL, &res);
        check_complete(&s, &res);
        /* the first packet drops the pre-skip */
        if (s.pk_samples[0] >= ps) CU_ASSERT_EQUAL(res.p[0].skip, ps);
        free_result(&res);
        free_stream(&s);
    }
}

static void test_writer_limits(void)
{
    tu_rng r;
    tu_rng_init(&r, 7);
    sotto_oggmap_head h = flexi_head(100);
    mbuf f = {0};
    sotto_oggmap_writer *w = NULL;
    sotto_status st;
    CU_ASSERT_EQUAL_FATAL(sotto_oggmap_writer_open(&h, NULL, mb_write, &f, &w, &st), SOTTO_OK);
    int32_t lens[2] = {1, 2}, sem[2] = {0, 1};
    uint8_t b[16];
    size_t n;
    CU_ASSERT_EQUAL(sotto_packet_pack(&h.layout, 2, 0, lens, sem, NULL, 0, b, 16, &n, NULL),
                    SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_oggmap_writer_packet(w, b, n, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_oggmap_writer_packet(w, b, n, &st), SOTTO_OK);
    /* a malformed packet is refused */
    CU_ASSERT_EQUAL(sotto_oggmap_writer_packet(w, b, n - 1, &st), SOTTO_ERR_INVALID_ARG);
    TU_ASSERT_HAS(st.message, "invalid packet");
    /* 7680 samples: the last packet covers 3840..7680 */
    CU_ASSERT_EQUAL(sotto_oggmap_writer_finish(w, 7680 - 100 + 1, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_oggmap_writer_finish(w, 3840 - 100 - 1, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_oggmap_writer_finish(w, -2, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_oggmap_writer_finish(w, 3840 - 100, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_oggmap_writer_finish(w, 0, &st), SOTTO_ERR_STATE);
    sotto_oggmap_writer_free(w);
    result res;
    read_all(f.p, f.n, 0, NULL, &res);
    CU_ASSERT_EQUAL(res.reports, 0);
    CU_ASSERT_EQUAL(res.n, 2);
    CU_ASSERT_EQUAL(res.stats.kept_samples, 3740);
    CU_ASSERT_EQUAL(res.p[1].keep, 0);
    free_result(&res);
    free(f.p);
    memset(&f, 0, sizeof f);

    /* bad heads are refused, naming the field */
    struct {
        const char *needle;
        sotto_oggmap_head h;
    } bad[7];
    for (int i = 0; i < 7; i++)
        bad[i].h = flexi_head(0);
    bad[0].needle = "codec name";
    bad[0].h.codec[0] = '\0';
    bad[1].needle = "sample rate";
    bad[1].h.sample_rate = 10;
    bad[2].needle = "input rate";
    bad[2].h.input_rate = 5;
    bad[3].needle = "frame rate";
    bad[3].h.frame_rate_num = 7;
    bad[4].needle = "frame rate";
    bad[4].h.frame_rate_den = 0;
    bad[5].needle = "pre-skip";
    bad[5].h.pre_skip = 16001;
    bad[6].needle = "acoustic stages";
    bad[6].h.layout.max_stages = 99;
    for (int i = 0; i < 7; i++) {
        st.message[0] = '\0';
        CU_ASSERT_EQUAL(sotto_oggmap_writer_open(&bad[i].h, NULL, mb_write, &f, &w, &st),
                        SOTTO_ERR_INVALID_ARG);
        CU_ASSERT_PTR_NULL(w);
        TU_ASSERT_HAS(st.message, bad[i].needle);
    }
    sotto_oggmap_writer_params wp = sotto_oggmap_writer_default_params();
    wp.page_ms = 0;
    CU_ASSERT_EQUAL(sotto_oggmap_writer_open(&h, &wp, mb_write, &f, &w, &st),
                    SOTTO_ERR_INVALID_ARG);
    free(f.p);
}

static int failing_write(void *user, const void *data, size_t size)
{
    int *budget = user;
    if (*budget <= 0) return -1;
    (*budget)--;
    return 0;
}

static void test_write_failure(void)
{
    sotto_oggmap_head h = flexi_head(0);
    sotto_oggmap_writer *w = NULL;
    sotto_status st;
    int budget = 1; /* the first page's header only */
    CU_ASSERT_EQUAL(sotto_oggmap_writer_open(&h, NULL, failing_write, &budget, &w, &st),
                    SOTTO_ERR_IO);
    CU_ASSERT_PTR_NULL(w);
    budget = 4; /* both header pages, then nothing */
    CU_ASSERT_EQUAL_FATAL(sotto_oggmap_writer_open(&h, NULL, failing_write, &budget, &w, &st),
                          SOTTO_OK);
    int32_t lens[1] = {1}, sem[1] = {0};
    uint8_t b[8];
    size_t n;
    CU_ASSERT_EQUAL(sotto_packet_pack(&h.layout, 1, 0, lens, sem, NULL, 0, b, 8, &n, NULL),
                    SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_oggmap_writer_packet(w, b, n, &st), SOTTO_OK); /* held */
    CU_ASSERT_EQUAL(sotto_oggmap_writer_finish(w, -1, &st), SOTTO_ERR_IO);
    CU_ASSERT_EQUAL(sotto_oggmap_writer_packet(w, b, n, &st), SOTTO_ERR_STATE);
    sotto_oggmap_writer_free(w);
}

static void test_empty_stream(void)
{
    sotto_oggmap_head h = flexi_head(0);
    mbuf f = {0};
    sotto_oggmap_writer *w = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_oggmap_writer_open(&h, NULL, mb_write, &f, &w, NULL), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_oggmap_writer_finish(w, 0, NULL), SOTTO_OK);
    sotto_oggmap_writer_free(w);
    result res;
    read_all(f.p, f.n, 0, NULL, &res);
    CU_ASSERT_EQUAL(res.open_rc, SOTTO_OK);
    CU_ASSERT_EQUAL(res.reports, 0);
    CU_ASSERT_EQUAL(res.n, 1); /* the empty packet */
    CU_ASSERT_EQUAL(res.p[0].size, 0);
    CU_ASSERT_EQUAL(res.stats.kept_samples, 0);
    CU_ASSERT(res.stats.eos && res.stats.final_granule == 0);
    free_result(&res);
    free(f.p);
}

static void test_file_io(void)
{
    char dir[512], path[600];
    CU_ASSERT_EQUAL_FATAL(tu_make_tmpdir("sotto_oggmap", dir, sizeof dir), 0);
    snprintf(path, sizeof path, "%s/t.sotto", dir);
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 3);
    stream s;
    make_stream(&s, &r, 30, 320, 100, 1000);
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    sotto_oggmap_writer *w = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_oggmap_writer_open_file(&s.head, NULL, f, &w, NULL), SOTTO_OK);
    for (int p = 0; p < s.n_packets; p++)
        CU_ASSERT_EQUAL(sotto_oggmap_writer_packet(w, s.pk[p], s.pk_size[p], NULL), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_oggmap_writer_finish(w, s.length, NULL), SOTTO_OK);
    sotto_oggmap_writer_free(w);
    CU_ASSERT_EQUAL(fclose(f), 0);

    f = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    sotto_oggmap_reader *rd = NULL;
    sotto_status st;
    sotto_oggmap_reader_params rp = {s.head.model_id};
    CU_ASSERT_EQUAL_FATAL(sotto_oggmap_reader_open_file(f, &rp, &rd, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_oggmap_reader_comment_count(rd), 0);
    CU_ASSERT_PTR_NULL(sotto_oggmap_reader_comment(rd, 0));
    TU_ASSERT_HAS(sotto_oggmap_reader_vendor(rd), "sotto ");
    sotto_oggmap_packet pkt;
    int n = 0, rc;
    int64_t kept = 0;
    while ((rc = sotto_oggmap_reader_next(rd, &pkt, &st)) == SOTTO_OK) {
        CU_ASSERT(n < s.n_packets && pkt.size == s.pk_size[n] &&
                  memcmp(pkt.data, s.pk[n], pkt.size) == 0);
        kept += pkt.keep;
        n++;
    }
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_EQUAL(n, s.n_packets);
    CU_ASSERT_EQUAL(kept, s.length);
    sotto_oggmap_reader_free(rd);
    fclose(f);
    unlink(path);
    rmdir(dir);
    free_stream(&s);
}

/* The ID header's bytes, encoded here independently of the writer. */
static void test_id_header_bytes(void)
{
    sotto_oggmap_head h = flexi_head(312);
    mbuf f = {0};
    sotto_oggmap_writer *w = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_oggmap_writer_open(&h, NULL, mb_write, &f, &w, NULL), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_oggmap_writer_finish(w, -1, NULL), SOTTO_OK);
    sotto_oggmap_writer_free(w);
    uint8_t want[92] = "SottoHead\x01"
                       "flexicodec";
    for (int i = 0; i < 32; i++)
        want[26 + i] = (uint8_t)(0xa0 + i);
    const uint8_t tail[] = {0x80, 0x3e, 0,  0, /* 16000 */
                            0x44, 0xac, 0,  0, /* 44100 */
                            25,   0,    0,  0, /* frame rate 25/2 */
                            2,    0,    0,  0, /* */
                            0x38, 0x01, 0,  0, /* pre-skip 312 */
                            0,    0x80, 0,  0, /* 32768 */
                            0,    0x10, 0,  0, /* 4096 */
                            15,   12,   23, 7, /* bits, bits, stages, max length - 1 */
                            15,   0};          /* max groups - 1 */
    memcpy(want + 58, tail, sizeof tail);
    /* page 0: 27-byte header, one lacing value of 92, then the packet */
    CU_ASSERT_FATAL(f.n > 28 + 92);
    CU_ASSERT_EQUAL(f.p[5], 2);   /* beginning of stream */
    CU_ASSERT_EQUAL(f.p[26], 1);  /* one segment */
    CU_ASSERT_EQUAL(f.p[27], 92); /* of 92 bytes */
    CU_ASSERT_EQUAL(memcmp(f.p + 28, want, 92), 0);
    /* page 1: the comment header alone */
    const uint8_t *p1 = f.p + 28 + 92;
    CU_ASSERT_EQUAL(memcmp(p1, "OggS", 4), 0);
    CU_ASSERT_EQUAL(p1[26], 1);
    CU_ASSERT_EQUAL(memcmp(p1 + 28, "SottoTags", 9), 0);
    free(f.p);
}

/* A flipped byte in each page in turn: headers fail to open, audio pages are reported and
 * skipped, and the packets after them keep their exact positions. */
static void test_crc_damage(void)
{
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 4);
    stream s;
    make_stream(&s, &r, 40, 0, 0, 300);
    size_t off[MAXP + 1];
    int n_pages = page_offsets(&s.file, off, MAXP);
    CU_ASSERT_FATAL(n_pages >= 6);
    uint8_t *bad = malloc(s.file.n);
    for (int pg = 0; pg < n_pages; pg++) {
        for (int where = 0; where < 2; where++) {
            memcpy(bad, s.file.p, s.file.n);
            /* in the body, or in the page header's granule position */
            size_t at = where == 0 ? off[pg + 1] - 1 : off[pg] + 8;
            bad[at] ^= 0x10;
            result res;
            read_all(bad, s.file.n, 0, NULL, &res);
            if (pg < 2) {
                CU_ASSERT_EQUAL(res.open_rc, SOTTO_ERR_FORMAT);
                TU_ASSERT_HAS(res.open_msg, "CRC");
                continue;
            }
            CU_ASSERT_EQUAL(res.open_rc, SOTTO_OK);
            CU_ASSERT_EQUAL(res.stats.damaged, 1);
            CU_ASSERT(res.reports >= 1);
            TU_ASSERT_HAS(res.msgs, "CRC");
            CU_ASSERT(res.n < s.n_packets);
            /* every packet read is a packet of the stream at its true position */
            int prev = -1;
            int64_t lost = 0;
            for (int i = 0; i < res.n; i++) {
                int p = find_packet(&s, &res.p[i]);
                CU_ASSERT(p > prev);
                if (p < 0) break;
                /* lost_before is exactly the samples of the packets skipped */
                int64_t gap = 0;
                for (int q = prev + 1; q < p; q++)
                    gap += s.pk_samples[q];
                CU_ASSERT_EQUAL(res.p[i].lost_before, gap);
                lost += gap;
                prev = p;
            }
            if (pg < n_pages - 1) {
                /* the last packet is read: the losses plus what was kept is the length */
                CU_ASSERT_EQUAL(prev, s.n_packets - 1);
                CU_ASSERT_EQUAL(res.stats.kept_samples + lost, s.length);
                CU_ASSERT_EQUAL(res.stats.lost_samples, lost);
                CU_ASSERT(res.stats.eos);
            } else {
                CU_ASSERT(res.stats.truncated); /* the last page is gone */
            }
            free_result(&res);
        }
    }
    free(bad);
    free_stream(&s);
}

/* Cut at every page boundary and inside every page: what was complete is read, the loss is
 * reported. */
static void test_truncation(void)
{
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 5);
    stream s;
    make_stream(&s, &r, 30, 0, 10, 400);
    size_t off[MAXP + 1];
    int n_pages = page_offsets(&s.file, off, MAXP);
    int prev_count = 0;
    for (int pg = 0; pg <= n_pages; pg++) {
        size_t cuts[4] = {off[pg], off[pg] + 1, off[pg] + 27, off[pg] + 40};
        int count_at_boundary = -1;
        for (int c = 0; c < 4; c++) {
            size_t cut = cuts[c];
            if (cut > s.file.n || (pg < n_pages && cut >= off[pg + 1])) continue;
            if (pg == n_pages && c > 0) continue;
            result res;
            read_all(s.file.p, cut, 0, NULL, &res);
            if (cut < off[2]) { /* the headers are incomplete */
                CU_ASSERT_EQUAL(res.open_rc, SOTTO_ERR_FORMAT);
                continue;
            }
            CU_ASSERT_EQUAL_FATAL(res.open_rc, SOTTO_OK);
            CU_ASSERT(same_packets(&s, res.p, res.n, 0));
            if (cut == s.file.n) {
                check_complete(&s, &res);
            } else {
                CU_ASSERT(res.stats.truncated);
                CU_ASSERT(!res.stats.eos);
                CU_ASSERT_EQUAL(res.reports, 1);
                TU_ASSERT_HAS(res.msgs, "truncated");
                if (c > 0) TU_ASSERT_HAS(res.msgs, "inside a page");
            }
            /* a cut inside page pg reads what a cut at its start reads */
            if (c == 0)
                count_at_boundary = res.n;
            else
                CU_ASSERT_EQUAL(res.n, count_at_boundary);
            CU_ASSERT(res.n >= prev_count);
            prev_count = res.n;
            free_result(&res);
        }
    }
    CU_ASSERT_EQUAL(prev_count, s.n_packets);
    free_stream(&s);
}

static void test_not_ogg(void)
{
    result res;
    read_all(NULL, 0, 0, NULL, &res);
    CU_ASSERT_EQUAL(res.open_rc, SOTTO_ERR_FORMAT);
    TU_ASSERT_HAS(res.open_msg, "not an Ogg file");
    const uint8_t riff[] = "RIFF\x24\0\0\0WAVEfmt ";
    read_all(riff, sizeof riff - 1, 0, NULL, &res);
    CU_ASSERT_EQUAL(res.open_rc, SOTTO_ERR_FORMAT);
    TU_ASSERT_HAS(res.open_msg, "not an Ogg file");
    read_all((const uint8_t *)"Ogg", 3, 0, NULL, &res);
    CU_ASSERT_EQUAL(res.open_rc, SOTTO_ERR_FORMAT);
    /* "OggS" then garbage */
    uint8_t junk[300];
    memcpy(junk, "OggS", 4);
    for (int i = 4; i < 300; i++)
        junk[i] = (uint8_t)(i * 37);
    read_all(junk, sizeof junk, 0, NULL, &res);
    CU_ASSERT_EQUAL(res.open_rc, SOTTO_ERR_FORMAT);
}

/* ---- streams built directly with libogg ---------------------------------------------------- */

typedef struct raw {
    const uint8_t *p;
    size_t n;
    int64_t granule;
    int flush; /* end the page after this packet */
    int eos;
} raw;

static void build(mbuf *out, uint32_t serial, const raw *pk, int n)
{
    ogg_stream_state os;
    ogg_stream_init(&os, (int)serial);
    ogg_page og;
    for (int i = 0; i < n; i++) {
        ogg_packet op;
        memset(&op, 0, sizeof op);
        static uint8_t empty[1];
        op.packet = (unsigned char *)(pk[i].p ? pk[i].p : empty);
        op.bytes = (long)pk[i].n;
        op.b_o_s = i == 0;
        op.e_o_s = pk[i].eos;
        op.granulepos = pk[i].granule;
        op.packetno = i;
        ogg_stream_packetin(&os, &op);
        if (pk[i].flush || pk[i].eos) {
            while (ogg_stream_flush(&os, &og)) {
                mb_add(out, og.header, (size_t)og.header_len);
                mb_add(out, og.body, (size_t)og.body_len);
            }
        }
    }
    while (ogg_stream_flush(&os, &og)) {
        mb_add(out, og.header, (size_t)og.header_len);
        mb_add(out, og.body, (size_t)og.body_len);
    }
    ogg_stream_clear(&os);
}

/* One page made by hand (libogg computes its CRC). */
static void hand_page(mbuf *out, uint32_t serial, uint32_t seq, int64_t granule, int flags,
                      const uint8_t *lacing, int n_seg, const uint8_t *body, size_t body_n)
{
    uint8_t h[27 + 255];
    memcpy(h, "OggS", 4);
    h[4] = 0;
    h[5] = (uint8_t)flags;
    for (int i = 0; i < 8; i++)
        h[6 + i] = (uint8_t)((uint64_t)granule >> (8 * i));
    for (int i = 0; i < 4; i++) {
        h[14 + i] = (uint8_t)(serial >> (8 * i));
        h[18 + i] = (uint8_t)(seq >> (8 * i));
        h[22 + i] = 0;
    }
    h[26] = (uint8_t)n_seg;
    memcpy(h + 27, lacing, (size_t)n_seg);
    uint8_t *b = malloc(body_n);
    memcpy(b, body, body_n);
    ogg_page og = {h, 27 + n_seg, b, (long)body_n};
    ogg_page_checksum_set(&og);
    mb_add(out, h, 27 + (size_t)n_seg);
    mb_add(out, b, body_n);
    free(b);
}

static void id_bytes(uint8_t id[100])
{
    sotto_oggmap_head h = flexi_head(0);
    mbuf f = {0};
    sotto_oggmap_writer *w = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_oggmap_writer_open(&h, NULL, mb_write, &f, &w, NULL), SOTTO_OK);
    sotto_oggmap_writer_free(w);
    memset(id, 0, 100);
    memcpy(id, f.p + 28, 92);
    free(f.p);
}

static size_t tags_bytes(uint8_t *t)
{
    memcpy(t, "SottoTags\x04\0\0\0test\x01\0\0\0\x05\0\0\0A=b c", 30);
    return 30;
}

/* A stream of one-group packets (one frame each: 1280 samples), one per page. */
static void build_audio(mbuf *out, const uint8_t *id, size_t id_n, const uint8_t *tags,
                        size_t tags_n, int n_audio, const uint8_t *bad_packet, int bad_at,
                        int64_t lie_granule_at, int64_t lie_value)
{
    static uint8_t pk[8];
    sotto_packet_layout l = flexi_head(0).layout;
    int32_t lens[1] = {1}, sem[1] = {7};
    size_t n;
    CU_ASSERT_EQUAL(sotto_packet_pack(&l, 1, 0, lens, sem, NULL, 0, pk, 8, &n, NULL), SOTTO_OK);
    raw r[64];
    int k = 0;
    r[k++] = (raw){id, id_n, 0, 1, 0};
    r[k++] = (raw){tags, tags_n, 0, 1, 0};
    for (int i = 0; i < n_audio; i++) {
        int64_t g = (int64_t)(i + 1) * 1280;
        if (i == lie_granule_at) g = lie_value;
        if (i == bad_at)
            r[k++] = (raw){bad_packet, 3, g, 1, i == n_audio - 1};
        else
            r[k++] = (raw){pk, n, g, 1, i == n_audio - 1};
    }
    build(out, 77, r, k);
}

static void expect_open_error(const mbuf *f, int code, const char *needle)
{
    result res;
    read_all(f->p, f->n, 0, NULL, &res);
    CU_ASSERT_EQUAL(res.open_rc, code);
    if (res.open_rc != code) fprintf(stderr, "open: %d %s\n", res.open_rc, res.open_msg);
    TU_ASSERT_HAS(res.open_msg, needle);
    free_result(&res);
}

static void test_lying_headers(void)
{
    uint8_t id[100], tags[64];
    size_t tn = tags_bytes(tags);
    mbuf f = {0};

    /* sanity: the hand-built stream reads */
    id_bytes(id);
    build_audio(&f, id, 92, tags, tn, 5, NULL, -1, -1, 0);
    result res;
    read_all(f.p, f.n, 0, NULL, &res);
    CU_ASSERT_EQUAL(res.open_rc, SOTTO_OK);
    CU_ASSERT_EQUAL(res.n, 5);
    CU_ASSERT_EQUAL(res.reports, 0);
    CU_ASSERT_EQUAL(res.n_comments, 1);
    CU_ASSERT_STRING_EQUAL(res.vendor, "test");
    free_result(&res);

    struct {
        int off, value; /* byte to set in the ID header */
        size_t n;       /* its size */
        int code;
        const char *needle;
    } cases[] = {
        {8, 'x', 92, SOTTO_ERR_FORMAT, "not a Sotto stream"},
        {9, 0, 92, SOTTO_ERR_UNSUPPORTED, "unknown version 0"},
        {9, 16, 92, SOTTO_ERR_UNSUPPORTED, "unknown version 16"},
        {9, 1, 91, SOTTO_ERR_FORMAT, "91 bytes"},
        {9, 1, 93, SOTTO_ERR_FORMAT, "93 bytes"},
        {9, 2, 91, SOTTO_ERR_FORMAT, "at least 92"},
        {25, 'z', 92, SOTTO_ERR_FORMAT, "NUL-padded"},
        {10, 0, 92, SOTTO_ERR_FORMAT, "codec name"},
        {10, 1, 92, SOTTO_ERR_FORMAT, "printable"},
        {59, 0, 92, SOTTO_ERR_FORMAT, "sample rate"},   /* 16000 -> 128 */
        {65, 0xff, 92, SOTTO_ERR_FORMAT, "input rate"}, /* 44100 -> huge */
        {66, 7, 92, SOTTO_ERR_FORMAT, "frame rate"},
        {70, 0, 92, SOTTO_ERR_FORMAT, "frame rate"},
        {76, 1, 92, SOTTO_ERR_FORMAT, "pre-skip"},
        {81, 0x80, 92, SOTTO_ERR_FORMAT, "codebook sizes"},
        {86, 14, 92, SOTTO_ERR_FORMAT, "bits per semantic"},
        {87, 30, 92, SOTTO_ERR_FORMAT, "bits per acoustic"},
        {88, 65, 92, SOTTO_ERR_FORMAT, "acoustic stages"},
        {91, 4, 92, SOTTO_ERR_FORMAT, "groups per packet"},
    };
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(cases); i++) {
        id_bytes(id);
        id[92] = 0;
        id[cases[i].off] = (uint8_t)cases[i].value;
        f.n = 0;
        build_audio(&f, id, cases[i].n, tags, tn, 2, NULL, -1, -1, 0);
        expect_open_error(&f, cases[i].code, cases[i].needle);
    }
    /* a minor version extends the header: the extra bytes are ignored */
    id_bytes(id);
    id[9] = 2;
    f.n = 0;
    build_audio(&f, id, 96, tags, tn, 2, NULL, -1, -1, 0);
    read_all(f.p, f.n, 0, NULL, &res);
    CU_ASSERT_EQUAL(res.open_rc, SOTTO_OK);
    CU_ASSERT_EQUAL(res.head.version, 2);
    CU_ASSERT_EQUAL(res.n, 2);
    free_result(&res);

    /* comment headers that lie */
    id_bytes(id);
    struct {
        int off, value;
        size_t n;
        const char *needle;
    } tcases[] = {
        {0, 'X', 30, "bad magic"},
        {9, 0x40, 30, "vendor string"},
        {17, 9, 30, "comments cannot fit"},
        {21, 6, 30, "comment 0 of 6 bytes"},
        {26, 0, 30, "NUL byte"},
        {0, 'S', 16, "too short"},
    };
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(tcases); i++) {
        tags_bytes(tags);
        tags[tcases[i].off] = (uint8_t)tcases[i].value;
        f.n = 0;
        build_audio(&f, id, 92, tags, tcases[i].n, 2, NULL, -1, -1, 0);
        expect_open_error(&f, SOTTO_ERR_FORMAT, tcases[i].needle);
    }
    /* audio on the comment header's page */
    tags_bytes(tags);
    static uint8_t pk[8];
    int32_t lens[1] = {1}, sem[1] = {0};
    size_t pn;
    sotto_oggmap_head fh = flexi_head(0);
    CU_ASSERT_EQUAL(sotto_packet_pack(&fh.layout, 1, 0, lens, sem, NULL, 0, pk, 8, &pn, NULL),
                    SOTTO_OK);
    raw r1[] = {{id, 92, 0, 1, 0}, {tags, tn, 0, 0, 0}, {pk, pn, 1280, 1, 1}};
    f.n = 0;
    build(&f, 5, r1, 3);
    expect_open_error(&f, SOTTO_ERR_FORMAT, "comment header: its last page");
    /* the ID header shares its page (libogg never writes that: the page is made by hand) */
    uint8_t two[200];
    memcpy(two, id, 92);
    memcpy(two + 92, tags, tn);
    const uint8_t lacing[2] = {92, (uint8_t)tn};
    f.n = 0;
    hand_page(&f, 5, 0, 0, 2, lacing, 2, two, 92 + tn);
    expect_open_error(&f, SOTTO_ERR_FORMAT, "ID header page");
    /* the ID page with a granule position other than 0 */
    f.n = 0;
    hand_page(&f, 5, 0, 1280, 2, lacing, 1, id, 92);
    expect_open_error(&f, SOTTO_ERR_FORMAT, "granule position 0");
    /* the stream ends after its ID header */
    raw r3[] = {{id, 92, 0, 1, 1}};
    f.n = 0;
    build(&f, 5, r3, 1);
    expect_open_error(&f, SOTTO_ERR_FORMAT, "comment header");
    /* another codec */
    raw r4[] = {{(const uint8_t *)"OpusHead\x01\x01\0\0\x80\xbb\0\0\0\0\0", 19, 0, 1, 0}};
    f.n = 0;
    build(&f, 5, r4, 1);
    expect_open_error(&f, SOTTO_ERR_FORMAT, "not a Sotto stream");
    free(f.p);
}

static void test_model_identity(void)
{
    tu_rng r;
    tu_rng_init(&r, 11);
    stream s;
    make_stream(&s, &r, 3, 0, -1, 2000);
    uint8_t other[32];
    memcpy(other, s.head.model_id, 32);
    other[31] ^= 1;
    result res;
    read_all(s.file.p, s.file.n, 0, other, &res);
    CU_ASSERT_EQUAL(res.open_rc, SOTTO_ERR_MODEL);
    TU_ASSERT_HAS(res.open_msg, "another model");
    TU_ASSERT_HAS(res.open_msg, "a0a1a2a3a4a5a6a7");
    read_all(s.file.p, s.file.n, 0, s.head.model_id, &res);
    CU_ASSERT_EQUAL(res.open_rc, SOTTO_OK);
    CU_ASSERT_EQUAL(res.n, 3);
    free_result(&res);
    free_stream(&s);
}

/* Valid pages carrying a malformed packet or lying granule positions. */
static void test_lying_stream(void)
{
    uint8_t id[100], tags[64];
    id_bytes(id);
    size_t tn = tags_bytes(tags);
    mbuf f = {0};
    result res;

    /* packet 3 of 6 is malformed (3 bytes, its header says 4): dropped, and packet 4 is
     * placed from its page's granule, one frame later */
    const uint8_t bad[3] = {0x00, 0x00, 0x00};
    build_audio(&f, id, 92, tags, tn, 6, bad, 3, -1, 0);
    read_all(f.p, f.n, 0, NULL, &res);
    CU_ASSERT_EQUAL(res.open_rc, SOTTO_OK);
    CU_ASSERT_EQUAL(res.n, 5);
    CU_ASSERT_EQUAL(res.reports, 1);
    TU_ASSERT_HAS(res.msgs, "packet dropped");
    CU_ASSERT_EQUAL(res.stats.bad_packets, 1);
    CU_ASSERT_EQUAL(res.p[3].start, 4 * 1280);
    CU_ASSERT_EQUAL(res.p[3].lost_before, 1280);
    CU_ASSERT_EQUAL(res.p[3].out_pos, 4 * 1280);
    CU_ASSERT_EQUAL(res.stats.kept_samples, 5 * 1280);
    free_result(&res);

    /* page 2 (audio) claims granule 99999: reported, the count goes on */
    f.n = 0;
    build_audio(&f, id, 92, tags, tn, 5, NULL, -1, 2, 99999);
    read_all(f.p, f.n, 0, NULL, &res);
    CU_ASSERT_EQUAL(res.n, 5);
    CU_ASSERT_EQUAL(res.reports, 1);
    TU_ASSERT_HAS(res.msgs, "granule position 99999");
    CU_ASSERT_EQUAL(res.p[4].start, 4 * 1280);
    CU_ASSERT_EQUAL(res.stats.kept_samples, 5 * 1280);
    free_result(&res);

    /* the last page claims more than its packets hold: not trimmed */
    f.n = 0;
    build_audio(&f, id, 92, tags, tn, 4, NULL, -1, 3, 4 * 1280 + 1);
    read_all(f.p, f.n, 0, NULL, &res);
    CU_ASSERT_EQUAL(res.reports, 1);
    TU_ASSERT_HAS(res.msgs, "not trimmed");
    CU_ASSERT_EQUAL(res.stats.kept_samples, 4 * 1280);
    free_result(&res);

    /* the last page trims into an earlier page: not trimmed */
    f.n = 0;
    build_audio(&f, id, 92, tags, tn, 4, NULL, -1, 3, 2 * 1280);
    read_all(f.p, f.n, 0, NULL, &res);
    CU_ASSERT_EQUAL(res.reports, 1);
    CU_ASSERT_EQUAL(res.stats.kept_samples, 4 * 1280);
    free_result(&res);

    /* a valid trim of 1000 samples on the last page */
    f.n = 0;
    build_audio(&f, id, 92, tags, tn, 4, NULL, -1, 3, 4 * 1280 - 1000);
    read_all(f.p, f.n, 0, NULL, &res);
    CU_ASSERT_EQUAL(res.reports, 0);
    CU_ASSERT_EQUAL(res.stats.kept_samples, 4 * 1280 - 1000);
    CU_ASSERT_EQUAL(res.p[3].keep, 280);
    free_result(&res);
    free(f.p);
}

/* Other logical streams before and between the Sotto stream's pages are skipped. */
static void test_multiplexed(void)
{
    tu_rng r;
    tu_rng_init(&r, 12);
    stream s;
    make_stream(&s, &r, 20, 0, 0, 300);
    size_t off[MAXP + 1];
    int n_pages = page_offsets(&s.file, off, MAXP);
    /* another stream: a BOS page and a data page, serial 9 */
    mbuf other = {0};
    raw o[] = {{(const uint8_t *)"OtherHead", 9, 0, 1, 0}, {(const uint8_t *)"xyz", 3, 5, 1, 0}};
    build(&other, 9, o, 2);
    size_t ooff[4];
    int on = page_offsets(&other, ooff, 3);
    CU_ASSERT_EQUAL_FATAL(on, 2);
    mbuf mux = {0};
    mb_add(&mux, other.p, ooff[1]); /* other BOS */
    mb_add(&mux, s.file.p, off[2]); /* Sotto headers */
    for (int pg = 2; pg < n_pages; pg++) {
        mb_add(&mux, s.file.p + off[pg], off[pg + 1] - off[pg]);
        if (pg == 3) mb_add(&mux, other.p + ooff[1], ooff[2] - ooff[1]);
    }
    result res;
    read_all(mux.p, mux.n, 0, NULL, &res);
    check_complete(&s, &res);
    free_result(&res);
    free(mux.p);
    free(other.p);
    free_stream(&s);
}

/* Garbage between pages is skipped and reported; the packets around it are intact. */
static void test_garbage_between_pages(void)
{
    tu_rng r;
    tu_rng_init(&r, 13);
    stream s;
    make_stream(&s, &r, 20, 0, 0, 300);
    size_t off[MAXP + 1];
    int n_pages = page_offsets(&s.file, off, MAXP);
    CU_ASSERT_FATAL(n_pages > 4);
    mbuf g = {0};
    mb_add(&g, s.file.p, off[4]);
    mb_add(&g, "garbage bytes, with an O and OggS too", 37);
    mb_add(&g, s.file.p + off[4], s.file.n - off[4]);
    result res;
    read_all(g.p, g.n, 0, NULL, &res);
    CU_ASSERT_EQUAL(res.n, s.n_packets);
    CU_ASSERT(same_packets(&s, res.p, res.n, 0));
    CU_ASSERT(res.reports >= 1);
    TU_ASSERT_HAS(res.msgs, "outside any Ogg page");
    CU_ASSERT(res.stats.garbage_bytes > 0);
    CU_ASSERT_EQUAL(res.stats.kept_samples, s.length);
    free_result(&res);
    free(g.p);
    free_stream(&s);
}

static long failing_read(void *user, void *buf, size_t size)
{
    mreader *m = user;
    if (m->pos >= m->fail_at) return -1;
    return mr_read(user, buf, size);
}

static void test_read_failure(void)
{
    tu_rng r;
    tu_rng_init(&r, 14);
    stream s;
    make_stream(&s, &r, 20, 0, 0, 300);
    mreader m = {s.file.p, s.file.n, 0, 64, 0}; /* fails at once */
    sotto_oggmap_reader *rd = NULL;
    sotto_status st;
    CU_ASSERT_EQUAL(sotto_oggmap_reader_open(failing_read, &m, NULL, &rd, &st), SOTTO_ERR_IO);
    CU_ASSERT_PTR_NULL(rd);
    /* fails after the headers: a final error, returned again */
    m.pos = 0;
    m.fail_at = 1024;
    CU_ASSERT_FATAL(s.file.n > 2048);
    CU_ASSERT_EQUAL_FATAL(sotto_oggmap_reader_open(failing_read, &m, NULL, &rd, &st), SOTTO_OK);
    sotto_oggmap_packet pkt;
    int rc;
    while ((rc = sotto_oggmap_reader_next(rd, &pkt, &st)) == SOTTO_OK) {
    }
    CU_ASSERT_EQUAL(rc, SOTTO_ERR_IO);
    CU_ASSERT_EQUAL(sotto_oggmap_reader_next(rd, &pkt, &st), SOTTO_ERR_IO);
    sotto_oggmap_reader_free(rd);
    CU_ASSERT_EQUAL(sotto_oggmap_reader_open(NULL, NULL, NULL, &rd, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_oggmap_reader_next(NULL, &pkt, &st), SOTTO_ERR_INVALID_ARG);
    free_stream(&s);
}

/* The seed corpus, written by tests/fuzz/make_bitstream_corpus.py from the format description
 * alone: ok_* files read without a report and with exact lengths, bad_* files fail to open or
 * report damage. */
static void test_corpus(void)
{
    const char *dir = "fuzz/corpus/bitstream";
    DIR *d = opendir(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    int n_ok = 0, n_bad = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int ok = strncmp(e->d_name, "ok_", 3) == 0, bad = strncmp(e->d_name, "bad_", 4) == 0;
        if (!ok && !bad) continue;
        char path[600];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        uint8_t buf[8192];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        result res;
        read_all(buf, n, 0, NULL, &res);
        if (ok) {
            n_ok++;
            int64_t len = res.stats.final_granule - (int64_t)res.head.pre_skip;
            if (res.open_rc != SOTTO_OK || res.reports != 0 || !res.stats.eos ||
                res.stats.kept_samples != (len > 0 ? len : 0)) {
                fprintf(stderr, "%s: open %d (%s), %d reports:\n%s", e->d_name, res.open_rc,
                        res.open_msg, res.reports, res.msgs);
                CU_FAIL("a valid corpus file does not read cleanly");
            }
        } else {
            n_bad++;
            if (res.open_rc == SOTTO_OK && res.reports == 0) {
                fprintf(stderr, "%s: read without a report\n", e->d_name);
                CU_FAIL("a broken corpus file reads cleanly");
            }
        }
        free_result(&res);
    }
    closedir(d);
    CU_ASSERT(n_ok >= 10);
    CU_ASSERT(n_bad >= 20);
}

int main(void)
{
    static const tu_test tests[] = {
        {"roundtrip", test_roundtrip},
        {"length_accounting", test_length_accounting},
        {"writer_limits", test_writer_limits},
        {"write_failure", test_write_failure},
        {"empty_stream", test_empty_stream},
        {"file_io", test_file_io},
        {"id_header_bytes", test_id_header_bytes},
        {"crc_damage_every_page", test_crc_damage},
        {"truncation_every_page", test_truncation},
        {"not_ogg", test_not_ogg},
        {"lying_headers", test_lying_headers},
        {"model_identity", test_model_identity},
        {"lying_stream", test_lying_stream},
        {"multiplexed", test_multiplexed},
        {"garbage_between_pages", test_garbage_between_pages},
        {"read_failure", test_read_failure},
        {"corpus", test_corpus},
        {NULL, NULL},
    };
    return tu_run_suite("oggmap", tests);
}
