/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <weft/plugin.h>

G_BEGIN_DECLS

void     weft_log_set_level   (WeftLogLevel level);
WeftLogLevel weft_log_get_level (void);
/* "error", "warning", "info", "debug" */
gboolean weft_log_parse_level (const char *text, WeftLogLevel *level);
/* TRUE when a message of @level would be printed: check before formatting */
static inline gboolean
weft_log_enabled (WeftLogLevel level)
{
  extern WeftLogLevel weft_log_level_current;
  return level <= weft_log_level_current;
}

G_END_DECLS
