/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The route table on intermediate-form configs built by hand: virtual host
 * choice, first match wins across the index, every condition kind, regex
 * errors, and 10,000 rules.
 */
#include <string.h>
#include <glib.h>

#include "weft-node-private.h"
#include "weft-route-table-private.h"

typedef struct {
  const char *name;
  const char *value;
} TestHeader;

typedef struct {
  WeftRouterConfig *config;
  WeftRouteScratch *scratch;
} TestTable;

static const char *
test_header (gpointer data, const char *name)
{
  for (const TestHeader *h = data; h != NULL && h->name != NULL; h++)
    if (g_ascii_strcasecmp (h->name, name) == 0)
      return h->value;
  return NULL;
}

static WeftVirtualHost *
test_vhost (WeftRouterConfig *config, const char *name, const char *domains)
{
  g_auto(GStrv) list = g_strsplit (domains, ",", -1);

  return weft_router_config_vhost (config, name, (const char *const *) list,
                                   g_strv_length (list), NULL);
}

/* a rule named @name going to upstream @name, with a path condition */
static WeftRouteRule *
test_rule (WeftVirtualHost *vhost, const char *name, WeftStrMatchKind kind, const char *path)
{
  WeftRouteAction *action = weft_route_action_new (NULL);
  WeftRouteRule *rule;

  action->name = g_strdup (name);
  g_ptr_array_add (action->dests, weft_route_dest_new (name, NULL, 0, 1, NULL));
  rule = weft_route_rule_new (action, NULL);
  weft_route_action_unref (action);
  rule->match.path.kind = kind;
  rule->match.path.value = g_strdup (path);
  weft_vhost_add_rule (vhost, rule);
  return rule;
}

static void
test_table_finish (TestTable *t)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (weft_router_config_finish (t->config, &error));
  g_assert_no_error (error);
  t->scratch = weft_route_scratch_new (t->config->table);
}

