/*
 * `sotto compare IN... -m CODEC_MODEL`: codes each IN with the Sotto codec (encode to a .sotto
 * file, decode it) and with libopus at Sotto's own bitrate and at several others, and prints
 * per setting the actual bitrate, the real-time factor and objective scores against the
 * original (metrics.h): a table per file and, for several files, an overall one. libopus is
 * linked into the command line only; without it at build time the command exits 8. --plot
 * writes a spectrogram comparison as PNG with libpng (also the command line only; exit 8
 * without it).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "metrics.h"
#include "sotto/sotto.h"
#include "sotto/sotto_audio.h"
#include "sotto/sotto_codec.h"

#ifdef SOTTO_HAVE_OPUS
#include <opus.h>
#endif
#ifdef SOTTO_HAVE_PNG
#include <png.h>

#include "dsp/fft.h"
#endif

#define CMD "compare"
#define RATE 16000        /* analysis rate: the codec's rate, and an Opus rate */
#define OPUS_FRAME 320    /* 20 ms at 16 kHz */
#define MAX_BITRATES 16
#define MAX_MINUTES 10
#define SEG_FRAME 320     /* segmental SNR frames, 20 ms */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sotto compare INPUT... -m CODEC_MODEL [options]\n"
            "\n"
            "Codes each INPUT (read at 16 kHz, channels mixed down) with the Sotto codec (a\n"
            "model with the encoder) and with Opus (libopus, VOIP application, 16 kHz, 20 ms\n"
            "frames, VBR) at each bitrate, decodes each, and prints one row per setting:\n"
            "actual bitrate, real-time factor (encode + decode time / duration), log-mel L1\n"
            "(16 kHz, 80 mels; 0 is perfect), SI-SDR and segmental SNR in dB, and STOI\n"
            "(classic, as pystoi; 1 is perfect): a table per file, then with several inputs\n"
            "an overall table (bitrate and RTF over the total duration, scores averaged over\n"
            "the files).\n"
            "Sotto bitrates count the whole .sotto file (headers and Ogg framing included);\n"
            "Opus bitrates count the raw packet bytes (no Ogg framing).\n"
            "\n"
            "options:\n"
            "  -m, --model FILE         codec model with the encoder (required)\n"
            "  --opus-bitrates LIST     comma-separated bit/s, 500..512000, or 'same' (the\n"
            "                           bitrate Sotto spent on that file, rounded to 100)\n"
            "                           (default same,6000,12000,24000); 'none' skips Opus\n"
            "  --threshold T            Sotto merge threshold 0..1 (default: the model's)\n"
            "  --rate HZ                Sotto target frame rate instead: 0 < HZ <= 12.5\n"
            "                           (the encoder's rate control picks the threshold)\n"
            "  --quantizers N           Sotto RVQ stages per group (default: all)\n"
            "  --out DIR                also write the decoded audio (16-bit WAV) to DIR\n"
            "                           (one INPUT)\n"
            "  -t, --threads N          CPU threads for the codec (default 1)\n"
            "  --f16-arithmetic         binary16 arithmetic in the codec's encoder and decoder\n"
            "                           where the CPU has AVX512-FP16 (f16 models; faster, merge\n"
            "                           boundaries and codes may differ from f32)\n"
            "  --json                   print the rows as one JSON object on stdout\n"
            "  --plot FILE.png          also write spectrograms (original, Sotto, each Opus\n"
            "                           rate, top to bottom; dB, 0..8 kHz) as a PNG (one\n"
            "                           INPUT)\n"
            "  -h, --help               this text\n"
            "\n"
            "Exit codes: 0 ok, 2 usage, 3 input, 4 model, 5 output, 6 runtime, 8 built\n"
            "without libopus (Opus requested) or without libpng (--plot given).\n");
}

typedef struct row {
    char codec[16];
    char setting[48];
    double bitrate_bps, rtf, mel_l1, si_sdr, seg_snr, stoi;
} row;

#define SAME_AS_SOTTO 0 /* an Opus bitrate entry meaning "what Sotto spent on this file" */

/* "same,6000,8000" → rates (SAME_AS_SOTTO for 'same'); returns the count, or -1 on a bad
 * item. 'none' → 0. */
