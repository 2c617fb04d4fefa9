/*
 * CUDA graphs on a layer-library context (backend/cuda/cuda_graph.h) and the row ops of
 * backend/cuda/cuda_rows.h: a captured sequence of layers replayed equals the same layers run
 * directly, on new input data too (a replay reads its buffers when it runs); capturing under
 * another key replaces the graph; the calls out of order are refused without failing the
 * context; a call that waits for the device during capture fails the context, ends the
 * capture, and every later call returns the same error. Row ops: copies and zeroed row groups
 * against the host. Where no device exists, or Sotto was built without its CUDA backend, the
 * test reports SKIP (exit code 77), never a pass.
 *
 * Tolerances: replay vs direct run max-abs 0 (the same kernels on the same shapes and data:
 * the GEMM and the element-wise kernels are deterministic); the row ops are exact.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda_probe.h"
#include "testutil.h"

#ifdef SOTTO_HAVE_CUDA

#include "backend/cuda/cuda_graph.h"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/cuda_rows.h"

#define M 24
#define K 40
#define N 56

typedef struct bufs {
    sotto_cuda *cu;
    sotto_cuda_linear_w w;
    float *x, *y, *bias; /* device */
} bufs;

static void setup(bufs *b, tu_rng *rng)
{
    sotto_status st;
    int rc = sotto_cuda_create(&b->cu, 0, 1 << 20, &st);
    if (rc) fprintf(stderr, "sotto_cuda_create: %s\n", st.message);
    CU_ASSERT_EQUAL_FATAL(rc, SOTTO_OK);
    float W[N * K], bias[N];
    tu_fill_uniform(rng, W, N * K, -0.5f, 0.5f);
    tu_fill_uniform(rng, bias, N, -0.1f, 0.1f);
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_linear_w_init(b->cu, &b->w, W, N, K, &st), SOTTO_OK);
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_alloc(b->cu, sizeof(float) * M * K, (void **)&b->x), 0);
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_alloc(b->cu, sizeof(float) * M * N, (void **)&b->y), 0);
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_alloc(b->cu, sizeof(float) * N, (void **)&b->bias), 0);
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_upload(b->cu, b->bias, bias, sizeof bias), 0);
}

static void teardown(bufs *b)
{
    sotto_cuda_linear_w_free(b->cu, &b->w);
    sotto_cuda_free(b->cu, b->x);
    sotto_cuda_free(b->cu, b->y);
    sotto_cuda_free(b->cu, b->bias);
    sotto_cuda_destroy(b->cu);
}

/* The work a step enqueues: y = GELU(x·Wᵀ + b) over the first m rows. */
static int step(bufs *b, int m)
{
    int rc = sotto_cuda_linear(b->cu, &b->w, b->bias, b->x, m, b->y);
    if (!rc) rc = sotto_cuda_gelu_erf(b->cu, b->y, (int64_t)m * N, b->y);
    return rc;
}

static void direct(bufs *b, const float *x, int m, float *y)
{
    CU_ASSERT_EQUAL(sotto_cuda_upload(b->cu, b->x, x, sizeof(float) * (size_t)m * K), 0);
    CU_ASSERT_EQUAL(step(b, m), 0);
    CU_ASSERT_EQUAL(sotto_cuda_download(b->cu, y, b->y, sizeof(float) * (size_t)m * N), 0);
}

static void replay(bufs *b, sotto_cuda_graph *g, const float *x, int m, float *y)
{
    CU_ASSERT_EQUAL(sotto_cuda_upload(b->cu, b->x, x, sizeof(float) * (size_t)m * K), 0);
    CU_ASSERT_EQUAL(sotto_cuda_graph_launch(g), 0);
    CU_ASSERT_EQUAL(sotto_cuda_download(b->cu, y, b->y, sizeof(float) * (size_t)m * N), 0);
}

