/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for the config loader (YAML -> WeftNode -> WeftConfig,
 * core/weft-config.c and weft-node.c) and for what the router and acl
 * plugins make of it: weft's own router: and acl: settings, Istio
 * VirtualService, DestinationRule and AuthorizationPolicy, Gateway API
 * HTTPRoute. The plugin sources are compiled in (fuzz/meson.build), and
 * each document goes to the plugin that claims its kind, as the generation
 * does, with a context that knows the config's upstreams
 * (fuzz-plugin-context.c); a router config that finishes is then asked to
 * route a few requests, and an acl config to decide one.
 *
 * Checked besides memory errors, leaks and UB: a failed load has an error
 * whose lines each start with the file name (file:line:col), and a config
 * that loads twice from the same bytes gives the same listeners.
 */

#include "fuzz-plugin-context.h"
#include "weft-acl-private.h"
#include "weft-route-table-private.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define WEFT_FUZZ_FILE "fuzz.yaml"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);
int LLVMFuzzerInitialize (int *argc, char ***argv);

/* WEFT_FUZZ_DEBUG=1 prints why each input stopped where it did: for
 * checking that seeds reach the translators */
static gboolean weft_fuzz_debug;

static void
weft_fuzz_report (const char *stage, const GError *error)
{
  if (weft_fuzz_debug)
    fprintf (stderr, "%s: %s\n", stage, error != NULL ? error->message : "ok");
}

/* every line of a load error says where: "fuzz.yaml:line:col: ..." or
 * "fuzz.yaml: ..." */
static void
weft_fuzz_check_error (const GError *error)
{
  g_auto(GStrv) lines = NULL;

  WEFT_FUZZ_CHECK (error != NULL && error->message != NULL && error->message[0] != '\0');
  lines = g_strsplit (error->message, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    WEFT_FUZZ_CHECK (lines[i][0] == '\0' || g_str_has_prefix (lines[i], WEFT_FUZZ_FILE));
}

static const char *
weft_fuzz_header (gpointer data, const char *name)
{
  return g_ascii_strcasecmp (name, "x-user") == 0 ? "alice" : NULL;
}

/* a few requests through the finished table: the hosts it knows and others */
static void
weft_fuzz_route (WeftRouterConfig *router)
{
  static const char *const targets[] = { "/", "/api/v1/users?id=1&debug", "/API/", "//a/../b" };
  g_autoptr(WeftRouteScratch) scratch = weft_route_scratch_new (router->table);
  g_autoptr(GPtrArray) hosts = g_ptr_array_new ();
  WeftRouteView view;

  g_ptr_array_add (hosts, "unknown.example:8080");
  g_ptr_array_add (hosts, NULL);
  for (guint v = 0; v < router->vhosts->len; v++)
    {
      WeftVirtualHost *vhost = router->vhosts->pdata[v];
      for (guint d = 0; d < vhost->domains->len && d < 4; d++)
        g_ptr_array_add (hosts, vhost->domains->pdata[d]);
    }
  for (guint h = 0; h < hosts->len; h++)
    for (gsize t = 0; t < G_N_ELEMENTS (targets); t++)
      {
        const WeftVirtualHost *vhost = NULL;
        const WeftRouteRule *rule;

        weft_route_view_init (&view, t % 2 ? "POST" : "GET", hosts->pdata[h], targets[t],
                              weft_fuzz_header, NULL);
        rule = weft_route_table_match (router->table, scratch, &view, &vhost);
        WEFT_FUZZ_CHECK (rule == NULL || rule->action != NULL);
      }
}

static void
weft_fuzz_router (WeftConfig *config, WeftPluginContext *ctx)
{
  WeftRouterConfig *router = weft_router_config_new (ctx);
  g_autoptr(GError) error = NULL;
  gboolean ok;

  ok = weft_router_parse_settings (router, g_hash_table_lookup (config->plugin_nodes, "router"),
                                   &error);
  for (guint i = 0; ok && i < config->documents->len; i++)
    {
      WeftConfigDocument *doc = config->documents->pdata[i];
      if (weft_router_config_takes_kind (doc->kind))
        ok = weft_router_config_add_document (router, doc->root, &error);
    }
  if (ok)
    ok = weft_router_config_finish (router, &error);
  WEFT_FUZZ_CHECK (ok == (error == NULL));
  weft_fuzz_report ("router", error);
  if (ok)
    weft_fuzz_route (router);
  weft_router_config_free (router);
}

static const char *
weft_fuzz_node_field (gpointer data, const char *field)
{
  const WeftConfig *config = data;

  return g_hash_table_lookup (config->node_fields, field);
}

static void
weft_fuzz_acl_decide (WeftAclConfig *acl)
{
  struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons (40000),
                              .sin_addr.s_addr = htonl (0x0a000001) };
  WeftPolicyInput in = {
    .principal = "cluster.local/ns/default/sa/client",
    .peer = (const struct sockaddr *) &peer,
    .peer_len = sizeof peer,
    .authority = "service-b:8080",
    .port = 8080,
    .method = "GET",
    .path = "/api/v1/users",
    .get_header = weft_fuzz_header,
  };
  WeftAclDecision decision;

  weft_acl_evaluate (acl, &in, NULL, NULL, &decision);
  WEFT_FUZZ_CHECK (decision.verdict == WEFT_ACL_VERDICT_ALLOW ||
                   decision.verdict == WEFT_ACL_VERDICT_DENY);
}

