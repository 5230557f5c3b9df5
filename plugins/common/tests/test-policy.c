/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The shared policy matcher: string, host, path and CIDR matching, and
 * Istio rules parsed from YAML and matched against hand-made requests.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <glib.h>

#include "weft-config-private.h"
#include "weft-policy-private.h"

/* ------------------------------------------------------------------ */
/* helpers                                                              */
/* ------------------------------------------------------------------ */

typedef struct {
  struct sockaddr_storage addr;
  const char             *headers[8];   /* name, value pairs, NULL-terminated */
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
test_set_addr (struct sockaddr_storage *ss, const char *ip)
{
  memset (ss, 0, sizeof *ss);
  if (strchr (ip, ':') == NULL)
    {
      struct sockaddr_in *sin = (struct sockaddr_in *) ss;
      sin->sin_family = AF_INET;
      g_assert_cmpint (inet_pton (AF_INET, ip, &sin->sin_addr), ==, 1);
    }
  else
    {
      struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) ss;
      sin6->sin6_family = AF_INET6;
      g_assert_cmpint (inet_pton (AF_INET6, ip, &sin6->sin6_addr), ==, 1);
    }
}

/* a GET / from 127.0.0.2 without identity to host b:8080 */
static void
test_input (WeftPolicyInput *in, TestRequest *r, const char *ip)
{
  memset (in, 0, sizeof *in);
  memset (r, 0, sizeof *r);
  test_set_addr (&r->addr, ip);
  in->peer = (const struct sockaddr *) &r->addr;
  in->peer_len = sizeof r->addr;
  in->authority = "b:8080";
  in->port = 8080;
  in->method = "GET";
  in->path = "/";
  in->get_header = test_header;
  in->header_data = r;
}

static gboolean
test_cidr (const char *cidr, const char *ip)
{
  WeftPolicyCidr c;
  struct sockaddr_storage ss;

  g_assert_true (weft_policy_cidr_parse (cidr, &c));
  test_set_addr (&ss, ip);
  return weft_policy_cidr_match (&c, (const struct sockaddr *) &ss);
}

typedef struct {
  WeftConfig     *config;
  WeftPolicyRule *rule;
} TestRule;

static void
test_rule_clear (TestRule *t)
{
  weft_policy_rule_free (t->rule);
  weft_config_free (t->config);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (TestRule, test_rule_clear)

/* parses the rule under the top-level key "rule:" of @yaml */
static gboolean
test_rule_load (TestRule *t, const char *yaml, GError **error)
{
  static const char *const extra[] = { "name", NULL };
  g_autoptr(GError) load_error = NULL;

  t->config = weft_config_load_data ("rule.yaml", yaml, strlen (yaml), &load_error);
  g_assert_no_error (load_error);
  t->rule = weft_policy_rule_parse (g_hash_table_lookup (t->config->plugin_nodes, "rule"), extra,
                                    error);
  return t->rule != NULL;
}

static void
test_rule_ok (TestRule *t, const char *yaml)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (test_rule_load (t, yaml, &error));
  g_assert_no_error (error);
}

static void
test_rule_error (const char *yaml, const char *expected)
{
  g_auto(TestRule) t = { NULL, NULL };
  g_autoptr(GError) error = NULL;

  g_assert_false (test_rule_load (&t, yaml, &error));
  g_assert_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG);
  g_test_message ("%s", error->message);
  g_assert_cmpstr (error->message, ==, expected);
}

/* ------------------------------------------------------------------ */
/* strings, hosts, paths, principals, CIDRs                              */
/* ------------------------------------------------------------------ */

