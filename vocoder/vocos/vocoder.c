/*
 * The Vocos vocoder stream (sotto_vocoder.h): exact chunked streaming of a non-causal but
 * finite-receptive-field model.
 *
 * Every backbone conv (the embedding and each ConvNeXt block's depthwise conv) has k = 7 and
 * zero padding 3. A stage keeps the last 6 input frames; once 3 frames of right context exist
 * a frame's output is final and moves on, so each of the 1 + L stages adds 3 frames of
 * look-ahead. The stage starts with 3 zero frames (the left padding) and flush pushes 3 zero
 * frames (the right padding), which makes the streamed frames equal the offline ones. All
 * per-frame layers (LayerNorm, the MLP, the head) run on whatever frames come out. The ISTFT
 * overlap-add then releases hop samples per frame (sotto_istft_stream), identical to the
 * offline torch.istft / Vocos "same" inverse. For audio input, the model's own mel front end
 * runs on the reflect-padded signal as it arrives; the frames that touch the right edge wait
 * for flush, which knows where the signal ends.
 */
#include <math.h>
#include <string.h>

#include "core/arena.h"
#include "core/threadpool.h"
#include "dsp/mel.h"
#include "dsp/stft.h"
#include "sotto/sotto_vocoder.h"
#include "vocoder/vocos/vocos.h"
#include "vocoder/vocos/vocos_cuda.h"

/* Frames of a conv stage's history: k − 1. */
#define HIST (VOCOS_KERNEL - 1)
/* At flush every stage receives its upstream's tail plus 3 zero frames. */
#define FLUSH_FRAMES(L) (VOCOS_HALF * ((L) + 1))

typedef struct conv_stage {
    float *buf; /* [(HIST + cap)][C]: history then new frames */
    int have;   /* frames in buf */
    int C;
} conv_stage;

struct sotto_vocoder {
    const sotto_model *model;
    const vocos_weights *w;
    sotto_vocoder_params params;
    sotto_status err;
    sotto_arena arena;
    sotto_threadpool *tp;  /* model params' n_threads > 1, else NULL */
    sotto_cpu cpu;         /* kernel table and pool for the layers */

    int cap;               /* frames one internal step handles */
    int bandwidth;         /* AdaLayerNorm row */
    int flushed;
    int mode;              /* MODE_* below: features/codes or audio, fixed until reset */
    int64_t frames_in;     /* feature frames accepted since reset */

    conv_stage embed;      /* C = input_channels */
    conv_stage *blocks;    /* [L], C = dim */
    float *x, *y, *h;      /* [cap][dim], [cap][dim], [cap][intermediate] */
    float *spec;           /* [cap][n_fft + 2] head output, then complex bins */
    float *feat;           /* [cap][input_channels] features made from codes or audio */
    sotto_stft *istft_plan;
    sotto_istft_stream *istft;

#ifdef SOTTO_HAVE_CUDA
    /* a CUDA model: the frames run on the device (vocos_cuda.h), which releases exactly the
     * samples the CPU path would; the mel front end, the codes' codebook sums (a few adds per
     * frame, cheaper here than a launch and an upload of the codes) and the accounting stay
     * here */
    vocos_cuda *cu;
    vocos_cuda_stream *cs;
#endif

    /* audio front end (mel models): a window on the reflect-padded signal xp */
    sotto_mel *mel;
    int mel_pad;           /* reflect padding at each end */
    float *pcm;            /* xp[pcm_base .. pcm_base + pcm_len) */
    int64_t pcm_cap;
    int64_t pcm_len;
    int64_t pcm_base;
    int64_t n_samples;     /* unpadded samples received */
    int64_t mel_next;      /* next mel frame to compute */
    int left_done;         /* xp[0 .. mel_pad) (the left reflection) is written */
};

/* ---------------------------------------------------------------------------------------- */

sotto_vocoder_params sotto_vocoder_default_params(void)
{
    sotto_vocoder_params p;
    memset(&p, 0, sizeof p);
    p.max_chunk_frames = 64;
    p.bandwidth_id = 0;
    return p;
}

static int fail(sotto_vocoder *v, int code, const char *msg)
{
    return sotto_status_set(&v->err, code, "%s", msg);
}

const char *sotto_vocoder_last_error(const sotto_vocoder *v)
{
    return v ? v->err.message : "";
}

int sotto_vocoder_sample_rate_hz(const sotto_vocoder *v)
{
    return v ? v->w->hp.sample_rate : 0;
}

int sotto_vocoder_hop_samples(const sotto_vocoder *v)
{
    return v ? v->w->hp.hop_length : 0;
}

int sotto_vocoder_feature_dim(const sotto_vocoder *v)
{
    return v ? v->w->hp.input_channels : 0;
}

int sotto_vocoder_num_codebooks(const sotto_vocoder *v)
{
    if (!v || v->w->hp.features != VOCOS_FEAT_ENCODEC) return 0;
    return v->w->hp.codebooks_per_bw[v->bandwidth < v->w->hp.n_bandwidths ? v->bandwidth : 0];
}

