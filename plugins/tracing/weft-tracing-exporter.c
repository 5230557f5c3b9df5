/* weft-tracing-exporter.c: export bodies POSTed through libsoup
 *
 * Everything here runs on the main thread. A POST that fails (refused,
 * timed out, a non-2xx answer) is counted with its spans and never
 * retried: the queues behind it stay bounded whatever the collector does.
 * Failures are logged at most once per WEFT_TRACE_LOG_EVERY_US, with a
 * count of the ones left out.
 *
 * libsoup is called through a WeftTraceSoup, loaded by the first POST
 * (weft-tracing-soup.c); when it cannot be loaded, every batch fails as
 * a refused POST would.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "weft-tracing-private.h"
#include "weft-tracing-soup-private.h"

#define WEFT_TRACE_MAX_INFLIGHT  4
#define WEFT_TRACE_LOG_EVERY_US  (10 * G_USEC_PER_SEC)
#define WEFT_TRACE_SETTLE_TICK   50

struct _WeftTraceExporter {
  int                  ref;
  GUri                *uri;
  guint64              timeout_ms;
  const WeftTraceSoup *soup;           /* set with the session */
  SoupSession         *session;        /* made on the first POST */
  GPtrArray           *jobs;           /* POSTs in flight */
  gint64               last_log_us;
  guint                unlogged;       /* failures since the last message */
  WeftMetricSeries    *spans_exported;
  WeftMetricSeries    *spans_failed;
  WeftMetricSeries    *exports_ok;
  WeftMetricSeries    *exports_failed;
  WeftTraceReadyFunc   ready;          /* a POST ended: room for another */
  gpointer             ready_data;
};

typedef struct {
  WeftTraceExporter *exporter;
  SoupMessage       *msg;
  GCancellable      *cancel;
  guint              n_spans;
  guint              timer;
  gboolean           timed_out;
} WeftTraceJob;

/* every exporter alive, so exit can wait for their POSTs */
static GPtrArray *weft_trace_exporters;

static WeftMetricSeries *
weft_trace_series (WeftMetric *metric, const char *result)
{
  const char *values[] = { result, NULL };

  return weft_metric_get_series (metric, values);
}

WeftTraceExporter *
weft_trace_exporter_new (const WeftTraceSettings *settings, WeftMetric *spans, WeftMetric *exports)
{
  WeftTraceExporter *exporter = g_new0 (WeftTraceExporter, 1);

  exporter->ref = 1;
  /* the settings checked the URL already */
  exporter->uri = g_uri_parse (settings->endpoint, G_URI_FLAGS_NONE, NULL);
  exporter->timeout_ms = settings->timeout_ms;
  exporter->jobs = g_ptr_array_new ();
  exporter->spans_exported = weft_trace_series (spans, "exported");
  exporter->spans_failed = weft_trace_series (spans, "export_failed");
  exporter->exports_ok = weft_trace_series (exports, "ok");
  exporter->exports_failed = weft_trace_series (exports, "failed");
  if (weft_trace_exporters == NULL)
    weft_trace_exporters = g_ptr_array_new ();
  g_ptr_array_add (weft_trace_exporters, exporter);
  return exporter;
}

static WeftTraceExporter *
weft_trace_exporter_ref (WeftTraceExporter *exporter)
{
  exporter->ref++;
  return exporter;
}

void
weft_trace_exporter_unref (WeftTraceExporter *exporter)
{
  if (exporter == NULL || --exporter->ref > 0)
    return;
  g_ptr_array_remove_fast (weft_trace_exporters, exporter);
  if (weft_trace_exporters->len == 0)
    g_clear_pointer (&weft_trace_exporters, g_ptr_array_unref);
  if (exporter->session != NULL)
    {
      /* closes the idle keep-alive connection too */
      exporter->soup->session_abort (exporter->session);
      g_object_unref (exporter->session);
    }
  g_ptr_array_unref (exporter->jobs);
  g_uri_unref (exporter->uri);
  g_free (exporter);
}

