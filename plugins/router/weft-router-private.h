/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The router's intermediate form. Every input format (weft's own route
 * YAML, Istio VirtualService and DestinationRule, Gateway API HTTPRoute)
 * translates into these structs; weft-route-table.c indexes them and the
 * plugin applies them. Translators only fill the structs: names of
 * upstreams are resolved and regexes compiled later, in
 * weft_router_config_finish().
 */
#pragma once

#include <weft/plugin.h>

G_BEGIN_DECLS

/* ------------------------------------------------------------------ */
/* matches                                                              */
/* ------------------------------------------------------------------ */

typedef enum {
  WEFT_STR_ANY,          /* no condition */
  WEFT_STR_EXACT,
  WEFT_STR_PREFIX,
  WEFT_STR_REGEX,        /* full match (anchored at both ends), PCRE2 syntax */
  WEFT_STR_PRESENT,      /* the header or parameter exists, whatever its value */
  WEFT_STR_ABSENT,       /* it does not exist */
} WeftStrMatchKind;

typedef struct {
  WeftStrMatchKind kind;
  char            *value;        /* exact/prefix text or regex source */
  gboolean         ignore_case;
  gboolean         invert;       /* the condition holds when the match fails */
  gpointer         re;           /* pcre2_code*, set by finish */
  /* PREFIX on a path only: match whole path segments (Gateway API
   * PathPrefix): "/foo" matches "/foo", "/foo/" and "/foo/bar", not
   * "/foobar"; a trailing '/' of the prefix is ignored. FALSE = plain
   * string prefix (weft's own, Istio's uri.prefix) */
  gboolean         segment_prefix;
  const WeftNode  *node;         /* where it was written, for regex errors;
                                  * NULL = the rule's node */
} WeftStrMatch;

typedef struct {
  char         *name;            /* header names are stored lowercase */
  WeftStrMatch  match;
} WeftNamedMatch;

/* one match block: every condition must hold */
typedef struct {
  WeftStrMatch  path;            /* on the path without the query */
  WeftStrMatch  method;          /* EXACT "GET", or REGEX; ANY = every method */
  WeftStrMatch  authority;       /* on the Host header without its port */
  GPtrArray    *headers;         /* WeftNamedMatch* */
  GPtrArray    *query;           /* WeftNamedMatch* (EXACT, REGEX, PRESENT) */
} WeftRouteMatch;

/* ------------------------------------------------------------------ */
/* actions                                                              */
/* ------------------------------------------------------------------ */

typedef struct {
  char *name;
  char *value;
} WeftHeaderPair;

/* each list is made on first use: most routes have none, and a big
 * config has tens of thousands of routes. NULL = empty */
typedef struct {
  GPtrArray *set;                /* WeftHeaderPair*: replace every value */
  GPtrArray *add;                /* WeftHeaderPair*: append a value */
  GPtrArray *remove;             /* char* names */
} WeftHeaderOps;

/* the length of one of a WeftHeaderOps' lists, NULL included */
static inline guint
weft_header_list_len (const GPtrArray *list)
{
  return list != NULL ? list->len : 0;
}

typedef struct {
  /* what the translator wrote */
  char            *name;         /* the upstream name to look up */
  char            *host;         /* DNS host when no upstream has @name (NULL = @name) */
  guint16          port;         /* 0 = the port the request arrived for */
  double           weight;       /* >= 0; any scale */
  WeftHeaderOps    request_headers;
  WeftHeaderOps    response_headers;
  const WeftNode  *node;         /* where it was written, for errors */
  /* set by finish */
  WeftUpstream    *upstream;
  double           cumulative;   /* sum of the weights up to this one */
  gpointer         action;       /* the WeftRouteAction whose dests hold it */
} WeftRouteDest;

typedef struct {
  WeftRouteDest   *dest;
  double           percent;      /* 0..100; 100 when not given */
} WeftRouteMirror;

typedef struct {
  char            *scheme;       /* NULL = keep */
  char            *host;         /* NULL = keep */
  guint16          port;         /* 0 = keep */
  char            *path;         /* full path replacement, NULL = keep */
  char            *prefix;       /* replaces the matched path prefix, NULL = keep */
  guint            status;       /* 301 default */
} WeftRouteRedirect;

typedef struct {
  gint             refcount;     /* shared by the match blocks of one rule */
  char            *name;         /* the rule's name, for logs; may be NULL */

  /* exactly one of: destinations, redirect, direct response */
  GPtrArray       *dests;        /* WeftRouteDest* */
  gboolean         has_redirect;
  WeftRouteRedirect redirect;
  guint            direct_status; /* 0 = none */
  char            *direct_body;   /* may be NULL */

  /* rewrites before forwarding */
  char            *rewrite_prefix;    /* replaces the matched prefix (or the exact path) */
  char            *rewrite_path;      /* replaces the whole path, query kept */
  char            *rewrite_regex;     /* with rewrite_regex_sub: PCRE2 substitution on the path */
  char            *rewrite_regex_sub;
  gpointer         rewrite_re;        /* pcre2_code*, set by finish */
  char            *rewrite_authority;
  WeftHeaderOps    request_headers;
  WeftHeaderOps    response_headers;

  /* traffic policy */
  gboolean         has_timeout;
  guint64          timeout_ms;        /* 0 = none */
  gboolean         has_retry;
  WeftRetrySpec    retry;
  WeftRetryPolicy *retry_policy;      /* set by finish */
  double           delay_percent;     /* fault delay, 0..100 */
  guint64          delay_ms;
  double           abort_percent;     /* fault abort, 0..100 */
  guint            abort_status;
  GPtrArray       *mirrors;           /* WeftRouteMirror* */
  const WeftNode  *node;
  const WeftNode  *rewrite_regex_node; /* for its compile error; NULL = @node */
} WeftRouteAction;

