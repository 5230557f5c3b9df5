/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WeftUpstreamPool: per-endpoint entries and what they own.
 */
#include "weft-upstream-pool-private.h"

#include <glib.h>

/* one entry per endpoint key, the same one each time it is asked for */
static void
test_entry_per_key (void)
{
  WeftUpstreamPool *pool = weft_upstream_pool_new (NULL, NULL, 4);
  WeftPoolEntry *a = weft_upstream_pool_entry (pool, "127.0.0.1:80");
  WeftPoolEntry *b = weft_upstream_pool_entry (pool, "127.0.0.1:81");

  g_assert_nonnull (a);
  g_assert_true (a != b);
  g_assert_true (weft_upstream_pool_entry (pool, "127.0.0.1:80") == a);
  g_assert_cmpstr (a->key, ==, "127.0.0.1:80");
  g_assert_cmpuint (weft_upstream_pool_get_n_idle (pool), ==, 0);
  g_assert_null (weft_upstream_pool_take (pool, a));
  weft_upstream_pool_free (pool);
}

static void
weft_test_set_flag (gpointer data)
{
  *(gboolean *) data = TRUE;
}

/* the saved mTLS session of an endpoint is the pool's: freed with it (the
 * leak valgrind found after the mTLS e2e tests) */
static void
test_entry_frees_tls_resume (void)
{
  WeftUpstreamPool *pool = weft_upstream_pool_new (NULL, NULL, 4);
  WeftPoolEntry *entry = weft_upstream_pool_entry (pool, "10.0.0.1:443");
  gboolean freed = FALSE;

  entry->tls_resume = g_bytes_new_with_free_func ("session", 7, weft_test_set_flag, &freed);
  weft_upstream_pool_free (pool);
  g_assert_true (freed);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/upstream-pool/entry-per-key", test_entry_per_key);
  g_test_add_func ("/upstream-pool/entry-frees-tls-resume", test_entry_frees_tls_resume);
  return g_test_run ();
}
