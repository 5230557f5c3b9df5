/* SPDX-License-Identifier: LGPL-2.1-or-later
 * WeftUpstream: round robin over healthy endpoints, unhealthy after N
 * failures, backoff, and one endpoint still tried when all are down; the
 * random, least-request, ring-hash and Maglev balancers; request hashing;
 * outlier detection; pool limits. */
#include "weft-upstream-private.h"
#include "weft-conn-private.h"

#include <string.h>

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

/* names only, none resolved yet: the pick says so, and picks once DNS
 * has answered */
static void
test_unresolved_set (void)
{
  WeftUpstreamConfig *uc = make_config (0);
  WeftEndpointConfig *named = g_new0 (WeftEndpointConfig, 1);
  GPtrArray *found = g_ptr_array_new ();
  WeftUpstream *up;
  WeftEndpointSet *set;
  guint idx;
  gboolean down;

  named->host = g_strdup ("svc.example");
  named->port = 80;
  g_ptr_array_add (uc->endpoints, named);
  up = weft_upstream_new (uc, 1, NULL);
  g_assert_true (up->needs_dns);
  g_assert_cmpint (weft_upstream_pick (up, 0, 0, NULL, &set, &idx, &down), ==,
                   WEFT_PICK_UNRESOLVED);
  g_ptr_array_add (found, "127.0.0.1");
  weft_upstream_replace_set (up, weft_endpoint_set_new (found, 80, 1));
  g_assert_cmpint (weft_upstream_pick (up, 0, 0, NULL, &set, &idx, &down), ==, WEFT_PICK_OK);
  g_assert_cmpstr (set->endpoints[idx].key, ==, "127.0.0.1:80");
  weft_upstream_free (up);
  g_ptr_array_unref (found);
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


/* ------------------------------------------------------------------ */
/* helpers for the policies                                            */
/* ------------------------------------------------------------------ */

static void
set_lb (WeftUpstream *up, WeftLbPolicy policy, WeftHashOn hash_on, const char *key,
        guint table_size)
{
  WeftLbSpec lb = { .policy = policy, .hash_on = hash_on, .hash_key = key,
                    .table_size = table_size };
  g_autoptr(GError) error = NULL;

  g_assert_true (weft_upstream_set_policy (up, &lb, NULL, NULL, &error));
  g_assert_no_error (error);
}

static void
set_outlier (WeftUpstream *up, guint c5xx, guint cgw, guint64 base_ms, guint pct)
{
  WeftOutlierSpec o = { .consecutive_5xx = c5xx, .consecutive_gateway_errors = cgw,
                        .base_ejection_ms = base_ms, .max_ejection_percent = pct };

  g_assert_true (weft_upstream_set_policy (up, NULL, &o, NULL, NULL));
}

/* a set of @n endpoints 10.0.0.<first>..:80 */
static WeftEndpointSet *
make_set (guint first, guint n, guint n_workers)
{
  g_autoptr(GPtrArray) addrs = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; i < n; i++)
    g_ptr_array_add (addrs, g_strdup_printf ("10.0.0.%u", first + i));
  return weft_endpoint_set_new (addrs, 80, n_workers);
}

/* an upstream of @n endpoints 10.0.0.1.. with a hash policy */
static WeftUpstream *
make_hash_upstream (WeftUpstreamConfig *uc, WeftLbPolicy policy, guint table_size, guint n)
{
  WeftUpstream *up = weft_upstream_new (uc, 1, NULL);

  set_lb (up, policy, WEFT_HASH_ON_HEADER, "x-user", table_size);
  weft_upstream_replace_set (up, make_set (1, n, 1));
  return up;
}

static guint
pick_hints (WeftUpstream *up, guint w, gint64 now, const WeftPickHints *hints, gboolean *down)
{
  WeftEndpointSet *set;
  guint idx;

  g_assert_cmpint (weft_upstream_pick (up, w, now, hints, &set, &idx, down), ==, WEFT_PICK_OK);
  g_assert_true (set == up->set);
  g_assert_cmpuint (idx, <, set->n);
  return idx;
}

static const char *
pick_key (WeftUpstream *up, guint64 hash)
{
  WeftPickHints hints = { .has_hash = TRUE, .hash = hash };
  gboolean down;

  return up->set->endpoints[pick_hints (up, 0, 0, &hints, &down)].key;
}

static guint64
key_hash (guint i)
{
  char text[32];

  g_snprintf (text, sizeof text, "user-%u", i);
  return weft_hash64 (text, strlen (text), 0);
}

/* one finished attempt on @idx of the current set */
static void
attempt (WeftUpstream *up, guint idx, WeftOutcome outcome, guint status, gint64 latency_us,
         gint64 now)
{
  weft_upstream_attempt_start (up, up->set, idx, 0);
  weft_upstream_attempt_end (up, up->set, idx, 0, outcome, status, latency_us, now);
}

static gboolean
is_ejected (WeftUpstream *up, guint idx, gint64 now)
{
  return up->set->outlier[idx].ejected_until_ms > now;
}

/* ------------------------------------------------------------------ */
/* random                                                              */
/* ------------------------------------------------------------------ */

static void
test_random_spread (void)
{
  WeftUpstreamConfig *uc = make_config (4);
  WeftUpstream *up = weft_upstream_new (uc, 2, NULL);
  guint counts[4] = { 0 };
  gboolean down;

  set_lb (up, WEFT_LB_RANDOM, WEFT_HASH_ON_NONE, NULL, 0);
  for (guint i = 0; i < 10000; i++)
    counts[pick_hints (up, 1, 0, NULL, &down)]++;
  /* 2500 expected, sd 43: 2200..2800 is seven sd */
  for (guint i = 0; i < 4; i++)
    {
      g_test_message ("endpoint %u: %u", i, counts[i]);
      g_assert_cmpuint (counts[i], >, 2200);
      g_assert_cmpuint (counts[i], <, 2800);
    }
  /* an unhealthy endpoint is never picked, the others share evenly */
  for (guint i = 0; i < 3; i++)
    weft_upstream_report (up, up->set, 2, 1, FALSE, 0);
  memset (counts, 0, sizeof counts);
  for (guint i = 0; i < 9000; i++)
    counts[pick_hints (up, 1, 10, NULL, &down)]++;
  g_assert_cmpuint (counts[2], ==, 0);
  for (guint i = 0; i < 4; i++)
    if (i != 2)
      {
        g_assert_cmpuint (counts[i], >, 2700);
        g_assert_cmpuint (counts[i], <, 3300);
      }
  g_assert_false (down);
  weft_upstream_free (up);
  free_config (uc);
}

