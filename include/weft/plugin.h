/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * weft plugin ABI: the one public header a weft plugin includes.
 *
 * A plugin is a shared object that exports exactly one symbol,
 * weft_plugin_get_descriptor(), returning a static #WeftPluginDescriptor.
 * Everything else a plugin needs is provided by the host (the weft binary)
 * through the weft_* functions declared here; they are resolved when the
 * plugin is loaded, so a plugin links against nothing but GLib.
 */
#pragma once

#include <glib.h>
#include <gmodule.h>
#include <sys/socket.h>

G_BEGIN_DECLS

/**
 * WEFT_PLUGIN_ABI_VERSION:
 *
 * The ABI version of this header. Bumped whenever a struct layout or a
 * callback signature changes. The loader refuses a plugin whose descriptor
 * carries another version and says which plugin to rebuild.
 */
#define WEFT_PLUGIN_ABI_VERSION 4

/**
 * WEFT_PLUGIN_ENTRY_SYMBOL:
 *
 * The single symbol a plugin exports.
 */
#define WEFT_PLUGIN_ENTRY_SYMBOL "weft_plugin_get_descriptor"

/**
 * WEFT_ERROR:
 *
 * The error domain for configuration, startup and reload errors.
 */
#define WEFT_ERROR (weft_error_quark ())
GQuark weft_error_quark (void);

/**
 * WeftErrorCode:
 * @WEFT_ERROR_FAILED: generic failure
 * @WEFT_ERROR_CONFIG: a configuration problem; the message starts with file:line:col
 * @WEFT_ERROR_PLUGIN: a plugin could not be loaded
 * @WEFT_ERROR_BIND: a socket could not be bound
 * @WEFT_ERROR_IO: a file could not be read
 */
typedef enum {
  WEFT_ERROR_FAILED,
  WEFT_ERROR_CONFIG,
  WEFT_ERROR_PLUGIN,
  WEFT_ERROR_BIND,
  WEFT_ERROR_IO,
} WeftErrorCode;

/* ------------------------------------------------------------------ */
/* configuration nodes                                                  */
/* ------------------------------------------------------------------ */

/**
 * WeftNode:
 *
 * A read-only YAML node with its source position. Valid for the duration of
 * the parse callback it is handed to; copy what you keep.
 */
typedef struct _WeftNode WeftNode;

/**
 * WeftNodeKind:
 * @WEFT_NODE_SCALAR: a string, number, boolean or null scalar
 * @WEFT_NODE_MAP: a mapping
 * @WEFT_NODE_SEQ: a sequence
 */
typedef enum {
  WEFT_NODE_SCALAR,
  WEFT_NODE_MAP,
  WEFT_NODE_SEQ,
} WeftNodeKind;

WeftNodeKind     weft_node_get_kind     (const WeftNode *node);
/* the scalar's text, or NULL when @node is not a scalar */
const char      *weft_node_get_scalar   (const WeftNode *node);
/* TRUE for a plain null scalar ("~", "null" or empty) */
gboolean         weft_node_is_null      (const WeftNode *node);
const char      *weft_node_get_file     (const WeftNode *node);
/* 1-based line and column */
guint            weft_node_get_line     (const WeftNode *node);
guint            weft_node_get_column   (const WeftNode *node);
/* number of items of a sequence, or of pairs of a mapping; 0 for a scalar */
guint            weft_node_get_length   (const WeftNode *node);
const WeftNode  *weft_node_get_item     (const WeftNode *node, guint idx);
const WeftNode  *weft_node_get_key      (const WeftNode *node, guint idx);
const WeftNode  *weft_node_get_value    (const WeftNode *node, guint idx);
/* value of @key in a mapping, or NULL */
const WeftNode  *weft_node_lookup       (const WeftNode *node, const char *key);

/**
 * weft_node_set_error:
 * @node: the node the problem is at
 * @error: return location
 * @format: printf-style message, no position
 *
 * Sets @error to WEFT_ERROR_CONFIG with the message "file:line:col: message".
 */
void             weft_node_set_error    (const WeftNode *node, GError **error,
                                         const char *format, ...) G_GNUC_PRINTF (3, 4);

/* typed accessors; each sets a positioned error when the node has the wrong shape */
gboolean weft_node_get_string   (const WeftNode *node, const char **out, GError **error);
gboolean weft_node_get_uint64   (const WeftNode *node, guint64 *out, GError **error);
gboolean weft_node_get_double   (const WeftNode *node, double *out, GError **error);
gboolean weft_node_get_boolean  (const WeftNode *node, gboolean *out, GError **error);
/* "250ms", "5s", "2m", "1h" or a bare number of seconds, into milliseconds */
gboolean weft_node_get_duration (const WeftNode *node, guint64 *out_ms, GError **error);
/* "16KiB", "1MiB", "512" into bytes */
gboolean weft_node_get_size     (const WeftNode *node, guint64 *out_bytes, GError **error);
/* fails with a positioned error on the first key of @map not in @allowed (NULL-terminated) */
gboolean weft_node_check_keys   (const WeftNode *map, const char *const *allowed, GError **error);
/* fails unless @node is a mapping (or sequence), with a positioned error */
gboolean weft_node_expect_kind  (const WeftNode *node, WeftNodeKind kind, GError **error);

