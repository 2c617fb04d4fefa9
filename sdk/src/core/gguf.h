/*
 * GGUF v3 reader. Parses the header, metadata and tensor table of a file (mapped or read) or
 * a caller's buffer, validating every count, length, offset, alignment, dtype and size before
 * it is used, so a hostile file yields SOTTO_ERR_FORMAT with a message, never a crash.
 *
 * Shapes are reported in PyTorch order (outermost first); GGUF stores them innermost first
 * (ggml's ne[]), the reader reverses them once.
 *
 * What the reader accepts: versions 2 and 3 (1 and big-endian files: SOTTO_ERR_UNSUPPORTED);
 * non-empty keys and tensor names without NUL bytes, each unique; scalar and one-level array
 * values (nested arrays: SOTTO_ERR_UNSUPPORTED), bools 0 or 1; `general.alignment` a uint32
 * power of two in 1..1 MiB (default 32); tensors of 1..4 dims, every dim >= 1 (empty tensors
 * are refused: no model needs one, and they could sit anywhere), dtypes f32, f16, bf16, f64,
 * i8, i16, i32, i64 (others: SOTTO_ERR_UNSUPPORTED naming the tensor), offsets aligned, data
 * inside the file, aligned to the element size relative to the file start, and no two tensors
 * overlapping. `data` pointers are therefore naturally aligned whenever the bytes start on an
 * 8-byte boundary (always for files and copied buffers; for a borrowed buffer, the caller's
 * pointer decides). A mapped file must not be truncated by anyone while the reader is open.
 */
#ifndef SOTTO_GGUF_H
#define SOTTO_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define SOTTO_GGUF_MAX_DIMS 4

/* Metadata value types (GGUF numbering). */
typedef enum sotto_gguf_type {
    SOTTO_GGUF_UINT8 = 0,
    SOTTO_GGUF_INT8 = 1,
    SOTTO_GGUF_UINT16 = 2,
    SOTTO_GGUF_INT16 = 3,
    SOTTO_GGUF_UINT32 = 4,
    SOTTO_GGUF_INT32 = 5,
    SOTTO_GGUF_FLOAT32 = 6,
    SOTTO_GGUF_BOOL = 7,
    SOTTO_GGUF_STRING = 8,
    SOTTO_GGUF_ARRAY = 9,
    SOTTO_GGUF_UINT64 = 10,
    SOTTO_GGUF_INT64 = 11,
    SOTTO_GGUF_FLOAT64 = 12
} sotto_gguf_type;

/* Tensor dtypes we accept (ggml numbering). */
typedef enum sotto_dtype {
    SOTTO_DTYPE_F32 = 0,
    SOTTO_DTYPE_F16 = 1,
    SOTTO_DTYPE_I8 = 24,
    SOTTO_DTYPE_I16 = 25,
    SOTTO_DTYPE_I32 = 26,
    SOTTO_DTYPE_I64 = 27,
    SOTTO_DTYPE_F64 = 28,
    SOTTO_DTYPE_BF16 = 30
} sotto_dtype;

const char *sotto_dtype_name(int dtype);    /* "f32", ...; "?" for unknown */
size_t sotto_dtype_size(int dtype);         /* bytes per element; 0 for unknown */
const char *sotto_gguf_type_name(int type); /* "uint8", ..., "float64"; "?" for unknown */

typedef struct sotto_gguf_str {
    uint64_t len;
    const char *data; /* NUL-terminated copy owned by the reader */
} sotto_gguf_str;

typedef struct sotto_gguf_kv {
    sotto_gguf_str key;
    sotto_gguf_type type;
    /* scalar value (for ARRAY: element type and count, data points into the file bytes for
     * numeric arrays, or to an array of sotto_gguf_str for string arrays) */
    /* Scalars: unsigned integers and bool in v.u64, signed in v.i64, float32/float64 in
     * v.f64, arr_type == type and arr_n == 0. Numeric array data is little-endian and only
     * byte-aligned: read it with memcpy (or the getters). */
    sotto_gguf_type arr_type;
    uint64_t arr_n;
    union {
        uint64_t u64;
        int64_t i64;
        double f64;
        sotto_gguf_str str;
        const void *arr;
    } v;
} sotto_gguf_kv;

typedef struct sotto_gguf_tensor {
    sotto_gguf_str name;
    int dtype;
    int n_dims;
    int64_t shape[SOTTO_GGUF_MAX_DIMS]; /* PyTorch order; unused trailing entries are 1 */
    int64_t n_elems;
    uint64_t n_bytes;
    uint64_t offset;  /* relative to the data section, validated */
    const void *data; /* aligned, inside the file bytes */
} sotto_gguf_tensor;

typedef struct sotto_gguf sotto_gguf;

/* Opens a file: mapped when use_mmap, else read into memory. err (may be NULL) gets a
 * message naming what is wrong. Errors: SOTTO_ERR_IO, SOTTO_ERR_FORMAT,
 * SOTTO_ERR_UNSUPPORTED, SOTTO_ERR_OUT_OF_MEMORY, SOTTO_ERR_INVALID_ARG. */
int sotto_gguf_open_file(const char *path, int use_mmap, const sotto_alloc *alloc, sotto_gguf **out,
                         sotto_status *err);
/* Parses a buffer; copied when `copy`, else it must outlive the reader. */
int sotto_gguf_open_buffer(const void *data, size_t size, int copy, const sotto_alloc *alloc,
                           sotto_gguf **out, sotto_status *err);
void sotto_gguf_close(sotto_gguf *g);

uint32_t sotto_gguf_version(const sotto_gguf *g);
uint32_t sotto_gguf_alignment(const sotto_gguf *g);
/* Byte offset of the data section in the file, and the file's size in bytes. */
uint64_t sotto_gguf_data_offset(const sotto_gguf *g);
uint64_t sotto_gguf_size(const sotto_gguf *g);

