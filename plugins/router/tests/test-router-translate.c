/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The translators: Istio VirtualService and DestinationRule, Gateway API
 * HTTPRoute, into the router's intermediate form.
 */
#include <string.h>
#include <glib.h>

#include "weft-config-private.h"
#include "weft-router-private.h"

/* ------------------------------------------------------------------ */
/* helpers                                                              */
/* ------------------------------------------------------------------ */

/* the parsed documents (which own every node the IR points at) and the IR */
typedef struct {
  WeftConfig       *config;
  WeftRouterConfig *router;
} WeftTestIr;

static void
weft_test_ir_free (WeftTestIr *ir)
{
  weft_router_config_free (ir->router);
  weft_config_free (ir->config);
  g_free (ir);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (WeftTestIr, weft_test_ir_free)

/* what the plugin does with a claimed document */
static gboolean
weft_test_add_document (WeftRouterConfig *router, WeftConfigDocument *doc, GError **error)
{
  if (g_str_equal (doc->kind, "VirtualService"))
    return weft_router_add_virtual_service (router, doc->root, error);
  if (g_str_equal (doc->kind, "DestinationRule"))
    return weft_router_add_destination_rule (router, doc->root, error);
  if (g_str_equal (doc->kind, "HTTPRoute"))
    return weft_router_add_http_route (router, doc->root, error);
  g_assert_not_reached ();
}

static WeftTestIr *
weft_test_translate_config (WeftConfig *config, GError **error)
{
  g_autoptr(WeftTestIr) ir = g_new0 (WeftTestIr, 1);

  ir->config = config;
  ir->router = weft_router_config_new (NULL);
  for (guint i = 0; i < config->documents->len; i++)
    if (!weft_test_add_document (ir->router, config->documents->pdata[i], error))
      return NULL;
  return g_steal_pointer (&ir);
}

static WeftTestIr *
weft_test_translate (const char *yaml, GError **error)
{
  WeftConfig *config = weft_config_load_data ("test.yaml", yaml, strlen (yaml), error);

  g_assert_no_error (error ? *error : NULL);
  return weft_test_translate_config (config, error);
}

static WeftTestIr *
weft_test_translate_ok (const char *yaml)
{
  g_autoptr(GError) error = NULL;
  WeftTestIr *ir = weft_test_translate (yaml, &error);

  g_assert_no_error (error);
  return ir;
}

static WeftTestIr *
weft_test_translate_file (const char *name)
{
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, "data", name, NULL);
  g_autoptr(GError) error = NULL;
  WeftConfig *config = weft_config_load (path, &error);
  WeftTestIr *ir;

  g_assert_no_error (error);
  ir = weft_test_translate_config (config, &error);
  g_assert_no_error (error);
  return ir;
}

/* the message of a translation expected to fail */
static char *
weft_test_error (const char *yaml)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftTestIr) ir = weft_test_translate (yaml, &error);

  g_assert_null (ir);
  g_assert_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG);
  g_test_message ("%s", error->message);
  return g_strdup (error->message);
}

static WeftVirtualHost *
weft_test_vhost (WeftTestIr *ir, guint idx)
{
  g_assert_cmpuint (idx, <, ir->router->vhosts->len);
  return ir->router->vhosts->pdata[idx];
}

static WeftRouteRule *
weft_test_rule (WeftVirtualHost *vhost, guint idx)
{
  WeftRouteRule *rule;

  g_assert_cmpuint (idx, <, vhost->rules->len);
  rule = vhost->rules->pdata[idx];
  g_assert_cmpuint (rule->order, ==, idx);
  return rule;
}

static WeftRouteDest *
weft_test_dest (WeftRouteAction *action, guint idx)
{
  g_assert_cmpuint (idx, <, action->dests->len);
  return action->dests->pdata[idx];
}

static void
weft_test_assert_dest (WeftRouteDest *dest, const char *name, guint16 port, double weight)
{
  g_assert_cmpstr (dest->name, ==, name);
  g_assert_null (dest->host);
  g_assert_cmpuint (dest->port, ==, port);
  g_assert_cmpfloat_with_epsilon (dest->weight, weight, 1e-9);
}

static void
weft_test_assert_domains (WeftVirtualHost *vhost, const char *const *domains)
{
  g_assert_cmpuint (vhost->domains->len, ==, g_strv_length ((char **) domains));
  for (guint i = 0; domains[i] != NULL; i++)
    g_assert_cmpstr (vhost->domains->pdata[i], ==, domains[i]);
}

static void
weft_test_assert_str (const WeftStrMatch *m, WeftStrMatchKind kind, const char *value)
{
  g_assert_cmpint (m->kind, ==, kind);
  g_assert_cmpstr (m->value, ==, value);
}

static WeftNamedMatch *
weft_test_named (GPtrArray *list, guint idx, const char *name)
{
  WeftNamedMatch *nm;

  g_assert_cmpuint (idx, <, list->len);
  nm = list->pdata[idx];
  g_assert_cmpstr (nm->name, ==, name);
  return nm;
}

static void
weft_test_assert_pair (GPtrArray *pairs, guint idx, const char *name, const char *value)
{
  WeftHeaderPair *pair;

  g_assert_cmpuint (idx, <, pairs->len);
  pair = pairs->pdata[idx];
  g_assert_cmpstr (pair->name, ==, name);
  g_assert_cmpstr (pair->value, ==, value);
}

static WeftUpstreamPolicy *
weft_test_policy (WeftTestIr *ir, const char *upstream)
{
  for (guint i = 0; i < ir->router->policies->len; i++)
    {
      WeftUpstreamPolicy *policy = ir->router->policies->pdata[i];
      if (g_str_equal (policy->upstream, upstream))
        return policy;
    }
  g_error ("no policy for upstream %s", upstream);
}

static void
weft_test_assert_error (const char *yaml, const char *expected)
{
  g_autofree char *message = weft_test_error (yaml);

  g_assert_cmpstr (message, ==, expected);
}

/* ------------------------------------------------------------------ */
/* the mission                                                          */
/* ------------------------------------------------------------------ */

static void
weft_test_assert_mission (WeftTestIr *ir)
{
  static const char *const domains[] = { "service-b", NULL };
  WeftVirtualHost *vhost;
  WeftRouteRule *rule;

  g_assert_cmpuint (ir->router->vhosts->len, ==, 1);
  vhost = weft_test_vhost (ir, 0);
  g_assert_cmpstr (vhost->name, ==, "service-b");
  weft_test_assert_domains (vhost, domains);
  g_assert_cmpuint (vhost->rules->len, ==, 1);
  rule = weft_test_rule (vhost, 0);
  g_assert_cmpint (rule->match.path.kind, ==, WEFT_STR_ANY);
  g_assert_cmpint (rule->match.method.kind, ==, WEFT_STR_ANY);
  g_assert_cmpuint (rule->match.headers->len, ==, 0);
  g_assert_cmpuint (rule->action->dests->len, ==, 2);
  weft_test_assert_dest (weft_test_dest (rule->action, 0), "service-b-v1", 0, 90);
  weft_test_assert_dest (weft_test_dest (rule->action, 1), "service-b-v2", 0, 10);
  g_assert_false (rule->action->has_retry);
  g_assert_false (rule->action->has_timeout);
  g_assert_false (rule->action->has_redirect);
  g_assert_cmpuint (rule->action->direct_status, ==, 0);
  g_assert_cmpuint (rule->action->mirrors->len, ==, 0);
}

static void
test_mission_weight_beside (void)
{
  g_autoptr(WeftTestIr) ir = weft_test_translate_file ("mission-weight-beside.yaml");

  weft_test_assert_mission (ir);
}

/* the mission's YAML has 'weight' inside 'destination', which Istio
 * rejects; weft takes it, with a warning at each weight */
static void
test_mission_weight_inside (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(WeftTestIr) ir = weft_test_translate_file ("mission-weight-inside.yaml");
      weft_test_assert_mission (ir);
      return;
    }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr ("*mission-weight-inside.yaml:12:11: VirtualService 'service-b': "
                             "'weight' belongs beside 'destination', not inside it; weft "
                             "accepts it here, Istio would not\n*"
                             "mission-weight-inside.yaml:15:11: VirtualService 'service-b': "
                             "'weight' belongs beside 'destination'*");
}

static void
test_mission_weight_beside_quiet (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(WeftTestIr) ir G_GNUC_UNUSED = weft_test_translate_file ("mission-weight-beside.yaml");
      return;
    }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr_unmatched ("*weight*");
}

/* every apiVersion of networking.istio.io reads the same */
static void
test_api_versions (void)
{
  static const char *const versions[] = { "v1alpha3", "v1beta1", "v1" };

  for (guint i = 0; i < G_N_ELEMENTS (versions); i++)
    {
      g_autofree char *yaml = g_strdup_printf (
        "apiVersion: networking.istio.io/%s\n"
        "kind: VirtualService\n"
        "metadata: {name: service-b}\n"
        "spec:\n"
        "  hosts: [service-b]\n"
        "  http:\n"
        "    - route:\n"
        "        - destination: {host: service-b-v1}\n"
        "          weight: 90\n"
        "        - destination: {host: service-b-v2}\n"
        "          weight: 10\n", versions[i]);
      g_autoptr(WeftTestIr) ir = weft_test_translate_ok (yaml);
      weft_test_assert_mission (ir);
    }
}