/* ------------------------------------------------------------------ */
/* requests                                                             */
/* ------------------------------------------------------------------ */

/**
 * WeftRequest:
 *
 * One HTTP request as it passes through the phases. Owned by the worker;
 * valid only inside a hook. All strings returned are NUL-terminated and live
 * until the request ends.
 */
typedef struct _WeftRequest WeftRequest;

/**
 * WeftUpstream:
 *
 * An upstream cluster of the configuration generation, looked up by name at
 * config time with weft_plugin_context_lookup_upstream().
 */
typedef struct _WeftUpstream WeftUpstream;

/**
 * WeftPhase:
 * @WEFT_PHASE_ROUTE: choose the upstream and rewrite the request
 * @WEFT_PHASE_PRE_ACCESS: early checks (rate limiting)
 * @WEFT_PHASE_ACCESS: authorisation
 * @WEFT_PHASE_UPSTREAM: last change to the request before it is sent
 * @WEFT_PHASE_RESPONSE: the upstream response head arrived; headers can change
 * @WEFT_PHASE_LOG: the exchange ended (also after local answers and errors)
 *
 * The fixed request phases, run in this order. At config load the hooks of a
 * listener's plugins compile into a flat array per phase.
 */
typedef enum {
  WEFT_PHASE_ROUTE,
  WEFT_PHASE_PRE_ACCESS,
  WEFT_PHASE_ACCESS,
  WEFT_PHASE_UPSTREAM,
  WEFT_PHASE_RESPONSE,
  WEFT_PHASE_LOG,
  WEFT_PHASE_COUNT,
} WeftPhase;

/**
 * WeftHookResult:
 * @WEFT_HOOK_CONTINUE: go on with the next hook
 * @WEFT_HOOK_RESPOND: the hook answered locally with weft_request_respond();
 *   no further hook of the request phases runs and nothing is forwarded
 * @WEFT_HOOK_ERROR: internal failure; weft answers 500 with
 *   x-weft-error: plugin_error
 * @WEFT_HOOK_SUSPEND: the hook called weft_request_suspend() and waits for
 *   something (a reply from a remote service); the request pauses until
 *   weft_request_resume(). Only the route, pre-access, access and upstream
 *   phases may suspend.
 */
typedef enum {
  WEFT_HOOK_CONTINUE,
  WEFT_HOOK_RESPOND,
  WEFT_HOOK_ERROR,
  WEFT_HOOK_SUSPEND,
} WeftHookResult;

/**
 * WeftDirection:
 * @WEFT_DIRECTION_INBOUND: traffic to this workload (the default)
 * @WEFT_DIRECTION_OUTBOUND: traffic this workload sends
 */
typedef enum {
  WEFT_DIRECTION_INBOUND,
  WEFT_DIRECTION_OUTBOUND,
} WeftDirection;

const char     *weft_request_get_method        (WeftRequest *req);
/* the request target as sent: path and query */
const char     *weft_request_get_path          (WeftRequest *req);
/* the Host header, port included when one was sent */
const char     *weft_request_get_authority     (WeftRequest *req);
/* first value of header @name (case-insensitive), or NULL */
const char     *weft_request_get_header        (WeftRequest *req, const char *name);
/* iterate request headers: returns FALSE past the end */
gboolean        weft_request_get_header_nth    (WeftRequest *req, guint idx,
                                                const char **name, const char **value);
/* replace every value of @name with @value */
void            weft_request_set_header        (WeftRequest *req, const char *name, const char *value);
void            weft_request_add_header        (WeftRequest *req, const char *name, const char *value);
void            weft_request_remove_header     (WeftRequest *req, const char *name);
void            weft_request_set_path          (WeftRequest *req, const char *path);
void            weft_request_set_authority     (WeftRequest *req, const char *authority);

/* response head, valid from WEFT_PHASE_RESPONSE on */
guint           weft_request_get_status        (WeftRequest *req);
const char     *weft_request_get_response_header (WeftRequest *req, const char *name);
void            weft_request_set_response_header (WeftRequest *req, const char *name, const char *value);
void            weft_request_add_response_header (WeftRequest *req, const char *name, const char *value);
void            weft_request_remove_response_header (WeftRequest *req, const char *name);

/* the peer of the client connection */
const struct sockaddr *weft_request_get_peer_address (WeftRequest *req, socklen_t *len);
/* the peer address as text, "127.0.0.1" or "::1", without port */
const char     *weft_request_get_peer_ip       (WeftRequest *req);
/* the verified peer identity (a SPIFFE ID) or NULL when the peer is not authenticated */
const char     *weft_request_get_peer_identity (WeftRequest *req);
/* the verified SPIFFE ID of the upstream that answered over mTLS (an
 * ISTIO_MUTUAL upstream), or NULL; set once its response head arrived */
