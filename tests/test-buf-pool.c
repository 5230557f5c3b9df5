/* SPDX-License-Identifier: LGPL-2.1-or-later
 * WeftBufPool and WeftUpstreamPool: reuse without malloc, bounded free
 * lists, LIFO reuse and idle expiry. */
#include "weft-buf-pool-private.h"
#include "weft-epoll-source-private.h"
#include "weft-upstream-pool-private.h"

#include <sys/socket.h>
#include <unistd.h>

static void
test_buf_reuse (void)
{
  WeftBufPool *pool = weft_buf_pool_new (1 << 20);
  WeftBuf *a = weft_buf_pool_get (pool, 100);
  WeftBuf *b;

  g_assert_cmpuint (a->cap, ==, WEFT_BUF_TINY);
  g_assert_cmpuint (weft_buf_pool_get_n_out (pool), ==, 1);
  weft_buf_append (a, "hello", 5);
  weft_buf_pool_put (pool, a);
  g_assert_cmpuint (weft_buf_pool_get_n_free (pool), ==, 1);
  /* the same block comes back, emptied */
  b = weft_buf_pool_get (pool, 10);
  g_assert_true (a == b);
  g_assert_cmpuint (weft_buf_len (b), ==, 0);
  weft_buf_pool_put (pool, b);
  weft_buf_pool_free (pool);
}

static void
test_buf_size_classes (void)
{
  WeftBufPool *pool = weft_buf_pool_new (1 << 20);
  WeftBuf *small = weft_buf_pool_get (pool, WEFT_BUF_SMALL);
  WeftBuf *large = weft_buf_pool_get (pool, WEFT_BUF_SMALL + 1);

  g_assert_cmpuint (small->cap, ==, WEFT_BUF_SMALL);
  g_assert_cmpuint (large->cap, ==, WEFT_BUF_LARGE);
  weft_buf_pool_put (pool, small);
  weft_buf_pool_put (pool, large);
  /* a large request never gets the small block */
  g_assert_true (weft_buf_pool_get (pool, 30000) == large);
  g_assert_true (weft_buf_pool_get (pool, WEFT_BUF_TINY + 1) == small);
  weft_buf_pool_put (pool, small);
  weft_buf_pool_put (pool, large);
  weft_buf_pool_free (pool);
}

static void
test_buf_bounded_free_list (void)
{
  WeftBufPool *pool = weft_buf_pool_new (2 * WEFT_BUF_TINY);
  WeftBuf *bufs[5];

  for (guint i = 0; i < 5; i++)
    bufs[i] = weft_buf_pool_get (pool, 1);
  for (guint i = 0; i < 5; i++)
    weft_buf_pool_put (pool, bufs[i]);
  /* a burst must not pin memory: only max_free stay */
  g_assert_cmpuint (weft_buf_pool_get_n_free (pool), ==, 2);
  g_assert_cmpuint (weft_buf_pool_get_n_out (pool), ==, 0);
  /* the rest went back to malloc, and the worker is told so it can trim */
  g_assert_cmpuint (weft_buf_pool_take_released (pool), ==, 3 * WEFT_BUF_TINY);
  g_assert_cmpuint (weft_buf_pool_take_released (pool), ==, 0);
  weft_buf_pool_free (pool);
}

static void
test_buf_grow (void)
{
  WeftBufPool *pool = weft_buf_pool_new (1 << 20);
  WeftBuf *b = weft_buf_pool_get (pool, 1);

  weft_buf_append (b, "head", 4);
  g_assert_true (weft_buf_pool_grow (pool, &b));
  g_assert_cmpuint (b->cap, ==, WEFT_BUF_SMALL);
  g_assert_cmpmem (weft_buf_head (b), 4, "head", 4);
  g_assert_true (weft_buf_pool_grow (pool, &b));
  g_assert_cmpuint (b->cap, ==, WEFT_BUF_LARGE);
  /* the largest class is the head limit */
  g_assert_false (weft_buf_pool_grow (pool, &b));
  g_assert_cmpuint (weft_buf_pool_get_n_out (pool), ==, 1);
  weft_buf_pool_put (pool, b);
  weft_buf_pool_free (pool);
}

static void
test_buf_ops (void)
{
  WeftBufPool *pool = weft_buf_pool_new (1 << 20);
  WeftBuf *b = weft_buf_pool_get (pool, 1);
  char big[WEFT_BUF_TINY + 1] = { 0 };

  g_assert_true (weft_buf_append (b, "abcdef", 6));
  weft_buf_consume (b, 2);
  g_assert_cmpmem (weft_buf_head (b), 4, "cdef", 4);
  weft_buf_compact (b);
  g_assert_cmpuint (b->start, ==, 0);
  g_assert_cmpmem (weft_buf_head (b), 4, "cdef", 4);
  weft_buf_consume (b, 4);
  g_assert_cmpuint (weft_buf_len (b), ==, 0);
  g_assert_false (weft_buf_append (b, big, sizeof big));
  g_assert_cmpuint (weft_buf_len (b), ==, 0);
  weft_buf_pool_put (pool, b);
  weft_buf_pool_free (pool);
}

