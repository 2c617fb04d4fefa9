/*
 * `sotto-live`: microphone -> Vocos analysis–synthesis (sotto_vocoder_push_audio, streamed in
 * blocks) -> speaker, with PortAudio. The PortAudio callback only moves samples through two
 * lock-free SPSC rings (ring.h) and bumps atomic counters: it never allocates, locks or logs.
 * A processing thread pops input blocks, runs the vocoder and pushes the output. The
 * --file-in/--file-out mode feeds the same rings and processing thread from a file instead of
 * the devices, so the loop can be tested without audio hardware.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <portaudio.h>

#include "ring.h"
#include "sotto/sotto.h"
#include "sotto/sotto_audio.h"
#include "sotto/sotto_vocoder.h"

#define DEFAULT_MODEL "samples/models/vocos-16k-mini.gguf"

enum { EXIT_OK = 0, EXIT_USAGE = 2, EXIT_INPUT = 3, EXIT_MODEL = 4, EXIT_OUTPUT = 5,
       EXIT_RUNTIME = 6, EXIT_DEVICE = 8 };

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sotto-live [options]\n"
            "       sotto-live --list-devices\n"
            "       sotto-live --file-in IN.wav --file-out OUT.wav [options]\n"
            "\n"
            "Plays the microphone back through a vocoder's analysis-synthesis (the model's\n"
            "own mel front end, then Vocos), streamed in blocks. Ctrl-C stops. Prints the\n"
            "latency: vocoder look-ahead + block + device latency.\n"
            "With --file-in/--file-out the same processing loop runs on a file (read at the\n"
            "model's rate) without audio devices; the output is written latency-compensated:\n"
            "aligned with the input and exactly as long (the vocoder's last partial hop is\n"
            "zero), as 32-bit float WAV.\n"
            "\n"
            "options:\n"
            "  --list-devices      list audio devices ('none' if there are none) and exit\n"
            "  --input DEV         input device: index or part of its name (default: system's)\n"
            "  --output DEV        output device: index or part of its name (default: system's)\n"
            "  -m, --model FILE    vocoder model with a mel front end (default %s)\n"
            "  --block MS          processing block in ms, 1..1000 (default 20)\n"
            "  --seconds S         stop after S seconds (default: run until Ctrl-C)\n"
            "  --file-in FILE      process this file instead of the microphone\n"
            "  --file-out FILE     write the result here (with --file-in)\n"
            "  -t, --threads N     CPU threads (default 1)\n"
            "  -q, --quiet         no report\n"
            "  -h, --help          this text\n"
            "\n"
            "Exit codes: 0 ok, 2 usage, 3 input file, 4 model, 5 output file, 6 runtime,\n"
            "8 audio device cannot be opened.\n",
            DEFAULT_MODEL);
}

/* ---- the processing loop ------------------------------------------------------------------ */

typedef struct engine {
    sotto_vocoder *voc;
    int sr, block;          /* model rate, samples per block */
    int lossless;           /* file mode: wait for room instead of dropping output */
    float *inblk, *outbuf;
    size_t outcap;
    live_ring in, out;
    atomic_int input_done;  /* no more input will come: drain, flush, finish */
    atomic_int stop;        /* stop now (device mode) */
    atomic_int finished;    /* the processing thread has flushed and exited */
    atomic_long dropped_in, dropped_out, underruns;
    atomic_int started_output;
    int error;              /* processing error (SOTTO_ERR_*), read after join */
    double busy_s;
} engine;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Pushes vocoder output into the output ring: waits for room in file mode, drops the excess
 * (counted) in device mode. */
static void emit(engine *e, const float *x, size_t n)
{
    size_t done = 0;
    while (done < n) {
        done += live_ring_push(&e->out, x + done, n - done);
        if (done < n) {
            if (!e->lossless || atomic_load(&e->stop)) {
                atomic_fetch_add(&e->dropped_out, (long)(n - done));
                return;
            }
            sleep_ms(1);
        }
    }
}

