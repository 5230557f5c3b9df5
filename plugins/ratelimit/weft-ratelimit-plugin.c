/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * ratelimit: token-bucket rate limits for weft. Local limits are exact
 * across workers (weft-rate-table.c); global ones are counted in Redis by
 * a Lua script, so several sidecars share one budget. The PRE_ACCESS hook
 * walks the listener's limits in order; a global check suspends the
 * request until Redis answers or the timeout passes, and the worker serves
 * others meanwhile. A refused request gets 429 with Retry-After and the
 * IETF draft's RateLimit-Policy and RateLimit headers.
 */
#include "weft-ratelimit-private.h"
#include "weft-redis-client-private.h"

#include <string.h>

#define WEFT_RATE_KEY_MAX 512

typedef struct {
  WeftRateConfig  *config;
  WeftRateLimit  **limits;     /* those that apply on this listener, in order */
  guint            n_limits;
} WeftRateInstance;

typedef struct {
  WeftRedisClient *redis;      /* made on first use, on the worker's thread */
  char             key[WEFT_RATE_KEY_MAX];
} WeftRateWorker;

/* a request waiting for Redis; lives in the request's arena */
typedef struct {
  WeftRequest      *req;
  WeftRateInstance *inst;
  WeftRateWorker   *w;
  WeftRateLimit    *limit;     /* the limit being checked */
  guint             next;      /* the limit after it */
  guint64           handle;
} WeftRateWait;

static WeftHookResult weft_rate_walk (WeftRequest *req, WeftRateInstance *inst,
                                      WeftRateWorker *w, guint from, WeftRateWait *wait);

/* ------------------------------------------------------------------ */
/* control side                                                         */
/* ------------------------------------------------------------------ */

static gpointer
weft_rate_config_new_cb (WeftPluginContext *ctx, const WeftNode *node, GError **error)
{
  return weft_rate_config_new (ctx, node, error);
}

static void
weft_rate_config_free_cb (gpointer data)
{
  weft_rate_config_free (data);
}

static gboolean
weft_rate_on_listener (const WeftRateLimit *limit, const char *listener)
{
  return limit->listeners == NULL || g_strv_contains ((const char *const *) limit->listeners,
                                                      listener);
}

static gpointer
weft_rate_instance_new (gpointer data, const WeftListenerInfo *listener, const WeftNode *node,
                        GError **error)
{
  WeftRateConfig *config = data;
  WeftRateInstance *inst;

  if (!weft_node_is_null (node))
    {
      weft_node_set_error (node, error, "ratelimit takes no listener settings; scope a limit "
                           "to listeners with its 'listeners' key");
      return NULL;
    }
  inst = g_new0 (WeftRateInstance, 1);
  inst->config = config;
  inst->limits = g_new0 (WeftRateLimit *, config->limits->len + 1);
  for (guint i = 0; i < config->limits->len; i++)
    if (weft_rate_on_listener (config->limits->pdata[i], listener->name))
      inst->limits[inst->n_limits++] = config->limits->pdata[i];
  return inst;
}

static void
weft_rate_instance_free (gpointer data)
{
  WeftRateInstance *inst = data;

  g_free (inst->limits);
  g_free (inst);
}

static gpointer
weft_rate_worker_init (gpointer config, guint worker_index)
{
  (void) config;
  (void) worker_index;
  return g_new0 (WeftRateWorker, 1);
}

static void
weft_rate_worker_fini (gpointer config, gpointer data)
{
  WeftRateWorker *w = data;

  (void) config;
  weft_redis_client_free (w->redis);
  g_free (w);
}

/* ------------------------------------------------------------------ */
/* answers                                                              */
/* ------------------------------------------------------------------ */

