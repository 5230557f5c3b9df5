/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WeftConfig: reads a YAML file or a directory of them, merges every plain
 * document into one configuration, then validates it. Problems are collected
 * rather than stopping at the first, so one failed reload shows them all.
 */

#include "weft-config-private.h"
#include "weft-spiffe-private.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <gio/gio.h>
#include <glib/gi18n.h>

#define WEFT_CONFIG_MAX_WORKERS 1024
#define WEFT_CONFIG_NAME_CHARS "abcdefghijklmnopqrstuvwxyz0123456789_.-"

/* top-level keys that may appear in one document only */
static const char *const weft_config_sections[] = {
  "node", "admin", "workers", "plugin_dirs", "timeouts", "limits", "tls", NULL
};

static const char *const weft_config_tls_keys[] = {
  "cert", "key", "bundle", "expiry_warning", NULL
};

static const char *const weft_config_listener_tls_keys[] = { "mode", "ports", NULL };

static const char *const weft_config_upstream_tls_keys[] = { "mode", "spiffe_ids", "sni", NULL };

/* listener tls.mode values, in WeftTlsMode order */
static const char *const weft_config_tls_modes[] = { "DISABLE", "PERMISSIVE", "STRICT", NULL };

static const char *const weft_config_node_keys[] = {
  "service", "workload", "namespace", "pod", "service_account", "trust_domain", "cluster",
  "labels", NULL
};

static const char *const weft_config_admin_keys[] = { "address", NULL };

static const char *const weft_config_limit_keys[] = {
  "max_request_line", "max_request_headers", "max_headers", "max_request_body",
  "min_request_body_rate", NULL
};

static const char *const weft_config_timeout_keys[] = {
  "connect", "request_header", "client_idle", "request_body", "upstream_idle", "request",
  "response_idle", "drain", NULL
};

static const char *const weft_config_upstream_keys[] = {
  "name", "endpoints", "dns_refresh", "health", "timeouts", "load_balancer",
  "outlier_detection", "connection_pool", "tls", NULL
};

static const char *const weft_config_lb_keys[] = { "policy", "hash_on", "table_size", NULL };

static const char *const weft_config_hash_on_keys[] = { "header", "cookie", "source_ip", NULL };

static const char *const weft_config_outlier_keys[] = {
  "consecutive_5xx", "consecutive_gateway_errors", "base_ejection_time", "max_ejection_percent",
  NULL
};

static const char *const weft_config_pool_keys[] = {
  "max_requests", "max_requests_per_connection", NULL
};

/* load_balancer.policy values, in WeftLbPolicy order */
static const char *const weft_config_lb_policies[] = {
  "round_robin", "random", "least_request", "ring_hash", "maglev", NULL
};

#define WEFT_CONFIG_RING_MAX       1048576u
#define WEFT_CONFIG_MAGLEV_MAX     5000011u
#define WEFT_CONFIG_MAX_COUNT      1000000u

static const char *const weft_config_health_keys[] = { "unhealthy_after", "backoff", NULL };

static const char *const weft_config_upstream_timeout_keys[] = { "connect", NULL };

/* listener keys weft reads itself; any other key is a plugin's settings */
static const char *const weft_config_listener_keys[] = {
  "name", "address", "direction", "upstream", "plugins", "timeouts", "tls", "max_connections",
  NULL
};

typedef struct
{
  const char *key;
  gsize       offset;
  gboolean    zero_ok;
} WeftConfigTimeoutField;

static const WeftConfigTimeoutField weft_config_timeout_fields[] = {
  { "connect", G_STRUCT_OFFSET (WeftTimeouts, connect_ms), FALSE },
  { "request_header", G_STRUCT_OFFSET (WeftTimeouts, request_header_ms), FALSE },
  { "client_idle", G_STRUCT_OFFSET (WeftTimeouts, client_idle_ms), FALSE },
  { "request_body", G_STRUCT_OFFSET (WeftTimeouts, request_body_ms), FALSE },
  { "upstream_idle", G_STRUCT_OFFSET (WeftTimeouts, upstream_idle_ms), FALSE },
  { "request", G_STRUCT_OFFSET (WeftTimeouts, request_ms), TRUE },
  { "response_idle", G_STRUCT_OFFSET (WeftTimeouts, response_idle_ms), FALSE },
  { "drain", G_STRUCT_OFFSET (WeftTimeouts, drain_ms), FALSE },
};

/* node: fields and the environment variables they default from */
static const struct
{
  const char *field;
  const char *env;
} weft_config_node_env[] = {
  { "service", "WEFT_SERVICE" },
  { "workload", "WEFT_WORKLOAD" },
  { "namespace", "POD_NAMESPACE" },
  { "pod", "POD_NAME" },
  { "service_account", "SERVICE_ACCOUNT" },
  { "trust_domain", "WEFT_TRUST_DOMAIN" },
  { "cluster", "WEFT_CLUSTER" },
  { "label.app", "WEFT_LABEL_APP" },
  { "label.version", "WEFT_LABEL_VERSION" },
};

typedef struct
{
  WeftConfig  *config;          /* not owned */
  GPtrArray   *problems;        /* char*, "file:line:col: message" */
  GHashTable  *section_keys;    /* section -> key node of its definition */
  GHashTable  *section_values;  /* section -> value node */
  GHashTable  *plugin_keys;     /* plugin name -> key node of its settings */
  GPtrArray   *listener_nodes;  /* every listener item, in read order */
  GPtrArray   *upstream_nodes;  /* every upstream item, in read order */
  GHashTable  *upstream_names;  /* name -> name node of the first definition */
  GHashTable  *listener_names;  /* name -> name node of the first definition */
  GHashTable  *listener_addrs;  /* canonical host:port -> WeftListenerConfig* */
} WeftConfigLoader;

/* ------------------------------------------------------------------ */
/* freeing                                                             */
/* ------------------------------------------------------------------ */

static void weft_config_endpoint_free (WeftEndpointConfig *endpoint);
static void weft_config_upstream_tls (WeftConfigLoader *l, WeftUpstreamConfig *upstream);
static const WeftNode *weft_config_section (WeftConfigLoader *l, const char *name);

/* an upstream with the documented defaults, appended to @config */
static WeftUpstreamConfig *
weft_config_upstream_new (WeftConfig *config, const WeftNode *node)
{
  WeftUpstreamConfig *upstream = g_new0 (WeftUpstreamConfig, 1);

  upstream->node = node;
  upstream->endpoints = g_ptr_array_new_with_free_func ((GDestroyNotify) weft_config_endpoint_free);
  upstream->dns_refresh_ms = 5000;
  upstream->unhealthy_after = 3;
  upstream->unhealthy_backoff_ms = 5000;
  g_ptr_array_add (config->upstreams, upstream);
  return upstream;
}

WeftUpstreamConfig *
weft_config_add_upstream (WeftConfig *config, const char *name, const char *host, guint16 port)
{
  WeftUpstreamConfig *upstream = weft_config_upstream_new (config, NULL);
  WeftEndpointConfig *ec = g_new0 (WeftEndpointConfig, 1);

  upstream->name = g_strdup (name);
  ec->host = g_strdup (host);
  ec->port = port;
  ec->is_ip = g_hostname_is_ip_address (host);
  g_ptr_array_add (upstream->endpoints, ec);
  return upstream;
}

static void
weft_config_endpoint_free (WeftEndpointConfig *endpoint)
{
  g_free (endpoint->host);
  g_free (endpoint);
}

static void
weft_config_upstream_free (WeftUpstreamConfig *upstream)
{
  g_free (upstream->hash_key);
  g_free (upstream->name);
  g_strfreev (upstream->tls_spiffe_ids);
  g_free (upstream->tls_sni);
  g_ptr_array_unref (upstream->endpoints);
  g_free (upstream);
}

static void
weft_config_listener_free (WeftListenerConfig *listener)
{
  g_free (listener->name);
  g_free (listener->address);
  g_free (listener->host);
  g_free (listener->upstream);
  g_ptr_array_unref (listener->plugins);
  g_hash_table_unref (listener->plugin_nodes);
  g_clear_pointer (&listener->tls_ports, g_array_unref);
  g_free (listener);
}

static void
weft_config_source_free (WeftConfigSource *source)
{
  g_free (source->path);
  g_free (source->sha256);
  g_free (source);
}