static void *process_thread(void *arg)
{
    engine *e = arg;
    for (;;) {
        if (atomic_load(&e->stop)) break;
        const int done = atomic_load(&e->input_done);
        size_t avail = live_ring_available(&e->in);
        if (avail < (size_t)e->block && !done) {
            sleep_ms(1);
            continue;
        }
        size_t n = live_ring_pop(&e->in, e->inblk, (size_t)e->block);
        double t0 = now_s();
        int got = n ? sotto_vocoder_push_audio(e->voc, e->inblk, n, e->outbuf, e->outcap) : 0;
        if (got >= 0 && n == 0 && done) got = sotto_vocoder_flush(e->voc, e->outbuf, e->outcap);
        e->busy_s += now_s() - t0;
        if (got < 0) {
            e->error = got;
            break;
        }
        emit(e, e->outbuf, (size_t)got);
        if (n == 0 && done) break; /* input drained and flushed */
    }
    atomic_store(&e->finished, 1);
    return NULL;
}

static int engine_init(engine *e, sotto_vocoder *voc, int block, int lossless)
{
    memset(e, 0, sizeof *e);
    e->voc = voc;
    e->sr = sotto_vocoder_sample_rate_hz(voc);
    e->block = block;
    e->lossless = lossless;
    e->outcap = sotto_vocoder_max_output_samples(voc, block / sotto_vocoder_hop_samples(voc) + 1);
    e->inblk = malloc(sizeof(float) * (size_t)block);
    e->outbuf = malloc(sizeof(float) * e->outcap);
    /* Rings hold a second of audio or 8 blocks, whichever is more. */
    size_t cap = (size_t)(e->sr > 8 * block ? e->sr : 8 * block) + e->outcap;
    if (!e->inblk || !e->outbuf || live_ring_init(&e->in, cap) ||
        live_ring_init(&e->out, cap))
        return -1;
    atomic_init(&e->input_done, 0);
    atomic_init(&e->stop, 0);
    atomic_init(&e->finished, 0);
    atomic_init(&e->dropped_in, 0);
    atomic_init(&e->dropped_out, 0);
    atomic_init(&e->underruns, 0);
    atomic_init(&e->started_output, 0);
    return 0;
}

static void engine_free(engine *e)
{
    free(e->inblk);
    free(e->outbuf);
    live_ring_free(&e->in);
    live_ring_free(&e->out);
}

/* ---- file mode ---------------------------------------------------------------------------- */

static int run_file(engine *e, const char *in_path, const char *out_path, int quiet)
{
    sotto_status st;
    float *x = NULL;
    int64_t n = 0;
    sotto_audio_read_params rp = sotto_audio_default_read_params();
    rp.target_rate_hz = e->sr;
    sotto_audio_info info;
    if (sotto_audio_read_file(in_path, &rp, &x, &n, &info, &st) != SOTTO_OK) {
        fprintf(stderr, "sotto-live: %s: %s\n", in_path, st.message);
        return EXIT_INPUT;
    }
    float *y = calloc((size_t)n + 1, sizeof(float));
    float *tmp = malloc(sizeof(float) * 4096);
    if (!y || !tmp) {
        fprintf(stderr, "sotto-live: out of memory\n");
        free(y);
        free(tmp);
        sotto_audio_free(x, NULL);
        return EXIT_RUNTIME;
    }
    pthread_t th;
    if (pthread_create(&th, NULL, process_thread, e)) {
        fprintf(stderr, "sotto-live: cannot start the processing thread\n");
        free(y);
        free(tmp);
        sotto_audio_free(x, NULL);
        return EXIT_RUNTIME;
    }
    /* This thread plays both device sides: it feeds input a block at a time (as a capture
     * callback would) and drains whatever output is ready. The output is kept aligned with
     * the input: sample k of the stream is sample k of the file (the latency compensation). */
    int64_t fed = 0, got = 0, extra = 0;
    if (n == 0) atomic_store(&e->input_done, 1);
    for (;;) {
        if (fed < n) {
            size_t want = (size_t)(n - fed < e->block ? n - fed : e->block);
            fed += (int64_t)live_ring_push(&e->in, x + fed, want);
            if (fed == n) atomic_store(&e->input_done, 1);
        }
        const int fin = atomic_load(&e->finished);
        size_t k;
        while ((k = live_ring_pop(&e->out, tmp, 4096)) > 0) {
            for (size_t i = 0; i < k; i++, got++)
                if (got < n) y[got] = tmp[i];
                else extra++;
        }
        if (fin) break;
        if (fed == n || live_ring_space(&e->in) < (size_t)e->block) sleep_ms(1);
    }
    pthread_join(th, NULL);
    int rc = EXIT_OK;
    if (e->error < 0) {
        fprintf(stderr, "sotto-live: %s: %s\n", in_path, sotto_vocoder_last_error(e->voc));
        rc = e->error == SOTTO_ERR_BAD_AUDIO ? EXIT_INPUT : EXIT_RUNTIME;
    } else if (sotto_audio_write_file(out_path, y, n, e->sr, SOTTO_AUDIO_WAV_FLOAT, &st) !=
               SOTTO_OK) {
        fprintf(stderr, "sotto-live: %s: %s\n", out_path, st.message);
        rc = EXIT_OUTPUT;
    } else if (!quiet) {
        const double dur = (double)n / e->sr;
        fprintf(stderr,
                "sotto-live: %s -> %s: %.2f s, %lld samples (%lld from the vocoder, %lld "
                "padded, %lld trimmed), RTF %.4f\n",
                in_path, out_path, dur, (long long)n, (long long)(got - extra),
                (long long)(got < n ? n - got : 0), (long long)extra,
                dur > 0 ? e->busy_s / dur : 0.0);
    }
    free(y);
    free(tmp);
    sotto_audio_free(x, NULL);
    return rc;
}

