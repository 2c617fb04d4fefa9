/*
 * sotto_bench_vocos_gpu: speed of Vocos on a CUDA device through the internal CUDA forward
 * (vocoder/vocos/vocos_cuda.h), on the same deterministic features as bench/vocos (the LCG of
 * vocos_bench.c and torch_bench.py), for each arithmetic mode (f32, and TF32 GEMMs):
 *   offline  one sequence of --seconds of audio per call; warm-up, then --reps timed calls;
 *   batch    --batch sequences of --seconds each in one call (sequence i is the base features
 *            rotated by 7·i frames, so no two are alike); warm-up, then --reps timed calls;
 *   stream   pushes of --step frames, then flush, with and without CUDA graphs; an untimed
 *            run checks the stream against the offline output, then --stream-reps timed runs
 *            time every push; per-push latency p50 / p99 / max over the pushes that release
 *            samples (the first few only fill the window).
 * Every timed call blocks until its samples are on the host, so each time includes the
 * feature upload, the device work and the sample download. Speed is "x real time" = audio
 * seconds / compute seconds (batch: all sequences' audio); RTF is its inverse.
 *
 * Nothing here has run on a GPU yet: no figure from it is recorded anywhere.
 *
 * usage: sotto_bench_vocos_gpu -m MODEL.gguf [--seconds S] [--batch N] [--step N]
 *                              [--reps N] [--stream-reps N] [--modes f32,tf32] [--device N]
 *                              [--json] [--dump FILE]
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cuda_probe.h"
#include "core/model.h"
#include "benchutil.h"
#include "sotto/sotto.h"
#include "vocoder/vocos/vocos.h"
#include "vocoder/vocos/vocos_cuda.h"

typedef struct options {
    const char *model;
    double seconds;
    int batch;
    int step;
    int reps, stream_reps;
    int modes[2], n_modes; /* 0: f32, 1: TF32 */
    int device;
    int json;
    const char *dump;
} options;

typedef struct timing {
    double best_s, median_s;
} timing;

typedef struct stream_result {
    int graph;
    int pushes; /* per run */
    int timed;  /* pushes that released samples, pooled over the timed runs */
    double p50_ms, p99_ms, max_ms, mean_ms;
    double flush_ms;     /* median */
    double run_median_s; /* whole run: pushes + flush */
    double max_abs_vs_offline;
    int64_t captures, replays;
} stream_result;

typedef struct mode_result {
    int tf32;
    timing offline, batch;
    double batch_item_max_abs; /* batch items 0 and last vs their offline outputs */
    stream_result stream[2];   /* without, with graphs */
} mode_result;

static double max_abs_diff(const float *a, const float *b, int64_t n)
{
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d; /* a NaN makes it NaN */
    }
    return m;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: sotto_bench_vocos_gpu -m MODEL.gguf [options]\n"
               "\n"
               "Times a mel Vocos model on a CUDA device through the internal CUDA forward:\n"
               "offline, a batch of sequences in one call, and exact streaming in pushes of a\n"
               "few frames (with and without CUDA graphs), per arithmetic mode. Every time\n"
               "includes the feature upload and the sample download.\n"
               "\n"
               "options:\n"
               "  -m, --model FILE    vocos GGUF model, mel features (required)\n"
               "  --seconds S         audio per sequence (default 10)\n"
               "  --batch N           sequences in the batch case (default 64)\n"
               "  --step N            frames per stream push (default 4)\n"
               "  --reps N            timed offline and batch calls (default 5)\n"
               "  --stream-reps N     timed stream runs per graph setting (default 3)\n"
               "  --modes LIST        f32, tf32 or both, comma-separated (default f32,tf32)\n"
               "  --device N          CUDA device (default 0)\n"
               "  --json              one JSON object on stdout instead of the table\n"
               "  --dump FILE         write the f32 offline output (raw float32) to FILE\n"
               "  -h, --help          this text\n");
}

