/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "weft-build-config.h"
#include "weft-config-private.h"

static const char *const weft_test_env_vars[] = {
  "WEFT_SERVICE", "WEFT_WORKLOAD", "POD_NAMESPACE", "POD_NAME", "SERVICE_ACCOUNT",
  "WEFT_TRUST_DOMAIN", "WEFT_CLUSTER", "WEFT_LABEL_APP", "WEFT_LABEL_VERSION", NULL
};

static void
weft_test_clear_env (void)
{
  for (gsize i = 0; weft_test_env_vars[i] != NULL; i++)
    g_unsetenv (weft_test_env_vars[i]);
}

/* works under meson test (G_TEST_SRCDIR) and when run by hand */
static char *
weft_test_data_path (const char *name)
{
  const char *srcdir = g_getenv ("G_TEST_SRCDIR");

  if (srcdir == NULL)
    return g_build_filename (WEFT_SOURCE_ROOT, "tests", "data", "config", name, NULL);
  return g_build_filename (srcdir, "data", "config", name, NULL);
}

static WeftConfig *
weft_test_load_fixture (const char *name, GError **error)
{
  g_autofree char *path = weft_test_data_path (name);

  return weft_config_load (path, error);
}

static WeftConfig *
weft_test_load_string (const char *yaml, GError **error)
{
  return weft_config_load_data ("test.yaml", yaml, strlen (yaml), error);
}

/* the message of a load expected to fail with WEFT_ERROR_CONFIG */
static char *
weft_test_config_error (const char *yaml)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftConfig) config = weft_test_load_string (yaml, &error);

  g_assert_null (config);
  g_assert_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG);
  g_test_message ("%s", error->message);
  return g_strdup (error->message);
}

static guint
weft_test_count_lines (const char *text)
{
  guint n = 1;

  for (const char *p = text; *p != '\0'; p++)
    n += *p == '\n';
  return n;
}

/* ------------------------------------------------------------------ */
/* temporary directories laid out like a kubelet ConfigMap volume      */
/* ------------------------------------------------------------------ */

static void
weft_test_rm_rf (const char *path)
{
  struct stat st;

  g_assert_no_errno (lstat (path, &st));
  if (S_ISDIR (st.st_mode))
    {
      g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
      const char *name = NULL;

      g_assert_nonnull (dir);
      while ((name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);
          weft_test_rm_rf (child);
        }
      g_assert_no_errno (g_rmdir (path));
      return;
    }
  g_assert_no_errno (g_unlink (path));
}

static void
weft_test_write (const char *dir, const char *name, const char *contents)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr(GError) error = NULL;

  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
}

/*
 * @files: name, contents, name, contents..., NULL. Makes
 * ..2026_11_24_10_00_00.000000001/<name>, ..data -> that dir and
 * <name> -> ..data/<name>, as the kubelet does.
 */
static char *
weft_test_configmap_dir (const char *const *files)
{
  g_autoptr(GError) error = NULL;
  char *root = g_dir_make_tmp ("weft-test-config-XXXXXX", &error);
  const char *stamp = "..2026_11_24_10_00_00.000000001";

  g_assert_no_error (error);
  g_autofree char *stamped = g_build_filename (root, stamp, NULL);
  g_assert_no_errno (g_mkdir (stamped, 0755));
  g_autofree char *data = g_build_filename (root, "..data", NULL);
  g_assert_no_errno (symlink (stamp, data));

  for (gsize i = 0; files[i] != NULL; i += 2)
    {
      g_autofree char *link = g_build_filename (root, files[i], NULL);
      g_autofree char *target = g_build_filename ("..data", files[i], NULL);

      weft_test_write (stamped, files[i], files[i + 1]);
      g_assert_no_errno (symlink (target, link));
    }
  return root;
}

static const char weft_test_listeners_yaml[] =
  "listeners:\n"
  "  - name: inbound\n"
  "    address: 127.0.0.1:15006\n"
  "    upstream: local-app\n"
  "  - name: outbound\n"
  "    address: 127.0.0.1:15001\n"
  "    direction: outbound\n"
  "    upstream: service-b\n";

static const char weft_test_upstreams_yaml[] =
  "upstreams:\n"
  "  - name: local-app\n"
  "    endpoints: [127.0.0.1:8080]\n"
  "  - name: service-b\n"
  "    endpoints: [127.0.0.1:9001, 127.0.0.1:9002]\n";

/* ------------------------------------------------------------------ */
/* nodes                                                               */
/* ------------------------------------------------------------------ */

static WeftNodeFile *
weft_test_node_file (const char *yaml)
{
  g_autoptr(GError) error = NULL;
  WeftNodeFile *file = weft_node_file_load_data ("n.yaml", yaml, strlen (yaml), &error);

  g_assert_no_error (error);
  return file;
}

static void
test_node_positions (void)
{
  g_autoptr(WeftNodeFile) file = weft_test_node_file ("a: 1\n---\nlist:\n  - x\n  - {k: v}\n---\n");
  const WeftNode *second = NULL;
  const WeftNode *list = NULL;

  g_assert_cmpuint (weft_node_file_get_n_documents (file), ==, 3);
  g_assert_null (weft_node_file_get_document (file, 2));
  second = weft_node_file_get_document (file, 1);
  g_assert_cmpint (weft_node_get_kind (second), ==, WEFT_NODE_MAP);
  list = weft_node_lookup (second, "list");
  g_assert_cmpint (weft_node_get_kind (list), ==, WEFT_NODE_SEQ);
  g_assert_cmpuint (weft_node_get_length (list), ==, 2);
  g_assert_cmpstr (weft_node_get_file (list), ==, "n.yaml");
  g_assert_cmpuint (weft_node_get_line (weft_node_get_item (list, 1)), ==, 5);
  g_assert_cmpuint (weft_node_get_column (weft_node_get_item (list, 1)), ==, 5);
  g_assert_cmpstr (weft_node_get_scalar (weft_node_lookup (weft_node_get_item (list, 1), "k")),
                   ==, "v");
  g_assert_null (weft_node_get_scalar (list));
  g_assert_null (weft_node_lookup (list, "k"));
  g_assert_null (weft_node_get_item (list, 2));
}

static void
test_node_null_and_quotes (void)
{
  g_autoptr(WeftNodeFile) file =
    weft_test_node_file ("a: ~\nb: null\nc:\nd: \"null\"\ne: ''\nf: x\n");
  const WeftNode *root = weft_node_file_get_document (file, 0);
  g_autoptr(GError) error = NULL;
  const char *text = NULL;

  g_assert_true (weft_node_is_null (weft_node_lookup (root, "a")));
  g_assert_true (weft_node_is_null (weft_node_lookup (root, "b")));
  g_assert_true (weft_node_is_null (weft_node_lookup (root, "c")));
  g_assert_false (weft_node_is_null (weft_node_lookup (root, "d")));
  g_assert_false (weft_node_is_null (weft_node_lookup (root, "e")));
  g_assert_false (weft_node_is_null (weft_node_lookup (root, "f")));
  g_assert_true (weft_node_get_string (weft_node_lookup (root, "d"), &text, NULL));
  g_assert_cmpstr (text, ==, "null");
  g_assert_false (weft_node_get_string (weft_node_lookup (root, "b"), &text, &error));
  g_assert_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG);
  g_assert_true (g_str_has_prefix (error->message, "n.yaml:2:4: "));
}

