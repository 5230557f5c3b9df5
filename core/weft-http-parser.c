/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Strict RFC 9112 head parser and chunked body validator.
 *
 * The head parser runs in one pass over the lines of the head: each line end
 * is found with memchr, then the line is validated with a byte class table.
 * It records pointers and lengths while scanning and only writes the NUL
 * terminators once the whole head is known to be valid, so INCOMPLETE and
 * ERROR leave the buffer untouched. It keeps no state between calls: the
 * caller re-parses from the start when more bytes arrive.
 *
 * Choices where RFC 9112 leaves room:
 *  - Content-Length: 0 gives WEFT_HTTP_BODY_NONE (content_length 0), since
 *    there is nothing to read either way.
 *  - Transfer-Encoding on an HTTP/1.0 message (RFC 9112 6.1: framing is
 *    faulty) is WEFT_HTTP_ERR_UNSUPPORTED_TE: we cannot trust its framing.
 *  - A response status line longer than max_request_line, or a response
 *    version other than 1.0/1.1, is WEFT_HTTP_ERR_BAD_STATUS_LINE.
 *  - On a request, reason is NULL and status 0; on a response, method and
 *    target are NULL.
 *  - NULL limits means the defaults.
 */

#include "weft-http-parser-private.h"

#include <string.h>

#include "weft-ascii-private.h"

/* byte classes */
#define WEFT_HTTP_C_TCHAR 0x01  /* token (RFC 9110 5.6.2) */
#define WEFT_HTTP_C_VCHAR 0x02  /* 0x21-0x7e */
#define WEFT_HTTP_C_FIELD 0x04  /* field-value: VCHAR, obs-text, SP, HTAB */
#define WEFT_HTTP_C_TVF   (WEFT_HTTP_C_TCHAR | WEFT_HTTP_C_VCHAR | WEFT_HTTP_C_FIELD)
#define WEFT_HTTP_C_VF    (WEFT_HTTP_C_VCHAR | WEFT_HTTP_C_FIELD)

static const guint8 weft_http_ctype[256] = {
  ['\t'] = WEFT_HTTP_C_FIELD,
  [' '] = WEFT_HTTP_C_FIELD,
  ['!'] = WEFT_HTTP_C_TVF,
  ['"'] = WEFT_HTTP_C_VF,
  ['#' ... '\''] = WEFT_HTTP_C_TVF,
  ['(' ... ')'] = WEFT_HTTP_C_VF,
  ['*' ... '+'] = WEFT_HTTP_C_TVF,
  [','] = WEFT_HTTP_C_VF,
  ['-' ... '.'] = WEFT_HTTP_C_TVF,
  ['/'] = WEFT_HTTP_C_VF,
  ['0' ... '9'] = WEFT_HTTP_C_TVF,
  [':' ... '@'] = WEFT_HTTP_C_VF,
  ['A' ... 'Z'] = WEFT_HTTP_C_TVF,
  ['[' ... ']'] = WEFT_HTTP_C_VF,
  ['^' ... '`'] = WEFT_HTTP_C_TVF,
  ['a' ... 'z'] = WEFT_HTTP_C_TVF,
  ['{'] = WEFT_HTTP_C_VF,
  ['|'] = WEFT_HTTP_C_TVF,
  ['}'] = WEFT_HTTP_C_VF,
  ['~'] = WEFT_HTTP_C_TVF,
  [0x80 ... 0xff] = WEFT_HTTP_C_FIELD,
};

#define WEFT_HTTP_IS(c, cls) ((weft_http_ctype[(guchar) (c)] & (cls)) != 0)
#define WEFT_HTTP_IS_OWS(c)  ((c) == ' ' || (c) == '\t')

/* errors */

static const struct {
  guint       status;
  const char *reason;
} weft_http_errors[WEFT_HTTP_ERR_LAST] = {
  [WEFT_HTTP_ERR_NONE] = { 0, "none" },
  [WEFT_HTTP_ERR_BAD_REQUEST_LINE] = { 400, "bad_request_line" },
  [WEFT_HTTP_ERR_BAD_METHOD] = { 400, "bad_method" },
  [WEFT_HTTP_ERR_BAD_TARGET] = { 400, "bad_target" },
  [WEFT_HTTP_ERR_BAD_VERSION] = { 505, "unsupported_version" },
  [WEFT_HTTP_ERR_BAD_HEADER] = { 400, "bad_header" },
  [WEFT_HTTP_ERR_OBS_FOLD] = { 400, "obs_fold" },
  [WEFT_HTTP_ERR_SPACE_BEFORE_COLON] = { 400, "space_before_colon" },
  [WEFT_HTTP_ERR_BARE_CR] = { 400, "bare_cr" },
  [WEFT_HTTP_ERR_BARE_LF] = { 400, "bare_lf" },
  [WEFT_HTTP_ERR_NUL] = { 400, "nul_in_head" },
  [WEFT_HTTP_ERR_BAD_CONTENT_LENGTH] = { 400, "bad_content_length" },
  [WEFT_HTTP_ERR_CL_AND_TE] = { 400, "content_length_and_transfer_encoding" },
  [WEFT_HTTP_ERR_UNSUPPORTED_TE] = { 501, "unsupported_transfer_encoding" },
  [WEFT_HTTP_ERR_MISSING_HOST] = { 400, "missing_host" },
  [WEFT_HTTP_ERR_DUPLICATE_HOST] = { 400, "duplicate_host" },
  [WEFT_HTTP_ERR_REQUEST_LINE_TOO_LONG] = { 400, "request_line_too_long" },
  [WEFT_HTTP_ERR_HEAD_TOO_LARGE] = { 431, "headers_too_large" },
  [WEFT_HTTP_ERR_TOO_MANY_HEADERS] = { 431, "too_many_headers" },
  [WEFT_HTTP_ERR_BAD_STATUS_LINE] = { 502, "bad_response" },
  [WEFT_HTTP_ERR_BAD_CHUNK] = { 400, "bad_chunk" },
  [WEFT_HTTP_ERR_UNSUPPORTED_METHOD] = { 501, "unsupported_method" },
};

