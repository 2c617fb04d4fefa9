/*
 * Scalar reference kernels of the CPU table (backend/backend.h). They define what every SIMD
 * variant must compute: plain C loops and libm, written for clarity and for a stable
 * summation order rather than speed (the compiler may still auto-vectorise them for the
 * baseline ISA). Two choices here are deliberate and shared by the SIMD variants: GELU is
 * evaluated through erfc on the negative side and the tanh GELU as x·sigmoid(2u), both of
 * which avoid the cancellation of 1 + erf(x) or 1 + tanh(u) for negative x; norms accumulate
 * their statistics in double.
 */
#include <math.h>
#include <string.h>

#include "backend/backend.h"
#include "core/gguf.h"

static void gemm_f32_ref(int M, int K, int n0, int n1, const float *x, int64_t ldx, const float *w,
                         int64_t ldw, const float *bias, float *y, int64_t ldy, int acc)
{
    for (int m = 0; m < M; m++) {
        float *yr = y + (int64_t)m * ldy;
        const float *xr = x + (int64_t)m * ldx;
        for (int n = n0; n < n1; n++)
            yr[n] = (acc ? yr[n] : 0.0f) + (bias ? bias[n] : 0.0f);
        for (int k = 0; k < K; k++) {
            const float xv = xr[k];
            const float *wr = w + (int64_t)k * ldw;
            for (int n = n0; n < n1; n++)
                yr[n] += xv * wr[n];
        }
    }
}

static void gemm_f16_ref(int M, int K, int n0, int n1, const float *x, int64_t ldx,
                         const uint16_t *w, int64_t ldw, const float *bias, float *y, int64_t ldy,
                         int acc)
{
    for (int m = 0; m < M; m++) {
        float *yr = y + (int64_t)m * ldy;
        const float *xr = x + (int64_t)m * ldx;
        for (int n = n0; n < n1; n++)
            yr[n] = (acc ? yr[n] : 0.0f) + (bias ? bias[n] : 0.0f);
        for (int k = 0; k < K; k++) {
            const float xv = xr[k];
            for (int n = n0; n < n1; n++) {
                const uint16_t *wp = w + (int64_t)(n / SOTTO_F16_PANEL) * ldw;
                yr[n] += xv * sotto_f16_to_f32(wp[(int64_t)k * SOTTO_F16_PANEL +
                                                  n % SOTTO_F16_PANEL]);
            }
        }
    }
}

/* v rounded to the nearest binary16 value (ties to even), kept as a double; overflow gives
 * ±inf. Exact for every double that is a sum of binary16 products, so the two-step rounding
 * below equals the FMA's single rounding. */
static double round_h(double v)
{
    if (v == 0.0 || !isfinite(v)) return v;
    int e;
    (void)frexp(v, &e);
    int ue = e - 11; /* 11 significant bits; subnormal spacing 2^-24 */
    if (ue < -24) ue = -24;
    const double r = ldexp(nearbyint(ldexp(v, -ue)), ue);
    return fabs(r) > 65504.0 ? copysign(INFINITY, r) : r;
}

static double h16_value(uint16_t h)
{
    return (double)sotto_f16_to_f32(h);
}

static void gemm_h16_ref(int M, int K, int seg, int64_t tap_step, int n0, int n1, const float *x,
                         int64_t ldx, const uint16_t *w, int64_t ldw, const float *bias, float *y,
                         int64_t ldy, int acc)
{
    if (seg <= 0 || seg > K) seg = K > 0 ? K : 1;
#define XK(k) xr[(int64_t)((k) / seg) * tap_step + (k) % seg]
    for (int m = 0; m < M; m++) {
        const float *xr = x + (int64_t)m * ldx;
        float *yr = y + (int64_t)m * ldy;
        for (int n = n0; n < n1; n++) {
            const uint16_t *wp = w + (int64_t)(n / SOTTO_F16_PANEL) * ldw +
                                 ((n % SOTTO_F16_PANEL) / 16) * 32 + (n % 16) * 2;
            float out = acc ? yr[n] : 0.0f;
            for (int k0 = 0; k0 < K; k0 += SOTTO_H16_KC) {
                const int kc = K - k0 < SOTTO_H16_KC ? K - k0 : SOTTO_H16_KC;
                const int np = (kc + 1) / 2;
                float f = 0.0f;
                for (int j0 = 0; j0 < np; j0 += SOTTO_H16_GROUP) {
                    const int j1 = np - j0 < SOTTO_H16_GROUP ? np : j0 + SOTTO_H16_GROUP;
                    double he = 0.0, ho = 0.0;
                    for (int j = j0; j < j1; j++) {
                        const int k = k0 + 2 * j;
                        const int64_t at = (int64_t)(k / 2) * 64;
                        he = round_h(he + round_h(XK(k)) * h16_value(wp[at]));
                        if (k + 1 < K)
                            ho = round_h(ho + round_h(XK(k + 1)) * h16_value(wp[at + 1]));
                    }
                    f += (float)round_h(he + ho);
                }
                if (k0 == 0) {
                    out = acc ? f + out : f;
                    if (bias) out += bias[n];
                } else {
                    out += f;
                }
            }
            if (K == 0) out += bias ? bias[n] : 0.0f;
            yr[n] = out;
        }
    }
}
#undef XK