/* ------------------------------------------------------------------ */
/* least request                                                       */
/* ------------------------------------------------------------------ */

static void
test_least_request_outstanding (void)
{
  WeftUpstreamConfig *uc = make_config (3);
  WeftUpstream *up = weft_upstream_new (uc, 1, NULL);
  guint counts[3] = { 0 };
  gboolean down;

  set_lb (up, WEFT_LB_LEAST_REQUEST, WEFT_HASH_ON_NONE, NULL, 0);
  /* endpoint 0 has five requests in flight: it loses every pair it is in */
  for (guint i = 0; i < 5; i++)
    weft_upstream_attempt_start (up, up->set, 0, 0);
  for (guint i = 0; i < 3000; i++)
    counts[pick_hints (up, 0, 0, NULL, &down)]++;
  g_assert_cmpuint (counts[0], ==, 0);
  g_assert_cmpuint (counts[1], >, 1300);
  g_assert_cmpuint (counts[2], >, 1300);
  /* once they end it is back in the game */
  for (guint i = 0; i < 5; i++)
    weft_upstream_attempt_end (up, up->set, 0, 0, WEFT_OUTCOME_RESPONSE, 200, 1000, 0);
  memset (counts, 0, sizeof counts);
  for (guint i = 0; i < 3000; i++)
    counts[pick_hints (up, 0, 0, NULL, &down)]++;
  g_assert_cmpuint (counts[0], >, 500);
  weft_upstream_free (up);
  free_config (uc);
}

static void
test_least_request_latency (void)
{
  WeftUpstreamConfig *uc = make_config (3);
  WeftUpstream *up = weft_upstream_new (uc, 1, NULL);
  guint counts[3] = { 0 };
  gboolean down;

  set_lb (up, WEFT_LB_LEAST_REQUEST, WEFT_HASH_ON_NONE, NULL, 0);
  /* 0 and 1 answer in 1 ms, 2 in 10 ms */
  for (guint k = 0; k < 10; k++)
    {
      attempt (up, 0, WEFT_OUTCOME_RESPONSE, 200, 1000, 1000);
      attempt (up, 1, WEFT_OUTCOME_RESPONSE, 200, 1000, 1000);
      attempt (up, 2, WEFT_OUTCOME_RESPONSE, 200, 10000, 1000);
    }
  for (guint i = 0; i < 3000; i++)
    counts[pick_hints (up, 0, 1000, NULL, &down)]++;
  g_assert_cmpuint (counts[2], ==, 0);
  g_assert_cmpuint (counts[0], >, 1300);
  g_assert_cmpuint (counts[1], >, 1300);
  /* the slow one still takes load when the fast ones are busy:
   * 10 ms * 1 beats 1 ms * 21 */
  for (guint i = 0; i < 20; i++)
    {
      weft_upstream_attempt_start (up, up->set, 0, 0);
      weft_upstream_attempt_start (up, up->set, 1, 0);
    }
  /* it wins each pair it is in: two pairs of three */
  memset (counts, 0, sizeof counts);
  for (guint i = 0; i < 3000; i++)
    counts[pick_hints (up, 0, 1000, NULL, &down)]++;
  g_assert_cmpuint (counts[2], >, 1800);
  g_assert_cmpuint (counts[2], <, 2200);
  weft_upstream_free (up);
  free_config (uc);
}

static void
test_least_request_equal_spread (void)
{
  WeftUpstreamConfig *uc = make_config (4);
  WeftUpstream *up = weft_upstream_new (uc, 1, NULL);
  guint counts[4] = { 0 };
  gboolean down;

  set_lb (up, WEFT_LB_LEAST_REQUEST, WEFT_HASH_ON_NONE, NULL, 0);
  for (guint i = 0; i < 8000; i++)
    {
      guint idx = pick_hints (up, 0, i / 10, NULL, &down);
      counts[idx]++;
      attempt (up, idx, WEFT_OUTCOME_RESPONSE, 200, 2000, i / 10);
    }
  for (guint i = 0; i < 4; i++)
    {
      g_test_message ("endpoint %u: %u", i, counts[i]);
      g_assert_cmpuint (counts[i], >, 1600);
      g_assert_cmpuint (counts[i], <, 2400);
    }
  weft_upstream_free (up);
  free_config (uc);
}

static void
test_least_request_peak_ewma (void)
{
  WeftUpstreamConfig *uc = make_config (2);
  WeftUpstream *up = weft_upstream_new (uc, 1, NULL);
  WeftEndpointHealth *h;

  set_lb (up, WEFT_LB_LEAST_REQUEST, WEFT_HASH_ON_NONE, NULL, 0);
  h = &weft_endpoint_set_health (up->set, 0)[0];
  g_assert_false (h->has_rtt);
  attempt (up, 0, WEFT_OUTCOME_RESPONSE, 200, 5000, 0);
  g_assert_cmpfloat (h->rtt_us, ==, 5000.0);
  /* lower, 10 s (one tau) later: 5000 e^-1 + 1000 (1 - e^-1) */
  attempt (up, 0, WEFT_OUTCOME_RESPONSE, 200, 1000, 10000);
  g_assert_cmpfloat_with_epsilon (h->rtt_us, 2471.52, 0.01);
  /* a higher sample is taken at once (the peak) */
  attempt (up, 0, WEFT_OUTCOME_RESPONSE, 200, 9000, 10001);
  g_assert_cmpfloat (h->rtt_us, ==, 9000.0);
  /* a failure counts at least twice the estimate, however fast it was */
  attempt (up, 0, WEFT_OUTCOME_CONNECT_FAILED, 0, 50, 10002);
  g_assert_cmpfloat (h->rtt_us, ==, 18000.0);
  /* a cancelled attempt is no sample */
  attempt (up, 0, WEFT_OUTCOME_CANCELLED, 0, 1, 10003);
  g_assert_cmpfloat (h->rtt_us, ==, 18000.0);
  g_assert_cmpuint (h->outstanding, ==, 0);
  weft_upstream_free (up);
  free_config (uc);
}

