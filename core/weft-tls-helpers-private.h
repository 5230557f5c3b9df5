/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * GnuTLS cleanup helpers, shared by the core (WeftTlsCredentials) and
 * weftctl. Header-only: weftctl does not
 * link the core.
 */
#pragma once

#include <glib.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <string.h>
#include "weft-spiffe-private.h"

G_BEGIN_DECLS

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

G_END_DECLS