int64_t sotto_gguf_kv_count(const sotto_gguf *g);
const sotto_gguf_kv *sotto_gguf_kv_at(const sotto_gguf *g, int64_t i);
const sotto_gguf_kv *sotto_gguf_find_kv(const sotto_gguf *g, const char *key);
/* Formats a value as text (arrays abbreviated); returns buf. */
const char *sotto_gguf_kv_format(const sotto_gguf_kv *kv, char *buf, size_t size);

/* Typed getters. Integers convert between integer types when the value fits; floats accept
 * float32/float64 (and integers). Return SOTTO_OK, or SOTTO_ERR_MODEL with a message naming
 * the key when it is missing or of a wrong type/range. */
int sotto_gguf_get_i64(const sotto_gguf *g, const char *key, int64_t *out, sotto_status *err);
int sotto_gguf_get_i32(const sotto_gguf *g, const char *key, int32_t *out, sotto_status *err);
int sotto_gguf_get_f32(const sotto_gguf *g, const char *key, float *out, sotto_status *err);
int sotto_gguf_get_f64(const sotto_gguf *g, const char *key, double *out, sotto_status *err);
int sotto_gguf_get_bool(const sotto_gguf *g, const char *key, int *out, sotto_status *err);
/* *out points into the reader (NUL-terminated), valid until close. */
int sotto_gguf_get_str(const sotto_gguf *g, const char *key, const char **out, sotto_status *err);
/* Variants with a default when the key is absent (a present key of a wrong type is still an
 * error). */
int sotto_gguf_get_i32_or(const sotto_gguf *g, const char *key, int32_t def, int32_t *out,
                          sotto_status *err);
int sotto_gguf_get_f32_or(const sotto_gguf *g, const char *key, float def, float *out,
                          sotto_status *err);
int sotto_gguf_get_str_or(const sotto_gguf *g, const char *key, const char *def, const char **out,
                          sotto_status *err);
/* Numeric array → n values converted to int64 / float; *n gets the count. The array must
 * have at most `cap` elements. */
int sotto_gguf_get_arr_i64(const sotto_gguf *g, const char *key, int64_t *out, size_t cap,
                           size_t *n, sotto_status *err);
int sotto_gguf_get_arr_f32(const sotto_gguf *g, const char *key, float *out, size_t cap, size_t *n,
                           sotto_status *err);

int64_t sotto_gguf_tensor_count(const sotto_gguf *g);
const sotto_gguf_tensor *sotto_gguf_tensor_at(const sotto_gguf *g, int64_t i);
const sotto_gguf_tensor *sotto_gguf_find_tensor(const sotto_gguf *g, const char *name);

/*
 * Looks a tensor up and checks it: dtype (pass -1 for any of f32/f16/bf16), n_dims, and
 * shape (PyTorch order; -1 in shape[i] accepts any size; n_dims <= 0 skips the dims and
 * shape checks, shape NULL checks n_dims only). On failure returns SOTTO_ERR_MODEL
 * with a message such as "tensor 'head.out.weight': shape [1026, 256], expected [1026, 512]".
 */
int sotto_gguf_tensor_check(const sotto_gguf *g, const char *name, int dtype, int n_dims,
                            const int64_t *shape, const sotto_gguf_tensor **out, sotto_status *err);

/* A block of floats that holds f32 copies of tensors not stored as f32 (sotto_gguf_tensor_f32);
 * the model owns `data` (cap floats) and frees it with the model. */
typedef struct sotto_f32_pool {
    float *data;
    size_t used, cap;
} sotto_f32_pool;

/*
 * Looks up and checks tensor `name` as sotto_gguf_tensor_check does (any dtype), then gives
 * its elements as floats in *out: the file's own bytes when the tensor is stored as f32 (no
 * copy), otherwise a conversion placed in the next n_elems floats of `pool`. Errors: those of
 * the check; SOTTO_ERR_INTERNAL when the pool is too small (the loader sized it wrong).
 */
int sotto_gguf_tensor_f32(const sotto_gguf *g, const char *name, int n_dims, const int64_t *shape,
                          sotto_f32_pool *pool, const float **out, sotto_status *err);

/* Converts a tensor's elements (f32/f16/bf16) to float into dst (n_elems floats). The other
 * dtypes convert by value too (i64 and f64 rounded; f64 beyond float's range gives inf).
 * Errors: SOTTO_ERR_INVALID_ARG (NULL). */
int sotto_gguf_tensor_to_f32(const sotto_gguf_tensor *t, float *dst);

/* Tells the kernel that a model no longer reads tensor t from the file (it has repacked its
 * own copy): the whole pages inside t's data leave the process's resident memory. Reading t
 * later is still valid (the pages come back from the file). No effect unless the file is
 * memory-mapped. */
void sotto_gguf_tensor_release(const sotto_gguf *g, const sotto_gguf_tensor *t);

/* Scalar conversions, exact for every value. Narrowing rounds to nearest even, overflows to
 * infinity and keeps NaNs NaN (quieted). */
float sotto_f16_to_f32(uint16_t h);
uint16_t sotto_f32_to_f16(float f);
float sotto_bf16_to_f32(uint16_t h);
uint16_t sotto_f32_to_bf16(float f);
/* The same for n elements, bit for bit the scalar results, with the CPU's F16C conversions
 * where it has them (model loading widens and narrows whole weight matrices). */
void sotto_f16_to_f32_n(const uint16_t *h, float *f, size_t n);
void sotto_f32_to_f16_n(const float *f, uint16_t *h, size_t n);

#endif
