/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WeftPipePool: per-worker pipes for splice(2). A body that no plugin and
 * no copy needs goes socket -> pipe -> socket inside the kernel; a clean
 * pipe is kept for the next body. Not thread-safe: one pool per worker.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _WeftPipe WeftPipe;
struct _WeftPipe {
  WeftPipe *next;     /* free list link */
  int       rfd;
  int       wfd;
  gsize     len;      /* bytes in the pipe now */
  gsize     cap;      /* what the pipe holds */
};

typedef struct _WeftPipePool WeftPipePool;

/* keeps at most @max_idle clean pipes */
WeftPipePool *weft_pipe_pool_new   (guint max_idle);
void          weft_pipe_pool_free  (WeftPipePool *pool);
/* a clean pipe, or NULL when the kernel gives none (the caller copies) */
WeftPipe     *weft_pipe_pool_get   (WeftPipePool *pool);
/* gives @pipe back (NULL is ignored); one with bytes left in it is closed */
void          weft_pipe_pool_put   (WeftPipePool *pool, WeftPipe *pipe);
/* pipes open now, handed out or idle; for tests */
guint         weft_pipe_pool_get_n_open (WeftPipePool *pool);

/* moves up to @max bytes from socket @fd into @pipe; splice(2)'s result */
gssize        weft_pipe_fill       (WeftPipe *pipe, int fd, guint64 max);
/* moves what @pipe holds to socket @fd; splice(2)'s result */
gssize        weft_pipe_drain      (WeftPipe *pipe, int fd);

G_END_DECLS