static int parse_modes(const char *s, options *o)
{
    o->n_modes = 0;
    while (*s && o->n_modes < 2) {
        const char *end = strchr(s, ',');
        const size_t len = end ? (size_t)(end - s) : strlen(s);
        if (len == 3 && !strncmp(s, "f32", 3))
            o->modes[o->n_modes++] = 0;
        else if (len == 4 && !strncmp(s, "tf32", 4))
            o->modes[o->n_modes++] = 1;
        else
            return -1;
        s += len + (end ? 1 : 0);
    }
    return o->n_modes > 0 ? 0 : -1;
}

static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->seconds = 10.0;
    o->batch = 64;
    o->step = 4;
    o->reps = 5;
    o->stream_reps = 3;
    o->modes[0] = 0;
    o->modes[1] = 1;
    o->n_modes = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int has = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has) {
            o->model = argv[++i];
        } else if (!strcmp(a, "--seconds") && has) {
            o->seconds = atof(argv[++i]);
        } else if (!strcmp(a, "--batch") && has) {
            o->batch = atoi(argv[++i]);
        } else if (!strcmp(a, "--step") && has) {
            o->step = atoi(argv[++i]);
        } else if (!strcmp(a, "--reps") && has) {
            o->reps = atoi(argv[++i]);
        } else if (!strcmp(a, "--stream-reps") && has) {
            o->stream_reps = atoi(argv[++i]);
        } else if (!strcmp(a, "--modes") && has) {
            if (parse_modes(argv[++i], o)) {
                fprintf(stderr, "sotto_bench_vocos_gpu: --modes takes f32, tf32 or both\n");
                return -1;
            }
        } else if (!strcmp(a, "--device") && has) {
            o->device = atoi(argv[++i]);
        } else if (!strcmp(a, "--json")) {
            o->json = 1;
        } else if (!strcmp(a, "--dump") && has) {
            o->dump = argv[++i];
        } else {
            fprintf(stderr, "sotto_bench_vocos_gpu: unknown option or missing value: %s\n", a);
            return -1;
        }
    }
    if (!o->model) {
        fprintf(stderr, "sotto_bench_vocos_gpu: -m MODEL is required (see --help)\n");
        return -1;
    }
    if (!(o->seconds > 0 && o->seconds <= 600) || o->batch < 1 || o->batch > 4096 || o->step < 1 ||
        o->step > 4096 || o->reps < 1 || o->stream_reps < 1 || o->device < 0) {
        fprintf(stderr, "sotto_bench_vocos_gpu: bad option value (see --help)\n");
        return -1;
    }
    return 0;
}

/* ---- the cases ---------------------------------------------------------------------------- */

typedef struct bench {
    vocos_cuda *c;
    const float *feat; /* [T][dim] */
    int T, dim;
    int64_t len;    /* samples of one sequence */
    float *offline; /* the offline output of feat (reference for the checks) */
    /* batch */
    int B;
    float *bfeat; /* [B][T][dim] */
    const float **bin;
    float **bout;
    int *bframes;
    int64_t *bcap;
    /* stream */
    float *wave, *piece;
    int64_t wave_cap, piece_cap;
} bench;

static int fail(const char *what, const bench *b)
{
    fprintf(stderr, "sotto_bench_vocos_gpu: %s failed: %s\n", what, vocos_cuda_last_error(b->c));
    return -1;
}

static int time_offline(bench *b, int reps, float *out, timing *t)
{
    double *v = malloc(sizeof(double) * (size_t)reps);
    if (!v) return -1;
    int rc = 0;
    for (int i = -1; i < reps && !rc; i++) { /* i = -1: warm-up */
        const double t0 = bench_now_s();
        const int64_t got = vocos_cuda_offline(b->c, b->feat, b->T, out, b->len);
        const double dt = bench_now_s() - t0;
        if (got != b->len)
            rc = fail("offline", b);
        else if (i >= 0)
            v[i] = dt;
    }
    if (!rc) {
        t->median_s = bench_median(v, reps);
        t->best_s = v[0];
    }
    free(v);
    return rc;
}

static int time_batch(bench *b, int reps, timing *t)
{
    double *v = malloc(sizeof(double) * (size_t)reps);
    if (!v) return -1;
    int rc = 0;
    for (int i = -1; i < reps && !rc; i++) {
        const double t0 = bench_now_s();
        const int64_t got =
            vocos_cuda_offline_batch(b->c, b->B, b->bin, b->bframes, b->bout, b->bcap);
        const double dt = bench_now_s() - t0;
        if (got != (int64_t)b->B * b->len)
            rc = fail("batch", b);
        else if (i >= 0)
            v[i] = dt;
    }
    if (!rc) {
        t->median_s = bench_median(v, reps);
        t->best_s = v[0];
    }
    free(v);
    return rc;
}