const char     *weft_request_get_upstream_identity (WeftRequest *req);
const char     *weft_request_get_listener_name (WeftRequest *req);
WeftDirection   weft_request_get_direction     (WeftRequest *req);
/* the x-request-id of the request (generated when the client sent none) */
const char     *weft_request_get_request_id    (WeftRequest *req);

/* the route the router chose (its name, for per-route limits, logs and
 * metrics), or NULL; @name must live as long as the configuration generation */
const char     *weft_request_get_route_name    (WeftRequest *req);
void            weft_request_set_route_name    (WeftRequest *req, const char *name);

/* the x-weft-error token of a local answer (a static string, or one that
 * lives as long as the generation), such as "rbac-denied"; NULL = none */
const char     *weft_request_get_error_reason  (WeftRequest *req);
void            weft_request_set_error_reason  (WeftRequest *req, const char *token);

/**
 * WeftResponseFlags:
 * @WEFT_RESPONSE_FLAG_NO_HEALTHY_UPSTREAM: UH, no endpoint was healthy
 * @WEFT_RESPONSE_FLAG_UPSTREAM_CONNECT_FAILURE: UF, connecting failed
 * @WEFT_RESPONSE_FLAG_UPSTREAM_OVERFLOW: UO, the upstream's request limit
 * @WEFT_RESPONSE_FLAG_NO_ROUTE: NR, no route or upstream for the request
 * @WEFT_RESPONSE_FLAG_RETRY_LIMIT_EXCEEDED: URX, retries did not help
 * @WEFT_RESPONSE_FLAG_DOWNSTREAM_DISCONNECT: DC, the client went away first
 * @WEFT_RESPONSE_FLAG_UPSTREAM_TIMEOUT: UT, no response head in time
 * @WEFT_RESPONSE_FLAG_UPSTREAM_TERMINATION: UC, the upstream connection broke
 * @WEFT_RESPONSE_FLAG_DELAY_INJECTED: DI, a fault delay held the request
 * @WEFT_RESPONSE_FLAG_FAULT_INJECTED: FI, a fault answered the request
 * @WEFT_RESPONSE_FLAG_RATE_LIMITED: RL, a rate limit refused it
 * @WEFT_RESPONSE_FLAG_UNAUTHORIZED: UAEX, an authorization policy denied it
 * @WEFT_RESPONSE_FLAG_RATE_LIMIT_SERVICE_ERROR: RLSE, the rate limit
 *   service failed (and the limit fails closed)
 * @WEFT_RESPONSE_FLAG_UPSTREAM_PROTOCOL_ERROR: UPE, the upstream's answer
 *   was not valid HTTP
 *
 * Envoy's response flags: why an exchange did not end with a plain
 * upstream answer. The core sets the upstream and downstream ones; a plugin
 * that answers adds its own with weft_request_add_response_flags().
 */
typedef enum {
  WEFT_RESPONSE_FLAG_NO_HEALTHY_UPSTREAM        = 1 << 0,
  WEFT_RESPONSE_FLAG_UPSTREAM_CONNECT_FAILURE   = 1 << 1,
  WEFT_RESPONSE_FLAG_UPSTREAM_OVERFLOW          = 1 << 2,
  WEFT_RESPONSE_FLAG_NO_ROUTE                   = 1 << 3,
  WEFT_RESPONSE_FLAG_RETRY_LIMIT_EXCEEDED       = 1 << 4,
  WEFT_RESPONSE_FLAG_DOWNSTREAM_DISCONNECT      = 1 << 5,
  WEFT_RESPONSE_FLAG_UPSTREAM_TIMEOUT           = 1 << 6,
  WEFT_RESPONSE_FLAG_UPSTREAM_TERMINATION       = 1 << 7,
  WEFT_RESPONSE_FLAG_DELAY_INJECTED             = 1 << 8,
  WEFT_RESPONSE_FLAG_FAULT_INJECTED             = 1 << 9,
  WEFT_RESPONSE_FLAG_RATE_LIMITED               = 1 << 10,
  WEFT_RESPONSE_FLAG_UNAUTHORIZED               = 1 << 11,
  WEFT_RESPONSE_FLAG_RATE_LIMIT_SERVICE_ERROR   = 1 << 12,
  WEFT_RESPONSE_FLAG_UPSTREAM_PROTOCOL_ERROR    = 1 << 13,
} WeftResponseFlags;

/* the longest text weft_response_flags_format() writes, NUL included */
#define WEFT_RESPONSE_FLAGS_MAX 64

guint32         weft_request_get_response_flags (WeftRequest *req);
void            weft_request_add_response_flags (WeftRequest *req, guint32 flags);
/**
 * weft_response_flags_format:
 * @flags: #WeftResponseFlags bits
 * @buf: (out): at least %WEFT_RESPONSE_FLAGS_MAX bytes
 *
 * Writes the flags as Envoy prints them: "UF,URX", or "-" for none, in
 * Envoy's order.
 *
 * Returns: @buf
 */
const char     *weft_response_flags_format      (guint32 flags, char *buf);

/* observing the exchange, for metrics, traces and logs (any phase; the
 * byte counts and the upstream address are final in WEFT_PHASE_LOG) */