/* ---- device mode -------------------------------------------------------------------------- */

static volatile sig_atomic_t interrupted = 0;
static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Real-time callback: ring traffic and atomic counters only. */
static int pa_callback(const void *input, void *output, unsigned long frames,
                       const PaStreamCallbackTimeInfo *ti, PaStreamCallbackFlags flags,
                       void *user)
{
    (void)ti;
    (void)flags;
    engine *e = user;
    if (input) {
        size_t k = live_ring_push(&e->in, (const float *)input, frames);
        if (k < frames) atomic_fetch_add_explicit(&e->dropped_in, (long)(frames - k),
                                                  memory_order_relaxed);
    }
    float *out = output;
    size_t k = live_ring_pop(&e->out, out, frames);
    if (k) atomic_store_explicit(&e->started_output, 1, memory_order_relaxed);
    if (k < frames) {
        memset(out + k, 0, sizeof(float) * (frames - k));
        if (atomic_load_explicit(&e->started_output, memory_order_relaxed))
            atomic_fetch_add_explicit(&e->underruns, 1, memory_order_relaxed);
    }
    return paContinue;
}

static int list_devices(void)
{
    PaError err = Pa_Initialize();
    if (err != paNoError) {
        fprintf(stderr, "sotto-live: PortAudio: %s\n", Pa_GetErrorText(err));
        printf("audio devices: none\n");
        return EXIT_OK;
    }
    int n = Pa_GetDeviceCount();
    printf("audio devices:%s\n", n <= 0 ? " none" : "");
    for (int i = 0; i < n; i++) {
        const PaDeviceInfo *d = Pa_GetDeviceInfo(i);
        if (!d) continue;
        const PaHostApiInfo *h = Pa_GetHostApiInfo(d->hostApi);
        printf("  %2d  %-40s %-8s in %2d  out %2d  %6.0f Hz%s%s\n", i, d->name,
               h ? h->name : "?", d->maxInputChannels, d->maxOutputChannels,
               d->defaultSampleRate, i == Pa_GetDefaultInputDevice() ? "  [default in]" : "",
               i == Pa_GetDefaultOutputDevice() ? "  [default out]" : "");
    }
    Pa_Terminate();
    return EXIT_OK;
}