static int parse_bitrates(const char *s, int *rates)
{
    if (!strcmp(s, "none")) return 0;
    int n = 0;
    const char *p = s;
    for (;;) {
        char *end = NULL;
        long v;
        if (!strncmp(p, "same", 4)) {
            v = SAME_AS_SOTTO;
            end = (char *)p + 4;
        } else {
            v = strtol(p, &end, 10);
            if (end == p || v < 500 || v > 512000) return -1;
        }
        if (n == MAX_BITRATES) return -1;
        rates[n++] = (int)v;
        if (*end == 0) return n;
        if (*end != ',') return -1;
        p = end + 1;
    }
}

static void score(row *r, const float *ref, const float *deg, int64_t n)
{
    r->mel_l1 = metrics_log_mel_l1(ref, deg, n, RATE);
    r->si_sdr = metrics_si_sdr(ref, deg, n);
    r->seg_snr = metrics_seg_snr(ref, deg, n, SEG_FRAME);
    if (metrics_stoi(ref, deg, n, RATE, &r->stoi) != 0) r->stoi = NAN;
}

/* ---- --plot: spectrograms stacked vertically, written with libpng ---- */

#define PLOT_NFFT 512
#define PLOT_HOP 160
#define PLOT_ROWS 256      /* bins 0..255 (0..7.97 kHz), low frequencies at the bottom */
#define PLOT_MAX_COLS 1600 /* longer inputs: frames max-pooled into this many columns */
#define PLOT_GAP 4         /* white rows between panels */
#define PLOT_RANGE_DB 80.0 /* colour scale: the original's peak down to 80 dB below it */
#define MAX_PANELS (MAX_BITRATES + 2)

typedef struct plot {
    int cols, n_panels;
    int64_t frames;
    float *panels[MAX_PANELS]; /* PLOT_ROWS × cols, dB */
} plot;

static void plot_free(plot *p)
{
    for (int i = 0; i < p->n_panels; i++) free(p->panels[i]);
    p->n_panels = 0;
}

#ifdef SOTTO_HAVE_PNG
/* Adds the log-magnitude spectrogram of x (n ≥ PLOT_NFFT samples) as the next panel. */
static int plot_add(plot *p, const float *x, int64_t n)
{
    if (p->n_panels == MAX_PANELS) return CLI_ERR_RUNTIME;
    if (!p->frames) {
        p->frames = n < PLOT_NFFT ? 1 : (n - PLOT_NFFT) / PLOT_HOP + 1;
        p->cols = p->frames < PLOT_MAX_COLS ? (int)p->frames : PLOT_MAX_COLS;
    }
    float *img = malloc(sizeof(float) * PLOT_ROWS * (size_t)p->cols);
    sotto_fft *fft = NULL;
    if (!img || sotto_fft_create(PLOT_NFFT, NULL, &fft, NULL) != 0) {
        free(img);
        cli_error(CMD, "out of memory");
        return CLI_ERR_RUNTIME;
    }
    float frame[PLOT_NFFT], spec[PLOT_NFFT + 2], win[PLOT_NFFT];
    for (int k = 0; k < PLOT_NFFT; k++)
        win[k] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * k / PLOT_NFFT));
    for (size_t i = 0; i < (size_t)PLOT_ROWS * (size_t)p->cols; i++) img[i] = -1e30f;
    for (int64_t t = 0; t < p->frames; t++) {
        const int c = (int)(t * p->cols / p->frames);
        for (int k = 0; k < PLOT_NFFT; k++) {
            const int64_t j = t * PLOT_HOP + k;
            frame[k] = j < n ? win[k] * x[j] : 0.0f;
        }
        sotto_fft_forward(fft, frame, spec);
        for (int b = 0; b < PLOT_ROWS; b++) {
            const double pw = (double)spec[2 * b] * spec[2 * b] +
                              (double)spec[2 * b + 1] * spec[2 * b + 1];
            const float db = (float)(10.0 * log10(pw + 1e-20));
            float *v = &img[(size_t)(PLOT_ROWS - 1 - b) * (size_t)p->cols + (size_t)c];
            if (db > *v) *v = db;
        }
    }
    sotto_fft_destroy(fft);
    p->panels[p->n_panels++] = img;
    return CLI_OK;
}

