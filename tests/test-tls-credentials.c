/* SPDX-License-Identifier: LGPL-2.1-or-later
 * WeftTlsCredentials: what loads, what is refused and why, and
 * weft_spiffe_id_parse. Certificates come from the built weftctl
 * ($WEFTCTL) in a temporary directory; the few weftctl will not make (an
 * expired leaf, a leaf without or with two SPIFFE IDs) are made with
 * GnuTLS by tests/weft-test-certs.c, signed by the same CA. */
#include "weft-tls-credentials-private.h"
#include "weft-test-certs.h"

#include <string.h>

#define DAY WEFT_TEST_DAY

static char *
path (const char *dir, const char *file)
{
  return weft_test_certs_path (dir, file);
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

  weft_test_make_leaf ("ca1", "expired", uris, now - 3 * DAY, now - DAY);
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

  weft_test_make_leaf ("ca1", "nosan", none, now - 60, now + DAY);
  creds = load ("nosan", "leaf.pem", "nosan", "leaf-key.pem", &error);
  g_assert_null (creds);
  assert_refused (error, WEFT_ERROR_CONFIG, "nosan", "leaf.pem", "no spiffe://");
  g_clear_error (&error);

  weft_test_make_leaf ("ca1", "twosan", two, now - 60, now + DAY);
  creds = load ("twosan", "leaf.pem", "twosan", "leaf-key.pem", &error);
  g_assert_null (creds);
  assert_refused (error, WEFT_ERROR_CONFIG, "twosan", "leaf.pem", "more than one");
  g_clear_error (&error);

  weft_test_make_leaf ("ca1", "oddsan", odd, now - 60, now + DAY);
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

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  weft_test_certs_init ("weft-tls");

  /* ca1 is the bundle; ca2 is a stranger with the same trust domain */
  weft_test_make_ca ("ca1");
  weft_test_make_ca ("ca2");
  weft_test_issue ("ca1", "good", "reviews");
  weft_test_issue ("ca1", "other", "reviews");
  weft_test_issue ("ca2", "foreign", "reviews");

  g_test_add_func ("/tls-credentials/good-chain", test_good_chain);
  g_test_add_func ("/tls-credentials/key-from-other-issue", test_key_from_other_issue);
  g_test_add_func ("/tls-credentials/leaf-from-other-ca", test_leaf_from_other_ca);
  g_test_add_func ("/tls-credentials/missing-file", test_missing_file);
  g_test_add_func ("/tls-credentials/not-pem", test_not_pem);
  g_test_add_func ("/tls-credentials/expired-leaf", test_expired_leaf);
  g_test_add_func ("/tls-credentials/spiffe-san-count", test_spiffe_san_count);
  g_test_add_func ("/tls-credentials/spiffe-id-parse", test_spiffe_id_parse);
  ret = g_test_run ();

  weft_test_certs_cleanup ();
  return ret;
}
