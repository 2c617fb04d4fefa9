/*
 * sotto_bench_flexicodec_encode: speed and memory of a FlexiCodec GGUF with the encoder and
 * SenseVoice (tools/convert/flexicodec.py --with-encoder --sensevoice) through the public
 * codec encoder API (sotto_codec.h), on a raw float32 16 kHz wave (torch_bench.py prepare
 * writes the one both sides encode).
 *
 * For each thread count it loads the model with that n_threads, creates an encoder
 * (threshold, n_stages, max_seconds = the wave's duration), encodes once untimed (warm-up; the
 * codes can be dumped), then times --reps sotto_encoder_encode calls of the whole wave. It
 * also decodes the encoded groups with a decoder on the same model (--reps push + flush),
 * so that encode + decode of the utterance is measured at the same thread count. Median and
 * best are reported. Speed is "x real time" = audio seconds / compute seconds. Peak RSS is
 * the process's getrusage() maximum.
 *
 * --dump FILE writes the codes: int32 G, n_stages, then lengths[G], fsq[G], rvq[G][n_stages].
 *
 * usage: sotto_bench_flexicodec_encode -m MODEL.gguf -w WAVE.f32 [--threads 1,2] [--reps N]
 *                                      [--stages N] [--threshold T] [--json] [--dump FILE]
 */
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
#define PROG "sotto_bench_flexicodec_encode"

typedef struct options {
    const char *model, *wave, *dump;
    int threads[MAX_LIST], n_threads;
    int reps, stages, json;
    int f16_math; /* --f16-arithmetic: f16_arithmetic = 2 (encoder and decoder) */
    float threshold;
} options;

typedef struct thread_result {
    int threads;
    int f16_math; /* sotto_model_f16_arithmetic of the loaded model */
    double load_s, warmup_s, best_s, median_s, dec_best_s, dec_median_s;
    int groups, frames;
    long rss_after_load_kb, rss_after_kb;
} thread_result;

static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->threads[0] = 1;
    o->threads[1] = 2;
    o->n_threads = 2;
    o->reps = 3;
    o->stages = 7;
    o->threshold = 0.91f;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: " PROG " -m MODEL.gguf -w WAVE.f32 [--threads 1,2] [--reps N]\n"
                   "       [--stages N] [--threshold T] [--json] [--dump FILE] [--f16-arithmetic]\n"
                   "Times sotto_encoder_encode of the whole wave (raw float32, 16 kHz) per\n"
                   "thread count (and the decode of its groups); x RT = audio s / compute s.\n"
                   "--f16-arithmetic loads with f16_arithmetic = 2 (binary16 products in the\n"
                   "encoder and decoder on CPUs with AVX512-FP16; f16 models only).\n");
            exit(0);
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has) {
            o->model = argv[++i];
        } else if ((!strcmp(a, "-w") || !strcmp(a, "--wave")) && has) {
            o->wave = argv[++i];
        } else if (!strcmp(a, "--threads") && has) {
            o->n_threads = bench_parse_list(argv[++i], o->threads, MAX_LIST, 64);
        } else if (!strcmp(a, "--reps") && has) {
            o->reps = atoi(argv[++i]);
        } else if (!strcmp(a, "--stages") && has) {
            o->stages = atoi(argv[++i]);
        } else if (!strcmp(a, "--threshold") && has) {
            o->threshold = (float)atof(argv[++i]);
        } else if (!strcmp(a, "--f16-arithmetic")) {
            o->f16_math = 1;
        } else if (!strcmp(a, "--json")) {
            o->json = 1;
        } else if (!strcmp(a, "--dump") && has) {
            o->dump = argv[++i];
        } else {
            fprintf(stderr, PROG ": unknown option or missing value: %s\n", a);
            return -1;
        }
    }
    if (!o->model || !o->wave || o->n_threads <= 0 || o->reps < 1 || o->stages < 0) {
        fprintf(stderr, PROG ": -m MODEL and -w WAVE are required; bad option value?\n");
        return -1;
    }
    return 0;
}

static float *read_wave(const char *path, int64_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    float *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long sz = ftell(f);
        if (sz > 0 && fseek(f, 0, SEEK_SET) == 0) {
            *n = sz / (long)sizeof(float);
            buf = malloc((size_t)*n * sizeof(float));
            if (buf && fread(buf, sizeof(float), (size_t)*n, f) != (size_t)*n) {
                free(buf);
                buf = NULL;
            }
        }
    }
    fclose(f);
    return buf;
}

