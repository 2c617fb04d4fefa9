/*
 * The offline FlexiCodec decode forward on the CUDA layer library (flexicodec_cuda.h). Load
 * time converts the CPU loader's prepared weights back to PyTorch layout and uploads them; the
 * forward is a fixed sequence of cuda_ops.h layers on buffers allocated at creation.
 *
 * Buffers: the latent sits in rows [3, 3 + T) of `lat` between 3 zero frames on each side, so
 * the transformer runs in place on those rows and the DAC's first conv (k 7, padding 3) then
 * reads the padded sequence as it lies. The DAC decoder runs in three equal buffers whose
 * roles rotate: X (the current activation) lives in one; a Snake writes into a second (for a
 * residual unit's dilated conv, between 3·d zero rows, so the "same" conv is a valid conv
 * over it) and the conv writes into the third. A transposed conv writes its full output
 * (L·s + s rows) into a free buffer, and X then points past torch's padding into it: the
 * crop costs no copy. Each residual unit's 1×1 conv adds onto X in one accumulating GEMM.
 *
 * Codes in (flexicodec_cuda_enable_codes): the group stages run on the device too, on
 * buffers sized for max_groups groups. One upload per call carries every per-group integer
 * (FSQ indices, stage counts, frame offsets, the RVQ codes stage-major with 0 where a group
 * sent no code, so every id the embedding meets is valid), checked on the host first; then
 * FSQ codes (concealed groups interpolated) → project_out → the ConvNeXt blocks in a buffer
 * with the depthwise conv's zero rows around the groups → the RVQ stages (codebook rows
 * gathered by sotto_cuda_embedding, out_proj, added only to the groups that carry the stage)
 * → the sum, expanded by the offsets straight into the frames the transformer reads. A
 * segmented decode expands into a latent buffer for the whole utterance instead and copies
 * each window's frames from it on the device.
 *
 * CUDA graphs: everything between the upload of the inputs and the download of the samples
 * (enqueue_job) only enqueues work on fixed buffers, with addresses and sizes that depend on
 * the job's key alone (the scratch pool is reset at its start), so it can be captured once per
 * key and replayed: the frame count T for a latent-in window; T, the group count G and the
 * stages decoded S for a codes-in decode (the per-group values are data the kernels read at
 * replay, but G places them and S sets the number of stage launches). A key is captured at its
 * second call, never its first: one-off lengths (a one-pass flush of each utterance) are not
 * captured for nothing, and every kernel the decode uses, cuBLAS's included, has run (and been
 * loaded) before a capture. The context never allows TF32, so nothing else changes the work.
 *
 * Batches (flexicodec_cuda_decode_batch): the same buffers hold several utterances packed along
 * time with zero gaps (groups and frames) wide enough for every conv's reach; the gaps are
 * zeroed again after each layer that writes them (their first rows per stage uploaded with the
 * codes), and the transformer runs attention per item (packed_layer). Run directly, never
 * captured: a batch's layout seldom repeats.
 *
 * Built only with the CUDA backend: sdk/CMakeLists.txt compiles every .c of the model folders
 * and defines SOTTO_HAVE_CUDA when the backend is built.
 */
#include "codecs/flexicodec/flexicodec_cuda.h"

#ifdef SOTTO_HAVE_CUDA

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_graph.h"
#include "backend/cuda/cuda_groups.h"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/cuda_rows.h"
#include "codecs/flexicodec/dac_cuda.h"
#include "nn/attn.h"

#define MAX_FRAMES (1 << 16)
#define K_HALF (FLEXICODEC_DAC_K / 2) /* padding of the k 7 convs */
/* The pool holds at least every DAC conv's whole im2col matrix up to this size; a longer
 * input runs those convs in row blocks (cuda_ops.h, sotto_cuda_conv1d_scratch). */
#define CONV_SCRATCH_CAP ((size_t)256 << 20)
/* Graphs a context keeps, one per frame count: a segmented decode's first, middle and last
 * windows and one more length all stay captured. */
#define GRAPH_SLOTS 4
/* Graph keys remembered as run directly once, so that their next call captures. */
#define SEEN_SLOTS 4
/* Bounds of the codes-in buffers (a graph key packs G in 24 bits, T in 24, S in 7). */
#define MAX_GROUPS (1 << 20)
#define MAX_LATENT_FRAMES (1 << 22)
/* Zero groups between two items of a batch: the ConvNeXt's depthwise conv reaches K - 1 groups
 * to one side (causal) or (K - 1) / 2 to each, so K - 1 zero rows hide any item from the next. */
#define GROUP_GAP FLEXICODEC_CUDA_BATCH_GROUP_GAP

typedef struct fc_block {
    int c_in, c_out, stride, padding;
    float *alpha; /* [c_in] */
    sotto_cuda_convtr1d_w up;
    float *up_b;
    flexicodec_cuda_res_unit ru[FLEXICODEC_RU_COUNT];
} fc_block;

typedef struct fc_cnx_block {
    sotto_cuda_conv1d_w dw; /* depthwise k 7 */
    float *dw_b, *ln_w, *ln_b;
    sotto_cuda_linear_w pw1, pw2;
    float *pw1_b, *pw2_b;
    float *gamma; /* NULL when absent (the release) */
} fc_cnx_block;

typedef struct fc_rvq_stage {
    int dim;
    float *codebook; /* [codebook_size][dim] */
    sotto_cuda_linear_w out_proj;
    float *out_b;
} fc_rvq_stage;

/* A model's decoder weights on the device (flexicodec_cuda_weights_create): uploaded once
 * through their own context, which does nothing else; every flexicodec_cuda made on them
 * reads them from its own stream. */
struct flexicodec_cuda_weights {
    sotto_cuda *cu;
    int device;
    flexicodec_hparams hp;
    int n_layers;
    sotto_cuda_tlayer *layers; /* [n_layers] */
    sotto_cuda_conv1d_w dac_in;
    float *dac_in_b;
    fc_block *blocks; /* [n_rates] */
    float *dac_alpha;
    sotto_cuda_conv1d_w dac_out;
    float *dac_out_b;
    /* the group stages */
    sotto_cuda_linear_w fsq_out;
    float *fsq_out_b;
    fc_cnx_block *cnx; /* [convnext_layers] when decode_semantic, else NULL */
    sotto_cuda_linear_w cnx_out;
    float *cnx_out_b;
    fc_rvq_stage *rvq; /* [n_codebooks] */
};

struct flexicodec_cuda {
    sotto_cuda *cu;
    flexicodec_hparams hp;
    const flexicodec_cuda_weights *wt; /* read only */
    flexicodec_cuda_weights *own;      /* wt, when flexicodec_cuda_create made it */
    int max_frames;
    /* activations (device) */
    float *lat;    /* [(max_frames + 6)][latent_dim], zero frames around the latent */
    float *buf[3]; /* buf_floats each */
    size_t buf_floats;
    /* CUDA graphs, used with use_graph: graph[i] holds the decode of one frame count (its key)
     * and leaves its samples at wave[i]; the least recently used is replaced first. */
    int use_graph;
    sotto_cuda_graph *graph[GRAPH_SLOTS];
    float *wave[GRAPH_SLOTS];
    int64_t used[GRAPH_SLOTS]; /* call number of the slot's last replay (0: free) */
    int64_t seen[SEEN_SLOTS];  /* graph keys run directly once and not captured since */
    int seen_next;             /* the entry of seen replaced next */
    int64_t calls, captures, launches;
    char msg[256]; /* what the last failed call found */
    /* codes in (flexicodec_cuda_enable_codes; all NULL before) */
    int max_groups, max_stages, max_latent;
    int32_t *h_idx; /* host staging of the per-group integers, n_idx of them */
    int32_t *d_idx; /* device: fsq[G], count[G], off[G + 1], ids[S][G] */
    size_t n_idx;
    float *codes; /* [max_groups][n_levels] */
    float *xp;    /* [max_groups + K - 1][convnext_dim]: the groups between the conv's zero rows */
    float *ct, *ch;      /* [max_groups][convnext_dim], [max_groups][intermediate] */
    float *sem;          /* [max_groups][latent] ConvNeXt output */
    float *ac, *tmp;     /* [max_groups][latent] acoustic sum, one stage's out_proj */
    float *emb;          /* [max_groups][widest code] codebook rows */
    float *ulat;         /* [max_latent][latent] a segmented utterance's latent */
    int64_t ulat_frames; /* frames of ulat from the last flexicodec_cuda_latent_from_codes */
    /* batches (flexicodec_cuda_decode_batch): gap zero frames between packed items in the
     * latent; the gaps' first rows, per stage (groups, latent, after each DAC block), on the
     * host and on the device, FLEXICODEC_CUDA_BATCH_MAX entries a stage */
    int gap;
    int32_t *h_gap, *d_gap;
};