int sotto_vocoder_lookahead_frames(const sotto_vocoder *v)
{
    if (!v) return 0;
    const vocos_hparams *hp = &v->w->hp;
    /* Backbone: 3 frames per stage. ISTFT: a sample is final once no later frame overlaps it,
     * i.e. after the frames within n_fft − hop − trim samples. */
    int trim = sotto_istft_trim(v->istft_plan);
    int ola = (hp->n_fft - hp->hop_length - trim + hp->hop_length - 1) / hp->hop_length;
    return VOCOS_HALF * (hp->num_layers + 1) + (ola > 0 ? ola : 0);
}

int sotto_vocoder_lookahead_samples(const sotto_vocoder *v)
{
    if (!v) return 0;
    /* How far the released output trails the offline output of the frames pushed so far:
     * the same for every T beyond the backbone delay (see released_after below). */
    const vocos_hparams *hp = &v->w->hp;
    int64_t T = FLUSH_FRAMES(hp->num_layers) + 64;
    int64_t released = (T - FLUSH_FRAMES(hp->num_layers)) * hp->hop_length -
                       sotto_istft_trim(v->istft_plan);
    return (int)(sotto_istft_length(v->istft_plan, T) - released);
}

size_t sotto_vocoder_max_output_samples(const sotto_vocoder *v, int n_frames)
{
    if (!v || n_frames < 0) return 0;
    const vocos_hparams *hp = &v->w->hp;
    /* A push releases at most hop samples per frame it completes (≤ frames pushed); a flush
     * releases the 3(L+1) frames held in the backbone plus the overlap tail. */
    size_t frames = (size_t)n_frames + (size_t)FLUSH_FRAMES(hp->num_layers) + 2;
    return frames * (size_t)hp->hop_length + (size_t)hp->n_fft;
}

/* ---- conv stages ------------------------------------------------------------------------ */

static void stage_reset(conv_stage *s)
{
    /* The left zero padding of the offline conv. */
    memset(s->buf, 0, sizeof(float) * (size_t)VOCOS_HALF * (size_t)s->C);
    s->have = VOCOS_HALF;
}

/* Appends n frames (NULL: zero frames, the right padding at flush); returns how many frames
 * now have their full window, i.e. how many outputs the stage can produce. */
static int stage_append(conv_stage *s, const float *x, int n)
{
    float *dst = s->buf + (size_t)s->have * (size_t)s->C;
    if (x)
        memcpy(dst, x, sizeof(float) * (size_t)n * (size_t)s->C);
    else
        memset(dst, 0, sizeof(float) * (size_t)n * (size_t)s->C);
    s->have += n;
    return s->have > HIST ? s->have - HIST : 0;
}

/* Drops the frames no later output needs, keeping the last HIST. */
static void stage_shift(conv_stage *s)
{
    if (s->have <= HIST) return;
    memmove(s->buf, s->buf + (size_t)(s->have - HIST) * (size_t)s->C,
            sizeof(float) * (size_t)HIST * (size_t)s->C);
    s->have = HIST;
}

/* LayerNorm or AdaLayerNorm (the plain LN, then the bandwidth row's scale and shift). */
static int norm(const sotto_vocoder *v, const float *lw, const float *lb, const float *as,
                const float *ash, float *x, int n)
{
    const int C = v->w->hp.dim;
    if (as)
        return sotto_layernorm(&v->cpu, x, n, C, as + (size_t)v->bandwidth * C,
                               ash + (size_t)v->bandwidth * C, 1e-6f, x);
    return sotto_layernorm(&v->cpu, x, n, C, lw, lb, 1e-6f, x);
}

/* The layers only fail on arguments the stream sized itself: report it, never crash. */
static int op_failed(sotto_vocoder *v, int64_t rc)
{
    return sotto_status_set(&v->err, rc < 0 ? (int)rc : SOTTO_ERR_INTERNAL,
                            "internal error: a layer rejected its arguments");
}

/* One ConvNeXt block: appends n_in frames (and, with `final`, the right padding), then writes
 * the outputs that are complete to out (which may alias in). Returns their count. */
static int block_run(sotto_vocoder *v, const vocos_block *b, conv_stage *s, const float *in,
                     int n_in, int final, float *out)
{
    const vocos_hparams *hp = &v->w->hp;
    const int C = hp->dim;
    int n = n_in > 0 ? stage_append(s, in, n_in) : 0;
    if (final) n = stage_append(s, NULL, VOCOS_HALF);
    if (n == 0) return 0;
    float *dw = v->y, *h = v->h;
    int64_t rc;
    if ((rc = sotto_conv1d(&v->cpu, &b->dw, b->dw_b, s->buf, s->have, dw)) != n ||
        (rc = norm(v, b->ln_w, b->ln_b, b->ada_scale, b->ada_shift, dw, n)) ||
        (rc = sotto_linear(&v->cpu, &b->pw1, b->pw1_b, dw, n, h)) ||
        (rc = sotto_gelu_erf(&v->cpu, h, (int64_t)n * hp->intermediate_dim, h)) ||
        (rc = sotto_linear(&v->cpu, &b->pw2, b->pw2_b, h, n, dw)))
        return op_failed(v, rc);
    /* Residual: output frame j is centred on buffered input frame j + 3. */
    const float *res = s->buf + (size_t)VOCOS_HALF * C;
    for (int j = 0; j < n; j++) {
        const float *r = res + (size_t)j * C, *d = dw + (size_t)j * C;
        float *o = out + (size_t)j * C;
        if (b->gamma)
            for (int c = 0; c < C; c++) o[c] = r[c] + b->gamma[c] * d[c];
        else
            for (int c = 0; c < C; c++) o[c] = r[c] + d[c];
    }
    stage_shift(s);
    return n;
}