static int dump_codes(const char *path, const sotto_encoder_groups *g)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int32_t head[2] = {g->n_groups, g->n_stages};
    size_t G = (size_t)g->n_groups, S = (size_t)g->n_stages;
    int ok = fwrite(head, sizeof(int32_t), 2, f) == 2 &&
             fwrite(g->lengths, sizeof(int32_t), G, f) == G &&
             fwrite(g->fsq, sizeof(int32_t), G, f) == G &&
             (G * S == 0 || fwrite(g->rvq, sizeof(int32_t), G * S, f) == G * S);
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

static int bench_threads(const options *o, const float *pcm, int64_t n, int threads,
                         thread_result *r, int dump_now)
{
    sotto_status st;
    sotto_model *model = NULL;
    sotto_encoder *enc = NULL;
    sotto_decoder *dec = NULL;
    double *runs = NULL, *druns = NULL;
    float *out = NULL;
    int rc = -1;
    memset(r, 0, sizeof *r);
    r->threads = threads;

    sotto_model_params mp = sotto_model_default_params();
    mp.n_threads = threads;
    mp.f16_arithmetic = o->f16_math ? 2 : 0;
    double t0 = bench_now_s();
    if (sotto_model_load_file(o->model, &mp, &model, &st) != SOTTO_OK) {
        fprintf(stderr, PROG ": %s: %s\n", o->model, st.message);
        return -1;
    }
    r->load_s = bench_now_s() - t0;
    r->rss_after_load_kb = bench_peak_rss_kb();
    r->f16_math = sotto_model_f16_arithmetic(model);
    sotto_encoder_params ep = sotto_encoder_default_params();
    ep.threshold = o->threshold;
    ep.n_stages = o->stages;
    ep.max_seconds = (double)n / 16000.0 + 1.0;
    if (sotto_encoder_create(model, &ep, &enc, &st) != SOTTO_OK) {
        fprintf(stderr, PROG ": encoder: %s\n", st.message);
        goto done;
    }
    sotto_encoder_groups g;
    t0 = bench_now_s();
    if (sotto_encoder_encode(enc, pcm, n, &g) < 0) {
        fprintf(stderr, PROG ": encode failed: %s\n", sotto_encoder_last_error(enc));
        goto done;
    }
    r->warmup_s = bench_now_s() - t0;
    r->groups = g.n_groups;
    r->frames = g.n_frames;
    if (dump_now && dump_codes(o->dump, &g)) {
        fprintf(stderr, PROG ": cannot write %s\n", o->dump);
        goto done;
    }
    runs = malloc(sizeof(double) * (size_t)o->reps);
    druns = malloc(sizeof(double) * (size_t)o->reps);
    if (!runs || !druns) goto done;
    for (int i = 0; i < o->reps; i++) {
        t0 = bench_now_s();
        if (sotto_encoder_encode(enc, pcm, n, &g) < 0) {
            fprintf(stderr, PROG ": encode failed: %s\n", sotto_encoder_last_error(enc));
            goto done;
        }
        runs[i] = bench_now_s() - t0;
    }
    r->median_s = bench_median(runs, o->reps);
    r->best_s = runs[0];

    /* decode of the same groups (the last encode's), same model and thread count */
    sotto_decoder_params dp = sotto_decoder_default_params();
    dp.max_frames = g.n_frames;
    dp.max_groups = g.n_groups;
    if (sotto_decoder_create(model, &dp, &dec, &st) != SOTTO_OK) {
        fprintf(stderr, PROG ": decoder: %s\n", st.message);
        goto done;
    }
    size_t cap = (size_t)g.n_frames * (size_t)sotto_decoder_hop_samples(dec) + 16;
    out = malloc(sizeof(float) * cap);
    if (!out) goto done;
    for (int i = -1; i < o->reps; i++) { /* i = -1: warm-up */
        if (sotto_decoder_reset(dec) != SOTTO_OK) goto done;
        t0 = bench_now_s();
        if (sotto_decoder_push(dec, g.lengths, g.fsq, g.rvq, g.n_groups, g.n_stages) !=
                SOTTO_OK ||
            sotto_decoder_flush(dec, out, cap) < 0) {
            fprintf(stderr, PROG ": decode failed: %s\n", sotto_decoder_last_error(dec));
            goto done;
        }
        if (i >= 0) druns[i] = bench_now_s() - t0;
    }
    r->dec_median_s = bench_median(druns, o->reps);
    r->dec_best_s = druns[0];
    r->rss_after_kb = bench_peak_rss_kb();
    rc = 0;
done:
    free(out);
    free(runs);
    free(druns);
    sotto_decoder_free(dec);
    sotto_encoder_free(enc);
    sotto_model_free(model);
    return rc;
}

