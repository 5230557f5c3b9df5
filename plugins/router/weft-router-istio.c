/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "weft-route-table-private.h"

gboolean
weft_router_add_virtual_service (WeftRouterConfig *config, const WeftNode *doc, GError **error)
{
  weft_node_set_error (doc, error, "router: VirtualService is not supported yet");
  return FALSE;
}

gboolean
weft_router_add_destination_rule (WeftRouterConfig *config, const WeftNode *doc, GError **error)
{
  weft_node_set_error (doc, error, "router: DestinationRule is not supported yet");
  return FALSE;
}