/* ------------------------------------------------------------------ */
/* the mission's three examples as VirtualServices                      */
/* ------------------------------------------------------------------ */

static void
test_example_split (void)
{
  static const char *const domains[] = {
    "service-b", "service-b.shop", "service-b.shop.svc", "service-b.shop.svc.cluster.local", NULL
  };
  g_autoptr(WeftTestIr) ir = weft_test_translate_file ("example-split.yaml");
  WeftVirtualHost *vhost = weft_test_vhost (ir, 0);
  WeftRouteRule *rule = weft_test_rule (vhost, 0);

  weft_test_assert_domains (vhost, domains);
  g_assert_cmpuint (vhost->rules->len, ==, 1);
  g_assert_cmpstr (rule->action->name, ==, "service-b/canary");
  weft_test_assert_dest (weft_test_dest (rule->action, 0), "service-b-v1", 0, 90);
  weft_test_assert_dest (weft_test_dest (rule->action, 1), "service-b-v2", 0, 10);
  /* subsets without a traffic policy leave no policy behind */
  g_assert_cmpuint (ir->router->policies->len, ==, 0);
}

static void
test_example_header (void)
{
  g_autoptr(WeftTestIr) ir = weft_test_translate_file ("example-header.yaml");
  WeftVirtualHost *vhost = weft_test_vhost (ir, 0);
  WeftRouteRule *british = weft_test_rule (vhost, 0);
  WeftRouteRule *other = weft_test_rule (vhost, 1);
  WeftNamedMatch *nm;

  g_assert_cmpuint (vhost->rules->len, ==, 2);
  g_assert_cmpuint (british->match.headers->len, ==, 1);
  nm = weft_test_named (british->match.headers, 0, "accept-language");
  weft_test_assert_str (&nm->match, WEFT_STR_EXACT, "en-GB");
  g_assert_false (nm->match.invert);
  weft_test_assert_dest (weft_test_dest (british->action, 0), "service-b-v2", 0, 100);
  g_assert_cmpuint (other->match.headers->len, ==, 0);
  g_assert_cmpint (other->match.path.kind, ==, WEFT_STR_ANY);
  weft_test_assert_dest (weft_test_dest (other->action, 0), "service-b-v1", 0, 100);
}

static void
test_example_method (void)
{
  g_autoptr(WeftTestIr) ir = weft_test_translate_file ("example-method.yaml");
  WeftVirtualHost *vhost = weft_test_vhost (ir, 0);
  WeftRouteRule *cached = weft_test_rule (vhost, 0);
  WeftRouteRule *origin = weft_test_rule (vhost, 1);

  g_assert_cmpuint (vhost->rules->len, ==, 2);
  weft_test_assert_str (&cached->match.method, WEFT_STR_EXACT, "GET");
  weft_test_assert_str (&cached->match.path, WEFT_STR_PREFIX, "/foo");
  weft_test_assert_dest (weft_test_dest (cached->action, 0), "cache", 8080, 100);
  g_assert_cmpint (origin->match.method.kind, ==, WEFT_STR_ANY);
  g_assert_cmpint (origin->match.path.kind, ==, WEFT_STR_ANY);
  weft_test_assert_dest (weft_test_dest (origin->action, 0), "origin", 0, 100);
}

/* ------------------------------------------------------------------ */
/* VirtualService fields                                                */
/* ------------------------------------------------------------------ */

static void
test_vs_hosts (void)
{
  static const char *const domains[] = {
    "reviews", "reviews.prod", "reviews.prod.svc", "reviews.prod.svc.cluster.local",
    "reviews.example.com", "*.reviews.example.com", NULL
  };
  g_autoptr(WeftTestIr) ir = weft_test_translate_file ("virtual-service-full.yaml");
  WeftVirtualHost *vhost = weft_test_vhost (ir, 0);

  g_assert_cmpstr (vhost->name, ==, "reviews");
  weft_test_assert_domains (vhost, domains);
  /* six http routes, the first with two match blocks */
  g_assert_cmpuint (vhost->rules->len, ==, 6);
}

static void
test_vs_match (void)
{
  g_autoptr(WeftTestIr) ir = weft_test_translate_file ("virtual-service-full.yaml");
  WeftVirtualHost *vhost = weft_test_vhost (ir, 0);
  WeftRouteRule *first = weft_test_rule (vhost, 0);
  WeftRouteRule *second = weft_test_rule (vhost, 1);
  WeftRouteMatch *m = &first->match;
  WeftNamedMatch *nm;

  /* two match blocks, one action */
  g_assert_true (first->action == second->action);
  g_assert_cmpint (first->action->refcount, ==, 2);
  g_assert_cmpstr (first->action->name, ==, "reviews/api");

  weft_test_assert_str (&m->path, WEFT_STR_EXACT, "/api/v2");
  g_assert_true (m->path.ignore_case);
  weft_test_assert_str (&m->method, WEFT_STR_REGEX, "P.*");
  weft_test_assert_str (&m->authority, WEFT_STR_EXACT, "reviews.example.com");

  g_assert_cmpuint (m->headers->len, ==, 4);
  nm = weft_test_named (m->headers, 0, "x-debug");
  weft_test_assert_str (&nm->match, WEFT_STR_PRESENT, NULL);
  g_assert_false (nm->match.invert);
  nm = weft_test_named (m->headers, 1, "x-user");
  weft_test_assert_str (&nm->match, WEFT_STR_REGEX, "user-[0-9]+");
  g_assert_false (nm->match.invert);
  nm = weft_test_named (m->headers, 2, "x-canary");
  weft_test_assert_str (&nm->match, WEFT_STR_ABSENT, NULL);
  g_assert_false (nm->match.invert);
  nm = weft_test_named (m->headers, 3, "x-env");
  weft_test_assert_str (&nm->match, WEFT_STR_PREFIX, "test");
  g_assert_true (nm->match.invert);

  g_assert_cmpuint (m->query->len, ==, 3);
  weft_test_assert_str (&weft_test_named (m->query, 0, "q")->match, WEFT_STR_EXACT, "1");
  weft_test_assert_str (&weft_test_named (m->query, 1, "id")->match, WEFT_STR_REGEX, "[0-9]+");
  weft_test_assert_str (&weft_test_named (m->query, 2, "flag")->match, WEFT_STR_PRESENT, NULL);

  weft_test_assert_str (&second->match.path, WEFT_STR_REGEX, "/api/v[0-9]+/.*");
  g_assert_false (second->match.path.ignore_case);
  g_assert_cmpint (second->match.method.kind, ==, WEFT_STR_ANY);
  g_assert_cmpuint (second->match.headers->len, ==, 0);
}

static void
test_vs_route (void)
{
  g_autoptr(WeftTestIr) ir = weft_test_translate_file ("virtual-service-full.yaml");
  WeftRouteAction *action = weft_test_rule (weft_test_vhost (ir, 0), 0)->action;
  WeftRouteDest *v2 = weft_test_dest (action, 0);
  WeftRouteDest *v3 = weft_test_dest (action, 1);

  g_assert_cmpuint (action->dests->len, ==, 2);
  weft_test_assert_dest (v2, "reviews-v2", 9080, 75);
  weft_test_assert_pair (v2->request_headers.set, 0, "x-dest", "v2");
  g_assert_cmpuint (weft_header_list_len (v2->response_headers.remove), ==, 0);
  /* a dotted host takes the subset on its first label, so it still resolves */
  weft_test_assert_dest (v3, "reviews-v3.prod.svc.cluster.local", 0, 25);
  g_assert_cmpstr (v3->response_headers.remove->pdata[0], ==, "x-internal");
  g_assert_cmpuint (weft_header_list_len (v3->request_headers.set), ==, 0);

  g_assert_cmpstr (action->rewrite_prefix, ==, "/v2");
  g_assert_cmpstr (action->rewrite_authority, ==, "reviews-internal");
  g_assert_null (action->rewrite_regex);
  g_assert_true (action->has_timeout);
  g_assert_cmpuint (action->timeout_ms, ==, 2500);

  weft_test_assert_pair (action->request_headers.set, 0, "x-route", "api");
  weft_test_assert_pair (action->request_headers.add, 0, "x-hop", "weft");
  g_assert_cmpstr (action->request_headers.remove->pdata[0], ==, "x-secret");
  weft_test_assert_pair (action->response_headers.add, 0, "x-served-by", "weft");
  g_assert_cmpuint (weft_header_list_len (action->response_headers.set), ==, 0);
}

