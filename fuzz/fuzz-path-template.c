/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for the path-template matcher that the acl and
 * ratelimit plugins share (plugins/common/weft-policy.c): Istio path
 * patterns ("/x", "/pre*", "*suf", "*") and Envoy URI templates with {*}
 * (one non-empty segment) and {**} (the rest, '/' included, possibly empty).
 *
 * The input is a pattern, a newline, then paths, one per line. For every
 * pattern weft_policy_path_valid() accepts, each path's answer from
 * weft_policy_path_match() must equal that of a plain backtracking matcher
 * written from the documented rules (docs/acl.md), which knows nothing of
 * weft's one-pass scan.
 */
#include "weft-policy-private.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define WEFT_FUZZ_CHECK(cond) \
  do { if (!(cond)) __builtin_trap (); } while (0)

/* the reference: every way {*} and {**} could split the path is tried */
static gboolean
weft_fuzz_template (const char *p, const char *s, gsize n)
{
  if (*p == '\0')
    return n == 0;
  if (g_str_has_prefix (p, "{**}"))
    {
      for (gsize k = 0; k <= n; k++)
        if (weft_fuzz_template (p + 4, s + k, n - k))
          return TRUE;
      return FALSE;
    }
  if (g_str_has_prefix (p, "{*}"))
    {
      for (gsize k = 1; k <= n && s[k - 1] != '/'; k++)
        if (weft_fuzz_template (p + 3, s + k, n - k))
          return TRUE;
      return FALSE;
    }
  return n > 0 && *s == *p && weft_fuzz_template (p + 1, s + 1, n - 1);
}

static gboolean
weft_fuzz_plain (const char *p, const char *s, gsize n)
{
  gsize m = strlen (p);

  if (strcmp (p, "*") == 0)
    return n > 0;
  if (m > 0 && p[m - 1] == '*')
    return n >= m - 1 && memcmp (s, p, m - 1) == 0;
  if (m > 0 && p[0] == '*')
    return n >= m - 1 && memcmp (s + n - (m - 1), p + 1, m - 1) == 0;
  return n == m && memcmp (s, p, m) == 0;
}

static gboolean
weft_fuzz_reference (const char *pattern, const char *path)
{
  gsize n = strcspn (path, "?#");   /* the query string is not the path */

  if (strchr (pattern, '{') != NULL || strchr (pattern, '}') != NULL)
    return weft_fuzz_template (pattern, path, n);
  return weft_fuzz_plain (pattern, path, n);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  const char *why = NULL;

  /* a pattern is config, a path is one request line: both stay small */
  if (size > 4096 || memchr (data, '\0', size) != NULL)
    return 0;
  text = g_strndup ((const char *) data, size);
  lines = g_strsplit (text, "\n", 64);
  if (lines[0] == NULL || !weft_policy_path_valid (lines[0], &why))
    return 0;
  for (guint i = 1; lines[i] != NULL; i++)
    WEFT_FUZZ_CHECK (weft_policy_path_match (lines[0], lines[i]) ==
                     weft_fuzz_reference (lines[0], lines[i]));
  return 0;
}