static void
weft_config_document_free (WeftConfigDocument *document)
{
  g_free (document->api_version);
  g_free (document->kind);
  g_free (document->name);
  g_free (document);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (WeftEndpointConfig, weft_config_endpoint_free)

void
weft_config_free (WeftConfig *config)
{
  if (config == NULL)
    return;
  g_ptr_array_unref (config->listeners);
  g_ptr_array_unref (config->upstreams);
  g_ptr_array_unref (config->documents);
  g_hash_table_unref (config->plugin_nodes);
  g_hash_table_unref (config->node_fields);
  g_ptr_array_unref (config->plugin_dirs);
  g_ptr_array_unref (config->sources);
  g_free (config->admin_address);
  if (config->tls != NULL)
    {
      g_free (config->tls->cert);
      g_free (config->tls->key);
      g_free (config->tls->bundle);
      g_free (config->tls);
    }
  /* last: every node above points into these */
  g_ptr_array_unref (config->files);
  g_free (config);
}

static void
weft_config_loader_free (WeftConfigLoader *l)
{
  g_ptr_array_unref (l->problems);
  g_hash_table_unref (l->section_keys);
  g_hash_table_unref (l->section_values);
  g_hash_table_unref (l->plugin_keys);
  g_ptr_array_unref (l->listener_nodes);
  g_ptr_array_unref (l->upstream_nodes);
  g_hash_table_unref (l->upstream_names);
  g_hash_table_unref (l->listener_names);
  g_hash_table_unref (l->listener_addrs);
  g_free (l);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (WeftConfigLoader, weft_config_loader_free)

static WeftConfig *
weft_config_new (void)
{
  WeftConfig *config = g_new0 (WeftConfig, 1);

  config->files = g_ptr_array_new_with_free_func ((GDestroyNotify) weft_node_file_free);
  config->sources = g_ptr_array_new_with_free_func ((GDestroyNotify) weft_config_source_free);
  config->admin_address = g_strdup ("127.0.0.1:15000");
  config->plugin_dirs = g_ptr_array_new_with_free_func (g_free);
  config->timeouts = (WeftTimeouts) {
    .connect_ms = 5000,
    .request_header_ms = 10000,
    .client_idle_ms = 60000,
    .request_body_ms = 20000,
    .upstream_idle_ms = 4000,
    .request_ms = 15000,
    .response_idle_ms = 300000,
    .drain_ms = 30000,
  };
  config->limits = (WeftLimits) {
    .max_request_line = 8192,
    .max_head = 16384,
    .max_headers = 100,
    .max_body = 0,
    .min_body_rate = 500,
  };
  config->node_fields = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  config->listeners = g_ptr_array_new_with_free_func ((GDestroyNotify) weft_config_listener_free);
  config->upstreams = g_ptr_array_new_with_free_func ((GDestroyNotify) weft_config_upstream_free);
  config->plugin_nodes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  config->documents = g_ptr_array_new_with_free_func ((GDestroyNotify) weft_config_document_free);
  return config;
}

static WeftConfigLoader *
weft_config_loader_new (WeftConfig *config)
{
  WeftConfigLoader *l = g_new0 (WeftConfigLoader, 1);

  l->config = config;
  l->problems = g_ptr_array_new_with_free_func (g_free);
  l->section_keys = g_hash_table_new (g_str_hash, g_str_equal);
  l->section_values = g_hash_table_new (g_str_hash, g_str_equal);
  l->plugin_keys = g_hash_table_new (g_str_hash, g_str_equal);
  l->listener_nodes = g_ptr_array_new ();
  l->upstream_nodes = g_ptr_array_new ();
  l->upstream_names = g_hash_table_new (g_str_hash, g_str_equal);
  l->listener_names = g_hash_table_new (g_str_hash, g_str_equal);
  l->listener_addrs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  return l;
}

/* ------------------------------------------------------------------ */
/* problems                                                            */
/* ------------------------------------------------------------------ */

static gboolean
weft_config_note (WeftConfigLoader *l, const GError *error)
{
  g_ptr_array_add (l->problems, g_strdup (error->message));
  return FALSE;
}

static gboolean weft_config_problem (WeftConfigLoader *l, const WeftNode *node,
                                     const char *format, ...) G_GNUC_PRINTF (3, 4);

static gboolean
weft_config_problem (WeftConfigLoader *l, const WeftNode *node, const char *format, ...)
{
  va_list args;
  g_autoptr(GError) error = NULL;

  va_start (args, format);
  g_autofree char *message = g_strdup_vprintf (format, args);
  va_end (args);
  weft_node_set_error (node, &error, "%s", message);
  return weft_config_note (l, error);
}

static char *
weft_config_position (const WeftNode *node)
{
  return g_strdup_printf ("%s:%u:%u", weft_node_get_file (node), weft_node_get_line (node),
                          weft_node_get_column (node));
}

/* ------------------------------------------------------------------ */
/* addresses and names                                                 */
/* ------------------------------------------------------------------ */

static gboolean
weft_config_parse_port (const char *text, guint16 *port)
{
  gsize len = strlen (text);
  guint value = 0;

  if (len == 0 || len > 5 || strspn (text, "0123456789") != len)
    return FALSE;
  value = (guint) g_ascii_strtoull (text, NULL, 10);
  if (value < 1 || value > 65535)
    return FALSE;
  *port = (guint16) value;
  return TRUE;
}

/* "[v6]:port": brackets are for IPv6 literals only */
static char *
weft_config_split_bracketed (const char *address, const char **port_text)
{
  const char *close = strchr (address, ']');

  if (close == NULL || close == address + 1 || close[1] != ':')
    return NULL;

  g_autofree char *host = g_strndup (address + 1, (gsize) (close - address - 1));
  if (strchr (host, ':') == NULL)
    return NULL;
  *port_text = close + 2;
  return g_steal_pointer (&host);
}

/* "host:port" where host has no colon: unbracketed IPv6 is ambiguous */
static char *
weft_config_split_plain (const char *address, const char **port_text)
{
  const char *colon = strchr (address, ':');

  if (colon == NULL || colon == address || strchr (colon + 1, ':') != NULL)
    return NULL;
  *port_text = colon + 1;
  return g_strndup (address, (gsize) (colon - address));
}

gboolean
weft_config_split_host_port (const char *address, char **host, guint16 *port)
{
  const char *port_text = NULL;
  guint16 value = 0;

  g_return_val_if_fail (address != NULL, FALSE);

  g_autofree char *h = address[0] == '['
                       ? weft_config_split_bracketed (address, &port_text)
                       : weft_config_split_plain (address, &port_text);
  if (h == NULL || !weft_config_parse_port (port_text, &value))
    return FALSE;
  if (host != NULL)
    *host = g_steal_pointer (&h);
  if (port != NULL)
    *port = value;
  return TRUE;
}

static gboolean
weft_config_label_valid (const char *label, gsize len)
{
  if (len == 0 || len > 63 || label[0] == '-' || label[len - 1] == '-')
    return FALSE;
  for (gsize i = 0; i < len; i++)
    {
      if (!g_ascii_isalnum (label[i]) && label[i] != '-')
        return FALSE;
    }
  return TRUE;
}

/* RFC 1123 host name; a trailing dot (absolute name) is fine */
static gboolean
weft_config_hostname_valid (const char *host)
{
  gsize len = strlen (host);

  if (len > 0 && host[len - 1] == '.')
    len--;
  if (len == 0 || len > 253)
    return FALSE;

  g_autofree char *name = g_strndup (host, len);
  g_auto(GStrv) labels = g_strsplit (name, ".", -1);
  guint n = g_strv_length (labels);
  for (guint i = 0; i < n; i++)
    {
      if (!weft_config_label_valid (labels[i], strlen (labels[i])))
        return FALSE;
    }
  /* an all-numeric last label is a mistyped IPv4 address, not a name */
  return strspn (labels[n - 1], "0123456789") != strlen (labels[n - 1]);
}

static gboolean
weft_config_name_valid (const char *name)
{
  return name[0] != '\0' && strspn (name, WEFT_CONFIG_NAME_CHARS) == strlen (name);
}

/* "ip:port" with the IP in its canonical spelling, so ::1 and 0::1 collide */
static char *
weft_config_canonical_address (const char *host, guint16 port)
{
  g_autoptr(GInetAddress) inet = g_inet_address_new_from_string (host);
  g_autofree char *canonical = inet != NULL ? g_inet_address_to_string (inet) : g_strdup (host);

  if (strchr (canonical, ':') != NULL)
    return g_strdup_printf ("[%s]:%u", canonical, port);
  return g_strdup_printf ("%s:%u", canonical, port);
}

/* ------------------------------------------------------------------ */
/* typed values: each notes its own problem and leaves *out alone;     */
/* an empty value (~, null or nothing) counts as absent                */
/* ------------------------------------------------------------------ */

/* FALSE for an empty section (its defaults apply) or one that is not a map */
static gboolean
weft_config_check_keys (WeftConfigLoader *l, const WeftNode *node, const char *const *keys)
{
  g_autoptr(GError) error = NULL;

  if (weft_node_is_null (node))
    return FALSE;
  if (!weft_node_check_keys (node, keys, &error))
    weft_config_note (l, error);
  return weft_node_get_kind (node) == WEFT_NODE_MAP;
}

static const char *
weft_config_get_string (WeftConfigLoader *l, const WeftNode *map, const char *key)
{
  const WeftNode *value = weft_node_lookup (map, key);
  g_autoptr(GError) error = NULL;
  const char *text = NULL;

  if (weft_node_is_null (value))
    return NULL;
  if (!weft_node_get_string (value, &text, &error))
    weft_config_note (l, error);
  return text;
}

static const char *
weft_config_require_string (WeftConfigLoader *l, const WeftNode *map, const char *what,
                            const char *key)
{
  if (weft_node_is_null (weft_node_lookup (map, key)))
    {
      weft_config_problem (l, map, _("%s is missing '%s'"), what, key);
      return NULL;
    }
  return weft_config_get_string (l, map, key);
}

static void
weft_config_get_duration (WeftConfigLoader *l, const WeftNode *map, const char *key,
                          gboolean zero_ok, guint64 *out)
{
  const WeftNode *value = weft_node_lookup (map, key);
  g_autoptr(GError) error = NULL;
  guint64 ms = 0;

  if (weft_node_is_null (value))
    return;
  if (!weft_node_get_duration (value, &ms, &error))
    {
      weft_config_note (l, error);
      return;
    }
  if (ms == 0 && !zero_ok)
    {
      weft_config_problem (l, value, _("'%s' must be greater than zero"), key);
      return;
    }
  *out = ms;
}

static void
weft_config_get_uint (WeftConfigLoader *l, const WeftNode *map, const char *key,
                      guint min, guint max, guint *out)
{
  const WeftNode *value = weft_node_lookup (map, key);
  g_autoptr(GError) error = NULL;
  guint64 n = 0;

  if (weft_node_is_null (value))
    return;
  if (!weft_node_get_uint64 (value, &n, &error))
    {
      weft_config_note (l, error);
      return;
    }
  if (n < min || n > max)
    {
      weft_config_problem (l, value, _("'%s' must be between %u and %u"), key, min, max);
      return;
    }
  *out = (guint) n;
}

static void
weft_config_get_size (WeftConfigLoader *l, const WeftNode *map, const char *key,
                      guint64 min, guint64 max, guint64 *out)
{
  const WeftNode *value = weft_node_lookup (map, key);
  g_autoptr(GError) error = NULL;
  guint64 n = 0;

  if (weft_node_is_null (value))
    return;
  if (!weft_node_get_size (value, &n, &error))
    {
      weft_config_note (l, error);
      return;
    }
  if (n < min || n > max)
    {
      g_autofree char *low = g_strdup_printf ("%" G_GUINT64_FORMAT, min);
      g_autofree char *high = g_strdup_printf ("%" G_GUINT64_FORMAT, max);
      weft_config_problem (l, value, _("'%s' must be between %s and %s bytes"), key, low, high);
      return;
    }
  *out = n;
}

/* ------------------------------------------------------------------ */
/* global sections                                                     */
/* ------------------------------------------------------------------ */

static void
weft_config_parse_labels (WeftConfigLoader *l, const WeftNode *labels)
{
  g_autoptr(GError) error = NULL;

  if (weft_node_is_null (labels))
    return;
  if (!weft_node_expect_kind (labels, WEFT_NODE_MAP, &error))
    {
      weft_config_note (l, error);
      return;
    }
  for (guint i = 0; i < weft_node_get_length (labels); i++)
    {
      const char *key = weft_node_get_scalar (weft_node_get_key (labels, i));
      const char *value = weft_config_get_string (l, labels, key);
      if (value != NULL)
        g_hash_table_insert (l->config->node_fields, g_strconcat ("label.", key, NULL),
                             g_strdup (value));
    }
}

static void
weft_config_parse_node (WeftConfigLoader *l, const WeftNode *node)
{
  if (!weft_config_check_keys (l, node, weft_config_node_keys))
    return;
  weft_config_parse_labels (l, weft_node_lookup (node, "labels"));
  /* every key but the last one, labels */
  for (gsize i = 0; weft_config_node_keys[i + 1] != NULL; i++)
    {
      const char *field = weft_config_node_keys[i];
      const char *value = weft_config_get_string (l, node, field);
      if (value != NULL)
        g_hash_table_insert (l->config->node_fields, g_strdup (field), g_strdup (value));
    }
}

/* node fields not given in node: come from the environment */
static void
weft_config_node_defaults (WeftConfig *config)
{
  for (gsize i = 0; i < G_N_ELEMENTS (weft_config_node_env); i++)
    {
      const char *field = weft_config_node_env[i].field;
      const char *value = g_getenv (weft_config_node_env[i].env);
      if (value == NULL || *value == '\0' || g_hash_table_contains (config->node_fields, field))
        continue;
      g_hash_table_insert (config->node_fields, g_strdup (field), g_strdup (value));
    }
  if (!g_hash_table_contains (config->node_fields, "trust_domain"))
    g_hash_table_insert (config->node_fields, g_strdup ("trust_domain"),
                         g_strdup ("cluster.local"));
}

/* an IP literal and port, as listeners and admin bind to */
static gboolean
weft_config_parse_bind_address (WeftConfigLoader *l, const WeftNode *map, const char *what,
                                char **host, guint16 *port)
{
  const WeftNode *node = weft_node_lookup (map, "address");
  const char *text = weft_config_get_string (l, map, "address");
  g_autofree char *h = NULL;

  if (text == NULL)
    return FALSE;
  if (!weft_config_split_host_port (text, &h, port) || !g_hostname_is_ip_address (h))
    return weft_config_problem (l, node,
                                _("invalid %s address '%s' (expected an IP address and a port, "
                                  "e.g. 127.0.0.1:15006 or [::1]:15006)"), what, text);
  *host = g_steal_pointer (&h);
  return TRUE;
}

static void
weft_config_parse_admin (WeftConfigLoader *l, const WeftNode *node)
{
  g_autofree char *host = NULL;
  guint16 port = 0;

  if (!weft_config_check_keys (l, node, weft_config_admin_keys))
    return;
  if (!weft_config_parse_bind_address (l, node, _("admin"), &host, &port))
    return;
  g_free (l->config->admin_address);
  l->config->admin_address = g_strdup (weft_node_get_scalar (weft_node_lookup (node, "address")));
}

static void
weft_config_parse_workers (WeftConfigLoader *l, const WeftNode *value)
{
  g_autoptr(GError) error = NULL;
  guint64 n = 0;

  if (weft_node_is_null (value))
    return;
  if (!weft_node_get_uint64 (value, &n, &error))
    {
      weft_config_note (l, error);
      return;
    }
  if (n > WEFT_CONFIG_MAX_WORKERS)
    {
      weft_config_problem (l, value, _("'workers' must be at most %u"), WEFT_CONFIG_MAX_WORKERS);
      return;
    }
  l->config->workers = (guint) n;
}

static void
weft_config_parse_plugin_dirs (WeftConfigLoader *l, const WeftNode *node)
{
  g_autoptr(GError) error = NULL;

  if (weft_node_is_null (node))
    return;
  if (!weft_node_expect_kind (node, WEFT_NODE_SEQ, &error))
    {
      weft_config_note (l, error);
      return;
    }
  for (guint i = 0; i < weft_node_get_length (node); i++)
    {
      g_autoptr(GError) item_error = NULL;
      const WeftNode *item = weft_node_get_item (node, i);
      const char *dir = NULL;

      if (!weft_node_get_string (item, &dir, &item_error))
        weft_config_note (l, item_error);
      else if (*dir == '\0')
        weft_config_problem (l, item, _("a plugin directory must not be empty"));
      else
        g_ptr_array_add (l->config->plugin_dirs, g_strdup (dir));
    }
}

static void
weft_config_parse_timeouts (WeftConfigLoader *l, const WeftNode *node, WeftTimeouts *timeouts)
{
  if (!weft_config_check_keys (l, node, weft_config_timeout_keys))
    return;
  for (gsize i = 0; i < G_N_ELEMENTS (weft_config_timeout_fields); i++)
    {
      const WeftConfigTimeoutField *f = &weft_config_timeout_fields[i];
      weft_config_get_duration (l, node, f->key, f->zero_ok,
                                G_STRUCT_MEMBER_P (timeouts, f->offset));
    }
}

static void
weft_config_parse_limits (WeftConfigLoader *l, const WeftNode *node)
{
  WeftLimits *limits = &l->config->limits;
  guint64 line = limits->max_request_line;
  guint64 head = limits->max_head;

  if (!weft_config_check_keys (l, node, weft_config_limit_keys))
    return;
  weft_config_get_size (l, node, "max_request_line", 256, 65536, &line);
  weft_config_get_size (l, node, "max_request_headers", 1024, 65536, &head);
  weft_config_get_uint (l, node, "max_headers", 1, 128, &limits->max_headers);
  weft_config_get_size (l, node, "max_request_body", 0, G_MAXUINT64, &limits->max_body);
  weft_config_get_size (l, node, "min_request_body_rate", 0, G_MAXUINT32, &limits->min_body_rate);
  limits->max_request_line = (guint) line;
  limits->max_head = (guint) head;
}

/* ------------------------------------------------------------------ */
/* upstreams                                                           */
/* ------------------------------------------------------------------ */

static WeftEndpointConfig *
weft_config_parse_endpoint (WeftConfigLoader *l, const WeftNode *node)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *host = NULL;
  const char *text = NULL;
  guint16 port = 0;

  if (!weft_node_get_string (node, &text, &error))
    {
      weft_config_note (l, error);
      return NULL;
    }
  if (!weft_config_split_host_port (text, &host, &port)
      || !(g_hostname_is_ip_address (host) || weft_config_hostname_valid (host)))
    {
      weft_config_problem (l, node,
                           _("invalid endpoint '%s' (expected host:port, e.g. 10.0.0.1:8080, "
                             "[::1]:8080 or service-b.default.svc.cluster.local:8080)"), text);
      return NULL;
    }

  g_autoptr(WeftEndpointConfig) endpoint = g_new0 (WeftEndpointConfig, 1);
  endpoint->is_ip = g_hostname_is_ip_address (host);
  endpoint->host = g_steal_pointer (&host);
  endpoint->port = port;
  endpoint->node = node;
  return g_steal_pointer (&endpoint);
}

static void
weft_config_parse_endpoints (WeftConfigLoader *l, WeftUpstreamConfig *upstream)
{
  const WeftNode *node = weft_node_lookup (upstream->node, "endpoints");
  g_autoptr(GError) error = NULL;

  if (weft_node_is_null (node))
    {
      weft_config_problem (l, upstream->node, _("upstream is missing 'endpoints'"));
      return;
    }
  if (!weft_node_expect_kind (node, WEFT_NODE_SEQ, &error))
    {
      weft_config_note (l, error);
      return;
    }
  if (weft_node_get_length (node) == 0)
    weft_config_problem (l, node, _("an upstream needs at least one endpoint"));
  for (guint i = 0; i < weft_node_get_length (node); i++)
    {
      WeftEndpointConfig *endpoint = weft_config_parse_endpoint (l, weft_node_get_item (node, i));
      if (endpoint != NULL)
        g_ptr_array_add (upstream->endpoints, endpoint);
    }
}

/* the first definition of a name wins; later ones point back at it */
static void
weft_config_claim_name (WeftConfigLoader *l, GHashTable *names, const WeftNode *map,
                        const char *name, const char *what)
{
  const WeftNode *node = weft_node_lookup (map, "name");
  const WeftNode *first = g_hash_table_lookup (names, name);

  if (!weft_config_name_valid (name))
    {
      weft_config_problem (l, node, _("invalid %s name '%s' (use a-z, 0-9, '_', '.' and '-')"),
                           what, name);
      return;
    }
  if (first == NULL)
    {
      g_hash_table_insert (names, (gpointer) name, (gpointer) node);
      return;
    }

  g_autofree char *position = weft_config_position (first);
  weft_config_problem (l, node, _("%s '%s' is defined twice (first at %s)"), what, name,
                       position);
}

static void
weft_config_parse_health (WeftConfigLoader *l, WeftUpstreamConfig *upstream)
{
  const WeftNode *health = weft_node_lookup (upstream->node, "health");

  if (!weft_config_check_keys (l, health, weft_config_health_keys))
    return;
  weft_config_get_uint (l, health, "unhealthy_after", 1, 1000, &upstream->unhealthy_after);
  weft_config_get_duration (l, health, "backoff", FALSE, &upstream->unhealthy_backoff_ms);
}

/* RFC 9110 token: what a header or cookie name is made of */
static gboolean
weft_config_token_valid (const char *text)
{
  static const char tchar[] = "!#$%&'*+-.^_`|~0123456789"
                              "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

  return text[0] != '\0' && strspn (text, tchar) == strlen (text);
}

static gboolean
weft_config_is_prime (guint64 n)
{
  if (n < 2)
    return FALSE;
  for (guint64 d = 2; d * d <= n; d++)
    if (n % d == 0)
      return FALSE;
  return TRUE;
}

/* hash_on: {header: name} | {cookie: name} | {source_ip: true} */
static void
weft_config_parse_hash_on (WeftConfigLoader *l, WeftUpstreamConfig *upstream,
                           const WeftNode *hash_on)
{
  const WeftNode *header = weft_node_lookup (hash_on, "header");
  const WeftNode *cookie = weft_node_lookup (hash_on, "cookie");
  const WeftNode *source_ip = weft_node_lookup (hash_on, "source_ip");
  guint given = !weft_node_is_null (header) + !weft_node_is_null (cookie)
                + !weft_node_is_null (source_ip);
  g_autoptr(GError) error = NULL;
  gboolean on = FALSE;

  if (!weft_config_check_keys (l, hash_on, weft_config_hash_on_keys))
    return;
  if (given != 1)
    {
      weft_config_problem (l, hash_on,
                           given == 0 ? _("'hash_on' needs one of header, cookie or source_ip")
                                      : _("'hash_on' takes only one of header, cookie or source_ip"));
      return;
    }
  if (!weft_node_is_null (source_ip))
    {
      if (!weft_node_get_boolean (source_ip, &on, &error))
        weft_config_note (l, error);
      else if (!on)
        weft_config_problem (l, source_ip, _("'source_ip' can only be true; to hash on "
                                             "nothing, leave 'hash_on' out"));
      else
        upstream->lb.hash_on = WEFT_HASH_ON_SOURCE_IP;
      return;
    }

  const char *key = !weft_node_is_null (header) ? "header" : "cookie";
  const char *name = weft_config_get_string (l, hash_on, key);
  if (name == NULL)
    return;
  if (!weft_config_token_valid (name))
    {
      weft_config_problem (l, weft_node_lookup (hash_on, key), _("invalid %s name '%s'"),
                           key, name);
      return;
    }
  upstream->lb.hash_on = g_str_equal (key, "header") ? WEFT_HASH_ON_HEADER : WEFT_HASH_ON_COOKIE;
  g_free (upstream->hash_key);
  upstream->hash_key = g_strdup (name);
  upstream->lb.hash_key = upstream->hash_key;
}

static void
weft_config_parse_load_balancer (WeftConfigLoader *l, WeftUpstreamConfig *upstream)
{
  const WeftNode *lb = weft_node_lookup (upstream->node, "load_balancer");
  const WeftNode *hash_on, *size_node;
  const char *policy;
  gboolean hashing;
  guint size = 0;

  if (!weft_config_check_keys (l, lb, weft_config_lb_keys))
    return;
  policy = weft_config_get_string (l, lb, "policy");
  if (policy != NULL)
    {
      guint i = 0;
      while (weft_config_lb_policies[i] != NULL && !g_str_equal (weft_config_lb_policies[i], policy))
        i++;
      if (weft_config_lb_policies[i] == NULL)
        {
          weft_config_problem (l, weft_node_lookup (lb, "policy"),
                               _("invalid load balancer policy '%s' (expected round_robin, "
                                 "random, least_request, ring_hash or maglev)"), policy);
          return;
        }
      upstream->lb.policy = (WeftLbPolicy) i;
    }
  hashing = upstream->lb.policy == WEFT_LB_RING_HASH || upstream->lb.policy == WEFT_LB_MAGLEV;

  hash_on = weft_node_lookup (lb, "hash_on");
  if (!weft_node_is_null (hash_on))
    {
      if (!hashing)
        weft_config_problem (l, hash_on, _("'hash_on' needs policy ring_hash or maglev"));
      else
        weft_config_parse_hash_on (l, upstream, hash_on);
    }

  size_node = weft_node_lookup (lb, "table_size");
  if (weft_node_is_null (size_node))
    return;
  if (!hashing)
    {
      weft_config_problem (l, size_node, _("'table_size' needs policy ring_hash or maglev"));
      return;
    }
  if (upstream->lb.policy == WEFT_LB_RING_HASH)
    {
      weft_config_get_uint (l, lb, "table_size", 1, WEFT_CONFIG_RING_MAX, &size);
      upstream->lb.table_size = size;
      return;
    }
  weft_config_get_uint (l, lb, "table_size", 2, WEFT_CONFIG_MAGLEV_MAX, &size);
  if (size != 0 && !weft_config_is_prime (size))
    {
      guint next = size + 1;
      while (!weft_config_is_prime (next))
        next++;
      weft_config_problem (l, size_node, _("'table_size' must be a prime for maglev "
                                           "(the next one is %u)"), next);
      return;
    }
  upstream->lb.table_size = size;
}

static void
weft_config_parse_outlier (WeftConfigLoader *l, WeftUpstreamConfig *upstream)
{
  const WeftNode *node = weft_node_lookup (upstream->node, "outlier_detection");
  WeftOutlierSpec *o = &upstream->outlier;

  if (!weft_config_check_keys (l, node, weft_config_outlier_keys))
    return;
  /* as in Envoy and Istio: with the section present, 5 consecutive 5xx eject */
  o->consecutive_5xx = 5;
  o->base_ejection_ms = 30000;
  o->max_ejection_percent = 10;
  weft_config_get_uint (l, node, "consecutive_5xx", 0, WEFT_CONFIG_MAX_COUNT, &o->consecutive_5xx);
  weft_config_get_uint (l, node, "consecutive_gateway_errors", 0, WEFT_CONFIG_MAX_COUNT,
                        &o->consecutive_gateway_errors);
  weft_config_get_duration (l, node, "base_ejection_time", FALSE, &o->base_ejection_ms);
  weft_config_get_uint (l, node, "max_ejection_percent", 1, 100, &o->max_ejection_percent);
}

static void
weft_config_parse_pool (WeftConfigLoader *l, WeftUpstreamConfig *upstream)
{
  const WeftNode *node = weft_node_lookup (upstream->node, "connection_pool");

  if (!weft_config_check_keys (l, node, weft_config_pool_keys))
    return;
  weft_config_get_uint (l, node, "max_requests", 0, WEFT_CONFIG_MAX_COUNT,
                        &upstream->pool.max_requests);
  weft_config_get_uint (l, node, "max_requests_per_connection", 0, WEFT_CONFIG_MAX_COUNT,
                        &upstream->pool.max_requests_per_connection);
}

static void
weft_config_parse_upstream (WeftConfigLoader *l, const WeftNode *node)
{
  g_autoptr(GError) error = NULL;

  if (!weft_node_expect_kind (node, WEFT_NODE_MAP, &error))
    {
      weft_config_note (l, error);
      return;
    }

  WeftUpstreamConfig *upstream = weft_config_upstream_new (l->config, node);

  weft_config_check_keys (l, node, weft_config_upstream_keys);
  upstream->name = g_strdup (weft_config_require_string (l, node, _("upstream"), "name"));
  if (upstream->name != NULL)
    weft_config_claim_name (l, l->upstream_names, node, upstream->name, _("upstream"));
  weft_config_parse_endpoints (l, upstream);
  weft_config_get_duration (l, node, "dns_refresh", FALSE, &upstream->dns_refresh_ms);
  weft_config_parse_health (l, upstream);

  const WeftNode *timeouts = weft_node_lookup (node, "timeouts");
  if (weft_config_check_keys (l, timeouts, weft_config_upstream_timeout_keys))
    weft_config_get_duration (l, timeouts, "connect", FALSE, &upstream->connect_ms);
  weft_config_parse_load_balancer (l, upstream);
  weft_config_parse_outlier (l, upstream);
  weft_config_parse_pool (l, upstream);
  weft_config_upstream_tls (l, upstream);
}

/* ------------------------------------------------------------------ */
/* tls                                                                 */
/* ------------------------------------------------------------------ */

/* a PEM path; a relative one is relative to the file that names it */
static char *
weft_config_tls_path (WeftConfigLoader *l, const WeftNode *map, const char *key)
{
  const char *path = weft_config_require_string (l, map, "tls", key);
  g_autofree char *dir = NULL;
  g_autofree char *base = NULL;

  if (path == NULL)
    return NULL;
  if (*path == '\0')
    {
      weft_config_problem (l, weft_node_lookup (map, key), _("tls.%s is empty"), key);
      return NULL;
    }
  /* absolute, so logs and the watch name the file whatever the cwd */
  dir = g_path_get_dirname (weft_node_get_file (map));
  base = g_canonicalize_filename (dir, NULL);
  return g_canonicalize_filename (path, base);
}

static void
weft_config_parse_tls (WeftConfigLoader *l, const WeftNode *node)
{
  g_autoptr(GError) error = NULL;
  WeftTlsConfig *tls;

  if (!weft_node_expect_kind (node, WEFT_NODE_MAP, &error))
    {
      weft_config_note (l, error);
      return;
    }
  weft_config_check_keys (l, node, weft_config_tls_keys);
  tls = l->config->tls = g_new0 (WeftTlsConfig, 1);
  tls->node = node;
  tls->cert = weft_config_tls_path (l, node, "cert");
  tls->key = weft_config_tls_path (l, node, "key");
  tls->bundle = weft_config_tls_path (l, node, "bundle");
  weft_config_get_duration (l, node, "expiry_warning", TRUE, &tls->expiry_warning_ms);
}

/* @mode (written at @node) as an index into @modes, or -1 */
static gint
weft_config_tls_mode_index (WeftConfigLoader *l, const WeftNode *node, const char *mode,
                            const char *const *modes, const char *expected)
{
  for (guint i = 0; modes[i] != NULL; i++)
    if (g_str_equal (mode, modes[i]))
      return (gint) i;
  weft_config_problem (l, node, _("invalid tls mode '%s' (expected %s)"), mode, expected);
  return -1;
}

/* "mode: X" of a listener's or an upstream's tls:, as an index into @modes */
static gint
weft_config_tls_mode (WeftConfigLoader *l, const WeftNode *tls, const char *const *keys,
                      const char *const *modes, const char *expected)
{
  const char *mode;

  if (weft_node_is_null (tls) || !weft_config_check_keys (l, tls, keys))
    return 0;
  mode = weft_config_get_string (l, tls, "mode");
  if (mode == NULL)
    return 0;
  return weft_config_tls_mode_index (l, weft_node_lookup (tls, "mode"), mode, modes, expected);
}

/* mTLS needs the workload's certificate */
static void
weft_config_require_tls (WeftConfigLoader *l, const WeftNode *tls, const char *what,
                         const char *name)
{
  if (weft_config_section (l, "tls") == NULL)
    weft_config_problem (l, weft_node_lookup (tls, "mode"),
                         _("%s '%s' asks for mTLS, but there is no top-level 'tls:' with cert, key and bundle"),
                         what, name != NULL ? name : "?");
}

static gboolean
weft_config_listener_any_tls (const WeftListenerConfig *listener)
{
  gboolean any = listener->tls_mode != WEFT_TLS_MODE_DISABLE;

  for (guint i = 0; listener->tls_ports != NULL && i < listener->tls_ports->len; i++)
    any |= g_array_index (listener->tls_ports, WeftTlsPortMode, i).mode != WEFT_TLS_MODE_DISABLE;
  return any;
}

/* tls.ports: {<port>: <mode>}, by the connection's original destination
 * port (iptables-redirected traffic arrives on one listener for many) */
static void
weft_config_listener_tls_ports (WeftConfigLoader *l, WeftListenerConfig *listener,
                                const WeftNode *ports)
{
  g_autoptr(GError) error = NULL;

  if (weft_node_is_null (ports))
    return;
  if (!weft_node_expect_kind (ports, WEFT_NODE_MAP, &error))
    {
      weft_config_note (l, error);
      return;
    }
  listener->tls_ports = g_array_new (FALSE, FALSE, sizeof (WeftTlsPortMode));
  for (guint i = 0; i < weft_node_get_length (ports); i++)
    {
      const WeftNode *key = weft_node_get_key (ports, i);
      const WeftNode *value = weft_node_get_value (ports, i);
      const char *text = NULL;
      WeftTlsPortMode pm = { 0, WEFT_TLS_MODE_DISABLE };
      gint mode;

      if (!weft_config_parse_port (weft_node_get_scalar (key), &pm.port))
        {
          weft_config_problem (l, key, _("'%s' is not a port (1-65535)"),
                               weft_node_get_scalar (key));
          continue;
        }
      if (!weft_node_get_string (value, &text, &error))
        {
          weft_config_note (l, error);
          g_clear_error (&error);
          continue;
        }
      mode = weft_config_tls_mode_index (l, value, text, weft_config_tls_modes,
                                         "STRICT, PERMISSIVE or DISABLE");
      if (mode < 0)
        continue;
      pm.mode = (WeftTlsMode) mode;
      g_array_append_val (listener->tls_ports, pm);
    }
}

static void
weft_config_listener_tls (WeftConfigLoader *l, WeftListenerConfig *listener)
{
  const WeftNode *tls = weft_node_lookup (listener->node, "tls");
  gint mode = weft_config_tls_mode (l, tls, weft_config_listener_tls_keys, weft_config_tls_modes,
                                    "STRICT, PERMISSIVE or DISABLE");

  if (mode > 0)
    listener->tls_mode = (WeftTlsMode) mode;
  weft_config_listener_tls_ports (l, listener, weft_node_lookup (tls, "ports"));
  if (weft_config_listener_any_tls (listener))
    weft_config_require_tls (l, tls, _("listener"), listener->name);
}

const char *
weft_tls_mode_to_string (WeftTlsMode mode)
{
  return mode <= WEFT_TLS_MODE_STRICT ? weft_config_tls_modes[mode] : "DISABLE";
}

WeftTlsMode
weft_listener_config_tls_mode (const WeftListenerConfig *listener, guint16 port)
{
  for (guint i = 0; listener->tls_ports != NULL && i < listener->tls_ports->len; i++)
    {
      const WeftTlsPortMode *pm = &g_array_index (listener->tls_ports, WeftTlsPortMode, i);
      if (pm->port == port)
        return pm->mode;
    }
  return listener->tls_mode;
}

static void
weft_config_upstream_spiffe_ids (WeftConfigLoader *l, WeftUpstreamConfig *upstream,
                                 const WeftNode *ids)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_autoptr(GError) error = NULL;

  if (weft_node_is_null (ids))
    return;
  if (!weft_node_expect_kind (ids, WEFT_NODE_SEQ, &error))
    {
      weft_config_note (l, error);
      return;
    }
  for (guint i = 0; i < weft_node_get_length (ids); i++)
    {
      const WeftNode *item = weft_node_get_item (ids, i);
      const char *id = NULL;

      if (!weft_node_get_string (item, &id, &error))
        {
          weft_config_note (l, error);
          g_clear_error (&error);
          continue;
        }
      if (!weft_spiffe_id_parse (id, NULL, NULL, NULL))
        weft_config_problem (l, item,
                             _("'%s' is not a SPIFFE ID of the form spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>"),
                             id);
      g_strv_builder_add (builder, id);
    }
  upstream->tls_spiffe_ids = g_strv_builder_end (builder);
}

