/*
 * sotto_bench_flexicodec_decode: speed and memory of a FlexiCodec GGUF through the public
 * codec decoder API (sotto_codec.h).
 *
 * Generates deterministic pseudo-random codes for a given duration (the same generator as
 * torch_bench.py, so both sides decode identical codes): groups of 1..max_group_length
 * frames until the frame count is reached (the last group shortened to fit), one FSQ index
 * and n_stages RVQ codes per group. For each thread count it loads the model with that
 * n_threads, creates a decoder sized to the utterance (max_frames = its frames), decodes once
 * untimed (warm-up; the output can be dumped), then times --reps decodes of the whole
 * utterance: reset, one push of every group, flush. The push only buffers codes; the flush
 * runs the whole decode_from_codes chain. Median and best are reported.
 *
 * With --gpu N the model is loaded with backend SOTTO_BACKEND_CUDA on device N: each
 * decoder runs the bottleneck transformer and the DAC decoder on the GPU in f32, whatever the
 * file's dtype (docs/gpu.md, "Choosing the backend"), and the group stages on the CPU with
 * n_threads. The timed decode is the same call, so it includes moving the latent to the
 * device and the samples back. A missing device (or a build without the CUDA backend) makes
 * the load fail with SOTTO_ERR_DEVICE: the program says so and exits with status 3.
 *
 * Speed is "x real time" = audio seconds / compute seconds (higher is faster); RTF is its
 * inverse. Peak RSS is the process's getrusage() maximum (host memory only; device memory is
 * not measured). Timings use the monotonic wall clock, so anything else running on the
 * machine shows up in them.
 *
 * usage: sotto_bench_flexicodec_decode -m MODEL.gguf [--seconds S] [--threads 1,2]
 *                                      [--reps N] [--stages N] [--gpu N] [--json]
 *                                      [--no-mmap] [--dump FILE]
 * exit status: 0 done, 1 failed, 2 bad usage, 3 the CUDA device of --gpu is missing.
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
#include "sotto/sotto_codec.h"

#define MAX_LIST 16
#define PROG "sotto_bench_flexicodec_decode"
#define EXIT_NO_DEVICE 3 /* --gpu N: SOTTO_ERR_DEVICE at load */

typedef struct options {
    const char *model;
    double seconds;
    int threads[MAX_LIST], n_threads;
    int reps;
    int stages;
    int json;
    int no_mmap;
    int f16_math; /* --f16-arithmetic */
    int gpu;      /* --gpu N: the CUDA device; -1: the CPU (the default) */
    const char *dump;
} options;

typedef struct thread_result {
    int f16_math; /* sotto_model_f16_arithmetic of the loaded model */
    int threads;
    double load_s;   /* sotto_model_load_file */
    double create_s; /* sotto_decoder_create */
    double warmup_s; /* the untimed first decode */
    double best_s, median_s;
    int64_t samples;
    long rss_after_load_kb; /* peak RSS after loading the model (process-wide maximum) */
    long rss_after_kb;      /* peak RSS after this thread count's runs */
} thread_result;

/* The codes of one utterance. */
typedef struct codes {
    int G, T, n_stages;
    int32_t *lengths, *fsq, *rvq;
} codes;

/*
 * The shared code generator: a 32-bit LCG (Numerical Recipes constants), one step per value,
 * the value taken from the high bits (the LCG's best): per group, in this order,
 *   length = 1 + (s >> 29) % max_len    (the last group is clamped to the frames left)
 *   fsq    = (s >> 17) % fsq_size        (15 bits for the release: 32768 indices)
 *   rvq[q] = (s >> 20) % codebook_size   (12 bits: 4096 codes), q = 0..n_stages-1
 * until T frames are covered. torch_bench.py `make_codes` is the same function.
 */
static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s;
}

