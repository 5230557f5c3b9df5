/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "weft-worker-private.h"
#include "weft-mirror-private.h"
#include "weft-conn-private.h"
#include "weft-log-private.h"
#include "weft-metrics-private.h"

#include <errno.h>
#include <malloc.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define WEFT_TICK_MS 100
#define WEFT_ACCEPT_BATCH 64
#define WEFT_TRIM_BYTES (1 << 20)
#define WEFT_TRIM_MAX_CONNS 64
/* out of fds, a listener is not polled for this long (nginx waits 500 ms) */
#define WEFT_ACCEPT_PAUSE_MS 100

static __thread WeftWorker *weft_worker_current;
static GMutex weft_shared_mutex;
static GMainContext *weft_main_context;

/* ------------------------------------------------------------------ */
/* host API for plugins                                                 */
/* ------------------------------------------------------------------ */

gint
weft_worker_get_index (void)
{
  return weft_worker_current != NULL ? (gint) weft_worker_current->index : -1;
}

WeftWorker *
weft_worker_get_current (void)
{
  return weft_worker_current;
}

void
weft_shared_lock (void)
{
  g_mutex_lock (&weft_shared_mutex);
}

void
weft_shared_unlock (void)
{
  g_mutex_unlock (&weft_shared_mutex);
}

static GMainContext *
weft_worker_current_context (void)
{
  return weft_worker_current != NULL ? weft_worker_current->context : weft_main_context;
}

guint
weft_worker_timeout_add (guint interval_ms, GSourceFunc func, gpointer data)
{
  GSource *source = g_timeout_source_new (interval_ms);
  guint id;

  g_source_set_callback (source, func, data, NULL);
  id = g_source_attach (source, weft_worker_current_context ());
  g_source_unref (source);
  return id;
}

void
weft_worker_timeout_remove (guint id)
{
  GSource *source = id != 0 ? g_main_context_find_source_by_id (weft_worker_current_context (), id)
                            : NULL;

  if (source != NULL)
    g_source_destroy (source);
}

/* a GSource watching one fd whose interest can change (g_unix_fd_source
 * cannot), for plugins talking to remote services from a worker */
typedef struct {
  GSource   source;
  gpointer  tag;
  int       fd;
} WeftFdSource;

static gboolean
weft_fd_source_dispatch (GSource *source, GSourceFunc callback, gpointer data)
{
  WeftFdSource *fs = (WeftFdSource *) source;
  WeftFdFunc func = (WeftFdFunc) (void (*) (void)) callback;

  return func (fs->fd, g_source_query_unix_fd (source, fs->tag), data);
}

static GSourceFuncs weft_fd_source_funcs = {
  .dispatch = weft_fd_source_dispatch,
};

guint
weft_worker_fd_add (int fd, GIOCondition condition, WeftFdFunc func, gpointer data)
{
  GSource *source = g_source_new (&weft_fd_source_funcs, sizeof (WeftFdSource));
  WeftFdSource *fs = (WeftFdSource *) source;
  guint id;

  fs->fd = fd;
  fs->tag = g_source_add_unix_fd (source, fd, condition);
  g_source_set_callback (source, (GSourceFunc) (void (*) (void)) func, data, NULL);
  id = g_source_attach (source, weft_worker_current_context ());
  g_source_unref (source);
  return id;
}

void
weft_worker_fd_update (guint id, GIOCondition condition)
{
  GSource *source = id != 0 ? g_main_context_find_source_by_id (weft_worker_current_context (), id)
                            : NULL;

  if (source != NULL && source->source_funcs == &weft_fd_source_funcs)
    g_source_modify_unix_fd (source, ((WeftFdSource *) source)->tag, condition);
}

void
weft_main_invoke (GSourceFunc func, gpointer data)
{
  g_main_context_invoke (weft_main_context, func, data);
}

/* ------------------------------------------------------------------ */
/* connections and generations                                          */
/* ------------------------------------------------------------------ */

