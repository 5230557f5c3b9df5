/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "weft-generation-private.h"
#include "weft-log-private.h"
#include "weft-metrics-private.h"
#include "weft-retry-policy-private.h"
#include "weft-tls-credentials-private.h"

#include <glib/gi18n.h>
#include <malloc.h>
#include <string.h>

typedef struct {
  WeftGenPlugin *gp;
  gpointer       instance;
} WeftInstance;

static GHashTable *weft_kept_state;   /* "plugin\x1fkey" -> block; main thread */

/* the host API a plugin's control side gets */

guint
weft_plugin_context_get_slot (WeftPluginContext *ctx)
{
  return ctx->gp->plugin->slot;
}

WeftUpstream *
weft_plugin_context_lookup_upstream (WeftPluginContext *ctx, const char *name)
{
  return g_hash_table_lookup (ctx->gen->upstream_by_name, name);
}

guint
weft_plugin_context_get_n_workers (WeftPluginContext *ctx)
{
  return ctx->gen->n_workers;
}

WeftUpstream *
weft_plugin_context_add_upstream (WeftPluginContext *ctx, const char *name, const char *host,
                                  guint16 port, GError **error)
{
  WeftGeneration *gen = ctx->gen;
  WeftUpstream *up = g_hash_table_lookup (gen->upstream_by_name, name);
  WeftUpstream *prev;
  WeftUpstreamConfig *uc;

  if (up != NULL)
    return up;
  if (host == NULL || *host == '\0' || strpbrk (host, " /:@?#[]") != NULL)
    {
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG, _("'%s' is not a host name"),
                   host ? host : "");
      return NULL;
    }
  uc = weft_config_add_upstream (gen->config, name, host, port);
  prev = gen->previous != NULL ? g_hash_table_lookup (gen->previous->upstream_by_name, name)
                               : NULL;
  up = weft_upstream_new (uc, gen->n_workers, prev);
  g_ptr_array_add (gen->upstreams, up);
  g_hash_table_insert (gen->upstream_by_name, up->name, up);
  return up;
}

gboolean
weft_plugin_context_configure_upstream (WeftPluginContext *ctx, WeftUpstream *upstream,
                                        const WeftLbSpec *lb, const WeftOutlierSpec *outlier,
                                        const WeftPoolSpec *pool, GError **error)
{
  (void) ctx;
  return weft_upstream_set_policy (upstream, lb, outlier, pool, error);
}

const char *
weft_plugin_context_get_node_field (WeftPluginContext *ctx, const char *field)
{
  return g_hash_table_lookup (ctx->gen->config->node_fields, field);
}

WeftMetric *
weft_plugin_context_register_metric (WeftPluginContext *ctx, WeftMetricType type,
                                     const char *name, const char *help,
                                     const char *const *label_names,
                                     const double *buckets, guint n_buckets)
{
  WeftMetric *metric = weft_metrics_register (type, name, help, label_names, buckets, n_buckets);

  if (metric == NULL)
    weft_log (WEFT_LOG_WARNING, "plugin", "%s: cannot register metric '%s' (bad name or type)",
              ctx->gp->plugin->name, name);
  return metric;
}

typedef struct {
  gsize size;
  gpointer block;
} WeftKeptState;

static void
weft_kept_state_free (gpointer data)
{
  WeftKeptState *state = data;

  g_free (state->block);
  g_free (state);
}

gpointer
weft_plugin_context_keep_state (WeftPluginContext *ctx, const char *key, gsize size)
{
  g_autofree char *full = g_strconcat (ctx->gp->plugin->name, "\x1f", key, NULL);
  WeftKeptState *state;

  if (weft_kept_state == NULL)
    weft_kept_state = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                             weft_kept_state_free);
  state = g_hash_table_lookup (weft_kept_state, full);
  /* same key, same size: the same block as the generation before */
  if (state != NULL && state->size == size)
    return state->block;
  if (state != NULL)
    {
      /* an old generation may still use the old block: keep it alive */
      g_autofree char *graveyard = g_strdup_printf ("%s\x1f%p", full, state->block);
      g_hash_table_steal (weft_kept_state, full);
      g_hash_table_insert (weft_kept_state, g_steal_pointer (&graveyard), state);
    }
  state = g_new0 (WeftKeptState, 1);
  state->size = size;
  state->block = g_malloc0 (MAX (size, 1));
  g_hash_table_insert (weft_kept_state, g_steal_pointer (&full), state);
  return state->block;
}

/* building */

typedef struct {
  WeftGeneration *gen;
  GPtrArray      *dirs;
  GString        *problems;
  GHashTable     *failed;      /* plugin names already reported */
} WeftGenBuilder;

