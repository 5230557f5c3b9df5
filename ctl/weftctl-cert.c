/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * weftctl cert: the GnuTLS side. A self-signed mesh CA, workload
 * certificates (X.509-SVIDs) signed by it, and a reader for PEM files.
 */
#include "weftctl-cert-private.h"
#include "weft-tls-helpers-private.h"

#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <errno.h>
#include <string.h>

G_DEFINE_QUARK (weft-ctl-error-quark, weft_ctl_error)

#define WEFT_CTL_SECONDS_PER_DAY (24 * 60 * 60)
#define WEFT_CTL_SERIAL_BYTES 16
#define WEFT_CTL_KEY_ID_MAX 64
#define WEFT_CTL_SAN_MAX 1024


/* ------------------------------------------------------------------ */
/* names                                                                */

/**
 * weft_ctl_is_dns_label:
 * @s: a string
 *
 * Whether @s is an RFC 1123 label as Kubernetes wants for namespaces and
 * service accounts: 1 to 63 of [a-z0-9-], starting and ending alphanumeric.
 *
 * Returns: %TRUE if it is
 */
gboolean
weft_ctl_is_dns_label (const char *s)
{
  size_t len = strlen (s);

  if (len == 0 || len > 63 || s[0] == '-' || s[len - 1] == '-')
    return FALSE;
  for (size_t i = 0; i < len; i++)
    if (!(g_ascii_islower (s[i]) || g_ascii_isdigit (s[i]) || s[i] == '-'))
      return FALSE;
  return TRUE;
}

/**
 * weft_ctl_is_dns_name:
 * @s: a string
 *
 * Whether @s is a host name for a DNS SAN: dot-separated labels of
 * letters, digits and '-', at most 253 bytes; the first label may be "*".
 *
 * Returns: %TRUE if it is
 */
gboolean
weft_ctl_is_dns_name (const char *s)
{
  g_auto(GStrv) labels = NULL;

  if (strlen (s) == 0 || strlen (s) > 253)
    return FALSE;
  labels = g_strsplit (s, ".", -1);
  for (guint i = 0; labels[i] != NULL; i++)
    {
      g_autofree char *lower = g_ascii_strdown (labels[i], -1);

      if (i == 0 && strcmp (lower, "*") == 0 && labels[1] != NULL)
        continue;
      if (!weft_ctl_is_dns_label (lower))
        return FALSE;
    }
  return TRUE;
}

/**
 * weft_ctl_is_trust_domain:
 * @s: a string
 *
 * Whether @s is a SPIFFE trust domain name: 1 to 255 of [a-z0-9.-_].
 *
 * Returns: %TRUE if it is
 */
gboolean
weft_ctl_is_trust_domain (const char *s)
{
  return weft_spiffe_is_trust_domain (s, strlen (s));
}

/* ------------------------------------------------------------------ */
/* small helpers                                                        */

static gboolean
weft_ctl_tls_ok (int ret, const char *what, GError **error)
{
  if (ret >= 0)
    return TRUE;
  g_set_error (error, WEFT_CTL_ERROR, WEFT_CTL_ERROR_TLS, _("%s: %s"), what, gnutls_strerror (ret));
  return FALSE;
}

static gint64
weft_ctl_now (void)
{
  return g_get_real_time () / G_USEC_PER_SEC;
}

static char *
weft_ctl_format_time (time_t t)
{
  g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc (t);

  if (dt == NULL)
    return g_strdup ("?");
  return g_date_time_format (dt, "%Y-%m-%d %H:%M:%S UTC");
}

static char *
weft_ctl_hex (const unsigned char *data, size_t len)
{
  GString *s = g_string_sized_new (len * 3);

  for (size_t i = 0; i < len; i++)
    g_string_append_printf (s, i ? ":%02x" : "%02x", data[i]);
  return g_string_free (s, FALSE);
}

static gboolean
weft_ctl_read_file (const char *path, const char *what, gnutls_datum_t *out, GError **error)
{
  char *contents = NULL;
  gsize len = 0;

  if (!g_file_get_contents (path, &contents, &len, error))
    {
      g_prefix_error (error, _("cannot read the %s: "), what);
      return FALSE;
    }
  /* hand the bytes to a gnutls datum so one cleanup frees both kinds */
  out->data = gnutls_malloc (len + 1);
  memcpy (out->data, contents, len + 1);
  out->size = len;
  explicit_bzero (contents, len);
  g_free (contents);
  return TRUE;
}

static gboolean
weft_ctl_refuse_existing (const char *path, gboolean force, GError **error)
{
  if (force || !g_file_test (path, G_FILE_TEST_EXISTS))
    return TRUE;
  g_set_error (error, WEFT_CTL_ERROR, WEFT_CTL_ERROR_EXISTS,
               _("%s already exists; not overwriting it (use --force to replace it)"), path);
  return FALSE;
}

