/*
 * DSP front ends against torch / torchaudio / vocos on real speech (fixtures written by
 * tools/golden/dsp.py into data/dsp/). Tolerances are set a few times above what was
 * measured when the fixtures were made (recorded in docs/dsp.md); the reference runs in
 * float32 with a different FFT (pocketfft), so agreement is to float rounding, not bits.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsp/fbank.h"
#include "dsp/mel.h"
#include "dsp/stft.h"
#include "testutil.h"

/* Loads tensor `name`, checking its element count when want_n ≥ 0. */
static float *load(const sotto_gguf *g, const char *name, int64_t want_n, int64_t *n_out)
{
    int64_t n = 0;
    float *p = tu_golden_f32(g, name, &n, NULL);
    if (p && want_n >= 0 && n != want_n) {
        fprintf(stderr, "%s: %lld values, expected %lld\n", name, (long long)n, (long long)want_n);
        CU_FAIL("fixture tensor size");
        free(p);
        return NULL;
    }
    if (n_out) *n_out = n;
    return p;
}

static sotto_stft *plan(int n_fft, int hop, int win, sotto_stft_pad pad, int inverse)
{
    sotto_stft_params p = sotto_stft_default_params();
    p.n_fft = n_fft;
    p.hop_length = hop;
    p.win_length = win;
    p.pad = pad;
    p.for_inverse = inverse;
    sotto_stft *s = NULL;
    sotto_status st;
    if (sotto_stft_create(&p, NULL, &s, &st) != SOTTO_OK)
        fprintf(stderr, "stft create: %s\n", st.message);
    return s;
}

/* ---- STFT / ISTFT ---------------------------------------------------------------------- */

static void check_stft(const sotto_gguf *g, const char *xname, const char *name, int n_fft, int hop,
                       int win)
{
    int64_t n = 0;
    float *x = load(g, xname, -1, &n);
    sotto_stft *s = plan(n_fft, hop, win, SOTTO_STFT_PAD_CENTER, 1);
    CU_ASSERT_PTR_NOT_NULL(s);
    if (x && s) {
        const int64_t T = sotto_stft_num_frames(s, n);
        const int64_t cnt = T * 2 * sotto_stft_n_bins(s);
        float *want = load(g, name, cnt, NULL);
        float *got = malloc(sizeof(float) * cnt);
        CU_ASSERT_EQUAL(sotto_stft_forward(s, x, n, got, T), T);
        /* Measured: max-abs ≤ 3.9e-6 (bins reach ~50), NMSE ≤ 4e-14. */
        TU_ASSERT_CLOSE(name, got, want, cnt, 2e-5, 1e-12);
        free(want);
        free(got);
    }
    sotto_stft_destroy(s);
    free(x);
}

static void test_stft(void)
{
    sotto_gguf *g = tu_golden_open("dsp/stft.gguf");
    if (!g) return;
    check_stft(g, "x24", "stft_1024", 1024, 256, 1024);
    check_stft(g, "x24", "stft_1280", 1280, 320, 1280);
    check_stft(g, "x16", "stft_512", 512, 128, 512);
    check_stft(g, "x16", "stft_512_w400", 512, 160, 400);
    sotto_gguf_close(g);
}

