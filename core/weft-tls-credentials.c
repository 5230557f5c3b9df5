/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WeftTlsCredentials: PEM workload chain, key and trust bundle into GnuTLS
 * credentials. Each file is read once and the same bytes are both checked
 * here and handed to GnuTLS, so a kubelet swap between two reads can never
 * pair a checked file with an unchecked one.
 */
#include "weft-tls-credentials-private.h"
#include "weft-tls-helpers-private.h"

#include <glib/gi18n.h>
#include <gnutls/x509.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* far above any real chain or bundle; stops a path to /dev/zero */
#define WEFT_TLS_FILE_MAX (4 * 1024 * 1024)
#define WEFT_TLS_KEY_ID_MAX 64

struct _WeftTlsCredentials {
  gint                             refcount;
  gnutls_certificate_credentials_t gnutls;
  char                            *cert_file;
  char                            *spiffe_id;
  char                            *trust_domain;
  GStrv                            bundle_trust_domains;
  gint64                           not_before;
  gint64                           not_after;
  char                            *digest;
};


/* ------------------------------------------------------------------ */
/* reading and parsing                                                  */

static gboolean
weft_tls_read_fd (int fd, const char *path, GByteArray *buf, GError **error)
{
  guint8 chunk[4096];

  for (;;)
    {
      ssize_t n = read (fd, chunk, sizeof chunk);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int saved = errno;
          g_set_error (error, WEFT_ERROR, WEFT_ERROR_IO, "%s: %s", path, g_strerror (saved));
          return FALSE;
        }
      if (n == 0)
        return TRUE;
      if (buf->len + (gsize) n > WEFT_TLS_FILE_MAX)
        {
          g_set_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG,
                       _("%s: larger than %d bytes, not a PEM file"), path, WEFT_TLS_FILE_MAX);
          return FALSE;
        }
      g_byte_array_append (buf, chunk, (guint) n);
      explicit_bzero (chunk, sizeof chunk);
    }
}

/* the whole file into a gnutls datum; the path and the reason on failure */
static gboolean
weft_tls_read_file (const char *path, gnutls_datum_t *out, GError **error)
{
  g_autoptr(GByteArray) buf = g_byte_array_new ();
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  gboolean ok;

  if (fd < 0)
    {
      int saved = errno;
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_IO, "%s: %s", path, g_strerror (saved));
      return FALSE;
    }
  ok = weft_tls_read_fd (fd, path, buf, error);
  close (fd);
  if (ok)
    {
      out->data = gnutls_malloc (buf->len + 1);
      memcpy (out->data, buf->data, buf->len);
      out->data[buf->len] = '\0';
      out->size = buf->len;
    }
  explicit_bzero (buf->data, buf->len);
  return ok;
}

/* one hash of the three files' bytes: did a rotation change anything? */
static char *
weft_tls_digest (const gnutls_datum_t *cert, const gnutls_datum_t *key,
                 const gnutls_datum_t *bundle)
{
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  const gnutls_datum_t *parts[] = { cert, key, bundle };

  for (guint i = 0; i < G_N_ELEMENTS (parts); i++)
    {
      guint32 len = parts[i]->size;
      g_checksum_update (sum, (const guchar *) &len, sizeof len);
      g_checksum_update (sum, parts[i]->data, parts[i]->size);
    }
  return g_strdup (g_checksum_get_string (sum));
}

char *
weft_tls_files_digest (const char *cert_file, const char *key_file, const char *bundle_file)
{
  g_auto(gnutls_datum_t) cert = { NULL, 0 };
  g_auto(gnutls_datum_t) key = { NULL, 0 };
  g_auto(gnutls_datum_t) bundle = { NULL, 0 };

  if (!weft_tls_read_file (cert_file, &cert, NULL) || !weft_tls_read_file (key_file, &key, NULL)
      || !weft_tls_read_file (bundle_file, &bundle, NULL))
    return NULL;
  return weft_tls_digest (&cert, &key, &bundle);
}

static gboolean
weft_tls_import_certs (const char *path, const gnutls_datum_t *pem, unsigned int flags,
                       WeftTlsCertList *out, GError **error)
{
  int ret = gnutls_x509_crt_list_import2 (&out->certs, &out->n, pem, GNUTLS_X509_FMT_PEM, flags);

  if (ret < 0)
    {
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG,
                   _("%s: not a list of PEM certificates (%s)"), path, gnutls_strerror (ret));
      return FALSE;
    }
  if (out->n == 0)
    {
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG, _("%s: holds no certificate"), path);
      return FALSE;
    }
  return TRUE;
}

