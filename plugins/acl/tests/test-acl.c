/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The acl plugin without weft: weft's acl: settings and Istio
 * AuthorizationPolicy documents parsed through the core's YAML loader,
 * which policies apply to a node, and the evaluation order.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <glib.h>

#include "weft-config-private.h"
#include "weft-acl-private.h"

/* ------------------------------------------------------------------ */
/* loading                                                              */
/* ------------------------------------------------------------------ */

typedef struct {
  WeftConfig    *weft;
  WeftAclConfig *acl;
  GHashTable    *node;   /* "namespace", "label.app", ... */
} TestAcl;

static void
test_acl_clear (TestAcl *t)
{
  weft_acl_config_free (t->acl);
  weft_config_free (t->weft);
  if (t->node != NULL)
    g_hash_table_unref (t->node);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (TestAcl, test_acl_clear)

static const char *
test_node_field (gpointer data, const char *field)
{
  return data != NULL ? g_hash_table_lookup (data, field) : NULL;
}

/* the node of these tests: namespace ns-b, labels app=b, version=v1 */
static GHashTable *
test_node_b (void)
{
  GHashTable *node = g_hash_table_new (g_str_hash, g_str_equal);

  g_hash_table_insert (node, "namespace", "ns-b");
  g_hash_table_insert (node, "label.app", "b");
  g_hash_table_insert (node, "label.version", "v1");
  return node;
}

/* what the plugin does with a loaded configuration */
static gboolean
test_acl_build (TestAcl *t, GError **error)
{
  t->acl = weft_acl_config_new (test_node_field, t->node);
  if (!weft_acl_config_parse_settings (t->acl, g_hash_table_lookup (t->weft->plugin_nodes, "acl"),
                                       error))
    return FALSE;
  for (guint i = 0; i < t->weft->documents->len; i++)
    {
      WeftConfigDocument *doc = t->weft->documents->pdata[i];
      g_assert_cmpstr (doc->kind, ==, "AuthorizationPolicy");
      if (!weft_acl_config_add_document (t->acl, doc->root, error))
        return FALSE;
    }
  return weft_acl_config_finish (t->acl, error);
}

static gboolean
test_acl_load (TestAcl *t, const char *yaml, GError **error)
{
  g_autoptr(GError) load_error = NULL;

  if (t->node == NULL)
    t->node = test_node_b ();
  t->weft = weft_config_load_data ("acl.yaml", yaml, strlen (yaml), &load_error);
  g_assert_no_error (load_error);
  return test_acl_build (t, error);
}

static void
test_acl_ok (TestAcl *t, const char *yaml)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (test_acl_load (t, yaml, &error));
  g_assert_no_error (error);
}

static void
test_acl_file (TestAcl *t, const char *name)
{
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, "data", name, NULL);
  g_autoptr(GError) error = NULL;

  if (t->node == NULL)
    t->node = test_node_b ();
  t->weft = weft_config_load (path, &error);
  g_assert_no_error (error);
  g_assert_true (test_acl_build (t, &error));
  g_assert_no_error (error);
}

static void
test_acl_error (const char *yaml, const char *expected)
{
  g_auto(TestAcl) t = { NULL, NULL, NULL };
  g_autoptr(GError) error = NULL;

  g_assert_false (test_acl_load (&t, yaml, &error));
  g_assert_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG);
  g_test_message ("%s", error->message);
  g_assert_cmpstr (error->message, ==, expected);
}

/* ------------------------------------------------------------------ */
/* evaluating                                                           */
/* ------------------------------------------------------------------ */

typedef struct {
  struct sockaddr_storage addr;
  const char             *headers[4];
  WeftPolicyInput         in;
  /* what the sink saw */
  guint                   audits, would_denies;
  const char             *audit_policy, *audit_rule;
  const char             *would_policy, *would_rule;   /* NULL policy: no ALLOW matched */
} TestRequest;