static void
test_vs_retries (void)
{
  g_autoptr(WeftTestIr) ir = weft_test_translate_file ("virtual-service-full.yaml");
  WeftVirtualHost *vhost = weft_test_vhost (ir, 0);
  WeftRouteAction *api = weft_test_rule (vhost, 0)->action;
  WeftRouteAction *users = weft_test_rule (vhost, 4)->action;
  WeftRouteAction *last = weft_test_rule (vhost, 5)->action;

  g_assert_true (api->has_retry);
  g_assert_cmpuint (api->retry.attempts, ==, 3);
  g_assert_cmpuint (api->retry.per_try_timeout_ms, ==, 500);
  g_assert_cmpuint (api->retry.backoff_base_ms, ==, 50);
  g_assert_cmphex (api->retry.retry_on, ==,
                   WEFT_RETRY_ON_5XX | WEFT_RETRY_ON_GATEWAY_ERROR | WEFT_RETRY_ON_RESET
                   | WEFT_RETRY_ON_CONNECT_FAILURE | WEFT_RETRY_ON_REFUSED_STREAM
                   | WEFT_RETRY_ON_STATUS);
  g_assert_cmpuint (api->retry.n_statuses, ==, 2);
  g_assert_cmpuint (api->retry.statuses[0], ==, 503);
  g_assert_cmpuint (api->retry.statuses[1], ==, 429);

  /* no retryOn: Istio's default, less its gRPC conditions */
  g_assert_true (users->has_retry);
  g_assert_cmpuint (users->retry.attempts, ==, 2);
  g_assert_cmphex (users->retry.retry_on, ==,
                   WEFT_RETRY_ON_CONNECT_FAILURE | WEFT_RETRY_ON_REFUSED_STREAM
                   | WEFT_RETRY_ON_STATUS);
  g_assert_cmpuint (users->retry.n_statuses, ==, 1);
  g_assert_cmpuint (users->retry.statuses[0], ==, 503);

  /* attempts 0 turns retries off */
  g_assert_true (last->has_retry);
  g_assert_cmpuint (last->retry.attempts, ==, 0);

  /* no retries field: none (the old-path redirect) */
  g_assert_false (weft_test_rule (vhost, 2)->action->has_retry);
}

static void
test_vs_fault_and_mirror (void)
{
  g_autoptr(WeftTestIr) ir = weft_test_translate_file ("virtual-service-full.yaml");
  WeftVirtualHost *vhost = weft_test_vhost (ir, 0);
  WeftRouteAction *api = weft_test_rule (vhost, 0)->action;
  WeftRouteAction *users = weft_test_rule (vhost, 4)->action;
  WeftRouteAction *last = weft_test_rule (vhost, 5)->action;
  WeftRouteMirror *mirror;

  g_assert_cmpuint (api->delay_ms, ==, 100);
  g_assert_cmpfloat_with_epsilon (api->delay_percent, 12.5, 1e-9);
  g_assert_cmpuint (api->abort_status, ==, 503);
  g_assert_cmpfloat_with_epsilon (api->abort_percent, 0.5, 1e-9);
  g_assert_cmpuint (api->mirrors->len, ==, 1);
  mirror = api->mirrors->pdata[0];
  weft_test_assert_dest (mirror->dest, "reviews-shadow", 9081, 0);
  g_assert_cmpfloat_with_epsilon (mirror->percent, 30, 1e-9);

  /* the deprecated integer percent */
  g_assert_cmpuint (users->delay_ms, ==, 1000);
  g_assert_cmpfloat_with_epsilon (users->delay_percent, 5, 1e-9);
  g_assert_cmpuint (users->abort_status, ==, 0);
  g_assert_cmpuint (users->mirrors->len, ==, 2);
  mirror = users->mirrors->pdata[0];
  weft_test_assert_dest (mirror->dest, "users-shadow", 0, 0);
  g_assert_cmpfloat_with_epsilon (mirror->percent, 10, 1e-9);
  mirror = users->mirrors->pdata[1];
  weft_test_assert_dest (mirror->dest, "users-canary", 0, 0);
  g_assert_cmpfloat_with_epsilon (mirror->percent, 100, 1e-9);
  g_assert_true (users->has_timeout);
  g_assert_cmpuint (users->timeout_ms, ==, 0);

  /* mirrorPercent; an abort without percentage aborts nothing, as in Istio */
  mirror = last->mirrors->pdata[0];
  weft_test_assert_dest (mirror->dest, "reviews-v9", 0, 0);
  g_assert_cmpfloat_with_epsilon (mirror->percent, 40, 1e-9);
  g_assert_cmpuint (last->abort_status, ==, 500);
  g_assert_cmpfloat_with_epsilon (last->abort_percent, 0, 1e-9);
  g_assert_cmpstr (last->name, ==, "reviews/http[4]");
}

static void
test_vs_redirect_direct_rewrite (void)
{
  g_autoptr(WeftTestIr) ir = weft_test_translate_file ("virtual-service-full.yaml");
  WeftVirtualHost *vhost = weft_test_vhost (ir, 0);
  WeftRouteAction *redirect = weft_test_rule (vhost, 2)->action;
  WeftRouteAction *direct = weft_test_rule (vhost, 3)->action;
  WeftRouteAction *users = weft_test_rule (vhost, 4)->action;

  g_assert_true (redirect->has_redirect);
  g_assert_cmpuint (redirect->dests->len, ==, 0);
  g_assert_cmpstr (redirect->redirect.path, ==, "/new");
  g_assert_null (redirect->redirect.prefix);
  g_assert_cmpstr (redirect->redirect.host, ==, "new.example.com");
  g_assert_cmpstr (redirect->redirect.scheme, ==, "https");
  g_assert_cmpuint (redirect->redirect.status, ==, 308);
  g_assert_cmpuint (redirect->redirect.port, ==, 443);

  g_assert_false (direct->has_redirect);
  g_assert_cmpuint (direct->dests->len, ==, 0);
  g_assert_cmpuint (direct->direct_status, ==, 503);
  g_assert_cmpstr (direct->direct_body, ==, "down for maintenance");

  /* RE2's \2 and \1 become PCRE2 groups, a literal $ is doubled */
  g_assert_cmpstr (users->rewrite_regex, ==, "^/users/([^/]+)/(.*)$");
  g_assert_cmpstr (users->rewrite_regex_sub, ==, "/u/${2}/${1}$$");
  g_assert_null (users->rewrite_prefix);
}

static void
test_vs_durations (void)
{
  static const struct { const char *text; guint64 ms; } cases[] = {
    { "2s", 2000 }, { "0.5s", 500 }, { "100ms", 100 }, { "1m", 60000 }, { "1h", 3600000 },
    { "1m30s", 90000 }, { "0s", 0 }, { "1.5s", 1500 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *yaml = g_strdup_printf (
        "apiVersion: networking.istio.io/v1\n"
        "kind: VirtualService\n"
        "metadata: {name: a}\n"
        "spec:\n"
        "  hosts: [a]\n"
        "  http:\n"
        "    - route: [{destination: {host: a}}]\n"
        "      timeout: %s\n", cases[i].text);
      g_autoptr(WeftTestIr) ir = weft_test_translate_ok (yaml);
      WeftRouteAction *action = weft_test_rule (weft_test_vhost (ir, 0), 0)->action;
      g_assert_true (action->has_timeout);
      g_assert_cmpuint (action->timeout_ms, ==, cases[i].ms);
    }
}

/* several VirtualServices for the same hosts add to one virtual host, in order */
static void
test_vs_same_hosts (void)
{
  g_autoptr(WeftTestIr) ir = weft_test_translate_ok (
    "apiVersion: networking.istio.io/v1\n"
    "kind: VirtualService\n"
    "metadata: {name: one}\n"
    "spec:\n"
    "  hosts: [a]\n"
    "  http: [{route: [{destination: {host: one}}]}]\n"
    "---\n"
    "apiVersion: networking.istio.io/v1\n"
    "kind: VirtualService\n"
    "metadata: {name: two}\n"
    "spec:\n"
    "  hosts: [A]\n"
    "  http: [{route: [{destination: {host: two}}]}]\n");
  WeftVirtualHost *vhost = weft_test_vhost (ir, 0);

  g_assert_cmpuint (ir->router->vhosts->len, ==, 1);
  g_assert_cmpuint (vhost->rules->len, ==, 2);
  g_assert_cmpstr (weft_test_dest (weft_test_rule (vhost, 0)->action, 0)->name, ==, "one");
  g_assert_cmpstr (weft_test_dest (weft_test_rule (vhost, 1)->action, 0)->name, ==, "two");
}

/* among several destinations an absent weight is 0, as in Istio */
static void
test_vs_weights (void)
{
  g_autoptr(WeftTestIr) ir = weft_test_translate_ok (
    "apiVersion: networking.istio.io/v1\n"
    "kind: VirtualService\n"
    "metadata: {name: a}\n"
    "spec:\n"
    "  hosts: [a]\n"
    "  http:\n"
    "    - route:\n"
    "        - destination: {host: a}\n"
    "          weight: 2.5\n"
    "        - destination: {host: b}\n"
    "    - route:\n"
    "        - destination: {host: c}\n"
    "          weight: 0\n");
  WeftVirtualHost *vhost = weft_test_vhost (ir, 0);
  WeftRouteAction *split = weft_test_rule (vhost, 0)->action;

  weft_test_assert_dest (weft_test_dest (split, 0), "a", 0, 2.5);
  weft_test_assert_dest (weft_test_dest (split, 1), "b", 0, 0);
  /* one destination gets every request, whatever its weight */
  weft_test_assert_dest (weft_test_dest (weft_test_rule (vhost, 1)->action, 0), "c", 0, 100);
}

/* what weft accepts but cannot honour as written is logged, positioned */
static void
test_vs_warnings (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(WeftTestIr) ir = weft_test_translate_ok (
        "apiVersion: networking.istio.io/v1\n"
        "kind: VirtualService\n"
        "metadata: {name: a}\n"
        "spec:\n"
        "  hosts: [a]\n"
        "  http:\n"
        "    - match:\n"
        "        - uri: {regex: /A.*}\n"
        "          ignoreUriCase: true\n"
        "      fault:\n"
        "        delay: {fixedDelay: 1s}\n"
        "      route: [{destination: {host: a}}]\n");
      WeftRouteAction *action = weft_test_rule (weft_test_vhost (ir, 0), 0)->action;
      g_assert_false (weft_test_rule (weft_test_vhost (ir, 0), 0)->match.path.ignore_case);
      g_assert_cmpfloat_with_epsilon (action->delay_percent, 0, 1e-9);
      g_assert_cmpuint (action->delay_ms, ==, 1000);
      return;
    }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  /* the action is read before the match blocks */
  g_test_trap_assert_stderr ("*warning router: test.yaml:11:16: VirtualService 'a': fault delay "
                             "has no 'percentage', so it applies to no request (as in Istio); "
                             "write percentage: {value: 100} for every request\n"
                             "*warning router: test.yaml:9:11: VirtualService 'a': "
                             "'ignoreUriCase' does not apply to a regex uri, in Istio as in "
                             "weft; write (?i) in the regex\n*");
}