static guint64
weft_rate_seconds (guint64 us)
{
  return MAX ((us + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC, 1);
}

/* 429 with Retry-After, RateLimit-Policy and RateLimit (the IETF draft) */
static WeftHookResult
weft_rate_refuse (WeftRequest *req, WeftRateWorker *w, const WeftRateLimit *limit,
                  const WeftRateVerdict *v)
{
  guint64 wait_s = weft_rate_seconds (v->retry_us);

  weft_metric_series_add (limit->limited, 1);
  g_snprintf (w->key, sizeof w->key, "%" G_GUINT64_FORMAT, wait_s);
  weft_request_add_response_header (req, "retry-after", w->key);
  weft_request_add_response_header (req, "ratelimit-policy", limit->policy_header);
  g_snprintf (w->key, sizeof w->key, "\"%s\";r=0;t=%" G_GUINT64_FORMAT, limit->name, wait_s);
  weft_request_add_response_header (req, "ratelimit", w->key);
  weft_request_set_error_reason (req, "rate_limited");
  weft_request_add_response_flags (req, WEFT_RESPONSE_FLAG_RATE_LIMITED);
  weft_request_respond (req, 429, "text/plain", "429 Too Many Requests: rate_limited\n", -1);
  return WEFT_HOOK_RESPOND;
}

/* Redis could not decide: let the request through, or refuse it */
static WeftHookResult
weft_rate_unavailable (WeftRequest *req, const WeftRateConfig *config, const WeftRateLimit *limit)
{
  if (config->fail_open)
    {
      weft_metric_series_add (limit->failed_open, 1);
      return WEFT_HOOK_CONTINUE;
    }
  weft_metric_series_add (limit->failed_closed, 1);
  weft_request_add_response_header (req, "retry-after", "1");
  weft_request_set_error_reason (req, "ratelimit_unavailable");
  weft_request_add_response_flags (req, WEFT_RESPONSE_FLAG_RATE_LIMIT_SERVICE_ERROR);
  weft_request_respond (req, 503, "text/plain",
                        "503 Service Unavailable: ratelimit_unavailable\n", -1);
  return WEFT_HOOK_RESPOND;
}

/* ------------------------------------------------------------------ */
/* checks                                                               */
/* ------------------------------------------------------------------ */

static gboolean
weft_rate_applies (const WeftRateLimit *limit, WeftRequest *req, WeftPolicyInput *in,
                   gboolean *have_in)
{
  if (limit->routes != NULL)
    {
      const char *route = weft_request_get_route_name (req);
      if (route == NULL || !g_strv_contains ((const char *const *) limit->routes, route))
        return FALSE;
    }
  if (limit->match == NULL)
    return TRUE;
  if (!*have_in)
    {
      weft_policy_input_init (in, req);
      *have_in = TRUE;
    }
  return weft_policy_rule_match (limit->match, in);
}

/* the value a limit keys its buckets on; "" when the request has none, so
 * requests without it share one bucket instead of escaping the limit */
static const char *
weft_rate_key_value (const WeftRateLimit *limit, WeftRequest *req)
{
  const char *v = NULL;

  switch (limit->key)
    {
    case WEFT_RATE_KEY_PRINCIPAL:
      v = weft_policy_principal (weft_request_get_peer_identity (req));
      break;
    case WEFT_RATE_KEY_SOURCE_IP:
      v = weft_request_get_peer_ip (req);
      break;
    case WEFT_RATE_KEY_HEADER:
      v = weft_request_get_header (req, limit->header);
      break;
    case WEFT_RATE_KEY_ROUTE:
      v = weft_request_get_route_name (req);
      break;
    case WEFT_RATE_KEY_NONE:
    default:
      break;
    }
  return v != NULL ? v : "";
}

static void
weft_rate_redis_reply (gpointer data, gboolean ok, const WeftRateVerdict *v)
{
  WeftRateWait *wait = data;
  WeftRequest *req = wait->req;
  WeftHookResult r;

  if (!ok)
    r = weft_rate_unavailable (req, wait->inst->config, wait->limit);
  else if (!v->admitted)
    r = weft_rate_refuse (req, wait->w, wait->limit, v);
  else
    {
      weft_metric_series_add (wait->limit->admitted, 1);
      r = WEFT_HOOK_CONTINUE;
    }
  if (r == WEFT_HOOK_CONTINUE)
    r = weft_rate_walk (req, wait->inst, wait->w, wait->next, wait);
  if (r != WEFT_HOOK_SUSPEND)
    weft_request_resume (req, r);
}

static void
weft_rate_cancel (WeftRequest *req, gpointer data)
{
  WeftRateWait *wait = data;

  (void) req;
  weft_redis_client_forget (wait->w->redis, wait->handle);
}

/* sends a global check to Redis and suspends the request on it */
static WeftHookResult
weft_rate_global (WeftRequest *req, WeftRateInstance *inst, WeftRateWorker *w, guint idx,
                  WeftRateWait *wait)
{
  const WeftRateConfig *config = inst->config;
  WeftRateLimit *limit = inst->limits[idx];
  const char *value = weft_rate_key_value (limit, req);
  gsize len = strlen (limit->redis_key) + strlen (value);
  char *key = len < sizeof w->key ? w->key : weft_request_alloc (req, len + 1);

  g_snprintf (key, len + 1, "%s%s", limit->redis_key, value);
  if (w->redis == NULL)
    w->redis = weft_redis_client_new ((const struct sockaddr *) &config->redis_addr,
                                      config->redis_addr_len, config->redis_timeout_ms);
  if (wait == NULL)
    {
      wait = weft_request_alloc (req, sizeof *wait);
      wait->req = req;
      wait->inst = inst;
      wait->w = w;
    }
  wait->limit = limit;
  wait->next = idx + 1;
  if (!weft_redis_client_take (w->redis, key, len, limit->interval_us, limit->burst,
                               weft_rate_redis_reply, wait, &wait->handle))
    {
      WeftHookResult r = weft_rate_unavailable (req, config, limit);
      return r == WEFT_HOOK_CONTINUE ? weft_rate_walk (req, inst, w, idx + 1, wait) : r;
    }
  weft_request_suspend (req, weft_rate_cancel, wait);
  return WEFT_HOOK_SUSPEND;
}

/* the limits from @from on: CONTINUE, RESPOND (refused), or SUSPEND (a
 * Redis check is out and will carry on from its reply) */
static WeftHookResult
weft_rate_walk (WeftRequest *req, WeftRateInstance *inst, WeftRateWorker *w, guint from,
                WeftRateWait *wait)
{
  WeftPolicyInput in;
  gboolean have_in = FALSE;
  gint64 now = 0;

  for (guint i = from; i < inst->n_limits; i++)
    {
      WeftRateLimit *limit = inst->limits[i];
      WeftRateVerdict v;
      const char *value;

      if (!weft_rate_applies (limit, req, &in, &have_in))
        continue;
      if (limit->global)
        return weft_rate_global (req, inst, w, i, wait);
      value = weft_rate_key_value (limit, req);
      now = now != 0 ? now : g_get_monotonic_time ();
      weft_rate_table_take (limit->table, value, strlen (value), now, &v);
      if (v.overflow)
        weft_metric_series_add (limit->overflow, 1);
      if (!v.admitted)
        return weft_rate_refuse (req, w, limit, &v);
      weft_metric_series_add (limit->admitted, 1);
    }
  return WEFT_HOOK_CONTINUE;
}

static WeftHookResult
weft_rate_pre_access (WeftRequest *req, gpointer data, gpointer worker_data)
{
  WeftRateInstance *inst = data;

  if (inst->n_limits == 0 || worker_data == NULL)
    return WEFT_HOOK_CONTINUE;
  return weft_rate_walk (req, inst, worker_data, 0, NULL);
}

static const WeftPluginDescriptor weft_rate_descriptor = {
  .abi_version = WEFT_PLUGIN_ABI_VERSION,
  .struct_size = sizeof (WeftPluginDescriptor),
  .name = "ratelimit",
  .version = "0.1.0",
  .description = "Token-bucket rate limits, exact across workers, optionally global through Redis",
  .config_new = weft_rate_config_new_cb,
  .config_free = weft_rate_config_free_cb,
  .instance_new = weft_rate_instance_new,
  .instance_free = weft_rate_instance_free,
  .worker_init = weft_rate_worker_init,
  .worker_fini = weft_rate_worker_fini,
  .hooks = {
    [WEFT_PHASE_PRE_ACCESS] = weft_rate_pre_access,
  },
};

WEFT_PLUGIN_DEFINE (weft_rate_descriptor)
