/*
 * Vocos on the CUDA layer library (vocoder/vocos/vocos_cuda.h) against the CPU vocoder
 * (sotto_vocoder) on the golden mel features of tests/data/vocos, for the "center" and "same"
 * ISTFT heads and f32 and f16 weights:
 *   - offline: the whole sequence and a shorter one on the same context, against the CPU's
 *     offline output (push every frame, then flush), and the argument errors;
 *   - batch: sequences of different lengths (down to 1 and 2 frames) in one call, each against
 *     the GPU offline output of that sequence alone and against the CPU; a batch that fills
 *     the context exactly, and the argument errors;
 *   - streaming: 4-frame pushes, and pushes of varying size, with and without CUDA graphs,
 *     against the CPU vocoder streaming the same chunks (per-push sample counts equal, samples
 *     within tolerance), against the GPU offline output, graph replay against direct runs, a
 *     reset and second run, and the argument and state errors.
 * Where no device exists, or Sotto was built without its CUDA backend, the test reports SKIP
 * (exit code 77), never a pass.
 *
 * Tolerances (all activations f32, TF32 off on the GPU; NMSE = Σ(got − want)² / Σ want²):
 *   GPU vs CPU, f32 weights: max-abs ≤ 1e-4 and NMSE ≤ 1e-8. The two sides run the same
 *     formulas in different summation orders (cuBLAS vs the CPU GEMM, γ folded into pwconv2
 *     on the GPU, cuFFT vs KissFFT); a wrong index or formula gives NMSE near 1.
 *   GPU vs CPU, f16 weights (mel-small-f16.gguf, default params: binary16 weights widened to
 *     f32 in both GEMMs, no binary16 arithmetic): NMSE ≤ 1e-6.
 *   GPU vs GPU (batch vs single, stream vs offline): the f32 budget above. The packed batch and
 *     the stream's window run the same layers on different row counts, so cuBLAS may pick
 *     other kernels and sum in another order; nothing else differs.
 *   Graph replay vs the same stream run directly: max-abs ≤ 1e-6 (the same kernels on the
 *     same shapes: expected bit-identical; the log says whether it was).
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

/* One model's fixture: the model, its golden mel features, and a longer signal (the golden
 * features tiled) for streaming. */
typedef struct fixture {
    const char *name;
    sotto_model *m;
    const vocos_weights *w;
    float *mel;
    int T, Cin;
    float *longf;
    int T_long;
    double max_abs, nmse; /* GPU vs CPU budget for this model */
} fixture;

static sotto_model *load(const char *rel)
{
    sotto_model *m = NULL;
    sotto_status st;
    int rc = sotto_model_load_file(tu_data_path(rel), NULL, &m, &st);
    if (rc) fprintf(stderr, "load %s: %s\n", rel, st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    CU_ASSERT_FATAL(!strcmp(m->arch, "vocos") && m->arch_data != NULL);
    return m;
}

static void fixture_open(fixture *f, const char *model_rel, const char *golden_rel, double max_abs,
                         double nmse)
{
    memset(f, 0, sizeof *f);
    f->name = model_rel;
    f->m = load(model_rel);
    f->w = f->m->arch_data;
    sotto_gguf *g = tu_golden_open(golden_rel);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    int64_t shape[4];
    f->mel = tu_golden_f32(g, "mel", NULL, shape);
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
    printf("  (%s: %d golden frames, %d for streaming)\n", model_rel, f->T, f->T_long);
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
    int rc = sotto_vocoder_create(f->m, NULL, &v, &st);
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

static void run_model(const char *model_rel, const char *golden_rel, double max_abs, double nmse)
{
    fixture f;
    fixture_open(&f, model_rel, golden_rel, max_abs, nmse);
    offline_case(&f);
    batch_case(&f);
    stream_case(&f);
    fixture_close(&f);
}

static void test_mel_small(void)
{
    run_model("vocos/mel-small.gguf", "vocos/mel-small_golden.gguf", MAX_ABS_F32, NMSE_F32);
}

static void test_mel_same_1280(void)
{
    run_model("vocos/mel-same-1280.gguf", "vocos/mel-same-1280_golden.gguf", MAX_ABS_F32, NMSE_F32);
}

static void test_mel_small_f16(void)
{
    run_model("vocos/mel-small-f16.gguf", "vocos/mel-small_golden.gguf", -1.0, NMSE_F16);
}

/* TF32: a graph captured with f32 GEMMs is not replayed once TF32 is allowed (the stream
 * captures again), and the TF32 output stays near the f32 one. */
static void test_tf32_recapture(void)
{
    fixture f;
    fixture_open(&f, "vocos/mel-small.gguf", "vocos/mel-small_golden.gguf", MAX_ABS_F32, NMSE_F32);
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

/* EnCodec-feature models are outside this forward: refused before any device work. */
static void test_encodec_refused(void)
{
    sotto_model *m = load("vocos/encodec-small.gguf");
    vocos_cuda *c = NULL;
    sotto_status st;
    CU_ASSERT_EQUAL(vocos_cuda_create(m->arch_data, 0, 16, &c, &st), SOTTO_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NULL(c);
    printf("  (%s)\n", st.message);
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
    static const tu_test tests[] = {{"mel_small", test_mel_small},
                                    {"mel_same_1280", test_mel_same_1280},
                                    {"mel_small_f16", test_mel_small_f16},
                                    {"tf32_recapture", test_tf32_recapture},
                                    {"encodec_refused", test_encodec_refused},
                                    {NULL, NULL}};
    return tu_run_suite("vocos_cuda", tests);
#endif
}