/* A fixed colour map (dark blue → purple → orange → pale yellow), t in [0, 1]. */
static void plot_colour(double t, unsigned char rgb[3])
{
    static const double stops[5][3] = {
        {0, 0, 16}, {80, 18, 123}, {182, 54, 121}, {251, 136, 97}, {252, 253, 191}};
    if (!(t > 0)) t = 0;
    if (t > 1) t = 1;
    const double f = t * 4;
    int i = (int)f;
    if (i > 3) i = 3;
    const double a = f - i;
    for (int k = 0; k < 3; k++)
        rgb[k] = (unsigned char)lround(stops[i][k] + a * (stops[i + 1][k] - stops[i][k]));
}

static int plot_write(const plot *p, const char *path)
{
    const int w = p->cols, h = p->n_panels * PLOT_ROWS + (p->n_panels - 1) * PLOT_GAP;
    unsigned char *line = malloc((size_t)w * 3);
    FILE *f = fopen(path, "wb");
    png_structp png = f ? png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL)
                        : NULL;
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!line || !f || !png || !info) {
        cli_error(CMD, "%s: cannot write the plot", path);
        if (png) png_destroy_write_struct(&png, info ? &info : NULL);
        if (f) fclose(f);
        free(line);
        return CLI_ERR_OUTPUT;
    }
    if (setjmp(png_jmpbuf(png))) {
        cli_error(CMD, "%s: cannot write the plot", path);
        png_destroy_write_struct(&png, &info);
        fclose(f);
        free(line);
        return CLI_ERR_OUTPUT;
    }
    float top = -1e30f; /* the original's (panel 0's) peak sets the scale for all panels */
    for (size_t i = 0; i < (size_t)PLOT_ROWS * (size_t)p->cols; i++)
        if (p->panels[0][i] > top) top = p->panels[0][i];
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) {
        const int panel = y / (PLOT_ROWS + PLOT_GAP), r = y % (PLOT_ROWS + PLOT_GAP);
        if (r >= PLOT_ROWS) {
            memset(line, 255, (size_t)w * 3);
        } else {
            const float *src = p->panels[panel] + (size_t)r * (size_t)w;
            for (int c = 0; c < w; c++)
                plot_colour((src[c] - (top - PLOT_RANGE_DB)) / PLOT_RANGE_DB, line + 3 * c);
        }
        png_write_row(png, line);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(line);
    if (fclose(f) != 0) {
        cli_error(CMD, "%s: cannot write the plot", path);
        return CLI_ERR_OUTPUT;
    }
    return CLI_OK;
}
#endif

static int write_wav(const char *dir, const char *name, const float *x, int64_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    sotto_status st;
    if (sotto_audio_write_file(path, x, n, RATE, SOTTO_AUDIO_WAV_PCM16, &st) != SOTTO_OK) {
        cli_error(CMD, "%s: %s", path, st.message);
        return CLI_ERR_OUTPUT;
    }
    return CLI_OK;
}

#ifdef SOTTO_HAVE_OPUS
/* Opus at `bitrate`: 20 ms frames, the encoder's look-ahead compensated (the input is padded
 * with it and the decoded output starts after it), so deg has n samples aligned with x. */
static int run_opus(const float *x, int64_t n, int bitrate, float *deg, row *r)
{
    int err = 0;
    OpusEncoder *enc = opus_encoder_create(RATE, 1, OPUS_APPLICATION_VOIP, &err);
    OpusDecoder *dec = enc ? opus_decoder_create(RATE, 1, &err) : NULL;
    if (!enc || !dec) {
        cli_error(CMD, "libopus: %s", opus_strerror(err));
        opus_encoder_destroy(enc);
        return CLI_ERR_RUNTIME;
    }
    opus_int32 lookahead = 0;
    opus_encoder_ctl(enc, OPUS_SET_BITRATE(bitrate));
    opus_encoder_ctl(enc, OPUS_SET_COMPLEXITY(10));
    opus_encoder_ctl(enc, OPUS_GET_LOOKAHEAD(&lookahead));
    const int64_t total = n + lookahead, frames = (total + OPUS_FRAME - 1) / OPUS_FRAME;
    float in[OPUS_FRAME], out[OPUS_FRAME];
    unsigned char pkt[1500];
    int64_t bytes = 0, pos = 0; /* pos: decoded samples so far */
    int rc = CLI_OK;
    double t0 = cli_now_s();
    for (int64_t f = 0; f < frames; f++) {
        for (int i = 0; i < OPUS_FRAME; i++) {
            const int64_t k = f * OPUS_FRAME + i;
            in[i] = k < n ? x[k] : 0.0f;
        }
        const opus_int32 len = opus_encode_float(enc, in, OPUS_FRAME, pkt, sizeof pkt);
        const int got = len < 0 ? (int)len : opus_decode_float(dec, pkt, len, out, OPUS_FRAME, 0);
        if (got < 0) {
            cli_error(CMD, "libopus at %d bit/s: %s", bitrate, opus_strerror(got));
            rc = CLI_ERR_RUNTIME;
            break;
        }
        bytes += len;
        for (int i = 0; i < got; i++, pos++)
            if (pos >= lookahead && pos - lookahead < n) deg[pos - lookahead] = out[i];
    }
    const double dt = cli_now_s() - t0, dur = (double)n / RATE;
    opus_encoder_destroy(enc);
    opus_decoder_destroy(dec);
    if (rc) return rc;
    snprintf(r->codec, sizeof r->codec, "opus");
    snprintf(r->setting, sizeof r->setting, "%d bit/s", bitrate);
    r->bitrate_bps = (double)bytes * 8.0 / dur;
    r->rtf = dt / dur;
    score(r, x, deg, n);
    return CLI_OK;
}
#endif