/* Head + ISTFT for n backbone frames in x; appends released samples to out. */
static int64_t head_run(sotto_vocoder *v, const float *x, int n, float *out)
{
    const vocos_hparams *hp = &v->w->hp;
    const int F = hp->n_fft / 2 + 1, W = hp->n_fft + 2;
    int rc = sotto_linear(&v->cpu, &v->w->head, v->w->head_b, x, n, v->spec);
    if (rc) return op_failed(v, rc);
    int64_t total = 0;
    for (int j = 0; j < n; j++) {
        /* [log-magnitude | phase] → complex bins, in place (bins interleave re/im). */
        float *row = v->spec + (size_t)j * W;
        /* h holds at least cap2 ≥ 3 rows of W = 2F floats: room for the sine and cosine of
         * the phase and a copy of the log-magnitude (the bins overwrite the row in place) */
        float *sn = v->h, *cs = v->h + F, *mag = v->h + 2 * (size_t)F;
        if ((rc = sotto_sincos(&v->cpu, row + F, F, sn, cs))) return op_failed(v, rc);
        memcpy(mag, row, sizeof(float) * (size_t)F);
        for (int f = 0; f < F; f++) {
            float m = expf(mag[f]);
            if (m > 100.0f) m = 100.0f;
            row[2 * f] = m * cs[f];
            row[2 * f + 1] = m * sn[f];
        }
        int64_t got = sotto_istft_stream_push(v->istft, row, out + total, hp->hop_length);
        if (got < 0) return got;
        total += got;
    }
    return total;
}

/* Runs n feature frames (n ≤ cap; NULL at flush) through the backbone and head. With
 * `final`, every stage also receives its right padding. */
static int64_t run_frames(sotto_vocoder *v, const float *feat, int n, int final, float *out)
{
    const vocos_weights *w = v->w;
    const vocos_hparams *hp = &w->hp;
    int m = 0;
    if (n > 0) m = stage_append(&v->embed, feat, n);
    if (final) m = stage_append(&v->embed, NULL, VOCOS_HALF);
    if (m > 0) {
        int64_t rc = sotto_conv1d(&v->cpu, &w->embed, w->embed_b, v->embed.buf, v->embed.have,
                                  v->x);
        if (rc != m) return op_failed(v, rc);
        stage_shift(&v->embed);
        if ((rc = norm(v, w->norm_w, w->norm_b, w->norm_ada_scale, w->norm_ada_shift, v->x, m)))
            return op_failed(v, rc);
    }
    for (int i = 0; i < hp->num_layers; i++) {
        m = block_run(v, &w->blocks[i], &v->blocks[i], v->x, m, final, v->x);
        if (m < 0) return m;
    }
    if (m == 0) return 0;
    int rc = sotto_layernorm(&v->cpu, v->x, m, hp->dim, w->final_w, w->final_b, 1e-6f, v->x);
    if (rc) return op_failed(v, rc);
    return head_run(v, v->x, m, out);
}

/* ---- output accounting ------------------------------------------------------------------ */

/* Samples released once n feature frames have gone in (before flush): frame t reaches the
 * head when t + 3(L+1) frames are in, and the overlap-add then releases up to OLA position
 * (t+1)·hop, less the trim. */
static int64_t released_after(const sotto_vocoder *v, int64_t n)
{
    const vocos_hparams *hp = &v->w->hp;
    int64_t h = n - FLUSH_FRAMES(hp->num_layers);
    int64_t r = h * hp->hop_length - sotto_istft_trim(v->istft_plan);
    return h > 0 && r > 0 ? r : 0;
}

/* Mel frames computable from the first n unpadded samples before the end is known. */
static int64_t mel_ready(const sotto_vocoder *v, int64_t n)
{
    const vocos_hparams *hp = &v->w->hp;
    if (n <= v->mel_pad) return 0; /* the left reflection needs pad + 1 samples */
    int64_t avail = v->mel_pad + n - hp->mel_n_fft;
    return avail < 0 ? 0 : avail / hp->hop_length + 1;
}

/* ---- life cycle ------------------------------------------------------------------------- */