static void
weft_config_upstream_tls (WeftConfigLoader *l, WeftUpstreamConfig *upstream)
{
  static const char *const modes[] = { "DISABLE", "ISTIO_MUTUAL", NULL };
  const WeftNode *tls = weft_node_lookup (upstream->node, "tls");
  const char *sni;

  if (weft_config_tls_mode (l, tls, weft_config_upstream_tls_keys, modes,
                            "ISTIO_MUTUAL or DISABLE") <= 0)
    return;
  upstream->tls = TRUE;
  weft_config_require_tls (l, tls, _("upstream"), upstream->name);
  weft_config_upstream_spiffe_ids (l, upstream, weft_node_lookup (tls, "spiffe_ids"));
  sni = weft_config_get_string (l, tls, "sni");
  if (sni != NULL && !weft_config_hostname_valid (sni))
    weft_config_problem (l, weft_node_lookup (tls, "sni"), _("tls.sni '%s' is not a DNS name"),
                         sni);
  upstream->tls_sni = g_strdup (sni);
  upstream->tls_tag = g_str_hash (sni != NULL ? sni : "");
  for (guint i = 0; upstream->tls_spiffe_ids != NULL && upstream->tls_spiffe_ids[i] != NULL; i++)
    upstream->tls_tag = upstream->tls_tag * 31 + g_str_hash (upstream->tls_spiffe_ids[i]);
}

