/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The metric registry behind /metrics. Every series keeps one value slot per
 * thread (slot 0: the main thread, slot i + 1: worker i); a thread writes
 * only its own slot, so updates take no lock, and reads sum the slots.
 * Families live for the whole process, so values survive reloads.
 */
#pragma once

#include <weft/plugin.h>

G_BEGIN_DECLS

/* sets the number of workers; call once before any family is registered */
void        weft_metrics_init     (guint n_workers);
void        weft_metrics_shutdown (void);
WeftMetric *weft_metrics_register (WeftMetricType type, const char *name, const char *help,
                                   const char *const *label_names,
                                   const double *buckets, guint n_buckets);
/* replaces the main thread's slot (gauges the main thread owns) */
void        weft_metric_series_set (WeftMetricSeries *series, gint64 value);
/* leaves a gauge series out of /metrics until it is set again (its
 * subject went away: an old certificate's SPIFFE ID) */
void        weft_metric_series_hide (WeftMetricSeries *series);
/* the sum over all slots of a counter or gauge */
gint64      weft_metric_series_get (WeftMetricSeries *series);
/* Prometheus text format 0.0.4 */
void        weft_metrics_render   (GString *out);
/* a valid family or label name: [a-zA-Z_:][a-zA-Z0-9_:]* */
gboolean    weft_metrics_name_valid (const char *name);

G_END_DECLS
