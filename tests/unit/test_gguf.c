/*
 * The GGUF reader and the sotto_model container API. A small GGUF builder below writes valid
 * and deliberately broken files in memory (every header field can be made to lie), so each
 * validation rule is exercised with the exact error code and a message naming the culprit;
 * a valid file truncated at every byte must fail cleanly. Also: typed getters, value
 * formatting, tensor_check messages, f16/bf16 conversions checked exhaustively, a fixture
 * written by Python's `gguf` package (tools/golden/gguf_sample.py), and allocation failures.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/gguf.h"
#include "backend/cuda_probe.h"
#include "core/model.h"
#include "testutil.h"

/* ---- an in-memory GGUF builder ---------------------------------------------------------- */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void b_raw(buf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            fprintf(stderr, "test builder: out of memory\n");
            exit(1);
        }
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void b_u8(buf *b, uint8_t v)
{
    b_raw(b, &v, 1);
}

static void b_u16(buf *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    b_raw(b, x, 2);
}

static void b_u32(buf *b, uint32_t v)
{
    uint8_t x[4];
    for (int i = 0; i < 4; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    b_raw(b, x, 4);
}

static void b_u64(buf *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    b_raw(b, x, 8);
}

static void b_f32(buf *b, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    b_u32(b, u);
}

static void b_f64(buf *b, double f)
{
    uint64_t u;
    memcpy(&u, &f, 8);
    b_u64(b, u);
}

static void b_strn(buf *b, const char *s, size_t n)
{
    b_u64(b, n);
    b_raw(b, s, n);
}

static void b_str(buf *b, const char *s)
{
    b_strn(b, s, strlen(s));
}

static void b_free(buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* Key/value encoders: key, type, value. */
static void kv_str(buf *b, const char *k, const char *v)
{
    b_str(b, k);
    b_u32(b, SOTTO_GGUF_STRING);
    b_str(b, v);
}

static void kv_u32(buf *b, const char *k, uint32_t v)
{
    b_str(b, k);
    b_u32(b, SOTTO_GGUF_UINT32);
    b_u32(b, v);
}

static void kv_i32(buf *b, const char *k, int32_t v)
{
    b_str(b, k);
    b_u32(b, SOTTO_GGUF_INT32);
    b_u32(b, (uint32_t)v);
}

static void kv_f32(buf *b, const char *k, float v)
{
    b_str(b, k);
    b_u32(b, SOTTO_GGUF_FLOAT32);
    b_f32(b, v);
}

typedef struct tspec {
    const char *name;
    uint32_t n_dims;
    uint64_t ne[4]; /* ggml order: innermost first */
    uint32_t dtype;
    uint64_t offset; /* AUTO: next aligned offset after the previous tensor */
} tspec;

#define AUTO UINT64_MAX
/* The builder writes data only for tensors this small and this near. */
#define SANE_ELEMS (1u << 20)
#define SANE_OFFSET (1u << 21)

typedef struct fspec {
    uint32_t version;                /* 0: 3 */
    uint32_t alignment;              /* used for padding and automatic offsets; 0: 32 */
    int64_t claim_tensors, claim_kv; /* -1: the real counts */
    const buf *kv;
    uint64_t n_kv;
    const tspec *t;
    int nt;
} fspec;

static size_t tsize(uint32_t dtype)
{
    size_t s = sotto_dtype_size((int)dtype);
    return s ? s : 4;
}

/* Writes element i of a known dtype as the value i + 1. */
static void put_value(uint8_t *p, uint32_t dtype, uint64_t i)
{
    float v = (float)(i + 1);
    switch (dtype) {
    case SOTTO_DTYPE_F32:
        memcpy(p, &v, 4);
        break;
    case SOTTO_DTYPE_F16: {
        uint16_t h = sotto_f32_to_f16(v);
        memcpy(p, &h, 2);
        break;
    }
    case SOTTO_DTYPE_BF16: {
        uint16_t h = sotto_f32_to_bf16(v);
        memcpy(p, &h, 2);
        break;
    }
    case SOTTO_DTYPE_F64: {
        double d = v;
        memcpy(p, &d, 8);
        break;
    }
    case SOTTO_DTYPE_I8:
        p[0] = (uint8_t)(i + 1);
        break;
    case SOTTO_DTYPE_I16: {
        int16_t x = (int16_t)(i + 1);
        memcpy(p, &x, 2);
        break;
    }
    case SOTTO_DTYPE_I32: {
        int32_t x = (int32_t)(i + 1);
        memcpy(p, &x, 4);
        break;
    }
    case SOTTO_DTYPE_I64: {
        int64_t x = (int64_t)(i + 1);
        memcpy(p, &x, 8);
        break;
    }
    default:
        break;
    }
}

/* Builds the file; *size gets its length. Data is written for tensors of sane size only. */
static uint8_t *build(const fspec *f, size_t *size)
{
    uint32_t align = f->alignment ? f->alignment : 32;
    buf b = {0};
    b_raw(&b, "GGUF", 4);
    b_u32(&b, f->version ? f->version : 3);
    b_u64(&b, f->claim_tensors >= 0 ? (uint64_t)f->claim_tensors : (uint64_t)f->nt);
    b_u64(&b, f->claim_kv >= 0 ? (uint64_t)f->claim_kv : f->n_kv);
    if (f->kv) b_raw(&b, f->kv->p, f->kv->n);
    uint64_t next = 0, data_end = 0;
    uint64_t off[16];
    for (int i = 0; i < f->nt; i++) {
        const tspec *t = &f->t[i];
        b_str(&b, t->name);
        b_u32(&b, t->n_dims);
        uint64_t n = 1;
        for (uint32_t d = 0; d < t->n_dims && d < 4; d++) {
            b_u64(&b, t->ne[d]);
            n *= t->ne[d];
        }
        b_u32(&b, t->dtype);
        off[i] = t->offset != AUTO ? t->offset : next;
        b_u64(&b, off[i]);
        uint64_t bytes = n * tsize(t->dtype);
        if (n <= SANE_ELEMS && off[i] < SANE_OFFSET) {
            next = (off[i] + bytes + align - 1) / align * align;
            if (off[i] + bytes > data_end) data_end = off[i] + bytes;
        }
    }
    /* Without tensors there is no data section, and so no padding is needed. */
    while (f->nt && b.n % align)
        b_u8(&b, 0);
    size_t data_start = b.n;
    if (data_end) {
        uint8_t *zeros = calloc(1, (size_t)data_end);
        b_raw(&b, zeros, (size_t)data_end);
        free(zeros);
    }
    for (int i = 0; i < f->nt; i++) {
        const tspec *t = &f->t[i];
        uint64_t n = 1;
        for (uint32_t d = 0; d < t->n_dims && d < 4; d++)
            n *= t->ne[d];
        size_t es = sotto_dtype_size((int)t->dtype);
        if (!es || n > SANE_ELEMS || off[i] >= SANE_OFFSET) continue;
        for (uint64_t e = 0; e < n; e++)
            put_value(b.p + data_start + off[i] + e * es, t->dtype, e);
    }
    *size = b.n;
    return b.p;
}

/* The small valid file most tests start from: 4 keys, an f32 [2, 3] and an f16 [3]. */
static const tspec small_tensors[] = {
    {"w", 2, {3, 2}, SOTTO_DTYPE_F32, AUTO},
    {"b", 1, {3}, SOTTO_DTYPE_F16, AUTO},
};

static void small_kv(buf *kv)
{
    kv_str(kv, "general.architecture", "test");
    kv_str(kv, "general.name", "small");
    kv_i32(kv, "test.n", 42);
    kv_f32(kv, "test.scale", 0.5f);
}

static uint8_t *build_small(size_t *size)
{
    buf kv = {0};
    small_kv(&kv);
    fspec f = {0, 0, -1, -1, &kv, 4, small_tensors, 2};
    uint8_t *p = build(&f, size);
    b_free(&kv);
    return p;
}

/* A file with a key of every value type, arrays included, and a custom alignment. */
static uint8_t *build_rich(size_t *size)
{
    buf kv = {0};
    uint64_t n = 0;
    kv_str(&kv, "general.architecture", "rich"), n++;
    kv_u32(&kv, "general.alignment", 64), n++;
    b_str(&kv, "r.u8"), b_u32(&kv, SOTTO_GGUF_UINT8), b_u8(&kv, 200), n++;
    b_str(&kv, "r.i8"), b_u32(&kv, SOTTO_GGUF_INT8), b_u8(&kv, 0x9c), n++; /* -100 */
    b_str(&kv, "r.u16"), b_u32(&kv, SOTTO_GGUF_UINT16), b_u16(&kv, 60000), n++;
    b_str(&kv, "r.i16"), b_u32(&kv, SOTTO_GGUF_INT16), b_u16(&kv, (uint16_t)-30000), n++;
    kv_u32(&kv, "r.u32", 4000000000u), n++;
    kv_i32(&kv, "r.i32", -2000000000), n++;
    kv_f32(&kv, "r.f32", 0.15625f), n++;
    b_str(&kv, "r.bool"), b_u32(&kv, SOTTO_GGUF_BOOL), b_u8(&kv, 1), n++;
    kv_str(&kv, "r.str", "h\xc3\xa9llo \"q\"\n"), n++;
    b_str(&kv, "r.u64"), b_u32(&kv, SOTTO_GGUF_UINT64), b_u64(&kv, (1ull << 63) + 5), n++;
    b_str(&kv, "r.u64small"), b_u32(&kv, SOTTO_GGUF_UINT64), b_u64(&kv, 7), n++;
    b_str(&kv, "r.i64"), b_u32(&kv, SOTTO_GGUF_INT64), b_u64(&kv, (uint64_t)(-(1ll << 62))), n++;
    b_str(&kv, "r.f64"), b_u32(&kv, SOTTO_GGUF_FLOAT64), b_f64(&kv, 1e300), n++;
    b_str(&kv, "r.arr_i32"), b_u32(&kv, SOTTO_GGUF_ARRAY), b_u32(&kv, SOTTO_GGUF_INT32);
    b_u64(&kv, 20);
    for (int i = -10; i < 10; i++)
        b_u32(&kv, (uint32_t)i);
    n++;
    b_str(&kv, "r.arr_f32"), b_u32(&kv, SOTTO_GGUF_ARRAY), b_u32(&kv, SOTTO_GGUF_FLOAT32);
    b_u64(&kv, 3), b_f32(&kv, 0.5f), b_f32(&kv, -0.25f), b_f32(&kv, 1024.0f), n++;
    b_str(&kv, "r.arr_u64"), b_u32(&kv, SOTTO_GGUF_ARRAY), b_u32(&kv, SOTTO_GGUF_UINT64);
    b_u64(&kv, 2), b_u64(&kv, 0), b_u64(&kv, UINT64_MAX), n++;
    b_str(&kv, "r.arr_f64"), b_u32(&kv, SOTTO_GGUF_ARRAY), b_u32(&kv, SOTTO_GGUF_FLOAT64);
    b_u64(&kv, 2), b_f64(&kv, 1e300), b_f64(&kv, -2.5), n++;
    b_str(&kv, "r.arr_bool"), b_u32(&kv, SOTTO_GGUF_ARRAY), b_u32(&kv, SOTTO_GGUF_BOOL);
    b_u64(&kv, 2), b_u8(&kv, 1), b_u8(&kv, 0), n++;
    b_str(&kv, "r.arr_str"), b_u32(&kv, SOTTO_GGUF_ARRAY), b_u32(&kv, SOTTO_GGUF_STRING);
    b_u64(&kv, 3), b_str(&kv, "a"), b_str(&kv, "bc"), b_str(&kv, ""), n++;
    b_str(&kv, "r.arr_empty"), b_u32(&kv, SOTTO_GGUF_ARRAY), b_u32(&kv, SOTTO_GGUF_INT16);
    b_u64(&kv, 0), n++;
    static const tspec t[] = {
        {"x.f32", 4, {2, 1, 3, 1}, SOTTO_DTYPE_F32, AUTO}, {"x.f16", 1, {5}, SOTTO_DTYPE_F16, AUTO},
        {"x.bf16", 2, {2, 2}, SOTTO_DTYPE_BF16, AUTO},     {"x.i8", 1, {3}, SOTTO_DTYPE_I8, AUTO},
        {"x.i16", 1, {3}, SOTTO_DTYPE_I16, AUTO},          {"x.i32", 1, {3}, SOTTO_DTYPE_I32, AUTO},
        {"x.i64", 1, {3}, SOTTO_DTYPE_I64, AUTO},          {"x.f64", 1, {3}, SOTTO_DTYPE_F64, AUTO},
    };
    fspec f = {0, 64, -1, -1, &kv, n, t, (int)SOTTO_ARRAY_LEN(t)};
    uint8_t *p = build(&f, size);
    b_free(&kv);
    return p;
}

/* ---- helpers ---------------------------------------------------------------------------- */

static sotto_gguf *open_ok(const uint8_t *d, size_t n, int line)
{
    sotto_gguf *g = NULL;
    sotto_status st;
    int rc = sotto_gguf_open_buffer(d, n, 1, NULL, &g, &st);
    if (rc != SOTTO_OK) {
        fprintf(stderr, "line %d: open failed: %d %s\n", line, rc, st.message);
        CU_FAIL("valid file rejected");
        return NULL;
    }
    CU_ASSERT_EQUAL(st.code, SOTTO_OK);
    return g;
}

/* Opens a borrowed exact-size copy (so ASan sees any over-read) and checks the failure. */
static void expect_fail(const uint8_t *d, size_t n, int code, const char *substr, int line)
{
    uint8_t *copy = malloc(n ? n : 1);
    if (n) memcpy(copy, d, n);
    sotto_gguf *g = (sotto_gguf *)copy; /* must be reset to NULL */
    sotto_status st = {0, ""};
    int rc = sotto_gguf_open_buffer(n ? copy : NULL, n, 0, NULL, &g, &st);
    int ok = rc == code && g == NULL && st.code == code && st.message[0] &&
             (!substr || strstr(st.message, substr));
    if (!ok) {
        fprintf(stderr, "line %d: rc %d (want %d), message '%s' (want '%s')\n", line, rc, code,
                st.message, substr ? substr : "");
        CU_FAIL("expected failure not seen");
    }
    if (rc == SOTTO_OK && g) sotto_gguf_close(g);
    free(copy);
}

#define OPEN_OK(d, n) open_ok((d), (n), __LINE__)
#define EXPECT_FAIL(d, n, code, substr) expect_fail((d), (n), (code), (substr), __LINE__)

/* Builds from a spec and expects failure. */
static void spec_fail(const fspec *f, int code, const char *substr, int line)
{
    size_t n;
    uint8_t *p = build(f, &n);
    expect_fail(p, n, code, substr, line);
    free(p);
}
#define SPEC_FAIL(f, code, substr) spec_fail((f), (code), (substr), __LINE__)

static void set_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void set_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- structure -------------------------------------------------------------------------- */

static void test_valid_small(void)
{
    size_t n;
    uint8_t *p = build_small(&n);
    for (int copy = 0; copy <= 1; copy++) {
        sotto_gguf *g = NULL;
        sotto_status st;
        CU_ASSERT_EQUAL_FATAL(sotto_gguf_open_buffer(p, n, copy, NULL, &g, &st), SOTTO_OK);
        CU_ASSERT_EQUAL(sotto_gguf_version(g), 3);
        CU_ASSERT_EQUAL(sotto_gguf_alignment(g), 32);
        CU_ASSERT_EQUAL(sotto_gguf_size(g), n);
        CU_ASSERT_EQUAL(sotto_gguf_data_offset(g) % 32, 0);
        CU_ASSERT_EQUAL(sotto_gguf_kv_count(g), 4);
        CU_ASSERT_EQUAL(sotto_gguf_tensor_count(g), 2);
        CU_ASSERT_STRING_EQUAL(sotto_gguf_kv_at(g, 1)->key.data, "general.name");
        CU_ASSERT_PTR_NULL(sotto_gguf_kv_at(g, 4));
        CU_ASSERT_PTR_NULL(sotto_gguf_kv_at(g, -1));
        CU_ASSERT_PTR_NULL(sotto_gguf_find_kv(g, "general"));
        CU_ASSERT_PTR_NULL(sotto_gguf_find_kv(g, NULL));
        const sotto_gguf_tensor *w = sotto_gguf_find_tensor(g, "w");
        CU_ASSERT_PTR_NOT_NULL_FATAL(w);
        CU_ASSERT_EQUAL(w->dtype, SOTTO_DTYPE_F32);
        CU_ASSERT_EQUAL(w->n_dims, 2);
        CU_ASSERT_EQUAL(w->shape[0], 2); /* PyTorch order: ne reversed */
        CU_ASSERT_EQUAL(w->shape[1], 3);
        CU_ASSERT_EQUAL(w->shape[2], 1);
        CU_ASSERT_EQUAL(w->shape[3], 1);
        CU_ASSERT_EQUAL(w->n_elems, 6);
        CU_ASSERT_EQUAL(w->n_bytes, 24);
        CU_ASSERT_EQUAL(w->offset, 0);
        if (copy) CU_ASSERT_EQUAL((uintptr_t)w->data % 32, 0); /* our copy is 64-aligned */
        float v[6];
        CU_ASSERT_EQUAL(sotto_gguf_tensor_to_f32(w, v), SOTTO_OK);
        for (int i = 0; i < 6; i++)
            CU_ASSERT_EQUAL(v[i], (float)(i + 1));
        const sotto_gguf_tensor *b = sotto_gguf_find_tensor(g, "b");
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        CU_ASSERT_EQUAL(b->offset, 32);
        CU_ASSERT_EQUAL(sotto_gguf_tensor_to_f32(b, v), SOTTO_OK);
        for (int i = 0; i < 3; i++)
            CU_ASSERT_EQUAL(v[i], (float)(i + 1));
        CU_ASSERT_PTR_EQUAL(sotto_gguf_tensor_at(g, 0), w);
        CU_ASSERT_PTR_NULL(sotto_gguf_tensor_at(g, 2));
        CU_ASSERT_PTR_NULL(sotto_gguf_find_tensor(g, "c"));
        CU_ASSERT_EQUAL(sotto_gguf_tensor_to_f32(NULL, v), SOTTO_ERR_INVALID_ARG);
        sotto_gguf_close(g);
    }
    free(p);
    sotto_gguf_close(NULL);
}

static void test_no_tensors_no_keys(void)
{
    fspec f = {0, 0, -1, -1, NULL, 0, NULL, 0};
    size_t n;
    uint8_t *p = build(&f, &n);
    CU_ASSERT_EQUAL(n, 24);
    sotto_gguf *g = OPEN_OK(p, n);
    CU_ASSERT_EQUAL(sotto_gguf_kv_count(g), 0);
    CU_ASSERT_EQUAL(sotto_gguf_tensor_count(g), 0);
    CU_ASSERT_PTR_NULL(sotto_gguf_find_kv(g, "x"));
    CU_ASSERT_PTR_NULL(sotto_gguf_find_tensor(g, "x"));
    sotto_gguf_close(g);
    free(p);
}

static void test_bad_args(void)
{
    sotto_gguf *g = (sotto_gguf *)&g;
    sotto_status st;
    CU_ASSERT_EQUAL(sotto_gguf_open_buffer(NULL, 10, 0, NULL, &g, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NULL(g);
    CU_ASSERT_EQUAL(sotto_gguf_open_buffer("GGUF", 4, 0, NULL, NULL, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_gguf_open_file(NULL, 1, NULL, &g, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_gguf_open_file("x", 1, NULL, NULL, NULL), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_gguf_open_buffer(NULL, 0, 0, NULL, &g, &st), SOTTO_ERR_FORMAT);
    CU_ASSERT_EQUAL(sotto_gguf_open_file("/nonexistent/dir/x.gguf", 1, NULL, &g, &st),
                    SOTTO_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "/nonexistent/dir/x.gguf"));
    CU_ASSERT_EQUAL(sotto_gguf_open_file(".", 0, NULL, &g, &st), SOTTO_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "not a regular file"));
}

static void test_magic_version(void)
{
    size_t n;
    uint8_t *p = build_small(&n);
    uint8_t *q = malloc(n);
    memcpy(q, p, n);
    q[0] = 'X';
    EXPECT_FAIL(q, n, SOTTO_ERR_FORMAT, "not a GGUF file");
    memcpy(q, p, n);
    memcpy(q, "GGML", 4);
    EXPECT_FAIL(q, n, SOTTO_ERR_FORMAT, "magic");

    static const struct {
        uint32_t v;
        int code;
        const char *msg;
    } cases[] = {
        {0, SOTTO_ERR_FORMAT, "version 0"},
        {1, SOTTO_ERR_UNSUPPORTED, "version 1"},
        {4, SOTTO_ERR_UNSUPPORTED, "version 4"},
        {0xffffffffu, SOTTO_ERR_UNSUPPORTED, "version 4294967295"},
        {0x03000000u, SOTTO_ERR_UNSUPPORTED, "big-endian"},
    };
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(cases); i++) {
        memcpy(q, p, n);
        set_u32(q + 4, cases[i].v);
        EXPECT_FAIL(q, n, cases[i].code, cases[i].msg);
    }
    memcpy(q, p, n);
    set_u32(q + 4, 2); /* v2 has the same layout as v3 */
    sotto_gguf *g = OPEN_OK(q, n);
    CU_ASSERT_EQUAL(sotto_gguf_version(g), 2);
    sotto_gguf_close(g);
    free(q);
    free(p);
}

/* Every proper prefix of a valid file must fail with SOTTO_ERR_FORMAT. */
static void truncate_all(const uint8_t *p, size_t n)
{
    sotto_gguf *g = OPEN_OK(p, n);
    sotto_gguf_close(g);
    int bad = 0;
    for (size_t k = 0; k < n; k++) {
        uint8_t *q = malloc(k ? k : 1);
        if (k) memcpy(q, p, k);
        sotto_status st;
        g = NULL;
        int rc = sotto_gguf_open_buffer(k ? q : NULL, k, 0, NULL, &g, &st);
        if (rc != SOTTO_ERR_FORMAT || g != NULL || !st.message[0]) {
            if (bad++ < 5)
                fprintf(stderr, "prefix of %zu/%zu bytes: rc %d '%s'\n", k, n, rc, st.message);
            sotto_gguf_close(g);
        }
        free(q);
    }
    CU_ASSERT_EQUAL(bad, 0);
}

static void test_truncated_everywhere(void)
{
    size_t n;
    uint8_t *p = build_small(&n);
    truncate_all(p, n);
    free(p);
    p = build_rich(&n);
    truncate_all(p, n);
    free(p);
}

static void test_lying_counts(void)
{
    size_t n;
    uint8_t *p = build_small(&n);
    uint8_t *q = malloc(n);
    static const uint64_t lies[] = {UINT64_MAX, 1ull << 63, 1ull << 62, 1ull << 40, 1000};
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(lies); i++) {
        memcpy(q, p, n);
        set_u64(q + 8, lies[i]);
        EXPECT_FAIL(q, n, SOTTO_ERR_FORMAT, "more than the");
        memcpy(q, p, n);
        set_u64(q + 16, lies[i]);
        EXPECT_FAIL(q, n, SOTTO_ERR_FORMAT, "more than the");
    }
    /* One more tensor or key than present: plausible counts, found out while parsing. */
    memcpy(q, p, n);
    set_u64(q + 8, 3);
    EXPECT_FAIL(q, n, SOTTO_ERR_FORMAT, NULL);
    memcpy(q, p, n);
    set_u64(q + 16, 5);
    EXPECT_FAIL(q, n, SOTTO_ERR_FORMAT, NULL);
    /* Fewer keys than present: the rest is misread as tensor infos and must be refused. */
    memcpy(q, p, n);
    set_u64(q + 16, 3);
    EXPECT_FAIL(q, n, SOTTO_ERR_FORMAT, NULL);
    free(q);
    free(p);
}

static void test_huge_lengths(void)
{
    static const uint64_t lens[] = {UINT64_MAX, 1ull << 63, 1ull << 32, 100000};
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(lens); i++) {
        buf kv = {0};
        /* key length */
        b_u64(&kv, lens[i]);
        b_raw(&kv, "abcdefgh", 8);
        fspec f = {0, 0, -1, -1, &kv, 1, NULL, 0};
        SPEC_FAIL(&f, SOTTO_ERR_FORMAT, "string length");
        b_free(&kv);
        /* string value length */
        b_str(&kv, "k");
        b_u32(&kv, SOTTO_GGUF_STRING);
        b_u64(&kv, lens[i]);
        b_raw(&kv, "abcdefgh", 8);
        SPEC_FAIL(&f, SOTTO_ERR_FORMAT, "key 'k': string length");
        b_free(&kv);
        /* string array count, and numeric array count */
        b_str(&kv, "k");
        b_u32(&kv, SOTTO_GGUF_ARRAY);
        b_u32(&kv, SOTTO_GGUF_STRING);
        b_u64(&kv, lens[i]);
        b_str(&kv, "x");
        SPEC_FAIL(&f, SOTTO_ERR_FORMAT, "key 'k'");
        b_free(&kv);
        b_str(&kv, "k");
        b_u32(&kv, SOTTO_GGUF_ARRAY);
        b_u32(&kv, SOTTO_GGUF_UINT32);
        b_u64(&kv, lens[i]);
        b_u32(&kv, 1);
        SPEC_FAIL(&f, SOTTO_ERR_FORMAT, "key 'k'");
        b_free(&kv);
    }
    /* n * element size overflowing 64 bits */
    buf kv = {0};
    b_str(&kv, "k");
    b_u32(&kv, SOTTO_GGUF_ARRAY);
    b_u32(&kv, SOTTO_GGUF_FLOAT64);
    b_u64(&kv, (1ull << 61) + 1);
    b_f64(&kv, 1.0);
    fspec f = {0, 0, -1, -1, &kv, 1, NULL, 0};
    SPEC_FAIL(&f, SOTTO_ERR_FORMAT, "elements of 8 bytes");
    b_free(&kv);
    /* tensor name length */
    fspec ft = {0, 0, -1, -1, NULL, 0, small_tensors, 2};
    size_t n;
    uint8_t *p = build(&ft, &n);
    set_u64(p + 24, UINT64_MAX);
    EXPECT_FAIL(p, n, SOTTO_ERR_FORMAT, "tensor #0 name: string length");
    free(p);
}

static void test_dims(void)
{
    static const struct {
        tspec t;
        int code;
        const char *msg;
    } cases[] = {
        {{"z", 0, {1}, SOTTO_DTYPE_F32, 0}, SOTTO_ERR_FORMAT, "tensor 'z': n_dims 0"},
        {{"z", 5, {1, 1, 1, 1}, SOTTO_DTYPE_F32, 0}, SOTTO_ERR_FORMAT, "n_dims 5"},
        {{"z", 2, {3, 0}, SOTTO_DTYPE_F32, 0}, SOTTO_ERR_FORMAT, "tensor 'z': dim 0 is 0"},
        {{"z", 2, {0, 3}, SOTTO_DTYPE_F32, 0}, SOTTO_ERR_FORMAT, "dim 1 is 0"},
        {{"z", 1, {1ull << 63}, SOTTO_DTYPE_F32, 0}, SOTTO_ERR_FORMAT, "dim 0 is"},
        {{"z", 1, {UINT64_MAX}, SOTTO_DTYPE_I8, 0}, SOTTO_ERR_FORMAT, "dim 0 is"},
        {{"z", 2, {1ull << 32, 1ull << 32}, SOTTO_DTYPE_F32, 0}, SOTTO_ERR_FORMAT, "overflows"},
        {{"z", 4, {1ull << 20, 1ull << 20, 1ull << 20, 1ull << 20}, SOTTO_DTYPE_F32, 0},
         SOTTO_ERR_FORMAT,
         "overflows"},
        {{"z", 1, {1ull << 62}, SOTTO_DTYPE_F32, 0}, SOTTO_ERR_FORMAT, "overflow"},
        {{"z", 1, {1ull << 40}, SOTTO_DTYPE_F32, 0}, SOTTO_ERR_FORMAT, "past the end"},
        {{"z", 2, {3, 2}, 2, 0}, SOTTO_ERR_UNSUPPORTED, "tensor 'z': dtype 2 (q4_0)"},
        {{"z", 2, {3, 2}, 12, 0}, SOTTO_ERR_UNSUPPORTED, "q4_k"},
        {{"z", 2, {3, 2}, 1000, 0}, SOTTO_ERR_UNSUPPORTED, "tensor 'z': dtype 1000"},
        {{"z", 2, {3, 2}, UINT32_MAX, 0}, SOTTO_ERR_UNSUPPORTED, "'z'"},
    };
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(cases); i++) {
        fspec f = {0, 0, -1, -1, NULL, 0, &cases[i].t, 1};
        SPEC_FAIL(&f, cases[i].code, cases[i].msg);
    }
    /* 4 dims of size 1 and every supported dtype load */
    static const uint32_t dts[] = {SOTTO_DTYPE_F32, SOTTO_DTYPE_F16, SOTTO_DTYPE_BF16,
                                   SOTTO_DTYPE_I8,  SOTTO_DTYPE_I16, SOTTO_DTYPE_I32,
                                   SOTTO_DTYPE_I64, SOTTO_DTYPE_F64};
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(dts); i++) {
        tspec t = {"ok", 4, {1, 1, 1, 1}, dts[i], 0};
        fspec f = {0, 0, -1, -1, NULL, 0, &t, 1};
        size_t n;
        uint8_t *p = build(&f, &n);
        sotto_gguf *g = OPEN_OK(p, n);
        const sotto_gguf_tensor *x = sotto_gguf_find_tensor(g, "ok");
        CU_ASSERT_PTR_NOT_NULL_FATAL(x);
        CU_ASSERT_EQUAL(x->n_dims, 4);
        CU_ASSERT_EQUAL(x->n_bytes, sotto_dtype_size((int)dts[i]));
        float v = 0;
        CU_ASSERT_EQUAL(sotto_gguf_tensor_to_f32(x, &v), SOTTO_OK);
        CU_ASSERT_EQUAL(v, 1.0f);
        sotto_gguf_close(g);
        free(p);
    }
}

