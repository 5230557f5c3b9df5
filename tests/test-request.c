/* SPDX-License-Identifier: LGPL-2.1-or-later
 * WeftRequest's header API as plugins use it: names must be tokens and
 * values may not carry line ends, an invalid change changes nothing, and
 * the observation calls report what the core recorded. */
#include "weft-request-private.h"

#include <string.h>

typedef struct {
  WeftBufPool *pool;
  WeftRequest  req;
  WeftHttpHead head;
} Fixture;

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  static const char text[] = "GET /a?b HTTP/1.1\r\nHost: svc\r\nX-Old: 1\r\nX-Old: 2\r\n\r\n";
  WeftHttpLimits limits;
  WeftHttpError err = WEFT_HTTP_ERR_NONE;
  WeftBuf *buf;

  (void) data;
  f->pool = weft_buf_pool_new (1 << 20);
  buf = weft_buf_pool_get (f->pool, 4096);
  weft_buf_append (buf, text, sizeof text - 1);
  weft_http_limits_init_default (&limits);
  g_assert_cmpint (weft_http_parse_request (buf->data, buf->end, &limits, &f->head, &err), ==,
                   WEFT_HTTP_PARSE_OK);
  memset (&f->req, 0, sizeof f->req);
  weft_request_begin (&f->req, NULL, f->pool, buf, &f->head);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  (void) data;
  weft_request_end (&f->req);
  weft_buf_pool_free (f->pool);
}

static guint
count_named (WeftRequest *req, const char *want)
{
  const char *name, *value;
  guint n = 0;

  for (guint i = 0; weft_request_get_header_nth (req, i, &name, &value); i++)
    n += g_ascii_strcasecmp (name, want) == 0;
  return n;
}

