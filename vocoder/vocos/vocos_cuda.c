/*
 * Vocos on the CUDA layer library (vocos_cuda.h): offline, batched and streaming forwards.
 * Load time converts the CPU loader's repacked weights back to PyTorch layout and uploads
 * them; every forward is one fixed sequence of cuda_ops.h layers (forward() below) on buffers
 * allocated at creation, over a packed layout of one or more sequences.
 *
 * Packing and padding: the CPU vocoder streams every k = 7 conv with 3 zero frames of history
 * at the start and 3 zero frames pushed at flush, which is zero padding 3 on each side of the
 * whole sequence. Here the features of every sequence sit in `feat` between 3 zero frames,
 * and the residual stream lives in rows [3, 3 + n) of `xp` laid out the same way: 3 zero
 * rows, sequence 0, 3 zero rows, sequence 1, ..., 3 zero rows. The outer 3 + 3 rows of xp are
 * never written; the gaps between sequences are, by every layer that runs over all n rows,
 * so they are zeroed again (one launch, offsets on the device) before each depthwise conv
 * reads them. Each block's depthwise conv then reads its padded input in place and its
 * pwconv2 adds onto the residual in one accumulating GEMM (γ folded into its rows and bias at
 * load). The ISTFT runs per sequence on its rows of the head's output.
 *
 * AdaLayerNorm (bandwidth-conditioned models): the plain LayerNorm with the scale and shift rows
 * of the selected bandwidth. The weights hold every row of every such norm on the device; each
 * context keeps the selected bandwidth's rows in one buffer of its own (ada_rows), which
 * vocos_cuda_set_bandwidth refills with one device copy on the context's stream. Every norm
 * reads that fixed address, so a captured graph never depends on the bandwidth: a replay reads
 * whatever rows the buffer holds when it runs, and the copy is ordered before it.
 *
 * EnCodec-feature models need nothing else here: their feature frames (the sum of the selected
 * codebook rows) are made on the host by the vocoder (vocoder.c, push_codes) and arrive like
 * mel frames.
 *
 * Streaming: a stream keeps the last max_step + 2R + K frames on the device (R = 3·(L + 1)
 * frames of receptive field per side, K = ⌊(n_fft − 1)/hop⌋ frames of ISTFT overlap),
 * right-aligned between zero frames and shifted by each push. After n frames the CPU vocoder
 * has released the output samples before (n − R)·hop − trim (vocoder.c, released_after); a
 * push releases the samples [s0, s1) between two such marks. Those depend on backbone frames
 * [⌈(s0 + trim − n_fft + 1)/hop⌉, n − R), and those on features from R frames earlier, so the
 * step runs the offline forward on the window of frames [a, n) with a = max(0, that − R) as
 * if it were a whole sequence, and copies out samples [s0 − a·hop, s1 − a·hop) of its
 * output. Frames of the window within R of its edges differ from the true ones (the window's
 * zero padding stands in for frames outside it), but none of them reaches those samples: the
 * overlap-add and the envelope at each of them sum exactly the frames of the whole signal
 * that cover it (at a = 0 the window's left padding is the signal's own). Flush is the same
 * with the signal's true right edge. A push of n frames in steady state always has the same
 * window size and buffer addresses, so it can be captured as a CUDA graph and replayed.
 *
 * Built only with the CUDA backend: sdk/CMakeLists.txt compiles every .c of the model folders and
 * defines SOTTO_HAVE_CUDA when the backend is built.
 */
#include "vocoder/vocos/vocos_cuda.h"

#ifdef SOTTO_HAVE_CUDA

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_graph.h"
#include "backend/cuda/cuda_mel.h"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/cuda_rows.h"
#include "dsp/mel.h"
#include "dsp/stft.h"

/* The ISTFT plan transforms at most this many frames per cuFFT call (longer inputs run in
 * blocks), which bounds its scratch (about 8 MB at n_fft 1024). */
#define ISTFT_BATCH 1024
/* The head's magnitude clip (vocos.spectral_ops: torch.clip(mag, max=1e2)). */
#define MAG_MAX 100.0f
#define LN_EPS 1e-6f
/* Most frames one stream push may take. */
#define MAX_STEP 4096
/* Graphs a stream keeps (one per push size): a steady size and the last, shorter push of a
 * signal both stay captured. */
#define GRAPH_SLOTS 4

typedef struct vocos_cuda_block {
    sotto_cuda_conv1d_w dw;
    sotto_cuda_linear_w pw1, pw2;              /* pw2: γ folded into its rows */
    float *dw_b, *ln_w, *ln_b, *pw1_b, *pw2_b; /* device; pw2_b = γ·b; ln_* NULL with ada */
} vocos_cuda_block;

/* Where one sequence of a packed forward lives: its first frame's row in the residual stream
 * (x = xp + 3 rows), its frame count, and where its samples start in `out`. */
typedef struct vocos_cuda_seg {
    int64_t row;
    int T;
    int64_t out_off;
} vocos_cuda_seg;

/* A model's weights on the device (vocos_cuda_weights_create): uploaded once through their
 * own context, which does nothing else; every vocos_cuda made on them reads them from its own
 * stream (device memory is shared by every stream of the process on that device). */
struct vocos_cuda_weights {
    sotto_cuda *cu;
    int device;
    vocos_hparams hp;
    int n_bins;
    sotto_cuda_conv1d_w embed;
    float *embed_b, *norm_w, *norm_b, *final_w, *final_b; /* norm_* NULL with AdaLayerNorm */
    /* AdaLayerNorm, else NULL: [n_emb][L + 1][2][C], for each bandwidth row the scale then the
     * shift of backbone.norm (norm 0) and of block i's norm (norm 1 + i), so one bandwidth's
     * rows are one contiguous run (ada_rows_len floats) */
    float *ada;
    size_t ada_rows_len;
    vocos_cuda_block *blocks;
    sotto_cuda_linear_w head_mag, head_phase; /* rows [0, F) and [F, 2F) of head.out */
    float *head_b;                            /* [2F]: magnitude bias, then phase bias */
    float *window;                            /* [n_fft] host: the ISTFT window */
};

struct vocos_cuda {
    sotto_cuda *cu;
    vocos_hparams hp;
    const vocos_cuda_weights *wt; /* read only */
    vocos_cuda_weights *own;      /* wt, when vocos_cuda_create made it for this context */
    int max_frames;
    int max_seqs; /* sequences one batch can hold: each ≥ 1 frame, 3 zero frames apart */
    int n_bins;   /* F = n_fft/2 + 1 */
    int trim;     /* ISTFT samples cut at each end (dsp/stft.h) */
    int tf32;
    sotto_cuda_istft *istft;
    /* activations (device) */
    float *feat;        /* [(max_frames + 6)][input_channels], zero frames around each input */
    float *xp;          /* [(max_frames + 6)][dim], the residual stream between zero frames */
    float *y;           /* [max_frames][dim] */
    float *h;           /* [max_frames][intermediate_dim] */
    float *mag, *phase; /* [max_frames][F] */
    float *out;         /* [out_cap] */
    int64_t out_cap;
    float *ada_rows; /* AdaLayerNorm: [L + 1][2][C] the selected bandwidth's rows, else NULL */
    int bandwidth;
    int32_t *gaps; /* [max_seqs] device: first x row of each gap between sequences */
    /* host staging for a batch's layout (sized at creation) */
    vocos_cuda_seg *segs;
    int32_t *gaps_host;
    float *window_host; /* [n_fft] the ISTFT window, for the streams' plans */
    char msg[256];      /* what the last failed call found */
};

