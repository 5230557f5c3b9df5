/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * weft's own route YAML (the router's top-level settings) into the
 * intermediate form: every field, and errors at file:line:col.
 */
#include <string.h>
#include <glib.h>

#include "weft-config-private.h"
#include "weft-route-table-private.h"

typedef struct {
  WeftConfig       *weft;
  WeftRouterConfig *config;
} TestSettings;

static void
test_settings_clear (TestSettings *t)
{
  weft_router_config_free (t->config);
  weft_config_free (t->weft);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (TestSettings, test_settings_clear)

/* loads @yaml as weft's config, parses its router: key and finishes;
 * FALSE with @error on the first problem */
static gboolean
test_settings_load (TestSettings *t, const char *yaml, GError **error)
{
  const WeftNode *node;

  t->weft = weft_config_load_data ("router.yaml", yaml, strlen (yaml), error);
  g_assert_nonnull (t->weft);
  node = g_hash_table_lookup (t->weft->plugin_nodes, "router");
  t->config = weft_router_config_new (NULL);
  return weft_router_parse_settings (t->config, node, error) &&
         weft_router_config_finish (t->config, error);
}

static void
test_settings_ok (TestSettings *t, const char *yaml)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (test_settings_load (t, yaml, &error));
  g_assert_no_error (error);
}

/* the message of a load expected to fail */
static char *
test_settings_error (const char *yaml)
{
  g_auto(TestSettings) t = { NULL, NULL };
  g_autoptr(GError) error = NULL;

  g_assert_false (test_settings_load (&t, yaml, &error));
  g_assert_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG);
  g_test_message ("%s", error->message);
  return g_strdup (error->message);
}

static WeftRouteRule *
test_rule (TestSettings *t, guint vhost, guint rule)
{
  WeftVirtualHost *vh = t->config->vhosts->pdata[vhost];

  g_assert_cmpuint (rule, <, vh->rules->len);
  return vh->rules->pdata[rule];
}

static const char *
test_pair (GPtrArray *pairs, guint i, const char **value)
{
  WeftHeaderPair *pair = pairs->pdata[i];

  *value = pair->value;
  return pair->name;
}

/* ------------------------------------------------------------------ */

static const char full_yaml[] =
  "router:\n"
  "  virtual_hosts:\n"
  "    - name: service-b\n"
  "      domains: [service-b, \"*.b.example\", \"svc:8080\"]\n"
  "      routes:\n"
  "        - name: cache-gets\n"
  "          match:\n"
  "            path: {prefix: /foo, ignore_case: true}\n"
  "            method: GET\n"
  "            headers:\n"
  "              - {name: Accept-Language, exact: en-GB}\n"
  "              - {name: x-debug, absent: true}\n"
  "              - {name: x-env, regex: 'prod|stage', invert: true}\n"
  "              - {name: x-canary, present: true}\n"
  "            query: [{name: debug, exact: \"1\"}, {name: id, regex: '[0-9]+'}]\n"
  "          upstream: cache\n"
  "          port: 8080\n"
  "          timeout: 2s\n"
  "          retries:\n"
  "            attempts: 3\n"
  "            per_try_timeout: 500ms\n"
  "            retry_on: [connect-failure, refused-stream, reset, 5xx, gateway-error, 409]\n"
  "            backoff: {base: 25ms, max: 250ms}\n"
  "            max_body: 64KiB\n"
  "            budget: {ratio: 0.2, min_per_second: 10}\n"
  "          fault: {delay: {fixed: 100ms, percent: 10}, abort: {status: 503, percent: 5.5}}\n"
  "          mirror: {upstream: shadow, percent: 10}\n"
  "          request_headers: {set: {x-a: b}, add: {x-c: d}, remove: [x-e]}\n"
  "          response_headers: {set: {x-r: \"\"}, remove: [server]}\n"
  "          rewrite: {prefix: /, authority: cache.local}\n"
  "        - name: split\n"
  "          match: {path: {segment_prefix: /api/}}\n"
  "          split:\n"
  "            - {upstream: v1, weight: 90, request_headers: {set: {x-version: v1}}}\n"
  "            - {upstream: v2, weight: 10, port: 9090}\n"
  "          rewrite: {regex: {pattern: '^/api/(.*)$', substitution: '/$1'}}\n"
  "        - name: moved\n"
  "          match: {path: {exact: /old}}\n"
  "          redirect: {scheme: https, host: new.example, port: 8443, path: /new, status: 308}\n"
  "        - name: hello\n"
  "          match: {path: {regex: '/u/[0-9]+'}}\n"
  "          direct_response: {status: 200, body: hello}\n"
  "        - upstream: default\n";