/* The Sotto codec: encode IN to sotto_path, decode it back (n samples at 16 kHz). */
static int run_sotto(const sotto_model *model, const char *in_path, const char *sotto_path,
                     const sotto_codec_encode_params *ep, const float *x, int64_t n,
                     float **deg, row *r)
{
    sotto_status st;
    sotto_codec_encode_info info;
    double t0 = cli_now_s();
    int rc = sotto_codec_encode_file(model, in_path, sotto_path, ep, &info, &st);
    if (rc != SOTTO_OK) {
        cli_error(CMD, "sotto encode: %s", st.message);
        if (strstr(st.message, "no encoder") || strstr(st.message, "not a codec"))
            return CLI_ERR_MODEL;
        if (rc == SOTTO_ERR_IO) return strstr(st.message, sotto_path) ? CLI_ERR_OUTPUT
                                                                       : CLI_ERR_INPUT;
        return rc == SOTTO_ERR_BAD_AUDIO || rc == SOTTO_ERR_FORMAT ? CLI_ERR_INPUT
                                                                   : CLI_ERR_RUNTIME;
    }
    sotto_decoder_params dp = sotto_decoder_default_params();
    dp.max_frames = MAX_MINUTES * 60 * 13;
    int64_t m = 0;
    rc = sotto_codec_decode_file(model, sotto_path, &dp, deg, &m, NULL, &st);
    const double dt = cli_now_s() - t0;
    if (rc != SOTTO_OK) {
        cli_error(CMD, "sotto decode: %s", st.message);
        return CLI_ERR_RUNTIME;
    }
    if (m != n) {
        cli_error(CMD, "sotto decode: %lld samples, expected %lld", (long long)m, (long long)n);
        return CLI_ERR_RUNTIME;
    }
    snprintf(r->codec, sizeof r->codec, "sotto");
    snprintf(r->setting, sizeof r->setting, "thr %.3f, %d q, %.2f g/s", (double)info.threshold,
             info.n_stages, info.groups_per_s);
    r->bitrate_bps = info.bitrate_bps;
    r->rtf = dt / info.duration_s;
    score(r, x, *deg, n);
    return CLI_OK;
}

/* One table (or JSON object, without a newline): a file's rows, or with in_path NULL the
 * overall rows of n_files files. */