/* ------------------------------------------------------------------ */
/* listeners                                                           */
/* ------------------------------------------------------------------ */

static void
weft_config_listener_address (WeftConfigLoader *l, WeftListenerConfig *listener)
{
  if (weft_node_is_null (weft_node_lookup (listener->node, "address")))
    {
      weft_config_problem (l, listener->node, _("listener is missing 'address'"));
      return;
    }
  if (!weft_config_parse_bind_address (l, listener->node, _("listener"), &listener->host,
                                       &listener->port))
    return;
  listener->address = g_strdup (weft_config_get_string (l, listener->node, "address"));
}

/* two listeners cannot bind one address, nor take the admin's */
static void
weft_config_claim_address (WeftConfigLoader *l, WeftListenerConfig *listener)
{
  const WeftNode *node = weft_node_lookup (listener->node, "address");
  g_autofree char *canonical = weft_config_canonical_address (listener->host, listener->port);
  WeftListenerConfig *first = g_hash_table_lookup (l->listener_addrs, canonical);
  g_autofree char *admin_host = NULL;
  guint16 admin_port = 0;

  if (weft_config_split_host_port (l->config->admin_address, &admin_host, &admin_port))
    {
      g_autofree char *admin = weft_config_canonical_address (admin_host, admin_port);
      if (g_str_equal (admin, canonical))
        weft_config_problem (l, node, _("listener address %s is the admin address"),
                             listener->address);
    }
  if (first == NULL)
    {
      g_hash_table_insert (l->listener_addrs, g_steal_pointer (&canonical), listener);
      return;
    }

  g_autofree char *position = weft_config_position (weft_node_lookup (first->node, "address"));
  weft_config_problem (l, node, _("address %s is already used by listener '%s' (at %s)"),
                       listener->address, first->name != NULL ? first->name : "?", position);
}

