/*
 * `sotto encode IN.wav -o OUT.sotto -m MODEL`: encodes an audio file (any format and rate the
 * SDK reads; resampled once to 16 kHz) as one utterance with a codec model that has the
 * encoder (sotto_codec_encode_file) and writes a `.sotto` file that decodes to the input's
 * exact length. Prints duration, groups, average frame rate, bitrate and real-time factor.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "sotto/sotto.h"
#include "sotto/sotto_codec.h"

#define CMD "encode"
#define MAX_MINUTES 60 /* longest input accepted */

static void usage(FILE *f)
{
    fprintf(f, "usage: sotto encode INPUT -o OUTPUT.sotto -m MODEL [options]\n"
               "\n"
               "Encodes INPUT (WAV, FLAC, ... at any rate; resampled to 16 kHz, channels mixed\n"
               "down) with a codec model that includes the encoder, as one utterance (the\n"
               "model is not causal), and writes OUTPUT.sotto; `sotto decode` gives back\n"
               "exactly the input's length at 16 kHz.\n"
               "\n"
               "options:\n"
               "  -o, --output FILE   output .sotto file (required)\n"
               "  -m, --model FILE    codec model with the encoder (required)\n"
               "  --threshold T       merge threshold 0..1 (default: the model's, 0.91 for the\n"
               "                      release); 1 merges nothing (12.5 groups/s), lower values\n"
               "                      merge more frames: fewer groups, lower bitrate\n"
               "  --rate HZ           rate control: pick the threshold whose group count comes\n"
               "                      nearest HZ groups/s (0 < HZ <= 12.5; below 12.5/8 the\n"
               "                      lowest reachable rate is used and reported as clamped)\n"
               "  --bitrate BPS       rate control on the code payload in bit/s (groups/s x bits\n"
               "                      per group); one of --threshold, --rate, --bitrate"
               "  --quantizers N      RVQ stages per group, 0..the model's (default: all)\n"
               "  --segment S         encode a longer file in consecutive S-second segments,\n"
               "                      each its own utterance (memory bounded by S; codes near\n"
               "                      a cut differ from a whole-file encode); 0: the whole file\n"
               "                      at once (default 30; 1..3600)\n"
               "  -t, --threads N     CPU threads (default 1)\n"
               "  --f16-arithmetic    binary16 arithmetic in the encoder where the CPU has\n"
               "                      AVX512-FP16 (f16 models; faster, merge boundaries and\n"
               "                      codes may differ from f32 encoding)\n"
               "  --gpu N             run on CUDA device N (exit 8 without it; docs/gpu.md)\n"
               "  --cpu               run on the CPU even where a GPU exists (the default is\n"
               "                      CUDA device 0 when it exists and the model can run there)\n"
               "  -q, --quiet         no summary line\n"
               "  --json              print the summary as one JSON object on stdout\n"
               "  -h, --help          this text\n"
               "\n"
               "Exit codes: 0 ok, 2 usage, 3 input missing or unreadable (or too long), 4 model\n"
               "(cannot load, or has no encoder), 5 output, 6 runtime, 8 --gpu without that\n"
               "CUDA device.\n");
}

