/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The metrics: settings, the families with Istio's names, labels and
 * buckets, and the label values of one request.
 */
#include "weft-metrics-plugin-private.h"

#include <string.h>

const char *const weft_istio_label_names[WEFT_IL_COUNT + 1] = {
  "reporter", "source_workload", "source_canonical_service", "source_canonical_revision",
  "source_workload_namespace", "source_principal", "source_app", "source_version",
  "source_cluster", "destination_workload", "destination_workload_namespace",
  "destination_principal", "destination_app", "destination_version", "destination_service",
  "destination_canonical_service", "destination_canonical_revision",
  "destination_service_name", "destination_service_namespace", "destination_cluster",
  "request_protocol", "response_code", "grpc_response_status", "response_flags",
  "connection_security_policy", NULL,
};

/* Istio's TCP families carry the same labels but the HTTP ones */
static gboolean
weft_istio_label_is_tcp (guint label)
{
  return label != WEFT_IL_REQUEST_PROTOCOL && label != WEFT_IL_RESPONSE_CODE &&
         label != WEFT_IL_GRPC_RESPONSE_STATUS;
}

void
weft_istio_tcp_values (const char *const *all, const char **tcp)
{
  guint n = 0;

  for (guint i = 0; i < WEFT_IL_COUNT; i++)
    if (weft_istio_label_is_tcp (i))
      tcp[n++] = all[i];
  tcp[n] = NULL;
}

/* Istio's default buckets */
static const double weft_istio_duration_buckets[] = {
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
  300000, 600000, 1800000, 3600000,
};
/* the same bounds in seconds: weft's own families use base units */
static const double weft_route_duration_buckets[] = {
  0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
  300, 600, 1800, 3600,
};
static const double weft_istio_size_buckets[] = {
  1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000,
};

static const char *const weft_metrics_keys[] = {
  "max_series", "peer_exchange", "route_metrics", "cluster_domain", NULL,
};

static const char *const weft_route_labels[] = { "route", "method", "response_code_class", NULL };
static const char *const weft_route_duration_labels[] = { "route", "method", NULL };

static void
weft_metrics_self_field (WeftPluginContext *ctx, const char *field, char *dst, gsize size)
{
  const char *value = weft_plugin_context_get_node_field (ctx, field);

  g_strlcpy (dst, value != NULL ? value : "", size);
}

/* this sidecar's identity from node:, as the metadata exchange sends it */
static void
weft_metrics_config_self (WeftMetricsConfig *config)
{
  WeftPeer *self = &config->self;
  WeftPeer probe;

  weft_metrics_self_field (config->ctx, "workload", self->workload, sizeof self->workload);
  weft_metrics_self_field (config->ctx, "namespace", self->ns, sizeof self->ns);
  weft_metrics_self_field (config->ctx, "service", self->service, sizeof self->service);
  weft_metrics_self_field (config->ctx, "label.app", self->app, sizeof self->app);
  weft_metrics_self_field (config->ctx, "label.version", self->version, sizeof self->version);
  weft_metrics_self_field (config->ctx, "cluster", self->cluster, sizeof self->cluster);
  /* a node value the exchange cannot carry is not sent at all */
  if (!weft_peer_format (self, config->self_header, sizeof config->self_header) ||
      !weft_peer_parse (config->self_header, &probe))
    config->self_header[0] = '\0';
}