/* ------------------------------------------------------------------ */
/* ring hash and Maglev                                                */
/* ------------------------------------------------------------------ */

#define N_KEYS 10000

static void
check_hash_spread (WeftLbPolicy policy, guint table_size)
{
  WeftUpstreamConfig *uc = make_config (0);
  WeftUpstream *up = make_hash_upstream (uc, policy, table_size, 10);
  g_autoptr(GHashTable) counts = g_hash_table_new (g_str_hash, g_str_equal);

  for (guint i = 0; i < N_KEYS; i++)
    {
      const char *key = pick_key (up, key_hash (i));
      /* the same key lands on the same endpoint */
      g_assert_cmpstr (pick_key (up, key_hash (i)), ==, key);
      g_hash_table_insert (counts, (gpointer) key,
                           GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (counts, key)) + 1));
    }
  g_assert_cmpuint (g_hash_table_size (counts), ==, 10);
  for (guint i = 0; i < up->set->n; i++)
    {
      guint c = GPOINTER_TO_UINT (g_hash_table_lookup (counts, up->set->endpoints[i].key));
      g_test_message ("%s: %u keys", up->set->endpoints[i].key, c);
      /* 1000 each in a perfect world */
      g_assert_cmpuint (c, >=, N_KEYS / 10 / 2);
      g_assert_cmpuint (c, <=, N_KEYS / 10 * 16 / 10);
    }
  weft_upstream_free (up);
  free_config (uc);
}

static void
test_ring_hash_spread (void)
{
  check_hash_spread (WEFT_LB_RING_HASH, 0);
}

static void
test_maglev_spread (void)
{
  WeftUpstreamConfig *uc = make_config (0);
  WeftUpstream *up = make_hash_upstream (uc, WEFT_LB_MAGLEV, 0, 10);
  guint entries[10] = { 0 };

  check_hash_spread (WEFT_LB_MAGLEV, 0);
  check_hash_spread (WEFT_LB_MAGLEV, 1009);
  /* the endpoints take turns filling the table: shares differ by one entry at most */
  g_assert_cmpuint (up->set->maglev_size, ==, 65537);
  for (guint i = 0; i < up->set->maglev_size; i++)
    entries[up->set->maglev[i]]++;
  for (guint i = 0; i < 10; i++)
    g_assert_cmpuint (entries[i], >=, 6553);
  for (guint i = 0; i < 10; i++)
    g_assert_cmpuint (entries[i], <=, 6554);
  weft_upstream_free (up);
  free_config (uc);
}

/* which endpoint each key goes to, before and after @after replaces the set */
static void
check_hash_moves (WeftLbPolicy policy, guint n_before, guint first_after, guint n_after,
                  const char *changed, gboolean moved_only_to_changed, double min_stay)
{
  WeftUpstreamConfig *uc = make_config (0);
  WeftUpstream *up = make_hash_upstream (uc, policy, 0, n_before);
  g_autoptr(GPtrArray) before = g_ptr_array_new_with_free_func (g_free);
  guint moved = 0, others = 0, others_stayed = 0, to_changed = 0;
  guint n = MAX (n_before, n_after);
  double fraction;

  for (guint i = 0; i < N_KEYS; i++)
    g_ptr_array_add (before, g_strdup (pick_key (up, key_hash (i))));
  weft_upstream_replace_set (up, make_set (first_after, n_after, 1));
  for (guint i = 0; i < N_KEYS; i++)
    {
      const char *now = pick_key (up, key_hash (i));
      const char *was = before->pdata[i];
      gboolean on_changed = g_str_equal (was, changed);
      if (!g_str_equal (now, was))
        {
          moved++;
          to_changed += g_str_equal (now, changed);
        }
      if (!on_changed)
        {
          others++;
          others_stayed += g_str_equal (now, was);
        }
    }
  fraction = (double) moved / N_KEYS;
  g_test_message ("%s %u -> %u endpoints: %.4f moved, %.4f of the others stayed",
                  policy == WEFT_LB_MAGLEV ? "maglev" : "ring", n_before, n_after, fraction,
                  (double) others_stayed / others);
  g_assert_cmpfloat (fraction, >=, 0.5 / n);
  g_assert_cmpfloat (fraction, <=, 1.6 / n);
  g_assert_cmpfloat ((double) others_stayed / others, >=, min_stay);
  if (moved_only_to_changed)
    g_assert_cmpuint (to_changed, ==, moved);
  weft_upstream_free (up);
  free_config (uc);
}

static void
test_ring_hash_consistency (void)
{
  /* removing 10.0.0.1: only its keys move; adding 10.0.0.11: only keys
   * that go to it move */
  check_hash_moves (WEFT_LB_RING_HASH, 10, 2, 9, "10.0.0.1:80", FALSE, 1.0);
  check_hash_moves (WEFT_LB_RING_HASH, 10, 1, 11, "10.0.0.11:80", TRUE, 0.0);
  check_hash_moves (WEFT_LB_RING_HASH, 10, 1, 9, "10.0.0.10:80", FALSE, 1.0);
}

static void
test_maglev_consistency (void)
{
  check_hash_moves (WEFT_LB_MAGLEV, 10, 2, 9, "10.0.0.1:80", FALSE, 0.97);
  check_hash_moves (WEFT_LB_MAGLEV, 10, 1, 11, "10.0.0.11:80", FALSE, 0.0);
  check_hash_moves (WEFT_LB_MAGLEV, 10, 1, 9, "10.0.0.10:80", FALSE, 0.97);
}

/* the table does not depend on the order DNS answers in */
static void
test_maglev_order_independent (void)
{
  WeftUpstreamConfig *uc = make_config (0);
  WeftUpstream *up = make_hash_upstream (uc, WEFT_LB_MAGLEV, 0, 5);
  g_autoptr(GPtrArray) before = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) addrs = g_ptr_array_new ();

  for (guint i = 0; i < 1000; i++)
    g_ptr_array_add (before, g_strdup (pick_key (up, key_hash (i))));
  static const char *const reversed[] = { "10.0.0.5", "10.0.0.4", "10.0.0.3", "10.0.0.2",
                                          "10.0.0.1" };
  for (guint i = 0; i < G_N_ELEMENTS (reversed); i++)
    g_ptr_array_add (addrs, (gpointer) reversed[i]);
  weft_upstream_replace_set (up, weft_endpoint_set_new (addrs, 80, 1));
  g_assert_cmpstr (up->set->endpoints[0].key, ==, "10.0.0.5:80");
  for (guint i = 0; i < 1000; i++)
    g_assert_cmpstr (pick_key (up, key_hash (i)), ==, before->pdata[i]);
  weft_upstream_free (up);
  free_config (uc);
}