/* A batch in the forward's buffers: n items, item j's latent frames at rows row[j] .. + len[j]
 * of the packed sequence, the gaps between them zeroed where a conv or an attention could
 * carry one item into the next. */
typedef struct fc_pack {
    int n;
    int row[FLEXICODEC_CUDA_BATCH_MAX], len[FLEXICODEC_CUDA_BATCH_MAX];
    int64_t gap_rows[FLEXICODEC_MAX_RATES + 1];      /* gap width: latent, after each block */
    const int32_t *starts[FLEXICODEC_MAX_RATES + 1]; /* device: the gaps' first rows, same */
} fc_pack;

/* ---- sizes -------------------------------------------------------------------------------- */

/* Output length of one decoder block: ConvTranspose1d k 2s, stride s, padding ceil(s/2). */
static int64_t block_out_len(int64_t L, int s)
{
    return L * s + s - 2 * ((s + 1) / 2);
}

static int max_dilation(const flexicodec_hparams *hp)
{
    int d = 1;
    for (int j = 0; j < FLEXICODEC_RU_COUNT; j++)
        if (hp->dilations[j] > d) d = hp->dilations[j];
    return d;
}

static void upd(int64_t *m, int64_t v)
{
    if (v > *m) *m = v;
}

/*
 * Zero frames between two items of a batch in the latent: the fewest that keep every conv of
 * one item from reading the next. The k 7 convs of the DAC's input and output read 3 rows to
 * each side, a residual unit's 3·d. A transposed conv (k 2s, stride s) maps a gap of g zero
 * rows to s·g − s + 2·ceil(s/2) rows between the cropped items: its taps reach one input row
 * (s output rows) past an item, which are zero, and the crops of both neighbours fall into
 * the gap. So g must stay ≥ 3·max d after every block, and ≥ 3 in the latent and at the end.
 */
static int batch_gap(const flexicodec_hparams *hp)
{
    for (int64_t g0 = K_HALF;; g0++) {
        int64_t g = g0;
        int ok = 1;
        for (int i = 0; i < hp->n_rates && ok; i++) {
            const int s = hp->decoder_rates[i];
            g = g * s - s + 2 * ((s + 1) / 2);
            ok = g >= 3 * (int64_t)max_dilation(hp) && g >= K_HALF;
        }
        if (ok) return (int)g0;
    }
}

/* Floats of each DAC buffer for T frames: every stage's input, Snake output, transposed-conv
 * output, padded residual-unit input and conv output. */
static int64_t dac_buf_floats(const flexicodec_hparams *hp, int64_t T)
{
    const int64_t P = 3 * (int64_t)max_dilation(hp);
    int64_t need = T * hp->decoder_dim, L = T;
    for (int i = 0; i < hp->n_rates; i++) {
        const int s = hp->decoder_rates[i];
        const int64_t c_in = hp->decoder_dim >> i, c_out = hp->decoder_dim >> (i + 1);
        const int64_t out = block_out_len(L, s);
        upd(&need, L * c_in);
        upd(&need, (L * s + s) * c_out);
        upd(&need, (out + 2 * P) * c_out);
        L = out;
    }
    upd(&need, (L + 2 * K_HALF) * (hp->decoder_dim >> hp->n_rates));
    return need;
}

/* ---- creation ----------------------------------------------------------------------------- */

static int device_status(sotto_cuda *cu, int rc, const char *what, sotto_status *st)
{
    const char *m = cu ? sotto_cuda_error_message(cu) : "";
    return sotto_status_set(st, rc, "flexicodec cuda: %s: %s", what, m[0] ? m : sotto_strerror(rc));
}

static int dev_buffer(flexicodec_cuda *c, size_t n_floats, float **d, sotto_status *st)
{
    int rc = sotto_cuda_alloc(c->cu, sizeof(float) * n_floats, (void **)d);
    return rc ? device_status(c->cu, rc, "buffer", st) : SOTTO_OK;
}

static int dev_vec(flexicodec_cuda_weights *c, const float *h, size_t n, float **d,
                   sotto_status *st)
{
    if (!h) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "flexicodec cuda: vector missing");
    int rc = sotto_cuda_alloc(c->cu, sizeof(float) * n, (void **)d);
    if (!rc) rc = sotto_cuda_upload(c->cu, *d, h, sizeof(float) * n);
    return rc ? device_status(c->cu, rc, "upload", st) : SOTTO_OK;
}

/* As dev_vec, NULL staying NULL (an optional vector). */
static int dev_vec_opt(flexicodec_cuda_weights *c, const float *h, size_t n, float **d,
                       sotto_status *st)
{
    *d = NULL;
    return h ? dev_vec(c, h, n, d, st) : SOTTO_OK;
}

/* The group stages: FSQ project_out, the ConvNeXt decoder, the RVQ codebooks and out_proj. */
static int upload_groups(flexicodec_cuda_weights *c, const flexicodec_decoder_weights *w,
                         sotto_status *st)
{
    const flexicodec_hparams *hp = &c->hp;
    const size_t C = (size_t)hp->convnext_dim, I = (size_t)hp->convnext_intermediate;
    const size_t lat = (size_t)hp->latent_dim;
    int rc;
    if (hp->n_levels < 1 || hp->n_levels > SOTTO_CUDA_FSQ_MAX_LEVELS || hp->n_codebooks < 0 ||
        (hp->n_codebooks > 0 && !w->rvq) || (hp->decode_semantic && !w->cnx))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "flexicodec cuda: group-stage weights not loaded");
    if ((rc = sotto_cuda_linear_w_from_cpu(c->cu, &c->fsq_out, &w->fsq_out, st)) ||
        (rc = dev_vec_opt(c, w->fsq_out_b, C, &c->fsq_out_b, st)))
        return rc;
    if (hp->decode_semantic) {
        if (!(c->cnx =
                  calloc((size_t)(hp->convnext_layers ? hp->convnext_layers : 1), sizeof *c->cnx)))
            return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
        for (int i = 0; i < hp->convnext_layers; i++) {
            const flexicodec_convnext_block *s = &w->cnx[i];
            fc_cnx_block *b = &c->cnx[i];
            if ((rc = sotto_cuda_conv1d_w_from_cpu(c->cu, &b->dw, &s->dw, st)) ||
                (rc = dev_vec_opt(c, s->dw_b, C, &b->dw_b, st)) ||
                (rc = dev_vec_opt(c, s->ln_w, C, &b->ln_w, st)) ||
                (rc = dev_vec_opt(c, s->ln_b, C, &b->ln_b, st)) ||
                (rc = sotto_cuda_linear_w_from_cpu(c->cu, &b->pw1, &s->pw1, st)) ||
                (rc = dev_vec_opt(c, s->pw1_b, I, &b->pw1_b, st)) ||
                (rc = sotto_cuda_linear_w_from_cpu(c->cu, &b->pw2, &s->pw2, st)) ||
                (rc = dev_vec_opt(c, s->pw2_b, C, &b->pw2_b, st)) ||
                (rc = dev_vec_opt(c, s->gamma, C, &b->gamma, st)))
                return rc;
            if (b->dw.c_in != (int)C || !b->dw.depthwise || b->dw.k != FLEXICODEC_CONVNEXT_K ||
                b->dw.stride != 1 || b->dw.dilation != 1 || b->pw1.n_in != (int)C ||
                b->pw1.n_out != (int)I || b->pw2.n_in != (int)I || b->pw2.n_out != (int)C)
                return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                        "flexicodec cuda: ConvNeXt weights of the wrong shape");
        }
        if ((rc = sotto_cuda_linear_w_from_cpu(c->cu, &c->cnx_out, &w->cnx_out, st)) ||
            (rc = dev_vec_opt(c, w->cnx_out_b, lat, &c->cnx_out_b, st)))
            return rc;
        if (c->cnx_out.n_in != (int)C || c->cnx_out.n_out != (int)lat)
            return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                    "flexicodec cuda: ConvNeXt output of the wrong shape");
    } else if (C != lat) {
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "flexicodec cuda: FSQ width %zu is not the latent width", C);
    }
    if (c->fsq_out.n_in != hp->n_levels || c->fsq_out.n_out != (int)C)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "flexicodec cuda: FSQ project_out of the wrong shape");
    if (!(c->rvq = calloc((size_t)(hp->n_codebooks ? hp->n_codebooks : 1), sizeof *c->rvq)))
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    for (int q = 0; q < hp->n_codebooks; q++) {
        const flexicodec_rvq_stage *s = &w->rvq[q];
        fc_rvq_stage *r = &c->rvq[q];
        r->dim = s->dim;
        if (s->dim < 1 || !s->codebook)
            return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                    "flexicodec cuda: RVQ stage %d not loaded", q);
        if ((rc = dev_vec(c, s->codebook, (size_t)hp->codebook_size * (size_t)s->dim, &r->codebook,
                          st)) ||
            (rc = sotto_cuda_linear_w_from_cpu(c->cu, &r->out_proj, &s->out_proj, st)) ||
            (rc = dev_vec_opt(c, s->out_b, lat, &r->out_b, st)))
            return rc;
        if (r->out_proj.n_in != s->dim || r->out_proj.n_out != (int)lat)
            return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                    "flexicodec cuda: RVQ out_proj %d of the wrong shape", q);
    }
    return SOTTO_OK;
}