static const char *
test_header (gpointer data, const char *name)
{
  TestRequest *r = data;

  for (guint i = 0; r->headers[i] != NULL; i += 2)
    if (g_ascii_strcasecmp (r->headers[i], name) == 0)
      return r->headers[i + 1];
  return NULL;
}

static void
test_request (TestRequest *r, const char *ip, const char *method, const char *path)
{
  struct sockaddr_in *sin = (struct sockaddr_in *) &r->addr;

  memset (r, 0, sizeof *r);
  sin->sin_family = AF_INET;
  g_assert_cmpint (inet_pton (AF_INET, ip, &sin->sin_addr), ==, 1);
  r->in.peer = (const struct sockaddr *) &r->addr;
  r->in.peer_len = sizeof *sin;
  r->in.authority = "b.ns-b.svc:8080";
  r->in.port = 8080;
  r->in.method = method;
  r->in.path = path;
  r->in.get_header = test_header;
  r->in.header_data = r;
}

static void
test_on_audit (gpointer data, const WeftAclPolicy *p, const WeftAclRule *rule)
{
  TestRequest *r = data;

  r->audits++;
  r->audit_policy = p->name;
  r->audit_rule = rule->name;
}

static void
test_on_would_deny (gpointer data, const WeftAclPolicy *p, const WeftAclRule *rule)
{
  TestRequest *r = data;

  r->would_denies++;
  r->would_policy = p != NULL ? p->name : NULL;
  r->would_rule = rule != NULL ? rule->name : NULL;
}

static const WeftAclSink test_sink = { test_on_audit, test_on_would_deny };

static WeftAclDecision
test_eval (TestAcl *t, TestRequest *r)
{
  WeftAclDecision d;

  weft_acl_evaluate (t->acl, &r->in, &test_sink, r, &d);
  return d;
}

static void
test_assert_allowed (TestAcl *t, const char *ip, const char *method, const char *path)
{
  TestRequest r;

  test_request (&r, ip, method, path);
  g_assert_cmpint (test_eval (t, &r).verdict, ==, WEFT_ACL_VERDICT_ALLOW);
}

/* denied by DENY @policy's @rule, or, @policy NULL, by no ALLOW match */
static void
test_assert_denied (TestAcl *t, const char *ip, const char *method, const char *path,
                    const char *policy, const char *rule)
{
  TestRequest r;
  WeftAclDecision d;

  test_request (&r, ip, method, path);
  d = test_eval (t, &r);
  g_assert_cmpint (d.verdict, ==, WEFT_ACL_VERDICT_DENY);
  g_assert_cmpstr (d.policy ? d.policy->name : NULL, ==, policy);
  g_assert_cmpstr (d.rule ? d.rule->name : NULL, ==, rule);
}

/* ------------------------------------------------------------------ */
/* evaluation order                                                     */
/* ------------------------------------------------------------------ */

static const char mission_yaml[] =
  "acl:\n"
  "  policies:\n"
  "    - name: b-admits-a\n"
  "      action: ALLOW\n"
  "      rules:\n"
  "        - name: a-get-foo\n"
  "          from: [{source: {ipBlocks: [127.0.0.2]}}]\n"
  "          to: [{operation: {methods: [GET], paths: [/foo]}}]\n";

static void
test_mission (void)
{
  g_auto(TestAcl) t = { NULL, NULL, NULL };

  test_acl_ok (&t, mission_yaml);
  g_assert_cmpuint (t.acl->n_allow, ==, 1);
  g_assert_cmpuint (t.acl->n_allow_enforced, ==, 1);
  g_assert_cmpstr (t.acl->allow[0]->rules[0].name, ==, "a-get-foo");
  g_assert_true (weft_acl_sole_allow (t.acl) == t.acl->allow[0]);
  test_assert_allowed (&t, "127.0.0.2", "GET", "/foo");
  test_assert_allowed (&t, "127.0.0.2", "GET", "/foo?x=1");
  test_assert_denied (&t, "127.0.0.2", "POST", "/foo", NULL, NULL);
  test_assert_denied (&t, "127.0.0.2", "GET", "/bar", NULL, NULL);
  test_assert_denied (&t, "127.0.0.3", "GET", "/foo", NULL, NULL);
}

