/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "weft-server-private.h"
#include "weft-admin-private.h"
#include "weft-build-config.h"
#include "weft-config-watch-private.h"
#include "weft-log-private.h"
#include "weft-metrics-private.h"
#include "weft-sd-notify-private.h"
#include "weft-tls-watch-private.h"
#include "weft-worker-private.h"

#include <glib-unix.h>
#include <glib/gi18n.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <unistd.h>

#define WEFT_WATCH_DEBOUNCE_MS 100
#define WEFT_DRAIN_POLL_MS 50

/* the sockets of one listener, one per worker */
typedef struct {
  guint               id;
  char               *name;
  char               *address;
  WeftListenerShared *shared;   /* the connection count the workers share */
} WeftListenerSocket;

struct _WeftServer {
  char             *config_path;
  GMainLoop        *loop;
  guint             n_workers;
  WeftWorker      **workers;
  WeftGeneration   *gen;
  GPtrArray        *sockets;         /* WeftListenerSocket* */
  guint             next_socket_id;
  guint64           next_generation;
  WeftAdmin        *admin;
  WeftConfigWatch  *watch;
  WeftTlsWatch     *tls_watch;       /* the certificate files and their expiry */
  WeftCoreMetrics   metrics;
  WeftMetricSeries *generation_gauge;
  WeftMetricSeries *reloads[2];      /* success, failure */
  WeftMetricSeries *workers_gauge;
  GPtrArray        *signal_ids;

  gboolean          ready;
  gboolean          draining;
  gint64            drain_deadline_us;
  guint             drain_timer;

  GDateTime        *last_reload_time;
  gboolean          last_reload_ok;
  char             *last_reload_error;
  gint64            last_reload_us;  /* trigger to new generation live (or failure) */
};

static void
weft_listener_socket_free (WeftListenerSocket *sock)
{
  g_free (sock->name);
  g_free (sock->address);
  weft_listener_shared_unref (sock->shared);
  g_free (sock);
}

static void
weft_server_register_metrics (WeftServer *s)
{
  static const char *const listener_labels[] = { "listener", NULL };
  static const char *const request_labels[] = { "listener", "code", NULL };
  static const char *const reason_labels[] = { "reason", NULL };
  static const char *const result_labels[] = { "result", NULL };
  WeftMetric *errors, *reloads;

  s->metrics.conns_active = weft_metrics_register (WEFT_METRIC_GAUGE,
      "weft_connections_active", "Client connections open now.", listener_labels, NULL, 0);
  s->metrics.conns_total = weft_metrics_register (WEFT_METRIC_COUNTER,
      "weft_connections_total", "Client connections accepted.", listener_labels, NULL, 0);
  s->metrics.requests_total = weft_metrics_register (WEFT_METRIC_COUNTER,
      "weft_requests_total", "Requests answered, by status class.", request_labels, NULL, 0);
  errors = weft_metrics_register (WEFT_METRIC_COUNTER, "weft_upstream_errors_total",
      "Upstream failures, by reason (the x-weft-error token).", reason_labels, NULL, 0);
  for (guint i = 0; i < WEFT_UPSTREAM_ERR_COUNT; i++)
    {
      const char *v[] = { weft_upstream_err_token (i), NULL };
      s->metrics.upstream_errors[i] = weft_metric_get_series (errors, v);
    }
  s->metrics.bad_requests = weft_metric_get_series (weft_metrics_register (WEFT_METRIC_COUNTER,
      "weft_bad_requests_total", "Requests refused by the parser (4xx/5xx and a close).",
      NULL, NULL, 0), NULL);
  s->metrics.tls_handshakes = weft_metrics_register (WEFT_METRIC_COUNTER,
      "weft_tls_handshakes_total", "mTLS handshakes completed, as server (inbound) or client "
      "(outbound), full or resumed.", (const char *const[]) { "listener", "role", "resumed", NULL },
      NULL, 0);
  s->metrics.tls_failures = weft_metrics_register (WEFT_METRIC_COUNTER,
      "weft_tls_handshake_failures_total", "mTLS connections refused, by reason.",
      (const char *const[]) { "listener", "role", "reason", NULL }, NULL, 0);
  s->metrics.listener_overflow = weft_metrics_register (WEFT_METRIC_COUNTER,
      "weft_listener_overflow_total", "Client connections accepted and closed at once: the "
      "listener had max_connections open.", listener_labels, NULL, 0);
  s->metrics.listener_fd_exhausted = weft_metrics_register (WEFT_METRIC_COUNTER,
      "weft_listener_fd_exhausted_total", "Accepts that failed for lack of file descriptors; "
      "each pauses the listener's accepts for 100 ms.", listener_labels, NULL, 0);
  s->generation_gauge = weft_metric_get_series (weft_metrics_register (WEFT_METRIC_GAUGE,
      "weft_config_generation", "The configuration generation serving new requests.",
      NULL, NULL, 0), NULL);
  reloads = weft_metrics_register (WEFT_METRIC_COUNTER, "weft_config_reloads_total",
      "Configuration reloads, by result.", result_labels, NULL, 0);
  s->reloads[0] = weft_metric_get_series (reloads, (const char *const[]) { "success", NULL });
  s->reloads[1] = weft_metric_get_series (reloads, (const char *const[]) { "failure", NULL });
  s->workers_gauge = weft_metric_get_series (weft_metrics_register (WEFT_METRIC_GAUGE,
      "weft_workers", "Worker threads.", NULL, NULL, 0), NULL);
}

