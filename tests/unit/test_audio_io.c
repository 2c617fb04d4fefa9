/*
 * Audio I/O and resampling: the length rule, write/read round trips at 8–96 kHz in every
 * output format, resampling to 16 and 24 kHz (exact lengths, preserved sine frequency and
 * phase), the down-mix, the NaN/Inf policy, hostile files (truncated, garbage, lying headers,
 * zero channels, absurd rates) failing cleanly, streaming reader == whole-file read and
 * streaming resampler == offline resampler for every chunking, allocator hooks, and a pass
 * over the real speech clips beside the repository (SOTTO_SPEECH_DIR, else
 * ../../shared/data/speech from tests/). Scratch files go to a fresh directory under $TMPDIR.
 */
#include <dirent.h>
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dsp/resample.h"
#include "sotto/sotto_audio.h"
#include "testutil.h"

static const int k_rates[] = {8000, 11025, 16000, 22050, 24000, 44100, 48000, 96000};
#define N_RATES ((int)(sizeof k_rates / sizeof k_rates[0]))
static const double k_pi = 3.14159265358979323846;

static char g_dir[512];
static uint64_t g_seed;

static const char *tmp_path(const char *name)
{
    static char buf[4][700];
    static int slot;
    slot = (slot + 1) % 4;
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", g_dir, name);
    return buf[slot];
}

/* ---- signal and file helpers ------------------------------------------------------------ */

/* Exponential sweep from f0 to f1 Hz over n samples at rate, amplitude amp. */
static float *sweep(int64_t n, int rate, double f0, double f1, double amp)
{
    float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof *x);
    double T = (double)n / rate, k = log(f1 / f0);
    for (int64_t i = 0; i < n; i++) {
        double t = (double)i / rate;
        x[i] = (float)(amp * sin(2 * k_pi * f0 * T / k * (exp(t / T * k) - 1.0)));
    }
    return x;
}

static float *sine(int64_t n, int rate, double f, double amp)
{
    float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof *x);
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(amp * sin(2 * k_pi * f * (double)i / rate));
    return x;
}

/* Writes interleaved float frames with libsndfile directly (multichannel, NaN, formats the
 * SDK does not write). */