struct vocos_cuda_stream {
    vocos_cuda *c;
    int max_step;
    int window;          /* Wcap = max_step + 2R + K frames kept */
    float *feat;         /* [(window + 6)][input_channels]: 3 zero rows, the frames, 3 zero rows */
    float *tmp;          /* [window][input_channels], for the shift */
    float *in;           /* [max_step][input_channels]: the pushed frames, uploaded */
    sotto_cuda_mel *mel; /* with vocos_cuda_stream_enable_mel: the device front end */
    float *pcm;          /* ... and the padded samples of one push's frames */
    int64_t pcm_cap;
    int mel_hop, mel_n_fft;  /* the front end's analysis (not the ISTFT's) */
    sotto_cuda_istft *istft; /* plan for up to `window` frames */
    /* With use_graph: one graph per push size (and TF32 setting) in use, least recently used
     * replaced first; graph[0] is NULL without use_graph. */
    sotto_cuda_graph *graph[GRAPH_SLOTS];
    int64_t graph_used[GRAPH_SLOTS]; /* step number of the last replay, for the replacement */
    int64_t steps;
    int64_t n_in; /* frames since reset */
    int flushed;
};

/* ---- creation ----------------------------------------------------------------------------- */

static size_t align256(size_t n)
{
    return (n + 255) & ~(size_t)255;
}

/* A failed device call at load: the context's message into st. */
static int device_status(sotto_cuda *cu, int rc, const char *what, sotto_status *st)
{
    const char *m = cu ? sotto_cuda_error_message(cu) : "";
    return sotto_status_set(st, rc, "vocos cuda: %s: %s", what, m[0] ? m : sotto_strerror(rc));
}

static int dev_buffer(vocos_cuda *c, size_t n_floats, float **d, sotto_status *st)
{
    int rc = sotto_cuda_alloc(c->cu, sizeof(float) * n_floats, (void **)d);
    return rc ? device_status(c->cu, rc, "buffer", st) : SOTTO_OK;
}

static int dev_vec(sotto_cuda *cu, const float *h, size_t n, float **d, sotto_status *st)
{
    int rc = sotto_cuda_alloc(cu, sizeof(float) * n, (void **)d);
    if (!rc) rc = sotto_cuda_upload(cu, *d, h, sizeof(float) * n);
    return rc ? device_status(cu, rc, "upload", st) : SOTTO_OK;
}

/* A Linear weight's rows [r0, r0 + rows) to the device; W holds the whole [n_out][n_in]. */
static int dev_linear_rows(sotto_cuda *cu, sotto_cuda_linear_w *d, const float *W, int r0, int rows,
                           int n_in, sotto_status *st)
{
    return sotto_cuda_linear_w_init(cu, d, W + (int64_t)r0 * n_in, rows, n_in, st);
}

static int upload_block(vocos_cuda_weights *c, const vocos_block *b, vocos_cuda_block *d, float *W,
                        float *tmp, sotto_status *st)
{
    const int C = c->hp.dim, I = c->hp.intermediate_dim;
    int rc;
    if (sotto_cuda_conv1d_to_f32(&b->dw, W) ||
        sotto_cuda_linear_to_f32(&b->pw1, W + (size_t)C * VOCOS_KERNEL))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "vocos cuda: block weights empty");
    if ((rc = sotto_cuda_conv1d_w_init(c->cu, &d->dw, W, C, C, VOCOS_KERNEL, 1, 1, C, st)) ||
        (rc = sotto_cuda_linear_w_init(c->cu, &d->pw1, W + (size_t)C * VOCOS_KERNEL, I, C, st)) ||
        (rc = dev_vec(c->cu, b->dw_b, (size_t)C, &d->dw_b, st)) ||
        (!b->ada_scale && ((rc = dev_vec(c->cu, b->ln_w, (size_t)C, &d->ln_w, st)) ||
                           (rc = dev_vec(c->cu, b->ln_b, (size_t)C, &d->ln_b, st)))) ||
        (rc = dev_vec(c->cu, b->pw1_b, (size_t)I, &d->pw1_b, st)))
        return rc;
    /* pwconv2 [C][I] with the layer scale folded in: x + γ⊙(W·h + b) = x + (γ⊙W)·h + γ⊙b */
    if (sotto_cuda_linear_to_f32(&b->pw2, W))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "vocos cuda: block weights empty");
    for (int n = 0; n < C; n++) {
        const float g = b->gamma ? b->gamma[n] : 1.0f;
        if (b->gamma)
            for (int k = 0; k < I; k++)
                W[(int64_t)n * I + k] *= g;
        tmp[n] = g * b->pw2_b[n];
    }
    if ((rc = sotto_cuda_linear_w_init(c->cu, &d->pw2, W, C, I, st)) ||
        (rc = dev_vec(c->cu, tmp, (size_t)C, &d->pw2_b, st)))
        return rc;
    return SOTTO_OK;
}

/* The AdaLayerNorm tables in the layout of vocos_cuda_weights.ada (nothing without them). */
static int upload_ada(vocos_cuda_weights *c, const vocos_weights *w, sotto_status *st)
{
    const int n_emb = c->hp.adanorm_num_embeddings, L = c->hp.num_layers, C = c->hp.dim;
    if (n_emb == 0) return SOTTO_OK;
    c->ada_rows_len = (size_t)(L + 1) * 2 * C;
    float *h = malloc(sizeof(float) * c->ada_rows_len * (size_t)n_emb);
    if (!h) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    for (int e = 0; e < n_emb; e++)
        for (int j = 0; j <= L; j++) {
            const float *scale = j ? w->blocks[j - 1].ada_scale : w->norm_ada_scale;
            const float *shift = j ? w->blocks[j - 1].ada_shift : w->norm_ada_shift;
            if (!scale || !shift) {
                free(h);
                return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                        "vocos cuda: AdaLayerNorm table %d missing", j);
            }
            float *dst = h + (size_t)e * c->ada_rows_len + (size_t)j * 2 * C;
            memcpy(dst, scale + (size_t)e * C, sizeof(float) * (size_t)C);
            memcpy(dst + C, shift + (size_t)e * C, sizeof(float) * (size_t)C);
        }
    const int rc = dev_vec(c->cu, h, c->ada_rows_len * (size_t)n_emb, &c->ada, st);
    free(h);
    return rc;
}

