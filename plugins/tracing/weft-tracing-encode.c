/* weft-tracing-encode.c: span records as OTLP/HTTP JSON or Zipkin v2 JSON
 *
 * Hand-written JSON into one reused GString: the main thread encodes a
 * batch without building a tree. Attributes follow the OpenTelemetry HTTP
 * semantic conventions; the Zipkin encoding maps them to tags the way the
 * OpenTelemetry Zipkin exporter does.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "weft-tracing-span-private.h"

#include <string.h>
#include <weft/plugin.h>

#define WEFT_TRACING_SCOPE_VERSION "0.1.0"

/* responses that mean the upstream exchange itself failed */
#define WEFT_SPAN_UPSTREAM_FAILURE_FLAGS \
  (WEFT_RESPONSE_FLAG_NO_HEALTHY_UPSTREAM | WEFT_RESPONSE_FLAG_UPSTREAM_CONNECT_FAILURE | \
   WEFT_RESPONSE_FLAG_UPSTREAM_OVERFLOW | WEFT_RESPONSE_FLAG_NO_ROUTE | \
   WEFT_RESPONSE_FLAG_RETRY_LIMIT_EXCEEDED | WEFT_RESPONSE_FLAG_UPSTREAM_TIMEOUT | \
   WEFT_RESPONSE_FLAG_UPSTREAM_TERMINATION | WEFT_RESPONSE_FLAG_UPSTREAM_PROTOCOL_ERROR)

void
weft_span_copy (char *dst, gsize size, const char *src)
{
  gsize n = src != NULL ? strnlen (src, size - 1) : 0;

  memcpy (dst, src != NULL ? src : "", n);
  dst[n] = '\0';
}

/**
 * weft_span_error_message:
 * @rec: a span
 * @buf: (out): room for a message made up here
 * @size: size of @buf
 *
 * A SERVER span fails on a 5xx answer. A CLIENT span fails on any status
 * from 400 on, on no answer at all, and when the upstream exchange failed
 * (UF, UH, UT, URX and the like).
 *
 * Returns: (nullable): the status message of a failed span, NULL when the
 *   status is unset
 */
const char *
weft_span_error_message (const WeftSpanRecord *rec, char *buf, gsize size)
{
  gboolean failed;

  if (rec->kind == WEFT_SPAN_KIND_SERVER)
    failed = rec->status >= 500;
  else
    failed = rec->status >= 400 || rec->status == 0 ||
             (rec->response_flags & WEFT_SPAN_UPSTREAM_FAILURE_FLAGS) != 0;
  if (!failed)
    return NULL;
  if (rec->error_reason[0] != '\0')
    return rec->error_reason;
  if (rec->response_flags != 0)
    {
      char flags[WEFT_RESPONSE_FLAGS_MAX];
      g_strlcpy (buf, weft_response_flags_format (rec->response_flags, flags), size);
    }
  else if (rec->status != 0)
    g_snprintf (buf, size, "HTTP %u", rec->status);
  else
    g_strlcpy (buf, "no response", size);
  return buf;
}

/* ------------------------------------------------------------------ */
/* JSON                                                                 */
/* ------------------------------------------------------------------ */

/* The body is many short pieces whose lengths are mostly known: these
 * append without g_string_append()'s strlen() and checks, keeping
 * GString's invariants (length, the NUL after it). */
static inline void
weft_out_len (GString *out, const char *s, gsize len)
{
  if (G_UNLIKELY (out->allocated_len - out->len <= len))
    {
      g_string_append_len (out, s, (gssize) len);
      return;
    }
  memcpy (out->str + out->len, s, len);
  out->len += len;
  out->str[out->len] = '\0';
}

/* a string literal, measured at compile time */
#define weft_out_lit(out, lit) weft_out_len ((out), "" lit, sizeof (lit) - 1)

static inline void
weft_out_str (GString *out, const char *s)
{
  weft_out_len (out, s, strlen (s));
}

/* bytes JSON takes as they are: printable ASCII but '"' and '\\' */
static const guint8 weft_json_plain_byte[256] = {
  /* 0x00 - 0x1f: control characters */
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  /* 0x20 - 0x3f: '"' is 0x22 */
  1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  /* 0x40 - 0x5f: '\\' is 0x5c */
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
  /* 0x60 - 0x7f: DEL is 0x7f */
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0,
  /* 0x80 - 0xff: UTF-8, checked apart */
};

