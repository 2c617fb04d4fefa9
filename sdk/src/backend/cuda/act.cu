/*
 * Element-wise activations on the device, one grid-stride kernel per activation built from a
 * small functor. The formulas are the CPU reference's (backend/cpu/kernels_ref.c), including
 * its two deliberate choices: GELU through erfc on the negative side and the tanh GELU as
 * x·sigmoid(2u), both free of the cancellation in 1 + erf(x) or 1 + tanh(u) for negative x.
 * CUDA's erff, erfcf, expf, expm1f and tanhf (never the fast intrinsics) stay within a few ulp
 * of libm.
 */
#include "backend/cuda/common.cuh"

#define INV_SQRT2 0.70710678118654752440f
#define SQRT_2_OVER_PI 0.79788456080286535588f

struct gelu_erf_op {
    __device__ float operator()(float v, float) const
    {
        const float z = fabsf(v) * INV_SQRT2;
        return v >= 0.0f ? 0.5f * v * (1.0f + erff(z)) : 0.5f * v * erfcf(z);
    }
};
struct gelu_tanh_op {
    __device__ float operator()(float v, float) const
    {
        const float u = SQRT_2_OVER_PI * (v + 0.044715f * v * v * v);
        return v / (1.0f + expf(-2.0f * u));
    }
};
struct silu_op {
    __device__ float operator()(float v, float) const
    {
        return v / (1.0f + expf(-v));
    }
};
struct tanh_op {
    __device__ float operator()(float v, float) const
    {
        return tanhf(v);
    }
};
struct elu_op {
    __device__ float operator()(float v, float alpha) const
    {
        return v > 0.0f ? v : alpha * expm1f(v);
    }
};
struct leaky_relu_op {
    __device__ float operator()(float v, float slope) const
    {
        return v > 0.0f ? v : v * slope;
    }
};

template <typename Op> __global__ void unary_kernel(const float *x, int64_t n, float p, float *y)
{
    const Op op;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        y[i] = op(x[i], p);
}

template <typename Op>
static int run_unary(sotto_cuda *cu, const float *x, int64_t n, float p, float *y, const char *name)
{
    if (!cu || n < 0) return SOTTO_ERR_INVALID_ARG;
    int rc = sotto_cuda_enter(cu);
    if (rc || n == 0) return rc;
    if (!x || !y) return SOTTO_ERR_INVALID_ARG;
    unary_kernel<Op><<<sotto_cuda_grid(n), SOTTO_CUDA_BLOCK, 0, cu->stream>>>(x, n, p, y);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return sotto_cuda_fail_rt(cu, name, e);
    return SOTTO_OK;
}

extern "C" int sotto_cuda_gelu_erf(sotto_cuda *cu, const float *x, int64_t n, float *y)
{
    return run_unary<gelu_erf_op>(cu, x, n, 0.0f, y, "launch gelu_erf");
}

extern "C" int sotto_cuda_gelu_tanh(sotto_cuda *cu, const float *x, int64_t n, float *y)
{
    return run_unary<gelu_tanh_op>(cu, x, n, 0.0f, y, "launch gelu_tanh");
}

extern "C" int sotto_cuda_silu(sotto_cuda *cu, const float *x, int64_t n, float *y)
{
    return run_unary<silu_op>(cu, x, n, 0.0f, y, "launch silu");
}

extern "C" int sotto_cuda_tanh(sotto_cuda *cu, const float *x, int64_t n, float *y)
{
    return run_unary<tanh_op>(cu, x, n, 0.0f, y, "launch tanh");
}

extern "C" int sotto_cuda_elu(sotto_cuda *cu, const float *x, int64_t n, float alpha, float *y)
{
    return run_unary<elu_op>(cu, x, n, alpha, y, "launch elu");
}

extern "C" int sotto_cuda_leaky_relu(sotto_cuda *cu, const float *x, int64_t n, float slope,
                                     float *y)
{
    return run_unary<leaky_relu_op>(cu, x, n, slope, y, "launch leaky_relu");
}
