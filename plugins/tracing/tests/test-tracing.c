/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The tracing plugin's pure parts: traceparent and B3 parsing and writing,
 * span ids, the OTLP and Zipkin encodings (parsed back with json-glib), the
 * span queue under two threads, the settings, and loading libsoup.
 */
#include <string.h>
#include <glib.h>
#include <json-glib/json-glib.h>

#include "weft-config-private.h"
#include "weft-tracing-private.h"
#include "weft-tracing-soup-private.h"

#define TRACE "4bf92f3577b34da6a3ce929d0e0e4736"
#define SPAN  "00f067aa0ba902b7"

/* ------------------------------------------------------------------ */
/* traceparent                                                          */
/* ------------------------------------------------------------------ */

static void
test_traceparent_valid (void)
{
  WeftTraceParent p;

  g_assert_true (weft_trace_parse_traceparent ("00-" TRACE "-" SPAN "-01", &p));
  g_assert_cmpint (p.source, ==, WEFT_TRACE_SOURCE_W3C);
  g_assert_cmpstr (p.trace_id, ==, TRACE);
  g_assert_cmpstr (p.span_id, ==, SPAN);
  g_assert_cmpint (p.decision, ==, WEFT_TRACE_DECISION_SAMPLE);

  g_assert_true (weft_trace_parse_traceparent ("00-" TRACE "-" SPAN "-00", &p));
  g_assert_cmpint (p.decision, ==, WEFT_TRACE_DECISION_DROP);
  /* only bit 0 means sampled; other flags do not change that */
  g_assert_true (weft_trace_parse_traceparent ("00-" TRACE "-" SPAN "-03", &p));
  g_assert_cmpint (p.decision, ==, WEFT_TRACE_DECISION_SAMPLE);
  g_assert_true (weft_trace_parse_traceparent ("00-" TRACE "-" SPAN "-02", &p));
  g_assert_cmpint (p.decision, ==, WEFT_TRACE_DECISION_DROP);
  /* a later version may append fields after a dash */
  g_assert_true (weft_trace_parse_traceparent ("01-" TRACE "-" SPAN "-01-what-ever", &p));
  g_assert_cmpstr (p.trace_id, ==, TRACE);
  g_assert_true (weft_trace_parse_traceparent ("cc-" TRACE "-" SPAN "-01", &p));
}

static void
test_traceparent_invalid (void)
{
  static const char *const bad[] = {
    "",
    "00",
    "00-" TRACE "-" SPAN,                                     /* no flags */
    "00-4BF92F3577B34DA6A3CE929D0E0E4736-" SPAN "-01",        /* uppercase trace id */
    "00-" TRACE "-00F067AA0BA902B7-01",                       /* uppercase span id */
    "00-" TRACE "-" SPAN "-0A",                               /* uppercase flags */
    "0A-" TRACE "-" SPAN "-01",                               /* uppercase version */
    "00-00000000000000000000000000000000-" SPAN "-01",        /* zero trace id */
    "00-" TRACE "-0000000000000000-01",                       /* zero span id */
    "ff-" TRACE "-" SPAN "-01",                               /* version ff */
    "00-" TRACE "-" SPAN "-01-extra",                         /* version 00 is 55 long */
    "01-" TRACE "-" SPAN "-01x",                              /* later version, no dash */
    "00-" TRACE "0-" SPAN "-01",                              /* trace id too long */
    "00-4bf92f3577b34da6a3ce929d0e0e473-" SPAN "0-01",        /* trace id too short */
    "00_" TRACE "-" SPAN "-01",                               /* wrong separator */
    "00-" TRACE "-" SPAN "-0g",                               /* flags not hex */
    "zz-" TRACE "-" SPAN "-01",                               /* version not hex */
    "00-4bf92f3577b34da6a3ce929d0e0e473g-" SPAN "-01",        /* non-hex in trace id */
    " 00-" TRACE "-" SPAN "-01",
  };
  WeftTraceParent p;

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_test_message ("traceparent '%s'", bad[i]);
      g_assert_false (weft_trace_parse_traceparent (bad[i], &p));
      g_assert_cmpint (p.source, ==, WEFT_TRACE_SOURCE_NONE);
      g_assert_cmpint (p.decision, ==, WEFT_TRACE_DECISION_NONE);
      g_assert_cmpstr (p.trace_id, ==, "");
    }
  g_assert_false (weft_trace_parse_traceparent (NULL, &p));
}

/* ------------------------------------------------------------------ */
/* B3                                                                   */
/* ------------------------------------------------------------------ */

static void
test_b3_single (void)
{
  WeftTraceParent p;

  g_assert_true (weft_trace_parse_b3_single (TRACE "-" SPAN "-1-" "e457b5a2e4d86bd1", &p));
  g_assert_cmpint (p.source, ==, WEFT_TRACE_SOURCE_B3_SINGLE);
  g_assert_cmpstr (p.trace_id, ==, TRACE);
  g_assert_cmpstr (p.span_id, ==, SPAN);
  g_assert_cmpint (p.decision, ==, WEFT_TRACE_DECISION_SAMPLE);
  g_assert_false (p.short_b3);

  /* a 64-bit trace id is padded to 128 bits */
  g_assert_true (weft_trace_parse_b3_single ("a3ce929d0e0e4736-" SPAN, &p));
  g_assert_cmpstr (p.trace_id, ==, "0000000000000000a3ce929d0e0e4736");
  g_assert_true (p.short_b3);
  g_assert_cmpint (p.decision, ==, WEFT_TRACE_DECISION_NONE);

  g_assert_true (weft_trace_parse_b3_single (TRACE "-" SPAN "-0", &p));
  g_assert_cmpint (p.decision, ==, WEFT_TRACE_DECISION_DROP);
  g_assert_true (weft_trace_parse_b3_single (TRACE "-" SPAN "-d", &p));
  g_assert_cmpint (p.decision, ==, WEFT_TRACE_DECISION_DEBUG);

  /* a decision alone: no parent, but it counts */
  g_assert_false (weft_trace_parse_b3_single ("0", &p));
  g_assert_cmpint (p.decision, ==, WEFT_TRACE_DECISION_DROP);
  g_assert_false (weft_trace_parse_b3_single ("d", &p));
  g_assert_cmpint (p.decision, ==, WEFT_TRACE_DECISION_DEBUG);
}