static void
test_string_match (void)
{
  g_assert_true (weft_policy_string_match ("abc", "abc", FALSE));
  g_assert_false (weft_policy_string_match ("abc", "abcd", FALSE));
  g_assert_false (weft_policy_string_match ("abc", "ABC", FALSE));
  g_assert_true (weft_policy_string_match ("abc", "ABC", TRUE));
  g_assert_true (weft_policy_string_match ("abc*", "abc", FALSE));
  g_assert_true (weft_policy_string_match ("abc*", "abcd", FALSE));
  g_assert_false (weft_policy_string_match ("abc*", "xabc", FALSE));
  g_assert_true (weft_policy_string_match ("*abc", "abc", FALSE));
  g_assert_true (weft_policy_string_match ("*abc", "xabc", FALSE));
  g_assert_false (weft_policy_string_match ("*abc", "abcx", FALSE));
  g_assert_true (weft_policy_string_match ("*", "x", FALSE));
  g_assert_false (weft_policy_string_match ("*", "", FALSE));
  g_assert_false (weft_policy_string_match ("*", NULL, FALSE));
}

static void
test_pattern_valid (void)
{
  const char *why = NULL;

  g_assert_true (weft_policy_pattern_valid ("*", &why));
  g_assert_true (weft_policy_pattern_valid ("a*", &why));
  g_assert_true (weft_policy_pattern_valid ("*a", &why));
  g_assert_false (weft_policy_pattern_valid ("a*b", &why));
  g_assert_nonnull (strstr (why, "first or the last"));
  g_assert_false (weft_policy_pattern_valid ("*a*", &why));
  g_assert_false (weft_policy_pattern_valid ("", &why));
}

static void
test_principal_namespace (void)
{
  const char *ns = NULL;
  gsize len = 0;

  g_assert_true (weft_policy_principal_namespace ("cluster.local/ns/foo/sa/bar", &ns, &len));
  g_assert_cmpuint (len, ==, 3);
  g_assert_cmpint (strncmp (ns, "foo", len), ==, 0);
  g_assert_true (weft_policy_principal_namespace ("td.example/ns/istio-system/sa/x", &ns, &len));
  g_assert_cmpuint (len, ==, strlen ("istio-system"));
  g_assert_false (weft_policy_principal_namespace ("cluster.local/sa/bar", &ns, &len));
  g_assert_false (weft_policy_principal_namespace ("cluster.local/ns//sa/bar", &ns, &len));
  g_assert_false (weft_policy_principal_namespace ("cluster.local/ns/foo", &ns, &len));
  g_assert_false (weft_policy_principal_namespace (NULL, &ns, &len));
}

static void
test_hosts (void)
{
  g_assert_true (weft_policy_host_match ("b.example.com", "B.Example.COM"));
  g_assert_true (weft_policy_host_match ("b.example.com", "b.example.com:8080"));
  g_assert_true (weft_policy_host_match ("*.example.com", "b.example.com:8080"));
  g_assert_false (weft_policy_host_match ("*.example.com", "example.org"));
  g_assert_true (weft_policy_host_match ("b:8080", "b:8080"));
  g_assert_false (weft_policy_host_match ("b:8080", "b:9090"));
  g_assert_false (weft_policy_host_match ("b:8080", "b"));
  g_assert_true (weft_policy_host_match ("[::1]", "[::1]:80"));
  g_assert_false (weft_policy_host_match ("b", "bb:80"));
  g_assert_false (weft_policy_host_match ("b", NULL));
}

