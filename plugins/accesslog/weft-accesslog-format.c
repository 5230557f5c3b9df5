/* weft-accesslog-format.c: one request as one JSON line
 *
 * Runs on the workers for every request, so it allocates nothing, takes
 * no lock (no gmtime_r, which locks the time zone) and uses no printf.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "weft-accesslog-format-private.h"

#include <string.h>

/* every capped field at its cap, with its key and quotes, plus the
 * numbers, must fit in a line */
G_STATIC_ASSERT (WEFT_ACCESSLOG_CAP_METHOD + WEFT_ACCESSLOG_CAP_AUTHORITY +
                 WEFT_ACCESSLOG_CAP_PATH + WEFT_ACCESSLOG_CAP_PROTOCOL +
                 WEFT_ACCESSLOG_CAP_RESPONSE_FLAGS + WEFT_ACCESSLOG_CAP_ERROR_REASON +
                 WEFT_ACCESSLOG_CAP_UPSTREAM_HOST + WEFT_ACCESSLOG_CAP_UPSTREAM_CLUSTER +
                 WEFT_ACCESSLOG_CAP_REQUEST_ID + WEFT_ACCESSLOG_CAP_TRACE_ID +
                 WEFT_ACCESSLOG_CAP_PEER + WEFT_ACCESSLOG_CAP_PRINCIPAL +
                 WEFT_ACCESSLOG_CAP_ROUTE_NAME + WEFT_ACCESSLOG_CAP_LISTENER +
                 16 + WEFT_ACCESSLOG_CAP_USER_AGENT + 1024 <= WEFT_ACCESSLOG_LINE_MAX);

typedef struct {
  char  *buf;
  gsize  len;
  gsize  size;
} WeftAccessLogOut;

static const char weft_accesslog_hex[] = "0123456789abcdef";

static inline void
weft_accesslog_put (WeftAccessLogOut *o, const char *s, gsize n)
{
  n = MIN (n, o->size - 1 - o->len);
  memcpy (o->buf + o->len, s, n);
  o->len += n;
}

/* a literal: a copy of known size, which compiles to a few moves */
#define WEFT_ACCESSLOG_PUT_LITERAL(o, s) \
  G_STMT_START { \
    if ((o)->len + sizeof (s) - 1 < (o)->size) \
      { \
        memcpy ((o)->buf + (o)->len, (s), sizeof (s) - 1); \
        (o)->len += sizeof (s) - 1; \
      } \
  } G_STMT_END

/* decimal digits of @v into the end of @tmp (24 bytes); returns the first */
static char *
weft_accesslog_digits (guint64 v, char *tmp)
{
  char *p = tmp + 24;

  do
    {
      *--p = (char) ('0' + v % 10);
      v /= 10;
    }
  while (v != 0);
  return p;
}

static void
weft_accesslog_put_uint (WeftAccessLogOut *o, guint64 v)
{
  char tmp[24];
  char *p = weft_accesslog_digits (v, tmp);

  weft_accesslog_put (o, p, (gsize) (tmp + 24 - p));
}

/* microseconds as milliseconds with three decimals: 1234567 -> 1234.567 */
static void
weft_accesslog_put_ms (WeftAccessLogOut *o, gint64 us)
{
  char frac[4];
  guint64 u = us > 0 ? (guint64) us : 0;
  guint rest = (guint) (u % 1000);

  weft_accesslog_put_uint (o, u / 1000);
  frac[0] = '.';
  frac[1] = (char) ('0' + rest / 100);
  frac[2] = (char) ('0' + rest / 10 % 10);
  frac[3] = (char) ('0' + rest % 10);
  weft_accesslog_put (o, frac, sizeof frac);
}

/* ------------------------------------------------------------------ */
/* time                                                                 */
/* ------------------------------------------------------------------ */

void
weft_accesslog_clock_init (WeftAccessLogClock *clock)
{
  clock->second = -1;
  memset (clock->text, 0, sizeof clock->text);
}

static void
weft_accesslog_two (char *p, guint v)
{
  p[0] = (char) ('0' + v / 10 % 10);
  p[1] = (char) ('0' + v % 10);
}

/* "YYYY-MM-DDTHH:MM:SS" of a second since the epoch, by Howard Hinnant's
 * civil_from_days */