static void
test_b3_single_invalid (void)
{
  static const char *const bad[] = {
    "",
    "x",
    TRACE,
    TRACE "-" SPAN "-x",                               /* bad sampling state */
    TRACE "-" SPAN "-1-e457b5a2e4d86bd",               /* parent too short */
    TRACE "-" SPAN "-1-e457b5a2e4d86bd1-more",         /* a fifth field */
    TRACE "-00f067aa0ba902b",                          /* span id too short */
    "4BF92F3577B34DA6A3CE929D0E0E4736-" SPAN,          /* uppercase */
    "00000000000000000000000000000000-" SPAN "-1",     /* zero trace id */
    TRACE "-0000000000000000-1",                       /* zero span id */
    "4bf92f3577b34da6a3ce929d0e0e47-" SPAN,            /* 30 digits */
  };
  WeftTraceParent p;

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_test_message ("b3 '%s'", bad[i]);
      g_assert_false (weft_trace_parse_b3_single (bad[i], &p));
      g_assert_cmpint (p.source, ==, WEFT_TRACE_SOURCE_NONE);
      g_assert_cmpint (p.decision, ==, WEFT_TRACE_DECISION_NONE);
      g_assert_cmpstr (p.trace_id, ==, "");
    }
}

static void
test_b3_multi (void)
{
  WeftTraceHeaders h = { NULL };
  WeftTraceParent p;

  h.x_b3_traceid = TRACE;
  h.x_b3_spanid = SPAN;
  h.x_b3_sampled = "1";
  g_assert_true (weft_trace_parse_b3_multi (&h, &p));
  g_assert_cmpint (p.source, ==, WEFT_TRACE_SOURCE_B3_MULTI);
  g_assert_cmpstr (p.trace_id, ==, TRACE);
  g_assert_cmpstr (p.span_id, ==, SPAN);
  g_assert_cmpint (p.decision, ==, WEFT_TRACE_DECISION_SAMPLE);

  h.x_b3_traceid = "a3ce929d0e0e4736";
  h.x_b3_sampled = "0";
  g_assert_true (weft_trace_parse_b3_multi (&h, &p));
  g_assert_true (p.short_b3);
  g_assert_cmpstr (p.trace_id, ==, "0000000000000000a3ce929d0e0e4736");
  g_assert_cmpint (p.decision, ==, WEFT_TRACE_DECISION_DROP);

  h.x_b3_sampled = "true";
  g_assert_true (weft_trace_parse_b3_multi (&h, &p));
  g_assert_cmpint (p.decision, ==, WEFT_TRACE_DECISION_SAMPLE);
  /* debug wins over sampled */
  h.x_b3_sampled = "0";
  h.x_b3_flags = "1";
  g_assert_true (weft_trace_parse_b3_multi (&h, &p));
  g_assert_cmpint (p.decision, ==, WEFT_TRACE_DECISION_DEBUG);
  h.x_b3_flags = NULL;

  /* a bad span id: no parent, the decision stays */
  h.x_b3_spanid = "00f067aa0ba902b7aa";
  g_assert_false (weft_trace_parse_b3_multi (&h, &p));
  g_assert_cmpint (p.decision, ==, WEFT_TRACE_DECISION_DROP);
  g_assert_cmpstr (p.trace_id, ==, "");
  h.x_b3_spanid = SPAN;
  h.x_b3_traceid = "0000000000000000";
  g_assert_false (weft_trace_parse_b3_multi (&h, &p));
  h.x_b3_traceid = "A3CE929D0E0E4736";
  g_assert_false (weft_trace_parse_b3_multi (&h, &p));
  h.x_b3_traceid = TRACE;
  h.x_b3_parentspanid = "nothex";
  g_assert_false (weft_trace_parse_b3_multi (&h, &p));
  h.x_b3_parentspanid = "e457b5a2e4d86bd1";
  g_assert_true (weft_trace_parse_b3_multi (&h, &p));
  /* no ids at all: a decision alone */
  memset (&h, 0, sizeof h);
  h.x_b3_sampled = "1";
  g_assert_false (weft_trace_parse_b3_multi (&h, &p));
  g_assert_cmpint (p.decision, ==, WEFT_TRACE_DECISION_SAMPLE);
}

static void
test_extract_precedence (void)
{
  WeftTraceHeaders h = { NULL };
  WeftTraceParent p;

  h.traceparent = "00-" TRACE "-" SPAN "-00";
  h.b3 = "a3ce929d0e0e4736a3ce929d0e0e4736-e457b5a2e4d86bd1-1";
  h.x_b3_traceid = "11111111111111111111111111111111";
  h.x_b3_spanid = "2222222222222222";
  weft_trace_extract (&h, &p);
  g_assert_cmpint (p.source, ==, WEFT_TRACE_SOURCE_W3C);
  g_assert_cmpint (p.decision, ==, WEFT_TRACE_DECISION_DROP);

  /* B3 says the trace id is 64-bit and debug: kept for the B3 written back */
  h.b3 = "a3ce929d0e0e4736-e457b5a2e4d86bd1-d";
  h.traceparent = "00-" TRACE "-" SPAN "-01";
  weft_trace_extract (&h, &p);
  g_assert_cmpint (p.source, ==, WEFT_TRACE_SOURCE_W3C);
  g_assert_true (p.short_b3);
  g_assert_cmpint (p.decision, ==, WEFT_TRACE_DECISION_DEBUG);
  h.b3 = "a3ce929d0e0e4736a3ce929d0e0e4736-e457b5a2e4d86bd1-1";

  /* a malformed traceparent is ignored: B3 single is next */
  h.traceparent = "00-" TRACE "-" SPAN "-0";
  weft_trace_extract (&h, &p);
  g_assert_cmpint (p.source, ==, WEFT_TRACE_SOURCE_B3_SINGLE);
  g_assert_cmpstr (p.span_id, ==, "e457b5a2e4d86bd1");
  g_assert_cmpint (p.decision, ==, WEFT_TRACE_DECISION_SAMPLE);

  h.b3 = "garbage";
  weft_trace_extract (&h, &p);
  g_assert_cmpint (p.source, ==, WEFT_TRACE_SOURCE_B3_MULTI);
  g_assert_cmpstr (p.span_id, ==, "2222222222222222");

  /* nothing valid: a new trace, no decision */
  h.x_b3_spanid = "short";
  weft_trace_extract (&h, &p);
  g_assert_cmpint (p.source, ==, WEFT_TRACE_SOURCE_NONE);
  g_assert_cmpint (p.decision, ==, WEFT_TRACE_DECISION_NONE);
  g_assert_cmpstr (p.trace_id, ==, "");

  /* b3: 0 alone still says "do not sample" */
  memset (&h, 0, sizeof h);
  h.b3 = "0";
  weft_trace_extract (&h, &p);
  g_assert_cmpint (p.source, ==, WEFT_TRACE_SOURCE_NONE);
  g_assert_cmpint (p.decision, ==, WEFT_TRACE_DECISION_DROP);

  memset (&h, 0, sizeof h);
  weft_trace_extract (&h, &p);
  g_assert_cmpint (p.source, ==, WEFT_TRACE_SOURCE_NONE);
  g_assert_cmpint (p.decision, ==, WEFT_TRACE_DECISION_NONE);
}

