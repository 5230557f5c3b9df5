/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests for the strict HTTP/1.1 head parser and chunked decoder. */

#include "weft-http-parser-private.h"

#include <string.h>

/* the copy parsed last, kept so the head's strings stay valid until the
 * next parse */
static char *weft_test_last_buf;

/* parses @text from an exact-size heap copy, so ASan sees any over-read */
static WeftHttpParseStatus
weft_test_parse (const char *text, gsize len, gboolean response, gboolean head_req,
                 const WeftHttpLimits *limits, WeftHttpHead *head,
                 WeftHttpError *err, char **out_buf)
{
  char *buf = g_malloc (MAX (len, 1));
  WeftHttpParseStatus st;

  memcpy (buf, text, len);
  if (response)
    st = weft_http_parse_response (buf, len, limits, head_req, head, err);
  else
    st = weft_http_parse_request (buf, len, limits, head, err);
  if (out_buf != NULL)
    {
      *out_buf = buf;
      return st;
    }
  g_free (weft_test_last_buf);
  weft_test_last_buf = buf;
  return st;
}

static WeftHttpParseStatus
weft_test_req (const char *text, WeftHttpHead *head, WeftHttpError *err, char **out_buf)
{
  return weft_test_parse (text, strlen (text), FALSE, FALSE, NULL, head, err, out_buf);
}

static WeftHttpParseStatus
weft_test_resp (const char *text, gboolean head_req, WeftHttpHead *head,
                WeftHttpError *err, char **out_buf)
{
  return weft_test_parse (text, strlen (text), TRUE, head_req, NULL, head, err, out_buf);
}

static void
weft_test_expect_resp_error (const char *text, WeftHttpError expected)
{
  WeftHttpHead head;
  WeftHttpError err = WEFT_HTTP_ERR_NONE;
  WeftHttpParseStatus st;

  st = weft_test_resp (text, FALSE, &head, &err, NULL);
  if (st != WEFT_HTTP_PARSE_ERROR || err != expected)
    g_test_message ("input: %s", g_strescape (text, NULL));
  g_assert_cmpint (st, ==, WEFT_HTTP_PARSE_ERROR);
  g_assert_cmpstr (weft_http_error_reason (err), ==, weft_http_error_reason (expected));
}

static void
test_limits_default (void)
{
  WeftHttpLimits l;

  weft_http_limits_init_default (&l);
  g_assert_cmpuint (l.max_request_line, ==, 8192);
  g_assert_cmpuint (l.max_head, ==, 16384);
  g_assert_cmpuint (l.max_headers, ==, 100);
}

static void
test_error_mapping (void)
{
  static const struct {
    WeftHttpError err;
    guint status;
    const char *reason;
  } map[] = {
    { WEFT_HTTP_ERR_BAD_REQUEST_LINE, 400, "bad_request_line" },
    { WEFT_HTTP_ERR_BAD_METHOD, 400, "bad_method" },
    { WEFT_HTTP_ERR_BAD_TARGET, 400, "bad_target" },
    { WEFT_HTTP_ERR_BAD_VERSION, 505, "unsupported_version" },
    { WEFT_HTTP_ERR_BAD_HEADER, 400, "bad_header" },
    { WEFT_HTTP_ERR_OBS_FOLD, 400, "obs_fold" },
    { WEFT_HTTP_ERR_SPACE_BEFORE_COLON, 400, "space_before_colon" },
    { WEFT_HTTP_ERR_BARE_CR, 400, "bare_cr" },
    { WEFT_HTTP_ERR_BARE_LF, 400, "bare_lf" },
    { WEFT_HTTP_ERR_NUL, 400, "nul_in_head" },
    { WEFT_HTTP_ERR_BAD_CONTENT_LENGTH, 400, "bad_content_length" },
    { WEFT_HTTP_ERR_CL_AND_TE, 400, "content_length_and_transfer_encoding" },
    { WEFT_HTTP_ERR_UNSUPPORTED_TE, 501, "unsupported_transfer_encoding" },
    { WEFT_HTTP_ERR_MISSING_HOST, 400, "missing_host" },
    { WEFT_HTTP_ERR_DUPLICATE_HOST, 400, "duplicate_host" },
    { WEFT_HTTP_ERR_REQUEST_LINE_TOO_LONG, 400, "request_line_too_long" },
    { WEFT_HTTP_ERR_HEAD_TOO_LARGE, 431, "headers_too_large" },
    { WEFT_HTTP_ERR_TOO_MANY_HEADERS, 431, "too_many_headers" },
    { WEFT_HTTP_ERR_BAD_STATUS_LINE, 502, "bad_response" },
    { WEFT_HTTP_ERR_BAD_CHUNK, 400, "bad_chunk" },
    { WEFT_HTTP_ERR_UNSUPPORTED_METHOD, 501, "unsupported_method" },
  };
  gsize i;

  g_assert_cmpuint (G_N_ELEMENTS (map), ==, WEFT_HTTP_ERR_LAST - 1);
  for (i = 0; i < G_N_ELEMENTS (map); i++)
    {
      g_assert_cmpuint (weft_http_error_status (map[i].err), ==, map[i].status);
      g_assert_cmpstr (weft_http_error_reason (map[i].err), ==, map[i].reason);
    }
  g_assert_nonnull (weft_http_error_reason (WEFT_HTTP_ERR_NONE));
  g_assert_nonnull (weft_http_error_reason (WEFT_HTTP_ERR_LAST));
  g_assert_cmpuint (weft_http_error_status (WEFT_HTTP_ERR_LAST), ==, 500);
}

static void
test_get_simple (void)
{
  const char *req = "GET /a/b?c=d HTTP/1.1\r\n"
                    "Host: example.com\r\n"
                    "User-Agent:   curl/8.0  \t\r\n"
                    "X-Empty:\r\n"
                    "X-Obs-Text: caf\xc3\xa9\r\n"
                    "\r\n"
                    "NEXT";
  WeftHttpHead head;
  WeftHttpError err;
  char *buf;

  g_assert_cmpint (weft_test_req (req, &head, &err, &buf), ==, WEFT_HTTP_PARSE_OK);
  g_assert_cmpint (err, ==, WEFT_HTTP_ERR_NONE);
  g_assert_cmpstr (head.method, ==, "GET");
  g_assert_cmpuint (head.method_len, ==, 3);
  g_assert_cmpstr (head.target, ==, "/a/b?c=d");
  g_assert_cmpuint (head.target_len, ==, 8);
  g_assert_cmpuint (head.version_minor, ==, 1);
  g_assert_cmpuint (head.n_headers, ==, 4);
  g_assert_cmpstr (head.headers[0].name, ==, "Host");
  g_assert_cmpstr (head.headers[0].value, ==, "example.com");
  g_assert_cmpstr (head.headers[1].name, ==, "User-Agent");
  g_assert_cmpstr (head.headers[1].value, ==, "curl/8.0");
  g_assert_cmpuint (head.headers[1].value_len, ==, 8);
  g_assert_cmpstr (head.headers[2].value, ==, "");
  g_assert_cmpuint (head.headers[2].value_len, ==, 0);
  g_assert_cmpstr (head.headers[3].value, ==, "caf\xc3\xa9");
  g_assert_cmpint (head.host_idx, ==, 0);
  g_assert_cmpuint (head.head_len, ==, strlen (req) - 4);
  g_assert_cmpint (head.body_kind, ==, WEFT_HTTP_BODY_NONE);
  g_assert_cmpuint (head.content_length, ==, 0);
  g_assert_true (head.keep_alive);
  g_assert_false (head.upgrade);
  g_assert_false (head.expect_continue);
  g_assert_cmpuint (head.headers[0].flags, ==, 0);
  /* the rest of the buffer is not touched */
  g_assert_cmpmem (buf + head.head_len, 4, "NEXT", 4);
  g_free (buf);
}