static int upload_weights(vocos_cuda_weights *c, const vocos_weights *w, sotto_status *st)
{
    const vocos_hparams *hp = &c->hp;
    const int C = hp->dim, Cin = hp->input_channels, I = hp->intermediate_dim;
    const int F = c->n_bins, L = hp->num_layers;
    /* One host staging matrix for the largest weight (a block's dwconv and pwconv1 together,
     * pwconv2, the head, the embedding) and one vector. */
    size_t n = (size_t)C * VOCOS_KERNEL + (size_t)I * C;
    if ((size_t)(2 * F) * C > n) n = (size_t)(2 * F) * C;
    if ((size_t)C * Cin * VOCOS_KERNEL > n) n = (size_t)C * Cin * VOCOS_KERNEL;
    size_t nv = (size_t)(I > 2 * F ? I : 2 * F);
    if ((size_t)C > nv) nv = (size_t)C;
    float *W = malloc(sizeof(float) * n), *tmp = malloc(sizeof(float) * nv);
    int rc = SOTTO_OK;
    if (!W || !tmp) {
        rc = sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    if (sotto_cuda_conv1d_to_f32(&w->embed, W)) {
        rc = sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "vocos cuda: embed weight empty");
        goto done;
    }
    if ((rc = sotto_cuda_conv1d_w_init(c->cu, &c->embed, W, C, Cin, VOCOS_KERNEL, 1, 1, 1, st)) ||
        (rc = dev_vec(c->cu, w->embed_b, (size_t)C, &c->embed_b, st)) ||
        (!hp->adanorm_num_embeddings &&
         ((rc = dev_vec(c->cu, w->norm_w, (size_t)C, &c->norm_w, st)) ||
          (rc = dev_vec(c->cu, w->norm_b, (size_t)C, &c->norm_b, st)))) ||
        (rc = upload_ada(c, w, st)) ||
        (rc = dev_vec(c->cu, w->final_w, (size_t)C, &c->final_w, st)) ||
        (rc = dev_vec(c->cu, w->final_b, (size_t)C, &c->final_b, st)) ||
        (rc = dev_vec(c->cu, w->head_b, (size_t)(2 * F), &c->head_b, st)))
        goto done;
    if (sotto_cuda_linear_to_f32(&w->head, W)) {
        rc = sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "vocos cuda: head weight empty");
        goto done;
    }
    if ((rc = dev_linear_rows(c->cu, &c->head_mag, W, 0, F, C, st)) ||
        (rc = dev_linear_rows(c->cu, &c->head_phase, W, F, F, C, st)))
        goto done;
    for (int i = 0; i < L; i++)
        if ((rc = upload_block(c, &w->blocks[i], &c->blocks[i], W, tmp, st))) goto done;
done:
    free(W);
    free(tmp);
    return rc;
}

/* Samples the ISTFT gives for T frames: (T − 1)·hop + n_fft − 2·trim (0 for T < 1). */
static int64_t istft_len(const vocos_cuda *c, int64_t T)
{
    return T > 0 ? (T - 1) * c->hp.hop_length + c->hp.n_fft - 2 * (int64_t)c->trim : 0;
}

/* Frames of receptive field per side: 3 per k = 7 conv (the embedding and each block). */
static int receptive(const vocos_cuda *c)
{
    return VOCOS_HALF * (c->hp.num_layers + 1);
}

/* Frames before a sample's frame that still overlap it in the ISTFT: ⌊(n_fft − 1)/hop⌋. */
static int ola_frames(const vocos_cuda *c)
{
    return (c->hp.n_fft - 1) / c->hp.hop_length;
}

/* ---- weights ------------------------------------------------------------------------------ */

void vocos_cuda_weights_free(vocos_cuda_weights *d)
{
    if (!d) return;
    sotto_cuda *cu = d->cu;
    if (cu) {
        if (d->blocks)
            for (int i = 0; i < d->hp.num_layers; i++) {
                vocos_cuda_block *b = &d->blocks[i];
                sotto_cuda_conv1d_w_free(cu, &b->dw);
                sotto_cuda_linear_w_free(cu, &b->pw1);
                sotto_cuda_linear_w_free(cu, &b->pw2);
                sotto_cuda_free(cu, b->dw_b);
                sotto_cuda_free(cu, b->ln_w);
                sotto_cuda_free(cu, b->ln_b);
                sotto_cuda_free(cu, b->pw1_b);
                sotto_cuda_free(cu, b->pw2_b);
            }
        sotto_cuda_conv1d_w_free(cu, &d->embed);
        sotto_cuda_linear_w_free(cu, &d->head_mag);
        sotto_cuda_linear_w_free(cu, &d->head_phase);
        float *bufs[] = {d->embed_b, d->norm_w, d->norm_b, d->final_w,
                         d->final_b, d->head_b, d->ada};
        for (size_t i = 0; i < SOTTO_ARRAY_LEN(bufs); i++)
            sotto_cuda_free(cu, bufs[i]);
        sotto_cuda_destroy(cu);
    }
    free(d->blocks);
    free(d->window);
    free(d);
}

int vocos_cuda_weights_create(const vocos_weights *w, int device, int bf16,
                              vocos_cuda_weights **out, sotto_status *st)
{
    if (!out) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "vocos cuda: out is NULL");
    *out = NULL;
    if (!w || device < 0)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "vocos cuda: NULL weights or device %d out of range", device);
    const vocos_hparams *hp = &w->hp;
    /* The ISTFT window exactly as the CPU vocoder builds it (the file's, or the periodic
     * Hann the plan makes). */
    sotto_stft_params sp = sotto_stft_default_params();
    sp.n_fft = hp->n_fft;
    sp.hop_length = hp->hop_length;
    sp.pad = hp->head_pad_same ? SOTTO_STFT_PAD_SAME : SOTTO_STFT_PAD_CENTER;
    sp.window = w->head_window;
    sotto_stft *plan = NULL;
    int rc = sotto_stft_create(&sp, NULL, &plan, st);
    if (rc) return rc;
    vocos_cuda_weights *d = calloc(1, sizeof *d);
    if (d) {
        d->hp = *hp;
        d->device = device;
        d->n_bins = hp->n_fft / 2 + 1;
        d->blocks = calloc((size_t)(hp->num_layers ? hp->num_layers : 1), sizeof *d->blocks);
        d->window = malloc(sizeof(float) * (size_t)hp->n_fft);
        if (d->window)
            memcpy(d->window, sotto_stft_window(plan), sizeof(float) * (size_t)hp->n_fft);
    }
    sotto_stft_destroy(plan);
    if (!d || !d->blocks || !d->window) {
        vocos_cuda_weights_free(d);
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    }
    if (!(rc = sotto_cuda_create(&d->cu, device, 0, st))) {
        /* read by every upload below; on a live context the setting cannot be refused */
        if (bf16) (void)sotto_cuda_set_weight_dtype(d->cu, SOTTO_CUDA_BF16);
        rc = upload_weights(d, w, st);
    }
    if (rc) {
        vocos_cuda_weights_free(d);
        return rc;
    }
    *out = d;
    return SOTTO_OK;
}

/* ---- contexts ----------------------------------------------------------------------------- */

