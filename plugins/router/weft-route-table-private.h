/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WeftRouteTable: the compiled, indexed form of a router config. Owned by
 * the route-table helper's files; this header holds what the rest use.
 */
#pragma once

#include "weft-router-private.h"

G_BEGIN_DECLS

typedef struct _WeftRouteTable WeftRouteTable;

void weft_route_table_free (WeftRouteTable *table);
/* frees a compiled pcre2_code (NULL is fine) */
void weft_route_regex_free (gpointer re);

G_END_DECLS