static void
test_full (void)
{
  g_auto(TestSettings) t = { NULL, NULL };
  WeftVirtualHost *vh;
  WeftRouteRule *rule;
  WeftRouteAction *a;
  WeftRouteDest *dest;
  WeftNamedMatch *nm;
  WeftRouteMirror *mirror;
  const char *value;

  test_settings_ok (&t, full_yaml);
  g_assert_cmpuint (t.config->vhosts->len, ==, 1);
  vh = t.config->vhosts->pdata[0];
  g_assert_cmpstr (vh->name, ==, "service-b");
  g_assert_cmpuint (vh->domains->len, ==, 3);
  g_assert_cmpstr (vh->domains->pdata[1], ==, "*.b.example");
  g_assert_cmpuint (vh->rules->len, ==, 5);

  rule = test_rule (&t, 0, 0);
  a = rule->action;
  g_assert_cmpstr (a->name, ==, "cache-gets");
  g_assert_cmpint (rule->match.path.kind, ==, WEFT_STR_PREFIX);
  g_assert_cmpstr (rule->match.path.value, ==, "/foo");
  g_assert_true (rule->match.path.ignore_case);
  g_assert_false (rule->match.path.segment_prefix);
  g_assert_cmpint (rule->match.method.kind, ==, WEFT_STR_EXACT);
  g_assert_cmpstr (rule->match.method.value, ==, "GET");
  g_assert_cmpuint (rule->match.headers->len, ==, 4);
  nm = rule->match.headers->pdata[0];
  g_assert_cmpstr (nm->name, ==, "accept-language");
  g_assert_cmpint (nm->match.kind, ==, WEFT_STR_EXACT);
  g_assert_cmpstr (nm->match.value, ==, "en-GB");
  g_assert_cmpint (((WeftNamedMatch *) rule->match.headers->pdata[1])->match.kind, ==,
                   WEFT_STR_ABSENT);
  nm = rule->match.headers->pdata[2];
  g_assert_cmpint (nm->match.kind, ==, WEFT_STR_REGEX);
  g_assert_true (nm->match.invert);
  g_assert_nonnull (nm->match.re);
  g_assert_cmpint (((WeftNamedMatch *) rule->match.headers->pdata[3])->match.kind, ==,
                   WEFT_STR_PRESENT);
  g_assert_cmpuint (rule->match.query->len, ==, 2);
  nm = rule->match.query->pdata[1];
  g_assert_cmpstr (nm->name, ==, "id");
  g_assert_cmpint (nm->match.kind, ==, WEFT_STR_REGEX);

  g_assert_cmpuint (a->dests->len, ==, 1);
  dest = a->dests->pdata[0];
  g_assert_cmpstr (dest->name, ==, "cache");
  g_assert_cmpuint (dest->port, ==, 8080);
  g_assert_cmpfloat (dest->weight, ==, 1);
  g_assert_true (a->has_timeout);
  g_assert_cmpuint (a->timeout_ms, ==, 2000);
  g_assert_true (a->has_retry);
  g_assert_cmpuint (a->retry.attempts, ==, 3);
  g_assert_cmpuint (a->retry.per_try_timeout_ms, ==, 500);
  g_assert_cmpuint (a->retry.retry_on, ==, WEFT_RETRY_ON_CONNECT_FAILURE |
                    WEFT_RETRY_ON_REFUSED_STREAM | WEFT_RETRY_ON_RESET | WEFT_RETRY_ON_5XX |
                    WEFT_RETRY_ON_GATEWAY_ERROR | WEFT_RETRY_ON_STATUS);
  g_assert_cmpuint (a->retry.n_statuses, ==, 1);
  g_assert_cmpuint (a->retry.statuses[0], ==, 409);
  g_assert_cmpuint (a->retry.backoff_base_ms, ==, 25);
  g_assert_cmpuint (a->retry.backoff_max_ms, ==, 250);
  g_assert_cmpuint (a->retry.max_body, ==, 65536);
  g_assert_cmpfloat (a->retry.budget_ratio, ==, 0.2);
  g_assert_cmpuint (a->retry.budget_min_per_sec, ==, 10);
  g_assert_null (a->retry_policy);     /* no plugin context here */
  g_assert_cmpuint (a->delay_ms, ==, 100);
  g_assert_cmpfloat (a->delay_percent, ==, 10);
  g_assert_cmpuint (a->abort_status, ==, 503);
  g_assert_cmpfloat (a->abort_percent, ==, 5.5);
  g_assert_cmpuint (a->mirrors->len, ==, 1);
  mirror = a->mirrors->pdata[0];
  g_assert_cmpstr (mirror->dest->name, ==, "shadow");
  g_assert_cmpfloat (mirror->percent, ==, 10);
  g_assert_cmpstr (test_pair (a->request_headers.set, 0, &value), ==, "x-a");
  g_assert_cmpstr (value, ==, "b");
  g_assert_cmpstr (test_pair (a->request_headers.add, 0, &value), ==, "x-c");
  g_assert_cmpstr (value, ==, "d");
  g_assert_cmpstr (a->request_headers.remove->pdata[0], ==, "x-e");
  g_assert_cmpstr (test_pair (a->response_headers.set, 0, &value), ==, "x-r");
  g_assert_cmpstr (value, ==, "");
  g_assert_cmpstr (a->response_headers.remove->pdata[0], ==, "server");
  g_assert_cmpstr (a->rewrite_prefix, ==, "/");
  g_assert_cmpstr (a->rewrite_authority, ==, "cache.local");

  rule = test_rule (&t, 0, 1);
  a = rule->action;
  g_assert_true (rule->match.path.segment_prefix);
  g_assert_cmpstr (rule->match.path.value, ==, "/api/");
  g_assert_cmpuint (a->dests->len, ==, 2);
  dest = a->dests->pdata[1];
  g_assert_cmpstr (dest->name, ==, "v2");
  g_assert_cmpuint (dest->port, ==, 9090);
  g_assert_cmpfloat (dest->cumulative, ==, 100);
  dest = a->dests->pdata[0];
  g_assert_cmpstr (test_pair (dest->request_headers.set, 0, &value), ==, "x-version");
  g_assert_cmpstr (a->rewrite_regex, ==, "^/api/(.*)$");
  g_assert_cmpstr (a->rewrite_regex_sub, ==, "/$1");
  g_assert_nonnull (a->rewrite_re);

  a = test_rule (&t, 0, 2)->action;
  g_assert_true (a->has_redirect);
  g_assert_cmpstr (a->redirect.scheme, ==, "https");
  g_assert_cmpstr (a->redirect.host, ==, "new.example");
  g_assert_cmpuint (a->redirect.port, ==, 8443);
  g_assert_cmpstr (a->redirect.path, ==, "/new");
  g_assert_cmpuint (a->redirect.status, ==, 308);

  rule = test_rule (&t, 0, 3);
  g_assert_cmpint (rule->match.path.kind, ==, WEFT_STR_REGEX);
  g_assert_cmpuint (rule->action->direct_status, ==, 200);
  g_assert_cmpstr (rule->action->direct_body, ==, "hello");

  /* no match: every request */
  rule = test_rule (&t, 0, 4);
  g_assert_cmpint (rule->match.path.kind, ==, WEFT_STR_ANY);
  g_assert_cmpstr (((WeftRouteDest *) rule->action->dests->pdata[0])->name, ==, "default");
  g_assert_false (rule->action->has_retry);
  g_assert_false (rule->action->has_timeout);
}