/**
 * weft_trace_exporter_set_ready_func:
 * @exporter: the exporter
 * @ready: (nullable): called each time a POST ended; NULL to stop
 * @data: for @ready
 */
void
weft_trace_exporter_set_ready_func (WeftTraceExporter *exporter, WeftTraceReadyFunc ready,
                                    gpointer data)
{
  exporter->ready = ready;
  exporter->ready_data = data;
}

gboolean
weft_trace_exporter_can_send (WeftTraceExporter *exporter)
{
  return exporter->jobs->len < WEFT_TRACE_MAX_INFLIGHT;
}

/* ------------------------------------------------------------------ */
/* results                                                              */
/* ------------------------------------------------------------------ */

static void
weft_trace_exporter_failed (WeftTraceExporter *exporter, guint n_spans, const char *why)
{
  g_autofree char *uri = g_uri_to_string (exporter->uri);
  gint64 now = g_get_monotonic_time ();

  weft_metric_series_add (exporter->exports_failed, 1);
  weft_metric_series_add (exporter->spans_failed, n_spans);
  if (exporter->last_log_us != 0 && now - exporter->last_log_us < WEFT_TRACE_LOG_EVERY_US)
    {
      exporter->unlogged++;
      return;
    }
  weft_log (WEFT_LOG_WARNING, "tracing", "export to %s failed: %s; %u spans lost "
            "(%u more failed exports since the last message)", uri, why, n_spans,
            exporter->unlogged);
  exporter->last_log_us = now;
  exporter->unlogged = 0;
}

static void
weft_trace_job_free (WeftTraceJob *job)
{
  if (job->timer != 0)
    g_source_remove (job->timer);
  g_ptr_array_remove_fast (job->exporter->jobs, job);
  g_object_unref (job->msg);
  g_object_unref (job->cancel);
  weft_trace_exporter_unref (job->exporter);
  g_free (job);
}

static void
weft_trace_job_done (GObject *source, GAsyncResult *result, gpointer data)
{
  WeftTraceJob *job = data;
  WeftTraceExporter *exporter = job->exporter;
  const WeftTraceSoup *soup = exporter->soup;
  g_autoptr(GError) error = NULL;
  /* a plain cast: SOUP_SESSION () would call soup_session_get_type () */
  g_autoptr(GBytes) reply G_GNUC_UNUSED = soup->session_send_and_read_finish ((SoupSession *) source, result,
                                                                &error);
  guint status = error == NULL ? soup->message_get_status (job->msg) : 0;

  if (error == NULL && status >= 200 && status < 300)
    {
      weft_metric_series_add (exporter->exports_ok, 1);
      weft_metric_series_add (exporter->spans_exported, job->n_spans);
    }
  else if (job->timed_out)
    {
      g_autofree char *why = g_strdup_printf ("no answer in %" G_GUINT64_FORMAT " ms",
                                              exporter->timeout_ms);
      weft_trace_exporter_failed (exporter, job->n_spans, why);
    }
  else if (error != NULL)
    weft_trace_exporter_failed (exporter, job->n_spans, error->message);
  else
    {
      g_autofree char *why = g_strdup_printf ("HTTP %u %s", status,
                                              soup->message_get_reason_phrase (job->msg));
      weft_trace_exporter_failed (exporter, job->n_spans, why);
    }
  /* spans may have waited for this POST to end: let the owner go on */
  weft_trace_exporter_ref (exporter);
  weft_trace_job_free (job);
  if (exporter->ready != NULL)
    exporter->ready (exporter->ready_data);
  weft_trace_exporter_unref (exporter);
}

static gboolean
weft_trace_job_timeout (gpointer data)
{
  WeftTraceJob *job = data;

  job->timer = 0;
  job->timed_out = TRUE;
  g_cancellable_cancel (job->cancel);
  return G_SOURCE_REMOVE;
}

/* ------------------------------------------------------------------ */
/* sending                                                              */
/* ------------------------------------------------------------------ */