static void
weft_json_escape_ascii (GString *out, guchar c)
{
  static const char hex[] = "0123456789abcdef";
  char u[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf] };

  switch (c)
    {
    case '"':  weft_out_lit (out, "\\\""); break;
    case '\\': weft_out_lit (out, "\\\\"); break;
    case '\n': weft_out_lit (out, "\\n"); break;
    case '\r': weft_out_lit (out, "\\r"); break;
    case '\t': weft_out_lit (out, "\\t"); break;
    case '\b': weft_out_lit (out, "\\b"); break;
    case '\f': weft_out_lit (out, "\\f"); break;
    default:
      /* control characters and DEL; the table sends nothing else here */
      weft_out_len (out, u, sizeof u);
    }
}

/* the bytes from @s to @end inside a JSON string, without the quotes */
static void
weft_json_append_chars (GString *out, const char *s, const char *end)
{
  while (s < end)
    {
      const char *run = s;
      gunichar ch;

      /* runs of plain ASCII are copied at once */
      while (s < end && weft_json_plain_byte[(guchar) *s])
        s++;
      if (s > run)
        weft_out_len (out, run, (gsize) (s - run));
      if (s == end)
        break;
      if ((guchar) *s < 0x80)
        {
          weft_json_escape_ascii (out, (guchar) *s++);
          continue;
        }
      ch = g_utf8_get_char_validated (s, end - s);
      if (ch == (gunichar) -1 || ch == (gunichar) -2)
        {
          /* not UTF-8 (or cut in the middle of a character) */
          weft_out_lit (out, "\\ufffd");
          s++;
          continue;
        }
      weft_out_len (out, s, (gsize) (g_utf8_next_char (s) - s));
      s = g_utf8_next_char (s);
    }
}

void
weft_json_append_string (GString *out, const char *s, gssize len)
{
  g_string_append_c (out, '"');
  weft_json_append_chars (out, s, s + (len < 0 ? strlen (s) : (gsize) len));
  g_string_append_c (out, '"');
}

/* a decimal number without printf */
static void
weft_json_append_int (GString *out, gint64 v)
{
  char buf[24];
  guint i = sizeof buf;
  guint64 u = v < 0 ? -(guint64) v : (guint64) v;

  do
    buf[--i] = (char) ('0' + u % 10);
  while ((u /= 10) != 0);
  if (v < 0)
    buf[--i] = '-';
  weft_out_len (out, buf + i, sizeof buf - i);
}

/* @key_part (an opening and a quoted key, a literal) then :"@hex"; ids
 * are hex digits, which need no escaping */
#define weft_json_id(out, key_part, hex) \
  G_STMT_START { \
    weft_out_lit ((out), key_part ":\""); \
    weft_out_str ((out), (hex)); \
    g_string_append_c ((out), '"'); \
  } G_STMT_END

/* ------------------------------------------------------------------ */
/* attributes                                                           */
/* ------------------------------------------------------------------ */

typedef struct {
  WeftSpanEncoder *enc;
  guint            n;
} WeftAttrList;

/* @key is always a literal of plain ASCII (dots, colons, underscores),
 * so it is written as it is, between quotes */
static void
weft_attr_start (WeftAttrList *list, const char *key)
{
  GString *out = list->enc->out;

  if (list->n++ > 0)
    g_string_append_c (out, ',');
  if (list->enc->format == WEFT_TRACE_FORMAT_OTLP)
    {
      weft_out_lit (out, "{\"key\":\"");
      weft_out_str (out, key);
      weft_out_lit (out, "\",\"value\":");
    }
  else
    {
      g_string_append_c (out, '"');
      weft_out_str (out, key);
      weft_out_lit (out, "\":");
    }
}

static void
weft_attr_str (WeftAttrList *list, const char *key, const char *value, gssize len)
{
  GString *out = list->enc->out;

  weft_attr_start (list, key);
  if (list->enc->format == WEFT_TRACE_FORMAT_OTLP)
    weft_out_lit (out, "{\"stringValue\":");
  weft_json_append_string (out, value, len);
  if (list->enc->format == WEFT_TRACE_FORMAT_OTLP)
    weft_out_lit (out, "}}");
}

