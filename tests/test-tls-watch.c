/* SPDX-License-Identifier: LGPL-2.1-or-later
 * WeftTlsWatch: a rotation of the certificate files becomes exactly one
 * reload request per new content (a kubelet ..data swap included), and the
 * leaf's expiry shows in the gauge and, when close, in the log. */
#include "weft-tls-watch-private.h"
#include "weft-metrics-private.h"
#include "weft-test-certs.h"

#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>

#define CLIENT_ID "spiffe://cluster.local/ns/default/sa/reviews"
#define STALL_S   5

/* the files of a kubelet Secret volume: <dir>/<name> -> ..data/<name> */
static const char *const volume_files[] = { "cert.pem", "key.pem", "ca.pem" };

typedef struct {
  char         *dir;        /* the volume */
  WeftTlsConfig config;     /* its three files */
  guint         stamp;
} Volume;

/* the cert, key and bundle to copy: <dir>/<sa>.pem, <dir>/<sa>-key.pem and
 * ca1's ca.pem */
static void
volume_fill (const char *into, const char *dir, const char *sa)
{
  g_autofree char *cert_name = g_strconcat (sa, ".pem", NULL);
  g_autofree char *key_name = g_strconcat (sa, "-key.pem", NULL);
  g_autofree char *cert = weft_test_certs_path (dir, cert_name);
  g_autofree char *key = weft_test_certs_path (dir, key_name);
  g_autofree char *ca = weft_test_certs_path ("ca1", "ca.pem");
  const char *const from[] = { cert, key, ca };

  for (guint i = 0; i < G_N_ELEMENTS (volume_files); i++)
    {
      g_autofree char *contents = NULL;
      g_autofree char *to = g_build_filename (into, volume_files[i], NULL);
      gsize len = 0;

      g_assert_true (g_file_get_contents (from[i], &contents, &len, NULL));
      g_assert_true (g_file_set_contents (to, contents, (gssize) len, NULL));
    }
}

/* a new timestamped directory with the files of @dir/@sa, then ..data
 * renamed onto it, the old one removed: what the kubelet does */
static void
volume_swap (Volume *v, const char *dir, const char *sa)
{
  g_autofree char *stamp = g_strdup_printf ("..2026_01_01_00_00_%02u.000000001", ++v->stamp);
  g_autofree char *stamped = g_build_filename (v->dir, stamp, NULL);
  g_autofree char *data = g_build_filename (v->dir, "..data", NULL);
  g_autofree char *tmp = g_build_filename (v->dir, "..data_tmp", NULL);
  g_autofree char *old = g_file_read_link (data, NULL);

  g_assert_no_errno (g_mkdir (stamped, 0700));
  volume_fill (stamped, dir, sa);
  g_assert_no_errno (symlink (stamp, tmp));
  g_assert_no_errno (g_rename (tmp, data));
  if (old != NULL)
    {
      g_autofree char *old_dir = g_build_filename (v->dir, old, NULL);
      weft_test_remove_tree (old_dir);
    }
}

static void
volume_open (Volume *v, const char *name, const char *dir, const char *sa)
{
  char **paths[] = { &v->config.cert, &v->config.key, &v->config.bundle };

  memset (v, 0, sizeof *v);
  v->dir = weft_test_certs_path (name, NULL);
  g_assert_no_errno (g_mkdir (v->dir, 0700));
  volume_swap (v, dir, sa);
  for (guint i = 0; i < G_N_ELEMENTS (volume_files); i++)
    {
      g_autofree char *link = g_build_filename (v->dir, volume_files[i], NULL);
      g_autofree char *target = g_build_filename ("..data", volume_files[i], NULL);

      g_assert_no_errno (symlink (target, link));
      *paths[i] = g_steal_pointer (&link);
    }
}

static void
volume_close (Volume *v)
{
  weft_test_remove_tree (v->dir);
  g_free (v->dir);
  g_free (v->config.cert);
  g_free (v->config.key);
  g_free (v->config.bundle);
}

static WeftTlsCredentials *
volume_load (Volume *v)
{
  g_autoptr(GError) error = NULL;
  WeftTlsCredentials *creds = weft_tls_credentials_load (v->config.cert, v->config.key,
                                                         v->config.bundle, &error);

  g_assert_no_error (error);
  return creds;
}