/* 0 for WEFT_HTTP_ERR_NONE; 500 for values outside the enum */
guint
weft_http_error_status (WeftHttpError err)
{
  if ((guint) err >= WEFT_HTTP_ERR_LAST)
    return 500;
  return weft_http_errors[err].status;
}

/* "none" for WEFT_HTTP_ERR_NONE; "internal_error" outside the enum */
const char *
weft_http_error_reason (WeftHttpError err)
{
  if ((guint) err >= WEFT_HTTP_ERR_LAST)
    return "internal_error";
  return weft_http_errors[err].reason;
}

void
weft_http_limits_init_default (WeftHttpLimits *limits)
{
  limits->max_request_line = 8192;
  limits->max_head = 16384;
  limits->max_headers = 100;
}

/* header names the parser acts on */
typedef enum {
  WEFT_HTTP_NAME_OTHER,
  WEFT_HTTP_NAME_HOST,
  WEFT_HTTP_NAME_CONTENT_LENGTH,
  WEFT_HTTP_NAME_TRANSFER_ENCODING,
  WEFT_HTTP_NAME_CONNECTION,
  WEFT_HTTP_NAME_KEEP_ALIVE,
  WEFT_HTTP_NAME_TE,
  WEFT_HTTP_NAME_TRAILER,
  WEFT_HTTP_NAME_UPGRADE,
  WEFT_HTTP_NAME_PROXY_CONNECTION,
  WEFT_HTTP_NAME_EXPECT,
} WeftHttpName;

static gboolean
weft_http_eq (const char *s, gsize len, const char *lit, gsize lit_len)
{
  return len == lit_len && weft_ascii_caseeq (s, lit, len);
}

#define WEFT_HTTP_EQ(s, len, lit) weft_http_eq ((s), (len), lit, sizeof (lit) - 1)

static WeftHttpName
weft_http_name_id (const char *name, gsize len)
{
  /* the length switch keeps the common unknown name to one compare at most */
  switch (len)
    {
    case 2:
      return WEFT_HTTP_EQ (name, len, "te") ? WEFT_HTTP_NAME_TE : WEFT_HTTP_NAME_OTHER;
    case 4:
      return WEFT_HTTP_EQ (name, len, "host") ? WEFT_HTTP_NAME_HOST : WEFT_HTTP_NAME_OTHER;
    case 6:
      return WEFT_HTTP_EQ (name, len, "expect") ? WEFT_HTTP_NAME_EXPECT : WEFT_HTTP_NAME_OTHER;
    case 7:
      if (WEFT_HTTP_EQ (name, len, "upgrade"))
        return WEFT_HTTP_NAME_UPGRADE;
      return WEFT_HTTP_EQ (name, len, "trailer") ? WEFT_HTTP_NAME_TRAILER : WEFT_HTTP_NAME_OTHER;
    case 10:
      if (WEFT_HTTP_EQ (name, len, "connection"))
        return WEFT_HTTP_NAME_CONNECTION;
      return WEFT_HTTP_EQ (name, len, "keep-alive") ? WEFT_HTTP_NAME_KEEP_ALIVE : WEFT_HTTP_NAME_OTHER;
    case 14:
      return WEFT_HTTP_EQ (name, len, "content-length") ? WEFT_HTTP_NAME_CONTENT_LENGTH : WEFT_HTTP_NAME_OTHER;
    case 16:
      return WEFT_HTTP_EQ (name, len, "proxy-connection") ? WEFT_HTTP_NAME_PROXY_CONNECTION : WEFT_HTTP_NAME_OTHER;
    case 17:
      return WEFT_HTTP_EQ (name, len, "transfer-encoding") ? WEFT_HTTP_NAME_TRANSFER_ENCODING : WEFT_HTTP_NAME_OTHER;
    default:
      return WEFT_HTTP_NAME_OTHER;
    }
}

/* scanning state for one parse call */
typedef struct {
  const char           *buf;
  gsize                 end;        /* scan window: MIN (len, max_head) */
  guint                 max_request_line;
  gsize                 max_head;
  guint                 max_headers;
  gboolean              is_request;
  gboolean              request_method_head;
  WeftHttpHead         *head;
  gsize                 reason_len;
  guint                 n_cl;
  guint                 n_te;
  guint                 n_host;
  gboolean              has_connection;
  gboolean              has_upgrade;
} WeftHttpScan;

/* a syntax error in a line: NUL or a stray CR in it take precedence */
static WeftHttpError
weft_http_line_error (const char *buf, gsize start, gsize eol, WeftHttpError err)
{
  if (memchr (buf + start, '\0', eol - start) != NULL)
    return WEFT_HTTP_ERR_NUL;
  if (memchr (buf + start, '\r', eol - start) != NULL)
    return WEFT_HTTP_ERR_BARE_CR;
  return err;
}

/* early errors in a line whose LF has not arrived yet */
static WeftHttpError
weft_http_check_partial (const char *buf, gsize start, gsize end, gboolean header_line)
{
  const char *cr;

  if (start >= end)
    return WEFT_HTTP_ERR_NONE;
  if (memchr (buf + start, '\0', end - start) != NULL)
    return WEFT_HTTP_ERR_NUL;
  /* no LF in range, so a CR before the last byte is not followed by LF */
  cr = memchr (buf + start, '\r', end - start);
  if (cr != NULL && cr < buf + end - 1)
    return WEFT_HTTP_ERR_BARE_CR;
  if (header_line && WEFT_HTTP_IS_OWS (buf[start]))
    return WEFT_HTTP_ERR_OBS_FOLD;
  return WEFT_HTTP_ERR_NONE;
}