static void reset_state(sotto_vocoder *v)
{
#ifdef SOTTO_HAVE_CUDA
    if (v->cs) (void)vocos_cuda_stream_reset(v->cs); /* a failed device says so at the next push */
#endif
    stage_reset(&v->embed);
    for (int i = 0; i < v->w->hp.num_layers; i++) stage_reset(&v->blocks[i]);
    sotto_istft_stream_reset(v->istft);
    v->frames_in = 0;
    v->flushed = 0;
    v->mode = 0;
    v->pcm_len = v->pcm_base = v->n_samples = v->mel_next = 0;
    v->left_done = 0;
    sotto_status_clear(&v->err);
}

int sotto_vocoder_create(const sotto_model *model, const sotto_vocoder_params *params,
                         sotto_vocoder **out, sotto_status *st)
{
    sotto_status_clear(st);
    if (!model || !out) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "model/out is NULL");
    *out = NULL;
    if (strcmp(model->arch, "vocos") || !model->arch_data)
        return sotto_status_set(st, SOTTO_ERR_UNSUPPORTED,
                                "model architecture '%s' is not a vocoder (expected vocos)",
                                model->arch);
    sotto_vocoder_params p = params ? *params : sotto_vocoder_default_params();
    const vocos_weights *w = model->arch_data;
    const vocos_hparams *hp = &w->hp;
    if (p.max_chunk_frames < 1 || p.max_chunk_frames > 4096)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "max_chunk_frames %d out of range 1..4096", p.max_chunk_frames);
    if (p.max_batch_frames < 0 || p.max_batch_frames > (1 << 20))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "max_batch_frames %d out of range 0..%d", p.max_batch_frames,
                                1 << 20);
    int n_bw = hp->adanorm_num_embeddings;
    if (p.bandwidth_id < 0 || (n_bw && p.bandwidth_id >= n_bw) || (!n_bw && p.bandwidth_id))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "bandwidth_id %d out of range (model has %d rows)",
                                p.bandwidth_id, n_bw);

    const sotto_alloc *a = &model->alloc;
    sotto_vocoder *v = sotto_calloc(a, 1, sizeof *v);
    if (!v) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    v->model = model;
    v->w = w;
    v->params = p;
    v->bandwidth = p.bandwidth_id;
    v->cap = p.max_chunk_frames;
    int rc;

    const int L = hp->num_layers, C = hp->dim, Cin = hp->input_channels;
    const size_t cap2 = (size_t)(v->cap > FLUSH_FRAMES(L) ? v->cap : FLUSH_FRAMES(L));
    const size_t stage_frames = HIST + cap2 + VOCOS_HALF;
    const size_t wide = (size_t)(hp->intermediate_dim > hp->n_fft + 2 ? hp->intermediate_dim
                                                                       : hp->n_fft + 2);
    size_t floats = stage_frames * (size_t)Cin + (size_t)L * stage_frames * C + 2 * cap2 * C +
                    cap2 * wide + cap2 * (size_t)(hp->n_fft + 2) + cap2 * (size_t)Cin;

    sotto_stft_params sp = sotto_stft_default_params();
    sp.n_fft = hp->n_fft;
    sp.hop_length = hp->hop_length;
    sp.pad = hp->head_pad_same ? SOTTO_STFT_PAD_SAME : SOTTO_STFT_PAD_CENTER;
    sp.window = w->head_window;
    if ((rc = sotto_stft_create(&sp, a, &v->istft_plan, st)) ||
        (rc = sotto_istft_stream_create(v->istft_plan, a, &v->istft, st)))
        goto fail;

    if (hp->features == VOCOS_FEAT_MEL) {
        sotto_mel_params mp = sotto_mel_default_params();
        mp.sample_rate_hz = hp->sample_rate;
        mp.n_fft = hp->mel_n_fft;
        mp.hop_length = hp->mel_hop;
        mp.n_mels = hp->mel_n_mels;
        mp.pad = hp->mel_pad_same ? SOTTO_STFT_PAD_SAME : SOTTO_STFT_PAD_CENTER;
        mp.window = w->mel_window;
        mp.fbank = w->mel_fb;
        if ((rc = sotto_mel_create(&mp, a, &v->mel, st))) goto fail;
        v->mel_pad = sotto_stft_pad_samples(sotto_mel_stft(v->mel));
        v->pcm_cap = 2 * (int64_t)v->mel_pad + 2 * (int64_t)hp->mel_n_fft +
                     (int64_t)v->cap * hp->hop_length + hp->hop_length;
        floats += (size_t)v->pcm_cap;
    }

    if ((rc = sotto_arena_init(&v->arena, a, floats * sizeof(float) + 64 * 16))) {
        sotto_status_set(st, rc, "out of memory for vocoder buffers");
        goto fail;
    }
    v->blocks = sotto_calloc(a, (size_t)(L ? L : 1), sizeof *v->blocks);
    if (!v->blocks) {
        rc = sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    v->embed.C = Cin;
    v->embed.buf = sotto_arena_floats(&v->arena, stage_frames * (size_t)Cin);
    for (int i = 0; i < L; i++) {
        v->blocks[i].C = C;
        v->blocks[i].buf = sotto_arena_floats(&v->arena, stage_frames * (size_t)C);
    }
    v->x = sotto_arena_floats(&v->arena, cap2 * C);
    v->y = sotto_arena_floats(&v->arena, cap2 * C);
    v->h = sotto_arena_floats(&v->arena, cap2 * wide);
    v->spec = sotto_arena_floats(&v->arena, cap2 * (size_t)(hp->n_fft + 2));
    v->feat = sotto_arena_floats(&v->arena, cap2 * (size_t)Cin);
    if (v->mel) v->pcm = sotto_arena_floats(&v->arena, (size_t)v->pcm_cap);
    if (!v->x || !v->y || !v->h || !v->spec || !v->feat || (v->mel && !v->pcm)) {
        rc = sotto_status_set(st, SOTTO_ERR_INTERNAL, "vocoder arena too small");
        goto fail;
    }

    if (model->params.n_threads > 1 &&
        (rc = sotto_threadpool_create(model->params.n_threads, a, &v->tp))) {
        sotto_status_set(st, rc, "cannot start %d worker threads", model->params.n_threads);
        goto fail;
    }
    sotto_cpu_init(&v->cpu, model->cpu_features, v->tp);
#ifdef SOTTO_HAVE_CUDA
    const int window = vocos_cuda_stream_window_frames(w, v->cap);
    if (model->backend_used == SOTTO_BACKEND_CUDA &&
        ((rc = vocos_cuda_create_shared(w->cuda,
                                        p.max_batch_frames > window ? p.max_batch_frames : window,
                                        &v->cu, st)) ||
         (rc = vocos_cuda_stream_create(v->cu, v->cap, 1, &v->cs, st)) ||
         (v->mel && (rc = vocos_cuda_stream_enable_mel(v->cs, v->mel, st)))))
        goto fail;
    if (v->cu && hp->adanorm_num_embeddings &&
        (rc = vocos_cuda_set_bandwidth(v->cu, v->bandwidth))) {
        sotto_status_set(st, rc, "%s", vocos_cuda_last_error(v->cu));
        goto fail;
    }
#endif

    reset_state(v);
    *out = v;
    return SOTTO_OK;
fail:
    sotto_vocoder_free(v);
    return rc;
}