static void
weft_config_listener_direction (WeftConfigLoader *l, WeftListenerConfig *listener)
{
  const char *text = weft_config_get_string (l, listener->node, "direction");

  if (text == NULL || g_str_equal (text, "inbound"))
    return;
  if (g_str_equal (text, "outbound"))
    listener->direction = WEFT_DIRECTION_OUTBOUND;
  else
    weft_config_problem (l, weft_node_lookup (listener->node, "direction"),
                         _("invalid direction '%s' (expected inbound or outbound)"), text);
}

static void
weft_config_listener_upstream (WeftConfigLoader *l, WeftListenerConfig *listener)
{
  const char *name = weft_config_get_string (l, listener->node, "upstream");

  if (name == NULL)
    return;
  listener->upstream = g_strdup (name);
  if (!g_hash_table_contains (l->upstream_names, name))
    weft_config_problem (l, weft_node_lookup (listener->node, "upstream"),
                         _("listener '%s' names unknown upstream '%s'"),
                         listener->name != NULL ? listener->name : "?", name);
}

static void
weft_config_listener_plugin (WeftConfigLoader *l, WeftListenerConfig *listener,
                             GHashTable *seen, const WeftNode *item)
{
  g_autoptr(GError) error = NULL;
  const char *name = NULL;

  if (!weft_node_get_string (item, &name, &error))
    {
      weft_config_note (l, error);
      return;
    }

  const WeftNode *first = g_hash_table_lookup (seen, name);
  if (first != NULL)
    {
      g_autofree char *position = weft_config_position (first);
      weft_config_problem (l, item, _("plugin '%s' is listed twice (first at %s)"), name,
                           position);
      return;
    }
  g_hash_table_insert (seen, (gpointer) name, (gpointer) item);
  g_ptr_array_add (listener->plugins, g_strdup (name));
}

