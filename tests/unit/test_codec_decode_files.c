/*
 * sotto_codec_decode_files on the CPU: every job gets exactly what sotto_codec_decode_file
 * gives for its file, bit for bit (samples, length, info, error code and message), on a set of
 * `.sotto` files made for the small FlexiCodec model: intact files of different lengths, stage
 * counts and trims (the batched path), a stream with mixed stage counts, a damaged page (a
 * lost span, concealed), a truncated file, an empty stream, a file cut inside its headers, a
 * file from another model, a missing file, one over max_frames; with the default parameters,
 * with segment windows (a length the call's decoder would window differently goes its own
 * way) and with fewer decoded stages. Then the call's own argument errors.
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/oggmap.h"
#include "sotto/sotto.h"
#include "sotto/sotto_codec.h"
#include "testutil.h"

#define MODEL "flexicodec/decode-small.gguf"
#define MAXG 200
#define MAX_FILES 16

static char tmpdir[512];
static sotto_model *model;
static char paths[MAX_FILES][600];
static int n_files;

/* Groups for the small model: lengths 1..3 (or all `fixed_len`), FSQ 0..32767, S stages of
 * 0..63. */
typedef struct groups {
    int G, S;
    int32_t len[MAXG], fsq[MAXG], rvq[MAXG * 4];
} groups;

static void make_groups(groups *g, int G, int S, int fixed_len, uint64_t seed)
{
    tu_rng r;
    tu_rng_init(&r, seed);
    g->G = G;
    g->S = S;
    for (int i = 0; i < G; i++) {
        g->len[i] = fixed_len ? fixed_len : 1 + (int32_t)(tu_rng_u32(&r) % 3);
        g->fsq[i] = (int32_t)(tu_rng_u32(&r) % 32768);
        for (int q = 0; q < S; q++)
            g->rvq[i * S + q] = (int32_t)(tu_rng_u32(&r) % 64);
    }
}

static const char *add_path(const char *name)
{
    CU_ASSERT_FATAL(n_files < MAX_FILES);
    snprintf(paths[n_files], sizeof paths[0], "%s/%s", tmpdir, name);
    return paths[n_files++];
}

/* The groups as a .sotto file: pre_skip, length (-1: all) and page length as given. */
static const char *write_groups(const char *name, const groups *g, int64_t pre, int64_t trim_end,
                                int page_ms)
{
    const char *path = add_path(name);
    sotto_codec_write_params wp = sotto_codec_default_write_params();
    wp.pre_skip = pre;
    wp.page_ms = page_ms;
    if (trim_end > 0) {
        int64_t T = 0;
        for (int i = 0; i < g->G; i++)
            T += g->len[i];
        wp.length = 1280 * T - 16 - pre - trim_end;
    }
    sotto_status st;
    const int rc =
        sotto_codec_write_file(model, path, g->len, g->fsq, g->rvq, g->G, g->S, &wp, &st);
    if (rc) fprintf(stderr, "%s: %s\n", name, st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    return path;
}

/* A stream whose packets carry different stage counts (packet k of 8 groups: stages[k % 3]),
 * with the model's identity, or another one when `foreign`. */
static const char *write_mixed(const char *name, const groups *g, int foreign)
{
    static const int stages[3] = {4, 1, 2};
    const char *path = add_path(name);
    sotto_oggmap_head h;
    memset(&h, 0, sizeof h);
    h.version = SOTTO_OGGMAP_VERSION;
    snprintf(h.codec, sizeof h.codec, "flexicodec");
    CU_ASSERT_EQUAL_FATAL(sotto_model_identity(model, h.model_id), SOTTO_OK);
    if (foreign) h.model_id[7] ^= 1;
    h.sample_rate = 16000;
    h.frame_rate_num = 25;
    h.frame_rate_den = 2;
    CU_ASSERT_EQUAL_FATAL(sotto_packet_layout_init(&h.layout, 32768, 64, 4, 8, 16, NULL), SOTTO_OK);
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    sotto_oggmap_writer *w = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_oggmap_writer_open_file(&h, NULL, f, &w, NULL), SOTTO_OK);
    int32_t rvq[8 * 4];
    uint8_t pk[256];
    size_t bytes;
    for (int g0 = 0, k = 0; g0 < g->G; g0 += 8, k++) {
        const int n = g->G - g0 < 8 ? g->G - g0 : 8, S = stages[k % 3];
        for (int i = 0; i < n; i++)
            for (int q = 0; q < S; q++)
                rvq[i * S + q] = g->rvq[(g0 + i) * g->S + q];
        CU_ASSERT_EQUAL_FATAL(sotto_codec_pack_packet(model, g->len + g0, g->fsq + g0, rvq, n, S,
                                                      pk, sizeof pk, &bytes, NULL),
                              SOTTO_OK);
        CU_ASSERT_EQUAL_FATAL(sotto_oggmap_writer_packet(w, pk, bytes, NULL), SOTTO_OK);
    }
    CU_ASSERT_EQUAL_FATAL(sotto_oggmap_writer_finish(w, -1, NULL), SOTTO_OK);
    sotto_oggmap_writer_free(w);
    fclose(f);
    return path;
}

