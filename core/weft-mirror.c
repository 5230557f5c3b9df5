/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "weft-mirror-private.h"
#include "weft-log-private.h"
#include "weft-upstream-private.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct _WeftMirror {
  WeftEpollHandler h;          /* first: the epoll callback finds us by it */
  WeftWorker      *worker;
  WeftMirror      *prev;
  WeftMirror      *next;
  WeftBuf         *out;        /* head, then body bytes */
  gsize            sent;
  gboolean         connected;
  gboolean         body_done;  /* every body byte is in out */
  gboolean         detached;   /* the request it copies has ended */
  gboolean         dead;
  gint64           deadline_ms;
};

static void weft_mirror_event (WeftEpollHandler *handler, guint32 events);

static void
weft_mirror_link (WeftWorker *w, WeftMirror *m)
{
  m->next = w->mirrors;
  if (w->mirrors != NULL)
    w->mirrors->prev = m;
  w->mirrors = m;
}

static void
weft_mirror_unlink (WeftWorker *w, WeftMirror *m)
{
  if (m->prev != NULL)
    m->prev->next = m->next;
  else
    w->mirrors = m->next;
  if (m->next != NULL)
    m->next->prev = m->prev;
  m->prev = m->next = NULL;
}

static void
weft_mirror_bury (WeftWorker *w, WeftMirror *m)
{
  m->next = w->dead_mirrors;
  w->dead_mirrors = m;
}

/* closes the copy; the struct is freed after the batch, since an event for
 * it may still be queued, and not before its request lets go of it */
static void
weft_mirror_close (WeftMirror *m)
{
  WeftWorker *w = m->worker;

  if (m->dead)
    return;
  m->dead = TRUE;
  weft_epoll_source_remove (w->epoll, &m->h);
  close (m->h.fd);
  m->h.fd = -1;
  m->h.func = NULL;
  weft_mirror_unlink (w, m);
  if (m->detached)
    weft_mirror_bury (w, m);
}

void
weft_mirror_free_dead (WeftWorker *w)
{
  while (w->dead_mirrors != NULL)
    {
      WeftMirror *m = w->dead_mirrors;
      w->dead_mirrors = m->next;
      weft_buf_pool_put (w->bufs, m->out);
      g_free (m);
    }
}

static int
weft_mirror_connect (WeftEndpoint *ep, guint16 port)
{
  struct sockaddr_storage addr;
  int fd;
  int one = 1;

  /* an endpoint without a port takes the request's */
  weft_endpoint_address (ep, port, &addr, NULL, 0);
  fd = socket (addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect (fd, (struct sockaddr *) &addr, ep->addr_len) < 0 && errno != EINPROGRESS)
    {
      close (fd);
      return -1;
    }
  return fd;
}

WeftMirror *
weft_mirror_start (WeftWorker *w, WeftRequest *req, WeftUpstream *upstream, guint16 port)
{
  const WeftTimeouts *t = &req->listener->config->timeouts;
  WeftEndpointSet *set = NULL;
  guint idx = 0;
  gboolean all_down = FALSE;
  WeftMirror *m;
  int fd;

  if (req->upgrade ||
      (req->body_kind == WEFT_HTTP_BODY_LENGTH && req->content_length > WEFT_MIRROR_MAX_BODY) ||
      weft_upstream_pick (upstream, w->index, w->now_ms, NULL, &set, &idx, &all_down) !=
        WEFT_PICK_OK)
    return NULL;
  m = g_new0 (WeftMirror, 1);
  m->worker = w;
  m->h.func = weft_mirror_event;
  m->out = weft_buf_pool_get (w->bufs, WEFT_BUF_TINY);
  while (!weft_request_write_upstream_head (req, m->out, "-shadow", TRUE))
    {
      m->out->start = m->out->end = 0;
      if (!weft_buf_pool_grow (w->bufs, &m->out))
        {
          weft_buf_pool_put (w->bufs, m->out);
          g_free (m);
          return NULL;
        }
    }
  m->body_done = req->body_kind == WEFT_HTTP_BODY_NONE;
  m->deadline_ms = w->now_ms + (gint64) (t->request_ms ? t->request_ms : 15000);
  fd = weft_mirror_connect (&set->endpoints[idx], port);
  if (fd < 0 || !weft_epoll_source_add (w->epoll, &m->h, fd, EPOLLOUT))
    {
      if (fd >= 0)
        close (fd);
      weft_buf_pool_put (w->bufs, m->out);
      g_free (m);
      return NULL;
    }
  weft_mirror_link (w, m);
  return m;
}

