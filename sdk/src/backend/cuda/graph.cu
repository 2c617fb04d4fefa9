/*
 * CUDA graphs on a context (cuda_graph.h): stream capture on the context's stream in
 * thread-local mode, instantiation, replay. A graph object keeps one instantiated graph and
 * the key it was captured under; capturing again replaces it. Every CUDA call is checked and a
 * failure fails the context like any layer's; a failure during capture still ends the capture
 * so the stream is never left recording.
 */
#include <stdlib.h>

#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_graph.h"

struct sotto_cuda_graph {
    sotto_cuda *cu;
    cudaGraphExec_t exec;
    int has_exec;
    int64_t key;         /* what exec was captured under (valid with has_exec) */
    int capturing;       /* between begin and end */
    int64_t pending_key; /* the key of the capture under way */
    int64_t captures, launches;
};

extern "C" int sotto_cuda_graph_create(sotto_cuda *cu, sotto_cuda_graph **out)
{
    if (!out) return SOTTO_ERR_INVALID_ARG;
    *out = NULL;
    if (!cu) return SOTTO_ERR_INVALID_ARG;
    if (cu->err) return cu->err;
    sotto_cuda_graph *g = (sotto_cuda_graph *)calloc(1, sizeof *g);
    if (!g) return SOTTO_ERR_OUT_OF_MEMORY;
    g->cu = cu;
    *out = g;
    return SOTTO_OK;
}

/* Ends a capture whatever state the context is in and drops what it recorded. */
static void abandon_capture(sotto_cuda_graph *g)
{
    cudaGraph_t graph = NULL;
    (void)cudaSetDevice(g->cu->device);
    (void)cudaStreamEndCapture(g->cu->stream, &graph);
    if (graph) (void)cudaGraphDestroy(graph);
    (void)cudaGetLastError();
    g->capturing = 0;
}

static void drop_exec(sotto_cuda_graph *g)
{
    if (g->has_exec) {
        (void)cudaSetDevice(g->cu->device);
        (void)cudaGraphExecDestroy(g->exec);
        (void)cudaGetLastError();
    }
    g->has_exec = 0;
}

extern "C" void sotto_cuda_graph_destroy(sotto_cuda_graph *g)
{
    if (!g) return;
    if (g->capturing) abandon_capture(g);
    drop_exec(g);
    free(g);
}

extern "C" void sotto_cuda_graph_invalidate(sotto_cuda_graph *g)
{
    if (g && !g->capturing) drop_exec(g);
}

extern "C" int sotto_cuda_graph_ready(const sotto_cuda_graph *g, int64_t key)
{
    return g && g->has_exec && !g->capturing && g->key == key;
}

extern "C" int sotto_cuda_graph_begin(sotto_cuda_graph *g, int64_t key)
{
    if (!g) return SOTTO_ERR_INVALID_ARG;
    sotto_cuda *cu = g->cu;
    int rc = sotto_cuda_enter(cu);
    if (rc) return rc;
    if (g->capturing) return SOTTO_ERR_STATE;
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    SOTTO_CU(cu, cudaStreamIsCapturing(cu->stream, &status));
    if (status != cudaStreamCaptureStatusNone) return SOTTO_ERR_STATE; /* another graph's */
    SOTTO_CU(cu, cudaStreamBeginCapture(cu->stream, cudaStreamCaptureModeThreadLocal));
    g->capturing = 1;
    g->pending_key = key;
    return SOTTO_OK;
}

/* Instantiates graph into g (replacing what g held) and preloads it on the device. */
static int install(sotto_cuda_graph *g, cudaGraph_t graph)
{
    sotto_cuda *cu = g->cu;
    drop_exec(g);
    SOTTO_CU(cu, cudaGraphInstantiate(&g->exec, graph, 0));
    g->has_exec = 1;
    g->key = g->pending_key;
    SOTTO_CU(cu, cudaGraphUpload(g->exec, cu->stream));
    g->captures++;
    return SOTTO_OK;
}

extern "C" int sotto_cuda_graph_end(sotto_cuda_graph *g)
{
    if (!g) return SOTTO_ERR_INVALID_ARG;
    sotto_cuda *cu = g->cu;
    if (!g->capturing) return cu->err ? cu->err : SOTTO_ERR_STATE;
    if (cu->err) {
        /* A call failed while recording: what was recorded is incomplete. */
        abandon_capture(g);
        drop_exec(g);
        return cu->err;
    }
    g->capturing = 0;
    cudaGraph_t graph = NULL;
    const cudaError_t e = cudaStreamEndCapture(cu->stream, &graph);
    if (e != cudaSuccess) {
        if (graph) (void)cudaGraphDestroy(graph);
        drop_exec(g);
        return sotto_cuda_fail_rt(cu, "cudaStreamEndCapture", e);
    }
    if (!graph) {
        drop_exec(g);
        return sotto_cuda_fail(cu, SOTTO_ERR_DEVICE, "cudaStreamEndCapture", "no graph returned");
    }
    const int rc = install(g, graph);
    const cudaError_t e2 = cudaGraphDestroy(graph);
    if (rc) {
        drop_exec(g);
        return rc;
    }
    if (e2 != cudaSuccess) return sotto_cuda_fail_rt(cu, "cudaGraphDestroy", e2);
    return SOTTO_OK;
}

extern "C" int sotto_cuda_graph_launch(sotto_cuda_graph *g)
{
    if (!g) return SOTTO_ERR_INVALID_ARG;
    sotto_cuda *cu = g->cu;
    int rc = sotto_cuda_enter(cu);
    if (rc) return rc;
    if (g->capturing || !g->has_exec) return SOTTO_ERR_STATE;
    SOTTO_CU(cu, cudaGraphLaunch(g->exec, cu->stream));
    g->launches++;
    return SOTTO_OK;
}

extern "C" int64_t sotto_cuda_graph_captures(const sotto_cuda_graph *g)
{
    return g ? g->captures : 0;
}

extern "C" int64_t sotto_cuda_graph_launches(const sotto_cuda_graph *g)
{
    return g ? g->launches : 0;
}