static void
test_node_getters (void)
{
  g_autoptr(WeftNodeFile) file = weft_test_node_file (
    "u: 18446744073709551615\nbig: 18446744073709551616\nneg: -1\n"
    "d: 2.5\nbadd: 2.5x\nt: Yes\nf: OFF\nbadb: maybe\n"
    "ms: 250ms\ns: 5s\nfrac: 1.5s\nm: 2m\nh: 1h\nbare: 3\nbadt: 5 days\n"
    "sz: 512\nkib: 16KiB\nkb: 16KB\nmib: 1MiB\ngib: 2GiB\nbads: 1.5MiB\nhuge: 99999999999GiB\n"
    "map: {a: 1}\n");
  const WeftNode *root = weft_node_file_get_document (file, 0);
  guint64 u = 0;
  double d = 0;
  gboolean b = FALSE;
  g_autoptr(GError) error = NULL;

#define LOOKUP(k) weft_node_lookup (root, k)
  g_assert_true (weft_node_get_uint64 (LOOKUP ("u"), &u, NULL));
  g_assert_cmpuint (u, ==, G_MAXUINT64);
  g_assert_false (weft_node_get_uint64 (LOOKUP ("big"), &u, NULL));
  g_assert_false (weft_node_get_uint64 (LOOKUP ("neg"), &u, NULL));
  g_assert_true (weft_node_get_double (LOOKUP ("d"), &d, NULL));
  g_assert_cmpfloat (d, ==, 2.5);
  g_assert_false (weft_node_get_double (LOOKUP ("badd"), &d, NULL));
  g_assert_true (weft_node_get_boolean (LOOKUP ("t"), &b, NULL));
  g_assert_true (b);
  g_assert_true (weft_node_get_boolean (LOOKUP ("f"), &b, NULL));
  g_assert_false (b);
  g_assert_false (weft_node_get_boolean (LOOKUP ("badb"), &b, NULL));

  struct { const char *key; guint64 value; } durations[] = {
    { "ms", 250 }, { "s", 5000 }, { "frac", 1500 }, { "m", 120000 }, { "h", 3600000 },
    { "bare", 3000 },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (durations); i++)
    {
      g_assert_true (weft_node_get_duration (LOOKUP (durations[i].key), &u, NULL));
      g_assert_cmpuint (u, ==, durations[i].value);
    }
  g_assert_false (weft_node_get_duration (LOOKUP ("badt"), &u, &error));
  g_assert_true (g_str_has_prefix (error->message, "n.yaml:15:7: invalid duration '5 days'"));
  g_clear_error (&error);

  struct { const char *key; guint64 value; } sizes[] = {
    { "sz", 512 }, { "kib", 16384 }, { "kb", 16000 }, { "mib", 1048576 },
    { "gib", G_GUINT64_CONSTANT (2147483648) },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      g_assert_true (weft_node_get_size (LOOKUP (sizes[i].key), &u, NULL));
      g_assert_cmpuint (u, ==, sizes[i].value);
    }
  g_assert_false (weft_node_get_size (LOOKUP ("bads"), &u, NULL));
  g_assert_false (weft_node_get_size (LOOKUP ("huge"), &u, NULL));

  g_assert_false (weft_node_get_uint64 (LOOKUP ("map"), &u, &error));
  g_assert_nonnull (strstr (error->message, "got a mapping"));
  g_clear_error (&error);
  g_assert_false (weft_node_expect_kind (LOOKUP ("map"), WEFT_NODE_SEQ, &error));
  g_assert_nonnull (strstr (error->message, "expected a sequence"));
#undef LOOKUP
}

static void
test_node_check_keys (void)
{
  static const char *const allowed[] = { "upstream", "address", NULL };
  g_autoptr(WeftNodeFile) file = weft_test_node_file ("address: x\nupstreem: y\n---\nzzz: 1\n");
  g_autoptr(GError) error = NULL;

  g_assert_false (weft_node_check_keys (weft_node_file_get_document (file, 0), allowed, &error));
  g_assert_cmpstr (error->message, ==,
                   "n.yaml:2:1: unknown key 'upstreem' (did you mean 'upstream'?)");
  g_clear_error (&error);
  g_assert_false (weft_node_check_keys (weft_node_file_get_document (file, 1), allowed, &error));
  g_assert_cmpstr (error->message, ==, "n.yaml:4:1: unknown key 'zzz'");
}

static void
test_node_errors (void)
{
  static const struct { const char *yaml; const char *message; } cases[] = {
    { "a: 1\nb: 2\na: 3\n", "n.yaml:3:1: duplicate key 'a' (first at line 1, column 1)" },
    { "base: &b {x: 1}\nuse:\n  <<: *b\n", "n.yaml:3:3: merge keys are not supported" },
    { "a: *nope\n", "n.yaml:1:4: unknown alias '*nope'" },
    { "a: [1, 2\n", "n.yaml:2:1: " },
    { "a: \"\\xff\xff\"\n", "n.yaml:1:" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(WeftNodeFile) file = weft_node_file_load_data ("n.yaml", cases[i].yaml,
                                                               strlen (cases[i].yaml), &error);
      g_assert_null (file);
      g_assert_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG);
      g_test_message ("%s", error->message);
      g_assert_true (g_str_has_prefix (error->message, cases[i].message));
    }
}

static void
test_node_alias (void)
{
  g_autoptr(WeftNodeFile) file = weft_test_node_file ("a: &x {k: v}\nb: *x\n");
  const WeftNode *root = weft_node_file_get_document (file, 0);

  g_assert_cmpstr (weft_node_get_scalar (weft_node_lookup (weft_node_lookup (root, "b"), "k")),
                   ==, "v");
}

static void
test_node_alias_bomb (void)
{
  g_autofree char *path = weft_test_data_path ("alias-bomb.yaml");
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftNodeFile) file = weft_node_file_load (path, &error);

  g_assert_null (file);
  g_assert_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG);
  g_assert_nonnull (strstr (error->message, "more than 1000000 nodes"));
  g_assert_true (g_str_has_prefix (error->message, path));
}

/* ------------------------------------------------------------------ */
/* configuration                                                       */
/* ------------------------------------------------------------------ */

static void
test_config_minimal (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftConfig) config = weft_test_load_fixture ("minimal.yaml", &error);
  WeftListenerConfig *listener = NULL;
  WeftUpstreamConfig *upstream = NULL;
  WeftEndpointConfig *endpoint = NULL;

  g_assert_no_error (error);
  g_assert_cmpstr (config->admin_address, ==, "127.0.0.1:15000");
  g_assert_cmpuint (config->workers, ==, 0);
  g_assert_cmpuint (config->plugin_dirs->len, ==, 0);
  g_assert_cmpuint (config->timeouts.connect_ms, ==, 5000);
  g_assert_cmpuint (config->timeouts.request_header_ms, ==, 10000);
  g_assert_cmpuint (config->timeouts.client_idle_ms, ==, 60000);
  g_assert_cmpuint (config->timeouts.upstream_idle_ms, ==, 4000);
  g_assert_cmpuint (config->timeouts.request_ms, ==, 15000);
  g_assert_cmpuint (config->timeouts.drain_ms, ==, 30000);
  g_assert_cmpuint (config->limits.max_request_line, ==, 8192);
  g_assert_cmpuint (config->limits.max_head, ==, 16384);
  g_assert_cmpuint (config->limits.max_headers, ==, 100);
  g_assert_cmpuint (config->limits.max_body, ==, 0);
  g_assert_cmpuint (g_hash_table_size (config->plugin_nodes), ==, 0);
  g_assert_cmpuint (config->documents->len, ==, 0);
  g_assert_cmpstr (g_hash_table_lookup (config->node_fields, "trust_domain"), ==, "cluster.local");
  g_assert_null (g_hash_table_lookup (config->node_fields, "service"));

  g_assert_cmpuint (config->listeners->len, ==, 2);
  listener = g_ptr_array_index (config->listeners, 0);
  g_assert_cmpstr (listener->name, ==, "inbound");
  g_assert_cmpstr (listener->address, ==, "127.0.0.1:15006");
  g_assert_cmpstr (listener->host, ==, "127.0.0.1");
  g_assert_cmpuint (listener->port, ==, 15006);
  g_assert_cmpint (listener->direction, ==, WEFT_DIRECTION_INBOUND);
  g_assert_cmpstr (listener->upstream, ==, "local-app");
  g_assert_cmpuint (listener->plugins->len, ==, 0);
  g_assert_cmpuint (g_hash_table_size (listener->plugin_nodes), ==, 0);
  g_assert_cmpuint (listener->timeouts.request_ms, ==, 15000);
  g_assert_cmpuint (weft_node_get_line (listener->node), ==, 4);
  listener = g_ptr_array_index (config->listeners, 1);
  g_assert_cmpint (listener->direction, ==, WEFT_DIRECTION_OUTBOUND);
  g_assert_cmpstr (listener->upstream, ==, "service-b");

  g_assert_cmpuint (config->upstreams->len, ==, 2);
  upstream = weft_config_find_upstream (config, "service-b");
  g_assert_nonnull (upstream);
  g_assert_null (weft_config_find_upstream (config, "nope"));
  g_assert_cmpuint (upstream->endpoints->len, ==, 2);
  endpoint = g_ptr_array_index (upstream->endpoints, 1);
  g_assert_cmpstr (endpoint->host, ==, "127.0.0.1");
  g_assert_cmpuint (endpoint->port, ==, 9002);
  g_assert_true (endpoint->is_ip);
  g_assert_cmpuint (upstream->dns_refresh_ms, ==, 5000);
  g_assert_cmpuint (upstream->unhealthy_after, ==, 3);
  g_assert_cmpuint (upstream->unhealthy_backoff_ms, ==, 5000);
  g_assert_cmpuint (upstream->connect_ms, ==, 0);
}

