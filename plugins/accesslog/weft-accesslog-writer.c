/* weft-accesslog-writer.c: per-worker rings and the thread that writes them
 *
 * Each worker appends whole lines to a byte ring only it writes to (the
 * head) and only the thread reads from (the tail), so an append is two
 * memcpy and an atomic store. The thread gathers what every ring holds
 * into one writev(), then moves the tails; a ring's space is only given
 * back once its bytes are out, so a destination that takes nothing fills
 * the rings and workers drop lines instead of waiting. The destination fd
 * is non-blocking (pipes and terminals get a description of their own),
 * so the thread waits in poll() where it can be told to stop.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "weft-accesslog-writer-private.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* after the first line of a quiet spell, wait this long for more, so a
 * trickle of requests costs one write() per interval, not one per line */
#define WEFT_ACCESSLOG_LINGER_MS 10
/* a destination that failed is tried again this often */
#define WEFT_ACCESSLOG_RETRY_MS 1000
/* a reopen first writes out what was taken before it, a few rounds at most */
#define WEFT_ACCESSLOG_REOPEN_ROUNDS 4

/* one worker's ring; the head and the tail live on cache lines of their
 * own so the worker and the thread do not fight over one */
typedef struct {
  guint64  head;                /* bytes ever appended: the worker's */
  char    *data;
  guint8   pad_head[64 - sizeof (guint64) - sizeof (char *)];
  guint64  tail;                /* bytes ever written out: the thread's */
  guint64  gathered;            /* bytes of this ring in the pending writev */
  guint8   pad_tail[64 - 2 * sizeof (guint64)];
} WeftAccessLogRing;

G_STATIC_ASSERT (sizeof (WeftAccessLogRing) == 128);

struct _WeftAccessLogWriter {
  guint                  refcount;      /* main thread */
  char                  *key;
  char                  *path;          /* NULL for stdout and stderr */
  int                    fd;
  gboolean               is_socket;     /* send with MSG_DONTWAIT */
  int                    wake_fd;       /* eventfd: lines, stop, reopen */
  guint                  n_rings;
  gsize                  buffer;        /* as configured */
  gsize                  ring_size;     /* a power of two */
  WeftAccessLogRing     *rings;
  WeftAccessLogCounters  counters;
  GThread               *thread;
  gint                   sleeping;      /* the thread waits for a first line */
  gint                   stop;
  gint                   reopen;
  gint64                 stop_deadline; /* monotonic; set before stop */
  /* the thread's own */
  struct iovec          *iov;
  guint                  max_iov;
  guint                  first;         /* the ring gathered first */
  gboolean               failing;
};

typedef enum {
  WEFT_ACCESSLOG_DRAIN_IDLE,      /* nothing to write */
  WEFT_ACCESSLOG_DRAIN_WROTE,     /* wrote something; there may be more */
  WEFT_ACCESSLOG_DRAIN_BLOCKED,   /* the destination takes nothing now */
  WEFT_ACCESSLOG_DRAIN_FAILED,    /* the write failed */
} WeftAccessLogDrain;

static GHashTable *weft_accesslog_writers;   /* key -> writer; main thread */
static GMutex      weft_accesslog_count_lock;

/* ------------------------------------------------------------------ */
/* destinations                                                         */
/* ------------------------------------------------------------------ */

static int
weft_accesslog_std_fd (const char *path)
{
  if (g_str_equal (path, "-") || g_str_equal (path, "/dev/stdout"))
    return STDOUT_FILENO;
  if (g_str_equal (path, "/dev/stderr"))
    return STDERR_FILENO;
  return -1;
}

char *
weft_accesslog_destination_key (const char *path)
{
  int std_fd = weft_accesslog_std_fd (path);

  if (std_fd >= 0)
    return g_strdup (std_fd == STDOUT_FILENO ? "stdout" : "stderr");
  return g_canonicalize_filename (path, NULL);
}