/* OTLP JSON carries int64 as a decimal string; Zipkin tags are strings */
static void
weft_attr_int (WeftAttrList *list, const char *key, gint64 value)
{
  GString *out = list->enc->out;
  gboolean otlp = list->enc->format == WEFT_TRACE_FORMAT_OTLP;

  weft_attr_start (list, key);
  if (otlp)
    weft_out_lit (out, "{\"intValue\":\"");
  else
    g_string_append_c (out, '"');
  weft_json_append_int (out, value);
  if (otlp)
    weft_out_lit (out, "\"}}");
  else
    g_string_append_c (out, '"');
}

/**
 * weft_span_split_host_port:
 * @text: "host", "host:port", "[v6]" or "[v6]:port"
 * @host_len: (out): length of the host, brackets left out
 * @port: (out): the port, 0 when none
 *
 * Returns: where the host starts in @text
 */
static const char *
weft_span_split_host_port (const char *text, gsize *host_len, guint *port)
{
  const char *colon;
  const char *close;

  *port = 0;
  if (text[0] == '[' && (close = strchr (text, ']')) != NULL)
    {
      *host_len = close - text - 1;
      if (close[1] == ':')
        *port = (guint) g_ascii_strtoull (close + 2, NULL, 10);
      return text + 1;
    }
  colon = strrchr (text, ':');
  if (colon == NULL || strchr (text, ':') != colon)
    {
      /* no port, or an IPv6 literal without brackets */
      *host_len = strlen (text);
      return text;
    }
  *host_len = colon - text;
  *port = (guint) g_ascii_strtoull (colon + 1, NULL, 10);
  return text;
}

static gboolean
weft_span_method_known (const char *method)
{
  static const char *const known[] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", NULL
  };

  return g_strv_contains (known, method);
}

static void
weft_span_url_attrs (WeftAttrList *list, const WeftSpanRecord *rec)
{
  const char *query = strchr (rec->target, '?');
  gsize host_len;
  guint port;
  const char *host;

  if (weft_span_method_known (rec->method))
    weft_attr_str (list, "http.request.method", rec->method, -1);
  else
    {
      weft_attr_str (list, "http.request.method", "_OTHER", -1);
      weft_attr_str (list, "http.request.method_original", rec->method, -1);
    }
  weft_attr_str (list, "url.path", rec->target,
                 query != NULL ? query - rec->target : (gssize) strlen (rec->target));
  if (query != NULL)
    weft_attr_str (list, "url.query", query + 1, -1);
  weft_attr_str (list, "url.scheme", "http", -1);
  if (rec->authority[0] == '\0')
    return;
  host = weft_span_split_host_port (rec->authority, &host_len, &port);
  weft_attr_str (list, "server.address", host, host_len);
  if (port != 0)
    weft_attr_int (list, "server.port", port);
}

static void
weft_span_peer_attrs (WeftAttrList *list, const WeftSpanRecord *rec)
{
  gsize host_len;
  guint port;
  const char *host;

  if (rec->peer[0] == '\0')
    return;
  if (rec->kind == WEFT_SPAN_KIND_SERVER)
    {
      weft_attr_str (list, "client.address", rec->peer, -1);
      return;
    }
  host = weft_span_split_host_port (rec->peer, &host_len, &port);
  weft_attr_str (list, "network.peer.address", host, host_len);
  if (port != 0)
    weft_attr_int (list, "network.peer.port", port);
}

