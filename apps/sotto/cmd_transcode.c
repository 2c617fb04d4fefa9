/*
 * `sotto transcode IN... -o OUTDIR -m MODEL`: batch encode (and with --decode, decode back) of
 * audio files and folders with a codec model that has the encoder. Folders are walked
 * recursively (files with an audio extension, in name order; symbolic links to folders are
 * not followed); OUTDIR mirrors the input tree: DIR/a/b.flac → OUTDIR/a/b.sotto (and
 * OUTDIR/a/b.wav with --decode); a file named directly → OUTDIR/<its name>.sotto. --jobs N
 * files at once (N worker threads sharing one loaded model, each file with its own encoder
 * and decoder): memory is bounded by N times what the longest file accepted needs
 * (--max-seconds; a longer file is refused before it is read). A failing file is reported
 * (stderr and the summary) and the batch goes on. Progress on stderr when it is a terminal
 * (or --progress), a summary table (or --json) on stdout, in input order whatever the jobs.
 *
 * With --decode on a CUDA model the decodes do not run in the jobs: once every file is
 * encoded, the .sotto files are decoded in input order, a few minutes of audio per
 * sotto_codec_decode_files call, so the device runs them as batched forwards; each WAV is
 * written and reported as its call returns. On the CPU each job decodes its own file right
 * after encoding it.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "dsp/resample.h"
#include "sotto/sotto.h"
#include "sotto/sotto_audio.h"
#include "sotto/sotto_codec.h"

#define CMD "transcode"
#define DEFAULT_MAX_SECONDS 600.0 /* longest file accepted by default (10 min) */
#define MAX_DEPTH 32              /* folder nesting followed */
#define PATH_CAP 4096
#define MAX_JOBS 64
/* Audio per sotto_codec_decode_files call on CUDA, in 12.5 Hz frames (300 s): the decoded
 * samples of a call are held together (19 MB at 16 kHz), and the device's batch context is
 * sized for it (about 0.75 MB per frame for the released model). */
#define DECODE_BATCH_FRAMES 3750

static const char *const audio_ext[] = {"wav",  "wave", "flac", "ogg", "oga", "opus", "mp3", "aif",
                                        "aiff", "aifc", "au",   "snd", "caf", "w64",  "rf64"};

static void usage(FILE *f)
{
    fprintf(f, "usage: sotto transcode INPUT... -o OUTDIR -m MODEL [options]\n"
               "\n"
               "Encodes audio files, and every audio file under folders (recursively: .wav .flac\n"
               ".ogg .oga .opus .mp3 .aif(f/c) .au .snd .caf .w64 .rf64, as libsndfile reads\n"
               "them) to OUTDIR, mirroring the input tree: FOLDER/a/b.flac ->\n"
               "OUTDIR/a/b.sotto, a file given directly -> OUTDIR/<name>.sotto. A file that\n"
               "fails (unreadable, too long, ...) is reported and the others go on.\n"
               "\n"
               "options:\n"
               "  -o, --output DIR    output folder (created if missing; required)\n"
               "  -m, --model FILE    codec model with the encoder (required)\n"
               "  --threshold T       fixed merge threshold 0..1 (default: the model's)\n"
               "  --rate HZ           rate control per file: groups/s in (0, 12.5]\n"
               "  --bitrate BPS       rate control per file: code payload bit/s\n"
               "                      (one of --threshold, --rate, --bitrate)\n"
               "  --quantizers N      RVQ stages per group (default: all)\n"
               "  --segment S         files longer than S seconds are encoded in S-second\n"
               "                      segments (memory bounded by S); 0: each file whole\n"
               "                      (default 30; 1..3600)\n"
               "  --decode            also decode each .sotto to a WAV next to it (same name,\n"
               "                      .wav) at the input's own rate: the codec's 16 kHz output\n"
               "                      resampled back; length sotto_audio_output_length(N16,\n"
               "                      16000, RATE) where N16 is the input's length at 16 kHz;\n"
               "                      on CUDA the files are decoded after every encode, many\n"
               "                      at once (batched on the device)\n"
               "  --decode-rate HZ    write the decoded WAVs at HZ instead (1000..768000;\n"
               "                      implies --decode)\n"
               "  --max-seconds S     longest file accepted, 1..3600 (default 600); longer files\n"
               "                      are refused before they are read\n"
               "  --jobs N            files processed at once, 1..64 (default 1); each job holds\n"
               "                      its own encoder, so memory grows N-fold; -t threads are\n"
               "                      per job (N x T threads in all)\n"
               "  -t, --threads N     CPU threads (default 1)\n"
               "  --f16-arithmetic    binary16 arithmetic in the encoder and decoder where the\n"
               "                      CPU has AVX512-FP16 (f16 models; faster, merge boundaries\n"
               "                      and codes may differ from f32 encoding)\n"
               "  --gpu N             run on CUDA device N (exit 8 without it; docs/gpu.md)\n"
               "  --cpu               run on the CPU even where a GPU exists (the default is\n"
               "                      CUDA device 0 when it exists and the model can run there)\n"
               "  --progress          progress line on stderr even when it is not a terminal\n"
               "  -q, --quiet         no progress and no summary table (errors still printed)\n"
               "  --json              the summary as one JSON object on stdout\n"
               "  -h, --help          this text\n"
               "\n"
               "Exit codes: 0 every file done, 9 some files failed (the others were written;\n"
               "the summary says which), 2 usage, 3 no audio file found, 4 model, 5 the output\n"
               "folder cannot be made.\n");
}