static void
test_head_find (void)
{
  WeftHttpHead head;
  WeftHttpError err;

  g_assert_cmpint (weft_test_req ("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-b: 2\r\n\r\n",
                                  &head, &err, NULL), ==, WEFT_HTTP_PARSE_OK);
  g_assert_cmpint (weft_http_head_find (&head, "host"), ==, 0);
  g_assert_cmpint (weft_http_head_find (&head, "X-B"), ==, 2);
  g_assert_cmpint (weft_http_head_find (&head, "x-a"), ==, 1);
  g_assert_cmpint (weft_http_head_find (&head, "x-"), ==, -1);
  g_assert_cmpint (weft_http_head_find (&head, "x-a-longer"), ==, -1);
}

static void
test_post_content_length (void)
{
  WeftHttpHead head;
  WeftHttpError err;

  g_assert_cmpint (weft_test_req ("POST /submit HTTP/1.1\r\nHost: h\r\n"
                                  "Content-Length: 5\r\n\r\nhello",
                                  &head, &err, NULL), ==, WEFT_HTTP_PARSE_OK);
  g_assert_cmpint (head.body_kind, ==, WEFT_HTTP_BODY_LENGTH);
  g_assert_cmpuint (head.content_length, ==, 5);
  g_assert_cmpuint (head.head_len, ==, 53);
  g_assert_cmpuint (head.headers[1].flags & WEFT_HTTP_HEADER_HOP, ==, 0);

  /* CL 0 is no body */
  g_assert_cmpint (weft_test_req ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
                                  &head, &err, NULL), ==, WEFT_HTTP_PARSE_OK);
  g_assert_cmpint (head.body_kind, ==, WEFT_HTTP_BODY_NONE);
  g_assert_cmpuint (head.content_length, ==, 0);

  /* leading zeros are still 1*DIGIT; the largest value fits */
  g_assert_cmpint (weft_test_req ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 007\r\n\r\n",
                                  &head, &err, NULL), ==, WEFT_HTTP_PARSE_OK);
  g_assert_cmpuint (head.content_length, ==, 7);
  g_assert_cmpint (weft_test_req ("POST / HTTP/1.1\r\nHost: h\r\n"
                                  "Content-Length: 9223372036854775807\r\n\r\n",
                                  &head, &err, NULL), ==, WEFT_HTTP_PARSE_OK);
  g_assert_cmpuint (head.content_length, ==, G_MAXINT64);
}

static void
test_chunked_request (void)
{
  static const char *const ok[] = {
    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: h\r\ntransfer-encoding:chunked \t\r\n\r\n",
  };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (ok); i++)
    {
      WeftHttpHead head;
      WeftHttpError err;

      g_assert_cmpint (weft_test_req (ok[i], &head, &err, NULL), ==, WEFT_HTTP_PARSE_OK);
      g_assert_cmpint (head.body_kind, ==, WEFT_HTTP_BODY_CHUNKED);
      g_assert_cmpuint (head.headers[1].flags & WEFT_HTTP_HEADER_HOP, !=, 0);
      g_assert_true (head.keep_alive);
    }
}

static void
test_keep_alive (void)
{
  static const struct {
    const char *req;
    gboolean keep_alive;
    guint conn_flags;
  } cases[] = {
    { "GET / HTTP/1.1\r\nHost: h\r\n\r\n", TRUE, 0 },
    { "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", FALSE, WEFT_HTTP_CONN_CLOSE },
    { "GET / HTTP/1.1\r\nHost: h\r\nConnection: CLOSE\r\n\r\n", FALSE, WEFT_HTTP_CONN_CLOSE },
    { "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n", TRUE, WEFT_HTTP_CONN_KEEP_ALIVE },
    { "GET / HTTP/1.0\r\n\r\n", FALSE, 0 },
    { "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", TRUE, WEFT_HTTP_CONN_KEEP_ALIVE },
    { "GET / HTTP/1.0\r\nConnection: foo ,, keep-alive\r\n\r\n", TRUE, WEFT_HTTP_CONN_KEEP_ALIVE },
    /* close wins, across several Connection headers */
    { "GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: x, close\r\n\r\n", FALSE,
      WEFT_HTTP_CONN_KEEP_ALIVE | WEFT_HTTP_CONN_CLOSE },
    { "GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n", TRUE, 0 },
  };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      WeftHttpHead head;
      WeftHttpError err;

      g_test_message ("case %" G_GSIZE_FORMAT, i);
      g_assert_cmpint (weft_test_req (cases[i].req, &head, &err, NULL), ==, WEFT_HTTP_PARSE_OK);
      g_assert_cmpint (head.keep_alive, ==, cases[i].keep_alive);
      g_assert_cmpuint (head.conn_flags, ==, cases[i].conn_flags);
    }
}

static void
test_hop_by_hop (void)
{
  const char *req = "GET / HTTP/1.1\r\n"
                    "X-Before: 1\r\n"
                    "Host: h\r\n"
                    "Connection: x-before, X-AFTER\r\n"
                    "Keep-Alive: timeout=5\r\n"
                    "TE: trailers\r\n"
                    "Trailer: X-T\r\n"
                    "Proxy-Connection: keep-alive\r\n"
                    "Upgrade: h2c\r\n"
                    "X-After: 2\r\n"
                    "X-Other: 3\r\n"
                    "\r\n";
  WeftHttpHead head;
  WeftHttpError err;
  guint i;

  g_assert_cmpint (weft_test_req (req, &head, &err, NULL), ==, WEFT_HTTP_PARSE_OK);
  g_assert_cmpuint (head.n_headers, ==, 10);
  for (i = 0; i < head.n_headers; i++)
    {
      gboolean end_to_end = g_str_equal (head.headers[i].name, "Host") ||
                            g_str_equal (head.headers[i].name, "X-Other");

      g_test_message ("%s", head.headers[i].name);
      g_assert_cmpint ((head.headers[i].flags & WEFT_HTTP_HEADER_HOP) != 0, ==, !end_to_end);
    }
  /* Upgrade header but no upgrade token */
  g_assert_false (head.upgrade);
}

static void
test_upgrade (void)
{
  WeftHttpHead head;
  WeftHttpError err;

  g_assert_cmpint (weft_test_req ("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\n"
                                  "Upgrade: websocket\r\n\r\n", &head, &err, NULL), ==, WEFT_HTTP_PARSE_OK);
  g_assert_true (head.upgrade);
  g_assert_cmpuint (head.conn_flags & WEFT_HTTP_CONN_UPGRADE, !=, 0);

  g_assert_cmpint (weft_test_req ("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\r\n",
                                  &head, &err, NULL), ==, WEFT_HTTP_PARSE_OK);
  g_assert_false (head.upgrade);

  g_assert_cmpint (weft_test_req ("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n",
                                  &head, &err, NULL), ==, WEFT_HTTP_PARSE_OK);
  g_assert_false (head.upgrade);
}

static void
test_expect_continue (void)
{
  WeftHttpHead head;
  WeftHttpError err;

  g_assert_cmpint (weft_test_req ("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
                                  "Expect: 100-Continue\r\n\r\n", &head, &err, NULL), ==, WEFT_HTTP_PARSE_OK);
  g_assert_true (head.expect_continue);
  g_assert_cmpint (weft_test_req ("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n",
                                  &head, &err, NULL), ==, WEFT_HTTP_PARSE_OK);
  g_assert_false (head.expect_continue);
}