static void
test_config_full (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftConfig) config = weft_test_load_fixture ("full.yaml", &error);
  WeftListenerConfig *listener = NULL;
  WeftUpstreamConfig *upstream = NULL;
  WeftEndpointConfig *endpoint = NULL;
  WeftConfigDocument *document = NULL;

  g_assert_no_error (error);
  g_assert_cmpstr (config->admin_address, ==, "[::1]:15100");
  g_assert_cmpuint (config->workers, ==, 4);
  g_assert_cmpuint (config->plugin_dirs->len, ==, 2);
  g_assert_cmpstr (g_ptr_array_index (config->plugin_dirs, 0), ==, "/opt/weft/plugins");
  g_assert_cmpuint (config->timeouts.connect_ms, ==, 2000);
  g_assert_cmpuint (config->timeouts.client_idle_ms, ==, 120000);
  g_assert_cmpuint (config->timeouts.upstream_idle_ms, ==, 1500);
  g_assert_cmpuint (config->timeouts.request_ms, ==, 0);
  g_assert_cmpuint (config->timeouts.drain_ms, ==, 3600000);
  g_assert_cmpuint (config->limits.max_request_line, ==, 4096);
  g_assert_cmpuint (config->limits.max_head, ==, 32768);
  g_assert_cmpuint (config->limits.max_headers, ==, 64);
  g_assert_cmpuint (config->limits.max_body, ==, 10000000);
  g_assert_cmpstr (g_hash_table_lookup (config->node_fields, "pod"), ==,
                   "reviews-v2-5d8f9c7b6-abcde");
  g_assert_cmpstr (g_hash_table_lookup (config->node_fields, "trust_domain"), ==, "example.org");
  g_assert_cmpstr (g_hash_table_lookup (config->node_fields, "label.version"), ==, "v2");
  g_assert_cmpuint (g_hash_table_size (config->node_fields), ==, 9);

  listener = g_ptr_array_index (config->listeners, 0);
  g_assert_cmpstr (listener->host, ==, "::1");
  g_assert_cmpuint (listener->plugins->len, ==, 2);
  g_assert_cmpstr (g_ptr_array_index (listener->plugins, 1), ==, "access-log");
  g_assert_cmpuint (listener->timeouts.request_ms, ==, 30000);
  g_assert_cmpuint (listener->timeouts.connect_ms, ==, 2000);
  g_assert_true (g_hash_table_contains (listener->plugin_nodes, "hello"));
  g_assert_cmpuint (g_hash_table_size (listener->plugin_nodes), ==, 1);
  listener = g_ptr_array_index (config->listeners, 1);
  g_assert_null (listener->upstream);

  upstream = weft_config_find_upstream (config, "local-app");
  g_assert_cmpuint (upstream->endpoints->len, ==, 3);
  endpoint = g_ptr_array_index (upstream->endpoints, 1);
  g_assert_cmpstr (endpoint->host, ==, "::1");
  endpoint = g_ptr_array_index (upstream->endpoints, 2);
  g_assert_cmpstr (endpoint->host, ==, "service-b.default.svc.cluster.local");
  g_assert_false (endpoint->is_ip);
  g_assert_cmpuint (upstream->dns_refresh_ms, ==, 30000);
  g_assert_cmpuint (upstream->unhealthy_after, ==, 5);
  g_assert_cmpuint (upstream->unhealthy_backoff_ms, ==, 10000);
  g_assert_cmpuint (upstream->connect_ms, ==, 1000);

  g_assert_true (g_hash_table_contains (config->plugin_nodes, "hello"));
  g_assert_cmpuint (config->documents->len, ==, 1);
  document = g_ptr_array_index (config->documents, 0);
  g_assert_cmpstr (document->kind, ==, "VirtualService");
  g_assert_cmpstr (document->name, ==, "reviews-route");
}

static void
test_config_admin_only (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftConfig) config = weft_test_load_string ("admin:\n  address: 0.0.0.0:9901\n",
                                                        &error);

  g_assert_no_error (error);
  g_assert_cmpuint (config->listeners->len, ==, 0);
  g_assert_cmpstr (config->admin_address, ==, "0.0.0.0:9901");
}

/* the same two files, whichever sorts first */
static void
test_config_dir_order (void)
{
  const char *names[][2] = { { "a.yaml", "b.yml" }, { "b.yml", "a.yaml" } };

  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    {
      const char *const files[] = {
        names[i][0], weft_test_listeners_yaml,
        names[i][1], weft_test_upstreams_yaml,
        "notes.txt", "not: [yaml",
        NULL,
      };
      g_autofree char *dir = weft_test_configmap_dir (files);
      g_autoptr(GError) error = NULL;
      g_autoptr(WeftConfig) config = NULL;
      WeftListenerConfig *listener = NULL;
      WeftConfigSource *source = NULL;

      /* a dotted yaml name is never read */
      weft_test_write (dir, ".hidden.yaml", "not: [yaml");
      config = weft_config_load (dir, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (config->sources->len, ==, 2);
      source = g_ptr_array_index (config->sources, 0);
      g_assert_true (g_str_has_suffix (source->path, "/a.yaml"));
      source = g_ptr_array_index (config->sources, 1);
      g_assert_true (g_str_has_suffix (source->path, "/b.yml"));
      g_assert_cmpuint (config->listeners->len, ==, 2);
      g_assert_cmpuint (config->upstreams->len, ==, 2);
      listener = g_ptr_array_index (config->listeners, 1);
      g_assert_cmpstr (listener->name, ==, "outbound");
      g_assert_cmpstr (listener->upstream, ==, "service-b");
      g_assert_nonnull (weft_config_find_upstream (config, listener->upstream));
      weft_test_rm_rf (dir);
    }
}

static void
test_config_dir_duplicate (void)
{
  const char *const files[] = {
    "a.yaml", weft_test_upstreams_yaml,
    "b.yaml", "admin: {address: 127.0.0.1:15000}\n"
              "upstreams:\n"
              "  - name: service-b\n"
              "    endpoints: [10.0.0.1:80]\n",
    "c.yaml", "admin:\n  address: 127.0.0.1:15001\n",
    NULL,
  };
  g_autofree char *dir = weft_test_configmap_dir (files);
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftConfig) config = weft_config_load (dir, &error);
  g_autofree char *expected_upstream = g_strdup_printf (
    "%s/b.yaml:3:11: upstream 'service-b' is defined twice (first at %s/a.yaml:4:11)", dir, dir);
  g_autofree char *expected_admin = g_strdup_printf (
    "%s/c.yaml:1:1: 'admin' is defined twice (first at %s/b.yaml:1:1)", dir, dir);

  g_assert_null (config);
  g_assert_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, expected_upstream));
  g_assert_nonnull (strstr (error->message, expected_admin));
  weft_test_rm_rf (dir);
}