static void
weft_server_log_problems (WeftLogLevel level, const char *prefix, const char *message)
{
  g_auto(GStrv) lines = g_strsplit (message, "\n", -1);

  for (guint i = 0; lines[i] != NULL; i++)
    weft_log (level, "config", "%s%s", prefix, lines[i]);
}

WeftServer *
weft_server_new (const char *config_path, GError **error)
{
  g_autoptr(WeftServer) s = g_new0 (WeftServer, 1);
  g_autoptr(WeftConfig) config = NULL;
  WeftGeneration *gen;

  s->config_path = g_strdup (config_path);
  s->sockets = g_ptr_array_new_with_free_func ((GDestroyNotify) weft_listener_socket_free);
  s->signal_ids = g_ptr_array_new ();
  s->loop = g_main_loop_new (NULL, FALSE);
  config = weft_config_load (config_path, error);
  if (config == NULL)
    return NULL;
  s->n_workers = config->workers > 0 ? config->workers : MAX (g_get_num_processors (), 1u);
  weft_metrics_init (s->n_workers);
  weft_server_register_metrics (s);
  gen = weft_generation_new (g_steal_pointer (&config), s->n_workers, NULL, error);
  if (gen == NULL)
    return NULL;
  gen->number = ++s->next_generation;
  s->gen = gen;
  return g_steal_pointer (&s);
}

static WeftListenerSocket *
weft_server_find_socket (WeftServer *s, const char *name, const char *address)
{
  for (guint i = 0; i < s->sockets->len; i++)
    {
      WeftListenerSocket *sock = s->sockets->pdata[i];
      if (strcmp (sock->name, name) == 0 && strcmp (sock->address, address) == 0)
        return sock;
    }
  return NULL;
}

/* binds one socket per worker for every listener of @gen without one;
 * on failure closes what it bound and changes nothing */
static gboolean
weft_server_bind_new (WeftServer *s, WeftGeneration *gen, GPtrArray *fresh, GError **error)
{
  for (guint i = 0; i < gen->listeners->len; i++)
    {
      WeftListener *l = gen->listeners->pdata[i];
      WeftListenerSocket *sock = weft_server_find_socket (s, l->config->name, l->config->address);
      g_autofree int *fds = NULL;

      if (sock != NULL)
        {
          l->id = sock->id;
          continue;
        }
      fds = g_new (int, s->n_workers);
      for (guint w = 0; w < s->n_workers; w++)
        {
          fds[w] = weft_listen_socket (l->config->address, TRUE, error);
          if (fds[w] >= 0)
            continue;
          g_prefix_error (error, _("listener '%s': "), l->config->name);
          for (guint k = 0; k < w; k++)
            close (fds[k]);
          for (guint k = 0; k < fresh->len; k += 2)
            for (guint j = 0; j < s->n_workers; j++)
              close (((int *) fresh->pdata[k + 1])[j]);
          return FALSE;
        }
      l->id = ++s->next_socket_id;
      g_ptr_array_add (fresh, l);
      g_ptr_array_add (fresh, g_steal_pointer (&fds));
    }
  return TRUE;
}

