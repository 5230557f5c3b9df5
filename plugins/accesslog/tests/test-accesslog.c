/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The access log's pure parts and its writer: JSON escaping and lines
 * parsed back with json-glib, RFC 3339 times against GDateTime, the
 * traceparent check, the settings and their errors, and the writer
 * thread with real files and a FIFO nobody reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "weft-config-private.h"
#include "weft-metrics-private.h"
#include "weft-accesslog-private.h"

/* ------------------------------------------------------------------ */
/* helpers                                                              */
/* ------------------------------------------------------------------ */

/* escapes @value with @max and parses it back as a JSON string */
static char *
escape_roundtrip (const char *value, gsize max, gsize *escaped_len)
{
  char buf[WEFT_ACCESSLOG_LINE_MAX * 2];
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *doc = NULL;
  gsize len = weft_accesslog_escape (buf, 0, sizeof buf, value, max);
  JsonArray *array;

  g_assert_true (g_utf8_validate (buf, (gssize) len, NULL));
  g_assert_cmpuint (len, ==, strlen (buf));
  if (escaped_len != NULL)
    *escaped_len = len - 2;
  doc = g_strdup_printf ("[%s]", buf);
  json_parser_load_from_data (parser, doc, -1, &error);
  g_assert_no_error (error);
  array = json_node_get_array (json_parser_get_root (parser));
  g_assert_cmpuint (json_array_get_length (array), ==, 1);
  if (JSON_NODE_HOLDS_NULL (json_array_get_element (array, 0)))
    return NULL;
  return g_strdup (json_array_get_string_element (array, 0));
}

static JsonObject *
parse_line (const char *line, gsize len, JsonParser *parser)
{
  g_autoptr(GError) error = NULL;

  g_assert_cmpuint (len, ==, strlen (line));
  g_assert_cmpuint (len, <, WEFT_ACCESSLOG_LINE_MAX);
  g_assert_cmpint (line[len - 1], ==, '\n');
  g_assert_null (memchr (line, '\n', len - 1));
  g_assert_true (g_utf8_validate (line, (gssize) len, NULL));
  json_parser_load_from_data (parser, line, (gssize) len, &error);
  g_assert_no_error (error);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)));
  return json_node_get_object (json_parser_get_root (parser));
}

/* ------------------------------------------------------------------ */
/* escaping                                                             */
/* ------------------------------------------------------------------ */

static void
test_escape_quotes_and_backslashes (void)
{
  const char *cases[] = {
    "", "plain", "say \"hi\"", "back\\slash", "\\\"\\\"", "/a/b?c=d&e=f#g", "\"",
    "{\"json\":[1,2]}", "tab\there", "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80",
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *back = escape_roundtrip (cases[i], 4096, NULL);
      g_assert_cmpstr (back, ==, cases[i]);
    }
}

static void
test_escape_control_characters (void)
{
  g_autoptr(GString) all = g_string_new (NULL);
  char buf[512];
  g_autofree char *back = NULL;

  for (int c = 1; c < 0x20; c++)
    g_string_append_c (all, (char) c);
  g_string_append_c (all, 0x7f);
  back = escape_roundtrip (all->str, 4096, NULL);
  g_assert_cmpstr (back, ==, all->str);
  /* every one of them as \u00XX: no raw control byte in the output */
  weft_accesslog_escape (buf, 0, sizeof buf, "a\nb\rc\x01\x1f\x7f", 4096);
  g_assert_cmpstr (buf, ==, "\"a\\u000ab\\u000dc\\u0001\\u001f\\u007f\"");
  for (const char *p = buf; *p != '\0'; p++)
    g_assert_cmpint ((guchar) *p, >=, 0x20);
}

