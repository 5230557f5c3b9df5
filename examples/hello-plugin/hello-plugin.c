/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * hello: a sample weft plugin. Adds "x-hello: <greeting>" to every upstream
 * response and counts the responses it greeted.
 *
 *   hello:                 # top level: the default for every listener
 *     greeting: hi
 *   listeners:
 *     - name: inbound
 *       address: 0.0.0.0:15006
 *       upstream: app
 *       plugins: [hello]
 *       hello:             # per listener: overrides the top level
 *         greeting: bonjour
 *
 * The greeting defaults to "hello".
 */
#include <weft/plugin.h>
#include <string.h>

typedef struct {
  char       *greeting;     /* the top-level greeting */
  WeftMetric *responses;    /* weft_hello_responses_total{listener} */
} HelloConfig;

typedef struct {
  char             *greeting;
  WeftMetricSeries *responses;
} HelloInstance;

/* Reads "{greeting: ...}" from @node into @greeting (left alone when the
 * node or the key is absent). Errors carry the node's file:line:col. */
static gboolean
parse_settings (const WeftNode *node, const char **greeting, GError **error)
{
  static const char *const keys[] = { "greeting", NULL };
  const WeftNode *value;
  const char *text;

  if (node == NULL || weft_node_is_null (node))
    return TRUE;
  if (!weft_node_expect_kind (node, WEFT_NODE_MAP, error) ||
      !weft_node_check_keys (node, keys, error))
    return FALSE;

  value = weft_node_lookup (node, "greeting");
  if (value == NULL)
    return TRUE;
  if (!weft_node_get_string (value, &text, error))
    return FALSE;
  if (*text == '\0')
    {
      weft_node_set_error (value, error, "hello: greeting must not be empty");
      return FALSE;
    }
  /* it goes into a header value: printable ASCII only */
  for (const guchar *p = (const guchar *) text; *p != '\0'; p++)
    if (*p < 0x20 || *p > 0x7e)
      {
        weft_node_set_error (value, error,
                             "hello: greeting must be printable ASCII");
        return FALSE;
      }
  *greeting = text;
  return TRUE;
}

/* control side: main thread, once per configuration generation */

static gpointer
hello_config_new (WeftPluginContext *ctx, const WeftNode *node, GError **error)
{
  static const char *const labels[] = { "listener", NULL };
  const char *greeting = "hello";
  HelloConfig *config;

  if (!parse_settings (node, &greeting, error))
    return NULL;

  config = g_new0 (HelloConfig, 1);
  /* node strings live only during the callback: copy */
  config->greeting = g_strdup (greeting);
  /* returns the existing family on reload, so counts carry over */
  config->responses = weft_plugin_context_register_metric (ctx, WEFT_METRIC_COUNTER,
      "weft_hello_responses_total", "Responses the hello plugin greeted.",
      labels, NULL, 0);
  return config;
}

static void
hello_config_free (gpointer data)
{
  HelloConfig *config = data;

  g_free (config->greeting);
  g_free (config);
}

static gpointer
hello_instance_new (gpointer data, const WeftListenerInfo *listener,
                    const WeftNode *node, GError **error)
{
  HelloConfig *config = data;
  const char *greeting = config->greeting;
  const char *label_values[] = { listener->name, NULL };
  HelloInstance *inst;

  if (!parse_settings (node, &greeting, error))
    return NULL;

  inst = g_new0 (HelloInstance, 1);
  inst->greeting = g_strdup (greeting);
  /* resolve the series now: updating it in the hook is then lock-free */
  inst->responses = weft_metric_get_series (config->responses, label_values);
  return inst;
}

static void
hello_instance_free (gpointer data)
{
  HelloInstance *inst = data;

  g_free (inst->greeting);
  g_free (inst);
}

/* data side: a worker thread; must not block */

static WeftHookResult
hello_response (WeftRequest *req, gpointer instance, gpointer worker_data)
{
  HelloInstance *inst = instance;

  weft_request_set_response_header (req, "x-hello", inst->greeting);
  weft_metric_series_add (inst->responses, 1);
  return WEFT_HOOK_CONTINUE;
}

static const WeftPluginDescriptor hello_descriptor = {
  .abi_version   = WEFT_PLUGIN_ABI_VERSION,
  .struct_size   = sizeof (WeftPluginDescriptor),
  .name          = "hello",
  .version       = "1.0.0",
  .description   = "adds an x-hello response header",
  .config_new    = hello_config_new,
  .config_free   = hello_config_free,
  .instance_new  = hello_instance_new,
  .instance_free = hello_instance_free,
  .hooks = {
    [WEFT_PHASE_RESPONSE] = hello_response,
  },
};

WEFT_PLUGIN_DEFINE (hello_descriptor)