static void
test_headers_take (void)
{
  WeftTraceHeaders h = { NULL };

  g_assert_true (weft_trace_headers_take (&h, "TraceParent", "first"));
  g_assert_true (weft_trace_headers_take (&h, "traceparent", "second"));
  g_assert_cmpstr (h.traceparent, ==, "first");
  g_assert_true (weft_trace_headers_take (&h, "X-B3-TraceId", "t"));
  g_assert_true (weft_trace_headers_take (&h, "x-b3-spanid", "s"));
  g_assert_true (weft_trace_headers_take (&h, "X-B3-ParentSpanId", "p"));
  g_assert_true (weft_trace_headers_take (&h, "x-b3-sampled", "1"));
  g_assert_true (weft_trace_headers_take (&h, "X-B3-Flags", "1"));
  g_assert_true (weft_trace_headers_take (&h, "B3", "b"));
  g_assert_true (weft_trace_headers_take (&h, "tracestate", "v=1"));
  g_assert_cmpstr (h.x_b3_traceid, ==, "t");
  g_assert_cmpstr (h.x_b3_spanid, ==, "s");
  g_assert_cmpstr (h.x_b3_parentspanid, ==, "p");
  g_assert_cmpstr (h.x_b3_sampled, ==, "1");
  g_assert_cmpstr (h.x_b3_flags, ==, "1");
  g_assert_cmpstr (h.b3, ==, "b");
  g_assert_cmpstr (h.tracestate, ==, "v=1");
  g_assert_false (weft_trace_headers_take (&h, "x-b3-other", "x"));
  g_assert_false (weft_trace_headers_take (&h, "b3x", "x"));
  g_assert_false (weft_trace_headers_take (&h, "x-request-id", "x"));
  g_assert_false (weft_trace_headers_take (&h, "host", "x"));
  /* same length or first letter as a propagation header, but not one */
  g_assert_false (weft_trace_headers_take (&h, "traceparenT2", "x"));
  g_assert_false (weft_trace_headers_take (&h, "tracestat", "x"));
  g_assert_false (weft_trace_headers_take (&h, "traceparens", "x"));
  g_assert_false (weft_trace_headers_take (&h, "tracestatf", "x"));
  g_assert_false (weft_trace_headers_take (&h, "bb", "x"));
  g_assert_false (weft_trace_headers_take (&h, "x-b3-traceie", "x"));
  g_assert_false (weft_trace_headers_take (&h, "x-b3-sampleD2", "x"));
  g_assert_false (weft_trace_headers_take (&h, "x-b3-zampled", "x"));
  g_assert_false (weft_trace_headers_take (&h, "x-b3-spanix", "x"));
  g_assert_false (weft_trace_headers_take (&h, "x-b3-flagz", "x"));
  g_assert_false (weft_trace_headers_take (&h, "x-b4-flags", "x"));
  g_assert_false (weft_trace_headers_take (&h, "x", "x"));
  g_assert_false (weft_trace_headers_take (&h, "t", "x"));
  g_assert_false (weft_trace_headers_take (&h, "b", "x"));
}

/* the quick filter passes every propagation header, in any case */
static void
test_header_candidate (void)
{
  static const char *const names[] = {
    "traceparent", "TRACEPARENT", "tracestate", "b3", "B3", "x-b3-traceid", "X-B3-TRACEID",
    "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "X-b3-Flags", NULL
  };

  for (guint i = 0; names[i] != NULL; i++)
    g_assert_true (weft_trace_header_candidate (names[i]));
  g_assert_false (weft_trace_header_candidate ("host"));
  g_assert_false (weft_trace_header_candidate ("x-request-id"));
  g_assert_false (weft_trace_header_candidate ("x-forwarded-for"));
  g_assert_false (weft_trace_header_candidate ("bx"));
  g_assert_false (weft_trace_header_candidate ("user-agent"));
  g_assert_false (weft_trace_header_candidate ("x"));
}

/* ------------------------------------------------------------------ */
/* ids and writing                                                      */
/* ------------------------------------------------------------------ */

static guint64
test_random64 (GRand *rand)
{
  return (guint64) g_rand_int (rand) << 32 | g_rand_int (rand);
}

static gboolean
test_lower_hex (const char *s, gsize n)
{
  if (strlen (s) != n)
    return FALSE;
  for (gsize i = 0; i < n; i++)
    if (!g_ascii_isxdigit (s[i]) || g_ascii_isupper (s[i]))
      return FALSE;
  return TRUE;
}

