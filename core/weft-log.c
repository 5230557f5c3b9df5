/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One line per event on stderr: "LEVEL domain: message".
 */
#include "weft-log-private.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

WeftLogLevel weft_log_level_current = WEFT_LOG_INFO;

static const char *const weft_log_names[] = { "error", "warning", "info", "debug" };

void
weft_log_set_level (WeftLogLevel level)
{
  weft_log_level_current = level;
}

WeftLogLevel
weft_log_get_level (void)
{
  return weft_log_level_current;
}

gboolean
weft_log_parse_level (const char *text, WeftLogLevel *level)
{
  for (guint i = 0; i < G_N_ELEMENTS (weft_log_names); i++)
    if (g_ascii_strcasecmp (text, weft_log_names[i]) == 0)
      {
        *level = (WeftLogLevel) i;
        return TRUE;
      }
  return FALSE;
}

gboolean
weft_log_limit_allow (WeftLogLimit *limit, guint lines, guint window_s, guint *held_back)
{
  gint64 window = g_get_monotonic_time () / G_USEC_PER_SEC / MAX (window_s, 1u);

  *held_back = 0;
  if (window != limit->window)
    {
      *held_back = limit->held_back;
      limit->window = window;
      limit->lines = limit->held_back = 0;
    }
  if (limit->lines < lines)
    {
      limit->lines++;
      return TRUE;
    }
  limit->held_back++;
  return FALSE;
}

void
weft_log (WeftLogLevel level, const char *domain, const char *format, ...)
{
  char line[2048];
  gsize len;
  va_list args;
  int n;

  if (!weft_log_enabled (level))
    return;
  n = g_snprintf (line, sizeof line, "%s %s: ",
                  weft_log_names[MIN ((guint) level, 3u)], domain ? domain : "weft");
  len = MIN ((gsize) n, sizeof line - 2);
  va_start (args, format);
  n = g_vsnprintf (line + len, sizeof line - len - 1, format, args);
  va_end (args);
  len = MIN (len + (gsize) MAX (n, 0), sizeof line - 2);
  /* one message, one line: fold any newline the message carries */
  for (gsize i = 0; i < len; i++)
    if (line[i] == '\n')
      line[i] = ' ';
  line[len++] = '\n';
  /* a single write keeps lines from different threads whole */
  if (write (STDERR_FILENO, line, len) < 0)
    return;
}
