/* SPDX-License-Identifier: LGPL-2.1-or-later
 * WeftUpstream: round robin over healthy endpoints, unhealthy after N
 * failures, backoff, and one endpoint still tried when all are down. */
#include "weft-upstream-private.h"

static WeftUpstreamConfig *
make_config (guint n)
{
  WeftUpstreamConfig *uc = g_new0 (WeftUpstreamConfig, 1);

  uc->name = g_strdup ("u");
  uc->endpoints = g_ptr_array_new ();
  uc->unhealthy_after = 3;
  uc->unhealthy_backoff_ms = 1000;
  for (guint i = 0; i < n; i++)
    {
      WeftEndpointConfig *ec = g_new0 (WeftEndpointConfig, 1);
      ec->host = g_strdup ("127.0.0.1");
      ec->port = 9000 + i;
      ec->is_ip = TRUE;
      g_ptr_array_add (uc->endpoints, ec);
    }
  return uc;
}

static void
free_config (WeftUpstreamConfig *uc)
{
  for (guint i = 0; i < uc->endpoints->len; i++)
    {
      WeftEndpointConfig *ec = uc->endpoints->pdata[i];
      g_free (ec->host);
      g_free (ec);
    }
  g_ptr_array_unref (uc->endpoints);
  g_free (uc->name);
  g_free (uc);
}

static guint
pick (WeftUpstream *up, guint w, gint64 now, gboolean *all_down)
{
  WeftEndpointSet *set;
  guint idx;

  g_assert_cmpint (weft_upstream_pick (up, w, now, NULL, &set, &idx, all_down), ==, WEFT_PICK_OK);
  return idx;
}

static void
test_round_robin (void)
{
  WeftUpstreamConfig *uc = make_config (3);
  WeftUpstream *up = weft_upstream_new (uc, 2, NULL);
  gboolean down;
  guint counts[3] = { 0 };

  g_assert_cmpstr (up->set->endpoints[1].key, ==, "127.0.0.1:9001");
  for (guint i = 0; i < 30; i++)
    counts[pick (up, 0, 0, &down)]++;
  g_assert_cmpuint (counts[0], ==, 10);
  g_assert_cmpuint (counts[1], ==, 10);
  g_assert_cmpuint (counts[2], ==, 10);
  g_assert_false (down);
  weft_upstream_free (up);
  free_config (uc);
}

static void
test_unhealthy_and_backoff (void)
{
  WeftUpstreamConfig *uc = make_config (2);
  WeftUpstream *up = weft_upstream_new (uc, 1, NULL);
  gboolean down;

  /* two failures: still healthy; the third marks it down */
  weft_upstream_report (up, up->set, 0, 0, FALSE, 0);
  weft_upstream_report (up, up->set, 0, 0, FALSE, 0);
  g_assert_cmpint (up->set->health[0].retry_at_ms, ==, 0);
  weft_upstream_report (up, up->set, 0, 0, FALSE, 0);
  g_assert_cmpint (up->set->health[0].retry_at_ms, ==, 1000);
  for (guint i = 0; i < 5; i++)
    g_assert_cmpuint (pick (up, 0, 10, &down), ==, 1);
  /* after the backoff it is tried again */
  g_assert_cmpuint (pick (up, 0, 1000, &down) + pick (up, 0, 1000, &down), ==, 1);
  /* a failed retry doubles the backoff; a success heals it */
  weft_upstream_report (up, up->set, 0, 0, FALSE, 1000);
  g_assert_cmpint (up->set->health[0].retry_at_ms, ==, 3000);
  weft_upstream_report (up, up->set, 0, 0, TRUE, 3000);
  g_assert_cmpint (up->set->health[0].retry_at_ms, ==, 0);
  g_assert_cmpuint (up->set->health[0].fails, ==, 0);
  weft_upstream_free (up);
  free_config (uc);
}

static void
test_all_down_still_tries_one (void)
{
  WeftUpstreamConfig *uc = make_config (2);
  WeftUpstream *up = weft_upstream_new (uc, 1, NULL);
  gboolean down;

  for (guint i = 0; i < 3; i++)
    {
      weft_upstream_report (up, up->set, 0, 0, FALSE, 0);
      weft_upstream_report (up, up->set, 1, 0, FALSE, 500);
    }
  /* both down: the one due soonest is tried, and the caller is told */
  g_assert_cmpuint (pick (up, 0, 10, &down), ==, 0);
  g_assert_true (down);
  weft_upstream_free (up);
  free_config (uc);
}

static void
test_health_is_per_worker (void)
{
  WeftUpstreamConfig *uc = make_config (2);
  WeftUpstream *up = weft_upstream_new (uc, 2, NULL);
  gboolean down;

  for (guint i = 0; i < 3; i++)
    weft_upstream_report (up, up->set, 0, 0, FALSE, 0);
  /* worker 1 has seen no failure */
  g_assert_cmpuint (pick (up, 1, 10, &down) + pick (up, 1, 10, &down), ==, 1);
  weft_upstream_free (up);
  free_config (uc);
}

static void
test_empty_set (void)
{
  WeftUpstreamConfig *uc = make_config (0);
  WeftUpstream *up = weft_upstream_new (uc, 1, NULL);
  WeftEndpointSet *set;
  guint idx;
  gboolean down;

  g_assert_cmpint (weft_upstream_pick (up, 0, 0, NULL, &set, &idx, &down), ==, WEFT_PICK_NONE);
  weft_upstream_free (up);
  free_config (uc);
}

static void
test_dns_names_kept_across_reload (void)
{
  WeftUpstreamConfig *uc = make_config (1);
  WeftEndpointConfig *named = g_new0 (WeftEndpointConfig, 1);
  WeftUpstream *old, *fresh;
  GPtrArray *found = g_ptr_array_new ();

  named->host = g_strdup ("svc.example");
  named->port = 80;
  g_ptr_array_add (uc->endpoints, named);
  old = weft_upstream_new (uc, 1, NULL);
  g_assert_true (old->needs_dns);
  g_assert_cmpuint (old->set->n, ==, 1);
  /* as if DNS answered: the set now has two addresses */
  g_ptr_array_add (found, "127.0.0.1");
  g_ptr_array_add (found, "10.0.0.2");
  weft_endpoint_set_free (old->set);
  old->set = weft_endpoint_set_new (found, 80, 1);
  /* a reload with the same endpoints starts with what DNS found */
  fresh = weft_upstream_new (uc, 1, old);
  g_assert_cmpuint (fresh->set->n, ==, 2);
  g_assert_cmpstr (fresh->set->endpoints[1].key, ==, "10.0.0.2:80");
  weft_upstream_free (fresh);
  weft_upstream_free (old);
  g_ptr_array_unref (found);
  free_config (uc);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/upstream/round-robin", test_round_robin);
  g_test_add_func ("/upstream/unhealthy-and-backoff", test_unhealthy_and_backoff);
  g_test_add_func ("/upstream/all-down-still-tries-one", test_all_down_still_tries_one);
  g_test_add_func ("/upstream/health-per-worker", test_health_is_per_worker);
  g_test_add_func ("/upstream/empty-set", test_empty_set);
  g_test_add_func ("/upstream/dns-kept-across-reload", test_dns_names_kept_across_reload);
  return g_test_run ();
}