static void
check_hash_walks_on (WeftLbPolicy policy)
{
  WeftUpstreamConfig *uc = make_config (0);
  WeftUpstream *up = make_hash_upstream (uc, policy, 0, 5);
  guint64 hash = key_hash (42);
  WeftPickHints hints = { .has_hash = TRUE, .hash = hash };
  gboolean down;
  guint first = pick_hints (up, 0, 0, &hints, &down), second;
  guint counts[5] = { 0 };

  /* no hash: random */
  for (guint i = 0; i < 5000; i++)
    counts[pick_hints (up, 0, 0, NULL, &down)]++;
  for (guint i = 0; i < 5; i++)
    g_assert_cmpuint (counts[i], >, 800);
  /* a retry avoiding it goes to the next entry, the same one every time */
  hints.avoid_set = up->set;
  hints.avoid_idx = first;
  second = pick_hints (up, 0, 0, &hints, &down);
  g_assert_cmpuint (second, !=, first);
  g_assert_cmpuint (pick_hints (up, 0, 0, &hints, &down), ==, second);
  /* an unhealthy endpoint: the same walk, for worker 0 only */
  for (guint i = 0; i < 3; i++)
    weft_upstream_report (up, up->set, first, 0, FALSE, 0);
  hints.avoid_set = NULL;
  g_assert_cmpuint (pick_hints (up, 0, 10, &hints, &down), ==, second);
  g_assert_false (down);
  /* only the avoided endpoint is usable: it is picked */
  for (guint i = 0; i < 5; i++)
    if (i != second)
      for (guint k = 0; k < 3; k++)
        weft_upstream_report (up, up->set, i, 0, FALSE, 0);
  hints.avoid_set = up->set;
  hints.avoid_idx = second;
  g_assert_cmpuint (pick_hints (up, 0, 10, &hints, &down), ==, second);
  g_assert_false (down);
  weft_upstream_free (up);
  free_config (uc);
}

static void
test_hash_walks_on (void)
{
  check_hash_walks_on (WEFT_LB_RING_HASH);
  check_hash_walks_on (WEFT_LB_MAGLEV);
}

static void
test_avoid (void)
{
  static const WeftLbPolicy policies[] = { WEFT_LB_ROUND_ROBIN, WEFT_LB_RANDOM,
                                           WEFT_LB_LEAST_REQUEST };
  WeftUpstreamConfig *uc = make_config (0);

  for (guint p = 0; p < G_N_ELEMENTS (policies); p++)
    {
      WeftUpstream *up = weft_upstream_new (uc, 1, NULL);
      WeftPickHints hints = { 0 };
      WeftEndpointSet *old;
      gboolean down;

      set_lb (up, policies[p], WEFT_HASH_ON_NONE, NULL, 0);
      weft_upstream_replace_set (up, make_set (1, 3, 1));
      old = up->set;
      hints.avoid_set = old;
      hints.avoid_idx = 1;
      for (guint i = 0; i < 300; i++)
        g_assert_cmpuint (pick_hints (up, 0, 0, &hints, &down), !=, 1);
      /* after a set swap (10.0.0.2 is index 0 now) the endpoint is found by key */
      weft_upstream_replace_set (up, make_set (2, 3, 1));
      g_assert_true (up->set != old);
      for (guint i = 0; i < 300; i++)
        g_assert_cmpuint (pick_hints (up, 0, 0, &hints, &down), !=, 0);
      /* when it is the only one left it is picked after all */
      for (guint k = 0; k < 3; k++)
        {
          weft_upstream_report (up, up->set, 1, 0, FALSE, 0);
          weft_upstream_report (up, up->set, 2, 0, FALSE, 0);
        }
      g_assert_cmpuint (pick_hints (up, 0, 10, &hints, &down), ==, 0);
      g_assert_false (down);
      weft_upstream_free (up);
    }
  free_config (uc);
}

/* ------------------------------------------------------------------ */
/* request hashing                                                     */
/* ------------------------------------------------------------------ */

typedef struct {
  WeftConn    *conn;
  WeftRequest *req;
  WeftHdr      hdrs[8];
} FakeRequest;

static void
fake_request_init (FakeRequest *f, const char *peer_ip, const char *const *headers)
{
  guint n = 0;

  f->conn = g_new0 (WeftConn, 1);
  g_strlcpy (f->conn->peer_ip, peer_ip, sizeof f->conn->peer_ip);
  f->req = &f->conn->req;
  f->req->conn = f->conn;
  for (; headers != NULL && headers[2 * n] != NULL; n++)
    {
      f->hdrs[n].name = headers[2 * n];
      f->hdrs[n].name_len = strlen (headers[2 * n]);
      f->hdrs[n].value = headers[2 * n + 1];
      f->hdrs[n].value_len = strlen (headers[2 * n + 1]);
    }
  f->req->headers.items = f->hdrs;
  f->req->headers.n = n;
  f->req->headers.cap = G_N_ELEMENTS (f->hdrs);
}

static guint64
text_hash (const char *text)
{
  return weft_hash64 (text, strlen (text), 0);
}

