/*
 * `sotto vocode`: analysis–synthesis of an audio file through a vocoder model's own front end
 * (read at any rate, resampled to the model's rate, vocoded, resampled back, written), or
 * synthesis from a feature file. Streams in fixed blocks, so memory does not grow with the
 * file's length, and reports the real-time factor.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "core/gguf.h"
#include "dsp/resample.h"
#include "sotto/sotto.h"
#include "sotto/sotto_audio.h"
#include "sotto/sotto_vocoder.h"

#define CMD "vocode"
#define DEFAULT_MODEL "samples/models/vocos-16k-mini.gguf"
#define BLOCK 4096 /* input samples per push */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sotto vocode INPUT -o OUTPUT [options]\n"
            "\n"
            "Resynthesises INPUT (any format libsndfile reads, any rate) through a vocoder\n"
            "model: the model's own front end computes features at the model's rate, the\n"
            "vocoder turns them back into a waveform, which is resampled to INPUT's rate and\n"
            "written to OUTPUT (.wav or .flac, by extension).\n"
            "With --features, INPUT is a GGUF file holding a tensor 'features' [T][dim]\n"
            "(float) or 'codes' [T][n_codebooks] (int32, EnCodec-feature models), and OUTPUT\n"
            "is written at the model's rate.\n"
            "\n"
            "options:\n"
            "  -o, --output FILE   output audio file (required)\n"
            "  -m, --model FILE    vocoder model (default %s)\n"
            "  --features          INPUT is a feature/code file, not audio\n"
            "  --float             write 32-bit float WAV (default: 16-bit PCM; FLAC is 16-bit)\n"
            "  --bandwidth N       AdaLayerNorm bandwidth id for EnCodec models (default 0)\n"
            "  -t, --threads N     CPU threads (default 1)\n"
            "  --chunk N           frames per internal step (default 64)\n"
            "  --f16-arithmetic    binary16 arithmetic in the model's main products where the\n"
            "                      CPU has AVX512-FP16 (f16 models; faster, SNR about 55 dB\n"
            "                      against f32; the summary says whether it was used)\n"
            "  --gpu N             run on CUDA device N (exit 8 without it; docs/gpu.md)\n"
            "  --cpu               run on the CPU even where a GPU exists (the default is\n"
            "                      CUDA device 0 when it exists and the model can run there)\n"
            "                      (audio in: the mel front end runs there too)\n"
            "  -q, --quiet         no summary line\n"
            "  --json              print the summary as one JSON object on stdout\n"
            "  -h, --help          this text\n",
            DEFAULT_MODEL);
}

typedef struct sink {
    sotto_audio_writer *writer;
    sotto_resampler *rs; /* NULL when the output rate is the model's */
    float *buf;
    int64_t cap;
    const char *path;
} sink;

/* Writes model-rate samples (resampled first when needed). */
static int sink_put(sink *s, const float *x, int64_t n, int final)
{
    const float *src = x;
    int64_t m = n;
    if (s->rs) {
        m = n ? sotto_resampler_push(s->rs, x, n, s->buf, s->cap) : 0;
        if (m >= 0 && final) {
            int64_t k = sotto_resampler_flush(s->rs, s->buf + m, s->cap - m);
            m = k < 0 ? k : m + k;
        }
        if (m < 0) {
            cli_error(CMD, "resampling failed: %s", sotto_strerror((int)m));
            return CLI_ERR_RUNTIME;
        }
        src = s->buf;
    }
    if (m > 0 && sotto_audio_writer_write(s->writer, src, m) != SOTTO_OK) {
        cli_error(CMD, "%s: %s", s->path, sotto_audio_writer_last_error(s->writer));
        return CLI_ERR_OUTPUT;
    }
    return CLI_OK;
}