static WeftUpConn *
fake_conn (WeftUpstreamPool *pool, WeftEpollSource *ep, const char *key, int *peer)
{
  WeftUpConn *up = g_new0 (WeftUpConn, 1);
  int sv[2];

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), ==, 0);
  up->entry = weft_upstream_pool_entry (pool, key);
  up->connected = TRUE;
  g_assert_true (weft_epoll_source_add (ep, &up->h, sv[0], EPOLLIN));
  *peer = sv[1];
  return up;
}

static void
test_upstream_pool_lifo_and_expiry (void)
{
  GMainContext *ctx = g_main_context_new ();
  WeftEpollSource *ep = weft_epoll_source_new (ctx, NULL, NULL);
  WeftBufPool *bufs = weft_buf_pool_new (1 << 20);
  WeftUpstreamPool *pool = weft_upstream_pool_new (ep, bufs, 2);
  int p1, p2, p3;
  WeftUpConn *a = fake_conn (pool, ep, "127.0.0.1:1", &p1);
  WeftUpConn *b = fake_conn (pool, ep, "127.0.0.1:1", &p2);
  WeftUpConn *c = fake_conn (pool, ep, "127.0.0.1:1", &p3);
  WeftPoolEntry *entry = weft_upstream_pool_entry (pool, "127.0.0.1:1");

  weft_upstream_pool_put (pool, a, 100);
  weft_upstream_pool_put (pool, b, 200);
  /* over max_idle: closed, not kept */
  weft_upstream_pool_put (pool, c, 300);
  g_assert_cmpuint (weft_upstream_pool_get_n_idle (pool), ==, 2);
  g_assert_true (a->reused && b->reused);
  /* most recently used first */
  g_assert_true (weft_upstream_pool_take (pool, entry) == b);
  weft_upstream_pool_put (pool, b, 200);
  /* the least recently used expires first */
  weft_upstream_pool_expire (pool, 150);
  g_assert_cmpuint (weft_upstream_pool_get_n_idle (pool), ==, 1);
  g_assert_true (weft_upstream_pool_take (pool, entry) == b);
  g_assert_null (weft_upstream_pool_take (pool, entry));
  /* another key has its own list */
  g_assert_null (weft_upstream_pool_take (pool, weft_upstream_pool_entry (pool, "x:2")));
  weft_up_conn_close (pool, b);
  weft_upstream_pool_reap (pool);
  weft_upstream_pool_free (pool);
  weft_buf_pool_free (bufs);
  weft_epoll_source_free (ep);
  g_main_context_unref (ctx);
  close (p1);
  close (p2);
  close (p3);
}

static void
test_upstream_pool_closed_idle_dropped (void)
{
  GMainContext *ctx = g_main_context_new ();
  WeftEpollSource *ep = weft_epoll_source_new (ctx, NULL, NULL);
  WeftBufPool *bufs = weft_buf_pool_new (1 << 20);
  WeftUpstreamPool *pool = weft_upstream_pool_new (ep, bufs, 4);
  int peer;
  WeftUpConn *a = fake_conn (pool, ep, "k", &peer);

  weft_upstream_pool_put (pool, a, G_MAXINT64);
  /* the server closes the idle connection: the pool drops it */
  close (peer);
  for (guint i = 0; i < 10 && weft_upstream_pool_get_n_idle (pool) > 0; i++)
    g_main_context_iteration (ctx, FALSE);
  g_assert_cmpuint (weft_upstream_pool_get_n_idle (pool), ==, 0);
  weft_upstream_pool_reap (pool);
  weft_upstream_pool_free (pool);
  weft_buf_pool_free (bufs);
  weft_epoll_source_free (ep);
  g_main_context_unref (ctx);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/buf-pool/reuse", test_buf_reuse);
  g_test_add_func ("/buf-pool/size-classes", test_buf_size_classes);
  g_test_add_func ("/buf-pool/bounded-free-list", test_buf_bounded_free_list);
  g_test_add_func ("/buf-pool/ops", test_buf_ops);
  g_test_add_func ("/buf-pool/grow", test_buf_grow);
  g_test_add_func ("/upstream-pool/lifo-and-expiry", test_upstream_pool_lifo_and_expiry);
  g_test_add_func ("/upstream-pool/closed-idle-dropped", test_upstream_pool_closed_idle_dropped);
  return g_test_run ();
}