/* One stream run: pushes of `step` frames, then flush. Times of the pushes that released
 * samples are appended to lat (ms) when lat is non-NULL; the whole run's seconds to *run_s. */
static int stream_run(bench *b, vocos_cuda_stream *s, int step, double *lat, int *n_lat,
                      double *flush_ms, double *run_s, int64_t *len)
{
    if (vocos_cuda_stream_reset(s)) return fail("stream reset", b);
    double total = 0.0;
    *len = 0;
    for (int t = 0; t < b->T; t += step) {
        const int n = b->T - t < step ? b->T - t : step;
        const double t0 = bench_now_s();
        const int64_t got =
            vocos_cuda_stream_push(s, b->feat + (size_t)t * b->dim, n, b->piece, b->piece_cap);
        const double dt = bench_now_s() - t0;
        if (got < 0 || *len + got > b->wave_cap) return fail("stream push", b);
        memcpy(b->wave + *len, b->piece, sizeof(float) * (size_t)got);
        *len += got;
        total += dt;
        if (lat && got > 0) lat[(*n_lat)++] = 1e3 * dt;
    }
    const double t0 = bench_now_s();
    const int64_t got = vocos_cuda_stream_flush(s, b->piece, b->piece_cap);
    const double dt = bench_now_s() - t0;
    if (got < 0 || *len + got > b->wave_cap) return fail("stream flush", b);
    memcpy(b->wave + *len, b->piece, sizeof(float) * (size_t)got);
    *len += got;
    *flush_ms = 1e3 * dt;
    *run_s = total + dt;
    return 0;
}

static int time_stream(bench *b, const options *o, int graph, stream_result *r)
{
    memset(r, 0, sizeof *r);
    r->graph = graph;
    vocos_cuda_stream *s = NULL;
    sotto_status st;
    if (vocos_cuda_stream_create(b->c, o->step, graph, &s, &st)) {
        fprintf(stderr, "sotto_bench_vocos_gpu: stream: %s\n", st.message);
        return -1;
    }
    const int pushes = (b->T + o->step - 1) / o->step;
    double *lat = malloc(sizeof(double) * (size_t)pushes * (size_t)o->stream_reps);
    double *runs = malloc(sizeof(double) * (size_t)o->stream_reps);
    double *flushes = malloc(sizeof(double) * (size_t)o->stream_reps);
    int rc = -1, n_lat = 0;
    int64_t len = 0;
    double flush_ms, run_s;
    if (!lat || !runs || !flushes) goto done;
    /* Untimed run: warms the graphs and checks the stream against the offline output. */
    if (stream_run(b, s, o->step, NULL, NULL, &flush_ms, &run_s, &len)) goto done;
    r->max_abs_vs_offline = len == b->len ? max_abs_diff(b->wave, b->offline, len) : -1.0;
    for (int i = 0; i < o->stream_reps; i++) {
        if (stream_run(b, s, o->step, lat, &n_lat, &flushes[i], &runs[i], &len)) goto done;
    }
    r->pushes = pushes;
    r->timed = n_lat;
    double sum = 0.0;
    for (int i = 0; i < n_lat; i++)
        sum += lat[i];
    bench_sort(lat, n_lat);
    r->p50_ms = bench_percentile(lat, n_lat, 50);
    r->p99_ms = bench_percentile(lat, n_lat, 99);
    r->max_ms = n_lat ? lat[n_lat - 1] : 0.0;
    r->mean_ms = n_lat ? sum / n_lat : 0.0;
    r->flush_ms = bench_median(flushes, o->stream_reps);
    r->run_median_s = bench_median(runs, o->stream_reps);
    r->captures = vocos_cuda_stream_graph_captures(s);
    r->replays = vocos_cuda_stream_graph_launches(s);
    rc = 0;
done:
    free(lat);
    free(runs);
    free(flushes);
    vocos_cuda_stream_free(s);
    return rc;
}

