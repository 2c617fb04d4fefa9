/*
 * sotto_bench_vocos: speed and memory of a Vocos model through the public vocoder API.
 *
 * Generates deterministic pseudo-random features (the same generator as torch_bench.py, so
 * both sides vocode identical input) for a given duration, then for each thread count:
 *   offline    push every frame in one call, then flush; repeated, best and median reported;
 *   streaming  push chunks of 1, 4, 16 ... frames one call at a time, then flush; every call
 *              timed; per-call latency p50/p99 and the whole run's speed reported. The first
 *              run of each chunk size is untimed: it checks that the concatenated stream
 *              equals the offline output (max-abs difference reported).
 * Speed is "x real time" = audio seconds / compute seconds (higher is faster); RTF is its
 * inverse (compute / audio). Peak RSS is the process's getrusage() maximum. Timings use the
 * monotonic wall clock, so anything else running on the machine shows up in them.
 *
 * usage: sotto_bench_vocos -m MODEL.gguf [--seconds S] [--threads 1,2] [--chunks 1,4,16]
 *                          [--reps N] [--stream-reps N] [--offline-chunk N] [--json]
 *                          [--no-mmap] [--dump FILE]
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "benchutil.h"
#include "sotto/sotto.h"
#include "sotto/sotto_vocoder.h"

#define MAX_LIST 16

typedef struct options {
    const char *model;
    double seconds;
    int threads[MAX_LIST], n_threads;
    int chunks[MAX_LIST], n_chunks;
    int reps;
    int stream_reps;
    int offline_chunk; /* max_chunk_frames for the offline vocoder; 0: library default */
    int json;
    int no_mmap;
    int f16_math; /* --f16-arithmetic: sotto_model_params.f16_arithmetic */
    const char *dump;
} options;

typedef struct stream_result {
    int chunk;
    int steps;          /* push calls per run (flush not counted) */
    double median_s;    /* median over runs of the whole run (pushes + flush) */
    double best_s;
    double p50_ms, p99_ms, max_ms; /* per push call, pooled over runs */
    double flush_ms;    /* median flush call */
    double max_abs_diff; /* stream vs offline output */
    int64_t samples;
} stream_result;

typedef struct thread_result {
    int threads;
    int f16_math; /* sotto_model_f16_arithmetic of the loaded model */
    double load_s;
    double best_s, median_s; /* offline */
    int64_t samples;
    stream_result stream[MAX_LIST];
    long rss_after_kb; /* peak RSS after this thread count's runs */
} thread_result;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sotto_bench_vocos -m MODEL.gguf [options]\n"
            "\n"
            "Times a Vocos model through the public vocoder API on deterministic features:\n"
            "offline (one push + flush) and exact streaming in chunks of frames, per thread\n"
            "count. Speed is x real time (audio s / compute s); RTF = compute / audio.\n"
            "\n"
            "options:\n"
            "  -m, --model FILE      vocos GGUF model (required)\n"
            "  --seconds S           audio duration to vocode (default 10)\n"
            "  --threads LIST        n_threads values, comma-separated (default 1,2)\n"
            "  --chunks LIST         streaming chunk sizes in frames (default 1,4,16)\n"
            "  --reps N              timed offline runs (default 5)\n"
            "  --stream-reps N       timed streaming runs per chunk size (default 3)\n"
            "  --offline-chunk N     max_chunk_frames of the offline stream (default: the\n"
            "                        library default)\n"
            "  --no-mmap             load the model with use_mmap = 0 (read, not mapped)\n"
            "  --f16-arithmetic      load with f16_arithmetic = 1 (binary16 products on\n"
            "                        CPUs with AVX512-FP16; f16 models only)\n"
            "  --json                one JSON object on stdout instead of the table\n"
            "  --dump FILE           write the offline output (raw float32) of the first\n"
            "                        thread count to FILE\n"
            "  -h, --help            this text\n");
}