/* snprintf that truncates silently (messages only) */
static void msgf(char *dst, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void msgf(char *dst, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
}

/* One file of the batch and what became of it. */
typedef struct item {
    char *in;   /* input path */
    char *stem; /* output path without extension, relative to OUTDIR */
    int ok;
    int encoded; /* encoded, its decode pending (CUDA: decoded after every encode) */
    double seconds, groups_per_s, bitrate_bps, payload_bps, rtf;
    int64_t groups, frames;
    float threshold;
    int clamped;
    int input_rate_hz;
    double t_encode, t_job; /* the encode's time (RTF), the job's time with the probe */
    char error[300];
} item;

typedef struct batch {
    item *v;
    int n, cap;
    int alloc_failed;
} batch;

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

static void add_item(batch *b, const char *in, const char *stem)
{
    if (b->n == b->cap) {
        int cap = b->cap ? 2 * b->cap : 16;
        item *v = realloc(b->v, (size_t)cap * sizeof *v);
        if (!v) {
            b->alloc_failed = 1;
            return;
        }
        b->v = v;
        b->cap = cap;
    }
    item *it = &b->v[b->n];
    memset(it, 0, sizeof *it);
    it->in = dup_str(in);
    it->stem = dup_str(stem);
    if (!it->in || !it->stem) {
        free(it->in);
        free(it->stem);
        b->alloc_failed = 1;
        return;
    }
    b->n++;
}

/* The extension of name (after the last '.' of its last component), or "". */
static const char *ext_of(const char *name)
{
    const char *slash = strrchr(name, '/'), *base = slash ? slash + 1 : name;
    const char *dot = strrchr(base, '.');
    return dot && dot != base ? dot + 1 : "";
}

static int is_audio_name(const char *name)
{
    const char *e = ext_of(name);
    for (size_t i = 0; i < sizeof audio_ext / sizeof audio_ext[0]; i++)
        if (!strcasecmp(e, audio_ext[i])) return 1;
    return 0;
}

/* name without its extension into out */
static void strip_ext(const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s", name);
    const char *e = ext_of(out);
    if (*e) out[e - out - 1] = '\0';
}

static void walk(batch *b, const char *dir, const char *rel, int depth)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort);
    if (n < 0) {
        cli_error(CMD, "%s: cannot read the folder: %s", dir, strerror(errno));
        return;
    }
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        char path[PATH_CAP], sub[PATH_CAP];
        struct stat sl, sf;
        if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2]))) goto next;
        if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path ||
            snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", name) >= (int)sizeof sub) {
            cli_error(CMD, "%s/%s: path too long, skipped", dir, name);
            goto next;
        }
        if (lstat(path, &sl) != 0 || stat(path, &sf) != 0) goto next;
        if (S_ISDIR(sf.st_mode)) {
            if (S_ISLNK(sl.st_mode)) goto next; /* no loops through links */
            if (depth >= MAX_DEPTH)
                cli_error(CMD, "%s: nested deeper than %d folders, skipped", path, MAX_DEPTH);
            else
                walk(b, path, sub, depth + 1);
        } else if (S_ISREG(sf.st_mode) && is_audio_name(name)) {
            char stem[PATH_CAP];
            strip_ext(sub, stem, sizeof stem);
            add_item(b, path, stem);
        }
    next:
        free(names[i]);
    }
    free(names);
}

