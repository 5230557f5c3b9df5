/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * ASCII helpers for the data path: header names compare case-insensitively
 * on every request, and the locale-free inline beats a libglib call.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

static inline guchar
weft_ascii_lower (guchar c)
{
  return (guchar) (c + ((guchar) (c - 'A') < 26u ? 32 : 0));
}

/* the first @len bytes of @a and @b are equal but for ASCII case */
static inline gboolean
weft_ascii_caseeq (const char *a, const char *b, gsize len)
{
  for (gsize i = 0; i < len; i++)
    if (a[i] != b[i] && weft_ascii_lower ((guchar) a[i]) != weft_ascii_lower ((guchar) b[i]))
      return FALSE;
  return TRUE;
}

/* writes @v in decimal at @out (room for 20 digits); returns the length */
static inline gsize
weft_ascii_u64 (char *out, guint64 v)
{
  char tmp[20];
  gsize n = 0;

  do
    {
      tmp[n++] = (char) ('0' + v % 10);
      v /= 10;
    }
  while (v != 0);
  for (gsize i = 0; i < n; i++)
    out[i] = tmp[n - 1 - i];
  return n;
}

G_END_DECLS