/* ------------------------------------------------------------------ */
/* DestinationRule                                                      */
/* ------------------------------------------------------------------ */

static void
test_dr_policies (void)
{
  g_autoptr(WeftTestIr) ir = weft_test_translate_file ("destination-rule-full.yaml");
  WeftUpstreamPolicy *main = weft_test_policy (ir, "reviews");
  WeftUpstreamPolicy *v1 = weft_test_policy (ir, "reviews-v1");
  WeftUpstreamPolicy *v2 = weft_test_policy (ir, "reviews-v2");
  WeftUpstreamPolicy *v3 = weft_test_policy (ir, "reviews-v3");

  g_assert_cmpuint (ir->router->vhosts->len, ==, 0);
  g_assert_cmpstr (main->host, ==, "reviews");
  g_assert_true (main->has_lb);
  g_assert_cmpint (main->lb.policy, ==, WEFT_LB_LEAST_REQUEST);
  g_assert_cmpint (main->lb.hash_on, ==, WEFT_HASH_ON_NONE);
  g_assert_true (main->has_outlier);
  g_assert_cmpuint (main->outlier.consecutive_5xx, ==, 7);
  g_assert_cmpuint (main->outlier.consecutive_gateway_errors, ==, 3);
  g_assert_cmpuint (main->outlier.base_ejection_ms, ==, 60000);
  g_assert_cmpuint (main->outlier.max_ejection_percent, ==, 50);
  g_assert_true (main->has_pool);
  g_assert_cmpuint (main->pool.connect_timeout_ms, ==, 250);
  g_assert_cmpuint (main->pool.max_requests, ==, 80);
  g_assert_cmpuint (main->pool.max_requests_per_connection, ==, 10);

  /* a subset without its own policy takes the top-level one */
  g_assert_cmpstr (v1->host, ==, "reviews-v1");
  g_assert_true (v1->has_lb && v1->has_outlier && v1->has_pool);
  g_assert_cmpint (v1->lb.policy, ==, WEFT_LB_LEAST_REQUEST);
  g_assert_cmpuint (v1->outlier.consecutive_5xx, ==, 7);
  g_assert_cmpuint (v1->pool.max_requests, ==, 80);

  /* its own loadBalancer replaces the top-level one; the rest is inherited */
  g_assert_cmpint (v2->lb.policy, ==, WEFT_LB_RING_HASH);
  g_assert_cmpint (v2->lb.hash_on, ==, WEFT_HASH_ON_HEADER);
  g_assert_cmpstr (v2->lb.hash_key, ==, "x-user");
  g_assert_true (v2->lb.hash_key == v2->hash_key);
  g_assert_cmpuint (v2->lb.table_size, ==, 2048);
  g_assert_cmpuint (v2->outlier.consecutive_5xx, ==, 7);
  g_assert_cmpuint (v2->pool.connect_timeout_ms, ==, 250);

  g_assert_cmpint (v3->lb.policy, ==, WEFT_LB_MAGLEV);
  g_assert_cmpint (v3->lb.hash_on, ==, WEFT_HASH_ON_COOKIE);
  g_assert_cmpstr (v3->lb.hash_key, ==, "session");
  g_assert_cmpuint (v3->lb.table_size, ==, 65537);
  g_assert_cmpuint (v3->outlier.consecutive_5xx, ==, 0);
  g_assert_cmpuint (v3->outlier.consecutive_gateway_errors, ==, 2);
  g_assert_cmpuint (v3->outlier.max_ejection_percent, ==, 10);
  g_assert_cmpuint (v3->pool.max_requests, ==, 5);
  g_assert_cmpuint (v3->pool.connect_timeout_ms, ==, 0);
}

static void
test_dr_dotted_host (void)
{
  g_autoptr(WeftTestIr) ir = weft_test_translate_file ("destination-rule-full.yaml");
  WeftUpstreamPolicy *v2 = weft_test_policy (ir, "ratings-v2.prod.svc.cluster.local");
  WeftUpstreamPolicy *v3 = weft_test_policy (ir, "ratings-v3.prod.svc.cluster.local");

  /* reviews, its three subsets, and two subsets of ratings (no top policy) */
  g_assert_cmpuint (ir->router->policies->len, ==, 6);
  g_assert_cmpstr (v2->host, ==, "ratings-v2.prod.svc.cluster.local");
  g_assert_cmpint (v2->lb.policy, ==, WEFT_LB_RING_HASH);
  g_assert_cmpint (v2->lb.hash_on, ==, WEFT_HASH_ON_SOURCE_IP);
  g_assert_cmpuint (v2->lb.table_size, ==, 512);
  g_assert_false (v2->has_outlier);
  g_assert_false (v2->has_pool);
  g_assert_cmpint (v3->lb.policy, ==, WEFT_LB_RANDOM);
  /* an empty outlierDetection takes Istio's defaults */
  g_assert_true (v3->has_outlier);
  g_assert_cmpuint (v3->outlier.consecutive_5xx, ==, 5);
  g_assert_cmpuint (v3->outlier.consecutive_gateway_errors, ==, 0);
  g_assert_cmpuint (v3->outlier.base_ejection_ms, ==, 0);
}

/* ------------------------------------------------------------------ */
/* errors: file:line:col and the field                                  */
/* ------------------------------------------------------------------ */

typedef struct {
  const char *name;
  const char *yaml;
  const char *message;
} WeftErrorCase;

#define VS_HEAD \
  "apiVersion: networking.istio.io/v1beta1\n" \
  "kind: VirtualService\n" \
  "metadata:\n" \
  "  name: service-b\n" \
  "spec:\n" \
  "  hosts: [service-b]\n"
#define VS_HTTP \
  VS_HEAD \
  "  http:\n" \
  "    - route:\n" \
  "        - destination: {host: b}\n"
#define DR_HEAD \
  "apiVersion: networking.istio.io/v1\n" \
  "kind: DestinationRule\n" \
  "metadata:\n" \
  "  name: service-b\n" \
  "spec:\n" \
  "  host: service-b\n"