static void test_replay(void)
{
    tu_rng rng;
    tu_rng_init(&rng, tu_seed());
    bufs b;
    setup(&b, &rng);
    float x1[M * K], x2[M * K], want[M * N], got[M * N];
    tu_fill_uniform(&rng, x1, M * K, -1.0f, 1.0f);
    tu_fill_uniform(&rng, x2, M * K, -1.0f, 1.0f);

    sotto_cuda_graph *g = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_graph_create(b.cu, &g), SOTTO_OK);
    CU_ASSERT_FALSE(sotto_cuda_graph_ready(g, 1));
    CU_ASSERT_EQUAL(sotto_cuda_graph_begin(g, 1), SOTTO_OK);
    CU_ASSERT_EQUAL(step(&b, M), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_graph_end(g), SOTTO_OK);
    CU_ASSERT_TRUE(sotto_cuda_graph_ready(g, 1));
    CU_ASSERT_FALSE(sotto_cuda_graph_ready(g, 2));
    CU_ASSERT_EQUAL(sotto_cuda_graph_captures(g), 1);

    /* A replay reads x when it runs: new data, same graph. */
    for (int round = 0; round < 2; round++) {
        const float *x = round ? x2 : x1;
        direct(&b, x, M, want);
        replay(&b, g, x, M, got);
        TU_ASSERT_CLOSE(round ? "replay, second input" : "replay, first input", got, want, M * N,
                        0.0, -1.0);
    }
    CU_ASSERT_EQUAL(sotto_cuda_graph_launches(g), 2);

    /* Another key (fewer rows) replaces the graph. */
    CU_ASSERT_EQUAL(sotto_cuda_graph_begin(g, 2), SOTTO_OK);
    CU_ASSERT_EQUAL(step(&b, M / 2), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_graph_end(g), SOTTO_OK);
    CU_ASSERT_TRUE(sotto_cuda_graph_ready(g, 2));
    CU_ASSERT_FALSE(sotto_cuda_graph_ready(g, 1));
    CU_ASSERT_EQUAL(sotto_cuda_graph_captures(g), 2);
    direct(&b, x2, M / 2, want);
    replay(&b, g, x2, M / 2, got);
    TU_ASSERT_CLOSE("replay after capturing again", got, want, M / 2 * N, 0.0, -1.0);

    /* Invalidate: nothing to launch until the next capture. */
    sotto_cuda_graph_invalidate(g);
    CU_ASSERT_FALSE(sotto_cuda_graph_ready(g, 2));
    CU_ASSERT_EQUAL(sotto_cuda_graph_launch(g), SOTTO_ERR_STATE);
    CU_ASSERT_EQUAL(sotto_cuda_error(b.cu), SOTTO_OK);
    sotto_cuda_graph_destroy(g);
    teardown(&b);
}

/* Calls out of order are refused and leave the context working. */
static void test_state_errors(void)
{
    tu_rng rng;
    tu_rng_init(&rng, tu_seed());
    bufs b;
    setup(&b, &rng);
    sotto_cuda_graph *g = NULL, *g2 = NULL;
    CU_ASSERT_EQUAL(sotto_cuda_graph_create(NULL, &g), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_graph_create(b.cu, NULL), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_graph_create(b.cu, &g), SOTTO_OK);
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_graph_create(b.cu, &g2), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_graph_begin(NULL, 0), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_graph_end(NULL), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_graph_launch(NULL), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_graph_launch(g), SOTTO_ERR_STATE);
    CU_ASSERT_EQUAL(sotto_cuda_graph_end(g), SOTTO_ERR_STATE);
    CU_ASSERT_EQUAL(sotto_cuda_graph_begin(g, 7), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_graph_begin(g, 7), SOTTO_ERR_STATE);
    CU_ASSERT_EQUAL(sotto_cuda_graph_begin(g2, 7), SOTTO_ERR_STATE); /* the stream is taken */
    CU_ASSERT_EQUAL(sotto_cuda_graph_launch(g), SOTTO_ERR_STATE);
    CU_ASSERT_EQUAL(step(&b, M), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_graph_end(g), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_error(b.cu), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_graph_launch(g), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_sync(b.cu), SOTTO_OK);
    /* Destroying a graph in the middle of a capture ends the capture. */
    CU_ASSERT_EQUAL(sotto_cuda_graph_begin(g2, 1), SOTTO_OK);
    sotto_cuda_graph_destroy(g2);
    CU_ASSERT_EQUAL(sotto_cuda_sync(b.cu), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_graph_launch(g), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_sync(b.cu), SOTTO_OK);
    sotto_cuda_graph_destroy(g);
    sotto_cuda_graph_destroy(NULL);
    teardown(&b);
}

/* Waiting for the device during capture fails the context; the error is sticky. */
static void test_sticky_error(void)
{
    tu_rng rng;
    tu_rng_init(&rng, tu_seed());
    bufs b;
    setup(&b, &rng);
    sotto_cuda_graph *g = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_graph_create(b.cu, &g), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_graph_begin(g, 1), SOTTO_OK);
    CU_ASSERT_EQUAL(step(&b, M), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_sync(b.cu), SOTTO_ERR_DEVICE);
    printf("  (sync during capture: %s)\n", sotto_cuda_error_message(b.cu));
    CU_ASSERT_EQUAL(sotto_cuda_graph_end(g), SOTTO_ERR_DEVICE);
    CU_ASSERT_FALSE(sotto_cuda_graph_ready(g, 1));
    CU_ASSERT_EQUAL(sotto_cuda_graph_launch(g), SOTTO_ERR_DEVICE);
    CU_ASSERT_EQUAL(sotto_cuda_graph_begin(g, 1), SOTTO_ERR_DEVICE);
    CU_ASSERT_EQUAL(step(&b, M), SOTTO_ERR_DEVICE);
    sotto_cuda_graph *g2 = NULL;
    CU_ASSERT_EQUAL(sotto_cuda_graph_create(b.cu, &g2), SOTTO_ERR_DEVICE);
    CU_ASSERT_PTR_NULL(g2);
    sotto_cuda_graph_destroy(g);
    teardown(&b);
}