void
weft_worker_conn_added (WeftWorker *w, WeftConn *c)
{
  c->next = w->conns;
  c->prev = NULL;
  if (w->conns != NULL)
    w->conns->prev = c;
  w->conns = c;
  g_atomic_int_inc (&w->n_conns);
}

void
weft_worker_conn_removed (WeftWorker *w, WeftConn *c)
{
  /* the slot weft_worker_accept() reserved */
  g_atomic_int_add (&c->wl->shared->n_conns, -1);
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    w->conns = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  /* freed after the epoll batch: an event for it may still be queued */
  c->prev = NULL;
  c->next = w->dead;
  w->dead = c;
  g_atomic_int_add (&w->n_conns, -1);
}

static gboolean
weft_worker_unref_on_main (gpointer data)
{
  WeftGeneration *gen = data;

  weft_generation_unref (gen);
  return G_SOURCE_REMOVE;
}

/* plugin configs are freed on the main thread, where they were made */
static void
weft_worker_drop_generation (WeftWorker *w, WeftGeneration *gen)
{
  weft_generation_worker_fini (gen, w->index);
  g_main_context_invoke (w->main_context, weft_worker_unref_on_main, gen);
}

void
weft_worker_gen_released (WeftWorker *w, WeftGeneration *gen)
{
  if (gen == w->gen || gen->workers[w->index].inflight > 0)
    return;
  if (g_ptr_array_remove_fast (w->retiring, gen))
    weft_worker_drop_generation (w, gen);
}

guint64
weft_worker_random (WeftWorker *w)
{
  /* xorshift128+: fast, and random enough for ids, splits and jitter */
  guint64 s1 = w->rng[0];
  const guint64 s0 = w->rng[1];

  w->rng[0] = s0;
  s1 ^= s1 << 23;
  w->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
  return w->rng[1] + s0;
}

void
weft_worker_random_id (WeftWorker *w, char out[37])
{
  static const char hex[] = "0123456789abcdef";
  guint64 r[2];

  for (int k = 0; k < 2; k++)
    r[k] = weft_worker_random (w);
  /* UUID version 4 layout */
  r[0] = (r[0] & ~G_GUINT64_CONSTANT (0xf000)) | 0x4000;
  r[1] = (r[1] & G_GUINT64_CONSTANT (0x3fffffffffffffff)) | G_GUINT64_CONSTANT (0x8000000000000000);
  for (int i = 0, o = 0; i < 32; i++)
    {
      guint64 word = r[i / 16];
      guint nib = (guint) (word >> (60 - 4 * (i % 16))) & 0xf;
      if (i == 8 || i == 12 || i == 16 || i == 20)
        out[o++] = '-';
      out[o++] = hex[nib];
    }
  out[36] = '\0';
}

/* ------------------------------------------------------------------ */
/* the loop                                                             */
/* ------------------------------------------------------------------ */

static void
weft_worker_update_clock (WeftWorker *w)
{
  w->now_us = g_get_monotonic_time ();
  w->now_ms = w->now_us / 1000;
  w->wall_offset_us = g_get_real_time () - w->now_us;
}

static void
weft_worker_batch_done (gpointer data)
{
  WeftWorker *w = data;

  /* a timer ran between the poll and the epoll dispatch: an event taken by
   * the poll may point at a connection closed here, so the frees wait for
   * the dispatch's own batch_done */
  if (w->in_loop && weft_epoll_source_has_pending (w->epoll))
    {
      weft_worker_update_clock (w);
      return;
    }

  while (w->dead != NULL)
    {
      WeftConn *c = w->dead;
      w->dead = c->next;
      weft_conn_free (c);
      /* a burst's connections are heap too: they count toward the trim */
      w->released += sizeof (WeftConn);
    }
  weft_mirror_free_dead (w);
  weft_upstream_pool_reap (w->pool);
  weft_worker_update_clock (w);
}

static void
weft_worker_batch_begin_cb (gpointer data)
{
  weft_worker_update_clock (data);
}

void
weft_worker_begin_batch (WeftWorker *w)
{
  weft_worker_update_clock (w);
}

void
weft_worker_end_batch (WeftWorker *w)
{
  weft_worker_batch_done (w);
}