int vocos_cuda_create(const vocos_weights *w, int device, int max_frames, vocos_cuda **out,
                      sotto_status *st)
{
    if (!out) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "vocos cuda: out is NULL");
    *out = NULL;
    if (max_frames < 1 || max_frames > (1 << 20))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "vocos cuda: max_frames %d out of range (1..%d)", max_frames,
                                1 << 20);
    vocos_cuda_weights *d = NULL;
    int rc = vocos_cuda_weights_create(w, device, 0, &d, st);
    if (rc) return rc;
    if ((rc = vocos_cuda_create_shared(d, max_frames, out, st))) {
        vocos_cuda_weights_free(d);
        return rc;
    }
    (*out)->own = d;
    return SOTTO_OK;
}

int vocos_cuda_create_shared(const vocos_cuda_weights *wt, int max_frames, vocos_cuda **out,
                             sotto_status *st)
{
    if (!out) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "vocos cuda: out is NULL");
    *out = NULL;
    if (!wt || max_frames < 1 || max_frames > (1 << 20))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "vocos cuda: NULL weights or max_frames %d out of range (1..%d)",
                                max_frames, 1 << 20);
    const vocos_hparams *hp = &wt->hp;
    const int device = wt->device;
    /* The ISTFT geometry exactly as the CPU vocoder builds it. */
    sotto_stft_params sp = sotto_stft_default_params();
    sp.n_fft = hp->n_fft;
    sp.hop_length = hp->hop_length;
    sp.pad = hp->head_pad_same ? SOTTO_STFT_PAD_SAME : SOTTO_STFT_PAD_CENTER;
    sp.window = wt->window;
    sotto_stft *plan = NULL;
    int rc = sotto_stft_create(&sp, NULL, &plan, st);
    if (rc) return rc;
    vocos_cuda *c = calloc(1, sizeof *c);
    if (!c) {
        sotto_stft_destroy(plan);
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    }
    c->hp = *hp;
    c->wt = wt;
    c->max_frames = max_frames;
    c->max_seqs = (max_frames + VOCOS_HALF) / (1 + VOCOS_HALF);
    c->n_bins = hp->n_fft / 2 + 1;
    c->trim = sotto_istft_trim(plan);
    const int C = hp->dim, Cin = hp->input_channels, I = hp->intermediate_dim, F = c->n_bins;
    const size_t rows = (size_t)max_frames + 2 * VOCOS_HALF;
    const int batch = max_frames < ISTFT_BATCH ? max_frames : ISTFT_BATCH;
    /* A batch's outputs together: Σ((T_i − 1)·hop + n_fft − 2·trim) with Σ T_i ≤ max_frames −
     * 3·(n − 1) is at most istft_len(max_frames) for both paddings (n_fft − 2·trim is 0 or
     * hop); the call checks it anyway. One hop more keeps the buffer non-empty when a single
     * frame gives no sample ("center"). */
    c->out_cap = istft_len(c, max_frames) + hp->hop_length;

    /* Scratch: the largest of the embedding conv's im2col matrix, a bf16 Linear's rounded
     * input (the widest is pwconv2's, I per frame; none with f32 weights) and the ISTFT's
     * spectra and frames (each layer gives its scratch back before the next runs). */
    size_t scratch = sotto_cuda_conv1d_scratch(&wt->embed, (int64_t)rows);
    for (int i = 0; i < hp->num_layers; i++) {
        const size_t s1 = sotto_cuda_linear_scratch(&wt->blocks[i].pw1, (int64_t)rows);
        const size_t s2 = sotto_cuda_linear_scratch(&wt->blocks[i].pw2, (int64_t)rows);
        if (s1 > scratch) scratch = s1;
        if (s2 > scratch) scratch = s2;
    }
    const size_t s_head = sotto_cuda_linear_scratch(&wt->head_mag, (int64_t)rows);
    if (s_head > scratch) scratch = s_head;
    const size_t istft_bytes = align256((size_t)batch * (size_t)F * 2 * sizeof(float)) +
                               align256((size_t)batch * (size_t)hp->n_fft * sizeof(float));
    if (istft_bytes > scratch) scratch = istft_bytes;
    scratch += 4096;

    if ((rc = sotto_cuda_create(&c->cu, device, scratch, st))) goto fail;
    c->segs = calloc((size_t)c->max_seqs, sizeof *c->segs);
    c->gaps_host = calloc((size_t)c->max_seqs, sizeof *c->gaps_host);
    c->window_host = malloc(sizeof(float) * (size_t)hp->n_fft);
    if (!c->segs || !c->gaps_host || !c->window_host) {
        rc = sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    memcpy(c->window_host, sotto_stft_window(plan), sizeof(float) * (size_t)hp->n_fft);
    if ((rc = sotto_cuda_istft_create(c->cu, hp->n_fft, hp->hop_length, c->trim,
                                      sotto_stft_window(plan), batch, &c->istft, st)))
        goto fail;
    if (sotto_cuda_istft_scratch(c->istft) + 512 > sotto_cuda_scratch_size(c->cu)) {
        rc = sotto_status_set(st, SOTTO_ERR_INTERNAL, "vocos cuda: ISTFT scratch mis-sized");
        goto fail;
    }
    if ((rc = dev_buffer(c, rows * (size_t)Cin, &c->feat, st)) ||
        (rc = dev_buffer(c, rows * (size_t)C, &c->xp, st)) ||
        (rc = dev_buffer(c, (size_t)max_frames * C, &c->y, st)) ||
        (rc = dev_buffer(c, (size_t)max_frames * I, &c->h, st)) ||
        (rc = dev_buffer(c, (size_t)max_frames * F, &c->mag, st)) ||
        (rc = dev_buffer(c, (size_t)max_frames * F, &c->phase, st)) ||
        (rc = dev_buffer(c, (size_t)c->out_cap, &c->out, st)))
        goto fail;
    if ((rc = sotto_cuda_alloc(c->cu, sizeof(int32_t) * (size_t)c->max_seqs, (void **)&c->gaps))) {
        rc = device_status(c->cu, rc, "buffer", st);
        goto fail;
    }
    /* AdaLayerNorm: the context's own copy of one bandwidth's rows, bandwidth 0 to start. */
    if (wt->ada) {
        if ((rc = dev_buffer(c, wt->ada_rows_len, &c->ada_rows, st))) goto fail;
        if ((rc = vocos_cuda_set_bandwidth(c, 0))) {
            rc = device_status(c->cu, rc, "bandwidth rows", st);
            goto fail;
        }
    }
    sotto_stft_destroy(plan);
    *out = c;
    return SOTTO_OK;
fail:
    sotto_stft_destroy(plan);
    vocos_cuda_free(c);
    return rc;
}

void vocos_cuda_free(vocos_cuda *c)
{
    if (!c) return;
    sotto_cuda *cu = c->cu;
    if (cu) {
        float *bufs[] = {c->feat, c->xp, c->y, c->h, c->mag, c->phase, c->out, c->ada_rows};
        for (size_t i = 0; i < SOTTO_ARRAY_LEN(bufs); i++)
            sotto_cuda_free(cu, bufs[i]);
        sotto_cuda_free(cu, c->gaps);
        sotto_cuda_istft_destroy(cu, c->istft);
        sotto_cuda_destroy(cu);
    }
    vocos_cuda_weights_free(c->own);
    free(c->segs);
    free(c->gaps_host);
    free(c->window_host);
    free(c);
}