/* the hex digits against printf's, for edge values and random ones */
static void
test_hex64 (void)
{
  static const guint64 edges[] = {
    0, 1, 9, 10, 15, 16, 0x99, 0x9a, 0xff, G_GUINT64_CONSTANT (0x0123456789abcdef),
    G_GUINT64_CONSTANT (0xfedcba9876543210), G_GUINT64_CONSTANT (0x8000000000000000),
    G_GUINT64_CONSTANT (0x00000000ffffffff), G_GUINT64_CONSTANT (0xffffffff00000000),
    G_MAXUINT64,
  };
  GRand *rand = g_rand_new_with_seed (7);
  char got[17];
  char want[17];

  for (guint i = 0; i < G_N_ELEMENTS (edges) + 100000; i++)
    {
      guint64 v = i < G_N_ELEMENTS (edges) ? edges[i] : test_random64 (rand);
      /* a guard byte: exactly 16 digits are written, no NUL */
      got[16] = '#';
      weft_trace_hex64 (got, v);
      g_assert_cmpint (got[16], ==, '#');
      got[16] = '\0';
      g_snprintf (want, sizeof want, "%016" G_GINT64_MODIFIER "x", v);
      g_assert_cmpstr (got, ==, want);
    }
  g_rand_free (rand);
}

static void
test_ids (void)
{
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  GRand *rand = g_rand_new_with_seed (42);
  char span[WEFT_SPAN_ID_HEX + 1];
  char trace[WEFT_TRACE_ID_HEX + 1];
  char tp[WEFT_TRACEPARENT_MAX];
  WeftTraceParent p;

  for (guint i = 0; i < 10000; i++)
    {
      weft_trace_format_span_id (span, test_random64 (rand));
      g_assert_true (test_lower_hex (span, WEFT_SPAN_ID_HEX));
      g_assert_true (g_hash_table_add (seen, g_strdup (span)));
    }
  weft_trace_format_trace_id (trace, test_random64 (rand), test_random64 (rand));
  g_assert_true (test_lower_hex (trace, WEFT_TRACE_ID_HEX));
  /* the high bits come first */
  weft_trace_format_trace_id (trace, G_GUINT64_CONSTANT (0x4bf92f3577b34da6),
                              G_GUINT64_CONSTANT (0xa3ce929d0e0e4736));
  g_assert_cmpstr (trace, ==, "4bf92f3577b34da6a3ce929d0e0e4736");
  weft_trace_format_trace_id (trace, 0, 0xab);
  g_assert_cmpstr (trace, ==, "000000000000000000000000000000ab");
  weft_trace_format_trace_id (trace, 1, 0);
  g_assert_cmpstr (trace, ==, "00000000000000010000000000000000");
  weft_trace_format_span_id (span, G_GUINT64_CONSTANT (0x00f067aa0ba902b7));
  g_assert_cmpstr (span, ==, "00f067aa0ba902b7");
  /* an all-zero draw still gives a valid id */
  weft_trace_format_span_id (span, 0);
  weft_trace_format_trace_id (trace, 0, 0);
  g_assert_cmpstr (span, ==, "0000000000000001");
  g_assert_cmpstr (trace, ==, "00000000000000000000000000000001");
  weft_trace_format_traceparent (tp, trace, span, TRUE);
  g_assert_true (weft_trace_parse_traceparent (tp, &p));
  g_rand_free (rand);
}

static void
test_format (void)
{
  char tp[WEFT_TRACEPARENT_MAX];
  char b3[WEFT_B3_MAX];
  WeftTraceParent p;

  weft_trace_format_traceparent (tp, TRACE, SPAN, TRUE);
  g_assert_cmpstr (tp, ==, "00-" TRACE "-" SPAN "-01");
  weft_trace_format_traceparent (tp, TRACE, SPAN, FALSE);
  g_assert_cmpstr (tp, ==, "00-" TRACE "-" SPAN "-00");
  g_assert_true (weft_trace_parse_traceparent (tp, &p));
  g_assert_cmpint (p.decision, ==, WEFT_TRACE_DECISION_DROP);

  weft_trace_format_b3 (b3, TRACE, FALSE, SPAN, WEFT_TRACE_DECISION_SAMPLE, "e457b5a2e4d86bd1");
  g_assert_cmpstr (b3, ==, TRACE "-" SPAN "-1-e457b5a2e4d86bd1");
  g_assert_true (weft_trace_parse_b3_single (b3, &p));
  weft_trace_format_b3 (b3, "0000000000000000a3ce929d0e0e4736", TRUE, SPAN,
                        WEFT_TRACE_DECISION_DEBUG, "");
  g_assert_cmpstr (b3, ==, "a3ce929d0e0e4736-" SPAN "-d");
  weft_trace_format_b3 (b3, TRACE, TRUE, SPAN, WEFT_TRACE_DECISION_DROP, NULL);
  /* a full 128-bit id cannot be shortened */
  g_assert_cmpstr (b3, ==, TRACE "-" SPAN "-0");
}

/* ------------------------------------------------------------------ */
/* encodings                                                            */
/* ------------------------------------------------------------------ */

static void
test_record (WeftSpanRecord *rec, WeftSpanKind kind, guint status)
{
  memset (rec, 0, sizeof *rec);
  weft_span_copy (rec->trace_id, sizeof rec->trace_id, TRACE);
  weft_span_copy (rec->span_id, sizeof rec->span_id, "e457b5a2e4d86bd1");
  weft_span_copy (rec->parent_id, sizeof rec->parent_id, SPAN);
  rec->kind = kind;
  rec->http_minor = 1;
  rec->status = status;
  rec->start_us = G_GINT64_CONSTANT (1700000000123456);
  rec->end_us = rec->start_us + 2500;
  weft_span_copy (rec->method, sizeof rec->method, "GET");
  weft_span_copy (rec->target, sizeof rec->target, "/api/items?page=2&q=x");
  weft_span_copy (rec->authority, sizeof rec->authority, "shop.example:8080");
  weft_span_copy (rec->request_id, sizeof rec->request_id, "7d2a3b8c-1111-4222-8333-944445555666");
  weft_span_copy (rec->peer, sizeof rec->peer, kind == WEFT_SPAN_KIND_SERVER ? "10.0.0.9"
                                                                             : "10.0.0.7:9080");
}

