/* SPDX-License-Identifier: LGPL-2.1-or-later
 * WeftGeneration: what a reload builds. Hooks compile into flat per-phase
 * arrays in listener order, documents go to the plugin claiming them,
 * bad plugin settings fail the whole build with positions, and kept
 * plugin state is the same block in the next generation. */
#include "weft-generation-private.h"
#include "weft-metrics-private.h"

#include <string.h>

static char *
plugin_dir (void)
{
  return g_build_filename (g_getenv ("WEFT_BUILD_ROOT"), "tests", "e2e", NULL);
}

static WeftGeneration *
build (const char *yaml, WeftGeneration *previous, GError **error)
{
  g_autofree char *dir = plugin_dir ();
  g_autofree char *text = g_strdup_printf ("plugin_dirs: [%s]\n%s", dir, yaml);
  WeftConfig *config = weft_config_load_data ("gen.yaml", text, strlen (text), error);

  if (config == NULL)
    return NULL;
  return weft_generation_new (config, 2, previous, error);
}

static const char *base =
  "listeners:\n"
  "  - name: in\n"
  "    address: 127.0.0.1:1\n"
  "    upstream: app\n"
  "    plugins: [probe]\n"
  "  - name: bare\n"
  "    address: 127.0.0.1:2\n"
  "    upstream: app\n"
  "upstreams:\n"
  "  - name: app\n"
  "    endpoints: [127.0.0.1:3]\n"
  "probe:\n"
  "  upstreams: [app]\n"
  "---\n"
  "apiVersion: test.weft.dev/v1\n"
  "kind: Probe\n"
  "message: hello\n";

static void
test_flat_hooks (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftGeneration) gen = build (base, NULL, &error);
  WeftListener *in, *bare;

  g_assert_no_error (error);
  in = weft_generation_find_listener (gen, "in");
  bare = weft_generation_find_listener (gen, "bare");
  /* probe has route, pre-access, access, response and log hooks; no upstream one */
  g_assert_cmpuint (in->n_hooks[WEFT_PHASE_ROUTE], ==, 1);
  g_assert_cmpuint (in->n_hooks[WEFT_PHASE_ACCESS], ==, 1);
  g_assert_cmpuint (in->n_hooks[WEFT_PHASE_UPSTREAM], ==, 0);
  g_assert_cmpuint (in->n_hooks[WEFT_PHASE_LOG], ==, 1);
  for (guint p = 0; p < WEFT_PHASE_COUNT; p++)
    g_assert_cmpuint (bare->n_hooks[p], ==, 0);
  g_assert_true (in->default_upstream == g_hash_table_lookup (gen->upstream_by_name, "app"));
  g_assert_cmpuint (gen->plugins->len, ==, 1);
}

static void
test_document_needs_a_claimer (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *yaml = g_strconcat (base, "---\napiVersion: other.dev/v1\nkind: Thing\n", NULL);
  g_autoptr(WeftGeneration) gen = build (yaml, NULL, &error);

  g_assert_null (gen);
  g_assert_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG);
  g_assert_true (g_str_has_prefix (error->message, "gen.yaml:"));
  g_assert_nonnull (strstr (error->message, "no loaded plugin handles apiVersion 'other.dev/v1'"));
}

static void
test_plugin_errors_collected (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *yaml = g_strdup (base);
  g_autoptr(WeftGeneration) gen = NULL;
  char *at = strstr (yaml, "upstreams: [app]");

  memcpy (at, "upstreams: [zzz]", 16);
  gen = build (yaml, NULL, &error);
  g_assert_null (gen);
  g_test_message ("%s", error->message);
  g_assert_true (g_str_has_prefix (error->message, "gen.yaml:14:15: probe: unknown upstream 'zzz'\n"));
  /* reported once, though both a listener and the top level name it */
  g_assert_null (strstr (error->message + 1, "gen.yaml:14:15"));
}

static void
test_kept_state_survives (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftGeneration) one = build (base, NULL, &error);
  g_autoptr(WeftGeneration) two = NULL;
  WeftGenPlugin *p1, *p2;

  g_assert_no_error (error);
  two = build (base, one, &error);
  g_assert_no_error (error);
  p1 = one->plugins->pdata[0];
  p2 = two->plugins->pdata[0];
  /* the probe config's first field after the hash table is its kept counter */
  g_assert_true (p1->plugin == p2->plugin);
  g_assert_true (p1->config != p2->config);
  g_assert_true (((gpointer *) p1->config)[3] == ((gpointer *) p2->config)[3]);
}

static void
test_worker_init_fini (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftGeneration) gen = build (base, NULL, &error);
  GMainContext *ctx = g_main_context_new ();
  WeftGenPlugin *gp;

  g_assert_no_error (error);
  g_main_context_push_thread_default (ctx);
  gp = gen->plugins->pdata[0];
  weft_generation_worker_init (gen, 1);
  g_assert_nonnull (gp->worker_data[1]);
  g_assert_null (gp->worker_data[0]);
  weft_generation_worker_fini (gen, 1);
  g_assert_null (gp->worker_data[1]);
  g_main_context_pop_thread_default (ctx);
  g_main_context_unref (ctx);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  weft_metrics_init (2);
  g_test_add_func ("/generation/flat-hooks", test_flat_hooks);
  g_test_add_func ("/generation/document-needs-a-claimer", test_document_needs_a_claimer);
  g_test_add_func ("/generation/plugin-errors-collected", test_plugin_errors_collected);
  g_test_add_func ("/generation/kept-state-survives", test_kept_state_survives);
  g_test_add_func ("/generation/worker-init-fini", test_worker_init_fini);
  return g_test_run ();
}
