/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The metrics plugin: Istio's standard metrics with Istio's labels, and the
 * weft_route_* family by route name and method.
 */
#pragma once

#include <weft/plugin.h>

G_BEGIN_DECLS

/* the longest peer metadata header weft accepts or sends */
#define WEFT_PEER_MAX 256
/* the request header carrying the caller's identity, and the response
 * header carrying the callee's (Istio's metadata exchange, in plain text) */
#define WEFT_PEER_HEADER "x-weft-peer"

/**
 * WeftPeer:
 *
 * A workload's identity as the metadata exchange carries it: parsed from
 * "w=reviews-v2;n=bookinfo;s=reviews;a=reviews;v=v2;c=east-1".
 */
typedef struct {
  char workload[64];
  char ns[64];
  char service[64];
  char app[64];
  char version[32];
  char cluster[32];
} WeftPeer;

/* fills @peer from @text; FALSE (and @peer emptied) when @text is not a
 * valid metadata value: unknown keys are skipped, bad characters refuse it */
gboolean weft_peer_parse  (const char *text, WeftPeer *peer);
/* the header value for @peer, into @out of @size; FALSE if it does not fit */
gboolean weft_peer_format (const WeftPeer *peer, char *out, gsize size);

/* Istio's label set, in Istio's order */
typedef enum {
  WEFT_IL_REPORTER,
  WEFT_IL_SOURCE_WORKLOAD,
  WEFT_IL_SOURCE_CANONICAL_SERVICE,
  WEFT_IL_SOURCE_CANONICAL_REVISION,
  WEFT_IL_SOURCE_WORKLOAD_NAMESPACE,
  WEFT_IL_SOURCE_PRINCIPAL,
  WEFT_IL_SOURCE_APP,
  WEFT_IL_SOURCE_VERSION,
  WEFT_IL_SOURCE_CLUSTER,
  WEFT_IL_DESTINATION_WORKLOAD,
  WEFT_IL_DESTINATION_WORKLOAD_NAMESPACE,
  WEFT_IL_DESTINATION_PRINCIPAL,
  WEFT_IL_DESTINATION_APP,
  WEFT_IL_DESTINATION_VERSION,
  WEFT_IL_DESTINATION_SERVICE,
  WEFT_IL_DESTINATION_CANONICAL_SERVICE,
  WEFT_IL_DESTINATION_CANONICAL_REVISION,
  WEFT_IL_DESTINATION_SERVICE_NAME,
  WEFT_IL_DESTINATION_SERVICE_NAMESPACE,
  WEFT_IL_DESTINATION_CLUSTER,
  WEFT_IL_REQUEST_PROTOCOL,
  WEFT_IL_RESPONSE_CODE,
  WEFT_IL_GRPC_RESPONSE_STATUS,
  WEFT_IL_RESPONSE_FLAGS,
  WEFT_IL_CONNECTION_SECURITY_POLICY,
  WEFT_IL_COUNT,
} WeftIstioLabel;

extern const char *const weft_istio_label_names[WEFT_IL_COUNT + 1];
/* the TCP families' labels: Istio's set without the three HTTP ones */
#define WEFT_IL_TCP_COUNT (WEFT_IL_COUNT - 3)
/* picks the TCP labels' entries of @all (names or values, in label order)
 * into @tcp, which holds WEFT_IL_TCP_COUNT + 1 */
void weft_istio_tcp_values (const char *const *all, const char **tcp);

/**
 * WeftMetricsConfig:
 *
 * The metrics: settings and the families, one per generation (the
 * families themselves live for the process).
 */
typedef struct {
  WeftPluginContext *ctx;
  guint              max_series;
  gboolean           exchange;      /* send and read x-weft-peer */
  gboolean           routes;        /* the weft_route_* family */
  char              *cluster_domain;
  WeftPeer           self;          /* this sidecar, from node: */
  char               self_header[WEFT_PEER_MAX];
  char              *self_principal;

  WeftMetric        *requests;      /* istio_requests_total */
  WeftMetric        *duration;      /* istio_request_duration_milliseconds */
  WeftMetric        *req_bytes;     /* istio_request_bytes */
  WeftMetric        *resp_bytes;    /* istio_response_bytes */
  WeftMetric        *tcp_opened;
  WeftMetric        *tcp_closed;
  WeftMetric        *tcp_sent;
  WeftMetric        *tcp_received;
  WeftMetric        *route_requests;   /* weft_route_requests_total */
  WeftMetric        *route_duration;   /* weft_route_request_duration_seconds */
  WeftMetricSeries  *overflow;         /* weft_metrics_series_overflow_total */
  WeftMetricSeries  *bad_peer;         /* weft_metrics_peer_metadata_invalid_total */
} WeftMetricsConfig;

WeftMetricsConfig *weft_metrics_config_new  (WeftPluginContext *ctx, const WeftNode *node,
                                             GError **error);
void               weft_metrics_config_free (WeftMetricsConfig *config);

/**
 * WeftMetricsInstance:
 *
 * One listener's view: its direction decides the reporter and which side
 * of the labels this sidecar fills.
 */
typedef struct {
  WeftMetricsConfig *config;
  WeftDirection      direction;
  char              *listener;
  /* the TCP families' series for this listener */
  WeftMetricSeries  *tcp_opened;
  WeftMetricSeries  *tcp_closed;
  WeftMetricSeries  *tcp_sent;
  WeftMetricSeries  *tcp_received;
} WeftMetricsInstance;

/* the Istio label values for a request, into @values (pointers into @peer,
 * @config and the static strings); @buf holds the formatted numbers */
typedef struct {
  const WeftPeer *peer;             /* the other side, or NULL: unknown */
  const char     *peer_principal;
  const char     *upstream;         /* outbound: the upstream's name */
  guint           status;
  guint32         flags;
  gboolean        grpc;
  const char     *grpc_status;
} WeftIstioFacts;

typedef struct {
  const char *v[WEFT_IL_COUNT + 1];
  char        code[8];
  char        flags[WEFT_RESPONSE_FLAGS_MAX];
  char        dest_name[64];
  char        dest_ns[64];
  char        dest_service[160];
} WeftIstioLabels;

void weft_istio_labels_fill (const WeftMetricsInstance *inst, const WeftIstioFacts *facts,
                             WeftIstioLabels *out);

/**
 * WeftMetricsCache:
 *
 * A worker's map from a request's label-making facts to its series, so a
 * request finds its four series with one hash probe and no lock. A miss
 * resolves them in the registry (a lock, once per combination and worker).
 */
typedef struct _WeftMetricsCache WeftMetricsCache;

typedef struct {
  WeftMetricSeries *requests;
  WeftMetricSeries *duration;
  WeftMetricSeries *req_bytes;
  WeftMetricSeries *resp_bytes;
} WeftIstioSeries;

WeftMetricsCache *weft_metrics_cache_new  (void);
void              weft_metrics_cache_free (WeftMetricsCache *cache);
/* the entry for @key (of @len bytes), or NULL */
gpointer          weft_metrics_cache_lookup (WeftMetricsCache *cache, const char *key, gsize len,
                                             guint64 hash);
/* stores @value (copied, @value_size bytes) under @key; returns the copy */
gpointer          weft_metrics_cache_insert (WeftMetricsCache *cache, const char *key, gsize len,
                                             guint64 hash, gconstpointer value, gsize value_size);
guint             weft_metrics_cache_size (WeftMetricsCache *cache);
guint64           weft_metrics_hash (const char *data, gsize len);

G_END_DECLS