/* the attributes of an OTLP span as key -> "s:value" or "i:value" */
static GHashTable *
test_otlp_attrs (JsonArray *attrs)
{
  GHashTable *out = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);

  for (guint i = 0; i < json_array_get_length (attrs); i++)
    {
      JsonObject *a = json_array_get_object_element (attrs, i);
      JsonObject *v = json_object_get_object_member (a, "value");
      const char *key = json_object_get_string_member (a, "key");

      g_assert_cmpuint (json_object_get_size (v), ==, 1);
      if (json_object_has_member (v, "stringValue"))
        g_hash_table_insert (out, (gpointer) key,
                             g_strconcat ("s:", json_object_get_string_member (v, "stringValue"),
                                          NULL));
      else
        g_hash_table_insert (out, (gpointer) key,
                             g_strconcat ("i:", json_object_get_string_member (v, "intValue"),
                                          NULL));
    }
  return out;
}

static JsonNode *
test_parse (GBytes *body)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  gsize len;
  const char *data = g_bytes_get_data (body, &len);

  g_assert_true (g_utf8_validate (data, len, NULL));
  json_parser_load_from_data (parser, data, len, &error);
  g_assert_no_error (error);
  return json_node_copy (json_parser_get_root (parser));
}

static void
test_encode_otlp (void)
{
  WeftTraceResource res = { "reviews", "bookinfo", "v2", "reviews-v2-abc" };
  WeftSpanEncoder enc;
  WeftSpanRecord server, client;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GHashTable) rattrs = NULL;
  g_autoptr(GHashTable) sattrs = NULL;
  g_autoptr(GHashTable) cattrs = NULL;
  JsonObject *rs, *ss, *span;
  JsonArray *spans;

  test_record (&server, WEFT_SPAN_KIND_SERVER, 502);
  weft_span_copy (server.route, sizeof server.route, "items");
  /* quotes, control characters and a byte that is not UTF-8 */
  weft_span_copy (server.user_agent, sizeof server.user_agent, "curl/8 \"x\"\t\x01\xff end");
  weft_span_copy (server.error_reason, sizeof server.error_reason, "upstream_reset");
  test_record (&client, WEFT_SPAN_KIND_CLIENT, 503);
  client.parent_id[0] = '\0';
  client.response_flags = WEFT_RESPONSE_FLAG_UPSTREAM_CONNECT_FAILURE |
                          WEFT_RESPONSE_FLAG_RETRY_LIMIT_EXCEEDED;
  weft_span_copy (client.method, sizeof client.method, "PURGE");
  weft_span_copy (client.target, sizeof client.target, "/x");

  weft_span_encoder_init (&enc, WEFT_TRACE_FORMAT_OTLP);
  weft_span_encoder_begin (&enc, &res);
  weft_span_encoder_add (&enc, &res, &server);
  weft_span_encoder_add (&enc, &res, &client);
  body = weft_span_encoder_end (&enc);
  weft_span_encoder_clear (&enc);
  root = test_parse (body);

  rs = json_array_get_object_element (
    json_object_get_array_member (json_node_get_object (root), "resourceSpans"), 0);
  rattrs = test_otlp_attrs (json_object_get_array_member (
    json_object_get_object_member (rs, "resource"), "attributes"));
  g_assert_cmpstr (g_hash_table_lookup (rattrs, "service.name"), ==, "s:reviews");
  g_assert_cmpstr (g_hash_table_lookup (rattrs, "service.namespace"), ==, "s:bookinfo");
  g_assert_cmpstr (g_hash_table_lookup (rattrs, "service.version"), ==, "s:v2");
  g_assert_cmpstr (g_hash_table_lookup (rattrs, "service.instance.id"), ==, "s:reviews-v2-abc");
  ss = json_array_get_object_element (json_object_get_array_member (rs, "scopeSpans"), 0);
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (ss, "scope"),
                                                  "name"), ==, "weft");
  spans = json_object_get_array_member (ss, "spans");
  g_assert_cmpuint (json_array_get_length (spans), ==, 2);

  span = json_array_get_object_element (spans, 0);
  g_assert_cmpstr (json_object_get_string_member (span, "traceId"), ==, TRACE);
  g_assert_cmpstr (json_object_get_string_member (span, "spanId"), ==, "e457b5a2e4d86bd1");
  g_assert_cmpstr (json_object_get_string_member (span, "parentSpanId"), ==, SPAN);
  g_assert_cmpstr (json_object_get_string_member (span, "name"), ==, "GET items");
  g_assert_cmpint (json_object_get_int_member (span, "kind"), ==, 2);
  g_assert_cmpstr (json_object_get_string_member (span, "startTimeUnixNano"), ==,
                   "1700000000123456000");
  g_assert_cmpstr (json_object_get_string_member (span, "endTimeUnixNano"), ==,
                   "1700000000125956000");
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (span, "status"),
                                               "code"), ==, 2);
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (span, "status"),
                                                  "message"), ==, "upstream_reset");
  sattrs = test_otlp_attrs (json_object_get_array_member (span, "attributes"));
  g_assert_cmpstr (g_hash_table_lookup (sattrs, "http.request.method"), ==, "s:GET");
  g_assert_cmpstr (g_hash_table_lookup (sattrs, "url.path"), ==, "s:/api/items");
  g_assert_cmpstr (g_hash_table_lookup (sattrs, "url.query"), ==, "s:page=2&q=x");
  g_assert_cmpstr (g_hash_table_lookup (sattrs, "url.scheme"), ==, "s:http");
  g_assert_cmpstr (g_hash_table_lookup (sattrs, "server.address"), ==, "s:shop.example");
  g_assert_cmpstr (g_hash_table_lookup (sattrs, "server.port"), ==, "i:8080");
  g_assert_cmpstr (g_hash_table_lookup (sattrs, "http.response.status_code"), ==, "i:502");
  g_assert_cmpstr (g_hash_table_lookup (sattrs, "network.protocol.version"), ==, "s:1.1");
  g_assert_cmpstr (g_hash_table_lookup (sattrs, "client.address"), ==, "s:10.0.0.9");
  g_assert_cmpstr (g_hash_table_lookup (sattrs, "weft.route"), ==, "s:items");
  g_assert_cmpstr (g_hash_table_lookup (sattrs, "weft.error_reason"), ==, "s:upstream_reset");
  g_assert_cmpstr (g_hash_table_lookup (sattrs, "guid:x-request-id"), ==,
                   "s:7d2a3b8c-1111-4222-8333-944445555666");
  g_assert_cmpstr (g_hash_table_lookup (sattrs, "user_agent.original"), ==,
                   "s:curl/8 \"x\"\t\x01\xef\xbf\xbd end");
  g_assert_null (g_hash_table_lookup (sattrs, "network.peer.address"));

  span = json_array_get_object_element (spans, 1);
  g_assert_false (json_object_has_member (span, "parentSpanId"));
  g_assert_cmpint (json_object_get_int_member (span, "kind"), ==, 3);
  g_assert_cmpstr (json_object_get_string_member (span, "name"), ==, "HTTP");
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (span, "status"),
                                                  "message"), ==, "UF,URX");
  cattrs = test_otlp_attrs (json_object_get_array_member (span, "attributes"));
  g_assert_cmpstr (g_hash_table_lookup (cattrs, "http.request.method"), ==, "s:_OTHER");
  g_assert_cmpstr (g_hash_table_lookup (cattrs, "http.request.method_original"), ==, "s:PURGE");
  g_assert_cmpstr (g_hash_table_lookup (cattrs, "network.peer.address"), ==, "s:10.0.0.7");
  g_assert_cmpstr (g_hash_table_lookup (cattrs, "network.peer.port"), ==, "i:9080");
  g_assert_cmpstr (g_hash_table_lookup (cattrs, "weft.response_flags"), ==, "s:UF,URX");
  g_assert_null (g_hash_table_lookup (cattrs, "url.query"));
  g_assert_null (g_hash_table_lookup (cattrs, "client.address"));
}

