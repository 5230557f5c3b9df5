/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Istio Rule, Source, Operation and Condition YAML into the flat form
 * weft-policy.c matches. Every field is either read or refused with an
 * error at its file:line:col that names it.
 */
#include "weft-policy-rule-private.h"

#include <string.h>

typedef gboolean (*WeftPolicyCheckFunc) (const char *text, const char **why);

static const char weft_policy_jwt[] =
  "needs request authentication (JWT), which weft does not do";

/* ------------------------------------------------------------------ */
/* fields                                                               */
/* ------------------------------------------------------------------ */

static const WeftPolicyRefused *
weft_policy_find_refused (const WeftPolicyRefused *refused, const char *key)
{
  for (; refused != NULL && refused->key != NULL; refused++)
    if (strcmp (refused->key, key) == 0)
      return refused;
  return NULL;
}

static gboolean
weft_policy_known (const char *const *known, const char *const *extra, const char *key)
{
  return g_strv_contains (known, key) || (extra != NULL && g_strv_contains (extra, key));
}

gboolean
weft_policy_check_fields (const WeftNode *map, const char *what, const char *const *known,
                          const char *const *extra, const WeftPolicyRefused *refused,
                          GError **error)
{
  if (weft_node_get_kind (map) != WEFT_NODE_MAP)
    {
      weft_node_set_error (map, error, "%s must be a mapping", what);
      return FALSE;
    }
  for (guint i = 0; i < weft_node_get_length (map); i++)
    {
      const WeftNode *key = weft_node_get_key (map, i);
      const char *name = weft_node_get_scalar (key);
      const WeftPolicyRefused *why;

      if (name != NULL && weft_policy_known (known, extra, name))
        continue;
      why = name != NULL ? weft_policy_find_refused (refused, name) : NULL;
      if (why != NULL)
        weft_node_set_error (key, error, "%s field '%s' is not supported by weft: %s", what,
                             name, why->why);
      else
        weft_node_set_error (key, error, "unknown %s field '%s'", what, name ? name : "");
      return FALSE;
    }
  return TRUE;
}

/* the value of @key, NULL when absent or null; an error unless a list */
static gboolean
weft_policy_list (const WeftNode *map, const char *key, const WeftNode **out, GError **error)
{
  const WeftNode *value = weft_node_lookup (map, key);

  *out = NULL;
  if (weft_node_is_null (value))
    return TRUE;
  if (weft_node_get_kind (value) != WEFT_NODE_SEQ)
    {
      weft_node_set_error (value, error, "'%s' must be a list", key);
      return FALSE;
    }
  *out = value;
  return TRUE;
}

static const char *
weft_policy_item_text (const WeftNode *item, const char *key, GError **error)
{
  const char *text = weft_node_get_scalar (item);

  if (text == NULL || weft_node_is_null (item) || *text == '\0')
    {
      weft_node_set_error (item, error, "each item of '%s' must be a non-empty string", key);
      return NULL;
    }
  return text;
}

static gboolean
weft_policy_no_check (const char *text, const char **why)
{
  return TRUE;
}

static gboolean
weft_policy_parse_strs (const WeftNode *map, const char *key, WeftPolicyCheckFunc check,
                        gboolean principals, WeftPolicyStrList *out, GError **error)
{
  const WeftNode *list;
  guint n;

  if (!weft_policy_list (map, key, &list, error))
    return FALSE;
  n = list != NULL ? weft_node_get_length (list) : 0;
  weft_policy_strs_alloc (out, n);
  for (guint i = 0; i < n; i++)
    {
      const WeftNode *item = weft_node_get_item (list, i);
      const char *text = weft_policy_item_text (item, key, error);
      const char *why = NULL;

      if (text == NULL)
        return FALSE;
      if (principals)
        text = weft_policy_principal (text);
      if (!weft_policy_pattern_valid (text, &why) || !check (text, &why))
        {
          weft_node_set_error (item, error, "'%s': invalid pattern '%s': %s", key, text, why);
          return FALSE;
        }
      weft_policy_strs_push (out, text);
    }
  return TRUE;
}

static gboolean
weft_policy_path_check (const char *text, const char **why)
{
  return weft_policy_path_valid (text, why);
}

/* paths: templates are checked by their own rules, not the '*' ones */
static gboolean
weft_policy_parse_paths (const WeftNode *map, const char *key, WeftPolicyStrList *out,
                         GError **error)
{
  const WeftNode *list;
  guint n;

  if (!weft_policy_list (map, key, &list, error))
    return FALSE;
  n = list != NULL ? weft_node_get_length (list) : 0;
  weft_policy_strs_alloc (out, n);
  for (guint i = 0; i < n; i++)
    {
      const WeftNode *item = weft_node_get_item (list, i);
      const char *text = weft_policy_item_text (item, key, error);
      const char *why = NULL;

      if (text == NULL)
        return FALSE;
      if (!weft_policy_path_check (text, &why))
        {
          weft_node_set_error (item, error, "'%s': invalid path '%s': %s", key, text, why);
          return FALSE;
        }
      weft_policy_strs_push (out, text);
    }
  return TRUE;
}