static void
test_escape_invalid_utf8 (void)
{
  static const struct { const char *in; const char *out; } cases[] = {
    { "a\xff" "b", "a\xef\xbf\xbd" "b" },                        /* not a lead byte */
    { "\xc3\x28", "\xef\xbf\xbd(" },                             /* bad continuation */
    { "\xe2\x82 x", "\xef\xbf\xbd\xef\xbf\xbd x" },              /* cut short */
    { "\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },  /* a surrogate */
    { "\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd" },                  /* overlong '/' */
    { "\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" }, /* > U+10FFFF */
    { "\x80", "\xef\xbf\xbd" },                                  /* lone continuation */
    { "ok \xf0\x9f\x98\x80 \xc3\xa9", "ok \xf0\x9f\x98\x80 \xc3\xa9" },
    { "end\xe2", "end\xef\xbf\xbd" },                            /* cut by the end */
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *back = escape_roundtrip (cases[i].in, 4096, NULL);
      g_assert_cmpstr (back, ==, cases[i].out);
    }
}

static void
test_escape_truncates_at_a_boundary (void)
{
  g_autofree char *long_path = g_strnfill (5000, 'a');
  g_autofree char *controls = g_strnfill (1000, '\x01');
  g_autoptr(GString) accents = g_string_new (NULL);
  g_autofree char *back = NULL;
  gsize n;

  back = escape_roundtrip (long_path, WEFT_ACCESSLOG_CAP_PATH, &n);
  g_assert_cmpuint (strlen (back), ==, WEFT_ACCESSLOG_CAP_PATH);
  g_assert_cmpuint (n, ==, WEFT_ACCESSLOG_CAP_PATH);
  g_clear_pointer (&back, g_free);

  /* six bytes each: never half an escape */
  back = escape_roundtrip (controls, 2048, &n);
  g_assert_cmpuint (strlen (back), ==, 2048 / 6);
  g_assert_cmpuint (n, ==, (2048 / 6) * 6);
  g_clear_pointer (&back, g_free);

  /* two bytes each: never half a character */
  for (int i = 0; i < 2000; i++)
    g_string_append (accents, "\xc3\xa9");
  back = escape_roundtrip (accents->str, 5, &n);
  g_assert_cmpstr (back, ==, "\xc3\xa9\xc3\xa9");
  g_assert_cmpuint (n, ==, 4);
  g_clear_pointer (&back, g_free);

  /* a quote at the cap is left out whole */
  back = escape_roundtrip ("ab\"", 3, &n);
  g_assert_cmpstr (back, ==, "ab");
}

/* the escaping rules written out the simple way, one character at a time,
 * with GLib's UTF-8 decoder */
static char *
reference_escape (const char *value, gsize max)
{
  GString *out = g_string_new ("\"");
  const char *p = value;
  gsize used = 0;

  while (*p != '\0')
    {
      guchar c = (guchar) *p;
      char esc[8];
      gsize n, consumed = 1;
      gunichar u;

      if (c == '"' || c == '\\')
        n = (gsize) g_snprintf (esc, sizeof esc, "\\%c", c);
      else if (c < 0x20 || c == 0x7f)
        n = (gsize) g_snprintf (esc, sizeof esc, "\\u%04x", c);
      else if (c < 0x80)
        n = (gsize) g_snprintf (esc, sizeof esc, "%c", c);
      else if ((u = g_utf8_get_char_validated (p, -1)) < 0x110000 && u != 0)
        {
          consumed = n = (gsize) (g_utf8_next_char (p) - p);
          memcpy (esc, p, n);
        }
      else
        n = (gsize) g_snprintf (esc, sizeof esc, "\\ufffd");
      if (used + n > max)
        break;
      g_string_append_len (out, esc, (gssize) n);
      used += n;
      p += consumed;
    }
  g_string_append_c (out, '"');
  return g_string_free (out, FALSE);
}

/* random strings of plain runs, quotes, controls, good and bad UTF-8,
 * under random caps: the fast escaper says exactly what the simple one does */
static void
test_escape_matches_reference (void)
{
  static const char *const pieces[] = {
    "a", "abcdefgh", "0123456789abcdef/path/segment", "\"", "\\", "\x01", "\x1f", "\x7f",
    "\t", "\xc3\xa9", "\xe6\x97\xa5", "\xf0\x9f\x98\x80", "\xff", "\xc3", "\xe2\x82",
    "\xed\xa0\x80", "\xc0\xaf", "\xf4\x90\x80\x80", "\x80", " ", "~",
  };
  GRand *rand = g_rand_new_with_seed (7);

  for (int i = 0; i < 20000; i++)
    {
      g_autoptr(GString) in = g_string_new (NULL);
      gint pieces_n = g_rand_int_range (rand, 0, 40);
      gsize max = (gsize) g_rand_int_range (rand, 0, 300);
      char buf[1024];
      g_autofree char *want = NULL;

      for (gint k = 0; k < pieces_n; k++)
        g_string_append (in, pieces[g_rand_int_range (rand, 0, G_N_ELEMENTS (pieces))]);
      want = reference_escape (in->str, max);
      weft_accesslog_escape (buf, 0, sizeof buf, in->str, max);
      if (g_strcmp0 (buf, want) != 0)
        g_test_message ("input %s, cap %" G_GSIZE_FORMAT, in->str, max);
      g_assert_cmpstr (buf, ==, want);
    }
  g_rand_free (rand);
}

static void
test_escape_null_and_small_buffers (void)
{
  char buf[16];
  g_autofree char *back = escape_roundtrip (NULL, 100, NULL);

  g_assert_null (back);
  g_assert_cmpuint (weft_accesslog_escape (buf, 0, sizeof buf, NULL, 100), ==, 4);
  g_assert_cmpstr (buf, ==, "null");
  /* the buffer bounds the output whatever the cap */
  g_assert_cmpuint (weft_accesslog_escape (buf, 0, sizeof buf, "0123456789abcdefghij", 100),
                    ==, 15);
  g_assert_cmpstr (buf, ==, "\"0123456789abc\"");
}

/* ------------------------------------------------------------------ */
/* times                                                                */
/* ------------------------------------------------------------------ */

static void
test_time_known_values (void)
{
  static const struct { gint64 us; const char *text; } cases[] = {
    { 0, "1970-01-01T00:00:00.000Z" },
    { 999, "1970-01-01T00:00:00.000Z" },
    { 1000, "1970-01-01T00:00:00.001Z" },
    { G_GINT64_CONSTANT (951782400123456), "2000-02-29T00:00:00.123Z" },
    { G_GINT64_CONSTANT (1700000000999999), "2023-11-14T22:13:20.999Z" },
    { G_GINT64_CONSTANT (4102444799500000), "2099-12-31T23:59:59.500Z" },
    { G_GINT64_CONSTANT (-5), "1970-01-01T00:00:00.000Z" },
  };
  char out[WEFT_ACCESSLOG_TIME_LEN + 1];

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_assert_cmpuint (weft_accesslog_format_time (NULL, cases[i].us, out), ==,
                        WEFT_ACCESSLOG_TIME_LEN);
      g_assert_cmpstr (out, ==, cases[i].text);
    }
}