static void
test_encode_zipkin (void)
{
  WeftTraceResource res = { "ratings", NULL, NULL, NULL };
  WeftSpanEncoder enc;
  WeftSpanRecord server, client;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(JsonNode) root = NULL;
  JsonArray *spans;
  JsonObject *span, *tags, *remote;

  test_record (&server, WEFT_SPAN_KIND_SERVER, 200);
  server.end_us = server.start_us;     /* a zero duration is written as 1 */
  server.debug = 1;
  test_record (&client, WEFT_SPAN_KIND_CLIENT, 404);
  weft_span_copy (client.peer, sizeof client.peer, "[::1]:9411");

  weft_span_encoder_init (&enc, WEFT_TRACE_FORMAT_ZIPKIN);
  /* an empty body first: the encoder resets between bodies */
  weft_span_encoder_begin (&enc, &res);
  g_bytes_unref (weft_span_encoder_end (&enc));
  weft_span_encoder_begin (&enc, &res);
  weft_span_encoder_add (&enc, &res, &server);
  weft_span_encoder_add (&enc, &res, &client);
  body = weft_span_encoder_end (&enc);
  weft_span_encoder_clear (&enc);
  root = test_parse (body);

  g_assert_true (JSON_NODE_HOLDS_ARRAY (root));
  spans = json_node_get_array (root);
  g_assert_cmpuint (json_array_get_length (spans), ==, 2);
  span = json_array_get_object_element (spans, 0);
  g_assert_cmpstr (json_object_get_string_member (span, "traceId"), ==, TRACE);
  g_assert_cmpstr (json_object_get_string_member (span, "id"), ==, "e457b5a2e4d86bd1");
  g_assert_cmpstr (json_object_get_string_member (span, "parentId"), ==, SPAN);
  g_assert_cmpstr (json_object_get_string_member (span, "kind"), ==, "SERVER");
  g_assert_cmpint (json_object_get_int_member (span, "timestamp"), ==, 1700000000123456);
  g_assert_cmpint (json_object_get_int_member (span, "duration"), ==, 1);
  g_assert_true (json_object_get_boolean_member (span, "debug"));
  g_assert_cmpstr (json_object_get_string_member (
    json_object_get_object_member (span, "localEndpoint"), "serviceName"), ==, "ratings");
  remote = json_object_get_object_member (span, "remoteEndpoint");
  g_assert_cmpstr (json_object_get_string_member (remote, "ipv4"), ==, "10.0.0.9");
  tags = json_object_get_object_member (span, "tags");
  g_assert_cmpstr (json_object_get_string_member (tags, "http.response.status_code"), ==, "200");
  g_assert_cmpstr (json_object_get_string_member (tags, "url.path"), ==, "/api/items");
  g_assert_false (json_object_has_member (tags, "error"));

  span = json_array_get_object_element (spans, 1);
  g_assert_cmpstr (json_object_get_string_member (span, "kind"), ==, "CLIENT");
  g_assert_cmpint (json_object_get_int_member (span, "duration"), ==, 2500);
  remote = json_object_get_object_member (span, "remoteEndpoint");
  g_assert_cmpstr (json_object_get_string_member (remote, "ipv6"), ==, "::1");
  g_assert_cmpint (json_object_get_int_member (remote, "port"), ==, 9411);
  tags = json_object_get_object_member (span, "tags");
  /* a CLIENT span fails from 400 on */
  g_assert_cmpstr (json_object_get_string_member (tags, "error"), ==, "HTTP 404");
  g_assert_cmpstr (json_object_get_string_member (tags, "otel.status_code"), ==, "ERROR");
  g_assert_cmpstr (json_object_get_string_member (tags, "error.type"), ==, "404");
}

