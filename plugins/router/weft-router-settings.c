/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * weft's own route format: the router's top-level settings, translated
 * into the intermediate form. docs/config.md ("router: routing rules") describes every key.
 *
 *   router:
 *     virtual_hosts:
 *       - domains: [service-b, "*"]
 *         routes:
 *           - match: {path: {prefix: /api}, method: GET}
 *             upstream: api
 *     upstream_policies:
 *       - upstream: api
 *         load_balancer: {policy: least_request}
 */
#include "weft-route-table-private.h"

#include <string.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC (WeftRouteAction, weft_route_action_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (WeftRouteRule, weft_route_rule_free)

/* ------------------------------------------------------------------ */
/* typed lookups: a missing or null value leaves *out as it is          */
/* ------------------------------------------------------------------ */

static const WeftNode *
weft_settings_get (const WeftNode *map, const char *key)
{
  const WeftNode *v = weft_node_lookup (map, key);

  return weft_node_is_null (v) ? NULL : v;
}

static gboolean
weft_settings_missing (const WeftNode *map, const char *what, const char *key, GError **error)
{
  weft_node_set_error (map, error, "%s is missing '%s'", what, key);
  return FALSE;
}

static gboolean
weft_settings_string (const WeftNode *map, const char *key, const char **out, GError **error)
{
  const WeftNode *v = weft_settings_get (map, key);

  return v == NULL || weft_node_get_string (v, out, error);
}

static gboolean
weft_settings_boolean (const WeftNode *map, const char *key, gboolean *out, GError **error)
{
  const WeftNode *v = weft_settings_get (map, key);

  return v == NULL || weft_node_get_boolean (v, out, error);
}

static gboolean
weft_settings_duration (const WeftNode *map, const char *key, guint64 *out, GError **error)
{
  const WeftNode *v = weft_settings_get (map, key);

  return v == NULL || weft_node_get_duration (v, out, error);
}

static gboolean
weft_settings_uint (const WeftNode *map, const char *key, guint min, guint max, guint *out,
                    GError **error)
{
  const WeftNode *v = weft_settings_get (map, key);
  guint64 n = 0;

  if (v == NULL)
    return TRUE;
  if (!weft_node_get_uint64 (v, &n, error))
    return FALSE;
  if (n < min || n > max)
    {
      weft_node_set_error (v, error, "'%s' must be between %u and %u", key, min, max);
      return FALSE;
    }
  *out = (guint) n;
  return TRUE;
}

static gboolean
weft_settings_port (const WeftNode *map, const char *key, guint16 *out, GError **error)
{
  guint port = *out;

  if (!weft_settings_uint (map, key, 1, 65535, &port, error))
    return FALSE;
  *out = (guint16) port;
  return TRUE;
}

static gboolean
weft_settings_percent (const WeftNode *map, const char *key, double *out, GError **error)
{
  const WeftNode *v = weft_settings_get (map, key);
  double d = 0;

  if (v == NULL)
    return TRUE;
  if (!weft_node_get_double (v, &d, error))
    return FALSE;
  if (d < 0 || d > 100)
    {
      weft_node_set_error (v, error, "'%s' must be a percentage from 0 to 100", key);
      return FALSE;
    }
  *out = d;
  return TRUE;
}

/* a scalar is a list of one */
static guint
weft_settings_n_items (const WeftNode *node)
{
  if (node == NULL)
    return 0;
  return weft_node_get_kind (node) == WEFT_NODE_SEQ ? weft_node_get_length (node) : 1;
}

static const WeftNode *
weft_settings_item (const WeftNode *node, guint i)
{
  return weft_node_get_kind (node) == WEFT_NODE_SEQ ? weft_node_get_item (node, i) : node;
}

/* how many of @keys @map has; errors at @map unless exactly one (or, with
 * @optional, none) */
static const char *
weft_settings_one_of (const WeftNode *map, const char *const *keys, gboolean optional,
                      const char *what, GError **error)
{
  const char *found = NULL;
  guint n = 0;

  for (guint i = 0; keys[i] != NULL; i++)
    if (weft_settings_get (map, keys[i]) != NULL)
      {
        found = found ? found : keys[i];
        n++;
      }
  if (n == 1 || (n == 0 && optional))
    return found ? found : "";
  g_autofree char *list = g_strjoinv (", ", (char **) keys);
  weft_node_set_error (map, error, "%s needs %s of: %s", what,
                       optional ? "at most one" : "exactly one", list);
  return NULL;
}

/* ------------------------------------------------------------------ */
/* matches                                                              */
/* ------------------------------------------------------------------ */

static gboolean
weft_settings_str_match (const WeftNode *node, WeftStrMatch *m, const char *kind_key,
                         GError **error)
{
  static const struct { const char *key; WeftStrMatchKind kind; } kinds[] = {
    { "exact", WEFT_STR_EXACT }, { "prefix", WEFT_STR_PREFIX },
    { "segment_prefix", WEFT_STR_PREFIX }, { "regex", WEFT_STR_REGEX },
  };
  const char *value = NULL;

  for (gsize i = 0; i < G_N_ELEMENTS (kinds); i++)
    if (g_str_equal (kinds[i].key, kind_key))
      {
        m->kind = kinds[i].kind;
        m->segment_prefix = g_str_equal (kind_key, "segment_prefix");
        m->node = weft_settings_get (node, kind_key);
      }
  if (!weft_settings_string (node, kind_key, &value, error))
    return FALSE;
  g_free (m->value);
  m->value = g_strdup (value);
  return TRUE;
}