static int upload_block(flexicodec_cuda_weights *c, const flexicodec_dac_block *s, fc_block *b,
                        sotto_status *st)
{
    b->c_in = s->c_in;
    b->c_out = s->c_out;
    b->stride = s->stride;
    b->padding = s->padding;
    const size_t C = (size_t)s->c_out;
    int rc;
    if ((rc = dev_vec(c, s->alpha, (size_t)s->c_in, &b->alpha, st)) ||
        (rc = sotto_cuda_convtr1d_w_from_cpu(c->cu, &b->up, &s->up, st)) ||
        (rc = dev_vec(c, s->up_b, C, &b->up_b, st)))
        return rc;
    for (int j = 0; j < FLEXICODEC_RU_COUNT; j++)
        if ((rc = flexicodec_cuda_res_unit_upload(c->cu, &s->ru[j], s->c_out, &b->ru[j], st)))
            return rc;
    if (b->up.c_in != s->c_in || b->up.c_out != s->c_out || b->up.k != 2 * s->stride ||
        b->up.stride != s->stride || b->up.dilation != 1 || b->up.groups != 1 ||
        s->padding != (s->stride + 1) / 2)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "flexicodec cuda: upsampler weights of the wrong shape");
    return SOTTO_OK;
}

static int upload_weights(flexicodec_cuda_weights *c, const flexicodec_decoder_weights *w,
                          const flexicodec_bottleneck *bt, sotto_status *st)
{
    const flexicodec_hparams *hp = &c->hp;
    int rc;
    for (int i = 0; i < c->n_layers; i++)
        if ((rc = sotto_cuda_tlayer_init(c->cu, &c->layers[i], &bt->layers[i], st))) return rc;
    if ((rc = sotto_cuda_conv1d_w_from_cpu(c->cu, &c->dac_in, &w->dac_in, st)) ||
        (rc = dev_vec(c, w->dac_in_b, (size_t)hp->decoder_dim, &c->dac_in_b, st)))
        return rc;
    for (int i = 0; i < hp->n_rates; i++)
        if ((rc = upload_block(c, &w->blocks[i], &c->blocks[i], st))) return rc;
    const int c_last = hp->decoder_dim >> hp->n_rates;
    if ((rc = dev_vec(c, w->dac_alpha, (size_t)c_last, &c->dac_alpha, st)) ||
        (rc = sotto_cuda_conv1d_w_from_cpu(c->cu, &c->dac_out, &w->dac_out, st)) ||
        (rc = dev_vec(c, w->dac_out_b, 1, &c->dac_out_b, st)) || (rc = upload_groups(c, w, st)))
        return rc;
    if (c->dac_in.c_in != hp->latent_dim || c->dac_in.c_out != hp->decoder_dim ||
        c->dac_in.k != FLEXICODEC_DAC_K || c->dac_in.groups != 1 || c->dac_in.stride != 1 ||
        c->dac_in.dilation != 1 || c->dac_out.c_in != c_last || c->dac_out.c_out != 1 ||
        c->dac_out.k != FLEXICODEC_DAC_K || c->dac_out.stride != 1 || c->dac_out.dilation != 1)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "flexicodec cuda: DAC conv weights of the wrong shape");
    return SOTTO_OK;
}

/* Scratch pool bytes for T frames, from the device weights' geometry: the larger of a
 * transformer layer's temporaries and the DAC convs' im2col matrices (capped; longer inputs
 * run in row blocks). */
static size_t scratch_bytes(const flexicodec_cuda_weights *d, int64_t T)
{
    const flexicodec_hparams *hp = &d->hp;
    size_t conv = sotto_cuda_conv1d_scratch(&d->dac_in, T + 2 * K_HALF), s;
    int64_t L = T;
    for (int i = 0; i < hp->n_rates; i++) {
        const fc_block *b = &d->blocks[i];
        L = block_out_len(L, b->stride);
        for (int j = 0; j < FLEXICODEC_RU_COUNT; j++)
            if ((s = sotto_cuda_conv1d_scratch(&b->ru[j].conv7,
                                               L + 6 * (int64_t)b->ru[j].dilation)) > conv)
                conv = s;
    }
    if ((s = sotto_cuda_conv1d_scratch(&d->dac_out, L + 2 * K_HALF)) > conv) conv = s;
    if (conv > CONV_SCRATCH_CAP) conv = CONV_SCRATCH_CAP;
    size_t tl = 0;
    if (d->n_layers > 0 && !(tl = sotto_cuda_tlayer_scratch(&d->layers[0], T))) return 0;
    return (tl > conv ? tl : conv) + 4096;
}

/* ---- weights ------------------------------------------------------------------------------ */

void flexicodec_cuda_weights_free(flexicodec_cuda_weights *c)
{
    if (!c) return;
    sotto_cuda *cu = c->cu;
    if (cu) {
        for (int i = 0; c->layers && i < c->n_layers; i++)
            sotto_cuda_tlayer_free(cu, &c->layers[i]);
        for (int i = 0; c->blocks && i < c->hp.n_rates; i++) {
            fc_block *b = &c->blocks[i];
            sotto_cuda_convtr1d_w_free(cu, &b->up);
            sotto_cuda_free(cu, b->alpha);
            sotto_cuda_free(cu, b->up_b);
            for (int j = 0; j < FLEXICODEC_RU_COUNT; j++)
                flexicodec_cuda_res_unit_free(cu, &b->ru[j]);
        }
        sotto_cuda_conv1d_w_free(cu, &c->dac_in);
        sotto_cuda_conv1d_w_free(cu, &c->dac_out);
        float *bufs[] = {c->dac_in_b, c->dac_alpha, c->dac_out_b, c->fsq_out_b, c->cnx_out_b};
        for (size_t i = 0; i < SOTTO_ARRAY_LEN(bufs); i++)
            sotto_cuda_free(cu, bufs[i]);
        sotto_cuda_linear_w_free(cu, &c->fsq_out);
        sotto_cuda_linear_w_free(cu, &c->cnx_out);
        for (int i = 0; c->cnx && i < c->hp.convnext_layers; i++) {
            fc_cnx_block *b = &c->cnx[i];
            sotto_cuda_conv1d_w_free(cu, &b->dw);
            sotto_cuda_linear_w_free(cu, &b->pw1);
            sotto_cuda_linear_w_free(cu, &b->pw2);
            float *v[] = {b->dw_b, b->ln_w, b->ln_b, b->pw1_b, b->pw2_b, b->gamma};
            for (size_t k = 0; k < SOTTO_ARRAY_LEN(v); k++)
                sotto_cuda_free(cu, v[k]);
        }
        for (int q = 0; c->rvq && q < c->hp.n_codebooks; q++) {
            sotto_cuda_free(cu, c->rvq[q].codebook);
            sotto_cuda_linear_w_free(cu, &c->rvq[q].out_proj);
            sotto_cuda_free(cu, c->rvq[q].out_b);
        }
        sotto_cuda_destroy(cu);
    }
    free(c->layers);
    free(c->blocks);
    free(c->cnx);
    free(c->rvq);
    free(c);
}

int flexicodec_cuda_weights_create(const flexicodec_decoder_weights *w,
                                   const flexicodec_bottleneck *bt, int device,
                                   flexicodec_cuda_weights **out, sotto_status *st)
{
    if (!out) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "flexicodec cuda: out is NULL");
    *out = NULL;
    if (!w || !bt || device < 0)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "flexicodec cuda: NULL weights or device %d out of range", device);
    const flexicodec_hparams *hp = &w->hp;
    if (!w->blocks || hp->n_rates < 1 || hp->n_rates > FLEXICODEC_MAX_RATES || hp->latent_dim < 1 ||
        bt->cfg.n_layers < 0 || (bt->cfg.n_layers > 0 && !bt->layers) ||
        (bt->cfg.n_layers > 0 && bt->cfg.dim != hp->latent_dim))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "flexicodec cuda: weights not loaded, or a transformer width "
                                "(%d) other than the latent width (%d)",
                                bt->cfg.dim, hp->latent_dim);
    flexicodec_cuda_weights *c = calloc(1, sizeof *c);
    if (!c) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    c->hp = *hp;
    c->device = device;
    c->n_layers = bt->cfg.n_layers;
    int rc;
    if (!(c->layers = calloc((size_t)(c->n_layers ? c->n_layers : 1), sizeof *c->layers)) ||
        !(c->blocks = calloc((size_t)hp->n_rates, sizeof *c->blocks))) {
        flexicodec_cuda_weights_free(c);
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    }
    if ((rc = sotto_cuda_create(&c->cu, device, 0, st)) || (rc = upload_weights(c, w, bt, st))) {
        flexicodec_cuda_weights_free(c);
        return rc;
    }
    *out = c;
    return SOTTO_OK;
}