static gboolean
count_changed (gpointer data)
{
  guint *count = data;

  (*count)++;
  return G_SOURCE_REMOVE;
}

static gboolean
stalled (gpointer data)
{
  gboolean *flag = data;

  *flag = TRUE;
  return G_SOURCE_REMOVE;
}

/* runs the main loop until *@count reaches @want; STALL_S fails the test */
static void
wait_count (guint *count, guint want)
{
  gboolean stall = FALSE;
  guint id = g_timeout_add_seconds (STALL_S, stalled, &stall);

  while (*count < want && !stall)
    g_main_context_iteration (NULL, TRUE);
  g_assert_false (stall);
  g_source_remove (id);
}

/* runs the main loop for @ms */
static void
run_for (guint ms)
{
  gboolean done = FALSE;

  g_timeout_add (ms, stalled, &done);
  while (!done)
    g_main_context_iteration (NULL, TRUE);
}

/* ------------------------------------------------------------------ */

/* compared with the live credentials' bytes, once per new content */
static void
test_files_changed (void)
{
  g_autoptr(WeftTlsWatch) watch = NULL;
  g_autoptr(WeftTlsCredentials) creds = NULL;
  g_autoptr(WeftTlsCredentials) rotated = NULL;
  guint count = 0;
  Volume v;

  volume_open (&v, "changed", "good", "reviews");
  creds = volume_load (&v);
  watch = weft_tls_watch_new (count_changed, &count);
  /* nothing live yet: nothing to compare */
  g_assert_false (weft_tls_watch_files_changed (watch));
  weft_tls_watch_update (watch, &v.config, creds);
  g_assert_false (weft_tls_watch_files_changed (watch));

  /* a new certificate: asked once, not again for the same bytes */
  volume_swap (&v, "other", "reviews");
  g_assert_true (weft_tls_watch_files_changed (watch));
  g_assert_false (weft_tls_watch_files_changed (watch));
  /* back to what is live: nothing to reload */
  volume_swap (&v, "good", "reviews");
  g_assert_false (weft_tls_watch_files_changed (watch));

  /* a file that went away is a change too, so the reload says why */
  {
    g_autofree char *key = g_build_filename (v.dir, "..data", "key.pem", NULL);
    g_assert_no_errno (g_unlink (key));
  }
  g_assert_true (weft_tls_watch_files_changed (watch));
  g_assert_false (weft_tls_watch_files_changed (watch));

  /* the reload of the new files went through: those are live now */
  volume_swap (&v, "other", "reviews");
  g_assert_true (weft_tls_watch_files_changed (watch));
  rotated = volume_load (&v);
  weft_tls_watch_update (watch, &v.config, rotated);
  g_assert_false (weft_tls_watch_files_changed (watch));
  volume_swap (&v, "good", "reviews");
  g_assert_true (weft_tls_watch_files_changed (watch));

  /* no tls: any more: nothing is watched */
  weft_tls_watch_update (watch, NULL, NULL);
  g_assert_false (weft_tls_watch_files_changed (watch));
  /* the callback is the file watch's: nothing ran it here */
  g_assert_cmpuint (count, ==, 0);
  g_clear_pointer (&watch, weft_tls_watch_free);
  volume_close (&v);
}

/* a key swapped after its certificate: the half-way state asks for a
 * reload (which fails and keeps the old credentials), the whole one asks
 * again */
static void
test_half_rotation (void)
{
  g_autoptr(WeftTlsWatch) watch = NULL;
  g_autoptr(WeftTlsCredentials) creds = NULL;
  g_autofree char *other_cert = weft_test_certs_path ("other", "reviews.pem");
  g_autofree char *other_key = weft_test_certs_path ("other", "reviews-key.pem");
  g_autofree char *cert = NULL, *key = NULL;
  g_autofree char *cert_file = weft_test_certs_path ("half", "..data/cert.pem");
  g_autofree char *key_file = weft_test_certs_path ("half", "..data/key.pem");
  gsize cert_len = 0, key_len = 0;
  guint count = 0;
  Volume v;

  volume_open (&v, "half", "good", "reviews");
  creds = volume_load (&v);
  watch = weft_tls_watch_new (count_changed, &count);
  weft_tls_watch_update (watch, &v.config, creds);
  g_assert_true (g_file_get_contents (other_cert, &cert, &cert_len, NULL));
  g_assert_true (g_file_get_contents (other_key, &key, &key_len, NULL));

  /* replaced in place, one file at a time */
  g_assert_true (g_file_set_contents (cert_file, cert, (gssize) cert_len, NULL));
  g_assert_true (weft_tls_watch_files_changed (watch));
  g_assert_true (g_file_set_contents (key_file, key, (gssize) key_len, NULL));
  g_assert_true (weft_tls_watch_files_changed (watch));
  g_assert_false (weft_tls_watch_files_changed (watch));
  g_clear_pointer (&watch, weft_tls_watch_free);
  volume_close (&v);
}