/* the session, made on the first POST, with libsoup loaded then;
 * FALSE when libsoup cannot be */
static gboolean
weft_trace_exporter_start (WeftTraceExporter *exporter)
{
  if (exporter->session != NULL)
    return TRUE;
  exporter->soup = weft_trace_soup_get ();
  if (exporter->soup == NULL)
    return FALSE;
  /* straight to the collector: a sidecar ignores http_proxy, and asking
   * the system's proxy resolver costs more than the POST itself */
  exporter->session = exporter->soup->session_new_with_options ("user-agent",
                                                                "weft-tracing/0.1.0",
                                                                "max-conns-per-host",
                                                                WEFT_TRACE_MAX_INFLIGHT,
                                                                "proxy-resolver", NULL, NULL);
  return TRUE;
}

/**
 * weft_trace_exporter_send:
 * @exporter: the exporter
 * @body: a JSON export body
 * @n_spans: the spans in it, counted when the POST ends
 *
 * Starts a POST and returns; the main loop finishes it. Without libsoup
 * the batch is counted as failed at once.
 */
void
weft_trace_exporter_send (WeftTraceExporter *exporter, GBytes *body, guint n_spans)
{
  const WeftTraceSoup *soup;
  WeftTraceJob *job;

  if (!weft_trace_exporter_start (exporter))
    {
      weft_trace_exporter_failed (exporter, n_spans, "libsoup is not loaded");
      return;
    }
  soup = exporter->soup;
  job = g_new0 (WeftTraceJob, 1);
  job->exporter = weft_trace_exporter_ref (exporter);
  job->n_spans = n_spans;
  job->cancel = g_cancellable_new ();
  /* "POST", not SOUP_METHOD_POST: that macro reads a libsoup variable */
  job->msg = soup->message_new_from_uri ("POST", exporter->uri);
  soup->message_set_request_body_from_bytes (job->msg, "application/json", body);
  job->timer = g_timeout_add ((guint) exporter->timeout_ms, weft_trace_job_timeout, job);
  g_ptr_array_add (exporter->jobs, job);
  soup->session_send_and_read_async (exporter->session, job->msg, G_PRIORITY_DEFAULT,
                                     job->cancel, weft_trace_job_done, job);
}

/* ------------------------------------------------------------------ */
/* exit                                                                 */
/* ------------------------------------------------------------------ */

static gboolean
weft_trace_exporters_busy (void)
{
  for (guint i = 0; weft_trace_exporters != NULL && i < weft_trace_exporters->len; i++)
    if (((WeftTraceExporter *) weft_trace_exporters->pdata[i])->jobs->len > 0)
      return TRUE;
  return FALSE;
}

static void
weft_trace_exporters_cancel (void)
{
  for (guint i = 0; weft_trace_exporters != NULL && i < weft_trace_exporters->len; i++)
    {
      WeftTraceExporter *exporter = weft_trace_exporters->pdata[i];
      for (guint j = 0; j < exporter->jobs->len; j++)
        g_cancellable_cancel (((WeftTraceJob *) exporter->jobs->pdata[j])->cancel);
    }
}

static gboolean
weft_trace_settle_tick (gpointer data)
{
  (void) data;
  return G_SOURCE_CONTINUE;
}

/**
 * weft_trace_exporters_settle:
 * @wait_ms: how long the POSTs in flight may still take
 *
 * For exit, when the main loop no longer runs: runs the main context
 * until every POST ended, cancelling those left after @wait_ms, so the
 * last spans go out and every session is freed.
 */
void
weft_trace_exporters_settle (guint64 wait_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) wait_ms * 1000;
  guint tick;

  if (!weft_trace_exporters_busy ())
    return;
  /* a wakeup now and then, so the deadline is seen */
  tick = g_timeout_add (WEFT_TRACE_SETTLE_TICK, weft_trace_settle_tick, NULL);
  while (weft_trace_exporters_busy () && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  weft_trace_exporters_cancel ();
  while (weft_trace_exporters_busy ())
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (tick);
}