static void
test_request_hash (void)
{
  static const char *const headers[] = {
    "Host", "example", "X-User", "alice", "Cookie", "a=1; session=\"abc\"",
    "cookie", "theme=dark;  session2=zzz ; lang=fr", NULL
  };
  WeftUpstreamConfig *uc = make_config (2);
  WeftUpstream *up = weft_upstream_new (uc, 1, NULL);
  FakeRequest f, bare;
  guint64 hash = 1;

  fake_request_init (&f, "10.1.2.3", headers);
  fake_request_init (&bare, "", NULL);

  /* round robin hashes on nothing, whatever hash_on says */
  g_assert_false (weft_upstream_request_hash (up, f.req, &hash));
  g_assert_cmpuint (hash, ==, 0);

  set_lb (up, WEFT_LB_RING_HASH, WEFT_HASH_ON_HEADER, "x-user", 0);
  g_assert_true (weft_upstream_request_hash (up, f.req, &hash));
  g_assert_cmpuint (hash, ==, text_hash ("alice"));
  g_assert_false (weft_upstream_request_hash (up, bare.req, &hash));

  set_lb (up, WEFT_LB_MAGLEV, WEFT_HASH_ON_COOKIE, "session", 0);
  g_assert_true (weft_upstream_request_hash (up, f.req, &hash));
  g_assert_cmpuint (hash, ==, text_hash ("abc"));
  /* in the second Cookie header, spaces around it */
  set_lb (up, WEFT_LB_MAGLEV, WEFT_HASH_ON_COOKIE, "lang", 0);
  g_assert_true (weft_upstream_request_hash (up, f.req, &hash));
  g_assert_cmpuint (hash, ==, text_hash ("fr"));
  /* a prefix of a cookie name is not the cookie */
  set_lb (up, WEFT_LB_MAGLEV, WEFT_HASH_ON_COOKIE, "sess", 0);
  g_assert_false (weft_upstream_request_hash (up, f.req, &hash));
  g_assert_false (weft_upstream_request_hash (up, bare.req, &hash));

  set_lb (up, WEFT_LB_RING_HASH, WEFT_HASH_ON_SOURCE_IP, NULL, 0);
  g_assert_true (weft_upstream_request_hash (up, f.req, &hash));
  g_assert_cmpuint (hash, ==, text_hash ("10.1.2.3"));
  g_assert_false (weft_upstream_request_hash (up, bare.req, &hash));

  set_lb (up, WEFT_LB_RING_HASH, WEFT_HASH_ON_NONE, NULL, 0);
  g_assert_false (weft_upstream_request_hash (up, f.req, &hash));

  g_free (f.conn);
  g_free (bare.conn);
  weft_upstream_free (up);
  free_config (uc);
}

/* ------------------------------------------------------------------ */
/* outlier detection                                                   */
/* ------------------------------------------------------------------ */

static void
test_outlier_consecutive_5xx (void)
{
  WeftUpstreamConfig *uc = make_config (10);
  WeftUpstream *up = weft_upstream_new (uc, 2, NULL);
  gboolean down;

  set_outlier (up, 5, 0, 0, 0);
  for (guint i = 0; i < 4; i++)
    attempt (up, 3, WEFT_OUTCOME_RESPONSE, 500, 100, 0);
  g_assert_false (is_ejected (up, 3, 0));
  /* a cancelled attempt is no verdict */
  attempt (up, 3, WEFT_OUTCOME_CANCELLED, 0, 100, 0);
  attempt (up, 3, WEFT_OUTCOME_RESPONSE, 503, 100, 0);
  /* ejected for the default 30 s, for every worker */
  g_assert_true (is_ejected (up, 3, 0));
  g_assert_cmpint (up->set->outlier[3].ejected_until_ms, ==, 30000);
  for (guint i = 0; i < 100; i++)
    {
      g_assert_cmpuint (pick_hints (up, i % 2, 29999, NULL, &down), !=, 3);
      g_assert_false (down);
    }
  /* back when its time is up */
  {
    gboolean seen = FALSE;
    for (guint i = 0; i < 10; i++)
      seen |= pick_hints (up, 1, 30000, NULL, &down) == 3;
    g_assert_true (seen);
    g_assert_cmpint (up->set->outlier[3].ejected_until_ms, ==, 0);
  }
  weft_upstream_free (up);
  free_config (uc);
}

static void
test_outlier_success_resets (void)
{
  WeftUpstreamConfig *uc = make_config (4);
  WeftUpstream *up = weft_upstream_new (uc, 1, NULL);

  set_outlier (up, 3, 3, 1000, 100);
  for (guint round = 0; round < 5; round++)
    {
      attempt (up, 0, WEFT_OUTCOME_RESPONSE, 500, 100, 0);
      attempt (up, 0, WEFT_OUTCOME_CONNECT_FAILED, 0, 100, 0);
      attempt (up, 0, WEFT_OUTCOME_RESPONSE, 404, 100, 0);
    }
  g_assert_false (is_ejected (up, 0, 0));
  /* a 500 ends a run of gateway errors but counts as a 5xx */
  attempt (up, 1, WEFT_OUTCOME_RESPONSE, 502, 100, 0);
  attempt (up, 1, WEFT_OUTCOME_TIMEOUT, 0, 100, 0);
  attempt (up, 1, WEFT_OUTCOME_RESPONSE, 500, 100, 0);
  g_assert_true (is_ejected (up, 1, 0));   /* the third 5xx */
  weft_upstream_free (up);
  free_config (uc);
}

static void
test_outlier_gateway_errors (void)
{
  WeftUpstreamConfig *uc = make_config (4);
  WeftUpstream *up = weft_upstream_new (uc, 1, NULL);

  /* 5xx off, three gateway errors in a row eject */
  set_outlier (up, 0, 3, 1000, 100);
  attempt (up, 2, WEFT_OUTCOME_RESPONSE, 500, 100, 0);
  attempt (up, 2, WEFT_OUTCOME_RESPONSE, 500, 100, 0);
  attempt (up, 2, WEFT_OUTCOME_RESPONSE, 500, 100, 0);
  attempt (up, 2, WEFT_OUTCOME_RESPONSE, 500, 100, 0);
  g_assert_false (is_ejected (up, 2, 0));
  attempt (up, 2, WEFT_OUTCOME_CONNECT_FAILED, 0, 100, 0);
  attempt (up, 2, WEFT_OUTCOME_RESET, 0, 100, 0);
  attempt (up, 2, WEFT_OUTCOME_RESPONSE, 500, 100, 0);
  attempt (up, 2, WEFT_OUTCOME_RESPONSE, 504, 100, 0);
  attempt (up, 2, WEFT_OUTCOME_TIMEOUT, 0, 100, 0);
  g_assert_false (is_ejected (up, 2, 0));
  attempt (up, 2, WEFT_OUTCOME_RESPONSE, 503, 100, 0);
  g_assert_true (is_ejected (up, 2, 0));
  g_assert_cmpint (up->set->outlier[2].ejected_until_ms, ==, 1000);

  /* detection off: nothing ejects, and nothing stays ejected */
  set_outlier (up, 0, 0, 0, 0);
  for (guint i = 0; i < 20; i++)
    attempt (up, 0, WEFT_OUTCOME_RESPONSE, 503, 100, 0);
  g_assert_false (is_ejected (up, 0, 0));
  {
    gboolean down, seen = FALSE;
    for (guint i = 0; i < 8; i++)
      seen |= pick_hints (up, 0, 0, NULL, &down) == 2;
    g_assert_true (seen);
  }
  weft_upstream_free (up);
  free_config (uc);
}