/* ---- contexts ----------------------------------------------------------------------------- */

int flexicodec_cuda_create(const flexicodec_decoder_weights *w, const flexicodec_bottleneck *bt,
                           int device, int max_frames, flexicodec_cuda **out, sotto_status *st)
{
    if (!out) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "flexicodec cuda: out is NULL");
    *out = NULL;
    if (max_frames < 1 || max_frames > MAX_FRAMES)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "flexicodec cuda: max_frames %d out of range (1..%d)", max_frames,
                                MAX_FRAMES);
    flexicodec_cuda_weights *d = NULL;
    int rc = flexicodec_cuda_weights_create(w, bt, device, &d, st);
    if (rc) return rc;
    if ((rc = flexicodec_cuda_create_shared(d, max_frames, out, st))) {
        flexicodec_cuda_weights_free(d);
        return rc;
    }
    (*out)->own = d;
    return SOTTO_OK;
}

int flexicodec_cuda_create_shared(const flexicodec_cuda_weights *wt, int max_frames,
                                  flexicodec_cuda **out, sotto_status *st)
{
    if (!out) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "flexicodec cuda: out is NULL");
    *out = NULL;
    if (!wt || max_frames < 1 || max_frames > MAX_FRAMES)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "flexicodec cuda: NULL weights or max_frames %d out of range "
                                "(1..%d)",
                                max_frames, MAX_FRAMES);
    const flexicodec_hparams *hp = &wt->hp;
    const size_t scratch = scratch_bytes(wt, max_frames);
    if (!scratch)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "flexicodec cuda: transformer layers not prepared");
    flexicodec_cuda *c = calloc(1, sizeof *c);
    if (!c) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    c->hp = *hp;
    c->wt = wt;
    c->max_frames = max_frames;
    c->gap = batch_gap(hp);
    int rc;
    c->buf_floats = (size_t)dac_buf_floats(hp, max_frames);
    if ((rc = sotto_cuda_create(&c->cu, wt->device, scratch, st)) ||
        (rc = dev_buffer(c, ((size_t)max_frames + 2 * K_HALF) * (size_t)hp->latent_dim, &c->lat,
                         st)))
        goto fail;
    for (int i = 0; i < 3; i++)
        if ((rc = dev_buffer(c, c->buf_floats, &c->buf[i], st))) goto fail;
    for (int i = 0; i < GRAPH_SLOTS; i++)
        if ((rc = sotto_cuda_graph_create(c->cu, &c->graph[i]))) {
            rc = device_status(c->cu, rc, "graph", st);
            goto fail;
        }
    *out = c;
    return SOTTO_OK;
fail:
    flexicodec_cuda_free(c);
    return rc;
}

void flexicodec_cuda_free(flexicodec_cuda *c)
{
    if (!c) return;
    sotto_cuda *cu = c->cu;
    for (int i = 0; i < GRAPH_SLOTS; i++)
        sotto_cuda_graph_destroy(c->graph[i]);
    if (cu) {
        float *bufs[] = {c->lat, c->buf[0], c->buf[1], c->buf[2], c->codes, c->xp,  c->ct,
                         c->ch,  c->sem,    c->ac,     c->tmp,    c->emb,   c->ulat};
        for (size_t i = 0; i < SOTTO_ARRAY_LEN(bufs); i++)
            sotto_cuda_free(cu, bufs[i]);
        sotto_cuda_free(cu, c->d_idx);
        sotto_cuda_free(cu, c->d_gap);
        sotto_cuda_destroy(cu);
    }
    free(c->h_idx);
    free(c->h_gap);
    flexicodec_cuda_weights_free(c->own);
    free(c);
}

/* ---- forward ------------------------------------------------------------------------------ */

int64_t flexicodec_cuda_output_length(const flexicodec_cuda *c, int64_t T)
{
    return c && T > 0 ? flexicodec_dac_out_len(&c->hp, T) : 0;
}

const char *flexicodec_cuda_last_error(const flexicodec_cuda *c)
{
    return c ? c->msg : "";
}

static int64_t fail_msg(flexicodec_cuda *c, int code, const char *msg)
{
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    return code;
}

/* A layer call returned r: the context's error (with its message) when it failed, else a
 * layer refused the arguments this file sized, or produced the wrong frame count. */
static int64_t layer_failed(flexicodec_cuda *c, int64_t r, const char *layer)
{
    const int err = sotto_cuda_error(c->cu);
    if (err) {
        snprintf(c->msg, sizeof c->msg, "flexicodec cuda: %s: %s", layer,
                 sotto_cuda_error_message(c->cu));
        return err;
    }
    snprintf(c->msg, sizeof c->msg, "flexicodec cuda: internal error: %s returned %lld", layer,
             (long long)r);
    return r < 0 ? r : SOTTO_ERR_INTERNAL;
}

/* x[L][C] (in buffer ix) += the residual unit, its conv7 input and output in the two free
 * buffers (dac_cuda.h). */
static int64_t res_unit(flexicodec_cuda *c, const flexicodec_cuda_res_unit *u, float *x, int ix,
                        int64_t L, int C)
{
    const char *what = "";
    const int64_t r = flexicodec_cuda_res_unit_run(c->cu, u, x, c->buf[(ix + 1) % 3],
                                                   c->buf[(ix + 2) % 3], L, C, &what);
    return r ? layer_failed(c, r, what) : SOTTO_OK;
}

/* Zeroes the gaps of a batch at stage k in x[·][C] (nothing for a single sequence). */
static int64_t zero_gaps(flexicodec_cuda *c, const fc_pack *pk, int k, float *x, int C)
{
    if (!pk || pk->n < 2) return SOTTO_OK;
    const int64_t r =
        sotto_cuda_zero_row_groups(c->cu, x, C, pk->starts[k], pk->n - 1, (int)pk->gap_rows[k]);
    return r ? layer_failed(c, r, "batch gaps") : SOTTO_OK;
}

static int tl_norm(sotto_cuda *cu, const sotto_cuda_tlayer *L, const float *x, int64_t T,
                   const float *w, const float *b, float *y)
{
    if (L->norm == SOTTO_NORM_RMS) return sotto_cuda_rmsnorm(cu, x, T, L->dim, w, L->norm_eps, y);
    return sotto_cuda_layernorm(cu, x, T, L->dim, w, b, L->norm_eps, y);
}

/*
 * sotto_cuda_tlayer_forward in place on the P packed rows of a batch: every norm, Linear and
 * the FFN once over all rows, RoPE (positions from 0) and attention once per item on its own
 * rows, so no item attends to another or to a gap. The gap rows of the attention output are
 * zeroed (nothing else writes them), so whatever the gaps hold stays finite and row-local; the
 * forward zeroes them in x afterwards.
 */
static int packed_layer(flexicodec_cuda *c, const sotto_cuda_tlayer *L, float *x, int64_t P,
                        const fc_pack *pk)
{
    sotto_cuda *cu = c->cu;
    const int64_t d = L->dim, ld3 = 3 * d;
    const size_t mark = sotto_cuda_scratch_used(cu), fl = sizeof(float);
    float *h, *a, *qkv, *o;
    int rc;
    if ((rc = sotto_cuda_scratch_alloc(cu, (size_t)(P * d) * fl, (void **)&h)) ||
        (rc = sotto_cuda_scratch_alloc(cu, (size_t)(P * d) * fl, (void **)&a)) ||
        (rc = tl_norm(cu, L, x, P, L->norm1_w, L->norm1_b, h)))
        return rc;
    const size_t mark_attn = sotto_cuda_scratch_used(cu);
    if ((rc = sotto_cuda_scratch_alloc(cu, (size_t)(P * ld3) * fl, (void **)&qkv)) ||
        (rc = sotto_cuda_scratch_alloc(cu, (size_t)(P * d) * fl, (void **)&o)) ||
        (rc = sotto_cuda_linear(cu, &L->qkv, L->qkv_b, h, P, qkv)))
        return rc;
    for (int j = 0; j < pk->n; j++) {
        float *q = qkv + (int64_t)pk->row[j] * ld3;
        const int64_t T = pk->len[j];
        if ((rc = sotto_cuda_rope_apply(cu, &L->rope, q, ld3, T, L->n_heads, 0)) ||
            (rc = sotto_cuda_rope_apply(cu, &L->rope, q + d, ld3, T, L->n_heads, 0)) ||
            (rc = sotto_cuda_attention(cu, q, q + d, q + 2 * d, ld3, T, L->n_heads, L->head_dim,
                                       L->causal, L->window, o + (int64_t)pk->row[j] * d, d)))
            return rc;
    }
    if (pk->n > 1 && (rc = sotto_cuda_zero_row_groups(cu, o, (int)d, pk->starts[0], pk->n - 1,
                                                      (int)pk->gap_rows[0])))
        return rc;
    if ((rc = sotto_cuda_linear(cu, &L->out, L->out_b, o, P, a))) return rc;
    sotto_cuda_scratch_rewind(cu, mark_attn);
    if ((rc = sotto_cuda_residual(cu, x, a, L->ls1, P, (int)d, x)) ||
        (rc = tl_norm(cu, L, x, P, L->norm2_w, L->norm2_b, h)) ||
        (rc = sotto_cuda_tlayer_ffn(cu, L, h, P, a)) ||
        (rc = sotto_cuda_residual(cu, x, a, L->ls2, P, (int)d, x)))
        return rc;
    sotto_cuda_scratch_rewind(cu, mark);
    return SOTTO_OK;
}

