/* weft-tracing-span-private.h: trace context propagation, span records and
 * their JSON encodings; pure code without I/O, shared with the unit tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define WEFT_TRACE_ID_HEX 32
#define WEFT_SPAN_ID_HEX  16
/* "00-" trace "-" span "-" flags, NUL included */
#define WEFT_TRACEPARENT_MAX 56
/* trace (32) "-" span (16) "-" d "-" parent (16), NUL included */
#define WEFT_B3_MAX 69

/**
 * WeftTraceSource:
 * @WEFT_TRACE_SOURCE_NONE: no usable parent: a new trace starts
 * @WEFT_TRACE_SOURCE_W3C: a valid traceparent
 * @WEFT_TRACE_SOURCE_B3_SINGLE: a valid `b3` header
 * @WEFT_TRACE_SOURCE_B3_MULTI: valid x-b3-traceid and x-b3-spanid
 *
 * Where the parent of a request's span came from.
 */
typedef enum {
  WEFT_TRACE_SOURCE_NONE,
  WEFT_TRACE_SOURCE_W3C,
  WEFT_TRACE_SOURCE_B3_SINGLE,
  WEFT_TRACE_SOURCE_B3_MULTI,
} WeftTraceSource;

/**
 * WeftTraceDecision:
 * @WEFT_TRACE_DECISION_NONE: the caller did not decide: the ratio decides
 * @WEFT_TRACE_DECISION_DROP: the caller said not sampled
 * @WEFT_TRACE_DECISION_SAMPLE: the caller said sampled
 * @WEFT_TRACE_DECISION_DEBUG: B3 debug: sampled, and passed on as debug
 */
typedef enum {
  WEFT_TRACE_DECISION_NONE,
  WEFT_TRACE_DECISION_DROP,
  WEFT_TRACE_DECISION_SAMPLE,
  WEFT_TRACE_DECISION_DEBUG,
} WeftTraceDecision;

/**
 * WeftTraceHeaders:
 *
 * The propagation headers of a request, NULL when absent; found in one pass
 * over the request's headers.
 */
typedef struct {
  const char *traceparent;
  const char *tracestate;
  const char *b3;
  const char *x_b3_traceid;
  const char *x_b3_spanid;
  const char *x_b3_parentspanid;
  const char *x_b3_sampled;
  const char *x_b3_flags;
} WeftTraceHeaders;

/**
 * WeftTraceParent:
 * @source: where the parent came from
 * @decision: the caller's sampling decision
 * @trace_id: 32 lowercase hex digits (a 64-bit B3 id is padded with zeros),
 *   "" without a parent
 * @span_id: the caller's span, 16 lowercase hex digits, "" without a parent
 * @short_b3: the B3 trace id came as 16 hex digits (weft_trace_extract()
 *   looks at the B3 headers for it even when traceparent gave the parent)
 */
typedef struct {
  WeftTraceSource    source;
  WeftTraceDecision  decision;
  char               trace_id[WEFT_TRACE_ID_HEX + 1];
  char               span_id[WEFT_SPAN_ID_HEX + 1];
  gboolean           short_b3;
} WeftTraceParent;

/* the parse functions return TRUE when the header held a valid parent;
 * a B3 header may hold a decision alone (b3: 0), which they keep */
gboolean weft_trace_parse_traceparent (const char *value, WeftTraceParent *out);
gboolean weft_trace_parse_b3_single   (const char *value, WeftTraceParent *out);
gboolean weft_trace_parse_b3_multi    (const WeftTraceHeaders *h, WeftTraceParent *out);
/* traceparent first, then b3, then x-b3-*: the parent and decision to use */
void     weft_trace_extract           (const WeftTraceHeaders *h, WeftTraceParent *out);
/* TRUE for a header name weft_trace_extract() reads; fills the field */
gboolean weft_trace_headers_take      (WeftTraceHeaders *h, const char *name, const char *value);

/* FALSE for a name that cannot be a propagation header, decided by its
 * first bytes alone: the per-request scan of every header stays cheap */
static inline gboolean
weft_trace_header_candidate (const char *name)
{
  switch (name[0] | 0x20)
    {
    case 't':
      return TRUE;
    case 'b':
      return name[1] == '3';
    case 'x':
      return name[1] == '-' && (name[2] | 0x20) == 'b';
    default:
      return FALSE;
    }
}

/* 16 lowercase hex digits of @v, most significant first, no NUL */
void     weft_trace_hex64             (char *out, guint64 v);
/* ids from random bits, lowercase hex and a NUL; never all zero */
void     weft_trace_format_trace_id   (char out[WEFT_TRACE_ID_HEX + 1], guint64 hi, guint64 lo);
void     weft_trace_format_span_id    (char out[WEFT_SPAN_ID_HEX + 1], guint64 v);
void     weft_trace_format_traceparent (char out[WEFT_TRACEPARENT_MAX], const char *trace_id,
                                        const char *span_id, gboolean sampled);
