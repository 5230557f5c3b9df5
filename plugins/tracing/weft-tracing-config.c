/* weft-tracing-config.c: the `tracing:` settings, and a generation's queues
 * and export batches
 *
 * The main thread empties every worker's queue into export bodies on a
 * timer (batch.interval), and sooner when a worker's queue reaches
 * batch.max_spans. A retired generation's queues are emptied one last time
 * when it is freed, so a reload loses no span; at exit weft waits for the
 * last POSTs, at most for the export timeout.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "weft-tracing-private.h"

#include <string.h>

#define WEFT_TRACE_DEFAULT_OTLP       "http://127.0.0.1:4318/v1/traces"
#define WEFT_TRACE_DEFAULT_ZIPKIN     "http://127.0.0.1:9411/api/v2/spans"
#define WEFT_TRACE_DEFAULT_SAMPLING   1.0
#define WEFT_TRACE_DEFAULT_MAX_SPANS  512
#define WEFT_TRACE_DEFAULT_INTERVAL   1000
#define WEFT_TRACE_DEFAULT_QUEUE      2048
#define WEFT_TRACE_DEFAULT_TIMEOUT    5000
#define WEFT_TRACE_MAX_QUEUE          65536

/* live configurations, main thread only: a kick names one by id, and it
 * may be gone by the time the kick runs */
static GPtrArray *weft_trace_live;
static guint weft_trace_next_id;

void
weft_trace_settings_free (WeftTraceSettings *settings)
{
  if (settings == NULL)
    return;
  g_free (settings->endpoint);
  g_free (settings->service_name);
  g_free (settings);
}

/* ------------------------------------------------------------------ */
/* settings                                                             */
/* ------------------------------------------------------------------ */

static gboolean
weft_trace_parse_exporter (WeftTraceSettings *s, const WeftNode *node, GError **error)
{
  const char *text;

  if (weft_node_is_null (node))
    return TRUE;
  if (!weft_node_get_string (node, &text, error))
    return FALSE;
  if (g_str_equal (text, "otlp"))
    s->format = WEFT_TRACE_FORMAT_OTLP;
  else if (g_str_equal (text, "zipkin"))
    s->format = WEFT_TRACE_FORMAT_ZIPKIN;
  else
    {
      weft_node_set_error (node, error, "'exporter' must be otlp or zipkin, not '%s'", text);
      return FALSE;
    }
  return TRUE;
}

static gboolean
weft_trace_parse_endpoint (WeftTraceSettings *s, const WeftNode *node, GError **error)
{
  g_autoptr(GUri) uri = NULL;
  const char *text;

  if (weft_node_is_null (node))
    {
      s->endpoint = g_strdup (s->format == WEFT_TRACE_FORMAT_ZIPKIN ? WEFT_TRACE_DEFAULT_ZIPKIN
                                                                    : WEFT_TRACE_DEFAULT_OTLP);
      return TRUE;
    }
  if (!weft_node_get_string (node, &text, error))
    return FALSE;
  uri = g_uri_parse (text, G_URI_FLAGS_NONE, NULL);
  if (uri == NULL || g_strcmp0 (g_uri_get_scheme (uri), "http") != 0 ||
      g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0' ||
      g_uri_get_userinfo (uri) != NULL)
    {
      weft_node_set_error (node, error, "'endpoint' must be an http:// URL such as %s, not '%s'",
                           s->format == WEFT_TRACE_FORMAT_ZIPKIN ? WEFT_TRACE_DEFAULT_ZIPKIN
                                                                 : WEFT_TRACE_DEFAULT_OTLP,
                           text);
      return FALSE;
    }
  s->endpoint = g_strdup (text);
  return TRUE;
}

static gboolean
weft_trace_parse_sampling (WeftTraceSettings *s, const WeftNode *node, GError **error)
{
  if (weft_node_is_null (node))
    return TRUE;
  if (!weft_node_get_double (node, &s->sampling, error))
    return FALSE;
  if (!(s->sampling >= 0.0 && s->sampling <= 100.0))
    {
      weft_node_set_error (node, error, "'sampling' is a percentage from 0 to 100");
      return FALSE;
    }
  return TRUE;
}

