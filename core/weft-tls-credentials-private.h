/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WeftTlsCredentials: the workload certificate chain, its key and the trust
 * bundle, loaded once per generation on the main thread into GnuTLS
 * credentials, with what the leaf says about itself (SPIFFE ID, validity).
 * Refcounted: a worker holds a ref for as long as a session uses them.
 */
#pragma once

#include <weft/plugin.h>
#include <gnutls/gnutls.h>
#include "weft-spiffe-private.h"

G_BEGIN_DECLS

typedef struct _WeftTlsCredentials WeftTlsCredentials;

/*
 * Reads the PEM files once and builds the credentials. Refuses, with
 * WEFT_ERROR_IO for a file that cannot be read and WEFT_ERROR_CONFIG for
 * bad contents (message "file: reason"): no certificate, a key that does
 * not match the leaf, a chain the bundle does not sign, a leaf without or
 * with several spiffe:// URI SANs or one not of the form
 * spiffe://<td>/ns/<ns>/sa/<sa>. An expired or not yet valid leaf loads:
 * weft_tls_credentials_is_valid_at() and _get_seconds_left() say so.
 */
WeftTlsCredentials *weft_tls_credentials_load  (const char *cert_file,
                                                const char *key_file,
                                                const char *bundle_file,
                                                GError    **error);
WeftTlsCredentials *weft_tls_credentials_ref   (WeftTlsCredentials *creds);
void                weft_tls_credentials_unref (WeftTlsCredentials *creds);

const char *weft_tls_credentials_get_spiffe_id    (WeftTlsCredentials *creds);
/* SHA-256 over the three files' bytes as loaded */
const char *weft_tls_credentials_get_digest       (WeftTlsCredentials *creds);
const char *weft_tls_credentials_get_trust_domain (WeftTlsCredentials *creds);
/* the trust domains the bundle's CAs name in spiffe:// URI SANs; may be empty */
const char * const *weft_tls_credentials_get_bundle_trust_domains (WeftTlsCredentials *creds);
const char *weft_tls_credentials_get_cert_file    (WeftTlsCredentials *creds);
/* the leaf's notBefore and notAfter, unix seconds */
gint64      weft_tls_credentials_get_not_before   (WeftTlsCredentials *creds);
gint64      weft_tls_credentials_get_not_after    (WeftTlsCredentials *creds);
/* notAfter - @now (unix seconds): zero or less once the leaf has expired */
gint64      weft_tls_credentials_get_seconds_left (WeftTlsCredentials *creds, gint64 now);
/* TRUE when notBefore <= @now < notAfter: neither expired nor not yet valid */
gboolean    weft_tls_credentials_is_valid_at      (WeftTlsCredentials *creds, gint64 now);
/* owned by @creds: valid while the caller holds a ref */
gnutls_certificate_credentials_t weft_tls_credentials_get_gnutls (WeftTlsCredentials *creds);


/* the same digest of the files as they are now; NULL when one is unreadable */
char       *weft_tls_files_digest (const char *cert_file, const char *key_file,
                                   const char *bundle_file);

/* every spiffe:// URI SAN of @crt, as char* (a peer's, to check) */
GPtrArray *weft_tls_crt_spiffe_uris (gnutls_x509_crt_t crt);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (WeftTlsCredentials, weft_tls_credentials_unref)

G_END_DECLS