WeftListenerShared *
weft_listener_shared_new (void)
{
  WeftListenerShared *shared = g_atomic_rc_box_new0 (WeftListenerShared);

  shared->overflow_log_s = -1;
  shared->fd_log_s = -1;
  return shared;
}

void
weft_listener_shared_unref (WeftListenerShared *shared)
{
  g_atomic_rc_box_release (shared);
}

/* TRUE once a second at most per @last_s (shared by the workers); @quiet
 * counts the events in between, and @n gets them when the line is due */
static gboolean
weft_worker_log_due (gint *last_s, gint *quiet, gint64 now_ms, gint *n)
{
  gint now_s = (gint) (now_ms / 1000);
  gint last = g_atomic_int_get (last_s);

  g_atomic_int_inc (quiet);
  if (now_s == last || !g_atomic_int_compare_and_exchange (last_s, last, now_s))
    return FALSE;
  *n = g_atomic_int_exchange (quiet, 0);
  return TRUE;
}

/* reserves a connection slot of the listener, over all workers: added
 * first and taken back if past the limit, so two workers never both take
 * the last one */
static gboolean
weft_worker_listener_admit (WeftWorkerListener *wl)
{
  gint max = g_atomic_int_get (&wl->shared->max_conns);

  if (g_atomic_int_add (&wl->shared->n_conns, 1) < max || max == 0)
    return TRUE;
  g_atomic_int_add (&wl->shared->n_conns, -1);
  return FALSE;
}

/* past max_connections: accepted and closed at once, which costs one
 * accept and one close, never a spin, and tells the client at once */
static void
weft_worker_overflow (WeftWorkerListener *wl, int fd)
{
  WeftListenerShared *sh = wl->shared;
  gint n;

  close (fd);
  weft_metric_series_add (wl->overflow, 1);
  if (weft_worker_log_due (&sh->overflow_log_s, &sh->overflow_quiet, wl->worker->now_ms, &n))
    weft_log (WEFT_LOG_WARNING, "worker", "listener %s full (max_connections %d): closed %d "
              "new connections since the last report", wl->name,
              g_atomic_int_get (&sh->max_conns), n);
}

/* out of fds: the listener stays readable, so polling it again at once
 * would spin; it rests until the tick after WEFT_ACCEPT_PAUSE_MS and its
 * clients wait in the backlog meanwhile */
static void
weft_worker_listener_pause (WeftWorkerListener *wl, int err)
{
  WeftListenerShared *sh = wl->shared;
  WeftWorker *w = wl->worker;
  gint n;

  weft_epoll_source_remove (w->epoll, &wl->h);
  wl->resume_ms = w->now_ms + WEFT_ACCEPT_PAUSE_MS;
  weft_metric_series_add (wl->fd_exhausted, 1);
  if (weft_worker_log_due (&sh->fd_log_s, &sh->fd_quiet, w->now_ms, &n))
    weft_log (WEFT_LOG_WARNING, "worker", "accept on %s: %s: out of file descriptors, "
              "pausing accepts for %d ms; %d pauses since the last report", wl->name,
              g_strerror (err), WEFT_ACCEPT_PAUSE_MS, n);
}

static void
weft_worker_resume_listeners (WeftWorker *w)
{
  for (guint i = 0; i < w->listeners->len; i++)
    {
      WeftWorkerListener *wl = w->listeners->pdata[i];
      if (wl->resume_ms == 0 || wl->closed || w->now_ms < wl->resume_ms)
        continue;
      if (!weft_epoll_source_add (w->epoll, &wl->h, wl->h.fd, EPOLLIN))
        {
          wl->resume_ms = w->now_ms + WEFT_ACCEPT_PAUSE_MS;
          continue;
        }
      wl->resume_ms = 0;
    }
}

static gboolean
weft_worker_accept_failed (WeftWorkerListener *wl, int err)
{
  if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM)
    weft_worker_listener_pause (wl, err);
  else if (err != EAGAIN && err != EINTR && err != ECONNABORTED)
    weft_log (WEFT_LOG_WARNING, "worker", "accept on %s: %s", wl->name, g_strerror (err));
  /* a connection aborted in the backlog leaves the others behind it */
  return err == ECONNABORTED || err == EINTR;
}