/* mkdir -p of the folder part of path (everything before the last '/'); 0 or -1. */
static int make_parents(const char *path)
{
    char buf[PATH_CAP];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return -1;
    char *last = strrchr(buf, '/');
    if (!last || last == buf) return 0;
    *last = '\0';
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
    struct stat s;
    return stat(buf, &s) == 0 && S_ISDIR(s.st_mode) ? 0 : -1;
}

/*
 * The file's duration without reading it whole: from the header, or (formats that do not say)
 * by reading through in fixed blocks, stopping once past max_seconds. 0, or an error in msg.
 */
static int probe_seconds(const char *path, double max_seconds, double *seconds, char *msg,
                         size_t cap)
{
    sotto_audio_reader *r = NULL;
    sotto_audio_info ai;
    sotto_status st;
    if (sotto_audio_reader_open(path, NULL, &r, &ai, &st) != SOTTO_OK) {
        snprintf(msg, cap, "%s", st.message);
        return -1;
    }
    int rc = 0;
    if (ai.frames >= 0) {
        *seconds = (double)ai.frames / ai.sample_rate_hz;
    } else {
        float block[2048]; /* per call: jobs probe at the same time */
        int64_t total = 0, got;
        const double limit = max_seconds * ai.out_rate_hz;
        while ((got = sotto_audio_reader_read(r, block, 2048)) > 0 && (double)total <= limit)
            total += got;
        if (got < 0) {
            snprintf(msg, cap, "%s", sotto_audio_reader_last_error(r));
            rc = -1;
        }
        *seconds = (double)total / ai.out_rate_hz;
    }
    sotto_audio_reader_close(r);
    return rc;
}

static void set_error(item *it, const char *msg)
{
    /* most SDK messages name the file already */
    if (strstr(msg, it->in))
        snprintf(it->error, sizeof it->error, "%s", msg);
    else
        msgf(it->error, sizeof it->error, "%s: %s", it->in, msg);
}

typedef struct options {
    const char *outdir;
    sotto_codec_encode_params ep;
    double max_seconds;
    int decode;
    int decode_rate;  /* 0: each input's own rate */
    int batch_decode; /* decode after every encode, in sotto_codec_decode_files calls */
} options;

/* The decoder's bounds for the longest file accepted. */
static sotto_decoder_params decode_params(const options *o)
{
    sotto_decoder_params dp = sotto_decoder_default_params();
    dp.max_frames = (int)ceil(o->max_seconds * 12.5) + 16;
    return dp;
}

/* Writes the decoded pcm[n] (at `rate`; freed here) as OUTDIR/<stem>.wav at the input's own
 * rate or --decode-rate; 0, or -1 with the item's error set. */
static int write_decoded(const options *o, item *it, float *pcm, int64_t n, int rate)
{
    char wav[PATH_CAP], msg[300];
    sotto_status st;
    snprintf(wav, sizeof wav, "%s/%s.wav", o->outdir, it->stem); /* its length was checked */
    /* back to the input's own rate (or --decode-rate): the length rule of
     * sotto_audio_output_length applied to the decoded length */
    const int want = o->decode_rate > 0      ? o->decode_rate
                     : it->input_rate_hz > 0 ? it->input_rate_hz
                                             : rate;
    if (want != rate) {
        const int64_t m = sotto_audio_output_length(n, rate, want);
        float *y = m >= 0 ? malloc(sizeof(float) * (size_t)(m > 0 ? m : 1)) : NULL;
        const int64_t got = y ? sotto_resample(pcm, n, rate, want, y, m, NULL, &st) : -1;
        free(pcm);
        if (got != m) {
            free(y);
            msgf(msg, sizeof msg, "%s: cannot resample %d -> %d Hz%s%s", wav, rate, want,
                 got < 0 && y ? ": " : "", got < 0 && y ? st.message : "");
            set_error(it, msg);
            return -1;
        }
        pcm = y;
        n = m;
    }
    int rc = sotto_audio_write_file(wav, pcm, n, want, SOTTO_AUDIO_WAV_PCM16, &st);
    free(pcm);
    if (rc != SOTTO_OK) {
        msgf(msg, sizeof msg, "%s: %s", wav, st.message);
        set_error(it, msg);
        return -1;
    }
    return 0;
}