/* a kubelet ..data swap calls back once, though three files changed */
static void
test_kubelet_swap (void)
{
  g_autoptr(WeftTlsWatch) watch = NULL;
  g_autoptr(WeftTlsCredentials) creds = NULL;
  guint count = 0;
  Volume v;

  volume_open (&v, "kubelet", "good", "reviews");
  creds = volume_load (&v);
  watch = weft_tls_watch_new (count_changed, &count);
  weft_tls_watch_update (watch, &v.config, creds);

  volume_swap (&v, "other", "reviews");
  wait_count (&count, 1);
  /* the other files' watches fire too, after their own quiet period */
  run_for (500);
  g_assert_cmpuint (count, ==, 1);

  /* and the next rotation is seen as well */
  volume_swap (&v, "good", "reviews");
  run_for (500);
  g_assert_cmpuint (count, ==, 1);   /* back to the live bytes: no reload */
  volume_swap (&v, "other2", "reviews");
  wait_count (&count, 2);
  g_clear_pointer (&watch, weft_tls_watch_free);
  volume_close (&v);
}

/* the gauge holds the seconds left of the live leaf */
static gint64
expiry_gauge (const char *spiffe_id)
{
  g_autoptr(GString) out = g_string_new (NULL);
  g_autofree char *prefix = g_strdup_printf ("weft_tls_certificate_expiry_seconds{spiffe_id=\"%s\"} ",
                                             spiffe_id);
  const char *at;

  weft_metrics_render (out);
  at = strstr (out->str, prefix);
  g_assert_nonnull (at);
  return g_ascii_strtoll (at + strlen (prefix), NULL, 10);
}

/* whether /metrics has a gauge series for @spiffe_id at all */
static gboolean
expiry_gauge_shown (const char *spiffe_id)
{
  g_autoptr(GString) out = g_string_new (NULL);
  g_autofree char *prefix = g_strdup_printf ("weft_tls_certificate_expiry_seconds{spiffe_id=\"%s\"} ",
                                             spiffe_id);

  weft_metrics_render (out);
  return strstr (out->str, prefix) != NULL;
}

static void
test_expiry_gauge (void)
{
  g_autoptr(WeftTlsWatch) watch = NULL;
  g_autoptr(WeftTlsCredentials) creds = NULL;
  g_autoptr(WeftTlsCredentials) expired = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *exp_cert = weft_test_certs_path ("expired", "leaf.pem");
  g_autofree char *exp_key = weft_test_certs_path ("expired", "leaf-key.pem");
  g_autofree char *ca = weft_test_certs_path ("ca1", "ca.pem");
  WeftTlsConfig exp_config = { exp_cert, exp_key, ca, 0, NULL };
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  guint count = 0;
  gint64 left;
  Volume v;

  volume_open (&v, "gauge", "good", "reviews");
  creds = volume_load (&v);
  watch = weft_tls_watch_new (count_changed, &count);
  weft_tls_watch_update (watch, &v.config, creds);
  weft_tls_watch_refresh (watch);
  left = expiry_gauge (CLIENT_ID);
  /* weftctl --days 1 */
  g_assert_cmpint (left, >, WEFT_TEST_DAY - 600);
  g_assert_cmpint (left, <=, weft_tls_credentials_get_not_after (creds) - now);

  expired = weft_tls_credentials_load (exp_cert, exp_key, ca, &error);
  g_assert_no_error (error);
  weft_tls_watch_update (watch, &exp_config, expired);
  weft_tls_watch_refresh (watch);
  left = expiry_gauge (weft_tls_credentials_get_spiffe_id (expired));
  g_assert_cmpint (left, <, -WEFT_TEST_DAY + 600);
  /* the rotated-away identity is no longer reported, frozen or not */
  g_assert_false (expiry_gauge_shown (CLIENT_ID));
  /* nor is any once tls: is gone */
  weft_tls_watch_update (watch, NULL, NULL);
  weft_tls_watch_refresh (watch);
  g_assert_false (expiry_gauge_shown (weft_tls_credentials_get_spiffe_id (expired)));
  g_clear_pointer (&watch, weft_tls_watch_free);
  volume_close (&v);
}