static void
test_table_clear (TestTable *t)
{
  weft_route_scratch_free (t->scratch);
  weft_router_config_free (t->config);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (TestTable, test_table_clear)

/* the name of the rule that matches, or NULL */
static const char *
test_match_full (TestTable *t, const char *method, const char *host, const char *target,
                 const TestHeader *headers)
{
  WeftRouteView view;
  const WeftRouteRule *rule;

  weft_route_view_init (&view, method, host, target, test_header, (gpointer) headers);
  rule = weft_route_table_match (t->config->table, t->scratch, &view, NULL);
  return rule != NULL ? rule->action->name : NULL;
}

static const char *
test_match (TestTable *t, const char *host, const char *target)
{
  return test_match_full (t, "GET", host, target, NULL);
}

/* the virtual host's name, or NULL */
static const char *
test_vhost_of (TestTable *t, const char *host)
{
  WeftRouteView view;
  const WeftVirtualHost *vhost = NULL;

  weft_route_view_init (&view, "GET", host, "/", NULL, NULL);
  weft_route_table_match (t->config->table, t->scratch, &view, &vhost);
  return vhost != NULL ? vhost->name : NULL;
}

/* ------------------------------------------------------------------ */

static void
test_vhost_exact (void)
{
  g_auto(TestTable) t = { weft_router_config_new (NULL), NULL };

  test_rule (test_vhost (t.config, "a", "a.example,A2.example"), "ra", WEFT_STR_ANY, NULL);
  test_rule (test_vhost (t.config, "b", "b.example"), "rb", WEFT_STR_ANY, NULL);
  test_table_finish (&t);

  g_assert_cmpstr (test_vhost_of (&t, "a.example"), ==, "a");
  g_assert_cmpstr (test_vhost_of (&t, "A.Example"), ==, "a");
  g_assert_cmpstr (test_vhost_of (&t, "a2.example"), ==, "a");
  g_assert_cmpstr (test_vhost_of (&t, "b.example:8080"), ==, "b");
  g_assert_cmpstr (test_vhost_of (&t, "b.example."), ==, "b");
  g_assert_null (test_vhost_of (&t, "c.example"));
  g_assert_null (test_vhost_of (&t, NULL));
  g_assert_null (test_match (&t, "c.example", "/"));
  g_assert_cmpstr (test_match (&t, "b.example", "/"), ==, "rb");
}

static void
test_vhost_port (void)
{
  g_auto(TestTable) t = { weft_router_config_new (NULL), NULL };

  test_vhost (t.config, "with-port", "svc:8080");
  test_vhost (t.config, "host-only", "svc");
  test_vhost (t.config, "v6", "[::1]");
  test_vhost (t.config, "v6-port", "[::1]:8080");
  test_table_finish (&t);

  g_assert_cmpstr (test_vhost_of (&t, "svc:8080"), ==, "with-port");
  g_assert_cmpstr (test_vhost_of (&t, "SVC:8080"), ==, "with-port");
  g_assert_cmpstr (test_vhost_of (&t, "svc:9090"), ==, "host-only");
  g_assert_cmpstr (test_vhost_of (&t, "svc"), ==, "host-only");
  g_assert_cmpstr (test_vhost_of (&t, "[::1]:80"), ==, "v6");
  g_assert_cmpstr (test_vhost_of (&t, "[::1]"), ==, "v6");
  g_assert_cmpstr (test_vhost_of (&t, "[::1]:8080"), ==, "v6-port");
}

static void
test_vhost_wildcard (void)
{
  g_auto(TestTable) t = { weft_router_config_new (NULL), NULL };

  test_vhost (t.config, "short", "*.example.com");
  test_vhost (t.config, "long", "*.b.example.com");
  test_vhost (t.config, "exact", "b.example.com");
  test_vhost (t.config, "any", "*");
  test_table_finish (&t);

  g_assert_cmpstr (test_vhost_of (&t, "x.b.example.com"), ==, "long");
  g_assert_cmpstr (test_vhost_of (&t, "y.x.b.example.com:80"), ==, "long");
  g_assert_cmpstr (test_vhost_of (&t, "x.example.com"), ==, "short");
  g_assert_cmpstr (test_vhost_of (&t, "a.c.example.com"), ==, "short");
  g_assert_cmpstr (test_vhost_of (&t, "b.example.com"), ==, "exact");
  /* the wildcard needs a label in front */
  g_assert_cmpstr (test_vhost_of (&t, "example.com"), ==, "any");
  g_assert_cmpstr (test_vhost_of (&t, ".example.com"), ==, "any");
  g_assert_cmpstr (test_vhost_of (&t, "other"), ==, "any");
  g_assert_cmpstr (test_vhost_of (&t, NULL), ==, "any");
}

/* a domain served twice: the first virtual host keeps it */
static void
test_vhost_first_wins (void)
{
  g_auto(TestTable) t = { weft_router_config_new (NULL), NULL };

  test_vhost (t.config, "first", "a,b");
  test_vhost (t.config, "second", "b,c");
  test_table_finish (&t);

  g_assert_cmpstr (test_vhost_of (&t, "b"), ==, "first");
  g_assert_cmpstr (test_vhost_of (&t, "c"), ==, "second");
}

static void
test_vhost_bad_domain (void)
{
  const char *bad[] = { "a*.example", "*.", "svc:0", "svc:99999", "svc:http", "[::1", "a b",
                        "*.ex:80", "" };

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      WeftRouterConfig *config = weft_router_config_new (NULL);
      const char *domains[] = { bad[i] };

      weft_router_config_vhost (config, "x", domains, 1, NULL);
      g_assert_false (weft_router_config_finish (config, &error));
      g_assert_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG);
      g_assert_nonnull (strstr (error->message, "invalid domain"));
      weft_router_config_free (config);
    }
  g_assert_true (weft_route_domain_valid ("*"));
  g_assert_true (weft_route_domain_valid ("*.a.b"));
  g_assert_true (weft_route_domain_valid ("svc:8080"));
  g_assert_true (weft_route_domain_valid ("[fe80::1]:443"));
}

/* ------------------------------------------------------------------ */

