/* weft-ratelimit-config.c: the `ratelimit:` settings
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "weft-ratelimit-private.h"

#include <netdb.h>
#include <string.h>

#define WEFT_RATE_DEFAULT_MAX_KEYS  65536
#define WEFT_RATE_DEFAULT_TIMEOUT   50

static void
weft_rate_limit_free (gpointer data)
{
  WeftRateLimit *limit = data;

  g_free (limit->name);
  g_free (limit->header);
  g_strfreev (limit->listeners);
  g_strfreev (limit->routes);
  g_clear_pointer (&limit->match, weft_policy_rule_free);
  g_clear_pointer (&limit->table, weft_rate_table_unref);
  g_free (limit->policy_header);
  g_free (limit->redis_key);
  g_free (limit);
}

void
weft_rate_config_free (WeftRateConfig *config)
{
  if (config == NULL)
    return;
  g_ptr_array_unref (config->limits);
  g_free (config->redis_address);
  g_free (config->key_prefix);
  g_free (config);
}

static guint64
weft_rate_unit_seconds (const char *unit)
{
  static const struct { const char *name; guint64 s; } units[] = {
    { "s", 1 }, { "sec", 1 }, { "second", 1 },
    { "m", 60 }, { "min", 60 }, { "minute", 60 },
    { "h", 3600 }, { "hour", 3600 },
    { "d", 86400 }, { "day", 86400 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (units); i++)
    if (g_str_equal (unit, units[i].name))
      return units[i].s;
  return 0;
}

gboolean
weft_rate_parse (const char *text, guint64 *count, guint64 *period_s)
{
  const char *slash = strchr (text, '/');
  const char *unit;
  char *end = NULL;
  guint64 mult = 1;

  if (slash == NULL || !g_ascii_isdigit (text[0]))
    return FALSE;
  *count = g_ascii_strtoull (text, &end, 10);
  if (end != slash || *count == 0 || *count > 1000000000)
    return FALSE;
  unit = slash + 1;
  if (g_ascii_isdigit (*unit))
    {
      mult = g_ascii_strtoull (unit, &end, 10);
      unit = end;
    }
  *period_s = mult * weft_rate_unit_seconds (unit);
  return *period_s > 0 && *period_s <= 86400 * 366;
}

/* ------------------------------------------------------------------ */
/* one limit                                                            */
/* ------------------------------------------------------------------ */

static gboolean
weft_rate_strv (const WeftNode *node, GStrv *out, GError **error)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();

  if (weft_node_is_null (node))
    return TRUE;
  if (!weft_node_expect_kind (node, WEFT_NODE_SEQ, error))
    return FALSE;
  for (guint i = 0; i < weft_node_get_length (node); i++)
    {
      const char *s;
      if (!weft_node_get_string (weft_node_get_item (node, i), &s, error))
        return FALSE;
      g_strv_builder_add (b, s);
    }
  *out = g_strv_builder_end (b);
  return TRUE;
}

static gboolean
weft_rate_limit_key (WeftRateLimit *limit, const WeftNode *node, GError **error)
{
  static const struct { const char *name; WeftRateKeyKind kind; } keys[] = {
    { "none", WEFT_RATE_KEY_NONE }, { "principal", WEFT_RATE_KEY_PRINCIPAL },
    { "source_ip", WEFT_RATE_KEY_SOURCE_IP }, { "route", WEFT_RATE_KEY_ROUTE },
  };
  const char *text;

  if (weft_node_is_null (node))
    return TRUE;
  if (!weft_node_get_string (node, &text, error))
    return FALSE;
  if (g_str_has_prefix (text, "header:") && text[7] != '\0')
    {
      limit->key = WEFT_RATE_KEY_HEADER;
      limit->header = g_ascii_strdown (text + 7, -1);
      return TRUE;
    }
  for (guint i = 0; i < G_N_ELEMENTS (keys); i++)
    if (g_str_equal (text, keys[i].name))
      {
        limit->key = keys[i].kind;
        return TRUE;
      }
  weft_node_set_error (node, error, "'key' must be none, principal, source_ip, route or "
                       "header:<name>, not '%s'", text);
  return FALSE;
}