/* random instants from 1970 to 2200, through the cache and without it,
 * against GDateTime */
static void
test_time_matches_gdatetime (void)
{
  WeftAccessLogClock clock;
  GRand *rand = g_rand_new_with_seed (42);

  weft_accesslog_clock_init (&clock);
  for (int i = 0; i < 20000; i++)
    {
      gint64 us = (gint64) (g_rand_double (rand) * 7258118400.0 * G_USEC_PER_SEC);
      g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc (us / G_USEC_PER_SEC);
      g_autofree char *date = g_date_time_format (dt, "%Y-%m-%dT%H:%M:%S");
      g_autofree char *want = g_strdup_printf ("%s.%03dZ", date, (int) (us / 1000 % 1000));
      char cached[WEFT_ACCESSLOG_TIME_LEN + 1], plain[WEFT_ACCESSLOG_TIME_LEN + 1];

      weft_accesslog_format_time (&clock, us, cached);
      weft_accesslog_format_time (NULL, us, plain);
      g_assert_cmpstr (cached, ==, want);
      g_assert_cmpstr (plain, ==, want);
      /* the same second again comes from the cache */
      weft_accesslog_format_time (&clock, us - us % G_USEC_PER_SEC, cached);
      g_assert_cmpint (strncmp (cached, want, 19), ==, 0);
      g_assert_cmpstr (cached + 19, ==, ".000Z");
    }
  g_rand_free (rand);
}

/* ------------------------------------------------------------------ */
/* lines                                                                */
/* ------------------------------------------------------------------ */

static void
test_line_fields_and_types (void)
{
  WeftAccessLogFields f = {
    .start_time_us = G_GINT64_CONSTANT (1700000000123456),
    .duration_us = 200456,
    .method = "GET",
    .authority = "service-b:8080",
    .path = "/foo?q=\"x\"&\\",
    .protocol = "HTTP/1.1",
    .status = 502,
    .response_flags = "UF,URX",
    .error_reason = "upstream_connect_failure",
    .bytes_received = 123,
    .bytes_sent = G_GUINT64_CONSTANT (18446744073709551615),
    .upstream_host = "127.0.0.1:9",
    .upstream_cluster = "app",
    .request_id = "4bf92f35-77b3-4da6-a3ce-929d0e0e4736",
    .trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
    .downstream_peer = "127.0.0.2",
    .route_name = "reviews/v2",
    .listener = "inbound",
    .direction = "inbound",
    .user_agent = "curl/8\x01\xff",
  };
  char line[WEFT_ACCESSLOG_LINE_MAX];
  g_autoptr(JsonParser) parser = json_parser_new ();
  gsize len = weft_accesslog_format_line (line, NULL, &f);
  JsonObject *o = parse_line (line, len, parser);
  static const char *const keys[] = {
    "start_time", "duration_ms", "method", "authority", "path", "protocol", "status",
    "response_flags", "error_reason", "bytes_received", "bytes_sent", "upstream_host",
    "upstream_cluster", "request_id", "trace_id", "downstream_peer", "peer_principal",
    "route_name", "listener", "direction", "user_agent",
  };
  g_autoptr(GList) members = json_object_get_members (o);
  guint k = 0;

  /* every key, in the documented order, and nothing else */
  for (GList *m = members; m != NULL; m = m->next, k++)
    g_assert_cmpstr (m->data, ==, keys[k]);
  g_assert_cmpuint (k, ==, G_N_ELEMENTS (keys));
  g_assert_cmpstr (json_object_get_string_member (o, "start_time"), ==,
                   "2023-11-14T22:13:20.123Z");
  g_assert_cmpint (json_node_get_value_type (json_object_get_member (o, "duration_ms")), ==,
                   G_TYPE_DOUBLE);
  g_assert_cmpfloat_with_epsilon (json_object_get_double_member (o, "duration_ms"), 200.456,
                                  1e-9);
  g_assert_nonnull (strstr (line, "\"duration_ms\":200.456,"));
  g_assert_cmpstr (json_object_get_string_member (o, "path"), ==, f.path);
  g_assert_cmpint (json_object_get_int_member (o, "status"), ==, 502);
  g_assert_cmpstr (json_object_get_string_member (o, "response_flags"), ==, "UF,URX");
  g_assert_cmpint (json_object_get_int_member (o, "bytes_received"), ==, 123);
  g_assert_nonnull (strstr (line, "\"bytes_sent\":18446744073709551615,"));
  g_assert_cmpstr (json_object_get_string_member (o, "upstream_host"), ==, "127.0.0.1:9");
  g_assert_cmpstr (json_object_get_string_member (o, "trace_id"), ==, f.trace_id);
  g_assert_true (json_object_get_null_member (o, "peer_principal"));
  g_assert_cmpstr (json_object_get_string_member (o, "user_agent"), ==,
                   "curl/8\x01\xef\xbf\xbd");
}

