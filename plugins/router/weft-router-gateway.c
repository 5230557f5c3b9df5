/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Gateway API HTTPRoute (gateway.networking.k8s.io v1 and v1beta1) into
 * the router's intermediate form, as a mesh (GAMMA) route: it attaches to
 * a Service, whose names become the virtual host's domains.
 *
 * Every field is either translated or refused with an error naming it.
 */
#include "weft-router-translate-private.h"

#include <string.h>

/* the filters of one rule, as they are read */
typedef struct {
  WeftRouteAction *action;
  guint            seen;          /* WeftGatewayFilter bits of the filters given */
  const WeftNode  *prefix_node;   /* a ReplacePrefixMatch, which needs PathPrefix matches */
  char            *prefix_field;  /* and the name of its field */
} WeftGatewayRule;

typedef enum {
  WEFT_GATEWAY_REQUEST_HEADERS  = 1 << 0,
  WEFT_GATEWAY_RESPONSE_HEADERS = 1 << 1,
  WEFT_GATEWAY_MIRROR           = 1 << 2,
  WEFT_GATEWAY_REDIRECT         = 1 << 3,
  WEFT_GATEWAY_REWRITE          = 1 << 4,
} WeftGatewayFilter;

/* what a filter's 'type' names, and the field holding its settings */
static const struct {
  const char        *type;
  const char        *key;
  WeftGatewayFilter  bit;
} weft_gateway_filters[] = {
  { "RequestHeaderModifier", "requestHeaderModifier", WEFT_GATEWAY_REQUEST_HEADERS },
  { "ResponseHeaderModifier", "responseHeaderModifier", WEFT_GATEWAY_RESPONSE_HEADERS },
  { "RequestMirror", "requestMirror", WEFT_GATEWAY_MIRROR },
  { "RequestRedirect", "requestRedirect", WEFT_GATEWAY_REDIRECT },
  { "URLRewrite", "urlRewrite", WEFT_GATEWAY_REWRITE },
};

/* filter types weft knows and refuses, and why */
static const WeftRefusedField weft_gateway_refused_filters[] = {
  { "ExtensionRef", "it names an implementation's own resource, and weft has none" },
  { "CORS", "weft does not answer CORS preflight requests; let the application do it" },
  { "ExternalAuth", "weft does not call out to an authorization service" },
  { NULL, NULL }
};

/* ------------------------------------------------------------------ */
/* references                                                           */
/* ------------------------------------------------------------------ */

/* a Service reference's group: "" (the core group) or "core"; weft also
 * takes it left out */
static gboolean
weft_gateway_core_group (WeftTranslator *tr, const WeftNode *ref, GError **error)
{
  const char *group = "";

  if (!weft_tr_string (tr, ref, "group", &group, error))
    return FALSE;
  if (*group == '\0' || strcmp (group, "core") == 0)
    return TRUE;
  weft_tr_error (tr, weft_tr_field (ref, "group"), "group", error,
                 "is '%s', but a Service is in the core group: write group: \"\"", group);
  return FALSE;
}

/* the group, name, namespace and port of a reference to a Service, which
 * needs a name */
static gboolean
weft_gateway_service (WeftTranslator *tr, const WeftNode *ref, const char **name,
                      const char **ns, guint64 *port, GError **error)
{
  if (!weft_gateway_core_group (tr, ref, error)
      || !weft_tr_string (tr, ref, "name", name, error)
      || !weft_tr_string (tr, ref, "namespace", ns, error)
      || !weft_tr_uint (tr, ref, "port", 1, 65535, port, error))
    return FALSE;
  if (*name == NULL)
    {
      weft_tr_error (tr, ref, NULL, error, "needs the Service's name");
      return FALSE;
    }
  return TRUE;
}

/* a mesh route attaches to a Service: its names are the domains */
static gboolean
weft_gateway_parent_ref (WeftTranslator *tr, const WeftNode *ref, GPtrArray *domains,
                         GError **error)
{
  /* port is accepted: weft routes by the Host header, so a route for a
   * Service applies on every port of it */
  static const char *const known[] = { "group", "kind", "namespace", "name", "port", NULL };
  static const WeftRefusedField refused[] = {
    { "sectionName", "weft cannot resolve a Service's port names; give the 'port' number" },
    { NULL, NULL }
  };
  const char *kind = "Gateway";
  const char *name = NULL;
  const char *ns = tr->ns;
  guint64 port = 0;

  if (weft_node_get_kind (ref) != WEFT_NODE_MAP)
    {
      weft_tr_error (tr, ref, NULL, error, "must be a mapping naming a Service");
      return FALSE;
    }
  if (!weft_tr_check_fields (tr, ref, known, refused, error)
      || !weft_tr_string (tr, ref, "kind", &kind, error))
    return FALSE;
  if (strcmp (kind, "Gateway") == 0)
    {
      gboolean given = weft_tr_field (ref, "kind") != NULL;
      weft_tr_error (tr, given ? weft_tr_field (ref, "kind") : ref, "kind", error,
                     "is Gateway%s, but weft is a sidecar, not a Gateway: a mesh (GAMMA) route "
                     "attaches to a Service (kind: Service, group: \"\")",
                     given ? "" : " (the default)");
      return FALSE;
    }
  if (strcmp (kind, "Service") != 0)
    {
      weft_tr_error (tr, weft_tr_field (ref, "kind"), "kind", error,
                     "is '%s': a mesh (GAMMA) route attaches to a Service (kind: Service, "
                     "group: \"\")", kind);
      return FALSE;
    }
  if (!weft_gateway_service (tr, ref, &name, &ns, &port, error))
    return FALSE;
  weft_tr_add_domains (domains, name, ns);
  return TRUE;
}