static const WeftErrorCase weft_istio_errors[] = {
  { "unknown-field", VS_HTTP "      retires: {attempts: 2}\n",
    "test.yaml:10:7: VirtualService field 'http[0].retires' is not supported by weft" },
  { "unknown-spec-field", VS_HEAD "  hots: [a]\n",
    "test.yaml:7:3: VirtualService field 'hots' is not supported by weft" },
  { "cors", VS_HTTP "      corsPolicy: {allowOrigins: [{exact: a}]}\n",
    "test.yaml:10:7: VirtualService field 'http[0].corsPolicy' is not supported by weft: "
    "weft does not answer CORS preflight requests; let the application do it" },
  { "delegate", VS_HEAD "  http:\n    - delegate: {name: x}\n",
    "test.yaml:8:7: VirtualService field 'http[0].delegate' is not supported by weft: "
    "weft does not chain VirtualServices; put the routes here" },
  { "gateways", VS_HEAD "  gateways: [istio-system/ingress]\n"
    "  http: [{route: [{destination: {host: b}}]}]\n",
    "test.yaml:7:3: VirtualService field 'gateways' is not supported by weft: 'gateways' "
    "selects Istio ingress gateways, which a sidecar does not have; remove it, add 'mesh' "
    "(Istio's name for the sidecars), or run this VirtualService on an Istio gateway" },
  { "match-gateways", VS_HTTP "      match:\n        - gateways: [my-gateway]\n",
    "test.yaml:11:11: VirtualService field 'http[0].match[0].gateways' is not supported by "
    "weft: 'gateways' selects Istio ingress gateways, which a sidecar does not have; remove "
    "it, add 'mesh' (Istio's name for the sidecars), or run this VirtualService on an Istio "
    "gateway" },
  { "source-labels", VS_HTTP "      match:\n        - sourceLabels: {app: a}\n",
    "test.yaml:11:11: VirtualService field 'http[0].match[0].sourceLabels' is not supported "
    "by weft: it selects client workloads by their labels, which a sidecar does not know of "
    "the requests it receives; match on headers instead" },
  { "source-namespace", VS_HTTP "      match:\n        - {uri: {prefix: /}, sourceNamespace: a}\n",
    "test.yaml:11:30: VirtualService field 'http[0].match[0].sourceNamespace' is not "
    "supported by weft: it selects client workloads by namespace, which a sidecar does not "
    "know of the requests it receives; match on headers instead" },
  { "port", VS_HTTP "      match:\n        - port: 80\n",
    "test.yaml:11:11: VirtualService field 'http[0].match[0].port' is not supported by weft: "
    "weft's router has no port condition; match on hosts, the path or headers" },
  { "tcp", VS_HEAD "  tcp:\n    - route: [{destination: {host: b}}]\n",
    "test.yaml:7:3: VirtualService field 'tcp' is not supported by weft: weft routes HTTP only" },
  { "tls", VS_HEAD "  tls: []\n",
    "test.yaml:7:3: VirtualService field 'tls' is not supported by weft: weft routes HTTP "
    "only; it does not route TLS by SNI" },
  { "grpc-status", VS_HTTP "      fault:\n        abort:\n          grpcStatus: UNAVAILABLE\n",
    "test.yaml:12:11: VirtualService field 'http[0].fault.abort.grpcStatus' is not supported "
    "by weft: weft answers aborted requests with an HTTP status only; use httpStatus" },
  { "remote-localities", VS_HTTP "      retries: {attempts: 2, retryRemoteLocalities: true}\n",
    "test.yaml:10:30: VirtualService field 'http[0].retries.retryRemoteLocalities' is not "
    "supported by weft: weft has no localities to retry in" },
  { "retry-4xx", VS_HTTP "      retries: {attempts: 2, retryOn: \"5xx,retriable-4xx\"}\n",
    "test.yaml:10:39: VirtualService 'service-b': field 'http[0].retries.retryOn' has the "
    "condition 'retriable-4xx', which weft does not support (weft retries on 5xx, "
    "gateway-error, reset, connect-failure, refused-stream, retriable-status-codes and "
    "status codes such as 503)" },
  { "query-prefix", VS_HTTP "      match:\n        - queryParams:\n            a: {prefix: x}\n",
    "test.yaml:12:16: VirtualService 'service-b': field 'http[0].match[0].queryParams.a' "
    "uses prefix, which Istio does not allow for query parameters; use exact or regex" },
  { "scheme-https", VS_HTTP "      match:\n        - scheme: {exact: https}\n",
    "test.yaml:11:19: VirtualService 'service-b': field 'http[0].match[0].scheme' can only "
    "be {exact: http}: weft serves plain HTTP, so no request it routes has another scheme" },
  { "two-string-kinds", VS_HTTP "      match:\n        - uri: {exact: /a, prefix: /b}\n",
    "test.yaml:11:16: VirtualService 'service-b': field 'http[0].match[0].uri' takes one of "
    "exact, prefix or regex, not several" },
  { "empty-uri", VS_HTTP "      match:\n        - uri: {}\n",
    "test.yaml:11:16: VirtualService 'service-b': field 'http[0].match[0].uri' needs one of "
    "exact, prefix or regex" },
  { "route-and-redirect", VS_HTTP "      redirect: {uri: /x}\n",
    "test.yaml:10:7: VirtualService 'service-b': field 'http[0].redirect' cannot be given "
    "with 'route'" },
  { "no-action", VS_HEAD "  http:\n    - name: nothing\n",
    "test.yaml:8:7: VirtualService 'service-b': field 'http[0]' needs one of 'route', "
    "'redirect' or 'directResponse'" },
  { "rewrite-with-redirect", VS_HEAD "  http:\n    - redirect: {uri: /x}\n      rewrite: {uri: /y}\n",
    "test.yaml:9:7: VirtualService 'service-b': field 'http[0].rewrite' cannot be given "
    "with 'redirect'" },
  { "weight-twice", VS_HEAD "  http:\n    - route:\n        - destination: {host: b, weight: 1}\n"
    "          weight: 1\n",
    "test.yaml:9:34: VirtualService 'service-b': field 'http[0].route[0].destination.weight' "
    "repeats the 'weight' beside 'destination'; keep only that one" },
  { "weight-negative", VS_HEAD "  http:\n    - route:\n        - destination: {host: b}\n"
    "          weight: -5\n",
    "test.yaml:10:19: VirtualService 'service-b': field 'http[0].route[0].weight' must be a "
    "number, 0 or more" },
  { "weights-zero", VS_HEAD "  http:\n    - route:\n        - destination: {host: b}\n"
    "        - destination: {host: c}\n",
    "test.yaml:9:9: VirtualService 'service-b': field 'http[0].route' gives every destination "
    "weight 0, so no request could be routed" },
  { "no-host", VS_HEAD "  http:\n    - route:\n        - destination: {subset: v1}\n",
    "test.yaml:9:24: VirtualService 'service-b': field 'http[0].route[0].destination' needs "
    "a host" },
  { "port-name", VS_HEAD "  http:\n    - route:\n        - destination: {host: b, port: {name: http}}\n",
    "test.yaml:9:41: VirtualService field 'http[0].route[0].destination.port.name' is not "
    "supported by weft: port names need service discovery; give the port 'number'" },
  { "bad-duration", VS_HTTP "      timeout: 5 seconds\n",
    "test.yaml:10:16: VirtualService 'service-b': field 'http[0].timeout' must be a duration "
    "such as 100ms, 1.5s, 2m, 1h or 1m30s, not '5 seconds'" },
  { "redirect-code", VS_HEAD "  http:\n    - redirect: {uri: /x, redirectCode: 304}\n",
    "test.yaml:8:41: VirtualService 'service-b': field 'http[0].redirect.redirectCode' must "
    "be 301, 302, 303, 307 or 308" },
  { "derive-port-and-port", VS_HEAD "  http:\n    - redirect: {port: 8080, derivePort: FROM_REQUEST_PORT}\n",
    "test.yaml:8:30: VirtualService 'service-b': field 'http[0].redirect.derivePort' cannot "
    "be given with 'port'" },
  { "bad-backref", VS_HTTP "      rewrite:\n        uriRegexRewrite: {match: a, rewrite: '\\n'}\n",
    "test.yaml:11:46: VirtualService 'service-b': field 'http[0].rewrite.uriRegexRewrite.rewrite' "
    "has a backslash that is neither \\1 to \\9 nor \\\\" },
  { "mirror-and-mirrors", VS_HTTP "      mirror: {host: a}\n      mirrors: []\n",
    "test.yaml:11:7: VirtualService 'service-b': field 'http[0].mirrors' cannot be given with "
    "'mirror'" },
  { "percent-and-percentage", VS_HTTP "      fault:\n        delay:\n          fixedDelay: 1s\n"
    "          percent: 5\n          percentage: {value: 5}\n",
    "test.yaml:13:11: VirtualService 'service-b': field 'http[0].fault.delay.percent' cannot "
    "be given with 'percentage'; write only 'percentage'" },
  { "percentage-range", VS_HTTP "      mirror: {host: a}\n      mirrorPercentage: {value: 101}\n",
    "test.yaml:11:33: VirtualService 'service-b': field 'http[0].mirrorPercentage.value' must "
    "be a number from 0 to 100" },
  { "body-base64", VS_HEAD "  http:\n    - directResponse: {status: 200, body: {bytes: '%%%'}}\n",
    "test.yaml:8:51: VirtualService 'service-b': field 'http[0].directResponse.body.bytes' is "
    "not base64" },
  { "no-name", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n"
    "  namespace: a\nspec: {}\n",
    "test.yaml:4:3: VirtualService needs metadata.name" },
  { "http-empty", VS_HEAD "  http: []\n",
    "test.yaml:7:9: VirtualService 'service-b': field 'http' must list at least one route (weft routes HTTP only)" },
  { "host-with-port", "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
    "metadata: {name: a}\nspec:\n  hosts: [a, \"b:80\"]\n",
    "test.yaml:5:14: VirtualService 'a': field 'hosts[1]' must be a host name without port or "
    "path" },
  { "no-http", "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
    "metadata: {name: a}\nspec:\n  hosts: [a]\n",
    "test.yaml:5:3: VirtualService 'a': field 'http' must list at least one route (weft routes HTTP only)" },
  { "api-version", "apiVersion: networking.istio.io/v2\nkind: VirtualService\n"
    "metadata: {name: a}\nspec: {}\n",
    "test.yaml:1:13: VirtualService apiVersion 'networking.istio.io/v2' is not supported by "
    "weft (it reads networking.istio.io/v1, networking.istio.io/v1beta1, "
    "networking.istio.io/v1alpha3)" },
  { "dr-tls", DR_HEAD "  trafficPolicy:\n    tls: {mode: ISTIO_MUTUAL}\n",
    "test.yaml:8:5: DestinationRule field 'trafficPolicy.tls' is not supported by weft: weft "
    "does not originate TLS to upstreams" },
  { "dr-port-level", DR_HEAD "  subsets:\n    - name: v1\n      trafficPolicy:\n"
    "        portLevelSettings: []\n",
    "test.yaml:10:9: DestinationRule field 'subsets[0].trafficPolicy.portLevelSettings' is not "
    "supported by weft: weft applies one policy to an upstream, whatever the port" },
  { "dr-max-retries", DR_HEAD "  trafficPolicy:\n    connectionPool:\n      http:\n"
    "        http1MaxPendingRequests: 1\n        maxRetries: 3\n",
    "test.yaml:11:9: DestinationRule field 'trafficPolicy.connectionPool.http."
    "maxRetries' is not supported by weft: weft bounds retries with the retry budget of each "
    "route instead" },
  { "dr-passthrough", DR_HEAD "  trafficPolicy:\n    loadBalancer: {simple: PASSTHROUGH}\n",
    "test.yaml:8:28: DestinationRule 'service-b': field 'trafficPolicy.loadBalancer.simple' "
    "PASSTHROUGH forwards to the original destination address, which weft's router does not "
    "do; pick ROUND_ROBIN, RANDOM or LEAST_REQUEST" },
  { "dr-cookie-ttl", DR_HEAD "  trafficPolicy:\n    loadBalancer:\n      consistentHash:\n"
    "        httpCookie: {name: a, ttl: 10s}\n",
    "test.yaml:10:31: DestinationRule field 'trafficPolicy.loadBalancer.consistentHash."
    "httpCookie.ttl' is not supported by weft: weft hashes on a cookie the client sends but "
    "does not set one" },
  { "dr-min-health", DR_HEAD "  trafficPolicy:\n    outlierDetection: {minHealthPercent: 50}\n",
    "test.yaml:8:42: DestinationRule 'service-b': field 'trafficPolicy.outlierDetection."
    "minHealthPercent' must be 0: weft has no panic threshold, it ejects up to "
    "maxEjectionPercent of the endpoints whatever is left" },
  { "dr-maglev-prime", DR_HEAD "  trafficPolicy:\n    loadBalancer:\n      consistentHash:\n"
    "        useSourceIp: true\n        maglev: {tableSize: 1000}\n",
    "test.yaml:11:29: DestinationRule 'service-b': field 'trafficPolicy.loadBalancer."
    "consistentHash.maglev.tableSize' must be a prime number, such as 65537" },
  { "dr-workload-selector", DR_HEAD "  workloadSelector: {matchLabels: {app: a}}\n",
    "test.yaml:7:3: DestinationRule field 'workloadSelector' is not supported by weft: weft "
    "applies every DestinationRule in its configuration; remove it and give this sidecar only "
    "the rules meant for it" },
  { "dr-wildcard", "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n"
    "  name: all\nspec:\n  host: \"*.local\"\n",
    "test.yaml:6:9: DestinationRule 'all': field 'host' must name one service: weft cannot "
    "apply a policy to a wildcard" },
  { "dr-twice", DR_HEAD "  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n---\n"
    DR_HEAD "  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}\n",
    "test.yaml:15:18: DestinationRule 'service-b': sets the traffic policy of upstream "
    "'service-b', which test.yaml:7:18 set already" },
};