void vocos_cuda_set_tf32(vocos_cuda *c, int allow)
{
    if (!c) return;
    c->tf32 = allow != 0;
    sotto_cuda_set_tf32(c->cu, c->tf32);
}

int vocos_cuda_max_frames(const vocos_cuda *c)
{
    return c ? c->max_frames : 0;
}

/* ---- forward ------------------------------------------------------------------------------ */

int64_t vocos_cuda_output_length(const vocos_cuda *c, int64_t T)
{
    return c ? istft_len(c, T) : 0;
}

const char *vocos_cuda_last_error(const vocos_cuda *c)
{
    return c ? c->msg : "";
}

static int64_t fail_msg(vocos_cuda *c, int code, const char *msg)
{
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    return code;
}

/* A layer call returned r: the context's error (with its message) when it failed, else a
 * layer refused the arguments this file sized, or produced the wrong frame count. */
static int64_t layer_failed(vocos_cuda *c, int64_t r, const char *layer)
{
    const int err = sotto_cuda_error(c->cu);
    if (err) {
        snprintf(c->msg, sizeof c->msg, "vocos cuda: %s: %s", layer,
                 sotto_cuda_error_message(c->cu));
        return err;
    }
    snprintf(c->msg, sizeof c->msg, "vocos cuda: internal error: %s returned %lld", layer,
             (long long)r);
    return r < 0 ? r : SOTTO_ERR_INTERNAL;
}

int vocos_cuda_set_bandwidth(vocos_cuda *c, int id)
{
    if (!c) return SOTTO_ERR_INVALID_ARG;
    c->msg[0] = '\0';
    if (!c->ada_rows)
        return (int)fail_msg(c, SOTTO_ERR_UNSUPPORTED,
                             "vocos cuda: model is not bandwidth-conditioned");
    if (id < 0 || id >= c->hp.adanorm_num_embeddings)
        return (int)fail_msg(c, SOTTO_ERR_INVALID_ARG, "vocos cuda: bandwidth id out of range");
    /* Ordered on the context's stream before every later step, graph replays included. */
    const int64_t r =
        sotto_cuda_copy(c->cu, c->ada_rows, c->wt->ada + (size_t)id * c->wt->ada_rows_len,
                        sizeof(float) * c->wt->ada_rows_len);
    if (r) return (int)layer_failed(c, r, "bandwidth rows");
    c->bandwidth = id;
    return SOTTO_OK;
}

int vocos_cuda_bandwidth(const vocos_cuda *c)
{
    return c ? c->bandwidth : 0;
}

/* Norm j's weight and bias (0: backbone.norm, 1 + i: block i's): the plain LayerNorm's, or
 * the selected bandwidth's AdaLayerNorm rows. */
static void norm_params(const vocos_cuda *c, int j, const float **w, const float **b)
{
    if (c->ada_rows) {
        *w = c->ada_rows + (size_t)j * 2 * c->hp.dim;
        *b = *w + c->hp.dim;
    } else if (j == 0) {
        *w = c->wt->norm_w;
        *b = c->wt->norm_b;
    } else {
        *w = c->wt->blocks[j - 1].ln_w;
        *b = c->wt->blocks[j - 1].ln_b;
    }
}

