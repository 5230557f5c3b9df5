/* weft-policy-private.h: who is calling and what they ask, matched the way
 * Istio's AuthorizationPolicy matches it. Shared by the acl and ratelimit
 * plugins (a static library linked into both .so files).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <sys/socket.h>
#include <weft/plugin.h>

G_BEGIN_DECLS

/**
 * WeftPolicyInput:
 *
 * The facts one request is matched on. Built on the stack per request with
 * weft_policy_input_init() (or filled by hand in unit tests); nothing in it
 * is allocated.
 */
typedef struct {
  const char            *principal;    /* peer SPIFFE ID without "spiffe://"; NULL = none */
  const struct sockaddr *peer;         /* the caller's address */
  socklen_t              peer_len;
  const char            *authority;    /* Host as sent, port included when sent */
  guint16                port;         /* the destination port, when @get_port is NULL */
  /* the destination port, asked (with @header_data) only by rules that name
   * ports: finding it parses the authority, or asks the socket */
  guint16              (*get_port) (gpointer data);
  const char            *method;
  const char            *path;         /* normalized path; a query is ignored */
  /* request headers: first value of a header, or NULL */
  const char          *(*get_header) (gpointer data, const char *name);
  gpointer               header_data;
} WeftPolicyInput;

/**
 * WeftPolicyRefused:
 * @key: a field weft knows but does not support
 * @why: the reason, for the error message
 */
typedef struct {
  const char *key;
  const char *why;
} WeftPolicyRefused;

/* every key of the mapping @map is in @known or @extra (each nullable,
 * NULL-terminated); otherwise a positioned error naming the key, with the
 * reason when @refused (ended by a NULL key) lists it. @what names the
 * object in messages ("source", "selector", ...). */
gboolean weft_policy_check_fields (const WeftNode *map, const char *what,
                                   const char *const *known, const char *const *extra,
                                   const WeftPolicyRefused *refused, GError **error);

/* a principal as Istio writes it: "spiffe://td/ns/x/sa/y" without
 * "spiffe://"; NULL stays NULL */
const char *weft_policy_principal (const char *identity);

/* the path Istio-style rules see (its normalize_path, with slashes merged):
 * %XX of unreserved characters decoded, runs of '/' merged, "." and ".."
 * segments removed, the query dropped; @out needs strlen (@path) + 2 bytes.
 * Returns the length. */
gsize weft_policy_normalize_path (const char *path, char *out);

/* fills @in from @req: principal, peer, authority, destination port (never
 * the Host header's), method, the normalized path, and headers */
void weft_policy_input_init (WeftPolicyInput *in, WeftRequest *req);

/**
 * WeftPolicyRule:
 *
 * A compiled Istio rule: `from` (a list of sources, any may match), `to` (a
 * list of operations, any may match) and `when` (conditions, all must
 * match). Absent parts match everything. Immutable once parsed; matching
 * never allocates and is safe from every worker at once.
 */
typedef struct _WeftPolicyRule WeftPolicyRule;

/**
 * weft_policy_rule_parse:
 * @node: a mapping with the keys from, to, when, and every key in @extra_keys
 * @extra_keys: (nullable): further keys the caller reads itself (such as
 *   "name"); NULL-terminated
 * @error: a positioned error (weft_node_set_error()) naming the field
 *
 * Parses an Istio Rule. Unsupported fields (requestPrincipals,
 * notRequestPrincipals, request.auth.* conditions, ...) are errors at their
 * file:line:col that name the field. Returns NULL on error.
 */
WeftPolicyRule *weft_policy_rule_parse (const WeftNode *node, const char *const *extra_keys,
                                        GError **error);
void            weft_policy_rule_free  (WeftPolicyRule *rule);
gboolean        weft_policy_rule_match (const WeftPolicyRule *rule, const WeftPolicyInput *in);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (WeftPolicyRule, weft_policy_rule_free)

/* the namespace in a principal "<td>/ns/<ns>/sa/<sa>" (no "spiffe://"), as
 * a pointer into @principal and a length; FALSE if it has none */
gboolean weft_policy_principal_namespace (const char *principal, const char **ns, gsize *len);

/* Istio string match: "*" (any non-empty), "pre*", "*suf", or exact */
gboolean weft_policy_string_match (const char *pattern, const char *value, gboolean ignore_case);
/* FALSE with a message in @why when @pattern has a '*' Istio cannot mean
 * (anywhere but first or last, or at both ends) */
gboolean weft_policy_pattern_valid (const char *pattern, const char **why);
/* Istio host match: case-insensitive; a pattern without a port matches the
 * authority with any port */
gboolean weft_policy_host_match (const char *pattern, const char *authority);

/* path match: exact, "pre*", "*suf", "*", and path templates with {*}
 * (one non-empty segment) and {**} (any rest of the path, '/' included,
 * possibly empty; last operator only, as Envoy's URI templates); the
 * query string of @path is ignored */
gboolean weft_policy_path_match (const char *pattern, const char *path);
/* FALSE with a message in @why when @pattern is not a valid path pattern */
gboolean weft_policy_path_valid (const char *pattern, const char **why);

/**
 * WeftPolicyCidr:
 *
 * An IPv4 or IPv6 prefix ("10.0.0.0/8", "::1", "127.0.0.2").
 */
typedef struct {
  int     family;       /* AF_INET or AF_INET6 */
  guint8  addr[16];
  guint   prefix_len;
} WeftPolicyCidr;

gboolean weft_policy_cidr_parse (const char *text, WeftPolicyCidr *out);
/* IPv4-mapped IPv6 peers (::ffff:a.b.c.d) match IPv4 prefixes */
gboolean weft_policy_cidr_match (const WeftPolicyCidr *cidr, const struct sockaddr *addr);

G_END_DECLS