static void
test_config_dir_syntax_errors (void)
{
  const char *const files[] = {
    "a.yaml", "a: [1\n",
    "b.yaml", "b: }\n",
    NULL,
  };
  g_autofree char *dir = weft_test_configmap_dir (files);
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftConfig) config = weft_config_load (dir, &error);

  g_assert_null (config);
  g_assert_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG);
  g_test_message ("%s", error->message);
  g_assert_cmpuint (weft_test_count_lines (error->message), ==, 2);
  weft_test_rm_rf (dir);
}

static void
test_config_dir_empty (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("weft-test-config-XXXXXX", &error);
  g_autoptr(WeftConfig) config = NULL;

  g_assert_no_error (error);
  weft_test_write (dir, "README", "no yaml here");
  config = weft_config_load (dir, &error);
  g_assert_null (config);
  g_assert_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG);
  g_assert_true (g_str_has_prefix (error->message, dir));
  weft_test_rm_rf (dir);
}

static void
test_config_missing (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftConfig) config = weft_config_load ("/nonexistent/weft.yaml", &error);

  g_assert_null (config);
  g_assert_error (error, WEFT_ERROR, WEFT_ERROR_IO);
  g_assert_cmpstr (error->message, ==, "/nonexistent/weft.yaml: No such file or directory");
}

static void
test_config_unknown_key (void)
{
  g_autofree char *message = weft_test_config_error (
    "upstreams:\n"
    "  - name: app\n"
    "    endpoints: [127.0.0.1:80]\n"
    "    dns_refrsh: 5s\n");

  g_assert_cmpstr (message, ==,
                   "test.yaml:4:5: unknown key 'dns_refrsh' (did you mean 'dns_refresh'?)");
}

static void
test_config_plugin_nodes (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftConfig) config = weft_test_load_string (
    "hello:\n  greeting: hi\n"
    "listeners:\n"
    "  - name: l\n    address: 127.0.0.1:15006\n    plugins: [hello]\n"
    "    hello: {greeting: yo}\n"
    "---\n"
    "rate-limit: {rps: 5}\n", &error);
  const WeftNode *node = NULL;
  WeftListenerConfig *listener = NULL;

  g_assert_no_error (error);
  g_assert_cmpuint (g_hash_table_size (config->plugin_nodes), ==, 2);
  node = g_hash_table_lookup (config->plugin_nodes, "hello");
  g_assert_cmpstr (weft_node_get_scalar (weft_node_lookup (node, "greeting")), ==, "hi");
  g_assert_nonnull (g_hash_table_lookup (config->plugin_nodes, "rate-limit"));
  listener = g_ptr_array_index (config->listeners, 0);
  node = g_hash_table_lookup (listener->plugin_nodes, "hello");
  g_assert_cmpstr (weft_node_get_scalar (weft_node_lookup (node, "greeting")), ==, "yo");
}

static void
test_config_plugin_nodes_twice (void)
{
  g_autofree char *message = weft_test_config_error ("hello: {a: 1}\n---\nhello: {a: 2}\n");

  g_assert_cmpstr (message, ==,
                   "test.yaml:3:1: settings of plugin 'hello' are defined twice "
                   "(first at test.yaml:1:1)");
}

static void
test_config_foreign_document (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftConfig) config = weft_test_load_string (
    "apiVersion: security.istio.io/v1\n"
    "kind: AuthorizationPolicy\n"
    "metadata: {name: deny-all, namespace: default}\n"
    "spec: {anything: [goes, here]}\n"
    "listeners: not checked here\n"
    "---\n"
    "apiVersion: v1\nkind: Note\n", &error);
  WeftConfigDocument *document = NULL;

  g_assert_no_error (error);
  g_assert_cmpuint (config->documents->len, ==, 2);
  document = g_ptr_array_index (config->documents, 0);
  g_assert_cmpstr (document->api_version, ==, "security.istio.io/v1");
  g_assert_cmpstr (document->kind, ==, "AuthorizationPolicy");
  g_assert_cmpstr (document->name, ==, "deny-all");
  g_assert_cmpuint (weft_node_get_line (document->root), ==, 1);
  document = g_ptr_array_index (config->documents, 1);
  g_assert_null (document->name);
  g_assert_cmpuint (config->listeners->len, ==, 0);
  g_assert_cmpuint (g_hash_table_size (config->plugin_nodes), ==, 0);
}

static void
test_config_many_problems (void)
{
  g_autofree char *path = weft_test_data_path ("many-problems.yaml");
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftConfig) config = weft_config_load (path, &error);
  g_auto(GStrv) lines = NULL;
  const char *expected[] = {
    ":13:16: an upstream needs at least one endpoint",
    ":15:17: invalid endpoint '-bad-:80'",
    ":16:18: 'dns_refresh' must be greater than zero",
    ":3:14: invalid listener address '127.0.0.1:99999'",
    ":4:15: listener 'one' names unknown upstream 'nowhere'",
    ":5:11: invalid listener name 'Two'",
    ":7:16: invalid direction 'sideways'",
    ":9:14: invalid listener address 'localhost:15003'",
    ":10:25: invalid duration 'soon'",
  };

  g_assert_null (config);
  g_assert_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG);
  g_test_message ("%s", error->message);
  lines = g_strsplit (error->message, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, G_N_ELEMENTS (expected));
  for (gsize i = 0; i < G_N_ELEMENTS (expected); i++)
    {
      g_assert_true (g_str_has_prefix (lines[i], path));
      g_assert_true (g_str_has_prefix (lines[i] + strlen (path), expected[i]));
    }
}

static void
test_config_syntax_error (void)
{
  g_autofree char *path = weft_test_data_path ("syntax-error.yaml");
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftConfig) config = weft_config_load (path, &error);
  g_autofree char *prefix = g_strconcat (path, ":4:4: ", NULL);

  g_assert_null (config);
  g_assert_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG);
  g_test_message ("%s", error->message);
  g_assert_true (g_str_has_prefix (error->message, prefix));
}

static void
test_config_bad_address (void)
{
  static const char *const bad[] = {
    "localhost:15006", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "::1:15006",
    "[127.0.0.1]:15006", "[::1]15006", "127.0.0.1:+80", ":80",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *yaml = g_strdup_printf (
        "listeners:\n  - name: l\n    address: \"%s\"\n", bad[i]);
      g_autofree char *message = weft_test_config_error (yaml);
      g_autofree char *expected = g_strdup_printf (
        "test.yaml:3:14: invalid listener address '%s'", bad[i]);
      g_assert_true (g_str_has_prefix (message, expected));
    }
}

static void
test_config_duplicate_address (void)
{
  g_autofree char *message = weft_test_config_error (
    "listeners:\n"
    "  - {name: a, address: \"[::1]:15006\"}\n"
    "  - {name: b, address: \"[0:0::1]:15006\"}\n"
    "  - {name: c, address: \"127.0.0.1:15000\"}\n");

  g_assert_cmpstr (message, ==,
                   "test.yaml:3:24: address [0:0::1]:15006 is already used by listener 'a' "
                   "(at test.yaml:2:24)\n"
                   "test.yaml:4:24: listener address 127.0.0.1:15000 is the admin address");
}

static void
test_config_bad_duration (void)
{
  g_autofree char *message = weft_test_config_error ("timeouts:\n  connect: 5 parsecs\n"
                                                     "  drain: 0\n  request: 0\n");

  g_assert_cmpstr (message, ==,
                   "test.yaml:2:12: invalid duration '5 parsecs' "
                   "(expected e.g. 250ms, 5s, 1.5s, 2m or 1h)\n"
                   "test.yaml:3:10: 'drain' must be greater than zero");
}