static void
weft_span_attrs (WeftSpanEncoder *enc, const WeftSpanRecord *rec, const char *error)
{
  WeftAttrList list = { enc, 0 };

  weft_span_url_attrs (&list, rec);
  weft_attr_str (&list, "network.protocol.version", rec->http_minor == 0 ? "1.0" : "1.1", -1);
  if (rec->status != 0)
    weft_attr_int (&list, "http.response.status_code", rec->status);
  if (rec->user_agent[0] != '\0')
    weft_attr_str (&list, "user_agent.original", rec->user_agent, -1);
  weft_span_peer_attrs (&list, rec);
  if (rec->route[0] != '\0')
    weft_attr_str (&list, "weft.route", rec->route, -1);
  if (rec->response_flags != 0)
    weft_attr_str (&list, "weft.response_flags",
                   weft_response_flags_format (rec->response_flags, enc->flags_buf), -1);
  if (rec->error_reason[0] != '\0')
    weft_attr_str (&list, "weft.error_reason", rec->error_reason, -1);
  if (error != NULL && rec->status >= 400 && rec->error_reason[0] == '\0')
    weft_attr_int (&list, "error.type", rec->status);
  else if (error != NULL)
    weft_attr_str (&list, "error.type", error, -1);
  if (rec->request_id[0] != '\0')
    weft_attr_str (&list, "guid:x-request-id", rec->request_id, -1);
  /* Zipkin has no status: the OpenTelemetry exporter's tags stand in */
  if (enc->format == WEFT_TRACE_FORMAT_ZIPKIN && error != NULL)
    {
      weft_attr_str (&list, "otel.status_code", "ERROR", -1);
      weft_attr_str (&list, "error", error, -1);
    }
}

/* "GET", or "GET route" when a route was chosen; "HTTP" for an unknown
 * method, as the semantic conventions name such spans */
static void
weft_span_name (GString *out, const WeftSpanRecord *rec)
{
  const char *method = weft_span_method_known (rec->method) ? rec->method : "HTTP";

  g_string_append_c (out, '"');
  weft_json_append_chars (out, method, method + strlen (method));
  if (rec->route[0] != '\0')
    {
      g_string_append_c (out, ' ');
      weft_json_append_chars (out, rec->route, rec->route + strlen (rec->route));
    }
  g_string_append_c (out, '"');
}

/* ------------------------------------------------------------------ */
/* OTLP                                                                 */
/* ------------------------------------------------------------------ */

static void
weft_otlp_resource (WeftSpanEncoder *enc, const WeftTraceResource *res)
{
  WeftAttrList list = { enc, 0 };

  weft_attr_str (&list, "service.name", res->service_name, -1);
  if (res->service_namespace != NULL)
    weft_attr_str (&list, "service.namespace", res->service_namespace, -1);
  if (res->service_version != NULL)
    weft_attr_str (&list, "service.version", res->service_version, -1);
  if (res->instance_id != NULL)
    weft_attr_str (&list, "service.instance.id", res->instance_id, -1);
  weft_attr_str (&list, "telemetry.sdk.name", "weft", -1);
  weft_attr_str (&list, "telemetry.sdk.version", WEFT_TRACING_SCOPE_VERSION, -1);
}

static void
weft_otlp_span (WeftSpanEncoder *enc, const WeftSpanRecord *rec)
{
  GString *out = enc->out;
  char buf[WEFT_RESPONSE_FLAGS_MAX];
  const char *error = weft_span_error_message (rec, buf, sizeof buf);

  weft_json_id (out, "{\"traceId\"", rec->trace_id);
  weft_json_id (out, ",\"spanId\"", rec->span_id);
  if (rec->parent_id[0] != '\0')
    weft_json_id (out, ",\"parentSpanId\"", rec->parent_id);
  weft_out_lit (out, ",\"name\":");
  weft_span_name (out, rec);
  if (rec->kind == WEFT_SPAN_KIND_SERVER)
    weft_out_lit (out, ",\"kind\":2");
  else
    weft_out_lit (out, ",\"kind\":3");
  /* microseconds as nanoseconds, in strings as proto3 JSON writes int64 */
  weft_out_lit (out, ",\"startTimeUnixNano\":\"");
  weft_json_append_int (out, rec->start_us);
  weft_out_lit (out, "000\",\"endTimeUnixNano\":\"");
  weft_json_append_int (out, rec->end_us);
  weft_out_lit (out, "000\",\"attributes\":[");
  weft_span_attrs (enc, rec, error);
  weft_out_lit (out, "],\"status\":{");
  if (error != NULL)
    {
      weft_out_lit (out, "\"code\":2,\"message\":");
      weft_json_append_string (out, error, -1);
    }
  weft_out_lit (out, "}}");
}

/* ------------------------------------------------------------------ */
/* Zipkin v2                                                            */
/* ------------------------------------------------------------------ */

