/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Istio VirtualService and DestinationRule into the router's intermediate
 * form, and the field-by-field reading helpers the Gateway API translator
 * shares (weft-router-translate-private.h).
 *
 * Every field is either translated or refused with an error naming it;
 * what weft accepts but cannot honour the way Istio does is logged.
 */
#include "weft-router-translate-private.h"

#include <string.h>

#define WEFT_ROUTER_LOG_DOMAIN "router"

/* ------------------------------------------------------------------ */
/* reading Kubernetes objects field by field (shared)                   */
/* ------------------------------------------------------------------ */

gsize
weft_tr_enter (WeftTranslator *tr, const char *key)
{
  gsize mark = tr->path->len;

  if (tr->path->len > 0)
    g_string_append_c (tr->path, '.');
  g_string_append (tr->path, key);
  return mark;
}

gsize
weft_tr_enter_item (WeftTranslator *tr, const char *key, guint idx)
{
  gsize mark = weft_tr_enter (tr, key);

  g_string_append_printf (tr->path, "[%u]", idx);
  return mark;
}

void
weft_tr_leave (WeftTranslator *tr, gsize mark)
{
  g_string_truncate (tr->path, mark);
}

char *
weft_tr_field_name (WeftTranslator *tr, const char *key)
{
  if (key == NULL)
    return g_strdup (tr->path->str);
  if (tr->path->len == 0)
    return g_strdup (key);
  return g_strdup_printf ("%s.%s", tr->path->str, key);
}

const WeftNode *
weft_tr_key_node (const WeftNode *map, const char *key)
{
  for (guint i = 0; i < weft_node_get_length (map); i++)
    {
      const WeftNode *k = weft_node_get_key (map, i);
      if (g_strcmp0 (weft_node_get_scalar (k), key) == 0)
        return k;
    }
  return NULL;
}

const WeftNode *
weft_tr_field (const WeftNode *map, const char *key)
{
  const WeftNode *value;

  if (map == NULL || weft_node_get_kind (map) != WEFT_NODE_MAP)
    return NULL;
  value = weft_node_lookup (map, key);
  return weft_node_is_null (value) ? NULL : value;
}

void
weft_tr_error (WeftTranslator *tr, const WeftNode *node, const char *key, GError **error,
               const char *format, ...)
{
  g_autofree char *field = weft_tr_field_name (tr, key);
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  if (*field == '\0')
    weft_node_set_error (node, error, "%s '%s': %s", tr->kind, tr->name, message);
  else
    weft_node_set_error (node, error, "%s '%s': field '%s' %s", tr->kind, tr->name, field,
                         message);
}

void
weft_tr_log (WeftTranslator *tr, WeftLogLevel level, const WeftNode *node,
             const char *format, ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  weft_log (level, WEFT_ROUTER_LOG_DOMAIN, "%s:%u:%u: %s '%s': %s",
            weft_node_get_file (node), weft_node_get_line (node), weft_node_get_column (node),
            tr->kind, tr->name, message);
}

static const WeftRefusedField *
weft_tr_find_refused (const WeftRefusedField *refused, const char *key)
{
  for (; refused != NULL && refused->key != NULL; refused++)
    if (strcmp (refused->key, key) == 0)
      return refused;
  return NULL;
}

gboolean
weft_tr_check_fields (WeftTranslator *tr, const WeftNode *map, const char *const *known,
                      const WeftRefusedField *refused, GError **error)
{
  for (guint i = 0; i < weft_node_get_length (map); i++)
    {
      const WeftNode *key = weft_node_get_key (map, i);
      const char *name = weft_node_get_scalar (key);
      if (g_strv_contains (known, name))
        continue;

      const WeftRefusedField *why = weft_tr_find_refused (refused, name);
      g_autofree char *field = weft_tr_field_name (tr, name);
      if (why != NULL && why->why != NULL)
        weft_node_set_error (key, error, "%s field '%s' is not supported by weft: %s",
                             tr->kind, field, why->why);
      else
        weft_node_set_error (key, error, "%s field '%s' is not supported by weft",
                             tr->kind, field);
      return FALSE;
    }
  return TRUE;
}

static gboolean
weft_tr_kind (WeftTranslator *tr, const WeftNode *map, const char *key, WeftNodeKind kind,
              const char *what, const WeftNode **out, GError **error)
{
  const WeftNode *value = weft_tr_field (map, key);

  *out = NULL;
  if (value == NULL)
    return TRUE;
  if (weft_node_get_kind (value) != kind)
    {
      weft_tr_error (tr, value, key, error, "must be %s", what);
      return FALSE;
    }
  *out = value;
  return TRUE;
}

gboolean
weft_tr_map (WeftTranslator *tr, const WeftNode *map, const char *key, const WeftNode **out,
             GError **error)
{
  return weft_tr_kind (tr, map, key, WEFT_NODE_MAP, "a mapping", out, error);
}

gboolean
weft_tr_seq (WeftTranslator *tr, const WeftNode *map, const char *key, const WeftNode **out,
             GError **error)
{
  return weft_tr_kind (tr, map, key, WEFT_NODE_SEQ, "a list", out, error);
}

gboolean
weft_tr_within (WeftTranslator *tr, const char *key, const WeftNode *node,
                WeftTrSectionFunc func, gpointer target, GError **error)
{
  gsize mark;
  gboolean ok;

  if (node == NULL)
    return TRUE;
  mark = weft_tr_enter (tr, key);
  ok = func (tr, node, target, error);
  weft_tr_leave (tr, mark);
  return ok;
}

gboolean
weft_tr_section (WeftTranslator *tr, const WeftNode *parent, const char *key,
                 WeftTrSectionFunc func, gpointer target, gboolean *present, GError **error)
{
  const WeftNode *node = NULL;
  gboolean ok;

  if (!weft_tr_map (tr, parent, key, &node, error))
    return FALSE;
  ok = weft_tr_within (tr, key, node, func, target, error);
  /* an absent section leaves the flag as it was */
  if (node != NULL && present != NULL)
    *present = ok;
  return ok;
}

gboolean
weft_tr_string (WeftTranslator *tr, const WeftNode *map, const char *key, const char **out,
                GError **error)
{
  const WeftNode *value = NULL;

  if (!weft_tr_kind (tr, map, key, WEFT_NODE_SCALAR, "a string", &value, error))
    return FALSE;
  if (value != NULL)
    *out = weft_node_get_scalar (value);
  return TRUE;
}

gboolean
weft_tr_uint (WeftTranslator *tr, const WeftNode *map, const char *key, guint64 min,
              guint64 max, guint64 *out, GError **error)
{
  const WeftNode *value = weft_tr_field (map, key);
  guint64 number = 0;

  if (value == NULL)
    return TRUE;
  if (!weft_node_get_uint64 (value, &number, NULL) || number < min || number > max)
    {
      weft_tr_error (tr, value, key, error, "must be a whole number from %" G_GUINT64_FORMAT
                     " to %" G_GUINT64_FORMAT, min, max);
      return FALSE;
    }
  *out = number;
  return TRUE;
}

gboolean
weft_tr_double (WeftTranslator *tr, const WeftNode *map, const char *key, double min,
                double max, double *out, GError **error)
{
  const WeftNode *value = weft_tr_field (map, key);
  double number = 0;

  if (value == NULL)
    return TRUE;
  if (!weft_node_get_double (value, &number, NULL) || number < min || number > max)
    {
      if (max == G_MAXDOUBLE)
        weft_tr_error (tr, value, key, error, "must be a number, %g or more", min);
      else
        weft_tr_error (tr, value, key, error, "must be a number from %g to %g", min, max);
      return FALSE;
    }
  *out = number;
  return TRUE;
}

gboolean
weft_tr_boolean (WeftTranslator *tr, const WeftNode *map, const char *key, gboolean *out,
                 GError **error)
{
  const WeftNode *value = weft_tr_field (map, key);

  if (value == NULL)
    return TRUE;
  if (!weft_node_get_boolean (value, out, NULL))
    {
      weft_tr_error (tr, value, key, error, "must be true or false");
      return FALSE;
    }
  return TRUE;
}

/* a number ("1", "1.5") and a unit; *text moves past both */
static gboolean
weft_tr_duration_term (const char **text, double *ms)
{
  static const struct { const char *unit; double ms; } units[] = {
    { "ms", 1 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 },
  };
  const char *p = *text;
  gsize digits = strspn (p, "0123456789.");

  if (digits == 0 || strchr (p, '.') == p || p[digits - 1] == '.'
      || memchr (p, '.', digits) != memrchr (p, '.', digits))
    return FALSE;
  g_autofree char *number = g_strndup (p, digits);
  p += digits;
  for (gsize i = 0; i < G_N_ELEMENTS (units); i++)
    {
      gsize len = strlen (units[i].unit);
      if (strncmp (p, units[i].unit, len) != 0)
        continue;
      *ms = g_ascii_strtod (number, NULL) * units[i].ms;
      *text = p + len;
      return TRUE;
    }
  return FALSE;
}

gboolean
weft_tr_duration (WeftTranslator *tr, const WeftNode *map, const char *key, guint64 *out_ms,
                  GError **error)
{
  const WeftNode *value = NULL;
  const char *text;
  double total = 0;

  if (!weft_tr_kind (tr, map, key, WEFT_NODE_SCALAR, "a duration", &value, error))
    return FALSE;
  if (value == NULL)
    return TRUE;
  text = weft_node_get_scalar (value);
  do
    {
      double ms = 0;
      if (!weft_tr_duration_term (&text, &ms))
        {
          weft_tr_error (tr, value, key, error,
                         "must be a duration such as 100ms, 1.5s, 2m, 1h or 1m30s, not '%s'",
                         weft_node_get_scalar (value));
          return FALSE;
        }
      total += ms;
    }
  while (*text != '\0');
  if (total >= 1e15)
    {
      weft_tr_error (tr, value, key, error, "is too long");
      return FALSE;
    }
  *out_ms = (guint64) (total + 0.5);
  return TRUE;
}

static gboolean
weft_tr_metadata (WeftTranslator *tr, const WeftNode *doc, GError **error)
{
  /* what Kubernetes itself keeps in metadata is accepted and not used:
   * it says nothing about routing */
  static const char *const known[] = {
    "name", "namespace", "labels", "annotations", "uid", "resourceVersion", "generation",
    "creationTimestamp", "managedFields", NULL
  };
  const WeftNode *metadata = NULL;
  gsize mark;
  gboolean ok;

  if (!weft_tr_map (tr, doc, "metadata", &metadata, error))
    return FALSE;
  if (metadata == NULL)
    {
      weft_node_set_error (doc, error, "%s needs metadata.name", tr->kind);
      return FALSE;
    }
  mark = weft_tr_enter (tr, "metadata");
  ok = weft_tr_check_fields (tr, metadata, known, NULL, error)
       && weft_tr_string (tr, metadata, "name", &tr->name, error)
       && weft_tr_string (tr, metadata, "namespace", &tr->ns, error);
  weft_tr_leave (tr, mark);
  if (ok && tr->name == NULL)
    {
      weft_node_set_error (metadata, error, "%s needs metadata.name", tr->kind);
      return FALSE;
    }
  return ok;
}

