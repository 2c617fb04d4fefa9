/*
 * CUDA graphs on a layer-library context (cuda_ops.h): record the work that a fixed sequence of
 * layer calls enqueues on the context's stream once, then replay all of it with one launch.
 * A streaming step of fixed shape costs dozens of kernel launches; replayed as a graph it
 * costs one, and the device runs the kernels back to back.
 *
 * A graph object holds at most one instantiated graph, tagged with a caller's key that names
 * what was captured (e.g. the step's frame count). When the key changes, the caller captures
 * again and the new capture replaces the old one (instantiated anew: the old executable
 * graph is destroyed; cudaGraphExecUpdate is not used).
 *
 * Usage (per step; nothing is allocated after the first capture of a key):
 *     if (!sotto_cuda_graph_ready(g, key)) {
 *         sotto_cuda_graph_begin(g, key);       // the stream now records instead of running
 *         ... the step's layer calls on the context, exactly as without a graph ...
 *         if (sotto_cuda_graph_end(g)) ...      // instantiates; nothing has run yet
 *     }
 *     sotto_cuda_graph_launch(g);               // runs the recorded work on the stream
 *
 * Rules of capture (CUDA's): between begin and end, only asynchronous work may be enqueued on
 * the context: layers, sotto_cuda_memset0, the scratch pool; never sotto_cuda_upload,
 * sotto_cuda_download, sotto_cuda_sync, sotto_cuda_alloc or anything else that waits for the
 * device (such a call fails, and fails the context). Every pointer and size is recorded by
 * value: a replay reads and writes the same device addresses as the capture, so the captured
 * buffers must stay allocated, and data that changes between replays must be placed in them
 * before the launch. Scratch taken during capture is recorded at its address, so reset the
 * pool before the step's layer calls, captured or not, to get the same addresses every time.
 * Capture mode is thread-local: other threads (and other contexts) are not restricted.
 *
 * Errors are the context's: every CUDA call is checked, a failure is recorded in the context
 * (sotto_cuda_error_message says which call) and returned as SOTTO_ERR_DEVICE, and from then on
 * every call on the context and its graphs returns that same code. A failure inside a capture
 * still ends the capture (the stream is left usable for teardown) and discards it. Bad
 * arguments return SOTTO_ERR_INVALID_ARG, SOTTO_ERR_STATE a call out of order (begin while
 * capturing, end or launch with nothing captured); neither fails the context. One graph serves
 * one context, from the thread that uses that context; destroy it before the context.
 */
#ifndef SOTTO_BACKEND_CUDA_GRAPH_H
#define SOTTO_BACKEND_CUDA_GRAPH_H

#include <stdint.h>

#include "backend/cuda/cuda_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sotto_cuda_graph sotto_cuda_graph;

/* An empty graph object for context cu (host memory only). Errors: SOTTO_ERR_INVALID_ARG,
 * SOTTO_ERR_OUT_OF_MEMORY, or the context's sticky error. */
int sotto_cuda_graph_create(sotto_cuda *cu, sotto_cuda_graph **out);
/* Releases the instantiated graph (an unfinished capture is ended first). NULL is a no-op. */
void sotto_cuda_graph_destroy(sotto_cuda_graph *g);

/* 1 when g holds an instantiated graph captured under key, else 0. */
int sotto_cuda_graph_ready(const sotto_cuda_graph *g, int64_t key);

/* Starts recording the context's stream under key. Errors: SOTTO_ERR_INVALID_ARG (NULL),
 * SOTTO_ERR_STATE (already capturing), the sticky error, SOTTO_ERR_DEVICE. */
int sotto_cuda_graph_begin(sotto_cuda_graph *g, int64_t key);
/* Stops recording and instantiates what was recorded, replacing the previous graph; nothing
 * has run yet. Errors: SOTTO_ERR_INVALID_ARG, SOTTO_ERR_STATE (not capturing), the sticky
 * error (a layer failed during capture: the capture is discarded), SOTTO_ERR_DEVICE. */
int sotto_cuda_graph_end(sotto_cuda_graph *g);
/* Enqueues one replay on the context's stream (asynchronous, like a layer). Errors:
 * SOTTO_ERR_INVALID_ARG, SOTTO_ERR_STATE (nothing instantiated, or capturing), the sticky
 * error, SOTTO_ERR_DEVICE. */
int sotto_cuda_graph_launch(sotto_cuda_graph *g);
/* Forgets the instantiated graph, so the next step captures again (e.g. after the captured
 * buffers were reallocated). */
void sotto_cuda_graph_invalidate(sotto_cuda_graph *g);

/* Captures completed so far (a count for tests and benchmarks), and replays launched. */
int64_t sotto_cuda_graph_captures(const sotto_cuda_graph *g);
int64_t sotto_cuda_graph_launches(const sotto_cuda_graph *g);

#ifdef __cplusplus
}
#endif

#endif