static void
weft_zipkin_endpoint (GString *out, const char *address)
{
  gsize host_len;
  guint port;
  const char *host = weft_span_split_host_port (address, &host_len, &port);
  gboolean v6 = memchr (host, ':', host_len) != NULL;

  if (v6)
    weft_out_lit (out, ",\"remoteEndpoint\":{\"ipv6\":");
  else
    weft_out_lit (out, ",\"remoteEndpoint\":{\"ipv4\":");
  weft_json_append_string (out, host, host_len);
  if (port != 0)
    {
      weft_out_lit (out, ",\"port\":");
      weft_json_append_int (out, port);
    }
  g_string_append_c (out, '}');
}

static void
weft_zipkin_span (WeftSpanEncoder *enc, const WeftTraceResource *res, const WeftSpanRecord *rec)
{
  GString *out = enc->out;
  char buf[WEFT_RESPONSE_FLAGS_MAX];
  const char *error = weft_span_error_message (rec, buf, sizeof buf);

  weft_json_id (out, "{\"traceId\"", rec->trace_id);
  weft_json_id (out, ",\"id\"", rec->span_id);
  if (rec->parent_id[0] != '\0')
    weft_json_id (out, ",\"parentId\"", rec->parent_id);
  weft_out_lit (out, ",\"name\":");
  weft_span_name (out, rec);
  if (rec->kind == WEFT_SPAN_KIND_SERVER)
    weft_out_lit (out, ",\"kind\":\"SERVER\"");
  else
    weft_out_lit (out, ",\"kind\":\"CLIENT\"");
  weft_out_lit (out, ",\"timestamp\":");
  weft_json_append_int (out, rec->start_us);
  weft_out_lit (out, ",\"duration\":");
  weft_json_append_int (out, MAX (rec->end_us - rec->start_us, 1));
  weft_out_lit (out, ",\"localEndpoint\":{\"serviceName\":");
  weft_json_append_string (out, res->service_name, -1);
  g_string_append_c (out, '}');
  if (rec->peer[0] != '\0')
    weft_zipkin_endpoint (out, rec->peer);
  if (rec->debug)
    weft_out_lit (out, ",\"debug\":true");
  weft_out_lit (out, ",\"tags\":{");
  weft_span_attrs (enc, rec, error);
  weft_out_lit (out, "}}");
}

/* ------------------------------------------------------------------ */
/* bodies                                                               */
/* ------------------------------------------------------------------ */

void
weft_span_encoder_init (WeftSpanEncoder *enc, WeftTraceFormat format)
{
  enc->format = format;
  enc->out = g_string_sized_new (4096);
  enc->n_spans = 0;
}

void
weft_span_encoder_clear (WeftSpanEncoder *enc)
{
  if (enc->out != NULL)
    g_string_free (enc->out, TRUE);
  enc->out = NULL;
}

void
weft_span_encoder_begin (WeftSpanEncoder *enc, const WeftTraceResource *res)
{
  g_string_truncate (enc->out, 0);
  enc->n_spans = 0;
  if (enc->format == WEFT_TRACE_FORMAT_ZIPKIN)
    {
      g_string_append_c (enc->out, '[');
      return;
    }
  weft_out_lit (enc->out, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
  weft_otlp_resource (enc, res);
  g_string_append (enc->out, "]},\"scopeSpans\":[{\"scope\":{\"name\":\"weft\",\"version\":\""
                   WEFT_TRACING_SCOPE_VERSION "\"},\"spans\":[");
}

void
weft_span_encoder_add (WeftSpanEncoder *enc, const WeftTraceResource *res,
                       const WeftSpanRecord *rec)
{
  if (enc->n_spans++ > 0)
    g_string_append_c (enc->out, ',');
  if (enc->format == WEFT_TRACE_FORMAT_ZIPKIN)
    weft_zipkin_span (enc, res, rec);
  else
    weft_otlp_span (enc, rec);
}

GBytes *
weft_span_encoder_end (WeftSpanEncoder *enc)
{
  GBytes *body;

  g_string_append (enc->out, enc->format == WEFT_TRACE_FORMAT_ZIPKIN ? "]" : "]}]}]}");
  body = g_bytes_new (enc->out->str, enc->out->len);
  g_string_truncate (enc->out, 0);
  enc->n_spans = 0;
  return body;
}
