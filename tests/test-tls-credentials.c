/* SPDX-License-Identifier: LGPL-2.1-or-later
 * WeftTlsCredentials: what loads, what is refused and why, and
 * weft_spiffe_id_parse. Certificates come from the built weftctl
 * ($WEFTCTL) in a temporary directory; the few weftctl will not make (an
 * expired leaf, a leaf without or with two SPIFFE IDs) are made here with
 * GnuTLS, signed by the same CA. */
#include "weft-tls-credentials-private.h"

#include <glib/gstdio.h>
#include <gnutls/x509.h>
#include <string.h>

#define DAY (24 * 60 * 60)

static char *tmpdir;

static char *
path (const char *dir, const char *file)
{
  return g_build_filename (tmpdir, dir, file, NULL);
}

static void
weftctl (const char *const *args)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(GError) error = NULL;
  int status = 0;

  g_ptr_array_add (argv, (gpointer) g_getenv ("WEFTCTL"));
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                &status, &error);
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("weftctl failed: %s", err);
}

static void
make_ca (const char *dir)
{
  g_autofree char *out = g_build_filename (tmpdir, dir, NULL);
  const char *args[] = { "cert", "ca", "--trust-domain", "cluster.local", "--out-dir", out, NULL };

  weftctl (args);
}

static void
issue (const char *ca_dir, const char *dir, const char *sa)
{
  g_autofree char *out = g_build_filename (tmpdir, dir, NULL);
  g_autofree char *ca = path (ca_dir, "ca.pem");
  g_autofree char *ca_key = path (ca_dir, "ca-key.pem");
  const char *args[] = { "cert", "issue", "--namespace", "default", "--service-account", sa,
                         "--ca", ca, "--ca-key", ca_key, "--out-dir", out, "--days", "1", NULL };

  weftctl (args);
}

static gnutls_datum_t
read_datum (const char *file)
{
  gnutls_datum_t d = { NULL, 0 };

  g_assert_cmpint (gnutls_load_file (file, &d), ==, 0);
  return d;
}

static void
write_datum (const char *file, gnutls_datum_t *d)
{
  g_assert_true (g_file_set_contents (file, (const char *) d->data, d->size, NULL));
  gnutls_free (d->data);
}

/* a leaf signed by ca1 with the given URI SANs and validity, written to
 * <dir>/leaf.pem and <dir>/leaf-key.pem */
static void
make_leaf (const char *dir, const char *const *uris, gint64 not_before, gint64 not_after)
{
  g_autofree char *out = g_build_filename (tmpdir, dir, NULL);
  g_autofree char *ca_file = path ("ca1", "ca.pem"), *ca_key_file = path ("ca1", "ca-key.pem");
  g_autofree char *crt_file = path (dir, "leaf.pem"), *key_file = path (dir, "leaf-key.pem");
  gnutls_datum_t ca_pem = read_datum (ca_file), ca_key_pem = read_datum (ca_key_file), pem;
  gnutls_x509_crt_t ca, crt;
  gnutls_x509_privkey_t ca_key, key;
  unsigned char serial[] = { 0x42, 0x01 };

  g_assert_cmpint (g_mkdir_with_parents (out, 0700), ==, 0);
  gnutls_x509_crt_init (&ca);
  gnutls_x509_privkey_init (&ca_key);
  g_assert_cmpint (gnutls_x509_crt_import (ca, &ca_pem, GNUTLS_X509_FMT_PEM), ==, 0);
  g_assert_cmpint (gnutls_x509_privkey_import (ca_key, &ca_key_pem, GNUTLS_X509_FMT_PEM), ==, 0);
  gnutls_x509_privkey_init (&key);
  g_assert_cmpint (gnutls_x509_privkey_generate (key, GNUTLS_PK_ECDSA,
                                                 GNUTLS_CURVE_TO_BITS (GNUTLS_ECC_CURVE_SECP256R1), 0),
                   ==, 0);
  gnutls_x509_crt_init (&crt);
  gnutls_x509_crt_set_version (crt, 3);
  gnutls_x509_crt_set_serial (crt, serial, sizeof serial);
  gnutls_x509_crt_set_activation_time (crt, (time_t) not_before);
  gnutls_x509_crt_set_expiration_time (crt, (time_t) not_after);
  gnutls_x509_crt_set_key (crt, key);
  for (guint i = 0; uris[i] != NULL; i++)
    gnutls_x509_crt_set_subject_alt_name (crt, GNUTLS_SAN_URI, uris[i], strlen (uris[i]),
                                          GNUTLS_FSAN_APPEND);
  g_assert_cmpint (gnutls_x509_crt_sign2 (crt, ca, ca_key, GNUTLS_DIG_SHA256, 0), ==, 0);

  g_assert_cmpint (gnutls_x509_crt_export2 (crt, GNUTLS_X509_FMT_PEM, &pem), ==, 0);
  write_datum (crt_file, &pem);
  g_assert_cmpint (gnutls_x509_privkey_export2_pkcs8 (key, GNUTLS_X509_FMT_PEM, NULL,
                                                      GNUTLS_PKCS_PLAIN, &pem), ==, 0);
  write_datum (key_file, &pem);

  gnutls_x509_crt_deinit (crt);
  gnutls_x509_crt_deinit (ca);
  gnutls_x509_privkey_deinit (key);
  gnutls_x509_privkey_deinit (ca_key);
  gnutls_free (ca_pem.data);
  gnutls_free (ca_key_pem.data);
}