/* Reads a feature file: 'features' [T][dim] or 'codes' [T][nq]; returns T or -1. */
static int64_t load_features(const char *path, int dim, int nq, float **feat, int32_t **codes)
{
    sotto_gguf *g = NULL;
    sotto_status st;
    if (sotto_gguf_open_file(path, 1, NULL, &g, &st) != SOTTO_OK) {
        cli_error(CMD, "%s: %s", path, st.message);
        return -1;
    }
    int64_t T = -1;
    const sotto_gguf_tensor *t = sotto_gguf_find_tensor(g, "features");
    if (t) {
        if (t->n_dims != 2 || t->shape[1] != dim)
            cli_error(CMD, "%s: 'features' must be [T][%d]", path, dim);
        else if ((*feat = malloc(sizeof(float) * (size_t)t->n_elems)) &&
                 sotto_gguf_tensor_to_f32(t, *feat) == SOTTO_OK)
            T = t->shape[0];
        else
            cli_error(CMD, "%s: cannot read 'features' as float", path);
    } else if ((t = sotto_gguf_find_tensor(g, "codes"))) {
        if (nq == 0)
            cli_error(CMD, "%s: the model takes mel features, not codes", path);
        else if (t->n_dims != 2 || t->shape[1] != nq || t->dtype != SOTTO_DTYPE_I32)
            cli_error(CMD, "%s: 'codes' must be int32 [T][%d] for this bandwidth", path, nq);
        else if ((*codes = malloc(sizeof(int32_t) * (size_t)t->n_elems))) {
            memcpy(*codes, t->data, sizeof(int32_t) * (size_t)t->n_elems);
            T = t->shape[0];
        }
    } else {
        cli_error(CMD, "%s: no tensor 'features' or 'codes'", path);
    }
    sotto_gguf_close(g);
    return T;
}

