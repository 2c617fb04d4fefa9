/*
 * Sotto: neural speech codecs and vocoders in real time. This header holds what every part of
 * the API shares: error codes, the version, the log hook, allocator hooks, CPU features, and
 * the model object (a converted checkpoint in a GGUF file).
 *
 * Usage walkthrough
 *
 *     sotto_model_params mp = sotto_model_default_params();
 *     mp.n_threads = 2;
 *     sotto_model *model = NULL;
 *     sotto_status st;
 *     if (sotto_model_load_file("vocos.gguf", &mp, &model, &st) != SOTTO_OK) {
 *         fprintf(stderr, "load failed: %s\n", st.message);
 *         return 1;
 *     }
 *     ... create streams from the model (sotto_vocoder.h, sotto_codec.h) ...
 *     sotto_model_free(model);
 *
 * Threads: a sotto_model is immutable once loaded and may be shared by any number of threads
 * and streams; it must outlive every stream created from it. A stream object (vocoder,
 * encoder, decoder) is used by one thread at a time. sotto_log_set_callback() is the only
 * global setting: call it before loading anything.
 *
 * Errors: every call that can fail returns SOTTO_OK (0) or a negative sotto_error. Calls that
 * create objects also fill an optional sotto_status with a one-line reason naming the culprit
 * (file, tensor, key); objects keep the detail of their last failure (…_last_error()).
 * The library never aborts and never prints; diagnostics go to the log callback if one is set.
 */
#ifndef SOTTO_H
#define SOTTO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SOTTO_API __attribute__((visibility("default")))
#define SOTTO_WUR __attribute__((warn_unused_result))
#else
#define SOTTO_API
#define SOTTO_WUR
#endif

/** Error codes: SOTTO_OK is 0, every error is negative. */
typedef enum sotto_error {
    SOTTO_OK = 0,
    SOTTO_ERR_INVALID_ARG = -1,      /**< a NULL pointer, out-of-range value or bad size */
    SOTTO_ERR_OUT_OF_MEMORY = -2,    /**< an allocation failed (or a size would overflow) */
    SOTTO_ERR_IO = -3,               /**< a file could not be opened, read or written */
    SOTTO_ERR_FORMAT = -4,           /**< malformed model file, bitstream or audio file */
    SOTTO_ERR_UNSUPPORTED = -5,      /**< valid but not supported (dtype, rate, version) */
    SOTTO_ERR_BUFFER_TOO_SMALL = -6, /**< the caller's output buffer cannot hold the result */
    SOTTO_ERR_MODEL = -7,            /**< a model lacks a tensor/key or has a wrong shape */
    SOTTO_ERR_STATE = -8,            /**< the call is not valid in the object's state */
    SOTTO_ERR_BAD_AUDIO = -9,        /**< NaN or Inf samples in input audio */
    SOTTO_ERR_DEVICE = -10,          /**< the GPU or its runtime reported a failure */
    SOTTO_ERR_INTERNAL = -11         /**< a bug in Sotto: please report it */
} sotto_error;

/** A one-line English description of an error code; never NULL. */
SOTTO_API const char *sotto_strerror(int err);

/** Detail of a failed call: its code and a message naming the culprit. */
typedef struct sotto_status {
    int code;
    char message[256];
} sotto_status;

/** The library version, "MAJOR.MINOR.PATCH". */
SOTTO_API const char *sotto_version_string(void);

/* ---- logging -------------------------------------------------------------------------- */

typedef enum sotto_log_level {
    SOTTO_LOG_ERROR = 0,
    SOTTO_LOG_WARN = 1,
    SOTTO_LOG_INFO = 2,
    SOTTO_LOG_DEBUG = 3
} sotto_log_level;

/** Receives one message (no trailing newline). Called from the thread that logs. */
typedef void (*sotto_log_fn)(sotto_log_level level, const char *message, void *user);

/**
 * Sets the application's log callback (NULL: messages are dropped, the default). Messages
 * are produced at load and creation time only, never on the audio processing path. Not
 * thread-safe: set it once before using the library.
 */
SOTTO_API void sotto_log_set_callback(sotto_log_fn fn, void *user);

/* ---- allocator hooks ------------------------------------------------------------------- */

