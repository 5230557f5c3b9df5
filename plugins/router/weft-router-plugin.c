/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * router: L7 routing for weft. Routes come from the router's top-level
 * settings (weft's own format), Istio VirtualService and DestinationRule
 * documents, and Gateway API HTTPRoute documents; all of them translate
 * into the intermediate form of weft-router-private.h, which
 * weft_router_config_finish() indexes into a route table.
 *
 * The ROUTE hook finds the rule for the request and applies its action;
 * the RESPONSE hook applies the response header operations of the rule
 * and destination it chose. Neither allocates in steady state: buffers are
 * per worker, and what the response phase needs is a pointer to the
 * chosen destination, which lives as long as the configuration.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "weft-route-table-private.h"

#include <pcre2.h>
#include <string.h>

/* per-worker buffers for rewritten paths and Location headers; longer
 * ones come from the request's arena */
#define WEFT_ROUTER_BUF_SIZE 4096

typedef struct {
  WeftRouterConfig *config;
  guint             slot;
} WeftRouter;

typedef enum {
  WEFT_ROUTER_FALLBACK_DEFAULT,    /* the listener's upstream, else 404 */
  WEFT_ROUTER_FALLBACK_NOT_FOUND,  /* always 404 */
} WeftRouterFallback;

typedef struct {
  WeftRouter         *router;
  WeftRouterFallback  fallback;
  gboolean            has_default;
} WeftRouterInstance;

typedef struct {
  WeftRouteScratch *scratch;
  char              buf[WEFT_ROUTER_BUF_SIZE];   /* the joined result */
  char              sub[WEFT_ROUTER_BUF_SIZE];   /* pcre2_substitute output */
} WeftRouterWorker;

typedef struct {
  const char *p;
  gsize       n;
} WeftPiece;

/* ------------------------------------------------------------------ */
/* control side                                                         */
/* ------------------------------------------------------------------ */

static void
weft_router_free (gpointer data)
{
  WeftRouter *router = data;

  weft_router_config_free (router->config);
  g_free (router);
}

static gpointer
weft_router_config_new_cb (WeftPluginContext *ctx, const WeftNode *node, GError **error)
{
  WeftRouter *router = g_new0 (WeftRouter, 1);

  router->config = weft_router_config_new (ctx);
  router->slot = weft_plugin_context_get_slot (ctx);
  if (!weft_router_parse_settings (router->config, node, error))
    {
      weft_router_free (router);
      return NULL;
    }
  return router;
}

static gboolean
weft_router_add_document (gpointer data, const WeftNode *doc, GError **error)
{
  WeftRouter *router = data;

  return weft_router_config_add_document (router->config, doc, error);
}

static gboolean
weft_router_finish (gpointer data, GError **error)
{
  WeftRouter *router = data;

  return weft_router_config_finish (router->config, error);
}

static gpointer
weft_router_instance_new (gpointer data, const WeftListenerInfo *listener, const WeftNode *node,
                          GError **error)
{
  static const char *const keys[] = { "fallback", NULL };
  WeftRouterFallback fallback = WEFT_ROUTER_FALLBACK_DEFAULT;
  const WeftNode *v = node != NULL ? weft_node_lookup (node, "fallback") : NULL;
  const char *text = NULL;
  WeftRouterInstance *inst;

  if (!weft_node_is_null (node) && !weft_node_check_keys (node, keys, error))
    return NULL;
  if (!weft_node_is_null (v))
    {
      if (!weft_node_get_string (v, &text, error))
        return NULL;
      if (!g_str_equal (text, "default") && !g_str_equal (text, "not_found"))
        {
          weft_node_set_error (v, error, "'fallback' must be default or not_found");
          return NULL;
        }
      if (g_str_equal (text, "not_found"))
        fallback = WEFT_ROUTER_FALLBACK_NOT_FOUND;
    }
  inst = g_new0 (WeftRouterInstance, 1);
  inst->router = data;
  inst->fallback = fallback;
  inst->has_default = listener->default_upstream != NULL;
  return inst;
}

static gpointer
weft_router_worker_init (gpointer data, guint worker_index)
{
  WeftRouter *router = data;
  WeftRouterWorker *w = g_new0 (WeftRouterWorker, 1);

  w->scratch = weft_route_scratch_new (router->config->table);
  return w;
}

static void
weft_router_worker_fini (gpointer data, gpointer worker_data)
{
  WeftRouterWorker *w = worker_data;

  weft_route_scratch_free (w->scratch);
  g_free (w);
}

/* ------------------------------------------------------------------ */
/* helpers of the data path                                             */
/* ------------------------------------------------------------------ */

static const char *
weft_router_header (gpointer data, const char *name)
{
  return weft_request_get_header (data, name);
}

/* TRUE with probability @percent / 100 */
static gboolean
weft_router_roll (WeftRequest *req, double percent)
{
  if (percent <= 0)
    return FALSE;
  return (double) weft_request_random (req) < percent * (4294967296.0 / 100.0);
}

static const char *
weft_router_phrase (guint status)
{
  static const struct { guint status; const char *phrase; } phrases[] = {
    { 400, "Bad Request" }, { 401, "Unauthorized" }, { 403, "Forbidden" },
    { 404, "Not Found" }, { 408, "Request Timeout" }, { 409, "Conflict" },
    { 429, "Too Many Requests" }, { 500, "Internal Server Error" }, { 501, "Not Implemented" },
    { 502, "Bad Gateway" }, { 503, "Service Unavailable" }, { 504, "Gateway Timeout" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (phrases); i++)
    if (phrases[i].status == status)
      return phrases[i].phrase;
  return status >= 500 ? "Server Error" : status >= 400 ? "Client Error" : "Status";
}

/* answers like weft's own errors: x-weft-error and "<status> <reason>: <token>" */
static WeftHookResult
weft_router_fail (WeftRequest *req, WeftRouterWorker *w, guint status, const char *token)
{
  g_snprintf (w->buf, sizeof w->buf, "%u %s: %s\n", status, weft_router_phrase (status), token);
  weft_request_set_error_reason (req, token);
  weft_request_respond (req, status, "text/plain", w->buf, -1);
  return WEFT_HOOK_RESPOND;
}

/* the pieces joined into the worker's buffer, or the arena when too long */
static char *
weft_router_join (WeftRequest *req, WeftRouterWorker *w, const WeftPiece *pieces, guint n)
{
  gsize len = 0;
  char *out, *p;

  for (guint i = 0; i < n; i++)
    len += pieces[i].n;
  out = len < sizeof w->buf ? w->buf : weft_request_alloc (req, len + 1);
  p = out;
  for (guint i = 0; i < n; i++)
    {
      memcpy (p, pieces[i].p, pieces[i].n);
      p += pieces[i].n;
    }
  *p = '\0';
  return out;
}

typedef struct {
  void (*set)    (WeftRequest *req, const char *name, const char *value);
  void (*add)    (WeftRequest *req, const char *name, const char *value);
  void (*remove) (WeftRequest *req, const char *name);
} WeftHeaderApi;

static const WeftHeaderApi weft_request_headers = {
  weft_request_set_header, weft_request_add_header, weft_request_remove_header,
};

static const WeftHeaderApi weft_response_headers = {
  weft_request_set_response_header, weft_request_add_response_header,
  weft_request_remove_response_header,
};

/* removals first, then replacements, then additions (Envoy's order) */
static void
weft_router_header_ops (WeftRequest *req, const WeftHeaderOps *ops, const WeftHeaderApi *api)
{
  for (guint i = 0; i < weft_header_list_len (ops->remove); i++)
    api->remove (req, ops->remove->pdata[i]);
  for (guint i = 0; i < weft_header_list_len (ops->set); i++)
    {
      const WeftHeaderPair *pair = ops->set->pdata[i];
      api->set (req, pair->name, pair->value);
    }
  for (guint i = 0; i < weft_header_list_len (ops->add); i++)
    {
      const WeftHeaderPair *pair = ops->add->pdata[i];
      api->add (req, pair->name, pair->value);
    }
}

/* ------------------------------------------------------------------ */
/* paths                                                                */
/* ------------------------------------------------------------------ */

/* how much of the path the rule's path condition matched: what a prefix
 * rewrite replaces */
static gsize
weft_router_matched_len (const WeftStrMatch *m, const WeftRouteView *view)
{
  gsize len;

  if (m->invert)
    return 0;
  switch (m->kind)
    {
    case WEFT_STR_EXACT:
    case WEFT_STR_REGEX:
      return view->path_len;
    case WEFT_STR_PREFIX:
      len = strlen (m->value ? m->value : "");
      /* segment prefixes ignore trailing slashes; "/" matched nothing yet */
      while (m->segment_prefix && len > 0 && m->value[len - 1] == '/')
        len--;
      return MIN (len, view->path_len);
    default:
      return 0;
    }
}

/* the path with the matched prefix replaced, into @pieces (2 of them) */
static guint
weft_router_replace_prefix (const WeftRouteRule *rule, const char *prefix,
                            const WeftRouteView *view, WeftPiece *pieces)
{
  const WeftStrMatch *m = &rule->match.path;
  gsize matched = weft_router_matched_len (m, view);
  gsize plen = strlen (prefix);

  /* Gateway API: "/foo" -> "/" on "/foo/bar" gives "/bar", not "//bar" */
  if (m->kind == WEFT_STR_PREFIX && m->segment_prefix)
    while (plen > 0 && prefix[plen - 1] == '/')
      plen--;
  pieces[0] = (WeftPiece) { prefix, plen };
  pieces[1] = (WeftPiece) { view->path + matched, view->path_len - matched };
  if (plen == 0 && pieces[1].n == 0)
    pieces[0] = (WeftPiece) { "/", 1 };
  return 2;
}

static guint
weft_router_add_query (const WeftRouteView *view, WeftPiece *pieces, guint n)
{
  if (view->query == NULL)
    return n;
  pieces[n++] = (WeftPiece) { "?", 1 };
  pieces[n++] = (WeftPiece) { view->query, strlen (view->query) };
  return n;
}

/* PCRE2 substitution on the path (every match), query kept */
static void
weft_router_rewrite_regex (WeftRequest *req, WeftRouterWorker *w, const WeftRouteAction *a,
                           const WeftRouteView *view)
{
  PCRE2_SIZE len = sizeof w->sub;
  PCRE2_UCHAR *out = (PCRE2_UCHAR *) w->sub;
  PCRE2_SPTR sub = (PCRE2_SPTR) (a->rewrite_regex_sub ? a->rewrite_regex_sub : "");
  const guint32 options = PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH;
  WeftPiece pieces[3];
  int rc;

  rc = pcre2_substitute (a->rewrite_re, (PCRE2_SPTR) view->path, view->path_len, 0, options,
                         weft_route_scratch_get_match_data (w->scratch), NULL,
                         sub, PCRE2_ZERO_TERMINATED, out, &len);
  if (rc == PCRE2_ERROR_NOMEMORY)
    {
      /* @len is the size needed now */
      out = weft_request_alloc (req, len);
      rc = pcre2_substitute (a->rewrite_re, (PCRE2_SPTR) view->path, view->path_len, 0, options,
                             weft_route_scratch_get_match_data (w->scratch), NULL,
                             sub, PCRE2_ZERO_TERMINATED, out,
                             &len);
    }
  /* no match leaves the path alone; a bad substitution too */
  if (rc <= 0)
    return;
  pieces[0] = (WeftPiece) { (const char *) out, len };
  weft_request_set_path (req, weft_router_join (req, w, pieces,
                                                weft_router_add_query (view, pieces, 1)));
}

static void
weft_router_rewrite (WeftRequest *req, WeftRouterWorker *w, const WeftRouteRule *rule,
                     const WeftRouteView *view)
{
  const WeftRouteAction *a = rule->action;
  WeftPiece pieces[4];
  guint n;

  if (a->rewrite_re != NULL)
    weft_router_rewrite_regex (req, w, a, view);
  else if (a->rewrite_path != NULL || a->rewrite_prefix != NULL)
    {
      if (a->rewrite_path != NULL)
        {
          pieces[0] = (WeftPiece) { a->rewrite_path, strlen (a->rewrite_path) };
          n = 1;
        }
      else
        n = weft_router_replace_prefix (rule, a->rewrite_prefix, view, pieces);
      n = weft_router_add_query (view, pieces, n);
      weft_request_set_path (req, weft_router_join (req, w, pieces, n));
    }
  if (a->rewrite_authority != NULL)
    weft_request_set_authority (req, a->rewrite_authority);
}

/* ------------------------------------------------------------------ */
/* local answers                                                        */
/* ------------------------------------------------------------------ */

static gboolean
weft_router_default_port (const char *scheme, const char *port)
{
  return (g_str_equal (scheme, "http") && g_str_equal (port, "80")) ||
         (g_str_equal (scheme, "https") && g_str_equal (port, "443"));
}

/* scheme://host[:port]path[?query]; unset parts come from the request, a
 * port only when the scheme is kept and the request named one */
static const char *
weft_router_location (WeftRequest *req, WeftRouterWorker *w, const WeftRouteRule *rule,
                      const WeftRouteView *view, char *port_buf)
{
  const WeftRouteRedirect *r = &rule->action->redirect;
  const char *scheme = r->scheme ? r->scheme : "http";
  const char *host = r->host ? r->host : weft_route_scratch_get_host (w->scratch);
  const char *port = r->scheme ? NULL : weft_route_scratch_get_port (w->scratch);
  WeftPiece pieces[10];
  guint n = 0;

  if (r->port != 0)
    {
      g_snprintf (port_buf, 8, "%u", r->port);
      port = port_buf;
    }
  pieces[n++] = (WeftPiece) { scheme, strlen (scheme) };
  pieces[n++] = (WeftPiece) { "://", 3 };
  pieces[n++] = (WeftPiece) { host, strlen (host) };
  if (port != NULL && !weft_router_default_port (scheme, port))
    {
      pieces[n++] = (WeftPiece) { ":", 1 };
      pieces[n++] = (WeftPiece) { port, strlen (port) };
    }
  if (r->path != NULL)
    pieces[n++] = (WeftPiece) { r->path, strlen (r->path) };
  else if (r->prefix != NULL)
    n += weft_router_replace_prefix (rule, r->prefix, view, pieces + n);
  else
    pieces[n++] = (WeftPiece) { view->path, view->path_len };
  /* a path with its own query replaces the request's */
  if (r->path == NULL || strchr (r->path, '?') == NULL)
    n = weft_router_add_query (view, pieces, n);
  return weft_router_join (req, w, pieces, n);
}

static WeftHookResult
weft_router_redirect (WeftRequest *req, WeftRouterWorker *w, const WeftRouteRule *rule,
                      const WeftRouteView *view)
{
  const WeftRouteAction *a = rule->action;
  char port_buf[8];

  weft_request_add_response_header (req, "location",
                                    weft_router_location (req, w, rule, view, port_buf));
  weft_router_header_ops (req, &a->response_headers, &weft_response_headers);
  weft_request_respond (req, a->redirect.status ? a->redirect.status : 301, NULL, NULL, 0);
  return WEFT_HOOK_RESPOND;
}

static WeftHookResult
weft_router_direct (WeftRequest *req, const WeftRouteAction *a)
{
  weft_router_header_ops (req, &a->response_headers, &weft_response_headers);
  weft_request_respond (req, a->direct_status, a->direct_body ? "text/plain" : NULL,
                        a->direct_body, -1);
  return WEFT_HOOK_RESPOND;
}

/* ------------------------------------------------------------------ */
/* forwarding                                                           */
/* ------------------------------------------------------------------ */

/* by weight: one random number scaled to [0, total) against the
 * cumulative weights finish computed */
static WeftRouteDest *
weft_router_pick (WeftRequest *req, const WeftRouteAction *a)
{
  GPtrArray *dests = a->dests;
  double total, r;

  if (dests->len == 1)
    return dests->pdata[0];
  total = ((WeftRouteDest *) dests->pdata[dests->len - 1])->cumulative;
  r = (double) weft_request_random (req) / 4294967296.0 * total;
  for (guint i = 0; i < dests->len; i++)
    if (r < ((WeftRouteDest *) dests->pdata[i])->cumulative)
      return dests->pdata[i];
  /* rounding at the very top: the last destination with a weight */
  for (guint i = dests->len; i > 0; i--)
    if (((WeftRouteDest *) dests->pdata[i - 1])->weight > 0)
      return dests->pdata[i - 1];
  return dests->pdata[0];
}

/* each mirror whose percentage comes up, independently (Istio's
 * mirrors[]); the core takes WEFT_MAX_MIRRORS and ignores the rest */
static void
weft_router_mirror (WeftRequest *req, const WeftRouteAction *a)
{
  for (guint i = 0; i < a->mirrors->len; i++)
    {
      const WeftRouteMirror *mirror = a->mirrors->pdata[i];
      if (mirror->dest->upstream != NULL && weft_router_roll (req, mirror->percent))
        weft_request_mirror (req, mirror->dest->upstream);
    }
}

static WeftHookResult
weft_router_forward (WeftRequest *req, WeftRouterInstance *inst, WeftRouterWorker *w,
                     const WeftRouteRule *rule, const WeftRouteView *view)
{
  const WeftRouteAction *a = rule->action;
  WeftRouteDest *dest = weft_router_pick (req, a);

  weft_request_set_upstream (req, dest->upstream);
  weft_router_rewrite (req, w, rule, view);
  weft_router_header_ops (req, &a->request_headers, &weft_request_headers);
  weft_router_header_ops (req, &dest->request_headers, &weft_request_headers);
  if (a->has_timeout)
    weft_request_set_timeout (req, a->timeout_ms);
  if (a->retry_policy != NULL)
    weft_request_set_retry_policy (req, a->retry_policy);
  weft_router_mirror (req, a);
  /* the response phase needs the destination, which knows its action */
  if (weft_header_list_len (a->response_headers.set) +
      weft_header_list_len (a->response_headers.add) +
      weft_header_list_len (a->response_headers.remove) +
      weft_header_list_len (dest->response_headers.set) +
      weft_header_list_len (dest->response_headers.add) +
      weft_header_list_len (dest->response_headers.remove) > 0)
    weft_request_set_data (req, inst->router->slot, dest);
  return WEFT_HOOK_CONTINUE;
}

/* ------------------------------------------------------------------ */
/* hooks                                                                */
/* ------------------------------------------------------------------ */

static WeftHookResult
weft_router_route (WeftRequest *req, gpointer data, gpointer worker_data)
{
  WeftRouterInstance *inst = data;
  WeftRouterWorker *w = worker_data;
  WeftRouteTable *table = inst->router->config->table;
  const WeftRouteRule *rule;
  const WeftRouteAction *a;
  WeftRouteView view;

  if (table == NULL || w == NULL)
    return WEFT_HOOK_CONTINUE;
  weft_route_view_init (&view, weft_request_get_method (req), weft_request_get_authority (req),
                        weft_request_get_path (req), weft_router_header, req);
  rule = weft_route_table_match (table, w->scratch, &view, NULL);
  if (rule == NULL)
    {
      if (inst->fallback == WEFT_ROUTER_FALLBACK_DEFAULT && inst->has_default)
        return WEFT_HOOK_CONTINUE;
      weft_request_add_response_flags (req, WEFT_RESPONSE_FLAG_NO_ROUTE);
      return weft_router_fail (req, w, 404, "no_route");
    }
  a = rule->action;
  /* later phases (rate limits, logs, metrics) key on the route's name */
  weft_request_set_route_name (req, a->name);
  /* the core holds a delayed request before a local answer too */
  if (a->delay_ms > 0 && weft_router_roll (req, a->delay_percent))
    {
      weft_request_set_delay (req, a->delay_ms);
      weft_request_add_response_flags (req, WEFT_RESPONSE_FLAG_DELAY_INJECTED);
    }
  if (weft_router_roll (req, a->abort_percent))
    {
      weft_request_add_response_flags (req, WEFT_RESPONSE_FLAG_FAULT_INJECTED);
      return weft_router_fail (req, w, a->abort_status, "fault_abort");
    }
  if (a->direct_status != 0)
    return weft_router_direct (req, a);
  if (a->has_redirect)
    return weft_router_redirect (req, w, rule, &view);
  return weft_router_forward (req, inst, w, rule, &view);
}

static WeftHookResult
weft_router_response (WeftRequest *req, gpointer data, gpointer worker_data)
{
  WeftRouterInstance *inst = data;
  const WeftRouteDest *dest = weft_request_get_data (req, inst->router->slot);
  const WeftRouteAction *a;

  if (dest == NULL)
    return WEFT_HOOK_CONTINUE;
  a = dest->action;
  weft_router_header_ops (req, &a->response_headers, &weft_response_headers);
  weft_router_header_ops (req, &dest->response_headers, &weft_response_headers);
  return WEFT_HOOK_CONTINUE;
}

static const char *const weft_router_kinds[] = {
  "networking.istio.io/*/VirtualService",
  "networking.istio.io/*/DestinationRule",
  "gateway.networking.k8s.io/*/HTTPRoute",
  NULL,
};

static const WeftPluginDescriptor weft_router_descriptor = {
  .abi_version = WEFT_PLUGIN_ABI_VERSION,
  .struct_size = sizeof (WeftPluginDescriptor),
  .name = "router",
  .version = "0.1.0",
  .description = "L7 routing: weft routes, Istio VirtualService/DestinationRule, Gateway API HTTPRoute",
  .document_kinds = weft_router_kinds,
  .config_new = weft_router_config_new_cb,
  .config_add_document = weft_router_add_document,
  .config_finish = weft_router_finish,
  .config_free = weft_router_free,
  .instance_new = weft_router_instance_new,
  .instance_free = g_free,
  .worker_init = weft_router_worker_init,
  .worker_fini = weft_router_worker_fini,
  .hooks = {
    [WEFT_PHASE_ROUTE] = weft_router_route,
    [WEFT_PHASE_RESPONSE] = weft_router_response,
  },
};

WEFT_PLUGIN_DEFINE (weft_router_descriptor)