/* when the request head arrived: wall clock, microseconds since the epoch */
gint64          weft_request_get_start_time    (WeftRequest *req);
/* microseconds since the request head arrived (monotonic) */
gint64          weft_request_get_duration_us   (WeftRequest *req);
/* "HTTP/1.1" or "HTTP/1.0" */
const char     *weft_request_get_protocol      (WeftRequest *req);
/* request bytes read from the client (head and body) and response bytes
 * written to it (head and body) */
guint64         weft_request_get_bytes_received (WeftRequest *req);
guint64         weft_request_get_bytes_sent    (WeftRequest *req);
/* the endpoint of the last try, "10.0.0.7:8080", or NULL when none was picked */
const char     *weft_request_get_upstream_address (WeftRequest *req);
/* the trace the request belongs to, 32 lowercase hex digits, set by a
 * tracing plugin (copied, at most 32 characters) so access logs can print
 * it; NULL = none */
const char     *weft_request_get_trace_id      (WeftRequest *req);
void            weft_request_set_trace_id      (WeftRequest *req, const char *trace_id);

/**
 * WeftRequestCancelFunc:
 * @req: the suspended request, about to end
 * @data: what was given to weft_request_suspend()
 *
 * Called when a suspended request ends before weft_request_resume() (the
 * client went away, or a drain timed out). After it returns the request is
 * gone: drop every pointer to it and never resume it.
 */
typedef void (*WeftRequestCancelFunc) (WeftRequest *req, gpointer data);

/**
 * weft_request_suspend:
 * @req: the request
 * @cancel: called if the request ends while suspended
 * @data: handed to @cancel
 *
 * Pauses the request: call it from a hook, then return %WEFT_HOOK_SUSPEND.
 * The worker serves other connections meanwhile. The plugin must later call
 * weft_request_resume() once, from the same worker thread and never from
 * inside the hook, or be told by @cancel that the request is gone. The
 * plugin bounds the wait itself (a timer), since no deadline runs while
 * a request is suspended.
 */
void            weft_request_suspend           (WeftRequest *req, WeftRequestCancelFunc cancel,
                                                gpointer data);

/**
 * weft_request_resume:
 * @req: a request suspended with weft_request_suspend()
 * @result: what the hook would have returned: %WEFT_HOOK_CONTINUE goes on
 *   with the next hook, %WEFT_HOOK_RESPOND sends the answer set with
 *   weft_request_respond(), %WEFT_HOOK_ERROR answers 500
 *
 * Continues a suspended request where its hook left off.
 */
void            weft_request_resume            (WeftRequest *req, WeftHookResult result);

WeftUpstream   *weft_request_get_upstream      (WeftRequest *req);
void            weft_request_set_upstream      (WeftRequest *req, WeftUpstream *upstream);
const char     *weft_upstream_get_name         (WeftUpstream *upstream);

/* ------------------------------------------------------------------ */
/* traffic policy: what a route hook may ask of the core                */
/* ------------------------------------------------------------------ */

/**
 * WeftRetryOn:
 * @WEFT_RETRY_ON_CONNECT_FAILURE: the connect failed, was refused or timed out
 * @WEFT_RETRY_ON_REFUSED_STREAM: the upstream refused the request without
 *   processing it (an HTTP/2 REFUSED_STREAM; for HTTP/1.1 a connection
 *   closed before any response byte)
 * @WEFT_RETRY_ON_RESET: the connection broke or timed out (per-try timeout)
 *   before a response head arrived
 * @WEFT_RETRY_ON_5XX: any 5xx response, and everything gateway-error covers
 * @WEFT_RETRY_ON_GATEWAY_ERROR: a 502, 503 or 504 response, and connect failures
 * @WEFT_RETRY_ON_STATUS: a status listed in #WeftRetrySpec.statuses
 */
typedef enum {
  WEFT_RETRY_ON_CONNECT_FAILURE = 1 << 0,
  WEFT_RETRY_ON_REFUSED_STREAM  = 1 << 1,
  WEFT_RETRY_ON_RESET           = 1 << 2,
  WEFT_RETRY_ON_5XX             = 1 << 3,
  WEFT_RETRY_ON_GATEWAY_ERROR   = 1 << 4,
  WEFT_RETRY_ON_STATUS          = 1 << 5,
} WeftRetryOn;

#define WEFT_RETRY_MAX_STATUSES 16

/**
 * WeftRetrySpec:
 * @attempts: retries after the first try (0 = no retry)
 * @per_try_timeout_ms: time one try may take to its response head; 0 = the
 *   request timeout only
 * @retry_on: #WeftRetryOn bits
 * @statuses: the statuses %WEFT_RETRY_ON_STATUS retries on
 * @n_statuses: how many of @statuses are used
 * @backoff_base_ms: the first backoff; each retry doubles it, up to
 *   @backoff_max_ms; the wait is a random value from 0 to that (full jitter).
 *   0 = 25 ms.
 * @backoff_max_ms: 0 = ten times @backoff_base_ms
 * @max_body: a request whose body is larger is never retried; 0 = 64 KiB
 * @budget_ratio: retries may add at most this fraction of the requests the
 *   policy saw over the last 10 s (0.2 = 20%); a negative value turns the
 *   budget off; 0 = 0.2
 * @budget_min_per_sec: retries allowed per second whatever the ratio, so a
 *   quiet route can still retry; 0 = 10
 *
 * What weft_plugin_context_new_retry_policy() builds a policy from.
 */