static int all_finite(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/*
 * The forward over a packed layout: feat holds n + 6 rows (3 zero rows, the sequences with 3
 * zero rows between neighbours, 3 zero rows); gaps (device) holds the first x row of each of
 * the n_gaps gaps; segs says where each sequence's frames are and where its samples go in
 * out. Only enqueues work (no upload, download or sync), so a CUDA graph can capture it.
 * Returns the samples written to out, or an error.
 */
static int64_t forward(vocos_cuda *c, const float *feat, int64_t n, int n_gaps,
                       sotto_cuda_istft *plan, const vocos_cuda_seg *segs, int n_segs, float *out)
{
    sotto_cuda *cu = c->cu;
    const vocos_hparams *hp = &c->hp;
    const int C = hp->dim, I = hp->intermediate_dim, F = c->n_bins;
    const int64_t rows = n + 2 * VOCOS_HALF;
    float *x = c->xp + (size_t)VOCOS_HALF * C;
    const float *ln_w, *ln_b;
    int64_t r;
    sotto_cuda_scratch_reset(cu);
    if ((r = sotto_cuda_memset0(cu, c->xp, sizeof(float) * (size_t)rows * C)))
        return layer_failed(c, r, "residual buffer");
    if ((r = sotto_cuda_conv1d(cu, &c->wt->embed, c->wt->embed_b, feat, rows, x)) != n)
        return layer_failed(c, r, "embed conv");
    norm_params(c, 0, &ln_w, &ln_b);
    if ((r = sotto_cuda_layernorm(cu, x, n, C, ln_w, ln_b, LN_EPS, x)) ||
        (r = sotto_cuda_zero_row_groups(cu, x, C, c->gaps, n_gaps, VOCOS_HALF)))
        return layer_failed(c, r, "backbone norm");

    for (int i = 0; i < hp->num_layers; i++) {
        const vocos_cuda_block *b = &c->wt->blocks[i];
        if ((r = sotto_cuda_conv1d(cu, &b->dw, b->dw_b, c->xp, rows, c->y)) != n)
            return layer_failed(c, r, "dwconv");
        norm_params(c, 1 + i, &ln_w, &ln_b);
        if ((r = sotto_cuda_layernorm(cu, c->y, n, C, ln_w, ln_b, LN_EPS, c->y)) ||
            (r = sotto_cuda_linear(cu, &b->pw1, b->pw1_b, c->y, n, c->h)) ||
            (r = sotto_cuda_gelu_erf(cu, c->h, n * I, c->h)) ||
            (r = sotto_cuda_linear_ex(cu, &b->pw2, b->pw2_b, c->h, I, n, x, C, 1)) ||
            (r = sotto_cuda_zero_row_groups(cu, x, C, c->gaps, n_gaps, VOCOS_HALF)))
            return layer_failed(c, r, "ConvNeXt block");
    }

    if ((r = sotto_cuda_layernorm(cu, x, n, C, c->wt->final_w, c->wt->final_b, LN_EPS, c->y)) ||
        (r = sotto_cuda_linear(cu, &c->wt->head_mag, c->wt->head_b, c->y, n, c->mag)) ||
        (r = sotto_cuda_linear(cu, &c->wt->head_phase, c->wt->head_b + F, c->y, n, c->phase)) ||
        (r = sotto_cuda_exp_clamp(cu, c->mag, n * F, MAG_MAX, c->mag)))
        return layer_failed(c, r, "head");
    int64_t total = 0;
    for (int s = 0; s < n_segs; s++) {
        const vocos_cuda_seg *g = &segs[s];
        const int64_t len = istft_len(c, g->T);
        if ((r = sotto_cuda_istft_polar(cu, plan, c->mag + (size_t)g->row * F,
                                        c->phase + (size_t)g->row * F, g->T, out + g->out_off)) !=
            len)
            return layer_failed(c, r, "istft");
        total += len;
    }
    return total;
}

int64_t vocos_cuda_offline_batch(vocos_cuda *c, int n_seq, const float *const *features_host,
                                 const int *frames, float *const *out_host, const int64_t *capacity)
{
    if (!c) return SOTTO_ERR_INVALID_ARG;
    c->msg[0] = '\0';
    sotto_cuda *cu = c->cu;
    const int Cin = c->hp.input_channels;
    if (n_seq < 1 || !features_host || !frames || !out_host || !capacity)
        return fail_msg(c, SOTTO_ERR_INVALID_ARG, "vocos cuda: NULL array or no sequence");
    if (n_seq > c->max_seqs)
        return fail_msg(c, SOTTO_ERR_INVALID_ARG,
                        "vocos cuda: more sequences than the context's max_frames can hold");
    /* The packed layout: sequence i at x rows [row_i, row_i + T_i), 3 zero rows between. */
    int64_t row = 0, out_off = 0;
    for (int i = 0; i < n_seq; i++) {
        if (!features_host[i] || !out_host[i] || frames[i] < 1)
            return fail_msg(c, SOTTO_ERR_INVALID_ARG,
                            "vocos cuda: NULL buffer or frame count below 1");
        c->segs[i].row = row;
        c->segs[i].T = frames[i];
        c->segs[i].out_off = out_off;
        row += frames[i];
        if (i + 1 < n_seq) {
            c->gaps_host[i] = (int32_t)row; /* row ≤ max_frames once checked below */
            row += VOCOS_HALF;
        }
        out_off += istft_len(c, frames[i]);
        if (row > c->max_frames)
            return fail_msg(c, SOTTO_ERR_INVALID_ARG,
                            "vocos cuda: frames (with 3 between sequences) beyond max_frames");
    }
    if (out_off > c->out_cap)
        return fail_msg(c, SOTTO_ERR_INVALID_ARG, "vocos cuda: batch output beyond the buffer");
    for (int i = 0; i < n_seq; i++)
        if (capacity[i] < istft_len(c, frames[i]))
            return fail_msg(c, SOTTO_ERR_BUFFER_TOO_SMALL,
                            "vocos cuda: output capacity below the samples of the forward");
    for (int i = 0; i < n_seq; i++)
        if (!all_finite(features_host[i], (int64_t)frames[i] * Cin))
            return fail_msg(c, SOTTO_ERR_BAD_AUDIO, "vocos cuda: non-finite feature value");
    int64_t r = sotto_cuda_error(cu);
    if (r) return layer_failed(c, r, "context");

    const int64_t n = row;
    if ((r = sotto_cuda_memset0(cu, c->feat, sizeof(float) * (size_t)(n + 2 * VOCOS_HALF) * Cin)))
        return layer_failed(c, r, "features upload");
    for (int i = 0; i < n_seq; i++)
        if ((r = sotto_cuda_upload(cu, c->feat + (size_t)(VOCOS_HALF + c->segs[i].row) * Cin,
                                   features_host[i], sizeof(float) * (size_t)frames[i] * Cin)))
            return layer_failed(c, r, "features upload");
    if (n_seq > 1 &&
        (r = sotto_cuda_upload(cu, c->gaps, c->gaps_host, sizeof(int32_t) * (size_t)(n_seq - 1))))
        return layer_failed(c, r, "gap upload");
    if ((r = forward(c, c->feat, n, n_seq - 1, c->istft, c->segs, n_seq, c->out)) != out_off)
        return r < 0 ? r : layer_failed(c, r, "forward");
    for (int i = 0; i < n_seq; i++)
        if ((r = sotto_cuda_download(cu, out_host[i], c->out + c->segs[i].out_off,
                                     sizeof(float) * (size_t)istft_len(c, frames[i]))))
            return layer_failed(c, r, "download");
    return out_off;
}

int64_t vocos_cuda_offline(vocos_cuda *c, const float *features_host, int T, float *out_host,
                           int64_t capacity)
{
    if (!c) return SOTTO_ERR_INVALID_ARG;
    if (!features_host || !out_host || T < 1 || T > c->max_frames)
        return fail_msg(c, SOTTO_ERR_INVALID_ARG,
                        "vocos cuda: NULL buffer or frame count outside 1..max_frames");
    return vocos_cuda_offline_batch(c, 1, &features_host, &T, &out_host, &capacity);
}

/* ---- streaming ---------------------------------------------------------------------------- */

static int window_frames(const vocos_hparams *hp, int max_step)
{
    return max_step + 2 * VOCOS_HALF * (hp->num_layers + 1) + (hp->n_fft - 1) / hp->hop_length;
}

int vocos_cuda_stream_window_frames(const vocos_weights *w, int max_step_frames)
{
    return w && max_step_frames > 0 ? window_frames(&w->hp, max_step_frames) : 0;
}

int vocos_cuda_stream_create(vocos_cuda *c, int max_step_frames, int use_graph,
                             vocos_cuda_stream **out, sotto_status *st)
{
    if (!out) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "vocos cuda: out is NULL");
    *out = NULL;
    if (!c || max_step_frames < 1 || max_step_frames > MAX_STEP)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "vocos cuda: NULL context or max_step_frames %d outside 1..%d",
                                max_step_frames, MAX_STEP);
    const int window = window_frames(&c->hp, max_step_frames);
    if (window > c->max_frames)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "vocos cuda: a stream of %d-frame steps needs a %d-frame window, "
                                "beyond the context's max_frames %d",
                                max_step_frames, window, c->max_frames);
    int rc = sotto_cuda_error(c->cu);
    if (rc) return device_status(c->cu, rc, "context", st);
    vocos_cuda_stream *s = calloc(1, sizeof *s);
    if (!s) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    s->c = c;
    s->max_step = max_step_frames;
    s->window = window;
    const size_t Cin = (size_t)c->hp.input_channels;
    const int batch = window < ISTFT_BATCH ? window : ISTFT_BATCH;
    if ((rc = dev_buffer(c, ((size_t)window + 2 * VOCOS_HALF) * Cin, &s->feat, st)) ||
        (rc = dev_buffer(c, (size_t)window * Cin, &s->tmp, st)) ||
        (rc = dev_buffer(c, (size_t)max_step_frames * Cin, &s->in, st)))
        goto fail;
    /* The stream's own ISTFT plan: the context's window and trim, sized for its window. */
    if ((rc = sotto_cuda_istft_create(c->cu, c->hp.n_fft, c->hp.hop_length, c->trim, c->window_host,
                                      batch, &s->istft, st)))
        goto fail;
    for (int i = 0; use_graph && i < GRAPH_SLOTS; i++)
        if ((rc = sotto_cuda_graph_create(c->cu, &s->graph[i]))) {
            rc = device_status(c->cu, rc, "graph", st);
            goto fail;
        }
    if ((rc = vocos_cuda_stream_reset(s))) {
        rc = device_status(c->cu, rc, "reset", st);
        goto fail;
    }
    *out = s;
    return SOTTO_OK;
fail:
    vocos_cuda_stream_free(s);
    return rc;
}