static int make_codes(codes *c, int T, int max_len, int32_t fsq_size, int codebook_size,
                      int n_stages)
{
    memset(c, 0, sizeof *c);
    c->lengths = malloc(sizeof(int32_t) * (size_t)T);
    c->fsq = malloc(sizeof(int32_t) * (size_t)T);
    c->rvq = malloc(sizeof(int32_t) * (size_t)T * (size_t)(n_stages > 0 ? n_stages : 1));
    if (!c->lengths || !c->fsq || !c->rvq) return -1;
    c->n_stages = n_stages;
    uint32_t s = 12345u;
    int t = 0, g = 0;
    while (t < T) {
        int len = 1 + (int)((lcg(&s) >> 29) % (uint32_t)max_len);
        if (len > T - t) len = T - t;
        c->lengths[g] = len;
        c->fsq[g] = (int32_t)((lcg(&s) >> 17) % (uint32_t)fsq_size);
        for (int q = 0; q < n_stages; q++)
            c->rvq[(size_t)g * (size_t)n_stages + (size_t)q] =
                (int32_t)((lcg(&s) >> 20) % (uint32_t)codebook_size);
        t += len;
        g++;
    }
    c->G = g;
    c->T = T;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: " PROG " -m MODEL.gguf [options]\n"
               "\n"
               "Times a FlexiCodec model through the public codec decoder API on deterministic\n"
               "random codes: one push of every group + flush (the whole decode), per thread\n"
               "count. Speed is x real time (audio s / compute s); RTF = compute / audio.\n"
               "\n"
               "options:\n"
               "  -m, --model FILE      flexicodec GGUF model (required)\n"
               "  --seconds S           audio duration: round(S * 12.5) frames (default 10)\n"
               "  --threads LIST        n_threads values, comma-separated (default 1,2)\n"
               "  --reps N              timed decodes per thread count, after one untimed\n"
               "                        warm-up (default 5)\n"
               "  --stages N            RVQ stages per group (default 7; at most the model's)\n"
               "  --gpu N               load with backend CUDA on device N: the transformer and\n"
               "                        the DAC decoder run there (f32); --threads still sets\n"
               "                        the CPU threads of the rest. Exit status 3 when the\n"
               "                        device is missing\n"
               "  --no-mmap             load the model with use_mmap = 0 (read, not mapped)\n"
               "  --f16-arithmetic      load with f16_arithmetic = 1 (binary16 products on\n"
               "                        CPUs with AVX512-FP16; f16 models only)\n"
               "  --json                one JSON object on stdout instead of the table\n"
               "  --dump FILE           write the decoded waveform (raw float32) of the first\n"
               "                        thread count's warm-up decode to FILE\n"
               "  -h, --help            this text\n");
}

static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->seconds = 10.0;
    o->threads[0] = 1;
    o->threads[1] = 2;
    o->n_threads = 2;
    o->reps = 5;
    o->stages = 7;
    o->gpu = -1;
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
            o->n_threads = bench_parse_list(argv[++i], o->threads, MAX_LIST, 64);
        } else if (!strcmp(a, "--reps") && has) {
            o->reps = atoi(argv[++i]);
        } else if (!strcmp(a, "--stages") && has) {
            o->stages = atoi(argv[++i]);
        } else if (!strcmp(a, "--gpu") && has) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (end == argv[i] || *end || v < 0 || v > 1024) {
                fprintf(stderr, PROG ": --gpu takes a device index (0, 1, ...), not '%s'\n",
                        argv[i]);
                return -1;
            }
            o->gpu = (int)v;
        } else if (!strcmp(a, "--json")) {
            o->json = 1;
        } else if (!strcmp(a, "--no-mmap")) {
            o->no_mmap = 1;
        } else if (!strcmp(a, "--f16-arithmetic")) {
            o->f16_math = 1;
        } else if (!strcmp(a, "--dump") && has) {
            o->dump = argv[++i];
        } else {
            fprintf(stderr, PROG ": unknown option or missing value: %s\n", a);
            return -1;
        }
    }
    if (!o->model) {
        fprintf(stderr, PROG ": -m MODEL is required (see --help)\n");
        return -1;
    }
    if (o->n_threads <= 0 || o->reps < 1 || o->stages < 0 ||
        !(o->seconds >= 0.08 && o->seconds <= 3600)) {
        fprintf(stderr, PROG ": bad option value (see --help)\n");
        return -1;
    }
    return 0;
}