/**
 * Memory hooks. alloc returns `size` bytes aligned to `align` (a power of two ≤ 4096) or
 * NULL; free takes what alloc returned (or NULL). A model and every stream made from it use
 * the model's allocator. NULL hooks mean the C library's aligned allocation.
 */
typedef struct sotto_allocator {
    void *(*alloc)(size_t size, size_t align, void *user);
    void (*free)(void *ptr, void *user);
    void *user;
} sotto_allocator;

/* ---- CPU features ---------------------------------------------------------------------- */

enum {
    SOTTO_CPU_AVX2 = 1u << 0,
    SOTTO_CPU_FMA = 1u << 1,
    SOTTO_CPU_F16C = 1u << 2,
    SOTTO_CPU_AVX512 = 1u << 3,    /**< AVX-512F with the OS saving ZMM and opmask state */
    SOTTO_CPU_AVX512FP16 = 1u << 4 /**< AVX512-FP16 (binary16 arithmetic) and AVX512-BW */
};

/** The SIMD features of this CPU that Sotto can use (SOTTO_CPU_* bits). */
SOTTO_API unsigned sotto_cpu_features(void);

/* ---- model ------------------------------------------------------------------------------ */

typedef struct sotto_model sotto_model;

/** Where a model runs (docs/gpu.md, "Choosing the backend"). CUDA fails to load with
 *  SOTTO_ERR_DEVICE when the device does not exist; otherwise the model runs on the device
 *  where its architecture has a CUDA path (Vocos mel vocoder streams; FlexiCodec decoders'
 *  transformer and DAC decoder) and on the CPU, with a warning in the log at load, where it
 *  has none. AUTO takes CUDA device params.device when it exists and the model has a CUDA
 *  path, else the CPU (never an error; a machine without an NVIDIA driver does not start the
 *  CUDA runtime at all). These CUDA paths have been tested against a CUDA emulator
 *  (tests/cudaemu), not yet on a GPU. sotto_model_backend() says which backend runs a loaded
 *  model. */
typedef enum sotto_backend_kind {
    SOTTO_BACKEND_AUTO = 0, /**< CUDA when a device exists and the model has a CUDA path */
    SOTTO_BACKEND_CPU = 1,
    SOTTO_BACKEND_CUDA = 2
} sotto_backend_kind;

typedef struct sotto_model_params {
    sotto_backend_kind backend; /**< default SOTTO_BACKEND_AUTO */
    int device;                 /**< GPU index for CUDA; default 0 */
    int n_threads;              /**< CPU threads per stream, 1..64; default 1 */
    int use_mmap;               /**< map the file instead of reading it; default 1 */
    unsigned cpu_features_mask; /**< SOTTO_CPU_* bits allowed; default all (tests clear them) */
    const sotto_allocator *allocator; /**< NULL: the C library; copied at load */
    /** Binary16 arithmetic for the matrix products of f16-stored weights where the CPU has
     *  AVX512-FP16 (SOTTO_CPU_AVX512FP16): about twice the multiply-add rate of f32, at a
     *  relative error of about 1e-3 in each product (docs/architecture.md, "Binary16
     *  arithmetic"). 0 (default): f32 arithmetic everywhere. 1: in the synthesis paths
     *  (vocoders, codec decoders). 2: in the analysis paths too (codec encoders: merge
     *  boundaries and code indices may then differ from f32 encoding). Ignored on other CPUs
     *  and for f32 models. */
    int f16_arithmetic;
    /** CUDA models: 1 keeps the weights of the matrix products (Linears and non-depthwise
     *  convolutions) on the GPU in bf16, half their device memory, and runs those products on
     *  bf16 tensor cores (inputs rounded to bf16, f32 sums); the output then differs from f32
     *  by an NMSE of about 3e-5 (SNR about 45 dB) for a Vocos vocoder. 0 (default): f32
     *  weights and products. Honoured by Vocos; FlexiCodec stays f32. Ignored on the CPU. */
    int gpu_bf16;
} sotto_model_params;

/** The defaults listed in sotto_model_params. */
SOTTO_API sotto_model_params sotto_model_default_params(void);

