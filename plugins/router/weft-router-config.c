/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Building the router's intermediate form: the constructors the input
 * formats share.
 */
#include "weft-router-private.h"
#include "weft-route-table-private.h"

#include <string.h>

static void
weft_header_pair_free (WeftHeaderPair *pair)
{
  g_free (pair->name);
  g_free (pair->value);
  g_free (pair);
}

void
weft_header_ops_init (WeftHeaderOps *ops)
{
  *ops = (WeftHeaderOps) { NULL, NULL, NULL };
}

static GPtrArray *
weft_header_list (GPtrArray **list, GDestroyNotify free_func)
{
  if (*list == NULL)
    *list = g_ptr_array_new_with_free_func (free_func);
  return *list;
}

void
weft_header_ops_clear (WeftHeaderOps *ops)
{
  g_clear_pointer (&ops->set, g_ptr_array_unref);
  g_clear_pointer (&ops->add, g_ptr_array_unref);
  g_clear_pointer (&ops->remove, g_ptr_array_unref);
}

static WeftHeaderPair *
weft_header_pair_new (const char *name, const char *value)
{
  WeftHeaderPair *pair = g_new0 (WeftHeaderPair, 1);

  pair->name = g_ascii_strdown (name, -1);
  pair->value = g_strdup (value);
  return pair;
}

void
weft_header_ops_set (WeftHeaderOps *ops, const char *name, const char *value)
{
  g_ptr_array_add (weft_header_list (&ops->set, (GDestroyNotify) weft_header_pair_free),
                   weft_header_pair_new (name, value));
}

void
weft_header_ops_add (WeftHeaderOps *ops, const char *name, const char *value)
{
  g_ptr_array_add (weft_header_list (&ops->add, (GDestroyNotify) weft_header_pair_free),
                   weft_header_pair_new (name, value));
}

void
weft_header_ops_remove (WeftHeaderOps *ops, const char *name)
{
  g_ptr_array_add (weft_header_list (&ops->remove, g_free), g_ascii_strdown (name, -1));
}

WeftRouteDest *
weft_route_dest_new (const char *name, const char *host, guint16 port, double weight,
                     const WeftNode *node)
{
  WeftRouteDest *dest = g_new0 (WeftRouteDest, 1);

  dest->name = g_strdup (name);
  dest->host = g_strdup (host);
  dest->port = port;
  dest->weight = weight;
  dest->node = node;
  weft_header_ops_init (&dest->request_headers);
  weft_header_ops_init (&dest->response_headers);
  return dest;
}

void
weft_route_dest_free (WeftRouteDest *dest)
{
  if (dest == NULL)
    return;
  g_free (dest->name);
  g_free (dest->host);
  weft_header_ops_clear (&dest->request_headers);
  weft_header_ops_clear (&dest->response_headers);
  g_free (dest);
}

static void
weft_route_mirror_free (WeftRouteMirror *mirror)
{
  weft_route_dest_free (mirror->dest);
  g_free (mirror);
}

WeftRouteAction *
weft_route_action_new (const WeftNode *node)
{
  WeftRouteAction *action = g_new0 (WeftRouteAction, 1);

  action->refcount = 1;
  action->node = node;
  action->dests = g_ptr_array_new_with_free_func ((GDestroyNotify) weft_route_dest_free);
  action->mirrors = g_ptr_array_new_with_free_func ((GDestroyNotify) weft_route_mirror_free);
  weft_header_ops_init (&action->request_headers);
  weft_header_ops_init (&action->response_headers);
  return action;
}

WeftRouteAction *
weft_route_action_ref (WeftRouteAction *action)
{
  action->refcount++;
  return action;
}

void
weft_route_action_unref (WeftRouteAction *action)
{
  if (action == NULL || --action->refcount > 0)
    return;
  g_free (action->name);
  g_ptr_array_unref (action->dests);
  g_ptr_array_unref (action->mirrors);
  g_free (action->redirect.scheme);
  g_free (action->redirect.host);
  g_free (action->redirect.path);
  g_free (action->redirect.prefix);
  g_free (action->direct_body);
  g_free (action->rewrite_prefix);
  g_free (action->rewrite_path);
  g_free (action->rewrite_regex);
  g_free (action->rewrite_regex_sub);
  weft_route_regex_free (action->rewrite_re);
  g_free (action->rewrite_authority);
  weft_header_ops_clear (&action->request_headers);
  weft_header_ops_clear (&action->response_headers);
  g_free (action);
}

static void
weft_str_match_clear (WeftStrMatch *m)
{
  g_clear_pointer (&m->value, g_free);
  weft_route_regex_free (m->re);
  m->re = NULL;
}

WeftNamedMatch *
weft_named_match_new (const char *name, WeftStrMatchKind kind, const char *value)
{
  WeftNamedMatch *nm = g_new0 (WeftNamedMatch, 1);

  nm->name = g_strdup (name);
  nm->match.kind = kind;
  nm->match.value = g_strdup (value);
  return nm;
}

static void
weft_named_match_free (WeftNamedMatch *nm)
{
  g_free (nm->name);
  weft_str_match_clear (&nm->match);
  g_free (nm);
}