static gboolean
weft_ctl_make_out_dir (const char *dir, GError **error)
{
  if (g_mkdir_with_parents (dir, 0755) == 0)
    return TRUE;
  g_set_error (error, WEFT_CTL_ERROR, WEFT_CTL_ERROR_IO,
               _("cannot create the output directory %s: %s"), dir, g_strerror (errno));
  return FALSE;
}

static gboolean
weft_ctl_write_file (const char *path, const gnutls_datum_t *data, int mode, GError **error)
{
  /* a temporary file renamed into place: a reader never sees half a key */
  if (g_file_set_contents_full (path, (const char *) data->data, data->size,
                                G_FILE_SET_CONTENTS_CONSISTENT, mode, error))
    return TRUE;
  g_prefix_error (error, _("cannot write %s: "), path);
  return FALSE;
}

/* ------------------------------------------------------------------ */
/* building certificates                                                */

static gboolean
weft_ctl_new_key (gnutls_x509_privkey_t *out, GError **error)
{
  g_auto(gnutls_x509_privkey_t) key = NULL;

  if (!weft_ctl_tls_ok (gnutls_x509_privkey_init (&key), _("cannot create a key"), error)
      || !weft_ctl_tls_ok (gnutls_x509_privkey_generate (key, GNUTLS_PK_ECDSA,
                                                         GNUTLS_CURVE_TO_BITS (GNUTLS_ECC_CURVE_SECP256R1), 0),
                           _("cannot generate an ECDSA P-256 key"), error))
    return FALSE;
  *out = g_steal_pointer (&key);
  return TRUE;
}

static gboolean
weft_ctl_set_serial (gnutls_x509_crt_t crt, GError **error)
{
  unsigned char serial[WEFT_CTL_SERIAL_BYTES];

  if (!weft_ctl_tls_ok (gnutls_rnd (GNUTLS_RND_NONCE, serial, sizeof serial),
                        _("cannot draw a serial number"), error))
    return FALSE;
  /* DER integers are signed: a clear top bit keeps it positive and 16 bytes;
   * a set second bit keeps the leading byte from being zero */
  serial[0] = (serial[0] & 0x7f) | 0x40;
  return weft_ctl_tls_ok (gnutls_x509_crt_set_serial (crt, serial, sizeof serial),
                          _("cannot set the serial number"), error);
}

