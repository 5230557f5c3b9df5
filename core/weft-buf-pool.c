/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "weft-buf-pool-private.h"

#include <string.h>

struct _WeftBufPool {
  WeftBuf *free_small;
  WeftBuf *free_large;
  guint    n_free;
  guint    n_out;
  guint    max_free;
};

WeftBufPool *
weft_buf_pool_new (guint max_free)
{
  WeftBufPool *pool = g_new0 (WeftBufPool, 1);

  pool->max_free = max_free;
  return pool;
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
  weft_buf_list_free (pool->free_small);
  weft_buf_list_free (pool->free_large);
  g_free (pool);
}

WeftBuf *
weft_buf_pool_get (WeftBufPool *pool, gsize size)
{
  gboolean large = size > WEFT_BUF_SMALL;
  WeftBuf **list = large ? &pool->free_large : &pool->free_small;
  WeftBuf *buf = *list;

  if (buf != NULL)
    {
      *list = buf->next;
      pool->n_free--;
    }
  else
    {
      gsize cap = large ? WEFT_BUF_LARGE : WEFT_BUF_SMALL;
      buf = g_malloc (sizeof (WeftBuf) + cap);
      buf->cap = cap;
    }
  buf->next = NULL;
  buf->start = buf->end = 0;
  pool->n_out++;
  return buf;
}

void
weft_buf_pool_put (WeftBufPool *pool, WeftBuf *buf)
{
  WeftBuf **list;

  if (buf == NULL)
    return;
  pool->n_out--;
  /* keep a bounded number: a burst of connections must not pin memory */
  if (pool->n_free >= pool->max_free)
    {
      g_free (buf);
      return;
    }
  list = buf->cap > WEFT_BUF_SMALL ? &pool->free_large : &pool->free_small;
  buf->next = *list;
  *list = buf;
  pool->n_free++;
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