static void
test_http10_no_host (void)
{
  WeftHttpHead head;
  WeftHttpError err;

  g_assert_cmpint (weft_test_req ("GET / HTTP/1.0\r\n\r\n", &head, &err, NULL), ==, WEFT_HTTP_PARSE_OK);
  g_assert_cmpuint (head.version_minor, ==, 0);
  g_assert_cmpint (head.host_idx, ==, -1);
  g_assert_cmpuint (head.n_headers, ==, 0);
}

static void
test_request_errors (void)
{
  static const struct {
    const char *req;
    WeftHttpError err;
  } cases[] = {
    /* framing */
    { "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", WEFT_HTTP_ERR_CL_AND_TE },
    { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", WEFT_HTTP_ERR_CL_AND_TE },
    { "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n", WEFT_HTTP_ERR_BAD_CONTENT_LENGTH },
    { "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", WEFT_HTTP_ERR_BAD_CONTENT_LENGTH },
    { "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\ncontent-length: 6\r\n\r\n", WEFT_HTTP_ERR_BAD_CONTENT_LENGTH },
    { "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -5\r\n\r\n", WEFT_HTTP_ERR_BAD_CONTENT_LENGTH },
    { "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", WEFT_HTTP_ERR_BAD_CONTENT_LENGTH },
    { "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x5\r\n\r\n", WEFT_HTTP_ERR_BAD_CONTENT_LENGTH },
    { "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5 5\r\n\r\n", WEFT_HTTP_ERR_BAD_CONTENT_LENGTH },
    { "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", WEFT_HTTP_ERR_BAD_CONTENT_LENGTH },
    { "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775808\r\n\r\n", WEFT_HTTP_ERR_BAD_CONTENT_LENGTH },
    { "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551616\r\n\r\n", WEFT_HTTP_ERR_BAD_CONTENT_LENGTH },
    { "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 00000000000000000001\r\n\r\n", WEFT_HTTP_ERR_BAD_CONTENT_LENGTH },
    { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n", WEFT_HTTP_ERR_UNSUPPORTED_TE },
    { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunkedx\r\n\r\n", WEFT_HTTP_ERR_UNSUPPORTED_TE },
    { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n", WEFT_HTTP_ERR_UNSUPPORTED_TE },
    { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", WEFT_HTTP_ERR_UNSUPPORTED_TE },
    { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", WEFT_HTTP_ERR_UNSUPPORTED_TE },
    { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n", WEFT_HTTP_ERR_UNSUPPORTED_TE },
    { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", WEFT_HTTP_ERR_UNSUPPORTED_TE },
    /* TE on HTTP/1.0: framing cannot be trusted (RFC 9112 6.1) */
    { "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", WEFT_HTTP_ERR_UNSUPPORTED_TE },
    /* Host */
    { "GET / HTTP/1.1\r\n\r\n", WEFT_HTTP_ERR_MISSING_HOST },
    { "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", WEFT_HTTP_ERR_DUPLICATE_HOST },
    { "GET / HTTP/1.1\r\nHost: a\r\nhOST: b\r\n\r\n", WEFT_HTTP_ERR_DUPLICATE_HOST },
    /* line structure */
    { "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", WEFT_HTTP_ERR_OBS_FOLD },
    { "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n", WEFT_HTTP_ERR_OBS_FOLD },
    { "GET / HTTP/1.1\r\n Host: h\r\n\r\n", WEFT_HTTP_ERR_OBS_FOLD },
    { "GET / HTTP/1.1\r\nHost : h\r\n\r\n", WEFT_HTTP_ERR_SPACE_BEFORE_COLON },
    { "GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", WEFT_HTTP_ERR_SPACE_BEFORE_COLON },
    { "GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", WEFT_HTTP_ERR_BARE_CR },
    { "GET / HTTP/1.1\rHost: h\r\n\r\n", WEFT_HTTP_ERR_BARE_CR },
    { "GET / HTTP/1.1\r\nHost: h\r\r\n\r\n", WEFT_HTTP_ERR_BARE_CR },
    { "GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n", WEFT_HTTP_ERR_NUL },
    { "GET / HTTP/1.1\r\nHost: h\r\nX\0: ab\r\n\r\n", WEFT_HTTP_ERR_NUL },
    { "GET /\0 HTTP/1.1\r\nHost: h\r\n\r\n", WEFT_HTTP_ERR_NUL },
    { "GET / HTTP/1.1\nHost: h\r\n\r\n", WEFT_HTTP_ERR_BARE_LF },
    { "GET / HTTP/1.1\r\nHost: h\n\r\n", WEFT_HTTP_ERR_BARE_LF },
    { "GET / HTTP/1.1\r\nHost: h\r\n\n", WEFT_HTTP_ERR_BARE_LF },
    { "GET / HTTP/1.1\r\nHost: h\r\nX: a\nb\r\n\r\n", WEFT_HTTP_ERR_BARE_LF },
    /* header syntax */
    { "GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", WEFT_HTTP_ERR_BAD_HEADER },
    { "GET / HTTP/1.1\r\nHost: h\r\n: empty\r\n\r\n", WEFT_HTTP_ERR_BAD_HEADER },
    { "GET / HTTP/1.1\r\nHost: h\r\nX(y): z\r\n\r\n", WEFT_HTTP_ERR_BAD_HEADER },
    { "GET / HTTP/1.1\r\nHost: h\r\nX y: z\r\n\r\n", WEFT_HTTP_ERR_BAD_HEADER },
    { "GET / HTTP/1.1\r\nHost: h\r\nX: a\x01" "b\r\n\r\n", WEFT_HTTP_ERR_BAD_HEADER },
    { "GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f" "b\r\n\r\n", WEFT_HTTP_ERR_BAD_HEADER },
    /* request line */
    { "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", WEFT_HTTP_ERR_BAD_REQUEST_LINE },
    { "GET /  HTTP/1.1\r\nHost: h\r\n\r\n", WEFT_HTTP_ERR_BAD_REQUEST_LINE },
    { "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", WEFT_HTTP_ERR_BAD_REQUEST_LINE },
    { " GET / HTTP/1.1\r\nHost: h\r\n\r\n", WEFT_HTTP_ERR_BAD_REQUEST_LINE },
    { "GET /\r\n\r\n", WEFT_HTTP_ERR_BAD_REQUEST_LINE },
    { "GET\r\n\r\n", WEFT_HTTP_ERR_BAD_REQUEST_LINE },
    { "\r\n", WEFT_HTTP_ERR_BAD_REQUEST_LINE },
    { "GET / http/1.1\r\nHost: h\r\n\r\n", WEFT_HTTP_ERR_BAD_REQUEST_LINE },
    { "GET / HTTP/1.10\r\nHost: h\r\n\r\n", WEFT_HTTP_ERR_BAD_REQUEST_LINE },
    { "GET / HTTP/2.0\r\nHost: h\r\n\r\n", WEFT_HTTP_ERR_BAD_VERSION },
    { "GET / HTTP/1.2\r\nHost: h\r\n\r\n", WEFT_HTTP_ERR_BAD_VERSION },
    { "GET / HTTP/0.9\r\nHost: h\r\n\r\n", WEFT_HTTP_ERR_BAD_VERSION },
    { "G@T / HTTP/1.1\r\nHost: h\r\n\r\n", WEFT_HTTP_ERR_BAD_METHOD },
    { "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", WEFT_HTTP_ERR_BAD_METHOD },
    { "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", WEFT_HTTP_ERR_BAD_TARGET },
    { "GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n", WEFT_HTTP_ERR_BAD_TARGET },
    /* request-target forms (RFC 9112 3.2) */
    { "GET a/b HTTP/1.1\r\nHost: h\r\n\r\n", WEFT_HTTP_ERR_BAD_TARGET },
    { "GET * HTTP/1.1\r\nHost: h\r\n\r\n", WEFT_HTTP_ERR_BAD_TARGET },
    { "GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n", WEFT_HTTP_ERR_BAD_TARGET },
    { "GET ftp://h/a HTTP/1.1\r\nHost: h\r\n\r\n", WEFT_HTTP_ERR_BAD_TARGET },
    { "GET http:///a HTTP/1.1\r\nHost: h\r\n\r\n", WEFT_HTTP_ERR_BAD_TARGET },
    { "GET http://u:p@h/a HTTP/1.1\r\nHost: h\r\n\r\n", WEFT_HTTP_ERR_BAD_TARGET },
    { "GET http:/h/a HTTP/1.1\r\nHost: h\r\n\r\n", WEFT_HTTP_ERR_BAD_TARGET },
    { "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", WEFT_HTTP_ERR_UNSUPPORTED_METHOD },
    /* framing headers spelt with '_' */
    { "POST / HTTP/1.1\r\nHost: h\r\nTransfer_Encoding: chunked\r\n\r\n", WEFT_HTTP_ERR_BAD_HEADER },
    { "POST / HTTP/1.1\r\nHost: h\r\ncontent_LENGTH: 5\r\n\r\n", WEFT_HTTP_ERR_BAD_HEADER },
  };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      WeftHttpHead head;
      WeftHttpError err = WEFT_HTTP_ERR_NONE;
      /* the NUL cases need an explicit length */
      gsize len = strlen (cases[i].req);
      char *buf;

      if (cases[i].err == WEFT_HTTP_ERR_NUL)
        len += strlen (cases[i].req + len + 1) + 1;
      g_test_message ("case %" G_GSIZE_FORMAT, i);
      g_assert_cmpint (weft_test_parse (cases[i].req, len, FALSE, FALSE, NULL, &head, &err, &buf),
                       ==, WEFT_HTTP_PARSE_ERROR);
      g_assert_cmpstr (weft_http_error_reason (err), ==, weft_http_error_reason (cases[i].err));
      /* an error leaves the buffer alone too */
      g_assert_cmpmem (buf, len, cases[i].req, len);
      g_free (buf);
    }
}

static void
test_target_forms (void)
{
  WeftHttpHead head;
  WeftHttpError err;

  g_assert_cmpint (weft_test_req ("GET /a?b HTTP/1.1\r\nHost: h\r\n\r\n", &head, &err, NULL),
                   ==, WEFT_HTTP_PARSE_OK);
  g_assert_null (head.abs_authority);
  g_assert_null (head.abs_path);

  g_assert_cmpint (weft_test_req ("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", &head, &err, NULL),
                   ==, WEFT_HTTP_PARSE_OK);
  g_assert_cmpstr (head.target, ==, "*");
  g_assert_null (head.abs_authority);

  g_assert_cmpint (weft_test_req ("GET HTTP://Ex.com:81/p/q?x=1 HTTP/1.1\r\nHost: other\r\n\r\n",
                                  &head, &err, NULL), ==, WEFT_HTTP_PARSE_OK);
  g_assert_cmpmem (head.abs_authority, head.abs_authority_len, "Ex.com:81", 9);
  g_assert_cmpstr (head.abs_path, ==, "/p/q?x=1");
  g_assert_cmpstr (head.target, ==, "HTTP://Ex.com:81/p/q?x=1");

  g_assert_cmpint (weft_test_req ("GET https://[::1]?x HTTP/1.1\r\nHost: h\r\n\r\n",
                                  &head, &err, NULL), ==, WEFT_HTTP_PARSE_OK);
  g_assert_cmpmem (head.abs_authority, head.abs_authority_len, "[::1]", 5);
  g_assert_cmpstr (head.abs_path, ==, "?x");

  g_assert_cmpint (weft_test_req ("GET http://h HTTP/1.1\r\nHost: h\r\n\r\n", &head, &err, NULL),
                   ==, WEFT_HTTP_PARSE_OK);
  g_assert_cmpstr (head.abs_path, ==, "");

  /* an underscore elsewhere is only a name */
  g_assert_cmpint (weft_test_req ("GET / HTTP/1.1\r\nHost: h\r\nX_Content_Length: 5\r\n\r\n",
                                  &head, &err, NULL), ==, WEFT_HTTP_PARSE_OK);
  /* a response is not framed by those names, and is not refused for them */
  g_assert_cmpint (weft_test_resp ("HTTP/1.1 200 OK\r\nContent_Length: 5\r\n\r\n", FALSE, &head,
                                   &err, NULL), ==, WEFT_HTTP_PARSE_OK);
}

static void
test_request_line_too_long (void)
{
  WeftHttpLimits limits;
  WeftHttpHead head;
  WeftHttpError err;
  GString *s = g_string_new ("GET /");

  weft_http_limits_init_default (&limits);
  limits.max_request_line = 64;

  /* 64 bytes of line, no CRLF yet: still fine */
  while (s->len < 64)
    g_string_append_c (s, 'a');
  g_assert_cmpint (weft_test_parse (s->str, s->len, FALSE, FALSE, &limits, &head, &err, NULL),
                   ==, WEFT_HTTP_PARSE_INCOMPLETE);
  g_string_append_c (s, '\r');
  g_assert_cmpint (weft_test_parse (s->str, s->len, FALSE, FALSE, &limits, &head, &err, NULL),
                   ==, WEFT_HTTP_PARSE_INCOMPLETE);

  /* one more byte of line while incomplete: too long */
  g_string_truncate (s, 64);
  g_string_append_c (s, 'a');
  g_assert_cmpint (weft_test_parse (s->str, s->len, FALSE, FALSE, &limits, &head, &err, NULL),
                   ==, WEFT_HTTP_PARSE_ERROR);
  g_assert_cmpint (err, ==, WEFT_HTTP_ERR_REQUEST_LINE_TOO_LONG);

  /* exactly at the limit with a full head is fine */
  g_string_truncate (s, 64 - 9);
  g_string_append (s, " HTTP/1.1\r\nHost: h\r\n\r\n");
  g_assert_cmpint (weft_test_parse (s->str, s->len, FALSE, FALSE, &limits, &head, &err, NULL),
                   ==, WEFT_HTTP_PARSE_OK);
  g_assert_cmpuint (head.target_len, ==, 64 - 4 - 9);

  /* one byte over with a full head */
  g_string_assign (s, "GET /");
  while (s->len < 65 - 9)
    g_string_append_c (s, 'a');
  g_string_append (s, " HTTP/1.1\r\nHost: h\r\n\r\n");
  g_assert_cmpint (weft_test_parse (s->str, s->len, FALSE, FALSE, &limits, &head, &err, NULL),
                   ==, WEFT_HTTP_PARSE_ERROR);
  g_assert_cmpint (err, ==, WEFT_HTTP_ERR_REQUEST_LINE_TOO_LONG);

  /* default limit, a large incomplete line */
  g_string_assign (s, "GET /");
  while (s->len < 9000)
    g_string_append_c (s, 'a');
  g_assert_cmpint (weft_test_parse (s->str, s->len, FALSE, FALSE, NULL, &head, &err, NULL),
                   ==, WEFT_HTTP_PARSE_ERROR);
  g_assert_cmpint (err, ==, WEFT_HTTP_ERR_REQUEST_LINE_TOO_LONG);
  g_string_free (s, TRUE);
}

static void
test_head_too_large (void)
{
  WeftHttpLimits limits;
  WeftHttpHead head;
  WeftHttpError err;
  GString *s = g_string_new ("GET / HTTP/1.1\r\nHost: h\r\n");
  gsize base;

  weft_http_limits_init_default (&limits);
  limits.max_head = 128;

  /* incomplete and under the limit */
  g_string_append (s, "X-Pad: ");
  base = s->len;
  while (s->len < 127)
    g_string_append_c (s, 'p');
  g_assert_cmpint (weft_test_parse (s->str, s->len, FALSE, FALSE, &limits, &head, &err, NULL),
                   ==, WEFT_HTTP_PARSE_INCOMPLETE);
  /* reaching the limit without the end of head */
  g_string_append_c (s, 'p');
  g_assert_cmpint (weft_test_parse (s->str, s->len, FALSE, FALSE, &limits, &head, &err, NULL),
                   ==, WEFT_HTTP_PARSE_ERROR);
  g_assert_cmpint (err, ==, WEFT_HTTP_ERR_HEAD_TOO_LARGE);

  /* a head of exactly max_head bytes is fine, one more is not */
  g_string_truncate (s, base);
  while (s->len < 128 - 4)
    g_string_append_c (s, 'p');
  g_string_append (s, "\r\n\r\nBODY");
  g_assert_cmpint (weft_test_parse (s->str, s->len, FALSE, FALSE, &limits, &head, &err, NULL),
                   ==, WEFT_HTTP_PARSE_OK);
  g_assert_cmpuint (head.head_len, ==, 128);
  g_string_insert_c (s, base, 'p');
  g_assert_cmpint (weft_test_parse (s->str, s->len, FALSE, FALSE, &limits, &head, &err, NULL),
                   ==, WEFT_HTTP_PARSE_ERROR);
  g_assert_cmpint (err, ==, WEFT_HTTP_ERR_HEAD_TOO_LARGE);

  /* default limit while incomplete, complete lines of 1 KiB each */
  g_string_assign (s, "GET / HTTP/1.1\r\n");
  while (s->len < 17000)
    {
      g_string_append (s, "X-Long: ");
      for (base = 0; base < 1000; base++)
        g_string_append_c (s, 'v');
      g_string_append (s, "\r\n");
    }
  g_assert_cmpint (weft_test_parse (s->str, s->len, FALSE, FALSE, NULL, &head, &err, NULL),
                   ==, WEFT_HTTP_PARSE_ERROR);
  g_assert_cmpint (err, ==, WEFT_HTTP_ERR_HEAD_TOO_LARGE);
  g_string_free (s, TRUE);
}

static void
test_too_many_headers (void)
{
  WeftHttpLimits limits;
  WeftHttpHead head;
  WeftHttpError err;
  GString *s = g_string_new ("GET / HTTP/1.1\r\nHost: h\r\n");
  guint i;

  weft_http_limits_init_default (&limits);
  limits.max_headers = 10;
  for (i = 1; i < 10; i++)
    g_string_append_printf (s, "X-%u: v\r\n", i);
  g_string_append (s, "\r\n");
  g_assert_cmpint (weft_test_parse (s->str, s->len, FALSE, FALSE, &limits, &head, &err, NULL),
                   ==, WEFT_HTTP_PARSE_OK);
  g_assert_cmpuint (head.n_headers, ==, 10);

  /* the 11th header is refused even before the head is complete */
  g_string_truncate (s, s->len - 2);
  g_string_append (s, "X-11: v\r\n");
  g_assert_cmpint (weft_test_parse (s->str, s->len, FALSE, FALSE, &limits, &head, &err, NULL),
                   ==, WEFT_HTTP_PARSE_ERROR);
  g_assert_cmpint (err, ==, WEFT_HTTP_ERR_TOO_MANY_HEADERS);

  /* default: 100; and a limit above WEFT_HTTP_MAX_HEADERS is clamped */
  g_string_assign (s, "GET / HTTP/1.1\r\nHost: h\r\n");
  for (i = 1; i <= 100; i++)
    g_string_append_printf (s, "X-%u: v\r\n", i);
  g_string_append (s, "\r\n");
  g_assert_cmpint (weft_test_parse (s->str, s->len, FALSE, FALSE, NULL, &head, &err, NULL),
                   ==, WEFT_HTTP_PARSE_ERROR);
  g_assert_cmpint (err, ==, WEFT_HTTP_ERR_TOO_MANY_HEADERS);
  limits.max_headers = 1000;
  limits.max_head = 1 << 20;
  g_string_assign (s, "GET / HTTP/1.1\r\nHost: h\r\n");
  for (i = 1; i <= WEFT_HTTP_MAX_HEADERS; i++)
    g_string_append_printf (s, "X-%u: v\r\n", i);
  g_string_append (s, "\r\n");
  g_assert_cmpint (weft_test_parse (s->str, s->len, FALSE, FALSE, &limits, &head, &err, NULL),
                   ==, WEFT_HTTP_PARSE_ERROR);
  g_assert_cmpint (err, ==, WEFT_HTTP_ERR_TOO_MANY_HEADERS);
  g_string_free (s, TRUE);
}

/* early errors on a head that is not complete yet */
static void
test_incomplete_early_errors (void)
{
  static const struct {
    const char *req;
    gsize len;
    WeftHttpError err;
  } cases[] = {
    { "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b", 33, WEFT_HTTP_ERR_OBS_FOLD },
    { "GET / HTTP/1.1\r\nHost: h\r\nX: a\0b", 31, WEFT_HTTP_ERR_NUL },
    { "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb", 31, WEFT_HTTP_ERR_BARE_CR },
    { "GET / HTTP/1.1\nHost", 19, WEFT_HTTP_ERR_BARE_LF },
    { "GET / HTTP/1.1\r\nHost : h\r\nX", 27, WEFT_HTTP_ERR_SPACE_BEFORE_COLON },
    { "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n", 0,
      WEFT_HTTP_ERR_BAD_CONTENT_LENGTH },
  };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      WeftHttpHead head;
      WeftHttpError err;
      gsize len = cases[i].len != 0 ? cases[i].len : strlen (cases[i].req);

      g_test_message ("case %" G_GSIZE_FORMAT, i);
      g_assert_cmpint (weft_test_parse (cases[i].req, len, FALSE, FALSE, NULL, &head, &err, NULL),
                       ==, WEFT_HTTP_PARSE_ERROR);
      g_assert_cmpint (err, ==, cases[i].err);
    }
}

/* every strict prefix is INCOMPLETE and leaves its bytes as they were;
 * the whole head parses the same as in one go */
static void
weft_test_incremental (const char *text, gboolean response)
{
  gsize len = strlen (text);
  char *buf = g_malloc (len);
  WeftHttpHead whole, part;
  WeftHttpError err;
  gsize i, head_len;
  char *whole_buf;

  g_assert_cmpint (weft_test_parse (text, len, response, FALSE, NULL, &whole, &err, &whole_buf),
                   ==, WEFT_HTTP_PARSE_OK);
  head_len = whole.head_len;
  for (i = 0; i < head_len; i++)
    {
      WeftHttpParseStatus st;

      memcpy (buf, text, len);
      st = response ? weft_http_parse_response (buf, i, NULL, FALSE, &part, &err)
                    : weft_http_parse_request (buf, i, NULL, &part, &err);
      g_assert_cmpint (st, ==, WEFT_HTTP_PARSE_INCOMPLETE);
      g_assert_cmpint (err, ==, WEFT_HTTP_ERR_NONE);
      g_assert_cmpmem (buf, len, text, len);
    }
  for (i = head_len; i <= len; i++)
    {
      guint h;

      memcpy (buf, text, len);
      g_assert_cmpint (response ? weft_http_parse_response (buf, i, NULL, FALSE, &part, &err)
                                : weft_http_parse_request (buf, i, NULL, &part, &err),
                       ==, WEFT_HTTP_PARSE_OK);
      g_assert_cmpuint (part.head_len, ==, head_len);
      g_assert_cmpuint (part.n_headers, ==, whole.n_headers);
      g_assert_cmpint (part.body_kind, ==, whole.body_kind);
      g_assert_cmpuint (part.content_length, ==, whole.content_length);
      g_assert_cmpint (part.keep_alive, ==, whole.keep_alive);
      g_assert_cmpuint (part.conn_flags, ==, whole.conn_flags);
      g_assert_cmpint (part.host_idx, ==, whole.host_idx);
      g_assert_cmpuint (part.status, ==, whole.status);
      /* same offsets, same strings */
      g_assert_cmpmem (buf, head_len, whole_buf, head_len);
      for (h = 0; h < part.n_headers; h++)
        {
          g_assert_cmpint (part.headers[h].name - buf, ==, whole.headers[h].name - whole_buf);
          g_assert_cmpint (part.headers[h].value - buf, ==, whole.headers[h].value - whole_buf);
          g_assert_cmpuint (part.headers[h].flags, ==, whole.headers[h].flags);
        }
    }
  g_free (whole_buf);
  g_free (buf);
}

static void
test_incremental_request (void)
{
  weft_test_incremental ("POST /upload?x=1 HTTP/1.1\r\n"
                         "Host: example.com\r\n"
                         "Connection: keep-alive, x-hop\r\n"
                         "X-Hop: 1\r\n"
                         "Content-Length: 11\r\n"
                         "Expect: 100-continue\r\n"
                         "\r\n"
                         "hello world", FALSE);
  weft_test_incremental ("GET / HTTP/1.0\r\n\r\n", FALSE);
}

static void
test_incremental_response (void)
{
  weft_test_incremental ("HTTP/1.1 200 OK\r\n"
                         "Transfer-Encoding: chunked\r\n"
                         "Server: weft-test\r\n"
                         "\r\n"
                         "5\r\nhello\r\n0\r\n\r\n", TRUE);
}

static void
test_response_basic (void)
{
  WeftHttpHead head;
  WeftHttpError err;
  char *buf;

  g_assert_cmpint (weft_test_resp ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
                                   FALSE, &head, &err, &buf), ==, WEFT_HTTP_PARSE_OK);
  g_assert_cmpuint (head.status, ==, 200);
  g_assert_cmpstr (head.reason, ==, "OK");
  g_assert_cmpuint (head.version_minor, ==, 1);
  g_assert_cmpint (head.body_kind, ==, WEFT_HTTP_BODY_LENGTH);
  g_assert_cmpuint (head.content_length, ==, 2);
  g_assert_true (head.keep_alive);
  g_assert_cmpint (head.host_idx, ==, -1);
  g_assert_null (head.method);
  g_free (buf);

  g_assert_cmpint (weft_test_resp ("HTTP/1.1 404 Not  Found here\r\nContent-Length: 0\r\n\r\n",
                                   FALSE, &head, &err, NULL), ==, WEFT_HTTP_PARSE_OK);
  g_assert_cmpstr (head.reason, ==, "Not  Found here");
  g_assert_cmpint (head.body_kind, ==, WEFT_HTTP_BODY_NONE);

  g_assert_cmpint (weft_test_resp ("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n",
                                   FALSE, &head, &err, NULL), ==, WEFT_HTTP_PARSE_OK);
  g_assert_cmpstr (head.reason, ==, "");
  g_assert_cmpint (weft_test_resp ("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
                                   FALSE, &head, &err, NULL), ==, WEFT_HTTP_PARSE_OK);
  g_assert_cmpstr (head.reason, ==, "");
  g_assert_cmpuint (head.status, ==, 200);

  g_assert_cmpint (weft_test_resp ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                                   FALSE, &head, &err, NULL), ==, WEFT_HTTP_PARSE_OK);
  g_assert_cmpint (head.body_kind, ==, WEFT_HTTP_BODY_CHUNKED);
  g_assert_true (head.keep_alive);
}

static void
test_response_body_kinds (void)
{
  static const struct {
    const char *resp;
    gboolean head_req;
    WeftHttpBodyKind kind;
    gboolean keep_alive;
  } cases[] = {
    { "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n", FALSE, WEFT_HTTP_BODY_CLOSE, FALSE },
    { "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", FALSE, WEFT_HTTP_BODY_CLOSE, FALSE },
    { "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\n", FALSE, WEFT_HTTP_BODY_LENGTH, TRUE },
    { "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n", FALSE, WEFT_HTTP_BODY_LENGTH, FALSE },
    { "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", TRUE, WEFT_HTTP_BODY_NONE, TRUE },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", TRUE, WEFT_HTTP_BODY_NONE, TRUE },
    { "HTTP/1.1 200 OK\r\n\r\n", TRUE, WEFT_HTTP_BODY_NONE, TRUE },
    { "HTTP/1.1 204 No Content\r\n\r\n", FALSE, WEFT_HTTP_BODY_NONE, TRUE },
    { "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", FALSE, WEFT_HTTP_BODY_NONE, TRUE },
    { "HTTP/1.1 100 Continue\r\n\r\n", FALSE, WEFT_HTTP_BODY_NONE, TRUE },
    { "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n", FALSE, WEFT_HTTP_BODY_NONE, TRUE },
    { "HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", FALSE, WEFT_HTTP_BODY_LENGTH, FALSE },
  };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      WeftHttpHead head;
      WeftHttpError err;

      g_test_message ("case %" G_GSIZE_FORMAT, i);
      g_assert_cmpint (weft_test_resp (cases[i].resp, cases[i].head_req, &head, &err, NULL),
                       ==, WEFT_HTTP_PARSE_OK);
      g_assert_cmpint (head.body_kind, ==, cases[i].kind);
      g_assert_cmpint (head.keep_alive, ==, cases[i].keep_alive);
    }
}

static void
test_response_upgrade (void)
{
  WeftHttpHead head;
  WeftHttpError err;

  g_assert_cmpint (weft_test_resp ("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                                   "Upgrade: websocket\r\n\r\n", FALSE, &head, &err, NULL),
                   ==, WEFT_HTTP_PARSE_OK);
  g_assert_cmpuint (head.status, ==, 101);
  g_assert_true (head.upgrade);
  g_assert_cmpint (head.body_kind, ==, WEFT_HTTP_BODY_NONE);
}

static void
test_response_errors (void)
{
  weft_test_expect_resp_error ("HTTP/1.1 20 OK\r\n\r\n", WEFT_HTTP_ERR_BAD_STATUS_LINE);
  weft_test_expect_resp_error ("HTTP/1.1 2000 OK\r\n\r\n", WEFT_HTTP_ERR_BAD_STATUS_LINE);
  weft_test_expect_resp_error ("HTTP/1.1 099 OK\r\n\r\n", WEFT_HTTP_ERR_BAD_STATUS_LINE);
  weft_test_expect_resp_error ("HTTP/1.1 600 OK\r\n\r\n", WEFT_HTTP_ERR_BAD_STATUS_LINE);
  weft_test_expect_resp_error ("HTTP/1.1 2x0 OK\r\n\r\n", WEFT_HTTP_ERR_BAD_STATUS_LINE);
  weft_test_expect_resp_error ("HTTP/1.1  200 OK\r\n\r\n", WEFT_HTTP_ERR_BAD_STATUS_LINE);
  weft_test_expect_resp_error ("HTTP/2.0 200 OK\r\n\r\n", WEFT_HTTP_ERR_BAD_STATUS_LINE);
  weft_test_expect_resp_error ("HTTP/1.1\r\n\r\n", WEFT_HTTP_ERR_BAD_STATUS_LINE);
  weft_test_expect_resp_error ("http/1.1 200 OK\r\n\r\n", WEFT_HTTP_ERR_BAD_STATUS_LINE);
  weft_test_expect_resp_error ("HTTP/1.1 200 O\x01K\r\n\r\n", WEFT_HTTP_ERR_BAD_STATUS_LINE);
  weft_test_expect_resp_error ("HTTP/1.1 200 OK\nServer: x\r\n\r\n", WEFT_HTTP_ERR_BARE_LF);
  weft_test_expect_resp_error ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                               WEFT_HTTP_ERR_CL_AND_TE);
  weft_test_expect_resp_error ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
                               WEFT_HTTP_ERR_BAD_CONTENT_LENGTH);
  weft_test_expect_resp_error ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                               WEFT_HTTP_ERR_UNSUPPORTED_TE);
  weft_test_expect_resp_error ("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", WEFT_HTTP_ERR_OBS_FOLD);
  weft_test_expect_resp_error ("HTTP/1.1 200 OK\r\nX : a\r\n\r\n", WEFT_HTTP_ERR_SPACE_BEFORE_COLON);
}

static void
test_response_incomplete (void)
{
  WeftHttpHead head;
  WeftHttpError err;

  g_assert_cmpint (weft_test_resp ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n", FALSE, &head, &err, NULL),
                   ==, WEFT_HTTP_PARSE_INCOMPLETE);
  g_assert_cmpint (weft_test_resp ("HTTP/1.1 2", FALSE, &head, &err, NULL),
                   ==, WEFT_HTTP_PARSE_INCOMPLETE);
  g_assert_cmpint (weft_test_resp ("", FALSE, &head, &err, NULL),
                   ==, WEFT_HTTP_PARSE_INCOMPLETE);
  g_assert_cmpint (weft_test_req ("", &head, &err, NULL), ==, WEFT_HTTP_PARSE_INCOMPLETE);
}

static void
test_response_host_ignored (void)
{
  WeftHttpHead head;
  WeftHttpError err;

  g_assert_cmpint (weft_test_resp ("HTTP/1.1 200 OK\r\nHost: a\r\nHost: b\r\nContent-Length: 0\r\n\r\n",
                                   FALSE, &head, &err, NULL), ==, WEFT_HTTP_PARSE_OK);
  g_assert_cmpint (head.host_idx, ==, 0);
}

/* chunked decoder */

static const char weft_test_chunked_body[] =
  "5\r\nhello\r\n"
  "1A;name=value;flag\r\n" "abcdefghijklmnopqrstuvwxyz\r\n"
  "00a ; q=\"quoted; x\"\r\n" "0123456789\r\n"
  "0\r\n"
  "X-Checksum: abc\r\n"
  "X-Other:\tdef \r\n"
  "\r\n";

/* feeds the whole of @buf in pieces of at most @step; returns total consumed
 * or -1 */
static gssize
weft_test_chunked_steps (WeftChunkedDecoder *dec, const char *buf, gsize len, gsize step)
{
  gsize off = 0;

  while (off < len && !dec->done)
    {
      gsize n = MIN (step, len - off);
      gssize r = weft_chunked_decoder_feed (dec, buf + off, n);

      if (r < 0)
        return -1;
      g_assert_cmpint (r, <=, (gssize) n);
      if ((gsize) r < n)
        g_assert_true (dec->done);
      off += (gsize) r;
    }
  return (gssize) off;
}

static void
test_chunked_splits (void)
{
  gsize len = sizeof (weft_test_chunked_body) - 1;
  gsize i;

  for (i = 0; i <= len; i++)
    {
      WeftChunkedDecoder dec;
      gssize a, b;

      weft_chunked_decoder_init (&dec);
      a = weft_chunked_decoder_feed (&dec, weft_test_chunked_body, i);
      g_assert_cmpint (a, ==, (gssize) i);
      g_assert_cmpint (dec.done, ==, i == len);
      b = weft_chunked_decoder_feed (&dec, weft_test_chunked_body + i, len - i);
      g_assert_cmpint (b, ==, (gssize) (len - i));
      g_assert_true (dec.done);
    }
}

static void
test_chunked_byte_by_byte (void)
{
  gsize len = sizeof (weft_test_chunked_body) - 1;
  gsize step;

  for (step = 1; step <= 7; step++)
    {
      WeftChunkedDecoder dec;

      weft_chunked_decoder_init (&dec);
      g_assert_cmpint (weft_test_chunked_steps (&dec, weft_test_chunked_body, len, step), ==, (gssize) len);
      g_assert_true (dec.done);
    }
}

static void
test_chunked_pipelined (void)
{
  const char *msg = "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
  gsize body_len = strlen ("3\r\nabc\r\n0\r\n\r\n");
  gsize len = strlen (msg);
  WeftChunkedDecoder dec;
  gsize i;

  weft_chunked_decoder_init (&dec);
  g_assert_cmpint (weft_chunked_decoder_feed (&dec, msg, len), ==, (gssize) body_len);
  g_assert_true (dec.done);
  /* once done, nothing more is consumed */
  g_assert_cmpint (weft_chunked_decoder_feed (&dec, msg + body_len, len - body_len), ==, 0);

  /* same at every split */
  for (i = 0; i <= body_len; i++)
    {
      gssize a, b;

      weft_chunked_decoder_init (&dec);
      a = weft_chunked_decoder_feed (&dec, msg, i);
      b = weft_chunked_decoder_feed (&dec, msg + a, len - (gsize) a);
      g_assert_cmpint (a + b, ==, (gssize) body_len);
      g_assert_true (dec.done);
    }

  /* with trailers, one byte at a time */
  msg = "0\r\nX-T: 1\r\n\r\nHTTP/1.1 200 OK\r\n";
  body_len = strlen ("0\r\nX-T: 1\r\n\r\n");
  weft_chunked_decoder_init (&dec);
  g_assert_cmpint (weft_test_chunked_steps (&dec, msg, strlen (msg), 1), ==, (gssize) body_len);
}

static void
weft_test_chunked_bad (const char *body, gsize len)
{
  gsize step;

  for (step = 1; step <= len; step++)
    {
      WeftChunkedDecoder dec;

      weft_chunked_decoder_init (&dec);
      if (weft_test_chunked_steps (&dec, body, len, step) != -1)
        g_error ("accepted bad chunked body %s (step %" G_GSIZE_FORMAT ")",
                 g_strescape (body, NULL), step);
      g_assert_false (dec.done);
      /* stays failed */
      g_assert_cmpint (weft_chunked_decoder_feed (&dec, "0\r\n\r\n", 5), ==, -1);
    }
}

static void
test_chunked_errors (void)
{
  static const char *const bad[] = {
    "g\r\n",                       /* bad hex */
    "5x\r\nhello\r\n0\r\n\r\n",    /* junk after size */
    "\r\n",                        /* no size */
    ";ext\r\n",                    /* no size */
    "-1\r\n",
    "5\r\nhelloXY0\r\n\r\n",       /* no CRLF after data */
    "5\r\nhello\n0\r\n\r\n",       /* bare LF after data */
    "5\r\nhello\r0\r\n\r\n",
    "5\nhello\r\n0\r\n\r\n",       /* bare LF after size */
    "5\rhello\r\n",
    "5 \r\nhello\r\n",             /* BWS without extension */
    "5;a\nhello\r\n",              /* bare LF ending an extension */
    "5;a\x01\r\nhello\r\n",        /* control char in an extension */
    "1000000000000000\r\n",        /* 16 hex digits */
    "ffffffffffffffffff\r\n",      /* overflow */
    "0\r\nX-T : 1\r\n\r\n",        /* space before colon in a trailer */
    "0\r\n X-T: 1\r\n\r\n",        /* obs-fold in a trailer */
    "0\r\nX-T\r\n\r\n",            /* trailer without colon */
    "0\r\n: v\r\n\r\n",            /* empty trailer name */
    "0\r\nX-T: 1\n\r\n",           /* bare LF in trailers */
    "0\r\nX-T: 1\r\n\n",
    "0\r\n\rX",                    /* bare CR at the end */
    "0\r\nX-T: a\x01\r\n\r\n",
  };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (bad); i++)
    weft_test_chunked_bad (bad[i], strlen (bad[i]));
  /* NUL in the size line */
  weft_test_chunked_bad ("5\0\r\n", 4);
}

