/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer targets for the HTTP/1.1 head parser and the chunked decoder,
 * one source built three times (fuzz/meson.build): WEFT_FUZZ_HTTP is 0 for
 * fuzz-http-request, 1 for fuzz-http-response (also as the answer to a
 * HEAD), 2 for fuzz-http-chunked.
 * Besides memory errors (ASan/UBSan), it checks invariants the proxy relies
 * on: INCOMPLETE leaves the buffer alone, an OK head lies inside the buffer
 * and its strings are terminated where their lengths say, every prefix of an
 * OK head is INCOMPLETE, and the chunked decoder gives the same answer
 * whatever the split of its input.
 */

#include "weft-http-parser-private.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef WEFT_FUZZ_HTTP
#error "build with -DWEFT_FUZZ_HTTP=0 (request), 1 (response) or 2 (chunked)"
#endif

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define WEFT_FUZZ_CHECK(cond) \
  do { if (!(cond)) __builtin_trap (); } while (0)

/* a string of the head: inside the head, NUL-terminated at its length */
static void
weft_fuzz_check_string (const char *buf, const WeftHttpHead *head, const char *s, gsize len)
{
  WEFT_FUZZ_CHECK (s >= buf && s + len < buf + head->head_len);
  WEFT_FUZZ_CHECK (s[len] == '\0');
  WEFT_FUZZ_CHECK (memchr (s, '\0', len) == NULL);
}

static void
weft_fuzz_check_head (const char *buf, gsize len, const WeftHttpLimits *limits,
                      gboolean response, const WeftHttpHead *head)
{
  guint i;

  WEFT_FUZZ_CHECK (head->head_len >= 4 && head->head_len <= len);
  WEFT_FUZZ_CHECK (head->head_len <= limits->max_head);
  WEFT_FUZZ_CHECK (head->n_headers <= limits->max_headers);
  WEFT_FUZZ_CHECK (head->version_minor <= 1);
  if (response)
    {
      WEFT_FUZZ_CHECK (head->status >= 100 && head->status <= 599);
      weft_fuzz_check_string (buf, head, head->reason, strlen (head->reason));
    }
  else
    {
      weft_fuzz_check_string (buf, head, head->method, head->method_len);
      weft_fuzz_check_string (buf, head, head->target, head->target_len);
      WEFT_FUZZ_CHECK (head->method_len > 0 && head->target_len > 0);
      WEFT_FUZZ_CHECK (head->body_kind != WEFT_HTTP_BODY_CLOSE);
    }
  for (i = 0; i < head->n_headers; i++)
    {
      weft_fuzz_check_string (buf, head, head->headers[i].name, head->headers[i].name_len);
      weft_fuzz_check_string (buf, head, head->headers[i].value, head->headers[i].value_len);
      WEFT_FUZZ_CHECK (head->headers[i].name_len > 0);
    }
  WEFT_FUZZ_CHECK (head->host_idx < (gint) head->n_headers);
  if (head->body_kind == WEFT_HTTP_BODY_LENGTH)
    WEFT_FUZZ_CHECK (head->content_length > 0 && head->content_length <= (guint64) G_MAXINT64);
}

static WeftHttpParseStatus
weft_fuzz_parse (char *buf, gsize len, const WeftHttpLimits *limits, int mode,
                 WeftHttpHead *head, WeftHttpError *err)
{
  if (mode == 0)
    return weft_http_parse_request (buf, len, limits, head, err);
  return weft_http_parse_response (buf, len, limits, mode == 2, head, err);
}

