/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WeftServer: the main thread. Owns the current generation, the listener
 * sockets and the workers; reloads, drains, serves admin and speaks
 * sd_notify.
 */
#pragma once

#include <glib.h>
#include "weft-generation-private.h"

G_BEGIN_DECLS

typedef struct _WeftServer WeftServer;

WeftServer *weft_server_new       (const char *config_path, GError **error);
/* binds, starts the workers, watches the config; then run the main loop */
gboolean    weft_server_start     (WeftServer *server, GError **error);
/* runs until drained; returns the exit code */
int         weft_server_run       (WeftServer *server);
void        weft_server_free      (WeftServer *server);

/* loads and applies the config again; FALSE (the old config stays) on error */
gboolean    weft_server_reload    (WeftServer *server, GError **error);
/* stops accepting, finishes in-flight work, then quits the loop */
void        weft_server_drain     (WeftServer *server);

/* for admin */
gboolean    weft_server_is_ready  (WeftServer *server);
void        weft_server_render_metrics (WeftServer *server, GString *out);
void        weft_server_render_config  (WeftServer *server, GString *out);

/* weft --check: everything a start would do but bind; prints each problem */
gboolean    weft_server_check     (const char *config_path, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (WeftServer, weft_server_free)

G_END_DECLS