/* Device by index or name substring, with at least one channel in the wanted direction. */
static PaDeviceIndex find_device(const char *spec, int want_input)
{
    if (!spec) return want_input ? Pa_GetDefaultInputDevice() : Pa_GetDefaultOutputDevice();
    char *end = NULL;
    long idx = strtol(spec, &end, 10);
    const int n = Pa_GetDeviceCount();
    for (int i = 0; i < n; i++) {
        const PaDeviceInfo *d = Pa_GetDeviceInfo(i);
        if (!d || (want_input ? d->maxInputChannels : d->maxOutputChannels) < 1) continue;
        if ((*spec && !*end && idx == i) || strstr(d->name, spec)) return i;
    }
    return paNoDevice;
}

static int run_devices(engine *e, const char *in_dev, const char *out_dev, double seconds,
                       double algo_ms, int quiet)
{
    PaError err = Pa_Initialize();
    if (err != paNoError) {
        fprintf(stderr, "sotto-live: PortAudio: %s\n", Pa_GetErrorText(err));
        return EXIT_DEVICE;
    }
    int rc = EXIT_OK;
    PaStream *stream = NULL;
    PaDeviceIndex di = find_device(in_dev, 1), dout = find_device(out_dev, 0);
    if (di == paNoDevice || dout == paNoDevice) {
        fprintf(stderr, "sotto-live: no %s device%s%s (see --list-devices)\n",
                di == paNoDevice ? "input" : "output",
                (di == paNoDevice ? in_dev : out_dev) ? " matching " : "",
                (di == paNoDevice ? in_dev : out_dev) ? (di == paNoDevice ? in_dev : out_dev)
                                                      : "");
        Pa_Terminate();
        return EXIT_DEVICE;
    }
    PaStreamParameters ip = {di, 1, paFloat32, Pa_GetDeviceInfo(di)->defaultLowInputLatency,
                             NULL};
    PaStreamParameters op = {dout, 1, paFloat32, Pa_GetDeviceInfo(dout)->defaultLowOutputLatency,
                             NULL};
    err = Pa_OpenStream(&stream, &ip, &op, e->sr, (unsigned long)e->block, paClipOff,
                        pa_callback, e);
    if (err != paNoError) {
        fprintf(stderr, "sotto-live: cannot open the audio stream at %d Hz: %s\n", e->sr,
                Pa_GetErrorText(err));
        Pa_Terminate();
        return EXIT_DEVICE;
    }
    pthread_t th;
    if (pthread_create(&th, NULL, process_thread, e)) {
        fprintf(stderr, "sotto-live: cannot start the processing thread\n");
        Pa_CloseStream(stream);
        Pa_Terminate();
        return EXIT_RUNTIME;
    }
    signal(SIGINT, on_sigint);
    if ((err = Pa_StartStream(stream)) != paNoError) {
        fprintf(stderr, "sotto-live: cannot start the audio stream: %s\n", Pa_GetErrorText(err));
        rc = EXIT_DEVICE;
    } else {
        const PaStreamInfo *si = Pa_GetStreamInfo(stream);
        const double dev_ms = si ? 1000.0 * (si->inputLatency + si->outputLatency) : 0;
        const double block_ms = 1000.0 * e->block / e->sr;
        if (!quiet)
            fprintf(stderr,
                    "sotto-live: %s -> %s at %d Hz; latency %.1f ms = look-ahead %.1f + block "
                    "%.1f + devices %.1f (in %.1f, out %.1f); Ctrl-C stops\n",
                    Pa_GetDeviceInfo(di)->name, Pa_GetDeviceInfo(dout)->name, e->sr,
                    algo_ms + block_ms + dev_ms, algo_ms, block_ms, dev_ms,
                    si ? 1000.0 * si->inputLatency : 0, si ? 1000.0 * si->outputLatency : 0);
        const double t_end = seconds > 0 ? now_s() + seconds : INFINITY;
        while (!interrupted && now_s() < t_end && !atomic_load(&e->finished)) sleep_ms(20);
        Pa_StopStream(stream);
    }
    atomic_store(&e->stop, 1);
    pthread_join(th, NULL);
    Pa_CloseStream(stream);
    Pa_Terminate();
    if (e->error < 0) {
        fprintf(stderr, "sotto-live: %s\n", sotto_vocoder_last_error(e->voc));
        rc = EXIT_RUNTIME;
    }
    if (!quiet)
        fprintf(stderr, "sotto-live: dropped %ld input / %ld output samples, %ld underruns\n",
                atomic_load(&e->dropped_in), atomic_load(&e->dropped_out),
                atomic_load(&e->underruns));
    return rc;
}