static gboolean
weft_trace_parse_service_name (WeftTraceSettings *s, const WeftNode *node, GError **error)
{
  const char *text;

  if (weft_node_is_null (node))
    return TRUE;
  if (!weft_node_get_string (node, &text, error))
    return FALSE;
  if (*text == '\0' || !g_utf8_validate (text, -1, NULL))
    {
      weft_node_set_error (node, error, "'service_name' must be a non-empty UTF-8 string");
      return FALSE;
    }
  s->service_name = g_strdup (text);
  return TRUE;
}

/* an unsigned number from @min to @max; absent keeps *@out */
static gboolean
weft_trace_parse_count (const WeftNode *node, const char *what, guint min, guint max, guint *out,
                        GError **error)
{
  guint64 v;

  if (weft_node_is_null (node))
    return TRUE;
  if (!weft_node_get_uint64 (node, &v, error))
    return FALSE;
  if (v < min || v > max)
    {
      weft_node_set_error (node, error, "'%s' must be from %u to %u", what, min, max);
      return FALSE;
    }
  *out = (guint) v;
  return TRUE;
}

static gboolean
weft_trace_parse_time (const WeftNode *node, const char *what, guint64 min_ms, guint64 max_ms,
                       guint64 *out, GError **error)
{
  guint64 v;

  if (weft_node_is_null (node))
    return TRUE;
  if (!weft_node_get_duration (node, &v, error))
    return FALSE;
  if (v < min_ms || v > max_ms)
    {
      weft_node_set_error (node, error, "'%s' must be from %" G_GUINT64_FORMAT "ms to %"
                           G_GUINT64_FORMAT "s", what, min_ms, max_ms / 1000);
      return FALSE;
    }
  *out = v;
  return TRUE;
}

static gboolean
weft_trace_parse_batch (WeftTraceSettings *s, const WeftNode *node, GError **error)
{
  static const char *const keys[] = { "max_spans", "interval", NULL };

  if (weft_node_is_null (node))
    return TRUE;
  if (!weft_node_expect_kind (node, WEFT_NODE_MAP, error) ||
      !weft_node_check_keys (node, keys, error))
    return FALSE;
  return weft_trace_parse_count (weft_node_lookup (node, "max_spans"), "max_spans", 1,
                                 WEFT_TRACE_MAX_QUEUE, &s->max_spans, error) &&
         weft_trace_parse_time (weft_node_lookup (node, "interval"), "interval", 10, 3600 * 1000,
                                &s->interval_ms, error);
}

/**
 * weft_trace_settings_parse:
 * @node: (nullable): the `tracing:` mapping; NULL or null for the defaults
 * @error: return location
 *
 * Returns: (transfer full): the settings, or NULL with a positioned error
 */
WeftTraceSettings *
weft_trace_settings_parse (const WeftNode *node, GError **error)
{
  static const char *const keys[] = {
    "exporter", "endpoint", "sampling", "service_name", "batch", "queue", "timeout", NULL
  };
  g_autoptr(WeftTraceSettings) s = g_new0 (WeftTraceSettings, 1);

  s->format = WEFT_TRACE_FORMAT_OTLP;
  s->sampling = WEFT_TRACE_DEFAULT_SAMPLING;
  s->max_spans = WEFT_TRACE_DEFAULT_MAX_SPANS;
  s->interval_ms = WEFT_TRACE_DEFAULT_INTERVAL;
  s->queue = WEFT_TRACE_DEFAULT_QUEUE;
  s->timeout_ms = WEFT_TRACE_DEFAULT_TIMEOUT;
  if (weft_node_is_null (node))
    {
      s->endpoint = g_strdup (WEFT_TRACE_DEFAULT_OTLP);
      return g_steal_pointer (&s);
    }
  if (!weft_node_expect_kind (node, WEFT_NODE_MAP, error) ||
      !weft_node_check_keys (node, keys, error))
    return NULL;
  if (!weft_trace_parse_exporter (s, weft_node_lookup (node, "exporter"), error) ||
      !weft_trace_parse_endpoint (s, weft_node_lookup (node, "endpoint"), error) ||
      !weft_trace_parse_sampling (s, weft_node_lookup (node, "sampling"), error) ||
      !weft_trace_parse_service_name (s, weft_node_lookup (node, "service_name"), error) ||
      !weft_trace_parse_batch (s, weft_node_lookup (node, "batch"), error) ||
      !weft_trace_parse_count (weft_node_lookup (node, "queue"), "queue", 1, WEFT_TRACE_MAX_QUEUE,
                               &s->queue, error) ||
      !weft_trace_parse_time (weft_node_lookup (node, "timeout"), "timeout", 10, 300 * 1000,
                              &s->timeout_ms, error))
    return NULL;
  return g_steal_pointer (&s);
}

