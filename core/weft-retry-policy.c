/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "weft-retry-policy-private.h"
#include "weft-generation-private.h"

WeftRetryPolicy *
weft_retry_policy_new (const WeftRetrySpec *spec, guint n_workers)
{
  WeftRetryPolicy *policy = g_new0 (WeftRetryPolicy, 1);
  WeftRetrySpec *s = &policy->spec;

  *s = *spec;
  s->n_statuses = MIN (s->n_statuses, (guint) WEFT_RETRY_MAX_STATUSES);
  if (s->backoff_base_ms == 0)
    s->backoff_base_ms = 25;
  if (s->backoff_max_ms == 0)
    s->backoff_max_ms = s->backoff_base_ms * 10;
  if (s->max_body == 0)
    s->max_body = 64 * 1024;
  if (s->budget_ratio == 0)
    s->budget_ratio = 0.2;
  if (s->budget_min_per_sec == 0)
    s->budget_min_per_sec = 10;
  policy->n_workers = MAX (n_workers, 1);
  policy->budgets = g_new0 (WeftRetryBudget, policy->n_workers);
  return policy;
}

void
weft_retry_policy_free (WeftRetryPolicy *policy)
{
  if (policy == NULL)
    return;
  g_free (policy->budgets);
  g_free (policy);
}

static WeftRetryBudget *
weft_retry_budget (WeftRetryPolicy *policy, guint w, gint64 now_ms)
{
  WeftRetryBudget *b = &policy->budgets[MIN (w, policy->n_workers - 1)];
  gint64 sec = now_ms / 1000;
  guint slot = (guint) (sec % WEFT_RETRY_WINDOW);

  /* a bucket from an earlier turn of the window starts over */
  if (b->second[slot] != sec)
    {
      b->second[slot] = sec;
      b->requests[slot] = 0;
      b->retries[slot] = 0;
    }
  return b;
}

void
weft_retry_policy_count_request (WeftRetryPolicy *policy, guint w, gint64 now_ms)
{
  WeftRetryBudget *b = weft_retry_budget (policy, w, now_ms);

  b->requests[(now_ms / 1000) % WEFT_RETRY_WINDOW]++;
}

gboolean
weft_retry_policy_take_retry (WeftRetryPolicy *policy, guint w, gint64 now_ms)
{
  WeftRetryBudget *b = weft_retry_budget (policy, w, now_ms);
  gint64 sec = now_ms / 1000;
  guint64 requests = 0, retries = 0;
  double allowed;

  if (policy->spec.budget_ratio < 0)
    return TRUE;
  for (guint i = 0; i < WEFT_RETRY_WINDOW; i++)
    if (b->second[i] > sec - WEFT_RETRY_WINDOW)
      {
        requests += b->requests[i];
        retries += b->retries[i];
      }
  /* the floor is shared by the workers, each gets its part */
  allowed = policy->spec.budget_ratio * (double) requests +
            (double) policy->spec.budget_min_per_sec * WEFT_RETRY_WINDOW / policy->n_workers;
  if ((double) retries + 1 > allowed)
    return FALSE;
  b->retries[sec % WEFT_RETRY_WINDOW]++;
  return TRUE;
}

gboolean
weft_retry_policy_on_status (WeftRetryPolicy *policy, guint status)
{
  guint on = policy->spec.retry_on;

  if ((on & WEFT_RETRY_ON_5XX) && status >= 500 && status <= 599)
    return TRUE;
  if ((on & WEFT_RETRY_ON_GATEWAY_ERROR) && (status == 502 || status == 503 || status == 504))
    return TRUE;
  if (on & WEFT_RETRY_ON_STATUS)
    for (guint i = 0; i < policy->spec.n_statuses; i++)
      if (policy->spec.statuses[i] == status)
        return TRUE;
  return FALSE;
}

guint64
weft_retry_policy_backoff_ms (WeftRetryPolicy *policy, guint n, guint32 random)
{
  guint64 cap = policy->spec.backoff_base_ms;

  for (guint i = 1; i < n && cap < policy->spec.backoff_max_ms; i++)
    cap *= 2;
  cap = MIN (cap, policy->spec.backoff_max_ms);
  return (guint64) ((double) random / 4294967296.0 * (double) (cap + 1));
}

WeftRetryPolicy *
weft_plugin_context_new_retry_policy (WeftPluginContext *ctx, const WeftRetrySpec *spec)
{
  WeftRetryPolicy *policy = weft_retry_policy_new (spec, ctx->gen->n_workers);

  g_ptr_array_add (ctx->gen->retry_policies, policy);
  return policy;
}