static gboolean
weft_tr_api_version (WeftTranslator *tr, const WeftNode *doc, const char *const *api_versions,
                     GError **error)
{
  const char *version = NULL;
  g_autofree char *list = NULL;

  if (!weft_tr_string (tr, doc, "apiVersion", &version, error))
    return FALSE;
  if (version != NULL && g_strv_contains (api_versions, version))
    return TRUE;
  list = g_strjoinv (", ", (char **) api_versions);
  weft_node_set_error (weft_tr_field (doc, "apiVersion") ? weft_tr_field (doc, "apiVersion") : doc,
                       error, "%s apiVersion '%s' is not supported by weft (it reads %s)",
                       tr->kind, version ? version : "", list);
  return FALSE;
}

gboolean
weft_translator_init (WeftTranslator *tr, WeftRouterConfig *config, const char *kind,
                      const char *const *api_versions, const WeftNode *doc, GError **error)
{
  /* status is what a controller wrote back: nothing to route by */
  static const char *const known[] = { "apiVersion", "kind", "metadata", "spec", "status", NULL };

  memset (tr, 0, sizeof *tr);
  tr->config = config;
  tr->kind = kind;
  tr->path = g_string_new (NULL);
  if (!weft_node_expect_kind (doc, WEFT_NODE_MAP, error)
      || !weft_tr_check_fields (tr, doc, known, NULL, error)
      || !weft_tr_api_version (tr, doc, api_versions, error)
      || !weft_tr_metadata (tr, doc, error)
      || !weft_tr_map (tr, doc, "spec", &tr->spec, error))
    return FALSE;
  if (tr->ns == NULL && config->ctx != NULL)
    tr->ns = weft_plugin_context_get_node_field (config->ctx, "namespace");
  if (tr->spec == NULL)
    {
      weft_node_set_error (doc, error, "%s '%s' has no spec", kind, tr->name);
      return FALSE;
    }
  return TRUE;
}

void
weft_translator_clear (WeftTranslator *tr)
{
  if (tr->path != NULL)
    g_string_free (tr->path, TRUE);
  tr->path = NULL;
}

static void
weft_tr_add_domain (GPtrArray *domains, char *domain)
{
  for (guint i = 0; i < domains->len; i++)
    if (strcmp (domains->pdata[i], domain) == 0)
      {
        g_free (domain);
        return;
      }
  g_ptr_array_add (domains, domain);
}

void
weft_tr_add_domains (GPtrArray *domains, const char *host, const char *ns)
{
  g_autofree char *lower = g_ascii_strdown (host, -1);

  weft_tr_add_domain (domains, g_strdup (lower));
  if (ns == NULL || strpbrk (lower, ".*") != NULL)
    return;
  weft_tr_add_domain (domains, g_strdup_printf ("%s.%s", lower, ns));
  weft_tr_add_domain (domains, g_strdup_printf ("%s.%s.svc", lower, ns));
  weft_tr_add_domain (domains, g_strdup_printf ("%s.%s.svc.cluster.local", lower, ns));
}

void
weft_tr_add_rules (WeftTranslator *tr, GPtrArray *domains, GPtrArray *rules)
{
  WeftVirtualHost *vhost = weft_router_config_vhost (tr->config, tr->name,
                                                     (const char *const *) domains->pdata,
                                                     domains->len, tr->spec);
  gsize n = 0;
  g_autofree gpointer *taken = g_ptr_array_steal (rules, &n);

  for (gsize i = 0; i < n; i++)
    weft_vhost_add_rule (vhost, taken[i]);
}

/* ------------------------------------------------------------------ */
/* Istio basics                                                         */
/* ------------------------------------------------------------------ */

static const char *const weft_istio_api_versions[] = {
  "networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3", NULL
};

/* the upstream subset @subset of @host stands for: "service-b" and "v2"
 * give "service-b-v2"; a dotted host gets the subset on its first label,
 * "reviews.prod.svc.cluster.local" and "v2" give
 * "reviews-v2.prod.svc.cluster.local", so the name still resolves */
static char *
weft_istio_subset_upstream (const char *host, const char *subset)
{
  const char *dot = strchr (host, '.');

  if (dot == NULL)
    return g_strdup_printf ("%s-%s", host, subset);
  return g_strdup_printf ("%.*s-%s%s", (int) (dot - host), host, subset, dot);
}

/* gateways: weft is a sidecar, which Istio calls the reserved gateway
 * "mesh"; a list without "mesh" does not apply to sidecars at all */
static gboolean
weft_istio_gateways (WeftTranslator *tr, const WeftNode *map, GError **error)
{
  const WeftNode *list = NULL;
  g_autofree char *field = NULL;

  if (!weft_tr_seq (tr, map, "gateways", &list, error))
    return FALSE;
  if (list == NULL)
    return TRUE;
  for (guint i = 0; i < weft_node_get_length (list); i++)
    if (g_strcmp0 (weft_node_get_scalar (weft_node_get_item (list, i)), "mesh") == 0)
      return TRUE;
  field = weft_tr_field_name (tr, "gateways");
  weft_node_set_error (weft_tr_key_node (map, "gateways"), error,
                       "%s field '%s' is not supported by weft: 'gateways' selects Istio "
                       "ingress gateways, which a sidecar does not have; remove it, add 'mesh' "
                       "(Istio's name for the sidecars), or run this %s on an Istio gateway",
                       tr->kind, field, tr->kind);
  return FALSE;
}

/* exportTo limits which namespaces see the object; weft has no namespaces
 * to export to: a sidecar uses every object in its config directory */
static gboolean
weft_istio_export_to (WeftTranslator *tr, const WeftNode *map, GError **error)
{
  const WeftNode *list = NULL;

  if (!weft_tr_seq (tr, map, "exportTo", &list, error))
    return FALSE;
  for (guint i = 0; i < weft_node_get_length (list); i++)
    {
      const WeftNode *item = weft_node_get_item (list, i);
      if (weft_node_get_kind (item) == WEFT_NODE_SCALAR && !weft_node_is_null (item))
        continue;
      gsize mark = weft_tr_enter_item (tr, "exportTo", i);
      weft_tr_error (tr, item, NULL, error, "must be a namespace name, '.' or '*'");
      weft_tr_leave (tr, mark);
      return FALSE;
    }
  return TRUE;
}

/* Istio's Percent {value}: 0 to 100 */
static gboolean
weft_istio_percent_fields (WeftTranslator *tr, const WeftNode *percent, gpointer target,
                           GError **error)
{
  static const char *const known[] = { "value", NULL };

  return weft_tr_check_fields (tr, percent, known, NULL, error)
         && weft_tr_double (tr, percent, "value", 0, 100, target, error);
}

/* a percentage given either as Percent {value} under @key or, deprecated,
 * as an integer under @old_key; *given says whether either was there */
static gboolean
weft_istio_percentage (WeftTranslator *tr, const WeftNode *map, const char *key,
                       const char *old_key, double *out, gboolean *given, GError **error)
{
  guint64 old = 0;

  *given = weft_tr_field (map, key) != NULL || weft_tr_field (map, old_key) != NULL;
  if (weft_tr_field (map, key) != NULL && weft_tr_field (map, old_key) != NULL)
    {
      weft_tr_error (tr, weft_tr_key_node (map, old_key), old_key, error,
                     "cannot be given with '%s'; write only '%s'", key, key);
      return FALSE;
    }
  if (!weft_tr_uint (tr, map, old_key, 0, 100, &old, error))
    return FALSE;
  if (weft_tr_field (map, old_key) != NULL)
    *out = (double) old;
  return weft_tr_section (tr, map, key, weft_istio_percent_fields, out, NULL, error);
}

/* ------------------------------------------------------------------ */
/* string matches                                                       */
/* ------------------------------------------------------------------ */

/* Istio's StringMatch {exact | prefix | regex} at the current path; an
 * empty mapping gives @empty_kind (WEFT_STR_ANY = not allowed) */
static gboolean
weft_istio_string_match (WeftTranslator *tr, const WeftNode *node, WeftStrMatchKind empty_kind,
                         WeftStrMatch *m, GError **error)
{
  static const char *const known[] = { "exact", "prefix", "regex", NULL };
  static const WeftStrMatchKind kinds[] = { WEFT_STR_EXACT, WEFT_STR_PREFIX, WEFT_STR_REGEX };
  const char *value = NULL;

  if (weft_node_get_kind (node) != WEFT_NODE_MAP)
    {
      weft_tr_error (tr, node, NULL, error, "must be a mapping with exact, prefix or regex");
      return FALSE;
    }
  if (!weft_tr_check_fields (tr, node, known, NULL, error))
    return FALSE;
  if (weft_node_get_length (node) > 1)
    {
      weft_tr_error (tr, node, NULL, error, "takes one of exact, prefix or regex, not several");
      return FALSE;
    }
  if (weft_node_get_length (node) == 0 && empty_kind == WEFT_STR_ANY)
    {
      weft_tr_error (tr, node, NULL, error, "needs one of exact, prefix or regex");
      return FALSE;
    }
  m->kind = empty_kind;
  for (guint i = 0; i < G_N_ELEMENTS (kinds); i++)
    {
      if (weft_node_lookup (node, known[i]) == NULL)
        continue;
      if (!weft_tr_string (tr, node, known[i], &value, error))
        return FALSE;
      if (value == NULL)
        {
          weft_tr_error (tr, weft_node_lookup (node, known[i]), known[i], error,
                         "has no value (write \"\" for the empty string)");
          return FALSE;
        }
      m->kind = kinds[i];
      m->value = g_strdup (value);
      m->node = weft_node_lookup (node, known[i]);
    }
  return TRUE;
}

/* a StringMatch field of @map into @m; absent leaves @m as it is */
static gboolean
weft_istio_match_field (WeftTranslator *tr, const WeftNode *map, const char *key,
                        WeftStrMatch *m, GError **error)
{
  const WeftNode *node = weft_tr_field (map, key);
  gsize mark;
  gboolean ok;

  if (node == NULL)
    return TRUE;
  mark = weft_tr_enter (tr, key);
  ok = weft_istio_string_match (tr, node, WEFT_STR_ANY, m, error);
  weft_tr_leave (tr, mark);
  return ok;
}

/* the router matches methods exactly or by regex: a prefix becomes a regex */
static void
weft_istio_method_prefix (WeftStrMatch *m)
{
  g_autofree char *escaped = NULL;

  if (m->kind != WEFT_STR_PREFIX)
    return;
  escaped = g_regex_escape_string (m->value, -1);
  g_free (m->value);
  m->value = g_strconcat (escaped, ".*", NULL);
  m->kind = WEFT_STR_REGEX;
}