static void
test_chunked_limits (void)
{
  WeftChunkedDecoder dec;
  GString *s = g_string_new ("1;x=");

  /* 15 hex digits are fine */
  weft_chunked_decoder_init (&dec);
  g_assert_cmpint (weft_chunked_decoder_feed (&dec, "000000000000001\r\nz\r\n0\r\n\r\n", 25), ==, 25);
  g_assert_true (dec.done);

  /* size line of 4096 bytes is fine, 4097 is not */
  while (s->len < 4096)
    g_string_append_c (s, 'e');
  g_string_append (s, "\r\nz\r\n0\r\n\r\n");
  weft_chunked_decoder_init (&dec);
  g_assert_cmpint (weft_chunked_decoder_feed (&dec, s->str, s->len), ==, (gssize) s->len);
  g_string_insert_c (s, 4, 'e');
  weft_chunked_decoder_init (&dec);
  g_assert_cmpint (weft_chunked_decoder_feed (&dec, s->str, s->len), ==, -1);

  /* trailers of over 16384 bytes */
  g_string_assign (s, "0\r\n");
  while (s->len < 17000)
    g_string_append (s, "X-Trailer: 0123456789abcdef0123456789abcdef\r\n");
  g_string_append (s, "\r\n");
  weft_chunked_decoder_init (&dec);
  g_assert_cmpint (weft_chunked_decoder_feed (&dec, s->str, s->len), ==, -1);

  /* a large chunk streams through in pieces */
  weft_chunked_decoder_init (&dec);
  g_assert_cmpint (weft_chunked_decoder_feed (&dec, "FFFFFFFF\r\n", 10), ==, 10);
  g_assert_cmpuint (dec.remaining, ==, 0xffffffffu);
  g_assert_cmpint (weft_chunked_decoder_feed (&dec, s->str, s->len), ==, (gssize) s->len);
  g_assert_cmpuint (dec.remaining, ==, 0xffffffffu - s->len);
  g_assert_false (dec.done);
  g_string_free (s, TRUE);

  /* empty feed */
  weft_chunked_decoder_init (&dec);
  g_assert_cmpint (weft_chunked_decoder_feed (&dec, NULL, 0), ==, 0);

  /* chunk extensions: 16384 bytes over a body are fine, one more is not,
   * however the chunks split them */
  s = g_string_new ("");
  for (guint n = 0; n < 16384 / 64; n++)
    {
      g_string_append (s, "1;");
      for (guint i = 0; i < 63; i++)
        g_string_append_c (s, 'e');
      g_string_append (s, "\r\nz\r\n");
    }
  weft_chunked_decoder_init (&dec);
  g_assert_cmpint (weft_chunked_decoder_feed (&dec, s->str, s->len), ==, (gssize) s->len);
  g_assert_cmpuint (dec.ext_bytes, ==, 16384);
  g_assert_cmpint (weft_chunked_decoder_feed (&dec, "1;\r\nz\r\n", 8), ==, -1);
  weft_chunked_decoder_init (&dec);
  g_assert_cmpint (weft_chunked_decoder_feed (&dec, s->str, s->len), ==, (gssize) s->len);
  g_assert_cmpint (weft_chunked_decoder_feed (&dec, "0\r\n\r\n", 5), ==, 5);
  g_assert_true (dec.done);
  g_string_free (s, TRUE);
}