/* a method list and a match list: one rule each, in order, one action */
static void
test_lists (void)
{
  g_auto(TestSettings) t = { NULL, NULL };
  WeftVirtualHost *vh;

  test_settings_ok (&t,
    "router:\n"
    "  virtual_hosts:\n"
    "    - domains: \"*\"\n"
    "      routes:\n"
    "        - match:\n"
    "            - {path: {exact: /a}, method: [GET, HEAD]}\n"
    "            - {path: {prefix: /b}, method: {regex: 'P(OS|U)T'}}\n"
    "          upstream: x\n"
    "          retries: {attempts: 1, budget: false}\n"
    "        - upstream: y\n");
  vh = t.config->vhosts->pdata[0];
  g_assert_cmpstr (vh->name, ==, "*");
  g_assert_cmpuint (vh->rules->len, ==, 4);
  g_assert_cmpstr (test_rule (&t, 0, 0)->match.method.value, ==, "GET");
  g_assert_cmpstr (test_rule (&t, 0, 1)->match.method.value, ==, "HEAD");
  g_assert_cmpstr (test_rule (&t, 0, 1)->match.path.value, ==, "/a");
  g_assert_cmpint (test_rule (&t, 0, 2)->match.method.kind, ==, WEFT_STR_REGEX);
  g_assert_true (test_rule (&t, 0, 0)->action == test_rule (&t, 0, 2)->action);
  g_assert_cmpint (test_rule (&t, 0, 0)->action->refcount, ==, 3);
  g_assert_cmpfloat (test_rule (&t, 0, 0)->action->retry.budget_ratio, <, 0);
  g_assert_cmpuint (test_rule (&t, 0, 0)->action->retry.retry_on, ==,
                    WEFT_RETRY_ON_CONNECT_FAILURE | WEFT_RETRY_ON_REFUSED_STREAM |
                    WEFT_RETRY_ON_GATEWAY_ERROR);
  g_assert_cmpuint (test_rule (&t, 0, 2)->order, ==, 2);
}

