/*
 * Attention on the device, the pieces of nn/attn.c's whole-sequence path: RoPE, multi-head
 * attention under the causal / local-window masks, and the LayerScale residual (the layer that
 * strings them together is tlayer.c). Attention runs the CPU's way, as GEMMs around a softmax:
 * for a block of queries, one strided-batched GEMM over the heads gives every head's scores
 * q·kᵀ straight from the fused QKV rows (no transposed copy of k), a kernel scales, masks and
 * softmaxes each row, and a second batched GEMM multiplies by v into each head's columns of o.
 * A block meets only the keys its masks can reach, so a local window costs window-sized
 * products; the block size follows the free scratch, so a short pool costs launches.
 * The streaming path (a sotto_cuda_kv_cache) is the same pair of GEMMs over the cache's ring
 * of key and value rows instead of the fused QKV rows: the softmax kernel maps each slot of
 * the ring to its frame's position for the masks, as nn/attn.c does on the CPU.
 */
#include "backend/cuda/common.cuh"

/* ---- scratch ------------------------------------------------------------------------------ */

extern "C" void sotto_cuda_scratch_rewind(sotto_cuda *cu, size_t used)
{
    if (cu && used <= cu->scratch_used) cu->scratch_used = used;
}

/* ---- RoPE --------------------------------------------------------------------------------- */

/* One thread per rotated pair: row t, head h, pair i. Angles, cosines and sines in double as
 * on the CPU (nn/attn.c), then rounded to float. */
__global__ void rope_kernel(float *x, int64_t ldx, int64_t T, int H, int D, int interleaved,
                            const double *__restrict__ freq, int64_t pos0)
{
    const int half = D / 2;
    const int a = interleaved ? 2 : 1, b = interleaved ? 1 : half;
    const int64_t n = T * H * half;
    for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < n;
         idx += (int64_t)gridDim.x * blockDim.x) {
        const int i = (int)(idx % half);
        const int64_t th = idx / half;
        const int h = (int)(th % H);
        const int64_t t = th / H;
        double s, c;
        sincos((double)(pos0 + t) * freq[i], &s, &c);
        const float cf = (float)c, sf = (float)s;
        float *xh = x + t * ldx + (int64_t)h * D;
        const float x0 = xh[a * i], x1 = xh[a * i + b];
        xh[a * i] = x0 * cf - x1 * sf;
        xh[a * i + b] = x0 * sf + x1 * cf;
    }
}

extern "C" int sotto_cuda_rope_apply(sotto_cuda *cu, const sotto_cuda_rope *r, float *x,
                                     int64_t ldx, int64_t T, int n_heads, int64_t pos0)
{
    if (!cu || !r || T < 0 || n_heads < 1 || pos0 < 0 || ldx < (int64_t)n_heads * r->head_dim)
        return SOTTO_ERR_INVALID_ARG;
    int rc = sotto_cuda_enter(cu);
    if (rc || r->kind == 0 || T == 0) return rc;
    if (!x || !r->freq || r->head_dim < 2 || r->head_dim % 2 || (r->kind != 1 && r->kind != 2))
        return SOTTO_ERR_INVALID_ARG;
    const int64_t n = T * n_heads * (r->head_dim / 2);
    rope_kernel<<<sotto_cuda_grid(n), SOTTO_CUDA_BLOCK, 0, cu->stream>>>(
        x, ldx, T, n_heads, r->head_dim, r->kind == 1, r->freq, pos0);
    SOTTO_CU_LAUNCHED(cu, "rope_kernel");
    return SOTTO_OK;
}

/* ---- attention ---------------------------------------------------------------------------- */

/* Keys [*k0, *k1) that queries [b0, b0 + mb) can see under the masks. */
static void key_range(int64_t T, int64_t b0, int64_t mb, int causal, int W, int64_t *k0,
                      int64_t *k1)
{
    int64_t lo = W > 0 ? b0 - W + 1 : 0;
    int64_t hi = causal ? b0 + mb : (W > 0 ? b0 + mb - 1 + W : T);
    *k0 = lo < 0 ? 0 : lo;
    *k1 = hi > T ? T : hi;
}

/* The most keys a block of mb queries meets. */
static int64_t max_keys(int64_t T, int64_t mb, int causal, int W)
{
    int64_t n = T;
    if (W > 0) {
        const int64_t span = mb + (int64_t)(causal ? 1 : 2) * (W - 1);
        if (span < n) n = span;
    }
    return n;
}

