/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * probe: a test plugin that exercises every part of the host API, so the
 * end-to-end tests can prove the ABI works from a real .so.
 *
 *   probe:                       # top level
 *     upstreams: [a, b]          # upstreams x-probe-upstream may pick
 *   listeners:
 *     - ...
 *       plugins: [probe]
 *       probe:
 *         respond_path: /probe/local
 *   ---
 *   apiVersion: test.weft.dev/v1
 *   kind: Probe
 *   message: hi                  # echoed by the local answer
 */
#include <weft/plugin.h>
#include <string.h>

typedef struct {
  GHashTable  *upstreams;     /* name -> WeftUpstream* */
  char        *message;
  WeftMetric  *requests;
  gint        *hits;          /* kept across reloads */
  guint        slot;
} ProbeConfig;

typedef struct {
  ProbeConfig      *config;
  char             *respond_path;
  WeftMetricSeries *requests;
  char             *listener;
  WeftDirection     direction;
} ProbeInstance;

typedef struct {
  guint ticks;
  guint timer;
} ProbeWorker;

static gpointer
probe_config_new (WeftPluginContext *ctx, const WeftNode *node, GError **error)
{
  static const char *const keys[] = { "upstreams", NULL };
  static const char *const labels[] = { "listener", NULL };
  static const double buckets[] = { 0.001, 0.01, 0.1, 1 };
  ProbeConfig *config;
  const WeftNode *list;

  if (node != NULL && (!weft_node_expect_kind (node, WEFT_NODE_MAP, error) ||
                       !weft_node_check_keys (node, keys, error)))
    return NULL;
  config = g_new0 (ProbeConfig, 1);
  config->upstreams = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  list = node != NULL ? weft_node_lookup (node, "upstreams") : NULL;
  for (guint i = 0; list != NULL && i < weft_node_get_length (list); i++)
    {
      const char *name = weft_node_get_scalar (weft_node_get_item (list, i));
      WeftUpstream *up = name ? weft_plugin_context_lookup_upstream (ctx, name) : NULL;
      if (up == NULL)
        {
          weft_node_set_error (weft_node_get_item (list, i), error,
                               "probe: unknown upstream '%s'", name ? name : "");
          g_hash_table_unref (config->upstreams);
          g_free (config);
          return NULL;
        }
      g_hash_table_insert (config->upstreams, g_strdup (name), up);
    }
  config->requests = weft_plugin_context_register_metric (ctx, WEFT_METRIC_COUNTER,
      "weft_probe_requests_total", "Requests the probe plugin saw.", labels, NULL, 0);
  weft_plugin_context_register_metric (ctx, WEFT_METRIC_HISTOGRAM, "weft_probe_latency_seconds",
      "A histogram, to check the format.", NULL, buckets, G_N_ELEMENTS (buckets));
  config->hits = weft_plugin_context_keep_state (ctx, "hits", sizeof (gint));
  config->slot = weft_plugin_context_get_slot (ctx);
  config->message = g_strdup ("none");
  return config;
}

static gboolean
probe_config_add_document (gpointer data, const WeftNode *doc, GError **error)
{
  ProbeConfig *config = data;
  const WeftNode *msg = weft_node_lookup (doc, "message");
  const char *text;

  if (msg == NULL)
    {
      weft_node_set_error (doc, error, "probe: a Probe document needs a message");
      return FALSE;
    }
  if (!weft_node_get_string (msg, &text, error))
    return FALSE;
  g_free (config->message);
  config->message = g_strdup (text);
  return TRUE;
}

static void
probe_config_free (gpointer data)
{
  ProbeConfig *config = data;

  g_hash_table_unref (config->upstreams);
  g_free (config->message);
  g_free (config);
}

static gpointer
probe_instance_new (gpointer data, const WeftListenerInfo *listener, const WeftNode *node,
                    GError **error)
{
  static const char *const keys[] = { "respond_path", NULL };
  ProbeConfig *config = data;
  ProbeInstance *inst;
  const char *path = "/probe/local";
  const WeftNode *v;
  const char *values[] = { listener->name, NULL };

  if (node != NULL && (!weft_node_expect_kind (node, WEFT_NODE_MAP, error) ||
                       !weft_node_check_keys (node, keys, error)))
    return NULL;
  v = node != NULL ? weft_node_lookup (node, "respond_path") : NULL;
  if (v != NULL && !weft_node_get_string (v, &path, error))
    return NULL;
  inst = g_new0 (ProbeInstance, 1);
  inst->config = config;
  inst->respond_path = g_strdup (path);
  inst->listener = g_strdup (listener->name);
  inst->direction = listener->direction;
  inst->requests = weft_metric_get_series (config->requests, values);
  return inst;
}

static void
probe_instance_free (gpointer data)
{
  ProbeInstance *inst = data;

  g_free (inst->respond_path);
  g_free (inst->listener);
  g_free (inst);
}

