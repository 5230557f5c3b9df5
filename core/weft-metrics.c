/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "weft-metrics-private.h"

#include <string.h>

struct _WeftMetric {
  WeftMetricType type;
  char          *name;
  char          *help;
  char         **label_names;
  guint          n_labels;
  double        *buckets;
  guint          n_buckets;
  GPtrArray     *series;        /* WeftMetricSeries*, in creation order */
  GHashTable    *by_key;        /* joined label values -> series */
};

struct _WeftMetricSeries {
  WeftMetric *metric;
  char      **label_values;
  /* per slot: one value for counters and gauges; for histograms the bucket
   * counts, the +Inf count, then the sum as a double's bits */
  gint64     *values;
  guint       stride;
  gint        hidden;      /* not rendered until set again (a gauge whose subject went away) */
};

static GMutex      weft_metrics_lock;
static GPtrArray  *weft_metrics_families;   /* WeftMetric*, registration order */
static guint       weft_metrics_n_slots = 1;

extern gint weft_worker_get_index (void);

void
weft_metrics_init (guint n_workers)
{
  g_mutex_lock (&weft_metrics_lock);
  if (weft_metrics_families == NULL)
    {
      weft_metrics_families = g_ptr_array_new ();
      weft_metrics_n_slots = n_workers + 1;
    }
  g_mutex_unlock (&weft_metrics_lock);
}

static void
weft_metric_series_free (gpointer data)
{
  WeftMetricSeries *series = data;

  g_strfreev (series->label_values);
  g_free (series->values);
  g_free (series);
}

static void
weft_metric_free (WeftMetric *metric)
{
  g_free (metric->name);
  g_free (metric->help);
  g_strfreev (metric->label_names);
  g_free (metric->buckets);
  g_hash_table_unref (metric->by_key);
  g_ptr_array_unref (metric->series);
  g_free (metric);
}

void
weft_metrics_shutdown (void)
{
  g_mutex_lock (&weft_metrics_lock);
  if (weft_metrics_families != NULL)
    {
      for (guint i = 0; i < weft_metrics_families->len; i++)
        weft_metric_free (weft_metrics_families->pdata[i]);
      g_ptr_array_unref (weft_metrics_families);
      weft_metrics_families = NULL;
    }
  g_mutex_unlock (&weft_metrics_lock);
}

gboolean
weft_metrics_name_valid (const char *name)
{
  if (name == NULL || *name == '\0' || g_ascii_isdigit (*name))
    return FALSE;
  for (const char *p = name; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && *p != '_' && *p != ':')
      return FALSE;
  return TRUE;
}

static WeftMetric *
weft_metrics_find_locked (const char *name)
{
  for (guint i = 0; i < weft_metrics_families->len; i++)
    {
      WeftMetric *metric = weft_metrics_families->pdata[i];
      if (strcmp (metric->name, name) == 0)
        return metric;
    }
  return NULL;
}

WeftMetric *
weft_metrics_register (WeftMetricType type, const char *name, const char *help,
                       const char *const *label_names,
                       const double *buckets, guint n_buckets)
{
  WeftMetric *metric;

  if (!weft_metrics_name_valid (name))
    return NULL;
  if (weft_metrics_families == NULL)
    weft_metrics_init (0);
  g_mutex_lock (&weft_metrics_lock);
  metric = weft_metrics_find_locked (name);
  if (metric != NULL)
    {
      g_mutex_unlock (&weft_metrics_lock);
      /* same name, other shape: refuse rather than mix series */
      return metric->type == type ? metric : NULL;
    }
  metric = g_new0 (WeftMetric, 1);
  metric->type = type;
  metric->name = g_strdup (name);
  metric->help = g_strdup (help ? help : name);
  metric->label_names = g_strdupv ((char **) label_names);
  if (metric->label_names == NULL)
    metric->label_names = g_new0 (char *, 1);
  metric->n_labels = g_strv_length (metric->label_names);
  if (type == WEFT_METRIC_HISTOGRAM)
    {
      metric->buckets = g_memdup2 (buckets, sizeof (double) * n_buckets);
      metric->n_buckets = n_buckets;
    }
  metric->series = g_ptr_array_new_with_free_func (weft_metric_series_free);
  metric->by_key = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_ptr_array_add (weft_metrics_families, metric);
  g_mutex_unlock (&weft_metrics_lock);
  return metric;
}