static int write_sf(const char *path, int format, int channels, int rate, const float *x,
                    int64_t frames)
{
    SF_INFO si;
    memset(&si, 0, sizeof si);
    si.channels = channels;
    si.samplerate = rate;
    si.format = format;
    SNDFILE *sf = sf_open(path, SFM_WRITE, &si);
    if (!sf) return -1;
    sf_count_t w = sf_writef_float(sf, x, frames);
    sf_close(sf);
    return w == frames ? 0 : -1;
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static void put16(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

/* A hand-made 44-byte PCM WAV header with the given (possibly lying) fields, followed by
 * payload_bytes bytes of a ramp. */
static void write_wav_header(const char *path, uint32_t riff_size, uint32_t fmt_size, uint32_t tag,
                             uint32_t channels, uint32_t rate, uint32_t bits, uint32_t data_size,
                             size_t payload_bytes)
{
    unsigned char h[44];
    memcpy(h, "RIFF", 4);
    put32(h + 4, riff_size);
    memcpy(h + 8, "WAVEfmt ", 8);
    put32(h + 16, fmt_size);
    put16(h + 20, tag);
    put16(h + 22, channels);
    put32(h + 24, rate);
    put32(h + 28, rate * channels * bits / 8);
    put16(h + 32, channels * bits / 8);
    put16(h + 34, bits);
    memcpy(h + 36, "data", 4);
    put32(h + 40, data_size);
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fwrite(h, 1, sizeof h, f);
    for (size_t i = 0; i < payload_bytes; i++)
        fputc((int)((i * 37) & 0xff), f);
    fclose(f);
}

static unsigned char *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    *size = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

static void spit(const char *path, const unsigned char *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fwrite(b, 1, n, f);
    fclose(f);
}

/* Reads a whole file with the given target rate; returns the status code. */
static int read_all(const char *path, int target_hz, float **x, int64_t *n, sotto_audio_info *info,
                    sotto_status *st)
{
    sotto_audio_read_params p = sotto_audio_default_read_params();
    p.target_rate_hz = target_hz;
    return sotto_audio_read_file(path, &p, x, n, info, st);
}

static int all_finite(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/* ---- length rule ------------------------------------------------------------------------ */

static void test_length_rule(void)
{
    /* Reference: round half up of n·out/in in long double (exact for these magnitudes). */
    const int64_t ns[] = {0, 1, 2, 3, 159, 160, 16000, 44100, 44137, 1234567, 987654321};
    for (int a = 0; a < N_RATES; a++)
        for (int b = 0; b < N_RATES; b++)
            for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
                int64_t n = ns[k];
                long double q = (long double)n * k_rates[b] / k_rates[a];
                int64_t want = (int64_t)floorl(q + 0.5L);
                CU_ASSERT_EQUAL(sotto_resample_length(n, k_rates[a], k_rates[b]), want);
                CU_ASSERT_EQUAL(sotto_audio_output_length(n, k_rates[a], k_rates[b]), want);
            }
    CU_ASSERT_EQUAL(sotto_resample_length(3, 16000, 8000), 2);  /* 1.5 rounds up */
    CU_ASSERT_EQUAL(sotto_resample_length(1, 16000, 8000), 1);  /* 0.5 rounds up */
    CU_ASSERT_EQUAL(sotto_resample_length(1, 48000, 16000), 0); /* 0.33 rounds down */
    CU_ASSERT_EQUAL(sotto_resample_length(SOTTO_RESAMPLE_MAX_SAMPLES, 1000, 768000),
                    SOTTO_RESAMPLE_MAX_SAMPLES * 768);
    CU_ASSERT_EQUAL(sotto_resample_length(-1, 16000, 8000), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_resample_length(SOTTO_RESAMPLE_MAX_SAMPLES + 1, 16000, 8000),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_resample_length(10, 999, 8000), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_resample_length(10, 16000, 768001), SOTTO_ERR_INVALID_ARG);
}

/* ---- round trips at every rate ---------------------------------------------------------- */

static float q16(float x)
{
    float v = x * 32768.0f;
    v = v > 32767.0f ? 32767.0f : v < -32768.0f ? -32768.0f : v;
    return rintf(v) / 32768.0f;
}

static void test_roundtrip_rates(void)
{
    const sotto_audio_file_format fmts[] = {SOTTO_AUDIO_WAV_FLOAT, SOTTO_AUDIO_WAV_PCM16,
                                            SOTTO_AUDIO_FLAC_PCM16};
    const char *ext[] = {"f.wav", "s.wav", "flac"};
    for (int ri = 0; ri < N_RATES; ri++) {
        int rate = k_rates[ri];
        int64_t n = rate / 2 + 37; /* half a second and an odd tail */
        float *x = sweep(n, rate, 50.0, 0.45 * rate, 0.8);
        x[10] = 1.0f; /* full scale clips to 32767 in 16-bit */
        x[11] = -1.0f;
        for (int fi = 0; fi < 3; fi++) {
            char name[64];
            snprintf(name, sizeof name, "rt_%d.%s", rate, ext[fi]);
            const char *path = tmp_path(name);
            sotto_status st;
            CU_ASSERT_EQUAL_FATAL(sotto_audio_write_file(path, x, n, rate, fmts[fi], &st),
                                  SOTTO_OK);
            float *y = NULL;
            int64_t m = 0;
            sotto_audio_info info;
            CU_ASSERT_EQUAL_FATAL(read_all(path, 0, &y, &m, &info, &st), SOTTO_OK);
            CU_ASSERT_EQUAL(m, n);
            CU_ASSERT_EQUAL(info.frames, n);
            CU_ASSERT_EQUAL(info.sample_rate_hz, rate);
            CU_ASSERT_EQUAL(info.out_rate_hz, rate);
            CU_ASSERT_EQUAL(info.channels, 1);
            CU_ASSERT_STRING_EQUAL(info.format, fi == 2 ? "FLAC" : "WAV");
            CU_ASSERT_STRING_EQUAL(info.encoding, fi == 0 ? "FLOAT" : "PCM_16");
            int exact = 1;
            double max_err = 0;
            for (int64_t i = 0; i < n && i < m; i++) {
                float want = fi == 0 ? x[i] : q16(x[i]);
                if (y[i] != want) exact = 0;
                double e = fabs((double)y[i] - x[i]);
                if (i != 10 && e > max_err) max_err = e;
            }
            CU_ASSERT_TRUE(exact); /* float is bit-exact, 16-bit is exactly the quantiser */
            CU_ASSERT_TRUE(max_err <= (fi == 0 ? 0.0 : 0.5 / 32768.0 + 1e-9));
            CU_ASSERT_EQUAL(y[10], fi == 0 ? 1.0f : 32767.0f / 32768.0f);
            sotto_audio_free(y, NULL);

            /* The same file read at the two model rates: exact lengths, original info. */
            const int targets[] = {16000, 24000};
            for (int t = 0; t < 2; t++) {
                CU_ASSERT_EQUAL_FATAL(read_all(path, targets[t], &y, &m, &info, &st), SOTTO_OK);
                int64_t want = sotto_audio_output_length(n, rate, targets[t]);
                CU_ASSERT_EQUAL(m, want);
                CU_ASSERT_EQUAL(info.out_samples, want);
                CU_ASSERT_EQUAL(info.out_rate_hz, targets[t]);
                CU_ASSERT_EQUAL(info.sample_rate_hz, rate);
                CU_ASSERT_EQUAL(info.frames, n);
                CU_ASSERT_EQUAL(info.channels, 1);
                CU_ASSERT_TRUE(all_finite(y, m));
                sotto_audio_free(y, NULL);
            }
        }
        free(x);
    }
}

static double zero_cross_hz(const float *y, int64_t a, int64_t b, int rate);

/* Other containers and codecs libsndfile writes here: read back at the file's rate and at
 * 16 kHz. Lossy codecs are only checked loosely (they shift and smear the waveform). */
static void test_other_formats(void)
{
    struct {
        const char *name;
        int format, rate, lossy;
    } cases[] = {{"a.aiff", SF_FORMAT_AIFF | SF_FORMAT_PCM_24, 44100, 0},
                 {"a.au", SF_FORMAT_AU | SF_FORMAT_ULAW, 8000, 1},
                 {"a.caf", SF_FORMAT_CAF | SF_FORMAT_PCM_32, 96000, 0},
                 {"a.w64", SF_FORMAT_W64 | SF_FORMAT_DOUBLE, 22050, 0},
                 {"a.ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS, 24000, 1},
                 {"a.opus", SF_FORMAT_OGG | SF_FORMAT_OPUS, 48000, 1},
                 {"a.mp3", SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, 16000, 1}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int rate = cases[c].rate;
        int64_t n = rate; /* one second */
        float *x = sine(n, rate, 440.0, 0.5);
        const char *path = tmp_path(cases[c].name);
        if (write_sf(path, cases[c].format, 1, rate, x, n) != 0) {
            fprintf(stderr, "  %s: libsndfile cannot write it here, skipped\n", cases[c].name);
            free(x);
            continue;
        }
        float *y = NULL;
        int64_t m = 0;
        sotto_audio_info info;
        sotto_status st;
        int rc = read_all(path, 0, &y, &m, &info, &st);
        if (rc) fprintf(stderr, "  %s\n", st.message);
        CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
        CU_ASSERT_EQUAL(info.sample_rate_hz, rate);
        CU_ASSERT_TRUE(all_finite(y, m));
        /* Lossless: the 440 Hz tone comes back exactly as stored. Lossy: same length within
         * a codec frame, and the tone's frequency survives. */
        if (!cases[c].lossy) {
            CU_ASSERT_EQUAL(m, n);
            TU_ASSERT_CLOSE(cases[c].name, y, x, n, 1e-6, -1);
        } else {
            CU_ASSERT_TRUE(llabs(m - n) <= 2048);
            double hz = zero_cross_hz(y, m / 4, m - m / 4, rate);
            fprintf(stderr, "  %s: %lld of %lld samples, tone at %.2f Hz\n", cases[c].name,
                    (long long)m, (long long)n, hz);
            CU_ASSERT_TRUE(fabs(hz - 440.0) < 1.0);
        }
        sotto_audio_free(y, NULL);
        CU_ASSERT_EQUAL(read_all(path, 16000, &y, &m, &info, &st), SOTTO_OK);
        CU_ASSERT_EQUAL(m, sotto_audio_output_length(info.frames, rate, 16000));
        CU_ASSERT_TRUE(all_finite(y, m));
        sotto_audio_free(y, NULL);
        free(x);
    }
}

/* ---- resampled sine keeps its frequency and phase ---------------------------------------- */

/* Frequency from the positive-going zero crossings in [a, b), interpolated to sub-sample. */
static double zero_cross_hz(const float *y, int64_t a, int64_t b, int rate)
{
    double first = -1, last = -1;
    int count = 0;
    for (int64_t i = a; i + 1 < b; i++) {
        if (y[i] < 0 && y[i + 1] >= 0) {
            double t = (double)i + (double)y[i] / ((double)y[i] - (double)y[i + 1]);
            if (first < 0) first = t;
            last = t;
            count++;
        }
    }
    return count > 1 ? (count - 1) * (double)rate / (last - first) : 0;
}

static void test_resampled_frequency(void)
{
    const int targets[] = {16000, 24000};
    for (int ri = 0; ri < N_RATES; ri++) {
        int rate = k_rates[ri];
        int64_t n = rate; /* one second */
        for (int t = 0; t < 2; t++) {
            int target = targets[t];
            int lo = rate < target ? rate : target;
            /* Tones well inside soxr's pass band (91 % of the lower Nyquist). */
            const double freqs[] = {440.0, 0.3 * lo};
            for (int fi = 0; fi < 2; fi++) {
                double f = freqs[fi];
                float *x = sine(n, rate, f, 0.5);
                int64_t m = sotto_resample_length(n, rate, target);
                float *y = malloc((size_t)m * sizeof *y);
                sotto_status st;
                CU_ASSERT_EQUAL_FATAL(sotto_resample(x, n, rate, target, y, m, NULL, &st), m);
                /* Away from the edges (where the band limit rings), the output is the same
                 * sine sampled at the new rate: same frequency and same phase, since soxr
                 * removes its filter delay. */
                int64_t a = m / 10, b = m - m / 10;
                double hz = zero_cross_hz(y, a, b, target);
                double max_err = 0;
                for (int64_t i = a; i < b; i++) {
                    double want = 0.5 * sin(2 * k_pi * f * (double)i / target);
                    double e = fabs(y[i] - want);
                    if (e > max_err) max_err = e;
                }
                if (fabs(hz - f) > 1e-3 * f || max_err > 1e-4)
                    fprintf(stderr, "%d -> %d Hz, tone %.1f Hz: measured %.3f Hz, err %.3g\n", rate,
                            target, f, hz, max_err);
                CU_ASSERT_TRUE(fabs(hz - f) <= 1e-3 * f);
                CU_ASSERT_TRUE(max_err <= 1e-4);
                free(x);
                free(y);
            }
        }
    }
}

/* ---- down-mix --------------------------------------------------------------------------- */

static void test_downmix(void)
{
    const int rate = 22050;
    const int64_t n = 5000;
    float *l = sweep(n, rate, 100, 5000, 0.7), *r = sine(n, rate, 1234, 0.4);
    float *st2 = malloc((size_t)n * 2 * sizeof *st2), *st3 = malloc((size_t)n * 3 * sizeof *st3);
    float *same = malloc((size_t)n * 2 * sizeof *same);
    for (int64_t i = 0; i < n; i++) {
        st2[2 * i] = l[i];
        st2[2 * i + 1] = r[i];
        st3[3 * i] = l[i];
        st3[3 * i + 1] = r[i];
        st3[3 * i + 2] = -0.25f;
        same[2 * i] = same[2 * i + 1] = l[i];
    }
    const char *p2 = tmp_path("dm2.wav"), *p3 = tmp_path("dm3.wav"), *ps = tmp_path("dms.flac");
    CU_ASSERT_EQUAL_FATAL(write_sf(p2, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 2, rate, st2, n), 0);
    CU_ASSERT_EQUAL_FATAL(write_sf(p3, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 3, rate, st3, n), 0);
    CU_ASSERT_EQUAL_FATAL(write_sf(ps, SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 2, rate, same, n), 0);
    float *y = NULL, *want = malloc((size_t)n * sizeof *want);
    int64_t m;
    sotto_audio_info info;
    sotto_status st;

    CU_ASSERT_EQUAL_FATAL(read_all(p2, 0, &y, &m, &info, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(info.channels, 2);
    CU_ASSERT_EQUAL(m, n);
    for (int64_t i = 0; i < n; i++)
        want[i] = (l[i] + r[i]) / 2;
    TU_ASSERT_CLOSE("stereo mean", y, want, n, 0.0, -1);
    sotto_audio_free(y, NULL);

    CU_ASSERT_EQUAL_FATAL(read_all(p3, 0, &y, &m, &info, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(info.channels, 3);
    for (int64_t i = 0; i < n; i++)
        want[i] = (float)(((double)l[i] + r[i] - 0.25) / 3.0);
    TU_ASSERT_CLOSE("3-channel mean", y, want, n, 1e-7, -1);
    sotto_audio_free(y, NULL);

    /* Identical channels give back the channel itself, bit for bit (compared with the same
     * channel stored as a mono file, since libsndfile's writer scales by 32767). */
    const char *pm = tmp_path("dmm.flac");
    CU_ASSERT_EQUAL_FATAL(write_sf(pm, SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 1, rate, l, n), 0);
    float *ym = NULL;
    int64_t mm = 0;
    CU_ASSERT_EQUAL_FATAL(read_all(ps, 0, &y, &m, &info, &st), SOTTO_OK);
    CU_ASSERT_EQUAL_FATAL(read_all(pm, 0, &ym, &mm, &info, &st), SOTTO_OK);
    CU_ASSERT_EQUAL_FATAL(mm, m);
    TU_ASSERT_CLOSE("identical channels", y, ym, n, 0.0, -1);
    sotto_audio_free(y, NULL);
    sotto_audio_free(ym, NULL);

    /* Down-mix happens before resampling: stereo at 22.05 kHz read at 16 kHz. */
    CU_ASSERT_EQUAL_FATAL(read_all(p2, 16000, &y, &m, &info, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(m, sotto_audio_output_length(n, rate, 16000));
    float *mono = malloc((size_t)n * sizeof *mono), *ref = malloc((size_t)m * sizeof *ref);
    for (int64_t i = 0; i < n; i++)
        mono[i] = (l[i] + r[i]) / 2;
    CU_ASSERT_EQUAL(sotto_resample(mono, n, rate, 16000, ref, m, NULL, &st), m);
    TU_ASSERT_CLOSE("down-mix then resample", y, ref, m, 0.0, -1);
    sotto_audio_free(y, NULL);
    free(mono);
    free(ref);
    free(l);
    free(r);
    free(st2);
    free(st3);
    free(same);
    free(want);
}

/* ---- NaN / Inf -------------------------------------------------------------------------- */

static void test_nonfinite(void)
{
    const int rate = 16000;
    const int64_t n = 6000;
    float *x = sine(n, rate, 300, 0.5);
    x[1234] = NAN;
    x[4000] = INFINITY;
    const char *path = tmp_path("nan.wav");
    CU_ASSERT_EQUAL_FATAL(write_sf(path, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 1, rate, x, n), 0);

    float *y = NULL;
    int64_t m = -1;
    sotto_status st;
    CU_ASSERT_EQUAL(read_all(path, 0, &y, &m, NULL, &st), SOTTO_ERR_BAD_AUDIO);
    CU_ASSERT_PTR_NULL(y);
    CU_ASSERT_EQUAL(m, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "nan.wav"));
    CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "frame 1234"));
    CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "NaN"));
    fprintf(stderr, "NaN rejection: %s\n", st.message);
    CU_ASSERT_EQUAL(read_all(path, 24000, &y, &m, NULL, &st), SOTTO_ERR_BAD_AUDIO);

    /* Sanitising: both replaced by zero and counted, the rest untouched. */
    sotto_audio_read_params p = sotto_audio_default_read_params();
    p.nonfinite = SOTTO_AUDIO_NONFINITE_ZERO;
    sotto_audio_info info;
    CU_ASSERT_EQUAL_FATAL(sotto_audio_read_file(path, &p, &y, &m, &info, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(info.nonfinite_samples, 2);
    CU_ASSERT_EQUAL(m, n);
    CU_ASSERT_EQUAL(y[1234], 0.0f);
    CU_ASSERT_EQUAL(y[4000], 0.0f);
    CU_ASSERT_EQUAL(y[1233], x[1233]);
    CU_ASSERT_TRUE(all_finite(y, m));
    sotto_audio_free(y, NULL);
    p.target_rate_hz = 24000;
    CU_ASSERT_EQUAL_FATAL(sotto_audio_read_file(path, &p, &y, &m, &info, &st), SOTTO_OK);
    CU_ASSERT_TRUE(all_finite(y, m));
    sotto_audio_free(y, NULL);

    /* Stereo: the message names the channel; the streaming reader fails the same way and
     * stays failed. */
    float *s2 = malloc((size_t)n * 2 * sizeof *s2);
    for (int64_t i = 0; i < n; i++)
        s2[2 * i] = s2[2 * i + 1] = 0.1f;
    s2[2 * 777 + 1] = -INFINITY;
    const char *p2 = tmp_path("inf2.wav");
    CU_ASSERT_EQUAL_FATAL(write_sf(p2, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 2, rate, s2, n), 0);
    sotto_audio_reader *rd = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_audio_reader_open(p2, NULL, &rd, NULL, &st), SOTTO_OK);
    float buf[256];
    CU_ASSERT_EQUAL(sotto_audio_reader_read(rd, buf, 256), SOTTO_ERR_BAD_AUDIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(sotto_audio_reader_last_error(rd), "frame 777 channel 1"));
    CU_ASSERT_EQUAL(sotto_audio_reader_read(rd, buf, 256), SOTTO_ERR_BAD_AUDIO);
    sotto_audio_reader_close(rd);

    /* Double-precision values beyond float range, and absurd finite ones, count as Inf. */
    const char *pd = tmp_path("big.wav");
    {
        SF_INFO si;
        memset(&si, 0, sizeof si);
        si.channels = 1;
        si.samplerate = rate;
        si.format = SF_FORMAT_WAV | SF_FORMAT_DOUBLE;
        SNDFILE *sf = sf_open(pd, SFM_WRITE, &si);
        CU_ASSERT_PTR_NOT_NULL_FATAL(sf);
        double d[4] = {0.1, 1e300, 0.2, 0.3};
        sf_writef_double(sf, d, 4);
        sf_close(sf);
    }
    CU_ASSERT_EQUAL(read_all(pd, 0, &y, &m, NULL, &st), SOTTO_ERR_BAD_AUDIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "frame 1"));
    {
        /* 3e38 is finite, but a stereo sum of two would overflow to Inf. */
        float huge[8] = {0.5f, 0.5f, 3e38f, 3e38f, 2e6f, 0.1f, 1048576.0f, -1048576.0f};
        const char *ph = tmp_path("huge.wav");
        CU_ASSERT_EQUAL_FATAL(write_sf(ph, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 2, rate, huge, 4), 0);
        CU_ASSERT_EQUAL(read_all(ph, 0, &y, &m, NULL, &st), SOTTO_ERR_BAD_AUDIO);
        CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "frame 1 channel 0 is 3e+38"));
        sotto_audio_read_params pz = sotto_audio_default_read_params();
        pz.nonfinite = SOTTO_AUDIO_NONFINITE_ZERO;
        CU_ASSERT_EQUAL_FATAL(sotto_audio_read_file(ph, &pz, &y, &m, &info, &st), SOTTO_OK);
        CU_ASSERT_EQUAL(info.nonfinite_samples, 3);
        CU_ASSERT_EQUAL(m, 4);
        CU_ASSERT_EQUAL(y[0], 0.5f);
        CU_ASSERT_EQUAL(y[1], 0.0f);
        CU_ASSERT_EQUAL(y[2], 0.05f);
        CU_ASSERT_EQUAL(y[3], 0.0f); /* the limit itself is allowed */
        sotto_audio_free(y, NULL);
    }

    /* Writing refuses non-finite samples and leaves no file behind. */
    const char *pw = tmp_path("nan_out.wav");
    CU_ASSERT_EQUAL(sotto_audio_write_file(pw, x, n, rate, SOTTO_AUDIO_WAV_PCM16, &st),
                    SOTTO_ERR_BAD_AUDIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "sample 1234"));
    CU_ASSERT_NOT_EQUAL(access(pw, F_OK), 0);
    sotto_audio_writer *w = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_audio_writer_open(pw, rate, SOTTO_AUDIO_WAV_FLOAT, NULL, &w, &st),
                          SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_audio_writer_write(w, x, 1000), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_audio_writer_write(w, x + 1000, 1000), SOTTO_ERR_BAD_AUDIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(sotto_audio_writer_last_error(w), "sample 1234"));
    CU_ASSERT_EQUAL(sotto_audio_writer_samples(w), 1000);
    CU_ASSERT_EQUAL(sotto_audio_writer_close(w, &st), SOTTO_OK);

    /* The resampler refuses them too, consuming nothing. */
    sotto_resampler *rs = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_resampler_create(16000, 24000, NULL, &rs, &st), SOTTO_OK);
    float out[4096];
    CU_ASSERT_EQUAL(sotto_resampler_push(rs, x + 1200, 100, out, 4096), SOTTO_ERR_BAD_AUDIO);
    CU_ASSERT_EQUAL(sotto_resampler_total_in(rs), 0);
    sotto_resampler_destroy(rs);
    CU_ASSERT_EQUAL(sotto_resample(x, n, 16000, 24000, out, 1, NULL, &st),
                    SOTTO_ERR_BUFFER_TOO_SMALL);
    float *big = malloc(sizeof(float) * 9000);
    CU_ASSERT_EQUAL(sotto_resample(x, n, 16000, 24000, big, 9000, NULL, &st), SOTTO_ERR_BAD_AUDIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "sample 1234"));
    free(big);
    free(s2);
    free(x);
}