static int run_mode(bench *b, const options *o, int tf32, mode_result *r, float *scratch_out)
{
    memset(r, 0, sizeof *r);
    r->tf32 = tf32;
    vocos_cuda_set_tf32(b->c, tf32);
    /* The reference output of this mode (untimed), then the timed cases. */
    if (vocos_cuda_offline(b->c, b->feat, b->T, b->offline, b->len) != b->len)
        return fail("offline", b);
    if (time_offline(b, o->reps, scratch_out, &r->offline)) return -1;
    if (time_batch(b, o->reps, &r->batch)) return -1;
    /* Batch items 0 and B − 1 against their own offline outputs. */
    r->batch_item_max_abs = max_abs_diff(b->bout[0], b->offline, b->len);
    if (vocos_cuda_offline(b->c, b->bin[b->B - 1], b->T, scratch_out, b->len) != b->len)
        return fail("offline", b);
    const double d = max_abs_diff(b->bout[b->B - 1], scratch_out, b->len);
    if (!(d <= r->batch_item_max_abs)) r->batch_item_max_abs = d;
    for (int g = 0; g < 2; g++)
        if (time_stream(b, o, g, &r->stream[g])) return -1;
    return 0;
}

/* ---- output ------------------------------------------------------------------------------- */

static void print_json(const options *o, const bench *b, const char *device, double audio_s, int sr,
                       int hop, const mode_result *res, int n, const char *error)
{
    printf("{\"bench\": \"vocos_gpu\", \"side\": \"sdk\", \"model\": ");
    bench_json_string(o->model);
    printf(", \"device\": ");
    bench_json_string(device);
    printf(", \"sample_rate\": %d, \"hop\": %d, \"feature_dim\": %d, \"frames\": %d, "
           "\"audio_samples\": %lld, \"audio_seconds\": %.6f, \"batch\": %d, \"step\": %d, "
           "\"reps\": %d, \"stream_reps\": %d, \"runs\": [",
           sr, hop, b->dim, b->T, (long long)b->len, audio_s, b->B, o->step, o->reps,
           o->stream_reps);
    for (int i = 0; i < n; i++) {
        const mode_result *r = &res[i];
        printf("%s{\"mode\": \"%s\", \"offline\": {\"best_s\": %.6f, \"median_s\": %.6f, "
               "\"xrt_median\": %.3f, \"rtf_median\": %.6g}, "
               "\"batch\": {\"best_s\": %.6f, \"median_s\": %.6f, \"xrt_median\": %.3f, "
               "\"item_max_abs_vs_offline\": %.3g}, \"stream\": [",
               i ? ", " : "", r->tf32 ? "tf32" : "f32", r->offline.best_s, r->offline.median_s,
               audio_s / r->offline.median_s, r->offline.median_s / audio_s, r->batch.best_s,
               r->batch.median_s, b->B * audio_s / r->batch.median_s, r->batch_item_max_abs);
        for (int g = 0; g < 2; g++) {
            const stream_result *s = &r->stream[g];
            printf("%s{\"graph\": %d, \"pushes\": %d, \"timed_pushes\": %d, \"p50_ms\": %.4f, "
                   "\"p99_ms\": %.4f, \"max_ms\": %.4f, \"mean_ms\": %.4f, \"flush_ms\": %.4f, "
                   "\"run_median_s\": %.6f, \"xrt_median\": %.3f, \"max_abs_vs_offline\": %.3g, "
                   "\"graph_captures\": %lld, \"graph_replays\": %lld}",
                   g ? ", " : "", s->graph, s->pushes, s->timed, s->p50_ms, s->p99_ms, s->max_ms,
                   s->mean_ms, s->flush_ms, s->run_median_s, audio_s / s->run_median_s,
                   s->max_abs_vs_offline, (long long)s->captures, (long long)s->replays);
        }
        printf("]}");
    }
    printf("]");
    if (error) {
        printf(", \"error\": ");
        bench_json_string(error);
    }
    printf("}\n");
}

