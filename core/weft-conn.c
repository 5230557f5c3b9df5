/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "weft-conn-private.h"
#include "weft-log-private.h"
#include "weft-mirror-private.h"
#include "weft-retry-policy-private.h"

#include <errno.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define WEFT_TLS_LOG_BURST 20
#define WEFT_LINGER_MS 2000
#define WEFT_MAX_CONNECT_ATTEMPTS 3

static void weft_conn_run (WeftConn *c);
static void weft_conn_up_event (WeftEpollHandler *handler, guint32 events);

static const char *const weft_upstream_err_tokens[WEFT_UPSTREAM_ERR_COUNT] = {
  "upstream_connect_refused", "upstream_connect_failed", "upstream_connect_timeout",
  "upstream_reset", "upstream_timeout", "no_healthy_endpoint", "no_upstream",
  "upstream_bad_response", "upstream_retried", "upstream_overflow", "retry_budget_exhausted",
  "upstream_tls_failed", "upstream_unresolved", "response_idle_timeout",
};

static const guint32 weft_upstream_err_flags[WEFT_UPSTREAM_ERR_COUNT] = {
  WEFT_RESPONSE_FLAG_UPSTREAM_CONNECT_FAILURE, WEFT_RESPONSE_FLAG_UPSTREAM_CONNECT_FAILURE,
  WEFT_RESPONSE_FLAG_UPSTREAM_CONNECT_FAILURE, WEFT_RESPONSE_FLAG_UPSTREAM_TERMINATION,
  WEFT_RESPONSE_FLAG_UPSTREAM_TIMEOUT, WEFT_RESPONSE_FLAG_NO_HEALTHY_UPSTREAM,
  WEFT_RESPONSE_FLAG_NO_ROUTE, WEFT_RESPONSE_FLAG_UPSTREAM_PROTOCOL_ERROR,
  WEFT_RESPONSE_FLAG_UPSTREAM_TERMINATION, WEFT_RESPONSE_FLAG_UPSTREAM_OVERFLOW,
  WEFT_RESPONSE_FLAG_RETRY_LIMIT_EXCEEDED, WEFT_RESPONSE_FLAG_UPSTREAM_CONNECT_FAILURE,
  WEFT_RESPONSE_FLAG_NO_HEALTHY_UPSTREAM, WEFT_RESPONSE_FLAG_UPSTREAM_TERMINATION,
};

const char *
weft_upstream_err_token (WeftUpstreamErr err)
{
  return err < WEFT_UPSTREAM_ERR_COUNT ? weft_upstream_err_tokens[err] : "upstream_error";
}

/* ------------------------------------------------------------------ */
/* framing                                                              */
/* ------------------------------------------------------------------ */

static void
weft_framer_init (WeftFramer *f, WeftHttpBodyKind kind, guint64 length)
{
  memset (f, 0, sizeof *f);
  f->kind = kind;
  f->remaining = length;
  weft_chunked_decoder_init (&f->dec);
  f->done = kind == WEFT_HTTP_BODY_NONE || (kind == WEFT_HTTP_BODY_LENGTH && length == 0);
}

/* decodes @fresh bytes after the ready ones, keeping only their data:
 * *@data bytes of it, and what followed the body closes the gap */
static gssize
weft_framer_strip (WeftFramer *f, WeftBuf *buf, gsize fresh, gsize *data)
{
  char *p = weft_buf_head (buf) + f->ready;
  gssize used = weft_chunked_decoder_strip (&f->dec, p, fresh, data);

  if (used < 0)
    return -1;
  memmove (p + *data, p + used, fresh - (gsize) used);
  buf->end -= (gsize) used - *data;
  return used;
}