/* The item done: its figures from the encode, its RTF from t seconds of work. */
static void item_done(item *it, double t)
{
    it->ok = 1;
    it->rtf = it->seconds > 0 ? t / it->seconds : 0.0;
}

static void run_item(const sotto_model *model, const options *o, item *it)
{
    char out[PATH_CAP], wav[PATH_CAP], msg[300];
    if (snprintf(out, sizeof out, "%s/%s.sotto", o->outdir, it->stem) >= (int)sizeof out ||
        snprintf(wav, sizeof wav, "%s/%s.wav", o->outdir, it->stem) >= (int)sizeof wav) {
        set_error(it, "output path too long");
        return;
    }
    double secs = 0;
    if (probe_seconds(it->in, o->max_seconds, &secs, msg, sizeof msg)) {
        set_error(it, msg);
        return;
    }
    if (secs > o->max_seconds) {
        snprintf(msg, sizeof msg, "%.1f s is longer than the maximum %g s (--max-seconds)", secs,
                 o->max_seconds);
        set_error(it, msg);
        return;
    }
    if (make_parents(out)) {
        msgf(msg, sizeof msg, "cannot make the folder for %s: %s", out, strerror(errno));
        set_error(it, msg);
        return;
    }
    sotto_status st;
    sotto_codec_encode_info info;
    const double t0 = cli_now_s();
    if (sotto_codec_encode_file(model, it->in, out, &o->ep, &info, &st) != SOTTO_OK) {
        set_error(it, st.message);
        return;
    }
    it->seconds = info.duration_s;
    it->groups = info.groups;
    it->frames = info.frames;
    it->groups_per_s = info.groups_per_s;
    it->bitrate_bps = info.bitrate_bps;
    it->payload_bps = info.payload_bps;
    it->threshold = info.threshold;
    it->clamped = info.clamped;
    it->input_rate_hz = info.input_rate_hz;
    if (o->batch_decode) { /* decoded later with the others */
        it->t_encode = cli_now_s() - t0;
        it->encoded = 1;
        return;
    }
    if (o->decode) {
        const sotto_decoder_params dp = decode_params(o);
        sotto_codec_file_info fi;
        float *pcm = NULL;
        int64_t n = 0;
        if (sotto_codec_decode_file(model, out, &dp, &pcm, &n, &fi, &st) != SOTTO_OK) {
            set_error(it, st.message);
            return;
        }
        if (write_decoded(o, it, pcm, n, fi.sample_rate_hz)) return;
    }
    item_done(it, cli_now_s() - t0);
}

/* The batch's shared state while it runs: jobs take the next file from `next`; results go
 * into the item (owned by the job that took it); the totals and the progress line change under
 * `lock`. */
typedef struct runner {
    const sotto_model *model;
    const options *o;
    batch *b;
    atomic_int next;
    pthread_mutex_t lock;
    int show, tty, done, n_ok;
    double secs, groups, bits, work;
} runner;

/* Counts a finished item (done, or failed) after t seconds of work and shows it. */
static void report(runner *r, const item *it, double t)
{
    pthread_mutex_lock(&r->lock);
    r->done++;
    if (it->ok) {
        r->n_ok++;
        r->secs += it->seconds;
        r->groups += (double)it->groups;
        r->bits += it->bitrate_bps * it->seconds;
        r->work += t;
    } else {
        if (r->show && r->tty) fputc('\n', stderr);
        cli_error(CMD, "%s", it->error);
    }
    if (r->show)
        fprintf(stderr, "%s[%d/%d files] %.1f s of audio, RTF %.4f%s", r->tty ? "\r" : "", r->done,
                r->b->n, r->secs, r->secs > 0 ? r->work / r->secs : 0.0, r->tty ? "" : "\n");
    pthread_mutex_unlock(&r->lock);
}