/* finds the CRLF ending the line at @start before @end; *eol is the index of
 * its CR, or G_MAXSIZE when the line is not complete yet */
static WeftHttpError
weft_http_find_eol (const char *buf, gsize start, gsize end, gsize *eol)
{
  const char *lf;
  gsize i;

  *eol = G_MAXSIZE;
  if (start >= end)
    return WEFT_HTTP_ERR_NONE;
  lf = memchr (buf + start, '\n', end - start);
  if (lf == NULL)
    return WEFT_HTTP_ERR_NONE;
  i = (gsize) (lf - buf);
  if (i == start || buf[i - 1] != '\r')
    return WEFT_HTTP_ERR_BARE_LF;
  *eol = i - 1;
  return WEFT_HTTP_ERR_NONE;
}

/* "HTTP/1.0" or "HTTP/1.1"; @garbage when not even HTTP/DIGIT.DIGIT */
static WeftHttpError
weft_http_parse_version (const char *p, gsize n, guint8 *minor,
                         WeftHttpError bad_version, WeftHttpError garbage)
{
  if (n != 8 || memcmp (p, "HTTP/", 5) != 0 || !g_ascii_isdigit (p[5]) ||
      p[6] != '.' || !g_ascii_isdigit (p[7]))
    return garbage;
  if (p[5] != '1' || (p[7] != '0' && p[7] != '1'))
    return bad_version;
  *minor = (guint8) (p[7] - '0');
  return WEFT_HTTP_ERR_NONE;
}

/* "http://" or "https://" in any case: the length of the prefix, else 0 */
static gsize
weft_http_scheme_len (const char *p, gsize n)
{
  if (n >= 7 && weft_ascii_caseeq (p, "http://", 7))
    return 7;
  if (n >= 8 && weft_ascii_caseeq (p, "https://", 8))
    return 8;
  return 0;
}

/* absolute-form: a non-empty authority without userinfo (RFC 9110 4.2.4),
 * then an optional path-abempty and query */
static WeftHttpError
weft_http_check_absolute_form (WeftHttpHead *head, gsize scheme)
{
  const char *auth = head->target + scheme;
  const char *end = head->target + head->target_len;
  const char *p = auth;

  while (p < end && *p != '/' && *p != '?')
    p++;
  if (p == auth || memchr (auth, '@', (gsize) (p - auth)) != NULL)
    return WEFT_HTTP_ERR_BAD_TARGET;
  head->abs_authority = auth;
  head->abs_authority_len = (guint32) (p - auth);
  head->abs_path = p;
  return WEFT_HTTP_ERR_NONE;
}

/* the forms of RFC 9112 3.2 weft serves; a fragment is never sent (RFC
 * 9110 4.2.5) and CONNECT's authority-form is for forward proxies */
static WeftHttpError
weft_http_check_target (WeftHttpHead *head)
{
  const char *t = head->target;
  gsize n = head->target_len;
  gsize scheme;

  if (WEFT_HTTP_EQ (head->method, head->method_len, "CONNECT"))
    return WEFT_HTTP_ERR_UNSUPPORTED_METHOD;
  if (memchr (t, '#', n) != NULL)
    return WEFT_HTTP_ERR_BAD_TARGET;
  if (t[0] == '/')
    return WEFT_HTTP_ERR_NONE;
  if (n == 1 && t[0] == '*')
    return WEFT_HTTP_EQ (head->method, head->method_len, "OPTIONS") ? WEFT_HTTP_ERR_NONE
                                                                     : WEFT_HTTP_ERR_BAD_TARGET;
  scheme = weft_http_scheme_len (t, n);
  if (scheme == 0)
    return WEFT_HTTP_ERR_BAD_TARGET;
  return weft_http_check_absolute_form (head, scheme);
}

/* method SP request-target SP HTTP-version */
static WeftHttpError
weft_http_parse_request_line (WeftHttpScan *s, gsize eol)
{
  const char *buf = s->buf;
  WeftHttpHead *head = s->head;
  WeftHttpError err;
  gsize i = 0;
  gsize t;

  while (i < eol && WEFT_HTTP_IS (buf[i], WEFT_HTTP_C_TCHAR))
    i++;
  if (i == 0 || i == eol)
    return WEFT_HTTP_ERR_BAD_REQUEST_LINE;
  if (buf[i] != ' ' || i > G_MAXUINT16)
    return WEFT_HTTP_ERR_BAD_METHOD;
  head->method = buf;
  head->method_len = (guint16) i;

  t = ++i;
  while (i < eol && WEFT_HTTP_IS (buf[i], WEFT_HTTP_C_VCHAR))
    i++;
  /* empty target (double SP) or no version at all */
  if (i == t || i == eol)
    return WEFT_HTTP_ERR_BAD_REQUEST_LINE;
  if (buf[i] != ' ')
    return WEFT_HTTP_ERR_BAD_TARGET;
  head->target = buf + t;
  head->target_len = (guint32) (i - t);

  i++;
  err = weft_http_parse_version (buf + i, eol - i, &head->version_minor,
                                 WEFT_HTTP_ERR_BAD_VERSION, WEFT_HTTP_ERR_BAD_REQUEST_LINE);
  if (err != WEFT_HTTP_ERR_NONE)
    return err;
  return weft_http_check_target (head);
}