static size_t scores_bytes(int64_t T, int64_t mb, int H, int causal, int W)
{
    return (size_t)H * (size_t)mb * (size_t)max_keys(T, mb, causal, W) * sizeof(float) + 256;
}

extern "C" size_t sotto_cuda_attention_scratch(int64_t T, int n_heads, int causal, int window)
{
    if (T < 1 || n_heads < 1 || window < 0) return 0;
    const int64_t mb = T < SOTTO_CUDA_ATTN_QBLOCK ? T : SOTTO_CUDA_ATTN_QBLOCK;
    return scores_bytes(T, mb, n_heads, causal, window);
}

/*
 * Rows of S: H·mb rows of n scores, row r for head r / mb and query t0 + r % mb. Key s sits
 * at position k0 + s for s ≥ s_first and at k1 + s below it (a ring whose oldest frame is in
 * slot s_first; s_first = 0 for keys in order). Scaled, masked (−inf, exactly 0 after the
 * softmax) and softmaxed in place, max-subtracted as sotto_softmax; each thread keeps to the
 * same elements in every pass.
 */
__global__ void masked_softmax_kernel(float *S, int64_t rows, int64_t mb, int n, int64_t t0,
                                      int64_t k0, int s_first, int64_t k1, int causal, int W,
                                      float scale)
{
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const int64_t t = t0 + r % mb;
        const int64_t lo = W > 0 ? t - W + 1 : INT64_MIN;
        const int64_t hi = causal ? t : (W > 0 ? t + W - 1 : INT64_MAX);
        float *row = S + r * n;
        float mx = -INFINITY;
        for (int s = threadIdx.x; s < n; s += blockDim.x) {
            const int64_t p = s >= s_first ? k0 + s : k1 + s;
            const float v = p >= lo && p <= hi ? row[s] * scale : -INFINITY;
            row[s] = v;
            mx = fmaxf(mx, v);
        }
        mx = sotto_block_reduce<true>(mx);
        float sum = 0.0f;
        for (int s = threadIdx.x; s < n; s += blockDim.x) {
            const float e = expf(row[s] - mx);
            row[s] = e;
            sum += e;
        }
        const float inv = 1.0f / sotto_block_reduce<false>(sum);
        for (int s = threadIdx.x; s < n; s += blockDim.x)
            row[s] *= inv;
    }
}

/*
 * O_h[m][i] = Σ_s P_h[m][s]·V_h[s][i] for h < H: P_h = P + h·sp (rows n apart), V_h = v + h·D
 * (rows ld apart), O_h = o + h·D (rows ldo apart). Column-major, Oᵀ = Vᵀ·Pᵀ with both read as
 * they lie (no transposes).
 */
static int gemm_pv(sotto_cuda *cu, int mb, int n, int D, const float *P, int64_t sp, const float *v,
                   int64_t ld, float *o, int64_t ldo, int H)
{
    const float alpha = 1.0f, beta = 0.0f;
    const cublasComputeType_t ct =
        cu->allow_tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    SOTTO_CUBLAS(cu, cu->cublas->gemm_strided_batched_ex(
                         cu->blas, CUBLAS_OP_N, CUBLAS_OP_N, D, mb, n, &alpha, v, CUDA_R_32F,
                         (int)ld, (long long)D, P, CUDA_R_32F, n, (long long)sp, &beta, o,
                         CUDA_R_32F, (int)ldo, (long long)D, H, ct, CUBLAS_GEMM_DEFAULT));
    return SOTTO_OK;
}