static void
weft_gen_problem (WeftGenBuilder *b, const GError *error)
{
  if (b->problems->len > 0)
    g_string_append_c (b->problems, '\n');
  g_string_append (b->problems, error->message);
}

/* the workload's certificate: read once here, used by every handshake of
 * this generation */
static void
weft_gen_load_tls (WeftGenBuilder *b)
{
  WeftTlsConfig *tls = b->gen->config->tls;
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) positioned = NULL;

  if (tls == NULL || tls->cert == NULL || tls->key == NULL || tls->bundle == NULL)
    return;
  b->gen->tls = weft_tls_credentials_load (tls->cert, tls->key, tls->bundle, &error);
  if (b->gen->tls != NULL)
    return;
  weft_node_set_error (tls->node, &positioned, "tls: %s", error->message);
  if (b->problems->len > 0)
    g_string_append_c (b->problems, '\n');
  g_string_append (b->problems, positioned->message);
}

static void
weft_gen_problem_at (WeftGenBuilder *b, const WeftNode *node, const GError *error)
{
  g_autoptr(GError) positioned = NULL;

  if (error->domain == WEFT_ERROR && error->code == WEFT_ERROR_CONFIG)
    {
      weft_gen_problem (b, error);
      return;
    }
  weft_node_set_error (node, &positioned, "%s", error->message);
  weft_gen_problem (b, positioned);
}

static WeftGenPlugin *
weft_gen_find_plugin (WeftGeneration *gen, const char *name)
{
  for (guint i = 0; i < gen->plugins->len; i++)
    {
      WeftGenPlugin *gp = gen->plugins->pdata[i];
      if (strcmp (gp->plugin->name, name) == 0)
        return gp;
    }
  return NULL;
}

static guint
weft_gen_plugin_index (WeftGeneration *gen, WeftGenPlugin *gp)
{
  guint idx = 0;

  g_ptr_array_find (gen->plugins, gp, &idx);
  return idx;
}

/* loads the plugin and parses its top-level settings, once per generation */
static WeftGenPlugin *
weft_gen_use_plugin (WeftGenBuilder *b, const char *name, const WeftNode *where)
{
  WeftGeneration *gen = b->gen;
  WeftGenPlugin *gp = weft_gen_find_plugin (gen, name);
  g_autoptr(GError) error = NULL;
  WeftPlugin *plugin;

  if (gp != NULL || g_hash_table_contains (b->failed, name))
    return gp;
  /* whatever happens next is reported once */
  g_hash_table_add (b->failed, g_strdup (name));
  plugin = weft_plugin_loader_get (name, b->dirs, &error);
  if (plugin == NULL)
    {
      weft_gen_problem_at (b, where, error);
      return NULL;
    }
  gp = g_new0 (WeftGenPlugin, 1);
  gp->plugin = plugin;
  gp->gen = gen;
  gp->worker_data = g_new0 (gpointer, gen->n_workers);
  gp->ctx.gen = gen;
  gp->ctx.gp = gp;
  gp->config = plugin->desc->config_new (&gp->ctx,
                                         g_hash_table_lookup (gen->config->plugin_nodes, name),
                                         &error);
  if (gp->config == NULL)
    {
      if (error == NULL)
        g_set_error (&error, WEFT_ERROR, WEFT_ERROR_CONFIG, _("plugin '%s' refused its settings"),
                     name);
      weft_gen_problem_at (b, where, error);
      g_free (gp->worker_data);
      g_free (gp);
      return NULL;
    }
  g_ptr_array_add (gen->plugins, gp);
  g_hash_table_remove (b->failed, name);
  return gp;
}

static void
weft_gen_load_listener_plugins (WeftGenBuilder *b)
{
  WeftConfig *config = b->gen->config;

  for (guint i = 0; i < config->listeners->len; i++)
    {
      WeftListenerConfig *lc = config->listeners->pdata[i];
      const WeftNode *list = weft_node_lookup (lc->node, "plugins");
      for (guint j = 0; j < lc->plugins->len; j++)
        weft_gen_use_plugin (b, lc->plugins->pdata[j], weft_node_get_item (list, j));
    }
}