void sotto_vocoder_free(sotto_vocoder *v)
{
    if (!v) return;
    const sotto_alloc *a = &v->model->alloc;
#ifdef SOTTO_HAVE_CUDA
    vocos_cuda_stream_free(v->cs);
    vocos_cuda_free(v->cu);
#endif
    sotto_istft_stream_destroy(v->istft);
    sotto_stft_destroy(v->istft_plan);
    sotto_mel_destroy(v->mel);
    sotto_arena_free(&v->arena);
    sotto_threadpool_free(v->tp);
    sotto_free(a, v->blocks);
    sotto_free(a, v);
}

int sotto_vocoder_reset(sotto_vocoder *v)
{
    if (!v) return SOTTO_ERR_INVALID_ARG;
    reset_state(v);
    return SOTTO_OK;
}

int sotto_vocoder_set_bandwidth(sotto_vocoder *v, int id)
{
    if (!v) return SOTTO_ERR_INVALID_ARG;
    int n = v->w->hp.adanorm_num_embeddings;
    if (!n) return fail(v, SOTTO_ERR_UNSUPPORTED, "model is not bandwidth-conditioned");
    if (id < 0 || id >= n) return fail(v, SOTTO_ERR_INVALID_ARG, "bandwidth id out of range");
#ifdef SOTTO_HAVE_CUDA
    /* the device's copy of the rows; mid-signal it applies to every frame the next step
     * recomputes (vocos_cuda.h), not only to frames pushed next */
    if (v->cu) {
        const int rc = vocos_cuda_set_bandwidth(v->cu, id);
        if (rc)
            return sotto_status_set(&v->err, rc, "CUDA vocoder bandwidth: %s",
                                    vocos_cuda_last_error(v->cu));
    }
#endif
    v->bandwidth = id;
    return SOTTO_OK;
}

/* ---- push / flush ----------------------------------------------------------------------- */

enum { MODE_NONE = 0, MODE_FEATURES = 1, MODE_AUDIO = 2 };

static int check_push(sotto_vocoder *v, const void *in, int64_t n, const float *out,
                      int mode)
{
    if (!v) return SOTTO_ERR_INVALID_ARG;
    if (n < 0 || (n > 0 && !in) || !out)
        return fail(v, SOTTO_ERR_INVALID_ARG, "NULL buffer or negative count");
    if (v->flushed) return fail(v, SOTTO_ERR_STATE, "stream was flushed: call reset first");
    if (v->mode != MODE_NONE && v->mode != mode)
        return fail(v, SOTTO_ERR_STATE,
                    "features and audio cannot be mixed in one stream: call reset first");
    return SOTTO_OK;
}

/* Runs n ≥ 0 frames of features already validated, in steps of at most cap frames, into
 * out (room samples, at least what the frames release). */