static unsigned char *slurp(const char *path, long *size)
{
    FILE *f = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    rewind(f);
    unsigned char *b = malloc((size_t)*size);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
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

static void setup_files(void)
{
    groups g;
    make_groups(&g, 40, 3, 0, 1);
    write_groups("a.sotto", &g, 100, 300, 5000); /* trimmed at both ends */
    make_groups(&g, 120, 4, 0, 2);
    const char *big = write_groups("b.sotto", &g, 0, 0, 1000); /* several audio pages */
    make_groups(&g, 7, 0, 0, 3);
    write_groups("c.sotto", &g, 0, 0, 5000); /* semantic only */
    make_groups(&g, 1, 2, 0, 4);
    write_groups("d.sotto", &g, 0, 0, 5000); /* one group */
    make_groups(&g, 5, 4, 2, 5);
    write_groups("e.sotto", &g, 0, 0, 5000); /* 10 frames: see test_segments */
    make_groups(&g, 0, 4, 0, 6);
    write_groups("empty.sotto", &g, 0, -1, 5000);
    make_groups(&g, 30, 4, 0, 7);
    write_mixed("mixed.sotto", &g, 0);
    write_mixed("foreign.sotto", &g, 1);
    add_path("missing.sotto");

    /* from b: a flipped byte in its second audio page (a lost span, concealed), cut in
     * the middle of its audio (truncated), and cut inside the headers (refused) */
    long size, at[64];
    unsigned char *b = slurp(big, &size);
    const int np = pages(b, size, at, 64);
    CU_ASSERT_FATAL(np >= 6);
    unsigned char *c = malloc((size_t)size);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    memcpy(c, b, (size_t)size);
    c[(at[3] + 28 + at[4]) / 2] ^= 0x5a;
    spit(add_path("b-lost.sotto"), c, size);
    free(c);
    spit(add_path("b-cut.sotto"), b, (at[3] + at[4]) / 2);
    spit(add_path("b-head.sotto"), b, at[1] + 10);
    free(b);
}

/* The call over every file against decode_file per file, with params p. */
static void check_all(const sotto_decoder_params *p, const char *what)
{
    sotto_codec_decode_job jobs[MAX_FILES];
    memset(jobs, 0x55, sizeof jobs); /* the call sets every output */
    for (int i = 0; i < n_files; i++)
        jobs[i].path = paths[i];
    sotto_status st;
    const int rc = sotto_codec_decode_files(model, jobs, n_files, p, &st);
    int first = -1, batched = 0, own = 0;
    for (int i = 0; i < n_files; i++) {
        sotto_codec_file_info info;
        memset(&info, 0, sizeof info);
        sotto_status fs;
        float *x = NULL;
        int64_t n = -1;
        const int frc = sotto_codec_decode_file(model, paths[i], p, &x, &n, &info, &fs);
        const sotto_codec_decode_job *j = &jobs[i];
        CU_ASSERT_EQUAL(j->status.code, frc);
        CU_ASSERT_STRING_EQUAL(j->status.message, fs.message);
        CU_ASSERT_EQUAL(j->n_samples, n);
        CU_ASSERT_EQUAL(memcmp(&j->info, &info, sizeof info), 0);
        if (frc) {
            CU_ASSERT_PTR_NULL(j->samples);
            if (first < 0) first = i;
        } else {
            CU_ASSERT_PTR_NOT_NULL(j->samples);
            if (j->samples && n > 0)
                CU_ASSERT_EQUAL(memcmp(j->samples, x, sizeof(float) * (size_t)n), 0);
            const int intact = info.lost_frames == 0 && info.min_stages == info.max_stages;
            batched += intact && n > 0;
            own += !intact; /* concealed or mixed: the per-file path inside the call */
        }
        printf("  %s %-14s %6lld samples, %-3s %s\n", what, strrchr(paths[i], '/') + 1,
               (long long)n, frc ? "err" : "ok", frc ? fs.message : info.first_problem);
        free(x);
        free(j->samples);
    }
    CU_ASSERT(first >= 0);
    CU_ASSERT_EQUAL(rc, first >= 0 ? jobs[first].status.code : SOTTO_OK);
    if (first >= 0) CU_ASSERT_STRING_EQUAL(st.message, jobs[first].status.message);
    CU_ASSERT(batched >= 4);
    CU_ASSERT(own >= 1);
}

static void test_default(void)
{
    sotto_decoder_params p = sotto_decoder_default_params();
    check_all(&p, "default");
    check_all(NULL, "NULL params");
}

/* Windows of 8 frames with 2 of context: the call's decoder (sized for b, 200+ frames) windows
 * every stream above 8 frames, decode_file's only those above 12, so e (10 frames) must go its
 * own way to stay identical. */
static void test_segments(void)
{
    sotto_decoder_params p = sotto_decoder_default_params();
    p.segment_frames = 8;
    p.overlap_frames = 2;
    p.max_frames = 1000;
    check_all(&p, "segments");
}

/* Fewer decoded stages, and a max_frames below b's length: b and its damaged copies fail as
 * decode_file fails them (too long), the shorter files decode. */
static void test_stages_limit(void)
{
    sotto_decoder_params p = sotto_decoder_default_params();
    p.max_stages = 1;
    check_all(&p, "1 stage");
    p.max_frames = 100;
    check_all(&p, "max 100");
}

static void test_args(void)
{
    sotto_status st;
    CU_ASSERT_EQUAL(sotto_codec_decode_files(model, NULL, 1, NULL, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_codec_decode_files(model, NULL, -1, NULL, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_codec_decode_files(model, NULL, 0, NULL, &st), SOTTO_OK);
    sotto_codec_decode_job j[2];
    memset(j, 0, sizeof j);
    j[0].path = NULL; /* as decode_file: a NULL path is that file's error */
    j[1].path = paths[0];
    CU_ASSERT_EQUAL(sotto_codec_decode_files(model, j, 2, NULL, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(j[0].status.code, SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(j[1].status.code, SOTTO_OK);
    CU_ASSERT(j[1].n_samples > 0);
    free(j[1].samples);
    /* a NULL model: every file fails, as decode_file */
    j[0].path = paths[0];
    CU_ASSERT_EQUAL(sotto_codec_decode_files(NULL, j, 2, NULL, NULL), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(j[0].status.code, SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NULL(j[0].samples);
    /* not a codec model: each file gets decode_file's error */
    sotto_model *v = NULL;
    CU_ASSERT_EQUAL_FATAL(
        sotto_model_load_file(tu_data_path("vocos/mel-small.gguf"), NULL, &v, NULL), SOTTO_OK);
    float *x = NULL;
    int64_t n = 0;
    sotto_status fs;
    const int frc = sotto_codec_decode_file(v, paths[0], NULL, &x, &n, NULL, &fs);
    CU_ASSERT_NOT_EQUAL(frc, SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_codec_decode_files(v, j, 2, NULL, &st), frc);
    CU_ASSERT_STRING_EQUAL(st.message, fs.message);
    CU_ASSERT_EQUAL(j[1].status.code, frc);
    sotto_model_free(v);
}

int main(void)
{
    if (tu_make_tmpdir("sotto_codec_decode_files", tmpdir, sizeof tmpdir)) {
        fprintf(stderr, "no usable temporary folder\n");
        return 1;
    }
    /* on the CPU even where a device exists (AUTO would take it): bit-identity is the CPU's
     * promise; tests/gpu/test_codec_files_cuda.c checks the device */
    sotto_model_params mp = sotto_model_default_params();
    mp.backend = SOTTO_BACKEND_CPU;
    sotto_status st;
    if (sotto_model_load_file(tu_data_path(MODEL), &mp, &model, &st)) {
        fprintf(stderr, "%s: %s\n", MODEL, st.message);
        return 1;
    }
    static const tu_test setup[] = {{"files", setup_files}, {NULL, NULL}};
    static const tu_test tests[] = {
        {"each job as decode_file", test_default},
        {"segment windows", test_segments},
        {"decoded stages, max_frames", test_stages_limit},
        {"arguments", test_args},
        {NULL, NULL},
    };
    int rc = tu_run_suite("codec_decode_files_setup", setup);
    if (!rc) rc = tu_run_suite("codec_decode_files", tests);
    sotto_model_free(model);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return rc;
}