static void print_table(const options *o, const bench *b, const char *device, double audio_s,
                        const mode_result *res, int n)
{
    printf("sotto_bench_vocos_gpu: %s on %s\n", o->model, device);
    printf("%d frames = %.3f s of audio per sequence; batch %d; stream pushes of %d frames\n\n",
           b->T, audio_s, b->B, o->step);
    printf("%-6s %-28s %12s %12s\n", "mode", "case", "x RT", "ms");
    for (int i = 0; i < n; i++) {
        const mode_result *r = &res[i];
        const char *m = r->tf32 ? "tf32" : "f32";
        printf("%-6s %-28s %12.1f %12.3f\n", m, "offline (median)", audio_s / r->offline.median_s,
               1e3 * r->offline.median_s);
        printf("%-6s %-28s %12.1f %12.3f\n", m, "batch (median)",
               b->B * audio_s / r->batch.median_s, 1e3 * r->batch.median_s);
        for (int g = 0; g < 2; g++) {
            const stream_result *s = &r->stream[g];
            char label[64];
            snprintf(label, sizeof label, "stream %d, %s: p50", o->step, g ? "graph" : "no graph");
            printf("%-6s %-28s %12.1f %12.4f\n", m, label, audio_s / s->run_median_s, s->p50_ms);
            snprintf(label, sizeof label, "stream %d, %s: p99", o->step, g ? "graph" : "no graph");
            printf("%-6s %-28s %12s %12.4f\n", m, label, "", s->p99_ms);
        }
        printf("%-6s checks: batch items vs offline max-abs %.3g; stream vs offline max-abs %.3g "
               "(no graph), %.3g (graph)\n",
               m, r->batch_item_max_abs, r->stream[0].max_abs_vs_offline,
               r->stream[1].max_abs_vs_offline);
    }
}

