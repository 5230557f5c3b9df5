/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for the router's matcher (plugins/router/weft-route-table.c):
 * virtual hosts by authority, then the path index (exact, prefix and
 * Gateway API segment-prefix keys in byte tries, case-sensitive and
 * ignore_case), regex paths, inverted conditions and methods.
 *
 * The input is a small text program, one line each:
 *   D <domain> [<domain>...]       a new virtual host (the first one is "*")
 *   R<kind><flags> <path> [<method>]
 *                                  a rule of the current virtual host; kind
 *                                  E exact, P prefix, S segment prefix,
 *                                  X regex, A any path; flags a digit: 1
 *                                  ignore_case, 2 invert
 *   Q <method> <authority|-> <target>   a request
 *
 * The table's answer for each request is checked against a plain scan
 * written from the documented rules: the virtual host whose domain is the
 * best match (host:port, host, the longest *.suffix, *; the first one
 * declared wins), then its first rule, in order, whose conditions hold.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "fuzz-plugin-context.h"
#include "weft-route-table-private.h"

#include <pcre2.h>
#include <stdint.h>
#include <string.h>

#define WEFT_FUZZ_MAX_LINES 160
#define WEFT_FUZZ_MAX_RULES 64
#define WEFT_FUZZ_MAX_REGEX 48

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

typedef struct {
  WeftRouterConfig *config;
  WeftVirtualHost  *vhost;      /* where R lines go */
  guint             n_vhosts;
  guint             n_rules;
} WeftFuzzBuild;

/* ------------------------------------------------------------------ */
/* the plain scan                                                       */
/* ------------------------------------------------------------------ */

typedef struct {
  char     host[300];
  gboolean too_long;
  char     port[8];            /* "" = none */
} WeftFuzzAuthority;

/* the host as the matcher compares it: lowercase, no port, no final dot */
static void
weft_fuzz_authority (const char *authority, WeftFuzzAuthority *out)
{
  gsize len = authority != NULL ? strlen (authority) : 0;
  const char *port = NULL;
  const char *colon = authority != NULL ? strchr (authority, ':') : NULL;

  memset (out, 0, sizeof *out);
  if (authority != NULL && authority[0] == '[' && strchr (authority, ']') != NULL)
    {
      const char *end = strchr (authority, ']');
      len = (gsize) (end + 1 - authority);
      port = end[1] == ':' ? end + 2 : NULL;
    }
  else if (authority != NULL && authority[0] != '[' && colon != NULL &&
           strchr (colon + 1, ':') == NULL)
    {
      len = (gsize) (colon - authority);
      port = colon + 1;
    }
  if (len > 1 && authority[len - 1] == '.')
    len--;
  out->too_long = len > 255;
  if (out->too_long)
    return;
  for (gsize i = 0; i < len; i++)
    out->host[i] = g_ascii_tolower (authority[i]);
  if (port != NULL && port[0] != '\0' && strlen (port) <= 5 &&
      strspn (port, "0123456789") == strlen (port))
    strcpy (out->port, port);
}

/* how well @domain names the request's host; 0 = not at all */
static gsize
weft_fuzz_domain_score (const char *domain, const WeftFuzzAuthority *a)
{
  gsize hlen = strlen (a->host);

  if (g_str_equal (domain, "*"))
    return 1;
  if (a->too_long)
    return 0;
  if (a->port[0] != '\0')
    {
      g_autofree char *hostport = g_strdup_printf ("%s:%s", a->host, a->port);
      if (g_str_equal (domain, hostport))
        return G_MAXSIZE;
    }
  if (g_str_equal (domain, a->host))
    return G_MAXSIZE - 1;
  /* "*.suffix": at least one byte before ".suffix"; the longest wins */
  if (g_str_has_prefix (domain, "*.") && strlen (domain + 1) < hlen &&
      g_str_has_suffix (a->host, domain + 1))
    return 2 + strlen (domain + 1);
  return 0;
}

