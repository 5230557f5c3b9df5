/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WeftPeer: the workload identity two sidecars trade in x-weft-peer, so a
 * metric on either side names both workloads (Istio does the same with
 * x-envoy-peer-metadata). The value is short key=value pairs:
 * "w=reviews-v2;n=bookinfo;s=reviews;a=reviews;v=v2;c=east-1".
 */
#include "weft-metrics-plugin-private.h"

#include <string.h>

typedef struct {
  char   key;
  gsize  offset;
  gsize  size;
} WeftPeerField;

static const WeftPeerField weft_peer_fields[] = {
  { 'w', G_STRUCT_OFFSET (WeftPeer, workload), sizeof ((WeftPeer *) 0)->workload },
  { 'n', G_STRUCT_OFFSET (WeftPeer, ns), sizeof ((WeftPeer *) 0)->ns },
  { 's', G_STRUCT_OFFSET (WeftPeer, service), sizeof ((WeftPeer *) 0)->service },
  { 'a', G_STRUCT_OFFSET (WeftPeer, app), sizeof ((WeftPeer *) 0)->app },
  { 'v', G_STRUCT_OFFSET (WeftPeer, version), sizeof ((WeftPeer *) 0)->version },
  { 'c', G_STRUCT_OFFSET (WeftPeer, cluster), sizeof ((WeftPeer *) 0)->cluster },
};

/* Kubernetes names and label values: nothing that could break a label */
static gboolean
weft_peer_char_ok (char c)
{
  return g_ascii_isalnum (c) || c == '-' || c == '_' || c == '.';
}

static const WeftPeerField *
weft_peer_field (char key)
{
  for (gsize i = 0; i < G_N_ELEMENTS (weft_peer_fields); i++)
    if (weft_peer_fields[i].key == key)
      return &weft_peer_fields[i];
  return NULL;
}

/* one "k=value" pair of @len bytes */
static gboolean
weft_peer_take (WeftPeer *peer, const char *pair, gsize len)
{
  const WeftPeerField *f;
  char *dst;

  if (len < 2 || pair[1] != '=')
    return FALSE;
  for (gsize i = 2; i < len; i++)
    if (!weft_peer_char_ok (pair[i]))
      return FALSE;
  f = weft_peer_field (pair[0]);
  if (f == NULL)
    return TRUE;   /* a newer sidecar's key: skip it */
  if (len - 2 >= f->size)
    return FALSE;
  dst = (char *) peer + f->offset;
  memcpy (dst, pair + 2, len - 2);
  dst[len - 2] = '\0';
  return TRUE;
}

gboolean
weft_peer_parse (const char *text, WeftPeer *peer)
{
  const char *p = text;

  memset (peer, 0, sizeof *peer);
  if (text == NULL || *text == '\0' || strlen (text) >= WEFT_PEER_MAX)
    return FALSE;
  while (*p != '\0')
    {
      const char *end = strchr (p, ';');
      gsize len = end != NULL ? (gsize) (end - p) : strlen (p);
      if (!weft_peer_take (peer, p, len))
        {
          memset (peer, 0, sizeof *peer);
          return FALSE;
        }
      p += len;
      if (*p == ';')
        p++;
    }
  return peer->workload[0] != '\0';
}

gboolean
weft_peer_format (const WeftPeer *peer, char *out, gsize size)
{
  gsize len = 0;

  out[0] = '\0';
  for (gsize i = 0; i < G_N_ELEMENTS (weft_peer_fields); i++)
    {
      const char *value = (const char *) peer + weft_peer_fields[i].offset;
      int n;
      if (*value == '\0')
        continue;
      n = g_snprintf (out + len, size - len, "%s%c=%s", len > 0 ? ";" : "",
                      weft_peer_fields[i].key, value);
      if (n < 0 || (gsize) n >= size - len)
        return FALSE;
      len += (gsize) n;
    }
  return TRUE;
}
