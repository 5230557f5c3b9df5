/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The shared policy matcher: Istio Rule/Source/Operation/Condition parsed
 * into flat arrays at config time, matched per request without allocating.
 *
 * Semantics (Istio's AuthorizationPolicy):
 * - a rule matches when one of its sources, one of its operations and all
 *   of its conditions match; an absent (or empty) part matches everything;
 * - inside a source or an operation every field must match (AND);
 * - a positive list needs the value present and matching one pattern; a
 *   negative (not*) list needs it absent or matching none, as Envoy's RBAC
 *   does: notPrincipals ["*"] matches a caller without identity.
 */
#include "weft-policy-rule-private.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* string, host and path matching                                       */
/* ------------------------------------------------------------------ */

static gboolean
weft_policy_bytes_equal (const char *a, const char *b, gsize n, gboolean ignore_case)
{
  return ignore_case ? g_ascii_strncasecmp (a, b, n) == 0 : memcmp (a, b, n) == 0;
}

/* a pattern whose length is known: exact, "pre*", "*suf" or "*" */
static gboolean
weft_policy_match_known (const char *pattern, gsize plen, const char *value, gsize len,
                         gboolean ignore_case)
{
  if (plen == 0)
    return len == 0;
  if (plen == 1 && pattern[0] == '*')
    return len > 0;
  if (pattern[plen - 1] == '*')
    return len >= plen - 1 && weft_policy_bytes_equal (pattern, value, plen - 1, ignore_case);
  if (pattern[0] == '*')
    return len >= plen - 1 &&
           weft_policy_bytes_equal (pattern + 1, value + len - (plen - 1), plen - 1, ignore_case);
  return len == plen && weft_policy_bytes_equal (pattern, value, len, ignore_case);
}

/* @value is @len bytes, not necessarily NUL-terminated */
static gboolean
weft_policy_match_n (const char *pattern, const char *value, gsize len, gboolean ignore_case)
{
  return weft_policy_match_known (pattern, strlen (pattern), value, len, ignore_case);
}

gboolean
weft_policy_string_match (const char *pattern, const char *value, gboolean ignore_case)
{
  if (pattern == NULL || value == NULL)
    return FALSE;
  return weft_policy_match_n (pattern, value, strlen (value), ignore_case);
}

gboolean
weft_policy_pattern_valid (const char *pattern, const char **why)
{
  gsize len = strlen (pattern);
  const char *star = strchr (pattern, '*');

  if (len == 0)
    {
      *why = "an empty pattern matches nothing";
      return FALSE;
    }
  if (star == NULL || len == 1)
    return TRUE;
  if (strchr (star + 1, '*') != NULL || (star != pattern && star != pattern + len - 1))
    {
      *why = "'*' may only be the first or the last character (prefix, suffix or presence match)";
      return FALSE;
    }
  return TRUE;
}

/* the length of @authority without a trailing ":port" */
static gsize
weft_policy_host_len (const char *authority, gsize len)
{
  gsize i = len;

  while (i > 0 && g_ascii_isdigit (authority[i - 1]))
    i--;
  if (i == 0 || i == len || authority[i - 1] != ':')
    return len;
  /* "::1" without brackets is an address, not a port */
  if (authority[0] != '[' && memchr (authority, ':', i - 1) != NULL)
    return len;
  return i - 1;
}

gboolean
weft_policy_host_match (const char *pattern, const char *authority)
{
  gsize len, host_len;

  if (pattern == NULL || authority == NULL)
    return FALSE;
  len = strlen (authority);
  if (weft_policy_match_n (pattern, authority, len, TRUE))
    return TRUE;
  /* a pattern that names a port matches only that port */
  if (weft_policy_host_len (pattern, strlen (pattern)) != strlen (pattern))
    return FALSE;
  host_len = weft_policy_host_len (authority, len);
  return host_len != len && weft_policy_match_n (pattern, authority, host_len, TRUE);
}

static gboolean
weft_policy_is_template (const char *pattern)
{
  return strchr (pattern, '{') != NULL || strchr (pattern, '}') != NULL;
}

/* {*}: one non-empty segment; {**}: the rest up to the literal tail, which
 * must end the path (Envoy's URI template: "**" may match nothing and
 * spans '/') */
static gboolean
weft_policy_template_match (const char *p, const char *path, gsize len)
{
  gsize i = 0;

  while (*p != '\0')
    {
      if (g_str_has_prefix (p, "{**}"))
        {
          gsize tail = strlen (p + 4);
          return len - i >= tail && memcmp (path + len - tail, p + 4, tail) == 0;
        }
      if (g_str_has_prefix (p, "{*}"))
        {
          gsize seg = 0;
          while (i + seg < len && path[i + seg] != '/')
            seg++;
          if (seg == 0)
            return FALSE;
          i += seg;
          p += 3;
          continue;
        }
      if (i >= len || path[i] != *p)
        return FALSE;
      i++;
      p++;
    }
  return i == len;
}

gboolean
weft_policy_path_match (const char *pattern, const char *path)
{
  gsize len;

  if (pattern == NULL || path == NULL)
    return FALSE;
  len = strcspn (path, "?#");
  if (weft_policy_is_template (pattern))
    return weft_policy_template_match (pattern, path, len);
  return weft_policy_match_n (pattern, path, len, FALSE);
}

static gboolean
weft_policy_template_segment_valid (const char *seg, gsize n, gboolean *seen_glob,
                                    const char **why)
{
  gboolean one = n == 3 && memcmp (seg, "{*}", 3) == 0;
  gboolean many = n == 4 && memcmp (seg, "{**}", 4) == 0;

  if ((one || many) && *seen_glob)
    {
      *why = "{**} must be the last operator of a path template";
      return FALSE;
    }
  if (many)
    *seen_glob = TRUE;
  if (one || many)
    return TRUE;
  for (gsize i = 0; i < n; i++)
    if (seg[i] == '*' || seg[i] == '{' || seg[i] == '}')
      {
        *why = "a path template may hold '*', '{' and '}' only as a whole {*} or {**} segment";
        return FALSE;
      }
  return TRUE;
}

gboolean
weft_policy_path_valid (const char *pattern, const char **why)
{
  gboolean seen_glob = FALSE;
  const char *seg = pattern;

  if (!weft_policy_is_template (pattern))
    return weft_policy_pattern_valid (pattern, why);
  if (pattern[0] != '/')
    {
      *why = "a path template must start with '/'";
      return FALSE;
    }
  while (seg != NULL)
    {
      const char *slash = strchr (seg, '/');
      gsize n = slash != NULL ? (gsize) (slash - seg) : strlen (seg);
      if (!weft_policy_template_segment_valid (seg, n, &seen_glob, why))
        return FALSE;
      seg = slash != NULL ? slash + 1 : NULL;
    }
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* principals and addresses                                             */
/* ------------------------------------------------------------------ */

gboolean
weft_policy_principal_namespace (const char *principal, const char **ns, gsize *len)
{
  const char *start, *end;

  if (principal == NULL)
    return FALSE;
  start = strstr (principal, "/ns/");
  if (start == NULL)
    return FALSE;
  start += 4;
  end = strchr (start, '/');
  if (end == NULL || end == start || !g_str_has_prefix (end, "/sa/"))
    return FALSE;
  *ns = start;
  *len = (gsize) (end - start);
  return TRUE;
}

static void
weft_policy_cidr_mask (WeftPolicyCidr *c)
{
  guint bytes = c->family == AF_INET ? 4 : 16;

  for (guint i = 0; i < bytes; i++)
    {
      guint bit = i * 8;
      if (bit >= c->prefix_len)
        c->addr[i] = 0;
      else if (c->prefix_len - bit < 8)
        c->addr[i] &= (guint8) (0xff << (8 - (c->prefix_len - bit)));
    }
}

static gboolean
weft_policy_is_v4_mapped (const guint8 *a)
{
  static const guint8 prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

  return memcmp (a, prefix, 12) == 0;
}

static gboolean
weft_policy_parse_prefix (const char *text, guint max, guint *out)
{
  guint64 v;
  char *end;

  if (!g_ascii_isdigit (text[0]))
    return FALSE;
  v = g_ascii_strtoull (text, &end, 10);
  if (*end != '\0' || v > max)
    return FALSE;
  *out = (guint) v;
  return TRUE;
}

gboolean
weft_policy_cidr_parse (const char *text, WeftPolicyCidr *out)
{
  char addr[INET6_ADDRSTRLEN + 1];
  const char *slash = strchr (text, '/');
  gsize n = slash != NULL ? (gsize) (slash - text) : strlen (text);
  WeftPolicyCidr c = { 0 };

  if (n == 0 || n >= sizeof addr)
    return FALSE;
  memcpy (addr, text, n);
  addr[n] = '\0';
  if (inet_pton (AF_INET, addr, c.addr) == 1)
    c.family = AF_INET;
  else if (inet_pton (AF_INET6, addr, c.addr) == 1)
    c.family = AF_INET6;
  else
    return FALSE;
  c.prefix_len = c.family == AF_INET ? 32 : 128;
  if (slash != NULL && !weft_policy_parse_prefix (slash + 1, c.prefix_len, &c.prefix_len))
    return FALSE;
  /* ::ffff:a.b.c.d/n is the IPv4 prefix a.b.c.d/(n-96) */
  if (c.family == AF_INET6 && c.prefix_len >= 96 && weft_policy_is_v4_mapped (c.addr))
    {
      memmove (c.addr, c.addr + 12, 4);
      memset (c.addr + 4, 0, 12);
      c.family = AF_INET;
      c.prefix_len -= 96;
    }
  weft_policy_cidr_mask (&c);
  *out = c;
  return TRUE;
}

gboolean
weft_policy_cidr_match (const WeftPolicyCidr *cidr, const struct sockaddr *addr)
{
  const guint8 *bytes;
  int family;
  guint full, rest;

  if (cidr == NULL || addr == NULL)
    return FALSE;
  if (addr->sa_family == AF_INET)
    {
      family = AF_INET;
      bytes = (const guint8 *) &((const struct sockaddr_in *) (gconstpointer) addr)->sin_addr;
    }
  else if (addr->sa_family == AF_INET6)
    {
      bytes = (const guint8 *) &((const struct sockaddr_in6 *) (gconstpointer) addr)->sin6_addr;
      family = weft_policy_is_v4_mapped (bytes) ? AF_INET : AF_INET6;
      if (family == AF_INET)
        bytes += 12;
    }
  else
    return FALSE;
  if (family != cidr->family)
    return FALSE;
  full = cidr->prefix_len / 8;
  rest = cidr->prefix_len % 8;
  if (memcmp (bytes, cidr->addr, full) != 0)
    return FALSE;
  return rest == 0 || (bytes[full] & (guint8) (0xff << (8 - rest))) == cidr->addr[full];
}

/* ------------------------------------------------------------------ */
/* the request                                                          */
/* ------------------------------------------------------------------ */

static const char *
weft_policy_request_header (gpointer data, const char *name)
{
  return weft_request_get_header (data, name);
}

static guint16
weft_policy_request_port (gpointer data)
{
  return weft_request_get_destination_port (data);
}

const char *
weft_policy_principal (const char *identity)
{
  if (identity != NULL && g_str_has_prefix (identity, "spiffe://"))
    return identity + strlen ("spiffe://");
  return identity;
}

static gboolean
weft_policy_unreserved (int c)
{
  return g_ascii_isalnum (c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* %XX of unreserved characters decoded and runs of '/' merged, into @out */
static gsize
weft_policy_decode_path (const char *path, gsize len, char *out)
{
  gsize n = 0;

  for (gsize i = 0; i < len; i++)
    {
      char ch = path[i];
      int hi = i + 2 < len ? g_ascii_xdigit_value (path[i + 1]) : -1;
      int lo = hi >= 0 ? g_ascii_xdigit_value (path[i + 2]) : -1;

      if (ch == '%' && lo >= 0 && weft_policy_unreserved (hi * 16 + lo))
        {
          ch = (char) (hi * 16 + lo);
          i += 2;
        }
      if (ch == '/' && n > 0 && out[n - 1] == '/')
        continue;
      out[n++] = ch;
    }
  return n;
}

/* removes "." and ".." segments in place (RFC 3986 5.2.4) from an absolute
 * path with no empty segments */
static gsize
weft_policy_remove_dots (char *p, gsize len)
{
  gsize n = 0, i = 0;

  while (i < len)
    {
      gsize seg = i + 1, end = seg;

      while (end < len && p[end] != '/')
        end++;
      if (end - seg == 1 && p[seg] == '.')
        ;
      else if (end - seg == 2 && p[seg] == '.' && p[seg + 1] == '.')
        while (n > 0 && p[--n] != '/')
          ;
      else
        {
          memmove (p + n, p + i, end - i);
          n += end - i;
          i = end;
          continue;
        }
      /* a dropped last segment leaves the directory: "/a/b/.." is "/a/" */
      if (end == len)
        p[n++] = '/';
      i = end;
    }
  return n;
}

gsize
weft_policy_normalize_path (const char *path, char *out)
{
  gsize n = weft_policy_decode_path (path, strcspn (path, "?#"), out);

  if (n > 0 && out[0] == '/')
    n = weft_policy_remove_dots (out, n);
  out[n] = '\0';
  return n;
}

/* only a path that could change pays for a copy, from the request's arena */
static const char *
weft_policy_request_path (WeftRequest *req)
{
  const char *path = weft_request_get_path (req);
  gsize len = strcspn (path, "?#");

  if (memchr (path, '%', len) == NULL && strstr (path, "//") == NULL &&
      strstr (path, "/.") == NULL)
    return path;
  char *out = weft_request_alloc (req, strlen (path) + 2);
  weft_policy_normalize_path (path, out);
  return out;
}

void
weft_policy_input_init (WeftPolicyInput *in, WeftRequest *req)
{
  const char *principal = weft_policy_principal (weft_request_get_peer_identity (req));

  memset (in, 0, sizeof *in);
  in->principal = principal;
  in->peer = weft_request_get_peer_address (req, &in->peer_len);
  in->authority = weft_request_get_authority (req);
  in->get_port = weft_policy_request_port;
  in->method = weft_request_get_method (req);
  in->path = weft_policy_request_path (req);
  in->get_header = weft_policy_request_header;
  in->header_data = req;
}

/* ------------------------------------------------------------------ */
/* matching                                                             */
/* ------------------------------------------------------------------ */

/* pattern @i of @l against @value of @len bytes */
typedef gboolean (*WeftPolicyStrFunc) (const WeftPolicyStrList *l, guint i, const char *value,
                                       gsize len);

static gboolean
weft_policy_exact_case (const WeftPolicyStrList *l, guint i, const char *value, gsize len)
{
  return weft_policy_match_known (l->v[i], l->len[i], value, len, FALSE);
}

static gboolean
weft_policy_host_pattern (const WeftPolicyStrList *l, guint i, const char *value, gsize len)
{
  (void) len;
  return weft_policy_host_match (l->v[i], value);
}

/* @len stops before the query */
static gboolean
weft_policy_path_pattern (const WeftPolicyStrList *l, guint i, const char *value, gsize len)
{
  if (l->tmpl[i])
    return weft_policy_template_match (l->v[i], value, len);
  return weft_policy_match_known (l->v[i], l->len[i], value, len, FALSE);
}

void
weft_policy_strs_alloc (WeftPolicyStrList *l, guint n)
{
  l->v = g_new0 (char *, n + 1);
  l->len = g_new0 (gsize, n + 1);
  l->tmpl = g_new0 (gboolean, n + 1);
  l->n = 0;
}

void
weft_policy_strs_push (WeftPolicyStrList *l, const char *text)
{
  l->v[l->n] = g_strdup (text);
  l->len[l->n] = strlen (text);
  l->tmpl[l->n] = weft_policy_is_template (text);
  l->n++;
}

/* positive list: empty = any; else the value is there and one pattern matches */
static gboolean
weft_policy_strs_in (const WeftPolicyStrList *l, const char *value, gsize len,
                     WeftPolicyStrFunc match)
{
  if (l->n == 0)
    return TRUE;
  for (guint i = 0; value != NULL && i < l->n; i++)
    if (match (l, i, value, len))
      return TRUE;
  return FALSE;
}

/* negative list: no pattern matches (an absent value matches none) */
static gboolean
weft_policy_strs_out (const WeftPolicyStrList *l, const char *value, gsize len,
                      WeftPolicyStrFunc match)
{
  for (guint i = 0; value != NULL && i < l->n; i++)
    if (match (l, i, value, len))
      return FALSE;
  return TRUE;
}

static gboolean
weft_policy_strs_len (const WeftPolicyStrList *in, const WeftPolicyStrList *out,
                      const char *value, gsize len, WeftPolicyStrFunc match)
{
  return weft_policy_strs_in (in, value, len, match) &&
         weft_policy_strs_out (out, value, len, match);
}

/* the value's length is taken once, not once per pattern */
static gboolean
weft_policy_strs (const WeftPolicyStrList *in, const WeftPolicyStrList *out, const char *value,
                  WeftPolicyStrFunc match)
{
  if (in->n == 0 && out->n == 0)
    return TRUE;
  return weft_policy_strs_len (in, out, value, value != NULL ? strlen (value) : 0, match);
}

static gboolean
weft_policy_cidrs_any (const WeftPolicyCidrList *l, const struct sockaddr *addr)
{
  for (guint i = 0; addr != NULL && i < l->n; i++)
    if (weft_policy_cidr_match (&l->v[i], addr))
      return TRUE;
  return FALSE;
}

static gboolean
weft_policy_cidrs (const WeftPolicyCidrList *in, const WeftPolicyCidrList *out,
                   const struct sockaddr *addr)
{
  return (in->n == 0 || weft_policy_cidrs_any (in, addr)) && !weft_policy_cidrs_any (out, addr);
}

static gboolean
weft_policy_ports_any (const WeftPolicyPortList *l, guint16 port)
{
  for (guint i = 0; i < l->n; i++)
    if (l->v[i] == port)
      return TRUE;
  return FALSE;
}

static gboolean
weft_policy_ports (const WeftPolicyPortList *in, const WeftPolicyPortList *out,
                   const WeftPolicyInput *input)
{
  guint16 port;

  if (in->n == 0 && out->n == 0)
    return TRUE;
  port = input->get_port != NULL ? input->get_port (input->header_data) : input->port;
  return (in->n == 0 || weft_policy_ports_any (in, port)) && !weft_policy_ports_any (out, port);
}

/* namespaces match the namespace inside the principal, which needs no copy:
 * the pattern is matched against a length-bounded slice */
static gboolean
weft_policy_ns_any (const WeftPolicyStrList *l, const char *principal)
{
  const char *ns;
  gsize len;

  if (!weft_policy_principal_namespace (principal, &ns, &len))
    return FALSE;
  for (guint i = 0; i < l->n; i++)
    if (weft_policy_match_known (l->v[i], l->len[i], ns, len, FALSE))
      return TRUE;
  return FALSE;
}

static gboolean
weft_policy_namespaces (const WeftPolicyStrList *in, const WeftPolicyStrList *out,
                        const char *principal)
{
  return (in->n == 0 || weft_policy_ns_any (in, principal)) && !weft_policy_ns_any (out, principal);
}

static gboolean
weft_policy_source_match (const WeftPolicySource *s, const WeftPolicyInput *in)
{
  return weft_policy_strs (&s->principals, &s->not_principals, in->principal,
                           weft_policy_exact_case) &&
         weft_policy_namespaces (&s->namespaces, &s->not_namespaces, in->principal) &&
         weft_policy_cidrs (&s->ip_blocks, &s->not_ip_blocks, in->peer) &&
         weft_policy_cidrs (&s->remote_ip_blocks, &s->not_remote_ip_blocks, in->peer);
}

/* a path stops at its query */
static gboolean
weft_policy_paths (const WeftPolicyOperation *o, const char *path)
{
  if (o->paths.n == 0 && o->not_paths.n == 0)
    return TRUE;
  return weft_policy_strs_len (&o->paths, &o->not_paths, path,
                               path != NULL ? strcspn (path, "?#") : 0, weft_policy_path_pattern);
}

static gboolean
weft_policy_operation_match (const WeftPolicyOperation *o, const WeftPolicyInput *in)
{
  return weft_policy_strs (&o->hosts, &o->not_hosts, in->authority, weft_policy_host_pattern) &&
         weft_policy_strs (&o->methods, &o->not_methods, in->method, weft_policy_exact_case) &&
         weft_policy_paths (o, in->path) &&
         weft_policy_ports (&o->ports, &o->not_ports, in);
}

static const char *
weft_policy_input_header (const WeftPolicyInput *in, const char *name)
{
  return in->get_header != NULL ? in->get_header (in->header_data, name) : NULL;
}

static gboolean
weft_policy_condition_match (const WeftPolicyCondition *c, const WeftPolicyInput *in)
{
  switch (c->key)
    {
    case WEFT_POLICY_KEY_HEADER:
      return weft_policy_strs (&c->values, &c->not_values, weft_policy_input_header (in, c->header),
                               weft_policy_exact_case);
    case WEFT_POLICY_KEY_SOURCE_IP:
    case WEFT_POLICY_KEY_REMOTE_IP:
      return weft_policy_cidrs (&c->cidrs, &c->not_cidrs, in->peer);
    case WEFT_POLICY_KEY_SOURCE_NAMESPACE:
      return weft_policy_namespaces (&c->values, &c->not_values, in->principal);
    case WEFT_POLICY_KEY_SOURCE_PRINCIPAL:
      return weft_policy_strs (&c->values, &c->not_values, in->principal, weft_policy_exact_case);
    case WEFT_POLICY_KEY_DESTINATION_PORT:
      return weft_policy_ports (&c->ports, &c->not_ports, in);
    case WEFT_POLICY_KEY_CONNECTION_SNI:
      /* no TLS yet: the SNI is always absent */
      return weft_policy_strs (&c->values, &c->not_values, NULL, weft_policy_exact_case);
    default:
      return FALSE;
    }
}

gboolean
weft_policy_rule_match (const WeftPolicyRule *rule, const WeftPolicyInput *in)
{
  gboolean from = rule->n_from == 0, to = rule->n_to == 0;

  for (guint i = 0; !from && i < rule->n_from; i++)
    from = weft_policy_source_match (&rule->from[i], in);
  for (guint i = 0; from && !to && i < rule->n_to; i++)
    to = weft_policy_operation_match (&rule->to[i], in);
  if (!from || !to)
    return FALSE;
  for (guint i = 0; i < rule->n_when; i++)
    if (!weft_policy_condition_match (&rule->when[i], in))
      return FALSE;
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* freeing                                                              */
/* ------------------------------------------------------------------ */

static void
weft_policy_strs_clear (WeftPolicyStrList *l)
{
  for (guint i = 0; i < l->n; i++)
    g_free (l->v[i]);
  g_free (l->v);
  g_free (l->len);
  g_free (l->tmpl);
}

static void
weft_policy_source_clear (WeftPolicySource *s)
{
  weft_policy_strs_clear (&s->principals);
  weft_policy_strs_clear (&s->not_principals);
  weft_policy_strs_clear (&s->namespaces);
  weft_policy_strs_clear (&s->not_namespaces);
  g_free (s->ip_blocks.v);
  g_free (s->not_ip_blocks.v);
  g_free (s->remote_ip_blocks.v);
  g_free (s->not_remote_ip_blocks.v);
}

static void
weft_policy_operation_clear (WeftPolicyOperation *o)
{
  weft_policy_strs_clear (&o->hosts);
  weft_policy_strs_clear (&o->not_hosts);
  weft_policy_strs_clear (&o->methods);
  weft_policy_strs_clear (&o->not_methods);
  weft_policy_strs_clear (&o->paths);
  weft_policy_strs_clear (&o->not_paths);
  g_free (o->ports.v);
  g_free (o->not_ports.v);
}

static void
weft_policy_condition_clear (WeftPolicyCondition *c)
{
  g_free (c->header);
  weft_policy_strs_clear (&c->values);
  weft_policy_strs_clear (&c->not_values);
  g_free (c->cidrs.v);
  g_free (c->not_cidrs.v);
  g_free (c->ports.v);
  g_free (c->not_ports.v);
}

void
weft_policy_rule_free (WeftPolicyRule *rule)
{
  if (rule == NULL)
    return;
  for (guint i = 0; i < rule->n_from; i++)
    weft_policy_source_clear (&rule->from[i]);
  for (guint i = 0; i < rule->n_to; i++)
    weft_policy_operation_clear (&rule->to[i]);
  for (guint i = 0; i < rule->n_when; i++)
    weft_policy_condition_clear (&rule->when[i]);
  g_free (rule->from);
  g_free (rule->to);
  g_free (rule->when);
  g_free (rule);
}
