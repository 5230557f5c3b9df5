/* weft-tracing-propagation.c: W3C trace context and B3 headers, in and out
 *
 * Parsing is strict, as the W3C recommendation asks: lowercase hex of the
 * exact length, no all-zero ids, no version ff. A header that fails is
 * ignored as a whole and the next one is tried; with none left the request
 * starts a new trace. Nothing here allocates.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "weft-tracing-span-private.h"

#include <string.h>

/* TRUE when @s starts with @n lowercase hex digits that are not all zero */
static gboolean
weft_trace_hex_ok (const char *s, gsize n)
{
  gboolean nonzero = FALSE;

  for (gsize i = 0; i < n; i++)
    {
      char c = s[i];
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
        return FALSE;
      nonzero |= c != '0';
    }
  return nonzero;
}

/* two lowercase hex digits as a byte, or -1 */
static int
weft_trace_hex_byte (const char *s)
{
  int v = 0;

  for (int i = 0; i < 2; i++)
    {
      char c = s[i];
      if (c >= '0' && c <= '9')
        v = v * 16 + (c - '0');
      else if (c >= 'a' && c <= 'f')
        v = v * 16 + (c - 'a' + 10);
      else
        return -1;
    }
  return v;
}

static void
weft_trace_parent_reset (WeftTraceParent *out)
{
  out->source = WEFT_TRACE_SOURCE_NONE;
  out->decision = WEFT_TRACE_DECISION_NONE;
  out->trace_id[0] = '\0';
  out->span_id[0] = '\0';
  out->short_b3 = FALSE;
}

/* a 16- or 32-digit B3 trace id, stored as 32 digits */
static gboolean
weft_trace_take_b3_trace_id (const char *s, gsize len, WeftTraceParent *out)
{
  if ((len != 16 && len != 32) || !weft_trace_hex_ok (s, len))
    return FALSE;
  memset (out->trace_id, '0', WEFT_TRACE_ID_HEX - len);
  memcpy (out->trace_id + WEFT_TRACE_ID_HEX - len, s, len);
  out->trace_id[WEFT_TRACE_ID_HEX] = '\0';
  out->short_b3 = len == 16;
  return TRUE;
}

static gboolean
weft_trace_take_span_id (const char *s, gsize len, WeftTraceParent *out)
{
  if (len != WEFT_SPAN_ID_HEX || !weft_trace_hex_ok (s, len))
    return FALSE;
  memcpy (out->span_id, s, len);
  out->span_id[len] = '\0';
  return TRUE;
}

/**
 * weft_trace_parse_traceparent:
 * @value: the header value
 * @out: (out): the parent
 *
 * version "-" trace-id "-" parent-id "-" trace-flags. Version 00 has
 * exactly those 55 characters; a later version may add fields after
 * another dash, which are ignored. Version ff is invalid.
 *
 * Returns: TRUE for a valid header
 */
gboolean
weft_trace_parse_traceparent (const char *value, WeftTraceParent *out)
{
  gsize len = value != NULL ? strlen (value) : 0;
  int version, flags;

  weft_trace_parent_reset (out);
  if (len < 55 || value[2] != '-' || value[35] != '-' || value[52] != '-')
    return FALSE;
  /* the version: two hex digits; ff is invalid */
  version = weft_trace_hex_byte (value);
  if (version < 0 || version == 0xff)
    return FALSE;
  if (version == 0 && len != 55)
    return FALSE;
  if (len > 55 && value[55] != '-')
    return FALSE;
  if (!weft_trace_hex_ok (value + 3, WEFT_TRACE_ID_HEX) ||
      !weft_trace_hex_ok (value + 36, WEFT_SPAN_ID_HEX))
    return FALSE;
  /* the flags may be 00: two digits, not an id */
  flags = weft_trace_hex_byte (value + 53);
  if (flags < 0)
    return FALSE;
  memcpy (out->trace_id, value + 3, WEFT_TRACE_ID_HEX);
  out->trace_id[WEFT_TRACE_ID_HEX] = '\0';
  memcpy (out->span_id, value + 36, WEFT_SPAN_ID_HEX);
  out->span_id[WEFT_SPAN_ID_HEX] = '\0';
  out->decision = (flags & 1) ? WEFT_TRACE_DECISION_SAMPLE : WEFT_TRACE_DECISION_DROP;
  out->source = WEFT_TRACE_SOURCE_W3C;
  return TRUE;
}