static int64_t feed(sotto_vocoder *v, const float *feat, int64_t n, float *out, int64_t room)
{
    const int Cin = v->w->hp.input_channels;
    int64_t total = 0;
    for (int64_t i = 0; i < n; i += v->cap) {
        int k = (int)(n - i < v->cap ? n - i : v->cap);
        int64_t got;
#ifdef SOTTO_HAVE_CUDA
        if (v->cs) {
            got = vocos_cuda_stream_push(v->cs, feat + (size_t)i * Cin, k, out + total,
                                         room - total);
            if (got < 0)
                return sotto_status_set(&v->err, (int)got, "CUDA vocoder step failed: %s",
                                        vocos_cuda_last_error(v->cu));
        } else
#endif
        {
            got = run_frames(v, feat + (size_t)i * Cin, k, 0, out + total);
        }
        if (got < 0) return got;
        total += got;
    }
    v->frames_in += n;
    return total;
}

int sotto_vocoder_push_features(sotto_vocoder *v, const float *frames, int n, float *out,
                                size_t capacity)
{
    int rc = check_push(v, frames, n, out, MODE_FEATURES);
    if (rc) return rc;
    const int Cin = v->w->hp.input_channels;
    for (int64_t i = 0; i < (int64_t)n * Cin; i++)
        if (!isfinite(frames[i])) return fail(v, SOTTO_ERR_BAD_AUDIO, "non-finite feature value");
    int64_t need = released_after(v, v->frames_in + n) - released_after(v, v->frames_in);
    if ((uint64_t)need > capacity)
        return fail(v, SOTTO_ERR_BUFFER_TOO_SMALL, "output capacity below the samples released");
    v->mode = MODE_FEATURES;
    return (int)feed(v, frames, n, out, need);
}

int sotto_vocoder_push_codes(sotto_vocoder *v, const int32_t *codes, int n, float *out,
                             size_t capacity)
{
    int rc = check_push(v, codes, n, out, MODE_FEATURES);
    if (rc) return rc;
    const vocos_hparams *hp = &v->w->hp;
    if (hp->features != VOCOS_FEAT_ENCODEC)
        return fail(v, SOTTO_ERR_UNSUPPORTED, "model takes mel features, not codes");
    const int nq = sotto_vocoder_num_codebooks(v), Cin = hp->input_channels;
    for (int64_t i = 0; i < (int64_t)n * nq; i++)
        if (codes[i] < 0 || codes[i] >= hp->codebook_bins)
            return fail(v, SOTTO_ERR_INVALID_ARG, "code index outside the codebook");
    int64_t need = released_after(v, v->frames_in + n) - released_after(v, v->frames_in);
    if ((uint64_t)need > capacity)
        return fail(v, SOTTO_ERR_BUFFER_TOO_SMALL, "output capacity below the samples released");
    v->mode = MODE_FEATURES;
    int64_t total = 0;
    for (int64_t i = 0; i < n; i += v->cap) {
        int k = (int)(n - i < v->cap ? n - i : v->cap);
        /* Sum of the selected rows of each codebook (codebook q's rows start at q·bins). */
        for (int j = 0; j < k; j++) {
            float *f = v->feat + (size_t)j * Cin;
            memset(f, 0, sizeof(float) * (size_t)Cin);
            for (int q = 0; q < nq; q++) {
                const float *row = v->w->codebooks +
                                   ((size_t)q * hp->codebook_bins + codes[(i + j) * nq + q]) * Cin;
                for (int c = 0; c < Cin; c++) f[c] += row[c];
            }
        }
        int64_t got = feed(v, v->feat, k, out + total, need - total);
        if (got < 0) return (int)got;
        total += got;
    }
    return (int)total;
}

/* Computes mel frames [mel_next, upto) from the padded window and runs them into out (room
 * samples, at least what they release). */
static int64_t run_mel(sotto_vocoder *v, int64_t upto, float *out, int64_t room)
{
    const vocos_hparams *hp = &v->w->hp;
    int64_t total = 0;
    while (v->mel_next < upto) {
        int64_t k = upto - v->mel_next < v->cap ? upto - v->mel_next : v->cap;
        int64_t off = v->mel_next * hp->hop_length - v->pcm_base;
        int64_t got;
#ifdef SOTTO_HAVE_CUDA
        if (v->cs) {
            /* the mel front end on the device too: only the samples go up */
            got = vocos_cuda_stream_push_padded(v->cs, v->pcm + off, v->pcm_len - off, (int)k,
                                                out + total, room - total);
            if (got < 0)
                return sotto_status_set(&v->err, (int)got, "CUDA vocoder step failed: %s",
                                        vocos_cuda_last_error(v->cu));
            v->mel_next += k;
            v->frames_in += k;
            total += got;
            continue;
        }
#endif
        got = sotto_mel_frames(v->mel, v->pcm + off, v->pcm_len - off, k, v->feat, k);
        if (got < 0) return got;
        v->mel_next += k;
        got = feed(v, v->feat, k, out + total, room - total);
        if (got < 0) return got;
        total += got;
    }
    /* Keep n_fft samples before the next frame: the right reflection at flush reads them. */
    int64_t keep_from = v->mel_next * hp->hop_length - hp->mel_n_fft;
    if (keep_from > v->pcm_base) {
        int64_t drop = keep_from - v->pcm_base;
        if (drop > v->pcm_len) drop = v->pcm_len;
        memmove(v->pcm, v->pcm + drop, sizeof(float) * (size_t)(v->pcm_len - drop));
        v->pcm_len -= drop;
        v->pcm_base += drop;
    }
    return total;
}