static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->seconds = 10.0;
    o->threads[0] = 1;
    o->threads[1] = 2;
    o->n_threads = 2;
    o->chunks[0] = 1;
    o->chunks[1] = 4;
    o->chunks[2] = 16;
    o->n_chunks = 3;
    o->reps = 5;
    o->stream_reps = 3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has) {
            o->model = argv[++i];
        } else if (!strcmp(a, "--seconds") && has) {
            o->seconds = atof(argv[++i]);
        } else if (!strcmp(a, "--threads") && has) {
            o->n_threads = bench_parse_list(argv[++i], o->threads, MAX_LIST, 4096);
        } else if (!strcmp(a, "--chunks") && has) {
            o->n_chunks = bench_parse_list(argv[++i], o->chunks, MAX_LIST, 4096);
        } else if (!strcmp(a, "--reps") && has) {
            o->reps = atoi(argv[++i]);
        } else if (!strcmp(a, "--stream-reps") && has) {
            o->stream_reps = atoi(argv[++i]);
        } else if (!strcmp(a, "--offline-chunk") && has) {
            o->offline_chunk = atoi(argv[++i]);
        } else if (!strcmp(a, "--json")) {
            o->json = 1;
        } else if (!strcmp(a, "--no-mmap")) {
            o->no_mmap = 1;
        } else if (!strcmp(a, "--f16-arithmetic")) {
            o->f16_math = 1;
        } else if (!strcmp(a, "--dump") && has) {
            o->dump = argv[++i];
        } else {
            fprintf(stderr, "sotto_bench_vocos: unknown option or missing value: %s\n", a);
            return -1;
        }
    }
    if (!o->model) {
        fprintf(stderr, "sotto_bench_vocos: -m MODEL is required (see --help)\n");
        return -1;
    }
    if (o->n_threads <= 0 || o->n_chunks <= 0 || o->reps < 1 || o->stream_reps < 1 ||
        !(o->seconds > 0 && o->seconds <= 3600) || o->offline_chunk < 0 ||
        o->offline_chunk > 4096) {
        fprintf(stderr, "sotto_bench_vocos: bad option value (see --help)\n");
        return -1;
    }
    return 0;
}

/* ---- runs ------------------------------------------------------------------------------- */

typedef struct bench {
    const float *feat;
    int T, dim;
    float *out;      /* output buffer of one call */
    size_t out_cap;
    float *wave;     /* concatenated output of a run */
    int64_t wave_cap;
} bench;

/* Appends a call's output to b->wave (when wave is non-NULL). */
static int collect(bench *b, float *wave, int64_t *len, int got)
{
    if (got < 0) return got;
    if (wave) {
        if (*len + got > b->wave_cap) return SOTTO_ERR_BUFFER_TOO_SMALL;
        memcpy(wave + *len, b->out, sizeof(float) * (size_t)got);
    }
    *len += got;
    return SOTTO_OK;
}

/* One offline run: every frame in one push, then flush. Returns seconds, or -1. */
static double run_offline(bench *b, sotto_vocoder *voc, float *wave, int64_t *len)
{
    *len = 0;
    if (sotto_vocoder_reset(voc) != SOTTO_OK) return -1;
    double t0 = bench_now_s();
    int got = sotto_vocoder_push_features(voc, b->feat, b->T, b->out, b->out_cap);
    if (collect(b, wave, len, got)) return -1;
    got = sotto_vocoder_flush(voc, b->out, b->out_cap);
    if (collect(b, wave, len, got)) return -1;
    return bench_now_s() - t0;
}

/* One streaming run in chunks of `chunk` frames; step_ms receives each push's time.
 * Returns the run's seconds (pushes + flush), or -1. */