/* loads <dir>/<cert> + <key_dir>/<key> against ca1's bundle */
static WeftTlsCredentials *
load (const char *dir, const char *cert, const char *key_dir, const char *key, GError **error)
{
  g_autofree char *cert_file = path (dir, cert);
  g_autofree char *key_file = path (key_dir, key);
  g_autofree char *bundle_file = path ("ca1", "ca.pem");

  return weft_tls_credentials_load (cert_file, key_file, bundle_file, error);
}

static void
assert_refused (GError *error, int code, const char *dir, const char *file, const char *reason)
{
  g_autofree char *named = path (dir, file);

  g_assert_error (error, WEFT_ERROR, code);
  g_test_message ("refused: %s", error->message);
  g_assert_true (g_str_has_prefix (error->message, named));
  if (reason != NULL)
    g_assert_nonnull (strstr (error->message, reason));
}

/* ------------------------------------------------------------------ */

static void
test_good_chain (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftTlsCredentials) creds = load ("good", "reviews.pem", "good", "reviews-key.pem",
                                              &error);
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  const char *const *tds;

  g_assert_no_error (error);
  g_assert_cmpstr (weft_tls_credentials_get_spiffe_id (creds), ==,
                   "spiffe://cluster.local/ns/default/sa/reviews");
  g_assert_cmpstr (weft_tls_credentials_get_trust_domain (creds), ==, "cluster.local");
  tds = weft_tls_credentials_get_bundle_trust_domains (creds);
  g_assert_cmpstr (tds[0], ==, "cluster.local");
  g_assert_null (tds[1]);
  /* --days 1: about a day ahead, give or take the test's own run time */
  g_assert_cmpint (weft_tls_credentials_get_seconds_left (creds, now), >, DAY - 600);
  g_assert_cmpint (weft_tls_credentials_get_seconds_left (creds, now), <=, DAY + 600);
  g_assert_cmpint (weft_tls_credentials_get_not_after (creds) - now, ==,
                   weft_tls_credentials_get_seconds_left (creds, now));
  g_assert_true (weft_tls_credentials_is_valid_at (creds, now));
  g_assert_false (weft_tls_credentials_is_valid_at (creds, now + 2 * DAY));
  g_assert_nonnull (weft_tls_credentials_get_gnutls (creds));

  /* a ref outlives the first owner */
  WeftTlsCredentials *held = weft_tls_credentials_ref (creds);
  g_clear_pointer (&creds, weft_tls_credentials_unref);
  g_assert_cmpstr (weft_tls_credentials_get_trust_domain (held), ==, "cluster.local");
  weft_tls_credentials_unref (held);
}