static void test_offsets(void)
{
    tspec t[2] = {{"a", 1, {16}, SOTTO_DTYPE_F32, 0}, {"b", 1, {8}, SOTTO_DTYPE_F32, 64}};
    fspec f = {0, 0, -1, -1, NULL, 0, t, 2};
    size_t n;
    uint8_t *p = build(&f, &n);
    sotto_gguf *g = OPEN_OK(p, n);
    sotto_gguf_close(g);
    EXPECT_FAIL(p, n - 1, SOTTO_ERR_FORMAT, "tensor 'b': data [64, +32) runs past the end");
    free(p);

    t[1].offset = 68;
    SPEC_FAIL(&f, SOTTO_ERR_FORMAT,
              "tensor 'b': data offset 68 is not a multiple of the alignment 32");
    t[1].offset = 1u << 22;
    SPEC_FAIL(&f, SOTTO_ERR_FORMAT, "past the end");
    t[1].offset = UINT64_MAX - 31; /* aligned; offset + size wraps around */
    SPEC_FAIL(&f, SOTTO_ERR_FORMAT, "past the end");
    t[1].offset = INT64_MAX - 31 - 32;
    SPEC_FAIL(&f, SOTTO_ERR_FORMAT, "past the end");

    /* overlaps: same start, partial, and contained */
    t[1].offset = 0;
    SPEC_FAIL(&f, SOTTO_ERR_FORMAT, "tensors 'a' [0, 64) and 'b' [0, 32) overlap");
    t[1].offset = 32;
    SPEC_FAIL(&f, SOTTO_ERR_FORMAT, "overlap");
    tspec u[3] = {{"c", 1, {8}, SOTTO_DTYPE_F32, 64},
                  {"d", 1, {8}, SOTTO_DTYPE_F32, 0},
                  {"e", 1, {24}, SOTTO_DTYPE_F32, 32}};
    fspec fu = {0, 0, -1, -1, NULL, 0, u, 3};
    SPEC_FAIL(&fu, SOTTO_ERR_FORMAT, "tensors 'e' [32, 128) and 'c' [64, 96) overlap");
    u[2].n_dims = 1, u[2].ne[0] = 8, u[2].offset = 96; /* out of order but disjoint */
    p = build(&fu, &n);
    g = OPEN_OK(p, n);
    CU_ASSERT_EQUAL(sotto_gguf_find_tensor(g, "e")->offset, 96);
    sotto_gguf_close(g);
    free(p);
}