void vocos_cuda_stream_free(vocos_cuda_stream *s)
{
    if (!s) return;
    sotto_cuda *cu = s->c->cu;
    for (int i = 0; i < GRAPH_SLOTS; i++)
        sotto_cuda_graph_destroy(s->graph[i]);
    sotto_cuda_istft_destroy(cu, s->istft);
    sotto_cuda_mel_destroy(cu, s->mel);
    sotto_cuda_free(cu, s->pcm);
    sotto_cuda_free(cu, s->feat);
    sotto_cuda_free(cu, s->tmp);
    sotto_cuda_free(cu, s->in);
    free(s);
}

int vocos_cuda_stream_reset(vocos_cuda_stream *s)
{
    if (!s) return SOTTO_ERR_INVALID_ARG;
    s->n_in = 0;
    s->flushed = 0;
    /* Frames before the first are the signal's left zero padding. */
    const size_t bytes =
        sizeof(float) * ((size_t)s->window + 2 * VOCOS_HALF) * (size_t)s->c->hp.input_channels;
    return sotto_cuda_memset0(s->c->cu, s->feat, bytes);
}

/* Samples the CPU vocoder has released once n frames are in (vocoder.c, released_after):
 * backbone frame t is final once t + R frames are in, and the overlap-add then releases up to
 * OLA position (t + 1)·hop, less the trim. */
static int64_t released_after(const vocos_cuda *c, int64_t n)
{
    const int64_t h = n - receptive(c);
    const int64_t r = h * c->hp.hop_length - c->trim;
    return h > 0 && r > 0 ? r : 0;
}

/* First frame of the window whose forward gives samples from s0 on: the first frame whose
 * ISTFT frame covers OLA position s0 + trim, less the receptive field, clipped at 0. */
static int64_t window_start(const vocos_cuda *c, int64_t s0)
{
    const int64_t hop = c->hp.hop_length;
    const int64_t q = s0 + c->trim - c->hp.n_fft + 1;
    const int64_t t_lo = q > 0 ? (q + hop - 1) / hop : 0;
    const int64_t a = t_lo - receptive(c);
    return a > 0 ? a : 0;
}

int64_t vocos_cuda_stream_max_output(const vocos_cuda_stream *s, int n)
{
    if (!s || n < 0) return 0;
    const vocos_cuda *c = s->c;
    if (n == 0) /* flush: the frames still inside the receptive field plus the overlap tail */
        return (int64_t)(receptive(c) + 1) * c->hp.hop_length + c->hp.n_fft;
    return (int64_t)n * c->hp.hop_length;
}

int64_t vocos_cuda_stream_frames(const vocos_cuda_stream *s)
{
    return s ? s->n_in : 0;
}

int64_t vocos_cuda_stream_graph_captures(const vocos_cuda_stream *s)
{
    int64_t n = 0;
    for (int i = 0; s && i < GRAPH_SLOTS; i++)
        n += sotto_cuda_graph_captures(s->graph[i]);
    return n;
}

int64_t vocos_cuda_stream_graph_launches(const vocos_cuda_stream *s)
{
    int64_t n = 0;
    for (int i = 0; s && i < GRAPH_SLOTS; i++)
        n += sotto_cuda_graph_launches(s->graph[i]);
    return n;
}

/*
 * The device work of one step, enqueued only: the n pushed frames (already in s->in) shifted
 * into the window of recent frames, then, with W > 0, the forward of its last W frames into
 * c->out. Fixed addresses and sizes for given (n, W), so a graph can record it.
 */
static int64_t enqueue_step(vocos_cuda_stream *s, int n, int64_t W)
{
    vocos_cuda *c = s->c;
    sotto_cuda *cu = c->cu;
    const size_t Cin = (size_t)c->hp.input_channels;
    /* Frame rows of s->feat are [3, 3 + window); the newest frame is the last. */
    float *rows0 = s->feat + (size_t)VOCOS_HALF * Cin;
    const size_t keep = (size_t)(s->window - n) * Cin;
    int64_t r;
    if (n > 0 &&
        ((r = sotto_cuda_copy(cu, s->tmp, rows0 + (size_t)n * Cin, sizeof(float) * keep)) ||
         (r = sotto_cuda_copy(cu, rows0, s->tmp, sizeof(float) * keep)) ||
         (r = sotto_cuda_copy(cu, rows0 + keep, s->in, sizeof(float) * (size_t)n * Cin))))
        return layer_failed(c, r, "stream window");
    if (W == 0) return 0;
    /* The window's frames [n_in − W, n_in) are rows [3 + window − W, 3 + window); its padded
     * input starts 3 rows earlier. Rows before the first frame ever pushed are zero. */
    const vocos_cuda_seg seg = {.row = 0, .T = (int)W, .out_off = 0};
    return forward(c, s->feat + (size_t)(s->window - W) * Cin, W, 0, s->istft, &seg, 1, c->out);
}

/* Runs the step for n new frames and window W (0: no forward), as a graph replay when the
 * stream has graphs and the window has its steady size for n. */
static int64_t run_step(vocos_cuda_stream *s, int n, int64_t W)
{
    vocos_cuda *c = s->c;
    const int64_t steady = (int64_t)n + 2 * receptive(c) + ola_frames(c);
    if (!s->graph[0] || n == 0 || W != steady) return enqueue_step(s, n, W);
    /* What a capture depends on besides fixed buffers: n (and with it W) and TF32. */
    const int64_t key = (int64_t)n * 2 + c->tf32;
    int slot = -1;
    for (int i = 0; i < GRAPH_SLOTS && slot < 0; i++)
        if (sotto_cuda_graph_ready(s->graph[i], key)) slot = i;
    int64_t r;
    if (slot < 0) {
        slot = 0;
        for (int i = 1; i < GRAPH_SLOTS; i++)
            if (s->graph_used[i] < s->graph_used[slot]) slot = i;
        sotto_cuda_graph *g = s->graph[slot];
        if ((r = sotto_cuda_graph_begin(g, key))) return layer_failed(c, r, "graph begin");
        const int64_t got = enqueue_step(s, n, W);
        r = sotto_cuda_graph_end(g); /* ends the capture even after a failure */
        if (got < 0) return got;
        if (r) return layer_failed(c, r, "graph end");
        if (got != istft_len(c, W)) return layer_failed(c, got, "graph capture");
    }
    s->graph_used[slot] = ++s->steps;
    if ((r = sotto_cuda_graph_launch(s->graph[slot]))) return layer_failed(c, r, "graph launch");
    return istft_len(c, W);
}

/* Common checks of push and flush; 0 when the call may go on. */
static int64_t stream_check(vocos_cuda_stream *s, const float *out_host)
{
    vocos_cuda *c = s->c;
    c->msg[0] = '\0';
    if (!out_host) return fail_msg(c, SOTTO_ERR_INVALID_ARG, "vocos cuda: NULL output buffer");
    if (s->flushed)
        return fail_msg(c, SOTTO_ERR_STATE, "vocos cuda: stream was flushed: reset it first");
    const int64_t r = sotto_cuda_error(c->cu);
    return r ? layer_failed(c, r, "context") : 0;
}