/* hands @gen to the workers, then the new sockets, and closes the gone ones */
static void
weft_server_apply (WeftServer *s, WeftGeneration *gen, GPtrArray *fresh)
{
  WeftGeneration *old = s->gen;

  for (guint w = 0; w < s->n_workers; w++)
    weft_worker_post_generation (s->workers[w], weft_generation_ref (gen));
  for (guint k = 0; k < fresh->len; k += 2)
    {
      WeftListener *l = fresh->pdata[k];
      int *fds = fresh->pdata[k + 1];
      WeftListenerSocket *sock = g_new0 (WeftListenerSocket, 1);

      sock->id = l->id;
      sock->name = g_strdup (l->config->name);
      sock->address = g_strdup (l->config->address);
      sock->shared = weft_listener_shared_new ();
      g_atomic_int_set (&sock->shared->max_conns, (gint) l->config->max_connections);
      g_ptr_array_add (s->sockets, sock);
      for (guint w = 0; w < s->n_workers; w++)
        weft_worker_post_listener_add (s->workers[w], l->id, l->config->name, fds[w],
                                       sock->shared);
      weft_log (WEFT_LOG_INFO, "server", "listening on %s (%s)", l->config->address,
                l->config->name);
      g_free (fds);
    }
  for (guint i = s->sockets->len; i-- > 0;)
    {
      WeftListenerSocket *sock = s->sockets->pdata[i];
      WeftListener *l = weft_generation_find_listener_id (gen, sock->id);

      if (l != NULL)
        {
          /* a reload changes the limit of a kept listener at once */
          g_atomic_int_set (&sock->shared->max_conns, (gint) l->config->max_connections);
          continue;
        }
      for (guint w = 0; w < s->n_workers; w++)
        weft_worker_post_listener_remove (s->workers[w], sock->id);
      weft_log (WEFT_LOG_INFO, "server", "stopped listening on %s (%s)", sock->address,
                sock->name);
      g_ptr_array_remove_index (s->sockets, i);
    }
  weft_generation_start_dns (gen);
  s->gen = gen;
  if (old != NULL)
    {
      weft_generation_stop_dns (old);
      weft_generation_unref (old);
    }
  weft_metric_series_set (s->generation_gauge, (gint64) gen->number);
}

static void
weft_server_note_reload (WeftServer *s, gboolean ok, const char *error, gint64 started_us)
{
  g_clear_pointer (&s->last_reload_time, g_date_time_unref);
  s->last_reload_time = g_date_time_new_now_utc ();
  s->last_reload_us = g_get_monotonic_time () - started_us;
  s->last_reload_ok = ok;
  g_free (s->last_reload_error);
  s->last_reload_error = g_strdup (error);
  weft_metric_series_add (s->reloads[ok ? 0 : 1], 1);
}

/* @started_us: when the reload was asked for (the debounced file event,
 * SIGHUP), so the duration reported covers the whole reload */
