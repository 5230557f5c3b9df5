/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The metrics plugin: Istio's standard metrics (istio_requests_total, the
 * duration and size histograms, the TCP counters) with Istio's labels, the
 * metadata exchange that lets both sidecars of a call name both workloads,
 * and weft_route_* by route name and method. Counting goes through a
 * per-worker cache of series, so a request takes no lock.
 */
#include "weft-metrics-plugin-private.h"

#include <string.h>

#define WEFT_METRICS_KEY_MAX 1024

typedef struct {
  WeftMetricsCache *cache;
  char              key[WEFT_METRICS_KEY_MAX];
} WeftMetricsWorker;

/* what a request's labels resolve to */
typedef struct {
  WeftIstioSeries   istio;      /* all NULL: a family is full, count overflow */
  WeftMetricSeries *route_requests;
  WeftMetricSeries *route_duration;
  gboolean          bad_peer;   /* the peer value was not valid metadata */
} WeftMetricsEntry;

/* what the request phases learnt for the log phase */
typedef struct {
  const char *peer;            /* the other side's x-weft-peer value */
} WeftMetricsReq;

/* the route hook looked and found no peer value: saves the log phase a
 * second header scan without allocating per request */
static WeftMetricsReq weft_metrics_no_peer = { NULL };

static const char *const weft_metrics_methods[] = {
  "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
};

/* ------------------------------------------------------------------ */
/* control side                                                         */
/* ------------------------------------------------------------------ */

static gpointer
weft_metrics_config_new_cb (WeftPluginContext *ctx, const WeftNode *node, GError **error)
{
  return weft_metrics_config_new (ctx, node, error);
}

static void
weft_metrics_config_free_cb (gpointer config)
{
  weft_metrics_config_free (config);
}

/* the TCP series of a listener: this side known, the other unknown */
static void
weft_metrics_instance_tcp (WeftMetricsInstance *inst)
{
  WeftMetricsConfig *c = inst->config;
  WeftIstioFacts facts = { 0 };
  WeftIstioLabels labels;
  const char *tcp[WEFT_IL_TCP_COUNT + 1];

  weft_istio_labels_fill (inst, &facts, &labels);
  weft_istio_tcp_values (labels.v, tcp);
  inst->tcp_opened = weft_metric_get_series (c->tcp_opened, tcp);
  inst->tcp_closed = weft_metric_get_series (c->tcp_closed, tcp);
  inst->tcp_sent = weft_metric_get_series (c->tcp_sent, tcp);
  inst->tcp_received = weft_metric_get_series (c->tcp_received, tcp);
}

static gpointer
weft_metrics_instance_new (gpointer config, const WeftListenerInfo *listener,
                           const WeftNode *node, GError **error)
{
  WeftMetricsInstance *inst;

  if (node != NULL && !weft_node_is_null (node))
    {
      weft_node_set_error (node, error, "the metrics plugin takes no listener settings; "
                                        "use the top-level metrics: section");
      return NULL;
    }
  inst = g_new0 (WeftMetricsInstance, 1);
  inst->config = config;
  inst->direction = listener->direction;
  inst->listener = g_strdup (listener->name);
  weft_metrics_instance_tcp (inst);
  return inst;
}

static void
weft_metrics_instance_free (gpointer data)
{
  WeftMetricsInstance *inst = data;

  g_free (inst->listener);
  g_free (inst);
}

static gpointer
weft_metrics_worker_init (gpointer config, guint worker_index)
{
  WeftMetricsWorker *w = g_new0 (WeftMetricsWorker, 1);

  w->cache = weft_metrics_cache_new ();
  return w;
}

static void
weft_metrics_worker_fini (gpointer config, gpointer worker_data)
{
  WeftMetricsWorker *w = worker_data;

  weft_metrics_cache_free (w->cache);
  g_free (w);
}

/* ------------------------------------------------------------------ */
/* the metadata exchange                                                */
/* ------------------------------------------------------------------ */