/* three errors in a row at @now eject @idx (threshold 3) */
static void
fail_three (WeftUpstream *up, guint idx, gint64 now)
{
  for (guint i = 0; i < 3; i++)
    attempt (up, idx, WEFT_OUTCOME_RESPONSE, 500, 100, now);
}

static void
test_outlier_ejection_grows (void)
{
  WeftUpstreamConfig *uc = make_config (4);
  WeftUpstream *up = weft_upstream_new (uc, 1, NULL);
  WeftEndpointOutlier *o;
  gint64 now = 0;

  set_outlier (up, 3, 0, 1000, 50);
  o = &up->set->outlier[1];
  fail_three (up, 1, 0);
  g_assert_cmpint (o->ejected_until_ms, ==, 1000);
  /* errors while ejected (attempts in flight) do not extend it */
  fail_three (up, 1, 500);
  g_assert_cmpint (o->ejected_until_ms, ==, 1000);
  /* back at 1000, failing again: 2 s, then 3 s */
  fail_three (up, 1, 1000);
  g_assert_cmpint (o->ejected_until_ms, ==, 3000);
  fail_three (up, 1, 3000);
  g_assert_cmpint (o->ejected_until_ms, ==, 6000);
  g_assert_cmpuint (o->ejections, ==, 3);
  /* 25 s in good standing take two steps off the count: the next is 2 s */
  fail_three (up, 1, 31000);
  g_assert_cmpint (o->ejected_until_ms, ==, 33000);
  /* the length stops at 300 s */
  for (guint k = 0; k < 400; k++)
    {
      now = o->ejected_until_ms;
      fail_three (up, 1, now);
    }
  g_assert_cmpuint (o->ejections, >, 300);
  g_assert_cmpint (o->ejected_until_ms - now, ==, 300000);
  weft_upstream_free (up);
  free_config (uc);
}

static void
test_outlier_max_percent (void)
{
  WeftUpstreamConfig *uc = make_config (10);
  WeftUpstream *up = weft_upstream_new (uc, 1, NULL);
  guint n = 0;

  /* 20% of 10: two at once */
  set_outlier (up, 3, 0, 1000, 20);
  for (guint i = 0; i < 5; i++)
    fail_three (up, i, 0);
  for (guint i = 0; i < 10; i++)
    n += is_ejected (up, i, 0);
  g_assert_cmpuint (n, ==, 2);
  g_assert_true (is_ejected (up, 0, 0) && is_ejected (up, 1, 0));
  /* once those are back, others can go */
  fail_three (up, 4, 1000);
  g_assert_true (is_ejected (up, 4, 1000));
  weft_upstream_free (up);
  free_config (uc);

  /* the default 10% of 4 is less than one endpoint: one may still go */
  uc = make_config (4);
  up = weft_upstream_new (uc, 1, NULL);
  set_outlier (up, 3, 0, 1000, 0);
  fail_three (up, 0, 0);
  fail_three (up, 1, 0);
  g_assert_true (is_ejected (up, 0, 0));
  g_assert_false (is_ejected (up, 1, 0));
  weft_upstream_free (up);
  free_config (uc);

  /* a lone endpoint is never ejected: there is nowhere else to go */
  uc = make_config (1);
  up = weft_upstream_new (uc, 1, NULL);
  set_outlier (up, 3, 0, 1000, 100);
  fail_three (up, 0, 0);
  g_assert_false (is_ejected (up, 0, 0));
  weft_upstream_free (up);
  free_config (uc);
}

static void
test_outlier_all_ejected (void)
{
  WeftUpstreamConfig *uc = make_config (3);
  WeftUpstream *up = weft_upstream_new (uc, 1, NULL);
  gboolean down;

  set_outlier (up, 3, 0, 1000, 100);
  fail_three (up, 0, 100);
  fail_three (up, 1, 0);
  fail_three (up, 2, 200);
  /* every one ejected: the one due first is tried, and the caller told */
  g_assert_cmpuint (pick_hints (up, 0, 300, NULL, &down), ==, 1);
  g_assert_true (down);
  /* with an unhealthy one too, for every policy */
  set_lb (up, WEFT_LB_MAGLEV, WEFT_HASH_ON_HEADER, "x", 0);
  {
    WeftPickHints hints = { .has_hash = TRUE, .hash = 12345 };
    g_assert_cmpuint (pick_hints (up, 0, 300, &hints, &down), ==, 1);
    g_assert_true (down);
  }
  set_lb (up, WEFT_LB_LEAST_REQUEST, WEFT_HASH_ON_NONE, NULL, 0);
  g_assert_cmpuint (pick_hints (up, 0, 300, NULL, &down), ==, 1);
  g_assert_true (down);
  /* its time is up: a normal pick again */
  g_assert_cmpuint (pick_hints (up, 0, 1000, NULL, &down), ==, 1);
  g_assert_false (down);
  weft_upstream_free (up);
  free_config (uc);
}