/* Forward of window [n_in − W, n_in) done (W = n_in − a): copies samples [s0, s1) out. */
static int64_t emit(vocos_cuda_stream *s, int64_t a, int64_t s0, int64_t s1, float *out_host)
{
    vocos_cuda *c = s->c;
    const int64_t off = s0 - a * c->hp.hop_length;
    if (off < 0 || s1 - a * c->hp.hop_length > istft_len(c, s->n_in - a))
        return fail_msg(c, SOTTO_ERR_INTERNAL, "vocos cuda: internal error: stream slice");
    const int64_t r =
        sotto_cuda_download(c->cu, out_host, c->out + off, sizeof(float) * (size_t)(s1 - s0));
    return r ? layer_failed(c, r, "download") : s1 - s0;
}

static int64_t push_tail(vocos_cuda_stream *s, int n, int64_t s0, int64_t s1, float *out_host);

int64_t vocos_cuda_stream_push(vocos_cuda_stream *s, const float *features_host, int n,
                               float *out_host, int64_t capacity)
{
    if (!s) return SOTTO_ERR_INVALID_ARG;
    vocos_cuda *c = s->c;
    int64_t r = stream_check(s, out_host);
    if (r) return r;
    const int Cin = c->hp.input_channels;
    if (n < 0 || n > s->max_step || (n > 0 && !features_host))
        return fail_msg(c, SOTTO_ERR_INVALID_ARG,
                        "vocos cuda: NULL features or frame count outside 0..max_step_frames");
    if (!all_finite(features_host, (int64_t)n * Cin))
        return fail_msg(c, SOTTO_ERR_BAD_AUDIO, "vocos cuda: non-finite feature value");
    const int64_t s0 = released_after(c, s->n_in), s1 = released_after(c, s->n_in + n);
    if (capacity < s1 - s0)
        return fail_msg(c, SOTTO_ERR_BUFFER_TOO_SMALL,
                        "vocos cuda: output capacity below the samples released");
    if (n == 0) return 0;
    if ((r = sotto_cuda_upload(c->cu, s->in, features_host, sizeof(float) * (size_t)n * Cin)))
        return layer_failed(c, r, "features upload");
    return push_tail(s, n, s0, s1, out_host);
}

/* The part of a push after its n frames are in s->in: the step, and the samples s0..s1. */
static int64_t push_tail(vocos_cuda_stream *s, int n, int64_t s0, int64_t s1, float *out_host)
{
    vocos_cuda *c = s->c;
    int64_t r;
    const int64_t total = s->n_in + n;
    const int64_t a = s1 > s0 ? window_start(c, s0) : total;
    if (total - a > s->window)
        return fail_msg(c, SOTTO_ERR_INTERNAL, "vocos cuda: internal error: stream window");
    s->n_in = total; /* the window now holds the new frames, whatever follows */
    if ((r = run_step(s, n, total - a)) < 0) return r;
    if (s1 == s0) return 0;
    return emit(s, a, s0, s1, out_host);
}

int vocos_cuda_stream_enable_mel(vocos_cuda_stream *s, const struct sotto_mel *m, sotto_status *st)
{
    if (!s || !m)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "vocos cuda: NULL stream or front end");
    vocos_cuda *c = s->c;
    const sotto_stft *plan = sotto_mel_stft(m);
    if (s->mel || sotto_mel_n_mels(m) != c->hp.input_channels)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "vocos cuda: front end already set, or %d mels for a model of %d "
                                "input channels",
                                sotto_mel_n_mels(m), c->hp.input_channels);
    int rc;
    s->mel_hop = sotto_stft_hop(plan);
    s->mel_n_fft = sotto_stft_n_fft(plan);
    s->pcm_cap = (int64_t)(s->max_step - 1) * s->mel_hop + s->mel_n_fft;
    if ((rc = sotto_cuda_mel_create(c->cu, m, s->max_step, &s->mel, st)) ||
        (rc = dev_buffer(c, (size_t)s->pcm_cap, &s->pcm, st)))
        return rc;
    return SOTTO_OK;
}

int64_t vocos_cuda_stream_push_padded(vocos_cuda_stream *s, const float *xp_host, int64_t n_avail,
                                      int n, float *out_host, int64_t capacity)
{
    if (!s) return SOTTO_ERR_INVALID_ARG;
    vocos_cuda *c = s->c;
    int64_t r = stream_check(s, out_host);
    if (r) return r;
    if (!s->mel)
        return fail_msg(c, SOTTO_ERR_STATE, "vocos cuda: no device front end on this stream");
    if (n < 0 || n > s->max_step || (n > 0 && !xp_host) || n_avail < 0)
        return fail_msg(c, SOTTO_ERR_INVALID_ARG,
                        "vocos cuda: NULL samples or frame count outside 0..max_step_frames");
    const int64_t s0 = released_after(c, s->n_in), s1 = released_after(c, s->n_in + n);
    if (capacity < s1 - s0)
        return fail_msg(c, SOTTO_ERR_BUFFER_TOO_SMALL,
                        "vocos cuda: output capacity below the samples released");
    if (n == 0) return 0;
    /* frame t reads padded samples [t·hop, t·hop + n_fft): the push needs need of them */
    const int64_t need = (int64_t)(n - 1) * s->mel_hop + s->mel_n_fft;
    if (n_avail < need)
        return fail_msg(c, SOTTO_ERR_INVALID_ARG, "vocos cuda: samples short of the frames");
    if (!all_finite(xp_host, need))
        return fail_msg(c, SOTTO_ERR_BAD_AUDIO, "vocos cuda: NaN or infinite sample");
    if ((r = sotto_cuda_upload(c->cu, s->pcm, xp_host, sizeof(float) * (size_t)need)))
        return layer_failed(c, r, "samples upload");
    if ((r = sotto_cuda_mel_frames(c->cu, s->mel, s->pcm, need, n, s->in)) != n)
        return layer_failed(c, r, "mel front end");
    return push_tail(s, n, s0, s1, out_host);
}

int64_t vocos_cuda_stream_flush(vocos_cuda_stream *s, float *out_host, int64_t capacity)
{
    if (!s) return SOTTO_ERR_INVALID_ARG;
    vocos_cuda *c = s->c;
    int64_t r = stream_check(s, out_host);
    if (r) return r;
    const int64_t n = s->n_in;
    const int64_t s0 = released_after(c, n), s1 = istft_len(c, n);
    if (capacity < s1 - s0)
        return fail_msg(c, SOTTO_ERR_BUFFER_TOO_SMALL,
                        "vocos cuda: output capacity below the samples released");
    if (s1 <= s0) {
        s->flushed = 1;
        return 0;
    }
    const int64_t a = window_start(c, s0);
    if (n - a > s->window)
        return fail_msg(c, SOTTO_ERR_INTERNAL, "vocos cuda: internal error: stream window");
    if ((r = enqueue_step(s, 0, n - a)) < 0) return r;
    if ((r = emit(s, a, s0, s1, out_host)) < 0) return r;
    s->flushed = 1;
    return r;
}

#endif /* SOTTO_HAVE_CUDA */
