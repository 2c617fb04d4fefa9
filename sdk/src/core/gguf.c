/*
 * GGUF v2/v3 reader (see gguf.h). The file's bytes are mapped, read into memory or borrowed
 * from the caller; parsing walks them once with a bounds-checked cursor, copies every key,
 * name and string value into a string pool owned by the reader, and validates counts, lengths,
 * types, shapes, sizes, alignment and the placement of every tensor's data before anything is
 * handed out. Lookups go through name-sorted indexes built during validation (which is also
 * how duplicate keys and tensor names are found), so a hostile file costs O(n log n).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "core/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF reader hands out little-endian file bytes as native values"
#endif

#define GGUF_HEADER_BYTES 24u /* magic, version, tensor count, kv count */
#define GGUF_DEFAULT_ALIGNMENT 32u
#define GGUF_MAX_ALIGNMENT (1u << 20)
/* The smallest possible encodings, used to expose counts the remaining bytes cannot hold
 * before anything is allocated for them: a kv is a key length (8), a type (4) and at least a
 * one-byte value; a tensor is a name length (8), n_dims (4), one dim (8), a dtype (4) and an
 * offset (8); a string is its length (8). */
#define KV_MIN_BYTES 13u
#define TENSOR_MIN_BYTES 32u
#define STR_MIN_BYTES 8u
/* Messages quote at most this many bytes of a name so that the reason still fits. */
#define NAME_QUOTE "%.80s"

/* ---- string pool: every copied string and string array lives here, freed at close --- */

typedef struct pool_block {
    struct pool_block *next;
    size_t used, cap;
} pool_block;

#define POOL_HEADER ((sizeof(pool_block) + 15u) & ~(size_t)15u)
#define POOL_BLOCK_BYTES ((size_t)64 * 1024)

struct sotto_gguf {
    sotto_alloc alloc;
    const uint8_t *bytes;
    size_t size;
    void *owned; /* our copy of a buffer or the bytes read from a file */
    void *map;   /* the mapping of a file */
    size_t map_size;
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;
    int64_t n_kv;
    int64_t n_tensors;
    sotto_gguf_kv *kv;
    sotto_gguf_tensor *tensors;
    /* name-sorted indexes for lookup */
    struct name_ref *kv_by_name;
    struct name_ref *tensor_by_name;
    pool_block *pool;
};

typedef struct name_ref {
    const char *name;
    int64_t idx;
} name_ref;

/* 8-byte aligned storage for n bytes, or NULL when out of memory. */
static void *pool_alloc(sotto_gguf *g, size_t n)
{
    size_t need;
    if (sotto_add_size(n, 7, &need)) return NULL;
    need &= ~(size_t)7;
    pool_block *b = g->pool;
    if (!b || b->cap - b->used < need) {
        size_t cap = need > POOL_BLOCK_BYTES ? need : POOL_BLOCK_BYTES, total;
        if (sotto_add_size(cap, POOL_HEADER, &total)) return NULL;
        pool_block *nb = sotto_malloc(&g->alloc, total);
        if (!nb) return NULL;
        nb->used = 0;
        nb->cap = cap;
        /* A big one-off request gets its own block behind the current one, so the current
         * block's free space is not thrown away. */
        if (b && need > POOL_BLOCK_BYTES) {
            nb->next = b->next;
            b->next = nb;
        } else {
            nb->next = b;
            g->pool = nb;
        }
        b = nb;
    }
    void *p = (unsigned char *)b + POOL_HEADER + b->used;
    b->used += need;
    return p;
}

/* ---- little-endian cursor --------------------------------------------------------------- */

typedef struct cursor {
    const uint8_t *p;
    size_t size;
    size_t pos;
} cursor;

static size_t left(const cursor *c)
{
    return c->size - c->pos;
}

static uint16_t ld_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t ld_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t ld_u64(const uint8_t *p)
{
    return (uint64_t)ld_u32(p) | ((uint64_t)ld_u32(p + 4) << 32);
}

static int rd_u8(cursor *c, uint8_t *v)
{
    if (left(c) < 1) return -1;
    *v = c->p[c->pos++];
    return 0;
}

static int rd_u16(cursor *c, uint16_t *v)
{
    if (left(c) < 2) return -1;
    *v = ld_u16(c->p + c->pos);
    c->pos += 2;
    return 0;
}

static int rd_u32(cursor *c, uint32_t *v)
{
    if (left(c) < 4) return -1;
    *v = ld_u32(c->p + c->pos);
    c->pos += 4;
    return 0;
}

static int rd_u64(cursor *c, uint64_t *v)
{
    if (left(c) < 8) return -1;
    *v = ld_u64(c->p + c->pos);
    c->pos += 8;
    return 0;
}

static int truncated(sotto_status *err, const cursor *c, const char *what)
{
    return sotto_status_set(err, SOTTO_ERR_FORMAT, "truncated file: %zu bytes, ended reading %s",
                            c->size, what);
}

/* ---- types ------------------------------------------------------------------------------ */

const char *sotto_dtype_name(int dtype)
{
    switch (dtype) {
    case SOTTO_DTYPE_F32:
        return "f32";
    case SOTTO_DTYPE_F16:
        return "f16";
    case SOTTO_DTYPE_BF16:
        return "bf16";
    case SOTTO_DTYPE_I8:
        return "i8";
    case SOTTO_DTYPE_I16:
        return "i16";
    case SOTTO_DTYPE_I32:
        return "i32";
    case SOTTO_DTYPE_I64:
        return "i64";
    case SOTTO_DTYPE_F64:
        return "f64";
    default:
        return "?";
    }
}

size_t sotto_dtype_size(int dtype)
{
    switch (dtype) {
    case SOTTO_DTYPE_I8:
        return 1;
    case SOTTO_DTYPE_F16:
    case SOTTO_DTYPE_BF16:
    case SOTTO_DTYPE_I16:
        return 2;
    case SOTTO_DTYPE_F32:
    case SOTTO_DTYPE_I32:
        return 4;
    case SOTTO_DTYPE_I64:
    case SOTTO_DTYPE_F64:
        return 8;
    default:
        return 0;
    }
}

/* ggml's names for the types we refuse, so the message says what the file holds. */
static const char *ggml_type_name(uint32_t t)
{
    static const char *const names[] = {
        "f32",   "f16",        "q4_0",       "q4_1",       "q4_2",     "q4_3",     "q5_0",
        "q5_1",  "q8_0",       "q8_1",       "q2_k",       "q3_k",     "q4_k",     "q5_k",
        "q6_k",  "q8_k",       "iq2_xxs",    "iq2_xs",     "iq3_xxs",  "iq1_s",    "iq4_nl",
        "iq3_s", "iq2_s",      "iq4_xs",     "i8",         "i16",      "i32",      "i64",
        "f64",   "iq1_m",      "bf16",       "q4_0_4_4",   "q4_0_4_8", "q4_0_8_8", "tq1_0",
        "tq2_0", "iq4_nl_4_4", "iq4_nl_4_8", "iq4_nl_8_8", "mxfp4"};
    return t < SOTTO_ARRAY_LEN(names) ? names[t] : "unknown";
}

const char *sotto_gguf_type_name(int type)
{
    static const char *const names[] = {"uint8",  "int8",    "uint16", "int16",  "uint32",
                                        "int32",  "float32", "bool",   "string", "array",
                                        "uint64", "int64",   "float64"};
    return type >= 0 && (size_t)type < SOTTO_ARRAY_LEN(names) ? names[type] : "?";
}