static void
test_config_limits (void)
{
  g_autofree char *message = weft_test_config_error (
    "limits:\n  max_request_line: 100\n  max_request_headers: 1MiB\n  max_headers: 200\n");

  g_assert_cmpuint (weft_test_count_lines (message), ==, 3);
  g_assert_nonnull (strstr (message, "test.yaml:2:21: 'max_request_line' must be between 256 "
                                     "and 65536 bytes"));
  g_assert_nonnull (strstr (message, "test.yaml:4:16: 'max_headers' must be between 1 and 128"));
}

static void
test_config_alias_bomb (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftConfig) config = weft_test_load_fixture ("alias-bomb.yaml", &error);

  g_assert_null (config);
  g_assert_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG);
  g_assert_nonnull (strstr (error->message, "more than 1000000 nodes"));
}

static void
test_config_node_env (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftConfig) config = NULL;

  g_setenv ("WEFT_SERVICE", "reviews", TRUE);
  g_setenv ("WEFT_WORKLOAD", "reviews-v1", TRUE);
  g_setenv ("POD_NAMESPACE", "bookinfo", TRUE);
  g_setenv ("POD_NAME", "reviews-v1-abc", TRUE);
  g_setenv ("SERVICE_ACCOUNT", "bookinfo-reviews", TRUE);
  g_setenv ("WEFT_TRUST_DOMAIN", "example.org", TRUE);
  g_setenv ("WEFT_CLUSTER", "east", TRUE);
  g_setenv ("WEFT_LABEL_APP", "reviews", TRUE);
  g_setenv ("WEFT_LABEL_VERSION", "v1", TRUE);
  config = weft_test_load_fixture ("minimal.yaml", &error);
  weft_test_clear_env ();

  g_assert_no_error (error);
  g_assert_cmpstr (g_hash_table_lookup (config->node_fields, "service"), ==, "reviews");
  g_assert_cmpstr (g_hash_table_lookup (config->node_fields, "workload"), ==, "reviews-v1");
  g_assert_cmpstr (g_hash_table_lookup (config->node_fields, "namespace"), ==, "bookinfo");
  g_assert_cmpstr (g_hash_table_lookup (config->node_fields, "pod"), ==, "reviews-v1-abc");
  g_assert_cmpstr (g_hash_table_lookup (config->node_fields, "service_account"), ==,
                   "bookinfo-reviews");
  g_assert_cmpstr (g_hash_table_lookup (config->node_fields, "trust_domain"), ==, "example.org");
  g_assert_cmpstr (g_hash_table_lookup (config->node_fields, "cluster"), ==, "east");
  g_assert_cmpstr (g_hash_table_lookup (config->node_fields, "label.app"), ==, "reviews");
  g_assert_cmpstr (g_hash_table_lookup (config->node_fields, "label.version"), ==, "v1");
}

static void
test_config_node_override (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftConfig) config = NULL;

  g_setenv ("WEFT_SERVICE", "from-env", TRUE);
  g_setenv ("POD_NAME", "pod-from-env", TRUE);
  g_setenv ("WEFT_LABEL_VERSION", "v1", TRUE);
  config = weft_test_load_string ("node:\n  service: from-config\n"
                                  "  labels: {version: v9, team: books}\n", &error);
  weft_test_clear_env ();

  g_assert_no_error (error);
  g_assert_cmpstr (g_hash_table_lookup (config->node_fields, "service"), ==, "from-config");
  g_assert_cmpstr (g_hash_table_lookup (config->node_fields, "pod"), ==, "pod-from-env");
  g_assert_cmpstr (g_hash_table_lookup (config->node_fields, "label.version"), ==, "v9");
  g_assert_cmpstr (g_hash_table_lookup (config->node_fields, "label.team"), ==, "books");
  g_assert_cmpstr (g_hash_table_lookup (config->node_fields, "trust_domain"), ==, "cluster.local");
}

static void
test_config_sha256 (void)
{
  g_autofree char *path = weft_test_data_path ("minimal.yaml");
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftConfig) config = weft_config_load (path, &error);
  g_autofree char *contents = NULL;
  gsize len = 0;
  WeftConfigSource *source = NULL;

  g_assert_no_error (error);
  g_assert_true (g_file_get_contents (path, &contents, &len, NULL));
  g_autofree char *expected = g_compute_checksum_for_data (G_CHECKSUM_SHA256,
                                                           (const guchar *) contents, len);
  g_assert_cmpuint (config->sources->len, ==, 1);
  source = g_ptr_array_index (config->sources, 0);
  g_assert_cmpstr (source->path, ==, path);
  g_assert_cmpuint (strlen (source->sha256), ==, 64);
  g_assert_cmpstr (source->sha256, ==, expected);
}

static void
test_config_split_host_port (void)
{
  static const struct { const char *in; const char *host; guint16 port; } cases[] = {
    { "1.2.3.4:80", "1.2.3.4", 80 },
    { "[::1]:80", "::1", 80 },
    { "name.example:65535", "name.example", 65535 },
    { "1.2.3.4", NULL, 0 },
    { "::1:80", NULL, 0 },
    { "[]:80", NULL, 0 },
    { "[1.2.3.4]:80", NULL, 0 },
    { "name:0", NULL, 0 },
    { "name:65536", NULL, 0 },
    { "name:", NULL, 0 },
    { ":80", NULL, 0 },
    { "name:8x", NULL, 0 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *host = NULL;
      guint16 port = 0;
      gboolean ok = weft_config_split_host_port (cases[i].in, &host, &port);

      g_assert_cmpint (ok, ==, cases[i].host != NULL);
      g_assert_cmpstr (host, ==, cases[i].host);
      g_assert_cmpuint (port, ==, cases[i].port);
    }
}

static void
test_config_bad_endpoints (void)
{
  g_autofree char *message = weft_test_config_error (
    "upstreams:\n"
    "  - name: u\n"
    "    endpoints: [\"a..b:80\", \"x_y:80\", \"1.2.3:80\", \"ok.example:80\", \"[::1]:80\"]\n"
    "  - name: v\n");

  g_assert_cmpuint (weft_test_count_lines (message), ==, 4);
  g_assert_nonnull (strstr (message, "test.yaml:3:17: invalid endpoint 'a..b:80'"));
  g_assert_nonnull (strstr (message, "test.yaml:4:5: upstream is missing 'endpoints'"));
}

static void
test_config_upstream_policy (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftConfig) config = weft_test_load_fixture ("upstream-policy.yaml", &error);
  WeftUpstreamConfig *u;

  g_assert_no_error (error);
  g_assert_nonnull (config);

  u = weft_config_find_upstream (config, "sticky");
  g_assert_cmpint (u->lb.policy, ==, WEFT_LB_RING_HASH);
  g_assert_cmpint (u->lb.hash_on, ==, WEFT_HASH_ON_HEADER);
  g_assert_cmpstr (u->lb.hash_key, ==, "x-user");
  g_assert_true (u->lb.hash_key == u->hash_key);
  g_assert_cmpuint (u->lb.table_size, ==, 4096);
  g_assert_cmpuint (u->outlier.consecutive_5xx, ==, 7);
  g_assert_cmpuint (u->outlier.consecutive_gateway_errors, ==, 3);
  g_assert_cmpuint (u->outlier.base_ejection_ms, ==, 10000);
  g_assert_cmpuint (u->outlier.max_ejection_percent, ==, 50);
  g_assert_cmpuint (u->pool.max_requests, ==, 100);
  g_assert_cmpuint (u->pool.max_requests_per_connection, ==, 1000);
  g_assert_cmpuint (u->pool.connect_timeout_ms, ==, 0);

  u = weft_config_find_upstream (config, "maglev-cookie");
  g_assert_cmpint (u->lb.policy, ==, WEFT_LB_MAGLEV);
  g_assert_cmpint (u->lb.hash_on, ==, WEFT_HASH_ON_COOKIE);
  g_assert_cmpstr (u->lb.hash_key, ==, "session");
  g_assert_cmpuint (u->lb.table_size, ==, 251);
  /* no outlier_detection: off */
  g_assert_cmpuint (u->outlier.consecutive_5xx, ==, 0);
  g_assert_cmpuint (u->outlier.consecutive_gateway_errors, ==, 0);

  /* an empty outlier_detection mapping turns on the defaults */
  u = weft_config_find_upstream (config, "by-ip");
  g_assert_cmpint (u->lb.hash_on, ==, WEFT_HASH_ON_SOURCE_IP);
  g_assert_null (u->lb.hash_key);
  g_assert_cmpuint (u->lb.table_size, ==, 0);
  g_assert_cmpuint (u->outlier.consecutive_5xx, ==, 5);
  g_assert_cmpuint (u->outlier.consecutive_gateway_errors, ==, 0);
  g_assert_cmpuint (u->outlier.base_ejection_ms, ==, 30000);
  g_assert_cmpuint (u->outlier.max_ejection_percent, ==, 10);

  /* a null one is absent */
  u = weft_config_find_upstream (config, "least");
  g_assert_cmpint (u->lb.policy, ==, WEFT_LB_LEAST_REQUEST);
  g_assert_cmpint (u->lb.hash_on, ==, WEFT_HASH_ON_NONE);
  g_assert_cmpuint (u->outlier.consecutive_5xx, ==, 0);

  u = weft_config_find_upstream (config, "plain");
  g_assert_cmpint (u->lb.policy, ==, WEFT_LB_ROUND_ROBIN);
  g_assert_cmpuint (u->pool.max_requests, ==, 0);
}