static double run_stream(bench *b, sotto_vocoder *voc, int chunk, double *step_ms,
                         double *flush_ms, float *wave, int64_t *len)
{
    *len = 0;
    if (sotto_vocoder_reset(voc) != SOTTO_OK) return -1;
    double total = 0;
    int k = 0;
    for (int t = 0; t < b->T; t += chunk, k++) {
        int n = b->T - t < chunk ? b->T - t : chunk;
        double t0 = bench_now_s();
        int got = sotto_vocoder_push_features(voc, b->feat + (size_t)t * b->dim, n, b->out,
                                              b->out_cap);
        double dt = bench_now_s() - t0;
        if (collect(b, wave, len, got)) return -1;
        step_ms[k] = 1e3 * dt;
        total += dt;
    }
    double t0 = bench_now_s();
    int got = sotto_vocoder_flush(voc, b->out, b->out_cap);
    double dt = bench_now_s() - t0;
    if (collect(b, wave, len, got)) return -1;
    *flush_ms = 1e3 * dt;
    return total + dt;
}

static int fail_voc(const char *what, sotto_vocoder *voc)
{
    fprintf(stderr, "sotto_bench_vocos: %s failed: %s\n", what, sotto_vocoder_last_error(voc));
    return -1;
}

/* Everything for one thread count. */
static int bench_threads(const options *o, bench *b, int threads, thread_result *r,
                         float *offline_wave, int dump_now)
{
    sotto_status st;
    sotto_model *model = NULL;
    sotto_vocoder *off = NULL, *str = NULL;
    double *steps = NULL, *runs = NULL, *flushes = NULL;
    float *swave = NULL;
    int rc = -1;
    memset(r, 0, sizeof *r);
    r->threads = threads;

    sotto_model_params mp = sotto_model_default_params();
    mp.n_threads = threads;
    mp.use_mmap = !o->no_mmap;
    mp.f16_arithmetic = o->f16_math;
    double t0 = bench_now_s();
    if (sotto_model_load_file(o->model, &mp, &model, &st) != SOTTO_OK) {
        fprintf(stderr, "sotto_bench_vocos: %s: %s\n", o->model, st.message);
        return -1;
    }
    r->f16_math = sotto_model_f16_arithmetic(model);
    sotto_vocoder_params vp = sotto_vocoder_default_params();
    if (o->offline_chunk > 0) vp.max_chunk_frames = o->offline_chunk;
    if (sotto_vocoder_create(model, &vp, &off, &st) != SOTTO_OK) {
        fprintf(stderr, "sotto_bench_vocos: %s: %s\n", o->model, st.message);
        goto done;
    }
    int max_chunk = 1;
    for (int i = 0; i < o->n_chunks; i++)
        if (o->chunks[i] > max_chunk) max_chunk = o->chunks[i];
    vp = sotto_vocoder_default_params();
    if (vp.max_chunk_frames < max_chunk) vp.max_chunk_frames = max_chunk;
    if (sotto_vocoder_create(model, &vp, &str, &st) != SOTTO_OK) {
        fprintf(stderr, "sotto_bench_vocos: %s: %s\n", o->model, st.message);
        goto done;
    }
    r->load_s = bench_now_s() - t0;

    /* Offline: one untimed warm-up run that also keeps the reference output. */
    int64_t len = 0;
    if (run_offline(b, off, offline_wave, &len) < 0) {
        rc = fail_voc("offline run", off);
        goto done;
    }
    r->samples = len;
    if (dump_now) {
        FILE *f = fopen(o->dump, "wb");
        if (!f || fwrite(offline_wave, sizeof(float), (size_t)len, f) != (size_t)len) {
            fprintf(stderr, "sotto_bench_vocos: cannot write %s\n", o->dump);
            if (f) fclose(f);
            goto done;
        }
        fclose(f);
    }
    int nrep = o->reps > o->stream_reps ? o->reps : o->stream_reps;
    runs = malloc(sizeof(double) * (size_t)nrep);
    flushes = malloc(sizeof(double) * (size_t)nrep);
    steps = malloc(sizeof(double) * ((size_t)b->T + 1) * (size_t)o->stream_reps);
    swave = malloc(sizeof(float) * (size_t)b->wave_cap);
    if (!runs || !flushes || !steps || !swave) {
        fprintf(stderr, "sotto_bench_vocos: out of memory\n");
        goto done;
    }
    for (int i = 0; i < o->reps; i++) {
        runs[i] = run_offline(b, off, NULL, &len);
        if (runs[i] < 0) {
            rc = fail_voc("offline run", off);
            goto done;
        }
    }
    r->median_s = bench_median(runs, o->reps);
    r->best_s = runs[0];

    /* Streaming. */
    for (int c = 0; c < o->n_chunks; c++) {
        stream_result *s = &r->stream[c];
        const int chunk = o->chunks[c];
        s->chunk = chunk;
        s->steps = (b->T + chunk - 1) / chunk;
        double fl;
        if (run_stream(b, str, chunk, steps, &fl, swave, &len) < 0) {
            rc = fail_voc("streaming run", str);
            goto done;
        }
        s->samples = len;
        double md = len == r->samples ? 0.0 : INFINITY;
        for (int64_t i = 0; i < len && i < r->samples; i++) {
            double d = fabs((double)swave[i] - (double)offline_wave[i]);
            if (d > md) md = d;
        }
        s->max_abs_diff = md;
        for (int i = 0; i < o->stream_reps; i++) {
            runs[i] = run_stream(b, str, chunk, steps + (size_t)i * s->steps, &flushes[i], NULL,
                                 &len);
            if (runs[i] < 0) {
                rc = fail_voc("streaming run", str);
                goto done;
            }
        }
        s->median_s = bench_median(runs, o->stream_reps);
        s->best_s = runs[0];
        s->flush_ms = bench_median(flushes, o->stream_reps);
        int n = s->steps * o->stream_reps;
        bench_sort(steps, n);
        s->p50_ms = bench_percentile(steps, n, 50);
        s->p99_ms = bench_percentile(steps, n, 99);
        s->max_ms = steps[n - 1];
    }
    r->rss_after_kb = bench_peak_rss_kb();
    rc = 0;
done:
    free(steps);
    free(runs);
    free(flushes);
    free(swave);
    sotto_vocoder_free(str);
    sotto_vocoder_free(off);
    sotto_model_free(model);
    return rc;
}