static WeftTraceDecision
weft_trace_b3_state (const char *s, gsize len)
{
  if (len != 1)
    return WEFT_TRACE_DECISION_NONE;
  switch (s[0])
    {
    case '0': return WEFT_TRACE_DECISION_DROP;
    case '1': return WEFT_TRACE_DECISION_SAMPLE;
    case 'd': return WEFT_TRACE_DECISION_DEBUG;
    default:  return WEFT_TRACE_DECISION_NONE;
    }
}

/**
 * weft_trace_parse_b3_single:
 * @value: the `b3` header value
 * @out: (out): the parent
 *
 * {TraceId}-{SpanId}[-{SamplingState}[-{ParentSpanId}]], or a sampling
 * state alone (1, 0 or d), which decides without giving a parent.
 *
 * Returns: TRUE when the header held valid ids
 */
gboolean
weft_trace_parse_b3_single (const char *value, WeftTraceParent *out)
{
  const char *field[4] = { NULL };
  gsize flen[4] = { 0 };
  guint n = 0;
  const char *p = value;

  weft_trace_parent_reset (out);
  if (value == NULL)
    return FALSE;
  /* split on dashes into at most four fields */
  while (n < 4)
    {
      const char *dash = strchr (p, '-');
      field[n] = p;
      flen[n] = dash != NULL ? (gsize) (dash - p) : strlen (p);
      n++;
      if (dash == NULL)
        break;
      p = dash + 1;
    }
  if (n == 1)
    {
      out->decision = weft_trace_b3_state (field[0], flen[0]);
      return FALSE;
    }
  if (n == 4 && strchr (field[3], '-') != NULL)
    return FALSE;
  if (n >= 3 && weft_trace_b3_state (field[2], flen[2]) == WEFT_TRACE_DECISION_NONE)
    return FALSE;
  if (n == 4 && (flen[3] != WEFT_SPAN_ID_HEX || !weft_trace_hex_ok (field[3], flen[3])))
    return FALSE;
  if (!weft_trace_take_b3_trace_id (field[0], flen[0], out) ||
      !weft_trace_take_span_id (field[1], flen[1], out))
    {
      weft_trace_parent_reset (out);
      return FALSE;
    }
  out->decision = n >= 3 ? weft_trace_b3_state (field[2], flen[2]) : WEFT_TRACE_DECISION_NONE;
  out->source = WEFT_TRACE_SOURCE_B3_SINGLE;
  return TRUE;
}

static WeftTraceDecision
weft_trace_b3_multi_decision (const WeftTraceHeaders *h)
{
  if (h->x_b3_flags != NULL && strcmp (h->x_b3_flags, "1") == 0)
    return WEFT_TRACE_DECISION_DEBUG;
  if (h->x_b3_sampled == NULL)
    return WEFT_TRACE_DECISION_NONE;
  /* "true" and "false" are what old instrumentation sent */
  if (strcmp (h->x_b3_sampled, "1") == 0 || g_ascii_strcasecmp (h->x_b3_sampled, "true") == 0)
    return WEFT_TRACE_DECISION_SAMPLE;
  if (strcmp (h->x_b3_sampled, "0") == 0 || g_ascii_strcasecmp (h->x_b3_sampled, "false") == 0)
    return WEFT_TRACE_DECISION_DROP;
  return WEFT_TRACE_DECISION_NONE;
}

/**
 * weft_trace_parse_b3_multi:
 * @h: the request's propagation headers
 * @out: (out): the parent
 *
 * x-b3-traceid (16 or 32 hex digits) and x-b3-spanid give the parent;
 * x-b3-sampled (1 or 0) and x-b3-flags (1 = debug) the decision, which
 * counts even without ids.
 *
 * Returns: TRUE when both ids are valid
 */
