/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "weft-epoll-source-private.h"

#include <errno.h>
#include <unistd.h>

#define WEFT_EPOLL_BATCH 128

struct _WeftEpollSource {
  GSource   source;
  int       epfd;
  gpointer  tag;
  void    (*batch_done) (gpointer);
  void    (*batch_begin) (gpointer);
  gpointer  data;
  int       wake_fd;     /* the context's wakeup fd, watched by epfd too; -1 = none yet */
  int       n_pending;   /* events the poll function took, not yet dispatched */
  struct epoll_event pending[WEFT_EPOLL_BATCH];
};

/* the source whose context the calling thread iterates: a GPollFunc has
 * no user data */
static __thread WeftEpollSource *weft_epoll_source_polled;

/* events the poll function took make the source ready without a poll */
static gboolean
weft_epoll_source_prepare (GSource *gsource, gint *timeout)
{
  WeftEpollSource *self = (WeftEpollSource *) gsource;

  *timeout = -1;
  return self->n_pending > 0;
}

static gboolean
weft_epoll_source_check (GSource *gsource)
{
  return ((WeftEpollSource *) gsource)->n_pending > 0;
}

static gboolean
weft_epoll_source_dispatch (GSource *gsource, GSourceFunc callback, gpointer user_data)
{
  WeftEpollSource *self = (WeftEpollSource *) gsource;
  struct epoll_event fetched[WEFT_EPOLL_BATCH];
  struct epoll_event *events = self->pending;
  int n = self->n_pending;

  (void) callback;
  (void) user_data;
  if (n == 0)
    {
      events = fetched;
      n = epoll_wait (self->epfd, events, WEFT_EPOLL_BATCH, 0);
    }
  if (n > 0 && self->batch_begin != NULL)
    self->batch_begin (self->data);
  for (int i = 0; i < n; i++)
    {
      WeftEpollHandler *handler = events[i].data.ptr;
      /* a handler closed earlier in this batch, or before it, has func cleared */
      if (events[i].data.ptr != &self->wake_fd && handler->func != NULL)
        handler->func (handler, events[i].events);
    }
  self->n_pending = 0;
  if (self->batch_done != NULL)
    self->batch_done (self->data);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs weft_epoll_source_funcs = {
  .prepare = weft_epoll_source_prepare,
  .check = weft_epoll_source_check,
  .dispatch = weft_epoll_source_dispatch,
};

/* the context's one other fd joins epfd, so one epoll_wait() is the poll */
static gboolean
weft_epoll_source_watch_wake (WeftEpollSource *self, int fd)
{
  struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &self->wake_fd };

  if (self->wake_fd >= 0)
    return fd == self->wake_fd;
  if (epoll_ctl (self->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
    return FALSE;
  self->wake_fd = fd;
  return TRUE;
}

/* the worker's poll: epoll_wait() on epfd instead of poll() on epfd and the
 * wakeup fd followed by epoll_wait() again in dispatch, one syscall in
 * place of two per pass; anything unusual goes to g_poll() */
static gint
weft_epoll_source_poll (GPollFD *fds, guint n_fds, gint timeout)
{
  WeftEpollSource *self = weft_epoll_source_polled;
  GPollFD *ep = NULL, *wake = NULL;
  int n, kept = 0;

  if (self == NULL || self->n_pending > 0)
    return g_poll (fds, n_fds, timeout);
  for (guint i = 0; i < n_fds; i++)
    {
      if (fds[i].fd == self->epfd && ep == NULL)
        ep = &fds[i];
      else if (wake == NULL && weft_epoll_source_watch_wake (self, fds[i].fd))
        wake = &fds[i];
      else
        return g_poll (fds, n_fds, timeout);
    }
  if (ep == NULL)
    return g_poll (fds, n_fds, timeout);
  ep->revents = 0;
  if (wake != NULL)
    wake->revents = 0;
  n = epoll_wait (self->epfd, self->pending, WEFT_EPOLL_BATCH, timeout);
  for (int i = 0; i < n; i++)
    {
      if (self->pending[i].data.ptr == &self->wake_fd)
        {
          if (wake != NULL)
            wake->revents = G_IO_IN;
          continue;
        }
      self->pending[kept++] = self->pending[i];
    }
  if (n < 0)
    return -1;
  self->n_pending = kept;
  if (kept > 0)
    ep->revents = G_IO_IN;
  return (kept > 0) + (wake != NULL && wake->revents != 0);
}

WeftEpollSource *
weft_epoll_source_new (GMainContext *context, void (*batch_done) (gpointer), gpointer data)
{
  GSource *gsource = g_source_new (&weft_epoll_source_funcs, sizeof (WeftEpollSource));
  WeftEpollSource *self = (WeftEpollSource *) gsource;

  self->wake_fd = -1;
  self->epfd = epoll_create1 (EPOLL_CLOEXEC);
  if (self->epfd < 0)
    {
      g_source_unref (gsource);
      return NULL;
    }
  self->batch_done = batch_done;
  self->data = data;
  self->tag = g_source_add_unix_fd (gsource, self->epfd, G_IO_IN);
  g_source_set_name (gsource, "weft-epoll");
  /* GLib blocks a non-recursive source around dispatch by removing and
   * re-adding its fds, and each of those writes the context's eventfd:
   * three wasted syscalls and an empty poll() per batch */
  g_source_set_can_recurse (gsource, TRUE);
  g_source_attach (gsource, context);
  g_main_context_set_poll_func (context, weft_epoll_source_poll);
  return self;
}

void
weft_epoll_source_bind_thread (WeftEpollSource *self)
{
  weft_epoll_source_polled = self;
}

gboolean
weft_epoll_source_has_pending (WeftEpollSource *self)
{
  return self != NULL && self->n_pending > 0;
}

void
weft_epoll_source_free (WeftEpollSource *self)
{
  if (self == NULL)
    return;
  self->n_pending = 0;
  close (self->epfd);
  g_source_destroy ((GSource *) self);
  g_source_unref ((GSource *) self);
}

gboolean
weft_epoll_source_add (WeftEpollSource *self, WeftEpollHandler *handler, int fd, guint32 events)
{
  struct epoll_event ev = { .events = events, .data.ptr = handler };

  handler->fd = fd;
  handler->events = events;
  return epoll_ctl (self->epfd, EPOLL_CTL_ADD, fd, &ev) == 0;
}

void
weft_epoll_source_modify (WeftEpollSource *self, WeftEpollHandler *handler, guint32 events)
{
  struct epoll_event ev = { .events = events, .data.ptr = handler };

  if (handler->events == events)
    return;
  handler->events = events;
  epoll_ctl (self->epfd, EPOLL_CTL_MOD, handler->fd, &ev);
}

void
weft_epoll_source_remove (WeftEpollSource *self, WeftEpollHandler *handler)
{
  if (handler->fd >= 0)
    epoll_ctl (self->epfd, EPOLL_CTL_DEL, handler->fd, NULL);
  handler->events = 0;
}

void
weft_epoll_source_set_batch_begin (WeftEpollSource *self, void (*batch_begin) (gpointer))
{
  self->batch_begin = batch_begin;
}