/* Inverse of a stored spectrum, offline and streamed (the stream must match offline bits). */
static void check_istft(const sotto_gguf *g, const char *spec_name, const char *out_name, int n_fft,
                        int hop, int win, sotto_stft_pad pad, double tol_abs, double tol_nmse)
{
    sotto_stft *s = plan(n_fft, hop, win, pad, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    const int nb = sotto_stft_n_bins(s);
    int64_t cnt = 0, len = 0;
    float *spec = load(g, spec_name, -1, &cnt);
    float *want = load(g, out_name, -1, &len);
    if (spec && want) {
        const int64_t T = cnt / (2 * nb);
        CU_ASSERT_EQUAL(T * 2 * nb, cnt);
        CU_ASSERT_EQUAL(sotto_istft_length(s, T), len);
        float *got = malloc(sizeof(float) * (len + n_fft));
        CU_ASSERT_EQUAL(sotto_istft(s, spec, T, got, len), len);
        char what[96];
        snprintf(what, sizeof what, "%s from %s", out_name, spec_name);
        TU_ASSERT_CLOSE(what, got, want, len, tol_abs, tol_nmse);

        sotto_istft_stream *is = NULL;
        CU_ASSERT_EQUAL_FATAL(sotto_istft_stream_create(s, NULL, &is, NULL), SOTTO_OK);
        float *str = malloc(sizeof(float) * (len + n_fft));
        int64_t k = 0;
        for (int64_t t = 0; t < T; t++) {
            int64_t m = sotto_istft_stream_push(is, spec + 2 * nb * t, str + k, hop);
            CU_ASSERT_TRUE_FATAL(m >= 0);
            k += m;
        }
        k += sotto_istft_stream_flush(is, str + k, n_fft);
        CU_ASSERT_EQUAL(k, len);
        CU_ASSERT_EQUAL(memcmp(str, got, sizeof(float) * len), 0);
        sotto_istft_stream_destroy(is);
        free(str);
        free(got);
    }
    free(spec);
    free(want);
    sotto_stft_destroy(s);
}

static void test_istft(void)
{
    sotto_gguf *g = tu_golden_open("dsp/stft.gguf");
    if (!g) return;
    /* Measured: max-abs ≤ 9e-8 on samples up to ~0.3, NMSE ≤ 2.1e-14. */
    check_istft(g, "stft_1024", "istft_1024", 1024, 256, 1024, SOTTO_STFT_PAD_CENTER, 5e-7, 1e-12);
    check_istft(g, "stft_512_w400", "istft_512_w400", 512, 160, 400, SOTTO_STFT_PAD_CENTER, 5e-7,
                1e-12);
    check_istft(g, "pert_1280", "istft_center_1280", 1280, 320, 1280, SOTTO_STFT_PAD_CENTER, 5e-7,
                1e-12);
    check_istft(g, "pert_1280", "istft_same_1280", 1280, 320, 1280, SOTTO_STFT_PAD_SAME, 5e-7,
                1e-12);
    check_istft(g, "stft_1024", "istft_same_1024", 1024, 256, 1024, SOTTO_STFT_PAD_SAME, 5e-7,
                1e-12);
    sotto_gguf_close(g);
}

/* The Vocos head's polar path: magnitude and phase per frame through sotto_istft_frame_polar
 * and the stream, against vocos ISTFT(padding="same"). */
static void test_istft_polar(void)
{
    sotto_gguf *g = tu_golden_open("dsp/stft.gguf");
    if (!g) return;
    sotto_stft *s = plan(1280, 320, 1280, SOTTO_STFT_PAD_SAME, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    const int nb = sotto_stft_n_bins(s);
    int64_t cnt = 0, len = 0;
    float *spec = load(g, "pert_1280", -1, &cnt);
    float *want = load(g, "istft_same_1280", -1, &len);
    if (spec && want) {
        const int64_t T = cnt / (2 * nb);
        float *mag = malloc(sizeof(float) * nb), *ph = malloc(sizeof(float) * nb);
        float *frame = malloc(sizeof(float) * 1280);
        float *got = malloc(sizeof(float) * (len + 1280));
        sotto_istft_stream *is = NULL;
        CU_ASSERT_EQUAL_FATAL(sotto_istft_stream_create(s, NULL, &is, NULL), SOTTO_OK);
        int64_t k = 0;
        for (int64_t t = 0; t < T; t++) {
            const float *f = spec + 2 * nb * t;
            for (int b = 0; b < nb; b++) {
                mag[b] = hypotf(f[2 * b], f[2 * b + 1]);
                ph[b] = atan2f(f[2 * b + 1], f[2 * b]);
            }
            sotto_istft_frame_polar(s, mag, ph, frame);
            k += sotto_istft_stream_push_windowed(is, frame, got + k, 320);
        }
        k += sotto_istft_stream_flush(is, got + k, 1280);
        CU_ASSERT_EQUAL(k, len);
        TU_ASSERT_CLOSE("istft_same_1280 via polar frames", got, want, len, 5e-7, 1e-12);
        sotto_istft_stream_destroy(is);
        free(mag);
        free(ph);
        free(frame);
        free(got);
    }
    free(spec);
    free(want);
    sotto_stft_destroy(s);
    sotto_gguf_close(g);
}

/* ---- mel --------------------------------------------------------------------------------- */

static void check_fbanks(const sotto_gguf *g, const char *name, int n_freqs, double f_min,
                         double f_max, int n_mels, int sr, sotto_mel_norm norm,
                         sotto_mel_scale scale)
{
    const int64_t cnt = (int64_t)n_freqs * n_mels;
    float *want = load(g, name, cnt, NULL);
    float *got = malloc(sizeof(float) * cnt);
    sotto_status st;
    CU_ASSERT_EQUAL(sotto_mel_fbanks(n_freqs, f_min, f_max, n_mels, sr, norm, scale, got, &st),
                    SOTTO_OK);
    /* The reference works in float32, where a triangle's slope is a difference of nearly equal
     * mel values: it is itself off by up to 7e-6 from a double evaluation (ours). Measured:
     * 7.0e-6 (peak 1 triangles), 6.9e-8 (Slaney-normalised, peaks ~0.03), NMSE ≤ 2.7e-11. */
    TU_ASSERT_CLOSE(name, got, want, cnt, norm == SOTTO_MEL_NORM_SLANEY ? 3e-7 : 3e-5, 1e-10);
    free(want);
    free(got);
}

static sotto_mel *make_mel(sotto_mel_params p)
{
    sotto_mel *m = NULL;
    sotto_status st;
    if (sotto_mel_create(&p, NULL, &m, &st) != SOTTO_OK)
        fprintf(stderr, "mel create: %s\n", st.message);
    return m;
}

static void check_mel(const sotto_gguf *g, const char *xname, const char *name, sotto_mel_params p,
                      double tol_abs, double tol_nmse)
{
    int64_t n = 0;
    float *x = load(g, xname, -1, &n);
    sotto_mel *m = make_mel(p);
    CU_ASSERT_PTR_NOT_NULL(m);
    if (x && m) {
        const int64_t T = sotto_mel_num_frames(m, n);
        const int64_t cnt = T * p.n_mels;
        float *want = load(g, name, cnt, NULL);
        float *got = malloc(sizeof(float) * cnt);
        CU_ASSERT_EQUAL(sotto_mel_compute(m, x, n, got, T), T);
        TU_ASSERT_CLOSE(name, got, want, cnt, tol_abs, tol_nmse);
        free(want);
        free(got);
    }
    sotto_mel_destroy(m);
    free(x);
}

static void test_mel(void)
{
    sotto_gguf *g = tu_golden_open("dsp/mel.gguf");
    if (!g) return;
    check_fbanks(g, "fb_vocos", 513, 0.0, 12000.0, 100, 24000, SOTTO_MEL_NORM_NONE,
                 SOTTO_MEL_SCALE_HTK);
    check_fbanks(g, "fb_slaney", 257, 0.0, 8000.0, 80, 16000, SOTTO_MEL_NORM_SLANEY,
                 SOTTO_MEL_SCALE_SLANEY);
    check_fbanks(g, "fb_htk_slaneynorm", 201, 50.0, 7000.0, 40, 16000, SOTTO_MEL_NORM_SLANEY,
                 SOTTO_MEL_SCALE_HTK);
    check_fbanks(g, "fb_slaney_nonorm", 257, 20.0, 7600.0, 64, 22050, SOTTO_MEL_NORM_NONE,
                 SOTTO_MEL_SCALE_SLANEY);

    /* Vocos: ln(max(mel, 1e-7)) of the magnitude mel. Measured max-abs 4.5e-4 / 7.8e-4 nats
     * at a quiet band (torch's own float32 result is 5.8e-4 away from float64 there), NMSE
     * ≤ 4.2e-11. */
    sotto_mel_params p = sotto_mel_default_params();
    check_mel(g, "x24", "vocos_center", p, 3e-3, 1e-9);
    p.pad = SOTTO_STFT_PAD_SAME;
    check_mel(g, "x24", "vocos_same", p, 3e-3, 1e-9);

    /* Slaney/Slaney power mel with win 400 < n_fft 512, linear and AmplitudeToDB(top_db 80). */
    p = sotto_mel_default_params();
    p.sample_rate_hz = 16000;
    p.n_fft = 512;
    p.win_length = 400;
    p.hop_length = 160;
    p.n_mels = 80;
    p.f_max_hz = 8000.0f;
    p.scale = SOTTO_MEL_SCALE_SLANEY;
    p.norm = SOTTO_MEL_NORM_SLANEY;
    p.power = 2;
    p.log = SOTTO_MEL_LOG_NONE;
    /* Measured NMSE 6.3e-13 (linear power); 4.9e-4 dB max-abs after the log. */
    check_mel(g, "x16", "slaney_power", p, -1.0, 1e-11);
    p.log = SOTTO_MEL_LOG_DB;
    p.log_floor = 1e-10f;
    p.db_multiplier = 10.0f;
    p.top_db = 80.0f;
    check_mel(g, "x16", "slaney_db80", p, 3e-3, 1e-11);
    sotto_gguf_close(g);
}

/* Streaming mel: frames computed from a reflect-padded copy, a few at a time, equal the
 * offline result bit for bit (log types other than top_db are per frame). */
static void test_mel_streamed(void)
{
    sotto_gguf *g = tu_golden_open("dsp/mel.gguf");
    if (!g) return;
    int64_t n = 0;
    float *x = load(g, "x24", -1, &n);
    sotto_mel *m = make_mel(sotto_mel_default_params());
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    if (x) {
        const sotto_stft *s = sotto_mel_stft(m);
        const int pad = sotto_stft_pad_samples(s), hop = sotto_stft_hop(s);
        const int64_t T = sotto_mel_num_frames(m, n);
        float *xp = malloc(sizeof(float) * (n + 2 * pad));
        CU_ASSERT_EQUAL(sotto_reflect_pad(x, n, pad, pad, xp), SOTTO_OK);
        float *off = malloc(sizeof(float) * T * 100), *str = malloc(sizeof(float) * T * 100);
        CU_ASSERT_EQUAL(sotto_mel_compute(m, x, n, off, T), T);
        const int64_t np = n + 2 * pad;
        for (int64_t t = 0; t < T; t += 3) {
            const int64_t k = T - t < 3 ? T - t : 3;
            CU_ASSERT_EQUAL(sotto_mel_frames(m, xp + t * hop, np - t * hop, k, str + t * 100, k),
                            k);
        }
        CU_ASSERT_EQUAL(memcmp(off, str, sizeof(float) * T * 100), 0);
        free(xp);
        free(off);
        free(str);
    }
    free(x);
    sotto_mel_destroy(m);
    sotto_gguf_close(g);
}

/* ---- Kaldi fbank ------------------------------------------------------------------------- */

static void check_fbank(const sotto_gguf *g, const char *name, sotto_fbank_window w, int snip,
                        float scale, int cmn, double tol_abs)
{
    int64_t n = 0;
    float *x = load(g, "x16", -1, &n);
    sotto_fbank_params p = sotto_fbank_default_params();
    p.window = w;
    p.snip_edges = snip;
    p.input_scale = scale;
    p.subtract_mean = cmn;
    sotto_fbank *f = NULL;
    sotto_status st;
    CU_ASSERT_EQUAL_FATAL(sotto_fbank_create(&p, NULL, &f, &st), SOTTO_OK);
    if (x) {
        const int64_t T = sotto_fbank_num_frames(f, n);
        float *want = load(g, name, T * 80, NULL);
        float *got = malloc(sizeof(float) * T * 80);
        CU_ASSERT_EQUAL(sotto_fbank_compute(f, x, n, got, T), T);
        TU_ASSERT_CLOSE(name, got, want, T * 80, tol_abs, 1e-11);
        free(want);
        free(got);
    }
    sotto_fbank_destroy(f);
    free(x);
}

static void test_fbank(void)
{
    sotto_gguf *g = tu_golden_open("dsp/fbank.gguf");
    if (!g) return;
    float *want = load(g, "kaldi_banks", 80 * 257, NULL);
    float *got = malloc(sizeof(float) * 80 * 257);
    CU_ASSERT_EQUAL(sotto_kaldi_mel_banks(80, 512, 16000.0f, 20.0f, 0.0f, got, NULL), SOTTO_OK);
    /* Same float32 sensitivity as melscale_fbanks; measured 7.1e-6, NMSE 7.8e-12. */
    TU_ASSERT_CLOSE("kaldi_banks", got, want, 80 * 257, 3e-5, 1e-10);
    free(want);
    free(got);
    /* Log energies, max-abs in nats. Measured: hamming 1.1e-4, povey 3.2e-4 (torch's float32
     * result is itself 1.0e-4 / 1.8e-4 from float64), NMSE ≤ 1.1e-12. */
    check_fbank(g, "hamming_snip", SOTTO_FBANK_WINDOW_HAMMING, 1, 32768.0f, 0, 1e-3);
    check_fbank(g, "hamming_nosnip", SOTTO_FBANK_WINDOW_HAMMING, 0, 32768.0f, 0, 1e-3);
    check_fbank(g, "povey_snip", SOTTO_FBANK_WINDOW_POVEY, 1, 1.0f, 0, 1e-3);
    check_fbank(g, "povey_nosnip", SOTTO_FBANK_WINDOW_POVEY, 0, 1.0f, 0, 1e-3);
    check_fbank(g, "povey_snip_cmn", SOTTO_FBANK_WINDOW_POVEY, 1, 1.0f, 1, 1e-3);
    sotto_gguf_close(g);
}

int main(void)
{
    static const tu_test tests[] = {
        {"torch.stft", test_stft},
        {"torch.istft and vocos ISTFT", test_istft},
        {"vocos ISTFT from polar frames", test_istft_polar},
        {"torchaudio mel", test_mel},
        {"streamed mel equals offline", test_mel_streamed},
        {"kaldi fbank", test_fbank},
        {NULL, NULL},
    };
    return tu_run_suite("dsp golden", tests);
}