extern "C" int sotto_cuda_attention(sotto_cuda *cu, const float *q, const float *k, const float *v,
                                    int64_t ld, int64_t T, int n_heads, int head_dim, int causal,
                                    int window, float *o, int64_t ldo)
{
    const int64_t d = (int64_t)n_heads * head_dim;
    if (!cu || T < 0 || T > INT32_MAX || n_heads < 1 || head_dim < 1 || window < 0 || ld < d ||
        ldo < d || ld > INT32_MAX || ldo > INT32_MAX)
        return SOTTO_ERR_INVALID_ARG;
    int rc = sotto_cuda_enter(cu);
    if (rc || T == 0) return rc;
    if (!q || !k || !v || !o) return SOTTO_ERR_INVALID_ARG;
    const int H = n_heads, D = head_dim, W = window;
    const float scale = (float)(1.0 / sqrt((double)D));

    /* the largest query block whose scores fit what the pool has left */
    const size_t mark = sotto_cuda_scratch_mark(cu);
    const size_t avail = sotto_cuda_scratch_free(cu);
    int64_t mb = T;
    while (mb > 1 && scores_bytes(T, mb, H, causal, W) > avail)
        mb = (mb + 1) / 2;
    float *S;
    if ((rc = sotto_cuda_scratch_alloc(cu, scores_bytes(T, mb, H, causal, W) - 256, (void **)&S)))
        return rc;
    for (int64_t b0 = 0; b0 < T; b0 += mb) {
        const int64_t m = T - b0 < mb ? T - b0 : mb;
        int64_t k0, k1;
        key_range(T, b0, m, causal, W, &k0, &k1);
        const int n = (int)(k1 - k0);
        const int64_t sp = m * n; /* floats per head */
        /* S_h[m][s] = q_h[b0 + m]·k_h[k0 + s] */
        rc = sotto_cuda_gemm(cu, (int)m, n, D, q + b0 * ld, ld, D, k + k0 * ld, ld, D, 0.0f, S, n,
                             sp, H);
        if (rc) return rc;
        const int64_t rows = (int64_t)H * m;
        const unsigned grid = (unsigned)(rows < 65535 ? rows : 65535);
        masked_softmax_kernel<<<grid, 128, 0, cu->stream>>>(S, rows, m, n, b0, k0, 0, k0, causal, W,
                                                            scale);
        SOTTO_CU_LAUNCHED(cu, "masked_softmax_kernel");
        if ((rc = gemm_pv(cu, (int)m, n, D, S, sp, v + k0 * ld, ld, o + b0 * ldo, ldo, H)))
            return rc;
    }
    sotto_cuda_scratch_release(cu, mark);
    return SOTTO_OK;
}

/* ---- attention over a KV cache ------------------------------------------------------------- */

/* Row t < m of k and v (rows ld apart, d channels) into slot (first + t) mod cap of K and V
 * (rows of d). */
__global__ void kv_store_kernel(const float *k, const float *v, int64_t ld, int64_t m, int d,
                                float *K, float *V, int cap, int first)
{
    const int64_t n = m * d;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t t = i / d;
        const int c = (int)(i % d);
        const int64_t slot = (first + t) % cap;
        K[slot * d + c] = k[t * ld + c];
        V[slot * d + c] = v[t * ld + c];
    }
}

static int kv_ok(const sotto_cuda_kv_cache *c)
{
    return c && c->k && c->v && c->n_heads > 0 && c->head_dim > 0 &&
           c->dim == c->n_heads * c->head_dim && c->capacity >= 1 && c->window >= 0 &&
           (c->window == 0 || c->capacity >= c->window) && c->n >= 0 && c->n <= c->capacity &&
           c->pos >= c->pos0;
}

extern "C" int sotto_cuda_kv_cache_append(sotto_cuda *cu, sotto_cuda_kv_cache *c, const float *k,
                                          const float *v, int64_t ld, int64_t m)
{
    if (!cu || !kv_ok(c) || m < 0 || m > c->capacity || ld < c->dim) return SOTTO_ERR_INVALID_ARG;
    if (c->window == 0 && m > (int64_t)c->capacity - c->n) return SOTTO_ERR_STATE;
    int rc = sotto_cuda_enter(cu);
    if (rc || m == 0) return rc;
    if (!k || !v) return SOTTO_ERR_INVALID_ARG;
    const int first = (int)((c->pos - c->pos0) % c->capacity);
    const int64_t n = m * c->dim;
    kv_store_kernel<<<sotto_cuda_grid(n), SOTTO_CUDA_BLOCK, 0, cu->stream>>>(
        k, v, ld, m, c->dim, c->k, c->v, c->capacity, first);
    SOTTO_CU_LAUNCHED(cu, "kv_store_kernel");
    c->pos += m;
    c->n = c->n + m < c->capacity ? (int)(c->n + m) : c->capacity;
    return SOTTO_OK;
}

