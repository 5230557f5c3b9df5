/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WeftUpstreamPool: a worker's idle keep-alive upstream connections, keyed
 * by endpoint address so they survive reloads. Most recently used first, so
 * the coldest ones age out through the upstream idle timeout.
 */
#pragma once

#include <glib.h>
#include "weft-buf-pool-private.h"
#include "weft-epoll-source-private.h"

G_BEGIN_DECLS

typedef struct _WeftUpConn WeftUpConn;
typedef struct _WeftPoolEntry WeftPoolEntry;
typedef struct _WeftUpstreamPool WeftUpstreamPool;

struct _WeftUpConn {
  WeftEpollHandler h;          /* first: the epoll callback finds us by it */
  gpointer         owner;      /* the WeftConn using it, NULL when idle */
  WeftPoolEntry   *entry;      /* its endpoint's pool entry */
  WeftBuf         *in;
  gboolean         connected;  /* and, for mTLS, the handshake done */
  struct _WeftTlsSession *tls; /* mTLS to the upstream, else NULL */
  guint32          tls_want;   /* EPOLLIN or EPOLLOUT while handshaking */
  gboolean         tls_saved;  /* its resumption data went to the entry */
  gboolean         readable;
  gboolean         writable;
  gboolean         reused;     /* served a request before */
  guint            served;     /* requests it carried */
  gint64           idle_deadline_ms;
  WeftUpConn      *prev;       /* pool links, idle only */
  WeftUpConn      *next;
};

struct _WeftPoolEntry {
  char       *key;
  WeftUpConn *head;
  WeftUpConn *tail;
  guint       n_idle;
  GBytes     *tls_resume;  /* the last mTLS session here, to resume */
};

WeftUpstreamPool *weft_upstream_pool_new   (WeftEpollSource *epoll, WeftBufPool *bufs,
                                            guint max_idle_per_endpoint);
/* closes every idle connection */
void              weft_upstream_pool_free  (WeftUpstreamPool *pool);
WeftPoolEntry    *weft_upstream_pool_entry (WeftUpstreamPool *pool, const char *key);
/* an idle connection to the endpoint, detached from the pool, or NULL */
WeftUpConn       *weft_upstream_pool_take  (WeftUpstreamPool *pool, WeftPoolEntry *entry);
/* parks a connection; closes it when the endpoint already has enough */
void              weft_upstream_pool_put   (WeftUpstreamPool *pool, WeftUpConn *up,
                                            gint64 deadline_ms);
/* closes idle connections whose deadline passed */
void              weft_upstream_pool_expire (WeftUpstreamPool *pool, gint64 now_ms);
guint             weft_upstream_pool_get_n_idle (WeftUpstreamPool *pool);
/* closes a connection that is not in the pool; freed by the next reap */
void              weft_up_conn_close       (WeftUpstreamPool *pool, WeftUpConn *up);
/* frees the connections closed since the last call (after an epoll batch) */
void              weft_upstream_pool_reap  (WeftUpstreamPool *pool);

G_END_DECLS
