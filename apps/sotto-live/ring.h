/*
 * Lock-free single-producer single-consumer ring of float samples, for handing audio between
 * a real-time callback and a processing thread. push/pop never allocate, lock, block or log:
 * each side owns one index and reads the other's with acquire ordering (C11 atomics), so one
 * producer thread and one consumer thread may run concurrently without any other
 * synchronisation. Capacity is a power of two; all capacity slots are usable.
 */
#ifndef SOTTO_LIVE_RING_H
#define SOTTO_LIVE_RING_H

#include <stdatomic.h>
#include <stddef.h>

typedef struct live_ring {
    float *buf;
    size_t cap;               /* power of two */
    size_t mask;              /* cap − 1 */
    _Atomic size_t head;      /* total samples written (owned by the producer) */
    _Atomic size_t tail;      /* total samples read (owned by the consumer) */
} live_ring;

/* Allocates a ring of at least min_capacity samples (rounded up to a power of two, ≥ 2).
 * Returns 0, or −1 when min_capacity is 0 or too large or memory runs out. */
int live_ring_init(live_ring *r, size_t min_capacity);
void live_ring_free(live_ring *r);

/* Producer side: writes up to n samples, returns how many were written (less when full). */
size_t live_ring_push(live_ring *r, const float *x, size_t n);
/* Producer side: free space now (it can only grow until the next push). */
size_t live_ring_space(const live_ring *r);

/* Consumer side: reads up to n samples, returns how many were read (less when empty). */
size_t live_ring_pop(live_ring *r, float *x, size_t n);
/* Consumer side: samples readable now (it can only grow until the next pop). */
size_t live_ring_available(const live_ring *r);

#endif