static void
weft_worker_accept (WeftEpollHandler *handler, guint32 events)
{
  WeftWorkerListener *wl = (WeftWorkerListener *) handler;
  WeftWorker *w = wl->worker;

  (void) events;
  weft_worker_update_clock (w);
  for (int i = 0; i < WEFT_ACCEPT_BATCH && !wl->closed && wl->resume_ms == 0; i++)
    {
      struct sockaddr_storage peer;
      socklen_t len = sizeof peer;
      int fd = accept4 (wl->h.fd, (struct sockaddr *) &peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      WeftConn *c;

      if (fd < 0 && weft_worker_accept_failed (wl, errno))
        continue;
      if (fd < 0)
        return;
      if (!weft_worker_listener_admit (wl))
        {
          weft_worker_overflow (wl, fd);
          continue;
        }
      c = weft_conn_new (w, wl, fd, (struct sockaddr *) &peer, len);
      if (c == NULL)
        g_atomic_int_add (&wl->shared->n_conns, -1);
      /* the request usually came with the connection: try it now */
      if (c != NULL)
        c->readable = TRUE;
      if (c != NULL)
        c->h.func (&c->h, EPOLLIN);
    }
}

/* after a burst, the freed buffers go back to the system: without this
 * the heap keeps every page a burst ever touched */
static void
weft_worker_trim (WeftWorker *w)
{
  w->released += weft_buf_pool_take_released (w->bufs);
  if (w->released < WEFT_TRIM_BYTES || g_atomic_int_get (&w->n_conns) > WEFT_TRIM_MAX_CONNS)
    return;
  w->released = 0;
  malloc_trim (0);
}

static gboolean
weft_worker_tick (gpointer data)
{
  WeftWorker *w = data;
  WeftConn *next;

  weft_worker_update_clock (w);
  for (WeftConn *c = w->conns; c != NULL; c = next)
    {
      next = c->next;
      weft_conn_check_deadline (c, w->now_ms);
    }
  weft_mirror_check_deadlines (w, w->now_ms);
  weft_upstream_pool_expire (w->pool, w->now_ms);
  weft_worker_resume_listeners (w);
  weft_worker_batch_done (w);
  weft_worker_trim (w);
  return G_SOURCE_CONTINUE;
}

static gpointer
weft_worker_thread (gpointer data)
{
  WeftWorker *w = data;

  weft_worker_current = w;
  weft_epoll_source_bind_thread (w->epoll);
  g_main_context_push_thread_default (w->context);
  w->in_loop = TRUE;
  g_main_loop_run (w->loop);
  w->in_loop = FALSE;
  g_main_context_pop_thread_default (w->context);
  weft_worker_current = NULL;
  return NULL;
}

WeftWorker *
weft_worker_new (guint index, WeftCoreMetrics *metrics, GMainContext *main_context)
{
  WeftWorker *w = g_new0 (WeftWorker, 1);

  weft_main_context = main_context;
  w->index = index;
  w->metrics = metrics;
  w->main_context = main_context;
  w->context = g_main_context_new ();
  w->loop = g_main_loop_new (w->context, FALSE);
  w->epoll = weft_epoll_source_new (w->context, weft_worker_batch_done, w);
  if (w->epoll != NULL)
    weft_epoll_source_set_batch_begin (w->epoll, weft_worker_batch_begin_cb);
  w->bufs = weft_buf_pool_new (1 << 20);
  w->pipes = weft_pipe_pool_new (8);
  w->pool = weft_upstream_pool_new (w->epoll, w->bufs, 1024);
  w->retiring = g_ptr_array_new ();
  w->listeners = g_ptr_array_new ();
  w->rng[0] = g_random_int () | ((guint64) g_random_int () << 32) | 1;
  w->rng[1] = g_random_int () | ((guint64) g_random_int () << 32);
  weft_worker_update_clock (w);
  w->tick = g_timeout_source_new (WEFT_TICK_MS);
  g_source_set_callback (w->tick, weft_worker_tick, w, NULL);
  g_source_attach (w->tick, w->context);
  return w;
}

void
weft_worker_start (WeftWorker *w)
{
  g_autofree char *name = g_strdup_printf ("weft-worker-%u", w->index);

  w->thread = g_thread_new (name, weft_worker_thread, w);
}

static gboolean
weft_worker_quit_cb (gpointer data)
{
  WeftWorker *w = data;

  g_main_loop_quit (w->loop);
  return G_SOURCE_REMOVE;
}

void
weft_worker_stop (WeftWorker *w)
{
  if (w->thread == NULL)
    return;
  g_main_context_invoke (w->context, weft_worker_quit_cb, w);
  g_thread_join (w->thread);
  w->thread = NULL;
}

void
weft_worker_free (WeftWorker *w)
{
  WeftConn *next;

  if (w == NULL)
    return;
  /* the thread is gone: what is left is closed from here */
  weft_worker_current = w;
  for (WeftConn *c = w->conns; c != NULL; c = next)
    {
      next = c->next;
      weft_conn_abort (c);
    }
  weft_mirror_close_all (w);
  weft_worker_batch_done (w);
  for (guint i = 0; i < w->listeners->len; i++)
    {
      WeftWorkerListener *wl = w->listeners->pdata[i];
      if (!wl->closed)
        close (wl->h.fd);
      weft_listener_shared_unref (wl->shared);
      g_free (wl->name);
      g_free (wl);
    }
  g_ptr_array_unref (w->listeners);
  /* the thread is joined: its generations are released from here */
  for (guint i = 0; i < w->retiring->len; i++)
    {
      weft_generation_worker_fini (w->retiring->pdata[i], w->index);
      weft_generation_unref (w->retiring->pdata[i]);
    }
  g_ptr_array_set_size (w->retiring, 0);
  if (w->gen != NULL)
    {
      weft_generation_worker_fini (w->gen, w->index);
      g_clear_pointer (&w->gen, weft_generation_unref);
    }
  weft_upstream_pool_free (w->pool);
  weft_buf_pool_free (w->bufs);
  weft_pipe_pool_free (w->pipes);
  g_source_destroy (w->tick);
  g_source_unref (w->tick);
  weft_epoll_source_free (w->epoll);
  g_main_loop_unref (w->loop);
  g_main_context_unref (w->context);
  g_ptr_array_unref (w->retiring);
  weft_worker_current = NULL;
  g_free (w);
}

gint
weft_worker_get_n_conns (WeftWorker *w)
{
  return g_atomic_int_get (&w->n_conns);
}

/* ------------------------------------------------------------------ */
/* messages from the main thread                                        */
/* ------------------------------------------------------------------ */

typedef struct {
  WeftWorker     *worker;
  WeftGeneration *gen;
  guint           id;
  char           *name;
  int             fd;
  WeftListenerShared *shared;
} WeftWorkerMsg;

static void
weft_worker_msg_free (WeftWorkerMsg *msg)
{
  g_clear_pointer (&msg->shared, weft_listener_shared_unref);
  g_free (msg->name);
  g_free (msg);
}

static void
weft_worker_invoke (WeftWorker *w, GSourceFunc func, WeftWorkerMsg *msg)
{
  msg->worker = w;
  g_main_context_invoke_full (w->context, G_PRIORITY_HIGH, func, msg,
                              (GDestroyNotify) weft_worker_msg_free);
}

/* connections of a listener the new generation lacks close when idle */
static void
weft_worker_close_orphans (WeftWorker *w)
{
  WeftConn *next;

  for (WeftConn *c = w->conns; c != NULL; c = next)
    {
      next = c->next;
      if (weft_generation_find_listener_id (w->gen, c->wl->id) == NULL)
        weft_conn_drain (c);
    }
}

static gboolean
weft_worker_adopt_cb (gpointer data)
{
  WeftWorkerMsg *msg = data;
  WeftWorker *w = msg->worker;
  WeftGeneration *old = w->gen;

  weft_generation_worker_init (msg->gen, w->index);
  w->gen = g_steal_pointer (&msg->gen);
  if (old != NULL)
    {
      if (old->workers[w->index].inflight == 0)
        weft_worker_drop_generation (w, old);
      else
        g_ptr_array_add (w->retiring, old);
    }
  weft_worker_close_orphans (w);
  weft_worker_batch_done (w);
  return G_SOURCE_REMOVE;
}

void
weft_worker_post_generation (WeftWorker *w, WeftGeneration *gen)
{
  WeftWorkerMsg *msg = g_new0 (WeftWorkerMsg, 1);

  msg->gen = gen;
  weft_worker_invoke (w, weft_worker_adopt_cb, msg);
}

static WeftMetricSeries *
weft_worker_listener_series (WeftMetric *metric, const char *listener, const char *code)
{
  const char *values[] = { listener, code, NULL };

  return weft_metric_get_series (metric, values);
}

/* resolved at the first spliced body, so listeners that never splice list
 * none; registering is idempotent, so the worker may do it */
void
weft_worker_listener_count_spliced (WeftWorkerListener *wl, gboolean response, gsize n)
{
  static const char *const directions[] = { "request", "response" };
  WeftMetricSeries **slot = &wl->spliced[response ? 1 : 0];

  if (*slot == NULL)
    {
      WeftMetric *m = weft_metrics_register (WEFT_METRIC_COUNTER, "weft_spliced_bytes_total",
          "Body bytes moved socket to socket with splice(2), never copied through weft.",
          (const char *const[]) { "listener", "direction", NULL }, NULL, 0);
      *slot = weft_metric_get_series (m, (const char *const[]) {
                                        wl->name, directions[response ? 1 : 0], NULL });
    }
  weft_metric_series_add (*slot, (gint64) n);
}

/* series are resolved at the first handshake of each kind, so listeners
 * without TLS list none; after that it is one pointer per count */
void
weft_worker_listener_count_tls (WeftWorkerListener *wl, WeftTlsRole role, gboolean resumed,
                                WeftTlsFailure failure)
{
  static const char *const roles[] = { "server", "client" };
  WeftMetricSeries **slot = failure == WEFT_TLS_FAIL_NONE ? &wl->tls_ok[role][resumed ? 1 : 0]
                                                         : &wl->tls_failed[role][failure];

  if (*slot == NULL && failure == WEFT_TLS_FAIL_NONE)
    *slot = weft_metric_get_series (wl->worker->metrics->tls_handshakes, (const char *const[]) {
                                      wl->name, roles[role], resumed ? "true" : "false", NULL });
  else if (*slot == NULL)
    *slot = weft_metric_get_series (wl->worker->metrics->tls_failures, (const char *const[]) {
                                      wl->name, roles[role], weft_tls_failure_to_string (failure),
                                      NULL });
  weft_metric_series_add (*slot, 1);
}

static gboolean
weft_worker_listener_add_cb (gpointer data)
{
  WeftWorkerMsg *msg = data;
  WeftWorker *w = msg->worker;
  WeftWorkerListener *wl = g_new0 (WeftWorkerListener, 1);
  static const char *const classes[] = { "other", "1xx", "2xx", "3xx", "4xx", "5xx" };

  wl->worker = w;
  wl->id = msg->id;
  wl->name = g_strdup (msg->name);
  wl->shared = g_steal_pointer (&msg->shared);
  wl->h.func = weft_worker_accept;
  wl->overflow = weft_worker_listener_series (w->metrics->listener_overflow, wl->name, NULL);
  wl->fd_exhausted = weft_worker_listener_series (w->metrics->listener_fd_exhausted, wl->name,
                                                  NULL);
  wl->conns_active = weft_worker_listener_series (w->metrics->conns_active, wl->name, NULL);
  wl->conns_total = weft_worker_listener_series (w->metrics->conns_total, wl->name, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (classes); i++)
    wl->requests[i] = weft_worker_listener_series (w->metrics->requests_total, wl->name,
                                                   classes[i]);
  if (!weft_epoll_source_add (w->epoll, &wl->h, msg->fd, EPOLLIN))
    {
      weft_log (WEFT_LOG_ERROR, "worker", "cannot watch listener %s: %s", wl->name,
                g_strerror (errno));
      close (msg->fd);
      wl->closed = TRUE;
    }
  msg->fd = -1;
  g_ptr_array_add (w->listeners, wl);
  return G_SOURCE_REMOVE;
}

void
weft_worker_post_listener_add (WeftWorker *w, guint id, const char *name, int fd,
                               WeftListenerShared *shared)
{
  WeftWorkerMsg *msg = g_new0 (WeftWorkerMsg, 1);

  msg->shared = g_atomic_rc_box_acquire (shared);
  msg->id = id;
  msg->name = g_strdup (name);
  msg->fd = fd;
  weft_worker_invoke (w, weft_worker_listener_add_cb, msg);
}

static void
weft_worker_close_listener (WeftWorker *w, WeftWorkerListener *wl)
{
  if (wl->closed)
    return;
  if (wl->resume_ms == 0)
    weft_epoll_source_remove (w->epoll, &wl->h);
  close (wl->h.fd);
  wl->closed = TRUE;
}

typedef struct {
  WeftWorker *worker;
  guint       id;
} WeftDrainTimer;

/* the drain timeout of a removed listener: whatever is left is closed */
static gboolean
weft_worker_listener_drained (gpointer data)
{
  WeftDrainTimer *t = data;
  WeftWorker *w = t->worker;
  WeftConn *next;
  guint n = 0;

  for (WeftConn *c = w->conns; c != NULL; c = next)
    {
      next = c->next;
      if (c->wl->id != t->id)
        continue;
      weft_conn_abort (c);
      n++;
    }
  if (n > 0)
    weft_log (WEFT_LOG_WARNING, "worker", "drain timeout of a removed listener: closed %u "
              "connections", n);
  weft_worker_batch_done (w);
  return G_SOURCE_REMOVE;
}

static gboolean
weft_worker_listener_remove_cb (gpointer data)
{
  WeftWorkerMsg *msg = data;
  WeftWorker *w = msg->worker;
  WeftDrainTimer *t = g_new0 (WeftDrainTimer, 1);
  GSource *timer;

  /* the record stays: its connections point at it until they close */
  for (guint i = 0; i < w->listeners->len; i++)
    {
      WeftWorkerListener *wl = w->listeners->pdata[i];
      if (wl->id == msg->id)
        weft_worker_close_listener (w, wl);
    }
  t->worker = w;
  t->id = msg->id;
  timer = g_timeout_source_new (w->gen != NULL ? w->gen->config->timeouts.drain_ms : 30000);
  g_source_set_callback (timer, weft_worker_listener_drained, t, g_free);
  g_source_attach (timer, w->context);
  g_source_unref (timer);
  return G_SOURCE_REMOVE;
}

void
weft_worker_post_listener_remove (WeftWorker *w, guint id)
{
  WeftWorkerMsg *msg = g_new0 (WeftWorkerMsg, 1);

  msg->id = id;
  weft_worker_invoke (w, weft_worker_listener_remove_cb, msg);
}

static gboolean
weft_worker_drain_cb (gpointer data)
{
  WeftWorkerMsg *msg = data;
  WeftWorker *w = msg->worker;
  WeftConn *next;

  w->draining = TRUE;
  for (guint i = 0; i < w->listeners->len; i++)
    weft_worker_close_listener (w, w->listeners->pdata[i]);
  for (WeftConn *c = w->conns; c != NULL; c = next)
    {
      next = c->next;
      weft_conn_drain (c);
    }
  weft_worker_batch_done (w);
  return G_SOURCE_REMOVE;
}

void
weft_worker_post_drain (WeftWorker *w)
{
  weft_worker_invoke (w, weft_worker_drain_cb, g_new0 (WeftWorkerMsg, 1));
}
