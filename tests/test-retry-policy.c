/* SPDX-License-Identifier: LGPL-2.1-or-later
 * WeftRetryPolicy: which outcomes retry, the budget, and the backoff. */
#include "weft-retry-policy-private.h"

static void
test_defaults_and_statuses (void)
{
  WeftRetrySpec spec = { .attempts = 2, .retry_on = WEFT_RETRY_ON_GATEWAY_ERROR |
                                                    WEFT_RETRY_ON_STATUS,
                         .statuses = { 409 }, .n_statuses = 1 };
  WeftRetryPolicy *p = weft_retry_policy_new (&spec, 2);

  g_assert_cmpuint (p->spec.backoff_base_ms, ==, 25);
  g_assert_cmpuint (p->spec.backoff_max_ms, ==, 250);
  g_assert_cmpuint (p->spec.max_body, ==, 64 * 1024);
  g_assert_cmpfloat (p->spec.budget_ratio, ==, 0.2);
  g_assert_true (weft_retry_policy_on_status (p, 503));
  g_assert_true (weft_retry_policy_on_status (p, 409));
  g_assert_false (weft_retry_policy_on_status (p, 500));
  g_assert_false (weft_retry_policy_on_status (p, 404));
  weft_retry_policy_free (p);

  spec.retry_on = WEFT_RETRY_ON_5XX;
  p = weft_retry_policy_new (&spec, 1);
  g_assert_true (weft_retry_policy_on_status (p, 500));
  g_assert_true (weft_retry_policy_on_status (p, 599));
  g_assert_false (weft_retry_policy_on_status (p, 409));
  weft_retry_policy_free (p);
}

/* the budget lets retries reach the ratio of requests plus the floor, no more */
static void
test_budget_holds (void)
{
  WeftRetrySpec spec = { .attempts = 5, .retry_on = WEFT_RETRY_ON_5XX, .budget_ratio = 0.1,
                         .budget_min_per_sec = 1 };
  WeftRetryPolicy *p = weft_retry_policy_new (&spec, 1);
  guint granted = 0;
  gint64 now = 1000000;

  for (guint i = 0; i < 1000; i++)
    {
      weft_retry_policy_count_request (p, 0, now + i);
      /* every request wants every retry it may have */
      for (guint r = 0; r < 5; r++)
        if (weft_retry_policy_take_retry (p, 0, now + i))
          granted++;
    }
  /* 10% of 1000 requests plus a floor of 1/s over the 10 s window */
  g_assert_cmpuint (granted, <=, 100 + 10);
  g_assert_cmpuint (granted, >=, 100);
  weft_retry_policy_free (p);
}

/* after the window passes, old traffic no longer counts */
static void
test_budget_window_slides (void)
{
  WeftRetrySpec spec = { .attempts = 1, .budget_ratio = 0.5, .budget_min_per_sec = 1 };
  WeftRetryPolicy *p = weft_retry_policy_new (&spec, 1);
  guint granted = 0;

  for (guint i = 0; i < 100; i++)
    weft_retry_policy_count_request (p, 0, 5000);
  while (weft_retry_policy_take_retry (p, 0, 5000))
    granted++;
  g_assert_cmpuint (granted, ==, 50 + 10);
  /* 20 s later: only the floor is left */
  granted = 0;
  while (weft_retry_policy_take_retry (p, 0, 25000))
    granted++;
  g_assert_cmpuint (granted, ==, 10);
  weft_retry_policy_free (p);
}

static void
test_budget_off (void)
{
  WeftRetrySpec spec = { .attempts = 1, .budget_ratio = -1 };
  WeftRetryPolicy *p = weft_retry_policy_new (&spec, 1);

  for (guint i = 0; i < 10000; i++)
    g_assert_true (weft_retry_policy_take_retry (p, 0, 1000));
  weft_retry_policy_free (p);
}

/* full jitter under a cap that doubles per retry and stops at the max */
static void
test_backoff (void)
{
  WeftRetrySpec spec = { .attempts = 5, .backoff_base_ms = 100, .backoff_max_ms = 350 };
  WeftRetryPolicy *p = weft_retry_policy_new (&spec, 1);

  g_assert_cmpuint (weft_retry_policy_backoff_ms (p, 1, 0), ==, 0);
  g_assert_cmpuint (weft_retry_policy_backoff_ms (p, 1, G_MAXUINT32), ==, 100);
  g_assert_cmpuint (weft_retry_policy_backoff_ms (p, 2, G_MAXUINT32), ==, 200);
  g_assert_cmpuint (weft_retry_policy_backoff_ms (p, 3, G_MAXUINT32), ==, 350);
  g_assert_cmpuint (weft_retry_policy_backoff_ms (p, 9, G_MAXUINT32), ==, 350);
  g_assert_cmpuint (weft_retry_policy_backoff_ms (p, 2, G_MAXUINT32 / 2), ==, 100);
  weft_retry_policy_free (p);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/retry-policy/defaults-and-statuses", test_defaults_and_statuses);
  g_test_add_func ("/retry-policy/budget-holds", test_budget_holds);
  g_test_add_func ("/retry-policy/budget-window-slides", test_budget_window_slides);
  g_test_add_func ("/retry-policy/budget-off", test_budget_off);
  g_test_add_func ("/retry-policy/backoff", test_backoff);
  return g_test_run ();
}