static void
weft_metrics_config_register (WeftMetricsConfig *c)
{
  WeftPluginContext *ctx = c->ctx;
  const char *const *il = weft_istio_label_names;
  const char *tl[WEFT_IL_TCP_COUNT + 1];
  static const char *const no_labels[] = { NULL };

  weft_istio_tcp_values (il, tl);

  c->requests = weft_plugin_context_register_metric (ctx, WEFT_METRIC_COUNTER,
    "istio_requests_total", "Requests, by Istio's standard labels.", il, NULL, 0);
  c->duration = weft_plugin_context_register_metric (ctx, WEFT_METRIC_HISTOGRAM,
    "istio_request_duration_milliseconds", "Request duration in milliseconds.", il,
    weft_istio_duration_buckets, G_N_ELEMENTS (weft_istio_duration_buckets));
  c->req_bytes = weft_plugin_context_register_metric (ctx, WEFT_METRIC_HISTOGRAM,
    "istio_request_bytes", "Request size in bytes, head and body.", il,
    weft_istio_size_buckets, G_N_ELEMENTS (weft_istio_size_buckets));
  c->resp_bytes = weft_plugin_context_register_metric (ctx, WEFT_METRIC_HISTOGRAM,
    "istio_response_bytes", "Response size in bytes, head and body.", il,
    weft_istio_size_buckets, G_N_ELEMENTS (weft_istio_size_buckets));
  c->tcp_opened = weft_plugin_context_register_metric (ctx, WEFT_METRIC_COUNTER,
    "istio_tcp_connections_opened_total", "Client connections opened.", tl, NULL, 0);
  c->tcp_closed = weft_plugin_context_register_metric (ctx, WEFT_METRIC_COUNTER,
    "istio_tcp_connections_closed_total", "Client connections closed.", tl, NULL, 0);
  c->tcp_sent = weft_plugin_context_register_metric (ctx, WEFT_METRIC_COUNTER,
    "istio_tcp_sent_bytes_total", "Bytes sent to clients, counted when a connection closes.",
    tl, NULL, 0);
  c->tcp_received = weft_plugin_context_register_metric (ctx, WEFT_METRIC_COUNTER,
    "istio_tcp_received_bytes_total",
    "Bytes received from clients, counted when a connection closes.", tl, NULL, 0);
  c->route_requests = weft_plugin_context_register_metric (ctx, WEFT_METRIC_COUNTER,
    "weft_route_requests_total", "Requests by route name, method and status class.",
    weft_route_labels, NULL, 0);
  c->route_duration = weft_plugin_context_register_metric (ctx, WEFT_METRIC_HISTOGRAM,
    "weft_route_request_duration_seconds", "Request duration in seconds by route name and method.",
    weft_route_duration_labels, weft_route_duration_buckets,
    G_N_ELEMENTS (weft_route_duration_buckets));
  c->overflow = weft_metric_get_series (weft_plugin_context_register_metric (ctx,
    WEFT_METRIC_COUNTER, "weft_metrics_series_overflow_total",
    "Requests counted without their labels because a family reached max_series.", no_labels,
    NULL, 0), no_labels);
  c->bad_peer = weft_metric_get_series (weft_plugin_context_register_metric (ctx,
    WEFT_METRIC_COUNTER, "weft_metrics_peer_metadata_invalid_total",
    "x-weft-peer values that were not valid peer metadata.", no_labels, NULL, 0), no_labels);
}

static gboolean
weft_metrics_config_parse (WeftMetricsConfig *c, const WeftNode *node, GError **error)
{
  const WeftNode *v;
  guint64 n;

  if (node == NULL || weft_node_is_null (node))
    return TRUE;
  if (!weft_node_expect_kind (node, WEFT_NODE_MAP, error) ||
      !weft_node_check_keys (node, weft_metrics_keys, error))
    return FALSE;
  if ((v = weft_node_lookup (node, "max_series")) != NULL)
    {
      if (!weft_node_get_uint64 (v, &n, error))
        return FALSE;
      if (n < 1 || n > 1000000)
        {
          weft_node_set_error (v, error, "max_series must be between 1 and 1000000");
          return FALSE;
        }
      c->max_series = (guint) n;
    }
  if ((v = weft_node_lookup (node, "peer_exchange")) != NULL &&
      !weft_node_get_boolean (v, &c->exchange, error))
    return FALSE;
  if ((v = weft_node_lookup (node, "route_metrics")) != NULL &&
      !weft_node_get_boolean (v, &c->routes, error))
    return FALSE;
  if ((v = weft_node_lookup (node, "cluster_domain")) != NULL)
    {
      const char *s;
      if (!weft_node_get_string (v, &s, error))
        return FALSE;
      g_free (c->cluster_domain);
      c->cluster_domain = g_strdup (s);
    }
  return TRUE;
}

WeftMetricsConfig *
weft_metrics_config_new (WeftPluginContext *ctx, const WeftNode *node, GError **error)
{
  WeftMetricsConfig *c = g_new0 (WeftMetricsConfig, 1);

  c->ctx = ctx;
  c->max_series = 2000;
  c->exchange = TRUE;
  c->routes = TRUE;
  c->cluster_domain = g_strdup ("cluster.local");
  if (!weft_metrics_config_parse (c, node, error))
    {
      weft_metrics_config_free (c);
      return NULL;
    }
  weft_metrics_config_self (c);
  weft_metrics_config_register (c);
  return c;
}

void
weft_metrics_config_free (WeftMetricsConfig *config)
{
  if (config == NULL)
    return;
  g_free (config->cluster_domain);
  g_free (config->self_principal);
  g_free (config);
}

/* ------------------------------------------------------------------ */
/* label values                                                         */
/* ------------------------------------------------------------------ */

static const char *
weft_or_unknown (const char *value)
{
  return value != NULL && *value != '\0' ? value : "unknown";
}

/* canonical service and revision as Istio derives them: app, else workload */
static void
weft_istio_side (const WeftPeer *p, const char **workload, const char **canon,
                 const char **revision, const char **ns, const char **app, const char **version,
                 const char **cluster)
{
  *workload = weft_or_unknown (p != NULL ? p->workload : NULL);
  *canon = weft_or_unknown (p != NULL && p->app[0] ? p->app : p != NULL ? p->workload : NULL);
  *revision = p != NULL && p->version[0] ? p->version : "latest";
  *ns = weft_or_unknown (p != NULL ? p->ns : NULL);
  *app = weft_or_unknown (p != NULL ? p->app : NULL);
  *version = weft_or_unknown (p != NULL ? p->version : NULL);
  *cluster = weft_or_unknown (p != NULL ? p->cluster : NULL);
}

