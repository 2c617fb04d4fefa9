/* Core services: error strings, statuses, allocator hooks, arena, thread pool, CPU features. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/core.h"
#include "core/threadpool.h"
#include "testutil.h"

static void test_strerror(void)
{
    CU_ASSERT_STRING_EQUAL(sotto_strerror(SOTTO_OK), "success");
    for (int e = SOTTO_ERR_INVALID_ARG; e >= SOTTO_ERR_INTERNAL; e--) {
        const char *s = sotto_strerror(e);
        CU_ASSERT_PTR_NOT_NULL(s);
        CU_ASSERT_STRING_NOT_EQUAL(s, "unknown error code");
    }
    CU_ASSERT_STRING_EQUAL(sotto_strerror(-999), "unknown error code");
    CU_ASSERT_STRING_EQUAL(sotto_strerror(5), "unknown error code");
}

static void test_version(void)
{
    const char *v = sotto_version_string();
    int a, b, c;
    CU_ASSERT_EQUAL(sscanf(v, "%d.%d.%d", &a, &b, &c), 3);
}

static void test_status(void)
{
    sotto_status st;
    CU_ASSERT_EQUAL(sotto_status_set(&st, SOTTO_ERR_MODEL, "tensor '%s' missing", "x.w"),
                    SOTTO_ERR_MODEL);
    CU_ASSERT_EQUAL(st.code, SOTTO_ERR_MODEL);
    CU_ASSERT_STRING_EQUAL(st.message, "tensor 'x.w' missing");
    CU_ASSERT_EQUAL(sotto_status_set(NULL, SOTTO_ERR_IO, "ignored"), SOTTO_ERR_IO);
    char longname[600];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    sotto_status_set(&st, SOTTO_ERR_IO, "%s", longname);
    CU_ASSERT_EQUAL(strlen(st.message), sizeof st.message - 1);
    sotto_status_clear(&st);
    CU_ASSERT_EQUAL(st.code, SOTTO_OK);
}

static int n_logged;
static char last_log[512];
static void log_cb(sotto_log_level lvl, const char *msg, void *user)
{
    (void)lvl;
    n_logged += *(int *)user;
    snprintf(last_log, sizeof last_log, "%s", msg);
}

static void test_log_hook(void)
{
    int inc = 1;
    sotto_log(SOTTO_LOG_INFO, "dropped %d", 1);
    sotto_log_set_callback(log_cb, &inc);
    sotto_log(SOTTO_LOG_WARN, "hello %s", "there");
    CU_ASSERT_EQUAL(n_logged, 1);
    CU_ASSERT_STRING_EQUAL(last_log, "hello there");
    sotto_log_set_callback(NULL, NULL);
    sotto_log(SOTTO_LOG_WARN, "dropped");
    CU_ASSERT_EQUAL(n_logged, 1);
}

static size_t hook_live;
static void *hook_alloc(size_t size, size_t align, void *user)
{
    (void)user;
    hook_live++;
    return aligned_alloc(align, (size + align - 1) / align * align);
}
static void hook_free(void *p, void *user)
{
    (void)user;
    if (p) hook_live--;
    free(p);
}

static void test_alloc_hooks(void)
{
    sotto_allocator hooks = {hook_alloc, hook_free, NULL};
    sotto_alloc a;
    sotto_alloc_init(&a, &hooks);
    void *p = sotto_malloc(&a, 100);
    CU_ASSERT_PTR_NOT_NULL(p);
    CU_ASSERT_EQUAL((uintptr_t)p % 64, 0);
    CU_ASSERT_EQUAL(hook_live, 1);
    char *s = sotto_strdup(&a, "abc");
    CU_ASSERT_STRING_EQUAL(s, "abc");
    CU_ASSERT_EQUAL(hook_live, 2);
    sotto_free(&a, s);
    sotto_free(&a, p);
    CU_ASSERT_EQUAL(hook_live, 0);
    CU_ASSERT_PTR_NULL(sotto_calloc(&a, SIZE_MAX / 2, 4)); /* overflow, not a huge alloc */
    CU_ASSERT_EQUAL(hook_live, 0);
    sotto_alloc libc;
    sotto_alloc_init(&libc, NULL);
    float *f = sotto_calloc(&libc, 33, sizeof(float));
    CU_ASSERT_PTR_NOT_NULL(f);
    CU_ASSERT_EQUAL(f[32], 0.0f);
    sotto_free(&libc, f);
}

static void test_arena(void)
{
    sotto_alloc a;
    sotto_alloc_init(&a, NULL);
    sotto_arena ar;
    CU_ASSERT_EQUAL(sotto_arena_init(&ar, &a, 1024), SOTTO_OK);
    char *p1 = sotto_arena_alloc(&ar, 10, 1);
    float *p2 = sotto_arena_floats(&ar, 4);
    CU_ASSERT_PTR_NOT_NULL(p1);
    CU_ASSERT_PTR_NOT_NULL(p2);
    CU_ASSERT_EQUAL((uintptr_t)p2 % 64, 0);
    size_t m = sotto_arena_mark(&ar);
    CU_ASSERT_PTR_NOT_NULL(sotto_arena_alloc(&ar, 100, 16));
    sotto_arena_release(&ar, m);
    CU_ASSERT_EQUAL(ar.used, m);
    CU_ASSERT_PTR_NULL(sotto_arena_alloc(&ar, 4096, 16)); /* does not fit */
    CU_ASSERT_PTR_NULL(sotto_arena_alloc(&ar, 8, 3));     /* bad alignment */
    CU_ASSERT_PTR_NULL(sotto_arena_alloc(&ar, SIZE_MAX, 1));
    sotto_arena_reset(&ar);
    CU_ASSERT_EQUAL(ar.used, 0);
    CU_ASSERT_TRUE(ar.high_water >= m + 100);
    sotto_arena_free(&ar);
}