/* ------------------------------------------------------------------ */
/* export batches                                                       */
/* ------------------------------------------------------------------ */

/* how many spans wait in all the queues; a queue that fills up from now
 * on may kick again */
static guint
weft_trace_config_waiting (WeftTraceConfig *config)
{
  guint n = 0;

  for (guint w = 0; w < config->n_workers; w++)
    {
      weft_span_queue_rearm (&config->queues[w]);
      n += weft_span_queue_length (&config->queues[w]);
    }
  return n;
}

/* up to max_spans waiting spans into one body; 0 when none wait, and
 * then nothing is encoded */
static guint
weft_trace_config_encode (WeftTraceConfig *config, GBytes **body)
{
  WeftSpanEncoder *enc = &config->encoder;
  guint room = config->settings->max_spans;

  if (weft_trace_config_waiting (config) == 0)
    return 0;
  weft_span_encoder_begin (enc, &config->resource);
  for (guint w = 0; w < config->n_workers && room > 0; w++)
    {
      WeftSpanQueue *q = &config->queues[w];
      guint take = MIN (weft_span_queue_length (q), room);

      for (guint i = 0; i < take; i++)
        weft_span_encoder_add (enc, &config->resource, weft_span_queue_nth (q, i));
      weft_span_queue_release (q, take);
      room -= take;
    }
  *body = weft_span_encoder_end (enc);
  return config->settings->max_spans - room;
}

/* empties the queues into POSTs; unless @all, stops while the exporter
 * has as many in flight as it allows, and the spans wait for one to end */
static void
weft_trace_config_flush (WeftTraceConfig *config, gboolean all)
{
  config->held_back = FALSE;
  for (;;)
    {
      GBytes *body = NULL;
      guint n;

      if (!all && !weft_trace_exporter_can_send (config->exporter))
        {
          config->held_back = TRUE;
          return;
        }
      n = weft_trace_config_encode (config, &body);
      if (n == 0)
        return;
      weft_trace_exporter_send (config->exporter, body, n);
      g_bytes_unref (body);
    }
}

/* a POST ended: spans held back while the exporter was busy go now;
 * others wait for the timer (or a kick), so that POSTs do not follow
 * each other back to back with a span or two each */
static void
weft_trace_config_ready (gpointer data)
{
  WeftTraceConfig *config = data;

  if (config->held_back)
    weft_trace_config_flush (config, FALSE);
}

static gboolean
weft_trace_config_tick (gpointer data)
{
  weft_trace_config_flush (data, FALSE);
  return G_SOURCE_CONTINUE;
}

static gboolean
weft_trace_kick_cb (gpointer data)
{
  guint id = GPOINTER_TO_UINT (data);

  for (guint i = 0; weft_trace_live != NULL && i < weft_trace_live->len; i++)
    {
      WeftTraceConfig *config = weft_trace_live->pdata[i];
      if (config->id == id)
        weft_trace_config_flush (config, FALSE);
    }
  return G_SOURCE_REMOVE;
}

/**
 * weft_trace_config_kick:
 * @config: the configuration
 *
 * Called by a worker whose queue reached batch.max_spans. The main thread
 * looks the configuration up by id, since it may be freed before then.
 */
void
weft_trace_config_kick (WeftTraceConfig *config)
{
  weft_main_invoke (weft_trace_kick_cb, GUINT_TO_POINTER (config->id));
}

/* ------------------------------------------------------------------ */
/* the generation's object                                              */
/* ------------------------------------------------------------------ */

static void
weft_trace_config_resource (WeftTraceConfig *config, WeftPluginContext *ctx)
{
  const char *name = config->settings->service_name;

  if (name == NULL)
    name = weft_plugin_context_get_node_field (ctx, "service");
  if (name == NULL)
    name = weft_plugin_context_get_node_field (ctx, "workload");
  config->service_name = g_strdup (name != NULL ? name : "weft");
  config->resource.service_name = config->service_name;
  /* copies: the last batch is encoded while the generation is torn down */
  config->resource.service_namespace = g_strdup (weft_plugin_context_get_node_field (ctx,
                                                                                  "namespace"));
  config->resource.service_version = g_strdup (weft_plugin_context_get_node_field (ctx,
                                                                                "label.version"));
  config->resource.instance_id = g_strdup (weft_plugin_context_get_node_field (ctx, "pod"));
}

