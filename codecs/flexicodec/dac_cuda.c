/* The DAC residual unit on the CUDA layers (dac_cuda.h). */
#include "codecs/flexicodec/dac_cuda.h"

#ifdef SOTTO_HAVE_CUDA

static int vec(sotto_cuda *cu, const float *h, int n, float **d, sotto_status *st)
{
    if (!h)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "flexicodec cuda: a residual unit vector is missing");
    int rc = sotto_cuda_alloc(cu, sizeof(float) * (size_t)n, (void **)d);
    if (!rc) rc = sotto_cuda_upload(cu, *d, h, sizeof(float) * (size_t)n);
    if (rc)
        return sotto_status_set(st, rc, "flexicodec cuda: residual unit upload: %s",
                                sotto_cuda_error_message(cu));
    return SOTTO_OK;
}

int flexicodec_cuda_res_unit_upload(sotto_cuda *cu, const flexicodec_res_unit *r, int C,
                                    flexicodec_cuda_res_unit *u, sotto_status *st)
{
    int rc;
    u->dilation = r->dilation;
    if ((rc = vec(cu, r->alpha1, C, &u->alpha1, st)) ||
        (rc = vec(cu, r->alpha2, C, &u->alpha2, st)) ||
        (rc = sotto_cuda_conv1d_w_from_cpu(cu, &u->conv7, &r->conv7, st)) ||
        (rc = vec(cu, r->conv7_b, C, &u->conv7_b, st)) ||
        (rc = sotto_cuda_linear_w_from_cpu(cu, &u->conv1, &r->conv1, st)) ||
        (rc = vec(cu, r->conv1_b, C, &u->conv1_b, st)))
        return rc;
    if (u->conv7.c_in != C || u->conv7.c_out != C || u->conv7.k != FLEXICODEC_DAC_K ||
        u->conv7.dilation != r->dilation || u->conv7.stride != 1 || u->conv7.groups != 1 ||
        u->conv1.n_in != C || u->conv1.n_out != C)
        return sotto_status_set(st, SOTTO_ERR_INVALID_ARG,
                                "flexicodec cuda: a residual unit's convs do not match its "
                                "width %d",
                                C);
    return SOTTO_OK;
}

void flexicodec_cuda_res_unit_free(sotto_cuda *cu, flexicodec_cuda_res_unit *u)
{
    sotto_cuda_conv1d_w_free(cu, &u->conv7);
    sotto_cuda_linear_w_free(cu, &u->conv1);
    sotto_cuda_free(cu, u->alpha1);
    sotto_cuda_free(cu, u->alpha2);
    sotto_cuda_free(cu, u->conv7_b);
    sotto_cuda_free(cu, u->conv1_b);
}

int64_t flexicodec_cuda_res_unit_run(sotto_cuda *cu, const flexicodec_cuda_res_unit *u, float *x,
                                     float *A, float *B, int64_t L, int C, const char **what)
{
    const int64_t pad = 3 * (int64_t)u->dilation;
    const size_t edge = sizeof(float) * (size_t)pad * (size_t)C;
    int64_t r;
    *what = "residual unit";
    if ((r = sotto_cuda_memset0(cu, A, edge)) ||
        (r = sotto_cuda_memset0(cu, A + (pad + L) * C, edge)) ||
        (r = sotto_cuda_snake(cu, x, L, C, u->alpha1, A + pad * C)))
        return r;
    *what = "residual unit conv7";
    if ((r = sotto_cuda_conv1d(cu, &u->conv7, u->conv7_b, A, L + 2 * pad, B)) != L)
        return r ? r : SOTTO_ERR_INTERNAL;
    *what = "residual unit conv1";
    if ((r = sotto_cuda_snake(cu, B, L, C, u->alpha2, B)) ||
        (r = sotto_cuda_linear_ex(cu, &u->conv1, u->conv1_b, B, C, L, x, C, 1)))
        return r;
    return SOTTO_OK;
}

#endif /* SOTTO_HAVE_CUDA */