static void dwconv_ref(const float *x, int C, const float *w, int K, int stride, int dilation,
                       const float *bias, float *y, int64_t t0, int64_t t1)
{
    for (int64_t t = t0; t < t1; t++) {
        float *yr = y + t * C;
        for (int c = 0; c < C; c++)
            yr[c] = bias ? bias[c] : 0.0f;
        for (int k = 0; k < K; k++) {
            const float *xr = x + (t * stride + (int64_t)k * dilation) * C;
            const float *wr = w + (int64_t)k * C;
            for (int c = 0; c < C; c++)
                yr[c] += wr[c] * xr[c];
        }
    }
}

static void layernorm_ref(const float *x, int64_t rows, int C, const float *gamma,
                          const float *beta, float eps, float *y)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        float *yr = y + r * C;
        double s = 0.0, v = 0.0;
        for (int c = 0; c < C; c++)
            s += xr[c];
        const double mean = s / C;
        for (int c = 0; c < C; c++)
            v += (xr[c] - mean) * (xr[c] - mean);
        const float m = (float)mean, inv = (float)(1.0 / sqrt(v / C + eps));
        for (int c = 0; c < C; c++) {
            float o = (xr[c] - m) * inv;
            if (gamma) o *= gamma[c];
            if (beta) o += beta[c];
            yr[c] = o;
        }
    }
}

static void rmsnorm_ref(const float *x, int64_t rows, int C, const float *gamma, float eps,
                        float *y)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        float *yr = y + r * C;
        double s = 0.0;
        for (int c = 0; c < C; c++)
            s += (double)xr[c] * xr[c];
        const float inv = (float)(1.0 / sqrt(s / C + eps));
        for (int c = 0; c < C; c++)
            yr[c] = xr[c] * inv * (gamma ? gamma[c] : 1.0f);
    }
}

#define INV_SQRT2 0.70710678118654752440f
#define SQRT_2_OVER_PI 0.79788456080286535588f

static void gelu_erf_ref(const float *x, int64_t n, float *y)
{
    for (int64_t i = 0; i < n; i++) {
        const float v = x[i], z = fabsf(v) * INV_SQRT2;
        y[i] = v >= 0.0f ? 0.5f * v * (1.0f + erff(z)) : 0.5f * v * erfcf(z);
    }
}

static void gelu_tanh_ref(const float *x, int64_t n, float *y)
{
    /* 0.5·x·(1 + tanh(u)) == x / (1 + exp(−2u)) */
    for (int64_t i = 0; i < n; i++) {
        const float v = x[i], u = SQRT_2_OVER_PI * (v + 0.044715f * v * v * v);
        y[i] = v / (1.0f + expf(-2.0f * u));
    }
}

static void silu_ref(const float *x, int64_t n, float *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] / (1.0f + expf(-x[i]));
}

static void tanh_ref(const float *x, int64_t n, float *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = tanhf(x[i]);
}

static void elu_ref(const float *x, int64_t n, float alpha, float *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] > 0.0f ? x[i] : alpha * expm1f(x[i]);
}

static void leaky_relu_ref(const float *x, int64_t n, float slope, float *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] > 0.0f ? x[i] : x[i] * slope;
}

static void snake_ref(const float *x, int64_t rows, int C, const float *alpha, float *y)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        float *yr = y + r * C;
        for (int c = 0; c < C; c++) {
            /* torch: x + (alpha + 1e-9).reciprocal() * sin(alpha * x).pow(2) */
            const float s = sinf(alpha[c] * xr[c]);
            yr[c] = xr[c] + (1.0f / (alpha[c] + 1e-9f)) * (s * s);
        }
    }
}

static void sincos_ref(const float *x, int64_t n, float *s, float *c)
{
    for (int64_t i = 0; i < n; i++) {
        s[i] = sinf(x[i]);
        c[i] = cosf(x[i]);
    }
}

static void softmax_ref(const float *x, int64_t rows, int n, float *y)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        float mx = -INFINITY;
        for (int i = 0; i < n; i++)
            mx = xr[i] > mx ? xr[i] : mx;
        double s = 0.0;
        for (int i = 0; i < n; i++) {
            yr[i] = expf(xr[i] - mx);
            s += yr[i];
        }
        const float inv = (float)(1.0 / s);
        for (int i = 0; i < n; i++)
            yr[i] *= inv;
    }
}

static void f16_to_f32_ref(const uint16_t *x, int64_t n, float *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = sotto_f16_to_f32(x[i]);
}

static void f32_to_f16_ref(const float *x, int64_t n, uint16_t *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = sotto_f32_to_f16(x[i]);
}

void sotto_cpu_kernels_ref(sotto_cpu_kernels *k)
{
    memset(k, 0, sizeof *k);
    k->name = "scalar";
    k->isa = 0;
    k->gemm_f32 = gemm_f32_ref;
    k->gemm_f16 = gemm_f16_ref;
    k->gemm_h16 = gemm_h16_ref;
    k->dwconv = dwconv_ref;
    k->layernorm = layernorm_ref;
    k->rmsnorm = rmsnorm_ref;
    k->gelu_erf = gelu_erf_ref;
    k->gelu_tanh = gelu_tanh_ref;
    k->silu = silu_ref;
    k->tanh = tanh_ref;
    k->elu = elu_ref;
    k->leaky_relu = leaky_relu_ref;
    k->snake = snake_ref;
    k->softmax = softmax_ref;
    k->sincos = sincos_ref;
    k->f16_to_f32 = f16_to_f32_ref;
    k->f32_to_f16 = f32_to_f16_ref;
}