/* ---- hostile files ---------------------------------------------------------------------- */

/* Expects a clean failure with `code` (0: any error) whose message names the file. */
static void expect_fail(const char *name, int code, const sotto_audio_read_params *p)
{
    const char *path = tmp_path(name);
    float *y = (float *)1;
    int64_t m = -1;
    sotto_status st;
    memset(&st, 0, sizeof st);
    int rc = sotto_audio_read_file(path, p, &y, &m, NULL, &st);
    fprintf(stderr, "  %-18s -> %d %s\n", name, rc, st.message);
    CU_ASSERT_TRUE(code ? rc == code : rc < 0);
    CU_ASSERT_PTR_NULL(y);
    CU_ASSERT_EQUAL(m, 0);
    CU_ASSERT_EQUAL(st.code, rc);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.message, name));
    /* The streaming reader gives the same verdict, at open or at the first read. */
    sotto_audio_reader *rd = NULL;
    int orc = sotto_audio_reader_open(path, p, &rd, NULL, &st);
    if (orc == SOTTO_OK) {
        float buf[512];
        int64_t k;
        while ((k = sotto_audio_reader_read(rd, buf, 512)) > 0) {
        }
        CU_ASSERT_EQUAL(k, rc);
        CU_ASSERT_PTR_NOT_NULL(strstr(sotto_audio_reader_last_error(rd), name));
        sotto_audio_reader_close(rd);
    } else {
        CU_ASSERT_EQUAL(orc, rc);
        CU_ASSERT_PTR_NULL(rd);
    }
}