static void
test_line_nulls_and_defaults (void)
{
  WeftAccessLogFields f = { .start_time_us = 1000, .method = "GET", .path = "/" };
  char line[WEFT_ACCESSLOG_LINE_MAX];
  g_autoptr(JsonParser) parser = json_parser_new ();
  gsize len = weft_accesslog_format_line (line, NULL, &f);
  JsonObject *o = parse_line (line, len, parser);
  static const char *const nulls[] = {
    "authority", "protocol", "error_reason", "upstream_host", "upstream_cluster", "request_id",
    "trace_id", "downstream_peer", "peer_principal", "route_name", "listener", "direction",
    "user_agent",
  };

  for (guint i = 0; i < G_N_ELEMENTS (nulls); i++)
    g_assert_true (json_object_get_null_member (o, nulls[i]));
  g_assert_cmpint (json_object_get_int_member (o, "status"), ==, 0);
  g_assert_cmpstr (json_object_get_string_member (o, "response_flags"), ==, "-");
  g_assert_nonnull (strstr (line, "\"duration_ms\":0.000,"));
}

/* every field at its worst: long, all escapes, invalid bytes; the line
 * stays within its bound and is valid JSON */
static void
test_line_is_bounded (void)
{
  g_autofree char *controls = g_strnfill (20000, '\x02');
  g_autofree char *bad = g_strnfill (20000, '\xff');
  WeftAccessLogFields f = {
    .start_time_us = G_GINT64_CONSTANT (1700000000000000), .duration_us = G_MAXINT64,
    .method = controls, .authority = bad, .path = controls, .protocol = bad,
    .status = G_MAXUINT, .response_flags = controls, .error_reason = bad,
    .bytes_received = G_MAXUINT64, .bytes_sent = G_MAXUINT64, .upstream_host = controls,
    .upstream_cluster = bad, .request_id = controls, .trace_id = bad,
    .downstream_peer = controls, .peer_principal = bad, .route_name = controls,
    .listener = bad, .direction = controls, .user_agent = bad,
  };
  char line[WEFT_ACCESSLOG_LINE_MAX];
  g_autoptr(JsonParser) parser = json_parser_new ();
  gsize len = weft_accesslog_format_line (line, NULL, &f);
  JsonObject *o = parse_line (line, len, parser);

  g_test_message ("worst line: %" G_GSIZE_FORMAT " bytes", len);
  g_assert_cmpuint (strlen (json_object_get_string_member (o, "path")), ==,
                    WEFT_ACCESSLOG_CAP_PATH / 6);
  g_assert_cmpstr (json_object_get_string_member (o, "user_agent"), !=, "");
}

/* ------------------------------------------------------------------ */
/* traceparent                                                          */
/* ------------------------------------------------------------------ */