typedef struct {
  guint    attempts;
  guint64  per_try_timeout_ms;
  guint    retry_on;
  guint16  statuses[WEFT_RETRY_MAX_STATUSES];
  guint    n_statuses;
  guint64  backoff_base_ms;
  guint64  backoff_max_ms;
  gsize    max_body;
  double   budget_ratio;
  guint    budget_min_per_sec;
} WeftRetrySpec;

/**
 * WeftRetryPolicy:
 *
 * A retry policy with its retry budget, owned by the configuration
 * generation it was made in.
 */
typedef struct _WeftRetryPolicy WeftRetryPolicy;

/* route-phase calls: they shape how the core forwards this request */

/* the whole request's time to its response head, instead of the listener's
 * timeouts.request; 0 = no limit */
void            weft_request_set_timeout       (WeftRequest *req, guint64 timeout_ms);
/* retries for this request; NULL = none (the default) */
void            weft_request_set_retry_policy  (WeftRequest *req, WeftRetryPolicy *policy);
/* holds the request @delay_ms before it goes upstream or is answered (fault
 * injection); the wait holds no thread */
void            weft_request_set_delay         (WeftRequest *req, guint64 delay_ms);
/* sends a copy of the request to @upstream, with "-shadow" appended to its
 * authority; the copy's response is discarded, and its failure or slowness
 * never touches the request. A body larger than 64 KiB is not mirrored.
 * Up to WEFT_MAX_MIRRORS mirrors per request; further calls are ignored. */
#define WEFT_MAX_MIRRORS 4
void            weft_request_mirror            (WeftRequest *req, WeftUpstream *upstream);
/* a random 32-bit value from the worker's generator (no lock, no syscall) */
guint32         weft_request_random            (WeftRequest *req);
/* 64 random bits from the same generator, for ids (trace and span ids) */
guint64         weft_request_random64          (WeftRequest *req);
/* the port the request was sent to: the authority's port, else the original
 * destination port of a redirected connection, else the listener's port */
guint16         weft_request_get_port          (WeftRequest *req);
/* the port the connection reached: the original destination port of a
 * redirected connection, else the listener's. Unlike weft_request_get_port()
 * it ignores the Host header, which the client chooses: use it for access
 * decisions */
guint16         weft_request_get_destination_port (WeftRequest *req);

/**
 * weft_request_respond:
 * @req: the request
 * @status: HTTP status code
 * @content_type: (nullable): Content-Type of @body
 * @body: (nullable): response body; copied
 * @body_len: length of @body, or -1 for a NUL-terminated string
 *
 * Answers the request locally. Headers added before with
 * weft_request_add_response_header() are sent too. Return
 * %WEFT_HOOK_RESPOND from the hook afterwards.
 */
void            weft_request_respond           (WeftRequest *req, guint status,
                                                const char *content_type,
                                                const char *body, gssize body_len);

/**
 * weft_request_alloc:
 *
 * Per-request scratch memory, freed when the request ends. Does not call
 * malloc in steady state.
 */
gpointer        weft_request_alloc             (WeftRequest *req, gsize size);
char           *weft_request_strdup            (WeftRequest *req, const char *str);

/**
 * weft_request_get_data:
 * @req: the request
 * @slot: the plugin's slot, from weft_plugin_context_get_slot()
 *
 * Per-request data a plugin keeps across phases; NULL at the start of every
 * request.
 */
gpointer        weft_request_get_data          (WeftRequest *req, guint slot);
void            weft_request_set_data          (WeftRequest *req, guint slot, gpointer data);

/* ------------------------------------------------------------------ */
/* metrics                                                              */
/* ------------------------------------------------------------------ */

/**
 * WeftMetric:
 *
 * A metric family registered at config time, exposed on admin /metrics.
 * Values are kept per worker and summed when read, so updating one never
 * takes a lock.
 */
typedef struct _WeftMetric WeftMetric;

typedef enum {
  WEFT_METRIC_COUNTER,
  WEFT_METRIC_GAUGE,
  WEFT_METRIC_HISTOGRAM,
} WeftMetricType;

/**
 * WeftMetricSeries:
 *
 * One label combination of a #WeftMetric.
 */
typedef struct _WeftMetricSeries WeftMetricSeries;

/* label values, in the order of the family's label names; takes a lock the
 * first time a combination is seen, then is lock-free. Resolve series at
 * config time where the labels are known then. */
WeftMetricSeries *weft_metric_get_series (WeftMetric *metric, const char *const *label_values);
/* like weft_metric_get_series(), but when the combination is new and the
 * family holds @max_series series already, creates nothing and returns NULL:
 * labels that come from requests cannot grow a family without bound */