static WeftMetricSeries *
weft_metric_lookup (WeftMetric *metric, const char *const *label_values, guint max_series)
{
  g_autoptr(GString) key = g_string_new (NULL);
  WeftMetricSeries *series;

  if (metric == NULL)
    return NULL;
  for (guint i = 0; i < metric->n_labels; i++)
    {
      const char *v = label_values != NULL && label_values[i] != NULL ? label_values[i] : "";
      g_string_append (key, v);
      g_string_append_c (key, '\x1f');
    }
  g_mutex_lock (&weft_metrics_lock);
  series = g_hash_table_lookup (metric->by_key, key->str);
  if (series == NULL && metric->series->len < max_series)
    {
      series = g_new0 (WeftMetricSeries, 1);
      series->metric = metric;
      series->label_values = g_new0 (char *, metric->n_labels + 1);
      for (guint i = 0; i < metric->n_labels; i++)
        series->label_values[i] = g_strdup (label_values != NULL && label_values[i] != NULL ?
                                            label_values[i] : "");
      series->stride = metric->type == WEFT_METRIC_HISTOGRAM ? metric->n_buckets + 2 : 1;
      series->values = g_new0 (gint64, (gsize) series->stride * weft_metrics_n_slots);
      g_hash_table_insert (metric->by_key, g_strdup (key->str), series);
      g_ptr_array_add (metric->series, series);
    }
  g_mutex_unlock (&weft_metrics_lock);
  return series;
}

WeftMetricSeries *
weft_metric_get_series (WeftMetric *metric, const char *const *label_values)
{
  return weft_metric_lookup (metric, label_values, G_MAXUINT);
}

WeftMetricSeries *
weft_metric_try_series (WeftMetric *metric, const char *const *label_values, guint max_series)
{
  return weft_metric_lookup (metric, label_values, max_series);
}

static inline gint64 *
weft_metric_series_slot (WeftMetricSeries *series)
{
  gint idx = weft_worker_get_index () + 1;

  if (idx < 0 || (guint) idx >= weft_metrics_n_slots)
    idx = 0;
  return series->values + (gsize) idx * series->stride;
}

void
weft_metric_series_add (WeftMetricSeries *series, gint64 delta)
{
  gint64 *slot;

  if (series == NULL || series->metric->type == WEFT_METRIC_HISTOGRAM)
    return;
  /* one writer per slot: a relaxed load and store, no lock prefix */
  slot = weft_metric_series_slot (series);
  __atomic_store_n (slot, __atomic_load_n (slot, __ATOMIC_RELAXED) + delta, __ATOMIC_RELAXED);
}

void
weft_metric_series_set (WeftMetricSeries *series, gint64 value)
{
  if (series == NULL)
    return;
  __atomic_store_n (&series->values[0], value, __ATOMIC_RELAXED);
  g_atomic_int_set (&series->hidden, 0);
}

void
weft_metric_series_hide (WeftMetricSeries *series)
{
  if (series != NULL)
    g_atomic_int_set (&series->hidden, 1);
}