/* a top-level key weft does not know must be some plugin's settings */
static void
weft_gen_load_toplevel_plugins (WeftGenBuilder *b)
{
  WeftConfig *config = b->gen->config;
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, config->plugin_nodes);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      if (weft_gen_find_plugin (b->gen, key) != NULL || g_hash_table_contains (b->failed, key))
        continue;
      if (!weft_plugin_loader_exists (key, b->dirs))
        {
          g_autoptr(GError) error = NULL;
          weft_node_set_error (value, &error, _("unknown key '%s' (no plugin of that name)"),
                               (const char *) key);
          weft_gen_problem (b, error);
          continue;
        }
      weft_gen_use_plugin (b, key, value);
    }
}

static gboolean
weft_gen_kind_matches (const char *pattern, const WeftConfigDocument *doc)
{
  g_autofree char *full = g_strconcat (doc->api_version, "/", doc->kind, NULL);
  const char *star = strstr (pattern, "/*/");
  const char *slash;
  gsize group_len;

  if (star == NULL)
    return strcmp (pattern, full) == 0;
  if (strcmp (star + 3, doc->kind) != 0)
    return FALSE;
  group_len = (gsize) (star - pattern);
  slash = strrchr (doc->api_version, '/');
  return slash != NULL && (gsize) (slash - doc->api_version) == group_len &&
         strncmp (doc->api_version, pattern, group_len) == 0;
}

static WeftGenPlugin *
weft_gen_claimer (WeftGeneration *gen, const WeftConfigDocument *doc)
{
  for (guint i = 0; i < gen->plugins->len; i++)
    {
      WeftGenPlugin *gp = gen->plugins->pdata[i];
      const char *const *kinds = gp->plugin->desc->document_kinds;
      for (guint k = 0; kinds != NULL && kinds[k] != NULL; k++)
        if (weft_gen_kind_matches (kinds[k], doc))
          return gp;
    }
  return NULL;
}

static void
weft_gen_add_documents (WeftGenBuilder *b)
{
  GPtrArray *docs = b->gen->config->documents;

  for (guint i = 0; i < docs->len; i++)
    {
      WeftConfigDocument *doc = docs->pdata[i];
      WeftGenPlugin *gp = weft_gen_claimer (b->gen, doc);
      g_autoptr(GError) error = NULL;

      if (gp == NULL)
        {
          weft_node_set_error (doc->root, &error,
                               _("no loaded plugin handles apiVersion '%s' kind '%s'"),
                               doc->api_version, doc->kind);
          weft_gen_problem (b, error);
          continue;
        }
      if (gp->plugin->desc->config_add_document == NULL ||
          !gp->plugin->desc->config_add_document (gp->config, doc->root, &error))
        {
          if (error == NULL)
            weft_node_set_error (doc->root, &error, _("plugin '%s' refused this document"),
                                 gp->plugin->name);
          weft_gen_problem_at (b, doc->root, error);
        }
    }
}

static void
weft_gen_finish_plugins (WeftGenBuilder *b)
{
  for (guint i = 0; i < b->gen->plugins->len; i++)
    {
      WeftGenPlugin *gp = b->gen->plugins->pdata[i];
      g_autoptr(GError) error = NULL;

      if (gp->plugin->desc->config_finish == NULL ||
          gp->plugin->desc->config_finish (gp->config, &error))
        continue;
      if (error == NULL)
        g_set_error (&error, WEFT_ERROR, WEFT_ERROR_CONFIG, _("plugin '%s' failed to finish"),
                     gp->plugin->name);
      weft_gen_problem (b, error);
    }
}

static void
weft_listener_free (WeftListener *l)
{
  for (guint i = 0; l->instances != NULL && i < l->instances->len; i++)
    {
      WeftInstance *inst = l->instances->pdata[i];
      if (inst->gp->plugin->desc->instance_free != NULL && inst->instance != NULL)
        inst->gp->plugin->desc->instance_free (inst->instance);
      g_free (inst);
    }
  g_clear_pointer (&l->instances, g_ptr_array_unref);
  for (guint p = 0; p < WEFT_PHASE_COUNT; p++)
    g_free (l->hooks[p]);
  g_free (l->conn_hooks);
  g_free (l);
}

/* every other key of a listener must name one of its plugins */
static void
weft_gen_check_listener_keys (WeftGenBuilder *b, WeftListenerConfig *lc)
{
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, lc->plugin_nodes);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      g_autoptr(GError) error = NULL;
      if (g_ptr_array_find_with_equal_func (lc->plugins, key, g_str_equal, NULL))
        continue;
      weft_node_set_error (value, &error,
                           _("unknown key '%s' in listener '%s' (not a field, nor a plugin it lists)"),
                           (const char *) key, lc->name);
      weft_gen_problem (b, error);
    }
}