static gboolean
weft_tls_import_key (const char *path, const gnutls_datum_t *pem, gnutls_x509_privkey_t *out,
                     GError **error)
{
  g_auto(gnutls_x509_privkey_t) key = NULL;
  int ret = gnutls_x509_privkey_init (&key);

  if (ret >= 0)
    ret = gnutls_x509_privkey_import2 (key, pem, GNUTLS_X509_FMT_PEM, NULL, 0);
  if (ret < 0)
    {
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG,
                   _("%s: not an unencrypted PEM private key (%s)"), path, gnutls_strerror (ret));
      return FALSE;
    }
  *out = g_steal_pointer (&key);
  return TRUE;
}

/* the same public key hashes to the same key id */
static gboolean
weft_tls_key_matches (gnutls_x509_crt_t leaf, gnutls_x509_privkey_t key, const char *key_file,
                      const char *cert_file, GError **error)
{
  unsigned char crt_id[WEFT_TLS_KEY_ID_MAX], key_id[WEFT_TLS_KEY_ID_MAX];
  size_t crt_len = sizeof crt_id, key_len = sizeof key_id;

  if (gnutls_x509_privkey_get_key_id (key, GNUTLS_KEYID_USE_SHA256, key_id, &key_len) >= 0
      && gnutls_x509_crt_get_key_id (leaf, GNUTLS_KEYID_USE_SHA256, crt_id, &crt_len) >= 0
      && key_len == crt_len && memcmp (key_id, crt_id, key_len) == 0)
    return TRUE;
  g_set_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG,
               _("%s: the private key does not match the certificate in %s"), key_file, cert_file);
  return FALSE;
}

/* SAN number @i of @crt: its type, or a negative GnuTLS error at the end
 * of the list; *out holds the value when the type is a URI */
static int
weft_tls_crt_san (gnutls_x509_crt_t crt, unsigned int i, char **out)
{
  size_t len = 0;
  g_autofree char *value = NULL;
  int type = gnutls_x509_crt_get_subject_alt_name (crt, i, NULL, &len, NULL);

  if (type != GNUTLS_E_SHORT_MEMORY_BUFFER)
    return type;
  value = g_malloc0 (len + 1);
  type = gnutls_x509_crt_get_subject_alt_name (crt, i, value, &len, NULL);
  /* a URI with an embedded NUL is nobody's SPIFFE ID */
  if (type == GNUTLS_SAN_URI && strlen (value) == len)
    *out = g_steal_pointer (&value);
  return type;
}

/* every spiffe:// URI SAN of @crt */
GPtrArray *
weft_tls_crt_spiffe_uris (gnutls_x509_crt_t crt)
{
  GPtrArray *uris = g_ptr_array_new_with_free_func (g_free);

  for (unsigned int i = 0;; i++)
    {
      g_autofree char *uri = NULL;
      int type = weft_tls_crt_san (crt, i, &uri);

      if (type < 0)
        return uris;
      if (uri != NULL && g_str_has_prefix (uri, WEFT_SPIFFE_PREFIX))
        g_ptr_array_add (uris, g_steal_pointer (&uri));
    }
}

static gboolean
weft_tls_take_leaf_identity (WeftTlsCredentials *creds, gnutls_x509_crt_t leaf, GError **error)
{
  g_autoptr(GPtrArray) uris = weft_tls_crt_spiffe_uris (leaf);

  if (uris->len != 1)
    {
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG,
                   uris->len == 0
                   ? _("%s: the certificate has no spiffe:// URI SAN")
                   : _("%s: the certificate has more than one spiffe:// URI SAN"),
                   creds->cert_file);
      return FALSE;
    }
  if (!weft_spiffe_id_parse (uris->pdata[0], &creds->trust_domain, NULL, NULL))
    {
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG,
                   _("%s: the SPIFFE ID %s is not of the form spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>"),
                   creds->cert_file, (const char *) uris->pdata[0]);
      return FALSE;
    }
  creds->spiffe_id = g_strdup (uris->pdata[0]);
  creds->not_before = gnutls_x509_crt_get_activation_time (leaf);
  creds->not_after = gnutls_x509_crt_get_expiration_time (leaf);
  return TRUE;
}