static gboolean
probe_tick (gpointer data)
{
  ProbeWorker *pw = data;

  pw->ticks++;
  return G_SOURCE_CONTINUE;
}

static gpointer
probe_worker_init (gpointer config, guint worker_index)
{
  ProbeWorker *pw = g_new0 (ProbeWorker, 1);

  (void) config;
  (void) worker_index;
  pw->timer = weft_worker_timeout_add (20, probe_tick, pw);
  return pw;
}

static void
probe_worker_fini (gpointer config, gpointer data)
{
  ProbeWorker *pw = data;

  (void) config;
  weft_worker_timeout_remove (pw->timer);
  g_free (pw);
}

static WeftHookResult
probe_route (WeftRequest *req, gpointer data, gpointer worker_data)
{
  ProbeInstance *inst = data;
  const char *want = weft_request_get_header (req, "x-probe-upstream");
  WeftUpstream *up;

  (void) worker_data;
  if (want == NULL)
    return WEFT_HOOK_CONTINUE;
  up = g_hash_table_lookup (inst->config->upstreams, want);
  if (up != NULL)
    weft_request_set_upstream (req, up);
  return WEFT_HOOK_CONTINUE;
}

static WeftHookResult
probe_pre_access (WeftRequest *req, gpointer data, gpointer worker_data)
{
  ProbeInstance *inst = data;

  (void) worker_data;
  /* per-request data, read back in the response phase */
  weft_request_set_data (req, inst->config->slot, weft_request_strdup (req, "kept"));
  weft_request_set_header (req, "x-probe-seen", "yes");
  weft_request_remove_header (req, "x-probe-secret");
  return WEFT_HOOK_CONTINUE;
}

static WeftHookResult
probe_access (WeftRequest *req, gpointer data, gpointer worker_data)
{
  ProbeInstance *inst = data;
  ProbeWorker *pw = worker_data;
  char body[512];
  gint hits;

  if (strcmp (weft_request_get_path (req), inst->respond_path) != 0)
    return WEFT_HOOK_CONTINUE;
  hits = g_atomic_int_add (inst->config->hits, 1) + 1;
  g_snprintf (body, sizeof body,
              "message=%s hits=%d listener=%s direction=%s peer=%s worker=%d ticks=%u id=%s\n",
              inst->config->message, hits, weft_request_get_listener_name (req),
              weft_request_get_direction (req) == WEFT_DIRECTION_OUTBOUND ? "outbound" : "inbound",
              weft_request_get_peer_ip (req), weft_worker_get_index (), pw ? pw->ticks : 0,
              weft_request_get_request_id (req));
  weft_request_add_response_header (req, "x-probe-local", "1");
  weft_request_respond (req, 200, "text/plain", body, -1);
  return WEFT_HOOK_RESPOND;
}

static WeftHookResult
probe_response (WeftRequest *req, gpointer data, gpointer worker_data)
{
  ProbeInstance *inst = data;
  const char *kept = weft_request_get_data (req, inst->config->slot);

  (void) worker_data;
  weft_request_set_response_header (req, "x-probe-data", kept ? kept : "lost");
  weft_request_set_response_header (req, "x-probe-status",
                                    weft_request_get_status (req) == 200 ? "200" : "other");
  weft_request_remove_response_header (req, "x-backend-secret");
  return WEFT_HOOK_CONTINUE;
}

static WeftHookResult
probe_log (WeftRequest *req, gpointer data, gpointer worker_data)
{
  ProbeInstance *inst = data;

  (void) worker_data;
  (void) req;
  weft_metric_series_add (inst->requests, 1);
  return WEFT_HOOK_CONTINUE;
}

static const char *const probe_kinds[] = { "test.weft.dev/v1/Probe", NULL };

static const WeftPluginDescriptor probe_descriptor = {
  .abi_version = WEFT_PLUGIN_ABI_VERSION,
  .struct_size = sizeof (WeftPluginDescriptor),
  .name = "probe",
  .version = "1.0.0",
  .description = "exercises the host API for the end-to-end tests",
  .document_kinds = probe_kinds,
  .config_new = probe_config_new,
  .config_add_document = probe_config_add_document,
  .config_free = probe_config_free,
  .instance_new = probe_instance_new,
  .instance_free = probe_instance_free,
  .worker_init = probe_worker_init,
  .worker_fini = probe_worker_fini,
  .hooks = {
    [WEFT_PHASE_ROUTE] = probe_route,
    [WEFT_PHASE_PRE_ACCESS] = probe_pre_access,
    [WEFT_PHASE_ACCESS] = probe_access,
    [WEFT_PHASE_RESPONSE] = probe_response,
    [WEFT_PHASE_LOG] = probe_log,
  },
};

WEFT_PLUGIN_DEFINE (probe_descriptor)
