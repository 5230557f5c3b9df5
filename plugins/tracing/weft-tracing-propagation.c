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
#ifdef __SSE2__
#include <emmintrin.h>
#endif

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

/* the slot of @name among the propagation headers, or NULL; the length
 * and a letter pick the one candidate before any case-insensitive compare */
static const char **
weft_trace_headers_slot (WeftTraceHeaders *h, const char *name)
{
  gsize len = strlen (name);

  switch (name[0] | 0x20)
    {
    case 't':
      if (len == 11)
        return g_ascii_strcasecmp (name, "traceparent") == 0 ? &h->traceparent : NULL;
      if (len == 10)
        return g_ascii_strcasecmp (name, "tracestate") == 0 ? &h->tracestate : NULL;
      return NULL;
    case 'b':
      return len == 2 && name[1] == '3' ? &h->b3 : NULL;
    case 'x':
      /* x-forwarded-for and x-request-id are common: leave them cheaply */
      if (len < 10 || name[1] != '-' || (name[2] | 0x20) != 'b' || name[3] != '3' ||
          name[4] != '-')
        return NULL;
      name += 5;
      switch (len)
        {
        case 12:
          if ((name[0] | 0x20) == 't')
            return g_ascii_strcasecmp (name, "traceid") == 0 ? &h->x_b3_traceid : NULL;
          return g_ascii_strcasecmp (name, "sampled") == 0 ? &h->x_b3_sampled : NULL;
        case 11:
          return g_ascii_strcasecmp (name, "spanid") == 0 ? &h->x_b3_spanid : NULL;
        case 17:
          return g_ascii_strcasecmp (name, "parentspanid") == 0 ? &h->x_b3_parentspanid : NULL;
        case 10:
          return g_ascii_strcasecmp (name, "flags") == 0 ? &h->x_b3_flags : NULL;
        default:
          return NULL;
        }
    default:
      return NULL;
    }
}

/**
 * weft_trace_headers_take:
 * @h: the headers found so far
 * @name: a request header's name
 * @value: its value
 *
 * Keeps @value when @name is a propagation header (the first one wins).
 * Callers may skip names weft_trace_header_candidate() rejects.
 *
 * Returns: TRUE when it was one
 */
gboolean
weft_trace_headers_take (WeftTraceHeaders *h, const char *name, const char *value)
{
  const char **slot = weft_trace_headers_slot (h, name);

  if (slot == NULL)
    return FALSE;
  if (*slot == NULL)
    *slot = value;
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* writing                                                              */
/* ------------------------------------------------------------------ */

#ifdef __SSE2__
/* x86-64 always has SSE2: the 16 nibbles side by side in one register
 * become digits with a compare and two adds */
static inline void
weft_trace_hex64_digits (char *out, guint64 v)
{
  const __m128i low4 = _mm_set1_epi8 (0x0f);
  __m128i bytes = _mm_cvtsi64_si128 ((gint64) GUINT64_TO_BE (v));
  __m128i nibbles = _mm_unpacklo_epi8 (_mm_and_si128 (_mm_srli_epi16 (bytes, 4), low4),
                                       _mm_and_si128 (bytes, low4));
  __m128i letters = _mm_and_si128 (_mm_cmpgt_epi8 (nibbles, _mm_set1_epi8 (9)),
                                   _mm_set1_epi8 ('a' - '0' - 10));

  _mm_storeu_si128 ((__m128i *) out,
                    _mm_add_epi8 (nibbles, _mm_add_epi8 (letters, _mm_set1_epi8 ('0'))));
}
#else
static inline void
weft_trace_hex64_digits (char *out, guint64 v)
{
  for (int i = 15; i >= 0; i--, v >>= 4)
    out[i] = "0123456789abcdef"[v & 0xf];
}
#endif

/**
 * weft_trace_hex64:
 * @out: (out): 16 bytes; no NUL is written
 * @v: a number
 *
 * Writes @v as 16 lowercase hex digits, the most significant first.
 */
void
weft_trace_hex64 (char *out, guint64 v)
{
  weft_trace_hex64_digits (out, v);
}

/**
 * weft_trace_format_trace_id:
 * @out: (out): the trace id, 32 hex digits and a NUL
 * @hi: the high 64 bits, random
 * @lo: the low 64 bits, random
 *
 * An all-zero id is invalid, so that one case becomes ...01.
 */
void
weft_trace_format_trace_id (char out[WEFT_TRACE_ID_HEX + 1], guint64 hi, guint64 lo)
{
  weft_trace_hex64_digits (out, hi);
  weft_trace_hex64_digits (out + 16, (hi | lo) == 0 ? 1 : lo);
  out[WEFT_TRACE_ID_HEX] = '\0';
}

/**
 * weft_trace_format_span_id:
 * @out: (out): the span id, 16 hex digits and a NUL
 * @v: 64 random bits
 *
 * An all-zero id is invalid, so that one case becomes ...01.
 */
void
weft_trace_format_span_id (char out[WEFT_SPAN_ID_HEX + 1], guint64 v)
{
  weft_trace_hex64_digits (out, v == 0 ? 1 : v);
  out[WEFT_SPAN_ID_HEX] = '\0';
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