static gboolean
weft_gateway_parent_refs (WeftTranslator *tr, GPtrArray *domains, GError **error)
{
  const WeftNode *list = NULL;

  if (!weft_tr_seq (tr, tr->spec, "parentRefs", &list, error))
    return FALSE;
  for (guint i = 0; i < weft_node_get_length (list); i++)
    {
      gsize mark = weft_tr_enter_item (tr, "parentRefs", i);
      gboolean ok = weft_gateway_parent_ref (tr, weft_node_get_item (list, i), domains, error);
      weft_tr_leave (tr, mark);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

/* hostnames, when given, are the domains instead of the Services' names */
static gboolean
weft_gateway_hostnames (WeftTranslator *tr, GPtrArray *domains, GError **error)
{
  const WeftNode *list = NULL;

  if (!weft_tr_seq (tr, tr->spec, "hostnames", &list, error))
    return FALSE;
  for (guint i = 0; i < weft_node_get_length (list); i++)
    {
      const WeftNode *item = weft_node_get_item (list, i);
      const char *host = weft_node_get_scalar (item);
      if (host == NULL || weft_node_is_null (item) || strpbrk (host, ":/ ") != NULL)
        {
          gsize mark = weft_tr_enter_item (tr, "hostnames", i);
          weft_tr_error (tr, item, NULL, error, "must be a host name without port or path");
          weft_tr_leave (tr, mark);
          return FALSE;
        }
      weft_tr_add_domains (domains, host, tr->ns);
    }
  return TRUE;
}

/* a backendRef or a mirror's backendRef: a Service, by DNS name; one in
 * another namespace is name.namespace */
static WeftRouteDest *
weft_gateway_backend (WeftTranslator *tr, const WeftNode *ref, const char *const *known,
                      GError **error)
{
  const char *kind = "Service";
  const char *name = NULL;
  const char *ns = NULL;
  guint64 port = 0;
  g_autofree char *dest_name = NULL;

  if (weft_node_get_kind (ref) != WEFT_NODE_MAP)
    {
      weft_tr_error (tr, ref, NULL, error, "must be a mapping naming a Service");
      return NULL;
    }
  if (!weft_tr_check_fields (tr, ref, known, NULL, error)
      || !weft_tr_string (tr, ref, "kind", &kind, error))
    return NULL;
  if (strcmp (kind, "Service") != 0)
    {
      weft_tr_error (tr, weft_tr_field (ref, "kind"), "kind", error,
                     "is '%s': weft forwards to Services only", kind);
      return NULL;
    }
  if (!weft_gateway_service (tr, ref, &name, &ns, &port, error))
    return NULL;
  dest_name = ns != NULL && g_strcmp0 (ns, tr->ns) != 0 ? g_strdup_printf ("%s.%s", name, ns)
                                                        : g_strdup (name);
  return weft_route_dest_new (dest_name, NULL, (guint16) port, 1, ref);
}

/* ------------------------------------------------------------------ */
/* matches                                                              */
/* ------------------------------------------------------------------ */

/* path {type, value}; PathPrefix "/" when not given */
static gboolean
weft_gateway_path (WeftTranslator *tr, const WeftNode *match, WeftStrMatch *m, GError **error)
{
  static const char *const known[] = { "type", "value", NULL };
  const WeftNode *path = NULL;
  const char *type = "PathPrefix";
  const char *value = "/";
  gsize mark;
  gboolean ok;

  if (!weft_tr_map (tr, match, "path", &path, error))
    return FALSE;
  mark = weft_tr_enter (tr, "path");
  ok = path == NULL
       || (weft_tr_check_fields (tr, path, known, NULL, error)
           && weft_tr_string (tr, path, "type", &type, error)
           && weft_tr_string (tr, path, "value", &value, error));
  if (ok && strcmp (type, "Exact") != 0 && strcmp (type, "PathPrefix") != 0
      && strcmp (type, "RegularExpression") != 0)
    {
      weft_tr_error (tr, weft_tr_field (path, "type"), "type", error,
                     "must be Exact, PathPrefix or RegularExpression, not '%s'", type);
      ok = FALSE;
    }
  if (ok && *type != 'R' && *value != '/')
    {
      weft_tr_error (tr, weft_tr_field (path, "value"), "value", error, "must start with '/'");
      ok = FALSE;
    }
  weft_tr_leave (tr, mark);
  m->kind = *type == 'E' ? WEFT_STR_EXACT : *type == 'P' ? WEFT_STR_PREFIX : WEFT_STR_REGEX;
  m->segment_prefix = m->kind == WEFT_STR_PREFIX;
  m->value = g_strdup (value);
  m->node = weft_tr_field (path, "value");
  return ok;
}

/* one of headers or queryParams: {type Exact|RegularExpression, name, value} */
static gboolean
weft_gateway_named_match (WeftTranslator *tr, const WeftNode *item, gboolean lower,
                          GPtrArray *out, GError **error)
{
  static const char *const known[] = { "type", "name", "value", NULL };
  const char *type = "Exact";
  const char *name = NULL;
  const char *value = NULL;
  WeftNamedMatch *nm;

  if (weft_node_get_kind (item) != WEFT_NODE_MAP)
    {
      weft_tr_error (tr, item, NULL, error, "must be a mapping with name and value");
      return FALSE;
    }
  if (!weft_tr_check_fields (tr, item, known, NULL, error)
      || !weft_tr_string (tr, item, "type", &type, error)
      || !weft_tr_string (tr, item, "name", &name, error)
      || !weft_tr_string (tr, item, "value", &value, error))
    return FALSE;
  if (name == NULL || value == NULL)
    {
      weft_tr_error (tr, item, NULL, error, "needs both name and value");
      return FALSE;
    }
  if (strcmp (type, "Exact") != 0 && strcmp (type, "RegularExpression") != 0)
    {
      weft_tr_error (tr, weft_tr_field (item, "type"), "type", error,
                     "must be Exact or RegularExpression, not '%s'", type);
      return FALSE;
    }
  nm = weft_named_match_new (name, *type == 'E' ? WEFT_STR_EXACT : WEFT_STR_REGEX, value);
  if (lower)
    {
      g_free (nm->name);
      nm->name = g_ascii_strdown (name, -1);
    }
  nm->match.node = weft_tr_field (item, "value");
  g_ptr_array_add (out, nm);
  return TRUE;
}

static gboolean
weft_gateway_named_matches (WeftTranslator *tr, const WeftNode *match, const char *key,
                            gboolean lower, GPtrArray *out, GError **error)
{
  const WeftNode *list = NULL;

  if (!weft_tr_seq (tr, match, key, &list, error))
    return FALSE;
  for (guint i = 0; i < weft_node_get_length (list); i++)
    {
      gsize mark = weft_tr_enter_item (tr, key, i);
      gboolean ok = weft_gateway_named_match (tr, weft_node_get_item (list, i), lower, out,
                                              error);
      weft_tr_leave (tr, mark);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

static gboolean
weft_gateway_method (WeftTranslator *tr, const WeftNode *match, WeftStrMatch *m, GError **error)
{
  static const char *const methods[] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", NULL
  };
  const char *method = NULL;

  if (!weft_tr_string (tr, match, "method", &method, error))
    return FALSE;
  if (method == NULL)
    return TRUE;
  if (!g_strv_contains (methods, method))
    {
      weft_tr_error (tr, weft_tr_field (match, "method"), "method", error,
                     "must be GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE or PATCH");
      return FALSE;
    }
  m->kind = WEFT_STR_EXACT;
  m->value = g_strdup (method);
  return TRUE;
}

static gboolean
weft_gateway_match (WeftTranslator *tr, const WeftNode *match, WeftRouteMatch *m, GError **error)
{
  static const char *const known[] = { "path", "headers", "queryParams", "method", NULL };

  if (weft_node_get_kind (match) != WEFT_NODE_MAP)
    {
      weft_tr_error (tr, match, NULL, error, "must be a mapping");
      return FALSE;
    }
  return weft_tr_check_fields (tr, match, known, NULL, error)
         && weft_gateway_path (tr, match, &m->path, error)
         && weft_gateway_named_matches (tr, match, "headers", TRUE, m->headers, error)
         && weft_gateway_named_matches (tr, match, "queryParams", FALSE, m->query, error)
         && weft_gateway_method (tr, match, &m->method, error);
}

/* one rule per match; none = PathPrefix "/" */
static gboolean
weft_gateway_matches (WeftTranslator *tr, const WeftNode *node, WeftRouteAction *action,
                      GPtrArray *rules, GError **error)
{
  const WeftNode *list = NULL;
  WeftRouteRule *rule;

  if (!weft_tr_seq (tr, node, "matches", &list, error))
    return FALSE;
  if (weft_node_get_length (list) == 0)
    {
      rule = weft_route_rule_new (action, node);
      rule->match.path.kind = WEFT_STR_PREFIX;
      rule->match.path.value = g_strdup ("/");
      rule->match.path.segment_prefix = TRUE;
      g_ptr_array_add (rules, rule);
      return TRUE;
    }
  for (guint i = 0; i < weft_node_get_length (list); i++)
    {
      const WeftNode *item = weft_node_get_item (list, i);
      gsize mark = weft_tr_enter_item (tr, "matches", i);
      gboolean ok;

      rule = weft_route_rule_new (action, item);
      g_ptr_array_add (rules, rule);
      ok = weft_gateway_match (tr, item, &rule->match, error);
      weft_tr_leave (tr, mark);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* filters                                                              */
/* ------------------------------------------------------------------ */

/* [{name, value}] */
static gboolean
weft_gateway_header_list (WeftTranslator *tr, const WeftNode *map, const char *key,
                          void (*apply) (WeftHeaderOps *, const char *, const char *),
                          WeftHeaderOps *ops, GError **error)
{
  static const char *const known[] = { "name", "value", NULL };
  const WeftNode *list = NULL;

  if (!weft_tr_seq (tr, map, key, &list, error))
    return FALSE;
  for (guint i = 0; i < weft_node_get_length (list); i++)
    {
      const WeftNode *item = weft_node_get_item (list, i);
      const char *name = NULL;
      const char *value = "";
      gsize mark = weft_tr_enter_item (tr, key, i);
      gboolean ok = weft_node_get_kind (item) == WEFT_NODE_MAP;

      if (!ok)
        weft_tr_error (tr, item, NULL, error, "must be a mapping with name and value");
      ok = ok && weft_tr_check_fields (tr, item, known, NULL, error)
           && weft_tr_string (tr, item, "name", &name, error)
           && weft_tr_string (tr, item, "value", &value, error);
      if (ok && name == NULL)
        {
          weft_tr_error (tr, item, NULL, error, "needs a name");
          ok = FALSE;
        }
      weft_tr_leave (tr, mark);
      if (!ok)
        return FALSE;
      apply (ops, name, value);
    }
  return TRUE;
}

/* HTTPHeaderFilter {set, add, remove} */
static gboolean
weft_gateway_header_filter (WeftTranslator *tr, const WeftNode *node, WeftHeaderOps *ops,
                            GError **error)
{
  static const char *const known[] = { "set", "add", "remove", NULL };
  const WeftNode *remove = NULL;

  if (!weft_tr_check_fields (tr, node, known, NULL, error)
      || !weft_gateway_header_list (tr, node, "set", weft_header_ops_set, ops, error)
      || !weft_gateway_header_list (tr, node, "add", weft_header_ops_add, ops, error)
      || !weft_tr_seq (tr, node, "remove", &remove, error))
    return FALSE;
  for (guint i = 0; i < weft_node_get_length (remove); i++)
    {
      const WeftNode *item = weft_node_get_item (remove, i);
      if (weft_node_get_kind (item) != WEFT_NODE_SCALAR || weft_node_is_null (item))
        {
          weft_tr_error (tr, item, "remove", error, "must list header names");
          return FALSE;
        }
      weft_header_ops_remove (ops, weft_node_get_scalar (item));
    }
  return TRUE;
}

/* percent, or fraction {numerator, denominator}; 100 when neither */
static gboolean
weft_gateway_mirror_percent (WeftTranslator *tr, const WeftNode *mirror, double *percent,
                             GError **error)
{
  static const char *const known[] = { "numerator", "denominator", NULL };
  const WeftNode *fraction = NULL;
  guint64 whole = 100;
  guint64 numerator = 0;
  guint64 denominator = 100;
  gsize mark;
  gboolean ok;

  if (!weft_tr_uint (tr, mirror, "percent", 0, 100, &whole, error)
      || !weft_tr_map (tr, mirror, "fraction", &fraction, error))
    return FALSE;
  *percent = (double) whole;
  if (fraction == NULL)
    return TRUE;
  if (weft_tr_field (mirror, "percent") != NULL)
    {
      weft_tr_error (tr, weft_tr_key_node (mirror, "fraction"), "fraction", error,
                     "cannot be given with 'percent'");
      return FALSE;
    }
  mark = weft_tr_enter (tr, "fraction");
  ok = weft_tr_check_fields (tr, fraction, known, NULL, error)
       && weft_tr_uint (tr, fraction, "numerator", 0, G_MAXUINT32, &numerator, error)
       && weft_tr_uint (tr, fraction, "denominator", 1, G_MAXUINT32, &denominator, error);
  if (ok && numerator > denominator)
    {
      weft_tr_error (tr, weft_tr_field (fraction, "numerator"), "numerator", error,
                     "must not be larger than the denominator");
      ok = FALSE;
    }
  weft_tr_leave (tr, mark);
  *percent = 100.0 * (double) numerator / (double) denominator;
  return ok;
}

static gboolean
weft_gateway_mirror (WeftTranslator *tr, const WeftNode *mirror, WeftRouteAction *action,
                     GError **error)
{
  static const char *const known[] = { "backendRef", "percent", "fraction", NULL };
  static const char *const ref_known[] = { "group", "kind", "name", "namespace", "port", NULL };
  const WeftNode *ref = NULL;
  WeftRouteMirror *out;
  WeftRouteDest *dest;
  double percent = 100;
  gsize mark;

  if (!weft_tr_check_fields (tr, mirror, known, NULL, error)
      || !weft_tr_map (tr, mirror, "backendRef", &ref, error)
      || !weft_gateway_mirror_percent (tr, mirror, &percent, error))
    return FALSE;
  if (ref == NULL)
    {
      weft_tr_error (tr, mirror, NULL, error, "needs a backendRef");
      return FALSE;
    }
  mark = weft_tr_enter (tr, "backendRef");
  dest = weft_gateway_backend (tr, ref, ref_known, error);
  weft_tr_leave (tr, mark);
  if (dest == NULL)
    return FALSE;
  out = g_new0 (WeftRouteMirror, 1);
  out->dest = dest;
  out->percent = percent;
  g_ptr_array_add (action->mirrors, out);
  return TRUE;
}

/* HTTPPathModifier {type, replaceFullPath | replacePrefixMatch} */
static gboolean
weft_gateway_path_modifier (WeftTranslator *tr, const WeftNode *filter, WeftGatewayRule *r,
                            char **full, char **prefix, GError **error)
{
  static const char *const known[] = { "type", "replaceFullPath", "replacePrefixMatch", NULL };
  const WeftNode *path = NULL;
  const char *type = NULL;
  const char *value = NULL;
  gboolean is_full;
  const char *key;
  gsize mark;
  gboolean ok;

  if (!weft_tr_map (tr, filter, "path", &path, error))
    return FALSE;
  if (path == NULL)
    return TRUE;
  mark = weft_tr_enter (tr, "path");
  ok = weft_tr_check_fields (tr, path, known, NULL, error)
       && weft_tr_string (tr, path, "type", &type, error);
  is_full = g_strcmp0 (type, "ReplaceFullPath") == 0;
  key = is_full ? "replaceFullPath" : "replacePrefixMatch";
  if (ok && !is_full && g_strcmp0 (type, "ReplacePrefixMatch") != 0)
    {
      weft_tr_error (tr, type ? weft_tr_field (path, "type") : path, "type", error,
                     "must be ReplaceFullPath or ReplacePrefixMatch");
      ok = FALSE;
    }
  ok = ok && weft_tr_string (tr, path, key, &value, error);
  if (ok && (value == NULL || weft_tr_field (path, is_full ? "replacePrefixMatch"
                                                           : "replaceFullPath") != NULL))
    {
      weft_tr_error (tr, path, NULL, error, "of type %s takes '%s' and only that", type, key);
      ok = FALSE;
    }
  weft_tr_leave (tr, mark);
  if (!ok)
    return FALSE;
  if (!is_full)
    {
      r->prefix_node = weft_tr_field (path, "type");
      g_free (r->prefix_field);
      r->prefix_field = weft_tr_field_name (tr, "path.type");
    }
  *(is_full ? full : prefix) = g_strdup (value);
  return TRUE;
}

static gboolean
weft_gateway_rewrite (WeftTranslator *tr, const WeftNode *rewrite, WeftGatewayRule *r,
                      GError **error)
{
  static const char *const known[] = { "hostname", "path", NULL };
  const char *hostname = NULL;

  if (!weft_tr_check_fields (tr, rewrite, known, NULL, error)
      || !weft_tr_string (tr, rewrite, "hostname", &hostname, error))
    return FALSE;
  r->action->rewrite_authority = g_strdup (hostname);
  return weft_gateway_path_modifier (tr, rewrite, r, &r->action->rewrite_path,
                                     &r->action->rewrite_prefix, error);
}

static gboolean
weft_gateway_redirect (WeftTranslator *tr, const WeftNode *redirect, WeftGatewayRule *r,
                       GError **error)
{
  static const char *const known[] = {
    "scheme", "hostname", "path", "port", "statusCode", NULL
  };
  WeftRouteRedirect *out = &r->action->redirect;
  const char *scheme = NULL;
  const char *hostname = NULL;
  guint64 port = 0;
  guint64 status = 302;       /* the Gateway API's default */

  if (!weft_tr_check_fields (tr, redirect, known, NULL, error)
      || !weft_tr_string (tr, redirect, "scheme", &scheme, error)
      || !weft_tr_string (tr, redirect, "hostname", &hostname, error)
      || !weft_tr_uint (tr, redirect, "port", 1, 65535, &port, error)
      || !weft_tr_uint (tr, redirect, "statusCode", 301, 308, &status, error))
    return FALSE;
  if (scheme != NULL && strcmp (scheme, "http") != 0 && strcmp (scheme, "https") != 0)
    {
      weft_tr_error (tr, weft_tr_field (redirect, "scheme"), "scheme", error,
                     "must be http or https");
      return FALSE;
    }
  if (status != 301 && status != 302 && status != 303 && status != 307 && status != 308)
    {
      weft_tr_error (tr, weft_tr_field (redirect, "statusCode"), "statusCode", error,
                     "must be 301, 302, 303, 307 or 308");
      return FALSE;
    }
  /* with a scheme and no port, the port is the scheme's well-known one */
  if (port == 0 && scheme != NULL)
    port = strcmp (scheme, "https") == 0 ? 443 : 80;
  out->scheme = g_strdup (scheme);
  out->host = g_strdup (hostname);
  out->port = (guint16) port;
  out->status = (guint) status;
  r->action->has_redirect = TRUE;
  return weft_gateway_path_modifier (tr, redirect, r, &out->path, &out->prefix, error);
}

/* the settings of a filter of @type under its own field, through the
 * translator of that type; @ops_req/@ops_resp are where header
 * modifiers go (the rule's or a backend's) */
static gboolean
weft_gateway_filter_apply (WeftTranslator *tr, const WeftNode *settings, guint idx,
                           WeftGatewayRule *r, WeftHeaderOps *req, WeftHeaderOps *resp,
                           GError **error)
{
  switch (weft_gateway_filters[idx].bit)
    {
    case WEFT_GATEWAY_REQUEST_HEADERS:
      return weft_gateway_header_filter (tr, settings, req, error);
    case WEFT_GATEWAY_RESPONSE_HEADERS:
      return weft_gateway_header_filter (tr, settings, resp, error);
    case WEFT_GATEWAY_MIRROR:
      return weft_gateway_mirror (tr, settings, r->action, error);
    case WEFT_GATEWAY_REDIRECT:
      return weft_gateway_redirect (tr, settings, r, error);
    case WEFT_GATEWAY_REWRITE:
    default:
      return weft_gateway_rewrite (tr, settings, r, error);
    }
}

/* the filter type @type names, or an error naming the field */
static gboolean
weft_gateway_filter_type (WeftTranslator *tr, const WeftNode *filter, guint allowed,
                          guint *idx, GError **error)
{
  const char *type = NULL;
  const WeftRefusedField *refused = weft_gateway_refused_filters;

  if (!weft_tr_string (tr, filter, "type", &type, error))
    return FALSE;
  if (type == NULL)
    {
      weft_tr_error (tr, filter, NULL, error, "needs a type");
      return FALSE;
    }
  for (guint i = 0; i < G_N_ELEMENTS (weft_gateway_filters); i++)
    if (strcmp (type, weft_gateway_filters[i].type) == 0 && (weft_gateway_filters[i].bit & allowed))
      {
        *idx = i;
        return TRUE;
      }
  for (; refused->key != NULL && strcmp (refused->key, type) != 0; refused++)
    ;
  if (refused->key != NULL)
    weft_tr_error (tr, weft_tr_field (filter, "type"), "type", error,
                   "is %s, which weft does not support: %s", type, refused->why);
  else if (allowed != (guint) -1)
    weft_tr_error (tr, weft_tr_field (filter, "type"), "type", error,
                   "is %s; weft takes only RequestHeaderModifier and ResponseHeaderModifier "
                   "on a backend: put it in the rule's filters", type);
  else
    weft_tr_error (tr, weft_tr_field (filter, "type"), "type", error,
                   "is %s, a filter weft does not support (weft supports "
                   "RequestHeaderModifier, ResponseHeaderModifier, RequestMirror, "
                   "RequestRedirect and URLRewrite)", type);
  return FALSE;
}

/* HTTPRouteFilter {type, <its settings>} */
static gboolean
weft_gateway_filter (WeftTranslator *tr, const WeftNode *filter, guint allowed,
                     WeftGatewayRule *r, WeftHeaderOps *req, WeftHeaderOps *resp,
                     GError **error)
{
  static const char *const known[] = {
    "type", "requestHeaderModifier", "responseHeaderModifier", "requestMirror",
    "requestRedirect", "urlRewrite", "extensionRef", "cors", "externalAuth", NULL
  };
  const WeftNode *settings = NULL;
  guint idx = 0;
  guint seen;
  const char *key;
  gsize mark;
  gboolean ok;

  if (weft_node_get_kind (filter) != WEFT_NODE_MAP)
    {
      weft_tr_error (tr, filter, NULL, error, "must be a mapping with a type");
      return FALSE;
    }
  if (!weft_tr_check_fields (tr, filter, known, NULL, error)
      || !weft_gateway_filter_type (tr, filter, allowed, &idx, error))
    return FALSE;
  key = weft_gateway_filters[idx].key;
  for (guint i = 1; known[i] != NULL; i++)
    if (strcmp (known[i], key) != 0 && weft_tr_key_node (filter, known[i]) != NULL)
      {
        weft_tr_error (tr, weft_tr_key_node (filter, known[i]), known[i], error,
                       "does not belong in a filter of type %s", weft_gateway_filters[idx].type);
        return FALSE;
      }
  if (!weft_tr_map (tr, filter, key, &settings, error))
    return FALSE;
  if (settings == NULL)
    {
      weft_tr_error (tr, filter, NULL, error, "of type %s needs '%s'",
                     weft_gateway_filters[idx].type, key);
      return FALSE;
    }
  /* only a mirror may come twice; a redirect and a rewrite exclude each other */
  seen = r->seen | weft_gateway_filters[idx].bit;
  if ((r->seen & weft_gateway_filters[idx].bit & ~WEFT_GATEWAY_MIRROR) != 0
      || (seen & (WEFT_GATEWAY_REDIRECT | WEFT_GATEWAY_REWRITE))
         == (WEFT_GATEWAY_REDIRECT | WEFT_GATEWAY_REWRITE))
    {
      weft_tr_error (tr, weft_tr_field (filter, "type"), "type", error,
                     "is %s, which cannot be used here: a rule takes one of each filter but "
                     "RequestMirror, and not both RequestRedirect and URLRewrite",
                     weft_gateway_filters[idx].type);
      return FALSE;
    }
  r->seen = seen;
  mark = weft_tr_enter (tr, key);
  ok = weft_gateway_filter_apply (tr, settings, idx, r, req, resp, error);
  weft_tr_leave (tr, mark);
  return ok;
}

/* the filters of a rule (allowed = every type) or of a backend */
static gboolean
weft_gateway_filters_of (WeftTranslator *tr, const WeftNode *map, guint allowed,
                         WeftGatewayRule *r, WeftHeaderOps *req, WeftHeaderOps *resp,
                         GError **error)
{
  const WeftNode *list = NULL;

  if (!weft_tr_seq (tr, map, "filters", &list, error))
    return FALSE;
  for (guint i = 0; i < weft_node_get_length (list); i++)
    {
      gsize mark = weft_tr_enter_item (tr, "filters", i);
      gboolean ok = weft_gateway_filter (tr, weft_node_get_item (list, i), allowed, r, req,
                                         resp, error);
      weft_tr_leave (tr, mark);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* backends, timeouts, retries                                          */
/* ------------------------------------------------------------------ */

static gboolean
weft_gateway_backend_ref (WeftTranslator *tr, const WeftNode *ref, WeftRouteAction *action,
                          GError **error)
{
  static const char *const known[] = {
    "group", "kind", "name", "namespace", "port", "weight", "filters", NULL
  };
  WeftGatewayRule backend = { .action = action };
  WeftRouteDest *dest = weft_gateway_backend (tr, ref, known, error);
  guint64 weight = 1;

  if (dest == NULL)
    return FALSE;
  g_ptr_array_add (action->dests, dest);
  if (!weft_tr_uint (tr, ref, "weight", 0, 1000000, &weight, error))
    return FALSE;
  dest->weight = (double) weight;
  return weft_gateway_filters_of (tr, ref,
                                  WEFT_GATEWAY_REQUEST_HEADERS | WEFT_GATEWAY_RESPONSE_HEADERS,
                                  &backend, &dest->request_headers, &dest->response_headers,
                                  error);
}

/* no backends (and no redirect), or every weight 0: the Gateway API
 * answers 500 */
static gboolean
weft_gateway_backend_refs (WeftTranslator *tr, const WeftNode *rule, WeftRouteAction *action,
                           GError **error)
{
  const WeftNode *list = NULL;
  double total = 0;

  if (!weft_tr_seq (tr, rule, "backendRefs", &list, error))
    return FALSE;
  if (list != NULL && action->has_redirect)
    {
      weft_tr_error (tr, weft_tr_key_node (rule, "backendRefs"), "backendRefs", error,
                     "cannot be given with a RequestRedirect filter, which answers itself");
      return FALSE;
    }
  for (guint i = 0; i < weft_node_get_length (list); i++)
    {
      gsize mark = weft_tr_enter_item (tr, "backendRefs", i);
      gboolean ok = weft_gateway_backend_ref (tr, weft_node_get_item (list, i), action, error);
      weft_tr_leave (tr, mark);
      if (!ok)
        return FALSE;
      total += ((WeftRouteDest *) action->dests->pdata[i])->weight;
    }
  if (total == 0 && !action->has_redirect)
    {
      g_ptr_array_set_size (action->dests, 0);
      action->direct_status = 500;
    }
  return TRUE;
}

/* timeouts {request, backendRequest}: request is the whole request's;
 * backendRequest bounds each try, so it is the per-try timeout when the
 * rule retries, and else bounds the one try like request does */
static gboolean
weft_gateway_timeouts (WeftTranslator *tr, const WeftNode *timeouts, gpointer target,
                       GError **error)
{
  WeftRouteAction *action = target;
  static const char *const known[] = { "request", "backendRequest", NULL };
  guint64 request = 0;
  guint64 backend = 0;

  if (!weft_tr_check_fields (tr, timeouts, known, NULL, error)
      || !weft_tr_duration (tr, timeouts, "request", &request, error)
      || !weft_tr_duration (tr, timeouts, "backendRequest", &backend, error))
    return FALSE;
  if (request != 0 && backend > request)
    {
      weft_tr_error (tr, weft_tr_field (timeouts, "backendRequest"), "backendRequest", error,
                     "must not be longer than 'request'");
      return FALSE;
    }
  action->has_timeout = weft_tr_field (timeouts, "request") != NULL;
  action->timeout_ms = request;
  if (backend == 0)
    return TRUE;
  if (action->has_retry)
    action->retry.per_try_timeout_ms = backend;
  else
    {
      action->has_timeout = TRUE;
      action->timeout_ms = request == 0 ? backend : MIN (request, backend);
    }
  return TRUE;
}

/* retry {codes, attempts, backoff} (experimental channel); connect
 * failures and refused streams, which the backend never processed, are
 * retried too; no codes = 503 */
static gboolean
weft_gateway_retry (WeftTranslator *tr, const WeftNode *retry, gpointer target, GError **error)
{
  static const char *const known[] = { "codes", "attempts", "backoff", NULL };
  const WeftNode *codes = NULL;
  WeftRetrySpec *spec = target;
  guint64 attempts = 2;         /* as Istio's Gateway API implementation */
  gboolean ok;

  ok = weft_tr_check_fields (tr, retry, known, NULL, error)
       && weft_tr_uint (tr, retry, "attempts", 0, 100, &attempts, error)
       && weft_tr_duration (tr, retry, "backoff", &spec->backoff_base_ms, error)
       && weft_tr_seq (tr, retry, "codes", &codes, error);
  if (ok && weft_node_get_length (codes) > WEFT_RETRY_MAX_STATUSES)
    {
      weft_tr_error (tr, codes, "codes", error, "lists more than %d codes",
                     WEFT_RETRY_MAX_STATUSES);
      ok = FALSE;
    }
  for (guint i = 0; ok && i < weft_node_get_length (codes); i++)
    {
      const WeftNode *item = weft_node_get_item (codes, i);
      guint64 code = 0;
      ok = weft_node_get_uint64 (item, &code, NULL) && code >= 400 && code <= 599;
      if (ok)
        spec->statuses[spec->n_statuses++] = (guint16) code;
      else
        weft_tr_error (tr, item, "codes", error, "must list status codes from 400 to 599");
    }
  if (spec->n_statuses == 0)
    spec->statuses[spec->n_statuses++] = 503;
  spec->attempts = (guint) attempts;
  spec->retry_on = WEFT_RETRY_ON_CONNECT_FAILURE | WEFT_RETRY_ON_REFUSED_STREAM
                   | WEFT_RETRY_ON_STATUS;
  return ok;
}

/* ------------------------------------------------------------------ */
/* rules                                                                */
/* ------------------------------------------------------------------ */

/* ReplacePrefixMatch replaces what a PathPrefix matched: every match of
 * the rule must be one */
static gboolean
weft_gateway_check_prefix (WeftTranslator *tr, WeftGatewayRule *r, GPtrArray *rules,
                           guint first, GError **error)
{
  if (r->prefix_node == NULL)
    return TRUE;
  for (guint i = first; i < rules->len; i++)
    {
      WeftRouteRule *rule = rules->pdata[i];
      if (rule->match.path.kind == WEFT_STR_PREFIX)
        continue;
      weft_node_set_error (r->prefix_node, error, "%s '%s': field '%s' is ReplacePrefixMatch, "
                           "which needs every match of the rule to be a PathPrefix",
                           tr->kind, tr->name, r->prefix_field);
      return FALSE;
    }
  return TRUE;
}

static gboolean
weft_gateway_rule_fields (WeftTranslator *tr, const WeftNode *node, WeftGatewayRule *r,
                          GPtrArray *rules, GError **error)
{
  static const char *const known[] = {
    "name", "matches", "filters", "backendRefs", "timeouts", "retry", NULL
  };
  static const WeftRefusedField refused[] = {
    { "sessionPersistence", "weft does not pin clients to backends; a DestinationRule's "
                            "consistentHash on a cookie or header keeps them on one endpoint" },
    { NULL, NULL }
  };
  WeftRouteAction *action = r->action;
  const char *name = NULL;
  guint first = rules->len;

  if (weft_node_get_kind (node) != WEFT_NODE_MAP)
    {
      weft_tr_error (tr, node, NULL, error, "must be a mapping");
      return FALSE;
    }
  if (!weft_tr_check_fields (tr, node, known, refused, error)
      || !weft_tr_string (tr, node, "name", &name, error))
    return FALSE;
  action->name = name != NULL ? g_strdup_printf ("%s/%s", tr->name, name)
                              : g_strdup_printf ("%s/%s", tr->name, tr->path->str);
  return weft_gateway_filters_of (tr, node, (guint) -1, r, &action->request_headers,
                                  &action->response_headers, error)
         && weft_gateway_backend_refs (tr, node, action, error)
         && weft_tr_section (tr, node, "retry", weft_gateway_retry, &action->retry,
                             &action->has_retry, error)
         && weft_tr_section (tr, node, "timeouts", weft_gateway_timeouts, action, NULL, error)
         && weft_gateway_matches (tr, node, action, rules, error)
         && weft_gateway_check_prefix (tr, r, rules, first, error);
}

static gboolean
weft_gateway_rule (WeftTranslator *tr, const WeftNode *node, GPtrArray *rules, GError **error)
{
  WeftGatewayRule r = { .action = weft_route_action_new (node) };
  gboolean ok = weft_gateway_rule_fields (tr, node, &r, rules, error);

  weft_route_action_unref (r.action);
  g_free (r.prefix_field);
  return ok;
}

static gboolean
weft_gateway_http_route (WeftTranslator *tr, GError **error)
{
  static const char *const known[] = { "parentRefs", "hostnames", "rules", NULL };
  g_autoptr(GPtrArray) services = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) hostnames = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) rules = g_ptr_array_new_with_free_func ((GDestroyNotify) weft_route_rule_free);
  const WeftNode *list = NULL;

  if (!weft_tr_check_fields (tr, tr->spec, known, NULL, error)
      || !weft_gateway_parent_refs (tr, services, error)
      || !weft_gateway_hostnames (tr, hostnames, error)
      || !weft_tr_seq (tr, tr->spec, "rules", &list, error))
    return FALSE;
  if (services->len == 0 && hostnames->len == 0)
    {
      weft_tr_error (tr, tr->spec, "parentRefs", error,
                     "is missing: name the Service this route applies to (kind: Service, "
                     "group: \"\"), or give hostnames");
      return FALSE;
    }
  if (weft_node_get_length (list) == 0)
    {
      weft_tr_error (tr, list ? list : tr->spec, "rules", error, "must list at least one rule");
      return FALSE;
    }
  for (guint i = 0; i < weft_node_get_length (list); i++)
    {
      gsize mark = weft_tr_enter_item (tr, "rules", i);
      gboolean ok = weft_gateway_rule (tr, weft_node_get_item (list, i), rules, error);
      weft_tr_leave (tr, mark);
      if (!ok)
        return FALSE;
    }
  weft_tr_add_rules (tr, hostnames->len > 0 ? hostnames : services, rules);
  return TRUE;
}

gboolean
weft_router_add_http_route (WeftRouterConfig *config, const WeftNode *doc, GError **error)
{
  static const char *const api_versions[] = {
    "gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1", NULL
  };
  g_auto(WeftTranslator) tr = { 0 };

  return weft_translator_init (&tr, config, "HTTPRoute", api_versions, doc, error)
         && weft_gateway_http_route (&tr, error);
}
