/*
 * `sotto-live`: microphone -> model -> speaker, with PortAudio. Two paths, chosen by the
 * model file's kind:
 *
 *   - vocoder (Vocos): analysis–synthesis (sotto_vocoder_push_audio), streamed in blocks;
 *   - codec (FlexiCodec with an encoder): segment-based. The codec is not causal, so the
 *     processing thread collects one --segment of audio, encodes it (sotto_encoder), packs the
 *     groups into packets (sotto_codec_pack_packet, at most 16 groups and one second each),
 *     optionally drops packets (simulated loss; a dropped packet is concealed with
 *     sotto_decoder_conceal_frames, its exact frame count being known to the sender), pushes
 *     the others into a sotto_decoder, flushes it for the segment's audio, resets it and
 *     emits exactly one segment of samples.
 *
 * Device mode opens the stream at the devices' native rate (defaultSampleRate; the output's
 * when they differ and the input supports it) or at --device-rate. The rings carry device-rate
 * samples; when that rate differs from the model's, the processing thread converts input to
 * the model rate and the model's output back with two streaming soxr resamplers
 * (dsp/resample.h). At equal rates there is no resampler and the path is unchanged.
 *
 * The PortAudio callback only moves samples through two lock-free SPSC rings (ring.h) and
 * bumps atomic counters: it never allocates, locks or logs. Everything that allocates
 * (encoder, decoder, vocoder, buffers, rings, the optional tap) is created before the stream
 * starts. The --file-in/--file-out mode feeds the same rings and processing thread from a
 * file instead of the devices, so the loop can be tested without audio hardware.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <portaudio.h>

#include "ring.h"
#include "sotto/sotto.h"
#include "sotto/sotto_audio.h"
#include "sotto/sotto_codec.h"
#include "sotto/sotto_vocoder.h"

#include "dsp/resample.h"

#define DEFAULT_MODEL "samples/models/vocos-16k-mini.gguf"
#define WARMUP_S 0.5 /* xruns/underruns before this are start-up, not steady state */

enum {
    EXIT_OK = 0,
    EXIT_USAGE = 2,
    EXIT_INPUT = 3,
    EXIT_MODEL = 4,
    EXIT_OUTPUT = 5,
    EXIT_RUNTIME = 6,
    EXIT_DEVICE = 8
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sotto-live [options]\n"
            "       sotto-live --list-devices [--host API]\n"
            "       sotto-live --file-in IN.wav --file-out OUT.wav [options]\n"
            "\n"
            "Plays the microphone back through a model, chosen by the model file's kind:\n"
            "  vocoder (Vocos): analysis-synthesis (the model's own mel front end, then\n"
            "    Vocos), streamed in blocks;\n"
            "  codec (FlexiCodec with an encoder): segment by segment (the codec is not\n"
            "    causal): encode, pack into packets, optionally lose some, decode.\n"
            "The devices open at their native rate (or --device-rate); when it differs from\n"
            "the model's, the processing thread resamples with soxr both ways.\n"
            "Ctrl-C stops. Prints the latency and, at the end, a report.\n"
            "With --file-in/--file-out the same processing loop runs on a file (read at the\n"
            "model's rate) without audio devices; the output is written latency-compensated:\n"
            "aligned with the input and exactly as long, as 32-bit float WAV.\n"
            "\n"
            "options:\n"
            "  --list-devices      list audio devices ('none' if there are none) and exit\n"
            "  --host API          use devices of this PortAudio host API only (part of its\n"
            "                      name, e.g. JACK or ALSA; default: any)\n"
            "  --input DEV         input device: index or part of its name (default: system's)\n"
            "  --output DEV        output device: index or part of its name (default: system's)\n"
            "  -m, --model FILE    vocoder with a mel front end, or FlexiCodec with an encoder\n"
            "                      (default %s)\n"
            "  --block MS          device buffer / processing block in ms, 1..1000 (default 20)\n"
            "  --device-rate HZ    open the devices at this rate, 8000..192000 (default: their\n"
            "                      native rate); audio is resampled to and from the model's\n"
            "                      rate with soxr when the two differ\n"
            "  --seconds S         stop after S seconds (default: run until Ctrl-C)\n"
            "  --file-in FILE      process this file instead of the microphone\n"
            "  --file-out FILE     write the result here (with --file-in)\n"
            "  --tap PREFIX        device mode, with --seconds: write what the callback got\n"
            "                      and played to PREFIX.in.wav and PREFIX.out.wav\n"
            "  --json              print the final report as one JSON object on stdout\n"
            "  -t, --threads N     CPU threads (default 1)\n"
            "  --f16-arithmetic    binary16 arithmetic where the CPU has AVX512-FP16 (f16\n"
            "                      models; less CPU per block, codes may differ from f32)\n"
            "  -q, --quiet         no report on stderr\n"
            "  -h, --help          this text\n"
            "codec options (FlexiCodec models):\n"
            "  --segment MS        segment coded at once, a multiple of 80 ms (one frame),\n"
            "                      80..30000 (default 2000)\n"
            "  --threshold T       merge threshold 0..1 (default: the model's)\n"
            "  --rate HZ           rate control: target groups per second (0 < HZ <= 12.5)\n"
            "  --bitrate BPS       rate control: target payload bits per second\n"
            "  --quantizers N      RVQ stages per group (default: all the model has)\n"
            "  --loss P            simulated packet loss, 0..100 %% (default 0)\n"
            "  --seed N            seed of the loss simulation (default 1)\n"
            "\n"
            "Exit codes: 0 ok, 2 usage, 3 input file, 4 model, 5 output file, 6 runtime,\n"
            "8 audio device cannot be opened.\n",
            DEFAULT_MODEL);
}

/* ---- the processing loop ------------------------------------------------------------------ */

typedef struct engine {
    int codec; /* 0: vocoder path, 1: codec path */
    sotto_vocoder *voc;
    const sotto_model *model;
    sotto_encoder *enc;
    sotto_decoder *dec;
    int sr, block; /* model rate; frames per block (device buffer, at dev_sr) */
    int dev_sr;    /* device rate (file mode: the model rate); rings carry samples at it */
    int mblock;    /* vocoder: model-rate samples taken per step (block when rates are equal) */
    int lossless;  /* file mode: wait for room instead of dropping output */
    float *inblk, *outbuf;
    size_t outcap;
    /* device rate != model rate: rs_in converts the input ring's samples to the model rate,
     * rs_out the model's output back to the device rate (both NULL at equal rates) */
    sotto_resampler *rs_in, *rs_out;
    float *dblk;              /* [block] device-rate input popped from the ring */
    size_t dblk_n, dblk_used; /* samples in dblk, of which handed to rs_in */
    float *stage;             /* [stage_cap] rs_in's model-rate output not yet taken */
    size_t stage_cap, stage_n, stage_off;
    float *dout; /* [dout_cap] rs_out's device-rate output */
    size_t dout_cap;
    long rs_in_min, rs_in_max, rs_out_min, rs_out_max; /* pending samples, measured at start */
    long rs_in_run_max, rs_out_run_max;                /* the same, seen while running */
    live_ring in, out;
    atomic_int input_done; /* no more input will come: drain, flush, finish */
    atomic_int stop;       /* stop now (device mode) */
    atomic_int finished;   /* the processing thread has flushed and exited */
    atomic_long dropped_in, dropped_out, underruns, underruns_steady;
    atomic_long callbacks, xruns, xruns_steady; /* device mode: callback counters */
    atomic_llong cb_first_ns, cb_last_ns;       /* CLOCK_MONOTONIC of the first and last callback */
    long warmup_callbacks;                      /* callbacks in the first WARMUP_S seconds */
    size_t cushion;      /* device mode: output samples held back before playing starts */
    long hold_cbs, held; /* codec: callbacks to wait after the first output (callback-owned) */
    atomic_int started_output;
    int error; /* processing error (SOTTO_ERR_*), read after join */
    char errmsg[256];
    double busy_s;
    /* codec path */
    int seg, hop, trim; /* samples per segment, per frame; decoder trim (hop·T − out) */
    size_t win;         /* segment + look-ahead: samples encoded per segment */
    size_t seg_fill;
    float *segbuf; /* [win] input of the window being collected */
    uint8_t *pkt;  /* [pkt_cap] one packet */
    size_t pkt_cap;
    double loss_pct;
    uint64_t rng;
    long segments, groups, frames, packets, packets_lost, padded, trimmed;
    double payload_bits, packet_bytes, audio_s, seg_ms_max;
    double threshold_sum;
    /* device tap (optional): what the callback got and played */
    float *tap_in, *tap_out;
    size_t tap_cap;
    atomic_size_t tap_n;
} engine;