static const WeftVirtualHost *
weft_fuzz_scan_vhost (WeftRouterConfig *config, const char *authority)
{
  const WeftVirtualHost *best = NULL;
  gsize best_score = 0;
  WeftFuzzAuthority a;

  weft_fuzz_authority (authority, &a);
  for (guint v = 0; v < config->vhosts->len; v++)
    {
      const WeftVirtualHost *vhost = config->vhosts->pdata[v];
      for (guint d = 0; d < vhost->domains->len; d++)
        {
          gsize score = weft_fuzz_domain_score (vhost->domains->pdata[d], &a);
          if (score > best_score)
            {
              best = vhost;
              best_score = score;
            }
        }
    }
  return best;
}

static gboolean
weft_fuzz_starts (const char *path, gsize len, const char *p, gsize plen, gboolean fold)
{
  if (len < plen)
    return FALSE;
  return fold ? g_ascii_strncasecmp (path, p, plen) == 0 : memcmp (path, p, plen) == 0;
}

/* Gateway API PathPrefix: whole segments; a final '/' of the prefix and
 * the empty prefix mean the same as without it and "/" */
static gboolean
weft_fuzz_segment_prefix (const char *path, gsize len, const char *value, gboolean fold)
{
  gsize plen = strlen (value);

  while (plen > 1 && value[plen - 1] == '/')
    plen--;
  if (plen == 0)
    return len > 0 && path[0] == '/';
  if (!weft_fuzz_starts (path, len, value, plen, fold))
    return FALSE;
  return len == plen || path[plen] == '/' || value[plen - 1] == '/';
}

static gboolean
weft_fuzz_path_holds (const WeftStrMatch *m, const char *path, gsize len,
                      pcre2_match_data *md)
{
  gboolean ok = FALSE;

  switch (m->kind)
    {
    case WEFT_STR_ANY:
      return TRUE;
    case WEFT_STR_EXACT:
      ok = strlen (m->value) == len && weft_fuzz_starts (path, len, m->value, len, m->ignore_case);
      break;
    case WEFT_STR_PREFIX:
      ok = m->segment_prefix ? weft_fuzz_segment_prefix (path, len, m->value, m->ignore_case)
                             : weft_fuzz_starts (path, len, m->value, strlen (m->value),
                                                 m->ignore_case);
      break;
    case WEFT_STR_REGEX:
      ok = pcre2_match (m->re, (PCRE2_SPTR) path, len, 0, 0, md, NULL) >= 0;
      break;
    default:
      WEFT_FUZZ_CHECK (FALSE);
    }
  return ok != m->invert;
}

static const WeftRouteRule *
weft_fuzz_scan_rule (const WeftVirtualHost *vhost, const WeftRouteView *view,
                     pcre2_match_data *md)
{
  for (guint i = 0; vhost != NULL && i < vhost->rules->len; i++)
    {
      const WeftRouteRule *rule = vhost->rules->pdata[i];
      const WeftStrMatch *method = &rule->match.method;
      if (!weft_fuzz_path_holds (&rule->match.path, view->path, view->path_len, md))
        continue;
      if (method->kind == WEFT_STR_EXACT && g_strcmp0 (method->value, view->method) != 0)
        continue;
      return rule;
    }
  return NULL;
}

/* ------------------------------------------------------------------ */
/* the program                                                          */
/* ------------------------------------------------------------------ */

static void
weft_fuzz_add_vhost (WeftFuzzBuild *b, char **words)
{
  g_autoptr(GPtrArray) domains = g_ptr_array_new ();
  g_autofree char *name = g_strdup_printf ("vh%u", b->n_vhosts++);

  for (guint i = 1; words[i] != NULL && domains->len < 8; i++)
    if (words[i][0] != '\0')
      g_ptr_array_add (domains, words[i]);
  if (domains->len == 0)
    return;
  b->vhost = weft_router_config_vhost (b->config, name, (const char *const *) domains->pdata,
                                       domains->len, NULL);
}