static void
test_paths (void)
{
  const char *why = NULL;

  /* exact, prefix, suffix, presence; the query is ignored */
  g_assert_true (weft_policy_path_match ("/foo", "/foo"));
  g_assert_true (weft_policy_path_match ("/foo", "/foo?x=1"));
  g_assert_false (weft_policy_path_match ("/foo", "/foo/"));
  g_assert_true (weft_policy_path_match ("/foo*", "/foobar"));
  g_assert_true (weft_policy_path_match ("*.txt", "/a/b.txt?v=2"));
  g_assert_true (weft_policy_path_match ("*", "/"));
  /* {*}: exactly one non-empty segment */
  g_assert_true (weft_policy_path_match ("/foo/{*}", "/foo/bar"));
  g_assert_false (weft_policy_path_match ("/foo/{*}", "/foo/bar/baz"));
  g_assert_false (weft_policy_path_match ("/foo/{*}", "/foo/"));
  g_assert_true (weft_policy_path_match ("/foo/{*}/bar", "/foo/x/bar"));
  g_assert_false (weft_policy_path_match ("/foo/{*}/bar", "/foo/x/y/bar"));
  /* {**}: the rest, '/' included, possibly empty */
  g_assert_true (weft_policy_path_match ("/foo/{**}", "/foo/"));
  g_assert_true (weft_policy_path_match ("/foo/{**}", "/foo/a/b/c?q"));
  g_assert_false (weft_policy_path_match ("/foo/{**}", "/foo"));
  g_assert_true (weft_policy_path_match ("/foo/{**}/", "/foo/bar/"));
  g_assert_true (weft_policy_path_match ("/foo/{**}/", "/foo//"));
  g_assert_false (weft_policy_path_match ("/foo/{**}/", "/foo/bar"));
  g_assert_true (weft_policy_path_match ("/foo/{*}/bar/{**}", "/foo/buzz/bar/"));
  g_assert_true (weft_policy_path_match ("/foo/{*}/bar/{**}", "/foo/buzz/bar/baz"));
  g_assert_false (weft_policy_path_match ("/foo/{*}/bar/{**}", "/foo/buzz/baz/bar"));
  /* Istio's invalid templates */
  g_assert_true (weft_policy_path_valid ("/foo/{*}/bar/{**}", &why));
  g_assert_false (weft_policy_path_valid ("/*/baz/{*}", &why));
  g_assert_false (weft_policy_path_valid ("/**/baz/{*}", &why));
  g_assert_false (weft_policy_path_valid ("/{**}/foo/{*}", &why));
  g_assert_nonnull (strstr (why, "last operator"));
  g_assert_false (weft_policy_path_valid ("/foo/{*}.txt", &why));
  g_assert_false (weft_policy_path_valid ("/foo/{x}", &why));
  g_assert_false (weft_policy_path_valid ("foo/{*}", &why));
  g_assert_false (weft_policy_path_valid ("/a*b", &why));
}