/* Seconds without a device callback after which a running stream counts as dead. */
#define STALL_S 2.0

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

/* splitmix64: the seeded loss simulation (the same seed drops the same packets). */
static double rng_uniform(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

/* Pushes output into the output ring: waits for room in file mode, drops the excess
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

/* Model-rate output to the output ring: as is at equal rates, else through rs_out (a
 * fixed buffer, filled as often as needed: soxr releases its output in bursts). */
static int emit_model(engine *e, const float *x, size_t n)
{
    if (!e->rs_out) {
        emit(e, x, n);
        return 0;
    }
    size_t done = 0;
    while (done < n) {
        int64_t used = 0;
        const int64_t m = sotto_resampler_push_some(e->rs_out, x + done, (int64_t)(n - done), &used,
                                                    e->dout, (int64_t)e->dout_cap);
        if (m < 0) {
            snprintf(e->errmsg, sizeof e->errmsg, "output resampler failed (%d)", (int)m);
            return (int)m;
        }
        done += (size_t)used;
        emit(e, e->dout, (size_t)m);
    }
    const long p = (long)sotto_resampler_pending_samples(e->rs_out);
    if (p > e->rs_out_run_max) e->rs_out_run_max = p;
    return 0;
}

/* Up to n model-rate input samples: straight from the input ring at equal rates, else
 * device-rate samples popped a block at a time and converted by rs_in. Returns the count,
 * or a negative error (errmsg set). */
static int64_t pull_input(engine *e, float *dst, size_t n)
{
    if (!e->rs_in) return (int64_t)live_ring_pop(&e->in, dst, n);
    size_t got = 0;
    while (got < n) {
        if (e->stage_off < e->stage_n) {
            size_t k = e->stage_n - e->stage_off;
            if (k > n - got) k = n - got;
            memcpy(dst + got, e->stage + e->stage_off, sizeof(float) * k);
            e->stage_off += k;
            got += k;
            continue;
        }
        if (e->dblk_used == e->dblk_n) {
            e->dblk_n = live_ring_pop(&e->in, e->dblk, (size_t)e->block);
            e->dblk_used = 0;
            if (!e->dblk_n) break;
        }
        int64_t used = 0;
        const int64_t m = sotto_resampler_push_some(e->rs_in, e->dblk + e->dblk_used,
                                                    (int64_t)(e->dblk_n - e->dblk_used), &used,
                                                    e->stage, (int64_t)e->stage_cap);
        if (m < 0) {
            snprintf(e->errmsg, sizeof e->errmsg, "input resampler failed (%d)", (int)m);
            return m;
        }
        e->dblk_used += (size_t)used;
        e->stage_n = (size_t)m;
        e->stage_off = 0;
        const long p = (long)sotto_resampler_pending_samples(e->rs_in);
        if (p > e->rs_in_run_max) e->rs_in_run_max = p;
    }
    return (int64_t)got;
}

/* Input samples the encoder needs so that its frames decode to at least n samples: the
 * decoder returns hop·T − trim samples for T frames, and the encoder's frame count for a
 * length (min of SenseVoice's and the DAC's) can fall short of ceil(n / hop). Steps of 10 ms. */
static size_t codec_need(const engine *e, size_t n)
{
    const int64_t T = ((int64_t)n + e->trim + e->hop - 1) / e->hop;
    size_t len = (n + 159) / 160 * 160;
    while (len < e->win && sotto_encoder_frames_for(e->enc, (int64_t)len) < T)
        len += 160;
    return len < e->win ? len : e->win;
}

/* Codes segbuf[0 .. n_have) (zero-padded to what n_emit needs) and emits exactly n_emit
 * samples: the decoded first n_emit. Samples past n_emit are the look-ahead (the start of the
 * next segment, re-coded there). */
static int codec_segment(engine *e, size_t n_emit, size_t n_have)
{
    const double t0 = now_s();
    size_t n_enc = codec_need(e, n_emit);
    if (n_enc < n_have) n_enc = n_have;
    if (n_enc > n_have) memset(e->segbuf + n_have, 0, sizeof(float) * (n_enc - n_have));
    sotto_encoder_groups g;
    int rc = sotto_encoder_encode(e->enc, e->segbuf, (int64_t)n_enc, &g);
    if (rc < 0) {
        snprintf(e->errmsg, sizeof e->errmsg, "encoder: %.200s", sotto_encoder_last_error(e->enc));
        return rc;
    }
    const int bits_per_group = sotto_encoder_bits_per_group(e->enc);
    for (int i = 0; i < g.n_groups;) {
        /* a packet: up to 16 groups, closed once it spans one second (as .sotto files) */
        int k = 0, span = 0;
        while (i + k < g.n_groups && k < 16 && (int64_t)span * e->hop < e->sr)
            span += g.lengths[i + k++];
        size_t bytes = 0;
        sotto_status st;
        rc = sotto_codec_pack_packet(e->model, g.lengths + i, g.fsq + i,
                                     g.rvq ? g.rvq + (size_t)i * (size_t)g.n_stages : NULL, k,
                                     g.n_stages, e->pkt, e->pkt_cap, &bytes, &st);
        if (rc < 0) {
            snprintf(e->errmsg, sizeof e->errmsg, "packing: %.200s", st.message);
            return rc;
        }
        e->packets++;
        e->packet_bytes += (double)bytes;
        if (e->loss_pct > 0 && rng_uniform(&e->rng) * 100.0 < e->loss_pct) {
            /* lost: the sender knows its exact duration, so the output stays exact */
            e->packets_lost++;
            rc = sotto_decoder_conceal_frames(e->dec, span);
        } else {
            rc = sotto_decoder_push_packet(e->dec, e->pkt, bytes);
        }
        if (rc < 0) {
            snprintf(e->errmsg, sizeof e->errmsg, "decoder: %.200s",
                     sotto_decoder_last_error(e->dec));
            return rc;
        }
        i += k;
    }
    int got = 0;
    if (sotto_decoder_buffered_frames(e->dec) > 0) {
        got = sotto_decoder_flush(e->dec, e->outbuf, e->outcap);
        if (got < 0) {
            snprintf(e->errmsg, sizeof e->errmsg, "decoder: %.200s",
                     sotto_decoder_last_error(e->dec));
            return got;
        }
    }
    sotto_decoder_reset(e->dec);
    /* Exactly n_emit samples, so the stream stays continuous and aligned (zeros only if the
     * codec gave fewer, e.g. a final piece under 0.03 s). */
    if ((size_t)got < n_emit) {
        memset(e->outbuf + got, 0, sizeof(float) * (n_emit - (size_t)got));
        e->padded += (long)(n_emit - (size_t)got);
    } else {
        e->trimmed += (long)((size_t)got - n_emit);
    }
    const double dt = now_s() - t0;
    e->busy_s += dt;
    if (1000.0 * dt > e->seg_ms_max) e->seg_ms_max = 1000.0 * dt;
    e->segments++;
    e->groups += g.n_groups;
    e->frames += g.n_frames;
    e->threshold_sum += g.threshold;
    e->payload_bits += (double)g.n_groups * bits_per_group;
    e->audio_s += (double)n_emit / e->sr;
    return emit_model(e, e->outbuf, n_emit);
}

/* Collects segment + look-ahead (win samples), codes it, emits the segment and keeps the
 * look-ahead as the start of the next window. At the end of the input the rest is coded
 * with zeros as look-ahead. */
static void *codec_thread(engine *e)
{
    for (;;) {
        if (atomic_load(&e->stop)) break;
        const int done = atomic_load(&e->input_done);
        const int64_t got = pull_input(e, e->segbuf + e->seg_fill, e->win - e->seg_fill);
        if (got < 0) {
            e->error = (int)got;
            break;
        }
        const size_t k = (size_t)got;
        e->seg_fill += k;
        const int drained = done && live_ring_available(&e->in) == 0;
        if (e->seg_fill == e->win || (drained && e->seg_fill > 0)) {
            const size_t n_emit = e->seg_fill < (size_t)e->seg ? e->seg_fill : (size_t)e->seg;
            int rc = codec_segment(e, n_emit, e->seg_fill);
            if (rc < 0) {
                e->error = rc;
                break;
            }
            memmove(e->segbuf, e->segbuf + n_emit, sizeof(float) * (e->seg_fill - n_emit));
            e->seg_fill -= n_emit;
            continue;
        }
        if (drained) break;
        if (!k) sleep_ms(1);
    }
    atomic_store(&e->finished, 1);
    return NULL;
}

/* Device mode, before the stream starts: codes one silent segment to time the processing
 * and sets the output cushion (playing starts that many blocks after the first segment's
 * output arrived), so a later segment that takes longer than the first does not run the
 * output dry. Returns the time. */
static double codec_warmup(engine *e)
{
    memset(e->segbuf, 0, sizeof(float) * e->win);
    const uint64_t rng = e->rng;
    const double t0 = now_s();
    const int rc = codec_segment(e, (size_t)e->seg, e->win);
    const double dt = now_s() - t0;
    e->rng = rng; /* the loss simulation starts with the stream */
    if (rc < 0) return 0;
    float tmp[1024];
    while (live_ring_pop(&e->out, tmp, 1024) > 0) {
    }
    e->segments = e->groups = e->frames = e->packets = e->packets_lost = e->padded = e->trimmed = 0;
    e->payload_bits = e->packet_bytes = e->audio_s = e->seg_ms_max = e->threshold_sum = e->busy_s =
        0;
    /* The margin covers later segments taking longer than the first: 4 × the silent
     * segment's time or a tenth of the segment, whichever is more, in whole blocks. */
    double margin_s = fmax(4.0 * dt, 0.1 * e->seg / e->sr);
    /* plus what the resamplers hold back: the end of a segment's output only leaves rs_out
     * with the next segment */
    if (e->rs_in) margin_s += (double)e->rs_in_max / e->sr + (double)e->rs_out_max / e->dev_sr;
    e->hold_cbs = (long)ceil(margin_s * e->dev_sr / e->block);
    e->cushion = 0;
    /* the silent segment went through rs_out too: start the stream from a clean state */
    if (e->rs_out) sotto_resampler_reset(e->rs_out);
    e->rs_out_run_max = 0;
    return dt;
}

static void *process_thread(void *arg)
{
    engine *e = arg;
    if (e->codec) return codec_thread(e);
    for (;;) {
        if (atomic_load(&e->stop)) break;
        const int done = atomic_load(&e->input_done);
        size_t avail = live_ring_available(&e->in);
        const int staged = e->rs_in && (e->stage_off < e->stage_n || e->dblk_used < e->dblk_n);
        if (avail < (size_t)e->block && !done && !staged) {
            sleep_ms(1);
            continue;
        }
        double t0 = now_s();
        const int64_t pulled = pull_input(e, e->inblk, (size_t)e->mblock);
        if (pulled < 0) {
            e->error = (int)pulled;
            break;
        }
        size_t n = (size_t)pulled;
        int got = n ? sotto_vocoder_push_audio(e->voc, e->inblk, n, e->outbuf, e->outcap) : 0;
        if (got >= 0 && n == 0 && done) got = sotto_vocoder_flush(e->voc, e->outbuf, e->outcap);
        const double t1 = now_s();
        e->busy_s += t1 - t0;
        if (got < 0) {
            e->error = got;
            snprintf(e->errmsg, sizeof e->errmsg, "%s", sotto_vocoder_last_error(e->voc));
            break;
        }
        const int erc = emit_model(e, e->outbuf, (size_t)got);
        e->busy_s += now_s() - t1;
        if (erc < 0) {
            e->error = erc;
            break;
        }
        if (n == 0 && done) break; /* input drained and flushed */
    }
    atomic_store(&e->finished, 1);
    return NULL;
}

/* Frames the decoder was created for: its flush capacity is the output for these, hop·T
 * minus a trim of less than one hop. */
static int64_t codec_max_frames(const sotto_decoder *dec)
{
    const int hop = sotto_decoder_hop_samples(dec);
    return ((int64_t)sotto_decoder_max_output_samples(dec) + hop - 1) / hop;
}

/* Vocoder path: voc set; codec path: enc and dec set, seg samples per segment. sr is the
 * model's rate, dev_sr the devices' (file mode: sr), block the frames per device buffer. */
static int engine_init(engine *e, sotto_vocoder *voc, const sotto_model *model, sotto_encoder *enc,
                       sotto_decoder *dec, int sr, int dev_sr, int block, int seg, size_t win,
                       int lossless)
{
    memset(e, 0, sizeof *e);
    e->voc = voc;
    e->model = model;
    e->enc = enc;
    e->dec = dec;
    e->codec = enc != NULL;
    e->sr = sr;
    e->dev_sr = dev_sr;
    e->block = block;
    e->lossless = lossless;
    if (dev_sr != sr) {
        /* A block of device input gives at most max_output model samples on a fresh stream
         * (the rate ratio, rounded); soxr's bursts beyond that are taken in further steps
         * (push_some into the fixed stage buffer). */
        if (sotto_resampler_create(dev_sr, sr, NULL, &e->rs_in, NULL) != SOTTO_OK ||
            sotto_resampler_create(sr, dev_sr, NULL, &e->rs_out, NULL) != SOTTO_OK)
            return -1;
        e->stage_cap = (size_t)sotto_resampler_max_output(e->rs_in, block) + 1;
        e->dblk = calloc((size_t)block, sizeof(float));
        e->stage = malloc(sizeof(float) * e->stage_cap);
        if (!e->dblk || !e->stage) return -1;
    }
    e->mblock = e->rs_in ? (int)e->stage_cap : block;
    size_t cap;
    if (e->codec) {
        e->seg = seg;
        e->win = win;
        e->hop = sotto_decoder_hop_samples(dec);
        size_t dmax = sotto_decoder_max_output_samples(dec);
        e->trim = (int)(codec_max_frames(dec) * (int64_t)e->hop - (int64_t)dmax);
        e->outcap = dmax > (size_t)seg ? dmax : (size_t)seg;
        e->pkt_cap = sotto_decoder_packet_max_bytes(dec);
        e->segbuf = malloc(sizeof(float) * win);
        e->pkt = malloc(e->pkt_cap ? e->pkt_cap : 1);
        e->outbuf = malloc(sizeof(float) * e->outcap);
        if (!e->segbuf || !e->pkt) return -1;
        /* Output: a whole segment arrives at once while the previous one still plays. */
        cap = 2 * win + (size_t)sr + 8 * (size_t)block;
    } else {
        e->outcap =
            sotto_vocoder_max_output_samples(voc, e->mblock / sotto_vocoder_hop_samples(voc) + 1);
        e->inblk = malloc(sizeof(float) * (size_t)e->mblock);
        e->outbuf = malloc(sizeof(float) * e->outcap);
        if (!e->inblk) return -1;
        /* Rings hold a second of audio or 8 blocks, whichever is more. */
        cap = (size_t)(dev_sr > 8 * block ? dev_sr : 8 * block) + e->outcap;
    }
    if (e->rs_out) {
        e->dout_cap = (size_t)sotto_resampler_max_output(e->rs_out, (int64_t)e->outcap) + 1;
        e->dout = malloc(sizeof(float) * e->dout_cap);
        if (!e->dout) return -1;
        /* the same spans in device-rate samples, and a burst of rs_out on top */
        if (e->codec)
            cap = (size_t)ceil((double)(2 * win + (size_t)sr) * dev_sr / sr) + 8 * (size_t)block +
                  e->dout_cap;
        else
            cap += e->dout_cap;
    }
    if (!e->outbuf || live_ring_init(&e->in, cap) || live_ring_init(&e->out, cap)) return -1;
    e->warmup_callbacks = (long)ceil(WARMUP_S * dev_sr / block);
    /* One block on top of the one being played: the vocoder's output comes hop by hop; the
     * codec's a whole segment at once (the cushion then only absorbs callback jitter). The
     * resamplers' jitter is added once it is measured (resamplers_measure). */
    e->cushion = (size_t)block;
    atomic_init(&e->input_done, 0);
    atomic_init(&e->stop, 0);
    atomic_init(&e->finished, 0);
    atomic_init(&e->dropped_in, 0);
    atomic_init(&e->dropped_out, 0);
    atomic_init(&e->underruns, 0);
    atomic_init(&e->underruns_steady, 0);
    atomic_init(&e->callbacks, 0);
    atomic_init(&e->xruns, 0);
    atomic_init(&e->xruns_steady, 0);
    atomic_init(&e->cb_first_ns, 0);
    atomic_init(&e->cb_last_ns, 0);
    atomic_init(&e->started_output, 0);
    atomic_init(&e->tap_n, 0);
    return 0;
}

/* Feeds 2 s of silence through r in chunks of `chunk` input samples and records the output it
 * holds back (pending samples) after the first 0.25 s: soxr releases output in bursts, so
 * this swings between a minimum and a maximum. Then resets r. Before the stream starts
 * (allocates a scratch buffer; reset may allocate). Returns 0 or -1. */
static int measure_pending(sotto_resampler *r, int in_hz, size_t chunk, long *mn, long *mx)
{
    const size_t cap = (size_t)sotto_resampler_max_output(r, (int64_t)chunk) + 1;
    float *zeros = calloc(chunk, sizeof(float)), *out = malloc(sizeof(float) * cap);
    int rc = zeros && out ? 0 : -1;
    *mn = 0;
    *mx = 0;
    long lo = -1, hi = 0;
    for (int64_t fed = 0; !rc && fed < 2 * (int64_t)in_hz; fed += (int64_t)chunk) {
        for (size_t done = 0; done < chunk;) {
            int64_t used = 0;
            if (sotto_resampler_push_some(r, zeros + done, (int64_t)(chunk - done), &used, out,
                                          (int64_t)cap) < 0) {
                rc = -1;
                break;
            }
            done += (size_t)used;
        }
        if (fed >= in_hz / 4) {
            const long p = (long)sotto_resampler_pending_samples(r);
            if (lo < 0 || p < lo) lo = p;
            if (p > hi) hi = p;
        }
    }
    free(zeros);
    free(out);
    if (sotto_resampler_reset(r) != SOTTO_OK) rc = -1;
    if (!rc) {
        *mn = lo < 0 ? 0 : lo;
        *mx = hi;
    }
    return rc;
}

/* Device mode, different rates, before the stream starts: measures both resamplers (input
 * in device blocks, output in model-rate blocks) and widens the vocoder's output cushion by
 * their jitter (the swing of their held-back output, in device samples). */
static int resamplers_measure(engine *e)
{
    if (!e->rs_in) return 0;
    const size_t mchunk = (size_t)lround((double)e->block * e->sr / e->dev_sr);
    if (measure_pending(e->rs_in, e->dev_sr, (size_t)e->block, &e->rs_in_min, &e->rs_in_max) ||
        measure_pending(e->rs_out, e->sr, mchunk < 1 ? 1 : mchunk, &e->rs_out_min, &e->rs_out_max))
        return -1;
    e->cushion += (size_t)ceil((double)(e->rs_in_max - e->rs_in_min) * e->dev_sr / e->sr) +
                  (size_t)(e->rs_out_max - e->rs_out_min);
    return 0;
}

/* The resamplers' delay in ms: the most output each holds back (measured at start). */
static double resampling_ms(const engine *e)
{
    if (!e->rs_in) return 0;
    return 1000.0 * ((double)e->rs_in_max / e->sr + (double)e->rs_out_max / e->dev_sr);
}

static void engine_free(engine *e)
{
    free(e->inblk);
    free(e->outbuf);
    free(e->segbuf);
    free(e->pkt);
    free(e->tap_in);
    free(e->tap_out);
    free(e->dblk);
    free(e->stage);
    free(e->dout);
    sotto_resampler_destroy(e->rs_in);
    sotto_resampler_destroy(e->rs_out);
    live_ring_free(&e->in);
    live_ring_free(&e->out);
}

/* ---- report ------------------------------------------------------------------------------- */

typedef struct report {
    const char *mode;
    double stream_s;     /* device mode: wall time the stream ran; file mode: 0 */
    double audio_s;      /* audio processed */
    double algo_ms;      /* algorithmic latency */
    double device_ms;    /* device latency reported by PortAudio */
    double cpu_callback; /* Pa_GetStreamCpuLoad at the end, 0..1 */
    int device;          /* 1: device mode */
} report;

static void print_report(const engine *e, const report *r, int quiet, int json)
{
    const double load = r->audio_s > 0 ? e->busy_s / r->audio_s : 0;
    const double dur = e->audio_s > 0 ? e->audio_s : 0;
    if (!quiet) {
        if (e->codec) {
            fprintf(stderr,
                    "sotto-live: codec: %ld segments of %.0f ms, processing %.1f ms mean / "
                    "%.1f ms max per segment; latency: algorithmic %.0f ms (segment %.0f + "
                    "look-ahead %.0f) + block + output cushion + devices\n",
                    e->segments, 1000.0 * e->seg / e->sr,
                    e->segments ? 1000.0 * e->busy_s / (double)e->segments : 0.0, e->seg_ms_max,
                    r->algo_ms, 1000.0 * e->seg / e->sr,
                    1000.0 * (double)(e->win - (size_t)e->seg) / e->sr);
            fprintf(stderr,
                    "sotto-live: codec: %ld groups, %ld frames: %.2f groups/s, payload %.0f "
                    "bit/s, packets %.0f bit/s; packets sent %ld, lost %ld (%.1f %%); mean "
                    "threshold %.3f; %ld samples padded, %ld trimmed\n",
                    e->groups, e->frames, dur > 0 ? (double)e->groups / dur : 0.0,
                    dur > 0 ? e->payload_bits / dur : 0.0,
                    dur > 0 ? 8.0 * e->packet_bytes / dur : 0.0, e->packets, e->packets_lost,
                    e->packets ? 100.0 * (double)e->packets_lost / (double)e->packets : 0.0,
                    e->segments ? e->threshold_sum / (double)e->segments : 0.0, e->padded,
                    e->trimmed);
        }
        if (r->device)
            fprintf(stderr,
                    "sotto-live: %.2f s, %ld callbacks of %d frames at %d Hz (model %d Hz%s), "
                    "%ld xruns (%ld after "
                    "%.1f s), %ld underruns (%ld after %.1f s), dropped %ld input / %ld output "
                    "samples; CPU: callback %.1f %%, processing %.1f %% of real time\n",
                    r->stream_s, atomic_load(&e->callbacks), e->block, e->dev_sr, e->sr,
                    e->rs_in ? ", resampled with soxr" : "", atomic_load(&e->xruns),
                    atomic_load(&e->xruns_steady), WARMUP_S, atomic_load(&e->underruns),
                    atomic_load(&e->underruns_steady), WARMUP_S, atomic_load(&e->dropped_in),
                    atomic_load(&e->dropped_out), 100.0 * r->cpu_callback, 100.0 * load);
    }
    if (!json) return;
    printf("{\"mode\":\"%s\",\"device\":%s,\"sample_rate\":%d,\"model_rate\":%d,"
           "\"device_rate\":%d,\"frames_per_buffer\":%d,"
           "\"stream_seconds\":%.4f,\"audio_seconds\":%.4f,\"callbacks\":%ld,\"xruns\":%ld,"
           "\"xruns_steady\":%ld,\"underruns\":%ld,\"underruns_steady\":%ld,"
           "\"warmup_seconds\":%.2f,\"dropped_in\":%ld,\"dropped_out\":%ld,"
           "\"cpu_load_callback\":%.4f,\"processing_load\":%.4f,\"algorithmic_latency_ms\":%.1f,"
           "\"device_latency_ms\":%.1f,\"output_cushion_ms\":%.1f,"
           "\"callback_span_seconds\":%.4f,\"resampling_latency_ms\":%.1f,"
           "\"resampler_in_pending_ms\":[%.1f,%.1f],\"resampler_out_pending_ms\":[%.1f,%.1f],"
           "\"resampler_pending_max_seen_ms\":[%.1f,%.1f]",
           r->mode, r->device ? "true" : "false", e->sr, e->sr, e->dev_sr, e->block, r->stream_s,
           r->audio_s, atomic_load(&e->callbacks), atomic_load(&e->xruns),
           atomic_load(&e->xruns_steady), atomic_load(&e->underruns),
           atomic_load(&e->underruns_steady), WARMUP_S, atomic_load(&e->dropped_in),
           atomic_load(&e->dropped_out), r->cpu_callback, load, r->algo_ms, r->device_ms,
           r->device
               ? 1000.0 * (double)(e->cushion + (size_t)e->hold_cbs * (size_t)e->block) / e->dev_sr
               : 0.0,
           1e-9 * (double)(atomic_load(&e->cb_last_ns) - atomic_load(&e->cb_first_ns)),
           resampling_ms(e), 1000.0 * (double)e->rs_in_min / e->sr,
           1000.0 * (double)e->rs_in_max / e->sr, 1000.0 * (double)e->rs_out_min / e->dev_sr,
           1000.0 * (double)e->rs_out_max / e->dev_sr, 1000.0 * (double)e->rs_in_run_max / e->sr,
           1000.0 * (double)e->rs_out_run_max / e->dev_sr);
    if (e->codec)
        printf(",\"segment_ms\":%.0f,\"lookahead_ms\":%.1f,\"segments\":%ld,\"groups\":%ld,"
               "\"frames\":%ld,"
               "\"packets_sent\":%ld,\"packets_lost\":%ld,\"groups_per_s\":%.4f,"
               "\"payload_bps\":%.1f,\"packet_bps\":%.1f,\"processing_ms_mean\":%.2f,"
               "\"processing_ms_max\":%.2f,\"samples_padded\":%ld,\"samples_trimmed\":%ld",
               1000.0 * e->seg / e->sr, 1000.0 * (double)(e->win - (size_t)e->seg) / e->sr,
               e->segments, e->groups, e->frames, e->packets, e->packets_lost,
               dur > 0 ? (double)e->groups / dur : 0.0, dur > 0 ? e->payload_bits / dur : 0.0,
               dur > 0 ? 8.0 * e->packet_bytes / dur : 0.0,
               e->segments ? 1000.0 * e->busy_s / (double)e->segments : 0.0, e->seg_ms_max,
               e->padded, e->trimmed);
    printf("}\n");
    fflush(stdout);
}

/* ---- file mode ---------------------------------------------------------------------------- */

static int run_file(engine *e, const char *in_path, const char *out_path, double algo_ms, int quiet,
                    int json)
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
                if (got < n)
                    y[got] = tmp[i];
                else
                    extra++;
        }
        if (fin) break;
        if (fed == n || live_ring_space(&e->in) < (size_t)e->block) sleep_ms(1);
    }
    pthread_join(th, NULL);
    int rc = EXIT_OK;
    if (e->error < 0) {
        fprintf(stderr, "sotto-live: %s: %s\n", in_path, e->errmsg);
        rc = e->error == SOTTO_ERR_BAD_AUDIO ? EXIT_INPUT : EXIT_RUNTIME;
    } else if (sotto_audio_write_file(out_path, y, n, e->sr, SOTTO_AUDIO_WAV_FLOAT, &st) !=
               SOTTO_OK) {
        fprintf(stderr, "sotto-live: %s: %s\n", out_path, st.message);
        rc = EXIT_OUTPUT;
    } else {
        const double dur = (double)n / e->sr;
        if (!quiet)
            fprintf(stderr,
                    "sotto-live: %s -> %s: %.2f s, %lld samples (%lld from the %s, %lld "
                    "padded, %lld trimmed), RTF %.4f\n",
                    in_path, out_path, dur, (long long)n, (long long)(got - extra),
                    e->codec ? "codec" : "vocoder", (long long)(got < n ? n - got : 0),
                    (long long)extra, dur > 0 ? e->busy_s / dur : 0.0);
        report r = {e->codec ? "codec" : "vocoder", 0, dur, algo_ms, 0, 0, 0};
        print_report(e, &r, quiet, json);
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

/* Real-time callback: ring traffic, preallocated tap copies and atomic counters only. */
static int pa_callback(const void *input, void *output, unsigned long frames,
                       const PaStreamCallbackTimeInfo *ti, PaStreamCallbackFlags flags, void *user)
{
    (void)ti;
    engine *e = user;
    const long idx = atomic_fetch_add_explicit(&e->callbacks, 1, memory_order_relaxed);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    const long long ns = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    if (idx == 0) atomic_store_explicit(&e->cb_first_ns, ns, memory_order_relaxed);
    atomic_store_explicit(&e->cb_last_ns, ns, memory_order_relaxed);
    const int steady = idx >= e->warmup_callbacks;
    if (flags & (paInputUnderflow | paInputOverflow | paOutputUnderflow | paOutputOverflow)) {
        atomic_fetch_add_explicit(&e->xruns, 1, memory_order_relaxed);
        if (steady) atomic_fetch_add_explicit(&e->xruns_steady, 1, memory_order_relaxed);
    }
    if (input) {
        size_t k = live_ring_push(&e->in, (const float *)input, frames);
        if (k < frames)
            atomic_fetch_add_explicit(&e->dropped_in, (long)(frames - k), memory_order_relaxed);
    }
    float *out = output;
    /* Output starts once the cushion is there (absorbs the processing thread's jitter): a
     * block more than the callback takes (vocoder, whose output trickles in hop by hop), or
     * hold_cbs callbacks after the first output arrived (codec, whose output comes a whole
     * segment at once). */
    if (!atomic_load_explicit(&e->started_output, memory_order_relaxed)) {
        const size_t avail = live_ring_available(&e->out);
        if (avail > 0 && e->held < e->hold_cbs)
            e->held++;
        else if (avail >= e->cushion + frames && e->held >= e->hold_cbs)
            atomic_store_explicit(&e->started_output, 1, memory_order_relaxed);
    }
    size_t k = atomic_load_explicit(&e->started_output, memory_order_relaxed)
                   ? live_ring_pop(&e->out, out, frames)
                   : 0;
    if (k < frames) {
        memset(out + k, 0, sizeof(float) * (frames - k));
        if (atomic_load_explicit(&e->started_output, memory_order_relaxed)) {
            atomic_fetch_add_explicit(&e->underruns, 1, memory_order_relaxed);
            if (steady) atomic_fetch_add_explicit(&e->underruns_steady, 1, memory_order_relaxed);
        }
    }
    if (e->tap_cap) {
        size_t t = atomic_load_explicit(&e->tap_n, memory_order_relaxed);
        size_t m = t + frames <= e->tap_cap ? frames : e->tap_cap - t;
        if (m) {
            if (input) memcpy(e->tap_in + t, input, sizeof(float) * m);
            memcpy(e->tap_out + t, out, sizeof(float) * m);
            atomic_store_explicit(&e->tap_n, t + m, memory_order_release);
        }
    }
    return paContinue;
}

/* Host API index whose name contains spec (case-insensitive); -1: any; -2: none matches. */
static PaHostApiIndex find_host(const char *spec)
{
    if (!spec) return -1;
    const int n = Pa_GetHostApiCount();
    for (int i = 0; i < n; i++) {
        const PaHostApiInfo *h = Pa_GetHostApiInfo(i);
        if (!h || !h->name) continue;
        for (const char *p = h->name; *p; p++)
            if (!strncasecmp(p, spec, strlen(spec))) return i;
    }
    return -2;
}

static int list_devices(const char *host)
{
    PaError err = Pa_Initialize();
    if (err != paNoError) {
        fprintf(stderr, "sotto-live: PortAudio: %s\n", Pa_GetErrorText(err));
        printf("audio devices: none\n");
        return EXIT_OK;
    }
    const PaHostApiIndex hi = find_host(host);
    int n = Pa_GetDeviceCount(), shown = 0;
    for (int i = 0; i < n; i++) {
        const PaDeviceInfo *d = Pa_GetDeviceInfo(i);
        if (d && (hi == -1 || d->hostApi == hi)) shown++;
    }
    printf("audio devices:%s\n", shown <= 0 ? " none" : "");
    for (int i = 0; i < n; i++) {
        const PaDeviceInfo *d = Pa_GetDeviceInfo(i);
        if (!d || (hi != -1 && d->hostApi != hi)) continue;
        const PaHostApiInfo *h = Pa_GetHostApiInfo(d->hostApi);
        printf("  %2d  %-40s %-8s in %2d  out %2d  %6.0f Hz%s%s\n", i, d->name, h ? h->name : "?",
               d->maxInputChannels, d->maxOutputChannels, d->defaultSampleRate,
               i == Pa_GetDefaultInputDevice() ? "  [default in]" : "",
               i == Pa_GetDefaultOutputDevice() ? "  [default out]" : "");
    }
    Pa_Terminate();
    return EXIT_OK;
}

/* Device by index or name substring, with at least one channel in the wanted direction, of
 * host API hi (-1: any). Without spec: the host API's default (the system's with hi -1). */
static PaDeviceIndex find_device(const char *spec, int want_input, PaHostApiIndex hi)
{
    if (!spec) {
        if (hi >= 0) {
            const PaHostApiInfo *h = Pa_GetHostApiInfo(hi);
            PaDeviceIndex d =
                h ? (want_input ? h->defaultInputDevice : h->defaultOutputDevice) : paNoDevice;
            if (d != paNoDevice) return d;
            spec = ""; /* no default: the API's first device in that direction */
        } else {
            return want_input ? Pa_GetDefaultInputDevice() : Pa_GetDefaultOutputDevice();
        }
    }
    char *end = NULL;
    long idx = strtol(spec, &end, 10);
    const int n = Pa_GetDeviceCount();
    for (int i = 0; i < n; i++) {
        const PaDeviceInfo *d = Pa_GetDeviceInfo(i);
        if (!d || (want_input ? d->maxInputChannels : d->maxOutputChannels) < 1) continue;
        if (hi >= 0 && d->hostApi != hi) continue;
        if ((*spec && !*end && idx == i) || strstr(d->name, spec)) return i;
    }
    return paNoDevice;
}

static void write_tap(engine *e, const char *prefix, int quiet)
{
    const size_t n = atomic_load(&e->tap_n);
    char path[1024];
    sotto_status st;
    for (int c = 0; c < 2; c++) {
        snprintf(path, sizeof path, "%s.%s.wav", prefix, c ? "out" : "in");
        if (sotto_audio_write_file(path, c ? e->tap_out : e->tap_in, (int64_t)n, e->dev_sr,
                                   SOTTO_AUDIO_WAV_FLOAT, &st) != SOTTO_OK)
            fprintf(stderr, "sotto-live: %s: %s\n", path, st.message);
        else if (!quiet)
            fprintf(stderr, "sotto-live: tap: %zu samples to %s\n", n, path);
    }
}

/* The devices and the rate the stream opens at. */
typedef struct devsel {
    PaStreamParameters ip, op;
    int rate; /* Hz */
} devsel;

/* Starts PortAudio, finds the devices and picks the stream's rate: want_rate (--device-rate)
 * if > 0, else the devices' native rate (defaultSampleRate): the input's and output's if they
 * agree, else the output's when the input supports it. Returns EXIT_OK with PortAudio
 * running, or EXIT_DEVICE (message printed, PortAudio terminated). */
static int devices_select(devsel *d, const char *host, const char *in_dev, const char *out_dev,
                          int want_rate)
{
    PaError err = Pa_Initialize();
    if (err != paNoError) {
        fprintf(stderr, "sotto-live: PortAudio: %s\n", Pa_GetErrorText(err));
        return EXIT_DEVICE;
    }
    const PaHostApiIndex hi = find_host(host);
    if (hi == -2) {
        fprintf(stderr, "sotto-live: no host API matching %s (see --list-devices)\n", host);
        Pa_Terminate();
        return EXIT_DEVICE;
    }
    PaDeviceIndex di = find_device(in_dev, 1, hi), dout = find_device(out_dev, 0, hi);
    if (di == paNoDevice || dout == paNoDevice) {
        fprintf(stderr, "sotto-live: no %s device%s%s (see --list-devices)\n",
                di == paNoDevice ? "input" : "output",
                (di == paNoDevice ? in_dev : out_dev) ? " matching " : "",
                (di == paNoDevice ? in_dev : out_dev) ? (di == paNoDevice ? in_dev : out_dev) : "");
        Pa_Terminate();
        return EXIT_DEVICE;
    }
    const PaDeviceInfo *din = Pa_GetDeviceInfo(di), *dvo = Pa_GetDeviceInfo(dout);
    PaStreamParameters ip = {di, 1, paFloat32, din->defaultLowInputLatency, NULL};
    PaStreamParameters op = {dout, 1, paFloat32, dvo->defaultLowOutputLatency, NULL};
    double rate;
    if (want_rate > 0) {
        rate = want_rate;
        if ((err = Pa_IsFormatSupported(&ip, &op, rate)) != paFormatIsSupported) {
            fprintf(stderr,
                    "sotto-live: --device-rate %d Hz: not supported by the devices (%s, native "
                    "%.0f Hz; %s, native %.0f Hz): %s\n",
                    want_rate, din->name, din->defaultSampleRate, dvo->name, dvo->defaultSampleRate,
                    Pa_GetErrorText(err));
            Pa_Terminate();
            return EXIT_DEVICE;
        }
    } else if (din->defaultSampleRate == dvo->defaultSampleRate) {
        rate = dvo->defaultSampleRate;
    } else {
        rate = dvo->defaultSampleRate;
        if ((err = Pa_IsFormatSupported(&ip, NULL, rate)) != paFormatIsSupported) {
            fprintf(stderr,
                    "sotto-live: the input device %s (native %.0f Hz) does not support the "
                    "output device %s's native rate %.0f Hz (%s); choose a rate both support "
                    "with --device-rate\n",
                    din->name, din->defaultSampleRate, dvo->name, rate, Pa_GetErrorText(err));
            Pa_Terminate();
            return EXIT_DEVICE;
        }
    }
    if (!(rate >= 8000 && rate <= 192000) || rate != floor(rate)) {
        fprintf(stderr,
                "sotto-live: the devices' native rate %.1f Hz is not a whole number of Hz in "
                "8000..192000; choose one with --device-rate\n",
                rate);
        Pa_Terminate();
        return EXIT_DEVICE;
    }
    d->ip = ip;
    d->op = op;
    d->rate = (int)rate;
    return EXIT_OK;
}

/* Runs the stream on the selected devices (PortAudio running, see devices_select; it is
 * terminated here, except after a stall: see STALL_S). */
static int run_devices(engine *e, const devsel *d, double seconds, double algo_ms, const char *tap,
                       int quiet, int json)
{
    int rc = EXIT_OK;
    PaStream *stream = NULL;
    const PaDeviceIndex di = d->ip.device, dout = d->op.device;
    PaError err = Pa_OpenStream(&stream, &d->ip, &d->op, e->dev_sr, (unsigned long)e->block,
                                paClipOff, pa_callback, e);
    if (err != paNoError) {
        fprintf(stderr, "sotto-live: cannot open the audio stream at %d Hz: %s\n", e->dev_sr,
                Pa_GetErrorText(err));
        Pa_Terminate();
        return EXIT_DEVICE;
    }
    if (resamplers_measure(e)) {
        fprintf(stderr, "sotto-live: the resamplers failed at start-up\n");
        Pa_CloseStream(stream);
        Pa_Terminate();
        return EXIT_RUNTIME;
    }
    if (e->codec) codec_warmup(e);
    const double cushion_ms =
        1000.0 * (double)(e->cushion + (size_t)e->hold_cbs * (size_t)e->block) / e->dev_sr;
    const double rs_ms = resampling_ms(e);
    pthread_t th;
    if (pthread_create(&th, NULL, process_thread, e)) {
        fprintf(stderr, "sotto-live: cannot start the processing thread\n");
        Pa_CloseStream(stream);
        Pa_Terminate();
        return EXIT_RUNTIME;
    }
    signal(SIGINT, on_sigint);
    signal(SIGTERM, on_sigint);
    double t_start = now_s(), t_stop = t_start, dev_ms = 0, cpu = 0;
    int stalled = 0;
    if ((err = Pa_StartStream(stream)) != paNoError) {
        fprintf(stderr, "sotto-live: cannot start the audio stream: %s\n", Pa_GetErrorText(err));
        rc = EXIT_DEVICE;
    } else {
        t_start = now_s();
        const PaStreamInfo *si = Pa_GetStreamInfo(stream);
        dev_ms = si ? 1000.0 * (si->inputLatency + si->outputLatency) : 0;
        const double block_ms = 1000.0 * e->block / e->dev_sr;
        if (!quiet)
            fprintf(stderr,
                    "sotto-live: %s -> %s (%s) at %d Hz (model %d Hz%s), %s path; latency %.1f "
                    "ms = %s %.1f + block and output cushion %.1f + resampling %.1f + devices "
                    "%.1f (in %.1f, out %.1f)%s; Ctrl-C stops\n",
                    Pa_GetDeviceInfo(di)->name, Pa_GetDeviceInfo(dout)->name,
                    Pa_GetHostApiInfo(Pa_GetDeviceInfo(di)->hostApi)->name, e->dev_sr, e->sr,
                    e->rs_in ? ", resampled with soxr" : "", e->codec ? "codec" : "vocoder",
                    algo_ms + block_ms + cushion_ms + rs_ms + dev_ms,
                    e->codec ? "segment + look-ahead" : "look-ahead", algo_ms,
                    block_ms + cushion_ms, rs_ms, dev_ms, si ? 1000.0 * si->inputLatency : 0,
                    si ? 1000.0 * si->outputLatency : 0,
                    e->codec ? " (the cushion covers the processing)" : "");
        const double t_end = seconds > 0 ? t_start + seconds : INFINITY;
        const int status_line = !quiet && isatty(2);
        double next_status = t_start + 1.0;
        /* Watchdog: a device (or audio server) that stops calling back would leave the
         * program silent forever, and PortAudio's stop would wait for a callback that never
         * comes; after STALL_S without one, say so and leave the stream as it is. */
        long seen_cb = -1;
        double seen_t = t_start;
        while (!interrupted && now_s() < t_end && !atomic_load(&e->finished)) {
            sleep_ms(seconds > 0 && t_end - now_s() < 0.02 ? 1 : 20);
            const long cbs = atomic_load(&e->callbacks);
            if (cbs != seen_cb) {
                seen_cb = cbs;
                seen_t = now_s();
            } else if (now_s() - seen_t > STALL_S + block_ms / 1000.0) {
                stalled = 1;
                break;
            }
            if (status_line && now_s() >= next_status) {
                next_status += 1.0;
                /* processing-thread counters read racily: a display only */
                if (e->codec)
                    fprintf(stderr,
                            "\r  %.0f s: %ld segments, %.1f ms max, %.2f groups/s, %.0f bit/s, "
                            "packets %ld/%ld lost, xruns %ld, CPU %.0f %%   ",
                            now_s() - t_start, e->segments, e->seg_ms_max,
                            e->audio_s > 0 ? (double)e->groups / e->audio_s : 0.0,
                            e->audio_s > 0 ? e->payload_bits / e->audio_s : 0.0, e->packets_lost,
                            e->packets, atomic_load(&e->xruns),
                            100.0 * Pa_GetStreamCpuLoad(stream));
                else
                    fprintf(stderr,
                            "\r  %.0f s: %ld callbacks, xruns %ld, underruns %ld, CPU "
                            "%.0f %%   ",
                            now_s() - t_start, atomic_load(&e->callbacks), atomic_load(&e->xruns),
                            atomic_load(&e->underruns), 100.0 * Pa_GetStreamCpuLoad(stream));
            }
        }
        if (status_line) fprintf(stderr, "\n");
        cpu = Pa_GetStreamCpuLoad(stream);
        t_stop = now_s();
        if (stalled) {
            fprintf(stderr,
                    "sotto-live: the audio device made no callback for %.1f s (%ld so far): the "
                    "device or audio server stopped; giving up\n",
                    t_stop - seen_t, seen_cb);
            rc = EXIT_DEVICE;
        } else {
            Pa_StopStream(stream);
            t_stop = now_s();
        }
    }
    atomic_store(&e->stop, 1);
    pthread_join(th, NULL);
    /* A stalled stream is not stopped or closed (PortAudio would wait for it); the process
     * exits with its error and the OS releases the device. */
    if (!stalled) {
        Pa_CloseStream(stream);
        Pa_Terminate();
    }
    if (e->error < 0) {
        fprintf(stderr, "sotto-live: %s\n", e->errmsg);
        rc = EXIT_RUNTIME;
    }
    if (tap && e->tap_cap) write_tap(e, tap, quiet);
    const double stream_s = t_stop - t_start;
    const double audio_s = e->codec ? e->audio_s : stream_s;
    report r = {e->codec ? "codec" : "vocoder", stream_s, audio_s, algo_ms, dev_ms, cpu, 1};
    print_report(e, &r, quiet, json);
    return rc;
}

/* ---- main --------------------------------------------------------------------------------- */

/* A number option: the whole value must parse and be finite; else one line and -1. */
static int num_arg(const char *opt, const char *s, double *v)
{
    char *end = NULL;
    errno = 0;
    double d = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(d)) {
        fprintf(stderr, "sotto-live: %s: not a number: %s\n", opt, s);
        return -1;
    }
    *v = d;
    return 0;
}

