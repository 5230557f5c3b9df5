/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * accesslog: one JSON line per request, written at the LOG phase. The
 * worker formats the line into a buffer of its own and appends it to its
 * ring of the destination's writer (weft-accesslog-writer.c); a thread
 * writes the rings out to stdout or a file, so a slow destination costs
 * dropped (and counted) lines, never a stalled worker. SIGUSR1 reopens
 * the file for logrotate.
 */
#include "weft-accesslog-private.h"

typedef struct {
  WeftAccessLogConfig *config;
  const char          *direction;
} WeftAccessLogInstance;

typedef struct {
  WeftAccessLogWriter *writer;
  guint                ring;
  WeftAccessLogClock   clock;
  char                 line[WEFT_ACCESSLOG_LINE_MAX];
} WeftAccessLogWorker;

/* ------------------------------------------------------------------ */
/* control side                                                         */
/* ------------------------------------------------------------------ */

static gpointer
weft_accesslog_config_new_cb (WeftPluginContext *ctx, const WeftNode *node, GError **error)
{
  return weft_accesslog_config_new (ctx, node, error);
}

static void
weft_accesslog_config_free_cb (gpointer data)
{
  weft_accesslog_config_free (data);
}

static gpointer
weft_accesslog_instance_new (gpointer data, const WeftListenerInfo *listener,
                             const WeftNode *node, GError **error)
{
  WeftAccessLogInstance *inst;

  if (!weft_node_is_null (node))
    {
      weft_node_set_error (node, error, "accesslog takes no listener settings; set the "
                           "destination under the top-level 'accesslog' key");
      return NULL;
    }
  inst = g_new0 (WeftAccessLogInstance, 1);
  inst->config = data;
  inst->direction = listener->direction == WEFT_DIRECTION_OUTBOUND ? "outbound" : "inbound";
  return inst;
}

static void
weft_accesslog_instance_free (gpointer data)
{
  g_free (data);
}

static gpointer
weft_accesslog_worker_init (gpointer data, guint worker_index)
{
  WeftAccessLogConfig *config = data;
  WeftAccessLogWorker *w = g_new0 (WeftAccessLogWorker, 1);

  w->writer = config->writer;
  w->ring = worker_index;
  weft_accesslog_clock_init (&w->clock);
  return w;
}

static void
weft_accesslog_worker_fini (gpointer config, gpointer data)
{
  (void) config;
  g_free (data);
}

/* ------------------------------------------------------------------ */
/* the LOG phase                                                        */
/* ------------------------------------------------------------------ */

static const char *
weft_accesslog_trace_id (WeftRequest *req, char *buf)
{
  const char *id = weft_request_get_trace_id (req);

  /* without a tracing plugin, a valid incoming traceparent still ties
   * the line to its trace */
  if (id == NULL &&
      weft_accesslog_traceparent_trace_id (weft_request_get_header (req, "traceparent"), buf))
    id = buf;
  return id;
}

static void
weft_accesslog_fields (WeftAccessLogFields *f, WeftRequest *req,
                       const WeftAccessLogInstance *inst, char *flags, char *trace)
{
  WeftUpstream *upstream = weft_request_get_upstream (req);
  const char *authority = weft_request_get_authority (req);

  f->start_time_us = weft_request_get_start_time (req);
  f->duration_us = weft_request_get_duration_us (req);
  f->method = weft_request_get_method (req);
  /* an HTTP/1.0 request may come without a Host: null, not "" */
  f->authority = authority != NULL && *authority != '\0' ? authority : NULL;
  f->path = weft_request_get_path (req);
  f->protocol = weft_request_get_protocol (req);
  f->status = weft_request_get_status (req);
  f->response_flags = weft_response_flags_format (weft_request_get_response_flags (req), flags);
  f->error_reason = weft_request_get_error_reason (req);
  f->bytes_received = weft_request_get_bytes_received (req);
  f->bytes_sent = weft_request_get_bytes_sent (req);
  f->upstream_host = weft_request_get_upstream_address (req);
  f->upstream_cluster = upstream != NULL ? weft_upstream_get_name (upstream) : NULL;
  f->request_id = weft_request_get_request_id (req);
  f->trace_id = weft_accesslog_trace_id (req, trace);
  f->downstream_peer = weft_request_get_peer_ip (req);
  f->peer_principal = weft_request_get_peer_identity (req);
  f->route_name = weft_request_get_route_name (req);
  f->listener = weft_request_get_listener_name (req);
  f->direction = inst->direction;
  f->user_agent = weft_request_get_header (req, "user-agent");
}

static WeftHookResult
weft_accesslog_log (WeftRequest *req, gpointer data, gpointer worker_data)
{
  WeftAccessLogInstance *inst = data;
  WeftAccessLogWorker *w = worker_data;
  WeftAccessLogFields f;
  char flags[WEFT_RESPONSE_FLAGS_MAX];
  char trace[33];
  gsize len;

  if (w == NULL)
    return WEFT_HOOK_CONTINUE;
  weft_accesslog_fields (&f, req, inst, flags, trace);
  len = weft_accesslog_format_line (w->line, &w->clock, &f);
  if (!weft_accesslog_writer_push (w->writer, w->ring, w->line, len))
    weft_metric_series_add (inst->config->dropped, 1);
  return WEFT_HOOK_CONTINUE;
}

static const WeftPluginDescriptor weft_accesslog_descriptor = {
  .abi_version = WEFT_PLUGIN_ABI_VERSION,
  .struct_size = sizeof (WeftPluginDescriptor),
  .name = "accesslog",
  .version = "0.1.0",
  .description = "One JSON line per request to stdout or a file, written by a thread of its own",
  .config_new = weft_accesslog_config_new_cb,
  .config_free = weft_accesslog_config_free_cb,
  .instance_new = weft_accesslog_instance_new,
  .instance_free = weft_accesslog_instance_free,
  .worker_init = weft_accesslog_worker_init,
  .worker_fini = weft_accesslog_worker_fini,
  .hooks = {
    [WEFT_PHASE_LOG] = weft_accesslog_log,
  },
};

WEFT_PLUGIN_DEFINE (weft_accesslog_descriptor)
