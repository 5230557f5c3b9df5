/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * weft_router_config_finish: after every input format has filled the
 * intermediate form, check what the translators could not (weights,
 * percentages, header names), resolve destinations to upstreams, make the
 * retry policies, compile the regexes and build the route table.
 *
 * With no plugin context (unit tests, the benchmark) upstreams, upstream
 * policies and retry policies are skipped; everything else runs.
 */
#include "weft-route-table-private.h"

#include <math.h>
#include <string.h>

/* upstreams made or found for a destination name, per port, so an upstream
 * policy for "reviews" reaches "reviews:9080" too */
typedef GHashTable WeftUpstreamsByName;   /* char* -> GPtrArray of WeftUpstream* */

static gboolean
weft_router_percent_ok (double percent)
{
  return isfinite (percent) && percent >= 0 && percent <= 100;
}

static gboolean
weft_router_header_value_ok (const char *value)
{
  for (const char *p = value != NULL ? value : ""; *p != '\0'; p++)
    if ((guchar) *p < 0x20 && *p != '\t')
      return FALSE;
  return TRUE;
}

static gboolean
weft_router_check_pairs (GPtrArray *pairs, const WeftNode *node, GError **error)
{
  for (guint i = 0; i < weft_header_list_len (pairs); i++)
    {
      WeftHeaderPair *pair = pairs->pdata[i];
      if (!weft_route_header_name_valid (pair->name))
        {
          weft_node_set_error (node, error, "'%s' is not a valid header name", pair->name);
          return FALSE;
        }
      if (!weft_router_header_value_ok (pair->value))
        {
          weft_node_set_error (node, error, "the value of header '%s' has a control character",
                               pair->name);
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
weft_router_check_ops (const WeftHeaderOps *ops, const WeftNode *node, GError **error)
{
  if (!weft_router_check_pairs (ops->set, node, error) ||
      !weft_router_check_pairs (ops->add, node, error))
    return FALSE;
  for (guint i = 0; i < weft_header_list_len (ops->remove); i++)
    if (!weft_route_header_name_valid (ops->remove->pdata[i]))
      {
        weft_node_set_error (node, error, "'%s' is not a valid header name",
                             (const char *) ops->remove->pdata[i]);
        return FALSE;
      }
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* upstreams                                                            */
/* ------------------------------------------------------------------ */

static void
weft_upstreams_by_name_add (WeftUpstreamsByName *by_name, const char *name, WeftUpstream *up)
{
  GPtrArray *list = g_hash_table_lookup (by_name, name);

  if (list == NULL)
    {
      list = g_ptr_array_new ();
      g_hash_table_insert (by_name, g_strdup (name), list);
    }
  if (!g_ptr_array_find (list, up, NULL))
    g_ptr_array_add (list, up);
}

/* a declared upstream named @name, else a DNS one on @host and @port */
static WeftUpstream *
weft_router_upstream (WeftPluginContext *ctx, const char *name, const char *host, guint16 port,
                      const WeftNode *node, GError **error)
{
  g_autofree char *dns_name = NULL;
  g_autoptr(GError) local = NULL;
  WeftUpstream *up = weft_plugin_context_lookup_upstream (ctx, name);

  if (up != NULL)
    return up;
  if (!weft_route_host_valid (host))
    {
      weft_node_set_error (node, error,
                           "'%s' is neither a declared upstream nor a valid host name", host);
      return NULL;
    }
  dns_name = port == 0 ? g_strdup (name) : g_strdup_printf ("%s:%u", name, port);
  up = weft_plugin_context_add_upstream (ctx, dns_name, host, port, &local);
  if (up == NULL)
    weft_node_set_error (node, error, "%s", local != NULL ? local->message : "no upstream");
  return up;
}

static gboolean
weft_router_resolve_dest (WeftRouterConfig *config, WeftRouteDest *dest,
                          WeftUpstreamsByName *by_name, GError **error)
{
  if (dest->name == NULL || dest->name[0] == '\0')
    {
      weft_node_set_error (dest->node, error, "a destination needs an upstream name");
      return FALSE;
    }
  if (!weft_router_check_ops (&dest->request_headers, dest->node, error) ||
      !weft_router_check_ops (&dest->response_headers, dest->node, error))
    return FALSE;
  if (config->ctx == NULL)
    return TRUE;
  dest->upstream = weft_router_upstream (config->ctx, dest->name,
                                         dest->host ? dest->host : dest->name, dest->port,
                                         dest->node, error);
  if (dest->upstream == NULL)
    return FALSE;
  weft_upstreams_by_name_add (by_name, dest->name, dest->upstream);
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* actions                                                              */
/* ------------------------------------------------------------------ */

static gboolean
weft_router_check_kind (WeftRouteAction *action, GError **error)
{
  guint kinds = (action->dests->len > 0) + (action->has_redirect != FALSE) +
                (action->direct_status != 0);

  if (kinds != 1)
    {
      weft_node_set_error (action->node, error,
                           "a route needs exactly one of: destinations, a redirect, "
                           "a direct response");
      return FALSE;
    }
  if (action->direct_status != 0 && (action->direct_status < 200 || action->direct_status > 599))
    {
      weft_node_set_error (action->node, error,
                           "direct response status %u is not between 200 and 599",
                           action->direct_status);
      return FALSE;
    }
  if (action->has_redirect && action->redirect.status != 0 &&
      action->redirect.status != 301 && action->redirect.status != 302 &&
      action->redirect.status != 303 && action->redirect.status != 307 &&
      action->redirect.status != 308)
    {
      weft_node_set_error (action->node, error,
                           "redirect status %u is not one of 301, 302, 303, 307, 308",
                           action->redirect.status);
      return FALSE;
    }
  return TRUE;
}

/* cumulative weights, so a pick is one random number and a scan */
static gboolean
weft_router_check_weights (WeftRouteAction *action, GError **error)
{
  double total = 0;

  for (guint i = 0; i < action->dests->len; i++)
    {
      WeftRouteDest *dest = action->dests->pdata[i];
      if (!isfinite (dest->weight) || dest->weight < 0)
        {
          weft_node_set_error (dest->node ? dest->node : action->node, error,
                               "a weight must be a number of at least 0");
          return FALSE;
        }
      total += dest->weight;
      dest->cumulative = total;
      dest->action = action;
    }
  if (action->dests->len > 0 && !(total > 0))
    {
      weft_node_set_error (action->node, error, "at least one destination needs a weight above 0");
      return FALSE;
    }
  return TRUE;
}

static gboolean
weft_router_check_faults (WeftRouteAction *action, GError **error)
{
  if (!weft_router_percent_ok (action->delay_percent) ||
      !weft_router_percent_ok (action->abort_percent))
    {
      weft_node_set_error (action->node, error, "a fault percentage must be from 0 to 100");
      return FALSE;
    }
  if (action->abort_percent > 0 && (action->abort_status < 200 || action->abort_status > 599))
    {
      weft_node_set_error (action->node, error, "fault abort status %u is not between 200 and 599",
                           action->abort_status);
      return FALSE;
    }
  if (action->has_retry && action->retry.n_statuses > WEFT_RETRY_MAX_STATUSES)
    {
      weft_node_set_error (action->node, error, "at most %d retry statuses",
                           WEFT_RETRY_MAX_STATUSES);
      return FALSE;
    }
  return TRUE;
}

static gboolean
weft_router_resolve_mirrors (WeftRouterConfig *config, WeftRouteAction *action,
                             WeftUpstreamsByName *by_name, GError **error)
{
  for (guint i = 0; i < action->mirrors->len; i++)
    {
      WeftRouteMirror *mirror = action->mirrors->pdata[i];
      if (!weft_router_percent_ok (mirror->percent))
        {
          weft_node_set_error (mirror->dest->node ? mirror->dest->node : action->node, error,
                               "a mirror percentage must be from 0 to 100");
          return FALSE;
        }
      if (!weft_router_resolve_dest (config, mirror->dest, by_name, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
weft_router_finish_action (WeftRouterConfig *config, WeftRouteAction *action,
                           WeftUpstreamsByName *by_name, GError **error)
{
  if (!weft_router_check_kind (action, error) ||
      !weft_router_check_weights (action, error) ||
      !weft_router_check_faults (action, error) ||
      !weft_router_check_ops (&action->request_headers, action->node, error) ||
      !weft_router_check_ops (&action->response_headers, action->node, error))
    return FALSE;
  for (guint i = 0; i < action->dests->len; i++)
    if (!weft_router_resolve_dest (config, action->dests->pdata[i], by_name, error))
      return FALSE;
  if (!weft_router_resolve_mirrors (config, action, by_name, error))
    return FALSE;
  if (action->has_retry && config->ctx != NULL && action->retry_policy == NULL)
    action->retry_policy = weft_plugin_context_new_retry_policy (config->ctx, &action->retry);
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* upstream policies                                                    */
/* ------------------------------------------------------------------ */

static gboolean
weft_router_configure (WeftRouterConfig *config, WeftUpstreamPolicy *policy, WeftUpstream *up,
                       GError **error)
{
  g_autoptr(GError) local = NULL;

  if (policy->has_lb)
    policy->lb.hash_key = policy->hash_key;
  if (weft_plugin_context_configure_upstream (config->ctx, up,
                                              policy->has_lb ? &policy->lb : NULL,
                                              policy->has_outlier ? &policy->outlier : NULL,
                                              policy->has_pool ? &policy->pool : NULL, &local))
    return TRUE;
  weft_node_set_error (policy->node, error, "%s", local != NULL ? local->message : "failed");
  return FALSE;
}

static gboolean
weft_router_apply_policy (WeftRouterConfig *config, WeftUpstreamPolicy *policy,
                          WeftUpstreamsByName *by_name, GError **error)
{
  GPtrArray *ports = g_hash_table_lookup (by_name, policy->upstream);
  WeftUpstream *up = weft_plugin_context_lookup_upstream (config->ctx, policy->upstream);

  /* only make a DNS upstream when no route made one for this name */
  if (up == NULL && ports == NULL)
    up = weft_router_upstream (config->ctx, policy->upstream,
                               policy->host ? policy->host : policy->upstream, 0,
                               policy->node, error);
  if (up == NULL && ports == NULL)
    return FALSE;
  if (up != NULL && (ports == NULL || !g_ptr_array_find (ports, up, NULL)) &&
      !weft_router_configure (config, policy, up, error))
    return FALSE;
  for (guint i = 0; ports != NULL && i < ports->len; i++)
    if (!weft_router_configure (config, policy, ports->pdata[i], error))
      return FALSE;
  return TRUE;
}

gboolean
weft_router_config_finish (WeftRouterConfig *config, GError **error)
{
  g_autoptr(GHashTable) done = g_hash_table_new (NULL, NULL);
  g_autoptr(GHashTable) by_name = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                         (GDestroyNotify) g_ptr_array_unref);

  for (guint v = 0; v < config->vhosts->len; v++)
    {
      WeftVirtualHost *vhost = config->vhosts->pdata[v];
      for (guint i = 0; i < vhost->rules->len; i++)
        {
          WeftRouteAction *action = ((WeftRouteRule *) vhost->rules->pdata[i])->action;
          /* match blocks of one rule share their action */
          if (g_hash_table_add (done, action) &&
              !weft_router_finish_action (config, action, by_name, error))
            return FALSE;
        }
    }
  if (!weft_route_compile_regexes (config, error))
    return FALSE;
  for (guint i = 0; config->ctx != NULL && i < config->policies->len; i++)
    if (!weft_router_apply_policy (config, config->policies->pdata[i], by_name, error))
      return FALSE;
  weft_route_table_free (config->table);
  config->table = weft_route_table_new (config, error);
  return config->table != NULL;
}
