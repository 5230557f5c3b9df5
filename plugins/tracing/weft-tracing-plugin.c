/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * tracing: distributed tracing for weft. Each request gets a trace context
 * from its W3C traceparent (or B3 headers), or a new one; the sampling
 * decision follows the caller's, else the configured ratio. Every request
 * carries a traceparent upstream with this proxy's span id, and B3 headers
 * too when it came with them. A sampled request leaves a SERVER span
 * (inbound listener) or CLIENT span (outbound listener) in the worker's
 * queue, which the main thread exports as OTLP/HTTP JSON or Zipkin v2.
 *
 * Hooks: ROUTE reads the context (so the trace id is known to the other
 * plugins), UPSTREAM writes the headers and starts a CLIENT span, LOG
 * records the span.
 */
#include "weft-tracing-private.h"

#include <string.h>

typedef struct {
  WeftTraceConfig *config;
  WeftSpanKind     kind;
} WeftTraceInstance;

/* the request's trace context, in its arena; zeroed there, so small */
typedef struct {
  char    trace_id[WEFT_TRACE_ID_HEX + 1];
  char    span_id[WEFT_SPAN_ID_HEX + 1];     /* this proxy's span */
  char    parent_id[WEFT_SPAN_ID_HEX + 1];   /* the caller's, or "" */
  guint8  decision;                          /* WeftTraceDecision: DROP, SAMPLE or DEBUG */
  guint8  short_b3;
  guint8  b3_single;                         /* B3 forms to write back */
  guint8  b3_multi;
  guint8  drop_tracestate;
  guint8  had_traceparent;                   /* replace it, or just add */
  gint64  client_start_us;                   /* 0 = UPSTREAM never ran */
} WeftTraceRequest;

/* ------------------------------------------------------------------ */
/* control side                                                         */
/* ------------------------------------------------------------------ */

static gpointer
weft_trace_config_new_cb (WeftPluginContext *ctx, const WeftNode *node, GError **error)
{
  return weft_trace_config_new (ctx, node, error);
}

static void
weft_trace_config_free_cb (gpointer data)
{
  weft_trace_config_free (data);
}

static gpointer
weft_trace_instance_new (gpointer data, const WeftListenerInfo *listener, const WeftNode *node,
                         GError **error)
{
  WeftTraceInstance *inst;

  if (!weft_node_is_null (node))
    {
      weft_node_set_error (node, error, "tracing takes no listener settings: set them under "
                           "the top-level 'tracing:'; the listener's direction picks the span kind");
      return NULL;
    }
  inst = g_new0 (WeftTraceInstance, 1);
  inst->config = data;
  inst->kind = listener->direction == WEFT_DIRECTION_OUTBOUND ? WEFT_SPAN_KIND_CLIENT
                                                               : WEFT_SPAN_KIND_SERVER;
  return inst;
}

static void
weft_trace_instance_free (gpointer data)
{
  g_free (data);
}

/* a worker's data is its queue, which the config owns */
static gpointer
weft_trace_worker_init (gpointer data, guint worker_index)
{
  WeftTraceConfig *config = data;

  return worker_index < config->n_workers ? &config->queues[worker_index] : NULL;
}

/* ------------------------------------------------------------------ */
/* the trace context                                                    */
/* ------------------------------------------------------------------ */

static WeftTraceDecision
weft_trace_decide (const WeftTraceConfig *config, WeftTraceDecision caller, WeftRequest *req)
{
  if (caller != WEFT_TRACE_DECISION_NONE)
    return caller;
  return (guint64) weft_request_random (req) < config->sample_below
         ? WEFT_TRACE_DECISION_SAMPLE : WEFT_TRACE_DECISION_DROP;
}

/* the request came with propagation headers: its parent, and which of
 * them to write back */
static void
weft_trace_continue (WeftTraceRequest *tr, const WeftTraceHeaders *h, WeftTraceParent *parent)
{
  weft_trace_extract (h, parent);
  if (parent->source != WEFT_TRACE_SOURCE_NONE)
    {
      memcpy (tr->trace_id, parent->trace_id, sizeof tr->trace_id);
      memcpy (tr->parent_id, parent->span_id, sizeof tr->parent_id);
    }
  tr->short_b3 = parent->short_b3;
  tr->b3_single = h->b3 != NULL;
  tr->b3_multi = h->x_b3_traceid != NULL || h->x_b3_spanid != NULL ||
                 h->x_b3_sampled != NULL || h->x_b3_flags != NULL;
  tr->had_traceparent = h->traceparent != NULL;
  /* tracestate belongs to the traceparent it came with */
  tr->drop_tracestate = h->tracestate != NULL && parent->source != WEFT_TRACE_SOURCE_W3C;
}