static void
weft_config_listener_plugins (WeftConfigLoader *l, WeftListenerConfig *listener)
{
  const WeftNode *node = weft_node_lookup (listener->node, "plugins");
  g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GError) error = NULL;

  if (weft_node_is_null (node))
    return;
  if (!weft_node_expect_kind (node, WEFT_NODE_SEQ, &error))
    {
      weft_config_note (l, error);
      return;
    }
  for (guint i = 0; i < weft_node_get_length (node); i++)
    weft_config_listener_plugin (l, listener, seen, weft_node_get_item (node, i));
}

/* every other key must be the settings of a plugin the listener lists */
static void
weft_config_listener_plugin_nodes (WeftConfigLoader *l, WeftListenerConfig *listener)
{
  for (guint i = 0; i < weft_node_get_length (listener->node); i++)
    {
      const WeftNode *key_node = weft_node_get_key (listener->node, i);
      const char *key = weft_node_get_scalar (key_node);
      if (g_strv_contains (weft_config_listener_keys, key))
        continue;
      if (!g_ptr_array_find_with_equal_func (listener->plugins, key, g_str_equal, NULL))
        {
          weft_config_problem (l, key_node,
                               _("unknown key '%s' in listener (not a field, nor a plugin it lists)"),
                               key);
          continue;
        }
      g_hash_table_insert (listener->plugin_nodes, g_strdup (key),
                           (gpointer) weft_node_get_value (listener->node, i));
    }
}