static const char *
test_header (gpointer data, const char *name)
{
  return g_ascii_strcasecmp (name, "x-canary") == 0 ? data : NULL;
}

static const char *
test_route (TestSettings *t, const char *method, const char *host, const char *target,
            const char *canary)
{
  g_autoptr(WeftRouteScratch) scratch = weft_route_scratch_new (t->config->table);
  WeftRouteView view;
  const WeftRouteRule *rule;

  weft_route_view_init (&view, method, host, target, test_header, (gpointer) canary);
  rule = weft_route_table_match (t->config->table, scratch, &view, NULL);
  return rule != NULL ? rule->action->name : NULL;
}

/* from YAML to a match, no running weft needed */
static void
test_end_to_end (void)
{
  g_auto(TestSettings) t = { NULL, NULL };

  test_settings_ok (&t,
    "router:\n"
    "  virtual_hosts:\n"
    "    - domains: [reviews, \"reviews:9080\"]\n"
    "      routes:\n"
    "        - {name: canary, match: {headers: [{name: x-canary, exact: \"1\"}]}, upstream: v2}\n"
    "        - {name: api, match: {path: {segment_prefix: /api}, method: [GET, HEAD]}, upstream: v1}\n"
    "        - {name: rest, upstream: v1}\n"
    "    - domains: [\"*\"]\n"
    "      routes:\n"
    "        - {name: nothing, direct_response: {status: 404}}\n");
  g_assert_cmpstr (test_route (&t, "GET", "reviews:9080", "/api/x", "1"), ==, "canary");
  g_assert_cmpstr (test_route (&t, "GET", "Reviews", "/api/x?y", NULL), ==, "api");
  g_assert_cmpstr (test_route (&t, "HEAD", "reviews", "/api", NULL), ==, "api");
  g_assert_cmpstr (test_route (&t, "POST", "reviews", "/api", NULL), ==, "rest");
  g_assert_cmpstr (test_route (&t, "GET", "reviews", "/apix", NULL), ==, "rest");
  g_assert_cmpstr (test_route (&t, "GET", "ratings", "/api", NULL), ==, "nothing");
}

static void
test_policies (void)
{
  g_auto(TestSettings) t = { NULL, NULL };
  WeftUpstreamPolicy *p;

  test_settings_ok (&t,
    "router:\n"
    "  upstream_policies:\n"
    "    - upstream: reviews\n"
    "      host: reviews.prod.svc.cluster.local\n"
    "      load_balancer: {policy: ring_hash, hash_on: {header: X-User}, table_size: 4096}\n"
    "      outlier: {consecutive_5xx: 5, consecutive_gateway_errors: 3, base_ejection: 30s,\n"
    "                max_ejection_percent: 50}\n"
    "      pool: {connect_timeout: 1s, max_requests: 100, max_requests_per_connection: 10}\n"
    "    - upstream: ratings\n"
    "      load_balancer: {policy: least_request}\n");
  g_assert_cmpuint (t.config->policies->len, ==, 2);
  p = t.config->policies->pdata[0];
  g_assert_cmpstr (p->upstream, ==, "reviews");
  g_assert_cmpstr (p->host, ==, "reviews.prod.svc.cluster.local");
  g_assert_true (p->has_lb);
  g_assert_cmpint (p->lb.policy, ==, WEFT_LB_RING_HASH);
  g_assert_cmpint (p->lb.hash_on, ==, WEFT_HASH_ON_HEADER);
  g_assert_cmpstr (p->hash_key, ==, "x-user");
  g_assert_cmpuint (p->lb.table_size, ==, 4096);
  g_assert_true (p->has_outlier);
  g_assert_cmpuint (p->outlier.consecutive_5xx, ==, 5);
  g_assert_cmpuint (p->outlier.consecutive_gateway_errors, ==, 3);
  g_assert_cmpuint (p->outlier.base_ejection_ms, ==, 30000);
  g_assert_cmpuint (p->outlier.max_ejection_percent, ==, 50);
  g_assert_true (p->has_pool);
  g_assert_cmpuint (p->pool.connect_timeout_ms, ==, 1000);
  g_assert_cmpuint (p->pool.max_requests, ==, 100);
  g_assert_cmpuint (p->pool.max_requests_per_connection, ==, 10);
  p = t.config->policies->pdata[1];
  g_assert_cmpint (p->lb.policy, ==, WEFT_LB_LEAST_REQUEST);
  g_assert_false (p->has_outlier);
}

