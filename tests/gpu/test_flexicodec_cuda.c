/*
 * The offline FlexiCodec decode forward on the CUDA layers (codecs/flexicodec/flexicodec_cuda.h)
 * against the CPU forward of the same stages, flexicodec_bottleneck_forward and then
 * flexicodec_dac_decode (what the CPU decoder's flush runs), on the small fixture models of
 * tests/data/flexicodec: decode-small (a 3-layer bottleneck transformer), small (2 layers) and
 * small-f16 (f16 weights: kept as f16 panels, and switched to pair-packed binary16). The
 * input is the expanded latent the CPU decoder builds from each fixture's codes (FSQ and
 * ConvNeXt decoder, RVQ decode, per-group sum, expansion by the token lengths). Also: the CPU
 * reference against the public decoder's flush of the same codes (so the reference is the
 * decoder's own output), a second, shorter call on the same context (the zero frames around
 * the latent must be zero again), and the argument errors. CUDA graphs (decode-small): each
 * call with graphs on against the direct run of the same frame count on the same context (a
 * count's first call direct, its second captured, later ones replayed, on new latent values
 * too), the capture and replay counts, four counts captured, the least recently used replaced
 * by a fifth, graphs off again, and the errors. Codes in (flexicodec_cuda_decode_codes, the
 * group stages on the device too): on each fixture, against the CPU decoder's flush of the same
 * codes with no RVQ stage, all stages, and a mix (groups with all, one and no stages, and a
 * concealed run between them, interpolated); a segmented latent (latent_from_codes) decoded in
 * one window and in a shifted window; graphs on (direct, captured, replayed, replayed on other
 * codes of the same shape) against the direct run; and the errors. Where no device exists, or
 * Sotto was built without its CUDA backend, the test reports SKIP (exit code 77), never a pass.
 *
 * Tolerances (all activations f32, TF32 off on the GPU):
 *   f32 weights: max-abs ≤ 2e-4 and NMSE ≤ 1e-8 (NMSE = Σ(gpu − cpu)² / Σ cpu²; the output
 *     is a tanh, |y| < 1). The two sides run the same formulas in different summation orders
 *     (cuBLAS against the CPU GEMMs, each residual unit's 1×1 conv accumulated in one GEMM,
 *     float softmax sums), which this small random-weight model's deep Snake stack magnifies:
 *     the CPU's own SIMD and scalar kernels differ by max-abs 4.3e-6, NMSE 1.1e-12 on it, and a
 *     host run of the GPU's step sequence with double sums in place of the CUDA layers by
 *     9.4e-6, 2.7e-12. A wrong index, padding or crop gives NMSE near 1.
 *   f16 weights: the same budget against the CPU's f32 arithmetic on the same f16 file: both
 *     sides compute in f32 on the same (exactly widened) weight values. The binary16 layout
 *     (the CPU's f16 arithmetic, whose own activations are rounded) converts to the same f32
 *     weights, so its GPU output is held to the same budget against the same reference.
 *   graph replay vs the direct run: max-abs ≤ 1e-6. Both run the same kernels with the same
 *     arguments on the same buffers, so the outputs are expected bit-identical; the slack only
 *     covers a library picking another algorithm while captured. The log says whether each
 *     comparison was bit-identical.
 * Each comparison prints its max-abs and NMSE, so the log records the achieved error.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda_probe.h"
#include "testutil.h"

#ifdef SOTTO_HAVE_CUDA

#include "codecs/flexicodec/codec_internal.h"
#include "codecs/flexicodec/flexicodec_cuda.h"
#include "core/model.h"
#include "sotto/sotto.h"
#include "sotto/sotto_codec.h"

#define MAX_ABS_F32 2e-4
#define NMSE_F32 1e-8
#define MAX_ABS_DECODER 1e-5 /* CPU reference vs the public decoder: same CPU calls */
#define MAX_ABS_GRAPH 1e-6   /* graph replay vs the direct run: expected bit-identical */
#define GRAPH_SIZES 5        /* frame counts of the graph test: one more than the graphs kept */

/* A fixture: model, codes file and the names of its tensors. */
typedef struct fixture {
    const char *model, *golden;
    const char *fsq, *rvq, *lengths;
} fixture;

static const fixture DECODE_SMALL = {
    "flexicodec/decode-small.gguf", "flexicodec/decode-small_golden.gguf", "fsq", "rvq", "lengths"};
static const fixture SMALL = {"flexicodec/small.gguf", "flexicodec/small_golden.gguf", "fsq_index",
                              "rvq_codes", "token_lengths"};
static const fixture SMALL_F16 = {"flexicodec/small-f16.gguf", "flexicodec/small_golden.gguf",
                                  "fsq_index", "rvq_codes", "token_lengths"};

static sotto_cpu g_cpu;

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    return p;
}