/* the log lines, in a child whose stderr is kept */
static void
expiry_log_child (const char *dir, const char *cert, const char *key, guint64 warning_ms)
{
  guint count = 0;
  g_autoptr(WeftTlsWatch) watch = weft_tls_watch_new (count_changed, &count);
  g_autofree char *cert_file = weft_test_certs_path (dir, cert);
  g_autofree char *key_file = weft_test_certs_path (dir, key);
  g_autofree char *ca = weft_test_certs_path ("ca1", "ca.pem");
  WeftTlsConfig config = { cert_file, key_file, ca, warning_ms, NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftTlsCredentials) creds = weft_tls_credentials_load (cert_file, key_file, ca,
                                                                   &error);

  g_assert_no_error (error);
  weft_tls_watch_update (watch, &config, creds);
  /* the same credentials again: no second line within the hour */
  weft_tls_watch_update (watch, &config, creds);
}

static void
test_expiry_log (void)
{
  if (g_test_subprocess ())
    {
      const char *which = g_getenv ("WEFT_TEST_EXPIRY");

      if (g_strcmp0 (which, "near") == 0)
        expiry_log_child ("good", "reviews.pem", "reviews-key.pem", 48 * 3600 * 1000);
      else if (g_strcmp0 (which, "far") == 0)
        expiry_log_child ("good", "reviews.pem", "reviews-key.pem", 0);
      else
        expiry_log_child ("expired", "leaf.pem", "leaf-key.pem", 0);
      return;
    }

  /* expiry_warning 48h: a one-day certificate is close */
  g_setenv ("WEFT_TEST_EXPIRY", "near", TRUE);
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr ("*warning tls: certificate " CLIENT_ID " (*/good/reviews.pem) expires in *");
  g_test_trap_assert_stderr_unmatched ("*expires in*expires in*");

  /* by default a quarter of its lifetime: a fresh one says nothing */
  g_setenv ("WEFT_TEST_EXPIRY", "far", TRUE);
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr_unmatched ("*certificate*");

  g_setenv ("WEFT_TEST_EXPIRY", "expired", TRUE);
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr ("*error tls: certificate spiffe://cluster.local/ns/default/sa/old "
                             "(*leaf.pem) expired * s ago*");
  g_unsetenv ("WEFT_TEST_EXPIRY");
}

/* ------------------------------------------------------------------ */

int
main (int argc, char **argv)
{
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  const char *const old[] = { "spiffe://cluster.local/ns/default/sa/old", NULL };
  int ret;

  g_test_init (&argc, &argv, NULL);
  weft_test_certs_init ("weft-tls-watch");
  weft_metrics_init (0);
  /* a subprocess reuses the certificates its parent made */
  if (!g_test_subprocess ())
    {
      weft_test_make_ca ("ca1");
      weft_test_issue ("ca1", "good", "reviews");
      weft_test_issue ("ca1", "other", "reviews");
      weft_test_issue ("ca1", "other2", "reviews");
      weft_test_make_leaf ("ca1", "expired", old, now - 3 * WEFT_TEST_DAY, now - WEFT_TEST_DAY);
    }

  g_test_add_func ("/tls-watch/files-changed", test_files_changed);
  g_test_add_func ("/tls-watch/half-rotation", test_half_rotation);
  g_test_add_func ("/tls-watch/kubelet-swap", test_kubelet_swap);
  g_test_add_func ("/tls-watch/expiry-gauge", test_expiry_gauge);
  g_test_add_func ("/tls-watch/expiry-log", test_expiry_log);
  ret = g_test_run ();

  weft_test_certs_cleanup ();
  weft_metrics_shutdown ();
  return ret;
}