/*
 * The device work of a decode of T frames whose latent is already in rows [K_HALF, K_HALF + T)
 * of c->lat: the zero frames around it, the transformer, the DAC decoder and the tanh, into
 * *wave. Only enqueues work on fixed buffers (no upload, download or sync), with addresses and
 * sizes fixed by T, so a graph can record it. Returns the sample count or an error. With pk
 * the T frames are a packed batch: the transformer runs per item where rows meet
 * (packed_layer), and every gap is zeroed after each layer that writes it and before the next
 * conv reads it, so each item sees the zero padding it would have alone.
 */
static int64_t enqueue_forward(flexicodec_cuda *c, int T, const fc_pack *pk, float **wave)
{
    sotto_cuda *cu = c->cu;
    const flexicodec_hparams *hp = &c->hp;
    const int lat = hp->latent_dim;
    int64_t r;
    sotto_cuda_scratch_reset(cu);

    /* the latent between K_HALF zero frames on each side */
    const size_t edge = sizeof(float) * (size_t)K_HALF * (size_t)lat;
    float *x = c->lat + (size_t)K_HALF * lat;
    if ((r = sotto_cuda_memset0(cu, c->lat, edge)) ||
        (r = sotto_cuda_memset0(cu, x + (size_t)T * lat, edge)))
        return layer_failed(c, r, "latent padding");

    for (int i = 0; i < c->wt->n_layers; i++)
        if ((r = pk ? packed_layer(c, &c->wt->layers[i], x, T, pk)
                    : sotto_cuda_tlayer_forward(cu, &c->wt->layers[i], x, T, 0, x)))
            return layer_failed(c, r, "bottleneck transformer");
    if ((r = zero_gaps(c, pk, 0, x, lat))) return r;

    /* DAC decoder: X in buffer ix */
    int ix = 0;
    float *X = c->buf[0];
    if ((r = sotto_cuda_conv1d(cu, &c->wt->dac_in, c->wt->dac_in_b, c->lat, T + 2 * K_HALF, X)) !=
        T)
        return layer_failed(c, r, "DAC input conv");
    if ((r = zero_gaps(c, pk, 0, X, hp->decoder_dim))) return r;
    int64_t L = T;
    for (int i = 0; i < hp->n_rates; i++) {
        const fc_block *b = &c->wt->blocks[i];
        float *A = c->buf[(ix + 1) % 3];
        const int ib = (ix + 2) % 3;
        if ((r = sotto_cuda_snake(cu, X, L, b->c_in, b->alpha, A)))
            return layer_failed(c, r, "block Snake");
        if ((r = sotto_cuda_conv_transpose1d(cu, &b->up, b->up_b, A, L, c->buf[ib])) !=
            L * b->stride + b->stride)
            return layer_failed(c, r, "upsampler");
        /* torch's padding cropped from both ends: X starts `padding` rows into the output */
        ix = ib;
        X = c->buf[ib] + (size_t)b->padding * b->c_out;
        L = block_out_len(L, b->stride);
        if ((r = zero_gaps(c, pk, i + 1, X, b->c_out))) return r;
        for (int j = 0; j < FLEXICODEC_RU_COUNT; j++)
            if ((r = res_unit(c, &b->ru[j], X, ix, L, b->c_out)) ||
                (r = zero_gaps(c, pk, i + 1, X, b->c_out)))
                return r;
    }
    if (L != flexicodec_dac_out_len(hp, T))
        return fail_msg(c, SOTTO_ERR_INTERNAL, "flexicodec cuda: output length");

    const int c_last = hp->decoder_dim >> hp->n_rates;
    float *A = c->buf[(ix + 1) % 3], *w = c->buf[(ix + 2) % 3];
    const size_t edge_last = sizeof(float) * (size_t)K_HALF * (size_t)c_last;
    if ((r = sotto_cuda_memset0(cu, A, edge_last)) ||
        (r = sotto_cuda_memset0(cu, A + (size_t)(K_HALF + L) * c_last, edge_last)) ||
        (r = sotto_cuda_snake(cu, X, L, c_last, c->wt->dac_alpha, A + (size_t)K_HALF * c_last)))
        return layer_failed(c, r, "final Snake");
    if ((r = sotto_cuda_conv1d(cu, &c->wt->dac_out, c->wt->dac_out_b, A, L + 2 * K_HALF, w)) != L)
        return layer_failed(c, r, "DAC output conv");
    if ((r = sotto_cuda_tanh(cu, w, L, w))) return layer_failed(c, r, "output tanh");
    *wave = w;
    return L;
}

/*
 * The group stages of G groups (the per-group integers already in d_idx, S stages decoded)
 * into dst[T][latent]: FSQ codes, project_out, the ConvNeXt decoder, the RVQ stages, the sum,
 * the expansion. Only enqueues work, on buffers whose addresses depend on G alone.
 */
static int64_t enqueue_groups(flexicodec_cuda *c, int G, int S, int64_t T, const int32_t *gaps,
                              int n_gaps, float *dst)
{
    sotto_cuda *cu = c->cu;
    const flexicodec_cuda_weights *wt = c->wt;
    const flexicodec_hparams *hp = &c->hp;
    const int C = hp->convnext_dim, I = hp->convnext_intermediate, lat = hp->latent_dim;
    const int32_t *fsq = c->d_idx, *cnt = fsq + G, *off = cnt + G, *ids = off + G + 1;
    const int pad_l = hp->convnext_causal ? FLEXICODEC_CONVNEXT_K - 1 : FLEXICODEC_CONVNEXT_K / 2;
    const int pad_r = FLEXICODEC_CONVNEXT_K - 1 - pad_l;
    float *x = c->xp + (size_t)pad_l * C;
    int64_t r;
    if ((r = sotto_cuda_fsq_codes(cu, fsq, cnt, G, hp->fsq_levels, hp->n_levels, c->codes)) ||
        (r = sotto_cuda_linear(cu, &wt->fsq_out, wt->fsq_out_b, c->codes, G, x)))
        return layer_failed(c, r, "FSQ decode");
    const float *sem = x; /* without decode_semantic_for_codec the FSQ output is the latent */
    if (hp->decode_semantic) {
        /* the depthwise conv's zero padding, as sotto_conv1d_padded pads on the CPU */
        const size_t row = sizeof(float) * (size_t)C;
        if ((pad_l && (r = sotto_cuda_memset0(cu, c->xp, row * (size_t)pad_l))) ||
            (pad_r && (r = sotto_cuda_memset0(cu, x + (size_t)G * C, row * (size_t)pad_r))))
            return layer_failed(c, r, "ConvNeXt padding");
        for (int i = 0; i < hp->convnext_layers; i++) {
            const fc_cnx_block *b = &wt->cnx[i];
            /* a batch's zero groups between items, which each residual rewrites */
            if (n_gaps > 0 && (r = sotto_cuda_zero_row_groups(cu, x, C, gaps, n_gaps, GROUP_GAP)))
                return layer_failed(c, r, "ConvNeXt batch gaps");
            if ((r = sotto_cuda_conv1d(cu, &b->dw, b->dw_b, c->xp, G + FLEXICODEC_CONVNEXT_K - 1,
                                       c->ct)) != G)
                return layer_failed(c, r, "ConvNeXt depthwise conv");
            if ((r = sotto_cuda_layernorm(cu, c->ct, G, C, b->ln_w, b->ln_b, hp->convnext_eps,
                                          c->ct)) ||
                (r = sotto_cuda_linear(cu, &b->pw1, b->pw1_b, c->ct, G, c->ch)) ||
                (r = sotto_cuda_gelu_erf(cu, c->ch, (int64_t)G * I, c->ch)) ||
                (r = sotto_cuda_linear(cu, &b->pw2, b->pw2_b, c->ch, G, c->ct)) ||
                (r = sotto_cuda_residual(cu, x, c->ct, b->gamma, G, C, x)))
                return layer_failed(c, r, "ConvNeXt block");
        }
        if ((r = sotto_cuda_linear(cu, &wt->cnx_out, wt->cnx_out_b, x, G, c->sem)))
            return layer_failed(c, r, "ConvNeXt output");
        sem = c->sem;
    }
    for (int q = 0; q < S; q++) {
        const fc_rvq_stage *s = &wt->rvq[q];
        if ((r = sotto_cuda_embedding(cu, s->codebook, hp->codebook_size, s->dim,
                                      ids + (size_t)q * G, G, c->emb)) ||
            (r = sotto_cuda_linear(cu, &s->out_proj, NULL, c->emb, G, c->tmp)) ||
            (r = sotto_cuda_rows_masked_add(cu, c->ac, c->tmp, s->out_b, cnt, q, q == 0, G, lat)))
            return layer_failed(c, r, "RVQ decode");
    }
    if ((r = sotto_cuda_expand_rows(cu, sem, S ? c->ac : NULL, off, G, lat, T, dst)))
        return layer_failed(c, r, "expansion");
    return SOTTO_OK;
}