static void
test_first_match_wins (void)
{
  g_auto(TestTable) t = { weft_router_config_new (NULL), NULL };
  WeftVirtualHost *vh = test_vhost (t.config, "v", "*");

  test_rule (vh, "regex", WEFT_STR_REGEX, "/api/v[0-9]+/.*");
  test_rule (vh, "prefix", WEFT_STR_PREFIX, "/api");
  test_rule (vh, "exact", WEFT_STR_EXACT, "/api/v1/x");
  test_rule (vh, "deeper", WEFT_STR_PREFIX, "/api/v2");
  test_rule (vh, "exact2", WEFT_STR_EXACT, "/exact");
  test_rule (vh, "any", WEFT_STR_ANY, NULL);
  test_rule (vh, "never", WEFT_STR_EXACT, "/exact");
  test_table_finish (&t);

  g_assert_cmpstr (test_match (&t, "h", "/api/v1/x"), ==, "regex");
  g_assert_cmpstr (test_match (&t, "h", "/api/v2/y?q=1"), ==, "regex");
  g_assert_cmpstr (test_match (&t, "h", "/api/v2"), ==, "prefix");
  g_assert_cmpstr (test_match (&t, "h", "/api"), ==, "prefix");
  g_assert_cmpstr (test_match (&t, "h", "/apis"), ==, "prefix");
  g_assert_cmpstr (test_match (&t, "h", "/exact"), ==, "exact2");
  g_assert_cmpstr (test_match (&t, "h", "/exact?x"), ==, "exact2");
  g_assert_cmpstr (test_match (&t, "h", "/exact/"), ==, "any");
  g_assert_cmpstr (test_match (&t, "h", "/"), ==, "any");
  g_assert_cmpstr (test_match (&t, "h", "/ap"), ==, "any");
}

/* the same paths in the other order: the index must not reorder */
static void
test_first_match_reversed (void)
{
  g_auto(TestTable) t = { weft_router_config_new (NULL), NULL };
  WeftVirtualHost *vh = test_vhost (t.config, "v", "*");

  test_rule (vh, "any-get", WEFT_STR_ANY, NULL)->match.method =
    (WeftStrMatch) { .kind = WEFT_STR_EXACT, .value = g_strdup ("DELETE") };
  test_rule (vh, "exact", WEFT_STR_EXACT, "/api/v1/x");
  test_rule (vh, "deeper", WEFT_STR_PREFIX, "/api/v1");
  test_rule (vh, "prefix", WEFT_STR_PREFIX, "/api");
  test_rule (vh, "regex", WEFT_STR_REGEX, "/api/v[0-9]+/.*");
  test_rule (vh, "root", WEFT_STR_PREFIX, "/");
  test_table_finish (&t);

  g_assert_cmpstr (test_match (&t, "h", "/api/v1/x"), ==, "exact");
  g_assert_cmpstr (test_match (&t, "h", "/api/v1/y"), ==, "deeper");
  g_assert_cmpstr (test_match (&t, "h", "/api/v3/y"), ==, "prefix");
  g_assert_cmpstr (test_match (&t, "h", "/x"), ==, "root");
  g_assert_cmpstr (test_match_full (&t, "DELETE", "h", "/api/v1/x", NULL), ==, "any-get");
}

static void
test_segment_prefix (void)
{
  g_auto(TestTable) t = { weft_router_config_new (NULL), NULL };
  WeftVirtualHost *vh = test_vhost (t.config, "v", "*");

  test_rule (vh, "foo", WEFT_STR_PREFIX, "/foo")->match.path.segment_prefix = TRUE;
  test_rule (vh, "bar", WEFT_STR_PREFIX, "/bar/")->match.path.segment_prefix = TRUE;
  test_rule (vh, "plain", WEFT_STR_PREFIX, "/foo");
  test_rule (vh, "root", WEFT_STR_PREFIX, "/")->match.path.segment_prefix = TRUE;
  test_table_finish (&t);

  g_assert_cmpstr (test_match (&t, "h", "/foo"), ==, "foo");
  g_assert_cmpstr (test_match (&t, "h", "/foo/"), ==, "foo");
  g_assert_cmpstr (test_match (&t, "h", "/foo/bar"), ==, "foo");
  g_assert_cmpstr (test_match (&t, "h", "/foo?x=1"), ==, "foo");
  g_assert_cmpstr (test_match (&t, "h", "/foobar"), ==, "plain");
  g_assert_cmpstr (test_match (&t, "h", "/bar"), ==, "bar");
  g_assert_cmpstr (test_match (&t, "h", "/bar/x"), ==, "bar");
  g_assert_cmpstr (test_match (&t, "h", "/barn"), ==, "root");
  g_assert_cmpstr (test_match (&t, "h", "/"), ==, "root");
}

