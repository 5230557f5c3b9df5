/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WeftBufPool: per-worker free lists of I/O buffers, so the data path does
 * not call malloc in steady state. Not thread-safe: one pool per worker.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define WEFT_BUF_SMALL  (16 * 1024)
#define WEFT_BUF_LARGE  (64 * 1024)

typedef struct _WeftBuf WeftBuf;
struct _WeftBuf {
  WeftBuf *next;     /* free list link */
  gsize    cap;
  gsize    start;    /* first unread byte */
  gsize    end;      /* one past the last byte */
  char     data[];
};

typedef struct _WeftBufPool WeftBufPool;

WeftBufPool *weft_buf_pool_new   (guint max_free);
void         weft_buf_pool_free  (WeftBufPool *pool);
/* a buffer of at least @size bytes (WEFT_BUF_SMALL or WEFT_BUF_LARGE), empty */
WeftBuf     *weft_buf_pool_get   (WeftBufPool *pool, gsize size);
void         weft_buf_pool_put   (WeftBufPool *pool, WeftBuf *buf);
/* buffers handed out and not yet returned; for tests and /metrics */
guint        weft_buf_pool_get_n_out  (WeftBufPool *pool);
guint        weft_buf_pool_get_n_free (WeftBufPool *pool);

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