/* What one decode enqueues: a latent-in window of T frames (G = 0), or the group stages of
 * G groups and S stages into the window's T frames, then the window. */
typedef struct fc_job {
    int T, G, S;
} fc_job;

static int64_t job_key(const fc_job *j)
{
    if (!j->G) return j->T;
    return ((int64_t)1 << 62) | ((int64_t)j->S << 48) | ((int64_t)j->G << 24) | j->T;
}

static int64_t enqueue_job(flexicodec_cuda *c, const fc_job *j, float **wave)
{
    if (j->G) {
        sotto_cuda_scratch_reset(c->cu);
        const int64_t r = enqueue_groups(c, j->G, j->S, j->T, NULL, 0,
                                         c->lat + (size_t)K_HALF * c->hp.latent_dim);
        if (r) return r;
    }
    return enqueue_forward(c, j->T, NULL, wave);
}

/* 1 (and forgets it) when key ran directly once since it was last captured, else remembers
 * it and returns 0. */
static int seen_before(flexicodec_cuda *c, int64_t key)
{
    for (int i = 0; i < SEEN_SLOTS; i++)
        if (c->seen[i] == key) {
            c->seen[i] = 0;
            return 1;
        }
    c->seen[c->seen_next] = key;
    c->seen_next = (c->seen_next + 1) % SEEN_SLOTS;
    return 0;
}

/* The work of enqueue_job: directly, or as a graph replay of its key (captured first when the
 * key comes for the second time). */
static int64_t run_job(flexicodec_cuda *c, const fc_job *j, float **wave)
{
    if (!c->use_graph) return enqueue_job(c, j, wave);
    c->calls++;
    const int64_t key = job_key(j);
    int slot = -1;
    for (int i = 0; i < GRAPH_SLOTS && slot < 0; i++)
        if (sotto_cuda_graph_ready(c->graph[i], key)) slot = i;
    int64_t r;
    if (slot < 0) {
        if (!seen_before(c, key)) return enqueue_job(c, j, wave);
        slot = 0;
        for (int i = 1; i < GRAPH_SLOTS; i++)
            if (c->used[i] < c->used[slot]) slot = i;
        sotto_cuda_graph *g = c->graph[slot];
        c->used[slot] = 0;
        if ((r = sotto_cuda_graph_begin(g, key))) return layer_failed(c, r, "graph begin");
        const int64_t got = enqueue_job(c, j, &c->wave[slot]);
        r = sotto_cuda_graph_end(g); /* ends the capture even after a failure */
        if (got < 0 || r) {
            /* never replay a capture that stopped short (an error that left the context
             * working still instantiated what was recorded) */
            sotto_cuda_graph_invalidate(g);
            return got < 0 ? got : layer_failed(c, r, "graph end");
        }
        c->captures++;
    }
    c->used[slot] = c->calls;
    if ((r = sotto_cuda_graph_launch(c->graph[slot]))) return layer_failed(c, r, "graph launch");
    c->launches++;
    *wave = c->wave[slot];
    return flexicodec_dac_out_len(&c->hp, j->T);
}

static int64_t finish(flexicodec_cuda *c, const fc_job *job, int64_t len, float *out_host);

int64_t flexicodec_cuda_decode(flexicodec_cuda *c, const float *latent_host, int T, float *out_host,
                               int64_t capacity)
{
    if (!c) return SOTTO_ERR_INVALID_ARG;
    c->msg[0] = '\0';
    sotto_cuda *cu = c->cu;
    const flexicodec_hparams *hp = &c->hp;
    const int lat = hp->latent_dim;
    if (!latent_host || !out_host || T < 1 || T > c->max_frames)
        return fail_msg(c, SOTTO_ERR_INVALID_ARG,
                        "flexicodec cuda: NULL buffer or frame count outside 1..max_frames");
    for (int64_t i = 0; i < (int64_t)T * lat; i++)
        if (!isfinite(latent_host[i]))
            return fail_msg(c, SOTTO_ERR_INVALID_ARG, "flexicodec cuda: non-finite latent value");
    const int64_t len = flexicodec_dac_out_len(hp, T);
    if (capacity < len)
        return fail_msg(c, SOTTO_ERR_BUFFER_TOO_SMALL,
                        "flexicodec cuda: output capacity below the samples of the forward");
    int64_t r = sotto_cuda_error(cu);
    if (r) return layer_failed(c, r, "context");

    /* the latent into its fixed rows, outside any graph */
    if ((r = sotto_cuda_upload(cu, c->lat + (size_t)K_HALF * lat, latent_host,
                               sizeof(float) * (size_t)T * lat)))
        return layer_failed(c, r, "latent upload");
    const fc_job job = {.T = T};
    return finish(c, &job, len, out_host);
}

/* Runs job and downloads its len samples into out_host. */
static int64_t finish(flexicodec_cuda *c, const fc_job *job, int64_t len, float *out_host)
{
    float *wave = NULL;
    const int64_t L = run_job(c, job, &wave);
    if (L < 0) return L;
    if (L != len) return fail_msg(c, SOTTO_ERR_INTERNAL, "flexicodec cuda: output length");
    const int64_t r = sotto_cuda_download(c->cu, out_host, wave, sizeof(float) * (size_t)L);
    if (r) return layer_failed(c, r, "output download");
    for (int64_t i = 0; i < L; i++)
        if (!isfinite(out_host[i]))
            return fail_msg(c, SOTTO_ERR_INTERNAL, "flexicodec cuda: non-finite output sample");
    return L;
}

/* ---- codes in ----------------------------------------------------------------------------- */

int flexicodec_cuda_enable_codes(flexicodec_cuda *c, int max_groups, int max_stages,
                                 int max_latent_frames, sotto_status *st)
{
    if (!c) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "flexicodec cuda: NULL context");
    const flexicodec_hparams *hp = &c->hp;
    if (max_groups < 1 || max_groups > MAX_GROUPS || max_stages < 0 ||
        max_stages > hp->n_codebooks || max_latent_frames < 1 ||
        max_latent_frames > MAX_LATENT_FRAMES)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "flexicodec cuda: codes bounds out of range (groups %d, stages %d "
                                "of %d, frames %d)",
                                max_groups, max_stages, hp->n_codebooks, max_latent_frames);
    if (c->d_idx)
        return sotto_status_set(st, SOTTO_ERR_STATE, "flexicodec cuda: codes already enabled");
    const size_t G = (size_t)max_groups, lat = (size_t)hp->latent_dim;
    const size_t C = (size_t)hp->convnext_dim, I = (size_t)hp->convnext_intermediate;
    size_t widest = 1;
    for (int q = 0; q < max_stages; q++)
        if ((size_t)c->wt->rvq[q].dim > widest) widest = (size_t)c->wt->rvq[q].dim;
    c->n_idx = 3 * G + 1 + (size_t)max_stages * G;
    const size_t n_gap = (size_t)(hp->n_rates + 2) * FLEXICODEC_CUDA_BATCH_MAX;
    int rc;
    if (!(c->h_idx = malloc(sizeof(int32_t) * c->n_idx)) ||
        !(c->h_gap = malloc(sizeof(int32_t) * n_gap)))
        return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    if ((rc = sotto_cuda_alloc(c->cu, sizeof(int32_t) * c->n_idx, (void **)&c->d_idx))) {
        rc = device_status(c->cu, rc, "codes buffer", st);
        goto fail;
    }
    if ((rc = sotto_cuda_alloc(c->cu, sizeof(int32_t) * n_gap, (void **)&c->d_gap))) {
        rc = device_status(c->cu, rc, "batch buffer", st);
        goto fail;
    }
    if ((rc = dev_buffer(c, G * (size_t)hp->n_levels, &c->codes, st)) ||
        (rc = dev_buffer(c, (G + FLEXICODEC_CONVNEXT_K - 1) * C, &c->xp, st)) ||
        (rc = dev_buffer(c, (size_t)max_latent_frames * lat, &c->ulat, st)))
        goto fail;
    if (hp->decode_semantic &&
        ((rc = dev_buffer(c, G * C, &c->ct, st)) || (rc = dev_buffer(c, G * I, &c->ch, st)) ||
         (rc = dev_buffer(c, G * lat, &c->sem, st))))
        goto fail;
    if (max_stages > 0 &&
        ((rc = dev_buffer(c, G * lat, &c->ac, st)) || (rc = dev_buffer(c, G * lat, &c->tmp, st)) ||
         (rc = dev_buffer(c, G * widest, &c->emb, st))))
        goto fail;
    c->max_groups = max_groups;
    c->max_stages = max_stages;
    c->max_latent = max_latent_frames;
    c->ulat_frames = -1;
    return SOTTO_OK;
