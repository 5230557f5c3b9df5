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
};

static gboolean
weft_epoll_source_dispatch (GSource *gsource, GSourceFunc callback, gpointer user_data)
{
  WeftEpollSource *self = (WeftEpollSource *) gsource;
  struct epoll_event events[WEFT_EPOLL_BATCH];
  int n;

  (void) callback;
  (void) user_data;
  n = epoll_wait (self->epfd, events, WEFT_EPOLL_BATCH, 0);
  if (n > 0 && self->batch_begin != NULL)
    self->batch_begin (self->data);
  for (int i = 0; i < n; i++)
    {
      WeftEpollHandler *handler = events[i].data.ptr;
      /* a handler closed earlier in this batch has func cleared */
      if (handler->func != NULL)
        handler->func (handler, events[i].events);
    }
  if (self->batch_done != NULL)
    self->batch_done (self->data);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs weft_epoll_source_funcs = {
  .dispatch = weft_epoll_source_dispatch,
};

WeftEpollSource *
weft_epoll_source_new (GMainContext *context, void (*batch_done) (gpointer), gpointer data)
{
  GSource *gsource = g_source_new (&weft_epoll_source_funcs, sizeof (WeftEpollSource));
  WeftEpollSource *self = (WeftEpollSource *) gsource;

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
  return self;
}

void
weft_epoll_source_free (WeftEpollSource *self)
{
  if (self == NULL)
    return;
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
