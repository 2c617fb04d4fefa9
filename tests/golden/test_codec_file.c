/*
 * The codec packet and `.sotto` file API (sotto_codec.h) and model identities (sotto.h), on
 * the small FlexiCodec model: SHA-256 against the FIPS 180-4 examples; the identity against
 * an independent computation from the byte order docs/bitstream.md specifies; packets packed
 * and pushed give the same samples as direct pushes; a lost packet (NULL) keeps its place;
 * groups → file → groups is exact, and decoding a file gives the direct decode trimmed to
 * [pre_skip, pre_skip + length); a file from another model is refused; damaged and
 * truncated files decode partially with the losses reported and concealed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sha256.h"
#include "io/oggmap.h"
#include "sotto/sotto.h"
#include "sotto/sotto_codec.h"
#include "testutil.h"

#define MODEL "flexicodec/decode-small.gguf"
#define MAXG 200

static char tmpdir[512];
static sotto_model *model;

/* Random groups for the small model: lengths 1..3, FSQ 0..32767, S stages of 0..63. */
typedef struct groups {
    int G, S;
    int32_t len[MAXG], fsq[MAXG], rvq[MAXG * 4];
} groups;

static void make_groups(groups *g, int G, int S, uint64_t seed)
{
    tu_rng r;
    tu_rng_init(&r, seed);
    g->G = G;
    g->S = S;
    for (int i = 0; i < G; i++) {
        g->len[i] = 1 + (int32_t)(tu_rng_u32(&r) % 3);
        g->fsq[i] = (int32_t)(tu_rng_u32(&r) % 32768);
        for (int q = 0; q < S; q++)
            g->rvq[i * S + q] = (int32_t)(tu_rng_u32(&r) % 64);
    }
}