/* the trust domains the bundle's CAs name, each once, in file order */
static GStrv
weft_tls_bundle_trust_domains (const WeftTlsCertList *cas)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_autoptr(GPtrArray) seen = g_ptr_array_new_with_free_func (g_free);

  for (unsigned int i = 0; i < cas->n; i++)
    {
      g_autoptr(GPtrArray) uris = weft_tls_crt_spiffe_uris (cas->certs[i]);

      for (guint j = 0; j < uris->len; j++)
        {
          const char *host = (const char *) uris->pdata[j] + strlen (WEFT_SPIFFE_PREFIX);
          size_t len = strcspn (host, "/");
          g_autofree char *td = g_strndup (host, len);

          if (!weft_spiffe_is_trust_domain (td, len)
              || g_ptr_array_find_with_equal_func (seen, td, g_str_equal, NULL))
            continue;
          g_strv_builder_add (builder, td);
          g_ptr_array_add (seen, g_steal_pointer (&td));
        }
    }
  return g_strv_builder_end (builder);
}

/* ------------------------------------------------------------------ */
/* building the credentials                                             */

static gboolean
weft_tls_set_key_and_trust (WeftTlsCredentials *creds, WeftTlsCertList *chain,
                            gnutls_x509_privkey_t key, WeftTlsCertList *cas,
                            const char *bundle_file, GError **error)
{
  int ret = gnutls_certificate_allocate_credentials (&creds->gnutls);

  /* both calls copy what they are given */
  if (ret >= 0)
    ret = gnutls_certificate_set_x509_key (creds->gnutls, chain->certs, chain->n, key);
  if (ret < 0)
    {
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG,
                   _("%s: GnuTLS refuses the certificate and key: %s"), creds->cert_file,
                   gnutls_strerror (ret));
      return FALSE;
    }
  ret = gnutls_certificate_set_x509_trust (creds->gnutls, cas->certs, cas->n);
  if (ret < 0)
    {
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG,
                   _("%s: GnuTLS refuses the trust bundle: %s"), bundle_file,
                   gnutls_strerror (ret));
      return FALSE;
    }
  return TRUE;
}

/* the chain must lead to the bundle, checked with the very trust list
 * handshakes will use; time is left out: an expired leaf still loads */
static gboolean
weft_tls_verify_chain (WeftTlsCredentials *creds, const WeftTlsCertList *chain,
                       const char *bundle_file, GError **error)
{
  gnutls_x509_trust_list_t trust = NULL;
  g_auto(gnutls_datum_t) reason = { NULL, 0 };
  g_autofree char *why = NULL;
  unsigned int status = 0;
  int ret;

  gnutls_certificate_get_trust_list (creds->gnutls, &trust);
  ret = gnutls_x509_trust_list_verify_crt2 (trust, chain->certs, chain->n, NULL, 0,
                                            GNUTLS_VERIFY_DISABLE_TIME_CHECKS
                                            | GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS,
                                            &status, NULL);
  if (ret < 0)
    {
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG,
                   _("%s: cannot verify the certificate against %s: %s"), creds->cert_file,
                   bundle_file, gnutls_strerror (ret));
      return FALSE;
    }
  if (status == 0)
    return TRUE;
  gnutls_certificate_verification_status_print (status, GNUTLS_CRT_X509, &reason, 0);
  why = g_strndup (reason.data != NULL ? (const char *) reason.data : "?", reason.size);
  g_set_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG,
               _("%s: the certificate is not signed by the trust bundle %s: %s"),
               creds->cert_file, bundle_file, g_strstrip (why));
  return FALSE;
}

/**
 * weft_tls_credentials_load:
 * @cert_file: PEM workload certificate chain, leaf first
 * @key_file: PEM private key of the leaf, unencrypted
 * @bundle_file: PEM trust bundle (the mesh CA certificates)
 * @error: where a refusal goes
 *
 * Reads the three files once and builds GnuTLS credentials from them,
 * keeping the leaf's SPIFFE ID, trust domain and validity. See the header
 * for what is refused. Call on the main thread: it reads files.
 *
 * Returns: (transfer full): the credentials, or %NULL with @error set
 */