int sotto_vocoder_push_audio(sotto_vocoder *v, const float *pcm, size_t n, float *out,
                             size_t capacity)
{
    int rc = check_push(v, pcm, n > INT32_MAX ? -1 : (int64_t)n, out, MODE_AUDIO);
    if (rc) return rc;
    if (!v->mel) return fail(v, SOTTO_ERR_UNSUPPORTED, "model has no audio front end");
    for (size_t i = 0; i < n; i++)
        if (!isfinite(pcm[i])) return fail(v, SOTTO_ERR_BAD_AUDIO, "NaN or Inf sample in input");
    int64_t frames = mel_ready(v, v->n_samples + (int64_t)n) - mel_ready(v, v->n_samples);
    int64_t need = released_after(v, v->frames_in + frames) - released_after(v, v->frames_in);
    if ((uint64_t)need > capacity)
        return fail(v, SOTTO_ERR_BUFFER_TOO_SMALL, "output capacity below the samples released");
    if (need > INT32_MAX) return fail(v, SOTTO_ERR_INVALID_ARG, "push too large");
    v->mode = MODE_AUDIO;

    const vocos_hparams *hp = &v->w->hp;
    const int64_t slice = (int64_t)v->cap * hp->hop_length;
    int64_t total = 0;
    for (size_t i = 0; i < n;) {
        int64_t k = (int64_t)(n - i) < slice ? (int64_t)(n - i) : slice;
        /* Raw sample j sits at padded index pad + j. */
        memcpy(v->pcm + v->pcm_len, pcm + i, sizeof(float) * (size_t)k);
        if (!v->left_done && v->pcm_len == 0) {
            /* First samples: leave room for the left reflection. */
            memmove(v->pcm + v->mel_pad, v->pcm, sizeof(float) * (size_t)k);
            v->pcm_len = v->mel_pad;
        }
        v->pcm_len += k;
        v->n_samples += k;
        i += (size_t)k;
        if (!v->left_done) {
            if (v->n_samples <= v->mel_pad) continue;
            for (int j = 0; j < v->mel_pad; j++) v->pcm[j] = v->pcm[2 * v->mel_pad - j];
            v->left_done = 1;
        }
        int64_t got = run_mel(v, mel_ready(v, v->n_samples), out + total, need - total);
        if (got < 0) return (int)got;
        total += got;
    }
    return (int)total;
}

int sotto_vocoder_flush(sotto_vocoder *v, float *out, size_t capacity)
{
    if (!v) return SOTTO_ERR_INVALID_ARG;
    if (!out) return fail(v, SOTTO_ERR_INVALID_ARG, "NULL output buffer");
    if (v->flushed) return fail(v, SOTTO_ERR_STATE, "stream was flushed: call reset first");
    int64_t frames_total = v->frames_in;
    if (v->mode == MODE_AUDIO) {
        if (!v->left_done)
            return fail(v, SOTTO_ERR_INVALID_ARG,
                        "audio too short for the model's analysis window");
        frames_total += sotto_mel_num_frames(v->mel, v->n_samples) - v->mel_next;
    }
    int64_t need = frames_total > 0 ? sotto_istft_length(v->istft_plan, frames_total) -
                                          released_after(v, frames_total)
                                    : 0;
    if ((uint64_t)need > capacity)
        return fail(v, SOTTO_ERR_BUFFER_TOO_SMALL, "output capacity below the samples released");

    int64_t total = 0;
    if (v->mode == MODE_AUDIO) {
        /* The right reflection: padded pad + N + k mirrors raw N − 2 − k. */
        const int64_t N = v->n_samples, pad = v->mel_pad;
        for (int64_t k = 0; k < pad; k++)
            v->pcm[v->pcm_len + k] = v->pcm[pad + N - 2 - k - v->pcm_base];
        v->pcm_len += pad;
        int64_t got = run_mel(v, sotto_mel_num_frames(v->mel, N), out, (int64_t)capacity);
        if (got < 0) return (int)got;
        total += got;
    }
#ifdef SOTTO_HAVE_CUDA
    if (v->cs && v->frames_in > 0) {
        int64_t got = vocos_cuda_stream_flush(v->cs, out + total, (int64_t)capacity - total);
        if (got < 0)
            return sotto_status_set(&v->err, (int)got, "CUDA vocoder flush failed: %s",
                                    vocos_cuda_last_error(v->cu));
        total += got;
        v->flushed = 1;
        return (int)total;
    }
#endif
    if (v->frames_in > 0) {
        int64_t got = run_frames(v, NULL, 0, 1, out + total);
        if (got < 0) return (int)got;
        total += got;
        got = sotto_istft_stream_flush(v->istft, out + total, (int64_t)capacity - total);
        if (got < 0) return (int)got;
        total += got;
    }
    v->flushed = 1;
    return (int)total;
}