static WeftMetricsReq *
weft_metrics_req (WeftRequest *req, WeftMetricsInstance *inst)
{
  guint slot = weft_plugin_context_get_slot (inst->config->ctx);
  WeftMetricsReq *r = weft_request_get_data (req, slot);

  if (r == NULL || r == &weft_metrics_no_peer)
    {
      r = weft_request_alloc (req, sizeof *r);
      r->peer = NULL;
      weft_request_set_data (req, slot, r);
    }
  return r;
}

/* inbound: take the caller's identity off the request, so the application
 * never sees it; outbound: send ours */
static WeftHookResult
weft_metrics_route (WeftRequest *req, gpointer instance, gpointer worker_data)
{
  WeftMetricsInstance *inst = instance;
  WeftMetricsConfig *c = inst->config;
  const char *peer;

  if (!c->exchange)
    return WEFT_HOOK_CONTINUE;
  if (inst->direction == WEFT_DIRECTION_OUTBOUND)
    {
      if (c->self_header[0] != '\0')
        weft_request_set_header (req, WEFT_PEER_HEADER, c->self_header);
      else
        weft_request_remove_header (req, WEFT_PEER_HEADER);
      return WEFT_HOOK_CONTINUE;
    }
  peer = weft_request_get_header (req, WEFT_PEER_HEADER);
  if (peer == NULL)
    {
      weft_request_set_data (req, weft_plugin_context_get_slot (c->ctx), &weft_metrics_no_peer);
      return WEFT_HOOK_CONTINUE;
    }
  weft_metrics_req (req, inst)->peer = weft_request_strdup (req, peer);
  weft_request_remove_header (req, WEFT_PEER_HEADER);
  return WEFT_HOOK_CONTINUE;
}

/* outbound: read the callee's identity off the response; inbound: answer a
 * sidecar that sent its identity with ours */
static WeftHookResult
weft_metrics_response (WeftRequest *req, gpointer instance, gpointer worker_data)
{
  WeftMetricsInstance *inst = instance;
  WeftMetricsConfig *c = inst->config;
  WeftMetricsReq *r = weft_request_get_data (req, weft_plugin_context_get_slot (c->ctx));
  const char *peer;

  if (!c->exchange)
    return WEFT_HOOK_CONTINUE;
  if (inst->direction == WEFT_DIRECTION_INBOUND)
    {
      weft_request_remove_response_header (req, WEFT_PEER_HEADER);
      if (r != NULL && r->peer != NULL && c->self_header[0] != '\0')
        weft_request_add_response_header (req, WEFT_PEER_HEADER, c->self_header);
      return WEFT_HOOK_CONTINUE;
    }
  peer = weft_request_get_response_header (req, WEFT_PEER_HEADER);
  if (peer == NULL)
    return WEFT_HOOK_CONTINUE;
  weft_metrics_req (req, inst)->peer = weft_request_strdup (req, peer);
  weft_request_remove_response_header (req, WEFT_PEER_HEADER);
  return WEFT_HOOK_CONTINUE;
}

/* ------------------------------------------------------------------ */
/* counting                                                             */
/* ------------------------------------------------------------------ */

/* the fixed part of a cache key: pointers that live as long as the
 * generation (the worker's cache does too) and small numbers */
typedef struct {
  gpointer    instance;
  const char *upstream;
  const char *route;
  guint16     status;
  guint8      method;
  guint8      grpc;
  guint32     flags;
} WeftMetricsKeyHead;

static void
weft_key_add_str (char *buf, gsize *len, const char *s)
{
  gsize n = s != NULL ? strlen (s) + 1 : 1;

  n = MIN (n, WEFT_METRICS_KEY_MAX - *len);
  memcpy (buf + *len, s != NULL ? s : "", n);
  *len += n;
}

static guint
weft_metrics_method_index (const char *method)
{
  for (guint i = 0; i < G_N_ELEMENTS (weft_metrics_methods); i++)
    if (strcmp (method, weft_metrics_methods[i]) == 0)
      return i;
  return G_N_ELEMENTS (weft_metrics_methods);
}