static void
test_normalize_path (void)
{
  static const char *const cases[][2] = {
    { "/admin", "/admin" },
    { "/./admin", "/admin" },
    { "/x/../admin", "/admin" },
    { "//admin", "/admin" },
    { "/%61dmin", "/admin" },
    { "/%2e%2E/admin", "/admin" },
    { "/a/b/..", "/a/" },
    { "/a/./b/.", "/a/b/" },
    { "/../../x", "/x" },
    { "/a/%2F/b", "/a/%2F/b" },     /* an encoded slash stays encoded */
    { "/a%zz", "/a%zz" },
    { "/foo?x=/../admin", "/foo" },
    { "/a/..b/.c", "/a/..b/.c" },
    { "/", "/" },
    { "*", "*" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      char out[64];
      gsize n = weft_policy_normalize_path (cases[i][0], out);
      g_assert_cmpstr (out, ==, cases[i][1]);
      g_assert_cmpuint (n, ==, strlen (cases[i][1]));
    }
}

static void
test_cidrs (void)
{
  WeftPolicyCidr c;

  g_assert_true (test_cidr ("127.0.0.2", "127.0.0.2"));
  g_assert_false (test_cidr ("127.0.0.2", "127.0.0.3"));
  g_assert_true (test_cidr ("10.0.0.0/8", "10.255.1.2"));
  g_assert_false (test_cidr ("10.0.0.0/8", "11.0.0.1"));
  g_assert_true (test_cidr ("192.168.1.128/25", "192.168.1.200"));
  g_assert_false (test_cidr ("192.168.1.128/25", "192.168.1.100"));
  g_assert_true (test_cidr ("0.0.0.0/0", "8.8.8.8"));
  /* host bits are ignored */
  g_assert_true (test_cidr ("10.1.2.3/8", "10.9.9.9"));
  /* IPv6 */
  g_assert_true (test_cidr ("::1", "::1"));
  g_assert_true (test_cidr ("2001:db8::/32", "2001:db8:1::5"));
  g_assert_false (test_cidr ("2001:db8::/32", "2001:db9::5"));
  g_assert_false (test_cidr ("2001:db8::/32", "10.0.0.1"));
  g_assert_false (test_cidr ("10.0.0.0/8", "2001:db8::1"));
  /* IPv4-mapped peers match IPv4 prefixes, and mapped prefixes IPv4 peers */
  g_assert_true (test_cidr ("127.0.0.2", "::ffff:127.0.0.2"));
  g_assert_true (test_cidr ("10.0.0.0/8", "::ffff:10.1.1.1"));
  g_assert_false (test_cidr ("10.0.0.0/8", "::ffff:11.1.1.1"));
  g_assert_true (test_cidr ("::ffff:10.0.0.0/104", "10.3.3.3"));
  /* rejects */
  g_assert_false (weft_policy_cidr_parse ("10.0.0.0/33", &c));
  g_assert_false (weft_policy_cidr_parse ("::/129", &c));
  g_assert_false (weft_policy_cidr_parse ("10.0.0.0/", &c));
  g_assert_false (weft_policy_cidr_parse ("10.0.0/8", &c));
  g_assert_false (weft_policy_cidr_parse ("host.example", &c));
  g_assert_false (weft_policy_cidr_parse ("/8", &c));
}

/* ------------------------------------------------------------------ */
/* rules                                                                */
/* ------------------------------------------------------------------ */

static void
test_rule_empty (void)
{
  g_auto(TestRule) t = { NULL, NULL };
  WeftPolicyInput in;
  TestRequest r;

  test_rule_ok (&t, "rule: {}\n");
  test_input (&in, &r, "192.0.2.1");
  g_assert_true (weft_policy_rule_match (t.rule, &in));
  in.method = NULL;
  in.path = NULL;
  in.authority = NULL;
  in.peer = NULL;
  g_assert_true (weft_policy_rule_match (t.rule, &in));
}

/* the mission: B admits A (127.0.0.2) only on GET /foo */
static void
test_rule_mission (void)
{
  g_auto(TestRule) t = { NULL, NULL };
  WeftPolicyInput in;
  TestRequest r;

  test_rule_ok (&t,
                "rule:\n"
                "  name: a-get-foo\n"
                "  from: [{source: {ipBlocks: [127.0.0.2]}}]\n"
                "  to: [{operation: {methods: [GET], paths: [/foo]}}]\n");
  test_input (&in, &r, "127.0.0.2");
  in.path = "/foo";
  g_assert_true (weft_policy_rule_match (t.rule, &in));
  in.method = "POST";
  g_assert_false (weft_policy_rule_match (t.rule, &in));
  in.method = "GET";
  in.path = "/bar";
  g_assert_false (weft_policy_rule_match (t.rule, &in));
  test_input (&in, &r, "127.0.0.3");
  in.path = "/foo";
  g_assert_false (weft_policy_rule_match (t.rule, &in));
}

static void
test_rule_principals (void)
{
  g_auto(TestRule) t = { NULL, NULL };
  g_auto(TestRule) any = { NULL, NULL };
  g_auto(TestRule) not_any = { NULL, NULL };
  WeftPolicyInput in;
  TestRequest r;

  test_rule_ok (&t,
                "rule:\n"
                "  from:\n"
                "    - source:\n"
                "        principals: [cluster.local/ns/foo/sa/*, spiffe://td/ns/x/sa/exact]\n"
                "        notPrincipals: [cluster.local/ns/foo/sa/banned]\n");
  test_rule_ok (&any, "rule: {from: [{source: {principals: ['*']}}]}\n");
  test_rule_ok (&not_any, "rule: {from: [{source: {notPrincipals: ['*']}}]}\n");
  test_input (&in, &r, "10.0.0.1");
  /* no identity: a positive list never matches, a negative one always */
  g_assert_false (weft_policy_rule_match (t.rule, &in));
  g_assert_false (weft_policy_rule_match (any.rule, &in));
  g_assert_true (weft_policy_rule_match (not_any.rule, &in));
  in.principal = "cluster.local/ns/foo/sa/bar";
  g_assert_true (weft_policy_rule_match (t.rule, &in));
  g_assert_true (weft_policy_rule_match (any.rule, &in));
  g_assert_false (weft_policy_rule_match (not_any.rule, &in));
  in.principal = "cluster.local/ns/foo/sa/banned";
  g_assert_false (weft_policy_rule_match (t.rule, &in));
  /* "spiffe://" in a pattern is dropped, as in the input */
  in.principal = "td/ns/x/sa/exact";
  g_assert_true (weft_policy_rule_match (t.rule, &in));
  in.principal = "cluster.local/ns/other/sa/bar";
  g_assert_false (weft_policy_rule_match (t.rule, &in));
}

static void
test_rule_namespaces (void)
{
  g_auto(TestRule) t = { NULL, NULL };
  WeftPolicyInput in;
  TestRequest r;

  test_rule_ok (&t,
                "rule:\n"
                "  from:\n"
                "    - source: {namespaces: ['prod*'], notNamespaces: [prod-canary]}\n");
  test_input (&in, &r, "10.0.0.1");
  g_assert_false (weft_policy_rule_match (t.rule, &in));
  in.principal = "cluster.local/ns/prod/sa/web";
  g_assert_true (weft_policy_rule_match (t.rule, &in));
  in.principal = "cluster.local/ns/prod-eu/sa/web";
  g_assert_true (weft_policy_rule_match (t.rule, &in));
  in.principal = "cluster.local/ns/prod-canary/sa/web";
  g_assert_false (weft_policy_rule_match (t.rule, &in));
  in.principal = "cluster.local/ns/dev/sa/prod";
  g_assert_false (weft_policy_rule_match (t.rule, &in));
}

/* sources OR, fields inside a source AND */
static void
test_rule_sources (void)
{
  g_auto(TestRule) t = { NULL, NULL };
  WeftPolicyInput in;
  TestRequest r;

  test_rule_ok (&t,
                "rule:\n"
                "  from:\n"
                "    - source: {ipBlocks: [10.0.0.0/8], notIpBlocks: [10.0.0.66]}\n"
                "    - source: {remoteIpBlocks: ['2001:db8::/32'], namespaces: [ops]}\n"
                "    - source: {notRemoteIpBlocks: ['0.0.0.0/0', '::/0']}\n");
  test_input (&in, &r, "10.1.2.3");
  g_assert_true (weft_policy_rule_match (t.rule, &in));
  test_input (&in, &r, "10.0.0.66");
  g_assert_false (weft_policy_rule_match (t.rule, &in));
  test_input (&in, &r, "2001:db8::7");
  g_assert_false (weft_policy_rule_match (t.rule, &in));
  in.principal = "cluster.local/ns/ops/sa/x";
  g_assert_true (weft_policy_rule_match (t.rule, &in));
  test_input (&in, &r, "::ffff:10.9.9.9");
  g_assert_true (weft_policy_rule_match (t.rule, &in));
}

/* operations OR, fields inside an operation AND */
static void
test_rule_operations (void)
{
  g_auto(TestRule) t = { NULL, NULL };
  WeftPolicyInput in;
  TestRequest r;

  test_rule_ok (&t,
                "rule:\n"
                "  to:\n"
                "    - operation:\n"
                "        hosts: ['*.example.com']\n"
                "        notHosts: [admin.example.com]\n"
                "        methods: [GET, HEAD]\n"
                "        paths: ['/api/{*}/items/{**}']\n"
                "        notPaths: ['*.secret']\n"
                "        ports: ['8080', 9090]\n"
                "    - operation: {notMethods: [GET, HEAD, POST], notPorts: [8080]}\n");
  test_input (&in, &r, "10.0.0.1");
  in.authority = "Shop.Example.com:8080";
  in.path = "/api/v1/items/7/photo";
  g_assert_true (weft_policy_rule_match (t.rule, &in));
  in.path = "/api/v1/items/7/photo.secret";
  g_assert_false (weft_policy_rule_match (t.rule, &in));
  /* the query is not part of the path, for templates and suffixes alike */
  in.path = "/api/v1/items/7/photo?name=x.secret";
  g_assert_true (weft_policy_rule_match (t.rule, &in));
  in.path = "/api/v1/items?x=/items/7";
  g_assert_false (weft_policy_rule_match (t.rule, &in));
  in.path = "/api/v1/items/7";
  in.authority = "admin.example.com";
  g_assert_false (weft_policy_rule_match (t.rule, &in));
  in.authority = "shop.example.com";
  in.port = 9090;
  g_assert_true (weft_policy_rule_match (t.rule, &in));
  in.port = 7070;
  g_assert_false (weft_policy_rule_match (t.rule, &in));
  /* the second operation: any method but GET, HEAD, POST off port 8080 */
  in.method = "DELETE";
  g_assert_true (weft_policy_rule_match (t.rule, &in));
  in.port = 8080;
  g_assert_false (weft_policy_rule_match (t.rule, &in));
  in.method = "POST";
  in.port = 7070;
  g_assert_false (weft_policy_rule_match (t.rule, &in));
}

/* from AND to AND when */
static void
test_rule_when (void)
{
  g_auto(TestRule) t = { NULL, NULL };
  WeftPolicyInput in;
  TestRequest r;

  test_rule_ok (&t,
                "rule:\n"
                "  from: [{source: {ipBlocks: [127.0.0.0/8]}}]\n"
                "  when:\n"
                "    - key: request.headers[X-Team]\n"
                "      values: [blue, 'green*']\n"
                "    - key: request.headers[x-debug]\n"
                "      notValues: ['*']\n"
                "    - key: source.ip\n"
                "      notValues: [127.0.0.9]\n"
                "    - key: remote.ip\n"
                "      values: [127.0.0.0/24]\n"
                "    - key: destination.port\n"
                "      values: ['8080']\n");
  test_input (&in, &r, "127.0.0.2");
  g_assert_false (weft_policy_rule_match (t.rule, &in));
  r.headers[0] = "x-team";
  r.headers[1] = "green-2";
  g_assert_true (weft_policy_rule_match (t.rule, &in));
  r.headers[1] = "red";
  g_assert_false (weft_policy_rule_match (t.rule, &in));
  r.headers[1] = "blue";
  r.headers[2] = "X-Debug";
  r.headers[3] = "1";
  g_assert_false (weft_policy_rule_match (t.rule, &in));
  r.headers[2] = NULL;
  in.port = 80;
  g_assert_false (weft_policy_rule_match (t.rule, &in));
  in.port = 8080;
  test_set_addr (&r.addr, "127.0.0.9");
  g_assert_false (weft_policy_rule_match (t.rule, &in));
  test_set_addr (&r.addr, "127.0.1.5");
  g_assert_false (weft_policy_rule_match (t.rule, &in));
  test_set_addr (&r.addr, "127.0.0.5");
  g_assert_true (weft_policy_rule_match (t.rule, &in));
  /* no header source at all: the header is absent */
  in.get_header = NULL;
  g_assert_false (weft_policy_rule_match (t.rule, &in));
}

static void
test_rule_when_identity (void)
{
  g_auto(TestRule) t = { NULL, NULL };
  g_auto(TestRule) sni = { NULL, NULL };
  g_auto(TestRule) not_sni = { NULL, NULL };
  WeftPolicyInput in;
  TestRequest r;

  test_rule_ok (&t,
                "rule:\n"
                "  when:\n"
                "    - {key: source.namespace, values: [foo]}\n"
                "    - {key: source.principal, notValues: ['*/sa/evil']}\n");
  test_rule_ok (&sni, "rule: {when: [{key: connection.sni, values: ['*']}]}\n");
  test_rule_ok (&not_sni, "rule: {when: [{key: connection.sni, notValues: [b.example]}]}\n");
  test_input (&in, &r, "10.0.0.1");
  g_assert_false (weft_policy_rule_match (t.rule, &in));
  in.principal = "cluster.local/ns/foo/sa/good";
  g_assert_true (weft_policy_rule_match (t.rule, &in));
  in.principal = "cluster.local/ns/foo/sa/evil";
  g_assert_false (weft_policy_rule_match (t.rule, &in));
  /* without TLS there is no SNI */
  g_assert_false (weft_policy_rule_match (sni.rule, &in));
  g_assert_true (weft_policy_rule_match (not_sni.rule, &in));
}

static void
test_rule_errors (void)
{
  test_rule_error ("rule:\n  from:\n    - source:\n        requestPrincipals: ['*']\n",
                   "rule.yaml:4:9: source field 'requestPrincipals' is not supported by weft: "
                   "needs request authentication (JWT), which weft does not do");
  test_rule_error ("rule:\n  from: [{source: {notRequestPrincipals: [x]}}]\n",
                   "rule.yaml:2:20: source field 'notRequestPrincipals' is not supported by weft: "
                   "needs request authentication (JWT), which weft does not do");
  test_rule_error ("rule:\n  when:\n    - key: request.auth.claims[iss]\n      values: [x]\n",
                   "rule.yaml:3:12: condition key 'request.auth.claims[iss]' is not supported by "
                   "weft: needs request authentication (JWT), which weft does not do");
  test_rule_error ("rule:\n  when: [{key: destination.ip, values: [10.0.0.1]}]\n",
                   "rule.yaml:2:16: condition key 'destination.ip' is not supported by weft: "
                   "weft does not give plugins the connection's local address yet");
  test_rule_error ("rule:\n  when: [{key: request.headers, values: [x]}]\n",
                   "rule.yaml:2:16: unknown condition key 'request.headers'");
  test_rule_error ("rule:\n  when: [{key: source.ip}]\n",
                   "rule.yaml:2:10: condition 'source.ip' needs 'values' or 'notValues'");
  test_rule_error ("rule:\n  to: [{operation: {path: [/x]}}]\n",
                   "rule.yaml:2:21: unknown operation field 'path'");
  test_rule_error ("rule:\n  to: [{operation: {paths: ['/{**}/x/{*}']}}]\n",
                   "rule.yaml:2:29: 'paths': invalid path '/{**}/x/{*}': {**} must be the last "
                   "operator of a path template");
  test_rule_error ("rule:\n  from: [{source: {ipBlocks: [10.0.0.0/40]}}]\n",
                   "rule.yaml:2:31: 'ipBlocks': '10.0.0.0/40' is not an IP address or CIDR block");
  test_rule_error ("rule:\n  to: [{operation: {ports: ['0']}}]\n",
                   "rule.yaml:2:29: 'ports': '0' is not a port (1-65535)");
  test_rule_error ("rule:\n  to: [{operation: {hosts: ['a*b']}}]\n",
                   "rule.yaml:2:29: 'hosts': invalid pattern 'a*b': '*' may only be the first or "
                   "the last character (prefix, suffix or presence match)");
  test_rule_error ("rule:\n  from: [{sources: {}}]\n",
                   "rule.yaml:2:11: unknown from field 'sources'");
  test_rule_error ("rule:\n  from: {source: {}}\n", "rule.yaml:2:9: 'from' must be a list");
  test_rule_error ("rule:\n  froms: []\n", "rule.yaml:2:3: unknown rule field 'froms'");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/policy/string-match", test_string_match);
  g_test_add_func ("/policy/pattern-valid", test_pattern_valid);
  g_test_add_func ("/policy/principal-namespace", test_principal_namespace);
  g_test_add_func ("/policy/hosts", test_hosts);
  g_test_add_func ("/policy/paths", test_paths);
  g_test_add_func ("/policy/cidrs", test_cidrs);
  g_test_add_func ("/policy/normalize-path", test_normalize_path);

  g_test_add_func ("/policy/rule/empty", test_rule_empty);
  g_test_add_func ("/policy/rule/mission", test_rule_mission);
  g_test_add_func ("/policy/rule/principals", test_rule_principals);
  g_test_add_func ("/policy/rule/namespaces", test_rule_namespaces);
  g_test_add_func ("/policy/rule/sources", test_rule_sources);
  g_test_add_func ("/policy/rule/operations", test_rule_operations);
  g_test_add_func ("/policy/rule/when", test_rule_when);
  g_test_add_func ("/policy/rule/when-identity", test_rule_when_identity);
  g_test_add_func ("/policy/rule/errors", test_rule_errors);
  return g_test_run ();
}
