/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "weft-route-table-private.h"

gboolean
weft_router_parse_settings (WeftRouterConfig *config, const WeftNode *node, GError **error)
{
  return TRUE;
}