/* HTTP-version SP 3DIGIT [ SP reason-phrase ]; the SP may be missing too */
static WeftHttpError
weft_http_parse_status_line (WeftHttpScan *s, gsize eol)
{
  const char *buf = s->buf;
  WeftHttpHead *head = s->head;
  gsize i;

  if (eol < 12 || buf[8] != ' ')
    return WEFT_HTTP_ERR_BAD_STATUS_LINE;
  if (weft_http_parse_version (buf, 8, &head->version_minor,
                               WEFT_HTTP_ERR_BAD_STATUS_LINE,
                               WEFT_HTTP_ERR_BAD_STATUS_LINE) != WEFT_HTTP_ERR_NONE)
    return WEFT_HTTP_ERR_BAD_STATUS_LINE;
  if (buf[9] < '1' || buf[9] > '5' ||
      !g_ascii_isdigit (buf[10]) || !g_ascii_isdigit (buf[11]))
    return WEFT_HTTP_ERR_BAD_STATUS_LINE;
  head->status = (guint) ((buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0'));

  i = 12;
  if (i < eol && buf[i++] != ' ')
    return WEFT_HTTP_ERR_BAD_STATUS_LINE;
  head->reason = buf + i;
  s->reason_len = eol - i;
  for (; i < eol; i++)
    if (!WEFT_HTTP_IS (buf[i], WEFT_HTTP_C_FIELD))
      return WEFT_HTTP_ERR_BAD_STATUS_LINE;
  return WEFT_HTTP_ERR_NONE;
}

/* reads and limits the start line; *next is where the headers begin */
static WeftHttpError
weft_http_scan_start_line (WeftHttpScan *s, gsize *next)
{
  WeftHttpError too_long = s->is_request ? WEFT_HTTP_ERR_REQUEST_LINE_TOO_LONG
                                         : WEFT_HTTP_ERR_BAD_STATUS_LINE;
  gsize bound = MIN (s->end, (gsize) s->max_request_line + 2);
  WeftHttpError err;
  gsize eol;

  *next = 0;
  err = weft_http_find_eol (s->buf, 0, bound, &eol);
  if (err != WEFT_HTTP_ERR_NONE)
    return err;
  if (eol == G_MAXSIZE)
    {
      /* a trailing CR may still be the start of the CRLF */
      gsize seen = bound - (bound > 0 && s->buf[bound - 1] == '\r');

      if (seen > s->max_request_line)
        return too_long;
      return weft_http_check_partial (s->buf, 0, bound, FALSE);
    }
  if (s->is_request)
    err = weft_http_parse_request_line (s, eol);
  else
    err = weft_http_parse_status_line (s, eol);
  if (err != WEFT_HTTP_ERR_NONE)
    return weft_http_line_error (s->buf, 0, eol, err);
  *next = eol + 2;
  return WEFT_HTTP_ERR_NONE;
}

/* field-name ":" OWS field-value OWS */
static WeftHttpError
weft_http_parse_header_line (const char *buf, gsize start, gsize eol, WeftHttpHeader *h)
{
  gsize i = start;
  gsize v;

  if (WEFT_HTTP_IS_OWS (buf[i]))
    return WEFT_HTTP_ERR_OBS_FOLD;
  while (i < eol && WEFT_HTTP_IS (buf[i], WEFT_HTTP_C_TCHAR))
    i++;
  if (i < eol && i > start && WEFT_HTTP_IS_OWS (buf[i]))
    {
      while (i < eol && WEFT_HTTP_IS_OWS (buf[i]))
        i++;
      return i < eol && buf[i] == ':' ? WEFT_HTTP_ERR_SPACE_BEFORE_COLON
                                      : WEFT_HTTP_ERR_BAD_HEADER;
    }
  if (i == start || i == eol || buf[i] != ':' || i - start > G_MAXUINT16)
    return WEFT_HTTP_ERR_BAD_HEADER;
  h->name = buf + start;
  h->name_len = (guint16) (i - start);
  h->flags = 0;

  i++;
  while (i < eol && WEFT_HTTP_IS_OWS (buf[i]))
    i++;
  v = i;
  for (; i < eol; i++)
    if (!WEFT_HTTP_IS (buf[i], WEFT_HTTP_C_FIELD))
      return WEFT_HTTP_ERR_BAD_HEADER;
  while (i > v && WEFT_HTTP_IS_OWS (buf[i - 1]))
    i--;
  if (i - v > G_MAXUINT32)
    return WEFT_HTTP_ERR_BAD_HEADER;
  h->value = buf + v;
  h->value_len = (guint32) (i - v);
  return WEFT_HTTP_ERR_NONE;
}

/* 1*DIGIT, at most 19 digits and at most G_MAXINT64 */
static gboolean
weft_http_parse_content_length (const char *p, gsize n, guint64 *out)
{
  guint64 v = 0;
  gsize i;

  if (n == 0 || n > 19)
    return FALSE;
  for (i = 0; i < n; i++)
    {
      if (!g_ascii_isdigit (p[i]))
        return FALSE;
      v = v * 10 + (guint64) (p[i] - '0');
    }
  if (v > (guint64) G_MAXINT64)
    return FALSE;
  *out = v;
  return TRUE;
}

static WeftHttpError
weft_http_check_content_length (WeftHttpScan *s, const WeftHttpHeader *h)
{
  if (s->n_cl++ > 0)
    return WEFT_HTTP_ERR_BAD_CONTENT_LENGTH;
  if (!weft_http_parse_content_length (h->value, h->value_len, &s->head->content_length))
    return WEFT_HTTP_ERR_BAD_CONTENT_LENGTH;
  if (s->n_te > 0)
    return WEFT_HTTP_ERR_CL_AND_TE;
  return WEFT_HTTP_ERR_NONE;
}

static WeftHttpError
weft_http_check_transfer_encoding (WeftHttpScan *s, const WeftHttpHeader *h)
{
  /* HTTP/1.0 has no chunked framing: its TE cannot be trusted (RFC 9112 6.1) */
  if (s->head->version_minor == 0)
    return WEFT_HTTP_ERR_UNSUPPORTED_TE;
  if (s->n_te++ > 0)
    return WEFT_HTTP_ERR_UNSUPPORTED_TE;
  if (!WEFT_HTTP_EQ (h->value, h->value_len, "chunked"))
    return WEFT_HTTP_ERR_UNSUPPORTED_TE;
  if (s->n_cl > 0)
    return WEFT_HTTP_ERR_CL_AND_TE;
  return WEFT_HTTP_ERR_NONE;
}

/* does @name read as @lit once each '_' is taken for '-'? A backend that
 * maps one to the other (CGI, several frameworks) would frame the body by a
 * header weft never looked at */
static gboolean
weft_http_underscore_eq (const char *name, gsize len, const char *lit, gsize lit_len)
{
  if (len != lit_len || memchr (name, '_', len) == NULL)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (g_ascii_tolower (name[i] == '_' ? '-' : name[i]) != lit[i])
      return FALSE;
  return TRUE;
}

static gboolean
weft_http_framing_lookalike (const WeftHttpHeader *h)
{
  return weft_http_underscore_eq (h->name, h->name_len, "content-length", 14) ||
         weft_http_underscore_eq (h->name, h->name_len, "transfer-encoding", 17);
}

/* per-header semantics that can be checked as soon as the line is read */
static WeftHttpError
weft_http_check_header (WeftHttpScan *s, WeftHttpHeader *h, guint idx)
{
  if (s->is_request && weft_http_framing_lookalike (h))
    return WEFT_HTTP_ERR_BAD_HEADER;
  switch (weft_http_name_id (h->name, h->name_len))
    {
    case WEFT_HTTP_NAME_HOST:
      if (s->n_host++ > 0 && s->is_request)
        return WEFT_HTTP_ERR_DUPLICATE_HOST;
      if (s->head->host_idx < 0)
        s->head->host_idx = (gint) idx;
      return WEFT_HTTP_ERR_NONE;
    case WEFT_HTTP_NAME_CONTENT_LENGTH:
      return weft_http_check_content_length (s, h);
    case WEFT_HTTP_NAME_TRANSFER_ENCODING:
      h->flags |= WEFT_HTTP_HEADER_HOP;
      return weft_http_check_transfer_encoding (s, h);
    case WEFT_HTTP_NAME_CONNECTION:
      s->has_connection = TRUE;
      h->flags |= WEFT_HTTP_HEADER_HOP;
      return WEFT_HTTP_ERR_NONE;
    case WEFT_HTTP_NAME_UPGRADE:
      s->has_upgrade = TRUE;
      h->flags |= WEFT_HTTP_HEADER_HOP;
      return WEFT_HTTP_ERR_NONE;
    case WEFT_HTTP_NAME_KEEP_ALIVE:
    case WEFT_HTTP_NAME_TE:
    case WEFT_HTTP_NAME_TRAILER:
    case WEFT_HTTP_NAME_PROXY_CONNECTION:
      h->flags |= WEFT_HTTP_HEADER_HOP;
      return WEFT_HTTP_ERR_NONE;
    case WEFT_HTTP_NAME_EXPECT:
      if (WEFT_HTTP_EQ (h->value, h->value_len, "100-continue"))
        s->head->expect_continue = TRUE;
      return WEFT_HTTP_ERR_NONE;
    case WEFT_HTTP_NAME_OTHER:
    default:
      return WEFT_HTTP_ERR_NONE;
    }
}

/* reads header lines up to the empty line; sets head_len */
static WeftHttpError
weft_http_scan_headers (WeftHttpScan *s, gsize pos)
{
  WeftHttpHead *head = s->head;

  for (;;)
    {
      WeftHttpError err;
      gsize eol;

      err = weft_http_find_eol (s->buf, pos, s->end, &eol);
      if (err != WEFT_HTTP_ERR_NONE)
        return err;
      if (eol == G_MAXSIZE)
        return weft_http_check_partial (s->buf, pos, s->end, TRUE);
      if (eol == pos)
        {
          head->head_len = eol + 2;
          return WEFT_HTTP_ERR_NONE;
        }
      if (head->n_headers >= s->max_headers)
        return WEFT_HTTP_ERR_TOO_MANY_HEADERS;

      err = weft_http_parse_header_line (s->buf, pos, eol, &head->headers[head->n_headers]);
      if (err != WEFT_HTTP_ERR_NONE)
        return weft_http_line_error (s->buf, pos, eol, err);
      err = weft_http_check_header (s, &head->headers[head->n_headers], head->n_headers);
      if (err != WEFT_HTTP_ERR_NONE)
        return err;
      head->n_headers++;
      pos = eol + 2;
    }
}

/* marks every header called @name (not NUL-terminated) hop-by-hop */
static void
weft_http_mark_hop (WeftHttpHead *head, const char *name, gsize len)
{
  guint i;

  for (i = 0; i < head->n_headers; i++)
    if (weft_http_eq (head->headers[i].name, head->headers[i].name_len, name, len))
      head->headers[i].flags |= WEFT_HTTP_HEADER_HOP;
}

/* one connection-option of a Connection header */
static void
weft_http_apply_connection_option (WeftHttpHead *head, const char *tok, gsize len)
{
  if (WEFT_HTTP_EQ (tok, len, "close"))
    head->conn_flags |= WEFT_HTTP_CONN_CLOSE;
  else if (WEFT_HTTP_EQ (tok, len, "keep-alive"))
    head->conn_flags |= WEFT_HTTP_CONN_KEEP_ALIVE;
  else if (WEFT_HTTP_EQ (tok, len, "upgrade"))
    head->conn_flags |= WEFT_HTTP_CONN_UPGRADE;
  weft_http_mark_hop (head, tok, len);
}

/* splits one Connection value on commas, OWS trimmed, empty elements skipped */
static void
weft_http_apply_connection_value (WeftHttpHead *head, const WeftHttpHeader *h)
{
  const char *p = h->value;
  const char *end = h->value + h->value_len;

  while (p < end)
    {
      const char *comma = memchr (p, ',', (gsize) (end - p));
      const char *tok_end = comma != NULL ? comma : end;
      const char *q = tok_end;

      while (p < q && WEFT_HTTP_IS_OWS (*p))
        p++;
      while (q > p && WEFT_HTTP_IS_OWS (q[-1]))
        q--;
      if (q > p)
        weft_http_apply_connection_option (head, p, (gsize) (q - p));
      p = tok_end + 1;
    }
}

/* Connection may come before or after the headers it names: do it last */
static void
weft_http_apply_connection (WeftHttpScan *s)
{
  WeftHttpHead *head = s->head;
  guint i;

  if (!s->has_connection)
    return;
  for (i = 0; i < head->n_headers; i++)
    if (WEFT_HTTP_EQ (head->headers[i].name, head->headers[i].name_len, "connection"))
      weft_http_apply_connection_value (head, &head->headers[i]);
}

static WeftHttpBodyKind
weft_http_response_body (WeftHttpScan *s)
{
  guint status = s->head->status;

  if (s->request_method_head || status < 200 || status == 204 || status == 304)
    return WEFT_HTTP_BODY_NONE;
  if (s->n_te > 0)
    return WEFT_HTTP_BODY_CHUNKED;
  if (s->n_cl > 0)
    return s->head->content_length > 0 ? WEFT_HTTP_BODY_LENGTH : WEFT_HTTP_BODY_NONE;
  return WEFT_HTTP_BODY_CLOSE;
}

static WeftHttpBodyKind
weft_http_request_body (WeftHttpScan *s)
{
  if (s->n_te > 0)
    return WEFT_HTTP_BODY_CHUNKED;
  if (s->n_cl > 0 && s->head->content_length > 0)
    return WEFT_HTTP_BODY_LENGTH;
  return WEFT_HTTP_BODY_NONE;
}

/* whole-head semantics, once the head is complete */
static WeftHttpError
weft_http_finish (WeftHttpScan *s)
{
  WeftHttpHead *head = s->head;
  guint conn;

  if (s->is_request && head->version_minor == 1 && s->n_host == 0)
    return WEFT_HTTP_ERR_MISSING_HOST;

  weft_http_apply_connection (s);
  conn = head->conn_flags;
  head->body_kind = s->is_request ? weft_http_request_body (s) : weft_http_response_body (s);
  if (conn & WEFT_HTTP_CONN_CLOSE)
    head->keep_alive = FALSE;
  else if (head->version_minor == 1)
    head->keep_alive = TRUE;
  else
    head->keep_alive = (conn & WEFT_HTTP_CONN_KEEP_ALIVE) != 0;
  if (head->body_kind == WEFT_HTTP_BODY_CLOSE)
    head->keep_alive = FALSE;
  head->upgrade = (conn & WEFT_HTTP_CONN_UPGRADE) && s->has_upgrade;
  return WEFT_HTTP_ERR_NONE;
}

/* the head is valid: turn its pieces into C strings in place */
static void
weft_http_terminate (char *buf, const WeftHttpScan *s)
{
  const WeftHttpHead *head = s->head;
  guint i;

  if (s->is_request)
    {
      buf[head->method_len] = '\0';
      buf[(head->target - buf) + head->target_len] = '\0';
    }
  else
    buf[(head->reason - buf) + s->reason_len] = '\0';
  for (i = 0; i < head->n_headers; i++)
    {
      const WeftHttpHeader *h = &head->headers[i];

      buf[(h->name - buf) + h->name_len] = '\0';
      buf[(h->value - buf) + h->value_len] = '\0';
    }
}

static void
weft_http_head_reset (WeftHttpHead *head)
{
  head->method = NULL;
  head->target = NULL;
  head->method_len = 0;
  head->target_len = 0;
  head->abs_authority = NULL;
  head->abs_authority_len = 0;
  head->abs_path = NULL;
  head->status = 0;
  head->reason = NULL;
  head->version_minor = 0;
  head->n_headers = 0;
  head->host_idx = -1;
  head->head_len = 0;
  head->body_kind = WEFT_HTTP_BODY_NONE;
  head->content_length = 0;
  head->conn_flags = 0;
  head->keep_alive = FALSE;
  head->upgrade = FALSE;
  head->expect_continue = FALSE;
}

static WeftHttpParseStatus
weft_http_parse_head (char *buf, gsize len, const WeftHttpLimits *limits,
                      WeftHttpScan *s, WeftHttpError *err_out)
{
  WeftHttpLimits defaults;
  WeftHttpError err;
  gsize pos;

  if (limits == NULL)
    {
      weft_http_limits_init_default (&defaults);
      limits = &defaults;
    }
  s->buf = buf;
  s->max_request_line = limits->max_request_line;
  s->max_head = limits->max_head;
  s->max_headers = MIN (limits->max_headers, WEFT_HTTP_MAX_HEADERS);
  s->end = MIN (len, s->max_head);
  weft_http_head_reset (s->head);

  err = weft_http_scan_start_line (s, &pos);
  if (err == WEFT_HTTP_ERR_NONE && pos > 0)
    err = weft_http_scan_headers (s, pos);
  if (err == WEFT_HTTP_ERR_NONE && s->head->head_len == 0 && len < s->max_head)
    {
      *err_out = WEFT_HTTP_ERR_NONE;
      return WEFT_HTTP_PARSE_INCOMPLETE;
    }
  /* max_head bytes arrived without the end of the head */
  if (err == WEFT_HTTP_ERR_NONE && s->head->head_len == 0)
    err = WEFT_HTTP_ERR_HEAD_TOO_LARGE;
  if (err == WEFT_HTTP_ERR_NONE)
    err = weft_http_finish (s);
  *err_out = err;
  if (err != WEFT_HTTP_ERR_NONE)
    return WEFT_HTTP_PARSE_ERROR;
  weft_http_terminate (buf, s);
  return WEFT_HTTP_PARSE_OK;
}

WeftHttpParseStatus
weft_http_parse_request (char *buf, gsize len, const WeftHttpLimits *limits,
                         WeftHttpHead *head, WeftHttpError *err)
{
  WeftHttpScan s = { 0 };
  WeftHttpError dummy;

  g_return_val_if_fail (buf != NULL || len == 0, WEFT_HTTP_PARSE_ERROR);
  g_return_val_if_fail (head != NULL, WEFT_HTTP_PARSE_ERROR);

  s.is_request = TRUE;
  s.head = head;
  return weft_http_parse_head (buf, len, limits, &s, err != NULL ? err : &dummy);
}

WeftHttpParseStatus
weft_http_parse_response (char *buf, gsize len, const WeftHttpLimits *limits,
                          gboolean request_method_head,
                          WeftHttpHead *head, WeftHttpError *err)
{
  WeftHttpScan s = { 0 };
  WeftHttpError dummy;

  g_return_val_if_fail (buf != NULL || len == 0, WEFT_HTTP_PARSE_ERROR);
  g_return_val_if_fail (head != NULL, WEFT_HTTP_PARSE_ERROR);

  s.is_request = FALSE;
  s.request_method_head = request_method_head;
  s.head = head;
  return weft_http_parse_head (buf, len, limits, &s, err != NULL ? err : &dummy);
}

gint
weft_http_head_find (const WeftHttpHead *head, const char *name)
{
  gsize len;
  guint i;

  g_return_val_if_fail (head != NULL && name != NULL, -1);

  len = strlen (name);
  for (i = 0; i < head->n_headers; i++)
    if (weft_http_eq (head->headers[i].name, head->headers[i].name_len, name, len))
      return (gint) i;
  return -1;
}

/* chunked decoder */

#define WEFT_CHUNK_MAX_DIGITS   15
#define WEFT_CHUNK_MAX_LINE     4096
#define WEFT_CHUNK_MAX_TRAILERS 16384
/* over a whole body, as Node.js bounds them (CVE-2024-22019): extensions
 * are forwarded as they are, and each one costs every hop a parse */
#define WEFT_CHUNK_MAX_EXTENSIONS 16384

enum {
  WEFT_CHUNK_SIZE_START,     /* first hex digit of a chunk-size */
  WEFT_CHUNK_SIZE,           /* more digits, ';', BWS or CR */
  WEFT_CHUNK_SIZE_BWS,       /* whitespace after the size: ';' must follow */
  WEFT_CHUNK_EXT,            /* chunk extensions, up to CR */
  WEFT_CHUNK_SIZE_LF,
  WEFT_CHUNK_DATA,
  WEFT_CHUNK_DATA_CR,
  WEFT_CHUNK_DATA_LF,
  WEFT_CHUNK_TRAILER_START,  /* start of a trailer line, or the final CRLF */
  WEFT_CHUNK_TRAILER_NAME,
  WEFT_CHUNK_TRAILER_VALUE,
  WEFT_CHUNK_TRAILER_LF,
  WEFT_CHUNK_FINAL_LF,
  WEFT_CHUNK_DONE,
  WEFT_CHUNK_ERROR,
};

void
weft_chunked_decoder_init (WeftChunkedDecoder *dec)
{
  g_return_if_fail (dec != NULL);

  dec->state = WEFT_CHUNK_SIZE_START;
  dec->remaining = 0;
  dec->line_len = 0;
  dec->digits = 0;
  dec->trailer_bytes = 0;
  dec->ext_bytes = 0;
  dec->done = FALSE;
}

static gint
weft_chunk_hex (guchar c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* one more byte of chunk extensions in the body */
static guint
weft_chunk_ext_byte (WeftChunkedDecoder *dec)
{
  return ++dec->ext_bytes > WEFT_CHUNK_MAX_EXTENSIONS ? WEFT_CHUNK_ERROR : WEFT_CHUNK_EXT;
}

/* chunk-size line: 1*HEXDIG [ BWS ";" ext ] CRLF */
static guint
weft_chunk_size_byte (WeftChunkedDecoder *dec, guchar c)
{
  gint hex = weft_chunk_hex (c);

  /* the CR ending the line does not count */
  if (c != '\r' && ++dec->line_len > WEFT_CHUNK_MAX_LINE)
    return WEFT_CHUNK_ERROR;
  switch (dec->state)
    {
    case WEFT_CHUNK_SIZE_START:
    case WEFT_CHUNK_SIZE:
      if (hex >= 0)
        {
          if (++dec->digits > WEFT_CHUNK_MAX_DIGITS)
            return WEFT_CHUNK_ERROR;
          dec->remaining = (dec->remaining << 4) | (guint) hex;
          return WEFT_CHUNK_SIZE;
        }
      if (dec->state == WEFT_CHUNK_SIZE_START)
        return WEFT_CHUNK_ERROR;
      if (c == '\r')
        return WEFT_CHUNK_SIZE_LF;
      if (c == ';')
        return weft_chunk_ext_byte (dec);
      return WEFT_HTTP_IS_OWS (c) ? WEFT_CHUNK_SIZE_BWS : WEFT_CHUNK_ERROR;
    case WEFT_CHUNK_SIZE_BWS:
      if (c == ';')
        return weft_chunk_ext_byte (dec);
      return WEFT_HTTP_IS_OWS (c) ? WEFT_CHUNK_SIZE_BWS : WEFT_CHUNK_ERROR;
    case WEFT_CHUNK_EXT:
    default:
      /* extensions are tolerated, not interpreted: field bytes up to CR */
      if (c == '\r')
        return WEFT_CHUNK_SIZE_LF;
      return WEFT_HTTP_IS (c, WEFT_HTTP_C_FIELD) ? weft_chunk_ext_byte (dec) : WEFT_CHUNK_ERROR;
    }
}

/* trailer-section: *( field-line CRLF ) CRLF */
static guint
weft_chunk_trailer_byte (WeftChunkedDecoder *dec, guchar c)
{
  if (++dec->trailer_bytes > WEFT_CHUNK_MAX_TRAILERS)
    return WEFT_CHUNK_ERROR;
  switch (dec->state)
    {
    case WEFT_CHUNK_TRAILER_START:
      if (c == '\r')
        return WEFT_CHUNK_FINAL_LF;
      return WEFT_HTTP_IS (c, WEFT_HTTP_C_TCHAR) ? WEFT_CHUNK_TRAILER_NAME : WEFT_CHUNK_ERROR;
    case WEFT_CHUNK_TRAILER_NAME:
      if (c == ':')
        return WEFT_CHUNK_TRAILER_VALUE;
      return WEFT_HTTP_IS (c, WEFT_HTTP_C_TCHAR) ? WEFT_CHUNK_TRAILER_NAME : WEFT_CHUNK_ERROR;
    case WEFT_CHUNK_TRAILER_VALUE:
      if (c == '\r')
        return WEFT_CHUNK_TRAILER_LF;
      return WEFT_HTTP_IS (c, WEFT_HTTP_C_FIELD) ? WEFT_CHUNK_TRAILER_VALUE : WEFT_CHUNK_ERROR;
    case WEFT_CHUNK_TRAILER_LF:
      return c == '\n' ? WEFT_CHUNK_TRAILER_START : WEFT_CHUNK_ERROR;
    case WEFT_CHUNK_FINAL_LF:
    default:
      return c == '\n' ? WEFT_CHUNK_DONE : WEFT_CHUNK_ERROR;
    }
}

/* the LF ending a chunk-size line */
static guint
weft_chunk_size_lf (WeftChunkedDecoder *dec, guchar c)
{
  if (c != '\n')
    return WEFT_CHUNK_ERROR;
  dec->line_len = 0;
  dec->digits = 0;
  return dec->remaining > 0 ? WEFT_CHUNK_DATA : WEFT_CHUNK_TRAILER_START;
}

/* feeds @buf; with @dst, data bytes are copied to *@dst_len on in it */
static gssize
weft_chunked_decoder_run (WeftChunkedDecoder *dec, const char *buf, gsize len, char *dst,
                          gsize *dst_len)
{
  const guchar *p = (const guchar *) buf;
  gsize i = 0;

  while (i < len && dec->state != WEFT_CHUNK_DONE && dec->state != WEFT_CHUNK_ERROR)
    {
      guint state = dec->state;

      if (state == WEFT_CHUNK_DATA)
        {
          /* data is not looked at: skip it in one step */
          gsize n = (gsize) MIN (dec->remaining, (guint64) (len - i));

          if (dst != NULL)
            {
              memmove (dst + *dst_len, buf + i, n);
              *dst_len += n;
            }
          i += n;
          dec->remaining -= n;
          if (dec->remaining == 0)
            dec->state = WEFT_CHUNK_DATA_CR;
          continue;
        }

      if (state <= WEFT_CHUNK_EXT)
        state = weft_chunk_size_byte (dec, p[i]);
      else if (state == WEFT_CHUNK_SIZE_LF)
        state = weft_chunk_size_lf (dec, p[i]);
      else if (state == WEFT_CHUNK_DATA_CR)
        state = p[i] == '\r' ? WEFT_CHUNK_DATA_LF : WEFT_CHUNK_ERROR;
      else if (state == WEFT_CHUNK_DATA_LF)
        state = p[i] == '\n' ? WEFT_CHUNK_SIZE_START : WEFT_CHUNK_ERROR;
      else
        state = weft_chunk_trailer_byte (dec, p[i]);
      dec->state = state;
      i++;
    }

  if (dec->state == WEFT_CHUNK_ERROR)
    return -1;
  if (dec->state == WEFT_CHUNK_DONE)
    dec->done = TRUE;
  return (gssize) i;
}

gssize
weft_chunked_decoder_feed (WeftChunkedDecoder *dec, const char *buf, gsize len)
{
  g_return_val_if_fail (dec != NULL, -1);
  g_return_val_if_fail (buf != NULL || len == 0, -1);

  return weft_chunked_decoder_run (dec, buf, len, NULL, NULL);
}

gssize
weft_chunked_decoder_strip (WeftChunkedDecoder *dec, char *buf, gsize len, gsize *data_len)
{
  g_return_val_if_fail (dec != NULL && data_len != NULL, -1);
  g_return_val_if_fail (buf != NULL || len == 0, -1);

  *data_len = 0;
  /* data only moves towards the front: in place is safe */
  return weft_chunked_decoder_run (dec, buf, len, buf, data_len);
}