static void
test_deny_before_allow (void)
{
  g_auto(TestAcl) t = { NULL, NULL, NULL };

  test_acl_ok (&t,
               "acl:\n"
               "  policies:\n"
               "    - name: allow-all\n"
               "      rules: [{}]\n"
               "    - name: no-c\n"
               "      action: DENY\n"
               "      rules:\n"
               "        - to: [{operation: {paths: [/public]}}]\n"
               "        - from: [{source: {ipBlocks: [127.0.0.3]}}]\n");
  g_assert_cmpuint (t.acl->n_deny, ==, 1);
  g_assert_cmpuint (t.acl->n_allow, ==, 1);
  test_assert_allowed (&t, "127.0.0.2", "GET", "/foo");
  test_assert_denied (&t, "127.0.0.3", "GET", "/foo", "no-c", "rules[1]");
  /* the first matching rule is named */
  test_assert_denied (&t, "127.0.0.3", "GET", "/public", "no-c", "rules[0]");
}

static void
test_allow_nothing (void)
{
  g_auto(TestAcl) t = { NULL, NULL, NULL };
  g_auto(TestAcl) deny = { NULL, NULL, NULL };

  /* an ALLOW without rules: allow-nothing */
  test_acl_ok (&t,
               "apiVersion: security.istio.io/v1\n"
               "kind: AuthorizationPolicy\n"
               "metadata: {name: allow-nothing, namespace: ns-b}\n"
               "spec: {}\n");
  g_assert_cmpuint (t.acl->n_allow, ==, 1);
  test_assert_denied (&t, "127.0.0.2", "GET", "/foo", NULL, NULL);
  /* a DENY without rules never matches */
  test_acl_ok (&deny,
               "acl:\n"
               "  policies:\n"
               "    - {name: deny-nothing, action: DENY}\n");
  g_assert_cmpuint (deny.acl->n_deny, ==, 1);
  test_assert_allowed (&deny, "127.0.0.2", "GET", "/foo");
}

static void
test_no_allow_allows (void)
{
  g_auto(TestAcl) t = { NULL, NULL, NULL };
  g_auto(TestAcl) none = { NULL, NULL, NULL };

  test_acl_ok (&t,
               "acl:\n"
               "  policies:\n"
               "    - name: no-posts\n"
               "      action: DENY\n"
               "      rules: [{to: [{operation: {methods: [POST]}}]}]\n");
  test_assert_allowed (&t, "127.0.0.9", "GET", "/anything");
  test_assert_denied (&t, "127.0.0.9", "POST", "/anything", "no-posts", "rules[0]");
  test_acl_ok (&none, "acl: {}\n");
  g_assert_cmpuint (none.acl->policies->len, ==, 0);
  test_assert_allowed (&none, "127.0.0.9", "DELETE", "/");
}

static void
test_not_fields (void)
{
  g_auto(TestAcl) t = { NULL, NULL, NULL };

  /* everyone but A may only read; A may not touch /admin */
  test_acl_ok (&t,
               "acl:\n"
               "  policies:\n"
               "    - name: read-only-but-a\n"
               "      action: DENY\n"
               "      rules:\n"
               "        - from: [{source: {notIpBlocks: [127.0.0.2]}}]\n"
               "          to: [{operation: {notMethods: [GET, HEAD]}}]\n"
               "        - from: [{source: {ipBlocks: [127.0.0.2]}}]\n"
               "          to: [{operation: {notPaths: ['/api/*'], notPorts: ['9090']}}]\n");
  test_assert_allowed (&t, "127.0.0.3", "GET", "/api/x");
  test_assert_denied (&t, "127.0.0.3", "PUT", "/api/x", "read-only-but-a", "rules[0]");
  test_assert_allowed (&t, "127.0.0.2", "PUT", "/api/x");
  test_assert_denied (&t, "127.0.0.2", "GET", "/admin", "read-only-but-a", "rules[1]");
  /* on port 9090 the notPorts exempts A's /admin */
  {
    TestRequest r;

    test_request (&r, "127.0.0.2", "GET", "/admin");
    r.in.port = 9090;
    g_assert_cmpint (test_eval (&t, &r).verdict, ==, WEFT_ACL_VERDICT_ALLOW);
  }
}