int main(int argc, char **argv)
{
    options o;
    if (parse_args(argc, argv, &o)) return 2;
    if (sotto_cuda_device_count() <= o.device) {
        fprintf(stderr, "sotto_bench_vocos_gpu: no CUDA device %d (%d found)\n", o.device,
                sotto_cuda_device_count());
        return 1;
    }
    char device[256] = "?";
    sotto_cuda_device_name(o.device, device, (int)sizeof device);

    sotto_status st;
    sotto_model *m = NULL;
    if (sotto_model_load_file(o.model, NULL, &m, &st) != SOTTO_OK) {
        fprintf(stderr, "sotto_bench_vocos_gpu: %s: %s\n", o.model, st.message);
        return 1;
    }
    if (strcmp(m->arch, "vocos") || !m->arch_data) {
        fprintf(stderr, "sotto_bench_vocos_gpu: %s is not a vocos model\n", o.model);
        sotto_model_free(m);
        return 1;
    }
    const vocos_weights *w = m->arch_data;
    const int sr = w->hp.sample_rate, hop = w->hp.hop_length;
    bench b;
    memset(&b, 0, sizeof b);
    b.dim = w->hp.input_channels;
    b.T = (int)ceil(o.seconds * sr / hop) + 1;
    b.B = o.batch;
    const double audio_s = (double)hop * (b.T - 1) / sr;
    const int64_t rows = (int64_t)b.B * b.T + 3 * (int64_t)(b.B - 1);
    int rc = 1;
    mode_result res[2];
    float *feat = NULL, *scratch_out = NULL;
    if (rows > (1 << 20)) {
        fprintf(stderr, "sotto_bench_vocos_gpu: batch too large (%lld frames)\n", (long long)rows);
        goto done;
    }
    if (vocos_cuda_create(w, o.device, (int)rows, &b.c, &st) != SOTTO_OK) {
        fprintf(stderr, "sotto_bench_vocos_gpu: %s\n", st.message);
        goto done;
    }
    b.len = vocos_cuda_output_length(b.c, b.T);
    feat = malloc(sizeof(float) * (size_t)b.T * b.dim);
    b.offline = malloc(sizeof(float) * (size_t)b.len);
    scratch_out = malloc(sizeof(float) * (size_t)b.len);
    b.bfeat = malloc(sizeof(float) * (size_t)b.B * b.T * b.dim);
    b.bin = malloc(sizeof(*b.bin) * (size_t)b.B);
    b.bout = calloc((size_t)b.B, sizeof(*b.bout));
    b.bframes = malloc(sizeof(int) * (size_t)b.B);
    b.bcap = malloc(sizeof(int64_t) * (size_t)b.B);
    b.wave_cap = b.len + 16 * (int64_t)hop;
    b.wave = malloc(sizeof(float) * (size_t)b.wave_cap);
    if (!feat || !b.offline || !scratch_out || !b.bfeat || !b.bin || !b.bout || !b.bframes ||
        !b.bcap || !b.wave) {
        fprintf(stderr, "sotto_bench_vocos_gpu: out of memory\n");
        goto done;
    }
    bench_make_features(feat, (int64_t)b.T * b.dim);
    b.feat = feat;
    for (int i = 0; i < b.B; i++) {
        float *dst = b.bfeat + (size_t)i * b.T * b.dim;
        const int shift = (7 * i) % b.T;
        for (int t = 0; t < b.T; t++)
            memcpy(dst + (size_t)t * b.dim, feat + (size_t)((t + shift) % b.T) * b.dim,
                   sizeof(float) * (size_t)b.dim);
        b.bin[i] = dst;
        b.bframes[i] = b.T;
        b.bcap[i] = b.len;
        if (!(b.bout[i] = malloc(sizeof(float) * (size_t)b.len))) {
            fprintf(stderr, "sotto_bench_vocos_gpu: out of memory\n");
            goto done;
        }
    }
    {
        vocos_cuda_stream *probe = NULL;
        if (vocos_cuda_stream_create(b.c, o.step, 0, &probe, &st)) {
            fprintf(stderr, "sotto_bench_vocos_gpu: %s\n", st.message);
            goto done;
        }
        b.piece_cap = vocos_cuda_stream_max_output(probe, o.step);
        const int64_t tail = vocos_cuda_stream_max_output(probe, 0);
        if (tail > b.piece_cap) b.piece_cap = tail;
        vocos_cuda_stream_free(probe);
        b.wave_cap += b.piece_cap;
        float *grown = realloc(b.wave, sizeof(float) * (size_t)b.wave_cap);
        b.piece = malloc(sizeof(float) * (size_t)b.piece_cap);
        if (!grown || !b.piece) {
            fprintf(stderr, "sotto_bench_vocos_gpu: out of memory\n");
            if (grown) b.wave = grown;
            goto done;
        }
        b.wave = grown;
    }
    /* A mode that fails still leaves the modes before it in the output (with the error), so a
     * single run on a borrowed GPU brings back what it can. */
    int done_modes = 0;
    char error[512] = "";
    for (int i = 0; i < o.n_modes && !error[0]; i++) {
        if (!o.json)
            fprintf(stderr, "sotto_bench_vocos_gpu: %s ...\n", o.modes[i] ? "tf32" : "f32");
        if (run_mode(&b, &o, o.modes[i], &res[i], scratch_out)) {
            snprintf(error, sizeof error, "%s mode failed: %s", o.modes[i] ? "tf32" : "f32",
                     vocos_cuda_last_error(b.c));
            break;
        }
        done_modes++;
        if (o.dump && !o.modes[i]) {
            FILE *f = fopen(o.dump, "wb");
            int ok = f != NULL;
            if (f) {
                ok = fwrite(b.offline, sizeof(float), (size_t)b.len, f) == (size_t)b.len;
                if (fclose(f)) ok = 0;
            }
            if (!ok) snprintf(error, sizeof error, "cannot write %s", o.dump);
        }
    }
    if (o.json)
        print_json(&o, &b, device, audio_s, sr, hop, res, done_modes, error[0] ? error : NULL);
    else
        print_table(&o, &b, device, audio_s, res, done_modes);
    if (error[0]) fprintf(stderr, "sotto_bench_vocos_gpu: %s\n", error);
    rc = error[0] ? 1 : 0;
done:
    if (b.bout)
        for (int i = 0; i < b.B; i++)
            free(b.bout[i]);
    free(b.bout);
    free(b.bin);
    free(b.bframes);
    free(b.bcap);
    free(b.bfeat);
    free(b.wave);
    free(b.piece);
    free(b.offline);
    free(scratch_out);
    free(feat);
    vocos_cuda_free(b.c);
    sotto_model_free(m);
    return rc;
}
