/*
 * `.sotto` files through the public codec API (sotto_codec.h): probe, decode and write, on
 * the Ogg mapping (io/oggmap.h) and the packet format (io/packet.h).
 *
 * Decoding reads the whole stream first (codes only: a few bytes per group), placing every
 * packet by the reader's sample positions: a gap between the frames received so far and a
 * packet's start is a loss, concealed as exactly that many frames. Then one decoder, sized
 * to the stream's frames, decodes everything in one flush (the model is not causal), and
 * the output is cut to [pre_skip, pre_skip + length). Buffers of this file (the codes, the
 * returned samples) come from the C library's allocator.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codecs/flexicodec/codec_internal.h"
#include "core/model.h"
#include "io/oggmap.h"
#include "sotto/sotto_codec.h"

#define CODEC_NAME "flexicodec"

/* Growable int32 array. */
typedef struct ivec {
    int32_t *v;
    size_t n, cap;
} ivec;

static int ivec_append(ivec *a, const int32_t *src, size_t n, size_t stride, size_t width)
{
    /* appends n rows of `width` values read with `stride` */
    size_t need = a->n + n * width;
    if (need > a->cap) {
        size_t cap = a->cap ? a->cap : 1024;
        while (cap < need)
            cap *= 2;
        int32_t *v = realloc(a->v, cap * sizeof *v);
        if (!v) return SOTTO_ERR_OUT_OF_MEMORY;
        a->v = v;
        a->cap = cap;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < width; j++)
            a->v[a->n++] = src[i * stride + j];
    return SOTTO_OK;
}

/* One received packet, placed. */
typedef struct placed {
    int64_t gap;   /* frames lost just before it */
    size_t g0, r0; /* its first group in lens/fsq, its first code in rvq */
    int n_groups, n_stages, n_frames;
} placed;

typedef struct scan {
    placed *p;
    size_t n, cap;
    ivec lens, fsq, rvq;
    int64_t frames; /* received + lost */
} scan;

static void scan_free(scan *s)
{
    free(s->p);
    free(s->lens.v);
    free(s->fsq.v);
    free(s->rvq.v);
}