static void
weft_metrics_facts (WeftRequest *req, WeftMetricsInstance *inst, WeftIstioFacts *f,
                    const char **peer_raw)
{
  WeftMetricsReq *r = weft_request_get_data (req, weft_plugin_context_get_slot (inst->config->ctx));
  WeftUpstream *up = weft_request_get_upstream (req);
  const char *ct = weft_request_get_header (req, "content-type");

  *peer_raw = r != NULL ? r->peer : NULL;
  /* answered before the route hook ran: the header is still there */
  if (r == NULL && inst->direction == WEFT_DIRECTION_INBOUND && inst->config->exchange)
    *peer_raw = weft_request_get_header (req, WEFT_PEER_HEADER);
  memset (f, 0, sizeof *f);
  /* the mTLS peer: the caller inbound, the server that answered outbound */
  f->peer_principal = inst->direction == WEFT_DIRECTION_INBOUND ?
                      weft_request_get_peer_identity (req) :
                      weft_request_get_upstream_identity (req);
  f->upstream = up != NULL ? weft_upstream_get_name (up) : NULL;
  f->status = weft_request_get_status (req);
  f->flags = weft_request_get_response_flags (req);
  f->grpc = ct != NULL && g_str_has_prefix (ct, "application/grpc");
  f->grpc_status = f->grpc ? weft_request_get_response_header (req, "grpc-status") : NULL;
}

static void
weft_metrics_resolve_istio (WeftMetricsInstance *inst, WeftIstioFacts *f, const char *peer_raw,
                            WeftMetricsEntry *entry)
{
  WeftMetricsConfig *c = inst->config;
  WeftIstioLabels labels;
  WeftPeer peer;

  if (peer_raw != NULL && weft_peer_parse (peer_raw, &peer))
    f->peer = &peer;
  else
    entry->bad_peer = peer_raw != NULL;
  weft_istio_labels_fill (inst, f, &labels);
  entry->istio.requests = weft_metric_try_series (c->requests, labels.v, c->max_series);
  entry->istio.duration = weft_metric_try_series (c->duration, labels.v, c->max_series);
  entry->istio.req_bytes = weft_metric_try_series (c->req_bytes, labels.v, c->max_series);
  entry->istio.resp_bytes = weft_metric_try_series (c->resp_bytes, labels.v, c->max_series);
  if (entry->istio.requests == NULL || entry->istio.duration == NULL ||
      entry->istio.req_bytes == NULL || entry->istio.resp_bytes == NULL)
    memset (&entry->istio, 0, sizeof entry->istio);
}

/* route names come from the configuration and methods from a fixed list,
 * so this family's size is bounded by the config, never by requests */
static void
weft_metrics_resolve_route (WeftMetricsConfig *c, const WeftMetricsKeyHead *h,
                            WeftMetricsEntry *entry)
{
  static const char *const classes[] = { "0xx", "1xx", "2xx", "3xx", "4xx", "5xx" };
  const char *m = h->method < G_N_ELEMENTS (weft_metrics_methods) ?
                  weft_metrics_methods[h->method] : "OTHER";
  const char *r = h->route != NULL && *h->route != '\0' ? h->route : "none";
  guint cls = h->status / 100 <= 5 ? h->status / 100 : 0;

  if (!c->routes)
    return;
  entry->route_requests = weft_metric_try_series (c->route_requests,
                                                  (const char *const[]) { r, m, classes[cls], NULL },
                                                  c->max_series);
  entry->route_duration = weft_metric_try_series (c->route_duration,
                                                  (const char *const[]) { r, m, NULL },
                                                  c->max_series);
}