static void
test_ignore_case (void)
{
  g_auto(TestTable) t = { weft_router_config_new (NULL), NULL };
  WeftVirtualHost *vh = test_vhost (t.config, "v", "*");

  test_rule (vh, "cs", WEFT_STR_EXACT, "/Admin");
  test_rule (vh, "ci", WEFT_STR_EXACT, "/Admin")->match.path.ignore_case = TRUE;
  test_rule (vh, "ci-prefix", WEFT_STR_PREFIX, "/API/")->match.path.ignore_case = TRUE;
  test_rule (vh, "ci-regex", WEFT_STR_REGEX, "/u/[a-z]+")->match.path.ignore_case = TRUE;
  WeftRouteRule *seg = test_rule (vh, "seg", WEFT_STR_PREFIX, "/Docs");
  seg->match.path.ignore_case = TRUE;
  seg->match.path.segment_prefix = TRUE;
  test_table_finish (&t);

  g_assert_cmpstr (test_match (&t, "h", "/Admin"), ==, "cs");
  g_assert_cmpstr (test_match (&t, "h", "/admin"), ==, "ci");
  g_assert_cmpstr (test_match (&t, "h", "/ADMIN?x"), ==, "ci");
  g_assert_cmpstr (test_match (&t, "h", "/api/x"), ==, "ci-prefix");
  g_assert_cmpstr (test_match (&t, "h", "/Api/x"), ==, "ci-prefix");
  g_assert_cmpstr (test_match (&t, "h", "/U/ABC"), ==, "ci-regex");
  g_assert_cmpstr (test_match (&t, "h", "/docs/a"), ==, "seg");
  g_assert_cmpstr (test_match (&t, "h", "/DOCS"), ==, "seg");
  g_assert_null (test_match (&t, "h", "/docsx"));
}

static void
test_method (void)
{
  g_auto(TestTable) t = { weft_router_config_new (NULL), NULL };
  WeftVirtualHost *vh = test_vhost (t.config, "v", "*");

  test_rule (vh, "get", WEFT_STR_PREFIX, "/")->match.method =
    (WeftStrMatch) { .kind = WEFT_STR_EXACT, .value = g_strdup ("GET") };
  test_rule (vh, "read", WEFT_STR_PREFIX, "/")->match.method =
    (WeftStrMatch) { .kind = WEFT_STR_REGEX, .value = g_strdup ("HEAD|OPTIONS") };
  test_rule (vh, "other", WEFT_STR_PREFIX, "/");
  test_table_finish (&t);

  g_assert_cmpstr (test_match_full (&t, "GET", "h", "/", NULL), ==, "get");
  g_assert_cmpstr (test_match_full (&t, "get", "h", "/", NULL), ==, "other");
  g_assert_cmpstr (test_match_full (&t, "HEAD", "h", "/", NULL), ==, "read");
  g_assert_cmpstr (test_match_full (&t, "OPTIONS", "h", "/", NULL), ==, "read");
  /* regexes match the whole value */
  g_assert_cmpstr (test_match_full (&t, "HEADX", "h", "/", NULL), ==, "other");
  g_assert_cmpstr (test_match_full (&t, "POST", "h", "/", NULL), ==, "other");
}

static WeftNamedMatch *
test_named (WeftRouteRule *rule, gboolean header, const char *name, WeftStrMatchKind kind,
            const char *value)
{
  WeftNamedMatch *nm = weft_named_match_new (name, kind, value);

  g_ptr_array_add (header ? rule->match.headers : rule->match.query, nm);
  return nm;
}

