/*
 * FlexiCodec's Mimi-style transformer stacks (bottleneck.h): the configuration (from the
 * caller or the `flexicodec.transformer.*` metadata), the N layers looked up by their official
 * state_dict names under a prefix, checked and handed to sotto_tlayer_init, and the
 * whole-sequence forward pass, one sotto_tlayer_forward per layer.
 */
#include <stdio.h>
#include <string.h>

#include "codecs/flexicodec/bottleneck.h"

/* Bounds on a configuration (far beyond the release's 32 × 512, far from size overflow). */
#define MAX_LAYERS 4096
#define MAX_DIM (1 << 16)
#define NAME_LEN 256

flexicodec_bottleneck_cfg flexicodec_bottleneck_cfg_default(int n_layers, int dim, int n_heads,
                                                            int ffn_dim)
{
    flexicodec_bottleneck_cfg c;
    memset(&c, 0, sizeof c);
    c.n_layers = n_layers;
    c.dim = dim;
    c.n_heads = n_heads;
    c.ffn_dim = ffn_dim;
    c.causal = 0;
    c.context = 16;
    c.norm_eps = 1e-5f;
    c.rope_max_period = 10000.0f;
    return c;
}

/* 1 when the configuration is in range. */
static int cfg_ok(const flexicodec_bottleneck_cfg *c)
{
    if (c->n_layers < 0 || c->n_layers > MAX_LAYERS || c->dim < 1 || c->dim > MAX_DIM ||
        c->n_heads < 1 || c->dim % c->n_heads || (c->dim / c->n_heads) % 2 || c->ffn_dim < 1 ||
        c->ffn_dim > 4 * MAX_DIM || c->context < 0)
        return 0;
    if (c->causal != 0 && c->causal != 1) return 0;
    return c->norm_eps > 0 && c->norm_eps < 1 && c->rope_max_period > 0 &&
           c->rope_max_period < 1e30f;
}

static int get_i(const sotto_gguf *g, const char *pre, const char *key, int32_t *v,
                 sotto_status *st)
{
    char name[NAME_LEN];
    if (snprintf(name, sizeof name, "%s%s", pre, key) >= (int)sizeof name)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "metadata prefix too long");
    return sotto_gguf_get_i32(g, name, v, st);
}

int flexicodec_bottleneck_cfg_from_gguf(const sotto_gguf *g, const char *key_prefix,
                                        flexicodec_bottleneck_cfg *cfg, sotto_status *st)
{
    if (!g || !key_prefix || !cfg)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    if (strlen(key_prefix) > NAME_LEN - 32)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "metadata prefix too long");
    char name[NAME_LEN];
    int32_t n = 0, d = 0, h = 0, f = 0, ctx = 0;
    int rc;
    if ((rc = get_i(g, key_prefix, "num_layers", &n, st)) ||
        (rc = get_i(g, key_prefix, "dim", &d, st)) ||
        (rc = get_i(g, key_prefix, "num_heads", &h, st)) ||
        (rc = get_i(g, key_prefix, "dim_feedforward", &f, st)) ||
        (rc = get_i(g, key_prefix, "context_frames", &ctx, st)))
        return rc;
    flexicodec_bottleneck_cfg c = flexicodec_bottleneck_cfg_default(n, d, h, f);
    c.context = ctx;
    snprintf(name, sizeof name, "%scausal", key_prefix);
    if ((rc = sotto_gguf_get_bool(g, name, &c.causal, st))) return rc;
    snprintf(name, sizeof name, "%snorm_eps", key_prefix);
    if ((rc = sotto_gguf_get_f32_or(g, name, c.norm_eps, &c.norm_eps, st))) return rc;
    snprintf(name, sizeof name, "%srope_max_period", key_prefix);
    if ((rc = sotto_gguf_get_f32_or(g, name, c.rope_max_period, &c.rope_max_period, st))) return rc;
    snprintf(name, sizeof name, "%shas_input_proj", key_prefix);
    if (sotto_gguf_find_kv(g, name)) {
        int proj = 0;
        if ((rc = sotto_gguf_get_bool(g, name, &proj, st))) return rc;
        if (proj)
            return sotto_status_set(st, SOTTO_ERR_UNSUPPORTED,
                                    "%s: transformer input/output projections are not supported",
                                    name);
    }
    if (!cfg_ok(&c))
        return sotto_status_set(st, SOTTO_ERR_FORMAT,
                                "%s*: transformer configuration out of range (layers %d, dim %d, "
                                "heads %d, ffn %d, context %d, eps %g, max_period %g)",
                                key_prefix, c.n_layers, c.dim, c.n_heads, c.ffn_dim, c.context,
                                (double)c.norm_eps, (double)c.rope_max_period);
    *cfg = c;
    return SOTTO_OK;
}

