/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "weft-route-table-private.h"

gboolean
weft_router_add_http_route (WeftRouterConfig *config, const WeftNode *doc, GError **error)
{
  weft_node_set_error (doc, error, "router: HTTPRoute is not supported yet");
  return FALSE;
}