/* "reviews.bookinfo.svc.cluster.local" -> name reviews, namespace bookinfo */
static void
weft_istio_split_host (const char *host, const WeftPeer *peer, WeftIstioLabels *out)
{
  const char *dot = strchr (host, '.');
  const char *dot2;

  g_strlcpy (out->dest_name, host, dot != NULL ? MIN ((gsize) (dot - host) + 1,
                                                      sizeof out->dest_name)
                                               : sizeof out->dest_name);
  if (dot != NULL)
    {
      dot2 = strchr (dot + 1, '.');
      g_strlcpy (out->dest_ns, dot + 1, dot2 != NULL ? MIN ((gsize) (dot2 - dot), sizeof out->dest_ns)
                                                     : sizeof out->dest_ns);
      return;
    }
  g_strlcpy (out->dest_ns, peer != NULL && peer->ns[0] ? peer->ns : "unknown",
             sizeof out->dest_ns);
}

static void
weft_istio_destination_service (const WeftMetricsInstance *inst, const WeftIstioFacts *f,
                                WeftIstioLabels *out)
{
  const WeftMetricsConfig *c = inst->config;
  const WeftPeer *self = &c->self;

  if (inst->direction == WEFT_DIRECTION_OUTBOUND)
    {
      g_strlcpy (out->dest_service, weft_or_unknown (f->upstream), sizeof out->dest_service);
      weft_istio_split_host (out->dest_service, f->peer, out);
      return;
    }
  g_strlcpy (out->dest_name, weft_or_unknown (self->service), sizeof out->dest_name);
  g_strlcpy (out->dest_ns, weft_or_unknown (self->ns), sizeof out->dest_ns);
  if (self->service[0] && self->ns[0])
    g_snprintf (out->dest_service, sizeof out->dest_service, "%s.%s.svc.%s", self->service,
                self->ns, c->cluster_domain);
  else
    g_strlcpy (out->dest_service, out->dest_name, sizeof out->dest_service);
}

void
weft_istio_labels_fill (const WeftMetricsInstance *inst, const WeftIstioFacts *f,
                        WeftIstioLabels *out)
{
  gboolean inbound = inst->direction == WEFT_DIRECTION_INBOUND;
  const WeftPeer *src = inbound ? f->peer : &inst->config->self;
  const WeftPeer *dst = inbound ? &inst->config->self : f->peer;
  const char **v = out->v;

  v[WEFT_IL_REPORTER] = inbound ? "destination" : "source";
  weft_istio_side (src, &v[WEFT_IL_SOURCE_WORKLOAD], &v[WEFT_IL_SOURCE_CANONICAL_SERVICE],
                   &v[WEFT_IL_SOURCE_CANONICAL_REVISION], &v[WEFT_IL_SOURCE_WORKLOAD_NAMESPACE],
                   &v[WEFT_IL_SOURCE_APP], &v[WEFT_IL_SOURCE_VERSION], &v[WEFT_IL_SOURCE_CLUSTER]);
  weft_istio_side (dst, &v[WEFT_IL_DESTINATION_WORKLOAD],
                   &v[WEFT_IL_DESTINATION_CANONICAL_SERVICE],
                   &v[WEFT_IL_DESTINATION_CANONICAL_REVISION],
                   &v[WEFT_IL_DESTINATION_WORKLOAD_NAMESPACE], &v[WEFT_IL_DESTINATION_APP],
                   &v[WEFT_IL_DESTINATION_VERSION], &v[WEFT_IL_DESTINATION_CLUSTER]);
  /* principals are known only from mTLS: the caller's inbound, the
   * server's outbound (Istio's source reporter leaves the policy unknown) */
  v[WEFT_IL_SOURCE_PRINCIPAL] = inbound ? weft_or_unknown (f->peer_principal) : "unknown";
  v[WEFT_IL_DESTINATION_PRINCIPAL] = inbound || f->peer_principal == NULL ? "unknown"
                                                                          : f->peer_principal;
  weft_istio_destination_service (inst, f, out);
  v[WEFT_IL_DESTINATION_SERVICE] = out->dest_service;
  v[WEFT_IL_DESTINATION_SERVICE_NAME] = out->dest_name;
  v[WEFT_IL_DESTINATION_SERVICE_NAMESPACE] = out->dest_ns;
  v[WEFT_IL_REQUEST_PROTOCOL] = f->grpc ? "grpc" : "http";
  g_snprintf (out->code, sizeof out->code, "%u", f->status);
  v[WEFT_IL_RESPONSE_CODE] = out->code;
  v[WEFT_IL_GRPC_RESPONSE_STATUS] = f->grpc && f->grpc_status != NULL ? f->grpc_status : "";
  v[WEFT_IL_RESPONSE_FLAGS] = weft_response_flags_format (f->flags, out->flags);
  v[WEFT_IL_CONNECTION_SECURITY_POLICY] = !inbound ? "unknown"
                                          : f->peer_principal != NULL ? "mutual_tls" : "none";
  v[WEFT_IL_COUNT] = NULL;
}