void
weft_mirror_body (WeftMirror *m, const char *data, gsize len)
{
  WeftWorker *w = m->worker;

  if (m->dead || m->body_done)
    return;
  while (weft_buf_space (m->out) < len)
    {
      if (m->out->start > 0)
        {
          weft_buf_compact (m->out);
          continue;
        }
      if (m->out->cap >= WEFT_MIRROR_MAX_BODY + WEFT_BUF_TINY ||
          !weft_buf_pool_grow (w->bufs, &m->out))
        {
          /* too big to copy: the mirror gives up, the request does not */
          weft_mirror_close (m);
          return;
        }
    }
  weft_buf_append (m->out, data, len);
  weft_epoll_source_modify (w->epoll, &m->h, m->connected ? EPOLLOUT | EPOLLIN : EPOLLOUT);
}

void
weft_mirror_detach (WeftMirror *m, gboolean body_complete)
{
  if (m == NULL)
    return;
  m->detached = TRUE;
  if (m->dead)
    {
      weft_mirror_bury (m->worker, m);
      return;
    }
  if (!body_complete && !m->body_done)
    {
      weft_mirror_close (m);
      return;
    }
  m->body_done = TRUE;
}

static void
weft_mirror_write (WeftMirror *m)
{
  gssize n;

  if (m->sent >= weft_buf_len (m->out))
    return;
  n = send (m->h.fd, weft_buf_head (m->out) + m->sent, weft_buf_len (m->out) - m->sent,
            MSG_NOSIGNAL);
  if (n < 0 && errno != EAGAIN && errno != EINTR)
    {
      weft_mirror_close (m);
      return;
    }
  if (n > 0)
    m->sent += (gsize) n;
}

/* the answer is dropped; the upstream closes after it (connection: close) */
static void
weft_mirror_read (WeftMirror *m)
{
  char sink[4096];
  gssize n;

  for (int i = 0; i < 16; i++)
    {
      n = recv (m->h.fd, sink, sizeof sink, 0);
      if (n > 0)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
      weft_mirror_close (m);
      return;
    }
}

static void
weft_mirror_event (WeftEpollHandler *handler, guint32 events)
{
  WeftMirror *m = (WeftMirror *) handler;
  guint32 want = EPOLLIN;

  if (!m->connected)
    {
      int err = 0;
      socklen_t len = sizeof err;
      if (getsockopt (m->h.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0)
        {
          weft_mirror_close (m);
          return;
        }
      m->connected = TRUE;
    }
  if (events & EPOLLOUT)
    weft_mirror_write (m);
  if (!m->dead && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
    weft_mirror_read (m);
  if (m->dead)
    return;
  if (m->sent < weft_buf_len (m->out))
    want |= EPOLLOUT;
  weft_epoll_source_modify (m->worker->epoll, &m->h, want);
}

void
weft_mirror_check_deadlines (WeftWorker *w, gint64 now_ms)
{
  WeftMirror *next;

  for (WeftMirror *m = w->mirrors; m != NULL; m = next)
    {
      next = m->next;
      if (m->deadline_ms <= now_ms)
        weft_mirror_close (m);
    }
}

void
weft_mirror_close_all (WeftWorker *w)
{
  while (w->mirrors != NULL)
    weft_mirror_close (w->mirrors);
  weft_mirror_free_dead (w);
}