static void
test_config_upstream_policy_errors (void)
{
  g_autofree char *message = weft_test_config_error (
    "upstreams:\n"
    "  - name: a\n"
    "    endpoints: [10.0.0.1:80]\n"
    "    load_balancer: {policy: least_requests, table_size: 7}\n"
    "  - name: b\n"
    "    endpoints: [10.0.0.1:80]\n"
    "    load_balancer:\n"
    "      policy: round_robin\n"
    "      hash_on: {header: x}\n"
    "      table_size: 1024\n"
    "  - name: c\n"
    "    endpoints: [10.0.0.1:80]\n"
    "    load_balancer:\n"
    "      policy: maglev\n"
    "      hash_on: {header: x, cookie: y}\n"
    "      table_size: 65536\n"
    "  - name: d\n"
    "    endpoints: [10.0.0.1:80]\n"
    "    load_balancer: {policy: ring_hash, hash_on: {source_ip: false}, table_size: 0}\n"
    "    outlier_detection: {consecutive_5xxx: 1, max_ejection_percent: 0}\n"
    "    connection_pool: {max_requests: lots}\n"
    "  - name: e\n"
    "    endpoints: [10.0.0.1:80]\n"
    "    load_balancer: {policy: ring_hash, hash_on: {header: \"bad header\"}, sticky: yes}\n"
    "    outlier_detection: {base_ejection_time: 0, max_ejection_percent: 101}\n"
    "    connection_pool: [1]\n"
    "    load_balancr: {}\n");

  g_assert_cmpstr (message, ==,
    "test.yaml:4:29: invalid load balancer policy 'least_requests' (expected round_robin, "
    "random, least_request, ring_hash or maglev)\n"
    "test.yaml:9:16: 'hash_on' needs policy ring_hash or maglev\n"
    "test.yaml:10:19: 'table_size' needs policy ring_hash or maglev\n"
    "test.yaml:15:16: 'hash_on' takes only one of header, cookie or source_ip\n"
    "test.yaml:16:19: 'table_size' must be a prime for maglev (the next one is 65537)\n"
    "test.yaml:19:61: 'source_ip' can only be true; to hash on nothing, leave 'hash_on' out\n"
    "test.yaml:19:81: 'table_size' must be between 1 and 1048576\n"
    "test.yaml:20:25: unknown key 'consecutive_5xxx' (did you mean 'consecutive_5xx'?)\n"
    "test.yaml:20:68: 'max_ejection_percent' must be between 1 and 100\n"
    "test.yaml:21:37: expected a non-negative integer, got 'lots'\n"
    "test.yaml:27:5: unknown key 'load_balancr' (did you mean 'load_balancer'?)\n"
    "test.yaml:24:73: unknown key 'sticky'\n"
    "test.yaml:24:58: invalid header name 'bad header'\n"
    "test.yaml:25:45: 'base_ejection_time' must be greater than zero\n"
    "test.yaml:25:70: 'max_ejection_percent' must be between 1 and 100\n"
    "test.yaml:26:22: expected a mapping, got a sequence");
}

/* ------------------------------------------------------------------ */
/* tls                                                                 */
/* ------------------------------------------------------------------ */

static const char weft_test_tls_yaml[] =
  "tls:\n"
  "  cert: /etc/weft/tls/cert.pem\n"
  "  key: /etc/weft/tls/key.pem\n"
  "  bundle: /etc/weft/tls/ca.pem\n"
  "  expiry_warning: 24h\n";

static void
test_config_tls (void)
{
  g_autofree char *yaml = g_strconcat (
    weft_test_tls_yaml,
    "listeners:\n"
    "  - {name: strict, address: 127.0.0.1:15006, tls: {mode: STRICT}}\n"
    "  - {name: permissive, address: 127.0.0.1:15007, tls: {mode: PERMISSIVE}}\n"
    "  - {name: disabled, address: 127.0.0.1:15008, tls: {mode: DISABLE}}\n"
    "  - {name: plain, address: 127.0.0.1:15009}\n"
    "upstreams:\n"
    "  - name: b\n"
    "    endpoints: [127.0.0.1:15106]\n"
    "    tls:\n"
    "      mode: ISTIO_MUTUAL\n"
    "      spiffe_ids: [spiffe://cluster.local/ns/default/sa/b, spiffe://cluster.local/ns/x/sa/b2]\n"
    "      sni: b.default.svc\n"
    "  - name: c\n"
    "    endpoints: [127.0.0.1:15107]\n"
    "    tls: {mode: ISTIO_MUTUAL}\n"
    "  - name: c-sni\n"
    "    endpoints: [127.0.0.1:15107]\n"
    "    tls: {mode: ISTIO_MUTUAL, sni: c.default.svc}\n"
    "  - name: c-again\n"
    "    endpoints: [127.0.0.1:15107]\n"
    "    tls: {mode: ISTIO_MUTUAL}\n"
    "  - name: off\n"
    "    endpoints: [127.0.0.1:15108]\n"
    "    tls: {mode: DISABLE}\n"
    "  - name: plain\n"
    "    endpoints: [127.0.0.1:15109]\n", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftConfig) config = weft_test_load_string (yaml, &error);
  const WeftTlsMode modes[] = {
    WEFT_TLS_MODE_STRICT, WEFT_TLS_MODE_PERMISSIVE, WEFT_TLS_MODE_DISABLE, WEFT_TLS_MODE_DISABLE,
  };
  WeftUpstreamConfig *u, *c;

  g_assert_no_error (error);
  g_assert_nonnull (config->tls);
  g_assert_cmpstr (config->tls->cert, ==, "/etc/weft/tls/cert.pem");
  g_assert_cmpstr (config->tls->key, ==, "/etc/weft/tls/key.pem");
  g_assert_cmpstr (config->tls->bundle, ==, "/etc/weft/tls/ca.pem");
  g_assert_cmpuint (config->tls->expiry_warning_ms, ==, 24 * 3600 * 1000);
  g_assert_cmpuint (weft_node_get_line (config->tls->node), ==, 2);

  g_assert_cmpuint (config->listeners->len, ==, G_N_ELEMENTS (modes));
  for (guint i = 0; i < G_N_ELEMENTS (modes); i++)
    {
      WeftListenerConfig *listener = g_ptr_array_index (config->listeners, i);
      g_assert_cmpint (listener->tls_mode, ==, modes[i]);
    }

  u = weft_config_find_upstream (config, "b");
  g_assert_true (u->tls);
  g_assert_cmpuint (g_strv_length (u->tls_spiffe_ids), ==, 2);
  g_assert_cmpstr (u->tls_spiffe_ids[0], ==, "spiffe://cluster.local/ns/default/sa/b");
  g_assert_cmpstr (u->tls_spiffe_ids[1], ==, "spiffe://cluster.local/ns/x/sa/b2");
  g_assert_cmpstr (u->tls_sni, ==, "b.default.svc");

  /* no spiffe_ids: any ID of the trust domain; no sni: none */
  c = weft_config_find_upstream (config, "c");
  g_assert_true (c->tls);
  g_assert_null (c->tls_spiffe_ids);
  g_assert_null (c->tls_sni);
  /* the pool keeps different TLS settings apart, and the same together */
  g_assert_cmpuint (c->tls_tag, !=, u->tls_tag);
  g_assert_cmpuint (c->tls_tag, !=, weft_config_find_upstream (config, "c-sni")->tls_tag);
  g_assert_cmpuint (c->tls_tag, ==, weft_config_find_upstream (config, "c-again")->tls_tag);

  for (guint i = 0; i < 2; i++)
    {
      u = weft_config_find_upstream (config, i == 0 ? "off" : "plain");
      g_assert_false (u->tls);
      g_assert_null (u->tls_spiffe_ids);
      g_assert_null (u->tls_sni);
    }
}

