/*
 * `sotto bench -m MODEL [IN]`: measures a model on this machine through the public API. A
 * vocoder model: analysis–synthesis offline (one call) and streamed in chunks of N frames
 * (speed and per-call latency); a codec model: encode and decode speed. At each thread count,
 * each figure is the median of --reps timed runs after one untimed warm-up. The input is IN
 * or a deterministic synthetic speech-like signal (see synth_speech).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"
#include "sotto/sotto.h"
#include "sotto/sotto_audio.h"
#include "sotto/sotto_codec.h"
#include "sotto/sotto_vocoder.h"

#define CMD "bench"
#define MAX_LIST 16
#define MAX_REPS 100

static void usage(FILE *f)
{
    fprintf(f, "usage: sotto bench -m MODEL [INPUT] [options]\n"
               "\n"
               "Measures MODEL on this machine through the public API. A vocoder model:\n"
               "analysis-synthesis offline (one call) and streamed in chunks of N frames, as\n"
               "x real time and per-call latency (p50, p99), and its look-ahead. A codec model\n"
               "(with the encoder): encode and decode speed as x real time. INPUT (any format,\n"
               "resampled to the model's rate) or, without it, a deterministic synthetic\n"
               "speech-like signal. Each figure is the median of --reps timed runs after one\n"
               "untimed warm-up.\n"
               "\n"
               "options:\n"
               "  -m, --model FILE    vocoder or codec model (required)\n"
               "  --seconds S         length of the synthetic input, 0.1..3600 (default 10)\n"
               "  --threads LIST      thread counts, comma-separated, each 1..64 (default 1)\n"
               "  --reps N            timed runs per figure, 1..100 (default 3)\n"
               "  --chunks LIST       streaming chunk sizes in frames, each 1..4096 (default\n"
               "                      1,4,16; vocoder models)\n"
               "  --f16-arithmetic    binary16 arithmetic where the CPU has AVX512-FP16 (f16\n"
               "                      models; vocoders and decoders, and codec encoders)\n"
               "  --json              the results as one JSON object on stdout\n"
               "  -h, --help          this text\n"
               "\n"
               "Exit codes: 0 done, 2 usage, 3 input, 4 model (missing, unloadable, or neither\n"
               "a vocoder nor a codec with the encoder), 6 processing failed.\n");
}

/* Parses "1,2,4" into out (each lo..hi); returns the count, or -1. */
static int parse_list(const char *s, int lo, int hi, int *out)
{
    int n = 0;
    const char *p = s;
    for (;;) {
        char *end = NULL;
        long v = strtol(p, &end, 10);
        if (end == p || v < lo || v > hi || n == MAX_LIST) return -1;
        out[n++] = (int)v;
        if (*end == '\0') return n;
        if (*end != ',') return -1;
        p = end + 1;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile (0..1, nearest rank) of n values; sorts v. */
static double quantile(double *v, int n, double q)
{
    if (n <= 0) return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int k = (int)ceil(q * n) - 1;
    return v[k < 0 ? 0 : k >= n ? n - 1 : k];
}

/*
 * The synthetic input: a deterministic speech-like signal at rate sr. A glottal pulse train
 * (F0 gliding 110..170 Hz with 5 Hz vibrato) through three two-pole formant resonators whose
 * frequencies switch every 200 ms among five vowels (/a e i o u/), under a 4 Hz syllable
 * envelope, with 1 % white noise from a fixed-seed LCG; peak about 0.5.
 */
static void synth_speech(float *x, int64_t n, int sr)
{
    static const double formants[5][3] = {{730, 1090, 2440}, {530, 1840, 2480},
                                           {270, 2290, 3010}, {570, 840, 2410},
                                           {300, 870, 2240}};
    static const double bw[3] = {80, 100, 120};
    const double pi = 3.14159265358979323846;
    double y1[3] = {0}, y2[3] = {0}, phase = 0, peak = 1e-9;
    uint32_t seed = 12345u;
    for (int64_t i = 0; i < n; i++) {
        const double t = (double)i / sr;
        const double f0 = 140 + 30 * sin(2 * pi * 0.3 * t) + 3 * sin(2 * pi * 5 * t);
        phase += f0 / sr;
        double src = 0;
        if (phase >= 1) {
            phase -= 1;
            src = 1;
        }
        seed = seed * 1664525u + 1013904223u;
        src += 0.01 * ((double)(seed >> 8) / 8388608.0 - 1.0);
        const double *f = formants[(int)(t / 0.2) % 5];
        double out = 0;
        for (int k = 0; k < 3; k++) {
            const double r = exp(-pi * bw[k] / sr), c = 2 * r * cos(2 * pi * f[k] / sr);
            const double y = (1 - r) * src + c * y1[k] - r * r * y2[k];
            y2[k] = y1[k];
            y1[k] = y;
            out += y;
        }
        const double env = 0.55 - 0.45 * cos(2 * pi * 4 * t);
        x[i] = (float)(out * env);
        if (fabs(x[i]) > peak) peak = fabs(x[i]);
    }
    for (int64_t i = 0; i < n; i++) x[i] = (float)(x[i] * (0.5 / peak));
}

typedef struct row {
    int threads;
    const char *mode; /* offline, streaming, encode, decode */
    int chunk;        /* frames per call (streaming), 0 otherwise */
    double xrt;       /* audio seconds / processing seconds (median over reps) */
    double p50_ms, p99_ms; /* per-call latency (vocoder rows); -1 when not measured */
} row;

typedef struct bench {
    row rows[2 * MAX_LIST * (MAX_LIST + 1)];
    int n_rows;
    int reps;
} bench;

/* Analysis–synthesis of x at one thread count: offline, then each chunk size. */
static int bench_vocoder(sotto_vocoder *voc, const float *x, int64_t n, int threads,
                         const int *chunks, int n_chunks, bench *b)
{
    const int sr = sotto_vocoder_sample_rate_hz(voc), hop = sotto_vocoder_hop_samples(voc);
    const int64_t frames = n / hop + 1;
    int max_chunk = 1;
    for (int c = 0; c < n_chunks; c++) max_chunk = chunks[c] > max_chunk ? chunks[c] : max_chunk;
    const size_t cap = sotto_vocoder_max_output_samples(voc, (int)frames + max_chunk + 8);
    float *out = malloc(sizeof(float) * cap);
    double *lat = malloc(sizeof(double) * (size_t)(frames + 2) * (size_t)b->reps);
    double xrts[MAX_REPS];
    const double dur = (double)n / sr;
    int rc = CLI_OK;
    if (!out || !lat) {
        cli_error(CMD, "out of memory");
        rc = CLI_ERR_RUNTIME;
        goto done;
    }
    for (int c = -1; c < n_chunks; c++) { /* -1: offline */
        const int64_t step = c < 0 ? n : (int64_t)chunks[c] * hop;
        int n_lat = 0;
        for (int r = -1; r < b->reps; r++) { /* -1: untimed warm-up */
            if (sotto_vocoder_reset(voc) != SOTTO_OK) goto fail;
            double total = 0;
            for (int64_t i = 0; i < n; i += step) {
                const int64_t k = n - i < step ? n - i : step;
                const double t0 = cli_now_s();
                const int got = sotto_vocoder_push_audio(voc, x + i, (size_t)k, out, cap);
                const double dt = cli_now_s() - t0;
                if (got < 0) goto fail;
                total += dt;
                if (r >= 0 && c >= 0) lat[n_lat++] = dt;
            }
            const double t0 = cli_now_s();
            const int got = sotto_vocoder_flush(voc, out, cap);
            const double dt = cli_now_s() - t0;
            if (got < 0) goto fail;
            total += dt;
            if (r >= 0) {
                if (c < 0) lat[n_lat++] = total; /* offline: the whole job is one call */
                xrts[r] = total > 0 ? dur / total : 0;
            }
        }
        row *w = &b->rows[b->n_rows++];
        w->threads = threads;
        w->mode = c < 0 ? "offline" : "streaming";
        w->chunk = c < 0 ? 0 : chunks[c];
        w->xrt = quantile(xrts, b->reps, 0.5);
        double p50 = quantile(lat, n_lat, 0.5), p99 = quantile(lat, n_lat, 0.99);
        w->p50_ms = p50 * 1e3;
        w->p99_ms = p99 * 1e3;
    }
    goto done;
fail:
    cli_error(CMD, "vocoder: %s", sotto_vocoder_last_error(voc));
    rc = CLI_ERR_RUNTIME;
done:
    free(out);
    free(lat);
    return rc;
}

/* Encode and decode of x (16 kHz) at one thread count. */
static int bench_codec(const sotto_model *model, const float *x, int64_t n, double seconds,
                       int threads, bench *b)
{
    sotto_status st;
    sotto_encoder *enc = NULL;
    sotto_decoder *dec = NULL;
    int32_t *lengths = NULL, *fsq = NULL, *rvq = NULL;
    float *out = NULL;
    double xe[MAX_REPS], xd[MAX_REPS];
    int rc = CLI_OK;
    sotto_encoder_params ep = sotto_encoder_default_params();
    ep.max_seconds = seconds + 1.0 < 3600.0 ? seconds + 1.0 : 3600.0;
    if (sotto_encoder_create(model, &ep, &enc, &st) != SOTTO_OK) {
        cli_error(CMD, "encoder: %s", st.message);
        return CLI_ERR_MODEL;
    }
    sotto_decoder_params dp = sotto_decoder_default_params();
    dp.max_frames = (int)ceil(seconds * 12.5) + 16;
    if (sotto_decoder_create(model, &dp, &dec, &st) != SOTTO_OK) {
        cli_error(CMD, "decoder: %s", st.message);
        sotto_encoder_free(enc);
        return CLI_ERR_MODEL;
    }
    const double dur = (double)n / 16000.0;
    int n_groups = 0, n_stages = 0;
    for (int r = -1; r < b->reps; r++) {
        sotto_encoder_groups g;
        const double t0 = cli_now_s();
        const int e = sotto_encoder_encode(enc, x, n, &g);
        const double dt = cli_now_s() - t0;
        if (e < 0) {
            cli_error(CMD, "encode: %s", sotto_encoder_last_error(enc));
            rc = CLI_ERR_RUNTIME;
            goto done;
        }
        if (r >= 0) {
            xe[r] = dt > 0 ? dur / dt : 0;
            continue;
        }
        /* the warm-up's codes feed the decoder (the encoder owns g's arrays) */
        n_groups = g.n_groups;
        n_stages = g.n_stages;
        const size_t ng = (size_t)(n_groups > 0 ? n_groups : 1);
        lengths = malloc(sizeof(int32_t) * ng);
        fsq = malloc(sizeof(int32_t) * ng);
        rvq = malloc(sizeof(int32_t) * ng * (size_t)(n_stages > 0 ? n_stages : 1));
        if (!lengths || !fsq || !rvq) {
            cli_error(CMD, "out of memory");
            rc = CLI_ERR_RUNTIME;
            goto done;
        }
        memcpy(lengths, g.lengths, sizeof(int32_t) * (size_t)n_groups);
        memcpy(fsq, g.fsq, sizeof(int32_t) * (size_t)n_groups);
        memcpy(rvq, g.rvq, sizeof(int32_t) * (size_t)n_groups * (size_t)n_stages);
    }
    const size_t cap = sotto_decoder_max_output_samples(dec);
    out = malloc(sizeof(float) * (cap ? cap : 1));
    if (!out) {
        cli_error(CMD, "out of memory");
        rc = CLI_ERR_RUNTIME;
        goto done;
    }
    for (int r = -1; r < b->reps; r++) {
        if (sotto_decoder_reset(dec) != SOTTO_OK) goto dec_fail;
        const double t0 = cli_now_s();
        if (sotto_decoder_push(dec, lengths, fsq, rvq, n_groups, n_stages) < 0) goto dec_fail;
        if (sotto_decoder_flush(dec, out, cap) < 0) goto dec_fail;
        const double dt = cli_now_s() - t0;
        if (r >= 0) xd[r] = dt > 0 ? dur / dt : 0;
    }
    for (int k = 0; k < 2; k++) {
        row *w = &b->rows[b->n_rows++];
        w->threads = threads;
        w->mode = k ? "decode" : "encode";
        w->chunk = 0;
        w->xrt = quantile(k ? xd : xe, b->reps, 0.5);
        w->p50_ms = w->p99_ms = -1;
    }
    goto done;
dec_fail:
    cli_error(CMD, "decode: %s", sotto_decoder_last_error(dec));
    rc = CLI_ERR_RUNTIME;
done:
    free(out);
    free(lengths);
    free(fsq);
    free(rvq);
    sotto_decoder_free(dec);
    sotto_encoder_free(enc);
    return rc;
}

int cmd_bench(int argc, char **argv)
{
    const char *model_path = NULL, *in_path = NULL;
    int threads[MAX_LIST] = {1}, n_threads = 1, chunks[MAX_LIST] = {1, 4, 16}, n_chunks = 3;
    int json = 0, f16_math = 0;
    double seconds = 10;
    static bench b;
    memset(&b, 0, sizeof b);
    b.reps = 3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        double v = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return CLI_OK;
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has_val) {
            model_path = argv[++i];
        } else if (!strcmp(a, "--seconds") && has_val) {
            if (cli_parse_double(argv[++i], &v) || !(v >= 0.1 && v <= 3600)) {
                cli_error(CMD, "--seconds must be a number in 0.1..3600, not '%s'", argv[i]);
                return CLI_ERR_USAGE;
            }
            seconds = v;
        } else if (!strcmp(a, "--reps") && has_val) {
            if (cli_parse_double(argv[++i], &v) || v != floor(v) || !(v >= 1 && v <= MAX_REPS)) {
                cli_error(CMD, "--reps must be an integer in 1..%d, not '%s'", MAX_REPS, argv[i]);
                return CLI_ERR_USAGE;
            }
            b.reps = (int)v;
        } else if ((!strcmp(a, "-t") || !strcmp(a, "--threads")) && has_val) {
            if ((n_threads = parse_list(argv[++i], 1, 64, threads)) < 0) {
                cli_error(CMD, "--threads must be a list of counts 1..64 such as 1,2, not '%s'",
                          argv[i]);
                return CLI_ERR_USAGE;
            }
        } else if (!strcmp(a, "--chunks") && has_val) {
            if ((n_chunks = parse_list(argv[++i], 1, 4096, chunks)) < 0) {
                cli_error(CMD, "--chunks must be a list of frame counts 1..4096, not '%s'",
                          argv[i]);
                return CLI_ERR_USAGE;
            }
        } else if (!strcmp(a, "--f16-arithmetic")) {
            f16_math = 1;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (a[0] == '-' && a[1]) {
            cli_error(CMD, "unknown option or missing value: %s (see --help)", a);
            return CLI_ERR_USAGE;
        } else if (!in_path) {
            in_path = a;
        } else {
            cli_error(CMD, "more than one input: %s (see --help)", a);
            return CLI_ERR_USAGE;
        }
    }
    if (!model_path) {
        cli_error(CMD, "-m MODEL is required (see --help)");
        return CLI_ERR_USAGE;
    }

    int rc = CLI_OK, is_voc = 0, rate = 16000, hop = 0, la_frames = 0, la_samples = 0;
    float *x = NULL;
    int64_t n = 0;
    double dur = 0;
    for (int t = 0; t < n_threads && rc == CLI_OK; t++) {
        sotto_status st;
        sotto_model *model = NULL;
        sotto_model_params mp = sotto_model_default_params();
        mp.n_threads = threads[t];
        mp.f16_arithmetic = f16_math ? 2 : 0;
        if (sotto_model_load_file(model_path, &mp, &model, &st) != SOTTO_OK) {
            cli_error(CMD, "%s: %s", model_path, st.message);
            rc = CLI_ERR_MODEL;
            break;
        }
        sotto_vocoder *voc = NULL;
        sotto_vocoder_params vp = sotto_vocoder_default_params();
        int max_chunk = 1;
        for (int c = 0; c < n_chunks; c++)
            max_chunk = chunks[c] > max_chunk ? chunks[c] : max_chunk;
        vp.max_chunk_frames = max_chunk > 64 ? max_chunk : 64;
        is_voc = sotto_vocoder_create(model, &vp, &voc, &st) == SOTTO_OK;
        if (is_voc && sotto_vocoder_num_codebooks(voc) > 0) {
            cli_error(CMD, "%s: the model takes EnCodec codes, not audio", model_path);
            rc = CLI_ERR_MODEL;
        } else if (is_voc) {
            rate = sotto_vocoder_sample_rate_hz(voc);
            hop = sotto_vocoder_hop_samples(voc);
            la_frames = sotto_vocoder_lookahead_frames(voc);
            la_samples = sotto_vocoder_lookahead_samples(voc);
        }
        if (rc == CLI_OK && !x) { /* the input, once, at the model's rate */
            if (in_path) {
                sotto_audio_read_params rp = sotto_audio_default_read_params();
                rp.target_rate_hz = rate;
                rp.max_frames = (int64_t)(3600.0 * SOTTO_AUDIO_MAX_RATE_HZ);
                if (sotto_audio_read_file(in_path, &rp, &x, &n, NULL, &st) != SOTTO_OK) {
                    cli_error(CMD, "%s", st.message);
                    rc = CLI_ERR_INPUT;
                } else if (n < 1 || (double)n / rate > 3600) {
                    cli_error(CMD, "%s: the input must last 1 sample..3600 s", in_path);
                    rc = CLI_ERR_INPUT;
                }
            } else {
                n = (int64_t)llround(seconds * rate);
                x = malloc(sizeof(float) * (size_t)n);
                if (!x) {
                    cli_error(CMD, "out of memory");
                    rc = CLI_ERR_RUNTIME;
                } else {
                    synth_speech(x, n, rate);
                }
            }
            dur = (double)n / rate;
        }
        if (rc == CLI_OK)
            rc = is_voc ? bench_vocoder(voc, x, n, threads[t], chunks, n_chunks, &b)
                        : bench_codec(model, x, n, dur, threads[t], &b);
        sotto_vocoder_free(voc);
        sotto_model_free(model);
    }
    if (rc != CLI_OK) {
        if (in_path) sotto_audio_free(x, NULL);
        else free(x);
        return rc;
    }

    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    getrusage(RUSAGE_SELF, &ru);
    const double rss_mb = (double)ru.ru_maxrss / 1024.0; /* Linux: kilobytes */
    const double la_ms = is_voc ? 1e3 * la_samples / rate : 0;
    if (json) {
        printf("{\"model\":");
        cli_json_str(model_path);
        printf(",\"kind\":\"%s\",\"sample_rate_hz\":%d,\"input\":", is_voc ? "vocoder" : "codec",
               rate);
        if (in_path) cli_json_str(in_path);
        else printf("\"synthetic\"");
        printf(",\"seconds\":%.4f,\"reps\":%d", dur, b.reps);
        if (is_voc)
            printf(",\"hop_samples\":%d,\"lookahead_frames\":%d,\"lookahead_samples\":%d,"
                   "\"lookahead_ms\":%.3f",
                   hop, la_frames, la_samples, la_ms);
        printf(",\"results\":[");
        for (int i = 0; i < b.n_rows; i++) {
            const row *w = &b.rows[i];
            printf("%s{\"threads\":%d,\"mode\":\"%s\"", i ? "," : "", w->threads, w->mode);
            if (is_voc)
                printf(",\"chunk_frames\":%d,\"x_real_time\":%.6g,\"p50_ms\":%.6g,"
                       "\"p99_ms\":%.6g}",
                       w->chunk, w->xrt, w->p50_ms, w->p99_ms);
            else
                printf(",\"x_real_time\":%.6g}", w->xrt);
        }
        printf("],\"peak_rss_mb\":%.1f}\n", rss_mb);
    } else {
        printf("model: %s (%s, %d Hz", model_path, is_voc ? "vocoder" : "codec", rate);
        if (is_voc)
            printf(", hop %d, look-ahead %d frames = %d samples = %.1f ms", hop, la_frames,
                   la_samples, la_ms);
        printf(")\ninput: %s, %.2f s; median of %d run%s after 1 warm-up\n",
               in_path ? in_path : "synthetic speech-like signal", dur, b.reps,
               b.reps > 1 ? "s" : "");
        if (is_voc)
            printf("%-8s %-10s %6s %12s %10s %10s\n", "threads", "mode", "chunk", "x real time",
                   "p50 ms", "p99 ms");
        else
            printf("%-8s %-10s %12s\n", "threads", "mode", "x real time");
        for (int i = 0; i < b.n_rows; i++) {
            const row *w = &b.rows[i];
            if (is_voc) {
                char ch[16];
                if (w->chunk) snprintf(ch, sizeof ch, "%d", w->chunk);
                else snprintf(ch, sizeof ch, "all");
                printf("%-8d %-10s %6s %12.2f %10.4f %10.4f\n", w->threads, w->mode, ch, w->xrt,
                       w->p50_ms, w->p99_ms);
            } else {
                printf("%-8d %-10s %12.2f\n", w->threads, w->mode, w->xrt);
            }
        }
        printf("peak RSS: %.1f MB\n", rss_mb);
    }
    if (in_path) sotto_audio_free(x, NULL);
    else free(x);
    return CLI_OK;
}