static void
test_error_status (void)
{
  WeftSpanRecord rec;
  char buf[64];

  test_record (&rec, WEFT_SPAN_KIND_SERVER, 404);
  g_assert_null (weft_span_error_message (&rec, buf, sizeof buf));
  rec.status = 500;
  g_assert_cmpstr (weft_span_error_message (&rec, buf, sizeof buf), ==, "HTTP 500");
  rec.status = 0;   /* the client went away: not the server's failure */
  g_assert_null (weft_span_error_message (&rec, buf, sizeof buf));

  test_record (&rec, WEFT_SPAN_KIND_CLIENT, 200);
  g_assert_null (weft_span_error_message (&rec, buf, sizeof buf));
  rec.status = 0;
  g_assert_cmpstr (weft_span_error_message (&rec, buf, sizeof buf), ==, "no response");
  rec.status = 200;
  rec.response_flags = WEFT_RESPONSE_FLAG_UPSTREAM_TIMEOUT;
  g_assert_cmpstr (weft_span_error_message (&rec, buf, sizeof buf), ==, "UT");
  rec.response_flags = WEFT_RESPONSE_FLAG_DELAY_INJECTED;
  g_assert_null (weft_span_error_message (&rec, buf, sizeof buf));
  rec.status = 403;
  weft_span_copy (rec.error_reason, sizeof rec.error_reason, "rbac-denied");
  g_assert_cmpstr (weft_span_error_message (&rec, buf, sizeof buf), ==, "rbac-denied");
}

static void
test_span_copy_cuts (void)
{
  WeftSpanRecord rec;
  g_autofree char *long_path = g_strnfill (1000, 'a');

  weft_span_copy (rec.target, sizeof rec.target, long_path);
  g_assert_cmpuint (strlen (rec.target), ==, WEFT_SPAN_TARGET_MAX - 1);
  weft_span_copy (rec.route, sizeof rec.route, NULL);
  g_assert_cmpstr (rec.route, ==, "");
}

/* ------------------------------------------------------------------ */
/* the queue                                                            */
/* ------------------------------------------------------------------ */

static void
test_queue_bounded (void)
{
  WeftSpanQueue q;
  guint kicks = 0;

  weft_span_queue_init (&q, 4, 3);
  for (guint i = 0; i < 4; i++)
    {
      WeftSpanRecord *rec = weft_span_queue_reserve (&q);
      g_assert_nonnull (rec);
      rec->status = 200 + i;
      kicks += weft_span_queue_commit (&q);
    }
  /* full: the fifth is refused, and the main thread was told once */
  g_assert_null (weft_span_queue_reserve (&q));
  g_assert_cmpuint (kicks, ==, 1);
  g_assert_cmpuint (weft_span_queue_length (&q), ==, 4);
  g_assert_cmpuint (weft_span_queue_nth (&q, 0)->status, ==, 200);
  g_assert_cmpuint (weft_span_queue_nth (&q, 3)->status, ==, 203);
  weft_span_queue_release (&q, 3);
  weft_span_queue_rearm (&q);
  g_assert_cmpuint (weft_span_queue_length (&q), ==, 1);
  g_assert_cmpuint (weft_span_queue_nth (&q, 0)->status, ==, 203);
  /* the ring wraps */
  for (guint i = 0; i < 3; i++)
    {
      WeftSpanRecord *rec = weft_span_queue_reserve (&q);
      g_assert_nonnull (rec);
      rec->status = 300 + i;
      kicks += weft_span_queue_commit (&q);
    }
  g_assert_cmpuint (kicks, ==, 2);
  g_assert_cmpuint (weft_span_queue_nth (&q, 3)->status, ==, 302);
  weft_span_queue_clear (&q);
}

typedef struct {
  WeftSpanQueue *q;
  guint          n;
  guint          pushed;
  gint           done;
} Producer;

static gpointer
test_produce (gpointer data)
{
  Producer *p = data;

  for (guint i = 0; i < p->n; i++)
    {
      WeftSpanRecord *rec = weft_span_queue_reserve (p->q);
      if (rec == NULL)
        continue;
      rec->start_us = p->pushed;
      g_snprintf (rec->target, sizeof rec->target, "/%u", p->pushed);
      weft_span_queue_commit (p->q);
      p->pushed++;
    }
  g_atomic_int_set (&p->done, 1);
  return NULL;
}

/* one thread writes, this one reads: nothing lost, nothing reordered,
 * and a record is complete when it is seen */
static void
test_queue_threads (void)
{
  WeftSpanQueue q;
  Producer p = { &q, 200000, 0, 0 };
  GThread *t;
  guint64 next = 0;

  weft_span_queue_init (&q, 64, 64);
  t = g_thread_new ("producer", test_produce, &p);
  for (;;)
    {
      gboolean finished = g_atomic_int_get (&p.done);
      guint n = weft_span_queue_length (&q);
      for (guint i = 0; i < n; i++)
        {
          const WeftSpanRecord *rec = weft_span_queue_nth (&q, i);
          char want[32];
          g_assert_cmpint (rec->start_us, ==, (gint64) next);
          g_snprintf (want, sizeof want, "/%" G_GUINT64_FORMAT, next);
          g_assert_cmpstr (rec->target, ==, want);
          next++;
        }
      weft_span_queue_release (&q, n);
      if (finished && weft_span_queue_length (&q) == 0)
        break;
    }
  g_thread_join (t);
  g_assert_cmpuint (next, ==, p.pushed);
  g_assert_cmpuint (p.pushed, >, 0);
  weft_span_queue_clear (&q);
}

/* ------------------------------------------------------------------ */
/* settings                                                             */
/* ------------------------------------------------------------------ */

static WeftTraceSettings *
settings_load (const char *yaml, GError **error)
{
  g_autoptr(GError) load_error = NULL;
  g_autoptr(WeftConfig) weft = weft_config_load_data ("tracing.yaml", yaml, strlen (yaml),
                                                      &load_error);

  g_assert_no_error (load_error);
  return weft_trace_settings_parse (g_hash_table_lookup (weft->plugin_nodes, "tracing"), error);
}