static void
weft_config_parse_listener (WeftConfigLoader *l, const WeftNode *node)
{
  g_autoptr(GError) error = NULL;

  if (!weft_node_expect_kind (node, WEFT_NODE_MAP, &error))
    {
      weft_config_note (l, error);
      return;
    }

  WeftListenerConfig *listener = g_new0 (WeftListenerConfig, 1);
  listener->node = node;
  listener->plugins = g_ptr_array_new_with_free_func (g_free);
  listener->plugin_nodes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  listener->timeouts = l->config->timeouts;
  g_ptr_array_add (l->config->listeners, listener);

  listener->name = g_strdup (weft_config_require_string (l, node, _("listener"), "name"));
  if (listener->name != NULL)
    weft_config_claim_name (l, l->listener_names, node, listener->name, _("listener"));
  weft_config_listener_address (l, listener);
  if (listener->address != NULL)
    weft_config_claim_address (l, listener);
  weft_config_listener_direction (l, listener);
  weft_config_listener_upstream (l, listener);
  weft_config_listener_plugins (l, listener);
  weft_config_listener_tls (l, listener);
  weft_config_parse_timeouts (l, weft_node_lookup (node, "timeouts"), &listener->timeouts);
  weft_config_get_uint (l, node, "max_connections", 0, WEFT_CONFIG_MAX_COUNT,
                        &listener->max_connections);
  weft_config_listener_plugin_nodes (l, listener);
}

/* ------------------------------------------------------------------ */
/* merging documents                                                   */
/* ------------------------------------------------------------------ */

static void
weft_config_add_document (WeftConfigLoader *l, const WeftNode *root)
{
  const char *api_version = weft_config_get_string (l, root, "apiVersion");
  const char *kind = weft_config_get_string (l, root, "kind");
  const WeftNode *name = weft_node_lookup (weft_node_lookup (root, "metadata"), "name");

  if (api_version == NULL || kind == NULL)
    return;

  WeftConfigDocument *document = g_new0 (WeftConfigDocument, 1);
  document->root = root;
  document->api_version = g_strdup (api_version);
  document->kind = g_strdup (kind);
  if (name != NULL && !weft_node_is_null (name))
    document->name = g_strdup (weft_node_get_scalar (name));
  g_ptr_array_add (l->config->documents, document);
}

static void
weft_config_merge_list (WeftConfigLoader *l, GPtrArray *items, const WeftNode *value)
{
  g_autoptr(GError) error = NULL;

  if (weft_node_is_null (value))
    return;
  if (!weft_node_expect_kind (value, WEFT_NODE_SEQ, &error))
    {
      weft_config_note (l, error);
      return;
    }
  for (guint i = 0; i < weft_node_get_length (value); i++)
    g_ptr_array_add (items, (gpointer) weft_node_get_item (value, i));
}

/* a section or a plugin's settings: one definition across all documents */
static gboolean
weft_config_merge_once (WeftConfigLoader *l, GHashTable *keys, const WeftNode *key,
                        gboolean is_plugin)
{
  const char *name = weft_node_get_scalar (key);
  const WeftNode *first = g_hash_table_lookup (keys, name);

  if (first == NULL)
    {
      g_hash_table_insert (keys, (gpointer) name, (gpointer) key);
      return TRUE;
    }

  g_autofree char *position = weft_config_position (first);
  if (is_plugin)
    return weft_config_problem (l, key,
                                _("settings of plugin '%s' are defined twice (first at %s)"),
                                name, position);
  return weft_config_problem (l, key, _("'%s' is defined twice (first at %s)"), name, position);
}

static void
weft_config_merge_pair (WeftConfigLoader *l, const WeftNode *key, const WeftNode *value)
{
  const char *name = weft_node_get_scalar (key);

  if (g_str_equal (name, "listeners"))
    weft_config_merge_list (l, l->listener_nodes, value);
  else if (g_str_equal (name, "upstreams"))
    weft_config_merge_list (l, l->upstream_nodes, value);
  else if (g_strv_contains (weft_config_sections, name))
    {
      if (weft_config_merge_once (l, l->section_keys, key, FALSE))
        g_hash_table_insert (l->section_values, (gpointer) name, (gpointer) value);
    }
  else if (weft_config_merge_once (l, l->plugin_keys, key, TRUE))
    g_hash_table_insert (l->config->plugin_nodes, g_strdup (name), (gpointer) value);
}

static void
weft_config_merge_document (WeftConfigLoader *l, const WeftNode *root)
{
  gboolean has_api = weft_node_lookup (root, "apiVersion") != NULL;
  gboolean has_kind = weft_node_lookup (root, "kind") != NULL;

  if (root == NULL)
    return;
  if (has_api && has_kind)
    {
      weft_config_add_document (l, root);
      return;
    }
  if (has_api || has_kind)
    {
      weft_config_problem (l, root, _("a document with '%s' needs '%s' too"),
                           has_api ? "apiVersion" : "kind", has_api ? "kind" : "apiVersion");
      return;
    }
  if (weft_node_get_kind (root) != WEFT_NODE_MAP)
    {
      weft_config_problem (l, root, _("a configuration document must be a mapping"));
      return;
    }
  for (guint i = 0; i < weft_node_get_length (root); i++)
    weft_config_merge_pair (l, weft_node_get_key (root, i), weft_node_get_value (root, i));
}

static const WeftNode *
weft_config_section (WeftConfigLoader *l, const char *name)
{
  return g_hash_table_lookup (l->section_values, name);
}

static void
weft_config_parse_sections (WeftConfigLoader *l)
{
  const WeftNode *node = NULL;

  if ((node = weft_config_section (l, "node")) != NULL)
    weft_config_parse_node (l, node);
  weft_config_node_defaults (l->config);
  if ((node = weft_config_section (l, "admin")) != NULL)
    weft_config_parse_admin (l, node);
  if ((node = weft_config_section (l, "workers")) != NULL)
    weft_config_parse_workers (l, node);
  if ((node = weft_config_section (l, "plugin_dirs")) != NULL)
    weft_config_parse_plugin_dirs (l, node);
  if ((node = weft_config_section (l, "timeouts")) != NULL)
    weft_config_parse_timeouts (l, node, &l->config->timeouts);
  if ((node = weft_config_section (l, "limits")) != NULL)
    weft_config_parse_limits (l, node);
  if ((node = weft_config_section (l, "tls")) != NULL)
    weft_config_parse_tls (l, node);
}