static void
test_add_and_set (Fixture *f, gconstpointer data)
{
  WeftRequest *req = &f->req;

  (void) data;
  weft_request_add_header (req, "traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  g_assert_cmpstr (weft_request_get_header (req, "TraceParent"), ==,
                   "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  g_assert_cmpuint (count_named (req, "x-old"), ==, 2);
  weft_request_set_header (req, "x-old", "3");
  g_assert_cmpuint (count_named (req, "x-old"), ==, 1);
  g_assert_cmpstr (weft_request_get_header (req, "x-old"), ==, "3");
  /* the value may hold a tab, and be empty */
  weft_request_add_header (req, "x-tab", "a\tb");
  g_assert_cmpstr (weft_request_get_header (req, "x-tab"), ==, "a\tb");
  weft_request_add_header (req, "x-empty", "");
  g_assert_cmpstr (weft_request_get_header (req, "x-empty"), ==, "");
  /* Host goes to the authority */
  weft_request_set_header (req, "host", "other:8080");
  g_assert_cmpstr (weft_request_get_authority (req), ==, "other:8080");
}

static void
test_invalid_changes_nothing (Fixture *f, gconstpointer data)
{
  WeftRequest *req = &f->req;
  static const char *const bad_names[] = { "", "x y", "x:y", "x\r\ny", "caf\xc3\xa9", "(x)", NULL };

  (void) data;
  for (guint i = 0; bad_names[i] != NULL; i++)
    {
      weft_request_add_header (req, bad_names[i], "v");
      weft_request_set_response_header (req, bad_names[i], "v");
    }
  weft_request_add_header (req, NULL, "v");
  g_assert_cmpuint (req->headers.n, ==, 3);
  /* a line end in a value: refused, and set_header keeps the old values */
  weft_request_set_header (req, "x-old", "3\r\nx-evil: 1");
  g_assert_cmpuint (count_named (req, "x-old"), ==, 2);
  weft_request_add_header (req, "x-new", "a\nb");
  /* a control byte in every position of a long value, checked eight at a time */
  for (guint at = 0; at < 20; at++)
    {
      char value[21];
      memset (value, 'v', 20);
      value[20] = '\0';
      value[at] = '\r';
      weft_request_add_header (req, "x-new", value);
      value[at] = '\t';
      weft_request_add_header (req, "x-tabbed", value);
    }
  g_assert_cmpuint (count_named (req, "x-tabbed"), ==, 20);
  weft_request_add_header (req, "x-high", "caf\xc3\xa9 \xff\x80 ok");
  g_assert_cmpstr (weft_request_get_header (req, "x-high"), ==, "caf\xc3\xa9 \xff\x80 ok");
  weft_request_add_header (req, "x-new", NULL);
  g_assert_null (weft_request_get_header (req, "x-new"));
  weft_request_set_header (req, "host", "evil\r\n");
  g_assert_cmpstr (weft_request_get_authority (req), ==, "svc");
  g_assert_null (weft_request_get_header (req, "x-new"));
  /* every token character is allowed */
  weft_request_add_header (req, "!#$%&'*+-.^_`|~09AZaz", "ok");
  g_assert_cmpstr (weft_request_get_header (req, "!#$%&'*+-.^_`|~09azaz"), ==, "ok");
  g_assert_cmpuint (req->resp_headers.n, ==, 0);
}

static void
test_observation (Fixture *f, gconstpointer data)
{
  WeftRequest *req = &f->req;
  char buf[WEFT_RESPONSE_FLAGS_MAX];

  (void) data;
  g_assert_cmpstr (weft_request_get_protocol (req), ==, "HTTP/1.1");
  g_assert_null (weft_request_get_upstream_address (req));
  g_assert_null (weft_request_get_trace_id (req));
  weft_request_set_trace_id (req, "0af7651916cd43dd8448eb211c80319c");
  g_assert_cmpstr (weft_request_get_trace_id (req), ==, "0af7651916cd43dd8448eb211c80319c");
  g_assert_cmpuint (weft_request_get_response_flags (req), ==, 0);
  weft_request_add_response_flags (req, WEFT_RESPONSE_FLAG_RATE_LIMITED);
  weft_request_add_response_flags (req, WEFT_RESPONSE_FLAG_UPSTREAM_CONNECT_FAILURE);
  g_assert_cmpstr (weft_response_flags_format (weft_request_get_response_flags (req), buf), ==,
                   "UF,RL");
}

/* the heads weft writes: status line and framing are formatted by hand */
static void
test_serialise (Fixture *f, gconstpointer data)
{
  static const char resp[] = "HTTP/1.1 404 Nope\r\nContent-Length: 1234567890123\r\n"
                             "X-A: b\r\n\r\n";
  static const char text[] = "PUT /up HTTP/1.1\r\nHost: svc\r\nContent-Length: 18446744\r\n"
                             "X-A: 1\r\n\r\n";
  WeftRequest *req = &f->req;
  WeftHttpHead head;
  WeftHttpError err = WEFT_HTTP_ERR_NONE;
  WeftBuf *in = weft_buf_pool_get (f->pool, 4096);
  WeftBuf *out = weft_buf_pool_get (f->pool, 4096);

  (void) data;
  weft_request_end (req);
  weft_buf_append (in, text, sizeof text - 1);
  g_assert_cmpint (weft_http_parse_request (in->data, in->end, NULL, &head, &err), ==,
                   WEFT_HTTP_PARSE_OK);
  memset (req, 0, sizeof *req);
  weft_request_begin (req, NULL, f->pool, in, &head);
  g_assert_true (weft_request_write_upstream_head (req, out, NULL, FALSE));
  g_assert_nonnull (g_strstr_len (weft_buf_head (out), (gssize) weft_buf_len (out),
                                  "\r\ncontent-length: 18446744\r\n"));
  out->start = out->end = 0;

  in = weft_buf_pool_get (f->pool, 4096);
  weft_buf_append (in, resp, sizeof resp - 1);
  g_assert_cmpint (weft_http_parse_response (in->data, in->end, NULL, FALSE, &head, &err), ==,
                   WEFT_HTTP_PARSE_OK);
  weft_request_set_response_head (req, in, &head);
  g_assert_true (weft_request_write_response_head (req, out, FALSE));
  weft_buf_append (out, "", 1);
  g_assert_cmpstr (weft_buf_head (out), ==,
                   "HTTP/1.1 404 Nope\r\nX-A: b\r\ncontent-length: 1234567890123\r\n\r\n");
  weft_buf_pool_put (f->pool, out);
}

/* parses @text into @f's request, replacing the fixture's */
static void
begin_with (Fixture *f, const char *text)
{
  WeftHttpError err = WEFT_HTTP_ERR_NONE;
  WeftBuf *in = weft_buf_pool_get (f->pool, 4096);

  weft_request_end (&f->req);
  weft_buf_append (in, text, strlen (text));
  g_assert_cmpint (weft_http_parse_request (in->data, in->end, NULL, &f->head, &err), ==,
                   WEFT_HTTP_PARSE_OK);
  memset (&f->req, 0, sizeof f->req);
  weft_request_begin (&f->req, NULL, f->pool, in, &f->head);
}

/* the upstream request line and Host of @f's request */
static char *
upstream_head (Fixture *f)
{
  WeftBuf *out = weft_buf_pool_get (f->pool, 4096);
  char *s;

  g_assert_true (weft_request_write_upstream_head (&f->req, out, NULL, FALSE));
  s = g_strndup (weft_buf_head (out), weft_buf_len (out));
  weft_buf_pool_put (f->pool, out);
  /* the request line and the host line */
  *strstr (strstr (s, "\r\n") + 2, "\r\n") = '\0';
  return s;
}

/* RFC 9112 3.2.2: the absolute-form's authority replaces Host, and the
 * request goes on in origin-form; plugins see the same */
static void
test_absolute_form (Fixture *f, gconstpointer data)
{
  static const struct {
    const char *req;
    const char *path;
    const char *authority;
  } cases[] = {
    { "GET http://other:81/p?q HTTP/1.1\r\nHost: svc\r\n\r\n", "/p?q", "other:81" },
    { "GET HTTPS://Other HTTP/1.1\r\nHost: svc\r\n\r\n", "/", "Other" },
    { "GET http://other?q=1 HTTP/1.1\r\nHost: svc\r\n\r\n", "/?q=1", "other" },
    { "OPTIONS http://other HTTP/1.1\r\nHost: svc\r\n\r\n", "*", "other" },
    { "OPTIONS * HTTP/1.1\r\nHost: svc\r\n\r\n", "*", "svc" },
    { "GET /o HTTP/1.1\r\nHost: svc\r\n\r\n", "/o", "svc" },
  };

  (void) data;
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *line = NULL;
      g_autofree char *want = NULL;

      begin_with (f, cases[i].req);
      g_assert_cmpstr (weft_request_get_path (&f->req), ==, cases[i].path);
      g_assert_cmpstr (weft_request_get_authority (&f->req), ==, cases[i].authority);
      want = g_strdup_printf ("%s %s HTTP/1.1\r\nhost: %s", f->req.method, cases[i].path,
                              cases[i].authority);
      line = upstream_head (f);
      g_assert_cmpstr (line, ==, want);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/request/headers/add-and-set", Fixture, NULL, fixture_set_up, test_add_and_set,
              fixture_tear_down);
  g_test_add ("/request/headers/invalid-changes-nothing", Fixture, NULL, fixture_set_up,
              test_invalid_changes_nothing, fixture_tear_down);
  g_test_add ("/request/observation", Fixture, NULL, fixture_set_up, test_observation,
              fixture_tear_down);
  g_test_add ("/request/serialise", Fixture, NULL, fixture_set_up, test_serialise,
              fixture_tear_down);
  g_test_add ("/request/absolute-form", Fixture, NULL, fixture_set_up, test_absolute_form,
              fixture_tear_down);
  return g_test_run ();
}
