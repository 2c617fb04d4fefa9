/*
 * The lock-free SPSC ring of sotto-live (apps/sotto-live/ring.c): capacity rounding, partial
 * push/pop at full/empty, wrap-around order, and a two-thread stress test in which a producer
 * pushes a counting sequence in uneven chunks while a consumer pops and checks every sample.
 */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>

#include "ring.h"
#include "testutil.h"

static void test_basic(void)
{
    live_ring r;
    CU_ASSERT_EQUAL(live_ring_init(&r, 0), -1);
    CU_ASSERT_EQUAL_FATAL(live_ring_init(&r, 5), 0);
    CU_ASSERT_EQUAL(r.cap, 8);
    CU_ASSERT_EQUAL(live_ring_space(&r), 8);
    CU_ASSERT_EQUAL(live_ring_available(&r), 0);
    float in[20], out[20];
    for (int i = 0; i < 20; i++) in[i] = (float)i;
    CU_ASSERT_EQUAL(live_ring_pop(&r, out, 3), 0); /* empty */
    CU_ASSERT_EQUAL(live_ring_push(&r, in, 6), 6);
    CU_ASSERT_EQUAL(live_ring_push(&r, in + 6, 6), 2); /* full after 8 */
    CU_ASSERT_EQUAL(live_ring_space(&r), 0);
    CU_ASSERT_EQUAL(live_ring_available(&r), 8);
    CU_ASSERT_EQUAL(live_ring_pop(&r, out, 5), 5);
    for (int i = 0; i < 5; i++) CU_ASSERT_EQUAL(out[i], (float)i);
    /* Wraps: 3 left (5,6,7), push 8..12 across the end. */
    CU_ASSERT_EQUAL(live_ring_push(&r, in + 8, 5), 5);
    CU_ASSERT_EQUAL(live_ring_pop(&r, out, 20), 8);
    for (int i = 0; i < 8; i++) CU_ASSERT_EQUAL(out[i], (float)(5 + i));
    CU_ASSERT_EQUAL(live_ring_available(&r), 0);
    live_ring_free(&r);
}

#define TOTAL 3000000u

typedef struct stress {
    live_ring ring;
    uint64_t seed;
    size_t errors;
    size_t received;
} stress;

static void *producer(void *arg)
{
    stress *s = arg;
    tu_rng rng;
    tu_rng_init(&rng, s->seed);
    float chunk[97];
    uint32_t next = 0;
    while (next < TOTAL) {
        size_t n = 1 + tu_rng_u32(&rng) % 97;
        if (n > TOTAL - next) n = TOTAL - next;
        for (size_t i = 0; i < n; i++) chunk[i] = (float)((next + i) & 0xffffff);
        size_t done = 0;
        while (done < n) {
            size_t k = live_ring_push(&s->ring, chunk + done, n - done);
            if (!k) sched_yield();
            done += k;
        }
        next += (uint32_t)n;
    }
    return NULL;
}

static void *consumer(void *arg)
{
    stress *s = arg;
    tu_rng rng;
    tu_rng_init(&rng, s->seed ^ 0x9e3779b97f4a7c15ull);
    float chunk[61];
    uint32_t expect = 0;
    while (expect < TOTAL) {
        size_t want = 1 + tu_rng_u32(&rng) % 61;
        size_t k = live_ring_pop(&s->ring, chunk, want);
        if (!k) sched_yield();
        for (size_t i = 0; i < k; i++, expect++)
            if (chunk[i] != (float)(expect & 0xffffff)) s->errors++;
    }
    s->received = expect;
    return NULL;
}

static void test_two_threads(void)
{
    stress s = {.seed = tu_seed()};
    CU_ASSERT_EQUAL_FATAL(live_ring_init(&s.ring, 256), 0);
    pthread_t p, c;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&c, NULL, consumer, &s), 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&p, NULL, producer, &s), 0);
    pthread_join(p, NULL);
    pthread_join(c, NULL);
    CU_ASSERT_EQUAL(s.errors, 0);
    CU_ASSERT_EQUAL(s.received, TOTAL);
    CU_ASSERT_EQUAL(live_ring_available(&s.ring), 0);
    live_ring_free(&s.ring);
}

int main(void)
{
    static const tu_test tests[] = {
        {"capacity, full, empty, wrap-around", test_basic},
        {"two-thread stress: every sample in order", test_two_threads},
        {NULL, NULL},
    };
    return tu_run_suite("ring", tests);
}
