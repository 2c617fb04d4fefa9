/*
 * `sotto decode IN.sotto -o OUT.wav -m MODEL`: decodes a `.sotto` file with the codec model
 * that made it (sotto_codec_decode_file) and writes the original length at the model's rate.
 * Damage in the file is concealed and reported; the exit code then says the output is
 * partial (CLI_PARTIAL).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "sotto/sotto.h"
#include "sotto/sotto_audio.h"
#include "sotto/sotto_codec.h"

#define CMD "decode"
#define MAX_MINUTES 60 /* longest stream accepted */

static void usage(FILE *f)
{
    fprintf(f, "usage: sotto decode INPUT.sotto -o OUTPUT -m MODEL [options]\n"
               "\n"
               "Decodes a .sotto file with the codec model it was encoded with (the file names\n"
               "the model only by its identity, so -m is required) and writes OUTPUT (.wav or\n"
               "by extension .flac; 16-bit unless --float) at the model's rate, exactly the\n"
               "original length. Lost or damaged data is concealed and reported.\n"
               "\n"
               "options:\n"
               "  -o, --output FILE   output audio file (required)\n"
               "  -m, --model FILE    codec model (required)\n"
               "  --float             write 32-bit float WAV\n"
               "  --segment N         decode in windows of N frames (less memory, approximate)\n"
               "  -t, --threads N     CPU threads (default 1)\n"
               "  --f16-arithmetic    binary16 arithmetic in the decoder's matrix products where\n"
               "                      the CPU has AVX512-FP16 (f16 models; faster, less exact)\n"
               "  --gpu N             run on CUDA device N (exit 8 without it; docs/gpu.md)\n"
               "  --cpu               run on the CPU even where a GPU exists (the default is\n"
               "                      CUDA device 0 when it exists and the model can run there)\n"
               "  -q, --quiet         no summary line\n"
               "  --json              print the summary as one JSON object on stdout\n"
               "  -h, --help          this text\n"
               "\n"
               "Exit codes: 0 ok, 2 usage, 3 input missing or not a .sotto file, 4 model\n"
               "(cannot load, or not the file's model), 5 output, 6 runtime, 7 the input was\n"
               "damaged: OUTPUT was written with the losses concealed, 8 --gpu without that\n"
               "CUDA device.\n");
}