static void
test_key_from_other_issue (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftTlsCredentials) creds = load ("good", "reviews.pem", "other", "reviews-key.pem",
                                              &error);

  g_assert_null (creds);
  assert_refused (error, WEFT_ERROR_CONFIG, "other", "reviews-key.pem", "does not match");
}

static void
test_leaf_from_other_ca (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftTlsCredentials) creds = load ("foreign", "reviews.pem", "foreign",
                                              "reviews-key.pem", &error);

  g_assert_null (creds);
  assert_refused (error, WEFT_ERROR_CONFIG, "foreign", "reviews.pem", "not signed by");
}

static void
test_missing_file (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftTlsCredentials) creds = load ("good", "reviews.pem", "good", "nope-key.pem",
                                              &error);

  g_assert_null (creds);
  assert_refused (error, WEFT_ERROR_IO, "good", "nope-key.pem", "No such file");
}

static void
test_not_pem (void)
{
  g_autofree char *junk = path ("good", "junk.pem");
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftTlsCredentials) creds = NULL;

  g_assert_true (g_file_set_contents (junk, "this is not a certificate\n", -1, NULL));
  creds = load ("good", "junk.pem", "good", "reviews-key.pem", &error);
  g_assert_null (creds);
  assert_refused (error, WEFT_ERROR_CONFIG, "good", "junk.pem", NULL);
  g_clear_error (&error);

  /* the key file too */
  creds = load ("good", "reviews.pem", "good", "junk.pem", &error);
  g_assert_null (creds);
  assert_refused (error, WEFT_ERROR_CONFIG, "good", "junk.pem", "private key");
}

/* an expired leaf loads; its validity says it is expired */
static void
test_expired_leaf (void)
{
  const char *uris[] = { "spiffe://cluster.local/ns/default/sa/old", NULL };
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftTlsCredentials) creds = NULL;

  make_leaf ("expired", uris, now - 3 * DAY, now - DAY);
  creds = load ("expired", "leaf.pem", "expired", "leaf-key.pem", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (weft_tls_credentials_get_spiffe_id (creds), ==, uris[0]);
  g_assert_false (weft_tls_credentials_is_valid_at (creds, now));
  g_assert_cmpint (weft_tls_credentials_get_seconds_left (creds, now), <=, -DAY + 5);
  g_assert_cmpint (weft_tls_credentials_get_not_before (creds), <=, now - 3 * DAY + 5);
}

static void
test_spiffe_san_count (void)
{
  const char *none[] = { "https://example.com/x", NULL };
  const char *two[] = { "spiffe://cluster.local/ns/default/sa/a",
                        "spiffe://cluster.local/ns/default/sa/b", NULL };
  const char *odd[] = { "spiffe://cluster.local/workload/a", NULL };
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftTlsCredentials) creds = NULL;

  make_leaf ("nosan", none, now - 60, now + DAY);
  creds = load ("nosan", "leaf.pem", "nosan", "leaf-key.pem", &error);
  g_assert_null (creds);
  assert_refused (error, WEFT_ERROR_CONFIG, "nosan", "leaf.pem", "no spiffe://");
  g_clear_error (&error);

  make_leaf ("twosan", two, now - 60, now + DAY);
  creds = load ("twosan", "leaf.pem", "twosan", "leaf-key.pem", &error);
  g_assert_null (creds);
  assert_refused (error, WEFT_ERROR_CONFIG, "twosan", "leaf.pem", "more than one");
  g_clear_error (&error);

  make_leaf ("oddsan", odd, now - 60, now + DAY);
  creds = load ("oddsan", "leaf.pem", "oddsan", "leaf-key.pem", &error);
  g_assert_null (creds);
  assert_refused (error, WEFT_ERROR_CONFIG, "oddsan", "leaf.pem", "not of the form");
}

