/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * GnuTLS cleanup helpers and the SPIFFE trust-domain check, shared by the
 * core (WeftTlsCredentials) and weftctl. Header-only: weftctl does not
 * link the core.
 */
#pragma once

#include <glib.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <string.h>

G_BEGIN_DECLS

#define WEFT_SPIFFE_TRUST_DOMAIN_MAX 255

/* frees a datum GnuTLS allocated, wiping it first: it may hold a private key */
static inline void
weft_tls_datum_clear (gnutls_datum_t *d)
{
  if (d->data != NULL)
    {
      explicit_bzero (d->data, d->size);
      gnutls_free (d->data);
    }
  d->data = NULL;
  d->size = 0;
}

/* what gnutls_x509_crt_list_import2 hands back */
typedef struct {
  gnutls_x509_crt_t *certs;
  unsigned int       n;
} WeftTlsCertList;

static inline void
weft_tls_cert_list_clear (WeftTlsCertList *list)
{
  for (unsigned int i = 0; i < list->n; i++)
    gnutls_x509_crt_deinit (list->certs[i]);
  gnutls_free (list->certs);
  list->certs = NULL;
  list->n = 0;
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (gnutls_datum_t, weft_tls_datum_clear)
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (WeftTlsCertList, weft_tls_cert_list_clear)
G_DEFINE_AUTO_CLEANUP_FREE_FUNC (gnutls_x509_crt_t, gnutls_x509_crt_deinit, NULL)
G_DEFINE_AUTO_CLEANUP_FREE_FUNC (gnutls_x509_privkey_t, gnutls_x509_privkey_deinit, NULL)

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

G_END_DECLS