/* the request's context, read from its headers: one pass finds all the
 * propagation ones; without any (the common case) nothing is parsed */
static WeftTraceRequest *
weft_trace_begin_new (WeftRequest *req, const WeftTraceConfig *config)
{
  WeftTraceRequest *tr = weft_request_alloc (req, sizeof *tr);
  WeftTraceHeaders h = { NULL };
  WeftTraceParent parent;
  gboolean found = FALSE;
  const char *name, *value;

  for (guint i = 0; weft_request_get_header_nth (req, i, &name, &value); i++)
    if (weft_trace_header_candidate (name))
      found |= weft_trace_headers_take (&h, name, value);
  parent.source = WEFT_TRACE_SOURCE_NONE;
  parent.decision = WEFT_TRACE_DECISION_NONE;
  if (found)
    weft_trace_continue (tr, &h, &parent);
  if (parent.source == WEFT_TRACE_SOURCE_NONE)
    {
      guint64 hi = weft_request_random64 (req);
      weft_trace_format_trace_id (tr->trace_id, hi, weft_request_random64 (req));
    }
  weft_trace_format_span_id (tr->span_id, weft_request_random64 (req));
  tr->decision = weft_trace_decide (config, parent.decision, req);
  weft_request_set_data (req, config->slot, tr);
  weft_request_set_trace_id (req, tr->trace_id);
  return tr;
}

/* the request's context, made the first time a hook asks */
static inline WeftTraceRequest *
weft_trace_begin (WeftRequest *req, const WeftTraceInstance *inst)
{
  WeftTraceRequest *tr = weft_request_get_data (req, inst->config->slot);

  return tr != NULL ? tr : weft_trace_begin_new (req, inst->config);
}

static gboolean
weft_trace_sampled (const WeftTraceRequest *tr)
{
  return tr->decision == WEFT_TRACE_DECISION_SAMPLE || tr->decision == WEFT_TRACE_DECISION_DEBUG;
}

static void
weft_trace_write_b3_multi (WeftRequest *req, const WeftTraceRequest *tr)
{
  weft_request_set_header (req, "x-b3-traceid", weft_trace_b3_trace_id (tr->trace_id,
                                                                        tr->short_b3));
  weft_request_set_header (req, "x-b3-spanid", tr->span_id);
  if (tr->parent_id[0] != '\0')
    weft_request_set_header (req, "x-b3-parentspanid", tr->parent_id);
  else
    weft_request_remove_header (req, "x-b3-parentspanid");
  /* debug implies sampled, and B3 says not to send both */
  if (tr->decision == WEFT_TRACE_DECISION_DEBUG)
    {
      weft_request_set_header (req, "x-b3-flags", "1");
      weft_request_remove_header (req, "x-b3-sampled");
      return;
    }
  weft_request_set_header (req, "x-b3-sampled", weft_trace_sampled (tr) ? "1" : "0");
  weft_request_remove_header (req, "x-b3-flags");
}

/* the context the upstream sees: this proxy's span is its parent */
static void
weft_trace_write_headers (WeftRequest *req, const WeftTraceRequest *tr)
{
  char buf[MAX (WEFT_TRACEPARENT_MAX, WEFT_B3_MAX)];

  weft_trace_format_traceparent (buf, tr->trace_id, tr->span_id, weft_trace_sampled (tr));
  /* adding skips the search for an old value, the common case */
  if (tr->had_traceparent)
    weft_request_set_header (req, "traceparent", buf);
  else
    weft_request_add_header (req, "traceparent", buf);
  if (tr->drop_tracestate)
    weft_request_remove_header (req, "tracestate");
  if (tr->b3_single)
    {
      weft_trace_format_b3 (buf, tr->trace_id, tr->short_b3, tr->span_id, tr->decision,
                            tr->parent_id);
      weft_request_set_header (req, "b3", buf);
    }
  if (tr->b3_multi)
    weft_trace_write_b3_multi (req, tr);
}

/* ------------------------------------------------------------------ */
/* spans                                                                */
/* ------------------------------------------------------------------ */

