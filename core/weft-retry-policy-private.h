/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WeftRetryPolicy: a route's retry rules and its retry budget. The budget
 * counts requests and retries per worker in one-second buckets over a
 * ten-second window, so checking it takes no lock.
 */
#pragma once

#include <weft/plugin.h>

G_BEGIN_DECLS

#define WEFT_RETRY_WINDOW 10

typedef struct {
  gint64  second[WEFT_RETRY_WINDOW];
  guint   requests[WEFT_RETRY_WINDOW];
  guint   retries[WEFT_RETRY_WINDOW];
  gpointer pad[4];
} WeftRetryBudget;

struct _WeftRetryPolicy {
  WeftRetrySpec    spec;         /* defaults filled in */
  guint            n_workers;
  WeftRetryBudget *budgets;      /* per worker */
};

WeftRetryPolicy *weft_retry_policy_new   (const WeftRetrySpec *spec, guint n_workers);
void             weft_retry_policy_free  (WeftRetryPolicy *policy);
/* a request that runs under @policy began on worker @w */
void             weft_retry_policy_count_request (WeftRetryPolicy *policy, guint w, gint64 now_ms);
/* TRUE, and the retry counted, when the budget allows one more retry */
gboolean         weft_retry_policy_take_retry    (WeftRetryPolicy *policy, guint w, gint64 now_ms);
/* does @status call for a retry under the policy? */
gboolean         weft_retry_policy_on_status     (WeftRetryPolicy *policy, guint status);
/* the wait before retry number @n (1-based): full jitter over an
 * exponentially growing cap; @random is a uniform 32-bit value */
guint64          weft_retry_policy_backoff_ms    (WeftRetryPolicy *policy, guint n, guint32 random);

G_END_DECLS