WeftMetricSeries *weft_metric_try_series (WeftMetric *metric, const char *const *label_values,
                                          guint max_series);
void              weft_metric_series_add     (WeftMetricSeries *series, gint64 delta);
void              weft_metric_series_observe (WeftMetricSeries *series, double value);

/* ------------------------------------------------------------------ */
/* plugin context and descriptor                                        */
/* ------------------------------------------------------------------ */

/**
 * WeftPluginContext:
 *
 * Handed to the control-side callbacks of one plugin for one configuration
 * generation. It stays valid as long as that generation, so a config object
 * may keep it (to add upstreams from config_add_document, for instance).
 */
typedef struct _WeftPluginContext WeftPluginContext;

/**
 * WeftListenerInfo:
 *
 * Read-only facts about a listener a plugin instance is created for.
 */
typedef struct {
  const char    *name;
  const char    *address;
  WeftDirection  direction;
  const char    *default_upstream;
} WeftListenerInfo;

/* the request data slot of this plugin */
guint           weft_plugin_context_get_slot        (WeftPluginContext *ctx);
/* an upstream of this generation, or NULL */
WeftUpstream   *weft_plugin_context_lookup_upstream (WeftPluginContext *ctx, const char *name);
/* number of worker threads; worker indexes run from 0 to this minus one */
guint           weft_plugin_context_get_n_workers   (WeftPluginContext *ctx);
/* this sidecar's identity from the node: section, or NULL */
const char     *weft_plugin_context_get_node_field  (WeftPluginContext *ctx, const char *field);

WeftRetryPolicy *weft_plugin_context_new_retry_policy (WeftPluginContext *ctx,
                                                       const WeftRetrySpec *spec);

/**
 * weft_plugin_context_add_upstream:
 * @ctx: the context
 * @name: the upstream's name
 * @host: a DNS name or an IP literal
 * @port: the port; 0 = the port each request was sent to (weft_request_get_port())
 * @error: return location
 *
 * An upstream of this generation that resolves @host through the system
 * resolver (search domains apply, as in a pod) every 5 s. When an upstream
 * named @name exists already it is returned. Call it from config_new,
 * config_add_document or config_finish.
 */
WeftUpstream   *weft_plugin_context_add_upstream    (WeftPluginContext *ctx, const char *name,
                                                     const char *host, guint16 port,
                                                     GError **error);

/**
 * WeftLbPolicy:
 * @WEFT_LB_ROUND_ROBIN: each endpoint in turn (the default)
 * @WEFT_LB_RANDOM: a uniformly random endpoint
 * @WEFT_LB_LEAST_REQUEST: the better of two random endpoints by outstanding
 *   requests times peak-EWMA latency
 * @WEFT_LB_RING_HASH: a consistent-hash ring on #WeftLbSpec.hash_on
 * @WEFT_LB_MAGLEV: a Maglev table on #WeftLbSpec.hash_on
 */
typedef enum {
  WEFT_LB_ROUND_ROBIN,
  WEFT_LB_RANDOM,
  WEFT_LB_LEAST_REQUEST,
  WEFT_LB_RING_HASH,
  WEFT_LB_MAGLEV,
} WeftLbPolicy;

/**
 * WeftHashOn:
 * @WEFT_HASH_ON_NONE: nothing: hash policies pick at random
 * @WEFT_HASH_ON_HEADER: the request header #WeftLbSpec.hash_key
 * @WEFT_HASH_ON_COOKIE: the cookie #WeftLbSpec.hash_key
 * @WEFT_HASH_ON_SOURCE_IP: the client's IP address
 */
typedef enum {
  WEFT_HASH_ON_NONE,
  WEFT_HASH_ON_HEADER,
  WEFT_HASH_ON_COOKIE,
  WEFT_HASH_ON_SOURCE_IP,
} WeftHashOn;

/**
 * WeftLbSpec:
 * @policy: the algorithm
 * @hash_on: what the hash policies hash
 * @hash_key: header or cookie name; copied
 * @table_size: ring entries (ring hash, default 1024) or Maglev table size
 *   (a prime, default 65537); 0 = default
 */
typedef struct {
  WeftLbPolicy  policy;
  WeftHashOn    hash_on;
  const char   *hash_key;
  guint         table_size;
} WeftLbSpec;

/**
 * WeftOutlierSpec:
 * @consecutive_5xx: 5xx answers (and gateway errors) in a row that eject
 *   an endpoint; 0 = off
 * @consecutive_gateway_errors: 502, 503, 504 answers and connect failures in
 *   a row that eject an endpoint; 0 = off
 * @base_ejection_ms: the first ejection's length; the n-th ejection of the
 *   same endpoint lasts n times as long; 0 = 30 s
 * @max_ejection_percent: at most this share of endpoints is ejected at once;
 *   0 = 10 (at least one endpoint can always be ejected)
 */
typedef struct {
  guint    consecutive_5xx;
  guint    consecutive_gateway_errors;
  guint64  base_ejection_ms;
  guint    max_ejection_percent;
} WeftOutlierSpec;