/* the data alone, in place, whatever the pieces; what follows the body
 * is left for the caller */
static void
test_chunked_strip (void)
{
  static const char body[] = "5;a=b\r\nhello\r\n1\r\n,\r\n6\r\n world\r\n0\r\nT: x\r\n\r\nNEXT";
  gsize total = sizeof body - 1 - 4;

  for (gsize piece = 1; piece <= sizeof body; piece++)
    {
      WeftChunkedDecoder dec;
      GString *data = g_string_new ("");
      gsize off = 0;

      weft_chunked_decoder_init (&dec);
      while (!dec.done)
        {
          gsize n = MIN (piece, sizeof body - 1 - off);
          char *copy = g_memdup2 (body + off, n);
          gsize got = 0;
          gssize used = weft_chunked_decoder_strip (&dec, copy, n, &got);

          g_assert_cmpint (used, >, 0);
          g_string_append_len (data, copy, (gssize) got);
          off += (gsize) used;
          g_free (copy);
        }
      g_assert_cmpuint (off, ==, total);
      g_assert_cmpstr (data->str, ==, "hello, world");
      g_string_free (data, TRUE);
    }
}

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/http-parser/limits-default", test_limits_default);
  g_test_add_func ("/http-parser/error-mapping", test_error_mapping);
  g_test_add_func ("/http-parser/request/get", test_get_simple);
  g_test_add_func ("/http-parser/request/find", test_head_find);
  g_test_add_func ("/http-parser/request/content-length", test_post_content_length);
  g_test_add_func ("/http-parser/request/chunked", test_chunked_request);
  g_test_add_func ("/http-parser/request/keep-alive", test_keep_alive);
  g_test_add_func ("/http-parser/request/hop-by-hop", test_hop_by_hop);
  g_test_add_func ("/http-parser/request/upgrade", test_upgrade);
  g_test_add_func ("/http-parser/request/expect-continue", test_expect_continue);
  g_test_add_func ("/http-parser/request/http10-no-host", test_http10_no_host);
  g_test_add_func ("/http-parser/request/errors", test_request_errors);
  g_test_add_func ("/http-parser/request/target-forms", test_target_forms);
  g_test_add_func ("/http-parser/request/line-too-long", test_request_line_too_long);
  g_test_add_func ("/http-parser/request/head-too-large", test_head_too_large);
  g_test_add_func ("/http-parser/request/too-many-headers", test_too_many_headers);
  g_test_add_func ("/http-parser/request/incomplete-early-errors", test_incomplete_early_errors);
  g_test_add_func ("/http-parser/request/incremental", test_incremental_request);
  g_test_add_func ("/http-parser/response/incremental", test_incremental_response);
  g_test_add_func ("/http-parser/response/basic", test_response_basic);
  g_test_add_func ("/http-parser/response/body-kinds", test_response_body_kinds);
  g_test_add_func ("/http-parser/response/upgrade", test_response_upgrade);
  g_test_add_func ("/http-parser/response/errors", test_response_errors);
  g_test_add_func ("/http-parser/response/incomplete", test_response_incomplete);
  g_test_add_func ("/http-parser/response/host-ignored", test_response_host_ignored);
  g_test_add_func ("/http-parser/chunked/splits", test_chunked_splits);
  g_test_add_func ("/http-parser/chunked/byte-by-byte", test_chunked_byte_by_byte);
  g_test_add_func ("/http-parser/chunked/pipelined", test_chunked_pipelined);
  g_test_add_func ("/http-parser/chunked/errors", test_chunked_errors);
  g_test_add_func ("/http-parser/chunked/limits", test_chunked_limits);
  g_test_add_func ("/http-parser/chunked/strip", test_chunked_strip);

  ret = g_test_run ();
  g_clear_pointer (&weft_test_last_buf, g_free);
  return ret;
}