gboolean
weft_trace_parse_b3_multi (const WeftTraceHeaders *h, WeftTraceParent *out)
{
  weft_trace_parent_reset (out);
  out->decision = weft_trace_b3_multi_decision (h);
  if (h->x_b3_traceid == NULL || h->x_b3_spanid == NULL)
    return FALSE;
  if (h->x_b3_parentspanid != NULL &&
      (strlen (h->x_b3_parentspanid) != WEFT_SPAN_ID_HEX ||
       !weft_trace_hex_ok (h->x_b3_parentspanid, WEFT_SPAN_ID_HEX)))
    return FALSE;
  if (!weft_trace_take_b3_trace_id (h->x_b3_traceid, strlen (h->x_b3_traceid), out) ||
      !weft_trace_take_span_id (h->x_b3_spanid, strlen (h->x_b3_spanid), out))
    {
      WeftTraceDecision keep = out->decision;
      weft_trace_parent_reset (out);
      out->decision = keep;
      return FALSE;
    }
  out->source = WEFT_TRACE_SOURCE_B3_MULTI;
  return TRUE;
}

/**
 * weft_trace_extract:
 * @h: the request's propagation headers
 * @out: (out): the parent to use
 *
 * W3C first, then B3 single, then B3 multi. Without a valid parent, the
 * first sampling decision a B3 header carries alone still counts.
 */
/* whether the B3 headers carry a 64-bit trace id, which the B3 headers
 * written upstream then keep, whichever header gave the parent */
static gboolean
weft_trace_b3_short (const WeftTraceHeaders *h)
{
  const char *dash = h->b3 != NULL ? strchr (h->b3, '-') : NULL;

  if (dash != NULL)
    return dash - h->b3 == 16;
  return h->x_b3_traceid != NULL && strlen (h->x_b3_traceid) == 16;
}

static void
weft_trace_extract_parent (const WeftTraceHeaders *h, WeftTraceParent *out)
{
  WeftTraceDecision lone = WEFT_TRACE_DECISION_NONE;

  if (h->traceparent != NULL && weft_trace_parse_traceparent (h->traceparent, out))
    return;
  if (h->b3 != NULL)
    {
      if (weft_trace_parse_b3_single (h->b3, out))
        return;
      lone = out->decision;
    }
  if (h->x_b3_traceid != NULL || h->x_b3_spanid != NULL || h->x_b3_sampled != NULL ||
      h->x_b3_flags != NULL)
    {
      if (weft_trace_parse_b3_multi (h, out))
        return;
      lone = lone != WEFT_TRACE_DECISION_NONE ? lone : out->decision;
    }
  weft_trace_parent_reset (out);
  out->decision = lone;
}

/* B3 debug, which W3C cannot say: it rides along with a traceparent */
static gboolean
weft_trace_b3_debug (const WeftTraceHeaders *h)
{
  WeftTraceParent b3;

  if (h->x_b3_flags != NULL && strcmp (h->x_b3_flags, "1") == 0)
    return TRUE;
  if (h->b3 == NULL)
    return FALSE;
  weft_trace_parse_b3_single (h->b3, &b3);
  return b3.decision == WEFT_TRACE_DECISION_DEBUG;
}

void
weft_trace_extract (const WeftTraceHeaders *h, WeftTraceParent *out)
{
  weft_trace_extract_parent (h, out);
  out->short_b3 = weft_trace_b3_short (h);
  if (out->source == WEFT_TRACE_SOURCE_W3C && out->decision == WEFT_TRACE_DECISION_SAMPLE &&
      weft_trace_b3_debug (h))
    out->decision = WEFT_TRACE_DECISION_DEBUG;
}

/**
 * weft_trace_headers_take:
 * @h: the headers found so far
 * @name: a request header's name
 * @value: its value
 *
 * Keeps @value when @name is a propagation header (the first one wins).
 *
 * Returns: TRUE when it was one
 */