static void
test_headers (void)
{
  g_auto(TestTable) t = { weft_router_config_new (NULL), NULL };
  WeftVirtualHost *vh = test_vhost (t.config, "v", "*");
  const TestHeader en[] = { { "Accept-Language", "en-GB" }, { NULL, NULL } };
  const TestHeader fr[] = { { "accept-language", "fr-FR" }, { NULL, NULL } };
  const TestHeader beta[] = { { "x-user", "beta-42" }, { NULL, NULL } };
  const TestHeader canary[] = { { "x-canary", "" }, { "x-env", "prod" }, { NULL, NULL } };
  const TestHeader debug[] = { { "x-debug", "1" }, { "x-env", "staging" }, { NULL, NULL } };
  const TestHeader ci[] = { { "x-env", "STAGING" }, { NULL, NULL } };

  test_named (test_rule (vh, "exact", WEFT_STR_ANY, NULL), TRUE, "accept-language",
              WEFT_STR_EXACT, "en-GB");
  test_named (test_rule (vh, "prefix", WEFT_STR_ANY, NULL), TRUE, "accept-language",
              WEFT_STR_PREFIX, "fr");
  test_named (test_rule (vh, "regex", WEFT_STR_ANY, NULL), TRUE, "x-user",
              WEFT_STR_REGEX, "beta-[0-9]+");
  test_named (test_rule (vh, "present", WEFT_STR_ANY, NULL), TRUE, "x-canary",
              WEFT_STR_PRESENT, NULL);
  /* absent x-debug and x-env not staging (inverted exact) */
  WeftRouteRule *r = test_rule (vh, "absent-invert", WEFT_STR_PREFIX, "/p");
  test_named (r, TRUE, "x-debug", WEFT_STR_ABSENT, NULL);
  test_named (r, TRUE, "x-env", WEFT_STR_EXACT, "staging")->match.invert = TRUE;
  test_named (test_rule (vh, "ci", WEFT_STR_ANY, NULL), TRUE, "x-env",
              WEFT_STR_EXACT, "staging")->match.ignore_case = TRUE;
  test_rule (vh, "fallback", WEFT_STR_ANY, NULL);
  test_table_finish (&t);

  g_assert_cmpstr (test_match_full (&t, "GET", "h", "/", en), ==, "exact");
  g_assert_cmpstr (test_match_full (&t, "GET", "h", "/", fr), ==, "prefix");
  g_assert_cmpstr (test_match_full (&t, "GET", "h", "/", beta), ==, "regex");
  g_assert_cmpstr (test_match_full (&t, "GET", "h", "/", canary), ==, "present");
  /* no headers at all: x-debug absent, x-env missing so "not staging" holds */
  g_assert_cmpstr (test_match_full (&t, "GET", "h", "/p", NULL), ==, "absent-invert");
  /* x-debug present: on to the next rule, which x-env: staging matches */
  g_assert_cmpstr (test_match_full (&t, "GET", "h", "/p", debug), ==, "ci");
  g_assert_cmpstr (test_match_full (&t, "GET", "h", "/p", ci), ==, "absent-invert");
  g_assert_cmpstr (test_match_full (&t, "GET", "h", "/", ci), ==, "ci");
  g_assert_cmpstr (test_match_full (&t, "GET", "h", "/", NULL), ==, "fallback");
}