static gboolean
weft_rate_limit_rate (WeftRateLimit *limit, const WeftNode *node, GError **error)
{
  const WeftNode *rate = weft_node_lookup (node, "rate");
  const WeftNode *burst = weft_node_lookup (node, "burst");
  const char *text;
  guint64 b;

  if (weft_node_is_null (rate))
    {
      weft_node_set_error (node, error, "a limit needs a 'rate', such as 10/s");
      return FALSE;
    }
  if (!weft_node_get_string (rate, &text, error))
    return FALSE;
  if (!weft_rate_parse (text, &limit->count, &limit->period_s))
    {
      weft_node_set_error (rate, error, "'rate' must be N/s, N/m, N/h or N/d (such as 10/s), "
                           "not '%s'", text);
      return FALSE;
    }
  limit->interval_us = limit->period_s * G_USEC_PER_SEC / limit->count;
  b = limit->count;   /* by default a full period's worth may come at once */
  if (!weft_node_is_null (burst) && !weft_node_get_uint64 (burst, &b, error))
    return FALSE;
  if (b < 1 || b > 1000000000)
    {
      weft_node_set_error (burst, error, "'burst' must be between 1 and 1000000000");
      return FALSE;
    }
  limit->burst = (guint) b;
  return TRUE;
}

static gboolean
weft_rate_limit_scope (WeftRateLimit *limit, const WeftNode *node, GError **error)
{
  const WeftNode *match = weft_node_lookup (node, "match");
  const WeftNode *max_keys = weft_node_lookup (node, "max_keys");
  const WeftNode *global = weft_node_lookup (node, "global");
  guint64 n = WEFT_RATE_DEFAULT_MAX_KEYS;

  if (!weft_rate_strv (weft_node_lookup (node, "listeners"), &limit->listeners, error) ||
      !weft_rate_strv (weft_node_lookup (node, "routes"), &limit->routes, error))
    return FALSE;
  if (!weft_node_is_null (match) &&
      (limit->match = weft_policy_rule_parse (match, NULL, error)) == NULL)
    return FALSE;
  if (!weft_node_is_null (max_keys) && !weft_node_get_uint64 (max_keys, &n, error))
    return FALSE;
  if (n < 1 || n > 16 * 1024 * 1024)
    {
      weft_node_set_error (max_keys, error, "'max_keys' must be between 1 and 16777216");
      return FALSE;
    }
  limit->max_keys = limit->key == WEFT_RATE_KEY_NONE ? 0 : (guint) n;
  return weft_node_is_null (global) || weft_node_get_boolean (global, &limit->global, error);
}

static WeftRateLimit *
weft_rate_limit_parse (const WeftNode *node, GError **error)
{
  static const char *const keys[] = {
    "name", "rate", "burst", "key", "listeners", "routes", "match", "global", "max_keys", NULL
  };
  g_autoptr(GPtrArray) holder = g_ptr_array_new_with_free_func (weft_rate_limit_free);
  WeftRateLimit *limit = g_new0 (WeftRateLimit, 1);
  const WeftNode *name = weft_node_lookup (node, "name");
  const char *text = NULL;

  g_ptr_array_add (holder, limit);
  if (!weft_node_expect_kind (node, WEFT_NODE_MAP, error) ||
      !weft_node_check_keys (node, keys, error))
    return NULL;
  if (weft_node_is_null (name))
    {
      weft_node_set_error (node, error, "a limit needs a 'name'");
      return NULL;
    }
  if (!weft_node_get_string (name, &text, error))
    return NULL;
  limit->name = g_strdup (text);
  if (!weft_rate_limit_rate (limit, node, error) ||
      !weft_rate_limit_key (limit, weft_node_lookup (node, "key"), error) ||
      !weft_rate_limit_scope (limit, node, error))
    return NULL;
  return g_ptr_array_steal_index (holder, 0);
}

/* ------------------------------------------------------------------ */
/* redis                                                                */
/* ------------------------------------------------------------------ */