/* Row ops against the host, run directly and inside a graph. */
static void test_rows(void)
{
    tu_rng rng;
    tu_rng_init(&rng, tu_seed());
    sotto_cuda *cu = NULL;
    sotto_status st;
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_create(&cu, 0, 0, &st), SOTTO_OK);
    enum { T = 40, C = 13 };
    float x[T * C], want[T * C], got[T * C];
    tu_fill_uniform(&rng, x, T * C, -1.0f, 1.0f);
    const int32_t starts[3] = {0, 17, 36};
    float *dx = NULL, *dy = NULL;
    int32_t *ds = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_alloc(cu, sizeof x, (void **)&dx), 0);
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_alloc(cu, sizeof x, (void **)&dy), 0);
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_alloc(cu, sizeof starts, (void **)&ds), 0);
    CU_ASSERT_EQUAL(sotto_cuda_upload(cu, dx, x, sizeof x), 0);
    CU_ASSERT_EQUAL(sotto_cuda_upload(cu, ds, starts, sizeof starts), 0);
    memcpy(want, x, sizeof x);
    for (int g = 0; g < 3; g++)
        memset(want + starts[g] * C, 0, sizeof(float) * 4 * C);

    CU_ASSERT_EQUAL(sotto_cuda_copy(cu, dy, dx, sizeof x), 0);
    CU_ASSERT_EQUAL(sotto_cuda_zero_row_groups(cu, dy, C, ds, 3, 4), 0);
    CU_ASSERT_EQUAL(sotto_cuda_download(cu, got, dy, sizeof got), 0);
    TU_ASSERT_CLOSE("copy + zeroed row groups", got, want, T * C, 0.0, -1.0);

    sotto_cuda_graph *g = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_cuda_graph_create(cu, &g), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_memset0(cu, dy, sizeof x), 0);
    CU_ASSERT_EQUAL(sotto_cuda_graph_begin(g, 0), 0);
    CU_ASSERT_EQUAL(sotto_cuda_copy(cu, dy, dx, sizeof x), 0);
    CU_ASSERT_EQUAL(sotto_cuda_zero_row_groups(cu, dy, C, ds, 3, 4), 0);
    CU_ASSERT_EQUAL(sotto_cuda_graph_end(g), 0);
    CU_ASSERT_EQUAL(sotto_cuda_graph_launch(g), 0);
    CU_ASSERT_EQUAL(sotto_cuda_download(cu, got, dy, sizeof got), 0);
    TU_ASSERT_CLOSE("copy + zeroed row groups, graph", got, want, T * C, 0.0, -1.0);

    /* No-ops and bad arguments. */
    CU_ASSERT_EQUAL(sotto_cuda_zero_row_groups(cu, dy, C, ds, 0, 4), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_copy(cu, dy, dx, 0), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_cuda_zero_row_groups(cu, dy, 0, ds, 3, 4), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_zero_row_groups(cu, NULL, C, ds, 3, 4), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_zero_row_groups(cu, dy, C, NULL, 3, 4), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_copy(cu, NULL, dx, 4), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_copy(NULL, dy, dx, 4), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_cuda_error(cu), SOTTO_OK);

    sotto_cuda_graph_destroy(g);
    sotto_cuda_free(cu, dx);
    sotto_cuda_free(cu, dy);
    sotto_cuda_free(cu, ds);
    sotto_cuda_destroy(cu);
}

#endif /* SOTTO_HAVE_CUDA */

int main(void)
{
#ifndef SOTTO_HAVE_CUDA
    printf("SKIP: Sotto built without the CUDA backend\n");
    return TU_SKIP;
#else
    if (sotto_cuda_device_count() == 0) {
        printf("SKIP: no CUDA device\n");
        return TU_SKIP;
    }
    static const tu_test tests[] = {{"replay", test_replay},
                                    {"state_errors", test_state_errors},
                                    {"sticky_error", test_sticky_error},
                                    {"rows", test_rows},
                                    {NULL, NULL}};
    return tu_run_suite("cuda_graph", tests);
#endif
}
