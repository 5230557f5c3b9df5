/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "weft-buf-pool-private.h"

#include <string.h>

#define WEFT_BUF_CLASSES 3

static const gsize weft_buf_class_size[WEFT_BUF_CLASSES] = {
  WEFT_BUF_TINY, WEFT_BUF_SMALL, WEFT_BUF_LARGE,
};

struct _WeftBufPool {
  WeftBuf *free[WEFT_BUF_CLASSES];
  guint    n_class_free[WEFT_BUF_CLASSES];
  guint    max_class_free[WEFT_BUF_CLASSES];
  guint    n_free;
  guint    n_out;
  gsize    released;
};

WeftBufPool *
weft_buf_pool_new (gsize max_free_bytes)
{
  WeftBufPool *pool = g_new0 (WeftBufPool, 1);

  for (guint i = 0; i < WEFT_BUF_CLASSES; i++)
    pool->max_class_free[i] = (guint) (max_free_bytes / weft_buf_class_size[i]);
  return pool;
}

static guint
weft_buf_class_of (gsize size)
{
  for (guint i = 0; i < WEFT_BUF_CLASSES - 1; i++)
    if (size <= weft_buf_class_size[i])
      return i;
  return WEFT_BUF_CLASSES - 1;
}

static void
weft_buf_list_free (WeftBuf *list)
{
  while (list != NULL)
    {
      WeftBuf *next = list->next;
      g_free (list);
      list = next;
    }
}

void
weft_buf_pool_free (WeftBufPool *pool)
{
  if (pool == NULL)
    return;
  for (guint i = 0; i < WEFT_BUF_CLASSES; i++)
    weft_buf_list_free (pool->free[i]);
  g_free (pool);
}

WeftBuf *
weft_buf_pool_get (WeftBufPool *pool, gsize size)
{
  guint cls = weft_buf_class_of (size);
  WeftBuf *buf = pool->free[cls];

  if (buf != NULL)
    {
      pool->free[cls] = buf->next;
      pool->n_class_free[cls]--;
      pool->n_free--;
    }
  else
    {
      buf = g_malloc (sizeof (WeftBuf) + weft_buf_class_size[cls]);
      buf->cap = weft_buf_class_size[cls];
    }
  buf->next = NULL;
  buf->start = buf->end = 0;
  pool->n_out++;
  return buf;
}

void
weft_buf_pool_put (WeftBufPool *pool, WeftBuf *buf)
{
  guint cls;

  if (buf == NULL)
    return;
  pool->n_out--;
  cls = weft_buf_class_of (buf->cap);
  /* keep a bounded number: a burst of connections must not pin memory */
  if (pool->n_class_free[cls] >= pool->max_class_free[cls])
    {
      pool->released += buf->cap;
      g_free (buf);
      return;
    }
  buf->next = pool->free[cls];
  pool->free[cls] = buf;
  pool->n_class_free[cls]++;
  pool->n_free++;
}

gsize
weft_buf_pool_take_released (WeftBufPool *pool)
{
  gsize released = pool->released;

  pool->released = 0;
  return released;
}

gboolean
weft_buf_pool_grow (WeftBufPool *pool, WeftBuf **buf)
{
  WeftBuf *old = *buf;
  WeftBuf *bigger;

  if (old->cap >= WEFT_BUF_LARGE)
    return FALSE;
  bigger = weft_buf_pool_get (pool, old->cap + 1);
  weft_buf_append (bigger, weft_buf_head (old), weft_buf_len (old));
  weft_buf_pool_put (pool, old);
  *buf = bigger;
  return TRUE;
}

guint
weft_buf_pool_get_n_out (WeftBufPool *pool)
{
  return pool->n_out;
}

guint
weft_buf_pool_get_n_free (WeftBufPool *pool)
{
  return pool->n_free;
}

void
weft_buf_compact (WeftBuf *buf)
{
  gsize len = buf->end - buf->start;

  if (buf->start == 0)
    return;
  if (len > 0)
    memmove (buf->data, buf->data + buf->start, len);
  buf->start = 0;
  buf->end = len;
}

void
weft_buf_consume (WeftBuf *buf, gsize n)
{
  buf->start += n;
  if (buf->start >= buf->end)
    buf->start = buf->end = 0;
}

gboolean
weft_buf_append (WeftBuf *buf, const void *data, gsize len)
{
  if (weft_buf_space (buf) < len)
    return FALSE;
  memcpy (buf->data + buf->end, data, len);
  buf->end += len;
  return TRUE;
}