/* "host:port"; a name is resolved here, on the main thread, never by a worker */
static gboolean
weft_rate_redis_address (WeftRateConfig *config, const WeftNode *node, GError **error)
{
  const char *text;
  g_autofree char *host = NULL;
  const char *colon;
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
  struct addrinfo *res = NULL;
  int rc;

  if (!weft_node_get_string (node, &text, error))
    return FALSE;
  colon = strrchr (text, ':');
  if (colon == NULL || colon == text || colon[1] == '\0')
    {
      weft_node_set_error (node, error, "'address' must be host:port, not '%s'", text);
      return FALSE;
    }
  host = text[0] == '[' && colon[-1] == ']' ? g_strndup (text + 1, (gsize) (colon - text - 2))
                                             : g_strndup (text, (gsize) (colon - text));
  rc = getaddrinfo (host, colon + 1, &hints, &res);
  if (rc != 0 || res == NULL)
    {
      weft_node_set_error (node, error, "cannot resolve redis address '%s': %s", text,
                           gai_strerror (rc));
      return FALSE;
    }
  memcpy (&config->redis_addr, res->ai_addr, res->ai_addrlen);
  config->redis_addr_len = res->ai_addrlen;
  config->redis_address = g_strdup (text);
  freeaddrinfo (res);
  return TRUE;
}

static gboolean
weft_rate_redis (WeftRateConfig *config, const WeftNode *node, GError **error)
{
  static const char *const keys[] = { "address", "timeout", "failure_mode", "key_prefix", NULL };
  const WeftNode *v;
  const char *text;

  if (!weft_node_expect_kind (node, WEFT_NODE_MAP, error) ||
      !weft_node_check_keys (node, keys, error))
    return FALSE;
  v = weft_node_lookup (node, "address");
  if (weft_node_is_null (v))
    {
      weft_node_set_error (node, error, "'redis' needs an 'address' (host:port)");
      return FALSE;
    }
  if (!weft_rate_redis_address (config, v, error))
    return FALSE;
  v = weft_node_lookup (node, "timeout");
  if (!weft_node_is_null (v) && !weft_node_get_duration (v, &config->redis_timeout_ms, error))
    return FALSE;
  v = weft_node_lookup (node, "failure_mode");
  if (!weft_node_is_null (v))
    {
      if (!weft_node_get_string (v, &text, error))
        return FALSE;
      if (!g_str_equal (text, "open") && !g_str_equal (text, "closed"))
        {
          weft_node_set_error (v, error, "'failure_mode' must be open or closed, not '%s'", text);
          return FALSE;
        }
      config->fail_open = g_str_equal (text, "open");
    }
  v = weft_node_lookup (node, "key_prefix");
  if (!weft_node_is_null (v))
    {
      if (!weft_node_get_string (v, &text, error))
        return FALSE;
      g_free (config->key_prefix);
      config->key_prefix = g_strdup (text);
    }
  config->has_redis = TRUE;
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* the whole section                                                    */
/* ------------------------------------------------------------------ */

static WeftMetricSeries *
weft_rate_series (WeftMetric *metric, const char *limit, const char *result)
{
  const char *values[] = { limit, result, NULL };

  return weft_metric_get_series (metric, values);
}

static gboolean
weft_rate_limit_finish (WeftRateLimit *limit, WeftPluginContext *ctx, const char *prefix,
                        GError **error)
{
  static const char *const labels[] = { "limit", "result", NULL };
  static const char *const overflow_labels[] = { "limit", NULL };
  WeftMetric *m = weft_plugin_context_register_metric (
    ctx, WEFT_METRIC_COUNTER, "weft_ratelimit_requests_total",
    "Requests a rate limit counted, by what it decided", labels, NULL, 0);
  WeftMetric *o = weft_plugin_context_register_metric (
    ctx, WEFT_METRIC_COUNTER, "weft_ratelimit_key_overflow_total",
    "Requests whose key found no free bucket and shared the overflow bucket",
    overflow_labels, NULL, 0);
  const char *v[2] = { limit->name, NULL };
  g_autofree char *identity = NULL;

  limit->admitted = weft_rate_series (m, limit->name, "admitted");
  limit->limited = weft_rate_series (m, limit->name, "limited");
  limit->failed_open = weft_rate_series (m, limit->name, "failed_open");
  limit->failed_closed = weft_rate_series (m, limit->name, "failed_closed");
  limit->overflow = weft_metric_get_series (o, v);
  limit->policy_header = g_strdup_printf ("\"%s\";q=%" G_GUINT64_FORMAT ";w=%" G_GUINT64_FORMAT,
                                          limit->name, limit->count, limit->period_s);
  if (limit->global)
    {
      limit->redis_key = g_strdup_printf ("%s:%s:", prefix, limit->name);
      return TRUE;
    }
  /* the same name, rate, burst and key find the buckets a reload left */
  identity = g_strdup_printf ("%s|%" G_GUINT64_FORMAT "|%u|%d|%s|%u", limit->name,
                              limit->interval_us, limit->burst, limit->key,
                              limit->header != NULL ? limit->header : "", limit->max_keys);
  limit->table = weft_rate_table_lookup (identity, limit->interval_us, limit->burst,
                                         limit->max_keys);
  if (limit->table == NULL)
    g_set_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG,
                 "limit '%s': cannot reserve memory for %u buckets; lower 'max_keys'",
                 limit->name, limit->max_keys);
  return limit->table != NULL;
}