/* On the CPU whatever the default backend: the references here are the CPU's. */
static sotto_model *load(const char *rel)
{
    sotto_model *m = NULL;
    sotto_status st;
    sotto_model_params p = sotto_model_default_params();
    p.backend = SOTTO_BACKEND_CPU;
    int rc = sotto_model_load_file(tu_data_path(rel), &p, &m, &st);
    if (rc) fprintf(stderr, "load %s: %s\n", rel, st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(flexicodec_model_get(m));
    return m;
}

static const int32_t *ints(const sotto_gguf *g, const char *name, int64_t *n0, int64_t *n1)
{
    const sotto_gguf_tensor *t = sotto_gguf_find_tensor(g, name);
    if (!t) fprintf(stderr, "fixture has no tensor '%s'\n", name);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL_FATAL(t->dtype, SOTTO_DTYPE_I32);
    if (n0) *n0 = t->shape[0];
    if (n1) *n1 = t->n_dims > 1 ? t->shape[1] : 1;
    return t->data;
}

/* The codes of a fixture: G groups, nq stages each. */
typedef struct codes {
    sotto_gguf *g;
    const int32_t *fsq, *rvq, *len;
    int G, nq;
} codes;

static void codes_open(codes *c, const fixture *f)
{
    memset(c, 0, sizeof *c);
    c->g = tu_golden_open(f->golden);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c->g);
    int64_t G, nq;
    c->fsq = ints(c->g, f->fsq, &G, NULL);
    c->rvq = ints(c->g, f->rvq, NULL, &nq);
    c->len = ints(c->g, f->lengths, NULL, NULL);
    c->G = (int)G;
    c->nq = (int)nq;
}

/* The expanded latent x[T][latent] of every group with all nq stages, as the CPU decoder
 * builds it before its bottleneck transformer. */
static float *latent(const flexicodec_model *fm, const codes *c, int64_t *T_out)
{
    const flexicodec_decoder_weights *w = &fm->w;
    const flexicodec_hparams *hp = &w->hp;
    const int lat = hp->latent_dim, G = c->G;
    CU_ASSERT_TRUE_FATAL(c->nq <= hp->n_codebooks);
    const int64_t T = flexicodec_expanded_len(c->len, G);
    CU_ASSERT_TRUE_FATAL(T > 0);
    float *sem = xmalloc(sizeof(float) * (size_t)G * lat), *ac = xmalloc(sizeof(float) * G * lat);
    size_t ns = flexicodec_semantic_scratch(hp, G);
    if (flexicodec_rvq_scratch(hp, G) > ns) ns = flexicodec_rvq_scratch(hp, G);
    float *s = xmalloc(sizeof(float) * ns);
    float *x = xmalloc(sizeof(float) * (size_t)T * lat);
    CU_ASSERT_EQUAL_FATAL(flexicodec_semantic_decode(&g_cpu, w, c->fsq, G, sem, s), SOTTO_OK);
    CU_ASSERT_EQUAL_FATAL(flexicodec_rvq_decode(&g_cpu, w, c->rvq, G, c->nq, c->nq, ac, s),
                          SOTTO_OK);
    for (int64_t i = 0; i < (int64_t)G * lat; i++)
        sem[i] += ac[i];
    CU_ASSERT_EQUAL_FATAL(flexicodec_expand(sem, G, lat, c->len, x), T);
    free(sem);
    free(ac);
    free(s);
    *T_out = T;
    return x;
}

/* The CPU forward of the stages the GPU runs: transformer, then DAC decoder. */
static float *cpu_forward(const flexicodec_model *fm, const float *x_in, int64_t T, int64_t *n)
{
    const flexicodec_hparams *hp = &fm->w.hp;
    const size_t lat = (size_t)hp->latent_dim;
    size_t ns = flexicodec_bottleneck_scratch_size(&fm->bt, T);
    if (flexicodec_dac_scratch(hp, T) > ns) ns = flexicodec_dac_scratch(hp, T);
    float *s = xmalloc(sizeof(float) * ns), *x = xmalloc(sizeof(float) * (size_t)T * lat);
    memcpy(x, x_in, sizeof(float) * (size_t)T * lat);
    *n = flexicodec_dac_out_len(hp, T);
    float *y = xmalloc(sizeof(float) * (size_t)*n);
    CU_ASSERT_EQUAL_FATAL(flexicodec_bottleneck_forward(&g_cpu, &fm->bt, x, T, x, s), SOTTO_OK);
    CU_ASSERT_EQUAL_FATAL(flexicodec_dac_decode(&g_cpu, &fm->w, x, T, y, s), *n);
    free(s);
    free(x);
    return y;
}

