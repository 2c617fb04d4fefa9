/* `sotto` entry point: global options, then dispatch to a subcommand (see cli.h). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "sotto/sotto.h"

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
        printf("sotto %s\n", sotto_version_string());
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "sotto: unknown command '%s' (see 'sotto --help')\n", argv[1]);
    return CLI_ERR_USAGE;
}
