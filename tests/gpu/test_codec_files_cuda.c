/*
 * sotto_codec_decode_files on a CUDA model (the batched path of `sotto transcode --decode` on
 * a GPU): `.sotto` files for the small FlexiCodec model (intact ones of different lengths and
 * stage counts, which run as batched forwards; one with mixed stage counts and one with a
 * damaged page, which go the per-file way inside the call; one from another model) decoded in
 * one call on the device, each job against sotto_codec_decode_file on the CPU model: the same
 * result code and message, length and info, and samples within max-abs 2e-4, NMSE 1e-8 (the
 * budget of tests/gpu/test_flexicodec_cuda.c: cuBLAS and the CPU sum in other orders, which
 * this random-weight model's Snake stack magnifies); and against decode_file on the device
 * itself, the same budget (more rows per GEMM may change cuBLAS's order). With
 * max_batch_frames 0 (forwards as long as the call's longest file) and 100 (smaller ones). Where no
 * device exists, or Sotto was built without its CUDA backend, the test reports SKIP (exit code 77),
 * never a pass.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda_probe.h"
#include "testutil.h"

#ifdef SOTTO_HAVE_CUDA

#include "io/oggmap.h"
#include "sotto/sotto.h"
#include "sotto/sotto_codec.h"

#define MODEL "flexicodec/decode-small.gguf"
#define MAX_ABS 2e-4
#define NMSE 1e-8
#define MAXG 80
#define N_FILES 7

static char tmpdir[512];
static sotto_model *cpu, *gpu;
static char paths[N_FILES][600];

static sotto_model *load(sotto_backend_kind backend)
{
    sotto_model *m = NULL;
    sotto_status st;
    sotto_model_params p = sotto_model_default_params();
    p.backend = backend;
    const int rc = sotto_model_load_file(tu_data_path(MODEL), &p, &m, &st);
    if (rc) fprintf(stderr, "load %s: %s\n", MODEL, st.message);
    return rc ? NULL : m;
}

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

static void write_groups(const char *path, const groups *g, int64_t pre, int page_ms)
{
    sotto_codec_write_params wp = sotto_codec_default_write_params();
    wp.pre_skip = pre;
    wp.page_ms = page_ms;
    sotto_status st;
    const int rc = sotto_codec_write_file(cpu, path, g->len, g->fsq, g->rvq, g->G, g->S, &wp, &st);
    if (rc) fprintf(stderr, "%s: %s\n", path, st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
}

/* Packets of 8 groups with 4, 1, 2, 4, ... stages; another model's identity when foreign. */
static void write_mixed(const char *path, const groups *g, int foreign)
{
    static const int stages[3] = {4, 1, 2};
    sotto_oggmap_head h;
    memset(&h, 0, sizeof h);
    h.version = SOTTO_OGGMAP_VERSION;
    snprintf(h.codec, sizeof h.codec, "flexicodec");
    CU_ASSERT_EQUAL_FATAL(sotto_model_identity(cpu, h.model_id), SOTTO_OK);
    if (foreign) h.model_id[3] ^= 1;
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
        CU_ASSERT_EQUAL_FATAL(sotto_codec_pack_packet(cpu, g->len + g0, g->fsq + g0, rvq, n, S, pk,
                                                      sizeof pk, &bytes, NULL),
                              SOTTO_OK);
        CU_ASSERT_EQUAL_FATAL(sotto_oggmap_writer_packet(w, pk, bytes, NULL), SOTTO_OK);
    }
    CU_ASSERT_EQUAL_FATAL(sotto_oggmap_writer_finish(w, -1, NULL), SOTTO_OK);
    sotto_oggmap_writer_free(w);
    fclose(f);
}