extern "C" size_t sotto_cuda_kv_attention_scratch(int64_t m, int n_heads, int capacity)
{
    if (m < 1 || n_heads < 1 || capacity < 1) return 0;
    const int64_t mb = m < SOTTO_CUDA_ATTN_QBLOCK ? m : SOTTO_CUDA_ATTN_QBLOCK;
    return (size_t)n_heads * (size_t)mb * (size_t)capacity * sizeof(float) + 256;
}

extern "C" int sotto_cuda_kv_attention(sotto_cuda *cu, const sotto_cuda_kv_cache *c, const float *q,
                                       int64_t ldq, int64_t m, int causal, float *o, int64_t ldo)
{
    if (!cu || !kv_ok(c) || m < 0 || m > c->n || ldq < c->dim || ldo < c->dim || ldq > INT32_MAX ||
        ldo > INT32_MAX)
        return SOTTO_ERR_INVALID_ARG;
    int rc = sotto_cuda_enter(cu);
    if (rc || m == 0) return rc;
    if (!q || !o) return SOTTO_ERR_INVALID_ARG;
    const int H = c->n_heads, D = c->head_dim, n = c->n, d = c->dim;
    const float scale = (float)(1.0 / sqrt((double)D));
    /* the ring as nn/attn.c reads it: the oldest frame (position pos − n) in slot s_first,
     * slots [s_first, n) at positions p_a + s, the ones before it (written later) at p_b + s */
    const int64_t p_first = c->pos - n;
    const int s_first = (int)((p_first - c->pos0) % c->capacity);
    const int64_t p_a = p_first - s_first, p_b = p_first + (n - s_first);
    const int64_t t0 = c->pos - m; /* the queries are the last m frames pushed */

    const size_t mark = sotto_cuda_scratch_mark(cu);
    const size_t avail = sotto_cuda_scratch_free(cu);
    int64_t mb = m;
    while (mb > 1 && (size_t)H * (size_t)mb * (size_t)n * sizeof(float) + 256 > avail)
        mb = (mb + 1) / 2;
    float *S;
    if ((rc = sotto_cuda_scratch_alloc(cu, (size_t)H * (size_t)mb * (size_t)n * sizeof(float),
                                       (void **)&S)))
        return rc;
    for (int64_t b0 = 0; b0 < m; b0 += mb) {
        const int64_t mq = m - b0 < mb ? m - b0 : mb;
        const int64_t sp = mq * n;
        /* S_h[mq][s] = q_h[b0 + mq]·K_h[s]: the cached keys are rows of d, head h at h·D */
        rc =
            sotto_cuda_gemm(cu, (int)mq, n, D, q + b0 * ldq, ldq, D, c->k, d, D, 0.0f, S, n, sp, H);
        if (rc) return rc;
        const int64_t rows = (int64_t)H * mq;
        const unsigned grid = (unsigned)(rows < 65535 ? rows : 65535);
        masked_softmax_kernel<<<grid, 128, 0, cu->stream>>>(S, rows, mq, n, t0 + b0, p_a, s_first,
                                                            p_b, causal, c->window, scale);
        SOTTO_CU_LAUNCHED(cu, "masked_softmax_kernel");
        if ((rc = gemm_pv(cu, (int)mq, n, D, S, sp, c->v, d, o + b0 * ldo, ldo, H))) return rc;
    }
    sotto_cuda_scratch_release(cu, mark);
    return SOTTO_OK;
}

/* ---- residual ----------------------------------------------------------------------------- */

__global__ void residual_kernel(const float *x, const float *a, const float *__restrict__ ls,
                                int64_t n, int C, float *y)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        y[i] = ls ? x[i] + ls[i % C] * a[i] : x[i] + a[i];
}

extern "C" int sotto_cuda_residual(sotto_cuda *cu, const float *x, const float *a, const float *ls,
                                   int64_t T, int C, float *y)
{
    if (!cu || T < 0 || C < 1 || (T > 0 && (!x || !a || !y))) return SOTTO_ERR_INVALID_ARG;
    int rc = sotto_cuda_enter(cu);
    if (rc || T == 0) return rc;
    const int64_t n = T * C;
    residual_kernel<<<sotto_cuda_grid(n), SOTTO_CUDA_BLOCK, 0, cu->stream>>>(x, a, ls, n, C, y);
    SOTTO_CU_LAUNCHED(cu, "residual_kernel");
    return SOTTO_OK;
}