static void
test_query (void)
{
  g_auto(TestTable) t = { weft_router_config_new (NULL), NULL };
  WeftVirtualHost *vh = test_vhost (t.config, "v", "*");

  test_named (test_rule (vh, "exact", WEFT_STR_ANY, NULL), FALSE, "debug", WEFT_STR_EXACT, "1");
  test_named (test_rule (vh, "regex", WEFT_STR_ANY, NULL), FALSE, "id", WEFT_STR_REGEX,
              "[0-9]+");
  test_named (test_rule (vh, "present", WEFT_STR_ANY, NULL), FALSE, "flag", WEFT_STR_PRESENT,
              NULL);
  test_named (test_rule (vh, "raw", WEFT_STR_ANY, NULL), FALSE, "q", WEFT_STR_EXACT, "a%20b");
  test_rule (vh, "fallback", WEFT_STR_ANY, NULL);
  test_table_finish (&t);

  g_assert_cmpstr (test_match (&t, "h", "/?debug=1"), ==, "exact");
  g_assert_cmpstr (test_match (&t, "h", "/x?a=2&debug=1&b"), ==, "exact");
  g_assert_cmpstr (test_match (&t, "h", "/?debug=10"), ==, "fallback");
  /* the first parameter of that name counts */
  g_assert_cmpstr (test_match (&t, "h", "/?debug=0&debug=1"), ==, "fallback");
  g_assert_cmpstr (test_match (&t, "h", "/?xdebug=1"), ==, "fallback");
  g_assert_cmpstr (test_match (&t, "h", "/?id=123"), ==, "regex");
  g_assert_cmpstr (test_match (&t, "h", "/?id=12a"), ==, "fallback");
  g_assert_cmpstr (test_match (&t, "h", "/?flag"), ==, "present");
  g_assert_cmpstr (test_match (&t, "h", "/?a=1&flag="), ==, "present");
  g_assert_cmpstr (test_match (&t, "h", "/?flags"), ==, "fallback");
  /* raw, not percent-decoded */
  g_assert_cmpstr (test_match (&t, "h", "/?q=a%20b"), ==, "raw");
  g_assert_cmpstr (test_match (&t, "h", "/"), ==, "fallback");
}

static void
test_authority (void)
{
  g_auto(TestTable) t = { weft_router_config_new (NULL), NULL };
  WeftVirtualHost *vh = test_vhost (t.config, "v", "*");

  test_rule (vh, "api", WEFT_STR_ANY, NULL)->match.authority =
    (WeftStrMatch) { .kind = WEFT_STR_EXACT, .value = g_strdup ("api.example"),
                     .ignore_case = TRUE };
  test_rule (vh, "other", WEFT_STR_ANY, NULL);
  test_table_finish (&t);

  g_assert_cmpstr (test_match (&t, "API.example:8443", "/"), ==, "api");
  g_assert_cmpstr (test_match (&t, "www.example", "/"), ==, "other");
}

/* a regex that does not compile fails at its node's file:line:col */
static void
test_regex_error (void)
{
  static const char yaml[] = "routes:\n  - regex: '/a/(b'\n";
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftNodeFile) file = weft_node_file_load_data ("bad.yaml", yaml, strlen (yaml),
                                                           &error);
  const WeftNode *root = weft_node_file_get_document (file, 0);
  const WeftNode *item = weft_node_get_item (weft_node_lookup (root, "routes"), 0);
  WeftRouterConfig *config = weft_router_config_new (NULL);
  WeftRouteRule *rule = test_rule (test_vhost (config, "v", "*"), "r", WEFT_STR_REGEX, "/a/(b");

  rule->match.path.node = weft_node_lookup (item, "regex");
  g_assert_false (weft_router_config_finish (config, &error));
  g_assert_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG);
  g_test_message ("%s", error->message);
  g_assert_true (g_str_has_prefix (error->message, "bad.yaml:2:12: invalid regex '/a/(b': "));
  g_assert_nonnull (strstr (error->message, "missing closing parenthesis at offset 5"));
  weft_router_config_free (config);
}