WeftTlsCredentials *
weft_tls_credentials_load (const char *cert_file, const char *key_file, const char *bundle_file,
                           GError **error)
{
  g_auto(gnutls_datum_t) cert_pem = { NULL, 0 };
  g_auto(gnutls_datum_t) key_pem = { NULL, 0 };
  g_auto(gnutls_datum_t) bundle_pem = { NULL, 0 };
  g_auto(WeftTlsCertList) chain = { NULL, 0 };
  g_auto(WeftTlsCertList) cas = { NULL, 0 };
  g_auto(gnutls_x509_privkey_t) key = NULL;
  g_autoptr(WeftTlsCredentials) creds = NULL;

  g_return_val_if_fail (cert_file != NULL && key_file != NULL && bundle_file != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!weft_tls_read_file (cert_file, &cert_pem, error)
      || !weft_tls_read_file (key_file, &key_pem, error)
      || !weft_tls_read_file (bundle_file, &bundle_pem, error))
    return NULL;
  if (!weft_tls_import_certs (cert_file, &cert_pem, GNUTLS_X509_CRT_LIST_FAIL_IF_UNSORTED,
                              &chain, error)
      || !weft_tls_import_key (key_file, &key_pem, &key, error)
      || !weft_tls_import_certs (bundle_file, &bundle_pem, 0, &cas, error)
      || !weft_tls_key_matches (chain.certs[0], key, key_file, cert_file, error))
    return NULL;

  creds = g_new0 (WeftTlsCredentials, 1);
  creds->refcount = 1;
  creds->cert_file = g_strdup (cert_file);
  if (!weft_tls_set_key_and_trust (creds, &chain, key, &cas, bundle_file, error)
      || !weft_tls_verify_chain (creds, &chain, bundle_file, error)
      || !weft_tls_take_leaf_identity (creds, chain.certs[0], error))
    return NULL;
  creds->bundle_trust_domains = weft_tls_bundle_trust_domains (&cas);
  creds->digest = weft_tls_digest (&cert_pem, &key_pem, &bundle_pem);
  return g_steal_pointer (&creds);
}

WeftTlsCredentials *
weft_tls_credentials_ref (WeftTlsCredentials *creds)
{
  g_return_val_if_fail (creds != NULL, NULL);
  g_atomic_int_inc (&creds->refcount);
  return creds;
}

void
weft_tls_credentials_unref (WeftTlsCredentials *creds)
{
  if (creds == NULL || !g_atomic_int_dec_and_test (&creds->refcount))
    return;
  if (creds->gnutls != NULL)
    gnutls_certificate_free_credentials (creds->gnutls);
  g_free (creds->cert_file);
  g_free (creds->spiffe_id);
  g_free (creds->digest);
  g_free (creds->trust_domain);
  g_strfreev (creds->bundle_trust_domains);
  g_free (creds);
}

/* ------------------------------------------------------------------ */
/* accessors                                                            */

const char *
weft_tls_credentials_get_digest (WeftTlsCredentials *creds)
{
  return creds->digest;
}

const char *
weft_tls_credentials_get_spiffe_id (WeftTlsCredentials *creds)
{
  return creds->spiffe_id;
}

const char *
weft_tls_credentials_get_trust_domain (WeftTlsCredentials *creds)
{
  return creds->trust_domain;
}

const char * const *
weft_tls_credentials_get_bundle_trust_domains (WeftTlsCredentials *creds)
{
  return (const char * const *) creds->bundle_trust_domains;
}

const char *
weft_tls_credentials_get_cert_file (WeftTlsCredentials *creds)
{
  return creds->cert_file;
}

gint64
weft_tls_credentials_get_not_before (WeftTlsCredentials *creds)
{
  return creds->not_before;
}

gint64
weft_tls_credentials_get_not_after (WeftTlsCredentials *creds)
{
  return creds->not_after;
}

gint64
weft_tls_credentials_get_seconds_left (WeftTlsCredentials *creds, gint64 now)
{
  return creds->not_after - now;
}

gboolean
weft_tls_credentials_is_valid_at (WeftTlsCredentials *creds, gint64 now)
{
  return creds->not_before <= now && now < creds->not_after;
}

gnutls_certificate_credentials_t
weft_tls_credentials_get_gnutls (WeftTlsCredentials *creds)
{
  return creds->gnutls;
}