static void
test_spiffe_id_parse (void)
{
  struct { const char *uri; const char *td, *ns, *sa; } good[] = {
    { "spiffe://cluster.local/ns/default/sa/reviews", "cluster.local", "default", "reviews" },
    { "spiffe://td-1_x.example/ns/a/sa/b", "td-1_x.example", "a", "b" },
    { "spiffe://t/ns/Prod.v2/sa/my_SA-1", "t", "Prod.v2", "my_SA-1" },
  };
  const char *bad[] = {
    "", "spiffe://", "spiffe:///ns/a/sa/b", "SPIFFE://cluster.local/ns/a/sa/b",
    "Spiffe://cluster.local/ns/a/sa/b", "https://cluster.local/ns/a/sa/b",
    "spiffe:/cluster.local/ns/a/sa/b", "spiffe://cluster.local", "spiffe://cluster.local/",
    "spiffe://Cluster.local/ns/a/sa/b", "spiffe://cluster.local:443/ns/a/sa/b",
    "spiffe://user@cluster.local/ns/a/sa/b", "spiffe://cluster.local/ns/a/sa/b/",
    "spiffe://cluster.local/ns/a/sa/b/c", "spiffe://cluster.local/ns//sa/b",
    "spiffe://cluster.local/ns/a/sa/", "spiffe://cluster.local/ns/a/sa/b?x=1",
    "spiffe://cluster.local/ns/a/sa/b#frag", "spiffe://cluster.local/ns/a%20b/sa/b",
    "spiffe://cluster.local/ns/../sa/b", "spiffe://cluster.local/ns/./sa/b",
    "spiffe://cluster.local/sa/b/ns/a", "spiffe://cluster.local/NS/a/sa/b",
    "spiffe://cluster.local//ns/a/sa/b", "spiffe://cluster local/ns/a/sa/b",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autofree char *td = NULL, *ns = NULL, *sa = NULL;

      g_assert_true (weft_spiffe_id_parse (good[i].uri, &td, &ns, &sa));
      g_assert_cmpstr (td, ==, good[i].td);
      g_assert_cmpstr (ns, ==, good[i].ns);
      g_assert_cmpstr (sa, ==, good[i].sa);
      g_assert_true (weft_spiffe_id_parse (good[i].uri, NULL, NULL, NULL));
    }
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      char *td = NULL;

      if (weft_spiffe_id_parse (bad[i], &td, NULL, NULL))
        g_error ("accepted %s", bad[i]);
      g_assert_null (td);
    }
}

/* ------------------------------------------------------------------ */

static void
remove_tree (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *p = g_build_filename (dir, name, NULL);

      if (g_file_test (p, G_FILE_TEST_IS_DIR))
        remove_tree (p);
      else
        g_unlink (p);
    }
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  int ret;

  g_test_init (&argc, &argv, NULL);
  if (g_getenv ("WEFTCTL") == NULL)
    g_error ("WEFTCTL is not set; run through meson test");
  tmpdir = g_dir_make_tmp ("weft-tls-XXXXXX", &error);
  g_assert_no_error (error);

  /* ca1 is the bundle; ca2 is a stranger with the same trust domain */
  make_ca ("ca1");
  make_ca ("ca2");
  issue ("ca1", "good", "reviews");
  issue ("ca1", "other", "reviews");
  issue ("ca2", "foreign", "reviews");

  g_test_add_func ("/tls-credentials/good-chain", test_good_chain);
  g_test_add_func ("/tls-credentials/key-from-other-issue", test_key_from_other_issue);
  g_test_add_func ("/tls-credentials/leaf-from-other-ca", test_leaf_from_other_ca);
  g_test_add_func ("/tls-credentials/missing-file", test_missing_file);
  g_test_add_func ("/tls-credentials/not-pem", test_not_pem);
  g_test_add_func ("/tls-credentials/expired-leaf", test_expired_leaf);
  g_test_add_func ("/tls-credentials/spiffe-san-count", test_spiffe_san_count);
  g_test_add_func ("/tls-credentials/spiffe-id-parse", test_spiffe_id_parse);
  ret = g_test_run ();

  remove_tree (tmpdir);
  g_free (tmpdir);
  return ret;
}