static void hex(const uint8_t *id, int n, char *out)
{
    for (int i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", id[i]);
}

/*
 * Opens path, reads the headers and every packet into info (and, when s is not NULL, the
 * codes into s). model may be NULL. When `strict`, a file from another codec or model is
 * refused (SOTTO_ERR_MODEL) before its packets are read.
 */
static int read_stream(const char *path, const sotto_model *model, int strict, scan *s,
                       sotto_codec_file_info *info, sotto_status *st)
{
    memset(info, 0, sizeof *info);
    info->identity_matches = -1;
    FILE *f = fopen(path, "rb");
    if (!f) return sotto_status_set(st, SOTTO_ERR_IO, "%s: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) == 0) {
        long sz = ftell(f);
        info->file_bytes = sz > 0 ? sz : 0;
    }
    rewind(f);
    sotto_oggmap_reader *r = NULL;
    sotto_status rs;
    char magic[4] = {0};
    const int is_ogg = fread(magic, 1, 4, f) == 4 && !memcmp(magic, "OggS", 4);
    rewind(f);
    int rc = sotto_oggmap_reader_open_file(f, NULL, &r, &rs);
    if (rc) {
        fclose(f);
        if (rc == SOTTO_ERR_FORMAT && !is_ogg) /* say what it is not */
            return sotto_status_set(st, rc,
                                    "%s: not a .sotto file (it does not start with an "
                                    "Ogg page)",
                                    path);
        return sotto_status_set(st, rc, "%s: %s", path, rs.message);
    }
    const sotto_oggmap_head *h = sotto_oggmap_reader_head(r);
    snprintf(info->codec, sizeof info->codec, "%s", h->codec);
    memcpy(info->model_identity, h->model_id, sizeof info->model_identity);
    info->version = h->version;
    info->sample_rate_hz = (int)h->sample_rate;
    info->input_rate_hz = (int)h->input_rate;
    info->frame_rate_hz = (double)h->frame_rate_num / (double)h->frame_rate_den;
    info->pre_skip = h->pre_skip;
    info->n_comments = sotto_oggmap_reader_comment_count(r);
    info->min_stages = info->max_stages = 0;
    if (model) {
        uint8_t id[32];
        if ((rc = sotto_model_identity(model, id))) {
            sotto_status_set(st, rc, "cannot compute the model's identity");
            goto done;
        }
        info->identity_matches = !memcmp(id, h->model_id, sizeof id);
        if (strict && strcmp(h->codec, sotto_model_architecture(model))) {
            rc = sotto_status_set(st, SOTTO_ERR_MODEL,
                                  "%s: the stream is of codec '%s', the model is '%s'", path,
                                  h->codec, sotto_model_architecture(model));
            goto done;
        }
        if (strict && !info->identity_matches) {
            char a[65], b[65];
            hex(h->model_id, 32, a);
            hex(id, 32, b);
            rc = sotto_status_set(st, SOTTO_ERR_MODEL,
                                  "%s: the stream was encoded with another model (identity "
                                  "%.16s..., this model %.16s...)",
                                  path, a, b);
            goto done;
        }
    }
    const int64_t spf = sotto_oggmap_samples_per_frame(h);
    int64_t end = 0, got_frames = 0;
    int first = 1;
    for (;;) {
        sotto_oggmap_packet pkt;
        sotto_status ps;
        int nr = sotto_oggmap_reader_next(r, &pkt, &ps);
        if (nr == 1) break;
        if (nr == SOTTO_ERR_FORMAT) {
            if (!info->n_problems++)
                snprintf(info->first_problem, sizeof info->first_problem, "%s", ps.message);
            continue;
        }
        if (nr < 0) {
            rc = sotto_status_set(st, nr, "%s: %s", path, ps.message);
            goto done;
        }
        end = pkt.start + pkt.n_samples;
        if (pkt.info.n_groups == 0) continue;
        info->packets++;
        info->groups += pkt.info.n_groups;
        info->frames += pkt.info.n_frames;
        if (first || pkt.info.n_stages < info->min_stages) info->min_stages = pkt.info.n_stages;
        if (first || pkt.info.n_stages > info->max_stages) info->max_stages = pkt.info.n_stages;
        first = 0;
        if (!s) continue;
        /* place it: frames lost between what was received and its start */
        const int64_t at = (pkt.start + spf / 2) / spf;
        const int64_t gap = at > s->frames ? at - s->frames : 0;
        if (s->n == s->cap) {
            size_t cap = s->cap ? 2 * s->cap : 256;
            placed *p = realloc(s->p, cap * sizeof *p);
            if (!p) {
                rc = sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
                goto done;
            }
            s->p = p;
            s->cap = cap;
        }
        placed *q = &s->p[s->n++];
        q->gap = gap;
        q->g0 = s->lens.n;
        q->r0 = s->rvq.n;
        q->n_groups = pkt.info.n_groups;
        q->n_stages = pkt.info.n_stages;
        q->n_frames = pkt.info.n_frames;
        const size_t G = (size_t)pkt.info.n_groups;
        if (ivec_append(&s->lens, pkt.lens, G, 1, 1) || ivec_append(&s->fsq, pkt.sem, G, 1, 1) ||
            ivec_append(&s->rvq, pkt.ac, G, (size_t)pkt.ldc, (size_t)pkt.info.n_stages)) {
            rc = sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
        s->frames += gap + pkt.info.n_frames;
        got_frames += pkt.info.n_frames;
    }
    sotto_oggmap_stats ss;
    sotto_oggmap_reader_stats(r, &ss);
    if (ss.eos) end = ss.final_granule;
    info->samples = end > (int64_t)h->pre_skip ? end - (int64_t)h->pre_skip : 0;
    info->duration_s = h->sample_rate ? (double)info->samples / h->sample_rate : 0;
    if (info->duration_s > 0) {
        info->groups_per_s = (double)info->groups / info->duration_s;
        info->frames_per_s = (double)info->frames / info->duration_s;
        info->bitrate_bps = (double)info->file_bytes * 8.0 / info->duration_s;
    }
    info->lost_samples = ss.lost_samples;
    info->bad_packets = ss.bad_packets;
    info->damaged_pages = ss.damaged;
    info->holes = ss.holes;
    info->garbage_bytes = ss.garbage_bytes;
    info->truncated = ss.truncated || !ss.eos;
    if (s) info->lost_frames = s->frames - got_frames;
    rc = SOTTO_OK;
    sotto_status_clear(st);
done:
    sotto_oggmap_reader_free(r);
    fclose(f);
    return rc;
}

int sotto_codec_probe_file(const char *path, const sotto_model *model, sotto_codec_file_info *info,
                           sotto_status *st)
{
    sotto_status_clear(st);
    if (!path || !info)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL %s", !path ? "path" : "info");
    return read_stream(path, model, 0, NULL, info, st);
}

/* The file's rates and layout must be the model's (the identity already matched, so only a
 * hand-made file can fail here). */
static int check_compatible(const sotto_model *model, const char *path,
                            const sotto_codec_file_info *info, const sotto_packet_layout *fl,
                            sotto_status *st)
{
    sotto_packet_layout ml;
    int rc = flexicodec_model_layout(model, &ml, st);
    if (rc) return rc;
    const int rate = flexicodec_model_rate(model), hop = flexicodec_model_hop(model);
    if (info->sample_rate_hz != rate || info->frame_rate_hz * hop != rate)
        return sotto_status_set(st, SOTTO_ERR_UNSUPPORTED,
                                "%s: %d Hz at %.4g frames/s, the model decodes %d Hz at %.4g", path,
                                info->sample_rate_hz, info->frame_rate_hz, rate,
                                (double)rate / hop);
    if (fl->sem_size != ml.sem_size || fl->max_stages > ml.max_stages ||
        (fl->max_stages > 0 && fl->ac_size != ml.ac_size) || fl->max_group_len > ml.max_group_len)
        return sotto_status_set(st, SOTTO_ERR_UNSUPPORTED,
                                "%s: packet layout (FSQ %d, RVQ %d x %d stages, groups of %d) "
                                "does not fit the model (%d, %d x %d, %d)",
                                path, (int)fl->sem_size, (int)fl->ac_size, fl->max_stages,
                                fl->max_group_len, (int)ml.sem_size, (int)ml.ac_size, ml.max_stages,
                                ml.max_group_len);
    return SOTTO_OK;
}

/* Reads the ID header's layout again (the info struct does not carry it). */
static int file_layout(const char *path, sotto_packet_layout *l, sotto_status *st)
{
    FILE *f = fopen(path, "rb");
    if (!f) return sotto_status_set(st, SOTTO_ERR_IO, "%s: %s", path, strerror(errno));
    sotto_oggmap_reader *r = NULL;
    int rc = sotto_oggmap_reader_open_file(f, NULL, &r, st);
    if (!rc) *l = sotto_oggmap_reader_head(r)->layout;
    sotto_oggmap_reader_free(r);
    fclose(f);
    return rc;
}

/* Reads path for decoding with model: its packets placed in s and info filled, the file
 * checked against the model and against max_frames (the longest stream accepted). */
static int read_for_decode(const sotto_model *model, const char *path, int max_frames, scan *s,
                           sotto_codec_file_info *info, sotto_status *st)
{
    sotto_packet_layout fl;
    int rc = flexicodec_model_layout(model, &fl, st);
    if (rc) return rc;
    if ((rc = read_stream(path, model, 1, s, info, st))) return rc;
    if ((rc = file_layout(path, &fl, st)) || (rc = check_compatible(model, path, info, &fl, st)))
        return rc;
    if (s->frames > max_frames)
        return sotto_status_set(st, SOTTO_ERR_BUFFER_TOO_SMALL,
                                "%s: the stream holds %lld frames (%.1f s), more than "
                                "max_frames %d",
                                path, (long long)s->frames, s->frames / info->frame_rate_hz,
                                max_frames);
    return SOTTO_OK;
}

/* The parameters of a decoder sized to a stream of `frames` frames (> 0). */
static sotto_decoder_params sized_params(sotto_decoder_params p, int64_t frames)
{
    p.max_frames = (int)frames;
    p.max_groups = 0;
    if (p.segment_frames > p.max_frames) p.segment_frames = 0;
    return p;
}

/* Whether a decoder created with p decodes an utterance of T frames in segment windows (the
 * rule of sotto_decoder_create and sotto_decoder_flush). */
static int splits(const sotto_decoder_params *p, int64_t T)
{
    return p->segment_frames > 0 && p->segment_frames + 2 * p->overlap_frames < p->max_frames &&
           T > p->segment_frames;
}

/* Pushes the placed stream s into dec from a reset, concealing its gaps and any packet the
 * model refuses (noted in info), and flushes it into *pcm (malloc'd), *n samples. */
static int decode_placed(sotto_decoder *dec, const char *path, const scan *s,
                         sotto_codec_file_info *info, float **pcm, int64_t *n, sotto_status *st)
{
    int rc = sotto_decoder_reset(dec);
    for (size_t i = 0; !rc && i < s->n; i++) {
        const placed *q = &s->p[i];
        if (q->gap > 0 && (rc = sotto_decoder_conceal_frames(dec, (int)q->gap))) break;
        rc = sotto_decoder_push(dec, s->lens.v + q->g0, s->fsq.v + q->g0, s->rvq.v + q->r0,
                                q->n_groups, q->n_stages);
        if (rc == SOTTO_ERR_INVALID_ARG) {
            /* a code the model cannot take (only in a hand-made file): conceal it */
            if (!info->n_problems++)
                snprintf(info->first_problem, sizeof info->first_problem, "packet %zu: %s", i,
                         sotto_decoder_last_error(dec));
            info->lost_frames += q->n_frames;
            rc = sotto_decoder_conceal_frames(dec, q->n_frames);
        }
    }
    if (rc) return sotto_status_set(st, rc, "%s: %s", path, sotto_decoder_last_error(dec));
    const size_t cap = sotto_decoder_output_samples(dec);
    float *y = malloc((cap ? cap : 1) * sizeof *y);
    if (!y)
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory for %zu samples", cap);
    const int got = sotto_decoder_flush(dec, y, cap);
    if (got < 0) {
        free(y);
        return sotto_status_set(st, got, "%s: %s", path, sotto_decoder_last_error(dec));
    }
    *pcm = y;
    *n = got;
    return SOTTO_OK;
}

/* The playable part of the decoded pcm[N]: [pre_skip, pre_skip + samples) into *samples
 * (malloc'd, at least one element), silence past the decoded end (untrimmed files). */
static int trim_output(const float *pcm, int64_t N, const sotto_codec_file_info *info,
                       float **samples, int64_t *n_samples, sotto_status *st)
{
    const int64_t n_out = info->samples, pre = info->pre_skip;
    float *out = malloc((size_t)(n_out > 0 ? n_out : 1) * sizeof *out);
    if (!out)
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory for %lld samples",
                                (long long)n_out);
    for (int64_t i = 0; i < n_out; i++)
        out[i] = pre + i < N ? pcm[pre + i] : 0.0f;
    *samples = out;
    *n_samples = n_out;
    return SOTTO_OK;
}

/* The per-file decode of a read stream: on dec when given (a decoder that decodes it as one
 * sized to it would), else on a decoder sized to the stream; then trimmed. */
static int decode_stream(const sotto_model *model, sotto_decoder *dec, const char *path,
                         const scan *s, const sotto_decoder_params *p, sotto_codec_file_info *info,
                         float **samples, int64_t *n_samples, sotto_status *st)
{
    sotto_decoder *own = NULL;
    float *pcm = NULL;
    int64_t N = 0;
    int rc = SOTTO_OK;
    if (s->frames > 0) {
        if (!dec) {
            const sotto_decoder_params sp = sized_params(*p, s->frames);
            if ((rc = sotto_decoder_create(model, &sp, &own, st))) return rc;
            dec = own;
        }
        rc = decode_placed(dec, path, s, info, &pcm, &N, st);
    }
    if (!rc) rc = trim_output(pcm, N, info, samples, n_samples, st);
    free(pcm);
    sotto_decoder_free(own);
    return rc;
}

int sotto_codec_decode_file(const sotto_model *model, const char *path,
                            const sotto_decoder_params *params, float **samples, int64_t *n_samples,
                            sotto_codec_file_info *info, sotto_status *st)
{
    sotto_status_clear(st);
    if (samples) *samples = NULL;
    if (n_samples) *n_samples = 0;
    if (!model || !path || !samples || !n_samples)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL model, path or output");
    sotto_codec_file_info local;
    if (!info) info = &local;
    const sotto_decoder_params p = params ? *params : sotto_decoder_default_params();
    scan s;
    memset(&s, 0, sizeof s);
    int rc = read_for_decode(model, path, p.max_frames, &s, info, st);
    if (!rc) rc = decode_stream(model, NULL, path, &s, &p, info, samples, n_samples, st);
    scan_free(&s);
    return rc;
}

/* ---- several files ------------------------------------------------------------------------ */

/* Whether the call's decoder (params shared) decodes a stream of T > 0 frames as decode_file's
 * decoder, sized to it, would: both window it, or neither. */
static int fits(const sotto_decoder_params *shared, const sotto_decoder_params *p, int64_t T)
{
    const sotto_decoder_params own = sized_params(*p, T);
    return splits(shared, T) == splits(&own, T);
}

/* A stream is a batch item when it is one utterance of received groups with one stage count
 * (the item's layout) that the call's decoder decodes as decode_file would. */
static int batchable(const scan *s, const sotto_codec_file_info *info,
                     const sotto_decoder_params *shared, const sotto_decoder_params *p)
{
    return s->frames > 0 && info->lost_frames == 0 && info->min_stages == info->max_stages &&
           fits(shared, p, s->frames);
}

int sotto_codec_decode_files(const sotto_model *model, sotto_codec_decode_job *jobs, int n,
                             const sotto_decoder_params *params, sotto_status *st)
{
    sotto_status_clear(st);
    if (n < 0 || (n > 0 && !jobs))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "bad job list (%d jobs at %s)", n,
                                jobs ? "an array" : "NULL");
    const sotto_decoder_params p = params ? *params : sotto_decoder_default_params();
    scan *s = calloc((size_t)(n ? n : 1), sizeof *s);
    sotto_decoder_item *items = calloc((size_t)(n ? n : 1), sizeof *items);
    int *idx = calloc((size_t)(n ? n : 1), sizeof *idx);
    if (!s || !items || !idx) {
        free(s);
        free(items);
        free(idx);
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory for %d jobs", n);
    }
    /* read every file first: the decoder is sized for the longest stream */
    int64_t longest = 0;
    for (int i = 0; i < n; i++) {
        sotto_codec_decode_job *j = &jobs[i];
        j->samples = NULL;
        j->n_samples = 0;
        memset(&j->info, 0, sizeof j->info);
        sotto_status_clear(&j->status);
        if (!model || !j->path)
            sotto_status_set(&j->status, SOTTO_ERR_INVALID_ARG, "NULL model, path or output");
        else if (!read_for_decode(model, j->path, p.max_frames, &s[i], &j->info, &j->status) &&
                 s[i].frames > longest)
            longest = s[i].frames;
    }
    /* One decoder for the call. When it cannot be made (the parameters, memory), every file
     * goes its own way below and fails, or not, as decode_file would. */
    sotto_decoder *dec = NULL;
    sotto_decoder_params sp = sized_params(p, longest > 0 ? longest : 1);
    if (longest > 0 && sotto_decoder_create(model, &sp, &dec, NULL)) dec = NULL;

    /* the intact streams as one batch */
    int m = 0;
    for (int i = 0; dec && i < n; i++) {
        if (jobs[i].status.code || !batchable(&s[i], &jobs[i].info, &sp, &p)) continue;
        sotto_decoder_item *it = &items[m];
        it->lengths = s[i].lens.v;
        it->fsq = s[i].fsq.v;
        it->rvq = s[i].rvq.v;
        it->n_groups = (int)s[i].lens.n;
        it->n_stages = jobs[i].info.max_stages;
        it->capacity = (size_t)flexicodec_model_out_len(model, s[i].frames);
        it->out = malloc((it->capacity ? it->capacity : 1) * sizeof *it->out);
        if (!it->out) continue; /* decoded on its own below */
        idx[m++] = i;
    }
    if (m > 0) (void)sotto_decoder_decode_batch(dec, items, m); /* results per item */
    int first = -1;
    for (int i = 0, k = 0; i < n; i++) {
        sotto_codec_decode_job *j = &jobs[i];
        if (!j->status.code) {
            const sotto_decoder_item *it = k < m && idx[k] == i ? &items[k++] : NULL;
            /* An item that failed (a code the model refuses, a device error) is decoded again
             * per file: that conceals what decode_file conceals and reports what it reports. */
            if (it && it->result >= 0 && (size_t)it->result == it->capacity)
                trim_output(it->out, it->result, &j->info, &j->samples, &j->n_samples, &j->status);
            else
                decode_stream(model, !it && fits(&sp, &p, s[i].frames) ? dec : NULL, j->path, &s[i],
                              &p, &j->info, &j->samples, &j->n_samples, &j->status);
        }
        if (j->status.code && first < 0) first = i;
    }
    for (int k = 0; k < m; k++)
        free(items[k].out);
    for (int i = 0; i < n; i++)
        scan_free(&s[i]);
    sotto_decoder_free(dec);
    free(s);
    free(items);
    free(idx);
    if (first < 0) return SOTTO_OK;
    if (st) *st = jobs[first].status;
    return jobs[first].status.code;
}

