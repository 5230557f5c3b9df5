/* weft-accesslog-private.h: the accesslog plugin's configuration
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <weft/plugin.h>

#include "weft-accesslog-format-private.h"
#include "weft-accesslog-writer-private.h"

G_BEGIN_DECLS

#define WEFT_ACCESSLOG_DEFAULT_BUFFER (1024 * 1024)
#define WEFT_ACCESSLOG_MIN_BUFFER     (64 * 1024)
#define WEFT_ACCESSLOG_MAX_BUFFER     (G_GUINT64_CONSTANT (1) << 30)

/**
 * WeftAccessLogSettings:
 * @path: the destination as written; "-" (the default) is stdout
 * @key: what the destination's writer is shared under
 * @buffer: bytes of lines held in memory for the writer, all workers together
 * @fd: the destination, opened while parsing so a problem is reported with
 *   its position; -1 once a writer took it
 *
 * The top-level `accesslog:` settings.
 */
typedef struct {
  char    *path;
  char    *key;
  guint64  buffer;
  int      fd;
} WeftAccessLogSettings;

/* parses @node (NULL = the defaults) and opens the destination */
gboolean weft_accesslog_settings_parse (const WeftNode *node, WeftAccessLogSettings *settings,
                                        GError **error);
void     weft_accesslog_settings_clear (WeftAccessLogSettings *settings);

/**
 * WeftAccessLogConfig:
 *
 * One generation's access log: the settings, the writer (shared with
 * other generations logging to the same destination), the counter of
 * lines the workers drop, and the SIGUSR1 source that asks for a reopen.
 */
typedef struct {
  WeftAccessLogSettings  settings;
  WeftAccessLogWriter   *writer;
  WeftMetricSeries      *dropped;
  guint                  sigusr1;
} WeftAccessLogConfig;

WeftAccessLogConfig *weft_accesslog_config_new  (WeftPluginContext *ctx, const WeftNode *node,
                                                 GError **error);
void                 weft_accesslog_config_free (WeftAccessLogConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (WeftAccessLogConfig, weft_accesslog_config_free)

G_END_DECLS
