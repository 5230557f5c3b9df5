/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WeftEpollSource: a GSource over one epoll fd. A worker puts all its
 * connection and listener fds behind it, so each main-loop pass polls one fd
 * whatever the number of connections.
 */
#pragma once

#include <glib.h>
#include <sys/epoll.h>

G_BEGIN_DECLS

typedef struct _WeftEpollHandler WeftEpollHandler;

/* @events: EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP, EPOLLRDHUP bits */
typedef void (*WeftEpollFunc) (WeftEpollHandler *handler, guint32 events);

struct _WeftEpollHandler {
  WeftEpollFunc func;
  int           fd;
  guint32       events;     /* the interest set registered now */
};

typedef struct _WeftEpollSource WeftEpollSource;

/* a source attached to @context; @batch_done runs after each batch of events */
/* called before a batch's handlers run, once epoll has events: the worker
 * reads its clock there, since the loop may have slept since the last batch */
void             weft_epoll_source_set_batch_begin (WeftEpollSource *self,
                                                    void (*batch_begin) (gpointer));
WeftEpollSource *weft_epoll_source_new    (GMainContext *context,
                                           void (*batch_done) (gpointer), gpointer data);
void             weft_epoll_source_free   (WeftEpollSource *source);
/* the calling thread iterates the source's context: its poll becomes one
 * epoll_wait() (call it first thing on the worker thread) */
void             weft_epoll_source_bind_thread (WeftEpollSource *source);
/* events were polled and not yet dispatched: handlers they point at must
 * not be freed before the dispatch */
gboolean         weft_epoll_source_has_pending (WeftEpollSource *source);
gboolean         weft_epoll_source_add    (WeftEpollSource *source, WeftEpollHandler *handler,
                                           int fd, guint32 events);
/* changes the interest set; a no-op when it is the same */
void             weft_epoll_source_modify (WeftEpollSource *source, WeftEpollHandler *handler,
                                           guint32 events);
void             weft_epoll_source_remove (WeftEpollSource *source, WeftEpollHandler *handler);

G_END_DECLS