int cmd_decode(int argc, char **argv)
{
    const char *in_path = NULL, *out_path = NULL, *model_path = NULL;
    int threads = 1, segment = 0, want_float = 0, json = 0, quiet = cli_quiet, f16_math = 0;
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
        } else if (!strcmp(a, "--segment") && has_val) {
            segment = atoi(argv[++i]);
        } else if (!strcmp(a, "--float")) {
            want_float = 1;
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
    if (!in_path || !out_path || !model_path) {
        cli_error(CMD, "an INPUT, -o OUTPUT and -m MODEL are required (see --help)");
        return CLI_ERR_USAGE;
    }
    if (threads < 1 || threads > 64 || segment < 0 || (segment > 0 && segment < 8)) {
        cli_error(CMD, "--threads must be 1..64 and --segment 8 or more");
        return CLI_ERR_USAGE;
    }

    sotto_status st;
    sotto_model *model = NULL;
    sotto_model_params mp = sotto_model_default_params();
    mp.n_threads = threads;
    mp.f16_arithmetic = f16_math;
    if (cli_backend_option(CMD, gpu_arg, cpu, &mp)) return CLI_ERR_USAGE;
    /* the input first: a missing or foreign file is an input error whatever the model */
    sotto_codec_file_info info;
    if (sotto_codec_probe_file(in_path, NULL, &info, &st) != SOTTO_OK) {
        cli_error(CMD, "%s", st.message);
        return st.code == SOTTO_ERR_OUT_OF_MEMORY ? CLI_ERR_RUNTIME : CLI_ERR_INPUT;
    }
    int lrc = sotto_model_load_file(model_path, &mp, &model, &st);
    if (lrc != SOTTO_OK) {
        cli_error(CMD, "%s: %s", model_path, st.message);
        return cli_load_error_code(lrc);
    }
    sotto_decoder_params dp = sotto_decoder_default_params();
    dp.max_frames = (int)(MAX_MINUTES * 60 * (info.frame_rate_hz > 0 ? info.frame_rate_hz : 1));
    dp.segment_frames = segment;
    if (segment && dp.overlap_frames > segment) dp.overlap_frames = segment;
    float *pcm = NULL;
    int64_t n = 0;
    double t0 = cli_now_s();
    int rc = sotto_codec_decode_file(model, in_path, &dp, &pcm, &n, &info, &st);
    double t_work = cli_now_s() - t0;
    if (rc != SOTTO_OK) {
        cli_error(CMD, "%s", st.message);
        sotto_model_free(model);
        switch (rc) {
        case SOTTO_ERR_MODEL:
        case SOTTO_ERR_UNSUPPORTED:
            return CLI_ERR_MODEL;
        case SOTTO_ERR_INVALID_ARG:
            return CLI_ERR_USAGE;
        case SOTTO_ERR_IO:
        case SOTTO_ERR_FORMAT:
        case SOTTO_ERR_BUFFER_TOO_SMALL:
            return CLI_ERR_INPUT;
        default:
            return CLI_ERR_RUNTIME;
        }
    }
    const int h16 = sotto_model_f16_arithmetic(model);
    const int on_cuda = sotto_model_backend(model) == SOTTO_BACKEND_CUDA;
    char backend_note[48];
    snprintf(backend_note, sizeof backend_note, "%s", cli_backend_note(model, mp.device));
    sotto_model_free(model);
    if (sotto_audio_write_file(out_path, pcm, n, info.sample_rate_hz,
                               sotto_audio_format_for_path(out_path, want_float),
                               &st) != SOTTO_OK) {
        cli_error(CMD, "%s: %s", out_path, st.message);
        free(pcm);
        return CLI_ERR_OUTPUT;
    }
    free(pcm);
    const int damaged = info.n_problems > 0 || info.lost_frames > 0 || info.truncated;
    const double dur = info.duration_s, rtf = dur > 0 ? t_work / dur : 0;
    if (damaged)
        cli_error(CMD, "%s: damaged: %s; %.2f s concealed%s", in_path,
                  info.first_problem[0] ? info.first_problem : "data lost",
                  (double)info.lost_frames / (info.frame_rate_hz > 0 ? info.frame_rate_hz : 1),
                  info.truncated ? ", file truncated" : "");
    if (json) {
        printf("{\"input\":");
        cli_json_str(in_path);
        printf(",\"output\":");
        cli_json_str(out_path);
        printf(",\"model\":");
        cli_json_str(model_path);
        printf(",\"codec\":");
        cli_json_str(info.codec);
        printf(",\"sample_rate_hz\":%d,\"samples\":%lld,\"seconds\":%.4f,\"groups\":%lld,"
               "\"packets\":%lld,\"processing_seconds\":%.4f,\"rtf\":%.5f,\"damaged\":%s,"
               "\"problems\":%d,\"lost_frames\":%lld,\"lost_seconds\":%.4f,\"bad_packets\":%lld,"
               "\"lost_pages\":%lld,\"damaged_pages\":%lld,\"truncated\":%s,\"threads\":%d,"
               "\"f16_arithmetic\":%d,\"backend\":\"%s\"}\n",
               info.sample_rate_hz, (long long)n, dur, (long long)info.groups,
               (long long)info.packets, t_work, rtf, damaged ? "true" : "false", info.n_problems,
               (long long)info.lost_frames,
               (double)info.lost_frames / (info.frame_rate_hz > 0 ? info.frame_rate_hz : 1),
               (long long)info.bad_packets, (long long)info.holes, (long long)info.damaged_pages,
               info.truncated ? "true" : "false", threads, h16, on_cuda ? "cuda" : "cpu");
    } else if (!quiet) {
        fprintf(stderr,
                "sotto decode: %s -> %s: %.2f s at %d Hz, %lld packets (%lld lost frames), "
                "%.3f s processing, RTF %.4f (%.1fx real time%s%s)\n",
                in_path, out_path, dur, info.sample_rate_hz, (long long)info.packets,
                (long long)info.lost_frames, t_work, rtf, t_work > 0 ? dur / t_work : 0.0,
                h16        ? ", binary16 arithmetic"
                : f16_math ? ", " CLI_F32_FALLBACK
                           : "",
                backend_note);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error(CMD, "cannot write the summary");
        return CLI_ERR_OUTPUT;
    }
    return damaged ? CLI_PARTIAL : CLI_OK;
}
