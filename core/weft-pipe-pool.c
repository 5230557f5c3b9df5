/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "weft-pipe-pool-private.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

/* 256 KiB moves a body in a quarter of the syscalls of the default 64 KiB;
 * the pages are the kernel's, not the process's RSS */
#define WEFT_PIPE_SIZE (256 * 1024)

struct _WeftPipePool {
  WeftPipe *idle;
  guint     n_idle;
  guint     max_idle;
  guint     n_open;
  gboolean  broken;   /* pipe2() failed: stop asking until a pipe comes back */
};

WeftPipePool *
weft_pipe_pool_new (guint max_idle)
{
  WeftPipePool *pool = g_new0 (WeftPipePool, 1);

  pool->max_idle = max_idle;
  return pool;
}

static void
weft_pipe_close (WeftPipePool *pool, WeftPipe *pipe)
{
  close (pipe->rfd);
  close (pipe->wfd);
  g_free (pipe);
  pool->n_open--;
}

void
weft_pipe_pool_free (WeftPipePool *pool)
{
  if (pool == NULL)
    return;
  while (pool->idle != NULL)
    {
      WeftPipe *pipe = pool->idle;
      pool->idle = pipe->next;
      weft_pipe_close (pool, pipe);
    }
  g_free (pool);
}

static WeftPipe *
weft_pipe_open (WeftPipePool *pool)
{
  int fds[2];
  int cap;
  WeftPipe *pipe;

  if (pool->broken || pipe2 (fds, O_NONBLOCK | O_CLOEXEC) < 0)
    {
      pool->broken = TRUE;
      return NULL;
    }
  /* a smaller pipe still works: take what the kernel allows */
  cap = fcntl (fds[1], F_SETPIPE_SZ, WEFT_PIPE_SIZE);
  if (cap < 0)
    cap = fcntl (fds[1], F_GETPIPE_SZ);
  pipe = g_new0 (WeftPipe, 1);
  pipe->rfd = fds[0];
  pipe->wfd = fds[1];
  pipe->cap = cap > 0 ? (gsize) cap : 65536;
  pool->n_open++;
  return pipe;
}

WeftPipe *
weft_pipe_pool_get (WeftPipePool *pool)
{
  WeftPipe *pipe = pool->idle;

  if (pipe == NULL)
    return weft_pipe_open (pool);
  pool->idle = pipe->next;
  pool->n_idle--;
  pipe->next = NULL;
  return pipe;
}

void
weft_pipe_pool_put (WeftPipePool *pool, WeftPipe *pipe)
{
  if (pipe == NULL)
    return;
  pool->broken = FALSE;
  /* bytes of a broken-off body must never reach the next one */
  if (pipe->len > 0 || pool->n_idle >= pool->max_idle)
    {
      weft_pipe_close (pool, pipe);
      return;
    }
  pipe->next = pool->idle;
  pool->idle = pipe;
  pool->n_idle++;
}

guint
weft_pipe_pool_get_n_open (WeftPipePool *pool)
{
  return pool->n_open;
}

gssize
weft_pipe_fill (WeftPipe *pipe, int fd, guint64 max)
{
  gsize want = (gsize) MIN ((guint64) (pipe->cap - pipe->len), max);
  gssize n = splice (fd, NULL, pipe->wfd, NULL, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);

  if (n > 0)
    pipe->len += (gsize) n;
  return n;
}

gssize
weft_pipe_drain (WeftPipe *pipe, int fd)
{
  gssize n = splice (pipe->rfd, NULL, fd, NULL, pipe->len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);

  if (n > 0)
    pipe->len -= (gsize) n;
  return n;
}
