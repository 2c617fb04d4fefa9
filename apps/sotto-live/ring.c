/* Lock-free SPSC float ring (see ring.h). */
#include "ring.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int live_ring_init(live_ring *r, size_t min_capacity)
{
    memset(r, 0, sizeof *r);
    if (min_capacity == 0 || min_capacity > SIZE_MAX / 2 / sizeof(float)) return -1;
    size_t cap = 2;
    while (cap < min_capacity) cap <<= 1;
    r->buf = calloc(cap, sizeof(float));
    if (!r->buf) return -1;
    r->cap = cap;
    r->mask = cap - 1;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    return 0;
}

void live_ring_free(live_ring *r)
{
    free(r->buf);
    r->buf = NULL;
    r->cap = r->mask = 0;
}

size_t live_ring_space(const live_ring *r)
{
    const size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    const size_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    return r->cap - (head - tail);
}

size_t live_ring_available(const live_ring *r)
{
    const size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    const size_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    return head - tail;
}

size_t live_ring_push(live_ring *r, const float *x, size_t n)
{
    const size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    const size_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    const size_t space = r->cap - (head - tail);
    if (n > space) n = space;
    const size_t at = head & r->mask, first = n < r->cap - at ? n : r->cap - at;
    memcpy(r->buf + at, x, first * sizeof(float));
    memcpy(r->buf, x + first, (n - first) * sizeof(float));
    atomic_store_explicit(&r->head, head + n, memory_order_release);
    return n;
}

size_t live_ring_pop(live_ring *r, float *x, size_t n)
{
    const size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    const size_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    const size_t avail = head - tail;
    if (n > avail) n = avail;
    const size_t at = tail & r->mask, first = n < r->cap - at ? n : r->cap - at;
    memcpy(x, r->buf + at, first * sizeof(float));
    memcpy(x + first, r->buf, (n - first) * sizeof(float));
    atomic_store_explicit(&r->tail, tail + n, memory_order_release);
    return n;
}