static void
weft_accesslog_civil (gint64 second, char *out)
{
  gint64 days = second / 86400;
  guint sod = (guint) (second % 86400);
  gint64 z = days + 719468;
  gint64 era = (z >= 0 ? z : z - 146096) / 146097;
  guint doe = (guint) (z - era * 146097);
  guint yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  guint doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  guint mp = (5 * doy + 2) / 153;
  guint day = doy - (153 * mp + 2) / 5 + 1;
  guint month = mp < 10 ? mp + 3 : mp - 9;
  gint64 year = (gint64) yoe + era * 400 + (month <= 2);
  guint y = (guint) CLAMP (year, 0, 9999);

  weft_accesslog_two (out, y / 100);
  weft_accesslog_two (out + 2, y % 100);
  out[4] = '-';
  weft_accesslog_two (out + 5, month);
  out[7] = '-';
  weft_accesslog_two (out + 8, day);
  out[10] = 'T';
  weft_accesslog_two (out + 11, sod / 3600);
  out[13] = ':';
  weft_accesslog_two (out + 14, sod / 60 % 60);
  out[16] = ':';
  weft_accesslog_two (out + 17, sod % 60);
}

gsize
weft_accesslog_format_time (WeftAccessLogClock *clock, gint64 us, char *out)
{
  gint64 second, ms;

  us = MAX (us, 0);
  second = us / G_USEC_PER_SEC;
  ms = us / 1000 % 1000;
  if (clock == NULL)
    weft_accesslog_civil (second, out);
  else
    {
      if (clock->second != second)
        {
          weft_accesslog_civil (second, clock->text);
          clock->second = second;
        }
      memcpy (out, clock->text, 19);
    }
  out[19] = '.';
  out[20] = (char) ('0' + ms / 100);
  out[21] = (char) ('0' + ms / 10 % 10);
  out[22] = (char) ('0' + ms % 10);
  out[23] = 'Z';
  out[24] = '\0';
  return WEFT_ACCESSLOG_TIME_LEN;
}

/* ------------------------------------------------------------------ */
/* strings                                                              */
/* ------------------------------------------------------------------ */

/* the length of the well-formed UTF-8 sequence at @p (2 to 4), or 0; the
 * checks stop at the first bad byte, so a NUL ends them */
static guint
weft_accesslog_utf8_len (const guchar *p)
{
  guchar c = p[0], lo = 0x80, hi = 0xbf;

  if (c >= 0xc2 && c <= 0xdf)
    return (p[1] & 0xc0) == 0x80 ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef)
    {
      /* no overlong forms, no surrogates */
      lo = c == 0xe0 ? 0xa0 : 0x80;
      hi = c == 0xed ? 0x9f : 0xbf;
      return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 ? 3 : 0;
    }
  if (c >= 0xf0 && c <= 0xf4)
    {
      /* no overlong forms, nothing past U+10FFFF */
      lo = c == 0xf0 ? 0x90 : 0x80;
      hi = c == 0xf4 ? 0x8f : 0xbf;
      return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 &&
             (p[3] & 0xc0) == 0x80 ? 4 : 0;
    }
  return 0;
}

/* bytes printed as they are: printable ASCII but '"' and '\\' */
static const guint8 weft_accesslog_plain[256] = {
  [0x20 ... 0x21] = 1,    /* 0x22 is '"' */
  [0x23 ... 0x5b] = 1,    /* 0x5c is '\\' */
  [0x5d ... 0x7e] = 1,
};

#define WEFT_ACCESSLOG_ONES  G_GUINT64_CONSTANT (0x0101010101010101)
#define WEFT_ACCESSLOG_HIGHS G_GUINT64_CONSTANT (0x8080808080808080)

/* whether one of the eight bytes of @x is not plain: below 0x20, 0x7f and
 * up, '"' or '\\'. Exact as a yes or no (a borrow or carry only ever
 * starts at a byte that is not plain itself). */
static inline gboolean
weft_accesslog_word_special (guint64 x)
{
  guint64 quote = x ^ (WEFT_ACCESSLOG_ONES * '"');
  guint64 slash = x ^ (WEFT_ACCESSLOG_ONES * '\\');
  guint64 control = (x - WEFT_ACCESSLOG_ONES * 0x20) & ~x;
  guint64 is_quote = (quote - WEFT_ACCESSLOG_ONES) & ~quote;
  guint64 is_slash = (slash - WEFT_ACCESSLOG_ONES) & ~slash;
  guint64 high = x | (x + WEFT_ACCESSLOG_ONES);   /* 0x7f and up */

  return ((control | is_quote | is_slash | high) & WEFT_ACCESSLOG_HIGHS) != 0;
}