/* ---- writing ----------------------------------------------------------------------------- */

sotto_codec_write_params sotto_codec_default_write_params(void)
{
    sotto_codec_write_params p;
    memset(&p, 0, sizeof p);
    p.length = -1;
    p.page_ms = 5000;
    return p;
}

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

int sotto_codec_write_file(const sotto_model *model, const char *path, const int32_t *lengths,
                           const int32_t *fsq, const int32_t *rvq, int n_groups, int n_stages,
                           const sotto_codec_write_params *params, sotto_status *st)
{
    sotto_status_clear(st);
    if (!model || !path)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL %s", !model ? "model" : "path");
    sotto_packet_layout l;
    int rc = flexicodec_model_layout(model, &l, st);
    if (rc) return rc;
    sotto_codec_write_params p = params ? *params : sotto_codec_default_write_params();
    const int rate = flexicodec_model_rate(model), hop = flexicodec_model_hop(model);
    if (n_groups < 0 || n_stages < 0 || n_stages > l.max_stages)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "%d groups of %d stages (the model has 0..%d stages)", n_groups,
                                n_stages, l.max_stages);
    if (n_groups > 0 && (!lengths || !fsq || (n_stages > 0 && !rvq)))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL lengths, fsq or rvq");
    if (p.pre_skip < 0 || p.pre_skip > rate || p.input_rate_hz < 0 || p.n_comments < 0 ||
        (p.n_comments > 0 && !p.comments))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "pre_skip %lld (0..%d), input_rate %d or comments invalid",
                                (long long)p.pre_skip, rate, p.input_rate_hz);
    int64_t T = 0;
    for (int g = 0; g < n_groups; g++) {
        if (lengths[g] < 1 || lengths[g] > l.max_group_len)
            return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                    "group %d: length %d out of range 1..%d", g, (int)lengths[g],
                                    l.max_group_len);
        T += lengths[g];
    }
    const int64_t decoded = flexicodec_model_out_len(model, T);
    const int64_t avail = decoded > p.pre_skip ? decoded - p.pre_skip : 0;
    int64_t length = p.length < 0 ? avail : p.length;
    if (length > avail)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "length %lld exceeds the %lld samples the groups decode to after "
                                "pre-skip %lld",
                                (long long)p.length, (long long)avail, (long long)p.pre_skip);

    sotto_oggmap_head h;
    memset(&h, 0, sizeof h);
    h.version = SOTTO_OGGMAP_VERSION;
    snprintf(h.codec, sizeof h.codec, "%s", CODEC_NAME);
    if ((rc = sotto_model_identity(model, h.model_id)))
        return sotto_status_set(st, rc, "cannot compute the model's identity");
    const int64_t gd = gcd64(rate, hop);
    h.sample_rate = (uint32_t)rate;
    h.input_rate = (uint32_t)p.input_rate_hz;
    h.frame_rate_num = (uint32_t)(rate / gd);
    h.frame_rate_den = (uint32_t)(hop / gd);
    h.pre_skip = (uint32_t)p.pre_skip;
    h.layout = l;
    sotto_oggmap_writer_params wp = sotto_oggmap_writer_default_params();
    wp.page_ms = p.page_ms;
    wp.comments = p.comments;
    wp.n_comments = p.n_comments;

    size_t max_bytes = 0;
    if ((rc = sotto_packet_size(&l, l.max_groups, l.max_stages, &max_bytes)))
        return sotto_status_set(st, rc, "packet layout");
    uint8_t *buf = malloc(max_bytes ? max_bytes : 1);
    if (!buf) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(buf);
        return sotto_status_set(st, SOTTO_ERR_IO, "%s: %s", path, strerror(errno));
    }
    sotto_oggmap_writer *w = NULL;
    if ((rc = sotto_oggmap_writer_open_file(&h, &wp, f, &w, st))) goto done;
    for (int g = 0; g < n_groups;) {
        /* a packet: up to max_groups groups, closed once it spans one second */
        int n = 0;
        int64_t span = 0;
        while (g + n < n_groups && n < l.max_groups && span * hop < rate)
            span += lengths[g + n++];
        size_t bytes = 0;
        rc = sotto_packet_pack(&l, n, n_stages, lengths + g, fsq + g,
                               rvq ? rvq + (size_t)g * (size_t)n_stages : NULL, n_stages, buf,
                               max_bytes, &bytes, st);
        if (rc) {
            if (st) {
                char m[sizeof st->message];
                snprintf(m, sizeof m, "%s", st->message);
                sotto_status_set(st, rc, "group %d..%d: %.200s", g, g + n - 1, m);
            }
            goto done;
        }
        if ((rc = sotto_oggmap_writer_packet(w, buf, bytes, st))) goto done;
        g += n;
    }
    rc = sotto_oggmap_writer_finish(w, length, st);
done:
    sotto_oggmap_writer_free(w);
    if (fclose(f) != 0 && !rc)
        rc = sotto_status_set(st, SOTTO_ERR_IO, "%s: %s", path, strerror(errno));
    if (rc == SOTTO_ERR_IO && st && !strstr(st->message, path)) {
        char m[sizeof st->message];
        snprintf(m, sizeof m, "%s", st->message);
        sotto_status_set(st, rc, "%s: %.200s", path, m);
    }
    if (rc) remove(path);
    free(buf);
    return rc;
}