/* headers, withoutHeaders or queryParams: name -> StringMatch */
static gboolean
weft_istio_named_matches (WeftTranslator *tr, const WeftNode *map, const char *key,
                          WeftStrMatchKind empty_kind, gboolean invert, gboolean lower,
                          GPtrArray *out, GError **error)
{
  const WeftNode *named = NULL;
  gsize mark;

  if (!weft_tr_map (tr, map, key, &named, error))
    return FALSE;
  mark = weft_tr_enter (tr, key);
  for (guint i = 0; i < weft_node_get_length (named); i++)
    {
      const char *name = weft_node_get_scalar (weft_node_get_key (named, i));
      g_autofree char *stored = lower ? g_ascii_strdown (name, -1) : g_strdup (name);
      WeftNamedMatch *nm = weft_named_match_new (stored, WEFT_STR_ANY, NULL);
      gsize item_mark = weft_tr_enter (tr, name);
      gboolean ok = weft_istio_string_match (tr, weft_node_get_value (named, i), empty_kind,
                                             &nm->match, error);

      weft_tr_leave (tr, item_mark);
      nm->match.invert = invert && nm->match.kind != WEFT_STR_ABSENT;
      g_ptr_array_add (out, nm);
      if (!ok)
        {
          weft_tr_leave (tr, mark);
          return FALSE;
        }
    }
  weft_tr_leave (tr, mark);
  return TRUE;
}

/* Istio allows exact and regex for query parameters, not prefix */
static gboolean
weft_istio_query_matches (WeftTranslator *tr, const WeftNode *match, GPtrArray *query,
                          GError **error)
{
  if (!weft_istio_named_matches (tr, match, "queryParams", WEFT_STR_PRESENT, FALSE, FALSE,
                                 query, error))
    return FALSE;
  for (guint i = 0; i < query->len; i++)
    {
      WeftNamedMatch *nm = query->pdata[i];
      const WeftNode *params = weft_node_lookup (match, "queryParams");
      if (nm->match.kind != WEFT_STR_PREFIX)
        continue;
      gsize mark = weft_tr_enter (tr, "queryParams");
      weft_tr_error (tr, weft_node_lookup (params, nm->name), nm->name, error,
                     "uses prefix, which Istio does not allow for query parameters; "
                     "use exact or regex");
      weft_tr_leave (tr, mark);
      return FALSE;
    }
  return TRUE;
}

/* weft serves plain HTTP, so the only scheme a request can have is "http" */
static gboolean
weft_istio_scheme (WeftTranslator *tr, const WeftNode *match, GError **error)
{
  WeftStrMatch m = { 0 };
  gboolean ok = weft_istio_match_field (tr, match, "scheme", &m, error);

  if (ok && m.kind != WEFT_STR_ANY && !(m.kind == WEFT_STR_EXACT && strcmp (m.value, "http") == 0))
    {
      weft_tr_error (tr, weft_node_lookup (match, "scheme"), "scheme", error,
                     "can only be {exact: http}: weft serves plain HTTP, so no request it "
                     "routes has another scheme");
      ok = FALSE;
    }
  g_free (m.value);
  return ok;
}

static gboolean
weft_istio_uri_case (WeftTranslator *tr, const WeftNode *match, WeftStrMatch *path,
                     GError **error)
{
  gboolean ignore_case = FALSE;

  if (!weft_tr_boolean (tr, match, "ignoreUriCase", &ignore_case, error))
    return FALSE;
  if (ignore_case && path->kind == WEFT_STR_REGEX)
    {
      /* as in Istio (Envoy ignores case_sensitive for regexes) */
      weft_tr_log (tr, WEFT_LOG_WARNING, weft_tr_key_node (match, "ignoreUriCase"),
                   "'ignoreUriCase' does not apply to a regex uri, in Istio as in weft; "
                   "write (?i) in the regex");
      return TRUE;
    }
  path->ignore_case = ignore_case;
  return TRUE;
}

static gboolean
weft_istio_match (WeftTranslator *tr, const WeftNode *match, WeftRouteMatch *m, GError **error)
{
  static const char *const known[] = {
    "name", "uri", "method", "authority", "headers", "queryParams", "withoutHeaders",
    "ignoreUriCase", "scheme", "gateways", NULL
  };
  static const WeftRefusedField refused[] = {
    { "port", "weft's router has no port condition; match on hosts, the path or headers" },
    { "sourceLabels", "it selects client workloads by their labels, which a sidecar does not "
                      "know of the requests it receives; match on headers instead" },
    { "sourceNamespace", "it selects client workloads by namespace, which a sidecar does not "
                         "know of the requests it receives; match on headers instead" },
    { "statPrefix", "weft keeps no per-route statistics" },
    { NULL, NULL }
  };

  if (weft_node_get_kind (match) != WEFT_NODE_MAP)
    {
      weft_tr_error (tr, match, NULL, error, "must be a mapping");
      return FALSE;
    }
  if (!weft_tr_check_fields (tr, match, known, refused, error)
      || !weft_istio_gateways (tr, match, error)
      || !weft_istio_scheme (tr, match, error)
      || !weft_istio_match_field (tr, match, "uri", &m->path, error)
      || !weft_istio_uri_case (tr, match, &m->path, error)
      || !weft_istio_match_field (tr, match, "method", &m->method, error)
      || !weft_istio_match_field (tr, match, "authority", &m->authority, error))
    return FALSE;
  weft_istio_method_prefix (&m->method);
  /* in headers an empty StringMatch {} means present, in withoutHeaders absent */
  return weft_istio_named_matches (tr, match, "headers", WEFT_STR_PRESENT, FALSE, TRUE,
                                   m->headers, error)
         && weft_istio_named_matches (tr, match, "withoutHeaders", WEFT_STR_ABSENT, TRUE, TRUE,
                                      m->headers, error)
         && weft_istio_query_matches (tr, match, m->query, error);
}

/* one rule per match block, all sharing @action; no match list = one rule
 * that matches everything */
