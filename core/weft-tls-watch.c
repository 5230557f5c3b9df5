/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "weft-tls-watch-private.h"
#include "weft-config-watch-private.h"
#include "weft-log-private.h"
#include "weft-metrics-private.h"

#define WEFT_TLS_WATCH_DEBOUNCE_MS 100
#define WEFT_TLS_EXPIRY_CHECK_S    60
#define WEFT_TLS_WARN_EVERY_S      3600

struct _WeftTlsWatch {
  GSourceFunc         changed;
  gpointer            data;
  GPtrArray          *watches;       /* WeftConfigWatch*, one per distinct file */
  char               *files[3];      /* cert, key, bundle */
  WeftTlsCredentials *creds;
  guint64             warning_ms;
  char               *asked;         /* the digest a reload was already asked for */
  guint               timer_id;
  gint64              warned_at;     /* unix seconds of the last warning */
  WeftMetric         *gauge;
  WeftMetricSeries   *series;
};

static void
weft_tls_watch_check_expiry (WeftTlsWatch *w)
{
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  gint64 left, lifetime, warn;
  g_autoptr(GDateTime) at = NULL;
  g_autofree char *when = NULL;

  if (w->creds == NULL)
    return;
  left = weft_tls_credentials_get_seconds_left (w->creds, now);
  lifetime = weft_tls_credentials_get_not_after (w->creds) -
             weft_tls_credentials_get_not_before (w->creds);
  warn = w->warning_ms > 0 ? (gint64) (w->warning_ms / 1000) : lifetime / 4;
  weft_metric_series_set (w->series, left);
  if (left > warn || (w->warned_at != 0 && now - w->warned_at < WEFT_TLS_WARN_EVERY_S))
    return;
  w->warned_at = now;
  at = g_date_time_new_from_unix_utc (weft_tls_credentials_get_not_after (w->creds));
  when = at != NULL ? g_date_time_format_iso8601 (at) : g_strdup ("?");
  if (left <= 0)
    weft_log (WEFT_LOG_ERROR, "tls", "certificate %s (%s) expired %" G_GINT64_FORMAT
              " s ago (at %s): peers refuse it until it is renewed",
              weft_tls_credentials_get_spiffe_id (w->creds), w->files[0], -left, when);
  else
    weft_log (WEFT_LOG_WARNING, "tls", "certificate %s (%s) expires in %" G_GINT64_FORMAT
              " s (at %s)", weft_tls_credentials_get_spiffe_id (w->creds), w->files[0], left,
              when);
}

static gboolean
weft_tls_watch_tick (gpointer data)
{
  weft_tls_watch_check_expiry (data);
  return G_SOURCE_CONTINUE;
}

gboolean
weft_tls_watch_files_changed (WeftTlsWatch *w)
{
  g_autofree char *digest = NULL;

  if (w->creds == NULL)
    return FALSE;
  digest = weft_tls_files_digest (w->files[0], w->files[1], w->files[2]);
  if (digest == NULL)
    digest = g_strdup ("unreadable");
  /* the three files fire three watches: one reload per new content */
  if (g_strcmp0 (digest, weft_tls_credentials_get_digest (w->creds)) == 0 ||
      g_strcmp0 (digest, w->asked) == 0)
    return FALSE;
  g_free (w->asked);
  w->asked = g_steal_pointer (&digest);
  return TRUE;
}

static gboolean
weft_tls_watch_fired (gpointer data)
{
  WeftTlsWatch *w = data;

  if (weft_tls_watch_files_changed (w))
    {
      weft_log (WEFT_LOG_INFO, "tls", "certificate files changed: reloading");
      w->changed (w->data);
    }
  return G_SOURCE_REMOVE;
}

WeftTlsWatch *
weft_tls_watch_new (GSourceFunc changed, gpointer data)
{
  WeftTlsWatch *w = g_new0 (WeftTlsWatch, 1);

  w->changed = changed;
  w->data = data;
  w->watches = g_ptr_array_new_with_free_func ((GDestroyNotify) weft_config_watch_free);
  w->gauge = weft_metrics_register (WEFT_METRIC_GAUGE, "weft_tls_certificate_expiry_seconds",
                                    "Seconds until the workload certificate expires "
                                    "(negative once it has).",
                                    (const char *const[]) { "spiffe_id", NULL }, NULL, 0);
  return w;
}

void
weft_tls_watch_free (WeftTlsWatch *w)
{
  if (w == NULL)
    return;
  if (w->timer_id != 0)
    g_source_remove (w->timer_id);
  g_ptr_array_unref (w->watches);
  for (guint i = 0; i < G_N_ELEMENTS (w->files); i++)
    g_free (w->files[i]);
  g_clear_pointer (&w->creds, weft_tls_credentials_unref);
  g_free (w->asked);
  g_free (w);
}

static void
weft_tls_watch_files (WeftTlsWatch *w)
{
  g_ptr_array_set_size (w->watches, 0);
  for (guint i = 0; i < G_N_ELEMENTS (w->files); i++)
    {
      g_autoptr(GError) error = NULL;
      WeftConfigWatch *cw;
      gboolean seen = FALSE;

      for (guint j = 0; j < i; j++)
        seen |= g_strcmp0 (w->files[i], w->files[j]) == 0;
      if (w->files[i] == NULL || seen)
        continue;
      cw = weft_config_watch_new (w->files[i], WEFT_TLS_WATCH_DEBOUNCE_MS, weft_tls_watch_fired,
                                  w, &error);
      if (cw == NULL)
        weft_log (WEFT_LOG_WARNING, "tls", "%s; a rotation needs a SIGHUP", error->message);
      else
        g_ptr_array_add (w->watches, cw);
    }
}

void
weft_tls_watch_update (WeftTlsWatch *w, const WeftTlsConfig *config, WeftTlsCredentials *creds)
{
  const char *files[3] = { NULL, NULL, NULL };
  gboolean same = TRUE;

  if (config != NULL && creds != NULL)
    {
      files[0] = config->cert;
      files[1] = config->key;
      files[2] = config->bundle;
    }
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    same &= g_strcmp0 (files[i], w->files[i]) == 0;
  for (guint i = 0; !same && i < G_N_ELEMENTS (files); i++)
    {
      g_free (w->files[i]);
      w->files[i] = g_strdup (files[i]);
    }
  if (!same)
    weft_tls_watch_files (w);
  if (w->creds != creds)
    w->warned_at = 0;
  g_clear_pointer (&w->creds, weft_tls_credentials_unref);
  g_clear_pointer (&w->asked, g_free);
  w->warning_ms = config != NULL ? config->expiry_warning_ms : 0;
  /* the old identity's gauge goes; the new one's is set below */
  weft_metric_series_hide (w->series);
  w->series = NULL;
  if (creds == NULL)
    return;
  w->creds = weft_tls_credentials_ref (creds);
  w->series = weft_metric_get_series (w->gauge, (const char *const[]) {
                                        weft_tls_credentials_get_spiffe_id (creds), NULL });
  if (w->timer_id == 0)
    w->timer_id = g_timeout_add_seconds (WEFT_TLS_EXPIRY_CHECK_S, weft_tls_watch_tick, w);
  weft_tls_watch_check_expiry (w);
}

void
weft_tls_watch_refresh (WeftTlsWatch *w)
{
  if (w != NULL && w->creds != NULL)
    weft_metric_series_set (w->series,
                            weft_tls_credentials_get_seconds_left (w->creds,
                                                                   g_get_real_time () / G_USEC_PER_SEC));
}
