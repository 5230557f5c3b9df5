/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WeftBufPool: per-worker free lists of I/O buffers, so the data path does
 * not call malloc in steady state. Not thread-safe: one pool per worker.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define WEFT_BUF_TINY   (4 * 1024)    /* heads: most fit, and idle memory stays small */
#define WEFT_BUF_SMALL  (16 * 1024)   /* bodies streaming through */
#define WEFT_BUF_LARGE  (64 * 1024)   /* heads up to the 64 KiB limit */

typedef struct _WeftBuf WeftBuf;
struct _WeftBuf {
  WeftBuf *next;     /* free list link */
  gsize    cap;
  gsize    start;    /* first unread byte */
  gsize    end;      /* one past the last byte */
  char     data[];
};

typedef struct _WeftBufPool WeftBufPool;

/* keeps at most @max_free_bytes of free buffers per size class */
WeftBufPool *weft_buf_pool_new   (gsize max_free_bytes);
void         weft_buf_pool_free  (WeftBufPool *pool);
/* an empty buffer of the smallest class holding @size bytes (at most LARGE) */
WeftBuf     *weft_buf_pool_get   (WeftBufPool *pool, gsize size);
void         weft_buf_pool_put   (WeftBufPool *pool, WeftBuf *buf);
/* buffers handed out and not yet returned; for tests and /metrics */
guint        weft_buf_pool_get_n_out  (WeftBufPool *pool);
guint        weft_buf_pool_get_n_free (WeftBufPool *pool);
/* bytes handed back to malloc since the last call; the worker trims after bursts */
gsize        weft_buf_pool_take_released (WeftBufPool *pool);
/* moves @buf's bytes into a buffer of the next class; FALSE at LARGE */
gboolean     weft_buf_pool_grow  (WeftBufPool *pool, WeftBuf **buf);

static inline gsize weft_buf_len   (const WeftBuf *b) { return b->end - b->start; }
static inline gsize weft_buf_space (const WeftBuf *b) { return b->cap - b->end; }
static inline char *weft_buf_head  (WeftBuf *b) { return b->data + b->start; }
static inline char *weft_buf_tail  (WeftBuf *b) { return b->data + b->end; }
/* move unread bytes to the front so the tail has room */
void         weft_buf_compact    (WeftBuf *buf);
void         weft_buf_consume    (WeftBuf *buf, gsize n);
/* appends; FALSE when it does not fit (nothing is written then) */
gboolean     weft_buf_append     (WeftBuf *buf, const void *data, gsize len);

G_END_DECLS