static void test_duplicates(void)
{
    tspec t[3] = {{"a", 1, {4}, SOTTO_DTYPE_F32, AUTO},
                  {"b", 1, {4}, SOTTO_DTYPE_F32, AUTO},
                  {"a", 1, {4}, SOTTO_DTYPE_F32, AUTO}};
    fspec f = {0, 0, -1, -1, NULL, 0, t, 3};
    SPEC_FAIL(&f, SOTTO_ERR_FORMAT, "duplicate tensor name 'a' (#0 and #2)");
    buf kv = {0};
    kv_i32(&kv, "k.x", 1);
    kv_str(&kv, "k.y", "v");
    kv_f32(&kv, "k.x", 2.0f);
    fspec fk = {0, 0, -1, -1, &kv, 3, NULL, 0};
    SPEC_FAIL(&fk, SOTTO_ERR_FORMAT, "duplicate key 'k.x' (#0 and #2)");
    b_free(&kv);
}

static void test_names(void)
{
    buf kv = {0};
    fspec f = {0, 0, -1, -1, &kv, 1, NULL, 0};
    kv_i32(&kv, "", 1);
    SPEC_FAIL(&f, SOTTO_ERR_FORMAT, "key #0: empty name");
    b_free(&kv);
    b_strn(&kv, "a\0b", 3);
    b_u32(&kv, SOTTO_GGUF_INT32);
    b_u32(&kv, 1);
    SPEC_FAIL(&f, SOTTO_ERR_FORMAT, "NUL");
    b_free(&kv);
    tspec t = {"", 1, {4}, SOTTO_DTYPE_F32, 0};
    fspec ft = {0, 0, -1, -1, NULL, 0, &t, 1};
    SPEC_FAIL(&ft, SOTTO_ERR_FORMAT, "tensor #0 name: empty name");
}

static void test_kv_types(void)
{
    buf kv = {0};
    fspec f = {0, 0, -1, -1, &kv, 1, NULL, 0};
    b_str(&kv, "k"), b_u32(&kv, 13), b_u64(&kv, 0);
    SPEC_FAIL(&f, SOTTO_ERR_FORMAT, "key 'k': unknown value type 13");
    b_free(&kv);
    b_str(&kv, "k"), b_u32(&kv, UINT32_MAX), b_u64(&kv, 0);
    SPEC_FAIL(&f, SOTTO_ERR_FORMAT, "unknown value type");
    b_free(&kv);
    b_str(&kv, "k"), b_u32(&kv, SOTTO_GGUF_ARRAY), b_u32(&kv, 13), b_u64(&kv, 1), b_u64(&kv, 0);
    SPEC_FAIL(&f, SOTTO_ERR_FORMAT, "key 'k': unknown array element type 13");
    b_free(&kv);
    b_str(&kv, "k"), b_u32(&kv, SOTTO_GGUF_ARRAY), b_u32(&kv, SOTTO_GGUF_ARRAY), b_u64(&kv, 1);
    b_u32(&kv, SOTTO_GGUF_INT32), b_u64(&kv, 1), b_u32(&kv, 5);
    SPEC_FAIL(&f, SOTTO_ERR_UNSUPPORTED, "key 'k': nested arrays");
    b_free(&kv);
    b_str(&kv, "k"), b_u32(&kv, SOTTO_GGUF_BOOL), b_u8(&kv, 2);
    SPEC_FAIL(&f, SOTTO_ERR_FORMAT, "key 'k': bool value 2");
    b_free(&kv);
    b_str(&kv, "k"), b_u32(&kv, SOTTO_GGUF_ARRAY), b_u32(&kv, SOTTO_GGUF_BOOL), b_u64(&kv, 3);
    b_u8(&kv, 1), b_u8(&kv, 0), b_u8(&kv, 7);
    SPEC_FAIL(&f, SOTTO_ERR_FORMAT, "bool element 2 is 7");
    b_free(&kv);
}