static void
test_outlier_survives_set_swap (void)
{
  WeftUpstreamConfig *uc = make_config (0);
  WeftUpstream *up = weft_upstream_new (uc, 1, NULL), *next;

  set_outlier (up, 3, 0, 1000, 50);
  weft_upstream_replace_set (up, make_set (1, 4, 1));
  fail_three (up, 2, 0);                         /* 10.0.0.3 */
  g_assert_true (is_ejected (up, 2, 0));
  /* DNS now answers 10.0.0.2..5: 10.0.0.3 is index 1 and still ejected */
  weft_upstream_replace_set (up, make_set (2, 4, 1));
  g_assert_true (is_ejected (up, 1, 0));
  g_assert_cmpuint (up->set->outlier[1].ejections, ==, 1);
  g_assert_false (is_ejected (up, 0, 0));
  g_assert_cmpuint (up->retired->len, ==, 2);
  weft_upstream_free (up);
  free_config (uc);

  /* and across a reload, when the new generation detects outliers too */
  uc = make_config (4);
  uc->outlier.consecutive_5xx = 3;
  uc->outlier.max_ejection_percent = 50;
  up = weft_upstream_new (uc, 1, NULL);
  fail_three (up, 2, 0);
  g_assert_true (is_ejected (up, 2, 0));
  next = weft_upstream_new (uc, 1, up);
  g_assert_true (is_ejected (next, 2, 0));
  g_assert_false (is_ejected (next, 1, 0));
  weft_upstream_free (next);
  uc->outlier.consecutive_5xx = 0;
  next = weft_upstream_new (uc, 1, up);
  g_assert_false (is_ejected (next, 2, 0));
  weft_upstream_free (next);
  weft_upstream_free (up);
  free_config (uc);
}

/* ------------------------------------------------------------------ */
/* pool limits and policy                                              */
/* ------------------------------------------------------------------ */

static void
test_pool_limits (void)
{
  WeftUpstreamConfig *uc = make_config (2);
  WeftUpstream *up = weft_upstream_new (uc, 2, NULL);
  WeftPoolSpec pool = { .max_requests = 2, .max_requests_per_connection = 7 };

  g_assert_cmpuint (weft_upstream_connect_ms (up, 5000), ==, 5000);
  uc->connect_ms = 1500;
  g_assert_cmpuint (weft_upstream_connect_ms (up, 5000), ==, 1500);
  g_assert_cmpuint (weft_upstream_max_requests_per_connection (up), ==, 0);
  g_assert_false (weft_upstream_overflowing (up, 0));

  g_assert_true (weft_upstream_set_policy (up, NULL, NULL, &pool, NULL));
  g_assert_cmpuint (weft_upstream_max_requests_per_connection (up), ==, 7);
  weft_upstream_attempt_start (up, up->set, 0, 0);
  g_assert_false (weft_upstream_overflowing (up, 0));
  weft_upstream_attempt_start (up, up->set, 1, 0);
  g_assert_true (weft_upstream_overflowing (up, 0));
  /* per worker */
  g_assert_false (weft_upstream_overflowing (up, 1));
  weft_upstream_attempt_end (up, up->set, 1, 0, WEFT_OUTCOME_CANCELLED, 0, -1, 0);
  g_assert_false (weft_upstream_overflowing (up, 0));

  pool.connect_timeout_ms = 250;
  g_assert_true (weft_upstream_set_policy (up, NULL, NULL, &pool, NULL));
  g_assert_cmpuint (weft_upstream_connect_ms (up, 5000), ==, 250);
  weft_upstream_free (up);
  free_config (uc);
}

static void
test_policy_checks (void)
{
  WeftUpstreamConfig *uc = make_config (2);
  WeftUpstream *up = weft_upstream_new (uc, 1, NULL);
  WeftLbSpec maglev = { .policy = WEFT_LB_MAGLEV, .table_size = 1000 };
  WeftLbSpec header = { .policy = WEFT_LB_RING_HASH, .hash_on = WEFT_HASH_ON_HEADER };
  WeftLbSpec ring = { .policy = WEFT_LB_RING_HASH, .table_size = 1u << 21 };
  WeftOutlierSpec outlier = { .max_ejection_percent = 101 };
  GError *error = NULL;

  g_assert_false (weft_upstream_set_policy (up, &maglev, NULL, NULL, &error));
  g_assert_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG);
  g_test_message ("%s", error->message);
  g_clear_error (&error);
  g_assert_false (weft_upstream_set_policy (up, &header, NULL, NULL, &error));
  g_assert_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG);
  g_clear_error (&error);
  g_assert_false (weft_upstream_set_policy (up, &ring, NULL, NULL, &error));
  g_assert_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG);
  g_clear_error (&error);
  g_assert_false (weft_upstream_set_policy (up, NULL, &outlier, NULL, &error));
  g_assert_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG);
  g_clear_error (&error);
  /* nothing changed */
  g_assert_cmpint (up->lb.policy, ==, WEFT_LB_ROUND_ROBIN);
  g_assert_cmpuint (up->outlier.max_ejection_percent, ==, 0);
  weft_upstream_free (up);
  free_config (uc);
}

/* a policy change builds the table into a new set; the old one is retired */
static void
test_policy_builds_tables (void)
{
  WeftUpstreamConfig *uc = make_config (3);
  WeftUpstream *up;
  WeftEndpointSet *first;
  char *key = g_strdup ("x-user");

  uc->lb.policy = WEFT_LB_RING_HASH;
  uc->lb.hash_on = WEFT_HASH_ON_HEADER;
  uc->lb.hash_key = key;
  uc->lb.table_size = 600;
  uc->outlier.consecutive_5xx = 7;
  uc->pool.max_requests = 9;
  up = weft_upstream_new (uc, 2, NULL);
  g_assert_cmpint (up->lb.policy, ==, WEFT_LB_RING_HASH);
  g_assert_cmpstr (up->lb.hash_key, ==, "x-user");
  g_assert_true (up->lb.hash_key != key);
  g_assert_cmpuint (up->outlier.consecutive_5xx, ==, 7);
  g_assert_cmpuint (up->pool.max_requests, ==, 9);
  /* at least 160 points per endpoint */
  g_assert_cmpuint (up->set->n_ring, ==, 3 * 200);
  for (guint i = 1; i < up->set->n_ring; i++)
    g_assert_cmpuint (up->set->ring[i - 1].hash, <=, up->set->ring[i].hash);
  first = up->set;
  g_assert_cmpuint (up->retired->len, ==, 0);

  /* same table: the set stays */
  set_lb (up, WEFT_LB_RING_HASH, WEFT_HASH_ON_COOKIE, "s", 600);
  g_assert_true (up->set == first);
  set_lb (up, WEFT_LB_MAGLEV, WEFT_HASH_ON_COOKIE, "s", 7);
  g_assert_true (up->set != first);
  g_assert_cmpuint (up->retired->len, ==, 1);
  g_assert_null (up->set->ring);
  g_assert_cmpuint (up->set->maglev_size, ==, 7);
  set_lb (up, WEFT_LB_ROUND_ROBIN, WEFT_HASH_ON_NONE, NULL, 0);
  /* an upstream set up from its own spec keeps the key: passing &up->lb is fine */
  set_lb (up, WEFT_LB_RING_HASH, WEFT_HASH_ON_HEADER, "y", 0);
  g_assert_true (weft_upstream_set_policy (up, &up->lb, NULL, NULL, NULL));
  g_assert_cmpstr (up->lb.hash_key, ==, "y");
  g_assert_cmpuint (up->set->n_ring, ==, 3 * 342);
  weft_upstream_free (up);
  g_free (key);
  free_config (uc);
}