/* the escaped form of the character at @p, which is not plain, into @esc;
 * returns its length and sets @consumed to the input bytes it stands for */
static gsize
weft_accesslog_escape_one (const guchar *p, char *esc, gsize *consumed)
{
  guint n;

  *consumed = 1;
  if (*p == '"' || *p == '\\')
    {
      esc[0] = '\\';
      esc[1] = (char) *p;
      return 2;
    }
  if (*p < 0x80)
    {
      /* control characters and DEL */
      memcpy (esc, "\\u00", 4);
      esc[4] = weft_accesslog_hex[*p >> 4];
      esc[5] = weft_accesslog_hex[*p & 0xf];
      return 6;
    }
  n = weft_accesslog_utf8_len (p);
  if (n == 0)
    {
      /* one bad byte becomes one U+FFFD, as WHATWG decoders do */
      memcpy (esc, "\\ufffd", 6);
      return 6;
    }
  memcpy (esc, p, n);
  *consumed = n;
  return n;
}

/* copies the plain bytes at the start of @p (of @left bytes) to @out, at
 * most @room of them: eight at a time, then one by one; returns how many */
static gsize
weft_accesslog_plain_run (const guchar *p, gsize left, gsize room, char *out)
{
  gsize limit = MIN (left, room), n = 0;

  for (; limit - n >= 8; n += 8)
    {
      guint64 x;
      memcpy (&x, p + n, 8);
      if (weft_accesslog_word_special (x))
        break;
      memcpy (out + n, &x, 8);
    }
  for (; n < limit && weft_accesslog_plain[p[n]]; n++)
    out[n] = (char) p[n];
  return n;
}

gsize
weft_accesslog_escape (char *buf, gsize len, gsize size, const char *value, gsize max)
{
  WeftAccessLogOut o = { buf, len, size };
  const guchar *p = (const guchar *) value;
  gsize room, used = 0, left;

  if (size < len + 7)
    return len;
  if (value == NULL)
    {
      WEFT_ACCESSLOG_PUT_LITERAL (&o, "null");
      o.buf[o.len] = '\0';
      return o.len;
    }
  /* the closing quote and the NUL always fit */
  room = MIN (max, size - len - 3);
  /* every input byte gives at least one output byte, so no more than
   * @room bytes are ever read */
  left = strnlen (value, room);
  o.buf[o.len++] = '"';
  for (;;)
    {
      gsize run = weft_accesslog_plain_run (p, left, room - used, o.buf + o.len);
      char esc[6];
      gsize n, consumed;

      o.len += run;
      used += run;
      p += run;
      left -= run;
      if (left == 0 || used == room)
        break;
      /* @p is not plain */
      n = weft_accesslog_escape_one (p, esc, &consumed);
      if (used + n > room)
        break;
      for (gsize i = 0; i < n; i++)
        o.buf[o.len++] = esc[i];
      used += n;
      p += consumed;
      left -= consumed;
    }
  o.buf[o.len++] = '"';
  o.buf[o.len] = '\0';
  return o.len;
}

/* ,"key": followed by an escaped string; @key is a literal */
#define WEFT_ACCESSLOG_STRING(o, key, value, max) \
  G_STMT_START { \
    WEFT_ACCESSLOG_PUT_LITERAL ((o), ",\"" key "\":"); \
    (o)->len = weft_accesslog_escape ((o)->buf, (o)->len, (o)->size, (value), (max)); \
  } G_STMT_END

#define WEFT_ACCESSLOG_UINT(o, key, value) \
  G_STMT_START { \
    WEFT_ACCESSLOG_PUT_LITERAL ((o), ",\"" key "\":"); \
    weft_accesslog_put_uint ((o), (value)); \
  } G_STMT_END

/* ------------------------------------------------------------------ */
/* the line                                                             */
/* ------------------------------------------------------------------ */