/**
 * Loads a model from a GGUF file. [in] path, [in] params (NULL: defaults), [out] out,
 * [out] status (may be NULL). Every size, offset and dtype in the file is validated before
 * use. Errors: SOTTO_ERR_INVALID_ARG, SOTTO_ERR_IO, SOTTO_ERR_FORMAT, SOTTO_ERR_UNSUPPORTED,
 * SOTTO_ERR_OUT_OF_MEMORY.
 */
SOTTO_API SOTTO_WUR int sotto_model_load_file(const char *path, const sotto_model_params *params,
                                              sotto_model **out, sotto_status *status);

/**
 * Loads a model from memory. The bytes are copied when `copy` is non-zero; otherwise they
 * must stay valid and unchanged until sotto_model_free(). Errors as sotto_model_load_file.
 */
SOTTO_API SOTTO_WUR int sotto_model_load_buffer(const void *data, size_t size, int copy,
                                                const sotto_model_params *params,
                                                sotto_model **out, sotto_status *status);

/** Frees a model (NULL is ignored). Every stream made from it must be freed first. */
SOTTO_API void sotto_model_free(sotto_model *model);

/** `general.architecture` of the model ("vocos", "flexicodec", ...); never NULL. */
SOTTO_API const char *sotto_model_architecture(const sotto_model *model);

/** The backend that runs the model (SOTTO_BACKEND_CPU or SOTTO_BACKEND_CUDA; never AUTO). */
SOTTO_API sotto_backend_kind sotto_model_backend(const sotto_model *model);

/** Where the model computes in binary16 arithmetic: 0 nowhere, 1 its synthesis path, 2 its
 *  analysis path too (it was loaded with params.f16_arithmetic on a CPU with AVX512-FP16,
 *  from f16 weights, and its architecture uses it there). */
SOTTO_API int sotto_model_f16_arithmetic(const sotto_model *model);

/** `general.name` of the model, or "" when absent; never NULL. */
SOTTO_API const char *sotto_model_name(const sotto_model *model);

/* Introspection, as `sotto info` prints it. */

/** Number of metadata key/value pairs. */
SOTTO_API int64_t sotto_model_meta_count(const sotto_model *model);

/**
 * Key i (0-based) and its value as text (arrays abbreviated after a few elements) into
 * [out] value of [in] value_size bytes (always NUL-terminated). Returns the key, or NULL when
 * i is out of range.
 */
SOTTO_API const char *sotto_model_meta(const sotto_model *model, int64_t i, char *value,
                                       size_t value_size);

/** Number of tensors. */
SOTTO_API int64_t sotto_model_tensor_count(const sotto_model *model);

typedef struct sotto_tensor_info {
    const char *name;  /**< owned by the model */
    const char *dtype; /**< "f32", "f16", "bf16", ... */
    int n_dims;
    int64_t shape[4]; /**< PyTorch order: outermost dimension first */
    uint64_t n_bytes;
} sotto_tensor_info;

/** Fills [out] info for tensor i. Errors: SOTTO_ERR_INVALID_ARG. */
SOTTO_API int sotto_model_tensor_info(const sotto_model *model, int64_t i,
                                      sotto_tensor_info *info);

/**
 * The model's identity: SHA-256 over `general.architecture` and every tensor (sorted by
 * name: name, dtype, shape, bytes; the exact byte order is in docs/bitstream.md, "Model
 * identity"), so two files with the same weights have the same identity whatever their
 * other metadata. `.sotto` files carry it and decoders refuse streams of another model.
 * [out] out: 32 bytes. Cost: the first call hashes every weight byte on the calling thread,
 * a few seconds per GB (portable SHA-256; milliseconds for small models); later calls copy
 * the cached bytes. Loading does not compute it. Thread-safe: any number of threads may
 * call it on a shared model, also for the first time (concurrent first calls may each hash
 * once; none waits). Errors: SOTTO_ERR_INVALID_ARG (NULL),
 * SOTTO_ERR_OUT_OF_MEMORY.
 */
SOTTO_API SOTTO_WUR int sotto_model_identity(const sotto_model *model, uint8_t out[32]);

#ifdef __cplusplus
}
#endif

#endif /* SOTTO_H */