static void *run_jobs(void *arg)
{
    runner *r = arg;
    for (;;) {
        const int i = atomic_fetch_add(&r->next, 1);
        if (i >= r->b->n) break;
        item *it = &r->b->v[i];
        const double t0 = cli_now_s();
        if (!it->error[0]) run_item(r->model, r->o, it);
        it->t_job = cli_now_s() - t0;
        if (!it->encoded || it->error[0]) report(r, it, it->t_job); /* else after its decode */
    }
    return NULL;
}

/* Decodes the encoded items of a call, writes their WAVs and reports them. Each one's work is
 * its job's time plus its share (by frames) of the call and its own writing. */
static void decode_call(runner *r, sotto_codec_decode_job *jobs, item **its, int m)
{
    sotto_decoder_params dp = decode_params(r->o);
    int64_t frames = 0, span = 0;
    for (int k = 0; k < m; k++) {
        frames += its[k]->frames;
        span += its[k]->frames + 16; /* room for the zero frames between batch items */
    }
    dp.max_batch_frames = (int)(span < DECODE_BATCH_FRAMES ? span : DECODE_BATCH_FRAMES);
    sotto_status st;
    const double t0 = cli_now_s();
    const int rc = sotto_codec_decode_files(r->model, jobs, m, &dp, &st);
    (void)rc; /* each job has its own result */
    const double t_call = cli_now_s() - t0;
    for (int k = 0; k < m; k++) {
        item *it = its[k];
        const double share = frames > 0 ? t_call * (double)it->frames / (double)frames : 0.0;
        const double t1 = cli_now_s();
        if (jobs[k].status.code != SOTTO_OK) {
            set_error(it, jobs[k].status.message);
            free(jobs[k].samples);
        } else if (!write_decoded(r->o, it, jobs[k].samples, jobs[k].n_samples,
                                  jobs[k].info.sample_rate_hz)) {
            item_done(it, it->t_encode + share + (cli_now_s() - t1));
        }
        report(r, it, it->t_job + share + (cli_now_s() - t1));
    }
}

/* The decode phase on CUDA: the encoded items in input order, in calls of at most
 * DECODE_BATCH_FRAMES frames (a longer file alone). */
static void decode_phase(runner *r)
{
    batch *b = r->b;
    char(*paths)[PATH_CAP] = malloc((size_t)b->n * sizeof *paths);
    sotto_codec_decode_job *jobs = calloc((size_t)b->n, sizeof *jobs);
    item **its = calloc((size_t)b->n, sizeof *its);
    int m = 0;
    int64_t frames = 0;
    for (int i = 0; i < b->n; i++) {
        item *it = &b->v[i];
        if (!it->encoded || it->error[0]) continue;
        if (!paths || !jobs || !its) {
            set_error(it, "out of memory for the decode");
            report(r, it, it->t_job);
            continue;
        }
        if (m > 0 && frames + it->frames > DECODE_BATCH_FRAMES) {
            decode_call(r, jobs, its, m);
            m = 0;
            frames = 0;
        }
        snprintf(paths[m], PATH_CAP, "%s/%s.sotto", r->o->outdir, it->stem);
        memset(&jobs[m], 0, sizeof jobs[m]);
        jobs[m].path = paths[m];
        its[m++] = it;
        frames += it->frames;
    }
    if (m > 0) decode_call(r, jobs, its, m);
    free(paths);
    free(jobs);
    free(its);
}

/* Runs the batch on `jobs` threads (the calling one among them). */
static void run_batch(runner *r, int jobs)
{
    pthread_t th[MAX_JOBS];
    int started = 0;
    if (jobs > r->b->n) jobs = r->b->n;
    for (int j = 1; j < jobs; j++) {
        if (pthread_create(&th[started], NULL, run_jobs, r) != 0) break; /* fewer jobs */
        started++;
    }
    run_jobs(r);
    for (int j = 0; j < started; j++)
        pthread_join(th[j], NULL);
}