void flexicodec_bottleneck_free(flexicodec_bottleneck *b)
{
    if (!b) return;
    if (b->layers) {
        for (int i = 0; i < b->cfg.n_layers; i++)
            sotto_tlayer_free(&b->layers[i], &b->alloc);
        sotto_free(&b->alloc, b->layers);
    }
    sotto_alloc alloc = b->alloc;
    memset(b, 0, sizeof *b);
    b->alloc = alloc;
}

int flexicodec_bottleneck_file_f16(const sotto_gguf *g, const char *prefix)
{
    char name[256];
    snprintf(name, sizeof name, "%s0.linear1.weight", prefix ? prefix : "");
    const sotto_gguf_tensor *t = g ? sotto_gguf_find_tensor(g, name) : NULL;
    return t && t->dtype == SOTTO_DTYPE_F16;
}

int flexicodec_bottleneck_use_h16(flexicodec_bottleneck *b, sotto_status *st)
{
    if (!b) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    for (int i = 0; b->layers && i < b->cfg.n_layers; i++) {
        sotto_tlayer *L = &b->layers[i];
        int rc;
        if ((rc = sotto_linear_w_use_h16(&L->qkv, &b->alloc, st)) ||
            (rc = sotto_linear_w_use_h16(&L->out, &b->alloc, st)) ||
            (rc = sotto_linear_w_use_h16(&L->ff1, &b->alloc, st)) ||
            (rc = sotto_linear_w_use_h16(&L->ff2, &b->alloc, st)))
            return rc;
    }
    return SOTTO_OK;
}

/* The ten tensors of one layer, in the order of the table in load_layer. */
enum { T_QKV, T_OUT, T_N1W, T_N1B, T_N2W, T_N2B, T_FF1, T_FF2, T_LS1, T_LS2, T_COUNT };

static int load_layer(flexicodec_bottleneck *b, const sotto_gguf *g, const char *prefix, int i,
                      const sotto_tlayer_cfg *lc, sotto_status *st)
{
    const int64_t d = b->cfg.dim, f = b->cfg.ffn_dim;
    const struct {
        const char *key;
        int n_dims;
        int64_t shape[2];
    } want[T_COUNT] = {
        [T_QKV] = {"self_attn.in_proj_weight", 2, {3 * d, d}},
        [T_OUT] = {"self_attn.out_proj.weight", 2, {d, d}},
        [T_N1W] = {"norm1.weight", 1, {d, 1}},
        [T_N1B] = {"norm1.bias", 1, {d, 1}},
        [T_N2W] = {"norm2.weight", 1, {d, 1}},
        [T_N2B] = {"norm2.bias", 1, {d, 1}},
        [T_FF1] = {"linear1.weight", 2, {f, d}},
        [T_FF2] = {"linear2.weight", 2, {d, f}},
        [T_LS1] = {"layer_scale_1.scale", 1, {d, 1}},
        [T_LS2] = {"layer_scale_2.scale", 1, {d, 1}},
    };
    const sotto_gguf_tensor *t[T_COUNT];
    for (int k = 0; k < T_COUNT; k++) {
        char name[NAME_LEN];
        snprintf(name, sizeof name, "%s%d.%s", prefix, i, want[k].key);
        const int rc =
            sotto_gguf_tensor_check(g, name, -1, want[k].n_dims, want[k].shape, &t[k], st);
        if (rc) return rc;
    }
    sotto_tlayer_tensors lt;
    memset(&lt, 0, sizeof lt);
    lt.qkv_w = t[T_QKV];
    lt.out_w = t[T_OUT];
    lt.norm1_w = t[T_N1W];
    lt.norm1_b = t[T_N1B];
    lt.norm2_w = t[T_N2W];
    lt.norm2_b = t[T_N2B];
    lt.ff1_w = t[T_FF1];
    lt.ff2_w = t[T_FF2];
    lt.ls1 = t[T_LS1];
    lt.ls2 = t[T_LS2];
    const int rc = sotto_tlayer_init(&b->layers[i], lc, &lt, &b->alloc, st);
    if (rc) return rc;
    /* the layer holds its own copies: the file's pages are no longer needed */
    for (int k = 0; k < T_COUNT; k++)
        sotto_gguf_tensor_release(g, t[k]);
    return SOTTO_OK;
}

