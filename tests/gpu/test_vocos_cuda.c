/*
 * Vocos on the CUDA layer library (vocoder/vocos/vocos_cuda.h) against the CPU vocoder
 * (sotto_vocoder on the model loaded with SOTTO_BACKEND_CPU) on the golden features of
 * tests/data/vocos: mel features for the "center" and "same" ISTFT heads and f32 and f16
 * weights, and the EnCodec features (codebook sums) of encodec-small, an AdaLayerNorm model,
 * at each of its bandwidths:
 *   - offline: the whole sequence and a shorter one on the same context, against the CPU's
 *     offline output (push every frame, then flush), and the argument errors;
 *   - batch: sequences of different lengths (down to 1 and 2 frames) in one call, each against
 *     the GPU offline output of that sequence alone and against the CPU; a batch that fills
 *     the context exactly, and the argument errors;
 *   - streaming: 4-frame pushes, and pushes of varying size, with and without CUDA graphs,
 *     against the CPU vocoder streaming the same chunks (per-push sample counts equal, samples
 *     within tolerance), against the GPU offline output, graph replay against direct runs, a
 *     reset and second run, and the argument and state errors;
 *   - bandwidths (AdaLayerNorm): graphs captured at one bandwidth replayed at the other after
 *     vocos_cuda_set_bandwidth, against the CPU at that bandwidth, and its errors;
 *   - the public vocoder on encodec-small loaded for CUDA: codes pushed in several schedules at
 *     each bandwidth (chosen at creation and by sotto_vocoder_set_bandwidth), and
 *     sotto_vocoder_vocode_batch, against the same calls on the CPU model;
 *   - bf16 weights (vocos_cuda_weights_create with bf16 = 1, and a model loaded with
 *     params.gpu_bf16): offline and 4-frame streaming output against the f32 CPU vocoder, the
 *     stream against the bf16 offline output, and the public vocoder of the bf16 model.
 * Where no device exists, or Sotto was built without its CUDA backend, the test reports SKIP
 * (exit code 77), never a pass.
 *
 * Tolerances (all activations f32, TF32 off on the GPU; NMSE = Σ(got − want)² / Σ want²):
 *   GPU vs CPU, f32 weights (mel and EnCodec alike): max-abs ≤ 1e-4 and NMSE ≤ 1e-8. The
 *     two sides run the same
 *     formulas in different summation orders (cuBLAS vs the CPU GEMM, γ folded into pwconv2
 *     on the GPU, cuFFT vs KissFFT); a wrong index or formula gives NMSE near 1.
 *   GPU vs CPU, f16 weights (mel-small-f16.gguf, default params: binary16 weights widened to
 *     f32 in both GEMMs, no binary16 arithmetic): NMSE ≤ 1e-6.
 *   GPU vs GPU (batch vs single, stream vs offline): the f32 budget above. The packed batch and
 *     the stream's window run the same layers on different row counts, so cuBLAS may pick
 *     other kernels and sum in another order; nothing else differs.
 *   Graph replay vs the same stream run directly: max-abs ≤ 1e-6 (the same kernels on the
 *     same shapes: expected bit-identical; the log says whether it was).
 *   GPU bf16 vs CPU f32: NMSE ≤ 1e-4 (SNR ≥ 40 dB), and NMSE > 1e-8, which f32 products do not
 *     reach, so the bf16 path really ran. Every GEMM input is rounded to 8 significant bits
 *     (2.5e-6 NMSE per product, measured 1e-6 to 5e-6 per layer in test_cuda_ops); through the
 *     embedding, 2·L pointwise layers and the head the output's NMSE measures about 3e-5 on
 *     these models, SNR 45 dB (printed). GPU bf16 stream vs GPU bf16 offline: the f32
 *     budget above (both round the same activations; only the GEMMs' row counts differ).
 * Each comparison prints its max-abs and NMSE, so the log records the achieved error.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda_probe.h"
#include "testutil.h"

#ifdef SOTTO_HAVE_CUDA

#include "core/model.h"
#include "sotto/sotto.h"
#include "sotto/sotto_vocoder.h"
#include "vocoder/vocos/vocos.h"
#include "vocoder/vocos/vocos_cuda.h"

#define MAX_ABS_F32 1e-4
#define NMSE_F32 1e-8
#define NMSE_F16 1e-6
#define MAX_ABS_GRAPH 1e-6
#define NMSE_BF16 1e-4
#define NMSE_BF16_FLOOR 1e-8

/* One model's fixture: the model (on the CPU), its golden features, the bandwidth they are
 * for (AdaLayerNorm models; 0 otherwise), and a longer signal (the golden features tiled) for
 * streaming. */
typedef struct fixture {
    char name[96];
    int bw;
    sotto_model *m;
    const vocos_weights *w;
    float *mel;
    int T, Cin;
    float *longf;
    int T_long;
    double max_abs, nmse; /* GPU vs CPU budget for this model */
} fixture;

/* The model on the given backend. The references load with SOTTO_BACKEND_CPU: under AUTO, a
 * build with a device (or the emulator) would run the "CPU" vocoder on the device too. */
static sotto_model *load_on(const char *rel, sotto_backend_kind backend)
{
    sotto_model *m = NULL;
    sotto_status st;
    sotto_model_params p = sotto_model_default_params();
    p.backend = backend;
    int rc = sotto_model_load_file(tu_data_path(rel), &p, &m, &st);
    if (rc) fprintf(stderr, "load %s: %s\n", rel, st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    CU_ASSERT_FATAL(!strcmp(m->arch, "vocos") && m->arch_data != NULL);
    CU_ASSERT_EQUAL(sotto_model_backend(m), backend);
    return m;
}

static sotto_model *load(const char *rel)
{
    return load_on(rel, SOTTO_BACKEND_CPU);
}

/* feat: the golden tensor of [T][input_channels] features; bw: the bandwidth they go with. */
static void fixture_open(fixture *f, const char *model_rel, const char *golden_rel,
                         const char *feat, int bw, double max_abs, double nmse)
{
    memset(f, 0, sizeof *f);
    if (bw)
        snprintf(f->name, sizeof f->name, "%s bw %d", model_rel, bw);
    else
        snprintf(f->name, sizeof f->name, "%s", model_rel);
    f->bw = bw;
    f->m = load(model_rel);
    f->w = f->m->arch_data;
    sotto_gguf *g = tu_golden_open(golden_rel);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    int64_t shape[4];
    f->mel = tu_golden_f32(g, feat, NULL, shape);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->mel);
    sotto_gguf_close(g);
    f->T = (int)shape[0];
    f->Cin = (int)shape[1];
    CU_ASSERT_EQUAL_FATAL(f->Cin, f->w->hp.input_channels);
    /* At least 160 frames, so a 4-frame stream spends most steps in its steady window. */
    const int reps = (160 + f->T - 1) / f->T + 1;
    f->T_long = reps * f->T - 5;
    f->longf = malloc(sizeof(float) * (size_t)f->T_long * f->Cin);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->longf);
    for (int t = 0; t < f->T_long; t++)
        memcpy(f->longf + (size_t)t * f->Cin, f->mel + (size_t)(t % f->T) * f->Cin,
               sizeof(float) * (size_t)f->Cin);
    f->max_abs = max_abs;
    f->nmse = nmse;
    printf("  (%s: %d golden frames, %d for streaming)\n", f->name, f->T, f->T_long);
}

