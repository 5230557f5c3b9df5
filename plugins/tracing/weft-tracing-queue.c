/* weft-tracing-queue.c: a worker's bounded span queue
 *
 * One producer (the worker) and one consumer (the main thread), so a ring
 * of fixed-size slots with two counters is enough: the worker fills the
 * slot at @tail and publishes it by moving @tail on (release); the main
 * thread reads the slots up to @tail and hands them back by moving @head
 * on. Neither ever waits for the other. A full ring refuses the span.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "weft-tracing-private.h"

void
weft_span_queue_init (WeftSpanQueue *q, guint capacity, guint kick_at)
{
  q->slots = g_new (WeftSpanRecord, capacity);
  q->capacity = capacity;
  q->kick_at = kick_at;
  q->tail.value = 0;
  q->head.value = 0;
  q->kicked = 0;
}

void
weft_span_queue_clear (WeftSpanQueue *q)
{
  g_clear_pointer (&q->slots, g_free);
}

/**
 * weft_span_queue_reserve:
 * @q: the worker's queue
 *
 * The slot to fill, or NULL when the queue is full. Producer side only;
 * weft_span_queue_commit() publishes it.
 */
WeftSpanRecord *
weft_span_queue_reserve (WeftSpanQueue *q)
{
  guint64 tail = q->tail.value;
  guint64 head = __atomic_load_n (&q->head.value, __ATOMIC_ACQUIRE);

  if (tail - head >= q->capacity)
    return NULL;
  return &q->slots[tail % q->capacity];
}

/**
 * weft_span_queue_commit:
 * @q: the worker's queue
 *
 * Publishes the slot weft_span_queue_reserve() gave.
 *
 * Returns: TRUE when the queue just reached its kick level and nobody has
 *   told the main thread yet: the caller should
 */
gboolean
weft_span_queue_commit (WeftSpanQueue *q)
{
  guint64 tail = q->tail.value + 1;
  guint64 head = __atomic_load_n (&q->head.value, __ATOMIC_RELAXED);
  int idle = 0;

  __atomic_store_n (&q->tail.value, tail, __ATOMIC_RELEASE);
  if (tail - head < q->kick_at)
    return FALSE;
  return __atomic_compare_exchange_n (&q->kicked, &idle, 1, FALSE, __ATOMIC_ACQ_REL,
                                      __ATOMIC_RELAXED);
}

/* consumer side: how many spans wait */
guint
weft_span_queue_length (WeftSpanQueue *q)
{
  return (guint) (__atomic_load_n (&q->tail.value, __ATOMIC_ACQUIRE) - q->head.value);
}

/* consumer side: the @i-th waiting span, @i below weft_span_queue_length() */
const WeftSpanRecord *
weft_span_queue_nth (WeftSpanQueue *q, guint i)
{
  return &q->slots[(q->head.value + i) % q->capacity];
}

/* consumer side: the first @n spans are read; their slots are free again */
void
weft_span_queue_release (WeftSpanQueue *q, guint n)
{
  __atomic_store_n (&q->head.value, q->head.value + n, __ATOMIC_RELEASE);
}

/* consumer side: the next time the queue fills up, kick again */
void
weft_span_queue_rearm (WeftSpanQueue *q)
{
  __atomic_store_n (&q->kicked, 0, __ATOMIC_RELEASE);
}