static void test_alignment(void)
{
    static const tspec t[] = {{"a", 1, {3}, SOTTO_DTYPE_F32, AUTO},
                              {"b", 1, {5}, SOTTO_DTYPE_F16, AUTO}};
    /* below 4-byte alignment only byte-sized elements are sure to sit on their size */
    static const tspec t8[] = {{"a", 1, {3}, SOTTO_DTYPE_I8, AUTO},
                               {"b", 1, {5}, SOTTO_DTYPE_I8, AUTO}};
    static const uint32_t bad[] = {0, 3, 48, 1u << 21, 0x80000000u};
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(bad); i++) {
        buf kv = {0};
        kv_u32(&kv, "general.alignment", bad[i]);
        fspec f = {0, 0, -1, -1, &kv, 1, t, 2};
        char msg[96];
        snprintf(msg, sizeof msg, "'general.alignment' = %u is not a power of two", bad[i]);
        SPEC_FAIL(&f, SOTTO_ERR_FORMAT, msg);
        b_free(&kv);
    }
    buf kv = {0};
    kv_i32(&kv, "general.alignment", 64);
    fspec f = {0, 64, -1, -1, &kv, 1, t, 2};
    SPEC_FAIL(&f, SOTTO_ERR_FORMAT, "'general.alignment' is int32, expected uint32");
    b_free(&kv);

    static const uint32_t good[] = {1, 2, 8, 64, 4096, 1u << 20};
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(good); i++) {
        kv_u32(&kv, "general.alignment", good[i]);
        fspec fg = {0, good[i], -1, -1, &kv, 1, good[i] < 4 ? t8 : t, 2};
        size_t n;
        uint8_t *p = build(&fg, &n);
        sotto_gguf *g = OPEN_OK(p, n);
        CU_ASSERT_EQUAL(sotto_gguf_alignment(g), good[i]);
        CU_ASSERT_EQUAL(sotto_gguf_data_offset(g) % good[i], 0);
        const sotto_gguf_tensor *b = sotto_gguf_find_tensor(g, "b");
        if (b) {
            float v[5];
            CU_ASSERT_EQUAL(sotto_gguf_tensor_to_f32(b, v), SOTTO_OK);
            CU_ASSERT_EQUAL(v[4], 5.0f);
        }
        sotto_gguf_close(g);
        free(p);
        b_free(&kv);
    }

    /* Alignment 1 allows any offset; data must still sit on its element size. */
    kv_u32(&kv, "general.alignment", 1);
    tspec one = {"x", 1, {2}, SOTTO_DTYPE_I8, 0};
    fspec f1 = {0, 1, -1, -1, &kv, 1, &one, 1};
    size_t n;
    uint8_t *p = build(&f1, &n);
    sotto_gguf *g = OPEN_OK(p, n);
    uint64_t start = sotto_gguf_data_offset(g);
    sotto_gguf_close(g);
    free(p);
    one.dtype = SOTTO_DTYPE_F32;
    one.offset = (4 - start % 4) % 4 + 1;
    SPEC_FAIL(&f1, SOTTO_ERR_FORMAT, "is not aligned to its 4-byte elements");
    b_free(&kv);
}

/* ---- values ----------------------------------------------------------------------------- */

