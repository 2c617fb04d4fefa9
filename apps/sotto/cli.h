/*
 * The `sotto` command line: one binary, one cmd_*.c file per subcommand. Each subcommand
 * gets argv with argv[0] = its own name, prints diagnostics on stderr (one line naming the
 * file and the reason), and returns an exit code from the table below.
 */
#ifndef SOTTO_CLI_H
#define SOTTO_CLI_H

#include <stdio.h>

/* Exit codes (documented in docs/cli.md). */
enum {
    CLI_OK = 0,
    CLI_ERR_USAGE = 2,       /* bad arguments */
    CLI_ERR_INPUT = 3,       /* an input file is missing, unreadable or malformed */
    CLI_ERR_MODEL = 4,       /* the model cannot be loaded or is the wrong kind */
    CLI_ERR_OUTPUT = 5,      /* an output cannot be written */
    CLI_ERR_RUNTIME = 6,     /* processing failed */
    CLI_PARTIAL = 7,         /* the input was damaged: the output was written, losses concealed */
    CLI_ERR_UNAVAILABLE = 8, /* a feature this build lacks (compare without libopus) */
    CLI_ERR_SOME_FAILED = 9  /* a batch (transcode): some files failed, the others written */
};

typedef struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} cli_command;

int cmd_info(int argc, char **argv);
int cmd_encode(int argc, char **argv);
int cmd_decode(int argc, char **argv);
int cmd_vocode(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_transcode(int argc, char **argv);
int cmd_bench(int argc, char **argv);

/* Shared option flags, set by main before dispatch. */
extern int cli_quiet;

/* Prints "sotto <cmd>: " + message + "\n" on stderr. */
void cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Monotonic wall clock in seconds. */
double cli_now_s(void);

/* What the summaries say when --f16-arithmetic was asked for but did not take effect. */
#define CLI_F32_FALLBACK "f32 arithmetic: no AVX512-FP16 or no f16 weights"
/* Parses a whole string as a number; 0 on success, 1 if empty, trailing junk or NaN. */
int cli_parse_double(const char *s, double *out);
/* Prints s as a JSON string literal (quotes, escapes) on stdout. */
void cli_json_str(const char *s);

/* The codec encoder options shared by encode, transcode and compare: --threshold T (0..1),
 * --rate HZ (groups/s in (0, 12.5]), --bitrate BPS (> 0), at most one of the three, and
 * --quantizers N (0..1024); NULL means the option was not given. Validates them, writes them
 * into *ep and returns CLI_OK, or prints one line and returns CLI_ERR_USAGE. */
struct sotto_encoder_params;
int cli_encoder_options(const char *cmd, const char *threshold_arg, const char *rate_arg,
                        const char *bitrate_arg, const char *quantizers_arg,
                        struct sotto_encoder_params *ep);
/* --segment S (sotto_codec_encode_params.segment_seconds): 0 or 1..3600; NULL keeps the
 * default. CLI_OK, or CLI_ERR_USAGE after printing why. */
int cli_segment_option(const char *cmd, const char *arg, double *segment_seconds);
/* --gpu N / --cpu: the model on CUDA device N (0..63), backend SOTTO_BACKEND_CUDA in *mp, or
 * on the CPU (SOTTO_BACKEND_CPU); neither (gpu_arg NULL, cpu 0) leaves *mp as it is, i.e.
 * SOTTO_BACKEND_AUTO: a CUDA device when one exists and the model has a CUDA path. CLI_OK, or
 * CLI_ERR_USAGE after printing why (a bad index, or both options). */
struct sotto_model_params;
int cli_backend_option(const char *cmd, const char *gpu_arg, int cpu,
                       struct sotto_model_params *mp);
/* Exit code for a failed model load: CLI_ERR_UNAVAILABLE when a requested GPU is missing
 * (SOTTO_ERR_DEVICE), else CLI_ERR_MODEL. */
int cli_load_error_code(int sotto_rc);
/* ", on CUDA device N" when the model (loaded with device N) runs on CUDA, else "" (for the
 * summary lines). */
struct sotto_model;
const char *cli_backend_note(const struct sotto_model *model, int device);

#endif
