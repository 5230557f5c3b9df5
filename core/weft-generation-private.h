/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WeftGeneration: one loaded configuration made runnable: upstreams, plugin
 * configs and instances, and per listener a flat hook array per phase.
 * Built on the main thread; immutable afterwards; refcounted. Workers count
 * the requests they run on it, and release it when it is replaced and idle.
 */
#pragma once

#include <weft/plugin.h>
#include "weft-config-private.h"
#include "weft-http-parser-private.h"
#include "weft-plugin-loader-private.h"
#include "weft-upstream-private.h"

G_BEGIN_DECLS

typedef struct _WeftGeneration WeftGeneration;

typedef struct _WeftGenPlugin WeftGenPlugin;

struct _WeftPluginContext {
  WeftGeneration *gen;
  WeftGenPlugin  *gp;
};

struct _WeftGenPlugin {
  WeftPlugin   *plugin;
  gpointer      config;        /* what config_new returned */
  gpointer     *worker_data;   /* per worker, from worker_init */
  WeftGeneration *gen;
  WeftPluginContext ctx;       /* lives as long as the generation: plugins keep it */
};

typedef struct {
  WeftHookFunc func;
  gpointer     instance;
  guint        plugin_idx;     /* into gen->plugins, for worker data */
} WeftHookEntry;

typedef struct {
  WeftConnEventFunc func;
  gpointer          instance;
  guint             plugin_idx;
} WeftConnHookEntry;

typedef struct {
  guint               id;           /* the server's listener socket id */
  WeftListenerConfig *config;
  WeftListenerInfo    info;
  WeftUpstream       *default_upstream;
  WeftHookEntry      *hooks[WEFT_PHASE_COUNT];
  guint               n_hooks[WEFT_PHASE_COUNT];
  WeftConnHookEntry  *conn_hooks;   /* connection_event callbacks */
  guint               n_conn_hooks;
  GPtrArray          *instances;    /* (WeftGenPlugin*, instance) pairs */
  WeftHttpLimits      limits;
} WeftListener;

typedef struct {
  guint     inflight;          /* requests of this generation on the worker */
  gboolean  initialised;
  gpointer  pad[6];            /* keep workers' counters on their own lines */
} WeftGenWorker;

struct _WeftGeneration {
  gint           refcount;
  guint64        number;
  WeftConfig    *config;
  guint          n_workers;
  GPtrArray     *plugins;      /* WeftGenPlugin*, load order */
  GPtrArray     *upstreams;    /* WeftUpstream* */
  GHashTable    *upstream_by_name;
  GPtrArray     *listeners;    /* WeftListener* */
  WeftGenWorker *workers;
  GPtrArray     *retry_policies; /* WeftRetryPolicy*, owned */
  struct _WeftTlsCredentials *tls; /* the tls: section's credentials, or NULL */
  WeftGeneration *previous;    /* only while building: lends DNS results */
};

/*
 * Builds a generation from @config (taking ownership of it). @previous, if
 * any, lends its DNS results. Every problem found is in the error, one per
 * line as file:line:col: message.
 */
WeftGeneration *weft_generation_new   (WeftConfig *config, guint n_workers,
                                       WeftGeneration *previous, GError **error);
WeftGeneration *weft_generation_ref   (WeftGeneration *gen);
void            weft_generation_unref (WeftGeneration *gen);
WeftListener   *weft_generation_find_listener (WeftGeneration *gen, const char *name);
WeftListener   *weft_generation_find_listener_id (WeftGeneration *gen, guint id);
/* per-worker plugin data: on the worker thread */
void            weft_generation_worker_init (WeftGeneration *gen, guint w);
void            weft_generation_worker_fini (WeftGeneration *gen, guint w);
void            weft_generation_start_dns (WeftGeneration *gen);
void            weft_generation_stop_dns  (WeftGeneration *gen);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (WeftGeneration, weft_generation_unref)

G_END_DECLS