static gboolean
weft_policy_parse_cidrs (const WeftNode *map, const char *key, WeftPolicyCidrList *out,
                         GError **error)
{
  const WeftNode *list;
  guint n;

  if (!weft_policy_list (map, key, &list, error))
    return FALSE;
  n = list != NULL ? weft_node_get_length (list) : 0;
  out->v = g_new0 (WeftPolicyCidr, MAX (n, 1));
  for (guint i = 0; i < n; i++)
    {
      const WeftNode *item = weft_node_get_item (list, i);
      const char *text = weft_policy_item_text (item, key, error);

      if (text == NULL)
        return FALSE;
      if (!weft_policy_cidr_parse (text, &out->v[out->n]))
        {
          weft_node_set_error (item, error, "'%s': '%s' is not an IP address or CIDR block",
                               key, text);
          return FALSE;
        }
      out->n++;
    }
  return TRUE;
}

static gboolean
weft_policy_parse_port (const WeftNode *item, const char *key, guint16 *out, GError **error)
{
  const char *text = weft_policy_item_text (item, key, error);
  guint64 v = 0;
  char *end = NULL;

  if (text == NULL)
    return FALSE;
  if (g_ascii_isdigit (text[0]))
    v = g_ascii_strtoull (text, &end, 10);
  if (end == NULL || *end != '\0' || v == 0 || v > 65535)
    {
      weft_node_set_error (item, error, "'%s': '%s' is not a port (1-65535)", key, text);
      return FALSE;
    }
  *out = (guint16) v;
  return TRUE;
}