static void
weft_fuzz_acl (WeftConfig *config)
{
  g_autoptr(WeftAclConfig) acl = weft_acl_config_new (weft_fuzz_node_field, config);
  g_autoptr(GError) error = NULL;
  gboolean ok;

  ok = weft_acl_config_parse_settings (acl, g_hash_table_lookup (config->plugin_nodes, "acl"),
                                       &error);
  for (guint i = 0; ok && i < config->documents->len; i++)
    {
      WeftConfigDocument *doc = config->documents->pdata[i];
      if (g_str_equal (doc->kind, "AuthorizationPolicy"))
        ok = weft_acl_config_add_document (acl, doc->root, &error);
    }
  if (ok)
    ok = weft_acl_config_finish (acl, &error);
  WEFT_FUZZ_CHECK (ok == (error == NULL));
  weft_fuzz_report ("acl", error);
  if (ok)
    weft_fuzz_acl_decide (acl);
}

/* the same bytes load to the same config */
static void
weft_fuzz_check_again (const uint8_t *data, size_t size, const WeftConfig *first)
{
  g_autoptr(GError) error = NULL;
  WeftConfig *again = weft_config_load_data (WEFT_FUZZ_FILE, (const char *) data, size, &error);

  WEFT_FUZZ_CHECK (again != NULL);
  WEFT_FUZZ_CHECK (again->listeners->len == first->listeners->len);
  WEFT_FUZZ_CHECK (again->upstreams->len == first->upstreams->len);
  WEFT_FUZZ_CHECK (again->documents->len == first->documents->len);
  for (guint i = 0; i < first->listeners->len; i++)
    {
      const WeftListenerConfig *a = first->listeners->pdata[i];
      const WeftListenerConfig *b = again->listeners->pdata[i];
      WEFT_FUZZ_CHECK (g_strcmp0 (a->name, b->name) == 0 && a->port == b->port);
    }
  weft_config_free (again);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  /* the node fields must not come from the fuzzing machine's environment */
  static const char *const env[] = {
    "WEFT_SERVICE", "WEFT_WORKLOAD", "POD_NAMESPACE", "POD_NAME", "SERVICE_ACCOUNT",
    "WEFT_TRUST_DOMAIN", "WEFT_CLUSTER", "WEFT_LABEL_APP", "WEFT_LABEL_VERSION",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (env); i++)
    g_unsetenv (env[i]);
  weft_fuzz_debug = g_getenv ("WEFT_FUZZ_DEBUG") != NULL;
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr(GError) error = NULL;
  WeftConfig *config;
  WeftPluginContext *ctx;

  /* an exact-size copy without a NUL: the loader must honour the length */
  config = weft_config_load_data (WEFT_FUZZ_FILE, (const char *) data, size, &error);
  weft_fuzz_report ("load", error);
  if (config == NULL)
    {
      weft_fuzz_check_error (error);
      return 0;
    }
  WEFT_FUZZ_CHECK (error == NULL);
  weft_fuzz_check_again (data, size, config);
  ctx = weft_fuzz_context_new (config);
  weft_fuzz_router (config, ctx);
  weft_fuzz_acl (config);
  weft_fuzz_context_free (ctx);
  weft_config_free (config);
  return 0;
}