static void print_rows(const row *rows, int n_rows, const char *in_path, int n_files, double dur,
                       int json)
{
    if (json) {
        if (in_path) {
            printf("{\"input\":");
            cli_json_str(in_path);
        } else {
            printf("{\"files\":%d", n_files);
        }
        printf(",\"seconds\":%.4f,\"rate_hz\":%d,\"opus_bitrate_counts\":\"packets, no Ogg\","
               "\"sotto_bitrate_counts\":\"whole file\",\"rows\":[",
               dur, RATE);
        for (int i = 0; i < n_rows; i++) {
            printf("%s{\"codec\":\"%s\",\"setting\":\"%s\",\"bitrate_bps\":%.1f,\"rtf\":%.5f,"
                   "\"log_mel_l1\":%.4f,\"si_sdr_db\":%.3f,\"seg_snr_db\":%.3f,\"stoi\":",
                   i ? "," : "", rows[i].codec, rows[i].setting, rows[i].bitrate_bps,
                   rows[i].rtf, rows[i].mel_l1, rows[i].si_sdr, rows[i].seg_snr);
            if (isnan(rows[i].stoi))
                printf("null}");
            else
                printf("%.4f}", rows[i].stoi);
        }
        printf("]}");
        return;
    }
    if (in_path)
        printf("%s: %.2f s at %d Hz\n", in_path, dur, RATE);
    else
        printf("overall: %d files, %.2f s at %d Hz (bit/s and RTF over the total duration, "
               "scores averaged over the files)\n",
               n_files, dur, RATE);
    printf("%-6s %-28s %10s %8s %10s %9s %9s %7s\n", "codec", "setting", "bit/s", "RTF",
           "logmel-L1", "SI-SDR", "segSNR", "STOI");
    for (int i = 0; i < n_rows; i++)
        printf("%-6s %-28s %10.0f %8.4f %10.4f %9.2f %9.2f %7.4f\n", rows[i].codec,
               rows[i].setting, rows[i].bitrate_bps, rows[i].rtf, rows[i].mel_l1, rows[i].si_sdr,
               rows[i].seg_snr, rows[i].stoi);
    printf("bit/s: sotto = whole .sotto file (headers, Ogg framing); opus = packet bytes only "
           "(Ogg overhead excluded). Scores vs the original at 16 kHz; STOI as pystoi "
           "(classic).\n");
}

typedef struct compare_opts {
    const sotto_codec_encode_params *ep;
    const int *bitrates;
    int n_opus;
    const char *out_dir, *plot_path;
} compare_opts;

/* Codes one file: rows[0] Sotto, then one row per Opus bitrate; *dur its duration. */
static int compare_file(const sotto_model *model, const char *in_path, const compare_opts *o,
                        row *rows, double *dur)
{
    sotto_status st;
    float *x = NULL, *deg_opus = NULL, *deg_sotto = NULL;
    int64_t n = 0;
    sotto_audio_read_params rp = sotto_audio_default_read_params();
    rp.target_rate_hz = RATE;
    sotto_audio_info ainfo;
    if (sotto_audio_read_file(in_path, &rp, &x, &n, &ainfo, &st) != SOTTO_OK) {
        cli_error(CMD, "%s: %s", in_path, st.message);
        return CLI_ERR_INPUT;
    }
    if (n <= 256 || n > (int64_t)MAX_MINUTES * 60 * RATE) {
        cli_error(CMD, "%s: %lld samples at 16 kHz: needs 257 .. %d minutes", in_path,
                  (long long)n, MAX_MINUTES);
        sotto_audio_free(x, NULL);
        return CLI_ERR_INPUT;
    }
    *dur = (double)n / RATE;

    int rc = CLI_OK, n_rows = 0;
    plot pl = {0};
    char sotto_path[1100], tmpdir[64] = "";
    if (o->out_dir) {
        snprintf(sotto_path, sizeof sotto_path, "%s/sotto.sotto", o->out_dir);
    } else {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/sotto-compare-XXXXXX",
                 base && *base && strlen(base) < 32 ? base : "/tmp");
        if (!mkdtemp(tmpdir)) {
            cli_error(CMD, "cannot make a temporary folder");
            tmpdir[0] = 0;
            rc = CLI_ERR_OUTPUT;
            goto done;
        }
        snprintf(sotto_path, sizeof sotto_path, "%s/sotto.sotto", tmpdir);
    }
    if ((rc = run_sotto(model, in_path, sotto_path, o->ep, x, n, &deg_sotto, &rows[n_rows])))
        goto done;
    n_rows++;
    if (o->out_dir && (rc = write_wav(o->out_dir, "sotto.wav", deg_sotto, n))) goto done;
#ifdef SOTTO_HAVE_PNG
    if (o->plot_path && ((rc = plot_add(&pl, x, n)) || (rc = plot_add(&pl, deg_sotto, n))))
        goto done;