static void test_getters(void)
{
    size_t n;
    uint8_t *p = build_rich(&n);
    sotto_gguf *g = OPEN_OK(p, n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL(sotto_gguf_alignment(g), 64);
    sotto_status st;
    int64_t i64;
    int32_t i32;
    float f;
    double d;
    int bv;
    const char *s;

    CU_ASSERT_EQUAL(sotto_gguf_get_i64(g, "r.u8", &i64, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(i64, 200);
    CU_ASSERT_EQUAL(sotto_gguf_get_i64(g, "r.i8", &i64, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(i64, -100);
    CU_ASSERT_EQUAL(sotto_gguf_get_i32(g, "r.u16", &i32, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(i32, 60000);
    CU_ASSERT_EQUAL(sotto_gguf_get_i32(g, "r.i16", &i32, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(i32, -30000);
    CU_ASSERT_EQUAL(sotto_gguf_get_i64(g, "r.u32", &i64, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(i64, 4000000000ll);
    CU_ASSERT_EQUAL(sotto_gguf_get_i32(g, "r.u32", &i32, &st), SOTTO_ERR_MODEL);
    CU_ASSERT_STRING_EQUAL(st.message, "key 'r.u32' = 4000000000 does not fit int32");
    CU_ASSERT_EQUAL(sotto_gguf_get_i32(g, "r.i32", &i32, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(i32, -2000000000);
    CU_ASSERT_EQUAL(sotto_gguf_get_i64(g, "r.u64", &i64, &st), SOTTO_ERR_MODEL);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "does not fit int64"));
    CU_ASSERT_EQUAL(sotto_gguf_get_i32(g, "r.u64small", &i32, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(i32, 7);
    CU_ASSERT_EQUAL(sotto_gguf_get_i64(g, "r.i64", &i64, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(i64, -(1ll << 62));
    CU_ASSERT_EQUAL(sotto_gguf_get_i64(g, "r.f32", &i64, &st), SOTTO_ERR_MODEL);
    CU_ASSERT_STRING_EQUAL(st.message, "key 'r.f32' is float32, expected an integer");
    CU_ASSERT_EQUAL(sotto_gguf_get_i64(g, "r.bool", &i64, &st), SOTTO_ERR_MODEL);

    CU_ASSERT_EQUAL(sotto_gguf_get_f32(g, "r.f32", &f, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(f, 0.15625f);
    CU_ASSERT_EQUAL(sotto_gguf_get_f32(g, "r.i8", &f, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(f, -100.0f);
    CU_ASSERT_EQUAL(sotto_gguf_get_f64(g, "r.f64", &d, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(d, 1e300);
    CU_ASSERT_EQUAL(sotto_gguf_get_f64(g, "r.u64", &d, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(d, 9223372036854775813.0);
    CU_ASSERT_EQUAL(sotto_gguf_get_f32(g, "r.f64", &f, &st), SOTTO_ERR_MODEL);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "does not fit float32"));
    CU_ASSERT_EQUAL(sotto_gguf_get_f32(g, "r.str", &f, &st), SOTTO_ERR_MODEL);
    CU_ASSERT_STRING_EQUAL(st.message, "key 'r.str' is string, expected a number");

    CU_ASSERT_EQUAL(sotto_gguf_get_bool(g, "r.bool", &bv, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(bv, 1);
    CU_ASSERT_EQUAL(sotto_gguf_get_bool(g, "r.u8", &bv, &st), SOTTO_ERR_MODEL);
    CU_ASSERT_EQUAL(sotto_gguf_get_str(g, "r.str", &s, &st), SOTTO_OK);
    CU_ASSERT_STRING_EQUAL(s, "h\xc3\xa9llo \"q\"\n");
    CU_ASSERT_EQUAL(sotto_gguf_get_str(g, "r.i32", &s, &st), SOTTO_ERR_MODEL);
    CU_ASSERT_STRING_EQUAL(st.message, "key 'r.i32' is int32, expected string");

    CU_ASSERT_EQUAL(sotto_gguf_get_i32(g, "r.missing", &i32, &st), SOTTO_ERR_MODEL);
    CU_ASSERT_STRING_EQUAL(st.message, "missing key 'r.missing'");
    CU_ASSERT_EQUAL(sotto_gguf_get_str(g, "r.missing", &s, &st), SOTTO_ERR_MODEL);
    CU_ASSERT_EQUAL(sotto_gguf_get_i32_or(g, "r.missing", 5, &i32, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(i32, 5);
    CU_ASSERT_EQUAL(sotto_gguf_get_i32_or(g, "r.i16", 5, &i32, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(i32, -30000);
    CU_ASSERT_EQUAL(sotto_gguf_get_i32_or(g, "r.str", 5, &i32, &st), SOTTO_ERR_MODEL);
    CU_ASSERT_EQUAL(sotto_gguf_get_f32_or(g, "r.missing", 2.5f, &f, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(f, 2.5f);
    CU_ASSERT_EQUAL(sotto_gguf_get_f32_or(g, "r.bool", 2.5f, &f, &st), SOTTO_ERR_MODEL);
    CU_ASSERT_EQUAL(sotto_gguf_get_str_or(g, "r.missing", "dflt", &s, &st), SOTTO_OK);
    CU_ASSERT_STRING_EQUAL(s, "dflt");
    CU_ASSERT_EQUAL(sotto_gguf_get_str_or(g, "general.architecture", "dflt", &s, &st), SOTTO_OK);
    CU_ASSERT_STRING_EQUAL(s, "rich");
    CU_ASSERT_EQUAL(sotto_gguf_get_str_or(g, "r.u8", "dflt", &s, &st), SOTTO_ERR_MODEL);

    int64_t ai[32];
    float af[32];
    size_t cnt = 99;
    CU_ASSERT_EQUAL(sotto_gguf_get_arr_i64(g, "r.arr_i32", ai, 32, &cnt, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(cnt, 20);
    CU_ASSERT_EQUAL(ai[0], -10);
    CU_ASSERT_EQUAL(ai[19], 9);
    CU_ASSERT_EQUAL(sotto_gguf_get_arr_i64(g, "r.arr_i32", ai, 19, &cnt, &st), SOTTO_ERR_MODEL);
    CU_ASSERT_STRING_EQUAL(st.message, "key 'r.arr_i32' has 20 elements, at most 19 expected");
    CU_ASSERT_EQUAL(cnt, 0);
    CU_ASSERT_EQUAL(sotto_gguf_get_arr_f32(g, "r.arr_i32", af, 32, &cnt, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(af[1], -9.0f);
    CU_ASSERT_EQUAL(sotto_gguf_get_arr_f32(g, "r.arr_f32", af, 32, &cnt, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(cnt, 3);
    CU_ASSERT_EQUAL(af[0], 0.5f);
    CU_ASSERT_EQUAL(af[1], -0.25f);
    CU_ASSERT_EQUAL(af[2], 1024.0f);
    CU_ASSERT_EQUAL(sotto_gguf_get_arr_i64(g, "r.arr_f32", ai, 32, &cnt, &st), SOTTO_ERR_MODEL);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "array of float32, expected integers"));
    CU_ASSERT_EQUAL(sotto_gguf_get_arr_i64(g, "r.arr_u64", ai, 32, &cnt, &st), SOTTO_ERR_MODEL);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "element 1 = 18446744073709551615"));
    CU_ASSERT_EQUAL(sotto_gguf_get_arr_f32(g, "r.arr_u64", af, 32, &cnt, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_gguf_get_arr_f32(g, "r.arr_f64", af, 32, &cnt, &st), SOTTO_ERR_MODEL);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "element 0"));
    CU_ASSERT_EQUAL(sotto_gguf_get_arr_f32(g, "r.arr_str", af, 32, &cnt, &st), SOTTO_ERR_MODEL);
    CU_ASSERT_EQUAL(sotto_gguf_get_arr_i64(g, "r.i32", ai, 32, &cnt, &st), SOTTO_ERR_MODEL);
    CU_ASSERT_EQUAL(sotto_gguf_get_arr_i64(g, "r.arr_empty", ai, 0, &cnt, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(cnt, 0);

    const sotto_gguf_kv *kv = sotto_gguf_find_kv(g, "r.arr_str");
    CU_ASSERT_PTR_NOT_NULL_FATAL(kv);
    CU_ASSERT_EQUAL(kv->type, SOTTO_GGUF_ARRAY);
    CU_ASSERT_EQUAL(kv->arr_type, SOTTO_GGUF_STRING);
    CU_ASSERT_EQUAL(kv->arr_n, 3);
    const sotto_gguf_str *strs = kv->v.arr;
    CU_ASSERT_STRING_EQUAL(strs[1].data, "bc");
    CU_ASSERT_EQUAL(strs[2].len, 0);
    CU_ASSERT_STRING_EQUAL(strs[2].data, "");

    /* tensors of every dtype convert by value */
    float v[8];
    const char *names[] = {"x.f32", "x.f16", "x.bf16", "x.i8", "x.i16", "x.i32", "x.i64", "x.f64"};
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(names); i++) {
        const sotto_gguf_tensor *t = sotto_gguf_find_tensor(g, names[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(t);
        CU_ASSERT_EQUAL((uintptr_t)t->data % 64, 0);
        CU_ASSERT_EQUAL(sotto_gguf_tensor_to_f32(t, v), SOTTO_OK);
        for (int64_t e = 0; e < t->n_elems; e++)
            CU_ASSERT_EQUAL(v[e], (float)(e + 1));
    }
    const sotto_gguf_tensor *t4 = sotto_gguf_find_tensor(g, "x.f32");
    CU_ASSERT_EQUAL(t4->shape[0], 1);
    CU_ASSERT_EQUAL(t4->shape[1], 3);
    CU_ASSERT_EQUAL(t4->shape[2], 1);
    CU_ASSERT_EQUAL(t4->shape[3], 2);
    sotto_gguf_close(g);
    free(p);
}

/* Strings longer than the reader's 64 KB pool blocks get blocks of their own; the strings
 * around them must survive. */
static void test_long_strings(void)
{
    size_t big = 100000;
    char *s = malloc(big + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    for (size_t i = 0; i < big; i++) s[i] = (char)('a' + i % 26);
    s[big] = '\0';
    buf kv = {0};
    kv_str(&kv, "first", "1");
    kv_str(&kv, "big", s);
    kv_str(&kv, "after", "2");
    kv_str(&kv, "big2", s);
    fspec f = {0, 0, -1, -1, &kv, 4, small_tensors, 2};
    size_t n;
    uint8_t *p = build(&f, &n);
    sotto_gguf *g = OPEN_OK(p, n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    const char *v;
    CU_ASSERT_EQUAL(sotto_gguf_get_str(g, "first", &v, NULL), SOTTO_OK);
    CU_ASSERT_STRING_EQUAL(v, "1");
    CU_ASSERT_EQUAL(sotto_gguf_get_str(g, "big", &v, NULL), SOTTO_OK);
    CU_ASSERT_STRING_EQUAL(v, s);
    CU_ASSERT_EQUAL(sotto_gguf_get_str(g, "after", &v, NULL), SOTTO_OK);
    CU_ASSERT_STRING_EQUAL(v, "2");
    CU_ASSERT_EQUAL(sotto_gguf_get_str(g, "big2", &v, NULL), SOTTO_OK);
    CU_ASSERT_STRING_EQUAL(v, s);
    char text[64];
    sotto_gguf_kv_format(sotto_gguf_find_kv(g, "big"), text, sizeof text);
    CU_ASSERT_EQUAL(strlen(text), sizeof text - 1);
    CU_ASSERT_EQUAL(strncmp(text, "\"abcdef", 7), 0);
    CU_ASSERT_PTR_NOT_NULL(sotto_gguf_find_tensor(g, "w"));
    sotto_gguf_close(g);
    free(p);
    b_free(&kv);
    free(s);
}

static void check_format(const sotto_gguf *g, const char *key, const char *want)
{
    char out[512];
    const sotto_gguf_kv *kv = sotto_gguf_find_kv(g, key);
    CU_ASSERT_PTR_NOT_NULL_FATAL(kv);
    CU_ASSERT_PTR_EQUAL(sotto_gguf_kv_format(kv, out, sizeof out), out);
    if (strcmp(out, want)) {
        fprintf(stderr, "format of %s: got <%s> want <%s>\n", key, out, want);
        CU_FAIL("kv_format");
    }
}

static void test_kv_format(void)
{
    size_t n;
    uint8_t *p = build_rich(&n);
    sotto_gguf *g = OPEN_OK(p, n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    check_format(g, "r.u8", "200");
    check_format(g, "r.i8", "-100");
    check_format(g, "r.u16", "60000");
    check_format(g, "r.i16", "-30000");
    check_format(g, "r.u32", "4000000000");
    check_format(g, "r.i32", "-2000000000");
    check_format(g, "r.f32", "0.15625");
    check_format(g, "r.bool", "true");
    check_format(g, "r.str", "\"h\xc3\xa9llo \\\"q\\\"\\x0a\"");
    check_format(g, "r.u64", "9223372036854775813");
    check_format(g, "r.i64", "-4611686018427387904");
    check_format(g, "r.f64", "1e+300");
    check_format(g, "r.arr_i32", "[-10, -9, -8, -7, -6, -5, -4, -3, ... (20 int32)]");
    check_format(g, "r.arr_f32", "[0.5, -0.25, 1024]");
    check_format(g, "r.arr_u64", "[0, 18446744073709551615]");
    check_format(g, "r.arr_f64", "[1e+300, -2.5]");
    check_format(g, "r.arr_bool", "[true, false]");
    check_format(g, "r.arr_str", "[\"a\", \"bc\", \"\"]");
    check_format(g, "r.arr_empty", "[]");
    check_format(g, "general.alignment", "64");

    char small[6] = "xxxxx";
    const sotto_gguf_kv *kv = sotto_gguf_find_kv(g, "r.arr_i32");
    sotto_gguf_kv_format(kv, small, sizeof small);
    CU_ASSERT_STRING_EQUAL(small, "[-10,");
    char one[1] = {'x'};
    sotto_gguf_kv_format(kv, one, 1);
    CU_ASSERT_EQUAL(one[0], '\0');
    char none[1] = {'x'};
    sotto_gguf_kv_format(kv, none, 0);
    CU_ASSERT_EQUAL(none[0], 'x');
    CU_ASSERT_STRING_EQUAL(sotto_gguf_type_name(SOTTO_GGUF_FLOAT64), "float64");
    CU_ASSERT_STRING_EQUAL(sotto_gguf_type_name(13), "?");
    CU_ASSERT_STRING_EQUAL(sotto_dtype_name(SOTTO_DTYPE_BF16), "bf16");
    CU_ASSERT_STRING_EQUAL(sotto_dtype_name(2), "?");
    CU_ASSERT_EQUAL(sotto_dtype_size(SOTTO_DTYPE_I64), 8);
    CU_ASSERT_EQUAL(sotto_dtype_size(2), 0);
    sotto_gguf_close(g);
    free(p);
}

static void expect_check(const sotto_gguf *g, const char *name, int dtype, int n_dims,
                         const int64_t *shape, const char *want)
{
    sotto_status st = {0, ""};
    const sotto_gguf_tensor *t = (const sotto_gguf_tensor *)&st;
    int rc = sotto_gguf_tensor_check(g, name, dtype, n_dims, shape, &t, &st);
    if (!want) {
        CU_ASSERT_EQUAL(rc, SOTTO_OK);
        CU_ASSERT_PTR_EQUAL(t, sotto_gguf_find_tensor(g, name));
        return;
    }
    CU_ASSERT_EQUAL(rc, SOTTO_ERR_MODEL);
    CU_ASSERT_PTR_NULL(t);
    if (strcmp(st.message, want)) {
        fprintf(stderr, "tensor_check: got <%s> want <%s>\n", st.message, want);
        CU_FAIL("tensor_check message");
    }
}

static void test_tensor_check(void)
{
    buf kv = {0};
    static const tspec t[] = {
        {"head.out.weight", 2, {256, 1026}, SOTTO_DTYPE_F32, AUTO},
        {"head.out.bias", 1, {1026}, SOTTO_DTYPE_F16, AUTO},
        {"idx", 1, {4}, SOTTO_DTYPE_I32, AUTO},
    };
    fspec f = {0, 0, -1, -1, &kv, 0, t, 3};
    size_t n;
    uint8_t *p = build(&f, &n);
    sotto_gguf *g = OPEN_OK(p, n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    const int64_t want[] = {1026, 512}, ok[] = {1026, 256}, any[] = {-1, 256},
                  three[] = {1026, 256, 1};
    expect_check(g, "head.out.weight", SOTTO_DTYPE_F32, 2, ok, NULL);
    expect_check(g, "head.out.weight", -1, 2, any, NULL);
    expect_check(g, "head.out.weight", -1, 0, NULL, NULL);
    expect_check(g, "head.out.weight", SOTTO_DTYPE_F32, 2, NULL, NULL);
    expect_check(g, "head.out.weight", SOTTO_DTYPE_F32, 2, want,
                 "tensor 'head.out.weight': shape [1026, 256], expected [1026, 512]");
    expect_check(g, "head.out.weight", SOTTO_DTYPE_F32, 3, three,
                 "tensor 'head.out.weight': shape [1026, 256], expected [1026, 256, 1]");
    expect_check(g, "head.out.weight", SOTTO_DTYPE_F32, 1, NULL,
                 "tensor 'head.out.weight': shape [1026, 256], expected 1 dims");
    expect_check(g, "head.out.weight", SOTTO_DTYPE_F16, 2, ok,
                 "tensor 'head.out.weight': dtype f32, expected f16");
    expect_check(g, "head.out.bias", -1, 1, (const int64_t[]){1026}, NULL);
    expect_check(g, "head.out.bias", -1, 1, (const int64_t[]){-1}, NULL);
    expect_check(g, "head.out.bias", SOTTO_DTYPE_F32, 1, (const int64_t[]){1026},
                 "tensor 'head.out.bias': dtype f16, expected f32");
    expect_check(g, "head.out.bias", SOTTO_DTYPE_F16, 2, (const int64_t[]){-1, 1026},
                 "tensor 'head.out.bias': shape [1026], expected [*, 1026]");
    expect_check(g, "idx", -1, 1, NULL, "tensor 'idx': dtype i32, expected f32, f16 or bf16");
    expect_check(g, "idx", SOTTO_DTYPE_I32, 1, (const int64_t[]){4}, NULL);
    expect_check(g, "head.out.weigh", -1, 2, ok, "missing tensor 'head.out.weigh'");
    sotto_status st;
    CU_ASSERT_EQUAL(sotto_gguf_tensor_check(NULL, "x", -1, 0, NULL, NULL, &st),
                    SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_gguf_tensor_check(g, NULL, -1, 0, NULL, NULL, &st),
                    SOTTO_ERR_INVALID_ARG);
    sotto_gguf_close(g);
    free(p);
    b_free(&kv);
}

/* ---- f16 / bf16 ------------------------------------------------------------------------- */

static uint32_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bitsf(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void test_f16(void)
{
    /* known values */
    CU_ASSERT_EQUAL(sotto_f16_to_f32(0x3c00), 1.0f);
    CU_ASSERT_EQUAL(sotto_f16_to_f32(0xc000), -2.0f);
    CU_ASSERT_EQUAL(sotto_f16_to_f32(0x7bff), 65504.0f);
    CU_ASSERT_EQUAL(sotto_f16_to_f32(0x0001), ldexpf(1.0f, -24));    /* smallest subnormal */
    CU_ASSERT_EQUAL(sotto_f16_to_f32(0x03ff), ldexpf(1023.0f, -24)); /* largest subnormal */
    CU_ASSERT_EQUAL(sotto_f16_to_f32(0x0400), ldexpf(1.0f, -14));    /* smallest normal */
    CU_ASSERT_EQUAL(fbits(sotto_f16_to_f32(0x8000)), 0x80000000u);   /* -0 */
    CU_ASSERT_TRUE(isinf(sotto_f16_to_f32(0x7c00)) && sotto_f16_to_f32(0x7c00) > 0);
    CU_ASSERT_TRUE(isinf(sotto_f16_to_f32(0xfc00)) && sotto_f16_to_f32(0xfc00) < 0);
    CU_ASSERT_TRUE(isnan(sotto_f16_to_f32(0x7e00)));
    CU_ASSERT_TRUE(isnan(sotto_f16_to_f32(0x7c01))); /* signalling NaN stays NaN */

    CU_ASSERT_EQUAL(sotto_f32_to_f16(1.0f), 0x3c00);
    CU_ASSERT_EQUAL(sotto_f32_to_f16(65504.0f), 0x7bff);
    CU_ASSERT_EQUAL(sotto_f32_to_f16(65519.996f), 0x7bff);
    CU_ASSERT_EQUAL(sotto_f32_to_f16(65520.0f), 0x7c00); /* tie rounds to even: inf */
    CU_ASSERT_EQUAL(sotto_f32_to_f16(1e10f), 0x7c00);
    CU_ASSERT_EQUAL(sotto_f32_to_f16(-1e10f), 0xfc00);
    CU_ASSERT_EQUAL(sotto_f32_to_f16(INFINITY), 0x7c00);
    CU_ASSERT_EQUAL(sotto_f32_to_f16(-INFINITY), 0xfc00);
    CU_ASSERT_EQUAL(sotto_f32_to_f16(-0.0f), 0x8000);
    CU_ASSERT_EQUAL(sotto_f32_to_f16(ldexpf(1.0f, -25)), 0x0000);                /* tie to 0 */
    CU_ASSERT_EQUAL(sotto_f32_to_f16(nextafterf(ldexpf(1.0f, -25), 1)), 0x0001); /* above */
    CU_ASSERT_EQUAL(sotto_f32_to_f16(ldexpf(3.0f, -25)), 0x0002); /* 1.5 ulp: tie to even 2 */
    CU_ASSERT_EQUAL(sotto_f32_to_f16(-ldexpf(1.0f, -24)), 0x8001);
    CU_ASSERT_EQUAL(sotto_f32_to_f16(1e-30f), 0x0000);
    CU_ASSERT_EQUAL(sotto_f32_to_f16(bitsf(1)), 0x0000);             /* f32 subnormal */
    CU_ASSERT_EQUAL(sotto_f32_to_f16(ldexpf(2047.0f, -25)), 0x0400); /* rounds up to normal */
    uint16_t qn = sotto_f32_to_f16(NAN);
    CU_ASSERT_TRUE((qn & 0x7c00) == 0x7c00 && (qn & 0x3ff) != 0);
    uint16_t sn = sotto_f32_to_f16(bitsf(0x7f800001u)); /* payload only in low bits */
    CU_ASSERT_TRUE((sn & 0x7c00) == 0x7c00 && (sn & 0x3ff) != 0);

    /* exhaustive: every half round-trips; every midpoint between neighbours ties to even and
     * the floats just beside it round to the nearer neighbour */
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000u; h++) {
        float f = sotto_f16_to_f32((uint16_t)h);
        uint16_t back = sotto_f32_to_f16(f);
        if (isnan(f)) {
            if ((back & 0x7fff) <= 0x7c00 || (back & 0x8000) != (h & 0x8000)) bad++;
            continue;
        }
        if (back != h) bad++;
        uint32_t mag = h & 0x7fffu;
        if (mag >= 0x7bff) continue; /* the next one up is inf / NaN */
        float next = sotto_f16_to_f32((uint16_t)(h + 1));
        float mid = (f + next) / 2; /* exact: halves have 11 significant bits */
        uint16_t even = (h & 1u) ? (uint16_t)(h + 1) : (uint16_t)h;
        if (sotto_f32_to_f16(mid) != even) bad++;
        if (sotto_f32_to_f16(nextafterf(mid, f)) != h) bad++;
        if (sotto_f32_to_f16(nextafterf(mid, next)) != (uint16_t)(h + 1)) bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    if (bad) fprintf(stderr, "f16: %d mismatches\n", bad);
}

/* The array conversions (F16C where the CPU has it) equal the scalar ones bit for bit: every
 * half widened; narrowing of every half's value, the midpoints and their neighbours, the
 * float specials, and a million random bit patterns; odd lengths and offsets for the tails. */
static void test_f16_arrays(void)
{
    const size_t nh = 0x10000;
    uint16_t *h = malloc(nh * sizeof *h), *h2 = malloc(4 * nh * sizeof *h2);
    float *f = malloc(4 * nh * sizeof *f);
    CU_ASSERT_FATAL(h && h2 && f);
    for (size_t i = 0; i < nh; i++)
        h[i] = (uint16_t)i;
    sotto_f16_to_f32_n(h, f, nh);
    int bad = 0;
    for (size_t i = 0; i < nh; i++)
        if (fbits(f[i]) != fbits(sotto_f16_to_f32(h[i]))) bad++;
    CU_ASSERT_EQUAL(bad, 0);
    /* narrowing: values, midpoints to the next half, and the floats beside each midpoint */
    size_t n = 0;
    for (uint32_t i = 0; i < 0x10000u; i++) {
        const float v = sotto_f16_to_f32((uint16_t)i);
        f[n++] = v;
        if ((i & 0x7fffu) < 0x7bffu) {
            const float mid = (v + sotto_f16_to_f32((uint16_t)(i + 1))) / 2;
            f[n++] = mid;
            f[n++] = nextafterf(mid, 0.0f);
            f[n++] = nextafterf(mid, (i & 0x8000u) ? -INFINITY : INFINITY);
        }
    }
    f[n++] = 65520.0f;
    f[n++] = 65519.996f;
    f[n++] = 1e10f;
    f[n++] = -INFINITY;
    f[n++] = -0.0f;
    f[n++] = ldexpf(1.0f, -25);
    f[n++] = bitsf(0x80000001u); /* f32 subnormal */
    f[n++] = bitsf(0x7f800001u); /* signalling NaN */
    f[n++] = bitsf(0xffc00000u);
    f[n++] = NAN;
    for (size_t off = 0; off < 3; off++) {
        sotto_f32_to_f16_n(f + off, h2 + off, n - off);
        for (size_t i = off; i < n; i++)
            if (h2[i] != sotto_f32_to_f16(f[i])) bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    uint32_t x = 12345u;
    for (size_t i = 0; i < 4 * nh; i++) {
        x = x * 1664525u + 1013904223u;
        f[i] = bitsf(x ^ (x >> 13));
    }
    for (int rep = 0; rep < 4; rep++) {
        sotto_f32_to_f16_n(f, h2, 4 * nh - (size_t)rep);
        for (size_t i = 0; i + rep < 4 * nh; i++)
            if (h2[i] != sotto_f32_to_f16(f[i])) bad++;
        for (size_t i = 0; i < 4 * nh; i++) {
            x = x * 1664525u + 1013904223u;
            f[i] = bitsf(x ^ (x >> 11));
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    if (bad) fprintf(stderr, "f16 arrays: %d mismatches\n", bad);
    sotto_f16_to_f32_n(h, f, 0); /* empty: nothing to do */
    free(h);
    free(h2);
    free(f);
}

static void test_bf16(void)
{
    CU_ASSERT_EQUAL(sotto_bf16_to_f32(0x3f80), 1.0f);
    CU_ASSERT_EQUAL(sotto_bf16_to_f32(0x0001), bitsf(0x00010000u)); /* subnormal */
    CU_ASSERT_TRUE(isinf(sotto_bf16_to_f32(0xff80)));
    CU_ASSERT_TRUE(isnan(sotto_bf16_to_f32(0x7fc0)));
    CU_ASSERT_EQUAL(sotto_f32_to_bf16(1.0f), 0x3f80);
    CU_ASSERT_EQUAL(sotto_f32_to_bf16(bitsf(0x3f808000u)), 0x3f80); /* tie to even */
    CU_ASSERT_EQUAL(sotto_f32_to_bf16(bitsf(0x3f818000u)), 0x3f82); /* tie to even */
    CU_ASSERT_EQUAL(sotto_f32_to_bf16(bitsf(0x3f808001u)), 0x3f81);
    CU_ASSERT_EQUAL(sotto_f32_to_bf16(bitsf(0x7f7fffffu)), 0x7f80); /* FLT_MAX rounds to inf */
    CU_ASSERT_EQUAL(sotto_f32_to_bf16(INFINITY), 0x7f80);
    uint16_t n = sotto_f32_to_bf16(bitsf(0x7f800001u));
    CU_ASSERT_TRUE((n & 0x7f80) == 0x7f80 && (n & 0x7f) != 0);
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000u; h++) {
        float f = sotto_bf16_to_f32((uint16_t)h);
        if (fbits(f) != h << 16) bad++;
        if (!isnan(f) && sotto_f32_to_bf16(f) != h) bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
}

/* ---- f32 views of tensors (borrowed or converted into a pool) ------------------------- */

static void test_f32_view(void)
{
    sotto_gguf *g = tu_golden_open("gguf/sample.gguf");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    sotto_status st;
    float pool_mem[30];
    sotto_f32_pool pool = {pool_mem, 0, 30};
    const float *v = NULL;
    const int64_t s2[2] = {2, 3}, s3[3] = {2, 3, 4}, bad[2] = {3, 2};
    /* f32: the file's own bytes, nothing taken from the pool */
    CU_ASSERT_EQUAL(sotto_gguf_tensor_f32(g, "t.f32_2d", 2, s2, &pool, &v, &st), SOTTO_OK);
    CU_ASSERT_PTR_EQUAL(v, sotto_gguf_find_tensor(g, "t.f32_2d")->data);
    CU_ASSERT_EQUAL(pool.used, 0);
    /* f16: converted into the pool, equal to the plain conversion */
    float ref[24];
    CU_ASSERT_EQUAL(sotto_gguf_tensor_to_f32(sotto_gguf_find_tensor(g, "t.f16_3d"), ref), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_gguf_tensor_f32(g, "t.f16_3d", 3, s3, &pool, &v, &st), SOTTO_OK);
    CU_ASSERT_PTR_EQUAL(v, pool_mem);
    CU_ASSERT_EQUAL(pool.used, 24);
    CU_ASSERT_EQUAL(memcmp(v, ref, sizeof ref), 0);
    /* a second f16 tensor no longer fits: an internal error naming it, pool unchanged */
    CU_ASSERT_EQUAL(sotto_gguf_tensor_f32(g, "t.f16_3d", 3, s3, &pool, &v, &st),
                    SOTTO_ERR_INTERNAL);
    TU_ASSERT_HAS(st.message, "t.f16_3d");
    CU_ASSERT_EQUAL(pool.used, 24);
    /* the shape and name checks of sotto_gguf_tensor_check come first */
    CU_ASSERT_EQUAL(sotto_gguf_tensor_f32(g, "t.f32_2d", 2, bad, &pool, &v, &st), SOTTO_ERR_MODEL);
    CU_ASSERT_EQUAL(sotto_gguf_tensor_f32(g, "t.missing", 1, NULL, &pool, &v, &st),
                    SOTTO_ERR_MODEL);
    sotto_gguf_close(g);
}

/* ---- a file written by Python's gguf package ------------------------------------------- */

static void test_python_sample(void)
{
    sotto_gguf *g = tu_golden_open("gguf/sample.gguf");
    if (!g) return;
    sotto_status st;
    const char *s;
    int64_t i64;
    int32_t i32;
    float f;
    double d;
    int b;
    CU_ASSERT_EQUAL(sotto_gguf_version(g), 3);
    CU_ASSERT_EQUAL(sotto_gguf_alignment(g), 32);
    CU_ASSERT_EQUAL(sotto_gguf_get_str(g, "general.architecture", &s, &st), SOTTO_OK);
    CU_ASSERT_STRING_EQUAL(s, "sotto-golden");
    CU_ASSERT_EQUAL(sotto_gguf_get_str(g, "general.name", &s, &st), SOTTO_OK);
    CU_ASSERT_STRING_EQUAL(s, "gguf-sample");
    CU_ASSERT_EQUAL(sotto_gguf_get_i32(g, "sample.u8", &i32, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(i32, 200);
    CU_ASSERT_EQUAL(sotto_gguf_get_i32(g, "sample.i8", &i32, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(i32, -100);
    CU_ASSERT_EQUAL(sotto_gguf_get_i32(g, "sample.u16", &i32, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(i32, 60000);
    CU_ASSERT_EQUAL(sotto_gguf_get_i32(g, "sample.i16", &i32, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(i32, -30000);
    CU_ASSERT_EQUAL(sotto_gguf_get_i64(g, "sample.u32", &i64, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(i64, 4000000000ll);
    CU_ASSERT_EQUAL(sotto_gguf_get_i32(g, "sample.i32", &i32, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(i32, -2000000000);
    CU_ASSERT_EQUAL(sotto_gguf_get_f32(g, "sample.f32", &f, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(f, 0.15625f);
    CU_ASSERT_EQUAL(sotto_gguf_get_bool(g, "sample.bool", &b, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(b, 1);
    CU_ASSERT_EQUAL(sotto_gguf_get_str(g, "sample.str", &s, &st), SOTTO_OK);
    CU_ASSERT_STRING_EQUAL(s, "h\xc3\xa9llo \"world\"");
    const sotto_gguf_kv *kv = sotto_gguf_find_kv(g, "sample.u64");
    CU_ASSERT_PTR_NOT_NULL_FATAL(kv);
    CU_ASSERT_EQUAL(kv->type, SOTTO_GGUF_UINT64);
    CU_ASSERT_EQUAL(kv->v.u64, (1ull << 63) + 5);
    CU_ASSERT_EQUAL(sotto_gguf_get_i64(g, "sample.i64", &i64, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(i64, -(1ll << 62));
    CU_ASSERT_EQUAL(sotto_gguf_get_f64(g, "sample.f64", &d, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(d, -1.0e-300);

    int64_t ai[32];
    float af[8];
    size_t n;
    CU_ASSERT_EQUAL(sotto_gguf_get_arr_i64(g, "sample.arr_u8", ai, 32, &n, &st), SOTTO_OK);
    CU_ASSERT_TRUE(n == 3 && ai[0] == 1 && ai[1] == 2 && ai[2] == 255);
    CU_ASSERT_EQUAL(sotto_gguf_get_arr_i64(g, "sample.arr_i16", ai, 32, &n, &st), SOTTO_OK);
    CU_ASSERT_TRUE(n == 3 && ai[0] == -1 && ai[1] == 300 && ai[2] == -32768);
    CU_ASSERT_EQUAL(sotto_gguf_get_arr_i64(g, "sample.arr_i32", ai, 32, &n, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(n, 20);
    for (int i = 0; i < 20; i++)
        CU_ASSERT_EQUAL(ai[i], i - 10);
    kv = sotto_gguf_find_kv(g, "sample.arr_u64");
    CU_ASSERT_PTR_NOT_NULL_FATAL(kv);
    CU_ASSERT_EQUAL(kv->arr_type, SOTTO_GGUF_UINT64);
    uint64_t u64s[2];
    memcpy(u64s, kv->v.arr, sizeof u64s);
    CU_ASSERT_TRUE(kv->arr_n == 2 && u64s[0] == 0 && u64s[1] == UINT64_MAX);
    CU_ASSERT_EQUAL(sotto_gguf_get_arr_f32(g, "sample.arr_f32", af, 8, &n, &st), SOTTO_OK);
    CU_ASSERT_TRUE(n == 3 && af[0] == 0.5f && af[1] == -0.25f && af[2] == 1024.0f);
    kv = sotto_gguf_find_kv(g, "sample.arr_f64");
    CU_ASSERT_PTR_NOT_NULL_FATAL(kv);
    double f64s[2];
    memcpy(f64s, kv->v.arr, sizeof f64s);
    CU_ASSERT_TRUE(kv->arr_n == 2 && f64s[0] == 1.0e100 && f64s[1] == -2.5);
    kv = sotto_gguf_find_kv(g, "sample.arr_bool");
    CU_ASSERT_PTR_NOT_NULL_FATAL(kv);
    const uint8_t *bools = kv->v.arr;
    CU_ASSERT_TRUE(kv->arr_type == SOTTO_GGUF_BOOL && kv->arr_n == 3 && bools[0] == 1 &&
                   bools[1] == 0 && bools[2] == 1);
    kv = sotto_gguf_find_kv(g, "sample.arr_str");
    CU_ASSERT_PTR_NOT_NULL_FATAL(kv);
    const sotto_gguf_str *strs = kv->v.arr;
    CU_ASSERT_TRUE(kv->arr_type == SOTTO_GGUF_STRING && kv->arr_n == 3);
    CU_ASSERT_STRING_EQUAL(strs[0].data, "a");
    CU_ASSERT_STRING_EQUAL(strs[1].data, "bc");
    CU_ASSERT_STRING_EQUAL(strs[2].data, "\xc3\xbc");

    CU_ASSERT_EQUAL(sotto_gguf_tensor_count(g), 5);
    const sotto_gguf_tensor *t;
    float v[24];
    CU_ASSERT_EQUAL(sotto_gguf_tensor_check(g, "t.f32_2d", SOTTO_DTYPE_F32, 2,
                                            (const int64_t[]){2, 3}, &t, &st),
                    SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_gguf_tensor_to_f32(t, v), SOTTO_OK);
    for (int i = 0; i < 6; i++)
        CU_ASSERT_EQUAL(v[i], i * 0.5f - 1.0f);
    CU_ASSERT_EQUAL(sotto_gguf_tensor_check(g, "t.f16_3d", SOTTO_DTYPE_F16, 3,
                                            (const int64_t[]){2, 3, 4}, &t, &st),
                    SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_gguf_tensor_to_f32(t, v), SOTTO_OK);
    for (int i = 0; i < 24; i++)
        CU_ASSERT_EQUAL(v[i], (i - 12) * 0.25f);
    CU_ASSERT_EQUAL(sotto_gguf_tensor_check(g, "t.f16_special", SOTTO_DTYPE_F16, 4,
                                            (const int64_t[]){1, 2, 1, 3}, &t, &st),
                    SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_gguf_tensor_to_f32(t, v), SOTTO_OK);
    CU_ASSERT_EQUAL(v[0], ldexpf(1.0f, -24));
    CU_ASSERT_EQUAL(v[1], -ldexpf(1.0f, -14));
    CU_ASSERT_EQUAL(v[2], 65504.0f);
    CU_ASSERT_TRUE(isinf(v[3]) && v[3] > 0);
    CU_ASSERT_EQUAL(fbits(v[4]), 0x80000000u);
    CU_ASSERT_TRUE(isnan(v[5]));
    CU_ASSERT_EQUAL(
        sotto_gguf_tensor_check(g, "t.i32", SOTTO_DTYPE_I32, 1, (const int64_t[]){4}, &t, &st),
        SOTTO_OK);
    int32_t iv[4];
    memcpy(iv, t->data, sizeof iv);
    CU_ASSERT_TRUE(iv[0] == 7 && iv[1] == -8 && iv[2] == INT32_MAX && iv[3] == INT32_MIN);
    CU_ASSERT_EQUAL(sotto_gguf_tensor_check(g, "t.f32_1d", -1, 1, (const int64_t[]){4}, &t, &st),
                    SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_gguf_tensor_to_f32(t, v), SOTTO_OK);
    CU_ASSERT_TRUE(v[0] == 1.0f && v[1] == -2.0f && v[2] == 0.125f && v[3] == 3.0e38f);
    for (int64_t i = 0; i < sotto_gguf_tensor_count(g); i++)
        CU_ASSERT_EQUAL((uintptr_t)sotto_gguf_tensor_at(g, i)->data % 32, 0);
    sotto_gguf_close(g);
}

/* ---- sotto_model ------------------------------------------------------------------------ */

static char *write_temp(const uint8_t *p, size_t n)
{
    static char path[512];
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/sotto_test_gguf_XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) return NULL;
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, p + done, n - done);
        if (w <= 0) break;
        done += (size_t)w;
    }
    close(fd);
    return done == n ? path : NULL;
}

/* The last WARN-or-worse log line (backend selection), and how many came. */
static int g_log_n;
static char g_log_last[256];
static void capture_log(sotto_log_level level, const char *message, void *user)
{
    (void)user;
    if (level > SOTTO_LOG_WARN) return;
    g_log_n++;
    snprintf(g_log_last, sizeof g_log_last, "%s", message);
}

static void test_model_api(void)
{
    sotto_model_params mp = sotto_model_default_params();
    CU_ASSERT_EQUAL(mp.backend, SOTTO_BACKEND_AUTO);
    CU_ASSERT_EQUAL(mp.device, 0);
    CU_ASSERT_EQUAL(mp.n_threads, 1);
    CU_ASSERT_EQUAL(mp.use_mmap, 1);
    CU_ASSERT_EQUAL(mp.cpu_features_mask, ~0u);
    CU_ASSERT_PTR_NULL(mp.allocator);

    size_t n;
    uint8_t *p = build_small(&n);
    sotto_status st;
    sotto_model *m = NULL;
    for (int copy = 0; copy <= 1; copy++) {
        CU_ASSERT_EQUAL_FATAL(sotto_model_load_buffer(p, n, copy, NULL, &m, &st), SOTTO_OK);
        CU_ASSERT_STRING_EQUAL(sotto_model_architecture(m), "test");
        CU_ASSERT_STRING_EQUAL(sotto_model_name(m), "small");
        CU_ASSERT_EQUAL(sotto_model_meta_count(m), 4);
        char val[64];
        CU_ASSERT_STRING_EQUAL(sotto_model_meta(m, 2, val, sizeof val), "test.n");
        CU_ASSERT_STRING_EQUAL(val, "42");
        CU_ASSERT_STRING_EQUAL(sotto_model_meta(m, 0, val, sizeof val), "general.architecture");
        CU_ASSERT_STRING_EQUAL(val, "\"test\"");
        CU_ASSERT_PTR_NOT_NULL(sotto_model_meta(m, 3, NULL, 0));
        CU_ASSERT_PTR_NULL(sotto_model_meta(m, 4, val, sizeof val));
        CU_ASSERT_STRING_EQUAL(val, "");
        CU_ASSERT_PTR_NULL(sotto_model_meta(m, -1, val, sizeof val));
        CU_ASSERT_EQUAL(sotto_model_tensor_count(m), 2);
        sotto_tensor_info ti;
        CU_ASSERT_EQUAL(sotto_model_tensor_info(m, 0, &ti), SOTTO_OK);
        CU_ASSERT_STRING_EQUAL(ti.name, "w");
        CU_ASSERT_STRING_EQUAL(ti.dtype, "f32");
        CU_ASSERT_EQUAL(ti.n_dims, 2);
        CU_ASSERT_TRUE(ti.shape[0] == 2 && ti.shape[1] == 3 && ti.shape[2] == 1);
        CU_ASSERT_EQUAL(ti.n_bytes, 24);
        CU_ASSERT_EQUAL(sotto_model_tensor_info(m, 1, &ti), SOTTO_OK);
        CU_ASSERT_STRING_EQUAL(ti.dtype, "f16");
        CU_ASSERT_EQUAL(sotto_model_tensor_info(m, 2, &ti), SOTTO_ERR_INVALID_ARG);
        CU_ASSERT_EQUAL(sotto_model_tensor_info(m, -1, &ti), SOTTO_ERR_INVALID_ARG);
        CU_ASSERT_EQUAL(sotto_model_tensor_info(m, 0, NULL), SOTTO_ERR_INVALID_ARG);
        CU_ASSERT_EQUAL(m->params.n_threads, 1);
        CU_ASSERT_EQUAL(m->cpu_features, sotto_cpu_features());
        CU_ASSERT_PTR_NULL(m->backend);
        CU_ASSERT_PTR_NULL(m->arch_data);
        sotto_model_free(m);
    }
    sotto_model_free(NULL);
    CU_ASSERT_STRING_EQUAL(sotto_model_architecture(NULL), "");
    CU_ASSERT_STRING_EQUAL(sotto_model_name(NULL), "");
    CU_ASSERT_EQUAL(sotto_model_meta_count(NULL), 0);
    CU_ASSERT_EQUAL(sotto_model_tensor_count(NULL), 0);

    /* from a file, mapped and read, with a CPU feature mask */
    char *path = write_temp(p, n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(path);
    for (int mm = 0; mm <= 1; mm++) {
        mp = sotto_model_default_params();
        mp.use_mmap = mm;
        mp.cpu_features_mask = 0;
        mp.n_threads = 64;
        CU_ASSERT_EQUAL_FATAL(sotto_model_load_file(path, &mp, &m, &st), SOTTO_OK);
        CU_ASSERT_STRING_EQUAL(sotto_model_architecture(m), "test");
        CU_ASSERT_EQUAL(m->cpu_features, 0);
        CU_ASSERT_EQUAL(m->params.use_mmap, mm);
        const sotto_gguf_tensor *t = sotto_gguf_find_tensor(m->gguf, "b");
        float v[3];
        CU_ASSERT_EQUAL(sotto_gguf_tensor_to_f32(t, v), SOTTO_OK);
        CU_ASSERT_EQUAL(v[2], 3.0f);
        sotto_model_free(m);
    }
    unlink(path);
    CU_ASSERT_EQUAL(sotto_model_load_file(path, NULL, &m, &st), SOTTO_ERR_IO);
    CU_ASSERT_PTR_NULL(m);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.message, path));

    /* bad arguments and params */
    CU_ASSERT_EQUAL(sotto_model_load_buffer(p, n, 0, NULL, NULL, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_model_load_buffer(NULL, n, 0, NULL, &m, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_model_load_file(NULL, NULL, &m, &st), SOTTO_ERR_INVALID_ARG);
    static const struct {
        int threads, backend, device;
        const char *msg;
    } bad[] = {
        {0, 0, 0, "params.n_threads = 0, not in 1..64"},
        {65, 0, 0, "params.n_threads = 65"},
        {-3, 0, 0, "n_threads"},
        {1, 3, 0, "params.backend = 3"},
        {1, -1, 0, "params.backend = -1"},
        {1, 0, -1, "params.device = -1"},
    };
    for (size_t i = 0; i < SOTTO_ARRAY_LEN(bad); i++) {
        mp = sotto_model_default_params();
        mp.n_threads = bad[i].threads;
        mp.backend = (sotto_backend_kind)bad[i].backend;
        mp.device = bad[i].device;
        m = (sotto_model *)&mp;
        CU_ASSERT_EQUAL(sotto_model_load_buffer(p, n, 1, &mp, &m, &st), SOTTO_ERR_INVALID_ARG);
        CU_ASSERT_PTR_NULL(m);
        CU_ASSERT_PTR_NOT_NULL(strstr(st.message, bad[i].msg));
        CU_ASSERT_EQUAL(sotto_model_load_file("x.gguf", &mp, &m, &st), SOTTO_ERR_INVALID_ARG);
    }
    for (int v = -1; v <= 3; v += 4) {
        mp = sotto_model_default_params();
        mp.f16_arithmetic = v;
        CU_ASSERT_EQUAL(sotto_model_load_buffer(p, n, 1, &mp, &m, &st), SOTTO_ERR_INVALID_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "params.f16_arithmetic"));
    }

    /* Backend selection: this file's architecture has no CUDA path. An explicit CUDA request
     * needs its device (SOTTO_ERR_DEVICE naming the problem), and where the device exists it
     * runs on the CPU with a warning in the log, never silently (the models with a CUDA path:
     * tests/gpu/test_backend_cuda.c). */
    CU_ASSERT_EQUAL_FATAL(sotto_model_load_buffer(p, n, 1, NULL, &m, &st), SOTTO_OK);
    CU_ASSERT_EQUAL(sotto_model_backend(m), SOTTO_BACKEND_CPU);
    sotto_model_free(m);
    CU_ASSERT_EQUAL(sotto_model_backend(NULL), SOTTO_BACKEND_CPU);
    const int ncu = sotto_cuda_device_count();
    mp = sotto_model_default_params();
    mp.backend = SOTTO_BACKEND_CUDA;
    mp.device = 99;
    CU_ASSERT_EQUAL(sotto_model_load_buffer(p, n, 1, &mp, &m, &st), SOTTO_ERR_DEVICE);
    CU_ASSERT_PTR_NULL(m);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.message, ncu ? "device 99: only" : "no CUDA device"));
    mp.device = 0;
    if (ncu == 0) {
        CU_ASSERT_EQUAL(sotto_model_load_buffer(p, n, 1, &mp, &m, &st), SOTTO_ERR_DEVICE);
        CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "no CUDA device"));
    } else {
        g_log_n = 0;
        sotto_log_set_callback(capture_log, NULL);
        CU_ASSERT_EQUAL_FATAL(sotto_model_load_buffer(p, n, 1, &mp, &m, &st), SOTTO_OK);
        sotto_log_set_callback(NULL, NULL);
        CU_ASSERT_EQUAL(sotto_model_backend(m), SOTTO_BACKEND_CPU);
        CU_ASSERT_TRUE(g_log_n > 0 && strstr(g_log_last, "no CUDA path yet") != NULL);
        sotto_model_free(m);
    }

    sotto_allocator half = {NULL, NULL, NULL};
    mp = sotto_model_default_params();
    mp.allocator = &half;
    CU_ASSERT_EQUAL(sotto_model_load_buffer(p, n, 1, &mp, &m, &st), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "allocator"));
    free(p);

    /* general.architecture is required and must be a string; general.name optional */
    buf kv = {0};
    kv_str(&kv, "general.name", "x");
    fspec f = {0, 0, -1, -1, &kv, 1, small_tensors, 2};
    p = build(&f, &n);
    CU_ASSERT_EQUAL(sotto_model_load_buffer(p, n, 1, NULL, &m, &st), SOTTO_ERR_FORMAT);
    CU_ASSERT_STRING_EQUAL(st.message, "missing required key 'general.architecture'");
    free(p);
    b_free(&kv);
    kv_i32(&kv, "general.architecture", 3);
    p = build(&f, &n);
    CU_ASSERT_EQUAL(sotto_model_load_buffer(p, n, 1, NULL, &m, &st), SOTTO_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "general.architecture"));
    free(p);
    b_free(&kv);
    kv_str(&kv, "general.architecture", "plain"); /* no loader registered: a bare container */
    p = build(&f, &n);
    CU_ASSERT_EQUAL(sotto_model_load_buffer(p, n, 1, NULL, &m, &st), SOTTO_OK);
    CU_ASSERT_STRING_EQUAL(sotto_model_name(m), "");
    sotto_model_free(m);
    free(p);
    b_free(&kv);
    /* a malformed file surfaces the reader's error */
    CU_ASSERT_EQUAL(sotto_model_load_buffer("GGUF\x01\0\0\0", 8, 0, NULL, &m, &st),
                    SOTTO_ERR_UNSUPPORTED);
}

/* ---- allocator hooks and allocation failures -------------------------------------------- */

typedef struct counting {
    long allocs, frees, fail_at; /* fail the fail_at-th allocation (1-based); 0: never */
} counting;

static void *c_alloc(size_t size, size_t align, void *user)
{
    counting *c = user;
    if (c->fail_at && c->allocs + 1 == c->fail_at) {
        c->fail_at = -1; /* fail once */
        return NULL;
    }
    c->allocs++;
    size_t rounded = (size + align - 1) / align * align;
    return aligned_alloc(align, rounded);
}

static void c_free(void *p, void *user)
{
    counting *c = user;
    if (p) {
        c->frees++;
        free(p);
    }
}

static void test_alloc_failures(void)
{
    size_t n;
    uint8_t *p = build_rich(&n);
    counting c = {0, 0, 0};
    sotto_allocator hooks = {c_alloc, c_free, &c};
    sotto_model_params mp = sotto_model_default_params();
    mp.allocator = &hooks;
    sotto_model *m = NULL;
    sotto_status st;
    CU_ASSERT_EQUAL_FATAL(sotto_model_load_buffer(p, n, 1, &mp, &m, &st), SOTTO_OK);
    CU_ASSERT_PTR_EQUAL(m->params.allocator, &m->alloc.hooks); /* never the caller's copy */
    long needed = c.allocs;
    CU_ASSERT_TRUE(needed > 2);
    sotto_model_free(m);
    CU_ASSERT_EQUAL(c.allocs, c.frees);
    /* Fail each allocation in turn: a clean SOTTO_ERR_OUT_OF_MEMORY, nothing leaked. */
    for (long k = 1; k <= needed; k++) {
        c = (counting){0, 0, k};
        m = (sotto_model *)&c;
        int rc = sotto_model_load_buffer(p, n, 1, &mp, &m, &st);
        CU_ASSERT_EQUAL(rc, SOTTO_ERR_OUT_OF_MEMORY);
        CU_ASSERT_PTR_NULL(m);
        CU_ASSERT_EQUAL(c.allocs, c.frees);
        if (rc == SOTTO_OK) sotto_model_free(m);
    }
    /* the reader alone, borrowing the bytes */
    sotto_alloc a;
    sotto_alloc_init(&a, &hooks);
    c = (counting){0, 0, 0};
    sotto_gguf *g = NULL;
    CU_ASSERT_EQUAL_FATAL(sotto_gguf_open_buffer(p, n, 0, &a, &g, &st), SOTTO_OK);
    needed = c.allocs;
    sotto_gguf_close(g);
    CU_ASSERT_EQUAL(c.allocs, c.frees);
    for (long k = 1; k <= needed; k++) {
        c = (counting){0, 0, k};
        CU_ASSERT_EQUAL(sotto_gguf_open_buffer(p, n, 0, &a, &g, &st), SOTTO_ERR_OUT_OF_MEMORY);
        CU_ASSERT_EQUAL(c.allocs, c.frees);
    }
    free(p);
}

int main(void)
{
    static const tu_test tests[] = {
        {"valid small file", test_valid_small},
        {"no tensors, no keys", test_no_tensors_no_keys},
        {"bad arguments", test_bad_args},
        {"magic and version", test_magic_version},
        {"truncated at every byte", test_truncated_everywhere},
        {"lying counts", test_lying_counts},
        {"huge lengths", test_huge_lengths},
        {"dims, sizes and dtypes", test_dims},
        {"offsets and overlaps", test_offsets},
        {"duplicates", test_duplicates},
        {"names", test_names},
        {"value types", test_kv_types},
        {"alignment", test_alignment},
        {"typed getters", test_getters},
        {"long strings", test_long_strings},
        {"value formatting", test_kv_format},
        {"tensor_check", test_tensor_check},
        {"f16 conversions", test_f16},
        {"f16 array conversions", test_f16_arrays},
        {"bf16 conversions", test_bf16},
        {"file from Python gguf", test_python_sample},
        {"f32 views", test_f32_view},
        {"sotto_model API", test_model_api},
        {"allocation failures", test_alloc_failures},
        {NULL, NULL},
    };
    return tu_run_suite("gguf", tests);
}