/* ------------------------------------------------------------------ */
/* Gateway API HTTPRoute                                                */
/* ------------------------------------------------------------------ */

static void
test_route_domains (void)
{
  static const char *const services[] = {
    "service-b", "service-b.shop", "service-b.shop.svc", "service-b.shop.svc.cluster.local", NULL
  };
  static const char *const hostnames[] = { "web.example.com", "*.example.org", NULL };
  g_autoptr(WeftTestIr) ir = weft_test_translate_file ("http-route-full.yaml");
  g_autoptr(WeftTestIr) named = weft_test_translate_file ("http-route-hostnames.yaml");
  WeftVirtualHost *vhost = weft_test_vhost (ir, 0);

  g_assert_cmpstr (vhost->name, ==, "service-b");
  weft_test_assert_domains (vhost, services);
  /* rule 0 has three matches */
  g_assert_cmpuint (vhost->rules->len, ==, 9);
  weft_test_assert_domains (weft_test_vhost (named, 0), hostnames);
}

static void
test_route_matches (void)
{
  g_autoptr(WeftTestIr) ir = weft_test_translate_file ("http-route-full.yaml");
  WeftVirtualHost *vhost = weft_test_vhost (ir, 0);
  WeftRouteMatch *m = &weft_test_rule (vhost, 0)->match;
  WeftRouteRule *exact = weft_test_rule (vhost, 1);
  WeftRouteRule *regex = weft_test_rule (vhost, 2);
  WeftRouteRule *old = weft_test_rule (vhost, 3);
  WeftRouteRule *drained = weft_test_rule (vhost, 7);
  WeftRouteRule *nothing = weft_test_rule (vhost, 8);

  weft_test_assert_str (&m->path, WEFT_STR_PREFIX, "/api");
  g_assert_true (m->path.segment_prefix);
  g_assert_nonnull (m->path.node);
  weft_test_assert_str (&m->method, WEFT_STR_EXACT, "GET");
  g_assert_cmpuint (m->headers->len, ==, 2);
  weft_test_assert_str (&weft_test_named (m->headers, 0, "accept-language")->match,
                        WEFT_STR_EXACT, "en-GB");
  weft_test_assert_str (&weft_test_named (m->headers, 1, "x-user")->match,
                        WEFT_STR_REGEX, "user-[0-9]+");
  g_assert_cmpuint (m->query->len, ==, 2);
  /* query parameter names keep their case */
  weft_test_assert_str (&weft_test_named (m->query, 0, "Debug")->match, WEFT_STR_EXACT, "1");
  weft_test_assert_str (&weft_test_named (m->query, 1, "id")->match, WEFT_STR_REGEX, "[0-9]+");

  g_assert_true (exact->action == weft_test_rule (vhost, 0)->action);
  weft_test_assert_str (&exact->match.path, WEFT_STR_EXACT, "/exact");
  g_assert_false (exact->match.path.segment_prefix);
  g_assert_cmpint (exact->match.method.kind, ==, WEFT_STR_ANY);
  weft_test_assert_str (&regex->match.path, WEFT_STR_REGEX, "/v[0-9]+/.*");
  /* a path without a type is a PathPrefix */
  weft_test_assert_str (&old->match.path, WEFT_STR_PREFIX, "/old");
  g_assert_true (old->match.path.segment_prefix);
  /* no matches: PathPrefix / */
  weft_test_assert_str (&drained->match.path, WEFT_STR_PREFIX, "/");
  g_assert_true (drained->match.path.segment_prefix);
  /* a match without a path: PathPrefix / */
  weft_test_assert_str (&nothing->match.path, WEFT_STR_PREFIX, "/");
  weft_test_assert_str (&nothing->match.method, WEFT_STR_EXACT, "DELETE");
}

static void
test_route_backends_and_filters (void)
{
  g_autoptr(WeftTestIr) ir = weft_test_translate_file ("http-route-full.yaml");
  WeftRouteAction *action = weft_test_rule (weft_test_vhost (ir, 0), 0)->action;
  WeftRouteMirror *mirror;

  g_assert_cmpstr (action->name, ==, "service-b/british");
  g_assert_cmpuint (action->dests->len, ==, 3);
  weft_test_assert_dest (weft_test_dest (action, 0), "service-b-v2", 80, 3);
  weft_test_assert_pair (weft_test_dest (action, 0)->request_headers.set, 0, "x-backend", "v2");
  /* the route's own namespace adds nothing; another one is name.namespace */
  weft_test_assert_dest (weft_test_dest (action, 1), "service-b-v1", 0, 1);
  weft_test_assert_dest (weft_test_dest (action, 2), "service-b-legacy.legacy", 8080, 1);
  g_assert_cmpuint (action->direct_status, ==, 0);

  weft_test_assert_pair (action->request_headers.set, 0, "x-route", "british");
  weft_test_assert_pair (action->request_headers.add, 0, "x-hop", "weft");
  g_assert_cmpstr (action->request_headers.remove->pdata[0], ==, "x-secret");
  weft_test_assert_pair (action->response_headers.add, 0, "x-served-by", "weft");

  g_assert_cmpuint (action->mirrors->len, ==, 2);
  mirror = action->mirrors->pdata[0];
  weft_test_assert_dest (mirror->dest, "shadow", 9090, 1);
  g_assert_cmpfloat_with_epsilon (mirror->percent, 25, 1e-9);
  mirror = action->mirrors->pdata[1];
  weft_test_assert_dest (mirror->dest, "audit.ops", 0, 1);
  g_assert_cmpfloat_with_epsilon (mirror->percent, 12.5, 1e-9);

  g_assert_cmpstr (action->rewrite_authority, ==, "internal.example.com");
  g_assert_null (action->rewrite_path);
  g_assert_null (action->rewrite_prefix);
}