static sotto_decoder *new_decoder(int max_frames)
{
    sotto_decoder_params dp = sotto_decoder_default_params();
    dp.max_frames = max_frames;
    sotto_decoder *d = NULL;
    sotto_status st;
    int rc = sotto_decoder_create(model, &dp, &d, &st);
    if (rc) fprintf(stderr, "decoder: %s\n", st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    return d;
}

/* Direct decode of all groups: *n samples, malloc'd. */
static float *direct_decode(const groups *g, int64_t *n)
{
    sotto_decoder *d = new_decoder(1000);
    CU_ASSERT_EQUAL_FATAL(sotto_decoder_push(d, g->len, g->fsq, g->rvq, g->G, g->S), SOTTO_OK);
    size_t cap = sotto_decoder_output_samples(d);
    float *x = malloc(cap * sizeof *x);
    int got = sotto_decoder_flush(d, x, cap);
    CU_ASSERT_EQUAL(got, (int)cap);
    *n = got;
    sotto_decoder_free(d);
    return x;
}

static void path_of(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", tmpdir, name);
}

/* ---- SHA-256 ------------------------------------------------------------------------------ */

static void hexs(const uint8_t *d, char *out)
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void check_sha(const char *msg, size_t len, size_t chunk, const char *want)
{
    sotto_sha256 s;
    sotto_sha256_init(&s);
    for (size_t i = 0; i < len; i += chunk)
        sotto_sha256_update(&s, msg + i, len - i < chunk ? len - i : chunk);
    uint8_t d[32];
    char hx[65];
    sotto_sha256_final(&s, d);
    hexs(d, hx);
    if (strcmp(hx, want)) fprintf(stderr, "sha256 of %zu bytes: %s, want %s\n", len, hx, want);
    CU_ASSERT_STRING_EQUAL(hx, want);
}

static void test_sha256(void)
{
    /* FIPS 180-4 examples (NIST CSRC "SHA256.pdf", "SHA2_Additional.pdf") */
    static const char *abc = "abc";
    static const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    static const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
                              "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    const size_t chunks[] = {1, 3, 55, 64, 1000};
    for (size_t c = 0; c < SOTTO_ARRAY_LEN(chunks); c++) {
        check_sha(abc, 3, chunks[c],
                  "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        check_sha(m448, strlen(m448), chunks[c],
                  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
        check_sha(m896, strlen(m896), chunks[c],
                  "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
    }
    check_sha("", 0, 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    check_sha(a, 1000000, 4096, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    check_sha(a, 1000000, 999999,
              "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    /* the one-call form; 55/56/63/64 bytes straddle the padding's block boundary */
    uint8_t d1[32], d2[32];
    for (size_t n = 54; n <= 65; n++) {
        sotto_sha256_digest(a, n, d1);
        sotto_sha256 s;
        sotto_sha256_init(&s);
        sotto_sha256_update(&s, a, n / 2);
        sotto_sha256_update(&s, a + n / 2, n - n / 2);
        sotto_sha256_final(&s, d2);
        CU_ASSERT_EQUAL(memcmp(d1, d2, 32), 0);
    }
    free(a);
}

/* ---- identity ---------------------------------------------------------------------------- */

static void le(sotto_sha256 *h, uint64_t v, int n)
{
    uint8_t b[8];
    for (int i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    sotto_sha256_update(h, b, (size_t)n);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(const sotto_gguf_tensor *const *)a)->name.data,
                  (*(const sotto_gguf_tensor *const *)b)->name.data);
}

/* The identity from docs/bitstream.md, computed here from the GGUF reader alone. */
static void reference_identity(const char *path, uint8_t out[32])
{
    sotto_gguf *g = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_gguf_open_file(path, 0, NULL, &g, NULL), SOTTO_OK);
    int64_t n = sotto_gguf_tensor_count(g);
    const sotto_gguf_tensor **t = malloc((size_t)n * sizeof *t);
    for (int64_t i = 0; i < n; i++)
        t[i] = sotto_gguf_tensor_at(g, i);
    qsort(t, (size_t)n, sizeof *t, cmp_name);
    const char *arch = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_gguf_get_str(g, "general.architecture", &arch, NULL), SOTTO_OK);
    sotto_sha256 h;
    sotto_sha256_init(&h);
    sotto_sha256_update(&h, "sotto-model-identity-v1", 23);
    le(&h, strlen(arch), 8);
    sotto_sha256_update(&h, arch, strlen(arch));
    le(&h, (uint64_t)n, 8);
    for (int64_t i = 0; i < n; i++) {
        le(&h, t[i]->name.len, 8);
        sotto_sha256_update(&h, t[i]->name.data, t[i]->name.len);
        le(&h, (uint64_t)t[i]->dtype, 4);
        le(&h, (uint64_t)t[i]->n_dims, 4);
        for (int d = 0; d < t[i]->n_dims; d++)
            le(&h, (uint64_t)t[i]->shape[d], 8);
        le(&h, t[i]->n_bytes, 8);
        sotto_sha256_update(&h, t[i]->data, t[i]->n_bytes);
    }
    sotto_sha256_final(&h, out);
    free(t);
    sotto_gguf_close(g);
}

static void test_identity(void)
{
    uint8_t a[32], b[32], ref[32];
    CU_ASSERT_EQUAL_FATAL(sotto_model_identity(model, a), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_model_identity(model, b), SOTTO_OK); /* cached */
    CU_ASSERT_EQUAL(memcmp(a, b, 32), 0);
    reference_identity(tu_data_path(MODEL), ref);
    CU_ASSERT_EQUAL(memcmp(a, ref, 32), 0);
    /* the same weights loaded from memory, without mmap: the same identity */
    FILE *f = fopen(tu_data_path(MODEL), "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)sz);
    CU_ASSERT_EQUAL_FATAL(fread(buf, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    sotto_model *m2 = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_model_load_buffer(buf, (size_t)sz, 1, NULL, &m2, NULL), SOTTO_OK);
    free(buf);
    CU_ASSERT_EQUAL(sotto_model_identity(m2, b), SOTTO_OK);
    CU_ASSERT_EQUAL(memcmp(a, b, 32), 0);
    sotto_model_free(m2);
    /* another model (the vocoder fixture) has another identity */
    sotto_model *v = NULL;
    CU_ASSERT_EQUAL_FATAL(
        sotto_model_load_file(tu_data_path("vocos/mel-small.gguf"), NULL, &v, NULL), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_model_identity(v, b), SOTTO_OK);
    CU_ASSERT_NOT_EQUAL(memcmp(a, b, 32), 0);
    sotto_model_free(v);
    CU_ASSERT_EQUAL(sotto_model_identity(NULL, b), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_model_identity(model, NULL), SOTTO_ERR_INVALID_ARG);
}

/* ---- packets ----------------------------------------------------------------------------- */

static void test_packets(void)
{
    groups g;
    make_groups(&g, 40, 3, 11);
    int64_t n_ref;
    float *ref = direct_decode(&g, &n_ref);

    sotto_decoder *d = new_decoder(1000);
    CU_ASSERT_EQUAL(sotto_decoder_packet_max_groups(d), 16);
    /* 16 groups of 4 stages of 6 bits + 3-bit lengths + 15-bit FSQ + 4 + 3 header bits */
    CU_ASSERT_EQUAL(sotto_decoder_packet_max_bytes(d), (size_t)((7 + 16 * (3 + 15 + 24) + 7) / 8));
    uint8_t pk[256];
    size_t bytes = 0;
    int total = 0;
    for (int g0 = 0; g0 < g.G; g0 += 7) { /* packets of 7 groups */
        int n = g.G - g0 < 7 ? g.G - g0 : 7;
        size_t need = 0;
        CU_ASSERT_EQUAL(sotto_codec_pack_packet(model, g.len + g0, g.fsq + g0, g.rvq + g0 * g.S, n,
                                                g.S, NULL, 0, &need, NULL),
                        SOTTO_OK);
        CU_ASSERT_EQUAL(sotto_codec_pack_packet(model, g.len + g0, g.fsq + g0, g.rvq + g0 * g.S, n,
                                                g.S, pk, sizeof pk, &bytes, NULL),
                        SOTTO_OK);
        CU_ASSERT_EQUAL(need, bytes);
        CU_ASSERT_EQUAL(sotto_decoder_push_packet(d, pk, bytes), SOTTO_OK);
        /* a malformed copy (one byte short) changes nothing */
        CU_ASSERT_EQUAL(sotto_decoder_push_packet(d, pk, bytes - 1), SOTTO_ERR_FORMAT);
        TU_ASSERT_HAS(sotto_decoder_last_error(d), "packet");
        total += n;
        CU_ASSERT_EQUAL(sotto_decoder_buffered_groups(d), total);
    }
    CU_ASSERT_EQUAL(sotto_decoder_push_packet(d, pk, 0), SOTTO_OK); /* the empty packet */
    float *x = malloc((size_t)n_ref * sizeof *x);
    CU_ASSERT_EQUAL_FATAL(sotto_decoder_flush(d, x, (size_t)n_ref), (int)n_ref);
    TU_ASSERT_CLOSE("packets vs direct", x, ref, n_ref, 0.0, 0.0);
    sotto_decoder_free(d);

    /* bad packing arguments */
    sotto_status st;
    int32_t bad = 40000;
    CU_ASSERT_EQUAL(
        sotto_codec_pack_packet(model, g.len, &bad, g.rvq, 1, g.S, pk, sizeof pk, &bytes, &st),
        SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(
        sotto_codec_pack_packet(model, g.len, g.fsq, g.rvq, 17, g.S, pk, sizeof pk, &bytes, &st),
        SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_codec_pack_packet(model, g.len, g.fsq, g.rvq, 16, 4, pk, 10, &bytes, &st),
                    SOTTO_ERR_BUFFER_TOO_SMALL);

    /* a lost packet keeps its place: 3 packets of 8 groups, the middle one lost */
    d = new_decoder(1000);
    CU_ASSERT_EQUAL(sotto_decoder_lost_packet_frames(d), 13); /* 1 s at 12.5 Hz, rounded up */
    int frames[3] = {0, 0, 0};
    for (int p = 0; p < 3; p++) {
        for (int i = 0; i < 8; i++)
            frames[p] += g.len[p * 8 + i];
        CU_ASSERT_EQUAL_FATAL(sotto_codec_pack_packet(model, g.len + p * 8, g.fsq + p * 8,
                                                      g.rvq + p * 8 * g.S, 8, g.S, pk, sizeof pk,
                                                      &bytes, NULL),
                              SOTTO_OK);
        if (p == 1) {
            CU_ASSERT_EQUAL(sotto_decoder_lost_packet_frames(d), frames[0]);
            CU_ASSERT_EQUAL(sotto_decoder_push_packet(d, NULL, 0), SOTTO_OK);
        } else {
            CU_ASSERT_EQUAL(sotto_decoder_push_packet(d, pk, bytes), SOTTO_OK);
        }
    }
    const int T = frames[0] + frames[0] + frames[2];
    CU_ASSERT_EQUAL(sotto_decoder_buffered_frames(d), T);
    size_t cap = sotto_decoder_output_samples(d);
    CU_ASSERT_EQUAL(cap, (size_t)(1280 * T - 16));
    float *y = malloc(cap * sizeof *y);
    CU_ASSERT_EQUAL(sotto_decoder_flush(d, y, cap), (int)cap);
    double e = 0;
    int finite = 1;
    for (size_t i = 0; i < cap; i++) {
        finite &= isfinite(y[i]) != 0;
        e += (double)y[i] * y[i];
    }
    CU_ASSERT_TRUE(finite);
    CU_ASSERT_TRUE(e > 0);
    CU_ASSERT_EQUAL(sotto_decoder_push_packet(d, pk, bytes), SOTTO_ERR_STATE); /* flushed */
    sotto_decoder_free(d);
    free(y);
    free(x);
    free(ref);
}

/* ---- files ------------------------------------------------------------------------------- */

static void write_file(const char *path, const groups *g, int64_t pre_skip, int64_t length,
                       int page_ms)
{
    sotto_codec_write_params wp = sotto_codec_default_write_params();
    static const char *const comments[] = {"TITLE=test", "ENCODER=test_codec_file"};
    wp.pre_skip = pre_skip;
    wp.length = length;
    wp.page_ms = page_ms;
    wp.input_rate_hz = 48000;
    wp.comments = comments;
    wp.n_comments = 2;
    sotto_status st;
    int rc = sotto_codec_write_file(model, path, g->len, g->fsq, g->rvq, g->G, g->S, &wp, &st);
    if (rc) fprintf(stderr, "write %s: %s\n", path, st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
}

static void test_file_round_trip(void)
{
    groups g;
    make_groups(&g, 70, 4, 22);
    int64_t n_ref;
    float *ref = direct_decode(&g, &n_ref);
    char path[600];
    path_of(path, sizeof path, "a.sotto");
    const int64_t pre = 312, len = n_ref - pre - 700;
    write_file(path, &g, pre, len, 1000);

    /* groups → file → groups, exactly (the internal reader) */
    FILE *f = fopen(path, "rb");
    sotto_oggmap_reader *r = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_oggmap_reader_open_file(f, NULL, &r, NULL), SOTTO_OK);
    int k = 0, ok = 1;
    sotto_oggmap_packet p;
    while (sotto_oggmap_reader_next(r, &p, NULL) == SOTTO_OK) {
        CU_ASSERT_EQUAL(p.info.n_stages, 4);
        CU_ASSERT_TRUE(p.info.n_groups <= 16);
        for (int i = 0; i < p.info.n_groups && k < g.G; i++, k++) {
            ok &= p.lens[i] == g.len[k] && p.sem[i] == g.fsq[k];
            for (int q = 0; q < 4; q++)
                ok &= p.ac[i * p.ldc + q] == g.rvq[k * 4 + q];
        }
    }
    CU_ASSERT_EQUAL(k, g.G);
    CU_ASSERT_TRUE(ok);
    sotto_oggmap_reader_free(r);
    fclose(f);

    sotto_codec_file_info info;
    sotto_status st;
    CU_ASSERT_EQUAL_FATAL(sotto_codec_probe_file(path, model, &info, &st), SOTTO_OK);
    CU_ASSERT_STRING_EQUAL(info.codec, "flexicodec");
    CU_ASSERT_EQUAL(info.identity_matches, 1);
    CU_ASSERT_EQUAL(info.sample_rate_hz, 16000);
    CU_ASSERT_EQUAL(info.input_rate_hz, 48000);
    CU_ASSERT_DOUBLE_EQUAL(info.frame_rate_hz, 12.5, 1e-12);
    CU_ASSERT_EQUAL(info.pre_skip, pre);
    CU_ASSERT_EQUAL(info.samples, len);
    CU_ASSERT_EQUAL(info.groups, g.G);
    int64_t T = 0;
    for (int i = 0; i < g.G; i++)
        T += g.len[i];
    CU_ASSERT_EQUAL(info.frames, T);
    CU_ASSERT_EQUAL(info.n_comments, 2);
    CU_ASSERT_EQUAL(info.min_stages, 4);
    CU_ASSERT_EQUAL(info.n_problems, 0);
    CU_ASSERT_FALSE(info.truncated);
    CU_ASSERT_DOUBLE_EQUAL(info.groups_per_s, g.G / (len / 16000.0), 1e-9);
    CU_ASSERT_TRUE(info.bitrate_bps > 0);
    /* packets close at 16 groups or 1 s (13 frames) */
    CU_ASSERT_TRUE(info.packets >= (g.G + 15) / 16 && info.packets >= (T + 12) / 13);

    float *x = NULL;
    int64_t n = 0;
    sotto_decoder_params dp = sotto_decoder_default_params();
    CU_ASSERT_EQUAL_FATAL(sotto_codec_decode_file(model, path, &dp, &x, &n, &info, &st), SOTTO_OK);
    CU_ASSERT_EQUAL_FATAL(n, len);
    TU_ASSERT_CLOSE("file decode vs direct, trimmed", x, ref + pre, len, 1e-6, -1);
    CU_ASSERT_EQUAL(info.lost_frames, 0);
    free(x);

    /* default length: everything after pre-skip; no pre-skip */
    write_file(path, &g, 0, -1, 5000);
    CU_ASSERT_FATAL(T <= 375); /* the default max_frames */
    CU_ASSERT_EQUAL_FATAL(sotto_codec_decode_file(model, path, NULL, &x, &n, NULL, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(n, n_ref);
    TU_ASSERT_CLOSE("file decode, untrimmed", x, ref, n, 0.0, -1);
    free(x);
    dp.max_frames = (int)T - 1;
    CU_ASSERT_EQUAL(sotto_codec_decode_file(model, path, &dp, &x, &n, NULL, &st),
                    SOTTO_ERR_BUFFER_TOO_SMALL);
    CU_ASSERT_PTR_NULL(x);

    /* an empty stream */
    groups e;
    make_groups(&e, 0, 0, 1);
    write_file(path, &e, 0, -1, 5000);
    CU_ASSERT_EQUAL(sotto_codec_decode_file(model, path, &dp, &x, &n, &info, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_PTR_NOT_NULL(x);
    free(x);

    /* writer argument checks */
    sotto_codec_write_params wp = sotto_codec_default_write_params();
    wp.length = n_ref + 1;
    CU_ASSERT_EQUAL(sotto_codec_write_file(model, path, g.len, g.fsq, g.rvq, g.G, g.S, &wp, &st),
                    SOTTO_ERR_INVALID_ARG);
    TU_ASSERT_HAS(st.message, "exceeds");
    wp = sotto_codec_default_write_params();
    CU_ASSERT_EQUAL(sotto_codec_write_file(model, path, g.len, g.fsq, g.rvq, g.G, 5, &wp, &st),
                    SOTTO_ERR_INVALID_ARG);
    char nodir[700];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/x.sotto", tmpdir);
    CU_ASSERT_EQUAL(sotto_codec_write_file(model, nodir, g.len, g.fsq, g.rvq, g.G, g.S, NULL, &st),
                    SOTTO_ERR_IO);
    free(ref);
}

/* Writes the groups with the internal writer under a chosen model identity. */
static void write_foreign(const char *path, const groups *g, const uint8_t id[32])
{
    sotto_oggmap_head h;
    memset(&h, 0, sizeof h);
    snprintf(h.codec, sizeof h.codec, "flexicodec");
    memcpy(h.model_id, id, 32);
    h.sample_rate = 16000;
    h.frame_rate_num = 25;
    h.frame_rate_den = 2;
    CU_ASSERT_EQUAL_FATAL(sotto_packet_layout_init(&h.layout, 32768, 64, 4, 8, 16, NULL), SOTTO_OK);
    FILE *f = fopen(path, "wb");
    sotto_oggmap_writer *w = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_oggmap_writer_open_file(&h, NULL, f, &w, NULL), SOTTO_OK);
    uint8_t pk[256];
    size_t bytes;
    for (int g0 = 0; g0 < g->G; g0 += 16) {
        int n = g->G - g0 < 16 ? g->G - g0 : 16;
        CU_ASSERT_EQUAL_FATAL(sotto_codec_pack_packet(model, g->len + g0, g->fsq + g0,
                                                      g->rvq + g0 * g->S, n, g->S, pk, sizeof pk,
                                                      &bytes, NULL),
                              SOTTO_OK);
        CU_ASSERT_EQUAL_FATAL(sotto_oggmap_writer_packet(w, pk, bytes, NULL), SOTTO_OK);
    }
    CU_ASSERT_EQUAL_FATAL(sotto_oggmap_writer_finish(w, -1, NULL), SOTTO_OK);
    sotto_oggmap_writer_free(w);
    fclose(f);
}

static void test_file_refused(void)
{
    groups g;
    make_groups(&g, 20, 2, 33);
    char path[600];
    path_of(path, sizeof path, "b.sotto");
    uint8_t id[32];
    CU_ASSERT_EQUAL_FATAL(sotto_model_identity(model, id), SOTTO_OK);
    id[5] ^= 1;
    write_foreign(path, &g, id);
    sotto_codec_file_info info;
    sotto_status st;
    CU_ASSERT_EQUAL(sotto_codec_probe_file(path, model, &info, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(info.identity_matches, 0);
    CU_ASSERT_EQUAL(sotto_codec_probe_file(path, NULL, &info, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(info.identity_matches, -1);
    float *x = NULL;
    int64_t n = 0;
    sotto_decoder_params dp = sotto_decoder_default_params();
    CU_ASSERT_EQUAL(sotto_codec_decode_file(model, path, &dp, &x, &n, &info, &st), SOTTO_ERR_MODEL);
    TU_ASSERT_HAS(st.message, "another model");
    CU_ASSERT_PTR_NULL(x);
    /* with the right identity the same bytes decode */
    id[5] ^= 1;
    write_foreign(path, &g, id);
    CU_ASSERT_EQUAL(sotto_codec_decode_file(model, path, &dp, &x, &n, &info, &st), SOTTO_OK);
    free(x);
    x = NULL;
    /* a vocoder model is not a codec */
    sotto_model *v = NULL;
    CU_ASSERT_EQUAL_FATAL(
        sotto_model_load_file(tu_data_path("vocos/mel-small.gguf"), NULL, &v, NULL), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_codec_decode_file(v, path, &dp, &x, &n, &info, &st),
                    SOTTO_ERR_UNSUPPORTED);
    sotto_model_free(v);
    /* not a .sotto file; a missing file */
    CU_ASSERT_EQUAL(sotto_codec_decode_file(model, tu_data_path(MODEL), &dp, &x, &n, &info, &st),
                    SOTTO_ERR_FORMAT);
    TU_ASSERT_HAS(st.message, "not a .sotto file");
    path_of(path, sizeof path, "missing.sotto");
    CU_ASSERT_EQUAL(sotto_codec_decode_file(model, path, &dp, &x, &n, &info, &st), SOTTO_ERR_IO);
    TU_ASSERT_HAS(st.message, "missing.sotto");
    CU_ASSERT_EQUAL(sotto_codec_decode_file(model, NULL, &dp, &x, &n, &info, &st),
                    SOTTO_ERR_INVALID_ARG);
}

static unsigned char *slurp(const char *path, long *size)
{
    FILE *f = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    rewind(f);
    unsigned char *b = malloc((size_t)*size);
    CU_ASSERT_EQUAL_FATAL(fread(b, 1, (size_t)*size, f), (size_t)*size);
    fclose(f);
    return b;
}

static void spit(const char *path, const unsigned char *b, long size)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL_FATAL(fwrite(b, 1, (size_t)size, f), (size_t)size);
    fclose(f);
}

/* Offsets of the "OggS" page starts. */
static int pages(const unsigned char *b, long size, long *at, int cap)
{
    int n = 0;
    for (long i = 0; i + 4 <= size && n < cap; i++)
        if (!memcmp(b + i, "OggS", 4)) at[n++] = i;
    return n;
}

static int all_finite(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

static void test_file_damage(void)
{
    groups g;
    make_groups(&g, 120, 3, 44);
    int64_t n_ref;
    float *ref = direct_decode(&g, &n_ref);
    char path[600], bad[600];
    path_of(path, sizeof path, "c.sotto");
    path_of(bad, sizeof bad, "c-bad.sotto");
    const int64_t pre = 100, len = n_ref - pre - 300;
    write_file(path, &g, pre, len, 1000); /* 1 s pages: several audio pages */
    long size;
    unsigned char *b = slurp(path, &size);
    long at[64];
    int np = pages(b, size, at, 64);
    CU_ASSERT_FATAL(np >= 6); /* ID, comments, ≥ 4 audio pages */
    sotto_decoder_params dp = sotto_decoder_default_params();
    sotto_codec_file_info info;
    sotto_status st;
    float *x = NULL;
    int64_t n = 0;

    /* a flipped byte inside every audio page in turn: partial decode, exact length */
    for (int p = 2; p < np; p++) {
        unsigned char *c = malloc((size_t)size);
        memcpy(c, b, (size_t)size);
        long end = p + 1 < np ? at[p + 1] : size;
        c[(at[p] + 28 + end) / 2] ^= 0x5a;
        spit(bad, c, size);
        free(c);
        int rc = sotto_codec_decode_file(model, bad, &dp, &x, &n, &info, &st);
        CU_ASSERT_EQUAL(rc, SOTTO_OK);
        if (rc) {
            fprintf(stderr, "page %d: %s\n", p, st.message);
            continue;
        }
        CU_ASSERT_TRUE(info.n_problems > 0);
        CU_ASSERT_TRUE(info.first_problem[0] != '\0');
        CU_ASSERT_TRUE(info.damaged_pages > 0);
        CU_ASSERT_TRUE(all_finite(x, n));
        if (p + 1 < np) { /* not the last page: length kept, the gap concealed */
            CU_ASSERT_EQUAL(n, len);
            CU_ASSERT_TRUE(info.lost_frames > 0);
            /* one gap, placed to the nearest frame (a gap before the last page is measured
             * from its trimmed granule position, so it is off by the end trim) */
            const int64_t dev = info.lost_samples - info.lost_frames * 1280;
            CU_ASSERT_TRUE(dev > -640 && dev <= 640);
            if (dev <= -640 || dev > 640)
                fprintf(stderr, "page %d: lost %lld samples, %lld frames: %s\n", p,
                        (long long)info.lost_samples, (long long)info.lost_frames,
                        info.first_problem);
        } else {
            CU_ASSERT_TRUE(n <= len);
        }
        free(x);
        x = NULL;
    }

    /* truncated at every 97th byte after the headers: decodes what it holds, never fails */
    for (long cut = at[2]; cut < size; cut += 97) {
        spit(bad, b, cut);
        int rc = sotto_codec_decode_file(model, bad, &dp, &x, &n, &info, &st);
        CU_ASSERT_EQUAL(rc, SOTTO_OK);
        if (rc) {
            fprintf(stderr, "cut %ld: %s\n", cut, st.message);
            continue;
        }
        CU_ASSERT_TRUE(info.truncated);
        CU_ASSERT_TRUE(n <= len);
        CU_ASSERT_TRUE(all_finite(x, n));
        /* what was received before the cut decodes as in the intact file, up to the
         * transformer's whole-utterance context: only the length is checked exactly */
        free(x);
        x = NULL;
    }
    /* truncated inside the headers: refused */
    spit(bad, b, at[1] + 10);
    CU_ASSERT_EQUAL(sotto_codec_decode_file(model, bad, &dp, &x, &n, &info, &st), SOTTO_ERR_FORMAT);
    CU_ASSERT_PTR_NULL(x);
    free(b);
    free(ref);
}

int main(void)
{
    if (tu_make_tmpdir("sotto_codec_file", tmpdir, sizeof tmpdir)) {
        fprintf(stderr, "no usable temporary folder\n");
        return 1;
    }
    sotto_status st;
    if (sotto_model_load_file(tu_data_path(MODEL), NULL, &model, &st)) {
        fprintf(stderr, "%s: %s\n", MODEL, st.message);
        return 1;
    }
    static const tu_test tests[] = {
        {"SHA-256 FIPS 180-4 examples", test_sha256},
        {"model identity", test_identity},
        {"packets: pack, push, lost packet", test_packets},
        {"file round trip and trimming", test_file_round_trip},
        {"file from another model refused", test_file_refused},
        {"damaged and truncated files", test_file_damage},
        {NULL, NULL},
    };
    int rc = tu_run_suite("codec_file", tests);
    sotto_model_free(model);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return rc;
}