static void print_table(const batch *b, int n_ok, double secs, double groups, double bits,
                        double work)
{
    int w = 4;
    for (int i = 0; i < b->n; i++) {
        int l = (int)strlen(b->v[i].in);
        if (l > w) w = l;
    }
    if (w > 60) w = 60;
    printf("%-*s %10s %9s %9s %8s  %s\n", w, "file", "duration", "groups/s", "bit/s", "RTF",
           "status");
    for (int i = 0; i < b->n; i++) {
        const item *it = &b->v[i];
        if (it->ok)
            printf("%-*s %8.2f s %9.2f %9.0f %8.4f  ok%s\n", w, it->in, it->seconds,
                   it->groups_per_s, it->bitrate_bps, it->rtf,
                   it->clamped < 0   ? " (rate clamped: lowest reachable)"
                   : it->clamped > 0 ? " (rate clamped: highest reachable)"
                                     : "");
        else
            printf("%-*s %10s %9s %9s %8s  FAILED: %s\n", w, it->in, "-", "-", "-", "-", it->error);
    }
    printf("total: %d files, %d ok, %d failed; %.2f s of audio, %.2f groups/s, %.0f bit/s, "
           "RTF %.4f\n",
           b->n, n_ok, b->n - n_ok, secs, secs > 0 ? groups / secs : 0.0,
           secs > 0 ? bits / secs : 0.0, secs > 0 ? work / secs : 0.0);
}

static void print_json(const batch *b, const options *o, int n_ok, double secs, double groups,
                       double bits, double work)
{
    printf("{\"files\":[");
    for (int i = 0; i < b->n; i++) {
        const item *it = &b->v[i];
        char path[PATH_CAP];
        printf("%s{\"input\":", i ? "," : "");
        cli_json_str(it->in);
        snprintf(path, sizeof path, "%s/%s.sotto", o->outdir, it->stem);
        printf(",\"output\":");
        cli_json_str(path);
        if (o->decode) {
            snprintf(path, sizeof path, "%s/%s.wav", o->outdir, it->stem);
            printf(",\"decoded\":");
            cli_json_str(path);
        }
        if (it->ok)
            printf(",\"ok\":true,\"seconds\":%.4f,\"groups\":%lld,\"frame_rate_hz\":%.4f,"
                   "\"bitrate_bps\":%.1f,\"payload_bps\":%.1f,\"threshold\":%.4f,"
                   "\"rate_clamped\":%d,\"rtf\":%.5f}",
                   it->seconds, (long long)it->groups, it->groups_per_s, it->bitrate_bps,
                   it->payload_bps, (double)it->threshold, it->clamped, it->rtf);
        else {
            printf(",\"ok\":false,\"error\":");
            cli_json_str(it->error);
            putchar('}');
        }
    }
    printf("],\"total\":{\"files\":%d,\"ok\":%d,\"failed\":%d,\"seconds\":%.4f,"
           "\"frame_rate_hz\":%.4f,\"bitrate_bps\":%.1f,\"rtf\":%.5f}}\n",
           b->n, n_ok, b->n - n_ok, secs, secs > 0 ? groups / secs : 0.0,
           secs > 0 ? bits / secs : 0.0, secs > 0 ? work / secs : 0.0);
}