static gboolean
weft_server_reload_since (WeftServer *s, gint64 started_us, GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(WeftConfig) config = NULL;
  g_autoptr(GPtrArray) fresh = g_ptr_array_new ();
  WeftGeneration *gen;

  weft_sd_notify_reloading ();
  config = weft_config_load (s->config_path, &local);
  if (config != NULL && config->workers > 0 && config->workers != s->n_workers)
    weft_log (WEFT_LOG_WARNING, "server", "workers: %u takes effect at the next restart",
              config->workers);
  gen = config != NULL ? weft_generation_new (g_steal_pointer (&config), s->n_workers, s->gen,
                                              &local) : NULL;
  if (gen != NULL && !weft_server_bind_new (s, gen, fresh, &local))
    g_clear_pointer (&gen, weft_generation_unref);
  if (gen == NULL)
    {
      weft_log (WEFT_LOG_ERROR, "config", "reload failed; generation %" G_GUINT64_FORMAT
                " stays live", s->gen->number);
      weft_server_log_problems (WEFT_LOG_ERROR, "", local->message);
      weft_server_note_reload (s, FALSE, local->message, started_us);
      weft_sd_notify ("READY=1");
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  gen->number = ++s->next_generation;
  weft_server_apply (s, gen, fresh);
  weft_tls_watch_update (s->tls_watch, gen->config->tls, gen->tls);
  weft_server_note_reload (s, TRUE, NULL, started_us);
  weft_log (WEFT_LOG_INFO, "server", "configuration generation %" G_GUINT64_FORMAT
            " live (reload took %.1f ms)", gen->number, s->last_reload_us / 1000.0);
  weft_sd_notify ("READY=1");
  return TRUE;
}

gboolean
weft_server_reload (WeftServer *s, GError **error)
{
  return weft_server_reload_since (s, g_get_monotonic_time (), error);
}

static gboolean
weft_server_same_sources (GPtrArray *a, GPtrArray *b)
{
  if (a->len != b->len)
    return FALSE;
  for (guint i = 0; i < a->len; i++)
    {
      WeftConfigSource *x = a->pdata[i];
      WeftConfigSource *y = b->pdata[i];
      if (g_strcmp0 (x->path, y->path) != 0 || g_strcmp0 (x->sha256, y->sha256) != 0)
        return FALSE;
    }
  return TRUE;
}

/* the watch fired: reload unless every file reads as before; the files
 * are only hashed here, so an unchanged config costs no parse and a
 * changed one is parsed once */
static gboolean
weft_server_config_changed (gpointer data)
{
  WeftServer *s = data;
  gint64 started_us = g_get_monotonic_time ();
  g_autoptr(GPtrArray) sources = NULL;

  if (s->draining)
    return G_SOURCE_REMOVE;
  weft_log (WEFT_LOG_DEBUG, "server", "config changed on disk");
  sources = weft_config_read_sources (s->config_path, NULL);
  if (sources != NULL && weft_server_same_sources (sources, s->gen->config->sources) &&
      s->last_reload_ok)
    {
      weft_log (WEFT_LOG_DEBUG, "server", "config files unchanged; no reload");
      return G_SOURCE_REMOVE;
    }
  weft_server_reload_since (s, started_us, NULL);
  return G_SOURCE_REMOVE;
}

/* new certificate bytes: a reload builds credentials from them; sessions
 * already up keep the ones they started with */
static gboolean
weft_server_tls_changed (gpointer data)
{
  WeftServer *s = data;

  if (!s->draining)
    weft_server_reload (s, NULL);
  return G_SOURCE_REMOVE;
}

static gboolean
weft_server_on_sighup (gpointer data)
{
  WeftServer *s = data;

  weft_log (WEFT_LOG_INFO, "server", "SIGHUP: reloading");
  if (!s->draining)
    weft_server_reload (s, NULL);
  return G_SOURCE_CONTINUE;
}

static gboolean
weft_server_on_sigterm (gpointer data)
{
  weft_log (WEFT_LOG_INFO, "server", "signal: draining");
  weft_server_drain (data);
  return G_SOURCE_CONTINUE;
}

static gint
weft_server_count_conns (WeftServer *s)
{
  gint total = 0;

  for (guint w = 0; w < s->n_workers; w++)
    total += weft_worker_get_n_conns (s->workers[w]);
  return total;
}

static gboolean
weft_server_drain_poll (gpointer data)
{
  WeftServer *s = data;
  gint left = weft_server_count_conns (s);

  if (left > 0 && g_get_monotonic_time () < s->drain_deadline_us)
    return G_SOURCE_CONTINUE;
  if (left > 0)
    weft_log (WEFT_LOG_WARNING, "server", "drain timeout: closing %d connections", left);
  s->drain_timer = 0;
  g_main_loop_quit (s->loop);
  return G_SOURCE_REMOVE;
}

void
weft_server_drain (WeftServer *s)
{
  if (s->draining)
    return;
  s->draining = TRUE;
  s->ready = FALSE;
  weft_sd_notify ("STOPPING=1");
  s->drain_deadline_us = g_get_monotonic_time () +
                         (gint64) s->gen->config->timeouts.drain_ms * 1000;
  for (guint w = 0; w < s->n_workers; w++)
    weft_worker_post_drain (s->workers[w]);
  s->drain_timer = g_timeout_add (WEFT_DRAIN_POLL_MS, weft_server_drain_poll, s);
}

gboolean
weft_server_start (WeftServer *s, GError **error)
{
  g_autoptr(GPtrArray) fresh = g_ptr_array_new ();

  s->admin = weft_admin_new (s, s->gen->config->admin_address, error);
  if (s->admin == NULL)
    return FALSE;
  if (!weft_server_bind_new (s, s->gen, fresh, error))
    return FALSE;
  s->workers = g_new0 (WeftWorker *, s->n_workers);
  for (guint w = 0; w < s->n_workers; w++)
    {
      s->workers[w] = weft_worker_new (w, &s->metrics, g_main_context_default ());
      weft_worker_start (s->workers[w]);
    }
  /* apply takes over the server's reference; workers take their own */
  weft_server_apply (s, g_steal_pointer (&s->gen), fresh);
  weft_metric_series_set (s->workers_gauge, s->n_workers);
  s->watch = weft_config_watch_new (s->config_path, WEFT_WATCH_DEBOUNCE_MS,
                                    weft_server_config_changed, s, error);
  if (s->watch == NULL)
    return FALSE;
  s->tls_watch = weft_tls_watch_new (weft_server_tls_changed, s);
  weft_tls_watch_update (s->tls_watch, s->gen->config->tls, s->gen->tls);
  g_ptr_array_add (s->signal_ids, GUINT_TO_POINTER (g_unix_signal_add (SIGHUP,
                   weft_server_on_sighup, s)));
  g_ptr_array_add (s->signal_ids, GUINT_TO_POINTER (g_unix_signal_add (SIGTERM,
                   weft_server_on_sigterm, s)));
  g_ptr_array_add (s->signal_ids, GUINT_TO_POINTER (g_unix_signal_add (SIGINT,
                   weft_server_on_sigterm, s)));
  s->ready = TRUE;
  s->last_reload_ok = TRUE;
  weft_log (WEFT_LOG_INFO, "server", "weft %s ready: %u workers, admin on %s, generation %"
            G_GUINT64_FORMAT, WEFT_VERSION, s->n_workers, s->gen->config->admin_address,
            s->gen->number);
  weft_sd_notify ("READY=1");
  return TRUE;
}

int
weft_server_run (WeftServer *s)
{
  g_main_loop_run (s->loop);
  return 0;
}

void
weft_server_free (WeftServer *s)
{
  if (s == NULL)
    return;
  for (guint i = 0; i < s->signal_ids->len; i++)
    g_source_remove (GPOINTER_TO_UINT (s->signal_ids->pdata[i]));
  g_ptr_array_unref (s->signal_ids);
  weft_config_watch_free (s->watch);
  weft_tls_watch_free (s->tls_watch);
  for (guint w = 0; s->workers != NULL && w < s->n_workers; w++)
    weft_worker_stop (s->workers[w]);
  for (guint w = 0; s->workers != NULL && w < s->n_workers; w++)
    weft_worker_free (s->workers[w]);
  g_free (s->workers);
  if (s->drain_timer != 0)
    g_source_remove (s->drain_timer);
  weft_admin_free (s->admin);
  if (s->gen != NULL)
    {
      weft_generation_stop_dns (s->gen);
      weft_generation_unref (s->gen);
    }
  g_ptr_array_unref (s->sockets);
  g_clear_pointer (&s->last_reload_time, g_date_time_unref);
  g_free (s->last_reload_error);
  g_main_loop_unref (s->loop);
  g_free (s->config_path);
  g_free (s);
}

gboolean
weft_server_is_ready (WeftServer *s)
{
  return s->ready && !s->draining;
}

void
weft_server_render_metrics (WeftServer *s, GString *out)
{
  weft_tls_watch_refresh (s->tls_watch);
  weft_metrics_render (out);
}

static void
weft_json_member_string (JsonBuilder *b, const char *name, const char *value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_string_value (b, value);
}

static void
weft_server_json_plugins (JsonBuilder *b, WeftGeneration *gen)
{
  json_builder_set_member_name (b, "plugins");
  json_builder_begin_array (b);
  for (guint i = 0; i < gen->plugins->len; i++)
    {
      WeftGenPlugin *gp = gen->plugins->pdata[i];
      json_builder_begin_object (b);
      weft_json_member_string (b, "name", gp->plugin->name);
      weft_json_member_string (b, "version",
                               gp->plugin->desc->version ? gp->plugin->desc->version : "");
      weft_json_member_string (b, "path", gp->plugin->path);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
}

static void
weft_server_json_sources (JsonBuilder *b, WeftGeneration *gen)
{
  json_builder_set_member_name (b, "sources");
  json_builder_begin_array (b);
  for (guint i = 0; i < gen->config->sources->len; i++)
    {
      WeftConfigSource *src = gen->config->sources->pdata[i];
      json_builder_begin_object (b);
      weft_json_member_string (b, "path", src->path);
      weft_json_member_string (b, "sha256", src->sha256);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
}

/* port-level modes, by original destination port */
static void
weft_server_json_tls_ports (JsonBuilder *b, const WeftListenerConfig *lc)
{
  if (lc->tls_ports == NULL)
    return;
  json_builder_set_member_name (b, "tls_ports");
  json_builder_begin_object (b);
  for (guint i = 0; i < lc->tls_ports->len; i++)
    {
      const WeftTlsPortMode *pm = &g_array_index (lc->tls_ports, WeftTlsPortMode, i);
      char port[8];

      g_snprintf (port, sizeof port, "%u", pm->port);
      weft_json_member_string (b, port, weft_tls_mode_to_string (pm->mode));
    }
  json_builder_end_object (b);
}

static void
weft_server_json_listeners (JsonBuilder *b, WeftGeneration *gen)
{
  json_builder_set_member_name (b, "listeners");
  json_builder_begin_array (b);
  for (guint i = 0; i < gen->listeners->len; i++)
    {
      WeftListener *l = gen->listeners->pdata[i];
      json_builder_begin_object (b);
      weft_json_member_string (b, "name", l->config->name);
      weft_json_member_string (b, "address", l->config->address);
      weft_json_member_string (b, "direction", l->config->direction == WEFT_DIRECTION_OUTBOUND ?
                                        "outbound" : "inbound");
      weft_json_member_string (b, "upstream", l->config->upstream);
      weft_json_member_string (b, "tls_mode", weft_tls_mode_to_string (l->config->tls_mode));
      weft_server_json_tls_ports (b, l->config);
      json_builder_set_member_name (b, "plugins");
      json_builder_begin_array (b);
      for (guint j = 0; j < l->config->plugins->len; j++)
        json_builder_add_string_value (b, l->config->plugins->pdata[j]);
      json_builder_end_array (b);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
}

static void
weft_server_json_upstreams (JsonBuilder *b, WeftGeneration *gen)
{
  json_builder_set_member_name (b, "upstreams");
  json_builder_begin_array (b);
  for (guint i = 0; i < gen->upstreams->len; i++)
    {
      WeftUpstream *up = gen->upstreams->pdata[i];
      WeftEndpointSet *set = g_atomic_pointer_get (&up->set);
      json_builder_begin_object (b);
      weft_json_member_string (b, "name", up->name);
      json_builder_set_member_name (b, "endpoints");
      json_builder_begin_array (b);
      for (guint j = 0; set != NULL && j < set->n; j++)
        json_builder_add_string_value (b, set->endpoints[j].key);
      json_builder_end_array (b);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
}

/* the live workload certificate: who weft is, and until when */
static void
weft_server_json_tls (JsonBuilder *b, WeftGeneration *gen)
{
  WeftTlsCredentials *creds = gen->tls;
  g_autoptr(GDateTime) at = NULL;
  g_autofree char *until = NULL;

  json_builder_set_member_name (b, "tls");
  if (creds == NULL)
    {
      json_builder_add_null_value (b);
      return;
    }
  at = g_date_time_new_from_unix_utc (weft_tls_credentials_get_not_after (creds));
  until = at != NULL ? g_date_time_format_iso8601 (at) : NULL;
  json_builder_begin_object (b);
  weft_json_member_string (b, "spiffe_id", weft_tls_credentials_get_spiffe_id (creds));
  weft_json_member_string (b, "not_after", until);
  weft_json_member_string (b, "cert", gen->config->tls->cert);
  weft_json_member_string (b, "key", gen->config->tls->key);
  weft_json_member_string (b, "bundle", gen->config->tls->bundle);
  weft_json_member_string (b, "sha256", weft_tls_credentials_get_digest (creds));
  json_builder_end_object (b);
}

static void
weft_server_json_last_reload (JsonBuilder *b, WeftServer *s)
{
  g_autofree char *when = s->last_reload_time ? g_date_time_format_iso8601 (s->last_reload_time)
                                              : NULL;

  json_builder_set_member_name (b, "last_reload");
  if (when == NULL)
    {
      json_builder_add_null_value (b);
      return;
    }
  json_builder_begin_object (b);
  weft_json_member_string (b, "time", when);
  weft_json_member_string (b, "result", s->last_reload_ok ? "success" : "failure");
  /* whole milliseconds: a double would print as 82.400000000000006 */
  json_builder_set_member_name (b, "duration_ms");
  json_builder_add_int_value (b, (s->last_reload_us + 500) / 1000);
  json_builder_set_member_name (b, "error");
  if (s->last_reload_error != NULL)
    json_builder_add_string_value (b, s->last_reload_error);
  else
    json_builder_add_null_value (b);
  json_builder_end_object (b);
}

void
weft_server_render_config (WeftServer *s, GString *out)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *text = NULL;
  WeftGeneration *gen = s->gen;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "generation");
  json_builder_add_int_value (b, (gint64) gen->number);
  weft_json_member_string (b, "version", WEFT_VERSION);
  weft_json_member_string (b, "config_path", s->config_path);
  json_builder_set_member_name (b, "workers");
  json_builder_add_int_value (b, s->n_workers);
  json_builder_set_member_name (b, "draining");
  json_builder_add_boolean_value (b, s->draining);
  weft_server_json_sources (b, gen);
  weft_server_json_plugins (b, gen);
  weft_server_json_listeners (b, gen);
  weft_server_json_upstreams (b, gen);
  weft_server_json_tls (b, gen);
  weft_server_json_last_reload (b, s);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (generator, root);
  json_generator_set_pretty (generator, TRUE);
  text = json_generator_to_data (generator, NULL);
  g_string_append (out, text);
  g_string_append_c (out, '\n');
}

gboolean
weft_server_check (const char *config_path, GError **error)
{
  g_autoptr(WeftConfig) config = weft_config_load (config_path, error);
  g_autoptr(WeftGeneration) gen = NULL;
  guint n_workers;

  if (config == NULL)
    return FALSE;
  n_workers = config->workers > 0 ? config->workers : MAX (g_get_num_processors (), 1u);
  weft_metrics_init (n_workers);
  gen = weft_generation_new (g_steal_pointer (&config), n_workers, NULL, error);
  return gen != NULL;
}