static gboolean
weft_ctl_set_dn (gnutls_x509_crt_t crt, const char *org, const char *unit, const char *cn,
                 GError **error)
{
  struct { const char *oid; const char *value; } parts[] = {
    { GNUTLS_OID_X520_ORGANIZATION_NAME, org },
    { GNUTLS_OID_X520_ORGANIZATIONAL_UNIT_NAME, unit },
    { GNUTLS_OID_X520_COMMON_NAME, cn },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (parts); i++)
    {
      if (parts[i].value == NULL)
        continue;
      if (!weft_ctl_tls_ok (gnutls_x509_crt_set_dn_by_oid (crt, parts[i].oid, 0, parts[i].value,
                                                           strlen (parts[i].value)),
                            _("cannot set the subject name"), error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
weft_ctl_set_uri_san (gnutls_x509_crt_t crt, const char *uri, GError **error)
{
  return weft_ctl_tls_ok (gnutls_x509_crt_set_subject_alt_name (crt, GNUTLS_SAN_URI, uri,
                                                                strlen (uri), GNUTLS_FSAN_APPEND),
                          _("cannot add the SPIFFE ID"), error);
}

static gboolean
weft_ctl_set_subject_key_id (gnutls_x509_crt_t crt, GError **error)
{
  unsigned char id[WEFT_CTL_KEY_ID_MAX];
  size_t len = sizeof id;

  return weft_ctl_tls_ok (gnutls_x509_crt_get_key_id (crt, GNUTLS_KEYID_USE_SHA1, id, &len),
                          _("cannot compute the key id"), error)
         && weft_ctl_tls_ok (gnutls_x509_crt_set_subject_key_id (crt, id, len),
                             _("cannot set the subject key id"), error);
}

/* version, serial, validity and key: what every certificate here starts with */
static gboolean
weft_ctl_new_crt (gnutls_x509_privkey_t key, gint64 not_before, gint64 not_after,
                  gnutls_x509_crt_t *out, GError **error)
{
  g_auto(gnutls_x509_crt_t) crt = NULL;

  if (!weft_ctl_tls_ok (gnutls_x509_crt_init (&crt), _("cannot create a certificate"), error)
      || !weft_ctl_tls_ok (gnutls_x509_crt_set_version (crt, 3), _("cannot set the version"), error)
      || !weft_ctl_set_serial (crt, error)
      || !weft_ctl_tls_ok (gnutls_x509_crt_set_activation_time (crt, (time_t) not_before),
                           _("cannot set notBefore"), error)
      || !weft_ctl_tls_ok (gnutls_x509_crt_set_expiration_time (crt, (time_t) not_after),
                           _("cannot set notAfter"), error)
      || !weft_ctl_tls_ok (gnutls_x509_crt_set_key (crt, key), _("cannot set the public key"), error)
      || !weft_ctl_set_subject_key_id (crt, error))
    return FALSE;
  *out = g_steal_pointer (&crt);
  return TRUE;
}

static gboolean
weft_ctl_export_key (gnutls_x509_privkey_t key, gnutls_datum_t *pem, GError **error)
{
  /* PKCS#8 ("BEGIN PRIVATE KEY"), unencrypted: what GnuTLS, Go and OpenSSL all read */
  return weft_ctl_tls_ok (gnutls_x509_privkey_export2_pkcs8 (key, GNUTLS_X509_FMT_PEM, NULL,
                                                             GNUTLS_PKCS_PLAIN, pem),
                          _("cannot encode the private key"), error);
}

/* ------------------------------------------------------------------ */
/* weftctl cert ca                                                      */

static gboolean
weft_ctl_build_ca (const WeftCtlCaOptions *opts, gnutls_x509_privkey_t key,
                   gnutls_x509_crt_t *out, GError **error)
{
  g_auto(gnutls_x509_crt_t) crt = NULL;
  g_autofree char *cn = g_strdup_printf ("weft mesh CA %s", opts->trust_domain);
  g_autofree char *uri = g_strdup_printf ("spiffe://%s", opts->trust_domain);
  gint64 now = weft_ctl_now ();

  /* basicConstraints and keyUsage: GnuTLS marks both critical */
  if (!weft_ctl_new_crt (key, now - 60, now + (gint64) opts->days * WEFT_CTL_SECONDS_PER_DAY,
                         &crt, error)
      || !weft_ctl_set_dn (crt, "weft", NULL, cn, error)
      || !weft_ctl_tls_ok (gnutls_x509_crt_set_basic_constraints (crt, 1, -1),
                           _("cannot set basicConstraints"), error)
      || !weft_ctl_tls_ok (gnutls_x509_crt_set_key_usage (crt, GNUTLS_KEY_KEY_CERT_SIGN
                                                               | GNUTLS_KEY_CRL_SIGN),
                           _("cannot set keyUsage"), error)
      || !weft_ctl_set_uri_san (crt, uri, error)
      || !weft_ctl_tls_ok (gnutls_x509_crt_sign2 (crt, crt, key, GNUTLS_DIG_SHA256, 0),
                           _("cannot self-sign the CA certificate"), error))
    return FALSE;
  *out = g_steal_pointer (&crt);
  return TRUE;
}

/**
 * weft_ctl_cert_make_ca:
 * @opts: what to make
 * @report: lines for the operator are appended here
 * @error: where a failure goes
 *
 * Makes a self-signed mesh CA with an ECDSA P-256 key and writes ca.pem
 * and ca-key.pem (mode 0600) to @opts->out_dir. Refuses to replace either
 * file unless @opts->force is set.
 *
 * Returns: %TRUE on success
 */
gboolean
weft_ctl_cert_make_ca (const WeftCtlCaOptions *opts, GString *report, GError **error)
{
  g_autofree char *crt_path = g_build_filename (opts->out_dir, "ca.pem", NULL);
  g_autofree char *key_path = g_build_filename (opts->out_dir, "ca-key.pem", NULL);
  g_auto(gnutls_x509_privkey_t) key = NULL;
  g_auto(gnutls_x509_crt_t) crt = NULL;
  g_auto(gnutls_datum_t) crt_pem = { NULL, 0 };
  g_auto(gnutls_datum_t) key_pem = { NULL, 0 };
  g_autofree char *until = NULL;

  /* both checked before anything is written */
  if (!weft_ctl_refuse_existing (crt_path, opts->force, error)
      || !weft_ctl_refuse_existing (key_path, opts->force, error)
      || !weft_ctl_new_key (&key, error)
      || !weft_ctl_build_ca (opts, key, &crt, error)
      || !weft_ctl_tls_ok (gnutls_x509_crt_export2 (crt, GNUTLS_X509_FMT_PEM, &crt_pem),
                           _("cannot encode the CA certificate"), error)
      || !weft_ctl_export_key (key, &key_pem, error)
      || !weft_ctl_make_out_dir (opts->out_dir, error)
      || !weft_ctl_write_file (key_path, &key_pem, 0600, error)
      || !weft_ctl_write_file (crt_path, &crt_pem, 0644, error))
    return FALSE;
  until = weft_ctl_format_time (gnutls_x509_crt_get_expiration_time (crt));
  g_string_append_printf (report, _("mesh CA for spiffe://%s, valid until %s\n"),
                          opts->trust_domain, until);
  g_string_append_printf (report, _("wrote %s (CA certificate)\n"), crt_path);
  g_string_append_printf (report, _("wrote %s (CA private key, mode 0600)\n"), key_path);
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* weftctl cert issue                                                   */

/* the first spiffe:// URI SAN of @crt, or NULL */
static char *
weft_ctl_crt_spiffe_id (gnutls_x509_crt_t crt, unsigned int *index)
{
  for (unsigned int i = *index;; i++)
    {
      char san[WEFT_CTL_SAN_MAX];
      size_t len = sizeof san - 1;
      int type = gnutls_x509_crt_get_subject_alt_name (crt, i, san, &len, NULL);

      /* a SAN too long for the buffer is skipped, any other error ends the list */
      if (type < 0 && type != GNUTLS_E_SHORT_MEMORY_BUFFER)
        return NULL;
      if (type != GNUTLS_SAN_URI || !g_str_has_prefix (san, "spiffe://"))
        continue;
      *index = i + 1;
      return g_strndup (san, len);
    }
}

/* "cluster.local" from the CA's "spiffe://cluster.local[/...]" */
static char *
weft_ctl_ca_trust_domain (gnutls_x509_crt_t ca, const char *ca_path, GError **error)
{
  unsigned int index = 0;
  g_autofree char *id = weft_ctl_crt_spiffe_id (ca, &index);
  const char *host;

  if (id == NULL)
    {
      g_set_error (error, WEFT_CTL_ERROR, WEFT_CTL_ERROR_CERT,
                   _("%s: the CA certificate has no spiffe:// URI SAN to take the trust domain "
                     "from; pass --trust-domain"), ca_path);
      return NULL;
    }
  host = id + strlen ("spiffe://");
  return g_strndup (host, strcspn (host, "/"));
}

static gboolean
weft_ctl_load_ca (const char *path, gnutls_x509_crt_t *out, GError **error)
{
  g_auto(gnutls_datum_t) data = { NULL, 0 };
  g_auto(gnutls_x509_crt_t) ca = NULL;
  unsigned int is_ca = 0;
  gint64 now = weft_ctl_now ();
  int ret;

  if (!weft_ctl_read_file (path, _("CA certificate"), &data, error))
    return FALSE;
  gnutls_x509_crt_init (&ca);
  /* the first certificate of the file is the CA */
  ret = gnutls_x509_crt_import (ca, &data, GNUTLS_X509_FMT_PEM);
  if (ret < 0)
    {
      g_set_error (error, WEFT_CTL_ERROR, WEFT_CTL_ERROR_CERT,
                   _("%s: not a PEM certificate (%s)"), path, gnutls_strerror (ret));
      return FALSE;
    }
  if (gnutls_x509_crt_get_basic_constraints (ca, NULL, &is_ca, NULL) < 0 || !is_ca)
    {
      g_set_error (error, WEFT_CTL_ERROR, WEFT_CTL_ERROR_CERT,
                   _("%s: not a CA certificate (basicConstraints CA:TRUE missing)"), path);
      return FALSE;
    }
  if (gnutls_x509_crt_get_expiration_time (ca) <= now
      || gnutls_x509_crt_get_activation_time (ca) > now)
    {
      g_set_error (error, WEFT_CTL_ERROR, WEFT_CTL_ERROR_CERT,
                   _("%s: the CA certificate is expired or not yet valid"), path);
      return FALSE;
    }
  *out = g_steal_pointer (&ca);
  return TRUE;
}

static gboolean
weft_ctl_load_ca_key (const char *path, gnutls_x509_crt_t ca, const char *ca_path,
                      gnutls_x509_privkey_t *out, GError **error)
{
  g_auto(gnutls_datum_t) data = { NULL, 0 };
  g_auto(gnutls_x509_privkey_t) key = NULL;
  unsigned char crt_id[WEFT_CTL_KEY_ID_MAX], key_id[WEFT_CTL_KEY_ID_MAX];
  size_t crt_len = sizeof crt_id, key_len = sizeof key_id;
  int ret;

  if (!weft_ctl_read_file (path, _("CA private key"), &data, error))
    return FALSE;
  gnutls_x509_privkey_init (&key);
  ret = gnutls_x509_privkey_import2 (key, &data, GNUTLS_X509_FMT_PEM, NULL, 0);
  if (ret < 0)
    {
      g_set_error (error, WEFT_CTL_ERROR, WEFT_CTL_ERROR_CERT,
                   _("%s: not a PEM private key (%s)"), path, gnutls_strerror (ret));
      return FALSE;
    }
  /* the same public key hashes to the same id */
  if (gnutls_x509_privkey_get_key_id (key, GNUTLS_KEYID_USE_SHA1, key_id, &key_len) < 0
      || gnutls_x509_crt_get_key_id (ca, GNUTLS_KEYID_USE_SHA1, crt_id, &crt_len) < 0
      || key_len != crt_len || memcmp (key_id, crt_id, key_len) != 0)
    {
      g_set_error (error, WEFT_CTL_ERROR, WEFT_CTL_ERROR_KEY_MISMATCH,
                   _("%s: this key does not belong to the CA certificate %s"), path, ca_path);
      return FALSE;
    }
  *out = g_steal_pointer (&key);
  return TRUE;
}

static gboolean
weft_ctl_set_authority_key_id (gnutls_x509_crt_t crt, gnutls_x509_crt_t ca, GError **error)
{
  unsigned char id[WEFT_CTL_KEY_ID_MAX];
  size_t len = sizeof id;

  /* the CA's own subject key id when it has one, else the hash of its key */
  if (gnutls_x509_crt_get_subject_key_id (ca, id, &len, NULL) < 0)
    {
      len = sizeof id;
      if (!weft_ctl_tls_ok (gnutls_x509_crt_get_key_id (ca, GNUTLS_KEYID_USE_SHA1, id, &len),
                            _("cannot compute the CA key id"), error))
        return FALSE;
    }
  return weft_ctl_tls_ok (gnutls_x509_crt_set_authority_key_id (crt, id, len),
                          _("cannot set the authority key id"), error);
}

static gboolean
weft_ctl_set_leaf_usage (gnutls_x509_crt_t crt, const char * const *dns_names, GError **error)
{
  if (!weft_ctl_tls_ok (gnutls_x509_crt_set_basic_constraints (crt, 0, -1),
                        _("cannot set basicConstraints"), error)
      || !weft_ctl_tls_ok (gnutls_x509_crt_set_key_usage (crt, GNUTLS_KEY_DIGITAL_SIGNATURE
                                                               | GNUTLS_KEY_KEY_ENCIPHERMENT),
                           _("cannot set keyUsage"), error)
      || !weft_ctl_tls_ok (gnutls_x509_crt_set_key_purpose_oid (crt, GNUTLS_KP_TLS_WWW_SERVER, 0),
                           _("cannot set extKeyUsage"), error)
      || !weft_ctl_tls_ok (gnutls_x509_crt_set_key_purpose_oid (crt, GNUTLS_KP_TLS_WWW_CLIENT, 0),
                           _("cannot set extKeyUsage"), error))
    return FALSE;
  for (guint i = 0; dns_names != NULL && dns_names[i] != NULL; i++)
    if (!weft_ctl_tls_ok (gnutls_x509_crt_set_subject_alt_name (crt, GNUTLS_SAN_DNSNAME,
                                                                dns_names[i], strlen (dns_names[i]),
                                                                GNUTLS_FSAN_APPEND),
                          _("cannot add a DNS name"), error))
      return FALSE;
  return TRUE;
}

/* the leaf never outlives its CA */
static gint64
weft_ctl_leaf_not_after (const WeftCtlIssueOptions *opts, gnutls_x509_crt_t ca, gint64 now)
{
  gint64 wanted = now + (gint64) opts->days * WEFT_CTL_SECONDS_PER_DAY;
  gint64 ca_end = gnutls_x509_crt_get_expiration_time (ca);

  if (wanted <= ca_end)
    return wanted;
  g_printerr (_("weftctl: warning: the CA %s expires before %d days from now; "
                "the certificate ends with it\n"), opts->ca_path, opts->days);
  return ca_end;
}

static gboolean
weft_ctl_build_leaf (const WeftCtlIssueOptions *opts, const char *trust_domain,
                     gnutls_x509_crt_t ca, gnutls_x509_privkey_t ca_key,
                     gnutls_x509_privkey_t key, gnutls_x509_crt_t *out, GError **error)
{
  g_auto(gnutls_x509_crt_t) crt = NULL;
  g_autofree char *uri = g_strdup_printf ("spiffe://%s/ns/%s/sa/%s", trust_domain, opts->ns,
                                          opts->service_account);
  gint64 now = weft_ctl_now ();

  if (!weft_ctl_new_crt (key, now - 60, weft_ctl_leaf_not_after (opts, ca, now), &crt, error)
      || !weft_ctl_set_dn (crt, trust_domain, opts->ns, opts->service_account, error)
      || !weft_ctl_set_uri_san (crt, uri, error)
      || !weft_ctl_set_leaf_usage (crt, opts->dns_names, error)
      || !weft_ctl_set_authority_key_id (crt, ca, error)
      || !weft_ctl_tls_ok (gnutls_x509_crt_sign2 (crt, ca, ca_key, GNUTLS_DIG_SHA256, 0),
                           _("cannot sign the workload certificate"), error))
    return FALSE;
  *out = g_steal_pointer (&crt);
  return TRUE;
}

static gboolean
weft_ctl_check_issue_options (const WeftCtlIssueOptions *opts, GError **error)
{
  const char *bad = NULL;

  if (!weft_ctl_is_dns_label (opts->ns))
    bad = "--namespace";
  else if (!weft_ctl_is_dns_label (opts->service_account))
    bad = "--service-account";
  if (bad != NULL)
    {
      g_set_error (error, WEFT_CTL_ERROR, WEFT_CTL_ERROR_USAGE,
                   _("%s '%s' is not a DNS label (1 to 63 of a-z, 0-9 and '-', "
                     "starting and ending with a letter or digit)"),
                   bad, bad[2] == 'n' ? opts->ns : opts->service_account);
      return FALSE;
    }
  if (opts->trust_domain != NULL && !weft_ctl_is_trust_domain (opts->trust_domain))
    {
      g_set_error (error, WEFT_CTL_ERROR, WEFT_CTL_ERROR_USAGE,
                   _("--trust-domain '%s' is not a trust domain (a-z, 0-9, '.', '-', '_')"),
                   opts->trust_domain);
      return FALSE;
    }
  for (guint i = 0; opts->dns_names != NULL && opts->dns_names[i] != NULL; i++)
    if (!weft_ctl_is_dns_name (opts->dns_names[i]))
      {
        g_set_error (error, WEFT_CTL_ERROR, WEFT_CTL_ERROR_USAGE,
                     _("--dns '%s' is not a DNS name"), opts->dns_names[i]);
        return FALSE;
      }
  return TRUE;
}

/* leaf then CA: the chain a sidecar presents */
static gboolean
weft_ctl_export_chain (gnutls_x509_crt_t crt, gnutls_x509_crt_t ca, gnutls_datum_t *out,
                       GError **error)
{
  g_auto(gnutls_datum_t) leaf_pem = { NULL, 0 };
  g_auto(gnutls_datum_t) ca_pem = { NULL, 0 };

  if (!weft_ctl_tls_ok (gnutls_x509_crt_export2 (crt, GNUTLS_X509_FMT_PEM, &leaf_pem),
                        _("cannot encode the workload certificate"), error)
      || !weft_ctl_tls_ok (gnutls_x509_crt_export2 (ca, GNUTLS_X509_FMT_PEM, &ca_pem),
                           _("cannot encode the CA certificate"), error))
    return FALSE;
  out->data = gnutls_malloc (leaf_pem.size + ca_pem.size);
  memcpy (out->data, leaf_pem.data, leaf_pem.size);
  memcpy (out->data + leaf_pem.size, ca_pem.data, ca_pem.size);
  out->size = leaf_pem.size + ca_pem.size;
  return TRUE;
}

/**
 * weft_ctl_cert_issue:
 * @opts: what to issue
 * @report: lines for the operator are appended here
 * @error: where a failure goes
 *
 * Issues a workload certificate for
 * spiffe://<trust-domain>/ns/<ns>/sa/<service-account> with a new ECDSA
 * P-256 key, signed by the CA, and writes <service-account>.pem (leaf then
 * CA) and <service-account>-key.pem (mode 0600).
 *
 * Returns: %TRUE on success
 */
gboolean
weft_ctl_cert_issue (const WeftCtlIssueOptions *opts, GString *report, GError **error)
{
  g_autofree char *crt_name = g_strdup_printf ("%s.pem", opts->service_account);
  g_autofree char *key_name = g_strdup_printf ("%s-key.pem", opts->service_account);
  g_autofree char *crt_path = g_build_filename (opts->out_dir, crt_name, NULL);
  g_autofree char *key_path = g_build_filename (opts->out_dir, key_name, NULL);
  g_auto(gnutls_x509_crt_t) ca = NULL;
  g_auto(gnutls_x509_privkey_t) ca_key = NULL;
  g_auto(gnutls_x509_privkey_t) key = NULL;
  g_auto(gnutls_x509_crt_t) crt = NULL;
  g_auto(gnutls_datum_t) chain = { NULL, 0 };
  g_auto(gnutls_datum_t) key_pem = { NULL, 0 };
  g_autofree char *trust_domain = NULL;
  g_autofree char *until = NULL;

  if (!weft_ctl_check_issue_options (opts, error)
      || !weft_ctl_refuse_existing (crt_path, opts->force, error)
      || !weft_ctl_refuse_existing (key_path, opts->force, error)
      || !weft_ctl_load_ca (opts->ca_path, &ca, error)
      || !weft_ctl_load_ca_key (opts->ca_key_path, ca, opts->ca_path, &ca_key, error))
    return FALSE;
  trust_domain = opts->trust_domain != NULL ? g_strdup (opts->trust_domain)
                                            : weft_ctl_ca_trust_domain (ca, opts->ca_path, error);
  if (trust_domain == NULL
      || !weft_ctl_new_key (&key, error)
      || !weft_ctl_build_leaf (opts, trust_domain, ca, ca_key, key, &crt, error)
      || !weft_ctl_export_chain (crt, ca, &chain, error)
      || !weft_ctl_export_key (key, &key_pem, error)
      || !weft_ctl_make_out_dir (opts->out_dir, error)
      || !weft_ctl_write_file (key_path, &key_pem, 0600, error)
      || !weft_ctl_write_file (crt_path, &chain, 0644, error))
    return FALSE;
  until = weft_ctl_format_time (gnutls_x509_crt_get_expiration_time (crt));
  g_string_append_printf (report, _("issued spiffe://%s/ns/%s/sa/%s, valid until %s\n"),
                          trust_domain, opts->ns, opts->service_account, until);
  g_string_append_printf (report, _("wrote %s (certificate, then the CA)\n"), crt_path);
  g_string_append_printf (report, _("wrote %s (private key, mode 0600)\n"), key_path);
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* weftctl cert inspect                                                 */

static char *
weft_ctl_describe_validity (gint64 not_before, gint64 not_after, gint64 now)
{
  gint64 left = not_after - now;
  gint64 n;

  if (now >= not_after)
    {
      n = (now - not_after) / WEFT_CTL_SECONDS_PER_DAY;
      return g_strdup_printf (ngettext ("expired %d day ago", "expired %d days ago", n), (int) n);
    }
  if (now < not_before)
    return g_strdup (_("not yet valid"));
  if (left >= WEFT_CTL_SECONDS_PER_DAY)
    {
      n = left / WEFT_CTL_SECONDS_PER_DAY;
      return g_strdup_printf (ngettext ("expires in %d day", "expires in %d days", n), (int) n);
    }
  if (left >= 3600)
    {
      n = left / 3600;
      return g_strdup_printf (ngettext ("expires in %d hour", "expires in %d hours", n), (int) n);
    }
  n = left / 60;
  return g_strdup_printf (ngettext ("expires in %d minute", "expires in %d minutes", n), (int) n);
}

static char *
weft_ctl_describe_key (gnutls_x509_crt_t crt)
{
  unsigned int bits = 0;
  int algo = gnutls_x509_crt_get_pk_algorithm (crt, &bits);
  gnutls_ecc_curve_t curve = GNUTLS_ECC_CURVE_INVALID;

  if (algo == GNUTLS_PK_ECDSA
      && gnutls_x509_crt_get_pk_ecc_raw (crt, &curve, NULL, NULL) >= 0)
    return g_strdup_printf ("ECDSA %s", gnutls_ecc_curve_get_name (curve));
  if (algo < 0)
    return g_strdup ("?");
  return g_strdup_printf ("%s %u bits", gnutls_pk_algorithm_get_name (algo), bits);
}

static void
weft_ctl_append_sans (GString *out, gnutls_x509_crt_t crt)
{
  g_autoptr(GPtrArray) dns = g_ptr_array_new_with_free_func (g_free);
  unsigned int index = 0;
  guint n_ids = 0;
  g_autofree char *joined = NULL;
  char *id;

  while ((id = weft_ctl_crt_spiffe_id (crt, &index)) != NULL)
    {
      g_string_append_printf (out, "  %-12s %s\n", _("spiffe id:"), id);
      g_free (id);
      n_ids++;
    }
  if (n_ids == 0)
    g_string_append_printf (out, "  %-12s %s\n", _("spiffe id:"), _("(none)"));
  for (unsigned int i = 0;; i++)
    {
      char san[WEFT_CTL_SAN_MAX];
      size_t len = sizeof san - 1;
      int type = gnutls_x509_crt_get_subject_alt_name (crt, i, san, &len, NULL);

      if (type < 0 && type != GNUTLS_E_SHORT_MEMORY_BUFFER)
        break;
      if (type == GNUTLS_SAN_DNSNAME)
        g_ptr_array_add (dns, g_strndup (san, len));
    }
  g_ptr_array_add (dns, NULL);
  joined = g_strjoinv (", ", (char **) dns->pdata);
  g_string_append_printf (out, "  %-12s %s\n", _("dns names:"),
                          dns->len > 1 ? joined : _("(none)"));
}

static void
weft_ctl_append_one (GString *out, gnutls_x509_crt_t crt, unsigned int i, unsigned int n)
{
  g_auto(gnutls_datum_t) subject = { NULL, 0 };
  g_auto(gnutls_datum_t) issuer = { NULL, 0 };
  unsigned char serial[64];
  size_t serial_len = sizeof serial;
  unsigned int is_ca = 0;
  gint64 not_before = gnutls_x509_crt_get_activation_time (crt);
  gint64 not_after = gnutls_x509_crt_get_expiration_time (crt);
  g_autofree char *serial_hex = NULL;
  g_autofree char *from = weft_ctl_format_time (not_before);
  g_autofree char *until = weft_ctl_format_time (not_after);
  g_autofree char *state = weft_ctl_describe_validity (not_before, not_after, weft_ctl_now ());
  g_autofree char *key = weft_ctl_describe_key (crt);

  gnutls_x509_crt_get_dn3 (crt, &subject, 0);
  gnutls_x509_crt_get_issuer_dn3 (crt, &issuer, 0);
  if (gnutls_x509_crt_get_serial (crt, serial, &serial_len) < 0)
    serial_len = 0;
  serial_hex = weft_ctl_hex (serial, serial_len);
  if (gnutls_x509_crt_get_basic_constraints (crt, NULL, &is_ca, NULL) < 0)
    is_ca = 0;

  g_string_append_printf (out, _("certificate %u of %u\n"), i + 1, n);
  g_string_append_printf (out, "  %-12s %s\n", _("subject:"), subject.data ? (char *) subject.data : "");
  g_string_append_printf (out, "  %-12s %s\n", _("issuer:"), issuer.data ? (char *) issuer.data : "");
  g_string_append_printf (out, "  %-12s %s\n", _("serial:"), serial_hex);
  g_string_append_printf (out, "  %-12s %s\n", _("not before:"), from);
  g_string_append_printf (out, "  %-12s %s (%s)\n", _("not after:"), until, state);
  weft_ctl_append_sans (out, crt);
  g_string_append_printf (out, "  %-12s %s\n", _("ca:"), is_ca ? _("yes") : _("no"));
  g_string_append_printf (out, "  %-12s %s\n", _("key:"), key);
}

static gboolean
weft_ctl_import_list (const char *path, const gnutls_datum_t *data, WeftTlsCertList *list,
                      GError **error)
{
  int ret;

  if (memmem (data->data, data->size, "-----BEGIN CERTIFICATE-----", 27) == NULL)
    {
      gboolean is_key = memmem (data->data, data->size, "PRIVATE KEY-----", 16) != NULL;

      g_set_error (error, WEFT_CTL_ERROR, WEFT_CTL_ERROR_CERT,
                   is_key ? _("%s: this is a private key, not a certificate")
                          : _("%s: not a PEM certificate (no -----BEGIN CERTIFICATE----- line)"),
                   path);
      return FALSE;
    }
  ret = gnutls_x509_crt_list_import2 (&list->certs, &list->n, data, GNUTLS_X509_FMT_PEM, 0);
  if (ret < 0)
    {
      g_set_error (error, WEFT_CTL_ERROR, WEFT_CTL_ERROR_CERT,
                   _("%s: cannot parse the certificates: %s"), path, gnutls_strerror (ret));
      return FALSE;
    }
  return TRUE;
}

/**
 * weft_ctl_cert_inspect:
 * @path: a PEM file with one or more certificates
 * @out: the description is appended here
 * @error: where a failure goes
 *
 * Describes every certificate in @path: subject, issuer, serial, validity,
 * SPIFFE IDs, DNS names, whether it is a CA and its key type.
 *
 * Returns: %TRUE on success
 */
gboolean
weft_ctl_cert_inspect (const char *path, GString *out, GError **error)
{
  g_auto(gnutls_datum_t) data = { NULL, 0 };
  g_auto(WeftTlsCertList) list = { NULL, 0 };

  if (!weft_ctl_read_file (path, _("certificate file"), &data, error)
      || !weft_ctl_import_list (path, &data, &list, error))
    return FALSE;
  g_string_append_printf (out, "%s:\n", path);
  for (unsigned int i = 0; i < list.n; i++)
    weft_ctl_append_one (out, list.certs[i], i, list.n);
  return TRUE;
}