static int usage_error(const char *msg)
{
    fprintf(stderr, "sotto-live: %s (see --help)\n", msg);
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    const char *model_path = DEFAULT_MODEL, *in_dev = NULL, *out_dev = NULL, *host = NULL;
    const char *file_in = NULL, *file_out = NULL, *tap = NULL;
    double block_ms = 20, seconds = 0, threads_d = 1, device_rate = 0;
    double segment_ms = 2000, threshold = NAN, rate = NAN, bitrate = NAN, quantizers = -1, loss = 0,
           seed = 1;
    int quiet = 0, list = 0, json = 0, codec_opts = 0, f16_math = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        double *num = NULL;
        int is_codec = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return EXIT_OK;
        } else if (!strcmp(a, "--list-devices")) {
            list = 1;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--f16-arithmetic")) {
            f16_math = 1;
        } else if (!strcmp(a, "--host") && has_val) {
            host = argv[++i];
        } else if (!strcmp(a, "--input") && has_val) {
            in_dev = argv[++i];
        } else if (!strcmp(a, "--output") && has_val) {
            out_dev = argv[++i];
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has_val) {
            model_path = argv[++i];
        } else if (!strcmp(a, "--block") && has_val) {
            num = &block_ms;
        } else if (!strcmp(a, "--seconds") && has_val) {
            num = &seconds;
        } else if (!strcmp(a, "--device-rate") && has_val) {
            num = &device_rate;
        } else if (!strcmp(a, "--file-in") && has_val) {
            file_in = argv[++i];
        } else if (!strcmp(a, "--file-out") && has_val) {
            file_out = argv[++i];
        } else if (!strcmp(a, "--tap") && has_val) {
            tap = argv[++i];
        } else if ((!strcmp(a, "-t") || !strcmp(a, "--threads")) && has_val) {
            num = &threads_d;
        } else if (!strcmp(a, "--segment") && has_val) {
            num = &segment_ms, is_codec = 1;
        } else if (!strcmp(a, "--threshold") && has_val) {
            num = &threshold, is_codec = 1;
        } else if (!strcmp(a, "--rate") && has_val) {
            num = &rate, is_codec = 1;
        } else if (!strcmp(a, "--bitrate") && has_val) {
            num = &bitrate, is_codec = 1;
        } else if (!strcmp(a, "--quantizers") && has_val) {
            num = &quantizers, is_codec = 1;
        } else if (!strcmp(a, "--loss") && has_val) {
            num = &loss, is_codec = 1;
        } else if (!strcmp(a, "--seed") && has_val) {
            num = &seed, is_codec = 1;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = 1;
        } else {
            fprintf(stderr, "sotto-live: unknown option or missing value: %s (see --help)\n", a);
            return EXIT_USAGE;
        }
        if (num && num_arg(a, argv[++i], num)) return EXIT_USAGE;
        codec_opts |= is_codec;
    }
    if (list) return list_devices(host);
    if (!(block_ms >= 1 && block_ms <= 1000)) return usage_error("--block must be 1..1000 ms");
    if (threads_d < 1 || threads_d > 64 || threads_d != floor(threads_d))
        return usage_error("--threads must be an integer 1..64");
    if (seconds < 0) return usage_error("--seconds must be >= 0");
    if (!!file_in != !!file_out) return usage_error("--file-in and --file-out go together");
    if (device_rate != 0 &&
        !(device_rate >= 8000 && device_rate <= 192000 && device_rate == floor(device_rate)))
        return usage_error("--device-rate must be an integer 8000..192000 (Hz)");
    if (device_rate != 0 && file_in)
        return usage_error("--device-rate needs device mode (file mode runs at the model's rate)");
    if (tap && (file_in || !(seconds > 0) || seconds > 600))
        return usage_error("--tap needs device mode and --seconds 0 < S <= 600");
    if (!(segment_ms >= 80 && segment_ms <= 30000) || fmod(segment_ms, 80.0) != 0)
        return usage_error("--segment must be a multiple of 80 ms (one codec frame), 80..30000");
    if (!(loss >= 0 && loss <= 100)) return usage_error("--loss must be 0..100 (%)");
    if (!isnan(threshold) && !(threshold >= 0 && threshold <= 1))
        return usage_error("--threshold must be 0..1");
    if (!isnan(rate) && !(rate > 0 && rate <= 12.5))
        return usage_error("--rate must be > 0 and <= 12.5 groups/s (the frame rate)");
    if (!isnan(bitrate) && !(bitrate > 0)) return usage_error("--bitrate must be > 0 bit/s");
    if (!isnan(threshold) + !isnan(rate) + !isnan(bitrate) > 1)
        return usage_error("--threshold, --rate and --bitrate exclude each other");
    if (quantizers != -1 &&
        !(quantizers >= 0 && quantizers <= 64 && quantizers == floor(quantizers)))
        return usage_error("--quantizers must be an integer >= 0");
    if (seed != floor(seed) || seed < 0 || seed > 9007199254740992.0)
        return usage_error("--seed must be a non-negative integer");

    sotto_status st;
    sotto_model *model = NULL;
    sotto_vocoder *voc = NULL;
    sotto_encoder *enc = NULL;
    sotto_decoder *dec = NULL;
    sotto_model_params mp = sotto_model_default_params();
    mp.n_threads = (int)threads_d;
    mp.f16_arithmetic = f16_math ? 2 : 0;
    if (sotto_model_load_file(model_path, &mp, &model, &st) != SOTTO_OK) {
        fprintf(stderr, "sotto-live: %s: %s\n", model_path, st.message);
        return EXIT_MODEL;
    }
    if (f16_math && !quiet)
        fprintf(stderr, "sotto-live: %s\n",
                sotto_model_f16_arithmetic(model)
                    ? "binary16 arithmetic"
                    : "f32 arithmetic: no AVX512-FP16 or no f16 weights");
    const int is_codec = !strcmp(sotto_model_architecture(model), "flexicodec");
    int sr, hop = 0, seg = 0, rc = EXIT_OK;
    size_t win = 0;
    double algo_ms, lookahead_ms = 0;
    if (is_codec) {
        sotto_encoder_params ep = sotto_encoder_default_params();
        if (!isnan(threshold)) ep.threshold = (float)threshold;
        ep.n_stages = (int)quantizers;
        ep.target_groups_per_s = isnan(rate) ? 0 : rate;
        ep.target_bits_per_s = isnan(bitrate) ? 0 : bitrate;
        ep.max_seconds = segment_ms / 1000.0 + 0.5; /* the segment and its look-ahead */
        rc = sotto_encoder_create(model, &ep, &enc, &st);
        if (rc != SOTTO_OK) {
            fprintf(stderr, "sotto-live: %s: %s\n", model_path, st.message);
            sotto_model_free(model);
            return rc == SOTTO_ERR_INVALID_ARG ? EXIT_USAGE : EXIT_MODEL;
        }
        sotto_decoder_params dp = sotto_decoder_default_params();
        dp.max_frames = sotto_encoder_frames_for(enc, sotto_encoder_max_samples(enc)) + 1;
        rc = sotto_decoder_create(model, &dp, &dec, &st);
        if (rc != SOTTO_OK) {
            fprintf(stderr, "sotto-live: %s: %s\n", model_path, st.message);
            sotto_encoder_free(enc);
            sotto_model_free(model);
            return EXIT_MODEL;
        }
        sr = sotto_decoder_sample_rate_hz(dec);
        hop = sotto_decoder_hop_samples(dec);
        seg = (int)lround(segment_ms * sr / 1000.0);
        if (hop <= 0 || seg % hop) {
            fprintf(stderr,
                    "sotto-live: --segment must be a multiple of the model's frame "
                    "(%d samples at %d Hz)\n",
                    hop, sr);
            rc = EXIT_USAGE;
            goto out;
        }
        /* The look-ahead: input past the segment the encoder needs for frames that decode to
         * the whole segment. */
        engine probe;
        memset(&probe, 0, sizeof probe);
        probe.enc = enc;
        probe.hop = hop;
        probe.trim =
            (int)(codec_max_frames(dec) * hop - (int64_t)sotto_decoder_max_output_samples(dec));
        probe.win = (size_t)sotto_encoder_max_samples(enc);
        win = codec_need(&probe, (size_t)seg);
        const int64_t T = ((int64_t)seg + probe.trim + hop - 1) / hop;
        if (sotto_encoder_frames_for(enc, (int64_t)win) < T) {
            fprintf(stderr, "sotto-live: %s: the encoder gives too few frames for a segment\n",
                    model_path);
            rc = EXIT_MODEL;
            goto out;
        }
        lookahead_ms = 1000.0 * (double)(win - (size_t)seg) / sr;
        algo_ms = segment_ms + lookahead_ms;
    } else {
        if (codec_opts) {
            fprintf(stderr,
                    "sotto-live: --segment, --threshold, --rate, --bitrate, "
                    "--quantizers, --loss and --seed need a FlexiCodec model (%s is "
                    "%s)\n",
                    model_path, sotto_model_architecture(model));
            sotto_model_free(model);
            return EXIT_USAGE;
        }
        if (sotto_vocoder_create(model, NULL, &voc, &st) != SOTTO_OK ||
            sotto_vocoder_num_codebooks(voc) > 0) {
            fprintf(stderr, "sotto-live: %s: %s\n", model_path,
                    voc ? "the model takes codes, not audio" : st.message);
            sotto_vocoder_free(voc);
            sotto_model_free(model);
            return EXIT_MODEL;
        }
        sr = sotto_vocoder_sample_rate_hz(voc);
        hop = sotto_vocoder_hop_samples(voc);
        algo_ms = 1000.0 * sotto_vocoder_lookahead_samples(voc) / sr;
    }
    {
        /* Device mode: the devices' rate (native or --device-rate); the block is --block ms
         * at that rate. File mode: the model's rate. */
        devsel ds;
        memset(&ds, 0, sizeof ds);
        ds.rate = sr;
        if (!file_in) {
            rc = devices_select(&ds, host, in_dev, out_dev, (int)device_rate);
            if (rc != EXIT_OK) goto out;
        }
        const int block = (int)lround(block_ms * ds.rate / 1000.0);
        engine e;
        if (engine_init(&e, voc, model, enc, dec, sr, ds.rate, block < 1 ? 1 : block, seg, win,
                        file_in != NULL)) {
            fprintf(stderr, "sotto-live: out of memory\n");
            if (!file_in) Pa_Terminate();
            rc = EXIT_RUNTIME;
        } else {
            e.loss_pct = loss;
            e.rng = (uint64_t)seed;
            if (tap) {
                e.tap_cap = (size_t)ceil((seconds + 1.0) * ds.rate);
                e.tap_in = calloc(e.tap_cap, sizeof(float));
                e.tap_out = calloc(e.tap_cap, sizeof(float));
                if (!e.tap_in || !e.tap_out) e.tap_cap = 0;
            }
            if (file_in) {
                if (!quiet) {
                    if (is_codec)
                        fprintf(stderr,
                                "sotto-live: codec model %d Hz, frame %d samples, %d RVQ "
                                "stages; latency in live use: algorithmic %.0f ms = segment "
                                "%.0f + look-ahead %.0f, + processing + block %.1f + devices "
                                "(file mode: none)\n",
                                sr, hop, sotto_encoder_stages(enc), algo_ms, segment_ms,
                                lookahead_ms, 1000.0 * e.block / sr);
                    else
                        fprintf(stderr,
                                "sotto-live: model %d Hz, hop %d; latency in live use %.1f ms "
                                "= look-ahead %.1f + block %.1f + devices (file mode: none)\n",
                                sr, hop, algo_ms + 1000.0 * e.block / sr, algo_ms,
                                1000.0 * e.block / sr);
                }
                rc = run_file(&e, file_in, file_out, algo_ms, quiet, json);
            } else {
                rc = run_devices(&e, &ds, seconds, algo_ms, tap, quiet, json);
            }
        }
        engine_free(&e);
    }
out:
    sotto_encoder_free(enc);
    sotto_decoder_free(dec);
    sotto_vocoder_free(voc);
    sotto_model_free(model);
    return rc;
}