static gboolean
weft_settings_path (const WeftNode *node, WeftStrMatch *m, GError **error)
{
  static const char *const keys[] = { "exact", "prefix", "segment_prefix", "regex",
                                      "ignore_case", NULL };
  static const char *const kinds[] = { "exact", "prefix", "segment_prefix", "regex", NULL };
  const char *kind;

  if (!weft_node_check_keys (node, keys, error) ||
      (kind = weft_settings_one_of (node, kinds, FALSE, "a path match", error)) == NULL ||
      !weft_settings_str_match (node, m, kind, error) ||
      !weft_settings_boolean (node, "ignore_case", &m->ignore_case, error))
    return FALSE;
  if (m->kind != WEFT_STR_REGEX && m->value[0] != '/')
    {
      weft_node_set_error (m->node, error, "a path must start with '/'");
      return FALSE;
    }
  return TRUE;
}

static gboolean
weft_settings_authority (const WeftNode *node, WeftStrMatch *m, GError **error)
{
  static const char *const keys[] = { "exact", "prefix", "regex", NULL };
  const char *kind;

  if (!weft_node_check_keys (node, keys, error) ||
      (kind = weft_settings_one_of (node, keys, FALSE, "an authority match", error)) == NULL ||
      !weft_settings_str_match (node, m, kind, error))
    return FALSE;
  /* host names compare without case */
  m->ignore_case = TRUE;
  return TRUE;
}

/* "GET", or {regex: "GET|HEAD"}; a list is handled by the caller */
static gboolean
weft_settings_method (const WeftNode *node, WeftStrMatch *m, GError **error)
{
  static const char *const keys[] = { "regex", NULL };
  const char *value = NULL;

  if (weft_node_get_kind (node) == WEFT_NODE_MAP)
    {
      if (!weft_node_check_keys (node, keys, error))
        return FALSE;
      if (weft_settings_get (node, "regex") == NULL)
        return weft_settings_missing (node, "a method match", "regex", error);
      return weft_settings_str_match (node, m, "regex", error);
    }
  if (!weft_node_get_string (node, &value, error))
    return FALSE;
  if (!weft_route_header_name_valid (value))
    {
      weft_node_set_error (node, error, "'%s' is not a valid method", value);
      return FALSE;
    }
  m->kind = WEFT_STR_EXACT;
  m->value = g_strdup (value);
  m->node = node;
  return TRUE;
}

/* {name: x-a, exact: v} and friends, for headers and query parameters,
 * added to @into (which frees them) */
static gboolean
weft_settings_named (const WeftNode *node, gboolean is_header, GPtrArray *into, GError **error)
{
  static const char *const keys[] = { "name", "exact", "prefix", "regex", "present", "absent",
                                      "invert", "ignore_case", NULL };
  static const char *const kinds[] = { "exact", "prefix", "regex", "present", "absent", NULL };
  const char *what = is_header ? "a header match" : "a query match";
  const char *name = NULL;
  const char *kind;
  gboolean flag = TRUE;
  WeftNamedMatch *nm;

  if (!weft_node_check_keys (node, keys, error) ||
      !weft_settings_string (node, "name", &name, error))
    return FALSE;
  if (name == NULL)
    return weft_settings_missing (node, what, "name", error);
  if (is_header && !weft_route_header_name_valid (name))
    {
      weft_node_set_error (weft_settings_get (node, "name"), error,
                           "'%s' is not a valid header name", name);
      return FALSE;
    }
  if ((kind = weft_settings_one_of (node, kinds, FALSE, what, error)) == NULL)
    return FALSE;

  g_autofree char *key = is_header ? g_ascii_strdown (name, -1) : g_strdup (name);
  nm = weft_named_match_new (key, WEFT_STR_ANY, NULL);
  g_ptr_array_add (into, nm);
  if (g_str_equal (kind, "present") || g_str_equal (kind, "absent"))
    {
      /* present: false is absent, and absent: false is present */
      if (!weft_settings_boolean (node, kind, &flag, error))
        return FALSE;
      nm->match.kind = flag == g_str_equal (kind, "present") ? WEFT_STR_PRESENT
                                                               : WEFT_STR_ABSENT;
    }
  else if (!weft_settings_str_match (node, &nm->match, kind, error))
    return FALSE;
  return weft_settings_boolean (node, "invert", &nm->match.invert, error) &&
         weft_settings_boolean (node, "ignore_case", &nm->match.ignore_case, error);
}

static gboolean
weft_settings_named_list (const WeftNode *map, const char *key, gboolean is_header,
                          GPtrArray *into, GError **error)
{
  const WeftNode *list = weft_settings_get (map, key);

  if (list == NULL)
    return TRUE;
  if (!weft_node_expect_kind (list, WEFT_NODE_SEQ, error))
    return FALSE;
  for (guint i = 0; i < weft_node_get_length (list); i++)
    if (!weft_settings_named (weft_node_get_item (list, i), is_header, into, error))
      return FALSE;
  return TRUE;
}

/* one rule: a match block (NULL = every request) with one method */
static gboolean
weft_settings_rule (WeftVirtualHost *vhost, WeftRouteAction *action, const WeftNode *block,
                    const WeftNode *method, GError **error)
{
  static const char *const keys[] = { "path", "method", "headers", "query", "authority", NULL };
  g_autoptr(WeftRouteRule) rule = weft_route_rule_new (action, block ? block : action->node);
  const WeftNode *v;

  if (block != NULL && !weft_node_check_keys (block, keys, error))
    return FALSE;
  if (block != NULL && (v = weft_settings_get (block, "path")) != NULL &&
      !weft_settings_path (v, &rule->match.path, error))
    return FALSE;
  if (block != NULL && (v = weft_settings_get (block, "authority")) != NULL &&
      !weft_settings_authority (v, &rule->match.authority, error))
    return FALSE;
  if (method != NULL && !weft_settings_method (method, &rule->match.method, error))
    return FALSE;
  if (block != NULL &&
      (!weft_settings_named_list (block, "headers", TRUE, rule->match.headers, error) ||
       !weft_settings_named_list (block, "query", FALSE, rule->match.query, error)))
    return FALSE;
  weft_vhost_add_rule (vhost, g_steal_pointer (&rule));
  return TRUE;
}