static void
test_audit (void)
{
  g_auto(TestAcl) t = { NULL, NULL, NULL };
  TestRequest r;
  WeftAclDecision d;

  test_acl_ok (&t,
               "acl:\n"
               "  policies:\n"
               "    - name: audit-writes\n"
               "      action: AUDIT\n"
               "      rules: [{name: writes, to: [{operation: {methods: [POST, PUT]}}]}]\n"
               "    - name: deny-c\n"
               "      action: DENY\n"
               "      rules: [{from: [{source: {ipBlocks: [127.0.0.3]}}]}]\n");
  test_request (&r, "127.0.0.2", "POST", "/x");
  d = test_eval (&t, &r);
  g_assert_cmpint (d.verdict, ==, WEFT_ACL_VERDICT_ALLOW);
  g_assert_cmpuint (r.audits, ==, 1);
  g_assert_cmpstr (r.audit_policy, ==, "audit-writes");
  g_assert_cmpstr (r.audit_rule, ==, "writes");
  test_request (&r, "127.0.0.2", "GET", "/x");
  test_eval (&t, &r);
  g_assert_cmpuint (r.audits, ==, 0);
  /* an audit is reported for a denied request too */
  test_request (&r, "127.0.0.3", "PUT", "/x");
  d = test_eval (&t, &r);
  g_assert_cmpint (d.verdict, ==, WEFT_ACL_VERDICT_DENY);
  g_assert_cmpuint (r.audits, ==, 1);
}

static void
test_dry_run_annotation (void)
{
  g_auto(TestAcl) t = { NULL, NULL, NULL };
  TestRequest r;
  WeftAclDecision d;

  test_acl_ok (&t,
               "apiVersion: security.istio.io/v1beta1\n"
               "kind: AuthorizationPolicy\n"
               "metadata:\n"
               "  name: deny-c\n"
               "  namespace: ns-b\n"
               "  annotations: {\"istio.io/dry-run\": \"true\"}\n"
               "spec:\n"
               "  action: DENY\n"
               "  rules: [{from: [{source: {ipBlocks: [127.0.0.3]}}]}]\n"
               "---\n"
               "apiVersion: security.istio.io/v1beta1\n"
               "kind: AuthorizationPolicy\n"
               "metadata:\n"
               "  name: only-get\n"
               "  namespace: ns-b\n"
               "  annotations: {istio.io/dry-run: 'true'}\n"
               "spec:\n"
               "  rules: [{to: [{operation: {methods: [GET]}}]}]\n");
  g_assert_true (t.acl->deny[0]->dry_run);
  g_assert_cmpuint (t.acl->n_allow, ==, 1);
  g_assert_cmpuint (t.acl->n_allow_enforced, ==, 0);
  /* the DENY would match: reported, and the request goes on */
  test_request (&r, "127.0.0.3", "GET", "/");
  d = test_eval (&t, &r);
  g_assert_cmpint (d.verdict, ==, WEFT_ACL_VERDICT_ALLOW);
  g_assert_cmpuint (r.would_denies, ==, 1);
  g_assert_cmpstr (r.would_policy, ==, "ns-b/deny-c");
  g_assert_cmpstr (r.would_rule, ==, "rules[0]");
  /* no ALLOW would match a POST */
  test_request (&r, "127.0.0.2", "POST", "/");
  d = test_eval (&t, &r);
  g_assert_cmpint (d.verdict, ==, WEFT_ACL_VERDICT_ALLOW);
  g_assert_cmpuint (r.would_denies, ==, 1);
  g_assert_null (r.would_policy);
  test_request (&r, "127.0.0.2", "GET", "/");
  test_eval (&t, &r);
  g_assert_cmpuint (r.would_denies, ==, 0);
}