/* no tls: at all is fine while nothing asks for mTLS */
static void
test_config_tls_absent (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftConfig) config = weft_test_load_fixture ("minimal.yaml", &error);

  g_assert_no_error (error);
  g_assert_null (config->tls);
  for (guint i = 0; i < config->listeners->len; i++)
    g_assert_cmpint (((WeftListenerConfig *) g_ptr_array_index (config->listeners, i))->tls_mode,
                     ==, WEFT_TLS_MODE_DISABLE);
}

static void
test_config_tls_without_section (void)
{
  g_autofree char *message = weft_test_config_error (
    "listeners:\n"
    "  - name: inbound\n"
    "    address: 127.0.0.1:15006\n"
    "    tls: {mode: STRICT}\n"
    "  - name: both\n"
    "    address: 127.0.0.1:15007\n"
    "    tls:\n"
    "      mode: PERMISSIVE\n"
    "  - name: off\n"
    "    address: 127.0.0.1:15008\n"
    "    tls: {mode: DISABLE}\n"
    "upstreams:\n"
    "  - name: b\n"
    "    endpoints: [127.0.0.1:15106]\n"
    "    tls: {mode: ISTIO_MUTUAL}\n");

  /* each at the mode that asks; DISABLE asks nothing */
  g_assert_cmpstr (message, ==,
    "test.yaml:15:17: upstream 'b' asks for mTLS, but there is no top-level 'tls:' with cert, "
    "key and bundle\n"
    "test.yaml:4:17: listener 'inbound' asks for mTLS, but there is no top-level 'tls:' with "
    "cert, key and bundle\n"
    "test.yaml:8:13: listener 'both' asks for mTLS, but there is no top-level 'tls:' with cert, "
    "key and bundle");
}

/* tls.ports: a mode per original destination port, the rest take mode */
static void
test_config_tls_ports (void)
{
  g_autofree char *yaml = g_strconcat (
    weft_test_tls_yaml,
    "listeners:\n"
    "  - name: in\n"
    "    address: 127.0.0.1:15006\n"
    "    tls: {mode: STRICT, ports: {8080: DISABLE, 9090: PERMISSIVE}}\n"
    "  - name: only-ports\n"
    "    address: 127.0.0.1:15007\n"
    "    tls: {ports: {8443: STRICT}}\n", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftConfig) config = weft_test_load_string (yaml, &error);
  WeftListenerConfig *in, *only;
  g_autofree char *bad = g_strconcat (
    weft_test_tls_yaml,
    "listeners:\n"
    "  - {name: a, address: 127.0.0.1:15006, tls: {ports: {0: STRICT, http: DISABLE, 80: strict}}}\n",
    NULL);
  g_autofree char *message = weft_test_config_error (bad);
  g_autofree char *no_tls = weft_test_config_error (
    "listeners:\n  - {name: a, address: 127.0.0.1:15006, tls: {ports: {8443: PERMISSIVE}}}\n");

  g_assert_no_error (error);
  in = config->listeners->pdata[0];
  only = config->listeners->pdata[1];
  g_assert_cmpint (weft_listener_config_tls_mode (in, 8080), ==, WEFT_TLS_MODE_DISABLE);
  g_assert_cmpint (weft_listener_config_tls_mode (in, 9090), ==, WEFT_TLS_MODE_PERMISSIVE);
  g_assert_cmpint (weft_listener_config_tls_mode (in, 15006), ==, WEFT_TLS_MODE_STRICT);
  g_assert_cmpint (weft_listener_config_tls_mode (in, 1), ==, WEFT_TLS_MODE_STRICT);
  g_assert_cmpint (weft_listener_config_tls_mode (only, 8443), ==, WEFT_TLS_MODE_STRICT);
  g_assert_cmpint (weft_listener_config_tls_mode (only, 15007), ==, WEFT_TLS_MODE_DISABLE);
  g_assert_nonnull (strstr (message, "'0' is not a port"));
  g_assert_nonnull (strstr (message, "'http' is not a port"));
  g_assert_nonnull (strstr (message, "invalid tls mode 'strict'"));
  /* a port-level mTLS mode needs the certificate as much as a listener's */
  g_assert_nonnull (strstr (no_tls, "asks for mTLS, but there is no top-level 'tls:'"));
}

static void
test_config_tls_bad_mode (void)
{
  g_autofree char *yaml = g_strconcat (
    weft_test_tls_yaml,
    "listeners:\n"
    "  - {name: a, address: 127.0.0.1:15006, tls: {mode: strict}}\n"
    "  - {name: b, address: 127.0.0.1:15007, tls: {mode: ISTIO_MUTUAL}}\n"
    "  - {name: c, address: 127.0.0.1:15008, tls: {mode: [STRICT]}}\n"
    "  - {name: d, address: 127.0.0.1:15009, tls: STRICT}\n"
    "upstreams:\n"
    "  - name: u\n"
    "    endpoints: [127.0.0.1:15106]\n"
    "    tls: {mode: STRICT}\n", NULL);
  g_autofree char *message = weft_test_config_error (yaml);

  /* modes are case-sensitive, and a listener's are not an upstream's */
  g_assert_cmpstr (message, ==,
    "test.yaml:14:17: invalid tls mode 'STRICT' (expected ISTIO_MUTUAL or DISABLE)\n"
    "test.yaml:7:53: invalid tls mode 'strict' (expected STRICT, PERMISSIVE or DISABLE)\n"
    "test.yaml:8:53: invalid tls mode 'ISTIO_MUTUAL' (expected STRICT, PERMISSIVE or DISABLE)\n"
    "test.yaml:9:53: expected a string, got a sequence\n"
    "test.yaml:10:46: expected a mapping, got a scalar");
}