#endif
#ifdef SOTTO_HAVE_OPUS
    deg_opus = calloc((size_t)n, sizeof(float));
    if (!deg_opus) {
        cli_error(CMD, "out of memory");
        rc = CLI_ERR_RUNTIME;
        goto done;
    }
    for (int i = 0; i < o->n_opus; i++) {
        /* 'same': the bitrate Sotto spent on this file, to the nearest 100 bit/s */
        int br = o->bitrates[i];
        if (br == SAME_AS_SOTTO) {
            br = (int)(floor(rows[0].bitrate_bps / 100.0 + 0.5) * 100.0);
            if (br < 500) br = 500;
        }
        memset(deg_opus, 0, sizeof(float) * (size_t)n);
        if ((rc = run_opus(x, n, br, deg_opus, &rows[n_rows]))) goto done;
        if (o->bitrates[i] == SAME_AS_SOTTO)
            snprintf(rows[n_rows].setting, sizeof rows[n_rows].setting, "%d bit/s (= sotto)", br);
        n_rows++;
        char name[64];
        snprintf(name, sizeof name, "opus-%d.wav", br);
        if (o->out_dir && (rc = write_wav(o->out_dir, name, deg_opus, n))) goto done;
#ifdef SOTTO_HAVE_PNG
        if (o->plot_path && (rc = plot_add(&pl, deg_opus, n))) goto done;
#endif
    }
#endif
#ifdef SOTTO_HAVE_PNG
    if (o->plot_path && (rc = plot_write(&pl, o->plot_path))) goto done;
#endif
done:
    if (tmpdir[0]) {
        (void)remove(sotto_path);
        (void)rmdir(tmpdir);
    }
    plot_free(&pl);
    sotto_audio_free(x, NULL);
    free(deg_opus);
    free(deg_sotto);
    return rc;
}

int cmd_compare(int argc, char **argv)
{
    const char *model_path = NULL, *out_dir = NULL;
    const char *threshold_arg = NULL, *rate_arg = NULL, *quantizers_arg = NULL;
    const char *bitrates_arg = "same,6000,12000,24000", *plot_path = NULL;
    int threads = 1, json = 0, n_inputs = 0, f16_math = 0;
    const char **inputs = calloc((size_t)argc, sizeof *inputs);
    if (!inputs) {
        cli_error(CMD, "out of memory");
        return CLI_ERR_RUNTIME;
    }
    int rc = CLI_ERR_USAGE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            free(inputs);
            return CLI_OK;
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has_val) {
            model_path = argv[++i];
        } else if ((!strcmp(a, "-t") || !strcmp(a, "--threads")) && has_val) {
            threads = atoi(argv[++i]);
        } else if (!strcmp(a, "--opus-bitrates") && has_val) {
            bitrates_arg = argv[++i];
        } else if (!strcmp(a, "--threshold") && has_val) {
            threshold_arg = argv[++i];
        } else if (!strcmp(a, "--rate") && has_val) {
            rate_arg = argv[++i];
        } else if (!strcmp(a, "--quantizers") && has_val) {
            quantizers_arg = argv[++i];
        } else if (!strcmp(a, "--out") && has_val) {
            out_dir = argv[++i];
        } else if (!strcmp(a, "--plot") && has_val) {
            plot_path = argv[++i];
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--f16-arithmetic")) {
            f16_math = 1;
        } else if (a[0] == '-' && a[1]) {
            cli_error(CMD, "unknown option or missing value: %s (see --help)", a);
            goto out;
        } else {
            inputs[n_inputs++] = a;
        }
    }
    if (!n_inputs || !model_path) {
        cli_error(CMD, "an INPUT and -m MODEL are required (see --help)");
        goto out;
    }
    if (n_inputs > 1 && (out_dir || plot_path)) {
        cli_error(CMD, "--out and --plot take one INPUT (%d given)", n_inputs);
        goto out;
    }
    if (threads < 1 || threads > 64) {
        cli_error(CMD, "--threads must be 1..64");
        goto out;
    }
    int bitrates[MAX_BITRATES];
    const int n_opus = parse_bitrates(bitrates_arg, bitrates);
    if (n_opus < 0) {
        cli_error(CMD, "--opus-bitrates must be up to %d comma-separated bit/s in 500..512000 "
                       "or 'same', or 'none', not '%s'", MAX_BITRATES, bitrates_arg);
        goto out;
    }
    sotto_codec_encode_params ep = sotto_codec_default_encode_params();
    ep.encoder.max_seconds = MAX_MINUTES * 60.0;
    /* --rate: the encoder's rate control picks the threshold for this input (sotto_codec.h);
     * the row shows the threshold chosen and the rate reached. */
    if (cli_encoder_options(CMD, threshold_arg, rate_arg, NULL, quantizers_arg, &ep.encoder))
        goto out;