static void
weft_metrics_count (WeftRequest *req, WeftMetricsConfig *c, WeftMetricsEntry *e, double ms)
{
  if (e->bad_peer)
    weft_metric_series_add (c->bad_peer, 1);
  if (e->istio.requests != NULL)
    {
      weft_metric_series_add (e->istio.requests, 1);
      weft_metric_series_observe (e->istio.duration, ms);
      weft_metric_series_observe (e->istio.req_bytes,
                                  (double) weft_request_get_bytes_received (req));
      weft_metric_series_observe (e->istio.resp_bytes, (double) weft_request_get_bytes_sent (req));
    }
  else
    weft_metric_series_add (c->overflow, 1);
  if (!c->routes)
    return;
  if (e->route_requests == NULL || e->route_duration == NULL)
    {
      weft_metric_series_add (c->overflow, 1);
      return;
    }
  weft_metric_series_add (e->route_requests, 1);
  weft_metric_series_observe (e->route_duration, ms / 1000.0);
}

/* one probe finds every series of the request: the key is what makes
 * its labels, pointers and numbers first, then the strings that are set */
static WeftHookResult
weft_metrics_log (WeftRequest *req, gpointer instance, gpointer worker_data)
{
  WeftMetricsInstance *inst = instance;
  WeftMetricsWorker *w = worker_data;
  double ms = (double) weft_request_get_duration_us (req) / 1000.0;
  WeftMetricsKeyHead h = { 0 };
  WeftIstioFacts f;
  const char *peer_raw;
  WeftMetricsEntry *e;
  gsize len = sizeof h;
  guint64 hash;

  weft_metrics_facts (req, inst, &f, &peer_raw);
  h.instance = inst;
  h.upstream = f.upstream;
  h.route = weft_request_get_route_name (req);
  h.status = (guint16) MIN (f.status, 999u);
  h.method = (guint8) weft_metrics_method_index (weft_request_get_method (req));
  h.grpc = (guint8) f.grpc;
  h.flags = f.flags;
  memcpy (w->key, &h, sizeof h);
  if (peer_raw != NULL || f.peer_principal != NULL || f.grpc_status != NULL)
    {
      weft_key_add_str (w->key, &len, peer_raw);
      weft_key_add_str (w->key, &len, f.peer_principal);
      weft_key_add_str (w->key, &len, f.grpc_status);
    }
  hash = weft_metrics_hash (w->key, len);
  e = weft_metrics_cache_lookup (w->cache, w->key, len, hash);
  if (e == NULL)
    {
      WeftMetricsEntry entry = { 0 };
      weft_metrics_resolve_istio (inst, &f, peer_raw, &entry);
      weft_metrics_resolve_route (inst->config, &h, &entry);
      e = weft_metrics_cache_insert (w->cache, w->key, len, hash, &entry, sizeof entry);
    }
  weft_metrics_count (req, inst->config, e, ms);
  return WEFT_HOOK_CONTINUE;
}

static void
weft_metrics_connection (gpointer instance, gpointer worker_data, WeftConnEvent event,
                         const WeftConnInfo *info)
{
  WeftMetricsInstance *inst = instance;

  if (event == WEFT_CONN_OPENED)
    {
      weft_metric_series_add (inst->tcp_opened, 1);
      return;
    }
  weft_metric_series_add (inst->tcp_closed, 1);
  weft_metric_series_add (inst->tcp_sent, (gint64) info->bytes_sent);
  weft_metric_series_add (inst->tcp_received, (gint64) info->bytes_received);
}

static const WeftPluginDescriptor weft_metrics_descriptor = {
  .abi_version = WEFT_PLUGIN_ABI_VERSION,
  .struct_size = sizeof (WeftPluginDescriptor),
  .name = "metrics",
  .version = "1.0",
  .description = "Istio standard metrics, peer metadata exchange and per-route metrics",
  .config_new = weft_metrics_config_new_cb,
  .config_free = weft_metrics_config_free_cb,
  .instance_new = weft_metrics_instance_new,
  .instance_free = weft_metrics_instance_free,
  .worker_init = weft_metrics_worker_init,
  .worker_fini = weft_metrics_worker_fini,
  .hooks = {
    [WEFT_PHASE_ROUTE] = weft_metrics_route,
    [WEFT_PHASE_RESPONSE] = weft_metrics_response,
    [WEFT_PHASE_LOG] = weft_metrics_log,
  },
  .connection_event = weft_metrics_connection,
};

WEFT_PLUGIN_DEFINE (weft_metrics_descriptor)