/* the trace id as B3 writes it: the low 16 digits when @short_b3 and the
 * high half is zero, else all 32 */
const char *weft_trace_b3_trace_id    (const char *trace_id, gboolean short_b3);
/* "trace-span-1" (or -0, -d), then "-parent" when @parent_id is not empty */
void     weft_trace_format_b3         (char out[WEFT_B3_MAX], const char *trace_id,
                                       gboolean short_b3, const char *span_id,
                                       WeftTraceDecision decision, const char *parent_id);

/* ------------------------------------------------------------------ */
/* span records                                                         */
/* ------------------------------------------------------------------ */

#define WEFT_SPAN_METHOD_MAX     16
#define WEFT_SPAN_TARGET_MAX     256
#define WEFT_SPAN_AUTHORITY_MAX  128
#define WEFT_SPAN_ROUTE_MAX      64
#define WEFT_SPAN_AGENT_MAX      128
#define WEFT_SPAN_REQUEST_ID_MAX 64
#define WEFT_SPAN_PEER_MAX       64
#define WEFT_SPAN_REASON_MAX     48

typedef enum {
  WEFT_SPAN_KIND_SERVER = 2,   /* the OTLP SpanKind numbers */
  WEFT_SPAN_KIND_CLIENT = 3,
} WeftSpanKind;

/**
 * WeftSpanRecord:
 *
 * One finished span, fixed size, so a worker records it into a queue slot
 * without allocating. Strings longer than their field are cut. @peer holds
 * the client's IP on a SERVER span and the upstream's "ip:port" on a CLIENT
 * span.
 */
typedef struct {
  char     trace_id[WEFT_TRACE_ID_HEX + 1];
  char     span_id[WEFT_SPAN_ID_HEX + 1];
  char     parent_id[WEFT_SPAN_ID_HEX + 1];   /* "" for a root span */
  guint8   kind;                              /* WeftSpanKind */
  guint8   http_minor;                        /* HTTP/1.x */
  guint8   debug;
  guint16  status;                            /* 0 = no response */
  guint32  response_flags;                    /* WeftResponseFlags */
  gint64   start_us;                          /* wall clock */
  gint64   end_us;
  char     method[WEFT_SPAN_METHOD_MAX];
  char     target[WEFT_SPAN_TARGET_MAX];      /* path and query */
  char     authority[WEFT_SPAN_AUTHORITY_MAX];
  char     route[WEFT_SPAN_ROUTE_MAX];
  char     user_agent[WEFT_SPAN_AGENT_MAX];
  char     request_id[WEFT_SPAN_REQUEST_ID_MAX];
  char     peer[WEFT_SPAN_PEER_MAX];
  char     error_reason[WEFT_SPAN_REASON_MAX];
} WeftSpanRecord;

/* copies @src (NULL = "") into @dst of @size bytes, cutting it to fit */
void     weft_span_copy               (char *dst, gsize size, const char *src);
/* the status message when the span failed (status ERROR), else NULL */
const char *weft_span_error_message   (const WeftSpanRecord *rec, char *buf, gsize size);

/* ------------------------------------------------------------------ */
/* encodings                                                            */
/* ------------------------------------------------------------------ */

typedef enum {
  WEFT_TRACE_FORMAT_OTLP,     /* OTLP/HTTP JSON, for /v1/traces */
  WEFT_TRACE_FORMAT_ZIPKIN,   /* Zipkin v2 JSON, for /api/v2/spans */
} WeftTraceFormat;

/**
 * WeftTraceResource:
 *
 * Who the spans come from: OTLP resource attributes (and the Zipkin
 * localEndpoint's serviceName). Only @service_name is required.
 */
typedef struct {
  const char *service_name;
  const char *service_namespace;
  const char *service_version;
  const char *instance_id;
} WeftTraceResource;

/**
 * WeftSpanEncoder:
 *
 * Writes one export body: weft_span_encoder_begin(), a span at a time,
 * then weft_span_encoder_end(). The buffers are kept between bodies.
 */
typedef struct {
  WeftTraceFormat format;
  GString        *out;
  guint           n_spans;
  char            flags_buf[64];
} WeftSpanEncoder;

void     weft_span_encoder_init       (WeftSpanEncoder *enc, WeftTraceFormat format);
void     weft_span_encoder_clear      (WeftSpanEncoder *enc);
void     weft_span_encoder_begin      (WeftSpanEncoder *enc, const WeftTraceResource *res);
void     weft_span_encoder_add        (WeftSpanEncoder *enc, const WeftTraceResource *res,
                                       const WeftSpanRecord *rec);
/* the finished body; the encoder is empty again */
GBytes  *weft_span_encoder_end        (WeftSpanEncoder *enc);

/* appends @s (@len bytes, -1 = NUL-terminated) as a JSON string; bytes that
 * are not UTF-8 become U+FFFD */
void     weft_json_append_string      (GString *out, const char *s, gssize len);

G_END_DECLS