gsize
weft_accesslog_format_line (char *buf, WeftAccessLogClock *clock, const WeftAccessLogFields *f)
{
  WeftAccessLogOut o = { buf, 0, WEFT_ACCESSLOG_LINE_MAX };

  WEFT_ACCESSLOG_PUT_LITERAL (&o, "{\"start_time\":\"");
  /* the time's 24 bytes and its NUL fit at the start of any line */
  o.len += weft_accesslog_format_time (clock, f->start_time_us, o.buf + o.len);
  WEFT_ACCESSLOG_PUT_LITERAL (&o, "\",\"duration_ms\":");
  weft_accesslog_put_ms (&o, f->duration_us);
  WEFT_ACCESSLOG_STRING (&o, "method", f->method, WEFT_ACCESSLOG_CAP_METHOD);
  WEFT_ACCESSLOG_STRING (&o, "authority", f->authority, WEFT_ACCESSLOG_CAP_AUTHORITY);
  WEFT_ACCESSLOG_STRING (&o, "path", f->path, WEFT_ACCESSLOG_CAP_PATH);
  WEFT_ACCESSLOG_STRING (&o, "protocol", f->protocol, WEFT_ACCESSLOG_CAP_PROTOCOL);
  WEFT_ACCESSLOG_UINT (&o, "status", f->status);
  WEFT_ACCESSLOG_STRING (&o, "response_flags",
                         f->response_flags != NULL ? f->response_flags : "-",
                         WEFT_ACCESSLOG_CAP_RESPONSE_FLAGS);
  WEFT_ACCESSLOG_STRING (&o, "error_reason", f->error_reason, WEFT_ACCESSLOG_CAP_ERROR_REASON);
  WEFT_ACCESSLOG_UINT (&o, "bytes_received", f->bytes_received);
  WEFT_ACCESSLOG_UINT (&o, "bytes_sent", f->bytes_sent);
  WEFT_ACCESSLOG_STRING (&o, "upstream_host", f->upstream_host,
                         WEFT_ACCESSLOG_CAP_UPSTREAM_HOST);
  WEFT_ACCESSLOG_STRING (&o, "upstream_cluster", f->upstream_cluster,
                         WEFT_ACCESSLOG_CAP_UPSTREAM_CLUSTER);
  WEFT_ACCESSLOG_STRING (&o, "request_id", f->request_id, WEFT_ACCESSLOG_CAP_REQUEST_ID);
  WEFT_ACCESSLOG_STRING (&o, "trace_id", f->trace_id, WEFT_ACCESSLOG_CAP_TRACE_ID);
  WEFT_ACCESSLOG_STRING (&o, "downstream_peer", f->downstream_peer, WEFT_ACCESSLOG_CAP_PEER);
  WEFT_ACCESSLOG_STRING (&o, "peer_principal", f->peer_principal, WEFT_ACCESSLOG_CAP_PRINCIPAL);
  WEFT_ACCESSLOG_STRING (&o, "route_name", f->route_name, WEFT_ACCESSLOG_CAP_ROUTE_NAME);
  WEFT_ACCESSLOG_STRING (&o, "listener", f->listener, WEFT_ACCESSLOG_CAP_LISTENER);
  WEFT_ACCESSLOG_STRING (&o, "direction", f->direction, 16);
  WEFT_ACCESSLOG_STRING (&o, "user_agent", f->user_agent, WEFT_ACCESSLOG_CAP_USER_AGENT);
  WEFT_ACCESSLOG_PUT_LITERAL (&o, "}\n");
  o.buf[o.len] = '\0';
  return o.len;
}

/* ------------------------------------------------------------------ */
/* W3C traceparent                                                      */
/* ------------------------------------------------------------------ */

/* @n lowercase hex digits at @p, not all zero when @nonzero */
static gboolean
weft_accesslog_hex_field (const char *p, gsize n, gboolean nonzero)
{
  gboolean any = FALSE;

  for (gsize i = 0; i < n; i++)
    {
      if (!g_ascii_isxdigit (p[i]) || g_ascii_isupper (p[i]))
        return FALSE;
      any |= p[i] != '0';
    }
  return any || !nonzero;
}

gboolean
weft_accesslog_traceparent_trace_id (const char *value, char *out)
{
  gsize len;

  /* version "-" trace-id "-" parent-id "-" flags: 2+1+32+1+16+1+2 */
  if (value == NULL || (len = strlen (value)) < 55)
    return FALSE;
  if (!weft_accesslog_hex_field (value, 2, FALSE) || strncmp (value, "ff", 2) == 0 ||
      value[2] != '-' || value[35] != '-' || value[52] != '-')
    return FALSE;
  /* version 00 is exactly 55 bytes; later versions may append "-..." */
  if ((strncmp (value, "00", 2) == 0 && len != 55) || (len > 55 && value[55] != '-'))
    return FALSE;
  if (!weft_accesslog_hex_field (value + 3, 32, TRUE) ||
      !weft_accesslog_hex_field (value + 36, 16, TRUE) ||
      !weft_accesslog_hex_field (value + 53, 2, FALSE))
    return FALSE;
  memcpy (out, value + 3, 32);
  out[32] = '\0';
  return TRUE;
}
