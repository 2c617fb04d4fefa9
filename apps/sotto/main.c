/* `sotto` entry point: global options, then dispatch to a subcommand (see cli.h). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cuda_probe.h"
#include "cli.h"
#include "sotto/sotto.h"
#include "sotto/sotto_codec.h"

int cli_quiet = 0;

static const cli_command commands[] = {
    {"info", "describe a model file (.gguf) or a codec stream (.sotto)", cmd_info},
    {"encode", "encode audio to a .sotto codec stream", cmd_encode},
    {"decode", "decode a .sotto codec stream to audio", cmd_decode},
    {"vocode", "resynthesise audio (or features) through a vocoder model", cmd_vocode},
    {"compare", "score the codec against Opus on a file (bitrate, speed, quality)", cmd_compare},
    {"transcode", "encode (and decode) many files and folders to .sotto", cmd_transcode},
    {"bench", "measure a vocoder or codec model's speed on this machine", cmd_bench},
};

void cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "sotto %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

double cli_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cli_parse_double(const char *s, double *out)
{
    char *end = NULL;
    *out = strtod(s, &end);
    return !*s || *end || isnan(*out);
}

void cli_json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

int cli_encoder_options(const char *cmd, const char *threshold_arg, const char *rate_arg,
                        const char *bitrate_arg, const char *quantizers_arg,
                        sotto_encoder_params *ep)
{
    double v = 0;
    if (!!threshold_arg + !!rate_arg + !!bitrate_arg > 1) {
        cli_error(cmd, "--threshold, --rate and --bitrate exclude each other");
        return CLI_ERR_USAGE;
    }
    if (threshold_arg) {
        if (cli_parse_double(threshold_arg, &v) || v < 0.0 || v > 1.0) {
            cli_error(cmd, "--threshold must be a number in 0..1, not '%s'", threshold_arg);
            return CLI_ERR_USAGE;
        }
        ep->threshold = (float)v;
    }
    if (rate_arg) {
        if (cli_parse_double(rate_arg, &v) || !(v > 0.0 && v <= 12.5)) {
            cli_error(cmd, "--rate must be a number of groups/s in (0, 12.5], not '%s'", rate_arg);
            return CLI_ERR_USAGE;
        }
        ep->target_groups_per_s = v;
    }
    if (bitrate_arg) {
        if (cli_parse_double(bitrate_arg, &v) || !(v > 0.0) || isinf(v)) {
            cli_error(cmd, "--bitrate must be a positive number of bit/s, not '%s'", bitrate_arg);
            return CLI_ERR_USAGE;
        }
        ep->target_bits_per_s = v;
    }
    if (quantizers_arg) {
        if (cli_parse_double(quantizers_arg, &v) || v < 0.0 || v > 1024.0 || v != floor(v)) {
            cli_error(cmd, "--quantizers must be a whole number 0.., not '%s'", quantizers_arg);
            return CLI_ERR_USAGE;
        }
        ep->n_stages = (int)v;
    }
    return CLI_OK;
}

int cli_segment_option(const char *cmd, const char *arg, double *segment_seconds)
{
    double v = 0;
    if (!arg) return CLI_OK;
    if (cli_parse_double(arg, &v) || !(v == 0.0 || (v >= 1.0 && v <= 3600.0))) {
        cli_error(cmd, "--segment must be 0 (whole file) or 1..3600 seconds, not '%s'", arg);
        return CLI_ERR_USAGE;
    }
    *segment_seconds = v;
    return CLI_OK;
}

int cli_backend_option(const char *cmd, const char *arg, int cpu, sotto_model_params *mp)
{
    double v = 0;
    if (cpu && arg) {
        cli_error(cmd, "--cpu and --gpu exclude each other");
        return CLI_ERR_USAGE;
    }
    if (cpu) mp->backend = SOTTO_BACKEND_CPU;
    if (!arg) return CLI_OK;
    if (cli_parse_double(arg, &v) || v != (double)(int)v || v < 0 || v > 63) {
        cli_error(cmd, "--gpu must be a CUDA device index 0..63, not '%s'", arg);
        return CLI_ERR_USAGE;
    }
    mp->backend = SOTTO_BACKEND_CUDA;
    mp->device = (int)v;
    return CLI_OK;
}

int cli_load_error_code(int sotto_rc)
{
    return sotto_rc == SOTTO_ERR_DEVICE ? CLI_ERR_UNAVAILABLE : CLI_ERR_MODEL;
}

const char *cli_backend_note(const sotto_model *model, int device)
{
    static _Thread_local char note[48];
    if (sotto_model_backend(model) != SOTTO_BACKEND_CUDA) return "";
    snprintf(note, sizeof note, ", on CUDA device %d", device);
    return note;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: sotto [--version] [--help] <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'sotto <command> --help' describes a command. Exit codes: 0 ok, 2 usage, "
               "3 input, 4 model, 5 output, 6 runtime, 7 damaged input (output written), "
               "8 feature not built in, 9 some files of a batch failed.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_ERR_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        /* the version, then what this machine gives the library: the SIMD kernels it can use
         * (binary16 arithmetic needs AVX512-FP16) and the CUDA devices it sees */
        printf("sotto %s\n", sotto_version_string());
        const unsigned f = sotto_cpu_features();
        printf("cpu:%s%s%s%s%s%s\n", f ? "" : " scalar only", f & SOTTO_CPU_AVX2 ? " avx2" : "",
               f & SOTTO_CPU_FMA ? " fma" : "", f & SOTTO_CPU_F16C ? " f16c" : "",
               f & SOTTO_CPU_AVX512 ? " avx512" : "",
               f & SOTTO_CPU_AVX512FP16 ? " avx512fp16 (--f16-arithmetic available)" : "");
        char name[256];
        const int n = sotto_cuda_device_count();
        printf("cuda: %d device%s", n, n == 1 ? "" : "s");
        for (int d = 0; d < n; d++)
            if (sotto_cuda_device_name(d, name, (int)sizeof name) == 0)
                printf("%s %d: %s", d ? "," : "", d, name);
        printf("%s\n", n ? " (models run on the CPU for now: docs/gpu.md)" : "");
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "sotto: unknown command '%s' (see 'sotto --help')\n", argv[1]);
    return CLI_ERR_USAGE;
}