/* the counters; their families survive reloads */
static void
weft_trace_config_metrics (WeftTraceConfig *config, WeftPluginContext *ctx)
{
  static const char *const labels[] = { "result", NULL };
  WeftMetric *spans = weft_plugin_context_register_metric (
    ctx, WEFT_METRIC_COUNTER, "weft_tracing_spans_total",
    "Spans by fate: recorded into a queue, dropped (queue full), exported, export_failed.",
    labels, NULL, 0);
  WeftMetric *exports = weft_plugin_context_register_metric (
    ctx, WEFT_METRIC_COUNTER, "weft_tracing_exports_total",
    "Export POSTs to the trace collector, by result (ok, failed).", labels, NULL, 0);

  config->recorded = weft_metric_get_series (spans, (const char *const[]) { "recorded", NULL });
  config->dropped = weft_metric_get_series (spans, (const char *const[]) { "dropped", NULL });
  config->exporter = weft_trace_exporter_new (config->settings, spans, exports);
  weft_trace_exporter_set_ready_func (config->exporter, weft_trace_config_ready, config);
}

/**
 * weft_trace_config_new:
 * @ctx: the plugin context
 * @node: (nullable): the `tracing:` settings
 * @error: return location
 *
 * Returns: (transfer full): the generation's tracing, or NULL with an error
 */
WeftTraceConfig *
weft_trace_config_new (WeftPluginContext *ctx, const WeftNode *node, GError **error)
{
  WeftTraceSettings *settings = weft_trace_settings_parse (node, error);
  WeftTraceConfig *config;

  if (settings == NULL)
    return NULL;
  config = g_new0 (WeftTraceConfig, 1);
  config->settings = settings;
  config->id = ++weft_trace_next_id;
  config->slot = weft_plugin_context_get_slot (ctx);
  /* sampling% of the 2^32 values weft_request_random() draws from */
  config->sample_below = (guint64) (settings->sampling / 100.0 * 4294967296.0);
  config->n_workers = MAX (weft_plugin_context_get_n_workers (ctx), 1);
  config->queues = g_new0 (WeftSpanQueue, config->n_workers);
  for (guint w = 0; w < config->n_workers; w++)
    weft_span_queue_init (&config->queues[w], settings->queue,
                          MIN (settings->max_spans, settings->queue));
  weft_trace_config_resource (config, ctx);
  weft_trace_config_metrics (config, ctx);
  weft_span_encoder_init (&config->encoder, settings->format);
  config->timer = weft_worker_timeout_add ((guint) settings->interval_ms, weft_trace_config_tick,
                                           config);
  if (weft_trace_live == NULL)
    weft_trace_live = g_ptr_array_new ();
  g_ptr_array_add (weft_trace_live, config);
  return config;
}

/**
 * weft_trace_config_free:
 * @config: (nullable): a configuration every worker let go of
 *
 * Sends what the queues still hold. Outside the main loop (at exit) it
 * also waits for the POSTs in flight, so nothing is left behind.
 */
void
weft_trace_config_free (WeftTraceConfig *config)
{
  if (config == NULL)
    return;
  g_ptr_array_remove_fast (weft_trace_live, config);
  if (weft_trace_live->len == 0)
    g_clear_pointer (&weft_trace_live, g_ptr_array_unref);
  weft_worker_timeout_remove (config->timer);
  weft_trace_exporter_set_ready_func (config->exporter, NULL, NULL);
  weft_trace_config_flush (config, TRUE);
  weft_trace_exporter_unref (config->exporter);
  if (g_main_depth () == 0)
    weft_trace_exporters_settle (config->settings->timeout_ms);
  for (guint w = 0; w < config->n_workers; w++)
    weft_span_queue_clear (&config->queues[w]);
  g_free (config->queues);
  weft_span_encoder_clear (&config->encoder);
  g_free (config->service_name);
  g_free ((char *) config->resource.service_namespace);
  g_free ((char *) config->resource.service_version);
  g_free ((char *) config->resource.instance_id);
  weft_trace_settings_free (config->settings);
  g_free (config);
}
