/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "weft-test-certs.h"

#include <glib/gstdio.h>
#include <gnutls/x509.h>
#include <string.h>

static char    *weft_test_certs_tmpdir;
static gboolean weft_test_certs_owned;

void
weft_test_certs_init (const char *name)
{
  g_autofree char *template = g_strconcat (name, "-XXXXXX", NULL);
  g_autoptr(GError) error = NULL;

  if (g_getenv ("WEFTCTL") == NULL)
    g_error ("WEFTCTL is not set; run through meson test");
  /* a g_test_trap_subprocess() child uses its parent's certificates */
  if (g_test_subprocess () && g_getenv ("WEFT_TEST_CERTS_DIR") != NULL)
    {
      weft_test_certs_tmpdir = g_strdup (g_getenv ("WEFT_TEST_CERTS_DIR"));
      return;
    }
  weft_test_certs_tmpdir = g_dir_make_tmp (template, &error);
  g_assert_no_error (error);
  weft_test_certs_owned = TRUE;
  g_setenv ("WEFT_TEST_CERTS_DIR", weft_test_certs_tmpdir, TRUE);
}

void
weft_test_certs_cleanup (void)
{
  if (weft_test_certs_owned)
    weft_test_remove_tree (weft_test_certs_tmpdir);
  g_clear_pointer (&weft_test_certs_tmpdir, g_free);
}

char *
weft_test_certs_path (const char *dir, const char *file)
{
  return g_build_filename (weft_test_certs_tmpdir, dir, file, NULL);
}

void
weft_test_weftctl (const char *const *args)
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

void
weft_test_make_ca (const char *dir)
{
  g_autofree char *out = weft_test_certs_path (dir, NULL);
  const char *args[] = { "cert", "ca", "--trust-domain", "cluster.local", "--out-dir", out, NULL };

  weft_test_weftctl (args);
}

void
weft_test_issue (const char *ca_dir, const char *dir, const char *sa)
{
  g_autofree char *out = weft_test_certs_path (dir, NULL);
  g_autofree char *ca = weft_test_certs_path (ca_dir, "ca.pem");
  g_autofree char *ca_key = weft_test_certs_path (ca_dir, "ca-key.pem");
  const char *args[] = { "cert", "issue", "--namespace", "default", "--service-account", sa,
                         "--ca", ca, "--ca-key", ca_key, "--out-dir", out, "--days", "1", NULL };

  weft_test_weftctl (args);
}

gnutls_datum_t
weft_test_read_datum (const char *file)
{
  gnutls_datum_t d = { NULL, 0 };

  g_assert_cmpint (gnutls_load_file (file, &d), ==, 0);
  return d;
}

void
weft_test_write_datum (const char *file, gnutls_datum_t *d)
{
  g_assert_true (g_file_set_contents (file, (const char *) d->data, d->size, NULL));
  gnutls_free (d->data);
  d->data = NULL;
  d->size = 0;
}

void
weft_test_make_leaf (const char *ca_dir, const char *dir, const char *const *uris,
                     gint64 not_before, gint64 not_after)
{
  g_autofree char *out = weft_test_certs_path (dir, NULL);
  g_autofree char *ca_file = weft_test_certs_path (ca_dir, "ca.pem");
  g_autofree char *ca_key_file = weft_test_certs_path (ca_dir, "ca-key.pem");
  g_autofree char *crt_file = weft_test_certs_path (dir, "leaf.pem");
  g_autofree char *key_file = weft_test_certs_path (dir, "leaf-key.pem");
  gnutls_datum_t ca_pem = weft_test_read_datum (ca_file);
  gnutls_datum_t ca_key_pem = weft_test_read_datum (ca_key_file);
  gnutls_datum_t pem;
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
  weft_test_write_datum (crt_file, &pem);
  g_assert_cmpint (gnutls_x509_privkey_export2_pkcs8 (key, GNUTLS_X509_FMT_PEM, NULL,
                                                      GNUTLS_PKCS_PLAIN, &pem), ==, 0);
  weft_test_write_datum (key_file, &pem);

  gnutls_x509_crt_deinit (crt);
  gnutls_x509_crt_deinit (ca);
  gnutls_x509_privkey_deinit (key);
  gnutls_x509_privkey_deinit (ca_key);
  gnutls_free (ca_pem.data);
  gnutls_free (ca_key_pem.data);
}

void
weft_test_remove_tree (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *p = g_build_filename (dir, name, NULL);

      if (g_file_test (p, G_FILE_TEST_IS_DIR))
        weft_test_remove_tree (p);
      else
        g_unlink (p);
    }
  g_rmdir (dir);
}