WeftRouteRule *
weft_route_rule_new (WeftRouteAction *action, const WeftNode *node)
{
  WeftRouteRule *rule = g_new0 (WeftRouteRule, 1);

  rule->action = weft_route_action_ref (action);
  rule->node = node;
  rule->match.headers = g_ptr_array_new_with_free_func ((GDestroyNotify) weft_named_match_free);
  rule->match.query = g_ptr_array_new_with_free_func ((GDestroyNotify) weft_named_match_free);
  return rule;
}

void
weft_route_rule_free (WeftRouteRule *rule)
{
  weft_str_match_clear (&rule->match.path);
  weft_str_match_clear (&rule->match.method);
  weft_str_match_clear (&rule->match.authority);
  g_ptr_array_unref (rule->match.headers);
  g_ptr_array_unref (rule->match.query);
  weft_route_action_unref (rule->action);
  g_free (rule);
}

static void
weft_vhost_free (WeftVirtualHost *vhost)
{
  g_free (vhost->name);
  g_ptr_array_unref (vhost->domains);
  g_ptr_array_unref (vhost->rules);
  g_free (vhost);
}

void
weft_vhost_add_rule (WeftVirtualHost *vhost, WeftRouteRule *rule)
{
  rule->order = vhost->rules->len;
  g_ptr_array_add (vhost->rules, rule);
}

static gboolean
weft_vhost_same_domains (WeftVirtualHost *vhost, const char *const *domains, guint n)
{
  if (vhost->domains->len != n)
    return FALSE;
  for (guint i = 0; i < n; i++)
    if (g_ascii_strcasecmp (vhost->domains->pdata[i], domains[i]) != 0)
      return FALSE;
  return TRUE;
}

WeftVirtualHost *
weft_router_config_vhost (WeftRouterConfig *config, const char *name,
                          const char *const *domains, guint n_domains, const WeftNode *node)
{
  WeftVirtualHost *vhost;

  for (guint i = 0; i < config->vhosts->len; i++)
    {
      vhost = config->vhosts->pdata[i];
      if (weft_vhost_same_domains (vhost, domains, n_domains))
        return vhost;
    }
  vhost = g_new0 (WeftVirtualHost, 1);
  vhost->name = g_strdup (name);
  vhost->node = node;
  vhost->domains = g_ptr_array_new_with_free_func (g_free);
  vhost->rules = g_ptr_array_new_with_free_func ((GDestroyNotify) weft_route_rule_free);
  for (guint i = 0; i < n_domains; i++)
    g_ptr_array_add (vhost->domains, g_ascii_strdown (domains[i], -1));
  g_ptr_array_add (config->vhosts, vhost);
  return vhost;
}

static void
weft_upstream_policy_free (WeftUpstreamPolicy *policy)
{
  g_free (policy->upstream);
  g_free (policy->host);
  g_free (policy->hash_key);
  g_free (policy);
}

WeftUpstreamPolicy *
weft_router_config_policy (WeftRouterConfig *config, const char *upstream, const WeftNode *node)
{
  WeftUpstreamPolicy *policy;

  for (guint i = 0; i < config->policies->len; i++)
    {
      policy = config->policies->pdata[i];
      if (strcmp (policy->upstream, upstream) == 0)
        return policy;
    }
  policy = g_new0 (WeftUpstreamPolicy, 1);
  policy->upstream = g_strdup (upstream);
  policy->node = node;
  g_ptr_array_add (config->policies, policy);
  return policy;
}

WeftRouterConfig *
weft_router_config_new (WeftPluginContext *ctx)
{
  WeftRouterConfig *config = g_new0 (WeftRouterConfig, 1);

  config->ctx = ctx;
  config->vhosts = g_ptr_array_new_with_free_func ((GDestroyNotify) weft_vhost_free);
  config->policies = g_ptr_array_new_with_free_func ((GDestroyNotify) weft_upstream_policy_free);
  return config;
}

typedef gboolean (*WeftRouterAddFunc) (WeftRouterConfig *config, const WeftNode *doc,
                                       GError **error);

static const struct
{
  const char        *kind;
  WeftRouterAddFunc  add;
} weft_router_document_kinds[] = {
  { "VirtualService", weft_router_add_virtual_service },
  { "DestinationRule", weft_router_add_destination_rule },
  { "HTTPRoute", weft_router_add_http_route },
};

static WeftRouterAddFunc
weft_router_add_func (const char *kind)
{
  for (guint i = 0; i < G_N_ELEMENTS (weft_router_document_kinds); i++)
    if (g_strcmp0 (kind, weft_router_document_kinds[i].kind) == 0)
      return weft_router_document_kinds[i].add;
  return NULL;
}

gboolean
weft_router_config_takes_kind (const char *kind)
{
  return weft_router_add_func (kind) != NULL;
}

gboolean
weft_router_config_add_document (WeftRouterConfig *config, const WeftNode *doc, GError **error)
{
  const char *kind = weft_node_get_scalar (weft_node_lookup (doc, "kind"));
  WeftRouterAddFunc add = weft_router_add_func (kind);

  if (add == NULL)
    {
      weft_node_set_error (doc, error, "router: unsupported document kind '%s'",
                           kind ? kind : "");
      return FALSE;
    }
  return add (config, doc, error);
}

void
weft_router_config_free (WeftRouterConfig *config)
{
  if (config == NULL)
    return;
  weft_route_table_free (config->table);
  g_ptr_array_unref (config->vhosts);
  g_ptr_array_unref (config->policies);
  g_free (config);
}