/* The load parameters of every load: the backend of --gpu, and the CPU's n_threads. */
static sotto_model_params model_params(const options *o, int threads)
{
    sotto_model_params mp = sotto_model_default_params();
    mp.n_threads = threads;
    mp.use_mmap = !o->no_mmap;
    mp.f16_arithmetic = o->f16_math;
    if (o->gpu >= 0) {
        mp.backend = SOTTO_BACKEND_CUDA;
        mp.device = o->gpu;
    }
    return mp;
}

/* Loads the model; on failure says why and returns the exit status (EXIT_NO_DEVICE when the
 * CUDA device of --gpu is missing, else 1). With --gpu the model must run on CUDA. */
static int load_model(const options *o, const sotto_model_params *mp, sotto_model **model)
{
    sotto_status st;
    *model = NULL;
    if (sotto_model_load_file(o->model, mp, model, &st) != SOTTO_OK) {
        if (st.code == SOTTO_ERR_DEVICE && o->gpu >= 0) {
            fprintf(stderr, PROG ": --gpu %d: no CUDA device to run on: %s\n", o->gpu, st.message);
            return EXIT_NO_DEVICE;
        }
        fprintf(stderr, PROG ": %s: %s\n", o->model, st.message);
        return 1;
    }
    if (o->gpu >= 0 && sotto_model_backend(*model) != SOTTO_BACKEND_CUDA) {
        fprintf(stderr, PROG ": --gpu %d: %s loaded, but runs on the CPU (no CUDA path for it)\n",
                o->gpu, o->model);
        sotto_model_free(*model);
        *model = NULL;
        return 1;
    }
    return 0;
}

/* One decode of the whole utterance: reset, push every group, flush. Returns seconds, or
 * -1 (the reason in sotto_decoder_last_error). */
static double decode_once(sotto_decoder *dec, const codes *c, float *out, size_t cap,
                          int64_t *n_out)
{
    if (sotto_decoder_reset(dec) != SOTTO_OK) return -1;
    double t0 = bench_now_s();
    if (sotto_decoder_push(dec, c->lengths, c->fsq, c->rvq, c->G, c->n_stages) != SOTTO_OK)
        return -1;
    int n = sotto_decoder_flush(dec, out, cap);
    double dt = bench_now_s() - t0;
    if (n < 0) return -1;
    *n_out = n;
    return dt;
}

/* Everything for one thread count. Returns 0 or the exit status. */
static int bench_threads(const options *o, const codes *c, float *out, size_t cap, int threads,
                         thread_result *r, int dump_now)
{
    sotto_status st;
    sotto_model *model = NULL;
    sotto_decoder *dec = NULL;
    double *runs = NULL;
    int rc = 1;
    memset(r, 0, sizeof *r);
    r->threads = threads;

    const sotto_model_params mp = model_params(o, threads);
    double t0 = bench_now_s();
    int lrc = load_model(o, &mp, &model);
    if (lrc) return lrc;
    r->f16_math = sotto_model_f16_arithmetic(model);
    r->load_s = bench_now_s() - t0;
    r->rss_after_load_kb = bench_peak_rss_kb();
    sotto_decoder_params dp = sotto_decoder_default_params();
    dp.max_frames = c->T;
    dp.max_groups = c->G;
    t0 = bench_now_s();
    if (sotto_decoder_create(model, &dp, &dec, &st) != SOTTO_OK) {
        fprintf(stderr, PROG ": %s: %s\n", o->model, st.message);
        goto done;
    }
    r->create_s = bench_now_s() - t0;

    int64_t n = 0;
    r->warmup_s = decode_once(dec, c, out, cap, &n);
    if (r->warmup_s < 0) {
        fprintf(stderr, PROG ": decode failed: %s\n", sotto_decoder_last_error(dec));
        goto done;
    }
    r->samples = n;
    if (dump_now) {
        FILE *f = fopen(o->dump, "wb");
        if (!f || fwrite(out, sizeof(float), (size_t)n, f) != (size_t)n) {
            fprintf(stderr, PROG ": cannot write %s\n", o->dump);
            if (f) fclose(f);
            goto done;
        }
        if (fclose(f) != 0) {
            fprintf(stderr, PROG ": cannot write %s\n", o->dump);
            goto done;
        }
    }
    runs = malloc(sizeof(double) * (size_t)o->reps);
    if (!runs) {
        fprintf(stderr, PROG ": out of memory\n");
        goto done;
    }
    for (int i = 0; i < o->reps; i++) {
        runs[i] = decode_once(dec, c, out, cap, &n);
        if (runs[i] < 0 || n != r->samples) {
            fprintf(stderr, PROG ": decode failed: %s\n", sotto_decoder_last_error(dec));
            goto done;
        }
    }
    r->median_s = bench_median(runs, o->reps);
    r->best_s = runs[0];
    r->rss_after_kb = bench_peak_rss_kb();
    rc = 0;
done:
    free(runs);
    sotto_decoder_free(dec);
    sotto_model_free(model);
    return rc;
}