static void
weft_fuzz_add_rule (WeftFuzzBuild *b, char **words)
{
  const char *op = words[0];
  guint flags = op[2] >= '0' && op[2] <= '9' ? (guint) (op[2] - '0') : 0;
  const char *value = words[1] != NULL ? words[1] : "";
  WeftRouteAction *action;
  WeftRouteRule *rule;
  WeftStrMatch *path;

  if (b->n_rules >= WEFT_FUZZ_MAX_RULES || strlen (value) > WEFT_FUZZ_MAX_REGEX * 4)
    return;
  if (op[1] == 'X' && strlen (value) > WEFT_FUZZ_MAX_REGEX)
    return;
  action = weft_route_action_new (NULL);
  action->direct_status = 200;
  rule = weft_route_rule_new (action, NULL);
  weft_route_action_unref (action);
  path = &rule->match.path;
  switch (op[1])
    {
    case 'E': path->kind = WEFT_STR_EXACT; break;
    case 'P': path->kind = WEFT_STR_PREFIX; break;
    case 'S': path->kind = WEFT_STR_PREFIX; path->segment_prefix = TRUE; break;
    case 'X': path->kind = WEFT_STR_REGEX; break;
    default:  path->kind = WEFT_STR_ANY; break;
    }
  if (path->kind != WEFT_STR_ANY)
    {
      path->value = g_strdup (value);
      path->ignore_case = (flags & 1) != 0;
      path->invert = (flags & 2) != 0;
    }
  if (words[1] != NULL && words[2] != NULL && words[2][0] != '\0')
    {
      rule->match.method.kind = WEFT_STR_EXACT;
      rule->match.method.value = g_strdup (words[2]);
    }
  if (b->vhost == NULL)
    {
      const char *any[] = { "*" };
      b->vhost = weft_router_config_vhost (b->config, "any", any, 1, NULL);
    }
  weft_vhost_add_rule (b->vhost, rule);
  b->n_rules++;
}

static void
weft_fuzz_request (WeftRouterConfig *config, WeftRouteScratch *scratch, char **words)
{
  const char *authority;
  const WeftVirtualHost *vhost = NULL, *want_vhost;
  const WeftRouteRule *rule, *want;
  WeftRouteView view;

  if (words[1] == NULL || words[2] == NULL || words[3] == NULL)
    return;
  authority = g_str_equal (words[2], "-") ? NULL : words[2];
  weft_route_view_init (&view, words[1], authority, words[3], NULL, NULL);
  rule = weft_route_table_match (config->table, scratch, &view, &vhost);
  want_vhost = weft_fuzz_scan_vhost (config, authority);
  WEFT_FUZZ_CHECK (vhost == want_vhost);
  want = weft_fuzz_scan_rule (want_vhost, &view, weft_route_scratch_get_match_data (scratch));
  WEFT_FUZZ_CHECK (rule == want);
}

/* the R and D lines make the table; FALSE when finish refuses it */
static gboolean
weft_fuzz_build (WeftFuzzBuild *b, char **lines)
{
  g_autoptr(GError) error = NULL;

  for (guint i = 0; lines[i] != NULL && i < WEFT_FUZZ_MAX_LINES; i++)
    {
      g_auto(GStrv) words = g_strsplit (lines[i], " ", 4);
      if (words[0] == NULL)
        continue;
      if (g_str_equal (words[0], "D"))
        weft_fuzz_add_vhost (b, words);
      else if (words[0][0] == 'R' && words[0][1] != '\0')
        weft_fuzz_add_rule (b, words);
    }
  if (weft_router_config_finish (b->config, &error))
    return TRUE;
  WEFT_FUZZ_CHECK (error != NULL);
  return FALSE;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree char *text = g_strndup ((const char *) data, size);
  g_auto(GStrv) lines = g_strsplit (text, "\n", WEFT_FUZZ_MAX_LINES + 1);
  WeftFuzzBuild b = { weft_router_config_new (NULL), NULL, 0, 0 };

  if (weft_fuzz_build (&b, lines))
    {
      g_autoptr(WeftRouteScratch) scratch = weft_route_scratch_new (b.config->table);
      for (guint i = 0; lines[i] != NULL && i < WEFT_FUZZ_MAX_LINES; i++)
        {
          g_auto(GStrv) words = g_strsplit (lines[i], " ", 4);
          if (words[0] != NULL && g_str_equal (words[0], "Q"))
            weft_fuzz_request (b.config, scratch, words);
        }
    }
  weft_router_config_free (b.config);
  return 0;
}
