/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WeftAdmin: the admin HTTP server on the main thread, on weft's own
 * parser: /ready, /live, /metrics, /config and POST /drain.
 */
#pragma once

#include <glib.h>
#include "weft-server-private.h"

G_BEGIN_DECLS

typedef struct _WeftAdmin WeftAdmin;

WeftAdmin *weft_admin_new  (WeftServer *server, const char *address, GError **error);
void       weft_admin_free (WeftAdmin *admin);

/* binds a listening TCP socket; @reuseport for worker listeners */
int        weft_listen_socket (const char *address, gboolean reuseport, GError **error);

G_END_DECLS