/* a list of methods is one rule per method, in order */
static gboolean
weft_settings_block (WeftVirtualHost *vhost, WeftRouteAction *action, const WeftNode *block,
                     GError **error)
{
  const WeftNode *methods = block != NULL && weft_node_get_kind (block) == WEFT_NODE_MAP
                            ? weft_settings_get (block, "method") : NULL;

  if (methods == NULL || weft_node_get_kind (methods) != WEFT_NODE_SEQ)
    return weft_settings_rule (vhost, action, block, methods, error);
  if (weft_node_get_length (methods) == 0)
    {
      weft_node_set_error (methods, error, "the method list is empty");
      return FALSE;
    }
  for (guint i = 0; i < weft_node_get_length (methods); i++)
    if (!weft_settings_rule (vhost, action, block, weft_node_get_item (methods, i), error))
      return FALSE;
  return TRUE;
}

/* match: one block, or a list of blocks any of which may match */
static gboolean
weft_settings_match (WeftVirtualHost *vhost, WeftRouteAction *action, const WeftNode *route,
                     GError **error)
{
  const WeftNode *match = weft_settings_get (route, "match");

  if (match == NULL)
    return weft_settings_block (vhost, action, NULL, error);
  if (weft_node_get_kind (match) == WEFT_NODE_SEQ && weft_node_get_length (match) == 0)
    {
      weft_node_set_error (match, error, "the match list is empty");
      return FALSE;
    }
  if (weft_node_get_kind (match) == WEFT_NODE_SCALAR)
    return weft_node_expect_kind (match, WEFT_NODE_MAP, error);
  for (guint i = 0; i < weft_settings_n_items (match); i++)
    if (!weft_settings_block (vhost, action, weft_settings_item (match, i), error))
      return FALSE;
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* header operations                                                    */
/* ------------------------------------------------------------------ */

typedef void (*WeftHeaderOpFunc) (WeftHeaderOps *ops, const char *name, const char *value);

static gboolean
weft_settings_header_map (const WeftNode *map, WeftHeaderOps *ops, WeftHeaderOpFunc op,
                          GError **error)
{
  if (!weft_node_expect_kind (map, WEFT_NODE_MAP, error))
    return FALSE;
  for (guint i = 0; i < weft_node_get_length (map); i++)
    {
      const WeftNode *key = weft_node_get_key (map, i);
      const WeftNode *value = weft_node_get_value (map, i);
      const char *name = weft_node_get_scalar (key);
      const char *text = NULL;

      if (!weft_route_header_name_valid (name))
        {
          weft_node_set_error (key, error, "'%s' is not a valid header name", name);
          return FALSE;
        }
      /* an empty value is a value here, not an absent key */
      text = weft_node_get_kind (value) == WEFT_NODE_SCALAR ? weft_node_get_scalar (value) : NULL;
      if (text == NULL && !weft_node_get_string (value, &text, error))
        return FALSE;
      if (strpbrk (text, "\r\n") != NULL)
        {
          weft_node_set_error (value, error, "a header value may not contain a line break");
          return FALSE;
        }
      op (ops, name, text);
    }
  return TRUE;
}

static gboolean
weft_settings_header_remove (const WeftNode *list, WeftHeaderOps *ops, GError **error)
{
  for (guint i = 0; i < weft_settings_n_items (list); i++)
    {
      const WeftNode *item = weft_settings_item (list, i);
      const char *name = NULL;

      if (!weft_node_get_string (item, &name, error))
        return FALSE;
      if (!weft_route_header_name_valid (name))
        {
          weft_node_set_error (item, error, "'%s' is not a valid header name", name);
          return FALSE;
        }
      weft_header_ops_remove (ops, name);
    }
  return TRUE;
}

static gboolean
weft_settings_header_ops (const WeftNode *map, const char *key, WeftHeaderOps *ops,
                          GError **error)
{
  static const char *const keys[] = { "set", "add", "remove", NULL };
  const WeftNode *node = weft_settings_get (map, key);
  const WeftNode *v;

  if (node == NULL)
    return TRUE;
  if (!weft_node_check_keys (node, keys, error))
    return FALSE;
  if ((v = weft_settings_get (node, "set")) != NULL &&
      !weft_settings_header_map (v, ops, weft_header_ops_set, error))
    return FALSE;
  if ((v = weft_settings_get (node, "add")) != NULL &&
      !weft_settings_header_map (v, ops, weft_header_ops_add, error))
    return FALSE;
  v = weft_settings_get (node, "remove");
  return v == NULL || weft_settings_header_remove (v, ops, error);
}

/* ------------------------------------------------------------------ */
/* where a route goes                                                   */
/* ------------------------------------------------------------------ */

static gboolean
weft_settings_upstream_name (const WeftNode *map, const char *what, const char **name,
                             GError **error)
{
  *name = NULL;
  if (!weft_settings_string (map, "upstream", name, error))
    return FALSE;
  if (*name == NULL)
    return weft_settings_missing (map, what, "upstream", error);
  return TRUE;
}

static gboolean
weft_settings_split_entry (WeftRouteAction *action, const WeftNode *node, GError **error)
{
  static const char *const keys[] = { "upstream", "weight", "port", "request_headers",
                                      "response_headers", NULL };
  const char *name = NULL;
  const WeftNode *w;
  double weight = 0;
  guint16 port = 0;
  WeftRouteDest *dest;

  if (!weft_node_check_keys (node, keys, error) ||
      !weft_settings_upstream_name (node, "a split entry", &name, error) ||
      !weft_settings_port (node, "port", &port, error))
    return FALSE;
  if ((w = weft_settings_get (node, "weight")) == NULL)
    return weft_settings_missing (node, "a split entry", "weight", error);
  if (!weft_node_get_double (w, &weight, error))
    return FALSE;
  if (weight < 0)
    {
      weft_node_set_error (w, error, "a weight must be at least 0");
      return FALSE;
    }
  dest = weft_route_dest_new (name, NULL, port, weight, node);
  g_ptr_array_add (action->dests, dest);
  return weft_settings_header_ops (node, "request_headers", &dest->request_headers, error) &&
         weft_settings_header_ops (node, "response_headers", &dest->response_headers, error);
}

static gboolean
weft_settings_split (WeftRouteAction *action, const WeftNode *list, GError **error)
{
  if (!weft_node_expect_kind (list, WEFT_NODE_SEQ, error))
    return FALSE;
  if (weft_node_get_length (list) == 0)
    {
      weft_node_set_error (list, error, "a split needs at least one entry");
      return FALSE;
    }
  for (guint i = 0; i < weft_node_get_length (list); i++)
    if (!weft_settings_split_entry (action, weft_node_get_item (list, i), error))
      return FALSE;
  return TRUE;
}

static gboolean
weft_settings_redirect_status (const WeftNode *node, guint *status, GError **error)
{
  const WeftNode *v = weft_settings_get (node, "status");

  *status = 301;
  if (!weft_settings_uint (node, "status", 300, 399, status, error))
    return FALSE;
  if (*status == 301 || *status == 302 || *status == 303 || *status == 307 || *status == 308)
    return TRUE;
  weft_node_set_error (v, error, "a redirect status must be 301, 302, 303, 307 or 308");
  return FALSE;
}

static gboolean
weft_settings_redirect (WeftRouteAction *action, const WeftNode *node, GError **error)
{
  static const char *const keys[] = { "scheme", "host", "port", "path", "prefix", "status", NULL };
  static const char *const paths[] = { "path", "prefix", NULL };
  WeftRouteRedirect *r = &action->redirect;
  const char *scheme = NULL, *host = NULL, *path = NULL, *prefix = NULL;

  if (!weft_node_check_keys (node, keys, error) ||
      weft_settings_one_of (node, paths, TRUE, "a redirect", error) == NULL ||
      !weft_settings_string (node, "scheme", &scheme, error) ||
      !weft_settings_string (node, "host", &host, error) ||
      !weft_settings_string (node, "path", &path, error) ||
      !weft_settings_string (node, "prefix", &prefix, error) ||
      !weft_settings_port (node, "port", &r->port, error) ||
      !weft_settings_redirect_status (node, &r->status, error))
    return FALSE;
  if (scheme != NULL && !g_str_equal (scheme, "http") && !g_str_equal (scheme, "https"))
    {
      weft_node_set_error (weft_settings_get (node, "scheme"), error,
                           "a redirect scheme must be http or https");
      return FALSE;
    }
  if (host != NULL && !weft_route_host_valid (host))
    {
      weft_node_set_error (weft_settings_get (node, "host"), error,
                           "'%s' is not a valid host name", host);
      return FALSE;
    }
  if ((path != NULL && path[0] != '/') || (prefix != NULL && prefix[0] != '/'))
    {
      weft_node_set_error (weft_settings_get (node, path ? "path" : "prefix"), error,
                           "a path must start with '/'");
      return FALSE;
    }
  action->has_redirect = TRUE;
  r->scheme = g_strdup (scheme);
  r->host = host != NULL ? g_ascii_strdown (host, -1) : NULL;
  r->path = g_strdup (path);
  r->prefix = g_strdup (prefix);
  return TRUE;
}

static gboolean
weft_settings_direct (WeftRouteAction *action, const WeftNode *node, GError **error)
{
  static const char *const keys[] = { "status", "body", NULL };
  const char *body = NULL;

  if (!weft_node_check_keys (node, keys, error))
    return FALSE;
  if (weft_settings_get (node, "status") == NULL)
    return weft_settings_missing (node, "a direct response", "status", error);
  if (!weft_settings_uint (node, "status", 200, 599, &action->direct_status, error) ||
      !weft_settings_string (node, "body", &body, error))
    return FALSE;
  action->direct_body = g_strdup (body);
  return TRUE;
}

static gboolean
weft_settings_target (WeftRouteAction *action, const WeftNode *route, const char *target,
                      GError **error)
{
  const WeftNode *node = weft_settings_get (route, target);
  const WeftNode *port = weft_settings_get (route, "port");
  const char *name = NULL;
  guint16 p = 0;

  if (port != NULL && !g_str_equal (target, "upstream"))
    {
      weft_node_set_error (port, error, "'port' goes with 'upstream' (a split entry has its own)");
      return FALSE;
    }
  if (g_str_equal (target, "split"))
    return weft_settings_split (action, node, error);
  if (g_str_equal (target, "redirect"))
    return weft_settings_redirect (action, node, error);
  if (g_str_equal (target, "direct_response"))
    return weft_settings_direct (action, node, error);
  if (!weft_node_get_string (node, &name, error) ||
      !weft_settings_port (route, "port", &p, error))
    return FALSE;
  g_ptr_array_add (action->dests, weft_route_dest_new (name, NULL, p, 1, node));
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* traffic policy                                                       */
/* ------------------------------------------------------------------ */

static gboolean
weft_settings_retry_on_item (WeftRetrySpec *spec, const WeftNode *item, GError **error)
{
  static const struct { const char *name; guint bit; } tokens[] = {
    { "connect-failure", WEFT_RETRY_ON_CONNECT_FAILURE },
    { "refused-stream", WEFT_RETRY_ON_REFUSED_STREAM },
    { "reset", WEFT_RETRY_ON_RESET },
    { "5xx", WEFT_RETRY_ON_5XX },
    { "gateway-error", WEFT_RETRY_ON_GATEWAY_ERROR },
  };
  const char *text = NULL;
  guint64 status = 0;

  if (!weft_node_get_string (item, &text, error))
    return FALSE;
  for (gsize i = 0; i < G_N_ELEMENTS (tokens); i++)
    if (g_str_equal (text, tokens[i].name))
      {
        spec->retry_on |= tokens[i].bit;
        return TRUE;
      }
  if (!g_ascii_string_to_unsigned (text, 10, 100, 599, &status, NULL))
    {
      weft_node_set_error (item, error, "unknown retry_on value '%s' (expected connect-failure, "
                           "refused-stream, reset, 5xx, gateway-error or a status code)", text);
      return FALSE;
    }
  if (spec->n_statuses == WEFT_RETRY_MAX_STATUSES)
    {
      weft_node_set_error (item, error, "at most %d retry statuses", WEFT_RETRY_MAX_STATUSES);
      return FALSE;
    }
  spec->statuses[spec->n_statuses++] = (guint16) status;
  spec->retry_on |= WEFT_RETRY_ON_STATUS;
  return TRUE;
}

static gboolean
weft_settings_retry_on (WeftRetrySpec *spec, const WeftNode *node, GError **error)
{
  const WeftNode *list = weft_settings_get (node, "retry_on");

  if (list == NULL)
    {
      spec->retry_on = WEFT_RETRY_ON_CONNECT_FAILURE | WEFT_RETRY_ON_REFUSED_STREAM |
                       WEFT_RETRY_ON_GATEWAY_ERROR;
      return TRUE;
    }
  if (weft_node_get_kind (list) == WEFT_NODE_MAP)
    return weft_node_expect_kind (list, WEFT_NODE_SEQ, error);
  for (guint i = 0; i < weft_settings_n_items (list); i++)
    if (!weft_settings_retry_on_item (spec, weft_settings_item (list, i), error))
      return FALSE;
  return TRUE;
}

static gboolean
weft_settings_backoff (WeftRetrySpec *spec, const WeftNode *node, GError **error)
{
  static const char *const keys[] = { "base", "max", NULL };

  if (node == NULL)
    return TRUE;
  if (!weft_node_check_keys (node, keys, error) ||
      !weft_settings_duration (node, "base", &spec->backoff_base_ms, error) ||
      !weft_settings_duration (node, "max", &spec->backoff_max_ms, error))
    return FALSE;
  if (weft_settings_get (node, "base") != NULL && spec->backoff_base_ms == 0)
    {
      weft_node_set_error (weft_settings_get (node, "base"), error,
                           "'base' must be greater than zero");
      return FALSE;
    }
  if (spec->backoff_max_ms != 0 && spec->backoff_max_ms < MAX (spec->backoff_base_ms, 25))
    {
      weft_node_set_error (weft_settings_get (node, "max"), error,
                           "'max' must be at least 'base' (25ms when not given)");
      return FALSE;
    }
  return TRUE;
}

/* {ratio: 0.2, min_per_second: 10}, or false for no budget */
static gboolean
weft_settings_budget (WeftRetrySpec *spec, const WeftNode *node, GError **error)
{
  static const char *const keys[] = { "ratio", "min_per_second", NULL };
  const WeftNode *ratio;
  gboolean on = TRUE;

  if (node == NULL)
    return TRUE;
  if (weft_node_get_kind (node) == WEFT_NODE_SCALAR)
    {
      if (!weft_node_get_boolean (node, &on, error))
        return FALSE;
      if (on)
        return TRUE;
      spec->budget_ratio = -1;
      return TRUE;
    }
  if (!weft_node_check_keys (node, keys, error) ||
      !weft_settings_uint (node, "min_per_second", 1, 1000000, &spec->budget_min_per_sec, error))
    return FALSE;
  if ((ratio = weft_settings_get (node, "ratio")) == NULL)
    return TRUE;
  if (!weft_node_get_double (ratio, &spec->budget_ratio, error))
    return FALSE;
  if (spec->budget_ratio <= 0 || spec->budget_ratio > 1)
    {
      weft_node_set_error (ratio, error, "'ratio' must be above 0 and at most 1");
      return FALSE;
    }
  return TRUE;
}

static gboolean
weft_settings_retries (WeftRouteAction *action, const WeftNode *node, GError **error)
{
  static const char *const keys[] = { "attempts", "per_try_timeout", "retry_on", "backoff",
                                      "max_body", "budget", NULL };
  WeftRetrySpec *spec = &action->retry;
  const WeftNode *max_body;
  guint64 size = 0;

  if (node == NULL)
    return TRUE;
  if (!weft_node_check_keys (node, keys, error))
    return FALSE;
  if (weft_settings_get (node, "attempts") == NULL)
    return weft_settings_missing (node, "retries", "attempts", error);
  if (!weft_settings_uint (node, "attempts", 0, 100, &spec->attempts, error) ||
      !weft_settings_duration (node, "per_try_timeout", &spec->per_try_timeout_ms, error) ||
      !weft_settings_retry_on (spec, node, error) ||
      !weft_settings_backoff (spec, weft_settings_get (node, "backoff"), error) ||
      !weft_settings_budget (spec, weft_settings_get (node, "budget"), error))
    return FALSE;
  if ((max_body = weft_settings_get (node, "max_body")) != NULL)
    {
      if (!weft_node_get_size (max_body, &size, error))
        return FALSE;
      if (size == 0 || size > G_MAXUINT32)
        {
          weft_node_set_error (max_body, error, "'max_body' must be from 1 byte to 4GiB");
          return FALSE;
        }
      spec->max_body = (gsize) size;
    }
  action->has_retry = TRUE;
  return TRUE;
}

static gboolean
weft_settings_fault (WeftRouteAction *action, const WeftNode *node, GError **error)
{
  static const char *const keys[] = { "delay", "abort", NULL };
  static const char *const delay_keys[] = { "fixed", "percent", NULL };
  static const char *const abort_keys[] = { "status", "percent", NULL };
  const WeftNode *delay, *abort_;

  if (node == NULL)
    return TRUE;
  if (!weft_node_check_keys (node, keys, error))
    return FALSE;
  if ((delay = weft_settings_get (node, "delay")) != NULL)
    {
      if (!weft_node_check_keys (delay, delay_keys, error))
        return FALSE;
      if (weft_settings_get (delay, "fixed") == NULL)
        return weft_settings_missing (delay, "a fault delay", "fixed", error);
      action->delay_percent = 100;
      if (!weft_settings_duration (delay, "fixed", &action->delay_ms, error) ||
          !weft_settings_percent (delay, "percent", &action->delay_percent, error))
        return FALSE;
    }
  if ((abort_ = weft_settings_get (node, "abort")) != NULL)
    {
      if (!weft_node_check_keys (abort_, abort_keys, error))
        return FALSE;
      if (weft_settings_get (abort_, "status") == NULL)
        return weft_settings_missing (abort_, "a fault abort", "status", error);
      action->abort_percent = 100;
      if (!weft_settings_uint (abort_, "status", 200, 599, &action->abort_status, error) ||
          !weft_settings_percent (abort_, "percent", &action->abort_percent, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
weft_settings_mirror_entry (WeftRouteAction *action, const WeftNode *node, GError **error)
{
  static const char *const keys[] = { "upstream", "port", "percent", NULL };
  const char *name = NULL;
  guint16 port = 0;
  double percent = 100;
  WeftRouteMirror *mirror;

  if (!weft_node_check_keys (node, keys, error) ||
      !weft_settings_upstream_name (node, "a mirror", &name, error) ||
      !weft_settings_port (node, "port", &port, error) ||
      !weft_settings_percent (node, "percent", &percent, error))
    return FALSE;
  mirror = g_new0 (WeftRouteMirror, 1);
  mirror->dest = weft_route_dest_new (name, NULL, port, 1, node);
  mirror->percent = percent;
  g_ptr_array_add (action->mirrors, mirror);
  return TRUE;
}

static gboolean
weft_settings_traffic (WeftRouteAction *action, const WeftNode *route, GError **error)
{
  const WeftNode *mirror = weft_settings_get (route, "mirror");

  if (weft_settings_get (route, "timeout") != NULL)
    {
      action->has_timeout = TRUE;
      if (!weft_settings_duration (route, "timeout", &action->timeout_ms, error))
        return FALSE;
    }
  if (!weft_settings_retries (action, weft_settings_get (route, "retries"), error) ||
      !weft_settings_fault (action, weft_settings_get (route, "fault"), error))
    return FALSE;
  if (mirror != NULL && weft_node_get_kind (mirror) == WEFT_NODE_SCALAR)
    return weft_node_expect_kind (mirror, WEFT_NODE_MAP, error);
  if (weft_settings_n_items (mirror) > WEFT_MAX_MIRRORS)
    {
      weft_node_set_error (mirror, error, "at most %d mirrors per route", WEFT_MAX_MIRRORS);
      return FALSE;
    }
  for (guint i = 0; i < weft_settings_n_items (mirror); i++)
    if (!weft_settings_mirror_entry (action, weft_settings_item (mirror, i), error))
      return FALSE;
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* rewrites                                                             */
/* ------------------------------------------------------------------ */

static gboolean
weft_settings_rewrite_regex (WeftRouteAction *action, const WeftNode *node, GError **error)
{
  static const char *const keys[] = { "pattern", "substitution", NULL };
  const WeftNode *subst = weft_node_lookup (node, "substitution");
  const char *pattern = NULL;
  const char *sub = NULL;

  if (!weft_node_check_keys (node, keys, error) ||
      !weft_settings_string (node, "pattern", &pattern, error))
    return FALSE;
  if (pattern == NULL)
    return weft_settings_missing (node, "a regex rewrite", "pattern", error);
  if (subst == NULL)
    return weft_settings_missing (node, "a regex rewrite", "substitution", error);
  /* an empty substitution deletes what matched */
  if (weft_node_is_null (subst))
    sub = "";
  else if (!weft_node_get_string (subst, &sub, error))
    return FALSE;
  action->rewrite_regex = g_strdup (pattern);
  action->rewrite_regex_sub = g_strdup (sub);
  action->rewrite_regex_node = weft_settings_get (node, "pattern");
  return TRUE;
}

static gboolean
weft_settings_rewrite (WeftRouteAction *action, const WeftNode *route, GError **error)
{
  static const char *const keys[] = { "prefix", "path", "regex", "authority", NULL };
  static const char *const paths[] = { "prefix", "path", "regex", NULL };
  const WeftNode *node = weft_settings_get (route, "rewrite");
  const char *prefix = NULL, *path = NULL, *authority = NULL;
  const WeftNode *regex;

  if (node == NULL)
    return TRUE;
  if (action->dests->len == 0)
    {
      weft_node_set_error (node, error, "'rewrite' applies only to routes with an upstream or split");
      return FALSE;
    }
  if (!weft_node_check_keys (node, keys, error) ||
      weft_settings_one_of (node, paths, TRUE, "a rewrite", error) == NULL ||
      !weft_settings_string (node, "prefix", &prefix, error) ||
      !weft_settings_string (node, "path", &path, error) ||
      !weft_settings_string (node, "authority", &authority, error))
    return FALSE;
  if ((path != NULL && path[0] != '/') || (prefix != NULL && prefix[0] != '/'))
    {
      weft_node_set_error (weft_settings_get (node, path ? "path" : "prefix"), error,
                           "a path must start with '/'");
      return FALSE;
    }
  if (authority != NULL && strpbrk (authority, " \t\r\n/") != NULL)
    {
      weft_node_set_error (weft_settings_get (node, "authority"), error,
                           "'%s' is not a valid authority", authority);
      return FALSE;
    }
  action->rewrite_prefix = g_strdup (prefix);
  action->rewrite_path = g_strdup (path);
  action->rewrite_authority = g_strdup (authority);
  regex = weft_settings_get (node, "regex");
  return regex == NULL || weft_settings_rewrite_regex (action, regex, error);
}

/* ------------------------------------------------------------------ */
/* routes and virtual hosts                                             */
/* ------------------------------------------------------------------ */

static gboolean
weft_settings_route (WeftVirtualHost *vhost, const WeftNode *route, GError **error)
{
  static const char *const keys[] = { "name", "match", "upstream", "port", "split", "redirect",
                                      "direct_response", "timeout", "retries", "fault", "mirror",
                                      "request_headers", "response_headers", "rewrite", NULL };
  static const char *const targets[] = { "upstream", "split", "redirect", "direct_response",
                                         NULL };
  g_autoptr(WeftRouteAction) action = NULL;
  const char *name = NULL;
  const char *target;

  if (!weft_node_check_keys (route, keys, error) ||
      !weft_settings_string (route, "name", &name, error) ||
      (target = weft_settings_one_of (route, targets, FALSE, "a route", error)) == NULL)
    return FALSE;
  action = weft_route_action_new (route);
  action->name = g_strdup (name);
  return weft_settings_target (action, route, target, error) &&
         weft_settings_traffic (action, route, error) &&
         weft_settings_header_ops (route, "request_headers", &action->request_headers, error) &&
         weft_settings_header_ops (route, "response_headers", &action->response_headers, error) &&
         weft_settings_rewrite (action, route, error) &&
         weft_settings_match (vhost, action, route, error);
}

static gboolean
weft_settings_domains (const WeftNode *list, GPtrArray *out, GError **error)
{
  if (list == NULL || weft_settings_n_items (list) == 0)
    {
      weft_node_set_error (list, error, "a virtual host needs at least one domain");
      return FALSE;
    }
  for (guint i = 0; i < weft_settings_n_items (list); i++)
    {
      const WeftNode *item = weft_settings_item (list, i);
      const char *domain = NULL;

      if (!weft_node_get_string (item, &domain, error))
        return FALSE;
      if (!weft_route_domain_valid (domain))
        {
          weft_node_set_error (item, error, "invalid domain '%s' (expected a host, host:port, "
                               "*.suffix or *)", domain);
          return FALSE;
        }
      g_ptr_array_add (out, (gpointer) domain);
    }
  return TRUE;
}

static gboolean
weft_settings_vhost (WeftRouterConfig *config, const WeftNode *node, GError **error)
{
  static const char *const keys[] = { "name", "domains", "routes", NULL };
  g_autoptr(GPtrArray) domains = g_ptr_array_new ();
  const WeftNode *routes;
  const WeftNode *list;
  const char *name = NULL;
  WeftVirtualHost *vhost;

  if (!weft_node_check_keys (node, keys, error) ||
      !weft_settings_string (node, "name", &name, error))
    return FALSE;
  if ((list = weft_settings_get (node, "domains")) == NULL)
    return weft_settings_missing (node, "a virtual host", "domains", error);
  if (!weft_settings_domains (list, domains, error))
    return FALSE;
  vhost = weft_router_config_vhost (config, name ? name : domains->pdata[0],
                                    (const char *const *) domains->pdata, domains->len, node);
  routes = weft_settings_get (node, "routes");
  if (routes != NULL && !weft_node_expect_kind (routes, WEFT_NODE_SEQ, error))
    return FALSE;
  for (guint i = 0; i < weft_node_get_length (routes); i++)
    if (!weft_settings_route (vhost, weft_node_get_item (routes, i), error))
      return FALSE;
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* upstream policies                                                    */
/* ------------------------------------------------------------------ */

static gboolean
weft_settings_hash_on (WeftUpstreamPolicy *policy, const WeftNode *node, GError **error)
{
  static const char *const keys[] = { "header", "cookie", "source_ip", NULL };
  const char *kind;
  const char *name = NULL;
  gboolean on = FALSE;

  if (!weft_node_check_keys (node, keys, error) ||
      (kind = weft_settings_one_of (node, keys, FALSE, "hash_on", error)) == NULL)
    return FALSE;
  if (g_str_equal (kind, "source_ip"))
    {
      if (!weft_settings_boolean (node, "source_ip", &on, error))
        return FALSE;
      policy->lb.hash_on = on ? WEFT_HASH_ON_SOURCE_IP : WEFT_HASH_ON_NONE;
      return TRUE;
    }
  if (!weft_settings_string (node, kind, &name, error))
    return FALSE;
  policy->lb.hash_on = g_str_equal (kind, "header") ? WEFT_HASH_ON_HEADER : WEFT_HASH_ON_COOKIE;
  policy->hash_key = g_str_equal (kind, "header") ? g_ascii_strdown (name, -1) : g_strdup (name);
  return TRUE;
}

static gboolean
weft_settings_lb (WeftUpstreamPolicy *policy, const WeftNode *node, GError **error)
{
  static const char *const keys[] = { "policy", "hash_on", "table_size", NULL };
  static const char *const names[] = { "round_robin", "random", "least_request", "ring_hash",
                                       "maglev", NULL };
  const char *name = NULL;
  const WeftNode *hash_on;

  if (!weft_node_check_keys (node, keys, error) ||
      !weft_settings_string (node, "policy", &name, error) ||
      !weft_settings_uint (node, "table_size", 1, 1 << 24, &policy->lb.table_size, error))
    return FALSE;
  for (guint i = 0; name != NULL && names[i] != NULL; i++)
    if (g_str_equal (name, names[i]))
      policy->lb.policy = (WeftLbPolicy) i;
  if (name != NULL && !g_strv_contains (names, name))
    {
      weft_node_set_error (weft_settings_get (node, "policy"), error,
                           "unknown load balancer '%s' (expected round_robin, random, "
                           "least_request, ring_hash or maglev)", name);
      return FALSE;
    }
  policy->has_lb = TRUE;
  hash_on = weft_settings_get (node, "hash_on");
  return hash_on == NULL || weft_settings_hash_on (policy, hash_on, error);
}

static gboolean
weft_settings_outlier (WeftUpstreamPolicy *policy, const WeftNode *node, GError **error)
{
  static const char *const keys[] = { "consecutive_5xx", "consecutive_gateway_errors",
                                      "base_ejection", "max_ejection_percent", NULL };
  WeftOutlierSpec *o = &policy->outlier;

  policy->has_outlier = TRUE;
  return weft_node_check_keys (node, keys, error) &&
         weft_settings_uint (node, "consecutive_5xx", 0, 100000, &o->consecutive_5xx, error) &&
         weft_settings_uint (node, "consecutive_gateway_errors", 0, 100000,
                             &o->consecutive_gateway_errors, error) &&
         weft_settings_duration (node, "base_ejection", &o->base_ejection_ms, error) &&
         weft_settings_uint (node, "max_ejection_percent", 0, 100, &o->max_ejection_percent, error);
}

static gboolean
weft_settings_pool (WeftUpstreamPolicy *policy, const WeftNode *node, GError **error)
{
  static const char *const keys[] = { "connect_timeout", "max_requests",
                                      "max_requests_per_connection", NULL };
  WeftPoolSpec *p = &policy->pool;

  policy->has_pool = TRUE;
  return weft_node_check_keys (node, keys, error) &&
         weft_settings_duration (node, "connect_timeout", &p->connect_timeout_ms, error) &&
         weft_settings_uint (node, "max_requests", 0, G_MAXINT, &p->max_requests, error) &&
         weft_settings_uint (node, "max_requests_per_connection", 0, G_MAXINT,
                             &p->max_requests_per_connection, error);
}

static gboolean
weft_settings_policy (WeftRouterConfig *config, const WeftNode *node, GError **error)
{
  static const char *const keys[] = { "upstream", "host", "load_balancer", "outlier", "pool",
                                      NULL };
  const char *name = NULL;
  const char *host = NULL;
  WeftUpstreamPolicy *policy;
  const WeftNode *v;

  if (!weft_node_check_keys (node, keys, error) ||
      !weft_settings_upstream_name (node, "an upstream policy", &name, error) ||
      !weft_settings_string (node, "host", &host, error))
    return FALSE;
  for (guint i = 0; i < config->policies->len; i++)
    if (g_str_equal (((WeftUpstreamPolicy *) config->policies->pdata[i])->upstream, name))
      {
        weft_node_set_error (weft_settings_get (node, "upstream"), error,
                             "upstream '%s' has a policy already", name);
        return FALSE;
      }
  if (host != NULL && !weft_route_host_valid (host))
    {
      weft_node_set_error (weft_settings_get (node, "host"), error,
                           "'%s' is not a valid host name", host);
      return FALSE;
    }
  policy = weft_router_config_policy (config, name, node);
  policy->host = g_strdup (host);
  if ((v = weft_settings_get (node, "load_balancer")) != NULL && !weft_settings_lb (policy, v, error))
    return FALSE;
  if ((v = weft_settings_get (node, "outlier")) != NULL && !weft_settings_outlier (policy, v, error))
    return FALSE;
  v = weft_settings_get (node, "pool");
  return v == NULL || weft_settings_pool (policy, v, error);
}

static gboolean
weft_settings_each (WeftRouterConfig *config, const WeftNode *list,
                    gboolean (*parse) (WeftRouterConfig *, const WeftNode *, GError **),
                    GError **error)
{
  if (list == NULL)
    return TRUE;
  if (!weft_node_expect_kind (list, WEFT_NODE_SEQ, error))
    return FALSE;
  for (guint i = 0; i < weft_node_get_length (list); i++)
    if (!parse (config, weft_node_get_item (list, i), error))
      return FALSE;
  return TRUE;
}

gboolean
weft_router_parse_settings (WeftRouterConfig *config, const WeftNode *node, GError **error)
{
  static const char *const keys[] = { "virtual_hosts", "upstream_policies", NULL };

  if (weft_node_is_null (node))
    return TRUE;
  return weft_node_check_keys (node, keys, error) &&
         weft_settings_each (config, weft_settings_get (node, "virtual_hosts"),
                             weft_settings_vhost, error) &&
         weft_settings_each (config, weft_settings_get (node, "upstream_policies"),
                             weft_settings_policy, error);
}