/* The public decoder's flush of every group with all stages. */
static float *decoder_flush(const sotto_model *m, const codes *c, int64_t *n)
{
    sotto_decoder *d = NULL;
    sotto_status st;
    int rc = sotto_decoder_create(m, NULL, &d, &st);
    if (rc) fprintf(stderr, "decoder: %s\n", st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    rc = sotto_decoder_push(d, c->len, c->fsq, c->rvq, c->G, c->nq);
    if (rc) fprintf(stderr, "push: %s\n", sotto_decoder_last_error(d));
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    const size_t cap = sotto_decoder_output_samples(d);
    float *y = xmalloc(sizeof(float) * cap);
    const int got = sotto_decoder_flush(d, y, cap);
    if (got < 0) fprintf(stderr, "flush: %s\n", sotto_decoder_last_error(d));
    *n = got;
    sotto_decoder_free(d);
    return y;
}

static flexicodec_cuda *gpu_create(const flexicodec_model *fm, int max_frames)
{
    flexicodec_cuda *c = NULL;
    sotto_status st;
    int rc = flexicodec_cuda_create(&fm->w, &fm->bt, 0, max_frames, &c, &st);
    if (rc) fprintf(stderr, "flexicodec_cuda_create: %s\n", st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    return c;
}

/* The GPU forward of T frames into a fresh buffer; *n gets the count (or the error). */
static float *gpu_forward(flexicodec_cuda *c, const float *x, int64_t T, int64_t *n)
{
    const int64_t len = flexicodec_cuda_output_length(c, T);
    CU_ASSERT_TRUE_FATAL(len > 0);
    float *y = xmalloc(sizeof(float) * (size_t)len);
    *n = flexicodec_cuda_decode(c, x, (int)T, y, len);
    if (*n < 0) fprintf(stderr, "flexicodec_cuda_decode: %s\n", flexicodec_cuda_last_error(c));
    return y;
}

/* GPU vs CPU on the whole latent, then on its first T/2 + 1 frames on the same context. */
static void compare(const flexicodec_model *fm, flexicodec_cuda *c, const float *x, int64_t T,
                    const char *what)
{
    const int64_t lengths[2] = {T, T / 2 + 1};
    for (int i = 0; i < 2; i++) {
        int64_t n_cpu, n_gpu;
        float *want = cpu_forward(fm, x, lengths[i], &n_cpu);
        float *got = gpu_forward(c, x, lengths[i], &n_gpu);
        CU_ASSERT_EQUAL(n_gpu, n_cpu);
        CU_ASSERT_EQUAL(n_gpu, flexicodec_dac_out_len(&fm->w.hp, lengths[i]));
        char label[160];
        snprintf(label, sizeof label, "%s, %lld frames: GPU vs CPU", what, (long long)lengths[i]);
        if (n_gpu == n_cpu) TU_ASSERT_CLOSE(label, got, want, n_cpu, MAX_ABS_F32, NMSE_F32);
        free(want);
        free(got);
    }
}

static void run_fixture(const fixture *f, int check_decoder)
{
    sotto_model *m = load(f->model);
    const flexicodec_model *fm = flexicodec_model_get(m);
    codes cd;
    codes_open(&cd, f);
    int64_t T;
    float *x = latent(fm, &cd, &T);
    printf("  %s: %d groups, %lld frames, %d transformer layers\n", f->model, cd.G, (long long)T,
           fm->bt.cfg.n_layers);

    if (check_decoder) {
        /* the reference is what the CPU decoder itself outputs for these codes */
        int64_t n_ref, n_dec;
        float *ref = cpu_forward(fm, x, T, &n_ref);
        float *dec = decoder_flush(m, &cd, &n_dec);
        CU_ASSERT_EQUAL(n_dec, n_ref);
        if (n_dec == n_ref)
            TU_ASSERT_CLOSE("CPU reference vs the decoder's flush", ref, dec, n_ref,
                            MAX_ABS_DECODER, -1);
        free(ref);
        free(dec);
    }

    flexicodec_cuda *c = gpu_create(fm, (int)T);
    compare(fm, c, x, T, f->model);

    /* argument errors leave the context working */
    const int64_t len = flexicodec_cuda_output_length(c, T);
    CU_ASSERT_EQUAL(len, flexicodec_dac_out_len(&fm->w.hp, T));
    CU_ASSERT_EQUAL(flexicodec_cuda_output_length(c, 0), 0);
    float *y = xmalloc(sizeof(float) * (size_t)len);
    CU_ASSERT_EQUAL(flexicodec_cuda_decode(c, x, (int)T + 1, y, len), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(flexicodec_cuda_decode(c, x, 0, y, len), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(flexicodec_cuda_decode(c, NULL, (int)T, y, len), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(flexicodec_cuda_decode(c, x, (int)T, y, len - 1), SOTTO_ERR_BUFFER_TOO_SMALL);
    const float keep = x[5];
    x[5] = NAN;
    CU_ASSERT_EQUAL(flexicodec_cuda_decode(c, x, (int)T, y, len), SOTTO_ERR_INVALID_ARG);
    x[5] = keep;
    CU_ASSERT_EQUAL(flexicodec_cuda_decode(c, x, (int)T, y, len), len);
    free(y);

    flexicodec_cuda_free(c);
    free(x);
    sotto_gguf_close(cd.g);
    sotto_model_free(m);
}

static void test_decode_small(void)
{
    run_fixture(&DECODE_SMALL, 1);
}

static void test_small(void)
{
    run_fixture(&SMALL, 0);
}

static void test_small_f16(void)
{
    run_fixture(&SMALL_F16, 0);
}

/* The binary16 layout of the same f16 file: the GPU output against the CPU's f32 arithmetic
 * on the f16 panels (both are the same f32 weight values once widened). */
static void test_small_f16_h16(void)
{
    sotto_model *m16 = load(SMALL_F16.model), *mh = load(SMALL_F16.model);
    const flexicodec_model *f16 = flexicodec_model_get(m16);
    flexicodec_model *fh = mh->arch_data;
    sotto_status st;
    CU_ASSERT_EQUAL_FATAL(flexicodec_decoder_weights_use_h16(&fh->w, mh->gguf, &st), SOTTO_OK);
    CU_ASSERT_EQUAL_FATAL(fh->w.h16, 1);
    CU_ASSERT_EQUAL_FATAL(flexicodec_bottleneck_use_h16(&fh->bt, &st), SOTTO_OK);
    CU_ASSERT_PTR_NOT_NULL(fh->w.blocks[0].up.h16);
    CU_ASSERT_PTR_NOT_NULL(fh->w.dac_in.h16);
    if (fh->bt.cfg.n_layers > 0) CU_ASSERT_PTR_NOT_NULL(fh->bt.layers[0].qkv.h16);

    codes cd;
    codes_open(&cd, &SMALL_F16);
    int64_t T, n_cpu, n_gpu;
    float *x = latent(f16, &cd, &T);
    float *want = cpu_forward(f16, x, T, &n_cpu);
    flexicodec_cuda *c = gpu_create(fh, (int)T);
    float *got = gpu_forward(c, x, T, &n_gpu);
    CU_ASSERT_EQUAL(n_gpu, n_cpu);
    if (n_gpu == n_cpu)
        TU_ASSERT_CLOSE("small-f16, binary16 layout: GPU vs CPU (f32 arithmetic)", got, want, n_cpu,
                        MAX_ABS_F32, NMSE_F32);
    flexicodec_cuda_free(c);
    free(want);
    free(got);
    free(x);
    sotto_gguf_close(cd.g);
    sotto_model_free(m16);
    sotto_model_free(mh);
}

/* ---- codes in ---------------------------------------------------------------------------- */

/* A schedule of the fixture's groups as the decoder receives them: [start, end) with `stages`
 * RVQ stages each, or concealed (stages < 0, lengths known). */
typedef struct span {
    int start, end, stages;
} span;

/* The device's view of the codes after that schedule, as codec.c stores them. */
typedef struct codes_in {
    int32_t *fsq, *nst;
    flexicodec_cuda_codes in;
} codes_in;

static void codes_in_make(codes_in *ci, const codes *c, const span *sp, int n_sp)
{
    ci->fsq = xmalloc(sizeof(int32_t) * (size_t)c->G);
    ci->nst = xmalloc(sizeof(int32_t) * (size_t)c->G);
    for (int k = 0; k < n_sp; k++)
        for (int g = sp[k].start; g < sp[k].end; g++) {
            ci->fsq[g] = sp[k].stages < 0 ? 0 : c->fsq[g];
            ci->nst[g] = sp[k].stages < 0 ? -1 : sp[k].stages;
        }
    ci->in = (flexicodec_cuda_codes){.n_groups = c->G,
                                     .lengths = c->len,
                                     .fsq = ci->fsq,
                                     .rvq = c->rvq,
                                     .ldr = c->nq,
                                     .n_stages = ci->nst};
}

static void codes_in_free(codes_in *ci)
{
    free(ci->fsq);
    free(ci->nst);
}

/* The CPU decoder's flush of the schedule (pushes and concealment through the public API). */
static float *decoder_flush_spans(const sotto_model *m, const codes *c, const span *sp, int n_sp,
                                  int64_t *n)
{
    sotto_decoder *d = NULL;
    sotto_status st;
    CU_ASSERT_EQUAL_FATAL(sotto_decoder_create(m, NULL, &d, &st), SOTTO_OK);
    CU_ASSERT_EQUAL_FATAL(sotto_model_backend(m), SOTTO_BACKEND_CPU);
    int32_t *rvq = xmalloc(sizeof(int32_t) * (size_t)c->G * (size_t)c->nq);
    for (int k = 0; k < n_sp; k++) {
        const int g = sp[k].start, G = sp[k].end - g, S = sp[k].stages;
        int rc;
        /* a push's codes are rows of its own stage count */
        for (int i = 0; i < G; i++)
            for (int q = 0; q < S; q++)
                rvq[i * S + q] = c->rvq[(int64_t)(g + i) * c->nq + q];
        if (S < 0)
            rc = sotto_decoder_conceal(d, G, c->len + g);
        else
            rc = sotto_decoder_push(d, c->len + g, c->fsq + g, rvq, G, S);
        if (rc) fprintf(stderr, "push: %s\n", sotto_decoder_last_error(d));
        CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    }
    free(rvq);
    const size_t cap = sotto_decoder_output_samples(d);
    float *y = xmalloc(sizeof(float) * cap);
    const int got = sotto_decoder_flush(d, y, cap);
    if (got < 0) fprintf(stderr, "flush: %s\n", sotto_decoder_last_error(d));
    *n = got;
    sotto_decoder_free(d);
    return y;
}

/* decode_codes of ci into a fresh buffer; *n gets the count (or the error). */
static float *gpu_codes(flexicodec_cuda *c, const codes_in *ci, int64_t T, int64_t *n)
{
    const int64_t len = flexicodec_cuda_output_length(c, T);
    float *y = xmalloc(sizeof(float) * (size_t)len);
    *n = flexicodec_cuda_decode_codes(c, &ci->in, y, len);
    if (*n < 0) fprintf(stderr, "decode_codes: %s\n", flexicodec_cuda_last_error(c));
    return y;
}

/* One schedule on the device against the CPU decoder. */
static void codes_case(const sotto_model *m, flexicodec_cuda *c, const codes *cd, int64_t T,
                       const span *sp, int n_sp, const char *what)
{
    int64_t n_cpu, n_gpu;
    float *want = decoder_flush_spans(m, cd, sp, n_sp, &n_cpu);
    codes_in ci;
    codes_in_make(&ci, cd, sp, n_sp);
    float *got = gpu_codes(c, &ci, T, &n_gpu);
    CU_ASSERT_EQUAL(n_gpu, n_cpu);
    char label[200];
    snprintf(label, sizeof label, "codes in, %s: GPU vs the CPU decoder", what);
    if (n_gpu == n_cpu && n_cpu > 0)
        TU_ASSERT_CLOSE(label, got, want, n_cpu, MAX_ABS_F32, NMSE_F32);
    codes_in_free(&ci);
    free(want);
    free(got);
}

static void run_codes(const fixture *f)
{
    sotto_model *m = load(f->model);
    const flexicodec_model *fm = flexicodec_model_get(m);
    const flexicodec_hparams *hp = &fm->w.hp;
    codes cd;
    codes_open(&cd, f);
    const int G = cd.G, nq = cd.nq;
    CU_ASSERT_TRUE_FATAL(G >= 6 && nq >= 1);
    const int64_t T = flexicodec_expanded_len(cd.len, G);
    printf("  %s: %d groups, %lld frames, %d of %d stages sent\n", f->model, G, (long long)T, nq,
           hp->n_codebooks);
    flexicodec_cuda *c = gpu_create(fm, (int)T);
    sotto_status st;
    /* not enabled yet: refused, the context keeps working */
    codes_in ci;
    const span all[] = {{0, G, nq}};
    codes_in_make(&ci, &cd, all, 1);
    float *y = xmalloc(sizeof(float) * (size_t)flexicodec_cuda_output_length(c, T));
    const int64_t len = flexicodec_cuda_output_length(c, T);
    CU_ASSERT_EQUAL(flexicodec_cuda_decode_codes(c, &ci.in, y, len), SOTTO_ERR_STATE);
    CU_ASSERT_EQUAL(flexicodec_cuda_enable_codes(c, G, hp->n_codebooks + 1, (int)T, &st),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL_FATAL(flexicodec_cuda_enable_codes(c, G, nq, (int)T, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(flexicodec_cuda_enable_codes(c, G, nq, (int)T, &st), SOTTO_ERR_STATE);

    const span none[] = {{0, G, 0}};
    const span mixed[] = {{0, G / 3, nq},
                          {G / 3, G / 2, 1},
                          {G / 2, 2 * G / 3, -1},
                          {2 * G / 3, 5 * G / 6, 0},
                          {5 * G / 6, G, nq}};
    const span lost_edges[] = {{0, 2, -1}, {2, G - 2, nq}, {G - 2, G, -1}};
    codes_case(m, c, &cd, T, none, 1, "no RVQ stage");
    codes_case(m, c, &cd, T, all, 1, "all stages");
    codes_case(m, c, &cd, T, mixed, 5, "all, 1, concealed, 0, all stages");
    codes_case(m, c, &cd, T, lost_edges, 3, "concealed at both ends");

    /* a segmented latent: one whole window equals the one-pass decode (same kernels, then a
     * device copy); a shifted window equals the CPU forward of those latent frames */
    int64_t n1, n2;
    float *one = gpu_codes(c, &ci, T, &n1);
    CU_ASSERT_EQUAL(flexicodec_cuda_latent_from_codes(c, &ci.in), T);
    CU_ASSERT_EQUAL(flexicodec_cuda_decode_window(c, 0, (int)T, y, len), n1);
    if (n1 == len) {
        TU_ASSERT_CLOSE("codes in, segmented latent, whole window vs one pass", y, one, len,
                        MAX_ABS_GRAPH, -1);
        printf("  (%s)\n",
               memcmp(y, one, sizeof(float) * (size_t)len) ? "NOT bit-identical" : "bit-identical");
    }
    int64_t Tx;
    float *x = latent(fm, &cd, &Tx);
    const int w0 = 3, wT = (int)T - 5;
    float *want = cpu_forward(fm, x + (size_t)w0 * hp->latent_dim, wT, &n2);
    CU_ASSERT_EQUAL(flexicodec_cuda_decode_window(c, w0, wT, y, len), n2);
    TU_ASSERT_CLOSE("codes in, segmented latent, frames [3, T - 2) vs CPU", y, want, n2,
                    MAX_ABS_F32, NMSE_F32);
    CU_ASSERT_EQUAL(flexicodec_cuda_decode_window(c, w0, (int)T, y, len), SOTTO_ERR_INVALID_ARG);

    /* argument errors leave the context working */
    ci.fsq[1] = hp->fsq_size;
    CU_ASSERT_EQUAL(flexicodec_cuda_decode_codes(c, &ci.in, y, len), SOTTO_ERR_INVALID_ARG);
    ci.fsq[1] = cd.fsq[1];
    ci.nst[2] = nq + 1;
    CU_ASSERT_EQUAL(flexicodec_cuda_decode_codes(c, &ci.in, y, len), SOTTO_ERR_INVALID_ARG);
    ci.nst[2] = nq;
    ci.in.n_groups = G + 1;
    CU_ASSERT_EQUAL(flexicodec_cuda_decode_codes(c, &ci.in, y, len), SOTTO_ERR_INVALID_ARG);
    ci.in.n_groups = G;
    CU_ASSERT_EQUAL(flexicodec_cuda_decode_codes(c, &ci.in, y, len - 1),
                    SOTTO_ERR_BUFFER_TOO_SMALL);
    CU_ASSERT_EQUAL(flexicodec_cuda_decode_codes(c, NULL, y, len), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(flexicodec_cuda_decode_codes(c, &ci.in, y, len), len);
    TU_ASSERT_CLOSE("codes in, after the errors", y, one, len, MAX_ABS_GRAPH, -1);
    /* a one-pass decode keeps no utterance latent for windows */
    CU_ASSERT_EQUAL(flexicodec_cuda_decode_window(c, 0, (int)T, y, len), SOTTO_ERR_INVALID_ARG);

    flexicodec_cuda_free(c);
    codes_in_free(&ci);
    free(one);
    free(want);
    free(x);
    free(y);
    sotto_gguf_close(cd.g);
    sotto_model_free(m);
}

static void test_codes_decode_small(void)
{
    run_codes(&DECODE_SMALL);
}

static void test_codes_small(void)
{
    run_codes(&SMALL);
}

static void test_codes_small_f16(void)
{
    run_codes(&SMALL_F16);
}

/* decode_codes with graphs on against the direct run of the same codes. */
static void codes_graph_call(flexicodec_cuda *c, const codes_in *ci, int64_t T, const float *want,
                             int64_t n, int64_t captures, int64_t launches, const char *what)
{
    int64_t got_n;
    float *got = gpu_codes(c, ci, T, &got_n);
    CU_ASSERT_EQUAL(got_n, n);
    char label[160];
    snprintf(label, sizeof label, "codes in, %s: against the direct run", what);
    if (got_n == n) {
        TU_ASSERT_CLOSE(label, got, want, n, MAX_ABS_GRAPH, -1);
        printf("  (%s: %s)\n", label,
               memcmp(got, want, sizeof(float) * (size_t)n) ? "NOT bit-identical"
                                                            : "bit-identical");
    }
    CU_ASSERT_EQUAL(flexicodec_cuda_graph_captures(c), captures);
    CU_ASSERT_EQUAL(flexicodec_cuda_graph_launches(c), launches);
    free(got);
}

static void test_codes_graphs(void)
{
    sotto_model *m = load(DECODE_SMALL.model);
    const flexicodec_model *fm = flexicodec_model_get(m);
    codes cd;
    codes_open(&cd, &DECODE_SMALL);
    const int G = cd.G, nq = cd.nq;
    const int64_t T = flexicodec_expanded_len(cd.len, G);
    flexicodec_cuda *c = gpu_create(fm, (int)T);
    sotto_status st;
    CU_ASSERT_EQUAL_FATAL(flexicodec_cuda_enable_codes(c, G, nq, (int)T, &st), SOTTO_OK);
    /* a: the mixed schedule; b: the same shape (G, T, stages) with other indices and codes;
     * s: one stage fewer everywhere, another key */
    const span mixed[] = {{0, G / 2, nq}, {G / 2, 2 * G / 3, -1}, {2 * G / 3, G, 1}};
    const span fewer[] = {{0, G / 2, nq - 1}, {G / 2, 2 * G / 3, -1}, {2 * G / 3, G, 1}};
    codes_in a, b, s;
    codes_in_make(&a, &cd, mixed, 3);
    codes_in_make(&b, &cd, mixed, 3);
    codes_in_make(&s, &cd, nq > 1 ? fewer : mixed, 3);
    const flexicodec_hparams *hp = &fm->w.hp;
    int32_t *rvq_b = xmalloc(sizeof(int32_t) * (size_t)G * nq);
    for (int g = 0; g < G; g++) {
        if (b.fsq[g] || b.nst[g] >= 0) b.fsq[g] = (cd.fsq[G - 1 - g] + 7 * g) % hp->fsq_size;
        for (int q = 0; q < nq; q++)
            rvq_b[g * nq + q] = (cd.rvq[g * nq + q] + 3 * g + q) % hp->codebook_size;
    }
    b.in.rvq = rvq_b;
    int64_t na, nb, ns;
    float *wa = gpu_codes(c, &a, T, &na), *wb = gpu_codes(c, &b, T, &nb);
    float *ws = gpu_codes(c, &s, T, &ns);
    CU_ASSERT_TRUE_FATAL(na > 0 && nb == na && ns == na);
    CU_ASSERT_TRUE(memcmp(wa, wb, sizeof(float) * (size_t)na) != 0);
    CU_ASSERT_EQUAL(flexicodec_cuda_set_graphs(c, 1), SOTTO_OK);
    codes_graph_call(c, &a, T, wa, na, 0, 0, "1st call, direct");
    codes_graph_call(c, &a, T, wa, na, 1, 1, "2nd call, captured");
    codes_graph_call(c, &b, T, wb, nb, 1, 2, "replay, other codes of the same shape");
    codes_graph_call(c, &a, T, wa, na, 1, 3, "replay");
    if (nq > 1) {
        codes_graph_call(c, &s, T, ws, ns, 1, 3, "fewer stages: another key, direct");
        codes_graph_call(c, &s, T, ws, ns, 2, 4, "fewer stages, captured");
        codes_graph_call(c, &b, T, wb, nb, 2, 5, "first key, replay");
    }
    flexicodec_cuda_free(c);
    codes_in_free(&a);
    codes_in_free(&b);
    codes_in_free(&s);
    free(rvq_b);
    free(wa);
    free(wb);
    free(ws);
    sotto_gguf_close(cd.g);
    sotto_model_free(m);
}

/* One decode of x's first T frames with graphs on, against want (the direct run of the same
 * input), then the capture and replay counts after it. */
static void graph_call(flexicodec_cuda *c, const float *x, int T, const float *want, int64_t n,
                       int64_t captures, int64_t launches, const char *what)
{
    int64_t got_n;
    float *got = gpu_forward(c, x, T, &got_n);
    CU_ASSERT_EQUAL(got_n, n);
    char label[160];
    snprintf(label, sizeof label, "%s (T %d): against the direct run", what, T);
    if (got_n == n) {
        TU_ASSERT_CLOSE(label, got, want, n, MAX_ABS_GRAPH, -1);
        const int same = !memcmp(got, want, sizeof(float) * (size_t)n);
        printf("  (%s: %s)\n", label, same ? "bit-identical" : "NOT bit-identical");
    }
    CU_ASSERT_EQUAL(flexicodec_cuda_graph_captures(c), captures);
    CU_ASSERT_EQUAL(flexicodec_cuda_graph_launches(c), launches);
    if (flexicodec_cuda_graph_captures(c) != captures ||
        flexicodec_cuda_graph_launches(c) != launches)
        fprintf(stderr, "%s: %lld captures, %lld replays; expected %lld, %lld\n", label,
                (long long)flexicodec_cuda_graph_captures(c),
                (long long)flexicodec_cuda_graph_launches(c), (long long)captures,
                (long long)launches);
    free(got);
}

static void test_graphs(void)
{
    sotto_model *m = load(DECODE_SMALL.model);
    const flexicodec_model *fm = flexicodec_model_get(m);
    codes cd;
    codes_open(&cd, &DECODE_SMALL);
    int64_t T64;
    float *x = latent(fm, &cd, &T64);
    CU_ASSERT_TRUE_FATAL(T64 > GRAPH_SIZES);
    const int T = (int)T64, lat = fm->w.hp.latent_dim;
    /* x2: other latent values, for a replay on new input */
    float *x2 = xmalloc(sizeof(float) * (size_t)T * lat);
    for (int64_t i = 0; i < (int64_t)T * lat; i++)
        x2[i] = 0.5f * x[(int64_t)T * lat - 1 - i];

    flexicodec_cuda *c = gpu_create(fm, T);
    CU_ASSERT_EQUAL(flexicodec_cuda_graphs(c), 0); /* off in a new context */

    /* the direct runs: frame counts T, T − 1, ..., and x2 at T */
    int sz[GRAPH_SIZES];
    float *want[GRAPH_SIZES], *want2;
    int64_t n[GRAPH_SIZES], n2;
    for (int k = 0; k < GRAPH_SIZES; k++) {
        sz[k] = T - k;
        want[k] = gpu_forward(c, x, sz[k], &n[k]);
        CU_ASSERT_EQUAL_FATAL(n[k], flexicodec_dac_out_len(&fm->w.hp, sz[k]));
    }
    want2 = gpu_forward(c, x2, T, &n2);
    CU_ASSERT_EQUAL_FATAL(n2, n[0]);
    CU_ASSERT_EQUAL(flexicodec_cuda_graph_captures(c), 0);
    CU_ASSERT_EQUAL(flexicodec_cuda_graph_launches(c), 0);

    CU_ASSERT_EQUAL(flexicodec_cuda_set_graphs(c, 1), SOTTO_OK);
    CU_ASSERT_EQUAL(flexicodec_cuda_graphs(c), 1);
    /* a count's first call runs directly, its second captures and replays, later ones replay,
     * also on other input (the graph reads the latent buffer, not the captured values) */
    graph_call(c, x, sz[0], want[0], n[0], 0, 0, "1st call, direct");
    graph_call(c, x, sz[0], want[0], n[0], 1, 1, "2nd call, captured");
    graph_call(c, x2, sz[0], want2, n2, 1, 2, "3rd call, replay, new input");
    graph_call(c, x, sz[0], want[0], n[0], 1, 3, "4th call, replay");
    /* a second count gets its own graph; the first stays */
    graph_call(c, x, sz[1], want[1], n[1], 1, 3, "2nd count, direct");
    graph_call(c, x, sz[1], want[1], n[1], 2, 4, "2nd count, captured");
    graph_call(c, x2, sz[0], want2, n2, 2, 5, "1st count again, replay");
    /* four counts fill the graphs */
    graph_call(c, x, sz[2], want[2], n[2], 2, 5, "3rd count, direct");
    graph_call(c, x, sz[2], want[2], n[2], 3, 6, "3rd count, captured");
    graph_call(c, x, sz[3], want[3], n[3], 3, 6, "4th count, direct");
    graph_call(c, x, sz[3], want[3], n[3], 4, 7, "4th count, captured");
    /* replays now in the order sz[1], sz[0], sz[2], sz[3]: sz[1] is the least recently used
     * and a fifth count replaces it */
    graph_call(c, x, sz[4], want[4], n[4], 4, 7, "5th count, direct");
    graph_call(c, x, sz[4], want[4], n[4], 5, 8, "5th count, captured in place of the LRU");
    graph_call(c, x, sz[0], want[0], n[0], 5, 9, "1st count, kept");
    graph_call(c, x, sz[2], want[2], n[2], 5, 10, "3rd count, kept");
    graph_call(c, x, sz[3], want[3], n[3], 5, 11, "4th count, kept");
    graph_call(c, x, sz[4], want[4], n[4], 5, 12, "5th count, kept");
    /* the replaced count starts over, and replaces the least recently used, now sz[0] */
    graph_call(c, x, sz[1], want[1], n[1], 5, 12, "2nd count, replaced: direct again");
    graph_call(c, x, sz[1], want[1], n[1], 6, 13, "2nd count, captured again");
    graph_call(c, x, sz[4], want[4], n[4], 6, 14, "5th count, kept");
    graph_call(c, x, sz[0], want[0], n[0], 6, 14, "1st count, replaced: direct again");

    /* argument errors with graphs on leave them working */
    const int64_t len = n[0];
    float *y = xmalloc(sizeof(float) * (size_t)len);
    CU_ASSERT_EQUAL(flexicodec_cuda_decode(c, x, T + 1, y, len), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(flexicodec_cuda_decode(c, x, T, y, len - 1), SOTTO_ERR_BUFFER_TOO_SMALL);
    CU_ASSERT_EQUAL(flexicodec_cuda_decode(c, NULL, T, y, len), SOTTO_ERR_INVALID_ARG);
    free(y);
    graph_call(c, x, sz[2], want[2], n[2], 6, 15, "after argument errors, replay");

    /* graphs off: direct runs, the counts stay; on again: everything starts over */
    CU_ASSERT_EQUAL(flexicodec_cuda_set_graphs(c, 0), SOTTO_OK);
    CU_ASSERT_EQUAL(flexicodec_cuda_graphs(c), 0);
    graph_call(c, x, sz[0], want[0], n[0], 6, 15, "graphs off");
    graph_call(c, x, sz[0], want[0], n[0], 6, 15, "graphs off");
    CU_ASSERT_EQUAL(flexicodec_cuda_set_graphs(c, 7), SOTTO_OK);
    CU_ASSERT_EQUAL(flexicodec_cuda_graphs(c), 1);
    graph_call(c, x, sz[0], want[0], n[0], 6, 15, "on again, direct");
    graph_call(c, x, sz[0], want[0], n[0], 7, 16, "on again, captured");

    CU_ASSERT_EQUAL(flexicodec_cuda_set_graphs(NULL, 1), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(flexicodec_cuda_graphs(NULL), 0);
    CU_ASSERT_EQUAL(flexicodec_cuda_graph_captures(NULL), 0);
    CU_ASSERT_EQUAL(flexicodec_cuda_graph_launches(NULL), 0);

    flexicodec_cuda_free(c); /* with graphs held */
    for (int k = 0; k < GRAPH_SIZES; k++)
        free(want[k]);
    free(want2);
    free(x2);
    free(x);
    sotto_gguf_close(cd.g);
    sotto_model_free(m);
}

static void test_create_errors(void)
{
    sotto_model *m = load(SMALL.model);
    const flexicodec_model *fm = flexicodec_model_get(m);
    flexicodec_cuda *c = NULL;
    sotto_status st;
    CU_ASSERT_EQUAL(flexicodec_cuda_create(&fm->w, &fm->bt, 0, 0, &c, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(flexicodec_cuda_create(NULL, &fm->bt, 0, 8, &c, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(flexicodec_cuda_create(&fm->w, &fm->bt, -1, 8, &c, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(flexicodec_cuda_create(&fm->w, &fm->bt, 1 << 20, 8, &c, &st), SOTTO_ERR_DEVICE);
    printf("  (%s)\n", st.message);
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_EQUAL(flexicodec_cuda_create(&fm->w, &fm->bt, 0, 8, NULL, &st),
                    SOTTO_ERR_INVALID_ARG);
    flexicodec_cuda_free(NULL);
    sotto_model_free(m);
}

#endif /* SOTTO_HAVE_CUDA */

int main(void)
{
#ifndef SOTTO_HAVE_CUDA
    printf("SKIP: Sotto built without the CUDA backend\n");
    return TU_SKIP;
#else
    if (sotto_cuda_device_count() == 0) {
        printf("SKIP: no CUDA device\n");
        return TU_SKIP;
    }
    sotto_cpu_init(&g_cpu, sotto_cpu_features(), NULL);
    static const tu_test tests[] = {{"decode_small", test_decode_small},
                                    {"small", test_small},
                                    {"small_f16", test_small_f16},
                                    {"small_f16_h16", test_small_f16_h16},
                                    {"graphs", test_graphs},
                                    {"codes_decode_small", test_codes_decode_small},
                                    {"codes_small", test_codes_small},
                                    {"codes_small_f16", test_codes_small_f16},
                                    {"codes_graphs", test_codes_graphs},
                                    {"create_errors", test_create_errors},
                                    {NULL, NULL}};
    return tu_run_suite("flexicodec_cuda", tests);
#endif
}