fail:
    /* back to a latent-in context; the buffers that did come stay until it is freed */
    sotto_cuda_free(c->cu, c->d_idx);
    c->d_idx = NULL;
    return rc;
}

/* Checks the codes on the host, packs every per-group integer into h_idx (the layout of
 * enqueue_groups) and uploads it. *S gets the stages decoded (the most any group carries).
 * Returns the frame count T ≥ 1 or an error. */
static int64_t upload_codes(flexicodec_cuda *c, const flexicodec_cuda_codes *in, int *S)
{
    const flexicodec_hparams *hp = &c->hp;
    if (!c->d_idx)
        return fail_msg(c, SOTTO_ERR_STATE,
                        "flexicodec cuda: codes in not enabled (flexicodec_cuda_enable_codes)");
    if (!in || in->n_groups < 1 || in->n_groups > c->max_groups || !in->lengths || !in->fsq ||
        !in->n_stages || in->ldr < 0)
        return fail_msg(c, SOTTO_ERR_INVALID_ARG,
                        "flexicodec cuda: NULL codes or a group count outside 1..max_groups");
    const int G = in->n_groups;
    int32_t *fsq = c->h_idx, *cnt = fsq + G, *off = cnt + G, *ids = off + G + 1;
    int64_t T = 0;
    int s_max = 0;
    off[0] = 0;
    for (int g = 0; g < G; g++) {
        const int32_t n = in->n_stages[g], len = in->lengths[g];
        if (len < 0 || n > c->max_stages || n > in->ldr || (n > 0 && !in->rvq))
            return fail_msg(c, SOTTO_ERR_INVALID_ARG,
                            "flexicodec cuda: negative group length, or more stages than the "
                            "context or the code rows hold");
        if (n >= 0 && (in->fsq[g] < 0 || in->fsq[g] >= hp->fsq_size))
            return fail_msg(c, SOTTO_ERR_INVALID_ARG, "flexicodec cuda: FSQ index out of range");
        for (int q = 0; q < n; q++) {
            const int32_t v = in->rvq[(int64_t)g * in->ldr + q];
            if (v < 0 || v >= hp->codebook_size)
                return fail_msg(c, SOTTO_ERR_INVALID_ARG, "flexicodec cuda: RVQ code out of range");
        }
        if (n > s_max) s_max = n;
        fsq[g] = n >= 0 ? in->fsq[g] : 0;
        cnt[g] = n < 0 ? -1 : n;
        T += len;
        if (T > c->max_latent)
            return fail_msg(c, SOTTO_ERR_INVALID_ARG,
                            "flexicodec cuda: more frames than the context holds");
        off[g + 1] = (int32_t)T;
    }
    if (T < 1) return fail_msg(c, SOTTO_ERR_INVALID_ARG, "flexicodec cuda: no frames");
    /* stage-major ids, 0 where a group sent no code: every id the embedding meets is valid */
    for (int q = 0; q < s_max; q++)
        for (int g = 0; g < G; g++)
            ids[(int64_t)q * G + g] = q < cnt[g] ? in->rvq[(int64_t)g * in->ldr + q] : 0;
    const int64_t r = sotto_cuda_error(c->cu);
    if (r) return layer_failed(c, r, "context");
    const size_t n_up = 3 * (size_t)G + 1 + (size_t)s_max * G;
    const int u = sotto_cuda_upload(c->cu, c->d_idx, c->h_idx, sizeof(int32_t) * n_up);
    if (u) return layer_failed(c, u, "codes upload");
    *S = s_max;
    return T;
}

int64_t flexicodec_cuda_decode_codes(flexicodec_cuda *c, const flexicodec_cuda_codes *in,
                                     float *out_host, int64_t capacity)
{
    if (!c) return SOTTO_ERR_INVALID_ARG;
    c->msg[0] = '\0';
    if (!out_host) return fail_msg(c, SOTTO_ERR_INVALID_ARG, "flexicodec cuda: NULL output");
    int S = 0;
    const int64_t T = upload_codes(c, in, &S);
    if (T < 0) return T;
    if (T > c->max_frames)
        return fail_msg(c, SOTTO_ERR_INVALID_ARG,
                        "flexicodec cuda: more frames than one window (decode it in windows)");
    const int64_t len = flexicodec_dac_out_len(&c->hp, T);
    if (capacity < len)
        return fail_msg(c, SOTTO_ERR_BUFFER_TOO_SMALL,
                        "flexicodec cuda: output capacity below the samples of the forward");
    c->ulat_frames = -1;
    const fc_job job = {.T = (int)T, .G = in->n_groups, .S = S};
    return finish(c, &job, len, out_host);
}

int64_t flexicodec_cuda_latent_from_codes(flexicodec_cuda *c, const flexicodec_cuda_codes *in)
{
    if (!c) return SOTTO_ERR_INVALID_ARG;
    c->msg[0] = '\0';
    c->ulat_frames = -1;
    int S = 0;
    const int64_t T = upload_codes(c, in, &S);
    if (T < 0) return T;
    /* directly, not as a graph: one call per utterance, its windows are what repeats */
    sotto_cuda_scratch_reset(c->cu);
    const int64_t r = enqueue_groups(c, in->n_groups, S, T, NULL, 0, c->ulat);
    if (r) return r;
    c->ulat_frames = T;
    return T;
}

int64_t flexicodec_cuda_decode_window(flexicodec_cuda *c, int64_t t0, int T, float *out_host,
                                      int64_t capacity)
{
    if (!c) return SOTTO_ERR_INVALID_ARG;
    c->msg[0] = '\0';
    if (!out_host || T < 1 || T > c->max_frames || t0 < 0 || c->ulat_frames < 0 ||
        t0 + T > c->ulat_frames)
        return fail_msg(c, SOTTO_ERR_INVALID_ARG,
                        "flexicodec cuda: NULL output, or a window outside the latent of the "
                        "last flexicodec_cuda_latent_from_codes");
    const int64_t len = flexicodec_dac_out_len(&c->hp, T);
    if (capacity < len)
        return fail_msg(c, SOTTO_ERR_BUFFER_TOO_SMALL,
                        "flexicodec cuda: output capacity below the samples of the forward");
    const int lat = c->hp.latent_dim;
    /* the window's frames into the forward's rows, outside any graph (t0 is not in the key) */
    const int64_t r = sotto_cuda_copy(c->cu, c->lat + (size_t)K_HALF * lat,
                                      c->ulat + (size_t)t0 * lat, sizeof(float) * (size_t)T * lat);
    if (r) return layer_failed(c, r, "window copy");
    const fc_job job = {.T = T};
    return finish(c, &job, len, out_host);
}

/* ---- batches ------------------------------------------------------------------------------ */

int flexicodec_cuda_batch_gap(const flexicodec_cuda *c)
{
    return c ? c->gap : 0;
}

int flexicodec_cuda_max_frames(const flexicodec_cuda *c)
{
    return c ? c->max_frames : 0;
}

int flexicodec_cuda_max_groups(const flexicodec_cuda *c)
{
    return c ? c->max_groups : 0;
}

/*
 * Checks the items on the host and packs them as one sequence of groups, item after item with
 * GROUP_GAP groups between neighbours: a gap group has index 0 and no stage (so it decodes to
 * finite values), the first of a gap carries the gap's frames and the others none, so the
 * expansion lays the items' frames `gap` frames apart. Fills pk (rows, lengths and the gaps'
 * first rows at every stage, uploaded with the codes in two copies) and returns the packed
 * frame count, *G_out the packed groups and *S the stages decoded, or an error.
 */