/* a dry-run ALLOW beside an enforced one: the enforced one decides */
static void
test_dry_run_beside_enforced (void)
{
  g_auto(TestAcl) t = { NULL, NULL, NULL };
  TestRequest r;

  test_acl_ok (&t,
               "acl:\n"
               "  policies:\n"
               "    - {name: try-gets, dry_run: true, rules: [{to: [{operation: {methods: [GET]}}]}]}\n"
               "    - {name: a-only, rules: [{from: [{source: {ipBlocks: [127.0.0.2]}}]}]}\n");
  g_assert_cmpuint (t.acl->n_allow_enforced, ==, 1);
  g_assert_true (weft_acl_sole_allow (t.acl) == t.acl->allow[1]);
  test_assert_allowed (&t, "127.0.0.2", "POST", "/");
  test_assert_denied (&t, "127.0.0.3", "GET", "/", NULL, NULL);
  test_request (&r, "127.0.0.2", "GET", "/");
  g_assert_cmpint (test_eval (&t, &r).verdict, ==, WEFT_ACL_VERDICT_ALLOW);
  g_assert_cmpuint (r.would_denies, ==, 0);
}

/* ------------------------------------------------------------------ */
/* which policies apply                                                 */
/* ------------------------------------------------------------------ */

static void
test_istio_file (void)
{
  g_auto(TestAcl) t = { NULL, NULL, NULL };
  TestRequest r;
  WeftAclDecision d;

  test_acl_file (&t, "istio-policies.yaml");
  g_assert_cmpuint (t.acl->policies->len, ==, 5);
  g_assert_cmpuint (t.acl->n_allow, ==, 1);
  g_assert_cmpstr (t.acl->allow[0]->name, ==, "ns-b/b-admits-a");
  g_assert_cmpuint (t.acl->n_deny, ==, 1);
  g_assert_cmpstr (t.acl->deny[0]->name, ==, "istio-system/deny-debug");
  g_assert_cmpuint (t.acl->n_audit, ==, 1);
  /* the selector and the namespace of the last two do not fit ns-b/app=b */
  g_assert_cmpstr (((WeftAclPolicy *) t.acl->policies->pdata[3])->skipped, ==,
                   "selector app=c does not match this node's label (b)");
  g_assert_cmpstr (((WeftAclPolicy *) t.acl->policies->pdata[4])->skipped, ==,
                   "its namespace 'ns-c' is neither the root namespace 'istio-system' nor this "
                   "node's (ns-b)");
  test_assert_allowed (&t, "127.0.0.2", "GET", "/foo");
  test_assert_denied (&t, "127.0.0.2", "GET", "/bar", NULL, NULL);
  test_request (&r, "127.0.0.2", "GET", "/foo");
  r.headers[0] = "X-Debug";
  r.headers[1] = "1";
  d = test_eval (&t, &r);
  g_assert_cmpint (d.verdict, ==, WEFT_ACL_VERDICT_DENY);
  g_assert_cmpstr (d.policy->name, ==, "istio-system/deny-debug");
  test_request (&r, "127.0.0.3", "GET", "/admin/users/1");
  test_eval (&t, &r);
  g_assert_cmpuint (r.audits, ==, 1);
  g_assert_cmpstr (r.audit_policy, ==, "ns-b/audit-admin");
}