static gboolean
weft_rate_config_limits (WeftRateConfig *config, const WeftNode *list, GError **error)
{
  g_autoptr(GHashTable) names = g_hash_table_new (g_str_hash, g_str_equal);

  if (weft_node_is_null (list))
    return TRUE;
  if (!weft_node_expect_kind (list, WEFT_NODE_SEQ, error))
    return FALSE;
  for (guint i = 0; i < weft_node_get_length (list); i++)
    {
      const WeftNode *item = weft_node_get_item (list, i);
      WeftRateLimit *limit = weft_rate_limit_parse (item, error);
      if (limit == NULL)
        return FALSE;
      g_ptr_array_add (config->limits, limit);
      if (!g_hash_table_add (names, limit->name))
        {
          weft_node_set_error (item, error, "two limits are named '%s'", limit->name);
          return FALSE;
        }
      if (limit->global && !config->has_redis)
        {
          weft_node_set_error (item, error, "limit '%s' is global but 'ratelimit.redis' "
                               "is not set", limit->name);
          return FALSE;
        }
    }
  return TRUE;
}

WeftRateConfig *
weft_rate_config_parse (const WeftNode *node, GError **error)
{
  static const char *const keys[] = { "limits", "redis", NULL };
  g_autoptr(WeftRateConfig) config = g_new0 (WeftRateConfig, 1);
  const WeftNode *redis = node != NULL ? weft_node_lookup (node, "redis") : NULL;

  config->limits = g_ptr_array_new_with_free_func (weft_rate_limit_free);
  config->redis_timeout_ms = WEFT_RATE_DEFAULT_TIMEOUT;
  config->fail_open = TRUE;
  config->key_prefix = g_strdup ("weft");
  if (weft_node_is_null (node))
    return g_steal_pointer (&config);
  if (!weft_node_expect_kind (node, WEFT_NODE_MAP, error) ||
      !weft_node_check_keys (node, keys, error))
    return NULL;
  if (!weft_node_is_null (redis) && !weft_rate_redis (config, redis, error))
    return NULL;
  if (!weft_rate_config_limits (config, weft_node_lookup (node, "limits"), error))
    return NULL;
  return g_steal_pointer (&config);
}

WeftRateConfig *
weft_rate_config_new (WeftPluginContext *ctx, const WeftNode *node, GError **error)
{
  WeftRateConfig *config = weft_rate_config_parse (node, error);

  if (config == NULL)
    return NULL;
  config->slot = weft_plugin_context_get_slot (ctx);
  for (guint i = 0; i < config->limits->len; i++)
    if (!weft_rate_limit_finish (config->limits->pdata[i], ctx, config->key_prefix, error))
      {
        weft_rate_config_free (config);
        return NULL;
      }
  return config;
}