/* A copy of src with a byte flipped in its third page (the second audio page): a lost span. */
static void write_damaged(const char *dst, const char *src)
{
    FILE *f = fopen(src, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, 0, SEEK_END);
    const long size = ftell(f);
    rewind(f);
    unsigned char *b = malloc((size_t)size);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL_FATAL(fread(b, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    long at[8];
    int np = 0;
    for (long i = 0; i + 4 <= size && np < 8; i++)
        if (!memcmp(b + i, "OggS", 4)) at[np++] = i;
    CU_ASSERT_FATAL(np >= 5);
    b[(at[3] + 28 + at[4]) / 2] ^= 0x5a;
    f = fopen(dst, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL_FATAL(fwrite(b, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    free(b);
}

static void setup_files(void)
{
    static const char *const names[N_FILES] = {
        "a.sotto", "b.sotto", "c.sotto", "d.sotto", "mixed.sotto", "b-lost.sotto", "other.sotto"};
    for (int i = 0; i < N_FILES; i++)
        snprintf(paths[i], sizeof paths[i], "%s/%s", tmpdir, names[i]);
    groups g;
    make_groups(&g, 30, 3, 1);
    write_groups(paths[0], &g, 100, 5000);
    make_groups(&g, 60, 4, 2);
    write_groups(paths[1], &g, 0, 1000); /* several audio pages */
    make_groups(&g, 7, 0, 3);
    write_groups(paths[2], &g, 0, 5000); /* semantic only */
    make_groups(&g, 1, 2, 4);
    write_groups(paths[3], &g, 0, 5000); /* one group */
    make_groups(&g, 20, 4, 5);
    write_mixed(paths[4], &g, 0);
    write_damaged(paths[5], paths[1]);
    write_mixed(paths[6], &g, 1);
}

static void compare(const char *what, const float *got, const float *want, int64_t n)
{
    double e2 = 0, r2 = 0, mx = 0;
    for (int64_t i = 0; i < n; i++) {
        const double d = fabs((double)got[i] - want[i]);
        mx = d > mx ? d : mx;
        e2 += d * d;
        r2 += (double)want[i] * want[i];
    }
    const double nmse = r2 > 0 ? e2 / r2 : e2;
    printf("  %-26s %6lld samples: max-abs %.3g, NMSE %.3g%s\n", what, (long long)n, mx, nmse,
           mx == 0 ? " (bit-identical)" : "");
    CU_ASSERT(mx <= MAX_ABS);
    CU_ASSERT(nmse <= NMSE);
}

/* One call on the device with max_batch_frames mbf, each job against decode_file on the CPU
 * and on the device. */
static void check(int mbf)
{
    sotto_decoder_params p = sotto_decoder_default_params();
    p.max_batch_frames = mbf;
    sotto_codec_decode_job jobs[N_FILES];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < N_FILES; i++)
        jobs[i].path = paths[i];
    sotto_status st;
    const int rc = sotto_codec_decode_files(gpu, jobs, N_FILES, &p, &st);
    CU_ASSERT_EQUAL(rc, SOTTO_ERR_MODEL); /* other.sotto, the only failure */
    for (int i = 0; i < N_FILES; i++) {
        const sotto_codec_decode_job *j = &jobs[i];
        const char *name = strrchr(paths[i], '/') + 1;
        for (int side = 0; side < 2; side++) {
            sotto_codec_file_info info;
            memset(&info, 0, sizeof info);
            sotto_status fs;
            float *x = NULL;
            int64_t n = -1;
            const int frc =
                sotto_codec_decode_file(side ? gpu : cpu, paths[i], &p, &x, &n, &info, &fs);
            CU_ASSERT_EQUAL(j->status.code, frc);
            CU_ASSERT_STRING_EQUAL(j->status.message, fs.message);
            CU_ASSERT_EQUAL(j->n_samples, n);
            CU_ASSERT_EQUAL(memcmp(&j->info, &info, sizeof info), 0);
            if (!frc && j->samples && j->n_samples == n) {
                char what[80];
                snprintf(what, sizeof what, "%s vs %s", name, side ? "device file" : "CPU file");
                compare(what, j->samples, x, n);
            }
            free(x);
        }
        free(j->samples);
    }
}

static void test_window_batches(void)
{
    check(0);
}
static void test_small_batches(void)
{
    check(100);
}

int main(void)
{
    if (sotto_cuda_device_count() == 0) {
        printf("SKIP: no CUDA device\n");
        return TU_SKIP;
    }
    if (tu_make_tmpdir("sotto_codec_files_cuda", tmpdir, sizeof tmpdir)) {
        fprintf(stderr, "no usable temporary folder\n");
        return 1;
    }
    cpu = load(SOTTO_BACKEND_CPU);
    gpu = load(SOTTO_BACKEND_CUDA);
    if (!cpu || !gpu) return 1;
    if (sotto_model_backend(gpu) != SOTTO_BACKEND_CUDA) {
        printf("SKIP: the model does not run on the device\n");
        return TU_SKIP;
    }
    static const tu_test setup[] = {{"files", setup_files}, {NULL, NULL}};
    static const tu_test tests[] = {{"max_batch_frames 0", test_window_batches},
                                    {"max_batch_frames 100", test_small_batches},
                                    {NULL, NULL}};
    int rc = tu_run_suite("codec_files_cuda_setup", setup);
    if (!rc) rc = tu_run_suite("codec_files_cuda", tests);
    sotto_model_free(gpu);
    sotto_model_free(cpu);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return rc;
}

#else
int main(void)
{
    printf("SKIP: Sotto built without the CUDA backend\n");
    return TU_SKIP;
}
#endif