static gboolean
weft_config_build (WeftConfig *config, GError **error)
{
  g_autoptr(WeftConfigLoader) l = weft_config_loader_new (config);

  for (guint i = 0; i < config->files->len; i++)
    {
      WeftNodeFile *file = g_ptr_array_index (config->files, i);
      for (guint d = 0; d < weft_node_file_get_n_documents (file); d++)
        weft_config_merge_document (l, weft_node_file_get_document (file, d));
    }

  /* everything is merged: references resolve regardless of file order */
  weft_config_parse_sections (l);
  for (guint i = 0; i < l->upstream_nodes->len; i++)
    weft_config_parse_upstream (l, g_ptr_array_index (l->upstream_nodes, i));
  for (guint i = 0; i < l->listener_nodes->len; i++)
    weft_config_parse_listener (l, g_ptr_array_index (l->listener_nodes, i));

  if (l->problems->len == 0)
    return TRUE;
  g_ptr_array_add (l->problems, NULL);
  g_autofree char *message = g_strjoinv ("\n", (char **) l->problems->pdata);
  g_set_error_literal (error, WEFT_ERROR, WEFT_ERROR_CONFIG, message);
  return FALSE;
}

/* ------------------------------------------------------------------ */
/* reading files                                                       */
/* ------------------------------------------------------------------ */

static void
weft_config_add_file (WeftConfig *config, const char *path, WeftNodeFile *file)
{
  WeftConfigSource *source = g_new0 (WeftConfigSource, 1);

  source->path = g_strdup (path);
  source->sha256 = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256,
                                                 weft_node_file_get_bytes (file));
  g_ptr_array_add (config->sources, source);
  g_ptr_array_add (config->files, file);
}

static gboolean
weft_config_is_yaml_name (const char *name)
{
  return name[0] != '.'
         && (g_str_has_suffix (name, ".yaml") || g_str_has_suffix (name, ".yml"));
}

/* a dangling symlink is skipped: kubelet removes a dropped key's link
 * only after the ..data swap */
static gboolean
weft_config_is_regular (const char *path)
{
  struct stat st;

  if (stat (path, &st) != 0)
    return errno != ENOENT;
  return S_ISREG (st.st_mode);
}

static gint
weft_config_compare_paths (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static GPtrArray *
weft_config_list_dir (const char *path, GError **error)
{
  DIR *dir = opendir (path);
  struct dirent *entry = NULL;

  if (dir == NULL)
    {
      int saved = errno;
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_IO, "%s: %s", path, g_strerror (saved));
      return NULL;
    }

  g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func (g_free);
  while ((entry = readdir (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, entry->d_name, NULL);
      if (weft_config_is_yaml_name (entry->d_name) && weft_config_is_regular (child))
        g_ptr_array_add (paths, g_steal_pointer (&child));
    }
  closedir (dir);

  if (paths->len == 0)
    {
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG, _("%s: no *.yaml or *.yml file"), path);
      return NULL;
    }
  g_ptr_array_sort (paths, weft_config_compare_paths);
  return g_steal_pointer (&paths);
}

/* every syntax error of every file, before any merging */
static gboolean
weft_config_read_dir (WeftConfig *config, const char *path, GError **error)
{
  g_autoptr(GPtrArray) paths = weft_config_list_dir (path, error);
  g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func (g_free);

  if (paths == NULL)
    return FALSE;
  for (guint i = 0; i < paths->len; i++)
    {
      const char *file_path = g_ptr_array_index (paths, i);
      g_autoptr(GError) file_error = NULL;
      WeftNodeFile *file = weft_node_file_load (file_path, &file_error);

      if (file == NULL)
        g_ptr_array_add (problems, g_strdup (file_error->message));
      else
        weft_config_add_file (config, file_path, file);
    }

  if (problems->len == 0)
    return TRUE;
  g_ptr_array_add (problems, NULL);
  g_autofree char *message = g_strjoinv ("\n", (char **) problems->pdata);
  g_set_error_literal (error, WEFT_ERROR, WEFT_ERROR_CONFIG, message);
  return FALSE;
}

static gboolean
weft_config_read (WeftConfig *config, const char *path, GError **error)
{
  struct stat st;

  if (stat (path, &st) != 0)
    {
      int saved = errno;
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_IO, "%s: %s", path, g_strerror (saved));
      return FALSE;
    }
  if (S_ISDIR (st.st_mode))
    return weft_config_read_dir (config, path, error);

  WeftNodeFile *file = weft_node_file_load (path, error);
  if (file == NULL)
    return FALSE;
  weft_config_add_file (config, path, file);
  return TRUE;
}

WeftConfig *
weft_config_load (const char *path, GError **error)
{
  g_autoptr(WeftConfig) config = weft_config_new ();

  g_return_val_if_fail (path != NULL, NULL);

  if (!weft_config_read (config, path, error) || !weft_config_build (config, error))
    return NULL;
  return g_steal_pointer (&config);
}

WeftConfig *
weft_config_load_data (const char *display_name, const char *data, gsize len, GError **error)
{
  g_autoptr(WeftConfig) config = weft_config_new ();

  g_return_val_if_fail (display_name != NULL, NULL);

  WeftNodeFile *file = weft_node_file_load_data (display_name, data, len, error);
  if (file == NULL)
    return NULL;
  weft_config_add_file (config, display_name, file);
  if (!weft_config_build (config, error))
    return NULL;
  return g_steal_pointer (&config);
}

/* the bytes of one file, following symlinks, as weft_node_file_load reads them */
static WeftConfigSource *
weft_config_hash_file (const char *path, GError **error)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  WeftConfigSource *source;

  if (!g_file_get_contents (path, &data, &len, error))
    return NULL;
  source = g_new0 (WeftConfigSource, 1);
  source->path = g_strdup (path);
  source->sha256 = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) data, len);
  return source;
}

GPtrArray *
weft_config_read_sources (const char *path, GError **error)
{
  g_autoptr(GPtrArray) sources = g_ptr_array_new_with_free_func (
      (GDestroyNotify) weft_config_source_free);
  g_autoptr(GPtrArray) paths = NULL;
  struct stat st;

  g_return_val_if_fail (path != NULL, NULL);
  if (stat (path, &st) != 0)
    {
      int saved = errno;
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_IO, "%s: %s", path, g_strerror (saved));
      return NULL;
    }
  if (S_ISDIR (st.st_mode))
    paths = weft_config_list_dir (path, error);
  else
    {
      paths = g_ptr_array_new_with_free_func (g_free);
      g_ptr_array_add (paths, g_strdup (path));
    }
  if (paths == NULL)
    return NULL;
  for (guint i = 0; i < paths->len; i++)
    {
      WeftConfigSource *source = weft_config_hash_file (paths->pdata[i], error);
      if (source == NULL)
        return NULL;
      g_ptr_array_add (sources, source);
    }
  return g_steal_pointer (&sources);
}

void
weft_config_drop_nodes (WeftConfig *config)
{
  g_return_if_fail (config != NULL);

  for (guint i = 0; i < config->listeners->len; i++)
    {
      WeftListenerConfig *lc = config->listeners->pdata[i];
      lc->node = NULL;
      g_hash_table_remove_all (lc->plugin_nodes);
    }
  for (guint i = 0; i < config->upstreams->len; i++)
    {
      WeftUpstreamConfig *uc = config->upstreams->pdata[i];
      uc->node = NULL;
      for (guint j = 0; j < uc->endpoints->len; j++)
        ((WeftEndpointConfig *) uc->endpoints->pdata[j])->node = NULL;
    }
  if (config->tls != NULL)
    config->tls->node = NULL;
  g_hash_table_remove_all (config->plugin_nodes);
  g_ptr_array_set_size (config->documents, 0);
  g_ptr_array_set_size (config->files, 0);
}

WeftUpstreamConfig *
weft_config_find_upstream (WeftConfig *config, const char *name)
{
  g_return_val_if_fail (config != NULL && name != NULL, NULL);

  for (guint i = 0; i < config->upstreams->len; i++)
    {
      WeftUpstreamConfig *upstream = g_ptr_array_index (config->upstreams, i);
      if (g_strcmp0 (upstream->name, name) == 0)
        return upstream;
    }
  return NULL;
}