static void
weft_gen_add_hooks (WeftListener *l, WeftGenPlugin *gp, guint plugin_idx, gpointer instance)
{
  for (guint p = 0; p < WEFT_PHASE_COUNT; p++)
    {
      WeftHookFunc func = gp->plugin->desc->hooks[p];
      if (func == NULL)
        continue;
      l->hooks[p] = g_renew (WeftHookEntry, l->hooks[p], l->n_hooks[p] + 1);
      l->hooks[p][l->n_hooks[p]++] = (WeftHookEntry) { func, instance, plugin_idx };
    }
  if (gp->plugin->desc->connection_event == NULL)
    return;
  l->conn_hooks = g_renew (WeftConnHookEntry, l->conn_hooks, l->n_conn_hooks + 1);
  l->conn_hooks[l->n_conn_hooks++] =
    (WeftConnHookEntry) { gp->plugin->desc->connection_event, instance, plugin_idx };
}

static void
weft_gen_instance (WeftGenBuilder *b, WeftListener *l, const char *name)
{
  WeftGenPlugin *gp = weft_gen_find_plugin (b->gen, name);
  g_autoptr(GError) error = NULL;
  WeftInstance *inst;
  const WeftNode *node;

  if (gp == NULL)
    return;   /* its load failure is already reported */
  node = g_hash_table_lookup (l->config->plugin_nodes, name);
  inst = g_new0 (WeftInstance, 1);
  inst->gp = gp;
  if (gp->plugin->desc->instance_new != NULL)
    {
      inst->instance = gp->plugin->desc->instance_new (gp->config, &l->info, node, &error);
      if (inst->instance == NULL && error != NULL)
        {
          weft_gen_problem_at (b, node != NULL ? node : l->config->node, error);
          g_free (inst);
          return;
        }
    }
  g_ptr_array_add (l->instances, inst);
  weft_gen_add_hooks (l, gp, weft_gen_plugin_index (b->gen, gp), inst->instance);
}

static void
weft_gen_build_listener (WeftGenBuilder *b, WeftListenerConfig *lc)
{
  WeftGeneration *gen = b->gen;
  WeftConfig *config = gen->config;
  WeftListener *l = g_new0 (WeftListener, 1);

  l->config = lc;
  l->info.name = lc->name;
  l->info.address = lc->address;
  l->info.direction = lc->direction;
  l->info.default_upstream = lc->upstream;
  l->instances = g_ptr_array_new ();
  if (lc->upstream != NULL)
    l->default_upstream = g_hash_table_lookup (gen->upstream_by_name, lc->upstream);
  l->limits.max_request_line = config->limits.max_request_line;
  l->limits.max_head = config->limits.max_head;
  l->limits.max_headers = config->limits.max_headers;
  g_ptr_array_add (gen->listeners, l);
  weft_gen_check_listener_keys (b, lc);
  for (guint j = 0; j < lc->plugins->len; j++)
    weft_gen_instance (b, l, lc->plugins->pdata[j]);
}

static void
weft_gen_build_upstreams (WeftGeneration *gen, WeftGeneration *previous)
{
  WeftConfig *config = gen->config;

  for (guint i = 0; i < config->upstreams->len; i++)
    {
      WeftUpstreamConfig *uc = config->upstreams->pdata[i];
      WeftUpstream *prev = previous != NULL ?
        g_hash_table_lookup (previous->upstream_by_name, uc->name) : NULL;
      WeftUpstream *up = weft_upstream_new (uc, gen->n_workers, prev);
      g_ptr_array_add (gen->upstreams, up);
      g_hash_table_insert (gen->upstream_by_name, up->name, up);
    }
}

WeftGeneration *
weft_generation_new (WeftConfig *config, guint n_workers, WeftGeneration *previous,
                     GError **error)
{
  g_autoptr(WeftGeneration) gen = g_new0 (WeftGeneration, 1);
  g_autoptr(GString) problems = g_string_new (NULL);
  g_autoptr(GPtrArray) default_dirs = NULL;
  g_autoptr(GHashTable) failed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  WeftGenBuilder b = { gen, NULL, problems, failed };

  gen->refcount = 1;
  gen->config = config;
  gen->n_workers = MAX (n_workers, 1);
  gen->plugins = g_ptr_array_new ();
  gen->upstreams = g_ptr_array_new ();
  gen->upstream_by_name = g_hash_table_new (g_str_hash, g_str_equal);
  gen->listeners = g_ptr_array_new ();
  gen->workers = g_new0 (WeftGenWorker, gen->n_workers);
  if (config->plugin_dirs->len > 0)
    b.dirs = config->plugin_dirs;
  else
    b.dirs = default_dirs = weft_plugin_loader_default_dirs ();

  gen->retry_policies = g_ptr_array_new_with_free_func ((GDestroyNotify) weft_retry_policy_free);
  gen->previous = previous;
  weft_gen_load_tls (&b);
  weft_gen_build_upstreams (gen, previous);
  weft_gen_load_listener_plugins (&b);
  weft_gen_load_toplevel_plugins (&b);
  weft_gen_add_documents (&b);
  weft_gen_finish_plugins (&b);
  for (guint i = 0; i < config->listeners->len; i++)
    weft_gen_build_listener (&b, config->listeners->pdata[i]);
  gen->previous = NULL;

  if (problems->len > 0)
    {
      g_set_error_literal (error, WEFT_ERROR, WEFT_ERROR_CONFIG, problems->str);
      return NULL;
    }
  /* every check that reports a position has run: the YAML trees are
   * most of a big config's memory, and nothing reads them from here on */
  weft_config_drop_nodes (config);
  malloc_trim (0);
  return g_steal_pointer (&gen);
}