#ifndef SOTTO_HAVE_OPUS
    if (n_opus > 0) {
        cli_error(CMD, "this build has no libopus (install libopus-dev and rebuild), or pass "
                       "--opus-bitrates none");
        rc = CLI_ERR_UNAVAILABLE;
        goto out;
    }
#endif
#ifndef SOTTO_HAVE_PNG
    if (plot_path) {
        cli_error(CMD, "this build has no libpng for --plot (install libpng-dev and rebuild)");
        rc = CLI_ERR_UNAVAILABLE;
        goto out;
    }
#endif

    sotto_status st;
    sotto_model *model = NULL;
    sotto_model_params mp = sotto_model_default_params();
    mp.n_threads = threads;
    mp.f16_arithmetic = f16_math ? 2 : 0; /* encoder and decoder */
    if (sotto_model_load_file(model_path, &mp, &model, &st) != SOTTO_OK) {
        cli_error(CMD, "%s: %s", model_path, st.message);
        rc = CLI_ERR_MODEL;
        goto out;
    }
    if (f16_math)
        fprintf(stderr, "sotto compare: %s\n",
                sotto_model_f16_arithmetic(model) == 2
                    ? "binary16 arithmetic in the codec's encoder and decoder"
                    : CLI_F32_FALLBACK);
    const compare_opts o = {&ep, bitrates, n_opus, out_dir, plot_path};
    const int n_rows = 1 + n_opus;
    row rows[MAX_BITRATES + 1], total[MAX_BITRATES + 1];
    memset(total, 0, sizeof total);
    double total_s = 0.0;
    int n_stoi[MAX_BITRATES + 1] = {0};
    if (json && n_inputs > 1) printf("{\"files\":[");
    rc = CLI_OK;
    for (int f = 0; f < n_inputs && rc == CLI_OK; f++) {
        double dur = 0.0;
        if ((rc = compare_file(model, inputs[f], &o, rows, &dur))) break;
        if (json && f) putchar(',');
        print_rows(rows, n_rows, inputs[f], 1, dur, json);
        if (json && n_inputs == 1) putchar('\n');
        if (!json && n_inputs > 1) putchar('\n');
        /* overall: bit/s and RTF weighted by duration, scores averaged over the files */
        total_s += dur;
        for (int i = 0; i < n_rows; i++) {
            total[i].bitrate_bps += rows[i].bitrate_bps * dur;
            total[i].rtf += rows[i].rtf * dur;
            total[i].mel_l1 += rows[i].mel_l1;
            total[i].si_sdr += rows[i].si_sdr;
            total[i].seg_snr += rows[i].seg_snr;
            if (!isnan(rows[i].stoi)) {
                total[i].stoi += rows[i].stoi;
                n_stoi[i]++;
            }
            memcpy(total[i].codec, rows[i].codec, sizeof total[i].codec);
            if (i == 0)
                snprintf(total[i].setting, sizeof total[i].setting, "%s",
                         rate_arg ? "rate control" : "threshold");
            else if (bitrates[i - 1] == SAME_AS_SOTTO)
                snprintf(total[i].setting, sizeof total[i].setting, "same as sotto per file");
            else
                memcpy(total[i].setting, rows[i].setting, sizeof total[i].setting);
        }
    }
    if (rc == CLI_OK && n_inputs > 1) {
        for (int i = 0; i < n_rows; i++) {
            total[i].bitrate_bps /= total_s;
            total[i].rtf /= total_s;
            total[i].mel_l1 /= n_inputs;
            total[i].si_sdr /= n_inputs;
            total[i].seg_snr /= n_inputs;
            total[i].stoi = n_stoi[i] ? total[i].stoi / n_stoi[i] : NAN;
        }
        if (json) printf("],\"overall\":");
        print_rows(total, n_rows, NULL, n_inputs, total_s, json);
        if (json) printf("}\n");
    } else if (rc != CLI_OK && json && n_inputs > 1) {
        printf("]}\n"); /* keep stdout valid JSON; the error is on stderr */
    }
    sotto_model_free(model);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error(CMD, "cannot write the table");
        rc = CLI_ERR_OUTPUT;
    }
out:
    free(inputs);
    return rc;
}