/* Encoded size of a fixed-size value type; 0 for string, array and unknown types. */
static size_t value_size(uint32_t t)
{
    switch (t) {
    case SOTTO_GGUF_UINT8:
    case SOTTO_GGUF_INT8:
    case SOTTO_GGUF_BOOL:
        return 1;
    case SOTTO_GGUF_UINT16:
    case SOTTO_GGUF_INT16:
        return 2;
    case SOTTO_GGUF_UINT32:
    case SOTTO_GGUF_INT32:
    case SOTTO_GGUF_FLOAT32:
        return 4;
    case SOTTO_GGUF_UINT64:
    case SOTTO_GGUF_INT64:
    case SOTTO_GGUF_FLOAT64:
        return 8;
    default:
        return 0;
    }
}

static int is_int_type(int t)
{
    return t == SOTTO_GGUF_UINT8 || t == SOTTO_GGUF_INT8 || t == SOTTO_GGUF_UINT16 ||
           t == SOTTO_GGUF_INT16 || t == SOTTO_GGUF_UINT32 || t == SOTTO_GGUF_INT32 ||
           t == SOTTO_GGUF_UINT64 || t == SOTTO_GGUF_INT64;
}

static int is_unsigned_type(int t)
{
    return t == SOTTO_GGUF_UINT8 || t == SOTTO_GGUF_UINT16 || t == SOTTO_GGUF_UINT32 ||
           t == SOTTO_GGUF_UINT64;
}

/* ---- f16 / bf16 ---------------------------------------------------------------------- */

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float sotto_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1f) /* inf; a NaN keeps its payload and is quieted, as F16C does */
        return bits_f32(sign | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0u));
    if (e == 0) {
        if (m == 0) return bits_f32(sign);
        /* Subnormal: normalise in integers so the result does not depend on the FPU's
         * denormal mode. */
        int ex = 1;
        while (!(m & 0x400u)) {
            m <<= 1;
            ex--;
        }
        return bits_f32(sign | ((uint32_t)(ex + 112) << 23) | ((m & 0x3ffu) << 13));
    }
    return bits_f32(sign | ((e + 112) << 23) | (m << 13));
}

uint16_t sotto_f32_to_f16(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) {
        if (ax == 0x7f800000u) return sign | 0x7c00u;
        return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu)); /* quiet, top payload */
    }
    /* 65520 is halfway between the largest half (65504) and 65536; the tie goes to the even
     * neighbour, which is infinity. */
    if (ax >= 0x477ff000u) return sign | 0x7c00u;
    if (ax < 0x38800000u) {
        /* Below the smallest normal half: the result is a multiple of 2^-24, rounded to
         * nearest even. 2^-25 and below round to zero (2^-25 itself is a tie to even 0). */
        if (ax <= 0x33000000u) return sign;
        uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* 14..24 */
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1u))) r++;
        return (uint16_t)(sign | r); /* r == 0x400 encodes the smallest normal */
    }
    uint32_t r = (ax >> 13) - (112u << 10), rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) r++; /* a carry moves the exponent up */
    return (uint16_t)(sign | r);
}

/* F16C converts 8 values per instruction with the same IEEE rounding (nearest even; NaNs
 * quieted with their top payload bits, as above); the scalar code takes the rest and any CPU
 * or compiler without it. Whether the CPU (and OS) has it is asked once (sotto_cpu_features)
 * and kept in an atomic: the conversions run per row during model loading. test_gguf compares
 * every binary16 value and a spread of floats with the scalar functions. */
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include <stdatomic.h>
#define HALF_F16C 1
__attribute__((target("avx,f16c"))) static void f16_to_f32_f16c(const uint16_t *h, float *f,
                                                                size_t n, size_t *done)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(f + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    *done = i;
}