/* @mode: 0 request, 1 response, 2 response to HEAD */
G_GNUC_UNUSED static void
weft_fuzz_head (const uint8_t *data, size_t size, const WeftHttpLimits *limits, int mode)
{
  char *buf = malloc (size ? size : 1);
  WeftHttpHead *head = malloc (sizeof (WeftHttpHead));
  WeftHttpParseStatus st;
  WeftHttpError err;
  gsize head_len;

  memcpy (buf, data, size);
  st = weft_fuzz_parse (buf, size, limits, mode, head, &err);
  WEFT_FUZZ_CHECK ((st == WEFT_HTTP_PARSE_ERROR) == (err != WEFT_HTTP_ERR_NONE));
  WEFT_FUZZ_CHECK ((guint) err < WEFT_HTTP_ERR_LAST);
  if (st != WEFT_HTTP_PARSE_OK)
    {
      WEFT_FUZZ_CHECK (memcmp (buf, data, size) == 0);
      WEFT_FUZZ_CHECK (weft_http_error_reason (err) != NULL);
      goto out;
    }
  weft_fuzz_check_head (buf, size, limits, mode != 0, head);
  if (head->n_headers > 0)
    WEFT_FUZZ_CHECK (weft_http_head_find (head, head->headers[0].name) >= 0);

  /* every strict prefix of an OK head is INCOMPLETE: check two of them */
  head_len = head->head_len;
  memcpy (buf, data, size);
  WEFT_FUZZ_CHECK (weft_fuzz_parse (buf, head_len - 1, limits, mode, head, &err) == WEFT_HTTP_PARSE_INCOMPLETE);
  WEFT_FUZZ_CHECK (weft_fuzz_parse (buf, head_len / 2, limits, mode, head, &err) == WEFT_HTTP_PARSE_INCOMPLETE);
  WEFT_FUZZ_CHECK (memcmp (buf, data, size) == 0);
  /* and the head alone parses to the same length */
  WEFT_FUZZ_CHECK (weft_fuzz_parse (buf, head_len, limits, mode, head, &err) == WEFT_HTTP_PARSE_OK);
  WEFT_FUZZ_CHECK (head->head_len == head_len);

out:
  free (head);
  free (buf);
}

/* feeds @data cut at @a and @b (a <= b); returns consumed total or -1 */
static gssize
weft_fuzz_chunked (const uint8_t *data, size_t size, size_t a, size_t b, gboolean *done)
{
  const size_t cuts[] = { 0, a, b, size };
  WeftChunkedDecoder dec;
  gsize total = 0;
  gsize i;

  weft_chunked_decoder_init (&dec);
  for (i = 0; i + 1 < G_N_ELEMENTS (cuts); i++)
    {
      size_t n = cuts[i + 1] - cuts[i];
      /* an exact-size copy per piece, so over-reads show */
      char *piece = malloc (n ? n : 1);
      gssize r;

      memcpy (piece, data + cuts[i], n);
      r = weft_chunked_decoder_feed (&dec, piece, n);
      free (piece);
      if (r < 0)
        return -1;
      WEFT_FUZZ_CHECK ((size_t) r <= n);
      total += (gsize) r;
      if ((size_t) r < n)
        {
          WEFT_FUZZ_CHECK (dec.done);
          break;
        }
    }
  *done = dec.done;
  return (gssize) total;
}

G_GNUC_UNUSED static void
weft_fuzz_chunked_all (const uint8_t *data, size_t size)
{
  size_t a = size ? data[0] % (size + 1) : 0;
  size_t b = size ? (size_t) data[size - 1] * 7 % (size + 1) : 0;
  gboolean done1 = FALSE, done2 = FALSE;
  gssize r1, r2;

  r1 = weft_fuzz_chunked (data, size, size, size, &done1);
  r2 = weft_fuzz_chunked (data, size, MIN (a, b), MAX (a, b), &done2);
  WEFT_FUZZ_CHECK (r1 == r2);
  WEFT_FUZZ_CHECK (done1 == done2);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
#if WEFT_FUZZ_HTTP == 2
  weft_fuzz_chunked_all (data, size);
#else
  WeftHttpLimits limits, tight;
  int mode;

  weft_http_limits_init_default (&limits);
  /* small limits reach the limit paths with small inputs */
  tight.max_request_line = 40;
  tight.max_head = 160;
  tight.max_headers = 4;

  /* the request parser (mode 0), or a response to GET and to HEAD (1, 2) */
  for (mode = WEFT_FUZZ_HTTP; mode <= WEFT_FUZZ_HTTP * 2; mode++)
    {
      weft_fuzz_head (data, size, &limits, mode);
      weft_fuzz_head (data, size, &tight, mode);
    }
#endif
  return 0;
}