gboolean
weft_trace_headers_take (WeftTraceHeaders *h, const char *name, const char *value)
{
  const char **slot = NULL;

  switch (g_ascii_tolower (name[0]))
    {
    case 't':
      if (g_ascii_strcasecmp (name, "traceparent") == 0)
        slot = &h->traceparent;
      else if (g_ascii_strcasecmp (name, "tracestate") == 0)
        slot = &h->tracestate;
      break;
    case 'b':
      if (g_ascii_strcasecmp (name, "b3") == 0)
        slot = &h->b3;
      break;
    case 'x':
      /* x-forwarded-for and x-request-id are common: leave them cheaply */
      if (name[1] != '-' || (name[2] | 0x20) != 'b' || name[3] != '3' || name[4] != '-')
        break;
      if (g_ascii_strcasecmp (name + 5, "traceid") == 0)
        slot = &h->x_b3_traceid;
      else if (g_ascii_strcasecmp (name + 5, "spanid") == 0)
        slot = &h->x_b3_spanid;
      else if (g_ascii_strcasecmp (name + 5, "parentspanid") == 0)
        slot = &h->x_b3_parentspanid;
      else if (g_ascii_strcasecmp (name + 5, "sampled") == 0)
        slot = &h->x_b3_sampled;
      else if (g_ascii_strcasecmp (name + 5, "flags") == 0)
        slot = &h->x_b3_flags;
      break;
    default:
      break;
    }
  if (slot == NULL)
    return FALSE;
  if (*slot == NULL)
    *slot = value;
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* writing                                                              */
/* ------------------------------------------------------------------ */

/* "000102...ff": each byte's two digits, for ids without a loop per digit */
static const char weft_hex_pairs[] =
  "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
  "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
  "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
  "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
  "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
  "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
  "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
  "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

/**
 * weft_trace_new_id:
 * @out: (out): at least @n_hex + 1 bytes
 * @n_hex: 16 for a span id, 32 for a trace id
 * @random: 32 random bits per call
 * @data: for @random
 *
 * A random id; an all-zero id is invalid, so that one case becomes ...01.
 */
void
weft_trace_new_id (char *out, guint n_hex, WeftTraceRandomFunc random, gpointer data)
{
  guint32 any = 0;

  for (guint i = 0; i < n_hex; i += 8)
    {
      guint32 r = random (data);
      any |= r;
      memcpy (out + i, weft_hex_pairs + 2 * (r >> 24), 2);
      memcpy (out + i + 2, weft_hex_pairs + 2 * ((r >> 16) & 0xff), 2);
      memcpy (out + i + 4, weft_hex_pairs + 2 * ((r >> 8) & 0xff), 2);
      memcpy (out + i + 6, weft_hex_pairs + 2 * (r & 0xff), 2);
    }
  if (any == 0)
    out[n_hex - 1] = '1';
  out[n_hex] = '\0';
}

void
weft_trace_format_traceparent (char out[WEFT_TRACEPARENT_MAX], const char *trace_id,
                               const char *span_id, gboolean sampled)
{
  memcpy (out, "00-", 3);
  memcpy (out + 3, trace_id, WEFT_TRACE_ID_HEX);
  out[35] = '-';
  memcpy (out + 36, span_id, WEFT_SPAN_ID_HEX);
  memcpy (out + 52, sampled ? "-01" : "-00", 4);
}

const char *
weft_trace_b3_trace_id (const char *trace_id, gboolean short_b3)
{
  if (short_b3 && strncmp (trace_id, "0000000000000000", 16) == 0)
    return trace_id + 16;
  return trace_id;
}

void
weft_trace_format_b3 (char out[WEFT_B3_MAX], const char *trace_id, gboolean short_b3,
                      const char *span_id, WeftTraceDecision decision, const char *parent_id)
{
  const char *state = decision == WEFT_TRACE_DECISION_DEBUG ? "d"
                    : decision == WEFT_TRACE_DECISION_SAMPLE ? "1" : "0";

  g_snprintf (out, WEFT_B3_MAX, "%s-%s-%s%s%s", weft_trace_b3_trace_id (trace_id, short_b3),
              span_id, state, parent_id != NULL && *parent_id ? "-" : "",
              parent_id != NULL ? parent_id : "");
}