static void fixture_close(fixture *f)
{
    free(f->mel);
    free(f->longf);
    sotto_model_free(f->m);
}

static vocos_cuda *make_ctx(const fixture *f, int max_frames)
{
    vocos_cuda *c = NULL;
    sotto_status st;
    int rc = vocos_cuda_create(f->w, 0, max_frames, &c, &st);
    if (rc) fprintf(stderr, "vocos_cuda_create: %s\n", st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    CU_ASSERT_EQUAL(vocos_cuda_bandwidth(c), 0);
    if (f->w->hp.adanorm_num_embeddings)
        CU_ASSERT_EQUAL(vocos_cuda_set_bandwidth(c, f->bw), SOTTO_OK);
    return c;
}

/* The CPU vocoder streaming `mel` in pushes of steps[i % n_steps] frames, then flush (one
 * push of everything is the offline output). Per-call counts go to counts (may be NULL;
 * the flush's last). */
static float *cpu_stream(const fixture *f, const float *mel, int T, const int *steps, int n_steps,
                         int64_t *n, int *counts)
{
    sotto_vocoder *v = NULL;
    sotto_status st;
    sotto_vocoder_params vp = sotto_vocoder_default_params();
    vp.bandwidth_id = f->bw;
    int rc = sotto_vocoder_create(f->m, &vp, &v, &st);
    if (rc) fprintf(stderr, "vocoder: %s\n", st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    const size_t cap = sotto_vocoder_max_output_samples(v, T);
    float *y = calloc(cap, sizeof(float));
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    int64_t total = 0;
    int call = 0;
    for (int t = 0; t < T; call++) {
        int k = steps[call % n_steps];
        if (k > T - t) k = T - t;
        int got = sotto_vocoder_push_features(v, mel + (size_t)t * f->Cin, k, y + total,
                                              cap - (size_t)total);
        if (got < 0) fprintf(stderr, "push: %s\n", sotto_vocoder_last_error(v));
        CU_ASSERT_TRUE_FATAL(got >= 0);
        if (counts) counts[call] = got;
        total += got;
        t += k;
    }
    int tail = sotto_vocoder_flush(v, y + total, cap - (size_t)total);
    if (tail < 0) fprintf(stderr, "flush: %s\n", sotto_vocoder_last_error(v));
    CU_ASSERT_TRUE_FATAL(tail >= 0);
    if (counts) counts[call] = tail;
    *n = total + tail;
    sotto_vocoder_free(v);
    return y;
}

static float *cpu_offline(const fixture *f, const float *mel, int T, int64_t *n)
{
    return cpu_stream(f, mel, T, &T, 1, n, NULL);
}

/* The GPU offline forward of T frames into a fresh buffer; *n gets the count (or the error). */
static float *gpu_offline(vocos_cuda *c, const float *mel, int T, int64_t *n)
{
    const int64_t len = vocos_cuda_output_length(c, T);
    float *y = calloc((size_t)(len > 0 ? len : 1), sizeof(float));
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    *n = vocos_cuda_offline(c, mel, T, y, len);
    if (*n < 0) fprintf(stderr, "vocos_cuda_offline: %s\n", vocos_cuda_last_error(c));
    return y;
}

static void check_close(const char *a, const char *b, const fixture *f, const float *got,
                        int64_t n_got, const float *want, int64_t n_want, double max_abs,
                        double nmse)
{
    char what[200];
    snprintf(what, sizeof what, "%s: %s vs %s", f->name, a, b);
    CU_ASSERT_EQUAL(n_got, n_want);
    if (n_got != n_want)
        fprintf(stderr, "%s: %lld vs %lld samples\n", what, (long long)n_got, (long long)n_want);
    else
        TU_ASSERT_CLOSE(what, got, want, n_got, max_abs, nmse);
}

/* ---- offline ------------------------------------------------------------------------------ */

static void offline_case(const fixture *f)
{
    vocos_cuda *c = make_ctx(f, f->T);
    CU_ASSERT_EQUAL(vocos_cuda_max_frames(c), f->T);
    /* The whole sequence, then a shorter one on the same buffers. */
    const int lengths[2] = {f->T, f->T / 2 + 1};
    for (int i = 0; i < 2; i++) {
        int64_t n_cpu, n_gpu;
        float *want = cpu_offline(f, f->mel, lengths[i], &n_cpu);
        float *got = gpu_offline(c, f->mel, lengths[i], &n_gpu);
        char a[64];
        snprintf(a, sizeof a, "GPU offline (%d frames)", lengths[i]);
        check_close(a, "CPU offline", f, got, n_gpu, want, n_cpu, f->max_abs, f->nmse);
        free(want);
        free(got);
    }

    /* Argument errors leave the context working. */
    const int64_t len = vocos_cuda_output_length(c, f->T);
    float *y = calloc((size_t)len, sizeof(float));
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    CU_ASSERT_EQUAL(vocos_cuda_offline(c, f->mel, f->T + 1, y, len), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(vocos_cuda_offline(c, f->mel, 0, y, len), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(vocos_cuda_offline(c, NULL, f->T, y, len), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(vocos_cuda_offline(c, f->mel, f->T, y, len - 1), SOTTO_ERR_BUFFER_TOO_SMALL);
    CU_ASSERT_EQUAL(vocos_cuda_offline(c, f->mel, f->T, y, len), len);
    free(y);
    vocos_cuda_free(c);

    /* The smallest context: one frame (no sample at all with a "center" head). */
    c = make_ctx(f, 1);
    int64_t n_cpu, n_gpu;
    float *want = cpu_offline(f, f->mel, 1, &n_cpu);
    float *got = gpu_offline(c, f->mel, 1, &n_gpu);
    check_close("GPU offline (1 frame, 1-frame context)", "CPU offline", f, got, n_gpu, want, n_cpu,
                f->max_abs, f->nmse);
    free(want);
    free(got);
    vocos_cuda_free(c);
}

/* ---- batch ------------------------------------------------------------------------------- */

#define N_SEQ 6

static void batch_case(const fixture *f)
{
    const int T = f->T;
    /* Different lengths and contents; 1 frame gives no sample with a "center" head. */
    const int start[N_SEQ] = {0, 5, 1, T - 1, 3, 2};
    const int len[N_SEQ] = {T, T / 2, 2, 1, T / 3 + 1, T - 2};
    const float *feat[N_SEQ];
    int frames[N_SEQ];
    int total = 0;
    for (int i = 0; i < N_SEQ; i++) {
        feat[i] = f->mel + (size_t)start[i] * f->Cin;
        frames[i] = len[i];
        total += len[i] + (i ? 3 : 0);
    }
    /* A context the batch fills exactly. */
    vocos_cuda *c = make_ctx(f, total);
    float *out[N_SEQ];
    int64_t cap[N_SEQ], expect = 0;
    for (int i = 0; i < N_SEQ; i++) {
        cap[i] = vocos_cuda_output_length(c, frames[i]);
        out[i] = calloc((size_t)(cap[i] > 0 ? cap[i] : 1), sizeof(float));
        CU_ASSERT_PTR_NOT_NULL_FATAL(out[i]);
        expect += cap[i];
    }
    const int64_t got = vocos_cuda_offline_batch(c, N_SEQ, feat, frames, out, cap);
    if (got < 0) fprintf(stderr, "vocos_cuda_offline_batch: %s\n", vocos_cuda_last_error(c));
    CU_ASSERT_EQUAL(got, expect);
    for (int i = 0; i < N_SEQ && got == expect; i++) {
        int64_t n_single, n_cpu;
        float *single = gpu_offline(c, feat[i], frames[i], &n_single);
        float *cpu = cpu_offline(f, feat[i], frames[i], &n_cpu);
        char a[64];
        snprintf(a, sizeof a, "batch item %d (%d frames)", i, frames[i]);
        check_close(a, "GPU offline alone", f, out[i], cap[i], single, n_single, MAX_ABS_F32,
                    NMSE_F32);
        check_close(a, "CPU offline", f, out[i], cap[i], cpu, n_cpu, f->max_abs, f->nmse);
        free(single);
        free(cpu);
    }

    /* Errors leave the context working. */
    int bad[N_SEQ];
    memcpy(bad, frames, sizeof bad);
    bad[1] += 1; /* one frame beyond the context */
    CU_ASSERT_EQUAL(vocos_cuda_offline_batch(c, N_SEQ, feat, bad, out, cap), SOTTO_ERR_INVALID_ARG);
    bad[1] = 0;
    CU_ASSERT_EQUAL(vocos_cuda_offline_batch(c, N_SEQ, feat, bad, out, cap), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(vocos_cuda_offline_batch(c, 0, feat, frames, out, cap), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(vocos_cuda_offline_batch(c, N_SEQ, NULL, frames, out, cap),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(vocos_cuda_offline_batch(c, N_SEQ, feat, frames, out, NULL),
                    SOTTO_ERR_INVALID_ARG);
    int64_t short_cap[N_SEQ];
    memcpy(short_cap, cap, sizeof short_cap);
    short_cap[0] -= 1;
    CU_ASSERT_EQUAL(vocos_cuda_offline_batch(c, N_SEQ, feat, frames, out, short_cap),
                    SOTTO_ERR_BUFFER_TOO_SMALL);
    float *nan_feat = malloc(sizeof(float) * (size_t)frames[2] * f->Cin);
    CU_ASSERT_PTR_NOT_NULL_FATAL(nan_feat);
    memcpy(nan_feat, feat[2], sizeof(float) * (size_t)frames[2] * f->Cin);
    nan_feat[f->Cin + 1] = NAN;
    const float *feat_nan[N_SEQ];
    memcpy(feat_nan, feat, sizeof feat_nan);
    feat_nan[2] = nan_feat;
    CU_ASSERT_EQUAL(vocos_cuda_offline_batch(c, N_SEQ, feat_nan, frames, out, cap),
                    SOTTO_ERR_BAD_AUDIO);
    free(nan_feat);
    /* Two sequences: fewer gaps than the layout above, on the same context. */
    CU_ASSERT_EQUAL(vocos_cuda_offline_batch(c, 2, feat, frames, out, cap), cap[0] + cap[1]);
    CU_ASSERT_EQUAL(vocos_cuda_offline_batch(c, N_SEQ, feat, frames, out, cap), expect);
    for (int i = 0; i < N_SEQ; i++)
        free(out[i]);
    vocos_cuda_free(c);
}

/* ---- streaming ---------------------------------------------------------------------------- */

/* The GPU stream of `mel` in pushes of steps[i % n_steps] frames, then flush; per-call counts
 * to counts. Returns the concatenated samples. */
static float *gpu_stream(vocos_cuda *c, vocos_cuda_stream *s, const fixture *f, const float *mel,
                         int T, const int *steps, int n_steps, int64_t *n, int *counts)
{
    const int64_t cap = (int64_t)(T + 64) * f->w->hp.hop_length + 4 * f->w->hp.n_fft;
    float *y = calloc((size_t)cap, sizeof(float));
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    int64_t total = 0;
    int call = 0;
    for (int t = 0; t < T; call++) {
        int k = steps[call % n_steps];
        if (k > T - t) k = T - t;
        const int64_t room = vocos_cuda_stream_max_output(s, k);
        CU_ASSERT_FATAL(total + room <= cap);
        int64_t got = vocos_cuda_stream_push(s, mel + (size_t)t * f->Cin, k, y + total, room);
        if (got < 0) fprintf(stderr, "stream push: %s\n", vocos_cuda_last_error(c));
        CU_ASSERT_TRUE_FATAL(got >= 0);
        counts[call] = (int)got;
        total += got;
        t += k;
    }
    CU_ASSERT_EQUAL(vocos_cuda_stream_frames(s), T);
    const int64_t room = vocos_cuda_stream_max_output(s, 0);
    CU_ASSERT_FATAL(total + room <= cap);
    int64_t tail = vocos_cuda_stream_flush(s, y + total, room);
    if (tail < 0) fprintf(stderr, "stream flush: %s\n", vocos_cuda_last_error(c));
    CU_ASSERT_TRUE_FATAL(tail >= 0);
    counts[call] = (int)tail;
    *n = total + tail;
    return y;
}

static vocos_cuda_stream *make_stream(vocos_cuda *c, int max_step, int graph)
{
    vocos_cuda_stream *s = NULL;
    sotto_status st;
    int rc = vocos_cuda_stream_create(c, max_step, graph, &s, &st);
    if (rc) fprintf(stderr, "vocos_cuda_stream_create: %s\n", st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    return s;
}

/* One schedule of push sizes: CPU stream, GPU stream without and with graphs, GPU offline. */
static void stream_schedule(const fixture *f, vocos_cuda *c, const int *steps, int n_steps,
                            int max_step, const char *label)
{
    const int T = f->T_long;
    int *cpu_counts = calloc((size_t)T + 2, sizeof(int));
    int *gpu_counts = calloc((size_t)T + 2, sizeof(int));
    int *graph_counts = calloc((size_t)T + 2, sizeof(int));
    CU_ASSERT_FATAL(cpu_counts && gpu_counts && graph_counts);
    int64_t n_cpu, n_gpu, n_graph, n_off;
    float *cpu = cpu_stream(f, f->longf, T, steps, n_steps, &n_cpu, cpu_counts);
    float *off = gpu_offline(c, f->longf, T, &n_off);

    vocos_cuda_stream *plain = make_stream(c, max_step, 0);
    vocos_cuda_stream *graph = make_stream(c, max_step, 1);
    float *gpu = gpu_stream(c, plain, f, f->longf, T, steps, n_steps, &n_gpu, gpu_counts);
    float *gr = gpu_stream(c, graph, f, f->longf, T, steps, n_steps, &n_graph, graph_counts);

    /* Every call releases what the CPU stream releases for the same frames. */
    int mismatch = -1;
    for (int i = 0; i <= T && mismatch < 0; i++)
        if (gpu_counts[i] != cpu_counts[i] || graph_counts[i] != cpu_counts[i]) mismatch = i;
    if (mismatch >= 0)
        fprintf(stderr, "%s %s: call %d released %d (graph %d) samples, CPU %d\n", f->name, label,
                mismatch, gpu_counts[mismatch], graph_counts[mismatch], cpu_counts[mismatch]);
    CU_ASSERT_EQUAL(mismatch, -1);

    char a[96];
    snprintf(a, sizeof a, "GPU stream %s", label);
    check_close(a, "CPU stream", f, gpu, n_gpu, cpu, n_cpu, f->max_abs, f->nmse);
    check_close(a, "GPU offline", f, gpu, n_gpu, off, n_off, MAX_ABS_F32, NMSE_F32);
    snprintf(a, sizeof a, "GPU stream %s, graph", label);
    check_close(a, "same, direct", f, gr, n_graph, gpu, n_gpu, MAX_ABS_GRAPH, -1.0);
    if (n_graph == n_gpu)
        printf("  (%s %s: graph replay %s the direct run; %lld captures, %lld replays)\n", f->name,
               label,
               memcmp(gr, gpu, sizeof(float) * (size_t)n_gpu) ? "differs from"
                                                              : "is bit-identical to",
               (long long)vocos_cuda_stream_graph_captures(graph),
               (long long)vocos_cuda_stream_graph_launches(graph));
    CU_ASSERT_TRUE(vocos_cuda_stream_graph_captures(graph) >= 1);
    CU_ASSERT_TRUE(vocos_cuda_stream_graph_launches(graph) >=
                   vocos_cuda_stream_graph_captures(graph));
    CU_ASSERT_EQUAL(vocos_cuda_stream_graph_captures(plain), 0);

    /* Reset, then the same signal again: the same samples. With one push size (and the last,
     * shorter push) the graphs are replayed without being captured again; five sizes cycling
     * through four graphs capture again all the time. */
    const int64_t captures = vocos_cuda_stream_graph_captures(graph);
    CU_ASSERT_EQUAL(vocos_cuda_stream_reset(graph), SOTTO_OK);
    int64_t n_again;
    float *again = gpu_stream(c, graph, f, f->longf, T, steps, n_steps, &n_again, graph_counts);
    snprintf(a, sizeof a, "GPU stream %s, graph, after reset", label);
    check_close(a, "first run", f, again, n_again, gr, n_graph, MAX_ABS_GRAPH, -1.0);
    if (n_steps == 1) {
        CU_ASSERT_EQUAL(vocos_cuda_stream_graph_captures(graph), captures);
    } else {
        CU_ASSERT_TRUE(vocos_cuda_stream_graph_captures(graph) > captures);
    }

    vocos_cuda_stream_free(plain);
    vocos_cuda_stream_free(graph);
    free(cpu);
    free(off);
    free(gpu);
    free(gr);
    free(again);
    free(cpu_counts);
    free(gpu_counts);
    free(graph_counts);
}

static void stream_errors(const fixture *f, vocos_cuda *c)
{
    vocos_cuda_stream *s = NULL;
    sotto_status st;
    CU_ASSERT_EQUAL(vocos_cuda_stream_create(c, 0, 1, &s, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(vocos_cuda_stream_create(NULL, 4, 1, &s, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(vocos_cuda_stream_create(c, 4, 1, NULL, &st), SOTTO_ERR_INVALID_ARG);
    /* a window larger than the context, and one that fits exactly */
    CU_ASSERT_EQUAL(vocos_cuda_stream_create(c, vocos_cuda_max_frames(c), 1, &s, &st),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NULL(s);
    const int window = vocos_cuda_stream_window_frames(f->w, 4);
    const vocos_hparams *hp = &f->w->hp;
    CU_ASSERT_EQUAL(window, 4 + 6 * (hp->num_layers + 1) + (hp->n_fft - 1) / hp->hop_length);
    CU_ASSERT_EQUAL(vocos_cuda_stream_window_frames(NULL, 4), 0);
    CU_ASSERT_EQUAL(vocos_cuda_stream_window_frames(f->w, 0), 0);
    vocos_cuda *tight = make_ctx(f, window);
    CU_ASSERT_EQUAL(vocos_cuda_stream_create(tight, 5, 0, &s, &st), SOTTO_ERR_INVALID_ARG);
    s = make_stream(tight, 4, 1);
    vocos_cuda_stream_free(s);
    vocos_cuda_free(tight);
    s = NULL;

    s = make_stream(c, 4, 1);
    const int64_t room = vocos_cuda_stream_max_output(s, 4);
    float *y = calloc((size_t)room + 1, sizeof(float));
    float *nan_feat = malloc(sizeof(float) * 4 * (size_t)f->Cin);
    CU_ASSERT_FATAL(y && nan_feat);
    memcpy(nan_feat, f->longf, sizeof(float) * 4 * (size_t)f->Cin);
    nan_feat[3] = INFINITY;
    CU_ASSERT_EQUAL(vocos_cuda_stream_push(s, f->longf, 5, y, room), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(vocos_cuda_stream_push(s, f->longf, -1, y, room), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(vocos_cuda_stream_push(s, NULL, 4, y, room), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(vocos_cuda_stream_push(s, f->longf, 4, NULL, room), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(vocos_cuda_stream_push(s, nan_feat, 4, y, room), SOTTO_ERR_BAD_AUDIO);
    CU_ASSERT_EQUAL(vocos_cuda_stream_frames(s), 0);
    CU_ASSERT_EQUAL(vocos_cuda_stream_push(s, f->longf, 0, y, room), 0);
    /* Fill until a push releases samples, then refuse one with too little room: nothing is
     * consumed, and the same push with room succeeds. */
    int t = 0;
    int64_t got = 0;
    while (t + 4 <= f->T_long) {
        const int64_t frames = vocos_cuda_stream_frames(s);
        got = vocos_cuda_stream_push(s, f->longf + (size_t)t * f->Cin, 4, y, 0);
        if (got == SOTTO_ERR_BUFFER_TOO_SMALL) {
            CU_ASSERT_EQUAL(vocos_cuda_stream_frames(s), frames);
            got = vocos_cuda_stream_push(s, f->longf + (size_t)t * f->Cin, 4, y, room);
            CU_ASSERT_TRUE(got > 0);
            break;
        }
        CU_ASSERT_EQUAL(got, 0);
        t += 4;
    }
    CU_ASSERT_TRUE(got > 0);
    const int64_t tail_room = vocos_cuda_stream_max_output(s, 0);
    float *tail = calloc((size_t)tail_room, sizeof(float));
    CU_ASSERT_PTR_NOT_NULL_FATAL(tail);
    CU_ASSERT_EQUAL(vocos_cuda_stream_flush(s, tail, 0), SOTTO_ERR_BUFFER_TOO_SMALL);
    CU_ASSERT_TRUE(vocos_cuda_stream_flush(s, tail, tail_room) > 0);
    CU_ASSERT_EQUAL(vocos_cuda_stream_push(s, f->longf, 4, y, room), SOTTO_ERR_STATE);
    CU_ASSERT_EQUAL(vocos_cuda_stream_flush(s, tail, tail_room), SOTTO_ERR_STATE);
    CU_ASSERT_EQUAL(vocos_cuda_stream_reset(s), SOTTO_OK);
    CU_ASSERT_EQUAL(vocos_cuda_stream_push(s, f->longf, 4, y, room), 0);
    /* A stream flushed before it released anything gives the offline output of its frames. */
    CU_ASSERT_EQUAL(vocos_cuda_stream_reset(s), SOTTO_OK);
    int64_t n_off;
    float *off = gpu_offline(c, f->longf, 6, &n_off);
    CU_ASSERT_EQUAL(vocos_cuda_stream_push(s, f->longf, 4, y, room), 0);
    CU_ASSERT_EQUAL(vocos_cuda_stream_push(s, f->longf + 4 * (size_t)f->Cin, 2, y, room), 0);
    const int64_t n_tail = vocos_cuda_stream_flush(s, tail, tail_room);
    check_close("6 frames streamed and flushed", "GPU offline", f, tail, n_tail, off, n_off,
                MAX_ABS_F32, NMSE_F32);
    /* An empty stream flushes to nothing. */
    CU_ASSERT_EQUAL(vocos_cuda_stream_reset(s), SOTTO_OK);
    CU_ASSERT_EQUAL(vocos_cuda_stream_flush(s, tail, tail_room), 0);
    free(off);
    free(tail);
    free(y);
    free(nan_feat);
    vocos_cuda_stream_free(s);
}

static void stream_case(const fixture *f)
{
    vocos_cuda *c = make_ctx(f, f->T_long);
    static const int four[1] = {4};
    stream_schedule(f, c, four, 1, 4, "4-frame pushes");
    /* Sizes that change every call: the graph is captured again for each new size. */
    static const int varying[5] = {1, 4, 7, 3, 8};
    stream_schedule(f, c, varying, 5, 8, "pushes of 1, 4, 7, 3, 8 frames");
    stream_errors(f, c);
    vocos_cuda_free(c);
}

/* ---- the suite ---------------------------------------------------------------------------- */

static void run_model(const char *model_rel, const char *golden_rel, const char *feat, int bw,
                      double max_abs, double nmse)
{
    fixture f;
    fixture_open(&f, model_rel, golden_rel, feat, bw, max_abs, nmse);
    offline_case(&f);
    batch_case(&f);
    stream_case(&f);
    fixture_close(&f);
}

static void test_mel_small(void)
{
    run_model("vocos/mel-small.gguf", "vocos/mel-small_golden.gguf", "mel", 0, MAX_ABS_F32,
              NMSE_F32);
}

static void test_mel_same_1280(void)
{
    run_model("vocos/mel-same-1280.gguf", "vocos/mel-same-1280_golden.gguf", "mel", 0, MAX_ABS_F32,
              NMSE_F32);
}

static void test_mel_small_f16(void)
{
    run_model("vocos/mel-small-f16.gguf", "vocos/mel-small_golden.gguf", "mel", 0, -1.0, NMSE_F16);
}

/* TF32: a graph captured with f32 GEMMs is not replayed once TF32 is allowed (the stream
 * captures again), and the TF32 output stays near the f32 one. */
static void test_tf32_recapture(void)
{
    fixture f;
    fixture_open(&f, "vocos/mel-small.gguf", "vocos/mel-small_golden.gguf", "mel", 0, MAX_ABS_F32,
                 NMSE_F32);
    vocos_cuda *c = make_ctx(&f, f.T_long);
    vocos_cuda_stream *s = make_stream(c, 4, 1);
    static const int four[1] = {4};
    int *counts = calloc((size_t)f.T_long + 2, sizeof(int));
    CU_ASSERT_PTR_NOT_NULL_FATAL(counts);
    int64_t n32, n_tf;
    /* T_long is not a multiple of 4: two graphs, the 4-frame push and the last one. */
    float *y32 = gpu_stream(c, s, &f, f.longf, f.T_long, four, 1, &n32, counts);
    const int64_t captures = vocos_cuda_stream_graph_captures(s);
    CU_ASSERT_EQUAL(captures, f.T_long % 4 ? 2 : 1);
    vocos_cuda_set_tf32(c, 1);
    CU_ASSERT_EQUAL(vocos_cuda_stream_reset(s), SOTTO_OK);
    float *ytf = gpu_stream(c, s, &f, f.longf, f.T_long, four, 1, &n_tf, counts);
    CU_ASSERT_EQUAL(vocos_cuda_stream_graph_captures(s), 2 * captures);
    /* TF32 keeps 10 mantissa bits of each product's inputs: a loose budget, only to catch a
     * replay of the wrong graph or garbage. */
    check_close("GPU stream, TF32", "f32", &f, ytf, n_tf, y32, n32, -1.0, 1e-3);
    vocos_cuda_set_tf32(c, 0);
    free(y32);
    free(ytf);
    free(counts);
    vocos_cuda_stream_free(s);
    vocos_cuda_free(c);
    fixture_close(&f);
}

/* ---- EnCodec features and AdaLayerNorm ---------------------------------------------------- */

#define ENCODEC "vocos/encodec-small.gguf"
#define ENCODEC_GOLDEN "vocos/encodec-small_golden.gguf"

/* Golden tensor name for bandwidth bw: tools/golden/vocos.py writes bandwidth 0's as "bw0.*"
 * and the last bandwidth's (1) unprefixed. */
static void encodec_name(char *buf, size_t size, int bw, const char *what)
{
    snprintf(buf, size, "%s%s", bw == 0 ? "bw0." : "", what);
}

static void encodec_run(int bw)
{
    char feat[32];
    encodec_name(feat, sizeof feat, bw, "features");
    run_model(ENCODEC, ENCODEC_GOLDEN, feat, bw, MAX_ABS_F32, NMSE_F32);
}

static void test_encodec_bw0(void)
{
    encodec_run(0);
}

static void test_encodec_bw1(void)
{
    encodec_run(1);
}

/* The per-call counts of two runs of the same schedule: the index of the first difference, or
 * -1. */
static int first_count_mismatch(const int *a, const int *b, int calls)
{
    for (int i = 0; i < calls; i++)
        if (a[i] != b[i]) return i;
    return -1;
}

/* Graphs do not depend on the bandwidth: a stream's graphs captured at bandwidth 0 are replayed,
 * not captured again, after vocos_cuda_set_bandwidth(1), and give the CPU's bandwidth-1
 * samples; then back to 0. The two bandwidths give clearly different outputs, so a replay that
 * kept the old rows would fail. */
static void test_bandwidth_switch(void)
{
    fixture f[2];
    for (int bw = 0; bw < 2; bw++) {
        char feat[32];
        encodec_name(feat, sizeof feat, bw, "features");
        fixture_open(&f[bw], ENCODEC, ENCODEC_GOLDEN, feat, bw, MAX_ABS_F32, NMSE_F32);
    }
    const vocos_hparams *hp = &f[0].w->hp;
    CU_ASSERT_EQUAL_FATAL(hp->adanorm_num_embeddings, 2);
    CU_ASSERT_EQUAL(hp->n_bandwidths, 2);
    const int T = f[0].T_long < f[1].T_long ? f[0].T_long : f[1].T_long;
    vocos_cuda *c = make_ctx(&f[0], T);
    vocos_cuda_stream *s = make_stream(c, 4, 1);
    static const int four[1] = {4};
    int *gpu_counts = calloc((size_t)T + 2, sizeof(int));
    int *cpu_counts = calloc((size_t)T + 2, sizeof(int));
    CU_ASSERT_FATAL(gpu_counts && cpu_counts);
    const int order[3] = {0, 1, 0};
    int64_t captures = 0;
    for (int k = 0; k < 3; k++) {
        const fixture *fx = &f[order[k]];
        CU_ASSERT_EQUAL(vocos_cuda_set_bandwidth(c, fx->bw), SOTTO_OK);
        CU_ASSERT_EQUAL(vocos_cuda_bandwidth(c), fx->bw);
        CU_ASSERT_EQUAL(vocos_cuda_stream_reset(s), SOTTO_OK);
        int64_t n_gpu, n_cpu;
        float *gpu = gpu_stream(c, s, fx, fx->longf, T, four, 1, &n_gpu, gpu_counts);
        float *cpu = cpu_stream(fx, fx->longf, T, four, 1, &n_cpu, cpu_counts);
        CU_ASSERT_EQUAL(first_count_mismatch(gpu_counts, cpu_counts, (T + 3) / 4 + 1), -1);
        char a[96];
        snprintf(a, sizeof a, "GPU stream, graphs, run %d (bandwidth %d)", k + 1, fx->bw);
        check_close(a, "CPU stream", fx, gpu, n_gpu, cpu, n_cpu, fx->max_abs, fx->nmse);
        if (k == 0)
            captures = vocos_cuda_stream_graph_captures(s);
        else
            CU_ASSERT_EQUAL(vocos_cuda_stream_graph_captures(s), captures);
        free(gpu);
        free(cpu);
    }
    printf("  (%s: 3 signals at bandwidths 0, 1, 0 on one stream: %lld captures, %lld replays)\n",
           ENCODEC, (long long)vocos_cuda_stream_graph_captures(s),
           (long long)vocos_cuda_stream_graph_launches(s));
    CU_ASSERT_TRUE(captures >= 1);

    /* The same features at the two bandwidths differ by far more than the budget. */
    int64_t n0, n1;
    CU_ASSERT_EQUAL(vocos_cuda_set_bandwidth(c, 0), SOTTO_OK);
    float *y0 = gpu_offline(c, f[1].mel, f[1].T, &n0);
    CU_ASSERT_EQUAL(vocos_cuda_set_bandwidth(c, 1), SOTTO_OK);
    float *y1 = gpu_offline(c, f[1].mel, f[1].T, &n1);
    CU_ASSERT_EQUAL_FATAL(n0, n1);
    const tu_diff d = tu_compare(y0, y1, n0);
    printf("  (%s: bandwidth 0 vs 1 on the same features: NMSE %.3g)\n", ENCODEC, d.nmse);
    CU_ASSERT_TRUE(d.nmse > 1e-3);
    free(y0);
    free(y1);

    /* Errors keep the selection and the context working. */
    CU_ASSERT_EQUAL(vocos_cuda_set_bandwidth(c, 2), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(vocos_cuda_set_bandwidth(c, -1), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(vocos_cuda_set_bandwidth(NULL, 0), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(vocos_cuda_bandwidth(c), 1);
    CU_ASSERT_EQUAL(vocos_cuda_bandwidth(NULL), 0);
    sotto_model *mel = load("vocos/mel-small.gguf");
    vocos_cuda *cm = NULL;
    sotto_status st;
    CU_ASSERT_EQUAL_FATAL(vocos_cuda_create(mel->arch_data, 0, 8, &cm, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(vocos_cuda_set_bandwidth(cm, 0), SOTTO_ERR_UNSUPPORTED);
    vocos_cuda_free(cm);
    sotto_model_free(mel);

    free(gpu_counts);
    free(cpu_counts);
    vocos_cuda_stream_free(s);
    vocos_cuda_free(c);
    fixture_close(&f[0]);
    fixture_close(&f[1]);
}

/* ---- the public vocoder on an EnCodec model loaded for CUDA ------------------------------ */

/* Golden codes [n_q][T] (PyTorch layout) as [T'][n_q], tiled to T' ≥ min_T frames. */
static int32_t *golden_codes(const sotto_gguf *g, const char *name, int min_T, int *T_out,
                             int *nq_out)
{
    const sotto_gguf_tensor *t = sotto_gguf_find_tensor(g, name);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    const int nq = (int)t->shape[0], T = (int)t->shape[1];
    const int Tt = (min_T + T - 1) / T * T - 3; /* not a multiple of the pushes below */
    const int32_t *src = t->data;
    int32_t *c = malloc(sizeof(int32_t) * (size_t)Tt * nq);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    for (int i = 0; i < Tt; i++)
        for (int q = 0; q < nq; q++)
            c[(size_t)i * nq + q] = src[(size_t)q * T + i % T];
    *T_out = Tt;
    *nq_out = nq;
    return c;
}

static sotto_vocoder *make_vocoder(sotto_model *m, int bw, int max_chunk, int max_batch)
{
    sotto_vocoder_params vp = sotto_vocoder_default_params();
    vp.bandwidth_id = bw;
    vp.max_chunk_frames = max_chunk;
    vp.max_batch_frames = max_batch;
    sotto_vocoder *v = NULL;
    sotto_status st;
    const int rc = sotto_vocoder_create(m, &vp, &v, &st);
    if (rc) fprintf(stderr, "sotto_vocoder_create: %s\n", st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    return v;
}

/* codes [T][nq] through v from a reset, in pushes of steps[i % n_steps] frames, then flush;
 * per-call counts to counts. */
static float *codes_stream(sotto_vocoder *v, const int32_t *codes, int T, int nq, const int *steps,
                           int n_steps, int64_t *n, int *counts)
{
    CU_ASSERT_EQUAL_FATAL(sotto_vocoder_reset(v), SOTTO_OK);
    CU_ASSERT_EQUAL_FATAL(sotto_vocoder_num_codebooks(v), nq);
    const size_t cap = sotto_vocoder_max_output_samples(v, T);
    float *y = calloc(cap, sizeof(float));
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    int64_t total = 0;
    int call = 0;
    for (int t = 0; t < T; call++) {
        int k = steps[call % n_steps];
        if (k > T - t) k = T - t;
        const int got =
            sotto_vocoder_push_codes(v, codes + (size_t)t * nq, k, y + total, cap - (size_t)total);
        if (got < 0) fprintf(stderr, "push_codes: %s\n", sotto_vocoder_last_error(v));
        CU_ASSERT_TRUE_FATAL(got >= 0);
        counts[call] = got;
        total += got;
        t += k;
    }
    const int tail = sotto_vocoder_flush(v, y + total, cap - (size_t)total);
    if (tail < 0) fprintf(stderr, "flush: %s\n", sotto_vocoder_last_error(v));
    CU_ASSERT_TRUE_FATAL(tail >= 0);
    counts[call] = tail;
    *n = total + tail;
    return y;
}

/* One schedule on a CUDA vocoder and a CPU vocoder: equal counts per call, samples within the
 * f32 budget. */
static void codes_compare(sotto_vocoder *vg, sotto_vocoder *vc, const int32_t *codes, int T, int nq,
                          const int *steps, int n_steps, const char *label)
{
    int *cg = calloc((size_t)T + 2, sizeof(int)), *cc = calloc((size_t)T + 2, sizeof(int));
    CU_ASSERT_FATAL(cg && cc);
    int64_t ng, nc;
    float *yg = codes_stream(vg, codes, T, nq, steps, n_steps, &ng, cg);
    float *yc = codes_stream(vc, codes, T, nq, steps, n_steps, &nc, cc);
    const int bad = first_count_mismatch(cg, cc, T + 1);
    if (bad >= 0)
        fprintf(stderr, "%s: call %d released %d, CPU %d\n", label, bad, cg[bad], cc[bad]);
    CU_ASSERT_EQUAL(bad, -1);
    CU_ASSERT_EQUAL(ng, nc);
    if (ng == nc) TU_ASSERT_CLOSE(label, yg, yc, ng, MAX_ABS_F32, NMSE_F32);
    free(yg);
    free(yc);
    free(cg);
    free(cc);
}

/* Codes pushed to a sotto_vocoder of the model loaded for CUDA (its codebook sums on the host,
 * the frames on the device) against the CPU model: at each bandwidth, chosen through
 * sotto_vocoder_set_bandwidth on one CUDA vocoder and at creation on another, in 8-frame
 * pushes, pushes of 1, 4, 7, 3, 8, and 20-frame pushes (split in 8-frame steps inside). */
static void test_encodec_vocoder_codes(void)
{
    sotto_model *cpu = load(ENCODEC), *gpu = load_on(ENCODEC, SOTTO_BACKEND_CUDA);
    sotto_gguf *g = tu_golden_open(ENCODEC_GOLDEN);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    sotto_vocoder *vg = make_vocoder(gpu, 0, 8, 0);
    static const int eight[1] = {8}, varying[5] = {1, 4, 7, 3, 8}, twenty[1] = {20};
    for (int bw = 0; bw < 2; bw++) {
        char name[32];
        encodec_name(name, sizeof name, bw, "codes");
        int T, nq;
        int32_t *codes = golden_codes(g, name, 120, &T, &nq);
        CU_ASSERT_EQUAL(sotto_vocoder_set_bandwidth(vg, bw), SOTTO_OK);
        sotto_vocoder *vc = make_vocoder(cpu, bw, 8, 0);
        char label[128];
        snprintf(label, sizeof label,
                 "%s bw %d (%d codebooks, %d frames): CUDA vs CPU vocoder, "
                 "8-frame pushes",
                 ENCODEC, bw, nq, T);
        codes_compare(vg, vc, codes, T, nq, eight, 1, label);
        snprintf(label, sizeof label, "%s bw %d: CUDA vs CPU vocoder, pushes of 1, 4, 7, 3, 8",
                 ENCODEC, bw);
        codes_compare(vg, vc, codes, T, nq, varying, 5, label);
        snprintf(label, sizeof label, "%s bw %d: CUDA vs CPU vocoder, 20-frame pushes", ENCODEC,
                 bw);
        codes_compare(vg, vc, codes, T, nq, twenty, 1, label);
        if (bw == 1) {
            /* the bandwidth given at creation reaches the device too */
            sotto_vocoder *vg1 = make_vocoder(gpu, 1, 8, 0);
            snprintf(label, sizeof label,
                     "%s bw 1 from the params: CUDA vs CPU vocoder, pushes of 1, 4, 7, 3, 8",
                     ENCODEC);
            codes_compare(vg1, vc, codes, T, nq, varying, 5, label);
            sotto_vocoder_free(vg1);
        }
        sotto_vocoder_free(vc);
        free(codes);
    }
    CU_ASSERT_EQUAL(sotto_vocoder_set_bandwidth(vg, 2), SOTTO_ERR_INVALID_ARG);
    sotto_vocoder_free(vg);
    sotto_gguf_close(g);
    sotto_model_free(cpu);
    sotto_model_free(gpu);
}

/* sotto_vocoder_vocode_batch on the CUDA model against the CPU model at each bandwidth: items
 * of 1 frame to twice the golden length, grouped into batched forwards of at most 100 frames
 * (the longest item runs alone through the stream). */
static void test_encodec_vocoder_batch(void)
{
    sotto_model *cpu = load(ENCODEC), *gpu = load_on(ENCODEC, SOTTO_BACKEND_CUDA);
    sotto_gguf *g = tu_golden_open(ENCODEC_GOLDEN);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    enum { N = 7 };
    for (int bw = 0; bw < 2; bw++) {
        char name[32];
        encodec_name(name, sizeof name, bw, "features");
        int64_t shape[4];
        float *feat = tu_golden_f32(g, name, NULL, shape);
        CU_ASSERT_PTR_NOT_NULL_FATAL(feat);
        const int T = (int)shape[0], Cin = (int)shape[1];
        float *twice = malloc(sizeof(float) * 2 * (size_t)T * Cin);
        CU_ASSERT_PTR_NOT_NULL_FATAL(twice);
        memcpy(twice, feat, sizeof(float) * (size_t)T * Cin);
        memcpy(twice + (size_t)T * Cin, feat, sizeof(float) * (size_t)T * Cin);
        const int start[N] = {0, 5, 1, T - 1, 3, 2, 0};
        const int len[N] = {T, T / 2, 2, 1, T / 3 + 1, T - 2, 2 * T};
        sotto_vocoder *vg = make_vocoder(gpu, bw, 8, 100), *vc = make_vocoder(cpu, bw, 8, 100);
        CU_ASSERT_FATAL(2 * T > 100);
        sotto_vocoder_item ig[N], ic[N];
        for (int i = 0; i < N; i++) {
            const size_t cap = (size_t)sotto_vocoder_offline_samples(vg, len[i]);
            ig[i] = (sotto_vocoder_item){.frames = twice + (size_t)start[i] * Cin,
                                         .n_frames = len[i],
                                         .out = calloc(cap ? cap : 1, sizeof(float)),
                                         .capacity = cap};
            ic[i] = ig[i];
            ic[i].out = calloc(cap ? cap : 1, sizeof(float));
            CU_ASSERT_FATAL(ig[i].out && ic[i].out);
        }
        const int rg = sotto_vocoder_vocode_batch(vg, ig, N);
        if (rg) fprintf(stderr, "batch: %s\n", sotto_vocoder_last_error(vg));
        CU_ASSERT_EQUAL(rg, SOTTO_OK);
        CU_ASSERT_EQUAL(sotto_vocoder_vocode_batch(vc, ic, N), SOTTO_OK);
        for (int i = 0; i < N; i++) {
            char label[128];
            snprintf(label, sizeof label, "%s bw %d: batch item %d (%d frames), CUDA vs CPU",
                     ENCODEC, bw, i, len[i]);
            CU_ASSERT_EQUAL(ig[i].result, ic[i].result);
            CU_ASSERT_EQUAL(ig[i].result, (int)ig[i].capacity);
            if (ig[i].result == ic[i].result && ig[i].result >= 0)
                TU_ASSERT_CLOSE(label, ig[i].out, ic[i].out, ig[i].result, MAX_ABS_F32, NMSE_F32);
            free(ig[i].out);
            free(ic[i].out);
        }
        sotto_vocoder_free(vg);
        sotto_vocoder_free(vc);
        free(twice);
        free(feat);
    }
    sotto_gguf_close(g);
    sotto_model_free(cpu);
    sotto_model_free(gpu);
}

/* ---- bf16 weights ------------------------------------------------------------------------- */

/* got against the f32 reference want: prints NMSE and SNR, checks NMSE_BF16_FLOOR < NMSE ≤
 * NMSE_BF16. */
static void check_bf16(const char *what, const fixture *f, const float *got, int64_t n_got,
                       const float *want, int64_t n_want)
{
    CU_ASSERT_EQUAL(n_got, n_want);
    if (n_got != n_want || n_got < 1) return;
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < n_got; i++) {
        const double e = (double)got[i] - want[i];
        num += e * e;
        den += (double)want[i] * want[i];
    }
    const double nmse = den > 0.0 ? num / den : num;
    printf("  (%s: %s vs f32 CPU: NMSE %.3g, SNR %.1f dB; budget NMSE %.0e)\n", f->name, what, nmse,
           -10.0 * log10(nmse), NMSE_BF16);
    CU_ASSERT_TRUE(nmse <= NMSE_BF16); /* a NaN fails here too */
    CU_ASSERT_TRUE(nmse > NMSE_BF16_FLOOR);
}

static void bf16_model(const char *model_rel, const char *golden_rel, const char *feat, int bw)
{
    fixture f;
    fixture_open(&f, model_rel, golden_rel, feat, bw, -1.0, NMSE_BF16);
    vocos_cuda_weights *wt = NULL;
    vocos_cuda *c = NULL;
    sotto_status st;
    int rc = vocos_cuda_weights_create(f.w, 0, 1, &wt, &st);
    if (!rc) rc = vocos_cuda_create_shared(wt, f.T_long, &c, &st);
    if (rc) fprintf(stderr, "vocos cuda bf16: %s\n", st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    if (bw) CU_ASSERT_EQUAL(vocos_cuda_set_bandwidth(c, bw), SOTTO_OK);

    /* offline */
    int64_t n_cpu, n_gpu;
    float *want = cpu_offline(&f, f.mel, f.T, &n_cpu);
    float *got = gpu_offline(c, f.mel, f.T, &n_gpu);
    check_bf16("GPU bf16 offline", &f, got, n_gpu, want, n_cpu);
    free(want);
    free(got);

    /* 4-frame pushes with graphs: against the CPU stream, and equal to the bf16 offline */
    static const int four[1] = {4};
    int *counts = calloc((size_t)f.T_long + 2, sizeof(int));
    int *cpu_counts = calloc((size_t)f.T_long + 2, sizeof(int));
    CU_ASSERT_FATAL(counts && cpu_counts);
    vocos_cuda_stream *s = make_stream(c, 4, 1);
    int64_t n_str, n_off, n_cs;
    float *str = gpu_stream(c, s, &f, f.longf, f.T_long, four, 1, &n_str, counts);
    float *off = gpu_offline(c, f.longf, f.T_long, &n_off);
    float *cs = cpu_stream(&f, f.longf, f.T_long, four, 1, &n_cs, cpu_counts);
    CU_ASSERT_EQUAL(memcmp(counts, cpu_counts, sizeof(int) * ((size_t)f.T_long + 2)), 0);
    check_bf16("GPU bf16 stream, 4-frame pushes", &f, str, n_str, cs, n_cs);
    check_close("GPU bf16 stream, 4-frame pushes", "GPU bf16 offline", &f, str, n_str, off, n_off,
                MAX_ABS_F32, NMSE_F32);
    CU_ASSERT_TRUE(vocos_cuda_stream_graph_launches(s) >= 1);

    /* The public API: a model loaded for CUDA with params.gpu_bf16 runs these weights (its
     * vocoder's offline output is the bf16 context's), and the parameter is validated. */
    sotto_model *m = NULL;
    sotto_model_params p = sotto_model_default_params();
    p.backend = SOTTO_BACKEND_CUDA;
    p.gpu_bf16 = 2;
    CU_ASSERT_EQUAL(sotto_model_load_file(tu_data_path(model_rel), &p, &m, &st),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NULL(m);
    p.gpu_bf16 = 1;
    rc = sotto_model_load_file(tu_data_path(model_rel), &p, &m, &st);
    if (rc) fprintf(stderr, "load %s with gpu_bf16: %s\n", model_rel, st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_model_backend(m), SOTTO_BACKEND_CUDA);
    fixture fm = f;
    fm.m = m;
    int64_t n_pub;
    float *pub = cpu_offline(&fm, f.longf, f.T_long, &n_pub); /* on m: the device */
    check_bf16("public vocoder, gpu_bf16 model", &f, pub, n_pub, cs, n_cs);
    check_close("public vocoder, gpu_bf16 model", "GPU bf16 offline", &f, pub, n_pub, off, n_off,
                MAX_ABS_F32, NMSE_F32);
    sotto_model_free(m);

    free(pub);
    free(str);
    free(off);
    free(cs);
    free(counts);
    free(cpu_counts);
    vocos_cuda_stream_free(s);
    vocos_cuda_free(c);
    vocos_cuda_weights_free(wt);
    fixture_close(&f);
}

static void test_bf16_mel_small(void)
{
    bf16_model("vocos/mel-small.gguf", "vocos/mel-small_golden.gguf", "mel", 0);
}

/* AdaLayerNorm and EnCodec features, at the last bandwidth. */
static void test_bf16_encodec_bw1(void)
{
    bf16_model(ENCODEC, ENCODEC_GOLDEN, "features", 1);
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
    static const tu_test tests[] = {{"mel_small", test_mel_small},
                                    {"mel_same_1280", test_mel_same_1280},
                                    {"mel_small_f16", test_mel_small_f16},
                                    {"tf32_recapture", test_tf32_recapture},
                                    {"encodec_bw0", test_encodec_bw0},
                                    {"encodec_bw1", test_encodec_bw1},
                                    {"bandwidth_switch", test_bandwidth_switch},
                                    {"encodec_vocoder_codes", test_encodec_vocoder_codes},
                                    {"encodec_vocoder_batch", test_encodec_vocoder_batch},
                                    {"bf16_mel_small", test_bf16_mel_small},
                                    {"bf16_encodec_bw1", test_bf16_encodec_bw1},
                                    {NULL, NULL}};
    return tu_run_suite("vocos_cuda", tests);
#endif
}
