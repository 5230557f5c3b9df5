/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The route table: virtual hosts found by the request's host, and inside
 * each one an index of its rules by path, so that matching costs about the
 * same at 10 rules as at 10,000.
 *
 * Each virtual host keeps two byte tries (radix trees) of the paths its
 * exact and prefix rules name: one case-sensitive, one of lowercase keys
 * for ignore_case rules, walked with the request path folded. A node holds
 * the sorted orders of the rules whose exact path, plain prefix or segment
 * prefix ends there. Rules the tries cannot hold (a regex path, no path
 * condition, an inverted path condition) are in the "always" list. A match
 * walks the tries along the path, collects the lists that apply, and takes
 * their orders in increasing order (a k-way merge over cursors in the
 * worker's scratch) until a rule's remaining conditions all hold.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "weft-route-table-private.h"

#include <pcre2.h>
#include <string.h>

/* a DNS name is at most 253 bytes; longer hosts can only match "*" */
#define WEFT_RT_HOST_MAX 255

typedef struct _WeftRtNode WeftRtNode;

struct _WeftRtNode {
  char       *label;           /* the bytes on the edge into this node */
  guint       label_len;
  GArray     *child_bytes;     /* guint8: first byte of each child's label, sorted */
  GPtrArray  *children;        /* WeftRtNode*, in the order of child_bytes */
  GArray     *prefix;          /* guint32 orders: a plain prefix ends here */
  GArray     *segment;         /* a segment prefix ends here */
  GArray     *exact;           /* an exact path ends here */
};

typedef struct {
  WeftVirtualHost *vhost;
  WeftRtNode      *trie;       /* case-sensitive keys */
  WeftRtNode      *trie_ci;    /* lowercase keys, for ignore_case rules */
  GArray          *always;     /* orders tested on every request */
} WeftRtVhost;

typedef struct {
  const guint32 *orders;
  guint          n;
} WeftRtCursor;

struct _WeftRouteTable {
  GPtrArray   *vhosts;         /* WeftRtVhost* */
  GHashTable  *exact;          /* "host" or "host:port" -> WeftRtVhost* */
  GHashTable  *wildcard;       /* ".example.com" for "*.example.com" -> WeftRtVhost* */
  WeftRtVhost *any;            /* "*" */
  gboolean     port_domains;   /* some exact domain names a port */
  guint        max_lists;      /* cursors a match may need at most */
  guint        max_pairs;      /* ovector pairs of the largest regex */
  guint        n_rules;
};

struct _WeftRouteScratch {
  pcre2_match_data *md;
  WeftRtCursor     *lists;
  guint             max_lists;
  char              host[WEFT_RT_HOST_MAX + 1];
  gsize             host_len;
  char              port[8];
  gboolean          has_port;
  char              hostport[WEFT_RT_HOST_MAX + 8];
};

/* ------------------------------------------------------------------ */
/* regexes                                                              */
/* ------------------------------------------------------------------ */

void
weft_route_regex_free (gpointer re)
{
  if (re != NULL)
    pcre2_code_free (re);
}

static pcre2_code *
weft_rt_regex_compile (const char *pattern, guint32 options, const WeftNode *node,
                       GError **error)
{
  const char *src = pattern != NULL ? pattern : "";
  int code = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code *re = pcre2_compile ((PCRE2_SPTR) src, PCRE2_ZERO_TERMINATED, options, &code,
                                  &offset, NULL);
  PCRE2_UCHAR message[256];

  if (re != NULL)
    {
      /* JIT is an optimisation: without it the interpreter runs */
      pcre2_jit_compile (re, PCRE2_JIT_COMPLETE);
      return re;
    }
  pcre2_get_error_message (code, message, sizeof message);
  weft_node_set_error (node, error, "invalid regex '%s': %s at offset %zu", src,
                       (const char *) message, (gsize) offset);
  return NULL;
}

/* conditions are full matches: anchored at both ends */
static gboolean
weft_rt_compile_match (WeftStrMatch *m, const WeftNode *fallback, GError **error)
{
  guint32 options = PCRE2_ANCHORED | PCRE2_ENDANCHORED;

  if (m->kind != WEFT_STR_REGEX || m->re != NULL)
    return TRUE;
  if (m->ignore_case)
    options |= PCRE2_CASELESS;
  m->re = weft_rt_regex_compile (m->value, options, m->node ? m->node : fallback, error);
  return m->re != NULL;
}

static gboolean
weft_rt_compile_named (GPtrArray *list, const WeftNode *fallback, GError **error)
{
  for (guint i = 0; list != NULL && i < list->len; i++)
    {
      WeftNamedMatch *nm = list->pdata[i];
      if (!weft_rt_compile_match (&nm->match, fallback, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
weft_rt_compile_rule (WeftRouteRule *rule, GError **error)
{
  WeftRouteMatch *m = &rule->match;
  WeftRouteAction *action = rule->action;

  if (!weft_rt_compile_match (&m->path, rule->node, error) ||
      !weft_rt_compile_match (&m->method, rule->node, error) ||
      !weft_rt_compile_match (&m->authority, rule->node, error) ||
      !weft_rt_compile_named (m->headers, rule->node, error) ||
      !weft_rt_compile_named (m->query, rule->node, error))
    return FALSE;
  if (action->rewrite_regex == NULL || action->rewrite_re != NULL)
    return TRUE;
  /* a rewrite searches: not anchored */
  action->rewrite_re = weft_rt_regex_compile (action->rewrite_regex, 0,
                                              action->rewrite_regex_node ?
                                              action->rewrite_regex_node : action->node,
                                              error);
  return action->rewrite_re != NULL;
}

gboolean
weft_route_compile_regexes (WeftRouterConfig *config, GError **error)
{
  for (guint v = 0; v < config->vhosts->len; v++)
    {
      WeftVirtualHost *vhost = config->vhosts->pdata[v];
      for (guint i = 0; i < vhost->rules->len; i++)
        if (!weft_rt_compile_rule (vhost->rules->pdata[i], error))
          return FALSE;
    }
  return TRUE;
}

static guint
weft_rt_regex_pairs (gpointer re)
{
  uint32_t n = 0;

  if (re == NULL)
    return 1;
  pcre2_pattern_info (re, PCRE2_INFO_CAPTURECOUNT, &n);
  return n + 1;
}

static guint
weft_rt_named_pairs (GPtrArray *list)
{
  guint pairs = 1;

  for (guint i = 0; list != NULL && i < list->len; i++)
    {
      guint n = weft_rt_regex_pairs (((WeftNamedMatch *) list->pdata[i])->match.re);
      pairs = MAX (pairs, n);
    }
  return pairs;
}

static guint
weft_rt_rule_pairs (WeftRouteRule *rule)
{
  guint n[] = {
    weft_rt_regex_pairs (rule->match.path.re),
    weft_rt_regex_pairs (rule->match.method.re),
    weft_rt_regex_pairs (rule->match.authority.re),
    weft_rt_named_pairs (rule->match.headers),
    weft_rt_named_pairs (rule->match.query),
    weft_rt_regex_pairs (rule->action->rewrite_re),
  };
  guint pairs = 1;

  for (gsize i = 0; i < G_N_ELEMENTS (n); i++)
    pairs = MAX (pairs, n[i]);
  return pairs;
}

/* ------------------------------------------------------------------ */
/* the path trie                                                        */
/* ------------------------------------------------------------------ */

static WeftRtNode *
weft_rt_node_new (const char *label, guint len)
{
  WeftRtNode *node = g_new0 (WeftRtNode, 1);

  node->label = g_strndup (label, len);
  node->label_len = len;
  return node;
}

static void
weft_rt_node_free (WeftRtNode *node)
{
  if (node == NULL)
    return;
  for (guint i = 0; node->children != NULL && i < node->children->len; i++)
    weft_rt_node_free (node->children->pdata[i]);
  g_clear_pointer (&node->children, g_ptr_array_unref);
  g_clear_pointer (&node->child_bytes, g_array_unref);
  g_clear_pointer (&node->prefix, g_array_unref);
  g_clear_pointer (&node->segment, g_array_unref);
  g_clear_pointer (&node->exact, g_array_unref);
  g_free (node->label);
  g_free (node);
}

/* the index of the child whose label starts with @c, or -1 */
static gint
weft_rt_node_find (const WeftRtNode *node, guchar c)
{
  guint lo = 0;
  guint hi = node->child_bytes != NULL ? node->child_bytes->len : 0;

  while (lo < hi)
    {
      guint mid = (lo + hi) / 2;
      guchar b = g_array_index (node->child_bytes, guint8, mid);
      if (b == c)
        return (gint) mid;
      if (b < c)
        lo = mid + 1;
      else
        hi = mid;
    }
  return -1;
}

static void
weft_rt_node_add_child (WeftRtNode *node, WeftRtNode *child)
{
  guchar c = (guchar) child->label[0];
  guint at = 0;

  if (node->children == NULL)
    {
      node->children = g_ptr_array_new ();
      node->child_bytes = g_array_new (FALSE, FALSE, sizeof (guint8));
    }
  while (at < node->child_bytes->len && g_array_index (node->child_bytes, guint8, at) < c)
    at++;
  g_ptr_array_insert (node->children, (gint) at, child);
  g_array_insert_val (node->child_bytes, at, c);
}

/* splits @child's label after @at bytes: a new node takes its place */
static WeftRtNode *
weft_rt_node_split (WeftRtNode *parent, guint idx, guint at)
{
  WeftRtNode *child = parent->children->pdata[idx];
  WeftRtNode *mid = weft_rt_node_new (child->label, at);
  char *rest = g_strndup (child->label + at, child->label_len - at);

  g_free (child->label);
  child->label = rest;
  child->label_len -= at;
  parent->children->pdata[idx] = mid;
  weft_rt_node_add_child (mid, child);
  return mid;
}

static guint
weft_rt_common (const char *a, guint alen, const char *b, guint blen)
{
  guint n = 0;

  while (n < alen && n < blen && a[n] == b[n])
    n++;
  return n;
}

/* the node for @key, made on first use */
static WeftRtNode *
weft_rt_node_insert (WeftRtNode *node, const char *key, guint len)
{
  while (len > 0)
    {
      gint idx = weft_rt_node_find (node, (guchar) key[0]);
      if (idx < 0)
        {
          WeftRtNode *leaf = weft_rt_node_new (key, len);
          weft_rt_node_add_child (node, leaf);
          return leaf;
        }
      WeftRtNode *child = node->children->pdata[idx];
      guint c = weft_rt_common (child->label, child->label_len, key, len);
      if (c < child->label_len)
        child = weft_rt_node_split (node, (guint) idx, c);
      node = child;
      key += c;
      len -= c;
    }
  return node;
}

static void
weft_rt_list_add (GArray **list, guint32 order)
{
  if (*list == NULL)
    *list = g_array_new (FALSE, FALSE, sizeof (guint32));
  g_array_append_val (*list, order);
}

/* the lists along the deepest path: what a walk may collect at most */
static guint
weft_rt_node_depth (const WeftRtNode *node)
{
  guint here = (node->prefix != NULL) + (node->segment != NULL) + (node->exact != NULL);
  guint below = 0;

  /* not MAX (below, weft_rt_node_depth (...)): it would recurse twice */
  for (guint i = 0; node->children != NULL && i < node->children->len; i++)
    {
      guint d = weft_rt_node_depth (node->children->pdata[i]);
      below = MAX (below, d);
    }
  return here + below;
}

/* ------------------------------------------------------------------ */
/* building                                                             */
/* ------------------------------------------------------------------ */

static void
weft_rt_vhost_free (WeftRtVhost *vh)
{
  weft_rt_node_free (vh->trie);
  weft_rt_node_free (vh->trie_ci);
  g_array_unref (vh->always);
  g_free (vh);
}

static gboolean
weft_rt_path_indexed (const WeftStrMatch *path)
{
  return (path->kind == WEFT_STR_EXACT || path->kind == WEFT_STR_PREFIX) && !path->invert;
}

static void
weft_rt_index_rule (WeftRtVhost *vh, const WeftStrMatch *path, guint32 order)
{
  g_autofree char *key = NULL;
  gsize len;
  WeftRtNode *node;

  if (!weft_rt_path_indexed (path))
    {
      g_array_append_val (vh->always, order);
      return;
    }
  key = path->ignore_case ? g_ascii_strdown (path->value ? path->value : "", -1)
                          : g_strdup (path->value ? path->value : "");
  len = strlen (key);
  if (path->kind == WEFT_STR_PREFIX && path->segment_prefix)
    {
      /* a trailing '/' is ignored, and "" means "/" */
      while (len > 1 && key[len - 1] == '/')
        len--;
      if (len == 0)
        key[len++] = '/';
    }
  node = weft_rt_node_insert (path->ignore_case ? vh->trie_ci : vh->trie, key, (guint) len);
  if (path->kind == WEFT_STR_EXACT)
    weft_rt_list_add (&node->exact, order);
  else if (path->segment_prefix)
    weft_rt_list_add (&node->segment, order);
  else
    weft_rt_list_add (&node->prefix, order);
}

static gboolean
weft_rt_check_kind (const WeftStrMatch *m, const char *what, const WeftNode *node,
                    GError **error)
{
  if (m->kind != WEFT_STR_PRESENT && m->kind != WEFT_STR_ABSENT)
    return TRUE;
  weft_node_set_error (m->node ? m->node : node, error,
                       "a %s match must be exact, prefix or regex", what);
  return FALSE;
}

static WeftRtVhost *
weft_rt_vhost_new (WeftVirtualHost *vhost, GError **error)
{
  WeftRtVhost *vh = g_new0 (WeftRtVhost, 1);

  vh->vhost = vhost;
  vh->trie = weft_rt_node_new ("", 0);
  vh->trie_ci = weft_rt_node_new ("", 0);
  vh->always = g_array_new (FALSE, FALSE, sizeof (guint32));
  for (guint i = 0; i < vhost->rules->len; i++)
    {
      WeftRouteRule *rule = vhost->rules->pdata[i];
      if (!weft_rt_check_kind (&rule->match.path, "path", rule->node, error) ||
          !weft_rt_check_kind (&rule->match.method, "method", rule->node, error) ||
          !weft_rt_check_kind (&rule->match.authority, "authority", rule->node, error))
        {
          weft_rt_vhost_free (vh);
          return NULL;
        }
      weft_rt_index_rule (vh, &rule->match.path, i);
    }
  return vh;
}

static gboolean
weft_rt_port_valid (const char *port)
{
  guint64 n = 0;

  return port[0] != '\0' && strlen (port) <= 5 && strspn (port, "0123456789") == strlen (port) &&
         g_ascii_string_to_unsigned (port, 10, 1, 65535, &n, NULL);
}

gboolean
weft_route_domain_valid (const char *domain)
{
  const char *colon;

  if (g_str_equal (domain, "*"))
    return TRUE;
  if (domain[0] == '\0' || strpbrk (domain, " /\t\r\n?#@") != NULL)
    return FALSE;
  if (g_str_has_prefix (domain, "*."))
    return domain[2] != '\0' && strpbrk (domain + 2, "*:[]") == NULL;
  if (strchr (domain, '*') != NULL)
    return FALSE;
  if (domain[0] == '[')
    {
      const char *end = strchr (domain, ']');
      if (end == NULL || end == domain + 1)
        return FALSE;
      return end[1] == '\0' || (end[1] == ':' && weft_rt_port_valid (end + 2));
    }
  colon = strchr (domain, ':');
  if (colon == NULL)
    return TRUE;
  return colon != domain && weft_rt_port_valid (colon + 1);
}

/* "svc:8080", "[::1]:80" */
static gboolean
weft_rt_domain_has_port (const char *domain)
{
  const char *end = domain[0] == '[' ? strchr (domain, ']') : domain;

  return end != NULL && strchr (end, ':') != NULL;
}

static void
weft_rt_table_add_domain (WeftRouteTable *table, WeftRtVhost *vh, const char *domain)
{
  GHashTable *map = table->exact;
  const char *key = domain;
  WeftRtVhost *first;

  if (g_str_equal (domain, "*"))
    {
      if (table->any == NULL)
        table->any = vh;
      first = table->any;
    }
  else
    {
      if (g_str_has_prefix (domain, "*."))
        {
          map = table->wildcard;
          key = domain + 1;
        }
      first = g_hash_table_lookup (map, key);
      if (first == NULL)
        g_hash_table_insert (map, g_strdup (key), vh);
      table->port_domains |= map == table->exact && weft_rt_domain_has_port (key);
    }
  /* Istio and Gateway API configs overlap in practice: first one wins */
  if (first != NULL && first != vh)
    weft_log (WEFT_LOG_WARNING, "router",
              "domain '%s' of virtual host '%s' is already served by '%s'; ignored here",
              domain, vh->vhost->name ? vh->vhost->name : "",
              first->vhost->name ? first->vhost->name : "");
}

static gboolean
weft_rt_table_add_vhost (WeftRouteTable *table, WeftVirtualHost *vhost, GError **error)
{
  WeftRtVhost *vh;
  guint lists;

  for (guint i = 0; i < vhost->domains->len; i++)
    {
      const char *domain = vhost->domains->pdata[i];
      if (!weft_route_domain_valid (domain))
        {
          weft_node_set_error (vhost->node, error,
                               "invalid domain '%s' (expected a host, host:port, *.suffix or *)",
                               domain);
          return FALSE;
        }
    }
  vh = weft_rt_vhost_new (vhost, error);
  if (vh == NULL)
    return FALSE;
  g_ptr_array_add (table->vhosts, vh);
  for (guint i = 0; i < vhost->domains->len; i++)
    weft_rt_table_add_domain (table, vh, vhost->domains->pdata[i]);
  for (guint i = 0; i < vhost->rules->len; i++)
    {
      guint pairs = weft_rt_rule_pairs (vhost->rules->pdata[i]);
      table->max_pairs = MAX (table->max_pairs, pairs);
    }
  table->n_rules += vhost->rules->len;
  lists = weft_rt_node_depth (vh->trie) + weft_rt_node_depth (vh->trie_ci) + 1;
  table->max_lists = MAX (table->max_lists, lists);
  return TRUE;
}

WeftRouteTable *
weft_route_table_new (WeftRouterConfig *config, GError **error)
{
  WeftRouteTable *table = g_new0 (WeftRouteTable, 1);

  table->vhosts = g_ptr_array_new_with_free_func ((GDestroyNotify) weft_rt_vhost_free);
  table->exact = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  table->wildcard = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  table->max_lists = 1;
  table->max_pairs = 1;
  for (guint i = 0; i < config->vhosts->len; i++)
    {
      if (!weft_rt_table_add_vhost (table, config->vhosts->pdata[i], error))
        {
          weft_route_table_free (table);
          return NULL;
        }
    }
  return table;
}

void
weft_route_table_free (WeftRouteTable *table)
{
  if (table == NULL)
    return;
  g_ptr_array_unref (table->vhosts);
  g_hash_table_unref (table->exact);
  g_hash_table_unref (table->wildcard);
  g_free (table);
}

guint
weft_route_table_get_n_rules (WeftRouteTable *table)
{
  return table->n_rules;
}

WeftRouteScratch *
weft_route_scratch_new (WeftRouteTable *table)
{
  WeftRouteScratch *s = g_new0 (WeftRouteScratch, 1);

  s->max_lists = table != NULL ? table->max_lists : 1;
  s->lists = g_new0 (WeftRtCursor, s->max_lists);
  s->md = pcre2_match_data_create (table != NULL ? table->max_pairs : 1, NULL);
  return s;
}

void
weft_route_scratch_free (WeftRouteScratch *scratch)
{
  if (scratch == NULL)
    return;
  pcre2_match_data_free (scratch->md);
  g_free (scratch->lists);
  g_free (scratch);
}

const char *
weft_route_scratch_get_host (WeftRouteScratch *scratch)
{
  return scratch->host;
}

const char *
weft_route_scratch_get_port (WeftRouteScratch *scratch)
{
  return scratch->has_port ? scratch->port : NULL;
}

gpointer
weft_route_scratch_get_match_data (WeftRouteScratch *scratch)
{
  return scratch->md;
}

/* ------------------------------------------------------------------ */
/* the request's host                                                   */
/* ------------------------------------------------------------------ */

void
weft_route_view_init (WeftRouteView *view, const char *method, const char *authority,
                      const char *target, WeftRouteHeaderFunc header, gpointer header_data)
{
  const char *q = strchr (target, '?');

  view->method = method;
  view->authority = authority;
  view->path = target;
  view->path_len = q != NULL ? (gsize) (q - target) : strlen (target);
  view->query = q != NULL ? q + 1 : NULL;
  view->header = header;
  view->header_data = header_data;
}

/* where the port starts in @authority ("h:80", "[::1]:80"), or NULL */
static const char *
weft_rt_port_start (const char *authority, gsize *host_len)
{
  const char *colon;

  *host_len = strlen (authority);
  if (authority[0] == '[')
    {
      const char *end = strchr (authority, ']');
      if (end == NULL)
        return NULL;
      *host_len = (gsize) (end + 1 - authority);
      return end[1] == ':' ? end + 2 : NULL;
    }
  colon = strchr (authority, ':');
  /* a bare IPv6 address has more than one ':' and no port */
  if (colon == NULL || strchr (colon + 1, ':') != NULL)
    return NULL;
  *host_len = (gsize) (colon - authority);
  return colon + 1;
}

static void
weft_rt_scratch_set_port (WeftRouteScratch *s, const char *port)
{
  gsize len = port != NULL ? strlen (port) : 0;

  /* at most 5 digits: "host:port" must fit the hostport buffer */
  s->has_port = len > 0 && len <= 5 && strspn (port, "0123456789") == len;
  if (s->has_port)
    memcpy (s->port, port, len + 1);
}

/* lowercase host without port into the scratch; FALSE when too long */
static gboolean
weft_rt_scratch_set_host (WeftRouteScratch *s, const char *authority)
{
  gsize len = 0;
  const char *port = authority != NULL ? weft_rt_port_start (authority, &len) : NULL;

  s->host[0] = '\0';
  s->host_len = 0;
  s->has_port = FALSE;
  if (len > 1 && authority[len - 1] == '.')
    len--;     /* "example.com." is "example.com" */
  if (len > WEFT_RT_HOST_MAX)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    s->host[i] = g_ascii_tolower (authority[i]);
  s->host[len] = '\0';
  s->host_len = len;
  weft_rt_scratch_set_port (s, port);
  return TRUE;
}

static WeftRtVhost *
weft_rt_find_vhost (WeftRouteTable *table, WeftRouteScratch *s, const char *authority)
{
  WeftRtVhost *vh;

  if (!weft_rt_scratch_set_host (s, authority))
    return table->any;
  if (s->has_port && table->port_domains)
    {
      memcpy (s->hostport, s->host, s->host_len);
      s->hostport[s->host_len] = ':';
      strcpy (s->hostport + s->host_len + 1, s->port);
      if ((vh = g_hash_table_lookup (table->exact, s->hostport)) != NULL)
        return vh;
    }
  if ((vh = g_hash_table_lookup (table->exact, s->host)) != NULL)
    return vh;
  /* the leftmost dot gives the longest suffix; "*.a.b" needs a label before */
  for (gsize i = 1; i < s->host_len && g_hash_table_size (table->wildcard) > 0; i++)
    if (s->host[i] == '.' && (vh = g_hash_table_lookup (table->wildcard, s->host + i)) != NULL)
      return vh;
  return table->any;
}

/* ------------------------------------------------------------------ */
/* conditions                                                           */
/* ------------------------------------------------------------------ */

static gboolean
weft_rt_bytes_equal (const char *a, const char *b, gsize len, gboolean fold)
{
  return fold ? g_ascii_strncasecmp (a, b, len) == 0 : memcmp (a, b, len) == 0;
}

/* the segment-prefix boundary: the prefix ends at the end of the path or
 * of a segment */
static gboolean
weft_rt_segment_ok (const char *v, gsize len, gsize plen)
{
  return plen == len || v[plen] == '/' || (plen > 0 && v[plen - 1] == '/');
}

static gboolean
weft_rt_prefix_ok (const WeftStrMatch *m, const char *v, gsize len)
{
  const char *p = m->value != NULL ? m->value : "";
  gsize plen = strlen (p);

  if (m->segment_prefix)
    while (plen > 1 && p[plen - 1] == '/')
      plen--;
  if (m->segment_prefix && plen == 0)
    {
      p = "/";
      plen = 1;
    }
  if (len < plen || !weft_rt_bytes_equal (v, p, plen, m->ignore_case))
    return FALSE;
  return !m->segment_prefix || weft_rt_segment_ok (v, len, plen);
}

/* @v is NULL when the header or parameter is missing */
static gboolean
weft_rt_test (const WeftStrMatch *m, const char *v, gsize len, WeftRouteScratch *s)
{
  gboolean ok = FALSE;

  switch (m->kind)
    {
    case WEFT_STR_ANY:
    case WEFT_STR_PRESENT:
      ok = v != NULL;
      break;
    case WEFT_STR_ABSENT:
      ok = v == NULL;
      break;
    case WEFT_STR_EXACT:
      ok = v != NULL && len == strlen (m->value ? m->value : "") &&
           weft_rt_bytes_equal (v, m->value ? m->value : "", len, m->ignore_case);
      break;
    case WEFT_STR_PREFIX:
      ok = v != NULL && weft_rt_prefix_ok (m, v, len);
      break;
    case WEFT_STR_REGEX:
      ok = v != NULL && m->re != NULL &&
           pcre2_match (m->re, (PCRE2_SPTR) v, len, 0, 0, s->md, NULL) >= 0;
      break;
    default:
      break;
    }
  return ok != m->invert;
}

/* the raw value of the first parameter @name in @query ("" for "a&b"), or
 * NULL; not percent-decoded */
static const char *
weft_rt_query_find (const char *query, const char *name, gsize *len)
{
  gsize nlen = strlen (name);
  const char *p = query;

  while (p != NULL && *p != '\0')
    {
      gsize pair = strcspn (p, "&");
      gsize key = strcspn (p, "&=");
      if (key == nlen && memcmp (p, name, nlen) == 0)
        {
          *len = key < pair ? pair - key - 1 : 0;
          return key < pair ? p + key + 1 : p + key;
        }
      p = p[pair] == '&' ? p + pair + 1 : NULL;
    }
  *len = 0;
  return NULL;
}

static gboolean
weft_rt_headers_ok (GPtrArray *headers, const WeftRouteView *view, WeftRouteScratch *s)
{
  for (guint i = 0; i < headers->len; i++)
    {
      const WeftNamedMatch *nm = headers->pdata[i];
      const char *v = view->header != NULL ? view->header (view->header_data, nm->name) : NULL;
      if (!weft_rt_test (&nm->match, v, v != NULL ? strlen (v) : 0, s))
        return FALSE;
    }
  return TRUE;
}

static gboolean
weft_rt_query_ok (GPtrArray *query, const WeftRouteView *view, WeftRouteScratch *s)
{
  for (guint i = 0; i < query->len; i++)
    {
      const WeftNamedMatch *nm = query->pdata[i];
      gsize len = 0;
      const char *v = weft_rt_query_find (view->query, nm->name, &len);
      if (!weft_rt_test (&nm->match, v, len, s))
        return FALSE;
    }
  return TRUE;
}

/* every condition but an indexed path, which the trie walk checked */
static gboolean
weft_rt_rule_ok (const WeftRouteRule *rule, const WeftRouteView *view, WeftRouteScratch *s)
{
  const WeftRouteMatch *m = &rule->match;

  if (m->path.kind != WEFT_STR_ANY && !weft_rt_path_indexed (&m->path) &&
      !weft_rt_test (&m->path, view->path, view->path_len, s))
    return FALSE;
  if (m->method.kind != WEFT_STR_ANY &&
      !weft_rt_test (&m->method, view->method, view->method ? strlen (view->method) : 0, s))
    return FALSE;
  if (m->authority.kind != WEFT_STR_ANY && !weft_rt_test (&m->authority, s->host, s->host_len, s))
    return FALSE;
  return weft_rt_headers_ok (m->headers, view, s) && weft_rt_query_ok (m->query, view, s);
}

/* ------------------------------------------------------------------ */
/* matching                                                             */
/* ------------------------------------------------------------------ */

/* max_lists is the most lists one walk can collect (counted when the
 * table was built), so the bound check never drops one */
static void
weft_rt_push (WeftRouteScratch *s, guint *n, const GArray *list)
{
  if (list == NULL || *n >= s->max_lists)
    return;
  s->lists[*n].orders = (const guint32 *) list->data;
  s->lists[*n].n = list->len;
  (*n)++;
}

static void
weft_rt_collect (const WeftRtNode *node, const char *path, gsize len, gsize pos,
                 WeftRouteScratch *s, guint *n)
{
  weft_rt_push (s, n, node->prefix);
  if (node->segment != NULL && weft_rt_segment_ok (path, len, pos))
    weft_rt_push (s, n, node->segment);
  if (node->exact != NULL && pos == len)
    weft_rt_push (s, n, node->exact);
}

static gboolean
weft_rt_label_ok (const WeftRtNode *node, const char *p, gboolean fold)
{
  if (!fold)
    return memcmp (node->label, p, node->label_len) == 0;
  for (guint i = 0; i < node->label_len; i++)
    if (node->label[i] != g_ascii_tolower (p[i]))
      return FALSE;
  return TRUE;
}

/* collects the lists of every node along @path; @fold lowercases the path
 * bytes for the trie of lowercase keys */
static void
weft_rt_walk (const WeftRtNode *node, const char *path, gsize len, gboolean fold,
              WeftRouteScratch *s, guint *n)
{
  gsize pos = 0;

  for (;;)
    {
      weft_rt_collect (node, path, len, pos, s, n);
      if (pos == len)
        return;
      guchar c = fold ? (guchar) g_ascii_tolower (path[pos]) : (guchar) path[pos];
      gint idx = weft_rt_node_find (node, c);
      if (idx < 0)
        return;
      node = node->children->pdata[idx];
      if (node->label_len > len - pos || !weft_rt_label_ok (node, path + pos, fold))
        return;
      pos += node->label_len;
    }
}

/* the smallest order at the head of a cursor, taken; FALSE when all are empty */
static gboolean
weft_rt_next (WeftRouteScratch *s, guint n, guint32 *order)
{
  gint best = -1;

  for (guint i = 0; i < n; i++)
    if (s->lists[i].n > 0 && (best < 0 || s->lists[i].orders[0] < s->lists[best].orders[0]))
      best = (gint) i;
  if (best < 0)
    return FALSE;
  *order = s->lists[best].orders[0];
  s->lists[best].orders++;
  s->lists[best].n--;
  return TRUE;
}

const WeftRouteRule *
weft_route_table_match (WeftRouteTable *table, WeftRouteScratch *s, const WeftRouteView *view,
                        const WeftVirtualHost **vhost)
{
  WeftRtVhost *vh = weft_rt_find_vhost (table, s, view->authority);
  guint n = 0;
  guint32 order;

  if (vhost != NULL)
    *vhost = vh != NULL ? vh->vhost : NULL;
  if (vh == NULL)
    return NULL;
  weft_rt_walk (vh->trie, view->path, view->path_len, FALSE, s, &n);
  weft_rt_walk (vh->trie_ci, view->path, view->path_len, TRUE, s, &n);
  weft_rt_push (s, &n, vh->always->len > 0 ? vh->always : NULL);
  while (weft_rt_next (s, n, &order))
    {
      const WeftRouteRule *rule = vh->vhost->rules->pdata[order];
      if (weft_rt_rule_ok (rule, view, s))
        return rule;
    }
  return NULL;
}

/* ------------------------------------------------------------------ */
/* host names                                                           */
/* ------------------------------------------------------------------ */

static gboolean
weft_rt_label_valid (const char *label)
{
  gsize len = strlen (label);

  if (len == 0 || len > 63 || label[0] == '-' || label[len - 1] == '-')
    return FALSE;
  return strspn (label, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") == len;
}

gboolean
weft_route_host_valid (const char *host)
{
  gsize len;

  if (host == NULL || host[0] == '\0')
    return FALSE;
  if (g_hostname_is_ip_address (host))
    return TRUE;
  len = strlen (host);
  if (host[len - 1] == '.')
    len--;
  if (len == 0 || len > 253)
    return FALSE;

  g_autofree char *name = g_strndup (host, len);
  g_auto(GStrv) labels = g_strsplit (name, ".", -1);
  guint n = g_strv_length (labels);
  for (guint i = 0; i < n; i++)
    if (!weft_rt_label_valid (labels[i]))
      return FALSE;
  /* an all-numeric last label is a mistyped IPv4 address */
  return strspn (labels[n - 1], "0123456789") != strlen (labels[n - 1]);
}

gboolean
weft_route_header_name_valid (const char *name)
{
  if (name == NULL || *name == '\0')
    return FALSE;
  for (const char *p = name; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && strchr ("!#$%&'*+-.^_`|~", *p) == NULL)
      return FALSE;
  return TRUE;
}