typedef struct sum_job {
    const int *v;
    int64_t n;
    int64_t partial[64];
    _Atomic int calls;
} sum_job;

static void sum_task(void *ctx, int ith, int nth)
{
    sum_job *j = ctx;
    int64_t b, e, s = 0;
    sotto_split_range(j->n, ith, nth, &b, &e);
    for (int64_t i = b; i < e; i++) s += j->v[i];
    j->partial[ith] = s;
    atomic_fetch_add(&j->calls, 1);
}

static void test_threadpool(void)
{
    enum { N = 100003 };
    static int v[N];
    int64_t want = 0;
    for (int i = 0; i < N; i++) want += v[i] = i % 97;
    sotto_alloc a;
    sotto_alloc_init(&a, NULL);
    sotto_threadpool *bad = NULL;
    CU_ASSERT_EQUAL(sotto_threadpool_create(0, &a, &bad), SOTTO_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(sotto_threadpool_create(65, &a, &bad), SOTTO_ERR_INVALID_ARG);
    const int sizes[] = {1, 2, 3, 8};
    for (size_t k = 0; k < SOTTO_ARRAY_LEN(sizes); k++) {
        sotto_threadpool *tp = NULL;
        CU_ASSERT_EQUAL_FATAL(sotto_threadpool_create(sizes[k], &a, &tp), SOTTO_OK);
        CU_ASSERT_EQUAL(sotto_threadpool_size(tp), sizes[k]);
        for (int rep = 0; rep < 200; rep++) {
            sum_job j = {.v = v, .n = N};
            sotto_threadpool_run(tp, sum_task, &j);
            int64_t got = 0;
            for (int i = 0; i < sizes[k]; i++) got += j.partial[i];
            CU_ASSERT_EQUAL(got, want);
            CU_ASSERT_EQUAL(atomic_load(&j.calls), sizes[k]);
        }
        sotto_threadpool_free(tp);
    }
    sum_job j = {.v = v, .n = N};
    sotto_threadpool_run(NULL, sum_task, &j);
    CU_ASSERT_EQUAL(j.partial[0], want);
}

static void test_split_range(void)
{
    for (int64_t n = 0; n < 20; n++)
        for (int nth = 1; nth < 6; nth++) {
            int64_t prev = 0;
            for (int i = 0; i < nth; i++) {
                int64_t b, e;
                sotto_split_range(n, i, nth, &b, &e);
                CU_ASSERT_EQUAL(b, prev);
                CU_ASSERT_TRUE(e - b == n / nth || e - b == n / nth + 1);
                prev = e;
            }
            CU_ASSERT_EQUAL(prev, n);
        }
}

static void test_cpu_features(void)
{
    unsigned f = sotto_cpu_features();
    CU_ASSERT_EQUAL(f, sotto_cpu_features());
    CU_ASSERT_EQUAL(f & ~(unsigned)(SOTTO_CPU_AVX2 | SOTTO_CPU_FMA | SOTTO_CPU_F16C |
                                    SOTTO_CPU_AVX512 | SOTTO_CPU_AVX512FP16),
                    0);
    /* AVX-512 kernels also use AVX2/FMA instructions: no CPU has one without the others */
    if (f & SOTTO_CPU_AVX512) CU_ASSERT_EQUAL(f & (SOTTO_CPU_AVX2 | SOTTO_CPU_FMA),
                                              SOTTO_CPU_AVX2 | SOTTO_CPU_FMA);
    /* the binary16 kernel is an AVX-512 one: the bit is only reported with AVX512F */
    if (f & SOTTO_CPU_AVX512FP16) CU_ASSERT_TRUE(f & SOTTO_CPU_AVX512);
    fprintf(stderr, "cpu features: avx2=%d fma=%d f16c=%d avx512=%d avx512fp16=%d\n",
            !!(f & SOTTO_CPU_AVX2), !!(f & SOTTO_CPU_FMA), !!(f & SOTTO_CPU_F16C),
            !!(f & SOTTO_CPU_AVX512), !!(f & SOTTO_CPU_AVX512FP16));
}

int main(void)
{
    static const tu_test tests[] = {
        {"strerror", test_strerror},       {"version", test_version},
        {"status", test_status},           {"log_hook", test_log_hook},
        {"alloc_hooks", test_alloc_hooks}, {"arena", test_arena},
        {"threadpool", test_threadpool},   {"split_range", test_split_range},
        {"cpu_features", test_cpu_features}, {NULL, NULL},
    };
    return tu_run_suite("core", tests);
}