WeftGeneration *
weft_generation_ref (WeftGeneration *gen)
{
  g_atomic_int_inc (&gen->refcount);
  return gen;
}

void
weft_generation_unref (WeftGeneration *gen)
{
  if (gen == NULL || !g_atomic_int_dec_and_test (&gen->refcount))
    return;
  /* instances before plugin configs: an instance may point into its config */
  for (guint i = 0; i < gen->listeners->len; i++)
    weft_listener_free (gen->listeners->pdata[i]);
  for (guint i = 0; i < gen->plugins->len; i++)
    {
      WeftGenPlugin *gp = gen->plugins->pdata[i];
      gp->plugin->desc->config_free (gp->config);
      g_free (gp->worker_data);
      g_free (gp);
    }
  for (guint i = 0; i < gen->upstreams->len; i++)
    weft_upstream_free (gen->upstreams->pdata[i]);
  g_ptr_array_unref (gen->listeners);
  g_ptr_array_unref (gen->plugins);
  g_ptr_array_unref (gen->upstreams);
  g_clear_pointer (&gen->retry_policies, g_ptr_array_unref);
  g_hash_table_unref (gen->upstream_by_name);
  g_free (gen->workers);
  g_clear_pointer (&gen->tls, weft_tls_credentials_unref);
  weft_config_free (gen->config);
  g_free (gen);
  /* a big config leaves megabytes of free heap between live blocks;
   * give the pages back rather than keep two generations' worth */
  malloc_trim (0);
}

WeftListener *
weft_generation_find_listener (WeftGeneration *gen, const char *name)
{
  for (guint i = 0; i < gen->listeners->len; i++)
    {
      WeftListener *l = gen->listeners->pdata[i];
      if (strcmp (l->config->name, name) == 0)
        return l;
    }
  return NULL;
}

WeftListener *
weft_generation_find_listener_id (WeftGeneration *gen, guint id)
{
  for (guint i = 0; i < gen->listeners->len; i++)
    {
      WeftListener *l = gen->listeners->pdata[i];
      if (l->id == id)
        return l;
    }
  return NULL;
}

void
weft_generation_worker_init (WeftGeneration *gen, guint w)
{
  if (w >= gen->n_workers || gen->workers[w].initialised)
    return;
  gen->workers[w].initialised = TRUE;
  for (guint i = 0; i < gen->plugins->len; i++)
    {
      WeftGenPlugin *gp = gen->plugins->pdata[i];
      if (gp->plugin->desc->worker_init != NULL)
        gp->worker_data[w] = gp->plugin->desc->worker_init (gp->config, w);
    }
}

void
weft_generation_worker_fini (WeftGeneration *gen, guint w)
{
  if (w >= gen->n_workers || !gen->workers[w].initialised)
    return;
  gen->workers[w].initialised = FALSE;
  for (guint i = 0; i < gen->plugins->len; i++)
    {
      WeftGenPlugin *gp = gen->plugins->pdata[i];
      if (gp->plugin->desc->worker_fini != NULL)
        gp->plugin->desc->worker_fini (gp->config, gp->worker_data[w]);
      gp->worker_data[w] = NULL;
    }
}

void
weft_generation_start_dns (WeftGeneration *gen)
{
  for (guint i = 0; i < gen->upstreams->len; i++)
    weft_upstream_start_dns (gen->upstreams->pdata[i]);
}

void
weft_generation_stop_dns (WeftGeneration *gen)
{
  for (guint i = 0; i < gen->upstreams->len; i++)
    weft_upstream_stop_dns (gen->upstreams->pdata[i]);
}