/* The dtype of the first ConvNeXt block's first linear: what "f32" / "f16" model means. */
static const char *weights_dtype(const sotto_model *m)
{
    int64_t n = sotto_model_tensor_count(m);
    for (int64_t i = 0; i < n; i++) {
        sotto_tensor_info ti;
        if (sotto_model_tensor_info(m, i, &ti) == SOTTO_OK && strstr(ti.name, "pwconv1.weight"))
            return ti.dtype;
    }
    return "?";
}

int main(int argc, char **argv)
{
    options o;
    if (parse_args(argc, argv, &o)) return 2;

    /* Probe the model once for its shapes. */
    sotto_status st;
    sotto_model *model = NULL;
    sotto_vocoder *voc = NULL;
    long rss_start = bench_peak_rss_kb();
    if (sotto_model_load_file(o.model, NULL, &model, &st) != SOTTO_OK) {
        fprintf(stderr, "sotto_bench_vocos: %s: %s\n", o.model, st.message);
        return 1;
    }
    if (sotto_vocoder_create(model, NULL, &voc, &st) != SOTTO_OK) {
        fprintf(stderr, "sotto_bench_vocos: %s: %s\n", o.model, st.message);
        sotto_model_free(model);
        return 1;
    }
    if (sotto_vocoder_num_codebooks(voc) > 0) {
        fprintf(stderr, "sotto_bench_vocos: %s takes EnCodec codes; only mel models are "
                        "benchmarked\n", o.model);
        sotto_vocoder_free(voc);
        sotto_model_free(model);
        return 1;
    }
    const int sr = sotto_vocoder_sample_rate_hz(voc), hop = sotto_vocoder_hop_samples(voc);
    const int dim = sotto_vocoder_feature_dim(voc);
    const int la_samples = sotto_vocoder_lookahead_samples(voc);
    const int la_frames = sotto_vocoder_lookahead_frames(voc);
    char name[128], dtype[16], arch[32];
    snprintf(name, sizeof name, "%s", sotto_model_name(model));
    snprintf(dtype, sizeof dtype, "%s", weights_dtype(model));
    snprintf(arch, sizeof arch, "%s", sotto_model_architecture(model));

    /* Frames for `seconds` of output: a "center" model gives hop * (T - 1) samples. */
    const int T = (int)ceil(o.seconds * sr / hop) + 1;
    bench b;
    memset(&b, 0, sizeof b);
    b.T = T;
    b.dim = dim;
    b.out_cap = sotto_vocoder_max_output_samples(voc, T); /* one push of every frame */
    b.wave_cap = (int64_t)(T + 1) * hop + 4096;
    sotto_vocoder_free(voc);
    sotto_model_free(model);
    b.out = malloc(sizeof(float) * b.out_cap);
    float *feat = malloc(sizeof(float) * (size_t)T * (size_t)dim);
    float *offline_wave = malloc(sizeof(float) * (size_t)b.wave_cap);
    thread_result *res = calloc((size_t)o.n_threads, sizeof *res);
    if (!b.out || !feat || !offline_wave || !res) {
        fprintf(stderr, "sotto_bench_vocos: out of memory\n");
        return 1;
    }
    bench_make_features(feat, (int64_t)T * dim);
    b.feat = feat;

    int rc = 0;
    for (int i = 0; i < o.n_threads && !rc; i++) {
        if (!o.json)
            fprintf(stderr, "sotto_bench_vocos: %d thread%s ...\n", o.threads[i],
                    o.threads[i] > 1 ? "s" : "");
        rc = bench_threads(&o, &b, o.threads[i], &res[i], offline_wave, o.dump && i == 0);
    }
    if (rc) return 1;
    const long rss_peak = bench_peak_rss_kb();
    const double audio_s = (double)res[0].samples / sr;

    if (o.json) {
        printf("{\"bench\":\"vocos\",\"side\":\"sotto\",\"sotto_version\":");
        bench_json_string(sotto_version_string());
        printf(",\"model\":");
        bench_json_string(o.model);
        printf(",\"model_name\":");
        bench_json_string(name);
        printf(",\"architecture\":");
        bench_json_string(arch);
        printf(",\"weights_dtype\":");
        bench_json_string(dtype);
        unsigned cf = sotto_cpu_features();
        printf(",\"cpu_features\":\"%s%s%s%s%s\"", cf & SOTTO_CPU_AVX2 ? "avx2 " : "",
               cf & SOTTO_CPU_FMA ? "fma " : "", cf & SOTTO_CPU_F16C ? "f16c" : "",
               cf & SOTTO_CPU_AVX512 ? " avx512" : "", cf & SOTTO_CPU_AVX512FP16 ? " avx512fp16" : "");
        printf(",\"f16_arithmetic\":%d", res[0].f16_math);
        printf(",\"sample_rate\":%d,\"hop\":%d,\"feature_dim\":%d,\"frames\":%d,"
               "\"audio_samples\":%lld,\"audio_seconds\":%.6f,\"lookahead_frames\":%d,"
               "\"lookahead_samples\":%d,\"offline_reps\":%d,\"stream_reps\":%d,"
               "\"offline_max_chunk_frames\":%d,\"use_mmap\":%d,\"peak_rss_kb\":%ld,"
               "\"rss_at_start_kb\":%ld,"
               "\"runs\":[",
               sr, hop, dim, T, (long long)res[0].samples, audio_s, la_frames, la_samples,
               o.reps, o.stream_reps,
               o.offline_chunk ? o.offline_chunk : sotto_vocoder_default_params().max_chunk_frames,
               !o.no_mmap, rss_peak, rss_start);
        for (int i = 0; i < o.n_threads; i++) {
            const thread_result *r = &res[i];
            printf("%s{\"threads\":%d,\"load_s\":%.4f,\"peak_rss_kb\":%ld,\"offline\":{"
                   "\"best_s\":%.6f,\"median_s\":%.6f,\"xrt_best\":%.3f,\"xrt_median\":%.3f,"
                   "\"rtf_median\":%.6f},\"stream\":[",
                   i ? "," : "", r->threads, r->load_s, r->rss_after_kb, r->best_s, r->median_s,
                   audio_s / r->best_s, audio_s / r->median_s, r->median_s / audio_s);
            for (int c = 0; c < o.n_chunks; c++) {
                const stream_result *s = &r->stream[c];
                printf("%s{\"chunk\":%d,\"steps\":%d,\"best_s\":%.6f,\"median_s\":%.6f,"
                       "\"xrt_median\":%.3f,\"rtf_median\":%.6f,\"step_p50_ms\":%.4f,"
                       "\"step_p99_ms\":%.4f,\"step_max_ms\":%.4f,\"flush_ms\":%.4f,"
                       "\"samples\":%lld,\"max_abs_diff_vs_offline\":%.3g}",
                       c ? "," : "", s->chunk, s->steps, s->best_s, s->median_s,
                       audio_s / s->median_s, s->median_s / audio_s, s->p50_ms, s->p99_ms,
                       s->max_ms, s->flush_ms, (long long)s->samples,
                       isfinite(s->max_abs_diff) ? s->max_abs_diff : -1.0);
            }
            printf("]}");
        }
        printf("]}\n");
    } else {
        printf("model %s (%s, weights %s%s): %d Hz, hop %d, %d features; %d frames = %.3f s "
               "of audio; look-ahead %d samples (%.0f ms)\n",
               o.model, name, dtype, res[0].f16_math ? ", binary16 arithmetic" : "", sr, hop,
               dim, T, audio_s, la_samples, 1e3 * la_samples / sr);
        printf("x RT = audio s / compute s (higher is faster); offline: best and median of %d, "
               "streaming: median of %d runs; step = one push call\n\n",
               o.reps, o.stream_reps);
        printf("%-7s %-14s %10s %10s %10s %10s %10s %12s\n", "threads", "case", "x RT", "RTF",
               "step p50", "step p99", "flush", "stream-off");
        printf("%-7s %-14s %10s %10s %10s %10s %10s %12s\n", "", "", "", "", "ms", "ms", "ms",
               "max-abs");
        for (int i = 0; i < o.n_threads; i++) {
            const thread_result *r = &res[i];
            printf("%-7d %-14s %10.2f %10.4f %10s %10s %10s %12s\n", r->threads,
                   "offline best", audio_s / r->best_s, r->best_s / audio_s, "", "", "", "");
            printf("%-7d %-14s %10.2f %10.4f %10s %10s %10s %12s\n", r->threads,
                   "offline median", audio_s / r->median_s, r->median_s / audio_s, "", "", "",
                   "");
            for (int c = 0; c < o.n_chunks; c++) {
                const stream_result *s = &r->stream[c];
                char cs[32];
                snprintf(cs, sizeof cs, "stream %d", s->chunk);
                printf("%-7d %-14s %10.2f %10.4f %10.3f %10.3f %10.3f %12.2g\n", r->threads, cs,
                       audio_s / s->median_s, s->median_s / audio_s, s->p50_ms, s->p99_ms,
                       s->flush_ms, s->max_abs_diff);
            }
        }
        printf("\npeak RSS %.1f MiB (at start %.1f MiB)\n", rss_peak / 1024.0,
               rss_start / 1024.0);
    }
    free(b.out);
    free(feat);
    free(offline_wave);
    free(res);
    return 0;
}
