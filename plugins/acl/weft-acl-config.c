/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * weft's `acl:` settings and Istio AuthorizationPolicy documents into
 * WeftAclPolicy objects, and, at finish, the choice of the policies that
 * apply to this sidecar. Every field is read or refused with an error at
 * its file:line:col that names it.
 */
#include "weft-acl-private.h"

#include <string.h>

#define WEFT_ACL_DEFAULT_ROOT_NAMESPACE "istio-system"

/* ------------------------------------------------------------------ */
/* objects                                                              */
/* ------------------------------------------------------------------ */

static void
weft_acl_policy_free (WeftAclPolicy *p)
{
  for (guint i = 0; i < p->n_rules; i++)
    {
      g_free (p->rules[i].name);
      weft_policy_rule_free (p->rules[i].match);
    }
  g_free (p->rules);
  g_strfreev (p->selector);
  g_free (p->name);
  g_free (p->ns);
  g_free (p->where);
  g_free (p->skipped);
  g_free (p);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (WeftAclPolicy, weft_acl_policy_free)

WeftAclConfig *
weft_acl_config_new (WeftAclNodeFunc node_field, gpointer node_data)
{
  WeftAclConfig *config = g_new0 (WeftAclConfig, 1);

  config->root_namespace = g_strdup (WEFT_ACL_DEFAULT_ROOT_NAMESPACE);
  config->node_field = node_field;
  config->node_data = node_data;
  config->policies = g_ptr_array_new_with_free_func ((GDestroyNotify) weft_acl_policy_free);
  config->names = g_hash_table_new (g_str_hash, g_str_equal);
  return config;
}

void
weft_acl_config_free (WeftAclConfig *config)
{
  if (config == NULL)
    return;
  g_free (config->deny);
  g_free (config->allow);
  g_free (config->audit);
  g_hash_table_unref (config->names);
  g_ptr_array_unref (config->policies);
  g_free (config->root_namespace);
  g_free (config);
}

static char *
weft_acl_where (const WeftNode *node)
{
  return g_strdup_printf ("%s:%u:%u", weft_node_get_file (node), weft_node_get_line (node),
                          weft_node_get_column (node));
}

/* ------------------------------------------------------------------ */
/* reading fields                                                       */
/* ------------------------------------------------------------------ */

/* the value of @key in @map, NULL when absent or null */
static const WeftNode *
weft_acl_field (const WeftNode *map, const char *key)
{
  const WeftNode *value = map != NULL ? weft_node_lookup (map, key) : NULL;

  return weft_node_is_null (value) ? NULL : value;
}

/* a non-empty string at @key into *@out (copied); absent leaves *@out */
static gboolean
weft_acl_string (const WeftNode *map, const char *key, char **out, GError **error)
{
  const WeftNode *value = weft_acl_field (map, key);
  const char *text = NULL;

  if (value == NULL)
    return TRUE;
  if (!weft_node_get_string (value, &text, error))
    return FALSE;
  if (*text == '\0')
    {
      weft_node_set_error (value, error, "'%s' must not be empty", key);
      return FALSE;
    }
  g_free (*out);
  *out = g_strdup (text);
  return TRUE;
}

static gboolean
weft_acl_boolean (const WeftNode *map, const char *key, gboolean *out, GError **error)
{
  const WeftNode *value = weft_acl_field (map, key);

  return value == NULL || weft_node_get_boolean (value, out, error);
}

/* ------------------------------------------------------------------ */
/* the spec: action, selector, rules                                    */
/* ------------------------------------------------------------------ */

static gboolean
weft_acl_parse_action (const WeftNode *spec, WeftAclPolicy *p, GError **error)
{
  static const char *const names[] = { "ALLOW", "DENY", "AUDIT", NULL };
  const WeftNode *value = weft_acl_field (spec, "action");
  const char *text = NULL;

  p->action = WEFT_ACL_ALLOW;
  if (value == NULL)
    return TRUE;
  if (!weft_node_get_string (value, &text, error))
    return FALSE;
  for (guint i = 0; names[i] != NULL; i++)
    if (strcmp (text, names[i]) == 0)
      {
        p->action = (WeftAclAction) i;
        return TRUE;
      }
  if (strcmp (text, "CUSTOM") == 0)
    weft_node_set_error (value, error,
                         "policy '%s': action CUSTOM is not supported by weft "
                         "(external authorization providers)", p->name);
  else
    weft_node_set_error (value, error, "policy '%s': unknown action '%s' (ALLOW, DENY or AUDIT)",
                         p->name, text);
  return FALSE;
}

static gboolean
weft_acl_parse_selector (const WeftNode *spec, WeftAclPolicy *p, GError **error)
{
  static const char *const known[] = { "matchLabels", NULL };
  const WeftNode *selector = weft_acl_field (spec, "selector");
  const WeftNode *labels;
  guint n;

  if (selector == NULL)
    return TRUE;
  if (!weft_policy_check_fields (selector, "selector", known, NULL, NULL, error))
    return FALSE;
  labels = weft_acl_field (selector, "matchLabels");
  if (labels == NULL)
    return TRUE;
  if (!weft_node_expect_kind (labels, WEFT_NODE_MAP, error))
    return FALSE;
  n = weft_node_get_length (labels);
  p->selector = g_new0 (char *, 2 * n + 1);
  for (guint i = 0; i < n; i++)
    {
      const char *value = NULL;
      if (!weft_node_get_string (weft_node_get_value (labels, i), &value, error))
        return FALSE;
      p->selector[2 * i] = g_strdup (weft_node_get_scalar (weft_node_get_key (labels, i)));
      p->selector[2 * i + 1] = g_strdup (value);
    }
  return TRUE;
}

/* weft rules may carry a name; Istio's are named by their index */
static gboolean
weft_acl_parse_rule (const WeftNode *item, guint idx, gboolean named, WeftAclRule *rule,
                     GError **error)
{
  static const char *const extra[] = { "name", NULL };
  const WeftNode *name = named && weft_node_get_kind (item) == WEFT_NODE_MAP
                         ? weft_acl_field (item, "name") : NULL;
  const char *text = NULL;

  rule->match = weft_policy_rule_parse (item, named ? extra : NULL, error);
  if (rule->match == NULL)
    return FALSE;
  if (name != NULL && !weft_node_get_string (name, &text, error))
    return FALSE;
  rule->name = text != NULL && *text != '\0' ? g_strdup (text) : g_strdup_printf ("rules[%u]", idx);
  return TRUE;
}

static gboolean
weft_acl_parse_rules (const WeftNode *spec, gboolean named, WeftAclPolicy *p, GError **error)
{
  const WeftNode *rules = weft_acl_field (spec, "rules");
  guint n;

  if (rules == NULL)
    return TRUE;
  if (weft_node_get_kind (rules) != WEFT_NODE_SEQ)
    {
      weft_node_set_error (rules, error, "policy '%s': 'rules' must be a list", p->name);
      return FALSE;
    }
  n = weft_node_get_length (rules);
  p->rules = g_new0 (WeftAclRule, MAX (n, 1));
  for (guint i = 0; i < n; i++)
    {
      p->n_rules++;
      if (!weft_acl_parse_rule (weft_node_get_item (rules, i), i, named, &p->rules[i], error))
        return FALSE;
    }
  return TRUE;
}

static const WeftPolicyRefused weft_acl_refused_spec[] = {
  { "provider", "it belongs to action CUSTOM (external authorization), which weft does not do" },
  { "targetRef", "it attaches the policy to a gateway; a sidecar is chosen with 'selector'" },
  { "targetRefs", "it attaches the policy to a gateway; a sidecar is chosen with 'selector'" },
  { NULL, NULL },
};

/* the spec shape; @known lists what the caller accepts besides it */
static gboolean
weft_acl_parse_spec (const WeftNode *spec, const char *what, const char *const *known,
                     gboolean named, WeftAclPolicy *p, GError **error)
{
  /* an unsupported action says so even when 'provider' comes first */
  return weft_acl_parse_action (spec, p, error) &&
         weft_policy_check_fields (spec, what, known, NULL, weft_acl_refused_spec, error) &&
         weft_acl_parse_selector (spec, p, error) &&
         weft_acl_parse_rules (spec, named, p, error);
}

static gboolean
weft_acl_add_policy (WeftAclConfig *config, const WeftNode *node, WeftAclPolicy *p,
                     GError **error)
{
  const WeftAclPolicy *first = g_hash_table_lookup (config->names, p->name);

  if (first != NULL)
    {
      weft_node_set_error (node, error, "policy '%s' is defined twice (first at %s)", p->name,
                           first->where);
      return FALSE;
    }
  g_hash_table_insert (config->names, p->name, p);
  g_ptr_array_add (config->policies, p);
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* weft's own settings                                                  */
/* ------------------------------------------------------------------ */

static WeftAclPolicy *
weft_acl_parse_weft_policy (const WeftNode *item, GError **error)
{
  static const char *const known[] = {
    "name", "action", "selector", "rules", "dry_run", NULL,
  };
  g_autoptr(WeftAclPolicy) p = g_new0 (WeftAclPolicy, 1);

  if (!weft_node_expect_kind (item, WEFT_NODE_MAP, error) ||
      !weft_acl_string (item, "name", &p->name, error))
    return NULL;
  if (p->name == NULL)
    {
      weft_node_set_error (item, error, "acl policy needs a 'name'");
      return NULL;
    }
  p->where = weft_acl_where (item);
  if (!weft_acl_parse_spec (item, "acl policy", known, TRUE, p, error) ||
      !weft_acl_boolean (item, "dry_run", &p->dry_run, error))
    return NULL;
  return g_steal_pointer (&p);
}

static gboolean
weft_acl_parse_policies (WeftAclConfig *config, const WeftNode *list, GError **error)
{
  if (list == NULL)
    return TRUE;
  if (!weft_node_expect_kind (list, WEFT_NODE_SEQ, error))
    return FALSE;
  for (guint i = 0; i < weft_node_get_length (list); i++)
    {
      const WeftNode *item = weft_node_get_item (list, i);
      WeftAclPolicy *p = weft_acl_parse_weft_policy (item, error);
      if (p == NULL)
        return FALSE;
      if (!weft_acl_add_policy (config, item, p, error))
        {
          weft_acl_policy_free (p);
          return FALSE;
        }
    }
  return TRUE;
}

gboolean
weft_acl_config_parse_settings (WeftAclConfig *config, const WeftNode *node, GError **error)
{
  static const char *const known[] = { "dry_run", "root_namespace", "policies", NULL };

  if (weft_node_is_null (node))
    return TRUE;
  return weft_node_check_keys (node, known, error) &&
         weft_acl_boolean (node, "dry_run", &config->dry_run, error) &&
         weft_acl_string (node, "root_namespace", &config->root_namespace, error) &&
         weft_acl_parse_policies (config, weft_acl_field (node, "policies"), error);
}

/* ------------------------------------------------------------------ */
/* Istio AuthorizationPolicy documents                                  */
/* ------------------------------------------------------------------ */

static gboolean
weft_acl_parse_dry_run_annotation (const WeftNode *metadata, WeftAclPolicy *p, GError **error)
{
  const WeftNode *annotations = weft_acl_field (metadata, "annotations");
  const WeftNode *value;

  if (annotations == NULL)
    return TRUE;
  if (!weft_node_expect_kind (annotations, WEFT_NODE_MAP, error))
    return FALSE;
  value = weft_acl_field (annotations, "istio.io/dry-run");
  return value == NULL || weft_node_get_boolean (value, &p->dry_run, error);
}

/* metadata: name (required), namespace, annotations; the rest (labels,
 * uid, resourceVersion, ...) does not change what the policy does */
static gboolean
weft_acl_parse_metadata (const WeftNode *doc, WeftAclPolicy *p, GError **error)
{
  const WeftNode *metadata = weft_acl_field (doc, "metadata");
  g_autofree char *name = NULL;

  if (metadata == NULL || weft_node_get_kind (metadata) != WEFT_NODE_MAP)
    {
      weft_node_set_error (metadata ? metadata : doc, error,
                           "AuthorizationPolicy needs 'metadata' with a 'name'");
      return FALSE;
    }
  if (!weft_acl_string (metadata, "name", &name, error) ||
      !weft_acl_string (metadata, "namespace", &p->ns, error))
    return FALSE;
  if (name == NULL)
    {
      weft_node_set_error (metadata, error, "AuthorizationPolicy needs 'metadata.name'");
      return FALSE;
    }
  p->name = p->ns != NULL ? g_strdup_printf ("%s/%s", p->ns, name) : g_steal_pointer (&name);
  return weft_acl_parse_dry_run_annotation (metadata, p, error);
}

gboolean
weft_acl_config_add_document (WeftAclConfig *config, const WeftNode *doc, GError **error)
{
  static const char *const top[] = { "apiVersion", "kind", "metadata", "spec", "status", NULL };
  static const char *const spec_keys[] = { "selector", "action", "rules", NULL };
  g_autoptr(WeftAclPolicy) p = g_new0 (WeftAclPolicy, 1);
  const WeftNode *spec;

  p->where = weft_acl_where (doc);
  if (!weft_policy_check_fields (doc, "AuthorizationPolicy", top, NULL, NULL, error) ||
      !weft_acl_parse_metadata (doc, p, error))
    return FALSE;
  /* "spec: {}" is allow-nothing, and so is no spec */
  spec = weft_acl_field (doc, "spec");
  if (spec != NULL && !weft_acl_parse_spec (spec, "AuthorizationPolicy spec", spec_keys, FALSE, p,
                                            error))
    return FALSE;
  if (!weft_acl_add_policy (config, doc, p, error))
    return FALSE;
  g_steal_pointer (&p);
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* which policies apply here                                            */
/* ------------------------------------------------------------------ */

static const char *
weft_acl_node (const WeftAclConfig *config, const char *field)
{
  return config->node_field != NULL ? config->node_field (config->node_data, field) : NULL;
}

/* NULL when @p applies to this sidecar, else why not */
static char *
weft_acl_why_skipped (const WeftAclConfig *config, const WeftAclPolicy *p)
{
  const char *node_ns = weft_acl_node (config, "namespace");

  if (p->ns != NULL && strcmp (p->ns, config->root_namespace) != 0 &&
      g_strcmp0 (p->ns, node_ns) != 0)
    return g_strdup_printf ("its namespace '%s' is neither the root namespace '%s' nor this "
                            "node's (%s)", p->ns, config->root_namespace,
                            node_ns != NULL ? node_ns : "unset");
  for (guint i = 0; p->selector != NULL && p->selector[i] != NULL; i += 2)
    {
      g_autofree char *field = g_strconcat ("label.", p->selector[i], NULL);
      const char *value = weft_acl_node (config, field);
      if (g_strcmp0 (value, p->selector[i + 1]) != 0)
        return g_strdup_printf ("selector %s=%s does not match this node's label (%s)",
                                p->selector[i], p->selector[i + 1],
                                value != NULL ? value : "unset");
    }
  return NULL;
}

static void
weft_acl_push (WeftAclPolicy ***array, guint *n, WeftAclPolicy *p)
{
  *array = g_renew (WeftAclPolicy *, *array, *n + 1);
  (*array)[(*n)++] = p;
}

gboolean
weft_acl_config_finish (WeftAclConfig *config, GError **error)
{
  for (guint i = 0; i < config->policies->len; i++)
    {
      WeftAclPolicy *p = config->policies->pdata[i];

      p->skipped = weft_acl_why_skipped (config, p);
      if (p->skipped != NULL)
        {
          weft_log (WEFT_LOG_DEBUG, WEFT_ACL_LOG_DOMAIN, "%s: policy '%s' skipped: %s", p->where,
                    p->name, p->skipped);
          continue;
        }
      if (p->action == WEFT_ACL_DENY)
        weft_acl_push (&config->deny, &config->n_deny, p);
      else if (p->action == WEFT_ACL_AUDIT)
        weft_acl_push (&config->audit, &config->n_audit, p);
      else
        {
          weft_acl_push (&config->allow, &config->n_allow, p);
          config->n_allow_enforced += p->dry_run ? 0 : 1;
        }
    }
  return TRUE;
}