/* SOTTO_ERR_MODEL when g holds a tensor of layer n (more layers than configured). */
static int check_no_more_layers(const sotto_gguf *g, const char *prefix, int n, sotto_status *st)
{
    char head[NAME_LEN];
    const size_t len = (size_t)snprintf(head, sizeof head, "%s%d.", prefix, n);
    for (int64_t k = 0; k < sotto_gguf_tensor_count(g); k++) {
        const sotto_gguf_tensor *t = sotto_gguf_tensor_at(g, k);
        if (!strncmp(t->name.data, head, len))
            return sotto_status_set(st, SOTTO_ERR_MODEL,
                                    "tensor '%s': the file has more than the %d transformer "
                                    "layers configured",
                                    t->name.data, n);
    }
    return SOTTO_OK;
}

static int load_all(flexicodec_bottleneck *b, const sotto_gguf *g, const char *prefix,
                    sotto_status *st)
{
    const flexicodec_bottleneck_cfg *c = &b->cfg;
    sotto_tlayer_cfg lc = sotto_tlayer_cfg_default(c->dim, c->n_heads, c->ffn_dim);
    lc.norm = SOTTO_NORM_LAYER;
    lc.norm_eps = c->norm_eps;
    lc.act = SOTTO_ACT_GELU_ERF;
    lc.rope = SOTTO_ROPE_INTERLEAVED;
    lc.rope_theta = c->rope_max_period;
    /* Mimi: non-causal attends to every key (context unused); causal keeps 0 ≤ t − s < context,
     * the causal window of nn/attn.h */
    lc.causal = c->causal;
    lc.window = c->causal ? c->context : 0;
    lc.keep_f16 = c->keep_f16;
    int rc = check_no_more_layers(g, prefix, c->n_layers, st);
    if (rc || c->n_layers == 0) return rc;
    b->layers = sotto_calloc(&b->alloc, (size_t)c->n_layers, sizeof *b->layers);
    if (!b->layers) return sotto_status_set(st, SOTTO_ERR_OUT_OF_MEMORY, "out of memory");
    for (int i = 0; i < c->n_layers && !rc; i++)
        rc = load_layer(b, g, prefix, i, &lc, st);
    return rc;
}

int flexicodec_bottleneck_load(flexicodec_bottleneck *b, const sotto_gguf *g, const char *prefix,
                               const flexicodec_bottleneck_cfg *cfg, const sotto_alloc *alloc,
                               sotto_status *st)
{
    if (!b) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    memset(b, 0, sizeof *b);
    if (alloc)
        b->alloc = *alloc;
    else
        sotto_alloc_init(&b->alloc, NULL);
    if (!g || !prefix || !cfg) return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "NULL argument");
    if (strlen(prefix) > NAME_LEN - 48)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG, "tensor prefix too long");
    if (!cfg_ok(cfg))
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "transformer: configuration out of range (layers %d, dim %d, "
                                "heads %d, ffn %d, causal %d, context %d, eps %g, max_period %g)",
                                cfg->n_layers, cfg->dim, cfg->n_heads, cfg->ffn_dim, cfg->causal,
                                cfg->context, (double)cfg->norm_eps, (double)cfg->rope_max_period);
    b->cfg = *cfg;
    const int rc = load_all(b, g, prefix, st);
    if (rc) flexicodec_bottleneck_free(b);
    return rc;
}

/* 1 when b holds a loaded stack. */
static int loaded(const flexicodec_bottleneck *b)
{
    return b->cfg.dim > 0 && (b->cfg.n_layers == 0 || b->layers != NULL);
}

size_t flexicodec_bottleneck_scratch_size(const flexicodec_bottleneck *b, int64_t T)
{
    if (!b || !loaded(b) || T < 0) return 0;
    size_t n = 1;
    for (int i = 0; i < b->cfg.n_layers; i++) {
        const size_t s = sotto_tlayer_scratch_size(&b->layers[i], T);
        if (!s) return 0;
        if (s > n) n = s;
    }
    return n;
}

int flexicodec_bottleneck_forward(const sotto_cpu *cpu, const flexicodec_bottleneck *b,
                                  const float *x, int64_t T, float *y, float *scratch)
{
    if (!cpu || !b || !loaded(b) || T < 0 || T > INT32_MAX) return SOTTO_ERR_INVALID_ARG;
    if (T == 0) return SOTTO_OK;
    if (!x || !y || !scratch) return SOTTO_ERR_INVALID_ARG;
    const int64_t n = T * b->cfg.dim;
    if (x != y && !(x + n <= y || y + n <= x)) return SOTTO_ERR_INVALID_ARG;
    if (b->cfg.n_layers == 0) {
        if (x != y) memcpy(y, x, sizeof(float) * (size_t)n);
        return SOTTO_OK;
    }
    const float *src = x;
    for (int i = 0; i < b->cfg.n_layers; i++) {
        const int rc = sotto_tlayer_forward(cpu, &b->layers[i], src, T, 0, y, scratch);
        if (rc) return rc;
        src = y;
    }
    return SOTTO_OK;
}