void
weft_metric_series_observe (WeftMetricSeries *series, double value)
{
  WeftMetric *metric;
  gint64 *slot;
  double sum;
  guint b;

  if (series == NULL || series->metric->type != WEFT_METRIC_HISTOGRAM)
    return;
  metric = series->metric;
  slot = weft_metric_series_slot (series);
  for (b = 0; b < metric->n_buckets && value > metric->buckets[b]; b++)
    ;
  /* counts are per bucket here; rendering makes them cumulative */
  __atomic_store_n (&slot[b], __atomic_load_n (&slot[b], __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
  memcpy (&sum, &slot[metric->n_buckets + 1], sizeof sum);
  sum += value;
  memcpy (&slot[metric->n_buckets + 1], &sum, sizeof sum);
}

gint64
weft_metric_series_get (WeftMetricSeries *series)
{
  gint64 total = 0;

  for (guint s = 0; s < weft_metrics_n_slots; s++)
    total += __atomic_load_n (&series->values[(gsize) s * series->stride], __ATOMIC_RELAXED);
  return total;
}

static void
weft_metrics_append_escaped (GString *out, const char *text, gboolean quote)
{
  for (const char *p = text; *p != '\0'; p++)
    {
      if (*p == '\\')
        g_string_append (out, "\\\\");
      else if (*p == '\n')
        g_string_append (out, "\\n");
      else if (*p == '"' && quote)
        g_string_append (out, "\\\"");
      else
        g_string_append_c (out, *p);
    }
}

static void
weft_metrics_append_labels (GString *out, WeftMetricSeries *series, const char *le)
{
  WeftMetric *metric = series->metric;
  gboolean any = FALSE;

  if (metric->n_labels == 0 && le == NULL)
    return;
  g_string_append_c (out, '{');
  for (guint i = 0; i < metric->n_labels; i++)
    {
      g_string_append_printf (out, "%s%s=\"", any ? "," : "", metric->label_names[i]);
      weft_metrics_append_escaped (out, series->label_values[i], TRUE);
      g_string_append_c (out, '"');
      any = TRUE;
    }
  if (le != NULL)
    g_string_append_printf (out, "%sle=\"%s\"", any ? "," : "", le);
  g_string_append_c (out, '}');
}

static void
weft_metrics_render_histogram (GString *out, WeftMetricSeries *series)
{
  WeftMetric *metric = series->metric;
  gint64 cumulative = 0;
  double sum = 0;
  char le[G_ASCII_DTOSTR_BUF_SIZE];

  for (guint s = 0; s < weft_metrics_n_slots; s++)
    {
      double part;
      memcpy (&part, &series->values[(gsize) s * series->stride + metric->n_buckets + 1],
              sizeof part);
      sum += part;
    }
  for (guint b = 0; b <= metric->n_buckets; b++)
    {
      for (guint s = 0; s < weft_metrics_n_slots; s++)
        cumulative += __atomic_load_n (&series->values[(gsize) s * series->stride + b],
                                       __ATOMIC_RELAXED);
      if (b < metric->n_buckets)
        g_ascii_formatd (le, sizeof le, "%g", metric->buckets[b]);
      else
        g_strlcpy (le, "+Inf", sizeof le);
      g_string_append_printf (out, "%s_bucket", metric->name);
      weft_metrics_append_labels (out, series, le);
      g_string_append_printf (out, " %" G_GINT64_FORMAT "\n", cumulative);
    }
  g_ascii_formatd (le, sizeof le, "%.15g", sum);
  g_string_append_printf (out, "%s_sum", metric->name);
  weft_metrics_append_labels (out, series, NULL);
  g_string_append_printf (out, " %s\n%s_count", le, metric->name);
  weft_metrics_append_labels (out, series, NULL);
  g_string_append_printf (out, " %" G_GINT64_FORMAT "\n", cumulative);
}

static const char *
weft_metric_type_name (WeftMetricType type)
{
  switch (type)
    {
    case WEFT_METRIC_COUNTER: return "counter";
    case WEFT_METRIC_GAUGE: return "gauge";
    case WEFT_METRIC_HISTOGRAM: return "histogram";
    default: return "untyped";
    }
}

void
weft_metrics_render (GString *out)
{
  if (weft_metrics_families == NULL)
    return;
  g_mutex_lock (&weft_metrics_lock);
  for (guint i = 0; i < weft_metrics_families->len; i++)
    {
      WeftMetric *metric = weft_metrics_families->pdata[i];

      g_string_append_printf (out, "# HELP %s ", metric->name);
      weft_metrics_append_escaped (out, metric->help, FALSE);
      g_string_append_printf (out, "\n# TYPE %s %s\n", metric->name,
                              weft_metric_type_name (metric->type));
      for (guint j = 0; j < metric->series->len; j++)
        {
          WeftMetricSeries *series = metric->series->pdata[j];
          if (g_atomic_int_get (&series->hidden))
            continue;
          if (metric->type == WEFT_METRIC_HISTOGRAM)
            {
              weft_metrics_render_histogram (out, series);
              continue;
            }
          g_string_append (out, metric->name);
          weft_metrics_append_labels (out, series, NULL);
          g_string_append_printf (out, " %" G_GINT64_FORMAT "\n", weft_metric_series_get (series));
        }
    }
  g_mutex_unlock (&weft_metrics_lock);
}