/**
 * WeftPoolSpec:
 * @connect_timeout_ms: 0 = the upstream's or the global connect timeout
 * @max_requests: requests in flight to the upstream from one worker at
 *   most; more get 503 with x-weft-error: upstream_overflow; 0 = no limit
 * @max_requests_per_connection: an upstream connection is closed after this
 *   many requests; 0 = no limit
 */
typedef struct {
  guint64  connect_timeout_ms;
  guint    max_requests;
  guint    max_requests_per_connection;
} WeftPoolSpec;

/**
 * weft_plugin_context_configure_upstream:
 * @ctx: the context
 * @upstream: an upstream of this generation
 * @lb: (nullable): the load balancer, or NULL to keep it
 * @outlier: (nullable): outlier detection, or NULL to keep it
 * @pool: (nullable): connection pool limits, or NULL to keep them
 * @error: return location
 *
 * Sets an upstream's traffic policy for this generation (an Istio
 * DestinationRule's trafficPolicy). Call it at config time only.
 */
gboolean        weft_plugin_context_configure_upstream (WeftPluginContext *ctx,
                                                        WeftUpstream *upstream,
                                                        const WeftLbSpec *lb,
                                                        const WeftOutlierSpec *outlier,
                                                        const WeftPoolSpec *pool,
                                                        GError **error);

/**
 * weft_plugin_context_register_metric:
 * @ctx: the context
 * @type: counter, gauge or histogram
 * @name: Prometheus family name
 * @help: HELP text
 * @label_names: (nullable): NULL-terminated label names
 * @buckets: (nullable): histogram upper bounds, ascending
 * @n_buckets: number of @buckets
 *
 * Registers a metric family, or returns the existing one of that name, so
 * values survive reloads.
 */
WeftMetric     *weft_plugin_context_register_metric (WeftPluginContext *ctx, WeftMetricType type,
                                                     const char *name, const char *help,
                                                     const char *const *label_names,
                                                     const double *buckets, guint n_buckets);

/**
 * weft_plugin_context_keep_state:
 * @ctx: the context
 * @key: a name unique within the plugin
 * @size: size of the state
 *
 * Memory that survives reloads: the first generation that asks gets zeroed
 * memory, later generations get the same block. Shared by all workers: use
 * g_atomic_* or weft_shared_lock() on it.
 */
gpointer        weft_plugin_context_keep_state      (WeftPluginContext *ctx, const char *key, gsize size);

/* a mutex shared by all workers for short critical sections; never hold it across I/O */
void            weft_shared_lock   (void);
void            weft_shared_unlock (void);

/* the index of the worker the calling hook runs on, or -1 on the main thread */
gint            weft_worker_get_index (void);
/* a timer on the calling worker's loop (or the main loop from the main thread) */
guint           weft_worker_timeout_add (guint interval_ms, GSourceFunc func, gpointer data);
/* removes a timer weft_worker_timeout_add() made, from the same thread
 * (g_source_remove() would look in the wrong context) */
void            weft_worker_timeout_remove (guint id);
/**
 * WeftFdFunc:
 * @fd: the file descriptor
 * @condition: what happened (G_IO_IN, G_IO_OUT, G_IO_ERR, G_IO_HUP)
 * @data: the data given to weft_worker_fd_add()
 *
 * Returns: %G_SOURCE_CONTINUE to keep watching, %G_SOURCE_REMOVE to stop
 */
typedef gboolean (*WeftFdFunc) (int fd, GIOCondition condition, gpointer data);

/* watches a non-blocking @fd on the calling worker's loop (or the main loop
 * from the main thread); returns a source id for weft_worker_fd_update()
 * and weft_worker_timeout_remove() */
guint           weft_worker_fd_add    (int fd, GIOCondition condition, WeftFdFunc func,
                                       gpointer data);
/* changes what weft_worker_fd_add() watches for, from the same thread */
void            weft_worker_fd_update (guint id, GIOCondition condition);
/* run @func on the main thread, which may block */
void            weft_main_invoke   (GSourceFunc func, gpointer data);

/* logging: one line on stderr, filtered by --log-level */
typedef enum {
  WEFT_LOG_ERROR,
  WEFT_LOG_WARNING,
  WEFT_LOG_INFO,
  WEFT_LOG_DEBUG,
} WeftLogLevel;

void            weft_log           (WeftLogLevel level, const char *domain,
                                    const char *format, ...) G_GNUC_PRINTF (3, 4);

/**
 * WeftLogLimit:
 *
 * A budget of log lines for one thread, so that a flood of events on a
 * worker never becomes a flood of writes. Declare it `static __thread`
 * (zero-initialised) beside the call site and ask weft_log_limit_allow()
 * before each line.
 */
typedef struct {
  gint64 window;
  guint  lines;
  guint  held_back;
} WeftLogLimit;

/**
 * weft_log_limit_allow:
 * @limit: the thread's budget
 * @lines: lines allowed per window
 * @window_s: the window's length in seconds (windows start at multiples of it)
 * @held_back: (out): lines refused in the window that just ended, else 0;
 *   the caller says so in a line of its own
 *
 * Returns: %TRUE when this line may be written
 */