static void
weft_trace_fill (WeftSpanRecord *rec, WeftRequest *req, const WeftTraceInstance *inst,
                 const WeftTraceRequest *tr)
{
  gint64 start = weft_request_get_start_time (req);

  memcpy (rec->trace_id, tr->trace_id, sizeof rec->trace_id);
  memcpy (rec->span_id, tr->span_id, sizeof rec->span_id);
  memcpy (rec->parent_id, tr->parent_id, sizeof rec->parent_id);
  rec->kind = inst->kind;
  rec->http_minor = strcmp (weft_request_get_protocol (req), "HTTP/1.0") == 0 ? 0 : 1;
  rec->debug = tr->decision == WEFT_TRACE_DECISION_DEBUG;
  rec->status = (guint16) weft_request_get_status (req);
  rec->response_flags = weft_request_get_response_flags (req);
  rec->end_us = start + weft_request_get_duration_us (req);
  rec->start_us = inst->kind == WEFT_SPAN_KIND_CLIENT && tr->client_start_us != 0
                  ? tr->client_start_us : start;
  weft_span_copy (rec->method, sizeof rec->method, weft_request_get_method (req));
  weft_span_copy (rec->target, sizeof rec->target, weft_request_get_path (req));
  weft_span_copy (rec->authority, sizeof rec->authority, weft_request_get_authority (req));
  weft_span_copy (rec->route, sizeof rec->route, weft_request_get_route_name (req));
  weft_span_copy (rec->user_agent, sizeof rec->user_agent,
                  weft_request_get_header (req, "user-agent"));
  weft_span_copy (rec->request_id, sizeof rec->request_id, weft_request_get_request_id (req));
  weft_span_copy (rec->peer, sizeof rec->peer,
                  inst->kind == WEFT_SPAN_KIND_SERVER ? weft_request_get_peer_ip (req)
                                                      : weft_request_get_upstream_address (req));
  weft_span_copy (rec->error_reason, sizeof rec->error_reason,
                  weft_request_get_error_reason (req));
}

static void
weft_trace_record (WeftRequest *req, const WeftTraceInstance *inst, const WeftTraceRequest *tr,
                   WeftSpanQueue *q)
{
  WeftTraceConfig *config = inst->config;
  WeftSpanRecord *rec = weft_span_queue_reserve (q);

  if (rec == NULL)
    {
      weft_metric_series_add (config->dropped, 1);
      return;
    }
  weft_trace_fill (rec, req, inst, tr);
  if (weft_span_queue_commit (q))
    weft_trace_config_kick (config);
  weft_metric_series_add (config->recorded, 1);
}

/* ------------------------------------------------------------------ */
/* hooks                                                                */
/* ------------------------------------------------------------------ */

static WeftHookResult
weft_trace_route (WeftRequest *req, gpointer data, gpointer worker_data)
{
  (void) worker_data;
  weft_trace_begin (req, data);
  return WEFT_HOOK_CONTINUE;
}

static WeftHookResult
weft_trace_upstream (WeftRequest *req, gpointer data, gpointer worker_data)
{
  WeftTraceInstance *inst = data;
  WeftTraceRequest *tr = weft_trace_begin (req, inst);

  (void) worker_data;
  if (inst->kind == WEFT_SPAN_KIND_CLIENT && weft_trace_sampled (tr))
    tr->client_start_us = weft_request_get_start_time (req) + weft_request_get_duration_us (req);
  weft_trace_write_headers (req, tr);
  return WEFT_HOOK_CONTINUE;
}

static WeftHookResult
weft_trace_log (WeftRequest *req, gpointer data, gpointer worker_data)
{
  WeftTraceInstance *inst = data;
  WeftTraceRequest *tr = weft_trace_begin (req, inst);

  if (weft_trace_sampled (tr) && worker_data != NULL)
    weft_trace_record (req, inst, tr, worker_data);
  return WEFT_HOOK_CONTINUE;
}

static const WeftPluginDescriptor weft_trace_descriptor = {
  .abi_version = WEFT_PLUGIN_ABI_VERSION,
  .struct_size = sizeof (WeftPluginDescriptor),
  .name = "tracing",
  .version = "0.1.0",
  .description = "Distributed tracing: W3C and B3 propagation, spans exported as OTLP/HTTP "
                 "JSON or Zipkin v2",
  .config_new = weft_trace_config_new_cb,
  .config_free = weft_trace_config_free_cb,
  .instance_new = weft_trace_instance_new,
  .instance_free = weft_trace_instance_free,
  .worker_init = weft_trace_worker_init,
  .hooks = {
    [WEFT_PHASE_ROUTE] = weft_trace_route,
    [WEFT_PHASE_UPSTREAM] = weft_trace_upstream,
    [WEFT_PHASE_LOG] = weft_trace_log,
  },
};

WEFT_PLUGIN_DEFINE (weft_trace_descriptor)
