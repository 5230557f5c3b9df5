/* SPDX-License-Identifier: LGPL-2.1-or-later
 * The metric registry: per-thread slots summed on read, families kept by
 * name (so values survive reloads), and Prometheus 0.0.4 text. */
#include "weft-metrics-private.h"

#include <string.h>

static void
test_counter_and_labels (void)
{
  static const char *const labels[] = { "listener", NULL };
  WeftMetric *m = weft_metrics_register (WEFT_METRIC_COUNTER, "t_requests_total", "Requests.",
                                         labels, NULL, 0);
  WeftMetricSeries *a = weft_metric_get_series (m, (const char *const[]) { "a", NULL });
  WeftMetricSeries *a2 = weft_metric_get_series (m, (const char *const[]) { "a", NULL });
  WeftMetricSeries *b = weft_metric_get_series (m, (const char *const[]) { "b\"q", NULL });
  g_autoptr(GString) out = g_string_new (NULL);

  g_assert_true (a == a2);
  weft_metric_series_add (a, 2);
  weft_metric_series_add (a2, 3);
  weft_metric_series_add (b, 1);
  g_assert_cmpint (weft_metric_series_get (a), ==, 5);
  /* the same name returns the same family: what keeps counts over reloads */
  g_assert_true (weft_metrics_register (WEFT_METRIC_COUNTER, "t_requests_total", "x", labels,
                                        NULL, 0) == m);
  g_assert_null (weft_metrics_register (WEFT_METRIC_GAUGE, "t_requests_total", "x", NULL,
                                        NULL, 0));
  g_assert_null (weft_metrics_register (WEFT_METRIC_GAUGE, "0bad-name", "x", NULL, NULL, 0));
  weft_metrics_render (out);
  g_assert_nonnull (strstr (out->str, "# HELP t_requests_total Requests.\n"
                                      "# TYPE t_requests_total counter\n"));
  g_assert_nonnull (strstr (out->str, "t_requests_total{listener=\"a\"} 5\n"));
  g_assert_nonnull (strstr (out->str, "t_requests_total{listener=\"b\\\"q\"} 1\n"));
}

/* request-made labels cannot grow a family past its bound */
static void
test_bounded_series (void)
{
  static const char *const labels[] = { "code", NULL };
  WeftMetric *m = weft_metrics_register (WEFT_METRIC_COUNTER, "t_bounded_total", "Bounded.",
                                         labels, NULL, 0);
  WeftMetricSeries *a = weft_metric_try_series (m, (const char *const[]) { "200", NULL }, 2);
  WeftMetricSeries *b = weft_metric_try_series (m, (const char *const[]) { "404", NULL }, 2);

  g_assert_nonnull (a);
  g_assert_nonnull (b);
  g_assert_null (weft_metric_try_series (m, (const char *const[]) { "500", NULL }, 2));
  /* an existing combination is always found */
  g_assert_true (weft_metric_try_series (m, (const char *const[]) { "200", NULL }, 2) == a);
  g_assert_true (weft_metric_try_series (m, (const char *const[]) { "404", NULL }, 1) == b);
}

static void
test_histogram (void)
{
  static const double buckets[] = { 0.1, 1 };
  WeftMetric *m = weft_metrics_register (WEFT_METRIC_HISTOGRAM, "t_latency_seconds", "L.",
                                         NULL, buckets, 2);
  WeftMetricSeries *s = weft_metric_get_series (m, NULL);
  g_autoptr(GString) out = g_string_new (NULL);

  weft_metric_series_observe (s, 0.05);
  weft_metric_series_observe (s, 0.5);
  weft_metric_series_observe (s, 5);
  weft_metrics_render (out);
  g_assert_nonnull (strstr (out->str, "# TYPE t_latency_seconds histogram\n"));
  /* buckets are cumulative, +Inf equals the count */
  g_assert_nonnull (strstr (out->str, "t_latency_seconds_bucket{le=\"0.1\"} 1\n"));
  g_assert_nonnull (strstr (out->str, "t_latency_seconds_bucket{le=\"1\"} 2\n"));
  g_assert_nonnull (strstr (out->str, "t_latency_seconds_bucket{le=\"+Inf\"} 3\n"));
  g_assert_nonnull (strstr (out->str, "t_latency_seconds_sum 5.55\n"));
  g_assert_nonnull (strstr (out->str, "t_latency_seconds_count 3\n"));
}

static void
test_gauge_set (void)
{
  WeftMetricSeries *s = weft_metric_get_series (
      weft_metrics_register (WEFT_METRIC_GAUGE, "t_generation", "G.", NULL, NULL, 0), NULL);

  weft_metric_series_set (s, 7);
  weft_metric_series_set (s, 9);
  g_assert_cmpint (weft_metric_series_get (s), ==, 9);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  weft_metrics_init (2);
  g_test_add_func ("/metrics/counter-and-labels", test_counter_and_labels);
  g_test_add_func ("/metrics/histogram", test_histogram);
  g_test_add_func ("/metrics/bounded-series", test_bounded_series);
  g_test_add_func ("/metrics/gauge-set", test_gauge_set);
  return g_test_run ();
}
