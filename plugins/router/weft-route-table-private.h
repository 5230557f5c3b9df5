/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WeftRouteTable: the compiled, indexed form of a router config. Owned by
 * the route-table helper's files; this header holds what the rest use.
 *
 * Matching works on a WeftRouteView (method, authority, path, query and a
 * header lookup), so unit tests and the benchmark drive it without a
 * WeftRequest. It allocates nothing: every buffer it needs is in a
 * WeftRouteScratch, one per worker, sized when the table is built.
 */
#pragma once

#include "weft-router-private.h"

G_BEGIN_DECLS

typedef struct _WeftRouteTable WeftRouteTable;
typedef struct _WeftRouteScratch WeftRouteScratch;

/* the first value of request header @name (case-insensitive), or NULL */
typedef const char *(*WeftRouteHeaderFunc) (gpointer data, const char *name);

typedef struct {
  const char          *method;
  const char          *authority;   /* the Host header as sent; NULL = none */
  const char          *path;        /* the target; only path_len bytes are the path */
  gsize                path_len;    /* bytes before the '?' */
  const char          *query;       /* after the '?', NUL-terminated; NULL = none */
  WeftRouteHeaderFunc  header;
  gpointer             header_data;
} WeftRouteView;

/* fills @view from a request target ("/p?q=1"), splitting off the query */
void              weft_route_view_init      (WeftRouteView *view, const char *method,
                                             const char *authority, const char *target,
                                             WeftRouteHeaderFunc header, gpointer header_data);

/* builds the table from @config's virtual hosts; their regexes must be
 * compiled already (weft_route_compile_regexes). Fails on a bad domain. */
WeftRouteTable   *weft_route_table_new      (WeftRouterConfig *config, GError **error);
void              weft_route_table_free     (WeftRouteTable *table);
guint             weft_route_table_get_n_rules (WeftRouteTable *table);

/* per-worker buffers for one table; create it on the worker's thread */
WeftRouteScratch *weft_route_scratch_new    (WeftRouteTable *table);
void              weft_route_scratch_free   (WeftRouteScratch *scratch);

/*
 * weft_route_table_match:
 * @vhost: (out) (optional): the virtual host the authority chose, or NULL
 *
 * The first rule of the chosen virtual host whose every condition holds,
 * or NULL. After a call the scratch holds the request's host (lowercase,
 * without port) and port text for the redirect builder.
 */
const WeftRouteRule *weft_route_table_match (WeftRouteTable *table, WeftRouteScratch *scratch,
                                             const WeftRouteView *view,
                                             const WeftVirtualHost **vhost);
/* the host of the last match: lowercase, without port, IPv6 in brackets */
const char       *weft_route_scratch_get_host (WeftRouteScratch *scratch);
/* the port text of the last match's authority, or NULL when none was sent */
const char       *weft_route_scratch_get_port (WeftRouteScratch *scratch);
/* pcre2_match_data* sized for every regex of the table */
gpointer          weft_route_scratch_get_match_data (WeftRouteScratch *scratch);

/* compiles every regex of @config's rules and actions once (anchored full
 * match for conditions, unanchored for rewrites); a bad one fails at its
 * node with PCRE2's message and offset */
gboolean          weft_route_compile_regexes (WeftRouterConfig *config, GError **error);
/* frees a compiled pcre2_code (NULL is fine) */
void              weft_route_regex_free     (gpointer re);

/* TRUE when @host is an IP literal or an RFC 1123 host name */
gboolean          weft_route_host_valid     (const char *host);
/* TRUE for a virtual host domain the table serves: "*", "*.suffix",
 * "host", "host:port", "[v6]", "[v6]:port" */
gboolean          weft_route_domain_valid   (const char *domain);
/* TRUE for an HTTP header name (an RFC 9110 token) */
gboolean          weft_route_header_name_valid (const char *name);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (WeftRouteTable, weft_route_table_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (WeftRouteScratch, weft_route_scratch_free)

G_END_DECLS