static void
test_traceparent (void)
{
  static const struct { const char *value; const char *id; } cases[] = {
    { "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "4bf92f3577b34da6a3ce929d0e0e4736" },
    { "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-later",
      "4bf92f3577b34da6a3ce929d0e0e4736" },
    { "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", NULL },  /* uppercase */
    { "00-00000000000000000000000000000000-00f067aa0ba902b7-01", NULL },  /* zero trace */
    { "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", NULL },  /* zero parent */
    { "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", NULL },  /* version ff */
    { "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", NULL }, /* 00 is 55 */
    { "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", NULL },
    { "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", NULL },   /* short */
    { "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", NULL },
    { "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", NULL },
    { "", NULL },
    { NULL, NULL },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      char id[33] = "";
      gboolean ok = weft_accesslog_traceparent_trace_id (cases[i].value, id);
      g_assert_cmpint (ok, ==, cases[i].id != NULL);
      if (ok)
        g_assert_cmpstr (id, ==, cases[i].id);
    }
}

/* ------------------------------------------------------------------ */
/* settings                                                             */
/* ------------------------------------------------------------------ */

static gboolean
parse_settings (const char *yaml, WeftAccessLogSettings *s, GError **error)
{
  g_autoptr(WeftConfig) weft = weft_config_load_data ("log.yaml", yaml, strlen (yaml), error);

  g_assert_nonnull (weft);
  return weft_accesslog_settings_parse (g_hash_table_lookup (weft->plugin_nodes, "accesslog"),
                                        s, error);
}

static void
test_settings_errors (void)
{
  static const struct { const char *yaml; const char *want; } cases[] = {
    { "accesslog:\n  path: /nonexistent-weft-dir/access.log\n",
      "log.yaml:2:9: access log: cannot open '/nonexistent-weft-dir/access.log': No such file" },
    { "accesslog:\n  path: /\n", "log.yaml:2:9: access log: cannot open '/': Is a directory" },
    { "accesslog:\n  path: \"\"\n", "log.yaml:2:9: 'path' is empty" },
    { "accesslog:\n  path: [a]\n", "log.yaml:2:9:" },
    { "accesslog:\n  buffer: 1KiB\n", "log.yaml:2:11: 'buffer' must be between 64KiB and 1GiB" },
    { "accesslog:\n  buffer: 4GiB\n", "log.yaml:2:11: 'buffer' must be between" },
    { "accesslog:\n  buffer: lots\n", "log.yaml:2:11: invalid size 'lots'" },
    { "accesslog:\n  path: \"-\"\n  format: text\n", "log.yaml:3:3:" },
    { "accesslog: [stdout]\n", "log.yaml:1:12:" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      WeftAccessLogSettings s = { 0 };
      g_autoptr(GError) error = NULL;

      g_assert_false (parse_settings (cases[i].yaml, &s, &error));
      g_assert_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG);
      g_test_message ("%s", error->message);
      g_assert_true (g_str_has_prefix (error->message, cases[i].want));
      g_assert_cmpint (s.fd, ==, -1);
      weft_accesslog_settings_clear (&s);
    }
}

static void
test_settings_defaults_and_file (void)
{
  g_autofree char *dir = g_dir_make_tmp ("weft-accesslog-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "access.log", NULL);
  g_autofree char *yaml = g_strdup_printf ("accesslog:\n  path: %s\n  buffer: 64KiB\n", path);
  g_autofree char *key = NULL;
  WeftAccessLogSettings s = { 0 };
  g_autoptr(GError) error = NULL;
  struct stat st;

  g_assert_true (parse_settings ("listeners: []\n", &s, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (s.path, ==, "-");
  g_assert_cmpstr (s.key, ==, "stdout");
  g_assert_cmpuint (s.buffer, ==, 1024 * 1024);
  g_assert_cmpint (s.fd, >=, 0);
  weft_accesslog_settings_clear (&s);

  umask (022);
  g_assert_true (parse_settings (yaml, &s, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (s.buffer, ==, 64 * 1024);
  g_assert_cmpstr (s.key, ==, path);
  /* created at load, for appending, mode 0640 */
  g_assert_cmpint (stat (path, &st), ==, 0);
  g_assert_true (S_ISREG (st.st_mode));
  g_assert_cmpint (st.st_mode & 0777, ==, 0640);
  g_assert_cmpint (fcntl (s.fd, F_GETFL) & O_APPEND, ==, O_APPEND);
  weft_accesslog_settings_clear (&s);

  key = weft_accesslog_destination_key ("/dev/stdout");
  g_assert_cmpstr (key, ==, "stdout");
  g_unlink (path);
  g_rmdir (dir);
}

/* ------------------------------------------------------------------ */
/* the writer                                                           */
/* ------------------------------------------------------------------ */

typedef struct {
  WeftAccessLogCounters counters;
} Counters;

static void
counters_init (Counters *c)
{
  static guint n;
  g_autofree char *written = g_strdup_printf ("test_written_%u", n);
  g_autofree char *dropped = g_strdup_printf ("test_dropped_%u", n);
  g_autofree char *errors = g_strdup_printf ("test_errors_%u", n);
  g_autofree char *reopens = g_strdup_printf ("test_reopens_%u", n++);

  c->counters.written = weft_metric_get_series (
      weft_metrics_register (WEFT_METRIC_COUNTER, written, NULL, NULL, NULL, 0), NULL);
  c->counters.dropped = weft_metric_get_series (
      weft_metrics_register (WEFT_METRIC_COUNTER, dropped, NULL, NULL, NULL, 0), NULL);
  c->counters.write_errors = weft_metric_get_series (
      weft_metrics_register (WEFT_METRIC_COUNTER, errors, NULL, NULL, NULL, 0), NULL);
  c->counters.reopens = weft_metric_get_series (
      weft_metrics_register (WEFT_METRIC_COUNTER, reopens, NULL, NULL, NULL, 0), NULL);
}

static WeftAccessLogWriter *
writer_on (const char *path, guint n_workers, gsize buffer, Counters *c)
{
  g_autoptr(GError) error = NULL;
  int fd = weft_accesslog_destination_open (path, &error);
  WeftAccessLogWriter *w;

  g_assert_no_error (error);
  counters_init (c);
  w = weft_accesslog_writer_new (NULL, path, fd, n_workers, buffer, &c->counters, &error);
  g_assert_no_error (error);
  return w;
}

typedef struct {
  WeftAccessLogWriter *writer;
  guint                worker;
  guint                n;
  guint                accepted;
} Producer;

static gpointer
produce (gpointer data)
{
  Producer *p = data;
  char line[128];

  for (guint i = 0; i < p->n; i++)
    {
      int len = g_snprintf (line, sizeof line, "{\"worker\":%u,\"seq\":%u,\"pad\":\"%s\"}\n",
                            p->worker, i, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
      while (!weft_accesslog_writer_push (p->writer, p->worker, line, (gsize) len))
        g_usleep (100);   /* this test wants every line: wait for room */
      p->accepted++;
    }
  return NULL;
}

/* @text split at '\n' into a NULL-terminated array; a memchr walk, since
 * the sanitizers' strstr (under g_strsplit) rescans the rest every time */
static char **
split_lines (const char *text, gsize len, guint *n)
{
  GPtrArray *out = g_ptr_array_new ();
  const char *p = text, *end = text + len, *nl;

  g_assert_true (len == 0 || text[len - 1] == '\n');
  while ((nl = memchr (p, '\n', (gsize) (end - p))) != NULL)
    {
      g_ptr_array_add (out, g_strndup (p, (gsize) (nl - p)));
      p = nl + 1;
    }
  *n = out->len;
  g_ptr_array_add (out, NULL);
  return (char **) g_ptr_array_free (out, FALSE);
}

static char **
read_lines (const char *path, guint *n)
{
  g_autofree char *text = NULL;
  gsize len;

  g_assert_true (g_file_get_contents (path, &text, &len, NULL));
  return split_lines (text, len, n);
}

/* four workers at once, each ring wrapping many times: every line comes
 * out whole, once, in each worker's order */
static void
test_writer_writes_every_line (void)
{
  g_autofree char *dir = g_dir_make_tmp ("weft-accesslog-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "access.log", NULL);
  Counters c;
  WeftAccessLogWriter *w = writer_on (path, 4, 64 * 1024, &c);
  Producer p[4];
  GThread *t[4];
  guint next[4] = { 0 }, n_lines;
  g_auto(GStrv) lines = NULL;

  g_assert_cmpuint (weft_accesslog_writer_get_ring_size (w), ==, 16 * 1024);
  for (guint i = 0; i < 4; i++)
    {
      p[i] = (Producer) { w, i, 20000, 0 };
      t[i] = g_thread_new ("producer", produce, &p[i]);
    }
  for (guint i = 0; i < 4; i++)
    g_thread_join (t[i]);
  weft_accesslog_writer_unref (w);

  lines = read_lines (path, &n_lines);
  g_assert_cmpuint (n_lines, ==, 80000);
  for (guint i = 0; i < n_lines; i++)
    {
      guint worker, seq;
      g_assert_cmpint (sscanf (lines[i], "{\"worker\":%u,\"seq\":%u,", &worker, &seq), ==, 2);
      g_assert_true (g_str_has_suffix (lines[i], "\"}"));
      g_assert_cmpuint (worker, <, 4);
      g_assert_cmpuint (seq, ==, next[worker]++);
    }
  g_assert_cmpint (weft_metric_series_get (c.counters.written), ==, 80000);
  g_assert_cmpint (weft_metric_series_get (c.counters.dropped), ==, 0);
  g_unlink (path);
  g_rmdir (dir);
}

/* a FIFO nobody reads: the pipe and then the ring fill, pushes are
 * refused at once, and closing gives up after its timeout and counts
 * what it could not write */
static void
test_writer_blocked_destination_drops (void)
{
  g_autofree char *dir = g_dir_make_tmp ("weft-accesslog-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "fifo", NULL);
  const char *line = "{\"a\":\"0123456789012345678901234567890123456789012345678901234\"}\n";
  gsize len = strlen (line);
  Counters c;
  WeftAccessLogWriter *w;
  int reader;
  guint accepted = 0, refused = 0;
  gint64 t0, took_ms, slowest = 0;
  gsize pipe_size;

  g_assert_cmpint (mkfifo (path, 0600), ==, 0);
  reader = open (path, O_RDONLY | O_NONBLOCK);
  g_assert_cmpint (reader, >=, 0);
  w = writer_on (path, 1, 64 * 1024, &c);
  for (guint i = 0; i < 20000; i++)
    {
      gint64 before = g_get_monotonic_time ();
      if (weft_accesslog_writer_push (w, 0, line, len))
        accepted++;
      else
        refused++;
      slowest = MAX (slowest, g_get_monotonic_time () - before);
      if (i % 1000 == 0)
        g_usleep (2000);   /* let the thread fill the pipe */
    }
  g_test_message ("accepted %u refused %u slowest push %" G_GINT64_FORMAT " us", accepted,
                  refused, slowest);
  /* only what the pipe and the ring hold was accepted */
  g_assert_cmpuint (refused, >, 15000);
  pipe_size = (gsize) fcntl (reader, F_GETPIPE_SZ);
  g_assert_cmpuint ((gsize) accepted * len, <=,
                    pipe_size + weft_accesslog_writer_get_ring_size (w));
  g_assert_cmpint (slowest, <, 100 * 1000);
  t0 = g_get_monotonic_time ();
  weft_accesslog_writer_unref (w);
  /* closing waited for the destination, but not forever */
  took_ms = (g_get_monotonic_time () - t0) / 1000;
  g_assert_cmpint (took_ms, >=, WEFT_ACCESSLOG_CLOSE_TIMEOUT_MS - 100);
  g_assert_cmpint (took_ms, <, WEFT_ACCESSLOG_CLOSE_TIMEOUT_MS + 2000);
  /* what was accepted was either written into the pipe or counted at close */
  {
    char buf[65536];
    gssize n;
    guint in_pipe = 0;
    while ((n = read (reader, buf, sizeof buf)) > 0)
      for (gssize i = 0; i < n; i++)
        in_pipe += buf[i] == '\n';
    g_assert_cmpint (weft_metric_series_get (c.counters.written), ==, in_pipe);
    g_assert_cmpint (weft_metric_series_get (c.counters.dropped) + in_pipe, ==, accepted);
    g_assert_cmpint (weft_metric_series_get (c.counters.dropped), >, 0);
  }
  close (reader);
  g_unlink (path);
  g_rmdir (dir);
}

typedef struct {
  int      fd;
  GString *data;
  gint     stop;
} SlowReader;

/* reads a little at a time, so the writer's writes come out short */
static gpointer
slow_read (gpointer data)
{
  SlowReader *r = data;
  char buf[777];

  for (;;)
    {
      gssize n = read (r->fd, buf, sizeof buf);
      if (n > 0)
        g_string_append_len (r->data, buf, n);
      else if (g_atomic_int_get (&r->stop))
        return NULL;
      else
        g_usleep (200);
    }
}

/* two workers' lines through a pipe that takes a few hundred bytes at a
 * time: a line cut by a short write is finished before another worker's
 * line starts */
static void
test_writer_short_writes_keep_lines_whole (void)
{
  g_autofree char *dir = g_dir_make_tmp ("weft-accesslog-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "fifo", NULL);
  SlowReader reader = { -1, g_string_new (NULL), 0 };
  GThread *reading, *t[2];
  Producer p[2];
  Counters c;
  WeftAccessLogWriter *w;
  g_auto(GStrv) lines = NULL;
  guint next[2] = { 0 }, n_lines;

  g_assert_cmpint (mkfifo (path, 0600), ==, 0);
  reader.fd = open (path, O_RDONLY | O_NONBLOCK);
  g_assert_cmpint (reader.fd, >=, 0);
  w = writer_on (path, 2, 64 * 1024, &c);
  reading = g_thread_new ("reader", slow_read, &reader);
  for (guint i = 0; i < 2; i++)
    {
      p[i] = (Producer) { w, i, 5000, 0 };
      t[i] = g_thread_new ("producer", produce, &p[i]);
    }
  for (guint i = 0; i < 2; i++)
    g_thread_join (t[i]);
  weft_accesslog_writer_unref (w);
  g_atomic_int_set (&reader.stop, 1);
  g_thread_join (reading);

  lines = split_lines (reader.data->str, reader.data->len, &n_lines);
  g_assert_cmpuint (n_lines, ==, 10000);
  for (guint i = 0; i < n_lines; i++)
    {
      guint worker, seq;
      g_assert_cmpint (sscanf (lines[i], "{\"worker\":%u,\"seq\":%u,", &worker, &seq), ==, 2);
      g_assert_true (g_str_has_suffix (lines[i], "\"}"));
      g_assert_cmpuint (seq, ==, next[worker]++);
    }
  g_assert_cmpint (weft_metric_series_get (c.counters.written), ==, 10000);
  close (reader.fd);
  g_string_free (reader.data, TRUE);
  g_unlink (path);
  g_rmdir (dir);
}

static void
push_n (WeftAccessLogWriter *w, guint from, guint n)
{
  for (guint i = from; i < from + n; i++)
    {
      char line[64];
      int len = g_snprintf (line, sizeof line, "{\"seq\":%u}\n", i);
      while (!weft_accesslog_writer_push (w, 0, line, (gsize) len))
        g_usleep (100);
    }
}

/* logrotate: rename, reopen, and the lines after the reopen land in the
 * new file; none is lost or split */
static void
test_writer_reopen_after_rename (void)
{
  g_autofree char *dir = g_dir_make_tmp ("weft-accesslog-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "access.log", NULL);
  g_autofree char *rotated = g_build_filename (dir, "access.log.1", NULL);
  Counters c;
  WeftAccessLogWriter *w = writer_on (path, 1, 64 * 1024, &c);
  g_auto(GStrv) old_lines = NULL, new_lines = NULL;
  guint n_old, n_new;

  push_n (w, 0, 1000);
  g_assert_cmpint (g_rename (path, rotated), ==, 0);
  push_n (w, 1000, 1000);   /* before the reopen: still the old file */
  weft_accesslog_writer_reopen (w);
  /* the reopen has happened once the new file exists */
  for (int i = 0; i < 500 && !g_file_test (path, G_FILE_TEST_EXISTS); i++)
    g_usleep (10000);
  g_assert_true (g_file_test (path, G_FILE_TEST_EXISTS));
  push_n (w, 2000, 1000);
  weft_accesslog_writer_unref (w);

  old_lines = read_lines (rotated, &n_old);
  new_lines = read_lines (path, &n_new);
  g_assert_cmpuint (n_old, >=, 2000);
  g_assert_cmpuint (n_old + n_new, ==, 3000);
  g_assert_cmpuint (n_new, >=, 1000);
  g_assert_cmpstr (old_lines[0], ==, "{\"seq\":0}");
  g_assert_cmpstr (new_lines[n_new - 1], ==, "{\"seq\":2999}");
  /* one sequence across both files */
  for (guint i = 0; i < n_old + n_new; i++)
    {
      g_autofree char *want = g_strdup_printf ("{\"seq\":%u}", i);
      g_assert_cmpstr (i < n_old ? old_lines[i] : new_lines[i - n_old], ==, want);
    }
  g_assert_cmpint (weft_metric_series_get (c.counters.reopens), ==, 1);
  g_assert_cmpint (weft_metric_series_get (c.counters.written), ==, 3000);
  g_unlink (path);
  g_unlink (rotated);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  weft_metrics_init (4);
  g_test_add_func ("/accesslog/escape/quotes-and-backslashes", test_escape_quotes_and_backslashes);
  g_test_add_func ("/accesslog/escape/control-characters", test_escape_control_characters);
  g_test_add_func ("/accesslog/escape/invalid-utf8", test_escape_invalid_utf8);
  g_test_add_func ("/accesslog/escape/truncates-at-a-boundary",
                   test_escape_truncates_at_a_boundary);
  g_test_add_func ("/accesslog/escape/null-and-small-buffers", test_escape_null_and_small_buffers);
  g_test_add_func ("/accesslog/escape/matches-reference", test_escape_matches_reference);
  g_test_add_func ("/accesslog/time/known-values", test_time_known_values);
  g_test_add_func ("/accesslog/time/matches-gdatetime", test_time_matches_gdatetime);
  g_test_add_func ("/accesslog/line/fields-and-types", test_line_fields_and_types);
  g_test_add_func ("/accesslog/line/nulls-and-defaults", test_line_nulls_and_defaults);
  g_test_add_func ("/accesslog/line/is-bounded", test_line_is_bounded);
  g_test_add_func ("/accesslog/traceparent", test_traceparent);
  g_test_add_func ("/accesslog/settings/errors", test_settings_errors);
  g_test_add_func ("/accesslog/settings/defaults-and-file", test_settings_defaults_and_file);
  g_test_add_func ("/accesslog/writer/writes-every-line", test_writer_writes_every_line);
  g_test_add_func ("/accesslog/writer/blocked-destination-drops",
                   test_writer_blocked_destination_drops);
  g_test_add_func ("/accesslog/writer/short-writes-keep-lines-whole",
                   test_writer_short_writes_keep_lines_whole);
  g_test_add_func ("/accesslog/writer/reopen-after-rename", test_writer_reopen_after_rename);
  return g_test_run ();
}