int cmd_vocode(int argc, char **argv)
{
    const char *in_path = NULL, *out_path = NULL, *model_path = DEFAULT_MODEL;
    int threads = 1, chunk = 64, features = 0, want_float = 0, bandwidth = 0, json = 0,
        f16_math = 0, quiet = cli_quiet;
    const char *gpu_arg = NULL;
    int cpu = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return CLI_OK;
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && has_val) {
            out_path = argv[++i];
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has_val) {
            model_path = argv[++i];
        } else if ((!strcmp(a, "-t") || !strcmp(a, "--threads")) && has_val) {
            threads = atoi(argv[++i]);
        } else if (!strcmp(a, "--chunk") && has_val) {
            chunk = atoi(argv[++i]);
        } else if (!strcmp(a, "--bandwidth") && has_val) {
            bandwidth = atoi(argv[++i]);
        } else if (!strcmp(a, "--float")) {
            want_float = 1;
        } else if (!strcmp(a, "--features")) {
            features = 1;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--f16-arithmetic")) {
            f16_math = 1;
        } else if (!strcmp(a, "--gpu") && has_val) {
            gpu_arg = argv[++i];
        } else if (!strcmp(a, "--cpu")) {
            cpu = 1;
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
    if (!in_path || !out_path) {
        cli_error(CMD, "an INPUT and -o OUTPUT are required (see --help)");
        return CLI_ERR_USAGE;
    }
    if (threads < 1 || threads > 64 || chunk < 1 || chunk > 4096) {
        cli_error(CMD, "--threads must be 1..64 and --chunk 1..4096");
        return CLI_ERR_USAGE;
    }

    int rc = CLI_OK;
    sotto_status st;
    sotto_model *model = NULL;
    sotto_vocoder *voc = NULL;
    sotto_audio_reader *reader = NULL;
    sink out = {0};
    float *inbuf = NULL, *vbuf = NULL, *feat = NULL;
    int32_t *codes = NULL;
    double t_work = 0, dur_in = 0;
    int64_t n_out_model = 0;

    sotto_model_params mp = sotto_model_default_params();
    mp.n_threads = threads;
    mp.f16_arithmetic = f16_math;
    if (cli_backend_option(CMD, gpu_arg, cpu, &mp)) return CLI_ERR_USAGE;
    if ((rc = sotto_model_load_file(model_path, &mp, &model, &st)) != SOTTO_OK) {
        cli_error(CMD, "%s: %s", model_path, st.message);
        return cli_load_error_code(rc);
    }
    sotto_vocoder_params vp = sotto_vocoder_default_params();
    vp.max_chunk_frames = chunk;
    vp.bandwidth_id = bandwidth;
    if (sotto_vocoder_create(model, &vp, &voc, &st) != SOTTO_OK) {
        cli_error(CMD, "%s: %s", model_path, st.message);
        rc = st.code == SOTTO_ERR_INVALID_ARG ? CLI_ERR_USAGE : CLI_ERR_MODEL;
        goto done;
    }
    const int sr = sotto_vocoder_sample_rate_hz(voc), hop = sotto_vocoder_hop_samples(voc);
    int out_rate = sr;
    sotto_audio_info info;
    memset(&info, 0, sizeof info);

    if (!features && sotto_vocoder_num_codebooks(voc) > 0) {
        cli_error(CMD, "%s: the model takes EnCodec codes, not audio (use --features)", model_path);
        rc = CLI_ERR_MODEL;
        goto done;
    }
    if (!features) {
        sotto_audio_read_params rp = sotto_audio_default_read_params();
        rp.target_rate_hz = sr;
        if (sotto_audio_reader_open(in_path, &rp, &reader, &info, &st) != SOTTO_OK) {
            cli_error(CMD, "%s: %s", in_path, st.message);
            rc = CLI_ERR_INPUT;
            goto done;
        }
        out_rate = info.sample_rate_hz;
    }
    if (sotto_audio_writer_open(out_path, out_rate,
                                sotto_audio_format_for_path(out_path, want_float), NULL,
                                &out.writer, &st) != SOTTO_OK) {
        cli_error(CMD, "%s: %s", out_path, st.message);
        rc = CLI_ERR_OUTPUT;
        goto done;
    }
    out.path = out_path;
    size_t vcap = sotto_vocoder_max_output_samples(voc, BLOCK / hop + chunk + 1);
    vbuf = malloc(sizeof(float) * vcap);
    inbuf = malloc(sizeof(float) * BLOCK);
    if (out_rate != sr) {
        if (sotto_resampler_create(sr, out_rate, NULL, &out.rs, &st) != SOTTO_OK) {
            cli_error(CMD, "cannot resample %d -> %d Hz: %s", sr, out_rate, st.message);
            rc = CLI_ERR_INPUT;
            goto done;
        }
        out.cap = sotto_resampler_max_output(out.rs, (int64_t)vcap) + 64;
        out.buf = malloc(sizeof(float) * (size_t)out.cap);
    }
    if (!vbuf || !inbuf || (out.rs && !out.buf)) {
        cli_error(CMD, "out of memory");
        rc = CLI_ERR_RUNTIME;
        goto done;
    }

    int istty = isatty(2) && !quiet && !json;
    if (!features) {
        int64_t n_in = 0;
        for (;;) {
            int64_t n = sotto_audio_reader_read(reader, inbuf, BLOCK);
            if (n < 0) {
                cli_error(CMD, "%s: %s", in_path, sotto_audio_reader_last_error(reader));
                rc = CLI_ERR_INPUT;
                goto done;
            }
            if (n == 0) break;
            double t0 = cli_now_s();
            int got = sotto_vocoder_push_audio(voc, inbuf, (size_t)n, vbuf, vcap);
            t_work += cli_now_s() - t0;
            if (got < 0) {
                cli_error(CMD, "%s: %s", in_path, sotto_vocoder_last_error(voc));
                rc = got == SOTTO_ERR_BAD_AUDIO ? CLI_ERR_INPUT : CLI_ERR_RUNTIME;
                goto done;
            }
            n_out_model += got;
            if ((rc = sink_put(&out, vbuf, got, 0))) goto done;
            n_in += n;
            if (istty && (n_in / BLOCK) % 32 == 0)
                fprintf(stderr, "\rsotto vocode: %.1f s processed, %.1fx real time ",
                        (double)n_in / sr, t_work > 0 ? (double)n_in / sr / t_work : 0.0);
        }
        dur_in = (double)n_in / sr;
    } else {
        int nq = sotto_vocoder_num_codebooks(voc), dim = sotto_vocoder_feature_dim(voc);
        int64_t T = load_features(in_path, dim, nq, &feat, &codes);
        if (T < 0) {
            rc = CLI_ERR_INPUT;
            goto done;
        }
        for (int64_t t = 0; t < T; t += BLOCK / hop) {
            int k = (int)(T - t < BLOCK / hop ? T - t : BLOCK / hop);
            double t0 = cli_now_s();
            int got = feat ? sotto_vocoder_push_features(voc, feat + (size_t)t * dim, k, vbuf, vcap)
                           : sotto_vocoder_push_codes(voc, codes + (size_t)t * nq, k, vbuf, vcap);
            t_work += cli_now_s() - t0;
            if (got < 0) {
                cli_error(CMD, "%s: %s", in_path, sotto_vocoder_last_error(voc));
                rc = CLI_ERR_INPUT;
                goto done;
            }
            n_out_model += got;
            if ((rc = sink_put(&out, vbuf, got, 0))) goto done;
        }
        dur_in = (double)T * hop / sr;
    }
    double t0 = cli_now_s();
    int got = sotto_vocoder_flush(voc, vbuf, vcap);
    t_work += cli_now_s() - t0;
    if (got < 0) {
        cli_error(CMD, "%s: %s", in_path, sotto_vocoder_last_error(voc));
        rc = CLI_ERR_INPUT;
        goto done;
    }
    n_out_model += got;
    if ((rc = sink_put(&out, vbuf, got, 1))) goto done;
    if (istty) fputc('\n', stderr);

    int64_t written = sotto_audio_writer_samples(out.writer);
    int wr = sotto_audio_writer_close(out.writer, &st);
    out.writer = NULL;
    if (wr != SOTTO_OK) {
        cli_error(CMD, "%s: %s", out_path, st.message);
        rc = CLI_ERR_OUTPUT;
        goto done;
    }
    double dur_out = (double)n_out_model / sr;
    double speed = t_work > 0 ? dur_out / t_work : 0;
    if (json)
        printf("{\"input\":\"%s\",\"output\":\"%s\",\"model\":\"%s\",\"model_rate_hz\":%d,"
               "\"output_rate_hz\":%d,\"input_seconds\":%.4f,\"output_seconds\":%.4f,"
               "\"output_samples\":%lld,\"processing_seconds\":%.4f,\"rtf\":%.5f,"
               "\"times_real_time\":%.2f,\"threads\":%d,\"f16_arithmetic\":%d,"
               "\"backend\":\"%s\"}\n",
               in_path, out_path, model_path, sr, out_rate, dur_in, dur_out, (long long)written,
               t_work, dur_out > 0 ? t_work / dur_out : 0, speed, threads,
               sotto_model_f16_arithmetic(model),
               sotto_model_backend(model) == SOTTO_BACKEND_CUDA ? "cuda" : "cpu");
    else if (!quiet)
        fprintf(stderr,
                "sotto vocode: %s -> %s: %.2f s at %d Hz (model %d Hz), %.3f s processing, "
                "RTF %.4f (%.1fx real time, %d thread%s%s%s)\n",
                in_path, out_path, dur_out, out_rate, sr, t_work,
                dur_out > 0 ? t_work / dur_out : 0, speed, threads, threads > 1 ? "s" : "",
                cli_backend_note(model, mp.device),
                sotto_model_f16_arithmetic(model) ? ", binary16 arithmetic"
                : f16_math                        ? ", " CLI_F32_FALLBACK
                                                  : "");
done:
    if (out.writer) (void)sotto_audio_writer_close(out.writer, NULL);
    sotto_resampler_destroy(out.rs);
    free(out.buf);
    free(inbuf);
    free(vbuf);
    free(feat);
    free(codes);
    sotto_audio_reader_close(reader);
    sotto_vocoder_free(voc);
    sotto_model_free(model);
    return rc;
}