static void
test_config_tls_bad_upstream (void)
{
  g_autofree char *yaml = g_strconcat (
    weft_test_tls_yaml,
    "upstreams:\n"
    "  - name: a\n"
    "    endpoints: [127.0.0.1:15106]\n"
    "    tls:\n"
    "      mode: ISTIO_MUTUAL\n"
    "      spiffe_ids: [spiffe://cluster.local/ns/default/sa/ok, spiffe://cluster.local/sa/b, \"https://b\", [x]]\n"
    "      sni: \"not a host\"\n"
    "  - name: b\n"
    "    endpoints: [127.0.0.1:15106]\n"
    "    tls: {mode: ISTIO_MUTUAL, spiffe_ids: spiffe://cluster.local/ns/default/sa/b}\n"
    "  - name: c\n"
    "    endpoints: [127.0.0.1:15106]\n"
    "    tls: {mode: ISTIO_MUTUAL, spiffe_id: spiffe://cluster.local/ns/default/sa/c}\n", NULL);
  g_autofree char *message = weft_test_config_error (yaml);

  g_assert_cmpstr (message, ==,
    "test.yaml:11:61: 'spiffe://cluster.local/sa/b' is not a SPIFFE ID of the form "
    "spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>\n"
    "test.yaml:11:90: 'https://b' is not a SPIFFE ID of the form "
    "spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>\n"
    "test.yaml:11:103: expected a string, got a sequence\n"
    "test.yaml:12:12: tls.sni 'not a host' is not a DNS name\n"
    "test.yaml:15:43: expected a sequence, got a scalar\n"
    "test.yaml:18:31: unknown key 'spiffe_id' (did you mean 'spiffe_ids'?)");
}

static void
test_config_tls_bad_section (void)
{
  g_autofree char *message = weft_test_config_error (
    "tls:\n"
    "  cert: /etc/weft/tls/cert.pem\n"
    "  keyy: /etc/weft/tls/key.pem\n"
    "  bundle: \"\"\n"
    "  expiry_warning: soon\n"
    "listeners:\n"
    "  - {name: a, address: 127.0.0.1:15006, tls: {mode: STRICT, spiffe_ids: []}}\n");

  /* spiffe_ids is an upstream's: a listener checks peers by the bundle */
  g_assert_cmpstr (message, ==,
    "test.yaml:3:3: unknown key 'keyy' (did you mean 'key'?)\n"
    "test.yaml:2:3: tls is missing 'key'\n"
    "test.yaml:4:11: tls.bundle is empty\n"
    "test.yaml:5:19: invalid duration 'soon' (expected e.g. 250ms, 5s, 1.5s, 2m or 1h)\n"
    "test.yaml:7:61: unknown key 'spiffe_ids'");
}

static void
test_config_tls_twice (void)
{
  g_autofree char *yaml = g_strconcat (weft_test_tls_yaml, "---\n", weft_test_tls_yaml, NULL);
  g_autofree char *message = weft_test_config_error (yaml);

  g_assert_cmpstr (message, ==, "test.yaml:7:1: 'tls' is defined twice (first at test.yaml:1:1)");
}

/* relative PEM paths resolve against the directory of the file that
 * names them, not the working directory: a kubelet volume's own
 * directory, where the certificates sit beside the config */
/* a config named by a relative path still gives absolute file names */
static void
test_config_tls_relative_to_cwd (const char *root)
{
  g_autofree char *cwd = g_get_current_dir ();
  g_autofree char *cert = g_build_filename (root, "certs", "cert.pem", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftConfig) config = NULL;

  g_assert_cmpint (g_chdir (root), ==, 0);
  config = weft_config_load ("weft.yaml", &error);
  g_assert_cmpint (g_chdir (cwd), ==, 0);
  g_assert_no_error (error);
  g_assert_cmpstr (config->tls->cert, ==, cert);
  g_assert_true (g_path_is_absolute (config->tls->key));
}

static void
test_config_tls_relative (void)
{
  const char *const files[] = {
    "weft.yaml",
    "tls:\n  cert: certs/cert.pem\n  key: key.pem\n  bundle: /etc/weft/tls/ca.pem\n"
    "listeners:\n  - {name: in, address: 127.0.0.1:15006, tls: {mode: STRICT}}\n",
    NULL
  };
  g_autofree char *root = weft_test_configmap_dir (files);
  g_autofree char *file = g_build_filename (root, "weft.yaml", NULL);
  const char *loads[] = { root, file };

  for (guint i = 0; i < G_N_ELEMENTS (loads); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(WeftConfig) config = weft_config_load (loads[i], &error);
      g_autofree char *cert = g_build_filename (root, "certs", "cert.pem", NULL);
      g_autofree char *key = g_build_filename (root, "key.pem", NULL);

      g_assert_no_error (error);
      g_assert_cmpstr (config->tls->cert, ==, cert);
      g_assert_cmpstr (config->tls->key, ==, key);
      g_assert_cmpstr (config->tls->bundle, ==, "/etc/weft/tls/ca.pem");
      g_assert_true (g_path_is_absolute (config->tls->cert));
    }
  test_config_tls_relative_to_cwd (root);
  weft_test_rm_rf (root);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  weft_test_clear_env ();

  g_test_add_func ("/node/positions", test_node_positions);
  g_test_add_func ("/node/null-and-quotes", test_node_null_and_quotes);
  g_test_add_func ("/node/getters", test_node_getters);
  g_test_add_func ("/node/check-keys", test_node_check_keys);
  g_test_add_func ("/node/errors", test_node_errors);
  g_test_add_func ("/node/alias", test_node_alias);
  g_test_add_func ("/node/alias-bomb", test_node_alias_bomb);
  g_test_add_func ("/config/minimal", test_config_minimal);
  g_test_add_func ("/config/full", test_config_full);
  g_test_add_func ("/config/admin-only", test_config_admin_only);
  g_test_add_func ("/config/dir/order", test_config_dir_order);
  g_test_add_func ("/config/dir/duplicate", test_config_dir_duplicate);
  g_test_add_func ("/config/dir/syntax-errors", test_config_dir_syntax_errors);
  g_test_add_func ("/config/dir/empty", test_config_dir_empty);
  g_test_add_func ("/config/missing", test_config_missing);
  g_test_add_func ("/config/unknown-key", test_config_unknown_key);
  g_test_add_func ("/config/plugin-nodes", test_config_plugin_nodes);
  g_test_add_func ("/config/plugin-nodes-twice", test_config_plugin_nodes_twice);
  g_test_add_func ("/config/foreign-document", test_config_foreign_document);
  g_test_add_func ("/config/many-problems", test_config_many_problems);
  g_test_add_func ("/config/syntax-error", test_config_syntax_error);
  g_test_add_func ("/config/bad-address", test_config_bad_address);
  g_test_add_func ("/config/duplicate-address", test_config_duplicate_address);
  g_test_add_func ("/config/bad-duration", test_config_bad_duration);
  g_test_add_func ("/config/bad-endpoints", test_config_bad_endpoints);
  g_test_add_func ("/config/limits", test_config_limits);
  g_test_add_func ("/config/alias-bomb", test_config_alias_bomb);
  g_test_add_func ("/config/node-env", test_config_node_env);
  g_test_add_func ("/config/node-override", test_config_node_override);
  g_test_add_func ("/config/sha256", test_config_sha256);
  g_test_add_func ("/config/split-host-port", test_config_split_host_port);
  g_test_add_func ("/config/upstream-policy", test_config_upstream_policy);
  g_test_add_func ("/config/upstream-policy-errors", test_config_upstream_policy_errors);
  g_test_add_func ("/config/tls", test_config_tls);
  g_test_add_func ("/config/tls-absent", test_config_tls_absent);
  g_test_add_func ("/config/tls-without-section", test_config_tls_without_section);
  g_test_add_func ("/config/tls-bad-mode", test_config_tls_bad_mode);
  g_test_add_func ("/config/tls-bad-upstream", test_config_tls_bad_upstream);
  g_test_add_func ("/config/tls-bad-section", test_config_tls_bad_section);
  g_test_add_func ("/config/tls-twice", test_config_tls_twice);
  g_test_add_func ("/config/tls-relative", test_config_tls_relative);
  g_test_add_func ("/config/tls-ports", test_config_tls_ports);

  return g_test_run ();
}
