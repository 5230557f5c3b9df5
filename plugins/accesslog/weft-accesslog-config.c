/* weft-accesslog-config.c: the `accesslog:` settings, the metrics, and
 * the writer a generation logs through
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "weft-accesslog-private.h"

#include <glib-unix.h>
#include <signal.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* settings                                                             */
/* ------------------------------------------------------------------ */

void
weft_accesslog_settings_clear (WeftAccessLogSettings *settings)
{
  g_clear_pointer (&settings->path, g_free);
  g_clear_pointer (&settings->key, g_free);
  if (settings->fd >= 0)
    close (settings->fd);
  settings->fd = -1;
}

static gboolean
weft_accesslog_parse_path (const WeftNode *node, WeftAccessLogSettings *settings, GError **error)
{
  const char *text = "-";

  if (!weft_node_is_null (node) && !weft_node_get_string (node, &text, error))
    return FALSE;
  if (*text == '\0')
    {
      weft_node_set_error (node, error, "'path' is empty; use - for stdout");
      return FALSE;
    }
  settings->path = g_strdup (text);
  settings->key = weft_accesslog_destination_key (text);
  return TRUE;
}

static gboolean
weft_accesslog_parse_buffer (const WeftNode *node, WeftAccessLogSettings *settings,
                             GError **error)
{
  settings->buffer = WEFT_ACCESSLOG_DEFAULT_BUFFER;
  if (weft_node_is_null (node))
    return TRUE;
  if (!weft_node_get_size (node, &settings->buffer, error))
    return FALSE;
  if (settings->buffer < WEFT_ACCESSLOG_MIN_BUFFER || settings->buffer > WEFT_ACCESSLOG_MAX_BUFFER)
    {
      weft_node_set_error (node, error, "'buffer' must be between 64KiB and 1GiB");
      return FALSE;
    }
  return TRUE;
}

gboolean
weft_accesslog_settings_parse (const WeftNode *node, WeftAccessLogSettings *settings,
                               GError **error)
{
  static const char *const keys[] = { "path", "buffer", NULL };
  const WeftNode *path = weft_node_lookup (node, "path");
  g_autoptr(GError) local = NULL;

  settings->fd = -1;
  if (!weft_node_is_null (node) &&
      (!weft_node_expect_kind (node, WEFT_NODE_MAP, error) ||
       !weft_node_check_keys (node, keys, error)))
    return FALSE;
  if (!weft_accesslog_parse_path (path, settings, error) ||
      !weft_accesslog_parse_buffer (weft_node_lookup (node, "buffer"), settings, error))
    return FALSE;
  /* opened now, so a missing directory fails the load with a position */
  settings->fd = weft_accesslog_destination_open (settings->path, &local);
  if (settings->fd < 0)
    {
      weft_node_set_error (path != NULL ? path : node, error, "access log: %s", local->message);
      return FALSE;
    }
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* the generation's config                                              */
/* ------------------------------------------------------------------ */

static void
weft_accesslog_register_metrics (WeftPluginContext *ctx, WeftAccessLogCounters *counters)
{
  static const char *const result_labels[] = { "result", NULL };
  WeftMetric *lines = weft_plugin_context_register_metric (ctx, WEFT_METRIC_COUNTER,
      "weft_accesslog_lines_total",
      "Access log lines, by result: written by the writer thread, or dropped (the buffer was "
      "full, or the destination took nothing when the log closed).", result_labels, NULL, 0);
  WeftMetric *errors = weft_plugin_context_register_metric (ctx, WEFT_METRIC_COUNTER,
      "weft_accesslog_write_errors_total",
      "Access log writes and reopens that failed.", NULL, NULL, 0);
  WeftMetric *reopens = weft_plugin_context_register_metric (ctx, WEFT_METRIC_COUNTER,
      "weft_accesslog_reopens_total",
      "Access log files reopened on SIGUSR1.", NULL, NULL, 0);

  counters->written = weft_metric_get_series (lines, (const char *const[]) { "written", NULL });
  counters->dropped = weft_metric_get_series (lines, (const char *const[]) { "dropped", NULL });
  counters->write_errors = weft_metric_get_series (errors, NULL);
  counters->reopens = weft_metric_get_series (reopens, NULL);
}

/* the writer of the destination: the one a live generation already uses
 * (so a reload neither reopens nor interleaves), or a new one */
static gboolean
weft_accesslog_config_writer (WeftAccessLogConfig *config, WeftPluginContext *ctx,
                              const WeftAccessLogCounters *counters, GError **error)
{
  WeftAccessLogSettings *s = &config->settings;
  WeftAccessLogWriter *writer = weft_accesslog_writer_lookup (s->key);
  int fd;

  if (writer != NULL)
    {
      config->writer = weft_accesslog_writer_ref (writer);
      /* the fd opened to check the path is not needed */
      close (s->fd);
      s->fd = -1;
      if (weft_accesslog_writer_get_buffer (writer) != s->buffer)
        weft_log (WEFT_LOG_WARNING, "accesslog", "buffer: a new size takes effect when %s is "
                  "no longer logged to (a restart)", s->key);
      return TRUE;
    }
  fd = s->fd;
  s->fd = -1;
  config->writer = weft_accesslog_writer_new (s->key, s->path, fd,
                                              weft_plugin_context_get_n_workers (ctx),
                                              s->buffer, counters, error);
  return config->writer != NULL;
}

static gboolean
weft_accesslog_on_sigusr1 (gpointer data)
{
  WeftAccessLogConfig *config = data;

  weft_accesslog_writer_reopen (config->writer);
  return G_SOURCE_CONTINUE;
}

WeftAccessLogConfig *
weft_accesslog_config_new (WeftPluginContext *ctx, const WeftNode *node, GError **error)
{
  g_autoptr(WeftAccessLogConfig) config = g_new0 (WeftAccessLogConfig, 1);
  WeftAccessLogCounters counters;

  config->settings.fd = -1;
  if (!weft_accesslog_settings_parse (node, &config->settings, error))
    return NULL;
  weft_accesslog_register_metrics (ctx, &counters);
  config->dropped = counters.dropped;
  if (!weft_accesslog_config_writer (config, ctx, &counters, error))
    return NULL;
  config->sigusr1 = g_unix_signal_add (SIGUSR1, weft_accesslog_on_sigusr1, config);
  return g_steal_pointer (&config);
}

void
weft_accesslog_config_free (WeftAccessLogConfig *config)
{
  if (config == NULL)
    return;
  if (config->sigusr1 != 0)
    g_source_remove (config->sigusr1);
  /* the last generation on a destination flushes it and stops its thread */
  weft_accesslog_writer_unref (config->writer);
  weft_accesslog_settings_clear (&config->settings);
  g_free (config);
}