/* The dtype of the DAC decoder's first residual-unit conv: what "f32" / "f16" model means. */
static const char *weights_dtype(const sotto_model *m)
{
    const char *first = "?";
    int64_t n = sotto_model_tensor_count(m);
    for (int64_t i = 0; i < n; i++) {
        sotto_tensor_info ti;
        if (sotto_model_tensor_info(m, i, &ti) != SOTTO_OK || ti.n_dims < 2) continue;
        if (strstr(ti.name, "bottleneck_transformer") && strstr(ti.name, "weight")) return ti.dtype;
        if (!strcmp(first, "?")) first = ti.dtype;
    }
    return first;
}

int main(int argc, char **argv)
{
    options o;
    if (parse_args(argc, argv, &o)) return 2;

    /* Probe the model once for its sizes (with --gpu on the device: a missing one stops the
     * program here). */
    sotto_status st;
    sotto_model *model = NULL;
    sotto_decoder *dec = NULL;
    long rss_start = bench_peak_rss_kb();
    const sotto_model_params probe =
        o.gpu >= 0 ? model_params(&o, 1) : sotto_model_default_params();
    const int lrc = load_model(&o, &probe, &model);
    if (lrc) return lrc;
    sotto_decoder_params dp = sotto_decoder_default_params();
    dp.max_frames = 8; /* small: only the sizes are needed here */
    if (sotto_decoder_create(model, &dp, &dec, &st) != SOTTO_OK) {
        fprintf(stderr, PROG ": %s: %s\n", o.model, st.message);
        sotto_model_free(model);
        return 1;
    }
    const int sr = sotto_decoder_sample_rate_hz(dec), hop = sotto_decoder_hop_samples(dec);
    const int max_len = sotto_decoder_max_group_length(dec);
    const int32_t fsq_size = sotto_decoder_fsq_size(dec);
    const int cb = sotto_decoder_codebook_size(dec);
    const int model_stages = sotto_decoder_max_stages(dec);
    const int n_stages = o.stages < model_stages ? o.stages : model_stages;
    char name[128], dtype[16], arch[32];
    snprintf(name, sizeof name, "%s", sotto_model_name(model));
    snprintf(dtype, sizeof dtype, "%s", weights_dtype(model));
    snprintf(arch, sizeof arch, "%s", sotto_model_architecture(model));
    sotto_decoder_free(dec);
    sotto_model_free(model);
    if (sr <= 0 || hop <= 0 || max_len < 1 || fsq_size < 1 || cb < 1) {
        fprintf(stderr, PROG ": %s: unexpected model sizes\n", o.model);
        return 1;
    }

    /* Frames for `seconds` of audio at sr / hop frames per second (12.5 Hz). */
    int T = (int)lround(o.seconds * sr / hop);
    if (T < 1) T = 1;
    codes c;
    if (make_codes(&c, T, max_len, fsq_size, cb, n_stages)) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    const size_t cap = (size_t)T * (size_t)hop; /* the output is hop * T - 16 samples */
    float *out = malloc(sizeof(float) * cap);
    thread_result *res = calloc((size_t)o.n_threads, sizeof *res);
    if (!out || !res) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }

    int rc = 0;
    for (int i = 0; i < o.n_threads && !rc; i++) {
        if (!o.json)
            fprintf(stderr, PROG ": %d thread%s ...\n", o.threads[i], o.threads[i] > 1 ? "s" : "");
        rc = bench_threads(&o, &c, out, cap, o.threads[i], &res[i], o.dump && i == 0);
    }
    if (rc) return rc;
    const long rss_peak = bench_peak_rss_kb();
    const double audio_s = (double)res[0].samples / sr;

    if (o.json) {
        printf("{\"bench\":\"flexicodec_decode\",\"side\":\"sotto\",\"sotto_version\":");
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
               cf & SOTTO_CPU_AVX512 ? " avx512" : "",
               cf & SOTTO_CPU_AVX512FP16 ? " avx512fp16" : "");
        printf(",\"f16_arithmetic\":%d", res[0].f16_math);
        if (o.gpu >= 0)
            printf(",\"backend\":\"cuda\",\"device\":%d", o.gpu);
        else
            printf(",\"backend\":\"cpu\"");
        printf(",\"sample_rate\":%d,\"hop\":%d,\"frames\":%d,\"groups\":%d,\"stages\":%d,"
               "\"model_stages\":%d,\"fsq_size\":%d,\"codebook_size\":%d,"
               "\"max_group_length\":%d,\"audio_samples\":%lld,\"audio_seconds\":%.6f,"
               "\"reps\":%d,\"use_mmap\":%d,\"peak_rss_kb\":%ld,\"rss_at_start_kb\":%ld,"
               "\"runs\":[",
               sr, hop, c.T, c.G, n_stages, model_stages, (int)fsq_size, cb, max_len,
               (long long)res[0].samples, audio_s, o.reps, !o.no_mmap, rss_peak, rss_start);
        for (int i = 0; i < o.n_threads; i++) {
            const thread_result *r = &res[i];
            printf("%s{\"threads\":%d,\"load_s\":%.4f,\"create_s\":%.4f,\"warmup_s\":%.6f,"
                   "\"best_s\":%.6f,\"median_s\":%.6f,\"xrt_best\":%.3f,\"xrt_median\":%.3f,"
                   "\"rtf_median\":%.6f,\"rss_after_load_kb\":%ld,\"peak_rss_kb\":%ld}",
                   i ? "," : "", r->threads, r->load_s, r->create_s, r->warmup_s, r->best_s,
                   r->median_s, audio_s / r->best_s, audio_s / r->median_s, r->median_s / audio_s,
                   r->rss_after_load_kb, r->rss_after_kb);
        }
        printf("]}\n");
    } else {
        printf("model %s (%s, weights %s): %d Hz, hop %d; %d frames in %d groups (%.2f "
               "frames/group), %d of %d RVQ stages (codebooks of %d); %.3f s of audio\n",
               o.model, name, dtype, sr, hop, c.T, c.G, (double)c.T / c.G, n_stages, model_stages,
               cb, audio_s);
        if (o.gpu >= 0)
            printf("backend: CUDA device %d (transformer and DAC decoder, f32); threads: the "
                   "CPU's, for the group stages\n",
                   o.gpu);
        else
            printf("backend: CPU\n");
        printf("x RT = audio s / compute s (higher is faster); one decode = push + flush; "
               "best and median of %d after a warm-up\n\n",
               o.reps);
        printf("%-8s %8s %10s %10s %10s %10s %10s\n", "threads", "load s", "warm-up s", "best s",
               "median s", "x RT", "RTF");
        for (int i = 0; i < o.n_threads; i++) {
            const thread_result *r = &res[i];
            printf("%-8d %8.2f %10.3f %10.3f %10.3f %10.2f %10.4f\n", r->threads, r->load_s,
                   r->warmup_s, r->best_s, r->median_s, audio_s / r->median_s,
                   r->median_s / audio_s);
        }
        printf("\npeak RSS %.1f MiB (at start %.1f MiB, after the first load %.1f MiB)\n",
               rss_peak / 1024.0, rss_start / 1024.0, res[0].rss_after_load_kb / 1024.0);
    }
    free(out);
    free(res);
    free(c.lengths);
    free(c.fsq);
    free(c.rvq);
    return 0;
}
