/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "weft-spiffe-private.h"

static gboolean
weft_spiffe_is_segment (const char *s)
{
  if (*s == '\0' || strcmp (s, ".") == 0 || strcmp (s, "..") == 0)
    return FALSE;
  for (; *s != '\0'; s++)
    if (!(g_ascii_isalnum (*s) || strchr (".-_", *s) != NULL))
      return FALSE;
  return TRUE;
}

/**
 * weft_spiffe_id_parse:
 * @uri: a candidate SPIFFE ID
 * @trust_domain: (out) (optional): the trust domain
 * @ns: (out) (optional): the namespace
 * @sa: (out) (optional): the service account
 *
 * Splits a workload SPIFFE ID of the form spiffe://<td>/ns/<ns>/sa/<sa>,
 * refusing anything the SPIFFE specification or that form does not allow.
 *
 * Returns: %TRUE if @uri is such an ID; the out arguments are set only then
 */
gboolean
weft_spiffe_id_parse (const char *uri, char **trust_domain, char **ns, char **sa)
{
  const char *host, *path;
  g_auto(GStrv) seg = NULL;

  g_return_val_if_fail (uri != NULL, FALSE);

  if (!g_str_has_prefix (uri, WEFT_SPIFFE_PREFIX) || strlen (uri) > WEFT_SPIFFE_ID_MAX)
    return FALSE;
  host = uri + strlen (WEFT_SPIFFE_PREFIX);
  path = strchr (host, '/');
  /* the trust domain's alphabet has no ':', '@', '?' or '#' */
  if (path == NULL || !weft_spiffe_is_trust_domain (host, (size_t) (path - host)))
    return FALSE;
  /* "/ns/<ns>/sa/<sa>" splits into "", "ns", <ns>, "sa", <sa> */
  seg = g_strsplit (path, "/", 6);
  if (g_strv_length (seg) != 5 || strcmp (seg[1], "ns") != 0 || strcmp (seg[3], "sa") != 0
      || !weft_spiffe_is_segment (seg[2]) || !weft_spiffe_is_segment (seg[4]))
    return FALSE;
  if (trust_domain != NULL)
    *trust_domain = g_strndup (host, (size_t) (path - host));
  if (ns != NULL)
    *ns = g_strdup (seg[2]);
  if (sa != NULL)
    *sa = g_strdup (seg[4]);
  return TRUE;
}