gboolean        weft_log_limit_allow (WeftLogLimit *limit, guint lines, guint window_s,
                                      guint *held_back);

/**
 * WeftConnEvent:
 * @WEFT_CONN_OPENED: a client connection was accepted
 * @WEFT_CONN_CLOSED: it closed; the byte counts are final
 */
typedef enum {
  WEFT_CONN_OPENED,
  WEFT_CONN_CLOSED,
} WeftConnEvent;

/**
 * WeftConnInfo:
 * @peer_ip: the client's address as text
 * @peer_identity: (nullable): the verified SPIFFE ID of the client
 * @listener_name: the listener that accepted it
 * @direction: the listener's direction
 * @bytes_received: bytes read from the client so far
 * @bytes_sent: bytes written to the client so far
 * @duration_us: microseconds since it was accepted
 * @n_requests: requests it carried
 *
 * What a #WeftPluginDescriptor.connection_event callback is told.
 */
typedef struct {
  const char    *peer_ip;
  const char    *peer_identity;
  const char    *listener_name;
  WeftDirection  direction;
  guint64        bytes_received;
  guint64        bytes_sent;
  gint64         duration_us;
  guint          n_requests;
} WeftConnInfo;

typedef void (*WeftConnEventFunc) (gpointer instance, gpointer worker_data, WeftConnEvent event,
                                   const WeftConnInfo *info);

typedef WeftHookResult (*WeftHookFunc) (WeftRequest *req, gpointer instance, gpointer worker_data);

/**
 * WeftPluginDescriptor:
 * @abi_version: must be %WEFT_PLUGIN_ABI_VERSION
 * @struct_size: sizeof (WeftPluginDescriptor)
 * @name: the plugin's name: the key of its settings and what listeners list
 * @version: the plugin's own version, shown on admin /config
 * @description: one line
 * @document_kinds: (nullable): NULL-terminated "apiVersion/kind" strings of
 *   the YAML documents this plugin claims, such as
 *   "networking.istio.io/v1beta1/VirtualService"; "group/ * /Kind" with a
 *   literal "*" version matches every version
 * @config_new: parses the top-level settings (@node is NULL when there are
 *   none) into a generation-wide config object. Runs on the main thread.
 *   Returns NULL and sets @error (with weft_node_set_error()) on bad input.
 * @config_add_document: hands a claimed document to the config object.
 * @config_finish: (nullable): called after every document was added; may
 *   cross-check references.
 * @config_free: frees the config object.
 * @instance_new: creates the instance for one listener; @node holds the
 *   listener's settings under the plugin's name, or NULL.
 * @instance_free: frees an instance.
 * @worker_init: (nullable): per-worker data for one generation, called on
 *   the worker's thread before it serves a request of that generation.
 * @worker_fini: (nullable): frees per-worker data, on the worker's thread.
 * @hooks: one hook per #WeftPhase, each (nullable). A hook runs on a worker
 *   thread and must not block: no DNS, no file I/O, no lock held across I/O.
 *   @worker_data is what @worker_init returned for that worker.
 * @connection_event: (nullable): told when a client connection of a
 *   listener running the plugin opens and closes, on the worker's thread.
 *   Both go to the listener's instance in the configuration live at that
 *   moment, so after a reload a close may reach another instance than the
 *   open did (and none when the listener was removed).
 *
 * Everything a plugin tells weft. Unused callbacks are NULL.
 */
typedef struct {
  guint32        abi_version;
  guint32        struct_size;
  const char    *name;
  const char    *version;
  const char    *description;
  const char *const *document_kinds;

  gpointer (*config_new)          (WeftPluginContext *ctx, const WeftNode *node, GError **error);
  gboolean (*config_add_document) (gpointer config, const WeftNode *document, GError **error);
  gboolean (*config_finish)       (gpointer config, GError **error);
  void     (*config_free)         (gpointer config);

  gpointer (*instance_new)        (gpointer config, const WeftListenerInfo *listener,
                                   const WeftNode *node, GError **error);
  void     (*instance_free)       (gpointer instance);

  gpointer (*worker_init)         (gpointer config, guint worker_index);
  void     (*worker_fini)         (gpointer config, gpointer worker_data);

  WeftHookFunc   hooks[WEFT_PHASE_COUNT];
  WeftConnEventFunc connection_event;

  /*< private >*/
  gpointer       reserved[7];
} WeftPluginDescriptor;

typedef const WeftPluginDescriptor *(*WeftPluginGetDescriptorFunc) (void);

/**
 * WEFT_PLUGIN_DEFINE:
 * @descriptor: a static #WeftPluginDescriptor
 *
 * Defines the entry symbol. Use once per plugin.
 */
#define WEFT_PLUGIN_DEFINE(descriptor) \
  G_MODULE_EXPORT const WeftPluginDescriptor *weft_plugin_get_descriptor (void); \
  G_MODULE_EXPORT const WeftPluginDescriptor *weft_plugin_get_descriptor (void) { return &(descriptor); }

G_END_DECLS