static gboolean
weft_istio_matches (WeftTranslator *tr, const WeftNode *http, WeftRouteAction *action,
                    GPtrArray *rules, GError **error)
{
  const WeftNode *list = NULL;

  if (!weft_tr_seq (tr, http, "match", &list, error))
    return FALSE;
  if (weft_node_get_length (list) == 0)
    {
      g_ptr_array_add (rules, weft_route_rule_new (action, http));
      return TRUE;
    }
  for (guint i = 0; i < weft_node_get_length (list); i++)
    {
      const WeftNode *item = weft_node_get_item (list, i);
      WeftRouteRule *rule = weft_route_rule_new (action, item);
      gsize mark = weft_tr_enter_item (tr, "match", i);
      gboolean ok = weft_istio_match (tr, item, &rule->match, error);

      weft_tr_leave (tr, mark);
      g_ptr_array_add (rules, rule);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* destinations and header operations                                   */
/* ------------------------------------------------------------------ */

/* HeaderOperations {set, add, remove} */
static gboolean
weft_istio_header_ops (WeftTranslator *tr, const WeftNode *ops, gpointer target, GError **error)
{
  WeftHeaderOps *out = target;
  static const char *const known[] = { "set", "add", "remove", NULL };
  const WeftNode *set = NULL;
  const WeftNode *add = NULL;
  const WeftNode *remove = NULL;

  if (!weft_tr_check_fields (tr, ops, known, NULL, error)
      || !weft_tr_map (tr, ops, "set", &set, error)
      || !weft_tr_map (tr, ops, "add", &add, error)
      || !weft_tr_seq (tr, ops, "remove", &remove, error))
    return FALSE;
  for (guint i = 0; i < weft_node_get_length (set) + weft_node_get_length (add); i++)
    {
      gboolean is_set = i < weft_node_get_length (set);
      const WeftNode *map = is_set ? set : add;
      guint idx = is_set ? i : i - weft_node_get_length (set);
      const char *name = weft_node_get_scalar (weft_node_get_key (map, idx));
      const char *value = NULL;
      gsize mark = weft_tr_enter (tr, is_set ? "set" : "add");
      gboolean ok = weft_tr_string (tr, map, name, &value, error);

      weft_tr_leave (tr, mark);
      if (!ok)
        return FALSE;
      (is_set ? weft_header_ops_set : weft_header_ops_add) (out, name, value ? value : "");
    }
  for (guint i = 0; i < weft_node_get_length (remove); i++)
    {
      const char *name = weft_node_get_scalar (weft_node_get_item (remove, i));
      if (name == NULL || weft_node_is_null (weft_node_get_item (remove, i)))
        {
          weft_tr_error (tr, weft_node_get_item (remove, i), "remove", error,
                         "must list header names");
          return FALSE;
        }
      weft_header_ops_remove (out, name);
    }
  return TRUE;
}

/* Headers {request, response} under @key */
static gboolean
weft_istio_headers (WeftTranslator *tr, const WeftNode *map, const char *key,
                    WeftHeaderOps *request, WeftHeaderOps *response, GError **error)
{
  static const char *const known[] = { "request", "response", NULL };
  const WeftNode *headers = NULL;
  const WeftNode *req = NULL;
  const WeftNode *resp = NULL;
  gsize mark;
  gboolean ok;

  if (!weft_tr_map (tr, map, key, &headers, error))
    return FALSE;
  if (headers == NULL)
    return TRUE;
  mark = weft_tr_enter (tr, key);
  /* both are checked to be mappings before either is read */
  ok = weft_tr_check_fields (tr, headers, known, NULL, error)
       && weft_tr_map (tr, headers, "request", &req, error)
       && weft_tr_map (tr, headers, "response", &resp, error)
       && weft_tr_within (tr, "request", req, weft_istio_header_ops, request, error)
       && weft_tr_within (tr, "response", resp, weft_istio_header_ops, response, error);
  weft_tr_leave (tr, mark);
  return ok;
}

/* PortSelector {number} */
static gboolean
weft_istio_port (WeftTranslator *tr, const WeftNode *port, gpointer target, GError **error)
{
  static const char *const known[] = { "number", NULL };
  static const WeftRefusedField refused[] = {
    { "name", "port names need service discovery; give the port 'number'" },
    { NULL, NULL }
  };

  return weft_tr_check_fields (tr, port, known, refused, error)
         && weft_tr_uint (tr, port, "number", 1, 65535, target, error);
}

/* a Destination {host, subset, port {number}} at the current path;
 * @known says which keys the caller allows (the mission's shape puts
 * 'weight' in here too) */
static WeftRouteDest *
weft_istio_destination_fields (WeftTranslator *tr, const WeftNode *node,
                               const char *const *known, GError **error)
{
  const char *host = NULL;
  const char *subset = NULL;
  const WeftNode *port = NULL;
  guint64 number = 0;
  g_autofree char *name = NULL;

  if (weft_node_get_kind (node) != WEFT_NODE_MAP)
    {
      weft_tr_error (tr, node, NULL, error, "must be a mapping with host, subset and port");
      return NULL;
    }
  if (!weft_tr_check_fields (tr, node, known, NULL, error)
      || !weft_tr_string (tr, node, "host", &host, error)
      || !weft_tr_string (tr, node, "subset", &subset, error)
      || !weft_tr_map (tr, node, "port", &port, error))
    return NULL;
  if (host == NULL)
    {
      weft_tr_error (tr, node, NULL, error, "needs a host");
      return NULL;
    }
  if (!weft_tr_within (tr, "port", port, weft_istio_port, &number, error))
    return NULL;
  name = subset != NULL ? weft_istio_subset_upstream (host, subset) : g_strdup (host);
  return weft_route_dest_new (name, NULL, (guint16) number, 0, node);
}

/* the Destination @node, with the path at @key */
static WeftRouteDest *
weft_istio_destination (WeftTranslator *tr, const char *key, const WeftNode *node,
                        const char *const *known, GError **error)
{
  gsize mark = weft_tr_enter (tr, key);
  WeftRouteDest *dest = weft_istio_destination_fields (tr, node, known, error);

  weft_tr_leave (tr, mark);
  return dest;
}

static const char *const weft_istio_dest_known[] = { "host", "subset", "port", NULL };
static const char *const weft_istio_dest_weight_known[] = {
  "host", "subset", "port", "weight", NULL
};

/* the mission's shape: 'weight' inside 'destination'; Istio rejects it,
 * weft accepts it with a warning */
static gboolean
weft_istio_inner_weight (WeftTranslator *tr, const WeftNode *route, const WeftNode *destination,
                         double *weight, GError **error)
{
  const WeftNode *key = weft_tr_key_node (destination, "weight");
  gsize mark;
  gboolean ok;

  if (key == NULL)
    return TRUE;
  if (weft_tr_field (route, "weight") != NULL)
    {
      weft_tr_error (tr, key, "destination.weight", error,
                     "repeats the 'weight' beside 'destination'; keep only that one");
      return FALSE;
    }
  weft_tr_log (tr, WEFT_LOG_WARNING, key,
               "'weight' belongs beside 'destination', not inside it; weft accepts it here, "
               "Istio would not");
  mark = weft_tr_enter (tr, "destination");
  ok = weft_tr_double (tr, destination, "weight", 0, G_MAXDOUBLE, weight, error);
  weft_tr_leave (tr, mark);
  return ok;
}

/* HTTPRouteDestination {destination, weight, headers} */
static gboolean
weft_istio_route_dest (WeftTranslator *tr, const WeftNode *route, WeftRouteAction *action,
                       GError **error)
{
  static const char *const known[] = { "destination", "weight", "headers", NULL };
  const WeftNode *destination = NULL;
  WeftRouteDest *dest;
  double weight = -1;

  if (weft_node_get_kind (route) != WEFT_NODE_MAP)
    {
      weft_tr_error (tr, route, NULL, error, "must be a mapping with a destination");
      return FALSE;
    }
  if (!weft_tr_check_fields (tr, route, known, NULL, error)
      || !weft_tr_map (tr, route, "destination", &destination, error)
      || !weft_tr_double (tr, route, "weight", 0, G_MAXDOUBLE, &weight, error))
    return FALSE;
  if (destination == NULL)
    {
      weft_tr_error (tr, route, NULL, error, "needs a destination");
      return FALSE;
    }
  if (!weft_istio_inner_weight (tr, route, destination, &weight, error))
    return FALSE;
  dest = weft_istio_destination (tr, "destination", destination, weft_istio_dest_weight_known,
                                 error);
  if (dest == NULL)
    return FALSE;
  /* -1 = not given; weft_istio_route() settles it */
  dest->weight = weight;
  g_ptr_array_add (action->dests, dest);
  return weft_istio_headers (tr, route, "headers", &dest->request_headers,
                             &dest->response_headers, error);
}

/* Istio: one destination gets all traffic whatever its weight; among
 * several an absent weight is 0 */
static gboolean
weft_istio_weights (WeftTranslator *tr, const WeftNode *list, WeftRouteAction *action,
                    GError **error)
{
  double total = 0;

  for (guint i = 0; i < action->dests->len; i++)
    {
      WeftRouteDest *dest = action->dests->pdata[i];
      if (action->dests->len == 1 && dest->weight <= 0)
        dest->weight = 100;
      dest->weight = MAX (dest->weight, 0);
      total += dest->weight;
    }
  if (total > 0)
    return TRUE;
  weft_tr_error (tr, list, "route", error,
                 "gives every destination weight 0, so no request could be routed");
  return FALSE;
}

static gboolean
weft_istio_route (WeftTranslator *tr, const WeftNode *http, WeftRouteAction *action,
                  GError **error)
{
  const WeftNode *list = NULL;

  if (!weft_tr_seq (tr, http, "route", &list, error))
    return FALSE;
  if (list == NULL)
    return TRUE;
  if (weft_node_get_length (list) == 0)
    {
      weft_tr_error (tr, list, "route", error, "is empty");
      return FALSE;
    }
  for (guint i = 0; i < weft_node_get_length (list); i++)
    {
      gsize mark = weft_tr_enter_item (tr, "route", i);
      gboolean ok = weft_istio_route_dest (tr, weft_node_get_item (list, i), action, error);
      weft_tr_leave (tr, mark);
      if (!ok)
        return FALSE;
    }
  return weft_istio_weights (tr, list, action, error);
}

/* ------------------------------------------------------------------ */
/* redirect, direct response, rewrite                                   */
/* ------------------------------------------------------------------ */

static gboolean
weft_istio_derive_port (WeftTranslator *tr, const WeftNode *redirect, WeftRouteRedirect *r,
                        GError **error)
{
  const char *derive = NULL;

  if (!weft_tr_string (tr, redirect, "derivePort", &derive, error))
    return FALSE;
  if (derive == NULL)
    return TRUE;
  if (weft_tr_field (redirect, "port") != NULL)
    {
      weft_tr_error (tr, weft_tr_key_node (redirect, "derivePort"), "derivePort", error,
                     "cannot be given with 'port'");
      return FALSE;
    }
  /* FROM_REQUEST_PORT is what port 0 (keep) means; the request's scheme
   * is always http in weft, so the protocol default is 80 unless the
   * redirect sets https */
  if (strcmp (derive, "FROM_REQUEST_PORT") == 0)
    r->port = 0;
  else if (strcmp (derive, "FROM_PROTOCOL_DEFAULT") == 0)
    r->port = g_strcmp0 (r->scheme, "https") == 0 ? 443 : 80;
  else
    {
      weft_tr_error (tr, weft_tr_field (redirect, "derivePort"), "derivePort", error,
                     "must be FROM_PROTOCOL_DEFAULT or FROM_REQUEST_PORT, not '%s'", derive);
      return FALSE;
    }
  return TRUE;
}

static gboolean
weft_istio_redirect_fields (WeftTranslator *tr, const WeftNode *redirect, gpointer target,
                            GError **error)
{
  WeftRouteRedirect *r = target;
  static const char *const known[] = {
    "uri", "authority", "port", "scheme", "redirectCode", "derivePort", NULL
  };
  const char *uri = NULL;
  const char *authority = NULL;
  const char *scheme = NULL;
  guint64 port = 0;
  guint64 code = 301;

  if (!weft_tr_check_fields (tr, redirect, known, NULL, error)
      || !weft_tr_string (tr, redirect, "uri", &uri, error)
      || !weft_tr_string (tr, redirect, "authority", &authority, error)
      || !weft_tr_string (tr, redirect, "scheme", &scheme, error)
      || !weft_tr_uint (tr, redirect, "port", 1, 65535, &port, error)
      || !weft_tr_uint (tr, redirect, "redirectCode", 300, 399, &code, error))
    return FALSE;
  if (code != 301 && code != 302 && code != 303 && code != 307 && code != 308)
    {
      weft_tr_error (tr, weft_tr_field (redirect, "redirectCode"), "redirectCode", error,
                     "must be 301, 302, 303, 307 or 308");
      return FALSE;
    }
  r->path = g_strdup (uri);
  r->host = g_strdup (authority);
  r->scheme = g_strdup (scheme);
  r->port = (guint16) port;
  r->status = (guint) code;
  return weft_istio_derive_port (tr, redirect, r, error);
}

/* body {string | bytes (base64)} */
static gboolean
weft_istio_body (WeftTranslator *tr, const WeftNode *body, gpointer target, GError **error)
{
  WeftRouteAction *action = target;
  static const char *const known[] = { "string", "bytes", NULL };
  const char *text = NULL;
  const char *bytes = NULL;
  g_autofree guchar *decoded = NULL;
  gsize len = 0;

  if (!weft_tr_check_fields (tr, body, known, NULL, error)
      || !weft_tr_string (tr, body, "string", &text, error)
      || !weft_tr_string (tr, body, "bytes", &bytes, error))
    return FALSE;
  if ((text == NULL) == (bytes == NULL))
    {
      weft_tr_error (tr, body, NULL, error, "needs one of 'string' or 'bytes'");
      return FALSE;
    }
  if (text != NULL)
    {
      action->direct_body = g_strdup (text);
      return TRUE;
    }
  if (bytes[strspn (bytes, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\n ")]
      != '\0')
    {
      weft_tr_error (tr, weft_tr_field (body, "bytes"), "bytes", error, "is not base64");
      return FALSE;
    }
  decoded = g_base64_decode (bytes, &len);
  if (memchr (decoded, '\0', len) != NULL)
    {
      weft_tr_error (tr, weft_tr_field (body, "bytes"), "bytes", error,
                     "holds a NUL byte, which weft cannot answer with");
      return FALSE;
    }
  action->direct_body = g_strndup ((const char *) decoded, len);
  return TRUE;
}

static gboolean
weft_istio_direct_fields (WeftTranslator *tr, const WeftNode *direct, gpointer target,
                          GError **error)
{
  WeftRouteAction *action = target;
  static const char *const known[] = { "status", "body", NULL };
  const WeftNode *body = NULL;
  guint64 status = 0;
  gboolean ok;

  ok = weft_tr_check_fields (tr, direct, known, NULL, error)
       && weft_tr_uint (tr, direct, "status", 200, 599, &status, error)
       && weft_tr_map (tr, direct, "body", &body, error);
  if (ok && status == 0)
    {
      weft_tr_error (tr, direct, NULL, error, "needs a status");
      ok = FALSE;
    }
  ok = ok && weft_tr_within (tr, "body", body, weft_istio_body, action, error);
  action->direct_status = (guint) status;
  return ok;
}

/* RE2 rewrite text (\1 groups, \\ a backslash) into a PCRE2 substitution
 * (${1}, $$ a dollar); FALSE on another escape */
static gboolean
weft_istio_regex_sub (const char *re2, GString *out)
{
  for (const char *p = re2; *p != '\0'; p++)
    {
      if (*p == '$')
        g_string_append (out, "$$");
      else if (*p != '\\')
        g_string_append_c (out, *p);
      else if (g_ascii_isdigit (p[1]))
        g_string_append_printf (out, "${%c}", *++p);
      else if (p[1] == '\\')
        g_string_append_c (out, *++p);
      else
        return FALSE;
    }
  return TRUE;
}

static gboolean
weft_istio_uri_regex_fields (WeftTranslator *tr, const WeftNode *node, gpointer target,
                             GError **error)
{
  WeftRouteAction *action = target;
  static const char *const known[] = { "match", "rewrite", NULL };
  const char *match = NULL;
  const char *sub = NULL;
  g_autoptr(GString) pcre = g_string_new (NULL);
  gboolean ok;

  ok = weft_tr_check_fields (tr, node, known, NULL, error)
       && weft_tr_string (tr, node, "match", &match, error)
       && weft_tr_string (tr, node, "rewrite", &sub, error);
  if (ok && (match == NULL || sub == NULL))
    {
      weft_tr_error (tr, node, NULL, error, "needs both 'match' and 'rewrite'");
      ok = FALSE;
    }
  if (ok && !weft_istio_regex_sub (sub, pcre))
    {
      weft_tr_error (tr, weft_tr_field (node, "rewrite"), "rewrite", error,
                     "has a backslash that is neither \\1 to \\9 nor \\\\");
      ok = FALSE;
    }
  if (!ok)
    return FALSE;
  action->rewrite_regex = g_strdup (match);
  action->rewrite_regex_sub = g_strdup (pcre->str);
  action->rewrite_regex_node = weft_tr_field (node, "match");
  return TRUE;
}

static gboolean
weft_istio_rewrite_fields (WeftTranslator *tr, const WeftNode *rewrite, gpointer target,
                           GError **error)
{
  WeftRouteAction *action = target;
  static const char *const known[] = { "uri", "authority", "uriRegexRewrite", NULL };
  const char *uri = NULL;
  const char *authority = NULL;
  gboolean ok;

  ok = weft_tr_check_fields (tr, rewrite, known, NULL, error)
       && weft_tr_string (tr, rewrite, "uri", &uri, error)
       && weft_tr_string (tr, rewrite, "authority", &authority, error)
       && weft_tr_section (tr, rewrite, "uriRegexRewrite", weft_istio_uri_regex_fields, action,
                           NULL, error);
  if (ok && uri != NULL && action->rewrite_regex != NULL)
    {
      weft_tr_error (tr, weft_tr_key_node (rewrite, "uriRegexRewrite"), "uriRegexRewrite",
                     error, "cannot be given with 'uri'");
      ok = FALSE;
    }
  action->rewrite_prefix = g_strdup (uri);
  action->rewrite_authority = g_strdup (authority);
  return ok;
}

/* ------------------------------------------------------------------ */
/* timeouts, retries, faults, mirrors                                   */
/* ------------------------------------------------------------------ */

static gboolean
weft_istio_timeout (WeftTranslator *tr, const WeftNode *http, WeftRouteAction *action,
                    GError **error)
{
  if (weft_tr_field (http, "timeout") == NULL)
    return TRUE;
  action->has_timeout = TRUE;
  /* "0s" is 0: no timeout */
  return weft_tr_duration (tr, http, "timeout", &action->timeout_ms, error);
}

static gboolean
weft_istio_retry_status (WeftRetrySpec *spec, guint64 status)
{
  for (guint i = 0; i < spec->n_statuses; i++)
    if (spec->statuses[i] == status)
      return TRUE;
  if (spec->n_statuses == WEFT_RETRY_MAX_STATUSES)
    return FALSE;
  spec->statuses[spec->n_statuses++] = (guint16) status;
  spec->retry_on |= WEFT_RETRY_ON_STATUS;
  return TRUE;
}

/* one retryOn condition; FALSE when weft has no such condition */
static gboolean
weft_istio_retry_condition (const char *token, WeftRetrySpec *spec, gboolean *too_many)
{
  static const struct { const char *name; guint bits; } conditions[] = {
    { "5xx", WEFT_RETRY_ON_5XX },
    { "gateway-error", WEFT_RETRY_ON_GATEWAY_ERROR },
    { "reset", WEFT_RETRY_ON_RESET },
    { "connect-failure", WEFT_RETRY_ON_CONNECT_FAILURE },
    { "refused-stream", WEFT_RETRY_ON_REFUSED_STREAM },
    /* turns the numeric codes on, which weft does anyway */
    { "retriable-status-codes", WEFT_RETRY_ON_STATUS },
  };
  guint64 status = 0;

  for (gsize i = 0; i < G_N_ELEMENTS (conditions); i++)
    if (strcmp (token, conditions[i].name) == 0)
      {
        spec->retry_on |= conditions[i].bits;
        return TRUE;
      }
  if (strspn (token, "0123456789") != strlen (token) || strlen (token) != 3)
    return FALSE;
  status = g_ascii_strtoull (token, NULL, 10);
  if (status < 100 || status > 599)
    return FALSE;
  *too_many = !weft_istio_retry_status (spec, status);
  return !*too_many;
}

static gboolean
weft_istio_retry_on (WeftTranslator *tr, const WeftNode *retries, WeftRetrySpec *spec,
                     GError **error)
{
  const char *text = NULL;
  g_auto(GStrv) tokens = NULL;

  if (!weft_tr_string (tr, retries, "retryOn", &text, error))
    return FALSE;
  if (text == NULL)
    {
      /* Istio's default, less the gRPC conditions (unavailable, cancelled)
       * weft cannot see: connect-failure, refused-stream and 503 */
      spec->retry_on = WEFT_RETRY_ON_CONNECT_FAILURE | WEFT_RETRY_ON_REFUSED_STREAM;
      weft_istio_retry_status (spec, 503);
      return TRUE;
    }
  tokens = g_strsplit (text, ",", -1);
  for (guint i = 0; tokens[i] != NULL; i++)
    {
      const char *token = g_strstrip (tokens[i]);
      gboolean too_many = FALSE;
      if (*token == '\0' || weft_istio_retry_condition (token, spec, &too_many))
        continue;
      if (too_many)
        weft_tr_error (tr, weft_tr_field (retries, "retryOn"), "retryOn", error,
                       "lists more than %d status codes", WEFT_RETRY_MAX_STATUSES);
      else
        weft_tr_error (tr, weft_tr_field (retries, "retryOn"), "retryOn", error,
                       "has the condition '%s', which weft does not support (weft retries on "
                       "5xx, gateway-error, reset, connect-failure, refused-stream, "
                       "retriable-status-codes and status codes such as 503)", token);
      return FALSE;
    }
  return TRUE;
}

static gboolean
weft_istio_retry_fields (WeftTranslator *tr, const WeftNode *retries, gpointer target,
                         GError **error)
{
  WeftRetrySpec *spec = target;
  static const char *const known[] = {
    "attempts", "perTryTimeout", "retryOn", "backoff", NULL
  };
  static const WeftRefusedField refused[] = {
    { "retryRemoteLocalities", "weft has no localities to retry in" },
    { "retryIgnorePreviousHosts", "weft does not steer retries away from hosts tried before" },
    { NULL, NULL }
  };
  guint64 attempts = 0;

  if (!weft_tr_check_fields (tr, retries, known, refused, error)
      || !weft_tr_uint (tr, retries, "attempts", 0, 100, &attempts, error)
      || !weft_tr_duration (tr, retries, "perTryTimeout", &spec->per_try_timeout_ms, error)
      || !weft_tr_duration (tr, retries, "backoff", &spec->backoff_base_ms, error))
    return FALSE;
  /* as in Istio, attempts 0 (or none) turns retries off */
  spec->attempts = (guint) attempts;
  return weft_istio_retry_on (tr, retries, spec, error);
}


/* Istio: a fault without a percentage applies to no request */
static void
weft_istio_fault_unset (WeftTranslator *tr, const WeftNode *node, const char *what)
{
  weft_tr_log (tr, WEFT_LOG_WARNING, node,
               "fault %s has no 'percentage', so it applies to no request (as in Istio); "
               "write percentage: {value: 100} for every request", what);
}

static gboolean
weft_istio_delay (WeftTranslator *tr, const WeftNode *delay, gpointer target, GError **error)
{
  WeftRouteAction *action = target;
  static const char *const known[] = { "fixedDelay", "percentage", "percent", NULL };
  static const WeftRefusedField refused[] = {
    { "exponentialDelay", "Istio does not implement it either; use fixedDelay" },
    { NULL, NULL }
  };
  gboolean given = FALSE;

  if (!weft_tr_check_fields (tr, delay, known, refused, error)
      || !weft_tr_duration (tr, delay, "fixedDelay", &action->delay_ms, error)
      || !weft_istio_percentage (tr, delay, "percentage", "percent", &action->delay_percent,
                                 &given, error))
    return FALSE;
  if (weft_tr_field (delay, "fixedDelay") == NULL)
    {
      weft_tr_error (tr, delay, NULL, error, "needs fixedDelay");
      return FALSE;
    }
  if (!given)
    weft_istio_fault_unset (tr, delay, "delay");
  return TRUE;
}

static gboolean
weft_istio_abort (WeftTranslator *tr, const WeftNode *abort_, gpointer target, GError **error)
{
  WeftRouteAction *action = target;
  static const char *const known[] = { "httpStatus", "percentage", "percent", NULL };
  static const WeftRefusedField refused[] = {
    { "grpcStatus", "weft answers aborted requests with an HTTP status only; use httpStatus" },
    { "http2Error", "weft answers aborted requests with an HTTP status only; use httpStatus" },
    { NULL, NULL }
  };
  guint64 status = 0;
  gboolean given = FALSE;

  if (!weft_tr_check_fields (tr, abort_, known, refused, error)
      || !weft_tr_uint (tr, abort_, "httpStatus", 200, 599, &status, error)
      || !weft_istio_percentage (tr, abort_, "percentage", "percent", &action->abort_percent,
                                 &given, error))
    return FALSE;
  if (status == 0)
    {
      weft_tr_error (tr, abort_, NULL, error, "needs httpStatus");
      return FALSE;
    }
  action->abort_status = (guint) status;
  if (!given)
    weft_istio_fault_unset (tr, abort_, "abort");
  return TRUE;
}

static gboolean
weft_istio_fault_fields (WeftTranslator *tr, const WeftNode *fault, gpointer target,
                         GError **error)
{
  static const char *const known[] = { "delay", "abort", NULL };
  const WeftNode *delay = NULL;
  const WeftNode *abort_ = NULL;

  /* both are checked to be mappings before either is read */
  return weft_tr_check_fields (tr, fault, known, NULL, error)
         && weft_tr_map (tr, fault, "delay", &delay, error)
         && weft_tr_map (tr, fault, "abort", &abort_, error)
         && weft_tr_within (tr, "delay", delay, weft_istio_delay, target, error)
         && weft_tr_within (tr, "abort", abort_, weft_istio_abort, target, error);
}

/* a mirror of @percent to the Destination @node under @key */
static gboolean
weft_istio_add_mirror (WeftTranslator *tr, const char *key, const WeftNode *node,
                       double percent, WeftRouteAction *action, GError **error)
{
  WeftRouteDest *dest = weft_istio_destination (tr, key, node, weft_istio_dest_known, error);
  WeftRouteMirror *mirror;

  if (dest == NULL)
    return FALSE;
  mirror = g_new0 (WeftRouteMirror, 1);
  mirror->dest = dest;
  mirror->percent = percent;
  g_ptr_array_add (action->mirrors, mirror);
  return TRUE;
}

/* mirror {host, subset, port} with mirrorPercentage or mirrorPercent */
static gboolean
weft_istio_mirror (WeftTranslator *tr, const WeftNode *http, WeftRouteAction *action,
                   GError **error)
{
  const WeftNode *mirror = NULL;
  double percent = 100;
  gboolean given = FALSE;

  if (!weft_tr_map (tr, http, "mirror", &mirror, error)
      || !weft_istio_percentage (tr, http, "mirrorPercentage", "mirrorPercent", &percent,
                                 &given, error))
    return FALSE;
  if (mirror == NULL && given)
    {
      const char *key = weft_tr_field (http, "mirrorPercentage") ? "mirrorPercentage"
                                                                 : "mirrorPercent";
      weft_tr_error (tr, weft_tr_key_node (http, key), key, error, "needs 'mirror'");
      return FALSE;
    }
  return mirror == NULL || weft_istio_add_mirror (tr, "mirror", mirror, percent, action, error);
}

/* mirrors [{destination, percentage}] */
static gboolean
weft_istio_mirror_item (WeftTranslator *tr, const WeftNode *item, WeftRouteAction *action,
                        GError **error)
{
  static const char *const known[] = { "destination", "percentage", NULL };
  const WeftNode *destination = NULL;
  double percent = 100;

  if (weft_node_get_kind (item) != WEFT_NODE_MAP)
    {
      weft_tr_error (tr, item, NULL, error, "must be a mapping with a destination");
      return FALSE;
    }
  if (!weft_tr_check_fields (tr, item, known, NULL, error)
      || !weft_tr_map (tr, item, "destination", &destination, error)
      || !weft_tr_section (tr, item, "percentage", weft_istio_percent_fields, &percent, NULL,
                           error))
    return FALSE;
  if (destination == NULL)
    {
      weft_tr_error (tr, item, NULL, error, "needs a destination");
      return FALSE;
    }
  return weft_istio_add_mirror (tr, "destination", destination, percent, action, error);
}

static gboolean
weft_istio_mirrors (WeftTranslator *tr, const WeftNode *http, WeftRouteAction *action,
                    GError **error)
{
  const WeftNode *list = NULL;

  if (!weft_tr_seq (tr, http, "mirrors", &list, error))
    return FALSE;
  if (list != NULL && weft_tr_field (http, "mirror") != NULL)
    {
      weft_tr_error (tr, weft_tr_key_node (http, "mirrors"), "mirrors", error,
                     "cannot be given with 'mirror'");
      return FALSE;
    }
  if (list == NULL)
    return weft_istio_mirror (tr, http, action, error);
  for (guint i = 0; i < weft_node_get_length (list); i++)
    {
      gsize mark = weft_tr_enter_item (tr, "mirrors", i);
      gboolean ok = weft_istio_mirror_item (tr, weft_node_get_item (list, i), action, error);
      weft_tr_leave (tr, mark);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* VirtualService                                                       */
/* ------------------------------------------------------------------ */

/* exactly one of route, redirect, directResponse; rewrite only with route */
static gboolean
weft_istio_action_kind (WeftTranslator *tr, const WeftNode *http, GError **error)
{
  static const char *const kinds[] = { "route", "redirect", "directResponse" };
  const char *first = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (kinds); i++)
    {
      if (weft_tr_field (http, kinds[i]) == NULL)
        continue;
      if (first != NULL)
        {
          weft_tr_error (tr, weft_tr_key_node (http, kinds[i]), kinds[i], error,
                         "cannot be given with '%s'", first);
          return FALSE;
        }
      first = kinds[i];
    }
  if (first == NULL)
    {
      weft_tr_error (tr, http, NULL, error, "needs one of 'route', 'redirect' or 'directResponse'");
      return FALSE;
    }
  if (strcmp (first, "route") != 0 && weft_tr_field (http, "rewrite") != NULL)
    {
      weft_tr_error (tr, weft_tr_key_node (http, "rewrite"), "rewrite", error,
                     "cannot be given with '%s'", first);
      return FALSE;
    }
  return TRUE;
}

static gboolean
weft_istio_action (WeftTranslator *tr, const WeftNode *http, WeftRouteAction *action,
                   GError **error)
{
  static const char *const known[] = {
    "name", "match", "route", "redirect", "directResponse", "rewrite", "timeout", "retries",
    "fault", "mirror", "mirrors", "mirrorPercent", "mirrorPercentage", "headers", NULL
  };
  static const WeftRefusedField refused[] = {
    { "corsPolicy", "weft does not answer CORS preflight requests; let the application do it" },
    { "delegate", "weft does not chain VirtualServices; put the routes here" },
    { NULL, NULL }
  };
  const char *name = NULL;

  if (weft_node_get_kind (http) != WEFT_NODE_MAP)
    {
      weft_tr_error (tr, http, NULL, error, "must be a mapping");
      return FALSE;
    }
  if (!weft_tr_check_fields (tr, http, known, refused, error)
      || !weft_tr_string (tr, http, "name", &name, error)
      || !weft_istio_action_kind (tr, http, error))
    return FALSE;
  action->name = name != NULL ? g_strdup_printf ("%s/%s", tr->name, name)
                              : g_strdup_printf ("%s/%s", tr->name, tr->path->str);
  /* no 'retries': weft does not retry (Istio would retry twice); the
   * router's own defaults apply */
  return weft_istio_route (tr, http, action, error)
         && weft_tr_section (tr, http, "redirect", weft_istio_redirect_fields, &action->redirect,
                             &action->has_redirect, error)
         && weft_tr_section (tr, http, "directResponse", weft_istio_direct_fields, action, NULL,
                             error)
         && weft_tr_section (tr, http, "rewrite", weft_istio_rewrite_fields, action, NULL, error)
         && weft_istio_timeout (tr, http, action, error)
         && weft_tr_section (tr, http, "retries", weft_istio_retry_fields, &action->retry,
                             &action->has_retry, error)
         && weft_tr_section (tr, http, "fault", weft_istio_fault_fields, action, NULL, error)
         && weft_istio_mirrors (tr, http, action, error)
         && weft_istio_headers (tr, http, "headers", &action->request_headers,
                                &action->response_headers, error);
}

static gboolean
weft_istio_http (WeftTranslator *tr, const WeftNode *http, GPtrArray *rules, GError **error)
{
  WeftRouteAction *action = weft_route_action_new (http);
  gboolean ok = weft_istio_action (tr, http, action, error)
                && weft_istio_matches (tr, http, action, rules, error);

  weft_route_action_unref (action);
  return ok;
}

static gboolean
weft_istio_hosts (WeftTranslator *tr, GPtrArray *domains, GError **error)
{
  const WeftNode *hosts = NULL;

  if (!weft_tr_seq (tr, tr->spec, "hosts", &hosts, error))
    return FALSE;
  if (weft_node_get_length (hosts) == 0)
    {
      weft_tr_error (tr, hosts ? hosts : tr->spec, "hosts", error,
                     hosts ? "is empty" : "is missing: list the hosts this applies to");
      return FALSE;
    }
  for (guint i = 0; i < weft_node_get_length (hosts); i++)
    {
      const WeftNode *item = weft_node_get_item (hosts, i);
      const char *host = weft_node_get_scalar (item);
      if (host == NULL || weft_node_is_null (item) || strpbrk (host, ":/ ") != NULL)
        {
          gsize mark = weft_tr_enter_item (tr, "hosts", i);
          weft_tr_error (tr, item, NULL, error, "must be a host name without port or path");
          weft_tr_leave (tr, mark);
          return FALSE;
        }
      weft_tr_add_domains (domains, host, tr->ns);
    }
  return TRUE;
}

static gboolean
weft_istio_virtual_service (WeftTranslator *tr, GError **error)
{
  static const char *const known[] = { "hosts", "gateways", "http", "exportTo", NULL };
  static const WeftRefusedField refused[] = {
    { "tcp", "weft routes HTTP only" },
    { "tls", "weft routes HTTP only; it does not route TLS by SNI" },
    { NULL, NULL }
  };
  g_autoptr(GPtrArray) domains = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) rules = g_ptr_array_new_with_free_func ((GDestroyNotify) weft_route_rule_free);
  const WeftNode *http = NULL;

  if (!weft_tr_check_fields (tr, tr->spec, known, refused, error)
      || !weft_istio_hosts (tr, domains, error)
      || !weft_istio_gateways (tr, tr->spec, error)
      || !weft_istio_export_to (tr, tr->spec, error)
      || !weft_tr_seq (tr, tr->spec, "http", &http, error))
    return FALSE;
  if (weft_node_get_length (http) == 0)
    {
      weft_tr_error (tr, http ? http : tr->spec, "http", error,
                     "must list at least one route (weft routes HTTP only)");
      return FALSE;
    }
  for (guint i = 0; i < weft_node_get_length (http); i++)
    {
      gsize mark = weft_tr_enter_item (tr, "http", i);
      gboolean ok = weft_istio_http (tr, weft_node_get_item (http, i), rules, error);
      weft_tr_leave (tr, mark);
      if (!ok)
        return FALSE;
    }
  weft_tr_add_rules (tr, domains, rules);
  return TRUE;
}

gboolean
weft_router_add_virtual_service (WeftRouterConfig *config, const WeftNode *doc, GError **error)
{
  g_auto(WeftTranslator) tr = { 0 };

  return weft_translator_init (&tr, config, "VirtualService", weft_istio_api_versions, doc,
                               error)
         && weft_istio_virtual_service (&tr, error);
}

/* ------------------------------------------------------------------ */
/* DestinationRule                                                      */
/* ------------------------------------------------------------------ */

/* one trafficPolicy, before it is applied to an upstream */
typedef struct {
  gboolean         has_lb;
  WeftLbSpec       lb;
  char            *hash_key;
  gboolean         has_outlier;
  WeftOutlierSpec  outlier;
  gboolean         has_pool;
  WeftPoolSpec     pool;
} WeftIstioPolicy;

static void
weft_istio_policy_clear (WeftIstioPolicy *p)
{
  g_free (p->hash_key);
  memset (p, 0, sizeof *p);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (WeftIstioPolicy, weft_istio_policy_clear)

static gboolean
weft_istio_simple_lb (WeftTranslator *tr, const WeftNode *lb, WeftIstioPolicy *p,
                      GError **error)
{
  static const struct { const char *name; WeftLbPolicy policy; } simple[] = {
    { "ROUND_ROBIN", WEFT_LB_ROUND_ROBIN },
    { "RANDOM", WEFT_LB_RANDOM },
    { "LEAST_REQUEST", WEFT_LB_LEAST_REQUEST },
    { "LEAST_CONN", WEFT_LB_LEAST_REQUEST },
  };
  const char *name = NULL;

  if (!weft_tr_string (tr, lb, "simple", &name, error))
    return FALSE;
  /* UNSPECIFIED lets the proxy choose: weft's default, round robin */
  if (name == NULL || strcmp (name, "UNSPECIFIED") == 0)
    return TRUE;
  for (gsize i = 0; i < G_N_ELEMENTS (simple); i++)
    if (strcmp (name, simple[i].name) == 0)
      {
        p->has_lb = TRUE;
        p->lb.policy = simple[i].policy;
        return TRUE;
      }
  if (strcmp (name, "PASSTHROUGH") == 0)
    weft_tr_error (tr, weft_tr_field (lb, "simple"), "simple", error,
                   "PASSTHROUGH forwards to the original destination address, which weft's "
                   "router does not do; pick ROUND_ROBIN, RANDOM or LEAST_REQUEST");
  else
    weft_tr_error (tr, weft_tr_field (lb, "simple"), "simple", error,
                   "must be ROUND_ROBIN, RANDOM, LEAST_REQUEST or LEAST_CONN, not '%s'", name);
  return FALSE;
}

static gboolean
weft_istio_cookie_fields (WeftTranslator *tr, const WeftNode *cookie, gpointer target,
                          GError **error)
{
  WeftIstioPolicy *p = target;
  /* path only shapes a cookie the proxy sets, which needs ttl: weft
   * generates none, as Envoy without ttl */
  static const char *const known[] = { "name", "path", NULL };
  static const WeftRefusedField refused[] = {
    { "ttl", "weft hashes on a cookie the client sends but does not set one" },
    { "attributes", "weft hashes on a cookie the client sends but does not set one" },
    { NULL, NULL }
  };
  const char *name = NULL;
  const char *path = NULL;

  if (!weft_tr_check_fields (tr, cookie, known, refused, error)
      || !weft_tr_string (tr, cookie, "name", &name, error)
      || !weft_tr_string (tr, cookie, "path", &path, error))
    return FALSE;
  if (name == NULL)
    {
      weft_tr_error (tr, cookie, NULL, error, "needs a name");
      return FALSE;
    }
  p->lb.hash_on = WEFT_HASH_ON_COOKIE;
  p->hash_key = g_strdup (name);
  return TRUE;
}

/* what to hash: exactly one of httpHeaderName, httpCookie, useSourceIp */
static gboolean
weft_istio_hash_on (WeftTranslator *tr, const WeftNode *hash, WeftIstioPolicy *p,
                    GError **error)
{
  static const char *const keys[] = { "httpHeaderName", "httpCookie", "useSourceIp" };
  const char *header = NULL;
  gboolean source_ip = FALSE;
  guint n = 0;

  for (guint i = 0; i < G_N_ELEMENTS (keys); i++)
    n += weft_tr_field (hash, keys[i]) != NULL;
  if (n != 1)
    {
      weft_tr_error (tr, hash, NULL, error,
                     "needs exactly one of httpHeaderName, httpCookie or useSourceIp");
      return FALSE;
    }
  if (!weft_tr_string (tr, hash, "httpHeaderName", &header, error)
      || !weft_tr_boolean (tr, hash, "useSourceIp", &source_ip, error)
      || !weft_tr_section (tr, hash, "httpCookie", weft_istio_cookie_fields, p, NULL, error))
    return FALSE;
  if (header != NULL)
    {
      p->lb.hash_on = WEFT_HASH_ON_HEADER;
      p->hash_key = g_ascii_strdown (header, -1);
    }
  else if (weft_tr_field (hash, "useSourceIp") != NULL && !source_ip)
    {
      weft_tr_error (tr, weft_tr_field (hash, "useSourceIp"), "useSourceIp", error,
                     "is false, which leaves nothing to hash on");
      return FALSE;
    }
  else if (source_ip)
    p->lb.hash_on = WEFT_HASH_ON_SOURCE_IP;
  return TRUE;
}

static gboolean
weft_istio_is_prime (guint64 n)
{
  if (n < 2)
    return FALSE;
  for (guint64 d = 2; d * d <= n; d++)
    if (n % d == 0)
      return FALSE;
  return TRUE;
}

static gboolean
weft_istio_ring_hash (WeftTranslator *tr, const WeftNode *ring, gpointer target, GError **error)
{
  guint64 *size = target;
  static const char *const known[] = { "minimumRingSize", NULL };

  return weft_tr_check_fields (tr, ring, known, NULL, error)
         && weft_tr_uint (tr, ring, "minimumRingSize", 1, 8388608, size, error);
}

static gboolean
weft_istio_maglev (WeftTranslator *tr, const WeftNode *maglev, gpointer target, GError **error)
{
  guint64 *size = target;
  static const char *const known[] = { "tableSize", NULL };

  if (!weft_tr_check_fields (tr, maglev, known, NULL, error)
      || !weft_tr_uint (tr, maglev, "tableSize", 2, 5000011, size, error))
    return FALSE;
  if (*size != 0 && !weft_istio_is_prime (*size))
    {
      weft_tr_error (tr, weft_tr_field (maglev, "tableSize"), "tableSize", error,
                     "must be a prime number, such as 65537");
      return FALSE;
    }
  return TRUE;
}

/* ringHash {minimumRingSize}, maglev {tableSize} or the old
 * minimumRingSize; none of them = a ring of the default size, as Istio */
static gboolean
weft_istio_hash_algorithm (WeftTranslator *tr, const WeftNode *hash, WeftIstioPolicy *p,
                           GError **error)
{
  const WeftNode *ring = NULL;
  const WeftNode *maglev = NULL;
  guint64 size = 0;

  if (!weft_tr_map (tr, hash, "ringHash", &ring, error)
      || !weft_tr_map (tr, hash, "maglev", &maglev, error)
      || !weft_tr_uint (tr, hash, "minimumRingSize", 1, 8388608, &size, error))
    return FALSE;
  if ((ring != NULL) + (maglev != NULL) + (weft_tr_field (hash, "minimumRingSize") != NULL) > 1)
    {
      weft_tr_error (tr, hash, NULL, error,
                     "takes one of ringHash, maglev or minimumRingSize, not several");
      return FALSE;
    }
  if (!weft_tr_within (tr, "ringHash", ring, weft_istio_ring_hash, &size, error)
      || !weft_tr_within (tr, "maglev", maglev, weft_istio_maglev, &size, error))
    return FALSE;
  p->lb.policy = maglev != NULL ? WEFT_LB_MAGLEV : WEFT_LB_RING_HASH;
  p->lb.table_size = (guint) size;
  return TRUE;
}

static gboolean
weft_istio_consistent_hash (WeftTranslator *tr, const WeftNode *lb, WeftIstioPolicy *p,
                            GError **error)
{
  static const char *const known[] = {
    "httpHeaderName", "httpCookie", "useSourceIp", "ringHash", "maglev", "minimumRingSize", NULL
  };
  static const WeftRefusedField refused[] = {
    { "httpQueryParameterName", "weft hashes on a header, a cookie or the source IP" },
    { NULL, NULL }
  };
  const WeftNode *hash = NULL;
  gsize mark;
  gboolean ok;

  if (!weft_tr_map (tr, lb, "consistentHash", &hash, error))
    return FALSE;
  if (hash == NULL)
    return TRUE;
  if (weft_tr_field (lb, "simple") != NULL)
    {
      weft_tr_error (tr, weft_tr_key_node (lb, "consistentHash"), "consistentHash", error,
                     "cannot be given with 'simple'");
      return FALSE;
    }
  mark = weft_tr_enter (tr, "consistentHash");
  ok = weft_tr_check_fields (tr, hash, known, refused, error)
       && weft_istio_hash_on (tr, hash, p, error)
       && weft_istio_hash_algorithm (tr, hash, p, error);
  weft_tr_leave (tr, mark);
  p->has_lb = ok;
  return ok;
}

static gboolean
weft_istio_load_balancer (WeftTranslator *tr, const WeftNode *lb, gpointer target,
                          GError **error)
{
  WeftIstioPolicy *p = target;
  static const char *const known[] = { "simple", "consistentHash", NULL };
  static const WeftRefusedField refused[] = {
    { "localityLbSetting", "weft has no localities to balance across" },
    { "warmupDurationSecs", "weft does not ramp traffic up to new endpoints" },
    { "warmup", "weft does not ramp traffic up to new endpoints" },
    { NULL, NULL }
  };

  return weft_tr_check_fields (tr, lb, known, refused, error)
         && weft_istio_simple_lb (tr, lb, p, error)
         && weft_istio_consistent_hash (tr, lb, p, error);
}

static gboolean
weft_istio_outlier_fields (WeftTranslator *tr, const WeftNode *od, gpointer target, GError **error)
{
  WeftOutlierSpec *o = target;
  /* interval is accepted: weft ejects as soon as a threshold is reached,
   * without a sweep interval */
  static const char *const known[] = {
    "consecutive5xxErrors", "consecutiveGatewayErrors", "interval", "baseEjectionTime",
    "maxEjectionPercent", "minHealthPercent", NULL
  };
  static const WeftRefusedField refused[] = {
    { "consecutiveErrors", "Istio deprecated it; write consecutive5xxErrors or "
                           "consecutiveGatewayErrors" },
    { "consecutiveLocalOriginFailures", "weft counts connect failures with the gateway "
                                        "errors; use consecutiveGatewayErrors" },
    { "splitExternalLocalOriginErrors", "weft counts connect failures with the gateway "
                                        "errors; use consecutiveGatewayErrors" },
    { NULL, NULL }
  };
  guint64 five = 5;             /* Istio's default */
  guint64 gateway = 0;
  guint64 max_percent = 10;
  guint64 min_health = 0;
  guint64 interval = 0;

  if (!weft_tr_check_fields (tr, od, known, refused, error)
      || !weft_tr_uint (tr, od, "consecutive5xxErrors", 0, G_MAXUINT32, &five, error)
      || !weft_tr_uint (tr, od, "consecutiveGatewayErrors", 0, G_MAXUINT32, &gateway, error)
      || !weft_tr_duration (tr, od, "interval", &interval, error)
      || !weft_tr_duration (tr, od, "baseEjectionTime", &o->base_ejection_ms, error)
      || !weft_tr_uint (tr, od, "maxEjectionPercent", 0, 100, &max_percent, error)
      || !weft_tr_uint (tr, od, "minHealthPercent", 0, 100, &min_health, error))
    return FALSE;
  if (min_health != 0)
    {
      weft_tr_error (tr, weft_tr_field (od, "minHealthPercent"), "minHealthPercent", error,
                     "must be 0: weft has no panic threshold, it ejects up to "
                     "maxEjectionPercent of the endpoints whatever is left");
      return FALSE;
    }
  /* maxEjectionPercent 0 ejects nothing: outlier detection off */
  o->consecutive_5xx = max_percent == 0 ? 0 : (guint) five;
  o->consecutive_gateway_errors = max_percent == 0 ? 0 : (guint) gateway;
  o->max_ejection_percent = max_percent == 0 ? 10 : (guint) max_percent;
  return TRUE;
}

/* the smaller of two limits where 0 is none */
static guint
weft_istio_min_limit (guint a, guint64 b)
{
  if (b == 0)
    return a;
  if (a == 0)
    return (guint) b;
  return MIN (a, (guint) b);
}

static gboolean
weft_istio_pool_tcp (WeftTranslator *tr, const WeftNode *tcp, gpointer target, GError **error)
{
  WeftPoolSpec *pool = target;
  static const char *const known[] = { "maxConnections", "connectTimeout", NULL };
  static const WeftRefusedField refused[] = {
    { "tcpKeepalive", "weft does not set TCP keepalive on upstream connections" },
    { "maxConnectionDuration", "weft does not age upstream connections out; use "
                               "http.maxRequestsPerConnection" },
    { "idleTimeout", "weft's upstream idle timeout is the global timeouts.upstream_idle" },
    { NULL, NULL }
  };
  guint64 max_connections = 0;

  if (!weft_tr_check_fields (tr, tcp, known, refused, error)
      || !weft_tr_uint (tr, tcp, "maxConnections", 0, G_MAXUINT32, &max_connections, error)
      || !weft_tr_duration (tr, tcp, "connectTimeout", &pool->connect_timeout_ms, error))
    return FALSE;
  /* HTTP/1.1 upstream: one request in flight per connection */
  pool->max_requests = weft_istio_min_limit (pool->max_requests, max_connections);
  return TRUE;
}

static gboolean
weft_istio_pool_http (WeftTranslator *tr, const WeftNode *http, gpointer target, GError **error)
{
  WeftPoolSpec *pool = target;
  static const char *const known[] = {
    "http2MaxRequests", "maxRequestsPerConnection", "h2UpgradePolicy",
    /* accepted for Istio's circuit-breaker examples: weft queues nothing, so
     * past the limit a request gets 503 at once whatever this says (docs) */
    "http1MaxPendingRequests", NULL
  };
  static const WeftRefusedField refused[] = {
    { "maxRetries", "weft bounds retries with the retry budget of each route instead" },
    { "idleTimeout", "weft's upstream idle timeout is the global timeouts.upstream_idle" },
    { "useClientProtocol", "weft speaks HTTP/1.1 to upstreams" },
    { "maxConcurrentStreams", "weft speaks HTTP/1.1 to upstreams" },
    { NULL, NULL }
  };
  guint64 max_requests = 0;
  guint64 per_connection = 0;
  guint64 pending = 0;
  const char *upgrade = NULL;

  if (!weft_tr_check_fields (tr, http, known, refused, error)
      || !weft_tr_uint (tr, http, "http1MaxPendingRequests", 0, G_MAXUINT32, &pending, error)
      || !weft_tr_uint (tr, http, "http2MaxRequests", 0, G_MAXUINT32, &max_requests, error)
      || !weft_tr_uint (tr, http, "maxRequestsPerConnection", 0, G_MAXUINT32, &per_connection,
                        error)
      || !weft_tr_string (tr, http, "h2UpgradePolicy", &upgrade, error))
    return FALSE;
  if (upgrade != NULL && strcmp (upgrade, "DEFAULT") != 0 && strcmp (upgrade, "DO_NOT_UPGRADE") != 0)
    {
      weft_tr_error (tr, weft_tr_field (http, "h2UpgradePolicy"), "h2UpgradePolicy", error,
                     "can only be DEFAULT or DO_NOT_UPGRADE: weft speaks HTTP/1.1 to upstreams");
      return FALSE;
    }
  pool->max_requests = weft_istio_min_limit (pool->max_requests, max_requests);
  pool->max_requests_per_connection = (guint) per_connection;
  return TRUE;
}

static gboolean
weft_istio_pool (WeftTranslator *tr, const WeftNode *pool, gpointer target, GError **error)
{
  static const char *const known[] = { "tcp", "http", NULL };
  const WeftNode *tcp = NULL;
  const WeftNode *http = NULL;

  /* both are checked to be mappings before either is read */
  return weft_tr_check_fields (tr, pool, known, NULL, error)
         && weft_tr_map (tr, pool, "tcp", &tcp, error)
         && weft_tr_map (tr, pool, "http", &http, error)
         && weft_tr_within (tr, "tcp", tcp, weft_istio_pool_tcp, target, error)
         && weft_tr_within (tr, "http", http, weft_istio_pool_http, target, error);
}

static gboolean
weft_istio_traffic_policy (WeftTranslator *tr, const WeftNode *policy, gpointer target,
                           GError **error)
{
  WeftIstioPolicy *p = target;
  static const char *const known[] = {
    "loadBalancer", "outlierDetection", "connectionPool", NULL
  };
  static const WeftRefusedField refused[] = {
    { "tls", "weft does not originate TLS to upstreams" },
    { "portLevelSettings", "weft applies one policy to an upstream, whatever the port" },
    { "tunnel", "weft does not tunnel upstream connections" },
    { "proxyProtocol", "weft does not send the PROXY protocol upstream" },
    { NULL, NULL }
  };

  return weft_tr_check_fields (tr, policy, known, refused, error)
         && weft_tr_section (tr, policy, "loadBalancer", weft_istio_load_balancer, p, NULL,
                             error)
         && weft_tr_section (tr, policy, "outlierDetection", weft_istio_outlier_fields,
                             &p->outlier, &p->has_outlier, error)
         && weft_tr_section (tr, policy, "connectionPool", weft_istio_pool, &p->pool,
                             &p->has_pool, error);
}

/* a subset's policy overrides the top-level one section by section, as
 * in Istio: its loadBalancer replaces the top-level loadBalancer, and so on */
static void
weft_istio_policy_inherit (WeftIstioPolicy *sub, const WeftIstioPolicy *top)
{
  if (!sub->has_lb && top->has_lb)
    {
      sub->has_lb = TRUE;
      sub->lb = top->lb;
      sub->hash_key = g_strdup (top->hash_key);
    }
  if (!sub->has_outlier && top->has_outlier)
    {
      sub->has_outlier = TRUE;
      sub->outlier = top->outlier;
    }
  if (!sub->has_pool && top->has_pool)
    {
      sub->has_pool = TRUE;
      sub->pool = top->pool;
    }
}

static gboolean
weft_istio_policy_apply (WeftTranslator *tr, const char *upstream, const WeftIstioPolicy *p,
                         const WeftNode *node, GError **error)
{
  WeftUpstreamPolicy *policy;

  if (!p->has_lb && !p->has_outlier && !p->has_pool)
    return TRUE;
  policy = weft_router_config_policy (tr->config, upstream, node);
  if (policy->node != node)
    {
      weft_tr_error (tr, node, NULL, error,
                     "sets the traffic policy of upstream '%s', which %s:%u:%u set already",
                     upstream, weft_node_get_file (policy->node),
                     weft_node_get_line (policy->node), weft_node_get_column (policy->node));
      return FALSE;
    }
  policy->host = g_strdup (upstream);
  policy->has_lb = p->has_lb;
  policy->lb = p->lb;
  policy->hash_key = g_strdup (p->hash_key);
  policy->lb.hash_key = policy->hash_key;
  policy->has_outlier = p->has_outlier;
  policy->outlier = p->outlier;
  policy->has_pool = p->has_pool;
  policy->pool = p->pool;
  return TRUE;
}

/* labels select endpoints in Istio; weft has no endpoint discovery: the
 * subset is the upstream named after it, and the labels are not used */
static gboolean
weft_istio_subset_labels (WeftTranslator *tr, const WeftNode *subset, const char *host,
                          const char *name, const char *upstream, GError **error)
{
  const WeftNode *labels = NULL;

  if (!weft_tr_map (tr, subset, "labels", &labels, error))
    return FALSE;
  for (guint i = 0; i < weft_node_get_length (labels); i++)
    if (weft_node_get_kind (weft_node_get_value (labels, i)) != WEFT_NODE_SCALAR)
      {
        gsize mark = weft_tr_enter (tr, "labels");
        weft_tr_error (tr, weft_node_get_value (labels, i),
                       weft_node_get_scalar (weft_node_get_key (labels, i)), error,
                       "must be a string");
        weft_tr_leave (tr, mark);
        return FALSE;
      }
  if (labels != NULL)
    weft_tr_log (tr, WEFT_LOG_INFO, weft_tr_key_node (subset, "labels"),
                 "subset '%s' of host '%s' is the upstream '%s'; weft does not select "
                 "endpoints by labels", name, host, upstream);
  return TRUE;
}

static gboolean
weft_istio_subset (WeftTranslator *tr, const WeftNode *subset, const char *host,
                   const WeftIstioPolicy *top, GError **error)
{
  static const char *const known[] = { "name", "labels", "trafficPolicy", NULL };
  g_auto(WeftIstioPolicy) p = { 0 };
  g_autofree char *upstream = NULL;
  const char *name = NULL;

  if (weft_node_get_kind (subset) != WEFT_NODE_MAP)
    {
      weft_tr_error (tr, subset, NULL, error, "must be a mapping with a name");
      return FALSE;
    }
  if (!weft_tr_check_fields (tr, subset, known, NULL, error)
      || !weft_tr_string (tr, subset, "name", &name, error))
    return FALSE;
  if (name == NULL || strpbrk (name, "./: ") != NULL || *name == '\0')
    {
      weft_tr_error (tr, subset, "name", error, "must be a name such as v2");
      return FALSE;
    }
  upstream = weft_istio_subset_upstream (host, name);
  if (!weft_istio_subset_labels (tr, subset, host, name, upstream, error)
      || !weft_tr_section (tr, subset, "trafficPolicy", weft_istio_traffic_policy, &p, NULL,
                           error))
    return FALSE;
  weft_istio_policy_inherit (&p, top);
  return weft_istio_policy_apply (tr, upstream, &p, subset, error);
}

static gboolean
weft_istio_subsets (WeftTranslator *tr, const char *host, const WeftIstioPolicy *top,
                    GError **error)
{
  const WeftNode *list = NULL;

  if (!weft_tr_seq (tr, tr->spec, "subsets", &list, error))
    return FALSE;
  for (guint i = 0; i < weft_node_get_length (list); i++)
    {
      gsize mark = weft_tr_enter_item (tr, "subsets", i);
      gboolean ok = weft_istio_subset (tr, weft_node_get_item (list, i), host, top, error);
      weft_tr_leave (tr, mark);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

static gboolean
weft_istio_destination_rule (WeftTranslator *tr, GError **error)
{
  static const char *const known[] = { "host", "trafficPolicy", "subsets", "exportTo", NULL };
  static const WeftRefusedField refused[] = {
    { "workloadSelector", "weft applies every DestinationRule in its configuration; remove it "
                          "and give this sidecar only the rules meant for it" },
    { NULL, NULL }
  };
  g_auto(WeftIstioPolicy) top = { 0 };
  const char *host = NULL;
  const WeftNode *policy_node;

  if (!weft_tr_check_fields (tr, tr->spec, known, refused, error)
      || !weft_tr_string (tr, tr->spec, "host", &host, error)
      || !weft_istio_export_to (tr, tr->spec, error))
    return FALSE;
  if (host == NULL || strpbrk (host, "*:/ ") != NULL)
    {
      weft_tr_error (tr, host ? weft_tr_field (tr->spec, "host") : tr->spec, "host", error,
                     host ? "must name one service: weft cannot apply a policy to a wildcard"
                          : "is missing");
      return FALSE;
    }
  if (!weft_tr_section (tr, tr->spec, "trafficPolicy", weft_istio_traffic_policy, &top, NULL,
                        error))
    return FALSE;
  policy_node = weft_tr_field (tr->spec, "trafficPolicy");
  return weft_istio_policy_apply (tr, host, &top, policy_node, error)
         && weft_istio_subsets (tr, host, &top, error);
}

gboolean
weft_router_add_destination_rule (WeftRouterConfig *config, const WeftNode *doc, GError **error)
{
  g_auto(WeftTranslator) tr = { 0 };

  return weft_translator_init (&tr, config, "DestinationRule", weft_istio_api_versions, doc,
                               error)
         && weft_istio_destination_rule (&tr, error);
}
