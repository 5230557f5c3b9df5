/* weft-accesslog-format-private.h: one request as one JSON line
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* the longest value each string field keeps, in escaped output bytes (the
 * quotes not counted); a longer value is cut at a character boundary */
enum {
  WEFT_ACCESSLOG_CAP_METHOD           = 64,
  WEFT_ACCESSLOG_CAP_AUTHORITY        = 256,
  WEFT_ACCESSLOG_CAP_PATH             = 2048,
  WEFT_ACCESSLOG_CAP_PROTOCOL         = 16,
  WEFT_ACCESSLOG_CAP_RESPONSE_FLAGS   = 64,
  WEFT_ACCESSLOG_CAP_ERROR_REASON     = 128,
  WEFT_ACCESSLOG_CAP_UPSTREAM_HOST    = 128,
  WEFT_ACCESSLOG_CAP_UPSTREAM_CLUSTER = 256,
  WEFT_ACCESSLOG_CAP_REQUEST_ID       = 128,
  WEFT_ACCESSLOG_CAP_TRACE_ID         = 32,
  WEFT_ACCESSLOG_CAP_PEER             = 64,
  WEFT_ACCESSLOG_CAP_PRINCIPAL        = 512,
  WEFT_ACCESSLOG_CAP_ROUTE_NAME       = 256,
  WEFT_ACCESSLOG_CAP_LISTENER         = 256,
  WEFT_ACCESSLOG_CAP_USER_AGENT       = 512,
};

/* every string field at its cap, plus keys, quotes and numbers, fits */
#define WEFT_ACCESSLOG_LINE_MAX 8192

/* "2024-05-01T12:34:56.789Z" */
#define WEFT_ACCESSLOG_TIME_LEN 24

/**
 * WeftAccessLogFields:
 *
 * What one line says about one request. Strings may be NULL (printed as
 * null) and may hold any bytes: control characters are escaped and
 * invalid UTF-8 is replaced by U+FFFD, so every line is valid JSON.
 */
typedef struct {
  gint64      start_time_us;      /* wall clock, microseconds since the epoch */
  gint64      duration_us;
  const char *method;
  const char *authority;
  const char *path;
  const char *protocol;
  guint       status;             /* 0 = no response */
  const char *response_flags;     /* Envoy's text; NULL = "-" */
  const char *error_reason;
  guint64     bytes_received;
  guint64     bytes_sent;
  const char *upstream_host;
  const char *upstream_cluster;
  const char *request_id;
  const char *trace_id;
  const char *downstream_peer;
  const char *peer_principal;
  const char *route_name;
  const char *listener;
  const char *direction;          /* "inbound" or "outbound" */
  const char *user_agent;
} WeftAccessLogFields;

/**
 * WeftAccessLogClock:
 *
 * A worker's cache of the date and time part of the last second it
 * printed, so most lines only print the milliseconds.
 */
typedef struct {
  gint64 second;                  /* -1 = nothing cached */
  char   text[20];                /* "2024-05-01T12:34:56" */
} WeftAccessLogClock;

void  weft_accesslog_clock_init     (WeftAccessLogClock *clock);

/* writes @us (wall clock, microseconds since the epoch) as RFC 3339 UTC
 * with milliseconds into @out (WEFT_ACCESSLOG_TIME_LEN + 1 bytes); @clock
 * may be NULL. Returns WEFT_ACCESSLOG_TIME_LEN. */
gsize weft_accesslog_format_time    (WeftAccessLogClock *clock, gint64 us, char *out);

/* appends @value as a quoted JSON string of at most @max escaped bytes, or
 * null when @value is NULL; returns the new length, never past @size - 1 */
gsize weft_accesslog_escape         (char *buf, gsize len, gsize size, const char *value,
                                     gsize max);

/* the whole line, '\n' included, into @buf (WEFT_ACCESSLOG_LINE_MAX
 * bytes); returns its length */
gsize weft_accesslog_format_line    (char *buf, WeftAccessLogClock *clock,
                                     const WeftAccessLogFields *f);

/* the trace id of a valid W3C traceparent header value, into @out (33
 * bytes); FALSE when @value is NULL or not valid */
gboolean weft_accesslog_traceparent_trace_id (const char *value, char *out);

G_END_DECLS