int main(int argc, char **argv)
{
    options o;
    if (parse_args(argc, argv, &o)) return 2;
    int64_t n = 0;
    float *pcm = read_wave(o.wave, &n);
    if (!pcm || n < 1) {
        fprintf(stderr, PROG ": cannot read %s\n", o.wave);
        return 1;
    }
    thread_result *res = calloc((size_t)o.n_threads, sizeof *res);
    if (!res) return 1;
    int rc = 0;
    for (int i = 0; i < o.n_threads && !rc; i++) {
        if (!o.json)
            fprintf(stderr, PROG ": %d thread%s ...\n", o.threads[i], o.threads[i] > 1 ? "s" : "");
        rc = bench_threads(&o, pcm, n, o.threads[i], &res[i], o.dump && i == 0);
    }
    if (rc) return 1;
    const double audio_s = (double)n / 16000.0;
    const long rss_peak = bench_peak_rss_kb();
    if (o.json) {
        unsigned cf = sotto_cpu_features();
        printf("{\"bench\":\"flexicodec_encode\",\"side\":\"sotto\",\"sotto_version\":\"%s\","
               "\"cpu_features\":\"%s%s%s%s%s\",\"f16_arithmetic\":%d,\"audio_samples\":%lld,\"audio_seconds\":%.6f,"
               "\"threshold\":%.4f,\"stages\":%d,\"groups\":%d,\"frames\":%d,\"reps\":%d,"
               "\"peak_rss_kb\":%ld,\"runs\":[",
               sotto_version_string(), cf & SOTTO_CPU_AVX2 ? "avx2 " : "",
               cf & SOTTO_CPU_FMA ? "fma " : "", cf & SOTTO_CPU_F16C ? "f16c" : "",
               cf & SOTTO_CPU_AVX512 ? " avx512" : "",
               cf & SOTTO_CPU_AVX512FP16 ? " avx512fp16" : "", res[0].f16_math, (long long)n, audio_s, (double)o.threshold, o.stages, res[0].groups,
               res[0].frames, o.reps, rss_peak);
        for (int i = 0; i < o.n_threads; i++) {
            const thread_result *r = &res[i];
            printf("%s{\"threads\":%d,\"load_s\":%.4f,\"warmup_s\":%.6f,\"best_s\":%.6f,"
                   "\"median_s\":%.6f,\"xrt_median\":%.3f,\"decode_best_s\":%.6f,"
                   "\"decode_median_s\":%.6f,\"decode_xrt_median\":%.3f,"
                   "\"rss_after_load_kb\":%ld,\"peak_rss_kb\":%ld}",
                   i ? "," : "", r->threads, r->load_s, r->warmup_s, r->best_s, r->median_s,
                   audio_s / r->median_s, r->dec_best_s, r->dec_median_s,
                   audio_s / r->dec_median_s, r->rss_after_load_kb, r->rss_after_kb);
        }
        printf("]}\n");
    } else {
        printf("%.3f s of audio -> %d groups (%d frames), %d stages, threshold %.2f\n", audio_s,
               res[0].groups, res[0].frames, o.stages, (double)o.threshold);
        printf("%-8s %10s %10s %10s %12s %10s\n", "threads", "enc med s", "enc x RT",
               "dec med s", "enc+dec s", "e+d x RT");
        for (int i = 0; i < o.n_threads; i++) {
            const thread_result *r = &res[i];
            double ed = r->median_s + r->dec_median_s;
            printf("%-8d %10.3f %10.2f %10.3f %12.3f %10.2f\n", r->threads, r->median_s,
                   audio_s / r->median_s, r->dec_median_s, ed, audio_s / ed);
        }
        printf("peak RSS %.1f MiB\n", rss_peak / 1024.0);
    }
    free(res);
    free(pcm);
    return 0;
}