/* A number with nothing after it; 0 on success. */
int cmd_encode(int argc, char **argv)
{
    const char *in_path = NULL, *out_path = NULL, *model_path = NULL;
    const char *threshold_arg = NULL, *quantizers_arg = NULL, *rate_arg = NULL;
    const char *segment_arg = NULL;
    const char *bitrate_arg = NULL;
    int threads = 1, json = 0, quiet = cli_quiet, f16_math = 0, cpu = 0;
    const char *gpu_arg = NULL;
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
        } else if (!strcmp(a, "--threshold") && has_val) {
            threshold_arg = argv[++i];
        } else if (!strcmp(a, "--rate") && has_val) {
            rate_arg = argv[++i];
        } else if (!strcmp(a, "--bitrate") && has_val) {
            bitrate_arg = argv[++i];
        } else if (!strcmp(a, "--segment") && has_val) {
            segment_arg = argv[++i];
        } else if (!strcmp(a, "--quantizers") && has_val) {
            quantizers_arg = argv[++i];
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
    if (threads < 1 || threads > 64) {
        cli_error(CMD, "--threads must be 1..64");
        return CLI_ERR_USAGE;
    }
    sotto_codec_encode_params ep = sotto_codec_default_encode_params();
    ep.encoder.max_seconds = MAX_MINUTES * 60.0;
    if (cli_encoder_options(CMD, threshold_arg, rate_arg, bitrate_arg, quantizers_arg,
                            &ep.encoder) ||
        cli_segment_option(CMD, segment_arg, &ep.segment_seconds))
        return CLI_ERR_USAGE;

    sotto_status st;
    sotto_model *model = NULL;
    sotto_model_params mp = sotto_model_default_params();
    mp.n_threads = threads;
    mp.f16_arithmetic = f16_math ? 2 : 0;
    if (cli_backend_option(CMD, gpu_arg, cpu, &mp)) return CLI_ERR_USAGE;
    const int lrc = sotto_model_load_file(model_path, &mp, &model, &st);
    if (lrc != SOTTO_OK) {
        cli_error(CMD, "%s: %s", model_path, st.message);
        return cli_load_error_code(lrc);
    }
    if (f16_math && !quiet)
        fprintf(stderr, "sotto encode: %s\n",
                sotto_model_f16_arithmetic(model) == 2 ? "binary16 arithmetic in the encoder"
                                                       : CLI_F32_FALLBACK);
    sotto_codec_encode_info info;
    double t0 = cli_now_s();
    int rc = sotto_codec_encode_file(model, in_path, out_path, &ep, &info, &st);
    double t_work = cli_now_s() - t0;
    char backend_note[48];
    snprintf(backend_note, sizeof backend_note, "%s", cli_backend_note(model, mp.device));
    const int on_cuda = sotto_model_backend(model) == SOTTO_BACKEND_CUDA;
    sotto_model_free(model);
    if (rc != SOTTO_OK) {
        const int is_model = rc == SOTTO_ERR_UNSUPPORTED && strstr(st.message, "no encoder");
        if (is_model || (rc == SOTTO_ERR_UNSUPPORTED && strstr(st.message, "not a codec")))
            cli_error(CMD, "%s: %s", model_path, st.message);
        else
            cli_error(CMD, "%s", st.message);
        if (is_model || strstr(st.message, "not a codec")) return CLI_ERR_MODEL;
        switch (rc) {
        case SOTTO_ERR_INVALID_ARG:
            return CLI_ERR_USAGE;
        case SOTTO_ERR_IO:
            /* the output's own message names it; the input is read first */
            return strstr(st.message, out_path) ? CLI_ERR_OUTPUT : CLI_ERR_INPUT;
        case SOTTO_ERR_FORMAT:
        case SOTTO_ERR_UNSUPPORTED:
        case SOTTO_ERR_BAD_AUDIO:
        case SOTTO_ERR_BUFFER_TOO_SMALL:
            return CLI_ERR_INPUT;
        default:
            return CLI_ERR_RUNTIME;
        }
    }
    const double dur = info.duration_s, rtf = dur > 0 ? t_work / dur : 0;
    if (json) {
        printf("{\"input\":");
        cli_json_str(in_path);
        printf(",\"output\":");
        cli_json_str(out_path);
        printf(",\"model\":");
        cli_json_str(model_path);
        printf(",\"input_rate_hz\":%d,\"samples\":%lld,\"seconds\":%.4f,\"groups\":%lld,"
               "\"frames\":%lld,\"frame_rate_hz\":%.4f,\"threshold\":%.4f,\"quantizers\":%d,"
               "\"bytes\":%lld,\"bitrate_bps\":%.1f,\"processing_seconds\":%.4f,\"rtf\":%.5f,"
               "\"threads\":%d,\"payload_bps\":%.1f,\"target_rate_hz\":%.4f,"
               "\"target_bitrate_bps\":%.1f,\"rate_clamped\":%d,\"segments\":%d,"
               "\"segment_seconds\":%.2f,\"backend\":\"%s\"}\n",
               info.input_rate_hz, (long long)info.samples, dur, (long long)info.groups,
               (long long)info.frames, info.groups_per_s, (double)info.threshold, info.n_stages,
               (long long)info.file_bytes, info.bitrate_bps, t_work, rtf, threads, info.payload_bps,
               info.target_groups_per_s, ep.encoder.target_bits_per_s, info.clamped, info.segments,
               info.segment_seconds, on_cuda ? "cuda" : "cpu");
    } else if (!quiet) {
        fprintf(stderr,
                "sotto encode: %s -> %s: %.2f s, %lld groups (%.2f groups/s, threshold %.3f, "
                "%d quantizers), %lld bytes, %.0f bit/s, %.3f s processing, RTF %.4f%s\n",
                in_path, out_path, dur, (long long)info.groups, info.groups_per_s,
                (double)info.threshold, info.n_stages, (long long)info.file_bytes, info.bitrate_bps,
                t_work, rtf, backend_note);
        if (info.segments > 1)
            fprintf(stderr, "sotto encode: %d segments of %.2f s (--segment)\n", info.segments,
                    info.segment_seconds);
        if (info.target_groups_per_s > 0.0)
            fprintf(stderr,
                    "sotto encode: target %.2f groups/s (%.0f bit/s payload), achieved %.2f "
                    "groups/s, %.0f bit/s payload, threshold %.4f%s\n",
                    info.target_groups_per_s,
                    info.groups > 0
                        ? info.target_groups_per_s * info.payload_bps / info.groups_per_s
                        : 0.0,
                    info.groups_per_s, info.payload_bps, (double)info.threshold,
                    info.clamped < 0   ? " (clamped: below the lowest reachable rate)"
                    : info.clamped > 0 ? " (clamped: above the highest reachable rate)"
                                       : "");
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error(CMD, "cannot write the summary");
        return CLI_ERR_OUTPUT;
    }
    return CLI_OK;
}