static void
test_checks (void)
{
  g_autoptr(GError) error = NULL;
  WeftRouterConfig *config;
  WeftRouteRule *rule;

  /* every weight 0 */
  config = weft_router_config_new (NULL);
  rule = test_rule (test_vhost (config, "v", "*"), "r", WEFT_STR_ANY, NULL);
  ((WeftRouteDest *) rule->action->dests->pdata[0])->weight = 0;
  g_assert_false (weft_router_config_finish (config, &error));
  g_assert_nonnull (strstr (error->message, "weight above 0"));
  g_clear_error (&error);
  weft_router_config_free (config);

  /* both a destination and a direct response */
  config = weft_router_config_new (NULL);
  rule = test_rule (test_vhost (config, "v", "*"), "r", WEFT_STR_ANY, NULL);
  rule->action->direct_status = 200;
  g_assert_false (weft_router_config_finish (config, &error));
  g_assert_nonnull (strstr (error->message, "exactly one of"));
  g_clear_error (&error);
  weft_router_config_free (config);

  /* a fault percentage over 100 */
  config = weft_router_config_new (NULL);
  rule = test_rule (test_vhost (config, "v", "*"), "r", WEFT_STR_ANY, NULL);
  rule->action->abort_percent = 100.5;
  rule->action->abort_status = 503;
  g_assert_false (weft_router_config_finish (config, &error));
  g_assert_nonnull (strstr (error->message, "from 0 to 100"));
  g_clear_error (&error);
  weft_router_config_free (config);

  /* a header name that is no token */
  config = weft_router_config_new (NULL);
  rule = test_rule (test_vhost (config, "v", "*"), "r", WEFT_STR_ANY, NULL);
  weft_header_ops_set (&rule->action->request_headers, "x bad", "1");
  g_assert_false (weft_router_config_finish (config, &error));
  g_assert_nonnull (strstr (error->message, "not a valid header name"));
  g_clear_error (&error);
  weft_router_config_free (config);

  /* a present condition on the path means nothing */
  config = weft_router_config_new (NULL);
  test_rule (test_vhost (config, "v", "*"), "r", WEFT_STR_PRESENT, NULL);
  g_assert_false (weft_router_config_finish (config, &error));
  g_assert_nonnull (strstr (error->message, "path match must be"));
  g_clear_error (&error);
  weft_router_config_free (config);
}

/* weights are doubles on any scale: 999 to 1 is 999/1000 exactly */
static void
test_weights (void)
{
  g_auto(TestTable) t = { weft_router_config_new (NULL), NULL };
  WeftRouteRule *rule = test_rule (test_vhost (t.config, "v", "*"), "r", WEFT_STR_ANY, NULL);
  WeftRouteAction *a = rule->action;

  ((WeftRouteDest *) a->dests->pdata[0])->weight = 999;
  g_ptr_array_add (a->dests, weft_route_dest_new ("zero", NULL, 0, 0, NULL));
  g_ptr_array_add (a->dests, weft_route_dest_new ("one", NULL, 0, 1, NULL));
  test_table_finish (&t);

  g_assert_cmpfloat (((WeftRouteDest *) a->dests->pdata[0])->cumulative, ==, 999);
  g_assert_cmpfloat (((WeftRouteDest *) a->dests->pdata[1])->cumulative, ==, 999);
  g_assert_cmpfloat (((WeftRouteDest *) a->dests->pdata[2])->cumulative, ==, 1000);
  g_assert_true (((WeftRouteDest *) a->dests->pdata[2])->action == a);
}

static void
test_host_valid (void)
{
  g_assert_true (weft_route_host_valid ("reviews"));
  g_assert_true (weft_route_host_valid ("reviews.default.svc.cluster.local."));
  g_assert_true (weft_route_host_valid ("10.0.0.1"));
  g_assert_true (weft_route_host_valid ("::1"));
  g_assert_false (weft_route_host_valid (""));
  g_assert_false (weft_route_host_valid ("a_b"));
  g_assert_false (weft_route_host_valid ("-a"));
  g_assert_false (weft_route_host_valid ("a..b"));
  g_assert_false (weft_route_host_valid ("10.0.0.256"));
  g_assert_false (weft_route_host_valid ("svc:80"));
}

/* ------------------------------------------------------------------ */

/* 10,000 rules over 4 hosts: distinct prefixes and exact paths; the right
 * one is found whatever its position */