/* each worker's health block starts on its own cache line */
static void
test_per_worker_layout (void)
{
  WeftUpstreamConfig *uc = make_config (3);
  WeftUpstream *up = weft_upstream_new (uc, 4, NULL);

  for (guint w = 0; w < 4; w++)
    g_assert_cmpuint ((guintptr) weft_endpoint_set_health (up->set, w) % WEFT_CACHE_LINE, ==, 0);
  g_assert_cmpuint ((guintptr) up->set->outlier % WEFT_CACHE_LINE, ==, 0);
  g_assert_cmpuint (sizeof (WeftEndpointOutlier), ==, WEFT_CACHE_LINE);
  /* a worker index past the end is clamped, not out of bounds */
  g_assert_true (weft_endpoint_set_health (up->set, 99) == weft_endpoint_set_health (up->set, 3));
  weft_upstream_free (up);
  free_config (uc);
}

/* workers picking and failing at once: counts stay sane, one ejection
 * at a time per endpoint (run under ASan/TSan to see races) */
typedef struct {
  WeftUpstream *up;
  guint         w;
} Worker;

static gpointer
worker_run (gpointer data)
{
  Worker *wk = data;
  gboolean down;

  for (guint i = 0; i < 20000; i++)
    {
      WeftEndpointSet *set;
      guint idx;
      gint64 now = i / 20;
      WeftPickHints hints = { .has_hash = TRUE, .hash = key_hash (i) };
      g_assert_cmpint (weft_upstream_pick (wk->up, wk->w, now, &hints, &set, &idx, &down), ==,
                       WEFT_PICK_OK);
      weft_upstream_attempt_start (wk->up, set, idx, wk->w);
      weft_upstream_attempt_end (wk->up, set, idx, wk->w, WEFT_OUTCOME_RESPONSE,
                                 idx == 0 ? 503 : 200, 100 + idx * 10, now);
    }
  return NULL;
}

static void
test_threads (void)
{
  WeftUpstreamConfig *uc = make_config (0);
  WeftUpstream *up = weft_upstream_new (uc, 4, NULL);
  GThread *threads[4];
  Worker workers[4];

  set_lb (up, WEFT_LB_MAGLEV, WEFT_HASH_ON_HEADER, "x", 1009);
  set_outlier (up, 5, 0, 50, 30);
  weft_upstream_replace_set (up, make_set (1, 5, 4));
  for (guint w = 0; w < 4; w++)
    {
      workers[w].up = up;
      workers[w].w = w;
      threads[w] = g_thread_new ("worker", worker_run, &workers[w]);
    }
  for (guint w = 0; w < 4; w++)
    g_thread_join (threads[w]);
  for (guint w = 0; w < 4; w++)
    {
      g_assert_false (weft_upstream_overflowing (up, w));
      for (guint i = 0; i < 5; i++)
        g_assert_cmpuint (weft_endpoint_set_health (up->set, w)[i].outstanding, ==, 0);
    }
  /* 10.0.0.1 failed all along: ejected again and again */
  g_assert_cmpuint (up->set->outlier[0].ejections, >, 1);
  weft_upstream_free (up);
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
  g_test_add_func ("/upstream/random/spread", test_random_spread);
  g_test_add_func ("/upstream/least-request/outstanding", test_least_request_outstanding);
  g_test_add_func ("/upstream/least-request/latency", test_least_request_latency);
  g_test_add_func ("/upstream/least-request/equal-spread", test_least_request_equal_spread);
  g_test_add_func ("/upstream/least-request/peak-ewma", test_least_request_peak_ewma);
  g_test_add_func ("/upstream/ring-hash/spread", test_ring_hash_spread);
  g_test_add_func ("/upstream/ring-hash/consistency", test_ring_hash_consistency);
  g_test_add_func ("/upstream/maglev/spread", test_maglev_spread);
  g_test_add_func ("/upstream/maglev/consistency", test_maglev_consistency);
  g_test_add_func ("/upstream/maglev/order-independent", test_maglev_order_independent);
  g_test_add_func ("/upstream/hash/walks-on", test_hash_walks_on);
  g_test_add_func ("/upstream/avoid", test_avoid);
  g_test_add_func ("/upstream/unresolved", test_unresolved_set);
  g_test_add_func ("/upstream/request-hash", test_request_hash);
  g_test_add_func ("/upstream/outlier/consecutive-5xx", test_outlier_consecutive_5xx);
  g_test_add_func ("/upstream/outlier/success-resets", test_outlier_success_resets);
  g_test_add_func ("/upstream/outlier/gateway-errors", test_outlier_gateway_errors);
  g_test_add_func ("/upstream/outlier/ejection-grows", test_outlier_ejection_grows);
  g_test_add_func ("/upstream/outlier/max-percent", test_outlier_max_percent);
  g_test_add_func ("/upstream/outlier/all-ejected", test_outlier_all_ejected);
  g_test_add_func ("/upstream/outlier/survives-set-swap", test_outlier_survives_set_swap);
  g_test_add_func ("/upstream/pool-limits", test_pool_limits);
  g_test_add_func ("/upstream/policy/checks", test_policy_checks);
  g_test_add_func ("/upstream/policy/builds-tables", test_policy_builds_tables);
  g_test_add_func ("/upstream/per-worker-layout", test_per_worker_layout);
  g_test_add_func ("/upstream/threads", test_threads);
  return g_test_run ();
}
