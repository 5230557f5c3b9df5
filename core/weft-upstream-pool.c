/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "weft-upstream-pool-private.h"
#include "weft-tls-session-private.h"

#include <unistd.h>

struct _WeftUpstreamPool {
  WeftEpollSource *epoll;
  WeftBufPool     *bufs;
  GHashTable      *entries;       /* key -> WeftPoolEntry* */
  guint            max_idle;
  guint            n_idle;
  WeftUpConn      *dead;          /* closed this batch, freed after it */
};

static void
weft_pool_entry_free (gpointer data)
{
  WeftPoolEntry *entry = data;

  g_clear_pointer (&entry->tls_resume, g_bytes_unref);
  g_free (entry->key);
  g_free (entry);
}

WeftUpstreamPool *
weft_upstream_pool_new (WeftEpollSource *epoll, WeftBufPool *bufs, guint max_idle)
{
  WeftUpstreamPool *pool = g_new0 (WeftUpstreamPool, 1);

  pool->epoll = epoll;
  pool->bufs = bufs;
  pool->max_idle = max_idle;
  pool->entries = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, weft_pool_entry_free);
  return pool;
}

static void
weft_pool_unlink (WeftUpstreamPool *pool, WeftUpConn *up)
{
  WeftPoolEntry *entry = up->entry;

  if (up->prev != NULL)
    up->prev->next = up->next;
  else
    entry->head = up->next;
  if (up->next != NULL)
    up->next->prev = up->prev;
  else
    entry->tail = up->prev;
  up->prev = up->next = NULL;
  entry->n_idle--;
  pool->n_idle--;
}

void
weft_up_conn_close (WeftUpstreamPool *pool, WeftUpConn *up)
{
  weft_epoll_source_remove (pool->epoll, &up->h);
  weft_tls_session_bye (up->tls);
  g_clear_pointer (&up->tls, weft_tls_session_free);
  if (up->h.fd >= 0)
    close (up->h.fd);
  up->h.fd = -1;
  up->h.func = NULL;
  weft_buf_pool_put (pool->bufs, up->in);
  up->in = NULL;
  /* an event for it may still wait in this epoll batch: free it after */
  up->next = pool->dead;
  pool->dead = up;
}

void
weft_upstream_pool_reap (WeftUpstreamPool *pool)
{
  while (pool->dead != NULL)
    {
      WeftUpConn *up = pool->dead;
      pool->dead = up->next;
      g_free (up);
    }
}

static void
weft_pool_close_idle (WeftUpstreamPool *pool, WeftUpConn *up)
{
  weft_pool_unlink (pool, up);
  weft_up_conn_close (pool, up);
}

void
weft_upstream_pool_free (WeftUpstreamPool *pool)
{
  GHashTableIter iter;
  gpointer value;

  if (pool == NULL)
    return;
  g_hash_table_iter_init (&iter, pool->entries);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      WeftPoolEntry *entry = value;
      while (entry->head != NULL)
        weft_pool_close_idle (pool, entry->head);
    }
  g_hash_table_unref (pool->entries);
  weft_upstream_pool_reap (pool);
  g_free (pool);
}

WeftPoolEntry *
weft_upstream_pool_entry (WeftUpstreamPool *pool, const char *key)
{
  WeftPoolEntry *entry = g_hash_table_lookup (pool->entries, key);

  if (entry != NULL)
    return entry;
  entry = g_new0 (WeftPoolEntry, 1);
  entry->key = g_strdup (key);
  g_hash_table_insert (pool->entries, entry->key, entry);
  return entry;
}

WeftUpConn *
weft_upstream_pool_take (WeftUpstreamPool *pool, WeftPoolEntry *entry)
{
  WeftUpConn *up = entry->head;

  if (up == NULL)
    return NULL;
  weft_pool_unlink (pool, up);
  return up;
}

/* an idle connection became readable: the server closed it, or sent bytes
 * nobody asked for; either way it cannot carry a request */
static void
weft_pool_idle_event (WeftEpollHandler *handler, guint32 events)
{
  WeftUpConn *up = (WeftUpConn *) handler;
  WeftUpstreamPool *pool = up->owner;

  (void) events;
  up->owner = NULL;
  weft_pool_close_idle (pool, up);
}

void
weft_upstream_pool_put (WeftUpstreamPool *pool, WeftUpConn *up, gint64 deadline_ms)
{
  WeftPoolEntry *entry = up->entry;

  if (entry->n_idle >= pool->max_idle)
    {
      weft_up_conn_close (pool, up);
      return;
    }
  /* idle connections hold no buffer */
  weft_buf_pool_put (pool->bufs, up->in);
  up->in = NULL;
  up->reused = TRUE;
  up->readable = FALSE;
  up->owner = pool;
  up->h.func = weft_pool_idle_event;
  up->idle_deadline_ms = deadline_ms;
  weft_epoll_source_modify (pool->epoll, &up->h, EPOLLIN | EPOLLRDHUP);
  up->prev = NULL;
  up->next = entry->head;
  if (entry->head != NULL)
    entry->head->prev = up;
  else
    entry->tail = up;
  entry->head = up;
  entry->n_idle++;
  pool->n_idle++;
}

void
weft_upstream_pool_expire (WeftUpstreamPool *pool, gint64 now_ms)
{
  GHashTableIter iter;
  gpointer value;

  if (pool->n_idle == 0)
    return;
  g_hash_table_iter_init (&iter, pool->entries);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      WeftPoolEntry *entry = value;
      /* the tail is the least recently used */
      while (entry->tail != NULL && entry->tail->idle_deadline_ms <= now_ms)
        weft_pool_close_idle (pool, entry->tail);
    }
}

guint
weft_upstream_pool_get_n_idle (WeftUpstreamPool *pool)
{
  return pool->n_idle;
}
