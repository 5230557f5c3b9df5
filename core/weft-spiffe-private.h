/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * SPIFFE IDs of workloads: spiffe://<trust-domain>/ns/<namespace>/sa/<sa>.
 * GLib only, so the config loader (and its fuzz target) can check the IDs
 * a config names, and weftctl the trust domains it is given.
 */
#pragma once

#include <glib.h>
#include <string.h>

G_BEGIN_DECLS

#define WEFT_SPIFFE_TRUST_DOMAIN_MAX 255
#define WEFT_SPIFFE_ID_MAX 2048
#define WEFT_SPIFFE_PREFIX "spiffe://"

/* a SPIFFE trust domain: 1 to 255 of [a-z0-9.-_] (the first @len bytes of @s) */
static inline gboolean
weft_spiffe_is_trust_domain (const char *s, size_t len)
{
  if (len == 0 || len > WEFT_SPIFFE_TRUST_DOMAIN_MAX)
    return FALSE;
  for (size_t i = 0; i < len; i++)
    if (!(g_ascii_islower (s[i]) || g_ascii_isdigit (s[i]) || strchr (".-_", s[i]) != NULL))
      return FALSE;
  return TRUE;
}

/*
 * Splits spiffe://<td>/ns/<ns>/sa/<sa>. The scheme is lowercase "spiffe",
 * the trust domain 1-255 of [a-z0-9.-_] (so no port, no user info), the path
 * exactly four non-empty segments of [A-Za-z0-9.-_] that are not "." or
 * "..", no query, no fragment, no percent-encoding. Out arguments may be
 * NULL and are set only on success.
 */
gboolean weft_spiffe_id_parse (const char *uri, char **trust_domain, char **ns, char **sa);

G_END_DECLS