static void
test_settings_errors (void)
{
  static const struct { const char *yaml; const char *want; } cases[] = {
    { "tracing:\n  exporter: jaeger\n", "tracing.yaml:2:13: 'exporter' must be otlp or zipkin" },
    { "tracing:\n  endpoint: https://collector:4318/v1/traces\n",
      "tracing.yaml:2:13: 'endpoint' must be an http:// URL" },
    { "tracing:\n  endpoint: collector:4318\n", "tracing.yaml:2:13: 'endpoint'" },
    { "tracing:\n  sampling: 101\n", "tracing.yaml:2:13: 'sampling' is a percentage" },
    { "tracing:\n  sampling: -1\n", "tracing.yaml:2:13: 'sampling'" },
    { "tracing:\n  sampling: lots\n", "tracing.yaml:2:13:" },
    { "tracing:\n  sampels: 10\n", "tracing.yaml:2:3:" },
    { "tracing:\n  batch:\n    max_spans: 0\n", "tracing.yaml:3:16: 'max_spans' must be" },
    { "tracing:\n  batch:\n    interval: 1ms\n", "tracing.yaml:3:15: 'interval' must be" },
    { "tracing:\n  batch:\n    size: 5\n", "tracing.yaml:3:5:" },
    { "tracing:\n  batch: 5\n", "tracing.yaml:2:10:" },
    { "tracing:\n  queue: 0\n", "tracing.yaml:2:10: 'queue' must be from 1" },
    { "tracing:\n  timeout: forever\n", "tracing.yaml:2:12:" },
    { "tracing:\n  service_name: \"\"\n", "tracing.yaml:2:17: 'service_name'" },
    { "tracing: [otlp]\n", "tracing.yaml:1:10:" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(WeftTraceSettings) s = settings_load (cases[i].yaml, &error);

      g_assert_null (s);
      g_assert_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG);
      g_test_message ("%s", error->message);
      g_assert_nonnull (strstr (error->message, cases[i].want));
    }
}

static void
test_settings_defaults (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftTraceSettings) none = weft_trace_settings_parse (NULL, &error);
  g_autoptr(WeftTraceSettings) zipkin = NULL;
  g_autoptr(WeftTraceSettings) full = NULL;

  g_assert_no_error (error);
  g_assert_cmpint (none->format, ==, WEFT_TRACE_FORMAT_OTLP);
  g_assert_cmpstr (none->endpoint, ==, "http://127.0.0.1:4318/v1/traces");
  g_assert_cmpfloat (none->sampling, ==, 1.0);
  g_assert_null (none->service_name);
  g_assert_cmpuint (none->max_spans, ==, 512);
  g_assert_cmpuint (none->interval_ms, ==, 1000);
  g_assert_cmpuint (none->queue, ==, 2048);
  g_assert_cmpuint (none->timeout_ms, ==, 5000);

  zipkin = settings_load ("tracing:\n  exporter: zipkin\n", &error);
  g_assert_no_error (error);
  g_assert_cmpint (zipkin->format, ==, WEFT_TRACE_FORMAT_ZIPKIN);
  g_assert_cmpstr (zipkin->endpoint, ==, "http://127.0.0.1:9411/api/v2/spans");

  full = settings_load ("tracing:\n  exporter: otlp\n  endpoint: http://otel:4318/v1/traces\n"
                        "  sampling: 12.5\n  service_name: shop\n"
                        "  batch: {max_spans: 64, interval: 250ms}\n  queue: 100\n"
                        "  timeout: 2s\n", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (full->endpoint, ==, "http://otel:4318/v1/traces");
  g_assert_cmpfloat (full->sampling, ==, 12.5);
  g_assert_cmpstr (full->service_name, ==, "shop");
  g_assert_cmpuint (full->max_spans, ==, 64);
  g_assert_cmpuint (full->interval_ms, ==, 250);
  g_assert_cmpuint (full->queue, ==, 100);
  g_assert_cmpuint (full->timeout_ms, ==, 2000);
}

/* ------------------------------------------------------------------ */
/* libsoup, opened on the first export                                  */
/* ------------------------------------------------------------------ */

static void
test_soup_load (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftTraceSoup) missing = weft_trace_soup_open ("/nonexistent/libsoup-3.0.so.0",
                                                           &error);
  const WeftTraceSoup *soup;
  SoupSession *session;

  /* the error names the library */
  g_assert_null (missing);
  g_assert_error (error, G_MODULE_ERROR, G_MODULE_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "/nonexistent/libsoup-3.0.so.0"));

  /* the real one, opened once, and its functions work */
  soup = weft_trace_soup_get ();
  g_assert_nonnull (soup);
  g_assert_true (weft_trace_soup_get () == soup);
  session = soup->session_new_with_options ("user-agent", "test-tracing", NULL);
  g_assert_true (G_IS_OBJECT (session));
  g_object_unref (session);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/tracing/traceparent/valid", test_traceparent_valid);
  g_test_add_func ("/tracing/traceparent/invalid", test_traceparent_invalid);
  g_test_add_func ("/tracing/b3/single", test_b3_single);
  g_test_add_func ("/tracing/b3/single-invalid", test_b3_single_invalid);
  g_test_add_func ("/tracing/b3/multi", test_b3_multi);
  g_test_add_func ("/tracing/extract/precedence", test_extract_precedence);
  g_test_add_func ("/tracing/extract/headers-take", test_headers_take);
  g_test_add_func ("/tracing/extract/header-candidate", test_header_candidate);
  g_test_add_func ("/tracing/ids/hex64", test_hex64);
  g_test_add_func ("/tracing/ids", test_ids);
  g_test_add_func ("/tracing/format", test_format);
  g_test_add_func ("/tracing/encode/otlp", test_encode_otlp);
  g_test_add_func ("/tracing/encode/zipkin", test_encode_zipkin);
  g_test_add_func ("/tracing/encode/error-status", test_error_status);
  g_test_add_func ("/tracing/encode/copy-cuts", test_span_copy_cuts);
  g_test_add_func ("/tracing/queue/bounded", test_queue_bounded);
  g_test_add_func ("/tracing/queue/threads", test_queue_threads);
  g_test_add_func ("/tracing/settings/errors", test_settings_errors);
  g_test_add_func ("/tracing/settings/defaults", test_settings_defaults);
  g_test_add_func ("/tracing/soup/load", test_soup_load);
  return g_test_run ();
}