static void test_bad_headers(void)
{
    const uint32_t ok_riff = 36 + 2000;
    write_wav_header(tmp_path("ok.wav"), ok_riff, 16, 1, 1, 16000, 16, 2000, 2000);
    float *y = NULL;
    int64_t m = 0;
    sotto_audio_info info;
    sotto_status st;
    CU_ASSERT_EQUAL(read_all(tmp_path("ok.wav"), 0, &y, &m, &info, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(m, 1000);
    sotto_audio_free(y, NULL);

    write_wav_header(tmp_path("trunc.wav"), ok_riff, 16, 1, 1, 16000, 16, 2000, 1000);
    expect_fail("trunc.wav", SOTTO_ERR_FORMAT, NULL);
    write_wav_header(tmp_path("hugedata.wav"), 0xFFFFFFF0u, 16, 1, 1, 16000, 16, 0xFFFFFF00u, 1000);
    expect_fail("hugedata.wav", SOTTO_ERR_FORMAT, NULL);
    /* The placeholder sizes of a "streaming" WAV (as in linphone's hello8000.wav). */
    write_wav_header(tmp_path("stream.wav"), 0x7FFFF024u, 16, 1, 1, 8000, 16, 0x7FFFF000u, 1000);
    expect_fail("stream.wav", SOTTO_ERR_FORMAT, NULL);
    write_wav_header(tmp_path("hugefmt.wav"), ok_riff, 0xFFFFFF00u, 1, 1, 16000, 16, 2000, 2000);
    expect_fail("hugefmt.wav", SOTTO_ERR_FORMAT, NULL);
    write_wav_header(tmp_path("longfmt.wav"), ok_riff, 1000, 1, 1, 16000, 16, 2000, 2000);
    expect_fail("longfmt.wav", SOTTO_ERR_FORMAT, NULL);
    write_wav_header(tmp_path("zeroch.wav"), ok_riff, 16, 1, 0, 16000, 16, 2000, 2000);
    expect_fail("zeroch.wav", SOTTO_ERR_FORMAT, NULL);
    write_wav_header(tmp_path("manych.wav"), 36 + 6000, 16, 1, 300, 16000, 16, 6000, 6000);
    expect_fail("manych.wav", SOTTO_ERR_UNSUPPORTED, NULL);
    write_wav_header(tmp_path("rate0.wav"), ok_riff, 16, 1, 1, 0, 16, 2000, 2000);
    expect_fail("rate0.wav", 0, NULL);
    write_wav_header(tmp_path("rate1.wav"), ok_riff, 16, 1, 1, 1, 16, 2000, 2000);
    expect_fail("rate1.wav", SOTTO_ERR_UNSUPPORTED, NULL);
    write_wav_header(tmp_path("rate10M.wav"), ok_riff, 16, 1, 1, 10000000, 16, 2000, 2000);
    expect_fail("rate10M.wav", SOTTO_ERR_UNSUPPORTED, NULL);
    write_wav_header(tmp_path("bits0.wav"), ok_riff, 16, 1, 1, 16000, 0, 2000, 2000);
    expect_fail("bits0.wav", 0, NULL);
    write_wav_header(tmp_path("tag99.wav"), ok_riff, 16, 99, 1, 16000, 16, 2000, 2000);
    expect_fail("tag99.wav", 0, NULL);

    /* Garbage, empty, missing. */
    {
        tu_rng r;
        tu_rng_init(&r, g_seed);
        unsigned char g[5000];
        for (size_t i = 0; i < sizeof g; i++)
            g[i] = (unsigned char)tu_rng_u32(&r);
        spit(tmp_path("garbage.wav"), g, sizeof g);
        memcpy(g, "RIFF", 4); /* a plausible start does not help */
        spit(tmp_path("garbage2.wav"), g, sizeof g);
        spit(tmp_path("empty.flac"), g, 0);
    }
    expect_fail("garbage.wav", SOTTO_ERR_FORMAT, NULL);
    expect_fail("garbage2.wav", SOTTO_ERR_FORMAT, NULL);
    expect_fail("empty.flac", SOTTO_ERR_FORMAT, NULL);
    expect_fail("does_not_exist.wav", SOTTO_ERR_IO, NULL);

    /* allow_truncated reads what is there and reports the shortfall. */
    sotto_audio_read_params p = sotto_audio_default_read_params();
    p.allow_truncated = 1;
    CU_ASSERT_EQUAL(sotto_audio_read_file(tmp_path("trunc.wav"), &p, &y, &m, &info, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(m, 500);
    CU_ASSERT_EQUAL(info.missing_frames, 500);
    sotto_audio_free(y, NULL);
    CU_ASSERT_EQUAL(sotto_audio_read_file(tmp_path("stream.wav"), &p, &y, &m, &info, &st),
                    SOTTO_OK);
    CU_ASSERT_EQUAL(m, 500);
    CU_ASSERT_EQUAL(info.sample_rate_hz, 8000);
    sotto_audio_free(y, NULL);

    /* A FLAC cut in half: found at the end of decoding, or read up to the cut. */
    {
        const int64_t n = 48000;
        float *x = sweep(n, 16000, 100, 7000, 0.5);
        const char *full = tmp_path("full.flac");
        CU_ASSERT_EQUAL_FATAL(
            sotto_audio_write_file(full, x, n, 16000, SOTTO_AUDIO_FLAC_PCM16, &st), SOTTO_OK);
        size_t size = 0;
        unsigned char *b = slurp(full, &size);
        spit(tmp_path("half.flac"), b, size / 2);
        free(b);
        free(x);
        expect_fail("half.flac", SOTTO_ERR_FORMAT, NULL);
        CU_ASSERT_EQUAL(sotto_audio_read_file(tmp_path("half.flac"), &p, &y, &m, &info, &st),
                        SOTTO_OK);
        CU_ASSERT_TRUE(m > 0 && m < n);
        CU_ASSERT_EQUAL(info.frames + info.missing_frames, n);
        CU_ASSERT_EQUAL(info.out_samples, m);
        sotto_audio_free(y, NULL);
    }

    /* max_frames: refused at open when the header declares more. */
    p = sotto_audio_default_read_params();
    p.max_frames = 999;
    expect_fail("ok.wav", SOTTO_ERR_UNSUPPORTED, &p);
    p.max_frames = 1000;
    CU_ASSERT_EQUAL(sotto_audio_read_file(tmp_path("ok.wav"), &p, &y, &m, &info, &st), SOTTO_OK);
    sotto_audio_free(y, NULL);

    /* Bad arguments. */
    p = sotto_audio_default_read_params();
    p.target_rate_hz = 500;
    CU_ASSERT_EQUAL(sotto_audio_read_file(tmp_path("ok.wav"), &p, &y, &m, NULL, &st),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_audio_read_file(NULL, NULL, &y, &m, NULL, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_audio_read_file(tmp_path("ok.wav"), NULL, NULL, &m, NULL, &st),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_audio_reader_read(NULL, NULL, 0), SOTTO_ERR_INVALID_ARG);
}

/* Cuts and bit flips of real encoded files: any verdict is fine, a crash is not (run under
 * the sanitiser build to catch memory errors too). */
static void test_mangled_files(void)
{
    const int rate = 16000;
    const int64_t n = 20000;
    float *x = sweep(n, rate, 100, 7000, 0.6);
    const char *srcs[] = {"mangle.wav", "mangle.flac"};
    const sotto_audio_file_format fmts[] = {SOTTO_AUDIO_WAV_PCM16, SOTTO_AUDIO_FLAC_PCM16};
    tu_rng rng;
    tu_rng_init(&rng, g_seed + 1);
    sotto_status st;
    for (int s = 0; s < 2; s++) {
        CU_ASSERT_EQUAL_FATAL(sotto_audio_write_file(tmp_path(srcs[s]), x, n, rate, fmts[s], &st),
                              SOTTO_OK);
        size_t size = 0;
        unsigned char *orig = slurp(tmp_path(srcs[s]), &size);
        CU_ASSERT_PTR_NOT_NULL_FATAL(orig);
        unsigned char *b = malloc(size);
        int n_ok = 0, n_err = 0;
        for (int trial = 0; trial < 120; trial++) {
            size_t len = size;
            memcpy(b, orig, size);
            if (trial < 60) {
                /* cuts: every header byte early on, then spread over the file */
                len = trial < 30 ? (size_t)trial * 3 : (size_t)(tu_rng_u32(&rng) % size);
            } else {
                int flips = 1 + (int)(tu_rng_u32(&rng) % 8);
                for (int k = 0; k < flips; k++) {
                    size_t at = trial < 90 ? tu_rng_u32(&rng) % 64 : tu_rng_u32(&rng) % size;
                    b[at] ^= (unsigned char)(1u << (tu_rng_u32(&rng) % 8));
                }
            }
            const char *path = tmp_path("mangled.bin");
            spit(path, b, len);
            for (int allow = 0; allow < 2; allow++) {
                sotto_audio_read_params p = sotto_audio_default_read_params();
                p.allow_truncated = allow;
                p.target_rate_hz = allow ? 24000 : 0;
                p.max_frames = 1 << 22; /* a lying header cannot make us decode forever */
                float *y = NULL;
                int64_t m = 0;
                sotto_audio_info info;
                int rc = sotto_audio_read_file(path, &p, &y, &m, &info, &st);
                if (rc == SOTTO_OK) {
                    n_ok++;
                    CU_ASSERT_EQUAL(m, info.out_samples);
                    /* A flipped bit in the header can turn 16-bit PCM into float data: any
                     * NaN in it must have been refused above. */
                    CU_ASSERT_TRUE(all_finite(y, m));
                    sotto_audio_free(y, NULL);
                } else {
                    n_err++;
                    CU_ASSERT_PTR_NULL(y);
                    CU_ASSERT_TRUE(st.message[0] != '\0');
                }
            }
        }
        fprintf(stderr, "  %s: %d reads ok, %d refused\n", srcs[s], n_ok, n_err);
        free(b);
        free(orig);
    }
    free(x);
}

/* ---- streaming reader == offline -------------------------------------------------------- */

static void test_reader_equals_offline(void)
{
    struct {
        int rate, channels, target;
        const char *name;
    } cases[] = {{44100, 1, 16000, "s1.wav"},  {8000, 1, 24000, "s2.flac"},
                 {16000, 1, 0, "s3.wav"},      {48000, 2, 16000, "s4.wav"},
                 {11025, 2, 24000, "s5.flac"}, {24000, 1, 24000, "s6.wav"}};
    const int64_t chunks[] = {1, 7, 160, 4096, 100000, -1};
    tu_rng rng;
    tu_rng_init(&rng, g_seed + 2);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int ch = cases[c].channels, rate = cases[c].rate;
        int64_t n = rate * 3 / 4 + 11;
        float *x = malloc((size_t)(n * ch) * sizeof *x);
        tu_fill_uniform(&rng, x, (size_t)(n * ch), -0.9f, 0.9f);
        int fmt = strstr(cases[c].name, "flac") ? SF_FORMAT_FLAC | SF_FORMAT_PCM_16
                                                : SF_FORMAT_WAV | SF_FORMAT_FLOAT;
        const char *path = tmp_path(cases[c].name);
        CU_ASSERT_EQUAL_FATAL(write_sf(path, fmt, ch, rate, x, n), 0);
        float *ref = NULL;
        int64_t m = 0;
        sotto_audio_info info;
        sotto_status st;
        CU_ASSERT_EQUAL_FATAL(read_all(path, cases[c].target, &ref, &m, &info, &st), SOTTO_OK);
        CU_ASSERT_EQUAL(
            m, sotto_audio_output_length(n, rate, cases[c].target ? cases[c].target : rate));
        float *got = malloc((size_t)(m + 1) * sizeof *got);
        for (size_t k = 0; k < sizeof chunks / sizeof chunks[0]; k++) {
            sotto_audio_read_params p = sotto_audio_default_read_params();
            p.target_rate_hz = cases[c].target;
            sotto_audio_reader *rd = NULL;
            sotto_audio_info oinfo;
            CU_ASSERT_EQUAL_FATAL(sotto_audio_reader_open(path, &p, &rd, &oinfo, &st), SOTTO_OK);
            CU_ASSERT_EQUAL(oinfo.frames, n);
            CU_ASSERT_EQUAL(oinfo.out_samples, m);
            int64_t total = 0, r;
            for (;;) {
                int64_t want = chunks[k] > 0 ? chunks[k] : 1 + tu_rng_u32(&rng) % 3000;
                if (want > m + 1 - total) want = m + 1 - total;
                r = sotto_audio_reader_read(rd, got + total, want);
                if (r <= 0) break;
                total += r;
                if (total > m) break;
            }
            CU_ASSERT_EQUAL(r, 0);
            CU_ASSERT_EQUAL(total, m);
            CU_ASSERT_EQUAL(sotto_audio_reader_read(rd, got, 10), 0); /* stays at the end */
            CU_ASSERT_TRUE(total == m && memcmp(got, ref, (size_t)m * sizeof *got) == 0);
            sotto_audio_info end;
            CU_ASSERT_EQUAL(sotto_audio_reader_info(rd, &end), SOTTO_OK);
            CU_ASSERT_EQUAL(end.frames, n);
            sotto_audio_reader_close(rd);
        }
        sotto_audio_free(ref, NULL);
        free(got);
        free(x);
    }
}

/* ---- streaming resampler == offline ----------------------------------------------------- */

static void test_resampler_stream(void)
{
    const int targets[] = {16000, 24000, 48000};
    const int64_t chunks[] = {1, 7, 160, 4096};
    tu_rng rng;
    tu_rng_init(&rng, g_seed + 3);
    fprintf(stderr, "  pair            max pending output samples (latency) over chunk 1..4096\n");
    for (int ri = 0; ri < N_RATES; ri++) {
        for (int t = 0; t < 3; t++) {
            int in_hz = k_rates[ri], out_hz = targets[t];
            int64_t n = in_hz * 3 / 10 + 101; /* longer than the largest latency */
            float *x = malloc((size_t)n * sizeof *x);
            tu_fill_uniform(&rng, x, (size_t)n, -1.0f, 1.0f);
            int64_t m = sotto_resample_length(n, in_hz, out_hz);
            float *ref = malloc((size_t)m * sizeof *ref), *y = malloc((size_t)(m + 8) * sizeof *y);
            sotto_status st;
            CU_ASSERT_EQUAL_FATAL(sotto_resample(x, n, in_hz, out_hz, ref, m, NULL, &st), m);
            sotto_resampler *rs = NULL;
            CU_ASSERT_EQUAL_FATAL(sotto_resampler_create(in_hz, out_hz, NULL, &rs, &st), SOTTO_OK);
            int64_t max_pending = 0;
            for (size_t k = 0; k < sizeof chunks / sizeof chunks[0]; k++) {
                CU_ASSERT_EQUAL(sotto_resampler_reset(rs), SOTTO_OK);
                int64_t total = 0;
                int ok = 1;
                for (int64_t i = 0; i < n && ok; i += chunks[k]) {
                    int64_t len = n - i < chunks[k] ? n - i : chunks[k];
                    int64_t cap = sotto_resampler_max_output(rs, len);
                    if (cap > 0 && (i / chunks[k]) % 97 == 3) {
                        /* One short of the bound: refused, nothing consumed. */
                        int64_t before = sotto_resampler_total_in(rs);
                        CU_ASSERT_EQUAL(sotto_resampler_push(rs, x + i, len, y + total, cap - 1),
                                        SOTTO_ERR_BUFFER_TOO_SMALL);
                        CU_ASSERT_EQUAL(sotto_resampler_total_in(rs), before);
                    }
                    if (total + cap > m) {
                        ok = 0;
                        break;
                    }
                    int64_t got = sotto_resampler_push(rs, x + i, len, y + total, cap);
                    CU_ASSERT_TRUE(got >= 0 && got <= cap);
                    if (got < 0) ok = 0;
                    total += got > 0 ? got : 0;
                    int64_t pend = sotto_resampler_pending_samples(rs);
                    if (pend > max_pending) max_pending = pend;
                }
                CU_ASSERT_TRUE_FATAL(ok);
                int64_t pend = sotto_resampler_pending_samples(rs);
                int64_t f;
                /* Flush in small pieces to exercise the partial flush. */
                while ((f = sotto_resampler_flush(rs, y + total,
                                                  333 < m - total ? 333 : m - total)) > 0)
                    total += f;
                CU_ASSERT_EQUAL(f, 0);
                CU_ASSERT_EQUAL(total, m);
                CU_ASSERT_TRUE(pend >= 0 && pend <= m);
                CU_ASSERT_EQUAL(sotto_resampler_total_out(rs), m);
                CU_ASSERT_EQUAL(sotto_resampler_push(rs, x, 1, y, 100), SOTTO_ERR_STATE);
                /* Documented tolerance: none. soxr is chunking-invariant. */
                CU_ASSERT_TRUE(total == m && memcmp(y, ref, (size_t)m * sizeof *y) == 0);
            }
            /* Pull style with tiny output buffers. */
            for (int64_t cap = 1; cap <= 1000; cap *= cap == 1 ? 10 : 100) {
                CU_ASSERT_EQUAL(sotto_resampler_reset(rs), SOTTO_OK);
                int64_t pos = 0, total = 0;
                while (pos < n) {
                    int64_t used = -1, c2 = cap < m - total ? cap : m - total;
                    int64_t got =
                        sotto_resampler_push_some(rs, x + pos, n - pos, &used, y + total, c2);
                    CU_ASSERT_TRUE_FATAL(got >= 0 && got <= c2 && used >= 0);
                    CU_ASSERT_TRUE_FATAL(got > 0 || used > 0);
                    pos += used;
                    total += got;
                }
                int64_t f;
                while ((f = sotto_resampler_flush(rs, y + total,
                                                  cap < m - total ? cap : m - total)) > 0)
                    total += f;
                CU_ASSERT_EQUAL(total, m);
                CU_ASSERT_TRUE(total == m && memcmp(y, ref, (size_t)m * sizeof *y) == 0);
            }
            if (in_hz != out_hz)
                fprintf(stderr, "  %6d -> %6d  %6lld (%.1f ms)\n", in_hz, out_hz,
                        (long long)max_pending, 1000.0 * (double)max_pending / out_hz);
            sotto_resampler_destroy(rs);
            free(x);
            free(ref);
            free(y);
        }
    }
    /* Equal rates copy; arguments. */
    float a[5] = {1, 2, 3, 4, 5}, b[5];
    sotto_status st;
    CU_ASSERT_EQUAL(sotto_resample(a, 5, 16000, 16000, b, 5, NULL, &st), 5);
    CU_ASSERT_EQUAL(memcmp(a, b, sizeof a), 0);
    sotto_resampler *rs = (sotto_resampler *)1;
    CU_ASSERT_EQUAL(sotto_resampler_create(16000, 100, NULL, &rs, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NULL(rs);
    CU_ASSERT_EQUAL(sotto_resampler_create(16000, 8000, NULL, NULL, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_resampler_push(NULL, a, 1, b, 5), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_resampler_flush(NULL, b, 5), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_resample(NULL, 5, 16000, 8000, b, 5, NULL, &st), SOTTO_ERR_INVALID_ARG);
}

/* ---- writers ---------------------------------------------------------------------------- */

static void test_writers(void)
{
    CU_ASSERT_EQUAL(sotto_audio_format_for_path("a/b.WAV", 0), SOTTO_AUDIO_WAV_PCM16);
    CU_ASSERT_EQUAL(sotto_audio_format_for_path("x.wav", 1), SOTTO_AUDIO_WAV_FLOAT);
    CU_ASSERT_EQUAL(sotto_audio_format_for_path("x.flac", 0), SOTTO_AUDIO_FLAC_PCM16);
    CU_ASSERT_EQUAL(sotto_audio_format_for_path("x.flac", 1), SOTTO_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(sotto_audio_format_for_path("x.mp3", 0), SOTTO_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(sotto_audio_format_for_path("noext", 0), SOTTO_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(sotto_audio_format_for_path(NULL, 0), SOTTO_ERR_INVALID_ARG);

    /* A writer fed in odd pieces makes the same file as the one-shot call. */
    const int rate = 24000;
    const int64_t n = 30011;
    float *x = sweep(n, rate, 60, 11000, 0.9);
    x[5] = 3.0f; /* clips in 16-bit, stays in float */
    for (int f = 0; f < 3; f++) {
        sotto_status st;
        const char *a = tmp_path(f == 2 ? "w1.flac" : "w1.wav"),
                   *b = tmp_path(f == 2 ? "w2.flac" : "w2.wav");
        CU_ASSERT_EQUAL_FATAL(
            sotto_audio_write_file(a, x, n, rate, (sotto_audio_file_format)f, &st), SOTTO_OK);
        sotto_audio_writer *w = NULL;
        CU_ASSERT_EQUAL_FATAL(
            sotto_audio_writer_open(b, rate, (sotto_audio_file_format)f, NULL, &w, &st), SOTTO_OK);
        for (int64_t i = 0, k = 1; i < n; i += k, k = k * 3 + 1) {
            int64_t len = n - i < k ? n - i : k;
            CU_ASSERT_EQUAL(sotto_audio_writer_write(w, x + i, len), SOTTO_OK);
        }
        CU_ASSERT_EQUAL(sotto_audio_writer_samples(w), n);
        CU_ASSERT_EQUAL(sotto_audio_writer_close(w, &st), SOTTO_OK);
        float *ya = NULL, *yb = NULL;
        int64_t ma = 0, mb = 0;
        CU_ASSERT_EQUAL_FATAL(read_all(a, 0, &ya, &ma, NULL, &st), SOTTO_OK);
        CU_ASSERT_EQUAL_FATAL(read_all(b, 0, &yb, &mb, NULL, &st), SOTTO_OK);
        CU_ASSERT_TRUE(ma == n && mb == n && memcmp(ya, yb, (size_t)n * sizeof *ya) == 0);
        CU_ASSERT_EQUAL(ya[5], f == 1 ? 3.0f : 32767.0f / 32768.0f);
        sotto_audio_free(ya, NULL);
        sotto_audio_free(yb, NULL);
    }
    free(x);

    sotto_status st;
    sotto_audio_writer *w = (sotto_audio_writer *)1;
    CU_ASSERT_EQUAL(
        sotto_audio_writer_open(tmp_path("r.wav"), 999, SOTTO_AUDIO_WAV_PCM16, NULL, &w, &st),
        SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NULL(w);
    CU_ASSERT_EQUAL(sotto_audio_writer_open(tmp_path("r.wav"), 16000, (sotto_audio_file_format)7,
                                            NULL, &w, &st),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_audio_writer_open(tmp_path("no/such/dir/r.wav"), 16000,
                                            SOTTO_AUDIO_WAV_PCM16, NULL, &w, &st),
                    SOTTO_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "r.wav"));
    CU_ASSERT_EQUAL(
        sotto_audio_writer_open(tmp_path("r.flac"), 768000, SOTTO_AUDIO_FLAC_PCM16, NULL, &w, &st),
        SOTTO_ERR_UNSUPPORTED); /* FLAC stops at 655350 Hz */
    CU_ASSERT_EQUAL(sotto_audio_writer_close(NULL, NULL), SOTTO_OK);
    float z = 0;
    CU_ASSERT_EQUAL(
        sotto_audio_write_file(tmp_path("e.wav"), &z, 0, 16000, SOTTO_AUDIO_WAV_PCM16, &st),
        SOTTO_OK);
    float *y = NULL;
    int64_t m = -1;
    CU_ASSERT_EQUAL(read_all(tmp_path("e.wav"), 24000, &y, &m, NULL, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(m, 0);
    CU_ASSERT_PTR_NOT_NULL(y);
    sotto_audio_free(y, NULL);
}

/* ---- allocator hooks -------------------------------------------------------------------- */

/* Counts live blocks and the peak of live bytes (a size header sits before each block). */
static int g_live_allocs;
static size_t g_live_bytes, g_peak_bytes;
static void *count_alloc(size_t size, size_t align, void *user)
{
    (void)user;
    size_t pad = align > sizeof(size_t) ? align : sizeof(size_t);
    unsigned char *p = aligned_alloc(align, (size + pad + align - 1) / align * align);
    if (!p) return NULL;
    memcpy(p + pad - sizeof(size_t), &size, sizeof size);
    g_live_allocs++;
    g_live_bytes += size;
    if (g_live_bytes > g_peak_bytes) g_peak_bytes = g_live_bytes;
    return p + pad;
}
static void count_free(void *ptr, void *user)
{
    (void)user;
    if (!ptr) return;
    size_t align = 64, pad = align; /* Sotto always asks for 64-byte alignment */
    unsigned char *p = (unsigned char *)ptr - pad;
    size_t size;
    memcpy(&size, p + pad - sizeof(size_t), sizeof size);
    g_live_allocs--;
    g_live_bytes -= size;
    free(p);
}

static void test_allocator(void)
{
    sotto_allocator hooks = {count_alloc, count_free, NULL};
    const int rate = 44100;
    const int64_t n = 20000;
    float *x = sweep(n, rate, 100, 9000, 0.5);
    sotto_status st;
    const char *path = tmp_path("alloc.flac");
    CU_ASSERT_EQUAL_FATAL(sotto_audio_write_file(path, x, n, rate, SOTTO_AUDIO_FLAC_PCM16, &st),
                          SOTTO_OK);
    sotto_audio_read_params p = sotto_audio_default_read_params();
    p.allocator = &hooks;
    p.target_rate_hz = 16000;
    float *y = NULL;
    int64_t m = 0;
    CU_ASSERT_EQUAL_FATAL(sotto_audio_read_file(path, &p, &y, &m, NULL, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(g_live_allocs, 1); /* only the returned buffer is still live */
    sotto_audio_free(y, &hooks);
    CU_ASSERT_EQUAL(g_live_allocs, 0);
    sotto_audio_reader *rd = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_audio_reader_open(path, &p, &rd, NULL, &st), SOTTO_OK);
    CU_ASSERT_TRUE(g_live_allocs > 0);
    sotto_audio_reader_close(rd);
    CU_ASSERT_EQUAL(g_live_allocs, 0);
    sotto_audio_writer *w = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_audio_writer_open(tmp_path("alloc.wav"), rate,
                                                  SOTTO_AUDIO_WAV_PCM16, &hooks, &w, &st),
                          SOTTO_OK);
    CU_ASSERT_TRUE(g_live_allocs > 0);
    CU_ASSERT_EQUAL(sotto_audio_writer_write(w, x, n), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_audio_writer_close(w, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(g_live_allocs, 0);
    /* Failures free everything too. */
    unsigned char junk[300];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(i * 151 + 7);
    spit(tmp_path("junk.wav"), junk, sizeof junk);
    CU_ASSERT_EQUAL(sotto_audio_read_file(tmp_path("junk.wav"), &p, &y, &m, NULL, &st),
                    SOTTO_ERR_FORMAT);
    CU_ASSERT_EQUAL(g_live_allocs, 0);
    free(x);

    /* Bounded memory: two minutes of 48 kHz stereo streamed to 16 kHz in 160-sample reads
     * keep Sotto's own allocations to the reader's fixed blocks. */
    const int64_t long_frames = 48000 * 120;
    float *block = malloc(sizeof(float) * 2 * 48000);
    for (int i = 0; i < 2 * 48000; i++)
        block[i] = 0.3f * sinf(0.01f * (float)i);
    SF_INFO si;
    memset(&si, 0, sizeof si);
    si.channels = 2;
    si.samplerate = 48000;
    si.format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
    const char *lp = tmp_path("long.flac");
    SNDFILE *sf = sf_open(lp, SFM_WRITE, &si);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sf);
    for (int64_t i = 0; i < long_frames; i += 48000)
        sf_writef_float(sf, block, 48000);
    sf_close(sf);
    free(block);
    g_peak_bytes = g_live_bytes;
    CU_ASSERT_EQUAL_FATAL(sotto_audio_reader_open(lp, &p, &rd, NULL, &st), SOTTO_OK);
    float buf[160];
    int64_t total = 0, k;
    while ((k = sotto_audio_reader_read(rd, buf, 160)) > 0)
        total += k;
    CU_ASSERT_EQUAL(k, 0);
    CU_ASSERT_EQUAL(total, sotto_audio_output_length(long_frames, 48000, 16000));
    sotto_audio_reader_close(rd);
    fprintf(stderr, "  streaming %lld frames: peak %zu bytes allocated by Sotto\n",
            (long long)long_frames, g_peak_bytes);
    CU_ASSERT_TRUE(g_peak_bytes < 128 * 1024);
    CU_ASSERT_EQUAL(g_live_allocs, 0);
}

/* ---- real speech ------------------------------------------------------------------------ */

typedef struct manifest_row {
    char file[256];
    int rate;
    double duration_s;
    int seen;
} manifest_row;

/* Parses MANIFEST.tsv: a header row naming the columns, one clip per row. */
static int read_manifest(const char *dir, manifest_row *rows, int max_rows)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/MANIFEST.tsv", dir);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    static char line[65536];
    int col_file = -1, col_rate = -1, col_dur = -1, n = 0;
    if (fgets(line, sizeof line, f)) {
        int c = 0;
        for (char *tok = line, *tab; tok; tok = tab ? tab + 1 : NULL, c++) {
            tab = strchr(tok, '\t');
            if (tab) *tab = '\0';
            tok[strcspn(tok, "\r\n")] = '\0';
            if (!strcmp(tok, "file")) col_file = c;
            if (!strcmp(tok, "sample_rate")) col_rate = c;
            if (!strcmp(tok, "duration_s")) col_dur = c;
        }
    }
    if (col_file < 0 || col_rate < 0 || col_dur < 0) {
        fclose(f);
        return -1;
    }
    while (n < max_rows && fgets(line, sizeof line, f)) {
        manifest_row r;
        memset(&r, 0, sizeof r);
        int c = 0;
        for (char *tok = line, *tab; tok; tok = tab ? tab + 1 : NULL, c++) {
            tab = strchr(tok, '\t');
            if (tab) *tab = '\0';
            tok[strcspn(tok, "\r\n")] = '\0';
            if (c == col_file) {
                size_t len = strlen(tok) < sizeof r.file ? strlen(tok) : sizeof r.file - 1;
                memcpy(r.file, tok, len);
                r.file[len] = '\0';
            }
            if (c == col_rate) r.rate = atoi(tok);
            if (c == col_dur) r.duration_s = atof(tok);
        }
        if (r.file[0]) rows[n++] = r;
    }
    fclose(f);
    return n;
}

static void test_real_speech(void)
{
    const char *dir = getenv("SOTTO_SPEECH_DIR");
    if (!dir || !*dir) dir = "../../shared/data/speech";
    static manifest_row rows[512];
    int n_rows = read_manifest(dir, rows, 512);
    if (n_rows < 0) {
        fprintf(stderr, "  no speech clips at %s (set SOTTO_SPEECH_DIR): skipped\n", dir);
        return;
    }
    CU_ASSERT_TRUE(n_rows > 0);
    DIR *d = opendir(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    int n_files = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *dot = strrchr(e->d_name, '.');
        if (e->d_name[0] == '.' || !dot || !strcmp(dot, ".tsv") || !strcmp(dot, ".md") ||
            !strcmp(dot, ".txt"))
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        manifest_row *row = NULL;
        for (int i = 0; i < n_rows; i++)
            if (!strcmp(rows[i].file, e->d_name)) row = &rows[i];
        if (!row) {
            /* Subfolders (licences) are not clips; any other file must be listed. */
            DIR *sub = opendir(path);
            if (sub) {
                closedir(sub);
                continue;
            }
            fprintf(stderr, "  %s is not in MANIFEST.tsv\n", e->d_name);
            CU_FAIL("speech file missing from the manifest");
            continue;
        }
        row->seen = 1;
        n_files++;
        float *y = NULL;
        int64_t m = 0;
        sotto_audio_info info;
        sotto_status st;
        int rc = read_all(path, 0, &y, &m, &info, &st);
        if (rc != SOTTO_OK) fprintf(stderr, "  %s\n", st.message);
        CU_ASSERT_EQUAL(rc, SOTTO_OK);
        if (rc) continue;
        CU_ASSERT_EQUAL(info.sample_rate_hz, row->rate);
        CU_ASSERT_TRUE(fabs((double)m / info.sample_rate_hz - row->duration_s) < 0.0015);
        CU_ASSERT_TRUE(m > 0 && all_finite(y, m));
        double peak = 0;
        for (int64_t i = 0; i < m; i++)
            peak = fabs(y[i]) > peak ? fabs(y[i]) : peak;
        CU_ASSERT_TRUE(peak > 0.01 && peak <= 1.0);
        sotto_audio_free(y, NULL);
        /* At the model rates too: exact lengths, finite. */
        const int targets[] = {16000, 24000};
        for (int t = 0; t < 2; t++) {
            rc = read_all(path, targets[t], &y, &m, &info, &st);
            CU_ASSERT_EQUAL(rc, SOTTO_OK);
            if (rc) continue;
            CU_ASSERT_EQUAL(m, sotto_audio_output_length(info.frames, row->rate, targets[t]));
            CU_ASSERT_TRUE(all_finite(y, m));
            sotto_audio_free(y, NULL);
        }
    }
    closedir(d);
    for (int i = 0; i < n_rows; i++)
        if (!rows[i].seen) {
            fprintf(stderr, "  %s is listed but absent\n", rows[i].file);
            CU_FAIL("manifest lists a missing file");
        }
    fprintf(stderr, "  read %d speech clips from %s\n", n_files, dir);
    CU_ASSERT_EQUAL(n_files, n_rows);
}

/* ---- runner ----------------------------------------------------------------------------- */

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        remove(p);
    }
    closedir(d);
    rmdir(dir);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/sotto_audio_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    g_seed = tu_seed();
    static const tu_test tests[] = {{"length_rule", test_length_rule},
                                    {"roundtrip_rates", test_roundtrip_rates},
                                    {"other_formats", test_other_formats},
                                    {"resampled_frequency", test_resampled_frequency},
                                    {"downmix", test_downmix},
                                    {"nonfinite", test_nonfinite},
                                    {"bad_headers", test_bad_headers},
                                    {"mangled_files", test_mangled_files},
                                    {"reader_equals_offline", test_reader_equals_offline},
                                    {"resampler_stream", test_resampler_stream},
                                    {"writers", test_writers},
                                    {"allocator", test_allocator},
                                    {"real_speech", test_real_speech},
                                    {NULL, NULL}};
    int rc = tu_run_suite("audio_io", tests);
    remove_dir(g_dir);
    return rc;
}