static const char scoped_yaml[] =
  "acl:\n"
  "  root_namespace: mesh-root\n"
  "  policies:\n"
  "    - {name: weft-native, action: DENY}\n"
  "---\n"
  "apiVersion: security.istio.io/v1\n"
  "kind: AuthorizationPolicy\n"
  "metadata: {name: in-root, namespace: mesh-root}\n"
  "spec: {action: DENY}\n"
  "---\n"
  "apiVersion: security.istio.io/v1\n"
  "kind: AuthorizationPolicy\n"
  "metadata: {name: in-istio-system, namespace: istio-system}\n"
  "spec: {action: DENY}\n"
  "---\n"
  "apiVersion: security.istio.io/v1\n"
  "kind: AuthorizationPolicy\n"
  "metadata: {name: no-namespace}\n"
  "spec: {action: DENY}\n"
  "---\n"
  "apiVersion: security.istio.io/v1\n"
  "kind: AuthorizationPolicy\n"
  "metadata: {name: same, namespace: ns-b}\n"
  "spec: {action: DENY, selector: {matchLabels: {app: b, version: v1}}}\n"
  "---\n"
  "apiVersion: security.istio.io/v1\n"
  "kind: AuthorizationPolicy\n"
  "metadata: {name: wrong-version, namespace: ns-b}\n"
  "spec: {action: DENY, selector: {matchLabels: {app: b, version: v2}}}\n"
  "---\n"
  "apiVersion: security.istio.io/v1\n"
  "kind: AuthorizationPolicy\n"
  "metadata: {name: unset-label, namespace: mesh-root}\n"
  "spec: {action: DENY, selector: {matchLabels: {tier: web}}}\n";

static void
test_namespace_and_selector (void)
{
  g_auto(TestAcl) t = { NULL, NULL, NULL };
  g_auto(TestAcl) bare = { NULL, NULL, NULL };

  test_acl_ok (&t, scoped_yaml);
  g_assert_cmpuint (t.acl->n_deny, ==, 4);
  g_assert_cmpstr (t.acl->deny[0]->name, ==, "weft-native");
  g_assert_cmpstr (t.acl->deny[1]->name, ==, "mesh-root/in-root");
  g_assert_cmpstr (t.acl->deny[2]->name, ==, "no-namespace");
  g_assert_cmpstr (t.acl->deny[3]->name, ==, "ns-b/same");
  g_assert_cmpstr (((WeftAclPolicy *) t.acl->policies->pdata[2])->skipped, ==,
                   "its namespace 'istio-system' is neither the root namespace 'mesh-root' nor "
                   "this node's (ns-b)");
  g_assert_cmpstr (((WeftAclPolicy *) t.acl->policies->pdata[5])->skipped, ==,
                   "selector version=v2 does not match this node's label (v1)");
  g_assert_cmpstr (((WeftAclPolicy *) t.acl->policies->pdata[6])->skipped, ==,
                   "selector tier=web does not match this node's label (unset)");
  /* a node without namespace and labels: only unscoped and root policies */
  bare.node = g_hash_table_new (g_str_hash, g_str_equal);
  test_acl_ok (&bare, scoped_yaml);
  g_assert_cmpuint (bare.acl->n_deny, ==, 3);
  g_assert_cmpstr (((WeftAclPolicy *) bare.acl->policies->pdata[4])->skipped, ==,
                   "its namespace 'ns-b' is neither the root namespace 'mesh-root' nor this "
                   "node's (unset)");
}

/* ------------------------------------------------------------------ */
/* errors                                                               */
/* ------------------------------------------------------------------ */

static const char istio_head[] =
  "apiVersion: security.istio.io/v1\n"
  "kind: AuthorizationPolicy\n"
  "metadata: {name: p, namespace: ns-b}\n";

static void
test_istio_error (const char *spec, const char *expected)
{
  g_autofree char *yaml = g_strconcat (istio_head, spec, NULL);

  test_acl_error (yaml, expected);
}