static int
weft_accesslog_open_std (int std_fd, GError **error)
{
  const char *name = std_fd == STDOUT_FILENO ? "stdout" : "stderr";
  struct stat st;
  int fd;

  if (fstat (std_fd, &st) < 0)
    {
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_IO, "%s is not open: %s", name,
                   g_strerror (errno));
      return -1;
    }
  /* a pipe or a terminal gets a description of its own, so making it
   * non-blocking does not touch weft's own stdout and stderr */
  if (S_ISFIFO (st.st_mode) || S_ISCHR (st.st_mode))
    {
      char proc[32];
      g_snprintf (proc, sizeof proc, "/proc/self/fd/%d", std_fd);
      fd = open (proc, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
      if (fd >= 0)
        return fd;
    }
  /* a file shares the description, and so the offset, with weft's own
   * output; a socket is sent to with MSG_DONTWAIT */
  fd = fcntl (std_fd, F_DUPFD_CLOEXEC, 3);
  if (fd < 0)
    g_set_error (error, WEFT_ERROR, WEFT_ERROR_IO, "cannot use %s: %s", name,
                 g_strerror (errno));
  return fd;
}

int
weft_accesslog_destination_open (const char *path, GError **error)
{
  int std_fd = weft_accesslog_std_fd (path);
  int fd;

  if (std_fd >= 0)
    return weft_accesslog_open_std (std_fd, error);
  fd = open (path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0640);
  /* a FIFO nobody reads yet: hold it open for reading too, so lines wait
   * in the pipe for a reader instead of failing the configuration */
  if (fd < 0 && errno == ENXIO)
    fd = open (path, O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    g_set_error (error, WEFT_ERROR, WEFT_ERROR_IO, "cannot open '%s': %s", path,
                 g_strerror (errno));
  return fd;
}

static gboolean
weft_accesslog_fd_is_socket (int fd)
{
  struct stat st;

  return fstat (fd, &st) == 0 && S_ISSOCK (st.st_mode);
}

/* ------------------------------------------------------------------ */
/* counting                                                             */
/* ------------------------------------------------------------------ */

/* writer threads all count in the metrics' one non-worker slot, which
 * takes one writer at a time; this runs once per batch */
static void
weft_accesslog_count (WeftMetricSeries *series, gint64 n)
{
  if (series == NULL || n == 0)
    return;
  g_mutex_lock (&weft_accesslog_count_lock);
  weft_metric_series_add (series, n);
  g_mutex_unlock (&weft_accesslog_count_lock);
}

/* the '\n' in @len bytes of @r from position @from */
static guint64
weft_accesslog_ring_lines (WeftAccessLogWriter *w, WeftAccessLogRing *r, guint64 from,
                           guint64 len)
{
  guint64 lines = 0;

  while (len > 0)
    {
      gsize off = (gsize) (from & (w->ring_size - 1));
      gsize n = (gsize) MIN (len, (guint64) (w->ring_size - off));
      const char *p = r->data + off, *end = p + n;

      while ((p = memchr (p, '\n', (gsize) (end - p))) != NULL)
        {
          lines++;
          p++;
        }
      from += n;
      len -= n;
    }
  return lines;
}

/* ------------------------------------------------------------------ */
/* the worker's side                                                    */
/* ------------------------------------------------------------------ */

static void
weft_accesslog_writer_wake (WeftAccessLogWriter *w)
{
  guint64 one = 1;

  /* a full counter still wakes the thread: nothing to handle */
  if (write (w->wake_fd, &one, sizeof one) < 0)
    return;
}

gboolean
weft_accesslog_writer_push (WeftAccessLogWriter *w, guint worker, const char *line, gsize len)
{
  WeftAccessLogRing *r = &w->rings[worker % w->n_rings];
  guint64 head = r->head;
  guint64 used = head - __atomic_load_n (&r->tail, __ATOMIC_ACQUIRE);
  gsize half = w->ring_size / 2;
  gsize off, first;

  if (len > w->ring_size - used)
    return FALSE;
  off = (gsize) (head & (w->ring_size - 1));
  first = MIN (len, w->ring_size - off);
  memcpy (r->data + off, line, first);
  memcpy (r->data, line + first, len - first);
  /* sequentially consistent against the thread's sleeping flag: either it
   * sees this line when it looks again, or this sees it asleep */
  __atomic_store_n (&r->head, head + len, __ATOMIC_SEQ_CST);
  if (g_atomic_int_get (&w->sleeping) && g_atomic_int_compare_and_exchange (&w->sleeping, 1, 0))
    weft_accesslog_writer_wake (w);
  else if (used < half && used + len >= half)
    weft_accesslog_writer_wake (w);   /* half full: do not wait out the linger */
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* the thread                                                           */
/* ------------------------------------------------------------------ */

static gboolean
weft_accesslog_writer_empty (WeftAccessLogWriter *w)
{
  for (guint i = 0; i < w->n_rings; i++)
    if (__atomic_load_n (&w->rings[i].head, __ATOMIC_SEQ_CST) != w->rings[i].tail)
      return FALSE;
  return TRUE;
}

/* what the rings hold, as iovecs; returns how many. The ring a short
 * write stopped in comes first, so the rest of its line follows the part
 * that went out before any other ring's lines do. */
static guint
weft_accesslog_writer_gather (WeftAccessLogWriter *w)
{
  guint n = 0;

  for (guint k = 0; k < w->n_rings; k++)
    {
      WeftAccessLogRing *r = &w->rings[(w->first + k) % w->n_rings];
      guint64 len = __atomic_load_n (&r->head, __ATOMIC_ACQUIRE) - r->tail;
      gsize off = (gsize) (r->tail & (w->ring_size - 1));
      gsize first = (gsize) MIN (len, (guint64) (w->ring_size - off));

      r->gathered = 0;
      if (len == 0 || n + 2 > w->max_iov)
        continue;
      w->iov[n++] = (struct iovec) { r->data + off, first };
      if (len > first)
        w->iov[n++] = (struct iovec) { r->data, (gsize) len - first };
      r->gathered = len;
    }
  return n;
}

/* gives the written bytes back to their rings, in the order they were
 * gathered, and counts their lines */
static void
weft_accesslog_writer_consume (WeftAccessLogWriter *w, gsize done)
{
  guint64 lines = 0;
  guint first = w->first;

  for (guint k = 0; k < w->n_rings && done > 0; k++)
    {
      guint i = (first + k) % w->n_rings;
      WeftAccessLogRing *r = &w->rings[i];
      guint64 take = MIN ((guint64) done, r->gathered);

      if (take == 0)
        continue;
      lines += weft_accesslog_ring_lines (w, r, r->tail, take);
      __atomic_store_n (&r->tail, r->tail + take, __ATOMIC_RELEASE);
      done -= (gsize) take;
      /* a short write: this ring goes first next time */
      if (take < r->gathered)
        w->first = i;
    }
  weft_accesslog_count (w->counters.written, (gint64) lines);
}

static void
weft_accesslog_writer_failed (WeftAccessLogWriter *w, int err)
{
  weft_accesslog_count (w->counters.write_errors, 1);
  if (w->failing)
    return;
  w->failing = TRUE;
  weft_log (WEFT_LOG_WARNING, "accesslog", "writing to %s failed: %s; trying again every "
            "second, lines that do not fit meanwhile are dropped", w->key, g_strerror (err));
}

static WeftAccessLogDrain
weft_accesslog_writer_drain (WeftAccessLogWriter *w)
{
  guint n_iov = weft_accesslog_writer_gather (w);
  gssize done;

  if (n_iov == 0)
    return WEFT_ACCESSLOG_DRAIN_IDLE;
  if (w->is_socket)
    {
      struct msghdr msg = { .msg_iov = w->iov, .msg_iovlen = n_iov };
      done = sendmsg (w->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    }
  else
    done = writev (w->fd, w->iov, (int) n_iov);
  if (done < 0 && errno == EINTR)
    return WEFT_ACCESSLOG_DRAIN_WROTE;
  if (done < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    return WEFT_ACCESSLOG_DRAIN_BLOCKED;
  if (done < 0)
    {
      weft_accesslog_writer_failed (w, errno);
      return WEFT_ACCESSLOG_DRAIN_FAILED;
    }
  if (w->failing)
    weft_log (WEFT_LOG_INFO, "accesslog", "writing to %s works again", w->key);
  w->failing = FALSE;
  weft_accesslog_writer_consume (w, (gsize) done);
  return WEFT_ACCESSLOG_DRAIN_WROTE;
}

/* waits for the wake eventfd (and for room in the destination when
 * @want_out) at most @timeout_ms (-1 = no limit), and clears the eventfd */
static void
weft_accesslog_writer_poll (WeftAccessLogWriter *w, gboolean want_out, int timeout_ms)
{
  struct pollfd p[2] = { { w->wake_fd, POLLIN, 0 }, { w->fd, POLLOUT, 0 } };
  guint64 count;

  if (g_atomic_int_get (&w->stop))
    {
      gint64 left = (w->stop_deadline - g_get_monotonic_time ()) / 1000;
      timeout_ms = timeout_ms < 0 ? (int) MAX (left, 0) : (int) CLAMP (left, 0, timeout_ms);
    }
  if (poll (p, want_out ? 2 : 1, timeout_ms) > 0 && (p[0].revents & POLLIN) != 0 &&
      read (w->wake_fd, &count, sizeof count) < 0)
    return;
}

/* nothing to write: sleep until a worker appends, then linger a little so
 * the lines of a burst leave in one write */
static void
weft_accesslog_writer_idle (WeftAccessLogWriter *w)
{
  g_atomic_int_set (&w->sleeping, 1);
  /* a line appended before the flag was up would not wake us: look again */
  if (!weft_accesslog_writer_empty (w))
    {
      g_atomic_int_set (&w->sleeping, 0);
      return;
    }
  weft_accesslog_writer_poll (w, FALSE, -1);
  g_atomic_int_set (&w->sleeping, 0);
  if (!g_atomic_int_get (&w->stop) && !g_atomic_int_get (&w->reopen))
    weft_accesslog_writer_poll (w, FALSE, WEFT_ACCESSLOG_LINGER_MS);
}

/* SIGUSR1: what was taken before goes to the old file, the rest to the
 * file now at the path */
static void
weft_accesslog_writer_do_reopen (WeftAccessLogWriter *w)
{
  g_autoptr(GError) error = NULL;
  int fd, old;

  if (w->path == NULL)
    return;   /* stdout and stderr: nothing to reopen */
  for (guint i = 0; i < WEFT_ACCESSLOG_REOPEN_ROUNDS; i++)
    if (weft_accesslog_writer_drain (w) != WEFT_ACCESSLOG_DRAIN_WROTE)
      break;
  fd = weft_accesslog_destination_open (w->path, &error);
  if (fd < 0)
    {
      weft_accesslog_count (w->counters.write_errors, 1);
      weft_log (WEFT_LOG_WARNING, "accesslog", "reopen: %s; still writing to the old file",
                error->message);
      return;
    }
  old = w->fd;
  w->fd = fd;
  w->is_socket = weft_accesslog_fd_is_socket (fd);
  close (old);
  weft_accesslog_count (w->counters.reopens, 1);
  weft_log (WEFT_LOG_INFO, "accesslog", "reopened %s", w->path);
}

static gboolean
weft_accesslog_writer_past_deadline (WeftAccessLogWriter *w)
{
  return g_get_monotonic_time () >= w->stop_deadline;
}

/* lines still in the rings when the thread gave up are dropped */
static void
weft_accesslog_writer_count_left (WeftAccessLogWriter *w)
{
  guint64 lines = 0;

  for (guint i = 0; i < w->n_rings; i++)
    {
      WeftAccessLogRing *r = &w->rings[i];
      lines += weft_accesslog_ring_lines (w, r, r->tail, r->head - r->tail);
    }
  if (lines == 0)
    return;
  weft_accesslog_count (w->counters.dropped, (gint64) lines);
  weft_log (WEFT_LOG_WARNING, "accesslog", "%s took nothing for %d ms: %" G_GUINT64_FORMAT
            " lines dropped at close", w->key, WEFT_ACCESSLOG_CLOSE_TIMEOUT_MS, lines);
}

static gpointer
weft_accesslog_writer_thread (gpointer data)
{
  WeftAccessLogWriter *w = data;

  for (;;)
    {
      WeftAccessLogDrain d;

      if (g_atomic_int_compare_and_exchange (&w->reopen, 1, 0))
        weft_accesslog_writer_do_reopen (w);
      d = weft_accesslog_writer_drain (w);
      if (d == WEFT_ACCESSLOG_DRAIN_WROTE)
        continue;
      /* stopping: no worker appends any more, so idle means done */
      if (g_atomic_int_get (&w->stop) &&
          (d == WEFT_ACCESSLOG_DRAIN_IDLE || weft_accesslog_writer_past_deadline (w)))
        break;
      if (d == WEFT_ACCESSLOG_DRAIN_IDLE)
        weft_accesslog_writer_idle (w);
      else if (d == WEFT_ACCESSLOG_DRAIN_BLOCKED)
        weft_accesslog_writer_poll (w, TRUE, -1);
      else
        weft_accesslog_writer_poll (w, FALSE, WEFT_ACCESSLOG_RETRY_MS);
    }
  weft_accesslog_writer_count_left (w);
  return NULL;
}

/* ------------------------------------------------------------------ */
/* the control side                                                     */
/* ------------------------------------------------------------------ */

static gsize
weft_accesslog_ring_size (guint n_workers, gsize total)
{
  gsize want = total / MAX (n_workers, 1u);
  gsize size = WEFT_ACCESSLOG_MIN_RING;

  while (size * 2 <= want)
    size *= 2;
  return size;
}

static void
weft_accesslog_writer_free (WeftAccessLogWriter *w)
{
  for (guint i = 0; w->rings != NULL && i < w->n_rings; i++)
    g_free (w->rings[i].data);
  g_aligned_free (w->rings);
  g_free (w->iov);
  if (w->wake_fd >= 0)
    close (w->wake_fd);
  if (w->fd >= 0)
    close (w->fd);
  g_free (w->key);
  g_free (w->path);
  g_free (w);
}

WeftAccessLogWriter *
weft_accesslog_writer_new (const char *key, const char *path, int fd, guint n_workers,
                           gsize buffer, const WeftAccessLogCounters *counters, GError **error)
{
  WeftAccessLogWriter *w = g_new0 (WeftAccessLogWriter, 1);

  w->refcount = 1;
  w->fd = fd;
  w->is_socket = weft_accesslog_fd_is_socket (fd);
  w->key = g_strdup (key != NULL ? key : path);
  w->path = weft_accesslog_std_fd (path) < 0 ? g_strdup (path) : NULL;
  w->n_rings = MAX (n_workers, 1u);
  w->buffer = buffer;
  w->ring_size = weft_accesslog_ring_size (w->n_rings, buffer);
  w->rings = g_aligned_alloc0 (w->n_rings, sizeof (WeftAccessLogRing), 64);
  for (guint i = 0; i < w->n_rings; i++)
    w->rings[i].data = g_malloc (w->ring_size);
  w->max_iov = MIN (2 * w->n_rings, (guint) IOV_MAX);
  w->iov = g_new0 (struct iovec, w->max_iov);
  if (counters != NULL)
    w->counters = *counters;
  w->wake_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (w->wake_fd >= 0)
    w->thread = g_thread_try_new ("weft-accesslog", weft_accesslog_writer_thread, w, error);
  else
    g_set_error (error, WEFT_ERROR, WEFT_ERROR_IO, "eventfd: %s", g_strerror (errno));
  if (w->thread == NULL)
    {
      weft_accesslog_writer_free (w);
      return NULL;
    }
  if (key == NULL)
    return w;
  if (weft_accesslog_writers == NULL)
    weft_accesslog_writers = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_replace (weft_accesslog_writers, w->key, w);
  return w;
}

WeftAccessLogWriter *
weft_accesslog_writer_lookup (const char *key)
{
  return weft_accesslog_writers != NULL ? g_hash_table_lookup (weft_accesslog_writers, key)
                                        : NULL;
}

WeftAccessLogWriter *
weft_accesslog_writer_ref (WeftAccessLogWriter *w)
{
  w->refcount++;
  return w;
}

static void
weft_accesslog_writer_unregister (WeftAccessLogWriter *w)
{
  if (weft_accesslog_writers == NULL ||
      g_hash_table_lookup (weft_accesslog_writers, w->key) != w)
    return;
  g_hash_table_remove (weft_accesslog_writers, w->key);
  if (g_hash_table_size (weft_accesslog_writers) == 0)
    g_clear_pointer (&weft_accesslog_writers, g_hash_table_unref);
}

void
weft_accesslog_writer_unref (WeftAccessLogWriter *w)
{
  if (w == NULL || --w->refcount > 0)
    return;
  weft_accesslog_writer_unregister (w);
  /* no worker appends any more: the thread writes what is left and ends */
  w->stop_deadline = g_get_monotonic_time () +
                     (gint64) WEFT_ACCESSLOG_CLOSE_TIMEOUT_MS * 1000;
  g_atomic_int_set (&w->stop, 1);
  weft_accesslog_writer_wake (w);
  g_thread_join (w->thread);
  weft_accesslog_writer_free (w);
}

gsize
weft_accesslog_writer_get_buffer (WeftAccessLogWriter *w)
{
  return w->buffer;
}

gsize
weft_accesslog_writer_get_ring_size (WeftAccessLogWriter *w)
{
  return w->ring_size;
}

guint
weft_accesslog_writer_get_n_workers (WeftAccessLogWriter *w)
{
  return w->n_rings;
}

void
weft_accesslog_writer_reopen (WeftAccessLogWriter *w)
{
  g_atomic_int_set (&w->reopen, 1);
  weft_accesslog_writer_wake (w);
}