static gboolean
weft_policy_parse_ports (const WeftNode *map, const char *key, WeftPolicyPortList *out,
                         GError **error)
{
  const WeftNode *list;
  guint n;

  if (!weft_policy_list (map, key, &list, error))
    return FALSE;
  n = list != NULL ? weft_node_get_length (list) : 0;
  out->v = g_new0 (guint16, MAX (n, 1));
  for (guint i = 0; i < n; i++)
    {
      if (!weft_policy_parse_port (weft_node_get_item (list, i), key, &out->v[i], error))
        return FALSE;
      out->n++;
    }
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* Source and Operation                                                 */
/* ------------------------------------------------------------------ */

static gboolean
weft_policy_parse_source (const WeftNode *map, WeftPolicySource *s, GError **error)
{
  static const char *const known[] = {
    "principals", "notPrincipals", "namespaces", "notNamespaces", "ipBlocks", "notIpBlocks",
    "remoteIpBlocks", "notRemoteIpBlocks", NULL,
  };
  static const WeftPolicyRefused refused[] = {
    { "requestPrincipals", weft_policy_jwt },
    { "notRequestPrincipals", weft_policy_jwt },
    { "serviceAccounts", "write the service account as a principal" },
    { "notServiceAccounts", "write the service account as a notPrincipals entry" },
    { NULL, NULL },
  };

  return weft_policy_check_fields (map, "source", known, NULL, refused, error) &&
         weft_policy_parse_strs (map, "principals", weft_policy_no_check, TRUE, &s->principals,
                                 error) &&
         weft_policy_parse_strs (map, "notPrincipals", weft_policy_no_check, TRUE,
                                 &s->not_principals, error) &&
         weft_policy_parse_strs (map, "namespaces", weft_policy_no_check, FALSE, &s->namespaces,
                                 error) &&
         weft_policy_parse_strs (map, "notNamespaces", weft_policy_no_check, FALSE,
                                 &s->not_namespaces, error) &&
         weft_policy_parse_cidrs (map, "ipBlocks", &s->ip_blocks, error) &&
         weft_policy_parse_cidrs (map, "notIpBlocks", &s->not_ip_blocks, error) &&
         weft_policy_parse_cidrs (map, "remoteIpBlocks", &s->remote_ip_blocks, error) &&
         weft_policy_parse_cidrs (map, "notRemoteIpBlocks", &s->not_remote_ip_blocks, error);
}

static gboolean
weft_policy_method_check (const char *text, const char **why)
{
  if (strchr (text, '*') == NULL)
    return TRUE;
  *why = "methods match exactly";
  return FALSE;
}

static gboolean
weft_policy_parse_operation (const WeftNode *map, WeftPolicyOperation *o, GError **error)
{
  static const char *const known[] = {
    "hosts", "notHosts", "ports", "notPorts", "methods", "notMethods", "paths", "notPaths", NULL,
  };

  return weft_policy_check_fields (map, "operation", known, NULL, NULL, error) &&
         weft_policy_parse_strs (map, "hosts", weft_policy_no_check, FALSE, &o->hosts, error) &&
         weft_policy_parse_strs (map, "notHosts", weft_policy_no_check, FALSE, &o->not_hosts,
                                 error) &&
         weft_policy_parse_strs (map, "methods", weft_policy_method_check, FALSE, &o->methods,
                                 error) &&
         weft_policy_parse_strs (map, "notMethods", weft_policy_method_check, FALSE,
                                 &o->not_methods, error) &&
         weft_policy_parse_paths (map, "paths", &o->paths, error) &&
         weft_policy_parse_paths (map, "notPaths", &o->not_paths, error) &&
         weft_policy_parse_ports (map, "ports", &o->ports, error) &&
         weft_policy_parse_ports (map, "notPorts", &o->not_ports, error);
}

/* ------------------------------------------------------------------ */
/* Condition                                                            */
/* ------------------------------------------------------------------ */

typedef enum {
  WEFT_POLICY_VALUES_STRINGS,
  WEFT_POLICY_VALUES_CIDRS,
  WEFT_POLICY_VALUES_PORTS,
} WeftPolicyValues;

static const WeftPolicyRefused weft_policy_refused_keys[] = {
  { "request.auth.", weft_policy_jwt },
  { "destination.ip", "weft does not give plugins the connection's local address yet" },
  { "experimental.", "experimental attributes are Envoy-specific" },
  { NULL, NULL },
};

static gboolean
weft_policy_header_key (const char *key, WeftPolicyCondition *c)
{
  gsize len = strlen (key), plen = strlen ("request.headers[");

  if (!g_str_has_prefix (key, "request.headers[") || len < plen + 2 || key[len - 1] != ']')
    return FALSE;
  c->key = WEFT_POLICY_KEY_HEADER;
  c->header = g_ascii_strdown (key + plen, (gssize) (len - plen - 1));
  return TRUE;
}

static gboolean
weft_policy_simple_key (const char *key, WeftPolicyCondition *c, WeftPolicyValues *values)
{
  static const struct {
    const char      *name;
    WeftPolicyKey    key;
    WeftPolicyValues values;
  } keys[] = {
    { "source.ip", WEFT_POLICY_KEY_SOURCE_IP, WEFT_POLICY_VALUES_CIDRS },
    { "remote.ip", WEFT_POLICY_KEY_REMOTE_IP, WEFT_POLICY_VALUES_CIDRS },
    { "source.namespace", WEFT_POLICY_KEY_SOURCE_NAMESPACE, WEFT_POLICY_VALUES_STRINGS },
    { "source.principal", WEFT_POLICY_KEY_SOURCE_PRINCIPAL, WEFT_POLICY_VALUES_STRINGS },
    { "destination.port", WEFT_POLICY_KEY_DESTINATION_PORT, WEFT_POLICY_VALUES_PORTS },
    { "connection.sni", WEFT_POLICY_KEY_CONNECTION_SNI, WEFT_POLICY_VALUES_STRINGS },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (keys); i++)
    if (strcmp (key, keys[i].name) == 0)
      {
        c->key = keys[i].key;
        *values = keys[i].values;
        return TRUE;
      }
  return FALSE;
}

static gboolean
weft_policy_condition_key (const WeftNode *node, WeftPolicyCondition *c,
                           WeftPolicyValues *values, GError **error)
{
  const char *key = NULL;

  if (!weft_node_get_string (node, &key, error))
    return FALSE;
  *values = WEFT_POLICY_VALUES_STRINGS;
  if (weft_policy_header_key (key, c) || weft_policy_simple_key (key, c, values))
    return TRUE;
  for (const WeftPolicyRefused *r = weft_policy_refused_keys; r->key != NULL; r++)
    if (g_str_has_prefix (key, r->key))
      {
        weft_node_set_error (node, error, "condition key '%s' is not supported by weft: %s", key,
                             r->why);
        return FALSE;
      }
  weft_node_set_error (node, error, "unknown condition key '%s'", key);
  return FALSE;
}

static gboolean
weft_policy_condition_values (const WeftNode *map, WeftPolicyCondition *c,
                              WeftPolicyValues values, GError **error)
{
  gboolean principals = c->key == WEFT_POLICY_KEY_SOURCE_PRINCIPAL;

  switch (values)
    {
    case WEFT_POLICY_VALUES_CIDRS:
      return weft_policy_parse_cidrs (map, "values", &c->cidrs, error) &&
             weft_policy_parse_cidrs (map, "notValues", &c->not_cidrs, error);
    case WEFT_POLICY_VALUES_PORTS:
      return weft_policy_parse_ports (map, "values", &c->ports, error) &&
             weft_policy_parse_ports (map, "notValues", &c->not_ports, error);
    case WEFT_POLICY_VALUES_STRINGS:
    default:
      return weft_policy_parse_strs (map, "values", weft_policy_no_check, principals, &c->values,
                                     error) &&
             weft_policy_parse_strs (map, "notValues", weft_policy_no_check, principals,
                                     &c->not_values, error);
    }
}

static gboolean
weft_policy_parse_condition (const WeftNode *map, WeftPolicyCondition *c, GError **error)
{
  static const char *const known[] = { "key", "values", "notValues", NULL };
  const WeftNode *key;
  WeftPolicyValues values;
  guint n;

  if (!weft_policy_check_fields (map, "condition", known, NULL, NULL, error))
    return FALSE;
  key = weft_node_lookup (map, "key");
  if (weft_node_is_null (key))
    {
      weft_node_set_error (map, error, "condition needs a 'key'");
      return FALSE;
    }
  if (!weft_policy_condition_key (key, c, &values, error) ||
      !weft_policy_condition_values (map, c, values, error))
    return FALSE;
  n = c->values.n + c->not_values.n + c->cidrs.n + c->not_cidrs.n + c->ports.n + c->not_ports.n;
  if (n == 0)
    {
      weft_node_set_error (map, error, "condition '%s' needs 'values' or 'notValues'",
                           weft_node_get_scalar (key));
      return FALSE;
    }
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* Rule                                                                 */
/* ------------------------------------------------------------------ */

/* from[i].source or to[i].operation: @inner of the wrapper map */
static const WeftNode *
weft_policy_unwrap (const WeftNode *item, const char *what, const char *inner, GError **error)
{
  const char *const known[] = { inner, NULL };
  const WeftNode *value;

  if (!weft_policy_check_fields (item, what, known, NULL, NULL, error))
    return NULL;
  value = weft_node_lookup (item, inner);
  if (weft_node_is_null (value))
    {
      weft_node_set_error (item, error, "%s needs '%s'", what, inner);
      return NULL;
    }
  return value;
}

static gboolean
weft_policy_parse_from (const WeftNode *list, WeftPolicyRule *rule, GError **error)
{
  guint n = list != NULL ? weft_node_get_length (list) : 0;

  rule->from = g_new0 (WeftPolicySource, MAX (n, 1));
  for (guint i = 0; i < n; i++)
    {
      const WeftNode *source = weft_policy_unwrap (weft_node_get_item (list, i), "from", "source",
                                                   error);
      rule->n_from++;
      if (source == NULL || !weft_policy_parse_source (source, &rule->from[i], error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
weft_policy_parse_to (const WeftNode *list, WeftPolicyRule *rule, GError **error)
{
  guint n = list != NULL ? weft_node_get_length (list) : 0;

  rule->to = g_new0 (WeftPolicyOperation, MAX (n, 1));
  for (guint i = 0; i < n; i++)
    {
      const WeftNode *op = weft_policy_unwrap (weft_node_get_item (list, i), "to", "operation",
                                               error);
      rule->n_to++;
      if (op == NULL || !weft_policy_parse_operation (op, &rule->to[i], error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
weft_policy_parse_when (const WeftNode *list, WeftPolicyRule *rule, GError **error)
{
  guint n = list != NULL ? weft_node_get_length (list) : 0;

  rule->when = g_new0 (WeftPolicyCondition, MAX (n, 1));
  for (guint i = 0; i < n; i++)
    {
      rule->n_when++;
      if (!weft_policy_parse_condition (weft_node_get_item (list, i), &rule->when[i], error))
        return FALSE;
    }
  return TRUE;
}

WeftPolicyRule *
weft_policy_rule_parse (const WeftNode *node, const char *const *extra_keys, GError **error)
{
  static const char *const known[] = { "from", "to", "when", NULL };
  g_autoptr(WeftPolicyRule) rule = g_new0 (WeftPolicyRule, 1);
  const WeftNode *from, *to, *when;

  /* "- {}" and a bare "-" are both the rule that matches everything */
  if (node == NULL || weft_node_is_null (node))
    return g_steal_pointer (&rule);
  if (!weft_policy_check_fields (node, "rule", known, extra_keys, NULL, error) ||
      !weft_policy_list (node, "from", &from, error) ||
      !weft_policy_list (node, "to", &to, error) ||
      !weft_policy_list (node, "when", &when, error))
    return NULL;
  if (!weft_policy_parse_from (from, rule, error) || !weft_policy_parse_to (to, rule, error) ||
      !weft_policy_parse_when (when, rule, error))
    return NULL;
  return g_steal_pointer (&rule);
}