int cmd_transcode(int argc, char **argv)
{
    const char *model_path = NULL, *threshold_arg = NULL, *rate_arg = NULL;
    const char *bitrate_arg = NULL, *quantizers_arg = NULL, *max_arg = NULL, *jobs_arg = NULL;
    const char *decode_rate_arg = NULL, *segment_arg = NULL, *gpu_arg = NULL;
    int cpu = 0;
    int threads = 1, json = 0, quiet = cli_quiet, progress = 0, f16_math = 0;
    options o;
    memset(&o, 0, sizeof o);
    char **inputs = calloc((size_t)argc, sizeof *inputs);
    int n_inputs = 0;
    if (!inputs) {
        cli_error(CMD, "out of memory");
        return CLI_ERR_RUNTIME;
    }
    int rc = CLI_ERR_USAGE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            free(inputs);
            return CLI_OK;
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && has_val) {
            o.outdir = argv[++i];
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
        } else if (!strcmp(a, "--quantizers") && has_val) {
            quantizers_arg = argv[++i];
        } else if (!strcmp(a, "--segment") && has_val) {
            segment_arg = argv[++i];
        } else if (!strcmp(a, "--max-seconds") && has_val) {
            max_arg = argv[++i];
        } else if (!strcmp(a, "--jobs") && has_val) {
            jobs_arg = argv[++i];
        } else if (!strcmp(a, "--decode")) {
            o.decode = 1;
        } else if (!strcmp(a, "--decode-rate") && has_val) {
            decode_rate_arg = argv[++i];
            o.decode = 1;
        } else if (!strcmp(a, "--f16-arithmetic")) {
            f16_math = 1;
        } else if (!strcmp(a, "--gpu") && has_val) {
            gpu_arg = argv[++i];
        } else if (!strcmp(a, "--cpu")) {
            cpu = 1;
        } else if (!strcmp(a, "--progress")) {
            progress = 1;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (a[0] == '-' && a[1]) {
            cli_error(CMD, "unknown option or missing value: %s (see --help)", a);
            goto out;
        } else {
            inputs[n_inputs++] = argv[i];
        }
    }
    if (!n_inputs || !o.outdir || !model_path) {
        cli_error(CMD, "INPUT..., -o OUTDIR and -m MODEL are required (see --help)");
        goto out;
    }
    if (threads < 1 || threads > 64) {
        cli_error(CMD, "--threads must be 1..64");
        goto out;
    }
    double v = 0;
    int jobs = 1;
    if (jobs_arg) {
        if (cli_parse_double(jobs_arg, &v) || v != floor(v) || !(v >= 1 && v <= MAX_JOBS)) {
            cli_error(CMD, "--jobs must be an integer in 1..%d, not '%s'", MAX_JOBS, jobs_arg);
            goto out;
        }
        jobs = (int)v;
    }
    if (decode_rate_arg) {
        if (cli_parse_double(decode_rate_arg, &v) || v != floor(v) ||
            !(v >= SOTTO_AUDIO_MIN_RATE_HZ && v <= SOTTO_AUDIO_MAX_RATE_HZ)) {
            cli_error(CMD, "--decode-rate must be an integer rate in %d..%d Hz, not '%s'",
                      SOTTO_AUDIO_MIN_RATE_HZ, SOTTO_AUDIO_MAX_RATE_HZ, decode_rate_arg);
            goto out;
        }
        o.decode_rate = (int)v;
    }
    o.ep = sotto_codec_default_encode_params();
    o.max_seconds = DEFAULT_MAX_SECONDS;
    if (max_arg) {
        if (cli_parse_double(max_arg, &v) || !(v >= 1.0 && v <= 3600.0)) {
            cli_error(CMD, "--max-seconds must be a number in 1..3600, not '%s'", max_arg);
            goto out;
        }
        o.max_seconds = v;
    }
    /* the probe decides; a second of room for rounding in the resampling */
    o.ep.encoder.max_seconds = o.max_seconds + 1.0 < 3600.0 ? o.max_seconds + 1.0 : 3600.0;
    if (cli_encoder_options(CMD, threshold_arg, rate_arg, bitrate_arg, quantizers_arg,
                            &o.ep.encoder) ||
        cli_segment_option(CMD, segment_arg, &o.ep.segment_seconds))
        goto out;

    /* the model, and whether it can encode with these options (a small encoder) */
    sotto_status st;
    sotto_model *model = NULL;
    sotto_model_params mp = sotto_model_default_params();
    mp.n_threads = threads;
    mp.f16_arithmetic = f16_math ? 2 : 0;
    if (cli_backend_option(CMD, gpu_arg, cpu, &mp)) goto out;
    const int lrc = sotto_model_load_file(model_path, &mp, &model, &st);
    if (lrc != SOTTO_OK) {
        cli_error(CMD, "%s: %s", model_path, st.message);
        rc = cli_load_error_code(lrc);
        goto out;
    }
    if (!quiet && sotto_model_backend(model) == SOTTO_BACKEND_CUDA)
        fprintf(stderr, "sotto transcode: on CUDA device %d\n", mp.device);
    /* on the device a folder decodes as batched forwards, many files per call */
    o.batch_decode = o.decode && sotto_model_backend(model) == SOTTO_BACKEND_CUDA;
    if (f16_math && !quiet)
        fprintf(stderr, "sotto transcode: %s\n",
                sotto_model_f16_arithmetic(model) == 2
                    ? "binary16 arithmetic in the encoder and decoder"
                    : CLI_F32_FALLBACK);
    {
        sotto_encoder_params probe = o.ep.encoder;
        probe.max_seconds = 1.0;
        sotto_encoder *enc = NULL;
        int erc = sotto_encoder_create(model, &probe, &enc, &st);
        sotto_encoder_free(enc);
        if (erc != SOTTO_OK) {
            if (erc == SOTTO_ERR_INVALID_ARG) {
                cli_error(CMD, "%s", st.message);
            } else {
                cli_error(CMD, "%s: %s", model_path, st.message);
                rc = CLI_ERR_MODEL;
            }
            sotto_model_free(model);
            goto out;
        }
    }

    batch b;
    memset(&b, 0, sizeof b);
    for (int i = 0; i < n_inputs; i++) {
        struct stat s;
        char root[PATH_CAP];
        snprintf(root, sizeof root, "%s", inputs[i]);
        size_t l = strlen(root);
        while (l > 1 && root[l - 1] == '/')
            root[--l] = '\0';
        if (stat(root, &s) == 0 && S_ISDIR(s.st_mode)) {
            walk(&b, root, "", 0);
        } else { /* a file (or a missing one: reported as a failed file) */
            const char *slash = strrchr(root, '/');
            char stem[PATH_CAP];
            strip_ext(slash ? slash + 1 : root, stem, sizeof stem);
            add_item(&b, root, stem);
        }
    }
    if (b.alloc_failed) {
        cli_error(CMD, "out of memory listing the inputs");
        rc = CLI_ERR_RUNTIME;
    } else if (!b.n) {
        cli_error(CMD, "no audio files found in the inputs");
        rc = CLI_ERR_INPUT;
    } else if (make_parents(o.outdir) || (mkdir(o.outdir, 0777) != 0 && errno != EEXIST)) {
        cli_error(CMD, "%s: cannot make the output folder: %s", o.outdir, strerror(errno));
        rc = CLI_ERR_OUTPUT;
    } else {
        /* two inputs mapping to one output: the later one fails */
        for (int i = 0; i < b.n; i++)
            for (int j = 0; j < i; j++)
                if (!strcmp(b.v[i].stem, b.v[j].stem)) {
                    msgf(b.v[i].error, sizeof b.v[i].error,
                         "%s: its output %s/%s.sotto is also %s's", b.v[i].in, o.outdir,
                         b.v[i].stem, b.v[j].in);
                    break;
                }
        runner r;
        memset(&r, 0, sizeof r);
        r.model = model;
        r.o = &o;
        r.b = &b;
        atomic_init(&r.next, 0);
        pthread_mutex_init(&r.lock, NULL);
        r.tty = isatty(2);
        r.show = !quiet && (progress || r.tty);
        const double wall0 = cli_now_s();
        run_batch(&r, jobs);
        if (o.batch_decode) decode_phase(&r);
        const double wall = cli_now_s() - wall0;
        pthread_mutex_destroy(&r.lock);
        const int show = r.show, tty = r.tty, n_ok = r.n_ok;
        /* with several jobs the work is the wall time: RTF is what the batch achieved */
        const double secs = r.secs, groups = r.groups, bits = r.bits;
        const double work = jobs > 1 ? wall : r.work;
        if (show && tty) fputc('\n', stderr);
        if (json)
            print_json(&b, &o, n_ok, secs, groups, bits, work);
        else if (!quiet)
            print_table(&b, n_ok, secs, groups, bits, work);
        rc = n_ok == b.n ? CLI_OK : CLI_ERR_SOME_FAILED;
        if (fflush(stdout) != 0 || ferror(stdout)) {
            cli_error(CMD, "cannot write the summary");
            rc = CLI_ERR_OUTPUT;
        }
    }
    for (int i = 0; i < b.n; i++) {
        free(b.v[i].in);
        free(b.v[i].stem);
    }
    free(b.v);
    sotto_model_free(model);
out:
    free(inputs);
    return rc;
}
