/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for the tracing plugin's propagation parsers
 * (plugins/tracing/weft-tracing-propagation.c): W3C traceparent, B3 single
 * (`b3`) and B3 multi (x-b3-*), and weft_trace_extract() over all of them.
 *
 * The input is header lines, "name: value" or "name:value"; each goes
 * through weft_trace_headers_take() as the plugin's header scan does, and
 * each value is also parsed alone as a traceparent and as a b3 header.
 * Checked besides memory errors: a valid parent has ids of the exact
 * length, lowercase hex and not all zero, and writing it back
 * (weft_trace_format_traceparent, weft_trace_format_b3) parses to the
 * same parent.
 */
#include "weft-tracing-span-private.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define WEFT_FUZZ_CHECK(cond) \
  do { if (!(cond)) __builtin_trap (); } while (0)

static void
weft_fuzz_check_id (const char *id, gsize len)
{
  gboolean nonzero = FALSE;

  WEFT_FUZZ_CHECK (strlen (id) == len);
  for (gsize i = 0; i < len; i++)
    {
      WEFT_FUZZ_CHECK ((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f'));
      nonzero |= id[i] != '0';
    }
  WEFT_FUZZ_CHECK (nonzero);
}

static void
weft_fuzz_check_parent (const WeftTraceParent *p)
{
  if (p->source == WEFT_TRACE_SOURCE_NONE)
    {
      WEFT_FUZZ_CHECK (p->trace_id[0] == '\0' && p->span_id[0] == '\0');
      return;
    }
  weft_fuzz_check_id (p->trace_id, WEFT_TRACE_ID_HEX);
  weft_fuzz_check_id (p->span_id, WEFT_SPAN_ID_HEX);
}

/* what weft writes upstream for @p parses back to @p */
static void
weft_fuzz_round_trip (const WeftTraceParent *p)
{
  char tp[WEFT_TRACEPARENT_MAX];
  char b3[WEFT_B3_MAX];
  WeftTraceParent back;
  gboolean sampled = p->decision == WEFT_TRACE_DECISION_SAMPLE ||
                     p->decision == WEFT_TRACE_DECISION_DEBUG;

  if (p->source == WEFT_TRACE_SOURCE_NONE)
    return;
  weft_trace_format_traceparent (tp, p->trace_id, p->span_id, sampled);
  WEFT_FUZZ_CHECK (strlen (tp) == WEFT_TRACEPARENT_MAX - 1);
  WEFT_FUZZ_CHECK (weft_trace_parse_traceparent (tp, &back));
  WEFT_FUZZ_CHECK (strcmp (back.trace_id, p->trace_id) == 0);
  WEFT_FUZZ_CHECK (strcmp (back.span_id, p->span_id) == 0);

  weft_trace_format_b3 (b3, p->trace_id, p->short_b3, p->span_id, p->decision, p->span_id);
  WEFT_FUZZ_CHECK (weft_trace_parse_b3_single (b3, &back));
  WEFT_FUZZ_CHECK (strcmp (back.trace_id, p->trace_id) == 0);
  WEFT_FUZZ_CHECK (strcmp (back.span_id, p->span_id) == 0);
  WEFT_FUZZ_CHECK (back.decision == (p->decision == WEFT_TRACE_DECISION_NONE ?
                                     WEFT_TRACE_DECISION_DROP : p->decision));
}

/* one value on its own, as each kind of header */
static void
weft_fuzz_value (const char *value)
{
  WeftTraceParent p;

  if (weft_trace_parse_traceparent (value, &p))
    WEFT_FUZZ_CHECK (p.source == WEFT_TRACE_SOURCE_W3C);
  weft_fuzz_check_parent (&p);
  weft_fuzz_round_trip (&p);
  if (weft_trace_parse_b3_single (value, &p))
    WEFT_FUZZ_CHECK (p.source == WEFT_TRACE_SOURCE_B3_SINGLE);
  weft_fuzz_check_parent (&p);
  weft_fuzz_round_trip (&p);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree char *text = g_strndup ((const char *) data, size);
  g_auto(GStrv) lines = g_strsplit (text, "\n", 64);
  WeftTraceHeaders h = { NULL };
  WeftTraceParent p;

  for (guint i = 0; lines[i] != NULL; i++)
    {
      char *colon = strchr (lines[i], ':');
      char *value;

      g_strchomp (lines[i]);
      if (colon == NULL || colon == lines[i])
        {
          weft_fuzz_value (lines[i]);
          continue;
        }
      *colon = '\0';
      value = colon[1] == ' ' ? colon + 2 : colon + 1;
      /* the cheap pre-check never rejects a name the scan would take */
      if (!weft_trace_header_candidate (lines[i]))
        WEFT_FUZZ_CHECK (!weft_trace_headers_take (&(WeftTraceHeaders) { NULL }, lines[i], value));
      weft_trace_headers_take (&h, lines[i], value);
      weft_fuzz_value (value);
    }
  if (weft_trace_parse_b3_multi (&h, &p))
    WEFT_FUZZ_CHECK (p.source == WEFT_TRACE_SOURCE_B3_MULTI);
  weft_fuzz_check_parent (&p);
  weft_trace_extract (&h, &p);
  weft_fuzz_check_parent (&p);
  weft_fuzz_round_trip (&p);
  return 0;
}