/* ---- batch ------------------------------------------------------------------------------- */

int64_t sotto_vocoder_offline_samples(const sotto_vocoder *v, int n_frames)
{
    if (!v || n_frames < 1) return 0;
    return sotto_istft_length(v->istft_plan, n_frames);
}

/* One item through the stream from a reset: push in steps of cap frames, then flush. */
static int vocode_one(sotto_vocoder *v, const sotto_vocoder_item *it)
{
    const int Cin = v->w->hp.input_channels;
    reset_state(v);
    int64_t total = 0;
    for (int i = 0; i < it->n_frames; i += v->cap) {
        const int k = it->n_frames - i < v->cap ? it->n_frames - i : v->cap;
        const int got = sotto_vocoder_push_features(v, it->frames + (size_t)i * Cin, k,
                                                    it->out + total,
                                                    it->capacity - (size_t)total);
        if (got < 0) return got;
        total += got;
    }
    const int got = sotto_vocoder_flush(v, it->out + total, it->capacity - (size_t)total);
    return got < 0 ? got : (int)(total + got);
}

/* What is wrong with an item before it runs (0: nothing). */
static int item_error(const sotto_vocoder *v, const sotto_vocoder_item *it)
{
    if (!it->frames || !it->out || it->n_frames < 1) return SOTTO_ERR_INVALID_ARG;
    if ((uint64_t)sotto_vocoder_offline_samples(v, it->n_frames) > it->capacity)
        return SOTTO_ERR_BUFFER_TOO_SMALL;
    const int64_t n = (int64_t)it->n_frames * v->w->hp.input_channels;
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(it->frames[i])) return SOTTO_ERR_BAD_AUDIO;
    return SOTTO_OK;
}

#ifdef SOTTO_HAVE_CUDA
/* The items idx[0..m) as one batched forward on the device. */
static void run_group(sotto_vocoder *v, sotto_vocoder_item *items, const int *idx, int m)
{
    enum { G = 64 };
    const float *fp[G] = {0};
    float *op[G] = {0};
    int fr[G] = {0};
    int64_t cp[G] = {0};
    if (m == 0) return;
    for (int j = 0; j < m; j++) {
        const sotto_vocoder_item *it = &items[idx[j]];
        fp[j] = it->frames;
        op[j] = it->out;
        fr[j] = it->n_frames;
        cp[j] = (int64_t)it->capacity;
    }
    const int64_t rc = vocos_cuda_offline_batch(v->cu, m, fp, fr, op, cp);
    for (int j = 0; j < m; j++)
        items[idx[j]].result = rc < 0 ? (int)rc : (int)sotto_vocoder_offline_samples(v, fr[j]);
}
#endif

int sotto_vocoder_vocode_batch(sotto_vocoder *v, sotto_vocoder_item *items, int n)
{
    if (!v) return SOTTO_ERR_INVALID_ARG;
    if (n < 0 || (n > 0 && !items)) return fail(v, SOTTO_ERR_INVALID_ARG, "bad item list");
    for (int i = 0; i < n; i++)
        items[i].result = item_error(v, &items[i]);
#ifdef SOTTO_HAVE_CUDA
    if (v->cu) {
        /* greedy groups: Σ frames + 3 zero frames per gap ≤ the context, at most 64 items */
        const int64_t maxf = vocos_cuda_max_frames(v->cu);
        int idx[64], m = 0;
        int64_t used = 0;
        for (int i = 0; i < n; i++) {
            sotto_vocoder_item *it = &items[i];
            if (it->result) continue;
            if (it->n_frames > maxf) {
                it->result = vocode_one(v, it);
                continue;
            }
            const int64_t add = it->n_frames + (m ? VOCOS_HALF : 0);
            if (m == 64 || used + add > maxf) {
                run_group(v, items, idx, m);
                m = 0;
                used = 0;
            }
            used += it->n_frames + (m ? VOCOS_HALF : 0);
            idx[m++] = i;
        }
        run_group(v, items, idx, m);
    } else
#endif
    {
        for (int i = 0; i < n; i++)
            if (!items[i].result) items[i].result = vocode_one(v, &items[i]);
    }
    reset_state(v);
    const char *detail = "";
#ifdef SOTTO_HAVE_CUDA
    if (v->cu) detail = vocos_cuda_last_error(v->cu);
#endif
    for (int i = 0; i < n; i++)
        if (items[i].result < 0) {
            sotto_status_set(&v->err, items[i].result, "batch item %d: %s%s%s", i,
                             sotto_strerror(items[i].result), detail[0] ? ": " : "", detail);
            return items[i].result;
        }
    return SOTTO_OK;
}