static void
test_route_timeouts_and_retry (void)
{
  g_autoptr(WeftTestIr) ir = weft_test_translate_file ("http-route-full.yaml");
  g_autoptr(WeftTestIr) named = weft_test_translate_file ("http-route-hostnames.yaml");
  WeftVirtualHost *vhost = weft_test_vhost (ir, 0);
  WeftRouteAction *british = weft_test_rule (vhost, 0)->action;
  WeftRouteAction *full = weft_test_rule (vhost, 5)->action;
  WeftRouteAction *web = weft_test_rule (weft_test_vhost (named, 0), 0)->action;

  /* backendRequest is the per-try timeout of a rule that retries */
  g_assert_true (british->has_timeout);
  g_assert_cmpuint (british->timeout_ms, ==, 10000);
  g_assert_true (british->has_retry);
  g_assert_cmpuint (british->retry.attempts, ==, 3);
  g_assert_cmpuint (british->retry.per_try_timeout_ms, ==, 2000);
  g_assert_cmpuint (british->retry.backoff_base_ms, ==, 100);
  g_assert_cmphex (british->retry.retry_on, ==,
                   WEFT_RETRY_ON_CONNECT_FAILURE | WEFT_RETRY_ON_REFUSED_STREAM
                   | WEFT_RETRY_ON_STATUS);
  g_assert_cmpuint (british->retry.n_statuses, ==, 2);
  g_assert_cmpuint (british->retry.statuses[0], ==, 502);
  g_assert_cmpuint (british->retry.statuses[1], ==, 503);

  /* and bounds the one try of a rule that does not ("0s" = no request timeout) */
  g_assert_false (full->has_retry);
  g_assert_true (full->has_timeout);
  g_assert_cmpuint (full->timeout_ms, ==, 1500);

  /* retry {}: two attempts on 503 and connection failures */
  g_assert_true (web->has_retry);
  g_assert_cmpuint (web->retry.attempts, ==, 2);
  g_assert_cmpuint (web->retry.n_statuses, ==, 1);
  g_assert_cmpuint (web->retry.statuses[0], ==, 503);
  g_assert_cmpuint (web->retry.per_try_timeout_ms, ==, 3000);
  g_assert_false (web->has_timeout);
  weft_test_assert_dest (weft_test_dest (web, 0), "web", 80, 1);
}

static void
test_route_redirect_rewrite (void)
{
  g_autoptr(WeftTestIr) ir = weft_test_translate_file ("http-route-full.yaml");
  WeftVirtualHost *vhost = weft_test_vhost (ir, 0);
  WeftRouteAction *old = weft_test_rule (vhost, 3)->action;
  WeftRouteAction *moved = weft_test_rule (vhost, 4)->action;
  WeftRouteAction *full = weft_test_rule (vhost, 5)->action;
  WeftRouteAction *prefix = weft_test_rule (vhost, 6)->action;

  g_assert_true (old->has_redirect);
  g_assert_cmpuint (old->dests->len, ==, 0);
  g_assert_cmpuint (old->direct_status, ==, 0);
  g_assert_cmpstr (old->redirect.scheme, ==, "https");
  g_assert_cmpstr (old->redirect.host, ==, "new.example.com");
  g_assert_cmpstr (old->redirect.path, ==, "/new");
  g_assert_null (old->redirect.prefix);
  /* a scheme without a port redirects to the scheme's well-known port */
  g_assert_cmpuint (old->redirect.port, ==, 443);
  g_assert_cmpuint (old->redirect.status, ==, 301);
  g_assert_cmpstr (old->name, ==, "service-b/rules[1]");

  /* the Gateway API's default status is 302 */
  g_assert_true (moved->has_redirect);
  g_assert_null (moved->redirect.scheme);
  g_assert_cmpuint (moved->redirect.port, ==, 8443);
  g_assert_cmpstr (moved->redirect.prefix, ==, "/here");
  g_assert_cmpuint (moved->redirect.status, ==, 302);

  g_assert_cmpstr (full->rewrite_path, ==, "/b");
  g_assert_null (full->rewrite_prefix);
  g_assert_cmpstr (prefix->rewrite_prefix, ==, "/q");
  g_assert_null (prefix->rewrite_path);
}

/* all backends weighted 0, or none at all: 500, as the Gateway API says */
static void
test_route_no_backend (void)
{
  g_autoptr(WeftTestIr) ir = weft_test_translate_file ("http-route-full.yaml");
  WeftVirtualHost *vhost = weft_test_vhost (ir, 0);
  WeftRouteAction *drained = weft_test_rule (vhost, 7)->action;
  WeftRouteAction *nothing = weft_test_rule (vhost, 8)->action;

  g_assert_cmpuint (drained->dests->len, ==, 0);
  g_assert_cmpuint (drained->direct_status, ==, 500);
  g_assert_cmpuint (nothing->dests->len, ==, 0);
  g_assert_cmpuint (nothing->direct_status, ==, 500);
}

/* the mission's three examples as HTTPRoutes */
static void
test_route_examples (void)
{
  g_autoptr(WeftTestIr) ir = weft_test_translate_ok (
    "apiVersion: gateway.networking.k8s.io/v1\n"
    "kind: HTTPRoute\n"
    "metadata: {name: service-b}\n"
    "spec:\n"
    "  parentRefs: [{group: \"\", kind: Service, name: service-b}]\n"
    "  rules:\n"
    "    - matches: [{headers: [{name: Accept-Language, value: en-GB}]}]\n"
    "      backendRefs: [{name: service-b-v2}]\n"
    "    - matches: [{method: GET, path: {type: PathPrefix, value: /foo}}]\n"
    "      backendRefs: [{name: cache, port: 8080}]\n"
    "    - backendRefs:\n"
    "        - {name: service-b-v1, weight: 90}\n"
    "        - {name: service-b-v2, weight: 10}\n");
  WeftVirtualHost *vhost = weft_test_vhost (ir, 0);
  WeftRouteRule *british = weft_test_rule (vhost, 0);
  WeftRouteRule *cached = weft_test_rule (vhost, 1);
  WeftRouteRule *split = weft_test_rule (vhost, 2);

  g_assert_cmpuint (vhost->rules->len, ==, 3);
  weft_test_assert_str (&weft_test_named (british->match.headers, 0, "accept-language")->match,
                        WEFT_STR_EXACT, "en-GB");
  weft_test_assert_dest (weft_test_dest (british->action, 0), "service-b-v2", 0, 1);
  weft_test_assert_str (&cached->match.method, WEFT_STR_EXACT, "GET");
  weft_test_assert_str (&cached->match.path, WEFT_STR_PREFIX, "/foo");
  weft_test_assert_dest (weft_test_dest (cached->action, 0), "cache", 8080, 1);
  weft_test_assert_dest (weft_test_dest (split->action, 0), "service-b-v1", 0, 90);
  weft_test_assert_dest (weft_test_dest (split->action, 1), "service-b-v2", 0, 10);
}

#define ROUTE_HEAD \
  "apiVersion: gateway.networking.k8s.io/v1\n" \
  "kind: HTTPRoute\n" \
  "metadata:\n" \
  "  name: service-b\n" \
  "spec:\n" \
  "  parentRefs: [{group: \"\", kind: Service, name: service-b}]\n"
#define ROUTE_RULE \
  ROUTE_HEAD \
  "  rules:\n" \
  "    - backendRefs: [{name: b}]\n"