static int64_t upload_batch(flexicodec_cuda *c, int n, const flexicodec_cuda_item *items,
                            fc_pack *pk, int *G_out, int *S)
{
    const flexicodec_hparams *hp = &c->hp;
    int64_t G = 0, P = 0;
    int s_max = 0;
    for (int j = 0; j < n; j++) {
        const flexicodec_cuda_item *it = &items[j];
        if (it->n_groups < 1 || !it->lengths || !it->fsq || it->n_stages < 0 ||
            it->n_stages > c->max_stages || it->n_stages > it->ldr ||
            (it->n_stages > 0 && !it->rvq))
            return fail_msg(c, SOTTO_ERR_INVALID_ARG,
                            "flexicodec cuda: batch item without groups, with a NULL array, or "
                            "with more stages than the context or its code rows hold");
        G += it->n_groups + (j ? GROUP_GAP : 0);
        if (it->n_stages > s_max) s_max = it->n_stages;
    }
    if (G > c->max_groups)
        return fail_msg(c, SOTTO_ERR_INVALID_ARG,
                        "flexicodec cuda: more packed groups than the context holds");
    int32_t *fsq = c->h_idx, *cnt = fsq + G, *off = cnt + G, *ids = off + G + 1;
    int64_t g = 0;
    off[0] = 0;
    for (int j = 0; j < n; j++) {
        const flexicodec_cuda_item *it = &items[j];
        if (j) { /* the gap before item j */
            for (int k = 0; k < GROUP_GAP; k++, g++) {
                fsq[g] = 0;
                cnt[g] = 0;
                P += k ? 0 : c->gap;
                off[g + 1] = (int32_t)P;
            }
            if (P > c->max_frames)
                return fail_msg(c, SOTTO_ERR_INVALID_ARG,
                                "flexicodec cuda: batch of more frames than the context holds");
        }
        pk->row[j] = (int)P;
        for (int k = 0; k < it->n_groups; k++, g++) {
            const int32_t len = it->lengths[k];
            if (len < 1 || it->fsq[k] < 0 || it->fsq[k] >= hp->fsq_size)
                return fail_msg(c, SOTTO_ERR_INVALID_ARG,
                                "flexicodec cuda: batch group length below 1 or FSQ index out of "
                                "range");
            for (int q = 0; q < it->n_stages; q++) {
                const int32_t v = it->rvq[(int64_t)k * it->ldr + q];
                if (v < 0 || v >= hp->codebook_size)
                    return fail_msg(c, SOTTO_ERR_INVALID_ARG,
                                    "flexicodec cuda: batch RVQ code out of range");
            }
            fsq[g] = it->fsq[k];
            cnt[g] = it->n_stages;
            P += len;
            if (P > c->max_frames)
                return fail_msg(c, SOTTO_ERR_INVALID_ARG,
                                "flexicodec cuda: batch of more frames than the context holds");
            off[g + 1] = (int32_t)P;
        }
        pk->len[j] = (int)P - pk->row[j];
    }
    /* stage-major ids, 0 where a group sent no code, as upload_codes */
    for (int q = 0; q < s_max; q++) {
        int32_t *row = ids + (int64_t)q * G;
        g = 0;
        for (int j = 0; j < n; j++) {
            const flexicodec_cuda_item *it = &items[j];
            if (j)
                for (int k = 0; k < GROUP_GAP; k++)
                    row[g++] = 0;
            for (int k = 0; k < it->n_groups; k++)
                row[g++] = q < it->n_stages ? it->rvq[(int64_t)k * it->ldr + q] : 0;
        }
    }
    /* the gaps' first rows: groups, then the latent and every block's output (an item of L
     * rows at row a becomes block_out_len(L, s) rows at a·s) */
    const int B = FLEXICODEC_CUDA_BATCH_MAX;
    int32_t *gg = c->h_gap;
    int64_t grow = 0;
    for (int j = 0; j + 1 < n; j++) {
        grow += items[j].n_groups;
        gg[j] = (int32_t)grow;
        grow += GROUP_GAP;
    }
    int64_t a[FLEXICODEC_CUDA_BATCH_MAX], L[FLEXICODEC_CUDA_BATCH_MAX], gap = c->gap;
    for (int j = 0; j < n; j++) {
        a[j] = pk->row[j];
        L[j] = pk->len[j];
    }
    for (int k = 0; k <= hp->n_rates; k++) {
        if (k) {
            const int s = hp->decoder_rates[k - 1];
            for (int j = 0; j < n; j++) {
                a[j] *= s;
                L[j] = block_out_len(L[j], s);
            }
            gap = gap * s - s + 2 * ((s + 1) / 2);
        }
        for (int j = 0; j + 1 < n; j++)
            c->h_gap[(size_t)(k + 1) * B + j] = (int32_t)(a[j] + L[j]);
        pk->gap_rows[k] = gap;
        pk->starts[k] = c->d_gap + (size_t)(k + 1) * B;
    }
    pk->n = n;
    int64_t r = sotto_cuda_error(c->cu);
    if (r) return layer_failed(c, r, "context");
    const size_t n_up = 3 * (size_t)G + 1 + (size_t)s_max * (size_t)G;
    if ((r = sotto_cuda_upload(c->cu, c->d_idx, c->h_idx, sizeof(int32_t) * n_up)) ||
        (r = sotto_cuda_upload(c->cu, c->d_gap, c->h_gap,
                               sizeof(int32_t) * (size_t)(hp->n_rates + 2) * B)))
        return layer_failed(c, r, "batch upload");
    *G_out = (int)G;
    *S = s_max;
    return P;
}

int flexicodec_cuda_decode_batch(flexicodec_cuda *c, int n, const flexicodec_cuda_item *items,
                                 float *const *out_host, const int64_t *capacity)
{
    if (!c) return SOTTO_ERR_INVALID_ARG;
    c->msg[0] = '\0';
    if (!c->d_idx)
        return (int)fail_msg(
            c, SOTTO_ERR_STATE,
            "flexicodec cuda: codes in not enabled (flexicodec_cuda_enable_codes)");
    if (n < 1 || n > FLEXICODEC_CUDA_BATCH_MAX || !items || !out_host || !capacity)
        return (int)fail_msg(c, SOTTO_ERR_INVALID_ARG,
                             "flexicodec cuda: NULL batch arrays or an item count outside 1..64");
    for (int j = 0; j < n; j++) {
        int64_t T = 0;
        for (int k = 0; items[j].lengths && k < items[j].n_groups; k++)
            T += items[j].lengths[k];
        if (!out_host[j] || capacity[j] < flexicodec_dac_out_len(&c->hp, T))
            return (int)fail_msg(c,
                                 !out_host[j] ? SOTTO_ERR_INVALID_ARG : SOTTO_ERR_BUFFER_TOO_SMALL,
                                 "flexicodec cuda: a batch item's output is NULL or below the "
                                 "samples of its frames");
    }
    fc_pack pk;
    int G = 0, S = 0;
    const int64_t P = upload_batch(c, n, items, &pk, &G, &S);
    if (P < 0) return (int)P;
    c->ulat_frames = -1;
    /* directly, never as a graph: a batch's layout is seldom repeated */
    sotto_cuda *cu = c->cu;
    const int lat = c->hp.latent_dim;
    sotto_cuda_scratch_reset(cu);
    int64_t r = enqueue_groups(c, G, S, P, c->d_gap, n - 1, c->lat + (size_t)K_HALF * lat);
    if (r) return (int)r;
    float *wave = NULL;
    const int64_t len = enqueue_forward(c, (int)P, &pk, &wave);
    if (len < 0) return (int)len;
    int64_t scale = 1; /* an item at latent row a starts at sample a·hop */
    for (int i = 0; i < c->hp.n_rates; i++)
        scale *= c->hp.decoder_rates[i];
    for (int j = 0; j < n; j++) {
        const int64_t m = flexicodec_dac_out_len(&c->hp, pk.len[j]);
        if ((r = sotto_cuda_download(cu, out_host[j], wave + (int64_t)pk.row[j] * scale,
                                     sizeof(float) * (size_t)m)))
            return (int)layer_failed(c, r, "output download");
        for (int64_t i = 0; i < m; i++)
            if (!isfinite(out_host[j][i]))
                return (int)fail_msg(c, SOTTO_ERR_INTERNAL,
                                     "flexicodec cuda: non-finite output sample");
    }
    return SOTTO_OK;
}

int flexicodec_cuda_set_graphs(flexicodec_cuda *c, int on)
{
    if (!c) return SOTTO_ERR_INVALID_ARG;
    if (!on) {
        /* release the instantiated graphs; turning graphs on again starts afresh */
        for (int i = 0; i < GRAPH_SLOTS; i++) {
            sotto_cuda_graph_invalidate(c->graph[i]);
            c->used[i] = 0;
        }
        memset(c->seen, 0, sizeof c->seen);
        c->seen_next = 0;
    }
    c->use_graph = on != 0;
    return SOTTO_OK;
}

int flexicodec_cuda_graphs(const flexicodec_cuda *c)
{
    return c ? c->use_graph : 0;
}

int64_t flexicodec_cuda_graph_captures(const flexicodec_cuda *c)
{
    return c ? c->captures : 0;
}

int64_t flexicodec_cuda_graph_launches(const flexicodec_cuda *c)
{
    return c ? c->launches : 0;
}

#endif /* SOTTO_HAVE_CUDA */
