/* weft-tracing-private.h: the tracing plugin's settings, span queues and
 * exporter
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <weft/plugin.h>

#include "weft-tracing-span-private.h"

G_BEGIN_DECLS

/**
 * WeftTraceSettings:
 *
 * The `tracing:` settings as written, defaults filled in (all but
 * @service_name, which falls back to the node's identity later).
 */
typedef struct {
  WeftTraceFormat  format;
  char            *endpoint;       /* an http:// URL */
  double           sampling;       /* percent, 0 to 100 */
  char            *service_name;   /* NULL = from node: */
  guint            max_spans;      /* spans per export body */
  guint64          interval_ms;    /* how often the queues are emptied */
  guint            queue;          /* spans waiting per worker at most */
  guint64          timeout_ms;     /* one export POST */
} WeftTraceSettings;

WeftTraceSettings *weft_trace_settings_parse (const WeftNode *node, GError **error);
void               weft_trace_settings_free  (WeftTraceSettings *settings);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (WeftTraceSettings, weft_trace_settings_free)

/* ------------------------------------------------------------------ */
/* per-worker queues                                                    */
/* ------------------------------------------------------------------ */

/* a counter alone on its cache line, so producer and consumer do not
 * bounce one line between cores */
typedef struct {
  guint64 value;
  char    pad[56];
} WeftTraceCounter;

/**
 * WeftSpanQueue:
 *
 * A single-producer, single-consumer ring of span records: the worker
 * writes, the main thread reads. No lock, no allocation after init.
 */
typedef struct {
  WeftTraceCounter  tail;     /* written by the worker */
  WeftTraceCounter  head;     /* written by the main thread */
  WeftSpanRecord   *slots;
  guint             capacity;
  guint             kick_at;  /* this many waiting: wake the main thread */
  int               kicked;
} WeftSpanQueue;

void                  weft_span_queue_init    (WeftSpanQueue *q, guint capacity, guint kick_at);
void                  weft_span_queue_clear   (WeftSpanQueue *q);
WeftSpanRecord       *weft_span_queue_reserve (WeftSpanQueue *q);
gboolean              weft_span_queue_commit  (WeftSpanQueue *q);
guint                 weft_span_queue_length  (WeftSpanQueue *q);
const WeftSpanRecord *weft_span_queue_nth     (WeftSpanQueue *q, guint i);
void                  weft_span_queue_release (WeftSpanQueue *q, guint n);
void                  weft_span_queue_rearm   (WeftSpanQueue *q);

/* ------------------------------------------------------------------ */
/* the exporter                                                         */
/* ------------------------------------------------------------------ */

/**
 * WeftTraceExporter:
 *
 * POSTs export bodies to the collector through a SoupSession on the main
 * thread. Reference counted: a configuration holds it, and so does every
 * POST in flight, so a retired configuration's last batch still goes out.
 */
typedef struct _WeftTraceExporter WeftTraceExporter;

/* @spans and @exports: the weft_tracing_spans_total and
 * weft_tracing_exports_total families */
WeftTraceExporter *weft_trace_exporter_new      (const WeftTraceSettings *settings,
                                                 WeftMetric *spans, WeftMetric *exports);
void               weft_trace_exporter_unref    (WeftTraceExporter *exporter);
typedef void (*WeftTraceReadyFunc) (gpointer data);
void               weft_trace_exporter_set_ready_func (WeftTraceExporter *exporter,
                                                       WeftTraceReadyFunc ready, gpointer data);
/* FALSE while the most POSTs are in flight: spans then wait in the queues */
gboolean           weft_trace_exporter_can_send (WeftTraceExporter *exporter);
/* sends @body (@n_spans spans) without waiting; the result is counted */
void               weft_trace_exporter_send     (WeftTraceExporter *exporter, GBytes *body,
                                                 guint n_spans);
/* at exit: runs the main context until every POST ended, cancelling those
 * still running after @wait_ms */
void               weft_trace_exporters_settle  (guint64 wait_ms);

/* ------------------------------------------------------------------ */
/* the configuration generation                                         */
/* ------------------------------------------------------------------ */

/**
 * WeftTraceConfig:
 *
 * One generation's tracing: its settings, a span queue per worker, the
 * encoder and the exporter the main thread empties the queues into.
 */
typedef struct {
  WeftTraceSettings  *settings;
  guint               id;             /* finds a live config from a kick */
  guint               slot;
  guint64             sample_below;   /* sampled when a random u32 is below */
  guint               n_workers;
  WeftSpanQueue      *queues;
  char               *service_name;
  WeftTraceResource   resource;
  WeftSpanEncoder     encoder;
  WeftTraceExporter  *exporter;
  guint               timer;
  gboolean            held_back;      /* spans waited for a POST to end */
  WeftMetricSeries   *recorded;
  WeftMetricSeries   *dropped;
} WeftTraceConfig;

WeftTraceConfig *weft_trace_config_new   (WeftPluginContext *ctx, const WeftNode *node,
                                          GError **error);
void             weft_trace_config_free  (WeftTraceConfig *config);
/* from a worker: its queue is full enough, the main thread should export */
void             weft_trace_config_kick  (WeftTraceConfig *config);

G_END_DECLS