__attribute__((target("avx,f16c"))) static void f32_to_f16_f16c(const float *f, uint16_t *h,
                                                                size_t n, size_t *done)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128(
            (__m128i *)(h + i),
            _mm256_cvtps_ph(_mm256_loadu_ps(f + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    *done = i;
}

static int have_f16c(void)
{
    static atomic_int known = -1; /* -1: not asked yet; benign race, every thread finds the same */
    int v = atomic_load_explicit(&known, memory_order_relaxed);
    if (v < 0) {
        v = (sotto_cpu_features() & SOTTO_CPU_F16C) != 0;
        atomic_store_explicit(&known, v, memory_order_relaxed);
    }
    return v;
}
#endif

void sotto_f16_to_f32_n(const uint16_t *h, float *f, size_t n)
{
    size_t i = 0;
#ifdef HALF_F16C
    if (n >= 8 && have_f16c()) f16_to_f32_f16c(h, f, n, &i);
#endif
    for (; i < n; i++)
        f[i] = sotto_f16_to_f32(h[i]);
}

void sotto_f32_to_f16_n(const float *f, uint16_t *h, size_t n)
{
    size_t i = 0;
#ifdef HALF_F16C
    if (n >= 8 && have_f16c()) f32_to_f16_f16c(f, h, n, &i);
#endif
    for (; i < n; i++)
        h[i] = sotto_f32_to_f16(f[i]);
}

float sotto_bf16_to_f32(uint16_t h)
{
    return bits_f32((uint32_t)h << 16);
}

uint16_t sotto_f32_to_bf16(float f)
{
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

/* ---- parsing ---------------------------------------------------------------------------- */

/* Reads a length-prefixed string into the pool. `name` strings (keys, tensor names) must be
 * non-empty and free of NUL bytes, so lookups by C string are unambiguous. */
static int rd_str(sotto_gguf *g, cursor *c, sotto_gguf_str *s, int is_name, const char *what,
                  sotto_status *err)
{
    uint64_t len;
    if (rd_u64(c, &len)) return truncated(err, c, what);
    if (len > left(c))
        return sotto_status_set(err, SOTTO_ERR_FORMAT,
                                "%s: string length %" PRIu64 " exceeds the %zu bytes left", what,
                                len, left(c));
    const uint8_t *src = c->p + c->pos;
    if (is_name) {
        if (len == 0) return sotto_status_set(err, SOTTO_ERR_FORMAT, "%s: empty name", what);
        if (memchr(src, 0, (size_t)len))
            return sotto_status_set(err, SOTTO_ERR_FORMAT, "%s: name contains a NUL byte", what);
    }
    char *d = pool_alloc(g, (size_t)len + 1);
    if (!d) return sotto_status_set(err, SOTTO_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
    memcpy(d, src, (size_t)len);
    d[len] = '\0';
    c->pos += (size_t)len;
    s->len = len;
    s->data = d;
    return SOTTO_OK;
}

static int parse_scalar(cursor *c, uint32_t type, sotto_gguf_kv *kv, const char *what,
                        sotto_status *err)
{
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    switch (type) {
    case SOTTO_GGUF_UINT8:
    case SOTTO_GGUF_INT8:
    case SOTTO_GGUF_BOOL:
        if (rd_u8(c, &u8)) return truncated(err, c, what);
        if (type == SOTTO_GGUF_INT8)
            kv->v.i64 = (int8_t)u8;
        else
            kv->v.u64 = u8;
        if (type == SOTTO_GGUF_BOOL && u8 > 1)
            return sotto_status_set(err, SOTTO_ERR_FORMAT, "%s: bool value %u is not 0 or 1", what,
                                    u8);
        return SOTTO_OK;
    case SOTTO_GGUF_UINT16:
    case SOTTO_GGUF_INT16:
        if (rd_u16(c, &u16)) return truncated(err, c, what);
        if (type == SOTTO_GGUF_INT16)
            kv->v.i64 = (int16_t)u16;
        else
            kv->v.u64 = u16;
        return SOTTO_OK;
    case SOTTO_GGUF_UINT32:
    case SOTTO_GGUF_INT32:
    case SOTTO_GGUF_FLOAT32:
        if (rd_u32(c, &u32)) return truncated(err, c, what);
        if (type == SOTTO_GGUF_INT32)
            kv->v.i64 = (int32_t)u32;
        else if (type == SOTTO_GGUF_FLOAT32)
            kv->v.f64 = bits_f32(u32);
        else
            kv->v.u64 = u32;
        return SOTTO_OK;
    case SOTTO_GGUF_UINT64:
    case SOTTO_GGUF_INT64:
    case SOTTO_GGUF_FLOAT64:
        if (rd_u64(c, &u64)) return truncated(err, c, what);
        if (type == SOTTO_GGUF_INT64)
            kv->v.i64 = (int64_t)u64;
        else if (type == SOTTO_GGUF_FLOAT64)
            memcpy(&kv->v.f64, &u64, 8);
        else
            kv->v.u64 = u64;
        return SOTTO_OK;
    default:
        return sotto_status_set(err, SOTTO_ERR_INTERNAL, "%s: not a scalar type %u", what, type);
    }
}

static int parse_array(sotto_gguf *g, cursor *c, sotto_gguf_kv *kv, const char *what,
                       sotto_status *err)
{
    uint32_t et;
    uint64_t n;
    if (rd_u32(c, &et) || rd_u64(c, &n)) return truncated(err, c, what);
    kv->arr_type = (sotto_gguf_type)et;
    kv->arr_n = n;
    if (et == SOTTO_GGUF_ARRAY)
        return sotto_status_set(err, SOTTO_ERR_UNSUPPORTED, "%s: nested arrays are not supported",
                                what);
    if (et == SOTTO_GGUF_STRING) {
        if (n > left(c) / STR_MIN_BYTES)
            return sotto_status_set(err, SOTTO_ERR_FORMAT,
                                    "%s: %" PRIu64 " strings cannot fit in the %zu bytes left",
                                    what, n, left(c));
        sotto_gguf_str *s = NULL;
        if (n) {
            s = pool_alloc(g, (size_t)n * sizeof *s);
            if (!s)
                return sotto_status_set(err, SOTTO_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
        }
        for (uint64_t i = 0; i < n; i++) {
            int rc = rd_str(g, c, &s[i], 0, what, err);
            if (rc) return rc;
        }
        kv->v.arr = s;
        return SOTTO_OK;
    }
    size_t es = value_size(et);
    if (!es)
        return sotto_status_set(err, SOTTO_ERR_FORMAT, "%s: unknown array element type %" PRIu32,
                                what, et);
    if (n > left(c) / es)
        return sotto_status_set(err, SOTTO_ERR_FORMAT,
                                "%s: %" PRIu64 " elements of %zu bytes exceed the %zu bytes left",
                                what, n, es, left(c));
    const uint8_t *p = c->p + c->pos;
    if (et == SOTTO_GGUF_BOOL) {
        for (uint64_t i = 0; i < n; i++)
            if (p[i] > 1)
                return sotto_status_set(err, SOTTO_ERR_FORMAT,
                                        "%s: bool element %" PRIu64 " is %u, not 0 or 1", what, i,
                                        p[i]);
    }
    kv->v.arr = p;
    c->pos += (size_t)(n * es);
    return SOTTO_OK;
}

static int cmp_name_ref(const void *a, const void *b)
{
    const name_ref *x = a, *y = b;
    int r = strcmp(x->name, y->name);
    if (r) return r;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

typedef struct span {
    uint64_t begin, end;
    int64_t idx;
} span;

static int cmp_span(const void *a, const void *b)
{
    const span *x = a, *y = b;
    if (x->begin != y->begin) return (x->begin > y->begin) - (x->begin < y->begin);
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Builds the name-sorted index of n names (stride `stride` bytes apart, first at `names`) and
 * reports the first duplicate. */
static int build_index(sotto_gguf *g, const void *first, size_t stride, int64_t n, name_ref **out,
                       const char *what, sotto_status *err)
{
    name_ref *r = sotto_calloc(&g->alloc, n ? (size_t)n : 1, sizeof *r);
    if (!r) return sotto_status_set(err, SOTTO_ERR_OUT_OF_MEMORY, "out of memory (%s index)", what);
    for (int64_t i = 0; i < n; i++) {
        const sotto_gguf_str *s =
            (const sotto_gguf_str *)(const void *)((const char *)first + (size_t)i * stride);
        r[i].name = s->data;
        r[i].idx = i;
    }
    if (n > 1) qsort(r, (size_t)n, sizeof *r, cmp_name_ref);
    *out = r;
    for (int64_t i = 1; i < n; i++)
        if (!strcmp(r[i - 1].name, r[i].name))
            return sotto_status_set(err, SOTTO_ERR_FORMAT,
                                    "duplicate %s '" NAME_QUOTE "' (#%" PRId64 " and #%" PRId64 ")",
                                    what, r[i].name, r[i - 1].idx, r[i].idx);
    return SOTTO_OK;
}

static int parse_kvs(sotto_gguf *g, cursor *c, sotto_status *err)
{
    char what[128];
    for (int64_t i = 0; i < g->n_kv; i++) {
        sotto_gguf_kv *kv = &g->kv[i];
        snprintf(what, sizeof what, "key #%" PRId64, i);
        int rc = rd_str(g, c, &kv->key, 1, what, err);
        if (rc) return rc;
        snprintf(what, sizeof what, "key '" NAME_QUOTE "'", kv->key.data);
        uint32_t type;
        if (rd_u32(c, &type)) return truncated(err, c, what);
        kv->type = (sotto_gguf_type)type;
        kv->arr_type = (sotto_gguf_type)type;
        kv->arr_n = 0;
        if (type == SOTTO_GGUF_STRING)
            rc = rd_str(g, c, &kv->v.str, 0, what, err);
        else if (type == SOTTO_GGUF_ARRAY)
            rc = parse_array(g, c, kv, what, err);
        else if (value_size(type))
            rc = parse_scalar(c, type, kv, what, err);
        else
            rc = sotto_status_set(err, SOTTO_ERR_FORMAT, "%s: unknown value type %" PRIu32, what,
                                  type);
        if (rc) return rc;
    }
    return build_index(g, &g->kv[0].key, sizeof(sotto_gguf_kv), g->n_kv, &g->kv_by_name, "key",
                       err);
}

static int parse_alignment(sotto_gguf *g, sotto_status *err)
{
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const sotto_gguf_kv *kv = sotto_gguf_find_kv(g, "general.alignment");
    if (!kv) return SOTTO_OK;
    if (kv->type != SOTTO_GGUF_UINT32)
        return sotto_status_set(err, SOTTO_ERR_FORMAT,
                                "key 'general.alignment' is %s, expected uint32",
                                sotto_gguf_type_name(kv->type));
    uint64_t a = kv->v.u64;
    if (a == 0 || (a & (a - 1)) || a > GGUF_MAX_ALIGNMENT)
        return sotto_status_set(err, SOTTO_ERR_FORMAT,
                                "key 'general.alignment' = %" PRIu64
                                " is not a power of two in 1..%u",
                                a, GGUF_MAX_ALIGNMENT);
    g->alignment = (uint32_t)a;
    return SOTTO_OK;
}

static int parse_tensor_info(sotto_gguf *g, cursor *c, int64_t i, sotto_status *err)
{
    sotto_gguf_tensor *t = &g->tensors[i];
    char what[128];
    snprintf(what, sizeof what, "tensor #%" PRId64 " name", i);
    int rc = rd_str(g, c, &t->name, 1, what, err);
    if (rc) return rc;
    const char *nm = t->name.data;
    snprintf(what, sizeof what, "tensor '" NAME_QUOTE "'", nm);

    uint32_t n_dims;
    if (rd_u32(c, &n_dims)) return truncated(err, c, what);
    if (n_dims < 1 || n_dims > SOTTO_GGUF_MAX_DIMS)
        return sotto_status_set(err, SOTTO_ERR_FORMAT, "%s: n_dims %" PRIu32 " not in 1..%d", what,
                                n_dims, SOTTO_GGUF_MAX_DIMS);
    uint64_t ne[SOTTO_GGUF_MAX_DIMS];
    for (uint32_t d = 0; d < n_dims; d++)
        if (rd_u64(c, &ne[d])) return truncated(err, c, what);
    uint32_t dtype;
    uint64_t offset;
    if (rd_u32(c, &dtype) || rd_u64(c, &offset)) return truncated(err, c, what);

    t->n_dims = (int)n_dims;
    for (int d = 0; d < SOTTO_GGUF_MAX_DIMS; d++)
        t->shape[d] = 1;
    uint64_t n_elems = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        /* Zero-sized dims are refused: no model holds an empty tensor, and allowing them
         * would let empty tensors sit anywhere, even past the end of the file. */
        if (ne[d] == 0 || ne[d] > (uint64_t)INT64_MAX)
            return sotto_status_set(err, SOTTO_ERR_FORMAT, "%s: dim %" PRIu32 " is %" PRIu64, what,
                                    n_dims - 1 - d, ne[d]);
        if (__builtin_mul_overflow(n_elems, ne[d], &n_elems) || n_elems > (uint64_t)INT64_MAX)
            return sotto_status_set(err, SOTTO_ERR_FORMAT,
                                    "%s: element count overflows int64 at dim %" PRIu32 " (%" PRIu64
                                    ")",
                                    what, n_dims - 1 - d, ne[d]);
        t->shape[n_dims - 1 - d] = (int64_t)ne[d];
    }
    size_t es = sotto_dtype_size((int)dtype);
    if (!es)
        return sotto_status_set(err, SOTTO_ERR_UNSUPPORTED,
                                "%s: dtype %" PRIu32 " (%s) is not supported "
                                "(f32, f16, bf16, f64, i8, i16, i32, i64)",
                                what, dtype, ggml_type_name(dtype));
    uint64_t n_bytes;
    if (__builtin_mul_overflow(n_elems, (uint64_t)es, &n_bytes))
        return sotto_status_set(err, SOTTO_ERR_FORMAT,
                                "%s: %" PRIu64 " elements of %zu bytes overflow", what, n_elems,
                                es);
    if (offset % g->alignment)
        return sotto_status_set(err, SOTTO_ERR_FORMAT,
                                "%s: data offset %" PRIu64
                                " is not a multiple of the alignment %" PRIu32,
                                what, offset, g->alignment);
    t->dtype = (int)dtype;
    t->n_elems = (int64_t)n_elems;
    t->n_bytes = n_bytes;
    t->offset = offset;
    return SOTTO_OK;
}

/* Places every tensor's data: inside the file, naturally aligned, and not overlapping. */
static int check_tensor_data(sotto_gguf *g, sotto_status *err)
{
    if (g->n_tensors == 0) return SOTTO_OK;
    if (g->data_offset > g->size)
        return sotto_status_set(
            err, SOTTO_ERR_FORMAT,
            "truncated file: %zu bytes, tensor data would start at byte %" PRIu64, g->size,
            g->data_offset);
    uint64_t room = g->size - g->data_offset;
    span *sp = sotto_calloc(&g->alloc, (size_t)g->n_tensors, sizeof *sp);
    if (!sp) return sotto_status_set(err, SOTTO_ERR_OUT_OF_MEMORY, "out of memory (tensor spans)");
    int rc = SOTTO_OK;
    for (int64_t i = 0; i < g->n_tensors && !rc; i++) {
        sotto_gguf_tensor *t = &g->tensors[i];
        if (t->offset > room || t->n_bytes > room - t->offset) {
            rc = sotto_status_set(err, SOTTO_ERR_FORMAT,
                                  "tensor '" NAME_QUOTE "': data [%" PRIu64 ", +%" PRIu64
                                  ") runs past the end of the file (%" PRIu64 " data bytes)",
                                  t->name.data, t->offset, t->n_bytes, room);
            break;
        }
        /* The alignment may be as small as 1; element alignment keeps typed access valid. */
        size_t es = sotto_dtype_size(t->dtype);
        if ((g->data_offset + t->offset) % es) {
            rc = sotto_status_set(err, SOTTO_ERR_FORMAT,
                                  "tensor '" NAME_QUOTE "': data at file byte %" PRIu64
                                  " is not aligned to its %zu-byte elements",
                                  t->name.data, g->data_offset + t->offset, es);
            break;
        }
        t->data = g->bytes + g->data_offset + t->offset;
        sp[i].begin = t->offset;
        sp[i].end = t->offset + t->n_bytes;
        sp[i].idx = i;
    }
    if (!rc && g->n_tensors > 1) {
        qsort(sp, (size_t)g->n_tensors, sizeof *sp, cmp_span);
        for (int64_t i = 1; i < g->n_tensors; i++) {
            if (sp[i].begin < sp[i - 1].end) {
                const span *a = &sp[i - 1], *b = &sp[i];
                rc = sotto_status_set(err, SOTTO_ERR_FORMAT,
                                      "tensors '" NAME_QUOTE "' [%" PRIu64 ", %" PRIu64
                                      ") and '" NAME_QUOTE "' [%" PRIu64 ", %" PRIu64 ") overlap",
                                      g->tensors[a->idx].name.data, a->begin, a->end,
                                      g->tensors[b->idx].name.data, b->begin, b->end);
                break;
            }
        }
    }
    sotto_free(&g->alloc, sp);
    return rc;
}

static int parse(sotto_gguf *g, sotto_status *err)
{
    cursor c = {g->bytes, g->size, 0};
    if (g->size < 4 || memcmp(g->bytes, "GGUF", 4) != 0) {
        if (g->size < 4) return truncated(err, &c, "the magic");
        return sotto_status_set(err, SOTTO_ERR_FORMAT,
                                "not a GGUF file (magic %02x %02x %02x %02x, expected 'GGUF')",
                                g->bytes[0], g->bytes[1], g->bytes[2], g->bytes[3]);
    }
    c.pos = 4;
    uint32_t version;
    if (rd_u32(&c, &version)) return truncated(err, &c, "the version");
    uint32_t swapped = __builtin_bswap32(version);
    if (version == 0) return sotto_status_set(err, SOTTO_ERR_FORMAT, "bad GGUF version 0");
    if (version == 1)
        return sotto_status_set(err, SOTTO_ERR_UNSUPPORTED,
                                "GGUF version 1 is not supported (need 2 or 3)");
    if (version > 3 && swapped >= 1 && swapped <= 3)
        return sotto_status_set(err, SOTTO_ERR_UNSUPPORTED,
                                "big-endian GGUF (version %" PRIu32 ") is not supported", swapped);
    if (version > 3)
        return sotto_status_set(err, SOTTO_ERR_UNSUPPORTED,
                                "GGUF version %" PRIu32 " is not supported (need 2 or 3)", version);
    g->version = version;

    uint64_t n_tensors, n_kv;
    if (rd_u64(&c, &n_tensors)) return truncated(err, &c, "the tensor count");
    if (rd_u64(&c, &n_kv)) return truncated(err, &c, "the key/value count");
    /* Each count must fit in the bytes left at its smallest encoding, alone and together;
     * this is what stops a lying header from sizing our allocations. */
    uint64_t kv_min, t_min, total_min;
    if (__builtin_mul_overflow(n_kv, (uint64_t)KV_MIN_BYTES, &kv_min) ||
        __builtin_mul_overflow(n_tensors, (uint64_t)TENSOR_MIN_BYTES, &t_min) ||
        __builtin_add_overflow(kv_min, t_min, &total_min) || total_min > left(&c))
        return sotto_status_set(err, SOTTO_ERR_FORMAT,
                                "header claims %" PRIu64 " keys and %" PRIu64
                                " tensors, more than the %zu bytes left can hold",
                                n_kv, n_tensors, left(&c));
    g->n_kv = (int64_t)n_kv;
    g->n_tensors = (int64_t)n_tensors;

    g->kv = sotto_calloc(&g->alloc, n_kv ? (size_t)n_kv : 1, sizeof *g->kv);
    g->tensors = sotto_calloc(&g->alloc, n_tensors ? (size_t)n_tensors : 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors)
        return sotto_status_set(err, SOTTO_ERR_OUT_OF_MEMORY,
                                "out of memory for %" PRIu64 " keys and %" PRIu64 " tensors", n_kv,
                                n_tensors);
    int rc = parse_kvs(g, &c, err);
    if (!rc) rc = parse_alignment(g, err);
    for (int64_t i = 0; i < g->n_tensors && !rc; i++)
        rc = parse_tensor_info(g, &c, i, err);
    if (!rc)
        rc = build_index(g, &g->tensors[0].name, sizeof(sotto_gguf_tensor), g->n_tensors,
                         &g->tensor_by_name, "tensor name", err);
    if (rc) return rc;
    g->data_offset = ((uint64_t)c.pos + g->alignment - 1) & ~((uint64_t)g->alignment - 1);
    return check_tensor_data(g, err);
}

/* ---- open / close ----------------------------------------------------------------------- */

static int reader_new(const sotto_alloc *alloc, sotto_gguf **out, sotto_status *err)
{
    sotto_alloc a;
    sotto_alloc_init(&a, alloc ? &alloc->hooks : NULL);
    sotto_gguf *g = sotto_calloc(&a, 1, sizeof *g);
    if (!g) return sotto_status_set(err, SOTTO_ERR_OUT_OF_MEMORY, "out of memory (GGUF reader)");
    g->alloc = a;
    *out = g;
    return SOTTO_OK;
}

/* Parses g's bytes; on failure closes g. */
static int finish_open(sotto_gguf *g, sotto_gguf **out, sotto_status *err)
{
    int rc = parse(g, err);
    if (rc) {
        sotto_gguf_close(g);
        return rc;
    }
    sotto_status_clear(err);
    *out = g;
    return SOTTO_OK;
}

int sotto_gguf_open_buffer(const void *data, size_t size, int copy, const sotto_alloc *alloc,
                           sotto_gguf **out, sotto_status *err)
{
    if (out) *out = NULL;
    if (!out || (!data && size))
        return sotto_status_set(err, SOTTO_ERR_INVALID_ARG, "sotto_gguf_open_buffer: NULL %s",
                                out ? "data" : "out");
    sotto_gguf *g = NULL;
    int rc = reader_new(alloc, &g, err);
    if (rc) return rc;
    if (copy && size) {
        g->owned = sotto_malloc(&g->alloc, size);
        if (!g->owned) {
            sotto_gguf_close(g);
            return sotto_status_set(err, SOTTO_ERR_OUT_OF_MEMORY, "out of memory copying %zu bytes",
                                    size);
        }
        memcpy(g->owned, data, size);
        g->bytes = g->owned;
    } else {
        g->bytes = data;
    }
    g->size = size;
    return finish_open(g, out, err);
}

static int io_error(sotto_status *err, const char *path, const char *what, int e)
{
    char buf[128];
    const char *msg = strerror_r(e, buf, sizeof buf);
    return sotto_status_set(err, SOTTO_ERR_IO, "cannot %s '%.120s': %s", what, path, msg);
}

int sotto_gguf_open_file(const char *path, int use_mmap, const sotto_alloc *alloc, sotto_gguf **out,
                         sotto_status *err)
{
    if (out) *out = NULL;
    if (!path || !out)
        return sotto_status_set(err, SOTTO_ERR_INVALID_ARG, "sotto_gguf_open_file: NULL %s",
                                path ? "out" : "path");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return io_error(err, path, "open", errno);
    struct stat stb;
    if (fstat(fd, &stb) != 0) {
        int e = errno;
        close(fd);
        return io_error(err, path, "stat", e);
    }
    if (!S_ISREG(stb.st_mode)) {
        close(fd);
        return sotto_status_set(err, SOTTO_ERR_IO, "'%.120s' is not a regular file", path);
    }
    if (stb.st_size == 0) {
        close(fd);
        return sotto_status_set(err, SOTTO_ERR_FORMAT, "truncated file: '%.120s' is empty", path);
    }
    if ((uint64_t)stb.st_size > (uint64_t)SIZE_MAX) {
        close(fd);
        return sotto_status_set(err, SOTTO_ERR_UNSUPPORTED, "'%.120s' is too large to address",
                                path);
    }
    size_t size = (size_t)stb.st_size;
    sotto_gguf *g = NULL;
    int rc = reader_new(alloc, &g, err);
    if (rc) {
        close(fd);
        return rc;
    }
    if (use_mmap) {
        void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            sotto_gguf_close(g);
            return io_error(err, path, "map", e);
        }
        g->map = m;
        g->map_size = size;
        g->bytes = m;
    } else {
        g->owned = sotto_malloc(&g->alloc, size);
        if (!g->owned) {
            close(fd);
            sotto_gguf_close(g);
            return sotto_status_set(err, SOTTO_ERR_OUT_OF_MEMORY,
                                    "out of memory reading %zu bytes of '%.120s'", size, path);
        }
        size_t got = 0;
        while (got < size) {
            ssize_t r = read(fd, (char *)g->owned + got, size - got);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                int e = r < 0 ? errno : 0;
                close(fd);
                sotto_gguf_close(g);
                if (!e)
                    return sotto_status_set(err, SOTTO_ERR_IO,
                                            "'%.120s' shrank while being read (%zu of %zu bytes)",
                                            path, got, size);
                return io_error(err, path, "read", e);
            }
            got += (size_t)r;
        }
        g->bytes = g->owned;
    }
    close(fd);
    g->size = size;
    return finish_open(g, out, err);
}

void sotto_gguf_close(sotto_gguf *g)
{
    if (!g) return;
    sotto_alloc a = g->alloc;
    pool_block *b = g->pool;
    while (b) {
        pool_block *n = b->next;
        sotto_free(&a, b);
        b = n;
    }
    sotto_free(&a, g->kv);
    sotto_free(&a, g->tensors);
    sotto_free(&a, g->kv_by_name);
    sotto_free(&a, g->tensor_by_name);
    sotto_free(&a, g->owned);
    if (g->map) munmap(g->map, g->map_size);
    sotto_free(&a, g);
}

/* ---- queries ---------------------------------------------------------------------------- */

uint32_t sotto_gguf_version(const sotto_gguf *g)
{
    return g ? g->version : 0;
}

uint32_t sotto_gguf_alignment(const sotto_gguf *g)
{
    return g ? g->alignment : 0;
}

uint64_t sotto_gguf_data_offset(const sotto_gguf *g)
{
    return g ? g->data_offset : 0;
}

uint64_t sotto_gguf_size(const sotto_gguf *g)
{
    return g ? g->size : 0;
}

int64_t sotto_gguf_kv_count(const sotto_gguf *g)
{
    return g ? g->n_kv : 0;
}

const sotto_gguf_kv *sotto_gguf_kv_at(const sotto_gguf *g, int64_t i)
{
    return g && i >= 0 && i < g->n_kv ? &g->kv[i] : NULL;
}

static int cmp_find(const void *key, const void *elem)
{
    return strcmp((const char *)key, ((const name_ref *)elem)->name);
}

static int64_t find_index(const name_ref *idx, int64_t n, const char *name)
{
    if (!idx || !name || n <= 0) return -1;
    const name_ref *r = bsearch(name, idx, (size_t)n, sizeof *idx, cmp_find);
    return r ? r->idx : -1;
}

const sotto_gguf_kv *sotto_gguf_find_kv(const sotto_gguf *g, const char *key)
{
    if (!g) return NULL;
    int64_t i = find_index(g->kv_by_name, g->n_kv, key);
    return i < 0 ? NULL : &g->kv[i];
}

int64_t sotto_gguf_tensor_count(const sotto_gguf *g)
{
    return g ? g->n_tensors : 0;
}

const sotto_gguf_tensor *sotto_gguf_tensor_at(const sotto_gguf *g, int64_t i)
{
    return g && i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const sotto_gguf_tensor *sotto_gguf_find_tensor(const sotto_gguf *g, const char *name)
{
    if (!g) return NULL;
    int64_t i = find_index(g->tensor_by_name, g->n_tensors, name);
    return i < 0 ? NULL : &g->tensors[i];
}

/* ---- formatting ------------------------------------------------------------------------- */

typedef struct text {
    char *buf;
    size_t size, len; /* len < size always; output past the end is dropped */
} text;

static void put(text *t, const char *fmt, ...) SOTTO_PRINTF(2, 3);
static void put(text *t, const char *fmt, ...)
{
    if (t->len + 1 >= t->size) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, t->size - t->len, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    t->len = (size_t)n < t->size - t->len ? t->len + (size_t)n : t->size - 1;
}

/* Shortest text that reads back as the same value. */
static void put_float(text *t, double v, int is_f32)
{
    char s[40];
    int lo = is_f32 ? 6 : 15, hi = is_f32 ? 9 : 17;
    for (int p = lo; p <= hi; p++) {
        snprintf(s, sizeof s, "%.*g", p, v);
        double back = strtod(s, NULL);
        if (is_f32 ? (float)back == (float)v : back == v) break;
    }
    put(t, "%s", s);
}

/* A string on one line: quoted, with quotes, backslashes and control bytes escaped (UTF-8
 * passes through). At most `max` bytes are shown. */
static void put_string(text *t, const sotto_gguf_str *s, uint64_t max)
{
    put(t, "\"");
    uint64_t n = s->len < max ? s->len : max;
    for (uint64_t i = 0; i < n && t->len + 1 < t->size; i++) {
        unsigned char ch = (unsigned char)s->data[i];
        if (ch == '"' || ch == '\\')
            put(t, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            put(t, "\\x%02x", ch);
        else
            put(t, "%c", ch);
    }
    put(t, n < s->len ? "\"..." : "\"");
}

static void put_elem(text *t, int type, const void *p)
{
    const uint8_t *b = p;
    switch (type) {
    case SOTTO_GGUF_UINT8:
        put(t, "%u", b[0]);
        break;
    case SOTTO_GGUF_INT8:
        put(t, "%d", (int8_t)b[0]);
        break;
    case SOTTO_GGUF_BOOL:
        put(t, "%s", b[0] ? "true" : "false");
        break;
    case SOTTO_GGUF_UINT16:
        put(t, "%u", ld_u16(b));
        break;
    case SOTTO_GGUF_INT16:
        put(t, "%d", (int16_t)ld_u16(b));
        break;
    case SOTTO_GGUF_UINT32:
        put(t, "%" PRIu32, ld_u32(b));
        break;
    case SOTTO_GGUF_INT32:
        put(t, "%" PRId32, (int32_t)ld_u32(b));
        break;
    case SOTTO_GGUF_UINT64:
        put(t, "%" PRIu64, ld_u64(b));
        break;
    case SOTTO_GGUF_INT64:
        put(t, "%" PRId64, (int64_t)ld_u64(b));
        break;
    case SOTTO_GGUF_FLOAT32:
        put_float(t, bits_f32(ld_u32(b)), 1);
        break;
    case SOTTO_GGUF_FLOAT64: {
        double d;
        uint64_t u = ld_u64(b);
        memcpy(&d, &u, 8);
        put_float(t, d, 0);
        break;
    }
    default:
        put(t, "?");
        break;
    }
}

#define FORMAT_ARRAY_SHOWN 8
#define FORMAT_STRING_SHOWN 200

const char *sotto_gguf_kv_format(const sotto_gguf_kv *kv, char *buf, size_t size)
{
    if (!buf || size == 0) return buf;
    text t = {buf, size, 0};
    buf[0] = '\0';
    if (!kv) return buf;
    switch (kv->type) {
    case SOTTO_GGUF_UINT8:
    case SOTTO_GGUF_UINT16:
    case SOTTO_GGUF_UINT32:
    case SOTTO_GGUF_UINT64:
        put(&t, "%" PRIu64, kv->v.u64);
        break;
    case SOTTO_GGUF_INT8:
    case SOTTO_GGUF_INT16:
    case SOTTO_GGUF_INT32:
    case SOTTO_GGUF_INT64:
        put(&t, "%" PRId64, kv->v.i64);
        break;
    case SOTTO_GGUF_FLOAT32:
        put_float(&t, kv->v.f64, 1);
        break;
    case SOTTO_GGUF_FLOAT64:
        put_float(&t, kv->v.f64, 0);
        break;
    case SOTTO_GGUF_BOOL:
        put(&t, "%s", kv->v.u64 ? "true" : "false");
        break;
    case SOTTO_GGUF_STRING:
        put_string(&t, &kv->v.str, FORMAT_STRING_SHOWN);
        break;
    case SOTTO_GGUF_ARRAY: {
        uint64_t shown = kv->arr_n < FORMAT_ARRAY_SHOWN ? kv->arr_n : FORMAT_ARRAY_SHOWN;
        size_t es = value_size(kv->arr_type);
        put(&t, "[");
        for (uint64_t i = 0; i < shown; i++) {
            if (i) put(&t, ", ");
            if (kv->arr_type == SOTTO_GGUF_STRING)
                put_string(&t, &((const sotto_gguf_str *)kv->v.arr)[i], 40);
            else
                put_elem(&t, kv->arr_type, (const uint8_t *)kv->v.arr + i * es);
        }
        if (shown < kv->arr_n)
            put(&t, ", ... (%" PRIu64 " %s)]", kv->arr_n, sotto_gguf_type_name(kv->arr_type));
        else
            put(&t, "]");
        break;
    }
    default:
        put(&t, "?");
        break;
    }
    return buf;
}

/* ---- typed getters ---------------------------------------------------------------------- */

static const sotto_gguf_kv *need_kv(const sotto_gguf *g, const char *key, sotto_status *err)
{
    const sotto_gguf_kv *kv = g && key ? sotto_gguf_find_kv(g, key) : NULL;
    if (!kv) sotto_status_set(err, SOTTO_ERR_MODEL, "missing key '%.120s'", key ? key : "(null)");
    return kv;
}

static int wrong_type(const sotto_gguf_kv *kv, const char *expected, sotto_status *err)
{
    return sotto_status_set(err, SOTTO_ERR_MODEL, "key '" NAME_QUOTE "' is %s, expected %s",
                            kv->key.data, sotto_gguf_type_name(kv->type), expected);
}

/* The value of an integer kv as int64; -1 when it is a uint64 above INT64_MAX. */
static int kv_int(const sotto_gguf_kv *kv, int64_t *v)
{
    if (is_unsigned_type(kv->type)) {
        if (kv->v.u64 > (uint64_t)INT64_MAX) return -1;
        *v = (int64_t)kv->v.u64;
    } else {
        *v = kv->v.i64;
    }
    return 0;
}

int sotto_gguf_get_i64(const sotto_gguf *g, const char *key, int64_t *out, sotto_status *err)
{
    const sotto_gguf_kv *kv = need_kv(g, key, err);
    if (!kv) return SOTTO_ERR_MODEL;
    if (!is_int_type(kv->type)) return wrong_type(kv, "an integer", err);
    if (kv_int(kv, out))
        return sotto_status_set(err, SOTTO_ERR_MODEL,
                                "key '" NAME_QUOTE "' = %" PRIu64 " does not fit int64",
                                kv->key.data, kv->v.u64);
    return SOTTO_OK;
}

int sotto_gguf_get_i32(const sotto_gguf *g, const char *key, int32_t *out, sotto_status *err)
{
    int64_t v = 0;
    int rc = sotto_gguf_get_i64(g, key, &v, err);
    if (rc) return rc;
    if (v < INT32_MIN || v > INT32_MAX)
        return sotto_status_set(err, SOTTO_ERR_MODEL,
                                "key '%.120s' = %" PRId64 " does not fit int32", key, v);
    *out = (int32_t)v;
    return SOTTO_OK;
}

int sotto_gguf_get_f64(const sotto_gguf *g, const char *key, double *out, sotto_status *err)
{
    const sotto_gguf_kv *kv = need_kv(g, key, err);
    if (!kv) return SOTTO_ERR_MODEL;
    if (kv->type == SOTTO_GGUF_FLOAT32 || kv->type == SOTTO_GGUF_FLOAT64)
        *out = kv->v.f64;
    else if (is_unsigned_type(kv->type))
        *out = (double)kv->v.u64;
    else if (is_int_type(kv->type))
        *out = (double)kv->v.i64;
    else
        return wrong_type(kv, "a number", err);
    return SOTTO_OK;
}

int sotto_gguf_get_f32(const sotto_gguf *g, const char *key, float *out, sotto_status *err)
{
    double v = 0;
    int rc = sotto_gguf_get_f64(g, key, &v, err);
    if (rc) return rc;
    /* Infinities and NaN pass; only finite values float cannot hold are refused. */
    if (isfinite(v) && (v > FLT_MAX || v < -FLT_MAX))
        return sotto_status_set(err, SOTTO_ERR_MODEL, "key '%.120s' = %g does not fit float32", key,
                                v);
    *out = (float)v;
    return SOTTO_OK;
}

int sotto_gguf_get_bool(const sotto_gguf *g, const char *key, int *out, sotto_status *err)
{
    const sotto_gguf_kv *kv = need_kv(g, key, err);
    if (!kv) return SOTTO_ERR_MODEL;
    if (kv->type != SOTTO_GGUF_BOOL) return wrong_type(kv, "bool", err);
    *out = kv->v.u64 != 0;
    return SOTTO_OK;
}

int sotto_gguf_get_str(const sotto_gguf *g, const char *key, const char **out, sotto_status *err)
{
    const sotto_gguf_kv *kv = need_kv(g, key, err);
    if (!kv) return SOTTO_ERR_MODEL;
    if (kv->type != SOTTO_GGUF_STRING) return wrong_type(kv, "string", err);
    *out = kv->v.str.data;
    return SOTTO_OK;
}

int sotto_gguf_get_i32_or(const sotto_gguf *g, const char *key, int32_t def, int32_t *out,
                          sotto_status *err)
{
    if (g && key && !sotto_gguf_find_kv(g, key)) {
        *out = def;
        return SOTTO_OK;
    }
    return sotto_gguf_get_i32(g, key, out, err);
}

int sotto_gguf_get_f32_or(const sotto_gguf *g, const char *key, float def, float *out,
                          sotto_status *err)
{
    if (g && key && !sotto_gguf_find_kv(g, key)) {
        *out = def;
        return SOTTO_OK;
    }
    return sotto_gguf_get_f32(g, key, out, err);
}

int sotto_gguf_get_str_or(const sotto_gguf *g, const char *key, const char *def, const char **out,
                          sotto_status *err)
{
    if (g && key && !sotto_gguf_find_kv(g, key)) {
        *out = def;
        return SOTTO_OK;
    }
    return sotto_gguf_get_str(g, key, out, err);
}

static const sotto_gguf_kv *need_array(const sotto_gguf *g, const char *key, size_t cap, size_t *n,
                                       sotto_status *err)
{
    if (n) *n = 0;
    const sotto_gguf_kv *kv = need_kv(g, key, err);
    if (!kv) return NULL;
    if (kv->type != SOTTO_GGUF_ARRAY || kv->arr_type == SOTTO_GGUF_STRING ||
        kv->arr_type == SOTTO_GGUF_BOOL) {
        wrong_type(kv, "a numeric array", err);
        return NULL;
    }
    if (kv->arr_n > cap) {
        sotto_status_set(err, SOTTO_ERR_MODEL,
                         "key '" NAME_QUOTE "' has %" PRIu64 " elements, at most %zu expected",
                         kv->key.data, kv->arr_n, cap);
        return NULL;
    }
    return kv;
}

int sotto_gguf_get_arr_i64(const sotto_gguf *g, const char *key, int64_t *out, size_t cap,
                           size_t *n, sotto_status *err)
{
    const sotto_gguf_kv *kv = need_array(g, key, cap, n, err);
    if (!kv) return SOTTO_ERR_MODEL;
    if (!is_int_type(kv->arr_type))
        return sotto_status_set(err, SOTTO_ERR_MODEL,
                                "key '" NAME_QUOTE "' is an array of %s, expected integers",
                                kv->key.data, sotto_gguf_type_name(kv->arr_type));
    size_t es = value_size(kv->arr_type);
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        const uint8_t *p = (const uint8_t *)kv->v.arr + i * es;
        int64_t v;
        switch (kv->arr_type) {
        case SOTTO_GGUF_UINT8:
            v = p[0];
            break;
        case SOTTO_GGUF_INT8:
            v = (int8_t)p[0];
            break;
        case SOTTO_GGUF_UINT16:
            v = ld_u16(p);
            break;
        case SOTTO_GGUF_INT16:
            v = (int16_t)ld_u16(p);
            break;
        case SOTTO_GGUF_UINT32:
            v = ld_u32(p);
            break;
        case SOTTO_GGUF_INT32:
            v = (int32_t)ld_u32(p);
            break;
        case SOTTO_GGUF_INT64:
            v = (int64_t)ld_u64(p);
            break;
        default: /* uint64 */
            if (ld_u64(p) > (uint64_t)INT64_MAX)
                return sotto_status_set(err, SOTTO_ERR_MODEL,
                                        "key '" NAME_QUOTE "' element %" PRIu64 " = %" PRIu64
                                        " does not fit int64",
                                        kv->key.data, i, ld_u64(p));
            v = (int64_t)ld_u64(p);
            break;
        }
        out[i] = v;
    }
    *n = (size_t)kv->arr_n;
    return SOTTO_OK;
}

int sotto_gguf_get_arr_f32(const sotto_gguf *g, const char *key, float *out, size_t cap, size_t *n,
                           sotto_status *err)
{
    const sotto_gguf_kv *kv = need_array(g, key, cap, n, err);
    if (!kv) return SOTTO_ERR_MODEL;
    size_t es = value_size(kv->arr_type);
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        const uint8_t *p = (const uint8_t *)kv->v.arr + i * es;
        double v;
        switch (kv->arr_type) {
        case SOTTO_GGUF_FLOAT32:
            v = bits_f32(ld_u32(p));
            break;
        case SOTTO_GGUF_FLOAT64: {
            uint64_t u = ld_u64(p);
            memcpy(&v, &u, 8);
            break;
        }
        case SOTTO_GGUF_UINT8:
            v = p[0];
            break;
        case SOTTO_GGUF_INT8:
            v = (int8_t)p[0];
            break;
        case SOTTO_GGUF_UINT16:
            v = ld_u16(p);
            break;
        case SOTTO_GGUF_INT16:
            v = (int16_t)ld_u16(p);
            break;
        case SOTTO_GGUF_UINT32:
            v = ld_u32(p);
            break;
        case SOTTO_GGUF_INT32:
            v = (int32_t)ld_u32(p);
            break;
        case SOTTO_GGUF_UINT64:
            v = (double)ld_u64(p);
            break;
        default:
            v = (double)(int64_t)ld_u64(p);
            break;
        }
        if (isfinite(v) && (v > FLT_MAX || v < -FLT_MAX))
            return sotto_status_set(err, SOTTO_ERR_MODEL,
                                    "key '" NAME_QUOTE "' element %" PRIu64
                                    " = %g does not fit float32",
                                    kv->key.data, i, v);
        out[i] = (float)v;
    }
    *n = (size_t)kv->arr_n;
    return SOTTO_OK;
}

/* ---- tensors ---------------------------------------------------------------------------- */

static void put_shape(text *t, int n_dims, const int64_t *shape)
{
    put(t, "[");
    for (int i = 0; i < n_dims; i++) {
        if (i) put(t, ", ");
        if (shape[i] < 0)
            put(t, "*");
        else
            put(t, "%" PRId64, shape[i]);
    }
    put(t, "]");
}

int sotto_gguf_tensor_check(const sotto_gguf *g, const char *name, int dtype, int n_dims,
                            const int64_t *shape, const sotto_gguf_tensor **out, sotto_status *err)
{
    if (out) *out = NULL;
    if (!g || !name)
        return sotto_status_set(err, SOTTO_ERR_INVALID_ARG, "sotto_gguf_tensor_check: NULL %s",
                                g ? "name" : "reader");
    const sotto_gguf_tensor *t = sotto_gguf_find_tensor(g, name);
    if (!t) return sotto_status_set(err, SOTTO_ERR_MODEL, "missing tensor '%.120s'", name);
    if (dtype == -1) {
        if (t->dtype != SOTTO_DTYPE_F32 && t->dtype != SOTTO_DTYPE_F16 &&
            t->dtype != SOTTO_DTYPE_BF16)
            return sotto_status_set(err, SOTTO_ERR_MODEL,
                                    "tensor '%.120s': dtype %s, expected f32, f16 or bf16", name,
                                    sotto_dtype_name(t->dtype));
    } else if (t->dtype != dtype) {
        return sotto_status_set(err, SOTTO_ERR_MODEL, "tensor '%.120s': dtype %s, expected %s",
                                name, sotto_dtype_name(t->dtype), sotto_dtype_name(dtype));
    }
    if (n_dims > 0) {
        int bad = t->n_dims != n_dims || n_dims > SOTTO_GGUF_MAX_DIMS;
        for (int i = 0; !bad && shape && i < n_dims; i++)
            if (shape[i] != -1 && shape[i] != t->shape[i]) bad = 1;
        if (bad) {
            char got[96], want[96];
            text a = {got, sizeof got, 0}, b = {want, sizeof want, 0};
            got[0] = want[0] = '\0';
            put_shape(&a, t->n_dims, t->shape);
            if (shape) {
                int nd = n_dims < SOTTO_GGUF_MAX_DIMS ? n_dims : SOTTO_GGUF_MAX_DIMS;
                put_shape(&b, nd, shape);
                if (nd < n_dims) put(&b, " (%d dims)", n_dims);
            } else {
                put(&b, "%d dims", n_dims);
            }
            return sotto_status_set(err, SOTTO_ERR_MODEL, "tensor '%.120s': shape %s, expected %s",
                                    name, got, want);
        }
    }
    if (out) *out = t;
    sotto_status_clear(err);
    return SOTTO_OK;
}

int sotto_gguf_tensor_to_f32(const sotto_gguf_tensor *t, float *dst)
{
    if (!t || !dst || !t->data) return SOTTO_ERR_INVALID_ARG;
    const uint8_t *p = t->data;
    int64_t n = t->n_elems;
    switch (t->dtype) {
    case SOTTO_DTYPE_F32:
        memcpy(dst, p, (size_t)n * 4);
        break;
    case SOTTO_DTYPE_F16:
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if (((uintptr_t)p & 1) == 0) {
            sotto_f16_to_f32_n((const uint16_t *)(const void *)p, dst, (size_t)n);
            break;
        }
#endif
        for (int64_t i = 0; i < n; i++)
            dst[i] = sotto_f16_to_f32(ld_u16(p + 2 * i));
        break;
    case SOTTO_DTYPE_BF16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = sotto_bf16_to_f32(ld_u16(p + 2 * i));
        break;
    case SOTTO_DTYPE_F64:
        for (int64_t i = 0; i < n; i++) {
            uint64_t u = ld_u64(p + 8 * i);
            double d;
            memcpy(&d, &u, 8);
            /* Out-of-range doubles become infinities (a plain cast would be undefined). */
            dst[i] = d > FLT_MAX ? INFINITY : d < -FLT_MAX ? -INFINITY : (float)d;
        }
        break;
    case SOTTO_DTYPE_I8:
        for (int64_t i = 0; i < n; i++)
            dst[i] = (float)(int8_t)p[i];
        break;
    case SOTTO_DTYPE_I16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = (float)(int16_t)ld_u16(p + 2 * i);
        break;
    case SOTTO_DTYPE_I32:
        for (int64_t i = 0; i < n; i++)
            dst[i] = (float)(int32_t)ld_u32(p + 4 * i);
        break;
    case SOTTO_DTYPE_I64:
        for (int64_t i = 0; i < n; i++)
            dst[i] = (float)(int64_t)ld_u64(p + 8 * i);
        break;
    default:
        return SOTTO_ERR_UNSUPPORTED;
    }
    return SOTTO_OK;
}

void sotto_gguf_tensor_release(const sotto_gguf *g, const sotto_gguf_tensor *t)
{
    if (!g || !t || !g->map || !t->n_bytes) return;
    long ps = sysconf(_SC_PAGESIZE);
    if (ps <= 0) return;
    uintptr_t lo = (uintptr_t)g->map, hi = lo + g->map_size;
    uintptr_t b = (uintptr_t)t->data, e = b + (uintptr_t)t->n_bytes;
    if (b < lo || e > hi) return;
    b = (b + (uintptr_t)ps - 1) & ~((uintptr_t)ps - 1);
    e &= ~((uintptr_t)ps - 1);
    /* Advice only: a failure leaves the pages resident, which is harmless. */
    if (e > b) (void)madvise((void *)b, e - b, MADV_DONTNEED);
}

int sotto_gguf_tensor_f32(const sotto_gguf *g, const char *name, int n_dims, const int64_t *shape,
                          sotto_f32_pool *pool, const float **out, sotto_status *err)
{
    const sotto_gguf_tensor *t;
    int rc = sotto_gguf_tensor_check(g, name, -1, n_dims, shape, &t, err);
    if (rc) return rc;
    if (t->dtype == SOTTO_DTYPE_F32) {
        *out = t->data;
        return SOTTO_OK;
    }
    if (!pool || (size_t)t->n_elems > pool->cap - pool->used)
        return sotto_status_set(err, SOTTO_ERR_INTERNAL, "tensor '%s': conversion space", name);
    float *dst = pool->data + pool->used;
    rc = sotto_gguf_tensor_to_f32(t, dst);
    if (rc) return sotto_status_set(err, rc, "tensor '%s': cannot convert to f32", name);
    pool->used += (size_t)t->n_elems;
    *out = dst;
    return SOTTO_OK;
}