static void
test_empty (void)
{
  g_auto(TestSettings) t = { NULL, NULL };
  g_auto(TestSettings) t2 = { NULL, NULL };

  test_settings_ok (&t, "router:\n");
  g_assert_cmpuint (t.config->vhosts->len, ==, 0);
  g_assert_nonnull (t.config->table);
  test_settings_ok (&t2, "router: {virtual_hosts: []}\n");
  g_assert_cmpuint (t2.config->vhosts->len, ==, 0);
}

/* ------------------------------------------------------------------ */

#define VH "router:\n  virtual_hosts:\n    - domains: [a]\n      routes:\n"

static const struct {
  const char *yaml;
  const char *error;
} error_cases[] = {
  { "router: {virtual_hosts: [], upstreams: []}\n",
    "router.yaml:1:29: unknown key 'upstreams'" },
  { VH "        - {upstreem: a}\n",
    "router.yaml:5:12: unknown key 'upstreem' (did you mean 'upstream'?)" },
  { VH "        - {name: r}\n",
    "router.yaml:5:11: a route needs exactly one of: upstream, split, redirect, direct_response" },
  { VH "        - {upstream: a, split: [{upstream: b, weight: 1}]}\n",
    "router.yaml:5:11: a route needs exactly one of:" },
  { VH "        - {upstream: a, fault: {delay: {fixed: 1s, percent: 101}}}\n",
    "router.yaml:5:61: 'percent' must be a percentage from 0 to 100" },
  { VH "        - {upstream: a, mirror: {upstream: b, percent: -1}}\n",
    "router.yaml:5:56: 'percent' must be a percentage from 0 to 100" },
  { VH "        - {upstream: a, mirror: [{upstream: b}, {upstream: c}, {upstream: d}, "
       "{upstream: e}, {upstream: f}]}\n",
    "router.yaml:5:33: at most 4 mirrors per route" },
  { VH "        - {upstream: a, fault: {abort: {percent: 5}}}\n",
    "router.yaml:5:40: a fault abort is missing 'status'" },
  { VH "        - {split: [{upstream: b, weight: 0}, {upstream: c, weight: 0}]}\n",
    "router.yaml:5:11: at least one destination needs a weight above 0" },
  { VH "        - {split: [{upstream: b}]}\n",
    "router.yaml:5:20: a split entry is missing 'weight'" },
  { VH "        - {split: [{upstream: b, weight: 1}], port: 80}\n",
    "router.yaml:5:53: 'port' goes with 'upstream'" },
  { VH "        - {upstream: a, port: 70000}\n",
    "router.yaml:5:31: 'port' must be between 1 and 65535" },
  { VH "        - {upstream: a, match: {path: {prefix: /a, exact: /b}}}\n",
    "router.yaml:5:39: a path match needs exactly one of: exact, prefix, segment_prefix, regex" },
  { VH "        - {upstream: a, match: {path: {prefix: a}}}\n",
    "router.yaml:5:48: a path must start with '/'" },
  { VH "        - {upstream: a, match: {path: /a}}\n",
    "router.yaml:5:39: expected a mapping, got a scalar" },
  { VH "        - {upstream: a, match: {path: {regex: '/(a'}}}\n",
    "router.yaml:5:47: invalid regex '/(a': missing closing parenthesis at offset 3" },
  { VH "        - {upstream: a, match: {headers: [{name: x, regex: '[a'}]}}\n",
    "router.yaml:5:60: invalid regex '[a': missing terminating ] for character class" },
  { VH "        - {upstream: a, match: {headers: [{name: x, exact: a, prefix: b}]}}\n",
    "router.yaml:5:43: a header match needs exactly one of: exact, prefix, regex, present, absent" },
  { VH "        - {upstream: a, match: {headers: [{exact: a}]}}\n",
    "router.yaml:5:43: a header match is missing 'name'" },
  { VH "        - {upstream: a, match: {headers: [{name: 'x y', exact: a}]}}\n",
    "router.yaml:5:50: 'x y' is not a valid header name" },
  { VH "        - {upstream: a, match: {method: []}}\n",
    "router.yaml:5:41: the method list is empty" },
  { VH "        - {upstream: a, match: []}\n",
    "router.yaml:5:32: the match list is empty" },
  { VH "        - {upstream: a, retries: {per_try_timeout: 1s}}\n",
    "router.yaml:5:34: retries is missing 'attempts'" },
  { VH "        - {upstream: a, retries: {attempts: 2, retry_on: [5xx, teapot]}}\n",
    "router.yaml:5:64: unknown retry_on value 'teapot'" },
  { VH "        - {upstream: a, retries: {attempts: 2, retry_on: [500, 501, 502, 503, 504, 505, "
       "506, 507, 508, 509, 510, 511, 512, 513, 514, 515, 516]}}\n",
    "router.yaml:5:139: at most 16 retry statuses" },
  { VH "        - {upstream: a, retries: {attempts: 2, budget: {ratio: 2}}}\n",
    "router.yaml:5:64: 'ratio' must be above 0 and at most 1" },
  { VH "        - {redirect: {status: 305}}\n",
    "router.yaml:5:31: a redirect status must be 301, 302, 303, 307 or 308" },
  { VH "        - {redirect: {path: /a, prefix: /b}}\n",
    "router.yaml:5:22: a redirect needs at most one of: path, prefix" },
  { VH "        - {direct_response: {status: 600}}\n",
    "router.yaml:5:38: 'status' must be between 200 and 599" },
  { VH "        - {direct_response: {status: 200}, rewrite: {path: /x}}\n",
    "router.yaml:5:53: 'rewrite' applies only to routes with an upstream or split" },
  { VH "        - {upstream: a, rewrite: {path: /x, prefix: /y}}\n",
    "router.yaml:5:34: a rewrite needs at most one of: prefix, path, regex" },
  { VH "        - {upstream: a, rewrite: {regex: {pattern: '(', substitution: x}}}\n",
    "router.yaml:5:52: invalid regex '(': missing closing parenthesis at offset 1" },
  { VH "        - {upstream: a, request_headers: {set: {'bad header': x}}}\n",
    "router.yaml:5:49: 'bad header' is not a valid header name" },
  { VH "        - {upstream: a, request_headers: {sett: {a: b}}}\n",
    "router.yaml:5:43: unknown key 'sett' (did you mean 'set'?)" },
  { "router:\n  virtual_hosts:\n    - domains: [a, 'b*c']\n",
    "router.yaml:3:20: invalid domain 'b*c'" },
  { "router:\n  virtual_hosts:\n    - {routes: []}\n",
    "router.yaml:3:7: a virtual host is missing 'domains'" },
  { "router:\n  upstream_policies:\n    - {upstream: a, load_balancer: {policy: fastest}}\n",
    "router.yaml:3:45: unknown load balancer 'fastest'" },
  { "router:\n  upstream_policies:\n    - {upstream: a}\n    - {upstream: a}\n",
    "router.yaml:4:18: upstream 'a' has a policy already" },
};

/* every case runs, and every mismatch is reported */
static void
test_errors (void)
{
  guint failed = 0;

  for (gsize i = 0; i < G_N_ELEMENTS (error_cases); i++)
    {
      g_autofree char *message = test_settings_error (error_cases[i].yaml);

      if (g_str_has_prefix (message, error_cases[i].error))
        continue;
      g_printerr ("case %zu: got \"%s\"\n         want \"%s...\"\n", i, message,
                  error_cases[i].error);
      failed++;
    }
  g_assert_cmpuint (failed, ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/router-settings/full", test_full);
  g_test_add_func ("/router-settings/lists", test_lists);
  g_test_add_func ("/router-settings/end-to-end", test_end_to_end);
  g_test_add_func ("/router-settings/policies", test_policies);
  g_test_add_func ("/router-settings/empty", test_empty);
  g_test_add_func ("/router-settings/errors", test_errors);
  return g_test_run ();
}