/* one rule: a match block and the action; a rule with several match blocks
 * (Istio's match list, HTTPRoute's matches) becomes several WeftRouteRules
 * sharing one action, in order */
typedef struct {
  WeftRouteMatch   match;
  WeftRouteAction *action;
  guint            order;        /* position in its virtual host; set on add */
  const WeftNode  *node;
} WeftRouteRule;

/* a virtual host: the domains it answers and its ordered rules */
typedef struct {
  char           *name;
  GPtrArray      *domains;       /* char*: "svc", "*.example.com", "*" (lowercase, no port) */
  GPtrArray      *rules;         /* WeftRouteRule*, first match wins */
  const WeftNode *node;
} WeftVirtualHost;

/* an upstream's traffic policy from a DestinationRule */
typedef struct {
  char            *upstream;     /* upstream name */
  char            *host;         /* DNS host if the upstream is not declared */
  gboolean         has_lb;
  WeftLbSpec       lb;
  char            *hash_key;     /* lb.hash_key points here */
  gboolean         has_outlier;
  WeftOutlierSpec  outlier;
  gboolean         has_pool;
  WeftPoolSpec     pool;
  const WeftNode  *node;
} WeftUpstreamPolicy;

/* everything the router's config holds, generation wide */
typedef struct {
  WeftPluginContext *ctx;
  GPtrArray         *vhosts;     /* WeftVirtualHost*, in the order added */
  GPtrArray         *policies;   /* WeftUpstreamPolicy* */
  gpointer           table;      /* WeftRouteTable*, built by finish */
} WeftRouterConfig;

/* construction helpers (weft-router-config.c) */
WeftRouterConfig *weft_router_config_new        (WeftPluginContext *ctx);
void              weft_router_config_free       (WeftRouterConfig *config);
/* the virtual host for exactly these domains (several documents may add
 * rules to the same host set); made on first use */
WeftVirtualHost  *weft_router_config_vhost      (WeftRouterConfig *config, const char *name,
                                                 const char *const *domains, guint n_domains,
                                                 const WeftNode *node);
WeftRouteAction  *weft_route_action_new         (const WeftNode *node);
WeftRouteAction  *weft_route_action_ref         (WeftRouteAction *action);
void              weft_route_action_unref       (WeftRouteAction *action);
WeftRouteDest    *weft_route_dest_new           (const char *name, const char *host,
                                                 guint16 port, double weight,
                                                 const WeftNode *node);
void              weft_route_dest_free          (WeftRouteDest *dest);
void              weft_header_ops_init          (WeftHeaderOps *ops);
void              weft_header_ops_clear         (WeftHeaderOps *ops);
void              weft_header_ops_set           (WeftHeaderOps *ops, const char *name, const char *value);
void              weft_header_ops_add           (WeftHeaderOps *ops, const char *name, const char *value);
void              weft_header_ops_remove        (WeftHeaderOps *ops, const char *name);
/* a rule with an empty match (every condition ANY, lists empty) */
WeftRouteRule    *weft_route_rule_new           (WeftRouteAction *action, const WeftNode *node);
void              weft_route_rule_free          (WeftRouteRule *rule);
WeftNamedMatch   *weft_named_match_new          (const char *name, WeftStrMatchKind kind,
                                                 const char *value);
void              weft_vhost_add_rule           (WeftVirtualHost *vhost, WeftRouteRule *rule);
WeftUpstreamPolicy *weft_router_config_policy   (WeftRouterConfig *config, const char *upstream,
                                                 const WeftNode *node);
/* resolves destinations to upstreams (declared, else DNS through
 * weft_plugin_context_add_upstream), compiles regexes, applies upstream
 * policies, makes retry policies and builds the route table */
gboolean          weft_router_config_finish     (WeftRouterConfig *config, GError **error);

/* input formats; each returns FALSE with a file:line:col error */
/* weft's own: the router's top-level settings */
gboolean weft_router_parse_settings      (WeftRouterConfig *config, const WeftNode *node,
                                          GError **error);
/* networking.istio.io VirtualService and DestinationRule (weft-router-istio.c) */
gboolean weft_router_add_virtual_service (WeftRouterConfig *config, const WeftNode *doc,
                                          GError **error);
gboolean weft_router_add_destination_rule (WeftRouterConfig *config, const WeftNode *doc,
                                           GError **error);
/* gateway.networking.k8s.io HTTPRoute (weft-router-gateway.c) */
gboolean weft_router_add_http_route      (WeftRouterConfig *config, const WeftNode *doc,
                                          GError **error);
/* the document's kind picks the translation above; FALSE with an error
 * for a kind the router does not take */
gboolean weft_router_config_add_document (WeftRouterConfig *config, const WeftNode *doc,
                                          GError **error);
gboolean weft_router_config_takes_kind   (const char *kind);

G_END_DECLS