/* ---- main --------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    const char *model_path = DEFAULT_MODEL, *in_dev = NULL, *out_dev = NULL;
    const char *file_in = NULL, *file_out = NULL;
    double block_ms = 20, seconds = 0;
    int threads = 1, quiet = 0, list = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return EXIT_OK;
        } else if (!strcmp(a, "--list-devices")) {
            list = 1;
        } else if (!strcmp(a, "--input") && has_val) {
            in_dev = argv[++i];
        } else if (!strcmp(a, "--output") && has_val) {
            out_dev = argv[++i];
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has_val) {
            model_path = argv[++i];
        } else if (!strcmp(a, "--block") && has_val) {
            block_ms = atof(argv[++i]);
        } else if (!strcmp(a, "--seconds") && has_val) {
            seconds = atof(argv[++i]);
        } else if (!strcmp(a, "--file-in") && has_val) {
            file_in = argv[++i];
        } else if (!strcmp(a, "--file-out") && has_val) {
            file_out = argv[++i];
        } else if ((!strcmp(a, "-t") || !strcmp(a, "--threads")) && has_val) {
            threads = atoi(argv[++i]);
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = 1;
        } else {
            fprintf(stderr, "sotto-live: unknown option or missing value: %s (see --help)\n", a);
            return EXIT_USAGE;
        }
    }
    if (list) return list_devices();
    if (!(block_ms >= 1 && block_ms <= 1000) || threads < 1 || threads > 64 || seconds < 0 ||
        !!file_in != !!file_out) {
        fprintf(stderr, "sotto-live: --block must be 1..1000 ms, --threads 1..64, and "
                        "--file-in and --file-out go together (see --help)\n");
        return EXIT_USAGE;
    }

    sotto_status st;
    sotto_model *model = NULL;
    sotto_vocoder *voc = NULL;
    sotto_model_params mp = sotto_model_default_params();
    mp.n_threads = threads;
    if (sotto_model_load_file(model_path, &mp, &model, &st) != SOTTO_OK) {
        fprintf(stderr, "sotto-live: %s: %s\n", model_path, st.message);
        return EXIT_MODEL;
    }
    if (sotto_vocoder_create(model, NULL, &voc, &st) != SOTTO_OK ||
        sotto_vocoder_num_codebooks(voc) > 0) {
        fprintf(stderr, "sotto-live: %s: %s\n", model_path,
                voc ? "the model takes codes, not audio" : st.message);
        sotto_vocoder_free(voc);
        sotto_model_free(model);
        return EXIT_MODEL;
    }
    const int sr = sotto_vocoder_sample_rate_hz(voc);
    const int block = (int)lround(block_ms * sr / 1000.0);
    const double algo_ms = 1000.0 * sotto_vocoder_lookahead_samples(voc) / sr;
    engine e;
    int rc;
    if (engine_init(&e, voc, block < 1 ? 1 : block, file_in != NULL)) {
        fprintf(stderr, "sotto-live: out of memory\n");
        rc = EXIT_RUNTIME;
    } else if (file_in) {
        if (!quiet)
            fprintf(stderr, "sotto-live: model %d Hz, hop %d; latency in live use %.1f ms = "
                            "look-ahead %.1f + block %.1f + devices (file mode: none)\n",
                    sr, sotto_vocoder_hop_samples(voc), algo_ms + 1000.0 * e.block / sr,
                    algo_ms, 1000.0 * e.block / sr);
        rc = run_file(&e, file_in, file_out, quiet);
    } else {
        rc = run_devices(&e, in_dev, out_dev, seconds, algo_ms, quiet);
    }
    engine_free(&e);
    sotto_vocoder_free(voc);
    sotto_model_free(model);
    return rc;
}