static void
test_many (void)
{
  g_auto(TestTable) t = { weft_router_config_new (NULL), NULL };
  WeftVirtualHost *hosts[4];

  for (guint h = 0; h < G_N_ELEMENTS (hosts); h++)
    {
      g_autofree char *name = g_strdup_printf ("host%u", h);
      hosts[h] = test_vhost (t.config, name, name);
    }
  for (guint i = 0; i < 10000; i++)
    {
      g_autofree char *name = g_strdup_printf ("r%u", i);
      g_autofree char *path = g_strdup_printf (i % 2 ? "/svc/%u/" : "/svc/%u/exact", i);
      test_rule (hosts[i % 4], name, i % 2 ? WEFT_STR_PREFIX : WEFT_STR_EXACT, path);
    }
  test_rule (hosts[3], "catch-all", WEFT_STR_PREFIX, "/");
  test_table_finish (&t);

  g_assert_cmpuint (weft_route_table_get_n_rules (t.config->table), ==, 10001);
  for (guint i = 0; i < 10000; i += 37)
    {
      g_autofree char *host = g_strdup_printf ("host%u", i % 4);
      g_autofree char *path = g_strdup_printf (i % 2 ? "/svc/%u/deeper?x=1" : "/svc/%u/exact",
                                               i);
      g_autofree char *want = g_strdup_printf ("r%u", i);
      g_assert_cmpstr (test_match (&t, host, path), ==, want);
    }
  g_assert_cmpstr (test_match (&t, "host3", "/svc/9999/"), ==, "r9999");
  g_assert_cmpstr (test_match (&t, "host3", "/svc/99999/"), ==, "catch-all");
  g_assert_null (test_match (&t, "host0", "/svc/1/"));
}

/* a deep path collects many candidate lists: the scratch holds them all */
static void
test_deep (void)
{
  g_auto(TestTable) t = { weft_router_config_new (NULL), NULL };
  WeftVirtualHost *vh = test_vhost (t.config, "v", "*");
  GString *path = g_string_new ("");
  WeftRouteRule *rule;

  for (guint i = 0; i < 200; i++)
    {
      g_autofree char *name = g_strdup_printf ("d%u", i);
      g_string_append_printf (path, "/%u", i);
      /* each needs a header, so the walk must go through all of them */
      rule = test_rule (vh, name, i % 3 == 0 ? WEFT_STR_PREFIX : WEFT_STR_EXACT, path->str);
      rule->match.path.ignore_case = i % 2;
      test_named (rule, TRUE, "x-want", WEFT_STR_EXACT, name);
    }
  test_table_finish (&t);

  const TestHeader want0[] = { { "x-want", "d0" }, { NULL, NULL } };
  const TestHeader want197[] = { { "x-want", "d197" }, { NULL, NULL } };
  const TestHeader want198[] = { { "x-want", "d198" }, { NULL, NULL } };
  g_autofree char *p197 = g_strndup (path->str, strstr (path->str, "/198") - path->str);

  /* d197 is an exact path: not on the longer one; d198 is a prefix */
  g_assert_null (test_match_full (&t, "GET", "h", path->str, want197));
  g_assert_cmpstr (test_match_full (&t, "GET", "h", p197, want197), ==, "d197");
  g_assert_cmpstr (test_match_full (&t, "GET", "h", path->str, want198), ==, "d198");
  g_assert_cmpstr (test_match_full (&t, "GET", "h", path->str, want0), ==, "d0");
  g_string_free (path, TRUE);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/route-table/vhost/exact", test_vhost_exact);
  g_test_add_func ("/route-table/vhost/port", test_vhost_port);
  g_test_add_func ("/route-table/vhost/wildcard", test_vhost_wildcard);
  g_test_add_func ("/route-table/vhost/first-wins", test_vhost_first_wins);
  g_test_add_func ("/route-table/vhost/bad-domain", test_vhost_bad_domain);
  g_test_add_func ("/route-table/order/first-match-wins", test_first_match_wins);
  g_test_add_func ("/route-table/order/reversed", test_first_match_reversed);
  g_test_add_func ("/route-table/path/segment-prefix", test_segment_prefix);
  g_test_add_func ("/route-table/path/ignore-case", test_ignore_case);
  g_test_add_func ("/route-table/method", test_method);
  g_test_add_func ("/route-table/headers", test_headers);
  g_test_add_func ("/route-table/query", test_query);
  g_test_add_func ("/route-table/authority", test_authority);
  g_test_add_func ("/route-table/regex-error", test_regex_error);
  g_test_add_func ("/route-table/finish-checks", test_checks);
  g_test_add_func ("/route-table/weights", test_weights);
  g_test_add_func ("/route-table/host-valid", test_host_valid);
  g_test_add_func ("/route-table/many", test_many);
  g_test_add_func ("/route-table/deep", test_deep);
  return g_test_run ();
}