/* validates the bytes of @buf not yet taken; FALSE on bad framing */
static gboolean
weft_framer_take (WeftFramer *f, WeftBuf *buf)
{
  gsize avail = buf != NULL ? weft_buf_len (buf) : 0;
  gsize fresh;

  if (f->done || avail <= f->ready)
    return TRUE;
  fresh = avail - f->ready;
  switch (f->kind)
    {
    case WEFT_HTTP_BODY_LENGTH:
      fresh = (gsize) MIN ((guint64) fresh, f->remaining);
      f->remaining -= fresh;
      f->done = f->remaining == 0;
      break;
    case WEFT_HTTP_BODY_CHUNKED:
      {
        gssize used = f->strip ? weft_framer_strip (f, buf, fresh, &fresh) :
                      weft_chunked_decoder_feed (&f->dec, weft_buf_head (buf) + f->ready, fresh);
        if (used < 0)
          return FALSE;
        if (!f->strip)
          fresh = (gsize) used;
        f->done = f->dec.done;
        break;
      }
    case WEFT_HTTP_BODY_CLOSE:
      break;
    case WEFT_HTTP_BODY_NONE:
    default:
      fresh = 0;
      f->done = TRUE;
      break;
    }
  f->ready += fresh;
  f->total += fresh;
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* small helpers                                                        */
/* ------------------------------------------------------------------ */

static WeftListener *weft_conn_listener (WeftConn *c);

/* the client input grows on demand: a head that does not fit moves to the
 * next size class (up to the 64 KiB head limit), a body moves to 16 KiB */
static gboolean
weft_conn_grow_in (WeftConn *c)
{
  if (c->lingering || weft_buf_space (c->in) > 0)
    return FALSE;
  if (c->in_request && (c->in->cap >= WEFT_BUF_SMALL || c->tunnel))
    return FALSE;
  return weft_buf_pool_grow (c->worker->bufs, &c->in);
}

static WeftListener *
weft_conn_listener (WeftConn *c)
{
  return c->worker->gen != NULL ? weft_generation_find_listener_id (c->worker->gen, c->wl->id)
                                : NULL;
}

static const WeftTimeouts *
weft_conn_timeouts (WeftConn *c)
{
  WeftListener *l = c->in_request ? c->req.listener : weft_conn_listener (c);

  if (l != NULL)
    return &l->config->timeouts;
  return c->worker->gen != NULL ? &c->worker->gen->config->timeouts : NULL;
}

static void
weft_conn_set_deadline (WeftConn *c, WeftDeadline kind, guint64 ms)
{
  c->deadline_kind = kind;
  c->deadline_ms = kind == WEFT_DEADLINE_NONE || ms == 0 ? 0 : c->worker->now_ms + (gint64) ms;
  if (ms == 0)
    c->deadline_kind = WEFT_DEADLINE_NONE;
}

static void
weft_conn_set_idle_deadline (WeftConn *c)
{
  const WeftTimeouts *t = weft_conn_timeouts (c);

  if (c->head_started)
    weft_conn_set_deadline (c, WEFT_DEADLINE_HEADER, t ? t->request_header_ms : 10000);
  else
    weft_conn_set_deadline (c, WEFT_DEADLINE_IDLE, t ? t->client_idle_ms : 60000);
}

static void
weft_conn_count_upstream_error (WeftConn *c, WeftUpstreamErr err)
{
  weft_metric_series_add (c->worker->metrics->upstream_errors[err], 1);
}

/* the idle client connection gives its input buffer back */
static void
weft_conn_release_in (WeftConn *c)
{
  if (c->in != NULL && weft_buf_len (c->in) == 0)
    {
      weft_buf_pool_put (c->worker->bufs, c->in);
      c->in = NULL;
    }
}

/* a pipe still holding bytes is closed by the pool, never reused */
static void
weft_conn_drop_pipes (WeftConn *c)
{
  weft_pipe_pool_put (c->worker->pipes, c->req_pipe);
  weft_pipe_pool_put (c->worker->pipes, c->resp_pipe);
  c->req_pipe = c->resp_pipe = NULL;
}

static void
weft_conn_close_up (WeftConn *c)
{
  weft_conn_drop_pipes (c);
  if (c->up == NULL)
    return;
  c->up->owner = NULL;
  weft_up_conn_close (c->worker->pool, c->up);
  c->up = NULL;
}

/* ------------------------------------------------------------------ */
/* timers and attempts                                                  */
/* ------------------------------------------------------------------ */

typedef enum {
  WEFT_TIMER_FORWARD,    /* a fault delay ended: forward the request */
  WEFT_TIMER_ANSWER,     /* a fault delay ended: send the local answer */
  WEFT_TIMER_RETRY,      /* a retry backoff ended */
} WeftTimerAction;

static void weft_conn_forward (WeftConn *c);
static void weft_conn_try (WeftConn *c);
static void weft_conn_answer_local (WeftConn *c);
static gboolean weft_conn_run_phases (WeftConn *c, WeftPhase phase, guint idx);
static void weft_conn_dispatch (WeftConn *c);
static gboolean weft_conn_out_empty (WeftConn *c);

static void
weft_conn_cancel_timer (WeftConn *c)
{
  if (c->timer == NULL)
    return;
  g_source_destroy (c->timer);
  g_clear_pointer (&c->timer, g_source_unref);
}

static gboolean
weft_conn_timer_fired (gpointer data)
{
  WeftConn *c = data;
  WeftWorker *w = c->worker;

  g_clear_pointer (&c->timer, g_source_unref);
  weft_worker_begin_batch (w);
  if (c->timer_action == WEFT_TIMER_FORWARD)
    weft_conn_forward (c);
  else if (c->timer_action == WEFT_TIMER_ANSWER)
    weft_conn_answer_local (c);
  else
    weft_conn_try (c);
  weft_conn_run (c);
  weft_worker_end_batch (w);
  return G_SOURCE_REMOVE;
}

/* a timer on the worker's loop; only delayed or retried requests pay for one */
static void
weft_conn_arm_timer (WeftConn *c, guint64 ms, WeftTimerAction action)
{
  weft_conn_cancel_timer (c);
  c->timer_action = action;
  c->timer = g_timeout_source_new ((guint) MIN (ms, (guint64) G_MAXUINT));
  g_source_set_callback (c->timer, weft_conn_timer_fired, c, NULL);
  g_source_attach (c->timer, c->worker->context);
}

/* the verdict on the endpoint of the current try, given once */
static void
weft_conn_end_attempt (WeftConn *c, WeftOutcome outcome, guint status)
{
  if (!c->attempt_open)
    return;
  c->attempt_open = FALSE;
  weft_upstream_attempt_end (c->req.upstream, c->ep_set, c->ep_idx, c->worker->index, outcome,
                             status, c->worker->now_us - c->try_start_us, c->worker->now_ms);
}

/* the earlier of the request's and the try's deadlines; 0 = none */
static gint64
weft_conn_try_deadline (WeftConn *c)
{
  if (c->req_deadline_ms == 0)
    return c->try_deadline_ms;
  if (c->try_deadline_ms == 0)
    return c->req_deadline_ms;
  return MIN (c->req_deadline_ms, c->try_deadline_ms);
}

static void
weft_conn_set_deadline_at (WeftConn *c, WeftDeadline kind, gint64 at_ms)
{
  c->deadline_kind = at_ms != 0 ? kind : WEFT_DEADLINE_NONE;
  c->deadline_ms = at_ms;
}

/* ------------------------------------------------------------------ */
/* closing                                                              */
/* ------------------------------------------------------------------ */

void
weft_conn_free (WeftConn *c)
{
  weft_buf_pool_put (c->worker->bufs, c->in);
  weft_buf_pool_put (c->worker->bufs, c->out);
  weft_buf_pool_put (c->worker->bufs, c->up_out);
  weft_buf_pool_put (c->worker->bufs, c->replay);
  g_free (c->up_identity);
  g_free (c);
}

/* tells the plugins of the listener's live instance about the connection */
static void
weft_conn_emit (WeftConn *c, WeftConnEvent event)
{
  WeftListener *l = weft_conn_listener (c);
  WeftGeneration *gen = c->worker->gen;
  WeftConnInfo info;

  /* a close is told only of a connection whose open was */
  if (event == WEFT_CONN_CLOSED && !c->opened)
    return;
  c->opened = TRUE;
  if (l == NULL || l->n_conn_hooks == 0)
    return;
  info = (WeftConnInfo) {
    .peer_ip = c->peer_ip,
    .peer_identity = c->tls != NULL ? weft_tls_session_get_peer_id (c->tls) : NULL,
    .listener_name = l->info.name,
    .direction = l->info.direction,
    .bytes_received = c->bytes_in,
    .bytes_sent = c->bytes_out,
    .duration_us = g_get_monotonic_time () - c->open_us,
    .n_requests = c->n_requests,
  };
  for (guint i = 0; i < l->n_conn_hooks; i++)
    {
      WeftConnHookEntry *e = &l->conn_hooks[i];
      WeftGenPlugin *gp = gen->plugins->pdata[e->plugin_idx];
      e->func (e->instance, gp->worker_data[c->worker->index], event, &info);
    }
}

static void
weft_conn_end_request (WeftConn *c, gboolean run_log)
{
  WeftRequest *req = &c->req;
  WeftListener *l = req->listener;
  WeftGeneration *gen = req->gen;
  guint cls;

  if (!c->in_request)
    return;
  weft_conn_drop_pipes (c);
  req->bytes_received += c->req_body.total;
  if (run_log && l != NULL)
    for (guint i = 0; i < l->n_hooks[WEFT_PHASE_LOG]; i++)
      {
        WeftHookEntry *e = &l->hooks[WEFT_PHASE_LOG][i];
        WeftGenPlugin *gp = gen->plugins->pdata[e->plugin_idx];
        e->func (req, e->instance, gp->worker_data[c->worker->index]);
      }
  cls = req->status / 100;
  weft_metric_series_add (c->wl->requests[cls <= 5 ? cls : 0], 1);
  weft_request_cancel_suspension (req);
  weft_conn_cancel_timer (c);
  weft_conn_end_attempt (c, WEFT_OUTCOME_CANCELLED, 0);
  for (guint i = 0; i < c->n_mirrors; i++)
    weft_mirror_detach (c->mirrors[i], c->req_body.done && c->req_body.ready == 0);
  c->n_mirrors = 0;
  weft_request_end (req);
  weft_buf_pool_put (c->worker->bufs, c->up_out);
  c->up_out = NULL;
  weft_buf_pool_put (c->worker->bufs, c->replay);
  c->replay = NULL;
  c->in_request = FALSE;
  c->ep_set = NULL;
  req->listener = NULL;
  req->gen = NULL;
  req->upstream = NULL;
  gen->workers[c->worker->index].inflight--;
  weft_worker_gen_released (c->worker, gen);
}

/* after the response head only progress keeps the exchange open: the
 * deadline moves on while bytes reach the client */
static void
weft_conn_arm_response_idle (WeftConn *c)
{
  c->idle_mark = c->bytes_out;
  weft_conn_set_deadline (c, WEFT_DEADLINE_RESPONSE_IDLE,
                          weft_conn_timeouts (c)->response_idle_ms);
}

static void
weft_conn_close (WeftConn *c)
{
  if (c->dead)
    return;
  c->dead = TRUE;
  weft_conn_close_up (c);
  weft_conn_end_request (c, TRUE);
  weft_conn_emit (c, WEFT_CONN_CLOSED);
  weft_epoll_source_remove (c->worker->epoll, &c->h);
  weft_tls_session_bye (c->tls);
  g_clear_pointer (&c->tls, weft_tls_session_free);
  close (c->h.fd);
  c->h.fd = -1;
  c->h.func = NULL;
  weft_metric_series_add (c->wl->conns_active, -1);
  weft_worker_conn_removed (c->worker, c);
}

/* the client reset or half-closed mid-exchange: an answer can no longer
 * reach it */
static void
weft_conn_client_gone (WeftConn *c)
{
  if (c->in_request)
    c->req.resp_flags |= WEFT_RESPONSE_FLAG_DOWNSTREAM_DISCONNECT;
  weft_conn_close (c);
}

/* flushed everything: stop writing, read what the client still sends so
 * the close does not become a reset that loses the answer */
static void
weft_conn_linger (WeftConn *c)
{
  weft_conn_close_up (c);
  weft_conn_end_request (c, TRUE);
  if (c->client_eof)
    {
      weft_conn_close (c);
      return;
    }
  weft_tls_session_bye (c->tls);
  shutdown (c->h.fd, SHUT_WR);
  c->lingering = TRUE;
  c->readable = TRUE;
  weft_conn_set_deadline (c, WEFT_DEADLINE_LINGER, WEFT_LINGER_MS);
}

/* ------------------------------------------------------------------ */
/* local answers                                                        */
/* ------------------------------------------------------------------ */

static gboolean
weft_conn_ensure_out (WeftConn *c)
{
  if (c->out == NULL)
    c->out = weft_buf_pool_get (c->worker->bufs, WEFT_BUF_TINY);
  return c->out != NULL;
}

/* an error before any request object exists (parse errors) */
static void
weft_conn_reject (WeftConn *c, guint status, const char *reason)
{
  char head[512];
  int n;

  weft_conn_ensure_out (c);
  n = g_snprintf (head, sizeof head,
                  "HTTP/1.1 %u %s\r\ncontent-type: text/plain\r\ncontent-length: %zu\r\n"
                  "x-weft-error: %s\r\nconnection: close\r\n\r\n%u %s: %s\n",
                  status, weft_http_status_phrase (status),
                  strlen (weft_http_status_phrase (status)) + strlen (reason) + 7,
                  reason, status, weft_http_status_phrase (status), reason);
  weft_buf_append (c->out, head, (gsize) n);
  weft_metric_series_add (c->worker->metrics->bad_requests, 1);
  weft_metric_series_add (c->wl->requests[status / 100 <= 5 ? status / 100 : 0], 1);
  c->keep_alive = FALSE;
  c->closing = TRUE;
  c->in_request = FALSE;
}

/* answers the current request locally (an error or a plugin's answer) */
static void
weft_conn_answer_local (WeftConn *c)
{
  WeftRequest *req = &c->req;
  gboolean close_after = !c->keep_alive || !c->req_body.done || c->worker->draining;

  weft_conn_cancel_timer (c);
  weft_conn_end_attempt (c, WEFT_OUTCOME_CANCELLED, 0);
  weft_conn_close_up (c);
  weft_conn_ensure_out (c);
  c->out->start = c->out->end = 0;
  c->local_sent = 0;
  req->local = TRUE;
  while (!weft_request_write_local_head (req, c->out, close_after))
    {
      c->out->start = c->out->end = 0;
      if (weft_buf_pool_grow (c->worker->bufs, &c->out))
        continue;
      /* too many headers even for the largest buffer: a bare answer */
      req->resp_headers.n = 0;
    }
  c->resp_head_done = TRUE;
  c->resp_head_sent = FALSE;
  if (close_after)
    {
      c->keep_alive = FALSE;
      c->closing = TRUE;
    }
}

static void
weft_conn_fail (WeftConn *c, guint status, const char *token)
{
  WeftRequest *req = &c->req;

  if (c->resp_head_sent || c->tunnel)
    {
      /* part of the answer is out: a reset is the only honest signal */
      weft_conn_close (c);
      return;
    }
  char line[256];
  int n;
  char *body;

  req->status = status;
  req->error_reason = token;
  n = g_snprintf (line, sizeof line, "%u %s: %s\n", status, weft_http_status_phrase (status),
                  token);
  body = weft_request_alloc (req, (gsize) n + 1);
  memcpy (body, line, (gsize) n + 1);
  req->local_body = body;
  req->local_body_len = (gsize) n;
  weft_request_set_response_header (req, "content-type", "text/plain");
  weft_conn_answer_local (c);
}

static void
weft_conn_fail_upstream (WeftConn *c, guint status, WeftUpstreamErr err)
{
  weft_conn_count_upstream_error (c, err);
  c->req.resp_flags |= weft_upstream_err_flags[err];
  if (c->tries > 1)
    c->req.resp_flags |= WEFT_RESPONSE_FLAG_RETRY_LIMIT_EXCEEDED;
  weft_log (WEFT_LOG_DEBUG, "proxy", "%s %s: %u %s", c->req.method, c->req.path, status,
            weft_upstream_err_tokens[err]);
  weft_conn_fail (c, status, weft_upstream_err_tokens[err]);
}

/* ------------------------------------------------------------------ */
/* upstream connections                                                 */
/* ------------------------------------------------------------------ */

static guint16 weft_conn_request_port (WeftConn *c);
static guint16 weft_conn_destination_port (WeftConn *c);
static WeftUpConn *
weft_conn_open_up (WeftConn *c, const struct sockaddr_storage *addr, socklen_t addr_len,
                   const char *key, int *err)
{
  int fd = socket (addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  WeftUpConn *up;

  *err = 0;
  if (fd < 0)
    {
      *err = errno;
      return NULL;
    }
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect (fd, (const struct sockaddr *) addr, addr_len) < 0 && errno != EINPROGRESS)
    {
      *err = errno;
      close (fd);
      return NULL;
    }
  up = g_new0 (WeftUpConn, 1);
  up->h.func = weft_conn_up_event;
  up->entry = weft_upstream_pool_entry (c->worker->pool, key);
  if (!weft_epoll_source_add (c->worker->epoll, &up->h, fd, EPOLLOUT))
    {
      *err = errno;
      close (fd);
      g_free (up);
      return NULL;
    }
  return up;
}

static void weft_conn_connect (WeftConn *c, gboolean fresh);

static void
weft_conn_attach_up (WeftConn *c, WeftUpConn *up)
{
  const WeftTimeouts *t = &c->req.listener->config->timeouts;
  WeftUpstream *upstream = c->req.upstream;
  guint64 connect_ms = upstream->pool.connect_timeout_ms ? upstream->pool.connect_timeout_ms :
                       upstream->config->connect_ms ? upstream->config->connect_ms : t->connect_ms;
  gint64 connect_at = c->worker->now_ms + (gint64) connect_ms;
  gint64 limit = weft_conn_try_deadline (c);

  c->up = up;
  up->owner = c;
  up->h.func = weft_conn_up_event;
  c->up_out_sent = 0;
  c->replay_sent = 0;
  c->up_eof = FALSE;
  if (up->connected)
    {
      up->writable = TRUE;
      weft_conn_set_deadline_at (c, WEFT_DEADLINE_REQUEST, limit);
    }
  else
    weft_conn_set_deadline_at (c, WEFT_DEADLINE_CONNECT,
                               limit != 0 ? MIN (connect_at, limit) : connect_at);
}

/* does the retry policy call for another try after @outcome? */
static gboolean
weft_conn_retry_wanted (WeftConn *c, WeftOutcome outcome, guint status)
{
  guint on = c->req.retry->spec.retry_on;
  guint broken = WEFT_RETRY_ON_RESET | WEFT_RETRY_ON_5XX | WEFT_RETRY_ON_GATEWAY_ERROR;

  switch (outcome)
    {
    case WEFT_OUTCOME_CONNECT_FAILED:
      return (on & (broken | WEFT_RETRY_ON_CONNECT_FAILURE)) != 0;
    case WEFT_OUTCOME_RESET:
      /* on HTTP/1.1 a close before any response byte is a refused stream */
      return (on & broken) != 0 ||
             ((on & WEFT_RETRY_ON_REFUSED_STREAM) && !c->resp_started);
    case WEFT_OUTCOME_TIMEOUT:
      return (on & broken) != 0;
    case WEFT_OUTCOME_RESPONSE:
      return weft_retry_policy_on_status (c->req.retry, status);
    case WEFT_OUTCOME_CANCELLED:
    default:
      return FALSE;
    }
}

/* a try failed before anything reached the client: retry when the policy,
 * the body and the budget allow it */
static gboolean
weft_conn_retry_policy (WeftConn *c, WeftOutcome outcome, guint status)
{
  WeftRetryPolicy *policy = c->req.retry;
  guint64 backoff;

  if (policy == NULL || c->tries > policy->spec.attempts || c->replay_lost ||
      c->resp_head_sent || c->client_eof || !weft_conn_retry_wanted (c, outcome, status))
    return FALSE;
  if (!weft_retry_policy_take_retry (policy, c->worker->index, c->worker->now_ms))
    {
      weft_conn_count_upstream_error (c, WEFT_UPSTREAM_ERR_RETRY_BUDGET);
      return FALSE;
    }
  weft_conn_count_upstream_error (c, WEFT_UPSTREAM_ERR_RETRIED);
  weft_conn_close_up (c);
  c->resp_started = c->resp_head_done = FALSE;
  c->up_eof = FALSE;
  c->req.status = 0;
  backoff = weft_retry_policy_backoff_ms (policy, c->tries,
                                          (guint32) (weft_worker_random (c->worker) >> 32));
  weft_log (WEFT_LOG_DEBUG, "proxy", "%s %s: retry %u in %" G_GUINT64_FORMAT " ms", c->req.method,
            c->req.path, c->tries, backoff);
  if (backoff == 0)
    {
      weft_conn_try (c);
      return TRUE;
    }
  weft_conn_set_deadline_at (c, WEFT_DEADLINE_REQUEST, c->req_deadline_ms);
  weft_conn_arm_timer (c, backoff, WEFT_TIMER_RETRY);
  return TRUE;
}

/* a connect failed: count it against the endpoint, try another */
static void
weft_conn_connect_failed (WeftConn *c, int err)
{
  WeftUpstream *upstream = c->req.upstream;
  gboolean refused = err == ECONNREFUSED;
  guint n = c->ep_set != NULL ? c->ep_set->n : 0;

  weft_upstream_report (upstream, c->ep_set, c->ep_idx, c->worker->index, FALSE,
                        c->worker->now_ms);
  weft_conn_end_attempt (c, WEFT_OUTCOME_CONNECT_FAILED, 0);
  weft_conn_close_up (c);
  weft_log (WEFT_LOG_DEBUG, "proxy", "%s: connect to %s failed: %s", upstream->name,
            c->ep_set && c->ep_idx < n ? c->ep_set->endpoints[c->ep_idx].key : "?",
            g_strerror (err));
  if (c->connect_attempts < MIN (n, (guint) WEFT_MAX_CONNECT_ATTEMPTS) && !c->all_down)
    {
      weft_conn_connect (c, TRUE);
      return;
    }
  if (weft_conn_retry_policy (c, WEFT_OUTCOME_CONNECT_FAILED, 0))
    return;
  if (c->all_down)
    weft_conn_fail_upstream (c, 503, WEFT_UPSTREAM_ERR_NO_ENDPOINT);
  else
    weft_conn_fail_upstream (c, 502, refused ? WEFT_UPSTREAM_ERR_CONNECT_REFUSED
                                             : WEFT_UPSTREAM_ERR_CONNECT_FAILED);
}

static void
weft_conn_connect (WeftConn *c, gboolean fresh)
{
  WeftUpstream *upstream = c->req.upstream;
  WeftEndpointSet *set = NULL;
  WeftEndpoint *ep;
  WeftUpConn *up = NULL;
  WeftPickHints hints = { c->has_hash, c->hash, NULL, 0 };
  WeftPickResult picked;
  struct sockaddr_storage addr;
  const char *key;
  char tls_key[sizeof c->ep_key + 16];
  guint idx = 0;
  int err = 0;

  if (weft_upstream_overflowing (upstream, c->worker->index))
    {
      weft_conn_fail_upstream (c, 503, WEFT_UPSTREAM_ERR_OVERFLOW);
      return;
    }
  /* another try goes elsewhere when it can */
  if (c->tries > 1 || c->connect_attempts > 0)
    {
      hints.avoid_set = c->ep_set;
      hints.avoid_idx = c->ep_idx;
    }
  picked = weft_upstream_pick (upstream, c->worker->index, c->worker->now_ms, &hints, &set,
                               &idx, &c->all_down);
  if (picked != WEFT_PICK_OK)
    {
      weft_conn_fail_upstream (c, 503, picked == WEFT_PICK_UNRESOLVED
                                       ? WEFT_UPSTREAM_ERR_UNRESOLVED
                                       : WEFT_UPSTREAM_ERR_NO_ENDPOINT);
      return;
    }
  c->connect_attempts++;
  c->ep_set = set;
  c->ep_idx = idx;
  ep = &set->endpoints[idx];
  weft_upstream_attempt_start (upstream, set, idx, c->worker->index);
  c->attempt_open = TRUE;
  c->try_start_us = c->worker->now_us;
  /* an endpoint without a port (a DNS destination) takes the request's */
  key = weft_endpoint_address (ep, weft_endpoint_has_port (ep) ? 0 : weft_conn_request_port (c),
                               &addr, c->ep_key, sizeof c->ep_key);
  g_strlcpy (c->up_addr, key, sizeof c->up_addr);
  c->req.upstream_addr = c->up_addr;
  /* mTLS connections, verified against given IDs, pool apart from plain
   * ones; @key is the endpoint's own key or c->ep_key, so build anew */
  if (upstream->config->tls)
    {
      g_snprintf (tls_key, sizeof tls_key, "%s|tls%08x", key, upstream->config->tls_tag);
      key = tls_key;
    }
  if (!fresh)
    up = weft_upstream_pool_take (c->worker->pool, weft_upstream_pool_entry (c->worker->pool, key));
  if (up == NULL)
    up = weft_conn_open_up (c, &addr, ep->addr_len, key, &err);
  if (up == NULL)
    {
      weft_conn_connect_failed (c, err);
      return;
    }
  weft_conn_attach_up (c, up);
}

/* the request failed on a reused connection before any response byte:
 * the server closed it as we sent (the keep-alive race); an idempotent
 * request without a body is safe to send again, once, on a new connection */
static gboolean
weft_conn_retry (WeftConn *c)
{
  if (c->retried || c->up == NULL || !c->up->reused || c->resp_started ||
      !c->req.idempotent || c->req.body_kind != WEFT_HTTP_BODY_NONE)
    return FALSE;
  c->retried = TRUE;
  weft_conn_count_upstream_error (c, WEFT_UPSTREAM_ERR_RETRIED);
  weft_conn_end_attempt (c, WEFT_OUTCOME_CANCELLED, 0);
  weft_conn_close_up (c);
  c->connect_attempts = 0;
  weft_conn_connect (c, TRUE);
  return TRUE;
}

static void
weft_conn_upstream_broke (WeftConn *c, gboolean timeout)
{
  if (c->tunnel)
    {
      weft_conn_close (c);
      return;
    }
  if (timeout)
    {
      weft_conn_end_attempt (c, WEFT_OUTCOME_TIMEOUT, 0);
      weft_conn_fail_upstream (c, 504, WEFT_UPSTREAM_ERR_TIMEOUT);
      return;
    }
  if (weft_conn_retry (c))
    return;
  weft_conn_end_attempt (c, WEFT_OUTCOME_RESET, 0);
  if (weft_conn_retry_policy (c, WEFT_OUTCOME_RESET, 0))
    return;
  weft_conn_fail_upstream (c, 502, WEFT_UPSTREAM_ERR_RESET);
}

/* the request's deadline, or this try's, passed without a response head */
static void
weft_conn_timed_out (WeftConn *c)
{
  if (c->tunnel)
    {
      weft_conn_close (c);
      return;
    }
  if (c->req_deadline_ms != 0 && c->worker->now_ms >= c->req_deadline_ms)
    {
      weft_conn_cancel_timer (c);
      weft_conn_upstream_broke (c, TRUE);
      return;
    }
  weft_conn_end_attempt (c, WEFT_OUTCOME_TIMEOUT, 0);
  if (weft_conn_retry_policy (c, WEFT_OUTCOME_TIMEOUT, 0))
    return;
  weft_conn_fail_upstream (c, 504, WEFT_UPSTREAM_ERR_TIMEOUT);
}

/* the connection (and its handshake) is up: the request may go */
static void
weft_conn_up_ready (WeftConn *c)
{
  WeftUpConn *up = c->up;

  up->connected = TRUE;
  up->writable = TRUE;
  weft_upstream_report (c->req.upstream, c->ep_set, c->ep_idx, c->worker->index, TRUE,
                        c->worker->now_ms);
  weft_conn_set_deadline_at (c, WEFT_DEADLINE_REQUEST, weft_conn_try_deadline (c));
}

static void
weft_conn_up_tls_failed (WeftConn *c)
{
  WeftTlsFailure failure = weft_tls_session_get_failure (c->up->tls);
  const char *detail = weft_tls_session_get_detail (c->up->tls);

  weft_worker_listener_count_tls (c->wl, WEFT_TLS_ROLE_CLIENT, FALSE, failure);
  weft_log (WEFT_LOG_WARNING, "tls", "TLS to %s (upstream '%s') failed: %s (%s%s%s)",
            c->up_addr, c->req.upstream->name, weft_tls_failure_to_string (failure),
            weft_tls_failure_describe (failure), *detail != '\0' ? ": " : "", detail);
  weft_conn_end_attempt (c, WEFT_OUTCOME_CONNECT_FAILED, 0);
  weft_conn_close_up (c);
  weft_conn_fail_upstream (c, 502, WEFT_UPSTREAM_ERR_TLS);
}

static void
weft_conn_up_handshake (WeftConn *c)
{
  WeftUpConn *up = c->up;

  switch (weft_tls_session_handshake (up->tls))
    {
    case WEFT_TLS_STEP_DONE:
      weft_worker_listener_count_tls (c->wl, WEFT_TLS_ROLE_CLIENT,
                                      weft_tls_session_is_resumed (up->tls), WEFT_TLS_FAIL_NONE);
      weft_conn_up_ready (c);
      up->readable = TRUE;
      break;
    case WEFT_TLS_STEP_WANT_READ:
      up->tls_want = EPOLLIN;
      break;
    case WEFT_TLS_STEP_WANT_WRITE:
      up->tls_want = EPOLLOUT;
      break;
    case WEFT_TLS_STEP_FAILED:
    default:
      weft_conn_up_tls_failed (c);
      break;
    }
}

/* mTLS to a meshed upstream: our certificate, its expected SPIFFE IDs, and
 * the last session to this endpoint to resume */
static void
weft_conn_up_start_tls (WeftConn *c)
{
  WeftUpConn *up = c->up;
  const WeftUpstreamConfig *uc = c->req.upstream->config;
  WeftTlsCredentials *creds = c->req.gen->tls;

  up->tls = creds != NULL ?
            weft_tls_session_new_client (creds, up->h.fd, (const char *const *) uc->tls_spiffe_ids,
                                         uc->tls_sni, up->entry->tls_resume) : NULL;
  if (up->tls == NULL)
    {
      weft_conn_end_attempt (c, WEFT_OUTCOME_CONNECT_FAILED, 0);
      weft_conn_close_up (c);
      weft_conn_fail_upstream (c, 502, WEFT_UPSTREAM_ERR_TLS);
      return;
    }
  up->tls_want = EPOLLOUT;
  weft_conn_up_handshake (c);
}

static void
weft_conn_up_connected (WeftConn *c)
{
  WeftUpConn *up = c->up;
  int err = 0;
  socklen_t len = sizeof err;

  if (getsockopt (up->h.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
    err = errno;
  if (err != 0)
    {
      weft_conn_connect_failed (c, err);
      return;
    }
  if (c->req.upstream->config->tls)
    weft_conn_up_start_tls (c);
  else
    weft_conn_up_ready (c);
}

static void
weft_conn_up_event (WeftEpollHandler *handler, guint32 events)
{
  WeftUpConn *up = (WeftUpConn *) handler;
  WeftConn *c = up->owner;

  if (c == NULL)
    return;
  if (!up->connected && up->tls != NULL)
    weft_conn_up_handshake (c);
  else if (!up->connected)
    {
      if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
        weft_conn_up_connected (c);
    }
  else
    {
      if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
        up->readable = TRUE;
      if (events & (EPOLLOUT | EPOLLERR))
        up->writable = TRUE;
    }
  weft_conn_run (c);
}

/* the port the connection was sent to before any iptables redirect to
 * @lc's socket; asked of the kernel once per connection */
static guint16
weft_conn_original_port (WeftConn *c, const WeftListenerConfig *lc)
{
  struct sockaddr_storage dst;
  socklen_t len = sizeof dst;

  if (c->orig_port == 0)
    {
      c->orig_port = G_MAXUINT32;
      if (getsockopt (c->h.fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len) == 0 &&
          dst.ss_family == AF_INET)
        c->orig_port = ntohs (((struct sockaddr_in *) &dst)->sin_port);
    }
  if (c->orig_port != G_MAXUINT32 && c->orig_port != lc->port)
    return (guint16) c->orig_port;
  return lc->port;
}

/* the port the client meant: the authority's, else the original
 * destination of an iptables-redirected connection, else the listener's */
static guint16
weft_conn_request_port (WeftConn *c)
{
  const char *auth = c->req.authority;
  const char *colon = auth != NULL ? strrchr (auth, ':') : NULL;
  guint64 port;

  if (colon != NULL && strchr (colon, ']') == NULL &&
      g_ascii_string_to_unsigned (colon + 1, 10, 1, 65535, &port, NULL))
    return (guint16) port;
  return weft_conn_destination_port (c);
}

/* the port the connection reached: the original destination of a
 * redirected connection, else the listener's; the client cannot choose it */
static guint16
weft_conn_destination_port (WeftConn *c)
{
  return weft_conn_original_port (c, c->req.listener->config);
}

/* ------------------------------------------------------------------ */
/* starting a request                                                   */
/* ------------------------------------------------------------------ */

/* runs the hooks of @phase from *@idx; on a result other than CONTINUE,
 * *@idx is the hook that gave it */
static WeftHookResult
weft_conn_run_phase (WeftConn *c, WeftPhase phase, guint *idx)
{
  WeftListener *l = c->req.listener;

  for (; *idx < l->n_hooks[phase]; (*idx)++)
    {
      WeftHookEntry *e = &l->hooks[phase][*idx];
      WeftGenPlugin *gp = c->req.gen->plugins->pdata[e->plugin_idx];
      WeftHookResult r = e->func (&c->req, e->instance, gp->worker_data[c->worker->index]);
      if (r != WEFT_HOOK_CONTINUE)
        return r;
    }
  return WEFT_HOOK_CONTINUE;
}

/* the standard proxy headers, before the phases so plugins see them */
static void
weft_conn_add_forwarding (WeftConn *c)
{
  WeftRequest *req = &c->req;
  const char *xff = weft_request_get_header (req, "x-forwarded-for");
  const char *id = weft_request_get_header (req, "x-request-id");

  if (xff != NULL)
    {
      gsize n = strlen (xff) + strlen (c->peer_ip) + 3;
      char *v = weft_request_alloc (req, n);
      g_snprintf (v, n, "%s, %s", xff, c->peer_ip);
      weft_request_set_header (req, "x-forwarded-for", v);
    }
  else
    weft_request_add_header (req, "x-forwarded-for", c->peer_ip);
  if (weft_request_get_header (req, "x-forwarded-proto") == NULL)
    weft_request_add_header (req, "x-forwarded-proto", "http");
  if (id == NULL || *id == '\0')
    {
      char *fresh = weft_request_alloc (req, 37);
      weft_worker_random_id (c->worker, fresh);
      weft_request_set_header (req, "x-request-id", fresh);
      id = fresh;
    }
  req->request_id = id;
}

static gboolean
weft_conn_begin (WeftConn *c, WeftListener *l, WeftBuf *head_buf, WeftHttpHead *head)
{
  WeftGeneration *gen = c->worker->gen;

  c->in_request = TRUE;
  c->n_requests++;
  gen->workers[c->worker->index].inflight++;
  memset (&c->req, 0, sizeof c->req);
  c->req.gen = gen;
  c->req.listener = l;
  c->req.start_us = c->worker->now_us;
  c->req.start_wall_us = c->worker->now_us + c->worker->wall_offset_us;
  c->req.bytes_received = head->head_len;
  weft_request_begin (&c->req, c, c->worker->bufs, head_buf, head);
  c->keep_alive = head->keep_alive && !c->worker->draining;
  c->resp_started = c->resp_head_done = c->resp_head_sent = FALSE;
  c->tunnel = c->retried = c->all_down = FALSE;
  c->connect_attempts = 0;
  c->tries = 0;
  c->replay_sent = 0;
  c->replay_lost = FALSE;
  c->req_deadline_ms = c->try_deadline_ms = 0;
  c->attempt_open = c->has_hash = FALSE;
  c->local_sent = 0;
  weft_framer_init (&c->req_body, head->body_kind, head->content_length);
  weft_framer_init (&c->resp_body, WEFT_HTTP_BODY_NONE, 0);
  c->body_clock_ms = c->worker->now_ms;
  c->body_clock_bytes = c->bytes_in;
  c->expect_pending = head->expect_continue && !c->req_body.done;
  return TRUE;
}

static void
weft_conn_route (WeftConn *c)
{
  WeftRequest *req = &c->req;
  WeftGeneration *gen = req->gen;
  guint64 max_body = gen->config->limits.max_body;

  if (max_body > 0 && req->body_kind == WEFT_HTTP_BODY_LENGTH && req->content_length > max_body)
    {
      weft_conn_fail (c, 413, "body_too_large");
      return;
    }
  /* a bad first chunk is caught before anything goes upstream */
  if (!weft_framer_take (&c->req_body, c->in))
    {
      c->keep_alive = FALSE;
      weft_conn_fail (c, 400, "bad_chunk");
      return;
    }
  weft_conn_add_forwarding (c);
  req->upstream = req->listener->default_upstream;
  if (weft_conn_run_phases (c, WEFT_PHASE_ROUTE, 0))
    weft_conn_dispatch (c);
}

/* a hook ended the phases: answer, fail, or wait for weft_request_resume() */
static void
weft_conn_phases_ended (WeftConn *c, WeftHookResult r)
{
  WeftRequest *req = &c->req;

  if (r == WEFT_HOOK_RESPOND && req->local && req->delay_ms > 0)
    weft_conn_arm_timer (c, req->delay_ms, WEFT_TIMER_ANSWER);
  else if (r == WEFT_HOOK_RESPOND && req->local)
    weft_conn_answer_local (c);
  else
    weft_conn_fail (c, 500, "plugin_error");
}

/* the request phases from hook @idx of @phase on; TRUE when all of them
 * let the request go on */
static gboolean
weft_conn_run_phases (WeftConn *c, WeftPhase phase, guint idx)
{
  for (WeftPhase p = phase; p <= WEFT_PHASE_UPSTREAM; p++, idx = 0)
    {
      WeftHookResult r = weft_conn_run_phase (c, p, &idx);

      if (r == WEFT_HOOK_CONTINUE)
        continue;
      if (r == WEFT_HOOK_SUSPEND && c->req.suspended)
        {
          /* no deadline runs while a hook waits: the plugin bounds it */
          c->resume_phase = p;
          c->resume_hook = idx + 1;
          weft_conn_set_deadline (c, WEFT_DEADLINE_NONE, 0);
          return FALSE;
        }
      weft_request_cancel_suspension (&c->req);
      weft_conn_phases_ended (c, r);
      return FALSE;
    }
  return TRUE;
}

void
weft_conn_resume (WeftConn *c, WeftHookResult result)
{
  WeftWorker *w = c->worker;

  weft_worker_begin_batch (w);
  if (result == WEFT_HOOK_CONTINUE)
    {
      if (weft_conn_run_phases (c, c->resume_phase, c->resume_hook))
        weft_conn_dispatch (c);
    }
  else
    weft_conn_phases_ended (c, result);
  weft_conn_run (c);
  weft_worker_end_batch (w);
}

/* the phases let the request through: send it upstream */
static void
weft_conn_dispatch (WeftConn *c)
{
  WeftRequest *req = &c->req;

  if (req->upstream == NULL)
    {
      weft_conn_fail_upstream (c, 503, WEFT_UPSTREAM_ERR_NO_UPSTREAM);
      return;
    }
  c->up_out = weft_buf_pool_get (c->worker->bufs, WEFT_BUF_TINY);
  while (!weft_request_write_upstream_head (req, c->up_out, NULL, FALSE))
    {
      c->up_out->start = c->up_out->end = 0;
      if (!weft_buf_pool_grow (c->worker->bufs, &c->up_out))
        {
          weft_conn_fail (c, 431, "headers_too_large");
          return;
        }
    }
  c->has_hash = weft_upstream_request_hash (req->upstream, req, &c->hash);
  if (req->retry != NULL)
    {
      weft_retry_policy_count_request (req->retry, c->worker->index, c->worker->now_ms);
      c->replay_lost = req->body_kind == WEFT_HTTP_BODY_LENGTH &&
                       req->content_length > req->retry->spec.max_body;
    }
  for (guint i = 0; i < req->n_mirrors; i++)
    {
      WeftMirror *m = weft_mirror_start (c->worker, req, req->mirrors[i],
                                         weft_conn_request_port (c));
      if (m != NULL)
        c->mirrors[c->n_mirrors++] = m;
    }
  if (req->delay_ms > 0)
    {
      req->resp_flags |= WEFT_RESPONSE_FLAG_DELAY_INJECTED;
      weft_conn_set_deadline (c, WEFT_DEADLINE_NONE, 0);
      weft_conn_arm_timer (c, req->delay_ms, WEFT_TIMER_FORWARD);
      return;
    }
  weft_conn_forward (c);
}

/* the request goes upstream: its deadline starts now */
static void
weft_conn_forward (WeftConn *c)
{
  WeftRequest *req = &c->req;
  guint64 ms = req->has_timeout ? req->timeout_ms : req->listener->config->timeouts.request_ms;

  c->req_deadline_ms = ms > 0 ? c->worker->now_ms + (gint64) ms : 0;
  weft_conn_try (c);
}

static void
weft_conn_try (WeftConn *c)
{
  WeftRetryPolicy *policy = c->req.retry;

  c->tries++;
  c->connect_attempts = 0;
  c->try_deadline_ms = policy != NULL && policy->spec.per_try_timeout_ms > 0 ?
                       c->worker->now_ms + (gint64) policy->spec.per_try_timeout_ms : 0;
  weft_conn_connect (c, FALSE);
}

/* moves the bytes after the head into a fresh input buffer; the old one
 * stays with the request as its head and scratch memory */
static WeftBuf *
weft_conn_split_head (WeftConn *c, gsize head_len, gsize size)
{
  WeftBuf *head_buf = c->in;
  gsize rest = weft_buf_len (head_buf) - head_len;

  c->in = weft_buf_pool_get (c->worker->bufs, MAX (size, rest));
  if (rest > 0)
    weft_buf_append (c->in, weft_buf_head (head_buf) + head_len, rest);
  /* the head starts the buffer; scratch memory follows it */
  if (head_buf->start > 0)
    {
      memmove (head_buf->data, weft_buf_head (head_buf), head_len);
      head_buf->start = 0;
    }
  head_buf->end = head_len;
  return head_buf;
}

static gboolean
weft_conn_parse (WeftConn *c)
{
  WeftHttpHead *head = &c->worker->scratch_head;
  WeftHttpError err = WEFT_HTTP_ERR_NONE;
  WeftListener *l;
  WeftHttpParseStatus st;

  if (c->in_request || c->closing || c->lingering || c->in == NULL || weft_buf_len (c->in) == 0)
    return FALSE;
  l = weft_conn_listener (c);
  if (l == NULL)
    {
      /* its listener is gone from the configuration: drain */
      weft_conn_close (c);
      return FALSE;
    }
  /* the parse writes NUL terminators: it must see the whole head at once */
  if (c->in->start > 0)
    weft_buf_compact (c->in);
  st = weft_http_parse_request (weft_buf_head (c->in), weft_buf_len (c->in), &l->limits, head,
                                &err);
  if (st == WEFT_HTTP_PARSE_INCOMPLETE)
    {
      if (!c->head_started)
        {
          c->head_started = TRUE;
          weft_conn_set_idle_deadline (c);
        }
      return FALSE;
    }
  if (st == WEFT_HTTP_PARSE_ERROR)
    {
      weft_log (WEFT_LOG_DEBUG, "proxy", "%s: bad request from %s: %s", c->wl->name, c->peer_ip,
                weft_http_error_reason (err));
      c->in->start = c->in->end = 0;
      weft_conn_reject (c, weft_http_error_status (err), weft_http_error_reason (err));
      return TRUE;
    }
  c->head_started = FALSE;
  weft_conn_begin (c, l, weft_conn_split_head (c, head->head_len,
                                               head->body_kind == WEFT_HTTP_BODY_NONE ?
                                               WEFT_BUF_TINY : WEFT_BUF_SMALL), head);
  weft_conn_route (c);
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* moving bytes                                                         */
/* ------------------------------------------------------------------ */

/* recv() and writev(), through TLS when the socket carries it */
static inline gssize
weft_conn_recv (WeftTlsSession *tls, int fd, void *buf, gsize len)
{
  return tls != NULL ? weft_tls_session_recv (tls, buf, len) : recv (fd, buf, len, 0);
}

static inline gssize
weft_conn_writev (WeftTlsSession *tls, int fd, const struct iovec *iov, int n_iov)
{
  return tls != NULL ? weft_tls_session_writev (tls, iov, n_iov) : writev (fd, iov, n_iov);
}

/* with nothing new to send, pushes what TLS still holds: 1 progress,
 * 0 nothing to do or the socket is full (*writable cleared), -1 broken */
static int
weft_conn_flush_tls (WeftTlsSession *tls, gboolean *writable)
{
  int r;

  if (tls == NULL || !weft_tls_session_has_pending (tls))
    return 0;
  r = weft_tls_session_flush (tls);
  if (r == 0)
    *writable = FALSE;
  return r;
}

static gboolean
weft_conn_want_client_read (WeftConn *c)
{
  if (c->lingering)
    return TRUE;
  if (c->closing || c->client_eof)
    return FALSE;
  if (!c->in_request)
    return TRUE;
  if (c->req_pipe != NULL)
    return FALSE;   /* the body goes by splice */
  if (c->tunnel || !c->req_body.done)
    return c->in == NULL || weft_buf_space (c->in) > 0 || c->in->start > 0 ||
           c->in->cap < WEFT_BUF_SMALL;
  return FALSE;
}

static gboolean
weft_conn_read_client (WeftConn *c)
{
  gssize n;

  if (!c->readable || !weft_conn_want_client_read (c))
    return FALSE;
  if (c->in == NULL)
    c->in = weft_buf_pool_get (c->worker->bufs, WEFT_BUF_TINY);
  if (c->lingering)
    c->in->start = c->in->end = 0;
  if (weft_buf_space (c->in) == 0)
    weft_buf_compact (c->in);
  weft_conn_grow_in (c);
  if (weft_buf_space (c->in) == 0)
    return FALSE;
  n = weft_conn_recv (c->tls, c->h.fd, weft_buf_tail (c->in), weft_buf_space (c->in));
  if (n > 0)
    {
      /* a short plain read emptied the socket: epoll says when more comes */
      if (c->tls == NULL && (gsize) n < weft_buf_space (c->in))
        c->readable = FALSE;
      c->in->end += (gsize) n;
      c->bytes_in += (guint64) n;
      if (c->lingering)
        c->in->start = c->in->end = 0;
      return TRUE;
    }
  c->readable = FALSE;
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return FALSE;
  if (n < 0 && !c->lingering)
    {
      /* reset by the client: nothing left to answer */
      weft_conn_client_gone (c);
      return TRUE;
    }
  c->client_eof = TRUE;
  return TRUE;
}

static gboolean
weft_conn_want_up_read (WeftConn *c)
{
  WeftUpConn *up = c->up;

  if (up == NULL || !up->connected || c->up_eof || c->resp_pipe != NULL)
    return FALSE;
  if (c->resp_head_done && !c->tunnel && c->resp_body.done)
    return FALSE;
  return up->in == NULL || weft_buf_space (up->in) > 0 || up->in->start > 0;
}

static gboolean
weft_conn_read_up (WeftConn *c)
{
  WeftUpConn *up = c->up;
  gssize n;

  if (up == NULL || !up->readable || !weft_conn_want_up_read (c))
    return FALSE;
  if (up->in == NULL)
    up->in = weft_buf_pool_get (c->worker->bufs, WEFT_BUF_SMALL);
  if (weft_buf_space (up->in) == 0)
    weft_buf_compact (up->in);
  n = weft_conn_recv (up->tls, up->h.fd, weft_buf_tail (up->in), weft_buf_space (up->in));
  if (n > 0)
    {
      if (up->tls == NULL && (gsize) n < weft_buf_space (up->in))
        up->readable = FALSE;
      up->in->end += (gsize) n;
      c->resp_started = TRUE;
      return TRUE;
    }
  up->readable = FALSE;
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return FALSE;
  c->up_eof = TRUE;
  return TRUE;
}

/* body bytes that went upstream: a retry may need them again, a mirror
 * wants a copy */
static void
weft_conn_body_sent (WeftConn *c, const char *data, gsize len)
{
  WeftRetryPolicy *policy = c->req.retry;

  for (guint i = 0; i < c->n_mirrors; i++)
    weft_mirror_body (c->mirrors[i], data, len);
  if (policy == NULL || c->replay_lost || len == 0)
    return;
  if (c->replay == NULL)
    c->replay = weft_buf_pool_get (c->worker->bufs, WEFT_BUF_TINY);
  while (c->replay != NULL && weft_buf_space (c->replay) < len)
    {
      if (weft_buf_len (c->replay) + len > policy->spec.max_body + WEFT_BUF_TINY ||
          !weft_buf_pool_grow (c->worker->bufs, &c->replay))
        {
          /* larger than a retry may resend: this request is not retried */
          c->replay_lost = TRUE;
          weft_buf_pool_put (c->worker->bufs, c->replay);
          c->replay = NULL;
          return;
        }
    }
  weft_buf_append (c->replay, data, len);
}

/* request head and body (or tunnel bytes) to the upstream */
static gboolean
weft_conn_write_up (WeftConn *c)
{
  WeftUpConn *up = c->up;
  struct iovec iov[2];
  int n_iov = 0;
  gsize body = 0;
  gsize replay = c->replay != NULL ? weft_buf_len (c->replay) - c->replay_sent : 0;
  gssize n;

  if (up == NULL || !up->connected || !up->writable || c->up_out == NULL)
    return FALSE;
  if (c->up_out_sent < weft_buf_len (c->up_out))
    {
      iov[n_iov].iov_base = weft_buf_head (c->up_out) + c->up_out_sent;
      iov[n_iov++].iov_len = weft_buf_len (c->up_out) - c->up_out_sent;
    }
  /* a retry first sends again what the earlier try sent */
  if (replay > 0)
    {
      iov[n_iov].iov_base = weft_buf_head (c->replay) + c->replay_sent;
      iov[n_iov++].iov_len = replay;
    }
  else if (c->tunnel)
    body = c->in != NULL ? weft_buf_len (c->in) : 0;
  else if (weft_framer_take (&c->req_body, c->in))
    body = c->req_body.ready;
  else
    {
      /* bad chunk framing mid-body: the exchange cannot go on */
      weft_conn_fail (c, 400, "bad_chunk");
      return TRUE;
    }
  if (body > 0)
    {
      iov[n_iov].iov_base = weft_buf_head (c->in);
      iov[n_iov++].iov_len = body;
    }
  if (n_iov == 0)
    {
      int r = weft_conn_flush_tls (up->tls, &up->writable);
      if (r < 0)
        weft_conn_upstream_broke (c, FALSE);
      return r != 0;
    }
  n = weft_conn_writev (up->tls, up->h.fd, iov, n_iov);
  if (n < 0)
    {
      if (errno == EAGAIN || errno == EINTR)
        {
          up->writable = FALSE;
          return FALSE;
        }
      weft_conn_upstream_broke (c, FALSE);
      return TRUE;
    }
  if (c->up_out_sent < weft_buf_len (c->up_out))
    {
      gsize head_left = weft_buf_len (c->up_out) - c->up_out_sent;
      gsize used = MIN ((gsize) n, head_left);
      c->up_out_sent += used;
      n -= (gssize) used;
    }
  if (n > 0 && replay > 0)
    c->replay_sent += (gsize) n;
  else if (n > 0)
    {
      if (!c->tunnel)
        weft_conn_body_sent (c, weft_buf_head (c->in), (gsize) n);
      weft_buf_consume (c->in, (gsize) n);
      if (!c->tunnel)
        c->req_body.ready -= (gsize) n;
    }
  return TRUE;
}

static void
weft_conn_start_tunnel (WeftConn *c)
{
  c->tunnel = TRUE;
  weft_conn_set_deadline (c, WEFT_DEADLINE_NONE, 0);
  weft_framer_init (&c->resp_body, WEFT_HTTP_BODY_CLOSE, 0);
}

/* a 1xx other than 101: pass "100 Continue" on and wait for the real head;
 * an HTTP/1.0 client gets none (RFC 9110 15.2) */
static void
weft_conn_interim (WeftConn *c, WeftHttpHead *head)
{
  char line[64];
  int n = g_snprintf (line, sizeof line, "HTTP/1.1 %u %s\r\n\r\n", head->status,
                      weft_http_status_phrase (head->status));

  c->expect_pending = FALSE;
  if (c->req.version_minor > 0)
    {
      weft_conn_ensure_out (c);
      weft_buf_append (c->out, line, (gsize) n);
    }
  weft_buf_consume (c->up->in, head->head_len);
}

/* who answered, for the request's plugins; copied only when it changes,
 * so keep-alive traffic to one upstream allocates nothing */
static void
weft_conn_note_up_identity (WeftConn *c)
{
  const char *id = c->up != NULL && c->up->tls != NULL ? weft_tls_session_get_peer_id (c->up->tls)
                                                      : NULL;

  if (id == NULL)
    return;
  if (g_strcmp0 (id, c->up_identity) != 0)
    {
      g_free (c->up_identity);
      c->up_identity = g_strdup (id);
    }
  c->req.upstream_identity = c->up_identity;
}

static gboolean
weft_conn_response_head (WeftConn *c)
{
  WeftHttpHead *head = &c->worker->scratch_head;
  WeftHttpError err = WEFT_HTTP_ERR_NONE;
  WeftUpConn *up = c->up;
  WeftHttpParseStatus st;
  WeftBuf *head_buf;
  gboolean close_after;

  if (c->resp_head_done || up == NULL || up->in == NULL || weft_buf_len (up->in) == 0)
    return FALSE;
  if (up->in->start > 0)
    weft_buf_compact (up->in);
  st = weft_http_parse_response (weft_buf_head (up->in), weft_buf_len (up->in),
                                 &c->req.listener->limits, c->req.is_head, head, &err);
  if (st == WEFT_HTTP_PARSE_INCOMPLETE)
    {
      if (weft_buf_space (up->in) == 0 && !c->up_eof &&
          weft_buf_pool_grow (c->worker->bufs, &up->in))
        return TRUE;
      /* over the largest buffer: malformed; cut short: check_eofs
       * reports the reset (and the keep-alive retry may apply) */
      if (weft_buf_space (up->in) == 0)
        {
          weft_conn_fail_upstream (c, 502, WEFT_UPSTREAM_ERR_BAD_RESPONSE);
          return TRUE;
        }
      return FALSE;
    }
  if (st == WEFT_HTTP_PARSE_ERROR)
    {
      weft_conn_fail_upstream (c, 502, WEFT_UPSTREAM_ERR_BAD_RESPONSE);
      return TRUE;
    }
  if (head->status / 100 == 1 && head->status != 101)
    {
      weft_conn_interim (c, head);
      return TRUE;
    }
  /* a switch nobody asked for: its bytes are not HTTP any more, and the
   * connection must never go back to the pool */
  if (head->status == 101 && !c->req.upgrade)
    {
      weft_conn_fail_upstream (c, 502, WEFT_UPSTREAM_ERR_BAD_RESPONSE);
      return TRUE;
    }
  weft_conn_end_attempt (c, WEFT_OUTCOME_RESPONSE, head->status);
  if (head->status >= 400 && c->req.retry != NULL &&
      weft_conn_retry_policy (c, WEFT_OUTCOME_RESPONSE, head->status))
    return TRUE;
  c->resp_head_done = TRUE;
  weft_conn_note_up_identity (c);
  if (c->tries > 1 && head->status >= 500)
    c->req.resp_flags |= WEFT_RESPONSE_FLAG_RETRY_LIMIT_EXCEEDED;
  weft_conn_arm_response_idle (c);
  head_buf = up->in;
  up->in = weft_buf_pool_get (c->worker->bufs, WEFT_BUF_SMALL);
  if (weft_buf_len (head_buf) > head->head_len)
    weft_buf_append (up->in, weft_buf_head (head_buf) + head->head_len,
                     weft_buf_len (head_buf) - head->head_len);
  head_buf->end = head->head_len;
  weft_request_set_response_head (&c->req, head_buf, head);
  if (head->status == 101 && c->req.upgrade)
    weft_conn_start_tunnel (c);
  else
    weft_framer_init (&c->resp_body, head->body_kind, head->content_length);
  c->expect_pending = FALSE;
  /* an HTTP/1.0 client cannot read chunked (RFC 9112 6.1): it gets the
   * data alone, delimited by the close */
  if (c->resp_body.kind == WEFT_HTTP_BODY_CHUNKED && c->req.version_minor == 0)
    {
      c->resp_body.strip = TRUE;
      c->req.resp_body_kind = WEFT_HTTP_BODY_CLOSE;
      c->keep_alive = FALSE;
    }
  if (c->resp_body.kind == WEFT_HTTP_BODY_CLOSE && !c->tunnel)
    c->keep_alive = FALSE;
  /* an answer before the whole request body: the rest of the body can
   * never be read as a request, so the connection ends with this answer */
  if (!c->req_body.done && !c->tunnel)
    c->keep_alive = FALSE;
  guint idx = 0;
  WeftHookResult r = weft_conn_run_phase (c, WEFT_PHASE_RESPONSE, &idx);
  if (r == WEFT_HOOK_SUSPEND)
    weft_request_cancel_suspension (&c->req);   /* the response phase cannot wait */
  if (r == WEFT_HOOK_ERROR || r == WEFT_HOOK_SUSPEND)
    weft_log (WEFT_LOG_WARNING, "proxy", "a response hook failed; the response goes on");
  close_after = !c->tunnel && (!c->keep_alive || c->worker->draining ||
                               weft_conn_listener (c) == NULL);
  if (close_after)
    c->keep_alive = FALSE;
  weft_conn_ensure_out (c);
  while (!weft_request_write_response_head (&c->req, c->out, close_after))
    {
      c->out->start = c->out->end = 0;
      if (weft_buf_pool_grow (c->worker->bufs, &c->out))
        continue;
      c->resp_head_done = FALSE;
      weft_conn_fail_upstream (c, 502, WEFT_UPSTREAM_ERR_BAD_RESPONSE);
      break;
    }
  return TRUE;
}

/* heads, local bodies and response bodies to the client */
static gboolean
weft_conn_write_client (WeftConn *c)
{
  struct iovec iov[2];
  int n_iov = 0;
  gsize body = 0;
  WeftBuf *src = c->up != NULL ? c->up->in : NULL;
  gssize n;

  if (!c->writable || c->client_shut)
    return FALSE;
  if (c->out != NULL && weft_buf_len (c->out) > 0)
    {
      iov[n_iov].iov_base = weft_buf_head (c->out);
      iov[n_iov++].iov_len = weft_buf_len (c->out);
    }
  /* a delayed local answer has no head yet: its body waits too */
  if (c->in_request && c->req.local)
    {
      body = c->resp_head_done ? c->req.local_body_len - c->local_sent : 0;
      if (body > 0)
        {
          iov[n_iov].iov_base = (char *) c->req.local_body + c->local_sent;
          iov[n_iov++].iov_len = body;
        }
    }
  else if (c->in_request && c->resp_head_done && src != NULL)
    {
      if (!weft_framer_take (&c->resp_body, src))
        {
          /* bad chunk framing from the upstream: a 502 while no byte of
           * the answer went out, else the client sees it cut */
          if (c->req.bytes_sent == 0)
            weft_conn_fail_upstream (c, 502, WEFT_UPSTREAM_ERR_BAD_RESPONSE);
          else
            weft_conn_close (c);
          return TRUE;
        }
      body = c->resp_body.ready;
      if (body > 0)
        {
          iov[n_iov].iov_base = weft_buf_head (src);
          iov[n_iov++].iov_len = body;
        }
    }
  if (n_iov == 0)
    {
      int r = weft_conn_flush_tls (c->tls, &c->writable);
      if (r < 0)
        weft_conn_client_gone (c);
      return r != 0;
    }
  n = weft_conn_writev (c->tls, c->h.fd, iov, n_iov);
  if (n < 0)
    {
      if (errno == EAGAIN || errno == EINTR)
        {
          c->writable = FALSE;
          return FALSE;
        }
      weft_conn_client_gone (c);
      return TRUE;
    }
  c->bytes_out += (guint64) n;
  if (c->in_request)
    c->req.bytes_sent += (guint64) n;
  if (c->out != NULL && weft_buf_len (c->out) > 0)
    {
      gsize used = MIN ((gsize) n, weft_buf_len (c->out));
      weft_buf_consume (c->out, used);
      n -= (gssize) used;
      if (weft_buf_len (c->out) == 0 && c->resp_head_done)
        c->resp_head_sent = TRUE;
      /* flushed: an idle or streaming connection holds no output buffer */
      if (weft_buf_len (c->out) == 0)
        {
          weft_buf_pool_put (c->worker->bufs, c->out);
          c->out = NULL;
        }
    }
  if (n > 0 && c->req.local)
    c->local_sent += (gsize) n;
  else if (n > 0)
    {
      weft_buf_consume (src, (gsize) n);
      c->resp_body.ready -= (gsize) n;
    }
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* zero-copy bodies                                                     */
/* ------------------------------------------------------------------ */

/* a smaller body is not worth taking a pipe for */
#define WEFT_SPLICE_MIN (64 * 1024)

/* plugins never see body bytes (the ABI has no body hook), so only TLS, a
 * mirror or a retry's copy needs them in user space; the bytes already
 * buffered go first, the rest socket -> pipe -> socket */
static gboolean
weft_conn_req_splice_wanted (WeftConn *c)
{
  WeftUpConn *up = c->up;

  if (c->req_pipe != NULL)
    return TRUE;
  return c->in_request && !c->tunnel && up != NULL && up->connected && c->tls == NULL &&
         up->tls == NULL && c->req_body.kind == WEFT_HTTP_BODY_LENGTH &&
         c->req_body.remaining >= WEFT_SPLICE_MIN && c->req_body.ready == 0 &&
         (c->in == NULL || weft_buf_len (c->in) == 0) && c->n_mirrors == 0 &&
         (c->req.retry == NULL || c->replay_lost) && c->up_out != NULL &&
         c->up_out_sent == weft_buf_len (c->up_out) &&
         (c->replay == NULL || c->replay_sent == weft_buf_len (c->replay));
}

static gboolean
weft_conn_resp_splice_wanted (WeftConn *c)
{
  WeftUpConn *up = c->up;

  if (c->resp_pipe != NULL)
    return TRUE;
  if (!c->in_request || !c->resp_head_done || c->tunnel || c->req.local || up == NULL ||
      c->tls != NULL || up->tls != NULL || c->resp_body.done || c->resp_body.ready > 0)
    return FALSE;
  if (c->resp_body.kind == WEFT_HTTP_BODY_LENGTH ? c->resp_body.remaining < WEFT_SPLICE_MIN :
      c->resp_body.kind != WEFT_HTTP_BODY_CLOSE)
    return FALSE;
  return (up->in == NULL || weft_buf_len (up->in) == 0) && weft_conn_out_empty (c);
}

/* body bytes arrived in @f's pipe */
static void
weft_conn_framer_spliced (WeftFramer *f, gsize n)
{
  f->total += n;
  if (f->kind != WEFT_HTTP_BODY_LENGTH)
    return;
  f->remaining -= n;
  f->done = f->remaining == 0;
}

typedef enum {
  WEFT_SPLICE_OK,
  WEFT_SPLICE_SOURCE_ENDED,   /* end of stream, or a reset, on the reading side */
  WEFT_SPLICE_SINK_FAILED,    /* the writing side failed */
} WeftSpliceResult;

/* one fill of @pipe from @src and one drain of it to @dst */
static WeftSpliceResult
weft_conn_splice_step (WeftPipe *pipe, int src, gboolean *readable, guint64 max, gboolean src_done,
                       int dst, gboolean *writable, gsize *moved_in, gsize *moved_out)
{
  gssize n;

  *moved_in = *moved_out = 0;
  if (pipe->len < pipe->cap && *readable && !src_done)
    {
      n = weft_pipe_fill (pipe, src, max);
      /* EAGAIN into a pipe that is not empty may mean its slots are full,
       * not that the socket is empty: only an empty pipe's clears @readable */
      if (n < 0 && (errno == EAGAIN || errno == EINTR))
        *readable = *readable && pipe->len > 0;
      else if (n <= 0)
        return WEFT_SPLICE_SOURCE_ENDED;
      else
        *moved_in = (gsize) n;
    }
  if (pipe->len > 0 && *writable)
    {
      n = weft_pipe_drain (pipe, dst);
      if (n < 0 && (errno == EAGAIN || errno == EINTR))
        *writable = FALSE;
      else if (n < 0)
        return WEFT_SPLICE_SINK_FAILED;
      else
        *moved_out = (gsize) n;
    }
  return WEFT_SPLICE_OK;
}

/* a drained pipe of a finished body goes back to the pool */
static void
weft_conn_pipe_done (WeftConn *c, WeftPipe **pipe, gboolean body_over)
{
  if ((*pipe)->len > 0 || !body_over)
    return;
  weft_pipe_pool_put (c->worker->pipes, *pipe);
  *pipe = NULL;
}

static gboolean
weft_conn_splice_up (WeftConn *c)
{
  WeftUpConn *up = c->up;
  WeftSpliceResult r;
  gsize in, out;

  if (!weft_conn_req_splice_wanted (c))
    return FALSE;
  if (c->req_pipe == NULL && (c->req_pipe = weft_pipe_pool_get (c->worker->pipes)) == NULL)
    return FALSE;
  r = weft_conn_splice_step (c->req_pipe, c->h.fd, &c->readable, c->req_body.remaining,
                             c->req_body.done, up->h.fd, &up->writable, &in, &out);
  if (in > 0)
    {
      c->bytes_in += in;
      weft_conn_framer_spliced (&c->req_body, in);
      weft_worker_listener_count_spliced (c->wl, FALSE, in);
    }
  if (r == WEFT_SPLICE_SOURCE_ENDED)
    {
      /* the client left mid-body: the request can never complete */
      c->client_eof = TRUE;
      return TRUE;
    }
  if (r == WEFT_SPLICE_SINK_FAILED)
    {
      weft_conn_upstream_broke (c, FALSE);
      return TRUE;
    }
  weft_conn_pipe_done (c, &c->req_pipe, c->req_body.done);
  return in > 0 || out > 0;
}

static gboolean
weft_conn_splice_down (WeftConn *c)
{
  WeftUpConn *up = c->up;
  WeftSpliceResult r;
  gsize in, out;

  if (!weft_conn_resp_splice_wanted (c))
    return FALSE;
  if (c->resp_pipe == NULL && (c->resp_pipe = weft_pipe_pool_get (c->worker->pipes)) == NULL)
    return FALSE;
  r = weft_conn_splice_step (c->resp_pipe, up->h.fd, &up->readable,
                             c->resp_body.kind == WEFT_HTTP_BODY_LENGTH ?
                             c->resp_body.remaining : G_MAXUINT64,
                             c->resp_body.done || c->up_eof, c->h.fd, &c->writable, &in, &out);
  if (in > 0)
    {
      weft_conn_framer_spliced (&c->resp_body, in);
      weft_worker_listener_count_spliced (c->wl, TRUE, in);
    }
  c->bytes_out += out;
  c->req.bytes_sent += out;
  if (r == WEFT_SPLICE_SINK_FAILED)
    {
      weft_conn_client_gone (c);
      return TRUE;
    }
  /* end or reset: the framing decides whether the body is whole */
  if (r == WEFT_SPLICE_SOURCE_ENDED)
    c->up_eof = TRUE;
  weft_conn_pipe_done (c, &c->resp_pipe, c->resp_body.done || c->up_eof);
  return in > 0 || out > 0 || r == WEFT_SPLICE_SOURCE_ENDED;
}

/* ------------------------------------------------------------------ */
/* completion                                                           */
/* ------------------------------------------------------------------ */

static gboolean
weft_conn_out_empty (WeftConn *c)
{
  return (c->out == NULL || weft_buf_len (c->out) == 0) &&
         (c->tls == NULL || !weft_tls_session_has_pending (c->tls));
}

/* the server's ticket, once per connection, for the next one to resume */
static void
weft_conn_save_resumption (WeftUpConn *up)
{
  GBytes *data;

  if (up->tls == NULL || up->tls_saved)
    return;
  data = weft_tls_session_take_resume_data (up->tls);
  if (data == NULL)
    return;
  up->tls_saved = TRUE;
  g_clear_pointer (&up->entry->tls_resume, g_bytes_unref);
  up->entry->tls_resume = data;
}

/* after a full response: the upstream connection back to the pool, or closed */
static void
weft_conn_release_up (WeftConn *c)
{
  WeftUpConn *up = c->up;
  gboolean reusable;
  const WeftTimeouts *t = &c->req.listener->config->timeouts;

  if (up == NULL)
    return;
  reusable = c->req.resp_keep_alive && c->resp_body.kind != WEFT_HTTP_BODY_CLOSE &&
             c->req_body.done && c->req_body.ready == 0 && !c->up_eof &&
             (up->in == NULL || weft_buf_len (up->in) == 0) &&
             c->up_out_sent == weft_buf_len (c->up_out);
  up->served++;
  if (c->req.upstream->pool.max_requests_per_connection > 0 &&
      up->served >= c->req.upstream->pool.max_requests_per_connection)
    reusable = FALSE;
  weft_conn_save_resumption (up);
  if (!reusable)
    {
      weft_conn_close_up (c);
      return;
    }
  c->up = NULL;
  weft_upstream_pool_put (c->worker->pool, up, c->worker->now_ms + (gint64) t->upstream_idle_ms);
}

static void
weft_conn_next_request (WeftConn *c)
{
  weft_conn_end_request (c, TRUE);
  weft_conn_release_in (c);
  if (c->worker->draining && (c->in == NULL || weft_buf_len (c->in) == 0))
    {
      weft_conn_close (c);
      return;
    }
  weft_conn_set_idle_deadline (c);
}

static void
weft_conn_check_done (WeftConn *c)
{
  gboolean resp_done;

  if (!c->in_request || c->tunnel)
    return;
  if (c->req.local)
    resp_done = c->resp_head_done && weft_conn_out_empty (c) &&
                c->local_sent == c->req.local_body_len;
  else
    resp_done = c->resp_head_done && weft_conn_out_empty (c) && c->resp_body.ready == 0 &&
                (c->resp_pipe == NULL || c->resp_pipe->len == 0) &&
                (c->resp_body.done || (c->resp_body.kind == WEFT_HTTP_BODY_CLOSE && c->up_eof));
  if (!resp_done)
    return;
  if (!c->req.local)
    weft_conn_release_up (c);
  if (c->closing || !c->keep_alive || !c->req_body.done)
    {
      weft_conn_linger (c);
      return;
    }
  weft_conn_next_request (c);
}

/* a side of the tunnel ended: pass the end on once its bytes are through */
static void
weft_conn_check_tunnel (WeftConn *c)
{
  if (!c->tunnel || c->up == NULL)
    return;
  if (c->client_eof && !c->up_shut && (c->in == NULL || weft_buf_len (c->in) == 0) &&
      (c->up->tls == NULL || !weft_tls_session_has_pending (c->up->tls)))
    {
      weft_tls_session_bye (c->up->tls);
      shutdown (c->up->h.fd, SHUT_WR);
      c->up_shut = TRUE;
    }
  if (c->up_eof && !c->client_shut && weft_conn_out_empty (c) &&
      (c->up->in == NULL || weft_buf_len (c->up->in) == 0))
    {
      weft_tls_session_bye (c->tls);
      shutdown (c->h.fd, SHUT_WR);
      c->client_shut = TRUE;
    }
  if (c->up_shut && c->client_shut)
    weft_conn_close (c);
}

static void
weft_conn_check_eofs (WeftConn *c)
{
  if (c->dead || c->tunnel)
    return;
  if (c->up_eof && c->up != NULL && !c->resp_head_done)
    {
      c->up->readable = FALSE;
      weft_conn_upstream_broke (c, FALSE);
      return;
    }
  if (c->up_eof && c->up != NULL && c->resp_head_done && !c->resp_body.done &&
      c->resp_body.kind != WEFT_HTTP_BODY_CLOSE &&
      (c->up->in == NULL || weft_buf_len (c->up->in) == 0))
    {
      /* the upstream died mid-body: the client must see a broken message */
      weft_conn_close (c);
      return;
    }
  if (c->client_eof && !c->in_request && !c->lingering && weft_conn_out_empty (c))
    weft_conn_close (c);
  else if (c->client_eof && c->in_request && !c->req_body.done)
    weft_conn_client_gone (c);   /* the request can never complete */
}

/* level-triggered interest from what the exchange wants now; @more: the
 * run stopped with work left, so ask to be woken at once */
static void
weft_conn_update_events (WeftConn *c, gboolean more)
{
  guint32 ev = 0;
  WeftUpConn *up = c->up;

  if (c->dead)
    return;
  if (c->tls_state == WEFT_CONN_TLS_PEEK || c->tls_state == WEFT_CONN_TLS_HANDSHAKE)
    {
      weft_epoll_source_modify (c->worker->epoll, &c->h, c->tls_want);
      return;
    }
  /* a drained socket keeps its interest: no epoll_ctl twice per request */
  if (weft_conn_want_client_read (c) || (!c->readable && !c->client_eof && !c->closing))
    ev |= EPOLLIN;
  if (!c->writable || more)
    ev |= EPOLLOUT;
  weft_epoll_source_modify (c->worker->epoll, &c->h, ev);
  if (up == NULL)
    return;
  ev = 0;
  if (up->tls != NULL && !up->connected)
    ev = up->tls_want;
  else if (!up->connected || !up->writable || more)
    ev |= EPOLLOUT;
  if (weft_conn_want_up_read (c) || (up->connected && !up->readable && !c->up_eof))
    ev |= EPOLLIN | EPOLLRDHUP;
  weft_epoll_source_modify (c->worker->epoll, &up->h, ev);
}

/* ------------------------------------------------------------------ */
/* inbound mTLS                                                         */
/* ------------------------------------------------------------------ */

/* a refusal floods nothing: a burst of lines per worker, then a count */
static void
weft_conn_log_tls_refusal (const char *peer, guint16 port, const char *listener,
                           WeftTlsFailure failure, const char *detail)
{
  static __thread WeftLogLimit limit;
  guint held_back;
  gboolean ok = weft_log_limit_allow (&limit, WEFT_TLS_LOG_BURST, 10, &held_back);

  if (held_back > 0)
    weft_log (WEFT_LOG_WARNING, "tls", "%u more TLS refusals not logged", held_back);
  if (!ok)
    return;
  weft_log (WEFT_LOG_WARNING, "tls", "refused TLS from %s:%u on listener '%s': %s (%s%s%s)",
            peer, port, listener, weft_tls_failure_to_string (failure),
            weft_tls_failure_describe (failure), *detail != '\0' ? ": " : "", detail);
}

static guint16
weft_conn_peer_port (WeftConn *c)
{
  in_port_t *port = weft_sockaddr_port (&c->peer);

  return port != NULL ? ntohs (*port) : 0;
}

static void
weft_conn_tls_refuse (WeftConn *c, WeftTlsFailure failure)
{
  const char *detail = c->tls != NULL ? weft_tls_session_get_detail (c->tls) : "";

  weft_worker_listener_count_tls (c->wl, WEFT_TLS_ROLE_SERVER, FALSE, failure);
  weft_conn_log_tls_refusal (c->peer_ip, weft_conn_peer_port (c), c->wl->name, failure, detail);
  /* the alert is out; the session is not needed for what follows */
  g_clear_pointer (&c->tls, weft_tls_session_free);
  c->tls_state = WEFT_CONN_TLS_NONE;
  /* a TLS 1.3 client may have sent its request already: closing over
   * those unread bytes would reset the connection and destroy the alert
   * in flight, so shut down writing and drain them first (bounded) */
  weft_conn_linger (c);
}

/* the first byte decides: a TLS handshake record, or plaintext HTTP */
static gboolean
weft_conn_tls_peek (WeftConn *c)
{
  WeftGeneration *gen = c->worker->gen;
  guint8 hello[11] = { 0 };
  gssize n = recv (c->h.fd, hello, sizeof hello, MSG_PEEK);
  guint8 first = hello[0];

  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    {
      c->readable = FALSE;
      return FALSE;
    }
  if (n <= 0)
    {
      weft_conn_close (c);    /* gone before saying anything */
      return FALSE;
    }
  if (first != 0x16 && c->tls_mode == WEFT_TLS_MODE_STRICT)
    {
      weft_conn_tls_refuse (c, WEFT_TLS_FAIL_PLAINTEXT_ON_STRICT);
      return FALSE;
    }
  if (first != 0x16 || gen->tls == NULL)
    {
      c->tls_state = WEFT_CONN_TLS_NONE;
      return TRUE;
    }
  c->tls = weft_tls_session_new_server (gen->tls, c->h.fd);
  if (c->tls == NULL)
    {
      weft_conn_close (c);
      return FALSE;
    }
  weft_tls_session_set_first_bytes (c->tls, hello, (gsize) n);
  c->tls_state = WEFT_CONN_TLS_HANDSHAKE;
  /* a slow handshake is a slowloris too */
  weft_conn_set_deadline (c, WEFT_DEADLINE_HEADER, weft_conn_timeouts (c)->request_header_ms);
  return TRUE;
}

/* TRUE once the connection can carry HTTP (plaintext or a finished
 * handshake); FALSE while waiting, or when it was closed */
static gboolean
weft_conn_tls_step (WeftConn *c)
{
  if (c->tls_state == WEFT_CONN_TLS_PEEK && !weft_conn_tls_peek (c))
    {
      c->tls_want = EPOLLIN;
      return FALSE;
    }
  if (c->tls_state != WEFT_CONN_TLS_HANDSHAKE)
    return TRUE;
  switch (weft_tls_session_handshake (c->tls))
    {
    case WEFT_TLS_STEP_DONE:
      c->tls_state = WEFT_CONN_TLS_READY;
      weft_worker_listener_count_tls (c->wl, WEFT_TLS_ROLE_SERVER,
                                      weft_tls_session_is_resumed (c->tls), WEFT_TLS_FAIL_NONE);
      weft_conn_emit (c, WEFT_CONN_OPENED);
      weft_conn_set_idle_deadline (c);
      /* the request may have come in the handshake's last packet */
      c->readable = c->writable = TRUE;
      return TRUE;
    case WEFT_TLS_STEP_WANT_READ:
      c->tls_want = EPOLLIN;
      return FALSE;
    case WEFT_TLS_STEP_WANT_WRITE:
      c->tls_want = EPOLLOUT;
      return FALSE;
    case WEFT_TLS_STEP_FAILED:
    default:
      weft_conn_tls_refuse (c, weft_tls_session_get_failure (c->tls));
      return FALSE;
    }
}

static void
weft_conn_run (WeftConn *c)
{
  gboolean progress = FALSE;

  if (c->tls_state != WEFT_CONN_TLS_NONE && c->tls_state != WEFT_CONN_TLS_READY &&
      !weft_conn_tls_step (c))
    {
      weft_conn_update_events (c, FALSE);
      return;
    }

  for (guint round = 0; round < 64 && !c->dead; round++)
    {
      progress = FALSE;

      progress |= weft_conn_read_client (c);
      if (c->dead)
        break;
      if (c->lingering)
        {
          if (c->client_eof)
            weft_conn_close (c);
          if (!progress)
            break;
          continue;
        }
      progress |= weft_conn_parse (c);
      progress |= !c->dead && weft_conn_write_up (c);
      progress |= !c->dead && weft_conn_splice_up (c);
      progress |= !c->dead && weft_conn_read_up (c);
      progress |= !c->dead && weft_conn_response_head (c);
      progress |= !c->dead && weft_conn_write_client (c);
      progress |= !c->dead && weft_conn_splice_down (c);
      if (c->dead)
        break;
      weft_conn_check_tunnel (c);
      weft_conn_check_eofs (c);
      if (!c->dead)
        weft_conn_check_done (c);
      /* a rejected request: close once the answer is out */
      if (!c->dead && c->closing && !c->in_request && !c->lingering && weft_conn_out_empty (c))
        {
          weft_conn_linger (c);
          progress = TRUE;
        }
      if (!progress)
        break;
    }
  /* a long transfer yields after 64 rounds so other connections run */
  weft_conn_update_events (c, progress);
}

static void
weft_conn_event (WeftEpollHandler *handler, guint32 events)
{
  WeftConn *c = (WeftConn *) handler;

  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
    c->readable = TRUE;
  if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
    c->writable = TRUE;
  weft_conn_run (c);
}

/* the listener's mode when the connection arrived decides its fate */
static void
weft_conn_tls_accept (WeftConn *c)
{
  WeftListener *l = weft_conn_listener (c);

  if (l == NULL)
    return;
  /* port-level modes go by where the client meant to connect */
  c->tls_mode = l->config->tls_ports == NULL ? l->config->tls_mode :
                weft_listener_config_tls_mode (l->config, weft_conn_original_port (c, l->config));
  if (c->tls_mode == WEFT_TLS_MODE_DISABLE)
    return;
  c->tls_state = WEFT_CONN_TLS_PEEK;
  c->tls_want = EPOLLIN;
  /* a STRICT port owes a handshake from the first moment: a silent client
   * is a slowloris, not an idle keep-alive one (PERMISSIVE may be either) */
  if (c->tls_mode == WEFT_TLS_MODE_STRICT)
    weft_conn_set_deadline (c, WEFT_DEADLINE_HEADER, weft_conn_timeouts (c)->request_header_ms);
}

WeftConn *
weft_conn_new (WeftWorker *worker, WeftWorkerListener *wl, int fd,
               const struct sockaddr *peer, socklen_t peer_len)
{
  WeftConn *c = g_new0 (WeftConn, 1);
  int one = 1;

  c->worker = worker;
  c->wl = wl;
  c->h.func = weft_conn_event;
  c->writable = TRUE;
  memcpy (&c->peer, peer, MIN ((gsize) peer_len, sizeof c->peer));
  c->peer_len = peer_len;
  if (peer->sa_family == AF_INET)
    inet_ntop (AF_INET, &((const struct sockaddr_in *) peer)->sin_addr, c->peer_ip,
               sizeof c->peer_ip);
  else if (peer->sa_family == AF_INET6)
    inet_ntop (AF_INET6, &((const struct sockaddr_in6 *) peer)->sin6_addr, c->peer_ip,
               sizeof c->peer_ip);
  else
    g_strlcpy (c->peer_ip, "unknown", sizeof c->peer_ip);
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (!weft_epoll_source_add (worker->epoll, &c->h, fd, EPOLLIN))
    {
      close (fd);
      g_free (c);
      return NULL;
    }
  weft_metric_series_add (wl->conns_active, 1);
  weft_metric_series_add (wl->conns_total, 1);
  weft_worker_conn_added (worker, c);
  c->open_us = g_get_monotonic_time ();
  weft_conn_set_idle_deadline (c);
  weft_conn_tls_accept (c);
  /* an mTLS client is announced once its identity is known */
  if (c->tls_state == WEFT_CONN_TLS_NONE)
    weft_conn_emit (c, WEFT_CONN_OPENED);
  return c;
}

static void
weft_conn_connect_timed_out (WeftConn *c)
{
  gint64 now_ms = c->worker->now_ms;

  gboolean try_over = c->try_deadline_ms != 0 && now_ms >= c->try_deadline_ms;

  weft_upstream_report (c->req.upstream, c->ep_set, c->ep_idx, c->worker->index, FALSE, now_ms);
  weft_conn_end_attempt (c, WEFT_OUTCOME_CONNECT_FAILED, 0);
  if (c->req_deadline_ms != 0 && now_ms >= c->req_deadline_ms)
    {
      weft_conn_fail_upstream (c, 504, WEFT_UPSTREAM_ERR_TIMEOUT);
      return;
    }
  /* the connect's or the try's limit, not the request's: another try may fit */
  if (weft_conn_retry_policy (c, try_over ? WEFT_OUTCOME_TIMEOUT : WEFT_OUTCOME_CONNECT_FAILED, 0))
    return;
  weft_conn_fail_upstream (c, 504, WEFT_UPSTREAM_ERR_CONNECT_TIMEOUT);
}

/* is weft waiting on the client for request body bytes? Not when the body
 * is whole, when weft stopped reading (a full buffer or pipe: the upstream
 * is the slow one), or while an Expect: 100-continue waits for its answer */
static gboolean
weft_conn_waiting_for_body (WeftConn *c)
{
  if (!c->in_request || c->req_body.done || c->tunnel || c->client_eof || c->closing ||
      c->expect_pending || c->req.local)
    return FALSE;
  /* bytes buffered while the upstream is not ready yet count as arrived; a
   * framing error here is answered once the body is forwarded */
  if (c->req_pipe == NULL && (!weft_framer_take (&c->req_body, c->in) || c->req_body.done))
    return FALSE;
  if (c->req_pipe != NULL)
    return c->req_pipe->len < c->req_pipe->cap;
  return weft_conn_want_client_read (c);
}

/* slow POST: the body must come within timeouts.request_body, and each
 * limits.min_request_body_rate bytes received add a second (mod_reqtimeout's
 * body=20,MinRate=500). The clock restarts whenever weft is not waiting
 * on the client, so backpressure from a slow upstream never counts */
static gboolean
weft_conn_check_body_clock (WeftConn *c, gint64 now_ms)
{
  WeftRequest *req = &c->req;
  guint64 limit_ms, rate, got;

  if (!weft_conn_waiting_for_body (c))
    {
      c->body_clock_ms = now_ms;
      c->body_clock_bytes = c->bytes_in;
      return FALSE;
    }
  limit_ms = req->listener->config->timeouts.request_body_ms;
  if (limit_ms == 0)
    return FALSE;
  rate = req->gen->config->limits.min_body_rate;
  got = c->bytes_in - c->body_clock_bytes;
  if (rate > 0)
    limit_ms += got / rate * 1000;
  if (now_ms - c->body_clock_ms <= (gint64) MIN (limit_ms, (guint64) G_MAXINT64 / 2))
    return FALSE;
  weft_log (WEFT_LOG_DEBUG, "proxy", "%s %s: request body from %s too slow (%" G_GUINT64_FORMAT
            " bytes in %" G_GINT64_FORMAT " ms)", req->method, req->path, c->peer_ip,
            c->req_body.total, now_ms - c->body_clock_ms);
  weft_metric_series_add (c->worker->metrics->bad_requests, 1);
  /* part of an answer may be out already: only a close can end it then */
  if (c->resp_head_done || c->resp_head_sent)
    weft_conn_close (c);
  else
    weft_conn_fail (c, 408, "request_body_timeout");
  return TRUE;
}

/* no byte of the response moved for timeouts.response_idle: the client
 * sees the close, so a cut answer is never taken as whole */
static void
weft_conn_response_idle (WeftConn *c)
{
  if (c->bytes_out != c->idle_mark)
    {
      weft_conn_arm_response_idle (c);
      return;
    }
  weft_conn_count_upstream_error (c, WEFT_UPSTREAM_ERR_RESPONSE_IDLE);
  c->req.resp_flags |= weft_upstream_err_flags[WEFT_UPSTREAM_ERR_RESPONSE_IDLE];
  weft_conn_close (c);
}

void
weft_conn_check_deadline (WeftConn *c, gint64 now_ms)
{
  WeftDeadline kind = c->deadline_kind;

  if (!c->dead && c->in_request && weft_conn_check_body_clock (c, now_ms))
    {
      if (!c->dead)
        weft_conn_run (c);
      return;
    }
  if (c->dead || kind == WEFT_DEADLINE_NONE || c->deadline_ms > now_ms)
    return;
  /* a handler may set the next deadline (a retry) */
  c->deadline_kind = WEFT_DEADLINE_NONE;
  switch (kind)
    {
    case WEFT_DEADLINE_HEADER:
      if (c->tls_state == WEFT_CONN_TLS_HANDSHAKE || c->tls_state == WEFT_CONN_TLS_PEEK)
        {
          weft_conn_tls_refuse (c, WEFT_TLS_FAIL_TIMEOUT);
          return;
        }
      c->in->start = c->in->end = 0;
      weft_conn_reject (c, 408, "request_header_timeout");
      break;
    case WEFT_DEADLINE_CONNECT:
      weft_conn_connect_timed_out (c);
      break;
    case WEFT_DEADLINE_REQUEST:
      weft_conn_timed_out (c);
      break;
    case WEFT_DEADLINE_RESPONSE_IDLE:
      weft_conn_response_idle (c);
      return;
    case WEFT_DEADLINE_IDLE:
    case WEFT_DEADLINE_LINGER:
    case WEFT_DEADLINE_DRAIN:
    default:
      weft_conn_close (c);
      return;
    }
  weft_conn_run (c);
}

void
weft_conn_abort (WeftConn *c)
{
  weft_conn_close (c);
}

void
weft_conn_drain (WeftConn *c)
{
  /* busy connections close after their current request */
  if (!c->dead && !c->in_request && !c->head_started)
    weft_conn_close (c);
}

guint16
weft_request_get_port (WeftRequest *req)
{
  return weft_conn_request_port (req->conn);
}

guint16
weft_request_get_destination_port (WeftRequest *req)
{
  return weft_conn_destination_port (req->conn);
}