static void
test_errors (void)
{
  test_istio_error ("spec:\n  action: CUSTOM\n  provider: {name: ext}\n",
                    "acl.yaml:5:11: policy 'ns-b/p': action CUSTOM is not supported by weft "
                    "(external authorization providers)");
  test_istio_error ("spec:\n  provider: {name: ext}\n",
                    "acl.yaml:5:3: AuthorizationPolicy spec field 'provider' is not supported by "
                    "weft: it belongs to action CUSTOM (external authorization), which weft does "
                    "not do");
  test_istio_error ("spec:\n  targetRef: {kind: Gateway, name: gw}\n",
                    "acl.yaml:5:3: AuthorizationPolicy spec field 'targetRef' is not supported by "
                    "weft: it attaches the policy to a gateway; a sidecar is chosen with "
                    "'selector'");
  test_istio_error ("spec:\n  targetRefs: []\n",
                    "acl.yaml:5:3: AuthorizationPolicy spec field 'targetRefs' is not supported "
                    "by weft: it attaches the policy to a gateway; a sidecar is chosen with "
                    "'selector'");
  test_istio_error ("spec:\n  action: REJECT\n",
                    "acl.yaml:5:11: policy 'ns-b/p': unknown action 'REJECT' (ALLOW, DENY or "
                    "AUDIT)");
  test_istio_error ("spec:\n  rules:\n  - from:\n    - source:\n        requestPrincipals: ['*']\n",
                    "acl.yaml:8:9: source field 'requestPrincipals' is not supported by weft: "
                    "needs request authentication (JWT), which weft does not do");
  test_istio_error ("spec:\n  rules:\n  - when:\n    - key: request.auth.claims[groups]\n"
                    "      values: [admin]\n",
                    "acl.yaml:7:12: condition key 'request.auth.claims[groups]' is not supported "
                    "by weft: needs request authentication (JWT), which weft does not do");
  test_istio_error ("spec:\n  selector: {matchLabels: {app: b}, matchExpressions: []}\n",
                    "acl.yaml:5:37: unknown selector field 'matchExpressions'");
  test_istio_error ("spec:\n  rules:\n  - name: x\n",
                    "acl.yaml:6:5: unknown rule field 'name'");
  test_acl_error ("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
                  "metadata: {namespace: ns-b}\nspec: {}\n",
                  "acl.yaml:3:11: AuthorizationPolicy needs 'metadata.name'");
  test_acl_error ("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
                  "metadata: {name: p}\nspex: {}\n",
                  "acl.yaml:4:1: unknown AuthorizationPolicy field 'spex'");
  test_acl_error ("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
                  "metadata: {name: p, annotations: {istio.io/dry-run: maybe}}\n",
                  "acl.yaml:3:53: expected true or false, got 'maybe'");
  test_acl_error ("acl:\n  policies:\n    - {name: a}\n    - {name: a}\n",
                  "acl.yaml:4:7: policy 'a' is defined twice (first at acl.yaml:3:7)");
  test_acl_error ("acl:\n  policies:\n    - {action: DENY}\n",
                  "acl.yaml:3:7: acl policy needs a 'name'");
  test_acl_error ("acl:\n  policies:\n    - {name: a, provider: {name: x}}\n",
                  "acl.yaml:3:17: acl policy field 'provider' is not supported by weft: it "
                  "belongs to action CUSTOM (external authorization), which weft does not do");
  test_acl_error ("acl:\n  dryrun: true\n",
                  "acl.yaml:2:3: unknown key 'dryrun' (did you mean 'dry_run'?)");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/acl/mission", test_mission);
  g_test_add_func ("/acl/deny-before-allow", test_deny_before_allow);
  g_test_add_func ("/acl/allow-nothing", test_allow_nothing);
  g_test_add_func ("/acl/no-allow-allows", test_no_allow_allows);
  g_test_add_func ("/acl/not-fields", test_not_fields);
  g_test_add_func ("/acl/audit", test_audit);
  g_test_add_func ("/acl/dry-run-annotation", test_dry_run_annotation);
  g_test_add_func ("/acl/dry-run-beside-enforced", test_dry_run_beside_enforced);
  g_test_add_func ("/acl/istio-file", test_istio_file);
  g_test_add_func ("/acl/namespace-and-selector", test_namespace_and_selector);
  g_test_add_func ("/acl/errors", test_errors);
  return g_test_run ();
}