static const WeftErrorCase weft_gateway_errors[] = {
  { "gateway-parent", "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
    "metadata: {name: web}\nspec:\n  parentRefs:\n    - name: my-gateway\n"
    "  rules: [{backendRefs: [{name: web}]}]\n",
    "test.yaml:6:7: HTTPRoute 'web': field 'parentRefs[0].kind' is Gateway (the default), "
    "but weft is a sidecar, not a Gateway: a mesh (GAMMA) route attaches to a Service "
    "(kind: Service, group: \"\")" },
  { "gateway-parent-kind", "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: HTTPRoute\n"
    "metadata: {name: web}\nspec:\n  parentRefs:\n"
    "    - {group: gateway.networking.k8s.io, kind: Gateway, name: gw}\n",
    "test.yaml:6:48: HTTPRoute 'web': field 'parentRefs[0].kind' is Gateway, but weft is a "
    "sidecar, not a Gateway: a mesh (GAMMA) route attaches to a Service (kind: Service, "
    "group: \"\")" },
  { "other-parent-kind", "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: HTTPRoute\n"
    "metadata: {name: web}\nspec:\n  parentRefs:\n"
    "    - {group: multicluster.x-k8s.io, kind: ServiceImport, name: gw}\n",
    "test.yaml:6:44: HTTPRoute 'web': field 'parentRefs[0].kind' is 'ServiceImport': a mesh "
    "(GAMMA) route attaches to a Service (kind: Service, group: \"\")" },
  { "api-version", "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: HTTPRoute\n"
    "metadata: {name: a}\nspec: {}\n",
    "test.yaml:1:13: HTTPRoute apiVersion 'gateway.networking.k8s.io/v1alpha2' is not "
    "supported by weft (it reads gateway.networking.k8s.io/v1, "
    "gateway.networking.k8s.io/v1beta1)" },
  { "unknown-field", ROUTE_RULE "      timeout: 1s\n",
    "test.yaml:9:7: HTTPRoute field 'rules[0].timeout' is not supported by weft" },
  { "unknown-filter", ROUTE_RULE "      filters:\n        - type: RequestMangler\n",
    "test.yaml:10:17: HTTPRoute 'service-b': field 'rules[0].filters[0].type' is "
    "RequestMangler, a filter weft does not support (weft supports RequestHeaderModifier, "
    "ResponseHeaderModifier, RequestMirror, RequestRedirect and URLRewrite)" },
  { "extension-ref", ROUTE_RULE "      filters:\n        - type: ExtensionRef\n"
    "          extensionRef: {group: x, kind: y, name: z}\n",
    "test.yaml:10:17: HTTPRoute 'service-b': field 'rules[0].filters[0].type' is "
    "ExtensionRef, which weft does not support: it names an implementation's own resource, "
    "and weft has none" },
  { "cors", ROUTE_RULE "      filters: [{type: CORS, cors: {}}]\n",
    "test.yaml:9:24: HTTPRoute 'service-b': field 'rules[0].filters[0].type' is CORS, which "
    "weft does not support: weft does not answer CORS preflight requests; let the "
    "application do it" },
  { "filter-wrong-settings", ROUTE_RULE "      filters:\n        - type: RequestHeaderModifier\n"
    "          responseHeaderModifier: {}\n",
    "test.yaml:11:11: HTTPRoute 'service-b': field 'rules[0].filters[0].responseHeaderModifier' "
    "does not belong in a filter of type RequestHeaderModifier" },
  { "filter-no-settings", ROUTE_RULE "      filters: [{type: URLRewrite}]\n",
    "test.yaml:9:17: HTTPRoute 'service-b': field 'rules[0].filters[0]' of type URLRewrite "
    "needs 'urlRewrite'" },
  { "backend-filter", ROUTE_HEAD "  rules:\n    - backendRefs:\n        - name: b\n"
    "          filters: [{type: RequestMirror, requestMirror: {backendRef: {name: c}}}]\n",
    "test.yaml:10:28: HTTPRoute 'service-b': field 'rules[0].backendRefs[0].filters[0].type' "
    "is RequestMirror; weft takes only RequestHeaderModifier and ResponseHeaderModifier on a "
    "backend: put it in the rule's filters" },
  { "redirect-and-rewrite", ROUTE_HEAD "  rules:\n    - filters:\n"
    "        - {type: RequestRedirect, requestRedirect: {hostname: a}}\n"
    "        - {type: URLRewrite, urlRewrite: {hostname: b}}\n",
    "test.yaml:10:18: HTTPRoute 'service-b': field 'rules[0].filters[1].type' is "
    "URLRewrite, which cannot be used here: a rule takes one of each filter but RequestMirror, and not both "
    "RequestRedirect and URLRewrite" },
  { "redirect-and-backends", ROUTE_RULE "      filters: [{type: RequestRedirect, "
    "requestRedirect: {hostname: a}}]\n",
    "test.yaml:8:7: HTTPRoute 'service-b': field 'rules[0].backendRefs' cannot be given with "
    "a RequestRedirect filter, which answers itself" },
  { "prefix-rewrite-exact", ROUTE_RULE "      matches: [{path: {type: Exact, value: /a}}]\n"
    "      filters:\n        - type: URLRewrite\n          urlRewrite:\n"
    "            path: {type: ReplacePrefixMatch, replacePrefixMatch: /b}\n",
    "test.yaml:13:26: HTTPRoute 'service-b': field 'rules[0].filters[0].urlRewrite.path.type' "
    "is ReplacePrefixMatch, which needs every match of the rule to be a PathPrefix" },
  { "path-type", ROUTE_RULE "      matches: [{path: {type: Prefix, value: /a}}]\n",
    "test.yaml:9:31: HTTPRoute 'service-b': field 'rules[0].matches[0].path.type' must be "
    "Exact, PathPrefix or RegularExpression, not 'Prefix'" },
  { "header-type", ROUTE_RULE "      matches: [{headers: [{type: Prefix, name: a, value: b}]}]\n",
    "test.yaml:9:35: HTTPRoute 'service-b': field 'rules[0].matches[0].headers[0].type' must "
    "be Exact or RegularExpression, not 'Prefix'" },
  { "method", ROUTE_RULE "      matches: [{method: get}]\n",
    "test.yaml:9:26: HTTPRoute 'service-b': field 'rules[0].matches[0].method' must be GET, "
    "HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE or PATCH" },
  { "backend-kind", ROUTE_HEAD "  rules:\n    - backendRefs: [{kind: ServiceImport, name: b}]\n",
    "test.yaml:8:28: HTTPRoute 'service-b': field 'rules[0].backendRefs[0].kind' is "
    "'ServiceImport': weft forwards to Services only" },
  { "session-persistence", ROUTE_RULE "      sessionPersistence: {sessionName: a}\n",
    "test.yaml:9:7: HTTPRoute field 'rules[0].sessionPersistence' is not supported by weft: "
    "weft does not pin clients to backends; a DestinationRule's consistentHash on a cookie or "
    "header keeps them on one endpoint" },
  { "section-name", "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
    "metadata: {name: a}\nspec:\n"
    "  parentRefs: [{group: \"\", kind: Service, name: a, sectionName: http}]\n",
    "test.yaml:5:52: HTTPRoute field 'parentRefs[0].sectionName' is not supported by weft: "
    "weft cannot resolve a Service's port names; give the 'port' number" },
  { "no-parent", "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
    "metadata: {name: a}\nspec:\n  rules: [{backendRefs: [{name: b}]}]\n",
    "test.yaml:5:3: HTTPRoute 'a': field 'parentRefs' is missing: name the Service this route "
    "applies to (kind: Service, group: \"\"), or give hostnames" },
  { "no-rules", ROUTE_HEAD,
    "test.yaml:6:3: HTTPRoute 'service-b': field 'rules' must list at least one rule" },
  { "backend-timeout", ROUTE_RULE "      timeouts: {request: 1s, backendRequest: 2s}\n",
    "test.yaml:9:47: HTTPRoute 'service-b': field 'rules[0].timeouts.backendRequest' must not "
    "be longer than 'request'" },
  { "retry-codes", ROUTE_RULE "      retry: {codes: [503, 200]}\n",
    "test.yaml:9:28: HTTPRoute 'service-b': field 'rules[0].retry.codes' must list status "
    "codes from 400 to 599" },
  { "mirror-fraction", ROUTE_RULE "      filters:\n        - type: RequestMirror\n"
    "          requestMirror:\n            backendRef: {name: c}\n"
    "            percent: 5\n            fraction: {numerator: 1}\n",
    "test.yaml:14:13: HTTPRoute 'service-b': field 'rules[0].filters[0].requestMirror.fraction' "
    "cannot be given with 'percent'" },
};

static void
test_translate_error (gconstpointer data)
{
  const WeftErrorCase *c = data;

  weft_test_assert_error (c->yaml, c->message);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/translate/mission/weight-beside", test_mission_weight_beside);
  g_test_add_func ("/translate/mission/weight-beside-quiet", test_mission_weight_beside_quiet);
  g_test_add_func ("/translate/mission/weight-inside", test_mission_weight_inside);
  g_test_add_func ("/translate/mission/api-versions", test_api_versions);
  g_test_add_func ("/translate/example/split", test_example_split);
  g_test_add_func ("/translate/example/header", test_example_header);
  g_test_add_func ("/translate/example/method", test_example_method);
  g_test_add_func ("/translate/vs/hosts", test_vs_hosts);
  g_test_add_func ("/translate/vs/match", test_vs_match);
  g_test_add_func ("/translate/vs/route", test_vs_route);
  g_test_add_func ("/translate/vs/retries", test_vs_retries);
  g_test_add_func ("/translate/vs/fault-and-mirror", test_vs_fault_and_mirror);
  g_test_add_func ("/translate/vs/redirect-direct-rewrite", test_vs_redirect_direct_rewrite);
  g_test_add_func ("/translate/vs/durations", test_vs_durations);
  g_test_add_func ("/translate/vs/same-hosts", test_vs_same_hosts);
  g_test_add_func ("/translate/vs/weights", test_vs_weights);
  g_test_add_func ("/translate/vs/warnings", test_vs_warnings);
  g_test_add_func ("/translate/dr/policies", test_dr_policies);
  g_test_add_func ("/translate/dr/dotted-host", test_dr_dotted_host);
  for (guint i = 0; i < G_N_ELEMENTS (weft_istio_errors); i++)
    {
      g_autofree char *path = g_strdup_printf ("/translate/istio-error/%s",
                                               weft_istio_errors[i].name);
      g_test_add_data_func (path, &weft_istio_errors[i], test_translate_error);
    }
  g_test_add_func ("/translate/route/domains", test_route_domains);
  g_test_add_func ("/translate/route/matches", test_route_matches);
  g_test_add_func ("/translate/route/backends-and-filters", test_route_backends_and_filters);
  g_test_add_func ("/translate/route/timeouts-and-retry", test_route_timeouts_and_retry);
  g_test_add_func ("/translate/route/redirect-rewrite", test_route_redirect_rewrite);
  g_test_add_func ("/translate/route/no-backend", test_route_no_backend);
  g_test_add_func ("/translate/route/examples", test_route_examples);
  for (guint i = 0; i < G_N_ELEMENTS (weft_gateway_errors); i++)
    {
      g_autofree char *path = g_strdup_printf ("/translate/route-error/%s",
                                               weft_gateway_errors[i].name);
      g_test_add_data_func (path, &weft_gateway_errors[i], test_translate_error);
    }
  return g_test_run ();
}
